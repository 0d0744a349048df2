/* cpu: the reference forward of both architectures, fp32 on bf16/f16/f32 weights.
 *
 * It computes what HuggingFace transformers computes (eager attention, fp32), in the same order
 * of operations where that order can change a result: RMSNorm in fp32, q/k norm before RoPE,
 * the rotated dims first for partial RoPE, softmax or sigmoid routing with the top-k chosen per
 * token and expert outputs added in expert order. All tokens of a step, from every sequence,
 * go through each weight matrix together (a row is converted once for all of them), and the
 * rows are split over a pool of threads. Each output element is computed by one thread in a
 * fixed order, so results do not depend on the thread count or on which sequences share a
 * step: a batched run gives bit-identical logits to single runs. It does no sampling and no
 * scheduling (model/engine does).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "model/backend.h"

/* ---- a small thread pool: one job at a time, split into tasks taken in turn ---- */

typedef void (*task_fn)(void *ctx, size_t task, uint32_t worker);

struct pool {
    pthread_t *th;
    uint32_t n; /* workers including the caller (worker 0) */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t gen;
    uint32_t busy;
    bool stop;
    task_fn fn;
    void *ctx;
    size_t n_tasks;
    atomic_size_t next;
};

struct worker_arg {
    struct pool *p;
    uint32_t id;
};

static void run_tasks(struct pool *p, uint32_t id)
{
    for (size_t t; (t = atomic_fetch_add(&p->next, 1)) < p->n_tasks;)
        p->fn(p->ctx, t, id);
}

static void *worker_main(void *arg)
{
    struct worker_arg a = *(struct worker_arg *)arg;
    free(arg);
    struct pool *p = a.p;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->gen == seen && !p->stop)
            pthread_cond_wait(&p->go, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        run_tasks(p, a.id);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

static void pool_stop(struct pool *p, uint32_t started)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (uint32_t i = 0; i < started; i++)
        pthread_join(p->th[i], NULL);
    free(p->th);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
}

static int pool_init(struct pool *p, uint32_t n)
{
    memset(p, 0, sizeof(*p));
    p->n = n;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    if (n <= 1)
        return 0;
    if (!(p->th = calloc(n - 1, sizeof(pthread_t)))) {
        pool_stop(p, 0);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i + 1 < n; i++) {
        struct worker_arg *a = malloc(sizeof(*a));
        if (a)
            *a = (struct worker_arg){ p, i + 1 };
        int err = a ? pthread_create(&p->th[i], NULL, worker_main, a) : ENOMEM;
        if (err) {
            free(a);
            pool_stop(p, i);
            errno = err;
            return cru_err_sys("cannot start a CPU worker thread");
        }
    }
    return 0;
}

