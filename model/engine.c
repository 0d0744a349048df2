/* engine: a queue of requests, one scheduler thread, batched backend steps.
 *
 * Submitters only touch the queue and their ticket, under one mutex; the scheduler thread owns
 * the backend, the block pool and the sampler, and takes the mutex only to admit requests and to
 * hand results back. Each sequence draws from its own generator seeded from its request, and
 * the backend's results do not depend on the batch, so batching changes timings only.
 */
#include "model/engine.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "model/kvpool.h"

/* Threads that sample the tokens of one step, at most (one per 8 sequences due). */
#define MDL_SAMPLE_THREADS 8

struct mdl_ticket {
    struct mdl_ticket *next; /* in the queue */
    struct mdl_request req;
    int32_t *toks; /* owned: the prompt, then every id generated */
    size_t n_toks, cap_toks;
    uint64_t submit_ns, admit_ns, first_ns, end_ns;
    struct mdl_result res;
    size_t cap;
    int rc;
    char *err; /* the failure's message */
    bool done; /* under mu; the ticket's own lock, so a wait never needs the engine */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* while admitted (the engine thread's) */
    uint32_t *table; /* its blocks */
    uint32_t n_table;
    uint32_t len;        /* positions whose keys and values are in the blocks */
    uint32_t resume_end; /* the tokens known at admission: below it, steps are prefill */
    uint32_t step_n;     /* tokens this step feeds */
    struct mdl_rng rng;
};

struct mdl_engine {
    const struct mdl_model *m;
    const struct mdl_backend *be;
    void *bs;
    struct mdl_backend_limits lim;
    uint32_t max_ctx, max_seqs, bt, table_cap;
    bool prefix_cache;
    uint32_t prefill_batch, prefill_wait;
    uint32_t held; /* steps the waiting prompts have sat out in a row */
    struct mdl_kvpool *pool;
    pthread_mutex_t mu;
    pthread_cond_t work;
    pthread_t th;
    bool started, stop;
    struct mdl_ticket *head, *tail;
    struct mdl_ticket **active; /* in the order of admission */
    size_t n_active;
    struct mdl_sampler **samplers; /* one per sampling thread */
    uint32_t sample_threads;
    struct mdl_token *toks; /* per step: the token sampled */
    char **sample_err;      /* per step: why sampling failed, or NULL */
    float *logits;          /* max_seqs x vocab */
    struct mdl_step *steps;
    struct mdl_ticket **step_owner;
    enum mdl_finish *fin; /* per step */
    int *rcs;
    struct mdl_engine_stats stats;
};

const char *mdl_finish_name(enum mdl_finish f)
{
    switch (f) {
    case MDL_FINISH_STOP:
        return "stop";
    case MDL_FINISH_STOP_STRING:
        return "stop_string";
    case MDL_FINISH_LENGTH:
        return "length";
    case MDL_FINISH_CONTEXT:
        return "context";
    case MDL_FINISH_CANCELLED:
        return "cancelled";
    case MDL_FINISH_ERROR:
        return "error";
    default:
        return "none";
    }
}

void mdl_result_free(struct mdl_result *r)
{
    if (!r)
        return;
    free(r->ids);
    free(r->logprobs);
    free(r->raw_logprobs);
    free(r->top);
    memset(r, 0, sizeof(*r));
}

static void ticket_free(struct mdl_ticket *t)
{
    if (!t)
        return;
    mdl_result_free(&t->res);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t->toks);
    free(t->table);
    free(t->err);
    free(t);
}

/* ---- the scheduler's side (engine thread, no lock unless said) ---- */

