/* cli/serve: `crucible serve`: the OpenAI-compatible gateway over a checkpoint, until SIGINT or
 * SIGTERM. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/err.h"
#include "lib/str.h"
#include "model/model.h"
#include "serve/server.h"

/* A whole number of seconds for --idle-timeout and --body-timeout. */
static int seconds(const char *arg, uint32_t *out)
{
    uint64_t u;
    int rc = cru_parse_u64(arg, 1, 86400, &u);
    if (rc == 0)
        *out = (uint32_t)u;
    return rc;
}

/* SIGINT and SIGTERM, taken by a thread of their own with sigwait(): while the checkpoint
 * loads, and when one comes again while the server stops, they end the process as they would
 * by default; the first one while the server runs asks the main thread to stop it. */
struct stopper {
    sigset_t set;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool serving;
    int sig;
};

static void *wait_signal(void *arg)
{
    struct stopper *st = arg;
    int sig = 0;
    for (;;) {
        if (sigwait(&st->set, &sig) != 0)
            return NULL;
        pthread_mutex_lock(&st->mu);
        if (!st->serving || st->sig) {
            signal(sig, SIG_DFL);
            pthread_sigmask(SIG_UNBLOCK, &st->set, NULL);
            raise(sig);
        }
        st->sig = sig;
        pthread_cond_signal(&st->cv);
        pthread_mutex_unlock(&st->mu);
    }
}

