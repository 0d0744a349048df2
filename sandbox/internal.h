/* sandbox/internal: what the sandbox's modules share and nothing outside sandbox/ may use
 * (but its tests): the context struct, the mount plan, the messages between the host and the
 * sandbox's init.
 *
 * The sandbox's init starts as a clone() of the host process, which may have other threads:
 * its heap can hold a lock another thread owned at the moment of the clone. So everything the
 * init and the commands it forks need is prepared by the host before the clone (paths, file
 * contents, the capability state, the seccomp program), and the code that runs in them makes
 * system calls only: no malloc, no stdio.
 */
#ifndef CRU_SANDBOX_INTERNAL_H
#define CRU_SANDBOX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/capability.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"
#include "sandbox/seccomp.h"

struct cru_buf;

/* The uid range each sandbox maps: sandbox uid 0..SBX_ID_RANGE-1 is host uid base + same. */
#define SBX_ID_RANGE 65536u
#define SBX_ID_BASE  0x10000000u /* 268435456: far above any user or system account */
#define SBX_SLOTS    4096u       /* SBX_ID_BASE + SBX_SLOTS * SBX_ID_RANGE < 2^32 */

/* RLIMIT_STACK of every command: the usual 8 MiB, as a hard limit. */
#define SBX_STACK_BYTES (8u << 20)

/* One step of assembling the root, executed in order by the init (mount.c). */
enum sbx_mnt_op {
    SBX_MNT_MKDIR,    /* dst: mkdir */
    SBX_MNT_FILE,     /* dst: create a file holding data (read-only with the root) */
    SBX_MNT_COPY,     /* dst: a copy of the host's small file src (read-only with the root) */
    SBX_MNT_SYMLINK,  /* dst -> src */
    SBX_MNT_TMPFS,    /* dst: tmpfs with data as options */
    SBX_MNT_BIND,     /* host src on dst, recursive; readonly */
    SBX_MNT_PROC,     /* dst: a fresh proc */
    SBX_MNT_DEVPTS,   /* dst: a new devpts instance */
    SBX_MNT_MASK,     /* dst (absolute, inside, after the pivot): hide a file */
    SBX_MNT_MASK_DIR, /* dst (likewise): hide a folder under an empty read-only tmpfs */
    SBX_MNT_RO,       /* dst (likewise): make read-only */
    SBX_MNT_WS,       /* dst: the workspace (the idmapped tree the host sends, or the host
                         path without root), overlay or bind */
    SBX_MNT_DISK,     /* dst: the disk's folder src (made with mode), bound there */
};

struct sbx_mnt {
    enum sbx_mnt_op op;
    bool readonly;
    bool optional; /* a missing source or destination is skipped, not an error */
    bool device;   /* a bind of a device node: keeps device semantics */
    mode_t mode;   /* SBX_MNT_DISK: the folder's mode */
    char *src;
    char *dst; /* for all ops but MASK: relative to the new root's mount point */
    char *data;
    size_t data_len;
};

struct sbx_plan {
    struct sbx_mnt *ops;
    size_t n, cap;
};

enum sbx_ws_mode {
    SBX_WS_NONE,    /* an empty /workspace on the disk */
    SBX_WS_OVERLAY, /* the host folder read-only below, its changes on the disk */
    SBX_WS_BIND,    /* the host folder itself, writable */
};

/* What the READY message carries besides its descriptors. */
struct sbx_ready {
    uint32_t upper_on_disk; /* the overlay's upper layer is on the disk, not the host's */
    uint32_t pad;
};

/* What the init and its commands need, prepared by the host before the clone. */
struct sbx_init_args {
    int ctl_fd;            /* the init's end of the control socket */
    pid_t host_pid;        /* the host process (the init dies with it) */
    bool rootless;         /* no root on the host: one uid mapped, no idmapped workspace */
    const char *root_dir;  /* mount point of the new root (host path) */
    const char *disk_dir;  /* where the disk is mounted while the root is built */
    const char *disk_opts; /* the disk's tmpfs options: mode, size and nr_inodes */
    enum sbx_ws_mode ws_mode;
    const char *ws_path;      /* the workspace's host path, bound by the init when rootless */
    const char *upper_dir;    /* the overlay's upper and work dirs on the host's disk, used */
    const char *work_dir;     /*   only where the disk (tmpfs) has no user xattrs */
    const char *ws_lower_dir; /* where the workspace is attached before the overlay */
    const struct sbx_plan *plan;
    const char *hostname;
    bool loopback;
    unsigned disable_layers;
    uint64_t file_bytes, open_files;
    uint64_t data_bytes, nproc; /* RLIMIT_DATA and RLIMIT_NPROC of commands; 0: none (set
                                   where no cgroup enforces the memory or pids limit) */
    const char *oom_score_adj;  /* what commands write to /proc/self/oom_score_adj */
    unsigned long cmdline_start, cmdline_end; /* the host's argv and environment strings, */
    unsigned long env_start, env_end;         /*   wiped in the init's copy */
    cap_t no_caps;                    /* an empty capability state, ready for cap_set_proc */
    cap_t checker_caps;               /* a checker sandbox's commands' state, or NULL */
    const struct sbx_seccomp *filter; /* the compiled seccomp programs, NULL when disabled */
};

