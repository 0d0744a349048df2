/* chat: the Qwen3 chat template in C, incremental rendering for token-exact contexts, and the
 * strict parse of a model's reply into reasoning, content and tool calls.
 *
 * render_qwen3() follows the Jinja template of Qwen3's tokenizer_config.json statement by
 * statement (the comments quote it), including its quirks: consecutive tool results share one
 * user turn; an assistant message after the last real user query shows its reasoning in a
 * <think> block, and the last message always does; earlier ones lose it. tojson is Python's
 * json.dumps (", " and ": ", non-ASCII kept), which the Jinja renderers copy. Text is derived
 * from ids here, never the other way round: tok_chat_append() decodes the context and compares
 * text, and only the new part of the rendering is encoded. This module does not sample, run
 * tools or record anything; it tells its caller what to append or that an edit is needed.
 */
#include "model/chat.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/fs.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/str.h"

/* The SHA-256 of Qwen3's chat_template (as in tokenizer_config.json). */
static const char qwen3_template_sha256[] =
    "87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5";

const char *tok_role_name(enum tok_role role)
{
    switch (role) {
    case TOK_ROLE_SYSTEM:
        return "system";
    case TOK_ROLE_USER:
        return "user";
    case TOK_ROLE_ASSISTANT:
        return "assistant";
    case TOK_ROLE_TOOL:
        return "tool";
    }
    return "?";
}

/* ---- conversations ---- */

static void call_free(struct tok_call *k)
{
    free(k->name);
    free(k->arguments_text);
    json_decref(k->arguments);
}

void tok_chat_free(struct tok_chat *c)
{
    for (size_t i = 0; i < c->n_msgs; i++) {
        struct tok_msg *m = &c->msgs[i];
        for (size_t k = 0; k < m->n_calls; k++)
            call_free(&m->calls[k]);
        free(m->calls);
        free(m->content);
        free(m->reasoning);
    }
    free(c->msgs);
    json_decref(c->tools);
    *c = (struct tok_chat)TOK_CHAT_INIT;
}

/* Copies S as valid UTF-8: text from outside (a tool's output) may hold any bytes, and the
 * tokenizer would read invalid ones as U+FFFD anyway; stored so, renderings stay valid text
 * whose byte positions the tokenizer agrees with. */
static int dup_text(char **out, const char *s)
{
    struct cru_buf b = CRU_BUF_INIT;
    int rc = tok_utf8_lossy(s, strlen(s), &b);
    if (rc == 0 && !(*out = cru_buf_detach(&b, NULL)))
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
    cru_buf_free(&b);
    return rc;
}

int tok_chat_add(struct tok_chat *c, enum tok_role role, const char *content, const char *reasoning)
{
    if (c->n_msgs >= TOK_CHAT_MSGS_MAX)
        return cru_err_set(CRU_ELIMIT, "more than %d messages", TOK_CHAT_MSGS_MAX);
    if (c->n_msgs == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct tok_msg *p = realloc(c->msgs, cap * sizeof(*p));
        if (!p)
            return cru_err_set(CRU_ENOMEM, "out of memory for %zu messages", cap);
        c->msgs = p;
        c->cap = cap;
    }
    struct tok_msg m = { .role = role };
    int rc = dup_text(&m.content, content ? content : "");
    if (rc == 0 && reasoning)
        rc = dup_text(&m.reasoning, reasoning);
    if (rc < 0) {
        free(m.content);
        return rc;
    }
    c->msgs[c->n_msgs++] = m;
    return 0;
}

static int add_call(struct tok_msg *m, const char *name, json_t *arguments, const char *text)
{
    if (m->n_calls >= TOK_CHAT_CALLS_MAX)
        return cru_err_set(CRU_ELIMIT, "more than %d tool calls in one message",
                           TOK_CHAT_CALLS_MAX);
    struct tok_call *p = realloc(m->calls, (m->n_calls + 1) * sizeof(*p));
    if (!p)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    m->calls = p;
    struct tok_call k = { 0 };
    int rc = dup_text(&k.name, name);
    if (rc == 0 && text)
        rc = dup_text(&k.arguments_text, text);
    if (rc < 0) {
        call_free(&k);
        return rc;
    }
    k.arguments = json_incref(arguments);
    m->calls[m->n_calls++] = k;
    return 0;
}

