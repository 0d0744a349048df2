/* kernels/backend_cuda: the CUDA backend: model/backend.h's table on one GPU.
 *
 * load() picks the device, checks that the weights fit before copying them, copies them as bf16
 * (norms and the routing bias as fp32) through two pinned staging buffers, packs each expert's
 * gate and up projections into one 2I x H matrix, allocates the buffers of a step of
 * max_step_tokens tokens, and gives what the memory share leaves to the paged KV cache: per
 * layer a pool of n_blocks blocks of block_tokens x kvd bf16 for K and one for V (see
 * krn_kv_at). forward() runs every token of every step together, as model/cpu.c does, in the
 * same order of operations; the host only validates the steps, uploads token ids, positions,
 * where each token's block table starts, and the tables themselves (into buffers fixed at
 * load, so that a captured graph stays valid as tables change), and copies the logits back.
 * Steps of at most GEMV_MAX_T tokens (decode) use the grouped GEMV for every linear layer,
 * reading only the chosen experts; longer steps use cuBLAS (bf16 inputs, fp32 accumulation and
 * output), the experts one GEMM each after reading the group sizes back (one wait per MoE
 * layer). It does no sampling (model/engine does, on the logits) and does not know which
 * sequence owns a block (the engine does).
 */
#include "kernels/backend_cuda.h"

#include <cublas_v2.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cuda_util.h"
#include "kernels/forward.h"
#include "lib/err.h"
#include "lib/log.h"

/* Steps of up to this many tokens in all take the GEMV path. */
#define GEMV_MAX_T 16
/* Rows of logits computed at once by a long step (the buffer's rows: 300 MiB at a vocabulary
 * of 150k); more are computed and copied out in turns. */
#define LOGIT_ROWS 512
/* Bound on max_step_tokens. */
#define MAX_STEP_TOKENS (1u << 20)
/* Device memory the pool leaves free whatever the share: cuBLAS's workspace and the graphs
 * are allocated after load. */
#define HEADROOM ((uint64_t)256 << 20)
/* A pool sized from memory smaller than this is a failure rather than a backend that can hold
 * one short sequence. */
#define MIN_BLOCKS 4
/* The two pinned buffers that weights pass through on their way to the device. */
#define STAGE_BYTES  ((size_t)64 << 20)
#define STAGE_PIECES 4096

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

/* One copy waiting in a staging buffer: LEN bytes at AT for the device address DST. */
struct stage_piece {
    void *dst;
    size_t at, len;
};

/* Host-to-device copies of the weights: one buffer fills (a memcpy out of the mapped
 * checkpoint, or a conversion to bf16) while the other's copies run. */
struct stager {
    uint8_t *buf[2];
    cudaEvent_t done[2];
    bool pending[2]; /* DONE[i] recorded after copies out of BUF[i] */
    int cur;
    size_t fill, n_piece;
    struct stage_piece piece[STAGE_PIECES];
};

struct cu {
    const struct mdl_model *m;
    const struct mdl_config *c;
    struct mdl_backend_limits lim;
    uint32_t qd, kvd;
    uint32_t max_tab; /* table entries one sequence may need: ceil(max_ctx / block_tokens) */
    int dev;
    char dev_name[256];
    uint8_t *seen; /* host: mdl_steps_check's scratch, one byte a block */
    cudaStream_t st;
    cublasHandle_t blas;
    struct dlayer *L;
    uint16_t *embed, *lm_head;
    float *final_norm, *inv_freq;
    uint16_t *kc, *vc;       /* layers x n_blocks x block_tokens x kvd */
    size_t layer_kv;         /* elements of one layer's pool: n_blocks x block_tokens x kvd */
    uint32_t *h_tab, *d_tab; /* every step's block table, one after another (pinned; device) */
    void **allocs;           /* every device allocation, freed together */
    size_t n_allocs, cap_allocs;
    struct stager *stage; /* while weights load */
    uint64_t load_bytes;
    double load_s;
    /* the buffers of a step of up to max_step_tokens tokens */
    int32_t *h_ints, *d_ints; /* ids, table starts, positions, logit rows, offsets, 0, 1, chunk */
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double gib(uint64_t b)
{
    return (double)b / 1073741824.0;
}

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
        return cru_err_set(CRU_ENOMEM, "cuda: cudaMalloc of %zu bytes on device %d: %s", bytes,
                           s->dev, cudaGetErrorString(e));
    }
    s->allocs[s->n_allocs++] = *out;
    return 0;
}

/* ---- staging ---- */

