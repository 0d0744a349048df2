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
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/str.h"
#include "model/backend.h"
#include "model/engine.h"
#include "model/model.h"
#include "model/sample.h"

static const char *const cases[] = { "qwen3_moe_a", "qwen3_moe_b", "minimax_m2_a",
                                     "minimax_m2_b" };

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

static void *backend(const struct mdl_model *m, uint32_t slots, uint32_t threads)
{
    struct mdl_backend_opts o = MDL_BACKEND_OPTS_INIT;
    o.n_slots = slots;
    o.threads = threads;
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
    struct mdl_step st = { 0, 0, seq, (uint32_t)n, true, all };
    cr_assert_eq(mdl_backend_cpu.forward(s, &st, 1), 0, "%s", cru_err_msg());
    for (size_t i = 0; i < n; i++) {
        double e = rel_err(all + i * V, r.logits + i * V, V);
        cr_assert_lt(e, 1e-4, "%s: position %zu: relative error %g", name, i, e);
    }

    /* Prefill of the prompt, then decode one token at a time through the KV cache. */
    float *one = malloc(V * sizeof(float));
    st = (struct mdl_step){ 1, 0, seq, (uint32_t)r.n_prompt, false, one };
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
            st = (struct mdl_step){ 1, (uint32_t)(i + 1), &seq[i + 1], 1, false, one };
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
