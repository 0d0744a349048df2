/* cli/run: `crucible run IMAGE... [-j N] [--repeat K] [--window F] [--shard I/N] --out DIR`. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/model_agent.h"
#include "agent/rollout.h"
#include "cli/cli.h"
#include "lib/err.h"
#include "lib/str.h"

/* The one piece of process-wide state a signal handler can reach: set by SIGINT or SIGTERM,
 * read by the scheduler between episodes and by episodes between turns. */
static atomic_bool interrupted;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&interrupted, true);
}

static int parse_shard(const char *s, unsigned *i, unsigned *n)
{
    const char *slash = strchr(s, '/');
    char a[32];
    uint64_t x, y;
    if (!slash || (size_t)(slash - s) >= sizeof(a))
        return cru_err_set(CRU_EINVAL, "expected I/N, like 0/4");
    memcpy(a, s, (size_t)(slash - s));
    a[slash - s] = '\0';
    if (cru_parse_u64(slash + 1, 1, 100000, &y) < 0 || cru_parse_u64(a, 0, y - 1, &x) < 0)
        return cru_err_set(CRU_EINVAL, "expected I/N with 0 <= I < N, like 0/4");
    *i = (unsigned)x;
    *n = (unsigned)y;
    return 0;
}

static void print_summary(const struct agt_rollout_summary *s, const char *out)
{
    json_t *j = s->json;
    printf("run: %llu of %llu episodes released%s%s\n", (unsigned long long)s->done,
           (unsigned long long)s->episodes, s->resumed ? " (some by an earlier run)" : "",
           s->interrupted ? "; interrupted: run the same command again to resume" : "");
    json_t *mr = json_object_get(j, "mean_reward");
    long long k = (long long)json_integer_value(json_object_get(j, "k"));
    if (json_is_number(mr)) {
        printf("mean reward %.4f, pass@1 %.4f", json_number_value(mr),
               json_number_value(json_object_get(j, "pass@1")));
        if (k > 1)
            printf(", pass@%lld %.4f", k, json_number_value(json_object_get(j, "pass@k")));
        putchar('\n');
    }
    const char *id;
    json_t *img;
    json_object_foreach(json_object_get(j, "images"), id, img)
    {
        json_t *m = json_object_get(img, "mean_reward");
        printf("  %-32s %3lld episodes  mean %s%.3f\n", id,
               (long long)json_integer_value(json_object_get(img, "episodes")),
               json_is_number(m) ? "" : "(not scored) ", json_number_value(m));
    }
    printf("window %llu, largest out-of-order release %llu, %.1f s; index %s/index.jsonl\n",
           (unsigned long long)s->window, (unsigned long long)s->max_distance,
           (double)s->wall_ms / 1000, out);
}

