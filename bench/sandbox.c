/* bench/sandbox: what a sandbox costs, each measurement against its peer in the same run.
 *
 * Cold start (sbx_new with default options and an empty workspace, one sbx_exec of /bin/true,
 * sbx_free) against bubblewrap running /bin/true with the same host system folders; warm exec
 * (one sbx_exec of /bin/true in a live sandbox) against a bare posix_spawn and waitpid of
 * /bin/true on the host, the floor; and 100 live sandboxes (creation rate, memory per sandbox,
 * one command in each, destruction, state left behind) against 100 live bubblewrap sandboxes.
 * Then the crucible binary as a whole process, which is what a user who runs it per command
 * pays: `crucible exec -- /bin/true` against the same bwrap command line, and `crucible
 * version` against /bin/true, each from posix_spawn until reaped, wall time and the CPU time
 * that wait4 reports for it and for the processes it made (bwrap's init included).
 * Ours and the peer alternate (ABAB) so that drift of the machine affects both; the table gives
 * medians, p10 and p90, and the ratio ours/peer (lower is better). Both sides are timed until
 * their sandbox is gone: sbx_free waits for the sandbox's init, and the peer waits for bwrap's
 * init too, which outlives bwrap itself. It measures whatever the library does in this build,
 * and says which layers (seccomp filter, cgroup) were in effect.
 *
 * It prints the table on stdout and, with --json, one JSON line after it; it writes no file.
 * It needs root, as sandboxes do. Errors: crucible's message on stderr, exit status 3.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"
#include "bench/bench.h"
#include "sandbox/sandbox.h"

#define STATE_ROOT      "/run/crucible" /* the library's default state root */
#define WARMUP          5               /* untimed iterations of each side before a series */
#define MAX_ITERS       100000
#define MAX_SESSIONS    1000 /* each live sandbox holds 3 descriptors; slots are 4096 */
#define MAX_ROUNDS      100
#define MAX_PROCS       65536 /* processes scanned in /proc when summing a peer's Pss */
#define SPAWN_WAIT_MS   10000 /* how long a peer sandbox may take to report ready */
#define SETTLE_MS       300   /* pause before a memory baseline: deferred frees land */
#define PROC_FILE_BYTES (1u << 20)

static const char *const ns_names[] = { "user", "mnt", "pid", "net", "uts", "ipc", "cgroup", NULL };

struct bench_args {
    uint64_t iters;
    uint64_t sessions;
    uint64_t rounds;
    const char *crucible; /* the binary timed as a whole process */
    bool json;
};

/* --checker DIR: every sandbox of ours is a reward's checker sandbox over the workspace DIR
 * (two identities, the workspace idmapped to the artifact), as each check now gets one. */
static const char *checker_ws;

struct series {
    uint64_t *ns;
    size_t n;
};

struct stats {
    double median_ms, p10_ms, p90_ms;
};

/* One round of N live sandboxes, ours or the peer's. */
struct sessions {
    double create_ms;      /* all N created one after the other */
    double mem_avail_kib;  /* MemAvailable drop, per sandbox */
    double pss_kib;        /* Pss of the sandbox's processes, per sandbox */
    double procs;          /* processes per sandbox counted in pss_kib */
    double exec_ms;        /* ours: one /bin/true in each */
    double free_ms;        /* destroying all N */
    long state_dirs_live;  /* ours: sbx-* folders in the state root while all are alive */
    long state_dirs_after; /* ours: sbx-* folders left after all were destroyed */
};

/* What each side was seen to do: filled by probes, printed for context. */
struct layers {
    char ours_ns[128];
    long ours_mounts;
    bool seccomp;
    bool no_new_privs;
    bool caps_dropped;
    bool cgroup;
    long peer_mounts;
};

/* ---- small helpers ---- */

static double ns_to_ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentiles of the series (sorted in place). */
static struct stats series_stats(struct series *s)
{
    qsort(s->ns, s->n, sizeof(*s->ns), cmp_u64);
    size_t last = s->n - 1;
    return (struct stats){
        .median_ms = ns_to_ms(s->ns[(size_t)((double)last * 0.5 + 0.5)]),
        .p10_ms = ns_to_ms(s->ns[(size_t)((double)last * 0.1 + 0.5)]),
        .p90_ms = ns_to_ms(s->ns[(size_t)((double)last * 0.9 + 0.5)]),
    };
}

/* The number after KEY (e.g. "MemAvailable:") in a "KEY  VALUE kB" file, in kB. */
static int proc_field_kb(const char *path, const char *key, long *out)
{
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cru_file_read(path, PROC_FILE_BYTES, &b);
    if (rc < 0)
        return rc;
    const char *p = b.data ? strstr(b.data, key) : NULL;
    if (!p || sscanf(p + strlen(key), "%ld", out) != 1)
        rc = cru_err_set(CRU_EPARSE, "%s has no %s line", path, key);
    cru_buf_free(&b);
    return rc;
}

static int mem_available_kb(long *out)
{
    return proc_field_kb("/proc/meminfo", "MemAvailable:", out);
}

static int pss_kb(pid_t pid, long *out)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
    return proc_field_kb(path, "Pss:", out);
}

/* sbx-N folders in the state root (the lock files next to them, sbx-N.lock, are not state). */
static long count_state_dirs(void)
{
    DIR *d = opendir(STATE_ROOT);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!cru_str_starts_with(e->d_name, "sbx-") || strchr(e->d_name, '.'))
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
            n++;
    }
    closedir(d);
    return n;
}

static long count_lines(const struct cru_buf *b)
{
    long n = 0;
    for (size_t i = 0; i < b->len; i++)
        n += b->data[i] == '\n';
    return n;
}

/* ---- the peer: bubblewrap, and bare processes ---- */

static void reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

static int spawn_wait(const struct argv_list *a)
{
    pid_t pid;
    int rc = spawn(&pid, a, NULL);
    return rc < 0 ? rc : wait_ok(pid, a->v[0]);
}

/* bwrap as bench/bench.h builds it, reporting the pid of the sandbox's init on fd 3. */
static int bwrap_info_argv(struct argv_list *a, const char *const *cmd)
{
    static const char *const info[] = { "--info-fd", "3", NULL };
    return bwrap_argv(a, info, cmd);
}

/* Reads FD into B until it holds MAX bytes, or the byte STOP (if >= 0), or end of file,
 * waiting at most SPAWN_WAIT_MS in all. */
