/* agent/runner: runs one episode (workspace, recorder, sandbox session, agent loop, artifact,
 * reward, end) and hosts the agents: oracle, scripted, plugin and exec, with the model agent's
 * loop reaching a model only through struct agt_generator. Scheduling many episodes is
 * agent/rollout's; the tools themselves are agent/tools'.
 */
#include "agent/runner.h"

#include <assert.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/model_agent.h"
#include "agent/plugin.h"
#include "agent/tools.h"
#include "crucible/agent.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/str.h"
#include "recorder/show.h"
#include "recorder/writer.h"
#include "sandbox/sandbox.h"

#define SCRIPT_MAX_BYTES    ((size_t)4 << 20)
#define SCRIPT_MAX_CALLS    10000
#define ARTIFACT_MAX_FILES  100000
#define ARTIFACT_MAX_BYTES  ((uint64_t)4 << 30)
#define ARTIFACT_MAX_LISTED 10000             /* changed files named in the artifact record */
#define MAX_CONTEXT         ((size_t)1 << 22) /* tokens of one branch a plugin may build */

struct agt_agent {
    enum agt_agent_kind kind;
    char *spec;
    char *arg;      /* the file, plugin path or command */
    json_t *script; /* scripted: the calls */
    void *dl;       /* plugin: dlopen handle */
    const struct crucible_agent *plugin;
};

enum agt_agent_kind agt_agent_kind(const struct agt_agent *a)
{
    return a->kind;
}

const char *agt_agent_name(const struct agt_agent *a)
{
    return a->spec;
}

void agt_agent_free(struct agt_agent *a)
{
    if (!a)
        return;
    json_decref(a->script);
    if (a->dl)
        dlclose(a->dl);
    free(a->spec);
    free(a->arg);
    free(a);
}

static int load_script(struct agt_agent *a)
{
    int rc = cru_json_load_file(&a->script, a->arg, SCRIPT_MAX_BYTES);
    if (rc < 0)
        return rc;
    if (!json_is_array(a->script))
        return cru_err_set(CRU_EINVAL, "%s: expected a JSON array of tool calls", a->arg);
    if (json_array_size(a->script) > SCRIPT_MAX_CALLS)
        return cru_err_set(CRU_ELIMIT, "%s: more than %d calls", a->arg, SCRIPT_MAX_CALLS);
    size_t i;
    json_t *c;
    json_array_foreach(a->script, i, c)
    {
        static const char *const keys[] = { "tool", "arguments", "id", NULL };
        char where[32];
        const char *tool = NULL, *id = NULL;
        snprintf(where, sizeof(where), "[%zu]", i);
        rc = json_is_object(c) ? 0 : cru_err_set(CRU_EINVAL, "%s: expected an object", where);
        if (rc == 0)
            rc = cru_json_check_keys(c, where, keys);
        if (rc == 0)
            rc = cru_json_get_str(c, where, "tool", true, &tool);
        if (rc == 0)
            rc = cru_json_get_str(c, where, "id", false, &id);
        json_t *args = json_object_get(c, "arguments");
        if (rc == 0 && args && !json_is_object(args) && !json_is_string(args))
            rc =
                cru_err_set(CRU_EINVAL, "%s.arguments: expected an object or a JSON string", where);
        if (rc < 0)
            return cru_err_wrap(rc, "%s", a->arg);
    }
    return 0;
}

static int load_plugin(struct agt_agent *a)
{
    a->dl = dlopen(a->arg, RTLD_NOW | RTLD_LOCAL);
    if (!a->dl)
        return cru_err_set(CRU_EINVAL, "cannot load plugin %s: %s", a->arg, dlerror());
    crucible_agent_v1_fn fn;
    void *sym = dlsym(a->dl, "crucible_agent_v1");
    if (!sym)
        return cru_err_set(
            CRU_EINVAL, "%s exports no crucible_agent_v1(): not a crucible agent plugin", a->arg);
    memcpy(&fn, &sym, sizeof(fn));
    a->plugin = fn();
    if (!a->plugin)
        return cru_err_set(CRU_EINVAL, "%s: crucible_agent_v1() returned no table", a->arg);
    if (a->plugin->abi_version != CRUCIBLE_AGENT_ABI)
        return cru_err_set(CRU_EUNSUPPORTED,
                           "%s was built for agent ABI version %u; this crucible speaks version "
                           "%d (rebuild it against this crucible's include/crucible/agent.h)",
                           a->arg, a->plugin->abi_version, CRUCIBLE_AGENT_ABI);
    if (!a->plugin->init || !a->plugin->step || !a->plugin->finish)
        return cru_err_set(CRU_EINVAL, "%s: its table lacks init, step or finish", a->arg);
    return 0;
}

