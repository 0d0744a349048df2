/* init: seeded random checkpoints in the HuggingFace layout, for tests, benchmarks and demos.
 *
 * mdl_init_write() writes config.json and the safetensors files (the tensor names and config
 * keys of the published checkpoints, which transformers loads with AutoModelForCausalLM) filled
 * with values drawn from SEED: the same options and seed give the same bytes, and a tensor's
 * bytes do not depend on how the checkpoint is split into files. A checkpoint larger than the
 * shard size is split as HuggingFace's save_pretrained splits it: model-00001-of-000NN.safetensors
 * files and model.safetensors.index.json. With a tokenizer folder its tokenizer.json and
 * tokenizer_config.json are copied and, unless the vocabulary is given, it is sized to hold
 * every id of tokenizer.json.
 *
 *     struct mdl_init_opts o = MDL_INIT_OPTS_INIT;
 *     mdl_init_preset(&o, "qwen3-30b-a3b");
 *     o.layers = 4;
 *     mdl_init_write("ckpt", &o);
 */
#ifndef CRU_MODEL_INIT_H
#define CRU_MODEL_INIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define MDL_INIT_OPTS_VERSION 1
/* Elements a random checkpoint may hold: MiniMax-M2's 229 billion, with room. */
#define MDL_MAX_INIT_PARAMS ((uint64_t)1 << 38)
/* HuggingFace's max_shard_size of "5GB": tensor bytes a file holds (its header comes on top). */
#define MDL_INIT_SHARD_SIZE 5000000000ull

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
    int64_t bos, eos;          /* bos_token_id, eos_token_id; -1: null */
    uint64_t shard_size;       /* tensor bytes a file may hold; 0: MDL_INIT_SHARD_SIZE */
    /* Called as the files are written (every few MiB) with the bytes written so far and the
     * bytes of all files; optional. */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
};

#define MDL_INIT_OPTS_INIT                                                                         \
    {                                                                                              \
        MDL_INIT_OPTS_VERSION, MDL_ARCH_QWEN3_MOE, 2, 64, 4, 2, 16, 8, 2, 32, 96, 512, 0, 4096, 0, \
            false, MDL_DT_BF16, 0, NULL, -1, -1, 0, NULL, NULL                                     \
    }

/* Sets the architecture and every dimension of O to those of the published checkpoint NAME
 * ("qwen3-30b-a3b", "minimax-m2"; CRU_EINVAL for others, naming them), leaving the seed, the
 * tokenizer, the shard size and the progress callback as they are. */
int mdl_init_preset(struct mdl_init_opts *o, const char *name);

/* The names mdl_init_preset() knows, separated by ", ". */
extern const char mdl_init_preset_names[];

/* One file of a plan. */
struct mdl_init_file {
    char name[64];                    /* model.safetensors, or model-00001-of-00013.safetensors */
    size_t n_tensors;                 /* tensors it holds */
    uint64_t data_bytes;              /* their bytes: what the shard size bounds */
    uint64_t bytes;                   /* the file's size: the header and the data */
    char *header;                     /* internal: the safetensors header, padded */
    struct mdl_init_tensor **tensors; /* internal: in the file's order (by name) */
};

/* What mdl_init_write() would write for a set of options, computed without writing. */
struct mdl_init_plan {
    struct mdl_init_opts opts; /* resolved: the tokenizer's vocabulary, the rotary dims */
    uint64_t params;           /* elements of all tensors */
    uint64_t total_size;       /* their bytes (the index's metadata.total_size) */
    uint64_t file_bytes;       /* bytes of all safetensors files, headers included */
    size_t n_tensors;
    struct mdl_init_file *files;
    size_t n_files;                  /* 1: model.safetensors, no index */
    char *config;                    /* the text of config.json */
    char *index;                     /* the text of model.safetensors.index.json, or NULL */
    struct mdl_init_tensor *tensors; /* internal: in HuggingFace's order */
};

/* Validates O and plans the checkpoint: its tensors in HuggingFace's order, split into files
 * of at most O->shard_size tensor bytes each as save_pretrained splits them (a tensor larger
 * than that gets a file of its own). Nothing is written. *out belongs to the caller
 * (mdl_init_plan_free). */
int mdl_init_plan_new(struct mdl_init_plan **out, const struct mdl_init_opts *o);
void mdl_init_plan_free(struct mdl_init_plan *p);

/* Writes PLAN into DIR (created; an existing checkpoint there is CRU_EEXIST). Each file is
 * written as NAME.partial, synced and renamed when complete; config.json comes last, so a
 * folder with a config.json holds a whole checkpoint. Memory stays bounded (one buffer of a
 * few MiB) whatever the checkpoint's size. On failure the partial file is removed. */
int mdl_init_plan_write(const struct mdl_init_plan *plan, const char *dir);

/* mdl_init_plan_new() and mdl_init_plan_write(). */
int mdl_init_write(const char *dir, const struct mdl_init_opts *o);

/* The vocabulary tokenizer.json in DIR needs: its largest id (model.vocab and added_tokens)
 * plus one. */
int mdl_tokenizer_vocab(const char *dir, uint32_t *out);

#endif