static int append(struct mdl_ticket *t, const struct mdl_token *tok)
{
    struct mdl_result *r = &t->res;
    const struct mdl_sampling *p = &t->req.sampling;
    if (r->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        int32_t *ids = realloc(r->ids, cap * sizeof(int32_t));
        if (ids)
            r->ids = ids;
        float *lp = ids ? realloc(r->logprobs, cap * sizeof(float)) : NULL;
        if (lp)
            r->logprobs = lp;
        bool ok = ids && lp;
        if (ok && p->raw_logprobs) {
            float *raw = realloc(r->raw_logprobs, cap * sizeof(float));
            ok = raw != NULL;
            if (raw)
                r->raw_logprobs = raw;
        }
        if (ok && p->n_top) {
            struct mdl_alt *top = realloc(r->top, cap * p->n_top * sizeof(struct mdl_alt));
            ok = top != NULL;
            if (top)
                r->top = top;
        }
        if (!ok)
            return cru_err_set(CRU_ENOMEM, "out of memory for %zu generated tokens", cap);
        t->cap = cap;
    }
    if (t->n_toks == t->cap_toks) {
        size_t cap = t->cap_toks * 2;
        int32_t *toks = realloc(t->toks, cap * sizeof(int32_t));
        if (!toks)
            return cru_err_set(CRU_ENOMEM, "out of memory for %zu tokens", cap);
        t->toks = toks;
        t->cap_toks = cap;
    }
    t->toks[t->n_toks++] = tok->id;
    r->ids[r->n] = tok->id;
    r->logprobs[r->n] = tok->logprob;
    if (p->raw_logprobs)
        r->raw_logprobs[r->n] = tok->raw_logprob;
    if (p->n_top) {
        r->n_top = p->n_top;
        memcpy(r->top + r->n * p->n_top, tok->top, p->n_top * sizeof(struct mdl_alt));
    }
    r->n++;
    return 0;
}

/* Lets go of T's blocks, the last first: the end of a sequence is the least likely part to be
 * asked for again, so it is the first the LRU list gives up. */
static void release_blocks(struct mdl_engine *e, struct mdl_ticket *t)
{
    while (t->n_table > 0)
        mdl_kvpool_release(e->pool, t->table[--t->n_table]);
    t->len = 0;
}

static void count_pool(struct mdl_engine *e)
{
    struct mdl_kvpool_counts k;
    mdl_kvpool_counts(e->pool, &k);
    e->stats.blocks_used = k.held;
    e->stats.blocks_cached = k.cached;
    e->stats.evictions = k.evictions;
    if (k.held > e->stats.blocks_peak)
        e->stats.blocks_peak = k.held;
}

/* Called with the lock held: hands T's result back. T must no longer be in the active list:
 * after this its waiter owns it. */
