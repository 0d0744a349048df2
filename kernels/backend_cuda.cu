/* kernels/backend_cuda: the CUDA backend: model/backend.h's table on one GPU.
 *
 * load() copies the weights to the device as bf16 (norms and the routing bias as fp32), packs
 * each expert's gate and up projections into one 2I x H matrix, and allocates a bf16 KV cache
 * of n_slots x max_ctx per layer. forward() runs every token of every step together, as
 * model/cpu.c does, in the same order of operations; the host only validates the steps,
 * uploads token ids, slots and positions once, and copies the logits back at the end. Steps of
 * at most GEMV_MAX_T tokens (decode) use the grouped GEMV for every linear layer, reading only
 * the chosen experts; longer steps use cuBLAS (bf16 inputs, fp32 accumulation and output), the
 * experts one GEMM each after reading the group sizes back (one wait per MoE layer). It does no
 * sampling (model/engine does, on the logits) and keeps no prefix cache of its own.
 */
#include "kernels/backend_cuda.h"

#include <cublas_v2.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_util.h"
#include "kernels/forward.h"
#include "lib/err.h"

/* Steps of up to this many tokens in all take the GEMV path. */
#define GEMV_MAX_T 16

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int rc_ = (x);                                                                             \
        if (rc_ < 0)                                                                               \
            return rc_;                                                                            \
    } while (0)

#define CUBLAS_CHECK(call)                                                                         \
    do {                                                                                           \
        cublasStatus_t cb_s_ = (call);                                                             \
        if (cb_s_ != CUBLAS_STATUS_SUCCESS)                                                        \
            return cru_err_set(CRU_EIO, "%s:%d: %s: cuBLAS status %d", __FILE__, __LINE__, #call,  \
                               (int)cb_s_);                                                        \
    } while (0)

struct dlayer {
    float *attn_norm, *mlp_norm, *q_norm, *k_norm, *bias;
    uint16_t *qkv, *o, *router; /* qkv: q, k and v stacked, qd + 2 kvd rows of H */
    uint16_t *gu, *down;        /* n_exp x 2I x H, n_exp x H x I */
    uint32_t inter, n_exp;
    bool moe;
};

struct cu {
    const struct mdl_model *m;
    const struct mdl_config *c;
    uint32_t n_slots, max_ctx, qd, kvd;
    uint32_t *len; /* host: tokens each slot holds */
    cudaStream_t st;
    cublasHandle_t blas;
    struct dlayer *L;
    uint16_t *embed, *lm_head;
    float *final_norm, *inv_freq;
    uint16_t *kc, *vc; /* layers x n_slots x max_ctx x kvd */
    void **allocs;     /* every device allocation, freed together */
    size_t n_allocs, cap_allocs;
    /* per step, grown to CAP_T tokens */
    uint32_t cap_t;
    int32_t *h_ints, *d_ints; /* ids, slots, positions, logit rows, two offset pairs, 0, 1 */
    int32_t *h_off;           /* pinned: expert offsets read back on the cuBLAS path */
    float *x, *delta, *xn, *qkv, *att, *router, *sel_w, *h, *y, *gu, *yg, *part_o, *part_ml,
        *logits;
    uint16_t *xbf, *hbf;
    int32_t *sel, *off, *perm, *act, *n_act;
    /* the decode graph: valid for steps of G_T tokens and G_R logit rows on these buffers */
    bool graphs;
    cudaGraphExec_t gexec;
    uint32_t g_t, g_r;
};

static int dalloc(struct cu *s, void **out, size_t bytes)
{
    *out = NULL;
    if (s->n_allocs == s->cap_allocs) {
        size_t cap = s->cap_allocs ? 2 * s->cap_allocs : 256;
        void **a = (void **)realloc(s->allocs, cap * sizeof(void *));
        if (!a)
            return cru_err_set(CRU_ENOMEM, "out of memory");
        s->allocs = a;
        s->cap_allocs = cap;
    }
    cudaError_t e = cudaMalloc(out, bytes ? bytes : 16);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return cru_err_set(CRU_ENOMEM, "cudaMalloc of %zu bytes: %s", bytes, cudaGetErrorString(e));
    }
    s->allocs[s->n_allocs++] = *out;
    return 0;
}

/* ---- weights ---- */