int agt_agent_load(const char *spec, struct agt_agent **out)
{
    struct agt_agent *a = calloc(1, sizeof(*a));
    if (!a || !(a->spec = strdup(spec))) {
        free(a);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    static const struct {
        const char *prefix;
        enum agt_agent_kind kind;
    } kinds[] = { { "scripted:", AGT_AGENT_SCRIPTED },
                  { "plugin:", AGT_AGENT_PLUGIN },
                  { "exec:", AGT_AGENT_EXEC } };
    int rc = 0;
    if (strcmp(spec, "oracle") == 0) {
        a->kind = AGT_AGENT_ORACLE;
    } else if (strcmp(spec, "model") == 0) {
        a->kind = AGT_AGENT_MODEL;
    } else {
        rc = cru_err_set(CRU_EINVAL,
                         "unknown agent '%s' (oracle, model, scripted:FILE, plugin:PATH.so, "
                         "exec:CMD)",
                         spec);
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
            if (!cru_str_starts_with(spec, kinds[i].prefix))
                continue;
            a->kind = kinds[i].kind;
            const char *arg = spec + strlen(kinds[i].prefix);
            rc = *arg ? cru_str_dup(&a->arg, arg)
                      : cru_err_set(CRU_EINVAL, "agent '%s' needs what follows the colon", spec);
            break;
        }
    }
    if (rc == 0 && a->kind == AGT_AGENT_SCRIPTED)
        rc = load_script(a);
    if (rc == 0 && a->kind == AGT_AGENT_PLUGIN)
        rc = load_plugin(a);
    if (rc < 0) {
        agt_agent_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* ---- an episode ---- */

/* Milliseconds since *T, which moves to now. */
static double ms_since(uint64_t *t)
{
    uint64_t now = cru_now_ns();
    double ms = (double)(now - *t) / 1e6;
    *t = now;
    return ms;
}

struct branch {
    int32_t *ids;
    size_t len, cap;
};

struct episode {
    const struct agt_episode_opts *o;
    const struct agt_generator *gen; /* the run's model, or NULL */
    struct agt_episode_result *res;
    struct rec_episode *ep;
    struct agt_tools tools;
    uint64_t deadline_ns;
    uint64_t max_turns;
    uint64_t sampled; /* tokens sampled so far */
    struct branch *branches;
    uint32_t n_branches, cur;
    char error[512]; /* the last failed host call's message, for plugins */
};

/* Ends the episode's agent phase with STATUS and a message (the first one set wins). */
static void conclude(struct episode *e, enum rec_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conclude(struct episode *e, enum rec_status status, const char *fmt, ...)
{
    if (e->res->message[0])
        return;
    e->res->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->res->message, sizeof(e->res->message), fmt, ap);
    va_end(ap);
}

/* ---- whose doing a failure is ----
 *
 * Every way an episode ends without a normal score is sorted here, so that the rule lives in
 * one place (docs/agents.md, "How an episode ends"):
 *
 *   not an end: a tool call the tools refuse (malformed, a missing file, a command or
 *     arguments over their size limit, a full disk) is an observation the agent reads;
 *   a budget (status budget or timeout, scored as usual): the sandbox spent by the OOM killer
 *     (its memory limit), the sandbox's or the episode's wall clock;
 *   the agent's (status agent_error, scored; 0 when the artifact cannot be): a plugin that
 *     crashes, fails its init or a step, or breaks the host protocol; a request of its that
 *     breaks a bound or is invalid (the plugin reads the error and may go on); an artifact
 *     that breaks a bound, is refused for safety or cannot be read when it is taken out of the
 *     sandbox or listed (its files, depth, bytes, modes are the agent's), or that the scorer
 *     finds over a bound (agt_score's CRU_ELIMIT);
 *   the environment's (status error, no reward; a run retries it and leaves it out of its
 *     means): the image's setup or reference solution, the sandbox's creation, the engine,
 *     writing the trajectory, a checker that cannot run, crucible's own bugs, and any code
 *     not named above.
 */
enum fault {
    FAULT_ENVIRONMENT,
    FAULT_AGENT,
};

enum stage {
    STAGE_REQUEST,  /* a host service a plugin asked for, with its arguments */
    STAGE_ARTIFACT, /* the final workspace taken out of the sandbox and listed */
    STAGE_SCORE,    /* agt_score on that copy */
};

static enum fault fault_of(enum stage stage, int code)
{
    switch (stage) {
    case STAGE_REQUEST:
        return code == CRU_EINVAL || code == CRU_ELIMIT || code == CRU_EPARSE ? FAULT_AGENT
                                                                              : FAULT_ENVIRONMENT;
    case STAGE_ARTIFACT:
        return code == CRU_ELIMIT || code == CRU_EUNSAFE || code == CRU_EPERM ? FAULT_AGENT
                                                                              : FAULT_ENVIRONMENT;
    case STAGE_SCORE:
        /* What agt_score reports as CRU_ELIMIT is an artifact over the scorer's bounds (its
         * files, depth, bytes), the agent's doing; anything else it reports is a checker that
         * could not run. */
        return code == CRU_ELIMIT ? FAULT_AGENT : FAULT_ENVIRONMENT;
    }
    return FAULT_ENVIRONMENT;
}

/* Whether byte C continues a UTF-8 character (a cut there would split it). */
static bool utf8_continues(char c)
{
    return ((unsigned char)c & 0xC0) == 0x80;
}

/* Puts PREFIX and MSG into RES's message. Too long a message loses its middle, not its end:
 * a wrapped error says why last ("taking ...: a/a/a/...: folders nested more than 256 deep").
 * MSG may name what the agent made (any bytes): invalid UTF-8 becomes U+FFFD first, so that
 * the cut is made on the text every reader gets. */
static void put_message(struct agt_episode_result *res, const char *prefix, const char *msg)
{
    static const char cut[] = " ... ";
    struct cru_buf fixed = CRU_BUF_INIT;
    size_t cap = sizeof(res->message), lp = strlen(prefix), lm = strlen(msg);
    if (!cru_utf8_valid(msg, lm) && cru_utf8_repair(&fixed, msg, lm) == 0) {
        msg = fixed.data;
        lm = fixed.len;
    }
    char *out = res->message;
    assert(lp < cap / 4);
    memcpy(out, prefix, lp);
    out += lp;
    if (lp + lm < cap) {
        memcpy(out, msg, lm);
        out[lm] = '\0';
    } else {
        size_t tail = cap / 2, head = cap - 1 - tail - (sizeof(cut) - 1) - lp;
        size_t from = lm - tail;
        while (head > 0 && utf8_continues(msg[head]))
            head--;
        while (from < lm && utf8_continues(msg[from]))
            from++;
        memcpy(out, msg, head);
        memcpy(out + head, cut, sizeof(cut) - 1);
        memcpy(out + head + sizeof(cut) - 1, msg + from, lm - from);
        out[head + sizeof(cut) - 1 + lm - from] = '\0';
    }
    cru_buf_free(&fixed);
}

/* The message is text for every reader (the end record, the run's index, JSON exports), but
 * what the agent named in it (a file, a plugin's words) may be any bytes: invalid UTF-8
 * becomes U+FFFD, and a cut never splits a character. */
static void message_repair(struct agt_episode_result *res)
{
    size_t cap = sizeof(res->message), len = strlen(res->message);
    if (cru_utf8_valid(res->message, len))
        return;
    struct cru_buf b = CRU_BUF_INIT;
    if (cru_utf8_repair(&b, res->message, len) < 0) {
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)res->message[i] >= 0x80)
                res->message[i] = '?';
        cru_buf_free(&b);
        return;
    }
    size_t n = b.len < cap - 1 ? b.len : cap - 1;
    while (n > 0 && n < b.len && utf8_continues(b.data[n]))
        n--;
    memcpy(res->message, b.data, n);
    res->message[n] = '\0';
    cru_buf_free(&b);
}