int tok_chat_add_call(struct tok_chat *c, const char *name, json_t *arguments)
{
    if (c->n_msgs == 0 || c->msgs[c->n_msgs - 1].role != TOK_ROLE_ASSISTANT)
        return cru_err_set(CRU_EINVAL, "a tool call belongs to an assistant message");
    if (!json_is_object(arguments))
        return cru_err_set(CRU_EINVAL, "tool call %s: the arguments must be an object", name);
    return add_call(&c->msgs[c->n_msgs - 1], name, arguments, NULL);
}

int tok_chat_set_tools(struct tok_chat *c, json_t *tools)
{
    if (!json_is_array(tools))
        return cru_err_set(CRU_EINVAL, "tools: expected an array");
    if (json_array_size(tools) > TOK_CHAT_TOOLS_MAX)
        return cru_err_set(CRU_ELIMIT, "%zu tools declared (at most %d)", json_array_size(tools),
                           TOK_CHAT_TOOLS_MAX);
    json_decref(c->tools);
    c->tools = json_incref(tools);
    return 0;
}

static int role_parse(const char *s, enum tok_role *out)
{
    static const enum tok_role all[] = { TOK_ROLE_SYSTEM, TOK_ROLE_USER, TOK_ROLE_ASSISTANT,
                                         TOK_ROLE_TOOL };
    for (size_t i = 0; i < 4; i++)
        if (strcmp(s, tok_role_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return -1;
}

static int call_from_json(struct tok_msg *m, const json_t *v, const char *path)
{
    json_t *fn = json_object_get(v, "function");
    const char *name = NULL;
    char p[160];
    if (!json_is_object(v))
        return cru_err_set(CRU_EINVAL, "%s: expected an object", path);
    if (json_is_object(fn))
        v = fn;
    snprintf(p, sizeof(p), "%s%s", path, fn ? ".function" : "");
    int rc = cru_json_get_str(v, p, "name", true, &name);
    if (rc < 0)
        return rc;
    json_t *args = json_object_get(v, "arguments");
    if (json_is_string(args))
        return add_call(m, name, NULL, json_string_value(args));
    if (!json_is_object(args))
        return cru_err_set(CRU_EINVAL, "%s.arguments: expected an object or a string", p);
    return add_call(m, name, args, NULL);
}

int tok_chat_from_json(struct tok_chat *c, const json_t *v)
{
    json_t *msgs = NULL, *tools = NULL, *m;
    bool thinking = true;
    size_t i;
    int rc;
    if (!json_is_object(v))
        return cru_err_set(CRU_EINVAL, "a conversation: expected an object");
    if ((rc = cru_json_get_array(v, "", "messages", true, &msgs)) < 0 ||
        (rc = cru_json_get_array(v, "", "tools", false, &tools)) < 0 ||
        (rc = cru_json_get_bool(v, "", "enable_thinking", false, &thinking)) < 0)
        return rc;
    c->thinking_off = !thinking;
    if (tools && (rc = tok_chat_set_tools(c, tools)) < 0)
        return rc;
    json_array_foreach(msgs, i, m)
    {
        char path[64], p2[128];
        const char *role = NULL, *content = NULL, *reasoning = NULL;
        json_t *calls = NULL, *k;
        enum tok_role r;
        size_t j;
        snprintf(path, sizeof(path), "messages[%zu]", i);
        if (!json_is_object(m))
            return cru_err_set(CRU_EINVAL, "%s: expected an object", path);
        if ((rc = cru_json_get_str(m, path, "role", true, &role)) < 0)
            return rc;
        if (role_parse(role, &r) < 0)
            return cru_err_set(CRU_EINVAL, "%s.role: unknown role '%s'", path, role);
        if (!json_is_null(json_object_get(m, "content")) &&
            (rc = cru_json_get_str(m, path, "content", false, &content)) < 0)
            return rc;
        if (!json_is_null(json_object_get(m, "reasoning_content")) &&
            (rc = cru_json_get_str(m, path, "reasoning_content", false, &reasoning)) < 0)
            return rc;
        if ((rc = cru_json_get_array(m, path, "tool_calls", false, &calls)) < 0 ||
            (rc = tok_chat_add(c, r, content, reasoning)) < 0)
            return rc;
        json_array_foreach(calls, j, k)
        {
            snprintf(p2, sizeof(p2), "%s.tool_calls[%zu]", path, j);
            if ((rc = call_from_json(&c->msgs[c->n_msgs - 1], k, p2)) < 0)
                return rc;
        }
    }
    return 0;
}

/* ---- tojson: Python's json.dumps(x, ensure_ascii=False) ---- */

static int json_text(struct cru_buf *b, const char *s, size_t n)
{
    int rc = cru_buf_putc(b, '"');
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            rc = cru_buf_puts(b, "\\\"");
            break;
        case '\\':
            rc = cru_buf_puts(b, "\\\\");
            break;
        case '\n':
            rc = cru_buf_puts(b, "\\n");
            break;
        case '\r':
            rc = cru_buf_puts(b, "\\r");
            break;
        case '\t':
            rc = cru_buf_puts(b, "\\t");
            break;
        case '\b':
            rc = cru_buf_puts(b, "\\b");
            break;
        case '\f':
            rc = cru_buf_puts(b, "\\f");
            break;
        default:
            rc = c < 0x20 ? cru_buf_printf(b, "\\u%04x", c) : cru_buf_putc(b, (char)c);
        }
    }
    return rc < 0 ? rc : cru_buf_putc(b, '"');
}

