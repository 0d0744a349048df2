/* model: reads HuggingFace checkpoints (config.json and safetensors) into struct mdl_model.
 *
 * Files are memory-mapped read-only and never copied: a weight is a pointer into its mapping.
 * Every header is validated before any offset in it is used (bounds, dtypes, shapes, overlap),
 * and every tensor the architecture needs is bound by name with its expected shape, so a
 * checkpoint that loads is one the forward can read without further checks. It does not
 * compute anything (model/cpu does) and does not read tokenizer files.
 */
#include "model/model.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/str.h"

struct mdl_mapping {
    char *file; /* the file's name inside the checkpoint folder */
    uint8_t *base;
    size_t size;
    struct mdl_st_header *hdr;
};

/* ---- names ---- */

const char *mdl_arch_name(enum mdl_arch a)
{
    switch (a) {
    case MDL_ARCH_QWEN3_MOE:
        return "qwen3_moe";
    case MDL_ARCH_MINIMAX_M2:
        return "minimax_m2";
    }
    return "unknown";
}

int mdl_arch_parse(const char *s, enum mdl_arch *out)
{
    if (strcmp(s, "qwen3_moe") == 0)
        *out = MDL_ARCH_QWEN3_MOE;
    else if (strcmp(s, "minimax_m2") == 0)
        *out = MDL_ARCH_MINIMAX_M2;
    else
        return cru_err_set(CRU_EINVAL, "unknown architecture '%s' (qwen3_moe, minimax_m2)", s);
    return 0;
}

const char *mdl_dtype_name(enum mdl_dtype d)
{
    switch (d) {
    case MDL_DT_BF16:
        return "BF16";
    case MDL_DT_F16:
        return "F16";
    case MDL_DT_F32:
        return "F32";
    default:
        return "other";
    }
}

/* ---- config.json ---- */

static int get_u32(const json_t *o, const char *key, bool required, uint32_t min, uint32_t max,
                   uint32_t *out)
{
    uint64_t v = *out;
    int rc = cru_json_get_u64(o, "", key, required, min, max, &v);
    if (rc == 0)
        *out = (uint32_t)v;
    return rc;
}

/* A key that must be absent, null or false: it would change the computation. */
static int refuse_true(const json_t *o, const char *key, const char *why)
{
    const json_t *v = json_object_get(o, key);
    if (v && !json_is_null(v) && !json_is_false(v))
        return cru_err_set(CRU_EUNSUPPORTED, "%s: %s", key, why);
    return 0;
}

static int parse_eos(struct mdl_config *c, const json_t *root)
{
    const json_t *v = json_object_get(root, "eos_token_id");
    if (!v || json_is_null(v))
        return 0;
    const json_t *one = v;
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (n > MDL_MAX_STOP_TOKENS)
        return cru_err_set(CRU_ELIMIT, "eos_token_id: more than %d ids", MDL_MAX_STOP_TOKENS);
    for (size_t i = 0; i < n; i++) {
        if (json_is_array(v))
            one = json_array_get(v, i);
        if (!json_is_integer(one) || json_integer_value(one) < 0 ||
            json_integer_value(one) >= (json_int_t)c->vocab)
            return cru_err_set(CRU_EINVAL, "eos_token_id: expected ids below the vocabulary (%u)",
                               c->vocab);
        c->eos[c->n_eos++] = (int32_t)json_integer_value(one);
    }
    return 0;
}

static int parse_rope(struct mdl_config *c, const json_t *root)
{
    json_t *params = NULL;
    double factor = 0;
    int rc = cru_json_get_object(root, "", "rope_parameters", false, &params);
    if (rc < 0)
        return rc;
    const json_t *rp = params, *scaling = json_object_get(root, "rope_scaling");
    if (!rp && scaling && !json_is_null(scaling))
        rp = scaling;
    c->rope_theta = c->arch == MDL_ARCH_MINIMAX_M2 ? 5000000.0 : 10000.0;
    if ((rc = cru_json_get_double(root, "", "rope_theta", false, 1e-3, 1e30, &c->rope_theta)) < 0)
        return rc;
    if (rp) {
        const char *type = "default";
        if ((rc = cru_json_get_str(rp, "rope_parameters", "rope_type", false, &type)) < 0)
            return rc;
        if (strcmp(type, "default") != 0)
            return cru_err_set(CRU_EUNSUPPORTED,
                               "rope_parameters.rope_type: '%s' is not supported (default only)",
                               type);
        if ((rc = cru_json_get_double(rp, "rope_parameters", "rope_theta", false, 1e-3, 1e30,
                                      &c->rope_theta)) < 0 ||
            (rc = cru_json_get_double(rp, "rope_parameters", "partial_rotary_factor", false, 0, 1,
                                      &factor)) < 0)
            return rc;
    }
    if (factor == 0 &&
        (rc = cru_json_get_double(root, "", "partial_rotary_factor", false, 0, 1, &factor)) < 0)
        return rc;
    uint32_t rotary_dim = 0;
    if ((rc = get_u32(root, "rotary_dim", false, 0, MDL_MAX_HEAD_DIM, &rotary_dim)) < 0)
        return rc;
    /* transformers derives the rotated dims from partial_rotary_factor; the published
     * MiniMax-M2 config.json gives rotary_dim instead. */
    if (factor > 0)
        c->rotary_dim = (uint32_t)((double)c->head_dim * factor);
    else if (rotary_dim)
        c->rotary_dim = rotary_dim;
    else
        c->rotary_dim = c->head_dim;
    if (c->rotary_dim == 0 || c->rotary_dim > c->head_dim || c->rotary_dim % 2)
        return cru_err_set(CRU_EINVAL, "rotary dims: %u of a head of %u (must be even, 2..%u)",
                           c->rotary_dim, c->head_dim, c->head_dim);
    return 0;
}

