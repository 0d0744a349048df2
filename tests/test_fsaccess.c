/* Tests for sandbox/fsaccess: a hostile workspace tries to lead the host's file calls outside.
 *
 * The layout is TOP/host (the host's files: "secret", "decoy") beside TOP/box/ws (the
 * workspace), so that "../.." from the workspace is TOP. Every escape probe first shows that
 * the same trick works through a plain open(2) of the workspace path (the positive control),
 * then that the confined call does not reach the host file; most run once per resolver.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/fs.h"
#include "lib/path.h"
#include "sandbox/fsaccess.h"

#define SECRET    "HOST-SECRET"
#define OWNER_UID 12345
#define OWNER_GID 23456

static char top[64], ws[128], host[128], secret[160], decoy[160];
static int rootfd = -1;
static pid_t swapper = -1; /* the race tests' renaming child, stopped by teardown too */

/* DIR "/" NAME in one of a few rotating buffers, so that two can be used in one call. */
static const char *at(const char *dir, const char *name)
{
    static char bufs[4][512];
    static int next;
    char *p = bufs[next++ % 4];
    snprintf(p, sizeof(bufs[0]), "%s/%s", dir, name);
    return p;
}

static void put(const char *path, const char *data)
{
    cr_assert_eq(cru_file_write_atomic(path, data, strlen(data), 0600), 0, "%s: %s", path,
                 cru_err_msg());
}

