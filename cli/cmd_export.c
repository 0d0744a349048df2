/* cli/export: `crucible export SRC... --format jsonl|tokens|tree -o OUT`. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/err.h"
#include "recorder/export.h"

static int export_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, 'o' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int fmt = -1, c;
    const char *out = NULL;
    bool json = false;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":hf:o:", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if ((fmt = rec_export_format_from(optarg)) < 0)
                return cli_usage("export", "unknown format '%s' (jsonl, tokens or tree)", optarg);
            break;
        case 'o':
            out = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            cli_print_help(&cli_cmd_export, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("export", c, argv);
        }
    }
    if (fmt < 0)
        return cli_usage("export", "--format is required (jsonl, tokens or tree)");
    if (!out)
        return cli_usage("export", "-o OUT is required ('-' for stdout)");
    if (optind >= argc)
        return cli_usage("export", "no trajectory file or run folder given");

    char **files = NULL;
    size_t n = 0;
    struct rec_export_stats st;
    int rc =
        rec_collect_files((const char *const *)argv + optind, (size_t)(argc - optind), &files, &n);
    if (rc == 0 && n == 0)
        rc = cru_err_set(CRU_ENOENT, "no .traj files in the folders given");
    if (rc == 0)
        rc = rec_export(files, n, (enum rec_export_format)fmt, out, &st);
    for (size_t i = 0; i < n; i++)
        free(files[i]);
    free(files);
    if (rc < 0)
        return cli_fail("export");

    /* The summary goes to stderr when the data goes to stdout. */
    FILE *say = json || strcmp(out, "-") == 0 ? stderr : stdout;
    if (json) {
        if (cli_print_json(
                json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "files", (json_int_t)st.files,
                          "damaged", (json_int_t)st.damaged, "episodes", (json_int_t)st.episodes,
                          "incomplete", (json_int_t)st.incomplete, "samples",
                          (json_int_t)st.samples, "groups", (json_int_t)st.groups, "tokens",
                          (json_int_t)st.tokens, "tokens_out", (json_int_t)st.tokens_out)) < 0)
            return cli_fail("export");
    } else {
        fprintf(say, "export: %llu episodes from %llu files", (unsigned long long)st.episodes,
                (unsigned long long)st.files);
        if (st.incomplete)
            fprintf(say, " (%llu incomplete skipped)", (unsigned long long)st.incomplete);
        if (fmt != REC_EXPORT_JSONL)
            fprintf(say, ", %llu samples", (unsigned long long)st.samples);
        if (fmt == REC_EXPORT_TREE && st.tokens)
            fprintf(say, " in %llu groups: %llu tokens before merging, %llu after (%.2fx)",
                    (unsigned long long)st.groups, (unsigned long long)st.tokens,
                    (unsigned long long)st.tokens_out,
                    st.tokens_out ? (double)st.tokens / (double)st.tokens_out : 1.0);
        else if (fmt == REC_EXPORT_TOKENS)
            fprintf(say, ", %llu tokens", (unsigned long long)st.tokens);
        fputc('\n', say);
    }
    if (st.damaged) {
        fprintf(stderr, "crucible: export: %llu damaged files: their intact episodes were used\n",
                (unsigned long long)st.damaged);
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_export = {
    .name = "export",
    .summary = "export trajectories as chat JSONL, training samples or prefix trees",
    .help = "usage: crucible export SRC... --format jsonl|tokens|tree -o OUT [--json]\n"
            "\n"
            "Reads trajectory files (SRC: files, or run folders searched for *.traj) and\n"
            "writes one of:\n"
            "  jsonl    one JSON line per episode: messages (OpenAI chat shape), reward,\n"
            "           breakdown, status, metadata\n"
            "  tokens   a msgpack stream, one map per training sample (a branch): input_ids,\n"
            "           loss_mask (1 exactly on sampled tokens), logprobs aligned with\n"
            "           input_ids, reward, group_id, episode_id, policy_version\n"
            "  tree     per group, its samples merged into one prefix tree: packed input_ids,\n"
            "           loss_mask, logprobs, position_ids and parent indices, and the samples\n"
            "           with their last token; prints the tokens before and after merging\n"
            "Only episodes with an end record are exported. OUT is written under a temporary\n"
            "name and renamed when complete; '-' writes to stdout. docs/trajectory-format.md\n"
            "specifies every field.\n"
            "\n"
            "Options:\n"
            "  -f, --format F   jsonl, tokens or tree (required)\n"
            "  -o, --output OUT the output file, or '-' (required)\n"
            "  --json           print the summary as a JSON object (on stderr with -o -)\n"
            "  -h, --help       show this help\n"
            "\n"
            "Exit status: 0 exported, 1 some files were damaged (their intact episodes were\n"
            "exported), 2 usage, 3 nothing could be read or the output cannot be written.\n",
    .run = export_run,
};