/* The environment failed: the episode ends with status error, whatever ended it before. */
static void env_error(struct episode *e, const char *prefix, const char *msg)
{
    e->res->status = REC_ERROR;
    put_message(e->res, prefix, msg);
}

/* The agent's artifact cannot be scored by its own doing: the episode scores 0 and says why,
 * whatever ended its turn before. */
static void unscorable(struct episode *e, const char *why)
{
    e->res->status = REC_AGENT_ERROR;
    e->res->unscorable = true;
    put_message(e->res, "unscorable: ", why);
}

/* Whether a budget or a cancel ends the loop before another turn; says which. */
static bool stop_before_turn(struct episode *e)
{
    if (e->o->cancel && atomic_load(e->o->cancel)) {
        conclude(e, REC_CANCELLED, "the run was interrupted");
        return true;
    }
    if (e->deadline_ns && cru_now_ns() >= e->deadline_ns) {
        conclude(e, REC_TIMEOUT, "the wall-clock budget of %llu ms ran out",
                 (unsigned long long)e->o->img->wall_ms);
        return true;
    }
    if (e->sampled >= e->o->sc->max_completion_tokens) {
        conclude(e, REC_BUDGET, "the budget of %llu sampled tokens ran out",
                 (unsigned long long)e->o->sc->max_completion_tokens);
        return true;
    }
    if (e->res->turns >= e->max_turns) {
        conclude(e, REC_BUDGET, "the budget of %llu turns ran out",
                 (unsigned long long)e->max_turns);
        return true;
    }
    return false;
}

static int tool(struct episode *e, const char *id, const char *name, const char *args,
                struct cru_buf *obs)
{
    int rc = agt_tool_run(&e->tools, id, name, args, obs);
    e->res->tool_calls = e->tools.calls;
    return rc;
}

static int host_fail(struct episode *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The agent's loop could not go on: a tool call, a model call or a host service failed with
 * RC beyond what the tools turn into observations. A sandbox its memory limit spent and a
 * sandbox past its lifetime are budgets (what the agent left is scored); the rest is the
 * environment's. */
static void loop_failed(struct episode *e, int rc)
{
    if (e->tools.sb && sbx_lost_to_oom(e->tools.sb))
        conclude(e, REC_BUDGET, "the sandbox ran out of memory: %s", cru_err_msg());
    else if (rc == CRU_ETIMEDOUT)
        conclude(e, REC_TIMEOUT, "the wall-clock budget of %llu ms ran out: %s",
                 (unsigned long long)e->o->img->wall_ms, cru_err_msg());
    else if (!e->res->message[0])
        env_error(e, "", cru_err_msg());
}

/* A host service failed with CODE while serving the plugin: by the plugin's doing (it reads
 * the error and may go on), or by the environment's, which ends the episode (status error;
 * the plugin is stopped before its next step). Returns CRUCIBLE_E_FAILED with WHAT and the
 * message for last_error. */
static int host_broke(struct episode *e, int code, const char *what)
{
    if (fault_of(STAGE_REQUEST, code) == FAULT_ENVIRONMENT && !e->res->message[0])
        env_error(e, what, cru_err_msg());
    return host_fail(e, CRUCIBLE_E_FAILED, "%s%s", what, cru_err_msg());
}

static int run_oracle(struct episode *e)
{
    struct cru_buf obs = CRU_BUF_INIT;
    const char *args = e->o->img->solution_kind == AGT_SOLUTION_PATCH
                           ? "{\"command\": \"git apply --whitespace=nowarn "
                             "/solution/solution.patch\"}"
                           : "{\"command\": \"sh /solution/solve.sh\"}";
    if (stop_before_turn(e))
        return 0;
    e->res->turns++;
    int rc = tool(e, "oracle-1", "bash", args, &obs);
    if (rc == 0 && !cru_str_starts_with(cru_buf_cstr(&obs), "exit status 0"))
        conclude(e, REC_ERROR, "the reference solution failed: %.300s", cru_buf_cstr(&obs));
    if (rc == 0)
        rc = tool(e, "oracle-2", "submit", NULL, &obs);
    cru_buf_free(&obs);
    return rc;
}

static int run_scripted(struct episode *e)
{
    struct cru_buf obs = CRU_BUF_INIT;
    int rc = 0;
    size_t i;
    json_t *c;
    json_array_foreach(e->o->agent->script, i, c)
    {
        if (e->tools.submitted || stop_before_turn(e))
            break;
        e->res->turns++;
        json_t *a = json_object_get(c, "arguments");
        char *args = a && json_is_object(a) ? json_dumps(a, JSON_COMPACT) : NULL;
        char id[32];
        snprintf(id, sizeof(id), "call-%zu", i + 1);
        const char *cid = json_string_value(json_object_get(c, "id"));
        rc = tool(e, cid ? cid : id, json_string_value(json_object_get(c, "tool")),
                  args ? args : json_string_value(a), &obs);
        free(args);
        if (rc < 0)
            break;
    }
    if (rc == 0 && !e->tools.submitted && !e->res->message[0])
        conclude(e, REC_BUDGET, "the script ended without submitting");
    cru_buf_free(&obs);
    return rc;
}

static int run_exec(struct episode *e)
{
    struct cru_buf obs = CRU_BUF_INIT;
    json_t *a = json_pack("{s:s}", "command", e->o->agent->arg);
    uint64_t left = e->deadline_ns ? (cru_deadline_left_ms(e->deadline_ns) + 999) / 1000 : 600;
    if (left < 1)
        left = 1;
    json_object_set_new(a, "timeout", json_integer((json_int_t)(left > 600 ? 600 : left)));
    char *args = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (stop_before_turn(e)) {
        free(args);
        return 0;
    }
    e->res->turns++;
    int rc =
        args ? tool(e, "exec-1", "bash", args, &obs) : cru_err_set(CRU_ENOMEM, "out of memory");
    free(args);
    /* A black-box program is done when it exits: whatever it left is its artifact, unless the
     * wall-clock budget stopped it. */
    if (rc == 0 && e->tools.last_status && strcmp(e->tools.last_status, "timeout") == 0)
        conclude(e, REC_TIMEOUT, "the program ran past the wall-clock budget of %llu ms",
                 (unsigned long long)e->o->img->wall_ms);
    else if (rc == 0 && !stop_before_turn(e))
        rc = tool(e, "exec-2", "submit", NULL, &obs);
    cru_buf_free(&obs);
    return rc;
}

/* ---- the plugin host ---- */

static int host_fail(struct episode *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->error, sizeof(e->error), fmt, ap);
    va_end(ap);
    return code;
}

