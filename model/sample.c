/* sample: greedy, temperature, top-k and top-p sampling with exact behavior log-probs.
 *
 * One function builds the sampling distribution (the kept ids and their normaliser) and both
 * mdl_sample() and mdl_sample_logprobs() read it, so the log-prob recorded for a token is by
 * construction the one of the distribution it was drawn from. Sums are in double. It knows
 * nothing of models or sequences: logits in, one id out.
 */
#include "model/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

struct mdl_sampler {
    uint32_t vocab;
    uint32_t *idx; /* kept ids, likeliest first when truncated */
    uint32_t n_kept;
    double zmax, log_norm; /* scaled-logit max; log of the kept ids' sum of exp(z - zmax) */
    const float *logits;
    float inv_t;
};

int mdl_sampling_check(const struct mdl_sampling *p)
{
    if (p->version != MDL_SAMPLING_VERSION)
        return cru_err_set(CRU_EINVAL, "sampling: unknown version %u", p->version);
    if (!(p->temperature == 0 || (p->temperature >= 1e-4f && p->temperature <= 100.0f)))
        return cru_err_set(CRU_EINVAL, "sampling: temperature %g outside 0 or 0.0001..100",
                           (double)p->temperature);
    if (!(p->top_p > 0 && p->top_p <= 1))
        return cru_err_set(CRU_EINVAL, "sampling: top_p %g outside (0, 1]", (double)p->top_p);
    if (p->max_tokens < 1 || p->max_tokens > MDL_MAX_TOKENS)
        return cru_err_set(CRU_ELIMIT, "sampling: max_tokens %u outside 1..%u", p->max_tokens,
                           MDL_MAX_TOKENS);
    if (p->n_stop_ids > MDL_MAX_STOP_TOKENS)
        return cru_err_set(CRU_ELIMIT, "sampling: more than %d stop ids", MDL_MAX_STOP_TOKENS);
    if (p->n_top > MDL_MAX_TOP)
        return cru_err_set(CRU_ELIMIT, "sampling: more than %d alternatives", MDL_MAX_TOP);
    return 0;
}

