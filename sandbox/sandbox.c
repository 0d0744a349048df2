/* sandbox: the host side of a sandbox: create it, run commands in it, destroy it.
 *
 * sbx_new() runs one flat sequence, stopping at the first failure with its reason: claim a
 * uid slot and a state directory, create the cgroup (or, without root and without a writable
 * cgroup, settle for rlimits), plan the root, clone() the init into new namespaces, write its
 * uid and gid maps, move it into the cgroup, hand it an idmapped view of the workspace (as
 * root; without root the init binds the workspace's path itself), and wait for it to report
 * that the root is built. sbx_exec() sends one
 * command to the init over the control socket and collects its output, status and resource
 * use, enforcing its timeout. sbx_free() kills the init (and with it the pid namespace),
 * removes the cgroup and the state directory, and releases the slot. What a crucible process
 * that died could not remove, the next sbx_new() sweeps (sbx_sweep).
 *
 * It does not decide what runs (agent/) or how the root looks (mount.c) or what the filter
 * allows (seccomp.c); it owns the lifecycle and the protocol.
 */
#include "sandbox/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/mount.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"
#include "sandbox/cgroup.h"
#include "sandbox/internal.h"
#include "sandbox/seccomp.h"

#define DEFAULT_STATE_ROOT "/run/crucible"
/* What commands write to their oom_score_adj (init.c says why). */
#define CMD_OOM_SCORE_ADJ "1000"
#define SBX_DISK_MIN      ((uint64_t)1 << 20)
#define SBX_DISK_MAX      ((uint64_t)1 << 40)
#define SBX_INODES_MAX    ((uint64_t)1 << 32)
#define INIT_STACK_SIZE   (256 * 1024)
#define SETUP_TIMEOUT_MS  30000
/* How long a killed command may take to be reported before the sandbox counts as broken. */
#define KILL_GRACE_MS 5000
/* How often a running command looks at its cancel flag. */
#define CANCEL_POLL_MS 100

static const char *const default_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "USER=root",
    "LANG=C.UTF-8",
    "TERM=dumb",
    NULL,
};

/* ---- slots and state ---- */

/* Makes PATH with MODE where it is missing, then requires it to be a real folder of ours that
 * nobody else may write: a link or a folder planted by another user there (in /tmp, say)
 * would place sandbox state, or mounts, where that user chose. */
static int own_folder(const char *path, mode_t mode)
{
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return cru_err_sys("cannot create %s", path);
    struct stat st;
    if (lstat(path, &st) < 0)
        return cru_err_sys("cannot inspect %s", path);
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022))
        return cru_err_set(CRU_EUNSAFE, "%s is not a folder of this user's that only it may write",
                           path);
    return 0;
}

/* Where sandboxes keep their state: root's /run/crucible, or, without root, a folder of the
 * caller's own: $XDG_RUNTIME_DIR/crucible, else /tmp/crucible-UID. */
static int state_root_default(char **out)
{
    int rc;
    if (geteuid() == 0)
        return cru_str_dup(out, DEFAULT_STATE_ROOT);
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && xdg[0] == '/')
        rc = cru_str_printf(out, "%s/crucible", xdg);
    else
        rc = cru_str_printf(out, "/tmp/crucible-%u", (unsigned)geteuid());
    if (rc < 0)
        return rc;
    rc = own_folder(*out, 0700);
    return rc < 0 ? cru_err_wrap(rc, "the sandboxes' state folder (remove it, or set "
                                     "XDG_RUNTIME_DIR)")
                  : 0;
}

/* The bounds of this process's argv and environment strings (from /proc/self/stat), which the
 * init wipes in its copy of our memory. Zero when they cannot be read: nothing is wiped. */
static pthread_once_t strings_once = PTHREAD_ONCE_INIT;
static unsigned long host_strings[4];

static void strings_read(void)
{
    struct cru_buf b = CRU_BUF_INIT;
    if (cru_file_read("/proc/self/stat", 4096, &b) == 0) {
        /* After "pid (comm) ", field 3 onwards; arg_start is field 48. */
        const char *p = strrchr(cru_buf_cstr(&b), ')');
        unsigned long v[4];
        int field = 2;
        for (; p && *p && field < 51; p++) {
            if (*p != ' ')
                continue;
            field++;
            if (field >= 48)
                v[field - 48] = strtoul(p + 1, NULL, 10);
        }
        if (field == 51)
            memcpy(host_strings, v, sizeof(v));
    }
    cru_buf_free(&b);
}

static int lock_path(char *buf, size_t cap, const char *root, unsigned slot)
{
    int n = snprintf(buf, cap, "%s/sbx-%u.lock", root, slot);
    return n < 0 || (size_t)n >= cap ? cru_err_set(CRU_ELIMIT, "state path too long") : 0;
}

