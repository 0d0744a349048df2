/* Tests for agent/rollout: the windowed-FIFO rule (strict FIFO, greedy, and the bound on how
 * far out of order a release may be, over random completion orders), and the scheduler with a
 * stand-in episode runner: the index it writes, the summary, an interruption and the resume
 * that finishes the run without running an episode twice, and a torn index line.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/rollout.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"

/* Completes episodes in ORDER one at a time; returns the release order. */
static void simulate(const size_t *completion, size_t n, size_t w, size_t *released_order,
                     uint64_t *max_distance)
{
    bool done[64] = { 0 }, rel[64] = { 0 };
    size_t head = 0, got = 0, order[64], dist[64];
    *max_distance = 0;
    for (size_t i = 0; i < n; i++) {
        done[completion[i]] = true;
        size_t k = agt_window_release(done, rel, n, w, &head, order, dist, max_distance);
        for (size_t j = 0; j < k; j++) {
            cr_assert_lt(dist[j], w, "a release %zu places past the head, window %zu", dist[j], w);
            released_order[got++] = order[j];
        }
    }
    cr_assert_eq(got, n, "every episode is released in the end");
    cr_assert_eq(head, n);
}

Test(rollout, strict_fifo_and_greedy)
{
    const size_t completion[] = { 3, 1, 0, 2, 5, 4 };
    size_t out[6];
    uint64_t dist;
    simulate(completion, 6, 1, out, &dist);
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(out[i], i, "a window of 1 is strict FIFO");
    cr_assert_eq(dist, 0);
    simulate(completion, 6, 6, out, &dist);
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(out[i], completion[i], "a window of N releases in completion order");
    cr_assert_eq(dist, 3);
}

Test(rollout, window_bounds_the_drift)
{
    /* Episode 0 finishes last: with a window of 3 only 1 and 2 may pass it; 3.. wait. */
    const size_t completion[] = { 1, 2, 3, 4, 5, 0 };
    size_t out[6];
    uint64_t dist;
    simulate(completion, 6, 3, out, &dist);
    const size_t want[] = { 1, 2, 0, 3, 4, 5 };
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(out[i], want[i], "release %zu", i);
    cr_assert_eq(dist, 2);

    /* Random completion orders: the bound always holds (asserted in simulate). */
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        size_t n = 1 + (size_t)(rand_r(&seed) % 40), perm[64];
        for (size_t i = 0; i < n; i++)
            perm[i] = i;
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = (size_t)rand_r(&seed) % (i + 1), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        size_t w = 1 + (size_t)rand_r(&seed) % n, order[64];
        simulate(perm, n, w, order, &dist);
    }
}

/* ---- the scheduler with a stand-in runner ---- */

struct fake {
    atomic_int runs;
    atomic_bool cancel;
    int cancel_after; /* set the cancel flag once this many episodes have run (0: never) */
    char seen[64][128];
    atomic_int n_seen;
};

static int fake_run(void *ctx, const struct agt_episode_opts *o, struct agt_episode_result *r)
{
    struct fake *f = ctx;
    memset(r, 0, sizeof(*r));
    int i = atomic_fetch_add(&f->n_seen, 1);
    if (i < 64)
        snprintf(f->seen[i], sizeof(f->seen[i]), "%s", o->episode_id);
    /* Later episodes of the list finish sooner: releases go out of order. */
    usleep((useconds_t)(1000 + (o->seed % 3) * 4000));
    int n = atomic_fetch_add(&f->runs, 1) + 1;
    if (f->cancel_after && n >= f->cancel_after)
        atomic_store(&f->cancel, true);
    /* The trajectory must exist before release: write a marker file where it goes. */
    cru_file_write_atomic(o->path, "x", 1, 0644);
    r->status = REC_SUBMITTED;
    r->scored = true;
    r->reward = (o->seed % 2 == 0) ? 1.0 : 0.0; /* repeat 0, 2 pass; 1, 3 fail */
    r->turns = 1;
    return 0;
}

static struct agt_image *fake_image(const char *id)
{
    struct agt_image *img = calloc(1, sizeof(*img));
    img->id = strdup(id);
    return img;
}

static char outdir[] = "/tmp/crucible-test-rollout-XXXXXX";

static void setup(void)
{
    cr_assert_not_null(mkdtemp(outdir));
}

