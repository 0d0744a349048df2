/* Tests for sandbox/seccomp: every refusal is probed twice, in two forked children, one with
 * the filter and one without, so that no probe passes because the call fails anyway. Probes
 * that change the system (mounts, namespaces) run in a private mount namespace or only affect
 * the throwaway child. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/netlink.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/quota.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/err.h"
#include "sandbox/seccomp.h"

#ifndef __X32_SYSCALL_BIT
#define __X32_SYSCALL_BIT 0x40000000
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

extern char **environ;

/* State that a probe's setup (run before the filter) hands to the probed call. */
struct probe_ctx {
    int fd;
    int fd2;
    long aux;       /* a value for the parent to compare with, e.g. the child's pid */
    char out[4096]; /* output captured by the sanity probes */
};

typedef int setup_fn(struct probe_ctx *c);
typedef long call_fn(struct probe_ctx *c);

struct outcome {
    int sig;    /* the signal that killed the probe child; 0 if it exited */
    int status; /* its exit status */
    long ret;   /* the probed call's return value */
    int err;    /* errno when ret == -1 */
    long aux;
    char out[4096];
    char text[128]; /* the above in words */
};

enum { PROBE_OK = 0, PROBE_SETUP_FAILED = 101, PROBE_FILTER_FAILED = 102 };

enum control {
    CONTROL_SUCCEEDS, /* without the filter the call succeeds (we are root) */
    CONTROL_DIFFERS,  /* without the filter it fails too, but not with the filter's errno */
};

static void write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(103);
        b += w;
        n -= (size_t)w;
    }
}

/* What happened to the probe, in words, for assertion messages. */
static void describe(struct outcome *o)
{
    if (o->sig != 0)
        snprintf(o->text, sizeof(o->text), "killed by signal %d (%s)", o->sig, strsignal(o->sig));
    else if (o->status != PROBE_OK)
        snprintf(o->text, sizeof(o->text), "exited with status %d", o->status);
    else if (o->ret == -1)
        snprintf(o->text, sizeof(o->text), "failed with %s", strerrorname_np(o->err));
    else
        snprintf(o->text, sizeof(o->text), "returned %ld", o->ret);
}

/* Runs SETUP (if any) and CALL in a forked child, with the filter between them if FILTERED,
 * and reports how it went. The child never returns into Criterion. */
