/* init: the sandbox's PID 1, and the setup of every command it starts.
 *
 * Started by the host with clone() in new user, mount, pid, network, uts and ipc namespaces,
 * it waits for the host to write its uid maps and join it to its cgroup, becomes root of its
 * user namespace, enters a new cgroup namespace, builds the root (mount.c), brings up the
 * loopback link, installs the seccomp filter on itself (every command inherits it), and
 * reports ready. Then it serves the host: for each EXEC request it spawns a command (sharing
 * memory until execve, as posix_spawn does), which drops every privilege before execve (see
 * command_exec); it reaps every process that ends in the sandbox (orphans included), reports
 * the command's end with its resource usage, relays signals it receives to the running
 * command, and kills its process group on request. When the host goes away (its end of the control
 * socket closes, or it dies: PR_SET_PDEATHSIG), init exits, and the kernel kills everything left in
 * the pid namespace.
 *
 * System calls only (see internal.h): no malloc, no stdio.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/internal.h"

/* Room for one request: the header and the largest payload. */
static _Alignas(8) char init_buf[sizeof(struct sbx_msg) + SBX_MSG_MAX];

/* Appends S to BUF (capacity CAP) at *len, cutting what does not fit. */
static void append(char *buf, size_t cap, size_t *len, const char *s)
{
    while (*s && *len + 1 < cap)
        buf[(*len)++] = *s++;
    buf[*len] = '\0';
}

static void send_fail(int ctl, const char *what, int err)
{
    char text[512];
    size_t n = 0;
    append(text, sizeof(text), &n, what);
    append(text, sizeof(text), &n, ": ");
    append(text, sizeof(text), &n, strerrordesc_np(err) ? strerrordesc_np(err) : "error");
    struct sbx_msg m = { .type = SBX_MSG_FAIL, .len = (uint32_t)n };
    sbx_msg_send(ctl, &m, text, NULL, 0);
}

/* Writes "crucible: A: B\n" to fd 2 of a command that could not start. */
static void say(const char *a, const char *b)
{
    char text[512];
    size_t n = 0;
    append(text, sizeof(text), &n, "crucible: ");
    append(text, sizeof(text), &n, a);
    append(text, sizeof(text), &n, ": ");
    append(text, sizeof(text), &n, b);
    append(text, sizeof(text), &n, "\n");
    (void)!write(STDERR_FILENO, text, n);
}

static int loopback_up(void)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* The init's own oom_score_adj, open for writing, and what it held at the start (the host's,
 * which is also the lowest the init may go back to without privilege). */
static int oom_fd = -1;
static char oom_rest[16];
static size_t oom_rest_len;

/* Opened at the very start, while the init is still the host's uid and dumpable: once it is
 * the sandbox's root its /proc entries belong to the host's root (it is not dumpable), and
 * after its execve a command's would be the command's to change. */
static void oom_open(void)
{
    oom_fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
    ssize_t n = oom_fd >= 0 ? read(oom_fd, oom_rest, sizeof(oom_rest) - 1) : -1;
    /* Going back must work, or the init would stay at the raised score: a score below its
     * floor (set by someone privileged through the legacy oom_adj) cannot be written again. */
    if (n > 0 && pwrite(oom_fd, oom_rest, (size_t)n, 0) != n)
        n = -1;
    if (n <= 0) {
        if (oom_fd >= 0)
            close(oom_fd);
        oom_fd = -1;
        return;
    }
    oom_rest_len = (size_t)n;
}

static void oom_set(const char *text, size_t len)
{
    if (oom_fd >= 0)
        (void)!pwrite(oom_fd, text, len, 0);
}

static int set_limit(int resource, uint64_t value)
{
    struct rlimit rl = { .rlim_cur = value, .rlim_max = value };
    return setrlimit(resource, &rl);
}

/* Done once by the init, inherited by every command: the securebits make root inside gain
 * nothing from execve or setuid, and the bounding set is emptied, so no execve can bring a
 * capability back. The init keeps its own sets: it needs none, but it runs no foreign code.
 *
 * A checker sandbox's bounding set keeps the checker's capabilities, which its commands hold
 * ambient; there the kernel's setuid fixup stays on (locked), so a process that moves every
 * uid away from 0 (to the artifact) loses its ambient set at once and the rest at its next
 * execve, and can raise nothing again. */