/* A real as Python's repr: the shortest text that reads back the same, with ".0" when it
 * would look like an integer. */
static int json_real_text(struct cru_buf *b, double d)
{
    char s[40];
    if (!isfinite(d))
        return cru_buf_puts(b, isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
    for (int p = 1; p <= 17; p++) {
        snprintf(s, sizeof(s), "%.*g", p, d);
        if (strtod(s, NULL) == d)
            break;
    }
    int rc = cru_buf_puts(b, s);
    if (rc == 0 && !strpbrk(s, ".eEn"))
        rc = cru_buf_puts(b, ".0");
    return rc;
}

static int tojson(struct cru_buf *b, const json_t *v, unsigned depth)
{
    int rc = 0;
    if (depth > 64)
        return cru_err_set(CRU_ELIMIT, "a JSON value nested deeper than 64 levels");
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *x;
        bool first = true;
        rc = cru_buf_putc(b, '{');
        json_object_foreach((json_t *)(uintptr_t)v, key, x)
        {
            if (rc == 0 && !first)
                rc = cru_buf_puts(b, ", ");
            first = false;
            if (rc == 0)
                rc = json_text(b, key, strlen(key));
            if (rc == 0)
                rc = cru_buf_puts(b, ": ");
            if (rc == 0)
                rc = tojson(b, x, depth + 1);
        }
        return rc < 0 ? rc : cru_buf_putc(b, '}');
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        rc = cru_buf_putc(b, '[');
        json_array_foreach(v, i, x)
        {
            if (rc == 0 && i)
                rc = cru_buf_puts(b, ", ");
            if (rc == 0)
                rc = tojson(b, x, depth + 1);
        }
        return rc < 0 ? rc : cru_buf_putc(b, ']');
    }
    case JSON_STRING:
        return json_text(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return cru_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        return json_real_text(b, json_real_value(v));
    case JSON_TRUE:
        return cru_buf_puts(b, "true");
    case JSON_FALSE:
        return cru_buf_puts(b, "false");
    case JSON_NULL:
        return cru_buf_puts(b, "null");
    }
    return cru_err_set(CRU_EINTERNAL, "an unknown JSON type");
}

/* ---- the Qwen3 template ---- */

struct str {
    const char *s;
    size_t n;
};

static struct str str_of(const char *s)
{
    return (struct str){ s, strlen(s) };
}

static bool str_starts(struct str s, const char *p)
{
    size_t n = strlen(p);
    return s.n >= n && memcmp(s.s, p, n) == 0;
}

static bool str_ends(struct str s, const char *p)
{
    size_t n = strlen(p);
    return s.n >= n && memcmp(s.s + s.n - n, p, n) == 0;
}

static const char *str_find(struct str s, const char *p, bool last)
{
    size_t n = strlen(p);
    const char *found = NULL;
    for (const char *q = s.s; s.n >= n && q <= s.s + s.n - n; q++) {
        q = memmem(q, (size_t)(s.s + s.n - q), p, n);
        if (!q)
            break;
        found = q;
        if (!last)
            break;
    }
    return found;
}

static struct str lstrip_nl(struct str s)
{
    while (s.n && s.s[0] == '\n')
        s.s++, s.n--;
    return s;
}

