/* Tests for lib/fs: bounded reads, atomic writes (with injected write failures), mkdir -p, and
 * cru_copy_tree (links copied as links, the top one too, refusals and bounds that leave nothing
 * behind; from a descriptor). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/fs.h"
#include "lib/hash.h"
#include "tests/fifo_util.h"

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

/* Four buffers in turn, so that one call may take several paths. */
static char *in_dir(const char *name)
{
    static char p[4][4096];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
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

/* The loaders' guard: anything but a regular file is refused at once, naming the path and what
 * it is. Without it the FIFO, which has no writer, holds the read in open(2) for ever. */
Test(fs, read_refuses_a_fifo_without_blocking)
{
    char *p = in_dir("image.json");
    struct cru_buf b = CRU_BUF_INIT;
    /* Control: the same name as a regular file with the content reads. */
    cr_assert_eq(cru_file_write_atomic(p, "{}", 2, 0644), 0);
    cr_assert_eq(cru_file_read(p, 100, &b), 0, "%s", cru_err_msg());
    cr_assert_str_eq(cru_buf_cstr(&b), "{}");
    cru_buf_reset(&b);

    struct timespec t0 = fifo_swap(p);
    int rc = cru_file_read(p, 100, &b);
    fifo_done(t0, rc, p);
    cr_assert_eq(b.len, 0, "nothing may be appended on failure");
    cru_buf_free(&b);
}

Test(fs, read_refuses_sockets_devices_and_directories)
{
    struct cru_buf b = CRU_BUF_INIT;
    /* A socket file: open(2) itself refuses it (ENXIO), and the message names it. */
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", in_dir("sock"));
    cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_lt(cru_file_read(in_dir("sock"), 100, &b), 0);
    cr_assert(strstr(cru_err_msg(), in_dir("sock")) != NULL, "%s", cru_err_msg());
    close(s);
    /* A character device: /dev/null reads as empty with any plain read. */
    cr_assert_eq(cru_file_read("/dev/null", 100, &b), CRU_EINVAL);
    cr_assert(strstr(cru_err_msg(), "/dev/null is a character device") != NULL, "%s",
              cru_err_msg());
    cr_assert_eq(cru_file_read(dir, 100, &b), CRU_EINVAL);
    cr_assert(strstr(cru_err_msg(), "is a directory") != NULL, "%s", cru_err_msg());
    /* A link to a regular file is followed, as before. */
    cr_assert_eq(cru_file_write_atomic(in_dir("real"), "x", 1, 0644), 0);
    cr_assert_eq(symlink(in_dir("real"), in_dir("link")), 0);
    cr_assert_eq(cru_file_read(in_dir("link"), 100, &b), 0, "%s", cru_err_msg());
    cr_assert_str_eq(cru_buf_cstr(&b), "x");
    cr_assert_eq(b.len, 1);
    cru_buf_free(&b);
}

/* The way for a caller that means to read a stream: a pipe, bounded as a file is. */
Test(fs, read_stream_reads_pipes_with_a_bound)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(write(fds[1], "piped", 5), 5);
    close(fds[1]);
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(path, 100, &b), CRU_EINVAL, "the default refuses it");
    cr_assert_eq(cru_file_read_stream(path, 100, &b), 0, "%s", cru_err_msg());
    cr_assert_str_eq(cru_buf_cstr(&b), "piped");
    close(fds[0]);

    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(write(fds[1], "0123456789", 10), 10);
    close(fds[1]);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
    cru_buf_reset(&b);
    cr_assert_eq(cru_file_read_stream(path, 9, &b), CRU_ELIMIT);
    cr_assert_eq(b.len, 0);
    close(fds[0]);
    cr_assert_eq(cru_file_read_stream(dir, 9, &b), CRU_EINVAL, "a directory is no stream");
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

/* ---- cru_copy_tree ---- */

/* Writes TEXT to the test directory's REL with MODE (exactly: the umask is undone). */
static void put_file(const char *rel, const char *text, mode_t mode)
{
    cr_assert_eq(cru_file_write_atomic(in_dir(rel), text, strlen(text), mode), 0, "%s: %s", rel,
                 cru_err_msg());
    cr_assert_eq(chmod(in_dir(rel), mode), 0);
}

