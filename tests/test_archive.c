/* Tests for lib/archive: hostile archives built here with libarchive's writer are refused with
 * nothing left behind and nothing written outside, and the attacks that aim outside do work
 * against a naive extraction (the positive controls); good archives extract completely. The
 * rootfs flag lets absolute symlinks through, and nothing else. */
#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "lib/archive.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "tests/fifo_util.h"

static char base[64];

static void make_base(void)
{
    strcpy(base, "/tmp/crucible-test-archive-XXXXXX");
    cr_assert_not_null(mkdtemp(base));
    char p[128];
    snprintf(p, sizeof(p), "%s/work", base);
    cr_assert_eq(mkdir(p, 0700), 0);
}

static void remove_base(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(archive, .init = make_base, .fini = remove_base);

static char *at(const char *name)
{
    static char p[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", base, name);
    return p[i];
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ---- building archives ---- */

enum fmt { PAX, PAX_GZ, ZIP, CPIO };

static struct archive *arc_new(const char *path, enum fmt f)
{
    struct archive *a = archive_write_new();
    cr_assert_not_null(a);
    if (f == ZIP)
        cr_assert_eq(archive_write_set_format_zip(a), ARCHIVE_OK);
    else if (f == CPIO)
        cr_assert_eq(archive_write_set_format_cpio_newc(a), ARCHIVE_OK);
    else
        cr_assert_eq(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    if (f == PAX_GZ)
        cr_assert_eq(archive_write_add_filter_gzip(a), ARCHIVE_OK);
    cr_assert_eq(archive_write_open_filename(a, path), ARCHIVE_OK, "%s", archive_error_string(a));
    return a;
}

static void arc_add(struct archive *a, const char *name, unsigned type, unsigned mode,
                    const char *data, size_t len, const char *link, const char *hardlink)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode);
    archive_entry_set_mtime(e, 1700000000, 0);
    archive_entry_set_size(e, type == AE_IFREG && !hardlink ? (la_int64_t)len : 0);
    if (link)
        archive_entry_set_symlink(e, link);
    if (hardlink)
        archive_entry_set_hardlink(e, hardlink);
    if (type == AE_IFCHR)
        archive_entry_set_rdev(e, makedev(1, 3));
    cr_assert_geq(archive_write_header(a, e), ARCHIVE_WARN, "%s: %s", name,
                  archive_error_string(a));
    if (len > 0 && !hardlink)
        cr_assert_eq(archive_write_data(a, data, len), (la_ssize_t)len);
    archive_entry_free(e);
}

static void arc_file(struct archive *a, const char *name, const char *data, unsigned mode)
{
    arc_add(a, name, AE_IFREG, mode, data, strlen(data), NULL, NULL);
}

static void arc_close(struct archive *a)
{
    cr_assert_eq(archive_write_close(a), ARCHIVE_OK, "%s", archive_error_string(a));
    archive_write_free(a);
}

/* ---- extracting ---- */

/* Leftover DEST.partial-* siblings in work/. */
static int partials(void)
{
    DIR *d = opendir(at("work"));
    struct dirent *e;
    int n = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, "dest.partial-", 13) == 0;
    closedir(d);
    return n;
}

static void expect_refused(const char *archive, const struct cru_archive_limits *lim, int code)
{
    struct cru_archive_limits def = CRU_ARCHIVE_LIMITS_INIT;
    cru_err_clear();
    int rc = cru_archive_extract(archive, at("work/dest"), lim ? lim : &def, NULL);
    cr_assert_eq(rc, code, "rc %s, expected %s: %s", cru_err_name(rc), cru_err_name(code),
                 cru_err_msg());
    cr_assert_neq(cru_err_msg()[0], '\0');
    cr_assert(!exists(at("work/dest")), "no destination after a failure");
    cr_assert_eq(partials(), 0, "no temporary tree may remain");
}

/* The control: libarchive with no secure flags and no checks, from inside work/naive. */
static void naive_extract(const char *archive)
{
    char old[512];
    cr_assert_not_null(getcwd(old, sizeof(old)));
    cr_assert_eq(mkdir(at("work/naive"), 0700), 0);
    cr_assert_eq(chdir(at("work/naive")), 0);
    struct archive *in = archive_read_new(), *out = archive_write_disk_new();
    archive_read_support_filter_all(in);
    archive_read_support_format_all(in);
    archive_write_disk_set_options(out, 0);
    cr_assert_eq(archive_read_open_filename(in, archive, 10240), ARCHIVE_OK);
    struct archive_entry *e;
    while (archive_read_next_header(in, &e) == ARCHIVE_OK) {
        if (archive_write_header(out, e) < ARCHIVE_WARN)
            continue;
        const void *buf;
        size_t size;
        la_int64_t off;
        while (archive_read_data_block(in, &buf, &size, &off) == ARCHIVE_OK)
            archive_write_data_block(out, buf, size, off);
        archive_write_finish_entry(out);
    }
    archive_read_free(in);
    archive_write_free(out);
    cr_assert_eq(chdir(old), 0);
}

/* ---- attacks aimed outside, each with its control ---- */

Test(archive, traversal_refused_and_control_escapes)
{
    struct archive *a = arc_new(at("t.tar"), PAX);
    arc_file(a, "ok", "fine", 0644);
    arc_file(a, "../evil", "pwned", 0644);
    arc_close(a);

    expect_refused(at("t.tar"), NULL, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), "../evil") != NULL, "%s", cru_err_msg());
    cr_assert(!exists(at("work/evil")) && !exists(at("evil")));

    naive_extract(at("t.tar"));
    cr_assert(exists(at("work/evil")), "control: the naive extraction writes outside");
}

