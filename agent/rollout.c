/* agent/rollout: the scheduler behind `crucible run`: worker threads start episodes in order,
 * a windowed-FIFO rule decides which finished ones are released, released ones are appended to
 * the run's index, and the summary is computed from the index's view of the run (so a resumed
 * run reports on all its episodes). Running one episode is agent/runner's.
 */
#include "agent/rollout.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/str.h"
#include "agent/model_agent.h"

#define MAX_EPISODES   1000000
#define MAX_JOBS       1024
#define MAX_ATTEMPTS   3 /* the default: the first try and two retries */
#define INDEX_MAX      ((size_t)1 << 30)
#define INDEX_LINE_MAX 65536

size_t agt_window_release(const bool *done, bool *released, size_t n, size_t w, size_t *head,
                          size_t *order, size_t *distance, uint64_t *max_distance)
{
    size_t count = 0;
    bool moved = true;
    while (moved) {
        moved = false;
        for (size_t t = *head; t < n && t < *head + w; t++) {
            if (!done[t] || released[t])
                continue;
            released[t] = true;
            if (order)
                order[count] = t;
            if (distance)
                distance[count] = t - *head;
            count++;
            if (t - *head > *max_distance)
                *max_distance = t - *head;
        }
        while (*head < n && released[*head]) {
            (*head)++;
            moved = true;
        }
    }
    return count;
}

struct item {
    size_t image;
    unsigned repeat;
    size_t t; /* the episode's number in the whole run (before sharding) */
    char id[128];
    char group[96];
    /* Known once done. */
    bool ok; /* the trajectory was written */
    bool scored;
    double reward;
    char status[16];
    char error[sizeof(((struct agt_episode_result *)0)->message)]; /* the end message, whole */
    uint64_t turns, wall_ms;
    unsigned attempts; /* runs of the episode, the released one included */
};

/* Whether the environment failed the episode: no reward, not the agent's doing (runner.h).
 * Such an episode is retried, and left out of every mean once released. */
static bool env_failed(const struct item *it)
{
    return !it->ok || strcmp(it->status, rec_status_name(REC_ERROR)) == 0;
}

/* Whether a released episode counts in the means and pass@k, and with what reward: every end
 * but the environment's, an agent_error that has no reward counting 0. */
static bool counted(const struct item *it, double *reward)
{
    *reward = it->scored ? it->reward : 0;
    return !env_failed(it);
}

struct sched {
    const struct agt_rollout_opts *o;
    struct item *items;
    size_t n, w;
    bool *done, *released;
    size_t *order, *distance;
    size_t head, next, running, released_now, resumed, releases;
    uint64_t max_distance;
    int index_fd;
    int error; /* the first failure to write the index: the run stops */
    char error_msg[CRU_ERR_MAX];
    uint64_t t0;
    bool sandboxed;          /* an episode's sandbox was made: */
    struct sbx_info sandbox; /*   how it enforced its limits (all of a run's are alike) */
    pthread_mutex_t lock;
};

static int index_line(struct sched *s, struct item *it, size_t distance)
{
    json_t *o = json_pack(
        "{s:I, s:I, s:s, s:s, s:s, s:I, s:s?, s:s, s:o, s:I, s:I, s:I, s:s?, s:I}", "release",
        (json_int_t)s->releases, "index", (json_int_t)it->t, "episode", it->id, "group", it->group,
        "image", s->o->images[it->image]->id, "repeat", (json_int_t)it->repeat, "file", NULL,
        "status", it->status, "reward", it->scored ? json_real(it->reward) : json_null(), "turns",
        (json_int_t)it->turns, "wall_ms", (json_int_t)it->wall_ms, "distance", (json_int_t)distance,
        "error", it->error[0] ? it->error : NULL, "attempts", (json_int_t)it->attempts);
    char file[200];
    snprintf(file, sizeof(file), "episodes/%s.traj", it->id);
    if (o && it->ok)
        json_object_set_new(o, "file", json_string(file));
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!line)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    size_t len = strlen(line);
    line[len] = '\n'; /* json_dumps left room for its NUL: the newline takes its place */
    /* One write of the whole line (O_APPEND), then a sync: a tailing reader sees whole lines,
     * and a crash leaves at most one torn line, cut off on resume. */
    int rc = cru_write_all(s->index_fd, line, len + 1);
    if (rc == 0 && fdatasync(s->index_fd) < 0)
        rc = cru_err_sys("syncing the index");
    free(line);
    if (rc == 0)
        s->releases++;
    return rc;
}

