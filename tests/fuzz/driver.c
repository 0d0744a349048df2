/* fuzz/driver: replays files through a fuzz target without libFuzzer.
 *
 * Linked with one tests/fuzz/fuzz_NAME.c, it runs LLVMFuzzerTestOneInput() on every file named
 * on the command line and on every regular file in every directory named there, in name order
 * so that a failure reproduces. Each input is copied into a buffer of exactly its size, so
 * that AddressSanitizer (SAN=1) catches a read one byte past the end. It does not generate
 * inputs: that is `make fuzz`. A path that cannot be read, or a corpus directory that is
 * missing or empty, is an error (exit 3), since a corpus that silently replays nothing tests
 * nothing.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/str.h"
#include "tests/fuzz/fuzz.h"

/* The largest input replayed; libFuzzer's own default is 4 KiB, so a corpus file this large
 * is a mistake rather than a seed. */
#define DRIVER_INPUT_MAX ((size_t)16 << 20)

static int replay_file(const char *path)
{
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cru_file_read(path, DRIVER_INPUT_MAX, &b);
    if (rc < 0)
        return rc;
    /* malloc(0) gives a unique pointer on glibc; a NULL there would still be a valid
     * zero-length input. */
    size_t size = b.len;
    uint8_t *data = malloc(size);
    if (!data && size > 0) {
        cru_buf_free(&b);
        return cru_err_set(CRU_ENOMEM, "out of memory copying %s", path);
    }
    if (size > 0)
        memcpy(data, b.data, size);
    cru_buf_free(&b);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    return 0;
}

/* Plain byte order, so that the order never depends on the locale. */
static int name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int replay_dir(const char *dir, size_t *count)
{
    struct dirent **names = NULL;
    size_t before = *count;
    int rc = 0;
    int n = scandir(dir, &names, NULL, name_cmp);
    if (n < 0)
        return cru_err_sys("cannot list %s", dir);

    for (int i = 0; i < n; i++) {
        char *path = NULL;
        struct stat st;
        if (rc == 0 && (rc = cru_str_printf(&path, "%s/%s", dir, names[i]->d_name)) == 0) {
            if (stat(path, &st) < 0)
                rc = cru_err_sys("cannot stat %s", path);
            else if (S_ISREG(st.st_mode) && (rc = replay_file(path)) == 0)
                (*count)++;
        }
        free(path);
        free(names[i]);
    }
    free(names);
    if (rc == 0 && *count == before)
        rc = cru_err_set(CRU_ENOENT, "%s holds no input files", dir);
    return rc;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int main(int argc, char **argv)
{
    const char *prog = argc > 0 ? base_name(argv[0]) : "fuzz";
    size_t count = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", prog);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        int rc;
        if (stat(argv[i], &st) < 0)
            rc = cru_err_sys("cannot stat %s", argv[i]);
        else if (S_ISDIR(st.st_mode))
            rc = replay_dir(argv[i], &count);
        else if ((rc = replay_file(argv[i])) == 0)
            count++;
        if (rc < 0) {
            fprintf(stderr, "crucible: fuzz replay: %s: %s\n", prog, cru_err_msg());
            return 3;
        }
    }
    printf("%s: replayed %zu input%s from ", prog, count, count == 1 ? "" : "s");
    for (int i = 1; i < argc; i++)
        printf("%s%s", i > 1 ? ", " : "", argv[i]);
    putchar('\n');
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "crucible: fuzz replay: %s: cannot write the output\n", prog);
        return 3;
    }
    return 0;
}