/* Tries to take slot SLOT; returns its locked fd, -1 if another process holds it. */
static int slot_try(const char *root, unsigned slot)
{
    char path[4096];
    if (lock_path(path, sizeof(path), root, slot) < 0)
        return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The cgroup of slot SLOT: "sbx-N" for root's sandboxes, "uUID-sbx-N" for a user's rootless
 * ones, whose state (and slot locks) is their own: the names must not meet in a cgroup that
 * both can see. */
static void slot_cgroup_name(char *buf, size_t cap, unsigned slot)
{
    if (geteuid() == 0)
        snprintf(buf, cap, "sbx-%u", slot);
    else
        snprintf(buf, cap, "u%u-sbx-%u", (unsigned)geteuid(), slot);
}

static bool slot_name_stale(const char *name, void *arg)
{
    const char *root = arg;
    char prefix[32];
    uint64_t slot;
    slot_cgroup_name(prefix, sizeof(prefix), 0);
    prefix[strlen(prefix) - 1] = '\0'; /* "sbx-" or "uUID-sbx-" */
    if (!cru_str_starts_with(name, prefix) ||
        cru_parse_u64(name + strlen(prefix), 0, SBX_SLOTS - 1, &slot) < 0)
        return false;
    int fd = slot_try(root, (unsigned)slot);
    if (fd < 0)
        return false; /* a live sandbox, ours or another process's */
    close(fd);
    return true;
}

int sbx_sweep(const char *state_root)
{
    char *own = NULL;
    if (!state_root && state_root_default(&own) < 0)
        return cru_err_code();
    const char *root = state_root ? state_root : own;
    int swept = 0;
    DIR *d = opendir(root);
    if (!d) {
        int rc = errno == ENOENT ? 0 : cru_err_sys("cannot list %s", root);
        free(own);
        return rc;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t slot;
        if (!cru_str_starts_with(e->d_name, "sbx-") || strchr(e->d_name, '.') ||
            cru_parse_u64(e->d_name + 4, 0, SBX_SLOTS - 1, &slot) < 0)
            continue;
        int fd = slot_try(root, (unsigned)slot);
        if (fd < 0)
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", root, e->d_name);
        if (cru_remove_tree(path) == 0)
            swept++;
        else
            cru_warn("sweeping a dead sandbox: %s", cru_err_msg());
        close(fd);
    }
    closedir(d);
    int rc = sbx_cgroup_sweep(slot_name_stale, (void *)(uintptr_t)root);
    if (rc < 0 && cru_err_code() != CRU_EUNSUPPORTED && geteuid() == 0)
        cru_warn("sweeping cgroups of dead sandboxes: %s", cru_err_msg());
    free(own);
    return swept;
}

/* The seccomp programs are the same for every sandbox: loaded once per process (the build's
 * copy; compiled, 1.5 ms, where the build has none) and shared read-only by all. */
static pthread_once_t filter_once = PTHREAD_ONCE_INIT;
static struct sbx_seccomp filter_shared;
static int filter_rc;
static char filter_err[CRU_ERR_MAX];

static void filter_compile(void)
{
    filter_rc = sbx_seccomp_load(&filter_shared);
    if (filter_rc < 0)
        snprintf(filter_err, sizeof(filter_err), "%s", cru_err_msg());
}

static int filter_get(const struct sbx_seccomp **out)
{
    pthread_once(&filter_once, filter_compile);
    if (filter_rc < 0)
        return cru_err_set(filter_rc, "%s", filter_err);
    *out = &filter_shared;
    return 0;
}

/* What a checker sandbox's commands hold: permitted, effective and inheritable, so that the
 * init can raise them ambient. */
static int checker_caps_make(cap_t *out)
{
    static const cap_value_t caps[] = { CAP_SETUID, CAP_SETGID,       CAP_CHOWN,
                                        CAP_FOWNER, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
                                        CAP_KILL };
    cap_t c = cap_init();
    int n = (int)(sizeof(caps) / sizeof(caps[0]));
    if (!c || cap_set_flag(c, CAP_PERMITTED, n, caps, CAP_SET) < 0 ||
        cap_set_flag(c, CAP_EFFECTIVE, n, caps, CAP_SET) < 0 ||
        cap_set_flag(c, CAP_INHERITABLE, n, caps, CAP_SET) < 0) {
        if (c)
            cap_free(c);
        return cru_err_set(CRU_ENOMEM, "out of memory for a capability state");
    }
    *out = c;
    return 0;
}

/* Claims the lowest free slot: few slots (and lock files) are ever used, and one that a dead
 * process left is soon claimed again and cleaned. */
static int slot_claim(struct sbx *sb)
{
    for (unsigned slot = 0; slot < SBX_SLOTS; slot++) {
        int fd = slot_try(sb->state_root, slot);
        if (fd < 0)
            continue;
        sb->slot = slot;
        sb->slot_fd = fd;
        /* Without root only the caller's own ids can be mapped. */
        sb->uid = sb->rootless ? geteuid() : SBX_ID_BASE + slot * SBX_ID_RANGE;
        sb->gid = sb->rootless ? getegid() : sb->uid;
        return 0;
    }
    return cru_err_set(CRU_ELIMIT, "all %u sandbox slots are in use", SBX_SLOTS);
}

/* Whether this kernel's tmpfs takes user xattrs, so that an overlay's upper layer fits on the
 * disk: learned from the first sandbox with an overlay (-1: not yet, 0: no, 1: yes). A fact
 * of the kernel, the same for every sandbox of the process. */
static atomic_int disk_takes_upper = -1;

/* The one folder every sandbox's root is mounted on: each init mounts its root there in a
 * mount namespace of its own, so that they never meet, and a sandbox costs the host's disk
 * (ext4, often, for /run) no folder to make and remove. 0711: the sandbox's root (an
 * unprivileged uid) mounts on it, but may not list it. */
static int root_mountpoint(const struct sbx *sb, char **out)
{
    int rc = cru_str_printf(out, "%s/root", sb->state_root);
    return rc < 0 ? rc : own_folder(*out, 0711);
}

static int state_prepare(struct sbx *sb)
{
    int rc;
    if ((rc = cru_str_printf(&sb->dir, "%s/sbx-%u", sb->state_root, sb->slot)) < 0 ||
        (rc = root_mountpoint(sb, &sb->root_dir)) < 0 ||
        (rc = cru_str_printf(&sb->disk_dir, "%s/.disk", sb->root_dir)) < 0 ||
        (rc = cru_str_printf(&sb->ws_lower_dir, "%s/.lower", sb->root_dir)) < 0)
        return rc;
    /* Leftovers of a dead process that held this slot. */
    if ((rc = cru_remove_tree(sb->dir)) < 0)
        return rc;
    /* The host's upper layer is used only where the disk cannot hold it (sandbox/mount.c):
     * made until a sandbox has shown that the disk can. */
    if (sb->workspace && !sb->opts.workspace_bind && atomic_load(&disk_takes_upper) != 1) {
        /* 0711: the sandbox's root must reach its upper and work dirs through here when it
         * mounts the overlay, but may not list anything. */
        if (mkdir(sb->dir, 0711) < 0)
            return cru_err_sys("cannot create the sandbox's state in %s", sb->dir);
        if ((rc = cru_str_printf(&sb->upper_dir, "%s/upper", sb->dir)) < 0 ||
            (rc = cru_str_printf(&sb->work_dir, "%s/work", sb->dir)) < 0)
            return rc;
        if (mkdir(sb->upper_dir, 0700) < 0 || mkdir(sb->work_dir, 0700) < 0 ||
            chown(sb->upper_dir, sb->uid, sb->gid) < 0 || chown(sb->work_dir, sb->uid, sb->gid) < 0)
            return cru_err_sys("cannot create the workspace's upper layer in %s", sb->dir);
    }
    return 0;
}

/* ---- user namespace ---- */

static int write_proc(pid_t pid, const char *file, const char *text)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return cru_err_sys("cannot open %s", path);
    int rc = cru_write_all(fd, text, strlen(text));
    close(fd);
    return rc < 0 ? cru_err_wrap(rc, "writing the sandbox's %s", file) : 0;
}

