/* Tests for agent/runner and agent/tools: whole episodes in real sandboxes on bundled images
 * (root, as in CI). The oracle scores 1; a scripted agent's bad calls become observations and
 * its budget ends the episode; the tools refuse paths outside the workspace (with a positive
 * control reading a file inside); exec and plugin agents are recorded like the others; a plugin
 * of another ABI version is refused before it runs; and a failing setup, a failing plugin or an
 * interruption each end the episode with its status while the trajectory stays complete.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/check.h"
#include "agent/image.h"
#include "agent/runner.h"
#include "agent/scaffold.h"
#include "agent/tools.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/str.h"
#include "recorder/episode.h"
#include "recorder/reader.h"
#include "recorder/writer.h"
#include "sandbox/sandbox.h"

static char tmpdir[] = "/tmp/crucible-test-runner-XXXXXX";

static void setup(void)
{
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
    cru_remove_tree(tmpdir);
}

TestSuite(runner, .init = setup, .fini = teardown, .timeout = 120);

static const char *src(void)
{
    const char *s = getenv("CRUCIBLE_SRC");
    cr_assert(s && *s, "CRUCIBLE_SRC is not set: run the tests with `make test`");
    return s;
}

static struct agt_image *image(const char *id)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/images/%s", src(), id);
    struct agt_image *img;
    cr_assert_eq(agt_image_load(dir, &img, NULL), 0, "%s", cru_err_msg());
    return img;
}

static struct agt_scaffold *scaffold(void)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/scaffolds/default", src());
    struct agt_scaffold *sc;
    cr_assert_eq(agt_scaffold_load(dir, &sc), 0, "%s", cru_err_msg());
    return sc;
}

/* What one episode left: its result, and its tool records' names, statuses and outputs. */
struct outcome {
    struct agt_episode_result res;
    char path[4200];
    int n_tools;
    char tool[32][32];
    char status[32][16];
    char output[32][2048];
    int events;
    char event[8][64];
    bool artifact;
    struct cru_buf artifact_files; /* the artifact's paths, one a line */
    bool has_reward;               /* a reward record, with: */
    double reward;
    char unscorable[512]; /* its breakdown's "unscorable" */
    char end_status[32];  /* the end record's status */
};

static void outcome_free(struct outcome *o)
{
    agt_episode_result_free(&o->res);
    cru_buf_free(&o->artifact_files);
}

static void read_back(struct outcome *o)
{
    struct rec_verify v;
    cr_assert_eq(rec_verify_file(o->path, &v), 0, "the trajectory is not intact and complete: %s",
                 cru_err_msg());
    struct rec_reader *r;
    struct rec_record rec;
    cr_assert_eq(rec_reader_open(&r, o->path), 0);
    while (rec_reader_next(r, &rec) > 0) {
        const char *s;
        size_t n;
        if (rec.type == REC_TOOL && o->n_tools < 32) {
            int i = o->n_tools++;
            cr_assert(rec_get_str(rec.map, "name", &s, &n));
            snprintf(o->tool[i], sizeof(o->tool[i]), "%.*s", (int)n, s);
            cr_assert(rec_get_str(rec.map, "status", &s, &n));
            snprintf(o->status[i], sizeof(o->status[i]), "%.*s", (int)n, s);
            cr_assert(rec_get_str(rec.map, "output", &s, &n));
            snprintf(o->output[i], sizeof(o->output[i]), "%.*s", (int)n, s);
        } else if (rec.type == REC_EVENT && o->events < 8) {
            cr_assert(rec_get_str(rec.map, "name", &s, &n));
            snprintf(o->event[o->events++], 64, "%.*s", (int)n, s);
        } else if (rec.type == REC_REWARD) {
            o->has_reward = true;
            cr_assert(rec_get_f64(rec.map, "value", &o->reward));
            const msgpack_object *bd = rec_get(rec.map, "breakdown");
            if (bd && rec_get_str(bd, "unscorable", &s, &n))
                snprintf(o->unscorable, sizeof(o->unscorable), "%.*s", (int)n, s);
        } else if (rec.type == REC_END) {
            cr_assert(rec_get_str(rec.map, "status", &s, &n));
            snprintf(o->end_status, sizeof(o->end_status), "%.*s", (int)n, s);
        } else if (rec.type == REC_ARTIFACT) {
            o->artifact = true;
            const msgpack_object *files = rec_get(rec.map, "files");
            for (uint32_t i = 0; files && i < files->via.array.size; i++) {
                cr_assert(rec_get_str(&files->via.array.ptr[i], "path", &s, &n));
                cru_buf_append(&o->artifact_files, s, n);
                cru_buf_putc(&o->artifact_files, '\n');
            }
        }
    }
    rec_reader_free(r);
    cru_buf_append(&o->artifact_files, "", 0);
}

/* Runs one episode of IMG (which the caller frees), with CHECK's rootfs cache and state (NULL:
 * the defaults) and at most MAX_FILES files in its artifact (0: the default). */
static void run_image_limited(const struct agt_image *img, const char *agent_spec,
                              uint64_t max_turns, const atomic_bool *cancel,
                              const struct agt_check_opts *check, uint64_t max_files,
                              struct outcome *o)
{
    const char *image_id = img->id;
    memset(o, 0, sizeof(*o));
    struct agt_scaffold *sc = scaffold();
    struct agt_agent *agent;
    cr_assert_eq(agt_agent_load(agent_spec, &agent), 0, "%s", cru_err_msg());
    snprintf(o->path, sizeof(o->path), "%s/%s.traj", tmpdir, image_id);
    struct agt_episode_opts eo = { .img = img,
                                   .sc = sc,
                                   .agent = agent,
                                   .path = o->path,
                                   .episode_id = "e1",
                                   .group_id = "g1",
                                   .max_turns = max_turns,
                                   .max_artifact_files = max_files,
                                   .check = check,
                                   .cancel = cancel };
    cr_assert_eq(agt_episode_run(&eo, &o->res), 0, "%s", cru_err_msg());
    read_back(o);
    agt_agent_free(agent);
    agt_scaffold_free(sc);
}

