/* check: the checker sandbox around a copy of the final workspace, protected paths, and the
 * oracle / no-op check of an image.
 *
 * The host works on the copy only while nothing runs in it, and first makes every parent
 * folder of a protected path a real folder (an agent may have replaced one with a symlink to
 * a host folder), so the path-based comparison and restoration below never leave the copy.
 */
#include "agent/check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/str.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/path.h"
#include "sandbox/fsaccess.h"
#include "sandbox/sandbox.h"

/* The largest workspace scored. */
#define SCORE_COPY_MAX ((uint64_t)4 << 30)

/* The environment of every command the preparation runs. */
static const char *const check_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "USER=root",
    "LANG=C.UTF-8",
    "TERM=dumb",
    "PYTHONDONTWRITEBYTECODE=1",
    NULL,
};

/* ... and of every check: nothing of the workspace on Python's import path (not the current
 * folder, not a script's), no user site, no pytest plugin found by entry point; and where the
 * artifact's identity is. */
static const char *const checker_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "USER=root",
    "LANG=C.UTF-8",
    "TERM=dumb",
    "PYTHONDONTWRITEBYTECODE=1",
    "PYTHONSAFEPATH=1",
    "PYTHONNOUSERSITE=1",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD=1",
    "CRUCIBLE_ARTIFACT_UID=1000",
    "CRUCIBLE_ARTIFACT_GID=1000",
    NULL,
};
_Static_assert(SBX_ARTIFACT_UID == 1000 && SBX_ARTIFACT_GID == 1000,
               "checker_env names the artifact's ids");

/* The most files, folders and links an artifact may hold to be scored. */
#define SCORE_ENTRIES_MAX 100000u

/* ---- protected paths ---- */

/* Makes every folder above REL inside ROOT a real folder: a symlink, file or anything else in
 * its place is removed, a missing one made. */
