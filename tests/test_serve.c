/* Tests for serve/: the request parser (every bound and field error names its field), the
 * reply splitter (Qwen3 tool calls with stable ids, rendered back to the sampled text), stop
 * strings, and the HTTP server end to end on a tiny random checkpoint with the real Qwen3
 * tokenizer, spoken to over raw sockets: models, a chat completion whose token ids decode to
 * its text, a stream whose chunks add up to the same completion, stop strings, n and seeds,
 * the completions endpoint, the refusals (400, 404, 405, 413, 503) each with an OpenAI error
 * body, and slow or stalled clients cut off. Where an equality could hold for a dull reason (the
 * stream equals the completion), a control shows the comparison can fail (two seeds give two
 * texts).
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/str.h"
#include "model/chat.h"
#include "serve/reply.h"
#include "serve/request.h"
#include "serve/server.h"
#include "tests/tokenizer_util.h"

/* ---- the request parser ---- */

static void parse_ok(struct srv_request *r, enum srv_endpoint ep, const char *body)
{
    struct srv_error e;
    cr_assert_eq(srv_request_parse(r, ep, body, strlen(body), &e), 0, "%s", e.message);
}

/* BODY is refused with STATUS, naming PARAM ("" for none), with WANT in the message. */
static void parse_bad(enum srv_endpoint ep, const char *body, int status, const char *param,
                      const char *want)
{
    struct srv_request r;
    struct srv_error e;
    cr_assert_lt(srv_request_parse(&r, ep, body, strlen(body), &e), 0, "accepted: %s", body);
    cr_assert_eq(e.status, status, "%s: status %d: %s", body, e.status, e.message);
    cr_assert_str_eq(e.param, param, "%s: %s", body, e.message);
    cr_assert(strstr(e.message, want), "%s: '%s' lacks '%s'", body, e.message, want);
    cr_assert_null(r.model, "a failed parse left the request filled");
}

Test(serve_request, defaults_of_a_minimal_chat)
{
    struct srv_request r;
    parse_ok(&r, SRV_CHAT,
             "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": "
             "\"hi\"}]}");
    cr_assert_str_eq(r.model, "m");
    cr_assert_eq(r.n, 1);
    cr_assert_float_eq(r.temperature, 1.0f, 0);
    cr_assert_float_eq(r.top_p, 1.0f, 0);
    cr_assert_eq(r.max_tokens, 0);
    cr_assert(!r.stream && !r.logprobs && !r.return_token_ids && !r.has_seed && !r.has_tools);
    cr_assert_eq(r.chat.n_msgs, 1);
    cr_assert_str_eq(r.chat.msgs[0].content, "hi");
    srv_request_free(&r);
}

Test(serve_request, every_field_read)
{
    struct srv_request r;
    parse_ok(&r, SRV_CHAT,
             "{\"model\": \"m\", \"messages\": ["
             "{\"role\": \"developer\", \"content\": \"be brief\"},"
             "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a\"}, "
             "{\"type\": \"text\", \"text\": \"b\"}], \"name\": \"ann\"},"
             "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\", "
             "\"type\": \"function\", \"function\": {\"name\": \"bash\", \"arguments\": "
             "\"{\\\"command\\\":  \\\"ls\\\"}\"}}]},"
             "{\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"x.c\"}],"
             "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"bash\", "
             "\"parameters\": {\"type\": \"object\"}}}],"
             "\"tool_choice\": \"none\", \"temperature\": 0.5, \"top_p\": 0.9, \"top_k\": 40,"
             "\"max_tokens\": 7, \"max_completion_tokens\": 9, \"n\": 3, \"seed\": -1,"
             "\"stop\": [\"x\", \"yz\"], \"logprobs\": true, \"top_logprobs\": 4,"
             "\"return_token_ids\": true, \"chat_template_kwargs\": {\"enable_thinking\": false},"
             "\"presence_penalty\": 0, \"user\": \"u\", \"parallel_tool_calls\": true}");
    cr_assert_eq(r.chat.n_msgs, 4);
    cr_assert_eq(r.chat.msgs[0].role, TOK_ROLE_SYSTEM, "developer is the system prompt");
    cr_assert_str_eq(r.chat.msgs[1].content, "a\nb", "text parts are joined by newlines");
    cr_assert_eq(r.chat.msgs[2].n_calls, 1);
    /* The arguments stay the text the client sent, so they render as they were sampled. */
    cr_assert_str_eq(r.chat.msgs[2].calls[0].arguments_text, "{\"command\":  \"ls\"}");
    cr_assert(r.chat.thinking_off);
    cr_assert(r.has_tools);
    cr_assert_eq(r.tool_choice, SRV_TOOL_CHOICE_NONE);
    cr_assert_float_eq(r.temperature, 0.5f, 1e-6);
    cr_assert_eq(r.top_k, 40);
    cr_assert_eq(r.max_tokens, 9, "max_completion_tokens wins over max_tokens");
    cr_assert_eq(r.n, 3);
    cr_assert(r.has_seed);
    cr_assert_eq(r.seed, UINT64_MAX);
    cr_assert_eq(r.n_stop, 2);
    cr_assert_eq(r.stop_max_len, 2);
    cr_assert(r.logprobs && r.return_token_ids);
    cr_assert_eq(r.top_logprobs, 4);
    srv_request_free(&r);

    parse_ok(&r, SRV_COMPLETIONS,
             "{\"model\": \"m\", \"prompt\": [[5, 6, 7]], \"logprobs\": 2, \"stop\": \"q\"}");
    cr_assert_eq(r.n_prompt_ids, 3);
    cr_assert_eq(r.prompt_ids[2], 7);
    cr_assert(r.logprobs);
    cr_assert_eq(r.top_logprobs, 2, "the completions API's logprobs counts alternatives");
    cr_assert_str_eq(r.stop[0], "q");
    srv_request_free(&r);
}

