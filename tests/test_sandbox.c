/* test_sandbox: adversarial probes against the sandbox, each with a positive control.
 *
 * A probe is a shell script that prints HOLE when the attack it tries works. Each runs inside
 * a sandbox, where it must not print HOLE, and again as its positive control, where it must:
 * either on the host itself (for what the namespaces and the root hide), or in a sandbox with
 * the one guarding layer switched off (for seccomp, capabilities, no_new_privs, /proc masks,
 * closed descriptors). A probe whose control does not find the hole proves nothing, so the
 * control failing fails the test. The scripts find their fixtures (a secret file on the host,
 * a listening socket on the host's loopback, a SysV shared memory segment, the test's own pid)
 * in the environment. The rootfs suite builds a small root filesystem folder from the host's
 * dash and cat (and the libraries ldd names) and checks that a sandbox on it sees that root,
 * not the host's, and cannot write it. The rootless suite runs the same probes in sandboxes
 * that an unprivileged user makes (the test drops root for ROOTLESS_UID in a child first; the
 * controls that need the host's root run before, as root), and checks what stands in for the
 * cgroups such a user cannot write, and a delegated cgroup it can. These tests run as root.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <jansson.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "sandbox/cgroup_internal.h"
#include "sandbox/fsaccess.h"
#include "sandbox/sandbox.h"

/* Where the control runs. */
enum control {
    ON_HOST,    /* run the script directly on the host */
    IN_SANDBOX, /* run it in a sandbox without the layers in .layers */
};

struct probe {
    const char *name;
    const char *script;
    enum control control;
    unsigned layers;
};

static const struct probe probes[] = {
    /* The root: nothing of the host but its read-only system folders. */
    { "read a host file in /tmp", "grep -q s3cret \"$SECRET\" 2>/dev/null && echo HOLE", ON_HOST,
      0 },
    { "see the host's /dev/shm", "test -e \"$SHMFILE\" && echo HOLE", ON_HOST, 0 },
    { "see the host's /home", "test -d /home && echo HOLE", ON_HOST, 0 },
    { "write /usr",
      "touch /usr/.crucible-probe 2>/dev/null && echo HOLE; rm -f /usr/.crucible-probe", ON_HOST,
      0 },
    { "write /etc",
      "echo x 2>/dev/null >/etc/.crucible-probe && echo HOLE; rm -f /etc/.crucible-probe", ON_HOST,
      0 },
    { "write the root",
      "mkdir /.crucible-probe 2>/dev/null && echo HOLE; rmdir /.crucible-probe 2>/dev/null",
      ON_HOST, 0 },
    { "create a device node",
      "mknod /tmp/.crucible-null c 1 3 2>/dev/null && echo HOLE; rm -f /tmp/.crucible-null",
      ON_HOST, 0 },
    { "see many devices", "[ $(ls /dev | wc -l) -gt 20 ] && echo HOLE", ON_HOST, 0 },
    { "see block devices", "ls /dev | grep -qE '^(sd|vd|nvme|xvd|loop)' && echo HOLE", ON_HOST, 0 },
    { "see /sys", "test -e /sys/kernel && echo HOLE", ON_HOST, 0 },
    { "setuid binaries keep their bit",
      "findmnt -T /usr -n -o OPTIONS | grep -q nosuid || echo HOLE", ON_HOST, 0 },

    /* Network: a namespace of its own with only loopback. */
    { "reach a service on the host's loopback",
      "python3 -c \"import os,socket; socket.create_connection(('127.0.0.1', "
      "int(os.environ['PORT'])), timeout=2); print('HOLE')\" 2>/dev/null",
      ON_HOST, 0 },
    { "see a network interface besides lo",
      "grep -vqE '^ *(lo:|Inter-|face)' /proc/net/dev && echo HOLE", ON_HOST, 0 },
    { "see a route", "[ $(wc -l </proc/net/route) -gt 1 ] && echo HOLE", ON_HOST, 0 },

    /* Processes, IPC, host name, environment. */
    { "see the host's processes",
      "grep -qE \"^Pid:\\s*$HOSTPID$\" /proc/$HOSTPID/status 2>/dev/null && echo HOLE", ON_HOST,
      0 },
    { "count the host's processes", "[ $(ls -d /proc/[0-9]* | wc -l) -gt 20 ] && echo HOLE",
      ON_HOST, 0 },
    { "signal a host process", "kill -0 $HOSTPID 2>/dev/null && echo HOLE", ON_HOST, 0 },
    { "see the host's SysV shared memory",
      "grep -qE \"^ *$SHMKEY \" /proc/sysvipc/shm && echo HOLE", ON_HOST, 0 },
    { "read the host's environment", "env | grep -q s3cret && echo HOLE", ON_HOST, 0 },
    { "sandbox root is host root",
      "awk '$1 == 0 && $2 == 0' /proc/self/uid_map | grep -q . && echo HOLE", ON_HOST, 0 },
    { "change the host name", "hostname evil 2>/dev/null && echo HOLE", IN_SANDBOX,
      SBX_LAYER_CAPS | SBX_LAYER_SECCOMP },

    /* /proc: sensitive entries masked, /proc/sys read-only. */
    { "read /proc/buddyinfo",
      "[ $(head -c 64 /proc/buddyinfo 2>/dev/null | wc -c) -gt 0 ] && echo HOLE", IN_SANDBOX,
      SBX_LAYER_PROC_MASK },
    { "read a root-only /proc entry",
      "for f in slabinfo vmallocinfo timer_list pagetypeinfo; do "
      "[ $(head -c 8 /proc/$f 2>/dev/null | wc -c) -gt 0 ] && echo HOLE; done",
      ON_HOST, 0 },
    { "read /proc/kallsyms",
      "[ $(head -c 64 /proc/kallsyms 2>/dev/null | wc -c) -gt 0 ] && echo HOLE", IN_SANDBOX,
      SBX_LAYER_PROC_MASK },
    { "/proc/keys unmasked", "grep -q ' /proc/keys ' /proc/self/mountinfo || echo HOLE", IN_SANDBOX,
      SBX_LAYER_PROC_MASK },
    { "list /proc/acpi",
      "[ -d /proc/acpi ] && grep -q ' /proc/acpi ' /proc/self/mountinfo || echo HOLE", IN_SANDBOX,
      SBX_LAYER_PROC_MASK },
    { "/proc/sys writable", "grep ' /proc/sys ' /proc/self/mountinfo | grep -q ' ro,' || echo HOLE",
      IN_SANDBOX, SBX_LAYER_PROC_MASK },

    /* Privileges. */
    { "effective capabilities", "grep -qE '^CapEff:\\s*0+$' /proc/self/status || echo HOLE",
      IN_SANDBOX, SBX_LAYER_CAPS },
    { "bounding capabilities", "grep -qE '^CapBnd:\\s*0+$' /proc/self/status || echo HOLE",
      IN_SANDBOX, SBX_LAYER_CAPS },
    { "no_new_privs unset", "grep -qE '^NoNewPrivs:\\s*1' /proc/self/status || echo HOLE",
      IN_SANDBOX, SBX_LAYER_NNP },
    { "no seccomp filter", "grep -qE '^Seccomp:\\s*2' /proc/self/status || echo HOLE", IN_SANDBOX,
      SBX_LAYER_SECCOMP },
    { "inherited descriptors", "[ $(ls /proc/self/fd | wc -l) -gt 4 ] && echo HOLE", IN_SANDBOX,
      SBX_LAYER_CLOSE_FDS },
    { "chroot", "chroot / true 2>/dev/null && echo HOLE", IN_SANDBOX,
      SBX_LAYER_CAPS | SBX_LAYER_SECCOMP },

    /* System calls the filter refuses. */
    { "create a user namespace", "unshare -U true 2>/dev/null && echo HOLE", IN_SANDBOX,
      SBX_LAYER_SECCOMP },
    { "mount a file system", "mkdir -p /tmp/m && mount -t tmpfs t /tmp/m 2>/dev/null && echo HOLE",
      IN_SANDBOX, SBX_LAYER_SECCOMP | SBX_LAYER_CAPS },
    { "ptrace",
      "python3 -c \"import ctypes; l=ctypes.CDLL(None); "
      "print('HOLE' if l.ptrace(0, 0, 0, 0) == 0 else '')\"",
      IN_SANDBOX, SBX_LAYER_SECCOMP },
    { "io_uring",
      "python3 -c \"import ctypes; l=ctypes.CDLL(None, use_errno=True); "
      "p=ctypes.create_string_buffer(120); "
      "print('HOLE' if l.syscall(425, 4, p) >= 0 else '')\"",
      IN_SANDBOX, SBX_LAYER_SECCOMP },
    { "userfaultfd",
      "python3 -c \"import ctypes; l=ctypes.CDLL(None); "
      "print('HOLE' if l.syscall(323, 1) >= 0 else '')\"",
      IN_SANDBOX, SBX_LAYER_SECCOMP },
    { "add a key",
      "python3 -c \"import ctypes; l=ctypes.CDLL(None); "
      "print('HOLE' if l.syscall(248, b'user', b'probe', b'x', 1, -2) > 0 else '')\"",
      IN_SANDBOX, SBX_LAYER_SECCOMP },
    { "personality READ_IMPLIES_EXEC",
      "python3 -c \"import ctypes; l=ctypes.CDLL(None); "
      "print('HOLE' if l.personality(0x0400000) >= 0 else '')\"",
      IN_SANDBOX, SBX_LAYER_SECCOMP },
    { "raw socket",
      "python3 -c \"import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, 1); "
      "print('HOLE')\" 2>/dev/null",
      IN_SANDBOX, SBX_LAYER_SECCOMP | SBX_LAYER_CAPS },
    { "packet socket",
      "python3 -c \"import socket; socket.socket(17, socket.SOCK_RAW, 0); print('HOLE')\" "
      "2>/dev/null",
      IN_SANDBOX, SBX_LAYER_SECCOMP | SBX_LAYER_CAPS },
    { "netlink audit socket",
      "python3 -c \"import socket; socket.socket(16, socket.SOCK_RAW, 9); print('HOLE')\" "
      "2>/dev/null",
      IN_SANDBOX, SBX_LAYER_SECCOMP },
    { "AF_VSOCK socket",
      "python3 -c \"import socket; socket.socket(40, socket.SOCK_STREAM, 0); print('HOLE')\" "
      "2>/dev/null",
      IN_SANDBOX, SBX_LAYER_SECCOMP },
    { "TIOCSTI",
      "python3 -c \"import os, fcntl, termios; os.setsid(); m, s = os.openpty(); "
      "fcntl.ioctl(s, termios.TIOCSCTTY, 0); fcntl.ioctl(s, termios.TIOCSTI, b'x'); "
      "print('HOLE')\" 2>/dev/null",
      IN_SANDBOX, SBX_LAYER_SECCOMP },
};

