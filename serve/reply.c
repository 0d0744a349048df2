/* serve/reply: a model's reply in the OpenAI API's shapes. It splits a reply's text into
 * content and Qwen3 <tool_call> blocks (an OpenAI tool call each, with an id derived from the
 * request), finds stop strings in a text that grows token by token and says how much of a
 * growing text is sure to stay content, and builds the response bodies and stream chunks of
 * both endpoints. It neither runs the model nor decodes ids, apart from the token strings of
 * log-probs; the server hands it text and ids.
 */
#include "serve/reply.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/str.h"

static const char call_open[] = "<tool_call>", call_close[] = "</tool_call>";
#define OPEN_LEN  (sizeof(call_open) - 1)
#define CLOSE_LEN (sizeof(call_close) - 1)

/* The lowest log-prob written: JSON has no -Infinity (OpenAI writes -9999 too). */
#define LOGPROB_FLOOR -9999.0

void srv_reply_free(struct srv_reply *r)
{
    if (!r)
        return;
    free(r->content);
    json_decref(r->tool_calls);
    memset(r, 0, sizeof(*r));
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const char *find(const char *s, size_t n, const char *p, size_t pn)
{
    return n >= pn ? memmem(s, n, p, pn) : NULL;
}

/* "call_" and 24 hex digits of SHA-256(digest, choice, k): stable for a request. */
static int call_id(const uint8_t digest[32], uint32_t choice, size_t k, char out[32])
{
    uint8_t in[40], sum[CRU_SHA256_LEN];
    uint32_t kk = (uint32_t)k;
    memcpy(in, digest, 32);
    for (int i = 0; i < 4; i++) {
        in[32 + i] = (uint8_t)(choice >> (8 * i));
        in[36 + i] = (uint8_t)(kk >> (8 * i));
    }
    int rc = cru_sha256(in, sizeof(in), sum);
    if (rc < 0)
        return rc;
    memcpy(out, "call_", 5);
    cru_hex(out + 5, sum, 12);
    return 0;
}

/* The arguments as text: the model's own when BODY (trimmed) is exactly what the template
 * renders for NAME and ARGS, so that sending the call back renders the sampled text again. */
static int arguments_text(const char *body, size_t n, const char *name, const json_t *args,
                          char **out)
{
    char *prefix = NULL;
    json_t *again = NULL;
    int rc = cru_str_printf(&prefix, "{\"name\": \"%s\", \"arguments\": ", name);
    if (rc < 0)
        return rc;
    size_t pn = strlen(prefix);
    if (n > pn + 1 && memcmp(body, prefix, pn) == 0 && body[n - 1] == '}' &&
        cru_json_parse(&again, body + pn, n - pn - 1, "arguments") == 0 &&
        json_equal(again, args)) {
        rc = cru_str_ndup(out, body + pn, n - pn - 1);
    } else {
        /* jansson's default separators are the template's tojson: ", " and ": ". */
        char *s = json_dumps(args, JSON_ENCODE_ANY);
        rc = s ? 0 : cru_err_set(CRU_ENOMEM, "out of memory");
        *out = s;
    }
    json_decref(again);
    free(prefix);
    return rc;
}

/* One block's text into a call appended to CALLS. Returns 0, 1 when it is not a well-formed
 * call, or a negative code (no memory). */
static int parse_call(const char *body, size_t n, const uint8_t digest[32], uint32_t choice,
                      size_t k, json_t *calls)
{
    json_t *v = NULL, *call = NULL;
    char *args_text = NULL, id[32];
    int rc;
    while (n && is_space(body[0]))
        body++, n--;
    while (n && is_space(body[n - 1]))
        n--;
    if ((rc = cru_json_parse(&v, body, n, "tool call")) < 0)
        return rc == CRU_ENOMEM ? rc : 1;
    json_t *name = json_object_get(v, "name"), *args = json_object_get(v, "arguments");
    rc = 1;
    if (json_is_object(v) && json_object_size(v) == 2 && json_is_string(name) &&
        json_string_length(name) > 0 && json_string_length(name) <= SRV_NAME_MAX &&
        strlen(json_string_value(name)) == json_string_length(name) && json_is_object(args)) {
        if ((rc = arguments_text(body, n, json_string_value(name), args, &args_text)) == 0 &&
            (rc = call_id(digest, choice, k, id)) == 0) {
            call = json_pack("{s:s, s:s, s:{s:O, s:s}}", "id", id, "type", "function", "function",
                             "name", name, "arguments", args_text);
            rc = call && json_array_append_new(calls, call) == 0
                     ? 0
                     : cru_err_set(CRU_ENOMEM, "out of memory");
        }
    }
    free(args_text);
    json_decref(v);
    return rc;
}

/* The calls of TEXT from OPEN on into *CALLS; 1 when a block breaks the rules. */
static int parse_calls(const char *text, size_t len, const char *open, const uint8_t digest[32],
                       uint32_t choice, json_t **calls)
{
    const char *end = text + len;
    size_t k = 0;
    int rc = 0;
    if (!(*calls = json_array()))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    while (open && rc == 0) {
        const char *body = open + OPEN_LEN;
        const char *close = find(body, (size_t)(end - body), call_close, CLOSE_LEN);
        if (!close || k >= SRV_CALLS_MAX) {
            rc = 1;
            break;
        }
        if ((rc = parse_call(body, (size_t)(close - body), digest, choice, k, *calls)) != 0)
            break;
        k++;
        const char *after = close + CLOSE_LEN;
        open = find(after, (size_t)(end - after), call_open, OPEN_LEN);
        for (const char *p = after; p < (open ? open : end); p++)
            if (!is_space(*p)) {
                rc = 1;
                break;
            }
    }
    if (rc != 0) {
        json_decref(*calls);
        *calls = NULL;
    }
    return rc;
}

int srv_reply_split(const char *text, size_t len, bool parse_calls_on, const uint8_t digest[32],
                    uint32_t choice, struct srv_reply *out)
{
    memset(out, 0, sizeof(*out));
    const char *open = parse_calls_on ? find(text, len, call_open, OPEN_LEN) : NULL;
    size_t content = len;
    if (open) {
        int rc = parse_calls(text, len, open, digest, choice, &out->tool_calls);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            content = (size_t)(open - text);
            /* The template puts exactly one newline between content and the first call. */
            if (content && text[content - 1] == '\n')
                content--;
        }
    }
    if (cru_str_ndup(&out->content, text, content) < 0) {
        srv_reply_free(out);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    out->content_len = content;
    return 0;
}

/* The longest K < N such that TEXT ends with P's first K bytes. */
static size_t tail_prefix(const char *text, size_t len, const char *p, size_t n)
{
    for (size_t k = (n - 1 < len ? n - 1 : len); k > 0; k--)
        if (memcmp(text + len - k, p, k) == 0)
            return k;
    return 0;
}

size_t srv_reply_settled(const char *text, size_t len, bool parse_calls_on)
{
    if (!parse_calls_on)
        return len;
    const char *open = find(text, len, call_open, OPEN_LEN);
    if (open) {
        size_t p = (size_t)(open - text);
        return p && text[p - 1] == '\n' ? p - 1 : p;
    }
    static const char nl_open[] = "\n<tool_call>";
    size_t a = tail_prefix(text, len, nl_open, sizeof(nl_open) - 1);
    size_t b = tail_prefix(text, len, call_open, OPEN_LEN);
    return len - (a > b ? a : b);
}

bool srv_stop_find(const struct srv_request *r, const char *text, size_t len, size_t from,
                   size_t *at)
{
    bool found = false;
    for (size_t i = 0; i < r->n_stop; i++) {
        size_t m = strlen(r->stop[i]);
        size_t start = from >= m - 1 ? from - (m - 1) : 0;
        if (start >= len)
            continue;
        const char *p = find(text + start, len - start, r->stop[i], m);
        if (p && (!found || (size_t)(p - text) < *at)) {
            *at = (size_t)(p - text);
            found = true;
        }
    }
    return found;
}

size_t srv_stop_hold(const struct srv_request *r, const char *text, size_t len)
{
    size_t hold = 0;
    for (size_t i = 0; i < r->n_stop; i++) {
        size_t k = tail_prefix(text, len, r->stop[i], strlen(r->stop[i]));
        if (k > hold)
            hold = k;
    }
    return hold;
}

/* ---- bodies ---- */

/* Sets K to V (a new reference, consumed) in O; false when either is missing. */
static bool put(json_t *o, const char *k, json_t *v)
{
    if (!o) {
        json_decref(v);
        return false;
    }
    return json_object_set_new(o, k, v) == 0;
}

static json_t *ids_json(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(ids[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *logprob_json(float lp)
{
    double d = lp;
    return json_real(isfinite(d) && d > LOGPROB_FLOOR ? d : LOGPROB_FLOOR);
}

/* A token's text (its bytes as valid UTF-8) into OUT, and its bytes into *BYTES when asked. */
static int token_text(const struct tok *t, int32_t id, struct cru_buf *out, json_t **bytes)
{
    size_t n = 0;
    const char *s = tok_token_bytes(t, id, &n);
    cru_buf_reset(out);
    int rc = tok_utf8_lossy(s ? s : "", s ? n : 0, out);
    if (rc < 0 || !bytes)
        return rc;
    if (!(*bytes = json_array()))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(*bytes, json_integer((unsigned char)s[i])) < 0)
            return cru_err_set(CRU_ENOMEM, "out of memory");
    return 0;
}

/* {"token", "logprob", "bytes"} */
static json_t *chat_token(const struct tok *t, int32_t id, float lp, struct cru_buf *scratch)
{
    json_t *bytes = NULL;
    if (token_text(t, id, scratch, &bytes) < 0) {
        json_decref(bytes);
        return NULL;
    }
    return json_pack("{s:s%, s:o, s:o}", "token", cru_buf_cstr(scratch), scratch->len, "logprob",
                     logprob_json(lp), "bytes", bytes);
}

/* Chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}, ...]}. */
static json_t *chat_logprobs(const struct srv_choice *c, const struct tok *t)
{
    struct cru_buf scratch = CRU_BUF_INIT;
    json_t *content = json_array(), *out = NULL;
    bool ok = content != NULL;
    for (size_t i = 0; ok && i < c->n_ids; i++) {
        json_t *e = chat_token(t, c->ids[i], c->logprobs[i], &scratch), *top = json_array();
        ok = e && top;
        for (uint32_t j = 0; ok && c->top && j < c->n_top; j++) {
            const struct mdl_alt *a = &c->top[i * c->n_top + j];
            ok = json_array_append_new(top, chat_token(t, a->id, a->logprob, &scratch)) == 0;
        }
        /* The _new setters take their value even when they fail. */
        if (ok) {
            ok = json_object_set_new(e, "top_logprobs", top) == 0;
            top = NULL;
        }
        if (ok) {
            ok = json_array_append_new(content, e) == 0;
            e = NULL;
        }
        json_decref(top);
        json_decref(e);
    }
    if (ok)
        out = json_pack("{s:O}", "content", content);
    json_decref(content);
    cru_buf_free(&scratch);
    return out;
}

/* Completions: {"tokens", "token_logprobs", "top_logprobs", "text_offset"}; a text offset is
 * the sum of the lengths of the token strings before it. */
static json_t *completion_logprobs(const struct srv_choice *c, const struct tok *t)
{
    struct cru_buf scratch = CRU_BUF_INIT;
    json_t *tokens = json_array(), *lps = json_array(), *tops = json_array(),
           *offsets = json_array();
    bool ok = tokens && lps && tops && offsets;
    size_t offset = 0;
    for (size_t i = 0; ok && i < c->n_ids; i++) {
        json_t *top = json_object();
        ok =
            token_text(t, c->ids[i], &scratch, NULL) == 0 && top &&
            json_array_append_new(tokens, json_stringn(cru_buf_cstr(&scratch), scratch.len)) == 0 &&
            json_array_append_new(lps, logprob_json(c->logprobs[i])) == 0 &&
            json_array_append_new(offsets, json_integer((json_int_t)offset)) == 0;
        offset += scratch.len;
        for (uint32_t j = 0; ok && c->top && j < c->n_top; j++) {
            const struct mdl_alt *a = &c->top[i * c->n_top + j];
            ok = token_text(t, a->id, &scratch, NULL) == 0 &&
                 json_object_set_new(top, cru_buf_cstr(&scratch), logprob_json(a->logprob)) == 0;
        }
        if (ok)
            ok = json_array_append_new(tops, top) == 0;
        else
            json_decref(top);
    }
    json_t *out = ok ? json_pack("{s:O, s:O, s:O, s:O}", "tokens", tokens, "token_logprobs", lps,
                                 "top_logprobs", tops, "text_offset", offsets)
                     : NULL;
    json_decref(tokens);
    json_decref(lps);
    json_decref(tops);
    json_decref(offsets);
    cru_buf_free(&scratch);
    return out;
}

static bool parses_calls(const struct srv_request *r)
{
    return r->endpoint == SRV_CHAT && r->has_tools && r->tool_choice == SRV_TOOL_CHOICE_AUTO;
}

static json_t *chat_choice(const struct srv_request *r, const struct srv_choice *c, uint32_t index,
                           const struct tok *t, int *rc)
{
    struct srv_reply rep;
    if ((*rc = srv_reply_split(c->text, c->text_len, parses_calls(r), r->digest, index, &rep)) < 0)
        return NULL;
    json_t *msg = json_object(), *choice = json_object();
    bool ok = put(msg, "role", json_string("assistant"));
    /* OpenAI's content is null beside tool calls when the model wrote nothing else. */
    ok = ok &&
         put(msg, "content",
             rep.tool_calls && rep.content_len == 0 ? json_null()
                                                    : json_stringn(rep.content, rep.content_len));
    if (ok && rep.tool_calls)
        ok = put(msg, "tool_calls", json_incref(rep.tool_calls));
    ok =
        ok && put(choice, "index", json_integer(index)) && put(choice, "message", json_incref(msg));
    ok = ok && put(choice, "logprobs", r->logprobs ? chat_logprobs(c, t) : json_null());
    ok = ok && put(choice, "finish_reason", json_string(rep.tool_calls ? "tool_calls" : c->finish));
    if (ok && r->return_token_ids)
        ok = put(choice, "token_ids", ids_json(c->ids, c->n_ids));
    json_decref(msg);
    srv_reply_free(&rep);
    if (!ok) {
        json_decref(choice);
        *rc = cru_err_set(CRU_ENOMEM, "out of memory building a response");
        return NULL;
    }
    return choice;
}

static json_t *completion_choice(const struct srv_request *r, const struct srv_meta *m,
                                 const struct srv_choice *c, uint32_t index, const struct tok *t,
                                 int *rc)
{
    json_t *choice = json_object();
    bool ok = put(choice, "index", json_integer(index)) &&
              put(choice, "text", json_stringn(c->text, c->text_len)) &&
              put(choice, "logprobs", r->logprobs ? completion_logprobs(c, t) : json_null()) &&
              put(choice, "finish_reason", json_string(c->finish));
    if (ok && r->return_token_ids)
        ok = put(choice, "prompt_token_ids", ids_json(m->prompt_ids, m->n_prompt)) &&
             put(choice, "token_ids", ids_json(c->ids, c->n_ids));
    if (!ok) {
        json_decref(choice);
        *rc = cru_err_set(CRU_ENOMEM, "out of memory building a response");
        return NULL;
    }
    return choice;
}

static json_t *usage_json(size_t prompt, uint64_t completion)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)prompt, "completion_tokens",
                     (json_int_t)completion, "total_tokens", (json_int_t)(prompt + completion));
}