static void run_image(const struct agt_image *img, const char *agent_spec, uint64_t max_turns,
                      const atomic_bool *cancel, const struct agt_check_opts *check,
                      struct outcome *o)
{
    run_image_limited(img, agent_spec, max_turns, cancel, check, 0, o);
}

static void run(const char *image_id, const char *agent_spec, uint64_t max_turns,
                const atomic_bool *cancel, struct outcome *o)
{
    struct agt_image *img = image(image_id);
    run_image(img, agent_spec, max_turns, cancel, NULL, o);
    agt_image_free(img);
}

static char *script(const char *json)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/script.json", tmpdir) > 0);
    cr_assert_eq(cru_file_write_atomic(p, json, strlen(json), 0644), 0);
    char *spec = NULL;
    cr_assert(asprintf(&spec, "scripted:%s", p) > 0);
    free(p);
    return spec;
}

Test(runner, oracle_scores_one)
{
    struct outcome o;
    run("c-parse-long", "oracle", 0, NULL, &o);
    cr_assert_eq(o.res.status, REC_SUBMITTED, "%s", o.res.message);
    cr_assert(o.res.scored);
    cr_assert_float_eq(o.res.reward, 1.0, 1e-9);
    cr_assert_eq(o.n_tools, 2);
    cr_assert_str_eq(o.tool[0], "bash");
    cr_assert_str_eq(o.tool[1], "submit");
    cr_assert(o.artifact);
    cr_assert_not_null(strstr(o.artifact_files.data, "parse.c\n"), "artifact: %s",
                       o.artifact_files.data);
    outcome_free(&o);
}

Test(runner, scripted_tools_and_their_errors)
{
    char *spec = script("["
                        "{\"tool\": \"create\", \"arguments\": {\"path\": \"notes/a.txt\", "
                        "\"content\": \"one\\ntwo\\ntwo\\nthree\\n\"}},"
                        "{\"tool\": \"str_replace\", \"arguments\": {\"path\": \"notes/a.txt\", "
                        "\"old\": \"two\", \"new\": \"2\"}},"
                        "{\"tool\": \"str_replace\", \"arguments\": {\"path\": "
                        "\"/workspace/notes/a.txt\", \"old\": \"two\\nthree\", \"new\": \"3\"}},"
                        "{\"tool\": \"view\", \"arguments\": {\"path\": \"notes/a.txt\", "
                        "\"start\": 2, \"end\": 3}},"
                        "{\"tool\": \"view\", \"arguments\": {\"path\": \"../../etc/passwd\"}},"
                        "{\"tool\": \"view\", \"arguments\": {\"path\": \"/etc/passwd\"}},"
                        "{\"tool\": \"bash\", \"arguments\": {\"command\": \"ln -s /etc/passwd "
                        "pw && echo linked\"}},"
                        "{\"tool\": \"view\", \"arguments\": {\"path\": \"pw\"}},"
                        "{\"tool\": \"list\", \"arguments\": {\"path\": \"notes\"}},"
                        "{\"tool\": \"bash\", \"arguments\": \"{broken\"},"
                        "{\"tool\": \"fly\"},"
                        "{\"tool\": \"bash\", \"arguments\": {\"command\": \"exit 3\"}},"
                        "{\"tool\": \"submit\"}"
                        "]");
    struct outcome o;
    run("py-median-even", spec, 0, NULL, &o);
    cr_assert_eq(o.res.status, REC_SUBMITTED, "%s", o.res.message);
    cr_assert_eq(o.n_tools, 13);
    cr_assert_str_eq(o.status[0], "ok", "%s", o.output[0]);
    /* Ambiguous, then unique. */
    cr_assert_str_eq(o.status[1], "error");
    cr_assert_not_null(strstr(o.output[1], "occurs 2 times"), "%s", o.output[1]);
    cr_assert_str_eq(o.status[2], "ok", "%s", o.output[2]);
    /* The positive control: a file inside the workspace reads, with line numbers. */
    cr_assert_str_eq(o.output[3], "     2\ttwo\n     3\t3\n");
    /* Outside the workspace: refused by spelling, and a link out resolves inside. */
    cr_assert_str_eq(o.status[4], "error");
    cr_assert_str_eq(o.status[5], "error");
    cr_assert_not_null(strstr(o.output[5], "outside /workspace"), "%s", o.output[5]);
    cr_assert_not_null(strstr(o.output[6], "linked"), "%s", o.output[6]);
    cr_assert_str_eq(o.status[7], "error", "the link to /etc/passwd read: %s", o.output[7]);
    cr_assert_null(strstr(o.output[7], "root:"), "host data leaked: %s", o.output[7]);
    cr_assert_str_eq(o.output[8], "a.txt  10\n");
    cr_assert_not_null(strstr(o.output[9], "not JSON"), "%s", o.output[9]);
    cr_assert_not_null(strstr(o.output[10], "no tool 'fly'"), "%s", o.output[10]);
    cr_assert_not_null(strstr(o.output[11], "exit status 3"), "%s", o.output[11]);
    cr_assert(o.res.scored, "a scripted episode is scored: %s", o.res.message);
    cr_assert_not_null(strstr(o.artifact_files.data, "notes/a.txt\n"), "%s", o.artifact_files.data);
    outcome_free(&o);
    free(spec);
}

Test(runner, the_turn_budget_ends_the_episode)
{
    char *spec = script("[{\"tool\": \"list\"}, {\"tool\": \"list\"}, {\"tool\": \"list\"},"
                        " {\"tool\": \"list\"}, {\"tool\": \"submit\"}]");
    struct outcome o;
    run("py-median-even", spec, 3, NULL, &o);
    cr_assert_eq(o.res.status, REC_BUDGET, "%s", o.res.message);
    cr_assert_eq(o.n_tools, 3);
    cr_assert(o.res.scored, "what the agent left is still scored");
    cr_assert_lt(o.res.reward, 1.0);
    outcome_free(&o);
    free(spec);
}