static void finish_locked(struct mdl_engine *e, struct mdl_ticket *t, enum mdl_finish f, int rc)
{
    release_blocks(e, t);
    t->res.finish = f;
    t->rc = rc;
    if (rc < 0 && !t->err)
        t->err = strdup(cru_err_msg());
    t->end_ns = cru_now_ns();
    t->res.queue_ns = t->admit_ns ? t->admit_ns - t->submit_ns : 0;
    t->res.prefill_ns = t->first_ns ? t->first_ns - t->admit_ns : 0;
    t->res.decode_ns = t->first_ns ? t->end_ns - t->first_ns : 0;
    pthread_mutex_lock(&t->mu);
    t->done = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* Whether T should wait for an admitted sequence that is computing full blocks of a prefix T
 * shares: T then finds them in the index instead of computing them a second time. */
static bool waits_for_prefix(const struct mdl_engine *e, const struct mdl_ticket *t)
{
    size_t bt = e->bt;
    for (size_t i = 0; i < e->n_active; i++) {
        const struct mdl_ticket *a = e->active[i];
        if (a->len >= a->resume_end || a->resume_end < bt + a->len / bt * bt || t->n_toks <= bt)
            continue;
        size_t n = t->n_toks - 1 < a->resume_end ? t->n_toks - 1 : a->resume_end, c = 0;
        while (c < n && t->toks[c] == a->toks[c])
            c++;
        if (c / bt * bt > a->len)
            return true;
    }
    return false;
}

/* Called with the lock held: moves queued requests into the batch while the pool has room for
 * their known tokens, oldest first; one that waits for a shared prefix lets later ones by. */
static void admit_locked(struct mdl_engine *e)
{
    struct mdl_ticket **link = &e->head, *prev = NULL;
    while (*link && e->n_active < e->max_seqs) {
        struct mdl_ticket *t = *link;
        if (e->prefix_cache && waits_for_prefix(e, t)) {
            prev = t;
            link = &t->next;
            continue;
        }
        /* At least the last known token is run again: its logits give the next token. */
        uint32_t n = (uint32_t)t->n_toks, m = 0;
        if (e->prefix_cache)
            m = mdl_kvpool_match(e->pool, t->toks, n, t->table, (n - 1) / e->bt);
        if (mdl_kvpool_available(e->pool) < (n + e->bt - 1) / e->bt - m) {
            while (m > 0)
                mdl_kvpool_release(e->pool, t->table[--m]);
            break;
        }
        *link = t->next;
        if (e->tail == t)
            e->tail = prev;
        t->next = NULL;
        t->n_table = m;
        t->len = m * e->bt;
        t->resume_end = n;
        if (!t->admit_ns) {
            t->admit_ns = cru_now_ns();
            t->res.n_cached = t->len;
        }
        e->stats.prompt_tokens += n;
        e->stats.cached_tokens += t->len;
        e->active[e->n_active++] = t;
    }
}

/* Sends the youngest admitted sequence back to the head of the queue, its blocks released. */
static struct mdl_ticket *preempt_youngest(struct mdl_engine *e)
{
    struct mdl_ticket *t = e->active[--e->n_active];
    release_blocks(e, t);
    t->step_n = 0;
    pthread_mutex_lock(&e->mu);
    t->next = e->head;
    e->head = t;
    if (!e->tail)
        e->tail = t;
    e->stats.preemptions++;
    pthread_mutex_unlock(&e->mu);
    return t;
}

static bool is_stop(const struct mdl_engine *e, const struct mdl_sampling *p, int32_t id)
{
    for (uint32_t i = 0; i < p->n_stop_ids; i++)
        if (p->stop_ids[i] == id)
            return true;
    for (size_t i = 0; p->stop_at_eos && i < e->m->cfg.n_eos; i++)
        if (e->m->cfg.eos[i] == id)
            return true;
    return false;
}

/* ---- sampling: every finished step's token, on several threads when many are due ---- */

struct sample_part {
    struct mdl_engine *e;
    size_t n, worker, workers;
    pthread_t th;
};

static void *sample_part(void *arg)
{
    struct sample_part *sp = arg;
    struct mdl_engine *e = sp->e;
    for (size_t i = sp->worker; i < sp->n; i += sp->workers) {
        struct mdl_ticket *t = e->step_owner[i];
        e->rcs[i] = 0;
        if (e->fin[i] != MDL_FINISH_NONE || t->len < t->n_toks)
            continue; /* failed, or more of the prompt next step */
        /* Each ticket draws from its own generator: the order of the draws does not matter. */
        if ((e->rcs[i] = mdl_sample(e->samplers[sp->worker], e->steps[i].logits, &t->req.sampling,
                                    &t->rng, &e->toks[i])) < 0)
            e->sample_err[i] = strdup(cru_err_msg());
    }
    return NULL;
}

/* Samples the token of every step that ended a sequence's known tokens. */
static void sample_all(struct mdl_engine *e, size_t n)
{
    struct sample_part parts[MDL_SAMPLE_THREADS];
    size_t w = n / 8 < e->sample_threads ? n / 8 : e->sample_threads;
    w = w ? w : 1;
    for (size_t k = 0; k < w; k++) {
        parts[k] = (struct sample_part){ e, n, k, w, 0 };
        /* A thread that cannot start leaves its share to the calling thread. */
        if (k == 0 || pthread_create(&parts[k].th, NULL, sample_part, &parts[k]) != 0)
            parts[k].th = 0;
    }
    for (size_t k = 0; k < w; k++)
        if (!parts[k].th)
            sample_part(&parts[k]);
    for (size_t k = 0; k < w; k++)
        if (parts[k].th)
            pthread_join(parts[k].th, NULL);
}

/* Takes the token sampled for step I of T; returns a finish reason or NONE to go on. */
static enum mdl_finish advance(struct mdl_engine *e, struct mdl_ticket *t, size_t i, int *rc)
{
    const struct mdl_token *tok = &e->toks[i];
    const struct mdl_sampling *p = &t->req.sampling;
    if (e->sample_err[i]) {
        *rc = cru_err_set(e->rcs[i], "%s", e->sample_err[i]);
        free(e->sample_err[i]);
        e->sample_err[i] = NULL;
        return MDL_FINISH_ERROR;
    }
    if ((*rc = append(t, tok)) < 0)
        return MDL_FINISH_ERROR;
    if (!t->first_ns)
        t->first_ns = cru_now_ns();
    if (is_stop(e, p, tok->id))
        return MDL_FINISH_STOP;
    if (t->req.stop_fn) {
        bool stop = false;
        if ((*rc = t->req.stop_fn(t->req.stop_ctx, t->res.ids, t->res.n, &stop)) < 0)
            return MDL_FINISH_ERROR;
        if (stop)
            return MDL_FINISH_STOP_STRING;
    }
    if (t->res.n >= p->max_tokens)
        return MDL_FINISH_LENGTH;
    if (t->n_toks > e->max_ctx)
        return MDL_FINISH_CONTEXT;
    return MDL_FINISH_NONE;
}

/* Decides what each admitted sequence feeds this step: decoding ones their last token, then
 * prompts (oldest first) in chunks of what the step's budget leaves. Prompts sit out while
 * sequences decode, until prefill_batch tokens wait or they have waited prefill_wait steps;
 * returns whether they sat out this one. */
static bool plan(struct mdl_engine *e)
{
    size_t budget = e->lim.max_step_tokens, decoding = 0, waiting = 0;
    for (size_t i = 0; i < e->n_active; i++) {
        struct mdl_ticket *t = e->active[i];
        t->step_n = t->n_toks - t->len == 1 ? 1 : 0;
        decoding += t->step_n;
        waiting += t->n_toks - t->len - t->step_n;
    }
    budget -= decoding;
    if (waiting && decoding && waiting < e->prefill_batch && e->held < e->prefill_wait) {
        e->held++;
        return true;
    }
    e->held = 0;
    for (size_t i = 0; i < e->n_active && budget > 0; i++) {
        struct mdl_ticket *t = e->active[i];
        size_t left = t->n_toks - t->len;
        if (left > 1) {
            t->step_n = (uint32_t)(left < budget ? left : budget);
            budget -= t->step_n;
        }
    }
    return false;
}

/* Gives every planned sequence the blocks its step writes, oldest first; when the pool is out
 * of blocks the youngest sequence is preempted, until the one asking is the youngest. */
static void take_blocks(struct mdl_engine *e)
{
    for (size_t i = 0; i < e->n_active; i++) {
        struct mdl_ticket *t = e->active[i];
        uint32_t need = (t->len + t->step_n + e->bt - 1) / e->bt;
        while (t->step_n && t->n_table < need) {
            uint32_t b;
            if (mdl_kvpool_alloc(e->pool, &b) == 0) {
                t->table[t->n_table++] = b;
                continue;
            }
            if (preempt_youngest(e) == t)
                break;
        }
    }
}

/* After a step wrote positions FROM .. T->len - 1: the blocks it filled join the index. */
static void publish_full(struct mdl_engine *e, struct mdl_ticket *t, uint32_t from)
{
    for (uint32_t j = from / e->bt; (j + 1) * e->bt <= t->len; j++)
        mdl_kvpool_publish(e->pool, j ? t->table[j - 1] : MDL_KV_ROOT, t->table[j],
                           t->toks + (size_t)j * e->bt);
}

/* One step over the admitted sequences. */
static void step(struct mdl_engine *e)
{
    size_t n = 0, V = e->m->cfg.vocab;
    bool held = plan(e);
    take_blocks(e);
    for (size_t i = 0; i < e->n_active; i++) {
        struct mdl_ticket *t = e->active[i];
        if (!t->step_n)
            continue;
        e->steps[n] = (struct mdl_step){ t->table,  t->n_table, t->len,           t->toks + t->len,
                                         t->step_n, false,      e->logits + n * V };
        e->step_owner[n++] = t;
    }
    if (n == 0) /* every sequence was preempted: the pool holds less than one of them */
        return;
    uint64_t t0 = cru_now_ns();
    int rc = e->be->forward(e->bs, e->steps, n);
    struct mdl_engine_stats d = {
        .steps = 1, .max_batch_seen = n, .busy_ns = cru_now_ns() - t0, .held_steps = held
    };
    enum mdl_finish *fin = e->fin;
    int *rcs = e->rcs;
    for (size_t i = 0; i < n; i++) {
        struct mdl_ticket *t = e->step_owner[i];
        fin[i] = rc < 0 ? MDL_FINISH_ERROR : MDL_FINISH_NONE;
        if (rc < 0 && !t->err)
            t->err = strdup(cru_err_msg());
        if (rc == 0)
            t->len += t->step_n;
    }
    if (rc == 0)
        sample_all(e, n);
    for (size_t i = 0; i < n; i++) {
        struct mdl_ticket *t = e->step_owner[i];
        if (rc < 0) {
            rcs[i] = rc;
            continue;
        }
        uint32_t to = t->len, from = to - t->step_n;
        uint32_t pre = to < t->resume_end ? to : from > t->resume_end ? from : t->resume_end;
        d.prefill_tokens += pre - from;
        d.decode_tokens += to - pre;
        if (e->prefix_cache)
            publish_full(e, t, from);
        fin[i] = to < t->n_toks ? MDL_FINISH_NONE /* more of the prompt next step */
                                : advance(e, t, i, &rcs[i]);
        /* Kept now: the next sequence's failure would replace this thread's message. */
        if (fin[i] == MDL_FINISH_ERROR && !t->err)
            t->err = strdup(cru_err_msg());
    }

    pthread_mutex_lock(&e->mu);
    e->stats.steps += d.steps;
    e->stats.prefill_tokens += d.prefill_tokens;
    e->stats.decode_tokens += d.decode_tokens;
    e->stats.busy_ns += d.busy_ns;
    e->stats.held_steps += d.held_steps;
    if (d.max_batch_seen > e->stats.max_batch_seen)
        e->stats.max_batch_seen = d.max_batch_seen;
    /* Out of the active list first: once finished, a ticket belongs to its waiter, who may
     * free it at once. */
    size_t k = 0;
    for (size_t a = 0; a < e->n_active; a++) {
        bool gone = false;
        for (size_t i = 0; i < n; i++)
            gone |= e->step_owner[i] == e->active[a] && fin[i] != MDL_FINISH_NONE;
        if (!gone)
            e->active[k++] = e->active[a];
    }
    e->n_active = k;
    for (size_t i = 0; i < n; i++)
        if (fin[i] != MDL_FINISH_NONE)
            finish_locked(e, e->step_owner[i], fin[i], fin[i] == MDL_FINISH_ERROR ? rcs[i] : 0);
    count_pool(e);
    pthread_mutex_unlock(&e->mu);
}

static void *engine_main(void *arg)
{
    struct mdl_engine *e = arg;
    pthread_mutex_lock(&e->mu);
    while (!e->stop) {
        admit_locked(e);
        if (e->n_active == 0) {
            pthread_cond_wait(&e->work, &e->mu);
            continue;
        }
        pthread_mutex_unlock(&e->mu);
        step(e);
        pthread_mutex_lock(&e->mu);
    }
    /* Cancel what is left. */
    for (size_t i = 0; i < e->n_active; i++)
        finish_locked(e, e->active[i], MDL_FINISH_CANCELLED, 0);
    e->n_active = 0;
    while (e->head) {
        struct mdl_ticket *t = e->head;
        e->head = t->next;
        finish_locked(e, t, MDL_FINISH_CANCELLED, 0);
    }
    e->tail = NULL;
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- the submitters' side ---- */

void mdl_engine_free(struct mdl_engine *e)
{
    if (!e)
        return;
    if (e->started) {
        pthread_mutex_lock(&e->mu);
        e->stop = true;
        pthread_cond_broadcast(&e->work);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->th, NULL);
    }
    if (e->bs)
        e->be->free(e->bs);
    mdl_kvpool_free(e->pool);
    free(e->active);
    free(e->logits);
    free(e->steps);
    free(e->step_owner);
    free(e->fin);
    free(e->rcs);
    for (uint32_t k = 0; e->samplers && k < e->sample_threads; k++)
        mdl_sampler_free(e->samplers[k]);
    free(e->samplers);
    free(e->toks);
    free(e->sample_err);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->work);
    free(e);
}