static struct str rstrip_nl(struct str s)
{
    while (s.n && s.s[s.n - 1] == '\n')
        s.n--;
    return s;
}

static int put(struct cru_buf *b, struct str s)
{
    if (b->len + s.n > TOK_CHAT_TEXT_MAX)
        return cru_err_set(CRU_ELIMIT, "the rendering exceeds %zu bytes", TOK_CHAT_TEXT_MAX);
    return cru_buf_append(b, s.s, s.n);
}

static int puts_(struct cru_buf *b, const char *s)
{
    return put(b, str_of(s));
}

static const char tools_head[] =
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are "
    "provided with function signatures within <tools></tools> XML tags:\n<tools>";
static const char tools_tail[] =
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
    "\"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n";

/* {%- if tools %} ... {%- else %} ... {%- endif %} */
static int render_system(const struct tok_chat *c, size_t n, struct cru_buf *b)
{
    const struct tok_msg *m0 = &c->msgs[0];
    int rc = 0;
    if (c->tools && json_array_size(c->tools) > 0) {
        size_t i;
        json_t *tool;
        rc = puts_(b, "<|im_start|>system\n");
        if (rc == 0 && m0->role == TOK_ROLE_SYSTEM && (rc = puts_(b, m0->content)) == 0)
            rc = puts_(b, "\n\n");
        if (rc == 0)
            rc = puts_(b, tools_head);
        json_array_foreach(c->tools, i, tool)
        {
            if (rc == 0)
                rc = puts_(b, "\n");
            if (rc == 0)
                rc = tojson(b, tool, 0);
        }
        return rc < 0 ? rc : puts_(b, tools_tail);
    }
    (void)n;
    if (m0->role == TOK_ROLE_SYSTEM && (rc = puts_(b, "<|im_start|>system\n")) == 0 &&
        (rc = puts_(b, m0->content)) == 0)
        rc = puts_(b, "<|im_end|>\n");
    return rc;
}

/* ns.last_query_index: the last user message that is not a wrapped tool response. */
static size_t last_query_index(const struct tok_chat *c, size_t n)
{
    for (size_t k = n; k-- > 0;) {
        const struct tok_msg *m = &c->msgs[k];
        struct str s = str_of(m->content);
        if (m->role == TOK_ROLE_USER &&
            !(str_starts(s, "<tool_response>") && str_ends(s, "</tool_response>")))
            return k;
    }
    return n - 1;
}

static int render_calls(const struct tok_msg *m, struct str content, struct cru_buf *b)
{
    int rc = 0;
    for (size_t k = 0; k < m->n_calls && rc == 0; k++) {
        const struct tok_call *call = &m->calls[k];
        /* {%- if (loop.first and content) or (not loop.first) %} */
        if ((k == 0 && content.n) || k > 0)
            rc = puts_(b, "\n");
        if (rc == 0)
            rc = puts_(b, "<tool_call>\n{\"name\": \"");
        if (rc == 0)
            rc = puts_(b, call->name);
        if (rc == 0)
            rc = puts_(b, "\", \"arguments\": ");
        if (rc == 0)
            rc = call->arguments_text ? puts_(b, call->arguments_text)
                                      : tojson(b, call->arguments, 0);
        if (rc == 0)
            rc = puts_(b, "}\n</tool_call>");
    }
    return rc;
}

static int render_assistant(const struct tok_msg *m, bool after_query, bool last, struct cru_buf *b)
{
    struct str content = str_of(m->content), reasoning = { "", 0 };
    int rc;
    if (m->reasoning) {
        reasoning = str_of(m->reasoning);
    } else if (str_find(content, "</think>", false)) {
        /* content.split('</think>')[-1].lstrip('\n') and
         * content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') */
        const char *first = str_find(content, "</think>", false);
        const char *last_end = str_find(content, "</think>", true) + strlen("</think>");
        struct str before = rstrip_nl((struct str){ content.s, (size_t)(first - content.s) });
        const char *open = str_find(before, "<think>", true);
        if (open)
            before = (struct str){ open + 7, (size_t)(before.s + before.n - open - 7) };
        reasoning = lstrip_nl(before);
        content = lstrip_nl((struct str){ last_end, (size_t)(content.s + content.n - last_end) });
    }
    if ((rc = puts_(b, "<|im_start|>assistant\n")) < 0)
        return rc;
    if (after_query && (last || reasoning.n)) {
        struct str r = lstrip_nl(rstrip_nl(reasoning));
        if ((rc = puts_(b, "<think>\n")) < 0 || (rc = put(b, r)) < 0 ||
            (rc = puts_(b, "\n</think>\n\n")) < 0 || (rc = put(b, lstrip_nl(content))) < 0)
            return rc;
    } else if ((rc = put(b, content)) < 0) {
        return rc;
    }
    if ((rc = render_calls(m, content, b)) < 0)
        return rc;
    return puts_(b, "<|im_end|>\n");
}

