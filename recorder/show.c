/* recorder/show: renders the records of one file for a terminal or as JSON lines. It reads
 * records as they are, one at a time, and checks nothing beyond the framing (verify does). */
#include "recorder/show.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "recorder/reader.h"

#define TEXT_LINE_MAX 400 /* bytes of one line of text shown */

struct style {
    const char *bold, *dim, *role, *tool, *good, *bad, *off;
};

static const struct style plain = { "", "", "", "", "", "", "" };
static const struct style colors = { "\033[1m",  "\033[2m",  "\033[1;36m", "\033[1;33m",
                                     "\033[32m", "\033[31m", "\033[0m" };

struct ctx {
    FILE *out;
    const struct style *st;
    unsigned max_lines;
};

static void str_field(struct ctx *c, const msgpack_object *m, const char *key, const char *label)
{
    const char *s;
    size_t n;
    if (rec_get_str(m, key, &s, &n) && n)
        fprintf(c->out, " %s%s%s %.*s", c->st->dim, label, c->st->off, (int)(n > 200 ? 200 : n), s);
}

/* Prints up to max_lines lines of TEXT, indented, each cut at TEXT_LINE_MAX bytes, and says
 * how much was left out. Control characters other than tab are shown as '?'. */
static void text(struct ctx *c, const char *s, size_t n, const char *indent)
{
    unsigned lines = 0;
    size_t i = 0;
    while (i < n && lines < c->max_lines) {
        size_t end = i;
        while (end < n && s[end] != '\n')
            end++;
        fputs(indent, c->out);
        size_t shown = end - i < TEXT_LINE_MAX ? end - i : TEXT_LINE_MAX;
        for (size_t k = i; k < i + shown; k++) {
            unsigned char ch = (unsigned char)s[k];
            fputc(ch < 0x20 && ch != '\t' ? '?' : ch == 0x7f ? '?' : ch, c->out);
        }
        if (shown < end - i)
            fprintf(c->out, "%s... (%zu more bytes)%s", c->st->dim, end - i - shown, c->st->off);
        fputc('\n', c->out);
        lines++;
        i = end + 1;
    }
    if (i < n) {
        unsigned more = 0;
        for (size_t k = i; k < n; k++)
            more += s[k] == '\n';
        fprintf(c->out, "%s%s... (%u more lines, %zu bytes)%s\n", indent, c->st->dim, more + 1,
                n - i, c->st->off);
    }
}

static void show_messages(struct ctx *c, const msgpack_object *arr)
{
    if (!arr || arr->type != MSGPACK_OBJECT_ARRAY)
        return;
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *m = &arr->via.array.ptr[i];
        const char *role = "?", *content = "";
        size_t rn = 1, cn = 0;
        (void)rec_get_str(m, "role", &role, &rn);
        (void)rec_get_str(m, "content", &content, &cn);
        fprintf(c->out, "%s%.*s%s\n", c->st->role, (int)rn, role, c->st->off);
        text(c, content, cn, "  ");
    }
}

static void show_header(struct ctx *c, const struct rec_record *r)
{
    uint64_t u;
    fprintf(c->out, "%sepisode %.*s%s", c->st->bold, (int)r->episode_len,
            r->episode ? r->episode : "?", c->st->off);
    str_field(c, r->map, "task", "task");
    str_field(c, r->map, "group", "group");
    str_field(c, r->map, "agent", "agent");
    str_field(c, r->map, "model", "model");
    if (rec_get_u64(r->map, "seed", &u))
        fprintf(c->out, " %sseed%s %llu", c->st->dim, c->st->off, (unsigned long long)u);
    if (rec_get_u64(r->map, "policy_version", &u))
        fprintf(c->out, " %spolicy%s %llu", c->st->dim, c->st->off, (unsigned long long)u);
    fputc('\n', c->out);
    show_messages(c, rec_get(r->map, "messages"));
}