static void expect_copy(const char *rel, const char *text, mode_t mode)
{
    struct stat st;
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(lstat(in_dir(rel), &st), 0, "%s is missing", rel);
    cr_expect(S_ISREG(st.st_mode), "%s: a regular file", rel);
    cr_expect_eq(st.st_mode & 07777, mode, "%s: mode %o, expected %o", rel, st.st_mode & 07777,
                 mode);
    cr_assert_eq(cru_file_read(in_dir(rel), 1 << 20, &b), 0, "%s: %s", rel, cru_err_msg());
    cr_expect_str_eq(cru_buf_cstr(&b), text, "%s", rel);
    cr_expect_eq(b.len, strlen(text));
    cru_buf_free(&b);
}

static void expect_dir(const char *rel, mode_t mode)
{
    struct stat st;
    cr_assert_eq(lstat(in_dir(rel), &st), 0, "%s is missing", rel);
    cr_expect(S_ISDIR(st.st_mode), "%s: a folder", rel);
    cr_expect_eq(st.st_mode & 07777, mode, "%s: mode %o, expected %o", rel, st.st_mode & 07777,
                 mode);
}

/* REL is a symlink (not what it points at) whose target string is TARGET. */
static void expect_link(const char *rel, const char *target)
{
    struct stat st;
    char got[4096];
    cr_assert_eq(lstat(in_dir(rel), &st), 0, "%s is missing", rel);
    cr_assert(S_ISLNK(st.st_mode), "%s must be copied as a link (mode %o)", rel, st.st_mode);
    ssize_t n = readlink(in_dir(rel), got, sizeof(got) - 1);
    cr_assert_geq(n, 0);
    got[n] = '\0';
    cr_expect_str_eq(got, target, "%s", rel);
}

static bool present(const char *rel)
{
    struct stat st;
    return lstat(in_dir(rel), &st) == 0;
}

/* src/: files of several modes, nested folders of their own modes, an empty folder, and links:
 * absolute to a file and to a folder outside, relative inside, dangling. */
static void make_src_tree(void)
{
    cr_assert_eq(mkdir(in_dir("src"), 0755), 0);
    cr_assert_eq(cru_mkdir_p(in_dir("src/sub/deeper/deepest"), 0755), 0);
    cr_assert_eq(mkdir(in_dir("src/empty"), 0755), 0);
    put_file("src/a.txt", "alpha\n", 0640);
    put_file("src/run.sh", "#!/bin/sh\necho hi\n", 0755);
    put_file("src/zero", "", 0600);
    put_file("src/sub/b.txt", "bravo\n", 0444);
    put_file("src/sub/deeper/deepest/c.txt", "charlie\n", 0604);
    cr_assert_eq(symlink("/etc/passwd", in_dir("src/passwd")), 0);
    cr_assert_eq(symlink("/etc", in_dir("src/etc")), 0);
    cr_assert_eq(symlink("../a.txt", in_dir("src/sub/rel")), 0);
    cr_assert_eq(symlink("no/such/target", in_dir("src/dangling")), 0);
    cr_assert_eq(chmod(in_dir("src/sub"), 0750), 0);
    cr_assert_eq(chmod(in_dir("src/sub/deeper"), 0711), 0);
    cr_assert_eq(chmod(in_dir("src/empty"), 0700), 0);
    cr_assert_eq(chmod(in_dir("src"), 0751), 0);
}

Test(fs, copy_tree_copies_files_modes_folders_and_links)
{
    make_src_tree();
    put_file("src/shared", "for all\n", 0666);
    /* Modes must be set, not left to the umask: a strict one shows the difference. */
    umask(077);
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 1 << 20, 0), 0, "%s", cru_err_msg());

    expect_dir("dest", 0751);
    expect_dir("dest/sub", 0750);
    expect_dir("dest/sub/deeper", 0711);
    expect_dir("dest/sub/deeper/deepest", 0755);
    expect_dir("dest/empty", 0700);
    expect_copy("dest/a.txt", "alpha\n", 0640);
    expect_copy("dest/run.sh", "#!/bin/sh\necho hi\n", 0755);
    expect_copy("dest/zero", "", 0600);
    expect_copy("dest/shared", "for all\n", 0666);
    expect_copy("dest/sub/b.txt", "bravo\n", 0444);
    expect_copy("dest/sub/deeper/deepest/c.txt", "charlie\n", 0604);
    expect_link("dest/sub/rel", "../a.txt");
    expect_link("dest/dangling", "no/such/target");

    /* The links to the host are links still, with the same target strings, and not copies of
     * what they point at: the control is that following them would have found that content. */
    expect_link("dest/passwd", "/etc/passwd");
    expect_link("dest/etc", "/etc");
    struct stat followed;
    cr_assert_eq(stat(in_dir("dest/passwd"), &followed), 0);
    cr_assert(S_ISREG(followed.st_mode) && followed.st_size > 0,
              "control: the link does lead to /etc/passwd's content");

    /* Nothing else came along, and the copy is a copy: writing it leaves the source alone. */
    DIR *d = opendir(in_dir("dest"));
    cr_assert_not_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    cr_expect_eq(n, 9, "dest holds a.txt run.sh zero shared sub empty passwd etc dangling: %d", n);
    struct stat s, c;
    cr_assert_eq(stat(in_dir("src/a.txt"), &s), 0);
    cr_assert_eq(stat(in_dir("dest/a.txt"), &c), 0);
    cr_expect_neq(s.st_ino, c.st_ino, "a copy, not a hard link");
    cr_assert_eq(cru_file_write_atomic(in_dir("dest/a.txt"), "changed", 7, 0640), 0);
    expect_copy("src/a.txt", "alpha\n", 0640);
}