Test(runner, exec_agent_runs_in_the_sandbox)
{
    struct outcome o;
    run("py-median-even", "exec:echo made > exec.txt; id -u", 0, NULL, &o);
    cr_assert_eq(o.res.status, REC_SUBMITTED, "%s", o.res.message);
    cr_assert_str_eq(o.tool[0], "bash");
    cr_assert_not_null(strstr(o.output[0], "exit status 0\n0\n"), "uid 0 inside: %s", o.output[0]);
    cr_assert_not_null(strstr(o.artifact_files.data, "exec.txt\n"), "%s", o.artifact_files.data);
    outcome_free(&o);
}

static char *plugin(const char *rel)
{
    const char *dir = getenv("CRUCIBLE_PLUGINS");
    cr_assert(dir && *dir, "CRUCIBLE_PLUGINS is not set: run the tests with `make test`");
    char *spec = NULL;
    cr_assert(asprintf(&spec, "plugin:%s/%s", dir, rel) > 0);
    return spec;
}

Test(runner, the_example_plugin)
{
    char *spec = plugin("examples/agent_plugin.so");
    struct outcome o;
    run("sh-topwords-fix", spec, 0, NULL, &o);
    cr_assert_eq(o.res.status, REC_SUBMITTED, "%s", o.res.message);
    cr_assert_eq(o.res.turns, 3);
    cr_assert_eq(o.n_tools, 2);
    cr_assert_str_eq(o.tool[0], "bash");
    cr_assert_str_eq(o.tool[1], "write_file");
    cr_assert_eq(o.events, 2);
    cr_assert_str_eq(o.event[0], "example.looked");
    cr_assert_str_eq(o.event[1], "example.no_model", "generate without a model says so");
    cr_assert_not_null(strstr(o.artifact_files.data, "PLUGIN_NOTES.txt\n"));
    outcome_free(&o);
    free(spec);

    struct agt_agent *a;
    spec = plugin("tests/plugins/bad_abi.so");
    cr_assert_eq(agt_agent_load(spec, &a), CRU_EUNSUPPORTED);
    cr_assert_not_null(strstr(cru_err_msg(), "ABI version 42"), "%s", cru_err_msg());
    free(spec);
    cr_assert_eq(agt_agent_load("plugin:/nonexistent.so", &a), CRU_EINVAL);
    cr_assert_eq(agt_agent_load("wizard", &a), CRU_EINVAL);
    cr_assert_eq(agt_agent_load("scripted:", &a), CRU_EINVAL);
}

Test(runner, failures_end_the_episode_with_a_complete_trajectory)
{
    /* A plugin that fails its second step: its own doing, so what it left is scored and
     * counts. */
    char *spec = plugin("tests/plugins/failing.so");
    struct outcome o;
    run("sh-topwords-fix", spec, 0, NULL, &o);
    cr_assert_eq(o.res.status, REC_AGENT_ERROR, "%s", o.res.message);
    cr_assert_str_eq(o.end_status, "agent_error");
    cr_assert_not_null(strstr(o.res.message, "step 2 failed"), "%s", o.res.message);
    cr_assert(o.res.scored, "an agent's failure is scored");
    cr_assert(o.has_reward);
    outcome_free(&o);
    free(spec);

    /* An interruption before the first turn. */
    atomic_bool cancel = true;
    run("sh-topwords-fix", "oracle", 0, &cancel, &o);
    cr_assert_eq(o.res.status, REC_CANCELLED, "%s", o.res.message);
    cr_assert_eq(o.n_tools, 0);
    outcome_free(&o);

    /* An image whose setup fails: the episode records the error. */
    char dir[4300], *imgsrc = NULL;
    cr_assert(asprintf(&imgsrc, "%s/images/py-median-even", src()) > 0);
    snprintf(dir, sizeof(dir), "%s/py-median-even", tmpdir); /* the id is the folder name */
    cr_assert_eq(cru_copy_tree(imgsrc, dir, 64 << 20, 0), 0, "%s", cru_err_msg());
    free(imgsrc);
    struct agt_image *img;
    cr_assert_eq(agt_image_load(dir, &img, NULL), 0, "%s", cru_err_msg());
    for (size_t i = 0; i < img->n_setup; i++)
        free(img->setup[i]);
    free(img->setup);
    img->setup = calloc(1, sizeof(char *));
    img->setup[0] = strdup("echo the setup broke >&2; exit 7");
    img->n_setup = 1;
    struct agt_scaffold *sc = scaffold();
    struct agt_agent *agent;
    cr_assert_eq(agt_agent_load("oracle", &agent), 0);
    memset(&o, 0, sizeof(o));
    snprintf(o.path, sizeof(o.path), "%s/broken.traj", tmpdir);
    struct agt_episode_opts eo = {
        .img = img, .sc = sc, .agent = agent, .path = o.path, .episode_id = "b1"
    };
    cr_assert_eq(agt_episode_run(&eo, &o.res), 0, "%s", cru_err_msg());
    cr_assert_eq(o.res.status, REC_ERROR, "the image's failure is the environment's");
    cr_assert_not_null(strstr(o.res.message, "preparing the workspace"), "%s", o.res.message);
    cr_assert_not_null(strstr(o.res.message, "exit status 7"), "%s", o.res.message);
    cr_assert_not(o.res.scored);
    read_back(&o);
    cr_assert_str_eq(o.end_status, "error");
    cr_assert_not(o.has_reward, "an environment's failure has no reward");
    outcome_free(&o);
    agt_agent_free(agent);
    agt_scaffold_free(sc);
    agt_image_free(img);
}