static int branch_append(struct branch *b, const int32_t *ids, size_t n)
{
    if (b->len + n > MAX_CONTEXT)
        return cru_err_set(CRU_ELIMIT, "a context longer than %zu tokens", MAX_CONTEXT);
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        int32_t *v = realloc(b->ids, cap * sizeof(*v));
        if (!v)
            return cru_err_set(CRU_ENOMEM, "out of memory");
        b->ids = v;
        b->cap = cap;
    }
    if (n)
        memcpy(b->ids + b->len, ids, n * sizeof(*ids));
    b->len += n;
    return 0;
}

static int host_generate(void *ctx, const int32_t *prompt, size_t n_prompt, uint32_t max_tokens,
                         int32_t *ids, float *logprobs, size_t cap, size_t *n_out)
{
    struct episode *e = ctx;
    const struct agt_generator *g = e->gen;
    *n_out = 0;
    if (!g)
        return host_fail(e, CRUCIBLE_E_UNSUPPORTED,
                         "this episode has no model (run with a model to generate)");
    if ((!prompt && n_prompt) || !ids || !logprobs)
        return host_fail(e, CRUCIBLE_E_INVALID, "generate: a NULL buffer");
    uint64_t left = e->o->sc->max_completion_tokens - e->sampled;
    if (left == 0)
        return host_fail(e, CRUCIBLE_E_BUDGET, "the budget of %llu sampled tokens ran out",
                         (unsigned long long)e->o->sc->max_completion_tokens);
    if (max_tokens > left)
        max_tokens = (uint32_t)left;
    if (max_tokens > cap)
        max_tokens = (uint32_t)cap;
    struct branch *b = &e->branches[e->cur];
    size_t before = b->len;
    if (branch_append(b, prompt, n_prompt) < 0)
        return host_fail(e, CRUCIBLE_E_FAILED, "%s", cru_err_msg());
    const char *finish = "stop";
    uint64_t t0 = cru_now_ns();
    int rc = g->generate(g->ctx, b->ids, b->len, max_tokens, e->o->seed + e->res->turns, ids,
                         logprobs, cap, n_out, &finish);
    if (rc < 0) {
        b->len = before;
        return host_broke(e, rc, "generate: ");
    }
    struct rec_model_call mc = { .branch = e->cur,
                                 .prompt = prompt,
                                 .n_prompt = n_prompt,
                                 .completion = ids,
                                 .logprobs = logprobs,
                                 .n_completion = *n_out,
                                 .finish = finish,
                                 .policy_version = g->policy_version,
                                 .decode_ms = (double)(cru_now_ns() - t0) / 1e6 };
    if ((rc = rec_model_call(e->ep, &mc)) < 0 || (rc = branch_append(b, ids, *n_out)) < 0)
        return host_broke(e, rc, "");
    e->sampled += *n_out;
    return 0;
}

static int host_exec(void *ctx, const char *command, uint64_t timeout_ms, int *exit_code, char *out,
                     size_t cap, size_t *out_len)
{
    struct episode *e = ctx;
    if (!command || !out || !cap)
        return host_fail(e, CRUCIBLE_E_INVALID, "exec: a NULL command or buffer");
    json_t *a = json_pack("{s:s}", "command", command);
    if (timeout_ms)
        json_object_set_new(a, "timeout", json_integer((json_int_t)((timeout_ms + 999) / 1000)));
    char *args = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    struct cru_buf obs = CRU_BUF_INIT;
    char id[32];
    snprintf(id, sizeof(id), "plugin-%llu", (unsigned long long)e->tools.calls + 1);
    int rc = args ? tool(e, id, "bash", args, &obs) : CRU_ENOMEM;
    free(args);
    if (rc < 0) {
        /* The tools refuse what the plugin got wrong (an observation): this is the sandbox's
         * end or the environment's failure. */
        loop_failed(e, rc);
        cru_buf_free(&obs);
        return host_fail(e, CRUCIBLE_E_FAILED, "exec: %s", cru_err_msg());
    }
    const char *text = cru_buf_cstr(&obs);
    int code = -1;
    const char *status = strstr(text, "exit status ");
    if (status)
        code = atoi(status + strlen("exit status "));
    if (exit_code)
        *exit_code = code;
    if (out_len)
        *out_len = obs.len;
    if (obs.len >= cap) {
        cru_buf_free(&obs);
        return host_fail(e, CRUCIBLE_E_SPACE, "exec: the output needs %zu bytes", obs.len + 1);
    }
    memcpy(out, text, obs.len + 1);
    cru_buf_free(&obs);
    return 0;
}

