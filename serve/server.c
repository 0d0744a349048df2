/* serve/server: the OpenAI API over HTTP, on libmicrohttpd (loaded on first use, lib/dl.h),
 * for one checkpoint on the engine. It routes, bounds what a connection may send (its count,
 * its body's size and time, its idleness), renders and encodes prompts, submits one engine
 * request per choice and turns the results into response bodies or server-sent events. The
 * shape of requests and responses is serve/request's and serve/reply's; sampling and batching
 * are the engine's. It records nothing: trajectories of black-box agents are not written here
 * yet.
 *
 * Threads: libmicrohttpd gives each connection a thread, which runs the request handler and,
 * for a stream, the content reader. A request's choices run on the engine's thread; a hook
 * called there after each token (the engine's stop hook) decodes the new ids into the
 * choice's text, looks for stop strings, and wakes the stream's reader. A stream has one more
 * thread, the waiter, which collects each choice's result when the engine is done with it.
 * What the hook, the waiter and the reader share is under the job's mutex.
 */
#include "serve/server.h"

#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/dl.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/str.h"
#include "model/chat.h"
#include "model/engine.h"
#include "model/model.h"
#include "model/tokenizer.h"
#include "serve/reply.h"

struct srv_server {
    struct srv_server_opts o;
    char *name;
    const struct cru_libmhd *mhd;
    struct MHD_Daemon *daemon;
    uint16_t port;
    struct mdl_model *model;
    struct tok *tok;
    struct mdl_engine *engine;
    uint32_t max_ctx;
    int32_t chat_stop[2]; /* <|im_end|> and <|endoftext|>, those the tokenizer has */
    uint32_t n_chat_stop;
    int64_t created;
    atomic_bool stopping;
    pthread_mutex_t conn_lock;
    pthread_cond_t drained;
    uint32_t admitted; /* open connections within the limit */
    uint32_t requests; /* requests between their headers and the end of their response */
};

/* How long stopping waits for the requests in flight to be answered. */
#define DRAIN_S 10

/* What a connection's socket context points at: whether it is within the limit. */
static char conn_admitted, conn_overflow;

enum route {
    ROUTE_NONE,
    ROUTE_MODELS,
    ROUTE_MODEL, /* /v1/models/ID */
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_HEALTH,
};

/* One request on a connection, from its headers to its response. */
struct conn {
    enum route route;
    struct cru_buf body;
    uint64_t t0;
    bool answered;  /* a response is queued: whatever else comes is dropped */
    bool too_large; /* the body passed the limit: the rest is dropped, then 413 */
};

/* One choice of a request being generated. */
struct gen {
    struct job *job;
    uint32_t index;
    struct mdl_ticket *ticket;
    /* Under the job's mutex: */
    struct tok_stream ts;
    struct tok_ids seen; /* the ids the hook has seen */
    struct cru_buf text; /* their text */
    bool stopped;        /* a stop string ends the text at CUT */
    size_t cut;
    bool aborted; /* ended early: the client left or the server is stopping */
    bool done;    /* the engine is done: RES, RC */
    struct mdl_result res;
    int rc;
    char *err;
    /* The stream's progress (the reader's alone). */
    size_t sent_text, sent_ids;
    bool sent_first, sent_last;
};

/* One request: its parse, prompt, choices and, for a stream, what is still to send. */
struct job {
    struct srv_server *s;
    struct srv_request req;
    struct srv_meta meta;
    char id[48];
    struct tok_ids prompt;
    uint64_t t0;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct gen *gens;
    uint32_t n_gens;
    bool client_gone;
    pthread_t waiter;
    bool has_waiter;
    struct cru_buf out; /* stream bytes not yet handed to the connection */
    size_t out_pos;
    bool ended; /* the stream's last bytes are in OUT */
    uint64_t completion_tokens;
};

/* ---- responses ---- */

static enum MHD_Result respond(struct srv_server *s, struct MHD_Connection *c, unsigned status,
                               const char *type, char *body, size_t len, const char *hdr,
                               const char *value)
{
    struct MHD_Response *r =
        s->mhd->MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    s->mhd->MHD_add_response_header(r, "Content-Type", type);
    if (hdr)
        s->mhd->MHD_add_response_header(r, hdr, value);
    enum MHD_Result ret = s->mhd->MHD_queue_response(c, status, r);
    s->mhd->MHD_destroy_response(r);
    return ret;
}

/* V (consumed) as the JSON body of STATUS. */
static enum MHD_Result respond_json(struct srv_server *s, struct MHD_Connection *c, unsigned status,
                                    json_t *v, const char *hdr, const char *value)
{
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    if (!text) {
        static char fallback[] = "{\"error\": {\"message\": \"out of memory\", \"type\": "
                                 "\"server_error\", \"param\": null, \"code\": null}}";
        return respond(s, c, 500, "application/json", fallback, sizeof(fallback) - 1, NULL, NULL);
    }
    enum MHD_Result ret = respond(s, c, status, "application/json", text, strlen(text), hdr, value);
    free(text);
    return ret;
}