static void setup(void)
{
    strcpy(top, "/tmp/crucible-test-fsaccess-XXXXXX");
    cr_assert_not_null(mkdtemp(top));
    snprintf(host, sizeof(host), "%s/host", top);
    snprintf(ws, sizeof(ws), "%s/box/ws", top);
    snprintf(secret, sizeof(secret), "%s/secret", host);
    snprintf(decoy, sizeof(decoy), "%s/decoy", host);
    cr_assert_eq(cru_mkdir_p(host, 0755), 0);
    cr_assert_eq(cru_mkdir_p(ws, 0755), 0);
    put(secret, SECRET);
    put(decoy, "decoy");
    rootfd = open(ws, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(rootfd, 0);
}

static void stop_swapper(void)
{
    if (swapper > 0) {
        kill(swapper, SIGKILL);
        waitpid(swapper, NULL, 0);
        swapper = -1;
    }
}

static void teardown(void)
{
    stop_swapper(); /* a failed race test leaves it running, and rm would race it */
    /* Mounts of a failed mount test; elsewhere these fail harmlessly. */
    umount2(at(ws, "tmp"), MNT_DETACH);
    umount2(at(ws, "bind"), MNT_DETACH);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(fsaccess, .init = setup, .fini = teardown);

static struct sbx_fs fs_for(enum sbx_fs_resolver r)
{
    return (struct sbx_fs){ .rootfd = rootfd, .uid = OWNER_UID, .gid = OWNER_GID, .resolver = r };
}

static const char *in_ws(const char *name)
{
    return at(ws, name);
}

/* The whole file at PATH through a plain, unconfined read ("" when it cannot be read). */
static char *plain_read(const char *path)
{
    static char out[4096];
    struct cru_buf b = CRU_BUF_INIT;
    out[0] = '\0';
    if (cru_file_read(path, sizeof(out) - 1, &b) == 0)
        memcpy(out, cru_buf_cstr(&b), b.len + 1);
    cru_buf_free(&b);
    return out;
}

/* The sorted names in DIR, as one string: a change anywhere in it changes the string. */
static char *names_of(const char *dir)
{
    static char out[4096];
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    cr_assert_geq(n, 0, "%s", dir);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strcat(out, list[i]->d_name);
        strcat(out, "/");
        free(list[i]);
    }
    free(list);
    return out;
}

/* The code of a confined read of REL, asserting that it did not return the host secret. */
static int read_code(enum sbx_fs_resolver r, const char *rel)
{
    struct sbx_fs fs = fs_for(r);
    struct cru_buf b = CRU_BUF_INIT;
    int rc = sbx_fs_read(&fs, rel, 4096, &b);
    cr_assert(strstr(cru_buf_cstr(&b), SECRET) == NULL, "'%s' leaked the host secret", rel);
    if (rc < 0)
        cr_assert_eq(b.len, 0, "a failed read appends nothing");
    cru_buf_free(&b);
    return rc;
}

/* One test per resolver: NAME_openat2 and NAME_walk call NAME(resolver). */
#define BOTH(name)                                                                                 \
    static void name(enum sbx_fs_resolver r);                                                      \
    Test(fsaccess, name##_openat2)                                                                 \
    {                                                                                              \
        name(SBX_FS_OPENAT2);                                                                      \
    }                                                                                              \
    Test(fsaccess, name##_walk)                                                                    \
    {                                                                                              \
        name(SBX_FS_WALK);                                                                         \
    }                                                                                              \
    static void name(enum sbx_fs_resolver r)

/* ---- symlinks out of the root ---- */

BOTH(absolute_symlink_to_host_file)
{
    cr_assert_eq(symlink(secret, in_ws("link")), 0);
    cr_assert_str_eq(plain_read(in_ws("link")), SECRET, "control: a plain open follows the link");

    int rc = read_code(r, "link");
    cr_assert_eq(rc, r == SBX_FS_WALK ? CRU_EUNSAFE : CRU_ENOENT, "%s", cru_err_msg());
    cr_assert(strstr(cru_err_msg(), "'link'") != NULL, "the error names the path: %s",
              cru_err_msg());

    /* openat2 resolves the absolute target inside the root: give it something to find there. */
    cr_assert_eq(cru_mkdir_p(at(ws, host), 0755), 0);
    put(at(ws, secret), "INSIDE");
    struct sbx_fs fs = fs_for(r);
    struct cru_buf b = CRU_BUF_INIT;
    rc = sbx_fs_read(&fs, "link", 100, &b);
    if (r == SBX_FS_WALK) {
        cr_assert_eq(rc, CRU_EUNSAFE);
    } else {
        cr_assert_eq(rc, 0, "%s", cru_err_msg());
        cr_assert_str_eq(cru_buf_cstr(&b), "INSIDE", "the link resolves inside the workspace");
    }
    cru_buf_free(&b);
}

BOTH(relative_symlink_up_and_out)
{
    cr_assert_eq(symlink("../..", in_ws("up")), 0);
    cr_assert_str_eq(plain_read(in_ws("up/host/secret")), SECRET, "control");

    int rc = read_code(r, "up/host/secret");
    cr_assert_eq(rc, r == SBX_FS_WALK ? CRU_EUNSAFE : CRU_ENOENT, "%s", cru_err_msg());
    if (r == SBX_FS_WALK)
        cr_assert(strstr(cru_err_msg(), "'up'") != NULL, "names the component: %s", cru_err_msg());

    /* ".." clamps at the root: "up" is the workspace itself. */
    cr_assert_eq(cru_mkdir_p(in_ws("host"), 0755), 0);
    put(in_ws("host/secret"), "INSIDE");
    struct sbx_fs fs = fs_for(r);
    struct cru_buf b = CRU_BUF_INIT;
    rc = sbx_fs_read(&fs, "up/host/secret", 100, &b);
    if (r == SBX_FS_OPENAT2) {
        cr_assert_eq(rc, 0, "%s", cru_err_msg());
        cr_assert_str_eq(cru_buf_cstr(&b), "INSIDE");
    } else {
        cr_assert_eq(rc, CRU_EUNSAFE);
    }
    cru_buf_free(&b);
}

BOTH(proc_self_root_link_in_workspace)
{
    char target[256];
    snprintf(target, sizeof(target), "/proc/self/root%s", secret);
    cr_assert_eq(symlink(target, in_ws("m")), 0);
    cr_assert_str_eq(plain_read(in_ws("m")), SECRET, "control: /proc/self/root reaches it");
    int rc = read_code(r, "m");
    cr_assert_eq(rc, r == SBX_FS_WALK ? CRU_EUNSAFE : CRU_ENOENT, "%s", cru_err_msg());
}

/* RESOLVE_NO_MAGICLINKS proper: a root where magic links are reachable (/proc/self), which no
 * symlink in a workspace can reach, since "/proc" inside the root is the workspace's. */
BOTH(magic_links_refused)
{
    int procfd = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int secretfd = open(secret, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(procfd, 0);
    cr_assert_geq(secretfd, 0);
    char via_root[256], via_fd[64];
    snprintf(via_root, sizeof(via_root), "root%s", secret);
    snprintf(via_fd, sizeof(via_fd), "fd/%d", secretfd);

    const char *rels[] = { via_root, via_fd };
    for (size_t i = 0; i < 2; i++) {
        int fd = openat(procfd, rels[i], O_RDONLY | O_CLOEXEC);
        cr_assert_geq(fd, 0, "control: %s opens", rels[i]);
        char got[32] = { 0 };
        cr_assert_gt(pread(fd, got, sizeof(got) - 1, 0), 0);
        cr_assert_str_eq(got, SECRET, "control: %s reads the secret", rels[i]);
        close(fd);

        struct sbx_fs fs = { .rootfd = procfd, .resolver = r };
        struct cru_buf b = CRU_BUF_INIT;
        cr_assert_eq(sbx_fs_read(&fs, rels[i], 100, &b), CRU_EUNSAFE, "%s: %s", rels[i],
                     cru_err_msg());
        /* RESOLVE_IN_ROOT alone refuses the jump too (EXDEV: the kernel does not trust magic
         * links in scoped lookups); the message shows that NO_MAGICLINKS refused it first. */
        cr_assert(strstr(cru_err_msg(), r == SBX_FS_WALK ? "is a symlink" : "magic link") != NULL,
                  "%s", cru_err_msg());
        cr_assert_eq(b.len, 0);
        cru_buf_free(&b);
    }
    close(secretfd);
    close(procfd);
}

/* ---- writes through planted links ---- */

BOTH(write_through_directory_symlink_stays_inside)
{
    cr_assert_eq(symlink(host, in_ws("abs")), 0);
    cr_assert_eq(symlink("../../host", in_ws("rel")), 0);

    /* Control: a plain create through either link lands in the host directory. */
    char *before = strdup(names_of(host));
    const char *links[] = { "abs", "rel" };
    for (size_t i = 0; i < 2; i++) {
        char rel[32];
        snprintf(rel, sizeof(rel), "%s/planted", links[i]);
        int fd = open(in_ws(rel), O_WRONLY | O_CREAT | O_EXCL, 0600);
        cr_assert_geq(fd, 0, "control: create through %s", links[i]);
        close(fd);
        cr_assert_eq(access(at(host, "planted"), F_OK), 0, "control: it is in the host dir");
        cr_assert_eq(unlink(at(host, "planted")), 0);
    }
    cr_assert_str_eq(names_of(host), before);

    struct sbx_fs fs = fs_for(r);
    for (size_t i = 0; i < 2; i++) {
        for (int parents = 0; parents < 2; parents++) {
            const char *rel = at(links[i], "planted");
            int rc = sbx_fs_write(&fs, rel, "x", 1, 0644, parents);
            cr_assert_lt(rc, 0, "%s (parents %d) must fail", rel, parents);
            if (r == SBX_FS_WALK || parents)
                cr_assert_eq(rc, CRU_EUNSAFE, "%s: %s", rel, cru_err_msg());
            cr_assert_str_eq(names_of(host), before, "the host directory is unchanged");
        }
    }
    free(before);
}

BOTH(write_replaces_symlink_not_its_target)
{
    /* Control: writing through a plain open of a link changes the host file it points at. */
    cr_assert_eq(symlink(decoy, in_ws("dlink")), 0);
    int fd = open(in_ws("dlink"), O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "PWNED", 5), 5);
    close(fd);
    cr_assert_str_eq(plain_read(decoy), "PWNED", "control: the host file was overwritten");

    cr_assert_eq(symlink(secret, in_ws("link")), 0);
    struct stat before, st;
    cr_assert_eq(stat(secret, &before), 0);
    struct sbx_fs fs = fs_for(r);
    cr_assert_eq(sbx_fs_write(&fs, "link", "mine", 4, 0640, false), 0, "%s", cru_err_msg());

    cr_assert_str_eq(plain_read(secret), SECRET, "the host file is untouched");
    cr_assert_eq(stat(secret, &st), 0);
    cr_assert_eq(st.st_uid, before.st_uid, "the host file keeps its owner");
    cr_assert_eq(st.st_mode, before.st_mode);
    cr_assert_eq(lstat(in_ws("link"), &st), 0);
    cr_assert(S_ISREG(st.st_mode), "the name is now a regular file");
    cr_assert_eq(st.st_uid, OWNER_UID);
    cr_assert_eq(st.st_mode & 07777, 0640);
    cr_assert_str_eq(plain_read(in_ws("link")), "mine");
}

BOTH(open_creat_through_link_leaves_host_file_alone)
{
    cr_assert_eq(symlink(secret, in_ws("link")), 0);
    struct stat hs, st;
    cr_assert_eq(stat(secret, &hs), 0);
    int fd = open(in_ws("link"), O_WRONLY | O_CREAT, 0644);
    cr_assert_geq(fd, 0, "control: a plain O_CREAT open reaches the host file");
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_ino, hs.st_ino);
    close(fd);

    struct sbx_fs fs = fs_for(r);
    fd = -1;
    int rc = sbx_fs_open(&fs, "link", O_WRONLY | O_CREAT, 0644, &fd);
    cr_assert_eq(rc, r == SBX_FS_WALK ? CRU_EUNSAFE : CRU_EEXIST, "%s", cru_err_msg());
    cr_assert_eq(fd, -1);
    cr_assert_eq(stat(secret, &st), 0);
    cr_assert_eq(st.st_uid, hs.st_uid, "the host file was not chowned");
    cr_assert_eq(access(at(ws, secret), F_OK), -1, "no target was created inside either");
}

/* ---- lexical refusals ---- */

BOTH(dotdot_and_absolute_refused)
{
    cr_assert_str_eq(plain_read(in_ws("../../host/secret")), SECRET, "control");
    cr_assert_str_eq(plain_read(secret), SECRET, "control");

    struct sbx_fs fs = fs_for(r);
    char abs_secret[200];
    snprintf(abs_secret, sizeof(abs_secret), "%s", secret);
    const char *bad[] = {
        "..", "../../host/secret", "a/../../x", "./..", "/etc/passwd", abs_secret
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cru_buf b = CRU_BUF_INIT;
        struct stat st;
        struct sbx_fs_entry *e = NULL;
        size_t n = 0;
        int fd = -1;
        cr_assert_eq(sbx_fs_read(&fs, bad[i], 100, &b), CRU_EUNSAFE, "read %s", bad[i]);
        cr_assert_eq(sbx_fs_write(&fs, bad[i], "x", 1, 0600, true), CRU_EUNSAFE, "%s", bad[i]);
        cr_assert_eq(sbx_fs_stat(&fs, bad[i], &st), CRU_EUNSAFE, "stat %s", bad[i]);
        cr_assert_eq(sbx_fs_list(&fs, bad[i], 10, &e, &n), CRU_EUNSAFE, "list %s", bad[i]);
        cr_assert_eq(sbx_fs_open(&fs, bad[i], O_RDONLY, 0, &fd), CRU_EUNSAFE, "open %s", bad[i]);
        cr_assert_eq(b.len, 0);
        cr_assert_eq(fd, -1);
        cr_assert_null(e);
    }
    cr_assert_str_eq(plain_read(secret), SECRET);
}

/* ---- special files ---- */

static void fifo_case(enum sbx_fs_resolver r)
{
    cr_assert_eq(mkfifo(in_ws("fifo"), 0666), 0);
    /* Control: a plain open of the FIFO blocks (no writer comes). */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        open(in_ws("fifo"), O_RDONLY);
        _exit(0);
    }
    struct timespec pause = { 0, 200 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    int status;
    cr_assert_eq(waitpid(pid, &status, WNOHANG), 0, "control: a plain open is still blocked");
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);

    cr_assert_eq(read_code(r, "fifo"), CRU_EINVAL, "%s", cru_err_msg());
    cr_assert(strstr(cru_err_msg(), "FIFO") != NULL, "%s", cru_err_msg());
}

Test(fsaccess, fifo_refused_promptly_openat2, .timeout = 5)
{
    fifo_case(SBX_FS_OPENAT2);
}

Test(fsaccess, fifo_refused_promptly_walk, .timeout = 5)
{
    fifo_case(SBX_FS_WALK);
}

BOTH(devices_and_directories_refused)
{
    /* A copy of /dev/zero: a bounded read of the stream fills its bound and still wants more. */
    cr_assert_eq(mknod(in_ws("zero"), S_IFCHR | 0666, makedev(1, 5)), 0);
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read_stream(in_ws("zero"), 16, &b), CRU_ELIMIT, "control: it is live");
    cru_buf_free(&b);
    cr_assert_eq(read_code(r, "zero"), CRU_EINVAL, "%s", cru_err_msg());
    cr_assert(strstr(cru_err_msg(), "character device") != NULL, "%s", cru_err_msg());

    cr_assert_eq(mkdir(in_ws("dir"), 0755), 0);
    cr_assert_eq(read_code(r, "dir"), CRU_EINVAL);
    cr_assert_eq(read_code(r, ""), CRU_EINVAL, "the root is a directory");
}