/* ---- xoshiro256** seeded by splitmix64 ---- */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void mdl_rng_seed(struct mdl_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t mdl_rng_next(struct mdl_rng *r)
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double mdl_rng_uniform(struct mdl_rng *r)
{
    return (double)(mdl_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- the sampler ---- */

int mdl_sampler_new(struct mdl_sampler **out, uint32_t vocab)
{
    *out = NULL;
    if (vocab < 1 || vocab > MDL_MAX_VOCAB)
        return cru_err_set(CRU_ELIMIT, "sampler: vocabulary of %u (1..%u)", vocab, MDL_MAX_VOCAB);
    struct mdl_sampler *s = calloc(1, sizeof(*s));
    if (!s || !(s->idx = malloc(vocab * sizeof(uint32_t)))) {
        free(s);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    s->vocab = vocab;
    *out = s;
    return 0;
}

void mdl_sampler_free(struct mdl_sampler *s)
{
    if (!s)
        return;
    free(s->idx);
    free(s);
}

/* Orders ids by logit, larger first, then by id: a total order, so results are reproducible. */
static int better(const float *l, uint32_t a, uint32_t b)
{
    return l[a] > l[b] || (l[a] == l[b] && a < b);
}

static void sift_down(const float *l, uint32_t *h, size_t n, size_t i)
{
    /* a min-heap under better(): the root is the worst of the kept */
    for (;;) {
        size_t c = 2 * i + 1, w = i;
        if (c < n && better(l, h[w], h[c]))
            w = c;
        if (c + 1 < n && better(l, h[w], h[c + 1]))
            w = c + 1;
        if (w == i)
            return;
        uint32_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Sorts N ids likeliest first. qsort_r keeps the logits out of a global. */
struct sort_ctx {
    const float *logits;
};

static int cmp_ids_r(const void *a, const void *b, void *ctx)
{
    const float *l = ((const struct sort_ctx *)ctx)->logits;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return better(l, x, y) ? -1 : better(l, y, x) ? 1 : 0;
}

static void sort_ids(uint32_t *ids, size_t n, const float *l)
{
    struct sort_ctx ctx = { l };
    qsort_r(ids, n, sizeof(uint32_t), cmp_ids_r, &ctx);
}

/* The K likeliest ids of L, likeliest first, into IDS. */
static void top_ids(uint32_t *ids, uint32_t k, const float *l, uint32_t vocab)
{
    for (uint32_t i = 0; i < k; i++)
        ids[i] = i;
    for (size_t i = k / 2; i-- > 0;)
        sift_down(l, ids, k, i);
    for (uint32_t i = k; i < vocab; i++)
        if (better(l, i, ids[0])) {
            ids[0] = i;
            sift_down(l, ids, k, 0);
        }
    sort_ids(ids, k, l);
}

/* Builds the sampling distribution of P over LOGITS into S. */
static int build(struct mdl_sampler *s, const float *logits, const struct mdl_sampling *p)
{
    int rc = mdl_sampling_check(p);
    if (rc < 0)
        return rc;
    uint32_t V = s->vocab;
    s->logits = logits;
    for (uint32_t i = 0; i < V; i++)
        if (isnan(logits[i]))
            return cru_err_set(CRU_EINVAL, "sampling: logit %u is NaN", i);
    if (p->temperature == 0) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < V; i++)
            if (logits[i] > logits[best])
                best = i;
        s->idx[0] = best;
        s->n_kept = 1;
        s->inv_t = 1.0f;
        s->zmax = logits[best];
        s->log_norm = 0;
        return 0;
    }
    s->inv_t = 1.0f / p->temperature;
    /* Temperature scaling is monotone: order and top-k are those of the raw logits. */
    uint32_t k = p->top_k && p->top_k < V ? p->top_k : V;
    bool sorted = k < V || p->top_p < 1;
    if (k < V)
        top_ids(s->idx, k, logits, V);
    else {
        for (uint32_t i = 0; i < V; i++)
            s->idx[i] = i;
        if (sorted)
            sort_ids(s->idx, V, logits);
    }
    double zmax = -INFINITY;
    for (uint32_t i = 0; i < k; i++) {
        double z = (double)logits[s->idx[i]] * s->inv_t;
        zmax = z > zmax ? z : zmax;
    }
    double sum = 0;
    for (uint32_t i = 0; i < k; i++)
        sum += exp((double)logits[s->idx[i]] * s->inv_t - zmax);
    uint32_t kept = k;
    if (p->top_p < 1) {
        /* The smallest prefix whose probability reaches top_p (at least one id). */
        double cum = 0, target = (double)p->top_p * sum, kept_sum = 0;
        kept = 0;
        while (kept < k) {
            double e = exp((double)logits[s->idx[kept]] * s->inv_t - zmax);
            cum += e;
            kept_sum = cum;
            kept++;
            if (cum >= target)
                break;
        }
        sum = kept_sum;
    }
    s->n_kept = kept;
    s->zmax = zmax;
    s->log_norm = log(sum);
    return 0;
}

static float kept_logprob(const struct mdl_sampler *s, uint32_t id)
{
    if (s->n_kept == 1)
        return 0.0f;
    return (float)((double)s->logits[id] * s->inv_t - s->zmax - s->log_norm);
}

int mdl_sample_logprobs(struct mdl_sampler *s, const float *logits, const struct mdl_sampling *p,
                        float *out)
{
    int rc = build(s, logits, p);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < s->vocab; i++)
        out[i] = -INFINITY;
    for (uint32_t i = 0; i < s->n_kept; i++)
        out[s->idx[i]] = kept_logprob(s, s->idx[i]);
    return 0;
}

int mdl_sample(struct mdl_sampler *s, const float *logits, const struct mdl_sampling *p,
               struct mdl_rng *rng, struct mdl_token *out)
{
    int rc = build(s, logits, p);
    if (rc < 0)
        return rc;
    uint32_t id = s->idx[0];
    if (s->n_kept > 1) {
        double u = mdl_rng_uniform(rng) * exp(s->log_norm), cum = 0;
        id = s->idx[s->n_kept - 1];
        for (uint32_t i = 0; i < s->n_kept; i++) {
            cum += exp((double)logits[s->idx[i]] * s->inv_t - s->zmax);
            if (u < cum) {
                id = s->idx[i];
                break;
            }
        }
    }
    memset(out, 0, sizeof(*out));
    out->id = (int32_t)id;
    out->logprob = kept_logprob(s, id);
    if (p->raw_logprobs || p->n_top) {
        double mx = -INFINITY, sum = 0;
        for (uint32_t i = 0; i < s->vocab; i++)
            mx = logits[i] > mx ? logits[i] : mx;
        for (uint32_t i = 0; i < s->vocab; i++)
            sum += exp((double)logits[i] - mx);
        double lse = mx + log(sum);
        out->raw_logprob = (float)((double)logits[id] - lse);
        if (p->n_top) {
            uint32_t n = p->n_top < s->vocab ? p->n_top : s->vocab;
            /* idx is free again: the draw is done */
            top_ids(s->idx, n, logits, s->vocab);
            for (uint32_t i = 0; i < n; i++)
                out->top[i] = (struct mdl_alt){ (int32_t)s->idx[i],
                                                (float)((double)logits[s->idx[i]] - lse) };
            out->n_top = n;
        }
    }
    return 0;
}