static enum MHD_Result respond_error(struct srv_server *s, struct MHD_Connection *c,
                                     const struct srv_error *e)
{
    cru_info("%d %s", e->status, e->message);
    /* A refusal before the body is read ends the connection: what the client still sends is
     * not read. */
    bool close = e->status == 413 || e->status == 503;
    return respond_json(s, c, (unsigned)e->status, srv_error_json(e), close ? "Connection" : NULL,
                        "close");
}

/* ---- routes ---- */

static enum route route_of(const char *url)
{
    static const struct {
        const char *path;
        enum route route;
    } routes[] = {
        { "/v1/models", ROUTE_MODELS },
        { "/v1/chat/completions", ROUTE_CHAT },
        { "/v1/completions", ROUTE_COMPLETIONS },
        { "/health", ROUTE_HEALTH },
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(url, routes[i].path) == 0)
            return routes[i].route;
    if (strncmp(url, "/v1/models/", 11) == 0 && url[11])
        return ROUTE_MODEL;
    return ROUTE_NONE;
}

static const char *route_method(enum route r)
{
    return r == ROUTE_CHAT || r == ROUTE_COMPLETIONS ? "POST" : "GET";
}

static json_t *model_json(const struct srv_server *s)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:I}", "id", s->name, "object", "model", "created",
                     (json_int_t)s->created, "owned_by", "crucible", "max_model_len",
                     (json_int_t)s->max_ctx);
}

/* ---- generation: the hook, the results, the choices ---- */

/* The text of ID appended to G's text; an id the tokenizer lacks (a checkpoint's vocabulary
 * may be padded past it) reads as U+FFFD. */
static int push_id(struct gen *g, int32_t id)
{
    size_t n;
    int rc = tok_ids_push(&g->seen, id);
    if (rc == 0 && !tok_token_bytes(g->job->s->tok, id, &n) &&
        (rc = tok_stream_finish(&g->ts, &g->text)) == 0)
        return cru_buf_puts(&g->text, "\xEF\xBF\xBD");
    return rc < 0 ? rc : tok_stream_push(&g->ts, id, &g->text);
}

/* Looks for a stop string in the text added since FROM. */
static void find_stop(struct gen *g, size_t from)
{
    size_t at;
    if (!g->stopped && g->job->req.n_stop &&
        srv_stop_find(&g->job->req, cru_buf_cstr(&g->text), g->text.len, from, &at)) {
        g->stopped = true;
        g->cut = at;
    }
}

/* The engine's stop hook, on its thread, after each sampled token but a stop id. */
static int on_token(void *ctx, const int32_t *ids, size_t n, bool *stop)
{
    struct gen *g = ctx;
    struct job *j = g->job;
    int rc = 0;
    pthread_mutex_lock(&j->mu);
    size_t from = g->text.len;
    while (rc == 0 && g->seen.n < n)
        rc = push_id(g, ids[g->seen.n]);
    find_stop(g, from);
    if (j->client_gone || atomic_load(&j->s->stopping))
        g->aborted = true;
    *stop = g->stopped || g->aborted;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return rc;
}

/* After the engine is done with G (under the mutex): the text of any id the hook did not see
 * but a final stop id, which is not text, and the text's end. */
static int gen_finish(struct gen *g)
{
    size_t n = g->res.n, from = g->text.len;
    int rc = 0;
    if (g->res.finish == MDL_FINISH_STOP && n > 0)
        n--;
    for (size_t i = g->seen.n; rc == 0 && i < n; i++)
        rc = push_id(g, g->res.ids[i]);
    if (rc == 0)
        rc = tok_stream_finish(&g->ts, &g->text);
    if (rc == 0)
        find_stop(g, from);
    if (rc == 0 && g->stopped) {
        g->text.len = g->cut;
        if (g->text.data)
            g->text.data[g->cut] = '\0';
    }
    return rc;
}

/* Waits for every choice in turn: the stream's waiter thread, or the handler itself. */
static void *wait_all(void *arg)
{
    struct job *j = arg;
    for (uint32_t i = 0; i < j->n_gens; i++) {
        struct gen *g = &j->gens[i];
        struct mdl_result res = { 0 };
        if (!g->ticket)
            continue; /* waited for already, or never submitted */
        int rc = mdl_ticket_wait(g->ticket, &res);
        pthread_mutex_lock(&j->mu);
        g->ticket = NULL;
        g->res = res;
        g->rc = rc;
        if (rc == 0)
            rc = gen_finish(g);
        if (rc < 0 && !g->err)
            g->err = strdup(cru_err_msg());
        g->rc = rc;
        g->done = true;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
    }
    return NULL;
}