/* Root maps the slot's range of 65536 ids; without root the kernel lets a process map its own
 * uid and gid only, and the gid only once setgroups is denied (or the user could drop a group
 * that denies it access to something). */
static int write_maps(const struct sbx *sb)
{
    char map[64];
    int rc;
    snprintf(map, sizeof(map), "0 %u %u\n", (unsigned)sb->uid, sb->rootless ? 1 : SBX_ID_RANGE);
    if ((rc = write_proc(sb->init_pid, "uid_map", map)) < 0)
        return rc;
    if (sb->rootless && (rc = write_proc(sb->init_pid, "setgroups", "deny")) < 0)
        return rc;
    snprintf(map, sizeof(map), "0 %u %u\n", (unsigned)sb->gid, sb->rootless ? 1 : SBX_ID_RANGE);
    return write_proc(sb->init_pid, "gid_map", map);
}

static int userns_holder(void *arg)
{
    const int *pfd = arg;
    char c;
    close(pfd[1]); /* the read ends when the host closes its end */
    (void)!read(pfd[0], &c, 1);
    return 0;
}

/* A user namespace that maps uid and gid 0 to the host ids of a checker sandbox's artifact:
 * the idmap under which the workspace's files (the host's, owned by root) are the artifact's.
 * A child holds it while its maps are written and it is opened, then exits. */
static int artifact_userns(const struct sbx *sb, int *out)
{
    static _Alignas(16) char stack[16 * 1024];
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER; /* one stack for all threads */
    char map[64], path[64];
    int pfd[2], rc = 0;
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return cru_err_sys("cannot create a pipe");
    pthread_mutex_lock(&lock);
    pid_t pid = clone(userns_holder, stack + sizeof(stack), CLONE_NEWUSER | SIGCHLD, pfd);
    pthread_mutex_unlock(&lock);
    close(pfd[0]);
    if (pid < 0) {
        close(pfd[1]);
        return cru_err_sys("cannot create a user namespace for the artifact's files");
    }
    snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)(sb->uid + SBX_ARTIFACT_UID));
    rc = write_proc(pid, "uid_map", map);
    snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)(sb->gid + SBX_ARTIFACT_GID));
    if (rc == 0)
        rc = write_proc(pid, "gid_map", map);
    snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
    if (rc == 0 && (*out = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        rc = cru_err_sys("cannot open %s", path);
    close(pfd[1]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return rc;
}

/* A detached copy of the workspace tree whose file owners are shifted into the sandbox's
 * uid range: the host's root-owned files appear owned by the sandbox's root (a checker
 * sandbox's artifact), so the agent can edit them, while the files on disk keep their owners. */
static int workspace_tree(const struct sbx *sb, int *out)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)sb->init_pid);
    int userns = -1, rc = 0;
    if (sb->opts.checker)
        rc = artifact_userns(sb, &userns);
    else if ((userns = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        rc = cru_err_sys("cannot open %s", path);
    if (rc < 0)
        return rc;
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, sb->workspace,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0) {
        rc = cru_err_sys("cannot clone the mount tree of %s", sb->workspace);
        goto done;
    }
    struct mount_attr attr = {
        .attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        .userns_fd = (uint64_t)userns,
    };
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
        rc = cru_err_sys("cannot make an idmapped view of %s (its file system must support "
                         "idmapped mounts)",
                         sb->workspace);
        close(fd);
        goto done;
    }
    *out = fd;
done:
    close(userns);
    return rc;
}

/* ---- creation ---- */