int mdl_engine_new(struct mdl_engine **out, const struct mdl_model *model,
                   const struct mdl_engine_opts *o)
{
    *out = NULL;
    if (!o || o->version != MDL_ENGINE_OPTS_VERSION)
        return cru_err_set(CRU_EINVAL, "engine options: unknown version");
    struct mdl_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->work, NULL);
    e->m = model;
    e->be = o->backend ? o->backend : &mdl_backend_cpu;
    int rc = e->be->load(&e->bs, model, &o->backend_opts);
    if (rc < 0)
        goto done;
    e->be->limits(e->bs, &e->lim);
    e->max_seqs = e->lim.max_seqs;
    e->max_ctx = e->lim.max_ctx;
    e->bt = e->lim.block_tokens;
    e->prefix_cache = !o->no_prefix_cache;
    e->prefill_batch = o->prefill_batch;
    e->prefill_wait = o->prefill_wait;
    if (!o->prefill_batch && !o->prefill_wait && e->lim.fast_step_tokens) {
        e->prefill_batch = 2048;
        e->prefill_wait = 16;
    }
    /* Every decoding sequence feeds one token a step, and one sequence of max_ctx fits. */
    if (e->lim.max_step_tokens < e->max_seqs || e->max_ctx < 2 ||
        (uint64_t)e->lim.n_blocks * e->bt < e->max_ctx) {
        rc = cru_err_set(CRU_EINVAL,
                         "engine: a step of %u tokens for %u sequences, %u blocks of %u for a "
                         "context of %u",
                         e->lim.max_step_tokens, e->max_seqs, e->lim.n_blocks, e->bt, e->max_ctx);
        goto done;
    }
    e->table_cap = (e->max_ctx + e->bt - 1) / e->bt;
    if ((rc = mdl_kvpool_new(&e->pool, e->lim.n_blocks, e->bt)) < 0)
        goto done;
    e->stats.blocks = e->lim.n_blocks;
    e->stats.block_tokens = e->bt;
    size_t V = model->cfg.vocab;
    e->active = calloc(e->max_seqs, sizeof(*e->active));
    e->logits = malloc(e->max_seqs * V * sizeof(float));
    e->steps = calloc(e->max_seqs, sizeof(*e->steps));
    e->step_owner = calloc(e->max_seqs, sizeof(*e->step_owner));
    e->fin = calloc(e->max_seqs, sizeof(*e->fin));
    e->rcs = calloc(e->max_seqs, sizeof(*e->rcs));
    if (!e->active || !e->logits || !e->steps || !e->step_owner || !e->fin || !e->rcs) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    e->sample_threads = cores < 1                    ? 1
                        : cores > MDL_SAMPLE_THREADS ? MDL_SAMPLE_THREADS
                                                     : (uint32_t)cores;
    e->samplers = calloc(e->sample_threads, sizeof(*e->samplers));
    e->toks = calloc(e->max_seqs, sizeof(*e->toks));
    e->sample_err = calloc(e->max_seqs, sizeof(*e->sample_err));
    if (!e->samplers || !e->toks || !e->sample_err) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    for (uint32_t k = 0; k < e->sample_threads; k++)
        if ((rc = mdl_sampler_new(&e->samplers[k], (uint32_t)V)) < 0)
            goto done;
    if ((rc = pthread_create(&e->th, NULL, engine_main, e)) != 0) {
        errno = rc;
        rc = cru_err_sys("cannot start the engine thread");
        goto done;
    }
    e->started = true;
