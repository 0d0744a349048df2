/* Tests for model/: the CPU forward against HuggingFace transformers (tests/data/model/, made
 * by tests/reference/make_reference.py: logits within 1e-4 relative, the same 16 greedy
 * tokens, by prefill and by decode with the KV cache), the loader's errors on broken
 * checkpoints and configs, sampling (seeds, truncation, log-probs that sum to one), the engine
 * (batched runs from many threads equal single runs, prefix reuse, finish reasons) and the
 * random checkpoints of mdl_init. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/str.h"
#include "model/backend.h"
#include "model/engine.h"
#include "model/init.h"
#include "model/model.h"
#include "model/sample.h"
#include "tests/fifo_util.h"

static const char *const cases[] = { "qwen3_moe_a", "qwen3_moe_b", "minimax_m2_a", "minimax_m2_b" };

static char *data_path(const char *name)
{
    const char *src = getenv("CRUCIBLE_SRC");
    char *p = NULL;
    cr_assert_eq(cru_str_printf(&p, "%s/tests/data/model/%s", src && *src ? src : ".", name), 0);
    return p;
}

static struct mdl_model *load(const char *name)
{
    char *dir = data_path(name);
    struct mdl_model *m = NULL;
    int rc = mdl_model_load(&m, dir);
    cr_assert_eq(rc, 0, "load %s: %s", dir, cru_err_msg());
    free(dir);
    return m;
}

struct reference {
    int32_t prompt[64], greedy[64];
    size_t n_prompt, n_greedy, rows, vocab;
    float *logits; /* rows x vocab */
};

static void ids_of(const json_t *a, int32_t *out, size_t *n)
{
    cr_assert(json_is_array(a));
    *n = json_array_size(a);
    cr_assert_leq(*n, 64);
    for (size_t i = 0; i < *n; i++)
        out[i] = (int32_t)json_integer_value(json_array_get(a, i));
}

static void load_reference(const char *name, struct reference *r)
{
    char *dir = data_path(name), *path = NULL;
    cr_assert_eq(cru_str_printf(&path, "%s/reference.json", dir), 0);
    json_t *root = NULL;
    cr_assert_eq(cru_json_load_file(&root, path, 0), 0, "%s", cru_err_msg());
    ids_of(json_object_get(root, "prompt"), r->prompt, &r->n_prompt);
    ids_of(json_object_get(root, "greedy"), r->greedy, &r->n_greedy);
    const json_t *rows = json_object_get(root, "logits");
    r->rows = json_array_size(rows);
    r->vocab = json_array_size(json_array_get(rows, 0));
    r->logits = malloc(r->rows * r->vocab * sizeof(float));
    for (size_t i = 0; i < r->rows; i++)
        for (size_t j = 0; j < r->vocab; j++)
            r->logits[i * r->vocab + j] =
                (float)json_number_value(json_array_get(json_array_get(rows, i), j));
    json_decref(root);
    free(path);
    free(dir);
}

/* max |a - b| over max |b|: the error relative to the row's scale. */
static double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        num = d > num ? d : num;
        den = fabs((double)b[i]) > den ? fabs((double)b[i]) : den;
    }
    return num / (den > 0 ? den : 1);
}

/* Block tables for direct backend calls: sequence 0 takes blocks 0, 1, 2, ... in order;
 * sequence 1 the odd blocks of a pool twice that size, scattered (a fixed permutation), so the
 * reference is also checked through blocks that are neither contiguous nor in order. */
#define TEST_CTX    256
#define TEST_BLOCKS (TEST_CTX / MDL_BLOCK_TOKENS)
static uint32_t seq_table[2][TEST_BLOCKS];

static void *backend(const struct mdl_model *m, uint32_t seqs, uint32_t threads)
{
    struct mdl_backend_opts o = MDL_BACKEND_OPTS_INIT;
    o.max_seqs = seqs;
    o.threads = threads;
    o.max_ctx = TEST_CTX;
    o.n_blocks = 2 * TEST_BLOCKS;
    for (uint32_t b = 0; b < TEST_BLOCKS; b++) {
        seq_table[0][b] = b;
        seq_table[1][b] = 2 * ((b * 7 + 3) % TEST_BLOCKS) + 1;
    }
    void *s = NULL;
    cr_assert_eq(mdl_backend_cpu.load(&s, m, &o), 0, "%s", cru_err_msg());
    return s;
}

static void check_reference(const char *name, uint32_t threads)
{
    struct mdl_model *m = load(name);
    struct reference r;
    load_reference(name, &r);
    cr_assert_eq(r.vocab, m->cfg.vocab);
    void *s = backend(m, 2, threads);
    size_t V = r.vocab, n = r.n_prompt + r.n_greedy - 1;
    int32_t seq[128];
    memcpy(seq, r.prompt, r.n_prompt * sizeof(int32_t));
    memcpy(seq + r.n_prompt, r.greedy, (r.n_greedy - 1) * sizeof(int32_t));
    cr_assert_eq(r.rows, n);

    /* One prefill of the whole sequence, logits at every position. */
    float *all = malloc(n * V * sizeof(float));
    struct mdl_step st = { seq_table[0], TEST_BLOCKS, 0, seq, (uint32_t)n, true, all };
    cr_assert_eq(mdl_backend_cpu.forward(s, &st, 1), 0, "%s", cru_err_msg());
    for (size_t i = 0; i < n; i++) {
        double e = rel_err(all + i * V, r.logits + i * V, V);
        cr_assert_lt(e, 1e-4, "%s: position %zu: relative error %g", name, i, e);
    }

    /* Prefill of the prompt, then decode one token at a time through the KV cache. */
    float *one = malloc(V * sizeof(float));
    st = (struct mdl_step){ seq_table[1], TEST_BLOCKS, 0, seq, (uint32_t)r.n_prompt, false, one };
    cr_assert_eq(mdl_backend_cpu.forward(s, &st, 1), 0, "%s", cru_err_msg());
    for (size_t i = r.n_prompt - 1; i < n; i++) {
        double e = rel_err(one, r.logits + i * V, V);
        cr_assert_lt(e, 1e-4, "%s: decode at %zu: relative error %g", name, i, e);
        uint32_t best = 0;
        for (uint32_t j = 1; j < V; j++)
            best = one[j] > one[best] ? j : best;
        cr_assert_eq((int32_t)best, r.greedy[i - (r.n_prompt - 1)], "%s: greedy token %zu", name,
                     i - (r.n_prompt - 1));
        if (i + 1 < n) {
            st = (struct mdl_step){ seq_table[1], TEST_BLOCKS, (uint32_t)(i + 1), &seq[i + 1], 1,
                                    false,        one };
            cr_assert_eq(mdl_backend_cpu.forward(s, &st, 1), 0, "%s", cru_err_msg());
        }
    }
    mdl_backend_cpu.free(s);
    free(one);
    free(all);
    free(r.logits);
    mdl_model_free(m);
}

Test(model, reference_qwen3_moe_a)
{
    check_reference("qwen3_moe_a", 2);
}

Test(model, reference_qwen3_moe_b_sharded_tied)
{
    check_reference("qwen3_moe_b", 1);
}

Test(model, reference_minimax_m2_a)
{
    check_reference("minimax_m2_a", 2);
}

Test(model, reference_minimax_m2_b_one_kv_head)
{
    check_reference("minimax_m2_b", 3);
}

/* The engine's greedy generation gives transformers' 16 tokens, with log-prob 0 each. */
Test(model, engine_greedy_matches_reference)
{
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct mdl_model *m = load(cases[c]);
        struct reference r;
        load_reference(cases[c], &r);
        struct mdl_engine_opts o = MDL_ENGINE_OPTS_INIT;
        o.backend_opts.threads = 2;
        struct mdl_engine *e = NULL;
        cr_assert_eq(mdl_engine_new(&e, m, &o), 0, "%s", cru_err_msg());
        struct mdl_request q = MDL_REQUEST_INIT;
        q.prompt = r.prompt;
        q.n_prompt = r.n_prompt;
        q.sampling.temperature = 0;
        q.sampling.max_tokens = (uint32_t)r.n_greedy;
        q.sampling.raw_logprobs = true;
        struct mdl_result res;
        cr_assert_eq(mdl_engine_generate(e, &q, &res), 0, "%s", cru_err_msg());
        cr_assert_eq(res.n, r.n_greedy);
        cr_assert_eq(res.finish, MDL_FINISH_LENGTH);
        for (size_t i = 0; i < res.n; i++) {
            cr_assert_eq(res.ids[i], r.greedy[i], "%s: token %zu", cases[c], i);
            cr_assert_eq(res.logprobs[i], 0.0f);
            cr_assert_leq(res.raw_logprobs[i], 0.0f);
        }
        mdl_result_free(&res);
        mdl_engine_free(e);
        free(r.logits);
        mdl_model_free(m);
    }
}

/* ---- the loader's errors ---- */

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/crucible-test-model-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    return strdup(tmpl);
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char *p = NULL;
    cr_assert_eq(cru_str_printf(&p, "%s/%s", dir, name), 0);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    free(p);
}

/* A safetensors file: the header text, then DATA_LEN zero bytes; LEN_FIELD 0: the real one. */
static void write_st(const char *dir, const char *header, size_t data_len, uint64_t len_field)
{
    size_t h = strlen(header), n = 8 + h + data_len;
    uint8_t *b = calloc(1, n);
    uint64_t lf = len_field ? len_field : h;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(lf >> (8 * i));
    memcpy(b + 8, header, h);
    write_file(dir, "model.safetensors", b, n);
    free(b);
}

