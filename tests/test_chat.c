/* Tests for model/chat: the Qwen3 renderer against the Jinja template's own output (48
 * conversations rendered by @huggingface/jinja, tests/tokenizer/chat_*), incremental
 * rendering against full re-renders, context edits where the template rewrites history, the
 * strict parse of replies, and template detection. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/json.h"
#include "lib/str.h"
#include "model/chat.h"
#include "tests/tokenizer_util.h"

struct cases {
    json_t *in, *want; /* chat_cases.json, chat_expected.json */
};

static void cases_load(struct cases *c)
{
    struct cru_buf a = CRU_BUF_INIT, b = CRU_BUF_INIT;
    read_test_data("chat_cases.json", &a);
    read_test_data("chat_expected.json", &b);
    cr_assert_eq(cru_json_parse(&c->in, a.data, a.len, "chat_cases.json"), 0, "%s", cru_err_msg());
    cr_assert_eq(cru_json_parse(&c->want, b.data, b.len, "chat_expected.json"), 0, "%s",
                 cru_err_msg());
    cr_assert_eq(json_array_size(c->in), json_array_size(c->want),
                 "regenerate chat_expected.json with tests/tokenizer/chat_reference.js");
    cr_assert_geq(json_array_size(c->in), 30);
    cru_buf_free(&a);
    cru_buf_free(&b);
}

static void cases_free(struct cases *c)
{
    json_decref(c->in);
    json_decref(c->want);
}

static void chat_of(struct tok_chat *chat, const json_t *kase)
{
    *chat = (struct tok_chat)TOK_CHAT_INIT;
    cr_assert_eq(tok_chat_from_json(chat, kase), 0, "%s: %s",
                 json_string_value(json_object_get(kase, "name")), cru_err_msg());
}

static bool gen_of(const json_t *kase)
{
    return json_is_true(json_object_get(kase, "add_generation_prompt"));
}

Test(chat, render_equals_the_jinja_template)
{
    struct cases cs;
    cases_load(&cs);
    struct tok *t = qwen_load();
    for (size_t i = 0; i < json_array_size(cs.in); i++) {
        json_t *kase = json_array_get(cs.in, i), *want = json_array_get(cs.want, i);
        const char *name = json_string_value(json_object_get(kase, "name"));
        struct tok_chat chat;
        chat_of(&chat, kase);
        struct cru_buf text = CRU_BUF_INIT;
        cr_assert_eq(tok_chat_render(&chat, chat.n_msgs, gen_of(kase), &text, NULL), 0, "%s",
                     cru_err_msg());
        const char *wt = json_string_value(json_object_get(want, "text"));
        size_t k = 0;
        while (k < text.len && wt[k] == text.data[k])
            k++;
        cr_assert(text.len == strlen(wt) && k == text.len,
                  "%s: differs from the template at byte %zu:\nours: %.60s\nwant: %.60s", name, k,
                  text.data + k, wt + k);
        /* And the ids of the rendering equal the reference tokenizer's. */
        struct tok_ids ids = TOK_IDS_INIT;
        cr_assert_eq(tok_chat_encode(t, &chat, chat.n_msgs, gen_of(kase), &ids), 0);
        json_t *wi = json_object_get(want, "ids");
        cr_assert_eq(ids.n, json_array_size(wi), "%s", name);
        for (size_t j = 0; j < ids.n; j++)
            cr_assert_eq(ids.v[j], json_integer_value(json_array_get(wi, j)), "%s: id %zu", name,
                         j);
        tok_ids_free(&ids);
        cru_buf_free(&text);
        tok_chat_free(&chat);
    }
    tok_free(t);
    cases_free(&cs);
}

/* The context after message K-1 (an assistant's) was sampled: its ids end with <|im_end|>,
 * without the newline the template puts after it. */
static void sampled_context(const struct tok *t, const struct tok_chat *c, size_t k,
                            struct tok_ids *ctx)
{
    struct cru_buf text = CRU_BUF_INIT;
    cr_assert_eq(tok_chat_render(c, k, false, &text, NULL), 0);
    cr_assert(text.len > 0 && text.data[text.len - 1] == '\n');
    cr_assert_eq(tok_encode(t, text.data, text.len - 1, ctx), 0);
    cru_buf_free(&text);
}

/* Appends the messages after each assistant turn up to the next one (tool results or a user
 * message) plus the generation prompt: CTX[0..keep) + ids must equal the full re-render. */
