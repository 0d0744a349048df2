/* gitws: coding-task workspaces that are git repositories at a base commit, and the coding
 * artifact, the diff of the working tree against that commit. A workspace is made from a local
 * repository with libgit2: only the base commit and its ancestors are packed into the new
 * repository, so the agent cannot find the task's solution in a later commit, and HEAD is
 * detached at the base. The diff covers tracked changes, deletions and untracked files that
 * .gitignore does not exclude, as a bounded unified patch plus the list of changed paths. Git
 * bundles are read here (libgit2 1.5 cannot clone one): the header is parsed, and the pack goes
 * through libgit2's pack writer into a private repository. This module does not run git,
 * fetch over a network, or apply patches.
 */
#include "agent/gitws.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/dl.h"
#include "lib/err.h"
#include "lib/str.h"
#include "lib/fs.h"

/* libgit2 is loaded on the first call that needs it (lib/dl.h), and its functions are called
 * through the table DL that every function here is handed. */

/* libgit2's last message on this thread, for the end of ours. */
static const char *git_msg(const struct cru_libgit2 *dl)
{
    const git_error *e = dl->git_error_last();
    return e && e->message ? e->message : "unknown libgit2 error";
}

static int git_code(int grc)
{
    switch (grc) {
    case GIT_ENOTFOUND:
        return CRU_ENOENT;
    case GIT_EEXISTS:
        return CRU_EEXIST;
    case GIT_EAMBIGUOUS:
    case GIT_EINVALIDSPEC:
        return CRU_EINVAL;
    default:
        return CRU_EIO;
    }
}

/* Sets the last error from libgit2's return code GRC: WHAT (printf-style), ": ", its message. */
static int git_fail(const struct cru_libgit2 *dl, int grc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int git_fail(const struct cru_libgit2 *dl, int grc, const char *fmt, ...)
{
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return cru_err_set(git_code(grc), "%s: %s", what, git_msg(dl));
}

int agt_git_bundle_header(const void *data, size_t len, struct agt_git_bundle *out)
{
    const char *p = data, *end = p + len;
    size_t line_no = 0;
    bool v3 = false;

    memset(out, 0, sizeof(*out));
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return cru_err_set(CRU_EPARSE, "git bundle: the header has no end (a blank line)");
        size_t n = (size_t)(nl - p);
        line_no++;
        if (n > AGT_GIT_BUNDLE_LINE_MAX)
            return cru_err_set(CRU_ELIMIT, "git bundle: header line %zu is over %d bytes", line_no,
                               AGT_GIT_BUNDLE_LINE_MAX);
        if (line_no == 1) {
            if (n == 15 && memcmp(p, "# v3 git bundle", 15) == 0)
                v3 = true;
            else if (n != 15 || memcmp(p, "# v2 git bundle", 15) != 0)
                return cru_err_set(CRU_EPARSE, "not a git bundle (no \"# v2 git bundle\" or "
                                               "\"# v3 git bundle\" line)");
        } else if (n == 0) {
            break;
        } else if (p[0] == '@') {
            if (!v3)
                return cru_err_set(CRU_EPARSE, "git bundle: a capability in a v2 bundle (line %zu)",
                                   line_no);
            if (!(n == 19 && memcmp(p, "@object-format=sha1", 19) == 0))
                return cru_err_set(CRU_EUNSUPPORTED,
                                   "git bundle: capability \"%.*s\" is not supported (line %zu)",
                                   (int)n, p, line_no);
        } else if (p[0] == '-') {
            return cru_err_set(CRU_EUNSUPPORTED,
                               "git bundle: it needs commits it does not contain (a "
                               "prerequisite on line %zu); a workspace needs a complete bundle",
                               line_no);
        } else {
            if (n < 42 || p[40] != ' ' || strspn(p, "0123456789abcdef") < 40)
                return cru_err_set(
                    CRU_EPARSE, "git bundle: line %zu is not \"<40 hex digits> <ref>\"", line_no);
            if (out->n_refs == AGT_GIT_BUNDLE_REFS_MAX)
                return cru_err_set(CRU_ELIMIT, "git bundle: more than %d refs",
                                   AGT_GIT_BUNDLE_REFS_MAX);
            struct agt_git_bundle_ref *r = &out->refs[out->n_refs++];
            memcpy(r->oid, p, 40);
            r->oid[40] = '\0';
            size_t name_len = n - 41;
            memcpy(r->name, p + 41, name_len);
            r->name[name_len] = '\0';
            if (memchr(r->name, '\0', name_len) || memchr(r->name, ' ', name_len))
                return cru_err_set(CRU_EPARSE, "git bundle: a bad ref name on line %zu", line_no);
        }
        p = nl + 1;
    }
    out->pack_offset = (size_t)(p + 1 - (const char *)data);
    if ((size_t)(end - (p + 1)) < 4 || memcmp(p + 1, "PACK", 4) != 0)
        return cru_err_set(CRU_EPARSE, "git bundle: no pack follows the header");
    return 0;
}