static struct outcome run_probe(setup_fn *setup, call_fn *call, bool filtered)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        struct probe_ctx c = { .fd = -1, .fd2 = -1 };
        if (setup != NULL && setup(&c) < 0) {
            fprintf(stderr, "probe setup: %s\n", strerror(errno));
            _exit(PROBE_SETUP_FAILED);
        }
        if (filtered) {
            if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || sbx_seccomp_apply() != 0) {
                fprintf(stderr, "probe filter: %s\n", cru_err_msg());
                _exit(PROBE_FILTER_FAILED);
            }
        }
        errno = 0;
        long ret = call(&c);
        struct outcome o = { .ret = ret, .err = ret == -1 ? errno : 0, .aux = c.aux };
        memcpy(o.out, c.out, sizeof(o.out));
        write_all(p[1], &o, sizeof(o));
        _exit(PROBE_OK);
    }
    close(p[1]);
    struct outcome o;
    memset(&o, 0, sizeof(o));
    size_t got = 0;
    while (got < sizeof(o)) {
        ssize_t r = read(p[0], (char *)&o + got, sizeof(o) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(p[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    o.sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    o.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    cr_assert_neq(o.status, PROBE_SETUP_FAILED, "the probe's setup failed (see stderr)");
    cr_assert_neq(o.status, PROBE_FILTER_FAILED, "sbx_seccomp_apply failed (see stderr)");
    if (o.sig == 0 && o.status == PROBE_OK)
        cr_assert_eq(got, sizeof(o), "the probe child sent a short report");
    describe(&o);
    return o;
}

static bool completed(const struct outcome *o)
{
    return o->sig == 0 && o->status == PROBE_OK;
}

/* The probe must fail with ERR under the filter, and succeed (or fail otherwise) without. */
static void expect_refused_with(const char *what, setup_fn *setup, call_fn *call,
                                enum control control, int err)
{
    struct outcome open = run_probe(setup, call, false);
    cr_assert(completed(&open), "%s without the filter: %s", what, open.text);
    if (control == CONTROL_SUCCEEDS)
        cr_assert(open.ret >= 0, "%s: the control must succeed without the filter, but %s", what,
                  open.text);
    else
        cr_assert(open.ret != -1 || open.err != err,
                  "%s: without the filter it %s as well, so the probe proves nothing", what,
                  open.text);

    struct outcome shut = run_probe(setup, call, true);
    cr_log_info("%s: without the filter %s", what, open.text);
    cr_log_info("%s: with the filter %s", what, shut.text);
    cr_assert(completed(&shut) && shut.ret == -1 && shut.err == err,
              "%s with the filter: want %s, got: %s (without: %s)", what, strerrorname_np(err),
              shut.text, open.text);
}

static void expect_refused(const char *what, setup_fn *setup, call_fn *call, enum control control)
{
    expect_refused_with(what, setup, call, control, EPERM);
}

/* The probe must succeed with the filter, and without it (so that the test is about the
 * filter, not the machine). */
static void expect_allowed(const char *what, setup_fn *setup, call_fn *call)
{
    struct outcome open = run_probe(setup, call, false);
    cr_assert(completed(&open) && open.ret >= 0, "%s without the filter: %s", what, open.text);
    struct outcome shut = run_probe(setup, call, true);
    cr_assert(completed(&shut) && shut.ret >= 0, "%s with the filter: %s", what, shut.text);
}

/* --- setups (unfiltered, in the probe child) --- */

static int setup_private_mounts(struct probe_ctx *c)
{
    (void)c;
    if (unshare(CLONE_NEWNS) < 0)
        return -1;
    return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

static int setup_tmpfs_on_tmp(struct probe_ctx *c)
{
    if (setup_private_mounts(c) < 0)
        return -1;
    return mount("crucible-probe", "/tmp", "tmpfs", 0, NULL);
}

static int setup_fs_context(struct probe_ctx *c)
{
    if (setup_private_mounts(c) < 0)
        return -1;
    c->fd = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    return c->fd < 0 ? -1 : 0;
}

static int setup_fs_created(struct probe_ctx *c)
{
    if (setup_fs_context(c) < 0)
        return -1;
    return (int)syscall(SYS_fsconfig, c->fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
}

static int setup_detached_mount(struct probe_ctx *c)
{
    if (setup_fs_created(c) < 0)
        return -1;
    c->fd = (int)syscall(SYS_fsmount, c->fd, FSMOUNT_CLOEXEC, 0);
    return c->fd < 0 ? -1 : 0;
}

static int setup_pivot_dir(struct probe_ctx *c)
{
    if (setup_tmpfs_on_tmp(c) < 0)
        return -1;
    return chdir("/tmp");
}

static int setup_net_ns_fd(struct probe_ctx *c)
{
    c->fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    return c->fd < 0 ? -1 : 0;
}

static int setup_new_uts_ns(struct probe_ctx *c)
{
    (void)c;
    return unshare(CLONE_NEWUTS);
}

static int setup_pidfd(struct probe_ctx *c)
{
    c->fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    return c->fd < 0 ? -1 : 0;
}

/* A pseudo-terminal: fd is the terminal side, fd2 the master. */
static int setup_pty(struct probe_ctx *c)
{
    c->fd2 = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (c->fd2 < 0 || grantpt(c->fd2) < 0 || unlockpt(c->fd2) < 0)
        return -1;
    const char *name = ptsname(c->fd2);
    if (name == NULL)
        return -1;
    c->fd = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    return c->fd < 0 ? -1 : 0;
}

static int setup_io_uring(struct probe_ctx *c)
{
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    c->fd = (int)syscall(SYS_io_uring_setup, 4, &params);
    return c->fd < 0 ? -1 : 0;
}

/* --- namespaces and clone --- */

static long call_clone3(struct probe_ctx *c)
{
    (void)c;
    /* A NULL, zero-sized argument: without the filter the kernel says EINVAL, which also
     * shows that it has clone3 at all. */
    return syscall(SYS_clone3, NULL, 0);
}

Test(seccomp, clone3_fails_with_enosys)
{
    expect_refused_with("clone3", NULL, call_clone3, CONTROL_DIFFERS, ENOSYS);
}

/* A raw clone with FLAGS, like fork (no new stack); the child exits at once. */
static long raw_clone(unsigned long flags)
{
    long pid = syscall(SYS_clone, flags, 0, NULL, NULL, 0);
    if (pid == 0)
        _exit(0);
    if (pid > 0) {
        int st;
        if (waitpid((pid_t)pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return -2;
    }
    return pid;
}

static unsigned long clone_probe_flags;

static long call_clone_flags(struct probe_ctx *c)
{
    (void)c;
    return raw_clone(clone_probe_flags);
}

Test(seccomp, clone_with_namespace_flags_refused)
{
    static const struct {
        unsigned long flag;
        const char *name;
    } flags[] = {
        { CLONE_NEWNS, "CLONE_NEWNS" },         { CLONE_NEWUTS, "CLONE_NEWUTS" },
        { CLONE_NEWIPC, "CLONE_NEWIPC" },       { CLONE_NEWUSER, "CLONE_NEWUSER" },
        { CLONE_NEWPID, "CLONE_NEWPID" },       { CLONE_NEWNET, "CLONE_NEWNET" },
        { CLONE_NEWCGROUP, "CLONE_NEWCGROUP" },
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        clone_probe_flags = flags[i].flag | SIGCHLD;
        expect_refused(flags[i].name, NULL, call_clone_flags, CONTROL_SUCCEEDS);
    }
}

Test(seccomp, clone_flags_with_high_bits_refused)
{
    /* The kernel ignores the upper 32 bits of clone's flags; they must not hide CLONE_NEW*. */
    clone_probe_flags = (1ul << 32) | CLONE_NEWUSER | SIGCHLD;
    expect_refused("clone((1<<32)|CLONE_NEWUSER)", NULL, call_clone_flags, CONTROL_SUCCEEDS);
}

static long call_fork(struct probe_ctx *c)
{
    (void)c;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st) == 0 ? 0 : -1;
}

static long call_plain_clone(struct probe_ctx *c)
{
    (void)c;
    return raw_clone(SIGCHLD);
}

static void *thread_main(void *arg)
{
    return arg;
}

static long call_pthread(struct probe_ctx *c)
{
    (void)c;
    /* glibc tries clone3 first and falls back to clone on ENOSYS. */
    pthread_t t;
    void *res = NULL;
    int rc = pthread_create(&t, NULL, thread_main, &res);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    if ((rc = pthread_join(t, &res)) != 0) {
        errno = rc;
        return -1;
    }
    return res != NULL ? 0 : -2;
}

Test(seccomp, fork_clone_and_threads_work)
{
    expect_allowed("fork", NULL, call_fork);
    expect_allowed("clone(SIGCHLD)", NULL, call_plain_clone);
    expect_allowed("pthread_create", NULL, call_pthread);
}

static long call_unshare_user(struct probe_ctx *c)
{
    (void)c;
    return unshare(CLONE_NEWUSER);
}

static long call_unshare_net(struct probe_ctx *c)
{
    (void)c;
    return unshare(CLONE_NEWNET);
}

Test(seccomp, unshare_refused)
{
    expect_refused("unshare(CLONE_NEWUSER)", NULL, call_unshare_user, CONTROL_SUCCEEDS);
    expect_refused("unshare(CLONE_NEWNET)", NULL, call_unshare_net, CONTROL_SUCCEEDS);
}

static long call_setns(struct probe_ctx *c)
{
    return setns(c->fd, CLONE_NEWNET);
}

Test(seccomp, setns_refused)
{
    expect_refused("setns(own net ns)", setup_net_ns_fd, call_setns, CONTROL_SUCCEEDS);
}

static long call_sethostname(struct probe_ctx *c)
{
    (void)c;
    return sethostname("crucible-probe", 14);
}

Test(seccomp, sethostname_refused)
{
    expect_refused("sethostname (own UTS ns)", setup_new_uts_ns, call_sethostname,
                   CONTROL_SUCCEEDS);
}

/* --- the mount API --- */

static long call_mount(struct probe_ctx *c)
{
    (void)c;
    return mount("crucible-probe", "/tmp", "tmpfs", 0, NULL);
}

static long call_umount2(struct probe_ctx *c)
{
    (void)c;
    return umount2("/tmp", 0);
}

Test(seccomp, mount_and_umount_refused)
{
    expect_refused("mount(tmpfs)", setup_private_mounts, call_mount, CONTROL_SUCCEEDS);
    expect_refused("umount2", setup_tmpfs_on_tmp, call_umount2, CONTROL_SUCCEEDS);
}

static long call_open_tree(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_open_tree, AT_FDCWD, "/tmp", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
}

static long call_fsopen(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
}

static long call_fsconfig(struct probe_ctx *c)
{
    return syscall(SYS_fsconfig, c->fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
}

static long call_fsmount(struct probe_ctx *c)
{
    return syscall(SYS_fsmount, c->fd, FSMOUNT_CLOEXEC, 0);
}

static long call_move_mount(struct probe_ctx *c)
{
    return syscall(SYS_move_mount, c->fd, "", AT_FDCWD, "/tmp", MOVE_MOUNT_F_EMPTY_PATH);
}

static long call_fspick(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_fspick, AT_FDCWD, "/proc", FSPICK_CLOEXEC);
}

static long call_mount_setattr(struct probe_ctx *c)
{
    (void)c;
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
    return syscall(SYS_mount_setattr, AT_FDCWD, "/tmp", 0, &attr, sizeof(attr));
}

Test(seccomp, new_mount_api_refused)
{
    expect_refused("open_tree", setup_private_mounts, call_open_tree, CONTROL_SUCCEEDS);
    expect_refused("fsopen", NULL, call_fsopen, CONTROL_SUCCEEDS);
    expect_refused("fsconfig", setup_fs_context, call_fsconfig, CONTROL_SUCCEEDS);
    expect_refused("fsmount", setup_fs_created, call_fsmount, CONTROL_SUCCEEDS);
    expect_refused("move_mount", setup_detached_mount, call_move_mount, CONTROL_SUCCEEDS);
    expect_refused("fspick", NULL, call_fspick, CONTROL_SUCCEEDS);
    expect_refused("mount_setattr", setup_tmpfs_on_tmp, call_mount_setattr, CONTROL_SUCCEEDS);
}

static long call_pivot_root(struct probe_ctx *c)
{
    (void)c;
    /* pivot_root(".", "."): the new root is the tmpfs on /tmp, the old one stacks under it. */
    return syscall(SYS_pivot_root, ".", ".");
}

static long call_chroot(struct probe_ctx *c)
{
    (void)c;
    return chroot("/");
}

Test(seccomp, pivot_root_and_chroot_refused)
{
    expect_refused("pivot_root", setup_pivot_dir, call_pivot_root, CONTROL_SUCCEEDS);
    expect_refused("chroot", NULL, call_chroot, CONTROL_SUCCEEDS);
}

/* --- other processes' memory --- */

static long call_ptrace_traceme(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL);
}

Test(seccomp, ptrace_refused)
{
    expect_refused("ptrace(PTRACE_TRACEME)", NULL, call_ptrace_traceme, CONTROL_SUCCEEDS);
}

static long call_process_vm_readv(struct probe_ctx *c)
{
    (void)c;
    char src[8] = "secret", dst[8];
    struct iovec local = { dst, sizeof(dst) }, remote = { src, sizeof(src) };
    return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0);
}

static long call_process_vm_writev(struct probe_ctx *c)
{
    (void)c;
    char src[8] = "secret", dst[8];
    struct iovec local = { src, sizeof(src) }, remote = { dst, sizeof(dst) };
    return syscall(SYS_process_vm_writev, getpid(), &local, 1, &remote, 1, 0);
}

static long call_pidfd_getfd(struct probe_ctx *c)
{
    return syscall(SYS_pidfd_getfd, c->fd, 0, 0);
}

Test(seccomp, process_vm_and_pidfd_getfd_refused)
{
    expect_refused("process_vm_readv", NULL, call_process_vm_readv, CONTROL_SUCCEEDS);
    expect_refused("process_vm_writev", NULL, call_process_vm_writev, CONTROL_SUCCEEDS);
    expect_refused("pidfd_getfd", setup_pidfd, call_pidfd_getfd, CONTROL_SUCCEEDS);
}

/* --- kernel attack surface: bpf, userfaultfd, perf, io_uring, keys --- */

static long call_bpf(struct probe_ctx *c)
{
    (void)c;
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    return syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
}

Test(seccomp, bpf_refused)
{
    expect_refused("bpf(BPF_MAP_CREATE)", NULL, call_bpf, CONTROL_SUCCEEDS);
}

static long call_userfaultfd(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_userfaultfd, O_CLOEXEC);
}

Test(seccomp, userfaultfd_refused)
{
    expect_refused("userfaultfd", NULL, call_userfaultfd, CONTROL_SUCCEEDS);
}

static long call_perf_event_open(struct probe_ctx *c)
{
    (void)c;
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof(attr);
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    return syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

Test(seccomp, perf_event_open_refused)
{
    expect_refused("perf_event_open(software clock)", NULL, call_perf_event_open, CONTROL_SUCCEEDS);
}

static long call_io_uring_setup(struct probe_ctx *c)
{
    return setup_io_uring(c) < 0 ? -1 : c->fd;
}

static long call_io_uring_enter(struct probe_ctx *c)
{
    return syscall(SYS_io_uring_enter, c->fd, 0, 0, 0, NULL, 0);
}

static long call_io_uring_register(struct probe_ctx *c)
{
    /* Asks which operations the kernel supports: no side effect. */
    static struct {
        struct io_uring_probe head;
        struct io_uring_probe_op ops[256];
    } probe;
    return syscall(SYS_io_uring_register, c->fd, IORING_REGISTER_PROBE, &probe, 256);
}

Test(seccomp, io_uring_refused)
{
    expect_refused("io_uring_setup", NULL, call_io_uring_setup, CONTROL_SUCCEEDS);
    expect_refused("io_uring_enter", setup_io_uring, call_io_uring_enter, CONTROL_SUCCEEDS);
    expect_refused("io_uring_register", setup_io_uring, call_io_uring_register, CONTROL_SUCCEEDS);
}

static long call_keyctl(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0);
}

static long call_add_key(struct probe_ctx *c)
{
    (void)c;
    /* Into the process keyring, which dies with the probe child. */
    return syscall(SYS_add_key, "user", "crucible-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
}

static long call_request_key(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_request_key, "user", "crucible-missing", NULL, 0);
}

Test(seccomp, key_syscalls_refused)
{
    expect_refused("keyctl(KEYCTL_GET_KEYRING_ID)", NULL, call_keyctl, CONTROL_SUCCEEDS);
    expect_refused("add_key", NULL, call_add_key, CONTROL_SUCCEEDS);
    expect_refused("request_key", NULL, call_request_key, CONTROL_DIFFERS);
}

/* --- machine-wide controls: kexec, modules, time, reboot, swap, accounting, ... --- */

static long call_kexec_load(struct probe_ctx *c)
{
    (void)c;
    /* Invalid flags: EINVAL for root where kexec is built, ENOSYS where it is not. */
    return syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000ul);
}

static long call_kexec_file_load(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0xdead0000ul);
}

Test(seccomp, kexec_refused)
{
    expect_refused("kexec_load", NULL, call_kexec_load, CONTROL_DIFFERS);
    expect_refused("kexec_file_load", NULL, call_kexec_file_load, CONTROL_DIFFERS);
}

static long call_init_module(struct probe_ctx *c)
{
    (void)c;
    /* Not an ELF image: ENOEXEC (or ENOSYS on a kernel without modules), never loaded. */
    static const char junk[64];
    return syscall(SYS_init_module, junk, sizeof(junk), "");
}

static long call_finit_module(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_finit_module, -1, "", 0);
}

