/* TEMPORARY scaffolding for local testing; replaced by the real module at merge. */
#include "sandbox/cgroup.h"

#include "lib/err.h"

int sbx_cgroup_new(struct sbx_cgroup **out, const char *name,
                   const struct sbx_cgroup_limits *limits)
{
    (void)out;
    (void)name;
    (void)limits;
    return cru_err_set(CRU_EUNSUPPORTED, "scaffolding");
}
int sbx_cgroup_attach(struct sbx_cgroup *cg, pid_t pid)
{
    (void)cg;
    (void)pid;
    return 0;
}
int sbx_cgroup_stats(struct sbx_cgroup *cg, struct sbx_cgroup_stats *out)
{
    (void)cg;
    (void)out;
    return 0;
}
void sbx_cgroup_free(struct sbx_cgroup *cg)
{
    (void)cg;
}
int sbx_cgroup_sweep(bool (*is_stale)(const char *name, void *arg), void *arg)
{
    (void)is_stale;
    (void)arg;
    return 0;
}