static int run_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "jobs", required_argument, NULL, 'j' },
        { "repeat", required_argument, NULL, 'k' },
        { "window", required_argument, NULL, 'w' },
        { "shard", required_argument, NULL, 'S' },
        { "agent", required_argument, NULL, 'a' },
        { "out", required_argument, NULL, 'o' },
        { "seed", required_argument, NULL, 's' },
        { "max-turns", required_argument, NULL, 't' },
        { "model", required_argument, NULL, 'M' },
        { "temperature", required_argument, NULL, 'T' },
        { "max-tokens", required_argument, NULL, 'X' },
        { "scaffold", required_argument, NULL, 'C' },
        { "images", required_argument, NULL, 'I' },
        { "all", no_argument, NULL, 'A' },
        { "json", no_argument, NULL, 'J' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct agt_rollout_opts ro = { 0 };
    const char *agent_spec = "oracle", *scaffold = NULL, *images = NULL, *model_dir = NULL;
    float temperature = 1.0f;
    uint64_t max_tokens = 1024;
    bool json = false, all = false;
    uint64_t v;
    double f;
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":hj:k:a:o:s:", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            if (cru_parse_u64(optarg, 1, 1024, &v) < 0)
                return cli_usage("run", "-j: %s", cru_err_msg());
            ro.jobs = (unsigned)v;
            break;
        case 'k':
            if (cru_parse_u64(optarg, 1, 100000, &v) < 0)
                return cli_usage("run", "--repeat: %s", cru_err_msg());
            ro.repeat = (unsigned)v;
            break;
        case 'w':
            if (cru_parse_double(optarg, 1e-9, 1, &f) < 0)
                return cli_usage("run", "--window: %s (a fraction in (0, 1])", cru_err_msg());
            ro.window = f;
            break;
        case 'S':
            if (parse_shard(optarg, &ro.shard, &ro.shards) < 0)
                return cli_usage("run", "--shard %s: %s", optarg, cru_err_msg());
            break;
        case 'a':
            agent_spec = optarg;
            break;
        case 'o':
            ro.out = optarg;
            break;
        case 's':
            if (cru_parse_u64(optarg, 0, UINT64_MAX / 2, &ro.seed) < 0)
                return cli_usage("run", "--seed: %s", cru_err_msg());
            break;
        case 't':
            if (cru_parse_u64(optarg, 1, 100000, &ro.max_turns) < 0)
                return cli_usage("run", "--max-turns: %s", cru_err_msg());
            break;
        case 'C':
            scaffold = optarg;
            break;
        case 'I':
            images = optarg;
            break;
        case 'A':
            all = true;
            break;
        case 'J':
            json = true;
            break;
        case 'M':
            model_dir = optarg;
            break;
        case 'X':
            if (cru_parse_u64(optarg, 1, 1u << 20, &max_tokens) < 0)
                return cli_usage("run", "--max-tokens: %s", cru_err_msg());
            break;
        case 'T': {
            double t;
            if (cru_parse_double(optarg, 0, 100, &t) < 0)
                return cli_usage("run", "--temperature: %s (0 is greedy)", cru_err_msg());
            temperature = (float)t;
            break;
        }
        case 'h':
            cli_print_help(&cli_cmd_run, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("run", c, argv);
        }
    }
    if (!ro.out)
        return cli_usage("run", "--out DIR is required");
    if (optind >= argc && !all)
        return cli_usage("run", "no image given (name images, or --all)");
    if (optind < argc && all)
        return cli_usage("run", "--all and image names exclude each other");

    char *images_dir = NULL, *sc_dir = NULL, **ids = NULL;
    size_t n_ids = 0, n_loaded = 0;
    struct agt_image **imgs = NULL;
    struct agt_scaffold *sc = NULL;
    struct agt_agent *agent = NULL;
    struct agt_model *model = NULL;
    struct agt_rollout_summary sum = { 0 };
    int status = CLI_EXIT_ERROR, rc = agt_agent_load(agent_spec, &agent);
    if (rc < 0) {
        status =
            rc == CRU_EINVAL ? cli_usage("run", "--agent: %s", cru_err_msg()) : cli_fail("run");
        goto done;
    }
    if ((status = cli_open_model("run", agent_spec, model_dir, temperature, (uint32_t)max_tokens,
                                 &model)) != 0)
        goto done;
    status = CLI_EXIT_ERROR;
    if ((rc = agt_images_dir(images, &images_dir)) < 0 ||
        (all && (rc = agt_images_list(images_dir, &ids, &n_ids)) < 0) ||
        (rc = agt_scaffold_dir(scaffold, &sc_dir)) < 0 ||
        (rc = agt_scaffold_load(sc_dir, &sc)) < 0) {
        status = cli_fail("run");
        goto done;
    }
    size_t n = all ? n_ids : (size_t)(argc - optind);
    imgs = calloc(n ? n : 1, sizeof(*imgs));
    for (size_t i = 0; imgs && i < n; i++) {
        const char *arg = all ? ids[i] : argv[optind + (int)i];
        char *dir = NULL;
        struct cru_buf problems = CRU_BUF_INIT;
        rc = agt_image_find(images_dir, arg, &dir);
        if (rc == 0)
            rc = agt_image_load(dir, &imgs[i], &problems);
        fputs(cru_buf_cstr(&problems), stderr);
        cru_buf_free(&problems);
        free(dir);
        if (rc < 0) {
            status = cli_fail("run");
            goto done;
        }
        n_loaded++;
    }
    struct sigaction sa = { 0 };
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    ro.images = (const struct agt_image *const *)imgs;
    ro.n_images = n_loaded;
    ro.sc = sc;
    ro.agent = agent;
    ro.model = model;
    ro.cancel = &interrupted;
    ro.progress = !json && isatty(STDERR_FILENO);
    if ((rc = agt_rollout(&ro, &sum)) < 0) {
        status = cli_fail("run");
        goto done;
    }
    if (json) {
        if (cli_print_json(json_incref(sum.json)) < 0) {
            status = cli_fail("run");
            goto done;
        }
    } else {
        print_summary(&sum, ro.out);
    }
    status = sum.interrupted ? CLI_EXIT_FAILED : CLI_EXIT_OK;