Test(serve_request, errors_name_the_field)
{
    char big[600];
    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    char *long_stop = NULL;
    cr_assert_eq(cru_str_printf(&long_stop,
                                "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", "
                                "\"content\": \"a\"}], \"stop\": \"%.257s\"}",
                                big),
                 0);
    static const char msg[] = "\"messages\": [{\"role\": \"user\", \"content\": \"a\"}]";
    char b[1024];
#define CHAT(extra) (snprintf(b, sizeof(b), "{\"model\": \"m\", %s%s}", msg, extra), b)
    parse_bad(SRV_CHAT,
              "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"a\"}, "
              "{\"role\": \"user\", \"content\": \"b\"}, {\"role\": \"user\", \"content\": "
              "{\"x\": 1}}]}",
              400, "messages[2].content",
              "messages[2].content: expected a string or an array of text parts, got an object");
    parse_bad(SRV_CHAT, "{\"model\": \"m\",", 400, "", "not valid JSON");
    parse_bad(SRV_CHAT, "[1]", 400, "", "must be a JSON object");
    parse_bad(SRV_CHAT, CHAT(", \"bogus\": 1"), 400, "bogus", "unrecognized request argument");
    parse_bad(SRV_CHAT, "{\"messages\": []}", 400, "model", "model's name");
    parse_bad(SRV_CHAT, "{\"model\": \"m\", \"messages\": []}", 400, "messages",
              "at least one message");
    parse_bad(SRV_CHAT, CHAT(", \"temperature\": \"hot\""), 400, "temperature",
              "expected a number, got a string");
    parse_bad(SRV_CHAT, CHAT(", \"temperature\": 3"), 400, "temperature", "not in [0, 2]");
    parse_bad(SRV_CHAT, CHAT(", \"top_p\": 0"), 400, "top_p", "keeps no token");
    parse_bad(SRV_CHAT, CHAT(", \"n\": 17"), 400, "n", "not in [1, 16]");
    parse_bad(SRV_CHAT, CHAT(", \"n\": 1.5"), 400, "n", "expected an integer");
    parse_bad(SRV_CHAT, CHAT(", \"max_tokens\": 0"), 400, "max_tokens", "not in [1,");
    parse_bad(SRV_CHAT, CHAT(", \"top_logprobs\": 2"), 400, "top_logprobs", "needs");
    parse_bad(SRV_CHAT, CHAT(", \"logprobs\": true, \"top_logprobs\": 21"), 400, "top_logprobs",
              "not in [0, 20]");
    parse_bad(SRV_CHAT,
              CHAT(", \"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\","
                   "\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]"),
              400, "stop", "17 stop strings (at most 16)");
    parse_bad(SRV_CHAT, long_stop, 400, "stop", "1 to 256 bytes");
    parse_bad(SRV_CHAT, CHAT(", \"stop\": [\"a\", \"\"]"), 400, "stop[1]", "1 to 256 bytes");
    parse_bad(SRV_CHAT, CHAT(", \"tool_choice\": \"required\""), 400, "tool_choice",
              "not supported");
    parse_bad(SRV_CHAT, CHAT(", \"presence_penalty\": 0.5"), 400, "presence_penalty",
              "not supported");
    parse_bad(SRV_CHAT, CHAT(", \"stream\": true, \"logprobs\": true"), 400, "logprobs",
              "not supported");
    parse_bad(SRV_CHAT, CHAT(", \"stream_options\": {\"include_usage\": true}"), 400,
              "stream_options", "only allowed when");
    parse_bad(SRV_CHAT, CHAT(", \"stream\": true, \"stream_options\": {\"include_usage\": 1}"), 400,
              "stream_options.include_usage", "expected a boolean");
    parse_bad(SRV_CHAT, CHAT(", \"chat_template_kwargs\": {\"enable_thinking\": \"no\"}"), 400,
              "chat_template_kwargs.enable_thinking", "expected a boolean");
    parse_bad(SRV_CHAT, CHAT(", \"tools\": [{\"type\": \"function\", \"function\": {}}]"), 400,
              "tools[0].function.name", "1 to 256 bytes");
    parse_bad(SRV_CHAT,
              "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": [{\"type\": "
              "\"image_url\", \"image_url\": {}}]}]}",
              400, "messages[0].content[0].type", "'image_url' is not supported");
    parse_bad(SRV_CHAT,
              "{\"model\": \"m\", \"messages\": [{\"role\": \"robot\", \"content\": \"\"}]}", 400,
              "messages[0].role", "unknown role 'robot'");
    parse_bad(SRV_CHAT, "{\"model\": \"m\", \"messages\": [{\"role\": \"user\"}]}", 400,
              "messages[0].content", "expected a string");
    parse_bad(SRV_CHAT, "{\"model\": \"m\", \"messages\": [{\"role\": \"assistant\"}]}", 400,
              "messages[0].content", "needs content or tool_calls");
    parse_bad(SRV_CHAT,
              "{\"model\": \"m\", \"messages\": [{\"role\": \"assistant\", \"tool_calls\": "
              "[{\"function\": {\"name\": \"f\", \"arguments\": 3}}]}]}",
              400, "messages[0].tool_calls[0].function.arguments", "expected a string of JSON");
    parse_bad(SRV_COMPLETIONS, "{\"model\": \"m\", \"prompt\": [\"a\", \"b\"]}", 400, "prompt",
              "several prompts");
    parse_bad(SRV_COMPLETIONS, "{\"model\": \"m\", \"prompt\": [1, 2, -3]}", 400, "prompt[2]",
              "token id");
    parse_bad(SRV_COMPLETIONS, "{\"model\": \"m\", \"prompt\": \"a\", \"echo\": true}", 400, "echo",
              "not supported");
    parse_bad(SRV_COMPLETIONS, "{\"model\": \"m\", \"prompt\": \"\"}", 400, "prompt",
              "empty prompt");
    parse_bad(SRV_COMPLETIONS, "{\"model\": \"m\"}", 400, "prompt", "required");
    /* Chat fields are not completions fields. */
    parse_bad(SRV_COMPLETIONS, "{\"model\": \"m\", \"prompt\": \"a\", \"messages\": []}", 400,
              "messages", "unrecognized");
#undef CHAT
    free(long_stop);
}

Test(serve_request, bounds_on_counts)
{
    struct cru_buf b = CRU_BUF_INIT;
    /* One message more than the bound. */
    cru_buf_puts(&b, "{\"model\": \"m\", \"messages\": [");
    for (int i = 0; i <= SRV_MESSAGES_MAX; i++)
        cru_buf_printf(&b, "%s{\"role\": \"user\", \"content\": \"a\"}", i ? "," : "");
    cru_buf_puts(&b, "]}");
    parse_bad(SRV_CHAT, b.data, 400, "messages", "4097 messages (at most 4096)");
    /* Values past the bound are refused before jansson builds them. */
    cru_buf_reset(&b);
    cru_buf_puts(&b, "{\"model\": \"m\", \"prompt\": [");
    for (size_t i = 0; i <= SRV_JSON_VALUES_MAX; i++)
        cru_buf_puts(&b, i ? ",0" : "0");
    cru_buf_puts(&b, "]}");
    parse_bad(SRV_COMPLETIONS, b.data, 400, "", "JSON values (at most 1048576)");
    cru_buf_free(&b);
}

Test(serve_request, error_body_is_openai_shaped)
{
    struct srv_error e;
    srv_error_set(&e, 404, "invalid_request_error", "model_not_found", "model", "no %s", "such");
    json_t *v = srv_error_json(&e), *err = json_object_get(v, "error");
    cr_assert_eq(json_object_size(v), 1);
    cr_assert_eq(json_object_size(err), 4);
    cr_assert_str_eq(json_string_value(json_object_get(err, "message")), "no such");
    cr_assert_str_eq(json_string_value(json_object_get(err, "type")), "invalid_request_error");
    cr_assert_str_eq(json_string_value(json_object_get(err, "param")), "model");
    cr_assert_str_eq(json_string_value(json_object_get(err, "code")), "model_not_found");
    json_decref(v);
    srv_error_set(&e, 400, "invalid_request_error", NULL, NULL, "x");
    v = srv_error_json(&e);
    err = json_object_get(v, "error");
    cr_assert(json_is_null(json_object_get(err, "param")) &&
              json_is_null(json_object_get(err, "code")));
    json_decref(v);
}

/* ---- replies ---- */

static const uint8_t digest_a[32] = { 1 }, digest_b[32] = { 2 };

static const char two_calls[] =
    "Sure.\n<tool_call>\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls  -l\"}}\n"
    "</tool_call>\n<tool_call>\n{\"arguments\": {\"why\": \"done\"}, \"name\": \"submit\"}\n"
    "</tool_call>";

Test(serve_reply, tool_calls_with_stable_ids)
{
    struct srv_reply r, again, other;
    cr_assert_eq(srv_reply_split(two_calls, strlen(two_calls), true, digest_a, 0, &r), 0);
    cr_assert_str_eq(r.content, "Sure.", "the template's newline before a call is not content");
    cr_assert_eq(json_array_size(r.tool_calls), 2);
    json_t *c0 = json_array_get(r.tool_calls, 0), *c1 = json_array_get(r.tool_calls, 1);
    json_t *f0 = json_object_get(c0, "function"), *f1 = json_object_get(c1, "function");
    cr_assert_str_eq(json_string_value(json_object_get(c0, "type")), "function");
    cr_assert_str_eq(json_string_value(json_object_get(f0, "name")), "bash");
    /* The template's own form: the model's text, spaces and all. */
    cr_assert_str_eq(json_string_value(json_object_get(f0, "arguments")),
                     "{\"command\": \"ls  -l\"}");
    /* Another form: the object serialised as the template's tojson. */
    cr_assert_str_eq(json_string_value(json_object_get(f1, "name")), "submit");
    cr_assert_str_eq(json_string_value(json_object_get(f1, "arguments")), "{\"why\": \"done\"}");
    const char *id0 = json_string_value(json_object_get(c0, "id"));
    const char *id1 = json_string_value(json_object_get(c1, "id"));
    cr_assert_eq(strlen(id0), 29);
    cr_assert_eq(strncmp(id0, "call_", 5), 0);
    cr_assert_str_neq(id0, id1);
    /* The same request gets the same ids; another request or choice, others. */
    cr_assert_eq(srv_reply_split(two_calls, strlen(two_calls), true, digest_a, 0, &again), 0);
    cr_assert(json_equal(r.tool_calls, again.tool_calls));
    cr_assert_eq(srv_reply_split(two_calls, strlen(two_calls), true, digest_b, 0, &other), 0);
    cr_assert_str_neq(json_string_value(json_object_get(json_array_get(other.tool_calls, 0), "id")),
                      id0);
    srv_reply_free(&other);
    cr_assert_eq(srv_reply_split(two_calls, strlen(two_calls), true, digest_a, 1, &other), 0);
    cr_assert_str_neq(json_string_value(json_object_get(json_array_get(other.tool_calls, 0), "id")),
                      id0);
    srv_reply_free(&other);
    srv_reply_free(&again);
    srv_reply_free(&r);
    /* With call parsing off (no tools, or tool_choice none) all of it is content. */
    cr_assert_eq(srv_reply_split(two_calls, strlen(two_calls), false, digest_a, 0, &r), 0);
    cr_assert_null(r.tool_calls);
    cr_assert_str_eq(r.content, two_calls);
    srv_reply_free(&r);
}

Test(serve_reply, a_call_that_does_not_parse_leaves_all_text_as_content)
{
    static const char *const bad[] = {
        "<tool_call>\n{\"name\": \"bash\", \"arguments\": {oops}}\n</tool_call>",
        "<tool_call>\n{\"name\": \"bash\", \"arguments\": {}}\n</tool_call> and more",
        "<tool_call>\n{\"name\": \"bash\", \"arguments\": {}}\n",
        "<tool_call>\n{\"name\": \"bash\", \"arguments\": \"{}\"}\n</tool_call>",
        "<tool_call>\n{\"name\": \"bash\", \"arguments\": {}, \"x\": 1}\n</tool_call>",
        "<tool_call>\n[\"bash\"]\n</tool_call>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct srv_reply r;
        cr_assert_eq(srv_reply_split(bad[i], strlen(bad[i]), true, digest_a, 0, &r), 0);
        cr_assert_null(r.tool_calls, "%s", bad[i]);
        cr_assert_str_eq(r.content, bad[i]);
        srv_reply_free(&r);
    }
}

/* A call returned by the server, sent back by the client as OpenAI clients do, renders to the
 * text the model sampled: the context stays append-only. */
Test(serve_reply, returned_calls_render_back_exactly)
{
    static const char *const replies[] = {
        "<tool_call>\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls  -l\", \"n\": "
        "1.50}}\n</tool_call>",
        "Let me look.\n<tool_call>\n{\"name\": \"view\", \"arguments\": {\"path\": \"a.c\"}}\n"
        "</tool_call>",
        /* The control: a call written in another form is returned as the object, which the
         * template renders in its own form, not as sampled. */
        "<tool_call>\n{\"arguments\": {\"path\": \"a.c\"}, \"name\": \"view\"}\n</tool_call>",
    };
    for (size_t i = 0; i < 3; i++) {
        struct srv_reply rep;
        cr_assert_eq(srv_reply_split(replies[i], strlen(replies[i]), true, digest_a, 0, &rep), 0);
        cr_assert_eq(json_array_size(rep.tool_calls), 1, "%s", replies[i]);
        json_t *msg = json_pack("{s:s, s:s%, s:O}", "role", "assistant", "content", rep.content,
                                rep.content_len, "tool_calls", rep.tool_calls);
        json_t *body =
            json_pack("{s:s, s:[{s:s, s:s}, o, {s:s, s:s}], s:[{s:s, s:{s:s}}, "
                      "{s:s, s:{s:s}}]}",
                      "model", "m", "messages", "role", "user", "content", "go", msg, "role",
                      "tool", "content", "ok", "tools", "type", "function", "function", "name",
                      "bash", "type", "function", "function", "name", "view");
        char *text = json_dumps(body, 0);
        struct srv_request r;
        parse_ok(&r, SRV_CHAT, text);
        struct cru_buf out = CRU_BUF_INIT;
        cr_assert_eq(tok_chat_render(&r.chat, r.chat.n_msgs, true, &out, NULL), 0);
        char *want = NULL;
        cr_assert_eq(cru_str_printf(&want, "<|im_start|>assistant\n%s<|im_end|>", replies[i]), 0);
        if (i < 2)
            cr_assert(strstr(out.data, want), "%s\nnot in\n%s", want, out.data);
        else
            cr_assert_null(strstr(out.data, want), "the control rendered as sampled");
        free(want);
        cru_buf_free(&out);
        srv_request_free(&r);
        free(text);
        json_decref(body);
        srv_reply_free(&rep);
    }
}

Test(serve_reply, settled_content_while_streaming)
{
    cr_assert_eq(srv_reply_settled("abc", 3, false), 3);
    cr_assert_eq(srv_reply_settled("abc\n", 4, true), 3, "a newline may precede a call");
    cr_assert_eq(srv_reply_settled("abc\n<tool", 9, true), 3);
    cr_assert_eq(srv_reply_settled("abc<tool_ca", 11, true), 3);
    cr_assert_eq(srv_reply_settled("abc\n\n<tool_call>{", 17, true), 4);
    cr_assert_eq(srv_reply_settled("abc <b>", 7, true), 7);
    cr_assert_eq(srv_reply_settled("abc\nd", 5, true), 5);
}

Test(serve_reply, stop_strings_in_a_growing_text)
{
    struct srv_request r;
    parse_ok(&r, SRV_COMPLETIONS,
             "{\"model\": \"m\", \"prompt\": \"p\", \"stop\": [\"END\", \"ab\"]}");
    static const char text[] = "xxEN abD ENDab";
    size_t at = 0;
    cr_assert(srv_stop_find(&r, text, strlen(text), 0, &at));
    cr_assert_eq(at, 5, "the first to occur");
    /* Grown a byte at a time, the first one completed is found when it completes. */
    bool found = false;
    size_t n;
    for (n = 1; n <= strlen(text) && !found; n++)
        found = srv_stop_find(&r, text, n, n - 1, &at);
    cr_assert(found);
    cr_assert_eq(n - 1, 7);
    cr_assert_eq(at, 5);
    cr_assert_eq(srv_stop_hold(&r, "xxEN", 4), 2, "'EN' may begin 'END'");
    cr_assert_eq(srv_stop_hold(&r, "xxa", 3), 1);
    cr_assert_eq(srv_stop_hold(&r, "xxEND", 5), 0, "a whole stop string is found, not held");
    srv_request_free(&r);
}

/* ---- HTTP, end to end ---- */

static char tmpdir[] = "/tmp/crucible-test-serve-XXXXXX";
static char ckpt[4200];

static void setup(void)
{
    tiny_qwen_checkpoint(tmpdir, ckpt, sizeof(ckpt), 11);
}

static void teardown(void)
{
    cru_remove_tree(tmpdir);
}

TestSuite(serve_http, .init = setup, .fini = teardown, .timeout = 180);

/* The options every test's server starts from. */
static struct srv_server_opts test_opts(void)
{
    struct srv_server_opts o = SRV_SERVER_OPTS_INIT;
    o.model_dir = ckpt;
    o.model_name = "tiny";
    o.port = 0;
    o.threads = 1;
    o.seqs = 4;
    return o;
}

static struct srv_server *start_with(const struct srv_server_opts *o)
{
    struct srv_server *s = NULL;
    cr_assert_eq(srv_server_start(&s, o), 0, "%s", cru_err_msg());
    cr_assert_gt(srv_server_port(s), 0);
    return s;
}

static struct srv_server *start(uint32_t max_connections, size_t max_body, uint32_t body_timeout,
                                uint32_t idle_timeout)
{
    struct srv_server_opts o = test_opts();
    o.max_connections = max_connections;
    o.max_body = max_body;
    o.body_timeout_s = body_timeout;
    o.idle_timeout_s = idle_timeout;
    return start_with(&o);
}

static int dial(uint16_t port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct timeval tv = { .tv_sec = 120 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s", strerror(errno));
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        cr_assert_gt(k, 0, "send: %s", strerror(errno));
        p += k;
        n -= (size_t)k;
    }
}

struct res {
    int status;
    char *head; /* the status line and headers */
    struct cru_buf body;
};

static void res_free(struct res *r)
{
    free(r->head);
    cru_buf_free(&r->body);
}

/* Reads a response to its end (the requests say Connection: close) and undoes chunking. */
static void read_response(int fd, struct res *out)
{
    struct cru_buf raw = CRU_BUF_INIT;
    char buf[65536];
    ssize_t k;
    while ((k = recv(fd, buf, sizeof(buf), 0)) > 0)
        cru_buf_append(&raw, buf, (size_t)k);
    cr_assert_geq(k, 0, "recv: %s", strerror(errno));
    cr_assert_not_null(raw.data, "no response");
    const char *sep = strstr(raw.data, "\r\n\r\n");
    cr_assert_not_null(sep, "no end of headers in %s", raw.data);
    memset(out, 0, sizeof(*out));
    cr_assert_eq(sscanf(raw.data, "HTTP/1.1 %d", &out->status), 1, "%s", raw.data);
    cru_str_ndup(&out->head, raw.data, (size_t)(sep - raw.data));
    const char *p = sep + 4, *end = raw.data + raw.len;
    if (strstr(out->head, "Transfer-Encoding: chunked")) {
        for (;;) {
            char *next;
            unsigned long n = strtoul(p, &next, 16);
            p = strstr(next, "\r\n");
            cr_assert_not_null(p, "a chunk without its size line");
            p += 2;
            if (n == 0)
                break;
            cr_assert_leq(n, (size_t)(end - p), "a chunk past the end");
            cru_buf_append(&out->body, p, n);
            p += n + 2;
        }
    } else {
        cru_buf_append(&out->body, p, (size_t)(end - p));
    }
    cru_buf_free(&raw);
}

static void http(uint16_t port, const char *method, const char *path, const char *body,
                 struct res *out)
{
    int fd = dial(port);
    char *req = NULL;
    cr_assert_eq(cru_str_printf(&req,
                                "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                                "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                                method, path, body ? strlen(body) : 0, body ? body : ""),
                 0);
    send_all(fd, req, strlen(req));
    read_response(fd, out);
    free(req);
    close(fd);
}

static json_t *json_of(const struct res *r)
{
    json_t *v = NULL;
    cr_assert_eq(cru_json_parse(&v, cru_buf_cstr(&r->body), r->body.len, "response"), 0, "%s: %s",
                 cru_err_msg(), cru_buf_cstr(&r->body));
    return v;
}

/* An OpenAI error body with STATUS and, when not NULL, CODE. */
static void expect_error(const struct res *r, int status, const char *code)
{
    cr_assert_eq(r->status, status, "status %d: %s", r->status, cru_buf_cstr(&r->body));
    cr_assert(strstr(r->head, "Content-Type: application/json"), "%s", r->head);
    json_t *v = json_of(r), *e = json_object_get(v, "error");
    cr_assert(json_is_object(e), "%s", cru_buf_cstr(&r->body));
    cr_assert(json_is_string(json_object_get(e, "message")));
    cr_assert(json_is_string(json_object_get(e, "type")));
    cr_assert_not_null(json_object_get(e, "param"));
    if (code)
        cr_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
    json_decref(v);
}

/* A completion as one choice's text and ids, from a response or a stream. */
struct completion {
    char *text;
    json_t *ids;
    char *finish;
};

static void completion_free(struct completion *c)
{
    free(c->text);
    json_decref(c->ids);
    free(c->finish);
}

static json_t *post(uint16_t port, const char *path, const char *body)
{
    struct res r;
    http(port, "POST", path, body, &r);
    cr_assert_eq(r.status, 200, "%s: %s", body, cru_buf_cstr(&r.body));
    json_t *v = json_of(&r);
    res_free(&r);
    return v;
}

static void choice_of(const json_t *resp, size_t i, struct completion *out)
{
    json_t *c = json_array_get(json_object_get(resp, "choices"), i);
    json_t *msg = json_object_get(c, "message");
    json_t *text = msg ? json_object_get(msg, "content") : json_object_get(c, "text");
    cr_assert(json_is_string(text), "choice %zu has no text", i);
    out->text = strdup(json_string_value(text));
    out->ids = json_incref(json_object_get(c, "token_ids"));
    out->finish = strdup(json_string_value(json_object_get(c, "finish_reason")));
}

/* The events of a stream, the chunks of choice INDEX added up. */
static void stream_choice(uint16_t port, const char *path, const char *body, size_t index,
                          struct completion *out, json_t **usage, json_t **prompt_ids)
{
    struct res r;
    http(port, "POST", path, body, &r);
    cr_assert_eq(r.status, 200, "%s", cru_buf_cstr(&r.body));
    cr_assert(strstr(r.head, "Content-Type: text/event-stream"), "%s", r.head);
    struct cru_buf text = CRU_BUF_INIT;
    out->ids = json_array();
    out->finish = NULL;
    bool done = false;
    char *save = NULL;
    for (char *ev = strtok_r(r.body.data, "\n", &save); ev; ev = strtok_r(NULL, "\n", &save)) {
        cr_assert(!done, "an event after [DONE]");
        cr_assert_eq(strncmp(ev, "data: ", 6), 0, "not an event: %s", ev);
        if (strcmp(ev + 6, "[DONE]") == 0) {
            done = true;
            continue;
        }
        json_t *v = NULL;
        cr_assert_eq(cru_json_parse(&v, ev + 6, strlen(ev + 6), "chunk"), 0, "%s", ev);
        cr_assert_null(json_object_get(v, "error"), "%s", ev);
        if (prompt_ids && json_object_get(v, "prompt_token_ids"))
            *prompt_ids = json_incref(json_object_get(v, "prompt_token_ids"));
        json_t *choices = json_object_get(v, "choices");
        if (json_array_size(choices) == 0) {
            if (usage)
                *usage = json_incref(json_object_get(v, "usage"));
            json_decref(v);
            continue;
        }
        json_t *c = json_array_get(choices, 0), *delta = json_object_get(c, "delta");
        cr_assert_eq(json_array_size(choices), 1, "a chunk of several choices");
        if ((size_t)json_integer_value(json_object_get(c, "index")) != index) {
            json_decref(v);
            continue;
        }
        json_t *t = delta ? json_object_get(delta, "content") : json_object_get(c, "text");
        if (json_is_string(t))
            cru_buf_append(&text, json_string_value(t), json_string_length(t));
        json_array_extend(out->ids, json_object_get(c, "token_ids"));
        json_t *f = json_object_get(c, "finish_reason");
        if (json_is_string(f)) {
            cr_assert_null(out->finish, "two finish reasons");
            out->finish = strdup(json_string_value(f));
        }
        json_decref(v);
    }
    cr_assert(done, "the stream did not end with [DONE]");
    cr_assert_not_null(out->finish, "the stream gave no finish reason");
    out->text = cru_buf_detach(&text, NULL);
    res_free(&r);
}

static void stream_of(uint16_t port, const char *path, const char *body, struct completion *out,
                      json_t **usage, json_t **prompt_ids)
{
    stream_choice(port, path, body, 0, out, usage, prompt_ids);
}

/* The text of C's ids as the server derives it: decoded, less the end-of-turn id that ends a
 * choice that stopped. */
static char *decode(struct tok *t, const struct completion *c)
{
    size_t n = json_array_size(c->ids);
    int32_t *v = calloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = (int32_t)json_integer_value(json_array_get(c->ids, i));
    if (n && strcmp(c->finish, "stop") == 0 && tok_is_special(t, v[n - 1]))
        n--;
    struct cru_buf bytes = CRU_BUF_INIT, text = CRU_BUF_INIT;
    cr_assert_eq(tok_decode(t, v, n, &bytes), 0, "%s", cru_err_msg());
    cr_assert_eq(tok_utf8_lossy(cru_buf_cstr(&bytes), bytes.len, &text), 0);
    free(v);
    cru_buf_free(&bytes);
    char *s = cru_buf_detach(&text, NULL);
    return s;
}

static const char chat_body[] =
    "{\"model\": \"tiny\", \"messages\": [{\"role\": \"system\", \"content\": \"You are terse.\"}, "
    "{\"role\": \"user\", \"content\": \"Name three colours.\"}], \"temperature\": 0, "
    "\"max_tokens\": 24, \"return_token_ids\": true%s}";

Test(serve_http, models_and_refusals)
{
    struct srv_server *s = start(8, 4096, 30, 60);
    uint16_t port = srv_server_port(s);
    struct res r;
    http(port, "GET", "/v1/models", NULL, &r);
    cr_assert_eq(r.status, 200);
    json_t *v = json_of(&r), *m = json_array_get(json_object_get(v, "data"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(v, "object")), "list");
    cr_assert_str_eq(json_string_value(json_object_get(m, "id")), "tiny");
    cr_assert_eq(json_integer_value(json_object_get(m, "max_model_len")), 4096);
    json_decref(v);
    res_free(&r);
    http(port, "GET", "/v1/models/tiny", NULL, &r);
    cr_assert_eq(r.status, 200);
    res_free(&r);

    http(port, "GET", "/v1/nothing", NULL, &r);
    expect_error(&r, 404, NULL);
    res_free(&r);
    http(port, "GET", "/v1/models/other", NULL, &r);
    expect_error(&r, 404, "model_not_found");
    res_free(&r);
    http(port, "GET", "/v1/chat/completions", NULL, &r);
    expect_error(&r, 405, "method_not_allowed");
    cr_assert(strstr(r.head, "Allow: POST"), "%s", r.head);
    res_free(&r);
    http(port, "POST", "/v1/chat/completions", "{\"model\": \"tiny\", \"messages\": [", &r);
    expect_error(&r, 400, NULL);
    res_free(&r);
    http(port, "POST", "/v1/chat/completions",
         "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": 5}]}", &r);
    expect_error(&r, 400, NULL);
    cr_assert(strstr(r.body.data, "\"param\":\"messages[0].content\""), "%s", r.body.data);
    res_free(&r);
    http(port, "POST", "/v1/chat/completions",
         "{\"model\": \"other\", \"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}", &r);
    expect_error(&r, 404, "model_not_found");
    res_free(&r);
    http(port, "POST", "/v1/chat/completions",
         "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"a\"}], "
         "\"max_tokens\": 4096}",
         &r);
    expect_error(&r, 400, "context_length_exceeded");
    res_free(&r);
    http(port, "POST", "/v1/completions", "{\"model\": \"tiny\", \"prompt\": [151669]}", &r);
    expect_error(&r, 400, NULL);
    res_free(&r);

    /* A body over the limit: refused from its Content-Length, before it is read (the client
     * waits for the answer to its headers, as one that sends "Expect: 100-continue" does). */
    char *big = malloc(8192);
    memset(big, ' ', 8191);
    big[8191] = '\0';
    int fd = dial(port);
    static const char head_len[] = "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                                   "Connection: close\r\nContent-Length: 8191\r\n\r\n";
    send_all(fd, head_len, strlen(head_len));
    read_response(fd, &r);
    close(fd);
    expect_error(&r, 413, "request_too_large");
    res_free(&r);
    /* And chunked, with no length given: the rest is read and dropped once it passes the
     * limit, then refused (libmicrohttpd answers only before a body or after it). */
    fd = dial(port);
    static const char head[] = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    send_all(fd, head, strlen(head));
    for (int i = 0; i < 4; i++) {
        struct cru_buf chunk = CRU_BUF_INIT;
        cru_buf_printf(&chunk, "%x\r\n", 2000);
        cru_buf_append(&chunk, big, 2000);
        cru_buf_puts(&chunk, "\r\n");
        send_all(fd, chunk.data, chunk.len);
        cru_buf_free(&chunk);
    }
    send_all(fd, "0\r\n\r\n", 5);
    read_response(fd, &r);
    close(fd);
    expect_error(&r, 413, "request_too_large");
    res_free(&r);
    /* The control: a body within the limit is read and parsed. */
    big[4000] = '\0';
    http(port, "POST", "/v1/completions", big, &r);
    expect_error(&r, 400, NULL);
    res_free(&r);
    free(big);
    srv_server_free(s);
}

