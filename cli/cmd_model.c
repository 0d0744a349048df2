/* cli/model: `crucible model init | info | logits`. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/str.h"
#include "model/backend.h"
#include "model/device.h"
#include "model/init.h"
#include "model/model.h"

static int parse_u32(const char *cmd, const char *opt, const char *s, uint32_t max, uint32_t *out)
{
    uint64_t v;
    if (cru_parse_u64(s, 0, max, &v) < 0)
        return cli_usage(cmd, "%s: %s", opt, cru_err_msg());
    *out = (uint32_t)v;
    return 0;
}

/* The progress line of a long write, on a terminal only, at most a few times a second. */
struct init_progress {
    uint64_t t0, last;
};

static void init_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct init_progress *p = ctx;
    uint64_t now = cru_now_ns();
    if (done < total && now - p->last < 250000000)
        return;
    p->last = now;
    double s = (double)(now - p->t0) / 1e9, mb = (double)done / 1e6;
    char eta[32] = "?";
    if (done > 0 && s > 0)
        snprintf(eta, sizeof(eta), "%.0fs", s / (double)done * (double)(total - done));
    fprintf(stderr, "\rwriting: %.2f / %.2f GB (%.0f%%), %.0f MB/s, ETA %s   ", mb / 1e3,
            (double)total / 1e9, total ? 100.0 * (double)done / (double)total : 100.0,
            s > 0 ? mb / s : 0.0, eta);
    if (done == total)
        fputc('\n', stderr);
}

static json_t *plan_json(const struct mdl_init_plan *p)
{
    json_t *config = NULL, *files = json_array();
    if (cru_json_parse(&config, p->config, strlen(p->config), "config.json") < 0) {
        json_decref(files);
        return NULL;
    }
    for (size_t i = 0; files && i < p->n_files; i++) {
        const struct mdl_init_file *f = &p->files[i];
        json_array_append_new(files,
                              json_pack("{s:s, s:I, s:I, s:I}", "name", f->name, "tensors",
                                        (json_int_t)f->n_tensors, "tensor_bytes",
                                        (json_int_t)f->data_bytes, "bytes", (json_int_t)f->bytes));
    }
    return json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:o}", "config", config, "params",
                     (json_int_t)p->params, "tensors", (json_int_t)p->n_tensors, "total_size",
                     (json_int_t)p->total_size, "file_bytes", (json_int_t)p->file_bytes,
                     "shard_size", (json_int_t)p->opts.shard_size, "files", files);
}

static int init_dry_run(const struct mdl_init_plan *p, bool json)
{
    if (json)
        return cli_print_json(plan_json(p)) < 0 ? cli_fail("model init") : CLI_EXIT_OK;
    printf("arch:        %s, %u layers\nparameters:  %llu (%s)\ntensors:     %zu\n"
           "total_size:  %llu bytes of tensors (%.2f GiB), %llu with the headers\n"
           "files:       %zu (at most %llu bytes of tensors each)\n",
           mdl_arch_name(p->opts.arch), p->opts.layers, (unsigned long long)p->params,
           mdl_dtype_name(p->opts.dtype), p->n_tensors, (unsigned long long)p->total_size,
           (double)p->total_size / (1u << 30), (unsigned long long)p->file_bytes, p->n_files,
           (unsigned long long)p->opts.shard_size);
    for (size_t i = 0; i < p->n_files; i++)
        printf("  %s  %zu tensors, %llu bytes\n", p->files[i].name, p->files[i].n_tensors,
               (unsigned long long)p->files[i].bytes);
    printf("config.json:\n%s", p->config);
    return CLI_EXIT_OK;
}

