/* agent/model_agent: the `model` agent: a checkpoint, tokenizer, chat template and engine
 * shared by a run's episodes, and the loop that keeps each episode's context as token ids
 * (sampled ids appended unchanged, observations appended through incremental rendering, forks
 * recorded where the template rewrites history). The tools themselves are agent/tools'.
 */
#include "agent/model_agent.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/hash.h"
#include "lib/str.h"
#include "model/chat.h"
#include "model/engine.h"
#include "model/model.h"
#include "model/tokenizer.h"
#include "recorder/writer.h"

#define DIGEST_MAX_FILES 4096
#define DIGEST_MAX_BYTES ((uint64_t)1 << 40)

struct agt_model {
    struct agt_model_opts o;
    struct mdl_model *model;
    struct tok *tok;
    struct mdl_engine *engine;
    struct agt_generator gen;
    char *id, *digest, *tok_digest;
    int32_t stop[2];
    uint32_t n_stop;
    uint32_t max_ctx;
};

static int engine_generate(void *ctx, const int32_t *context, size_t n_context, uint32_t max_tokens,
                           uint64_t seed, int32_t *ids, float *logprobs, size_t cap, size_t *n_out,
                           const char **finish)
{
    const struct agt_model *m = ctx;
    struct mdl_request r = MDL_REQUEST_INIT;
    r.prompt = context;
    r.n_prompt = n_context;
    r.sampling.temperature = m->o.temperature;
    r.sampling.top_p = m->o.top_p;
    r.sampling.top_k = m->o.top_k;
    r.sampling.seed = seed;
    r.sampling.max_tokens = max_tokens < cap ? max_tokens : (uint32_t)cap;
    for (uint32_t i = 0; i < m->n_stop; i++)
        r.sampling.stop_ids[r.sampling.n_stop_ids++] = m->stop[i];
    struct mdl_result res = { 0 };
    int rc = mdl_engine_generate(m->engine, &r, &res);
    if (rc == 0 && res.n > cap)
        rc = cru_err_set(CRU_EINTERNAL, "the engine returned %zu tokens for %zu", res.n, cap);
    if (rc == 0) {
        memcpy(ids, res.ids, res.n * sizeof(*ids));
        memcpy(logprobs, res.logprobs, res.n * sizeof(*logprobs));
        *n_out = res.n;
        *finish = mdl_finish_name(res.finish);
    }
    mdl_result_free(&res);
    return rc;
}

static int dir_digest(const char *dir, char **out)
{
    struct cru_manifest man;
    int rc = cru_manifest_make(dir, DIGEST_MAX_FILES, DIGEST_MAX_BYTES, &man);
    if (rc < 0)
        return rc;
    uint8_t d[32];
    char hex[65];
    cru_manifest_digest(&man, d);
    cru_manifest_free(&man);
    cru_hex(hex, d, 32);
    return cru_str_printf(out, "sha256:%s", hex);
}