/* Runs FN over tasks 0..N_TASKS-1 on every worker and returns when all are done. */
static void pool_run(struct pool *p, size_t n_tasks, task_fn fn, void *ctx)
{
    if (n_tasks == 0)
        return;
    if (p->n <= 1 || n_tasks == 1) {
        for (size_t t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    p->busy = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* ---- state ---- */

struct cpu {
    const struct mdl_model *m;
    const struct mdl_config *c;
    struct mdl_backend_limits lim;
    uint32_t max_ctx, kvd, qd;
    float **kp, **vp; /* per layer: the pool, n_blocks x block_tokens x kv_dim */
    uint8_t *seen;    /* n_blocks: mdl_steps_check's scratch */
    struct pool pool;
    bool pool_ok;
    uint32_t n_workers;
    float *inv_freq;  /* rotary_dim / 2 */
    float **wscratch; /* per worker: a converted weight row and attention scores */
    size_t wscratch_len;
    /* per step, T tokens */
    size_t cap_t;
    float *x, *xn, *q, *k, *v, *att, *tmp, *acc, *router, *gate, *up;
    const uint32_t **tok_table; /* each token's block table */
    uint32_t *tok_pos;
    /* MoE routing */
    uint32_t *sel;  /* T x top_k expert ids */
    float *sel_w;   /* T x top_k weights */
    uint32_t *list; /* tokens of the current expert */
    float *gx;      /* gathered inputs of the current expert */
};

/* ---- kernels ---- */

/* A dot product in 8 lanes, summed in a fixed order (vectorisable, deterministic). */
static float dot(const float *a, const float *b, size_t n)
{
    float s[8] = { 0 };
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            s[j] += a[i + j] * b[i + j];
    for (; i < n; i++)
        s[i % 8] += a[i] * b[i];
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

/* In blocks of 8 with a fixed inner count, which -O2's cheap vectoriser accepts. */
static void bf16_to_f32(float *restrict dst, const uint16_t *restrict src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            uint32_t u = (uint32_t)src[i + j] << 16;
            memcpy(&dst[i + j], &u, 4);
        }
    for (; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(&dst[i], &u, 4);
    }
}

/* Row R of W as floats into DST; RAW is scratch for W->cols 16-bit values (the copy into it
 * makes the conversion loop one that the compiler vectorises). */
static void row_to_f32(float *dst, uint16_t *raw, const struct mdl_weight *w, size_t r)
{
    size_t n = w->cols;
    const uint8_t *src = (const uint8_t *)w->data + r * n * (w->dtype == MDL_DT_F32 ? 4 : 2);
    if (w->dtype == MDL_DT_F32) {
        memcpy(dst, src, n * 4);
        return;
    }
    memcpy(raw, src, n * 2);
    if (w->dtype == MDL_DT_BF16) {
        bf16_to_f32(dst, raw, n);
    } else {
        for (size_t i = 0; i < n; i++)
            dst[i] = mdl_f16_to_f32(raw[i]);
    }
}

/* The dot product of a bf16 row (read in place, unaligned) with X, with the same lanes and
 * order of additions as dot() over the converted row: the conversion is exact, so the result
 * is bit-identical, whichever of the two paths a step takes. */
static float dot_bf16(const uint8_t *w, const float *x, size_t n)
{
    float s[8] = { 0 };
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16_t h[8];
        float f[8];
        memcpy(h, w + 2 * i, sizeof(h));
        bf16_to_f32(f, h, 8);
        for (int j = 0; j < 8; j++)
            s[j] += f[j] * x[i + j];
    }
    for (; i < n; i++) {
        uint16_t h;
        float f;
        memcpy(&h, w + 2 * i, 2);
        bf16_to_f32(&f, &h, 1);
        s[i % 8] += f * x[i];
    }
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

/* OUT[t][r] = W[r] . X[t] for T inputs of W->cols floats (stride LDX) into rows of LDO. */
struct mm_job {
    struct cpu *s;
    const struct mdl_weight *w;
    const float *x;
    float *out;
    size_t t, ldx, ldo;
};

#define MM_ROWS 16
/* Below this many multiply-adds a matrix product runs on the calling thread: waking the pool
 * costs more. */
#define MM_INLINE 32768
/* With at most this many inputs a bf16 row is read in place for each of them rather than
 * converted once. */
#define MM_FUSED_T 2

static void mm_task(void *ctx, size_t task, uint32_t worker)
{
    struct mm_job *j = ctx;
    float *row = j->s->wscratch[worker];
    uint16_t *raw = (uint16_t *)(row + j->s->wscratch_len);
    size_t r0 = task * MM_ROWS, r1 = r0 + MM_ROWS < j->w->rows ? r0 + MM_ROWS : j->w->rows;
    size_t cols = j->w->cols;
    bool fused = j->w->dtype == MDL_DT_BF16 && j->t <= MM_FUSED_T;
    for (size_t r = r0; r < r1; r++) {
        if (fused) {
            const uint8_t *src = (const uint8_t *)j->w->data + r * cols * 2;
            for (size_t t = 0; t < j->t; t++)
                j->out[t * j->ldo + r] = dot_bf16(src, j->x + t * j->ldx, cols);
            continue;
        }
        row_to_f32(row, raw, j->w, r);
        for (size_t t = 0; t < j->t; t++)
            j->out[t * j->ldo + r] = dot(row, j->x + t * j->ldx, cols);
    }
}

static void matmul(struct cpu *s, float *out, size_t ldo, const struct mdl_weight *w,
                   const float *x, size_t ldx, size_t t)
{
    struct mm_job j = { s, w, x, out, t, ldx, ldo };
    size_t tasks = (w->rows + MM_ROWS - 1) / MM_ROWS;
    if ((uint64_t)w->rows * w->cols * t < MM_INLINE) {
        for (size_t k = 0; k < tasks; k++)
            mm_task(&j, k, 0);
        return;
    }
    pool_run(&s->pool, tasks, mm_task, &j);
}

/* RMSNorm of N floats as transformers: x * rsqrt(mean(x^2) + eps), times the weight. */
static void rmsnorm(float *out, const float *x, const struct mdl_weight *w, size_t n, float eps)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float r = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (size_t i = 0; i < n; i++)
        out[i] = mdl_weight_at(w, i) * (x[i] * r);
}

/* rotate_half RoPE on the first ROT dims of one head at position POS. */
static void rope(float *h, const float *inv_freq, uint32_t rot, uint32_t pos)
{
    uint32_t half = rot / 2;
    for (uint32_t i = 0; i < half; i++) {
        float a = (float)pos * inv_freq[i], c = cosf(a), sn = sinf(a);
        float x1 = h[i], x2 = h[i + half];
        h[i] = x1 * c + -x2 * sn;
        h[i + half] = x2 * c + x1 * sn;
    }
}

static float silu(float x)
{
    return x / (1.0f + expf(-x));
}

/* ---- attention ---- */

/* Where position POS of a sequence with block table TABLE keeps its key (or value) in POOL. */
static float *kv_at(const struct cpu *s, float *pool, const uint32_t *table, uint32_t pos)
{
    uint32_t bt = s->lim.block_tokens;
    return pool + ((size_t)table[pos / bt] * bt + pos % bt) * s->kvd;
}

struct att_job {
    struct cpu *s;
    uint32_t layer;
};

static void att_task(void *ctx, size_t task, uint32_t worker)
{
    struct att_job *j = ctx;
    struct cpu *s = j->s;
    const struct mdl_config *c = s->c;
    size_t t = task / c->heads;
    uint32_t h = (uint32_t)(task % c->heads), hd = c->head_dim;
    uint32_t kvh = h / (c->heads / c->kv_heads), n = s->tok_pos[t] + 1;
    const uint32_t *table = s->tok_table[t];
    const float *q = s->q + t * s->qd + (size_t)h * hd;
    float *K = s->kp[j->layer] + (size_t)kvh * hd, *V = s->vp[j->layer] + (size_t)kvh * hd;
    float *sc = s->wscratch[worker] + s->wscratch_len - s->max_ctx;
    float scale = 1.0f / sqrtf((float)hd), mx = -INFINITY;
    for (uint32_t i = 0; i < n; i++) {
        sc[i] = dot(q, kv_at(s, K, table, i), hd) * scale;
        mx = sc[i] > mx ? sc[i] : mx;
    }
    float sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        sc[i] = expf(sc[i] - mx);
        sum += sc[i];
    }
    float *o = s->att + t * s->qd + (size_t)h * hd;
    memset(o, 0, hd * sizeof(float));
    for (uint32_t i = 0; i < n; i++) {
        float p = sc[i] / sum;
        const float *vr = kv_at(s, V, table, i);
        for (uint32_t d = 0; d < hd; d++)
            o[d] += p * vr[d];
    }
}

static void attention(struct cpu *s, uint32_t li, size_t T)
{
    const struct mdl_config *c = s->c;
    const struct mdl_layer *L = &s->m->layers[li];
    bool whole = c->arch == MDL_ARCH_MINIMAX_M2;
    uint32_t hd = c->head_dim, H = c->hidden;
    for (size_t t = 0; t < T; t++)
        rmsnorm(s->xn + t * H, s->x + t * H, &L->attn_norm, H, c->rms_eps);
    matmul(s, s->q, s->qd, &L->q, s->xn, H, T);
    matmul(s, s->k, s->kvd, &L->k, s->xn, H, T);
    matmul(s, s->v, s->kvd, &L->v, s->xn, H, T);
    for (size_t t = 0; t < T; t++) {
        float *q = s->q + t * s->qd, *k = s->k + t * s->kvd;
        if (whole) { /* minimax_m2: one norm over all heads' projection */
            rmsnorm(q, q, &L->q_norm, s->qd, c->rms_eps);
            rmsnorm(k, k, &L->k_norm, s->kvd, c->rms_eps);
        } else {
            for (uint32_t h = 0; h < c->heads; h++)
                rmsnorm(q + h * hd, q + h * hd, &L->q_norm, hd, c->rms_eps);
            for (uint32_t h = 0; h < c->kv_heads; h++)
                rmsnorm(k + h * hd, k + h * hd, &L->k_norm, hd, c->rms_eps);
        }
        for (uint32_t h = 0; h < c->heads; h++)
            rope(q + h * hd, s->inv_freq, c->rotary_dim, s->tok_pos[t]);
        for (uint32_t h = 0; h < c->kv_heads; h++)
            rope(k + h * hd, s->inv_freq, c->rotary_dim, s->tok_pos[t]);
        memcpy(kv_at(s, s->kp[li], s->tok_table[t], s->tok_pos[t]), k, s->kvd * sizeof(float));
        memcpy(kv_at(s, s->vp[li], s->tok_table[t], s->tok_pos[t]), s->v + t * s->kvd,
               s->kvd * sizeof(float));
    }
    struct att_job j = { s, li };
    uint64_t work = 0;
    for (size_t t = 0; t < T; t++)
        work += (uint64_t)(s->tok_pos[t] + 1) * c->heads * hd;
    if (work < MM_INLINE) {
        for (size_t k = 0; k < T * c->heads; k++)
            att_task(&j, k, 0);
    } else {
        pool_run(&s->pool, T * c->heads, att_task, &j);
    }
    matmul(s, s->tmp, H, &L->o, s->att, s->qd, T);
    for (size_t i = 0; i < T * H; i++)
        s->x[i] += s->tmp[i];
}

/* ---- MLP and MoE ---- */

/* ACC[t] = W * MLP(X[t]) for N rows of X (W NULL: weight 1), added in place. */
static void mlp(struct cpu *s, const struct mdl_mlp *w, const float *x, size_t n, float *out)
{
    size_t I = w->gate.rows, H = s->c->hidden;
    matmul(s, s->gate, I, &w->gate, x, H, n);
    matmul(s, s->up, I, &w->up, x, H, n);
    for (size_t i = 0; i < n * I; i++)
        s->gate[i] = silu(s->gate[i]) * s->up[i];
    matmul(s, out, H, &w->down, s->gate, I, n);
}

static void route(struct cpu *s, const struct mdl_layer *L, size_t t)
{
    const struct mdl_config *c = s->c;
    uint32_t E = c->experts, K = c->top_k;
    float *r = s->router + t * E, *choice = s->gate; /* E floats of scratch */
    uint32_t *sel = s->sel + t * K;
    float *w = s->sel_w + t * K;
    if (c->arch == MDL_ARCH_MINIMAX_M2) {
        for (uint32_t e = 0; e < E; e++) {
            r[e] = 1.0f / (1.0f + expf(-r[e]));
            choice[e] = r[e] + (L->bias.data ? mdl_weight_at(&L->bias, e) : 0.0f);
        }
    } else {
        float mx = -INFINITY, sum = 0;
        for (uint32_t e = 0; e < E; e++)
            mx = r[e] > mx ? r[e] : mx;
        for (uint32_t e = 0; e < E; e++)
            sum += (r[e] = expf(r[e] - mx));
        for (uint32_t e = 0; e < E; e++)
            choice[e] = (r[e] /= sum);
    }
    /* top-k by CHOICE, the lower index first among equals (as torch.topk on CPU) */
    for (uint32_t k = 0; k < K; k++) {
        uint32_t best = UINT32_MAX;
        for (uint32_t e = 0; e < E; e++) {
            bool taken = false;
            for (uint32_t j = 0; j < k; j++)
                taken |= sel[j] == e;
            if (!taken && (best == UINT32_MAX || choice[e] > choice[best]))
                best = e;
        }
        sel[k] = best;
        w[k] = r[best];
    }
    if (c->arch == MDL_ARCH_MINIMAX_M2 || c->norm_topk_prob) {
        float sum = 0;
        for (uint32_t k = 0; k < K; k++)
            sum += w[k];
        for (uint32_t k = 0; k < K; k++)
            w[k] /= sum;
    }
}

static void moe(struct cpu *s, const struct mdl_layer *L, size_t T)
{
    const struct mdl_config *c = s->c;
    size_t H = c->hidden;
    matmul(s, s->router, c->experts, &L->router, s->xn, H, T);
    for (size_t t = 0; t < T; t++)
        route(s, L, t);
    memset(s->acc, 0, T * H * sizeof(float));
    for (uint32_t e = 0; e < c->experts; e++) {
        size_t n = 0;
        for (size_t t = 0; t < T; t++)
            for (uint32_t k = 0; k < c->top_k; k++)
                if (s->sel[t * c->top_k + k] == e) {
                    s->list[n] = (uint32_t)(t * c->top_k + k);
                    memcpy(s->gx + n * H, s->xn + t * H, H * sizeof(float));
                    n++;
                }
        if (n == 0)
            continue;
        mlp(s, &L->experts[e], s->gx, n, s->tmp);
        for (size_t i = 0; i < n; i++) {
            size_t t = s->list[i] / c->top_k;
            float w = s->sel_w[s->list[i]];
            for (size_t d = 0; d < H; d++)
                s->acc[t * H + d] += s->tmp[i * H + d] * w;
        }
    }
    for (size_t i = 0; i < T * H; i++)
        s->x[i] += s->acc[i];
}

static void ffn(struct cpu *s, uint32_t li, size_t T)
{
    const struct mdl_layer *L = &s->m->layers[li];
    size_t H = s->c->hidden;
    for (size_t t = 0; t < T; t++)
        rmsnorm(s->xn + t * H, s->x + t * H, &L->mlp_norm, H, s->c->rms_eps);
    if (L->moe) {
        moe(s, L, T);
        return;
    }
    mlp(s, &L->dense, s->xn, T, s->tmp);
    for (size_t i = 0; i < T * H; i++)
        s->x[i] += s->tmp[i];
}

/* ---- buffers ---- */

static void free_step_buffers(struct cpu *s)
{
    float **fs[] = { &s->x,   &s->xn,     &s->q,    &s->k,  &s->v,     &s->att, &s->tmp,
                     &s->acc, &s->router, &s->gate, &s->up, &s->sel_w, &s->gx };
    for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
        free(*fs[i]);
        *fs[i] = NULL;
    }
    free(s->tok_table);
    free(s->tok_pos);
    free(s->sel);
    free(s->list);
    s->tok_table = NULL;
    s->tok_pos = s->sel = s->list = NULL;
    s->cap_t = 0;
}