/* ROWS x COLS of W as bf16 at DST; a weight without data is made on the device from SEED. */
static int put_bf16(struct cu *s, uint16_t *dst, const struct mdl_weight *w, size_t rows,
                    size_t cols, uint64_t seed)
{
    size_t n = rows * cols;
    if (!w->data)
        return krn_fill_random_bf16(dst, n, seed, 1.0f / sqrtf((float)cols), 0.0f, s->st);
    if (w->dtype == MDL_DT_BF16) {
        CRU_CUDA_CHECK(cudaMemcpy(dst, w->data, n * 2, cudaMemcpyHostToDevice));
        return 0;
    }
    uint16_t *tmp = (uint16_t *)malloc(n * 2);
    if (!tmp)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        tmp[i] = mdl_f32_to_bf16(mdl_weight_at(w, i));
    cudaError_t e = cudaMemcpy(dst, tmp, n * 2, cudaMemcpyHostToDevice);
    free(tmp);
    CRU_CUDA_CHECK(e);
    return 0;
}

static int new_bf16(struct cu *s, uint16_t **out, const struct mdl_weight *w, size_t rows,
                    size_t cols, uint64_t seed)
{
    TRY(dalloc(s, (void **)out, rows * cols * 2));
    return put_bf16(s, *out, w, rows, cols, seed);
}

/* N floats of W (a norm or a bias); without data: 1 + noise for a norm, noise for a bias. */
static int new_f32(struct cu *s, float **out, const struct mdl_weight *w, size_t n, uint64_t seed,
                   float shift)
{
    TRY(dalloc(s, (void **)out, n * 4));
    if (!w->data)
        return krn_fill_random_f32(*out, n, seed, 0.1f, shift, s->st);
    float *tmp = (float *)malloc(n * 4);
    if (!tmp)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        tmp[i] = mdl_weight_at(w, i);
    cudaError_t e = cudaMemcpy(*out, tmp, n * 4, cudaMemcpyHostToDevice);
    free(tmp);
    CRU_CUDA_CHECK(e);
    return 0;
}

/* Gate and up of N_EXP MLPs packed as n_exp x [gate; up] x H, down as n_exp x H x I. */
static int put_mlps(struct cu *s, struct dlayer *d, const struct mdl_mlp *mlps, uint32_t n_exp,
                    uint32_t inter, uint64_t seed)
{
    size_t H = s->c->hidden, I = inter;
    d->inter = inter;
    d->n_exp = n_exp;
    TRY(dalloc(s, (void **)&d->gu, (size_t)n_exp * 2 * I * H * 2));
    TRY(dalloc(s, (void **)&d->down, (size_t)n_exp * H * I * 2));
    for (uint32_t e = 0; e < n_exp; e++) {
        uint64_t sd = seed + 16ull * e;
        TRY(put_bf16(s, d->gu + (size_t)e * 2 * I * H, &mlps[e].gate, I, H, sd));
        TRY(put_bf16(s, d->gu + (size_t)e * 2 * I * H + I * H, &mlps[e].up, I, H, sd + 1));
        TRY(put_bf16(s, d->down + (size_t)e * H * I, &mlps[e].down, H, I, sd + 2));
    }
    return 0;
}

static int put_layer(struct cu *s, uint32_t li, uint64_t seed)
{
    const struct mdl_config *c = s->c;
    const struct mdl_layer *L = &s->m->layers[li];
    struct dlayer *d = &s->L[li];
    bool whole = c->arch == MDL_ARCH_MINIMAX_M2;
    size_t H = c->hidden;
    uint64_t sd = seed + 1000003ull * (li + 1);
    TRY(new_f32(s, &d->attn_norm, &L->attn_norm, H, sd, 1.0f));
    TRY(new_f32(s, &d->mlp_norm, &L->mlp_norm, H, sd + 1, 1.0f));
    TRY(new_f32(s, &d->q_norm, &L->q_norm, whole ? s->qd : c->head_dim, sd + 2, 1.0f));
    TRY(new_f32(s, &d->k_norm, &L->k_norm, whole ? s->kvd : c->head_dim, sd + 3, 1.0f));
    TRY(dalloc(s, (void **)&d->qkv, ((size_t)s->qd + 2 * s->kvd) * H * 2));
    TRY(put_bf16(s, d->qkv, &L->q, s->qd, H, sd + 4));
    TRY(put_bf16(s, d->qkv + (size_t)s->qd * H, &L->k, s->kvd, H, sd + 5));
    TRY(put_bf16(s, d->qkv + ((size_t)s->qd + s->kvd) * H, &L->v, s->kvd, H, sd + 6));
    TRY(new_bf16(s, &d->o, &L->o, H, s->qd, sd + 7));
    d->moe = L->moe;
    if (!L->moe)
        return put_mlps(s, d, &L->dense, 1, c->inter, sd + 100);
    TRY(new_bf16(s, &d->router, &L->router, c->experts, H, sd + 8));
    bool bias = L->bias.data || (!s->m->layers[li].q.data && c->routing_bias);
    if (bias)
        TRY(new_f32(s, &d->bias, &L->bias, c->experts, sd + 9, 0.0f));
    return put_mlps(s, d, L->experts, c->experts, c->moe_inter, sd + 100);
}

