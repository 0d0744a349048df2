/* seccomp: the sandbox's system-call filter, built with libseccomp and loaded just before exec.
 *
 * Two filters are loaded. The main one is an allow-list: Docker's default profile for a
 * container without extra capabilities, less io_uring, adjtimex, clock_adjtime,
 * name_to_handle_at, modify_ldt, ptrace and process_vm_*; clone3 fails with ENOSYS so that
 * libc falls back to clone, whose flags may not create namespaces; personality, socket and
 * socketpair are allowed for a few argument values only; openat2 fails with ENOSYS (libc
 * falls back to openat, whose mode can be checked); everything else fails with EPERM; and a
 * call from a non-native ABI (i386 int 0x80, x32) kills the process. The second filter (the
 * guard) allows everything except ioctl TIOCSTI and TIOCLINUX, compared on the low 32 bits of
 * the request as the kernel reads it, and a mode with the setuid or setgid bit given to a file
 * by chmod, fchmod, fchmodat, fchmodat2, mknod, mknodat, creat, or open and openat when they
 * create. The module does not drop capabilities or create namespaces
 * (the sandbox does that around it), and it does not know syscalls newer than the libseccomp
 * it is built with: those fail with EPERM like any other unlisted call, not with ENOSYS.
 */
#include "sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"

/* The programs the build compiled (tools/seccomp_gen.c): sbx_builtin[]. */
#ifdef SBX_SECCOMP_BUILTIN
#include "seccomp_bpf.h"
#endif

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Calls without which no program runs. If libseccomp cannot name one of these, the table or
 * the library is broken, and a filter built from it would be useless: fail instead. */
static const char *const core_syscalls[] = {
    /* files */
    "read", "write", "openat", "close", "fstat", "newfstatat", "lseek", "pread64", "ioctl", "fcntl",
    "dup3", "pipe2", "getdents64",
    /* memory */
    "mmap", "mprotect", "munmap", "brk",
    /* processes and signals */
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "execve", "exit", "exit_group", "wait4",
    "futex", "set_tid_address", "set_robust_list", "getpid", "getrandom", "prlimit64"
};

/* Docker's unconditional allow-list for a container without added capabilities, for 64-bit
 * ABIs (the 32-bit-only names are dropped: those ABIs are killed), with our refusals removed.
 * A name unknown to this libseccomp or architecture is skipped: it stays refused. */
static const char *const allowed_syscalls[] = {
    /* files and directories */
    "access", "chdir", "chmod", "chown", "close_range", "copy_file_range", "creat", "dup", "dup2",
    "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir", "fchmod", "fchmodat",
    "fchmodat2", "fchown", "fchownat", "fdatasync", "flock", "fstatfs", "fsync", "ftruncate",
    "futimesat", "getcwd", "getdents", "lchown", "link", "linkat", "lstat", "mkdir", "mkdirat",
    "mknod", "mknodat", "open", "pipe", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2",
    "readahead", "readlink", "readlinkat", "readv", "rename", "renameat", "renameat2", "rmdir",
    "sendfile", "splice", "stat", "statfs", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "tee", "truncate", "umask", "unlink", "unlinkat", "utime",
    "utimensat", "utimes", "vmsplice", "writev",
    /* extended attributes */
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "lgetxattr", "listxattr",
    "llistxattr", "lremovexattr", "lsetxattr", "removexattr", "setxattr",
    /* polling, events, notification */
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
    "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "pause", "poll", "ppoll", "pselect6",
    "select", "signalfd", "signalfd4",
    /* asynchronous I/O (the old AIO interface; io_uring is refused) */
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit",
    "ioprio_get", "ioprio_set",
    /* memory */
    "madvise", "membarrier", "memfd_create", "memfd_secret", "mincore", "mlock", "mlock2",
    "mlockall", "mremap", "msync", "munlock", "munlockall", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "remap_file_pages",
    /* processes, threads, signals (clone is conditional, below) */
    "arch_prctl", "capget", "capset", "execveat", "fork", "vfork", "futex_requeue", "futex_wait",
    "futex_waitv", "futex_wake", "get_robust_list", "get_thread_area", "getcpu", "getpgid",
    "getpgrp", "getppid", "getpriority", "getrusage", "getsid", "gettid", "kill", "pidfd_open",
    "pidfd_send_signal", "prctl", "process_mrelease", "restart_syscall", "rseq", "rt_sigpending",
    "rt_sigqueueinfo", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "set_thread_area",
    "setpgid", "setpriority", "setsid", "sigaltstack", "tgkill", "tkill", "waitid",
    /* credentials (the kernel checks capabilities; these cannot gain any) */
    "getegid", "geteuid", "getgid", "getgroups", "getresgid", "getresuid", "getuid", "setfsgid",
    "setfsuid", "setgid", "setgroups", "setregid", "setresgid", "setresuid", "setreuid", "setuid",
    /* time and limits (setting the clocks is refused) */
    "alarm", "clock_getres", "clock_gettime", "clock_nanosleep", "getitimer", "getrlimit",
    "gettimeofday", "nanosleep", "setitimer", "setrlimit", "sysinfo", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create",
    "timerfd_gettime", "timerfd_settime", "times", "uname",
    /* System V and POSIX IPC */
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend", "mq_unlink",
    "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop", "shmat",
    "shmctl", "shmdt", "shmget",
    /* sockets (socket and socketpair are conditional, below) */
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen",
    "recvfrom", "recvmmsg", "recvmsg", "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown",
    /* self-restriction only: a process can add filters and Landlock rules, never remove them */
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "seccomp"
};