Test(archive, absolute_refused_and_control_escapes)
{
    char target[128];
    snprintf(target, sizeof(target), "/tmp/crucible-test-archive-evil-%d", (int)getpid());
    unlink(target);
    struct archive *a = arc_new(at("a.tar"), PAX);
    arc_file(a, target, "pwned", 0644);
    arc_close(a);

    expect_refused(at("a.tar"), NULL, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), "absolute") != NULL, "%s", cru_err_msg());
    cr_assert(!exists(target));

    naive_extract(at("a.tar"));
    cr_assert(exists(target), "control: the naive extraction writes %s", target);
    unlink(target);
}

Test(archive, symlink_escape_refused_and_control_escapes)
{
    struct archive *a = arc_new(at("s.tar"), PAX);
    arc_add(a, "out", AE_IFLNK, 0777, NULL, 0, "../..", NULL);
    arc_file(a, "out/evil", "pwned", 0644);
    arc_close(a);

    /* From work/dest.partial-X, "../.." is the test's base directory. */
    expect_refused(at("s.tar"), NULL, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), "leaves the tree") != NULL, "%s", cru_err_msg());
    cr_assert(!exists(at("evil")));

    naive_extract(at("s.tar"));
    cr_assert(exists(at("evil")), "control: the naive extraction writes through the link");
}

Test(archive, zip_traversal_refused_and_control_escapes)
{
    struct archive *a = arc_new(at("t.zip"), ZIP);
    arc_file(a, "../evil", "pwned", 0644);
    arc_close(a);

    expect_refused(at("t.zip"), NULL, CRU_EUNSAFE);
    cr_assert(!exists(at("work/evil")));

    naive_extract(at("t.zip"));
    cr_assert(exists(at("work/evil")), "control: the naive extraction writes outside");
}

/* ---- links ---- */

Test(archive, symlink_absolute_target_refused)
{
    struct archive *a = arc_new(at("l.tar"), PAX);
    arc_add(a, "etc", AE_IFLNK, 0777, NULL, 0, "/etc", NULL);
    arc_close(a);
    expect_refused(at("l.tar"), NULL, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), "absolute") != NULL, "%s", cru_err_msg());
}

Test(archive, path_through_earlier_symlink_refused)
{
    struct archive *a = arc_new(at("l.tar"), PAX);
    arc_add(a, "sub", AE_IFDIR, 0755, NULL, 0, NULL, NULL);
    arc_add(a, "link", AE_IFLNK, 0777, NULL, 0, "sub", NULL);
    arc_file(a, "link/f", "through", 0644);
    arc_close(a);
    expect_refused(at("l.tar"), NULL, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), "link/f") != NULL, "%s", cru_err_msg());
}

