/* cgroup_internal: the cgroup module's entry points with the discovery files as parameters.
 *
 * For tests only: they feed crafted mountinfo and cgroup files (missing controllers, a v2-only
 * view of the machine) without touching the process's real view. Nothing outside tests/ may
 * include this header; the public functions in sandbox/cgroup.h read /proc/self.
 */
#ifndef CRU_SANDBOX_CGROUP_INTERNAL_H
#define CRU_SANDBOX_CGROUP_INTERNAL_H

#include "sandbox/cgroup.h"

/* Where the module learns the mounts (mountinfo format) and crucible's own cgroups (the format
 * of /proc/PID/cgroup). */
struct sbx_cgroup_sources {
    const char *mountinfo;
    const char *cgroup;
};

#define SBX_CGROUP_SOURCES_PROC                                                                    \
    {                                                                                              \
        "/proc/self/mountinfo", "/proc/self/cgroup"                                                \
    }

int sbx_cgroup_new_from(struct sbx_cgroup **out, const char *name,
                        const struct sbx_cgroup_limits *limits,
                        const struct sbx_cgroup_sources *src);

int sbx_cgroup_sweep_from(bool (*is_stale)(const char *name, void *arg), void *arg,
                          const struct sbx_cgroup_sources *src);

/* The directory that holds CONTROLLER ("memory", "pids", "cpu" or "cpuacct") for this cgroup,
 * or NULL when that controller is not in use. Borrowed: valid until sbx_cgroup_free(). */
const char *sbx_cgroup_dir(const struct sbx_cgroup *cg, const char *controller);

/* Runs discovery on SRC and writes into OUT (CAP bytes, at least 4) one line saying what it
 * found: for cgroup v2 and then each v1 controller (memory, pids, cpu, cpuacct), the directory
 * sandboxes would be created in, with the mount point, the mounted root and crucible's own
 * path, or "none" and why. Control bytes and '\' in paths and reasons are written as \ooo, so
 * the line holds no newline. Creates and writes nothing; reads only SRC and v2's
 * cgroup.controllers. Returns 0; discovery's negative code, with OUT ""; or CRU_ELIMIT when the
 * line does not fit, with OUT holding its start and "...". */
int sbx_cgroup_describe_from(const struct sbx_cgroup_sources *src, char *out, size_t cap);

#endif