Test(serve_http, chat_ids_decode_to_the_text_and_the_stream_adds_up)
{
    struct srv_server *s = start(8, SRV_BODY_MAX, 30, 60);
    uint16_t port = srv_server_port(s);
    struct tok *t = qwen_load();
    char body[1024];
    snprintf(body, sizeof(body), chat_body, ", \"logprobs\": true, \"top_logprobs\": 2");
    json_t *resp = post(port, "/v1/chat/completions", body);
    cr_assert_str_eq(json_string_value(json_object_get(resp, "object")), "chat.completion");
    cr_assert_str_eq(json_string_value(json_object_get(resp, "model")), "tiny");
    struct completion c;
    choice_of(resp, 0, &c);
    size_t n = json_array_size(c.ids);
    cr_assert_gt(n, 0);
    char *decoded = decode(t, &c);
    cr_assert_str_eq(decoded, c.text, "the token ids do not decode to the text");
    free(decoded);
    /* The prompt's ids are the conversation rendered and encoded. */
    struct srv_request r;
    snprintf(body, sizeof(body), chat_body, "");
    parse_ok(&r, SRV_CHAT, body);
    struct tok_ids want = TOK_IDS_INIT;
    cr_assert_eq(tok_chat_encode(t, &r.chat, r.chat.n_msgs, true, &want), 0);
    json_t *pids = json_object_get(resp, "prompt_token_ids");
    cr_assert_eq(json_array_size(pids), want.n);
    for (size_t i = 0; i < want.n; i++)
        cr_assert_eq(json_integer_value(json_array_get(pids, i)), want.v[i]);
    json_t *usage = json_object_get(resp, "usage");
    cr_assert_eq(json_integer_value(json_object_get(usage, "prompt_tokens")), (json_int_t)want.n);
    cr_assert_eq(json_integer_value(json_object_get(usage, "completion_tokens")), (json_int_t)n);
    /* One log-prob per id, its bytes the id's, its alternatives the model's likeliest. */
    json_t *lps = json_object_get(
        json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "logprobs"),
        "content");
    cr_assert_eq(json_array_size(lps), n);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(lps, i), *top = json_object_get(e, "top_logprobs");
        size_t len;
        const char *bytes =
            tok_token_bytes(t, (int32_t)json_integer_value(json_array_get(c.ids, i)), &len);
        cr_assert_eq(json_array_size(json_object_get(e, "bytes")), len);
        for (size_t k = 0; k < len; k++)
            cr_assert_eq(json_integer_value(json_array_get(json_object_get(e, "bytes"), k)),
                         (unsigned char)bytes[k]);
        cr_assert_eq(json_array_size(top), 2);
        double lp = json_number_value(json_object_get(e, "logprob"));
        cr_assert_leq(lp, 0);
        /* Greedy: the sampled id is the likeliest. */
        cr_assert_float_eq(
            lp, json_number_value(json_object_get(json_array_get(top, 0), "logprob")), 1e-6);
    }

    /* The same request streamed: the deltas add up to the text, the chunks' ids to the ids. */
    struct completion sc;
    json_t *su = NULL, *sp = NULL;
    snprintf(body, sizeof(body), chat_body,
             ", \"stream\": true, \"stream_options\": {\"include_usage\": true}");
    stream_of(port, "/v1/chat/completions", body, &sc, &su, &sp);
    cr_assert_str_eq(sc.text, c.text);
    cr_assert(json_equal(sc.ids, c.ids), "the stream's ids differ");
    cr_assert_str_eq(sc.finish, c.finish);
    cr_assert(json_equal(sp, pids), "the stream's prompt ids differ");
    cr_assert_eq(json_integer_value(json_object_get(su, "completion_tokens")), (json_int_t)n);

    /* The control: sampled at temperature 1, two seeds give two texts (so equal texts above
     * mean something), and one seed gives one text. */
    struct completion a, b, a2;
    static const char sampled[] =
        "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
        "\"max_tokens\": 16, \"seed\": %d, \"return_token_ids\": true}";
    snprintf(body, sizeof(body), sampled, 1);
    json_t *ra = post(port, "/v1/chat/completions", body);
    json_t *ra2 = post(port, "/v1/chat/completions", body);
    snprintf(body, sizeof(body), sampled, 2);
    json_t *rb = post(port, "/v1/chat/completions", body);
    choice_of(ra, 0, &a);
    choice_of(ra2, 0, &a2);
    choice_of(rb, 0, &b);
    cr_assert(!json_equal(a.ids, b.ids), "two seeds sampled the same ids");
    cr_assert(json_equal(a.ids, a2.ids), "one seed sampled two sequences");
    completion_free(&a);
    completion_free(&a2);
    completion_free(&b);
    json_decref(ra);
    json_decref(ra2);
    json_decref(rb);

    json_decref(su);
    json_decref(sp);
    completion_free(&sc);
    completion_free(&c);
    tok_ids_free(&want);
    srv_request_free(&r);
    json_decref(resp);
    tok_free(t);
    srv_server_free(s);
}

