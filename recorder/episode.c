/* recorder/episode: the semantic layer above the reader. It replays an episode's records into
 * branches of tokens (or only their lengths) and, on request, into chat messages, checking the
 * token-exact rules as it goes; rec_verify_file() runs it over a whole file. It writes nothing.
 */
#include "recorder/episode.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/str.h"

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* A record's problem, located: "record 7 (model_call at byte 1234): ..." */
static int bad(const struct rec_record *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bad(const struct rec_record *r, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    char type[CRU_SHOW_CAP(32)];
    char tn[33];
    size_t n = r->type_len < 32 ? r->type_len : 32;
    memcpy(tn, r->type_name, n);
    tn[n] = '\0';
    return cru_err_set(CRU_EPARSE, "%s record at byte %llu: %s", cru_str_show(type, tn, 32, true),
                       (unsigned long long)r->offset, what);
}

static int branch_reserve(struct rec_ep *e, struct rec_branch *b, uint64_t more)
{
    if (!(e->flags & REC_EP_TOKENS))
        return 0;
    uint64_t total = 0;
    for (uint32_t i = 0; i < e->n_branches; i++)
        total += e->branches[i].len;
    if (total + more > REC_MAX_EPISODE_TOKENS)
        return cru_err_set(CRU_ELIMIT, "episode %s holds more than %llu tokens", e->id,
                           (unsigned long long)REC_MAX_EPISODE_TOKENS);
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more)
        cap *= 2;
    int32_t *ids = realloc(b->ids, cap * sizeof(*ids));
    if (ids)
        b->ids = ids;
    uint8_t *mask = ids ? realloc(b->mask, cap) : NULL;
    if (mask)
        b->mask = mask;
    float *lp = mask ? realloc(b->logprobs, cap * sizeof(*lp)) : NULL;
    if (!lp)
        return cru_err_set(CRU_ENOMEM, "out of memory for episode %s's tokens", e->id);
    b->logprobs = lp;
    b->cap = cap;
    return 0;
}

static int add_branch(struct rec_ep *e)
{
    if (e->n_branches >= REC_MAX_BRANCHES)
        return cru_err_set(CRU_ELIMIT, "episode %s has more than %d branches", e->id,
                           REC_MAX_BRANCHES);
    struct rec_branch *nb = realloc(e->branches, (e->n_branches + 1) * sizeof(*nb));
    if (!nb)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    e->branches = nb;
    memset(&nb[e->n_branches], 0, sizeof(*nb));
    nb[e->n_branches].policy_min = UINT64_MAX;
    e->n_branches++;
    return 0;
}

int rec_ep_new(struct rec_ep **out, const struct rec_record *r, unsigned flags)
{
    if (r->type != REC_EPISODE)
        return bad(r, "an episode must begin with its header record");
    if (!r->episode || r->episode_len == 0)
        return bad(r, "the header has no episode id");
    if (r->seq != 0)
        return bad(r, "the header's seq is not 0");
    struct rec_ep *e = calloc(1, sizeof(*e));
    if (!e)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    e->flags = flags;
    e->next_seq = 1;
    e->records = 1;
    const char *s;
    size_t n;
    int rc = 0;
    if (!(e->id = dupn(r->episode, r->episode_len)))
        rc = CRU_ENOMEM;
    if (rc == 0 && rec_get_str(r->map, "group", &s, &n) && !(e->group = dupn(s, n)))
        rc = CRU_ENOMEM;
    if (rc == 0 && !e->group && !(e->group = strdup(e->id)))
        rc = CRU_ENOMEM;
    if (rc == 0 && rec_get_str(r->map, "task", &s, &n) && !(e->task = dupn(s, n)))
        rc = CRU_ENOMEM;
    if (rc == 0 && !(e->header = rec_msgpack_to_json(r->map)))
        rc = CRU_ENOMEM;
    if (rc == 0 && (flags & REC_EP_MESSAGES)) {
        json_t *first = json_object_get(e->header, "messages");
        e->messages = json_is_array(first) ? json_deep_copy(first) : json_array();
        if (!e->messages)
            rc = CRU_ENOMEM;
    }
    (void)rec_get_u64(r->map, "policy_version", &e->policy_version);
    if (rc == 0)
        rc = add_branch(e);
    if (rc < 0) {
        rec_ep_free(e);
        return rc == CRU_ENOMEM ? cru_err_set(CRU_ENOMEM, "out of memory") : rc;
    }
    *out = e;
    return 0;
}