/* {"id", "object", "created", "model"} */
static json_t *head_json(const struct srv_meta *m, const char *object)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "id", m->id, "object", object, "created",
                     (json_int_t)m->created, "model", m->model);
}

int srv_response_json(json_t **out, const struct srv_request *r, const struct srv_meta *m,
                      const struct srv_choice *ch, const struct tok *t)
{
    bool chat = r->endpoint == SRV_CHAT;
    json_t *o = head_json(m, chat ? "chat.completion" : "text_completion"), *choices = json_array();
    uint64_t completion = 0;
    int rc = 0;
    bool ok = o && choices;
    for (uint32_t i = 0; ok && i < r->n; i++) {
        json_t *c =
            chat ? chat_choice(r, &ch[i], i, t, &rc) : completion_choice(r, m, &ch[i], i, t, &rc);
        ok = c && json_array_append_new(choices, c) == 0;
        completion += ch[i].n_ids;
    }
    ok = ok && put(o, "choices", json_incref(choices)) &&
         put(o, "usage", usage_json(m->n_prompt, completion));
    if (ok && chat && r->return_token_ids)
        ok = put(o, "prompt_token_ids", ids_json(m->prompt_ids, m->n_prompt));
    json_decref(choices);
    if (!ok) {
        json_decref(o);
        return rc < 0 ? rc : cru_err_set(CRU_ENOMEM, "out of memory building a response");
    }
    *out = o;
    return 0;
}