static int real_parents(const char *root, const char *rel)
{
    char comp[CRU_PATH_MAX];
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return cru_err_sys("cannot open %s", root);
    const char *p = rel;
    int rc = 0;
    for (const char *slash; rc == 0 && (slash = strchr(p, '/')); p = slash + 1) {
        size_t n = (size_t)(slash - p);
        memcpy(comp, p, n);
        comp[n] = '\0';
        struct stat st;
        if (fstatat(fd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
            unlinkat(fd, comp, 0) < 0)
            rc = cru_err_sys("cannot remove %s/%s", root, comp);
        if (rc == 0 && mkdirat(fd, comp, 0755) < 0 && errno != EEXIST)
            rc = cru_err_sys("cannot create %s/%s", root, comp);
        int next = rc == 0 ? openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        if (rc == 0 && next < 0)
            rc = cru_err_sys("cannot open %s/%s", root, comp);
        close(fd);
        fd = next;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

static bool same_contents(const char *a, const char *b)
{
    int fa = open(a, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int fb = open(b, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    bool same = fa >= 0 && fb >= 0;
    static __thread char ba[65536], bb[65536];
    while (same) {
        size_t na = 0, nb = 0;
        if (cru_read_some(fa, ba, sizeof(ba), &na, a) < 0 ||
            cru_read_some(fb, bb, sizeof(bb), &nb, b) < 0 || na != nb || memcmp(ba, bb, na) != 0)
            same = false;
        if (na == 0)
            break;
    }
    if (fa >= 0)
        close(fa);
    if (fb >= 0)
        close(fb);
    return same;
}

/* The sorted entry names of folder PATH; NULL on failure. */
static char **list_names(const char *path, size_t *n)
{
    DIR *d = opendir(path);
    char **names = NULL;
    size_t cap = 0;
    struct dirent *e;
    *n = 0;
    if (!d)
        return NULL;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **g = realloc(names, cap * sizeof(*g));
            if (!g)
                break;
            names = g;
        }
        if (!(names[*n] = strdup(e->d_name)))
            break;
        (*n)++;
    }
    closedir(d);
    if (*n > 1)
        qsort(names, *n, sizeof(*names), cru_str_cmp_ptr);
    return names ? names : calloc(1, sizeof(char *));
}

static void names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/* Whether the trees at A and B are the same: types, file contents and modes, link targets,
 * folder entries. Links are compared, never followed. */
static bool same_tree(const char *a, const char *b, unsigned depth)
{
    struct stat sa, sb;
    bool ea = lstat(a, &sa) == 0, eb = lstat(b, &sb) == 0;
    if (!ea || !eb)
        return !ea && !eb;
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT) || depth > 128)
        return false;
    if (S_ISREG(sa.st_mode))
        return sa.st_size == sb.st_size && (sa.st_mode & 0777) == (sb.st_mode & 0777) &&
               same_contents(a, b);
    if (S_ISLNK(sa.st_mode)) {
        char ta[CRU_PATH_MAX], tb[CRU_PATH_MAX];
        ssize_t na = readlink(a, ta, sizeof(ta)), nb = readlink(b, tb, sizeof(tb));
        return na >= 0 && na == nb && memcmp(ta, tb, (size_t)na) == 0;
    }
    if (!S_ISDIR(sa.st_mode))
        return false;
    size_t na, nb;
    char **la = list_names(a, &na), **lb = list_names(b, &nb);
    bool same = la && lb && na == nb;
    for (size_t i = 0; same && i < na; i++) {
        char ca[PATH_MAX], cb[PATH_MAX];
        same = strcmp(la[i], lb[i]) == 0;
        snprintf(ca, sizeof(ca), "%s/%s", a, la[i]);
        snprintf(cb, sizeof(cb), "%s/%s", b, lb[i]);
        same = same && same_tree(ca, cb, depth + 1);
    }
    names_free(la, na);
    names_free(lb, nb);
    return same;
}

/* Restores each protected path of IMG in COPY from PRISTINE; *changed lists those that
 * differed. */
static int restore_protected(const struct agt_image *img, const char *copy, const char *pristine,
                             char ***changed, size_t *n_changed)
{
    const struct rwd_spec *spec = img->reward;
    *changed = NULL;
    *n_changed = 0;
    if (!spec->n_protected || !pristine)
        return 0;
    if (!(*changed = calloc(spec->n_protected, sizeof(char *))))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    for (size_t i = 0; i < spec->n_protected; i++) {
        const char *rel = spec->protected_paths[i];
        char *cur = NULL, *orig = NULL;
        int rc = real_parents(copy, rel);
        if (rc == 0 && (rc = cru_path_join(&cur, copy, rel)) == 0)
            rc = cru_path_join(&orig, pristine, rel);
        if (rc == 0 && !same_tree(orig, cur, 0)) {
            if (!((*changed)[(*n_changed)++] = strdup(rel)))
                rc = cru_err_set(CRU_ENOMEM, "out of memory");
        }
        struct stat st;
        if (rc == 0)
            rc = cru_remove_tree(cur); /* never follows a link */
        if (rc == 0 && lstat(orig, &st) == 0)
            rc = cru_copy_tree(orig, cur, SCORE_COPY_MAX, 0);
        free(cur);
        free(orig);
        if (rc < 0)
            return cru_err_wrap(rc, "restoring the protected path %s", rel);
    }
    return 0;
}

/* A sandbox over WS with IMG's rootfs, memory and disk limits, a pids limit, BINDS and a
 * lifetime of WALL_MS; a checker sandbox (two identities) with CHECKER. */
static int image_sandbox(const struct agt_image *img, const char *ws, const char *rootfs,
                         const struct sbx_bind *binds, size_t n_binds, uint64_t wall_ms,
                         bool checker, const struct agt_check_opts *opts, struct sbx **out)
{
    struct sbx_opts o = SBX_OPTS_INIT;
    o.rootfs = rootfs;
    o.workspace = ws;
    o.binds = binds;
    o.n_binds = n_binds;
    o.memory_bytes = img->memory_bytes;
    o.disk_bytes = img->disk_bytes;
    o.disk_inodes = img->disk_inodes;
    o.pids = 1024;
    o.wall_ms = wall_ms;
    o.state_root = opts ? opts->state_root : NULL;
    o.checker = checker;
    return sbx_new(out, &o);
}

/* ---- the box: a fresh checker sandbox for each check ---- */

struct box {
    const struct agt_image *img;
    const char *rootfs;
    const struct agt_check_opts *opts;
    const char *frozen;  /* the frozen artifact (host path): each sandbox's overlay lower */
    const char *hidden;  /* the hidden files' copy, or NULL */
    const char *scratch; /* where each check's results folder is made */
    struct sbx_fs fs;    /* the frozen artifact, for file checks */
    struct sbx *sb;      /* the running check's sandbox */
    char results[CRU_PATH_MAX];
    int results_fd;
    unsigned n;
};

/* Runs ARGV (or SHELL) in SB with ENV, keeping OUT_CAP bytes of stdout and 64 KiB of stderr. */
static int run(struct sbx *sb, const char *const *env, const char *const *argv, const char *shell,
               uint64_t timeout_ms, size_t out_cap, struct sbx_result *r)
{
    struct sbx_cmd cmd = SBX_CMD_INIT;
    cmd.argv = argv;
    cmd.shell = shell;
    cmd.env = env;
    cmd.timeout_ms = timeout_ms;
    cmd.stdout_cap = out_cap;
    cmd.stderr_cap = 64 << 10;
    return sbx_exec(sb, &cmd, r);
}

/* Makes host folder PATH the sandbox's root's alone (0700): the checker's, not the
 * artifact's. The mount shows the same inode, so this holds inside at once. */
static int checker_only(const struct sbx *sb, const char *path)
{
    if (chown(path, sbx_root_uid(sb), sbx_root_gid(sb)) < 0 || chmod(path, 0700) < 0)
        return cru_err_sys("cannot give %s to the checker", path);
    return 0;
}

static void box_end(void *ctx)
{
    struct box *b = ctx;
    sbx_free(b->sb);
    b->sb = NULL;
    if (b->results_fd >= 0)
        close(b->results_fd);
    b->results_fd = -1;
    if (b->results[0] && cru_remove_tree(b->results) < 0)
        cru_warn("cannot remove %s: %s", b->results, cru_err_msg());
    b->results[0] = '\0';
}

static int box_begin(void *ctx, const struct rwd_check *ck)
{
    struct box *b = ctx;
    struct sbx_bind binds[2];
    size_t n = 0;
    snprintf(b->results, sizeof(b->results), "%s/results-%u", b->scratch, b->n++);
    if (mkdir(b->results, 0755) < 0) {
        int rc = cru_err_sys("cannot make %s", b->results);
        b->results[0] = '\0';
        return rc;
    }
    if (b->hidden)
        binds[n++] = (struct sbx_bind){ b->hidden, "/hidden", true };
    binds[n++] = (struct sbx_bind){ b->results, RWD_RESULTS_DIR, false };
    int rc = image_sandbox(b->img, b->frozen, b->rootfs, binds, n, ck->timeout_ms + 20000, true,
                           b->opts, &b->sb);
    if (rc == 0 && b->hidden)
        rc = checker_only(b->sb, b->hidden);
    if (rc == 0)
        rc = checker_only(b->sb, b->results);
    if (rc == 0 &&
        (b->results_fd = open(b->results, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        rc = cru_err_sys("cannot open %s", b->results);
    return rc;
}

static int box_exec(void *ctx, const char *const *argv, const char *shell, uint64_t timeout_ms,
                    size_t out_cap, struct rwd_exec *res)
{
    struct box *b = ctx;
    struct sbx_result r = { 0 };
    memset(res, 0, sizeof(*res));
    if (!b->sb)
        return cru_err_set(CRU_EINTERNAL, "a command outside a check's sandbox");
    int rc = run(b->sb, checker_env, argv, shell, timeout_ms, out_cap, &r);
    /* The code under test may take the whole sandbox down with its memory: a failed check,
     * like any other OOM kill, not an error of the environment. */
    if (rc == CRU_ELIMIT && sbx_lost_to_oom(b->sb)) {
        res->oom = true;
        res->exit_code = 128 + 9;
        sbx_result_free(&r);
        return 0;
    }
    if (rc == 0) {
        res->exit_code = r.exit_code;
        res->timed_out = r.timed_out;
        res->oom = r.oom;
        res->out = r.out;
        res->err = r.err;
        res->out_total = r.out_total;
        r.out = (struct cru_buf)CRU_BUF_INIT;
        r.err = (struct cru_buf)CRU_BUF_INIT;
    }
    sbx_result_free(&r);
    return rc;
}

static int box_report(void *ctx, const char *path, size_t max, struct cru_buf *out)
{
    struct box *b = ctx;
    size_t skip = strlen(RWD_RESULTS_DIR "/");
    if (b->results_fd < 0 || strncmp(path, RWD_RESULTS_DIR "/", skip) != 0)
        return cru_err_set(CRU_EINVAL, "%s is not in %s", path, RWD_RESULTS_DIR);
    struct sbx_fs fs = { b->results_fd, 0, 0, SBX_FS_AUTO };
    return sbx_fs_read(&fs, path + skip, max, out);
}

static int box_read(void *ctx, const char *rel, size_t max, struct cru_buf *out)
{
    struct box *b = ctx;
    return sbx_fs_read(&b->fs, rel, max, out);
}

static int box_stat(void *ctx, const char *rel, struct stat *st)
{
    struct box *b = ctx;
    return sbx_fs_stat(&b->fs, rel, st);
}

int agt_sandbox_open(const struct agt_image *img, const char *ws, const char *rootfs,
                     const char *hidden, const char *solution, uint64_t wall_ms,
                     const struct agt_check_opts *opts, struct sbx **out)
{
    struct sbx_bind binds[2];
    size_t n = 0;
    if (hidden)
        binds[n++] = (struct sbx_bind){ hidden, "/hidden", true };
    if (solution)
        binds[n++] = (struct sbx_bind){ solution, "/solution", true };
    return image_sandbox(img, ws, rootfs, binds, n, wall_ms, false, opts, out);
}

int agt_sandbox_take(struct sbx *sb, const char *dest)
{
    /* A readable descriptor of the workspace keeps its mount (and the disk under an overlay)
     * alive after the sandbox, and with it every process that could still change the tree, is
     * gone. */
    int fd = openat(sbx_workspace_fd(sb), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 ? cru_err_sys("cannot hold on to the sandbox's workspace") : 0;
    sbx_free(sb);
    if (rc == 0)
        rc = cru_copy_tree_fd(fd, "the sandbox's workspace", dest, SCORE_COPY_MAX,
                              CRU_COPY_SKIP_SPECIAL);
    if (fd >= 0)
        close(fd);
    return rc < 0 ? cru_err_wrap(rc, "taking the workspace out of the sandbox") : 0;
}

int agt_score(const struct agt_image *img, const char *final_ws, const char *pristine_ws,
              const char *rootfs, const struct agt_check_opts *opts, struct rwd_result *res)
{
    char tmp[] = "/tmp/crucible-score-XXXXXX", copy[sizeof(tmp) + 4], hidden[sizeof(tmp) + 8];
    char **changed = NULL;
    size_t n_changed = 0;
    struct box b = {
        .img = img, .rootfs = rootfs, .opts = opts, .frozen = copy, .scratch = tmp, .results_fd = -1
    };
    int rc, fd = -1;

    memset(res, 0, sizeof(*res));
    if (!mkdtemp(tmp))
        return cru_err_sys("cannot make a scoring folder");
    snprintf(copy, sizeof(copy), "%s/ws", tmp);
    snprintf(hidden, sizeof(hidden), "%s/hidden", tmp);
    /* The folder is traversable (0711), so that each sandbox reaches the copies in it whatever
     * the modes of the folders above the image. The artifact is frozen: bytes only, links
     * only to its own files, no special files, no setuid bits, no compiled caches (which
     * could run other code than the sources the checks read) unless the image keeps them;
     * nothing runs on this copy, each check gets its own overlay of it. */
    unsigned freeze = CRU_COPY_FREEZE | CRU_COPY_SKIP_SPECIAL |
                      (img->reward->keep_caches ? 0 : CRU_COPY_NO_CACHES);
    if (chmod(tmp, 0711) < 0) {
        rc = cru_err_sys("cannot open up %s", tmp);
        goto done;
    }
    if ((fd = open(final_ws, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        rc = cru_err_sys("cannot open the workspace %s", final_ws);
        goto done;
    }
    if ((rc = cru_copy_tree_bounded(fd, "the workspace", copy, SCORE_COPY_MAX, SCORE_ENTRIES_MAX,
                                    freeze)) < 0) {
        /* Too large, too many files, nested too deep: the agent made its artifact one that
         * cannot be scored, which scores as a failure (the caller's to say). */
        if (rc == CRU_ELIMIT)
            rc = cru_err_wrap(rc, "the artifact cannot be scored");
        goto done;
    }
    if ((rc = restore_protected(img, copy, pristine_ws, &changed, &n_changed)) < 0)
        goto done;
    /* Only the artifact may be too large to score (the agent's doing): the image's own files
     * being so is the image's fault. */
    if (img->hidden_dir &&
        (rc = agt_image_copy_folder(img, "hidden", hidden, SCORE_COPY_MAX)) < 0) {
        if (rc == CRU_ELIMIT)
            rc = cru_err_set(CRU_EINVAL, "the image's hidden folder: %s", cru_err_msg());
        goto done;
    }
    close(fd);
    if ((fd = open(copy, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        rc = cru_err_sys("cannot open %s", copy);
        goto done;
    }
    b.hidden = img->hidden_dir ? hidden : NULL;
    b.fs = (struct sbx_fs){ fd, 0, 0, SBX_FS_AUTO };
    struct rwd_box box = { &b, box_begin, box_end, box_exec, box_report, box_read, box_stat };
    rc = rwd_score(img->reward, &box, changed, n_changed, res);
done:
    box_end(&b);
    if (fd >= 0)
        close(fd);
    for (size_t i = 0; i < n_changed; i++)
        free(changed[i]);
    free(changed);
    if (cru_remove_tree(tmp) < 0)
        cru_warn("cannot remove %s: %s", tmp, cru_err_msg());
    if (rc < 0)
        return cru_err_wrap(rc, "scoring image %s", img->id);
    return 0;
}

/* Runs one preparation command; a failure says which and how. */
static int prepare_step(struct sbx *sb, const char *what, const char *const *argv,
                        const char *shell, uint64_t timeout_ms)
{
    struct sbx_result r = { 0 };
    char tail[300] = "";
    int rc = run(sb, check_env, argv, shell, timeout_ms, 64 << 10, &r);
    if (rc == 0 && (r.exit_code != 0 || r.timed_out)) {
        const struct cru_buf *o = r.err.len ? &r.err : &r.out;
        size_t n = o->len > 200 ? 200 : o->len;
        snprintf(tail, sizeof(tail), "%.*s", (int)n, o->data ? o->data + o->len - n : "");
        for (char *p = tail; *p; p++)
            if (*p == '\n')
                *p = ' ';
        rc = cru_err_set(CRU_EFAILED, "%s %s (exit status %d): %s", what,
                         r.timed_out ? "timed out" : "failed", r.exit_code, tail);
    }
    sbx_result_free(&r);
    return rc;
}

int agt_solution_stage(const struct agt_image *img, char **scratch, char **dir)
{
    char tmp[] = "/tmp/crucible-solution-XXXXXX";
    *scratch = *dir = NULL;
    if (!mkdtemp(tmp))
        return cru_err_sys("cannot make a folder for the solution");
    int rc = 0;
    if (chmod(tmp, 0711) < 0)
        rc = cru_err_sys("cannot open up %s", tmp);
    else if ((rc = cru_str_printf(dir, "%s/s", tmp)) == 0)
        rc = agt_image_copy_folder(img, "solution", *dir, SCORE_COPY_MAX);
    if (rc == 0)
        rc = cru_str_dup(scratch, tmp);
    if (rc < 0) {
        cru_remove_tree(tmp);
        free(*dir);
        *dir = NULL;
    }
    return rc;
}

int agt_prepare_workspace(const struct agt_image *img, const char *ws, const char *rootfs,
                          bool solve, const struct agt_check_opts *opts)
{
    struct sbx *sb = NULL;
    char what[64], *scratch = NULL, *sol = NULL;
    int rc = 0;
    if (img->n_setup == 0 && !solve)
        return 0;
    if (solve)
        rc = agt_solution_stage(img, &scratch, &sol);
    if (rc == 0)
        rc = agt_sandbox_open(img, ws, rootfs, NULL, solve ? sol : NULL, img->wall_ms, opts, &sb);
    for (size_t i = 0; rc == 0 && i < img->n_setup; i++) {
        snprintf(what, sizeof(what), "setup command %zu", i + 1);
        rc = prepare_step(sb, what, NULL, img->setup[i], img->wall_ms);
    }
    if (rc == 0 && solve) {
        static const char *const apply[] = { "git", "apply", "--whitespace=nowarn",
                                             "/solution/solution.patch", NULL };
        static const char *const script[] = { "/bin/sh", "/solution/solve.sh", NULL };
        rc = prepare_step(sb, "the reference solution",
                          img->solution_kind == AGT_SOLUTION_PATCH ? apply : script, NULL,
                          img->wall_ms);
    }
    /* The changes are on the sandbox's disk: the result replaces WS. */
    char *next = NULL;
    if (rc == 0 && (rc = cru_str_printf(&next, "%s.next", ws)) == 0) {
        rc = agt_sandbox_take(sb, next);
        sb = NULL; /* destroyed, whatever the result */
        if (rc == 0 && (rc = cru_remove_tree(ws)) == 0 && rename(next, ws) < 0)
            rc = cru_err_sys("cannot move %s into place", next);
        if (rc < 0)
            cru_remove_tree(next);
        free(next);
    }
    sbx_free(sb);
    if (scratch)
        cru_remove_tree(scratch);
    free(scratch);
    free(sol);
    if (rc < 0)
        return cru_err_wrap(rc, "image %s", img->id);
    return 0;
}

void agt_image_check_free(struct agt_image_check *c)
{
    if (!c)
        return;
    free(c->error);
    rwd_result_free(&c->oracle_res);
    rwd_result_free(&c->noop_res);
    memset(c, 0, sizeof(*c));
}

int agt_image_check(const struct agt_image *img, const struct agt_check_opts *opts,
                    struct agt_image_check *out)
{
    char tmp[] = "/tmp/crucible-check-XXXXXX", pristine[64], oracle[64], noop[64];
    char *rootfs = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!mkdtemp(tmp))
        return cru_err_sys("cannot make a checking folder");
    snprintf(pristine, sizeof(pristine), "%s/pristine", tmp);
    snprintf(oracle, sizeof(oracle), "%s/oracle", tmp);
    snprintf(noop, sizeof(noop), "%s/noop", tmp);
    if ((rc = agt_rootfs_prepare(img, opts ? opts->cache : NULL, &rootfs)) < 0 ||
        (rc = agt_workspace_make(img, pristine)) < 0 ||
        (rc = agt_workspace_make(img, oracle)) < 0 || (rc = agt_workspace_make(img, noop)) < 0 ||
        (rc = agt_prepare_workspace(img, oracle, rootfs, true, opts)) < 0 ||
        (rc = agt_prepare_workspace(img, noop, rootfs, false, opts)) < 0 ||
        (rc = agt_score(img, oracle, pristine, rootfs, opts, &out->oracle_res)) < 0 ||
        (rc = agt_score(img, noop, pristine, rootfs, opts, &out->noop_res)) < 0) {
        out->error = strdup(cru_err_msg());
    } else {
        out->ran = true;
        out->oracle = out->oracle_res.reward;
        out->noop = out->noop_res.reward;
        out->pass = out->oracle == 1.0 && out->noop < 1.0;
    }
    free(rootfs);
    int saved = cru_err_code();
    if (cru_remove_tree(tmp) < 0)
        cru_warn("cannot remove %s: %s", tmp, cru_err_msg());
    if (rc < 0)
        cru_err_set(saved, "%s", out->error ? out->error : "out of memory");
    return rc;
}
