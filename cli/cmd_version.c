/* cli/version: `crucible version [--json]`. */
#include <getopt.h>
#include <jansson.h>

#include "cli/cli.h"

static int version_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int json = 0, c;

    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'h':
            cli_print_help(&cli_cmd_version, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("version", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage("version", "unexpected argument '%s'", argv[optind]);

    if (!json) {
        printf("crucible %s\n", CRU_VERSION);
        return CLI_EXIT_OK;
    }
    if (cli_print_json(json_pack("{s:s}", "version", CRU_VERSION)) < 0)
        return cli_fail("version");
    return CLI_EXIT_OK;
}

const struct cli_command cli_cmd_version = {
    .name = "version",
    .summary = "print crucible's version",
    .help = "usage: crucible version [--json]\n"
            "\n"
            "Prints crucible's version.\n"
            "\n"
            "Options:\n"
            "  --json       print a JSON object: {\"version\": \"X.Y.Z\"}\n"
            "  -h, --help   show this help\n",
    .run = version_run,
};
