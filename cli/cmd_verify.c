/* cli/verify: `crucible verify FILE...`: is each trajectory file intact and complete? */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/err.h"
#include "recorder/episode.h"

static int verify_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool json = false;
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'h':
            cli_print_help(&cli_cmd_verify, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("verify", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage("verify", "no trajectory file given");

    int status = CLI_EXIT_OK;
    json_t *arr = json ? json_array() : NULL;
    for (int i = optind; i < argc; i++) {
        struct rec_verify v;
        int rc = rec_verify_file(argv[i], &v);
        if (rc < 0 && rc != CRU_EFAILED) {
            /* Not readable at all: an environment error, unless others failed the check. */
            fprintf(stderr, "crucible: verify: %s\n", cru_err_msg());
            if (status == CLI_EXIT_OK)
                status = CLI_EXIT_ERROR;
        } else if (rc < 0) {
            status = CLI_EXIT_FAILED;
            /* The message names the file already; the line starts with it once. */
            const char *msg = cru_err_msg();
            size_t n = strlen(argv[i]);
            if (strncmp(msg, argv[i], n) == 0 && strncmp(msg + n, ": ", 2) == 0)
                msg += n + 2;
            if (!json)
                printf("%s: BAD: %s (%llu intact records, %llu of %llu episodes complete)\n",
                       argv[i], msg, (unsigned long long)v.records, (unsigned long long)v.complete,
                       (unsigned long long)v.episodes);
        } else if (!json) {
            printf("%s: ok: %llu records, %llu episodes%s\n", argv[i],
                   (unsigned long long)v.records, (unsigned long long)v.episodes,
                   v.unknown ? " (some records of unknown types skipped)" : "");
        }
        if (json)
            json_array_append_new(
                arr,
                json_pack("{s:s, s:b, s:s, s:s?, s:I, s:I, s:I, s:I, s:I}", "file", argv[i], "ok",
                          rc == 0, "problem", rec_problem_name(v.problem), "message",
                          rc < 0 ? cru_err_msg() : NULL, "records", (json_int_t)v.records,
                          "episodes", (json_int_t)v.episodes, "complete", (json_int_t)v.complete,
                          "unknown", (json_int_t)v.unknown, "intact_bytes", (json_int_t)v.bytes));
    }
    if (json && cli_print_json(arr) < 0)
        return cli_fail("verify");
    return status;
}

const struct cli_command cli_cmd_verify = {
    .name = "verify",
    .summary = "check that trajectory files are intact and complete",
    .help = "usage: crucible verify FILE... [--json]\n"
            "\n"
            "Reads each trajectory file to the end and checks every record's length and\n"
            "checksum, the episodes' consistency (sequence numbers, each model call extending\n"
            "its branch, token and log-prob counts) and that every episode has its end record.\n"
            "A file is good when it is intact and complete: its last record ends an episode.\n"
            "For a bad file it says what is wrong (a torn tail, a bad checksum, an episode\n"
            "without an end) with the byte offset, and how many records are intact.\n"
            "\n"
            "Options:\n"
            "  --json       print a JSON array, one object per file: file, ok, problem, message,\n"
            "               records, episodes, complete, unknown, intact_bytes\n"
            "  -h, --help   show this help\n"
            "\n"
            "Exit status: 0 every file is good, 1 some file is not, 3 a file cannot be read.\n",
    .run = verify_run,
};