done:
    agt_rollout_summary_free(&sum);
    for (size_t i = 0; i < n_loaded; i++)
        agt_image_free(imgs[i]);
    free(imgs);
    agt_images_list_free(ids, n_ids);
    agt_scaffold_free(sc);
    agt_agent_free(agent);
    agt_model_free(model);
    free(images_dir);
    free(sc_dir);
    return status;
}

const struct cli_command cli_cmd_run = {
    .name = "run",
    .summary = "run many episodes at once, released in windowed-FIFO order",
    .help =
        "usage: crucible run (IMAGE... | --all) --out DIR [-j N] [--repeat K] [--window F]\n"
        "                    [--shard I/N] [--agent A] [--model DIR] [--temperature T]\n"
        "                    [--seed N] [--max-turns N]\n"
        "                    [--scaffold DIR] [--images DIR] [--json]\n"
        "\n"
        "Runs K episodes of each image (one GRPO group per image: episodes IMAGE-r0..,\n"
        "group IMAGE, seeds SEED+k), N at a time, started in order. Each finished episode's\n"
        "trajectory is DIR/episodes/ID.traj; it is released into DIR/index.jsonl (one JSON\n"
        "line per episode, appended whole and synced, for a trainer to tail) only within a\n"
        "window of ceil(F * episodes) starting at the oldest unreleased episode: F = 1 is\n"
        "completion order, a window of 1 strict FIFO. The summary (episodes, mean reward,\n"
        "per-image means, pass@1 and pass@K, the largest out-of-order release, wall time) is\n"
        "printed and written to DIR/summary.json. On a terminal a progress line with an ETA\n"
        "goes to stderr. Ctrl-C stops cleanly: no new episode starts, running ones end at\n"
        "their next turn and are not released; the same command again resumes, skipping the\n"
        "episodes already in the index. Needs root (sandboxes).\n"
        "\n"
        "Options:\n"
        "  -o, --out DIR     the run folder (required)\n"
        "  --all             every image of the images folder\n"
        "  -j, --jobs N      episodes at once (default 1)\n"
        "  -k, --repeat K    episodes per image (default 1)\n"
        "  --window F        the release window as a fraction of the episodes (default 0.3)\n"
        "  --shard I/N       run only episodes whose number is I modulo N (I from 0)\n"
        "  -a, --agent A     as for run-task (default oracle)\n"
        "  --model DIR       the checkpoint for --agent model; one engine batches all episodes\n"
        "  --temperature T   the model's sampling temperature (default 1; 0 is greedy)\n"
        "  --max-tokens N    the most tokens the model samples in one call (default 1024)\n"
        "  -s, --seed N      the first seed (default 0)\n"
        "  --max-turns N     the turn budget of every episode\n"
        "  --scaffold DIR    the scaffold folder (default scaffolds/default)\n"
        "  --images DIR      the images folder\n"
        "  --json            print the summary object instead of the text\n"
        "  -h, --help        show this help\n"
        "\n"
        "Exit status: 0 every episode was released, 1 interrupted (resume to finish),\n"
        "2 usage, 3 the run could not go on (the index or a folder could not be written).\n",
    .run = run_run,
};