/* The namespace flags; clone with any of them is refused. CLONE_NEWTIME shares its bit with
 * clone's exit signal (a signal number of 128 or more, which the kernel rejects anyway). */
#define SBX_CLONE_NS_FLAGS                                                                         \
    (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |     \
     CLONE_NEWCGROUP | CLONE_NEWTIME)

/* The kernel's SOCK_TYPE_MASK: the socket type without SOCK_NONBLOCK and SOCK_CLOEXEC. */
#define SBX_SOCK_TYPE_BITS 0xf

/* The kernel reads ioctl's request as an unsigned int: compare the low 32 bits only. */
#define SBX_IOCTL_CMD_BITS 0xffffffffu

#define ARG_EQ(i, v)                                                                               \
    {                                                                                              \
        .arg = (i), .op = SCMP_CMP_EQ, .datum_a = (v)                                              \
    }
#define ARG_MASKED_EQ(i, mask, v)                                                                  \
    {                                                                                              \
        .arg = (i), .op = SCMP_CMP_MASKED_EQ, .datum_a = (mask), .datum_b = (v)                    \
    }

/* An allow rule whose comparisons must all hold. Rules for one syscall are alternatives. */
struct cond_rule {
    const char *syscall;
    unsigned int n_cmp;
    struct scmp_arg_cmp cmp[2];
};

static const struct cond_rule conditional_rules[] = {
    /* clone only without namespace flags (arg0 is the flags on x86_64 and arm64) */
    { "clone", 1, { ARG_MASKED_EQ(0, SBX_CLONE_NS_FLAGS, 0) } },
    /* personality: Docker's harmless values: PER_LINUX, UNAME26, ADDR_NO_RANDOMIZE, both of
     * those, and 0xffffffff, which only queries */
    { "personality", 1, { ARG_EQ(0, 0x0) } },
    { "personality", 1, { ARG_EQ(0, 0x0008) } },
    { "personality", 1, { ARG_EQ(0, 0x20000) } },
    { "personality", 1, { ARG_EQ(0, 0x20008) } },
    { "personality", 1, { ARG_EQ(0, 0xffffffff) } },
    /* local sockets: any type */
    { "socket", 1, { ARG_EQ(0, AF_UNIX) } },
    /* IP: stream and datagram only, so no SOCK_RAW (forged packets) and no SOCK_PACKET (the
     * legacy packet socket); the mask lets SOCK_NONBLOCK and SOCK_CLOEXEC through */
    { "socket", 2, { ARG_EQ(0, AF_INET), ARG_MASKED_EQ(1, SBX_SOCK_TYPE_BITS, SOCK_STREAM) } },
    { "socket", 2, { ARG_EQ(0, AF_INET), ARG_MASKED_EQ(1, SBX_SOCK_TYPE_BITS, SOCK_DGRAM) } },
    { "socket", 2, { ARG_EQ(0, AF_INET6), ARG_MASKED_EQ(1, SBX_SOCK_TYPE_BITS, SOCK_STREAM) } },
    { "socket", 2, { ARG_EQ(0, AF_INET6), ARG_MASKED_EQ(1, SBX_SOCK_TYPE_BITS, SOCK_DGRAM) } },
    /* netlink for addresses and routes only (getifaddrs, ip): not audit, not uevents, etc. */
    { "socket", 2, { ARG_EQ(0, AF_NETLINK), ARG_EQ(2, NETLINK_ROUTE) } },
    { "socketpair", 1, { ARG_EQ(0, AF_UNIX) } },
};