/* Declared tools are rendered into the prompt; a reply without calls is all content. */
Test(serve_http, tools_in_the_prompt)
{
    struct srv_server *s = start(8, SRV_BODY_MAX, 30, 60);
    static const char body[] =
        "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"List the "
        "files.\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"bash\", "
        "\"parameters\": {\"type\": \"object\", \"properties\": {\"command\": {\"type\": "
        "\"string\"}}}}}], \"temperature\": 0, \"max_tokens\": 8, \"return_token_ids\": true}";
    json_t *resp = post(srv_server_port(s), "/v1/chat/completions", body);
    struct tok *t = qwen_load();
    struct srv_request r;
    parse_ok(&r, SRV_CHAT, body);
    struct tok_ids want = TOK_IDS_INIT;
    cr_assert_eq(tok_chat_encode(t, &r.chat, r.chat.n_msgs, true, &want), 0);
    json_t *pids = json_object_get(resp, "prompt_token_ids");
    cr_assert_eq(json_array_size(pids), want.n);
    for (size_t i = 0; i < want.n; i++)
        cr_assert_eq(json_integer_value(json_array_get(pids, i)), want.v[i]);
    struct completion c = { 0 };
    c.ids = pids;
    c.finish = strdup("length");
    char *prompt = decode(t, &c);
    cr_assert(strstr(prompt, "<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"bash\""),
              "%s", prompt);
    free(prompt);
    free(c.finish);
    json_t *msg = json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "message");
    cr_assert(json_is_string(json_object_get(msg, "content")));
    cr_assert_null(json_object_get(msg, "tool_calls"), "a random model wrote a tool call");
    tok_ids_free(&want);
    srv_request_free(&r);
    tok_free(t);
    json_decref(resp);
    srv_server_free(s);
}