int tok_chat_render(const struct tok_chat *c, size_t n, bool gen, struct cru_buf *out,
                    struct tok_span *spans)
{
    int rc;
    if (n == 0 || n > c->n_msgs)
        return cru_err_set(CRU_EINVAL, "rendering %zu of %zu messages: at least one is needed", n,
                           c->n_msgs);
    size_t base = out->len;
    if ((rc = render_system(c, n, out)) < 0)
        goto fail;
    size_t lqi = last_query_index(c, n);
    for (size_t i = 0; i < n; i++) {
        const struct tok_msg *m = &c->msgs[i];
        size_t start = out->len;
        if (m->role == TOK_ROLE_USER || (m->role == TOK_ROLE_SYSTEM && i > 0)) {
            if ((rc = puts_(out, "<|im_start|>")) < 0 ||
                (rc = puts_(out, tok_role_name(m->role))) < 0 || (rc = puts_(out, "\n")) < 0 ||
                (rc = puts_(out, m->content)) < 0 || (rc = puts_(out, "<|im_end|>\n")) < 0)
                goto fail;
        } else if (m->role == TOK_ROLE_ASSISTANT) {
            if ((rc = render_assistant(m, i > lqi, i == n - 1, out)) < 0)
                goto fail;
        } else if (m->role == TOK_ROLE_TOOL) {
            if ((i == 0 || c->msgs[i - 1].role != TOK_ROLE_TOOL) &&
                (rc = puts_(out, "<|im_start|>user")) < 0)
                goto fail;
            if ((rc = puts_(out, "\n<tool_response>\n")) < 0 || (rc = puts_(out, m->content)) < 0 ||
                (rc = puts_(out, "\n</tool_response>")) < 0)
                goto fail;
            if ((i == n - 1 || c->msgs[i + 1].role != TOK_ROLE_TOOL) &&
                (rc = puts_(out, "<|im_end|>\n")) < 0)
                goto fail;
        }
        if (spans)
            spans[i] = (struct tok_span){ start - base, out->len - base };
    }
    if (gen && (rc = puts_(out, "<|im_start|>assistant\n")) == 0 && c->thinking_off)
        rc = puts_(out, "<think>\n\n</think>\n\n");
    if (rc == 0)
        return 0;
fail:
    out->len = base;
    if (out->data)
        out->data[base] = '\0';
    return rc;
}

int tok_chat_encode(const struct tok *t, const struct tok_chat *c, size_t n, bool gen,
                    struct tok_ids *out)
{
    struct cru_buf b = CRU_BUF_INIT;
    int rc = tok_chat_render(c, n, gen, &b, NULL);
    if (rc == 0)
        rc = tok_encode(t, cru_buf_cstr(&b), b.len, out);
    cru_buf_free(&b);
    return rc;
}

/* ---- incremental rendering ---- */

void tok_append_free(struct tok_append *a)
{
    tok_ids_free(&a->ids);
    memset(a, 0, sizeof(*a));
}

