/* engine: many sequences, one model: thread-safe submission and batched steps.
 *
 *     struct mdl_engine *e = NULL;
 *     mdl_engine_new(&e, model, &opts);           one scheduler thread and a backend
 *     struct mdl_request r = MDL_REQUEST_INIT;    ids in
 *     r.prompt = ids; r.n_prompt = n;
 *     struct mdl_result res;
 *     mdl_engine_generate(e, &r, &res);           from any thread; blocks until done
 *     res.ids, res.logprobs, res.finish           ids, behavior log-probs, why it stopped
 *     mdl_result_free(&res);
 *
 * Requests from any number of threads (the episodes of a run) wait in one queue. The scheduler
 * admits them while the backend's KV pool (model/kvpool) has room, and each step advances every
 * admitted sequence by one backend call: prompts are prefilled (in chunks of at most
 * max_step_tokens a step, mixed with the decoding sequences) and running sequences decode one
 * token, side by side. The cache is paged: full blocks are kept in a prefix index after their
 * sequence ends, so a prompt that begins with tokens seen before (a group's shared prompt, an
 * episode's earlier turns, a scaffold's system prompt) starts from the cached blocks; while one
 * sequence prefills a prefix, those that share it wait for it rather than compute it again.
 * When a step needs a block and none is free, the most recently admitted sequence is preempted:
 * its blocks return to the pool (its full ones stay in the index) and it is queued again, to
 * resume from its prompt and what it generated. A sequence's result depends only on its prompt,
 * its sampling parameters and its seed, never on what ran beside it or on preemption. Text is
 * not this module's business: stop strings are checked by a hook the caller gives (it decodes
 * ids with whatever tokenizer it uses).
 */
#ifndef CRU_MODEL_ENGINE_H
#define CRU_MODEL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/backend.h"
#include "model/model.h"
#include "model/sample.h"

#define MDL_ENGINE_OPTS_VERSION 2
#define MDL_MAX_PROMPT          (1u << 24)

struct mdl_engine_opts {
    uint32_t version;                     /* MDL_ENGINE_OPTS_VERSION */
    const struct mdl_backend *backend;    /* NULL: mdl_backend_cpu */
    struct mdl_backend_opts backend_opts; /* max_seqs: sequences advanced per step;
                                             max_step_tokens: tokens per step, prompts in
                                             chunks */
    bool no_prefix_cache;                 /* compute every prompt in full (for comparison) */
    /* Prompts held back while sequences decode, until this many prompt tokens wait or a prompt
     * has waited prefill_wait steps, so that the slow long steps are few (0 and 0: the backend
     * decides; a backend whose short steps are fast gets 2048 tokens and 16 steps, the CPU
     * none: prompts join every step). */
    uint32_t prefill_batch, prefill_wait;
};

#define MDL_ENGINE_OPTS_INIT                                                                       \
    {                                                                                              \
        MDL_ENGINE_OPTS_VERSION, NULL, MDL_BACKEND_OPTS_INIT, false, 0, 0                          \
    }

/* Called on the engine's thread after each sampled token with every id generated so far; sets
 * *stop to end the sequence (finish "stop_string"). It must be quick, must not call into the
 * engine, and returns 0 or a negative CRU_E* code (which fails the request). */
typedef int (*mdl_stop_fn)(void *ctx, const int32_t *ids, size_t n, bool *stop);

struct mdl_request {
    const int32_t *prompt; /* copied at submission */
    size_t n_prompt;       /* 1 .. MDL_MAX_PROMPT and less than the context */
    struct mdl_sampling sampling;
    mdl_stop_fn stop_fn; /* optional */
    void *stop_ctx;
};

#define MDL_REQUEST_INIT                                                                           \
    {                                                                                              \
        NULL, 0, MDL_SAMPLING_INIT, NULL, NULL                                                     \
    }

enum mdl_finish {
    MDL_FINISH_NONE = 0,
    MDL_FINISH_STOP,        /* a stop id (or eos) was sampled; it is the last id */
    MDL_FINISH_STOP_STRING, /* the stop hook said so */
    MDL_FINISH_LENGTH,      /* max_tokens generated */
    MDL_FINISH_CONTEXT,     /* the context is full */
    MDL_FINISH_CANCELLED,   /* the engine was freed first */
    MDL_FINISH_ERROR,       /* the backend or the hook failed: see the wait's error */
};

const char *mdl_finish_name(enum mdl_finish f);

struct mdl_result {
    int32_t *ids;        /* the sampled ids, in order */
    float *logprobs;     /* each id's behavior log-prob (see model/sample.h) */
    float *raw_logprobs; /* each id's log-prob under the model; NULL unless asked */
    struct mdl_alt *top; /* n * n_top alternatives; NULL unless asked */
    uint32_t n_top;
    size_t n;
    enum mdl_finish finish;
    uint32_t n_prompt, n_cached; /* prompt tokens, and those found in the KV cache already */
    uint64_t queue_ns;           /* submission to admission */
    uint64_t prefill_ns;         /* admission to the first token */
    uint64_t decode_ns;          /* the first token to the last */
};

struct mdl_engine;
struct mdl_ticket;

/* Starts an engine over MODEL (borrowed: it must outlive the engine). */
int mdl_engine_new(struct mdl_engine **out, const struct mdl_model *model,
                   const struct mdl_engine_opts *o);
/* Cancels what is queued or running (finish "cancelled"), stops the thread, frees. */
void mdl_engine_free(struct mdl_engine *e);

/* Queues R (its prompt is copied); *out is waited on with mdl_ticket_wait(). Thread-safe. */
int mdl_engine_submit(struct mdl_engine *e, const struct mdl_request *r, struct mdl_ticket **out);
/* Waits for T, moves its result into OUT (mdl_result_free) and frees T. Returns the request's
 * error when it failed (OUT then holds what was generated before, finish "error"). */
int mdl_ticket_wait(struct mdl_ticket *t, struct mdl_result *out);
/* Submit and wait. */
int mdl_engine_generate(struct mdl_engine *e, const struct mdl_request *r, struct mdl_result *out);

void mdl_result_free(struct mdl_result *r);

/* Counters since the engine started. */
struct mdl_engine_stats {
    uint64_t steps;
    uint64_t prompt_tokens;  /* prompt tokens requested (resumed sequences count again) */
    uint64_t prefill_tokens; /* prompt tokens computed */
    uint64_t cached_tokens;  /* prompt tokens found in the cache */
    uint64_t decode_tokens, max_batch_seen;
    uint64_t preemptions;              /* sequences sent back to the queue for want of blocks */
    uint64_t evictions;                /* cached blocks given up for new ones */
    uint32_t blocks, block_tokens;     /* the pool */
    uint32_t blocks_used, blocks_peak; /* held by running sequences: now, and at most */
    uint32_t blocks_cached;            /* in the prefix index, held by no sequence */
    uint64_t busy_ns;                  /* time spent in backend steps */
    uint64_t held_steps;               /* decode steps that held waiting prompts back */
};
void mdl_engine_stats(struct mdl_engine *e, struct mdl_engine_stats *out);
/* The backend's name ("cpu", "cuda"). */
const char *mdl_engine_backend_name(const struct mdl_engine *e);
/* What the backend offers (the pool, the context in effect). */
void mdl_engine_limits(struct mdl_engine *e, struct mdl_backend_limits *out);

#endif