static int stage_begin(struct cu *s)
{
    s->stage = (struct stager *)calloc(1, sizeof(struct stager));
    if (!s->stage)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    for (int i = 0; i < 2; i++) {
        CRU_CUDA_CHECK(cudaHostAlloc((void **)&s->stage->buf[i], STAGE_BYTES, 0));
        CRU_CUDA_CHECK(cudaEventCreateWithFlags(&s->stage->done[i], cudaEventDisableTiming));
    }
    return 0;
}

/* Queues the copies out of the current buffer, then waits until the other one's are done so
 * that it can be filled. */
static int stage_flush(struct cu *s)
{
    struct stager *g = s->stage;
    uint8_t *b = g->buf[g->cur];
    for (size_t i = 0; i < g->n_piece; i++)
        CRU_CUDA_CHECK(cudaMemcpyAsync(g->piece[i].dst, b + g->piece[i].at, g->piece[i].len,
                                       cudaMemcpyHostToDevice, s->st));
    if (g->n_piece) {
        CRU_CUDA_CHECK(cudaEventRecord(g->done[g->cur], s->st));
        g->pending[g->cur] = true;
    }
    g->cur ^= 1;
    g->fill = 0;
    g->n_piece = 0;
    if (g->pending[g->cur]) {
        CRU_CUDA_CHECK(cudaEventSynchronize(g->done[g->cur]));
        g->pending[g->cur] = false;
    }
    return 0;
}

/* Elements [I, I + K) of W into OUT as bf16 (SIZE 2) or fp32 (SIZE 4). */
static void stage_convert(uint8_t *out, const struct mdl_weight *w, size_t i, size_t k, size_t size)
{
    const uint8_t *src = (const uint8_t *)w->data;
    if (size == 2 && w->dtype == MDL_DT_BF16) {
        memcpy(out, src + 2 * i, 2 * k);
    } else if (size == 4 && w->dtype == MDL_DT_F32) {
        memcpy(out, src + 4 * i, 4 * k);
    } else if (size == 2) {
        for (size_t j = 0; j < k; j++) {
            uint16_t v = mdl_f32_to_bf16(mdl_weight_at(w, i + j));
            memcpy(out + 2 * j, &v, 2);
        }
    } else {
        for (size_t j = 0; j < k; j++) {
            float v = mdl_weight_at(w, i + j);
            memcpy(out + 4 * j, &v, 4);
        }
    }
}

/* N elements of W to DST as bf16 (SIZE 2) or fp32 (SIZE 4), through the staging buffers. */
static int stage_put(struct cu *s, void *dst, const struct mdl_weight *w, size_t n, size_t size)
{
    struct stager *g = s->stage;
    for (size_t i = 0; i < n;) {
        size_t room = (STAGE_BYTES - g->fill) / size;
        if (room == 0 || g->n_piece == STAGE_PIECES) {
            TRY(stage_flush(s));
            continue;
        }
        size_t k = n - i < room ? n - i : room;
        stage_convert(g->buf[g->cur] + g->fill, w, i, k, size);
        g->piece[g->n_piece++] =
            (struct stage_piece){ (uint8_t *)dst + i * size, g->fill, k * size };
        g->fill += (k * size + 15) & ~(size_t)15; /* the next piece starts 16-byte aligned */
        g->fill = g->fill < STAGE_BYTES ? g->fill : STAGE_BYTES;
        s->load_bytes += k * size;
        i += k;
    }
    return 0;
}

/* Flushes what is left, waits for every copy and frees the buffers (also after a failure). */
static int stage_end(struct cu *s)
{
    struct stager *g = s->stage;
    if (!g)
        return 0;
    int rc = 0;
    if (g->n_piece)
        rc = stage_flush(s);
    cudaError_t e = cudaStreamSynchronize(s->st);
    if (rc == 0 && e != cudaSuccess)
        rc = cru_err_set(CRU_EIO, "cuda: copying the weights: %s", cudaGetErrorString(e));
    for (int i = 0; i < 2; i++) {
        cudaFreeHost(g->buf[i]);
        if (g->done[i])
            cudaEventDestroy(g->done[i]);
    }
    free(g);
    s->stage = NULL;
    return rc;
}

/* ---- weights ---- */