static int parse_qwen3(struct mdl_config *c, const json_t *root)
{
    int rc;
    uint32_t step = 1;
    c->experts = 128;
    if (json_object_get(root, "num_local_experts"))
        rc = get_u32(root, "num_local_experts", true, 0, MDL_MAX_EXPERTS, &c->experts);
    else
        rc = get_u32(root, "num_experts", false, 0, MDL_MAX_EXPERTS, &c->experts);
    if (rc < 0 ||
        (rc = get_u32(root, "moe_intermediate_size", true, 1, MDL_MAX_INTER, &c->moe_inter)) < 0 ||
        (rc = get_u32(root, "intermediate_size", true, 1, MDL_MAX_INTER, &c->inter)) < 0 ||
        (rc = get_u32(root, "decoder_sparse_step", false, 1, MDL_MAX_LAYERS, &step)) < 0 ||
        (rc = cru_json_get_bool(root, "", "norm_topk_prob", false, &c->norm_topk_prob)) < 0 ||
        (rc = refuse_true(root, "use_sliding_window",
                          "sliding-window attention is not supported")) < 0 ||
        (rc = refuse_true(root, "attention_bias", "attention biases are not supported")) < 0)
        return rc;
    json_t *only = NULL;
    if ((rc = cru_json_get_array(root, "", "mlp_only_layers", false, &only)) < 0)
        return rc;
    for (uint32_t i = 0; i < c->layers; i++)
        c->moe_layer[i] = c->experts > 0 && (i + 1) % step == 0;
    for (size_t i = 0; only && i < json_array_size(only); i++) {
        const json_t *v = json_array_get(only, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= (json_int_t)c->layers)
            return cru_err_set(CRU_EINVAL, "mlp_only_layers[%zu]: expected a layer index below %u",
                               i, c->layers);
        c->moe_layer[json_integer_value(v)] = false;
    }
    return 0;
}

static int parse_minimax(struct mdl_config *c, const json_t *root)
{
    int rc;
    const char *s = NULL;
    c->experts = 256;
    c->routing_bias = true;
    if ((rc = get_u32(root, "num_local_experts", false, 1, MDL_MAX_EXPERTS, &c->experts)) < 0 ||
        (rc = get_u32(root, "intermediate_size", true, 1, MDL_MAX_INTER, &c->moe_inter)) < 0 ||
        (rc = cru_json_get_bool(root, "", "use_routing_bias", false, &c->routing_bias)) < 0)
        return rc;
    if ((rc = cru_json_get_str(root, "", "scoring_func", false, &s)) < 0)
        return rc;
    if (s && strcmp(s, "sigmoid") != 0)
        return cru_err_set(CRU_EUNSUPPORTED, "scoring_func: '%s' is not supported (sigmoid)", s);
    s = NULL;
    if ((rc = cru_json_get_str(root, "", "qk_norm_type", false, &s)) < 0)
        return rc;
    if (s && strcmp(s, "per_layer") != 0)
        return cru_err_set(CRU_EUNSUPPORTED, "qk_norm_type: '%s' is not supported (per_layer)", s);
    const json_t *qk = json_object_get(root, "use_qk_norm");
    if (qk && json_is_false(qk))
        return cru_err_set(CRU_EUNSUPPORTED, "use_qk_norm: false is not supported");
    const json_t *shared = json_object_get(root, "shared_intermediate_size");
    if (shared && !(json_is_integer(shared) && json_integer_value(shared) == 0) &&
        !json_is_null(shared))
        return cru_err_set(CRU_EUNSUPPORTED,
                           "shared_intermediate_size: shared experts are not supported");
    const json_t *types = json_object_get(root, "attn_type_list");
    for (size_t i = 0; json_is_array(types) && i < json_array_size(types); i++) {
        const json_t *t = json_array_get(types, i);
        if (!json_is_integer(t) || json_integer_value(t) != 1)
            return cru_err_set(CRU_EUNSUPPORTED,
                               "attn_type_list[%zu]: only full attention (1) is supported", i);
    }
    for (uint32_t i = 0; i < c->layers; i++)
        c->moe_layer[i] = true;
    c->inter = c->moe_inter;
    return 0;
}

