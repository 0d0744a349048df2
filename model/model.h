/* model: checkpoints in the HuggingFace layout: config.json, safetensors files (one, or shards
 * with model.safetensors.index.json), memory-mapped and validated before any weight is read.
 *
 *     struct mdl_model *m = NULL;
 *     if (mdl_model_load(&m, "ckpt/") < 0) ... cru_err_msg() names the file and the problem
 *     m->cfg.vocab, m->layers[i].q ...
 *     mdl_model_free(m);
 *
 * Two architectures, as HuggingFace transformers computes them: qwen3_moe
 * (Qwen3MoeForCausalLM) and minimax_m2 (MiniMaxM2ForCausalLM). Anything else in config.json that
 * would change the computation (another architecture, rope scaling, sliding windows, biases,
 * quantisation) is refused with an error naming it, never silently ignored. Tokenizer files are
 * not read here: the model works on token ids.
 */
#ifndef CRU_MODEL_MODEL_H
#define CRU_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on what a checkpoint may declare (each error names the bound it broke).
 *
 * The safetensors headers and the index are JSON, which jansson turns into a tree of about
 * 1.2 KiB and 5 us a tensor, so their bounds decide what a hostile checkpoint can cost before
 * it is refused. Each is checked before any JSON is parsed, and the headers' bounds hold for
 * all of a checkpoint's files together, so that one file can hold the largest checkpoint.
 * Real ones stay well inside the tensor bound: Qwen3-30B-A3B has about 19k tensors, MiniMax-M2
 * 47k, DeepSeek-V3 with its FP8 scales 95k. Real headers take about 150 bytes a tensor
 * (DeepSeek-V3 in one file: about 14 MB), and the byte bound is twice that (HuggingFace's
 * reader allows 100 MB a file). A tensor is 4 object members (its name and three fields) and
 * 6 to 10 JSON values; the member and value bounds allow 5 and 10 a tensor, so that neither
 * object members (about 200 bytes each to jansson) nor array elements (about 40) can stand in
 * for tensors to cost more. At these bounds the headers cost a load at most about 1.6 s of CPU
 * and 360 MiB, the index about as much; a header past any of them is refused after a scan of
 * its bytes. */
#define MDL_MAX_LAYERS      1024
#define MDL_MAX_HIDDEN      65536
#define MDL_MAX_HEADS       1024
#define MDL_MAX_HEAD_DIM    1024
#define MDL_MAX_EXPERTS     4096
#define MDL_MAX_VOCAB       (1u << 22)
#define MDL_MAX_INTER       (1u << 20)
#define MDL_MAX_CONFIG      ((size_t)1 << 20)  /* config.json bytes */
#define MDL_MAX_INDEX       ((size_t)32 << 20) /* model.safetensors.index.json bytes */
#define MDL_MAX_ST_HEADER   ((size_t)32 << 20) /* bytes of safetensors headers */
#define MDL_MAX_TENSORS     (1u << 18)         /* tensors (and index entries) */
#define MDL_MAX_ST_MEMBERS  (5u << 18)         /* object members in the headers; in the index */
#define MDL_MAX_ST_VALUES   (10u << 18)        /* JSON values in the headers; in the index */
#define MDL_MAX_SHARDS      4096               /* files an index names (DeepSeek-V3: 163) */
#define MDL_MAX_NAME        512                /* bytes of a tensor name */
#define MDL_MAX_DIMS        8
#define MDL_MAX_STOP_TOKENS 16

enum mdl_arch {
    MDL_ARCH_QWEN3_MOE = 1,
    MDL_ARCH_MINIMAX_M2 = 2,
};

/* Element types of safetensors. Only bf16, f16 and f32 can hold weights; the others are known
 * so that a checkpoint carrying them in tensors nobody reads still loads. */
enum mdl_dtype {
    MDL_DT_BF16 = 0,
    MDL_DT_F16,
    MDL_DT_F32,
    MDL_DT_OTHER, /* a valid safetensors dtype that no weight may have (F64, I64, F8_E4M3, ...) */
};

struct mdl_config {
    enum mdl_arch arch;
    uint32_t vocab, hidden, layers;
    uint32_t heads, kv_heads, head_dim;
    uint32_t inter;     /* the dense MLP's intermediate size (qwen3_moe's mlp_only layers) */
    uint32_t moe_inter; /* each expert's intermediate size */
    uint32_t experts, top_k;
    uint32_t rotary_dim; /* dims of each head that RoPE rotates (the first ones) */
    uint32_t max_pos;    /* max_position_embeddings: the context bound the engine uses */
    bool norm_topk_prob; /* qwen3_moe: renormalise the top-k softmax weights */
    bool routing_bias;   /* minimax_m2: e_score_correction_bias present */
    bool tied;           /* tie_word_embeddings: the output projection is the embedding */
    float rms_eps;
    double rope_theta;
    bool *moe_layer;                  /* owned; per layer: sparse MoE block (true) or dense MLP */
    int32_t eos[MDL_MAX_STOP_TOKENS]; /* eos_token_id(s), the default stop ids */
    size_t n_eos;
};

/* Parses config.json text; NAME labels errors. On success OUT owns memory
 * (mdl_config_free); on failure it holds none. */
int mdl_config_parse(struct mdl_config *out, const char *text, size_t len, const char *name);
void mdl_config_free(struct mdl_config *cfg);

