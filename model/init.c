/* init: writes seeded random checkpoints (config.json, safetensors files, the shard index).
 *
 * Each tensor draws from its own generator, seeded from the checkpoint's seed and the tensor's
 * name, so a tensor's values do not depend on which other tensors exist or on which file holds
 * it. Matrices are normal with standard deviation 1/sqrt(fan_in) (activations keep their scale
 * through the layers), norm weights 1 + 0.1 N(0,1), the embedding N(0,1), the routing bias
 * 0.1 N(0,1). A checkpoint may be tens of GB, so values come from a table: each 16 bits of
 * xoshiro256** pick one of 65536 normal quantiles, already scaled and encoded in the tensor's
 * dtype, which writes well over a GB a second on one core. Files are streamed through one
 * buffer and split as HuggingFace's save_pretrained splits them. It does not read checkpoints
 * (model/model.c does).
 */
#include "model/init.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/str.h"
#include "model/sample.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; the values are written in the host's order"
#endif

#define BUF_BYTES ((size_t)4 << 20) /* the write buffer: all a write holds in memory */
#define N_TABLES  4                 /* tables kept: a layer alternates between a few scales */

enum fill { FILL_MATRIX, FILL_NORM, FILL_EMBED, FILL_BIAS };

struct mdl_init_tensor {
    char name[MDL_MAX_NAME];
    uint32_t rows, cols; /* rows 0: a vector of cols */
    enum fill fill;
    uint64_t bytes;
    size_t file;
};

/* ---- presets ---- */

const char mdl_init_preset_names[] = "qwen3-30b-a3b, minimax-m2";

int mdl_init_preset(struct mdl_init_opts *o, const char *name)
{
    /* The config.json of each published checkpoint. */
    if (strcmp(name, "qwen3-30b-a3b") == 0) {
        o->arch = MDL_ARCH_QWEN3_MOE;
        o->layers = 48, o->hidden = 2048, o->heads = 32, o->kv_heads = 4, o->head_dim = 128;
        o->experts = 128, o->top_k = 8, o->moe_inter = 768, o->inter = 6144;
        o->vocab = 151936, o->rotary_dim = 128, o->max_pos = 40960, o->dense_layers = 0;
        o->bos = 151643, o->eos = 151645;
    } else if (strcmp(name, "minimax-m2") == 0) {
        o->arch = MDL_ARCH_MINIMAX_M2;
        o->layers = 62, o->hidden = 3072, o->heads = 48, o->kv_heads = 8, o->head_dim = 128;
        o->experts = 256, o->top_k = 8, o->moe_inter = 1536, o->inter = 1536;
        o->vocab = 200064, o->rotary_dim = 64, o->max_pos = 196608, o->dense_layers = 0;
        o->bos = -1, o->eos = 200020;
    } else {
        return cru_err_set(CRU_EINVAL, "unknown preset '%s' (%s)", name, mdl_init_preset_names);
    }
    o->tied = false;
    o->dtype = MDL_DT_BF16;
    return 0;
}

/* ---- the plan ---- */

struct tensors {
    struct mdl_init_tensor *t;
    size_t n, cap;
};

static int add(struct tensors *p, uint32_t rows, uint32_t cols, enum fill f, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int add(struct tensors *p, uint32_t rows, uint32_t cols, enum fill f, const char *fmt, ...)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct mdl_init_tensor *t = realloc(p->t, cap * sizeof(*t));
        if (!t)
            return cru_err_set(CRU_ENOMEM, "out of memory");
        p->t = t;
        p->cap = cap;
    }
    struct mdl_init_tensor *t = &p->t[p->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof(t->name), fmt, ap);
    va_end(ap);
    t->rows = rows;
    t->cols = cols;
    t->fill = f;
    t->file = 0;
    return 0;
}

static size_t elem_size(enum mdl_dtype d)
{
    return d == MDL_DT_F32 ? 4 : 2;
}