/* ROWS x COLS of W as bf16 at DST; a weight without data is made on the device from SEED. */
static int put_bf16(struct cu *s, uint16_t *dst, const struct mdl_weight *w, size_t rows,
                    size_t cols, uint64_t seed)
{
    size_t n = rows * cols;
    if (!w->data)
        return krn_fill_random_bf16(dst, n, seed, 1.0f / sqrtf((float)cols), 0.0f, s->st);
    return stage_put(s, dst, w, n, 2);
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
    return stage_put(s, *out, w, n, 4);
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

/* Whether layer LI has a routing bias on the device (a random model makes one when the
 * configuration asks for it). */
static bool has_bias(const struct cu *s, uint32_t li)
{
    const struct mdl_layer *L = &s->m->layers[li];
    return L->bias.data || (!L->q.data && s->c->routing_bias);
}

static bool lm_head_tied(const struct cu *s)
{
    return s->c->tied && s->m->lm_head.data == s->m->embed.data;
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
    if (has_bias(s, li))
        TRY(new_f32(s, &d->bias, &L->bias, c->experts, sd + 9, 0.0f));
    return put_mlps(s, d, L->experts, c->experts, c->moe_inter, sd + 100);
}

/* The device bytes put_layer and cu_weights allocate, worked out before any of it is. */
static uint64_t weights_size(const struct cu *s)
{
    const struct mdl_config *c = s->c;
    bool whole = c->arch == MDL_ARCH_MINIMAX_M2;
    uint64_t H = c->hidden, b = (uint64_t)c->vocab * H * 2 + H * 4;
    if (!lm_head_tied(s))
        b += (uint64_t)c->vocab * H * 2;
    b += (c->rotary_dim / 2 + 1) * 4; /* inv_freq */
    for (uint32_t l = 0; l < c->layers; l++) {
        b += 2 * H * 4 + (uint64_t)(whole ? s->qd + s->kvd : 2 * c->head_dim) * 4;
        b += ((uint64_t)s->qd + 2 * s->kvd) * H * 2 + H * s->qd * 2;
        if (!s->m->layers[l].moe) {
            b += 3 * (uint64_t)c->inter * H * 2;
            continue;
        }
        b += (uint64_t)c->experts * H * 2 + (has_bias(s, l) ? (uint64_t)c->experts * 4 : 0);
        b += (uint64_t)c->experts * 3 * c->moe_inter * H * 2;
    }
    return b;
}

/* Every weight onto the device, timed for mdl_cuda_load_info. */
static int cu_weights(struct cu *s, uint64_t seed)
{
    const struct mdl_config *c = s->c;
    const struct mdl_model *m = s->m;
    size_t H = c->hidden;
    double t0 = now_s();
    TRY(stage_begin(s));
    TRY(new_bf16(s, &s->embed, &m->embed, c->vocab, H, seed + 1));
    if (lm_head_tied(s))
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
    struct mdl_weight iw = { inv, MDL_DT_F32, 1, half };
    TRY(stage_put(s, s->inv_freq, &iw, half, 4));
    TRY(stage_end(s)); /* INV lives on this stack: the copy must be done before returning */
    s->load_s = now_s() - t0;
    return 0;
}

/* ---- state ---- */

static void cu_free(void *state)
{
    struct cu *s = (struct cu *)state;
    if (!s)
        return;
    if (s->st) {
        cudaSetDevice(s->dev);
        cudaStreamSynchronize(s->st);
    }
    stage_end(s);
    for (size_t i = 0; i < s->n_allocs; i++)
        cudaFree(s->allocs[i]);
    free(s->allocs);
    cudaFreeHost(s->h_ints);
    cudaFreeHost(s->h_off);
    cudaFreeHost(s->h_tab);
    if (s->gexec)
        cudaGraphExecDestroy(s->gexec);
    if (s->blas)
        cublasDestroy(s->blas);
    if (s->st)
        cudaStreamDestroy(s->st);
    free(s->L);
    free(s->seen);
    free(s);
}

/* Makes DEV the calling thread's device, or says why there is none to make. */
static int device_open(struct cu *s, int dev)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (e == cudaErrorNoDevice)
            return cru_err_set(CRU_EUNSUPPORTED, "cuda: no CUDA device is visible");
        return cru_err_set(CRU_EUNSUPPORTED, "cuda: no CUDA driver: %s", cudaGetErrorString(e));
    }
    if (dev < 0 || dev >= n)
        return cru_err_set(CRU_EUNSUPPORTED, "cuda: device %d asked for, %d visible", dev, n);
    cudaDeviceProp p;
    CRU_CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
    CRU_CUDA_CHECK(cudaSetDevice(dev));
    s->dev = dev;
    memcpy(s->dev_name, p.name, sizeof(s->dev_name) - 1);
    return 0;
}

/* What may still be allocated on the device: the share MEM of its memory less what is used
 * (by this process or others), and never the last HEADROOM bytes. */