#define N_PROBES (sizeof(probes) / sizeof(probes[0]))

/* The parameter is an index: Criterion may run each test in a fresh image of this program,
 * where pointers taken in the parent mean nothing. */
ParameterizedTestParameters(sandbox, probe)
{
    static size_t index[N_PROBES];
    for (size_t i = 0; i < N_PROBES; i++)
        index[i] = i;
    return cr_make_param_array(size_t, index, N_PROBES);
}

/* ---- fixtures ---- */

struct fixtures {
    char dir[64];
    char secret[96];
    char shmfile[96];
    int listener;
    int port;
    int shmid;
    int shmkey;
    char env[8][160];
    const char *envp[9];
};

static struct fixtures fx;

static void fixtures_up(void)
{
    /* A unique name: a leftover of an earlier run (whose pid came round again) must not stop
     * this one. */
    snprintf(fx.dir, sizeof(fx.dir), "/tmp/crucible-probe-XXXXXX");
    cr_assert_not_null(mkdtemp(fx.dir));
    snprintf(fx.secret, sizeof(fx.secret), "%s/secret", fx.dir);
    FILE *f = fopen(fx.secret, "w");
    cr_assert_not_null(f);
    fputs("s3cret\n", f);
    fclose(f);
    snprintf(fx.shmfile, sizeof(fx.shmfile), "/dev/shm/crucible-probe-%d", (int)getpid());
    f = fopen(fx.shmfile, "w");
    cr_assert_not_null(f);
    fclose(f);

    fx.listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(fx.listener, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fx.listener, 16), 0);
    cr_assert_eq(getsockname(fx.listener, (struct sockaddr *)&a, &len), 0);
    fx.port = ntohs(a.sin_port);

    fx.shmkey = 0x63720000 + (getpid() & 0xffff);
    fx.shmid = shmget(fx.shmkey, 4096, IPC_CREAT | 0600);
    cr_assert_geq(fx.shmid, 0);

    size_t n = 0;
    snprintf(fx.env[n++], sizeof(fx.env[0]), "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
    snprintf(fx.env[n++], sizeof(fx.env[0]), "SECRET=%s", fx.secret);
    snprintf(fx.env[n++], sizeof(fx.env[0]), "SHMFILE=%s", fx.shmfile);
    snprintf(fx.env[n++], sizeof(fx.env[0]), "PORT=%d", fx.port);
    snprintf(fx.env[n++], sizeof(fx.env[0]), "HOSTPID=%d", (int)getpid());
    snprintf(fx.env[n++], sizeof(fx.env[0]), "SHMKEY=%d", fx.shmkey);
    for (size_t i = 0; i < n; i++)
        fx.envp[i] = fx.env[i];
    fx.envp[n] = NULL;
    /* Only the host's own environment carries this: the sandbox must not inherit it. */
    setenv("CRUCIBLE_PROBE_SECRET", "s3cret", 1);
}

static void fixtures_down(void)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", fx.dir, fx.shmfile);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed: %s\n", cmd);
    shmctl(fx.shmid, IPC_RMID, NULL);
    close(fx.listener);
}

/* ---- running scripts ---- */

static struct sbx *sandbox_new(const struct sbx_opts *o)
{
    struct sbx *sb = NULL;
    cr_assert_eq(sbx_new(&sb, o), 0, "sbx_new: %s", cru_err_msg());
    return sb;
}

static void sandbox_run(struct sbx *sb, const char *script, struct sbx_result *r)
{
    struct sbx_cmd c = SBX_CMD_INIT;
    c.shell = script;
    c.env = fx.envp;
    c.timeout_ms = 30000;
    cr_assert_eq(sbx_exec(sb, &c, r), 0, "sbx_exec: %s", cru_err_msg());
}

/* Runs SCRIPT in a fresh sandbox without LAYERS; returns its stdout (caller frees). */
static char *in_sandbox(const char *script, unsigned layers)
{
    struct sbx_opts o = SBX_OPTS_INIT;
    o.disable_layers = layers;
    struct sbx *sb = sandbox_new(&o);
    struct sbx_result r;
    sandbox_run(sb, script, &r);
    sbx_free(sb);
    char *out = cru_buf_detach(&r.out, NULL);
    sbx_result_free(&r);
    return out;
}

/* Runs SCRIPT with /bin/sh on the host, in the host's environment plus the fixtures'. */
static char *on_host(const char *script)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* Only stdout may hold the pipe: a daemon the script starts must not keep it open. */
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        for (size_t i = 0; fx.envp[i]; i++)
            putenv((char *)(uintptr_t)fx.envp[i]);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    struct cru_buf b = CRU_BUF_INIT;
    char chunk[4096];
    ssize_t n;
    while ((n = read(p[0], chunk, sizeof(chunk))) > 0)
        cru_buf_append(&b, chunk, (size_t)n);
    close(p[0]);
    waitpid(pid, NULL, 0);
    return cru_buf_detach(&b, NULL);
}

ParameterizedTest(size_t *i, sandbox, probe, .init = fixtures_up, .fini = fixtures_down)
{
    const struct probe *p = &probes[*i];
    char *got = in_sandbox(p->script, 0);
    cr_expect_null(strstr(got, "HOLE"), "probe '%s' got through the sandbox", p->name);
    free(got);

    char *ctl = p->control == ON_HOST ? on_host(p->script) : in_sandbox(p->script, p->layers);
    cr_expect_not_null(strstr(ctl, "HOLE"),
                       "positive control of '%s' did not find the hole (%s): the probe proves "
                       "nothing",
                       p->name, p->control == ON_HOST ? "on the host" : "layer off");
    free(ctl);
}

/* ---- limits ---- */

TestSuite(limits, .init = fixtures_up, .fini = fixtures_down);

static const char fork_bomb[] = "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done "
                                "2>/dev/null; [ $(ls -d /proc/[0-9]* | wc -l) -ge 150 ] && "
                                "echo HOLE; kill $(jobs -p) 2>/dev/null; true";

Test(limits, fork_bomb_held_by_pids_limit)
{
    struct sbx_opts o = SBX_OPTS_INIT;
    o.pids = 32;
    struct sbx *sb = sandbox_new(&o);
    struct sbx_result r;
    sandbox_run(sb, fork_bomb, &r);
    cr_expect_null(strstr(cru_buf_cstr(&r.out), "HOLE"), "200 processes started under --pids 32");
    sbx_result_free(&r);
    sbx_free(sb);

    char *ctl = in_sandbox(fork_bomb, 0);
    cr_expect_not_null(strstr(ctl, "HOLE"), "without a pids limit the fork loop must succeed");
    free(ctl);
}

static const char memory_bomb[] = "python3 -c \"b = bytearray(256 << 20); "
                                  "b[::4096] = b'x' * len(b[::4096]); print('HOLE')\"";

Test(limits, memory_bomb_reported_as_oom)
{
    struct sbx_opts o = SBX_OPTS_INIT;
    o.memory_bytes = 64u << 20;
    struct sbx *sb = sandbox_new(&o);
    struct sbx_result r;
    sandbox_run(sb, memory_bomb, &r);
    cr_expect_null(strstr(cru_buf_cstr(&r.out), "HOLE"));
    cr_expect(r.oom, "a 256 MiB allocation under a 64 MiB limit must be reported as oom");
    cr_expect_eq(r.exit_code, 128 + SIGKILL, "the shell reports its child's SIGKILL");
    cr_expect_not(r.timed_out);
    sbx_result_free(&r);
    sbx_free(sb);

    char *ctl = in_sandbox(memory_bomb, 0);
    cr_expect_not_null(strstr(ctl, "HOLE"), "without a memory limit the allocation succeeds");
    free(ctl);
}

static const char cpu_spin[] = "python3 -c \"import time\nt = time.time()\n"
                               "while time.time() - t < 2: pass\nprint('HOLE')\"";

Test(limits, cpu_spin_reported_as_timed_out)
{
    struct sbx *sb = sandbox_new(&(struct sbx_opts)SBX_OPTS_INIT);
    struct sbx_cmd c = SBX_CMD_INIT;
    struct sbx_result r;
    c.shell = cpu_spin;
    c.timeout_ms = 500;
    cr_assert_eq(sbx_exec(sb, &c, &r), 0, "%s", cru_err_msg());
    cr_expect(r.timed_out);
    cr_expect_eq(r.signal, SIGKILL);
    cr_expect_eq(r.exit_code, 128 + SIGKILL);
    cr_expect_not(r.oom);
    cr_expect_null(strstr(cru_buf_cstr(&r.out), "HOLE"));
    sbx_result_free(&r);

    /* Control: the same command without a timeout runs to the end. */
    c.timeout_ms = 0;
    cr_assert_eq(sbx_exec(sb, &c, &r), 0, "%s", cru_err_msg());
    cr_expect_not(r.timed_out);
    cr_expect_not_null(strstr(cru_buf_cstr(&r.out), "HOLE"));
    sbx_result_free(&r);
    sbx_free(sb);
}