static void parse_fails(const char *header, size_t data_len, uint64_t len_field, int code,
                        const char *msg)
{
    char *dir = tmpdir(), *p = NULL;
    write_st(dir, header, data_len, len_field);
    cr_assert_eq(cru_str_printf(&p, "%s/model.safetensors", dir), 0);
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(p, 1 << 20, &b), 0);
    struct mdl_st_header *h = (struct mdl_st_header *)&h;
    int rc = mdl_st_parse(&h, (const uint8_t *)b.data, b.len, p);
    cr_assert_eq(rc, code, "rc %d (%s), expected %d", rc, cru_err_msg(), code);
    cr_assert_null(h);
    cr_assert(strstr(cru_err_msg(), msg), "message '%s' lacks '%s'", cru_err_msg(), msg);
    cru_buf_free(&b);
    cru_remove_tree(dir);
    free(dir);
    free(p);
}

static void parse_ok(const char *header, size_t data_len)
{
    size_t n = 8 + strlen(header) + data_len;
    uint8_t *d = calloc(1, n);
    for (int i = 0; i < 8; i++)
        d[i] = (uint8_t)((uint64_t)strlen(header) >> (8 * i));
    memcpy(d + 8, header, strlen(header));
    struct mdl_st_header *h = NULL;
    cr_assert_eq(mdl_st_parse(&h, d, n, "ok.safetensors"), 0, "%s", cru_err_msg());
    mdl_st_header_free(h);
    free(d);
}

Test(model, st_header_errors)
{
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    /* control: the same file parses */
    char *dir = tmpdir(), *p = NULL;
    write_st(dir, ok, 8, 0);
    cr_assert_eq(cru_str_printf(&p, "%s/model.safetensors", dir), 0);
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(p, 1 << 20, &b), 0);
    struct mdl_st_header *h = NULL;
    cr_assert_eq(mdl_st_parse(&h, (const uint8_t *)b.data, b.len, p), 0, "%s", cru_err_msg());
    cr_assert_eq(h->n, 1);
    cr_assert_eq(mdl_st_find(h, "a")->end, 8);
    mdl_st_header_free(h);
    cru_buf_free(&b);
    cru_remove_tree(dir);
    free(dir);
    free(p);

    parse_fails(ok, 8, 1000, CRU_EPARSE, "truncated");
    parse_fails(ok, 8, (uint64_t)1 << 40, CRU_ELIMIT,
                "a safetensors header of 1099511627776 bytes is over the limit of 33554432");
    parse_fails(ok, 4, 0, CRU_EPARSE, "outside the 4 bytes");
    parse_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                12, 0, CRU_EPARSE, "overlap");
    /* An empty tensor between two that overlap must not hide them. */
    parse_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[2,2]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                12, 0, CRU_EPARSE, "tensors 'a' and 'b' overlap");
    /* Nor one that lies inside another: that one overlaps nothing. */
    parse_ok("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
             12);
    parse_fails("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, CRU_EPARSE,
                "unknown dtype 'Q4'");
    parse_fails("{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0,
                CRU_EPARSE, "8 bytes for a BF16 shape of 3 elements");
    parse_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0,
                CRU_EPARSE, "shape[0] is not a size");
    parse_fails("[1,2]", 0, 0, CRU_EPARSE, "not a JSON object");
    parse_fails("{\"a\":", 0, 0, CRU_EPARSE, "model.safetensors:1:");
}

/* A random checkpoint in a temporary folder. */
static char *make_ckpt(enum mdl_arch arch, enum mdl_dtype dt)
{
    char *dir = tmpdir(), *sub = NULL;
    cr_assert_eq(cru_str_printf(&sub, "%s/ck", dir), 0);
    free(dir);
    struct mdl_init_opts o = MDL_INIT_OPTS_INIT;
    o.arch = arch;
    o.dtype = dt;
    o.seed = 7;
    o.vocab = 100;
    cr_assert_eq(mdl_init_write(sub, &o), 0, "%s", cru_err_msg());
    return sub;
}

static void drop_ckpt(char *sub)
{
    char *parent = strdup(sub);
    *strrchr(parent, '/') = '\0';
    cru_remove_tree(parent);
    free(parent);
    free(sub);
}

/* Replaces FROM with TO in DIR/config.json. */
static void edit_config(const char *dir, const char *from, const char *to)
{
    char *p = NULL;
    cr_assert_eq(cru_str_printf(&p, "%s/config.json", dir), 0);
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(p, 1 << 20, &b), 0);
    char *at = strstr(b.data, from);
    cr_assert_not_null(at, "config.json lacks '%s'", from);
    struct cru_buf o = CRU_BUF_INIT;
    cru_buf_append(&o, b.data, (size_t)(at - b.data));
    cru_buf_puts(&o, to);
    cru_buf_puts(&o, at + strlen(from));
    write_file(dir, "config.json", o.data, o.len);
    cru_buf_free(&b);
    cru_buf_free(&o);
    free(p);
}

static void load_fails(const char *dir, int code, const char *msg)
{
    struct mdl_model *m = (struct mdl_model *)&m;
    cru_err_clear();
    int rc = mdl_model_load(&m, dir);
    cr_assert_eq(rc, code, "rc %d (%s), expected %d", rc, cru_err_msg(), code);
    cr_assert_null(m);
    cr_assert(strstr(cru_err_msg(), msg), "message '%s' lacks '%s'", cru_err_msg(), msg);
}