static long call_delete_module(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_delete_module, "crucible_no_such_module", O_NONBLOCK);
}

Test(seccomp, module_syscalls_refused)
{
    expect_refused("init_module", NULL, call_init_module, CONTROL_DIFFERS);
    expect_refused("finit_module", NULL, call_finit_module, CONTROL_DIFFERS);
    expect_refused("delete_module", NULL, call_delete_module, CONTROL_DIFFERS);
}

static long call_settimeofday(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_settimeofday, NULL, NULL); /* sets nothing, but needs CAP_SYS_TIME */
}

static long call_clock_settime(struct probe_ctx *c)
{
    (void)c;
    struct timespec ts = { 1, 0 };
    return syscall(SYS_clock_settime, CLOCK_MONOTONIC, &ts); /* EINVAL: not settable */
}

static long call_adjtimex(struct probe_ctx *c)
{
    (void)c;
    struct timex tx = { .modes = 0 }; /* reads only */
    return syscall(SYS_adjtimex, &tx);
}

static long call_clock_adjtime(struct probe_ctx *c)
{
    (void)c;
    struct timex tx = { .modes = 0 };
    return syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx);
}

Test(seccomp, clock_setting_refused)
{
    expect_refused("settimeofday(NULL, NULL)", NULL, call_settimeofday, CONTROL_SUCCEEDS);
    expect_refused("clock_settime(CLOCK_MONOTONIC)", NULL, call_clock_settime, CONTROL_DIFFERS);
    expect_refused("adjtimex(read)", NULL, call_adjtimex, CONTROL_SUCCEEDS);
    expect_refused("clock_adjtime(read)", NULL, call_clock_adjtime, CONTROL_SUCCEEDS);
}