int agt_model_open(struct agt_model **out, const struct agt_model_opts *o)
{
    if (!o || o->version != AGT_MODEL_OPTS_VERSION || !o->dir)
        return cru_err_set(CRU_EINVAL, "agt_model_opts: version or folder missing");
    struct agt_model *m = calloc(1, sizeof(*m));
    if (!m)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    m->o = *o;
    enum tok_template tmpl;
    char *tj = NULL;
    uint8_t td[32];
    char hex[65];
    /* The backend first: a missing CUDA library is reported before a large checkpoint is
     * read. */
    const struct mdl_backend *be = NULL;
    int rc = mdl_device_backend(&o->device, &be);
    if (rc == 0)
        rc = mdl_model_load(&m->model, o->dir);
    if (rc == 0)
        rc = tok_load(&m->tok, o->dir);
    if (rc == 0)
        rc = tok_template_detect(o->dir, &tmpl);
    if (rc == 0 && tok_vocab_size(m->tok) > m->model->cfg.vocab)
        rc = cru_err_set(CRU_EINVAL,
                         "the tokenizer has %zu ids, more than the model's vocabulary of %u",
                         tok_vocab_size(m->tok), m->model->cfg.vocab);
    static const char *const stops[] = { "<|im_end|>", "<|endoftext|>" };
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        int32_t id;
        if (tok_token_id(m->tok, stops[i], strlen(stops[i]), &id) == 0)
            m->stop[m->n_stop++] = id;
    }
    if (rc == 0 && m->n_stop == 0)
        rc = cru_err_set(CRU_EINVAL, "the tokenizer has no <|im_end|>: not a chat model");
    struct mdl_engine_opts eo = MDL_ENGINE_OPTS_INIT;
    eo.backend_opts.max_seqs = o->slots ? o->slots : 8;
    eo.backend_opts.threads = o->threads;
    eo.backend_opts.device = o->device.ordinal;
    eo.backend_opts.memory = o->gpu_memory;
    eo.backend = be;
    if (rc == 0)
        rc = mdl_engine_new(&m->engine, m->model, &eo);
    /* The id is the folder's name; the digests say which weights and which tokenizer. */
    const char *base = strrchr(o->dir, '/');
    if (rc == 0)
        rc = cru_str_dup(&m->id, base && base[1] ? base + 1 : o->dir);
    if (rc == 0)
        rc = dir_digest(o->dir, &m->digest);
    if (rc == 0 && (rc = cru_str_printf(&tj, "%s/tokenizer.json", o->dir)) == 0 &&
        (rc = cru_sha256_file(tj, td)) == 0) {
        cru_hex(hex, td, 32);
        rc = cru_str_printf(&m->tok_digest, "sha256:%s", hex);
    }
    free(tj);
    if (rc < 0) {
        agt_model_free(m);
        return cru_err_wrap(rc, "model %s", o->dir);
    }
    m->max_ctx = m->model->cfg.max_pos;
    m->gen = (struct agt_generator){ .ctx = m,
                                     .generate = engine_generate,
                                     .model_id = m->id,
                                     .model_digest = m->digest,
                                     .tokenizer_digest = m->tok_digest,
                                     .chat_template = "qwen3",
                                     .policy_version = 0,
                                     .temperature = o->temperature,
                                     .top_p = o->top_p,
                                     .top_k = o->top_k };
    if (o->sampler) {
        m->gen.ctx = o->sampler->ctx;
        m->gen.generate = o->sampler->generate;
    }
    *out = m;
    return 0;
}

void agt_model_free(struct agt_model *m)
{
    if (!m)
        return;
    mdl_engine_free(m->engine);
    mdl_model_free(m->model);
    tok_free(m->tok);
    free(m->id);
    free(m->digest);
    free(m->tok_digest);
    free(m);
}

const struct agt_generator *agt_model_generator(const struct agt_model *m)
{
    return &m->gen;
}

json_t *agt_model_engine_json(const struct agt_model *m)
{
    if (!m || !m->engine)
        return NULL;
    struct mdl_engine_stats s;
    struct mdl_backend_limits l;
    mdl_engine_stats(m->engine, &s);
    mdl_engine_limits(m->engine, &l);
    return json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "backend",
        mdl_engine_backend_name(m->engine), "sequences", (json_int_t)l.max_seqs, "blocks",
        (json_int_t)l.n_blocks, "block_tokens", (json_int_t)l.block_tokens, "blocks_peak",
        (json_int_t)s.blocks_peak, "steps", (json_int_t)s.steps, "prompt_tokens",
        (json_int_t)s.prompt_tokens, "prefill_tokens", (json_int_t)s.prefill_tokens,
        "cached_tokens", (json_int_t)s.cached_tokens, "decode_tokens", (json_int_t)s.decode_tokens,
        "max_batch", (json_int_t)s.max_batch_seen, "preemptions", (json_int_t)s.preemptions,
        "evictions", (json_int_t)s.evictions, "busy_ms", (json_int_t)(s.busy_ns / 1000000));
}

/* ---- an episode ---- */

/* The scaffold's tools in the shape chat templates take: [{"type": "function", "function"}]. */
static json_t *template_tools(const json_t *tools)
{
    json_t *out = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
        json_array_append_new(out, json_pack("{s:s, s:O}", "type", "function", "function", t));
    return out;
}

