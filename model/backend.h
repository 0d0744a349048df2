/* backend: the interface every forward implementation offers the engine.
 *
 * A backend holds a model's weights in whatever form it computes with and a KV cache of
 * N_SLOTS sequences. One call of forward() advances several sequences at once: each step names
 * its slot, the position its new tokens start at, and the tokens (a whole prompt, a single
 * decoded token, or anything between), and receives the logits of its last token (or of all of
 * them). A step whose position is below what the slot holds overwrites from there: that is how
 * a slot is reused for a new sequence that shares a prefix with the old one, or rewound. The
 * CPU backend (model/cpu.c) is the reference; the CUDA backend (kernels/) implements the same
 * table and is tested against it.
 */
#ifndef CRU_MODEL_BACKEND_H
#define CRU_MODEL_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

struct mdl_backend_opts {
    uint32_t version; /* MDL_BACKEND_OPTS_VERSION */
    uint32_t n_slots; /* sequences whose KV cache is kept at once */
    uint32_t max_ctx; /* tokens per slot; 0: the model's max_position_embeddings */
    uint32_t threads; /* CPU threads; 0: every online core */
};

#define MDL_BACKEND_OPTS_VERSION 1
#define MDL_BACKEND_OPTS_INIT                                                                      \
    {                                                                                              \
        MDL_BACKEND_OPTS_VERSION, 8, 0, 0                                                          \
    }
#define MDL_MAX_SLOTS   4096
#define MDL_MAX_THREADS 1024

/* One sequence's part of a forward step. */
struct mdl_step {
    uint32_t slot;      /* its KV slot, below n_slots */
    uint32_t pos;       /* where IDS start: at most the tokens the slot holds */
    const int32_t *ids; /* the new tokens, each below the vocabulary */
    uint32_t n_ids;     /* at least 1; pos + n_ids at most max_ctx */
    bool all_logits;    /* logits for every new token, else for the last only */
    float *logits;      /* out: (all_logits ? n_ids : 1) rows of vocab floats */
};

struct mdl_backend {
    const char *name;
    /* Prepares MODEL (borrowed: it must outlive the state) for computing. */
    int (*load)(void **state, const struct mdl_model *model, const struct mdl_backend_opts *o);
    /* Runs one step over N steps of distinct slots. On failure no slot's contents are
     * trustworthy past the positions the failed step started at. */
    int (*forward)(void *state, struct mdl_step *steps, size_t n);
    /* The slot count and context length actually in effect. */
    void (*limits)(void *state, uint32_t *n_slots, uint32_t *max_ctx);
    void (*free)(void *state);
};

/* The multithreaded fp32 CPU backend. */
extern const struct mdl_backend mdl_backend_cpu;

#endif