Test(serve_http, stop_strings_cut_the_text_streamed_or_not)
{
    struct srv_server *s = start(8, SRV_BODY_MAX, 30, 60);
    uint16_t port = srv_server_port(s);
    char body[1024];
    snprintf(body, sizeof(body), chat_body, "");
    json_t *resp = post(port, "/v1/chat/completions", body);
    struct completion full;
    choice_of(resp, 0, &full);
    size_t len = strlen(full.text);
    cr_assert_gt(len, 12, "too short a text to cut: %s", full.text);
    /* A stop string from the middle of the text, ASCII-safe in a JSON string. */
    char stop[4] = { 0 };
    size_t at = 0;
    for (size_t i = len / 3; i + 3 <= len && !at; i++) {
        bool plain = true;
        for (size_t k = 0; k < 3; k++)
            plain = plain && full.text[i + k] >= 'a' && full.text[i + k] <= 'z';
        if (plain)
            at = i;
    }
    if (!at) {
        /* No three lowercase letters in a row past a third: cut at the first byte found. */
        for (size_t i = len / 3; i < len && !at; i++)
            if (full.text[i] >= 'a' && full.text[i] <= 'z')
                at = i;
        cr_assert_gt(at, 0, "no ASCII letter to stop at in %s", full.text);
        stop[0] = full.text[at];
    } else {
        memcpy(stop, full.text + at, 3);
    }
    size_t first = (size_t)(strstr(full.text, stop) - full.text);
    char extra[64];
    snprintf(extra, sizeof(extra), ", \"stop\": [\"%s\"]", stop);
    snprintf(body, sizeof(body), chat_body, extra);
    json_t *cut = post(port, "/v1/chat/completions", body);
    struct completion c;
    choice_of(cut, 0, &c);
    cr_assert_eq(strlen(c.text), first, "cut at %zu, not %zu: '%s' of '%s'", strlen(c.text), first,
                 c.text, full.text);
    cr_assert_eq(strncmp(c.text, full.text, first), 0);
    cr_assert_str_eq(c.finish, "stop");
    /* Streamed, the stop string is held back until it is known, and never sent. */
    struct completion sc;
    snprintf(extra, sizeof(extra), ", \"stop\": [\"%s\"], \"stream\": true", stop);
    snprintf(body, sizeof(body), chat_body, extra);
    stream_of(port, "/v1/chat/completions", body, &sc, NULL, NULL);
    cr_assert_str_eq(sc.text, c.text);
    cr_assert(json_equal(sc.ids, c.ids));
    completion_free(&sc);
    completion_free(&c);
    completion_free(&full);
    json_decref(cut);
    json_decref(resp);
    srv_server_free(s);
}