Test(model, load_errors)
{
    char *d = make_ckpt(MDL_ARCH_QWEN3_MOE, MDL_DT_BF16);
    struct mdl_model *m = NULL;
    cr_assert_eq(mdl_model_load(&m, d), 0, "control: %s", cru_err_msg());
    mdl_model_free(m);

    edit_config(d, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
    load_fails(d, CRU_ENOENT, "tensor 'model.layers.2.input_layernorm.weight' is missing");
    edit_config(d, "\"num_hidden_layers\": 3", "\"num_hidden_layers\": 2");
    edit_config(d, "\"head_dim\": 16", "\"head_dim\": 8");
    load_fails(d, CRU_EINVAL,
               "tensor 'model.layers.0.self_attn.q_proj.weight' has shape [64, 64], "
               "expected [32, 64]");
    edit_config(d, "\"head_dim\": 8", "\"head_dim\": 16");
    edit_config(d, "\"model_type\": \"qwen3_moe\"", "\"model_type\": \"llama\"");
    load_fails(d, CRU_EUNSUPPORTED, "architecture 'llama' is not supported");
    edit_config(d, "\"model_type\": \"llama\"", "\"model_type\": \"qwen3_moe\"");
    edit_config(d, "\"rope_type\": \"default\"", "\"rope_type\": \"yarn\"");
    load_fails(d, CRU_EUNSUPPORTED, "'yarn' is not supported");
    edit_config(d, "\"rope_type\": \"yarn\"", "\"rope_type\": \"default\"");
    edit_config(d, "\"use_sliding_window\": false", "\"use_sliding_window\": true");
    load_fails(d, CRU_EUNSUPPORTED, "use_sliding_window");
    edit_config(d, "\"use_sliding_window\": true",
                "\"use_sliding_window\": false, "
                "\"quantization_config\": {}");
    load_fails(d, CRU_EUNSUPPORTED, "quantization_config");
    edit_config(d, ", \"quantization_config\": {}", "");
    cr_assert_eq(mdl_model_load(&m, d), 0, "restored: %s", cru_err_msg());
    mdl_model_free(m);

    /* A truncated weights file. */
    char *p = NULL;
    cr_assert_eq(cru_str_printf(&p, "%s/model.safetensors", d), 0);
    FILE *f = fopen(p, "rb");
    uint8_t len8[8];
    cr_assert_eq(fread(len8, 1, 8, f), 8);
    fclose(f);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | len8[i];
    cr_assert_eq(truncate(p, (off_t)(8 + hl + 100)), 0);
    load_fails(d, CRU_EPARSE, "outside the 100 bytes of data");
    cr_assert_eq(truncate(p, 4000), 0);
    load_fails(d, CRU_EPARSE, "(truncated)");
    cr_assert_eq(truncate(p, 4), 0);
    load_fails(d, CRU_EPARSE, "shorter than a safetensors header");
    unlink(p);
    load_fails(d, CRU_ENOENT, "model.safetensors");
    free(p);
    drop_ckpt(d);
}

/* ---- the bounds on headers and the index ---- */

/* Appends N tensors named t0000000... of F32 [0, 0] (no bytes, 8 JSON values each). */
static void zero_tensors(struct cru_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cru_buf_printf(b, "%s\"t%07zu\":{\"dtype\":\"F32\",\"shape\":[0,0],\"data_offsets\":[0,0]}",
                       i ? "," : "", i);
}

/* A safetensors file of HEADER's text and no data: *size bytes, to be freed. */
static uint8_t *st_file(const struct cru_buf *header, size_t *size)
{
    *size = 8 + header->len;
    uint8_t *d = malloc(*size);
    cr_assert_not_null(d);
    for (int i = 0; i < 8; i++)
        d[i] = (uint8_t)((uint64_t)header->len >> (8 * i));
    memcpy(d + 8, header->data, header->len);
    return d;
}

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long peak_kib(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_maxrss;
}

/* HEADER must be refused with MSG before jansson builds anything: within a fraction of a
 * second of CPU and without the hundreds of MiB a parse of it takes. */
static void refused_unparsed(const struct cru_buf *header, const char *msg)
{
    size_t size;
    uint8_t *d = st_file(header, &size);
    struct mdl_st_header *h = (struct mdl_st_header *)&h;
    long peak = peak_kib();
    double t0 = cpu_seconds();
    int rc = mdl_st_parse(&h, d, size, "big.safetensors");
    double cpu = cpu_seconds() - t0;
    long grew = peak_kib() - peak;
    cr_assert_eq(rc, CRU_ELIMIT, "rc %d: %s", rc, cru_err_msg());
    cr_assert_null(h);
    cr_assert(strstr(cru_err_msg(), msg), "message '%s' lacks '%s'", cru_err_msg(), msg);
    cr_assert_lt(cpu, 0.5, "refused after %.2f s of CPU: it was parsed", cpu);
    cr_assert_lt(grew, 16 << 10, "refused after %ld KiB more memory: it was parsed", grew);
    free(d);
}

Test(model, st_header_bounds_refuse_before_parsing)
{
    struct cru_buf b = CRU_BUF_INIT;
    /* Bytes: valid JSON one byte over, so that only the bound can refuse it. */
    cru_buf_puts(&b, "{}");
    cr_assert_eq(cru_buf_reserve(&b, MDL_MAX_ST_HEADER), 0);
    memset(b.data + b.len, ' ', MDL_MAX_ST_HEADER - 1);
    b.len += MDL_MAX_ST_HEADER - 1;
    refused_unparsed(&b, "a safetensors header of 33554433 bytes is over the limit of 33554432");

    /* Tensors: one more than the bound, of no bytes each (the shape of the attack). */
    cru_buf_reset(&b);
    cru_buf_puts(&b, "{\"__metadata__\":{\"format\":\"pt\"},");
    zero_tensors(&b, MDL_MAX_TENSORS + 1);
    cru_buf_puts(&b, "}");
    refused_unparsed(&b, "a safetensors header of 262145 tensors is over the limit of 262144");

    /* Object members standing in for tensors: one tensor and a huge __metadata__. */
    cru_buf_reset(&b);
    cru_buf_puts(&b, "{\"__metadata__\":{");
    for (size_t i = 0; i < MDL_MAX_ST_MEMBERS; i++)
        cru_buf_printf(&b, "%s\"k%07zu\":\"\"", i ? "," : "", i);
    cru_buf_puts(&b, "},");
    zero_tensors(&b, 1);
    cru_buf_puts(&b, "}");
    refused_unparsed(&b, "object members is over the limit of 1310720");

    /* Values standing in for tensors: one shape of millions of dimensions. */
    cru_buf_reset(&b);
    cru_buf_puts(&b, "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,0],\"shape\":[0");
    for (size_t i = 0; i < MDL_MAX_ST_VALUES; i++)
        cru_buf_puts(&b, ",0");
    cru_buf_puts(&b, "]}}");
    refused_unparsed(&b, "JSON values is over the limit of 2621440");
    cru_buf_free(&b);
}

/* The positive control: a header of exactly the bound's tensors (with __metadata__) loads. */
Test(model, st_header_at_the_tensor_bound_loads)
{
    struct cru_buf b = CRU_BUF_INIT;
    cru_buf_puts(&b, "{\"__metadata__\":{\"format\":\"pt\"},");
    zero_tensors(&b, MDL_MAX_TENSORS);
    cru_buf_puts(&b, "}");
    size_t size;
    uint8_t *d = st_file(&b, &size);
    struct mdl_st_header *h = NULL;
    cr_assert_eq(mdl_st_parse(&h, d, size, "full.safetensors"), 0, "%s", cru_err_msg());
    cr_assert_eq(h->n, MDL_MAX_TENSORS);
    cr_assert_not_null(mdl_st_find(h, "t0262143"));
    mdl_st_header_free(h);
    free(d);
    cru_buf_free(&b);
}

/* A checkpoint (config.json of a random one) of the given shard files and index text. */
static char *sharded_ckpt(const char *index, const struct cru_buf *s1, const struct cru_buf *s2)
{
    char *d = make_ckpt(MDL_ARCH_QWEN3_MOE, MDL_DT_BF16), *p = NULL;
    cr_assert_eq(cru_str_printf(&p, "%s/model.safetensors", d), 0);
    cr_assert_eq(unlink(p), 0);
    free(p);
    write_file(d, "model.safetensors.index.json", index, strlen(index));
    const struct cru_buf *shards[] = { s1, s2 };
    for (int i = 0; i < 2; i++) {
        size_t size;
        uint8_t *f = st_file(shards[i], &size);
        char name[32];
        snprintf(name, sizeof(name), "s%d.safetensors", i + 1);
        write_file(d, name, f, size);
        free(f);
    }
    return d;
}

/* The bounds hold for a checkpoint's files together: shards each inside them are refused when
 * they add up past them, before the second is parsed. */
Test(model, st_bounds_hold_for_all_shards_together)
{
    const char *index = "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}}";
    struct cru_buf half = CRU_BUF_INIT, one = CRU_BUF_INIT;
    cru_buf_puts(&half, "{");
    zero_tensors(&half, MDL_MAX_TENSORS / 2 + 1);
    cru_buf_puts(&half, "}");
    char *d = sharded_ckpt(index, &half, &half);
    load_fails(d, CRU_ELIMIT,
               "s2.safetensors: a safetensors header of 131073 tensors brings the checkpoint to "
               "262146, over the limit of 262144 for all its files together");
    drop_ckpt(d);

    /* The control: the same shards one tensor smaller fit, and the load goes on to comparing
     * the files with the index. */
    cru_buf_reset(&half);
    cru_buf_puts(&half, "{");
    zero_tensors(&half, MDL_MAX_TENSORS / 2);
    cru_buf_puts(&half, "}");
    cru_buf_puts(&one, "{\"t0999999\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}");
    d = sharded_ckpt(index, &half, &half);
    load_fails(d, CRU_EINVAL, "tensor 't0000000' is in both s1.safetensors and s2.safetensors");
    drop_ckpt(d);
    d = sharded_ckpt(index, &half, &one);
    load_fails(d, CRU_EINVAL,
               "model.safetensors.index.json puts tensor 'a' in s1.safetensors, which does not "
               "hold it");
    drop_ckpt(d);
    cru_buf_free(&half);
    cru_buf_free(&one);
}

static void index_fails(const struct cru_buf *text, int code, const char *msg)
{
    struct mdl_st_index *ix = (struct mdl_st_index *)&ix;
    int rc = mdl_st_index_parse(&ix, text->data, text->len, "index.json");
    cr_assert_eq(rc, code, "rc %d (%s), expected %d", rc, cru_err_msg(), code);
    cr_assert_null(ix);
    cr_assert(strstr(cru_err_msg(), msg), "message '%s' lacks '%s'", cru_err_msg(), msg);
}

Test(model, index_bounds)
{
    /* The positive control: every shard the bound allows, every entry, each file named once
     * in the order of first mention. */
    struct cru_buf b = CRU_BUF_INIT;
    cru_buf_puts(&b, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
    for (size_t i = 0; i < MDL_MAX_TENSORS; i++)
        cru_buf_printf(&b, "%s\"t%zu\": \"m-%05zu.safetensors\"", i ? "," : "", i,
                       i % MDL_MAX_SHARDS);
    cru_buf_puts(&b, "}}");
    struct mdl_st_index *ix = NULL;
    cr_assert_eq(mdl_st_index_parse(&ix, b.data, b.len, "index.json"), 0, "%s", cru_err_msg());
    cr_assert_eq(ix->n_files, MDL_MAX_SHARDS);
    cr_assert_eq(ix->n_entries, MDL_MAX_TENSORS);
    cr_assert_str_eq(ix->files[0], "m-00000.safetensors");
    cr_assert_str_eq(ix->files[ix->n_files - 1], "m-04095.safetensors");
    cr_assert(ix->has_total_size);
    cr_assert_eq(ix->total_size, 0);
    mdl_st_index_free(ix);

    /* One entry more. */
    b.len -= 2;
    cru_buf_puts(&b, ",\"one-more\": \"m-00000.safetensors\"}}");
    index_fails(&b, CRU_ELIMIT, "a weight_map of 262145 tensors is over the limit of 262144");
    /* One file more. */
    cru_buf_reset(&b);
    cru_buf_puts(&b, "{\"weight_map\": {");
    for (size_t i = 0; i <= MDL_MAX_SHARDS; i++)
        cru_buf_printf(&b, "%s\"t%zu\": \"m-%05zu.safetensors\"", i ? "," : "", i, i);
    cru_buf_puts(&b, "}}");
    index_fails(&b, CRU_ELIMIT, "more than 4096 shard files");
    /* Members standing in for entries, refused before the parse. */
    cru_buf_reset(&b);
    cru_buf_puts(&b, "{\"weight_map\": {\"a\": \"m.safetensors\"}, \"metadata\": {");
    for (size_t i = 0; i < MDL_MAX_ST_MEMBERS; i++)
        cru_buf_printf(&b, "%s\"k%zu\": 0", i ? "," : "", i);
    cru_buf_puts(&b, "}}");
    index_fails(&b, CRU_ELIMIT, "an index of 1310723 object members is over the limit of 1310720");
    /* Values standing in for entries, refused before the parse too. */
    cru_buf_reset(&b);
    cru_buf_puts(&b, "{\"weight_map\": {\"a\": \"m.safetensors\"}, \"metadata\": {\"v\": [0");
    for (size_t i = 1; i < MDL_MAX_ST_VALUES; i++)
        cru_buf_puts(&b, ",0");
    cru_buf_puts(&b, "]}}");
    index_fails(&b, CRU_ELIMIT, "an index of 2621445 JSON values is over the limit of 2621440");
    /* Bytes: valid JSON one byte over. */
    cru_buf_reset(&b);
    cru_buf_puts(&b, "{\"weight_map\": {\"a\": \"m.safetensors\"}}");
    cr_assert_eq(cru_buf_reserve(&b, MDL_MAX_INDEX + 1 - b.len), 0);
    memset(b.data + b.len, ' ', MDL_MAX_INDEX + 1 - b.len);
    b.len = MDL_MAX_INDEX + 1;
    index_fails(&b, CRU_ELIMIT, "an index of 33554433 bytes is over the limit of 33554432");
    cru_buf_free(&b);
}

/* Each file the loader opens (config.json, the shard index, a shard) replaced in turn by a FIFO
 * with no writer: refused at once and named, where the load used to wait in open(2) for ever.
 * The checkpoint with its regular files loads before each swap: the control. */
Test(model, loader_refuses_fifos)
{
    static const char *const files[] = { "config.json", "model.safetensors.index.json",
                                         "model-00002-of-00002.safetensors" };
    char *src = data_path("qwen3_moe_b"), *dir = tmpdir(), *ck = NULL;
    cr_assert_eq(cru_str_printf(&ck, "%s/ck", dir), 0);
    cr_assert_eq(cru_copy_tree(src, ck, 1 << 24, 0), 0, "%s", cru_err_msg());
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *p = NULL, *keep = NULL;
        cr_assert_eq(cru_str_printf(&p, "%s/%s", ck, files[i]), 0);
        cr_assert_eq(cru_str_printf(&keep, "%s.keep", p), 0);
        struct mdl_model *m = NULL;
        cr_assert_eq(mdl_model_load(&m, ck), 0, "control before %s: %s", files[i], cru_err_msg());
        mdl_model_free(m);

        cr_assert_eq(rename(p, keep), 0);
        struct timespec t0 = fifo_swap(p);
        m = (struct mdl_model *)&m;
        int rc = mdl_model_load(&m, ck);
        fifo_done(t0, rc, p);
        cr_assert_null(m);
        cr_assert_eq(unlink(p), 0);
        cr_assert_eq(rename(keep, p), 0);
        free(p);
        free(keep);
    }
    cru_remove_tree(dir);
    free(dir);
    free(ck);
    free(src);
}

Test(model, weights_of_other_dtypes)
{
    /* A required tensor in F8 is refused by name; f16 and f32 checkpoints load and agree
     * with bf16 ones on shape. */
    char *d = tmpdir();
    const char *hdr = "{\"model.embed_tokens.weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[4,2],"
                      "\"data_offsets\":[0,8]}}";
    write_st(d, hdr, 8, 0);
    const char *cfg = "{\"model_type\":\"qwen3_moe\",\"vocab_size\":4,\"hidden_size\":2,"
                      "\"num_hidden_layers\":1,\"num_attention_heads\":1,\"intermediate_size\":2,"
                      "\"moe_intermediate_size\":2,\"num_experts\":1,\"num_experts_per_tok\":1}";
    write_file(d, "config.json", cfg, strlen(cfg));
    load_fails(d, CRU_EUNSUPPORTED, "tensor 'model.embed_tokens.weight' has dtype F8_E4M3");
    cru_remove_tree(d);
    free(d);
    enum mdl_dtype dts[] = { MDL_DT_F16, MDL_DT_F32 };
    for (int i = 0; i < 2; i++) {
        char *c = make_ckpt(MDL_ARCH_MINIMAX_M2, dts[i]);
        struct mdl_model *m = NULL;
        cr_assert_eq(mdl_model_load(&m, c), 0, "%s", cru_err_msg());
        cr_assert_eq(m->embed.dtype, dts[i]);
        cr_assert_eq(m->cfg.rotary_dim, 8);
        mdl_model_free(m);
        drop_ckpt(c);
    }
}

Test(model, config_bounds)
{
    struct mdl_config c;
    const char *bad[][2] = {
        { "{\"model_type\":\"qwen3_moe\",\"vocab_size\":0}", "vocab_size" },
        { "{\"model_type\":\"minimax_m2\",\"vocab_size\":9,\"hidden_size\":8,"
          "\"num_hidden_layers\":1,\"num_attention_heads\":3,\"num_key_value_heads\":2,"
          "\"intermediate_size\":4}",
          "does not divide" },
        { "{\"model_type\":\"minimax_m2\",\"vocab_size\":9,\"hidden_size\":8,"
          "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"intermediate_size\":4,"
          "\"scoring_func\":\"softmax\"}",
          "scoring_func" },
        { "{\"model_type\":\"minimax_m2\",\"vocab_size\":9,\"hidden_size\":8,"
          "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"intermediate_size\":4,"
          "\"attn_type_list\":[0]}",
          "attn_type_list[0]" },
        { "{\"model_type\":\"qwen3_moe\",\"vocab_size\":9,\"hidden_size\":8,"
          "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"intermediate_size\":4,"
          "\"moe_intermediate_size\":4,\"num_experts\":2,\"num_experts_per_tok\":3}",
          "more than the 2 experts" },
        { "{\"model_type\":\"qwen3_moe\",\"vocab_size\":9,\"hidden_size\":8,"
          "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"intermediate_size\":4,"
          "\"moe_intermediate_size\":4,\"num_experts\":2,\"num_experts_per_tok\":1,"
          "\"mlp_only_layers\":[2]}",
          "mlp_only_layers[0]" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = mdl_config_parse(&c, bad[i][0], strlen(bad[i][0]), "config.json");
        cr_assert_lt(rc, 0, "case %zu parsed", i);
        cr_assert(strstr(cru_err_msg(), bad[i][1]), "case %zu: '%s' lacks '%s'", i, cru_err_msg(),
                  bad[i][1]);
    }
    /* Published MiniMax-M2 style: rotary_dim without a factor; qwen3's published names. */
    const char *mm = "{\"model_type\":\"minimax_m2\",\"vocab_size\":9,\"hidden_size\":8,"
                     "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"head_dim\":16,"
                     "\"intermediate_size\":4,\"rotary_dim\":4,\"rope_theta\":5000000,"
                     "\"eos_token_id\":[1,2]}";
    cr_assert_eq(mdl_config_parse(&c, mm, strlen(mm), "c"), 0, "%s", cru_err_msg());
    cr_assert_eq(c.rotary_dim, 4);
    cr_assert_eq(c.n_eos, 2);
    cr_assert_eq(c.rope_theta, 5e6);
    mdl_config_free(&c);
    const char *qw = "{\"model_type\":\"qwen3_moe\",\"vocab_size\":9,\"hidden_size\":8,"
                     "\"num_hidden_layers\":4,\"num_attention_heads\":2,\"intermediate_size\":4,"
                     "\"moe_intermediate_size\":4,\"num_experts\":2,\"num_experts_per_tok\":1,"
                     "\"decoder_sparse_step\":2,\"mlp_only_layers\":[3]}";
    cr_assert_eq(mdl_config_parse(&c, qw, strlen(qw), "c"), 0, "%s", cru_err_msg());
    cr_assert(!c.moe_layer[0] && c.moe_layer[1] && !c.moe_layer[2] && !c.moe_layer[3]);
    cr_assert_eq(c.rotary_dim, 4);
    mdl_config_free(&c);
}

/* ---- sampling ---- */

static struct mdl_sampler *sampler(uint32_t v)
{
    struct mdl_sampler *s = NULL;
    cr_assert_eq(mdl_sampler_new(&s, v), 0);
    return s;
}

static double sum_probs(const float *lp, size_t n, size_t *support)
{
    double s = 0;
    *support = 0;
    for (size_t i = 0; i < n; i++)
        if (lp[i] > -INFINITY) {
            s += exp((double)lp[i]);
            (*support)++;
        }
    return s;
}

Test(model, sampling_truncation_and_logprobs)
{
    enum { V = 1000 };
    float logits[V], lp[V];
    struct mdl_rng r;
    mdl_rng_seed(&r, 1);
    for (int i = 0; i < V; i++)
        logits[i] = (float)(4.0 * (mdl_rng_uniform(&r) - 0.5));
    struct mdl_sampler *s = sampler(V);
    struct mdl_sampling p = MDL_SAMPLING_INIT;
    size_t support;
    /* full softmax */
    cr_assert_eq(mdl_sample_logprobs(s, logits, &p, lp), 0);
    cr_assert_float_eq(sum_probs(lp, V, &support), 1.0, 1e-5);
    cr_assert_eq(support, V);
    /* top-k: exactly the k largest, renormalised */
    p.top_k = 17;
    p.temperature = 0.7f;
    cr_assert_eq(mdl_sample_logprobs(s, logits, &p, lp), 0);
    cr_assert_float_eq(sum_probs(lp, V, &support), 1.0, 1e-5);
    cr_assert_eq(support, 17);
    for (int i = 0; i < V; i++)
        for (int j = 0; j < V; j++)
            if (lp[i] > -INFINITY && lp[j] == -INFINITY)
                cr_assert_geq(logits[i], logits[j]);
    /* top-p: the smallest likeliest set reaching p; one fewer would not */
    p.top_k = 0;
    p.top_p = 0.5f;
    p.temperature = 1;
    float full[V];
    struct mdl_sampling q = MDL_SAMPLING_INIT;
    cr_assert_eq(mdl_sample_logprobs(s, logits, &q, full), 0);
    cr_assert_eq(mdl_sample_logprobs(s, logits, &p, lp), 0);
    cr_assert_float_eq(sum_probs(lp, V, &support), 1.0, 1e-5);
    double mass = 0, smallest = 1;
    for (int i = 0; i < V; i++)
        if (lp[i] > -INFINITY) {
            mass += exp((double)full[i]);
            smallest = exp((double)full[i]) < smallest ? exp((double)full[i]) : smallest;
        }
    cr_assert_geq(mass, 0.5 - 1e-6);
    cr_assert_lt(mass - smallest, 0.5);
    cr_assert_gt(support, 1);
    cr_assert_lt(support, V);
    /* top-k and top-p together: within the top k */
    p.top_k = 5;
    p.top_p = 0.9f;
    cr_assert_eq(mdl_sample_logprobs(s, logits, &p, lp), 0);
    cr_assert_float_eq(sum_probs(lp, V, &support), 1.0, 1e-5);
    cr_assert_leq(support, 5);
    /* Each sampled token carries the log-prob of its own distribution. */
    struct mdl_token t;
    for (int i = 0; i < 200; i++) {
        p.raw_logprobs = true;
        p.n_top = 3;
        cr_assert_eq(mdl_sample(s, logits, &p, &r, &t), 0);
        cr_assert_eq(t.logprob, lp[t.id]);
        cr_assert_float_eq(t.raw_logprob, full[t.id], 1e-5);
        cr_assert_eq(t.n_top, 3);
        cr_assert_geq(t.top[0].logprob, t.top[1].logprob);
        cr_assert_geq(t.top[1].logprob, t.top[2].logprob);
    }
    /* greedy: the arg max, log-prob 0 */
    p = (struct mdl_sampling)MDL_SAMPLING_INIT;
    p.temperature = 0;
    int best = 0;
    for (int i = 1; i < V; i++)
        best = logits[i] > logits[best] ? i : best;
    cr_assert_eq(mdl_sample(s, logits, &p, &r, &t), 0);
    cr_assert_eq(t.id, best);
    cr_assert_eq(t.logprob, 0.0f);
    /* bounds */
    p.temperature = -1;
    cr_assert_eq(mdl_sample(s, logits, &p, &r, &t), CRU_EINVAL);
    p.temperature = 1;
    p.top_p = 0;
    cr_assert_eq(mdl_sample(s, logits, &p, &r, &t), CRU_EINVAL);
    mdl_sampler_free(s);
}

Test(model, sampling_seeds_and_frequencies)
{
    float logits[4] = { 0.0f, 1.0f, 2.0f, -1.0f };
    struct mdl_sampler *s = sampler(4);
    struct mdl_sampling p = MDL_SAMPLING_INIT;
    struct mdl_rng a, b, c;
    mdl_rng_seed(&a, 42);
    mdl_rng_seed(&b, 42);
    mdl_rng_seed(&c, 43);
    int same = 0, counts[4] = { 0 };
    enum { N = 40000 };
    for (int i = 0; i < N; i++) {
        struct mdl_token x, y, z;
        cr_assert_eq(mdl_sample(s, logits, &p, &a, &x), 0);
        cr_assert_eq(mdl_sample(s, logits, &p, &b, &y), 0);
        cr_assert_eq(mdl_sample(s, logits, &p, &c, &z), 0);
        cr_assert_eq(x.id, y.id, "the same seed drew differently at %d", i);
        same += x.id == z.id;
        counts[x.id]++;
    }
    cr_assert_lt(same, N * 9 / 10, "another seed drew the same sequence");
    /* frequencies within 5 standard deviations of the softmax */
    double z = exp(0) + exp(1) + exp(2) + exp(-1);
    for (int i = 0; i < 4; i++) {
        double pi = exp((double)logits[i]) / z, sd = sqrt(N * pi * (1 - pi));
        cr_assert_lt(fabs(counts[i] - N * pi), 5 * sd, "id %d: %d draws, expected %.0f", i,
                     counts[i], N * pi);
    }
    mdl_sampler_free(s);
}

/* ---- the engine ---- */

struct gen_job {
    struct mdl_engine *e;
    struct mdl_request req;
    struct mdl_result res;
    int rc;
};

static void *gen_thread(void *arg)
{
    struct gen_job *j = arg;
    j->rc = mdl_engine_generate(j->e, &j->req, &j->res);
    return NULL;
}

struct paged {
    uint32_t seqs, max_ctx, block_tokens, n_blocks;
    bool no_prefix_cache;
};

static struct mdl_engine *paged_engine(const struct mdl_model *m, struct paged p)
{
    struct mdl_engine_opts o = MDL_ENGINE_OPTS_INIT;
    o.backend_opts.max_seqs = p.seqs;
    o.backend_opts.threads = 2;
    o.backend_opts.max_ctx = p.max_ctx;
    o.backend_opts.block_tokens = p.block_tokens;
    o.backend_opts.n_blocks = p.n_blocks;
    o.no_prefix_cache = p.no_prefix_cache;
    struct mdl_engine *e = NULL;
    cr_assert_eq(mdl_engine_new(&e, m, &o), 0, "%s", cru_err_msg());
    return e;
}

static struct mdl_engine *engine(const struct mdl_model *m, uint32_t seqs, uint32_t max_ctx,
                                 uint32_t block_tokens)
{
    return paged_engine(m, (struct paged){ seqs, max_ctx, block_tokens, 0, false });
}

/* Requests of different prompts, lengths and sampling parameters, submitted from 6 threads to
 * an engine that batches 4 at a time, give exactly what each gives alone. */
Test(model, engine_batched_equals_single)
{
    struct mdl_model *m = load("minimax_m2_a");
    enum { N = 6 };
    static const int32_t prompts[N][8] = { { 1, 2, 3 }, { 5, 6, 7, 8, 9 }, { 1, 2, 3, 4 },
                                           { 200, 17 }, { 9, 9, 9, 9, 9 }, { 42 } };
    static const size_t lens[N] = { 3, 5, 4, 2, 5, 1 };
    struct gen_job jobs[N], solo[N];
    struct mdl_engine *batched = engine(m, 4, 0, 0), *single = engine(m, 1, 0, 0);
    for (int i = 0; i < N; i++) {
        struct mdl_request r = MDL_REQUEST_INIT;
        r.prompt = prompts[i];
        r.n_prompt = lens[i];
        r.sampling.seed = 100 + (uint64_t)i;
        r.sampling.max_tokens = 10 + (uint32_t)i * 3;
        r.sampling.temperature = i == 0 ? 0.0f : 0.5f + 0.2f * (float)i;
        r.sampling.top_k = i == 2 ? 20 : 0;
        r.sampling.top_p = i == 3 ? 0.8f : 1.0f;
        r.sampling.raw_logprobs = true;
        jobs[i] = (struct gen_job){ batched, r, { 0 }, 0 };
        solo[i] = (struct gen_job){ single, r, { 0 }, 0 };
    }
    pthread_t th[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, gen_thread, &jobs[i]), 0);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++)
        gen_thread(&solo[i]);
    struct mdl_engine_stats st;
    mdl_engine_stats(batched, &st);
    cr_assert_gt(st.max_batch_seen, 1, "the engine never batched");
    for (int i = 0; i < N; i++) {
        cr_assert_eq(jobs[i].rc, 0, "%d: %s", i, cru_err_msg());
        cr_assert_eq(solo[i].rc, 0);
        cr_assert_eq(jobs[i].res.n, solo[i].res.n, "request %d", i);
        cr_assert_eq(jobs[i].res.finish, MDL_FINISH_LENGTH);
        for (size_t k = 0; k < jobs[i].res.n; k++) {
            cr_assert_eq(jobs[i].res.ids[k], solo[i].res.ids[k], "request %d token %zu", i, k);
            cr_assert_eq(jobs[i].res.logprobs[k], solo[i].res.logprobs[k]);
            cr_assert_eq(jobs[i].res.raw_logprobs[k], solo[i].res.raw_logprobs[k]);
            cr_assert_leq(jobs[i].res.raw_logprobs[k], 0.0f);
        }
        mdl_result_free(&jobs[i].res);
        mdl_result_free(&solo[i].res);
    }
    mdl_engine_free(batched);
    mdl_engine_free(single);
    mdl_model_free(m);
}