Test(runner, scaffold_version_follows_its_files)
{
    char dir[4300], *from = NULL;
    cr_assert(asprintf(&from, "%s/scaffolds/default", src()) > 0);
    snprintf(dir, sizeof(dir), "%s/scaffold", tmpdir);
    cr_assert_eq(cru_copy_tree(from, dir, 1 << 20, 0), 0);
    free(from);
    struct agt_scaffold *a, *b;
    cr_assert_eq(agt_scaffold_load(dir, &a), 0, "%s", cru_err_msg());
    cr_assert(cru_str_starts_with(a->version, "sha256:"));
    char p[4400];
    snprintf(p, sizeof(p), "%s/system.md", dir);
    cr_assert_eq(cru_file_write_atomic(p, "Be brief.\n", 10, 0644), 0);
    cr_assert_eq(agt_scaffold_load(dir, &b), 0);
    cr_assert_str_neq(a->version, b->version, "an edited prompt is another version");
    cr_assert_str_eq(b->system_prompt, "Be brief.\n");
    agt_scaffold_free(a);
    agt_scaffold_free(b);
    snprintf(p, sizeof(p), "%s/tools.json", dir);
    const char bad[] = "[{\"name\": \"teleport\", \"description\": \"x\", \"parameters\": {}}]";
    cr_assert_eq(cru_file_write_atomic(p, bad, sizeof(bad) - 1, 0644), 0);
    cr_assert_eq(agt_scaffold_load(dir, &a), CRU_EINVAL);
    cr_assert_not_null(strstr(cru_err_msg(), "unknown tool 'teleport'"), "%s", cru_err_msg());
}

Test(runner, a_plugin_crash_or_hang_ends_only_its_episode)
{
    char *spec = plugin("tests/plugins/crashing.so");
    struct outcome o;
    run("sh-topwords-fix", spec, 0, NULL, &o);
    cr_assert_eq(o.res.status, REC_AGENT_ERROR, "%s", o.res.message);
    cr_assert_not_null(strstr(o.res.message, "crashed: Segmentation fault (signal 11) in step 2"),
                       "%s", o.res.message);
    cr_assert(o.res.scored, "a crash dodges no score");
    cr_assert_eq(o.n_tools, 1, "the call before the crash is recorded");
    cr_assert_str_eq(o.output[0], "exit status 0\nbefore the crash\n");
    outcome_free(&o);

    /* The same plugin hanging: the episode's wall-clock budget kills it. */
    struct agt_image *img = image("sh-topwords-fix");
    char *prompt = NULL;
    cr_assert(asprintf(&prompt, "%s CRUCIBLE_TEST_HANG", img->prompt) > 0);
    free(img->prompt);
    img->prompt = prompt;
    img->wall_ms = 3000;
    struct agt_scaffold *sc = scaffold();
    struct agt_agent *agent;
    cr_assert_eq(agt_agent_load(spec, &agent), 0);
    memset(&o, 0, sizeof(o));
    snprintf(o.path, sizeof(o.path), "%s/hang.traj", tmpdir);
    struct agt_episode_opts eo = {
        .img = img, .sc = sc, .agent = agent, .path = o.path, .episode_id = "h1"
    };
    cr_assert_eq(agt_episode_run(&eo, &o.res), 0, "%s", cru_err_msg());
    cr_assert_eq(o.res.status, REC_TIMEOUT, "%s", o.res.message);
    cr_assert_lt(o.res.wall_ms, 20000);
    read_back(&o);
    outcome_free(&o);
    agt_agent_free(agent);
    agt_scaffold_free(sc);
    agt_image_free(img);
    free(spec);
}

/* A stand-in model: 8 tokens (the context's length, then +1, ...) at log-prob -0.5. */
static int fake_generate(void *ctx, const int32_t *context, size_t n_context, uint32_t max_tokens,
                         uint64_t seed, int32_t *ids, float *logprobs, size_t cap, size_t *n_out,
                         const char **finish)
{
    (void)ctx;
    (void)context;
    (void)seed;
    size_t n = max_tokens < 8 ? max_tokens : 8;
    cr_assert_leq(n, cap);
    for (size_t i = 0; i < n; i++) {
        ids[i] = (int32_t)(n_context + i);
        logprobs[i] = -0.5f;
    }
    *n_out = n;
    *finish = n < 8 ? "length" : "stop";
    return 0;
}

Test(runner, plugin_generate_forks_and_the_token_budget)
{
    char *spec = plugin("tests/plugins/generator.so");
    struct agt_image *img = image("sh-topwords-fix");
    struct agt_scaffold *sc = scaffold();
    sc->max_completion_tokens = 20;
    struct agt_agent *agent;
    cr_assert_eq(agt_agent_load(spec, &agent), 0);
    struct agt_generator gen = { .generate = fake_generate,
                                 .model_id = "fake",
                                 .policy_version = 9 };
    struct outcome o;
    memset(&o, 0, sizeof(o));
    snprintf(o.path, sizeof(o.path), "%s/gen.traj", tmpdir);
    struct agt_episode_opts eo = {
        .img = img, .sc = sc, .agent = agent, .gen = &gen, .path = o.path, .episode_id = "g1"
    };
    cr_assert_eq(agt_episode_run(&eo, &o.res), 0, "%s", cru_err_msg());
    cr_assert_eq(o.res.status, REC_BUDGET, "%s", o.res.message);
    cr_assert_not_null(strstr(o.res.message, "20 sampled tokens"), "%s", o.res.message);
    read_back(&o); /* verify checks every model call extends its branch */

    /* 8 + 8 + 4 sampled: the third call is cut to what the budget leaves. */
    struct rec_reader *r;
    struct rec_record rec;
    cr_assert_eq(rec_reader_open(&r, o.path), 0);
    uint64_t calls = 0, sampled = 0, forks = 0;
    while (rec_reader_next(r, &rec) > 0) {
        if (rec.type == REC_CONTEXT_EDIT)
            forks++;
        if (rec.type != REC_MODEL_CALL)
            continue;
        struct rec_array comp;
        uint64_t branch, version;
        cr_assert(rec_get_i32s(rec.map, "completion", &comp));
        cr_assert(rec_get_u64(rec.map, "branch", &branch));
        cr_assert(rec_get_u64(rec.map, "policy_version", &version));
        cr_assert_eq(version, 9);
        cr_assert_eq(branch, calls == 0 ? 0 : 1, "after the fork, calls are on branch 1");
        sampled += comp.n;
        calls++;
    }
    rec_reader_free(r);
    cr_assert_eq(calls, 3);
    cr_assert_eq(sampled, 20);
    cr_assert_eq(forks, 1);
    outcome_free(&o);
    agt_agent_free(agent);
    agt_scaffold_free(sc);
    agt_image_free(img);
    free(spec);
}