static long call_reboot(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_reboot, 0, 0, 0, NULL); /* wrong magic: EINVAL for root */
}

static long call_swapon(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_swapon, "/nonexistent/crucible-swap", 0);
}

static long call_swapoff(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_swapoff, "/nonexistent/crucible-swap");
}

static long call_acct(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_acct, "/nonexistent/crucible-acct");
}

static long call_quotactl(struct probe_ctx *c)
{
    (void)c;
    char buf[64];
    return syscall(SYS_quotactl, QCMD((unsigned int)Q_GETINFO, USRQUOTA), "/nonexistent/dev", 0,
                   buf);
}

static long call_syslog(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_syslog, 10, NULL, 0); /* SYSLOG_ACTION_SIZE_BUFFER */
}

static long call_iopl(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_iopl, 0);
}

static long call_ioperm(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_ioperm, 0x80, 1, 0);
}

static long call_modify_ldt(struct probe_ctx *c)
{
    (void)c;
    static char ldt[64];
    return syscall(SYS_modify_ldt, 0, ldt, sizeof(ldt)); /* read */
}

static long call_lookup_dcookie(struct probe_ctx *c)
{
    (void)c;
    char buf[64];
    return syscall(SYS_lookup_dcookie, 0, buf, sizeof(buf));
}