static int grow_step_buffers(struct cpu *s, size_t T)
{
    if (T <= s->cap_t)
        return 0;
    const struct mdl_config *c = s->c;
    free_step_buffers(s);
    size_t H = c->hidden, K = c->top_k ? c->top_k : 1, E = c->experts ? c->experts : 1;
    size_t I = c->inter > c->moe_inter ? c->inter : c->moe_inter;
    size_t rows = T * K; /* tokens an expert may see */
    size_t big = H > s->qd ? H : s->qd;
    s->x = malloc(T * H * sizeof(float));
    s->xn = malloc(T * H * sizeof(float));
    s->q = malloc(T * s->qd * sizeof(float));
    s->k = malloc(T * s->kvd * sizeof(float));
    s->v = malloc(T * s->kvd * sizeof(float));
    s->att = malloc(T * s->qd * sizeof(float));
    s->tmp = malloc(rows * big * sizeof(float));
    s->acc = malloc(T * H * sizeof(float));
    s->router = malloc(T * E * sizeof(float));
    s->gate = malloc((rows * I > E ? rows * I : E) * sizeof(float));
    s->up = malloc(rows * I * sizeof(float));
    s->sel = malloc(T * K * sizeof(uint32_t));
    s->sel_w = malloc(T * K * sizeof(float));
    s->list = malloc(rows * sizeof(uint32_t));
    s->gx = malloc(rows * H * sizeof(float));
    s->tok_table = malloc(T * sizeof(*s->tok_table));
    s->tok_pos = malloc(T * sizeof(uint32_t));
    if (!s->x || !s->xn || !s->q || !s->k || !s->v || !s->att || !s->tmp || !s->acc || !s->router ||
        !s->gate || !s->up || !s->sel || !s->sel_w || !s->list || !s->gx || !s->tok_table ||
        !s->tok_pos) {
        free_step_buffers(s);
        return cru_err_set(CRU_ENOMEM, "out of memory for a step of %zu tokens", T);
    }
    s->cap_t = T;
    return 0;
}

