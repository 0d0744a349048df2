/* fuzz/serve_request: the gateway's request parser and reply splitter on arbitrary bytes.
 *
 * A request body comes from any client that reaches the port. Read as both endpoints' bodies,
 * any input must parse or fail with an error body whose status is 400, 413 or 500 and whose
 * message is not empty, never crash or leak. What parses must hold to every bound the parser
 * states (n, stop strings, log-prob alternatives, messages) and, for chat, render with the
 * chat template: a request the gateway accepts never fails later for its shape. The same bytes
 * are also read as a model's reply: its split into content and tool calls must give content
 * that begins the text, and the content settled while the text grew (srv_reply_settled on each
 * prefix) must never go past it, or a stream would send text the final answer takes back. A
 * stop string found while the text grows byte by byte must be there, and none may have been
 * complete a byte earlier.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "model/chat.h"
#include "serve/reply.h"
#include "serve/request.h"
#include "tests/fuzz/fuzz.h"

/* Inputs past this are read as a request only: the prefix checks are quadratic. */
#define PREFIX_CHECK_MAX 4096

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_serve_request: %s\n", what);
    abort();
}

static void check_error(const struct srv_error *e)
{
    if (e->status != 400 && e->status != 413 && e->status != 500)
        fail("an error with a status other than 400, 413 or 500");
    if (!e->message[0] || !e->type)
        fail("an error without a message or type");
    json_t *body = srv_error_json(e);
    if (!body)
        fail("the error body cannot be built");
    json_decref(body);
}

static void check_request(const struct srv_request *r)
{
    if (!r->model || r->n < 1 || r->n > SRV_N_MAX || r->n_stop > SRV_STOP_MAX ||
        r->top_logprobs > SRV_TOP_LOGPROBS_MAX || r->max_tokens > MDL_MAX_TOKENS)
        fail("a parsed request breaks a stated bound");
    for (size_t i = 0; i < r->n_stop; i++) {
        size_t n = strlen(r->stop[i]);
        if (n < 1 || n > SRV_STOP_BYTES_MAX || n > r->stop_max_len)
            fail("a stop string breaks its bound");
    }
    if (r->endpoint == SRV_CHAT) {
        if (r->chat.n_msgs < 1 || r->chat.n_msgs > SRV_MESSAGES_MAX)
            fail("a conversation breaks its bound");
        struct cru_buf b = CRU_BUF_INIT;
        if (tok_chat_render(&r->chat, r->chat.n_msgs, true, &b, NULL) < 0) {
            fprintf(stderr, "fuzz_serve_request: %s\n", cru_err_msg());
            fail("a conversation that parsed does not render");
        }
        cru_buf_free(&b);
    } else if (!r->prompt == !r->prompt_ids) {
        fail("a completion request without exactly one prompt");
    }
}

static void check_stops(const struct srv_request *r, const char *text, size_t len)
{
    size_t at = 0, before = 0;
    bool found = false;
    size_t n = 1;
    for (; n <= len && !found; n++)
        found = srv_stop_find(r, text, n, n - 1, &at);
    if (found) {
        n--; /* the text's length when a stop string completed */
        bool match = false;
        for (size_t i = 0; i < r->n_stop && !match; i++) {
            size_t m = strlen(r->stop[i]);
            match = at + m <= n && memcmp(text + at, r->stop[i], m) == 0;
        }
        if (!match)
            fail("a stop string was found where none is");
        if (srv_stop_find(r, text, n - 1, 0, &before))
            fail("a stop string completed earlier was missed");
    }
    if (srv_stop_hold(r, text, len) >= (r->stop_max_len ? r->stop_max_len : 1))
        fail("more held back than the longest stop string");
}

static void check_split(const char *text, size_t len)
{
    static const uint8_t digest[32] = { 0 };
    struct srv_reply rep;
    for (int calls = 0; calls < 2; calls++) {
        if (srv_reply_split(text, len, calls, digest, 0, &rep) < 0)
            fail("the split failed");
        if (rep.content_len > len || memcmp(rep.content, text, rep.content_len) != 0)
            fail("the content does not begin the text");
        if (!calls && (rep.tool_calls || rep.content_len != len))
            fail("calls were taken with call parsing off");
        for (size_t n = 0; len <= PREFIX_CHECK_MAX && n <= len; n++)
            if (srv_reply_settled(text, n, calls) > rep.content_len)
                fail("text settled as content while streaming is not in the final content");
        srv_reply_free(&rep);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    for (int ep = 0; ep < 2; ep++) {
        struct srv_request r;
        struct srv_error e;
        if (srv_request_parse(&r, ep ? SRV_COMPLETIONS : SRV_CHAT, body, size, &e) < 0) {
            check_error(&e);
            continue;
        }
        check_request(&r);
        if (size <= PREFIX_CHECK_MAX)
            check_stops(&r, body, size);
        srv_request_free(&r);
    }
    check_split(body, size);
    return 0;
}