/* ---- state ---- */

static void cu_free(void *state)
{
    struct cu *s = (struct cu *)state;
    if (!s)
        return;
    if (s->st)
        cudaStreamSynchronize(s->st);
    for (size_t i = 0; i < s->n_allocs; i++)
        cudaFree(s->allocs[i]);
    free(s->allocs);
    cudaFreeHost(s->h_ints);
    cudaFreeHost(s->h_off);
    if (s->gexec)
        cudaGraphExecDestroy(s->gexec);
    if (s->blas)
        cublasDestroy(s->blas);
    if (s->st)
        cudaStreamDestroy(s->st);
    free(s->L);
    free(s->len);
    free(s);
}

static int cu_init(struct cu *s, const struct mdl_model *m, const struct mdl_backend_opts *o,
                   uint64_t seed)
{
    const struct mdl_config *c = &m->cfg;
    s->m = m;
    s->c = c;
    s->n_slots = o->n_slots;
    s->max_ctx = o->max_ctx ? o->max_ctx : c->max_pos;
    if (s->max_ctx > c->max_pos)
        s->max_ctx = c->max_pos;
    if (s->max_ctx > (1u << 24))
        s->max_ctx = 1u << 24;
    s->qd = c->heads * c->head_dim;
    s->kvd = c->kv_heads * c->head_dim;
    s->graphs = true;
    if (c->head_dim > KRN_MAX_HEAD_DIM || c->experts > KRN_MAX_EXPERTS || c->top_k > KRN_MAX_TOPK)
        return cru_err_set(CRU_ELIMIT, "cuda: head_dim at most %d, experts %d, top-k %d",
                           KRN_MAX_HEAD_DIM, KRN_MAX_EXPERTS, KRN_MAX_TOPK);
    if (!(s->len = (uint32_t *)calloc(s->n_slots, sizeof(uint32_t))) ||
        !(s->L = (struct dlayer *)calloc(c->layers, sizeof(struct dlayer))))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    int dev = 0;
    TRY(cru_cuda_device_count(&dev));
    if (dev == 0)
        return cru_err_set(CRU_EIO, "cuda: no CUDA device is visible");
    CRU_CUDA_CHECK(cudaStreamCreateWithFlags(&s->st, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&s->blas));
    CUBLAS_CHECK(cublasSetStream(s->blas, s->st));
    size_t H = c->hidden;
    TRY(new_bf16(s, &s->embed, &m->embed, c->vocab, H, seed + 1));
    if (c->tied && m->lm_head.data == m->embed.data)
        s->lm_head = s->embed;
    else
        TRY(new_bf16(s, &s->lm_head, &m->lm_head, c->vocab, H, seed + 2));
    TRY(new_f32(s, &s->final_norm, &m->final_norm, H, seed + 3, 1.0f));
    for (uint32_t l = 0; l < c->layers; l++)
        TRY(put_layer(s, l, seed));
    /* As transformers and the CPU reference: 1 / theta^(2i/dim) in fp32, made on the host. */
    uint32_t half = c->rotary_dim / 2;
    float inv[KRN_MAX_HEAD_DIM];
    for (uint32_t i = 0; i < half; i++)
        inv[i] = 1.0f / powf((float)c->rope_theta, (float)(2 * i) / (float)c->rotary_dim);
    TRY(dalloc(s, (void **)&s->inv_freq, (half + 1) * sizeof(float)));
    CRU_CUDA_CHECK(cudaMemcpy(s->inv_freq, inv, half * sizeof(float), cudaMemcpyHostToDevice));
    size_t kv = (size_t)c->layers * s->n_slots * s->max_ctx * s->kvd * 2;
    TRY(dalloc(s, (void **)&s->kc, kv));
    TRY(dalloc(s, (void **)&s->vc, kv));
    CRU_CUDA_CHECK(cudaHostAlloc((void **)&s->h_off, (c->experts + 1) * sizeof(int32_t), 0));
    CRU_CUDA_CHECK(cudaStreamSynchronize(s->st));
    return 0;
}

static int load_common(void **state, const struct mdl_model *m, const struct mdl_backend_opts *o,
                       uint64_t seed)
{
    *state = NULL;
    if (!o || o->version != MDL_BACKEND_OPTS_VERSION)
        return cru_err_set(CRU_EINVAL, "backend options: unknown version");
    if (o->n_slots < 1 || o->n_slots > MDL_MAX_SLOTS)
        return cru_err_set(CRU_ELIMIT, "backend options: slots 1..%d", MDL_MAX_SLOTS);
    struct cu *s = (struct cu *)calloc(1, sizeof(*s));
    if (!s)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    int rc = cu_init(s, m, o, seed);
    if (rc < 0) {
        cu_free(s);
        return rc;
    }
    *state = s;
    return 0;
}