/* Each link looks harmless alone: "y" is the root and "x" is "y/..", its parent. */
Test(archive, symlink_chain_escape_refused)
{
    struct archive *a = arc_new(at("l.tar"), PAX);
    arc_add(a, "y", AE_IFLNK, 0777, NULL, 0, ".", NULL);
    arc_add(a, "x", AE_IFLNK, 0777, NULL, 0, "y/..", NULL);
    arc_close(a);
    expect_refused(at("l.tar"), NULL, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), "outside") != NULL, "%s", cru_err_msg());
}

Test(archive, hardlink_escapes_refused)
{
    struct stat before, after;
    cr_assert_eq(stat("/etc/passwd", &before), 0);
    struct archive *a = arc_new(at("h1.tar"), PAX);
    arc_add(a, "pw", AE_IFREG, 0644, NULL, 0, NULL, "/etc/passwd");
    arc_close(a);
    expect_refused(at("h1.tar"), NULL, CRU_EUNSAFE);
    cr_assert_eq(stat("/etc/passwd", &after), 0);
    cr_assert_eq(after.st_nlink, before.st_nlink, "no new link to /etc/passwd");

    cr_assert_eq(cru_file_write_atomic(at("work/x"), "outside", 7, 0644), 0);
    a = arc_new(at("h2.tar"), PAX);
    arc_add(a, "x", AE_IFREG, 0644, NULL, 0, NULL, "../x");
    arc_close(a);
    expect_refused(at("h2.tar"), NULL, CRU_EUNSAFE);
    cr_assert_eq(stat(at("work/x"), &after), 0);
    cr_assert_eq(after.st_nlink, 1);

    /* In the tree, but not a regular file extracted earlier. */
    a = arc_new(at("h3.tar"), PAX);
    arc_add(a, "d", AE_IFDIR, 0755, NULL, 0, NULL, NULL);
    arc_add(a, "h", AE_IFREG, 0644, NULL, 0, NULL, "d");
    arc_close(a);
    expect_refused(at("h3.tar"), NULL, CRU_EUNSAFE);
}

/* ---- types and modes ---- */

Test(archive, device_fifo_setuid_refused)
{
    struct archive *a = arc_new(at("dev.tar"), PAX);
    arc_add(a, "null", AE_IFCHR, 0666, NULL, 0, NULL, NULL);
    arc_close(a);
    expect_refused(at("dev.tar"), NULL, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), "device") != NULL, "%s", cru_err_msg());

    a = arc_new(at("fifo.tar"), PAX);
    arc_add(a, "p", AE_IFIFO, 0644, NULL, 0, NULL, NULL);
    arc_close(a);
    expect_refused(at("fifo.tar"), NULL, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), "FIFO") != NULL, "%s", cru_err_msg());

    a = arc_new(at("suid.tar"), PAX);
    arc_file(a, "su", "#!/bin/sh\n", 04755);
    arc_close(a);
    expect_refused(at("suid.tar"), NULL, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), "setuid") != NULL, "%s", cru_err_msg());

    a = arc_new(at("sgid.tar"), PAX);
    arc_file(a, "sg", "x", 02755);
    arc_close(a);
    expect_refused(at("sgid.tar"), NULL, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), "setgid") != NULL, "%s", cru_err_msg());
}

/* The archive itself a FIFO with no writer (a workspace tarball swapped after the image was
 * checked): refused at once, where libarchive's own open waited for ever. A zip, which is read
 * by seeking, extracts from the same name as a regular file: the control. */
Test(archive, a_fifo_archive_is_refused_without_blocking)
{
    struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
    struct archive *a = arc_new(at("ws.zip"), ZIP);
    arc_file(a, "ok.txt", "fine\n", 0644);
    arc_close(a);
    cr_assert_eq(cru_archive_extract(at("ws.zip"), at("work/dest"), &lim, NULL), 0, "%s",
                 cru_err_msg());
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(at("work/dest/ok.txt"), 64, &b), 0, "%s", cru_err_msg());
    cr_assert_str_eq(cru_buf_cstr(&b), "fine\n");
    cru_buf_free(&b);
    cr_assert_eq(cru_remove_tree(at("work/dest")), 0);

    struct timespec t0 = fifo_swap(at("ws.zip"));
    int rc = cru_archive_extract(at("ws.zip"), at("work/dest"), &lim, NULL);
    fifo_done(t0, rc, at("ws.zip"));
    cr_assert(!exists(at("work/dest")), "no destination after a failure");
    cr_assert_eq(partials(), 0, "no temporary tree may remain");
}

