/* Tests for agent/model_agent: the model agent's loop on a tiny random checkpoint made with the
 * real Qwen3 tokenizer. A scripted sampler stands in for the model where the replies matter
 * (a well-formed tool call, a malformed one the model must read about, submit), so the test
 * sees tools run, the error observation, and every model call extending its branch; the real
 * engine then runs an episode end to end (a random model calls no tool: the point is a valid,
 * token-exact trajectory).
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/model_agent.h"
#include "agent/runner.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "model/tokenizer.h"
#include "recorder/episode.h"
#include "recorder/reader.h"
#include "tests/tokenizer_util.h"

static char tmpdir[] = "/tmp/crucible-test-model-agent-XXXXXX";
static char ckpt[4200];

static void setup(void)
{
    tiny_qwen_checkpoint(tmpdir, ckpt, sizeof(ckpt), 5);
}

static void teardown(void)
{
    cru_remove_tree(tmpdir);
}

TestSuite(model_agent, .init = setup, .fini = teardown, .timeout = 180);

/* Replies the stand-in model gives, one per call, encoded with the real tokenizer. */
static const char *const replies[] = {
    "<think>\nFirst, look around.\n</think>\n\n<tool_call>\n{\"name\": \"bash\", \"arguments\": "
    "{\"command\": \"ls\"}}\n</tool_call><|im_end|>",
    "<tool_call>\n{\"name\": \"bash\", \"arguments\": {oops}}\n</tool_call><|im_end|>",
    "<tool_call>\n{\"name\": \"submit\", \"arguments\": {}}\n</tool_call><|im_end|>",
};

struct script {
    struct tok *tok;
    int calls;
    const char *const *replies;
};

static int scripted(void *ctx, const int32_t *context, size_t n_context, uint32_t max_tokens,
                    uint64_t seed, int32_t *ids, float *logprobs, size_t cap, size_t *n_out,
                    const char **finish)
{
    struct script *s = ctx;
    (void)context;
    (void)n_context;
    (void)seed;
    cr_assert_lt(s->calls, 3, "the model was called after it submitted");
    struct tok_ids v = TOK_IDS_INIT;
    const char *r = s->replies[s->calls++];
    cr_assert_eq(tok_encode(s->tok, r, strlen(r), &v), 0);
    cr_assert_leq(v.n, cap);
    cr_assert_leq(v.n, max_tokens);
    for (size_t i = 0; i < v.n; i++) {
        ids[i] = v.v[i];
        logprobs[i] = -0.25f;
    }
    *n_out = v.n;
    *finish = "stop";
    tok_ids_free(&v);
    return 0;
}

static struct agt_scaffold *scaffold(void)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/scaffolds/default", getenv("CRUCIBLE_SRC"));
    struct agt_scaffold *sc;
    cr_assert_eq(agt_scaffold_load(dir, &sc), 0, "%s", cru_err_msg());
    return sc;
}

static struct agt_image *image(void)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/images/py-median-even", getenv("CRUCIBLE_SRC"));
    struct agt_image *img;
    cr_assert_eq(agt_image_load(dir, &img, NULL), 0, "%s", cru_err_msg());
    return img;
}

static void episode(const struct agt_model *m, const char *name, struct agt_episode_result *res,
                    char *path, size_t cap)
{
    struct agt_image *img = image();
    struct agt_scaffold *sc = scaffold();
    struct agt_agent *agent;
    cr_assert_eq(agt_agent_load("model", &agent), 0);
    snprintf(path, cap, "%s/%s.traj", tmpdir, name);
    struct agt_episode_opts eo = { .img = img,
                                   .sc = sc,
                                   .agent = agent,
                                   .model = m,
                                   .path = path,
                                   .episode_id = name,
                                   .seed = 3 };
    cr_assert_eq(agt_episode_run(&eo, res), 0, "%s", cru_err_msg());
    struct rec_verify v;
    cr_assert_eq(rec_verify_file(path, &v), 0, "%s", cru_err_msg());
    agt_agent_free(agent);
    agt_scaffold_free(sc);
    agt_image_free(img);
}

Test(model_agent, tool_calls_errors_and_submit)
{
    struct script s = { qwen_load(), 0, replies };
    struct agt_generator sampler = { .ctx = &s, .generate = scripted };
    struct agt_model_opts o = AGT_MODEL_OPTS_INIT;
    o.dir = ckpt;
    o.sampler = &sampler;
    struct agt_model *m;
    cr_assert_eq(agt_model_open(&m, &o), 0, "%s", cru_err_msg());
    struct agt_episode_result res;
    char path[4300];
    episode(m, "scripted", &res, path, sizeof(path));
    cr_assert_eq(res.status, REC_SUBMITTED, "%s", res.message);
    cr_assert_eq(res.turns, 3);
    cr_assert(res.scored);

    struct rec_reader *r;
    struct rec_record rec;
    cr_assert_eq(rec_reader_open(&r, path), 0);
    int calls = 0, tools = 0;
    bool saw_error_obs = false;
    while (rec_reader_next(r, &rec) > 0) {
        const char *str;
        size_t n;
        if (rec.type == REC_EPISODE) {
            cr_assert(rec_get_str(rec.map, "chat_template", &str, &n));
            cr_assert_eq(memcmp(str, "qwen3", 5), 0);
            cr_assert(rec_get_str(rec.map, "tokenizer_digest", &str, &n));
        }
        if (rec.type == REC_MODEL_CALL) {
            uint64_t branch = 9;
            cr_assert(rec_get_u64(rec.map, "branch", &branch));
            cr_assert_eq(branch, 0, "tool results append: no fork");
            if (calls == 0) {
                cr_assert(rec_get_str(rec.map, "reasoning", &str, &n), "the thinking is parsed");
                cr_assert(rec_get(rec.map, "tool_calls"), "the call is recorded");
            }
            calls++;
        }
        if (rec.type == REC_TOOL) {
            cr_assert(rec_get_str(rec.map, "name", &str, &n));
            tools++;
        }
        /* The malformed call's error reached the model: the third call's prompt holds it. */
        if (rec.type == REC_MODEL_CALL && calls == 3) {
            struct rec_array p;
            cr_assert(rec_get_i32s(rec.map, "prompt", &p));
            struct cru_buf text = CRU_BUF_INIT;
            int32_t *ids = malloc(p.n * sizeof(*ids) + 1);
            for (size_t i = 0; i < p.n; i++)
                ids[i] = rec_i32_at(&p, i);
            cr_assert_eq(tok_decode(s.tok, ids, p.n, &text), 0);
            saw_error_obs = strstr(cru_buf_cstr(&text), "<tool_response>") != NULL;
            free(ids);
            cru_buf_free(&text);
        }
    }
    rec_reader_free(r);
    cr_assert_eq(calls, 3);
    cr_assert_eq(tools, 2, "bash, then submit; the malformed call runs nothing");
    cr_assert(saw_error_obs, "the error observation was not appended");
    agt_episode_result_free(&res);
    agt_model_free(m);
    tok_free(s.tok);
}

