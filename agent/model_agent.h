/* model_agent: the built-in scaffold on a local model (`--agent model --model DIR`).
 *
 * A loaded checkpoint (model/model.h), its tokenizer and chat template (model/tokenizer.h,
 * model/chat.h) and one engine (model/engine.h) serve every episode of a run; the engine batches
 * the episodes' requests. In an episode the context is kept as token ids, token-exactly:
 *
 *   1. The system prompt (the scaffold's), the task's prompt and the scaffold's tools are
 *      rendered with the chat template and encoded: the first model call's prompt.
 *   2. The engine samples a completion; its ids and behavior log-probs are appended to the
 *      context unchanged and recorded as a model call, with the text decoded from them, the
 *      reasoning and the tool calls parsed from it (strictly: a malformed call becomes an error
 *      observation for the model, never a crash).
 *   3. Each tool call runs through the scaffold's tools; its observation becomes a tool message.
 *   4. The new messages are rendered incrementally and appended to the context; where the
 *      template rewrites history (Qwen3 drops earlier reasoning), the context is cut where it
 *      still agrees and a fork is recorded, so no token of unknown origin is ever trained on.
 *
 * The episode ends when the model calls submit, answers without calling a tool, or a budget
 * runs out (turns, sampled tokens, wall time, the model's context).
 */
#ifndef CRU_AGENT_MODEL_AGENT_H
#define CRU_AGENT_MODEL_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/runner.h"
#include "agent/tools.h"
#include "model/device.h"

struct agt_model;

#define AGT_MODEL_OPTS_VERSION 1
struct agt_model_opts {
    int version;       /* AGT_MODEL_OPTS_VERSION */
    const char *dir;   /* the checkpoint folder, with tokenizer.json and tokenizer_config.json */
    float temperature; /* 0: greedy */
    float top_p;       /* 1: no nucleus truncation */
    uint32_t top_k;    /* 0: none */
    uint32_t max_call_tokens; /* sampled tokens per model call */
    uint32_t slots;           /* sequences the engine advances together (0: 8) */
    uint32_t threads;         /* CPU threads (0: every core) */
    /* Tests: sample with this instead of the engine (the checkpoint still gives the tokenizer,
     * the template and the context bound). */
    const struct agt_generator *sampler;
    struct mdl_device device; /* where the engine computes (model/device.h) */
    float gpu_memory;         /* cuda: the share of the device's memory it may take (0: 0.9) */
};
#define AGT_MODEL_OPTS_INIT                                                                        \
    {                                                                                              \
        AGT_MODEL_OPTS_VERSION, NULL, 1.0f, 1.0f, 0, 1024, 0, 0, NULL, MDL_DEVICE_INIT, 0.0f       \
    }

/* Loads the checkpoint, its tokenizer and chat template, and starts the engine. */
int agt_model_open(struct agt_model **out, const struct agt_model_opts *o);
void agt_model_free(struct agt_model *m);

/* The model as a generator (for plugins' generate, and the episode header's fields). Borrowed:
 * valid while M is. */
const struct agt_generator *agt_model_generator(const struct agt_model *m);

/* The engine's counters as a JSON object for a run's summary (docs/model.md, "The engine"):
 * its backend, pool and the tokens it computed, found cached and decoded; NULL when M has no
 * engine (a test sampler) or out of memory. */
struct json_t;
struct json_t *agt_model_engine_json(const struct agt_model *m);

/* What an episode lends the model's loop. */
struct agt_model_env {
    struct agt_tools *tools; /* the scaffold's tools, recording into EP */
    struct rec_episode *ep;
    const struct agt_scaffold *sc;
    const char *prompt; /* the task's */
    uint64_t seed;
    uint64_t *turns, *sampled; /* counted here */
    bool (*stop)(void *ctx);   /* before each model call: a budget, the deadline, a cancel */
    void *ctx;
    /* How the loop ended, when it was not the model submitting. */
    bool ended;
    enum rec_status status;
    char message[512];
};

/* Runs the model's turns until it submits, answers without a tool, or STOP says so. Returns 0
 * (ENV says how it ended) or a negative code when the engine, a tool or the recorder failed. */
int agt_model_episode(const struct agt_model *m, struct agt_model_env *env);

#endif
