/* bench/bench: what the benchmarks share: the median of a series, and what running their peer
 * bubblewrap takes (owned argv lists, posix_spawn with descriptors, waiting for success, and a
 * bwrap command line that shows the host's system folders as crucible's sandbox does).
 * Header-only: each benchmark is one program.
 */
#ifndef CRU_BENCH_BENCH_H
#define CRU_BENCH_BENCH_H

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/str.h"

extern char **environ;

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of N values (sorted in place). */
static inline double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define BWRAP_PATH     "/usr/bin/bwrap"
#define BENCH_ARGV_MAX 64

/* An argv whose strings it owns, for posix_spawn (which wants char *const[]). */
struct argv_list {
    char *v[BENCH_ARGV_MAX + 1];
    size_t n;
};

static inline int argv_add(struct argv_list *a, const char *s)
{
    if (a->n == BENCH_ARGV_MAX)
        return cru_err_set(CRU_ELIMIT, "more than %d arguments", BENCH_ARGV_MAX);
    int rc = cru_str_dup(&a->v[a->n], s);
    if (rc < 0)
        return rc;
    a->v[++a->n] = NULL;
    return 0;
}

static inline void argv_free(struct argv_list *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    a->n = 0;
    a->v[0] = NULL;
}

/* posix_spawn ARGV; each FDS[i] >= 0 becomes descriptor i of the child (FDS may be NULL). */
static inline int spawn(pid_t *pid, const struct argv_list *a, const int fds[4])
{
    posix_spawn_file_actions_t fa;
    int err = posix_spawn_file_actions_init(&fa);
    if (err == 0) {
        for (int i = 0; err == 0 && fds && i < 4; i++) {
            if (fds[i] >= 0)
                err = posix_spawn_file_actions_adddup2(&fa, fds[i], i);
        }
        if (err == 0)
            err = posix_spawn(pid, a->v[0], &fa, NULL, a->v, environ);
        posix_spawn_file_actions_destroy(&fa);
    }
    if (err != 0) {
        errno = err;
        return cru_err_sys("cannot start %s", a->v[0]);
    }
    return 0;
}

static inline int wait_ok(pid_t pid, const char *what)
{
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return cru_err_sys("waiting for %s", what);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        return cru_err_set(CRU_EIO, "%s was killed by signal %d", what, WTERMSIG(status));
    return cru_err_set(CRU_EIO, "%s exited with status %d", what, WEXITSTATUS(status));
}

/* bwrap with EXTRA options (NULL-terminated, may be NULL), the host's system folders as the
 * sandbox shows them (read-only; links stay links), a fresh /proc, /dev and /tmp, then CMD. */
static inline int bwrap_argv(struct argv_list *a, const char *const *extra, const char *const *cmd)
{
    static const char *const head[] = { BWRAP_PATH,  "--unshare-all", "--die-with-parent",
                                        "--ro-bind", "/usr",          "/usr",
                                        NULL };
    static const char *const system_dirs[] = { "bin",   "sbin",   "lib", "lib32",
                                               "lib64", "libx32", NULL };
    static const char *const tail[] = {
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", NULL
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && head[i]; i++)
        rc = argv_add(a, head[i]);
    for (size_t i = 0; rc == 0 && extra && extra[i]; i++)
        rc = argv_add(a, extra[i]);
    for (size_t i = 0; rc == 0 && system_dirs[i]; i++) {
        char host[64], target[256];
        struct stat st;
        snprintf(host, sizeof(host), "/%s", system_dirs[i]);
        if (lstat(host, &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlink(host, target, sizeof(target) - 1);
            if (n < 0)
                return cru_err_sys("cannot read the link %s", host);
            target[n] = '\0';
            if ((rc = argv_add(a, "--symlink")) == 0 && (rc = argv_add(a, target)) == 0)
                rc = argv_add(a, host);
        } else if (S_ISDIR(st.st_mode)) {
            if ((rc = argv_add(a, "--ro-bind")) == 0 && (rc = argv_add(a, host)) == 0)
                rc = argv_add(a, host);
        }
    }
    for (size_t i = 0; rc == 0 && tail[i]; i++)
        rc = argv_add(a, tail[i]);
    for (size_t i = 0; rc == 0 && cmd[i]; i++)
        rc = argv_add(a, cmd[i]);
    return rc;
}

#endif