static int stop_after_three(void *ctx, const int32_t *ids, size_t n, bool *stop)
{
    (void)ids;
    (*(int *)ctx)++;
    *stop = n == 3;
    return 0;
}

Test(model, engine_finish_reasons_and_prefix_reuse)
{
    struct mdl_model *m = load("qwen3_moe_a");
    struct mdl_engine *e = engine(m, 2, 20, 2);
    const int32_t prompt[] = { 1, 17, 254, 3, 99, 42, 200 };
    struct mdl_request r = MDL_REQUEST_INIT;
    r.prompt = prompt;
    r.n_prompt = 7;
    r.sampling.seed = 5;
    r.sampling.max_tokens = 6;
    struct mdl_result a, b;
    cr_assert_eq(mdl_engine_generate(e, &r, &a), 0, "%s", cru_err_msg());
    cr_assert_eq(a.finish, MDL_FINISH_LENGTH);
    cr_assert_eq(a.n, 6);
    cr_assert_eq(a.n_cached, 0);
    /* The same prompt again: its first 6 tokens are in 3 cached blocks of 2 (the last prompt
     * token is always run again); the result is the same. */
    cr_assert_eq(mdl_engine_generate(e, &r, &b), 0);
    cr_assert_eq(b.n_cached, 6);
    cr_assert_eq(b.n, a.n);
    cr_assert_arr_eq(b.ids, a.ids, a.n * sizeof(int32_t));
    cr_assert_arr_eq(b.logprobs, a.logprobs, a.n * sizeof(float));
    /* A stop id: the third token of the run above ends it, and is kept. */
    r.sampling.stop_ids[0] = a.ids[2];
    r.sampling.n_stop_ids = 1;
    struct mdl_result c;
    cr_assert_eq(mdl_engine_generate(e, &r, &c), 0);
    size_t first = 0;
    while (a.ids[first] != a.ids[2])
        first++;
    cr_assert_eq(c.finish, MDL_FINISH_STOP);
    cr_assert_eq(c.n, first + 1);
    mdl_result_free(&c);
    /* The stop hook. */
    int calls = 0;
    r.sampling.n_stop_ids = 0;
    r.stop_fn = stop_after_three;
    r.stop_ctx = &calls;
    cr_assert_eq(mdl_engine_generate(e, &r, &c), 0);
    cr_assert_eq(c.finish, MDL_FINISH_STOP_STRING);
    cr_assert_eq(c.n, 3);
    cr_assert_eq(calls, 3);
    mdl_result_free(&c);
    /* The context of 20: 7 prompt tokens leave room for 13 generated ones. */
    r.stop_fn = NULL;
    r.sampling.max_tokens = 100;
    cr_assert_eq(mdl_engine_generate(e, &r, &c), 0);
    cr_assert_eq(c.finish, MDL_FINISH_CONTEXT);
    cr_assert_eq(c.n, 20 - 7 + 1);
    mdl_result_free(&c);
    /* Refused requests: a prompt out of the vocabulary, too long, bad sampling. */
    const int32_t bad[] = { 1, 293 };
    r.prompt = bad;
    r.n_prompt = 2;
    cr_assert_eq(mdl_engine_generate(e, &r, &c), CRU_EINVAL);
    int32_t lng[20] = { 0 };
    r.prompt = lng;
    r.n_prompt = 20;
    cr_assert_eq(mdl_engine_generate(e, &r, &c), CRU_ELIMIT);
    r.n_prompt = 3;
    r.sampling.top_p = 2;
    cr_assert_eq(mdl_engine_generate(e, &r, &c), CRU_EINVAL);
    mdl_result_free(&a);
    mdl_result_free(&b);
    mdl_engine_free(e);
    mdl_model_free(m);
}

