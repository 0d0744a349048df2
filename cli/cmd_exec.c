/* cli/exec: `crucible exec [options] -- CMD [ARGS...]`: one command in a fresh sandbox. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/str.h"
#include "sandbox/sandbox.h"

#define MAX_BINDS 64
#define MAX_ENV   256

static const char *const base_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/root",
    "USER=root",
    "LANG=C.UTF-8",
    "TERM=dumb",
};

struct exec_args {
    struct sbx_opts opts;
    struct sbx_bind binds[MAX_BINDS];
    const char *env[MAX_ENV + 1];
    size_t n_env;
    uint64_t timeout_ms;
    const char *cwd;
    bool json;
};

/* SRC:DST into a bind; both parts must be non-empty. */
static int parse_bind(struct exec_args *a, char *spec, bool readonly)
{
    char *colon = strchr(spec, ':');
    if (!colon || colon == spec || colon[1] == '\0')
        return cli_usage("exec", "bind '%s' must be SRC:DST", spec);
    if (a->opts.n_binds == MAX_BINDS)
        return cli_usage("exec", "at most %d binds", MAX_BINDS);
    *colon = '\0';
    a->binds[a->opts.n_binds++] = (struct sbx_bind){ spec, colon + 1, readonly };
    return 0;
}

/* K=V replaces the base entry for K or adds one. */
static int add_env(struct exec_args *a, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return cli_usage("exec", "environment entry '%s' must be KEY=VALUE", kv);
    size_t klen = (size_t)(eq - kv) + 1;
    for (size_t i = 0; i < a->n_env; i++) {
        if (strncmp(a->env[i], kv, klen) == 0) {
            a->env[i] = kv;
            return 0;
        }
    }
    if (a->n_env == MAX_ENV)
        return cli_usage("exec", "at most %d environment entries", MAX_ENV);
    a->env[a->n_env++] = kv;
    a->env[a->n_env] = NULL;
    return 0;
}

static int parse_value(int rc, const char *option)
{
    if (rc == 0)
        return 0;
    return cli_usage("exec", "%s: %s", option, cru_err_msg());
}