Test(chat, append_equals_full_rerender, .timeout = 120)
{
    struct cases cs;
    cases_load(&cs);
    struct tok *t = qwen_load();
    size_t appends = 0, edits = 0, tool_appends = 0;
    for (size_t i = 0; i < json_array_size(cs.in); i++) {
        json_t *kase = json_array_get(cs.in, i);
        const char *name = json_string_value(json_object_get(kase, "name"));
        struct tok_chat chat;
        chat_of(&chat, kase);
        for (size_t k = 1; k < chat.n_msgs; k++) {
            if (chat.msgs[k - 1].role != TOK_ROLE_ASSISTANT ||
                chat.msgs[k].role == TOK_ROLE_ASSISTANT)
                continue;
            size_t j = k;
            while (j < chat.n_msgs && chat.msgs[j].role != TOK_ROLE_ASSISTANT)
                j++;
            struct tok_ids ctx = TOK_IDS_INIT, full = TOK_IDS_INIT;
            sampled_context(t, &chat, k, &ctx);
            struct tok_chat view = chat;
            view.n_msgs = j;
            struct tok_append ap;
            cr_assert_eq(tok_chat_append(t, &view, ctx.v, ctx.n, true, &ap), 0, "%s",
                         cru_err_msg());
            cr_assert_eq(tok_chat_encode(t, &view, j, true, &full), 0);
            cr_assert_leq(ap.keep, ctx.n);
            cr_assert_eq(ap.keep + ap.ids.n, full.n,
                         "%s at message %zu: %zu kept + %zu new, "
                         "the full re-render has %zu",
                         name, k, ap.keep, ap.ids.n, full.n);
            cr_assert_arr_eq(ctx.v, full.v, ap.keep * sizeof(int32_t), "%s at %zu", name, k);
            cr_assert_arr_eq(ap.ids.v, full.v + ap.keep, ap.ids.n * sizeof(int32_t), "%s at %zu",
                             name, k);
            cr_assert_eq(ap.edit, ap.keep < ctx.n, "%s at %zu: edit iff ids are dropped", name, k);
            if (ap.edit) {
                edits++;
                cr_assert(ap.reason[0]);
                cr_assert_lt(ap.edit_msg, k, "%s: the edit is in the history", name);
            } else {
                appends++;
                tool_appends += chat.msgs[k].role == TOK_ROLE_TOOL;
            }
            tok_append_free(&ap);
            tok_ids_free(&ctx);
            tok_ids_free(&full);
        }
        tok_chat_free(&chat);
    }
    /* Both outcomes occur in the cases; tool results after a thinking turn append cleanly. */
    cr_assert_gt(appends, 20, "%zu appends", appends);
    cr_assert_gt(tool_appends, 20, "%zu tool appends", tool_appends);
    cr_assert_gt(edits, 0);
    tok_free(t);
    cases_free(&cs);
}

static void build(struct tok_chat *c, const char *json)
{
    json_t *v = NULL;
    cr_assert_eq(cru_json_parse(&v, json, strlen(json), "chat"), 0, "%s", cru_err_msg());
    *c = (struct tok_chat)TOK_CHAT_INIT;
    cr_assert_eq(tok_chat_from_json(c, v), 0, "%s", cru_err_msg());
    json_decref(v);
}

static void append_after(const struct tok *t, struct tok_chat *c, size_t k, struct tok_append *ap)
{
    struct tok_ids ctx = TOK_IDS_INIT;
    sampled_context(t, c, k, &ctx);
    cr_assert_eq(tok_chat_append(t, c, ctx.v, ctx.n, true, ap), 0, "%s", cru_err_msg());
    tok_ids_free(&ctx);
}

Test(chat, append_only_after_a_thinking_tool_turn)
{
    struct tok *t = qwen_load();
    struct tok_chat c;
    build(&c, "{\"messages\": [{\"role\": \"user\", \"content\": \"go\"},"
              " {\"role\": \"assistant\", \"content\": \"\", \"reasoning_content\": \"plan\","
              "  \"tool_calls\": [{\"name\": \"ls\", \"arguments\": {}}]},"
              " {\"role\": \"tool\", \"content\": \"a.txt\"}]}");
    struct tok_append ap;
    append_after(t, &c, 2, &ap);
    cr_assert_not(ap.edit, "%s", ap.reason);
    struct cru_buf text = CRU_BUF_INIT;
    cr_assert_eq(tok_decode(t, ap.ids.v, ap.ids.n, &text), 0);
    cr_assert_str_eq(text.data, "\n<|im_start|>user\n<tool_response>\na.txt\n</tool_response>"
                                "<|im_end|>\n<|im_start|>assistant\n");
    cru_buf_free(&text);
    tok_append_free(&ap);
    tok_chat_free(&c);
    tok_free(t);
}