/* Whether SOURCE is a regular file that starts like a git bundle. */
static bool is_bundle(const char *source)
{
    char head[15];
    struct stat st;
    if (stat(source, &st) < 0 || !S_ISREG(st.st_mode))
        return false;
    /* The name may have become a FIFO since the stat: checked again on the open file. */
    int fd;
    if (cru_file_open_regular(AT_FDCWD, source, 0, source, &fd, NULL) < 0)
        return false;
    size_t n = 0;
    int rc = cru_read_some(fd, head, sizeof(head), &n, source);
    close(fd);
    return rc == 0 && n == sizeof(head) &&
           (memcmp(head, "# v2 git bundle", 15) == 0 || memcmp(head, "# v3 git bundle", 15) == 0);
}

/* Unbundles BUNDLE into a new bare repository at REPO: its pack goes into the object database
 * through libgit2's pack writer (which checks every object) and its refs are created. */
static int unbundle(const struct cru_libgit2 *dl, const char *bundle, const char *repo_dir)
{
    struct cru_buf b = CRU_BUF_INIT;
    struct agt_git_bundle *hdr = NULL;
    git_repository *repo = NULL;
    git_odb *odb = NULL;
    git_odb_writepack *wp = NULL;
    git_indexer_progress stats = { 0 };
    int rc, grc;

    if ((rc = cru_file_read(bundle, AGT_GIT_BUNDLE_MAX, &b)) < 0)
        return rc;
    if (!(hdr = malloc(sizeof(*hdr)))) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = agt_git_bundle_header(b.data, b.len, hdr)) < 0)
        goto done;
    if ((grc = dl->git_repository_init(&repo, repo_dir, 1)) < 0 ||
        (grc = dl->git_repository_odb(&odb, repo)) < 0 ||
        (grc = dl->git_odb_write_pack(&wp, odb, NULL, NULL)) < 0) {
        rc = git_fail(dl, grc, "cannot prepare a repository for the bundle");
        goto done;
    }
    if ((grc = wp->append(wp, b.data + hdr->pack_offset, b.len - hdr->pack_offset, &stats)) < 0 ||
        (grc = wp->commit(wp, &stats)) < 0) {
        rc = git_fail(dl, grc, "the bundle's pack is broken");
        goto done;
    }
    for (size_t i = 0; i < hdr->n_refs; i++) {
        git_oid oid;
        git_reference *ref = NULL;
        if (strncmp(hdr->refs[i].name, "refs/", 5) != 0)
            continue; /* HEAD: the commit is given by id or by a refs/ name */
        const char *name = hdr->refs[i].name;
        if ((grc = dl->git_oid_fromstr(&oid, hdr->refs[i].oid)) < 0 ||
            (grc = dl->git_reference_create(&ref, repo, name, &oid, 1, "unbundle")) < 0) {
            rc = git_fail(dl, grc, "cannot create %s from the bundle", name);
            goto done;
        }
        dl->git_reference_free(ref);
    }
done:
    if (wp)
        wp->free(wp);
    dl->git_odb_free(odb);
    dl->git_repository_free(repo);
    free(hdr);
    cru_buf_free(&b);
    return rc;
}

/* Copies COMMIT and everything it reaches (its tree and its ancestors) from SRC into a pack in
 * DST, and nothing else: later commits, other branches and tags stay behind. */
