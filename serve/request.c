/* serve/request: an OpenAI chat-completions or completions body, checked field by field into a
 * struct srv_request, and the API's error body. It bounds the body before jansson builds a
 * tree of it (a count of its values), refuses unknown and unsupported fields by name, and turns
 * the messages (string or text-part contents, tool calls with their arguments as text) into
 * the conversation the chat template renders. It does not know the model or the tokenizer:
 * the model's name, the prompt's length in tokens and the context are checked by the server.
 */
#include "serve/request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/str.h"
#include "model/engine.h"
#include "model/sample.h"

#define PARAM_MAX sizeof(((struct srv_error *)0)->param)

int srv_error_set(struct srv_error *e, int status, const char *type, const char *code,
                  const char *param, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
    va_start(ap, fmt);
    int n = vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    /* A message that had to be cut says so. */
    if (n >= (int)sizeof(e->message))
        memcpy(e->message + sizeof(e->message) - 4, "...", 4);
    return status >= 500 ? CRU_EINTERNAL : CRU_EINVAL;
}

json_t *srv_error_json(const struct srv_error *e)
{
    json_t *err = json_object();
    if (!err)
        return NULL;
    json_object_set_new(err, "message", json_string(e->message));
    json_object_set_new(err, "type", json_string(e->type ? e->type : "server_error"));
    json_object_set_new(err, "param", e->param[0] ? json_string(e->param) : json_null());
    json_object_set_new(err, "code", e->code ? json_string(e->code) : json_null());
    /* A message or param that jansson refused (it takes only valid UTF-8, which both are
     * unless a bug put bytes there) leaves a hole: the body is then incomplete, not wrong. */
    return json_pack("{s:o}", "error", err);
}

/* A 400 about PARAM. */
static int bad(struct srv_error *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(struct srv_error *e, const char *param, const char *fmt, ...)
{
    char msg[CRU_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (param && param[0])
        return srv_error_set(e, 400, "invalid_request_error", NULL, param, "%s: %s", param, msg);
    return srv_error_set(e, 400, "invalid_request_error", NULL, NULL, "%s", msg);
}

/* A 400 for a field crucible reads but cannot honour with this value. */
static int unsupported(struct srv_error *e, const char *param, const char *what)
{
    return srv_error_set(e, 400, "invalid_request_error", "unsupported_parameter", param,
                         "%s: %s is not supported", param, what);
}

static int no_memory(struct srv_error *e)
{
    return srv_error_set(e, 500, "server_error", NULL, NULL, "out of memory reading the request");
}

/* The error of a failed crucible call (its message), as a 400 about PARAM, or a 500 for lack
 * of memory. */
static int from_cru(struct srv_error *e, int rc, const char *param)
{
    if (rc == CRU_ENOMEM)
        return no_memory(e);
    return srv_error_set(e, 400, "invalid_request_error", NULL, param, "%s", cru_err_msg());
}

/* A field's value, with JSON null read as absent (clients send null for "not set"). */
static json_t *field(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

static const char *path_key(char *buf, const char *path, const char *key)
{
    return cru_json_path_key(buf, PARAM_MAX, path, key);
}

/* Refuses a key of O (at PATH) that is not in ALLOWED, as OpenAI does. */
static int check_keys(const json_t *o, const char *path, const char *const *allowed,
                      struct srv_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)o, key, v)
    {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i]) {
            char shown[CRU_SHOW_CAP(64)], p[PARAM_MAX];
            cru_str_show(shown, key, 64, true);
            path_key(p, path, shown);
            return srv_error_set(e, 400, "invalid_request_error", "unknown_parameter", p,
                                 "unrecognized request argument supplied: %s", p);
        }
    }
    return 0;
}