void rec_ep_free(struct rec_ep *e)
{
    if (!e)
        return;
    for (uint32_t i = 0; i < e->n_branches; i++) {
        free(e->branches[i].ids);
        free(e->branches[i].mask);
        free(e->branches[i].logprobs);
    }
    free(e->branches);
    json_decref(e->header);
    json_decref(e->messages);
    json_decref(e->breakdown);
    free(e->id);
    free(e->group);
    free(e->task);
    free(e->status);
    free(e->message);
    free(e);
}

/* The assistant message of a model call, in the OpenAI chat shape. */
static int add_assistant(struct rec_ep *e, const struct rec_record *r)
{
    const char *text, *reasoning;
    size_t tn, rn;
    json_t *m = json_object();
    if (!m)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    json_object_set_new(m, "role", json_string("assistant"));
    json_object_set_new(m, "content",
                        rec_get_str(r->map, "text", &text, &tn) ? json_stringn_nocheck(text, tn)
                                                                : json_null());
    if (rec_get_str(r->map, "reasoning", &reasoning, &rn))
        json_object_set_new(m, "reasoning_content", json_stringn_nocheck(reasoning, rn));
    const msgpack_object *calls = rec_get(r->map, "tool_calls");
    if (calls && calls->type == MSGPACK_OBJECT_ARRAY && calls->via.array.size > 0) {
        json_t *arr = json_array();
        for (uint32_t i = 0; arr && i < calls->via.array.size; i++) {
            const msgpack_object *c = &calls->via.array.ptr[i];
            const char *id = "", *name = "";
            size_t idn = 0, namen = 0;
            (void)rec_get_str(c, "id", &id, &idn);
            (void)rec_get_str(c, "name", &name, &namen);
            /* OpenAI carries arguments as a JSON string; a recorded object is serialised. */
            const msgpack_object *a = rec_get(c, "arguments");
            json_t *args = NULL;
            if (a && a->type == MSGPACK_OBJECT_STR) {
                args = json_stringn_nocheck(a->via.str.ptr, a->via.str.size);
            } else if (a) {
                json_t *v = rec_msgpack_to_json(a);
                char *txt = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
                args = txt ? json_string(txt) : NULL;
                free(txt);
                json_decref(v);
            } else {
                args = json_string("{}");
            }
            json_array_append_new(arr, json_pack("{s:s%, s:s, s:{s:s%, s:o*}}", "id", id, idn,
                                                 "type", "function", "function", "name", name,
                                                 namen, "arguments", args));
        }
        json_object_set_new(m, "tool_calls", arr ? arr : json_null());
    }
    if (json_array_append_new(e->messages, m) < 0)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    return 0;
}

static int add_tool_message(struct rec_ep *e, const struct rec_record *r)
{
    const char *id = NULL, *name = "", *out = "";
    size_t idn = 0, namen = 0, outn = 0;
    (void)rec_get_str(r->map, "call_id", &id, &idn);
    (void)rec_get_str(r->map, "name", &name, &namen);
    (void)rec_get_str(r->map, "output", &out, &outn);
    json_t *m =
        json_pack("{s:s, s:s%, s:s%}", "role", "tool", "name", name, namen, "content", out, outn);
    if (m && id)
        json_object_set_new(m, "tool_call_id", json_stringn_nocheck(id, idn));
    if (!m || json_array_append_new(e->messages, m) < 0)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    return 0;
}