/* Releases what the window allows; called with the lock held. */
static void release(struct sched *s)
{
    if (s->error)
        return;
    size_t got = agt_window_release(s->done, s->released, s->n, s->w, &s->head, s->order,
                                    s->distance, &s->max_distance);
    for (size_t i = 0; i < got; i++) {
        size_t t = s->order[i];
        int rc = index_line(s, &s->items[t], s->distance[i]);
        if (rc < 0) {
            s->error = rc;
            snprintf(s->error_msg, sizeof(s->error_msg), "writing the index: %s", cru_err_msg());
            return;
        }
        s->released_now++;
    }
}

static void progress(struct sched *s)
{
    if (!s->o->progress)
        return;
    size_t done = s->released_now + s->resumed, left = s->n - done;
    double elapsed = (double)cru_elapsed_ms(s->t0) / 1000;
    double sum = 0, v;
    size_t scored = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->released[i] && counted(&s->items[i], &v)) {
            sum += v;
            scored++;
        }
    }
    char eta[32] = "?";
    if (s->released_now)
        snprintf(eta, sizeof(eta), "%.0fs", elapsed / (double)s->released_now * (double)left);
    int width = 24, fill = s->n ? (int)((double)done / (double)s->n * width) : width;
    fprintf(stderr, "\r[%.*s%.*s] %zu/%zu released, %zu running, mean reward %.3f, %.0fs, ETA %s  ",
            fill, "########################", width - fill, "........................", done, s->n,
            s->running, scored ? sum / (double)scored : 0.0, elapsed, eta);
    if (done == s->n)
        fputc('\n', stderr);
}

static int default_run(void *ctx, const struct agt_episode_opts *o, struct agt_episode_result *r)
{
    (void)ctx;
    return agt_episode_run(o, r);
}

static void *worker(void *arg)
{
    struct sched *s = arg;
    const struct agt_rollout_opts *o = s->o;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (s->next < s->n && s->released[s->next])
            s->next++; /* done by an earlier run */
        if (s->error || s->next >= s->n || (o->cancel && atomic_load(o->cancel))) {
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
        size_t t = s->next++;
        s->running++;
        progress(s);
        pthread_mutex_unlock(&s->lock);

        struct item *it = &s->items[t];
        char *path = NULL;
        struct agt_episode_result r = { 0 };
        unsigned max_attempts = o->max_attempts ? o->max_attempts : MAX_ATTEMPTS, attempts = 0;
        int rc = cru_str_printf(&path, "%s/episodes/%s.traj", o->out, it->id);
        struct agt_episode_opts eo = { .img = o->images[it->image],
                                       .sc = o->sc,
                                       .agent = o->agent,
                                       .gen = o->gen,
                                       .model = o->model,
                                       .path = path,
                                       .episode_id = it->id,
                                       .group_id = it->group,
                                       .seed = o->seed + it->repeat,
                                       .max_turns = o->max_turns,
                                       .check = o->check,
                                       .cancel = o->cancel };
        /* The environment's failures are tried again, as the same episode (its file is
         * replaced); nothing is released until the last attempt, so a crash meanwhile leaves
         * the episode unreleased and a resumed run starts it afresh. */
        while (rc == 0) {
            attempts++;
            rc = (o->run_episode ? o->run_episode : default_run)(o->run_ctx, &eo, &r);
            bool env = rc < 0 || r.status == REC_ERROR;
            if (!env || attempts >= max_attempts || (o->cancel && atomic_load(o->cancel)))
                break;
            cru_warn("run: episode %s: attempt %u of %u failed in its environment, trying again: "
                     "%s",
                     it->id, attempts, max_attempts, rc < 0 ? cru_err_msg() : r.message);
            agt_episode_result_free(&r);
            rc = 0;
        }
        free(path);

        pthread_mutex_lock(&s->lock);
        s->running--;
        it->attempts = attempts ? attempts : 1;
        if (rc < 0) {
            it->ok = false;
            snprintf(it->status, sizeof(it->status), "failed");
            snprintf(it->error, sizeof(it->error), "%s", cru_err_msg());
            cru_warn("run: episode %s: %s", it->id, cru_err_msg());
        } else {
            it->ok = true;
            it->scored = r.scored;
            it->reward = r.reward;
            it->turns = r.turns;
            it->wall_ms = r.wall_ms;
            if (r.sandboxed && !s->sandboxed) {
                s->sandboxed = true;
                s->sandbox = r.sandbox;
            }
            snprintf(it->status, sizeof(it->status), "%s", rec_status_name(r.status));
            snprintf(it->error, sizeof(it->error), "%s", r.message);
        }
        agt_episode_result_free(&r);
        /* An episode cut short by an interruption is not released: a resumed run redoes it. So
         * is one the environment failed while attempts were left, when the interruption came
         * before the next: it is not done yet. */
        bool unfinished = attempts > 0 && attempts < max_attempts && env_failed(it);
        if (!(it->ok && strcmp(it->status, "cancelled") == 0) && !unfinished) {
            s->done[t] = true;
            release(s);
        }
        progress(s);
        pthread_mutex_unlock(&s->lock);
    }
}

