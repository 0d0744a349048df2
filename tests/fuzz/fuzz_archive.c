/* fuzz/archive: cru_archive_extract on arbitrary bytes, with small limits.
 *
 * Any input must extract or fail with a negative code and a message, never crash. On success
 * the destination exists and holds no device node, FIFO or socket, and no symlink that
 * resolves outside it (checked with realpath, independently of the module's own checks). On
 * failure neither the destination nor a partial sibling remains.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/archive.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "tests/fuzz/fuzz.h"

static void fail(const char *what, const char *path)
{
    fprintf(stderr, "fuzz_archive: %s: %s (%s)\n", what, path, cru_err_msg());
    abort();
}

/* Walks DIR without following links; ROOT is the destination's real path. */
static void check_tree(const char *dir, const char *root)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return; /* a directory the archive made unreadable (mode 000) */
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX * 2], real[PATH_MAX];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &st) < 0)
            fail("cannot lstat", path);
        if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode) ||
            S_ISSOCK(st.st_mode))
            fail("a special file was extracted", path);
        if (st.st_mode & (S_ISUID | S_ISGID))
            fail("a setuid or setgid file was extracted", path);
        if (S_ISLNK(st.st_mode) && realpath(path, real)) {
            size_t n = strlen(root);
            if (strncmp(real, root, n) != 0 || (real[n] != '\0' && real[n] != '/'))
                fail("a symlink resolves outside the destination", path);
        }
        if (S_ISDIR(st.st_mode))
            check_tree(path, root);
    }
    closedir(d);
}

static int no_partials(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int ok = 1;
    while (d && (e = readdir(d)) != NULL)
        ok &= strncmp(e->d_name, "dest.partial-", 13) != 0;
    if (d)
        closedir(d);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64];
    char input[128], dest[128], cmd[400];
    struct stat st;

    if (!dir[0]) {
        strcpy(dir, "/tmp/crucible-fuzz-archive-XXXXXX");
        if (!mkdtemp(dir))
            fail("cannot create the work directory", dir);
    }
    snprintf(input, sizeof(input), "%s/input", dir);
    snprintf(dest, sizeof(dest), "%s/dest", dir);
    if (cru_file_write_atomic(input, data, size, 0600) < 0)
        fail("cannot write the input", input);

    struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
    lim.max_bytes = 8 << 20;
    lim.max_entries = 1000;
    cru_err_clear();
    int rc = cru_archive_extract(input, dest, &lim, NULL);
    if (rc < 0) {
        if (cru_err_msg()[0] == '\0' || cru_err_code() != rc)
            fail("a failure without a matching message", input);
        if (lstat(dest, &st) == 0)
            fail("the destination exists after a failure", dest);
        if (!no_partials(dir))
            fail("a partial tree remains after a failure", dir);
        return 0;
    }
    char root[PATH_MAX];
    if (rc != 0 || lstat(dest, &st) < 0 || !S_ISDIR(st.st_mode) || !realpath(dest, root))
        fail("success without a destination directory", dest);
    if (!no_partials(dir))
        fail("a partial tree remains after success", dir);
    check_tree(dest, root);
    /* The archive's modes may deny the owner access; chmod first so rm can descend. */
    snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' && rm -rf '%s'", dest, dest);
    if (system(cmd) != 0 || lstat(dest, &st) == 0)
        fail("cannot remove", dest);
    return 0;
}