static int read_until(int fd, struct cru_buf *b, size_t max, int stop)
{
    uint64_t deadline = cru_deadline_ms(SPAWN_WAIT_MS);
    char chunk[4096];
    while (b->len < max && !(stop >= 0 && b->data && memchr(b->data, stop, b->len))) {
        struct pollfd p = { fd, POLLIN, 0 };
        uint64_t left = cru_deadline_left_ms(deadline);
        int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cru_err_sys("waiting for bwrap");
        if (n == 0)
            return cru_err_set(CRU_ETIMEDOUT, "bwrap did not answer within %d ms", SPAWN_WAIT_MS);
        size_t want = max - b->len < sizeof(chunk) ? max - b->len : sizeof(chunk);
        size_t got;
        int rc = cru_read_some(fd, chunk, want, &got, "bwrap's output");
        if (rc < 0)
            return rc;
        if (got == 0)
            break;
        if ((rc = cru_buf_append(b, chunk, got)) < 0)
            return rc;
    }
    return 0;
}

/* One bwrap process and the sandbox it made. */
struct bwrap_run {
    pid_t outer; /* bwrap, our child */
    pid_t inner; /* the sandbox's init (bwrap again, pid 1 inside); -1 until read */
    int info_fd; /* read end of its --info-fd */
    int out_fd;  /* read end of its stdout, or -1 when inherited */
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int bwrap_start(struct bwrap_run *b, const struct argv_list *argv, bool capture)
{
    int info[2] = { -1, -1 }, out[2] = { -1, -1 };
    int rc = 0;
    *b = (struct bwrap_run){ -1, -1, -1, -1 };
    if (pipe2(info, O_CLOEXEC) < 0 || (capture && pipe2(out, O_CLOEXEC) < 0))
        rc = cru_err_sys("cannot create a pipe");
    if (rc == 0) {
        int fds[4] = { -1, out[1], -1, info[1] };
        rc = spawn(&b->outer, argv, fds);
    }
    close_fd(&info[1]);
    close_fd(&out[1]);
    b->info_fd = info[0];
    b->out_fd = out[0];
    return rc;
}

/* The pid of the sandbox's init, from bwrap's info: {"child-pid": N, ...}. */
static int bwrap_inner(struct bwrap_run *b)
{
    struct cru_buf info = CRU_BUF_INIT;
    int rc = read_until(b->info_fd, &info, 4096, '}');
    const char *p = rc == 0 && info.data ? strstr(info.data, "\"child-pid\":") : NULL;
    if (rc == 0 && (!p || sscanf(p + 12, "%d", &b->inner) != 1 || b->inner <= 0))
        rc = cru_err_set(CRU_EPARSE, "bwrap reported no child pid");
    cru_buf_free(&info);
    return rc;
}

/* Waits for bwrap (after killing it when KILL), then for the sandbox's init: bwrap exits as
 * soon as it knows the command's status, while its init is still tearing the namespaces
 * down, and sbx_free is timed until its own init is gone. The init is our child by then (we
 * are a subreaper), unless bwrap reaped it itself. */
static int bwrap_end(struct bwrap_run *b, bool kill_it)
{
    int rc = 0;
    if (b->outer > 0) {
        if (kill_it) {
            kill(b->outer, SIGKILL);
            reap(b->outer);
        } else {
            rc = wait_ok(b->outer, "bwrap");
        }
        int irc = b->inner > 0 ? 0 : bwrap_inner(b);
        if (b->inner > 0)
            reap(b->inner);
        if (rc == 0)
            rc = irc;
    }
    close_fd(&b->info_fd);
    close_fd(&b->out_fd);
    b->outer = b->inner = -1;
    return rc;
}

/* Runs CMD under bwrap to completion and returns its stdout. */
static int bwrap_capture(const char *const *cmd, struct cru_buf *out)
{
    struct argv_list a = { 0 };
    struct bwrap_run b;
    int rc = bwrap_info_argv(&a, cmd);
    if (rc == 0 && (rc = bwrap_start(&b, &a, true)) == 0) {
        rc = read_until(b.out_fd, out, PROC_FILE_BYTES, -1);
        int erc = bwrap_end(&b, rc < 0);
        if (rc == 0)
            rc = erc;
    }
    argv_free(&a);
    return rc;
}

static int peer_cold(uint64_t *ns, const struct argv_list *bwrap_true)
{
    struct bwrap_run b;
    uint64_t t0 = cru_now_ns();
    int rc = bwrap_start(&b, bwrap_true, false);
    int erc = bwrap_end(&b, rc < 0);
    *ns = cru_now_ns() - t0;
    if (rc == 0)
        rc = erc;
    return rc < 0 ? cru_err_wrap(rc, "bwrap cold start") : 0;
}

static int peer_warm(uint64_t *ns, const struct argv_list *bare_true)
{
    uint64_t t0 = cru_now_ns();
    int rc = spawn_wait(bare_true);
    *ns = cru_now_ns() - t0;
    return rc < 0 ? cru_err_wrap(rc, "bare fork+exec") : 0;
}

/* ---- ours ---- */

/* One command in SB; its output is captured (the default), and exit status 0 is required. */
static int ours_run(struct sbx *sb, const char *const *argv, struct cru_buf *out)
{
    struct sbx_cmd cmd = SBX_CMD_INIT;
    struct sbx_result res;
    cmd.argv = argv;
    int rc = sbx_exec(sb, &cmd, &res);
    if (rc < 0)
        return cru_err_wrap(rc, "running %s in the sandbox", argv[0]);
    if (res.exit_code != 0) {
        rc = cru_err_set(CRU_EIO, "%s in the sandbox exited with status %d: %.*s", argv[0],
                         res.exit_code, (int)(res.err.len < 400 ? res.err.len : 400),
                         res.err.data ? res.err.data : "");
    } else if (out) {
        rc = cru_buf_append(out, res.out.data ? res.out.data : "", res.out.len);
    }
    sbx_result_free(&res);
    return rc;
}

static const char *const true_argv[] = { "/bin/true", NULL };

static int ours_new(struct sbx **out)
{
    struct sbx_opts opts = SBX_OPTS_INIT;
    opts.workspace = checker_ws;
    opts.checker = checker_ws != NULL;
    return sbx_new(out, &opts);
}

static int ours_cold(uint64_t *ns)
{
    struct sbx *sb = NULL;
    uint64_t t0 = cru_now_ns();
    int rc = ours_new(&sb);
    if (rc == 0)
        rc = ours_run(sb, true_argv, NULL);
    sbx_free(sb);
    *ns = cru_now_ns() - t0;
    return rc < 0 ? cru_err_wrap(rc, "cold start") : 0;
}

static int ours_warm(uint64_t *ns, struct sbx *sb)
{
    uint64_t t0 = cru_now_ns();
    int rc = ours_run(sb, true_argv, NULL);
    *ns = cru_now_ns() - t0;
    return rc < 0 ? cru_err_wrap(rc, "warm exec") : 0;
}

/* ---- what each side does ---- */

static bool status_flag(const char *status, const char *key, const char *off)
{
    const char *p = strstr(status, key);
    if (!p)
        return false;
    p += strlen(key);
    p += strspn(p, " \t");
    return strncmp(p, off, strlen(off)) != 0;
}

/* Reads the namespaces, mounts, filter, capabilities and cgroup of a live sandbox of ours,
 * and the mounts of a bwrap sandbox: what the numbers below were measured with. */
static int probe_layers(struct sbx *sb, bool have_peer, struct layers *l)
{
    static const char *const status_argv[] = { "/bin/cat", "/proc/self/status", NULL };
    static const char *const mounts_argv[] = { "/bin/cat", "/proc/self/mountinfo", NULL };
    struct cru_buf st = CRU_BUF_INIT, mi = CRU_BUF_INIT, ours_cg = CRU_BUF_INIT,
                   host_cg = CRU_BUF_INIT, peer_mi = CRU_BUF_INIT;
    pid_t init = sbx_init_pid(sb);
    size_t len = 0;
    char path[64];
    int rc;

    if ((rc = ours_run(sb, status_argv, &st)) < 0 || (rc = ours_run(sb, mounts_argv, &mi)) < 0)
        goto done;
    l->seccomp = status_flag(st.data ? st.data : "", "Seccomp:", "0");
    l->no_new_privs = status_flag(st.data ? st.data : "", "NoNewPrivs:", "0");
    l->caps_dropped = !status_flag(st.data ? st.data : "", "CapEff:", "0000000000000000");
    l->ours_mounts = count_lines(&mi);

    l->ours_ns[0] = '\0';
    for (size_t i = 0; ns_names[i]; i++) {
        char mine[64] = "", theirs[64] = "";
        snprintf(path, sizeof(path), "/proc/self/ns/%s", ns_names[i]);
        ssize_t a = readlink(path, mine, sizeof(mine) - 1);
        snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)init, ns_names[i]);
        ssize_t b = readlink(path, theirs, sizeof(theirs) - 1);
        if (a < 0 || b < 0) {
            rc = cru_err_sys("cannot read %s", path);
            goto done;
        }
        if (strcmp(mine, theirs) != 0)
            len += (size_t)snprintf(l->ours_ns + len, sizeof(l->ours_ns) - len, "%s%s",
                                    len ? " " : "", ns_names[i]);
    }
    /* A cgroup of its own shows as a different line for the init than for us. */
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)init);
    if ((rc = cru_file_read(path, PROC_FILE_BYTES, &ours_cg)) < 0 ||
        (rc = cru_file_read("/proc/self/cgroup", PROC_FILE_BYTES, &host_cg)) < 0)
        goto done;
    l->cgroup = ours_cg.len != host_cg.len ||
                (ours_cg.len && memcmp(ours_cg.data, host_cg.data, ours_cg.len) != 0);

    l->peer_mounts = -1;
    if (have_peer) {
        if ((rc = bwrap_capture(mounts_argv, &peer_mi)) < 0)
            goto done;
        l->peer_mounts = count_lines(&peer_mi);
    }
