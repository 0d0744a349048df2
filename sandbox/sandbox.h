/* sandbox: isolated, limited sessions that run many commands.
 *
 * A sandbox is created once (sbx_new) and runs commands cheaply (sbx_exec: the sandbox's init
 * forks and execs inside the existing namespaces), until it is destroyed (sbx_free), which
 * leaves no process, mount, cgroup or directory behind. Inside: a private user namespace whose
 * root is an unprivileged host uid, and mount, pid, network (loopback only), uts, ipc and
 * cgroup namespaces; a root assembled on a fresh tmpfs (read-only system folders of the host,
 * a curated /etc, the workspace as an overlay or a bind, a fresh /proc with sensitive entries
 * masked, a minimal /dev); one bounded "disk" (a tmpfs of a set size and inode count) that
 * holds everything the sandbox can write but a bound workspace: /tmp, /root, /run, /var,
 * /dev/shm and the workspace overlay's changes; no capabilities, no_new_privs and a seccomp
 * filter for every command; cgroup limits for memory, pids and CPU; rlimits; and wall-clock
 * limits per command and per sandbox.
 *
 * As root, each sandbox maps a private range of 65536 host uids, limits itself with cgroups
 * and shows the workspace through an idmapped mount. Without root it runs rootless, as
 * bubblewrap does: an unprivileged user namespace maps the caller's uid alone, the workspace
 * is a plain bind, and limits use a delegated cgroup subtree where one is writable, otherwise
 * rlimits (sbx_info says which). The commands inside run with no privilege in either mode.
 */
#ifndef CRU_SANDBOX_SANDBOX_H
#define CRU_SANDBOX_SANDBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/buf.h"

struct sbx; /* opaque */

struct sbx_bind {
    const char *src; /* host path */
    const char *dst; /* absolute path inside the sandbox */
    bool readonly;
};

/* Layers a test build may switch off to show that a probe detects the hole the layer closes
 * (a positive control). The command line never sets these. */
enum sbx_layer {
    SBX_LAYER_SECCOMP = 1u << 0,
    SBX_LAYER_CAPS = 1u << 1,
    SBX_LAYER_NNP = 1u << 2,
    SBX_LAYER_PROC_MASK = 1u << 3,
    SBX_LAYER_CLOSE_FDS = 1u << 4,
    SBX_LAYER_OOM_SCORE = 1u << 5, /* commands keep the init's OOM score */
};

/* The disk a sandbox gets when none is asked for, and the inodes per byte of disk. */
#define SBX_DISK_DEFAULT         ((uint64_t)1 << 30)
#define SBX_DISK_BYTES_PER_INODE 8192u

/* A checker sandbox's two identities (sbx_opts.checker): the checker is the sandbox's root,
 * the artifact this uid and gid. */
#define SBX_ARTIFACT_UID 1000u
#define SBX_ARTIFACT_GID 1000u

#define SBX_OPTS_VERSION 2

struct sbx_opts {
    int version;           /* SBX_OPTS_VERSION */
    const char *rootfs;    /* a root filesystem folder whose top-level folders are shown
                              read-only (and whose /etc is used); NULL: the host profile */
    const char *workspace; /* host folder shown at /workspace; NULL: an empty tmpfs */
    bool workspace_bind;   /* bind it writable instead of an overlay (changes reach it) */
    const struct sbx_bind *binds;
    size_t n_binds;
    uint64_t memory_bytes;  /* cgroup memory limit, swap off; 0: none */
    uint64_t pids;          /* cgroup pids limit; 0: none */
    double cpus;            /* CPU quota in CPUs; 0: none */
    uint64_t wall_ms;       /* lifetime of the sandbox; commands stop at it; 0: none */
    uint64_t disk_bytes;    /* the disk: /tmp, /root, /run, /var, /dev/shm and the workspace
                               overlay's changes together; 0: SBX_DISK_DEFAULT. Its pages
                               are memory, charged to the memory limit */
    uint64_t disk_inodes;   /* files and folders on the disk; 0: disk_bytes / 8 KiB */
    uint64_t file_bytes;    /* RLIMIT_FSIZE for commands; 0: 1 GiB */
    uint64_t open_files;    /* RLIMIT_NOFILE for commands; 0: 1024 */
    bool loopback;          /* bring lo up (the network namespace never has another link) */
    const char *hostname;   /* NULL: "sandbox" */
    const char *state_root; /* where sandboxes keep state; NULL: /run/crucible as root, else
                               $XDG_RUNTIME_DIR/crucible or /tmp/crucible-UID */
    /* A checker sandbox (root only): two identities, for a reward's checks that run the code
     * they judge. Commands run as the checker (uid 0) with CAP_SETUID, CAP_SETGID, CAP_CHOWN,
     * CAP_FOWNER, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_KILL, ambient (they survive
     * the checker's own execs); the workspace's files belong to the artifact (uid and gid
     * SBX_ARTIFACT_UID), which a checker process becomes with setuid/setgid and which then
     * holds no capability (the kernel clears them all when every uid leaves 0) and cannot come
     * back. Without it every command is the same unprivileged root. */
    bool checker;
    unsigned disable_layers; /* enum sbx_layer bits; tests only */
};

#define SBX_OPTS_INIT                                                                              \
    {                                                                                              \
        .version = SBX_OPTS_VERSION, .loopback = true                                              \
    }