static int parse_config(struct mdl_config *c, const json_t *root)
{
    int rc;
    const char *type = NULL, *act = "silu";
    if (!json_is_object(root))
        return cru_err_set(CRU_EPARSE, "expected a JSON object");
    if ((rc = cru_json_get_str(root, "", "model_type", false, &type)) < 0)
        return rc;
    const json_t *archs = json_object_get(root, "architectures");
    const char *arch0 = json_string_value(json_array_get(archs, 0));
    if (!type && arch0)
        type = strcmp(arch0, "Qwen3MoeForCausalLM") == 0    ? "qwen3_moe"
               : strcmp(arch0, "MiniMaxM2ForCausalLM") == 0 ? "minimax_m2"
                                                            : arch0;
    if (!type)
        return cru_err_set(CRU_EINVAL, "model_type: missing (qwen3_moe or minimax_m2)");
    if (strcmp(type, "qwen3_moe") == 0) {
        c->arch = MDL_ARCH_QWEN3_MOE;
    } else if (strcmp(type, "minimax_m2") == 0) {
        c->arch = MDL_ARCH_MINIMAX_M2;
    } else {
        char shown[CRU_SHOW_CAP(64)];
        return cru_err_set(CRU_EUNSUPPORTED,
                           "model_type: architecture '%s' is not supported (qwen3_moe, minimax_m2)",
                           cru_str_show(shown, type, 64, false));
    }
    const char *want =
        c->arch == MDL_ARCH_QWEN3_MOE ? "Qwen3MoeForCausalLM" : "MiniMaxM2ForCausalLM";
    if (archs && (!json_is_array(archs) || json_array_size(archs) != 1 || !arch0 ||
                  strcmp(arch0, want) != 0))
        return cru_err_set(CRU_EUNSUPPORTED, "architectures: expected [\"%s\"] for model_type %s",
                           want, type);
    if ((rc = get_u32(root, "vocab_size", true, 1, MDL_MAX_VOCAB, &c->vocab)) < 0 ||
        (rc = get_u32(root, "hidden_size", true, 1, MDL_MAX_HIDDEN, &c->hidden)) < 0 ||
        (rc = get_u32(root, "num_hidden_layers", true, 1, MDL_MAX_LAYERS, &c->layers)) < 0 ||
        (rc = get_u32(root, "num_attention_heads", true, 1, MDL_MAX_HEADS, &c->heads)) < 0)
        return rc;
    c->kv_heads = c->heads;
    c->head_dim = c->hidden / c->heads;
    c->top_k = c->arch == MDL_ARCH_QWEN3_MOE ? 8 : 8;
    c->max_pos = 32768;
    double eps = 1e-6;
    if ((rc = get_u32(root, "num_key_value_heads", false, 1, MDL_MAX_HEADS, &c->kv_heads)) < 0 ||
        (rc = get_u32(root, "head_dim", false, 1, MDL_MAX_HEAD_DIM, &c->head_dim)) < 0 ||
        (rc = get_u32(root, "num_experts_per_tok", false, 1, MDL_MAX_EXPERTS, &c->top_k)) < 0 ||
        (rc = get_u32(root, "max_position_embeddings", false, 1, UINT32_MAX, &c->max_pos)) < 0 ||
        (rc = cru_json_get_double(root, "", "rms_norm_eps", false, 0, 1, &eps)) < 0 ||
        (rc = cru_json_get_bool(root, "", "tie_word_embeddings", false, &c->tied)) < 0 ||
        (rc = cru_json_get_str(root, "", "hidden_act", false, &act)) < 0)
        return rc;
    c->rms_eps = (float)eps;
    if (c->head_dim == 0 || c->head_dim > MDL_MAX_HEAD_DIM)
        return cru_err_set(CRU_EINVAL, "head_dim: %u (hidden_size %u over %u heads) outside 1..%d",
                           c->head_dim, c->hidden, c->heads, MDL_MAX_HEAD_DIM);
    if (c->heads % c->kv_heads)
        return cru_err_set(CRU_EINVAL,
                           "num_key_value_heads: %u does not divide num_attention_heads (%u)",
                           c->kv_heads, c->heads);
    if (strcmp(act, "silu") != 0)
        return cru_err_set(CRU_EUNSUPPORTED, "hidden_act: '%.32s' is not supported (silu)", act);
    if (json_object_get(root, "quantization_config"))
        return cru_err_set(CRU_EUNSUPPORTED,
                           "quantization_config: quantized checkpoints are not supported "
                           "(bf16, f16 and f32 weights only)");
    c->moe_layer = calloc(c->layers, sizeof(bool));
    if (!c->moe_layer)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    rc = c->arch == MDL_ARCH_QWEN3_MOE ? parse_qwen3(c, root) : parse_minimax(c, root);
    if (rc < 0 || (rc = parse_rope(c, root)) < 0 || (rc = parse_eos(c, root)) < 0)
        return rc;
    if (c->experts && (c->top_k > c->experts))
        return cru_err_set(CRU_EINVAL, "num_experts_per_tok: %u is more than the %u experts",
                           c->top_k, c->experts);
    return 0;
}

int mdl_config_parse(struct mdl_config *out, const char *text, size_t len, const char *name)
{
    json_t *root = NULL;
    struct mdl_config c = { 0 };
    if (len > MDL_MAX_CONFIG)
        return cru_err_set(CRU_ELIMIT, "%s: larger than %zu bytes", name, MDL_MAX_CONFIG);
    int rc = cru_json_parse(&root, text, len, name);
    if (rc < 0)
        return rc;
    rc = parse_config(&c, root);
    json_decref(root);
    if (rc < 0) {
        mdl_config_free(&c);
        return cru_err_wrap(rc, "%s", name);
    }
    *out = c;
    return 0;
}

void mdl_config_free(struct mdl_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->moe_layer);
    cfg->moe_layer = NULL;
}

/* ---- safetensors headers ---- */

static const struct {
    const char *name;
    enum mdl_dtype dt;
    unsigned bytes;
} dtypes[] = {
    { "BF16", MDL_DT_BF16, 2 },  { "F16", MDL_DT_F16, 2 },       { "F32", MDL_DT_F32, 4 },
    { "F64", MDL_DT_OTHER, 8 },  { "I64", MDL_DT_OTHER, 8 },     { "U64", MDL_DT_OTHER, 8 },
    { "I32", MDL_DT_OTHER, 4 },  { "U32", MDL_DT_OTHER, 4 },     { "I16", MDL_DT_OTHER, 2 },
    { "U16", MDL_DT_OTHER, 2 },  { "I8", MDL_DT_OTHER, 1 },      { "U8", MDL_DT_OTHER, 1 },
    { "BOOL", MDL_DT_OTHER, 1 }, { "F8_E4M3", MDL_DT_OTHER, 1 }, { "F8_E5M2", MDL_DT_OTHER, 1 },
};

void mdl_st_header_free(struct mdl_st_header *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->tensors[i].name);
    free(h->tensors);
    free(h);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct mdl_st_tensor *)a)->name, ((const struct mdl_st_tensor *)b)->name);
}

