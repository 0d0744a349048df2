/* request: the OpenAI API's request bodies, read into plain data, and its error bodies.
 *
 *     struct srv_request r = SRV_REQUEST_INIT;
 *     struct srv_error e;
 *     if (srv_request_parse(&r, SRV_CHAT, body, len, &e) < 0)
 *         answer e.status with srv_error_json(&e)
 *     ... r.chat, r.max_tokens, r.stop, r.stream ...
 *     srv_request_free(&r);
 *
 * A body of POST /v1/chat/completions or /v1/completions is hostile input: it is bounded
 * (bytes, JSON values, messages, parts, tools, stop strings, n, max_tokens; the SRV_*_MAX
 * below) before and while it is read, every field is checked for its type and range, and a
 * problem is an error naming the field as OpenAI's `param` does ("messages[2].content:
 * expected a string or an array of text parts"). Unknown fields are refused, as OpenAI
 * refuses them; fields crucible accepts but cannot honour (a non-zero presence_penalty, a
 * forced tool_choice) are refused by name rather than ignored. Nothing here knows the model:
 * the model's name, the context length and the tokenizer are the server's business.
 */
#ifndef CRU_SERVE_REQUEST_H
#define CRU_SERVE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/err.h"
#include "model/chat.h"

/* Bounds on a request. */
#define SRV_BODY_MAX         ((size_t)8 << 20)   /* bytes of a body, by default */
#define SRV_BODY_LIMIT_MAX   ((size_t)256 << 20) /* the largest body limit a server may set */
#define SRV_JSON_VALUES_MAX  ((size_t)1 << 20)   /* JSON values in a body, counted before parsing */
#define SRV_MESSAGES_MAX     4096                /* messages of a conversation */
#define SRV_PARTS_MAX        256                 /* content parts of one message */
#define SRV_TOOLS_MAX        256                 /* declared tools */
#define SRV_CALLS_MAX        TOK_CHAT_CALLS_MAX  /* tool calls in one message */
#define SRV_STOP_MAX         16                  /* stop strings */
#define SRV_STOP_BYTES_MAX   256                 /* bytes of one stop string */
#define SRV_N_MAX            16                  /* choices per request */
#define SRV_NAME_MAX         256                 /* bytes of a model or tool name */
#define SRV_TOP_LOGPROBS_MAX 20                  /* alternatives per token (MDL_MAX_TOP) */

enum srv_endpoint {
    SRV_CHAT,        /* POST /v1/chat/completions */
    SRV_COMPLETIONS, /* POST /v1/completions */
};

enum srv_tool_choice {
    SRV_TOOL_CHOICE_AUTO, /* tool calls are parsed from the reply */
    SRV_TOOL_CHOICE_NONE, /* the reply is all content */
};

/* An error as the API answers it: {"error": {"message", "type", "param", "code"}}. */
struct srv_error {
    int status;       /* HTTP status: 400, 404, 413, 500, ... */
    const char *type; /* "invalid_request_error", "server_error", ... (static) */
    const char *code; /* NULL or "model_not_found", "context_length_exceeded", ... (static) */
    char param[160];  /* the field at fault ("messages[2].content"), "" for none */
    char message[CRU_ERR_MAX];
};

/* Fills E and returns CRU_EINVAL (a status below 500) or CRU_EINTERNAL. PARAM may be NULL. */
int srv_error_set(struct srv_error *e, int status, const char *type, const char *code,
                  const char *param, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The error body (a new reference; NULL only when out of memory). */
json_t *srv_error_json(const struct srv_error *e);

struct srv_request {
    enum srv_endpoint endpoint;
    char *model;
    uint8_t digest[32]; /* SHA-256 of the body: what tool call ids are derived from */

    /* chat: the conversation as the template reads it (messages, tools, enable_thinking) */
    struct tok_chat chat;
    bool has_tools;
    enum srv_tool_choice tool_choice;

    /* completions: the prompt as text (PROMPT, PROMPT_LEN) or as token ids (PROMPT_IDS) */
    char *prompt;
    size_t prompt_len;
    int32_t *prompt_ids;
    size_t n_prompt_ids;

    /* sampling */
    float temperature; /* 0: greedy */
    float top_p;
    uint32_t top_k;      /* 0: off */
    uint32_t max_tokens; /* 0: not given (the server decides) */
    bool has_seed;
    uint64_t seed;
    uint32_t n;
    char **stop; /* N_STOP strings of 1 .. SRV_STOP_BYTES_MAX bytes */
    size_t n_stop;
    size_t stop_max_len; /* the longest of them */

    /* what to answer with */
    bool logprobs;
    uint32_t top_logprobs;
    bool stream, include_usage;
    bool return_token_ids; /* vLLM's extension: prompt_token_ids and choices[].token_ids */
};

#define SRV_REQUEST_INIT                                                                           \
    {                                                                                              \
        .chat = TOK_CHAT_INIT, .temperature = 1.0f, .top_p = 1.0f, .n = 1                          \
    }

/* Reads LEN bytes of BODY (at most SRV_BODY_LIMIT_MAX; the server bounds it lower) as a request
 * of ENDPOINT into OUT (SRV_REQUEST_INIT). On failure OUT is empty again and E says why:
 * status 400 for what the client must change, 500 for lack of memory. */
int srv_request_parse(struct srv_request *out, enum srv_endpoint endpoint, const char *body,
                      size_t len, struct srv_error *e);

void srv_request_free(struct srv_request *r);

#endif