static int add_experts(struct tensors *p, const struct mdl_init_opts *o, uint32_t i)
{
    bool mm = o->arch == MDL_ARCH_MINIMAX_M2;
    uint32_t H = o->hidden, I = o->moe_inter;
    const char *L = "model.layers", *blk = mm ? "block_sparse_moe" : "mlp";
    int rc = 0;
    /* A module's own buffers come before its children in a state_dict. */
    if (mm)
        rc |= add(p, 0, o->experts, FILL_BIAS, "%s.%u.%s.e_score_correction_bias", L, i, blk);
    rc |= add(p, o->experts, H, FILL_MATRIX, "%s.%u.%s.gate.weight", L, i, blk);
    for (uint32_t e = 0; e < o->experts && rc == 0; e++) {
        if (mm) {
            rc |= add(p, I, H, FILL_MATRIX, "%s.%u.%s.experts.%u.w1.weight", L, i, blk, e);
            rc |= add(p, H, I, FILL_MATRIX, "%s.%u.%s.experts.%u.w2.weight", L, i, blk, e);
            rc |= add(p, I, H, FILL_MATRIX, "%s.%u.%s.experts.%u.w3.weight", L, i, blk, e);
        } else {
            rc |= add(p, I, H, FILL_MATRIX, "%s.%u.%s.experts.%u.gate_proj.weight", L, i, blk, e);
            rc |= add(p, I, H, FILL_MATRIX, "%s.%u.%s.experts.%u.up_proj.weight", L, i, blk, e);
            rc |= add(p, H, I, FILL_MATRIX, "%s.%u.%s.experts.%u.down_proj.weight", L, i, blk, e);
        }
    }
    return rc;
}

/* The tensors in the order of the model's state_dict, which is the order in which
 * save_pretrained fills its files: the order in which each module registers its parameters. */
static int make_tensors(struct tensors *p, const struct mdl_init_opts *o)
{
    bool mm = o->arch == MDL_ARCH_MINIMAX_M2;
    uint32_t H = o->hidden, qd = o->heads * o->head_dim, kd = o->kv_heads * o->head_dim;
    const char *L = "model.layers";
    int rc = add(p, o->vocab, H, FILL_EMBED, "model.embed_tokens.weight");
    for (uint32_t i = 0; i < o->layers && rc == 0; i++) {
        rc |= add(p, qd, H, FILL_MATRIX, "%s.%u.self_attn.q_proj.weight", L, i);
        rc |= add(p, kd, H, FILL_MATRIX, "%s.%u.self_attn.k_proj.weight", L, i);
        rc |= add(p, kd, H, FILL_MATRIX, "%s.%u.self_attn.v_proj.weight", L, i);
        rc |= add(p, H, qd, FILL_MATRIX, "%s.%u.self_attn.o_proj.weight", L, i);
        rc |= add(p, 0, mm ? qd : o->head_dim, FILL_NORM, "%s.%u.self_attn.q_norm.weight", L, i);
        rc |= add(p, 0, mm ? kd : o->head_dim, FILL_NORM, "%s.%u.self_attn.k_norm.weight", L, i);
        if (!mm && i < o->dense_layers) {
            rc |= add(p, o->inter, H, FILL_MATRIX, "%s.%u.mlp.gate_proj.weight", L, i);
            rc |= add(p, o->inter, H, FILL_MATRIX, "%s.%u.mlp.up_proj.weight", L, i);
            rc |= add(p, H, o->inter, FILL_MATRIX, "%s.%u.mlp.down_proj.weight", L, i);
        } else {
            rc |= add_experts(p, o, i);
        }
        rc |= add(p, 0, H, FILL_NORM, "%s.%u.input_layernorm.weight", L, i);
        rc |= add(p, 0, H, FILL_NORM, "%s.%u.post_attention_layernorm.weight", L, i);
    }
    rc |= add(p, 0, H, FILL_NORM, "model.norm.weight");
    if (!o->tied)
        rc |= add(p, o->vocab, H, FILL_MATRIX, "lm_head.weight");
    if (rc < 0)
        return CRU_ENOMEM;
    for (size_t i = 0; i < p->n; i++) {
        struct mdl_init_tensor *t = &p->t[i];
        t->bytes = (uint64_t)(t->rows ? t->rows : 1) * t->cols * elem_size(o->dtype);
    }
    return 0;
}