static int cmp_begin(const void *a, const void *b)
{
    const struct mdl_st_tensor *x = *(const struct mdl_st_tensor *const *)a;
    const struct mdl_st_tensor *y = *(const struct mdl_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

const struct mdl_st_tensor *mdl_st_find(const struct mdl_st_header *h, const char *name)
{
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(h->tensors[mid].name, name);
        if (c == 0)
            return &h->tensors[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The fields of one tensor; errors leave naming it to parse_tensor. */
static int tensor_fields(struct mdl_st_tensor *t, const json_t *v, uint64_t data_len)
{
    if (!json_is_object(v))
        return cru_err_set(CRU_EPARSE, "expected an object");
    const char *dt = json_string_value(json_object_get(v, "dtype"));
    const json_t *shape = json_object_get(v, "shape"), *off = json_object_get(v, "data_offsets");
    if (!dt || !json_is_array(shape) || !json_is_array(off) || json_array_size(off) != 2)
        return cru_err_set(CRU_EPARSE, "expected dtype (a string), shape and data_offsets "
                                       "(arrays of integers)");
    size_t k = 0, nd = sizeof(dtypes) / sizeof(dtypes[0]);
    while (k < nd && strcmp(dtypes[k].name, dt) != 0)
        k++;
    if (k == nd) {
        char dshown[CRU_SHOW_CAP(16)];
        return cru_err_set(CRU_EPARSE, "unknown dtype '%s'", cru_str_show(dshown, dt, 16, false));
    }
    t->dtype = dtypes[k].dt;
    t->dtype_name = dtypes[k].name;
    if (json_array_size(shape) > MDL_MAX_DIMS)
        return cru_err_set(CRU_ELIMIT, "more than %d dimensions", MDL_MAX_DIMS);
    t->n_dims = (uint32_t)json_array_size(shape);
    uint64_t count = 1;
    for (uint32_t i = 0; i < t->n_dims; i++) {
        const json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return cru_err_set(CRU_EPARSE, "shape[%u] is not a size", i);
        t->shape[i] = (uint64_t)json_integer_value(d);
        if (t->shape[i] && count > UINT64_MAX / 8 / t->shape[i])
            return cru_err_set(CRU_ELIMIT, "the shape's size overflows");
        count *= t->shape[i];
    }
    for (int i = 0; i < 2; i++) {
        const json_t *o = json_array_get(off, (size_t)i);
        if (!json_is_integer(o) || json_integer_value(o) < 0)
            return cru_err_set(CRU_EPARSE, "data_offsets[%d] is not an offset", i);
    }
    t->begin = (uint64_t)json_integer_value(json_array_get(off, 0));
    t->end = (uint64_t)json_integer_value(json_array_get(off, 1));
    if (t->end < t->begin || t->end > data_len)
        return cru_err_set(CRU_EPARSE, "data_offsets [%llu, %llu] outside the %llu bytes of data",
                           (unsigned long long)t->begin, (unsigned long long)t->end,
                           (unsigned long long)data_len);
    if (t->end - t->begin != count * dtypes[k].bytes)
        return cru_err_set(CRU_EPARSE, "%llu bytes for a %s shape of %llu elements (%llu bytes)",
                           (unsigned long long)(t->end - t->begin), dt, (unsigned long long)count,
                           (unsigned long long)(count * dtypes[k].bytes));
    return 0;
}

static int parse_tensor(struct mdl_st_tensor *t, const char *name, const json_t *v,
                        uint64_t data_len)
{
    int rc = tensor_fields(t, v, data_len);
    if (rc < 0) {
        /* Escaped only on failure: a header may hold a quarter of a million names. */
        char shown[CRU_SHOW_CAP(96)];
        return cru_err_wrap(rc, "tensor '%s'", cru_str_show(shown, name, 96, true));
    }
    return 0;
}

static int check_overlap(struct mdl_st_header *h)
{
    if (h->n < 2)
        return 0;
    struct mdl_st_tensor **by = malloc(h->n * sizeof(*by));
    if (!by)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    for (size_t i = 0; i < h->n; i++)
        by[i] = &h->tensors[i];
    qsort(by, h->n, sizeof(*by), cmp_begin);
    int rc = 0;
    /* In order of their starts, a tensor overlaps an earlier one exactly when it starts before
     * the furthest end so far. Empty tensors occupy no bytes and overlap nothing, so they are
     * passed over: comparing neighbours only, an empty one between two others hid their
     * overlap. */
    const struct mdl_st_tensor *far = NULL;
    for (size_t i = 0; i < h->n && rc == 0; i++) {
        const struct mdl_st_tensor *t = by[i];
        if (t->end == t->begin)
            continue;
        if (far && t->begin < far->end) {
            char a[CRU_SHOW_CAP(96)], b[CRU_SHOW_CAP(96)];
            rc = cru_err_set(CRU_EPARSE, "tensors '%s' and '%s' overlap",
                             cru_str_show(a, far->name, 96, true),
                             cru_str_show(b, t->name, 96, true));
        }
        if (!far || t->end > far->end)
            far = t;
    }
    free(by);
    return rc;
}

/* What a checkpoint's headers hold, counted for the bounds that hold for all its files
 * together. */
struct st_used {
    uint64_t header_bytes, tensors, members, values;
};

/* Refuses a header of COUNT things (WHAT) when the checkpoint's files before it (zero for a
 * file read on its own) held USED of them and LIMIT is the bound on all together. */
static int st_limit(const char *name, const char *what, uint64_t count, uint64_t used,
                    uint64_t limit)
{
    if (count <= limit - used)
        return 0;
    if (used == 0)
        return cru_err_set(CRU_ELIMIT,
                           "%s: a safetensors header of %llu %s is over the limit of %llu", name,
                           (unsigned long long)count, what, (unsigned long long)limit);
    return cru_err_set(CRU_ELIMIT,
                       "%s: a safetensors header of %llu %s brings the checkpoint to %llu, over "
                       "the limit of %llu for all its files together",
                       name, (unsigned long long)count, what, (unsigned long long)(count + used),
                       (unsigned long long)limit);
}

/* Checks the header's length, then counts its tensors, members and values into *HERE, all
 * before jansson parses a byte of it (its tree costs about 1.2 KiB a tensor). */
static int st_bound(const uint8_t *data, size_t size, const char *name, const struct st_used *used,
                    struct st_used *here)
{
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | data[i];
    int rc = st_limit(name, "bytes", n, used->header_bytes, MDL_MAX_ST_HEADER);
    if (rc < 0)
        return rc;
    if (n < 2 || n > size - 8)
        return cru_err_set(CRU_EPARSE, "%s: a header of %llu bytes in a file of %zu (truncated)",
                           name, (unsigned long long)n, size);
    struct cru_json_counts c;
    const char *text = (const char *)data + 8;
    cru_json_count(text, (size_t)n, &c);
    /* One member of the top level is no tensor when it is __metadata__. The count is exact
     * for valid JSON, and checked again after the parse. */
    size_t tensors = c.members_at[0];
    if (tensors > 0 && memmem(text, (size_t)n, "\"__metadata__\"", 14))
        tensors--;
    *here = (struct st_used){ n, tensors, c.members, c.values };
    if ((rc = st_limit(name, "tensors", here->tensors, used->tensors, MDL_MAX_TENSORS)) < 0 ||
        (rc = st_limit(name, "object members", c.members, used->members, MDL_MAX_ST_MEMBERS)) < 0 ||
        (rc = st_limit(name, "JSON values", c.values, used->values, MDL_MAX_ST_VALUES)) < 0)
        return rc;
    return 0;
}

/* __metadata__, which safetensors allows to hold strings only. */
static int st_metadata(json_t *v, const char *name)
{
    const char *mk;
    json_t *mv;
    if (!json_is_object(v))
        return cru_err_set(CRU_EPARSE, "%s: __metadata__ is not an object", name);
    json_object_foreach(v, mk, mv)
    {
        if (!json_is_string(mv))
            return cru_err_set(CRU_EPARSE, "%s: __metadata__ values must be strings", name);
    }
    return 0;
}

/* Fills H's tensors from the parsed header ROOT. */
static int st_tensors(struct mdl_st_header *h, json_t *root, uint64_t data_len, const char *name,
                      const struct st_used *used)
{
    if (!json_is_object(root))
        return cru_err_set(CRU_EPARSE, "%s: the header is not a JSON object", name);
    size_t count = json_object_size(root);
    count -= json_object_get(root, "__metadata__") != NULL;
    /* Again, on the JSON that jansson read: the scan's count is exact only for valid text. */
    int rc = st_limit(name, "tensors", count, used->tensors, MDL_MAX_TENSORS);
    if (rc < 0)
        return rc;
    h->tensors = calloc(count ? count : 1, sizeof(*h->tensors));
    if (!h->tensors)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "__metadata__") == 0) {
            if ((rc = st_metadata(v, name)) < 0)
                return rc;
            continue;
        }
        size_t klen = strlen(key);
        if (klen > MDL_MAX_NAME || klen == 0)
            return cru_err_set(CRU_ELIMIT, "%s: a tensor name of %zu bytes (1 to %d)", name, klen,
                               MDL_MAX_NAME);
        struct mdl_st_tensor *t = &h->tensors[h->n];
        if (!(t->name = strdup(key)))
            return cru_err_set(CRU_ENOMEM, "out of memory");
        h->n++;
        if ((rc = parse_tensor(t, key, v, data_len)) < 0)
            return cru_err_wrap(rc, "%s", name);
    }
    qsort(h->tensors, h->n, sizeof(*h->tensors), cmp_name);
    if ((rc = check_overlap(h)) < 0)
        return cru_err_wrap(rc, "%s", name);
    return 0;
}

/* mdl_st_parse, within what USED leaves of the checkpoint's bounds; on success the header's
 * bytes, tensors and values are added to USED. */
static int st_parse(struct mdl_st_header **out, const uint8_t *data, size_t size, const char *name,
                    struct st_used *used)
{
    *out = NULL;
    if (size < 8)
        return cru_err_set(CRU_EPARSE, "%s: %zu bytes: shorter than a safetensors header", name,
                           size);
    struct st_used here = { 0 };
    int rc = st_bound(data, size, name, used, &here);
    if (rc < 0)
        return rc;
    uint64_t n = here.header_bytes;
    json_t *root = NULL;
    if ((rc = cru_json_parse(&root, (const char *)data + 8, (size_t)n, name)) < 0)
        return rc;
    struct mdl_st_header *h = calloc(1, sizeof(*h));
    if (!h) {
        json_decref(root);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    h->data_start = 8 + n;
    rc = st_tensors(h, root, size - h->data_start, name, used);
    json_decref(root);
    if (rc < 0) {
        mdl_st_header_free(h);
        return rc;
    }
    used->header_bytes += n;
    used->tensors += h->n;
    used->members += here.members;
    used->values += here.values;
    *out = h;
    return 0;
}

int mdl_st_parse(struct mdl_st_header **out, const uint8_t *data, size_t size, const char *name)
{
    struct st_used none = { 0 };
    return st_parse(out, data, size, name, &none);
}

/* ---- loading ---- */

static void unmap(struct mdl_mapping *mp)
{
    if (mp->base)
        munmap(mp->base, mp->size);
    mdl_st_header_free(mp->hdr);
    free(mp->file);
}

void mdl_model_free(struct mdl_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_maps; i++)
        unmap(&m->maps[i]);
    free(m->maps);
    free(m->by_name);
    if (m->layers)
        for (uint32_t i = 0; i < m->cfg.layers; i++)
            free(m->layers[i].experts);
    free(m->layers);
    mdl_config_free(&m->cfg);
    free(m->dir);
    free(m);
}

static int map_file(struct mdl_mapping *mp, const char *dir, const char *file, struct st_used *used)
{
    char *path = NULL;
    int fd = -1, rc;
    if ((rc = cru_str_printf(&path, "%s/%s", dir, file)) < 0 ||
        (rc = cru_str_dup(&mp->file, file)) < 0)
        goto done;
    struct stat st;
    if ((rc = cru_file_open_regular(AT_FDCWD, path, 0, path, &fd, &st)) < 0)
        goto done;
    mp->size = (size_t)st.st_size;
    if (mp->size > 0) {
        void *p = mmap(NULL, mp->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            rc = cru_err_sys("cannot map %s", path);
            goto done;
        }
        mp->base = p;
    }
    rc = st_parse(&mp->hdr, mp->base ? mp->base : (const uint8_t *)"", mp->size, path, used);
done:
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

void mdl_st_index_free(struct mdl_st_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; ix->files && i < ix->n_files; i++)
        free(ix->files[i]);
    for (size_t i = 0; ix->entries && i < ix->n_entries; i++)
        free(ix->entries[i].tensor);
    free(ix->files);
    free(ix->entries);
    free(ix);
}

/* The number of file F in IX, added unless SEEN (an object used as a hash set from names to
 * numbers: jansson seeds its hash at random, so no index can make the lookups collide) has
 * it. A list searched for each of a quarter million entries would cost entries times files. */
static int index_add(json_t *seen, struct mdl_st_index *ix, const char *f, const char *name,
                     uint32_t *out)
{
    json_t *known = json_object_get(seen, f);
    if (known) {
        *out = (uint32_t)json_integer_value(known);
        return 0;
    }
    if (ix->n_files >= MDL_MAX_SHARDS)
        return cru_err_set(CRU_ELIMIT, "%s: more than %d shard files", name, MDL_MAX_SHARDS);
    char **grown = realloc(ix->files, (ix->n_files + 1) * sizeof(char *));
    if (!grown)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    ix->files = grown;
    if (!(grown[ix->n_files] = strdup(f)))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    *out = (uint32_t)ix->n_files++;
    if (json_object_set_new(seen, f, json_integer(*out)) < 0)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct mdl_st_index_entry *)a)->tensor,
                  ((const struct mdl_st_index_entry *)b)->tensor);
}

