/* engine: a queue of requests, one scheduler thread, batched backend steps.
 *
 * Submitters only touch the queue and their ticket, under one mutex; the scheduler thread owns
 * the backend, the slots and the sampler, and takes the mutex only to admit requests and to
 * hand results back. Each sequence draws from its own generator seeded from its request, and
 * the backend's results do not depend on the batch, so batching changes timings only.
 */
#include "model/engine.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/err.h"

struct mdl_ticket {
    struct mdl_ticket *next; /* in the queue */
    struct mdl_request req;
    int32_t *prompt; /* owned copy */
    uint64_t submit_ns, admit_ns, first_ns, end_ns;
    struct mdl_result res;
    size_t cap;
    int rc;
    char *err; /* the failure's message */
    bool done; /* under mu; the ticket's own lock, so a wait never needs the engine */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* while running */
    uint32_t slot;
    struct mdl_rng rng;
    bool prefilled;
};

struct slot_state {
    int32_t *tokens; /* what the backend's cache holds for this slot */
    uint32_t len, cap;
    struct mdl_ticket *owner;
};

struct mdl_engine {
    const struct mdl_model *m;
    const struct mdl_backend *be;
    void *bs;
    uint32_t n_slots, max_ctx, max_batch, max_step_tokens;
    struct slot_state *slots;
    pthread_mutex_t mu;
    pthread_cond_t work;
    pthread_t th;
    bool started, stop;
    struct mdl_ticket *head, *tail;
    struct mdl_ticket **active;
    size_t n_active;
    struct mdl_sampler *sampler;
    float *logits; /* max_batch x vocab */
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
    free(t->prompt);
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

static int slot_record(struct slot_state *s, uint32_t pos, const int32_t *ids, uint32_t n)
{
    if (pos + n > s->cap) {
        uint32_t cap = s->cap ? s->cap : 256;
        while (cap < pos + n)
            cap *= 2;
        int32_t *t = realloc(s->tokens, cap * sizeof(int32_t));
        if (!t)
            return cru_err_set(CRU_ENOMEM, "out of memory");
        s->tokens = t;
        s->cap = cap;
    }
    memcpy(s->tokens + pos, ids, n * sizeof(int32_t));
    s->len = pos + n;
    return 0;
}

/* Called with the lock held: hands T's result back and frees its slot. T must no longer be
 * in the active list: after this its waiter owns it. */
static void finish_locked(struct mdl_engine *e, struct mdl_ticket *t, enum mdl_finish f, int rc)
{
    t->res.finish = f;
    t->rc = rc;
    if (rc < 0 && !t->err)
        t->err = strdup(cru_err_msg());
    t->end_ns = cru_now_ns();
    t->res.queue_ns = t->admit_ns ? t->admit_ns - t->submit_ns : 0;
    t->res.prefill_ns = t->first_ns ? t->first_ns - t->admit_ns : 0;
    t->res.decode_ns = t->first_ns ? t->end_ns - t->first_ns : 0;
    if (t->admit_ns)
        e->slots[t->slot].owner = NULL;
    pthread_mutex_lock(&t->mu);
    t->done = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    return i;
}

/* Called with the lock held: moves queued requests into free slots. */
static void admit_locked(struct mdl_engine *e)
{
    while (e->head && e->n_active < e->max_batch) {
        uint32_t best = UINT32_MAX;
        size_t best_len = 0;
        struct mdl_ticket *t = e->head;
        for (uint32_t i = 0; i < e->n_slots; i++) {
            if (e->slots[i].owner)
                continue;
            size_t l =
                common_prefix(e->slots[i].tokens, e->slots[i].len, t->prompt, t->req.n_prompt);
            if (best == UINT32_MAX || l > best_len) {
                best = i;
                best_len = l;
            }
        }
        if (best == UINT32_MAX)
            return;
        e->head = t->next;
        if (!e->head)
            e->tail = NULL;
        t->next = NULL;
        t->slot = best;
        /* At least the last prompt token is run again: its logits give the first token. */
        if (best_len >= t->req.n_prompt)
            best_len = t->req.n_prompt - 1;
        t->res.n_cached = (uint32_t)best_len;
        e->slots[best].owner = t;
        e->slots[best].len = (uint32_t)best_len;
        t->admit_ns = cru_now_ns();
        e->active[e->n_active++] = t;
    }
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

/* Samples T's next token from LOGITS; returns a finish reason or NONE to go on. */
static enum mdl_finish advance(struct mdl_engine *e, struct mdl_ticket *t, const float *logits,
                               int *rc)
{
    struct mdl_token tok;
    const struct mdl_sampling *p = &t->req.sampling;
    if ((*rc = mdl_sample(e->sampler, logits, p, &t->rng, &tok)) < 0 || (*rc = append(t, &tok)) < 0)
        return MDL_FINISH_ERROR;
    if (!t->first_ns)
        t->first_ns = cru_now_ns();
    if (is_stop(e, p, tok.id))
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
    if (e->slots[t->slot].len + 1 > e->max_ctx)
        return MDL_FINISH_CONTEXT;
    return MDL_FINISH_NONE;
}

/* One step over the active sequences. */
static void step(struct mdl_engine *e)
{
    size_t n = 0, budget = e->max_step_tokens, V = e->m->cfg.vocab;
    for (size_t i = 0; i < e->n_active; i++) {
        struct mdl_ticket *t = e->active[i];
        struct slot_state *sl = &e->slots[t->slot];
        struct mdl_step *s = &e->steps[n];
        if (!t->prefilled) {
            /* Prompts go in chunks within the step's budget, so that a long one neither
             * stalls the sequences decoding beside it nor waits for them to end. */
            uint32_t from = sl->len, cnt = (uint32_t)t->req.n_prompt - from;
            if (budget == 0)
                continue;
            cnt = cnt > budget ? (uint32_t)budget : cnt;
            budget -= cnt;
            *s = (struct mdl_step){ t->slot, from, t->prompt + from, cnt, false, NULL };
        } else {
            *s = (struct mdl_step){ t->slot, sl->len, &t->res.ids[t->res.n - 1], 1, false, NULL };
        }
        s->logits = e->logits + n * V;
        e->step_owner[n++] = t;
    }
    int rc = e->be->forward(e->bs, e->steps, n);
    struct mdl_engine_stats d = { .steps = 1, .max_batch_seen = n };
    enum mdl_finish *fin = e->fin;
    int *rcs = e->rcs;
    for (size_t i = 0; i < n; i++) {
        struct mdl_ticket *t = e->step_owner[i];
        struct slot_state *sl = &e->slots[t->slot];
        rcs[i] = rc;
        fin[i] = MDL_FINISH_ERROR;
        if (rc < 0) {
            if (!t->err)
                t->err = strdup(cru_err_msg());
            continue;
        }
        if (!t->prefilled)
            d.prefill_tokens += e->steps[i].n_ids;
        else
            d.decode_tokens++;
        if ((rcs[i] = slot_record(sl, e->steps[i].pos, e->steps[i].ids, e->steps[i].n_ids)) < 0) {
            /* fin[i] stays an error */
        } else if (!t->prefilled && sl->len < t->req.n_prompt) {
            fin[i] = MDL_FINISH_NONE; /* more of the prompt next step */
        } else {
            if (!t->prefilled) {
                d.cached_tokens += t->res.n_cached;
                t->prefilled = true;
            }
            fin[i] = advance(e, t, e->steps[i].logits, &rcs[i]);
        }
        /* Kept now: the next sequence's failure would replace this thread's message. */
        if (fin[i] == MDL_FINISH_ERROR && !t->err)
            t->err = strdup(cru_err_msg());
    }

    pthread_mutex_lock(&e->mu);
    e->stats.steps += d.steps;
    e->stats.prefill_tokens += d.prefill_tokens;
    e->stats.cached_tokens += d.cached_tokens;
    e->stats.decode_tokens += d.decode_tokens;
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
    for (uint32_t i = 0; e->slots && i < e->n_slots; i++)
        free(e->slots[i].tokens);
    free(e->slots);
    free(e->active);
    free(e->logits);
    free(e->steps);
    free(e->step_owner);
    free(e->fin);
    free(e->rcs);
    mdl_sampler_free(e->sampler);
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
    e->be->limits(e->bs, &e->n_slots, &e->max_ctx);
    e->max_batch = o->max_batch;
    if (e->max_batch < 1 || e->max_batch > e->n_slots) {
        rc = cru_err_set(CRU_EINVAL, "engine options: max_batch %u outside 1..%u slots",
                         o->max_batch, e->n_slots);
        goto done;
    }
    e->max_step_tokens = o->max_step_tokens ? o->max_step_tokens : 1;
    size_t V = model->cfg.vocab;
    e->slots = calloc(e->n_slots, sizeof(*e->slots));
    e->active = calloc(e->max_batch, sizeof(*e->active));
    e->logits = malloc(e->max_batch * V * sizeof(float));
    e->steps = calloc(e->max_batch, sizeof(*e->steps));
    e->step_owner = calloc(e->max_batch, sizeof(*e->step_owner));
    e->fin = calloc(e->max_batch, sizeof(*e->fin));
    e->rcs = calloc(e->max_batch, sizeof(*e->rcs));
    if (!e->slots || !e->active || !e->logits || !e->steps || !e->step_owner || !e->fin ||
        !e->rcs) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = mdl_sampler_new(&e->sampler, (uint32_t)V)) < 0)
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
    if (!t || !(t->prompt = malloc(r->n_prompt * sizeof(int32_t)))) {
        free(t);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->req = *r;
    memcpy(t->prompt, r->prompt, r->n_prompt * sizeof(int32_t));
    t->req.prompt = t->prompt;
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