/* ---- bounds ---- */

Test(archive, gzip_bomb_stops_at_the_cap)
{
    size_t chunk = 1 << 20;
    char *zeros = calloc(1, chunk);
    struct archive *a = arc_new(at("bomb.tar.gz"), PAX_GZ);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, "zeros");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 64 * (la_int64_t)chunk);
    cr_assert_eq(archive_write_header(a, e), ARCHIVE_OK);
    for (int i = 0; i < 64; i++)
        cr_assert_eq(archive_write_data(a, zeros, chunk), (la_ssize_t)chunk);
    archive_entry_free(e);
    arc_close(a);
    free(zeros);
    struct stat st;
    cr_assert_eq(stat(at("bomb.tar.gz"), &st), 0);
    cr_assert_lt(st.st_size, 1 << 20, "the bomb is small on disk");

    struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
    lim.max_bytes = 1 << 20;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_refused(at("bomb.tar.gz"), &lim, CRU_ELIMIT);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert(strstr(cru_err_msg(), "max_bytes") != NULL, "%s", cru_err_msg());
    cr_assert_lt(t1.tv_sec - t0.tv_sec, 2, "stops at the cap, not after inflating it all");

    /* The control: the same archive within a bound that fits extracts whole. */
    lim.max_bytes = 64 << 20;
    struct cru_archive_stats s;
    cr_assert_eq(cru_archive_extract(at("bomb.tar.gz"), at("work/dest"), &lim, &s), 0, "%s",
                 cru_err_msg());
    cr_assert_eq(s.bytes, 64u << 20);
}

Test(archive, too_many_entries)
{
    struct archive *a = arc_new(at("many.tar"), PAX);
    char name[32];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        arc_file(a, name, "x", 0644);
    }
    arc_close(a);
    struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
    lim.max_entries = 10;
    expect_refused(at("many.tar"), &lim, CRU_ELIMIT);
    cr_assert(strstr(cru_err_msg(), "max_entries") != NULL, "%s", cru_err_msg());
    lim.max_entries = 20;
    cr_assert_eq(cru_archive_extract(at("many.tar"), at("work/dest"), &lim, NULL), 0);
}

Test(archive, path_too_long)
{
    char name[301];
    memset(name, 'a', 300);
    name[300] = '\0';
    for (int i = 50; i < 300; i += 50)
        name[i] = '/';
    struct archive *a = arc_new(at("long.tar"), PAX);
    arc_file(a, name, "x", 0644);
    arc_close(a);
    struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
    lim.max_path = 200;
    expect_refused(at("long.tar"), &lim, CRU_ELIMIT);
    cr_assert(strstr(cru_err_msg(), "max_path") != NULL, "%s", cru_err_msg());
}

Test(archive, truncated_archive_is_a_parse_error)
{
    struct archive *a = arc_new(at("full.tar"), PAX);
    char data[8192];
    memset(data, 'z', sizeof(data));
    data[sizeof(data) - 1] = '\0';
    arc_file(a, "one", data, 0644);
    arc_file(a, "two", data, 0644);
    arc_close(a);
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(at("full.tar"), 1 << 20, &b), 0);
    cr_assert_eq(cru_file_write_atomic(at("cut.tar"), b.data, b.len / 2, 0644), 0);
    cru_buf_free(&b);
    expect_refused(at("cut.tar"), NULL, CRU_EPARSE);
    cr_assert(strstr(cru_err_msg(), "two") != NULL || strstr(cru_err_msg(), "one") != NULL, "%s",
              cru_err_msg());
}

/* ---- arguments ---- */