static uint64_t budget(float mem, uint64_t free_b, uint64_t total)
{
    double share = (double)mem * (double)total - (double)(total - free_b);
    uint64_t a = share > 0 ? (uint64_t)share : 0;
    uint64_t b = free_b > HEADROOM ? free_b - HEADROOM : 0;
    return a < b ? a : b;
}

static int step_buffers(struct cu *s, uint32_t T, bool dry, uint64_t *bytes);

/* Fails before the weights are copied when they and the step buffers cannot fit. */
static int check_fit(struct cu *s, float mem, uint64_t step_bytes)
{
    size_t fr = 0, tot = 0;
    CRU_CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
    uint64_t need = s->lim.weight_bytes + step_bytes;
    if (need <= budget(mem, fr, tot))
        return 0;
    return cru_err_set(CRU_ELIMIT,
                       "cuda: the model's weights need %.1f GiB (and the buffers of a step of %u "
                       "tokens %.1f GiB) but device %d (%s) has %.1f GiB of which %.1f GiB is free "
                       "(%.0f%% of it may be used)",
                       gib(s->lim.weight_bytes), s->lim.max_step_tokens, gib(step_bytes), s->dev,
                       s->dev_name, gib(tot), gib(fr), 100.0 * mem);
}

/* The pool: the blocks asked for, or what the share MEM leaves after the weights and buffers
 * and TAB_BYTES of block tables; max_ctx lowered to what it holds. */
static int size_pool(struct cu *s, const struct mdl_backend_opts *o, float mem, uint64_t tab_bytes)
{
    size_t fr = 0, tot = 0;
    CRU_CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
    uint64_t bb = s->lim.block_bytes, n;
    if (o->n_blocks) {
        n = o->n_blocks;
        if (n * bb + tab_bytes + HEADROOM > fr)
            return cru_err_set(CRU_ELIMIT,
                               "cuda: a pool of %u KV blocks needs %.1f GiB but device %d (%s) has "
                               "%.1f GiB free after the weights (%.1f GiB)",
                               o->n_blocks, gib(n * bb), s->dev, s->dev_name, gib(fr),
                               gib(s->lim.weight_bytes));
    } else {
        uint64_t room = budget(mem, fr, tot);
        n = room > tab_bytes ? (room - tab_bytes) / bb : 0;
        n = n < 0x7fffffffu ? n : 0x7fffffffu;
        if (n < MIN_BLOCKS)
            return cru_err_set(
                CRU_ELIMIT,
                "cuda: after the weights (%.1f GiB) device %d (%s) has room for %llu "
                "KV blocks of %.1f MiB (%u tokens each), fewer than %d: %.1f GiB of "
                "%.1f GiB is free, %.0f%% of it may be used",
                gib(s->lim.weight_bytes), s->dev, s->dev_name, (unsigned long long)n,
                (double)bb / 1048576.0, s->lim.block_tokens, MIN_BLOCKS, gib(fr), gib(tot),
                100.0 * mem);
    }
    s->lim.n_blocks = (uint32_t)n;
    if (n * s->lim.block_tokens < s->lim.max_ctx)
        s->lim.max_ctx = (uint32_t)(n * s->lim.block_tokens);
    return 0;
}