/* ---- the backend ---- */

static void cpu_free(void *state)
{
    struct cpu *s = state;
    if (!s)
        return;
    if (s->pool_ok)
        pool_stop(&s->pool, s->pool.n - 1);
    for (uint32_t l = 0; l < s->c->layers; l++) {
        if (s->kp)
            free(s->kp[l]);
        if (s->vp)
            free(s->vp[l]);
    }
    free(s->kp);
    free(s->vp);
    free(s->seen);
    for (uint32_t i = 0; s->wscratch && i < s->n_workers; i++)
        free(s->wscratch[i]);
    free(s->wscratch);
    free(s->inv_freq);
    free_step_buffers(s);
    free(s);
}

/* The pool, when not given: max_seqs sequences of max_ctx tokens, within a quarter of the
 * machine's memory, and at least one sequence (max_ctx is lowered to what the quarter holds). */
static int size_pool(struct cpu *s, const struct mdl_backend_opts *o)
{
    struct mdl_backend_limits *l = &s->lim;
    uint64_t per_block = l->block_bytes;
    uint64_t per_seq = (s->max_ctx + l->block_tokens - 1) / l->block_tokens;
    if (o->n_blocks) {
        l->n_blocks = o->n_blocks;
    } else {
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        uint64_t mem = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 1ull << 32;
        uint64_t fit = mem / 4 / per_block, want = per_seq * l->max_seqs;
        l->n_blocks = (uint32_t)(want < fit ? want : fit);
        if (l->n_blocks > (1u << 30))
            l->n_blocks = 1u << 30;
    }
    if (l->n_blocks < 1)
        return cru_err_set(CRU_ELIMIT, "cpu: no room for a KV block of %llu bytes",
                           (unsigned long long)per_block);
    if ((uint64_t)l->n_blocks * l->block_tokens < s->max_ctx)
        s->max_ctx = l->n_blocks * l->block_tokens;
    l->max_ctx = s->max_ctx;
    return 0;
}