static void teardown(void)
{
    cru_remove_tree(outdir);
}

static size_t index_lines(struct cru_buf *b)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/index.jsonl", outdir);
    cru_buf_reset(b);
    cr_assert_eq(cru_file_read(path, 1 << 20, b), 0);
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++)
        n += b->data[i] == '\n';
    return n;
}

static struct agt_rollout_opts opts_for(struct fake *f, const struct agt_image **imgs,
                                        struct agt_agent *agent)
{
    struct agt_rollout_opts o = { 0 };
    o.images = imgs;
    o.n_images = 3;
    o.agent = agent;
    o.out = outdir;
    o.jobs = 3;
    o.repeat = 4;
    o.window = 0.25;
    o.cancel = &f->cancel;
    o.run_episode = fake_run;
    o.run_ctx = f;
    return o;
}

Test(rollout, run_interrupt_and_resume, .init = setup, .fini = teardown, .timeout = 60)
{
    struct agt_image *mine[] = { fake_image("alpha"), fake_image("beta"), fake_image("gamma") };
    const struct agt_image *imgs[] = { mine[0], mine[1], mine[2] };
    struct agt_agent *agent;
    cr_assert_eq(agt_agent_load("oracle", &agent), 0);
    struct fake f = { .cancel_after = 5 };
    struct agt_rollout_opts o = opts_for(&f, imgs, agent);
    struct agt_rollout_summary s;

    cr_assert_eq(agt_rollout(&o, &s), 0, "%s", cru_err_msg());
    cr_assert(s.interrupted);
    cr_assert_lt(s.done, 12);
    cr_assert_eq(s.window, 3, "ceil(0.25 * 12)");
    struct cru_buf b = CRU_BUF_INIT;
    size_t first = index_lines(&b);
    cr_assert_eq(first, s.done);
    int ran_first = atomic_load(&f.runs);
    agt_rollout_summary_free(&s);

    /* A crash while a line was written: a torn line at the end, cut off on resume. */
    char path[128];
    snprintf(path, sizeof(path), "%s/index.jsonl", outdir);
    FILE *fp = fopen(path, "a");
    fputs("{\"release\": 99, \"epis", fp);
    fclose(fp);

    f.cancel_after = 0;
    atomic_store(&f.cancel, false);
    cr_assert_eq(agt_rollout(&o, &s), 0, "%s", cru_err_msg());
    cr_assert_not(s.interrupted);
    cr_assert_eq(s.done, 12);
    cr_assert_eq(s.resumed, first);
    cr_assert_leq(s.max_distance, 2, "the window of 3 bounds every release");
    cr_assert_eq(index_lines(&b), 12, "one whole line per episode: %s", b.data);

    /* Each episode ran once, except those cut short by the interruption (run again). */
    int total = atomic_load(&f.runs);
    cr_assert_leq(total - ran_first, 12 - (int)first + 3);
    for (int i = 0; i < 12; i++) {
        char want[64];
        snprintf(want, sizeof(want), "\"episode\":\"%s-r%d\"",
                 i < 4   ? "alpha"
                 : i < 8 ? "beta"
                         : "gamma",
                 i % 4);
        char *hit = strstr(b.data, want);
        cr_assert_not_null(hit, "%s is not in the index", want);
        cr_assert_null(strstr(hit + 1, want), "%s is in the index twice", want);
    }
    /* The summary: repeats 0 and 2 pass, 1 and 3 fail. */
    json_t *j = s.json;
    cr_assert_float_eq(json_number_value(json_object_get(j, "mean_reward")), 0.5, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(j, "pass@1")), 0.5, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(j, "pass@k")), 1.0, 1e-9);
    cr_assert_eq(json_integer_value(json_object_get(j, "episodes")), 12);
    char sum_path[128];
    snprintf(sum_path, sizeof(sum_path), "%s/summary.json", outdir);
    cr_assert_eq(access(sum_path, R_OK), 0, "summary.json is written");
    agt_rollout_summary_free(&s);

    /* Again: nothing left to run. */
    int before = atomic_load(&f.runs);
    cr_assert_eq(agt_rollout(&o, &s), 0);
    cr_assert_eq(atomic_load(&f.runs), before);
    cr_assert_eq(s.resumed, 12);
    agt_rollout_summary_free(&s);

    cru_buf_free(&b);
    agt_agent_free(agent);
    for (int i = 0; i < 3; i++) {
        free(mine[i]->id);
        free(mine[i]);
    }
}