static json_t *config_json(const struct mdl_init_opts *o)
{
    bool mm = o->arch == MDL_ARCH_MINIMAX_M2;
    const char *dt = o->dtype == MDL_DT_F32   ? "float32"
                     : o->dtype == MDL_DT_F16 ? "float16"
                                              : "bfloat16";
    json_t *c = json_pack(
        "{s:[s], s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:f, s:I, s:b, s:s, s:o, s:o}",
        "architectures", mm ? "MiniMaxM2ForCausalLM" : "Qwen3MoeForCausalLM", "model_type",
        mdl_arch_name(o->arch), "vocab_size", (json_int_t)o->vocab, "hidden_size",
        (json_int_t)o->hidden, "num_hidden_layers", (json_int_t)o->layers, "num_attention_heads",
        (json_int_t)o->heads, "num_key_value_heads", (json_int_t)o->kv_heads, "head_dim",
        (json_int_t)o->head_dim, "num_experts_per_tok", (json_int_t)o->top_k,
        "max_position_embeddings", (json_int_t)o->max_pos, "hidden_act", "silu", "rms_norm_eps",
        1e-6, "intermediate_size", (json_int_t)(mm ? o->moe_inter : o->inter),
        "tie_word_embeddings", o->tied, "dtype", dt, "bos_token_id",
        o->bos >= 0 ? json_integer(o->bos) : json_null(), "eos_token_id",
        o->eos >= 0 ? json_integer(o->eos) : json_null());
    if (!c)
        return NULL;
    json_t *rope =
        json_pack("{s:s, s:f}", "rope_type", "default", "rope_theta", mm ? 5000000.0 : 1000000.0);
    if (!rope) {
        json_decref(c);
        return NULL;
    }
    if (mm) {
        json_object_set_new(rope, "partial_rotary_factor",
                            json_real((double)o->rotary_dim / o->head_dim));
        json_object_set_new(c, "rotary_dim", json_integer(o->rotary_dim));
        json_object_set_new(c, "num_local_experts", json_integer(o->experts));
        json_object_set_new(c, "scoring_func", json_string("sigmoid"));
        json_object_set_new(c, "use_routing_bias", json_true());
        json_object_set_new(c, "use_qk_norm", json_true());
        json_object_set_new(c, "qk_norm_type", json_string("per_layer"));
    } else {
        json_t *only = json_array();
        for (uint32_t i = 0; only && i < o->dense_layers; i++)
            json_array_append_new(only, json_integer(i));
        json_object_set_new(c, "num_experts", json_integer(o->experts));
        json_object_set_new(c, "moe_intermediate_size", json_integer(o->moe_inter));
        json_object_set_new(c, "norm_topk_prob", json_true());
        json_object_set_new(c, "decoder_sparse_step", json_integer(1));
        json_object_set_new(c, "mlp_only_layers", only ? only : json_array());
        json_object_set_new(c, "attention_bias", json_false());
        json_object_set_new(c, "use_sliding_window", json_false());
    }
    json_object_set_new(c, "rope_parameters", rope);
    return c;
}

int mdl_tokenizer_vocab(const char *dir, uint32_t *out)
{
    char *path = NULL;
    json_t *root = NULL;
    int rc;
    if ((rc = cru_str_printf(&path, "%s/tokenizer.json", dir)) < 0 ||
        (rc = cru_json_load_file(&root, path, 0)) < 0)
        goto done;
    json_int_t max = -1;
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(vocab)) {
        json_object_foreach(vocab, k, v)
        {
            if (json_is_integer(v) && json_integer_value(v) > max)
                max = json_integer_value(v);
        }
    }
    json_t *added = json_object_get(root, "added_tokens");
    json_array_foreach(added, i, v)
    {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (json_is_integer(json_object_get(v, "id")) && id > max)
            max = id;
    }
    if (max < 0 || max >= (json_int_t)MDL_MAX_VOCAB)
        rc = cru_err_set(CRU_EINVAL,
                         "%s: no token ids in model.vocab and added_tokens, or one "
                         "beyond %u",
                         path, MDL_MAX_VOCAB);
    else
        *out = (uint32_t)max + 1;
done:
    json_decref(root);
    free(path);
    return rc;
}

