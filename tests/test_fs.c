/* Tests for lib/fs: bounded reads, atomic writes (with injected write failures), mkdir -p. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/fs.h"

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/crucible-test-fs-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static char *in_dir(const char *name)
{
    static char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return p;
}

/* The number of entries in the test directory, so that a leaked temp file is noticed. */
static int count_entries(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

TestSuite(fs, .init = make_dir, .fini = remove_dir);

Test(fs, write_atomic_then_read)
{
    char *p = in_dir("a.txt");
    cr_assert_eq(cru_file_write_atomic(p, "first", 5, 0600), 0, "%s", cru_err_msg());
    cr_assert_eq(cru_file_write_atomic(p, "second", 6, 0640), 0);
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(p, 100, &b), 0);
    cr_assert_str_eq(cru_buf_cstr(&b), "second");
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0640);
    cr_assert_eq(count_entries(), 1, "no temporary file may remain");
    cru_buf_free(&b);
}

Test(fs, read_refuses_oversize_without_truncating)
{
    char *p = in_dir("big");
    cr_assert_eq(cru_file_write_atomic(p, "0123456789", 10, 0600), 0);
    struct cru_buf b = CRU_BUF_INIT;
    cru_buf_puts(&b, "prefix");
    cr_assert_eq(cru_file_read(p, 9, &b), CRU_ELIMIT);
    cr_assert_str_eq(cru_buf_cstr(&b), "prefix", "nothing may be appended on failure");
    cr_assert_eq(cru_file_read(p, 10, &b), 0, "exactly the limit is fine");
    cr_assert_str_eq(cru_buf_cstr(&b), "prefix0123456789");
    cru_buf_reset(&b);
    cr_assert_eq(cru_file_read(p, SIZE_MAX, &b), 0, "no limit at all must not wrap around");
    cr_assert_str_eq(cru_buf_cstr(&b), "0123456789");
    cru_buf_free(&b);
}

Test(fs, read_pipe_with_bound)
{
    /* /proc files report size 0: the bound must hold while reading, not from fstat. */
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read("/proc/self/status", 1 << 20, &b), 0);
    cr_assert(strstr(cru_buf_cstr(&b), "Pid:") != NULL);
    cru_buf_reset(&b);
    cr_assert_eq(cru_file_read("/proc/self/status", 16, &b), CRU_ELIMIT);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(cru_file_read(dir, 16, &b), CRU_EINVAL);
    cr_assert_eq(cru_file_read(in_dir("missing"), 16, &b), CRU_ENOENT);
    cru_buf_free(&b);
}

/* A write that fails part way (here: the file-size limit, as a full disk would) must leave the
 * old file whole and no temporary file behind. Criterion runs each test in its own process,
 * so the rlimit does not leak into other tests. */
Test(fs, failed_write_leaves_old_file)
{
    char *p = in_dir("keep.json");
    cr_assert_eq(cru_file_write_atomic(p, "old", 3, 0600), 0);

    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = { 4096, 4096 };
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    size_t n = 1 << 20;
    char *big = malloc(n);
    memset(big, 'x', n);
    cr_assert_lt(cru_file_write_atomic(p, big, n, 0600), 0);
    cr_assert(strstr(cru_err_msg(), "File too large") != NULL, "%s", cru_err_msg());
    free(big);

    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(p, 100, &b), 0);
    cr_assert_str_eq(cru_buf_cstr(&b), "old");
    cr_assert_eq(count_entries(), 1, "the temporary file must be removed");
    cru_buf_free(&b);
}

Test(fs, write_into_missing_dir_fails_clearly)
{
    cr_assert_eq(cru_file_write_atomic(in_dir("no/such/file"), "x", 1, 0600), CRU_ENOENT);
    cr_assert(strstr(cru_err_msg(), "cannot open the directory of") != NULL, "%s", cru_err_msg());
    cr_assert_eq(cru_file_write_atomic(in_dir("slash/"), "x", 1, 0600), CRU_EINVAL);
}

Test(fs, relative_name_in_cwd)
{
    cr_assert_eq(chdir(dir), 0);
    cr_assert_eq(cru_file_write_atomic("plain", "y", 1, 0600), 0);
    cr_assert_eq(access(in_dir("plain"), F_OK), 0);
}

Test(fs, mkdir_p)
{
    char *p = in_dir("a/b/c");
    cr_assert_eq(cru_mkdir_p(p, 0755), 0, "%s", cru_err_msg());
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(cru_mkdir_p(p, 0755), 0, "existing directories are fine");
    cr_assert_eq(cru_file_write_atomic(in_dir("f"), "", 0, 0600), 0);
    cr_assert_eq(cru_mkdir_p(in_dir("f"), 0755), CRU_EEXIST);
    cr_assert_lt(cru_mkdir_p(in_dir("f/sub"), 0755), 0);
    cr_assert_eq(cru_mkdir_p("", 0755), CRU_EINVAL);
}

Test(fs, write_all_to_pipe)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(cru_write_all(fds[1], "abc", 3), 0);
    char got[4] = { 0 };
    cr_assert_eq(read(fds[0], got, 3), 3);
    cr_assert_str_eq(got, "abc");
    close(fds[0]);
    signal(SIGPIPE, SIG_IGN);
    cr_assert_lt(cru_write_all(fds[1], "abc", 3), 0, "a closed pipe is an error");
    close(fds[1]);
}

Test(fs, remove_tree_never_follows_links_and_opens_locked_dirs)
{
    char outside[128];
    snprintf(outside, sizeof(outside), "%s/outside.txt", dir);
    cr_assert_eq(cru_file_write_atomic(outside, "keep", 4, 0600), 0);
    cr_assert_eq(cru_mkdir_p(in_dir("t/a/b"), 0755), 0);
    cr_assert_eq(cru_file_write_atomic(in_dir("t/a/b/f"), "x", 1, 0600), 0);
    cr_assert_eq(symlink(outside, in_dir("t/link")), 0);
    cr_assert_eq(symlink(dir, in_dir("t/a/dirlink")), 0);
    cr_assert_eq(cru_mkdir_p(in_dir("t/locked/inner"), 0755), 0);
    cr_assert_eq(chmod(in_dir("t/locked"), 0), 0);

    cr_assert_eq(cru_remove_tree(in_dir("t")), 0, "%s", cru_err_msg());
    cr_expect_neq(access(in_dir("t"), F_OK), 0, "the tree is gone");
    struct cru_buf b = CRU_BUF_INIT;
    cr_expect_eq(cru_file_read(outside, 16, &b), 0, "a link's target is never removed");
    cr_expect_str_eq(cru_buf_cstr(&b), "keep");
    cru_buf_free(&b);
    cr_expect_eq(access(dir, F_OK), 0, "a directory link's target stays");
    cr_expect_eq(cru_remove_tree(in_dir("missing")), 0, "a missing path is success");
}