/* The getters below read O's field KEY (O at field path PATH, "" for the body). */
static int get_bool(const json_t *o, const char *path, const char *key, bool *out,
                    struct srv_error *e)
{
    char p[PARAM_MAX];
    json_t *v = field(o, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return bad(e, path_key(p, path, key), "expected a boolean, got %s", cru_json_type_name(v));
    *out = json_is_true(v);
    return 0;
}

/* A number in [MIN, MAX] into *OUT; *GIVEN says whether it was there. */
static int get_num(const json_t *o, const char *key, double min, double max, double *out,
                   bool *given, struct srv_error *e)
{
    json_t *v = field(o, key);
    if (given)
        *given = v != NULL;
    if (!v)
        return 0;
    if (!json_is_number(v))
        return bad(e, key, "expected a number, got %s", cru_json_type_name(v));
    double d = json_number_value(v);
    if (!(d >= min && d <= max))
        return bad(e, key, "%g is not in [%g, %g]", d, min, max);
    *out = d;
    return 0;
}

static int get_int(const json_t *o, const char *key, int64_t min, int64_t max, int64_t *out,
                   bool *given, struct srv_error *e)
{
    json_t *v = field(o, key);
    if (given)
        *given = v != NULL;
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return bad(e, key, "expected an integer, got %s", cru_json_type_name(v));
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return bad(e, key, "%lld is not in [%lld, %lld]", (long long)i, (long long)min,
                   (long long)max);
    *out = i;
    return 0;
}

/* ---- messages ---- */

/* A message's content: a string, or an array of text parts joined by newlines (as vLLM joins
 * them). NULL content stays NULL. Appends the text to OUT. */
static int content_text(const json_t *v, const char *path, struct cru_buf *out, bool *given,
                        struct srv_error *e)
{
    char p[PARAM_MAX], pp[PARAM_MAX];
    *given = v != NULL;
    if (!v)
        return 0;
    if (json_is_string(v))
        return cru_buf_append(out, json_string_value(v), json_string_length(v)) < 0 ? no_memory(e)
                                                                                    : 0;
    if (!json_is_array(v))
        return bad(e, path, "expected a string or an array of text parts, got %s",
                   cru_json_type_name(v));
    if (json_array_size(v) > SRV_PARTS_MAX)
        return bad(e, path, "%zu parts (at most %d)", json_array_size(v), SRV_PARTS_MAX);
    size_t i;
    json_t *part;
    json_array_foreach(v, i, part)
    {
        static const char *const keys[] = { "type", "text", NULL };
        cru_json_path_index(p, sizeof(p), path, i);
        if (!json_is_object(part))
            return bad(e, p, "expected a text part ({\"type\": \"text\", \"text\": ...}), got %s",
                       cru_json_type_name(part));
        json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
        if (!json_is_string(type))
            return bad(e, path_key(pp, p, "type"), "expected a string");
        if (strcmp(json_string_value(type), "text") != 0) {
            char shown[CRU_SHOW_CAP(32)];
            return bad(e, path_key(pp, p, "type"), "'%s' is not supported (text parts only)",
                       cru_str_show(shown, json_string_value(type), 32, true));
        }
        int rc = check_keys(part, p, keys, e);
        if (rc < 0)
            return rc;
        if (!json_is_string(text))
            return bad(e, path_key(pp, p, "text"), "expected a string, got %s",
                       cru_json_type_name(text));
        if ((i > 0 && cru_buf_putc(out, '\n') < 0) ||
            cru_buf_append(out, json_string_value(text), json_string_length(text)) < 0)
            return no_memory(e);
    }
    return 0;
}

/* One tool call of an assistant message, as the template takes it: {"function": {"name",
 * "arguments"}}, the arguments kept as the text the client sent (OpenAI's form), so that a
 * call the server returned renders back to the tokens that were sampled. */
static int call_in(const json_t *v, const char *path, json_t *calls, struct srv_error *e)
{
    static const char *const keys[] = { "id", "type", "function", NULL };
    static const char *const fn_keys[] = { "name", "arguments", NULL };
    char p[PARAM_MAX], fp[PARAM_MAX];
    int rc;
    if (!json_is_object(v))
        return bad(e, path, "expected a tool call object, got %s", cru_json_type_name(v));
    if ((rc = check_keys(v, path, keys, e)) < 0)
        return rc;
    json_t *id = field(v, "id"), *type = field(v, "type"), *fn = json_object_get(v, "function");
    if (id && !json_is_string(id))
        return bad(e, path_key(p, path, "id"), "expected a string");
    if (type && !(json_is_string(type) && strcmp(json_string_value(type), "function") == 0))
        return bad(e, path_key(p, path, "type"), "expected \"function\"");
    path_key(fp, path, "function");
    if (!json_is_object(fn))
        return bad(e, fp, "expected an object with \"name\" and \"arguments\"");
    if ((rc = check_keys(fn, fp, fn_keys, e)) < 0)
        return rc;
    json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) > SRV_NAME_MAX)
        return bad(e, path_key(p, fp, "name"), "expected a string of 1 to %d bytes", SRV_NAME_MAX);
    if (!json_is_string(args) && !json_is_object(args))
        return bad(e, path_key(p, fp, "arguments"),
                   "expected a string of JSON or an object, got %s", cru_json_type_name(args));
    json_t *call = json_pack("{s:{s:O, s:O}}", "function", "name", name, "arguments", args);
    if (!call || json_array_append_new(calls, call) < 0)
        return no_memory(e);
    return 0;
}

