/* check: scoring a workspace in checker sandboxes, and checking that an image is sound (its
 * reference solution scores 1, its untouched workspace less).
 *
 *     struct rwd_result res;
 *     agt_score(img, final_ws, pristine_ws, NULL, &res);
 *
 * agt_score freezes the final workspace (the agent's own processes are gone by then): a copy
 * of bytes only, with links only to its own files and no compiled caches (lib/fs.h,
 * CRU_COPY_FREEZE); restores the image's protected paths in it from the pristine workspace
 * and notes which the agent changed; then runs the reward spec's checks (reward/score.h).
 * File checks read the frozen copy. Each check that runs commands gets a checker sandbox of
 * its own (sandbox.h, sbx_opts.checker): the image's rootfs, memory and disk limits, no
 * network but loopback, an overlay of the frozen copy owned by the artifact identity,
 * hidden/ read-only at /hidden and an empty /results, both the checker identity's alone; its
 * report is read from /results by the host. docs/images.md has the threat model.
 *
 * What is whose fault: an artifact that cannot be scored (over 100,000 entries, 4 GiB, or
 * folders 256 deep) is CRU_ELIMIT, and only that: the runner scores it 0, as the agent's
 * doing. Whatever the artifact's code does inside a check (running it out of memory or time,
 * killing the checker, filling the disk) fails that check, never agt_score. Any other error is
 * the environment's.
 */
#ifndef CRU_AGENT_CHECK_H
#define CRU_AGENT_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/image.h"
#include "reward/score.h"

struct agt_check_opts {
    const char *cache;      /* the rootfs cache (NULL: the default) */
    const char *state_root; /* sandboxes' state (NULL: the default) */
};

/* Scores FINAL_WS (a workspace folder, left unchanged) against IMG's reward spec; PRISTINE_WS
 * is the image's untouched workspace (for protected paths). ROOTFS is the prepared rootfs
 * folder or NULL for the host profile. */
int agt_score(const struct agt_image *img, const char *final_ws, const char *pristine_ws,
              const char *rootfs, const struct agt_check_opts *opts, struct rwd_result *res);

/* A sandbox over WS (an overlay: WS stays as it is, the changes live on the sandbox's bounded
 * disk) with IMG's rootfs, memory and disk limits and a pids limit, the folder HIDDEN at
 * /hidden and SOLUTION at /solution (each read-only, when not NULL; each must be traversable
 * by the sandbox's unprivileged uid: see agt_solution_stage), and a lifetime of WALL_MS. */
struct sbx;
int agt_sandbox_open(const struct agt_image *img, const char *ws, const char *rootfs,
                     const char *hidden, const char *solution, uint64_t wall_ms,
                     const struct agt_check_opts *opts, struct sbx **out);

/* Destroys SB (every process in it ends) and copies the final state of its workspace to DEST,
 * which must not exist: folders, regular files (permission bits & 0777: never a setuid or
 * setgid bit) and links, without devices, FIFOs or sockets. SB is gone whatever the result. */
int agt_sandbox_take(struct sbx *sb, const char *dest);

/* Copies IMG's solution folder into a fresh scratch folder that a sandbox can traverse
 * (0711), whatever the modes of the folders above the image. *DIR is the copy (bind it at
 * /solution); *SCRATCH is what to remove (cru_remove_tree) and free afterwards. */
int agt_solution_stage(const struct agt_image *img, char **scratch, char **dir);

/* Runs IMG's setup commands in a sandbox over WS and, when SOLVE, applies the reference
 * solution after them; the result then replaces WS. A failing command is CRU_EFAILED
 * with its exit status and the end of its output. */
int agt_prepare_workspace(const struct agt_image *img, const char *ws, const char *rootfs,
                          bool solve, const struct agt_check_opts *opts);

struct agt_image_check {
    bool ran;      /* both scores were computed */
    double oracle; /* the reward of the reference solution */
    double noop;   /* the reward of the untouched workspace */
    bool pass;     /* oracle == 1 and noop < 1 */
    char *error;   /* why it did not run, or NULL */
    struct rwd_result oracle_res, noop_res;
};

/* Checks IMG: scores its reference solution (the oracle) and its untouched workspace (the
 * no-op). Returns 0 when both were scored (see OUT->pass), a negative code when they could not
 * be (OUT->error says why). Release OUT with agt_image_check_free(). */
int agt_image_check(const struct agt_image *img, const struct agt_check_opts *opts,
                    struct agt_image_check *out);
void agt_image_check_free(struct agt_image_check *c);

#endif