Test(archive, dest_must_not_exist_and_version_checked)
{
    struct archive *a = arc_new(at("ok.tar"), PAX);
    arc_file(a, "f", "x", 0644);
    arc_close(a);
    struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
    cr_assert_eq(mkdir(at("work/dest"), 0700), 0);
    cr_assert_eq(cru_archive_extract(at("ok.tar"), at("work/dest"), &lim, NULL), CRU_EEXIST);
    cr_assert(!exists(at("work/dest/f")));
    cr_assert_eq(rmdir(at("work/dest")), 0);
    lim.version = 99;
    cr_assert_eq(cru_archive_extract(at("ok.tar"), at("work/dest"), &lim, NULL), CRU_EINVAL);
    cr_assert(!exists(at("work/dest")));
    lim.version = CRU_ARCHIVE_LIMITS_VERSION;
    cr_assert_eq(cru_archive_extract(at("missing.tar"), at("work/dest"), &lim, NULL), CRU_ENOENT,
                 "%s", cru_err_msg());
    cr_assert(!exists(at("work/dest")) && partials() == 0);
}

/* ---- good archives ---- */

static void expect_file(const char *path, const char *content, unsigned mode)
{
    struct cru_buf b = CRU_BUF_INIT;
    struct stat st;
    cr_assert_eq(cru_file_read(path, 1 << 20, &b), 0, "%s: %s", path, cru_err_msg());
    cr_assert_str_eq(cru_buf_cstr(&b), content, "%s", path);
    cr_assert_eq(b.len, strlen(content));
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, mode, "%s: mode %o", path, st.st_mode & 07777);
    cru_buf_free(&b);
}

static void good_tree(enum fmt f, const char *name)
{
    struct archive *a = arc_new(at(name), f);
    arc_add(a, "./", AE_IFDIR, 0755, NULL, 0, NULL, NULL);
    arc_add(a, "a", AE_IFDIR, 0755, NULL, 0, NULL, NULL);
    arc_add(a, "a/b", AE_IFDIR, 0750, NULL, 0, NULL, NULL);
    arc_add(a, "a/b/c", AE_IFDIR, 01777, NULL, 0, NULL, NULL);
    arc_file(a, "a/f.txt", "hello\n", 0644);
    arc_file(a, "a/run.sh", "#!/bin/sh\necho hi\n", 0755);
    arc_file(a, "a/b/c/empty", "", 0644);
    arc_add(a, "a/b/ln", AE_IFLNK, 0777, NULL, 0, "../f.txt", NULL);
    if (f == PAX_GZ)
        arc_add(a, "a/hard", AE_IFREG, 0644, NULL, 0, NULL, "a/f.txt");
    arc_close(a);
}