static int role_of(const json_t *m, const char *path, const char **role, struct srv_error *e)
{
    static const char *const roles[] = { "system", "developer", "user", "assistant", "tool" };
    char p[PARAM_MAX];
    json_t *v = json_object_get(m, "role");
    path_key(p, path, "role");
    if (!json_is_string(v))
        return bad(e, p, "expected one of system, developer, user, assistant, tool");
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(json_string_value(v), roles[i]) == 0) {
            /* OpenAI's "developer" is the system prompt of newer models. */
            *role = i == 1 ? "system" : roles[i];
            return 0;
        }
    char shown[CRU_SHOW_CAP(32)];
    return bad(e, p, "unknown role '%s' (system, developer, user, assistant, tool)",
               cru_str_show(shown, json_string_value(v), 32, true));
}

/* One message into the conversation's JSON (OUT, an array) in the form tok_chat_from_json
 * reads: {"role", "content", "reasoning_content", "tool_calls"}. */
static int message_in(const json_t *m, const char *path, json_t *out, struct srv_error *e)
{
    static const char *const keys[] = { "role", "content", "name", NULL };
    static const char *const assistant_keys[] = { "role",         "content", "name",
                                                  "tool_calls",   "refusal", "reasoning_content",
                                                  "tool_call_id", NULL };
    static const char *const tool_keys[] = { "role", "content", "name", "tool_call_id", NULL };
    char p[PARAM_MAX];
    const char *role = NULL;
    struct cru_buf text = CRU_BUF_INIT;
    json_t *msg = NULL, *calls = NULL;
    bool given;
    int rc;
    if (!json_is_object(m))
        return bad(e, path, "expected a message object, got %s", cru_json_type_name(m));
    if ((rc = role_of(m, path, &role, e)) < 0)
        return rc;
    bool assistant = strcmp(role, "assistant") == 0, tool = strcmp(role, "tool") == 0;
    if ((rc = check_keys(m, path, assistant ? assistant_keys : tool ? tool_keys : keys, e)) < 0)
        return rc;
    json_t *name = field(m, "name"), *id = field(m, "tool_call_id");
    if (name && !json_is_string(name))
        return bad(e, path_key(p, path, "name"), "expected a string");
    if (id && !json_is_string(id))
        return bad(e, path_key(p, path, "tool_call_id"), "expected a string");
    if ((rc = content_text(field(m, "content"), path_key(p, path, "content"), &text, &given, e)) <
        0)
        goto done;
    if (!(msg = json_pack("{s:s, s:s%}", "role", role, "content", cru_buf_cstr(&text), text.len))) {
        rc = no_memory(e);
        goto done;
    }
    if (assistant) {
        json_t *refusal = field(m, "refusal"), *reasoning = field(m, "reasoning_content");
        json_t *tc = field(m, "tool_calls");
        if (refusal) {
            rc = bad(e, path_key(p, path, "refusal"), "expected null (refusals are not rendered)");
            goto done;
        }
        if (reasoning && !json_is_string(reasoning)) {
            rc = bad(e, path_key(p, path, "reasoning_content"), "expected a string");
            goto done;
        }
        if (reasoning && json_object_set(msg, "reasoning_content", reasoning) < 0) {
            rc = no_memory(e);
            goto done;
        }
        if (tc && !json_is_array(tc)) {
            rc = bad(e, path_key(p, path, "tool_calls"), "expected an array");
            goto done;
        }
        if (tc && json_array_size(tc) > SRV_CALLS_MAX) {
            rc = bad(e, path_key(p, path, "tool_calls"), "%zu tool calls (at most %d)",
                     json_array_size(tc), SRV_CALLS_MAX);
            goto done;
        }
        if (!given && json_array_size(tc) == 0) {
            rc = bad(e, path_key(p, path, "content"),
                     "an assistant message needs content or tool_calls");
            goto done;
        }
        size_t i;
        json_t *k;
        if (!(calls = json_array())) {
            rc = no_memory(e);
            goto done;
        }
        json_array_foreach(tc, i, k)
        {
            char kp[PARAM_MAX];
            cru_json_path_index(kp, sizeof(kp), path_key(p, path, "tool_calls"), i);
            if ((rc = call_in(k, kp, calls, e)) < 0)
                goto done;
        }
        if (json_array_size(calls) && json_object_set(msg, "tool_calls", calls) < 0) {
            rc = no_memory(e);
            goto done;
        }
    } else if (!given) {
        rc = bad(e, path_key(p, path, "content"), "expected a string or an array of text parts");
        goto done;
    }
    if (json_array_append(out, msg) < 0)
        rc = no_memory(e);
done:
    json_decref(calls);
    json_decref(msg);
    cru_buf_free(&text);
    return rc;
}