static int limit_caps(const struct sbx_init_args *a, const char **what)
{
    unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                         SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    /* keep-caps may stay open to a checker (setpriv uses it): it keeps the permitted set over
     * a setuid until the next execve, never the ambient one, so the artifact's program starts
     * without any. */
    if (!a->checker_caps)
        bits |= SECBIT_NO_SETUID_FIXUP | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_KEEP_CAPS_LOCKED;
    *what = "lock the securebits";
    if (prctl(PR_SET_SECUREBITS, bits) < 0)
        return -1;
    *what = "drop the bounding set";
    for (int c = 0; c <= CAP_LAST_CAP + 8; c++) {
        cap_flag_value_t keep = CAP_CLEAR;
        if (a->checker_caps && c <= CAP_LAST_CAP)
            cap_get_flag(a->checker_caps, (cap_value_t)c, CAP_PERMITTED, &keep);
        if (keep != CAP_SET && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            return -1;
    }
    return 0;
}

/* In each command: the ambient and the process's own capability sets emptied; in a checker
 * sandbox set to the checker's, and those raised ambient, so that they survive its execs. */
static int drop_caps(const struct sbx_init_args *a, const char **what)
{
    *what = "clear the ambient set";
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        return -1;
    *what = "drop the capability sets";
    if (!a->checker_caps)
        return cap_set_proc(a->no_caps);
    *what = "set the checker's capabilities";
    if (cap_set_proc(a->checker_caps) < 0)
        return -1;
    for (int c = 0; c <= CAP_LAST_CAP; c++) {
        cap_flag_value_t v = CAP_CLEAR;
        cap_get_flag(a->checker_caps, (cap_value_t)c, CAP_PERMITTED, &v);
        if (v == CAP_SET && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
            return -1;
    }
    return 0;
}

/* execve ARGV[0], searched in ENVP's PATH when it has no '/', as a shell would. Returns only
 * on failure, with the exit status a shell would give (127 not found, 126 not executable). */
static int exec_path(char *const argv[], char *const envp[])
{
    const char *name = argv[0];
    if (strchr(name, '/')) {
        execve(name, argv, envp);
        say(name, strerrordesc_np(errno));
        return errno == ENOENT ? 127 : 126;
    }
    const char *path = "/usr/local/bin:/usr/bin:/bin";
    for (size_t i = 0; envp[i]; i++) {
        if (strncmp(envp[i], "PATH=", 5) == 0)
            path = envp[i] + 5;
    }
    bool denied = false;
    size_t nlen = strlen(name);
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        char full[4096];
        size_t dlen = (size_t)(end - p);
        if (dlen == 0) { /* an empty PATH entry means the current directory */
            full[0] = '.';
            dlen = 1;
        } else if (dlen < sizeof(full)) {
            memcpy(full, p, dlen);
        }
        if (dlen + 1 + nlen < sizeof(full)) {
            full[dlen] = '/';
            memcpy(full + dlen + 1, name, nlen + 1);
            execve(full, argv, envp);
            if (errno == EACCES)
                denied = true;
            else if (errno != ENOENT && errno != ENOTDIR) {
                say(name, strerrordesc_np(errno));
                return 126;
            }
        }
        if (*end == '\0')
            break;
        p = end;
    }
    say(name, denied ? "permission denied" : "command not found");
    return denied ? 126 : 127;
}

/* In the forked command: from the init's state to an unprivileged process running ARGV. */
static void command_exec(const struct sbx_init_args *a, const int fds[3], const char *cwd,
                         char *const argv[], char *const envp[])
{
    const char *what = "start a session";
    unsigned layers = a->disable_layers;
    sigset_t all;

    if (setsid() < 0)
        goto fail;
    what = "set up stdio";
    for (int i = 0; i < 3; i++) {
        if (dup2(fds[i], i) < 0)
            goto fail;
    }
    /* Only 0, 1 and 2 reach the command: the control socket and anything else stay behind. */
    what = "close descriptors";
    if (!(layers & SBX_LAYER_CLOSE_FDS) && syscall(SYS_close_range, 3, ~0U, 0) < 0)
        goto fail;
    what = cwd;
    if (chdir(cwd) < 0)
        goto fail;
    what = "set resource limits";
    if (set_limit(RLIMIT_NOFILE, a->open_files) < 0 || set_limit(RLIMIT_FSIZE, a->file_bytes) < 0 ||
        set_limit(RLIMIT_CORE, 0) < 0 || set_limit(RLIMIT_STACK, SBX_STACK_BYTES) < 0 ||
        (a->data_bytes && set_limit(RLIMIT_DATA, a->data_bytes) < 0) ||
        (a->nproc && set_limit(RLIMIT_NPROC, a->nproc) < 0))
        goto fail;

    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);

    /* The seccomp filter is already in place: inherited from the init. */
    what = "set no_new_privs";
    if (!(layers & SBX_LAYER_NNP) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        goto fail;
    if (!(layers & SBX_LAYER_CAPS) && drop_caps(a, &what) < 0)
        goto fail;
    _exit(exec_path(argv, envp));
fail:
    say(what, strerrordesc_np(errno));
    _exit(126);
}

struct spawn {
    const struct sbx_init_args *a;
    const int *fds;
    const char *cwd;
    char *const *argv;
    char *const *envp;
};

static int command_main(void *arg)
{
    const struct spawn *sp = arg;
    command_exec(sp->a, sp->fds, sp->cwd, sp->argv, sp->envp);
    return 126;
}

/* Starts a command the way posix_spawn does: the child shares the init's memory and the init
 * waits until it has called execve or exited, so no page tables are copied. The child writes
 * only to its own stack and makes system calls. */
static pid_t spawn_command(const struct sbx_init_args *a, const int fds[3], const char *cwd,
                           char *const argv[], char *const envp[])
{
    static _Alignas(16) char stack[64 * 1024];
    struct spawn sp = { a, fds, cwd, argv, envp };
    return clone(command_main, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &sp);
}

static void report_exit(int ctl, uint64_t id, int status, const struct rusage *ru)
{
    struct sbx_exit e = {
        .status = status,
        .utime_us = (int64_t)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec,
        .stime_us = (int64_t)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec,
        .maxrss_kb = ru->ru_maxrss,
    };
    struct sbx_msg m = { .type = SBX_MSG_EXITED, .len = sizeof(e), .id = id };
    sbx_msg_send(ctl, &m, &e, NULL, 0);
}

static void serve(const struct sbx_init_args *a, int sig_fd)
{
    static char *argv[SBX_EXEC_ARGS_MAX], *envp[SBX_EXEC_ARGS_MAX];
    pid_t cmd_pid = 0;
    uint64_t cmd_id = 0;

    for (;;) {
        struct pollfd p[2] = { { a->ctl_fd, POLLIN, 0 }, { sig_fd, POLLIN, 0 } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sig_fd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD &&
                cmd_pid > 0)
                kill(-cmd_pid, (int)si.ssi_signo); /* relay to the command's group */
            /* Reap everything that ended: the command, and orphans reparented to us. */
            for (;;) {
                int status;
                struct rusage ru;
                pid_t pid = wait4(-1, &status, WNOHANG, &ru);
                if (pid <= 0)
                    break;
                if (pid == cmd_pid) {
                    report_exit(a->ctl_fd, cmd_id, status, &ru);
                    cmd_pid = 0;
                }
            }
        }
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        int fds[3];
        size_t n_fds = 0;
        ssize_t n = sbx_msg_recv(a->ctl_fd, init_buf, sizeof(init_buf), fds, &n_fds);
        if (n <= 0)
            break; /* the host is gone */
        struct sbx_msg m;
        memcpy(&m, init_buf, sizeof(m));
        if (m.type == SBX_MSG_KILL) {
            if (cmd_pid > 0 && m.id == cmd_id)
                kill(-cmd_pid, SIGKILL);
        } else if (m.type == SBX_MSG_EXEC && n_fds == 3 && cmd_pid == 0) {
            const char *cwd = NULL;
            if (sbx_exec_req_parse(init_buf + sizeof(m), (size_t)n - sizeof(m), &cwd, argv,
                                   SBX_EXEC_ARGS_MAX, envp, SBX_EXEC_ARGS_MAX) < 0) {
                send_fail(a->ctl_fd, "malformed request", EPROTO);
            } else {
                /* The OOM killer must take a command, never the init: a command that fills
                 * the disk (whose pages belong to no process) leaves every process small,
                 * and the init, a copy of the host's address space, would look the biggest.
                 * A command cannot raise its own score before its execve (it shares our
                 * memory, whose /proc entries belong to the host's root), and after it the
                 * command's code runs: so the init raises its own score for the moment of
                 * the spawn, the command inherits it, and the init goes back down (raising
                 * needs no privilege, and going back to where one started neither). A
                 * command may lower its score again, never below the init's. */
                bool raise = oom_fd >= 0 && !(a->disable_layers & SBX_LAYER_OOM_SCORE);
                if (raise)
                    oom_set(a->oom_score_adj, strlen(a->oom_score_adj));
                pid_t pid = spawn_command(a, fds, cwd, argv, envp);
                int spawn_errno = errno;
                if (raise)
                    oom_set(oom_rest, oom_rest_len);
                if (pid < 0) {
                    send_fail(a->ctl_fd, "start the command", spawn_errno);
                } else {
                    cmd_pid = pid;
                    cmd_id = m.id;
                }
            }
        } else {
            send_fail(a->ctl_fd, "unexpected request", EPROTO);
        }
        for (size_t i = 0; i < n_fds; i++)
            close(fds[i]);
    }
}