static int model_call(struct rec_ep *e, const struct rec_record *r)
{
    uint64_t branch, prefix;
    struct rec_array prompt, completion, logprobs;
    if (!rec_get_u64(r->map, "branch", &branch) || branch >= e->n_branches)
        return bad(r, "no branch, or a branch that does not exist");
    struct rec_branch *b = &e->branches[branch];
    if (!rec_get_u64(r->map, "prefix", &prefix))
        return bad(r, "no prefix");
    if (prefix != b->len)
        return bad(r,
                   "its prompt extends %llu tokens of branch %llu, which has %llu (a "
                   "changed context must be a fork)",
                   (unsigned long long)prefix, (unsigned long long)branch,
                   (unsigned long long)b->len);
    if (!rec_get_i32s(r->map, "prompt", &prompt) ||
        !rec_get_i32s(r->map, "completion", &completion) ||
        !rec_get_f32s(r->map, "logprobs", &logprobs))
        return bad(r, "prompt, completion or logprobs missing or not a bin of 4-byte values");
    if (logprobs.n != completion.n)
        return bad(r, "%zu log-probs for %zu completion tokens", logprobs.n, completion.n);
    for (size_t i = 0; i < logprobs.n; i++) {
        float lp = rec_f32_at(&logprobs, i);
        if (!(lp <= 1e-4f) || isinf(lp))
            return bad(r, "log-prob %zu is %g, not a log-probability", i, (double)lp);
    }
    uint64_t k;
    if (rec_get_u64(r->map, "top_k", &k) && k > 0) {
        struct rec_array ti, tl;
        if (!rec_get_i32s(r->map, "top_ids", &ti) || !rec_get_f32s(r->map, "top_logprobs", &tl) ||
            k > UINT32_MAX || ti.n != completion.n * k || tl.n != ti.n)
            return bad(r, "top-%llu alternatives do not match %zu completion tokens",
                       (unsigned long long)k, completion.n);
    }
    uint64_t version = e->policy_version;
    (void)rec_get_u64(r->map, "policy_version", &version);
    int rc = branch_reserve(e, b, prompt.n + completion.n);
    if (rc < 0)
        return rc;
    if (e->flags & REC_EP_TOKENS) {
        for (size_t i = 0; i < prompt.n; i++) {
            b->ids[b->len + i] = rec_i32_at(&prompt, i);
            b->mask[b->len + i] = 0;
            b->logprobs[b->len + i] = 0;
        }
        uint64_t at = b->len + prompt.n;
        for (size_t i = 0; i < completion.n; i++) {
            b->ids[at + i] = rec_i32_at(&completion, i);
            b->mask[at + i] = 1;
            b->logprobs[at + i] = rec_f32_at(&logprobs, i);
        }
    }
    b->len += prompt.n + completion.n;
    b->sampled += completion.n;
    b->calls++;
    if (completion.n) {
        b->policy_min = version < b->policy_min ? version : b->policy_min;
        b->policy_max = version > b->policy_max ? version : b->policy_max;
    }
    return (e->flags & REC_EP_MESSAGES) ? add_assistant(e, r) : 0;
}

static int fork_branch(struct rec_ep *e, const struct rec_record *r)
{
    uint64_t branch, from, position;
    if (!rec_get_u64(r->map, "branch", &branch) || !rec_get_u64(r->map, "from_branch", &from) ||
        !rec_get_u64(r->map, "position", &position))
        return bad(r, "branch, from_branch or position missing");
    if (branch != e->n_branches)
        return bad(r, "new branch %llu, expected %u (branches are numbered in order)",
                   (unsigned long long)branch, e->n_branches);
    if (from >= e->n_branches)
        return bad(r, "forks from branch %llu, which does not exist", (unsigned long long)from);
    if (position > e->branches[from].len)
        return bad(r, "forks at token %llu of branch %llu, which has %llu",
                   (unsigned long long)position, (unsigned long long)from,
                   (unsigned long long)e->branches[from].len);
    int rc = add_branch(e);
    if (rc < 0)
        return rc;
    struct rec_branch *src = &e->branches[from], *dst = &e->branches[branch];
    if ((rc = branch_reserve(e, dst, position)) < 0)
        return rc;
    if (e->flags & REC_EP_TOKENS) {
        memcpy(dst->ids, src->ids, position * sizeof(*dst->ids));
        memcpy(dst->mask, src->mask, position);
        memcpy(dst->logprobs, src->logprobs, position * sizeof(*dst->logprobs));
    }
    dst->len = position;
    /* The inherited sampled tokens keep their versions. */
    for (uint64_t i = 0; (e->flags & REC_EP_TOKENS) && i < position; i++)
        dst->sampled += dst->mask[i];
    if (dst->sampled) {
        dst->policy_min = src->policy_min;
        dst->policy_max = src->policy_max;
    }
    return 0;
}

static int end(struct rec_ep *e, const struct rec_record *r)
{
    const char *s;
    size_t n;
    if (!rec_get_str(r->map, "status", &s, &n))
        return bad(r, "no status");
    static const char *const known[] = { "submitted", "budget",    "timeout",
                                         "error",     "cancelled", "agent_error" };
    bool ok = false;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        ok = ok || (strlen(known[i]) == n && memcmp(known[i], s, n) == 0);
    if (!ok)
        return bad(r, "unknown status");
    if (!(e->status = dupn(s, n)))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    if (rec_get_str(r->map, "message", &s, &n) && !(e->message = dupn(s, n)))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    e->ended = true;
    return 0;
}