static int check_opts(const struct mdl_init_opts *o)
{
    if (o->version != MDL_INIT_OPTS_VERSION)
        return cru_err_set(CRU_EINVAL, "init options: unknown version");
    struct {
        const char *name;
        uint32_t v, max;
    } b[] = {
        { "layers", o->layers, MDL_MAX_LAYERS },       { "hidden", o->hidden, MDL_MAX_HIDDEN },
        { "heads", o->heads, MDL_MAX_HEADS },          { "kv-heads", o->kv_heads, MDL_MAX_HEADS },
        { "head-dim", o->head_dim, MDL_MAX_HEAD_DIM }, { "experts", o->experts, MDL_MAX_EXPERTS },
        { "top-k", o->top_k, MDL_MAX_EXPERTS },        { "moe-inter", o->moe_inter, MDL_MAX_INTER },
        { "inter", o->inter, MDL_MAX_INTER },          { "vocab", o->vocab, MDL_MAX_VOCAB },
        { "max-pos", o->max_pos, 1u << 24 },
    };
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
        if (b[i].v < 1 || b[i].v > b[i].max)
            return cru_err_set(CRU_EINVAL, "%s: %u outside 1..%u", b[i].name, b[i].v, b[i].max);
    if (o->heads % o->kv_heads)
        return cru_err_set(CRU_EINVAL, "kv-heads: %u does not divide heads (%u)", o->kv_heads,
                           o->heads);
    if (o->top_k > o->experts)
        return cru_err_set(CRU_EINVAL, "top-k: %u is more than the %u experts", o->top_k,
                           o->experts);
    if (o->rotary_dim % 2 || o->rotary_dim > o->head_dim || o->head_dim % 2)
        return cru_err_set(CRU_EINVAL, "rotary dims: %u of a head of %u (even, at most the head)",
                           o->rotary_dim, o->head_dim);
    if (o->dense_layers > o->layers || (o->dense_layers && o->arch != MDL_ARCH_QWEN3_MOE))
        return cru_err_set(CRU_EINVAL, "dense layers: %u (qwen3_moe only, at most the layers)",
                           o->dense_layers);
    if (o->dtype == MDL_DT_OTHER)
        return cru_err_set(CRU_EINVAL, "dtype: BF16, F16 or F32");
    return 0;
}

/* Assigns each tensor its file as huggingface_hub's split_torch_state_dict_into_shards does:
 * in state_dict order, a new file when the next tensor would take the current one past the
 * shard size; a tensor larger than the shard size alone gets a file of its own at once. */
static int split(struct mdl_init_plan *p, uint64_t max)
{
    size_t cap = 16, n = 0, cur = SIZE_MAX;
    uint64_t cur_bytes = 0;
    struct mdl_init_file *f = calloc(cap, sizeof(*f));
    if (!f)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n_tensors; i++) {
        struct mdl_init_tensor *t = &p->tensors[i];
        bool alone = t->bytes > max, fresh = cur == SIZE_MAX || cur_bytes + t->bytes > max;
        if ((alone || fresh) && n == cap) {
            struct mdl_init_file *g = realloc(f, 2 * cap * sizeof(*f));
            if (!g) {
                free(f);
                return cru_err_set(CRU_ENOMEM, "out of memory");
            }
            memset(g + cap, 0, cap * sizeof(*g));
            f = g;
            cap *= 2;
        }
        size_t k;
        if (alone) {
            k = n++;
        } else {
            if (fresh) {
                cur = n++;
                cur_bytes = 0;
            }
            k = cur;
            cur_bytes += t->bytes;
        }
        t->file = k;
        f[k].n_tensors++;
        f[k].data_bytes += t->bytes;
    }
    p->files = f;
    p->n_files = n;
    return 0;
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp((*(struct mdl_init_tensor *const *)a)->name,
                  (*(struct mdl_init_tensor *const *)b)->name);
}

/* The safetensors header of file K: its tensors sorted by name (the order safetensors writes
 * them in), padded with spaces to a multiple of 8 bytes as the format recommends. */
static int make_header(struct mdl_init_plan *p, size_t k)
{
    struct mdl_init_file *f = &p->files[k];
    const struct mdl_init_opts *o = &p->opts;
    if (!(f->tensors = malloc((f->n_tensors ? f->n_tensors : 1) * sizeof(*f->tensors))))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < p->n_tensors; i++)
        if (p->tensors[i].file == k)
            f->tensors[n++] = &p->tensors[i];
    qsort(f->tensors, n, sizeof(*f->tensors), cmp_tensor);
    json_t *hdr = json_pack("{s:{s:s}}", "__metadata__", "format", "pt");
    char *text = NULL;
    int rc = 0;
    uint64_t off = 0;
    for (size_t i = 0; hdr && i < n; i++) {
        const struct mdl_init_tensor *t = f->tensors[i];
        json_t *shape = t->rows ? json_pack("[I, I]", (json_int_t)t->rows, (json_int_t)t->cols)
                                : json_pack("[I]", (json_int_t)t->cols);
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", mdl_dtype_name(o->dtype), "shape",
                              shape, "data_offsets", (json_int_t)off, (json_int_t)(off + t->bytes));
        off += t->bytes;
        if (!e || json_object_set_new(hdr, t->name, e) < 0) {
            json_decref(hdr);
            hdr = NULL;
        }
    }
    if (!hdr)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    if ((rc = cru_json_dump(&text, hdr, false)) == 0) {
        size_t len = strlen(text), padded = (len + 7) / 8 * 8;
        if (!(f->header = malloc(8 + padded))) {
            rc = cru_err_set(CRU_ENOMEM, "out of memory");
        } else {
            for (int i = 0; i < 8; i++)
                f->header[i] = (char)(uint8_t)((uint64_t)padded >> (8 * i));
            memcpy(f->header + 8, text, len);
            memset(f->header + 8 + len, ' ', padded - len);
            f->bytes = 8 + padded + f->data_bytes;
        }
    }
    free(text);
    json_decref(hdr);
    return rc;
}