static int init_run(int argc, char **argv)
{
    enum {
        O_ARCH = 256,
        O_TOK,
        O_LAYERS,
        O_HIDDEN,
        O_HEADS,
        O_KV,
        O_HD,
        O_EXPERTS,
        O_TOPK,
        O_MOE_INTER,
        O_INTER,
        O_VOCAB,
        O_ROT,
        O_DENSE,
        O_MAXPOS,
        O_TIED,
        O_DTYPE,
        O_SEED,
        O_PRESET,
        O_SHARD,
        O_DRY,
        O_JSON,
    };
    static const struct option opts[] = {
        { "arch", required_argument, NULL, O_ARCH },
        { "tokenizer", required_argument, NULL, O_TOK },
        { "layers", required_argument, NULL, O_LAYERS },
        { "hidden", required_argument, NULL, O_HIDDEN },
        { "heads", required_argument, NULL, O_HEADS },
        { "kv-heads", required_argument, NULL, O_KV },
        { "head-dim", required_argument, NULL, O_HD },
        { "experts", required_argument, NULL, O_EXPERTS },
        { "top-k", required_argument, NULL, O_TOPK },
        { "moe-inter", required_argument, NULL, O_MOE_INTER },
        { "inter", required_argument, NULL, O_INTER },
        { "vocab", required_argument, NULL, O_VOCAB },
        { "rotary-dim", required_argument, NULL, O_ROT },
        { "dense-layers", required_argument, NULL, O_DENSE },
        { "max-pos", required_argument, NULL, O_MAXPOS },
        { "tied", no_argument, NULL, O_TIED },
        { "dtype", required_argument, NULL, O_DTYPE },
        { "seed", required_argument, NULL, O_SEED },
        { "preset", required_argument, NULL, O_PRESET },
        { "shard-size", required_argument, NULL, O_SHARD },
        { "dry-run", no_argument, NULL, O_DRY },
        { "json", no_argument, NULL, O_JSON },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct mdl_init_opts o = MDL_INIT_OPTS_INIT;
    const char *out = NULL, *preset = NULL, *arch = NULL, *dtype = NULL;
    bool tied = false, dry = false, json = false;
    int c, rc = 0;
    /* Dimensions given on the command line, applied over the preset's whatever their order. */
    uint32_t dims[O_MAXPOS - O_LAYERS + 1];
    bool given[O_MAXPOS - O_LAYERS + 1] = { false };
    uint32_t *u32[] = {
        [O_LAYERS - O_LAYERS] = &o.layers,  [O_HIDDEN - O_LAYERS] = &o.hidden,
        [O_HEADS - O_LAYERS] = &o.heads,    [O_KV - O_LAYERS] = &o.kv_heads,
        [O_HD - O_LAYERS] = &o.head_dim,    [O_EXPERTS - O_LAYERS] = &o.experts,
        [O_TOPK - O_LAYERS] = &o.top_k,     [O_MOE_INTER - O_LAYERS] = &o.moe_inter,
        [O_INTER - O_LAYERS] = &o.inter,    [O_VOCAB - O_LAYERS] = &o.vocab,
        [O_ROT - O_LAYERS] = &o.rotary_dim, [O_DENSE - O_LAYERS] = &o.dense_layers,
        [O_MAXPOS - O_LAYERS] = &o.max_pos,
    };
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        if (c >= O_LAYERS && c <= O_MAXPOS) {
            if ((rc = parse_u32("model init", opts[c - O_ARCH].name, optarg, UINT32_MAX,
                                &dims[c - O_LAYERS])) != 0)
                return rc;
            given[c - O_LAYERS] = true;
            continue;
        }
        switch (c) {
        case O_ARCH:
            arch = optarg;
            break;
        case O_PRESET:
            preset = optarg;
            break;
        case O_TOK:
            o.tokenizer_dir = optarg;
            break;
        case O_TIED:
            tied = true;
            break;
        case O_DTYPE:
            dtype = optarg;
            break;
        case O_SEED: {
            uint64_t v;
            if (cru_parse_u64(optarg, 0, UINT64_MAX, &v) < 0)
                return cli_usage("model init", "--seed: %s", cru_err_msg());
            o.seed = v;
            break;
        }
        case O_SHARD:
            if (cru_parse_size(optarg, &o.shard_size) < 0 || o.shard_size == 0)
                return cli_usage("model init", "--shard-size: '%s' is not a size above 0 (%s)",
                                 optarg, cru_err_msg());
            break;
        case O_DRY:
            dry = true;
            break;
        case O_JSON:
            json = true;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            cli_print_help(&cli_cmd_model, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("model init", c, argv);
        }
    }
    if (!out && !dry)
        return cli_usage("model init", "-o DIR is required (or --dry-run)");
    if (optind < argc)
        return cli_usage("model init", "unexpected argument '%s'", argv[optind]);
    if (json && !dry)
        return cli_usage("model init", "--json goes with --dry-run");
    if (preset && arch)
        return cli_usage("model init", "--preset and --arch: a preset sets the architecture");
    if (preset && mdl_init_preset(&o, preset) < 0)
        return cli_usage("model init", "--preset: %s", cru_err_msg());
    if (arch && mdl_arch_parse(arch, &o.arch) < 0)
        return cli_usage("model init", "--arch: %s", cru_err_msg());
    if (tied)
        o.tied = true;
    if (dtype && strcmp(dtype, "bf16") == 0)
        o.dtype = MDL_DT_BF16;
    else if (dtype && strcmp(dtype, "f16") == 0)
        o.dtype = MDL_DT_F16;
    else if (dtype && strcmp(dtype, "f32") == 0)
        o.dtype = MDL_DT_F32;
    else if (dtype)
        return cli_usage("model init", "--dtype: '%s' is not bf16, f16 or f32", dtype);
    for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++)
        if (given[i])
            *u32[i] = dims[i];
    /* Without a preset the vocabulary is the tokenizer's unless given; a preset keeps its own. */
    if (o.tokenizer_dir && !given[O_VOCAB - O_LAYERS] && !preset)
        o.vocab = 0;
    struct mdl_init_plan *plan = NULL;
    if (mdl_init_plan_new(&plan, &o) < 0) {
        int code = cru_err_code();
        return code == CRU_EINVAL ? cli_usage("model init", "%s", cru_err_msg())
                                  : cli_fail("model init");
    }
    if (dry) {
        rc = init_dry_run(plan, json);
        mdl_init_plan_free(plan);
        return rc;
    }
    struct init_progress prog = { cru_now_ns(), 0 };
    if (isatty(STDERR_FILENO)) {
        plan->opts.progress = init_progress;
        plan->opts.progress_ctx = &prog;
    }
    rc = mdl_init_plan_write(plan, out) < 0 ? cli_fail("model init") : CLI_EXIT_OK;
    mdl_init_plan_free(plan);
    return rc;
}