/* Refused by the guard filter; everything else about ioctl is allowed. */
static const unsigned long refused_ioctls[] = {
    TIOCSTI,   /* pushes input into a terminal, so it runs as whoever reads that terminal */
    TIOCLINUX, /* virtual-console controls, including selection paste (the same attack) */
};

/* The kernel's __O_TMPFILE: O_TMPFILE without O_DIRECTORY, the bit that means "create". */
#define SBX_O_TMPFILE_BIT 020000000

/* The calls that can give a file a mode, where the mode is (argument MODE) and, for the open
 * family, whether they create (argument FLAGS, -1: they always do). The guard refuses any of
 * them whose mode carries S_ISUID or S_ISGID: a file the agent makes in a bound workspace
 * lands on the host's disk, owned by whoever owns that folder (root, for an episode's), and a
 * setuid bit there would hand that owner's rights to any host user who runs it. The sandbox's
 * mounts are nosuid, which protects the sandbox, not the host. mkdir is left alone: a
 * directory's setuid bit means nothing and its setgid bit only picks the group of new files. */
static const struct mode_call {
    const char *name;
    int mode, flags;
} mode_calls[] = {
    { "chmod", 1, -1 },     { "fchmod", 1, -1 }, { "fchmodat", 2, -1 },
    { "fchmodat2", 2, -1 }, { "creat", 1, -1 },  { "open", 2, 1 },
    { "openat", 3, 2 },     { "mknod", 1, -1 },  { "mknodat", 2, -1 },
};

/* libseccomp returns -errno; cru_err_sys reads errno and picks the code from it. */
static int seccomp_fail(int rc, const char *what, const char *name)
{
    errno = -rc;
    return cru_err_sys("seccomp: %s %s", what, name);
}

/* Adds one rule for the syscall NAME. An unknown name is an error when REQUIRED, else the
 * rule is skipped and the call stays under the default action. */
static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, bool required,
                    unsigned int n_cmp, const struct scmp_arg_cmp *cmp)
{
    /* Negative: unknown (__NR_SCMP_ERROR) or a pseudo-number for a call this arch lacks. */
    int nr = seccomp_syscall_resolve_name(name);
    if (nr < 0) {
        if (required)
            return cru_err_set(
                CRU_EUNSUPPORTED, "seccomp: libseccomp %u.%u.%u does not know the syscall %s",
                seccomp_version()->major, seccomp_version()->minor, seccomp_version()->micro, name);
        return 0;
    }
    /* _exact: libseccomp must not rewrite the rule for the architecture behind our back. */
    int rc = seccomp_rule_add_exact_array(ctx, action, nr, n_cmp, cmp);
    if (rc < 0)
        return seccomp_fail(rc, "adding a rule for", name);
    return 0;
}

/* A filter with DEFAULT_ACTION that kills the process on a non-native ABI. */
static int filter_new(scmp_filter_ctx *out, uint32_t default_action)
{
    scmp_filter_ctx ctx = seccomp_init(default_action);
    if (ctx == NULL)
        return cru_err_set(CRU_ENOMEM, "seccomp: cannot create a filter");
    int rc;
    /* Only the native arch is in the filter, so i386 and x32 calls get this action; killing
     * the whole process (not just the thread) leaves nothing half-running. */
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0) {
        rc = seccomp_fail(rc, "setting the bad-arch action", "KILL_PROCESS");
        goto fail;
    }
    /* The caller has set no_new_privs already; setting it again is harmless, and without it
     * the kernel refuses an unprivileged filter. */
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1)) < 0) {
        rc = seccomp_fail(rc, "setting", "no_new_privs");
        goto fail;
    }
    /* Report the kernel's errno from seccomp_load instead of libseccomp's ECANCELED. */
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1)) < 0) {
        rc = seccomp_fail(rc, "setting", "SYSRAWRC");
        goto fail;
    }
    /* A binary search over syscall numbers, not a linear scan of ~300 comparisons. */
    if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)) < 0) {
        rc = seccomp_fail(rc, "setting", "OPTIMIZE");
        goto fail;
    }
    *out = ctx;
    return 0;