static void job_free(struct job *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->client_gone = true;
    pthread_mutex_unlock(&j->mu);
    /* Nothing submitted can be withdrawn: each choice ends at its next token (the hook sees
     * CLIENT_GONE), and is waited for. */
    if (j->has_waiter)
        pthread_join(j->waiter, NULL);
    else
        wait_all(j);
    for (uint32_t i = 0; i < j->n_gens; i++) {
        struct gen *g = &j->gens[i];
        mdl_result_free(&g->res);
        tok_ids_free(&g->seen);
        cru_buf_free(&g->text);
        free(g->err);
    }
    free(j->gens);
    srv_request_free(&j->req);
    tok_ids_free(&j->prompt);
    cru_buf_free(&j->out);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

/* A job for a request to S; NULL when out of memory. */
static struct job *job_new(struct srv_server *s)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->s = s;
    j->req = (struct srv_request)SRV_REQUEST_INIT;
    j->prompt = (struct tok_ids)TOK_IDS_INIT;
    j->t0 = cru_now_ns();
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    return j;
}

/* A random 64-bit value (ids, seeds when the request gives none). */
static uint64_t random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v = cru_now_ns() ^ ((uint64_t)(uintptr_t)&v << 17);
    return v;
}

/* The prompt's ids: the conversation rendered and encoded, or the completion prompt. */
static int prompt_of(struct job *j, struct srv_error *e)
{
    struct srv_server *s = j->s;
    const struct srv_request *r = &j->req;
    int rc;
    if (r->endpoint == SRV_CHAT)
        rc = tok_chat_encode(s->tok, &r->chat, r->chat.n_msgs, true, &j->prompt);
    else if (r->prompt)
        rc = tok_encode(s->tok, r->prompt, r->prompt_len, &j->prompt);
    else
        rc = tok_ids_append(&j->prompt, r->prompt_ids, r->n_prompt_ids);
    if (rc < 0)
        return srv_error_set(e, rc == CRU_ENOMEM ? 500 : 400,
                             rc == CRU_ENOMEM ? "server_error" : "invalid_request_error", NULL,
                             r->endpoint == SRV_CHAT ? "messages" : "prompt", "%s", cru_err_msg());
    for (size_t i = 0; i < j->prompt.n; i++)
        if ((uint32_t)j->prompt.v[i] >= s->model->cfg.vocab)
            return srv_error_set(e, 400, "invalid_request_error", NULL, "prompt",
                                 "token id %d is not in the model's vocabulary of %u",
                                 (int)j->prompt.v[i], s->model->cfg.vocab);
    if (j->prompt.n == 0)
        return srv_error_set(e, 400, "invalid_request_error", NULL, "prompt",
                             "the prompt encodes to no token");
    uint64_t want = (uint64_t)j->prompt.n + (r->max_tokens ? r->max_tokens : 1);
    if (want > s->max_ctx)
        return srv_error_set(e, 400, "invalid_request_error", "context_length_exceeded",
                             r->endpoint == SRV_CHAT ? "messages" : "prompt",
                             "This model's maximum context length is %u tokens. However, you "
                             "requested %llu tokens (%zu in the prompt, %llu for the "
                             "completion).",
                             s->max_ctx, (unsigned long long)want, j->prompt.n,
                             (unsigned long long)(want - j->prompt.n));
    return 0;
}

/* Submits one engine request per choice. */
static int submit(struct job *j, struct srv_error *e)
{
    struct srv_server *s = j->s;
    const struct srv_request *r = &j->req;
    struct mdl_request q = MDL_REQUEST_INIT;
    uint64_t seed = r->has_seed ? r->seed : random_u64();
    q.prompt = j->prompt.v;
    q.n_prompt = j->prompt.n;
    q.sampling.temperature = r->temperature;
    q.sampling.top_p = r->top_p;
    q.sampling.top_k = r->top_k;
    q.sampling.max_tokens = r->max_tokens ? r->max_tokens : s->max_ctx - (uint32_t)j->prompt.n;
    if (q.sampling.max_tokens > MDL_MAX_TOKENS)
        q.sampling.max_tokens = MDL_MAX_TOKENS;
    q.sampling.n_top = r->top_logprobs;
    q.sampling.raw_logprobs = r->logprobs;
    if (r->endpoint == SRV_CHAT)
        for (uint32_t i = 0; i < s->n_chat_stop; i++)
            q.sampling.stop_ids[q.sampling.n_stop_ids++] = s->chat_stop[i];
    q.stop_fn = on_token;
    int rc = mdl_sampling_check(&q.sampling);
    if (rc < 0)
        return srv_error_set(e, 400, "invalid_request_error", NULL, NULL, "%s", cru_err_msg());
    if (!(j->gens = calloc(r->n, sizeof(*j->gens))))
        return srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory");
    for (uint32_t i = 0; i < r->n; i++) {
        struct gen *g = &j->gens[i];
        g->job = j;
        g->index = i;
        tok_stream_init(&g->ts, s->tok);
        q.sampling.seed = seed + i;
        q.stop_ctx = g;
        if ((rc = mdl_engine_submit(s->engine, &q, &g->ticket)) < 0)
            return srv_error_set(e, 500, "server_error", NULL, NULL, "%s", cru_err_msg());
        j->n_gens = i + 1;
    }
    return 0;
}

