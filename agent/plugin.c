/* agent/plugin: the worker process that runs a plugin's code, and the RPC that carries its host
 * calls back to the episode's thread. Messages are msgpack arrays framed by a u32 length:
 *
 *   episode -> worker   ["init"] ["step"] ["finish", status]
 *   worker -> episode   ["done", rc]                            (the answer to each of those)
 *                       ["generate", prompt(bin i32), max_tokens, cap]  -> [rc, ids, logprobs, n,
 * err]
 *                       ["exec", command, timeout_ms, cap]              -> [rc, exit, out, err]
 *                       ["read", path, cap]                             -> [rc, data, len, err]
 *                       ["write", path, data]                           -> [rc, err]
 *                       ["edit", from, position, why]                   -> [rc, branch, err]
 *                       ["event", name, data_json|nil]                  -> [rc, err]
 *                       ["log", level, message]                         -> [0]
 *
 * The episode's thread validates every request from the worker as input from outside (sizes,
 * types, bounds), since the plugin may be broken in any way.
 */
#include "agent/plugin.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "recorder/format.h"

#define MSG_MAX        ((uint32_t)64 << 20)
#define CAP_MAX        ((uint64_t)32 << 20) /* the largest buffer a plugin may ask to fill */
#define TOKENS_MAX     ((uint64_t)1 << 20)
#define FINISH_WAIT_MS 5000

/* ---- framing (both sides) ---- */

/* send() with MSG_NOSIGNAL: a peer that died is an EPIPE error here, not a SIGPIPE that would
 * end the whole process. */
static int send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cru_err_sys("writing to the plugin's socket");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_msg(int fd, const msgpack_sbuffer *sb)
{
    uint8_t len[4];
    rec_put_le32(len, (uint32_t)sb->size);
    int rc = send_all(fd, len, 4);
    return rc < 0 ? rc : send_all(fd, sb->data, sb->size);
}

/* Reads exactly N bytes before DEADLINE (0: none). 1 read, 0 end of file, negative error. */
static int read_exact(int fd, void *buf, size_t n, uint64_t deadline_ns)
{
    size_t got = 0;
    while (got < n) {
        if (deadline_ns) {
            uint64_t left = cru_deadline_left_ms(deadline_ns);
            if (left == 0)
                return cru_err_set(CRU_ETIMEDOUT, "the plugin did not answer in time");
            struct pollfd p = { fd, POLLIN, 0 };
            int pr = poll(&p, 1, left > 60000 ? 60000 : (int)left);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr < 0)
                return cru_err_sys("waiting for the plugin");
            if (pr == 0)
                continue;
        }
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return cru_err_sys("reading from the plugin's worker");
        if (r == 0)
            return got == 0 ? 0
                            : cru_err_set(CRU_EPARSE, "the plugin's worker sent half a message");
        got += (size_t)r;
    }
    return 1;
}

/* One message into UP (its objects point into BUF). 1, 0 at end of file, or negative. */
static int recv_msg(int fd, struct cru_buf *buf, msgpack_unpacked *up, uint64_t deadline_ns)
{
    uint8_t len[4];
    int rc = read_exact(fd, len, 4, deadline_ns);
    if (rc <= 0)
        return rc;
    uint32_t n = rec_le32(len);
    if (n == 0 || n > MSG_MAX)
        return cru_err_set(CRU_EPARSE, "a message of %u bytes from the plugin's worker", n);
    cru_buf_reset(buf);
    if ((rc = cru_buf_reserve(buf, n)) < 0)
        return rc;
    if ((rc = read_exact(fd, buf->data, n, deadline_ns)) <= 0)
        return rc < 0 ? rc : cru_err_set(CRU_EPARSE, "the plugin's worker sent half a message");
    buf->len = n;
    if (rec_msgpack_check((const uint8_t *)buf->data, n) < 0)
        return cru_err_wrap(CRU_EPARSE, "a message from the plugin's worker");
    size_t off = 0;
    msgpack_unpacked_destroy(up);
    msgpack_unpacked_init(up);
    if (msgpack_unpack_next(up, buf->data, n, &off) != MSGPACK_UNPACK_SUCCESS ||
        up->data.type != MSGPACK_OBJECT_ARRAY || up->data.via.array.size == 0)
        return cru_err_set(CRU_EPARSE, "a message from the plugin's worker is not an array");
    return 1;
}