static int cpu_load(void **state, const struct mdl_model *m, const struct mdl_backend_opts *o)
{
    *state = NULL;
    if (!o || o->version != MDL_BACKEND_OPTS_VERSION)
        return cru_err_set(CRU_EINVAL, "backend options: unknown version");
    if (o->max_seqs < 1 || o->max_seqs > MDL_MAX_SEQS || o->threads > MDL_MAX_THREADS ||
        o->block_tokens > MDL_MAX_BLOCK_TOKENS)
        return cru_err_set(CRU_ELIMIT,
                           "backend options: sequences 1..%d, threads 0..%d, block tokens 0..%d",
                           MDL_MAX_SEQS, MDL_MAX_THREADS, MDL_MAX_BLOCK_TOKENS);
    const struct mdl_config *c = &m->cfg;
    struct cpu *s = calloc(1, sizeof(*s));
    if (!s)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    s->m = m;
    s->c = c;
    s->max_ctx = o->max_ctx ? o->max_ctx : c->max_pos;
    if (s->max_ctx > c->max_pos)
        s->max_ctx = c->max_pos;
    if (s->max_ctx > (1u << 24))
        s->max_ctx = 1u << 24;
    s->qd = c->heads * c->head_dim;
    s->kvd = c->kv_heads * c->head_dim;
    struct mdl_backend_limits *l = &s->lim;
    l->max_seqs = o->max_seqs;
    l->block_tokens = o->block_tokens ? o->block_tokens : MDL_BLOCK_TOKENS;
    l->max_step_tokens = o->max_step_tokens ? o->max_step_tokens : MDL_STEP_TOKENS;
    l->block_bytes = (uint64_t)l->block_tokens * s->kvd * sizeof(float) * 2 * c->layers;
    l->weight_bytes = m->weight_bytes;
    uint32_t threads = o->threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n < 1 ? 1 : n > MDL_MAX_THREADS ? MDL_MAX_THREADS : (uint32_t)n;
    }
    int rc = size_pool(s, o);
    if (rc < 0)
        goto done;
    size_t maxcols = c->hidden;
    if (s->qd > maxcols)
        maxcols = s->qd;
    if (c->inter > maxcols)
        maxcols = c->inter;
    if (c->moe_inter > maxcols)
        maxcols = c->moe_inter;
    s->wscratch_len = maxcols + s->max_ctx;
    s->kp = calloc(c->layers, sizeof(float *));
    s->vp = calloc(c->layers, sizeof(float *));
    s->seen = malloc(l->n_blocks);
    s->inv_freq = malloc((c->rotary_dim / 2 + 1) * sizeof(float));
    s->wscratch = calloc(threads, sizeof(float *));
    if (!s->kp || !s->vp || !s->seen || !s->inv_freq || !s->wscratch) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    /* calloc: the pages of a large pool are only taken when a block is first written. */
    size_t per_layer = (size_t)l->n_blocks * l->block_tokens * s->kvd;
    for (uint32_t i = 0; i < c->layers; i++)
        if (!(s->kp[i] = calloc(per_layer, sizeof(float))) ||
            !(s->vp[i] = calloc(per_layer, sizeof(float)))) {
            rc = cru_err_set(CRU_ENOMEM, "out of memory for a KV pool of %u blocks (%llu bytes)",
                             l->n_blocks, (unsigned long long)(l->n_blocks * l->block_bytes));
            goto done;
        }
    s->n_workers = threads;
    for (uint32_t i = 0; i < threads; i++)
        if (!(s->wscratch[i] = malloc((s->wscratch_len + maxcols / 2 + 1) * sizeof(float)))) {
            rc = cru_err_set(CRU_ENOMEM, "out of memory");
            goto done;
        }
    /* As transformers: 1 / theta^(2i/dim) in fp32. */
    for (uint32_t i = 0; i < c->rotary_dim / 2; i++)
        s->inv_freq[i] = 1.0f / powf((float)c->rope_theta, (float)(2 * i) / (float)c->rotary_dim);
    if ((rc = pool_init(&s->pool, threads)) == 0)
        s->pool_ok = true;