static const char *finish_name(const struct gen *g)
{
    switch (g->res.finish) {
    case MDL_FINISH_LENGTH:
    case MDL_FINISH_CONTEXT:
        return "length";
    default:
        return "stop";
    }
}

/* The error that ended G, if one did. */
static bool gen_error(const struct gen *g, struct srv_error *e)
{
    if (g->aborted && atomic_load(&g->job->s->stopping))
        srv_error_set(e, 503, "server_error", "server_shutting_down", NULL,
                      "the server is shutting down");
    else if (g->rc < 0 || g->res.finish == MDL_FINISH_ERROR ||
             g->res.finish == MDL_FINISH_CANCELLED)
        srv_error_set(e, 500, "server_error", NULL, NULL, "generation failed: %s",
                      g->err ? g->err : "the engine stopped");
    else
        return false;
    return true;
}

/* ---- non-streaming ---- */

static enum MHD_Result answer(struct job *j, struct MHD_Connection *c)
{
    struct srv_server *s = j->s;
    struct srv_error e;
    struct srv_choice *ch = calloc(j->n_gens, sizeof(*ch));
    json_t *body = NULL;
    wait_all(j);
    if (!ch) {
        srv_error_set(&e, 500, "server_error", NULL, NULL, "out of memory");
        return respond_error(s, c, &e);
    }
    for (uint32_t i = 0; i < j->n_gens; i++) {
        const struct gen *g = &j->gens[i];
        if (gen_error(g, &e)) {
            free(ch);
            return respond_error(s, c, &e);
        }
        ch[i] = (struct srv_choice){ g->res.ids,  g->res.n,      g->res.raw_logprobs,
                                     g->res.top,  g->res.n_top,  cru_buf_cstr(&g->text),
                                     g->text.len, finish_name(g) };
    }
    int rc = srv_response_json(&body, &j->req, &j->meta, ch, s->tok);
    free(ch);
    if (rc < 0) {
        srv_error_set(&e, 500, "server_error", NULL, NULL, "%s", cru_err_msg());
        return respond_error(s, c, &e);
    }
    cru_info("200 %s: %zu prompt tokens, %u choice(s), %.0f ms", j->meta.id, j->prompt.n, j->n_gens,
             (double)(cru_now_ns() - j->t0) / 1e6);
    return respond_json(s, c, 200, body, NULL, NULL);
}

/* ---- streaming ---- */

/* Appends "data: JSON\n\n" for V (consumed). */
static int emit(struct job *j, json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    int rc = text ? 0 : cru_err_set(CRU_ENOMEM, "out of memory");
    if (rc == 0)
        rc = cru_buf_printf(&j->out, "data: %s\n\n", text);
    free(text);
    return rc;
}

static int emit_delta(struct job *j, const struct srv_delta *d)
{
    json_t *chunk = NULL;
    int rc = srv_chunk_json(&chunk, &j->req, &j->meta, d);
    return rc < 0 ? rc : emit(j, chunk);
}

static bool parses_calls(const struct srv_request *r)
{
    return r->endpoint == SRV_CHAT && r->has_tools && r->tool_choice == SRV_TOOL_CHOICE_AUTO;
}

/* What G has that the client has not: the content settled so far, the ids seen. */
static int stream_running(struct job *j, struct gen *g)
{
    const char *text = cru_buf_cstr(&g->text);
    size_t limit = g->stopped ? g->cut : g->text.len - srv_stop_hold(&j->req, text, g->text.len);
    size_t settled = srv_reply_settled(text, limit, parses_calls(&j->req));
    bool more_text = settled > g->sent_text;
    bool more_ids = j->req.return_token_ids && g->seen.n > g->sent_ids;
    if (!more_text && !more_ids && g->sent_first)
        return 0;
    struct srv_delta d = { g->index,
                           !g->sent_first,
                           more_text ? text + g->sent_text : NULL,
                           more_text ? settled - g->sent_text : 0,
                           NULL,
                           more_ids ? g->seen.v + g->sent_ids : NULL,
                           more_ids ? g->seen.n - g->sent_ids : 0,
                           NULL };
    int rc = emit_delta(j, &d);
    if (rc == 0) {
        g->sent_first = true;
        g->sent_ids = g->seen.n;
        if (more_text)
            g->sent_text = settled;
    }
    return rc;
}

