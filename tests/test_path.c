/* Tests for lib/path: joins that stay inside the root and refusals of every escape, and opens
 * beneath a folder that follow no link out of it. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/path.h"

static void joins(const char *root, const char *rel, const char *want)
{
    char *out = NULL;
    cr_assert_eq(cru_path_join(&out, root, rel), 0, "%s + %s: %s", root, rel, cru_err_msg());
    cr_assert_str_eq(out, want, "%s + %s", root, rel);
    free(out);
}

static void refuses(const char *rel, int code)
{
    char *out = NULL;
    cr_assert_eq(cru_path_join(&out, "/ws", rel), code, "'%s' must be refused", rel);
    cr_assert_null(out);
    cr_assert_neq(cru_err_msg()[0], '\0');
}

Test(path, joins_and_normalises)
{
    joins("/ws", "a/b.txt", "/ws/a/b.txt");
    joins("/ws/", "a//b/./c/", "/ws/a/b/c");
    joins("/ws", "", "/ws");
    joins("/ws", ".", "/ws");
    joins("/ws", "./././", "/ws");
    joins("/", "etc", "/etc");
    joins("/", "", "/");
    joins("rel/root", "x", "rel/root/x");
    joins("/ws", "..a/b..c/...", "/ws/..a/b..c/...");
    joins("/ws", "a\\..\\b", "/ws/a\\..\\b");
}

Test(path, refuses_escapes)
{
    refuses("..", CRU_EUNSAFE);
    refuses("../etc/passwd", CRU_EUNSAFE);
    refuses("a/../../etc", CRU_EUNSAFE);
    refuses("a/..", CRU_EUNSAFE);
    refuses("./..", CRU_EUNSAFE);
    refuses("a//..//b", CRU_EUNSAFE);
    refuses("/etc/passwd", CRU_EUNSAFE);
    refuses("//etc", CRU_EUNSAFE);
    cr_assert_str_eq(cru_err_msg(), "path '//etc' is absolute; a relative path is required");
    refuses("a/b/c/..", CRU_EUNSAFE);
    cr_assert_str_eq(cru_err_msg(), "path 'a/b/c/..' has a '..' component");
}

Test(path, refuses_overlong)
{
    char name[300];
    memset(name, 'n', 256);
    name[256] = '\0';
    refuses(name, CRU_ELIMIT);
    name[255] = '\0';
    char *out = NULL;
    cr_assert_eq(cru_path_join(&out, "/ws", name), 0, "255 bytes is a legal name");
    free(out);

    char *deep = malloc(CRU_PATH_MAX + 10);
    for (size_t i = 0; i < CRU_PATH_MAX + 8; i += 2)
        memcpy(deep + i, "d/", 2);
    deep[CRU_PATH_MAX + 8] = '\0';
    refuses(deep, CRU_ELIMIT);
    /* Under the limit alone, but over it once joined to the root. */
    deep[CRU_PATH_MAX - 2] = '\0';
    refuses(deep, CRU_ELIMIT);
    free(deep);

    cr_assert_eq(cru_path_join(&out, "", "a"), CRU_EINVAL);
}

Test(path, clean)
{
    char *out = NULL;
    cr_assert_eq(cru_path_clean(&out, "a/./b//"), 0);
    cr_assert_str_eq(out, "a/b");
    free(out);
    cr_assert_eq(cru_path_clean(&out, "/a"), CRU_EUNSAFE);
}

/* ---- opening beneath a folder ---- */

static char top[64]; /* a fresh folder: root/ (the folder opened beneath) and outside/ */
static int rootfd = -1;

static void beneath_setup(void)
{
    char cmd[512];
    snprintf(top, sizeof(top), "/tmp/crucible-test-path-XXXXXX");
    cr_assert_not_null(mkdtemp(top));
    snprintf(cmd, sizeof(cmd),
             "set -e; cd %s; mkdir -p root/sub/deeper outside; echo inside > root/sub/file; "
             "echo secret > outside/secret; chmod 600 outside/secret; "
             "ln -s sub/file root/in-link; ln -s ../../sub root/sub/deeper/up; "
             "ln -s %s/outside root/abs; ln -s ../outside root/rel; "
             "ln -s ../../outside/secret root/sub/far; ln -s loop root/loop; "
             "ln -s /proc/self/root root/magic",
             top, top);
    cr_assert_eq(system(cmd), 0);
    char p[128];
    snprintf(p, sizeof(p), "%s/root", top);
    rootfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(rootfd, 0);
}

static void beneath_teardown(void)
{
    char cmd[128];
    close(rootfd);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
    (void)!system(cmd);
}

TestSuite(beneath, .init = beneath_setup, .fini = beneath_teardown);

typedef int (*opener)(int *, int, const char *, int);

/* What REL opens to with OPEN: its first line, or "" for a folder. */
static void reads(opener open_fn, const char *rel, int flags, const char *want)
{
    int fd = -1;
    char buf[64] = "";
    cr_assert_eq(open_fn(&fd, rootfd, rel, flags), 0, "'%s': %s", rel, cru_err_msg());
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    if (S_ISREG(st.st_mode)) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        cr_assert_geq(n, 0);
        buf[n] = '\0';
    }
    close(fd);
    cr_expect_str_eq(buf, want, "'%s'", rel);
}