/* An artifact frozen for judging: bytes only. Links that lead out, dangle or climb through
 * another link are left out; caches too; modes say only whether a file runs. The control is
 * the same tree copied plainly, which keeps them all. */
Test(fs, copy_tree_freeze_keeps_bytes_only)
{
    make_src_tree();
    put_file("src/setid", "x", 0644);
    cr_assert_eq(chmod(in_dir("src/setid"), 06755), 0);
    cr_assert_eq(mkdir(in_dir("src/__pycache__"), 0755), 0);
    put_file("src/__pycache__/m.cpython-311.pyc", "bytecode", 0644);
    put_file("src/sub/old.pyc", "bytecode", 0644);
    put_file("src/keep.py", "print(1)\n", 0600);
    cr_assert_eq(symlink(".", in_dir("src/self")), 0);
    cr_assert_eq(symlink("self/..", in_dir("src/up")), 0);       /* the kernel climbs out */
    cr_assert_eq(symlink("sub/../a.txt", in_dir("src/via")), 0); /* stays inside */
    cr_assert_eq(symlink("../../..", in_dir("src/sub/deeper/out")), 0);

    int fd = open(in_dir("src"), O_RDONLY | O_DIRECTORY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(cru_copy_tree_bounded(fd, "src", in_dir("plain"), 1 << 20, 0, 0), 0, "%s",
                 cru_err_msg());
    cr_assert_eq(cru_copy_tree_bounded(fd, "src", in_dir("dest"), 1 << 20, 0,
                                       CRU_COPY_FREEZE | CRU_COPY_NO_CACHES),
                 0, "%s", cru_err_msg());

    cr_expect(present("plain/passwd") && present("plain/up") && present("plain/dangling") &&
                  present("plain/__pycache__") && present("plain/sub/old.pyc"),
              "control: a plain copy keeps links out, dangling links and caches");
    expect_dir("dest", 0755);
    expect_dir("dest/sub/deeper", 0755);
    expect_copy("dest/a.txt", "alpha\n", 0644);
    expect_copy("dest/run.sh", "#!/bin/sh\necho hi\n", 0755);
    expect_copy("dest/setid", "x", 0755);
    expect_copy("dest/keep.py", "print(1)\n", 0644);
    expect_link("dest/sub/rel", "../a.txt");
    expect_link("dest/via", "sub/../a.txt");
    expect_link("dest/self", ".");
    cr_expect(!present("dest/passwd") && !present("dest/etc"), "absolute links left out");
    cr_expect(!present("dest/dangling"), "a dangling link left out");
    cr_expect(!present("dest/up"), "a link climbing out through another link left out");
    cr_expect(!present("dest/sub/deeper/out"), "a link climbing out with .. left out");
    cr_expect(!present("dest/__pycache__") && !present("dest/sub/old.pyc"), "caches left out");

    /* Bounded entries: one too few is CRU_ELIMIT and leaves nothing. */
    cr_expect_eq(cru_copy_tree_bounded(fd, "src", in_dir("few"), 1 << 20, 5, 0), CRU_ELIMIT);
    cr_expect(strstr(cru_err_msg(), "entries") != NULL, "%s", cru_err_msg());
    cr_expect(!present("few"));
    close(fd);
}

Test(fs, copy_tree_refuses_an_existing_destination_and_leaves_it)
{
    make_src_tree();
    cr_assert_eq(mkdir(in_dir("dest"), 0700), 0);
    put_file("dest/keep", "mine\n", 0600);
    cru_err_clear();
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 1 << 20, 0), CRU_EEXIST, "%s",
                 cru_err_msg());
    cr_expect_neq(cru_err_msg()[0], '\0');
    expect_copy("dest/keep", "mine\n", 0600);
    expect_dir("dest", 0700);
    cr_expect(!present("dest/a.txt") && !present("dest/sub"), "nothing copied into it");

    /* A file, and a dangling link (which mkdir would not follow, but which is still there). */
    put_file("file", "f\n", 0644);
    cr_expect_eq(cru_copy_tree(in_dir("src"), in_dir("file"), 1 << 20, 0), CRU_EEXIST);
    expect_copy("file", "f\n", 0644);
    cr_assert_eq(symlink("nowhere", in_dir("link")), 0);
    cr_expect_eq(cru_copy_tree(in_dir("src"), in_dir("link"), 1 << 20, 0), CRU_EEXIST);
    expect_link("link", "nowhere");
    cr_expect(!present("nowhere"), "the link was not followed");

    /* The control: a fresh name works. */
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("fresh"), 1 << 20, 0), 0, "%s", cru_err_msg());
    expect_copy("fresh/a.txt", "alpha\n", 0640);
}

