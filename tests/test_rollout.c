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