static int cu_load(void **state, const struct mdl_model *m, const struct mdl_backend_opts *o)
{
    return load_common(state, m, o, 0x5eed);
}

int mdl_cuda_load_random(void **state, const struct mdl_model *m, const struct mdl_backend_opts *o,
                         uint64_t seed)
{
    return load_common(state, m, o, seed);
}

int mdl_cuda_fake_context(void *state, uint32_t slot, uint32_t len)
{
    struct cu *s = (struct cu *)state;
    if (slot >= s->n_slots || len > s->max_ctx)
        return cru_err_set(CRU_EINVAL, "cuda: slot %u or length %u out of range", slot, len);
    size_t per = (size_t)s->max_ctx * s->kvd;
    for (uint32_t l = 0; l < s->c->layers; l++) {
        size_t at = ((size_t)l * s->n_slots + slot) * per;
        TRY(krn_fill_random_bf16(s->kc + at, (size_t)len * s->kvd, 77 + l, 1.0f, 0.0f, s->st));
        TRY(krn_fill_random_bf16(s->vc + at, (size_t)len * s->kvd, 99 + l, 1.0f, 0.0f, s->st));
    }
    CRU_CUDA_CHECK(cudaStreamSynchronize(s->st));
    s->len[slot] = len;
    return 0;
}

static void cu_limits(void *state, uint32_t *n_slots, uint32_t *max_ctx)
{
    struct cu *s = (struct cu *)state;
    *n_slots = s->n_slots;
    *max_ctx = s->max_ctx;
}

/* ---- step buffers ---- */

static size_t part_rows(uint32_t t, uint32_t heads)
{
    return (size_t)t * heads + 8192; /* at least T * heads * att_splits() */
}

static int grow(struct cu *s, uint32_t T)
{
    if (T <= s->cap_t)
        return 0;
    const struct mdl_config *c = s->c;
    size_t H = c->hidden, E = c->experts ? c->experts : 1, K = c->top_k ? c->top_k : 1;
    size_t I = c->inter > c->moe_inter ? c->inter : c->moe_inter;
    size_t wide = H > s->qd ? H : s->qd;
    wide = wide > I ? wide : I;
    /* The old buffers stay allocated until the state is freed: a step only ever grows them a
     * few times (doubling), and freeing needs no bookkeeping. */
    uint32_t cap = s->cap_t ? s->cap_t : 16;
    while (cap < T)
        cap *= 2;
    T = cap;
    size_t P = (size_t)T * K; /* (token, expert) pairs */
    if (s->gexec)
        cudaGraphExecDestroy(s->gexec);
    s->gexec = NULL;
    cudaFreeHost(s->h_ints);
    s->h_ints = NULL;
    CRU_CUDA_CHECK(cudaHostAlloc((void **)&s->h_ints, (4 * (size_t)T + 8) * sizeof(int32_t), 0));
    TRY(dalloc(s, (void **)&s->d_ints, (4 * (size_t)T + 8) * sizeof(int32_t)));
    TRY(dalloc(s, (void **)&s->x, (size_t)T * H * 4));
    TRY(dalloc(s, (void **)&s->delta, (size_t)T * H * 4));
    TRY(dalloc(s, (void **)&s->xn, (size_t)T * H * 4));
    TRY(dalloc(s, (void **)&s->xbf, P * wide * 2));
    TRY(dalloc(s, (void **)&s->qkv, (size_t)T * (s->qd + 2 * s->kvd) * 4));
    TRY(dalloc(s, (void **)&s->att, (size_t)T * s->qd * 4));
    TRY(dalloc(s, (void **)&s->router, (size_t)T * E * 4));
    TRY(dalloc(s, (void **)&s->sel, P * 4));
    TRY(dalloc(s, (void **)&s->sel_w, P * 4));
    TRY(dalloc(s, (void **)&s->h, P * I * 4));
    TRY(dalloc(s, (void **)&s->hbf, P * I * 2));
    TRY(dalloc(s, (void **)&s->gu, P * 2 * I * 4));
    TRY(dalloc(s, (void **)&s->y, P * H * 4));
    TRY(dalloc(s, (void **)&s->yg, P * H * 4));
    TRY(dalloc(s, (void **)&s->off, (E + 1) * 4));
    TRY(dalloc(s, (void **)&s->perm, P * 4));
    TRY(dalloc(s, (void **)&s->act, E * 4));
    TRY(dalloc(s, (void **)&s->n_act, 4));
    TRY(dalloc(s, (void **)&s->part_o, part_rows(T, c->heads) * c->head_dim * 4));
    TRY(dalloc(s, (void **)&s->part_ml, part_rows(T, c->heads) * 2 * 4));
    TRY(dalloc(s, (void **)&s->logits, (size_t)T * c->vocab * 4));
    s->cap_t = T;
    return 0;
}