/* metadata.total_size when it is a byte count; anything else there is no concern of ours. */
static void index_total_size(struct mdl_st_index *ix, const json_t *root)
{
    const json_t *t = json_object_get(json_object_get(root, "metadata"), "total_size");
    if (json_is_integer(t) && json_integer_value(t) >= 0) {
        ix->has_total_size = true;
        ix->total_size = (uint64_t)json_integer_value(t);
    }
}

/* Bounds the index's bytes and the tree jansson would build, before it builds it. */
static int index_bound(const char *text, size_t len, const char *name)
{
    struct cru_json_counts c;
    if (len > MDL_MAX_INDEX)
        return cru_err_set(CRU_ELIMIT, "%s: an index of %zu bytes is over the limit of %zu", name,
                           len, MDL_MAX_INDEX);
    cru_json_count(text, len, &c);
    if (c.members > MDL_MAX_ST_MEMBERS)
        return cru_err_set(CRU_ELIMIT, "%s: an index of %zu object members is over the limit of %u",
                           name, c.members, MDL_MAX_ST_MEMBERS);
    if (c.values > MDL_MAX_ST_VALUES)
        return cru_err_set(CRU_ELIMIT, "%s: an index of %zu JSON values is over the limit of %u",
                           name, c.values, MDL_MAX_ST_VALUES);
    return 0;
}