done:
    cru_buf_free(&st);
    cru_buf_free(&mi);
    cru_buf_free(&ours_cg);
    cru_buf_free(&host_cg);
    cru_buf_free(&peer_mi);
    return rc < 0 ? cru_err_wrap(rc, "probing what the sandbox does") : 0;
}

/* ---- (a) and (b): interleaved series ---- */

enum series_kind { SERIES_COLD, SERIES_WARM };

struct series_ctx {
    enum series_kind kind;
    struct sbx *sb;              /* warm: the live sandbox */
    struct argv_list *peer_argv; /* bwrap /bin/true, or bare /bin/true; NULL: no peer */
};

static int run_one(const struct series_ctx *c, uint64_t *ours, uint64_t *peer)
{
    int rc = c->kind == SERIES_COLD ? ours_cold(ours) : ours_warm(ours, c->sb);
    if (rc < 0 || !c->peer_argv)
        return rc;
    return c->kind == SERIES_COLD ? peer_cold(peer, c->peer_argv) : peer_warm(peer, c->peer_argv);
}

/* WARMUP untimed pairs, then N timed pairs, ours first in each pair. */
static int run_series(const struct series_ctx *c, size_t n, struct series *ours,
                      struct series *peer)
{
    uint64_t scratch_ours, scratch_peer;
    for (int i = 0; i < WARMUP; i++) {
        int rc = run_one(c, &scratch_ours, &scratch_peer);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = run_one(c, &ours->ns[i], &peer->ns[i]);
        if (rc < 0)
            return rc;
    }
    ours->n = n;
    peer->n = c->peer_argv ? n : 0;
    return 0;
}

/* ---- (c): many live sandboxes ---- */

static void settle(void)
{
    cru_sleep_ms(SETTLE_MS);
}

static int ours_sessions(size_t n, struct sessions *s)
{
    struct sbx **sbs = calloc(n, sizeof(*sbs));
    long before, after;
    size_t made = 0;
    int rc;

    if (!sbs)
        return cru_err_set(CRU_ENOMEM, "out of memory for %zu sandboxes", n);
    settle();
    if ((rc = mem_available_kb(&before)) < 0)
        goto done;
    uint64_t t0 = cru_now_ns();
    for (; made < n; made++) {
        if ((rc = ours_new(&sbs[made])) < 0) {
            cru_err_wrap(rc, "sandbox %zu of %zu", made + 1, n);
            goto done;
        }
    }
    s->create_ms = ns_to_ms(cru_now_ns() - t0);
    if ((rc = mem_available_kb(&after)) < 0)
        goto done;
    s->mem_avail_kib = (double)(before - after) / (double)n;
    long pss_sum = 0;
    for (size_t i = 0; i < n; i++) {
        long kb;
        if ((rc = pss_kb(sbx_init_pid(sbs[i]), &kb)) < 0)
            goto done;
        pss_sum += kb;
    }
    s->pss_kib = (double)pss_sum / (double)n;
    s->procs = 1; /* the init: a sandbox with no command running has no other process */
    s->state_dirs_live = count_state_dirs();

    t0 = cru_now_ns();
    for (size_t i = 0; i < n; i++) {
        if ((rc = ours_run(sbs[i], true_argv, NULL)) < 0) {
            cru_err_wrap(rc, "sandbox %zu of %zu", i + 1, n);
            goto done;
        }
    }
    s->exec_ms = ns_to_ms(cru_now_ns() - t0);
done:
    t0 = cru_now_ns();
    for (size_t i = 0; i < made; i++)
        sbx_free(sbs[i]);
    s->free_ms = ns_to_ms(cru_now_ns() - t0);
    s->state_dirs_after = count_state_dirs();
    free(sbs);
    return rc < 0 ? cru_err_wrap(rc, "%zu live sandboxes", n) : 0;
}