static int copy_history(const struct cru_libgit2 *dl, git_repository *src, const git_oid *commit,
                        git_repository *dst)
{
    git_packbuilder *pb = NULL;
    git_revwalk *walk = NULL;
    git_odb *odb = NULL;
    int rc = 0, grc;
    const char *step = "";

    if ((grc = dl->git_packbuilder_new(&pb, src)) < 0) {
        step = "cannot start a pack";
        goto fail;
    }
    dl->git_packbuilder_set_threads(pb, 0);
    if ((grc = dl->git_revwalk_new(&walk, src)) < 0 ||
        (grc = dl->git_revwalk_push(walk, commit)) < 0 ||
        (grc = dl->git_packbuilder_insert_walk(pb, walk)) < 0) {
        step = "cannot collect the commit's history";
        goto fail;
    }
    char dir[4096];
    if (snprintf(dir, sizeof(dir), "%sobjects/pack", dl->git_repository_path(dst)) >=
        (int)sizeof(dir)) {
        rc = cru_err_set(CRU_ELIMIT, "repository path longer than %zu bytes", sizeof(dir) - 1);
        goto done;
    }
    if ((grc = dl->git_packbuilder_write(pb, dir, 0, NULL, NULL)) < 0) {
        step = "cannot write the pack";
        goto fail;
    }
    /* The new pack appeared behind the object database's back. */
    if ((grc = dl->git_repository_odb(&odb, dst)) < 0 || (grc = dl->git_odb_refresh(odb)) < 0) {
        step = "cannot reload the objects";
        goto fail;
    }
    goto done;
fail:
    rc = git_fail(dl, grc, "%s", step);
done:
    dl->git_odb_free(odb);
    dl->git_revwalk_free(walk);
    dl->git_packbuilder_free(pb);
    return rc;
}

/* Resolves NAME in SRC to a commit id (a tag is peeled to the commit it names). */
static int resolve_commit(const struct cru_libgit2 *dl, git_repository *repo, const char *name,
                          git_oid *out)
{
    git_object *obj = NULL, *peeled = NULL;
    int grc, rc = 0;
    if ((grc = dl->git_revparse_single(&obj, repo, name)) < 0)
        return git_fail(dl, grc, "cannot resolve %s", name);
    if ((grc = dl->git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT)) < 0)
        rc = git_fail(dl, grc, "%s does not name a commit", name);
    else
        dl->git_oid_cpy(out, dl->git_object_id(peeled));
    dl->git_object_free(peeled);
    dl->git_object_free(obj);
    return rc;
}

static int checkout(const struct cru_libgit2 *dl, const char *source, const char *commit,
                    const char *dest)
{
    git_repository *src = NULL, *repo = NULL;
    git_commit *c = NULL;
    git_oid oid;
    int rc, grc;

    if ((grc = dl->git_repository_open_ext(&src, source, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL)) < 0)
        return git_fail(dl, grc, "cannot open the repository");
    if ((rc = resolve_commit(dl, src, commit, &oid)) < 0)
        goto done;
    if ((grc = dl->git_repository_init(&repo, dest, 0)) < 0) {
        rc = git_fail(dl, grc, "cannot create a repository");
        goto done;
    }
    if ((rc = copy_history(dl, src, &oid, repo)) < 0)
        goto done;
    if ((grc = dl->git_commit_lookup(&c, repo, &oid)) < 0) {
        rc = git_fail(dl, grc, "the copied commit is missing");
        goto done;
    }
    git_checkout_options co;
    dl->git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
    co.checkout_strategy = GIT_CHECKOUT_FORCE;
    if ((grc = dl->git_checkout_tree(repo, (const git_object *)c, &co)) < 0) {
        rc = git_fail(dl, grc, "cannot check out the tree");
        goto done;
    }
    if ((grc = dl->git_repository_set_head_detached(repo, &oid)) < 0)
        rc = git_fail(dl, grc, "cannot detach HEAD");
done:
    dl->git_commit_free(c);
    dl->git_repository_free(repo);
    dl->git_repository_free(src);
    return rc;
}

/* agt_git_checkout() of SOURCE, which messages call NAME (a private copy is named for what
 * it is a copy of). */