/* Freeing the engine with requests in flight cancels them; their waits still return. */
Test(model, engine_free_cancels)
{
    struct mdl_model *m = load("qwen3_moe_a");
    struct mdl_engine *e = engine(m, 1, 0, 0);
    const int32_t prompt[] = { 1, 2, 3 };
    struct mdl_request r = MDL_REQUEST_INIT;
    r.prompt = prompt;
    r.n_prompt = 3;
    r.sampling.max_tokens = 200;
    struct mdl_ticket *t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(mdl_engine_submit(e, &r, &t[i]), 0);
    mdl_engine_free(e);
    for (int i = 0; i < 4; i++) {
        struct mdl_result res;
        cr_assert_eq(mdl_ticket_wait(t[i], &res), 0);
        cr_assert(res.finish == MDL_FINISH_CANCELLED || res.finish == MDL_FINISH_LENGTH);
        mdl_result_free(&res);
    }
    mdl_model_free(m);
}

/* ---- random checkpoints ---- */

Test(model, init_is_reproducible_and_loads)
{
    char *a = make_ckpt(MDL_ARCH_MINIMAX_M2, MDL_DT_BF16),
         *b = make_ckpt(MDL_ARCH_MINIMAX_M2, MDL_DT_BF16);
    char *pa = NULL, *pb = NULL;
    cr_assert_eq(cru_str_printf(&pa, "%s/model.safetensors", a), 0);
    cr_assert_eq(cru_str_printf(&pb, "%s/model.safetensors", b), 0);
    struct cru_buf x = CRU_BUF_INIT, y = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(pa, 64 << 20, &x), 0);
    cr_assert_eq(cru_file_read(pb, 64 << 20, &y), 0);
    cr_assert_eq(x.len, y.len);
    cr_assert(memcmp(x.data, y.data, x.len) == 0, "the same seed wrote different bytes");
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | (uint8_t)x.data[i];
    cr_assert_eq(hl % 8, 0, "the header is not padded to 8 bytes");
    struct mdl_model *m = NULL;
    cr_assert_eq(mdl_model_load(&m, a), 0, "%s", cru_err_msg());
    cr_assert_eq(m->cfg.arch, MDL_ARCH_MINIMAX_M2);
    cr_assert_eq(m->cfg.experts, 8);
    cr_assert(m->layers[0].bias.data != NULL);
    mdl_model_free(m);
    /* init refuses to overwrite a checkpoint */
    struct mdl_init_opts o = MDL_INIT_OPTS_INIT;
    cr_assert_eq(mdl_init_write(a, &o), CRU_EEXIST);
    o.top_k = 9;
    cr_assert_eq(mdl_init_write("/nonexistent/never", &o), CRU_EINVAL);
    cru_buf_free(&x);
    cru_buf_free(&y);
    free(pa);
    free(pb);
    drop_ckpt(a);
    drop_ckpt(b);
}

