/* cli: the command table and the helpers every subcommand uses to parse options and report.
 *
 * A subcommand is a struct cli_command in its own file (cli/cmd_NAME.c), listed in the table in
 * main.c. It parses its arguments, calls into the modules, and turns their result into output
 * and an exit status. Errors are printed only here, as "crucible: <what>: <why>".
 */
#ifndef CRU_CLI_H
#define CRU_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model/device.h"

/* The exit statuses documented in docs/cli.md. */
enum cli_exit {
    CLI_EXIT_OK = 0,     /* success */
    CLI_EXIT_FAILED = 1, /* the task or check ran and failed */
    CLI_EXIT_USAGE = 2,  /* the command line is wrong */
    CLI_EXIT_ERROR = 3,  /* an internal or environment error */
};

struct cli_command {
    const char *name;
    const char *summary; /* one line for the command list */
    const char *help;    /* the full text of `crucible NAME --help` */
    /* Runs the command; ARGV[0] is its name. Returns an enum cli_exit value. */
    int (*run)(int argc, char **argv);
};

/* The exit status for a negative CRU_E* code. */
int cli_exit_code(int err);

/* Prints "crucible: WHAT: " and the last error message to stderr; returns its exit status. */
int cli_fail(const char *what);

/* Prints "crucible: CMD: WHY" and a pointer to --help to stderr; returns CLI_EXIT_USAGE.
 * CMD is NULL for the program's own options. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports the option getopt_long() just rejected (it returned '?' or ':'); returns
 * CLI_EXIT_USAGE. Commands use an optstring that starts with ':' so both cases reach here. */
int cli_bad_option(const char *cmd, int ret, char **argv);

/* Prints V (a new reference, consumed; NULL means it could not be built) as one line of
 * compact JSON on stdout. Returns 0 or a negative CRU_E* code with the error set. */
struct json_t;
int cli_print_json(struct json_t *v);

/* Parses a comma-separated list of token ids ("1,2,3"; each 0 .. 2^31-1, at most 1M ids)
 * into *out (free()). */
int cli_parse_ids(const char *s, int32_t **out, size_t *n);

/* The options `run-task` and `run` share: the agent and what it runs with. */
struct cli_agent_opts {
    const char *agent, *model, *scaffold, *images;
    float temperature;
    uint64_t max_tokens, seed, max_turns;
    struct mdl_device device; /* --device: where the model computes */
    float gpu_memory;         /* --gpu-memory: the device's share for the model (cuda) */
    uint32_t seqs;            /* sequences the engine advances together (run: -j; 0: 8) */
};
#define CLI_AGENT_OPTS_INIT                                                                        \
    {                                                                                              \
        "oracle", NULL, NULL, NULL, 1.0f, 1024, 0, 0, MDL_DEVICE_INIT, MDL_GPU_MEMORY, 0           \
    }

/* Their getopt_long entries (short forms -a and -s), for a command's option table. */
#define CLI_AGENT_OPTIONS                                                                          \
    { "agent", required_argument, NULL, 'a' }, { "model", required_argument, NULL, 'M' },          \
        { "temperature", required_argument, NULL, 'T' },                                           \
        { "max-tokens", required_argument, NULL, 'X' }, { "seed", required_argument, NULL, 's' },  \
        { "max-turns", required_argument, NULL, 't' },                                             \
        { "scaffold", required_argument, NULL, 'C' }, { "images", required_argument, NULL, 'I' },  \
        CLI_DEVICE_OPTIONS

/* --device and --gpu-memory, for every command that runs a model. */
#define CLI_DEVICE_OPTIONS                                                                         \
    { "device", required_argument, NULL, 'D' },                                                    \
    {                                                                                              \
        "gpu-memory", required_argument, NULL, 'G'                                                 \
    }

/* Takes --device (C 'D') or --gpu-memory (C 'G') with ARG into *DEV or *MEM: returns 1, or 0
 * when C is neither, or -1 with *STATUS set to the usage error to exit with. */
int cli_device_option(const char *cmd, int c, const char *arg, struct mdl_device *dev, float *mem,
                      int *status);

/* Takes option C (with ARG) into O when it is one of them: returns 1, or 0 when C is not one
 * of them, or -1 with *STATUS set to the usage error to exit with. */
int cli_agent_option(const char *cmd, int c, const char *arg, struct cli_agent_opts *o,
                     int *status);

/* What the shared options load: the agent, the model (--model; NULL when not given), the
 * scaffold. Returns 0, or the exit status to return with (the error printed). */
struct agt_agent;
struct agt_model;
struct agt_scaffold;
struct cli_agent {
    struct agt_agent *agent;
    struct agt_model *model;
    struct agt_scaffold *sc;
};
int cli_agent_load(const char *cmd, const struct cli_agent_opts *o, struct cli_agent *out);
void cli_agent_free(struct cli_agent *a);

/* Resets getopt_long() for a subcommand's own argv. */
void cli_getopt_reset(void);

/* Prints the command's help text to OUT. */
void cli_print_help(const struct cli_command *cmd, FILE *out);

extern const struct cli_command cli_cmd_exec;
extern const struct cli_command cli_cmd_export;
extern const struct cli_command cli_cmd_generate;
extern const struct cli_command cli_cmd_images;
extern const struct cli_command cli_cmd_model;
extern const struct cli_command cli_cmd_run;
extern const struct cli_command cli_cmd_run_task;
extern const struct cli_command cli_cmd_serve;
extern const struct cli_command cli_cmd_show;
extern const struct cli_command cli_cmd_verify;
extern const struct cli_command cli_cmd_tokenize;
extern const struct cli_command cli_cmd_version;

#endif