static int validate(const struct sbx_opts *o)
{
    struct stat st;
    if (o->version != SBX_OPTS_VERSION)
        return cru_err_set(CRU_EINVAL, "sandbox options version %d, expected %d", o->version,
                           SBX_OPTS_VERSION);
    if (o->workspace) {
        if (stat(o->workspace, &st) < 0)
            return cru_err_sys("workspace %s", o->workspace);
        if (!S_ISDIR(st.st_mode))
            return cru_err_set(CRU_EINVAL, "workspace %s is not a directory", o->workspace);
    }
    if (o->cpus < 0 || o->cpus > 4096)
        return cru_err_set(CRU_EINVAL, "CPU quota %g is out of range (0, 4096]", o->cpus);
    if (o->hostname && (strlen(o->hostname) == 0 || strlen(o->hostname) > 64))
        return cru_err_set(CRU_EINVAL, "host name must have 1 to 64 characters");
    if (o->disk_bytes && (o->disk_bytes < SBX_DISK_MIN || o->disk_bytes > SBX_DISK_MAX))
        return cru_err_set(CRU_EINVAL, "disk of %llu bytes is out of range (1 MiB to 1 TiB)",
                           (unsigned long long)o->disk_bytes);
    if (o->checker && geteuid() != 0)
        return cru_err_set(CRU_EUNSUPPORTED,
                           "a checker sandbox needs root: its artifact is a second uid, which "
                           "only root can map");
    if (o->checker && !o->workspace)
        return cru_err_set(CRU_EINVAL, "a checker sandbox needs a workspace");
    if (o->disk_inodes && (o->disk_inodes < 64 || o->disk_inodes > SBX_INODES_MAX))
        return cru_err_set(CRU_EINVAL, "disk of %llu inodes is out of range (64 to %llu)",
                           (unsigned long long)o->disk_inodes, (unsigned long long)SBX_INODES_MAX);
    return 0;
}

static bool name_is(const char *name, void *arg)
{
    return strcmp(name, arg) == 0;
}

/* Without root and without a writable cgroup: each process's data segment and the sandbox
 * uid's process count stand in for the cgroup's memory and pids limits (RLIMIT_NPROC counts
 * per user namespace, so this sandbox's processes only). A CPU quota has no rlimit. */
static int rlimits_instead(struct sbx *sb, const struct sbx_cgroup_limits *lim)
{
    char why[CRU_ERR_MAX];
    snprintf(why, sizeof(why), "%s", cru_err_msg());
    if (lim->cpus > 0)
        return cru_err_set(CRU_EUNSUPPORTED,
                           "a CPU quota needs a cgroup, and without root crucible found no "
                           "writable one (%s); run as root, in a delegated cgroup subtree, or "
                           "without --cpus",
                           why);
    sb->data_bytes = lim->memory_bytes;
    sb->nproc = lim->pids;
    if (lim->memory_bytes || lim->pids)
        cru_info("no writable cgroup without root (%s): limits are rlimits per process "
                 "(memory: RLIMIT_DATA, pids: RLIMIT_NPROC); OOM is not reported",
                 why);
    return 0;
}

static int cgroup_prepare(struct sbx *sb)
{
    struct sbx_cgroup_limits lim = {
        .memory_bytes = sb->opts.memory_bytes,
        .pids = sb->opts.pids,
        .cpus = sb->opts.cpus,
        .lean = true,
    };
    /* Nothing to enforce, nothing to report (an OOM can only be the whole machine's): no
     * cgroup, whose creation and attach cost more than the rest of a small sandbox's start on
     * cgroup v1 (the attach waits for an RCU grace period). */
    if (!lim.memory_bytes && !lim.pids && lim.cpus <= 0) {
        sb->cg = NULL;
        return 0;
    }
    char name[32];
    slot_cgroup_name(name, sizeof(name), sb->slot);
    int rc = sbx_cgroup_new(&sb->cg, name, &lim);
    if (rc == CRU_EEXIST) {
        /* Left by a dead process that held this slot (ours, or of our user's rootless
         * sandboxes): we hold its lock now. */
        sbx_cgroup_sweep(name_is, name);
        rc = sbx_cgroup_new(&sb->cg, name, &lim);
    }
    if (rc == 0)
        return 0;
    sb->cg = NULL;
    if (sb->rootless && (rc == CRU_EPERM || rc == CRU_EUNSUPPORTED || rc == CRU_ENOENT))
        return rlimits_instead(sb, &lim);
    return cru_err_wrap(rc, "resource limits");
}

/* Waits for one message from the init, up to TIMEOUT_MS. */
static int await_msg(struct sbx *sb, uint64_t timeout_ms, char *buf, size_t cap, int *fds,
                     size_t *n_fds, struct sbx_msg *m)
{
    struct pollfd p = { sb->ctl_fd, POLLIN, 0 };
    int n = poll(&p, 1, (int)timeout_ms);
    if (n < 0)
        return cru_err_sys("waiting for the sandbox");
    if (n == 0)
        return cru_err_set(CRU_ETIMEDOUT, "the sandbox did not answer within %llu ms",
                           (unsigned long long)timeout_ms);
    ssize_t len = sbx_msg_recv(sb->ctl_fd, buf, cap, fds, n_fds);
    if (len < 0)
        return cru_err_sys("reading from the sandbox");
    if (len == 0)
        return cru_err_set(CRU_EIO, "the sandbox's init exited");
    memcpy(m, buf, sizeof(*m));
    if (m->len != (size_t)len - sizeof(*m))
        return cru_err_set(CRU_EIO, "malformed message from the sandbox");
    return 0;
}

/* Why clone() with new namespaces may fail on a machine, for the error message. */
static const char *userns_hint(void)
{
    char buf[32] = { 0 };
    int fd = open("/proc/sys/user/max_user_namespaces", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n > 0 && strtoul(buf, NULL, 10) == 0)
            return " (user namespaces are disabled: user.max_user_namespaces is 0)";
    }
    return "";
}