static int host_rel(struct episode *e, const char *path, char **rel)
{
    if (!path)
        return host_fail(e, CRUCIBLE_E_INVALID, "a NULL path");
    if (agt_tool_path(path, rel) < 0)
        return host_fail(e, CRUCIBLE_E_INVALID, "%s", cru_err_msg());
    return 0;
}

static int host_read_file(void *ctx, const char *path, char *buf, size_t cap, size_t *len)
{
    struct episode *e = ctx;
    char *rel = NULL;
    int rc = host_rel(e, path, &rel);
    if (rc < 0)
        return rc;
    struct cru_buf b = CRU_BUF_INIT;
    rc = sbx_fs_read(&e->tools.fs, rel, (size_t)64 << 20, &b);
    free(rel);
    if (rc < 0) {
        cru_buf_free(&b);
        return host_fail(e, CRUCIBLE_E_FAILED, "read_file %s: %s", path, cru_err_msg());
    }
    if (len)
        *len = b.len;
    if (!buf || b.len >= cap) {
        cru_buf_free(&b);
        return host_fail(e, CRUCIBLE_E_SPACE, "read_file %s: needs %zu bytes", path, b.len + 1);
    }
    memcpy(buf, cru_buf_cstr(&b), b.len + 1);
    cru_buf_free(&b);
    return 0;
}

static int host_write_file(void *ctx, const char *path, const void *data, size_t len)
{
    struct episode *e = ctx;
    char *rel = NULL;
    int rc = host_rel(e, path, &rel);
    if (rc < 0)
        return rc;
    if (!data && len)
        return host_fail(e, CRUCIBLE_E_INVALID, "write_file: NULL data");
    uint64_t t0 = cru_now_ns();
    rc = sbx_fs_write(&e->tools.fs, rel, data ? data : "", len, 0644, true);
    free(rel);
    char args[CRU_SHOW_CAP(256) + 64], shown[CRU_SHOW_CAP(256)];
    snprintf(args, sizeof(args), "{\"path\": \"%s\", \"bytes\": %zu}",
             cru_str_show(shown, path, 256, true), len);
    char obs[600];
    if (rc == 0)
        snprintf(obs, sizeof(obs), "wrote %zu bytes", len);
    else
        snprintf(obs, sizeof(obs), "error: %.500s", cru_err_msg());
    struct rec_tool t = { .branch = e->cur,
                          .name = "write_file",
                          .arguments = args,
                          .status = rc == 0 ? "ok" : "error",
                          .exit_code = -1,
                          .output = obs,
                          .output_len = strlen(obs),
                          .output_bytes = strlen(obs),
                          .duration_ms = (double)(cru_now_ns() - t0) / 1e6 };
    if (rc < 0) {
        host_fail(e, CRUCIBLE_E_FAILED, "write_file %s: %s", path, cru_err_msg());
        if ((rc = rec_tool(e->ep, &t)) < 0)
            loop_failed(e, rc);
        return CRUCIBLE_E_FAILED;
    }
    if ((rc = rec_tool(e->ep, &t)) < 0) {
        loop_failed(e, rc);
        return host_fail(e, CRUCIBLE_E_FAILED, "%s", cru_err_msg());
    }
    e->tools.calls++;
    return 0;
}

static int host_context_edit(void *ctx, uint32_t from, uint64_t position, const char *why,
                             uint32_t *branch)
{
    struct episode *e = ctx;
    if (from >= e->n_branches || position > e->branches[from].len)
        return host_fail(e, CRUCIBLE_E_INVALID, "context_edit: no token %llu on branch %u",
                         (unsigned long long)position, from);
    struct branch *nb = realloc(e->branches, (e->n_branches + 1) * sizeof(*nb));
    if (!nb)
        return host_fail(e, CRUCIBLE_E_FAILED, "out of memory");
    e->branches = nb;
    memset(&nb[e->n_branches], 0, sizeof(*nb));
    uint32_t id;
    int rc = rec_fork(e->ep, from, position, why, &id);
    if (rc < 0)
        return host_broke(e, rc, "");
    /* The recorder numbers branches in order, as the host does. */
    e->n_branches++;
    if ((rc = branch_append(&nb[id], nb[from].ids, (size_t)position)) < 0)
        return host_broke(e, rc, "");
    e->cur = id;
    e->tools.branch = id;
    if (branch)
        *branch = id;
    return 0;
}

static void host_log(void *ctx, int level, const char *message)
{
    struct episode *e = ctx;
    if (level <= CRUCIBLE_LOG_ERROR)
        cru_error("plugin %s: %s", e->o->agent->arg, message ? message : "");
    else if (level == CRUCIBLE_LOG_WARN)
        cru_warn("plugin %s: %s", e->o->agent->arg, message ? message : "");
    else
        cru_info("plugin %s: %s", e->o->agent->arg, message ? message : "");
}

