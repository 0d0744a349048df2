/* kernels/forward: the CUDA kernels of the MoE forward, each behind a host launcher.
 *
 * Every launcher checks the shape assumptions its kernel makes (returning CRU_EINVAL or
 * CRU_ELIMIT with the bound named) and the launch itself (CRU_CUDA_CHECK_LAUNCH), and queues
 * its work on STREAM without waiting: nothing here synchronises with the host. Pointers are
 * device pointers. Weights are bf16 (uint16_t here, so that C callers need no CUDA types),
 * activations fp32 with fp32 accumulation everywhere; the KV cache is bf16, in blocks. The
 * CPU reference of each kernel is model/cpu.c's function of the same role;
 * tests/gpu/gpu_check.c checks each launcher against a plain C loop on random inputs.
 */
#ifndef CRU_KERNELS_FORWARD_H
#define CRU_KERNELS_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KRN_MAX_HEAD_DIM 256  /* attention keeps a head's query in registers */
#define KRN_MAX_TOPK     32   /* experts chosen per token */
#define KRN_MAX_EXPERTS  4096 /* the router keeps a token's scores in shared memory */
#define KRN_MAX_SPLITS   256  /* attention splits of one (token, head) */

/* X[t][d] = EMBED[IDS[t]][d] for T tokens of H dims. */
int krn_embed(float *x, const uint16_t *embed, const int32_t *ids, uint32_t t, uint32_t h,
              cudaStream_t st);

/* For each of T rows: X += DELTA (when DELTA is not NULL), then OUT = W * (X * rsqrt(mean(X^2) +
 * EPS)) as fp32, and as bf16 into OUT_BF when that is not NULL. */
int krn_add_rmsnorm(float *x, const float *delta, const float *w, float *out, uint16_t *out_bf,
                    uint32_t t, uint32_t h, float eps, cudaStream_t st);

/* fp32 to bf16 (round to nearest even), N elements. */
int krn_to_bf16(uint16_t *out, const float *in, size_t n, cudaStream_t st);

/* The paged KV layout. A layer's keys (and, apart, its values) are a pool of blocks of BT
 * positions of KVD = KV_HEADS * HD bf16 each; a sequence's block table TAB (a step's slice of
 * the flat table array) names the block that holds its positions p*BT .. (p+1)*BT-1. The
 * element offset in the pool of position P's row: every kernel that reads or writes the cache
 * goes through this one function. */
#ifdef __CUDACC__
#define KRN_HOST_DEVICE __host__ __device__
#else
#define KRN_HOST_DEVICE
#endif
static inline KRN_HOST_DEVICE size_t krn_kv_at(const uint32_t *tab, uint32_t p, uint32_t bt,
                                               uint32_t kvd)
{
    return ((size_t)tab[p / bt] * bt + p % bt) * kvd;
}

/* Per token: the q/k RMSNorm (per head, or over the whole projection when WHOLE), RoPE on the
 * first ROT dims of each head (rotate_half) at the token's position, and the token's K and V
 * stored as bf16 in the pools KC and VC at krn_kv_at(TAB + TOK_TAB[t], TOK_POS[t], BT, KVD).
 * Q, K and V are T rows (stride LD floats: one fused projection's output) of HEADS*HD,
 * KV_HEADS*HD and KV_HEADS*HD floats; Q and K are rewritten in place; INV_FREQ holds ROT/2
 * floats. */
struct krn_qk_args {
    float *q, *k;
    const float *v;
    size_t ld;
    uint16_t *kc, *vc;
    const float *q_norm, *k_norm, *inv_freq;
    const uint32_t *tab;              /* every step's block table, one after another */
    const int32_t *tok_tab, *tok_pos; /* per token: where its step's table starts in TAB; pos */
    uint32_t t, heads, kv_heads, hd, rot, bt;
    int whole;
    float eps;
};
int krn_qk_norm_rope(const struct krn_qk_args *a, cudaStream_t st);

/* Causal attention of T query tokens over their sequences' paged caches (token i sees
 * positions 0..TOK_POS[i], found through its step's block table as krn_qk_args says):
 * OUT[t] = softmax(q k^T / sqrt(hd)) v per head, GQA (HEADS / KV_HEADS query heads per kv
 * head). The keys of each (token, head) are split into N_SPLIT chunks of CHUNK, each reduced
 * by one warp with an online softmax into PART_O (T*HEADS*N_SPLIT*HD floats) and PART_ML
 * (T*HEADS*N_SPLIT*2), then merged: the decode case spreads a long cache over many warps, the
 * prefill case uses N_SPLIT 1. CHUNK * N_SPLIT must cover the longest context. */