Test(chat, a_new_user_message_drops_reasoning_as_an_edit)
{
    struct tok *t = qwen_load();
    struct tok_chat c;
    build(&c, "{\"messages\": [{\"role\": \"user\", \"content\": \"Q1\"},"
              " {\"role\": \"assistant\", \"content\": \"A1\", \"reasoning_content\": \"r1\"},"
              " {\"role\": \"user\", \"content\": \"Q2\"}]}");
    struct tok_append ap;
    append_after(t, &c, 2, &ap);
    cr_assert(ap.edit);
    cr_assert_eq(ap.edit_msg, 1);
    cr_assert(strstr(ap.reason, "message 1 (assistant)") && strstr(ap.reason, "<think>"), "%s",
              ap.reason);
    /* What stays ends where the assistant's turn begins. */
    struct tok_ids ids = TOK_IDS_INIT;
    struct cru_buf kept = CRU_BUF_INIT;
    sampled_context(t, &c, 2, &ids);
    cr_assert_eq(tok_decode(t, ids.v, ap.keep, &kept), 0);
    cr_assert_str_eq(kept.data, "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>");
    cru_buf_free(&kept);
    tok_ids_free(&ids);
    tok_append_free(&ap);
    /* Without reasoning there is nothing to drop: a clean append. Positive control of the
     * above. */
    free(c.msgs[1].reasoning);
    c.msgs[1].reasoning = NULL;
    struct tok_chat two = c;
    two.n_msgs = 2;
    struct tok_ids ctx = TOK_IDS_INIT;
    struct cru_buf text = CRU_BUF_INIT;
    cr_assert_eq(tok_chat_render(&two, 2, false, &text, NULL), 0);
    /* The last assistant message shows an empty think block; a sampled non-thinking turn
     * has none, so the context is built from the form without it. */
    c.msgs[1].content[0] = 'A';
    const char *plain = "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>";
    cr_assert_eq(tok_encode(t, plain, strlen(plain), &ctx), 0);
    cr_assert_eq(tok_chat_append(t, &c, ctx.v, ctx.n, true, &ap), 0);
    cr_assert_not(ap.edit, "%s", ap.reason);
    cr_assert_eq(ap.keep, ctx.n);
    tok_append_free(&ap);
    tok_ids_free(&ctx);
    cru_buf_free(&text);
    tok_chat_free(&c);
    tok_free(t);
}