static int cu_init(struct cu *s, const struct mdl_model *m, const struct mdl_backend_opts *o,
                   uint64_t seed)
{
    const struct mdl_config *c = &m->cfg;
    s->m = m;
    s->c = c;
    s->qd = c->heads * c->head_dim;
    s->kvd = c->kv_heads * c->head_dim;
    s->graphs = true;
    struct mdl_backend_limits *l = &s->lim;
    l->max_seqs = o->max_seqs;
    l->block_tokens = o->block_tokens ? o->block_tokens : MDL_BLOCK_TOKENS;
    l->max_step_tokens = o->max_step_tokens ? o->max_step_tokens : MDL_STEP_TOKENS;
    l->fast_step_tokens = GEMV_MAX_T;
    l->max_ctx = o->max_ctx ? o->max_ctx : c->max_pos;
    l->max_ctx = l->max_ctx < c->max_pos ? l->max_ctx : c->max_pos;
    l->max_ctx = l->max_ctx < (1u << 24) ? l->max_ctx : 1u << 24;
    l->block_bytes = (uint64_t)c->layers * l->block_tokens * s->kvd * 2 * 2;
    float mem = o->memory != 0.0f ? o->memory : MDL_GPU_MEMORY;
    if (c->head_dim > KRN_MAX_HEAD_DIM || c->experts > KRN_MAX_EXPERTS || c->top_k > KRN_MAX_TOPK)
        return cru_err_set(CRU_ELIMIT, "cuda: head_dim at most %d, experts %d, top-k %d",
                           KRN_MAX_HEAD_DIM, KRN_MAX_EXPERTS, KRN_MAX_TOPK);
    if (!(s->L = (struct dlayer *)calloc(c->layers, sizeof(struct dlayer))))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    TRY(device_open(s, o->device));
    CRU_CUDA_CHECK(cudaStreamCreateWithFlags(&s->st, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&s->blas));
    CUBLAS_CHECK(cublasSetStream(s->blas, s->st));
    uint64_t step_bytes = 0;
    TRY(step_buffers(s, l->max_step_tokens, true, &step_bytes));
    l->weight_bytes = weights_size(s);
    TRY(check_fit(s, mem, step_bytes));
    TRY(cu_weights(s, seed));
    TRY(step_buffers(s, l->max_step_tokens, false, &step_bytes));
    CRU_CUDA_CHECK(cudaHostAlloc((void **)&s->h_off, (c->experts + 1) * sizeof(int32_t), 0));
    /* The tables at the context asked for bound those at the context the pool allows. */
    uint64_t max_tab = ((uint64_t)l->max_ctx + l->block_tokens - 1) / l->block_tokens;
    TRY(size_pool(s, o, mem, max_tab * l->max_seqs * sizeof(uint32_t)));
    s->max_tab = (l->max_ctx + l->block_tokens - 1) / l->block_tokens;
    size_t tab = (size_t)s->max_tab * l->max_seqs * sizeof(uint32_t);
    CRU_CUDA_CHECK(cudaHostAlloc((void **)&s->h_tab, tab, 0));
    TRY(dalloc(s, (void **)&s->d_tab, tab));
    s->layer_kv = (size_t)l->n_blocks * l->block_tokens * s->kvd;
    TRY(dalloc(s, (void **)&s->kc, (size_t)c->layers * s->layer_kv * 2));
    TRY(dalloc(s, (void **)&s->vc, (size_t)c->layers * s->layer_kv * 2));
    if (!(s->seen = (uint8_t *)calloc(l->n_blocks, 1)))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    CRU_CUDA_CHECK(cudaStreamSynchronize(s->st));
    cru_info("cuda: device %d: %.2f GB of weights copied in %.2f s (%.2f GB/s); KV pool of %u "
             "blocks of %u tokens (%.2f GB), context %u",
             o->device, (double)s->load_bytes / 1e9, s->load_s,
             s->load_s > 0 ? (double)s->load_bytes / 1e9 / s->load_s : 0.0, l->n_blocks,
             l->block_tokens, (double)l->n_blocks * l->block_bytes / 1e9, l->max_ctx);
    return 0;
}