struct krn_att_args {
    float *out;
    const float *q; /* T rows of stride Q_LD floats */
    size_t q_ld;
    const uint16_t *kc, *vc;
    const uint32_t *tab;
    const int32_t *tok_tab, *tok_pos;
    float *part_o, *part_ml;
    const int32_t *chunk_dev; /* when not NULL, CHUNK is read from here (a graph replays it) */
    uint32_t t, heads, kv_heads, hd, bt, n_split, chunk;
};
int krn_attention(const struct krn_att_args *a, cudaStream_t st);

/* Routing of T tokens over E experts from LOGITS (T x E): softmax (SIGMOID 0) or sigmoid with
 * BIAS added for the choice only (SIGMOID 1; BIAS may be NULL); the K best by that score, the
 * lower index first among equals; weights the chosen probabilities, renormalised to sum 1 when
 * NORM. SEL and SEL_W get T x K. */
int krn_router_topk(int32_t *sel, float *sel_w, const float *logits, const float *bias, uint32_t t,
                    uint32_t e, uint32_t k, int sigmoid, int norm, cudaStream_t st);

/* Groups the N = T*K (token, choice) pairs of SEL by expert, on the device: OFF (E+1) the
 * exclusive offsets of each expert's pairs in PERM (N pair indices, in any order within an
 * expert), ACT (E) the experts with pairs in increasing order and N_ACT (1) their number. */
int krn_moe_group(int32_t *off, int32_t *perm, int32_t *act, int32_t *n_act, const int32_t *sel,
                  uint32_t n, uint32_t e, cudaStream_t st);

/* The grouped matrix-vector product behind every linear layer of a small step. For each active
 * group g = ACT[b] (b < *N_ACT, at most MAX_GROUPS) and each of its entries j in OFF[g] ..
 * OFF[g+1]: p = PERM[j] (PERM NULL: p = j), input row X + (p / IN_DIV) * LDX, output row
 * OUT + (OUT_BY_J ? j : p) * LDO, weights W + g * W_STRIDE of ROWS x COLS bf16, and
 *   SWIGLU 0: OUT[r] = W[r] . x               for r < ROWS
 *   SWIGLU 1: OUT[r] = silu(W[r] . x) * (W[ROWS + r] . x)   (W holds 2 ROWS: gate then up)
 * Each warp streams one weight row (two with SWIGLU) once per 8 entries of its group, so a
 * decode step reads only the chosen experts' weights. */
struct krn_gemv_args {
    float *out;
    const uint16_t *w;
    const float *x;
    const int32_t *off, *perm, *act, *n_act;
    size_t w_stride;
    uint32_t rows, cols, ldx, ldo, in_div, max_groups;
    int swiglu, out_by_j;
};
int krn_grouped_gemv(const struct krn_gemv_args *a, cudaStream_t st);

/* DELTA[t][d] = sum over k of SEL_W[t][k] * Y[t*K + k][d], T tokens of H dims. */
int krn_moe_combine(float *delta, const float *y, const float *sel_w, uint32_t t, uint32_t k,
                    uint32_t h, cudaStream_t st);

/* OUT[i] = silu(GU[i][c]) * GU[i][COLS + c] for N rows of 2*COLS floats, as bf16 (COLS each). */
int krn_swiglu_bf16(uint16_t *out, const float *gu, uint32_t n, uint32_t cols, cudaStream_t st);

/* OUT[j] = bf16(X[(PERM[j] / IN_DIV)]) for N rows of H (the gather before a grouped GEMM). */
int krn_gather_bf16(uint16_t *out, const float *x, const int32_t *perm, uint32_t n, uint32_t in_div,
                    uint32_t h, cudaStream_t st);

/* Y[PERM[j]] = SRC[j] for N rows of H floats (the scatter after it). */
int krn_scatter_rows(float *y, const float *src, const int32_t *perm, uint32_t n, uint32_t h,
                     cudaStream_t st);

/* N bf16 values uniform in [-SCALE, SCALE] plus SHIFT, from a hash of SEED and the index
 * (weights for benchmarks, made on the device). */
int krn_fill_random_bf16(uint16_t *p, size_t n, uint64_t seed, float scale, float shift,
                         cudaStream_t st);
int krn_fill_random_f32(float *p, size_t n, uint64_t seed, float scale, float shift,
                        cudaStream_t st);

/* Positions 0 .. LEN-1 of the sequence whose block table is TAB (a device pointer) in the pool
 * P get random bf16 values in [-1, 1], a function of SEED and the position alone (so that two
 * tables holding the same positions hold the same values). For benchmarks. */
int krn_fill_kv_random(uint16_t *p, const uint32_t *tab, uint32_t len, uint32_t bt, uint32_t kvd,
                       uint64_t seed, cudaStream_t st);

#ifdef __cplusplus
}
#endif

#endif