fail:
    seccomp_release(ctx);
    return rc;
}

static int build_allow_list(scmp_filter_ctx *out)
{
    scmp_filter_ctx ctx = NULL;
    int rc = filter_new(&ctx, SCMP_ACT_ERRNO(EPERM));
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < ARRAY_LEN(core_syscalls); i++) {
        if ((rc = add_rule(ctx, SCMP_ACT_ALLOW, core_syscalls[i], true, 0, NULL)) < 0)
            goto done;
    }
    for (size_t i = 0; i < ARRAY_LEN(allowed_syscalls); i++) {
        if ((rc = add_rule(ctx, SCMP_ACT_ALLOW, allowed_syscalls[i], false, 0, NULL)) < 0)
            goto done;
    }
    for (size_t i = 0; i < ARRAY_LEN(conditional_rules); i++) {
        const struct cond_rule *r = &conditional_rules[i];
        if ((rc = add_rule(ctx, SCMP_ACT_ALLOW, r->syscall, true, r->n_cmp, r->cmp)) < 0)
            goto done;
    }
    /* ENOSYS, not EPERM: libc then falls back to clone, whose flags the filter can read
     * (clone3's are behind a pointer). Required: an EPERM here would break pthread_create. */
    if ((rc = add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", true, 0, NULL)) < 0)
        goto done;
    /* Likewise openat2: its mode is behind a pointer, where the guard cannot see a setuid bit;
     * with ENOSYS, programs fall back to openat. Not required: an older libseccomp that does
     * not know it leaves it refused with EPERM. */
    if ((rc = add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "openat2", false, 0, NULL)) < 0)
        goto done;
    *out = ctx;
    ctx = NULL;
done:
    seccomp_release(ctx);
    return rc;
}

/* Refuses CALL when its mode has S_ISUID or S_ISGID (and, for the open family, when it
 * creates): one rule per bit and per creating flag, since a rule's comparisons all must hold
 * and one argument can be compared once per rule. */
static int add_mode_rules(scmp_filter_ctx ctx, const struct mode_call *c)
{
    static const unsigned long bits[] = { S_ISUID, S_ISGID };
    static const unsigned long creating[] = { O_CREAT, SBX_O_TMPFILE_BIT };
    int rc = 0;
    for (size_t b = 0; rc == 0 && b < ARRAY_LEN(bits); b++) {
        struct scmp_arg_cmp cmp[2] = { ARG_MASKED_EQ((unsigned)c->mode, bits[b], bits[b]) };
        if (c->flags < 0) {
            rc = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), c->name, false, 1, cmp);
            continue;
        }
        for (size_t f = 0; rc == 0 && f < ARRAY_LEN(creating); f++) {
            cmp[1] =
                (struct scmp_arg_cmp)ARG_MASKED_EQ((unsigned)c->flags, creating[f], creating[f]);
            rc = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), c->name, false, 2, cmp);
        }
    }
    return rc;
}

/* libseccomp cannot say "allow ioctl unless the masked request is X" in the allow-list:
 * overlapping rules for one syscall with different actions are resolved in an order it does
 * not specify. The kernel runs every loaded filter and takes the strictest verdict, so a
 * separate default-allow filter that refuses these requests, and the modes above, is exact. */
static int build_guard(scmp_filter_ctx *out)
{
    scmp_filter_ctx ctx = NULL;
    int rc = filter_new(&ctx, SCMP_ACT_ALLOW);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < ARRAY_LEN(refused_ioctls); i++) {
        struct scmp_arg_cmp cmp[1] = { ARG_MASKED_EQ(1, SBX_IOCTL_CMD_BITS, refused_ioctls[i]) };
        if ((rc = add_rule(ctx, SCMP_ACT_ERRNO(EPERM), "ioctl", true, 1, cmp)) < 0)
            goto done;
    }
    for (size_t i = 0; i < ARRAY_LEN(mode_calls); i++) {
        if ((rc = add_mode_rules(ctx, &mode_calls[i])) < 0)
            goto done;
    }
    *out = ctx;
    ctx = NULL;
done:
    seccomp_release(ctx);
    return rc;
}