/* True when a process whose command line contains NEEDLE runs on the host. */
static bool host_has_process(const char *needle)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool found = false;
    while (!found && (e = readdir(d)) != NULL) {
        char path[300], cmd[256] = { 0 };
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
        fclose(f);
        for (size_t i = 0; i + 1 < n; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        found = strstr(cmd, needle) != NULL;
    }
    closedir(d);
    return found;
}

/* Waits up to 2 s for a process matching NEEDLE to be there (or gone): between fork and
 * execve its command line is briefly unreadable. */
static bool host_process_becomes(const char *needle, bool present)
{
    for (int i = 0; i < 200; i++) {
        if (host_has_process(needle) == present)
            return true;
        usleep(10000);
    }
    return false;
}

Test(limits, daemon_does_not_survive_destroy)
{
    const char *daemon = "setsid sleep 1001234 </dev/null >/dev/null 2>&1 &";
    struct sbx *sb = sandbox_new(&(struct sbx_opts)SBX_OPTS_INIT);
    struct sbx_result r;
    sandbox_run(sb, daemon, &r);
    sbx_result_free(&r);
    cr_expect(host_process_becomes("sleep 1001234", true),
              "the daemon runs while the sandbox lives");
    sbx_free(sb);
    cr_expect(host_process_becomes("sleep 1001234", false), "a daemon outlived its sandbox");

    /* Control: started on the host, the same daemon does survive its parent. */
    char *out = on_host("setsid sleep 1001235 </dev/null >/dev/null 2>&1 &");
    free(out);
    cr_expect(host_process_becomes("sleep 1001235", true),
              "the daemon trick must work on the host");
    cr_expect_eq(system("pkill -x -f 'sleep 1001235'"), 0);
}

/* ---- the workspace ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_file(const char *path)
{
    struct cru_buf b = CRU_BUF_INIT;
    char chunk[256];
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        cru_buf_append(&b, chunk, n);
    fclose(f);
    return cru_buf_detach(&b, NULL);
}

TestSuite(workspace, .init = fixtures_up, .fini = fixtures_down);

Test(workspace, overlay_keeps_the_host_folder_unchanged)
{
    char ws[128], file[160];
    snprintf(ws, sizeof(ws), "%s/ws", fx.dir);
    snprintf(file, sizeof(file), "%s/f.txt", ws);
    cr_assert_eq(mkdir(ws, 0755), 0);
    write_file(file, "original\n");

    struct sbx_opts o = SBX_OPTS_INIT;
    o.workspace = ws;
    struct sbx *sb = sandbox_new(&o);
    struct sbx_result r;
    sandbox_run(sb, "echo changed >f.txt && cat f.txt && touch new && stat -c %u f.txt", &r);
    cr_expect_eq(r.exit_code, 0, "the agent can edit the workspace: %s", cru_buf_cstr(&r.err));
    cr_expect_str_eq(cru_buf_cstr(&r.out), "changed\n0\n", "files appear owned by root inside");
    sbx_result_free(&r);
    sbx_free(sb);
    char *text = read_file(file);
    cr_expect_str_eq(text, "original\n");
    free(text);
    snprintf(file, sizeof(file), "%s/new", ws);
    cr_expect_neq(access(file, F_OK), 0);

    /* Control: a bind makes the same edit reach the host folder. */
    o.workspace_bind = true;
    sb = sandbox_new(&o);
    sandbox_run(sb, "echo changed >f.txt", &r);
    sbx_result_free(&r);
    sbx_free(sb);
    snprintf(file, sizeof(file), "%s/f.txt", ws);
    text = read_file(file);
    cr_expect_str_eq(text, "changed\n");
    free(text);
    struct stat st;
    cr_assert_eq(stat(file, &st), 0);
    cr_expect_eq(st.st_uid, 0, "through the idmapped bind, the host file keeps its owner");
}

Test(workspace, files_created_inside_are_not_host_root)
{
    struct sbx *sb = sandbox_new(&(struct sbx_opts)SBX_OPTS_INIT);
    struct sbx_result r;
    sandbox_run(sb, "cat /proc/self/uid_map", &r);
    unsigned inside, outside, count;
    cr_assert_eq(sscanf(cru_buf_cstr(&r.out), "%u %u %u", &inside, &outside, &count), 3);
    cr_expect_eq(inside, 0);
    cr_expect_eq(outside, sbx_root_uid(sb));
    cr_expect_geq(outside, 65536u, "the sandbox's root maps to an unprivileged host uid");
    sbx_result_free(&r);

    struct sbx *other = sandbox_new(&(struct sbx_opts)SBX_OPTS_INIT);
    cr_expect_neq(sbx_root_uid(other), sbx_root_uid(sb), "each sandbox has its own uid range");
    sbx_free(other);
    sbx_free(sb);
}

/* ---- sessions ---- */

Test(session, many_commands_stdin_caps_and_status)
{
    struct sbx *sb = sandbox_new(&(struct sbx_opts)SBX_OPTS_INIT);
    struct sbx_cmd c = SBX_CMD_INIT;
    struct sbx_result r;

    const char *const argv[] = { "tr", "a-z", "A-Z", NULL };
    c.argv = argv;
    c.stdin_data = "hello\n";
    c.stdin_len = 6;
    cr_assert_eq(sbx_exec(sb, &c, &r), 0, "%s", cru_err_msg());
    cr_expect_str_eq(cru_buf_cstr(&r.out), "HELLO\n");
    cr_expect_eq(r.exit_code, 0);
    sbx_result_free(&r);

    c = (struct sbx_cmd)SBX_CMD_INIT;
    c.shell = "head -c 100000 /dev/zero; echo err >&2; exit 3";
    c.stdout_cap = 1000;
    cr_assert_eq(sbx_exec(sb, &c, &r), 0, "%s", cru_err_msg());
    cr_expect_eq(r.out_total, 100000, "the total is counted");
    cr_expect_str_eq(r.out.data + 1000,
                     "\n[crucible: output truncated: 1000 of 100000 bytes kept]\n",
                     "1000 bytes are kept, then a marker");
    cr_expect_eq(r.out.data[999], '\0', "the kept bytes are the command's (zeros here)");
    cr_expect_str_eq(cru_buf_cstr(&r.err), "err\n");
    cr_expect_eq(r.exit_code, 3);
    sbx_result_free(&r);

    c = (struct sbx_cmd)SBX_CMD_INIT;
    c.shell = "kill -TERM $$";
    cr_assert_eq(sbx_exec(sb, &c, &r), 0);
    cr_expect_eq(r.signal, SIGTERM);
    cr_expect_eq(r.exit_code, 128 + SIGTERM);
    sbx_result_free(&r);

    const char *const missing[] = { "no-such-command", NULL };
    c = (struct sbx_cmd)SBX_CMD_INIT;
    c.argv = missing;
    cr_assert_eq(sbx_exec(sb, &c, &r), 0);
    cr_expect_eq(r.exit_code, 127);
    cr_expect_not_null(strstr(cru_buf_cstr(&r.err), "command not found"));
    sbx_result_free(&r);

    /* State persists across the commands of one session. */
    c = (struct sbx_cmd)SBX_CMD_INIT;
    c.shell = "echo kept >/tmp/state";
    cr_assert_eq(sbx_exec(sb, &c, &r), 0);
    sbx_result_free(&r);
    c.shell = "cat /tmp/state";
    cr_assert_eq(sbx_exec(sb, &c, &r), 0);
    cr_expect_str_eq(cru_buf_cstr(&r.out), "kept\n");
    sbx_result_free(&r);
    sbx_free(sb);
}

Test(session, wall_limit_of_the_sandbox)
{
    struct sbx_opts o = SBX_OPTS_INIT;
    o.wall_ms = 300;
    struct sbx *sb = sandbox_new(&o);
    struct sbx_cmd c = SBX_CMD_INIT;
    struct sbx_result r;
    c.shell = "sleep 5";
    cr_assert_eq(sbx_exec(sb, &c, &r), 0, "%s", cru_err_msg());
    cr_expect(r.timed_out, "the sandbox's wall limit stops a command");
    sbx_result_free(&r);
    cr_expect_eq(sbx_exec(sb, &c, &r), CRU_ETIMEDOUT, "and refuses new ones after it");
    sbx_free(sb);
}

Test(session, destroy_leaves_nothing)
{
    struct sbx *sb = sandbox_new(&(struct sbx_opts)SBX_OPTS_INIT);
    pid_t init = sbx_init_pid(sb);
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d", (int)init);
    cr_assert_eq(access(dir, F_OK), 0);
    sbx_free(sb);
    cr_expect_neq(access(dir, F_OK), 0, "the init is gone");
    /* No state directory of a sandbox that nobody holds. */
    cr_expect_eq(sbx_sweep(NULL), 0, "sbx_free left state for the sweep");
}

/* State folders in /run/crucible whose slot lock nobody holds. */
static int unheld_state_dirs(void)
{
    DIR *d = opendir("/run/crucible");
    struct dirent *e;
    int n = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        unsigned slot;
        char rest;
        if (sscanf(e->d_name, "sbx-%u%c", &slot, &rest) != 1)
            continue;
        char lock[64];
        snprintf(lock, sizeof(lock), "/run/crucible/sbx-%u.lock", slot);
        int fd = open(lock, O_RDWR | O_CLOEXEC);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
            n++;
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
    return n;
}

/* Gone, or a zombie waiting for whoever inherited it. */
static bool process_dead(pid_t pid)
{
    char path[64], stat[256] = { 0 };
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    const char *paren = strrchr(stat, ')');
    return n == 0 || !paren || paren[2] == 'Z' || paren[2] == 'X';
}