static int checkout_named(const char *source, const char *name, const char *commit,
                          const char *dest)
{
    const struct cru_libgit2 *dl;
    struct stat st;
    int rc;
    if ((rc = cru_dl_libgit2(&dl)) < 0)
        return cru_err_wrap(rc, "checking out %s of %s", commit, source);
    if (lstat(dest, &st) == 0)
        return cru_err_set(CRU_EEXIST, "checking out %s of %s: %s exists already", commit, name,
                           dest);
    if (errno != ENOENT)
        return cru_err_sys("checking out %s of %s: cannot inspect %s", commit, name, dest);
    /* A bundle is unbundled into a private repository first; the checkout then copies only
     * the commit's history from there, as from any repository. */
    char tmp[] = "/tmp/crucible-unbundle-XXXXXX";
    const char *from = source;
    if (is_bundle(source)) {
        if (!mkdtemp(tmp))
            return cru_err_sys("checking out %s of %s: cannot make a temporary folder", commit,
                               name);
        char repo_dir[sizeof(tmp) + 8];
        snprintf(repo_dir, sizeof(repo_dir), "%s/repo", tmp);
        if ((rc = unbundle(dl, source, repo_dir)) < 0) {
            cru_remove_tree(tmp);
            return cru_err_wrap(rc, "checking out %s of %s", commit, name);
        }
        from = repo_dir;
        rc = checkout(dl, from, commit, dest);
    } else {
        rc = checkout(dl, from, commit, dest);
    }
    if (from != source)
        cru_remove_tree(tmp);
    if (rc < 0) {
        /* DEST did not exist, so whatever is there now is this call's half-made checkout. */
        int saved_rc = rc;
        char msg[CRU_ERR_MAX];
        snprintf(msg, sizeof(msg), "%s", cru_err_msg());
        if (cru_remove_tree(dest) < 0)
            cru_err_wrap(CRU_EIO, "%s; cleaning up", msg);
        else
            cru_err_set(saved_rc, "%s", msg);
        return cru_err_wrap(saved_rc, "checking out %s of %s into %s", commit, name, dest);
    }
    return 0;
}

int agt_git_checkout(const char *source, const char *commit, const char *dest)
{
    return checkout_named(source, source, commit, dest);
}

/* The git directory of the repository folder DIRFD: its .git (a real folder), or DIRFD itself
 * when it has none (a bare repository). */