static const msgpack_object *arg(const msgpack_unpacked *up, uint32_t i)
{
    return i < up->data.via.array.size ? &up->data.via.array.ptr[i] : NULL;
}

static bool arg_is(const msgpack_unpacked *up, uint32_t i, const char *s)
{
    const msgpack_object *o = arg(up, i);
    size_t n = strlen(s);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

static bool arg_u64(const msgpack_unpacked *up, uint32_t i, uint64_t *v)
{
    const msgpack_object *o = arg(up, i);
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *v = o->via.u64;
    return true;
}

static bool arg_i64(const msgpack_unpacked *up, uint32_t i, int64_t *v)
{
    const msgpack_object *o = arg(up, i);
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return true;
    }
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return true;
    }
    return false;
}

/* A string argument as a C string (copied: the message's bytes are not NUL-terminated). */
static char *arg_str(const msgpack_unpacked *up, uint32_t i)
{
    const msgpack_object *o = arg(up, i);
    if (!o || o->type != MSGPACK_OBJECT_STR || memchr(o->via.str.ptr, '\0', o->via.str.size))
        return NULL;
    char *s = malloc(o->via.str.size + 1);
    if (s) {
        memcpy(s, o->via.str.ptr, o->via.str.size);
        s[o->via.str.size] = '\0';
    }
    return s;
}

static const msgpack_object_bin *arg_bin(const msgpack_unpacked *up, uint32_t i)
{
    const msgpack_object *o = arg(up, i);
    return o && o->type == MSGPACK_OBJECT_BIN ? &o->via.bin : NULL;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    if (s)
        msgpack_pack_str_with_body(pk, s, strlen(s));
    else
        msgpack_pack_nil(pk);
}

/* ---- the worker (a forked child: only the plugin's code and this proxy run here) ---- */

struct proxy {
    int fd;
    char error[512];
    struct cru_buf in;
    msgpack_unpacked up;
};

/* Sends REQ and waits for the answer; a lost parent ends the worker. Returns the answer's rc
 * and keeps its error message. */
static int64_t call(struct proxy *p, msgpack_sbuffer *req, uint32_t err_at)
{
    if (send_msg(p->fd, req) < 0 || recv_msg(p->fd, &p->in, &p->up, 0) <= 0)
        _exit(70);
    msgpack_sbuffer_clear(req);
    int64_t rc;
    if (!arg_i64(&p->up, 0, &rc))
        _exit(71);
    const msgpack_object *e = arg(&p->up, err_at);
    if (rc < 0 && e && e->type == MSGPACK_OBJECT_STR)
        snprintf(p->error, sizeof(p->error), "%.*s", (int)e->via.str.size, e->via.str.ptr);
    return rc;
}

#define REQUEST(p, n, name)                                                                        \
    msgpack_sbuffer sb;                                                                            \
    msgpack_sbuffer_init(&sb);                                                                     \
    msgpack_packer pk;                                                                             \
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);                                          \
    msgpack_pack_array(&pk, (n));                                                                  \
    pack_str(&pk, (name))

static int px_generate(void *ctx, const int32_t *prompt, size_t n_prompt, uint32_t max_tokens,
                       int32_t *ids, float *logprobs, size_t cap, size_t *n_out)
{
    struct proxy *p = ctx;
    REQUEST(p, 4, "generate");
    rec_pack_i32s(&pk, prompt ? prompt : (const int32_t *)"", prompt ? n_prompt : 0);
    msgpack_pack_uint32(&pk, max_tokens);
    msgpack_pack_uint64(&pk, cap);
    int64_t rc = call(p, &sb, 4);
    msgpack_sbuffer_destroy(&sb);
    uint64_t n = 0;
    const msgpack_object_bin *bi = arg_bin(&p->up, 1), *bl = arg_bin(&p->up, 2);
    if (rc == 0 && arg_u64(&p->up, 3, &n) && n <= cap && bi && bl && bi->size == n * 4 &&
        bl->size == n * 4) {
        memcpy(ids, bi->ptr, n * 4);
        memcpy(logprobs, bl->ptr, n * 4);
    }
    if (n_out)
        *n_out = (size_t)n;
    return (int)rc;
}