static int index_entries(struct mdl_st_index *ix, json_t *map, const char *name)
{
    json_t *seen = json_object();
    if (!seen || !(ix->entries = calloc(json_object_size(map) + 1, sizeof(*ix->entries)))) {
        json_decref(seen);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(map, key, v)
    {
        const char *f = json_string_value(v);
        char shown[CRU_SHOW_CAP(96)];
        if (!f || !*f || strchr(f, '/') || strcmp(f, ".") == 0 || strcmp(f, "..") == 0 ||
            strlen(f) > 255) {
            rc = cru_err_set(CRU_EUNSAFE, "%s: weight_map.%s: expected a file name in the folder",
                             name, cru_str_show(shown, key, 96, true));
            break;
        }
        size_t klen = strlen(key);
        if (klen == 0 || klen > MDL_MAX_NAME) {
            rc = cru_err_set(CRU_ELIMIT, "%s: a tensor name of %zu bytes (1 to %d)", name, klen,
                             MDL_MAX_NAME);
            break;
        }
        struct mdl_st_index_entry *e = &ix->entries[ix->n_entries];
        if ((rc = index_add(seen, ix, f, name, &e->file)) < 0)
            break;
        if (!(e->tensor = strdup(key))) {
            rc = cru_err_set(CRU_ENOMEM, "out of memory");
            break;
        }
        ix->n_entries++;
    }
    json_decref(seen);
    if (rc == 0)
        qsort(ix->entries, ix->n_entries, sizeof(*ix->entries), cmp_entry);
    return rc;
}

int mdl_st_index_parse(struct mdl_st_index **out, const char *text, size_t len, const char *name)
{
    json_t *root = NULL, *map = NULL;
    struct mdl_st_index *ix = NULL;
    *out = NULL;
    int rc = index_bound(text, len, name);
    if (rc < 0 || (rc = cru_json_parse(&root, text, len, name)) < 0)
        return rc;
    if (!json_is_object(root)) {
        rc = cru_err_set(CRU_EPARSE, "%s: expected a JSON object", name);
        goto done;
    }
    if ((rc = cru_json_get_object(root, "", "weight_map", true, &map)) < 0) {
        cru_err_wrap(rc, "%s", name);
        goto done;
    }
    if (json_object_size(map) > MDL_MAX_TENSORS) {
        rc = cru_err_set(CRU_ELIMIT, "%s: a weight_map of %zu tensors is over the limit of %u",
                         name, json_object_size(map), MDL_MAX_TENSORS);
        goto done;
    }
    if (!(ix = calloc(1, sizeof(*ix)))) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = index_entries(ix, map, name)) < 0)
        goto done;
    if (ix->n_files == 0) {
        rc = cru_err_set(CRU_EINVAL, "%s: weight_map names no file", name);
        goto done;
    }
    index_total_size(ix, root);
done:
    json_decref(root);
    if (rc < 0) {
        mdl_st_index_free(ix);
        return rc;
    }
    *out = ix;
    return 0;
}

/* model.safetensors.index.json of DIR. */
static int index_read(const char *dir, struct mdl_st_index **out)
{
    char *path = NULL;
    struct cru_buf b = CRU_BUF_INIT;
    int rc;
    if ((rc = cru_str_printf(&path, "%s/model.safetensors.index.json", dir)) == 0 &&
        (rc = cru_file_read(path, MDL_MAX_INDEX, &b)) == 0)
        rc = mdl_st_index_parse(out, cru_buf_cstr(&b), b.len, path);
    cru_buf_free(&b);
    free(path);
    return rc;
}

/* A tensor of one of the checkpoint's files. */
struct mdl_tensor_ref {
    const struct mdl_st_tensor *t;
    const struct mdl_mapping *mp;
};

static int cmp_ref(const void *a, const void *b)
{
    return strcmp(((const struct mdl_tensor_ref *)a)->t->name,
                  ((const struct mdl_tensor_ref *)b)->t->name);
}

/* Sorts the tensors of every file into one list, so that binding a tensor is one binary search
 * however many files there are (a search of each file in turn would cost tensors times files).
 * A name in two files is an error: which copy the forward reads must not depend on the order
 * of the index. */