static long call_nfsservctl(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_nfsservctl, 0, NULL, NULL);
}

Test(seccomp, machine_controls_refused)
{
    expect_refused("reboot(bad magic)", NULL, call_reboot, CONTROL_DIFFERS);
    expect_refused("swapon", NULL, call_swapon, CONTROL_DIFFERS);
    expect_refused("swapoff", NULL, call_swapoff, CONTROL_DIFFERS);
    expect_refused("acct", NULL, call_acct, CONTROL_DIFFERS);
    expect_refused("quotactl", NULL, call_quotactl, CONTROL_DIFFERS);
    expect_refused("syslog(SIZE_BUFFER)", NULL, call_syslog, CONTROL_SUCCEEDS);
    /* ENOSYS without the filter on kernels built without CONFIG_X86_IOPL_IOPERM */
    expect_refused("iopl(0)", NULL, call_iopl, CONTROL_DIFFERS);
    expect_refused("ioperm", NULL, call_ioperm, CONTROL_DIFFERS);
    expect_refused("modify_ldt(read)", NULL, call_modify_ldt, CONTROL_SUCCEEDS);
    expect_refused("lookup_dcookie", NULL, call_lookup_dcookie, CONTROL_DIFFERS);
    expect_refused("nfsservctl", NULL, call_nfsservctl, CONTROL_DIFFERS);
}

static long call_name_to_handle_at(struct probe_ctx *c)
{
    (void)c;
    struct {
        unsigned int handle_bytes;
        int handle_type;
        unsigned char f_handle[128];
    } h = { .handle_bytes = 128 };
    int mount_id;
    return syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &h, &mount_id, 0);
}

static long call_open_by_handle_at(struct probe_ctx *c)
{
    (void)c;
    struct {
        unsigned int handle_bytes;
        int handle_type;
        unsigned char f_handle[8];
    } h = { .handle_bytes = 8, .handle_type = 1 };
    /* A made-up handle: ESTALE or EINVAL for root, never the filter's EPERM. */
    return syscall(SYS_open_by_handle_at, AT_FDCWD, &h, O_RDONLY);
}

Test(seccomp, file_handles_refused)
{
    expect_refused("name_to_handle_at", NULL, call_name_to_handle_at, CONTROL_SUCCEEDS);
    expect_refused("open_by_handle_at", NULL, call_open_by_handle_at, CONTROL_DIFFERS);
}

/* --- personality --- */

static long call_personality_bsd(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_personality, 0x0006ul); /* PER_BSD */
}

static long call_personality_exec(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_personality, 0x0400000ul); /* READ_IMPLIES_EXEC */
}

static long call_personality_query(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_personality, 0xfffffffful);
}

static long call_personality_no_aslr(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_personality, 0x0020000ul); /* ADDR_NO_RANDOMIZE */
}

Test(seccomp, personality_limited_to_harmless_values)
{
    expect_refused("personality(PER_BSD)", NULL, call_personality_bsd, CONTROL_SUCCEEDS);
    expect_refused("personality(READ_IMPLIES_EXEC)", NULL, call_personality_exec, CONTROL_SUCCEEDS);
    expect_allowed("personality(0xffffffff)", NULL, call_personality_query);
    expect_allowed("personality(ADDR_NO_RANDOMIZE)", NULL, call_personality_no_aslr);
}

/* --- ioctl --- */

static long call_tiocsti(struct probe_ctx *c)
{
    char ch = 'x';
    return syscall(SYS_ioctl, c->fd, (unsigned long)TIOCSTI, &ch);
}

static long call_tiocsti_high_bits(struct probe_ctx *c)
{
    /* The kernel truncates the request to 32 bits, so this is TIOCSTI to it. */
    char ch = 'x';
    return syscall(SYS_ioctl, c->fd, (1ul << 32) | TIOCSTI, &ch);
}

static long call_tioclinux(struct probe_ctx *c)
{
    char subcode = 12; /* TIOCL_GETFGCONSOLE */
    return syscall(SYS_ioctl, c->fd, (unsigned long)TIOCLINUX, &subcode);
}

static long call_tiocgwinsz(struct probe_ctx *c)
{
    struct winsize ws;
    return syscall(SYS_ioctl, c->fd, (unsigned long)TIOCGWINSZ, &ws);
}