struct proc_entry {
    pid_t pid, ppid;
};

/* Every process's parent, from /proc/PID/stat (the field after the last ')'). */
static int proc_table(struct proc_entry **out, size_t *n_out)
{
    DIR *d = opendir("/proc");
    if (!d)
        return cru_err_sys("cannot list /proc");
    struct proc_entry *t = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[300], text[1024];
        uint64_t pid;
        if (cru_parse_u64(e->d_name, 1, INT32_MAX, &pid) < 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue; /* it ended meanwhile */
        ssize_t len = read(fd, text, sizeof(text) - 1);
        close(fd);
        int ppid;
        const char *paren = len > 0 ? (text[len] = '\0', strrchr(text, ')')) : NULL;
        if (!paren || sscanf(paren + 1, " %*c %d", &ppid) != 1)
            continue;
        if (n == MAX_PROCS) {
            rc = cru_err_set(CRU_ELIMIT, "more than %d processes in /proc", MAX_PROCS);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            struct proc_entry *grown = realloc(t, cap * sizeof(*t));
            if (!grown) {
                rc = cru_err_set(CRU_ENOMEM, "out of memory listing processes");
                break;
            }
            t = grown;
        }
        t[n++] = (struct proc_entry){ (pid_t)pid, (pid_t)ppid };
    }
    closedir(d);
    if (rc < 0) {
        free(t);
        return rc;
    }
    *out = t;
    *n_out = n;
    return 0;
}

/* Sums the Pss of ROOT and all its descendants, and counts them. */
static long tree_pss_kb(const struct proc_entry *t, size_t n, pid_t root, long *procs)
{
    long kb = 0, sum = 0;
    if (pss_kb(root, &kb) == 0)
        sum += kb;
    ++*procs;
    for (size_t i = 0; i < n; i++) {
        if (t[i].ppid == root)
            sum += tree_pss_kb(t, n, t[i].pid, procs);
    }
    return sum;
}

/* Starts bwrap sandboxes one after the other, each ready when its command has started (it
 * says so, then becomes `sleep 60`). */
static int peer_start_all(struct bwrap_run *runs, size_t n, size_t *made)
{
    static const char *const sleep_cmd[] = { "/bin/sh", "-c", "echo ready && exec sleep 60", NULL };
    struct argv_list a = { 0 };
    int rc = bwrap_info_argv(&a, sleep_cmd);
    for (; rc == 0 && *made < n; ++*made) {
        struct bwrap_run *b = &runs[*made];
        struct cru_buf ready = CRU_BUF_INIT;
        if ((rc = bwrap_start(b, &a, true)) < 0) {
            bwrap_end(b, true);
            break;
        }
        rc = read_until(b->out_fd, &ready, 6, -1);
        if (rc == 0 && ready.len != 6)
            rc = cru_err_set(CRU_EIO, "bwrap ended before its command started");
        if (rc == 0)
            rc = bwrap_inner(b);
        close_fd(&b->out_fd);
        close_fd(&b->info_fd);
        cru_buf_free(&ready);
        if (rc < 0)
            ++*made; /* started: it must be ended */
    }
    argv_free(&a);
    return rc;
}

static int peer_sessions(size_t n, struct sessions *s)
{
    struct bwrap_run *runs = calloc(n, sizeof(*runs));
    struct proc_entry *table = NULL;
    size_t n_table = 0, made = 0;
    long before, after, pss = 0, procs = 0;
    int rc;

    if (!runs)
        return cru_err_set(CRU_ENOMEM, "out of memory for %zu bwrap sandboxes", n);
    settle();
    if ((rc = mem_available_kb(&before)) < 0)
        goto done;
    uint64_t t0 = cru_now_ns();
    if ((rc = peer_start_all(runs, n, &made)) < 0)
        goto done;
    s->create_ms = ns_to_ms(cru_now_ns() - t0);
    if ((rc = mem_available_kb(&after)) < 0 || (rc = proc_table(&table, &n_table)) < 0)
        goto done;
    for (size_t i = 0; i < n; i++)
        pss += tree_pss_kb(table, n_table, runs[i].outer, &procs);
    s->mem_avail_kib = (double)(before - after) / (double)n;
    s->pss_kib = (double)pss / (double)n;
    s->procs = (double)procs / (double)n;
done:
    t0 = cru_now_ns();
    /* One after the other, as sbx_free destroys ours: bwrap is killed, its init dies with it
     * (--die-with-parent), and the command with the init. */
    for (size_t i = 0; i < made; i++)
        bwrap_end(&runs[i], true);
    s->free_ms = ns_to_ms(cru_now_ns() - t0);
    free(table);
    free(runs);
    return rc < 0 ? cru_err_wrap(rc, "%zu live bwrap sandboxes", n) : 0;
}

/* Rounds alternate ours and the peer's; each figure is the median over rounds. */
static int run_sessions(size_t n, size_t rounds, bool have_peer, struct sessions *ours,
                        struct sessions *peer)
{
    struct sessions *o = calloc(rounds, sizeof(*o)), *p = calloc(rounds, sizeof(*p));
    double *v = calloc(rounds, sizeof(*v));
    int rc = 0;
    if (!o || !p || !v) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory for %zu rounds", rounds);
        goto done;
    }
    for (size_t r = 0; r < rounds; r++) {
        if ((rc = ours_sessions(n, &o[r])) < 0)
            goto done;
        if (have_peer && (rc = peer_sessions(n, &p[r])) < 0)
            goto done;
    }