/* Documented behaviour, not a guarantee: a hard link inside the workspace is the host file
 * itself. The sandbox cannot make one (it cannot name the host file); if the host ever does,
 * path resolution cannot tell. */
BOTH(hard_link_is_the_file_itself)
{
    if (link(secret, in_ws("hl")) < 0)
        cr_skip_test("cannot hard-link across %s: %s", top, strerror(errno));
    struct sbx_fs fs = fs_for(r);
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(sbx_fs_read(&fs, "hl", 100, &b), 0, "%s", cru_err_msg());
    cr_assert_str_eq(cru_buf_cstr(&b), SECRET);
    cru_buf_free(&b);
}

/* ---- mounts ---- */

/* A private mount namespace for this test process (each test is its own process). The root is
 * opened again inside it: a descriptor keeps the mount tree of the namespace it was opened in,
 * and would never see the mounts made here. */
static void private_mounts(void)
{
    if (unshare(CLONE_NEWNS) < 0)
        cr_skip_test("no mount namespace: %s", strerror(errno));
    cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    close(rootfd);
    rootfd = open(ws, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(rootfd, 0);
}

BOTH(mount_points_refused)
{
    private_mounts();
    cr_assert_eq(mkdir(in_ws("tmp"), 0755), 0);
    cr_assert_eq(mount("tmpfs", in_ws("tmp"), "tmpfs", 0, NULL), 0);
    put(in_ws("tmp/f"), "ON-TMPFS");
    /* A bind of the host directory: the same file system, so only a mount id can tell. */
    cr_assert_eq(mkdir(in_ws("bind"), 0755), 0);
    cr_assert_eq(mount(host, in_ws("bind"), NULL, MS_BIND, NULL), 0);
    cr_assert_str_eq(plain_read(in_ws("tmp/f")), "ON-TMPFS", "control");
    cr_assert_str_eq(plain_read(in_ws("bind/secret")), SECRET, "control");

    struct sbx_fs fs = fs_for(r);
    struct sbx_fs_entry *e = NULL;
    size_t n = 0;
    cr_assert_eq(read_code(r, "tmp/f"), CRU_EUNSAFE, "%s", cru_err_msg());
    cr_assert(strstr(cru_err_msg(), "mount point") != NULL, "%s", cru_err_msg());
    cr_assert_eq(read_code(r, "bind/secret"), CRU_EUNSAFE, "%s", cru_err_msg());
    cr_assert_eq(sbx_fs_list(&fs, "bind", 10, &e, &n), CRU_EUNSAFE);
    cr_assert_eq(sbx_fs_write(&fs, "bind/new", "x", 1, 0600, false), CRU_EUNSAFE);
    cr_assert_eq(access(at(host, "new"), F_OK), -1);

    cr_assert_eq(umount2(in_ws("tmp"), MNT_DETACH), 0);
    cr_assert_eq(umount2(in_ws("bind"), MNT_DETACH), 0);
}

/* ---- races: the agent swaps a directory and a link to the host while we work ---- */

/* The swapper dies with the test process, even one that fails an assertion before killing it:
 * an orphan spinning forever would keep the runner's output open. */
static pid_t start_swapper(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        alarm(120);
        /* A short random pause between swaps: without it, on a small machine, the lookups
         * nearly always find the link, and the probe barely covers the directory case. */
        unsigned seed = (unsigned)getpid();
        for (;;) {
            renameat2(AT_FDCWD, in_ws("d"), AT_FDCWD, in_ws("l"), RENAME_EXCHANGE);
            for (volatile unsigned k = rand_r(&seed) % 4096; k > 0; k--)
                ;
        }
    }
    return pid;
}

