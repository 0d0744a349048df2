/* gitws: coding-task workspaces as git repositories at a base commit, and the coding artifact
 * (the diff of the working tree against that commit).
 *
 *     if (agt_git_checkout(image_repo, "v1.0", ws) < 0) ...      the agent works in ws ...
 *     struct cru_buf patch = CRU_BUF_INIT;
 *     char **files; size_t n;
 *     if (agt_git_diff(ws, base_id, &patch, &files, &n) < 0) ...
 *     agt_git_files_free(files, n);
 *     cru_buf_free(&patch);
 */
#ifndef CRU_AGENT_GITWS_H
#define CRU_AGENT_GITWS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* The largest patch agt_git_diff() produces; a larger one is CRU_ELIMIT, never truncated. */
#define AGT_GIT_PATCH_MAX ((size_t)64 << 20)

/* Makes DEST, which must not exist, a working tree with its own .git whose HEAD is detached at
 * COMMIT and whose files are COMMIT's tree. SOURCE is a local repository, bare or not; COMMIT a
 * full or abbreviated hex id or a name that SOURCE resolves ("main", "v1.0", "HEAD~2"). The
 * objects are copied, never hard-linked, so the workspace shares no file with SOURCE. On
 * failure DEST is removed
 * (when this call created it) and the error names SOURCE, COMMIT and libgit2's reason.
 * SOURCE may also be a git bundle file ("git bundle create"; v2, or v3 with SHA-1) without
 * prerequisites. */
int agt_git_checkout(const char *source, const char *commit, const char *dest);

/* The largest repository folder copied in by agt_git_checkout_fd(). */
#define AGT_GIT_SOURCE_MAX ((uint64_t)1 << 30)

/* The same from the repository folder or bundle file open (not O_PATH) at SRCFD, which comes
 * from a task image and may be hostile; NAME labels it in messages. Nothing is read through a
 * path that could lead out of it: a bundle is copied from the descriptor, and a folder's git
 * directory (its .git, which must be a real folder, or the folder itself when bare) is copied
 * from the descriptor into a private folder that libgit2 then opens. A git directory holding a
 * symlink, borrowing objects from another repository (objects/info/alternates) or sharing
 * another's (commondir), and a .git that is a link or a "gitdir:" file, are CRU_EUNSAFE: each
 * would make libgit2 read a repository outside the image. */
int agt_git_checkout_fd(int srcfd, const char *name, const char *commit, const char *dest);

/* A git bundle's header: the refs it carries and where its pack starts. */
#define AGT_GIT_BUNDLE_MAX      ((size_t)1 << 30) /* the largest bundle read */
#define AGT_GIT_BUNDLE_LINE_MAX 1024
#define AGT_GIT_BUNDLE_REFS_MAX 256

struct agt_git_bundle_ref {
    char oid[41];
    char name[AGT_GIT_BUNDLE_LINE_MAX];
};

struct agt_git_bundle {
    struct agt_git_bundle_ref refs[AGT_GIT_BUNDLE_REFS_MAX];
    size_t n_refs;
    size_t pack_offset; /* of "PACK" */
};

/* Parses the header of a bundle (DATA, LEN: the whole file or its start). A bundle with
 * prerequisites (a thin bundle) or with capabilities other than SHA-1 objects is
 * CRU_EUNSUPPORTED; anything malformed CRU_EPARSE, too many or too long lines CRU_ELIMIT. */
int agt_git_bundle_header(const void *data, size_t len, struct agt_git_bundle *out);

/* Appends to PATCH the unified diff of the working tree WORKDIR against commit BASE: changes
 * to tracked files, deletions, and untracked files that .gitignore does not exclude (with
 * their contents); the index is not consulted, so staging changes nothing. Binary changes are
 * libgit2's "Binary files a/X and b/X differ" line, without content. Renames are not
 * detected: a moved file is a deletion plus an addition. *FILES (sorted, unique, each path
 * relative to WORKDIR) lists every changed path, old and new; free it with
 * agt_git_files_free(). A patch over AGT_GIT_PATCH_MAX bytes is CRU_ELIMIT. On failure PATCH
 * is as it was and *FILES is NULL.
 *
 * WORKDIR is what the agent controls, .git included: its core.worktree and a .git file that
 * points elsewhere are ignored or refused, so the diff never reads outside WORKDIR. Pass BASE
 * as a full id: a name would be resolved through refs the agent could have rewritten. */
int agt_git_diff(const char *workdir, const char *base, struct cru_buf *patch, char ***files,
                 size_t *n_files);

/* The same with a caller-chosen bound MAX on the patch (tests, tighter budgets). */
int agt_git_diff_max(const char *workdir, const char *base, size_t max, struct cru_buf *patch,
                     char ***files, size_t *n_files);

/* Frees a list from agt_git_diff(); accepts NULL. */
void agt_git_files_free(char **files, size_t n);

#endif