static bool is_edge(const size_t *edges, size_t n_edges, size_t pos, size_t len)
{
    if (pos == 0 || pos == len)
        return true;
    size_t lo = 0, hi = n_edges;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (edges[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n_edges && edges[lo] == pos;
}

/* Says why the context's text and the rendering part at byte AT. */
static void explain(const struct tok_chat *c, const struct tok_span *spans, const char *ctx,
                    size_t ctx_len, size_t at, struct tok_append *out)
{
    size_t i = 0;
    while (i + 1 < c->n_msgs && spans[i].end <= at)
        i++;
    const struct tok_msg *m = &c->msgs[i];
    out->edit_msg = i;
    const char *head = "<|im_start|>assistant\n<think>";
    size_t hn = strlen(head);
    if (m->role == TOK_ROLE_ASSISTANT && spans[i].start + hn <= ctx_len &&
        memcmp(ctx + spans[i].start, head, hn) == 0)
        snprintf(out->reason, sizeof(out->reason),
                 "message %zu (assistant): the template no longer shows its <think> block "
                 "(Qwen3 keeps reasoning only after the last user query, and an empty one only "
                 "on the last message)",
                 i);
    else if (m->role == TOK_ROLE_TOOL && i > 0 && c->msgs[i - 1].role == TOK_ROLE_TOOL)
        snprintf(out->reason, sizeof(out->reason),
                 "message %zu (tool): consecutive tool results share one user turn, so the "
                 "earlier one's <|im_end|> goes; append tool results together",
                 i);
    else
        snprintf(out->reason, sizeof(out->reason),
                 "message %zu (%s): the context's text differs from the template's rendering at "
                 "byte %zu",
                 i, tok_role_name(m->role), at);
}

int tok_chat_append(const struct tok *t, const struct tok_chat *c, const int32_t *ctx, size_t n_ctx,
                    bool gen, struct tok_append *out)
{
    struct cru_buf full = CRU_BUF_INIT, have = CRU_BUF_INIT;
    struct tok_span *spans = NULL;
    size_t *edges = NULL, n_edges = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    spans = calloc(c->n_msgs ? c->n_msgs : 1, sizeof(*spans));
    if (!spans) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = tok_chat_render(c, c->n_msgs, gen, &full, spans)) < 0 ||
        (rc = tok_decode(t, ctx, n_ctx, &have)) < 0 ||
        (rc = tok_added_edges(t, cru_buf_cstr(&full), full.len, &edges, &n_edges)) < 0)
        goto done;
    const char *f = cru_buf_cstr(&full), *h = cru_buf_cstr(&have);
    size_t same = 0, lim = have.len < full.len ? have.len : full.len;
    while (same < lim && f[same] == h[same])
        same++;
    size_t from;
    if (same == have.len && is_edge(edges, n_edges, same, full.len)) {
        out->keep = n_ctx;
        from = same;
    } else {
        /* The longest prefix of the context that agrees and ends at a boundary. */
        size_t pos = 0;
        from = 0;
        for (size_t k = 0; k < n_ctx; k++) {
            size_t len;
            tok_token_bytes(t, ctx[k], &len);
            if (pos + len > same)
                break;
            pos += len;
            if (is_edge(edges, n_edges, pos, full.len)) {
                out->keep = k + 1;
                from = pos;
            }
        }
        out->edit = true;
        explain(c, spans, h, have.len, same, out);
    }
    rc = tok_encode(t, f + from, full.len - from, &out->ids);
done:
    if (rc < 0)
        tok_append_free(out);
    free(spans);
    free(edges);
    cru_buf_free(&full);
    cru_buf_free(&have);
    return rc;
}

/* ---- parsing a reply ---- */

void tok_reply_free(struct tok_reply *r)
{
    for (size_t i = 0; i < r->n_calls; i++)
        call_free(&r->calls[i]);
    free(r->calls);
    free(r->reasoning);
    free(r->content);
    free(r->error);
    memset(r, 0, sizeof(*r));
}

static const json_t *find_tool(const json_t *tools, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        json_t *fn = json_object_get(t, "function");
        const json_t *decl = json_is_object(fn) ? fn : t;
        json_t *n = json_object_get(decl, "name");
        if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
            return decl;
    }
    return NULL;
}

static bool type_matches(const char *type, const json_t *v)
{
    if (strcmp(type, "string") == 0)
        return json_is_string(v);
    if (strcmp(type, "integer") == 0)
        return json_is_integer(v) ||
               (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
    if (strcmp(type, "number") == 0)
        return json_is_number(v);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(type, "array") == 0)
        return json_is_array(v);
    if (strcmp(type, "object") == 0)
        return json_is_object(v);
    if (strcmp(type, "null") == 0)
        return json_is_null(v);
    return true; /* a type this check does not know is not held against the call */
}

/* Checks ARGS against the declaration's JSON schema (required, types, additionalProperties);
 * appends problems to ERR. */