/* ---- the forward ---- */

/* Y (T rows of ROWS floats, row stride LDY) = W (ROWS x COLS) times each of T inputs: X
 * (fp32, stride COLS) on the GEMV path, XBF (bf16, stride COLS) through cuBLAS. */
static int linear(struct cu *s, float *y, uint32_t ldy, const uint16_t *w, uint32_t rows,
                  uint32_t cols, const float *x, const uint16_t *xbf, uint32_t T,
                  const int32_t *off, const int32_t *act0, const int32_t *one)
{
    if (T <= GEMV_MAX_T) {
        struct krn_gemv_args a = {};
        a.out = y;
        a.w = w;
        a.x = x;
        a.off = off;
        a.act = act0;
        a.n_act = one;
        a.rows = rows;
        a.cols = cols;
        a.ldx = cols;
        a.ldo = ldy;
        a.in_div = 1;
        a.max_groups = 1;
        return krn_grouped_gemv(&a, s->st);
    }
    float alpha = 1, beta = 0;
    CUBLAS_CHECK(cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)T, (int)cols,
                              &alpha, w, CUDA_R_16BF, (int)cols, xbf, CUDA_R_16BF, (int)cols, &beta,
                              y, CUDA_R_32F, (int)ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return 0;
}

struct stepinfo {
    uint32_t T, R, maxn;
    const int32_t *ids, *slot, *pos, *rows, *offT, *offR, *act0, *one, *chunk;
};

/* Attention splits: enough warps to fill the card at decode, chunks of at least 32 keys. A
 * function of the token count and the context bound alone, so that a graph keeps it; the
 * chunk length, which follows the longest context of the step, travels in device memory. */
static uint32_t att_splits(const struct cu *s, uint32_t T)
{
    uint32_t want = (8192 + T * s->c->heads - 1) / (T * s->c->heads);
    uint32_t most = (s->max_ctx + 31) / 32;
    uint32_t n = want < most ? want : most;
    n = n < KRN_MAX_SPLITS ? n : KRN_MAX_SPLITS;
    return n ? n : 1;
}

/* The experts go through cuBLAS once they average more than 8 tokens each. */
static bool experts_big(const struct cu *s, uint32_t T)
{
    return (uint64_t)T * s->c->top_k > 8ull * s->c->experts;
}

static int attention_block(struct cu *s, uint32_t li, const struct stepinfo *si)
{
    const struct mdl_config *c = s->c;
    const struct dlayer *d = &s->L[li];
    uint32_t T = si->T, H = c->hidden;
    const float *delta = li == 0 ? NULL : s->delta;
    TRY(krn_add_rmsnorm(s->x, delta, d->attn_norm, s->xn, T > GEMV_MAX_T ? s->xbf : NULL, T, H,
                        c->rms_eps, s->st));
    uint32_t ld = s->qd + 2 * s->kvd; /* one launch for the three projections */
    TRY(linear(s, s->qkv, ld, d->qkv, ld, H, s->xn, s->xbf, T, si->offT, si->act0, si->one));
    size_t layer_kv = (size_t)li * s->n_slots * s->max_ctx * s->kvd;
    struct krn_qk_args qa = {};
    qa.q = s->qkv;
    qa.k = s->qkv + s->qd;
    qa.v = s->qkv + s->qd + s->kvd;
    qa.ld = ld;
    qa.kc = s->kc + layer_kv;
    qa.vc = s->vc + layer_kv;
    qa.q_norm = d->q_norm;
    qa.k_norm = d->k_norm;
    qa.inv_freq = s->inv_freq;
    qa.tok_slot = si->slot;
    qa.tok_pos = si->pos;
    qa.t = T;
    qa.heads = c->heads;
    qa.kv_heads = c->kv_heads;
    qa.hd = c->head_dim;
    qa.rot = c->rotary_dim;
    qa.max_ctx = s->max_ctx;
    qa.whole = c->arch == MDL_ARCH_MINIMAX_M2;
    qa.eps = c->rms_eps;
    TRY(krn_qk_norm_rope(&qa, s->st));
    uint32_t n_split = att_splits(s, T);
    struct krn_att_args aa = {};
    aa.out = s->att;
    aa.q = s->qkv;
    aa.q_ld = ld;
    aa.kc = qa.kc;
    aa.vc = qa.vc;
    aa.tok_slot = si->slot;
    aa.tok_pos = si->pos;
    aa.part_o = s->part_o;
    aa.part_ml = s->part_ml;
    aa.t = T;
    aa.heads = c->heads;
    aa.kv_heads = c->kv_heads;
    aa.hd = c->head_dim;
    aa.max_ctx = s->max_ctx;
    aa.n_split = n_split;
    aa.chunk = 1;
    aa.chunk_dev = si->chunk;
    TRY(krn_attention(&aa, s->st));
    if (T > GEMV_MAX_T)
        TRY(krn_to_bf16(s->xbf, s->att, (size_t)T * s->qd, s->st));
    return linear(s, s->delta, H, d->o, H, s->qd, s->att, s->xbf, T, si->offT, si->act0, si->one);
}