/* G is done: the rest of its content, its tool calls and ids, and why it ended. */
static int stream_done(struct job *j, struct gen *g)
{
    struct srv_error e;
    struct srv_reply rep;
    int rc;
    g->sent_last = true;
    j->completion_tokens += g->res.n;
    if (gen_error(g, &e))
        return emit(j, srv_error_json(&e));
    if ((rc = srv_reply_split(cru_buf_cstr(&g->text), g->text.len, parses_calls(&j->req),
                              j->req.digest, g->index, &rep)) < 0)
        return rc;
    /* What was sent begins the content (serve/reply.h, srv_reply_settled). */
    size_t sent = g->sent_text < rep.content_len ? g->sent_text : rep.content_len;
    size_t n_ids = j->req.return_token_ids ? g->res.n - g->sent_ids : 0;
    const int32_t *ids = n_ids ? g->res.ids + g->sent_ids : NULL;
    struct srv_delta d = { g->index,
                           !g->sent_first,
                           rep.content + sent,
                           rep.content_len - sent,
                           rep.tool_calls,
                           ids,
                           n_ids,
                           NULL };
    if (d.first || d.text_len || d.tool_calls || d.n_ids)
        rc = emit_delta(j, &d);
    if (rc == 0) {
        struct srv_delta last = {
            g->index, false, NULL, 0, NULL, NULL, 0, rep.tool_calls ? "tool_calls" : finish_name(g)
        };
        rc = emit_delta(j, &last);
    }
    srv_reply_free(&rep);
    return rc;
}

/* Turns what happened since the last call into events in J->out (under the mutex). */
static int stream_progress(struct job *j)
{
    bool all = true;
    int rc = 0;
    for (uint32_t i = 0; i < j->n_gens && rc == 0; i++) {
        struct gen *g = &j->gens[i];
        if (g->sent_last)
            continue;
        if (g->done)
            rc = stream_done(j, g);
        else
            rc = stream_running(j, g);
        all = all && g->sent_last;
    }
    if (rc == 0 && all) {
        json_t *usage = NULL;
        if (j->req.include_usage &&
            (rc = srv_usage_chunk_json(&usage, &j->req, &j->meta, j->completion_tokens)) == 0)
            rc = emit(j, usage);
        if (rc == 0)
            rc = cru_buf_puts(&j->out, "data: [DONE]\n\n");
        j->ended = true;
        cru_info("200 %s: streamed %zu prompt tokens, %u choice(s), %.0f ms", j->meta.id,
                 j->prompt.n, j->n_gens, (double)(cru_now_ns() - j->t0) / 1e6);
    }
    return rc;
}

/* libmicrohttpd's content reader, on the connection's thread: blocks until there is
 * something to send. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct job *j = cls;
    ssize_t n;
    (void)pos;
    pthread_mutex_lock(&j->mu);
    while (j->out_pos == j->out.len && !j->ended) {
        cru_buf_reset(&j->out);
        j->out_pos = 0;
        if (stream_progress(j) < 0) {
            cru_warn("%s: the stream ends early: %s", j->meta.id, cru_err_msg());
            pthread_mutex_unlock(&j->mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (j->out.len == 0 && !j->ended)
            pthread_cond_wait(&j->cv, &j->mu);
    }
    if (j->out_pos == j->out.len) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        size_t k = j->out.len - j->out_pos < max ? j->out.len - j->out_pos : max;
        memcpy(buf, j->out.data + j->out_pos, k);
        j->out_pos += k;
        n = (ssize_t)k;
    }
    pthread_mutex_unlock(&j->mu);
    return n;
}

/* libmicrohttpd is done with the stream (sent, or the connection is gone). */
static void stream_free(void *cls)
{
    job_free(cls);
}

static enum MHD_Result stream(struct job *j, struct MHD_Connection *c)
{
    struct srv_server *s = j->s;
    struct srv_error e;
    if (pthread_create(&j->waiter, NULL, wait_all, j) != 0) {
        job_free(j);
        srv_error_set(&e, 503, "server_error", NULL, NULL, "cannot start a thread for the stream");
        return respond_error(s, c, &e);
    }
    j->has_waiter = true;
    /* From here the response owns the job: stream_free frees it. */
    struct MHD_Response *r = s->mhd->MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
                                                                       stream_read, j, stream_free);
    if (!r) {
        job_free(j);
        return MHD_NO;
    }
    s->mhd->MHD_add_response_header(r, "Content-Type", "text/event-stream");
    s->mhd->MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ret = s->mhd->MHD_queue_response(c, 200, r);
    s->mhd->MHD_destroy_response(r);
    return ret;
}