#define MEDIAN_OF(arr, field, dst)                                                                 \
    do {                                                                                           \
        for (size_t i = 0; i < rounds; i++)                                                        \
            v[i] = (double)(arr)[i].field;                                                         \
        (dst)->field = bench_median(v, rounds);                                                    \
    } while (0)
    MEDIAN_OF(o, create_ms, ours);
    MEDIAN_OF(o, mem_avail_kib, ours);
    MEDIAN_OF(o, pss_kib, ours);
    MEDIAN_OF(o, procs, ours);
    MEDIAN_OF(o, exec_ms, ours);
    MEDIAN_OF(o, free_ms, ours);
    MEDIAN_OF(p, create_ms, peer);
    MEDIAN_OF(p, mem_avail_kib, peer);
    MEDIAN_OF(p, pss_kib, peer);
    MEDIAN_OF(p, procs, peer);
    MEDIAN_OF(p, free_ms, peer);
#undef MEDIAN_OF
    /* State left behind is not averaged away: the worst round counts. */
    for (size_t r = 0; r < rounds; r++) {
        if (r == 0 || o[r].state_dirs_live < ours->state_dirs_live)
            ours->state_dirs_live = o[r].state_dirs_live;
        if (r == 0 || o[r].state_dirs_after > ours->state_dirs_after)
            ours->state_dirs_after = o[r].state_dirs_after;
    }
done:
    free(o);
    free(p);
    free(v);
    return rc;
}

/* ---- (d): whole processes ---- */

/* What one process cost, from its start until it and every process it made were reaped: wall
 * time, and CPU time (user and system) from wait4 of it and of the processes that outlive it. */
struct proc_cost {
    uint64_t wall_ns, cpu_ns;
};

static uint64_t rusage_ns(const struct rusage *ru)
{
    return ((uint64_t)ru->ru_utime.tv_sec + (uint64_t)ru->ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru->ru_utime.tv_usec + (uint64_t)ru->ru_stime.tv_usec) * 1000u;
}

/* Waits for PID, adds its CPU time (its own and its reaped children's) to *CPU_NS, and
 * requires exit status 0 when WHAT is not NULL. */
static int wait_cpu(pid_t pid, const char *what, uint64_t *cpu_ns)
{
    struct rusage ru;
    int status;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR)
            return cru_err_sys("waiting for %s", what ? what : "a process");
    }
    *cpu_ns += rusage_ns(&ru);
    if (!what || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
        return 0;
    if (WIFSIGNALED(status))
        return cru_err_set(CRU_EIO, "%s was killed by signal %d", what, WTERMSIG(status));
    return cru_err_set(CRU_EIO, "%s exited with status %d", what, WEXITSTATUS(status));
}

/* ARGV run to its end as one process, its output to /dev/null (NULL_FD): crucible, whose
 * sandbox's init is its own child and is reaped by it, or /bin/true. */
static int proc_run(const struct argv_list *argv, int null_fd, struct proc_cost *c)
{
    const int fds[4] = { -1, null_fd, -1, -1 };
    pid_t pid;
    *c = (struct proc_cost){ 0, 0 };
    uint64_t t0 = cru_now_ns();
    int rc = spawn(&pid, argv, fds);
    if (rc == 0)
        rc = wait_cpu(pid, argv->v[0], &c->cpu_ns);
    c->wall_ns = cru_now_ns() - t0;
    return rc;
}

/* bwrap run to its end, as the cold start times it: bwrap, then its init, which outlives it
 * and comes to us (we are a subreaper); the init has reaped the command, so its CPU time is
 * in the init's. The init's status is not checked: --die-with-parent may kill it when bwrap
 * exits first. */
static int proc_run_bwrap(const struct argv_list *argv, struct proc_cost *c)
{
    struct bwrap_run b;
    *c = (struct proc_cost){ 0, 0 };
    uint64_t t0 = cru_now_ns();
    int rc = bwrap_start(&b, argv, false);
    if (rc == 0) {
        rc = wait_cpu(b.outer, "bwrap", &c->cpu_ns);
        b.outer = -1;
        if (rc == 0 && (rc = bwrap_inner(&b)) == 0)
            rc = wait_cpu(b.inner, NULL, &c->cpu_ns);
        b.inner = -1;
    }
    c->wall_ns = cru_now_ns() - t0;
    bwrap_end(&b, true);
    return rc;
}

struct proc_series {
    struct series wall, cpu;
};

/* WARMUP untimed pairs, then N pairs, ours first in each: OURS against PEER (bwrap when
 * PEER_BWRAP, else a plain process; NULL: ours alone). */
static int run_proc_series(const struct argv_list *ours, const struct argv_list *peer,
                           bool peer_bwrap, size_t n, struct proc_series *o, struct proc_series *p)
{
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd < 0)
        return cru_err_sys("cannot open /dev/null");
    for (size_t i = 0; i < WARMUP + n; i++) {
        struct proc_cost co, cp = { 0, 0 };
        int rc = proc_run(ours, null_fd, &co);
        if (rc == 0 && peer)
            rc = peer_bwrap ? proc_run_bwrap(peer, &cp) : proc_run(peer, null_fd, &cp);
        if (rc < 0) {
            close(null_fd);
            return rc;
        }
        if (i < WARMUP)
            continue;
        o->wall.ns[i - WARMUP] = co.wall_ns;
        o->cpu.ns[i - WARMUP] = co.cpu_ns;
        p->wall.ns[i - WARMUP] = cp.wall_ns;
        p->cpu.ns[i - WARMUP] = cp.cpu_ns;
    }
    close(null_fd);
    o->wall.n = o->cpu.n = p->wall.n = p->cpu.n = n;
    return 0;
}

/* ---- report ---- */

struct report {
    const struct bench_args *args;
    char kernel[128];
    long cpus;
    double load; /* 1-minute load average at start: other work on the machine skews timings */
    bool have_peer;
    bool have_bin; /* args->crucible is there to be timed as a process */
    struct layers layers;
    long state_dirs_before;
    struct stats cold_ours, cold_peer, warm_ours, warm_peer;
    /* Whole processes: `crucible exec -- /bin/true` against bwrap, `crucible version` against
     * /bin/true; wall and CPU time of each. */
    struct stats exec_ours, exec_peer, exec_ours_cpu, exec_peer_cpu;
    struct stats version_ours, version_peer, version_ours_cpu, version_peer_cpu;
    struct sessions ses_ours, ses_peer;
};