/* The experts of a long step: one cuBLAS GEMM per expert with tokens, after reading the
 * group offsets back. */
static int experts_gemm(struct cu *s, const struct dlayer *d, uint32_t T, uint32_t K)
{
    uint32_t H = s->c->hidden, I = d->inter, E = d->n_exp, P = T * K;
    CRU_CUDA_CHECK(cudaMemcpyAsync(s->h_off, s->off, (E + 1) * sizeof(int32_t),
                                   cudaMemcpyDeviceToHost, s->st));
    TRY(krn_gather_bf16(s->xbf, s->xn, s->perm, P, K, H, s->st));
    CRU_CUDA_CHECK(cudaStreamSynchronize(s->st));
    float alpha = 1, beta = 0;
    for (uint32_t e = 0; e < E; e++) {
        int n = s->h_off[e + 1] - s->h_off[e];
        if (n == 0)
            continue;
        size_t at = (size_t)s->h_off[e];
        CUBLAS_CHECK(cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)(2 * I), n, (int)H,
                                  &alpha, d->gu + (size_t)e * 2 * I * H, CUDA_R_16BF, (int)H,
                                  s->xbf + at * H, CUDA_R_16BF, (int)H, &beta, s->gu + at * 2 * I,
                                  CUDA_R_32F, (int)(2 * I), CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
    }
    TRY(krn_swiglu_bf16(s->hbf, s->gu, P, I, s->st));
    for (uint32_t e = 0; e < E; e++) {
        int n = s->h_off[e + 1] - s->h_off[e];
        if (n == 0)
            continue;
        size_t at = (size_t)s->h_off[e];
        CUBLAS_CHECK(cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)H, n, (int)I, &alpha,
                                  d->down + (size_t)e * H * I, CUDA_R_16BF, (int)I, s->hbf + at * I,
                                  CUDA_R_16BF, (int)I, &beta, s->yg + at * H, CUDA_R_32F, (int)H,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    return krn_scatter_rows(s->y, s->yg, s->perm, P, H, s->st);
}

/* The experts of a short step: two grouped GEMVs over the chosen experts only. */
static int experts_gemv(struct cu *s, const struct dlayer *d, uint32_t T, uint32_t K)
{
    uint32_t H = s->c->hidden, I = d->inter, P = T * K;
    struct krn_gemv_args a = {};
    a.out = s->h;
    a.w = d->gu;
    a.x = s->xn;
    a.off = s->off;
    a.perm = s->perm;
    a.act = s->act;
    a.n_act = s->n_act;
    a.w_stride = (size_t)2 * I * H;
    a.rows = I;
    a.cols = H;
    a.ldx = H;
    a.ldo = I;
    a.in_div = K;
    a.max_groups = P < d->n_exp ? P : d->n_exp;
    a.swiglu = 1;
    TRY(krn_grouped_gemv(&a, s->st));
    a.out = s->y;
    a.w = d->down;
    a.x = s->h;
    a.w_stride = (size_t)H * I;
    a.rows = H;
    a.cols = I;
    a.ldx = I;
    a.ldo = H;
    a.in_div = 1;
    a.swiglu = 0;
    return krn_grouped_gemv(&a, s->st);
}

static int ffn_block(struct cu *s, uint32_t li, const struct stepinfo *si)
{
    const struct mdl_config *c = s->c;
    const struct dlayer *d = &s->L[li];
    uint32_t T = si->T, H = c->hidden;
    bool big = T > GEMV_MAX_T;
    TRY(krn_add_rmsnorm(s->x, s->delta, d->mlp_norm, s->xn, big ? s->xbf : NULL, T, H, c->rms_eps,
                        s->st));
    if (!d->moe) {
        uint32_t I = d->inter;
        if (!big) {
            struct krn_gemv_args a = {};
            a.out = s->h;
            a.w = d->gu;
            a.x = s->xn;
            a.off = si->offT;
            a.act = si->act0;
            a.n_act = si->one;
            a.rows = I;
            a.cols = H;
            a.ldx = H;
            a.ldo = I;
            a.in_div = 1;
            a.max_groups = 1;
            a.swiglu = 1;
            TRY(krn_grouped_gemv(&a, s->st));
            return linear(s, s->delta, H, d->down, H, I, s->h, NULL, T, si->offT, si->act0,
                          si->one);
        }
        TRY(linear(s, s->gu, 2 * I, d->gu, 2 * I, H, NULL, s->xbf, T, NULL, NULL, NULL));
        TRY(krn_swiglu_bf16(s->hbf, s->gu, T, I, s->st));
        return linear(s, s->delta, H, d->down, H, I, NULL, s->hbf, T, NULL, NULL, NULL);
    }
    uint32_t E = c->experts, K = c->top_k;
    TRY(linear(s, s->router, E, d->router, E, H, s->xn, s->xbf, T, si->offT, si->act0, si->one));
    TRY(krn_router_topk(s->sel, s->sel_w, s->router, d->bias, T, E, K,
                        c->arch == MDL_ARCH_MINIMAX_M2,
                        c->arch == MDL_ARCH_MINIMAX_M2 || c->norm_topk_prob, s->st));
    TRY(krn_moe_group(s->off, s->perm, s->act, s->n_act, s->sel, T * K, E, s->st));
    if (experts_big(s, T))
        TRY(experts_gemm(s, d, T, K));
    else
        TRY(experts_gemv(s, d, T, K));
    return krn_moe_combine(s->delta, s->y, s->sel_w, T, K, H, s->st);
}

static int enqueue(struct cu *s, const struct stepinfo *sp);
static int capture(struct cu *s, const struct stepinfo *si);

static int check_steps(struct cu *s, const struct mdl_step *st, size_t n, uint32_t *T, uint32_t *R)
{
    uint64_t t = 0, r = 0;
    if (n == 0)
        return cru_err_set(CRU_EINVAL, "no steps");
    for (size_t i = 0; i < n; i++) {
        if (st[i].slot >= s->n_slots)
            return cru_err_set(CRU_EINVAL, "step %zu: slot %u of %u", i, st[i].slot, s->n_slots);
        for (size_t j = 0; j < i; j++)
            if (st[j].slot == st[i].slot)
                return cru_err_set(CRU_EINVAL, "steps %zu and %zu: the same slot %u", j, i,
                                   st[i].slot);
        if (st[i].n_ids == 0 || !st[i].ids || !st[i].logits)
            return cru_err_set(CRU_EINVAL, "step %zu: no tokens or no logits buffer", i);
        if (st[i].pos > s->len[st[i].slot])
            return cru_err_set(CRU_EINVAL, "step %zu: position %u past the %u tokens of slot %u", i,
                               st[i].pos, s->len[st[i].slot], st[i].slot);
        if ((uint64_t)st[i].pos + st[i].n_ids > s->max_ctx)
            return cru_err_set(CRU_ELIMIT, "step %zu: %u + %u tokens exceed the context of %u", i,
                               st[i].pos, st[i].n_ids, s->max_ctx);
        for (uint32_t k = 0; k < st[i].n_ids; k++)
            if (st[i].ids[k] < 0 || (uint32_t)st[i].ids[k] >= s->c->vocab)
                return cru_err_set(CRU_EINVAL, "step %zu: token id %d outside the vocabulary (%u)",
                                   i, st[i].ids[k], s->c->vocab);
        t += st[i].n_ids;
        r += st[i].all_logits ? st[i].n_ids : 1;
    }
    if (t > (1u << 20))
        return cru_err_set(CRU_ELIMIT, "a step of %llu tokens (at most %u)", (unsigned long long)t,
                           1u << 20);
    *T = (uint32_t)t;
    *R = (uint32_t)r;
    return 0;
}

static int run(struct cu *s, struct mdl_step *st, size_t n)
{
    const struct mdl_config *c = s->c;
    uint32_t T = 0, R = 0;
    TRY(check_steps(s, st, n, &T, &R));
    TRY(grow(s, T));
    int32_t *hi = s->h_ints;
    struct stepinfo si = {};
    si.T = T;
    si.R = R;
    uint32_t t = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < st[i].n_ids; k++, t++) {
            hi[t] = st[i].ids[k];
            hi[T + t] = (int32_t)st[i].slot;
            hi[2 * T + t] = (int32_t)(st[i].pos + k);
            if (st[i].all_logits || k + 1 == st[i].n_ids)
                hi[3 * T + r++] = (int32_t)t;
        }
        if (st[i].pos + st[i].n_ids > si.maxn)
            si.maxn = st[i].pos + st[i].n_ids;
    }
    int32_t *tail = hi + 4 * T;
    tail[0] = 0;
    tail[1] = (int32_t)T;
    tail[2] = 0;
    tail[3] = (int32_t)R;
    tail[4] = 0;
    tail[5] = 1;
    int32_t *d = s->d_ints;
    si.ids = d;
    si.slot = d + T;
    si.pos = d + 2 * T;
    si.rows = d + 3 * T;
    si.offT = d + 4 * T;
    si.offR = d + 4 * T + 2;
    si.act0 = d + 4 * T + 4;
    si.one = d + 4 * T + 5;
    si.chunk = d + 4 * T + 6;
    tail[6] = (int32_t)((si.maxn + att_splits(s, T) - 1) / att_splits(s, T));
    CRU_CUDA_CHECK(cudaMemcpyAsync(s->d_ints, hi, (4 * (size_t)T + 8) * sizeof(int32_t),
                                   cudaMemcpyHostToDevice, s->st));
    if (s->graphs && T <= GEMV_MAX_T && R <= GEMV_MAX_T && !experts_big(s, T)) {
        if (!s->gexec || s->g_t != T || s->g_r != R)
            TRY(capture(s, &si));
        CRU_CUDA_CHECK(cudaGraphLaunch(s->gexec, s->st));
    } else {
        TRY(enqueue(s, &si));
    }
    size_t row = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nr = st[i].all_logits ? st[i].n_ids : 1;
        CRU_CUDA_CHECK(cudaMemcpyAsync(st[i].logits, s->logits + row * c->vocab,
                                       nr * c->vocab * sizeof(float), cudaMemcpyDeviceToHost,
                                       s->st));
        row += nr;
    }
    CRU_CUDA_CHECK(cudaStreamSynchronize(s->st));
    for (size_t i = 0; i < n; i++)
        s->len[st[i].slot] = st[i].pos + st[i].n_ids;
    return 0;
}