/* The calls as a stream delta lists them: each with its "index". */
static json_t *delta_calls(json_t *calls)
{
    json_t *out = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c)
    {
        json_t *d = json_deep_copy(c);
        if (!d || json_object_set_new(d, "index", json_integer((json_int_t)i)) < 0 ||
            json_array_append_new(out, d) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

int srv_chunk_json(json_t **out, const struct srv_request *r, const struct srv_meta *m,
                   const struct srv_delta *d)
{
    bool chat = r->endpoint == SRV_CHAT;
    json_t *o = head_json(m, chat ? "chat.completion.chunk" : "text_completion");
    json_t *choice = json_object(), *delta = chat ? json_object() : NULL;
    bool ok = o && choice && (!chat || delta);
    ok = ok && put(choice, "index", json_integer(d->index));
    if (ok && chat) {
        if (d->first)
            ok = put(delta, "role", json_string("assistant"));
        if (ok && (d->text || d->first))
            ok = put(delta, "content", json_stringn(d->text ? d->text : "", d->text_len));
        if (ok && d->tool_calls)
            ok = put(delta, "tool_calls", delta_calls(d->tool_calls));
        ok = ok && put(choice, "delta", json_incref(delta));
    } else if (ok) {
        ok = put(choice, "text", json_stringn(d->text ? d->text : "", d->text_len));
    }
    ok = ok && put(choice, "logprobs", json_null()) &&
         put(choice, "finish_reason", d->finish ? json_string(d->finish) : json_null());
    if (ok && r->return_token_ids) {
        ok = put(choice, "token_ids", ids_json(d->ids, d->n_ids));
        /* vLLM's places: the chunk's top level for chat, the choice for completions. */
        if (ok && d->first)
            ok = put(chat ? o : choice, "prompt_token_ids", ids_json(m->prompt_ids, m->n_prompt));
    }
    json_t *choices = ok ? json_array() : NULL;
    ok = ok && choices && json_array_append(choices, choice) == 0 &&
         put(o, "choices", json_incref(choices));
    json_decref(choices);
    json_decref(choice);
    json_decref(delta);
    if (!ok) {
        json_decref(o);
        return cru_err_set(CRU_ENOMEM, "out of memory building a stream chunk");
    }
    *out = o;
    return 0;
}

int srv_usage_chunk_json(json_t **out, const struct srv_request *r, const struct srv_meta *m,
                         uint64_t completion_tokens)
{
    json_t *o = head_json(m, r->endpoint == SRV_CHAT ? "chat.completion.chunk" : "text_completion");
    if (!put(o, "choices", json_array()) ||
        !put(o, "usage", usage_json(m->n_prompt, completion_tokens))) {
        json_decref(o);
        return cru_err_set(CRU_ENOMEM, "out of memory building a stream chunk");
    }
    *out = o;
    return 0;
}