/* model.safetensors.index.json as save_pretrained writes it: metadata, then weight_map with
 * its keys sorted, indented by 2. */
static int make_index(struct mdl_init_plan *p)
{
    struct mdl_init_tensor **by = malloc(p->n_tensors * sizeof(*by));
    json_t *map = json_object(), *root = NULL;
    int rc = 0;
    if (!by || !map) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < p->n_tensors; i++)
        by[i] = &p->tensors[i];
    qsort(by, p->n_tensors, sizeof(*by), cmp_tensor);
    for (size_t i = 0; i < p->n_tensors; i++)
        if (json_object_set_new(map, by[i]->name, json_string(p->files[by[i]->file].name)) < 0) {
            rc = cru_err_set(CRU_ENOMEM, "out of memory");
            goto done;
        }
    root = json_pack("{s:{s:I, s:I}, s:O}", "metadata", "total_parameters", (json_int_t)p->params,
                     "total_size", (json_int_t)p->total_size, "weight_map", map);
    if (!root) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    char *text = NULL;
    if ((rc = cru_json_dump(&text, root, true)) == 0) {
        rc = cru_str_printf(&p->index, "%s\n", text);
        free(text);
    }
done:
    json_decref(root);
    json_decref(map);
    free(by);
    return rc;
}

static int make_config(struct mdl_init_plan *p)
{
    json_t *c = config_json(&p->opts);
    if (!c)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    char *text = NULL;
    int rc = cru_json_dump(&text, c, true);
    if (rc == 0) {
        rc = cru_str_printf(&p->config, "%s\n", text);
        free(text);
    }
    json_decref(c);
    return rc;
}

void mdl_init_plan_free(struct mdl_init_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->files && i < p->n_files; i++) {
        free(p->files[i].header);
        free(p->files[i].tensors);
    }
    free(p->files);
    free(p->tensors);
    free(p->config);
    free(p->index);
    free(p);
}