static int start_init(struct sbx *sb)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return cru_err_sys("cannot create the sandbox's control socket");
    pthread_once(&strings_once, strings_read);
    struct sbx_init_args args = {
        .ctl_fd = sv[1],
        .host_pid = getpid(),
        .rootless = sb->rootless,
        .root_dir = sb->root_dir,
        .disk_dir = sb->disk_dir,
        .disk_opts = sb->disk_opts,
        .ws_mode = !sb->workspace            ? SBX_WS_NONE
                   : sb->opts.workspace_bind ? SBX_WS_BIND
                                             : SBX_WS_OVERLAY,
        .ws_path = sb->workspace,
        .upper_dir = sb->upper_dir,
        .work_dir = sb->work_dir,
        .ws_lower_dir = sb->ws_lower_dir,
        .plan = &sb->plan,
        .hostname = sb->hostname,
        .loopback = sb->opts.loopback,
        .disable_layers = sb->opts.disable_layers,
        .file_bytes = sb->opts.file_bytes ? sb->opts.file_bytes : 1ull << 30,
        .open_files = sb->opts.open_files ? sb->opts.open_files : 1024,
        .data_bytes = sb->data_bytes,
        .nproc = sb->nproc,
        .oom_score_adj = CMD_OOM_SCORE_ADJ,
        .cmdline_start = host_strings[0],
        .cmdline_end = host_strings[1],
        .env_start = host_strings[2],
        .env_end = host_strings[3],
        .no_caps = sb->no_caps,
        .checker_caps = sb->checker_caps,
        .filter = sb->filter,
    };
    char *stack = malloc(INIT_STACK_SIZE);
    if (!stack) {
        close(sv[0]);
        close(sv[1]);
        return cru_err_set(CRU_ENOMEM, "out of memory for the init's stack");
    }
    /* The child gets a copy of this address space, so the stack and ARGS may go after. */
    pid_t pid = clone(sbx_init_main, stack + INIT_STACK_SIZE,
                      CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS |
                          CLONE_NEWIPC | SIGCHLD,
                      &args);
    int saved = errno;
    free(stack);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        errno = saved;
        return cru_err_sys("cannot create the sandbox's namespaces%s", userns_hint());
    }
    sb->init_pid = pid;
    sb->ctl_fd = sv[0];
    return 0;
}

int sbx_new(struct sbx **out, const struct sbx_opts *opts)
{
    struct sbx *sb = NULL;
    char buf[sizeof(struct sbx_msg) + 1024];
    int fds[3];
    size_t n_fds = 0;
    int ws_tree = -1;
    int rc;

    if ((rc = validate(opts)) < 0)
        return cru_err_wrap(rc, "creating a sandbox");
    /* Without root, only a dumpable process may write its children's uid maps: one that gave
     * up root without an execve is not, and would get a bare "permission denied". */
    if (geteuid() != 0 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0)
        return cru_err_set(CRU_EPERM, "creating a sandbox without root: this process is not "
                                      "dumpable (it dropped privileges without an execve), so "
                                      "the kernel lets it write no uid map");
    sb = calloc(1, sizeof(*sb));
    if (!sb)
        return cru_err_set(CRU_ENOMEM, "out of memory for a sandbox");
    sb->opts = *opts;
    sb->opts.binds = NULL; /* planned now, not kept */
    sb->opts.workspace = NULL;
    sb->slot_fd = sb->ctl_fd = sb->ws_fd = sb->disk_fd = -1;
    sb->rootless = geteuid() != 0;
    uint64_t disk = opts->disk_bytes ? opts->disk_bytes : SBX_DISK_DEFAULT;
    uint64_t inodes = opts->disk_inodes ? opts->disk_inodes : disk / SBX_DISK_BYTES_PER_INODE;
    snprintf(sb->disk_opts, sizeof(sb->disk_opts), "mode=0755,size=%llu,nr_inodes=%llu",
             (unsigned long long)disk, (unsigned long long)(inodes < 64 ? 64 : inodes));
    sb->opts.disk_bytes = disk;
    sb->opts.disk_inodes = inodes < 64 ? 64 : inodes;
    if ((rc = opts->state_root ? cru_str_dup(&sb->state_root, opts->state_root)
                               : state_root_default(&sb->state_root)) < 0 ||
        (rc = cru_str_dup(&sb->hostname, opts->hostname ? opts->hostname : "sandbox")) < 0)
        goto fail;
    if (opts->workspace && (rc = cru_str_dup(&sb->workspace, opts->workspace)) < 0)
        goto fail;
    if ((rc = cru_mkdir_p(sb->state_root, 0711)) < 0)
        goto fail;

    if ((rc = slot_claim(sb)) < 0 || (rc = state_prepare(sb)) < 0 ||
        (rc = cgroup_prepare(sb)) < 0 || (rc = sbx_plan_build(&sb->plan, opts)) < 0)
        goto fail;
    if (!(sb->no_caps = cap_init())) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory for a capability state");
        goto fail;
    }
    if (opts->checker && (rc = checker_caps_make(&sb->checker_caps)) < 0)
        goto fail;
    if (!(opts->disable_layers & SBX_LAYER_SECCOMP) && (rc = filter_get(&sb->filter)) < 0)
        goto fail;
    if ((rc = start_init(sb)) < 0)
        goto fail;
    if ((rc = write_maps(sb)) < 0)
        goto fail;
    if (sb->cg && (rc = sbx_cgroup_attach(sb->cg, sb->init_pid)) < 0)
        goto fail;
    /* Without root no idmapped mount can be made: the init binds the path itself, with the
     * caller's own rights, and the caller's files show as root's inside. */
    if (sb->workspace && !sb->rootless && (rc = workspace_tree(sb, &ws_tree)) < 0)
        goto fail;

    struct sbx_msg go = { .type = SBX_MSG_GO };
    if (sbx_msg_send(sb->ctl_fd, &go, NULL, &ws_tree, ws_tree >= 0 ? 1 : 0) < 0) {
        rc = cru_err_sys("cannot start the sandbox");
        goto fail;
    }
    struct sbx_msg m;
    if ((rc = await_msg(sb, SETUP_TIMEOUT_MS, buf, sizeof(buf), fds, &n_fds, &m)) < 0)
        goto fail;
    if (m.type == SBX_MSG_FAIL) {
        rc = cru_err_set(CRU_EIO, "%.*s%s", (int)m.len, buf + sizeof(m),
                         sb->rootless ? " (without root)" : "");
        goto fail;
    }
    struct sbx_ready ready;
    if (m.type != SBX_MSG_READY || n_fds != 2 || m.len != sizeof(ready)) {
        rc = cru_err_set(CRU_EIO, "the sandbox's init answered %u", m.type);
        goto fail;
    }
    memcpy(&ready, buf + sizeof(m), sizeof(ready));
    sb->upper_on_disk = ready.upper_on_disk != 0;
    if (sb->workspace && !sb->opts.workspace_bind)
        atomic_store(&disk_takes_upper, sb->upper_on_disk ? 1 : 0);
    if (sb->workspace && !sb->opts.workspace_bind && !sb->upper_on_disk)
        cru_warn("this kernel's tmpfs takes no user xattrs (Linux 6.6 does): the workspace's "
                 "changes go to %s, outside the sandbox's disk limit",
                 sb->upper_dir);
    sb->ws_fd = fds[0];
    sb->disk_fd = fds[1];
    n_fds = 0;
    sb->deadline_ns = cru_deadline_ms(opts->wall_ms);
    if (ws_tree >= 0)
        close(ws_tree);
    cru_debug("sandbox %u ready (init pid %d, uid %u)", sb->slot, (int)sb->init_pid,
              (unsigned)sb->uid);
    *out = sb;
    return 0;

