/* cli/main: `crucible [global options] <command> [options]`: global options, the command table
 * and dispatch. Everything a command does lives in its own file and in the modules. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/log.h"

static const struct cli_command cmd_help;

/* The subcommands, in the order `crucible --help` lists them. */
/* One command a line. */
/* clang-format off */
static const struct cli_command *const commands[] = {
    &cmd_help,
    &cli_cmd_exec,
    &cli_cmd_images,
    &cli_cmd_run_task,
    &cli_cmd_run,
    &cli_cmd_show,
    &cli_cmd_verify,
    &cli_cmd_export,
    &cli_cmd_model,
    &cli_cmd_generate,
    &cli_cmd_serve,
    &cli_cmd_tokenize,
    &cli_cmd_version,
};
/* clang-format on */

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char program_help_head[] =
    "usage: crucible [-v | -vv | -q] <command> [options]\n"
    "\n"
    "crucible runs AI agents on coding and office tasks inside isolated sandboxes, scores the\n"
    "artifacts they leave, and records every step as a token-exact trajectory for RL training.\n"
    "\n"
    "Commands:\n";

static const char program_help_tail[] =
    "\n"
    "Options:\n"
    "  -v, --verbose   say more on stderr (-v: progress and info, -vv: debug)\n"
    "  -q, --quiet     report errors only\n"
    "  -V, --version   print the version and exit\n"
    "  -h, --help      show this help and exit\n"
    "\n"
    "Run 'crucible <command> --help' for the options of a command.\n"
    "Exit status: 0 success, 1 the task or check failed, 2 usage error,\n"
    "3 internal or environment error. Errors are printed as 'crucible: <what>: <why>'.\n";

static void print_program_help(FILE *out)
{
    fputs(program_help_head, out);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
    fputs(program_help_tail, out);
}

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    }
    return NULL;
}

static int help_run(int argc, char **argv)
{
    if (argc > 2)
        return cli_usage("help", "expected at most one command name");
    if (argc == 1) {
        print_program_help(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_print_help(&cmd_help, stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_command *cmd = find_command(argv[1]);
    if (!cmd)
        return cli_usage("help", "unknown command '%s'", argv[1]);
    cli_print_help(cmd, stdout);
    return CLI_EXIT_OK;
}

static const struct cli_command cmd_help = {
    .name = "help",
    .summary = "show help for crucible or for one command",
    .help = "usage: crucible help [COMMAND]\n"
            "\n"
            "Shows crucible's help, or COMMAND's (the same as 'crucible COMMAND --help').\n",
    .run = help_run,
};

/* Output that did not reach its destination (a full disk, a closed pipe) must not look like
 * success. */
static int finish(const char *what, int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "crucible: %s: cannot write the output: %s\n", what, strerror(errno));
        return CLI_EXIT_ERROR;
    }
    return status;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int level = CRU_LOG_WARN, c;

    /* "+": stop at the command name, so its options are left for it. */
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "+:vqVh", opts, NULL)) != -1) {
        switch (c) {
        case 'v':
            level = level < CRU_LOG_INFO ? CRU_LOG_INFO : level + 1;
            break;
        case 'q':
            level = CRU_LOG_ERROR;
            break;
        case 'V':
            printf("crucible %s\n", CRU_VERSION);
            return finish("version", CLI_EXIT_OK);
        case 'h':
            print_program_help(stdout);
            return finish("help", CLI_EXIT_OK);
        default:
            return cli_bad_option(NULL, c, argv);
        }
    }
    cru_log_set_level(level);

    if (optind >= argc)
        return cli_usage(NULL, "no command given");
    const struct cli_command *cmd = find_command(argv[optind]);
    if (!cmd)
        return cli_usage(NULL, "unknown command '%s'", argv[optind]);
    cru_debug("running command %s", cmd->name);
    return finish(cmd->name, cmd->run(argc - optind, argv + optind));
}
