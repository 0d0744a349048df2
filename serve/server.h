/* server: the OpenAI API over HTTP for one checkpoint on the engine (`crucible serve`).
 *
 *     struct srv_server_opts o = SRV_SERVER_OPTS_INIT;
 *     o.model_dir = "models/tiny-qwen3";
 *     o.port = 0;                                  any free port
 *     struct srv_server *s = NULL;
 *     srv_server_start(&s, &o);                    loads the model, listens
 *     ... srv_server_port(s) ...
 *     srv_server_free(s);                          stops: requests in flight end with 503
 *
 * Routes: GET /v1/models, GET /v1/models/ID, POST /v1/chat/completions, POST /v1/completions,
 * GET /health. Every error is an OpenAI error body ({"error": {"message", "type", "param",
 * "code"}}): 404 for an unknown path or model, 405 for a wrong method, 413 for a body over
 * the limit (refused from its Content-Length before it is read; a chunked one is read to its
 * end and dropped), 400 for a body the parser (serve/request.h) refuses or a prompt too long
 * for the context, 503 beyond the connection limit or while stopping, 500 for an engine
 * failure. Each connection has a thread of its own (libmicrohttpd's thread per connection), so
 * a request waits for its generation there. A connection idle past the idle timeout, or whose
 * body is still coming when the body timeout is up, is closed without an answer:
 * libmicrohttpd cannot answer in the middle of a body.
 *
 * Generation: a chat request's messages are rendered with the checkpoint's chat template and
 * encoded; each of its n choices is submitted to the engine with its own seed (the request's
 * seed plus the choice's index) and ends at <|im_end|>, <|endoftext|>, the model's eos, a stop
 * string, max_tokens or the context. A reply's text is its sampled ids decoded; token ids and
 * the model's log-probs are returned as sampled. With "stream": true the reply comes as
 * server-sent events while it is sampled.
 */
#ifndef CRU_SERVE_SERVER_H
#define CRU_SERVE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "model/backend.h"
#include "model/device.h"
#include "serve/request.h"

#define SRV_SERVER_OPTS_VERSION 1
#define SRV_CONNECTIONS_MAX     4096 /* the largest connection limit */
/* Connections past the limit that are still answered (503) rather than closed unanswered. */
#define SRV_OVERFLOW_CONNECTIONS 16

struct srv_server_opts {
    uint32_t version;       /* SRV_SERVER_OPTS_VERSION */
    const char *model_dir;  /* the checkpoint: weights, tokenizer.json, tokenizer_config.json */
    const char *model_name; /* the name clients ask for; NULL: the folder's name */
    struct mdl_device device;
    float gpu_memory;         /* cuda: the device's share for the model */
    uint32_t threads;         /* CPU threads; 0: every core */
    uint32_t seqs;            /* sequences the engine advances together */
    const char *host;         /* the address to listen on (numeric or a name) */
    uint16_t port;            /* 0: any free port */
    uint32_t max_connections; /* 1 .. SRV_CONNECTIONS_MAX */
    uint32_t idle_timeout_s;  /* a connection idle this long is closed */
    uint32_t body_timeout_s;  /* a request's body must arrive within this */
    size_t max_body;          /* bytes of a request body, at most SRV_BODY_LIMIT_MAX */
};

#define SRV_SERVER_OPTS_INIT                                                                       \
    {                                                                                              \
        SRV_SERVER_OPTS_VERSION, NULL, NULL, MDL_DEVICE_INIT, MDL_GPU_MEMORY, 0, 8, "127.0.0.1",   \
            8000, 64, 60, 30, SRV_BODY_MAX                                                         \
    }

struct srv_server;

/* Loads the checkpoint (its tokenizer and a chat template crucible renders), starts an engine
 * and listens. The options are copied. */
int srv_server_start(struct srv_server **out, const struct srv_server_opts *o);

/* The port listened on (the one chosen when the options said 0). */
uint16_t srv_server_port(const struct srv_server *s);

/* The model's name as clients give it. */
const char *srv_server_model(const struct srv_server *s);

/* Stops accepting, ends what is in flight (clients get 503, streams end early), waits for every
 * connection's thread, frees the engine and the model. Accepts NULL. */
void srv_server_free(struct srv_server *s);

#endif