static int load_common(void **state, const struct mdl_model *m, const struct mdl_backend_opts *o,
                       uint64_t seed)
{
    *state = NULL;
    if (!o || o->version != MDL_BACKEND_OPTS_VERSION)
        return cru_err_set(CRU_EINVAL, "backend options: unknown version");
    if (o->max_seqs < 1 || o->max_seqs > MDL_MAX_SEQS)
        return cru_err_set(CRU_ELIMIT, "backend options: sequences a step 1..%d", MDL_MAX_SEQS);
    if (o->block_tokens > MDL_MAX_BLOCK_TOKENS)
        return cru_err_set(CRU_ELIMIT, "backend options: block tokens at most %d",
                           MDL_MAX_BLOCK_TOKENS);
    if (o->max_step_tokens > MAX_STEP_TOKENS)
        return cru_err_set(CRU_ELIMIT, "backend options: step tokens at most %u", MAX_STEP_TOKENS);
    if (o->memory != 0.0f && !(o->memory > 0.0f && o->memory <= 1.0f))
        return cru_err_set(CRU_EINVAL, "backend options: memory share %g outside (0, 1]",
                           (double)o->memory);
    if (o->n_blocks > 0x7fffffffu)
        return cru_err_set(CRU_ELIMIT, "backend options: KV blocks at most %u", 0x7fffffffu);
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

void mdl_cuda_load_info(void *state, uint64_t *bytes, double *seconds)
{
    const struct cu *s = (const struct cu *)state;
    *bytes = s->load_bytes;
    *seconds = s->load_s;
}

int mdl_cuda_fake_context(void *state, const uint32_t *blocks, uint32_t n_blocks, uint32_t len)
{
    struct cu *s = (struct cu *)state;
    uint32_t bt = s->lim.block_tokens, need = (len + bt - 1) / bt;
    if (len > s->lim.max_ctx || n_blocks < need)
        return cru_err_set(CRU_EINVAL, "cuda: %u tokens in %u blocks of %u (context %u)", len,
                           n_blocks, bt, s->lim.max_ctx);
    for (uint32_t i = 0; i < need; i++)
        if (blocks[i] >= s->lim.n_blocks)
            return cru_err_set(CRU_EINVAL, "cuda: block %u of a pool of %u", blocks[i],
                               s->lim.n_blocks);
    CRU_CUDA_CHECK(cudaSetDevice(s->dev));
    CRU_CUDA_CHECK(cudaMemcpyAsync(s->d_tab, blocks, (size_t)need * sizeof(uint32_t),
                                   cudaMemcpyHostToDevice, s->st));
    for (uint32_t l = 0; l < s->c->layers; l++) {
        TRY(krn_fill_kv_random(s->kc + l * s->layer_kv, s->d_tab, len, bt, s->kvd, 77 + l, s->st));
        TRY(krn_fill_kv_random(s->vc + l * s->layer_kv, s->d_tab, len, bt, s->kvd, 99 + l, s->st));
    }
    CRU_CUDA_CHECK(cudaStreamSynchronize(s->st));
    return 0;
}

static void cu_limits(void *state, struct mdl_backend_limits *out)
{
    *out = ((const struct cu *)state)->lim;
}
/* ---- step buffers ---- */

static size_t part_rows(uint32_t t, uint32_t heads)
{
    return (size_t)t * heads + 8192; /* at least T * heads * att_splits() */
}

/* The buffers of a step of up to T tokens, allocated once at load so that a graph captured on
 * them stays valid; DRY only adds up their device bytes into *BYTES. */
static int step_buffers(struct cu *s, uint32_t T, bool dry, uint64_t *bytes)
{
    const struct mdl_config *c = s->c;
    size_t H = c->hidden, E = c->experts ? c->experts : 1, K = c->top_k ? c->top_k : 1;
    size_t P = (size_t)T * K; /* (token, expert) pairs */
    size_t Im = c->moe_inter, Id = c->inter;
    size_t inter = P * Im > (size_t)T * Id ? P * Im : (size_t)T * Id; /* the MLPs' middle */
    size_t wide = (size_t)T * (H > s->qd ? H : s->qd);
    size_t logit_rows = T < LOGIT_ROWS ? T : LOGIT_ROWS;
    *bytes = 0;
#define BUF(ptr, n)                                                                                \
    do {                                                                                           \
        size_t n_ = (n);                                                                           \
        *bytes += n_;                                                                              \
        if (!dry)                                                                                  \
            TRY(dalloc(s, (void **)&(ptr), n_));                                                   \
    } while (0)
    BUF(s->d_ints, (4 * (size_t)T + 8) * sizeof(int32_t));
    BUF(s->x, (size_t)T * H * 4);
    BUF(s->delta, (size_t)T * H * 4);
    BUF(s->xn, (size_t)T * H * 4);
    BUF(s->xbf, (P * H > wide ? P * H : wide) * 2);
    BUF(s->qkv, (size_t)T * (s->qd + 2 * s->kvd) * 4);
    BUF(s->att, (size_t)T * s->qd * 4);
    BUF(s->router, (size_t)T * E * 4);
    BUF(s->sel, P * 4);
    BUF(s->sel_w, P * 4);
    BUF(s->h, inter * 4);
    BUF(s->hbf, inter * 2);
    BUF(s->gu, 2 * inter * 4);
    BUF(s->y, P * H * 4);
    BUF(s->yg, P * H * 4);
    BUF(s->off, (E + 1) * 4);
    BUF(s->perm, P * 4);
    BUF(s->act, E * 4);
    BUF(s->n_act, 4);
    BUF(s->part_o, part_rows(T, c->heads) * c->head_dim * 4);
    BUF(s->part_ml, part_rows(T, c->heads) * 2 * 4);
    BUF(s->logits, logit_rows * c->vocab * 4);
#undef BUF
    if (!dry)
        CRU_CUDA_CHECK(
            cudaHostAlloc((void **)&s->h_ints, (4 * (size_t)T + 8) * sizeof(int32_t), 0));
    return 0;
}

/* ---- the forward ---- */

/* Y (T rows of ROWS floats, row stride LDY) = W (ROWS x COLS) times each of T bf16 inputs XBF
 * (stride COLS), through cuBLAS. */
static int gemm(struct cu *s, float *y, uint32_t ldy, const uint16_t *w, uint32_t rows,
                uint32_t cols, const uint16_t *xbf, uint32_t T)
{
    float alpha = 1, beta = 0;
    CUBLAS_CHECK(cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)T, (int)cols,
                              &alpha, w, CUDA_R_16BF, (int)cols, xbf, CUDA_R_16BF, (int)cols, &beta,
                              y, CUDA_R_32F, (int)ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return 0;
}

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
    return gemm(s, y, ldy, w, rows, cols, xbf, T);
}