/* The whole forward of a step whose ids, slots, positions and rows are on the device. */
static int enqueue(struct cu *s, const struct stepinfo *sp)
{
    const struct mdl_config *c = s->c;
    struct stepinfo si = *sp;
    uint32_t T = si.T, R = si.R, H = c->hidden;
    TRY(krn_embed(s->x, s->embed, si.ids, T, H, s->st));
    for (uint32_t l = 0; l < c->layers; l++) {
        TRY(attention_block(s, l, &si));
        TRY(ffn_block(s, l, &si));
    }
    TRY(krn_add_rmsnorm(s->x, s->delta, s->final_norm, s->xn, NULL, T, H, c->rms_eps, s->st));
    if (R <= GEMV_MAX_T) {
        struct krn_gemv_args a = {};
        a.out = s->logits;
        a.w = s->lm_head;
        a.x = s->xn;
        a.off = si.offR;
        a.perm = si.rows;
        a.act = si.act0;
        a.n_act = si.one;
        a.rows = c->vocab;
        a.cols = H;
        a.ldx = H;
        a.ldo = c->vocab;
        a.in_div = 1;
        a.max_groups = 1;
        a.out_by_j = 1;
        TRY(krn_grouped_gemv(&a, s->st));
    } else {
        TRY(krn_gather_bf16(s->xbf, s->xn, si.rows, R, 1, H, s->st));
        TRY(linear(s, s->logits, c->vocab, s->lm_head, c->vocab, H, NULL, s->xbf, R, NULL, NULL,
                   NULL));
    }
    return 0;
}

