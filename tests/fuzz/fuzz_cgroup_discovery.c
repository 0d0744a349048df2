/* fuzz/cgroup_discovery: cgroup discovery on arbitrary mountinfo and /proc/PID/cgroup files.
 *
 * The input is split at its first "\n--\n": the bytes before are the mountinfo file, the bytes
 * after are the cgroup file (empty when there is no separator). Both are written to a
 * directory made once per process and handed to sbx_cgroup_describe_from, which runs the
 * module's discovery and creates nothing. Whatever the files hold, it must succeed with a
 * non-empty line of no control bytes, or fail with a negative code and a message; a
 * description that does not fit a small buffer must come back as CRU_ELIMIT with the start of
 * the full line, ending in "...".
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/fs.h"
#include "sandbox/cgroup_internal.h"
#include "tests/fuzz/fuzz.h"

/* Larger than any description: five hierarchies of four paths, each escaped at worst to four
 * times PATH_MAX, and their reasons. */
#define FULL_CAP  (1u << 20)
#define SMALL_CAP 64

static char dir[64], mountinfo[96], cgroup[96];

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_cgroup_discovery: %s\n  %s\n", what, detail);
    abort();
}

static void remove_dir(void)
{
    unlink(mountinfo);
    unlink(cgroup);
    rmdir(dir);
}

static void make_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/crucible-fuzz-cg-XXXXXX",
             tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        fail("cannot make the temporary directory", dir);
    snprintf(mountinfo, sizeof(mountinfo), "%s/mountinfo", dir);
    snprintf(cgroup, sizeof(cgroup), "%s/cgroup", dir);
    atexit(remove_dir);
}

static void write_file(const char *path, const uint8_t *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || cru_write_all(fd, data, n) < 0)
        fail("cannot write", path);
    close(fd);
}

static void check_failure(int rc)
{
    if (rc >= 0 || cru_err_code() != rc || cru_err_msg()[0] == '\0') {
        char detail[64];
        snprintf(detail, sizeof(detail), "code %d", rc);
        fail("a failure without a negative code and a message", detail);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char full[FULL_CAP];
    char small[SMALL_CAP];
    if (dir[0] == '\0')
        make_dir();

    const uint8_t *sep = memmem(data, size, "\n--\n", 4);
    size_t mi_len = sep ? (size_t)(sep - data) : size;
    write_file(mountinfo, data, mi_len);
    write_file(cgroup, sep ? sep + 4 : data, sep ? size - mi_len - 4 : 0);
    const struct sbx_cgroup_sources src = { mountinfo, cgroup };

    cru_err_clear();
    int rc = sbx_cgroup_describe_from(&src, full, sizeof(full));
    if (rc < 0) {
        check_failure(rc);
        /* Only a cut line leaves text behind: a failed discovery leaves "". */
        if (full[0] != '\0')
            fail("the description does not fit its largest buffer", cru_err_msg());
        return 0;
    }
    if (rc != 0)
        fail("success with a positive code", full);
    size_t len = strnlen(full, sizeof(full));
    if (len == 0 || len == sizeof(full))
        fail("an empty or unterminated description", full);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)full[i] < 0x20 || full[i] == 0x7f)
            fail("a control byte in the description", full);
    }

    /* The same discovery into a small buffer: the whole line, or its start and "...". */
    cru_err_clear();
    rc = sbx_cgroup_describe_from(&src, small, sizeof(small));
    if (len < sizeof(small)) {
        if (rc != 0 || strcmp(small, full) != 0)
            fail("a short description changed in a small buffer", small);
    } else {
        check_failure(rc);
        if (rc != CRU_ELIMIT || strlen(small) != sizeof(small) - 1 ||
            memcmp(small, full, sizeof(small) - 4) != 0 ||
            strcmp(small + sizeof(small) - 4, "...") != 0)
            fail("a cut description is not the line's start and \"...\"", small);
    }
    return 0;
}