struct stepinfo {
    uint32_t T, R, maxn;
    const int32_t *ids, *tab, *pos, *rows, *offT, *offR, *act0, *one, *chunk;
};

/* Attention splits: enough warps to fill the card at decode, chunks of at least 32 keys. A
 * function of the token count and the context bound alone, so that a graph keeps it; the
 * chunk length, which follows the longest context of the step, travels in device memory. */
static uint32_t att_splits(const struct cu *s, uint32_t T)
{
    uint32_t want = (8192 + T * s->c->heads - 1) / (T * s->c->heads);
    uint32_t most = (s->lim.max_ctx + 31) / 32;
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
    size_t layer_kv = (size_t)li * s->layer_kv;
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
    qa.tab = s->d_tab;
    qa.tok_tab = si->tab;
    qa.tok_pos = si->pos;
    qa.t = T;
    qa.heads = c->heads;
    qa.kv_heads = c->kv_heads;
    qa.hd = c->head_dim;
    qa.rot = c->rotary_dim;
    qa.bt = s->lim.block_tokens;
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
    aa.tab = s->d_tab;
    aa.tok_tab = si->tab;
    aa.tok_pos = si->pos;
    aa.part_o = s->part_o;
    aa.part_ml = s->part_ml;
    aa.t = T;
    aa.heads = c->heads;
    aa.kv_heads = c->kv_heads;
    aa.hd = c->head_dim;
    aa.bt = s->lim.block_tokens;
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

/* The logits of rows R0 .. R0+NR-1 of the step (at most LOGIT_ROWS; R0 0 on the GEMV path)
 * into the logits buffer. */
static int lm_head(struct cu *s, const struct stepinfo *si, uint32_t r0, uint32_t nr)
{
    const struct mdl_config *c = s->c;
    uint32_t H = c->hidden;
    if (si->R <= GEMV_MAX_T) {
        struct krn_gemv_args a = {};
        a.out = s->logits;
        a.w = s->lm_head;
        a.x = s->xn;
        a.off = si->offR;
        a.perm = si->rows;
        a.act = si->act0;
        a.n_act = si->one;
        a.rows = c->vocab;
        a.cols = H;
        a.ldx = H;
        a.ldo = c->vocab;
        a.in_div = 1;
        a.max_groups = 1;
        a.out_by_j = 1;
        return krn_grouped_gemv(&a, s->st);
    }
    TRY(krn_gather_bf16(s->xbf, s->xn, si->rows + r0, nr, 1, H, s->st));
    return gemm(s, s->logits, c->vocab, s->lm_head, c->vocab, H, s->xbf, nr);
}

/* Queues the copies of logits rows R0 .. R0+NR-1 (in the buffer from its row 0) to the steps
 * they belong to. */
static int copy_rows(struct cu *s, const struct mdl_step *st, size_t n, uint32_t r0, uint32_t nr)
{
    size_t V = s->c->vocab, first = 0;
    for (size_t i = 0; i < n && first < (size_t)r0 + nr; i++) {
        size_t rows = st[i].all_logits ? st[i].n_ids : 1, a = first, b = first + rows;
        first = b;
        a = a > r0 ? a : r0;
        b = b < (size_t)r0 + nr ? b : (size_t)r0 + nr;
        if (a >= b)
            continue;
        CRU_CUDA_CHECK(cudaMemcpyAsync(st[i].logits + (a - (first - rows)) * V,
                                       s->logits + (a - r0) * V, (b - a) * V * sizeof(float),
                                       cudaMemcpyDeviceToHost, s->st));
    }
    return 0;
}

static int run(struct cu *s, struct mdl_step *st, size_t n)
{
    const struct mdl_backend_limits *l = &s->lim;
    size_t tt = 0;
    if (n == 0)
        return cru_err_set(CRU_EINVAL, "no steps");
    if (n > l->max_seqs)
        return cru_err_set(CRU_ELIMIT, "%zu steps in one forward (at most %u)", n, l->max_seqs);
    memset(s->seen, 0, l->n_blocks);
    TRY(mdl_steps_check(l, s->c->vocab, st, n, s->seen, &tt));
    if (tt > l->max_step_tokens)
        return cru_err_set(CRU_ELIMIT, "a forward of %zu tokens (at most %u)", tt,
                           l->max_step_tokens);
    uint32_t T = (uint32_t)tt, R = 0, bt = l->block_tokens, ntab = 0;
    int32_t *hi = s->h_ints;
    struct stepinfo si = {};
    uint32_t t = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t end = st[i].pos + st[i].n_ids, used = (end + bt - 1) / bt;
        memcpy(s->h_tab + ntab, st[i].blocks, (size_t)used * sizeof(uint32_t));
        for (uint32_t k = 0; k < st[i].n_ids; k++, t++) {
            hi[t] = st[i].ids[k];
            hi[T + t] = (int32_t)ntab;
            hi[2 * T + t] = (int32_t)(st[i].pos + k);
            if (st[i].all_logits || k + 1 == st[i].n_ids)
                hi[3 * T + R++] = (int32_t)t;
        }
        ntab += used;
        si.maxn = end > si.maxn ? end : si.maxn;
    }
    si.T = T;
    si.R = R;
    int32_t *tail = hi + 4 * T;
    tail[0] = 0;
    tail[1] = (int32_t)T;
    tail[2] = 0;
    tail[3] = (int32_t)R;
    tail[4] = 0;
    tail[5] = 1;
    tail[6] = (int32_t)((si.maxn + att_splits(s, T) - 1) / att_splits(s, T));
    int32_t *d = s->d_ints;
    si.ids = d;
    si.tab = d + T;
    si.pos = d + 2 * T;
    si.rows = d + 3 * T;
    si.offT = d + 4 * T;
    si.offR = d + 4 * T + 2;
    si.act0 = d + 4 * T + 4;
    si.one = d + 4 * T + 5;
    si.chunk = d + 4 * T + 6;
    CRU_CUDA_CHECK(cudaMemcpyAsync(s->d_ints, hi, (4 * (size_t)T + 8) * sizeof(int32_t),
                                   cudaMemcpyHostToDevice, s->st));
    CRU_CUDA_CHECK(cudaMemcpyAsync(s->d_tab, s->h_tab, (size_t)ntab * sizeof(uint32_t),
                                   cudaMemcpyHostToDevice, s->st));
    if (s->graphs && T <= GEMV_MAX_T && R <= GEMV_MAX_T && !experts_big(s, T)) {
        if (!s->gexec || s->g_t != T || s->g_r != R)
            TRY(capture(s, &si));
        CRU_CUDA_CHECK(cudaGraphLaunch(s->gexec, s->st));
    } else {
        TRY(enqueue(s, &si));
    }
    if (R <= GEMV_MAX_T) {
        TRY(copy_rows(s, st, n, 0, R)); /* enqueue() computed them */
    } else {
        for (uint32_t r0 = 0; r0 < R; r0 += LOGIT_ROWS) {
            uint32_t nr = R - r0 < LOGIT_ROWS ? R - r0 : LOGIT_ROWS;
            TRY(lm_head(s, &si, r0, nr));
            TRY(copy_rows(s, st, n, r0, nr));
        }
    }
    CRU_CUDA_CHECK(cudaStreamSynchronize(s->st));
    return 0;
}