static json_t *info_json(const struct mdl_model *m)
{
    const struct mdl_config *c = &m->cfg;
    json_t *dense = json_array();
    for (uint32_t i = 0; dense && i < c->layers; i++)
        if (!c->moe_layer[i])
            json_array_append_new(dense, json_integer(i));
    json_t *eos = json_array();
    for (size_t i = 0; eos && i < c->n_eos; i++)
        json_array_append_new(eos, json_integer(c->eos[i]));
    return json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, "
        "s:b, s:b, s:o, s:o, s:I, s:I, s:I, s:I, s:s}",
        "dir", m->dir, "arch", mdl_arch_name(c->arch), "vocab", (json_int_t)c->vocab, "hidden",
        (json_int_t)c->hidden, "layers", (json_int_t)c->layers, "heads", (json_int_t)c->heads,
        "kv_heads", (json_int_t)c->kv_heads, "head_dim", (json_int_t)c->head_dim, "experts",
        (json_int_t)c->experts, "top_k", (json_int_t)c->top_k, "moe_inter",
        (json_int_t)c->moe_inter, "inter", (json_int_t)c->inter, "rotary_dim",
        (json_int_t)c->rotary_dim, "rope_theta", c->rope_theta, "tied", c->tied, "norm_topk_prob",
        c->norm_topk_prob, "dense_layers", dense, "eos", eos, "max_pos", (json_int_t)c->max_pos,
        "params", (json_int_t)m->n_params, "weight_bytes", (json_int_t)m->weight_bytes,
        "active_bytes", (json_int_t)m->active_bytes, "dtype", mdl_dtype_name(m->embed.dtype));
}

static int info_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'Z' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool json = false;
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 'Z')
            json = true;
        else if (c == 'h') {
            cli_print_help(&cli_cmd_model, stdout);
            return CLI_EXIT_OK;
        } else
            return cli_bad_option("model info", c, argv);
    }
    if (argc - optind != 1)
        return cli_usage("model info", "one checkpoint folder is needed");
    struct mdl_model *m = NULL;
    if (mdl_model_load(&m, argv[optind]) < 0)
        return cli_fail("model info");
    int rc = CLI_EXIT_OK;
    const struct mdl_config *c2 = &m->cfg;
    if (json) {
        if (cli_print_json(info_json(m)) < 0)
            rc = cli_fail("model info");
    } else {
        uint32_t dense = 0;
        for (uint32_t i = 0; i < c2->layers; i++)
            dense += !c2->moe_layer[i];
        printf("folder:      %s\narch:        %s\nvocab:       %u\nhidden:      %u\n"
               "layers:      %u (%u dense)\nattention:   %u heads, %u kv heads, head dim %u, "
               "rotary dims %u, theta %g\nexperts:     %u, top %u, intermediate %u\n"
               "parameters:  %llu (%s, %.1f MiB; %.1f MiB read per token)\n",
               m->dir, mdl_arch_name(c2->arch), c2->vocab, c2->hidden, c2->layers, dense, c2->heads,
               c2->kv_heads, c2->head_dim, c2->rotary_dim, c2->rope_theta, c2->experts, c2->top_k,
               c2->moe_inter, (unsigned long long)m->n_params, mdl_dtype_name(m->embed.dtype),
               (double)m->weight_bytes / (1 << 20), (double)m->active_bytes / (1 << 20));
    }
    mdl_model_free(m);
    return rc;
}