static void refused(opener open_fn, const char *rel, int flags, int code, const char *why)
{
    int fd = 42;
    cr_expect_eq(open_fn(&fd, rootfd, rel, flags), code, "'%s' must be refused: %s", rel,
                 cru_err_msg());
    cr_expect_eq(fd, -1, "'%s'", rel);
    cr_expect(strstr(cru_err_msg(), why) != NULL, "'%s': %s (wanted %s)", rel, cru_err_msg(), why);
}

/* openat2: links that stay beneath the folder are followed; every way out is refused. The
 * control: a plain openat of the same names does reach the file outside. */
Test(beneath, open_follows_links_inside_and_refuses_every_way_out)
{
    reads(cru_path_open_beneath, "sub/file", O_RDONLY, "inside\n");
    reads(cru_path_open_beneath, "./sub//file", O_RDONLY, "inside\n");
    reads(cru_path_open_beneath, "in-link", O_RDONLY, "inside\n");
    reads(cru_path_open_beneath, "sub/deeper/up/file", O_RDONLY, "inside\n");
    reads(cru_path_open_beneath, "", O_RDONLY | O_DIRECTORY, "");
    reads(cru_path_open_beneath, "sub", O_PATH, "");

    refused(cru_path_open_beneath, "abs/secret", O_RDONLY, CRU_EUNSAFE, "leads out");
    refused(cru_path_open_beneath, "abs", O_RDONLY | O_DIRECTORY, CRU_EUNSAFE, "leads out");
    refused(cru_path_open_beneath, "rel/secret", O_RDONLY, CRU_EUNSAFE, "leads out");
    refused(cru_path_open_beneath, "sub/far", O_PATH, CRU_EUNSAFE, "leads out");
    refused(cru_path_open_beneath, "magic/etc/passwd", O_RDONLY, CRU_EUNSAFE, "");
    refused(cru_path_open_beneath, "loop", O_RDONLY, CRU_EUNSAFE, "loop");
    refused(cru_path_open_beneath, "in-link", O_RDONLY | O_NOFOLLOW, CRU_EUNSAFE,
            "is a symbolic link");
    refused(cru_path_open_beneath, "abs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW, CRU_EUNSAFE,
            "is a symbolic link");
    refused(cru_path_open_beneath, "../outside/secret", O_RDONLY, CRU_EUNSAFE, "'..'");
    refused(cru_path_open_beneath, "/etc/passwd", O_RDONLY, CRU_EUNSAFE, "absolute");
    refused(cru_path_open_beneath, "missing", O_RDONLY, CRU_ENOENT, "missing");
    refused(cru_path_open_beneath, "sub/file", O_RDONLY | O_CREAT, CRU_EINVAL, "O_CREAT");

    const char *outs[] = { "abs/secret", "rel/secret", "sub/far" };
    for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++) {
        int fd = openat(rootfd, outs[i], O_RDONLY | O_CLOEXEC);
        char buf[16] = "";
        cr_assert_geq(fd, 0, "control: %s", outs[i]);
        cr_expect_gt(read(fd, buf, sizeof(buf) - 1), 0);
        close(fd);
        cr_expect_str_eq(buf, "secret\n", "control: %s leads to the secret", outs[i]);
    }
}

/* The walk (kernels without openat2) follows no link at all, inside or out. */
Test(beneath, walk_follows_no_link)
{
    reads(cru_path_walk_beneath, "sub/file", O_RDONLY, "inside\n");
    reads(cru_path_walk_beneath, "", O_RDONLY | O_DIRECTORY, "");
    reads(cru_path_walk_beneath, "sub", O_PATH, "");
    refused(cru_path_walk_beneath, "in-link", O_RDONLY, CRU_EUNSAFE, "symbolic link");
    refused(cru_path_walk_beneath, "in-link", O_PATH, CRU_EUNSAFE, "symbolic link");
    refused(cru_path_walk_beneath, "sub/deeper/up/file", O_RDONLY, CRU_EUNSAFE, "'up'");
    refused(cru_path_walk_beneath, "abs/secret", O_RDONLY, CRU_EUNSAFE, "'abs'");
    refused(cru_path_walk_beneath, "rel", O_RDONLY | O_DIRECTORY, CRU_EUNSAFE, "symbolic link");
    refused(cru_path_walk_beneath, "sub/far", O_RDONLY, CRU_EUNSAFE, "symbolic link");
    refused(cru_path_walk_beneath, "../outside/secret", O_RDONLY, CRU_EUNSAFE, "'..'");
    refused(cru_path_walk_beneath, "missing", O_RDONLY, CRU_ENOENT, "missing");
    /* Asked for, a final link is opened as itself. */
    int fd = -1;
    struct stat st;
    cr_assert_eq(cru_path_walk_beneath(&fd, rootfd, "abs", O_PATH | O_NOFOLLOW), 0, "%s",
                 cru_err_msg());
    cr_expect(fstat(fd, &st) == 0 && S_ISLNK(st.st_mode));
    close(fd);
}