/* Compiles CTX to classic BPF through a memory file (libseccomp 2.5 exports only to a fd). */
static int export_program(scmp_filter_ctx ctx, struct sock_fprog *out)
{
    struct cru_buf b = CRU_BUF_INIT;
    int rc = 0;
    int fd = memfd_create("crucible-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return cru_err_sys("seccomp: cannot create a memory file for the filter");
    if ((rc = seccomp_export_bpf(ctx, fd)) < 0) {
        rc = seccomp_fail(rc, "exporting", "the filter");
        goto done;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        rc = cru_err_sys("seccomp: cannot rewind the exported filter");
        goto done;
    }
    for (;;) {
        size_t n;
        if ((rc = cru_buf_reserve(&b, 4096)) < 0 ||
            (rc = cru_read_some(fd, b.data + b.len, b.cap - 1 - b.len, &n, "the filter")) < 0)
            goto done;
        if (n == 0)
            break;
        b.len += n;
    }
    if (b.len == 0 || b.len % sizeof(struct sock_filter) != 0 ||
        b.len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
        rc =
            cru_err_set(CRU_EINTERNAL, "seccomp: exported filter of %zu bytes is malformed", b.len);
        goto done;
    }
    out->len = (unsigned short)(b.len / sizeof(struct sock_filter));
    out->filter = (struct sock_filter *)(void *)cru_buf_detach(&b, NULL);
    if (!out->filter)
        rc = CRU_ENOMEM;
done:
    cru_buf_free(&b);
    close(fd);
    return rc;
}

int sbx_seccomp_compile(struct sbx_seccomp *out)
{
    scmp_filter_ctx guard = NULL;
    scmp_filter_ctx allow = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    /* The guard first: installing a filter needs prctl(2), which the guard allows whatever
     * the allow-list says. */
    if ((rc = build_guard(&guard)) < 0 || (rc = build_allow_list(&allow)) < 0 ||
        (rc = export_program(guard, &out->prog[0])) < 0 ||
        (rc = export_program(allow, &out->prog[1])) < 0) {
        sbx_seccomp_free(out);
        goto done;
    }
    out->n = 2;
done:
    seccomp_release(guard);
    seccomp_release(allow);
    return rc;
}

int sbx_seccomp_builtin(struct sbx_seccomp *out)
{
    memset(out, 0, sizeof(*out));
#ifdef SBX_SECCOMP_BUILTIN
    _Static_assert(sizeof(sbx_builtin) / sizeof(sbx_builtin[0]) == SBX_SECCOMP_PROGRAMS,
                   "the built-in programs are as many as the filter has");
    for (size_t i = 0; i < SBX_SECCOMP_PROGRAMS; i++) {
        size_t bytes = sbx_builtin[i].len * sizeof(struct sock_filter);
        if (!(out->prog[i].filter = malloc(bytes))) {
            sbx_seccomp_free(out);
            return cru_err_set(CRU_ENOMEM, "out of memory for the seccomp filter");
        }
        memcpy(out->prog[i].filter, sbx_builtin[i].insns, bytes);
        out->prog[i].len = (unsigned short)sbx_builtin[i].len;
    }
    out->n = SBX_SECCOMP_PROGRAMS;
    return 0;
#else
    return cru_err_set(CRU_EUNSUPPORTED, "this build carries no compiled seccomp filter");
#endif
}

int sbx_seccomp_load(struct sbx_seccomp *out)
{
    int rc = sbx_seccomp_builtin(out);
    return rc == CRU_EUNSUPPORTED ? sbx_seccomp_compile(out) : rc;
}

void sbx_seccomp_free(struct sbx_seccomp *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < SBX_SECCOMP_PROGRAMS; i++)
        free(s->prog[i].filter);
    memset(s, 0, sizeof(*s));
}

int sbx_seccomp_install(const struct sbx_seccomp *s)
{
    for (size_t i = 0; i < s->n; i++) {
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &s->prog[i], 0, 0) < 0)
            return -1;
    }
    return 0;
}

int sbx_seccomp_apply(void)
{
    struct sbx_seccomp s;
    int rc = sbx_seccomp_load(&s);
    if (rc < 0)
        return rc;
    /* Without no_new_privs the kernel refuses a filter from an unprivileged process. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        rc = cru_err_sys("seccomp: cannot set no_new_privs");
    else if (sbx_seccomp_install(&s) < 0)
        rc = cru_err_sys("seccomp: cannot install the filter");
    sbx_seccomp_free(&s);
    return rc;
}