static void end(struct agt_model_env *env, enum rec_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void end(struct agt_model_env *env, enum rec_status status, const char *fmt, ...)
{
    env->ended = true;
    env->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(env->message, sizeof(env->message), fmt, ap);
    va_end(ap);
}

/* The parsed calls as recorded: [{id, name, arguments}]. */
static json_t *calls_json(const struct tok_reply *r, uint64_t turn)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_calls; i++) {
        char id[48];
        snprintf(id, sizeof(id), "call-%llu-%zu", (unsigned long long)turn, i + 1);
        json_array_append_new(a, json_pack("{s:s, s:s, s:O}", "id", id, "name", r->calls[i].name,
                                           "arguments", r->calls[i].arguments));
    }
    return a;
}

/* One model call on the current context: sample, record, parse. */
static int call_model(const struct agt_model *m, struct agt_model_env *env, uint32_t branch,
                      struct tok_ids *ctx, const struct tok_ids *prompt, json_t *tools,
                      struct tok_reply *reply, const char **finish, struct cru_buf *said)
{
    uint64_t left = env->sc->max_completion_tokens - *env->sampled;
    uint32_t max = m->o.max_call_tokens < left ? m->o.max_call_tokens : (uint32_t)left;
    size_t before = ctx->n;
    int rc = tok_ids_append(ctx, prompt->v, prompt->n);
    if (rc < 0)
        return rc;
    if (ctx->n + 1 >= m->max_ctx) {
        ctx->n = before;
        end(env, REC_BUDGET, "the model's context of %u tokens is full", m->max_ctx);
        return 0;
    }
    if (max > m->max_ctx - ctx->n - 1)
        max = m->max_ctx - (uint32_t)ctx->n - 1;
    int32_t *ids = malloc((max ? max : 1) * sizeof(*ids));
    float *lps = malloc((max ? max : 1) * sizeof(*lps));
    size_t n = 0;
    struct cru_buf bytes = CRU_BUF_INIT, text = CRU_BUF_INIT;
    uint64_t t0 = cru_now_ns();
    rc = ids && lps ? 0 : cru_err_set(CRU_ENOMEM, "out of memory");
    if (rc == 0)
        rc = m->gen.generate(m->gen.ctx, ctx->v, ctx->n, max, env->seed + *env->turns, ids, lps,
                             max, &n, finish);
    double ms = (double)(cru_now_ns() - t0) / 1e6;
    if (rc == 0)
        rc = tok_decode(m->tok, ids, n, &bytes);
    if (rc == 0)
        rc = tok_utf8_lossy(bytes.data ? bytes.data : "", bytes.len, &text);
    if (rc == 0)
        rc = tok_chat_parse(cru_buf_cstr(&text), text.len, tools, reply);
    /* What the model said, as the conversation keeps it: its text up to the end-of-turn token.
     * Kept as sampled (not rebuilt from the parsed calls), so that rendering it again gives
     * the sampled tokens back and the context stays append-only. */
    if (rc == 0) {
        size_t len = text.len;
        static const char *const ends[] = { "<|im_end|>", "<|endoftext|>" };
        for (size_t i = 0; i < 2; i++) {
            size_t k = strlen(ends[i]);
            if (len >= k && memcmp(text.data + len - k, ends[i], k) == 0) {
                len -= k;
                break;
            }
        }
        cru_buf_reset(said);
        rc = cru_buf_append(said, text.data ? text.data : "", len);
    }
    json_t *calls = rc == 0 ? calls_json(reply, *env->turns) : NULL;
    if (rc == 0) {
        struct rec_model_call mc = { .branch = branch,
                                     .prompt = prompt->v,
                                     .n_prompt = prompt->n,
                                     .completion = ids,
                                     .logprobs = lps,
                                     .n_completion = n,
                                     .finish = *finish,
                                     .policy_version = m->gen.policy_version,
                                     .decode_ms = ms,
                                     .text = reply->content,
                                     .reasoning = reply->reasoning,
                                     .tool_calls = json_array_size(calls) ? calls : NULL };
        rc = rec_model_call(env->ep, &mc);
    }
    /* The sampled ids join the context as they are: never re-tokenized. */
    if (rc == 0)
        rc = tok_ids_append(ctx, ids, n);
    if (rc == 0)
        *env->sampled += n;
    json_decref(calls);
    free(ids);
    free(lps);
    cru_buf_free(&bytes);
    cru_buf_free(&text);
    return rc;
}