/* POST /v1/chat/completions and /v1/completions, the body read. */
static enum MHD_Result generate(struct srv_server *s, struct MHD_Connection *c, struct conn *k,
                                enum srv_endpoint ep)
{
    struct srv_error e;
    struct job *j = job_new(s);
    if (!j) {
        srv_error_set(&e, 500, "server_error", NULL, NULL, "out of memory");
        return respond_error(s, c, &e);
    }
    if (srv_request_parse(&j->req, ep, cru_buf_cstr(&k->body), k->body.len, &e) < 0)
        goto fail;
    if (strcmp(j->req.model, s->name) != 0) {
        char shown[CRU_SHOW_CAP(64)];
        srv_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                      "The model `%s` does not exist (this server has `%s`)",
                      cru_str_show(shown, j->req.model, 64, true), s->name);
        goto fail;
    }
    if (prompt_of(j, &e) < 0)
        goto fail;
    snprintf(j->id, sizeof(j->id), "%s%016llx%08llx", ep == SRV_CHAT ? "chatcmpl-" : "cmpl-",
             (unsigned long long)random_u64(), (unsigned long long)(random_u64() & 0xffffffff));
    j->meta = (struct srv_meta){ j->id, s->name, (int64_t)time(NULL), j->prompt.v, j->prompt.n };
    if (submit(j, &e) < 0)
        goto fail;
    if (j->req.stream)
        return stream(j, c);
    enum MHD_Result ret = answer(j, c);
    job_free(j);
    return ret;
fail:
    job_free(j);
    return respond_error(s, c, &e);
}

/* ---- the connection ---- */

/* The request's headers are in: route, method, limits, and a Content-Length over the limit. */
static enum MHD_Result on_headers(struct srv_server *s, struct MHD_Connection *c, struct conn *k,
                                  const char *url, const char *method)
{
    struct srv_error e;
    char shown[CRU_SHOW_CAP(24)], shown_url[CRU_SHOW_CAP(64)];
    const union MHD_ConnectionInfo *ci =
        s->mhd->MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    k->route = route_of(url);
    if (ci && ci->socket_context == &conn_overflow)
        srv_error_set(&e, 503, "server_error", "server_busy", NULL,
                      "too many connections: the server takes %u at a time", s->o.max_connections);
    else if (atomic_load(&s->stopping))
        srv_error_set(&e, 503, "server_error", "server_shutting_down", NULL,
                      "the server is shutting down");
    else if (k->route == ROUTE_NONE)
        srv_error_set(&e, 404, "invalid_request_error", NULL, NULL, "Invalid URL (%s %s)",
                      cru_str_show(shown, method, 16, false),
                      cru_str_show(shown_url, url, 64, true));
    else if (strcmp(method, route_method(k->route)) != 0) {
        k->answered = true;
        srv_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL,
                      "%s is not allowed on %s: use %s", cru_str_show(shown, method, 16, false),
                      url, route_method(k->route));
        cru_info("405 %s", e.message);
        return respond_json(s, c, 405, srv_error_json(&e), "Allow", route_method(k->route));
    } else if (k->route == ROUTE_CHAT || k->route == ROUTE_COMPLETIONS) {
        const char *cl = s->mhd->MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        uint64_t n;
        if (!cl || cru_parse_u64(cl, 0, UINT64_MAX, &n) < 0 || n <= s->o.max_body)
            return MHD_YES; /* the body comes next */
        srv_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                      "a body of %llu bytes is over the limit of %zu", (unsigned long long)n,
                      s->o.max_body);
    } else {
        return MHD_YES;
    }
    k->answered = true;
    return respond_error(s, c, &e);
}

/* The request is whole: answer it. */
static enum MHD_Result dispatch(struct srv_server *s, struct MHD_Connection *c, struct conn *k,
                                const char *url)
{
    struct srv_error e;
    static char empty[] = "";
    switch (k->route) {
    case ROUTE_MODELS:
        return respond_json(s, c, 200,
                            json_pack("{s:s, s:[o]}", "object", "list", "data", model_json(s)),
                            NULL, NULL);
    case ROUTE_MODEL:
        if (strcmp(url + 11, s->name) == 0)
            return respond_json(s, c, 200, model_json(s), NULL, NULL);
        srv_error_set(&e, 404, "invalid_request_error", "model_not_found", "model",
                      "The model does not exist (this server has `%s`)", s->name);
        return respond_error(s, c, &e);
    case ROUTE_HEALTH:
        return respond(s, c, 200, "text/plain", empty, 0, NULL, NULL);
    case ROUTE_CHAT:
        return generate(s, c, k, SRV_CHAT);
    case ROUTE_COMPLETIONS:
        return generate(s, c, k, SRV_COMPLETIONS);
    default:
        return MHD_NO;
    }
}

/* A piece of the body: kept while within the size and time limits. libmicrohttpd (to 1.0 at
 * least) queues a response only once the headers are in or the body is whole, never in between:
 * a body that passes the size limit is read to its end and dropped, then answered 413; one still
 * coming when its time is up can only be cut off, the connection closed unanswered. */
