/* cli/run_task: `crucible run-task IMAGE [--agent A] [--out DIR] ...`: one episode. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/runner.h"
#include "cli/cli.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/str.h"

static void print_summary(const struct agt_episode_result *r, const char *path)
{
    if (r->scored)
        printf("\nreward %.4g", r->reward);
    else
        printf("\nnot scored");
    printf(" (%s%s%s)\n", rec_status_name(r->status), r->message[0] ? ": " : "", r->message);
    json_t *checks = json_object_get(r->breakdown, "checks");
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c)
    {
        printf("  %s %-30s %s\n", json_is_true(json_object_get(c, "passed")) ? "pass" : "FAIL",
               json_string_value(json_object_get(c, "name")),
               json_string_value(json_object_get(c, "message")));
    }
    printf("%llu turns, %llu tool calls, %.1f s; trajectory %s\n", (unsigned long long)r->turns,
           (unsigned long long)r->tool_calls, (double)r->wall_ms / 1000, path);
}

static int run_task_run(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_AGENT_OPTIONS,
        { "out", required_argument, NULL, 'o' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct cli_agent_opts ao = CLI_AGENT_OPTS_INIT;
    const char *out = "runs";
    bool json = false;
    int c, status;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":ha:o:s:", opts, NULL)) != -1) {
        int took = cli_agent_option("run-task", c, optarg, &ao, &status);
        if (took < 0)
            return status;
        if (took)
            continue;
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            cli_print_help(&cli_cmd_run_task, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("run-task", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage("run-task", "no image given");
    if (optind + 1 < argc)
        return cli_usage("run-task", "expected one image, got %d (crucible run takes many)",
                         argc - optind);

    char *images_dir = NULL, *image_dir = NULL, *path = NULL, id[128];
    struct agt_image *img = NULL;
    struct cli_agent ag = { 0 };
    struct cru_buf problems = CRU_BUF_INIT;
    int rc;
    if ((status = cli_agent_load("run-task", &ao, &ag)) != 0)
        goto done;
    status = CLI_EXIT_ERROR;
    if ((rc = agt_images_dir(strchr(argv[optind], '/') ? "." : ao.images, &images_dir)) < 0 ||
        (rc = agt_image_find(images_dir, argv[optind], &image_dir)) < 0 ||
        (rc = agt_image_load(image_dir, &img, &problems)) < 0 ||
        (rc = cru_mkdir_p(out, 0755)) < 0) {
        fputs(cru_buf_cstr(&problems), stderr);
        status = cli_fail("run-task");
        goto done;
    }
    snprintf(id, sizeof(id), "%s-s%llu", img->id, (unsigned long long)ao.seed);
    if ((rc = cru_str_printf(&path, "%s/%s.traj", out, id)) < 0) {
        status = cli_fail("run-task");
        goto done;
    }
    const char *nc = getenv("NO_COLOR");
    bool tty = !json && isatty(STDOUT_FILENO);
    struct agt_episode_opts eo = { .img = img,
                                   .sc = ag.sc,
                                   .agent = ag.agent,
                                   .model = ag.model,
                                   .path = path,
                                   .episode_id = id,
                                   .seed = ao.seed,
                                   .max_turns = ao.max_turns,
                                   .live = tty ? stdout : NULL,
                                   .live_color = tty && !(nc && *nc) };
    struct agt_episode_result r;
    if ((rc = agt_episode_run(&eo, &r)) < 0) {
        status = cli_fail("run-task");
        goto done;
    }
    if (json) {
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:o, s:s, s:s?, s:O?, s:I, s:I, s:I, s:s}", "episode", id, "image",
            img->id, "agent", ao.agent, "reward", r.scored ? json_real(r.reward) : json_null(),
            "status", rec_status_name(r.status), "message", r.message[0] ? r.message : NULL,
            "breakdown", r.breakdown, "turns", (json_int_t)r.turns, "tool_calls",
            (json_int_t)r.tool_calls, "wall_ms", (json_int_t)r.wall_ms, "trajectory", path);
        if (cli_print_json(o) < 0) {
            agt_episode_result_free(&r);
            status = cli_fail("run-task");
            goto done;
        }
    } else {
        print_summary(&r, path);
    }
    /* An environment's failure says nothing of the agent: it is crucible's exit status 3. */
    status = r.status == REC_ERROR         ? CLI_EXIT_ERROR
             : r.scored && r.reward >= 1.0 ? CLI_EXIT_OK
                                           : CLI_EXIT_FAILED;
    agt_episode_result_free(&r);
done:
    cru_buf_free(&problems);
    agt_image_free(img);
    cli_agent_free(&ag);
    free(images_dir);
    free(image_dir);
    free(path);
    return status;
}

const struct cli_command cli_cmd_run_task = {
    .name = "run-task",
    .summary = "run one episode of an agent on a task image",
    .help =
        "usage: crucible run-task IMAGE [--agent A] [--model DIR] [--out DIR] [--seed N]\n"
        "                         [--max-turns N] [--temperature T] [--device D]\n"
        "                         [--scaffold DIR]\n"
        "                         [--images DIR] [--json]\n"
        "\n"
        "Runs one episode: the image's workspace (after its setup commands) in a sandbox, the\n"
        "agent acting through the scaffold's tools, then the final workspace scored in a fresh\n"
        "sandbox. Every step is recorded in OUT/IMAGE-sSEED.traj (see 'crucible show'). On a\n"
        "terminal the transcript is shown as it happens. Runs rootless without root.\n"
        "\n"
        "Agents:\n"
        "  oracle          apply the image's reference solution (the default)\n"
        "  scripted:FILE   replay a JSON list of tool calls: [{\"tool\", \"arguments\"}, ...]\n"
        "  plugin:PATH.so  a white-box agent built against include/crucible/agent.h\n"
        "  exec:CMD        a program run in the sandbox as sh -c CMD; its result is the artifact\n"
        "  model           the built-in scaffold on the checkpoint given with --model\n"
        "\n"
        "Options:\n"
        "  -a, --agent A      the agent (default oracle)\n"
        "  --model DIR        a checkpoint folder (HuggingFace layout, with its tokenizer) for\n"
        "                     --agent model, or for a plugin's generate\n"
        "  --temperature T    the model's sampling temperature (default 1; 0 is greedy)\n"
        "  --max-tokens N     the most tokens the model samples in one call (default 1024)\n"
        "  --device D         where the model computes: cpu (the default), cuda or cuda:N\n"
        "  --gpu-memory F     cuda: the share of the device's memory that the weights, the KV\n"
        "                     cache and buffers may take, 0 < F <= 1 (default 0.9)\n"
        "  -o, --out DIR      where the trajectory goes (default ./runs)\n"
        "  -s, --seed N       the episode's seed (default 0; also names the trajectory)\n"
        "  --max-turns N      the turn budget (default: the scaffold's or the image's, smaller)\n"
        "  --scaffold DIR     the scaffold folder (default scaffolds/default)\n"
        "  --images DIR       the images folder, when IMAGE is an id\n"
        "  --json             print a summary object: episode, image, agent, reward, status,\n"
        "                     message, breakdown, turns, tool_calls, wall_ms, trajectory\n"
        "  -h, --help         show this help\n"
        "\n"
        "Exit status: 0 the episode scored 1, 1 it scored less (a budget, the agent's own\n"
        "failure or an unscorable artifact: the summary says why), 2 usage, 3 the\n"
        "environment failed (status error: the image's setup, the sandbox, crucible) or the\n"
        "episode could not be recorded.\n",
    .run = run_task_run,
};