static long call_fionread_high_bits(struct probe_ctx *c)
{
    int n;
    return syscall(SYS_ioctl, c->fd, (1ul << 32) | FIONREAD, &n);
}

Test(seccomp, ioctl_tiocsti_and_tioclinux_refused)
{
    expect_refused("ioctl(TIOCSTI)", setup_pty, call_tiocsti, CONTROL_SUCCEEDS);
    expect_refused("ioctl((1<<32)|TIOCSTI)", setup_pty, call_tiocsti_high_bits, CONTROL_SUCCEEDS);
    expect_refused("ioctl(TIOCLINUX) on a pty", setup_pty, call_tioclinux, CONTROL_DIFFERS);
}

Test(seccomp, other_ioctls_allowed)
{
    expect_allowed("ioctl(TIOCGWINSZ)", setup_pty, call_tiocgwinsz);
    expect_allowed("ioctl((1<<32)|FIONREAD)", setup_pty, call_fionread_high_bits);
}

/* --- sockets --- */

static int sock_domain, sock_type, sock_protocol;

static long call_socket(struct probe_ctx *c)
{
    (void)c;
    return socket(sock_domain, sock_type, sock_protocol);
}

static long call_socketpair(struct probe_ctx *c)
{
    (void)c;
    int sv[2];
    return socketpair(sock_domain, sock_type, sock_protocol, sv);
}

static void socket_refused(const char *what, int domain, int type, int protocol,
                           enum control control)
{
    sock_domain = domain;
    sock_type = type;
    sock_protocol = protocol;
    expect_refused(what, NULL, call_socket, control);
}

static void socket_allowed(const char *what, int domain, int type, int protocol)
{
    sock_domain = domain;
    sock_type = type;
    sock_protocol = protocol;
    expect_allowed(what, NULL, call_socket);
}

Test(seccomp, socket_families_refused)
{
    socket_refused("AF_PACKET", AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), CONTROL_SUCCEEDS);
    socket_refused("AF_ALG", AF_ALG, SOCK_SEQPACKET, 0, CONTROL_DIFFERS);
    socket_refused("AF_VSOCK", AF_VSOCK, SOCK_STREAM, 0, CONTROL_DIFFERS);
    socket_refused("AF_NETLINK/NETLINK_AUDIT", AF_NETLINK, SOCK_RAW, NETLINK_AUDIT,
                   CONTROL_SUCCEEDS);
    socket_refused("AF_NETLINK/NETLINK_KOBJECT_UEVENT", AF_NETLINK, SOCK_DGRAM,
                   NETLINK_KOBJECT_UEVENT, CONTROL_SUCCEEDS);
    socket_refused("AF_KEY", AF_KEY, SOCK_RAW, 2, CONTROL_DIFFERS);
}

Test(seccomp, raw_ip_sockets_refused)
{
    socket_refused("AF_INET SOCK_RAW", AF_INET, SOCK_RAW, IPPROTO_ICMP, CONTROL_SUCCEEDS);
    socket_refused("AF_INET SOCK_RAW|SOCK_CLOEXEC", AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP,
                   CONTROL_SUCCEEDS);
    socket_refused("AF_INET6 SOCK_RAW", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6, CONTROL_SUCCEEDS);
    socket_refused("AF_INET SOCK_PACKET", AF_INET, SOCK_PACKET, htons(ETH_P_ALL), CONTROL_SUCCEEDS);
}