static int px_exec(void *ctx, const char *command, uint64_t timeout_ms, int *exit_code, char *out,
                   size_t cap, size_t *out_len)
{
    struct proxy *p = ctx;
    REQUEST(p, 4, "exec");
    pack_str(&pk, command);
    msgpack_pack_uint64(&pk, timeout_ms);
    msgpack_pack_uint64(&pk, cap);
    int64_t rc = call(p, &sb, 3);
    msgpack_sbuffer_destroy(&sb);
    int64_t code = -1;
    (void)arg_i64(&p->up, 1, &code);
    if (exit_code)
        *exit_code = (int)code;
    const msgpack_object_bin *b = arg_bin(&p->up, 2);
    if (b && out_len)
        *out_len = b->size;
    if (rc == 0 && b && b->size < cap && out) {
        memcpy(out, b->ptr, b->size);
        out[b->size] = '\0';
    }
    return (int)rc;
}

static int px_read(void *ctx, const char *path, char *buf, size_t cap, size_t *len)
{
    struct proxy *p = ctx;
    REQUEST(p, 3, "read");
    pack_str(&pk, path);
    msgpack_pack_uint64(&pk, cap);
    int64_t rc = call(p, &sb, 3);
    msgpack_sbuffer_destroy(&sb);
    uint64_t n = 0;
    (void)arg_u64(&p->up, 2, &n);
    if (len)
        *len = (size_t)n;
    const msgpack_object_bin *b = arg_bin(&p->up, 1);
    if (rc == 0 && b && b->size < cap && buf) {
        memcpy(buf, b->ptr, b->size);
        buf[b->size] = '\0';
    }
    return (int)rc;
}

static int px_write(void *ctx, const char *path, const void *data, size_t len)
{
    struct proxy *p = ctx;
    REQUEST(p, 3, "write");
    pack_str(&pk, path);
    msgpack_pack_bin(&pk, data ? len : 0);
    msgpack_pack_bin_body(&pk, data ? data : "", data ? len : 0);
    int64_t rc = call(p, &sb, 1);
    msgpack_sbuffer_destroy(&sb);
    return (int)rc;
}

static int px_edit(void *ctx, uint32_t from, uint64_t position, const char *why, uint32_t *branch)
{
    struct proxy *p = ctx;
    REQUEST(p, 4, "edit");
    msgpack_pack_uint32(&pk, from);
    msgpack_pack_uint64(&pk, position);
    pack_str(&pk, why);
    int64_t rc = call(p, &sb, 2);
    msgpack_sbuffer_destroy(&sb);
    uint64_t b = 0;
    if (rc == 0 && branch && arg_u64(&p->up, 1, &b))
        *branch = (uint32_t)b;
    return (int)rc;
}

static void px_log(void *ctx, int level, const char *message)
{
    struct proxy *p = ctx;
    REQUEST(p, 3, "log");
    msgpack_pack_int(&pk, level);
    pack_str(&pk, message);
    (void)call(p, &sb, 1);
    msgpack_sbuffer_destroy(&sb);
}

static int px_event(void *ctx, const char *name, const char *data_json)
{
    struct proxy *p = ctx;
    REQUEST(p, 3, "event");
    pack_str(&pk, name);
    pack_str(&pk, data_json);
    int64_t rc = call(p, &sb, 1);
    msgpack_sbuffer_destroy(&sb);
    return (int)rc;
}

static const char *px_last_error(void *ctx)
{
    return ((struct proxy *)ctx)->error;
}

static void send_done(int fd, int64_t rc)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    pack_str(&pk, "done");
    msgpack_pack_int64(&pk, rc);
    if (send_msg(fd, &sb) < 0)
        _exit(70);
    msgpack_sbuffer_destroy(&sb);
}