Test(session, state_of_a_killed_supervisor_is_swept)
{
    /* A child creates a sandbox and is SIGKILLed: its init must die with it, and the next
     * sweep removes what it left. */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct sbx *sb = NULL;
        if (sbx_new(&sb, &(struct sbx_opts)SBX_OPTS_INIT) < 0)
            _exit(1);
        pid_t init = sbx_init_pid(sb);
        (void)!write(p[1], &init, sizeof(init));
        pause();
        _exit(0);
    }
    pid_t init = 0;
    cr_assert_eq(read(p[0], &init, sizeof(init)), (ssize_t)sizeof(init));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    bool dead = false;
    for (int i = 0; i < 100 && !(dead = process_dead(init)); i++)
        usleep(10000);
    cr_expect(dead, "the init died with its supervisor");
    cr_expect_geq(sbx_sweep(NULL), 0, "%s", cru_err_msg());
    /* Tests running beside this one sweep too, so the count proves nothing: what must hold is
     * that no state folder is left without a live holder of its slot. */
    cr_expect_eq(unheld_state_dirs(), 0, "the dead supervisor's sandbox state is swept");
}

Test(session, bad_options)
{
    struct sbx *sb = NULL;
    struct sbx_opts o = SBX_OPTS_INIT;
    o.workspace = "/nonexistent/workspace";
    cr_expect_eq(sbx_new(&sb, &o), CRU_ENOENT);
    cr_expect_not_null(strstr(cru_err_msg(), "/nonexistent/workspace"));
    o = (struct sbx_opts)SBX_OPTS_INIT;
    struct sbx_bind b = { "/etc/hostname", "/proc/evil", true };
    o.binds = &b;
    o.n_binds = 1;
    cr_expect_lt(sbx_new(&sb, &o), 0, "binding over /proc is refused");
    cr_expect_null(sb);
}

/* ---- the host's file access into a live sandbox ---- */

Test(workspace, planted_symlink_does_not_lead_the_host_out)
{
    char ws[128];
    snprintf(ws, sizeof(ws), "%s/ws", fx.dir);
    cr_assert_eq(mkdir(ws, 0755), 0);
    struct sbx_opts o = SBX_OPTS_INIT;
    o.workspace = ws;
    struct sbx *sb = sandbox_new(&o);
    struct sbx_result r;
    /* The agent plants links at the host's secret, absolute and relative. */
    sandbox_run(sb, "ln -s \"$SECRET\" abs && ln -s ../../../../../../..\"$SECRET\" rel && ls", &r);
    cr_expect_eq(r.exit_code, 0, "%s", cru_buf_cstr(&r.err));
    sbx_result_free(&r);

    /* Positive control: a naive open through the workspace follows the link to the host. */
    int naive = openat(sbx_workspace_fd(sb), "abs", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(naive, 0, "the naive open must reach the host file");
    char got[16] = { 0 };
    cr_expect_gt(read(naive, got, sizeof(got) - 1), 0);
    cr_expect_str_eq(got, "s3cret\n");
    close(naive);

    struct sbx_fs fs = { .rootfd = sbx_workspace_fd(sb),
                         .uid = sbx_root_uid(sb),
                         .gid = sbx_root_gid(sb) };
    struct cru_buf b = CRU_BUF_INIT;
    cr_expect_lt(sbx_fs_read(&fs, "abs", 1024, &b), 0, "the API must not follow the link out");
    cr_expect_lt(sbx_fs_read(&fs, "rel", 1024, &b), 0);
    cr_expect_null(strstr(cru_buf_cstr(&b), "s3cret"));

    /* Files the host writes appear owned by the sandbox's root. */
    cr_assert_eq(sbx_fs_write(&fs, "from-host/note.txt", "hi\n", 3, 0644, true), 0, "%s",
                 cru_err_msg());
    sandbox_run(sb, "stat -c '%u %a' from-host/note.txt && cat from-host/note.txt", &r);
    cr_expect_str_eq(cru_buf_cstr(&r.out), "0 644\nhi\n");
    sbx_result_free(&r);
    cru_buf_free(&b);
    sbx_free(sb);
}

Test(session, init_reaps_orphans_and_relays_signals)
{
    struct sbx *sb = sandbox_new(&(struct sbx_opts)SBX_OPTS_INIT);
    struct sbx_cmd c = SBX_CMD_INIT;
    struct sbx_result r;

    /* Orphans of a finished command become the init's children; it must reap them. */
    c.shell = "(sh -c 'exit 0' &) ; (sleep 0.1 &) ; sleep 0.3";
    cr_assert_eq(sbx_exec(sb, &c, &r), 0, "%s", cru_err_msg());
    sbx_result_free(&r);
    c.shell = "sleep 0.2; grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l";
    cr_assert_eq(sbx_exec(sb, &c, &r), 0, "%s", cru_err_msg());
    cr_expect_str_eq(cru_buf_cstr(&r.out), "0\n", "zombies left in the sandbox");
    sbx_result_free(&r);

    /* A signal to the init reaches the running command's process group. */
    c.shell = "trap 'echo got-term; exit 0' TERM; sleep 10 & wait";
    pid_t killer = fork();
    cr_assert_geq(killer, 0);
    if (killer == 0) {
        usleep(300000);
        kill(sbx_init_pid(sb), SIGTERM);
        _exit(0);
    }
    cr_assert_eq(sbx_exec(sb, &c, &r), 0, "%s", cru_err_msg());
    waitpid(killer, NULL, 0);
    cr_expect_str_eq(cru_buf_cstr(&r.out), "got-term\n");
    cr_expect_eq(r.exit_code, 0);
    cr_expect_lt(r.wall_ms, 5000);
    sbx_result_free(&r);
    sbx_free(sb);
}

/* ---- a root filesystem folder instead of the host profile ---- */

/* A minimal root filesystem, made from the host's own programs: dash as /usr/bin/sh and cat,
 * the shared libraries ldd names for them, merged-/usr links, and an /etc/motd that the host
 * profile does not have. usr/bin is writable by anyone on the host, so that only the sandbox's
 * read-only mount stands between a command and it. */
static char rootfs_dir[64], rootfs[96];
static const char rootfs_motd[] = "crucible rootfs motd\n";

/* ROOTFS/REL, in one of four buffers used in turn. */
static const char *in_rootfs(const char *rel)
{
    static char p[4][4096];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", rootfs, rel);
    return p[i];
}

/* Copies the host file HOST (links followed) to ROOTFS/REL, making its folders. */
static void rootfs_copy(const char *host, const char *rel, mode_t mode)
{
    struct cru_buf b = CRU_BUF_INIT;
    char parent[4096];
    snprintf(parent, sizeof(parent), "%s", in_rootfs(rel));
    *strrchr(parent, '/') = '\0';
    cr_assert_eq(cru_mkdir_p(parent, 0755), 0, "%s: %s", parent, cru_err_msg());
    cr_assert_eq(cru_file_read(host, 64 << 20, &b), 0, "%s: %s", host, cru_err_msg());
    cr_assert_eq(cru_file_write_atomic(in_rootfs(rel), b.data, b.len, mode), 0, "%s: %s", rel,
                 cru_err_msg());
    cru_buf_free(&b);
}

/* Copies what `ldd PROG` lists (the libraries and the loader) to the same paths under the
 * root, /lib and /lib64 going to usr/lib and usr/lib64 (the root's links lead there). */
static void rootfs_copy_libs(const char *prog)
{
    char cmd[256], line[1024];
    size_t n = 0;
    snprintf(cmd, sizeof(cmd), "ldd '%s'", prog);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f)) {
        char *arrow = strstr(line, "=> ");
        char *path = arrow ? arrow + 3 : line + strspn(line, " \t");
        if (path[0] != '/')
            continue; /* linux-vdso.so.1, which the kernel provides */
        path[strcspn(path, " \t\n(")] = '\0';
        char rel[1024];
        if (strncmp(path, "/lib64/", 7) == 0)
            snprintf(rel, sizeof(rel), "usr/lib64/%s", path + 7);
        else if (strncmp(path, "/lib/", 5) == 0)
            snprintf(rel, sizeof(rel), "usr/lib/%s", path + 5);
        else if (strncmp(path, "/usr/", 5) == 0)
            snprintf(rel, sizeof(rel), "%s", path + 1);
        else
            cr_assert_fail("ldd %s: a library outside /lib, /lib64 and /usr: %s", prog, path);
        rootfs_copy(path, rel, 0755);
        n++;
    }
    cr_assert_eq(pclose(f), 0, "ldd %s failed", prog);
    cr_assert_gt(n, 0, "ldd %s listed no library", prog);
}

static void rootfs_up(void)
{
    fixtures_up();
    snprintf(rootfs_dir, sizeof(rootfs_dir), "/tmp/crucible-rootfs-XXXXXX");
    cr_assert_not_null(mkdtemp(rootfs_dir));
    cr_assert_eq(chmod(rootfs_dir, 0755), 0);
    snprintf(rootfs, sizeof(rootfs), "%s/root", rootfs_dir);
    cr_assert_eq(mkdir(rootfs, 0755), 0);
    cr_assert_eq(cru_mkdir_p(in_rootfs("usr/bin"), 0755), 0);
    cr_assert_eq(cru_mkdir_p(in_rootfs("usr/lib"), 0755), 0);
    cr_assert_eq(cru_mkdir_p(in_rootfs("usr/lib64"), 0755), 0);
    cr_assert_eq(cru_mkdir_p(in_rootfs("etc"), 0755), 0);
    rootfs_copy("/bin/dash", "usr/bin/sh", 0755);
    rootfs_copy("/bin/cat", "usr/bin/cat", 0755);
    rootfs_copy_libs("/bin/dash");
    rootfs_copy_libs("/bin/cat");
    cr_assert_eq(symlink("usr/bin", in_rootfs("bin")), 0);
    cr_assert_eq(symlink("usr/lib", in_rootfs("lib")), 0);
    cr_assert_eq(symlink("usr/lib64", in_rootfs("lib64")), 0);
    cr_assert_eq(
        cru_file_write_atomic(in_rootfs("etc/motd"), rootfs_motd, strlen(rootfs_motd), 0644), 0);
    cr_assert_eq(chmod(in_rootfs("usr/bin"), 0777), 0);
}

static void rootfs_down(void)
{
    if (cru_remove_tree(rootfs_dir) < 0)
        fprintf(stderr, "cleanup failed: %s\n", cru_err_msg());
    fixtures_down();
}