static void print_time_row(const char *name, const struct stats *o, const struct stats *p,
                           const char *peer_name, bool have_peer)
{
    char ours[64], peer[64], ratio[32];
    snprintf(ours, sizeof(ours), "%.3f ms", o->median_ms);
    if (have_peer) {
        snprintf(peer, sizeof(peer), "%.3f ms (%s)", p->median_ms, peer_name);
        snprintf(ratio, sizeof(ratio), "%.2f", o->median_ms / p->median_ms);
    } else {
        snprintf(peer, sizeof(peer), "skipped");
        snprintf(ratio, sizeof(ratio), "-");
    }
    printf("%-16s%-26s%-30s%s\n", name, ours, peer, ratio);
    snprintf(ours, sizeof(ours), "%.3f / %.3f", o->p10_ms, o->p90_ms);
    if (have_peer)
        snprintf(peer, sizeof(peer), "%.3f / %.3f", p->p10_ms, p->p90_ms);
    printf("%-16s%-26s%s\n", "  p10 / p90 ms", ours, have_peer ? peer : "");
}

/* A process row: wall time as print_time_row prints it, then the CPU time's medians. */
static void print_proc_rows(const char *name, const struct stats *o, const struct stats *p,
                            const struct stats *o_cpu, const struct stats *p_cpu,
                            const char *peer_name, bool have_peer)
{
    char ours[64], peer[64], ratio[32];
    print_time_row(name, o, p, peer_name, have_peer);
    snprintf(ours, sizeof(ours), "%.3f", o_cpu->median_ms);
    snprintf(peer, sizeof(peer), "%.3f", p_cpu->median_ms);
    snprintf(ratio, sizeof(ratio), "%.2f", o_cpu->median_ms / p_cpu->median_ms);
    printf("%-16s%-26s%-30s%s\n", "  CPU ms", ours, have_peer ? peer : "", have_peer ? ratio : "");
}

static void print_process(const struct report *r)
{
    if (!r->have_bin) {
        printf("%-16s%s: not found (build it with make, or pass --crucible PATH): skipped\n",
               "process", r->args->crucible);
        return;
    }
    print_proc_rows("exec process", &r->exec_ours, &r->exec_peer, &r->exec_ours_cpu,
                    &r->exec_peer_cpu, "bwrap", r->have_peer);
    print_proc_rows("version process", &r->version_ours, &r->version_peer, &r->version_ours_cpu,
                    &r->version_peer_cpu, "/bin/true", true);
    if (r->have_peer)
        printf("%-16s%-59s%s\n", "  target", "exec process no slower than bwrap (wall)",
               r->exec_ours.median_ms <= r->exec_peer.median_ms ? "met" : "NOT met");
    printf("%-16s%-59s%s\n", "  target", "version within 2 ms of /bin/true (wall)",
           r->version_ours.median_ms <= r->version_peer.median_ms + 2.0 ? "met" : "NOT met");
}

static void print_sessions(const struct report *r)
{
    const struct sessions *so = &r->ses_ours, *sp = &r->ses_peer;
    size_t n = (size_t)r->args->sessions;
    char ours[64], peer[64], ratio[64], label[32];

    snprintf(label, sizeof(label), "%zu sessions", n);
    snprintf(ours, sizeof(ours), "%.0f/s, %.0f KiB each", (double)n * 1e3 / so->create_ms,
             so->mem_avail_kib);
    if (r->have_peer) {
        snprintf(peer, sizeof(peer), "%.0f/s, %.0f KiB each (bwrap)",
                 (double)n * 1e3 / sp->create_ms, sp->mem_avail_kib);
        /* Other work on the machine can move MemAvailable more than 100 sandboxes do. */
        if (so->mem_avail_kib > 0 && sp->mem_avail_kib > 0)
            snprintf(ratio, sizeof(ratio), "%.2f time, %.2f memory", so->create_ms / sp->create_ms,
                     so->mem_avail_kib / sp->mem_avail_kib);
        else
            snprintf(ratio, sizeof(ratio), "%.2f time, memory: noise",
                     so->create_ms / sp->create_ms);
    } else {
        snprintf(peer, sizeof(peer), "skipped");
        snprintf(ratio, sizeof(ratio), "-");
    }
    printf("%-16s%-26s%-30s%s\n", label, ours, peer, ratio);
    snprintf(ours, sizeof(ours), "%.0f KiB each (%.0f process)", so->pss_kib, so->procs);
    snprintf(peer, sizeof(peer), "%.0f KiB each (%.0f processes)", sp->pss_kib, sp->procs);
    snprintf(ratio, sizeof(ratio), "%.2f", so->pss_kib / sp->pss_kib);
    printf("%-16s%-26s%-30s%s\n", "  Pss", ours, r->have_peer ? peer : "",
           r->have_peer ? ratio : "");
    snprintf(ours, sizeof(ours), "%.1f ms all", so->free_ms);
    snprintf(peer, sizeof(peer), "%.1f ms all (SIGKILL, wait)", sp->free_ms);
    snprintf(ratio, sizeof(ratio), "%.2f", so->free_ms / sp->free_ms);
    printf("%-16s%-26s%-30s%s\n", "  destroy", ours, r->have_peer ? peer : "",
           r->have_peer ? ratio : "");
    printf("%-16s%.1f ms all (%.3f ms each)\n", "  exec in each", so->exec_ms,
           so->exec_ms / (double)n);
    printf("%-16s%ld before, %ld with all alive, %ld after destroying all\n", "  state dirs",
           r->state_dirs_before, so->state_dirs_live, so->state_dirs_after);
}

static void print_table(const struct report *r)
{
    const struct layers *l = &r->layers;
    size_t n = (size_t)r->args->sessions;

    printf("sandbox benchmark: %llu interleaved iterations (after %d warm-up), %zu sessions x "
           "%llu rounds\n",
           (unsigned long long)r->args->iters, WARMUP, n, (unsigned long long)r->args->rounds);
    printf("host:  Linux %s, %ld CPUs, load average %.2f at start\n", r->kernel, r->cpus, r->load);
    printf("ours:  namespaces %s; %ld mounts; seccomp filter %s; no_new_privs %s; capabilities "
           "%s; cgroup %s\n",
           l->ours_ns, l->ours_mounts, l->seccomp ? "on" : "OFF", l->no_new_privs ? "on" : "OFF",
           l->caps_dropped ? "dropped" : "KEPT", l->cgroup ? "own" : "NONE (the host's)");
    if (r->have_peer)
        printf("bwrap: --unshare-all (user mnt pid net uts ipc cgroup); %ld mounts (/usr and "
               "system binds, proc, dev, tmp); no seccomp filter; no cgroup\n",
               l->peer_mounts);
    else
        printf("bwrap: not found at %s (Debian package bubblewrap): every comparison with it "
               "is skipped\n",
               BWRAP_PATH);
    printf("\n%-16s%-26s%-30s%s\n", "test", "ours (median)", "peer (median)", "ratio ours/peer");
    print_time_row("cold start", &r->cold_ours, &r->cold_peer, "bwrap", r->have_peer);
    print_time_row("warm exec", &r->warm_ours, &r->warm_peer, "fork+exec", true);
    printf("%-16s%-26s%-30s%s\n", "  target", "warm within 1.5x of fork+exec", "",
           r->warm_ours.median_ms <= 1.5 * r->warm_peer.median_ms ? "met" : "NOT met");
    print_process(r);
    print_sessions(r);
}