static void race_case(enum sbx_fs_resolver r)
{
    cr_assert_eq(mkdir(in_ws("d"), 0755), 0);
    put(in_ws("d/secret"), "INSIDE");
    cr_assert_eq(symlink(host, in_ws("l")), 0);
    char *before = strdup(names_of(host));
    swapper = start_swapper();

    /* Control: under the same race a plain read of "d/secret" does reach the host. */
    int leaked = 0;
    for (int i = 0; i < 200000 && !leaked; i++)
        leaked = strcmp(plain_read(in_ws("d/secret")), SECRET) == 0;
    cr_assert(leaked, "control: the race lets a plain read out");

    /* Reads and writes in separate rounds: a write's fsyncs fall into step with the swapper
     * and would leave the reads seeing one state nearly always. Each round must see both
     * outcomes, or it did not race. */
    struct sbx_fs fs = fs_for(r);
    int reads[2] = { 0, 0 }, writes[2] = { 0, 0 }; /* [refused, done] */
    for (int i = 0; i < 20000 && (i < 2000 || !reads[0] || !reads[1]); i++)
        reads[read_code(r, "d/secret") == 0]++; /* asserts the secret never comes back */
    for (int i = 0; i < 20000 && (i < 500 || !writes[0] || !writes[1]); i++) {
        writes[sbx_fs_write(&fs, "d/new", "x", 1, 0600, i % 2) == 0]++;
        cr_assert_str_eq(names_of(host), before, "nothing is created in the host dir");
    }
    stop_swapper();
    cr_assert(reads[0] && reads[1], "reads: %d done, %d refused", reads[1], reads[0]);
    cr_assert(writes[0] && writes[1], "writes: %d done, %d refused", writes[1], writes[0]);
    cr_assert_str_eq(plain_read(secret), SECRET);
    free(before);
}