Test(serve_http, n_choices_use_consecutive_seeds)
{
    struct srv_server *s = start(8, SRV_BODY_MAX, 30, 60);
    uint16_t port = srv_server_port(s);
    static const char fmt[] = "{\"model\": \"tiny\", \"prompt\": \"Once upon a time\", "
                              "\"max_tokens\": 8, \"seed\": %d, \"n\": %d, "
                              "\"return_token_ids\": true}";
    char body[512];
    snprintf(body, sizeof(body), fmt, 40, 2);
    json_t *both = post(port, "/v1/completions", body);
    cr_assert_str_eq(json_string_value(json_object_get(both, "object")), "text_completion");
    cr_assert_eq(json_array_size(json_object_get(both, "choices")), 2);
    struct completion c0, c1, one;
    choice_of(both, 0, &c0);
    choice_of(both, 1, &c1);
    snprintf(body, sizeof(body), fmt, 41, 1);
    json_t *r1 = post(port, "/v1/completions", body);
    choice_of(r1, 0, &one);
    cr_assert(json_equal(c1.ids, one.ids), "choice 1 is not seed + 1");
    cr_assert(!json_equal(c0.ids, c1.ids), "two choices sampled the same ids");
    struct tok *t = qwen_load();
    char *d = decode(t, &c0);
    cr_assert_str_eq(d, c0.text);
    free(d);
    tok_free(t);
    /* The prompt as token ids gives what the text gives. */
    json_t *pids =
        json_object_get(json_array_get(json_object_get(both, "choices"), 0), "prompt_token_ids");
    char *ids_text = json_dumps(pids, JSON_COMPACT);
    snprintf(body, sizeof(body),
             "{\"model\": \"tiny\", \"prompt\": %s, \"max_tokens\": 8, \"seed\": 41, "
             "\"return_token_ids\": true}",
             ids_text);
    json_t *r2 = post(port, "/v1/completions", body);
    struct completion two;
    choice_of(r2, 0, &two);
    cr_assert(json_equal(two.ids, one.ids));
    free(ids_text);
    /* Streamed, each choice's chunks add up to that choice. */
    for (size_t i = 0; i < 2; i++) {
        struct completion sc;
        snprintf(body, sizeof(body),
                 "{\"model\": \"tiny\", \"prompt\": \"Once upon a time\", \"max_tokens\": 8, "
                 "\"seed\": 40, \"n\": 2, \"return_token_ids\": true, \"stream\": true}");
        stream_choice(port, "/v1/completions", body, i, &sc, NULL, NULL);
        cr_assert_str_eq(sc.text, i ? c1.text : c0.text);
        cr_assert(json_equal(sc.ids, i ? c1.ids : c0.ids), "choice %zu streamed other ids", i);
        completion_free(&sc);
    }
    completion_free(&two);
    completion_free(&c0);
    completion_free(&c1);
    completion_free(&one);
    json_decref(r1);
    json_decref(r2);
    json_decref(both);
    srv_server_free(s);
}