static int check_args(const json_t *decl, const char *name, const json_t *args, size_t k,
                      struct cru_buf *err)
{
    json_t *params = json_object_get(decl, "parameters");
    json_t *props = json_object_get(params, "properties"),
           *req = json_object_get(params, "required");
    size_t i;
    json_t *r;
    int rc = 0;
    json_array_foreach(req, i, r)
    {
        if (rc == 0 && json_is_string(r) && !json_object_get(args, json_string_value(r)))
            rc = cru_buf_printf(err, "tool call %zu (%s): missing required argument \"%s\"\n", k,
                                name, json_string_value(r));
    }
    const char *key;
    json_t *v;
    bool closed = json_is_false(json_object_get(params, "additionalProperties"));
    json_object_foreach((json_t *)(uintptr_t)args, key, v)
    {
        json_t *p = json_object_get(props, key), *type = json_object_get(p, "type");
        if (rc < 0)
            break;
        if (!p && closed)
            rc = cru_buf_printf(err, "tool call %zu (%s): unknown argument \"%s\"\n", k, name, key);
        else if (json_is_string(type) && !type_matches(json_string_value(type), v))
            rc = cru_buf_printf(err,
                                "tool call %zu (%s): argument \"%s\" must be of type %s, "
                                "not %s\n",
                                k, name, key, json_string_value(type), cru_json_type_name(v));
    }
    return rc;
}

/* Parses one <tool_call> block's text; a problem goes to ERR and adds no call. */
static int parse_call(struct tok_reply *r, struct str body, const json_t *tools, size_t k,
                      struct cru_buf *err)
{
    json_t *v = NULL;
    int rc = 0;
    char label[32];
    snprintf(label, sizeof(label), "tool call %zu", k);
    while (body.n && strchr(" \t\r\n", body.s[0]))
        body.s++, body.n--;
    while (body.n && strchr(" \t\r\n", body.s[body.n - 1]))
        body.n--;
    if (cru_json_parse(&v, body.s, body.n, label) < 0)
        return cru_buf_printf(err,
                              "%s: invalid JSON: expected {\"name\": <function-name>, "
                              "\"arguments\": <args-json-object>}\n",
                              cru_err_msg());
    json_t *name = json_object_get(v, "name"), *args = json_object_get(v, "arguments");
    const json_t *decl = NULL;
    if (!json_is_object(v))
        rc = cru_buf_printf(err, "%s: expected a JSON object, got %s\n", label,
                            cru_json_type_name(v));
    else if (!json_is_string(name))
        rc = cru_buf_printf(err, "%s: \"name\" must be a string naming a tool\n", label);
    else if (json_object_size(v) != 2 || !args)
        rc = cru_buf_printf(err, "%s (%s): expected exactly the keys \"name\" and \"arguments\"\n",
                            label, json_string_value(name));
    else if (!json_is_object(args))
        rc = cru_buf_printf(err, "%s (%s): \"arguments\" must be a JSON object, not %s\n", label,
                            json_string_value(name), cru_json_type_name(args));
    else if (!(decl = find_tool(tools, json_string_value(name))))
        rc = cru_buf_printf(err, "%s: unknown tool \"%s\"\n", label, json_string_value(name));
    else {
        size_t before = err->len;
        rc = check_args(decl, json_string_value(name), args, k, err);
        if (rc == 0 && err->len == before) {
            struct tok_msg m = { .calls = r->calls, .n_calls = r->n_calls };
            rc = add_call(&m, json_string_value(name), args, NULL);
            r->calls = m.calls;
            r->n_calls = m.n_calls;
        }
    }
    json_decref(v);
    return rc;
}

static int parse_calls(struct tok_reply *r, struct str s, const json_t *tools,
                       struct cru_buf *content, struct cru_buf *err)
{
    const char *open = str_find(s, "<tool_call>", false);
    struct str before = { s.s, open ? (size_t)(open - s.s) : s.n };
    /* The template puts exactly one newline between content and the first call. */
    if (open && before.n && before.s[before.n - 1] == '\n')
        before.n--;
    int rc = put(content, before);
    size_t k = 0;
    while (rc == 0 && open) {
        k++;
        struct str rest = { open + 11, (size_t)(s.s + s.n - open - 11) };
        const char *close = str_find(rest, "</tool_call>", false);
        if (!close)
            return cru_buf_printf(err, "tool call %zu: no </tool_call> closes it\n", k);
        if (k > TOK_CHAT_CALLS_MAX)
            return cru_buf_printf(err, "more than %d tool calls in one reply\n",
                                  TOK_CHAT_CALLS_MAX);
        if ((rc = parse_call(r, (struct str){ rest.s, (size_t)(close - rest.s) }, tools, k, err)) <
            0)
            return rc;
        struct str after = { close + 12, (size_t)(s.s + s.n - close - 12) };
        open = str_find(after, "<tool_call>", false);
        struct str between = { after.s, open ? (size_t)(open - after.s) : after.n };
        for (size_t i = 0; i < between.n && rc == 0; i++)
            if (!strchr(" \t\r\n", between.s[i])) {
                rc = cru_buf_printf(err,
                                    "text after tool call %zu: only white space may follow a "
                                    "tool call\n",
                                    k);
                break;
            }
    }
    return rc;
}

