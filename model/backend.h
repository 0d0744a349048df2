/* backend: the interface every forward implementation offers the engine.
 *
 * A backend holds a model's weights in whatever form it computes with and a paged KV cache: a
 * pool of N_BLOCKS blocks, each holding the keys and values of BLOCK_TOKENS positions of one
 * sequence in every layer. It does not know which sequence owns which block: the engine keeps
 * that (model/kvpool), and hands each step a block table, so that blocks holding a common
 * prefix are shared by the sequences that have it.
 *
 * One call of forward() advances several sequences at once: each step names its block table,
 * the position its new tokens start at, and the tokens (a whole prompt, a single decoded token,
 * or anything between), and receives the logits of its last token (or of all of them). The
 * step reads the keys and values of positions 0 .. pos-1 from its blocks (they must have been
 * written by earlier steps, of this sequence or of one sharing the prefix) and writes those of
 * pos .. pos+n_ids-1 into them. The caller guarantees that no block written by one step of a
 * call is read or written by another step of the same call. The CPU backend (model/cpu.c) is
 * the reference; the CUDA backend (kernels/, a shared object loaded by model/device) implements
 * the same table and is tested against it.
 */
#ifndef CRU_MODEL_BACKEND_H
#define CRU_MODEL_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

struct mdl_backend_opts {
    uint32_t version;         /* MDL_BACKEND_OPTS_VERSION */
    uint32_t max_seqs;        /* sequences one step may advance */
    uint32_t max_ctx;         /* tokens per sequence; 0: the model's max_position_embeddings */
    uint32_t threads;         /* CPU threads; 0: every online core */
    uint32_t block_tokens;    /* positions per KV block; 0: MDL_BLOCK_TOKENS */
    uint32_t n_blocks;        /* KV blocks in the pool; 0: sized from memory (see below) */
    uint32_t max_step_tokens; /* tokens one forward may carry, all steps together; 0: 8192 */
    float memory;             /* cuda: the share of the device's memory that weights, cache and
                                 buffers may take, 0 < F <= 1; 0: 0.9. cpu: unused */
    int device;               /* cuda: the device ordinal */
};

#define MDL_BACKEND_OPTS_VERSION 2
#define MDL_BACKEND_OPTS_INIT                                                                      \
    {                                                                                              \
        MDL_BACKEND_OPTS_VERSION, 8, 0, 0, 0, 0, 0, 0.0f, 0                                        \
    }
#define MDL_MAX_SEQS         4096
#define MDL_MAX_THREADS      1024
#define MDL_BLOCK_TOKENS     16
#define MDL_MAX_BLOCK_TOKENS 1024
#define MDL_STEP_TOKENS      8192
#define MDL_GPU_MEMORY       0.9f

/* What a loaded backend offers. A pool sized from memory holds at least one sequence of
 * max_ctx tokens (max_ctx is lowered until it does, or loading fails naming both sizes). */
struct mdl_backend_limits {
    uint32_t max_seqs, max_ctx, block_tokens, n_blocks, max_step_tokens;
    uint32_t fast_step_tokens; /* steps of at most this many tokens take a faster path than
                                  longer ones, whose cost has a large fixed part (0: none) */
    uint64_t block_bytes;      /* device (or host) bytes of one KV block, all layers */
    uint64_t weight_bytes;     /* bytes the weights take where the backend computes */
};

/* One sequence's part of a forward step. */
struct mdl_step {
    const uint32_t *blocks; /* the block table: blocks[i] holds positions i*bt .. (i+1)*bt-1 */
    uint32_t n_blocks;      /* at least ceil((pos + n_ids) / bt); each below the pool's size */
    uint32_t pos;           /* where IDS start */
    const int32_t *ids;     /* the new tokens, each below the vocabulary */
    uint32_t n_ids;         /* at least 1; pos + n_ids at most max_ctx */
    bool all_logits;        /* logits for every new token, else for the last only */
    float *logits;          /* out: (all_logits ? n_ids : 1) rows of vocab floats */
};

struct mdl_backend {
    const char *name;
    /* Prepares MODEL (borrowed: it must outlive the state) for computing. */
    int (*load)(void **state, const struct mdl_model *model, const struct mdl_backend_opts *o);
    /* Runs one step over N steps. On failure no block written by the call is trustworthy. */
    int (*forward)(void *state, struct mdl_step *steps, size_t n);
    void (*limits)(void *state, struct mdl_backend_limits *out);
    void (*free)(void *state);
};

/* The multithreaded fp32 CPU backend. Its pool, when not given, holds max_seqs sequences of
 * max_ctx tokens, but at most a quarter of the machine's memory. */
extern const struct mdl_backend mdl_backend_cpu;

/* Validates the steps of one forward against L (the tables, positions, ids and that no two
 * steps write one block); SEEN is scratch of L->n_blocks bytes. Sets *T to the tokens in all.
 * Shared by the backends. */
int mdl_steps_check(const struct mdl_backend_limits *l, uint32_t vocab, const struct mdl_step *st,
                    size_t n, uint8_t *seen, size_t *T);

/* The shared object that holds the CUDA backend exports this one symbol: it returns its table
 * when built against ABI, else NULL. */
#define MDL_BACKEND_ABI 2
#define MDL_CUDA_ENTRY  "crucible_cuda_backend"
typedef const struct mdl_backend *(*mdl_cuda_entry_fn)(uint32_t abi);

#endif