Test(serve_http, connections_past_the_limit_get_503)
{
    struct srv_server *s = start(1, SRV_BODY_MAX, 30, 60);
    uint16_t port = srv_server_port(s);
    int held = dial(port);
    /* Wait until the server has taken the held connection. */
    struct res r;
    bool busy = false;
    for (int i = 0; i < 100 && !busy; i++) {
        http(port, "GET", "/health", NULL, &r);
        busy = r.status == 503;
        if (busy)
            expect_error(&r, 503, "server_busy");
        res_free(&r);
        if (!busy)
            usleep(20000);
    }
    cr_assert(busy, "a second connection was served beside the held one");
    /* The control: once the held connection goes, another is served. */
    close(held);
    bool served = false;
    for (int i = 0; i < 100 && !served; i++) {
        http(port, "GET", "/health", NULL, &r);
        served = r.status == 200;
        res_free(&r);
        if (!served)
            usleep(20000);
    }
    cr_assert(served, "the freed connection slot was not reused");
    srv_server_free(s);
}

/* Whether the server has closed FD: reads what is there (nothing is expected) and says. */
static bool closed_by_server(int fd)
{
    char buf[256];
    ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    cr_assert(k <= 0, "an answer came: %.*s", (int)k, buf);
    return k == 0 || (k < 0 && errno == ECONNRESET);
}