static void show_model_call(struct ctx *c, const struct rec_record *r)
{
    uint64_t branch = 0;
    double ms = 0, v;
    struct rec_array prompt = { 0 }, completion = { 0 };
    const char *s;
    size_t n;
    (void)rec_get_u64(r->map, "branch", &branch);
    (void)rec_get_i32s(r->map, "prompt", &prompt);
    (void)rec_get_i32s(r->map, "completion", &completion);
    if (rec_get_f64(r->map, "prefill_ms", &v))
        ms += v;
    if (rec_get_f64(r->map, "decode_ms", &v))
        ms += v;
    fprintf(c->out, "%sassistant%s %s[branch %llu, +%zu prompt, %zu sampled", c->st->role,
            c->st->off, c->st->dim, (unsigned long long)branch, prompt.n, completion.n);
    if (rec_get_str(r->map, "finish", &s, &n))
        fprintf(c->out, ", %.*s", (int)n, s);
    fprintf(c->out, ", %.1f ms]%s\n", ms, c->st->off);
    if (rec_get_str(r->map, "reasoning", &s, &n) && n) {
        fprintf(c->out, "  %sthinking:%s\n", c->st->dim, c->st->off);
        text(c, s, n, "    ");
    }
    if (rec_get_str(r->map, "text", &s, &n))
        text(c, s, n, "  ");
    const msgpack_object *calls = rec_get(r->map, "tool_calls");
    for (uint32_t i = 0; calls && calls->type == MSGPACK_OBJECT_ARRAY && i < calls->via.array.size;
         i++) {
        const msgpack_object *call = &calls->via.array.ptr[i];
        const char *name = "?";
        size_t nn = 1;
        (void)rec_get_str(call, "name", &name, &nn);
        fprintf(c->out, "  %s-> %.*s%s\n", c->st->tool, (int)nn, name, c->st->off);
    }
}

static void show_tool(struct ctx *c, const struct rec_record *r)
{
    const char *name = "?", *s;
    size_t n = 1, sn;
    int64_t exit_code = -1;
    uint64_t bytes = 0, cap = 0;
    double ms = 0;
    (void)rec_get_str(r->map, "name", &name, &n);
    (void)rec_get_i64(r->map, "exit", &exit_code);
    (void)rec_get_u64(r->map, "output_bytes", &bytes);
    (void)rec_get_u64(r->map, "output_cap", &cap);
    (void)rec_get_f64(r->map, "duration_ms", &ms);
    fprintf(c->out, "%stool %.*s%s", c->st->tool, (int)n, name, c->st->off);
    if (rec_get_str(r->map, "arguments", &s, &sn))
        fprintf(c->out, " %.*s%s", (int)(sn > 160 ? 160 : sn), s, sn > 160 ? "..." : "");
    fprintf(c->out, " %s[", c->st->dim);
    if (rec_get_str(r->map, "status", &s, &sn))
        fprintf(c->out, "%.*s, ", (int)sn, s);
    if (exit_code >= 0)
        fprintf(c->out, "exit %lld, ", (long long)exit_code);
    fprintf(c->out, "%.1f ms, %llu bytes", ms, (unsigned long long)bytes);
    if (cap && bytes > cap)
        fprintf(c->out, ", cut to %llu", (unsigned long long)cap);
    fprintf(c->out, "]%s\n", c->st->off);
    if (rec_get_str(r->map, "output", &s, &sn))
        text(c, s, sn, "  | ");
}

static void show_reward(struct ctx *c, const struct rec_record *r)
{
    double v = 0;
    (void)rec_get_f64(r->map, "value", &v);
    fprintf(c->out, "%sreward %.4g%s\n", v > 0 ? c->st->good : c->st->bad, v, c->st->off);
    const msgpack_object *bd = rec_get(r->map, "breakdown");
    if (!bd)
        return;
    json_t *j = rec_msgpack_to_json(bd);
    char *txt = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (txt)
        text(c, txt, strlen(txt), "  ");
    free(txt);
    json_decref(j);
}

static void show_end(struct ctx *c, const struct rec_record *r)
{
    const char *s = "?";
    size_t n = 1;
    uint64_t calls = 0, tools = 0, pt = 0, ct = 0;
    double ms = 0;
    bool ok = rec_get_str(r->map, "status", &s, &n) && n == 9 && memcmp(s, "submitted", 9) == 0;
    (void)rec_get_u64(r->map, "model_calls", &calls);
    (void)rec_get_u64(r->map, "tool_calls", &tools);
    (void)rec_get_u64(r->map, "prompt_tokens", &pt);
    (void)rec_get_u64(r->map, "completion_tokens", &ct);
    (void)rec_get_f64(r->map, "wall_ms", &ms);
    fprintf(c->out,
            "%send: %.*s%s %s[%llu model calls, %llu tool calls, %llu prompt + %llu sampled "
            "tokens, %.1f s]%s\n",
            ok ? c->st->good : c->st->bad, (int)n, s, c->st->off, c->st->dim,
            (unsigned long long)calls, (unsigned long long)tools, (unsigned long long)pt,
            (unsigned long long)ct, ms / 1000, c->st->off);
    const char *msg;
    if (rec_get_str(r->map, "message", &msg, &n))
        text(c, msg, n, "  ");
}