Test(model_agent, the_real_engine_end_to_end)
{
    struct agt_model_opts o = AGT_MODEL_OPTS_INIT;
    o.dir = ckpt;
    o.max_call_tokens = 64;
    o.threads = 1;
    struct agt_model *m;
    cr_assert_eq(agt_model_open(&m, &o), 0, "%s", cru_err_msg());
    struct agt_episode_result res;
    char path[4300];
    episode(m, "engine", &res, path, sizeof(path));
    cr_assert(res.status == REC_SUBMITTED || res.status == REC_BUDGET, "%s", res.message);
    cr_assert_geq(res.turns, 1);
    cr_assert(res.scored);

    /* The export gives back the sampled ids with their log-probs, the prompt masked. */
    struct rec_reader *r;
    struct rec_record rec;
    cr_assert_eq(rec_reader_open(&r, path), 0);
    size_t sampled = 0, calls = 0;
    while (rec_reader_next(r, &rec) > 0) {
        struct rec_array c, lp;
        if (rec.type != REC_MODEL_CALL)
            continue;
        cr_assert(rec_get_i32s(rec.map, "completion", &c));
        cr_assert(rec_get_f32s(rec.map, "logprobs", &lp));
        cr_assert_eq(c.n, lp.n);
        for (size_t i = 0; i < lp.n; i++)
            cr_assert_leq(rec_f32_at(&lp, i), 0.0f);
        sampled += c.n;
        calls++;
    }
    rec_reader_free(r);
    cr_assert_gt(sampled, 0);

    /* The engine's counters, as a run's summary gives them: every prompt token was computed or
     * found cached, and from the second call on, each call's prompt (the context so far)
     * starts from the blocks of the calls before it. */
    json_t *ej = agt_model_engine_json(m);
    cr_assert_not_null(ej);
    cr_assert_str_eq(json_string_value(json_object_get(ej, "backend")), "cpu");
    json_int_t prompt = json_integer_value(json_object_get(ej, "prompt_tokens"));
    json_int_t computed = json_integer_value(json_object_get(ej, "prefill_tokens"));
    json_int_t cached = json_integer_value(json_object_get(ej, "cached_tokens"));
    cr_assert_eq(prompt, computed + cached);
    if (calls > 1)
        cr_assert_gt(cached, 0, "%zu calls and no cached prompt token", calls);
    json_decref(ej);
    agt_episode_result_free(&res);
    agt_model_free(m);
}

/* A reply the template would write otherwise (one newline after </think> where it writes two):
 * appending cannot reproduce the context, so the loop forks, and the next call is on the new
 * branch, its prompt holding the re-rendered turn. */
Test(model_agent, a_reply_the_template_rewrites_forks)
{
    static const char *const odd[] = {
        "<think>\nhm\n</think>\n<tool_call>\n{\"name\": \"bash\", \"arguments\": "
        "{\"command\": \"ls\"}}\n</tool_call><|im_end|>",
        "<tool_call>\n{\"name\": \"submit\", \"arguments\": {}}\n</tool_call><|im_end|>",
    };
    struct script s = { qwen_load(), 0, odd };
    struct agt_generator sampler = { .ctx = &s, .generate = scripted };
    struct agt_model_opts o = AGT_MODEL_OPTS_INIT;
    o.dir = ckpt;
    o.sampler = &sampler;
    struct agt_model *m;
    cr_assert_eq(agt_model_open(&m, &o), 0, "%s", cru_err_msg());
    struct agt_episode_result res;
    char path[4300];
    episode(m, "fork", &res, path, sizeof(path));
    cr_assert_eq(res.status, REC_SUBMITTED, "%s", res.message);
    struct rec_reader *r;
    struct rec_record rec;
    cr_assert_eq(rec_reader_open(&r, path), 0);
    int forks = 0;
    uint64_t last_branch = 0;
    while (rec_reader_next(r, &rec) > 0) {
        forks += rec.type == REC_CONTEXT_EDIT;
        if (rec.type == REC_MODEL_CALL)
            cr_assert(rec_get_u64(rec.map, "branch", &last_branch));
    }
    rec_reader_free(r);
    cr_assert_eq(forks, 1);
    cr_assert_eq(last_branch, 1, "the second call is on the forked branch");
    agt_episode_result_free(&res);
    agt_model_free(m);
    tok_free(s.tok);
}