Test(model, init_vocab_from_tokenizer)
{
    char *d = tmpdir(), *out = NULL;
    const char *tok = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2}},"
                      "\"added_tokens\":[{\"id\":7,\"content\":\"<|end|>\"}]}";
    write_file(d, "tokenizer.json", tok, strlen(tok));
    uint32_t v = 0;
    cr_assert_eq(mdl_tokenizer_vocab(d, &v), 0, "%s", cru_err_msg());
    cr_assert_eq(v, 8);
    struct mdl_init_opts o = MDL_INIT_OPTS_INIT;
    o.tokenizer_dir = d;
    o.vocab = 0;
    cr_assert_eq(cru_str_printf(&out, "%s/ck", d), 0);
    cr_assert_eq(mdl_init_write(out, &o), 0, "%s", cru_err_msg());
    struct mdl_model *m = NULL;
    cr_assert_eq(mdl_model_load(&m, out), 0, "%s", cru_err_msg());
    cr_assert_eq(m->cfg.vocab, 8);
    mdl_model_free(m);
    char *copied = NULL;
    cr_assert_eq(cru_str_printf(&copied, "%s/tokenizer.json", out), 0);
    cr_assert_eq(access(copied, F_OK), 0);
    free(copied);
    free(out);
    cru_remove_tree(d);
    free(d);
}

static int failing_hook(void *ctx, const int32_t *ids, size_t n, bool *stop)
{
    (void)ctx, (void)ids, (void)stop;
    return n == 2 ? cru_err_set(CRU_EIO, "the hook broke at 2") : 0;
}

/* A failing stop hook fails its request with its message and keeps what came before; the
 * engine goes on serving others. */
Test(model, engine_hook_failure)
{
    struct mdl_model *m = load("qwen3_moe_b");
    struct mdl_engine *e = engine(m, 2, 0, 0);
    const int32_t prompt[] = { 4, 5, 6 };
    struct mdl_request r = MDL_REQUEST_INIT;
    r.prompt = prompt;
    r.n_prompt = 3;
    r.stop_fn = failing_hook;
    struct mdl_result res;
    cru_err_clear();
    cr_assert_eq(mdl_engine_generate(e, &r, &res), CRU_EIO);
    cr_assert_str_eq(cru_err_msg(), "the hook broke at 2");
    cr_assert_eq(res.finish, MDL_FINISH_ERROR);
    cr_assert_eq(res.n, 2);
    mdl_result_free(&res);
    r.stop_fn = NULL;
    r.sampling.max_tokens = 3;
    cr_assert_eq(mdl_engine_generate(e, &r, &res), 0, "%s", cru_err_msg());
    cr_assert_eq(res.n, 3);
    mdl_result_free(&res);
    mdl_engine_free(e);
    mdl_model_free(m);
}

/* The logits do not depend on the thread count: each output is computed by one thread in a
 * fixed order. */
Test(model, threads_do_not_change_logits)
{
    struct mdl_model *m = load("minimax_m2_a");
    const int32_t ids[] = { 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5 };
    size_t V = m->cfg.vocab, n = sizeof(ids) / sizeof(ids[0]);
    float *base = malloc(n * V * sizeof(float)), *other = malloc(n * V * sizeof(float));
    for (uint32_t threads = 1; threads <= 4; threads++) {
        void *s = backend(m, 1, threads);
        struct mdl_step st = {
            seq_table[0], TEST_BLOCKS, 0, ids, (uint32_t)n, true, threads == 1 ? base : other
        };
        cr_assert_eq(mdl_backend_cpu.forward(s, &st, 1), 0, "%s", cru_err_msg());
        if (threads > 1)
            cr_assert(memcmp(base, other, n * V * sizeof(float)) == 0,
                      "%u threads changed the logits", threads);
        mdl_backend_cpu.free(s);
    }
    free(base);
    free(other);
    mdl_model_free(m);
}

/* The engine reports the model's likeliest alternatives with each token when asked. */
Test(model, engine_top_alternatives)
{
    struct mdl_model *m = load("qwen3_moe_a");
    struct mdl_engine *e = engine(m, 1, 0, 0);
    const int32_t prompt[] = { 7, 8, 9 };
    struct mdl_request r = MDL_REQUEST_INIT;
    r.prompt = prompt;
    r.n_prompt = 3;
    r.sampling.max_tokens = 4;
    r.sampling.n_top = 5;
    r.sampling.raw_logprobs = true;
    r.sampling.temperature = 0.8f;
    r.sampling.seed = 11;
    struct mdl_result res;
    cr_assert_eq(mdl_engine_generate(e, &r, &res), 0, "%s", cru_err_msg());
    cr_assert_eq(res.n_top, 5);
    for (size_t i = 0; i < res.n; i++) {
        const struct mdl_alt *top = res.top + i * 5;
        for (int k = 1; k < 5; k++)
            cr_assert_geq(top[k - 1].logprob, top[k].logprob);
        /* the sampled id's raw log-prob is at most the likeliest one's */
        cr_assert_leq(res.raw_logprobs[i], top[0].logprob);
        bool listed = false;
        for (int k = 0; k < 5; k++)
            if (top[k].id == res.ids[i])
                listed |= top[k].logprob == res.raw_logprobs[i];
        if (res.raw_logprobs[i] >= top[4].logprob)
            cr_assert(listed, "token %zu is likelier than the fifth alternative but not listed", i);
    }
    mdl_result_free(&res);
    mdl_engine_free(e);
    mdl_model_free(m);
}