static enum MHD_Result on_upload(struct srv_server *s, struct conn *k, size_t n, const char *data)
{
    if (k->answered)
        return MHD_YES;
    if (cru_now_ns() - k->t0 > (uint64_t)s->o.body_timeout_s * 1000000000ull) {
        cru_info("a request body still coming after %u s: the connection is closed",
                 s->o.body_timeout_s);
        return MHD_NO;
    }
    if (k->too_large)
        return MHD_YES;
    if (n > s->o.max_body - k->body.len) {
        k->too_large = true;
        cru_buf_free(&k->body);
        return MHD_YES;
    }
    return cru_buf_append(&k->body, data, n) < 0 ? MHD_NO : MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct srv_server *s = cls;
    struct conn *k = *con_cls;
    struct srv_error e;
    (void)version;
    if (!k) {
        if (!(k = calloc(1, sizeof(*k))))
            return MHD_NO;
        *con_cls = k;
        k->t0 = cru_now_ns();
        pthread_mutex_lock(&s->conn_lock);
        s->requests++;
        pthread_mutex_unlock(&s->conn_lock);
        /* An error is answered at once, and a body that may follow is not read (the connection
         * then closes); a request that passes is answered when it is whole (even a GET: one
         * answered at its first call would not keep its connection alive). */
        return on_headers(s, c, k, url, method);
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        return on_upload(s, k, n, upload);
    }
    if (k->answered)
        return MHD_YES;
    k->answered = true;
    if (k->too_large) {
        srv_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL,
                      "the body is over the limit of %zu bytes", s->o.max_body);
        return respond_error(s, c, &e);
    }
    return dispatch(s, c, k, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct srv_server *s = cls;
    struct conn *k = *con_cls;
    (void)c;
    (void)toe;
    if (k) {
        cru_buf_free(&k->body);
        free(k);
        *con_cls = NULL;
        pthread_mutex_lock(&s->conn_lock);
        s->requests--;
        pthread_cond_broadcast(&s->drained);
        pthread_mutex_unlock(&s->conn_lock);
    }
}

/* Counts the connections within the limit; the rest are answered 503. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct srv_server *s = cls;
    (void)c;
    pthread_mutex_lock(&s->conn_lock);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        bool in = s->admitted < s->o.max_connections;
        s->admitted += in;
        *socket_context = in ? &conn_admitted : &conn_overflow;
    } else if (*socket_context == &conn_admitted) {
        s->admitted--;
    }
    pthread_mutex_unlock(&s->conn_lock);
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    cru_debug("libmicrohttpd: %s", line);
}

/* ---- the server ---- */

static int check_opts(const struct srv_server_opts *o)
{
    if (!o || o->version != SRV_SERVER_OPTS_VERSION)
        return cru_err_set(CRU_EINVAL, "srv_server_opts: unknown version");
    if (!o->model_dir || !o->host)
        return cru_err_set(CRU_EINVAL, "srv_server_opts: the model folder and host are required");
    if (o->max_connections < 1 || o->max_connections > SRV_CONNECTIONS_MAX)
        return cru_err_set(CRU_EINVAL, "connections: %u is not in 1..%d", o->max_connections,
                           SRV_CONNECTIONS_MAX);
    if (o->max_body < 1 || o->max_body > SRV_BODY_LIMIT_MAX)
        return cru_err_set(CRU_EINVAL, "body limit: %zu is not in 1..%zu", o->max_body,
                           SRV_BODY_LIMIT_MAX);
    if (o->seqs < 1 || o->idle_timeout_s < 1 || o->body_timeout_s < 1)
        return cru_err_set(CRU_EINVAL, "srv_server_opts: sequences and timeouts must be positive");
    if (o->model_name && (!o->model_name[0] || strlen(o->model_name) > SRV_NAME_MAX))
        return cru_err_set(CRU_EINVAL, "the model's name must have 1 to %d bytes", SRV_NAME_MAX);
    return 0;
}

