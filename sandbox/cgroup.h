/* cgroup: resource limits and accounting for one sandbox (cgroup v2 where the unified
 * hierarchy has the controllers, else cgroup v1's memory, pids and cpu hierarchies).
 *
 * A sandbox's cgroup is created below the cgroup the crucible process itself is in, named
 * crucible-NAME, so that crucible works inside a delegated subtree. The module reports exactly
 * what it could not do (no controller, no permission) instead of running without a limit.
 */
#ifndef CRU_SANDBOX_CGROUP_H
#define CRU_SANDBOX_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sbx_cgroup; /* opaque */

struct sbx_cgroup_limits {
    uint64_t memory_bytes; /* hard limit, swap off; 0: none */
    uint64_t pids;         /* most tasks at once; 0: none */
    double cpus;           /* CPU quota in CPUs (1.5 = 150 ms per 100 ms); 0: none */
    bool lean;             /* v1: only the limited controllers' hierarchies, plus memory (for
                              the OOM counter); the other stats then read 0 */
};

/* A controller that the cgroup does not use (none was available and no limit asked for it)
 * reads as 0. */
struct sbx_cgroup_stats {
    uint64_t memory_current; /* bytes */
    uint64_t memory_peak;    /* bytes, highest usage since creation */
    uint64_t oom_kills;      /* processes killed by the OOM killer in this cgroup */
    uint64_t cpu_usage_ns;   /* user + system CPU time of all tasks, ever */
    uint64_t pids_current;
};

/* Creates the cgroup crucible-NAME (NAME: 1 to 64 letters, digits, '-', '_'; "supervisor" is
 * reserved) and applies LIMITS (NULL: none). Fails with CRU_EUNSUPPORTED naming the missing
 * controller and the hierarchies looked at when a limit is asked for and the machine cannot
 * enforce it, CRU_EPERM naming the path when crucible may not create or write cgroups, and
 * CRU_EEXIST when crucible-NAME exists already. On failure nothing is left behind.
 *
 * On cgroup v2, enabling controllers for the sandboxes may move the calling process into a
 * leaf cgroup crucible-supervisor beside them (see sandbox/cgroup.c). */
int sbx_cgroup_new(struct sbx_cgroup **out, const char *name,
                   const struct sbx_cgroup_limits *limits);

/* Moves PID (a host pid; the whole process) into the cgroup, in every hierarchy in use.
 * CRU_ENOENT when there is no such process. */
int sbx_cgroup_attach(struct sbx_cgroup *cg, pid_t pid);

int sbx_cgroup_stats(struct sbx_cgroup *cg, struct sbx_cgroup_stats *out);

/* Only the OOM kill counter (0 without a memory controller): one file read, for the
 * per-command check. */
int sbx_cgroup_oom_kills(struct sbx_cgroup *cg, uint64_t *out);

/* Kills every task in the cgroup (cgroup.kill on v2, else SIGKILL to each listed task until
 * the cgroup is empty) and returns once it is empty; CRU_ETIMEDOUT if tasks remain after 2 s. */
int sbx_cgroup_kill(struct sbx_cgroup *cg);

/* "v2" or "v1": which hierarchy this cgroup lives in. */
const char *sbx_cgroup_version(const struct sbx_cgroup *cg);

/* Kills what is left, removes the cgroup directories (retrying while tasks exit, for up to 2 s)
 * and frees. A directory that cannot be removed is reported with a warning. The thread's last
 * error and errno are left as they were, so it can run in a caller's error path. NULL is fine. */
void sbx_cgroup_free(struct sbx_cgroup *cg);

/* Removes crucible-NAME cgroups left by crucible processes that died, for every NAME for
 * which IS_STALE(NAME, ARG) says true, in every hierarchy (v2 and v1) below crucible's own
 * cgroup; their tasks are killed first. IS_STALE is asked once per NAME. Returns the number of
 * NAMEs removed, or a negative code (after trying them all) when one could not be removed. */
int sbx_cgroup_sweep(bool (*is_stale)(const char *name, void *arg), void *arg);

#endif