static int tools_in(const json_t *tools, struct srv_error *e)
{
    static const char *const keys[] = { "type", "function", NULL };
    static const char *const fn_keys[] = { "name", "description", "parameters", "strict", NULL };
    char p[PARAM_MAX], fp[PARAM_MAX], q[PARAM_MAX];
    size_t i;
    json_t *t;
    int rc;
    if (!json_is_array(tools))
        return bad(e, "tools", "expected an array, got %s", cru_json_type_name(tools));
    if (json_array_size(tools) > SRV_TOOLS_MAX)
        return bad(e, "tools", "%zu tools (at most %d)", json_array_size(tools), SRV_TOOLS_MAX);
    json_array_foreach(tools, i, t)
    {
        cru_json_path_index(p, sizeof(p), "tools", i);
        if (!json_is_object(t))
            return bad(e, p, "expected a tool object, got %s", cru_json_type_name(t));
        if ((rc = check_keys(t, p, keys, e)) < 0)
            return rc;
        json_t *type = json_object_get(t, "type"), *fn = json_object_get(t, "function");
        if (!json_is_string(type) || strcmp(json_string_value(type), "function") != 0)
            return bad(e, path_key(q, p, "type"), "expected \"function\"");
        path_key(fp, p, "function");
        if (!json_is_object(fn))
            return bad(e, fp, "expected an object");
        if ((rc = check_keys(fn, fp, fn_keys, e)) < 0)
            return rc;
        json_t *name = json_object_get(fn, "name"), *desc = field(fn, "description"),
               *params = field(fn, "parameters"), *strict = field(fn, "strict");
        if (!json_is_string(name) || json_string_length(name) == 0 ||
            json_string_length(name) > SRV_NAME_MAX)
            return bad(e, path_key(q, fp, "name"), "expected a string of 1 to %d bytes",
                       SRV_NAME_MAX);
        if (desc && !json_is_string(desc))
            return bad(e, path_key(q, fp, "description"), "expected a string");
        if (params && !json_is_object(params))
            return bad(e, path_key(q, fp, "parameters"), "expected a JSON schema object");
        if (strict && !json_is_boolean(strict))
            return bad(e, path_key(q, fp, "strict"), "expected a boolean");
    }
    return 0;
}