/* A prompt prefilled in chunks of 2 tokens, while another sequence decodes beside it, gives
 * transformers' greedy tokens all the same. */
Test(model, engine_chunked_prefill)
{
    struct mdl_model *m = load("qwen3_moe_a");
    struct reference ref;
    load_reference("qwen3_moe_a", &ref);
    struct mdl_engine_opts o = MDL_ENGINE_OPTS_INIT;
    o.backend_opts.max_seqs = 2;
    o.backend_opts.threads = 2;
    o.backend_opts.max_step_tokens = 2;
    struct mdl_engine *e = NULL;
    cr_assert_eq(mdl_engine_new(&e, m, &o), 0, "%s", cru_err_msg());
    const int32_t other[] = { 5 };
    struct mdl_request busy = MDL_REQUEST_INIT;
    busy.prompt = other;
    busy.n_prompt = 1;
    /* Long enough that the second request arrives while it still decodes, even on a loaded
     * machine (the context holds 256). */
    busy.sampling.max_tokens = 200;
    busy.sampling.stop_at_eos = false;
    struct mdl_ticket *t = NULL;
    cr_assert_eq(mdl_engine_submit(e, &busy, &t), 0);
    struct mdl_request r = MDL_REQUEST_INIT;
    r.prompt = ref.prompt;
    r.n_prompt = ref.n_prompt;
    r.sampling.temperature = 0;
    r.sampling.max_tokens = (uint32_t)ref.n_greedy;
    struct mdl_result res, bres;
    cr_assert_eq(mdl_engine_generate(e, &r, &res), 0, "%s", cru_err_msg());
    cr_assert_eq(res.n, ref.n_greedy);
    cr_assert_arr_eq(res.ids, ref.greedy, ref.n_greedy * sizeof(int32_t));
    cr_assert_eq(mdl_ticket_wait(t, &bres), 0);
    cr_assert_eq(bres.n, 200);
    struct mdl_engine_stats st;
    mdl_engine_stats(e, &st);
    cr_assert_eq(st.prefill_tokens, 1 + ref.n_prompt);
    cr_assert_gt(st.max_batch_seen, 1);
    mdl_result_free(&res);
    mdl_result_free(&bres);
    mdl_engine_free(e);
    free(ref.logits);
    mdl_model_free(m);
}

/* ---- the paged cache: sharing, reuse, preemption ---- */

/* Runs N requests concurrently (one thread each) and returns their results in R. */
static void run_all(struct mdl_engine *e, const struct mdl_request *req, struct mdl_result *r,
                    size_t n)
{
    struct gen_job *jobs = calloc(n, sizeof(*jobs));
    pthread_t *th = calloc(n, sizeof(*th));
    for (size_t i = 0; i < n; i++) {
        jobs[i] = (struct gen_job){ e, req[i], { 0 }, 0 };
        cr_assert_eq(pthread_create(&th[i], NULL, gen_thread, &jobs[i]), 0);
    }
    for (size_t i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(jobs[i].rc, 0, "request %zu: %s", i, cru_err_msg());
        r[i] = jobs[i].res;
    }
    free(jobs);
    free(th);
}

static void assert_same(const struct mdl_result *a, const struct mdl_result *b, size_t n,
                        const char *what)
{
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(a[i].n, b[i].n, "%s: request %zu: %zu tokens against %zu", what, i, a[i].n,
                     b[i].n);
        cr_assert_eq(a[i].finish, b[i].finish, "%s: request %zu", what, i);
        cr_assert_arr_eq(a[i].ids, b[i].ids, a[i].n * sizeof(int32_t), "%s: request %zu ids", what,
                         i);
        cr_assert_arr_eq(a[i].logprobs, b[i].logprobs, a[i].n * sizeof(float),
                         "%s: request %zu log-probs", what, i);
    }
}

static void assert_no_block_held(struct mdl_engine *e)
{
    struct mdl_engine_stats st;
    mdl_engine_stats(e, &st);
    cr_assert_eq(st.blocks_used, 0, "%u blocks still held after every request ended",
                 st.blocks_used);
}

/* A group of 8 episodes with a common 40-token prompt, submitted at once: the first computes
 * the prompt, the others wait for its blocks and compute only the block that holds the last
 * prompt token (which is always run again). Their tokens are what an engine without the
 * prefix cache gives. */
Test(model, engine_group_computes_its_prompt_once)
{
    struct mdl_model *m = load("qwen3_moe_a");
    enum { K = 8, P = 40, BTOK = 4 };
    int32_t prompt[P];
    for (int i = 0; i < P; i++)
        prompt[i] = (int32_t)((i * 37 + 11) % 200);
    struct mdl_request req[K];
    for (int i = 0; i < K; i++) {
        req[i] = (struct mdl_request)MDL_REQUEST_INIT;
        req[i].prompt = prompt;
        req[i].n_prompt = P;
        req[i].sampling.seed = 1000 + (uint64_t)i;
        req[i].sampling.temperature = 0.9f;
        req[i].sampling.max_tokens = 12;
        req[i].sampling.stop_at_eos = false;
    }
    struct mdl_result shared[K], plain[K];
    struct mdl_engine *e = paged_engine(m, (struct paged){ K, 128, BTOK, 0, false });
    run_all(e, req, shared, K);
    struct mdl_engine_stats st;
    mdl_engine_stats(e, &st);
    cr_assert_eq(st.prompt_tokens, K * P);
    cr_assert_eq(st.prefill_tokens, P + (K - 1) * BTOK, "computed %llu prompt tokens",
                 (unsigned long long)st.prefill_tokens);
    cr_assert_eq(st.cached_tokens, (K - 1) * (P - BTOK));
    assert_no_block_held(e);
    mdl_engine_free(e);
    e = paged_engine(m, (struct paged){ K, 128, BTOK, 0, true });
    run_all(e, req, plain, K);
    mdl_engine_stats(e, &st);
    cr_assert_eq(st.prefill_tokens, K * P);
    cr_assert_eq(st.cached_tokens, 0);
    mdl_engine_free(e);
    assert_same(shared, plain, K, "shared prefix");
    for (int i = 0; i < K; i++) {
        mdl_result_free(&shared[i]);
        mdl_result_free(&plain[i]);
    }
    mdl_model_free(m);
}

/* An episode's next turn (its prompt, what it generated, an observation) starts from its own
 * cached history: only the last partial block and the new tokens are computed. */
Test(model, engine_next_turn_reuses_history)
{
    struct mdl_model *m = load("minimax_m2_a");
    enum { BTOK = 4 };
    struct mdl_engine *e = paged_engine(m, (struct paged){ 2, 256, BTOK, 0, false });
    int32_t turn[128];
    size_t n = 0;
    for (int i = 0; i < 21; i++)
        turn[n++] = (int32_t)(i * 13 % 250);
    struct mdl_request r = MDL_REQUEST_INIT;
    r.sampling.seed = 9;
    r.sampling.max_tokens = 10;
    r.sampling.stop_at_eos = false;
    struct mdl_result res[3];
    for (int k = 0; k < 3; k++) {
        r.prompt = turn;
        r.n_prompt = n;
        cr_assert_eq(mdl_engine_generate(e, &r, &res[k]), 0, "%s", cru_err_msg());
        if (k > 0) {
            /* What the previous turn computed: its prompt and all but its last token. */
            size_t computed = res[k - 1].n_prompt + res[k - 1].n - 1;
            cr_assert_eq(res[k].n_cached, computed / BTOK * BTOK, "turn %d: %u cached", k,
                         res[k].n_cached);
        }
        memcpy(turn + n, res[k].ids, res[k].n * sizeof(int32_t));
        n += res[k].n;
        for (int i = 0; i < 7; i++) /* the observation */
            turn[n++] = (int32_t)(100 + k * 7 + i);
    }
    assert_no_block_held(e);
    mdl_engine_free(e);
    /* The same turns without the cache give the same tokens. */
    e = paged_engine(m, (struct paged){ 2, 256, BTOK, 0, true });
    for (int k = 0; k < 3; k++) {
        struct mdl_result again;
        r.prompt = turn;
        r.n_prompt = res[k].n_prompt;
        cr_assert_eq(mdl_engine_generate(e, &r, &again), 0, "%s", cru_err_msg());
        cr_assert_eq(again.n_cached, 0);
        assert_same(&again, &res[k], 1, "next turn");
        mdl_result_free(&again);
        mdl_result_free(&res[k]);
    }
    mdl_engine_free(e);
    mdl_model_free(m);
}

/* A pool of 16 blocks of 4 (one sequence of 64 tokens) and 6 sequences that each grow to 40:
 * the engine preempts rather than failing or hanging, and every sequence gives what it gives
 * alone in a large pool, with the prefix cache and without. */
