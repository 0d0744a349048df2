/* runner: one episode from image to recorded reward, and the agents that act in it.
 *
 *     image -> workspace (setup run) -> recorder episode -> sandbox session -> agent loop
 *           -> artifact -> reward in a fresh checker sandbox -> reward record -> end record
 *
 * The trajectory file is opened first, so that whatever fails later (the workspace, the
 * sandbox, the agent, the scoring) ends the episode with the message in its end record: the
 * file is always valid and complete. Budgets: turns (the scaffold's and the image's, the
 * smaller), sampled tokens (the scaffold's), wall time (the image's) and memory (a sandbox the
 * OOM killer spent).
 *
 * A failure ends the episode as one of two kinds, sorted in one place (runner.c, fault_of):
 * the agent's doing (status agent_error: a plugin that crashes or fails, an artifact that
 * breaks a bound or cannot be read when it is taken, listed or scored) is scored like any end,
 * with 0 when its artifact cannot be scored; the environment's (status error: the image's
 * setup, the sandbox, the engine, the recorder, crucible itself) has no reward, and a run
 * retries it and leaves it out of its means. A tool call the tools refuse (malformed, over a
 * size limit) is neither: the agent reads why and goes on.
 *
 * Agents ("--agent A"):
 *   oracle          applies the image's reference solution (through the bash tool)
 *   scripted:FILE   replays a JSON list of tool calls [{"tool", "arguments", "id"?}], one a turn
 *   plugin:PATH.so  a white-box agent against include/crucible/agent.h
 *   exec:CMD        a black-box program run in the sandbox (sh -c CMD) as one turn
 *   model           the built-in scaffold on a model (needs a generator; see agt_generator)
 */
#ifndef CRU_AGENT_RUNNER_H
#define CRU_AGENT_RUNNER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "agent/check.h"
#include "agent/image.h"
#include "agent/scaffold.h"
#include "recorder/format.h"
#include "sandbox/sandbox.h"

enum agt_agent_kind {
    AGT_AGENT_ORACLE,
    AGT_AGENT_SCRIPTED,
    AGT_AGENT_PLUGIN,
    AGT_AGENT_EXEC,
    AGT_AGENT_MODEL,
};

struct agt_agent; /* an agent ready to run episodes (a loaded script, an opened plugin) */

/* Parses and loads an agent spec ("oracle", "scripted:FILE", ...): a script is read and
 * checked, a plugin opened and its ABI version checked, once for all episodes. */
int agt_agent_load(const char *spec, struct agt_agent **out);
void agt_agent_free(struct agt_agent *a);
enum agt_agent_kind agt_agent_kind(const struct agt_agent *a);
/* The spec as given ("plugin:./x.so"): what the episode header records. */
const char *agt_agent_name(const struct agt_agent *a);

/* How an episode samples from a model: the model agent's engine (and a plugin's generate)
 * reach it only through this, so the runner does not depend on the model module. */
struct agt_generator {
    void *ctx;
    /* Samples up to MAX_TOKENS after CONTEXT (N_CONTEXT ids): the ids and their behavior
     * log-probs into IDS and LOGPROBS (room for CAP), the count into *N_OUT, and a static
     * finish reason ("stop", "length") into *FINISH. */
    int (*generate)(void *ctx, const int32_t *context, size_t n_context, uint32_t max_tokens,
                    uint64_t seed, int32_t *ids, float *logprobs, size_t cap, size_t *n_out,
                    const char **finish);
    const char *model_id, *model_digest, *tokenizer_digest, *chat_template;
    uint64_t policy_version;
    float temperature, top_p; /* the sampling parameters, for the episode header */
    uint32_t top_k;
};

struct agt_model; /* agent/model_agent.h: the model agent's checkpoint, tokenizer and engine */

struct agt_episode_opts {
    const struct agt_image *img;
    const struct agt_scaffold *sc;
    const struct agt_agent *agent;
    const struct agt_generator *gen; /* NULL: no model in this run (or the model's, below) */
    const struct agt_model *model;   /* the model agent's model; NULL: none */
    const char *path;                /* the trajectory file (replaced if it exists) */
    const char *episode_id;
    const char *group_id; /* NULL: the episode id */
    uint64_t seed;
    uint64_t max_turns; /* 0: the scaffold's and the image's, the smaller */
    /* The most files and folders the final workspace may hold (0: 100000); more makes the
     * artifact unscorable, and the episode scores 0. */
    uint64_t max_artifact_files;
    const struct agt_check_opts *check;
    const atomic_bool *cancel; /* set: end the episode (status cancelled) at the next turn */
    FILE *live;                /* the transcript as it is recorded, or NULL */
    bool live_color;
};

struct agt_episode_result {
    enum rec_status status;
    char message[512];
    bool scored;     /* a reward was recorded: the artifact's score, or 0 when it was unscorable */
    bool unscorable; /* status agent_error: the artifact could not be scored (MESSAGE says why) */
    double reward;
    json_t *breakdown; /* rwd_result_json(), or NULL */
    uint64_t turns, tool_calls;
    uint64_t wall_ms;
    bool sandboxed;          /* the agent's sandbox was made: SANDBOX says how it held */
    struct sbx_info sandbox; /* what its limits were enforced with (sandbox/sandbox.h) */
    /* Where the wall time went, in milliseconds (for benchmarks and diagnostics). */
    struct {
        double workspace; /* the workspace made twice, setup run, rootfs prepared */
        double sandbox;   /* the session sandbox created and destroyed */
        double agent;     /* the agent's loop: tools and model calls, their records included */
        double artifact;  /* the changed files listed */
        double reward;    /* scoring in the checker sandbox */
        double record;    /* the trajectory opened, its header, reward and end written, synced */
    } ms;
};

/* Runs one episode. Returns 0 when the trajectory was written complete, whatever the episode's
 * status (see RES); a negative code only when even that failed. Release RES with
 * agt_episode_result_free(). */
int agt_episode_run(const struct agt_episode_opts *o, struct agt_episode_result *res);
void agt_episode_result_free(struct agt_episode_result *res);

#endif