static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const struct item *const *)a)[0]->id, ((const struct item *const *)b)[0]->id);
}

/* Reads the index an earlier run left: its released episodes are done. A torn last line is
 * cut off. */
static int resume(struct sched *s, const char *path)
{
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cru_file_read(path, INDEX_MAX, &b);
    if (rc == CRU_ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    size_t whole = b.len;
    while (whole > 0 && b.data[whole - 1] != '\n')
        whole--;
    if (whole < b.len) {
        cru_warn("run: %s: cutting off a torn last line of %zu bytes", path, b.len - whole);
        if (truncate(path, (off_t)whole) < 0)
            rc = cru_err_sys("cutting the torn line of %s", path);
    }
    struct item **by_id = malloc((s->n ? s->n : 1) * sizeof(*by_id));
    if (!by_id)
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
    for (size_t i = 0; by_id && i < s->n; i++)
        by_id[i] = &s->items[i];
    if (rc == 0 && s->n)
        qsort(by_id, s->n, sizeof(*by_id), item_cmp);
    size_t line_no = 0;
    for (size_t at = 0; rc == 0 && at < whole; line_no++) {
        char *nl = memchr(b.data + at, '\n', whole - at);
        size_t len = (size_t)(nl - (b.data + at));
        json_t *v = NULL;
        if (len > INDEX_LINE_MAX || cru_json_parse(&v, b.data + at, len, "index line") < 0 ||
            !json_is_object(v)) {
            rc = cru_err_set(CRU_EPARSE, "%s: line %zu is not an index entry", path, line_no + 1);
            json_decref(v);
            break;
        }
        s->releases++;
        const char *id = json_string_value(json_object_get(v, "episode"));
        const char *status = json_string_value(json_object_get(v, "status"));
        struct item key, *kp = &key, **hit = NULL;
        if (id && strlen(id) < sizeof(key.id)) {
            snprintf(key.id, sizeof(key.id), "%s", id);
            hit = s->n ? bsearch(&kp, by_id, s->n, sizeof(*by_id), item_cmp) : NULL;
        }
        /* Failed episodes are run again; other runs' episodes (another shard, other images)
         * are kept in the index and left alone. */
        if (hit && status && strcmp(status, "failed") != 0 && !(*hit)->ok) {
            struct item *it = *hit;
            json_t *reward = json_object_get(v, "reward");
            json_t *attempts = json_object_get(v, "attempts");
            it->ok = true;
            it->scored = json_is_number(reward);
            it->reward = json_number_value(reward);
            it->attempts = json_is_integer(attempts) && json_integer_value(attempts) > 0
                               ? (unsigned)json_integer_value(attempts)
                               : 1;
            snprintf(it->status, sizeof(it->status), "%s", status);
            size_t t = (size_t)(it - s->items);
            s->done[t] = s->released[t] = true;
            s->resumed++;
        }
        json_decref(v);
        at += len + 1;
    }
    while (s->head < s->n && s->released[s->head])
        s->head++;
    free(by_id);
    cru_buf_free(&b);
    return rc;
}

/* pass@k for an image with N episodes of which C passed: 1 - C(N-C, K) / C(N, K). */
static double pass_at(size_t n, size_t c, size_t k)
{
    if (n == 0 || k > n)
        return 0;
    double miss = 1;
    for (size_t i = 0; i < k; i++)
        miss *= (double)(n - c > i ? n - c - i : 0) / (double)(n - i);
    return 1 - miss;
}

static json_t *summarize(struct sched *s, struct agt_rollout_summary *out)
{
    const struct agt_rollout_opts *o = s->o;
    unsigned k = o->repeat ? o->repeat : 1;
    json_t *images = json_object(), *statuses = json_object();
    double sum = 0, p1 = 0, pk = 0;
    size_t scored = 0, n_images = 0, env_errors = 0, retries = 0;
    /* Per image, over its counted episodes: an environment error is no sample of the agent,
     * an agent's failure is one (a miss). */
    for (size_t i = 0; i < o->n_images; i++) {
        size_t released = 0, n = 0, c = 0, env = 0;
        double isum = 0, v;
        for (size_t t = 0; t < s->n; t++) {
            const struct item *it = &s->items[t];
            if (it->image != i || !s->released[t])
                continue;
            released++;
            retries += it->attempts > 1 ? it->attempts - 1 : 0;
            if (!counted(it, &v)) {
                env++;
                continue;
            }
            n++;
            isum += v;
            c += v >= 1.0;
        }
        if (released == 0)
            continue;
        env_errors += env;
        json_t *img = json_pack("{s:I, s:I, s:o, s:o, s:o}", "episodes", (json_int_t)released,
                                "environment_errors", (json_int_t)env, "mean_reward",
                                n ? json_real(isum / (double)n) : json_null(), "pass@1",
                                n ? json_real(pass_at(n, c, 1)) : json_null(), "pass@k",
                                n ? json_real(pass_at(n, c, k < n ? k : n)) : json_null());
        json_object_set_new(images, o->images[i]->id, img);
        if (n == 0)
            continue;
        n_images++;
        sum += isum;
        scored += n;
        p1 += pass_at(n, c, 1);
        pk += pass_at(n, c, k < n ? k : n);
    }
    for (size_t t = 0; t < s->n; t++) {
        if (!s->released[t])
            continue;
        const char *st = s->items[t].status;
        json_t *cur = json_object_get(statuses, st);
        json_object_set_new(statuses, st, json_integer(cur ? json_integer_value(cur) + 1 : 1));
    }
    out->mean_reward = scored ? sum / (double)scored : 0;
    out->environment_errors = env_errors;
    out->retries = retries;
    char shard[48] = "";
    if (o->shards)
        snprintf(shard, sizeof(shard), "%u/%u", o->shard, o->shards);
    return json_pack(
        "{s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:I, s:f, s:I, s:I, "
        "s:I, s:o, s:s, s:s?, s:o?, s:o?}",
        "episodes", (json_int_t)s->n, "released", (json_int_t)out->done, "resumed",
        (json_int_t)s->resumed, "interrupted", out->interrupted, "scored", (json_int_t)scored,
        "environment_errors", (json_int_t)env_errors, "retries", (json_int_t)retries, "mean_reward",
        scored ? json_real(out->mean_reward) : json_null(), "pass@1",
        n_images ? json_real(p1 / (double)n_images) : json_null(), "pass@k",
        n_images ? json_real(pk / (double)n_images) : json_null(), "images", images, "k",
        (json_int_t)k, "window_fraction", o->window ? o->window : 0.3, "window", (json_int_t)s->w,
        "max_release_distance", (json_int_t)s->max_distance, "wall_ms", (json_int_t)out->wall_ms,
        "statuses", statuses, "agent", agt_agent_name(o->agent), "shard", shard[0] ? shard : NULL,
        "sandbox", s->sandboxed ? sbx_info_json(&s->sandbox) : NULL, "engine",
        agt_model_engine_json(o->model));
}

static int plan(struct sched *s)
{
    const struct agt_rollout_opts *o = s->o;
    unsigned k = o->repeat ? o->repeat : 1;
    if (o->n_images == 0)
        return cru_err_set(CRU_EINVAL, "no image to run");
    if ((uint64_t)o->n_images * k > MAX_EPISODES)
        return cru_err_set(CRU_ELIMIT, "more than %d episodes in one run", MAX_EPISODES);
    if (o->shards && o->shard >= o->shards)
        return cru_err_set(CRU_EINVAL, "shard %u of %u: the shard is numbered from 0", o->shard,
                           o->shards);
    size_t total = o->n_images * k;
    s->items = calloc(total, sizeof(*s->items));
    if (!s->items)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    for (size_t t = 0; t < total; t++) {
        if (o->shards && t % o->shards != o->shard)
            continue;
        struct item *it = &s->items[s->n++];
        it->image = t / k;
        it->repeat = (unsigned)(t % k);
        it->t = t;
        const char *id = o->images[it->image]->id;
        snprintf(it->id, sizeof(it->id), "%s-r%u", id, it->repeat);
        snprintf(it->group, sizeof(it->group), "%s", id);
    }
    /* Two images of one id would give two episodes one file. */
    for (size_t i = 0; i < o->n_images; i++)
        for (size_t j = i + 1; j < o->n_images; j++)
            if (strcmp(o->images[i]->id, o->images[j]->id) == 0)
                return cru_err_set(CRU_EINVAL, "image %s is given twice", o->images[i]->id);
    double f = o->window > 0 ? o->window : 0.3;
    if (f > 1)
        return cru_err_set(CRU_EINVAL, "the window fraction %g is above 1", f);
    s->w = (size_t)ceil(f * (double)s->n);
    if (s->w < 1)
        s->w = 1;
    s->done = calloc(s->n ? s->n : 1, sizeof(bool));
    s->released = calloc(s->n ? s->n : 1, sizeof(bool));
    s->order = calloc(s->n ? s->n : 1, sizeof(size_t));
    s->distance = calloc(s->n ? s->n : 1, sizeof(size_t));
    if (!s->done || !s->released || !s->order || !s->distance)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    return 0;
}

void agt_rollout_summary_free(struct agt_rollout_summary *s)
{
    if (s) {
        json_decref(s->json);
        s->json = NULL;
    }
}

int agt_rollout(const struct agt_rollout_opts *o, struct agt_rollout_summary *out)
{
    struct sched s = { .o = o, .index_fd = -1, .t0 = cru_now_ns() };
    memset(out, 0, sizeof(*out));
    pthread_mutex_init(&s.lock, NULL);
    char *index = NULL, *episodes = NULL, *summary = NULL;
    unsigned jobs = o->jobs ? o->jobs : 1;
    pthread_t *th = NULL;
    size_t started = 0;
    int rc = plan(&s);
    if (rc == 0 && jobs > MAX_JOBS)
        rc = cru_err_set(CRU_ELIMIT, "-j %u: at most %d episodes at once", jobs, MAX_JOBS);
    if (rc == 0 && (rc = cru_str_printf(&episodes, "%s/episodes", o->out)) == 0)
        rc = cru_mkdir_p(episodes, 0755);
    if (rc == 0)
        rc = cru_str_printf(&index, "%s/index.jsonl", o->out);
    if (rc == 0) {
        s.index_fd = open(index, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (s.index_fd < 0)
            rc = cru_err_sys("opening %s", index);
        else if (flock(s.index_fd, LOCK_EX | LOCK_NB) < 0)
            rc = errno == EWOULDBLOCK
                     ? cru_err_set(CRU_EPERM, "%s is in use by another crucible run", o->out)
                     : cru_err_sys("locking %s", index);
    }
    if (rc == 0)
        rc = resume(&s, index);
    if (rc == 0 && !(th = calloc(jobs, sizeof(*th))))
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
    if (rc == 0 && s.resumed)
        cru_info("run: resuming: %zu of %zu episodes were released by an earlier run", s.resumed,
                 s.n);
    /* Episodes done by an earlier run, now released, may let finished ones through. */
    if (rc == 0) {
        pthread_mutex_lock(&s.lock);
        release(&s);
        pthread_mutex_unlock(&s.lock);
    }
    for (unsigned i = 0; rc == 0 && i < jobs && i < s.n; i++) {
        if (pthread_create(&th[i], NULL, worker, &s) != 0)
            rc = cru_err_set(CRU_EIO, "cannot start a worker thread");
        else
            started++;
    }
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (rc == 0 && s.error)
        rc = cru_err_set(s.error, "%s", s.error_msg);
    if (rc == 0) {
        out->episodes = s.n;
        out->resumed = s.resumed;
        out->done = s.released_now + s.resumed;
        out->window = s.w;
        out->max_distance = s.max_distance;
        out->wall_ms = cru_elapsed_ms(s.t0);
        out->interrupted = o->cancel && atomic_load(o->cancel) && out->done < s.n;
        for (size_t t = 0; t < s.n; t++)
            out->failed += s.released[t] && !s.items[t].ok;
        out->json = summarize(&s, out);
        if (!out->json)
            rc = cru_err_set(CRU_ENOMEM, "out of memory");
        else if ((rc = cru_str_printf(&summary, "%s/summary.json", o->out)) == 0)
            rc = cru_json_write_file(summary, out->json, 0644);
    }
    if (s.index_fd >= 0)
        close(s.index_fd);
    pthread_mutex_destroy(&s.lock);
    free(th);
    free(s.items);
    free(s.done);
    free(s.released);
    free(s.order);
    free(s.distance);
    free(index);
    free(episodes);
    free(summary);
    if (rc < 0)
        agt_rollout_summary_free(out);
    return rc;
}