Test(chat, tool_results_one_at_a_time_need_an_edit)
{
    struct tok *t = qwen_load();
    struct tok_chat c;
    build(&c, "{\"messages\": [{\"role\": \"user\", \"content\": \"go\"},"
              " {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": ["
              "  {\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {}}]},"
              " {\"role\": \"tool\", \"content\": \"ra\"},"
              " {\"role\": \"tool\", \"content\": \"rb\"}]}");
    /* The context holds the first result as its own turn, closed by <|im_end|>. */
    struct tok_ids ctx = TOK_IDS_INIT;
    struct cru_buf text = CRU_BUF_INIT;
    cr_assert_eq(tok_chat_render(&c, 3, false, &text, NULL), 0);
    cr_assert_eq(tok_encode(t, text.data, text.len, &ctx), 0);
    struct tok_append ap;
    cr_assert_eq(tok_chat_append(t, &c, ctx.v, ctx.n, true, &ap), 0);
    cr_assert(ap.edit);
    cr_assert_eq(ap.edit_msg, 3);
    cr_assert(strstr(ap.reason, "consecutive tool results"), "%s", ap.reason);
    struct tok_ids full = TOK_IDS_INIT;
    cr_assert_eq(tok_chat_encode(t, &c, 4, true, &full), 0);
    cr_assert_eq(ap.keep + ap.ids.n, full.n);
    cr_assert_arr_eq(ap.ids.v, full.v + ap.keep, ap.ids.n * sizeof(int32_t));
    tok_append_free(&ap);
    tok_ids_free(&full);
    tok_ids_free(&ctx);
    cru_buf_free(&text);
    tok_chat_free(&c);
    tok_free(t);
}

/* ---- parsing replies ---- */

static json_t *tools_json(void)
{
    static const char text[] =
        "[{\"type\": \"function\", \"function\": {\"name\": \"run_shell\", \"parameters\": "
        "{\"type\": \"object\", \"properties\": {\"command\": {\"type\": \"string\"}, "
        "\"timeout\": {\"type\": \"integer\"}}, \"required\": [\"command\"], "
        "\"additionalProperties\": false}}},"
        " {\"name\": \"read_file\", \"parameters\": {\"properties\": {\"path\": {\"type\": "
        "\"string\"}}, \"required\": [\"path\"]}}]";
    json_t *v = NULL;
    cr_assert_eq(cru_json_parse(&v, text, strlen(text), "tools"), 0);
    return v;
}

static void parse(const char *text, struct tok_reply *r)
{
    json_t *tools = tools_json();
    cr_assert_eq(tok_chat_parse(text, strlen(text), tools, r), 0, "%s", cru_err_msg());
    json_decref(tools);
}

Test(chat, parse_reasoning_content_and_calls)
{
    struct tok_reply r;
    parse("<think>\nI will list.\n</think>\n\nListing now.\n<tool_call>\n{\"name\": "
          "\"run_shell\", \"arguments\": {\"command\": \"ls\", \"timeout\": 5}}\n</tool_call>\n"
          "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}\n"
          "</tool_call><|im_end|>",
          &r);
    cr_assert_null(r.error, "%s", r.error);
    cr_assert_str_eq(r.reasoning, "I will list.");
    cr_assert_str_eq(r.content, "Listing now.");
    cr_assert_eq(r.n_calls, 2);
    cr_assert_str_eq(r.calls[0].name, "run_shell");
    cr_assert_str_eq(json_string_value(json_object_get(r.calls[0].arguments, "command")), "ls");
    cr_assert_str_eq(r.calls[1].name, "read_file");
    tok_reply_free(&r);

    parse("Just text.", &r);
    cr_assert_null(r.reasoning);
    cr_assert_str_eq(r.content, "Just text.");
    cr_assert_eq(r.n_calls, 0);
    cr_assert_null(r.error);
    tok_reply_free(&r);

    parse("<think>\nruns out of budget", &r);
    cr_assert_str_eq(r.reasoning, "runs out of budget");
    cr_assert_str_eq(r.content, "");
    tok_reply_free(&r);
}

Test(chat, malformed_calls_become_errors_for_the_model)
{
    static const struct {
        const char *text, *error;
        size_t valid;
    } cases[] = {
        { "<tool_call>\n{\"name\": \"run_shell\", \"arguments\": {\"command\": }\n</tool_call>",
          "tool call 1:1:", 0 },
        { "<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>",
          "tool call 1: unknown tool \"rm_rf\"", 0 },
        { "<tool_call>\n{\"name\": \"run_shell\", \"arguments\": {}}\n</tool_call>",
          "tool call 1 (run_shell): missing required argument \"command\"", 0 },
        { "<tool_call>\n{\"name\": \"run_shell\", \"arguments\": {\"command\": 5}}\n</tool_call>",
          "argument \"command\" must be of type string, not an integer", 0 },
        { "<tool_call>\n{\"name\": \"run_shell\", \"arguments\": {\"command\": \"x\", \"y\": 1}}"
          "\n</tool_call>",
          "unknown argument \"y\"", 0 },
        { "<tool_call>\n{\"name\": \"run_shell\"}\n</tool_call>",
          "expected exactly the keys \"name\" and \"arguments\"", 0 },
        { "<tool_call>\n{\"name\": \"run_shell\", \"arguments\": \"{}\"}\n</tool_call>",
          "\"arguments\" must be a JSON object, not a string", 0 },
        { "<tool_call>\n[1, 2]\n</tool_call>", "expected a JSON object, got an array", 0 },
        { "<tool_call>\n{\"name\": 7, \"arguments\": {}}\n</tool_call>",
          "\"name\" must be a string", 0 },
        { "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}",
          "tool call 1: no </tool_call> closes it", 0 },
        /* A good call next to a bad one is still returned; the bad one is reported. */
        { "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}\n</tool_call>"
          "\n<tool_call>\nnot json\n</tool_call>",
          "tool call 2:1:", 1 },
        { "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}\n</tool_call>"
          " and more",
          "text after tool call 1", 1 },
        /* read_file's schema allows more properties: an extra one is fine. */
        { "<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\", \"n\": 1}}"
          "</tool_call>",
          NULL, 1 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tok_reply r;
        parse(cases[i].text, &r);
        if (cases[i].error)
            cr_assert(r.error && strstr(r.error, cases[i].error), "case %zu: want '%s' in '%s'", i,
                      cases[i].error, r.error ? r.error : "(no error)");
        else
            cr_assert_null(r.error, "case %zu: %s", i, r.error);
        cr_assert_eq(r.n_calls, cases[i].valid, "case %zu", i);
        tok_reply_free(&r);
    }
}

/* A reply parsed and added back renders as the model wrote it (for every assistant turn of
 * the cases whose calls carry object arguments). */
Test(chat, parse_then_render_gives_the_same_text)
{
    struct cases cs;
    cases_load(&cs);
    size_t checked = 0, rejected = 0;
    for (size_t i = 0; i < json_array_size(cs.in); i++) {
        struct tok_chat chat;
        chat_of(&chat, json_array_get(cs.in, i));
        for (size_t k = 1; k <= chat.n_msgs; k++) {
            const struct tok_msg *m = &chat.msgs[k - 1];
            bool raw_args = false;
            for (size_t j = 0; j < m->n_calls; j++)
                raw_args |= m->calls[j].arguments_text != NULL;
            if (m->role != TOK_ROLE_ASSISTANT || raw_args || k < 2)
                continue;
            struct cru_buf prompt = CRU_BUF_INIT, whole = CRU_BUF_INIT, again = CRU_BUF_INIT;
            cr_assert_eq(tok_chat_render(&chat, k - 1, true, &prompt, NULL), 0);
            cr_assert_eq(tok_chat_render(&chat, k, false, &whole, NULL), 0);
            if (whole.len < prompt.len || memcmp(whole.data, prompt.data, prompt.len) != 0) {
                cru_buf_free(&prompt);
                cru_buf_free(&whole);
                continue; /* the template rewrote history here */
            }
            struct tok_reply r;
            cr_assert_eq(
                tok_chat_parse(whole.data + prompt.len, whole.len - prompt.len - 1, chat.tools, &r),
                0);
            if (r.error) {
                /* One case passes run_shell an argument its schema forbids. */
                cr_assert(strstr(r.error, "unknown argument \"opts\""), "case %zu: %s", i, r.error);
                rejected++;
                tok_reply_free(&r);
                cru_buf_free(&prompt);
                cru_buf_free(&whole);
                continue;
            }
            struct tok_chat copy = TOK_CHAT_INIT;
            copy.tools = chat.tools;
            copy.thinking_off = chat.thinking_off;
            for (size_t j = 0; j + 1 < k; j++) {
                const struct tok_msg *o = &chat.msgs[j];
                cr_assert_eq(tok_chat_add(&copy, o->role, o->content, o->reasoning), 0);
                for (size_t q = 0; q < o->n_calls; q++)
                    tok_chat_add_call(&copy, o->calls[q].name, o->calls[q].arguments);
            }
            cr_assert_eq(tok_chat_add_reply(&copy, &r), 0);
            cr_assert_eq(tok_chat_render(&copy, k, false, &again, NULL), 0);
            cr_assert_str_eq(again.data, whole.data, "case %zu, message %zu", i, k - 1);
            checked++;
            copy.tools = NULL;
            tok_chat_free(&copy);
            tok_reply_free(&r);
            cru_buf_free(&prompt);
            cru_buf_free(&whole);
            cru_buf_free(&again);
        }
        tok_chat_free(&chat);
    }
    cr_assert_gt(checked, 30, "%zu turns checked", checked);
    cr_assert_eq(rejected, 1);
    cases_free(&cs);
}

/* ---- conversations from JSON, bounds, templates ---- */

Test(chat, from_json_errors_name_the_field)
{
    static const struct {
        const char *json, *msg;
    } cases[] = {
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"robot\"}]}",
          "messages[1].role: unknown role 'robot'" },
        { "{\"messages\": [{\"content\": \"x\"}]}", "messages[0].role" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "messages[0].content" },
        { "{\"messages\": [{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": "
          "[{\"function\": {\"name\": \"x\", \"arguments\": 5}}]}]}",
          "messages[0].tool_calls[0].function.arguments" },
        { "{}", "messages" },
        { "{\"messages\": [], \"tools\": {}}", "tools" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = NULL;
        struct tok_chat c = TOK_CHAT_INIT;
        cr_assert_eq(cru_json_parse(&v, cases[i].json, strlen(cases[i].json), "c"), 0);
        cr_assert_lt(tok_chat_from_json(&c, v), 0, "case %zu", i);
        cr_assert(strstr(cru_err_msg(), cases[i].msg), "case %zu: %s", i, cru_err_msg());
        tok_chat_free(&c);
        json_decref(v);
    }
    struct tok_chat c = TOK_CHAT_INIT;
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(tok_chat_render(&c, 0, true, &b, NULL), CRU_EINVAL);
    cr_assert_eq(tok_chat_add_call(&c, "x", NULL), CRU_EINVAL);
    cr_assert_eq(tok_chat_add(&c, TOK_ROLE_ASSISTANT, NULL, NULL), 0);
    cr_assert_str_eq(c.msgs[0].content, "");
    json_t *notobj = json_integer(1);
    cr_assert_eq(tok_chat_add_call(&c, "x", notobj), CRU_EINVAL);
    json_decref(notobj);
    tok_chat_free(&c);
}

/* A tool's output with bytes that are not UTF-8 is stored as the tokenizer reads it, so an
 * append after it still works. */
Test(chat, invalid_utf8_in_a_tool_result)
{
    struct tok *t = qwen_load();
    struct tok_chat c = TOK_CHAT_INIT;
    cr_assert_eq(tok_chat_add(&c, TOK_ROLE_USER, "cat the file", NULL), 0);
    cr_assert_eq(tok_chat_add(&c, TOK_ROLE_ASSISTANT, "ok", "r"), 0);
    cr_assert_eq(tok_chat_add(&c, TOK_ROLE_TOOL, "\x89PNG\r\n\x1a\n\xff", NULL), 0);
    cr_assert_str_eq(c.msgs[2].content, "\xEF\xBF\xBDPNG\r\n\x1a\n\xEF\xBF\xBD");
    struct tok_append ap;
    append_after(t, &c, 2, &ap);
    cr_assert_not(ap.edit, "%s", ap.reason);
    struct tok_ids full = TOK_IDS_INIT;
    cr_assert_eq(tok_chat_encode(t, &c, 3, true, &full), 0);
    cr_assert_eq(ap.keep + ap.ids.n, full.n);
    tok_ids_free(&full);
    tok_append_free(&ap);
    tok_chat_free(&c);
    tok_free(t);
}

Test(chat, tojson_matches_python)
{
    struct tok_chat c;
    build(&c, "{\"messages\": [{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": "
              "[{\"name\": \"f\", \"arguments\": {\"r\": 1.5, \"i\": 2.0, \"e\": 1e300, "
              "\"s\": \"\\u0001\\\"\\\\/\\u00e9\\u007f\"}}]}]}");
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(tok_chat_render(&c, 1, false, &b, NULL), 0);
    cr_assert(strstr(b.data, "{\"r\": 1.5, \"i\": 2.0, \"e\": 1e+300, \"s\": "
                             "\"\\u0001\\\"\\\\/\xC3\xA9\x7f\"}"),
              "%s", b.data);
    cru_buf_free(&b);
    tok_chat_free(&c);
}

Test(chat, template_detection)
{
    enum tok_template which;
    cr_assert_eq(tok_template_detect(qwen_dir(), &which), 0, "%s", cru_err_msg());
    cr_assert_eq(which, TOK_TEMPLATE_QWEN3);
    /* A changed template is not rendered as if it were Qwen3's. */
    char dir[] = "/tmp/crucible-test-template-XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/tokenizer_config.json", dir);
    const char *cfg = "{\"chat_template\": \"{{ messages }}\"}";
    cr_assert_eq(cru_file_write_atomic(path, cfg, strlen(cfg), 0644), 0);
    cr_assert_eq(tok_template_detect(dir, &which), CRU_EUNSUPPORTED);
    cr_assert(strstr(cru_err_msg(), "is not one crucible renders"), "%s", cru_err_msg());
    cru_remove_tree(dir);
}