static void show_record(struct ctx *c, const struct rec_record *r)
{
    uint64_t a = 0, b = 0, p = 0;
    const char *s = "";
    size_t n = 0;
    switch (r->type) {
    case REC_EPISODE:
        show_header(c, r);
        break;
    case REC_MODEL_CALL:
        show_model_call(c, r);
        break;
    case REC_TOOL:
        show_tool(c, r);
        break;
    case REC_CONTEXT_EDIT:
        (void)rec_get_u64(r->map, "branch", &a);
        (void)rec_get_u64(r->map, "from_branch", &b);
        (void)rec_get_u64(r->map, "position", &p);
        (void)rec_get_str(r->map, "why", &s, &n);
        fprintf(c->out, "%sfork%s: branch %llu from branch %llu at token %llu: %.*s\n", c->st->bold,
                c->st->off, (unsigned long long)a, (unsigned long long)b, (unsigned long long)p,
                (int)n, s);
        break;
    case REC_SCAFFOLD_EDIT:
        fprintf(c->out, "%sscaffold edit%s", c->st->bold, c->st->off);
        str_field(c, r->map, "parent", "from");
        str_field(c, r->map, "child", "to");
        fputc('\n', c->out);
        if (rec_get_str(r->map, "diff", &s, &n))
            text(c, s, n, "  ");
        break;
    case REC_REWARD:
        show_reward(c, r);
        break;
    case REC_ARTIFACT: {
        const msgpack_object *files = rec_get(r->map, "files");
        fprintf(c->out, "%sartifact%s: %u files", c->st->bold, c->st->off,
                files && files->type == MSGPACK_OBJECT_ARRAY ? files->via.array.size : 0);
        if (rec_get_str(r->map, "diff", &s, &n))
            fprintf(c->out, ", a diff of %zu bytes", n);
        fputc('\n', c->out);
        break;
    }
    case REC_EVENT:
        (void)rec_get_str(r->map, "name", &s, &n);
        fprintf(c->out, "%sevent%s %.*s\n", c->st->bold, c->st->off, (int)(n > 200 ? 200 : n), s);
        break;
    case REC_END:
        show_end(c, r);
        break;
    case REC_UNKNOWN:
        fprintf(c->out, "%s(a record of type %.*s, unknown to this crucible)%s\n", c->st->dim,
                (int)(r->type_len > 64 ? 64 : r->type_len), r->type_name, c->st->off);
        break;
    }
}

static int show_json(FILE *out, const struct rec_record *r)
{
    json_t *j = rec_msgpack_to_json(r->map);
    if (!j)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    json_object_set_new(j, "offset", json_integer((json_int_t)r->offset));
    int rc = json_dumpf(j, out, JSON_COMPACT) < 0 || fputc('\n', out) == EOF
                 ? cru_err_set(CRU_EIO, "writing the output: %s", strerror(errno))
                 : 0;
    json_decref(j);
    return rc;
}

int rec_show_payload(FILE *out, const uint8_t *payload, size_t len,
                     const struct rec_show_opts *opts)
{
    if (rec_msgpack_check(payload, len) < 0)
        return CRU_EPARSE;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = 0;
    struct rec_record rec = { 0 };
    if (msgpack_unpack_next(&up, (const char *)payload, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        up.data.type != MSGPACK_OBJECT_MAP ||
        !rec_get_str(&up.data, "type", &rec.type_name, &rec.type_len)) {
        rc = cru_err_set(CRU_EPARSE, "not a record");
    } else {
        rec.type = rec_type_from(rec.type_name, rec.type_len);
        if (!rec_get_str(&up.data, "episode", &rec.episode, &rec.episode_len))
            rec.episode = NULL;
        rec.map = &up.data;
        struct ctx c = { out, opts->color ? &colors : &plain,
                         opts->max_lines ? opts->max_lines : 12 };
        if (opts->json)
            rc = show_json(out, &rec);
        else
            show_record(&c, &rec);
        fflush(out);
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}

int rec_show(const char *path, FILE *out, const struct rec_show_opts *opts)
{
    struct rec_reader *r;
    struct rec_record rec;
    int rc = rec_reader_open(&r, path);
    if (rc < 0)
        return rc;
    struct ctx c = { out, opts->color ? &colors : &plain, opts->max_lines ? opts->max_lines : 12 };
    while ((rc = rec_reader_next(r, &rec)) > 0) {
        if (opts->json) {
            if ((rc = show_json(out, &rec)) < 0)
                break;
        } else {
            show_record(&c, &rec);
        }
        if (ferror(out)) {
            rc = cru_err_set(CRU_EIO, "writing the output: %s", strerror(errno));
            break;
        }
    }
    enum rec_problem problem = rec_reader_problem(r);
    rec_reader_free(r);
    if (rc < 0 && problem != REC_INTACT && problem != REC_READ_ERROR) {
        /* Damage is the file failing a check, not the environment failing crucible. */
        char msg[CRU_ERR_MAX];
        snprintf(msg, sizeof(msg), "%s", cru_err_msg());
        rc = cru_err_set(CRU_EFAILED, "%s", msg);
    }
    return rc;
}