static int tool_choice_in(const json_t *v, struct srv_request *r, struct srv_error *e)
{
    r->tool_choice = SRV_TOOL_CHOICE_AUTO;
    if (!v)
        return 0;
    if (json_is_string(v) && strcmp(json_string_value(v), "auto") == 0)
        return 0;
    if (json_is_string(v) && strcmp(json_string_value(v), "none") == 0) {
        r->tool_choice = SRV_TOOL_CHOICE_NONE;
        return 0;
    }
    if ((json_is_string(v) && strcmp(json_string_value(v), "required") == 0) || json_is_object(v))
        return unsupported(e, "tool_choice",
                           "forcing a tool call (\"required\" or a named function)");
    return bad(e, "tool_choice", "expected \"auto\", \"none\", \"required\" or an object");
}

/* messages, tools, tool_choice and chat_template_kwargs into R->chat. */
static int chat_in(const json_t *body, struct srv_request *r, struct srv_error *e)
{
    json_t *msgs = json_object_get(body, "messages"), *tools = field(body, "tools");
    json_t *kw = field(body, "chat_template_kwargs"), *conv = NULL, *out = NULL;
    bool thinking = true;
    int rc;
    if (!msgs)
        return bad(e, "messages", "required");
    if (!json_is_array(msgs))
        return bad(e, "messages", "expected an array, got %s", cru_json_type_name(msgs));
    if (json_array_size(msgs) == 0)
        return bad(e, "messages", "at least one message is needed");
    if (json_array_size(msgs) > SRV_MESSAGES_MAX)
        return bad(e, "messages", "%zu messages (at most %d)", json_array_size(msgs),
                   SRV_MESSAGES_MAX);
    if (tools && (rc = tools_in(tools, e)) < 0)
        return rc;
    if ((rc = tool_choice_in(field(body, "tool_choice"), r, e)) < 0)
        return rc;
    if (kw) {
        static const char *const keys[] = { "enable_thinking", NULL };
        if (!json_is_object(kw))
            return bad(e, "chat_template_kwargs", "expected an object");
        if ((rc = check_keys(kw, "chat_template_kwargs", keys, e)) < 0 ||
            (rc = get_bool(kw, "chat_template_kwargs", "enable_thinking", &thinking, e)) < 0)
            return rc;
    }
    if (!(out = json_array()))
        return no_memory(e);
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        char p[PARAM_MAX];
        cru_json_path_index(p, sizeof(p), "messages", i);
        if ((rc = message_in(m, p, out, e)) < 0)
            goto done;
    }
    conv = json_pack("{s:o, s:b}", "messages", out, "enable_thinking", thinking);
    out = NULL;
    if (!conv || (tools && json_array_size(tools) && json_object_set(conv, "tools", tools) < 0)) {
        rc = no_memory(e);
        goto done;
    }
    r->has_tools = tools && json_array_size(tools) > 0;
    if ((rc = tok_chat_from_json(&r->chat, conv)) < 0)
        rc = from_cru(e, rc, "messages");
done:
    json_decref(out);
    json_decref(conv);
    return rc;
}

/* ---- the completions prompt ---- */

static int ids_in(const json_t *a, const char *path, struct srv_request *r, struct srv_error *e)
{
    size_t n = json_array_size(a), i;
    json_t *v;
    if (n == 0)
        return bad(e, path, "an empty list of token ids");
    if (n > MDL_MAX_PROMPT)
        return bad(e, path, "%zu token ids (at most %u)", n, MDL_MAX_PROMPT);
    if (!(r->prompt_ids = malloc(n * sizeof(int32_t))))
        return no_memory(e);
    json_array_foreach(a, i, v)
    {
        char p[PARAM_MAX];
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= MDL_MAX_VOCAB)
            return bad(e, cru_json_path_index(p, sizeof(p), path, i),
                       "expected a token id (an integer from 0 to %d)", MDL_MAX_VOCAB - 1);
        r->prompt_ids[i] = (int32_t)json_integer_value(v);
    }
    r->n_prompt_ids = n;
    return 0;
}

/* A string, a list of token ids, or a list of one of either (the API's batch of prompts, of
 * which crucible takes one per request). */
