/* cli/util: exit statuses, error printing and getopt glue shared by all subcommands. */
#include "cli/cli.h"

#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent/model_agent.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/str.h"

int cli_exit_code(int err)
{
    switch (err) {
    case CRU_OK:
        return CLI_EXIT_OK;
    case CRU_EFAILED:
        return CLI_EXIT_FAILED;
    case CRU_EUSAGE:
        return CLI_EXIT_USAGE;
    default:
        return CLI_EXIT_ERROR;
    }
}

int cli_fail(const char *what)
{
    const char *msg = cru_err_msg();
    int code = cru_err_code();
    fprintf(stderr, "crucible: %s: %s\n", what, *msg ? msg : cru_err_str(code));
    /* A failure reported without a code is still a failure. */
    return code == CRU_OK ? CLI_EXIT_ERROR : cli_exit_code(code);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, cmd ? "crucible: %s: " : "crucible: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\nTry 'crucible %s --help' for more information.\n", cmd);
    else
        fprintf(stderr, "\nTry 'crucible --help' for more information.\n");
    return CLI_EXIT_USAGE;
}

int cli_bad_option(const char *cmd, int ret, char **argv)
{
    /* getopt_long leaves optind past the offending word. For a long option optopt is 0 when
     * the option is unknown and its value when it was given an argument it does not take. */
    const char *word = optind > 0 ? argv[optind - 1] : "?";
    bool is_long = strncmp(word, "--", 2) == 0;
    if (ret == ':') {
        if (is_long)
            return cli_usage(cmd, "option '%s' requires an argument", word);
        return cli_usage(cmd, "option '-%c' requires an argument", optopt);
    }
    if (is_long && optopt && strchr(word, '='))
        return cli_usage(cmd, "option '%.*s' takes no argument", (int)strcspn(word, "="), word);
    if (is_long)
        return cli_usage(cmd, "unknown option '%s'", word);
    return cli_usage(cmd, "unknown option '-%c'", optopt);
}

void cli_getopt_reset(void)
{
    /* glibc re-initialises its scanning state (including "+" and POSIXLY_CORRECT handling)
     * when optind is 0. */
    optind = 0;
    opterr = 0;
}

void cli_print_help(const struct cli_command *cmd, FILE *out)
{
    fputs(cmd->help, out);
}

int cli_print_json(json_t *v)
{
    char *text = NULL;
    int rc = v ? cru_json_dump(&text, v, false) : cru_err_set(CRU_ENOMEM, "out of memory");
    json_decref(v);
    if (rc < 0)
        return rc;
    printf("%s\n", text);
    free(text);
    return 0;
}

int cli_parse_ids(const char *s, int32_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t count = 1;
    for (const char *p = s; *p; p++)
        count += *p == ',';
    if (count > (1u << 20))
        return cru_err_set(CRU_ELIMIT, "more than %u ids", 1u << 20);
    int32_t *ids = malloc(count * sizeof(int32_t));
    char *copy = strdup(s);
    if (!ids || !copy) {
        free(ids);
        free(copy);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    size_t k = 0;
    int rc = 0;
    for (char *tok = copy, *next; tok; tok = next) {
        next = strchr(tok, ',');
        if (next)
            *next++ = '\0';
        uint64_t v;
        if (cru_parse_u64(cru_str_trim(tok), 0, INT32_MAX, &v) < 0) {
            rc = cru_err_wrap(CRU_EINVAL, "id %zu", k + 1);
            break;
        }
        ids[k++] = (int32_t)v;
    }
    free(copy);
    if (rc < 0) {
        free(ids);
        return rc;
    }
    *out = ids;
    *n = k;
    return 0;
}

int cli_device_option(const char *cmd, int c, const char *arg, struct mdl_device *dev, float *mem,
                      int *status)
{
    switch (c) {
    case 'D':
        if (mdl_device_parse(arg, dev) < 0) {
            *status = cli_usage(cmd, "--device: %s", cru_err_msg());
            return -1;
        }
        return 1;
    case 'G':
        if (mdl_device_memory_parse(arg, mem) < 0) {
            *status = cli_usage(cmd, "--gpu-memory: %s", cru_err_msg());
            return -1;
        }
        return 1;
    default:
        return 0;
    }
}

int cli_agent_option(const char *cmd, int c, const char *arg, struct cli_agent_opts *o, int *status)
{
    double d;
    int took = cli_device_option(cmd, c, arg, &o->device, &o->gpu_memory, status);
    if (took)
        return took;
    switch (c) {
    case 'a':
        o->agent = arg;
        return 1;
    case 'M':
        o->model = arg;
        return 1;
    case 'C':
        o->scaffold = arg;
        return 1;
    case 'I':
        o->images = arg;
        return 1;
    case 'T':
        if (cru_parse_double(arg, 0, 100, &d) < 0) {
            *status = cli_usage(cmd, "--temperature: %s (0 is greedy)", cru_err_msg());
            return -1;
        }
        o->temperature = (float)d;
        return 1;
    case 'X':
        if (cru_parse_u64(arg, 1, 1u << 20, &o->max_tokens) < 0) {
            *status = cli_usage(cmd, "--max-tokens: %s", cru_err_msg());
            return -1;
        }
        return 1;
    case 's':
        if (cru_parse_u64(arg, 0, UINT64_MAX / 2, &o->seed) < 0) {
            *status = cli_usage(cmd, "--seed: %s", cru_err_msg());
            return -1;
        }
        return 1;
    case 't':
        if (cru_parse_u64(arg, 1, 100000, &o->max_turns) < 0) {
            *status = cli_usage(cmd, "--max-turns: %s", cru_err_msg());
            return -1;
        }
        return 1;
    default:
        return 0;
    }
}

void cli_agent_free(struct cli_agent *a)
{
    agt_agent_free(a->agent);
    agt_model_free(a->model);
    agt_scaffold_free(a->sc);
    memset(a, 0, sizeof(*a));
}

int cli_agent_load(const char *cmd, const struct cli_agent_opts *o, struct cli_agent *out)
{
    memset(out, 0, sizeof(*out));
    int rc = agt_agent_load(o->agent, &out->agent);
    if (rc < 0)
        return rc == CRU_EINVAL ? cli_usage(cmd, "--agent: %s", cru_err_msg()) : cli_fail(cmd);
    if (!o->model && agt_agent_kind(out->agent) == AGT_AGENT_MODEL) {
        cli_agent_free(out);
        return cli_usage(cmd, "--agent model needs --model DIR (a checkpoint folder)");
    }
    char *sc_dir = NULL;
    struct agt_model_opts mo = AGT_MODEL_OPTS_INIT;
    mo.dir = o->model;
    mo.temperature = o->temperature;
    mo.max_call_tokens = (uint32_t)o->max_tokens;
    mo.device = o->device;
    mo.gpu_memory = o->gpu_memory;
    mo.slots = o->seqs;
    if ((o->model && agt_model_open(&out->model, &mo) < 0) ||
        agt_scaffold_dir(o->scaffold, &sc_dir) < 0 || agt_scaffold_load(sc_dir, &out->sc) < 0) {
        free(sc_dir);
        cli_agent_free(out);
        return cli_fail(cmd);
    }
    free(sc_dir);
    return 0;
}