/* Anything but files, folders and links is refused, deep in the tree, after much was copied:
 * and then nothing of the copy remains. */
Test(fs, copy_tree_refuses_a_fifo_and_leaves_nothing)
{
    make_src_tree();
    cr_assert_eq(mkfifo(in_dir("src/sub/deeper/deepest/pipe"), 0644), 0);
    cru_err_clear();
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 1 << 20, 0), CRU_EUNSAFE, "%s",
                 cru_err_msg());
    cr_expect(strstr(cru_err_msg(), "pipe") != NULL, "the message names the entry: %s",
              cru_err_msg());
    cr_expect(!present("dest"), "no partial copy may remain");
    cr_expect_eq(count_entries(), 1, "nothing but src in the test directory");

    /* A character device (made on the host, so root: tests run as root). */
    cr_assert_eq(unlink(in_dir("src/sub/deeper/deepest/pipe")), 0);
    cr_assert_eq(mknod(in_dir("src/sub/null"), S_IFCHR | 0666, makedev(1, 3)), 0);
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 1 << 20, 0), CRU_EUNSAFE, "%s",
                 cru_err_msg());
    cr_expect(!present("dest"));

    /* The control: the same tree without them copies. */
    cr_assert_eq(unlink(in_dir("src/sub/null")), 0);
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 1 << 20, 0), 0, "%s", cru_err_msg());
    expect_copy("dest/sub/deeper/deepest/c.txt", "charlie\n", 0604);
}

Test(fs, copy_tree_bounds_the_bytes_and_leaves_nothing)
{
    char block[600];
    memset(block, 'x', sizeof(block) - 1);
    block[sizeof(block) - 1] = '\0'; /* 599 bytes */
    cr_assert_eq(cru_mkdir_p(in_dir("src/a/b"), 0755), 0);
    put_file("src/one", block, 0644);
    put_file("src/a/b/two", block, 0644);
    put_file("src/a/three", "12", 0644); /* 599 + 599 + 2 = 1200 bytes in all */

    cru_err_clear();
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 1199, 0), CRU_ELIMIT, "%s",
                 cru_err_msg());
    cr_expect_neq(cru_err_msg()[0], '\0');
    cr_expect(!present("dest"), "no partial copy may remain");
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 1000, 0), CRU_ELIMIT);
    cr_expect(!present("dest"));
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 0, 0), CRU_ELIMIT);
    cr_expect(!present("dest"));
    cr_expect_eq(count_entries(), 1, "nothing but src in the test directory");

    /* Exactly the bound is fine. */
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 1200, 0), 0, "%s", cru_err_msg());
    expect_copy("dest/a/b/two", block, 0644);
    expect_copy("dest/a/three", "12", 0644);
}

Test(fs, copy_tree_bounds_the_depth)
{
    char rel[4096] = "src";
    cr_assert_eq(mkdir(in_dir(rel), 0755), 0);
    for (int i = 0; i < 300; i++) {
        strcat(rel, "/d");
        cr_assert_eq(mkdir(in_dir(rel), 0755), 0);
    }
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 1 << 20, 0), CRU_ELIMIT, "%s",
                 cru_err_msg());
    cr_expect(!present("dest"), "no partial copy may remain");
}