Test(archive, good_tar_extracts_fully)
{
    good_tree(PAX_GZ, "good.tar.gz");
    struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
    struct cru_archive_stats s;
    const char *d = at("work/dest");
    cr_assert_eq(cru_archive_extract(at("good.tar.gz"), d, &lim, &s), 0, "%s", cru_err_msg());
    cr_assert_eq(partials(), 0);
    expect_file(at("work/dest/a/f.txt"), "hello\n", 0644);
    expect_file(at("work/dest/a/run.sh"), "#!/bin/sh\necho hi\n", 0755);
    expect_file(at("work/dest/a/b/c/empty"), "", 0644);
    expect_file(at("work/dest/a/b/ln"), "hello\n", 0644);
    char target[64] = "";
    cr_assert_eq(readlink(at("work/dest/a/b/ln"), target, sizeof(target) - 1), 8);
    cr_assert_str_eq(target, "../f.txt");
    struct stat f, h, st;
    cr_assert_eq(lstat(at("work/dest/a/f.txt"), &f), 0);
    cr_assert_eq(lstat(at("work/dest/a/hard"), &h), 0);
    cr_assert_eq(f.st_ino, h.st_ino, "the hardlink is the same file");
    cr_assert_eq(f.st_nlink, 2);
    cr_assert_eq(lstat(at("work/dest/a/b"), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0750);
    cr_assert_eq(lstat(at("work/dest/a/b/c"), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0777, "the sticky bit is dropped");
    cr_assert_eq(s.entries, 9);
    cr_assert_eq(s.files, 3);
    cr_assert_eq(s.dirs, 3);
    cr_assert_eq(s.links, 2);
    cr_assert_eq(s.bytes, 6 + 18);
}

/* From a descriptor: read from its start whatever was read of it before, and left open. */
Test(archive, extracts_from_a_descriptor)
{
    good_tree(PAX_GZ, "good.tar.gz");
    struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
    int fd = open(at("good.tar.gz"), O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    char c;
    cr_assert_eq(read(fd, &c, 1), 1);
    cr_assert_eq(cru_archive_extract_fd(fd, "good.tar.gz", at("work/dest"), &lim, NULL), 0, "%s",
                 cru_err_msg());
    expect_file(at("work/dest/a/f.txt"), "hello\n", 0644);
    cr_assert_eq(cru_archive_extract_fd(fd, "good.tar.gz", at("work/dest2"), &lim, NULL), 0,
                 "the descriptor is still open: %s", cru_err_msg());
    close(fd);
    cr_expect_eq(cru_archive_extract_fd(-1, "x", at("work/dest3"), &lim, NULL), CRU_EINVAL);
}

Test(archive, good_zip_and_cpio_extract)
{
    good_tree(ZIP, "good.zip");
    struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
    struct cru_archive_stats s;
    cr_assert_eq(cru_archive_extract(at("good.zip"), at("work/dest"), &lim, &s), 0, "%s",
                 cru_err_msg());
    expect_file(at("work/dest/a/f.txt"), "hello\n", 0644);
    expect_file(at("work/dest/a/run.sh"), "#!/bin/sh\necho hi\n", 0755);
    expect_file(at("work/dest/a/b/ln"), "hello\n", 0644);
    cr_assert_eq(s.files, 3);
    cr_assert_eq(s.bytes, 6 + 18);

    good_tree(CPIO, "good.cpio");
    cr_assert_eq(cru_archive_extract(at("good.cpio"), at("work/dest2"), &lim, &s), 0, "%s",
                 cru_err_msg());
    expect_file(at("work/dest2/a/f.txt"), "hello\n", 0644);
}

/* Watches the process's working directory while an extraction runs in another thread. */
struct cwd_watch {
    const char *start;
    volatile int done;
    int moved;
    long samples;
};

static void *watch_cwd(void *arg)
{
    struct cwd_watch *w = arg;
    char now[4096];
    while (!w->done) {
        if (getcwd(now, sizeof(now)) && strcmp(now, w->start) != 0)
            w->moved = 1;
        w->samples++;
    }
    return NULL;
}

Test(archive, working_directory_of_other_threads_never_moves)
{
    char *path = strdup(at("many.tar"));
    struct archive *a = arc_new(path, PAX);
    char name[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof(name), "d%d/f%d", i % 50, i);
        arc_file(a, name, "content\n", 0644);
    }
    arc_close(a);

    char start[4096];
    cr_assert_not_null(getcwd(start, sizeof(start)));
    struct cwd_watch w = { start, 0, 0, 0 };
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, watch_cwd, &w), 0);
    struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
    int rc = cru_archive_extract(path, at("many"), &lim, NULL);
    w.done = 1;
    pthread_join(t, NULL);
    cr_assert_eq(rc, 0, "%s", cru_err_msg());
    cr_expect_gt(w.samples, 0);
    cr_expect_not(w.moved, "another thread saw the working directory move during extraction");
    char after[4096];
    cr_assert_not_null(getcwd(after, sizeof(after)));
    cr_expect_str_eq(after, start);
    free(path);
}

/* ---- root filesystems: absolute symlinks allowed, nothing else relaxed ---- */

static struct cru_archive_limits rootfs_limits(void)
{
    struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
    lim.rootfs = true;
    return lim;
}

static void expect_symlink(const char *path, const char *target)
{
    struct stat st;
    char got[512];
    cr_assert_eq(lstat(path, &st), 0, "%s is missing", path);
    cr_assert(S_ISLNK(st.st_mode), "%s is not a symlink (mode %o)", path, st.st_mode);
    ssize_t n = readlink(path, got, sizeof(got) - 1);
    cr_assert_geq(n, 0);
    got[n] = '\0';
    cr_expect_str_eq(got, target, "%s", path);
}