/* Records enqueue() as a graph for steps of this token and row count. */
static int capture(struct cu *s, const struct stepinfo *si)
{
    if (s->gexec)
        cudaGraphExecDestroy(s->gexec);
    s->gexec = NULL;
    CRU_CUDA_CHECK(cudaStreamBeginCapture(s->st, cudaStreamCaptureModeThreadLocal));
    int rc = enqueue(s, si);
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(s->st, &g);
    if (rc < 0) {
        if (g)
            cudaGraphDestroy(g);
        return rc;
    }
    CRU_CUDA_CHECK(e);
    e = cudaGraphInstantiate(&s->gexec, g, 0);
    cudaGraphDestroy(g);
    CRU_CUDA_CHECK(e);
    s->g_t = si->T;
    s->g_r = si->R;
    return 0;
}

void mdl_cuda_set_graphs(void *state, bool on)
{
    ((struct cu *)state)->graphs = on;
}

static int cu_forward(void *state, struct mdl_step *st, size_t n)
{
    struct cu *s = (struct cu *)state;
    int rc = run(s, st, n);
    if (rc < 0)
        cudaStreamSynchronize(s->st); /* nothing queued may outlive a failed call's buffers */
    return rc;
}

extern "C" const struct mdl_backend mdl_backend_cuda = {
    "cuda", cu_load, cu_forward, cu_limits, cu_free,
};