static int index_tensors(struct mdl_model *m)
{
    size_t total = 0;
    for (size_t i = 0; i < m->n_maps; i++)
        total += m->maps[i].hdr->n;
    if (!(m->by_name = calloc(total ? total : 1, sizeof(*m->by_name))))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n_maps; i++)
        for (size_t k = 0; k < m->maps[i].hdr->n; k++)
            m->by_name[m->n_by_name++] =
                (struct mdl_tensor_ref){ &m->maps[i].hdr->tensors[k], &m->maps[i] };
    qsort(m->by_name, m->n_by_name, sizeof(*m->by_name), cmp_ref);
    for (size_t i = 1; i < m->n_by_name; i++) {
        const struct mdl_tensor_ref *a = &m->by_name[i - 1], *b = &m->by_name[i];
        if (strcmp(a->t->name, b->t->name) == 0) {
            char shown[CRU_SHOW_CAP(96)];
            return cru_err_set(CRU_EINVAL, "tensor '%s' is in both %s and %s",
                               cru_str_show(shown, a->t->name, 96, true), a->mp->file, b->mp->file);
        }
    }
    return 0;
}

/* Holds the files to what the index says of them: each tensor in the file it names, each
 * tensor of the files named. Both lists are sorted by name, so one walk compares them. A
 * tensor read from another file than the one named would make the checkpoint mean one thing
 * here and another to a reader that trusts the index. */
static int index_check(const struct mdl_model *m, const struct mdl_st_index *ix)
{
    static const char *const idx = "model.safetensors.index.json";
    char shown[CRU_SHOW_CAP(96)];
    size_t i = 0, k = 0;
    uint64_t bytes = 0;
    while (i < ix->n_entries || k < m->n_by_name) {
        if (k == m->n_by_name ||
            (i < ix->n_entries && strcmp(ix->entries[i].tensor, m->by_name[k].t->name) < 0)) {
            const struct mdl_st_index_entry *e = &ix->entries[i];
            return cru_err_set(CRU_EINVAL, "%s puts tensor '%s' in %s, which does not hold it", idx,
                               cru_str_show(shown, e->tensor, 96, true), ix->files[e->file]);
        }
        const struct mdl_tensor_ref *r = &m->by_name[k];
        if (i == ix->n_entries || strcmp(ix->entries[i].tensor, r->t->name) > 0)
            return cru_err_set(CRU_EINVAL, "tensor '%s' of %s is not in %s",
                               cru_str_show(shown, r->t->name, 96, true), r->mp->file, idx);
        const struct mdl_st_index_entry *e = &ix->entries[i];
        if (r->mp != &m->maps[e->file])
            return cru_err_set(CRU_EINVAL, "%s puts tensor '%s' in %s, but it is in %s", idx,
                               cru_str_show(shown, e->tensor, 96, true), ix->files[e->file],
                               r->mp->file);
        bytes += r->t->end - r->t->begin;
        i++, k++;
    }
    if (ix->has_total_size && ix->total_size != bytes)
        cru_warn("%s/%s: metadata.total_size is %llu, the files' tensors take %llu bytes", m->dir,
                 idx, (unsigned long long)ix->total_size, (unsigned long long)bytes);
    return 0;
}