static int prompt_in(const json_t *body, struct srv_request *r, struct srv_error *e)
{
    json_t *p = json_object_get(body, "prompt");
    if (!p || json_is_null(p))
        return bad(e, "prompt", "required");
    if (json_is_array(p) && json_array_size(p) > 0 && !json_is_integer(json_array_get(p, 0))) {
        if (json_array_size(p) > 1)
            return unsupported(e, "prompt", "a batch of several prompts (send one per request)");
        json_t *one = json_array_get(p, 0);
        if (json_is_array(one))
            return ids_in(one, "prompt[0]", r, e);
        if (!json_is_string(one))
            return bad(e, "prompt[0]", "expected a string or a list of token ids");
        p = one;
    }
    if (json_is_array(p))
        return ids_in(p, "prompt", r, e);
    if (!json_is_string(p))
        return bad(e, "prompt", "expected a string or a list of token ids, got %s",
                   cru_json_type_name(p));
    if (json_string_length(p) == 0)
        return bad(e, "prompt", "an empty prompt");
    if (cru_str_ndup(&r->prompt, json_string_value(p), json_string_length(p)) < 0)
        return no_memory(e);
    r->prompt_len = json_string_length(p);
    return 0;
}

/* ---- sampling and output options ---- */

static int stop_in(const json_t *body, struct srv_request *r, struct srv_error *e)
{
    json_t *v = field(body, "stop");
    if (!v)
        return 0;
    size_t n = json_is_string(v) ? 1 : json_array_size(v);
    if (!json_is_string(v) && !json_is_array(v))
        return bad(e, "stop", "expected a string or an array of strings");
    if (n > SRV_STOP_MAX)
        return bad(e, "stop", "%zu stop strings (at most %d)", n, SRV_STOP_MAX);
    if (n && !(r->stop = calloc(n, sizeof(char *))))
        return no_memory(e);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_string(v) ? v : json_array_get(v, i);
        char p[PARAM_MAX];
        if (json_is_string(v))
            snprintf(p, sizeof(p), "stop");
        else
            cru_json_path_index(p, sizeof(p), "stop", i);
        if (!json_is_string(s) || json_string_length(s) == 0 ||
            json_string_length(s) > SRV_STOP_BYTES_MAX)
            return bad(e, p, "expected a string of 1 to %d bytes", SRV_STOP_BYTES_MAX);
        if (cru_str_ndup(&r->stop[i], json_string_value(s), json_string_length(s)) < 0)
            return no_memory(e);
        r->n_stop = i + 1;
        if (json_string_length(s) > r->stop_max_len)
            r->stop_max_len = json_string_length(s);
    }
    return 0;
}

/* Fields that only one value of can be honoured. */
static int fixed_in(const json_t *body, struct srv_error *e)
{
    double d;
    bool given;
    int rc;
    static const char *const penalties[] = { "frequency_penalty", "presence_penalty" };
    for (size_t i = 0; i < 2; i++) {
        if ((rc = get_num(body, penalties[i], -2, 2, &d, &given, e)) < 0)
            return rc;
        if (given && d != 0)
            return unsupported(e, penalties[i], "a non-zero penalty");
    }
    json_t *bias = field(body, "logit_bias"), *fmt = field(body, "response_format");
    if (bias && !json_is_object(bias))
        return bad(e, "logit_bias", "expected an object");
    if (bias && json_object_size(bias))
        return unsupported(e, "logit_bias", "a logit bias");
    if (fmt) {
        json_t *type = json_is_object(fmt) ? json_object_get(fmt, "type") : NULL;
        if (!json_is_string(type))
            return bad(e, "response_format", "expected an object with a \"type\"");
        if (strcmp(json_string_value(type), "text") != 0)
            return unsupported(e, "response_format", "a response format other than text");
    }
    json_t *user = field(body, "user");
    if (user && !json_is_string(user))
        return bad(e, "user", "expected a string");
    return 0;
}