struct sbx {
    struct sbx_opts opts; /* strings borrowed from the caller are not kept */
    char *state_root;
    char *workspace; /* host path, or NULL */
    char *dir;       /* state_root/sbx-N */
    char *root_dir, *disk_dir, *upper_dir, *work_dir, *ws_lower_dir;
    char disk_opts[96];
    bool rootless;
    bool upper_on_disk;
    int disk_fd; /* O_PATH of the disk (its /tmp), for its free space */
    uint64_t data_bytes, nproc;
    char *hostname;
    unsigned slot;
    int slot_fd; /* flock on state_root/sbx-N.lock, held for the sandbox's life */
    uid_t uid;   /* host uid and gid of the sandbox's root */
    gid_t gid;
    pid_t init_pid;
    int ctl_fd;
    int ws_fd; /* O_PATH of /workspace inside */
    struct sbx_cgroup *cg;
    struct sbx_plan plan;
    cap_t no_caps;
    cap_t checker_caps;               /* a checker sandbox's commands' capabilities, or NULL */
    const struct sbx_seccomp *filter; /* shared by all sandboxes; NULL when disabled */
    uint64_t deadline_ns;             /* the sandbox's wall limit; 0: none */
    uint64_t next_id;
    uint64_t oom_kills; /* the cgroup's OOM kill count after the last command */
    bool broken;        /* the init died or misbehaved: only sbx_free is allowed */
    bool oom_lost_init; /* ... because the OOM killer took it */
};

/* Messages on the control socket (SOCK_SEQPACKET: one message per send). A command costs
 * two: EXEC, and EXITED when it has ended (or FAIL when it could not be started). */
enum sbx_msg_type {
    SBX_MSG_GO = 1, /* host -> init: maps written, cgroup joined; fds: [workspace tree] */
    SBX_MSG_READY,  /* init -> host: root built; payload: struct sbx_ready; fds: [O_PATH of
                       /workspace, O_PATH of the disk] */
    SBX_MSG_FAIL,   /* init -> host: setup failed; payload: message */
    SBX_MSG_EXEC,   /* host -> init: payload: struct sbx_exec_req + strings; fds: [0, 1, 2] */
    SBX_MSG_EXITED, /* init -> host: payload: struct sbx_exit */
    SBX_MSG_KILL,   /* host -> init: kill the command's process group */
};

struct sbx_msg {
    uint32_t type;
    uint32_t len; /* bytes of payload after this header */
    uint64_t id;  /* the command's id, for EXEC, EXITED and KILL */
};

/* The largest message: a command's argv, env and cwd must fit. */
#define SBX_MSG_MAX (256u * 1024u)

struct sbx_exec_req {
    uint32_t argc;
    uint32_t envc;
    /* then: cwd '\0', argc strings each '\0'-terminated, envc strings likewise, and nothing
     * after them */
};

/* The init's argv and envp arrays: a command has at most SBX_EXEC_ARGS_MAX - 1 arguments and
 * as many environment entries, each array ending in NULL. */
#define SBX_EXEC_ARGS_MAX 4096u

struct sbx_exit {
    int32_t status; /* as from wait4 */
    int32_t pad;
    int64_t utime_us;
    int64_t stime_us;
    int64_t maxrss_kb;
};

/* mount.c */
int sbx_plan_build(struct sbx_plan *plan, const struct sbx_opts *opts);
void sbx_plan_free(struct sbx_plan *plan);
/* In the init: assembles the root at a->root_dir, with the disk, and pivots into it. WS_FD is
 * the idmapped workspace tree, or -1 (no workspace, or rootless: a->ws_path). *UPPER_ON_DISK
 * says where an overlay's changes went. On failure returns -1 with *what naming the step
 * (errno set). */
int sbx_plan_run(const struct sbx_init_args *a, int ws_fd, bool *upper_on_disk, const char **what);

/* init.c: the entry point of the clone()d init; never returns. */
int sbx_init_main(void *arg);

/* msg.c: send and receive one message with up to 3 descriptors. */
int sbx_msg_send(int fd, const struct sbx_msg *m, const void *payload, const int *fds,
                 size_t n_fds);
/* Receives into BUF (at least sizeof(struct sbx_msg) + SBX_MSG_MAX bytes). Returns the total
 * length, 0 at end of stream, -1 with errno on error; *n_fds descriptors land in FDS (at most
 * 3, the rest closed). */
ssize_t sbx_msg_recv(int fd, void *buf, size_t cap, int *fds, size_t *n_fds);

/* msg.c, host side: appends an EXEC payload to B: the header, CWD, ARGV and ENV (both
 * NULL-terminated). Fails with CRU_EINVAL for an empty command or an environment entry without
 * '=', CRU_ELIMIT when a count reaches SBX_EXEC_ARGS_MAX or the payload is over SBX_MSG_MAX;
 * B may then hold part of the payload. */
int sbx_exec_req_pack(struct cru_buf *b, const char *cwd, const char *const *argv,
                      const char *const *env);
/* msg.c, init side: splits the LEN bytes of PAYLOAD into *CWD, ARGV and ENVP (arrays of
 * ARGV_CAP and ENVP_CAP pointers, NULL-terminated), pointing into PAYLOAD, which is not
 * changed. Accepts exactly what sbx_exec_req_pack writes: at least one argument, counts below
 * the caps, every string terminated, every environment entry with a '=', nothing after the last
 * string. Returns 0, or -1 for anything else (the arrays' contents are then undefined). No
 * allocation, no stdio, no last error: it runs in the init. */
int sbx_exec_req_parse(char *payload, size_t len, const char **cwd, char **argv, size_t argv_cap,
                       char **envp, size_t envp_cap);

#endif