done:
    if (rc < 0) {
        mdl_engine_free(e);
        return cru_err_wrap(rc, "starting the engine");
    }
    *out = e;
    return 0;
}

int mdl_engine_submit(struct mdl_engine *e, const struct mdl_request *r, struct mdl_ticket **out)
{
    *out = NULL;
    int rc = mdl_sampling_check(&r->sampling);
    if (rc < 0)
        return rc;
    if (r->n_prompt < 1 || !r->prompt)
        return cru_err_set(CRU_EINVAL, "request: an empty prompt");
    if (r->n_prompt > MDL_MAX_PROMPT || r->n_prompt >= e->max_ctx)
        return cru_err_set(CRU_ELIMIT,
                           "request: a prompt of %zu tokens does not fit the context "
                           "of %u",
                           r->n_prompt, e->max_ctx);
    for (size_t i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || (uint32_t)r->prompt[i] >= e->m->cfg.vocab)
            return cru_err_set(CRU_EINVAL,
                               "request: prompt token %zu (%d) outside the vocabulary "
                               "(%u)",
                               i, r->prompt[i], e->m->cfg.vocab);
    struct mdl_ticket *t = calloc(1, sizeof(*t));
    size_t cap = r->n_prompt + 64;
    if (!t || !(t->toks = malloc(cap * sizeof(int32_t))) ||
        !(t->table = malloc(e->table_cap * sizeof(uint32_t)))) {
        if (t)
            free(t->toks);
        free(t);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->req = *r;
    memcpy(t->toks, r->prompt, r->n_prompt * sizeof(int32_t));
    t->n_toks = r->n_prompt;
    t->cap_toks = cap;
    t->req.prompt = NULL; /* the copy is t->toks, which grows as tokens are generated */
    t->res.n_prompt = (uint32_t)r->n_prompt;
    mdl_rng_seed(&t->rng, r->sampling.seed);
    t->submit_ns = cru_now_ns();
    pthread_mutex_lock(&e->mu);
    if (e->stop) {
        pthread_mutex_unlock(&e->mu);
        ticket_free(t);
        return cru_err_set(CRU_EINVAL, "request: the engine is stopping");
    }
    if (e->tail)
        e->tail->next = t;
    else
        e->head = t;
    e->tail = t;
    pthread_cond_signal(&e->work);
    pthread_mutex_unlock(&e->mu);
    *out = t;
    return 0;
}

int mdl_ticket_wait(struct mdl_ticket *t, struct mdl_result *out)
{
    pthread_mutex_lock(&t->mu);
    while (!t->done)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
    *out = t->res;
    memset(&t->res, 0, sizeof(t->res));
    int rc = t->rc;
    if (rc < 0)
        cru_err_set(rc, "%s", t->err ? t->err : cru_err_str(rc));
    ticket_free(t);
    return rc;
}

int mdl_engine_generate(struct mdl_engine *e, const struct mdl_request *r, struct mdl_result *out)
{
    struct mdl_ticket *t = NULL;
    memset(out, 0, sizeof(*out));
    int rc = mdl_engine_submit(e, r, &t);
    return rc < 0 ? rc : mdl_ticket_wait(t, out);
}

void mdl_engine_stats(struct mdl_engine *e, struct mdl_engine_stats *out)
{
    pthread_mutex_lock(&e->mu);
    *out = e->stats;
    pthread_mutex_unlock(&e->mu);
}

const char *mdl_engine_backend_name(const struct mdl_engine *e)
{
    return e->be->name;
}

void mdl_engine_limits(struct mdl_engine *e, struct mdl_backend_limits *out)
{
    *out = e->lim;
}