done:
    if (rc < 0) {
        cpu_free(s);
        return rc;
    }
    *state = s;
    return 0;
}

static void cpu_limits(void *state, struct mdl_backend_limits *out)
{
    *out = ((struct cpu *)state)->lim;
}

static int cpu_forward(void *state, struct mdl_step *st, size_t n)
{
    struct cpu *s = state;
    const struct mdl_config *c = s->c;
    size_t T, H = c->hidden;
    int rc = mdl_steps_check(&s->lim, c->vocab, st, n, s->seen, &T);
    if (rc < 0 || (rc = grow_step_buffers(s, T)) < 0)
        return rc;
    size_t t = 0;
    for (size_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < st[i].n_ids; k++, t++) {
            s->tok_table[t] = st[i].blocks;
            s->tok_pos[t] = st[i].pos + k;
            for (size_t d = 0; d < H; d++)
                s->x[t * H + d] = mdl_weight_at(&s->m->embed, (size_t)st[i].ids[k] * H + d);
        }
    }
    for (uint32_t l = 0; l < c->layers; l++) {
        attention(s, l, T);
        ffn(s, l, T);
    }
    /* The final norm and the output projection, only for the rows asked for. */
    size_t rows = 0;
    t = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t first = st[i].all_logits ? 0 : st[i].n_ids - 1;
        for (uint32_t k = first; k < st[i].n_ids; k++, rows++)
            rmsnorm(s->xn + rows * H, s->x + (t + k) * H, &s->m->final_norm, H, c->rms_eps);
        t += st[i].n_ids;
    }
    size_t row = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nr = st[i].all_logits ? st[i].n_ids : 1;
        matmul(s, st[i].logits, c->vocab, &s->m->lm_head, s->xn + row * H, H, nr);
        row += nr;
    }
    return 0;
}

const struct mdl_backend mdl_backend_cpu = {
    .name = "cpu",
    .load = cpu_load,
    .forward = cpu_forward,
    .limits = cpu_limits,
    .free = cpu_free,
};