TestSuite(rootfs, .init = rootfs_up, .fini = rootfs_down);

static struct sbx *rootfs_sandbox(void)
{
    struct sbx_opts o = SBX_OPTS_INIT;
    o.rootfs = rootfs;
    return sandbox_new(&o);
}

static const char python_probe[] = "if test -e /usr/bin/python3; then echo python3; "
                                   "else echo no python3; fi";

Test(rootfs, commands_see_the_root_filesystem_not_the_host)
{
    if (access("/usr/bin/python3", F_OK) != 0)
        cr_skip_test("the probe needs /usr/bin/python3 on the host");
    struct sbx *sb = rootfs_sandbox();
    struct sbx_cmd c = SBX_CMD_INIT;
    struct sbx_result r;

    /* cat found through PATH in the root's /usr/bin, reading the root's /etc. */
    const char *const argv[] = { "cat", "/etc/motd", NULL };
    c.argv = argv;
    c.env = fx.envp;
    cr_assert_eq(sbx_exec(sb, &c, &r), 0, "%s", cru_err_msg());
    cr_expect_eq(r.exit_code, 0, "%s", cru_buf_cstr(&r.err));
    cr_expect_str_eq(cru_buf_cstr(&r.out), rootfs_motd);
    sbx_result_free(&r);

    /* The shell is the root's dash; the host's /usr is nowhere. */
    sandbox_run(sb, python_probe, &r);
    cr_expect_eq(r.exit_code, 0, "%s", cru_buf_cstr(&r.err));
    cr_expect_str_eq(cru_buf_cstr(&r.out), "no python3\n");
    sbx_result_free(&r);
    sandbox_run(sb, "cat /etc/hostname; cat /usr/bin/nothing-here 2>/dev/null || echo missing", &r);
    cr_expect_str_eq(cru_buf_cstr(&r.out), "sandbox\nmissing\n",
                     "the sandbox's own /etc files come along");
    sbx_result_free(&r);
    sbx_free(sb);

    /* The control: the host profile does see python3, and not the root's motd. */
    char *ctl = in_sandbox(python_probe, 0);
    cr_expect_str_eq(ctl, "python3\n", "control: a host-profile sandbox sees the host's /usr");
    free(ctl);
    ctl = in_sandbox("cat /etc/motd 2>/dev/null", 0);
    cr_expect_null(strstr(ctl, rootfs_motd));
    free(ctl);
}

Test(rootfs, root_filesystem_is_read_only_but_tmp_and_workspace_are_not)
{
    /* The same usr/bin, bound writable at /rw: the control that its modes would let a command
     * write there, so that only the read-only mount of /usr stops it. */
    struct sbx_opts o = SBX_OPTS_INIT;
    struct sbx_bind rw = { in_rootfs("usr/bin"), "/rw", false };
    o.rootfs = rootfs;
    o.binds = &rw;
    o.n_binds = 1;
    struct sbx *sb = sandbox_new(&o);
    struct sbx_result r;

    sandbox_run(sb, "echo x >/rw/control && echo wrote /rw", &r);
    cr_expect_str_eq(cru_buf_cstr(&r.out), "wrote /rw\n",
                     "control: the folder is writable when bound so: %s", cru_buf_cstr(&r.err));
    sbx_result_free(&r);
    cr_expect_eq(access(in_rootfs("usr/bin/control"), F_OK), 0);
    unlink(in_rootfs("usr/bin/control"));

    sandbox_run(sb,
                "echo x >/usr/bin/newfile 2>/dev/null && echo HOLE usr/bin; "
                "echo x >/bin/newfile 2>/dev/null && echo HOLE bin; "
                "echo x >>/etc/motd 2>/dev/null && echo HOLE etc/motd; "
                "echo x >/etc/newfile 2>/dev/null && echo HOLE etc; "
                "echo x >/newfile 2>/dev/null && echo HOLE root; "
                "echo t >/tmp/t && cat /tmp/t; echo w >/workspace/w && cat /workspace/w",
                &r);
    cr_expect_str_eq(cru_buf_cstr(&r.out), "t\nw\n", "stderr: %s", cru_buf_cstr(&r.err));
    sbx_result_free(&r);
    sbx_free(sb);
    cr_expect_neq(access(in_rootfs("usr/bin/newfile"), F_OK), 0);
    cr_expect_neq(access(in_rootfs("etc/newfile"), F_OK), 0);
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(in_rootfs("etc/motd"), 1024, &b), 0);
    cr_expect_str_eq(cru_buf_cstr(&b), rootfs_motd, "the host's copy is unchanged");
    cru_buf_free(&b);
}

/* A root without /etc, and one with an empty /etc, still get the sandbox's own files there
 * (and nothing of the host's). */
Test(rootfs, root_without_etc)
{
    char etc[128];
    snprintf(etc, sizeof(etc), "%s", in_rootfs("etc"));
    cr_assert_eq(cru_remove_tree(etc), 0);
    for (int i = 0; i < 2; i++) {
        struct sbx *sb = rootfs_sandbox();
        struct sbx_result r;
        sandbox_run(sb, "echo /etc/*; cat /etc/hostname", &r);
        cr_expect_eq(r.exit_code, 0, "%s", cru_buf_cstr(&r.err));
        cr_expect_str_eq(cru_buf_cstr(&r.out),
                         "/etc/group /etc/hostname /etc/hosts /etc/passwd\nsandbox\n", "%s",
                         i == 0 ? "no /etc" : "an empty /etc");
        sbx_result_free(&r);
        sbx_free(sb);
        if (i == 0)
            cr_assert_eq(mkdir(etc, 0755), 0);
    }
}

/* A root filesystem's /etc/shadow (0640, root's) is not readable by the init, which copies
 * the root's small /etc files as the sandbox's unprivileged root: it is left out, as the
 * sandbox could not read it either, and the sandbox starts. */
Test(rootfs, unreadable_etc_file_is_left_out)
{
    cr_assert_eq(cru_file_write_atomic(in_rootfs("etc/shadow"), "root:*:1::::::\n", 15, 0640), 0);
    struct sbx *sb = rootfs_sandbox();
    struct sbx_result r;
    sandbox_run(sb, "cat /etc/shadow 2>/dev/null || echo no shadow", &r);
    cr_expect_str_eq(cru_buf_cstr(&r.out), "no shadow\n", "%s", cru_buf_cstr(&r.err));
    sbx_result_free(&r);
    sbx_free(sb);
}

Test(rootfs, crucible_exec_rootfs)
{
    const char *bin = getenv("CRUCIBLE_BIN");
    cr_assert(bin && *bin, "CRUCIBLE_BIN is not set: run the tests with `make test`");
    char script[1024];
    snprintf(script, sizeof(script),
             "'%s' exec --rootfs '%s' -- cat /etc/motd; echo \"status $?\"; "
             "'%s' exec --rootfs '%s' -- sh -c '%s'; "
             "'%s' exec --rootfs '%s' -- sh -c 'echo HOLE' 2>/dev/null; echo \"status $?\"",
             bin, rootfs, bin, rootfs, python_probe, bin, rootfs_dir);
    char *out = on_host(script);
    char want[256];
    snprintf(want, sizeof(want), "%sstatus 0\nno python3\nstatus 127\n", rootfs_motd);
    cr_expect_str_eq(out, want, "got \"%s\", expected \"%s\"", out, want);
    free(out);

    snprintf(script, sizeof(script), "'%s' exec --rootfs '%s/missing' -- true 2>&1; echo $?", bin,
             rootfs_dir);
    out = on_host(script);
    cr_expect(strstr(out, "not a folder") != NULL && strstr(out, "\n2\n") != NULL,
              "a missing --rootfs is a usage error: %s", out);
    free(out);
}

/* The host reads the root's /etc (its names, and small files it copies in): through a link
 * planted as etc, which a rootfs tarball may hold (absolute symlinks are allowed there), the
 * host would copy and bind whatever folder the link names. Such an etc counts as none. */
Test(rootfs, etc_link_does_not_lead_the_host_out)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "%s/etc", rootfs);
    cr_assert_eq(cru_remove_tree(cmd), 0);
    cr_assert_eq(chmod(fx.dir, 0755), 0);
    cr_assert_eq(chmod(fx.secret, 0644), 0);
    cr_assert_eq(symlink(fx.dir, in_rootfs("etc")), 0);

    /* The control: on the host, the link leads to the secret. */
    char *ctl = on_host("grep -l s3cret \"$SECRET\"");
    cr_assert_neq(ctl[0], '\0');
    free(ctl);

    struct sbx *sb = NULL;
    struct sbx_opts o = SBX_OPTS_INIT;
    o.rootfs = rootfs;
    if (sbx_new(&sb, &o) < 0)
        return; /* refusing such a root is fine */
    struct sbx_result r;
    sandbox_run(sb, "cat /etc/secret 2>/dev/null; echo /etc/*", &r);
    cr_expect_null(strstr(cru_buf_cstr(&r.out), "s3cret"), "the host's file is in the sandbox");
    cr_expect_null(strstr(cru_buf_cstr(&r.out), "secret"), "%s", cru_buf_cstr(&r.out));
    sbx_result_free(&r);
    sbx_free(sb);
}

/* A read-only bind of a folder that holds another mount: the mount below must be read-only
 * and nosuid too, not only the top one. */