static int serve_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "model", required_argument, NULL, 'm' },
        { "name", required_argument, NULL, 'N' },
        { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        { "max-connections", required_argument, NULL, 'c' },
        { "max-body", required_argument, NULL, 'b' },
        { "idle-timeout", required_argument, NULL, 'i' },
        { "body-timeout", required_argument, NULL, 'B' },
        { "seqs", required_argument, NULL, 'j' },
        { "threads", required_argument, NULL, 't' },
        CLI_DEVICE_OPTIONS,
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct srv_server_opts o = SRV_SERVER_OPTS_INIT;
    int c, status;
    uint64_t u;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":hm:p:j:", opts, NULL)) != -1) {
        int took = cli_device_option("serve", c, optarg, &o.device, &o.gpu_memory, &status);
        if (took < 0)
            return status;
        if (took)
            continue;
        switch (c) {
        case 'm':
            o.model_dir = optarg;
            break;
        case 'N':
            if (!optarg[0] || strlen(optarg) > SRV_NAME_MAX)
                return cli_usage("serve", "--name: 1 to %d bytes", SRV_NAME_MAX);
            o.model_name = optarg;
            break;
        case 'H':
            o.host = optarg;
            break;
        case 'p':
            if (cru_parse_u64(optarg, 0, 65535, &u) < 0)
                return cli_usage("serve", "--port: %s", cru_err_msg());
            o.port = (uint16_t)u;
            break;
        case 'c':
            if (cru_parse_u64(optarg, 1, SRV_CONNECTIONS_MAX, &u) < 0)
                return cli_usage("serve", "--max-connections: %s", cru_err_msg());
            o.max_connections = (uint32_t)u;
            break;
        case 'b':
            if (cru_parse_size(optarg, &u) < 0 || u < 1 || u > SRV_BODY_LIMIT_MAX)
                return cli_usage("serve", "--max-body: '%s' is not a size from 1 to %zu bytes",
                                 optarg, SRV_BODY_LIMIT_MAX);
            o.max_body = (size_t)u;
            break;
        case 'i':
            if (seconds(optarg, &o.idle_timeout_s) < 0)
                return cli_usage("serve", "--idle-timeout: %s", cru_err_msg());
            break;
        case 'B':
            if (seconds(optarg, &o.body_timeout_s) < 0)
                return cli_usage("serve", "--body-timeout: %s", cru_err_msg());
            break;
        case 'j':
            if (cru_parse_u64(optarg, 1, 4096, &u) < 0)
                return cli_usage("serve", "--seqs: %s", cru_err_msg());
            o.seqs = (uint32_t)u;
            break;
        case 't':
            if (cru_parse_u64(optarg, 0, MDL_MAX_THREADS, &u) < 0)
                return cli_usage("serve", "--threads: %s", cru_err_msg());
            o.threads = (uint32_t)u;
            break;
        case 'h':
            cli_print_help(&cli_cmd_serve, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("serve", c, argv);
        }
    }
    if (!o.model_dir)
        return cli_usage("serve", "--model DIR is required");
    if (optind < argc)
        return cli_usage("serve", "unexpected argument '%s'", argv[optind]);

    /* Every thread started from here inherits this mask, so the signals reach the stopper's
     * sigwait() alone; a write to a client that has gone must fail, not kill the process. */
    /* Static: the detached thread may outlive this frame when the server fails to start. */
    static struct stopper st = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
    pthread_t waiter;
    sigemptyset(&st.set);
    sigaddset(&st.set, SIGINT);
    sigaddset(&st.set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &st.set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_create(&waiter, NULL, wait_signal, &st) != 0) {
        cru_err_set(CRU_EIO, "cannot start a thread");
        return cli_fail("serve");
    }
    pthread_detach(waiter);

    struct srv_server *s = NULL;
    if (srv_server_start(&s, &o) < 0)
        return cli_fail("serve");
    pthread_mutex_lock(&st.mu);
    st.serving = true;
    /* An address with colons is IPv6, which a URL brackets. */
    const char *l = strchr(o.host, ':') ? "[" : "", *r = strchr(o.host, ':') ? "]" : "";
    printf("serving %s on http://%s%s%s:%u/v1\n", srv_server_model(s), l, o.host, r,
           (unsigned)srv_server_port(s));
    fflush(stdout);
    while (!st.sig)
        pthread_cond_wait(&st.cv, &st.mu);
    pthread_mutex_unlock(&st.mu);
    fprintf(stderr, "crucible: serve: %s: stopping\n", strsignal(st.sig));
    srv_server_free(s);
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_serve = {
    .name = "serve",
    .summary = "serve a checkpoint over the OpenAI API (HTTP)",
    .help =
        "usage: crucible serve --model DIR [options]\n"
        "\n"
        "Serves the checkpoint over HTTP with the OpenAI API: GET /v1/models,\n"
        "POST /v1/chat/completions (the checkpoint's chat template; tools; streaming),\n"
        "POST /v1/completions, and GET /health. Prints the address once it listens and\n"
        "runs until SIGINT or SIGTERM, which end the requests in flight (503) and stop;\n"
        "a second one, or one while the checkpoint loads, ends the process at once.\n"
        "Responses carry vLLM's \"return_token_ids\" extension: the prompt's and each\n"
        "choice's token ids, exactly as sampled. See docs/gateway.md.\n"
        "\n"
        "Options:\n"
        "  -m, --model DIR          the checkpoint folder (weights, tokenizer, chat template)\n"
        "  --name NAME              the model's name in the API (default: the folder's name)\n"
        "  --host ADDR              the address to listen on (default 127.0.0.1)\n"
        "  -p, --port N             the port (default 8000; 0: any free port)\n"
        "  --max-connections N      connections served at once (default 64); up to 16 more\n"
        "                           are answered 503, the rest are not accepted\n"
        "  --max-body SIZE          the largest request body (default 8M, at most 256M)\n"
        "  --idle-timeout S         close a connection idle for S seconds (default 60)\n"
        "  --body-timeout S         a request's body must arrive within S seconds (default 30)\n"
        "  -j, --seqs N             sequences the engine advances together (default 8)\n"
        "  --threads N              CPU threads (default: every core)\n"
        "  --device D               where the model computes: cpu (the default), cuda or cuda:N\n"
        "  --gpu-memory F           cuda: the share of the device's memory the model may take,\n"
        "                           0 < F <= 1 (default 0.9)\n"
        "  -h, --help               show this help\n",
    .run = serve_run,
};