int tok_chat_parse(const char *text, size_t len, const json_t *tools, struct tok_reply *out)
{
    struct cru_buf content = CRU_BUF_INIT, err = CRU_BUF_INIT;
    struct str s = { text, len };
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if (str_ends(s, "<|im_end|>"))
        s.n -= 10;
    else if (str_ends(s, "<|endoftext|>"))
        s.n -= 13;
    const char *first = str_find(s, "</think>", false);
    if (first) {
        /* The template's own split, so that a re-render gives the same text. */
        const char *last_end = str_find(s, "</think>", true) + 8;
        struct str before = rstrip_nl((struct str){ s.s, (size_t)(first - s.s) });
        const char *open = str_find(before, "<think>", true);
        if (open)
            before = (struct str){ open + 7, (size_t)(before.s + before.n - open - 7) };
        before = lstrip_nl(before);
        rc = cru_str_ndup(&out->reasoning, before.s, before.n);
        s = lstrip_nl((struct str){ last_end, (size_t)(s.s + s.n - last_end) });
    } else if (str_starts(lstrip_nl(s), "<think>")) {
        /* Thinking that never ended (a budget ran out): all of it is reasoning. */
        struct str r = lstrip_nl(s);
        r = lstrip_nl((struct str){ r.s + 7, r.n - 7 });
        rc = cru_str_ndup(&out->reasoning, r.s, r.n);
        s.n = 0;
    }
    if (rc == 0)
        rc = parse_calls(out, s, tools, &content, &err);
    if (rc == 0 && !(out->content = cru_buf_detach(&content, NULL)))
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
    if (rc == 0 && err.len) {
        err.data[--err.len] = '\0'; /* the last newline */
        out->error = cru_buf_detach(&err, NULL);
    }
    cru_buf_free(&content);
    cru_buf_free(&err);
    if (rc < 0)
        tok_reply_free(out);
    return rc;
}

int tok_chat_add_reply(struct tok_chat *c, const struct tok_reply *r)
{
    int rc = tok_chat_add(c, TOK_ROLE_ASSISTANT, r->content, r->reasoning);
    for (size_t i = 0; i < r->n_calls && rc == 0; i++)
        rc = add_call(&c->msgs[c->n_msgs - 1], r->calls[i].name, r->calls[i].arguments,
                      r->calls[i].arguments_text);
    return rc;
}

/* ---- templates ---- */

int tok_template_detect(const char *dir, enum tok_template *out)
{
    char *path = NULL;
    json_t *cfg = NULL;
    const char *tmpl = NULL;
    int rc = cru_str_printf(&path, "%s/tokenizer_config.json", dir);
    if (rc == 0)
        rc = cru_json_load_file(&cfg, path, 0);
    if (rc == 0 && (rc = cru_json_get_str(cfg, "", "chat_template", true, &tmpl)) < 0)
        rc = cru_err_wrap(rc, "%s", path);
    if (rc == 0) {
        uint8_t sum[CRU_SHA256_LEN];
        char hex[CRU_SHA256_HEX_LEN + 1];
        if ((rc = cru_sha256(tmpl, strlen(tmpl), sum)) == 0) {
            cru_hex(hex, sum, sizeof(sum));
            if (strcmp(hex, qwen3_template_sha256) == 0)
                *out = TOK_TEMPLATE_QWEN3;
            else
                rc = cru_err_set(CRU_EUNSUPPORTED,
                                 "%s: the chat_template (SHA-256 %s) is not one crucible "
                                 "renders (Qwen3)",
                                 path, hex);
        }
    }
    json_decref(cfg);
    free(path);
    return rc;
}