static int open_git_dir(int dirfd, const char *name, int *out)
{
    struct stat st;
    int fd = openat(dirfd, ".git", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        *out = fd;
        return 0;
    }
    if (errno == ENOENT) {
        if ((*out = fcntl(dirfd, F_DUPFD_CLOEXEC, 0)) < 0)
            return cru_err_sys("cannot reopen %s", name);
        return 0;
    }
    if (fstatat(dirfd, ".git", &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
        return cru_err_set(CRU_EUNSAFE,
                           "%s/.git is %s, not a folder: the repository must be wholly inside "
                           "its folder",
                           name, S_ISLNK(st.st_mode) ? "a symbolic link" : "a file (gitdir:)");
    return cru_err_sys("cannot open %s/.git", name);
}

/* Refuses a copied git directory GITDIR that points libgit2 at another repository. */
static int git_dir_self_contained(const char *gitdir, const char *name)
{
    static const char *const borrowed[] = { "objects/info/alternates", "commondir", NULL };
    char p[PATH_MAX];
    struct stat st;
    for (size_t i = 0; borrowed[i]; i++) {
        snprintf(p, sizeof(p), "%s/%s", gitdir, borrowed[i]);
        if (lstat(p, &st) == 0)
            return cru_err_set(CRU_EUNSAFE,
                               "%s: the repository names another repository's objects (%s); "
                               "it must be wholly inside its folder",
                               name, borrowed[i]);
    }
    return 0;
}

int agt_git_checkout_fd(int srcfd, const char *name, const char *commit, const char *dest)
{
    char tmp[] = "/tmp/crucible-gitsrc-XXXXXX", src[sizeof(tmp) + 8];
    struct stat st;
    int rc, gitfd = -1;

    if (fstat(srcfd, &st) < 0)
        return cru_err_sys("cannot inspect %s", name);
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
        return cru_err_set(CRU_EUNSAFE, "%s is not a repository folder or a bundle", name);
    if (!mkdtemp(tmp))
        return cru_err_sys("checking out %s of %s: cannot make a temporary folder", commit, name);
    snprintf(src, sizeof(src), "%s/src", tmp);
    /* The copy is this process's own: libgit2 then opens files by path only inside it. */
    if (S_ISREG(st.st_mode))
        rc = cru_copy_tree_fd(srcfd, name, src, AGT_GIT_BUNDLE_MAX, 0);
    else if ((rc = open_git_dir(srcfd, name, &gitfd)) == 0 &&
             (rc = cru_copy_tree_fd(gitfd, name, src, AGT_GIT_SOURCE_MAX, CRU_COPY_NO_LINKS)) == 0)
        rc = git_dir_self_contained(src, name);
    if (gitfd >= 0)
        close(gitfd);
    if (rc < 0)
        cru_err_wrap(rc, "checking out %s of %s", commit, name);
    else
        rc = checkout_named(src, name, commit, dest);
    int saved = rc;
    char msg[CRU_ERR_MAX];
    snprintf(msg, sizeof(msg), "%s", cru_err_msg());
    if (cru_remove_tree(tmp) < 0 && rc == 0)
        return cru_err_code();
    if (saved < 0)
        cru_err_set(saved, "%s", msg);
    return saved;
}

void agt_git_files_free(char **files, size_t n)
{
    if (!files)
        return;
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
}

/* Every path a delta touches, sorted and unique: both sides of each delta, so that a file
 * replaced by a directory or moved lists both names. */
static int changed_files(const struct cru_libgit2 *dl, git_diff *diff, char ***out, size_t *n_out)
{
    size_t nd = dl->git_diff_num_deltas(diff), n = 0;
    char **files = NULL;
    if (nd > 0 && !(files = calloc(2 * nd, sizeof(*files))))
        return cru_err_set(CRU_ENOMEM, "out of memory listing %zu changed files", nd);
    for (size_t i = 0; i < nd; i++) {
        const git_diff_delta *d = dl->git_diff_get_delta(diff, i);
        const char *paths[2] = { d->old_file.path, d->new_file.path };
        for (int k = 0; k < 2; k++) {
            if (!paths[k] || (k == 1 && paths[0] && strcmp(paths[0], paths[1]) == 0))
                continue;
            if (!(files[n] = strdup(paths[k]))) {
                agt_git_files_free(files, n);
                return cru_err_set(CRU_ENOMEM, "out of memory listing changed files");
            }
            n++;
        }
    }
    if (n > 1)
        qsort(files, n, sizeof(*files), cru_str_cmp_ptr);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u > 0 && strcmp(files[u - 1], files[i]) == 0)
            free(files[i]);
        else
            files[u++] = files[i];
    }
    *out = files;
    *n_out = u;
    return 0;
}

struct print_ctx {
    struct cru_buf *patch;
    size_t start, max;
    int rc; /* set when the callback stopped the print */
};

/* Formats like git_diff_to_buf(): diff lines get their origin character, headers and the
 * binary marker come whole. Stops at the bound, before anything over it is appended. */
static int print_line(const git_diff_delta *delta, const git_diff_hunk *hunk,
                      const git_diff_line *line, void *payload)
{
    struct print_ctx *ctx = payload;
    (void)delta;
    (void)hunk;
    bool origin = line->origin == GIT_DIFF_LINE_CONTEXT || line->origin == GIT_DIFF_LINE_ADDITION ||
                  line->origin == GIT_DIFF_LINE_DELETION;
    size_t used = ctx->patch->len - ctx->start, need = line->content_len + origin;
    if (need > ctx->max || used > ctx->max - need) {
        ctx->rc = cru_err_set(CRU_ELIMIT, "the patch is larger than %zu bytes", ctx->max);
        return -1;
    }
    if ((origin && (ctx->rc = cru_buf_putc(ctx->patch, line->origin)) < 0) ||
        (ctx->rc = cru_buf_append(ctx->patch, line->content, line->content_len)) < 0)
        return -1;
    return 0;
}