Test(rollout, shards_split_the_run, .init = setup, .fini = teardown, .timeout = 60)
{
    struct agt_image *mine[] = { fake_image("alpha"), fake_image("beta"), fake_image("gamma") };
    const struct agt_image *imgs[] = { mine[0], mine[1], mine[2] };
    struct agt_agent *agent;
    cr_assert_eq(agt_agent_load("oracle", &agent), 0);
    struct fake f = { 0 };
    struct agt_rollout_opts o = opts_for(&f, imgs, agent);
    struct agt_rollout_summary s;
    size_t total = 0;
    for (unsigned i = 0; i < 5; i++) {
        o.shard = i;
        o.shards = 5;
        cr_assert_eq(agt_rollout(&o, &s), 0, "%s", cru_err_msg());
        total += s.episodes;
        agt_rollout_summary_free(&s);
    }
    cr_assert_eq(total, 12, "five shards cover the twelve episodes once");
    cr_assert_eq(atomic_load(&f.runs), 12);
    o.shard = 5;
    cr_assert_eq(agt_rollout(&o, &s), CRU_EINVAL, "shard 5 of 5 does not exist");
    agt_agent_free(agent);
    for (int i = 0; i < 3; i++) {
        free(mine[i]->id);
        free(mine[i]);
    }
}

/* ---- the environment's failures and the agent's ---- */

/* A stand-in runner whose outcome depends on the image:
 *   alpha    repeat 0 scores 1, repeat 1 scores 0 (an ordinary group);
 *   flaky    the environment fails the first attempt (status error), the next scores 1;
 *   lost     the trajectory cannot be written on the first attempt, the next scores 1;
 *   broken   the environment fails every attempt;
 *   dodger   the agent's own failure: repeat 0 unscorable (reward 0 recorded), repeat 1 an
 *            agent_error with no reward at all (which must count as 0 all the same). */
struct outcomes {
    pthread_mutex_t lock;
    atomic_bool *cancel; /* interrupt: set on its first attempt */
    char id[16][64];
    int attempts[16];
    int n;
};

static int attempt_of(struct outcomes *f, const char *id)
{
    pthread_mutex_lock(&f->lock);
    int i = 0;
    while (i < f->n && strcmp(f->id[i], id) != 0)
        i++;
    cr_assert_lt(i, 16);
    if (i == f->n)
        snprintf(f->id[f->n++], sizeof(f->id[0]), "%s", id);
    int a = ++f->attempts[i];
    pthread_mutex_unlock(&f->lock);
    return a;
}

static int attempts_of(struct outcomes *f, const char *id)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->id[i], id) == 0)
            return f->attempts[i];
    return 0;
}

static int outcome_run(void *ctx, const struct agt_episode_opts *o, struct agt_episode_result *r)
{
    struct outcomes *f = ctx;
    memset(r, 0, sizeof(*r));
    int attempt = attempt_of(f, o->episode_id);
    const char *img = o->img->id;
    if (strcmp(img, "lost") == 0 && attempt == 1)
        return cru_err_set(CRU_EIO, "episode %s: the disk went away", o->episode_id);
    cru_file_write_atomic(o->path, "x", 1, 0644);
    r->turns = 1;
    r->status = REC_SUBMITTED;
    r->scored = true;
    r->reward = 1.0;
    if (strcmp(img, "interrupt") == 0 && attempt == 1) {
        atomic_store(f->cancel, true);
        r->status = REC_ERROR;
        r->scored = false;
    } else if (strcmp(img, "alpha") == 0) {
        r->reward = o->seed % 2 == 0 ? 1.0 : 0.0;
    } else if ((strcmp(img, "flaky") == 0 && attempt == 1) || strcmp(img, "broken") == 0) {
        r->status = REC_ERROR;
        r->scored = false;
        snprintf(r->message, sizeof(r->message), "creating the sandbox: no slot");
    } else if (strcmp(img, "dodger") == 0) {
        r->status = REC_AGENT_ERROR;
        r->reward = 0;
        r->scored = o->seed % 2 == 0;
        r->unscorable = r->scored;
        snprintf(r->message, sizeof(r->message), "unscorable: more than 100000 files");
    }
    return 0;
}