/* "qwen3_moe" / "minimax_m2", and back (CRU_EINVAL for others). */
const char *mdl_arch_name(enum mdl_arch a);
int mdl_arch_parse(const char *s, enum mdl_arch *out);
const char *mdl_dtype_name(enum mdl_dtype d);

/* One tensor of a safetensors header. */
struct mdl_st_tensor {
    char *name;
    enum mdl_dtype dtype;
    const char *dtype_name; /* as written ("BF16", "F8_E4M3", ...), static */
    uint32_t n_dims;
    uint64_t shape[MDL_MAX_DIMS];
    uint64_t begin, end; /* byte offsets in the data area (after the header) */
};

/* A parsed safetensors header, tensors sorted by name. */
struct mdl_st_header {
    struct mdl_st_tensor *tensors;
    size_t n;
    uint64_t data_start; /* 8 + header length: where offsets count from */
};

/* Validates and parses the header of a safetensors file whose SIZE bytes are at DATA: the
 * header length within MDL_MAX_ST_HEADER and the file, at most MDL_MAX_TENSORS tensors,
 * MDL_MAX_ST_MEMBERS object members and MDL_MAX_ST_VALUES values (counted before the JSON is
 * parsed), JSON that is an object of tensors (plus an optional "__metadata__" of strings),
 * every dtype known, every shape consistent with its byte range, every range inside the file,
 * no two non-empty ranges overlapping. NAME labels errors. *out belongs to the caller
 * (mdl_st_header_free). */
int mdl_st_parse(struct mdl_st_header **out, const uint8_t *data, size_t size, const char *name);
void mdl_st_header_free(struct mdl_st_header *h);

/* One entry of an index's weight_map: a tensor and the file that holds it. */
struct mdl_st_index_entry {
    char *tensor;
    uint32_t file; /* into mdl_st_index.files */
};

/* A parsed model.safetensors.index.json. */
struct mdl_st_index {
    char **files; /* each once, in the order of first mention; plain file names */
    size_t n_files;
    struct mdl_st_index_entry *entries; /* sorted by tensor name, each name once */
    size_t n_entries;
    bool has_total_size; /* metadata.total_size, a byte count, was given */
    uint64_t total_size;
};

/* Parses the LEN bytes of TEXT, a model.safetensors.index.json: at most MDL_MAX_INDEX bytes,
 * MDL_MAX_ST_MEMBERS object members and MDL_MAX_ST_VALUES values (counted before parsing),
 * MDL_MAX_TENSORS entries and MDL_MAX_SHARDS files; every file a plain name in the checkpoint's
 * folder (no '/', not "." or "..", at most 255 bytes), every tensor name 1 to MDL_MAX_NAME
 * bytes. NAME labels errors. *out belongs to the caller (mdl_st_index_free). */
int mdl_st_index_parse(struct mdl_st_index **out, const char *text, size_t len, const char *name);
void mdl_st_index_free(struct mdl_st_index *ix);
/* The tensor called NAME, or NULL. */
const struct mdl_st_tensor *mdl_st_find(const struct mdl_st_header *h, const char *name);

/* A weight as the forward reads it: ROWS x COLS elements of DTYPE, row-major (a vector has
 * ROWS 1). DATA points into a mapping owned by the model. */
struct mdl_weight {
    const void *data;
    enum mdl_dtype dtype;
    uint32_t rows, cols;
};

struct mdl_mlp {
    struct mdl_weight gate, up, down; /* SwiGLU: down(silu(gate x) * up x) */
};

struct mdl_layer {
    struct mdl_weight attn_norm, q, k, v, o, q_norm, k_norm, mlp_norm;
    bool moe;
    struct mdl_weight router; /* experts x hidden */
    struct mdl_weight bias;   /* minimax_m2's e_score_correction_bias (experts), or none */
    struct mdl_mlp *experts;  /* moe: cfg.experts of them */
    struct mdl_mlp dense;     /* !moe */
};

struct mdl_model {
    struct mdl_config cfg;
    struct mdl_weight embed, final_norm, lm_head;
    struct mdl_layer *layers;
    uint64_t n_params;        /* elements of the tensors the forward uses */
    uint64_t weight_bytes;    /* their bytes */
    uint64_t active_bytes;    /* bytes read per token: all but the unchosen experts and the
                                 embedding table (one row of it) */
    struct mdl_mapping *maps; /* internal: the mapped files */
    size_t n_maps;
    struct mdl_tensor_ref *by_name; /* internal: the tensors of every file, sorted by name */
    size_t n_by_name;
    char *dir;
};

/* Loads the checkpoint in folder DIR. *out belongs to the caller (mdl_model_free). Errors name
 * the file and the tensor: a missing one, a wrong shape or dtype, a malformed header. With an
 * index, every file it names must exist and every tensor must be in the file the index names
 * for it, and every tensor of those files in the index; a metadata.total_size that differs
 * from the files' tensor bytes is reported as a warning (real indexes have been seen to be
 * off). */
int mdl_model_load(struct mdl_model **out, const char *dir);
void mdl_model_free(struct mdl_model *m);

/* Element I of W (row-major) as float. */
float mdl_weight_at(const struct mdl_weight *w, size_t i);

/* bf16 and f16 to and from float (round to nearest even on the way down). */
float mdl_bf16_to_f32(uint16_t h);
uint16_t mdl_f32_to_bf16(float f);
float mdl_f16_to_f32(uint16_t h);

#endif