static int logits_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "model", required_argument, NULL, 'm' },
        { "ids", required_argument, NULL, 'i' },
        { "all", no_argument, NULL, 'a' },
        { "threads", required_argument, NULL, 't' },
        CLI_DEVICE_OPTIONS,
        { "json", no_argument, NULL, 'Z' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL, *ids_arg = NULL;
    struct mdl_device dev = MDL_DEVICE_INIT;
    float mem = MDL_GPU_MEMORY;
    bool json = false, all = false;
    uint32_t threads = 0;
    int c, rc;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":hm:", opts, NULL)) != -1) {
        int took = cli_device_option("model logits", c, optarg, &dev, &mem, &rc);
        if (took < 0)
            return rc;
        if (took)
            continue;
        switch (c) {
        case 'm':
            dir = optarg;
            break;
        case 'i':
            ids_arg = optarg;
            break;
        case 'a':
            all = true;
            break;
        case 't':
            if ((rc = parse_u32("model logits", "--threads", optarg, MDL_MAX_THREADS, &threads)))
                return rc;
            break;
        case 'Z':
            json = true;
            break;
        case 'h':
            cli_print_help(&cli_cmd_model, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("model logits", c, argv);
        }
    }
    if (!dir || !ids_arg)
        return cli_usage("model logits", "--model DIR and --ids I,J,... are required");
    if (optind < argc)
        return cli_usage("model logits", "unexpected argument '%s'", argv[optind]);
    int32_t *ids = NULL;
    size_t n = 0;
    if (cli_parse_ids(ids_arg, &ids, &n) < 0)
        return cli_usage("model logits", "--ids: %s", cru_err_msg());
    struct mdl_model *m = NULL;
    const struct mdl_backend *ops = NULL;
    void *be = NULL;
    float *logits = NULL;
    uint32_t *blocks = NULL;
    json_t *out = NULL;
    struct mdl_backend_opts bo = MDL_BACKEND_OPTS_INIT;
    struct mdl_backend_limits lim;
    bo.max_seqs = 1;
    bo.threads = threads;
    bo.device = dev.ordinal;
    bo.memory = mem;
    bo.block_tokens = MDL_BLOCK_TOKENS;
    rc = CLI_EXIT_OK;
    /* The backend before the checkpoint: a missing CUDA library is reported at once. */
    if (mdl_device_backend(&dev, &ops) < 0 || mdl_model_load(&m, dir) < 0) {
        rc = cli_fail("model logits");
        goto done;
    }
    if (n > m->cfg.max_pos) {
        rc = cli_usage("model logits", "--ids: %zu ids, more than the model's context of %u", n,
                       m->cfg.max_pos);
        goto done;
    }
    /* One sequence, one step of all its ids, a context of just them and a pool of just the
     * blocks they fill (0, 1, ... in order): a GPU would otherwise set its memory aside for a
     * cache that this one step never uses. */
    bo.max_ctx = bo.max_step_tokens = (uint32_t)n;
    bo.n_blocks = (uint32_t)((n + MDL_BLOCK_TOKENS - 1) / MDL_BLOCK_TOKENS);
    if (ops->load(&be, m, &bo) < 0) {
        rc = cli_fail("model logits");
        goto done;
    }
    ops->limits(be, &lim);
    uint32_t nb = (uint32_t)((n + lim.block_tokens - 1) / lim.block_tokens);
    size_t V = m->cfg.vocab, rows = all ? n : 1;
    if (nb > lim.n_blocks)
        cru_err_set(CRU_EINTERNAL, "%zu ids need %u KV blocks; the backend made %u", n, nb,
                    lim.n_blocks);
    else if (!(logits = malloc(rows * V * sizeof(float))) ||
             !(blocks = malloc(nb * sizeof(*blocks))))
        cru_err_set(CRU_ENOMEM, "out of memory");
    if (!blocks) {
        rc = cli_fail("model logits");
        goto done;
    }
    for (uint32_t i = 0; i < nb; i++)
        blocks[i] = i;
    struct mdl_step st = { .blocks = blocks,
                           .n_blocks = nb,
                           .pos = 0,
                           .ids = ids,
                           .n_ids = (uint32_t)n,
                           .all_logits = all,
                           .logits = logits };
    if (ops->forward(be, &st, 1) < 0) {
        rc = cru_err_code() == CRU_EINVAL ? cli_usage("model logits", "%s", cru_err_msg())
                                          : cli_fail("model logits");
        goto done;
    }
    if (json) {
        out = json_array();
        for (size_t r = 0; out && r < rows; r++) {
            json_t *row = all ? json_array() : out;
            for (size_t j = 0; row && j < V; j++)
                json_array_append_new(row, json_real(logits[r * V + j]));
            if (all)
                json_array_append_new(out, row);
        }
        if (cli_print_json(json_pack("{s:o}", "logits", out)) < 0)
            rc = cli_fail("model logits");
    } else {
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < V; j++)
                printf("%.9g%c", (double)logits[r * V + j], j + 1 == V ? '\n' : ' ');
    }