Test(model, engine_tiny_pool_preempts_and_gives_the_same_tokens, .timeout = 60)
{
    struct mdl_model *m = load("qwen3_moe_b");
    enum { N = 6 };
    int32_t prompts[N][12];
    struct mdl_request req[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 12; j++)
            prompts[i][j] = (int32_t)(j < 8 ? j + 3 : (i * 31 + j * 7) % 200);
        req[i] = (struct mdl_request)MDL_REQUEST_INIT;
        req[i].prompt = prompts[i];
        req[i].n_prompt = 9 + (size_t)i % 4;
        req[i].sampling.seed = 77 + (uint64_t)i;
        req[i].sampling.temperature = 0.7f;
        req[i].sampling.max_tokens = 28;
        req[i].sampling.stop_at_eos = false;
    }
    struct mdl_result alone[N], tight[N];
    struct mdl_engine *e = paged_engine(m, (struct paged){ 1, 64, 4, 0, true });
    for (int i = 0; i < N; i++)
        cr_assert_eq(mdl_engine_generate(e, &req[i], &alone[i]), 0, "%s", cru_err_msg());
    mdl_engine_free(e);
    for (int cache = 0; cache < 2; cache++) {
        e = paged_engine(m, (struct paged){ N, 64, 4, 16, cache == 0 });
        struct mdl_backend_limits l;
        mdl_engine_limits(e, &l);
        cr_assert_eq(l.n_blocks, 16);
        run_all(e, req, tight, N);
        struct mdl_engine_stats st;
        mdl_engine_stats(e, &st);
        cr_assert_gt(st.preemptions, 0, "the pool never ran out");
        cr_assert_leq(st.blocks_peak, 16);
        assert_no_block_held(e);
        assert_same(tight, alone, N, cache ? "preempted, cached" : "preempted");
        for (int i = 0; i < N; i++)
            mdl_result_free(&tight[i]);
        mdl_engine_free(e);
    }
    for (int i = 0; i < N; i++)
        mdl_result_free(&alone[i]);
    mdl_model_free(m);
}

/* A pool smaller than the context asked for lowers the context to what it holds. */
Test(model, engine_context_fits_the_pool)
{
    struct mdl_model *m = load("qwen3_moe_a");
    struct mdl_engine *e = paged_engine(m, (struct paged){ 2, 64, 4, 5, false });
    struct mdl_backend_limits l;
    mdl_engine_limits(e, &l);
    cr_assert_eq(l.max_ctx, 20);
    const int32_t prompt[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
    struct mdl_request r = MDL_REQUEST_INIT;
    r.prompt = prompt;
    r.n_prompt = 10;
    r.sampling.max_tokens = 100;
    r.sampling.stop_at_eos = false;
    struct mdl_result res;
    cr_assert_eq(mdl_engine_generate(e, &r, &res), 0, "%s", cru_err_msg());
    cr_assert_eq(res.finish, MDL_FINISH_CONTEXT);
    cr_assert_eq(res.n_prompt + res.n, 21);
    mdl_result_free(&res);
    mdl_engine_free(e);
    mdl_model_free(m);
}

/* 24 sequences at once (their tokens sampled on several threads) give what each gives alone. */
Test(model, engine_wide_batch_samples_as_alone)
{
    struct mdl_model *m = load("minimax_m2_b");
    enum { N = 24 };
    int32_t prompts[N][6];
    struct mdl_request req[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 6; j++)
            prompts[i][j] = (int32_t)((i * 11 + j * 5 + 1) % 250);
        req[i] = (struct mdl_request)MDL_REQUEST_INIT;
        req[i].prompt = prompts[i];
        req[i].n_prompt = 6;
        req[i].sampling.seed = 500 + (uint64_t)i;
        req[i].sampling.temperature = 1.0f;
        req[i].sampling.top_p = i % 3 ? 1.0f : 0.9f;
        req[i].sampling.max_tokens = 16;
        req[i].sampling.stop_at_eos = false;
    }
    struct mdl_result wide[N], alone[N];
    struct mdl_engine *e = paged_engine(m, (struct paged){ N, 64, 4, 0, false });
    struct mdl_ticket *t[N];
    for (int i = 0; i < N; i++) /* queued within microseconds: they decode side by side */
        cr_assert_eq(mdl_engine_submit(e, &req[i], &t[i]), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(mdl_ticket_wait(t[i], &wide[i]), 0, "%s", cru_err_msg());
    struct mdl_engine_stats st;
    mdl_engine_stats(e, &st);
    cr_assert_geq(st.max_batch_seen, 16, "never more than %llu at once",
                  (unsigned long long)st.max_batch_seen);
    mdl_engine_free(e);
    e = paged_engine(m, (struct paged){ 1, 64, 4, 0, false });
    for (int i = 0; i < N; i++)
        cr_assert_eq(mdl_engine_generate(e, &req[i], &alone[i]), 0, "%s", cru_err_msg());
    mdl_engine_free(e);
    assert_same(wide, alone, N, "wide batch");
    for (int i = 0; i < N; i++) {
        mdl_result_free(&wide[i]);
        mdl_result_free(&alone[i]);
    }
    mdl_model_free(m);
}

/* Prompts held back while another sequence decodes (up to 3 steps, or until 1000 prompt
 * tokens wait) give the same tokens as prompts that join the next step. */
Test(model, engine_held_prompts_give_the_same_tokens)
{
    struct mdl_model *m = load("qwen3_moe_a");
    struct reference ref;
    load_reference("qwen3_moe_a", &ref);
    struct mdl_result res[2], busy[2];
    uint64_t held[2];
    for (int k = 0; k < 2; k++) {
        struct mdl_engine_opts o = MDL_ENGINE_OPTS_INIT;
        o.backend_opts.max_seqs = 2;
        o.backend_opts.threads = 2;
        o.prefill_batch = k ? 1000 : 0;
        o.prefill_wait = k ? 3 : 0;
        struct mdl_engine *e = NULL;
        cr_assert_eq(mdl_engine_new(&e, m, &o), 0, "%s", cru_err_msg());
        const int32_t one[] = { 5 };
        struct mdl_request b = MDL_REQUEST_INIT;
        b.prompt = one;
        b.n_prompt = 1;
        b.sampling.max_tokens = 200;
        b.sampling.stop_at_eos = false;
        struct mdl_ticket *t = NULL;
        cr_assert_eq(mdl_engine_submit(e, &b, &t), 0);
        struct mdl_request r = MDL_REQUEST_INIT;
        r.prompt = ref.prompt;
        r.n_prompt = ref.n_prompt;
        r.sampling.temperature = 0;
        r.sampling.max_tokens = (uint32_t)ref.n_greedy;
        cr_assert_eq(mdl_engine_generate(e, &r, &res[k]), 0, "%s", cru_err_msg());
        cr_assert_eq(mdl_ticket_wait(t, &busy[k]), 0);
        struct mdl_engine_stats st;
        mdl_engine_stats(e, &st);
        held[k] = st.held_steps;
        mdl_engine_free(e);
    }
    cr_assert_eq(held[0], 0);
    cr_assert_eq(held[1], 3, "the prompt sat out %llu steps", (unsigned long long)held[1]);
    cr_assert_arr_eq(res[1].ids, ref.greedy, ref.n_greedy * sizeof(int32_t));
    assert_same(&res[1], &res[0], 1, "held prompt");
    assert_same(&busy[1], &busy[0], 1, "the decoding sequence beside it");
    for (int k = 0; k < 2; k++) {
        mdl_result_free(&res[k]);
        mdl_result_free(&busy[k]);
    }
    free(ref.logits);
    mdl_model_free(m);
}

/* A backend refuses steps whose tables would read or write outside what they own: the check
 * both backends make (model/backend.c), with a valid call of the same shape as the control. */
Test(model, steps_check_refuses_bad_tables)
{
    struct mdl_backend_limits l = {
        .max_seqs = 4, .max_ctx = 64, .block_tokens = 4, .n_blocks = 8, .max_step_tokens = 32
    };
    uint8_t seen[8];
    const int32_t ids[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    float logits[2];
    /* Two sequences sharing block 0 (a full prefix) and each writing its own next block. */
    const uint32_t a[] = { 0, 1 }, b[] = { 0, 2 };
    struct mdl_step st[2] = { { a, 2, 4, ids, 4, false, logits },
                              { b, 2, 4, ids, 3, false, logits } };
    size_t T = 0;
    cr_assert_eq(mdl_steps_check(&l, 100, st, 2, seen, &T), 0, "control: %s", cru_err_msg());
    cr_assert_eq(T, 7);

    struct {
        const char *what, *says;
        struct mdl_step s[2];
        size_t n;
    } bad[] = {
        { "two steps write one block",
          "written by another step",
          { { a, 2, 4, ids, 4, false, logits }, { a, 2, 4, ids, 2, false, logits } },
          2 },
        { "one reads a block the other writes",
          "read while another step writes",
          { { a, 2, 0, ids, 2, false, logits }, { b, 2, 4, ids, 2, false, logits } },
          2 },
        { "a table too short", "blocks for", { { a, 1, 4, ids, 2, false, logits } }, 1 },
        { "a block outside the pool",
          "of a pool of 8",
          { { (const uint32_t[]){ 0, 8 }, 2, 4, ids, 2, false, logits } },
          1 },
        { "past the context", "exceed the context", { { a, 2, 60, ids, 8, false, logits } }, 1 },
        { "a token outside the vocabulary",
          "outside the vocabulary",
          { { a, 2, 0, (const int32_t[]){ 100 }, 1, false, logits } },
          1 },
        { "no logits buffer", "no tokens", { { a, 2, 0, ids, 1, false, NULL } }, 1 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_lt(mdl_steps_check(&l, 100, bad[i].s, bad[i].n, seen, &T), 0, "%s: accepted",
                     bad[i].what);
        cr_assert(strstr(cru_err_msg(), bad[i].says), "%s: %s", bad[i].what, cru_err_msg());
    }
    /* More steps than a forward takes. */
    struct mdl_step many[5];
    for (int i = 0; i < 5; i++)
        many[i] = st[0];
    cr_assert_eq(mdl_steps_check(&l, 100, many, 5, seen, &T), CRU_ELIMIT);
}