struct sbx_cmd {
    const char *const *argv; /* argv[0] is looked up in the env's PATH; or NULL with shell */
    const char *shell;       /* run with /bin/sh -c when argv is NULL */
    const char *const *env;  /* NULL-terminated "K=V" list; NULL: a minimal default env */
    const char *cwd;         /* NULL: /workspace */
    const void *stdin_data;  /* fed to the command's stdin, then closed; NULL: empty */
    size_t stdin_len;
    int stdin_fd;        /* >= 0: the command reads this host fd instead */
    uint64_t timeout_ms; /* 0: none (the sandbox's wall limit still applies) */
    size_t stdout_cap;   /* bytes kept; the rest is counted and dropped; 0: 1 MiB */
    size_t stderr_cap;
    int stdout_fd; /* >= 0: pass output straight to this host fd instead */
    int stderr_fd; /*   (no capture, no cap); -1: capture */
    /* Optional: once this becomes true (a signal handler may set it), the command is killed
     * as at its timeout, within about 100 ms, and the result says cancelled. */
    const atomic_bool *cancel;
};

#define SBX_CMD_INIT                                                                               \
    {                                                                                              \
        .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1                                           \
    }

struct sbx_result {
    int exit_code;  /* exit status, or 128 + signal */
    int signal;     /* the signal that killed it, or 0 */
    bool timed_out; /* killed by its timeout or the sandbox's wall limit */
    bool cancelled; /* killed because the command's cancel flag was set */
    bool oom;       /* killed by the out-of-memory killer */
    bool disk_full; /* the sandbox's disk had no free space or no free inode at the end */
    uint64_t wall_ms;
    uint64_t cpu_ms; /* user + system time of the command and its waited children */
    uint64_t max_rss_kb;
    struct cru_buf out; /* captured stdout (up to stdout_cap, then a line saying what was
                           cut: "[crucible: output truncated: K of N bytes kept]") */
    struct cru_buf err;
    uint64_t out_total; /* bytes the command wrote, kept or not */
    uint64_t err_total;
};

int sbx_new(struct sbx **out, const struct sbx_opts *opts);

/* Runs one command to completion. Returns 0 when it ran (whatever its exit status: see RES);
 * a negative code when it could not be run or the sandbox is broken: CRU_ELIMIT once the OOM
 * killer has taken the sandbox's init (sbx_lost_to_oom; the command that ran into it got a
 * result saying oom), then the sandbox runs nothing more and only sbx_free is left. The command not
 * being found is exit status 127 with a message on its stderr, as in a shell. RES is reset first;
 * release it with sbx_result_free(). */
int sbx_exec(struct sbx *sb, const struct sbx_cmd *cmd, struct sbx_result *res);
void sbx_result_free(struct sbx_result *res);

/* An O_PATH descriptor of /workspace as the sandbox sees it (borrowed), and the host uid and
 * gid of the sandbox's root: what sandbox/fsaccess.h needs to read and write inside. A
 * descriptor opened from it keeps the workspace readable after sbx_free(), when nothing runs
 * in it any more: that is how the final state of an overlay workspace, which lives only on the
 * sandbox's disk, is taken out (agent/check.h: agt_sandbox_take). */
int sbx_workspace_fd(const struct sbx *sb);
uid_t sbx_root_uid(const struct sbx *sb);
gid_t sbx_root_gid(const struct sbx *sb);

/* How a sandbox enforces what it was asked for, to be stated wherever its limits are shown
 * (crucible exec --json, a run's configuration): never silently weaker than asked. */
enum sbx_enforce {
    SBX_ENFORCE_NONE,   /* not asked for */
    SBX_ENFORCE_CGROUP, /* a cgroup limit on the whole sandbox */
    SBX_ENFORCE_RLIMIT, /* an rlimit on each process (no cgroup could be used) */
};

struct sbx_info {
    bool rootless;           /* made without root: only the caller's uid is mapped */
    const char *cgroup;      /* "v2", "v1", or NULL when the sandbox has no cgroup */
    enum sbx_enforce memory; /* RLIMIT_DATA per process without a cgroup */
    enum sbx_enforce pids;   /* RLIMIT_NPROC (the sandbox's uid) without a cgroup */
    enum sbx_enforce cpu;    /* a cgroup only: without one a CPU quota is an error */
    uint64_t disk_bytes, disk_inodes;
    bool workspace_on_disk; /* the workspace's changes count against the disk: false for a
                               bound workspace (they go to the host folder, bounded only by
                               RLIMIT_FSIZE per file) or where the kernel's tmpfs cannot hold
                               an overlay's upper layer (before Linux 6.6) */
};

void sbx_info_get(const struct sbx *sb, struct sbx_info *out);
const char *sbx_enforce_name(enum sbx_enforce e);

/* INFO as {"mode": "root"|"rootless", "cgroup": "v2"|"v1"|null, "memory", "pids", "cpu":
 * "cgroup"|"rlimit"|"none", "disk_bytes", "disk_inodes", "workspace_on_disk"}: the form in
 * which crucible exec --json and a run's summary state it. NULL when out of memory. */
struct json_t;
struct json_t *sbx_info_json(const struct sbx_info *info);

/* The host pid of the sandbox's init (for tests and diagnostics). */
pid_t sbx_init_pid(const struct sbx *sb);

/* Whether the sandbox is spent because the OOM killer took its init: its memory limit, not a
 * fault of crucible's, ended it. Its workspace can still be taken out (sbx_workspace_fd). */
bool sbx_lost_to_oom(const struct sbx *sb);

/* Destroys the sandbox: kills everything in it, removes its cgroup and state. Accepts NULL. */
void sbx_free(struct sbx *sb);

/* Removes what sandboxes of crucible processes that died left behind (cgroups, state). Called
 * by sbx_new once per process; exposed for tests. Returns the number of sandboxes swept. */
int sbx_sweep(const char *state_root);

#endif