/* A merged-/usr layout as distribution tarballs have it, with absolute links. */
static void rootfs_tree(const char *name)
{
    struct archive *a = arc_new(at(name), PAX_GZ);
    arc_add(a, "./", AE_IFDIR, 0755, NULL, 0, NULL, NULL);
    arc_add(a, "usr", AE_IFDIR, 0755, NULL, 0, NULL, NULL);
    arc_add(a, "usr/bin", AE_IFDIR, 0755, NULL, 0, NULL, NULL);
    arc_file(a, "usr/bin/y", "#!/bin/sh\necho y\n", 0755);
    arc_add(a, "usr/bin/x", AE_IFLNK, 0777, NULL, 0, "/usr/bin/y", NULL);
    arc_add(a, "bin", AE_IFLNK, 0777, NULL, 0, "/usr/bin", NULL);
    arc_add(a, "lib", AE_IFLNK, 0777, NULL, 0, "usr/lib", NULL);
    arc_add(a, "etc", AE_IFDIR, 0755, NULL, 0, NULL, NULL);
    arc_add(a, "etc/mtab", AE_IFLNK, 0777, NULL, 0, "/proc/self/mounts", NULL);
    arc_close(a);
}

Test(archive, rootfs_allows_absolute_symlinks_unchanged)
{
    rootfs_tree("rootfs.tar.gz");

    /* The default limits refuse the tarball, at its first absolute link, leaving nothing. */
    expect_refused(at("rootfs.tar.gz"), NULL, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), "absolute") != NULL, "%s", cru_err_msg());
    cr_assert(strstr(cru_err_msg(), "usr/bin/x") != NULL, "%s", cru_err_msg());

    struct cru_archive_limits lim = rootfs_limits();
    struct cru_archive_stats s;
    cr_assert_eq(cru_archive_extract(at("rootfs.tar.gz"), at("work/dest"), &lim, &s), 0, "%s",
                 cru_err_msg());
    cr_assert_eq(partials(), 0);
    expect_file(at("work/dest/usr/bin/y"), "#!/bin/sh\necho y\n", 0755);
    expect_symlink(at("work/dest/usr/bin/x"), "/usr/bin/y");
    expect_symlink(at("work/dest/bin"), "/usr/bin");
    expect_symlink(at("work/dest/lib"), "usr/lib");
    expect_symlink(at("work/dest/etc/mtab"), "/proc/self/mounts");
    cr_expect_eq(s.links, 4);
    cr_expect_eq(s.files, 1);
    cr_expect_eq(s.dirs, 3);
}

/* rootfs allows absolute links to exist, not to be written through: an entry below an
 * absolute link that names a host folder is still refused, and nothing reaches that folder.
 * The control: a naive extraction does write through it. */
Test(archive, rootfs_never_writes_through_an_absolute_symlink)
{
    char outside[512];
    snprintf(outside, sizeof(outside), "%s", at("outside"));
    cr_assert_eq(mkdir(outside, 0755), 0);
    struct archive *a = arc_new(at("through.tar"), PAX);
    arc_add(a, "bin", AE_IFLNK, 0777, NULL, 0, outside, NULL);
    arc_file(a, "bin/evil", "pwned", 0644);
    arc_close(a);

    struct cru_archive_limits lim = rootfs_limits();
    expect_refused(at("through.tar"), &lim, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), "bin/evil") != NULL, "%s", cru_err_msg());
    cr_assert(!exists(at("outside/evil")), "written through the link on the host");

    naive_extract(at("through.tar"));
    cr_assert(exists(at("outside/evil")), "control: the naive extraction writes through the link");
}

/* The flag relaxes absolute symlinks only: every other refusal stands. Each archive is first
 * shown to pass without its one bad entry (the control), then refused with it. */
static void rootfs_refuses(const char *name, void (*bad)(struct archive *), const char *why)
{
    struct cru_archive_limits lim = rootfs_limits();
    char good[64], dest[64];
    snprintf(good, sizeof(good), "good-%s", name);
    snprintf(dest, sizeof(dest), "work/good-%s", name);
    struct archive *a = arc_new(at(good), PAX);
    arc_file(a, "ok", "fine", 0644);
    arc_add(a, "abs", AE_IFLNK, 0777, NULL, 0, "/usr/bin/y", NULL);
    arc_close(a);
    cr_assert_eq(cru_archive_extract(at(good), at(dest), &lim, NULL), 0, "control %s: %s", name,
                 cru_err_msg());

    a = arc_new(at(name), PAX);
    arc_file(a, "ok", "fine", 0644);
    arc_add(a, "abs", AE_IFLNK, 0777, NULL, 0, "/usr/bin/y", NULL);
    bad(a);
    arc_close(a);
    expect_refused(at(name), &lim, CRU_EUNSAFE);
    cr_assert(strstr(cru_err_msg(), why) != NULL, "%s: %s", name, cru_err_msg());
}

