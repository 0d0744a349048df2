/* score: scoring an artifact against a reward spec.
 *
 * The checks run in a box (the agent layer makes it; see agent/check.h): each check that runs
 * commands gets a fresh checker sandbox of its own over its own copy of the agent's frozen
 * artifact, into which the hidden files came only after the agent stopped, and its report is
 * read from a folder the artifact cannot reach; file checks read the frozen artifact through
 * root-confined access, so a symlink planted by the agent never leads out of the workspace. A bad
 * artifact (a missing file, a corrupt XLSX, invalid UTF-8, a checker that hangs) fails its check
 * with a message; only a broken box is an error of rwd_score. The reward is deterministic for the
 * same artifact.
 */
#ifndef CRU_REWARD_SCORE_H
#define CRU_REWARD_SCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <jansson.h>

#include "lib/buf.h"
#include "reward/spec.h"

/* What a command run in the box did. */
struct rwd_exec {
    int exit_code; /* or 128 + signal */
    bool timed_out;
    bool oom;
    struct cru_buf out; /* stdout, up to the cap asked for */
    uint64_t out_total; /* bytes written to stdout, kept or not */
    struct cru_buf err; /* stderr, up to 64 KiB */
};

struct rwd_box {
    void *ctx;
    /* Before each check that runs commands (tests, command): a fresh environment for it alone
     * (agent/check: its own checker sandbox over its own copy of the artifact, an empty
     * /results). Returns 0 when ready. */
    int (*begin)(void *ctx, const struct rwd_check *ck);
    /* After that check, whatever happened: the environment is destroyed. */
    void (*end)(void *ctx);
    /* Runs ARGV (or, when NULL, SHELL with /bin/sh -c) in /workspace with a timeout, keeping
     * up to OUT_CAP bytes of stdout. Returns 0 when it ran, whatever its status. */
    int (*exec)(void *ctx, const char *const *argv, const char *shell, uint64_t timeout_ms,
                size_t out_cap, struct rwd_exec *res);
    /* Appends the report file PATH (under /results, where only the checker writes) as the
     * check's command left it, up to MAX bytes, to OUT: CRU_ENOENT when there is none,
     * CRU_ELIMIT when it is larger, another code when it is not a regular file. */
    int (*report)(void *ctx, const char *path, size_t max, struct cru_buf *out);
    /* Appends workspace file REL (a regular file of at most MAX bytes) to OUT: the artifact as
     * the agent left it, never as a check changed it. */
    int (*read)(void *ctx, const char *rel, size_t max, struct cru_buf *out);
    /* lstat of workspace path REL, likewise. */
    int (*stat)(void *ctx, const char *rel, struct stat *st);
};

/* The largest file a check reads. */
#define RWD_FILE_MAX ((size_t)64 << 20)

struct rwd_check_result {
    char *name;
    enum rwd_kind kind;
    bool passed;
    double score; /* in [0, 1] */
    char *message;
    uint64_t duration_ms;
};

struct rwd_result {
    double reward; /* in [0, 1] */
    bool all_passed;
    struct rwd_check_result *checks; /* one per check of the spec, in order */
    size_t n_checks;
    char **protected_changed; /* protected paths the agent changed, sorted */
    size_t n_protected_changed;
};

/* Runs every check of SPEC in BOX into RES (release with rwd_result_free()). CHANGED lists
 * the protected paths the agent changed (the caller restored them); with the spec's
 * protected_fail, any makes every check fail. Returns 0 when the checks ran, whatever their
 * outcome; a negative code only when the box is broken. */
int rwd_score(const struct rwd_spec *spec, const struct rwd_box *box, char *const *changed,
              size_t n_changed, struct rwd_result *res);

void rwd_exec_free(struct rwd_exec *e);

void rwd_result_free(struct rwd_result *res);

/* The result as JSON: {"reward", "all_passed", "protected_changed": [...], "checks":
 * [{"name", "kind", "passed", "score", "message", "duration_ms"}]}. A new reference. */
json_t *rwd_result_json(const struct rwd_result *res);

#endif
