/* cli/show: `crucible show FILE [--json]`: a trajectory as a transcript, or as records. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/err.h"
#include "lib/str.h"
#include "recorder/show.h"

static int show_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "lines", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct rec_show_opts o = { 0 };
    int c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":hn:", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            o.json = true;
            break;
        case 'n': {
            uint64_t n;
            if (cru_parse_u64(optarg, 1, 100000, &n) < 0)
                return cli_usage("show", "--lines: %s", cru_err_msg());
            o.max_lines = (unsigned)n;
            break;
        }
        case 'h':
            cli_print_help(&cli_cmd_show, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("show", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage("show", "no trajectory file given");
    if (optind + 1 < argc)
        return cli_usage("show", "expected one file, got %d", argc - optind);
    const char *nc = getenv("NO_COLOR");
    o.color = !o.json && isatty(STDOUT_FILENO) && !(nc && *nc);
    int rc = rec_show(argv[optind], stdout, &o);
    if (rc < 0) {
        fflush(stdout);
        return cli_fail("show");
    }
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_show = {
    .name = "show",
    .summary = "show a trajectory as a readable transcript",
    .help = "usage: crucible show FILE [--json] [-n LINES]\n"
            "\n"
            "Prints the episodes of a trajectory file as a transcript: the header, the first\n"
            "messages, each model call (branch, tokens, finish reason, text), each tool call\n"
            "and its output, forks, the reward with its breakdown, and the end. Long texts\n"
            "are trimmed. Colors only on a terminal (and never with NO_COLOR set).\n"
            "\n"
            "Options:\n"
            "  --json           print every record as one JSON object per line, with token ids\n"
            "                   and log-probs as arrays and the record's byte offset\n"
            "  -n, --lines N    lines of each text to show (default 12)\n"
            "  -h, --help       show this help\n"
            "\n"
            "Exit status: 0 shown, 1 the file is damaged (what came before is shown),\n"
            "3 it cannot be read.\n",
    .run = show_run,
};