static int setup(const struct sbx_init_args *a, int *sig_fd, const char **what)
{
    int fds[3] = { -1, -1, -1 };
    size_t n_fds = 0;
    sigset_t all;

    *what = "wait for the host";
    ssize_t n = sbx_msg_recv(a->ctl_fd, init_buf, sizeof(init_buf), fds, &n_fds);
    if (n <= 0)
        return -1;
    struct sbx_msg m;
    memcpy(&m, init_buf, sizeof(m));
    if (m.type != SBX_MSG_GO) {
        errno = EPROTO;
        return -1;
    }
    int ws_fd = n_fds > 0 ? fds[0] : -1;

    /* The maps are written: become root of the new user namespace. */
    *what = "become root of the user namespace";
    /* Raw system calls: glibc's wrappers broadcast the change to every thread the process
     * had when it was cloned (nptl's setxid), and wait forever for threads that do not exist
     * in this copy of a multithreaded host. */
    /* Without root the host had to deny setgroups to map a gid: the groups stay as they were
     * (unmapped ones show as nogroup), as in every unprivileged user namespace. */
    if (syscall(SYS_setresgid, 0, 0, 0) < 0 ||
        (!a->rootless && syscall(SYS_setgroups, 0, NULL) < 0) ||
        syscall(SYS_setresuid, 0, 0, 0) < 0)
        return -1;
    /* A change of credentials clears the parent-death signal: set it again. */
    *what = "set the parent-death signal";
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        return -1;
    /* Entered only now, so that its root is the cgroup the host just moved us into. */
    *what = "enter a cgroup namespace";
    if (unshare(CLONE_NEWCGROUP) < 0)
        return -1;
    bool upper_on_disk = false;
    if (sbx_plan_run(a, ws_fd, &upper_on_disk, what) < 0)
        return -1;
    if (ws_fd >= 0)
        close(ws_fd);
    *what = "set the host name";
    if (sethostname(a->hostname, strlen(a->hostname)) < 0)
        return -1;
    *what = "bring up the loopback link";
    if (a->loopback && loopback_up() < 0)
        return -1;

    /* Signals arrive through a descriptor; commands unblock them before execve. */
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    *what = "create a signalfd";
    if ((*sig_fd = signalfd(-1, &all, SFD_CLOEXEC)) < 0)
        return -1;

    if (!(a->disable_layers & SBX_LAYER_CAPS) && limit_caps(a, what) < 0)
        return -1;
    /* The filter goes on the init itself, which needs nothing it refuses from here on, so every
     * command inherits it instead of installing (and the kernel compiling) it again. The init
     * may install it without no_new_privs: it holds CAP_SYS_ADMIN in its namespace. */
    *what = "install the seccomp filter";
    if (a->filter && sbx_seccomp_install(a->filter) < 0)
        return -1;

    /* No process of the sandbox may read our memory or open our descriptors via /proc. */
    *what = "make the init undumpable";
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return -1;

    *what = "open /workspace and the disk";
    int fds_out[2] = { open("/workspace", O_PATH | O_DIRECTORY | O_CLOEXEC),
                       open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC) };
    int rc = -1;
    if (fds_out[0] >= 0 && fds_out[1] >= 0) {
        struct sbx_ready ready = { .upper_on_disk = upper_on_disk };
        struct sbx_msg r = { .type = SBX_MSG_READY, .len = sizeof(ready) };
        rc = sbx_msg_send(a->ctl_fd, &r, &ready, fds_out, 2);
    }
    for (int i = 0; i < 2; i++)
        if (fds_out[i] >= 0)
            close(fds_out[i]);
    return rc;
}