/* The checkpoint, its tokenizer and chat template, and the engine. */
static int load_model(struct srv_server *s)
{
    const struct srv_server_opts *o = &s->o;
    const struct mdl_backend *be = NULL;
    enum tok_template tmpl;
    struct mdl_engine_opts eo = MDL_ENGINE_OPTS_INIT;
    struct mdl_backend_limits lim;
    static const char *const stops[] = { "<|im_end|>", "<|endoftext|>" };
    /* The backend first: a missing CUDA library is reported before a large checkpoint is read. */
    int rc = mdl_device_backend(&o->device, &be);
    if (rc == 0)
        rc = mdl_model_load(&s->model, o->model_dir);
    if (rc == 0)
        rc = tok_load(&s->tok, o->model_dir);
    if (rc == 0)
        rc = tok_template_detect(o->model_dir, &tmpl);
    if (rc == 0 && tok_vocab_size(s->tok) > s->model->cfg.vocab)
        rc = cru_err_set(CRU_EINVAL,
                         "the tokenizer has %zu ids, more than the model's vocabulary of %u",
                         tok_vocab_size(s->tok), s->model->cfg.vocab);
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        int32_t id;
        if (tok_token_id(s->tok, stops[i], strlen(stops[i]), &id) == 0)
            s->chat_stop[s->n_chat_stop++] = id;
    }
    if (rc == 0 && s->n_chat_stop == 0)
        rc = cru_err_set(CRU_EINVAL, "the tokenizer has no <|im_end|>: not a chat model");
    eo.backend = be;
    eo.backend_opts.max_seqs = o->seqs;
    eo.backend_opts.threads = o->threads;
    eo.backend_opts.device = o->device.ordinal;
    eo.backend_opts.memory = o->gpu_memory;
    if (rc == 0)
        rc = mdl_engine_new(&s->engine, s->model, &eo);
    if (rc == 0) {
        mdl_engine_limits(s->engine, &lim);
        s->max_ctx = lim.max_ctx;
    }
    return rc < 0 ? cru_err_wrap(rc, "model %s", o->model_dir) : 0;
}

static int model_name(struct srv_server *s)
{
    if (s->o.model_name)
        return cru_str_dup(&s->name, s->o.model_name);
    /* The folder's name, as the model agent names it. */
    size_t n = strlen(s->o.model_dir);
    while (n > 1 && s->o.model_dir[n - 1] == '/')
        n--;
    size_t start = n;
    while (start > 0 && s->o.model_dir[start - 1] != '/')
        start--;
    if (n - start == 0 || n - start > SRV_NAME_MAX)
        return cru_err_set(CRU_EINVAL, "%s: name the model with a name of 1 to %d bytes",
                           s->o.model_dir, SRV_NAME_MAX);
    return cru_str_ndup(&s->name, s->o.model_dir + start, n - start);
}

static int listen_on(struct srv_server *s)
{
    const struct srv_server_opts *o = &s->o;
    struct addrinfo hints = { .ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%u", o->port);
    int g = getaddrinfo(o->host, port, &hints, &ai);
    if (g != 0)
        return cru_err_set(CRU_EINVAL, "host '%s': %s", o->host, gai_strerror(g));
    /* ITC: stopping quiesces the daemon (no new connections) before it waits for answers. */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = s->mhd->MHD_start_daemon(
        flags, o->port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_log, s,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(o->max_connections + SRV_OVERFLOW_CONNECTIONS), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)o->idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->daemon)
        return cru_err_set(CRU_EIO,
                           "cannot listen on %s port %u (the port is taken, or the "
                           "address is not this machine's)",
                           o->host, o->port);
    const union MHD_DaemonInfo *di =
        s->mhd->MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    return 0;
}

int srv_server_start(struct srv_server **out, const struct srv_server_opts *o)
{
    int rc = check_opts(o);
    if (rc < 0)
        return rc;
    struct srv_server *s = calloc(1, sizeof(*s));
    if (!s)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    s->o = *o;
    s->created = (int64_t)time(NULL);
    atomic_init(&s->stopping, false);
    pthread_mutex_init(&s->conn_lock, NULL);
    pthread_cond_init(&s->drained, NULL);
    if ((rc = model_name(s)) < 0 || (rc = cru_dl_libmhd(&s->mhd)) < 0 || (rc = load_model(s)) < 0 ||
        (rc = listen_on(s)) < 0) {
        srv_server_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

uint16_t srv_server_port(const struct srv_server *s)
{
    return s->port;
}

const char *srv_server_model(const struct srv_server *s)
{
    return s->name;
}

void srv_server_free(struct srv_server *s)
{
    if (!s)
        return;
    /* Requests in flight see this at their next token and end; they are answered (503, or the
     * end of a stream) before the daemon closes every connection and joins its thread, so
     * nothing uses the engine when it is freed. */
    atomic_store(&s->stopping, true);
    if (s->daemon) {
        MHD_socket ls = s->mhd->MHD_quiesce_daemon(s->daemon);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += DRAIN_S;
        pthread_mutex_lock(&s->conn_lock);
        while (s->requests > 0 && pthread_cond_timedwait(&s->drained, &s->conn_lock, &until) == 0)
            ;
        if (s->requests > 0)
            cru_warn("%u request(s) still unanswered after %d s: closing them", s->requests,
                     DRAIN_S);
        pthread_mutex_unlock(&s->conn_lock);
        s->mhd->MHD_stop_daemon(s->daemon);
        /* The daemon leaves the quiesced socket to its caller, closed only after the stop. */
        if (ls != MHD_INVALID_SOCKET)
            close(ls);
    }
    mdl_engine_free(s->engine);
    tok_free(s->tok);
    mdl_model_free(s->model);
    pthread_cond_destroy(&s->drained);
    pthread_mutex_destroy(&s->conn_lock);
    free(s->name);
    free(s);
}
