/* rollout: many episodes at once, released in windowed-FIFO order into a crash-safe index.
 *
 * The episodes of a run are T0..TN-1: for each image in the order given, its K repeats
 * (episode id IMAGE-rK, group id IMAGE, seed SEED+K). A shard I/N keeps the episodes whose
 * number is I modulo N, so N machines split one run deterministically. Up to JOBS episodes
 * run at once, started in order. A finished episode is released (appended to OUT/index.jsonl)
 * only inside the window of W = max(1, ceil(F * N)) episodes that starts at the oldest
 * unreleased one; the window moves when its head is released. F = 1 releases in completion
 * order, a window of 1 is strict FIFO. Each episode's trajectory (OUT/episodes/ID.traj) is
 * complete and synced before its index line is written, and each line is appended whole and
 * synced, so a trainer can tail the index.
 *
 * An episode the environment failed (status error, or a trajectory that could not be written)
 * is run again at once, as the same episode (its id, seed and file), up to MAX_ATTEMPTS times
 * in all; only the last attempt is released, so the index holds one line per episode. One that
 * fails every attempt is released as it ended: counted as an environment error, left out of
 * every mean and pass@k. An episode the agent failed (agent_error) is never retried: it counts
 * with its reward, 0 when its artifact could not be scored.
 *
 * Interrupting (the CANCEL flag) starts no new episode, ends running ones at their next turn,
 * and releases nothing more; running the same command again with the same OUT resumes: the
 * episodes already in the index are skipped. A torn last index line (a crash while writing it)
 * is cut off on resume. A crash during a retry leaves no line for the episode, so a resumed run
 * runs it again from its first attempt.
 */
#ifndef CRU_AGENT_ROLLOUT_H
#define CRU_AGENT_ROLLOUT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "agent/runner.h"

struct agt_rollout_opts {
    const struct agt_image *const *images;
    size_t n_images;
    const struct agt_scaffold *sc;
    const struct agt_agent *agent;
    const struct agt_generator *gen;
    const struct agt_model *model; /* the model agent's (and plugins' generate) */
    const struct agt_check_opts *check;
    const char *out;        /* the run folder (created) */
    unsigned jobs;          /* episodes at once; 0: 1 */
    unsigned repeat;        /* episodes per image, one group; 0: 1 */
    double window;          /* F in (0, 1]; 0: 0.3 */
    unsigned shard, shards; /* this machine's slice I of N; shards 0: no sharding */
    uint64_t seed;
    uint64_t max_turns;
    unsigned max_attempts; /* tries of an episode the environment failed; 0: 3 (2 retries) */
    const atomic_bool *cancel;
    bool progress; /* a progress line with ETA on stderr */
    /* The episode runner: agt_episode_run when NULL (tests replace it). */
    int (*run_episode)(void *ctx, const struct agt_episode_opts *o, struct agt_episode_result *r);
    void *run_ctx;
};

struct agt_rollout_summary {
    uint64_t episodes;           /* in this shard */
    uint64_t done;               /* released: now or by an earlier run (resumed) */
    uint64_t resumed;            /* of which an earlier run did */
    uint64_t failed;             /* episodes whose trajectory could not be written */
    uint64_t environment_errors; /* released after failing every attempt (failed included) */
    uint64_t retries;            /* attempts beyond the first, over the released episodes */
    uint64_t window;             /* W */
    uint64_t max_distance;       /* the largest out-of-order release seen: index - head */
    /* Over the released episodes that are not environment errors, an agent_error without a
     * reward counting 0. */
    double mean_reward;
    uint64_t wall_ms;
    bool interrupted;
    json_t *json; /* the summary object also written to OUT/summary.json */
};

int agt_rollout(const struct agt_rollout_opts *o, struct agt_rollout_summary *out);
void agt_rollout_summary_free(struct agt_rollout_summary *s);

/* The windowed-FIFO release rule on its own, for tests and for the scheduler: given which of
 * N episodes are DONE and RELEASED and the window W, releases every done episode inside the
 * window, moving the window as its head is released. The released episodes go to ORDER and
 * their distances (index - head at release) to DISTANCE (each NULL or room for N). Returns the
 * number released; *HEAD is the oldest unreleased episode afterwards, and *MAX_DISTANCE grows
 * to the largest distance seen. */
size_t agt_window_release(const bool *done, bool *released, size_t n, size_t w, size_t *head,
                          size_t *order, size_t *distance, uint64_t *max_distance);

#endif