static int sampling_in(const json_t *body, struct srv_request *r, struct srv_error *e)
{
    double d;
    int64_t i;
    bool given;
    int rc;
    if ((rc = get_num(body, "temperature", 0, 2, &d, &given, e)) < 0)
        return rc;
    /* The sampler takes 0 (greedy) or 1e-4 and up; a smaller positive value is as sharp. */
    if (given)
        r->temperature = d > 0 && d < 1e-4 ? 1e-4f : (float)d;
    if ((rc = get_num(body, "top_p", 0, 1, &d, &given, e)) < 0)
        return rc;
    if (given && d == 0)
        return bad(e, "top_p", "0 keeps no token: give a value in (0, 1]");
    if (given)
        r->top_p = (float)d;
    if ((rc = get_int(body, "top_k", -1, MDL_MAX_VOCAB, &i, &given, e)) < 0)
        return rc;
    if (given)
        r->top_k = i < 0 ? 0 : (uint32_t)i; /* vLLM's -1: off */
    int64_t mt = 0, mct = 0;
    bool has_mt, has_mct;
    if ((rc = get_int(body, "max_tokens", 1, MDL_MAX_TOKENS, &mt, &has_mt, e)) < 0)
        return rc;
    if (r->endpoint == SRV_CHAT &&
        (rc = get_int(body, "max_completion_tokens", 1, MDL_MAX_TOKENS, &mct, &has_mct, e)) < 0)
        return rc;
    if (r->endpoint == SRV_CHAT && has_mct)
        r->max_tokens = (uint32_t)mct; /* the newer name wins */
    else if (has_mt)
        r->max_tokens = (uint32_t)mt;
    if ((rc = get_int(body, "n", 1, SRV_N_MAX, &i, &given, e)) < 0)
        return rc;
    if (given)
        r->n = (uint32_t)i;
    if ((rc = get_int(body, "seed", INT64_MIN, INT64_MAX, &i, &r->has_seed, e)) < 0)
        return rc;
    r->seed = (uint64_t)i;
    return stop_in(body, r, e);
}

static int output_in(const json_t *body, struct srv_request *r, struct srv_error *e)
{
    int64_t i;
    bool given;
    int rc;
    if (r->endpoint == SRV_CHAT) {
        if ((rc = get_bool(body, "", "logprobs", &r->logprobs, e)) < 0 ||
            (rc = get_int(body, "top_logprobs", 0, SRV_TOP_LOGPROBS_MAX, &i, &given, e)) < 0)
            return rc;
        if (given && !r->logprobs)
            return bad(e, "top_logprobs", "needs \"logprobs\": true");
        r->top_logprobs = given ? (uint32_t)i : 0;
    } else {
        /* The completions API's logprobs is the number of alternatives to list. */
        if ((rc = get_int(body, "logprobs", 0, SRV_TOP_LOGPROBS_MAX, &i, &given, e)) < 0)
            return rc;
        r->logprobs = given;
        r->top_logprobs = given ? (uint32_t)i : 0;
        bool echo = false;
        if ((rc = get_bool(body, "", "echo", &echo, e)) < 0)
            return rc;
        if (echo)
            return unsupported(e, "echo", "echoing the prompt");
        if (field(body, "suffix"))
            return unsupported(e, "suffix", "a suffix");
        if ((rc = get_int(body, "best_of", 1, SRV_N_MAX, &i, &given, e)) < 0)
            return rc;
        if (given && i != 1)
            return unsupported(e, "best_of", "best_of other than 1");
    }
    if ((rc = get_bool(body, "", "stream", &r->stream, e)) < 0 ||
        (rc = get_bool(body, "", "return_token_ids", &r->return_token_ids, e)) < 0)
        return rc;
    json_t *so = field(body, "stream_options");
    if (so) {
        static const char *const keys[] = { "include_usage", NULL };
        if (!json_is_object(so))
            return bad(e, "stream_options", "expected an object");
        if ((rc = check_keys(so, "stream_options", keys, e)) < 0)
            return rc;
        if ((rc = get_bool(so, "stream_options", "include_usage", &r->include_usage, e)) < 0)
            return rc;
        if (!r->stream)
            return bad(e, "stream_options", "only allowed when \"stream\" is true");
    }
    if (r->stream && r->logprobs)
        return unsupported(e, "logprobs", "logprobs with \"stream\": true");
    return 0;
}