Test(fs, copy_tree_of_a_single_file_or_nothing)
{
    put_file("file", "f\n", 0640);
    cr_assert_eq(cru_copy_tree(in_dir("file"), in_dir("dest"), 1 << 20, 0), 0, "%s", cru_err_msg());
    struct stat st;
    cr_assert_eq(lstat(in_dir("dest"), &st), 0);
    cr_expect(S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0640);
    cr_expect_eq(cru_copy_tree(in_dir("file"), in_dir("dest2"), 1, 0), CRU_ELIMIT);
    cr_expect(!present("dest2"));
    cr_expect_eq(cru_copy_tree(in_dir("missing"), in_dir("dest3"), 1 << 20, 0), CRU_ENOENT);
    cr_expect(!present("dest3"));
}

/* SRC itself a link to a folder is copied as the link, like every link below it, never as the
 * folder it names (a copy of a host folder). The control: the link does lead to a folder. */
Test(fs, copy_tree_of_a_link_copies_the_link)
{
    make_src_tree();
    cr_assert_eq(symlink(in_dir("src"), in_dir("to-src")), 0);
    struct stat st;
    cr_assert(stat(in_dir("to-src"), &st) == 0 && S_ISDIR(st.st_mode), "control");
    cr_assert_eq(cru_copy_tree(in_dir("to-src"), in_dir("dest"), 1 << 20, 0), 0, "%s",
                 cru_err_msg());
    expect_link("dest", in_dir("src"));
    cr_assert_eq(symlink("/etc", in_dir("etc")), 0);
    cr_assert_eq(cru_copy_tree(in_dir("etc"), in_dir("dest2"), 1 << 20, 0), 0, "%s", cru_err_msg());
    expect_link("dest2", "/etc");
}

/* CRU_COPY_NO_LINKS refuses a link anywhere in the tree and leaves nothing. */
Test(fs, copy_tree_can_refuse_links)
{
    make_src_tree();
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 1 << 20, CRU_COPY_NO_LINKS),
                 CRU_EUNSAFE);
    cr_expect(strstr(cru_err_msg(), "symbolic link") != NULL, "%s", cru_err_msg());
    cr_expect(!present("dest"));
    cr_assert_eq(mkdir(in_dir("plain"), 0755), 0);
    put_file("plain/a.txt", "alpha\n", 0644);
    cr_assert_eq(cru_copy_tree(in_dir("plain"), in_dir("dest"), 1 << 20, CRU_COPY_NO_LINKS), 0,
                 "%s", cru_err_msg());
    cr_expect(present("dest/a.txt"));
}

/* From a descriptor: a folder as cru_copy_tree copies it, and a file from its start whatever
 * was read of it before. */