Test(runner, the_wall_clock_budget_stops_a_program)
{
    struct agt_image *img = image("py-median-even");
    img->wall_ms = 2000;
    struct agt_scaffold *sc = scaffold();
    struct agt_agent *agent;
    cr_assert_eq(agt_agent_load("exec:sleep 30", &agent), 0);
    struct outcome o;
    memset(&o, 0, sizeof(o));
    snprintf(o.path, sizeof(o.path), "%s/wall.traj", tmpdir);
    struct agt_episode_opts eo = {
        .img = img, .sc = sc, .agent = agent, .path = o.path, .episode_id = "w1"
    };
    cr_assert_eq(agt_episode_run(&eo, &o.res), 0, "%s", cru_err_msg());
    cr_assert_eq(o.res.status, REC_TIMEOUT, "%s", o.res.message);
    cr_assert_lt(o.res.wall_ms, 15000, "the program was not stopped");
    cr_assert(o.res.scored, "what the program left is scored");
    read_back(&o);
    cr_assert_str_eq(o.status[0], "timeout");
    outcome_free(&o);
    agt_agent_free(agent);
    agt_scaffold_free(sc);
    agt_image_free(img);
}

static void *cancel_later(void *arg)
{
    usleep(800 * 1000);
    atomic_store((atomic_bool *)arg, true);
    return NULL;
}

Test(runner, an_interruption_stops_a_running_command)
{
    atomic_bool cancel = false;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, cancel_later, &cancel), 0);
    struct outcome o;
    run("py-median-even", "exec:sleep 60", 0, &cancel, &o);
    pthread_join(th, NULL);
    cr_assert_eq(o.res.status, REC_CANCELLED, "%s", o.res.message);
    cr_assert_lt(o.res.wall_ms, 10000, "the command was not stopped");
    cr_assert_str_eq(o.status[0], "cancelled");
    cr_assert_not(o.res.scored);
    outcome_free(&o);
}

/* A scripted agent that solves a task through the same tools a model would use: the episode
 * scores 1. */
Test(runner, a_scripted_agent_solves_a_task)
{
    char *spec =
        script("[{\"tool\": \"view\", \"arguments\": {\"path\": \"stats.py\", \"start\": 18, "
               "\"end\": 23}},"
               " {\"tool\": \"str_replace\", \"arguments\": {\"path\": \"stats.py\","
               "  \"old\": \"    return s[n // 2]\\n\","
               "  \"new\": \"    mid = n // 2\\n    if n % 2 == 1:\\n        return s[mid]\\n"
               "    return (s[mid - 1] + s[mid]) / 2\\n\"}},"
               " {\"tool\": \"bash\", \"arguments\": {\"command\": \"python3 -c 'import stats; "
               "print(stats.median([4, 1, 3, 2]))'\"}},"
               " {\"tool\": \"submit\"}]");
    struct outcome o;
    run("py-median-even", spec, 0, NULL, &o);
    cr_assert_eq(o.res.status, REC_SUBMITTED, "%s", o.res.message);
    cr_assert_str_eq(o.status[1], "ok", "%s", o.output[1]);
    cr_assert_not_null(strstr(o.output[2], "2.5"), "%s", o.output[2]);
    cr_assert(o.res.scored);
    cr_assert_float_eq(o.res.reward, 1.0, 1e-9, "%s", o.output[1]);
    outcome_free(&o);
    free(spec);
}

/* The image's disk bounds what the agent writes: a write past it fails inside, the observation
 * says the disk is full, and the work is still scored. */
Test(runner, the_disk_limit_holds_and_is_reported)
{
    char *spec = script("[{\"tool\": \"bash\", \"arguments\": {\"command\": "
                        "\"dd if=/dev/zero of=big bs=1M count=48 status=none; echo rc=$?\"}},"
                        "{\"tool\": \"bash\", \"arguments\": {\"command\": \"rm big; "
                        "dd if=/dev/zero of=small bs=1M count=2 status=none; echo rc=$?\"}},"
                        "{\"tool\": \"submit\"}]");
    struct agt_image *img = image("py-median-even");
    img->disk_bytes = 16u << 20;
    struct outcome o;
    run_image(img, spec, 0, NULL, NULL, &o);
    cr_assert_eq(o.res.status, REC_SUBMITTED, "%s", o.res.message);
    cr_expect_null(strstr(o.output[0], "rc=0"), "48 MiB fit a 16 MiB disk: %s", o.output[0]);
    cr_expect_not_null(strstr(o.output[0], "disk is full"), "%s", o.output[0]);
    cr_expect_not_null(strstr(o.output[1], "rc=0"), "space freed is space again: %s", o.output[1]);
    cr_expect_null(strstr(o.output[1], "disk is full"), "%s", o.output[1]);
    cr_expect(o.res.scored, "%s", o.res.message);
    cr_expect_not_null(strstr(o.artifact_files.data, "small\n"), "%s", o.artifact_files.data);
    outcome_free(&o);

    /* Positive control: on the default disk the 48 MiB go through. */
    img->disk_bytes = 0;
    run_image(img, spec, 0, NULL, NULL, &o);
    cr_expect_not_null(strstr(o.output[0], "rc=0"), "%s", o.output[0]);
    outcome_free(&o);
    agt_image_free(img);
    free(spec);
}

