/* init: writes seeded random checkpoints (config.json and one safetensors file).
 *
 * Each tensor draws from its own generator, seeded from the checkpoint's seed and the tensor's
 * name, so a tensor's values do not depend on which other tensors exist. Matrices are normal
 * with standard deviation 1/sqrt(fan_in) (activations keep their scale through the layers),
 * norm weights 1 + 0.1 N(0,1), the embedding N(0,1). The safetensors header is padded to a
 * multiple of 8 bytes, as the format recommends. It does not read checkpoints (model/model.c
 * does).
 */
#include "model/init.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/str.h"
#include "model/sample.h"

enum fill { FILL_MATRIX, FILL_NORM, FILL_EMBED, FILL_BIAS };

struct tensor {
    char name[MDL_MAX_NAME];
    uint32_t rows, cols; /* rows 0: a vector of cols */
    enum fill fill;
    uint64_t begin, end;
};

struct plan {
    struct tensor *t;
    size_t n, cap;
};

static int add(struct plan *p, uint32_t rows, uint32_t cols, enum fill f, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int add(struct plan *p, uint32_t rows, uint32_t cols, enum fill f, const char *fmt, ...)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct tensor *t = realloc(p->t, cap * sizeof(*t));
        if (!t)
            return cru_err_set(CRU_ENOMEM, "out of memory");
        p->t = t;
        p->cap = cap;
    }
    struct tensor *t = &p->t[p->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof(t->name), fmt, ap);
    va_end(ap);
    t->rows = rows;
    t->cols = cols;
    t->fill = f;
    return 0;
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const struct tensor *)a)->name, ((const struct tensor *)b)->name);
}

static int make_plan(struct plan *p, const struct mdl_init_opts *o)
{
    bool mm = o->arch == MDL_ARCH_MINIMAX_M2;
    uint32_t H = o->hidden, qd = o->heads * o->head_dim, kd = o->kv_heads * o->head_dim;
    int rc = 0;
    rc |= add(p, o->vocab, H, FILL_EMBED, "model.embed_tokens.weight");
    rc |= add(p, 0, H, FILL_NORM, "model.norm.weight");
    if (!o->tied)
        rc |= add(p, o->vocab, H, FILL_MATRIX, "lm_head.weight");
    for (uint32_t i = 0; i < o->layers && rc == 0; i++) {
        const char *L = "model.layers";
        rc |= add(p, 0, H, FILL_NORM, "%s.%u.input_layernorm.weight", L, i);
        rc |= add(p, 0, H, FILL_NORM, "%s.%u.post_attention_layernorm.weight", L, i);
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
            continue;
        }
        const char *blk = mm ? "block_sparse_moe" : "mlp";
        rc |= add(p, o->experts, H, FILL_MATRIX, "%s.%u.%s.gate.weight", L, i, blk);
        if (mm)
            rc |= add(p, 0, o->experts, FILL_BIAS, "%s.%u.%s.e_score_correction_bias", L, i, blk);
        for (uint32_t e = 0; e < o->experts && rc == 0; e++) {
            rc |= add(p, o->moe_inter, H, FILL_MATRIX, "%s.%u.%s.experts.%u.%s.weight", L, i, blk,
                      e, mm ? "w1" : "gate_proj");
            rc |= add(p, o->moe_inter, H, FILL_MATRIX, "%s.%u.%s.experts.%u.%s.weight", L, i, blk,
                      e, mm ? "w3" : "up_proj");
            rc |= add(p, H, o->moe_inter, FILL_MATRIX, "%s.%u.%s.experts.%u.%s.weight", L, i, blk,
                      e, mm ? "w2" : "down_proj");
        }
    }
    if (rc < 0)
        return CRU_ENOMEM;
    qsort(p->t, p->n, sizeof(*p->t), cmp_tensor);
    return 0;
}