Test(fs, copy_tree_from_a_descriptor)
{
    make_src_tree();
    int fd = open(in_dir("src"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(cru_copy_tree_fd(fd, "src", in_dir("dest"), 1 << 20, 0), 0, "%s", cru_err_msg());
    cr_expect_eq(cru_copy_tree_fd(fd, "src", in_dir("dest"), 1 << 20, 0), CRU_EEXIST);
    close(fd);
    expect_link("dest/passwd", "/etc/passwd");
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(in_dir("dest/sub/deeper/deepest/c.txt"), 100, &b), 0);
    cr_expect_str_eq(cru_buf_cstr(&b), "charlie\n");
    cru_buf_reset(&b);

    fd = open(in_dir("src/a.txt"), O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    char c;
    cr_assert_eq(read(fd, &c, 1), 1);
    cr_assert_eq(cru_copy_tree_fd(fd, "a.txt", in_dir("a-copy"), 1 << 20, 0), 0, "%s",
                 cru_err_msg());
    cr_expect_eq(cru_copy_tree_fd(fd, "a.txt", in_dir("small"), 3, 0), CRU_ELIMIT);
    cr_expect(!present("small"));
    close(fd);
    cr_assert_eq(cru_file_read(in_dir("a-copy"), 100, &b), 0);
    cr_expect_str_eq(cru_buf_cstr(&b), "alpha\n");
    struct stat st;
    cr_expect(stat(in_dir("a-copy"), &st) == 0 && (st.st_mode & 0777) == 0640);
    cru_buf_free(&b);
}

/* The copy crosses file systems: an image's workspace lives with the images, an episode's
 * workspace on a tmpfs (/run, /dev/shm) or another disk. copy_file_range() refuses some such
 * pairs (EXDEV, e.g. ext4 to tmpfs on Linux 5.19 and later), where it falls back to read and
 * write. */
Test(fs, copy_tree_across_file_systems)
{
    char other[] = "/dev/shm/crucible-test-fs-XXXXXX";
    cr_assert_not_null(mkdtemp(other));
    struct stat a, b;
    cr_assert_eq(stat(dir, &a), 0);
    cr_assert_eq(stat(other, &b), 0);
    if (a.st_dev == b.st_dev) {
        rmdir(other);
        cr_skip_test("%s and %s are on the same file system", dir, other);
    }
    cr_assert_eq(mkdir(in_dir("src"), 0755), 0);
    put_file("src/a.txt", "alpha\n", 0640);
    char dest[128];
    snprintf(dest, sizeof(dest), "%s/dest", other);
    int rc = cru_copy_tree(in_dir("src"), dest, 1 << 20, 0);
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", cru_err_msg());
    struct cru_buf got = CRU_BUF_INIT;
    char file[160];
    snprintf(file, sizeof(file), "%s/a.txt", dest);
    int read_rc = rc == 0 ? cru_file_read(file, 1 << 10, &got) : rc;
    cru_remove_tree(other);
    cr_assert_eq(rc, 0, "%s", msg);
    cr_assert_eq(read_rc, 0);
    cr_expect_str_eq(cru_buf_cstr(&got), "alpha\n");
    cru_buf_free(&got);
}

Test(fs, copy_tree_can_leave_special_files_out)
{
    cr_assert_eq(mkdir(in_dir("src"), 0755), 0);
    put_file("src/a.txt", "alpha\n", 0644);
    cr_assert_eq(mkfifo(in_dir("src/pipe"), 0644), 0);
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 1 << 20, 0), CRU_EUNSAFE);
    cr_assert_eq(cru_copy_tree(in_dir("src"), in_dir("dest"), 1 << 20, CRU_COPY_SKIP_SPECIAL), 0,
                 "%s", cru_err_msg());
    cr_expect(present("dest/a.txt"));
    cr_expect(!present("dest/pipe"));
}

Test(fs, manifest_lists_digests_and_changes_with_content)
{
    cr_assert_eq(cru_mkdir_p(in_dir("t/sub"), 0755), 0);
    cr_assert_eq(cru_file_write_atomic(in_dir("t/a.txt"), "hello", 5, 0644), 0);
    cr_assert_eq(cru_file_write_atomic(in_dir("t/sub/b.txt"), "", 0, 0644), 0);
    cr_assert_eq(symlink("a.txt", in_dir("t/link")), 0);
    struct cru_manifest m;
    cr_assert_eq(cru_manifest_make(in_dir("t"), 100, 1 << 20, &m), 0, "%s", cru_err_msg());
    cr_assert_eq(m.n, 4);
    const char *want[] = { "a.txt", "link", "sub", "sub/b.txt" };
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_eq(m.v[i].path, want[i]);
    const struct cru_manifest_entry *a = cru_manifest_find(&m, "a.txt");
    cr_assert_not_null(a);
    cr_assert_eq(a->type, 'f');
    cr_assert_eq(a->size, 5);
    uint8_t hello[32];
    cru_sha256("hello", 5, hello);
    cr_assert_eq(memcmp(a->sha256, hello, 32), 0);
    cr_assert_eq(cru_manifest_find(&m, "link")->type, 'l');
    cr_assert_null(cru_manifest_find(&m, "missing"));
    uint8_t d1[32], d2[32];
    cru_manifest_digest(&m, d1);
    cru_manifest_free(&m);

    /* One byte changed: another digest. */
    cr_assert_eq(cru_file_write_atomic(in_dir("t/a.txt"), "hellO", 5, 0644), 0);
    cr_assert_eq(cru_manifest_make(in_dir("t"), 100, 1 << 20, &m), 0);
    cru_manifest_digest(&m, d2);
    cr_assert_neq(memcmp(d1, d2, 32), 0);
    cru_manifest_free(&m);

    /* Bounds. */
    cr_assert_eq(cru_manifest_make(in_dir("t"), 2, 1 << 20, &m), CRU_ELIMIT);
    cr_assert_eq(cru_manifest_make(in_dir("t"), 100, 3, &m), CRU_ELIMIT);
}