static int host_event(void *ctx, const char *name, const char *data_json)
{
    struct episode *e = ctx;
    json_t *data = NULL;
    if (!name)
        return host_fail(e, CRUCIBLE_E_INVALID, "event: a NULL name");
    if (data_json && cru_json_parse(&data, data_json, strlen(data_json), "event data") < 0)
        return host_fail(e, CRUCIBLE_E_INVALID, "event %s: %s", name, cru_err_msg());
    int rc = rec_event(e->ep, name, data);
    json_decref(data);
    return rc < 0 ? host_broke(e, rc, "") : 0;
}

static const char *host_last_error(void *ctx)
{
    return ((struct episode *)ctx)->error;
}

static bool plugin_stop(void *ctx, uint64_t steps)
{
    struct episode *e = ctx;
    e->res->turns = steps;
    e->error[0] = '\0'; /* a message the plugin already handled is not the next step's */
    /* A host call ended the episode (the environment failed, the sandbox is spent). */
    if (e->res->message[0])
        return true;
    return stop_before_turn(e);
}

static int run_plugin(struct episode *e)
{
    struct crucible_host host = { .abi_version = CRUCIBLE_AGENT_ABI,
                                  .size = sizeof(host),
                                  .ctx = e,
                                  .prompt = e->o->img->prompt,
                                  .generate = host_generate,
                                  .exec = host_exec,
                                  .read_file = host_read_file,
                                  .write_file = host_write_file,
                                  .context_edit = host_context_edit,
                                  .log = host_log,
                                  .event = host_event,
                                  .last_error = host_last_error };
    struct agt_plugin_run run = { .plugin = e->o->agent->plugin,
                                  .host = &host,
                                  .stop = plugin_stop,
                                  .stop_ctx = e,
                                  .deadline_ns = e->deadline_ns };
    int rc = agt_plugin_run(&run);
    if (rc < 0)
        return rc;
    e->res->turns = run.steps;
    e->tools.submitted = run.submitted;
    const char *name = e->o->agent->arg;
    /* A host call that ended the episode first (the environment's failure) keeps its status:
     * the plugin failing after it is no doing of its own. */
    if (run.timed_out)
        conclude(e, REC_TIMEOUT, "plugin %s: %s", name, run.error);
    else if (run.failed_rc)
        conclude(e, REC_AGENT_ERROR, "plugin %s: %s%s%s", name, run.error, e->error[0] ? ": " : "",
                 e->error);
    else if (run.error[0])
        conclude(e, REC_AGENT_ERROR, "plugin %s: %s", name, run.error);
    return 0;
}

/* ---- the model agent ---- */

static bool model_stop(void *ctx)
{
    return stop_before_turn(ctx);
}

static int run_model(struct episode *e)
{
    if (!e->o->model) {
        conclude(e, REC_ERROR, "the model agent needs a model (--model DIR)");
        return 0;
    }
    struct agt_model_env env = { .tools = &e->tools,
                                 .ep = e->ep,
                                 .sc = e->o->sc,
                                 .prompt = e->o->img->prompt,
                                 .seed = e->o->seed,
                                 .turns = &e->res->turns,
                                 .sampled = &e->sampled,
                                 .stop = model_stop,
                                 .ctx = e };
    int rc = agt_model_episode(e->o->model, &env);
    if (rc == 0 && env.ended)
        conclude(e, env.status, "%s", env.message);
    return rc;
}

/* ---- the episode ---- */

static void on_record(void *ctx, const uint8_t *payload, size_t len)
{
    const struct agt_episode_opts *o = ctx;
    struct rec_show_opts so = { .color = o->live_color };
    (void)rec_show_payload(o->live, payload, len, &so);
}

/* The files the agent added, changed or removed, compared with the workspace after setup. */
static int record_artifact(struct episode *e, const struct cru_manifest *before, const char *ws)
{
    struct cru_manifest after;
    uint64_t max_files = e->o->max_artifact_files ? e->o->max_artifact_files : ARTIFACT_MAX_FILES;
    int rc = cru_manifest_make_named(ws, "the workspace", max_files, ARTIFACT_MAX_BYTES, &after);
    if (rc < 0)
        return rc;
    struct rec_artifact_file *files = calloc(ARTIFACT_MAX_LISTED, sizeof(*files));
    char(*hex)[65] = calloc(ARTIFACT_MAX_LISTED, sizeof(*hex));
    size_t n = 0;
    if (!files || !hex)
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < after.n && n < ARTIFACT_MAX_LISTED; i++) {
        const struct cru_manifest_entry *a = &after.v[i], *b = cru_manifest_find(before, a->path);
        if (a->type == 'd' || (b && b->type == a->type && memcmp(b->sha256, a->sha256, 32) == 0))
            continue;
        cru_hex(hex[n], a->sha256, 32);
        files[n] = (struct rec_artifact_file){ a->path, a->size, hex[n] };
        n++;
    }
    /* Removed files: listed with no digest. */
    for (size_t i = 0; rc == 0 && i < before->n && n < ARTIFACT_MAX_LISTED; i++) {
        const struct cru_manifest_entry *b = &before->v[i];
        if (b->type != 'd' && !cru_manifest_find(&after, b->path))
            files[n++] = (struct rec_artifact_file){ b->path, 0, NULL };
    }
    if (rc == 0)
        rc = rec_artifact(e->ep, NULL, files, n);
    free(files);
    free(hex);
    cru_manifest_free(&after);
    return rc;
}

static void task_digest(const struct agt_image *img, char out[72])
{
    struct cru_manifest m;
    uint8_t d[32];
    char hex[65];
    out[0] = '\0';
    if (cru_manifest_make(img->dir, ARTIFACT_MAX_FILES, ARTIFACT_MAX_BYTES, &m) < 0)
        return;
    cru_manifest_digest(&m, d);
    cru_manifest_free(&m);
    cru_hex(hex, d, 32);
    snprintf(out, 72, "sha256:%s", hex);
}