done:
    free(blocks);
    free(logits);
    if (be)
        ops->free(be);
    mdl_model_free(m);
    free(ids);
    return rc;
}

static int model_run(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage("model", "a subcommand is needed: init, info or logits");
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        cli_print_help(&cli_cmd_model, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(sub, "init") == 0)
        return init_run(argc - 1, argv + 1);
    if (strcmp(sub, "info") == 0)
        return info_run(argc - 1, argv + 1);
    if (strcmp(sub, "logits") == 0)
        return logits_run(argc - 1, argv + 1);
    return cli_usage("model", "unknown subcommand '%s' (init, info, logits)", sub);
}

const struct cli_command cli_cmd_model = {
    .name = "model",
    .summary = "make a random checkpoint, describe one, or print its logits",
    .help =
        "usage: crucible model init --arch qwen3_moe|minimax_m2 [dims] [--seed N] -o DIR\n"
        "       crucible model init --preset NAME [dims] [--shard-size SIZE] -o DIR\n"
        "       crucible model init ... --dry-run [--json]\n"
        "       crucible model info DIR [--json]\n"
        "       crucible model logits --model DIR --ids I,J,... [--all] [--device D] [--json]\n"
        "\n"
        "init    writes a seeded random checkpoint in the HuggingFace layout (config.json,\n"
        "        safetensors files) that transformers loads; the same options and seed give\n"
        "        the same bytes. Dimensions (defaults in brackets):\n"
        "          --layers N [2]  --hidden N [64]  --heads N [4]  --kv-heads N [2]\n"
        "          --head-dim N [16]  --experts N [8]  --top-k N [2]  --moe-inter N [32]\n"
        "          --inter N [96] (dense layers)  --dense-layers N [0] (qwen3_moe: the\n"
        "          first N layers dense)  --vocab N [512]  --rotary-dim N [minimax_m2: half\n"
        "          the head]  --max-pos N [4096]  --tied  --dtype bf16|f16|f32 [bf16]\n"
        "        --preset qwen3-30b-a3b|minimax-m2 takes every dimension from the published\n"
        "        config.json (bf16); dimensions given as well override it (--layers 4 for a\n"
        "        benchmark). A checkpoint over --shard-size bytes of tensors [5000000000,\n"
        "        HuggingFace's 5GB; suffixes K, M, G are binary: 500M, 5G] is split as\n"
        "        save_pretrained splits it: model-00001-of-000NN.safetensors and\n"
        "        model.safetensors.index.json. Files are streamed (a few MiB of memory), each\n"
        "        written as NAME.partial and renamed when whole, config.json last; a terminal\n"
        "        shows the progress. --dry-run prints the plan (files, sizes, config.json)\n"
        "        and writes nothing.\n"
        "        --tokenizer DIR copies tokenizer.json and tokenizer_config.json and sizes the\n"
        "        vocabulary to hold every id of tokenizer.json (unless --vocab or a preset\n"
        "        gives it).\n"
        "info    loads a checkpoint (every tensor checked) and describes it.\n"
        "logits  runs the forward over the ids and prints the logits of the last\n"
        "        position (--all: of every position), one row a line, or as\n"
        "        {\"logits\": [...]} with --json ([[...], ...] with --all).\n"
        "\n"
        "Options:\n"
        "  -o, --output DIR  init: the folder to write (created; --out works too)\n"
        "  --threads N       logits: CPU threads (default: every core)\n"
        "  --device D        logits: where the model computes: cpu (the default), cuda or\n"
        "                    cuda:N (the CUDA backend's library: docs/model.md, \"Devices\")\n"
        "  --gpu-memory F    logits, cuda: the share of the device's memory that the weights\n"
        "                    and buffers may take, 0 < F <= 1 (default 0.9)\n"
        "  --json            machine-readable output\n"
        "  -h, --help        show this help\n"
        "\n"
        "The checkpoint layout and architectures are described in docs/model.md.\n",
    .run = model_run,
};