/* Opens WORKDIR/.git as the repository and WORKDIR as its working tree, whatever the agent
 * wrote into .git/config (core.worktree) or put at .git (a "gitdir:" file, a link). */
static int open_workspace(const struct cru_libgit2 *dl, const char *workdir, git_repository **out)
{
    char gitdir[4096];
    struct stat st;
    int grc;
    if (snprintf(gitdir, sizeof(gitdir), "%s/.git", workdir) >= (int)sizeof(gitdir))
        return cru_err_set(CRU_ELIMIT, "path longer than %zu bytes", sizeof(gitdir) - 1);
    if (lstat(gitdir, &st) < 0)
        return cru_err_sys("cannot inspect %s", gitdir);
    if (!S_ISDIR(st.st_mode))
        return cru_err_set(CRU_EUNSAFE, "%s is not a directory", gitdir);
    if ((grc = dl->git_repository_open_bare(out, gitdir)) < 0)
        return git_fail(dl, grc, "cannot open %s", gitdir);
    if ((grc = dl->git_repository_set_workdir(*out, workdir, 0)) < 0) {
        dl->git_repository_free(*out);
        *out = NULL;
        return git_fail(dl, grc, "cannot use %s as the working tree", workdir);
    }
    return 0;
}

static int diff(const struct cru_libgit2 *dl, const char *workdir, const char *base, size_t max,
                struct cru_buf *patch, char ***files, size_t *n_files)
{
    git_repository *repo = NULL;
    git_object *obj = NULL;
    git_tree *tree = NULL;
    git_diff *d = NULL;
    int rc, grc;

    if ((rc = open_workspace(dl, workdir, &repo)) < 0)
        return rc;
    if ((grc = dl->git_revparse_single(&obj, repo, base)) < 0) {
        rc = git_fail(dl, grc, "cannot resolve %s", base);
        goto done;
    }
    if ((grc = dl->git_object_peel((git_object **)&tree, obj, GIT_OBJECT_TREE)) < 0) {
        rc = git_fail(dl, grc, "%s does not name a commit", base);
        goto done;
    }
    git_diff_options opts;
    dl->git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    opts.flags = GIT_DIFF_INCLUDE_UNTRACKED | GIT_DIFF_RECURSE_UNTRACKED_DIRS |
                 GIT_DIFF_SHOW_UNTRACKED_CONTENT;
    if ((grc = dl->git_diff_tree_to_workdir(&d, repo, tree, &opts)) < 0) {
        rc = git_fail(dl, grc, "cannot compare the working tree with %s", base);
        goto done;
    }
    struct print_ctx ctx = { patch, patch->len, max, 0 };
    if ((grc = dl->git_diff_print(d, GIT_DIFF_FORMAT_PATCH, print_line, &ctx)) < 0) {
        rc = ctx.rc < 0 ? ctx.rc : git_fail(dl, grc, "cannot format the patch");
        goto done;
    }
    rc = changed_files(dl, d, files, n_files);
done:
    dl->git_diff_free(d);
    dl->git_tree_free(tree);
    dl->git_object_free(obj);
    dl->git_repository_free(repo);
    return rc;
}

int agt_git_diff_max(const char *workdir, const char *base, size_t max, struct cru_buf *patch,
                     char ***files, size_t *n_files)
{
    const struct cru_libgit2 *dl;
    size_t start = patch->len;
    int rc;
    *files = NULL;
    *n_files = 0;
    if ((rc = cru_dl_libgit2(&dl)) < 0)
        return cru_err_wrap(rc, "diffing %s against %s", workdir, base);
    if ((rc = diff(dl, workdir, base, max, patch, files, n_files)) < 0) {
        /* Nothing half-appended: the patch is as the caller gave it. */
        patch->len = start;
        if (patch->data)
            patch->data[start] = '\0';
        return cru_err_wrap(rc, "diffing %s against %s", workdir, base);
    }
    return 0;
}

int agt_git_diff(const char *workdir, const char *base, struct cru_buf *patch, char ***files,
                 size_t *n_files)
{
    return agt_git_diff_max(workdir, base, AGT_GIT_PATCH_MAX, patch, files, n_files);
}
