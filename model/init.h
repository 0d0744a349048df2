/* init: seeded random checkpoints in the HuggingFace layout, for tests, benchmarks and demos.
 *
 * mdl_init_write() writes config.json and model.safetensors (the tensor names and config keys
 * of the published checkpoints, which transformers loads with AutoModelForCausalLM) filled
 * with values drawn from SEED: the same options and seed give the same bytes. With a
 * tokenizer folder its tokenizer.json and tokenizer_config.json are copied and the vocabulary
 * is sized to hold every id of tokenizer.json.
 */
#ifndef CRU_MODEL_INIT_H
#define CRU_MODEL_INIT_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

#define MDL_INIT_OPTS_VERSION 1
#define MDL_MAX_INIT_PARAMS   ((uint64_t)8 << 30) /* elements a random checkpoint may hold */

struct mdl_init_opts {
    uint32_t version; /* MDL_INIT_OPTS_VERSION */
    enum mdl_arch arch;
    uint32_t layers, hidden, heads, kv_heads, head_dim;
    uint32_t experts, top_k, moe_inter;
    uint32_t inter;      /* qwen3_moe: the dense MLP of mlp_only layers (unused when none) */
    uint32_t vocab;      /* 0 with a tokenizer: its size */
    uint32_t rotary_dim; /* 0: half of head_dim for minimax_m2, all of it for qwen3_moe */
    uint32_t max_pos;
    uint32_t dense_layers; /* qwen3_moe: the first N layers are dense (mlp_only_layers) */
    bool tied;
    enum mdl_dtype dtype; /* BF16, F16 or F32 */
    uint64_t seed;
    const char *tokenizer_dir; /* optional */
};

#define MDL_INIT_OPTS_INIT                                                                         \
    {                                                                                              \
        MDL_INIT_OPTS_VERSION, MDL_ARCH_QWEN3_MOE, 2, 64, 4, 2, 16, 8, 2, 32, 96, 512, 0, 4096, 0, \
            false, MDL_DT_BF16, 0, NULL                                                            \
    }

/* Writes a checkpoint into DIR (created; an existing config.json there is CRU_EEXIST). */
int mdl_init_write(const char *dir, const struct mdl_init_opts *o);

/* The vocabulary tokenizer.json in DIR needs: its largest id (model.vocab and added_tokens)
 * plus one. */
int mdl_tokenizer_vocab(const char *dir, uint32_t *out);

#endif