static void bad_dotdot(struct archive *a)
{
    arc_file(a, "../evil", "pwned", 0644);
}

static void bad_dotdot_inside(struct archive *a)
{
    arc_file(a, "usr/../../evil", "pwned", 0644);
}

static void bad_absolute_path(struct archive *a)
{
    arc_file(a, "/tmp/crucible-test-archive-rootfs-evil", "pwned", 0644);
}

static void bad_device(struct archive *a)
{
    arc_add(a, "dev/null", AE_IFCHR, 0666, NULL, 0, NULL, NULL);
}

static void bad_fifo(struct archive *a)
{
    arc_add(a, "run/fifo", AE_IFIFO, 0644, NULL, 0, NULL, NULL);
}

static void bad_setuid(struct archive *a)
{
    arc_file(a, "usr/bin/su", "#!/bin/sh\n", 04755);
}

static void bad_relative_escape(struct archive *a)
{
    arc_add(a, "usr/up", AE_IFLNK, 0777, NULL, 0, "../../..", NULL);
}

static void bad_absolute_hardlink(struct archive *a)
{
    arc_add(a, "pw", AE_IFREG, 0644, NULL, 0, NULL, "/etc/passwd");
}

/* A distribution's tarball holds su and passwd (setuid) and setgid folders: as a root
 * filesystem they are unpacked without those bits, which would mean nothing inside the
 * sandbox and would make root-owned setuid files in the host's cache. Anywhere else they are
 * refused (the control). */
Test(archive, rootfs_drops_setuid_and_setgid_bits)
{
    struct cru_archive_limits lim = rootfs_limits();
    struct archive *a = arc_new(at("suid.tar"), PAX);
    arc_file(a, "ok", "fine", 0644);
    bad_setuid(a);
    arc_add(a, "var/mail", AE_IFDIR, 02775, NULL, 0, NULL, NULL);
    arc_close(a);
    cr_assert_eq(cru_archive_extract(at("suid.tar"), at("work/suid"), &lim, NULL), 0, "%s",
                 cru_err_msg());
    struct stat st;
    cr_assert_eq(lstat(at("work/suid/usr/bin/su"), &st), 0);
    cr_expect_eq(st.st_mode & 07777, 0755, "su unpacked with mode %o", st.st_mode & 07777);
    cr_assert_eq(lstat(at("work/suid/var/mail"), &st), 0);
    cr_expect_eq(st.st_mode & 07000, 0, "var/mail unpacked with mode %o", st.st_mode & 07777);

    struct cru_archive_limits plain = CRU_ARCHIVE_LIMITS_INIT;
    expect_refused(at("suid.tar"), &plain, CRU_EUNSAFE);
    cr_expect(strstr(cru_err_msg(), "setuid") != NULL, "%s", cru_err_msg());
}

Test(archive, rootfs_still_refuses_dotdot_devices_and_the_rest)
{
    rootfs_refuses("dotdot.tar", bad_dotdot, "../evil");
    cr_assert(!exists(at("work/evil")) && !exists(at("evil")));
    rootfs_refuses("dotdot-inside.tar", bad_dotdot_inside, "evil");
    rootfs_refuses("absolute.tar", bad_absolute_path, "absolute");
    cr_assert(!exists("/tmp/crucible-test-archive-rootfs-evil"));
    rootfs_refuses("device.tar", bad_device, "device");
    rootfs_refuses("fifo.tar", bad_fifo, "FIFO");
    rootfs_refuses("escape.tar", bad_relative_escape, "leaves the tree");
    rootfs_refuses("hardlink.tar", bad_absolute_hardlink, "hardlink");
}