static int parse_args(struct exec_args *a, int argc, char **argv)
{
    static const struct option opts[] = {
        { "workspace", required_argument, NULL, 'w' },
        { "bind-workspace", no_argument, NULL, 'W' },
        { "rootfs", required_argument, NULL, 'R' },
        { "bind", required_argument, NULL, 'b' },
        { "ro-bind", required_argument, NULL, 'r' },
        { "env", required_argument, NULL, 'e' },
        { "cwd", required_argument, NULL, 'C' },
        { "mem", required_argument, NULL, 'm' },
        { "pids", required_argument, NULL, 'p' },
        { "cpus", required_argument, NULL, 'c' },
        { "disk", required_argument, NULL, 'd' },
        { "inodes", required_argument, NULL, 'i' },
        { "timeout", required_argument, NULL, 't' },
        { "net", required_argument, NULL, 'n' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c, rc;

    for (size_t i = 0; i < sizeof(base_env) / sizeof(base_env[0]); i++)
        a->env[a->n_env++] = base_env[i];
    a->env[a->n_env] = NULL;
    cli_getopt_reset();
    /* "+": options end at the command, whose own options are its business. */
    while ((c = getopt_long(argc, argv, "+:w:e:h", opts, NULL)) != -1) {
        rc = 0;
        switch (c) {
        case 'w':
            a->opts.workspace = optarg;
            break;
        case 'R':
            a->opts.rootfs = optarg;
            break;
        case 'W':
            a->opts.workspace_bind = true;
            break;
        case 'b':
        case 'r':
            rc = parse_bind(a, optarg, c == 'r');
            break;
        case 'e':
            rc = add_env(a, optarg);
            break;
        case 'C':
            a->cwd = optarg;
            break;
        case 'm':
            rc = parse_value(cru_parse_size(optarg, &a->opts.memory_bytes), "--mem");
            if (rc == 0 && a->opts.memory_bytes < (4u << 20))
                rc = cli_usage("exec", "--mem: %s is below the minimum of 4M", optarg);
            break;
        case 'p':
            rc = parse_value(cru_parse_u64(optarg, 1, 1u << 22, &a->opts.pids), "--pids");
            break;
        case 'c':
            rc = parse_value(cru_parse_double(optarg, 0.01, 4096, &a->opts.cpus), "--cpus");
            break;
        case 'd':
            rc = parse_value(cru_parse_size(optarg, &a->opts.disk_bytes), "--disk");
            if (rc == 0 && (a->opts.disk_bytes < (1u << 20) || a->opts.disk_bytes > (1ull << 40)))
                rc = cli_usage("exec", "--disk: %s is out of range (1M to 1T)", optarg);
            break;
        case 'i':
            rc = parse_value(cru_parse_u64(optarg, 64, 1ull << 32, &a->opts.disk_inodes),
                             "--inodes");
            break;
        case 't':
            rc = parse_value(cru_parse_duration_ms(optarg, &a->timeout_ms), "--timeout");
            if (rc == 0 && a->timeout_ms == 0)
                rc = cli_usage("exec", "--timeout: must be more than 0");
            break;
        case 'n':
            if (strcmp(optarg, "none") == 0)
                a->opts.loopback = false;
            else if (strcmp(optarg, "loopback") == 0)
                a->opts.loopback = true;
            else
                rc = cli_usage("exec", "--net: '%s' is not 'none' or 'loopback'", optarg);
            break;
        case 'j':
            a->json = true;
            break;
        case 'h':
            cli_print_help(&cli_cmd_exec, stdout);
            return -1;
        default:
            return cli_bad_option("exec", c, argv);
        }
        if (rc != 0)
            return rc;
    }
    if (a->opts.workspace_bind && !a->opts.workspace)
        return cli_usage("exec", "--bind-workspace needs --workspace");
    struct stat st;
    if (a->opts.rootfs && (stat(a->opts.rootfs, &st) < 0 || !S_ISDIR(st.st_mode)))
        return cli_usage("exec", "--rootfs: %s is not a folder", a->opts.rootfs);
    if (a->opts.workspace && stat(a->opts.workspace, &st) < 0)
        return cli_usage("exec", "--workspace: %s: %s", a->opts.workspace, strerror(errno));
    if (a->opts.workspace && !S_ISDIR(st.st_mode))
        return cli_usage("exec", "--workspace: %s is not a directory", a->opts.workspace);
    if (optind >= argc)
        return cli_usage("exec", "no command given (put it after --)");
    a->opts.binds = a->binds;
    return 0;
}

static int print_json(const struct sbx_result *r, const struct sbx_info *info)
{
    return cli_print_json(
        json_pack("{s:i, s:i, s:b, s:b, s:b, s:I, s:I, s:I, s:o}", "exit_code", r->exit_code,
                  "signal", r->signal, "timed_out", r->timed_out, "oom", r->oom, "disk_full",
                  r->disk_full, "wall_ms", (json_int_t)r->wall_ms, "cpu_ms", (json_int_t)r->cpu_ms,
                  "max_rss_kb", (json_int_t)r->max_rss_kb, "sandbox", sbx_info_json(info)));
}

static int exec_run(int argc, char **argv)
{
    struct exec_args a = { .opts = SBX_OPTS_INIT };
    struct sbx *sb = NULL;
    struct sbx_result res;
    int rc = parse_args(&a, argc, argv);
    if (rc != 0)
        return rc < 0 ? CLI_EXIT_OK : rc;

    /* No sweep of dead sandboxes here (a third of a millisecond on a command that may take a
     * few): the slot this one claims is cleaned as it is claimed, and `run` sweeps them all. */
    if (sbx_new(&sb, &a.opts) < 0)
        return cli_fail("exec");
    struct sbx_info info;
    sbx_info_get(sb, &info);
    /* Never silently weaker than asked: say what stands in for a missing cgroup. */
    if (info.memory == SBX_ENFORCE_RLIMIT || info.pids == SBX_ENFORCE_RLIMIT)
        cru_warn("exec: without root and without a writable cgroup, --mem and --pids are "
                 "rlimits of each process (RLIMIT_DATA, RLIMIT_NPROC), and OOM is not reported");
    if (a.opts.disk_bytes && !info.workspace_on_disk && a.opts.workspace)
        cru_warn("exec: the workspace's changes go to the host's disk, outside --disk");
    struct sbx_cmd cmd = SBX_CMD_INIT;
    cmd.argv = (const char *const *)(argv + optind);
    cmd.env = a.env;
    cmd.cwd = a.cwd;
    cmd.timeout_ms = a.timeout_ms;
    cmd.stdin_fd = STDIN_FILENO;
    /* With --json, stdout carries only the result: the command's output goes to stderr. */
    cmd.stdout_fd = a.json ? STDERR_FILENO : STDOUT_FILENO;
    cmd.stderr_fd = STDERR_FILENO;
    rc = sbx_exec(sb, &cmd, &res);
    sbx_free(sb);
    if (rc < 0)
        return cli_fail("exec");
    if (a.json && print_json(&res, &info) < 0) {
        sbx_result_free(&res);
        return cli_fail("exec");
    }
    if (res.timed_out)
        fprintf(stderr, "crucible: exec: the command timed out\n");
    if (res.oom)
        fprintf(stderr, "crucible: exec: the command ran out of memory\n");
    if (res.disk_full)
        fprintf(stderr, "crucible: exec: the sandbox's disk is full\n");
    int status = res.exit_code;
    sbx_result_free(&res);
    return status;
}

const struct cli_command cli_cmd_exec = {
    .name = "exec",
    .summary = "run one command in a fresh sandbox",
    .help =
        "usage: crucible exec [options] -- CMD [ARGS...]\n"
        "\n"
        "Runs CMD in a fresh sandbox (private user, mount, pid, network, uts, ipc and cgroup\n"
        "namespaces; read-only host system folders; no capabilities; seccomp) with the\n"
        "workspace as its working directory, passes stdin, stdout and stderr through, and\n"
        "exits with CMD's status (128+N when killed by signal N; 127 when CMD is not found).\n"
        "As root each sandbox has a private uid range and cgroup limits; as any other user\n"
        "it is rootless (the caller's uid alone, and rlimits where no cgroup is writable).\n"
        "\n"
        "Options:\n"
        "  -w, --workspace DIR    show DIR at /workspace as an overlay: changes stay in the\n"
        "                         sandbox, on its disk (default: an empty /workspace)\n"
        "      --bind-workspace   bind DIR writable instead: changes reach DIR (and are not\n"
        "                         bounded by --disk)\n"
        "      --rootfs DIR       use the root filesystem in DIR (its top-level folders\n"
        "                         read-only, its /etc) instead of the host's system folders\n"
        "      --bind SRC:DST     bind host SRC at DST, writable\n"
        "      --ro-bind SRC:DST  bind host SRC at DST, read-only\n"
        "  -e, --env K=V          set an environment variable (the environment is otherwise\n"
        "                         PATH, HOME=/root, USER=root, LANG=C.UTF-8, TERM=dumb)\n"
        "      --cwd DIR          working directory inside (default: /workspace)\n"
        "      --mem SIZE         memory limit, swap off (e.g. 512M, 2G)\n"
        "      --pids N           most processes and threads at once\n"
        "      --cpus F           CPU quota in CPUs (e.g. 0.5, 2)\n"
        "      --disk SIZE        what the sandbox may write in all: /tmp, /root, /run, /var,\n"
        "                         /dev/shm and the workspace's changes (default 1G; held in\n"
        "                         memory, charged to --mem)\n"
        "      --inodes N         files and folders it may make (default: SIZE / 8K)\n"
        "      --timeout T        kill CMD's process group after T (e.g. 30, 500ms, 2m)\n"
        "      --net MODE         none (no interface up) or loopback (default)\n"
        "      --json             print {exit_code, signal, timed_out, oom, disk_full, wall_ms,\n"
        "                         cpu_ms, max_rss_kb, sandbox} on stdout (sandbox: how each\n"
        "                         limit was enforced); CMD's stdout goes to stderr\n"
        "  -h, --help             show this help\n",
    .run = exec_run,
};