Test(workspace, read_only_binds_are_read_only_all_the_way_down, .init = fixtures_up,
     .fini = fixtures_down)
{
    char top[256], sub[300];
    /* A mount namespace of this test's own: the tmpfs never outlives the test process. */
    cr_assert_eq(unshare(CLONE_NEWNS), 0);
    cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
    cr_assert_eq(chmod(fx.dir, 0755), 0);
    snprintf(top, sizeof(top), "%s/ro", fx.dir);
    snprintf(sub, sizeof(sub), "%s/sub", top);
    cr_assert_eq(cru_mkdir_p(sub, 0777), 0);
    cr_assert_eq(mount("tmpfs", sub, "tmpfs", 0, "mode=1777,size=1m"), 0, "%s", strerror(errno));
    struct sbx_bind binds[2] = { { top, "/ro", true }, { top, "/rw", false } };
    struct sbx_opts o = SBX_OPTS_INIT;
    o.binds = binds;
    o.n_binds = 2;
    struct sbx *sb = NULL;
    int rc = sbx_new(&sb, &o);
    struct sbx_result ctl = { 0 }, r = { 0 };
    if (rc == 0) {
        /* Control: bound writable, the submount takes writes. */
        sandbox_run(sb, "echo x >/rw/sub/control && echo wrote", &ctl);
        sandbox_run(sb,
                    "echo x >/ro/sub/f 2>/dev/null && echo HOLE; "
                    "grep -q ' /ro/sub .*ro,.*nosuid' /proc/self/mountinfo && echo ok",
                    &r);
    }
    sbx_free(sb);
    umount2(sub, MNT_DETACH);
    cr_assert_eq(rc, 0, "%s", cru_err_msg());
    cr_expect_str_eq(cru_buf_cstr(&ctl.out), "wrote\n", "control: %s", cru_buf_cstr(&ctl.err));
    cr_expect_str_eq(cru_buf_cstr(&r.out), "ok\n", "%s", cru_buf_cstr(&r.err));
    sbx_result_free(&ctl);
    sbx_result_free(&r);
}

/* Sandboxes made from several threads at once: the init is a copy of a multithreaded process,
 * where glibc's set*id wrappers would wait forever for threads the copy does not have. */
static void *make_sandboxes(void *arg)
{
    int *failures = arg;
    for (int i = 0; i < 3; i++) {
        struct sbx *sb = NULL;
        struct sbx_opts o = SBX_OPTS_INIT;
        struct sbx_cmd c = SBX_CMD_INIT;
        struct sbx_result r = { 0 };
        c.shell = "exit 7";
        if (sbx_new(&sb, &o) < 0 || sbx_exec(sb, &c, &r) < 0 || r.exit_code != 7)
            __atomic_add_fetch(failures, 1, __ATOMIC_SEQ_CST);
        sbx_result_free(&r);
        sbx_free(sb);
    }
    return NULL;
}

static void *nothing(void *arg)
{
    return arg;
}

/* Starts and ends threads until *stop: glibc's wait is for a thread caught starting or
 * ending at the moment the init is cloned, which this makes likely. */
static void *churn(void *arg)
{
    int *stop = arg;
    while (!__atomic_load_n(stop, __ATOMIC_SEQ_CST)) {
        pthread_t t;
        if (pthread_create(&t, NULL, nothing, NULL) == 0)
            pthread_join(t, NULL);
    }
    return NULL;
}

Test(session, sandboxes_from_many_threads_at_once, .timeout = 120)
{
    pthread_t t[4], c;
    int failures = 0, stop = 0;
    cr_assert_eq(pthread_create(&c, NULL, churn, &stop), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, make_sandboxes, &failures), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(c, NULL);
    cr_expect_eq(failures, 0, "%d of 12 sandboxes failed: %s", failures, cru_err_msg());
}

/* ---- what the host's disk receives ---- */

/* Files below DIR (one level) with a setuid or setgid bit or a file capability, as a list of
 * names; empty when there is none. */
static char *privileged_files(const char *dir)
{
    struct cru_buf b = CRU_BUF_INIT;
    DIR *d = opendir(dir);
    struct dirent *e;
    cr_assert_not_null(d, "%s", dir);
    while ((e = readdir(d)) != NULL) {
        char path[512];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (st.st_mode & (S_ISUID | S_ISGID))
            cru_buf_printf(&b, "%s (mode %o, owner %u) ", e->d_name, st.st_mode & 07777,
                           (unsigned)st.st_uid);
        if (lgetxattr(path, "security.capability", NULL, 0) >= 0)
            cru_buf_printf(&b, "%s (file capability) ", e->d_name);
    }
    closedir(d);
    return cru_buf_detach(&b, NULL);
}

/* Every way a command could leave a privileged file in a bound workspace: chmod and the calls
 * that create with a mode, setuid and setgid, and a file capability (a v2 security.capability
 * granting CAP_SETUID, as setcap writes it). */
static const char privileged_script[] =
    "cp /bin/true suid; chmod 4755 suid; cp /bin/true sgid; chmod g+s sgid; "
    "python3 -c \"import os\n"
    "for n, m in (('open-suid', 0o4755), ('open-sgid', 0o2755)):\n"
    "    try: os.close(os.open(n, os.O_CREAT | os.O_WRONLY, m))\n"
    "    except OSError: pass\n"
    "try: os.mknod('mknod-suid', 0o104755)\n"
    "except OSError: pass\n"
    "open('cap', 'w').close()\n"
    "try: os.setxattr('cap', 'security.capability', "
    "bytes([0, 0, 0, 2, 0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))\n"
    "except OSError: pass\n"
    "\" 2>/dev/null; true";

Test(workspace, setuid_bits_and_file_caps_never_reach_the_host_disk)
{
    char ws[128];
    snprintf(ws, sizeof(ws), "%s/ws", fx.dir);
    cr_assert_eq(mkdir(ws, 0755), 0);
    struct sbx_opts o = SBX_OPTS_INIT;
    o.workspace = ws;
    o.workspace_bind = true;
    struct sbx *sb = sandbox_new(&o);
    struct sbx_result r;
    sandbox_run(sb, privileged_script, &r);
    cr_expect_eq(r.exit_code, 0, "%s", cru_buf_cstr(&r.err));
    sbx_result_free(&r);
    sbx_free(sb);
    char *found = privileged_files(ws);
    cr_expect_str_empty(found, "privileged files in the host's copy of the workspace: %s", found);
    free(found);
    struct stat st;
    char path[160];
    snprintf(path, sizeof(path), "%s/suid", ws);
    cr_expect_eq(stat(path, &st), 0, "the copy itself is allowed, only the bit is refused");
    cr_expect_eq(st.st_uid, 0, "files the sandbox makes in a bound root-owned folder are root's");

    /* Positive control: without the filter and with the sandbox root's capabilities, the same
     * script leaves root-owned setuid files and a file capability on the host. */
    char ws2[128];
    snprintf(ws2, sizeof(ws2), "%s/ws2", fx.dir);
    cr_assert_eq(mkdir(ws2, 0755), 0);
    o.workspace = ws2;
    o.disable_layers = SBX_LAYER_SECCOMP | SBX_LAYER_CAPS;
    sb = sandbox_new(&o);
    sandbox_run(sb, privileged_script, &r);
    sbx_result_free(&r);
    sbx_free(sb);
    found = privileged_files(ws2);
    cr_expect(strstr(found, "suid (mode 4755, owner 0)") && strstr(found, "sgid (mode 2755") &&
                  strstr(found, "open-suid") && strstr(found, "cap (file capability)"),
              "the control must leave privileged files, got: %s", found);
    free(found);
}

/* Fills F with 1 MiB blocks until it fails: prints how many it wrote. */
#define FILL(f)                                                                                    \
    "n=0; while dd if=/dev/zero of=" f " bs=1M count=1 oflag=append conv=notrunc "                 \
    "status=none 2>/dev/null; do n=$((n+1)); [ $n -ge 64 ] && break; done; echo $n"

Test(limits, disk_bounds_tmp_and_workspace_together)
{
    char ws[128], file[160];
    snprintf(ws, sizeof(ws), "%s/ws", fx.dir);
    cr_assert_eq(mkdir(ws, 0755), 0);
    struct sbx_opts o = SBX_OPTS_INIT;
    o.workspace = ws;
    o.disk_bytes = 16u << 20;
    struct sbx *sb = sandbox_new(&o);
    struct sbx_info info;
    sbx_info_get(sb, &info);
    cr_expect_eq(info.disk_bytes, 16u << 20);
    cr_expect_eq(info.disk_inodes, (16u << 20) / SBX_DISK_BYTES_PER_INODE);
    cr_expect(info.workspace_on_disk, "an overlay workspace's changes are on the disk");

    struct sbx_result r;
    sandbox_run(sb, "dd if=/dev/zero of=/tmp/half bs=1M count=10 status=none && " FILL("big"), &r);
    int mib = atoi(cru_buf_cstr(&r.out));
    cr_expect_lt(mib, 7, "/tmp and the workspace share 16 MiB: %d MiB more went to the workspace",
                 mib);
    cr_expect(r.disk_full, "a full disk is reported");
    sbx_result_free(&r);
    sandbox_run(sb, "rm /tmp/half && df -k /tmp | tail -1", &r);
    cr_expect_not(r.disk_full, "and no longer once space is freed: %s", cru_buf_cstr(&r.out));
    sbx_result_free(&r);
    sbx_free(sb);
    snprintf(file, sizeof(file), "%s/big", ws);
    cr_expect_neq(access(file, F_OK), 0, "the overlay's changes never reach the host folder");

    /* Positive control: on a disk of 256 MiB the same writes go through, 64 MiB of them. */
    o.disk_bytes = 256u << 20;
    sb = sandbox_new(&o);
    sandbox_run(sb, "dd if=/dev/zero of=/tmp/half bs=1M count=10 status=none && " FILL("big"), &r);
    cr_expect_eq(atoi(cru_buf_cstr(&r.out)), 64, "the control writes all 64 MiB");
    cr_expect_not(r.disk_full);
    sbx_result_free(&r);
    sbx_free(sb);
}

/* echo, not ':': a failed redirection of a special built-in ends a POSIX shell. */
static const char inode_fill[] = "mkdir -p /tmp/d && i=0; while [ $i -lt 3000 ] && "
                                 "echo >/tmp/d/$i 2>/dev/null; do i=$((i+1)); done; echo $i";