fail:
    for (size_t i = 0; i < n_fds; i++)
        close(fds[i]);
    if (ws_tree >= 0)
        close(ws_tree);
    cru_err_wrap(rc, "creating a sandbox");
    sbx_free(sb);
    return rc;
}

/* ---- commands ---- */

struct stream {
    int fd; /* our end; -1 when closed */
    struct cru_buf *buf;
    size_t cap;
    uint64_t *total;
};

/* Reads what is available; keeps up to the cap, counts the rest. Returns false at EOF. */
static bool stream_read(struct stream *s)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(s->fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN;
        if (n == 0)
            return false;
        *s->total += (uint64_t)n;
        size_t room = s->buf->len < s->cap ? s->cap - s->buf->len : 0;
        size_t keep = (size_t)n < room ? (size_t)n : room;
        if (keep > 0 && cru_buf_append(s->buf, chunk, keep) < 0)
            return false;
    }
}

/* A capped output ends with a line saying so, so that nobody mistakes it for the whole. */
static void mark_truncated(struct cru_buf *b, uint64_t total)
{
    if (total > b->len)
        cru_buf_printf(b, "\n[crucible: output truncated: %zu of %llu bytes kept]\n", b->len,
                       (unsigned long long)total);
}

static void stream_close(struct stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* Writes what the pipe takes of the pending stdin; closes it when all is written. */
static void stdin_feed(int *fd, const char **data, size_t *left)
{
    while (*left > 0) {
        ssize_t n = write(*fd, *data, *left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0)
            break; /* the command closed its stdin: what it did not read is dropped */
        *data += n;
        *left -= (size_t)n;
    }
    close(*fd);
    *fd = -1;
}

static int pipe_pair(int p[2])
{
    if (pipe2(p, O_CLOEXEC) < 0)
        return cru_err_sys("cannot create a pipe");
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* A full disk (no block or no inode left) is reported like an OOM: the command most likely
 * failed on it, and nothing inside may have said so. */
static void disk_check(const struct sbx *sb, struct sbx_result *res)
{
    struct statfs st;
    if (sb->disk_fd >= 0 && fstatfs(sb->disk_fd, &st) == 0)
        res->disk_full = st.f_bavail == 0 || st.f_ffree == 0;
}

int sbx_exec(struct sbx *sb, const struct sbx_cmd *cmd, struct sbx_result *res)
{
    static const char *const shell_argv[] = { "/bin/sh", "-c", NULL, NULL };
    const char *argv_sh[4];
    const char *const *argv = cmd->argv;
    struct cru_buf req = CRU_BUF_INIT;
    int in_p[2] = { -1, -1 }, out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
    int rc = 0;
    char buf[sizeof(struct sbx_msg) + 1024];
    sigset_t pipe_set, old_set;

    memset(res, 0, sizeof(*res));
    if (sb->oom_lost_init)
        return cru_err_set(CRU_ELIMIT, "the sandbox is spent: the OOM killer took its init");
    if (sb->broken)
        return cru_err_set(CRU_EIO, "the sandbox is broken; destroy it");
    if (cru_deadline_passed(sb->deadline_ns))
        return cru_err_set(CRU_ETIMEDOUT, "the sandbox's wall-clock limit has passed");
    if (!argv) {
        if (!cmd->shell)
            return cru_err_set(CRU_EINVAL, "no command given");
        memcpy(argv_sh, shell_argv, sizeof(argv_sh));
        argv_sh[2] = cmd->shell;
        argv = argv_sh;
    }
    if ((rc = sbx_exec_req_pack(&req, cmd->cwd ? cmd->cwd : "/workspace", argv,
                                cmd->env ? cmd->env : default_env)) < 0)
        goto done;

    /* stdin: the caller's fd, or the data through a pipe, or an empty pipe (EOF at once). */
    if (cmd->stdin_fd < 0 && (rc = pipe_pair(in_p)) < 0)
        goto done;
    if (cmd->stdout_fd < 0 && (rc = pipe_pair(out_p)) < 0)
        goto done;
    if (cmd->stderr_fd < 0 && (rc = pipe_pair(err_p)) < 0)
        goto done;
    int child_fds[3] = { cmd->stdin_fd >= 0 ? cmd->stdin_fd : in_p[0],
                         cmd->stdout_fd >= 0 ? cmd->stdout_fd : out_p[1],
                         cmd->stderr_fd >= 0 ? cmd->stderr_fd : err_p[1] };

    uint64_t id = ++sb->next_id;
    struct sbx_msg m = { .type = SBX_MSG_EXEC, .len = (uint32_t)req.len, .id = id };
    uint64_t start = cru_now_ns();
    if (sbx_msg_send(sb->ctl_fd, &m, req.data, child_fds, 3) < 0) {
        sb->broken = true;
        rc = cru_err_sys("cannot send the command to the sandbox");
        goto done;
    }
    close_fd(&in_p[0]);
    close_fd(&out_p[1]);
    close_fd(&err_p[1]);

    const char *in_data = cmd->stdin_data;
    size_t in_left = cmd->stdin_data && cmd->stdin_fd < 0 ? cmd->stdin_len : 0;
    if (in_left == 0)
        close_fd(&in_p[1]);
    else
        fcntl(in_p[1], F_SETFL, O_NONBLOCK);
    struct stream out = { out_p[0], &res->out, cmd->stdout_cap ? cmd->stdout_cap : 1 << 20,
                          &res->out_total };
    struct stream err = { err_p[0], &res->err, cmd->stderr_cap ? cmd->stderr_cap : 1 << 20,
                          &res->err_total };
    out_p[0] = err_p[0] = -1;
    if (out.fd >= 0)
        fcntl(out.fd, F_SETFL, O_NONBLOCK);
    if (err.fd >= 0)
        fcntl(err.fd, F_SETFL, O_NONBLOCK);

    /* A command that closes its stdin early must not kill us with SIGPIPE. */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);

    uint64_t deadline = cru_deadline_ms(cmd->timeout_ms);
    if (sb->deadline_ns && (deadline == 0 || sb->deadline_ns < deadline))
        deadline = sb->deadline_ns;
    uint64_t kill_deadline = 0;
    bool exited = false;
    struct sbx_exit ex = { 0 };
    while (!exited) {
        struct pollfd p[4] = {
            { sb->ctl_fd, POLLIN, 0 },
            { out.fd, POLLIN, 0 },
            { err.fd, POLLIN, 0 },
            { in_p[1], POLLOUT, 0 },
        };
        uint64_t wait =
            kill_deadline ? cru_deadline_left_ms(kill_deadline) : cru_deadline_left_ms(deadline);
        if (cmd->cancel && !kill_deadline && wait > CANCEL_POLL_MS)
            wait = CANCEL_POLL_MS; /* a flag cannot wake poll: look at it this often */
        int n = poll(p, 4, wait > INT32_MAX ? -1 : (int)wait);
        if (n < 0 && errno != EINTR) {
            rc = cru_err_sys("waiting for the command");
            break;
        }
        if (n == 0 && kill_deadline) {
            sb->broken = true;
            rc = cru_err_set(CRU_EIO, "the sandbox did not stop the command within %d ms",
                             KILL_GRACE_MS);
            break;
        }
        bool cancel = cmd->cancel && !kill_deadline && atomic_load(cmd->cancel);
        if ((n == 0 && cru_deadline_passed(deadline)) || cancel) {
            /* The timeout (or the cancel): kill the command's whole process group, then wait
             * for the report. */
            struct sbx_msg k = { .type = SBX_MSG_KILL, .id = id };
            sbx_msg_send(sb->ctl_fd, &k, NULL, NULL, 0);
            res->timed_out = !cancel;
            res->cancelled = cancel;
            kill_deadline = cru_deadline_ms(KILL_GRACE_MS);
            continue;
        }
        if (n == 0)
            continue;
        if (p[1].revents && !stream_read(&out))
            stream_close(&out);
        if (p[2].revents && !stream_read(&err))
            stream_close(&err);
        if (p[3].revents)
            stdin_feed(&in_p[1], &in_data, &in_left);
        if (p[0].revents) {
            int fds[3];
            size_t n_fds = 0;
            struct sbx_msg r;
            if ((rc = await_msg(sb, 0, buf, sizeof(buf), fds, &n_fds, &r)) < 0) {
                sb->broken = true;
                break;
            }
            for (size_t i = 0; i < n_fds; i++)
                close(fds[i]);
            if (r.type == SBX_MSG_FAIL) {
                rc = cru_err_set(CRU_EIO, "the sandbox could not run the command: %.*s", (int)r.len,
                                 buf + sizeof(r));
                break;
            }
            if (r.type == SBX_MSG_EXITED && r.id == id && r.len == sizeof(ex)) {
                memcpy(&ex, buf + sizeof(r), sizeof(ex));
                exited = true;
            }
        }
    }
    res->wall_ms = cru_elapsed_ms(start);
    /* What the command wrote before it ended; a process it left behind that still holds the
     * pipes does not hold up the result. */
    if (out.fd >= 0)
        stream_read(&out);
    if (err.fd >= 0)
        stream_read(&err);
    stream_close(&out);
    stream_close(&err);
    close_fd(&in_p[1]);
    mark_truncated(&res->out, res->out_total);
    mark_truncated(&res->err, res->err_total);
    {
        struct timespec zero = { 0, 0 };
        while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {
        }
        pthread_sigmask(SIG_SETMASK, &old_set, NULL);
    }
    /* The init itself may have been the OOM killer's choice (init.c says how commands make
     * that unlikely): the command then ended with the sandbox, and what it ran into was the
     * memory limit, not a fault of crucible's. Its result says so; the sandbox is spent. */
    uint64_t kills;
    if (rc < 0 && sb->broken && sb->cg && sbx_cgroup_oom_kills(sb->cg, &kills) == 0 &&
        kills > sb->oom_kills) {
        cru_warn("the OOM killer took the sandbox's init: the sandbox ends with this command");
        sb->oom_kills = kills;
        sb->oom_lost_init = true;
        res->oom = true;
        res->signal = SIGKILL;
        res->exit_code = 128 + SIGKILL;
        res->timed_out = false;
        disk_check(sb, res);
        rc = 0;
        goto done;
    }
    if (rc < 0 || !exited)
        goto done;

    if (WIFEXITED(ex.status)) {
        res->exit_code = WEXITSTATUS(ex.status);
    } else if (WIFSIGNALED(ex.status)) {
        res->signal = WTERMSIG(ex.status);
        res->exit_code = 128 + res->signal;
    }
    res->cpu_ms = (uint64_t)(ex.utime_us + ex.stime_us) / 1000;
    res->max_rss_kb = (uint64_t)ex.maxrss_kb;
    /* The OOM killer may pick any process of the command (a shell's child, say): an OOM kill
     * in the sandbox since the last command ended is this command's. */
    if (sb->cg && sbx_cgroup_oom_kills(sb->cg, &kills) == 0) {
        res->oom = kills > sb->oom_kills;
        sb->oom_kills = kills;
    }
    if (res->oom)
        res->timed_out = false;
    disk_check(sb, res);
done:
    for (int i = 0; i < 2; i++) {
        close_fd(&in_p[i]);
        close_fd(&out_p[i]);
        close_fd(&err_p[i]);
    }
    cru_buf_free(&req);
    return rc;
}

void sbx_result_free(struct sbx_result *res)
{
    if (!res)
        return;
    cru_buf_free(&res->out);
    cru_buf_free(&res->err);
}

int sbx_workspace_fd(const struct sbx *sb)
{
    return sb->ws_fd;
}

uid_t sbx_root_uid(const struct sbx *sb)
{
    return sb->uid;
}

gid_t sbx_root_gid(const struct sbx *sb)
{
    return sb->gid;
}

pid_t sbx_init_pid(const struct sbx *sb)
{
    return sb->init_pid;
}

bool sbx_lost_to_oom(const struct sbx *sb)
{
    return sb->oom_lost_init;
}

static enum sbx_enforce enforce(const struct sbx *sb, bool asked, uint64_t rlimit)
{
    if (!asked)
        return SBX_ENFORCE_NONE;
    return sb->cg ? SBX_ENFORCE_CGROUP : rlimit ? SBX_ENFORCE_RLIMIT : SBX_ENFORCE_NONE;
}

void sbx_info_get(const struct sbx *sb, struct sbx_info *out)
{
    *out = (struct sbx_info){
        .rootless = sb->rootless,
        .cgroup = sb->cg ? sbx_cgroup_version(sb->cg) : NULL,
        .memory = enforce(sb, sb->opts.memory_bytes > 0, sb->data_bytes),
        .pids = enforce(sb, sb->opts.pids > 0, sb->nproc),
        .cpu = enforce(sb, sb->opts.cpus > 0, 0),
        .disk_bytes = sb->opts.disk_bytes,
        .disk_inodes = sb->opts.disk_inodes,
        .workspace_on_disk = !sb->opts.workspace_bind && (!sb->workspace || sb->upper_on_disk),
    };
}

json_t *sbx_info_json(const struct sbx_info *i)
{
    return json_pack("{s:s, s:s?, s:s, s:s, s:s, s:I, s:I, s:b}", "mode",
                     i->rootless ? "rootless" : "root", "cgroup", i->cgroup, "memory",
                     sbx_enforce_name(i->memory), "pids", sbx_enforce_name(i->pids), "cpu",
                     sbx_enforce_name(i->cpu), "disk_bytes", (json_int_t)i->disk_bytes,
                     "disk_inodes", (json_int_t)i->disk_inodes, "workspace_on_disk",
                     i->workspace_on_disk);
}

const char *sbx_enforce_name(enum sbx_enforce e)
{
    switch (e) {
    case SBX_ENFORCE_CGROUP:
        return "cgroup";
    case SBX_ENFORCE_RLIMIT:
        return "rlimit";
    case SBX_ENFORCE_NONE:
        break;
    }
    return "none";
}

void sbx_free(struct sbx *sb)
{
    if (!sb)
        return;
    int saved = errno;
    if (sb->init_pid > 0) {
        /* PID 1 dying takes the whole pid namespace with it. */
        kill(sb->init_pid, SIGKILL);
        while (waitpid(sb->init_pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    close_fd(&sb->ctl_fd);
    close_fd(&sb->ws_fd);
    close_fd(&sb->disk_fd);
    sbx_cgroup_free(sb->cg);
    if (sb->dir && cru_remove_tree(sb->dir) < 0)
        cru_warn("destroying a sandbox: %s", cru_err_msg());
    close_fd(&sb->slot_fd);
    sbx_plan_free(&sb->plan);
    if (sb->no_caps)
        cap_free(sb->no_caps);
    if (sb->checker_caps)
        cap_free(sb->checker_caps);
    free(sb->workspace);
    free(sb->state_root);
    free(sb->dir);
    free(sb->root_dir);
    free(sb->disk_dir);
    free(sb->upper_dir);
    free(sb->work_dir);
    free(sb->ws_lower_dir);
    free(sb->hostname);
    free(sb);
    errno = saved;
}