static int begin(struct episode *e, struct rec_file *f)
{
    const struct agt_episode_opts *o = e->o;
    char digest[72];
    task_digest(o->img, digest);
    json_t *msgs = json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content",
                             o->sc->system_prompt, "role", "user", "content", o->img->prompt);
    json_t *meta = json_pack("{s:s, s:I, s:I}", "image_title", o->img->title, "max_turns",
                             (json_int_t)e->max_turns, "wall_ms", (json_int_t)o->img->wall_ms);
    const struct agt_generator *g = e->gen;
    struct rec_episode_info info = {
        .episode_id = o->episode_id,
        .group_id = o->group_id,
        .task_id = o->img->id,
        .task_digest = digest[0] ? digest : NULL,
        .scaffold_version = o->sc->version,
        .agent = agt_agent_name(o->agent),
        .model_id = g ? g->model_id : NULL,
        .model_digest = g ? g->model_digest : NULL,
        .tokenizer_digest = g ? g->tokenizer_digest : NULL,
        .chat_template = g ? g->chat_template : NULL,
        .sampling = { g ? g->temperature : 1.0, g ? g->top_p : 1.0, g ? g->top_k : 0,
                      o->sc->max_completion_tokens },
        .seed = o->seed,
        .policy_version = g ? g->policy_version : 0,
        .messages = msgs,
        .meta = meta,
    };
    int rc = rec_episode_begin(&e->ep, f, &info);
    json_decref(msgs);
    json_decref(meta);
    return rc;
}

/* The agent phase: workspace, session sandbox, the agent's loop, artifact. Any failure is
 * the episode's error (its message recorded), not the runner's. */
static void act(struct episode *e, const char *tmp, char **rootfs, bool *scorable)
{
    const struct agt_episode_opts *o = e->o;
    char pristine[PATH_MAX], ws[PATH_MAX], final[PATH_MAX];
    char *scratch = NULL, *sol = NULL;
    struct cru_manifest base = { 0 };
    struct sbx *sb = NULL;
    struct cru_buf obs = CRU_BUF_INIT;
    int rc;
    uint64_t t = cru_now_ns();
    snprintf(pristine, sizeof(pristine), "%s/pristine", tmp);
    snprintf(ws, sizeof(ws), "%s/ws", tmp);
    snprintf(final, sizeof(final), "%s/final", tmp);
    if ((rc = agt_rootfs_prepare(o->img, o->check ? o->check->cache : NULL, rootfs)) < 0 ||
        (rc = agt_workspace_make(o->img, pristine)) < 0 ||
        (rc = agt_workspace_make(o->img, ws)) < 0 ||
        (rc = agt_prepare_workspace(o->img, ws, *rootfs, false, o->check)) < 0 ||
        (rc = cru_manifest_make(ws, ARTIFACT_MAX_FILES, ARTIFACT_MAX_BYTES, &base)) < 0) {
        conclude(e, REC_ERROR, "preparing the workspace: %s", cru_err_msg());
        goto done;
    }
    e->res->ms.workspace = ms_since(&t);
    if (o->agent->kind == AGT_AGENT_ORACLE &&
        (rc = agt_solution_stage(o->img, &scratch, &sol)) < 0) {
        conclude(e, REC_ERROR, "%s", cru_err_msg());
        goto done;
    }
    if ((rc = agt_sandbox_open(o->img, ws, *rootfs, NULL, sol, o->img->wall_ms, o->check, &sb)) <
        0) {
        conclude(e, REC_ERROR, "creating the sandbox: %s", cru_err_msg());
        goto done;
    }
    e->res->ms.sandbox = ms_since(&t);
    e->res->sandboxed = true;
    sbx_info_get(sb, &e->res->sandbox);
    e->tools = (struct agt_tools){ .sb = sb,
                                   .fs = { sbx_workspace_fd(sb), sbx_root_uid(sb), sbx_root_gid(sb),
                                           SBX_FS_AUTO },
                                   .sc = o->sc,
                                   .ep = e->ep,
                                   .cancel = o->cancel };
    *scorable = true;
    switch (o->agent->kind) {
    case AGT_AGENT_ORACLE:
        rc = run_oracle(e);
        break;
    case AGT_AGENT_SCRIPTED:
        rc = run_scripted(e);
        break;
    case AGT_AGENT_EXEC:
        rc = run_exec(e);
        break;
    case AGT_AGENT_PLUGIN:
        rc = run_plugin(e);
        break;
    case AGT_AGENT_MODEL:
        rc = run_model(e);
        break;
    }
    /* A sandbox that its memory limit used up ends the agent's turn like any other budget:
     * its work is scored, so that running out of memory on purpose dodges no score. A plugin
     * may have met it in a host call and gone on failing. */
    if (rc < 0)
        loop_failed(e, rc);
    else if (sbx_lost_to_oom(sb))
        conclude(e, REC_BUDGET, "the sandbox ran out of memory");
    e->res->ms.agent = ms_since(&t);
    e->res->tool_calls = e->tools.calls;
    e->tools.sb = NULL;
    if (e->res->status == REC_ERROR || e->res->status == REC_CANCELLED)
        *scorable = false;
    /* The agent's processes end with its sandbox, before anything reads the workspace, whose
     * final state (the overlay's changes on the sandbox's disk) is copied out to FINAL. What
     * the agent left that cannot be taken or listed (too many files, too deep, unreadable) is
     * its own doing: unscorable, 0. */
    if (*scorable) {
        rc = agt_sandbox_take(sb, final);
        if (rc < 0 && fault_of(STAGE_ARTIFACT, rc) == FAULT_AGENT)
            unscorable(e, cru_err_msg());
        else if (rc < 0)
            env_error(e, "", cru_err_msg());
        if (rc < 0)
            *scorable = false;
    } else {
        sbx_free(sb);
    }
    sb = NULL;
    e->res->ms.sandbox += ms_since(&t);
    if (*scorable && (rc = record_artifact(e, &base, final)) < 0) {
        if (fault_of(STAGE_ARTIFACT, rc) == FAULT_AGENT)
            unscorable(e, cru_err_msg());
        else
            env_error(e, "recording the artifact: ", cru_err_msg());
        *scorable = false;
    }
    e->res->ms.artifact = ms_since(&t);
done:
    sbx_free(sb);
    cru_buf_free(&obs);
    cru_manifest_free(&base);
    if (scratch)
        cru_remove_tree(scratch);
    free(scratch);
    free(sol);
}