Test(limits, disk_bounds_inodes)
{
    struct sbx_opts o = SBX_OPTS_INIT;
    o.disk_inodes = 1000;
    struct sbx *sb = sandbox_new(&o);
    struct sbx_result r;
    sandbox_run(sb, inode_fill, &r);
    int n = atoi(cru_buf_cstr(&r.out));
    cr_expect(n > 900 && n < 1000, "1000 inodes hold about 1000 files, not %d: %s", n,
              cru_buf_cstr(&r.err));
    cr_expect(r.disk_full, "no inode left is a full disk");
    sbx_result_free(&r);
    sbx_free(sb);

    char *ctl = in_sandbox(inode_fill, 0);
    cr_expect_eq(atoi(ctl), 3000, "with the default inode count the control makes 3000 files");
    free(ctl);
}

static void run_argv(struct sbx *sb, const char *const *argv, struct sbx_result *r)
{
    struct sbx_cmd c = SBX_CMD_INIT;
    c.argv = argv;
    c.env = fx.envp;
    c.timeout_ms = 30000;
    cr_assert_eq(sbx_exec(sb, &c, r), 0, "sbx_exec: %s", cru_err_msg());
}

static const char *const tmpfs_fill[] = { "dd",    "if=/dev/zero", "of=/tmp/fill",
                                          "bs=1M", "count=200",    "status=none",
                                          NULL };

Test(limits, init_survives_an_oom_from_a_full_disk)
{
    struct sbx_opts o = SBX_OPTS_INIT;
    o.memory_bytes = 32u << 20;
    struct sbx *sb = sandbox_new(&o);
    struct sbx_result r;
    run_argv(sb, tmpfs_fill, &r);
    cr_expect(r.oom, "filling the disk past the memory limit is an OOM: exit %d, %s", r.exit_code,
              cru_buf_cstr(&r.err));
    sbx_result_free(&r);
    sandbox_run(sb, "rm -f /tmp/fill; cat /proc/self/oom_score_adj", &r);
    cr_expect_str_eq(cru_buf_cstr(&r.out), "1000\n", "the init survives; commands score 1000");
    sbx_result_free(&r);
    sbx_free(sb);

    /* Positive control: commands keeping the init's score, and the init a copy of a host of 96
     * MiB, the OOM killer takes the init; the result still says oom, and the sandbox is spent. */
    size_t big = 96u << 20;
    char *host = malloc(big);
    cr_assert_not_null(host);
    memset(host, 1, big);
    o.disable_layers = SBX_LAYER_OOM_SCORE;
    sb = sandbox_new(&o);
    run_argv(sb, tmpfs_fill, &r);
    cr_expect(r.oom, "the init's death is the command's OOM");
    sbx_result_free(&r);
    struct sbx_cmd c = SBX_CMD_INIT;
    c.shell = "true";
    cr_expect_lt(sbx_exec(sb, &c, &r), 0, "the control must lose its init");
    cr_expect_not_null(strstr(cru_err_msg(), "OOM killer"), "%s", cru_err_msg());
    sbx_free(sb);
    free(host);
}

Test(session, init_hides_the_host_command_line, .init = fixtures_up, .fini = fixtures_down)
{
    /* Positive control: the host's own command line, as the sandbox's init would show it. */
    char *self = on_host("tr '\\0' ' ' </proc/$PPID/cmdline");
    cr_assert(strlen(self) > 4, "the control reads the host's argv: \"%s\"", self);
    char *got =
        in_sandbox("tr '\\0' ' ' </proc/1/cmdline; cat /proc/1/environ 2>&1 | head -c 64", 0);
    cr_expect_null(strstr(got, self), "/proc/1/cmdline shows the host's \"%s\": %s", self, got);
    free(self);
    cr_expect_null(strstr(got, "s3cret"), "/proc/1/environ shows the host's: %s", got);
    cr_expect_not_null(strstr(got, "crucible-init"), "%s", got);
    free(got);
}

Test(session, bind_destination_parents_are_made, .init = fixtures_up, .fini = fixtures_down)
{
    /* The sandbox's root (an unprivileged host uid) must reach the bind's source. */
    cr_assert_eq(chmod(fx.dir, 0711), 0);
    struct sbx_opts o = SBX_OPTS_INIT;
    struct sbx_bind b = { fx.secret, "/opt/crucible/deep/secret", true };
    o.binds = &b;
    o.n_binds = 1;
    struct sbx *sb = sandbox_new(&o);
    struct sbx_result r;
    sandbox_run(sb, "cat /opt/crucible/deep/secret; echo x >/opt/crucible/deep/secret", &r);
    cr_expect_str_eq(cru_buf_cstr(&r.out), "s3cret\n");
    cr_expect_neq(r.exit_code, 0, "the bind is read-only");
    sbx_result_free(&r);
    sbx_free(sb);

    /* A parent that would have to be made inside a read-only system folder fails, naming it. */
    struct sbx_bind bad = { fx.secret, "/usr/crucible-missing/secret", true };
    o.binds = &bad;
    sb = NULL;
    cr_expect_lt(sbx_new(&sb, &o), 0);
    cr_expect_not_null(strstr(cru_err_msg(), "usr/crucible-missing"), "%s", cru_err_msg());
}

/* ---- rootless: the same sandbox made by an unprivileged user ---- */

/* The uid the rootless tests drop to: no account of the host's, and below the sandboxes' uid
 * ranges. */
#define ROOTLESS_UID 3000000u

/* What a rootless child reports on its pipe besides the script's output. */
enum rootless_flags {
    ROOTLESS_INFO = 1u << 0, /* first a line: the sandbox's sbx_info as JSON */
};

/* Runs SCRIPT in a sandbox made with O (NULL: the defaults) by a child that first drops root
 * for ROOTLESS_UID; returns what it printed: its output, or "ERROR: ..." when it could not
 * drop root or make the sandbox. When CG is not NULL the child joins that cgroup first (the
 * delegated subtree). */
static char *rootless_run(const char *script, const struct sbx_opts *o, unsigned flags,
                          struct sbx_cgroup *cg)
{
    int p[2], go[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        close(go[1]);
        char byte;
        (void)!read(go[0], &byte, 1); /* the parent has put us in CG */
        close(go[0]);
        FILE *out = fdopen(p[1], "w");
        unsetenv("XDG_RUNTIME_DIR");
        if (setgroups(0, NULL) < 0 || setresgid(ROOTLESS_UID, ROOTLESS_UID, ROOTLESS_UID) < 0 ||
            setresuid(ROOTLESS_UID, ROOTLESS_UID, ROOTLESS_UID) < 0) {
            fprintf(out, "ERROR: cannot drop root: %s\n", strerror(errno));
            fclose(out);
            _exit(1);
        }
        /* A process that drops root without an execve is not dumpable, and then nobody but
         * root may write its children's uid maps: a user's own crucible is dumpable. */
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        struct sbx_opts opts = o ? *o : (struct sbx_opts)SBX_OPTS_INIT;
        struct sbx *sb = NULL;
        if (sbx_new(&sb, &opts) < 0) {
            fprintf(out, "ERROR: %s\n", cru_err_msg());
            fclose(out);
            _exit(1);
        }
        if (flags & ROOTLESS_INFO) {
            struct sbx_info info;
            sbx_info_get(sb, &info);
            json_t *j = sbx_info_json(&info);
            char *text = json_dumps(j, JSON_COMPACT);
            fprintf(out, "%s\n", text);
            free(text);
            json_decref(j);
        }
        struct sbx_cmd c = SBX_CMD_INIT;
        struct sbx_result r;
        c.shell = script;
        c.env = fx.envp;
        c.timeout_ms = 30000;
        if (sbx_exec(sb, &c, &r) < 0) {
            fprintf(out, "ERROR: %s\n", cru_err_msg());
            fclose(out);
            _exit(1);
        }
        fputs(cru_buf_cstr(&r.out), out);
        if (r.oom)
            fputs("[oom]\n", out);
        sbx_free(sb);
        fclose(out);
        _exit(0);
    }
    close(p[1]);
    close(go[0]);
    if (cg)
        cr_assert_eq(sbx_cgroup_attach(cg, pid), 0, "%s", cru_err_msg());
    close(go[1]);
    struct cru_buf b = CRU_BUF_INIT;
    char chunk[4096];
    ssize_t n;
    while ((n = read(p[0], chunk, sizeof(chunk))) > 0)
        cru_buf_append(&b, chunk, (size_t)n);
    close(p[0]);
    waitpid(pid, NULL, 0);
    return cru_buf_detach(&b, NULL);
}

/* The fixtures' files become readable to ROOTLESS_UID on the host, so that a probe that cannot
 * read them inside proves the sandbox hides them, not that the user could not have. */
static void rootless_fixtures(void)
{
    cr_assert_eq(chmod(fx.dir, 0711), 0);
    cr_assert_eq(chmod(fx.secret, 0644), 0);
}

ParameterizedTestParameters(rootless, probe)
{
    static size_t index[N_PROBES];
    for (size_t i = 0; i < N_PROBES; i++)
        index[i] = i;
    return cr_make_param_array(size_t, index, N_PROBES);
}

ParameterizedTest(size_t *i, rootless, probe, .init = fixtures_up, .fini = fixtures_down)
{
    const struct probe *p = &probes[*i];
    rootless_fixtures();
    char *got = rootless_run(p->script, NULL, 0, NULL);
    cr_expect(strncmp(got, "ERROR", 5) != 0, "probe '%s': %s", p->name, got);
    cr_expect_null(strstr(got, "HOLE"), "probe '%s' got through the rootless sandbox", p->name);
    free(got);

    char *ctl;
    if (p->control == ON_HOST) {
        ctl = on_host(p->script);
    } else {
        struct sbx_opts o = SBX_OPTS_INIT;
        o.disable_layers = p->layers;
        ctl = rootless_run(p->script, &o, 0, NULL);
    }
    cr_expect_not_null(strstr(ctl, "HOLE"),
                       "positive control of '%s' did not find the hole (%s): the probe proves "
                       "nothing: %s",
                       p->name, p->control == ON_HOST ? "on the host" : "rootless, layer off", ctl);
    free(ctl);
}