static const struct mdl_st_tensor *find(const struct mdl_model *m, const char *name,
                                        const struct mdl_mapping **where)
{
    size_t lo = 0, hi = m->n_by_name;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->by_name[mid].t->name, name);
        if (c == 0) {
            *where = m->by_name[mid].mp;
            return m->by_name[mid].t;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Binds W to tensor NAME, which must be ROWS x COLS (COLS alone when ROWS is 0: a vector). */
static int bind(struct mdl_model *m, struct mdl_weight *w, uint32_t rows, uint32_t cols,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int bind(struct mdl_model *m, struct mdl_weight *w, uint32_t rows, uint32_t cols,
                const char *fmt, ...)
{
    char name[MDL_MAX_NAME + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    const struct mdl_mapping *mp = NULL;
    const struct mdl_st_tensor *t = find(m, name, &mp);
    if (!t)
        return cru_err_set(CRU_ENOENT, "tensor '%s' is missing", name);
    if (t->dtype == MDL_DT_OTHER)
        return cru_err_set(CRU_EUNSUPPORTED, "%s: tensor '%s' has dtype %s (BF16, F16, F32 only)",
                           mp->file, name, t->dtype_name);
    bool ok = rows ? t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols
                   : t->n_dims == 1 && t->shape[0] == cols;
    if (!ok) {
        char got[128] = "", *p = got;
        for (uint32_t i = 0; i < t->n_dims && p < got + sizeof(got) - 24; i++)
            p += snprintf(p, 24, "%s%llu", i ? ", " : "", (unsigned long long)t->shape[i]);
        if (rows)
            return cru_err_set(CRU_EINVAL, "%s: tensor '%s' has shape [%s], expected [%u, %u]",
                               mp->file, name, got, rows, cols);
        return cru_err_set(CRU_EINVAL, "%s: tensor '%s' has shape [%s], expected [%u]", mp->file,
                           name, got, cols);
    }
    w->data = mp->base + mp->hdr->data_start + t->begin;
    w->dtype = t->dtype;
    w->rows = rows ? rows : 1;
    w->cols = cols;
    uint64_t bytes = t->end - t->begin;
    m->n_params += (uint64_t)w->rows * cols;
    m->weight_bytes += bytes;
    return 0;
}

static uint64_t wbytes(const struct mdl_weight *w)
{
    return (uint64_t)w->rows * w->cols * (w->dtype == MDL_DT_F32 ? 4 : 2);
}

static int bind_layer(struct mdl_model *m, uint32_t i)
{
    const struct mdl_config *c = &m->cfg;
    struct mdl_layer *L = &m->layers[i];
    bool mm = c->arch == MDL_ARCH_MINIMAX_M2;
    uint32_t H = c->hidden, qd = c->heads * c->head_dim, kd = c->kv_heads * c->head_dim;
    const char *p = "model.layers";
    int rc;
    if ((rc = bind(m, &L->attn_norm, 0, H, "%s.%u.input_layernorm.weight", p, i)) < 0 ||
        (rc = bind(m, &L->mlp_norm, 0, H, "%s.%u.post_attention_layernorm.weight", p, i)) < 0 ||
        (rc = bind(m, &L->q, qd, H, "%s.%u.self_attn.q_proj.weight", p, i)) < 0 ||
        (rc = bind(m, &L->k, kd, H, "%s.%u.self_attn.k_proj.weight", p, i)) < 0 ||
        (rc = bind(m, &L->v, kd, H, "%s.%u.self_attn.v_proj.weight", p, i)) < 0 ||
        (rc = bind(m, &L->o, H, qd, "%s.%u.self_attn.o_proj.weight", p, i)) < 0 ||
        (rc = bind(m, &L->q_norm, 0, mm ? qd : c->head_dim, "%s.%u.self_attn.q_norm.weight", p,
                   i)) < 0 ||
        (rc = bind(m, &L->k_norm, 0, mm ? kd : c->head_dim, "%s.%u.self_attn.k_norm.weight", p,
                   i)) < 0)
        return rc;
    uint64_t active = wbytes(&L->attn_norm) + wbytes(&L->mlp_norm) + wbytes(&L->q) + wbytes(&L->k) +
                      wbytes(&L->v) + wbytes(&L->o) + wbytes(&L->q_norm) + wbytes(&L->k_norm);
    L->moe = c->moe_layer[i];
    if (!L->moe) {
        if ((rc = bind(m, &L->dense.gate, c->inter, H, "%s.%u.mlp.gate_proj.weight", p, i)) < 0 ||
            (rc = bind(m, &L->dense.up, c->inter, H, "%s.%u.mlp.up_proj.weight", p, i)) < 0 ||
            (rc = bind(m, &L->dense.down, H, c->inter, "%s.%u.mlp.down_proj.weight", p, i)) < 0)
            return rc;
        m->active_bytes += active + wbytes(&L->dense.gate) * 3;
        return 0;
    }
    const char *blk = mm ? "block_sparse_moe" : "mlp";
    uint32_t I = c->moe_inter;
    if ((rc = bind(m, &L->router, c->experts, H, "%s.%u.%s.gate.weight", p, i, blk)) < 0)
        return rc;
    if (mm && c->routing_bias &&
        (rc = bind(m, &L->bias, 0, c->experts, "%s.%u.%s.e_score_correction_bias", p, i, blk)) < 0)
        return rc;
    if (!(L->experts = calloc(c->experts, sizeof(*L->experts))))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    for (uint32_t e = 0; e < c->experts; e++) {
        struct mdl_mlp *x = &L->experts[e];
        const char *g = mm ? "w1" : "gate_proj", *u = mm ? "w3" : "up_proj",
                   *d = mm ? "w2" : "down_proj";
        if ((rc = bind(m, &x->gate, I, H, "%s.%u.%s.experts.%u.%s.weight", p, i, blk, e, g)) < 0 ||
            (rc = bind(m, &x->up, I, H, "%s.%u.%s.experts.%u.%s.weight", p, i, blk, e, u)) < 0 ||
            (rc = bind(m, &x->down, H, I, "%s.%u.%s.experts.%u.%s.weight", p, i, blk, e, d)) < 0)
            return rc;
    }
    m->active_bytes += active + wbytes(&L->router) + wbytes(&L->bias) +
                       (uint64_t)c->top_k * 3 * wbytes(&L->experts[0].gate);
    return 0;
}

static int load_config(struct mdl_config *cfg, const char *dir)
{
    char *path = NULL;
    struct cru_buf b = CRU_BUF_INIT;
    int rc;
    if ((rc = cru_str_printf(&path, "%s/config.json", dir)) == 0 &&
        (rc = cru_file_read(path, MDL_MAX_CONFIG, &b)) == 0)
        rc = mdl_config_parse(cfg, cru_buf_cstr(&b), b.len, path);
    cru_buf_free(&b);
    free(path);
    return rc;
}

int mdl_model_load(struct mdl_model **out, const char *dir)
{
    *out = NULL;
    struct st_used used = { 0 };
    struct mdl_model *m = calloc(1, sizeof(*m));
    struct mdl_st_index *ix = NULL;
    char *index = NULL, one[] = "model.safetensors", *single[] = { one }, **files = single;
    size_t n_files = 1;
    int rc;
    if (!m)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    if ((rc = cru_str_dup(&m->dir, dir)) < 0 || (rc = load_config(&m->cfg, dir)) < 0)
        goto done;
    if ((rc = cru_str_printf(&index, "%s/model.safetensors.index.json", dir)) < 0)
        goto done;
    if (access(index, F_OK) == 0) {
        if ((rc = index_read(dir, &ix)) < 0)
            goto done;
        files = ix->files;
        n_files = ix->n_files;
    }
    if (!(m->maps = calloc(n_files, sizeof(*m->maps)))) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_files; i++) {
        m->n_maps++;
        if ((rc = map_file(&m->maps[i], dir, files[i], &used)) < 0) {
            if (ix)
                cru_err_wrap(rc, "%s, named by model.safetensors.index.json", files[i]);
            goto done;
        }
    }
    if ((rc = index_tensors(m)) < 0 || (ix && (rc = index_check(m, ix)) < 0))
        goto done;
    const struct mdl_config *c = &m->cfg;
    if (!(m->layers = calloc(c->layers, sizeof(*m->layers)))) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = bind(m, &m->embed, c->vocab, c->hidden, "model.embed_tokens.weight")) < 0 ||
        (rc = bind(m, &m->final_norm, 0, c->hidden, "model.norm.weight")) < 0)
        goto done;
    if (c->tied)
        m->lm_head = m->embed;
    else if ((rc = bind(m, &m->lm_head, c->vocab, c->hidden, "lm_head.weight")) < 0)
        goto done;
    for (uint32_t i = 0; i < c->layers; i++)
        if ((rc = bind_layer(m, i)) < 0)
            goto done;
    m->active_bytes += wbytes(&m->final_norm) + wbytes(&m->lm_head) +
                       wbytes(&m->embed) / (c->vocab ? c->vocab : 1);
done:
    mdl_st_index_free(ix);
    free(index);
    if (rc < 0) {
        cru_err_wrap(rc, "loading the checkpoint in %s", dir);
        mdl_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