Test(seccomp, ordinary_sockets_allowed)
{
    socket_allowed("AF_INET SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC", AF_INET,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    socket_allowed("AF_INET SOCK_DGRAM", AF_INET, SOCK_DGRAM, 0);
    socket_allowed("AF_INET6 SOCK_STREAM", AF_INET6, SOCK_STREAM, 0);
    socket_allowed("AF_INET6 SOCK_DGRAM|SOCK_CLOEXEC", AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socket_allowed("AF_UNIX SOCK_SEQPACKET", AF_UNIX, SOCK_SEQPACKET, 0);
    socket_allowed("AF_NETLINK/NETLINK_ROUTE", AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
}

Test(seccomp, socketpair_only_unix)
{
    sock_domain = AF_UNIX;
    sock_type = SOCK_STREAM;
    sock_protocol = 0;
    expect_allowed("socketpair(AF_UNIX)", NULL, call_socketpair);
    sock_domain = AF_INET;
    expect_refused("socketpair(AF_INET)", NULL, call_socketpair, CONTROL_DIFFERS);
}

/* --- non-native ABIs --- */

static long call_int80_getpid(struct probe_ctx *c)
{
#if defined(__x86_64__)
    c->aux = getpid();
    int ret;
    /* The i386 getpid (20) through the 32-bit entry point. */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory", "r8", "r9", "r10", "r11");
    return ret;
#else
    (void)c;
    return -1;
#endif
}

Test(seccomp, i386_syscall_kills)
{
#if !defined(__x86_64__)
    cr_skip_test("the i386 ABI probe is for x86_64");
#else
    struct outcome open = run_probe(NULL, call_int80_getpid, false);
    if (!completed(&open) || open.ret != open.aux)
        cr_skip_test("int 0x80 getpid does not work without the filter (%s): the kernel has no "
                     "IA32 emulation, so there is no i386 ABI to refuse",
                     open.text);
    struct outcome shut = run_probe(NULL, call_int80_getpid, true);
    cr_log_info("int 0x80 getpid: without the filter %s (pid %ld)", open.text, open.aux);
    cr_log_info("int 0x80 getpid: with the filter %s", shut.text);
    cr_assert_eq(shut.sig, SIGSYS, "int 0x80 with the filter: want SIGSYS, got: %s", shut.text);
#endif
}

static long call_x32_getpid(struct probe_ctx *c)
{
    c->aux = getpid();
    return syscall(__X32_SYSCALL_BIT | SYS_getpid);
}

Test(seccomp, x32_syscall_kills)
{
#if !defined(__x86_64__)
    cr_skip_test("the x32 ABI probe is for x86_64");
#else
    /* Without the filter: the pid where the kernel has CONFIG_X86_X32_ABI, else ENOSYS. */
    struct outcome open = run_probe(NULL, call_x32_getpid, false);
    cr_assert(completed(&open) && (open.ret == open.aux || open.err == ENOSYS),
              "x32 getpid without the filter: %s", open.text);
    struct outcome shut = run_probe(NULL, call_x32_getpid, true);
    cr_log_info("x32 getpid: without the filter %s (pid %ld)", open.text, open.aux);
    cr_log_info("x32 getpid: with the filter %s", shut.text);
    cr_assert_eq(shut.sig, SIGSYS, "x32 getpid with the filter: want SIGSYS, got: %s", shut.text);
#endif
}

/* --- ordinary programs still work --- */

/* Runs ARGV with stdout into c->out; returns its exit status, or -1. */
static long spawn_capture(struct probe_ctx *c, char *const argv[])
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        errno = rc;
        return -1;
    }
    size_t len = 0;
    ssize_t r;
    while (len < sizeof(c->out) - 1 &&
           ((r = read(p[0], c->out + len, sizeof(c->out) - 1 - len)) > 0 || errno == EINTR))
        len += r > 0 ? (size_t)r : 0;
    c->out[len] = '\0';
    close(p[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static long call_shell(struct probe_ctx *c)
{
    char prog[] = "/bin/sh", opt[] = "-c",
         script[] = "echo ok; ls / >/dev/null; cat /proc/self/status >/dev/null; "
                    "grep '^Seccomp:' /proc/self/status";
    char *const argv[] = { prog, opt, script, NULL };
    return spawn_capture(c, argv);
}

Test(seccomp, shell_runs_under_filter)
{
    struct outcome o = run_probe(NULL, call_shell, true);
    cr_assert(completed(&o), "%s", o.text);
    cr_assert_eq(o.ret, 0, "sh exited with %ld; output: %s", o.ret, o.out);
    cr_assert(strncmp(o.out, "ok\n", 3) == 0, "output: %s", o.out);
    cr_assert(strstr(o.out, "Seccomp:\t2") != NULL, "the filter must be active: %s", o.out);
}

static long call_python(struct probe_ctx *c)
{
    /* A thread, a subprocess (fork/exec or posix_spawn inside python) and the usual start-up
     * syscalls of a large interpreter. */
    char prog[] = "/usr/bin/python3", opt[] = "-c",
         script[] = "import os,subprocess,threading\n"
                    "t = threading.Thread(target=os.getpid); t.start(); t.join()\n"
                    "print(subprocess.run(['/bin/true']).returncode)";
    char *const argv[] = { prog, opt, script, NULL };
    return spawn_capture(c, argv);
}

Test(seccomp, python_threads_and_subprocess_run_under_filter)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        cr_skip_test("/usr/bin/python3 is not installed");
    struct outcome o = run_probe(NULL, call_python, true);
    cr_assert(completed(&o), "%s", o.text);
    cr_assert_eq(o.ret, 0, "python3 exited with %ld; output: %s", o.ret, o.out);
    cr_assert_str_eq(o.out, "0\n");
}

static long call_status(struct probe_ctx *c)
{
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, c->out, sizeof(c->out) - 1);
    close(fd);
    if (n < 0)
        return -1;
    c->out[n] = '\0';
    return 0;
}

Test(seccomp, apply_installs_two_filters_and_no_new_privs)
{
    struct outcome o = run_probe(NULL, call_status, true);
    cr_assert(completed(&o) && o.ret == 0, "%s", o.text);
    cr_assert(strstr(o.out, "NoNewPrivs:\t1") != NULL, "%s", o.out);
    cr_assert(strstr(o.out, "Seccomp:\t2") != NULL, "%s", o.out);
    cr_assert(strstr(o.out, "Seccomp_filters:\t2") != NULL, "%s", o.out);
}

static long call_apply_then_status(struct probe_ctx *c)
{
    if (sbx_seccomp_apply() != 0)
        return -1;
    return call_status(c);
}

Test(seccomp, apply_sets_no_new_privs_itself)
{
    /* Unfiltered probe: the call itself applies the filter, without the caller's prctl. */
    struct outcome o = run_probe(NULL, call_apply_then_status, false);
    cr_assert(completed(&o) && o.ret == 0, "%s", o.text);
    cr_assert(strstr(o.out, "NoNewPrivs:\t1") != NULL, "%s", o.out);
    cr_assert(strstr(o.out, "Seccomp:\t2") != NULL, "%s", o.out);
}

/* --- setuid and setgid modes --- */

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* A private tmpfs on /tmp holding the file /tmp/f, open in c->fd. */
static int setup_file_on_tmp(struct probe_ctx *c)
{
    if (setup_tmpfs_on_tmp(c) < 0)
        return -1;
    c->fd = open("/tmp/f", O_RDWR | O_CREAT | O_CLOEXEC, 0755);
    return c->fd < 0 ? -1 : 0;
}

static long call_chmod_setuid(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_chmod, "/tmp/f", 04755);
}

static long call_chmod_setgid(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_chmod, "/tmp/f", 02755);
}