/* The index line of episode ID in B (whole lines), into LINE. */
static void line_of(const struct cru_buf *b, const char *id, char *line, size_t cap)
{
    char want[96];
    snprintf(want, sizeof(want), "\"episode\":\"%s\"", id);
    const char *hit = strstr(b->data, want);
    cr_assert_not_null(hit, "%s is not in the index", want);
    const char *start = hit, *end = strchr(hit, '\n');
    while (start > b->data && start[-1] != '\n')
        start--;
    cr_assert_not_null(end);
    snprintf(line, cap, "%.*s", (int)(end - start), start);
}

static json_t *image_summary(const json_t *j, const char *id)
{
    json_t *img = json_object_get(json_object_get(j, "images"), id);
    cr_assert_not_null(img, "no summary for image %s", id);
    return img;
}

/* An episode the environment failed is retried and released once, as its last attempt; one
 * it fails every time is counted as an environment error and left out of the means and pass@k;
 * an episode the agent failed is not retried and counts 0 in all of them. With no retry (the
 * positive control) the flaky episodes fall out of the means too. */
Test(rollout, environment_errors_are_retried_and_agent_errors_count, .init = setup,
     .fini = teardown, .timeout = 60)
{
    static const char *const ids[] = { "alpha", "flaky", "lost", "broken", "dodger" };
    struct agt_image *mine[5];
    const struct agt_image *imgs[5];
    for (int i = 0; i < 5; i++)
        imgs[i] = mine[i] = fake_image(ids[i]);
    struct agt_agent *agent;
    cr_assert_eq(agt_agent_load("oracle", &agent), 0);
    struct outcomes f = { .lock = PTHREAD_MUTEX_INITIALIZER };
    struct agt_rollout_opts o = { 0 };
    o.images = imgs;
    o.n_images = 5;
    o.agent = agent;
    o.out = outdir;
    o.jobs = 2;
    o.repeat = 2;
    o.run_episode = outcome_run;
    o.run_ctx = &f;
    struct agt_rollout_summary s;
    cr_assert_eq(agt_rollout(&o, &s), 0, "%s", cru_err_msg());

    /* Attempts: 3 by default for what the environment breaks, 1 otherwise. */
    cr_assert_eq(attempts_of(&f, "alpha-r0"), 1);
    cr_assert_eq(attempts_of(&f, "flaky-r0"), 2);
    cr_assert_eq(attempts_of(&f, "flaky-r1"), 2);
    cr_assert_eq(attempts_of(&f, "lost-r1"), 2);
    cr_assert_eq(attempts_of(&f, "broken-r0"), 3);
    cr_assert_eq(attempts_of(&f, "dodger-r0"), 1, "an agent's failure is not retried");
    cr_assert_eq(attempts_of(&f, "dodger-r1"), 1);

    /* One line per episode, the last attempt's. */
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(index_lines(&b), 10, "%s", b.data);
    char line[1024];
    line_of(&b, "flaky-r0", line, sizeof(line));
    cr_assert_not_null(strstr(line, "\"status\":\"submitted\""), "%s", line);
    cr_assert_not_null(strstr(line, "\"attempts\":2"), "%s", line);
    line_of(&b, "broken-r1", line, sizeof(line));
    cr_assert_not_null(strstr(line, "\"status\":\"error\""), "%s", line);
    cr_assert_not_null(strstr(line, "\"attempts\":3"), "%s", line);
    line_of(&b, "dodger-r0", line, sizeof(line));
    cr_assert_not_null(strstr(line, "\"status\":\"agent_error\""), "%s", line);
    cr_assert_not_null(strstr(line, "\"reward\":0.0"), "%s", line);

    /* Counted: alpha 1 and 0, flaky 1 and 1, lost 1 and 1, dodger 0 and 0: 5 of 8. */
    json_t *j = s.json;
    cr_assert_eq(s.environment_errors, 2);
    cr_assert_eq(json_integer_value(json_object_get(j, "environment_errors")), 2);
    cr_assert_eq(json_integer_value(json_object_get(j, "scored")), 8);
    cr_assert_eq(json_integer_value(json_object_get(j, "retries")), 2 + 2 + 4);
    cr_assert_float_eq(s.mean_reward, 5.0 / 8, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(j, "mean_reward")), 5.0 / 8, 1e-9);
    /* pass@1 per image: alpha 0.5, flaky 1, lost 1, dodger 0; broken has no sample. */
    cr_assert_float_eq(json_number_value(json_object_get(j, "pass@1")), 2.5 / 4, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(j, "pass@k")), 3.0 / 4, 1e-9);
    json_t *img = image_summary(j, "broken");
    cr_assert_eq(json_integer_value(json_object_get(img, "environment_errors")), 2);
    cr_assert(json_is_null(json_object_get(img, "mean_reward")));
    img = image_summary(j, "dodger");
    cr_assert_float_eq(json_number_value(json_object_get(img, "mean_reward")), 0.0, 1e-12);
    cr_assert_eq(json_integer_value(json_object_get(img, "environment_errors")), 0);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "statuses"), "error")), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "statuses"), "agent_error")),
                 2);
    agt_rollout_summary_free(&s);

    /* Resumed, the released environment errors stay released: nothing runs again. */
    int before = attempts_of(&f, "broken-r0");
    cr_assert_eq(agt_rollout(&o, &s), 0, "%s", cru_err_msg());
    cr_assert_eq(attempts_of(&f, "broken-r0"), before);
    cr_assert_eq(s.environment_errors, 2);
    cr_assert_eq(s.retries, 8, "the index keeps the attempts");
    cr_assert_float_eq(s.mean_reward, 5.0 / 8, 1e-9);
    agt_rollout_summary_free(&s);

    /* The positive control: without retries the flaky and lost episodes are environment errors
     * too, and the mean is over alpha and dodger alone. */
    cru_remove_tree(outdir);
    cr_assert_eq(mkdir(outdir, 0700), 0);
    struct outcomes g = { .lock = PTHREAD_MUTEX_INITIALIZER };
    o.run_ctx = &g;
    o.max_attempts = 1;
    cr_assert_eq(agt_rollout(&o, &s), 0, "%s", cru_err_msg());
    cr_assert_eq(attempts_of(&g, "broken-r0"), 1);
    cr_assert_eq(s.environment_errors, 6);
    cr_assert_eq(s.retries, 0);
    cr_assert_float_eq(s.mean_reward, 0.25, 1e-9);
    agt_rollout_summary_free(&s);

    cru_buf_free(&b);
    agt_agent_free(agent);
    for (int i = 0; i < 5; i++) {
        free(mine[i]->id);
        free(mine[i]);
    }
}