/* The whole forward of a step whose ids, tables, positions and rows are on the device; the
 * logits too when the step has at most GEMV_MAX_T rows (else run() computes them in turns). */
static int enqueue(struct cu *s, const struct stepinfo *sp)
{
    const struct mdl_config *c = s->c;
    struct stepinfo si = *sp;
    uint32_t T = si.T, H = c->hidden;
    TRY(krn_embed(s->x, s->embed, si.ids, T, H, s->st));
    for (uint32_t l = 0; l < c->layers; l++) {
        TRY(attention_block(s, l, &si));
        TRY(ffn_block(s, l, &si));
    }
    TRY(krn_add_rmsnorm(s->x, s->delta, s->final_norm, s->xn, NULL, T, H, c->rms_eps, s->st));
    return si.R <= GEMV_MAX_T ? lm_head(s, &si, 0, si.R) : 0;
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
    /* The device is the calling thread's: the engine may call from a thread of its own. */
    CRU_CUDA_CHECK(cudaSetDevice(s->dev));
    int rc = run(s, st, n);
    if (rc < 0)
        cudaStreamSynchronize(s->st); /* nothing queued may outlive a failed call's buffers */
    return rc;
}

extern "C" const struct mdl_backend mdl_backend_cuda = {
    "cuda", cu_load, cu_forward, cu_limits, cu_free,
};

/* The shared object's one exported symbol (every other one is hidden: -fvisibility=hidden). */
extern "C" __attribute__((visibility("default"))) const struct mdl_backend *
crucible_cuda_backend(uint32_t abi)
{
    return abi == MDL_BACKEND_ABI ? &mdl_backend_cuda : NULL;
}