/* Records the reward in RES (a breakdown that could not be made is left out, never the
 * reward); a reward that cannot be written leaves the episode unscored. */
static void record_reward(struct episode *e)
{
    int rc = rec_reward(e->ep, e->res->reward, e->res->breakdown);
    if (rc < 0) {
        e->res->scored = e->res->unscorable = false;
        env_error(e, "recording the reward: ", cru_err_msg());
    }
}

static void score(struct episode *e, const char *tmp, const char *rootfs)
{
    uint64_t t = cru_now_ns();
    char pristine[PATH_MAX], final[PATH_MAX];
    snprintf(pristine, sizeof(pristine), "%s/pristine", tmp);
    snprintf(final, sizeof(final), "%s/final", tmp);
    struct rwd_result r;
    int rc = agt_score(e->o->img, final, pristine, rootfs, e->o->check, &r);
    e->res->ms.reward = ms_since(&t);
    if (rc < 0 && fault_of(STAGE_SCORE, rc) == FAULT_AGENT) {
        unscorable(e, cru_err_msg());
        return;
    }
    if (rc < 0) {
        /* The agent's work stands; only its score is missing, and a run tries again. */
        env_error(e, "scoring: ", cru_err_msg());
        return;
    }
    e->res->scored = true;
    e->res->reward = r.reward;
    e->res->breakdown = rwd_result_json(&r);
    rwd_result_free(&r);
    record_reward(e);
}

/* An artifact that could not be scored by the agent's doing: reward 0, the reason beside the
 * empty checks, so that every mean counts it. */
static void score_zero(struct episode *e)
{
    message_repair(e->res);
    const char *why = e->res->message + strlen("unscorable: ");
    e->res->scored = true;
    e->res->reward = 0;
    e->res->breakdown = json_pack("{s:f, s:b, s:[], s:[], s:s}", "reward", 0.0, "all_passed", false,
                                  "protected_changed", "checks", "unscorable", why);
    record_reward(e);
}

void agt_episode_result_free(struct agt_episode_result *res)
{
    if (!res)
        return;
    json_decref(res->breakdown);
    res->breakdown = NULL;
}

int agt_episode_run(const struct agt_episode_opts *o, struct agt_episode_result *res)
{
    memset(res, 0, sizeof(*res));
    res->status = REC_SUBMITTED;
    struct episode e = { .o = o, .res = res };
    e.gen = o->model ? agt_model_generator(o->model) : o->gen;
    uint64_t t0 = cru_now_ns();
    e.deadline_ns = cru_deadline_ms(o->img->wall_ms);
    e.max_turns = o->max_turns ? o->max_turns : o->sc->max_turns;
    if (o->img->turns && o->img->turns < e.max_turns && !o->max_turns)
        e.max_turns = o->img->turns;
    e.branches = calloc(1, sizeof(*e.branches));
    e.n_branches = 1;

    struct rec_file *f = NULL;
    struct rec_file_opts fo = REC_FILE_OPTS_INIT;
    fo.mode = REC_TRUNCATE;
    if (o->live) {
        fo.on_record = on_record;
        fo.on_record_ctx = (void *)(uintptr_t)o;
    }
    char tmp[] = "/tmp/crucible-episode-XXXXXX", *rootfs = NULL;
    uint64_t t = cru_now_ns();
    int rc = e.branches ? rec_file_open(&f, o->path, &fo) : CRU_ENOMEM;
    if (rc == 0)
        rc = begin(&e, f);
    res->ms.record = ms_since(&t);
    if (rc < 0) {
        rec_file_close(f);
        free(e.branches);
        return cru_err_wrap(rc, "episode %s", o->episode_id);
    }
    bool scorable = false;
    if (!mkdtemp(tmp)) {
        conclude(&e, REC_ERROR, "cannot make the episode's folder: %s", strerror(errno));
        tmp[0] = '\0';
    } else if (chmod(tmp, 0711) < 0) {
        conclude(&e, REC_ERROR, "cannot open up %s: %s", tmp, strerror(errno));
    } else {
        act(&e, tmp, &rootfs, &scorable);
    }
    if (scorable)
        score(&e, tmp, rootfs);
    if (res->unscorable)
        score_zero(&e);
    message_repair(res);
    struct rec_end end = { res->status, res->message[0] ? res->message : NULL };
    t = cru_now_ns();
    rc = rec_episode_end(e.ep, &end);
    rec_episode_free(e.ep);
    int crc = rec_file_close(f);
    res->ms.record += ms_since(&t);
    res->wall_ms = cru_elapsed_ms(t0);
    if (tmp[0] && cru_remove_tree(tmp) < 0)
        cru_warn("cannot remove %s: %s", tmp, cru_err_msg());
    free(rootfs);
    for (uint32_t i = 0; i < e.n_branches; i++)
        free(e.branches[i].ids);
    free(e.branches);
    if (rc == 0)
        rc = crc;
    return rc < 0 ? cru_err_wrap(rc, "episode %s", o->episode_id) : 0;
}