static json_t *stats_json(const struct stats *s)
{
    return json_pack("{s:f, s:f, s:f}", "median_ms", s->median_ms, "p10_ms", s->p10_ms, "p90_ms",
                     s->p90_ms);
}

static json_t *sessions_json(const struct sessions *s, size_t n, bool ours)
{
    json_t *v = json_pack("{s:f, s:f, s:f, s:f}", "create_per_s", (double)n * 1e3 / s->create_ms,
                          "mem_available_kib_each", s->mem_avail_kib, "pss_kib_each", s->pss_kib,
                          "destroy_all_ms", s->free_ms);
    if (v && ours) {
        json_object_set_new(v, "exec_all_ms", json_real(s->exec_ms));
        json_object_set_new(v, "state_dirs_after", json_integer(s->state_dirs_after));
    }
    return v;
}

/* {"ours": wall, PEER: wall or null, "ours_cpu": ..., "PEER_cpu": ...}, times in ms. */
static json_t *process_json(const struct stats *o, const struct stats *p, const struct stats *o_cpu,
                            const struct stats *p_cpu, const char *peer, bool have_peer)
{
    char peer_cpu[32];
    snprintf(peer_cpu, sizeof(peer_cpu), "%s_cpu", peer);
    return json_pack("{s:o, s:o, s:o, s:o}", "ours", stats_json(o), peer,
                     have_peer ? stats_json(p) : json_null(), "ours_cpu", stats_json(o_cpu),
                     peer_cpu, have_peer ? stats_json(p_cpu) : json_null());
}

static int print_json(const struct report *r)
{
    size_t n = (size_t)r->args->sessions;
    json_t *peer_cold = r->have_peer ? stats_json(&r->cold_peer) : json_null();
    json_t *peer_ses = r->have_peer ? sessions_json(&r->ses_peer, n, false) : json_null();
    json_t *v =
        json_pack("{s:s, s:{s:s, s:I, s:f}, s:I, s:I, s:I, s:{s:s, s:b, s:b, s:b, s:b, s:I}, "
                  "s:{s:o, s:o}, s:{s:o, s:o}, "
                  "s:{s:o, s:o}}",
                  "bench", "sandbox", "host", "kernel", r->kernel, "cpus", (json_int_t)r->cpus,
                  "load", r->load, "iterations", (json_int_t)r->args->iters, "sessions",
                  (json_int_t)n, "rounds", (json_int_t)r->args->rounds, "layers", "namespaces",
                  r->layers.ours_ns, "seccomp", r->layers.seccomp, "no_new_privs",
                  r->layers.no_new_privs, "caps_dropped", r->layers.caps_dropped, "cgroup",
                  r->layers.cgroup, "mounts", (json_int_t)r->layers.ours_mounts, "cold", "ours",
                  stats_json(&r->cold_ours), "bwrap", peer_cold, "warm", "ours",
                  stats_json(&r->warm_ours), "fork_exec", stats_json(&r->warm_peer),
                  "sessions_live", "ours", sessions_json(&r->ses_ours, n, true), "bwrap", peer_ses);
    json_t *process = json_null();
    if (r->have_bin)
        process = json_pack("{s:o, s:o}", "exec",
                            process_json(&r->exec_ours, &r->exec_peer, &r->exec_ours_cpu,
                                         &r->exec_peer_cpu, "bwrap", r->have_peer),
                            "version",
                            process_json(&r->version_ours, &r->version_peer, &r->version_ours_cpu,
                                         &r->version_peer_cpu, "true", true));
    if (v)
        json_object_set_new(v, "process", process);
    else
        json_decref(process);
    /* Six significant digits: timings are not more precise than that. */
    char *text =
        v ? json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(v);
    if (!text)
        return cru_err_set(CRU_ENOMEM, "cannot serialise the results (out of memory)");
    printf("%s\n", text);
    free(text);
    return 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: sandbox [-n N] [-s N] [-r N] [--crucible PATH] [--checker DIR] [--json]\n"
               "\n"
               "Cold start, warm exec and live sessions of crucible's sandbox, and the crucible\n"
               "binary as a whole process, each against its peer (bubblewrap, a bare\n"
               "fork+exec, /bin/true) in the same run. Needs root.\n"
               "\n"
               "  -n, --iterations N  timed iterations of cold start, warm exec and the\n"
               "                      processes (default 200)\n"
               "  -s, --sessions N    sandboxes alive at once (default 100)\n"
               "  -r, --rounds N      rounds of the live-sessions test (default 5)\n"
               "      --crucible PATH the binary timed as a process (default ./crucible)\n"
               "      --checker DIR   our sandboxes are checker sandboxes over the workspace DIR\n"
               "                      (what each check of a reward gets)\n"
               "      --json          also print the results as one JSON line\n"
               "  -h, --help          show this help\n");
}