/* An interruption that comes between an environment's failure and its retry releases nothing:
 * the episode is not done, and the resumed run runs it (and releases it) then. */
Test(rollout, an_interrupted_retry_is_not_released, .init = setup, .fini = teardown, .timeout = 60)
{
    struct agt_image *img = fake_image("interrupt");
    const struct agt_image *imgs[] = { img };
    struct agt_agent *agent;
    cr_assert_eq(agt_agent_load("oracle", &agent), 0);
    atomic_bool cancel = false;
    struct outcomes f = { .lock = PTHREAD_MUTEX_INITIALIZER, .cancel = &cancel };
    struct agt_rollout_opts o = { 0 };
    o.images = imgs;
    o.n_images = 1;
    o.agent = agent;
    o.out = outdir;
    o.cancel = &cancel;
    o.run_episode = outcome_run;
    o.run_ctx = &f;
    struct agt_rollout_summary s;
    cr_assert_eq(agt_rollout(&o, &s), 0, "%s", cru_err_msg());
    cr_assert(s.interrupted);
    cr_assert_eq(s.done, 0);
    cr_assert_eq(attempts_of(&f, "interrupt-r0"), 1);
    agt_rollout_summary_free(&s);
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(index_lines(&b), 0, "%s", b.data);

    atomic_store(&cancel, false);
    cr_assert_eq(agt_rollout(&o, &s), 0, "%s", cru_err_msg());
    cr_assert_eq(s.done, 1);
    cr_assert_eq(s.environment_errors, 0);
    cr_assert_float_eq(s.mean_reward, 1.0, 1e-9);
    cr_assert_eq(index_lines(&b), 1, "%s", b.data);
    cr_assert_not_null(strstr(b.data, "\"status\":\"submitted\""), "%s", b.data);
    agt_rollout_summary_free(&s);
    cru_buf_free(&b);
    agt_agent_free(agent);
    free(img->id);
    free(img);
}