Test(fsaccess, race_dir_swapped_with_link_openat2, .timeout = 60)
{
    race_case(SBX_FS_OPENAT2);
}

Test(fsaccess, race_dir_swapped_with_link_walk, .timeout = 60)
{
    race_case(SBX_FS_WALK);
}

/* ---- the ordinary operations ---- */

BOTH(read_bound)
{
    put(in_ws("ten"), "0123456789");
    struct sbx_fs fs = fs_for(r);
    struct cru_buf b = CRU_BUF_INIT;
    cru_buf_puts(&b, "prefix");
    cr_assert_eq(sbx_fs_read(&fs, "ten", 9, &b), CRU_ELIMIT);
    cr_assert(strstr(cru_err_msg(), "ten") != NULL, "%s", cru_err_msg());
    cr_assert_str_eq(cru_buf_cstr(&b), "prefix", "nothing is appended on failure");
    cr_assert_eq(sbx_fs_read(&fs, "./ten", 10, &b), 0, "exactly the bound is fine");
    cr_assert_str_eq(cru_buf_cstr(&b), "prefix0123456789");
    cru_buf_reset(&b);
    cr_assert_eq(sbx_fs_read(&fs, "ten", SIZE_MAX, &b), 0, "no bound at all");
    cr_assert_str_eq(cru_buf_cstr(&b), "0123456789");
    cr_assert_eq(sbx_fs_read(&fs, "missing", 10, &b), CRU_ENOENT);
    cr_assert(strstr(cru_err_msg(), "'missing'") != NULL, "%s", cru_err_msg());
    cru_buf_free(&b);
}