static void hide_host_strings(const struct sbx_init_args *a)
{
    static const char name[] = "crucible-init";
    if (a->env_end > a->env_start)
        memset((void *)a->env_start, 0, a->env_end - a->env_start);
    if (a->cmdline_end > a->cmdline_start) {
        size_t len = a->cmdline_end - a->cmdline_start;
        memset((void *)a->cmdline_start, 0, len);
        memcpy((void *)a->cmdline_start, name, len > sizeof(name) ? sizeof(name) - 1 : len - 1);
    }
    prctl(PR_SET_NAME, name, 0, 0, 0);
}

int sbx_init_main(void *arg)
{
    struct sbx_init_args *a = arg; /* this process's own copy of the host's memory */
    const char *what = "";
    int sig_fd = -1;

    /* If the host dies, so do we, and with us the whole pid namespace. */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    /* This process is a copy of the host's: its argv and environment strings are the host's
     * command line and secrets, which any process of the sandbox could read as
     * /proc/1/cmdline. Overwrite our copy of them. */
    hide_host_strings(a);
    /* Nothing of the host's descriptors but the control socket stays open in here. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
        _exit(125);
    if (a->ctl_fd != 3 && (dup2(a->ctl_fd, 3) < 0))
        _exit(125);
    a->ctl_fd = 3;
    syscall(SYS_close_range, 4, ~0U, 0);
    oom_open();

    if (setup(a, &sig_fd, &what) < 0) {
        send_fail(a->ctl_fd, what, errno);
        _exit(125);
    }
    serve(a, sig_fd);
    kill(-1, SIGKILL);
    _exit(0);
}