static long call_fchmod_setuid(struct probe_ctx *c)
{
    return syscall(SYS_fchmod, c->fd, 04755);
}

static long call_fchmodat_setuid(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_fchmodat, AT_FDCWD, "/tmp/f", 04755);
}

static long call_fchmodat2_setgid(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_fchmodat2, AT_FDCWD, "/tmp/f", 02755, 0);
}

static long call_creat_setuid(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_creat, "/tmp/g", 04755);
}

static long call_open_creat_setuid(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_open, "/tmp/g", O_WRONLY | O_CREAT, 04755);
}

static long call_openat_creat_setgid(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_openat, AT_FDCWD, "/tmp/g", O_WRONLY | O_CREAT | O_EXCL, 02755);
}

static long call_openat_tmpfile_setuid(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_openat, AT_FDCWD, "/tmp", O_WRONLY | O_TMPFILE, 04755);
}

static long call_mknod_setuid(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_mknod, "/tmp/g", S_IFREG | 04755, 0);
}

static long call_mknodat_setgid(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_mknodat, AT_FDCWD, "/tmp/g", S_IFREG | 02755, 0);
}

Test(seccomp, setuid_and_setgid_modes_refused)
{
    expect_refused("chmod(04755)", setup_file_on_tmp, call_chmod_setuid, CONTROL_SUCCEEDS);
    expect_refused("chmod(02755)", setup_file_on_tmp, call_chmod_setgid, CONTROL_SUCCEEDS);
    expect_refused("fchmod(04755)", setup_file_on_tmp, call_fchmod_setuid, CONTROL_SUCCEEDS);
    expect_refused("fchmodat(04755)", setup_file_on_tmp, call_fchmodat_setuid, CONTROL_SUCCEEDS);
    expect_refused("fchmodat2(02755)", setup_file_on_tmp, call_fchmodat2_setgid, CONTROL_SUCCEEDS);
    expect_refused("creat(04755)", setup_file_on_tmp, call_creat_setuid, CONTROL_SUCCEEDS);
    expect_refused("open(O_CREAT, 04755)", setup_file_on_tmp, call_open_creat_setuid,
                   CONTROL_SUCCEEDS);
    expect_refused("openat(O_CREAT, 02755)", setup_file_on_tmp, call_openat_creat_setgid,
                   CONTROL_SUCCEEDS);
    expect_refused("openat(O_TMPFILE, 04755)", setup_file_on_tmp, call_openat_tmpfile_setuid,
                   CONTROL_SUCCEEDS);
    expect_refused("mknod(S_IFREG | 04755)", setup_file_on_tmp, call_mknod_setuid,
                   CONTROL_SUCCEEDS);
    expect_refused("mknodat(S_IFREG | 02755)", setup_file_on_tmp, call_mknodat_setgid,
                   CONTROL_SUCCEEDS);
}

static long call_openat2(struct probe_ctx *c)
{
    (void)c;
    struct {
        uint64_t flags, mode, resolve;
    } how = { O_WRONLY | O_CREAT, 04755, 0 };
    return syscall(SYS_openat2, AT_FDCWD, "/tmp/g", &how, sizeof(how));
}

Test(seccomp, openat2_fails_with_enosys)
{
    expect_refused_with("openat2(O_CREAT, 04755)", setup_file_on_tmp, call_openat2,
                        CONTROL_SUCCEEDS, ENOSYS);
}

static long call_chmod_plain(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_chmod, "/tmp/f", 01777);
}

static long call_mkdir_setgid(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_mkdir, "/tmp/d", 02775);
}

static long call_open_plain_creat(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_openat, AT_FDCWD, "/tmp/g", O_WRONLY | O_CREAT, 0644);
}

/* A mode argument means nothing to an open that does not create: whatever is in it passes. */
static long call_open_existing_stray_mode(struct probe_ctx *c)
{
    (void)c;
    return syscall(SYS_openat, AT_FDCWD, "/tmp/f", O_RDONLY, 06777);
}

Test(seccomp, ordinary_modes_allowed)
{
    expect_allowed("chmod(01777)", setup_file_on_tmp, call_chmod_plain);
    expect_allowed("mkdir(02775)", setup_file_on_tmp, call_mkdir_setgid);
    expect_allowed("openat(O_CREAT, 0644)", setup_file_on_tmp, call_open_plain_creat);
    expect_allowed("openat(O_RDONLY) with a stray mode", setup_file_on_tmp,
                   call_open_existing_stray_mode);
}

/* The programs the build carries are what libseccomp makes of the rules now: a build that
 * changed the rules, or a libseccomp that changed its output, without the header being made
 * again would fail here. */
Test(seccomp, builtin_programs_equal_a_fresh_compilation)
{
    struct sbx_seccomp built, fresh;
    cr_assert_eq(sbx_seccomp_builtin(&built), 0, "%s", cru_err_msg());
    cr_assert_eq(sbx_seccomp_compile(&fresh), 0, "%s", cru_err_msg());
    cr_assert_eq(built.n, fresh.n);
    for (size_t i = 0; i < fresh.n; i++) {
        cr_assert_eq(built.prog[i].len, fresh.prog[i].len, "program %zu", i);
        cr_expect_eq(memcmp(built.prog[i].filter, fresh.prog[i].filter,
                            fresh.prog[i].len * sizeof(struct sock_filter)),
                     0, "program %zu differs", i);
    }
    sbx_seccomp_free(&built);
    sbx_seccomp_free(&fresh);
}