static void worker(int fd, const struct crucible_agent *plugin, const char *prompt)
{
    /* Nothing of the other episodes stays open here: a copy of another worker's socket would
     * hide that worker's death from its episode. */
    if (fd != 3) {
        if (dup2(fd, 3) < 0)
            _exit(72);
        fd = 3;
    }
    close_range(4, ~0u, 0);
    /* A crash of the plugin is a crash: no handler inherited from crucible (a sanitizer's, say)
     * turns it into an orderly exit, so the episode can name the signal. */
    static const int fatal[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGPIPE };
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
        signal(fatal[i], SIG_DFL);
    struct proxy px = { .fd = fd };
    msgpack_unpacked_init(&px.up);
    struct crucible_host host = { .abi_version = CRUCIBLE_AGENT_ABI,
                                  .size = sizeof(host),
                                  .ctx = &px,
                                  .prompt = prompt,
                                  .generate = px_generate,
                                  .exec = px_exec,
                                  .read_file = px_read,
                                  .write_file = px_write,
                                  .context_edit = px_edit,
                                  .log = px_log,
                                  .event = px_event,
                                  .last_error = px_last_error };
    void *state = NULL;
    for (;;) {
        if (recv_msg(fd, &px.in, &px.up, 0) <= 0)
            _exit(0); /* the episode is gone */
        if (arg_is(&px.up, 0, "init")) {
            send_done(fd, plugin->init(&host, &state));
        } else if (arg_is(&px.up, 0, "step")) {
            send_done(fd, plugin->step(state));
        } else if (arg_is(&px.up, 0, "finish")) {
            int64_t status = 0;
            (void)arg_i64(&px.up, 1, &status);
            plugin->finish(state, (int)status);
            send_done(fd, 0);
            _exit(0);
        } else {
            _exit(73);
        }
    }
}

/* ---- the episode's side ---- */

struct side {
    struct agt_plugin_run *r;
    int fd;
    pid_t pid;
    struct cru_buf in;
    msgpack_unpacked up;
    msgpack_sbuffer out;
    msgpack_packer pk;
};

static int reply(struct side *s)
{
    int rc = send_msg(s->fd, &s->out);
    msgpack_sbuffer_clear(&s->out);
    return rc;
}

static const char *host_error(const struct side *s)
{
    return s->r->host->last_error(s->r->host->ctx);
}

/* Answers one host call from the worker. A malformed request is answered with an error; the
 * plugin sees it as a failed call. */
