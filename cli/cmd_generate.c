/* cli/generate: `crucible generate`: one completion from a checkpoint on the engine. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/err.h"
#include "lib/str.h"
#include "model/device.h"
#include "model/engine.h"
#include "model/tokenizer.h"
#include "model/model.h"

/* --prompt: the text encoded with the checkpoint's tokenizer.json. */
static int prompt_to_ids(const char *model_dir, const char *text, int32_t **ids, size_t *n)
{
    struct tok *t = NULL;
    struct tok_ids v = TOK_IDS_INIT;
    int rc = tok_load(&t, model_dir);
    if (rc == 0)
        rc = tok_encode(t, text, strlen(text), &v);
    tok_free(t);
    if (rc == 0 && v.n == 0)
        rc = cru_err_set(CRU_EINVAL, "the prompt is empty: it encodes to no token");
    if (rc < 0) {
        tok_ids_free(&v);
        return cru_err_wrap(rc, "--prompt");
    }
    *ids = v.v;
    *n = v.n;
    return 0;
}

/* The sampled ids as text (invalid UTF-8, a character cut by max-tokens, as U+FFFD). */
static int ids_to_text(const char *model_dir, const int32_t *ids, size_t n, char **text)
{
    struct tok *t = NULL;
    struct cru_buf bytes = CRU_BUF_INIT, out = CRU_BUF_INIT;
    int rc = tok_load(&t, model_dir);
    if (rc == 0)
        rc = tok_decode(t, ids, n, &bytes);
    if (rc == 0)
        rc = tok_utf8_lossy(bytes.data ? bytes.data : "", bytes.len, &out);
    tok_free(t);
    cru_buf_free(&bytes);
    if (rc == 0 && !(*text = cru_buf_detach(&out, NULL)))
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
    cru_buf_free(&out);
    return rc < 0 ? cru_err_wrap(rc, "decoding the output") : 0;
}

static int generate_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "model", required_argument, NULL, 'm' },
        { "prompt", required_argument, NULL, 'p' },
        { "ids", required_argument, NULL, 'i' },
        { "max-tokens", required_argument, NULL, 'n' },
        { "temperature", required_argument, NULL, 'T' },
        { "top-p", required_argument, NULL, 'P' },
        { "top-k", required_argument, NULL, 'K' },
        { "seed", required_argument, NULL, 'S' },
        { "stop-id", required_argument, NULL, 'x' },
        { "threads", required_argument, NULL, 't' },
        CLI_DEVICE_OPTIONS,
        { "json", no_argument, NULL, 'Z' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL, *prompt = NULL, *ids_arg = NULL;
    struct mdl_request req = MDL_REQUEST_INIT;
    struct mdl_engine_opts eo = MDL_ENGINE_OPTS_INIT;
    struct mdl_device dev = MDL_DEVICE_INIT;
    float mem = MDL_GPU_MEMORY;
    bool json = false;
    int c, status;
    uint64_t u;
    double d;
    eo.backend_opts.max_seqs = 1;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":hm:", opts, NULL)) != -1) {
        int took = cli_device_option("generate", c, optarg, &dev, &mem, &status);
        if (took < 0)
            return status;
        if (took)
            continue;
        switch (c) {
        case 'm':
            dir = optarg;
            break;
        case 'p':
            prompt = optarg;
            break;
        case 'i':
            ids_arg = optarg;
            break;
        case 'n':
            if (cru_parse_u64(optarg, 1, MDL_MAX_TOKENS, &u) < 0)
                return cli_usage("generate", "--max-tokens: %s", cru_err_msg());
            req.sampling.max_tokens = (uint32_t)u;
            break;
        case 'T':
            if (cru_parse_double(optarg, 0, 100, &d) < 0)
                return cli_usage("generate", "--temperature: %s", cru_err_msg());
            req.sampling.temperature = (float)d;
            break;
        case 'P':
            if (cru_parse_double(optarg, 0, 1, &d) < 0 || d == 0)
                return cli_usage("generate", "--top-p: '%s' is not in (0, 1]", optarg);
            req.sampling.top_p = (float)d;
            break;
        case 'K':
            if (cru_parse_u64(optarg, 0, MDL_MAX_VOCAB, &u) < 0)
                return cli_usage("generate", "--top-k: %s", cru_err_msg());
            req.sampling.top_k = (uint32_t)u;
            break;
        case 'S':
            if (cru_parse_u64(optarg, 0, UINT64_MAX, &u) < 0)
                return cli_usage("generate", "--seed: %s", cru_err_msg());
            req.sampling.seed = u;
            break;
        case 'x':
            if (req.sampling.n_stop_ids >= MDL_MAX_STOP_TOKENS ||
                cru_parse_u64(optarg, 0, MDL_MAX_VOCAB - 1, &u) < 0)
                return cli_usage("generate", "--stop-id: '%s' (at most %d ids)", optarg,
                                 MDL_MAX_STOP_TOKENS);
            req.sampling.stop_ids[req.sampling.n_stop_ids++] = (int32_t)u;
            break;
        case 't':
            if (cru_parse_u64(optarg, 0, MDL_MAX_THREADS, &u) < 0)
                return cli_usage("generate", "--threads: %s", cru_err_msg());
            eo.backend_opts.threads = (uint32_t)u;
            break;
        case 'Z':
            json = true;
            break;
        case 'h':
            cli_print_help(&cli_cmd_generate, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("generate", c, argv);
        }
    }
    if (!dir)
        return cli_usage("generate", "--model DIR is required");
    if (!prompt == !ids_arg)
        return cli_usage("generate", "give one of --prompt TEXT and --ids I,J,...");
    if (optind < argc)
        return cli_usage("generate", "unexpected argument '%s'", argv[optind]);
    if (req.sampling.temperature > 0 && req.sampling.temperature < 1e-4)
        return cli_usage("generate", "--temperature: 0 (greedy) or at least 0.0001");
    int32_t *ids = NULL;
    size_t n = 0;
    if (ids_arg && cli_parse_ids(ids_arg, &ids, &n) < 0)
        return cli_usage("generate", "--ids: %s", cru_err_msg());
    if (prompt && prompt_to_ids(dir, prompt, &ids, &n) < 0)
        return cli_fail("generate");
    struct mdl_model *m = NULL;
    struct mdl_engine *e = NULL;
    struct mdl_result res = { 0 };
    char *text = NULL;
    int rc = CLI_EXIT_OK;
    eo.backend_opts.device = dev.ordinal;
    eo.backend_opts.memory = mem;
    /* The backend before the checkpoint: a missing CUDA library is reported at once. */
    if (mdl_device_backend(&dev, &eo.backend) < 0 || mdl_model_load(&m, dir) < 0 ||
        mdl_engine_new(&e, m, &eo) < 0) {
        rc = cli_fail("generate");
        goto done;
    }
    req.prompt = ids;
    req.n_prompt = n;
    if (mdl_engine_generate(e, &req, &res) < 0) {
        rc = cru_err_code() == CRU_EINVAL ? cli_usage("generate", "%s", cru_err_msg())
                                          : cli_fail("generate");
        goto done;
    }
    if (json) {
        json_t *jids = json_array(), *jlp = json_array();
        for (size_t i = 0; jids && jlp && i < res.n; i++) {
            json_array_append_new(jids, json_integer(res.ids[i]));
            json_array_append_new(jlp, json_real(res.logprobs[i]));
        }
        json_t *o = json_pack("{s:o, s:o, s:s, s:I, s:I, s:{s:f, s:f, s:f}}", "ids", jids,
                              "logprobs", jlp, "finish", mdl_finish_name(res.finish),
                              "prompt_tokens", (json_int_t)res.n_prompt, "tokens",
                              (json_int_t)res.n, "timings_ms", "queue", res.queue_ns / 1e6,
                              "prefill", res.prefill_ns / 1e6, "decode", res.decode_ns / 1e6);
        if (cli_print_json(o) < 0)
            rc = cli_fail("generate");
    } else if (ids_to_text(dir, res.ids, res.n, &text) < 0) {
        rc = cli_fail("generate");
    } else {
        printf("%s\n", text);
    }
done:
    free(text);
    mdl_result_free(&res);
    mdl_engine_free(e);
    mdl_model_free(m);
    free(ids);
    return rc;
}

