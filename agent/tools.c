/* agent/tools: the bash, view, create, str_replace, list and submit tools. Each call parses its
 * arguments, acts through the sandbox (commands) or its root-confined file access (files),
 * caps the observation at the scaffold's limit, and records the call. */
#include "agent/tools.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/path.h"
#include "lib/str.h"
#include "sandbox/sandbox.h"

#define FILE_MAX    ((size_t)16 << 20) /* the largest file view and str_replace read */
#define LIST_MAX    2000               /* entries list shows */
#define TIMEOUT_MAX 600                /* seconds a bash call may ask for */
/* The largest arguments of one call, and what the record keeps of larger ones: a call over it
 * is refused like any bad call, and its record stays far below the recorder's record limit. */
#define ARGUMENTS_MAX  ((size_t)16 << 20)
#define ARGUMENTS_KEPT 4096

/* One call's outcome, for the record. */
struct call {
    const char *status; /* "ok", "error", "timeout", "cancelled" */
    int64_t exit_code;
    uint64_t full_bytes; /* the output's size before any cap */
};

static int say(struct cru_buf *obs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int say(struct cru_buf *obs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cru_buf_vprintf(obs, fmt, ap);
    va_end(ap);
    return rc;
}

/* An error the agent reads; the call is recorded with status "error". */
static int refuse(struct call *c, struct cru_buf *obs, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(struct call *c, struct cru_buf *obs, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cru_buf_reset(obs);
    int rc = cru_buf_puts(obs, "error: ");
    if (rc == 0)
        rc = cru_buf_vprintf(obs, fmt, ap);
    va_end(ap);
    c->status = "error";
    return rc;
}

int agt_tool_path(const char *path, char **out)
{
    if (strcmp(path, "/workspace") == 0 || strcmp(path, "/workspace/") == 0)
        path = "";
    else if (cru_str_starts_with(path, "/workspace/"))
        path += strlen("/workspace/");
    else if (path[0] == '/')
        return cru_err_set(CRU_EUNSAFE, "%s is outside /workspace", path);
    return cru_path_clean(out, path);
}

static const char *arg_str(const json_t *args, const char *key)
{
    return json_string_value(json_object_get(args, key));
}

/* Keeps the first CAP bytes of OBS and says how much was cut. */
static void cap_obs(struct cru_buf *obs, uint64_t cap)
{
    if (obs->len <= cap)
        return;
    size_t cut = obs->len - (size_t)cap;
    obs->len = (size_t)cap;
    obs->data[obs->len] = '\0';
    say(obs, "\n[... %zu more bytes not shown]", cut);
}

static int tool_bash(struct agt_tools *t, const json_t *args, struct call *c, struct cru_buf *obs)
{
    const char *cmd = arg_str(args, "command");
    if (!cmd)
        return refuse(c, obs, "bash needs a \"command\" string");
    json_t *to = json_object_get(args, "timeout");
    uint64_t timeout_ms = t->sc->command_timeout_ms;
    if (to && (!json_is_integer(to) || json_integer_value(to) < 1 ||
               json_integer_value(to) > TIMEOUT_MAX))
        return refuse(c, obs, "\"timeout\" must be a number of seconds from 1 to %d", TIMEOUT_MAX);
    if (to)
        timeout_ms = (uint64_t)json_integer_value(to) * 1000;
    struct sbx_cmd sc = SBX_CMD_INIT;
    sc.shell = cmd;
    sc.timeout_ms = timeout_ms;
    sc.stdout_cap = sc.stderr_cap = (size_t)t->sc->observation_bytes;
    sc.cancel = t->cancel;
    struct sbx_result r = { 0 };
    int rc = sbx_exec(t->sb, &sc, &r);
    /* A command the sandbox cannot take (longer than a command may be) is the agent's to
     * shorten: an observation, not the end of its episode. A sandbox that its memory limit
     * spent is another matter: the runner ends the episode as a spent budget. */
    if (rc == CRU_ELIMIT && !sbx_lost_to_oom(t->sb)) {
        sbx_result_free(&r);
        return refuse(c, obs,
                      "the command was not run: %s; write a long script to a file (create) "
                      "and run the file",
                      cru_err_msg());
    }
    if (rc < 0) {
        sbx_result_free(&r);
        return cru_err_wrap(rc, "running a bash call");
    }
    c->exit_code = r.exit_code;
    c->full_bytes = r.out_total + r.err_total;
    if (r.cancelled) {
        c->status = "cancelled";
        say(obs, "the command was stopped: the run was interrupted\n");
    } else if (r.timed_out) {
        c->status = "timeout";
        say(obs, "the command was stopped after %llu s (its timeout)\n",
            (unsigned long long)(timeout_ms / 1000));
    } else if (r.oom) {
        c->status = "oom";
        say(obs, "the command was killed: the sandbox ran out of memory\n");
    }
    if (r.disk_full)
        say(obs, "the sandbox's disk is full (no space or no inode left)\n");
    say(obs, "exit status %d\n", r.exit_code);
    if (r.out.len)
        cru_buf_append(obs, r.out.data, r.out.len);
    if (r.err.len) {
        say(obs, "%s[stderr]\n", obs->len && obs->data[obs->len - 1] != '\n' ? "\n" : "");
        cru_buf_append(obs, r.err.data, r.err.len);
    }
    sbx_result_free(&r);
    return 0;
}

static int read_text(struct agt_tools *t, const char *path, const char *rel, struct call *c,
                     struct cru_buf *obs, struct cru_buf *text)
{
    int rc = sbx_fs_read(&t->fs, rel, FILE_MAX, text);
    if (rc == CRU_ENOENT)
        return refuse(c, obs, "%s does not exist", path);
    if (rc == CRU_ELIMIT)
        return refuse(c, obs, "%s is larger than %zu MiB; use bash (head, sed -n) to read parts",
                      path, FILE_MAX >> 20);
    if (rc < 0)
        return refuse(c, obs, "cannot read %s: %s", path, cru_err_msg());
    if (text->len && memchr(text->data, '\0', text->len))
        return refuse(c, obs, "%s is not a text file", path);
    return 1;
}

static int tool_view(struct agt_tools *t, const json_t *args, struct call *c, struct cru_buf *obs)
{
    const char *path = arg_str(args, "path");
    char *rel = NULL;
    if (!path)
        return refuse(c, obs, "view needs a \"path\" string");
    if (agt_tool_path(path, &rel) < 0)
        return refuse(c, obs, "%s", cru_err_msg());
    json_t *js = json_object_get(args, "start"), *je = json_object_get(args, "end");
    if ((js && !json_is_integer(js)) || (je && !json_is_integer(je))) {
        free(rel);
        return refuse(c, obs, "\"start\" and \"end\" must be line numbers");
    }
    long long start = js ? json_integer_value(js) : 1, end = je ? json_integer_value(je) : -1;
    struct cru_buf text = CRU_BUF_INIT;
    int rc = read_text(t, path, rel, c, obs, &text);
    free(rel);
    if (rc <= 0) {
        cru_buf_free(&text);
        return rc;
    }
    long long line = 1, shown = 0, total = 0;
    for (size_t i = 0; i < text.len; i++)
        total += text.data[i] == '\n';
    if (text.len && text.data[text.len - 1] != '\n')
        total++;
    if (start < 1 || (end != -1 && end < start) || (total > 0 && start > total)) {
        cru_buf_free(&text);
        return refuse(c, obs, "lines %lld to %lld are not in %s, which has %lld lines", start, end,
                      path, total);
    }
    for (size_t i = 0; i < text.len && (end == -1 || line <= end);) {
        size_t j = i;
        while (j < text.len && text.data[j] != '\n')
            j++;
        if (line >= start) {
            if ((uint64_t)shown >= t->sc->view_lines) {
                say(obs, "[... lines %lld to %lld not shown: ask for a range]\n", line,
                    end == -1 ? total : end);
                break;
            }
            say(obs, "%6lld\t%.*s\n", line, (int)(j - i), text.data + i);
            shown++;
        }
        line++;
        i = j + 1;
    }
    c->full_bytes = text.len;
    cru_buf_free(&text);
    return 0;
}

static int tool_create(struct agt_tools *t, const json_t *args, struct call *c, struct cru_buf *obs)
{
    const char *path = arg_str(args, "path");
    json_t *content = json_object_get(args, "content");
    char *rel = NULL;
    if (!path || !json_is_string(content))
        return refuse(c, obs, "create needs \"path\" and \"content\" strings");
    if (agt_tool_path(path, &rel) < 0)
        return refuse(c, obs, "%s", cru_err_msg());
    int rc = sbx_fs_write(&t->fs, rel, json_string_value(content), json_string_length(content),
                          0644, true);
    free(rel);
    if (rc < 0)
        return refuse(c, obs, "cannot write %s: %s", path, cru_err_msg());
    return say(obs, "wrote %zu bytes to %s", json_string_length(content), path);
}

static int tool_str_replace(struct agt_tools *t, const json_t *args, struct call *c,
                            struct cru_buf *obs)
{
    const char *path = arg_str(args, "path");
    json_t *old = json_object_get(args, "old"), *new = json_object_get(args, "new");
    char *rel = NULL;
    if (!path || !json_is_string(old) || !json_is_string(new))
        return refuse(c, obs, "str_replace needs \"path\", \"old\" and \"new\" strings");
    size_t olen = json_string_length(old), nlen = json_string_length(new);
    if (olen == 0)
        return refuse(c, obs, "\"old\" is empty: give the text to replace");
    if (agt_tool_path(path, &rel) < 0)
        return refuse(c, obs, "%s", cru_err_msg());
    struct cru_buf text = CRU_BUF_INIT, out = CRU_BUF_INIT;
    struct stat st;
    int rc = read_text(t, path, rel, c, obs, &text);
    if (rc > 0) {
        const char *o = json_string_value(old), *first = NULL;
        size_t count = 0;
        for (const char *p = text.data; p && (size_t)(p - text.data) + olen <= text.len;) {
            p = memmem(p, text.len - (size_t)(p - text.data), o, olen);
            if (p) {
                if (!first)
                    first = p;
                count++;
                p += olen;
            }
        }
        if (count == 0) {
            rc = refuse(c, obs,
                        "the old text does not occur in %s (it must match exactly, "
                        "white space included)",
                        path);
        } else if (count > 1) {
            rc = refuse(c, obs,
                        "the old text occurs %zu times in %s; include more of the "
                        "surrounding lines to make it unique",
                        count, path);
        } else {
            size_t at = (size_t)(first - text.data);
            mode_t mode = sbx_fs_stat(&t->fs, rel, &st) == 0 ? st.st_mode & 0777 : 0644;
            rc = cru_buf_append(&out, text.data, at);
            if (rc == 0)
                rc = cru_buf_append(&out, json_string_value(new), nlen);
            if (rc == 0)
                rc = cru_buf_append(&out, text.data + at + olen, text.len - at - olen);
            if (rc == 0 &&
                sbx_fs_write(&t->fs, rel, out.data ? out.data : "", out.len, mode, false) < 0)
                rc = refuse(c, obs, "cannot write %s: %s", path, cru_err_msg());
            else if (rc == 0) {
                long long line = 1;
                for (size_t i = 0; i < at; i++)
                    line += text.data[i] == '\n';
                rc = say(obs, "replaced 1 occurrence in %s at line %lld", path, line);
            }
        }
    }
    free(rel);
    cru_buf_free(&text);
    cru_buf_free(&out);
    return rc < 0 ? rc : 0;
}

static int tool_list(struct agt_tools *t, const json_t *args, struct call *c, struct cru_buf *obs)
{
    json_t *jp = json_object_get(args, "path");
    if (jp && !json_is_string(jp))
        return refuse(c, obs, "\"path\" must be a string");
    const char *path = jp ? json_string_value(jp) : "/workspace";
    char *rel = NULL;
    if (agt_tool_path(path, &rel) < 0)
        return refuse(c, obs, "%s", cru_err_msg());
    struct sbx_fs_entry *e = NULL;
    size_t n = 0;
    int rc = sbx_fs_list(&t->fs, rel, LIST_MAX, &e, &n);
    free(rel);
    if (rc == CRU_ENOENT)
        return refuse(c, obs, "%s does not exist", path);
    if (rc == CRU_ELIMIT)
        return refuse(c, obs, "%s holds more than %d entries; use bash (ls, find)", path, LIST_MAX);
    if (rc < 0)
        return refuse(c, obs, "cannot list %s: %s", path, cru_err_msg());
    for (size_t i = 0; i < n; i++) {
        if (S_ISDIR(e[i].type))
            say(obs, "%s/\n", e[i].name);
        else if (S_ISLNK(e[i].type))
            say(obs, "%s@\n", e[i].name);
        else
            say(obs, "%s  %llu\n", e[i].name, (unsigned long long)e[i].size);
    }
    if (n == 0)
        say(obs, "(empty)\n");
    sbx_fs_entries_free(e, n);
    return 0;
}

int agt_tool_run(struct agt_tools *t, const char *call_id, const char *name, const char *arguments,
                 struct cru_buf *obs)
{
    struct call c = { "ok", -1, 0 };
    uint64_t start = cru_now_ns();
    if (!name)
        name = "";
    json_t *args = NULL;
    int rc = 0;
    size_t args_len = arguments ? strlen(arguments) : 0;
    cru_buf_reset(obs);
    if (args_len > ARGUMENTS_MAX) {
        rc = refuse(&c, obs, "the arguments are %zu bytes, over the limit of %zu", args_len,
                    ARGUMENTS_MAX);
    } else if (args_len) {
        if (cru_json_parse(&args, arguments, strlen(arguments), "arguments") < 0)
            rc = refuse(&c, obs, "the arguments are not JSON: %s", cru_err_msg());
        else if (!json_is_object(args))
            rc = refuse(&c, obs, "the arguments must be a JSON object");
    } else {
        args = json_object();
    }
    if (c.status[0] == 'o') {
        if (!agt_scaffold_has_tool(t->sc, name))
            rc = refuse(&c, obs, "there is no tool '%s'", name);
        else if (strcmp(name, "bash") == 0)
            rc = tool_bash(t, args, &c, obs);
        else if (strcmp(name, "view") == 0)
            rc = tool_view(t, args, &c, obs);
        else if (strcmp(name, "create") == 0)
            rc = tool_create(t, args, &c, obs);
        else if (strcmp(name, "str_replace") == 0)
            rc = tool_str_replace(t, args, &c, obs);
        else if (strcmp(name, "list") == 0)
            rc = tool_list(t, args, &c, obs);
        else if (strcmp(name, "submit") == 0) {
            t->submitted = true;
            rc = say(obs, "submitted");
        }
    }
    json_decref(args);
    if (rc < 0)
        return rc;
    if (!c.full_bytes)
        c.full_bytes = obs->len;
    cap_obs(obs, t->sc->observation_bytes);
    t->calls++;
    t->last_status = c.status;
    if (!t->ep)
        return 0;
    char kept[ARGUMENTS_KEPT + 1];
    if (args_len > ARGUMENTS_MAX) {
        memcpy(kept, arguments, ARGUMENTS_KEPT);
        kept[ARGUMENTS_KEPT] = '\0';
    }
    struct rec_tool r = { .branch = t->branch,
                          .call_id = call_id,
                          .name = name,
                          .arguments = args_len > ARGUMENTS_MAX ? kept
                                       : arguments              ? arguments
                                                                : "{}",
                          .arguments_bytes = args_len > ARGUMENTS_MAX ? args_len : 0,
                          .status = c.status,
                          .exit_code = c.exit_code,
                          .output = obs->data ? obs->data : "",
                          .output_len = obs->len,
                          .output_bytes = c.full_bytes,
                          .output_cap = t->sc->observation_bytes,
                          .duration_ms = (double)(cru_now_ns() - start) / 1e6 };
    return rec_tool(t->ep, &r);
}