static int parse_args(struct bench_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        { "iterations", required_argument, NULL, 'n' },
        { "sessions", required_argument, NULL, 's' },
        { "rounds", required_argument, NULL, 'r' },
        { "crucible", required_argument, NULL, 'c' },
        { "checker", required_argument, NULL, 'k' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, ":n:s:r:h", opts, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case 'n':
            rc = cru_parse_u64(optarg, 1, MAX_ITERS, &a->iters);
            break;
        case 's':
            rc = cru_parse_u64(optarg, 1, MAX_SESSIONS, &a->sessions);
            break;
        case 'r':
            rc = cru_parse_u64(optarg, 1, MAX_ROUNDS, &a->rounds);
            break;
        case 'c':
            a->crucible = optarg;
            break;
        case 'k':
            checker_ws = optarg;
            break;
        case 'j':
            a->json = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            fprintf(stderr, "bench/sandbox: bad option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return -1;
        }
        if (rc < 0) {
            fprintf(stderr, "bench/sandbox: -%c: %s\n", c, cru_err_msg());
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench/sandbox: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

static void host_describe(struct report *r)
{
    struct utsname u;
    FILE *f = fopen("/proc/loadavg", "re");
    if (!f || fscanf(f, "%lf", &r->load) != 1)
        r->load = -1;
    if (f)
        fclose(f);
    r->cpus = sysconf(_SC_NPROCESSORS_ONLN);
    cru_str_copy(r->kernel, sizeof(r->kernel), uname(&u) == 0 ? u.release : "unknown");
}

/* The whole-process series: `crucible exec -- /bin/true` against BWRAP_TRUE (when there is
 * bwrap), then `crucible version` against BARE_TRUE. */
static int run_timed_process(struct report *r, const struct argv_list *bwrap_true,
                             const struct argv_list *bare_true)
{
    static const char *const exec_args[] = { "exec", "--", "/bin/true", NULL };
    size_t n = (size_t)r->args->iters;
    struct argv_list exec = { 0 }, version = { 0 };
    struct proc_series o = { 0 }, p = { 0 };
    int rc = 0;

    o.wall.ns = calloc(n, sizeof(uint64_t));
    o.cpu.ns = calloc(n, sizeof(uint64_t));
    p.wall.ns = calloc(n, sizeof(uint64_t));
    p.cpu.ns = calloc(n, sizeof(uint64_t));
    if (!o.wall.ns || !o.cpu.ns || !p.wall.ns || !p.cpu.ns) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory for %zu samples", n);
        goto done;
    }
    if ((rc = argv_add(&exec, r->args->crucible)) < 0 ||
        (rc = argv_add(&version, r->args->crucible)) < 0 ||
        (rc = argv_add(&version, "version")) < 0)
        goto done;
    for (size_t i = 0; rc == 0 && exec_args[i]; i++)
        rc = argv_add(&exec, exec_args[i]);
    if (rc < 0)
        goto done;

    if ((rc = run_proc_series(&exec, r->have_peer ? bwrap_true : NULL, true, n, &o, &p)) < 0) {
        cru_err_wrap(rc, "%s exec -- /bin/true as a process", r->args->crucible);
        goto done;
    }
    r->exec_ours = series_stats(&o.wall);
    r->exec_ours_cpu = series_stats(&o.cpu);
    r->exec_peer = series_stats(&p.wall);
    r->exec_peer_cpu = series_stats(&p.cpu);
    if ((rc = run_proc_series(&version, bare_true, false, n, &o, &p)) < 0) {
        cru_err_wrap(rc, "%s version as a process", r->args->crucible);
        goto done;
    }
    r->version_ours = series_stats(&o.wall);
    r->version_ours_cpu = series_stats(&o.cpu);
    r->version_peer = series_stats(&p.wall);
    r->version_peer_cpu = series_stats(&p.cpu);
done:
    argv_free(&exec);
    argv_free(&version);
    free(o.wall.ns);
    free(o.cpu.ns);
    free(p.wall.ns);
    free(p.cpu.ns);
    return rc;
}

/* The cold and warm series, interleaved with their peers. */
static int run_timed(struct report *r, struct sbx *sb)
{
    size_t n = (size_t)r->args->iters;
    struct argv_list bwrap_true = { 0 }, bare_true = { 0 };
    struct series so = { calloc(n, sizeof(uint64_t)), 0 }, sp = { calloc(n, sizeof(uint64_t)), 0 };
    int rc = 0;

    if (!so.ns || !sp.ns) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory for %zu samples", n);
        goto done;
    }
    if ((r->have_peer && (rc = bwrap_info_argv(&bwrap_true, true_argv)) < 0) ||
        (rc = argv_add(&bare_true, true_argv[0])) < 0)
        goto done;

    struct series_ctx cold = { SERIES_COLD, NULL, r->have_peer ? &bwrap_true : NULL };
    if ((rc = run_series(&cold, n, &so, &sp)) < 0)
        goto done;
    r->cold_ours = series_stats(&so);
    if (r->have_peer)
        r->cold_peer = series_stats(&sp);

    struct series_ctx warm = { SERIES_WARM, sb, &bare_true };
    if ((rc = run_series(&warm, n, &so, &sp)) < 0)
        goto done;
    r->warm_ours = series_stats(&so);
    r->warm_peer = series_stats(&sp);
    if (r->have_bin)
        rc = run_timed_process(r, &bwrap_true, &bare_true);
done:
    argv_free(&bwrap_true);
    argv_free(&bare_true);
    free(so.ns);
    free(sp.ns);
    return rc;
}

int main(int argc, char **argv)
{
    struct bench_args args = {
        .iters = 200, .sessions = 100, .rounds = 5, .crucible = "./crucible"
    };
    struct report r = { .args = &args };
    struct sbx *sb = NULL;
    int rc;

    if ((rc = parse_args(&args, argc, argv)) != 0)
        return rc < 0 ? 2 : 0;
    /* Orphans of the peer's sandboxes come to us, not to the host's init, so that the run
     * leaves no zombie behind. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        cru_err_sys("cannot become a subreaper");
        goto fail;
    }
    /* Warnings would repeat once per sandbox; the probe below reports what is missing. */
    cru_log_set_level(CRU_LOG_ERROR);
    r.have_peer = access(BWRAP_PATH, X_OK) == 0;
    r.have_bin = access(args.crucible, X_OK) == 0;
    host_describe(&r);
    /* Taken before the first sandbox of this process sweeps what dead ones left. */
    r.state_dirs_before = count_state_dirs();

    if ((rc = ours_new(&sb)) < 0) {
        cru_err_wrap(rc, "creating the first sandbox");
        goto fail;
    }
    if ((rc = probe_layers(sb, r.have_peer, &r.layers)) < 0 || (rc = run_timed(&r, sb)) < 0)
        goto fail;
    sbx_free(sb);
    sb = NULL;
    if ((rc = run_sessions((size_t)args.sessions, (size_t)args.rounds, r.have_peer, &r.ses_ours,
                           &r.ses_peer)) < 0)
        goto fail;
    print_table(&r);
    if (args.json && (rc = print_json(&r)) < 0)
        goto fail;
    return 0;
fail:
    sbx_free(sb);
    fprintf(stderr, "bench/sandbox: %s\n", cru_err_msg());
    return 3;
}