const struct cli_command cli_cmd_generate = {
    .name = "generate",
    .summary = "sample a completion from a checkpoint",
    .help =
        "usage: crucible generate --model DIR (--prompt TEXT | --ids I,J,...) [options]\n"
        "\n"
        "Runs the prompt through the model on the engine and samples up to --max-tokens\n"
        "tokens. With --json prints {\"ids\": [...], \"logprobs\": [...], \"finish\": \"...\",\n"
        "\"prompt_tokens\": N, \"tokens\": N, \"timings_ms\": {...}}: each log-prob is the\n"
        "sampled id's under the distribution it was drawn from (after temperature, top-k\n"
        "and top-p; 0 for greedy); finish is stop (a stop id or the model's eos), length,\n"
        "or context. --prompt and text output need the checkpoint's tokenizer.\n"
        "\n"
        "Options:\n"
        "  -m, --model DIR     the checkpoint folder\n"
        "  --prompt TEXT       the prompt as text (tokenized with the checkpoint's tokenizer)\n"
        "  --ids I,J,...       the prompt as token ids\n"
        "  --max-tokens N      tokens to generate at most (default 256)\n"
        "  --temperature T     0 is greedy (default 1)\n"
        "  --top-p P           nucleus sampling: keep the likeliest ids holding P (default 1)\n"
        "  --top-k K           keep the K likeliest ids (default 0: all)\n"
        "  --seed S            the generator's seed (default 0); a seed reproduces a run\n"
        "  --stop-id ID        also stop at ID (repeatable, up to 16)\n"
        "  --threads N         CPU threads (default: every core)\n"
        "  --device D          where the model computes: cpu (the default), cuda or cuda:N\n"
        "                      (the CUDA backend's library: see docs/model.md, \"Devices\")\n"
        "  --gpu-memory F      cuda: the share of the device's memory that the weights, the\n"
        "                      KV cache and buffers may take, 0 < F <= 1 (default 0.9)\n"
        "  --json              machine-readable output\n"
        "  -h, --help          show this help\n",
    .run = generate_run,
};