int agt_model_episode(const struct agt_model *m, struct agt_model_env *env)
{
    struct tok_chat chat = TOK_CHAT_INIT;
    struct tok_ids ctx = TOK_IDS_INIT, prompt = TOK_IDS_INIT;
    struct cru_buf obs = CRU_BUF_INIT, said = CRU_BUF_INIT;
    json_t *tools = template_tools(env->sc->tools);
    uint32_t branch = 0;
    int rc = tools ? 0 : cru_err_set(CRU_ENOMEM, "out of memory");
    if (rc == 0)
        rc = tok_chat_add(&chat, TOK_ROLE_SYSTEM, env->sc->system_prompt, NULL);
    if (rc == 0)
        rc = tok_chat_add(&chat, TOK_ROLE_USER, env->prompt, NULL);
    if (rc == 0)
        rc = tok_chat_set_tools(&chat, tools);
    if (rc == 0)
        rc = tok_chat_encode(m->tok, &chat, chat.n_msgs, true, &prompt);
    while (rc == 0 && !env->ended && !env->stop(env->ctx)) {
        struct tok_reply reply = { 0 };
        const char *finish = "stop";
        (*env->turns)++;
        rc = call_model(m, env, branch, &ctx, &prompt, tools, &reply, &finish, &said);
        if (rc < 0 || env->ended) {
            tok_reply_free(&reply);
            break;
        }
        rc = tok_chat_add(&chat, TOK_ROLE_ASSISTANT, cru_buf_cstr(&said), NULL);
        for (size_t i = 0; rc == 0 && i < reply.n_calls && !env->tools->submitted; i++) {
            char id[48];
            snprintf(id, sizeof(id), "call-%llu-%zu", (unsigned long long)*env->turns, i + 1);
            char *args = json_dumps(reply.calls[i].arguments, JSON_COMPACT);
            rc = args ? agt_tool_run(env->tools, id, reply.calls[i].name, args, &obs)
                      : cru_err_set(CRU_ENOMEM, "out of memory");
            free(args);
            if (rc == 0)
                rc = tok_chat_add(&chat, TOK_ROLE_TOOL, cru_buf_cstr(&obs), NULL);
        }
        /* A malformed call is the model's to fix: it reads what was wrong. */
        if (rc == 0 && reply.error)
            rc = tok_chat_add(&chat, TOK_ROLE_TOOL, reply.error, NULL);
        bool answered = reply.n_calls == 0 && !reply.error;
        tok_reply_free(&reply);
        if (rc < 0 || env->tools->submitted)
            break;
        if (answered) {
            /* No tool call: the model's answer is its last word. */
            if (strcmp(finish, "length") == 0)
                end(env, REC_BUDGET, "the model's reply was cut at %u tokens without a tool call",
                    m->o.max_call_tokens);
            else
                env->tools->submitted = true;
            break;
        }
        /* The next prompt: the new messages rendered and appended, or a fork where the
         * template rewrote what the context holds. */
        struct tok_append ap = { 0 };
        rc = tok_chat_append(m->tok, &chat, ctx.v, ctx.n, true, &ap);
        if (rc == 0 && ap.edit) {
            uint32_t nb;
            rc = rec_fork(env->ep, branch, ap.keep, ap.reason, &nb);
            if (rc == 0) {
                branch = nb;
                env->tools->branch = nb;
                ctx.n = ap.keep;
            }
        }
        if (rc == 0) {
            prompt.n = 0;
            rc = tok_ids_append(&prompt, ap.ids.v, ap.ids.n);
        }
        tok_append_free(&ap);
    }
    tok_chat_free(&chat);
    tok_ids_free(&ctx);
    tok_ids_free(&prompt);
    cru_buf_free(&obs);
    cru_buf_free(&said);
    json_decref(tools);
    return rc;
}
