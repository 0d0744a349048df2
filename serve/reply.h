/* reply: what the model said, in the OpenAI API's shapes: a reply's text split into content and
 * tool calls, stop strings found in a growing text, and the response bodies and stream chunks
 * of both endpoints.
 *
 * Text is derived from ids, never the other way round: a reply's text is its sampled ids
 * decoded (without the final stop id), and the tool calls returned are those written in it,
 * with their arguments kept as the text the model wrote whenever the call has the chat
 * template's own form, so that a client that sends the call back gets the sampled tokens
 * rendered again. Nothing here runs the model; the token strings of log-probs come from the
 * tokenizer passed in.
 */
#ifndef CRU_SERVE_REPLY_H
#define CRU_SERVE_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "model/sample.h"
#include "model/tokenizer.h"
#include "serve/request.h"

/* A reply split into content and tool calls. */
struct srv_reply {
    char *content; /* owned; "" when the reply is all tool calls */
    size_t content_len;
    json_t *tool_calls; /* an array of {"id", "type", "function": {"name", "arguments"}}, or
                           NULL when the reply holds none */
};

void srv_reply_free(struct srv_reply *r);

/* Splits LEN bytes of TEXT (valid UTF-8) into OUT. Unless PARSE_CALLS, all of it is content.
 * Otherwise, as the Qwen3 template writes them, each <tool_call>...</tool_call> block must
 * hold a JSON object of exactly "name" (a string) and "arguments" (an object), and only white
 * space may follow a block; the content is the text before the first block, less the one
 * newline the template puts there. A call's arguments are the model's own text when the block
 * reads {"name": "NAME", "arguments": ARGS} as the template renders it, else the object
 * serialised as the template's tojson would. Its id is "call_" and 24 hex digits of SHA-256
 * over DIGEST (the request's), CHOICE and the call's index: the same request gets the same
 * ids. If any block breaks these rules, or there are more than SRV_CALLS_MAX, no call is
 * taken and the whole text is the content. Fails only for lack of memory. */
int srv_reply_split(const char *text, size_t len, bool parse_calls, const uint8_t digest[32],
                    uint32_t choice, struct srv_reply *out);

/* While a reply is still growing: how many bytes at the start of TEXT are sure to be content
 * of the final split, whatever follows: all of it unless PARSE_CALLS; otherwise the text up
 * to the first "<tool_call>" (less a newline before it), or, when there is none yet, less any
 * tail that could begin "\n<tool_call>". */
size_t srv_reply_settled(const char *text, size_t len, bool parse_calls);

/* Where the first stop string of R occurs in TEXT among the matches that end after FROM (the
 * text before FROM was searched already): *AT is its start. */
bool srv_stop_find(const struct srv_request *r, const char *text, size_t len, size_t from,
                   size_t *at);

/* How many bytes at the end of TEXT could be the beginning of one of R's stop strings (held
 * back from a stream until the next tokens say). */
size_t srv_stop_hold(const struct srv_request *r, const char *text, size_t len);

/* One choice of a finished request. */
struct srv_choice {
    const int32_t *ids; /* every sampled id, the final stop id included */
    size_t n_ids;
    const float *logprobs;     /* the model's log-prob of each id; NULL unless R->logprobs */
    const struct mdl_alt *top; /* N_IDS * N_TOP alternatives, or NULL */
    uint32_t n_top;
    const char *text; /* the reply's text: the ids decoded, less a final stop id, cut at a
                         stop string */
    size_t text_len;
    const char *finish; /* "stop" or "length" */
};

/* What every response and chunk of one request carries. */
struct srv_meta {
    const char *id;    /* "chatcmpl-..." or "cmpl-..." */
    const char *model; /* the served model's name */
    int64_t created;   /* Unix seconds */
    const int32_t *prompt_ids;
    size_t n_prompt;
};

/* The body of a finished request (chat.completion or text_completion) with R->n choices,
 * the usage, and when asked the log-probs (token strings from T) and token ids. *OUT is a new
 * reference. */
int srv_response_json(json_t **out, const struct srv_request *r, const struct srv_meta *m,
                      const struct srv_choice *ch, const struct tok *t);

/* One event of a stream. */
struct srv_delta {
    uint32_t index;   /* the choice */
    bool first;       /* the choice's first chunk: the role (chat), the prompt's ids */
    const char *text; /* new content, or NULL */
    size_t text_len;
    json_t *tool_calls; /* the choice's tool calls (borrowed), or NULL */
    const int32_t *ids; /* ids sampled since the last chunk (when R->return_token_ids) */
    size_t n_ids;
    const char *finish; /* the last chunk of the choice: why it ended; else NULL */
};

/* A chunk (chat.completion.chunk or text_completion) for D. */
int srv_chunk_json(json_t **out, const struct srv_request *r, const struct srv_meta *m,
                   const struct srv_delta *d);

/* The last chunk when R->include_usage: no choices, the usage of all of them. */
int srv_usage_chunk_json(json_t **out, const struct srv_request *r, const struct srv_meta *m,
                         uint64_t completion_tokens);

#endif