/* What is taken out of a sandbox's workspace carries no setuid or setgid bit and no special
 * file, even from a sandbox whose filter and capabilities were off (the positive control:
 * inside, the bits are there). */
Test(runner, the_taken_workspace_carries_no_privilege)
{
    char ws[4200], out[4200], path[4300];
    snprintf(ws, sizeof(ws), "%s/ws", tmpdir);
    snprintf(out, sizeof(out), "%s/out", tmpdir);
    cr_assert_eq(mkdir(ws, 0755), 0);
    cr_assert_eq(chmod(tmpdir, 0711), 0);
    struct sbx_opts o = SBX_OPTS_INIT;
    o.workspace = ws;
    o.disable_layers = SBX_LAYER_SECCOMP | SBX_LAYER_CAPS;
    struct sbx *sb = NULL;
    cr_assert_eq(sbx_new(&sb, &o), 0, "%s", cru_err_msg());
    struct sbx_cmd c = SBX_CMD_INIT;
    c.shell = "cp /bin/true s && chmod 4755 s && cp /bin/true g && chmod 2755 g && mkfifo p && "
              "ln -s /etc/shadow l && stat -c %a s g";
    struct sbx_result r;
    cr_assert_eq(sbx_exec(sb, &c, &r), 0, "%s", cru_err_msg());
    cr_assert_str_eq(cru_buf_cstr(&r.out), "4755\n2755\n", "%s", cru_buf_cstr(&r.err));
    sbx_result_free(&r);
    cr_assert_eq(agt_sandbox_take(sb, out), 0, "%s", cru_err_msg());

    struct stat st;
    snprintf(path, sizeof(path), "%s/s", out);
    cr_assert_eq(lstat(path, &st), 0);
    cr_expect_eq(st.st_mode & 07777, 0755, "taken with mode %o", st.st_mode & 07777);
    snprintf(path, sizeof(path), "%s/g", out);
    cr_assert_eq(lstat(path, &st), 0);
    cr_expect_eq(st.st_mode & 07777, 0755, "taken with mode %o", st.st_mode & 07777);
    snprintf(path, sizeof(path), "%s/p", out);
    cr_expect_neq(lstat(path, &st), 0, "a FIFO is left out");
    snprintf(path, sizeof(path), "%s/l", out);
    cr_assert_eq(lstat(path, &st), 0);
    cr_expect(S_ISLNK(st.st_mode), "a link stays a link, never followed");
    snprintf(path, sizeof(path), "%s/s", ws);
    cr_expect_neq(lstat(path, &st), 0, "the overlay left the lower folder as it was");
}

/* Writes TEXT to DIR/REL, making the folders above it. */
static void put_file(const char *dir, const char *rel, const char *text, mode_t mode)
{
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", dir, rel) > 0);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    cr_assert_eq(cru_mkdir_p(p, 0755), 0, "%s", cru_err_msg());
    *slash = '/';
    cr_assert_eq(cru_file_write_atomic(p, text, strlen(text), mode), 0, "%s", cru_err_msg());
    free(p);
}

/* An image on a "tar:" root holding only the host's /bin/sh and the libraries it loads: the
 * agent's sandbox, the oracle and the checker all run on it. */
static struct agt_image *tar_root_image(void)
{
    char dir[4300], *cmd = NULL;
    snprintf(dir, sizeof(dir), "%s/tar-root", tmpdir);
    cr_assert(
        asprintf(
            &cmd,
            "set -e; r=%s/rfs; mkdir -p $r/usr/bin; cp \"$(readlink -f /bin/sh)\" $r/usr/bin/sh; "
            "for f in $(ldd /bin/sh | grep -o '/[^ ]*'); do mkdir -p \"$r$(dirname $f)\"; "
            "cp -L \"$f\" \"$r$f\"; done; ln -s usr/bin $r/bin; mkdir -p %s; "
            "tar -C $r -czf %s/rootfs.tar.gz .",
            tmpdir, dir, dir) > 0);
    cr_assert_eq(system(cmd), 0, "cannot build the rootfs tarball");
    free(cmd);
    put_file(
        dir, "image.json",
        "{\"id\": \"tar-root\", \"kind\": \"office\", \"title\": \"Write the answer\",\n"
        " \"prompt\": \"Write the answer to answer.txt.\", \"rootfs\": \"tar:rootfs.tar.gz\",\n"
        " \"reward\": {\"checks\": [{\"kind\": \"command\", \"command\": \"read x < "
        "/workspace/answer.txt && read y < /hidden/expected && [ \\\"$x\\\" = \\\"$y\\\" "
        "]\"}]}}\n",
        0644);
    put_file(dir, "workspace/README", "the answer goes to answer.txt\n", 0644);
    put_file(dir, "hidden/expected", "42\n", 0644);
    put_file(dir, "solution/solve.sh", "echo 42 > /workspace/answer.txt\n", 0755);
    struct agt_image *img;
    cr_assert_eq(agt_image_load(dir, &img, NULL), 0, "%s", cru_err_msg());
    return img;
}

/* A task on a "tar:" root runs end to end: the unpacked root must be reachable by the
 * sandbox's unprivileged user, the oracle scores 1 and an agent that does nothing less. */