int rec_ep_add(struct rec_ep *e, const struct rec_record *r)
{
    if (!r->episode || r->episode_len != strlen(e->id) ||
        memcmp(r->episode, e->id, r->episode_len) != 0)
        return bad(r, "belongs to another episode than %s, which has not ended", e->id);
    if (e->ended)
        return bad(r, "follows the end of episode %s", e->id);
    if (r->seq != e->next_seq)
        return bad(r, "seq %llu where %llu was expected (a record is missing or repeated)",
                   (unsigned long long)r->seq, (unsigned long long)e->next_seq);
    e->next_seq++;
    e->records++;
    double v;
    switch (r->type) {
    case REC_EPISODE:
        return bad(r, "a second header for episode %s", e->id);
    case REC_MODEL_CALL:
        return model_call(e, r);
    case REC_CONTEXT_EDIT:
        return fork_branch(e, r);
    case REC_TOOL: {
        const char *name;
        size_t n;
        if (!rec_get_str(r->map, "name", &name, &n))
            return bad(r, "no tool name");
        return (e->flags & REC_EP_MESSAGES) ? add_tool_message(e, r) : 0;
    }
    case REC_REWARD: {
        if (!rec_get_f64(r->map, "value", &v) || !isfinite(v))
            return bad(r, "no finite value");
        e->has_reward = true;
        e->reward = v;
        const msgpack_object *bd = rec_get(r->map, "breakdown");
        json_decref(e->breakdown);
        e->breakdown = bd ? rec_msgpack_to_json(bd) : NULL;
        return 0;
    }
    case REC_END:
        return end(e, r);
    case REC_SCAFFOLD_EDIT:
    case REC_ARTIFACT:
    case REC_EVENT:
        return 0;
    case REC_UNKNOWN:
        e->unknown++;
        return 0;
    }
    return 0;
}

/* ---- verify ---- */

/* The current error, now as CRU_EFAILED: the file was read and found wanting. */
static int as_failed(void)
{
    char msg[CRU_ERR_MAX];
    snprintf(msg, sizeof(msg), "%s", cru_err_msg());
    return cru_err_set(CRU_EFAILED, "%s", msg);
}

static int verify(struct rec_reader *r, const char *name, struct rec_verify *out)
{
    struct rec_ep *e = NULL;
    struct rec_record rec;
    enum rec_type last = REC_UNKNOWN;
    int rc;
    while ((rc = rec_reader_next(r, &rec)) > 0) {
        out->records = rec_reader_count(r);
        out->bytes = rec_reader_good_offset(r);
        if (rec.type == REC_EPISODE) {
            if (e && !e->ended) {
                rc = cru_err_set(CRU_EFAILED,
                                 "%s: episode %s has no end record before the next episode "
                                 "begins at byte %llu",
                                 name, e->id, (unsigned long long)rec.offset);
                break;
            }
            rec_ep_free(e);
            e = NULL;
            if ((rc = rec_ep_new(&e, &rec, 0)) < 0)
                break;
            out->episodes++;
        } else if (!e) {
            rc = bad(&rec, "comes before any episode header");
            break;
        } else if ((rc = rec_ep_add(e, &rec)) < 0) {
            break;
        }
        if (rec.type == REC_END)
            out->complete++;
        if (rec.type == REC_UNKNOWN)
            out->unknown++;
        last = rec.type;
    }
    out->problem = rec_reader_problem(r);
    if (rc < 0 && out->problem == REC_INTACT) {
        rc = cru_err_wrap(CRU_EFAILED, "%s", name);
    } else if (rc < 0) {
        rc = as_failed(); /* the reader's message names the file already */
    } else if (out->episodes == 0) {
        rc = cru_err_set(CRU_EFAILED, "%s: holds no episode", name);
    } else if (!e->ended || last != REC_END) {
        rc = cru_err_set(CRU_EFAILED, "%s: incomplete: episode %s has no end record", name, e->id);
    }
    rec_ep_free(e);
    return rc;
}

int rec_verify_stream(FILE *f, const char *name, struct rec_verify *out)
{
    memset(out, 0, sizeof(*out));
    out->bytes = REC_HEADER_LEN;
    struct rec_reader *r;
    int rc = rec_reader_open_stream(&r, f, name);
    if (rc < 0) {
        out->bytes = 0;
        out->problem = REC_NOT_TRAJ;
        return as_failed();
    }
    rc = verify(r, name, out);
    rec_reader_free(r);
    return rc;
}

int rec_verify_file(const char *path, struct rec_verify *out)
{
    FILE *f = fopen(path, "rbe");
    if (!f) {
        memset(out, 0, sizeof(*out));
        return cru_err_sys("opening %s", path);
    }
    int rc = rec_verify_stream(f, path, out);
    fclose(f);
    return rc;
}