Test(serve_http, slow_and_stalled_clients_are_cut_off)
{
    struct srv_server *s = start(8, SRV_BODY_MAX, 1, 2);
    uint16_t port = srv_server_port(s);
    int fd = dial(port);
    static const char head[] = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               "Content-Length: 100\r\n\r\n{";
    send_all(fd, head, strlen(head));
    /* A byte every 300 ms: never idle, but the body's time runs out. */
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int i = 0;
    bool closed = false;
    for (; i < 20 && !closed; i++) {
        if (poll(&p, 1, 300) > 0)
            closed = closed_by_server(fd);
        else if (send(fd, " ", 1, MSG_NOSIGNAL) < 0)
            closed = errno == EPIPE || errno == ECONNRESET;
    }
    cr_assert(closed, "a body that took 6 s was still read");
    cr_assert_geq(i, 3, "cut off before the body's time was up");
    close(fd);
    /* A client that sends half its headers and stops is closed when the idle timeout is up. */
    fd = dial(port);
    send_all(fd, "GET /v1/mod", 11);
    p.fd = fd;
    cr_assert_eq(poll(&p, 1, 5000), 1, "a stalled connection was kept past the idle timeout");
    cr_assert(closed_by_server(fd));
    close(fd);
    /* The control: the server still answers. */
    struct res r;
    http(port, "GET", "/health", NULL, &r);
    cr_assert_eq(r.status, 200);
    res_free(&r);
    srv_server_free(s);
}

static void send_request(int fd, const char *path, const char *body)
{
    char *req = NULL;
    cr_assert_eq(cru_str_printf(&req,
                                "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                "Content-Length: %zu\r\n\r\n%s",
                                path, strlen(body), body),
                 0);
    send_all(fd, req, strlen(req));
    free(req);
}

/* A stream whose client goes stops at its next token: with one sequence at a time, a request
 * queued behind it is answered as soon as the client closes, not when the 4000 tokens asked
 * for would be done (a generation of seconds). */
Test(serve_http, an_abandoned_stream_stops_generating)
{
    struct srv_server_opts o = test_opts();
    o.seqs = 1;
    struct srv_server *s = start_with(&o);
    uint16_t port = srv_server_port(s);
    int stream = dial(port);
    send_request(stream, "/v1/chat/completions",
                 "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
                 "\"max_tokens\": 4000, \"stream\": true}");
    char buf[4096];
    cr_assert_gt(recv(stream, buf, sizeof(buf), 0), 0, "the stream sent nothing");
    int next = dial(port);
    send_request(next, "/v1/completions",
                 "{\"model\": \"tiny\", \"prompt\": \"Hi\", \"max_tokens\": 2}");
    struct pollfd p = { .fd = next, .events = POLLIN };
    /* The control: while the stream's client reads, the request waits behind it. */
    cr_assert_eq(poll(&p, 1, 1000), 0, "answered beside the stream: the engine took two");
    close(stream);
    cr_assert_eq(poll(&p, 1, 5000), 1, "the abandoned stream was still generating after 5 s");
    struct res r;
    read_response(next, &r);
    close(next);
    cr_assert_eq(r.status, 200, "%s", cru_buf_cstr(&r.body));
    res_free(&r);
    srv_server_free(s);
}

struct pending {
    uint16_t port;
    struct res r;
};

static void *long_request(void *arg)
{
    struct pending *p = arg;
    http(p->port, "POST", "/v1/chat/completions",
         "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
         "\"max_tokens\": 3000}",
         &p->r);
    return NULL;
}

Test(serve_http, stopping_answers_what_is_in_flight)
{
    struct srv_server *s = start(8, SRV_BODY_MAX, 30, 60);
    struct pending p = { srv_server_port(s), { 0 } };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, long_request, &p), 0);
    usleep(500000);
    srv_server_free(s);
    pthread_join(th, NULL);
    expect_error(&p.r, 503, "server_shutting_down");
    res_free(&p.r);
}
