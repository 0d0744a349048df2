/* cli/run: `crucible run IMAGE... [-j N] [--repeat K] [--window F] [--shard I/N] --out DIR`. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/rollout.h"
#include "cli/cli.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/str.h"
#include "sandbox/sandbox.h"

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
        printf(" over %lld episodes\n",
               (long long)json_integer_value(json_object_get(j, "scored")));
    }
    long long agent_errors = (long long)json_integer_value(
        json_object_get(json_object_get(j, "statuses"), rec_status_name(REC_AGENT_ERROR)));
    if (agent_errors)
        printf("%lld failed by the agent's doing (agent_error, counted with their reward)\n",
               agent_errors);
    if (s->environment_errors || s->retries)
        printf("%llu environment errors (left out of the means), %llu retries\n",
               (unsigned long long)s->environment_errors, (unsigned long long)s->retries);
    const char *id;
    json_t *img;
    json_object_foreach(json_object_get(j, "images"), id, img)
    {
        json_t *m = json_object_get(img, "mean_reward");
        long long env = (long long)json_integer_value(json_object_get(img, "environment_errors"));
        printf("  %-32s %3lld episodes  mean %s%.3f", id,
               (long long)json_integer_value(json_object_get(img, "episodes")),
               json_is_number(m) ? "" : "(not scored) ", json_number_value(m));
        if (env)
            printf("  (%lld environment errors)", env);
        putchar('\n');
    }
    printf("window %llu, largest out-of-order release %llu, %.1f s; index %s/index.jsonl\n",
           (unsigned long long)s->window, (unsigned long long)s->max_distance,
           (double)s->wall_ms / 1000, out);
}

static int run_run(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_AGENT_OPTIONS,
        { "jobs", required_argument, NULL, 'j' },
        { "repeat", required_argument, NULL, 'k' },
        { "window", required_argument, NULL, 'w' },
        { "shard", required_argument, NULL, 'S' },
        { "retries", required_argument, NULL, 'R' },
        { "out", required_argument, NULL, 'o' },
        { "all", no_argument, NULL, 'A' },
        { "json", no_argument, NULL, 'J' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct agt_rollout_opts ro = { 0 };
    struct cli_agent_opts ao = CLI_AGENT_OPTS_INIT;
    bool json = false, all = false;
    uint64_t v;
    double f;
    int c, status;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":hj:k:a:o:s:", opts, NULL)) != -1) {
        int took = cli_agent_option("run", c, optarg, &ao, &status);
        if (took < 0)
            return status;
        if (took)
            continue;
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
        case 'R':
            if (cru_parse_u64(optarg, 0, 100, &v) < 0)
                return cli_usage("run", "--retries: %s", cru_err_msg());
            ro.max_attempts = (unsigned)v + 1;
            break;
        case 'S':
            if (parse_shard(optarg, &ro.shard, &ro.shards) < 0)
                return cli_usage("run", "--shard %s: %s", optarg, cru_err_msg());
            break;
        case 'o':
            ro.out = optarg;
            break;
        case 'A':
            all = true;
            break;
        case 'J':
            json = true;
            break;
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

    char *images_dir = NULL, **ids = NULL;
    size_t n_ids = 0, n_loaded = 0;
    struct agt_image **imgs = NULL;
    struct cli_agent ag = { 0 };
    struct agt_rollout_summary sum = { 0 };
    int rc;
    /* One engine for every episode at once: each has at most one model call in flight. */
    ao.seqs = ro.jobs < 8 ? 8 : ro.jobs > MDL_MAX_SEQS ? MDL_MAX_SEQS : ro.jobs;
    if ((status = cli_agent_load("run", &ao, &ag)) != 0)
        goto done;
    status = CLI_EXIT_ERROR;
    if ((rc = agt_images_dir(ao.images, &images_dir)) < 0 ||
        (all && (rc = agt_images_list(images_dir, &ids, &n_ids)) < 0)) {
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
    ro.sc = ag.sc;
    ro.agent = ag.agent;
    ro.model = ag.model;
    ro.seed = ao.seed;
    ro.max_turns = ao.max_turns;
    ro.cancel = &interrupted;
    ro.progress = !json && isatty(STDERR_FILENO);
    /* What sandboxes of crucible processes that were killed left behind goes first. */
    if (sbx_sweep(NULL) < 0)
        cru_warn("sweeping dead sandboxes: %s", cru_err_msg());
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
    cli_agent_free(&ag);
    free(images_dir);
    return status;
}

const struct cli_command cli_cmd_run = {
    .name = "run",
    .summary = "run many episodes at once, released in windowed-FIFO order",
    .help =
        "usage: crucible run (IMAGE... | --all) --out DIR [-j N] [--repeat K] [--window F]\n"
        "                    [--shard I/N] [--retries N] [--agent A] [--model DIR]\n"
        "                    [--temperature T] [--device D] [--gpu-memory F]\n"
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
        "episodes already in the index. Runs rootless without root.\n"
        "\n"
        "An episode the environment failed (status error: the image's setup, the sandbox,\n"
        "crucible itself) is run again, up to --retries times, and only its last attempt is\n"
        "released; one that fails them all is counted under environment_errors and left out\n"
        "of every mean and pass@k. An episode the agent failed (agent_error: a crash, an\n"
        "artifact that cannot be scored) is not retried and counts with its reward (0 when\n"
        "unscorable).\n"
        "\n"
        "Options:\n"
        "  -o, --out DIR     the run folder (required)\n"
        "  --all             every image of the images folder\n"
        "  -j, --jobs N      episodes at once (default 1)\n"
        "  -k, --repeat K    episodes per image (default 1)\n"
        "  --window F        the release window as a fraction of the episodes (default 0.3)\n"
        "  --shard I/N       run only episodes whose number is I modulo N (I from 0)\n"
        "  --retries N       more attempts for an episode the environment failed (default 2)\n"
        "  -a, --agent A     as for run-task (default oracle)\n"
        "  --model DIR       the checkpoint for --agent model; one engine batches all episodes\n"
        "  --temperature T   the model's sampling temperature (default 1; 0 is greedy)\n"
        "  --max-tokens N    the most tokens the model samples in one call (default 1024)\n"
        "  --device D        where the model computes: cpu (the default), cuda or cuda:N\n"
        "  --gpu-memory F    cuda: the share of the device's memory that the weights, the KV\n"
        "                    cache and buffers may take, 0 < F <= 1 (default 0.9)\n"
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