BOTH(list_sorted_typed_bounded)
{
    put(in_ws("b"), "abc");
    cr_assert_eq(mkdir(in_ws("a"), 0755), 0);
    cr_assert_eq(symlink("a", in_ws("c")), 0);
    put(in_ws(".hidden"), "");
    put(in_ws("a/inner"), "12345");

    struct sbx_fs fs = fs_for(r);
    struct sbx_fs_entry *e = NULL;
    size_t n = 0;
    cr_assert_eq(sbx_fs_list(&fs, "", 10, &e, &n), 0, "%s", cru_err_msg());
    cr_assert_eq(n, 4);
    const char *names[] = { ".hidden", "a", "b", "c" };
    const mode_t types[] = { S_IFREG, S_IFDIR, S_IFREG, S_IFLNK };
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(e[i].name, names[i]);
        cr_assert_eq(e[i].type, types[i], "%s", names[i]);
    }
    cr_assert_eq(e[0].size, 0);
    cr_assert_eq(e[2].size, 3);
    cr_assert_eq(e[3].size, 1, "a symlink's size is its target's length");
    sbx_fs_entries_free(e, n);

    cr_assert_eq(sbx_fs_list(&fs, ".", 4, &e, &n), 0, "exactly the bound is fine");
    sbx_fs_entries_free(e, n);
    cr_assert_eq(sbx_fs_list(&fs, "", 3, &e, &n), CRU_ELIMIT);
    cr_assert_null(e);
    cr_assert_eq(n, 0);

    cr_assert_eq(sbx_fs_list(&fs, "a", 10, &e, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(e[0].name, "inner");
    cr_assert_eq(e[0].size, 5);
    sbx_fs_entries_free(e, n);

    /* Through the link: openat2 follows it inside the root, the walk refuses it. */
    int rc = sbx_fs_list(&fs, "c", 10, &e, &n);
    cr_assert_eq(rc, r == SBX_FS_WALK ? CRU_EUNSAFE : 0, "%s", cru_err_msg());
    sbx_fs_entries_free(e, n);
    cr_assert_eq(sbx_fs_list(&fs, "b", 10, &e, &n), CRU_ENOENT, "a file is not a directory");
    sbx_fs_entries_free(NULL, 0);
}

BOTH(stat_reports_links_themselves)
{
    cr_assert_eq(symlink(secret, in_ws("link")), 0);
    cr_assert_eq(symlink("nowhere", in_ws("dangling")), 0);
    put(in_ws("f"), "1234");
    struct sbx_fs fs = fs_for(r);
    struct stat st;
    cr_assert_eq(sbx_fs_stat(&fs, "link", &st), 0, "%s", cru_err_msg());
    cr_assert(S_ISLNK(st.st_mode));
    cr_assert_eq((size_t)st.st_size, strlen(secret));
    cr_assert_eq(sbx_fs_stat(&fs, "dangling", &st), 0);
    cr_assert(S_ISLNK(st.st_mode));
    cr_assert_eq(sbx_fs_stat(&fs, "f", &st), 0);
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(st.st_size, 4);
    cr_assert_eq(sbx_fs_stat(&fs, "", &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(sbx_fs_stat(&fs, "missing", &st), CRU_ENOENT);
}

BOTH(write_with_parents_owner_and_mode)
{
    umask(077); /* modes must be exact, whatever the host's umask */
    struct sbx_fs fs = fs_for(r);
    cr_assert_eq(sbx_fs_write(&fs, "d1/d2/f.txt", "hello", 5, 0644, false), CRU_ENOENT);
    cr_assert_eq(sbx_fs_write(&fs, "d1/d2/f.txt", "hello", 5, 0644, true), 0, "%s", cru_err_msg());
    struct stat st;
    const char *dirs[] = { "d1", "d1/d2" };
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(lstat(in_ws(dirs[i]), &st), 0);
        cr_assert(S_ISDIR(st.st_mode));
        cr_assert_eq(st.st_uid, OWNER_UID, "%s", dirs[i]);
        cr_assert_eq(st.st_gid, OWNER_GID, "%s", dirs[i]);
        cr_assert_eq(st.st_mode & 07777, 0755, "%s", dirs[i]);
    }
    cr_assert_eq(lstat(in_ws("d1/d2/f.txt"), &st), 0);
    cr_assert_eq(st.st_uid, OWNER_UID);
    cr_assert_eq(st.st_gid, OWNER_GID);
    cr_assert_eq(st.st_mode & 07777, 0644);
    cr_assert_str_eq(plain_read(in_ws("d1/d2/f.txt")), "hello");
    cr_assert_str_eq(names_of(in_ws("d1/d2")), "./../f.txt/", "no temporary file remains");

    /* A host-owned file is replaced by one of the owner's; existing directories keep theirs. */
    cr_assert_eq(mkdir(in_ws("mine"), 0700), 0);
    put(in_ws("mine/old"), "old");
    cr_assert_eq(sbx_fs_write(&fs, "mine/old", "new", 3, 0600, true), 0, "%s", cru_err_msg());
    cr_assert_eq(stat(in_ws("mine/old"), &st), 0);
    cr_assert_eq(st.st_uid, OWNER_UID);
    cr_assert_str_eq(plain_read(in_ws("mine/old")), "new");
    cr_assert_eq(stat(in_ws("mine"), &st), 0);
    cr_assert_eq(st.st_uid, 0, "an existing directory keeps its owner");
    cr_assert_eq(st.st_mode & 07777, 0700);

    /* A component that is a file, a directory as the name, the root as the name. */
    cr_assert_eq(sbx_fs_write(&fs, "mine/old/x", "x", 1, 0600, true), CRU_EEXIST, "%s",
                 cru_err_msg());
    cr_assert_eq(sbx_fs_write(&fs, "mine", "x", 1, 0600, false), CRU_EINVAL);
    cr_assert(strstr(cru_err_msg(), "directory") != NULL, "%s", cru_err_msg());
    cr_assert_eq(sbx_fs_write(&fs, "", "x", 1, 0600, false), CRU_EINVAL);
    cr_assert_eq(sbx_fs_write(&fs, "f", "x", 1, 010644, false), CRU_EINVAL, "bad mode bits");
}

BOTH(write_longest_name)
{
    char name[CRU_PATH_NAME_MAX + 1];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    struct sbx_fs fs = fs_for(r);
    cr_assert_eq(sbx_fs_write(&fs, name, "x", 1, 0600, false), 0, "%s", cru_err_msg());
    cr_assert_str_eq(plain_read(in_ws(name)), "x");
    cr_assert_eq(sbx_fs_write(&fs, name, "y", 1, 0600, false), 0, "%s", cru_err_msg());
    cr_assert_str_eq(plain_read(in_ws(name)), "y");
}

BOTH(open_creat_chowns_only_what_it_creates)
{
    umask(077);
    put(in_ws("old"), "old");
    struct sbx_fs fs = fs_for(r);
    int fd = -1;
    cr_assert_eq(sbx_fs_open(&fs, "old", O_WRONLY | O_CREAT | O_APPEND, 0644, &fd), 0, "%s",
                 cru_err_msg());
    cr_assert_eq(write(fd, "+", 1), 1);
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "O_CLOEXEC is added");
    close(fd);
    struct stat st;
    cr_assert_eq(stat(in_ws("old"), &st), 0);
    cr_assert_eq(st.st_uid, 0, "a pre-existing file keeps its owner");
    cr_assert_eq(st.st_mode & 07777, 0600, "and its mode");
    cr_assert_str_eq(plain_read(in_ws("old")), "old+");

    cr_assert_eq(sbx_fs_open(&fs, "new", O_WRONLY | O_CREAT, 0644, &fd), 0, "%s", cru_err_msg());
    close(fd);
    cr_assert_eq(stat(in_ws("new"), &st), 0);
    cr_assert_eq(st.st_uid, OWNER_UID, "a created file is the owner's");
    cr_assert_eq(st.st_gid, OWNER_GID);
    cr_assert_eq(st.st_mode & 07777, 0644, "with exactly the mode asked for");

    cr_assert_eq(sbx_fs_open(&fs, "new", O_WRONLY | O_CREAT | O_EXCL, 0644, &fd), CRU_EEXIST);
    cr_assert_eq(sbx_fs_open(&fs, "nothing", O_RDONLY, 0, &fd), CRU_ENOENT);
    cr_assert_eq(sbx_fs_open(&fs, "", O_RDONLY | O_DIRECTORY, 0, &fd), 0, "the root opens");
    close(fd);
}

/* ---- failures ---- */

Test(fsaccess, failed_write_keeps_old_file_and_no_temp)
{
    put(in_ws("keep"), "old");
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = { 4096, 4096 };
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    size_t n = 1 << 20;
    char *big = malloc(n);
    memset(big, 'x', n);
    struct sbx_fs fs = fs_for(SBX_FS_AUTO);
    cr_assert_lt(sbx_fs_write(&fs, "keep", big, n, 0600, false), 0);
    cr_assert(strstr(cru_err_msg(), "'keep'") != NULL, "%s", cru_err_msg());
    free(big);
    cr_assert_str_eq(plain_read(in_ws("keep")), "old");
    cr_assert_str_eq(names_of(ws), "./../keep/", "the temporary file is removed");
}

Test(fsaccess, bad_arguments)
{
    struct sbx_fs fs = fs_for(SBX_FS_AUTO);
    struct stat st;
    fs.resolver = (enum sbx_fs_resolver)7;
    cr_assert_eq(sbx_fs_stat(&fs, "x", &st), CRU_EINVAL);
    fs = fs_for(SBX_FS_AUTO);
    fs.rootfd = -1;
    cr_assert_eq(sbx_fs_stat(&fs, "x", &st), CRU_EINVAL);
    fs = fs_for(SBX_FS_AUTO);
    cr_assert_eq(sbx_fs_stat(&fs, NULL, &st), CRU_EINVAL);
}

/* AUTO uses openat2 where it exists, and the walk where it answers ENOSYS: here a seccomp
 * filter in this test's own process makes it do so. */
Test(fsaccess, auto_falls_back_to_walk_on_enosys)
{
    cr_assert_eq(symlink(secret, in_ws("link")), 0);
    put(in_ws("f"), "plain");
    cr_assert_eq(read_code(SBX_FS_AUTO, "link"), CRU_ENOENT, "control: openat2 is in use");

    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    cr_assert_not_null(ctx);
    cr_assert_eq(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0), 0);
    cr_assert_eq(seccomp_load(ctx), 0);
    seccomp_release(ctx);

    cr_assert_eq(read_code(SBX_FS_AUTO, "link"), CRU_EUNSAFE, "the walk refuses the link");
    cr_assert_eq(read_code(SBX_FS_OPENAT2, "link"), CRU_EUNSUPPORTED, "%s", cru_err_msg());
    struct sbx_fs fs = fs_for(SBX_FS_AUTO);
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(sbx_fs_read(&fs, "f", 100, &b), 0, "%s", cru_err_msg());
    cr_assert_str_eq(cru_buf_cstr(&b), "plain");
    cru_buf_free(&b);
}