Test(runner, a_task_on_a_tar_root)
{
    /* The test's folder stands for any traversable place a cache may live. */
    cr_assert_eq(chmod(tmpdir, 0755), 0);
    struct agt_image *img = tar_root_image();
    char cache[4200];
    snprintf(cache, sizeof(cache), "%s/cache", tmpdir);
    struct agt_check_opts check = { .cache = cache };
    struct outcome o;
    run_image(img, "oracle", 0, NULL, &check, &o);
    cr_assert_eq(o.res.status, REC_SUBMITTED, "%s", o.res.message);
    cr_assert(o.res.scored, "%s", o.res.message);
    cr_assert_float_eq(o.res.reward, 1.0, 1e-9, "%s", o.output[0]);
    outcome_free(&o);

    char *spec = script("[{\"tool\": \"submit\"}]");
    run_image(img, spec, 0, NULL, &check, &o);
    cr_assert_eq(o.res.status, REC_SUBMITTED, "%s", o.res.message);
    cr_assert(o.res.scored, "%s", o.res.message);
    cr_assert_lt(o.res.reward, 1.0);
    outcome_free(&o);
    free(spec);
    agt_image_free(img);
}

/* ---- dodging the score: an agent's failure to be scored scores 0 ---- */

/* The calls that solve py-median-even, as a scripted agent makes them. */
#define SOLVE_MEDIAN                                                                               \
    "{\"tool\": \"str_replace\", \"arguments\": {\"path\": \"stats.py\","                          \
    "  \"old\": \"    return s[n // 2]\\n\","                                                      \
    "  \"new\": \"    mid = n // 2\\n    if n % 2 == 1:\\n        return s[mid]\\n"                \
    "    return (s[mid - 1] + s[mid]) / 2\\n\"}}"

/* A scripted agent that solves py-median-even, runs COMMAND, and submits. */
static char *solve_then(const char *command)
{
    char *json = NULL;
    cr_assert(asprintf(&json,
                       "[%s, {\"tool\": \"bash\", \"arguments\": {\"command\": \"%s\"}},"
                       " {\"tool\": \"submit\"}]",
                       SOLVE_MEDIAN, command) > 0);
    char *spec = script(json);
    free(json);
    return spec;
}

/* An unscorable episode as every reader must see it: status agent_error, a reward record of 0
 * with the reason, the reason in the end message. */
static void assert_scored_zero(const struct outcome *o, const char *why)
{
    cr_assert_eq(o->res.status, REC_AGENT_ERROR, "%s", o->res.message);
    cr_assert_str_eq(o->end_status, "agent_error");
    cr_assert(o->res.scored && o->res.unscorable, "%s", o->res.message);
    cr_assert_float_eq(o->res.reward, 0.0, 1e-12);
    cr_assert(o->has_reward, "no reward record: the episode would drop out of the means");
    cr_assert_float_eq(o->reward, 0.0, 1e-12);
    cr_assert(cru_str_starts_with(o->res.message, "unscorable: "), "%s", o->res.message);
    cr_assert_not_null(strstr(o->res.message, why), "%s", o->res.message);
    cr_assert_not_null(strstr(o->unscorable, why), "breakdown: %s", o->unscorable);
}

/* A folder chain deeper than the artifact may be (the copy out of the sandbox stops at 256
 * levels) once made the episode an error without a reward. It scores 0 and counts; the same
 * work with a shallow chain scores 1 (the positive control: the 0 is the chain's). */
Test(runner, a_workspace_too_deep_to_take_scores_zero)
{
    struct agt_image *img = image("py-median-even");
    char *deep = solve_then("mkdir -p $(printf 'd/%.0s' $(seq 300)) && echo made");
    struct outcome o;
    run_image(img, deep, 0, NULL, NULL, &o);
    cr_assert_not_null(strstr(o.output[1], "made"), "%s", o.output[1]);
    assert_scored_zero(&o, "nested more than 256 deep");
    outcome_free(&o);

    /* Folder names that are not UTF-8 reach the reason (and the breakdown, which is JSON)
     * as text: they cannot turn the 0 into an error. */
    char *bytes = solve_then("mkdir -p $(printf '\\\\377/%.0s' $(seq 300)) && echo made");
    run_image(img, bytes, 0, NULL, NULL, &o);
    cr_assert_not_null(strstr(o.output[1], "made"), "%s", o.output[1]);
    assert_scored_zero(&o, "nested more than 256 deep");
    cr_assert_not_null(strstr(o.res.message, "\xef\xbf\xbd/"), "%s", o.res.message);
    outcome_free(&o);
    free(bytes);

    char *shallow = solve_then("mkdir -p $(printf 'd/%.0s' $(seq 20)) && echo made");
    run_image(img, shallow, 0, NULL, NULL, &o);
    cr_assert_eq(o.res.status, REC_SUBMITTED, "%s", o.res.message);
    cr_assert_float_eq(o.res.reward, 1.0, 1e-9, "%s", o.res.message);
    outcome_free(&o);
    free(deep);
    free(shallow);
    agt_image_free(img);
}

/* More files than the artifact may hold (100,000 by default; 40 here, so that the test is
 * quick) make the artifact unscorable: 0, counted. With the default the same work scores 1. */
Test(runner, a_workspace_of_too_many_files_scores_zero)
{
    struct agt_image *img = image("py-median-even");
    char *spec = solve_then("mkdir many && cd many && touch $(seq 60) && echo made");
    struct outcome o;
    run_image_limited(img, spec, 0, NULL, NULL, 40, &o);
    cr_assert_not_null(strstr(o.output[1], "made"), "%s", o.output[1]);
    assert_scored_zero(&o, "listing the workspace: more than 40 files");
    cr_assert_not(o.artifact, "no artifact record for what could not be listed");
    outcome_free(&o);

    run_image_limited(img, spec, 0, NULL, NULL, 0, &o);
    cr_assert_eq(o.res.status, REC_SUBMITTED, "%s", o.res.message);
    cr_assert_float_eq(o.res.reward, 1.0, 1e-9, "%s", o.res.message);
    cr_assert_not_null(strstr(o.artifact_files.data, "many/60\n"), "%s", o.artifact_files.data);
    outcome_free(&o);
    free(spec);
    agt_image_free(img);
}