TestSuite(rootless, .init = fixtures_up, .fini = fixtures_down);

Test(rootless, maps_only_the_callers_uid_and_works_on_its_files)
{
    rootless_fixtures();
    char ws[128], file[160];
    snprintf(ws, sizeof(ws), "%s/ws", fx.dir);
    snprintf(file, sizeof(file), "%s/f", ws);
    cr_assert_eq(mkdir(ws, 0755), 0);
    write_file(file, "mine\n");
    cr_assert_eq(chown(ws, ROOTLESS_UID, ROOTLESS_UID), 0);
    cr_assert_eq(chown(file, ROOTLESS_UID, ROOTLESS_UID), 0);
    struct sbx_opts o = SBX_OPTS_INIT;
    o.workspace = ws;
    char *got = rootless_run("cat /proc/self/uid_map | tr -s ' '; cat f; echo more >>f; "
                             "mkdir sub && stat -c '%u %U' f sub",
                             &o, ROOTLESS_INFO, NULL);
    cr_expect_not_null(strstr(got, "\"mode\":\"rootless\""), "%s", got);
    cr_expect_not_null(strstr(got, " 0 3000000 1\nmine\n0 root\n0 root\n"),
                       "only the caller's uid is mapped, as the sandbox's root: %s", got);
    free(got);
    char *text = read_file(file);
    cr_expect_str_eq(text, "mine\n", "the overlay left the user's file as it was");
    free(text);

    /* The same, bound: the change reaches the folder, owned by the user on disk. */
    o.workspace_bind = true;
    got = rootless_run("echo more >>f && echo made >new", &o, 0, NULL);
    cr_expect_str_empty(got, "%s", got);
    free(got);
    text = read_file(file);
    cr_expect_str_eq(text, "mine\nmore\n");
    free(text);
    struct stat st;
    snprintf(file, sizeof(file), "%s/new", ws);
    cr_assert_eq(stat(file, &st), 0);
    cr_expect_eq(st.st_uid, ROOTLESS_UID, "a file the sandbox makes belongs to the user");
}

static const char rootless_alloc[] = "python3 -c \"b = bytearray(256 << 20); "
                                     "b[::4096] = b'x' * len(b[::4096]); print('HOLE')\" "
                                     "2>/dev/null; echo done";

/* Without a writable cgroup, memory and pids are rlimits of each process, and say so. */
Test(rootless, rlimits_stand_in_for_cgroups_and_say_so)
{
    struct sbx_opts o = SBX_OPTS_INIT;
    o.memory_bytes = 64u << 20;
    o.pids = 16;
    char *got = rootless_run(rootless_alloc, &o, ROOTLESS_INFO, NULL);
    cr_expect_not_null(strstr(got, "\"cgroup\":null,\"memory\":\"rlimit\",\"pids\":\"rlimit\""),
                       "the enforcement is stated: %s", got);
    cr_expect_null(strstr(got, "HOLE"), "256 MiB allocated under --mem 64M: %s", got);
    cr_expect_not_null(strstr(got, "done"), "%s", got);
    free(got);
    got = rootless_run("i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done 2>/dev/null; "
                       "[ $(ls -d /proc/[0-9]* | wc -l) -ge 30 ] && echo HOLE; "
                       "kill $(jobs -p) 2>/dev/null; true",
                       &o, 0, NULL);
    cr_expect_null(strstr(got, "HOLE"), "40 processes under --pids 16: %s", got);
    free(got);

    /* Control: without the limits the same allocation succeeds. */
    got = rootless_run(rootless_alloc, NULL, 0, NULL);
    cr_expect_not_null(strstr(got, "HOLE"), "%s", got);
    free(got);

    /* A CPU quota has no rlimit: an error, never a sandbox without it. */
    o = (struct sbx_opts)SBX_OPTS_INIT;
    o.cpus = 1;
    got = rootless_run("true", &o, 0, NULL);
    cr_expect_not_null(strstr(got, "ERROR: ") && strstr(got, "CPU quota needs a cgroup"), "%s",
                       got);
    free(got);
}

/* Chowns every directory of CG, and the files in them, to ROOTLESS_UID: what a service
 * manager's delegation does. */
static void delegate(struct sbx_cgroup *cg)
{
    static const char *const ctrls[] = { "memory", "pids", "cpu", "cpuacct" };
    for (size_t i = 0; i < 4; i++) {
        const char *dir = sbx_cgroup_dir(cg, ctrls[i]);
        if (!dir)
            continue;
        char cmd[1200];
        snprintf(cmd, sizeof(cmd), "chown -R %u:%u '%s'", ROOTLESS_UID, ROOTLESS_UID, dir);
        cr_assert_eq(system(cmd), 0, "%s", cmd);
    }
}

Test(rootless, a_delegated_cgroup_enforces_the_limits)
{
    struct sbx_cgroup_limits none = { 0 };
    struct sbx_cgroup *cg = NULL;
    char name[48];
    snprintf(name, sizeof(name), "rootless-test-%d", (int)getpid());
    cr_assert_eq(sbx_cgroup_new(&cg, name, &none), 0, "%s", cru_err_msg());
    delegate(cg);
    struct sbx_opts o = SBX_OPTS_INIT;
    o.memory_bytes = 64u << 20;
    char *got = rootless_run(rootless_alloc, &o, ROOTLESS_INFO, cg);
    cr_expect_not_null(strstr(got, "\"memory\":\"cgroup\""), "a delegated cgroup is used: %s", got);
    cr_expect_null(strstr(got, "HOLE"), "%s", got);
    cr_expect_not_null(strstr(got, "[oom]"), "the cgroup reports the OOM: %s", got);
    free(got);
    sbx_cgroup_free(cg);
}

/* ---- checker sandboxes: two identities ---- */

/* A checker sandbox over a workspace holding one file, with a folder of the checker's own
 * bound at /hidden: made the checker's (its owner, 0700) once the sandbox's ids are known, as
 * the reward does it. */
static struct sbx *checker_sandbox(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/crucible-checker-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(chmod(dir, 0711), 0);
    char ws[128], hidden[128], path[160];
    snprintf(ws, sizeof(ws), "%s/ws", dir);
    snprintf(hidden, sizeof(hidden), "%s/hidden", dir);
    cr_assert_eq(mkdir(ws, 0755), 0);
    cr_assert_eq(mkdir(hidden, 0755), 0);
    snprintf(path, sizeof(path), "%s/f", ws);
    write_file(path, "artifact\n");
    snprintf(path, sizeof(path), "%s/expected", hidden);
    write_file(path, "the answer\n");
    struct sbx_bind bind = { hidden, "/hidden", true };
    struct sbx_opts o = SBX_OPTS_INIT;
    o.workspace = ws;
    o.binds = &bind;
    o.n_binds = 1;
    o.checker = true;
    struct sbx *sb = sandbox_new(&o);
    cr_assert_eq(chown(hidden, sbx_root_uid(sb), sbx_root_gid(sb)), 0);
    cr_assert_eq(chmod(hidden, 0700), 0);
    return sb;
}

static void checker_down(struct sbx *sb, const char *dir)
{
    sbx_free(sb);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

#define AS_ARTIFACT "setpriv --reuid=1000 --regid=1000 --clear-groups -- "

Test(checker, two_identities, .init = fixtures_up, .fini = fixtures_down)
{
    char dir[64];
    struct sbx *sb = checker_sandbox(dir, sizeof(dir));
    struct sbx_result r;
    sandbox_run(sb,
                "echo checker $(id -u) $(stat -c %u:%g /workspace/f /workspace) "
                "$(grep CapEff /proc/self/status | cut -f2) $(cat /hidden/expected); " AS_ARTIFACT
                "sh -c 'echo artifact $(id -u):$(id -g) "
                "$(grep CapEff /proc/self/status | cut -f2); "
                "echo more >> /workspace/f && touch /workspace/new && echo wrote; "
                "cat /hidden/expected 2>/dev/null || echo hidden-denied; "
                "setpriv --reuid=0 true 2>/dev/null || echo no-way-back'",
                &r);
    cr_assert_eq(r.exit_code, 0, "%s", cru_buf_cstr(&r.err));
    /* CAP_CHOWN 0, DAC_OVERRIDE 1, DAC_READ_SEARCH 2, FOWNER 3, KILL 5, SETGID 6, SETUID 7 */
    cr_expect_str_eq(cru_buf_cstr(&r.out),
                     "checker 0 1000:1000 1000:1000 00000000000000ef the answer\n"
                     "artifact 1000:1000 0000000000000000\n"
                     "wrote\n"
                     "hidden-denied\n"
                     "no-way-back\n");
    sbx_result_free(&r);
    checker_down(sb, dir);
}

/* The artifact cannot write the memory of the checker that started it, as a script under
 * test could with a same-uid parent. Positive control: a checker child can. */
Test(checker, artifact_cannot_write_the_checkers_memory, .init = fixtures_up, .fini = fixtures_down)
{
    char dir[64];
    struct sbx *sb = checker_sandbox(dir, sizeof(dir));
    struct sbx_result r;
    static const char probe[] = "sh -c 'if (exec 3>/proc/$PPID/mem) 2>/dev/null; then echo open; "
                                "else echo denied; fi'";
    char script[512];
    snprintf(script, sizeof(script), "%s; " AS_ARTIFACT "%s; kill -0 1 && echo alive", probe,
             probe);
    sandbox_run(sb, script, &r);
    cr_expect_str_eq(cru_buf_cstr(&r.out), "open\ndenied\nalive\n");
    sbx_result_free(&r);
    checker_down(sb, dir);
}

Test(checker, needs_a_workspace)
{
    struct sbx *sb = NULL;
    struct sbx_opts o = SBX_OPTS_INIT;
    o.checker = true;
    cr_expect_lt(sbx_new(&sb, &o), 0);
    cr_expect(strstr(cru_err_msg(), "workspace") != NULL, "%s", cru_err_msg());
}