static int serve_call(struct side *s)
{
    const struct crucible_host *h = s->r->host;
    msgpack_packer *pk = &s->pk;
    uint64_t a = 0, b = 0;
    int64_t level = 0;
    if (arg_is(&s->up, 0, "generate")) {
        const msgpack_object_bin *pb = arg_bin(&s->up, 1);
        if (!pb || pb->size % 4 || !arg_u64(&s->up, 2, &a) || !arg_u64(&s->up, 3, &b) ||
            b > TOKENS_MAX || a > UINT32_MAX) {
            msgpack_pack_array(pk, 5);
            msgpack_pack_int(pk, CRUCIBLE_E_INVALID);
            msgpack_pack_nil(pk);
            msgpack_pack_nil(pk);
            msgpack_pack_uint64(pk, 0);
            pack_str(pk, "generate: a malformed request");
            return reply(s);
        }
        size_t n_prompt = pb->size / 4, n = 0;
        int32_t *prompt = malloc(n_prompt ? pb->size : 4), *ids = malloc((b ? b : 1) * 4);
        float *lps = malloc((b ? b : 1) * 4);
        int rc = prompt && ids && lps ? 0 : CRUCIBLE_E_FAILED;
        if (rc == 0) {
            memcpy(prompt, pb->ptr, pb->size);
            rc = h->generate(h->ctx, prompt, n_prompt, (uint32_t)a, ids, lps, (size_t)b, &n);
        }
        msgpack_pack_array(pk, 5);
        msgpack_pack_int(pk, rc);
        rec_pack_i32s(pk, ids ? ids : (int32_t *)(uintptr_t) "", rc == 0 ? n : 0);
        rec_pack_f32s(pk, lps ? lps : (float *)(uintptr_t) "", rc == 0 ? n : 0);
        msgpack_pack_uint64(pk, n);
        pack_str(pk, rc < 0 ? host_error(s) : NULL);
        free(prompt);
        free(ids);
        free(lps);
        return reply(s);
    }
    if (arg_is(&s->up, 0, "exec") || arg_is(&s->up, 0, "read")) {
        bool exec = arg_is(&s->up, 0, "exec");
        char *str = arg_str(&s->up, 1);
        uint64_t cap = 0;
        bool ok = str &&
                  (exec ? arg_u64(&s->up, 2, &a) && arg_u64(&s->up, 3, &cap)
                        : arg_u64(&s->up, 2, &cap)) &&
                  cap > 0 && cap <= CAP_MAX;
        char *buf = ok ? malloc(cap) : NULL;
        int rc = buf ? 0 : CRUCIBLE_E_INVALID, code = -1;
        size_t len = 0;
        if (rc == 0)
            rc = exec ? h->exec(h->ctx, str, a, &code, buf, cap, &len)
                      : h->read_file(h->ctx, str, buf, cap, &len);
        msgpack_pack_array(pk, 4);
        msgpack_pack_int(pk, rc);
        if (exec)
            msgpack_pack_int(pk, code);
        msgpack_pack_bin(pk, rc == 0 ? len : 0);
        msgpack_pack_bin_body(pk, buf ? buf : "", rc == 0 ? len : 0);
        if (!exec)
            msgpack_pack_uint64(pk, len);
        pack_str(pk, rc < 0 ? (buf ? host_error(s) : "a malformed request") : NULL);
        free(str);
        free(buf);
        return reply(s);
    }
    if (arg_is(&s->up, 0, "write")) {
        char *path = arg_str(&s->up, 1);
        const msgpack_object_bin *data = arg_bin(&s->up, 2);
        int rc =
            path && data ? h->write_file(h->ctx, path, data->ptr, data->size) : CRUCIBLE_E_INVALID;
        msgpack_pack_array(pk, 2);
        msgpack_pack_int(pk, rc);
        pack_str(pk, rc < 0 ? (path && data ? host_error(s) : "a malformed request") : NULL);
        free(path);
        return reply(s);
    }
    if (arg_is(&s->up, 0, "edit")) {
        char *why = arg_str(&s->up, 3);
        uint32_t branch = 0;
        int rc = arg_u64(&s->up, 1, &a) && a <= UINT32_MAX && arg_u64(&s->up, 2, &b)
                     ? h->context_edit(h->ctx, (uint32_t)a, b, why ? why : "", &branch)
                     : CRUCIBLE_E_INVALID;
        msgpack_pack_array(pk, 3);
        msgpack_pack_int(pk, rc);
        msgpack_pack_uint32(pk, branch);
        pack_str(pk, rc < 0 ? host_error(s) : NULL);
        free(why);
        return reply(s);
    }
    if (arg_is(&s->up, 0, "event")) {
        char *name = arg_str(&s->up, 1), *data = arg_str(&s->up, 2);
        int rc = name ? h->event(h->ctx, name, data) : CRUCIBLE_E_INVALID;
        msgpack_pack_array(pk, 2);
        msgpack_pack_int(pk, rc);
        pack_str(pk, rc < 0 ? (name ? host_error(s) : "a malformed request") : NULL);
        free(name);
        free(data);
        return reply(s);
    }
    if (arg_is(&s->up, 0, "log")) {
        char *msg = arg_str(&s->up, 2);
        (void)arg_i64(&s->up, 1, &level);
        h->log(h->ctx, (int)level, msg ? msg : "");
        free(msg);
        msgpack_pack_array(pk, 1);
        msgpack_pack_int(pk, 0);
        return reply(s);
    }
    return cru_err_set(CRU_EPARSE, "an unknown request from the plugin's worker");
}

/* Sends COMMAND (and STATUS for finish) and serves host calls until the worker answers.
 * 1 with *RC the answer, 0 when the worker died, negative on a broken exchange or timeout. */
static int command(struct side *s, const char *what, int status, uint64_t deadline_ns, int64_t *rc)
{
    msgpack_pack_array(&s->pk, strcmp(what, "finish") == 0 ? 2 : 1);
    pack_str(&s->pk, what);
    if (strcmp(what, "finish") == 0)
        msgpack_pack_int(&s->pk, status);
    int r = reply(s);
    if (r < 0)
        return errno == EPIPE ? 0 : r;
    for (;;) {
        r = recv_msg(s->fd, &s->in, &s->up, deadline_ns);
        if (r <= 0)
            return r;
        if (arg_is(&s->up, 0, "done"))
            return arg_i64(&s->up, 1, rc) ? 1 : cru_err_set(CRU_EPARSE, "a malformed answer");
        if ((r = serve_call(s)) < 0)
            return r;
    }
}