/* A bash call longer than the sandbox takes (256 KiB) once ended the episode. It is an error
 * observation for that call, and the episode goes on to score 1; a call under the limit runs
 * (the positive control). */
Test(runner, a_command_over_the_limit_is_an_observation)
{
    size_t big = 300 << 10, small = 100 << 10;
    char *json = malloc(big + small + 2048), *xs = malloc(big + 1);
    cr_assert(json && xs);
    memset(xs, 'x', big);
    xs[big] = '\0';
    snprintf(json, big + small + 2048,
             "[{\"tool\": \"bash\", \"arguments\": {\"command\": \": %s\"}},"
             " {\"tool\": \"bash\", \"arguments\": {\"command\": \": %.*s; echo small ran\"}},"
             " {\"tool\": \"bash\", \"arguments\": {\"command\": \"echo after\"}}, %s,"
             " {\"tool\": \"submit\"}]",
             xs, (int)small, xs, SOLVE_MEDIAN);
    char *spec = script(json);
    struct outcome o;
    run("py-median-even", spec, 0, NULL, &o);
    cr_assert_eq(o.res.status, REC_SUBMITTED, "%s", o.res.message);
    cr_assert_eq(o.n_tools, 5);
    cr_assert_str_eq(o.status[0], "error");
    cr_assert(cru_str_starts_with(o.output[0], "error: the command was not run: "), "%s",
              o.output[0]);
    cr_assert_not_null(strstr(o.output[0], "over the limit"), "%s", o.output[0]);
    cr_assert_str_eq(o.status[1], "ok", "%s", o.output[1]);
    cr_assert_not_null(strstr(o.output[1], "small ran"), "%s", o.output[1]);
    cr_assert_not_null(strstr(o.output[2], "after"), "%s", o.output[2]);
    cr_assert_float_eq(o.res.reward, 1.0, 1e-9, "%s", o.res.message);
    outcome_free(&o);
    free(spec);
    free(json);
    free(xs);
}

/* Arguments over the tools' limit (16 MiB, more than a script may hold: called directly here)
 * are refused like any bad call, and the record keeps their start and their size, so that
 * writing it cannot fail either. */
Test(runner, arguments_over_the_limit_are_refused_and_cut_in_the_record)
{
    struct agt_scaffold *sc = scaffold();
    char path[4200];
    snprintf(path, sizeof(path), "%s/args.traj", tmpdir);
    struct rec_file *f;
    struct rec_file_opts fo = REC_FILE_OPTS_INIT;
    fo.mode = REC_TRUNCATE;
    cr_assert_eq(rec_file_open(&f, path, &fo), 0, "%s", cru_err_msg());
    struct rec_episode *ep;
    struct rec_episode_info info = { .episode_id = "a1", .task_id = "t" };
    cr_assert_eq(rec_episode_begin(&ep, f, &info), 0, "%s", cru_err_msg());
    struct agt_tools t = { .sc = sc, .ep = ep };
    size_t n = ((size_t)16 << 20) + 100;
    char *args = malloc(n + 1);
    cr_assert_not_null(args);
    memset(args, 'x', n);
    memcpy(args, "{\"command\": \": ", 15);
    memcpy(args + n - 2, "\"}", 3);
    struct cru_buf obs = CRU_BUF_INIT;
    cr_assert_eq(agt_tool_run(&t, "c1", "bash", args, &obs), 0, "%s", cru_err_msg());
    cr_assert(cru_str_starts_with(cru_buf_cstr(&obs), "error: the arguments are 16777316 bytes"),
              "%s", cru_buf_cstr(&obs));
    struct rec_end end = { REC_SUBMITTED, NULL };
    cr_assert_eq(rec_episode_end(ep, &end), 0, "%s", cru_err_msg());
    rec_episode_free(ep);
    cr_assert_eq(rec_file_close(f), 0);

    struct rec_reader *r;
    struct rec_record rec;
    bool seen = false;
    cr_assert_eq(rec_reader_open(&r, path), 0);
    while (rec_reader_next(r, &rec) > 0) {
        if (rec.type != REC_TOOL)
            continue;
        const char *s;
        size_t len;
        uint64_t bytes;
        cr_assert(rec_get_str(rec.map, "arguments", &s, &len));
        cr_assert_eq(len, 4096);
        cr_assert(rec_get_u64(rec.map, "arguments_bytes", &bytes));
        cr_assert_eq(bytes, n);
        cr_assert(rec_get_str(rec.map, "status", &s, &len));
        cr_assert_eq(len, 5);
        seen = true;
    }
    rec_reader_free(r);
    cr_assert(seen);
    cru_buf_free(&obs);
    free(args);
    agt_scaffold_free(sc);
}

/* Filling /tmp (the sandbox's disk, whose pages are its memory) past the memory limit once let
 * the OOM killer end the episode in an error. The command is killed or the sandbox spent; the
 * episode ends as a submission or a spent budget, and is scored either way. */
Test(runner, filling_memory_dodges_no_score)
{
    struct agt_image *img = image("py-median-even");
    img->memory_bytes = 96u << 20;
    img->disk_bytes = 512u << 20;
    char *spec = script("[{\"tool\": \"bash\", \"arguments\": {\"command\": "
                        "\"head -c 400M /dev/zero > /tmp/fill; echo rc=$?\"}},"
                        "{\"tool\": \"bash\", \"arguments\": {\"command\": \"rm -f /tmp/fill\"}},"
                        "{\"tool\": \"submit\"}]");
    struct outcome o;
    run_image(img, spec, 0, NULL, NULL, &o);
    cr_assert(o.res.status == REC_SUBMITTED || o.res.status == REC_BUDGET, "%s: %s",
              rec_status_name(o.res.status), o.res.message);
    cr_assert(o.res.scored, "%s", o.res.message);
    cr_assert(o.has_reward);
    outcome_free(&o);
    free(spec);
    agt_image_free(img);
}