static double normal(struct mdl_rng *r)
{
    double u = mdl_rng_uniform(r), v = mdl_rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

static size_t elem_size(enum mdl_dtype d)
{
    return d == MDL_DT_F32 ? 4 : 2;
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

static int write_tensor(FILE *f, const struct tensor *t, const struct mdl_init_opts *o)
{
    uint8_t hash[32];
    int rc = cru_sha256(t->name, strlen(t->name), hash);
    if (rc < 0)
        return rc;
    uint64_t seed = o->seed;
    for (int i = 0; i < 8; i++)
        seed ^= (uint64_t)hash[i] << (8 * i);
    struct mdl_rng r;
    mdl_rng_seed(&r, seed);
    size_t n = (size_t)(t->rows ? t->rows : 1) * t->cols, es = elem_size(o->dtype);
    double scale = t->fill == FILL_MATRIX ? 1.0 / sqrt((double)t->cols) : 1.0;
    uint8_t buf[4096];
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        double x = normal(&r);
        float v = (float)(t->fill == FILL_NORM   ? 1.0 + 0.1 * x
                          : t->fill == FILL_BIAS ? 0.1 * x
                                                 : x * scale);
        if (o->dtype == MDL_DT_F32) {
            memcpy(buf + used, &v, 4);
        } else {
            uint16_t h = o->dtype == MDL_DT_BF16 ? mdl_f32_to_bf16(v) : f32_to_f16(v);
            buf[used] = (uint8_t)(h & 0xff);
            buf[used + 1] = (uint8_t)(h >> 8);
        }
        used += es;
        if (used == sizeof(buf) || i + 1 == n) {
            if (fwrite(buf, 1, used, f) != used)
                return cru_err_sys("cannot write the checkpoint");
            used = 0;
        }
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
        "{s:[s], s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:f, s:I, s:b, s:s, s:n, s:n}",
        "architectures", mm ? "MiniMaxM2ForCausalLM" : "Qwen3MoeForCausalLM", "model_type",
        mdl_arch_name(o->arch), "vocab_size", (json_int_t)o->vocab, "hidden_size",
        (json_int_t)o->hidden, "num_hidden_layers", (json_int_t)o->layers, "num_attention_heads",
        (json_int_t)o->heads, "num_key_value_heads", (json_int_t)o->kv_heads, "head_dim",
        (json_int_t)o->head_dim, "num_experts_per_tok", (json_int_t)o->top_k,
        "max_position_embeddings", (json_int_t)o->max_pos, "hidden_act", "silu", "rms_norm_eps",
        1e-6, "intermediate_size", (json_int_t)(mm ? o->moe_inter : o->inter),
        "tie_word_embeddings", o->tied, "dtype", dt, "bos_token_id", "eos_token_id");
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

int mdl_init_write(const char *dir, const struct mdl_init_opts *opts)
{
    struct mdl_init_opts o = *opts;
    struct plan p = { 0 };
    char *path = NULL, *text = NULL;
    json_t *hdr = NULL, *cfg = NULL;
    FILE *f = NULL;
    int rc;
    if (o.tokenizer_dir && !o.vocab && (rc = mdl_tokenizer_vocab(o.tokenizer_dir, &o.vocab)) < 0)
        return rc;
    if (!o.rotary_dim)
        o.rotary_dim = o.arch == MDL_ARCH_MINIMAX_M2 ? o.head_dim / 2 : o.head_dim;
    if (o.arch == MDL_ARCH_QWEN3_MOE && o.rotary_dim != o.head_dim)
        return cru_err_set(CRU_EINVAL, "rotary dims: qwen3_moe rotates the whole head");
    if ((rc = check_opts(&o)) < 0 || (rc = make_plan(&p, &o)) < 0)
        goto done;
    uint64_t off = 0, params = 0;
    if (!(hdr = json_object())) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < p.n; i++) {
        struct tensor *t = &p.t[i];
        uint64_t n = (uint64_t)(t->rows ? t->rows : 1) * t->cols;
        params += n;
        t->begin = off;
        t->end = off += n * elem_size(o.dtype);
        json_t *shape = t->rows ? json_pack("[I, I]", (json_int_t)t->rows, (json_int_t)t->cols)
                                : json_pack("[I]", (json_int_t)t->cols);
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", mdl_dtype_name(o.dtype), "shape",
                              shape, "data_offsets", (json_int_t)t->begin, (json_int_t)t->end);
        if (!e || json_object_set_new(hdr, t->name, e) < 0) {
            rc = cru_err_set(CRU_ENOMEM, "out of memory");
            goto done;
        }
    }
    if (params > MDL_MAX_INIT_PARAMS) {
        rc = cru_err_set(CRU_ELIMIT, "a checkpoint of %llu parameters (the bound is %llu)",
                         (unsigned long long)params, (unsigned long long)MDL_MAX_INIT_PARAMS);
        goto done;
    }
    json_object_set_new(hdr, "__metadata__", json_pack("{s:s}", "format", "pt"));
    if ((rc = cru_mkdir_p(dir, 0755)) < 0 ||
        (rc = cru_str_printf(&path, "%s/config.json", dir)) < 0)
        goto done;
    if (access(path, F_OK) == 0) {
        rc = cru_err_set(CRU_EEXIST, "%s exists already", path);
        goto done;
    }
    if (!(cfg = config_json(&o))) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    free(path);
    path = NULL;
    if ((rc = cru_str_printf(&path, "%s/model.safetensors", dir)) < 0 ||
        (rc = cru_json_dump(&text, hdr, false)) < 0)
        goto done;
    size_t hlen = strlen(text), padded = (hlen + 7) / 8 * 8;
    if (!(f = fopen(path, "wbx"))) {
        rc = cru_err_sys("cannot create %s", path);
        goto done;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(text, 1, hlen, f) != hlen ||
        fwrite("        ", 1, padded - hlen, f) != padded - hlen) {
        rc = cru_err_sys("cannot write %s", path);
        goto done;
    }
    for (size_t i = 0; i < p.n; i++)
        if ((rc = write_tensor(f, &p.t[i], &o)) < 0)
            goto done;
    if (fclose(f) != 0) {
        f = NULL;
        rc = cru_err_sys("cannot write %s", path);
        goto done;
    }
    f = NULL;
    free(path);
    path = NULL;
    if ((rc = cru_str_printf(&path, "%s/config.json", dir)) < 0 ||
        (rc = cru_json_write_file(path, cfg, 0644)) < 0)
        goto done;
    if (o.tokenizer_dir) {
        const char *files[] = { "tokenizer.json", "tokenizer_config.json" };
        for (size_t i = 0; i < 2; i++) {
            char *src = NULL, *dst = NULL;
            rc = cru_str_printf(&src, "%s/%s", o.tokenizer_dir, files[i]);
            if (rc == 0)
                rc = cru_str_printf(&dst, "%s/%s", dir, files[i]);
            if (rc == 0 && (access(src, F_OK) == 0 || i == 0))
                rc = cru_copy_tree(src, dst, (uint64_t)1 << 30, 0);
            free(src);
            free(dst);
            if (rc < 0)
                goto done;
        }
    }
done:
    if (f)
        fclose(f);
    free(text);
    json_decref(hdr);
    json_decref(cfg);
    free(path);
    free(p.t);
    return rc < 0 ? cru_err_wrap(rc, "writing a checkpoint to %s", dir) : 0;
}