int mdl_init_plan_new(struct mdl_init_plan **out, const struct mdl_init_opts *opts)
{
    *out = NULL;
    struct mdl_init_plan *p = calloc(1, sizeof(*p));
    struct tensors ts = { 0 };
    int rc = 0;
    if (!p)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    p->opts = *opts;
    struct mdl_init_opts *o = &p->opts;
    if (o->version != MDL_INIT_OPTS_VERSION) {
        rc = cru_err_set(CRU_EINVAL, "init options: unknown version");
        goto done;
    }
    if (!o->shard_size)
        o->shard_size = MDL_INIT_SHARD_SIZE;
    if (o->tokenizer_dir && !o->vocab &&
        (rc = mdl_tokenizer_vocab(o->tokenizer_dir, &o->vocab)) < 0)
        goto done;
    if (!o->rotary_dim)
        o->rotary_dim = o->arch == MDL_ARCH_MINIMAX_M2 ? o->head_dim / 2 : o->head_dim;
    if (o->arch == MDL_ARCH_QWEN3_MOE && o->rotary_dim != o->head_dim) {
        rc = cru_err_set(CRU_EINVAL, "rotary dims: qwen3_moe rotates the whole head");
        goto done;
    }
    if ((rc = check_opts(o)) < 0 || (rc = make_tensors(&ts, o)) < 0)
        goto done;
    p->tensors = ts.t;
    p->n_tensors = ts.n;
    ts.t = NULL;
    for (size_t i = 0; i < p->n_tensors; i++) {
        p->params += p->tensors[i].bytes / elem_size(o->dtype);
        p->total_size += p->tensors[i].bytes;
    }
    if (p->params > MDL_MAX_INIT_PARAMS) {
        rc = cru_err_set(CRU_ELIMIT, "a checkpoint of %llu parameters (the bound is %llu)",
                         (unsigned long long)p->params, (unsigned long long)MDL_MAX_INIT_PARAMS);
        goto done;
    }
    if ((o->bos >= (int64_t)o->vocab || o->eos >= (int64_t)o->vocab)) {
        rc = cru_err_set(CRU_EINVAL,
                         "bos and eos ids (%lld, %lld) must be below the vocabulary (%u)",
                         (long long)o->bos, (long long)o->eos, o->vocab);
        goto done;
    }
    if ((rc = split(p, o->shard_size)) < 0)
        goto done;
    if (p->n_files > MDL_MAX_SHARDS) {
        rc = cru_err_set(CRU_ELIMIT,
                         "%zu files of at most %llu bytes, more than the %d a checkpoint may have",
                         p->n_files, (unsigned long long)o->shard_size, MDL_MAX_SHARDS);
        goto done;
    }
    for (size_t k = 0; k < p->n_files; k++) {
        if (p->n_files == 1)
            snprintf(p->files[k].name, sizeof(p->files[k].name), "model.safetensors");
        else
            snprintf(p->files[k].name, sizeof(p->files[k].name), "model-%05zu-of-%05zu.safetensors",
                     k + 1, p->n_files);
        if ((rc = make_header(p, k)) < 0)
            goto done;
        p->file_bytes += p->files[k].bytes;
    }
    if ((p->n_files > 1 && (rc = make_index(p)) < 0) || (rc = make_config(p)) < 0)
        goto done;
done:
    free(ts.t);
    if (rc < 0) {
        mdl_init_plan_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* ---- values ---- */

/* The standard normal quantile of P in (0, 1): Acklam's rational approximation (relative error
 * 1.2e-9), refined by one Halley step on erfc. */
static double normal_quantile(double p)
{
    static const double a[] = { -3.969683028665376e+01, 2.209460984245205e+02,
                                -2.759285104469687e+02, 1.383577518672690e+02,
                                -3.066479806614716e+01, 2.506628277459239e+00 };
    static const double b[] = { -5.447609879822406e+01, 1.615858368580409e+02,
                                -1.556989798598866e+02, 6.680131188771972e+01,
                                -1.328068155288572e+01 };
    static const double c[] = { -7.784894002430293e-03, -3.223964580411365e-01,
                                -2.400758277161838e+00, -2.549732539343734e+00,
                                4.374664141464968e+00,  2.938163982698783e+00 };
    static const double d[] = { 7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                3.754408661907416e+00 };
    double x, q, r;
    if (p < 0.02425 || p > 1 - 0.02425) {
        q = sqrt(-2 * log(p < 0.5 ? p : 1 - p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
        if (p > 0.5)
            x = -x;
    } else {
        q = p - 0.5;
        r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    double e = 0.5 * erfc(-x / sqrt(2.0)) - p;
    double u = e * sqrt(2 * 3.14159265358979323846) * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

static uint16_t f32_to_f16(float f)
{
    /* Round to nearest even, through the bit pattern; values here are small and finite. */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t man = u & 0x7fffffu;
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10)
            return (uint16_t)sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13), rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
        h++;
    return (uint16_t)h;
}

/* The 65536 values a tensor of one fill and fan-in draws from, encoded in the dtype. */
struct table {
    bool used;
    enum fill fill;
    uint32_t cols;
    uint64_t last_use;
    union {
        uint16_t h[65536];
        float f[65536];
    } v;
};

/* What a write keeps: the buffer, the tables, the progress. */
struct writer {
    const struct mdl_init_plan *plan;
    int fd;
    const char *label;
    uint8_t *buf;
    size_t used;
    uint64_t done;
    struct table tables[N_TABLES];
    uint64_t uses;
};

static const struct table *table_for(struct writer *w, const struct mdl_init_tensor *t)
{
    enum mdl_dtype dt = w->plan->opts.dtype;
    uint32_t cols = t->fill == FILL_MATRIX ? t->cols : 0;
    struct table *slot = &w->tables[0];
    for (int i = 0; i < N_TABLES; i++) {
        struct table *x = &w->tables[i];
        if (x->used && x->fill == t->fill && x->cols == cols) {
            x->last_use = ++w->uses;
            return x;
        }
        if (!x->used || x->last_use < slot->last_use)
            slot = x;
    }
    double scale = t->fill == FILL_MATRIX ? 1.0 / sqrt((double)t->cols) : 1.0;
    for (uint32_t i = 0; i < 65536; i++) {
        double z = normal_quantile((i + 0.5) / 65536.0);
        float v = (float)(t->fill == FILL_NORM   ? 1.0 + 0.1 * z
                          : t->fill == FILL_BIAS ? 0.1 * z
                                                 : z * scale);
        if (dt == MDL_DT_F32)
            slot->v.f[i] = v;
        else
            slot->v.h[i] = dt == MDL_DT_BF16 ? mdl_f32_to_bf16(v) : f32_to_f16(v);
    }
    slot->used = true;
    slot->fill = t->fill;
    slot->cols = cols;
    slot->last_use = ++w->uses;
    return slot;
}

static int flush(struct writer *w)
{
    if (w->used == 0)
        return 0;
    if (cru_write_all(w->fd, w->buf, w->used) < 0)
        return cru_err_sys("cannot write %s", w->label);
    w->done += w->used;
    w->used = 0;
    const struct mdl_init_opts *o = &w->plan->opts;
    if (o->progress)
        o->progress(o->progress_ctx, w->done, w->plan->file_bytes);
    return 0;
}

static int put(struct writer *w, const void *data, size_t len)
{
    while (len > 0) {
        size_t take = BUF_BYTES - w->used < len ? BUF_BYTES - w->used : len;
        memcpy(w->buf + w->used, data, take);
        w->used += take;
        data = (const uint8_t *)data + take;
        len -= take;
        int rc;
        if (w->used == BUF_BYTES && (rc = flush(w)) < 0)
            return rc;
    }
    return 0;
}

/* Fills N elements at OUT from TAB, four to each 64-bit draw. N is a multiple of 4 except at
 * the end of a tensor, so the values do not depend on where the buffer is cut. One body for the
 * bf16 and the fp32 tables. */
#define DEFINE_DRAW(name, type)                                                                    \
    static void name(type *out, size_t n, const type *tab, struct mdl_rng *r)                      \
    {                                                                                              \
        size_t i = 0;                                                                              \
        for (; i + 4 <= n; i += 4) {                                                               \
            uint64_t x = mdl_rng_next(r);                                                          \
            out[i] = tab[x & 0xffff];                                                              \
            out[i + 1] = tab[(x >> 16) & 0xffff];                                                  \
            out[i + 2] = tab[(x >> 32) & 0xffff];                                                  \
            out[i + 3] = tab[x >> 48];                                                             \
        }                                                                                          \
        for (uint64_t x = i < n ? mdl_rng_next(r) : 0; i < n; i++, x >>= 16)                       \
            out[i] = tab[x & 0xffff];                                                              \
    }
DEFINE_DRAW(draw16, uint16_t)
DEFINE_DRAW(draw32, float)

static int write_tensor(struct writer *w, const struct mdl_init_tensor *t)
{
    uint8_t hash[32];
    int rc = cru_sha256(t->name, strlen(t->name), hash);
    if (rc < 0)
        return rc;
    uint64_t seed = w->plan->opts.seed;
    for (int i = 0; i < 8; i++)
        seed ^= (uint64_t)hash[i] << (8 * i);
    struct mdl_rng r;
    mdl_rng_seed(&r, seed);
    const struct table *tab = table_for(w, t);
    size_t es = elem_size(w->plan->opts.dtype);
    uint64_t left = t->bytes / es;
    while (left > 0) {
        size_t room = (BUF_BYTES - w->used) / es;
        if (room < 4 && left > room) {
            if ((rc = flush(w)) < 0)
                return rc;
            continue;
        }
        size_t n = left <= room ? (size_t)left : room & ~(size_t)3;
        if (es == 4)
            draw32((float *)(void *)(w->buf + w->used), n, tab->v.f, &r);
        else
            draw16((uint16_t *)(void *)(w->buf + w->used), n, tab->v.h, &r);
        w->used += n * es;
        left -= n;
        if (w->used == BUF_BYTES && (rc = flush(w)) < 0)
            return rc;
    }
    return 0;
}

/* ---- writing ---- */

/* File K as NAME.partial, synced, then renamed to NAME: a reader never sees part of a file
 * under its final name. */
static int write_file(struct writer *w, int dirfd, const char *dir, size_t k)
{
    const struct mdl_init_file *f = &w->plan->files[k];
    char partial[sizeof(f->name) + 8], *label = NULL;
    snprintf(partial, sizeof(partial), "%s.partial", f->name);
    int rc = cru_str_printf(&label, "%s/%s", dir, partial);
    if (rc < 0)
        return rc;
    w->label = label;
    w->fd = openat(dirfd, partial, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        rc = cru_err_sys("cannot create %s", label);
        goto done;
    }
    const char *hdr = f->header;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | (uint8_t)hdr[i];
    if ((rc = put(w, hdr, 8 + (size_t)hlen)) < 0)
        goto done;
    for (size_t i = 0; i < f->n_tensors; i++)
        if ((rc = write_tensor(w, f->tensors[i])) < 0)
            goto done;
    if ((rc = flush(w)) < 0)
        goto done;
    if (fsync(w->fd) < 0) {
        rc = cru_err_sys("cannot sync %s", label);
        goto done;
    }
    if (close(w->fd) < 0) {
        w->fd = -1;
        rc = cru_err_sys("cannot write %s", label);
        goto done;
    }
    w->fd = -1;
    if (renameat(dirfd, partial, dirfd, f->name) < 0)
        rc = cru_err_sys("cannot rename %s to %s", label, f->name);
done:
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    w->used = 0;
    if (rc < 0)
        unlinkat(dirfd, partial, 0);
    free(label);
    return rc;
}

/* Refuses a folder that holds a checkpoint already, and one without room for this one. */
static int check_dir(const struct mdl_init_plan *p, int dirfd, const char *dir)
{
    static const char *const names[] = { "config.json", "model.safetensors",
                                         "model.safetensors.index.json" };
    struct stat st;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
            return cru_err_set(CRU_EEXIST, "%s/%s exists already", dir, names[i]);
    /* Tens of GB that end in a full disk would be found out only at the end. */
    struct statvfs vfs;
    if (fstatvfs(dirfd, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < p->file_bytes)
        return cru_err_set(CRU_ELIMIT, "%s: the checkpoint needs %llu bytes, %llu are free", dir,
                           (unsigned long long)p->file_bytes,
                           (unsigned long long)vfs.f_bavail * vfs.f_frsize);
    return 0;
}

static int copy_tokenizer(const struct mdl_init_opts *o, const char *dir)
{
    const char *files[] = { "tokenizer.json", "tokenizer_config.json" };
    int rc = 0;
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        char *src = NULL, *dst = NULL;
        rc = cru_str_printf(&src, "%s/%s", o->tokenizer_dir, files[i]);
        if (rc == 0)
            rc = cru_str_printf(&dst, "%s/%s", dir, files[i]);
        /* A stale copy from a write that failed is replaced. */
        if (rc == 0 && (rc = cru_remove_tree(dst)) == 0 && (access(src, F_OK) == 0 || i == 0))
            rc = cru_copy_tree(src, dst, (uint64_t)1 << 30, 0);
        free(src);
        free(dst);
    }
    return rc;
}

int mdl_init_plan_write(const struct mdl_init_plan *p, const char *dir)
{
    struct writer *w = NULL;
    int dirfd = -1, rc;
    if ((rc = cru_mkdir_p(dir, 0755)) < 0)
        goto done;
    if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = cru_err_sys("cannot open %s", dir);
        goto done;
    }
    if ((rc = check_dir(p, dirfd, dir)) < 0)
        goto done;
    if (!(w = calloc(1, sizeof(*w))) || !(w->buf = malloc(BUF_BYTES))) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    w->plan = p;
    w->fd = -1;
    for (size_t k = 0; k < p->n_files; k++)
        if ((rc = write_file(w, dirfd, dir, k)) < 0)
            goto done;
    if (p->index && (rc = cru_file_write_atomic_at(dirfd, "model.safetensors.index.json", p->index,
                                                   strlen(p->index), 0644, (uid_t)-1, (gid_t)-1,
                                                   "model.safetensors.index.json")) < 0)
        goto done;
    if (p->opts.tokenizer_dir && (rc = copy_tokenizer(&p->opts, dir)) < 0)
        goto done;
    /* Last: a folder with a config.json holds a whole checkpoint. */
    if ((rc = cru_file_write_atomic_at(dirfd, "config.json", p->config, strlen(p->config), 0644,
                                       (uid_t)-1, (gid_t)-1, "config.json")) < 0)
        goto done;
    if (fsync(dirfd) < 0)
        rc = cru_err_sys("cannot sync %s", dir);
done:
    if (dirfd >= 0)
        close(dirfd);
    if (w)
        free(w->buf);
    free(w);
    return rc < 0 ? cru_err_wrap(rc, "writing a checkpoint to %s", dir) : 0;
}

int mdl_init_write(const char *dir, const struct mdl_init_opts *o)
{
    struct mdl_init_plan *p = NULL;
    int rc = mdl_init_plan_new(&p, o);
    if (rc < 0)
        return cru_err_wrap(rc, "writing a checkpoint to %s", dir);
    rc = mdl_init_plan_write(p, dir);
    mdl_init_plan_free(p);
    return rc;
}