static const char *const chat_keys[] = {
    "model",
    "messages",
    "tools",
    "tool_choice",
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "n",
    "seed",
    "stop",
    "logprobs",
    "top_logprobs",
    "stream",
    "stream_options",
    "return_token_ids",
    "user",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "response_format",
    "parallel_tool_calls",
    "chat_template_kwargs",
    "max_completion_tokens",
    NULL,
};

static const char *const completion_keys[] = {
    "model",
    "prompt",
    "suffix",
    "echo",
    "best_of",
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "n",
    "seed",
    "stop",
    "logprobs",
    "stream",
    "stream_options",
    "return_token_ids",
    "user",
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    NULL,
};

static int body_in(const json_t *body, struct srv_request *r, struct srv_error *e)
{
    int rc;
    bool parallel = true;
    if (!json_is_object(body))
        return bad(e, NULL, "the body must be a JSON object, not %s", cru_json_type_name(body));
    if ((rc = check_keys(body, "", r->endpoint == SRV_CHAT ? chat_keys : completion_keys, e)) < 0)
        return rc;
    json_t *model = json_object_get(body, "model");
    if (!json_is_string(model) || json_string_length(model) == 0 ||
        json_string_length(model) > SRV_NAME_MAX)
        return bad(e, "model", "expected the model's name (a string of 1 to %d bytes)",
                   SRV_NAME_MAX);
    if (cru_str_dup(&r->model, json_string_value(model)) < 0)
        return no_memory(e);
    /* Accepted for the clients that send it; each call the model writes is returned. */
    if (r->endpoint == SRV_CHAT &&
        (rc = get_bool(body, "", "parallel_tool_calls", &parallel, e)) < 0)
        return rc;
    if ((rc = fixed_in(body, e)) < 0 || (rc = sampling_in(body, r, e)) < 0 ||
        (rc = output_in(body, r, e)) < 0)
        return rc;
    return r->endpoint == SRV_CHAT ? chat_in(body, r, e) : prompt_in(body, r, e);
}

int srv_request_parse(struct srv_request *out, enum srv_endpoint endpoint, const char *body,
                      size_t len, struct srv_error *e)
{
    struct cru_json_counts counts;
    json_t *v = NULL;
    int rc;
    *out = (struct srv_request)SRV_REQUEST_INIT;
    out->endpoint = endpoint;
    if (len > SRV_BODY_LIMIT_MAX)
        return srv_error_set(e, 413, "invalid_request_error", "request_too_large", NULL,
                             "a body of %zu bytes is over the limit of %zu", len,
                             SRV_BODY_LIMIT_MAX);
    /* jansson builds the whole tree before anything can be checked: bound it first. */
    cru_json_count(body, len, &counts);
    if (counts.values > SRV_JSON_VALUES_MAX)
        return bad(e, NULL, "the body holds %zu JSON values (at most %zu)", counts.values,
                   SRV_JSON_VALUES_MAX);
    if ((rc = cru_json_parse(&v, body, len, "body")) < 0) {
        if (rc == CRU_ENOMEM)
            return no_memory(e);
        return bad(e, NULL, "the body is not valid JSON: %s", cru_err_msg());
    }
    if ((rc = cru_sha256(body, len, out->digest)) < 0)
        rc = srv_error_set(e, 500, "server_error", NULL, NULL, "%s", cru_err_msg());
    if (rc == 0)
        rc = body_in(v, out, e);
    json_decref(v);
    if (rc < 0)
        srv_request_free(out);
    return rc;
}

void srv_request_free(struct srv_request *r)
{
    if (!r)
        return;
    free(r->model);
    tok_chat_free(&r->chat);
    free(r->prompt);
    free(r->prompt_ids);
    for (size_t i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    enum srv_endpoint ep = r->endpoint;
    *r = (struct srv_request)SRV_REQUEST_INIT;
    r->endpoint = ep;
}