/* Reaps the worker (killing it first when KILL), and notes how it ended. */
static void reap(struct side *s, bool kill_it)
{
    int status = 0;
    if (kill_it)
        kill(s->pid, SIGKILL);
    /* A worker that exits on its own is given a moment before it is killed. */
    for (int i = 0; !kill_it && i < FINISH_WAIT_MS / 10; i++) {
        pid_t p = waitpid(s->pid, &status, WNOHANG);
        if (p == s->pid)
            goto ended;
        cru_sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
        ;
ended:
    if (WIFSIGNALED(status) && !kill_it && WTERMSIG(status) != SIGKILL)
        s->r->crash_signal = WTERMSIG(status);
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        s->r->exit_status = WEXITSTATUS(status);
}

int agt_plugin_run(struct agt_plugin_run *r)
{
    int sv[2];
    r->steps = 0;
    r->submitted = r->timed_out = false;
    r->failed_rc = r->crash_signal = 0;
    r->exit_status = -1;
    r->error[0] = '\0';
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return cru_err_sys("cannot make the plugin's socket");
    pid_t pid = fork();
    if (pid < 0) {
        int rc = cru_err_sys("cannot start the plugin's worker");
        close(sv[0]);
        close(sv[1]);
        return rc;
    }
    if (pid == 0) {
        close(sv[0]);
        worker(sv[1], r->plugin, r->host->prompt);
        _exit(0);
    }
    close(sv[1]);
    struct side s = { .r = r, .fd = sv[0], .pid = pid };
    msgpack_unpacked_init(&s.up);
    msgpack_sbuffer_init(&s.out);
    msgpack_packer_init(&s.pk, &s.out, msgpack_sbuffer_write);
    int64_t rc = 0;
    int got = command(&s, "init", 0, r->deadline_ns, &rc);
    bool inited = got == 1 && rc >= 0;
    if (got == 1 && rc < 0) {
        r->failed_rc = (int)rc;
        snprintf(r->error, sizeof(r->error), "init failed (%lld)", (long long)rc);
    }
    while (inited && got == 1 && rc >= 0 && !r->stop(r->stop_ctx, r->steps)) {
        r->steps++;
        got = command(&s, "step", 0, r->deadline_ns, &rc);
        if (got == 1 && rc == CRUCIBLE_SUBMIT) {
            r->submitted = true;
            break;
        }
        if (got == 1 && rc < 0) {
            r->failed_rc = (int)rc;
            snprintf(r->error, sizeof(r->error), "step %llu failed (%lld)",
                     (unsigned long long)r->steps, (long long)rc);
        }
    }
    bool kill_it = false;
    /* finish frees the plugin's state: only after an init that made one. */
    if (inited && got == 1) {
        int64_t ignored;
        got =
            command(&s, "finish", r->submitted ? 0 : 1, cru_deadline_ms(FINISH_WAIT_MS), &ignored);
    }
    if (got < 0 && cru_err_code() == CRU_ETIMEDOUT) {
        r->timed_out = true;
        kill_it = true;
        snprintf(r->error, sizeof(r->error), "the plugin did not answer before the deadline");
    } else if (got < 0) {
        kill_it = true;
        snprintf(r->error, sizeof(r->error), "%s", cru_err_msg());
    }
    close(s.fd);
    reap(&s, kill_it);
    if (r->crash_signal)
        snprintf(r->error, sizeof(r->error), "the plugin crashed: %s (signal %d) in step %llu",
                 strsignal(r->crash_signal), r->crash_signal, (unsigned long long)r->steps);
    else if (got == 0 && r->exit_status >= 0)
        snprintf(r->error, sizeof(r->error),
                 "the plugin's worker exited with status %d in step "
                 "%llu",
                 r->exit_status, (unsigned long long)r->steps);
    else if (got == 0 && !r->error[0])
        snprintf(r->error, sizeof(r->error), "the plugin's worker ended in step %llu",
                 (unsigned long long)r->steps);
    msgpack_unpacked_destroy(&s.up);
    msgpack_sbuffer_destroy(&s.out);
    cru_buf_free(&s.in);
    return 0;
}
