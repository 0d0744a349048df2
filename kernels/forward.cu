/* kernels/forward: the kernels of the MoE forward (see forward.h for each one's contract).
 *
 * Plain CUDA C++ for sm_90 and later: bf16 weights read with 16-byte loads where the row
 * length allows (8 values), fp32 accumulation, warp shuffles for reductions. The decode path
 * (a few tokens) is bound by memory bandwidth: the grouped GEMV reads each chosen weight row
 * once for up to 8 tokens and nothing else. Dense GEMMs of long steps go to cuBLAS (see
 * backend_cuda.cu); attention here is the split-KV warp-per-head kind, not a tensor-core one.
 */
#include "kernels/forward.h"

#include <cuda_bf16.h>
#include <math.h>

#include "kernels/cuda_util.h"

#define WARP 32

__device__ static inline float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ static inline float bf(uint16_t h)
{
    return __uint_as_float((uint32_t)h << 16);
}

__device__ static inline uint16_t to_bf(float f)
{
    __nv_bfloat16 b = __float2bfloat16_rn(f);
    return *reinterpret_cast<uint16_t *>(&b);
}

__device__ static inline float silu(float x)
{
    return x / (1.0f + expf(-x));
}

static int grid_for(size_t n, int block)
{
    size_t g = (n + block - 1) / block;
    return g > 65535u * 16 ? 65535 * 16 : (int)g;
}

/* ---- embedding ---- */

__global__ static void embed_kernel(float *x, const uint16_t *embed, const int32_t *ids, uint32_t t,
                                    uint32_t h)
{
    size_t n = (size_t)t * h;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = bf(embed[(size_t)ids[i / h] * h + i % h]);
}

int krn_embed(float *x, const uint16_t *embed, const int32_t *ids, uint32_t t, uint32_t h,
              cudaStream_t st)
{
    if (t == 0 || h == 0)
        return cru_err_set(CRU_EINVAL, "krn_embed: empty shape");
    embed_kernel<<<grid_for((size_t)t * h, 256), 256, 0, st>>>(x, embed, ids, t, h);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

/* ---- RMSNorm with the residual add ---- */

/* One block per row, of up to 1024 threads (a decode step has a single row to spread). */
__global__ static void add_rmsnorm_kernel(float *x, const float *delta, const float *w, float *out,
                                          uint16_t *out_bf, uint32_t h, float eps)
{
    __shared__ float part[32]; /* a partial sum per warp, up to 1024 threads */
    float *xr = x + (size_t)blockIdx.x * h;
    const float *dr = delta ? delta + (size_t)blockIdx.x * h : NULL;
    float ss = 0;
    for (uint32_t i = threadIdx.x; i < h; i += blockDim.x) {
        float v = xr[i];
        if (dr) {
            v += dr[i];
            xr[i] = v;
        }
        ss += v * v;
    }
    ss = warp_sum(ss);
    if (threadIdx.x % WARP == 0)
        part[threadIdx.x / WARP] = ss;
    __syncthreads();
    float tot = 0;
    for (uint32_t i = 0; i < blockDim.x / WARP; i++)
        tot += part[i];
    float r = 1.0f / sqrtf(tot / (float)h + eps);
    float *o = out + (size_t)blockIdx.x * h;
    for (uint32_t i = threadIdx.x; i < h; i += blockDim.x) {
        float v = w[i] * (xr[i] * r);
        o[i] = v;
        if (out_bf)
            out_bf[(size_t)blockIdx.x * h + i] = to_bf(v);
    }
}

int krn_add_rmsnorm(float *x, const float *delta, const float *w, float *out, uint16_t *out_bf,
                    uint32_t t, uint32_t h, float eps, cudaStream_t st)
{
    if (t == 0 || h == 0 || t > 0x7fffffffu)
        return cru_err_set(CRU_EINVAL, "krn_add_rmsnorm: rows %u, dims %u", t, h);
    int threads = h >= 4096 ? 1024 : h >= 1024 ? 512 : 256;
    add_rmsnorm_kernel<<<t, threads, 0, st>>>(x, delta, w, out, out_bf, h, eps);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

__global__ static void to_bf16_kernel(uint16_t *out, const float *in, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = to_bf(in[i]);
}

int krn_to_bf16(uint16_t *out, const float *in, size_t n, cudaStream_t st)
{
    if (n == 0)
        return 0;
    to_bf16_kernel<<<grid_for(n, 256), 256, 0, st>>>(out, in, n);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

/* ---- q/k norm, RoPE, KV store ---- */

/* One block per token. Phase 1 finds each norm group's scale (a head, or the whole q and the
 * whole k projection); phase 2 gives each head to a warp, which normalises, rotates and
 * stores it. A lane owns a rotated pair (i, i + rot/2), so the rotation reads before it
 * writes without racing. */
__global__ static void qk_kernel(struct krn_qk_args a)
{
    extern __shared__ float scale[]; /* heads + kv_heads */
    uint32_t t = blockIdx.x, hd = a.hd, qd = a.heads * hd, kvd = a.kv_heads * hd;
    float *q = a.q + (size_t)t * a.ld, *k = a.k + (size_t)t * a.ld;
    uint32_t warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, nw = blockDim.x / WARP;
    uint32_t groups = a.whole ? 2 : a.heads + a.kv_heads;
    for (uint32_t g = warp; g < groups; g += nw) {
        const float *src;
        uint32_t n;
        if (a.whole) {
            src = g == 0 ? q : k;
            n = g == 0 ? qd : kvd;
        } else {
            src = g < a.heads ? q + g * hd : k + (g - a.heads) * hd;
            n = hd;
        }
        float ss = 0;
        for (uint32_t i = lane; i < n; i += WARP)
            ss += src[i] * src[i];
        ss = warp_sum(ss);
        if (lane == 0)
            scale[g] = 1.0f / sqrtf(ss / (float)n + a.eps);
    }
    __syncthreads();
    int32_t pos = a.tok_pos[t];
    size_t cache = krn_kv_at(a.tab + a.tok_tab[t], (uint32_t)pos, a.bt, kvd);
    uint32_t half = a.rot / 2;
    for (uint32_t hh = warp; hh < a.heads + a.kv_heads; hh += nw) {
        bool isq = hh < a.heads;
        uint32_t head = isq ? hh : hh - a.heads;
        float *p = isq ? q + head * hd : k + head * hd;
        const float *w = isq ? a.q_norm : a.k_norm;
        uint32_t woff = a.whole ? head * hd : 0;
        float r = a.whole ? scale[isq ? 0 : 1] : scale[hh];
        for (uint32_t i = lane; i < hd; i += WARP) {
            if (i >= half && i < a.rot)
                continue; /* the partner lane writes it */
            float x1 = w[woff + i] * (p[i] * r);
            if (i < half) {
                float x2 = w[woff + i + half] * (p[i + half] * r);
                float ang = (float)pos * a.inv_freq[i], c, s;
                sincosf(ang, &s, &c);
                float y1 = x1 * c + -x2 * s, y2 = x2 * c + x1 * s;
                p[i] = y1;
                p[i + half] = y2;
                if (!isq) {
                    a.kc[cache + head * hd + i] = to_bf(y1);
                    a.kc[cache + head * hd + i + half] = to_bf(y2);
                }
            } else {
                p[i] = x1;
                if (!isq)
                    a.kc[cache + head * hd + i] = to_bf(x1);
            }
        }
    }
    const float *v = a.v + (size_t)t * a.ld;
    for (uint32_t i = threadIdx.x; i < kvd; i += blockDim.x)
        a.vc[cache + i] = to_bf(v[i]);
}

int krn_qk_norm_rope(const struct krn_qk_args *a, cudaStream_t st)
{
    if (a->t == 0 || a->hd == 0 || a->heads == 0 || a->kv_heads == 0 || a->rot > a->hd ||
        a->rot % 2 || a->t > 0x7fffffffu || a->bt == 0)
        return cru_err_set(CRU_EINVAL,
                           "krn_qk_norm_rope: %u tokens, %u heads of %u, rot %u, blocks of %u",
                           a->t, a->heads, a->hd, a->rot, a->bt);
    if (a->heads + a->kv_heads > 8192)
        return cru_err_set(CRU_ELIMIT, "krn_qk_norm_rope: more than 8192 heads");
    size_t smem = (a->heads + a->kv_heads) * sizeof(float);
    int threads = a->heads + a->kv_heads > 16 ? 1024 : 256; /* a warp a head */
    qk_kernel<<<a->t, threads, smem, st>>>(*a);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

/* ---- attention ---- */

#define ATT_PER_LANE (KRN_MAX_HEAD_DIM / WARP)
#define ATT_WARPS    4

/* One warp per (token, head, split): an online softmax over the split's keys, 32 keys at a
 * time. For the scores each lane takes one key and its whole row (the query, pre-scaled, is in
 * shared memory, read as a broadcast), so a warp has 32 rows of loads in flight rather than
 * one; for the values each lane owns dims lane, lane + 32, ... of the output. VEC: head_dim a
 * multiple of 8, so key rows are read 16 bytes at a time. */
template <bool VEC> __global__ static void attention_part_kernel(struct krn_att_args a)
{
    __shared__ float qs[ATT_WARPS][KRN_MAX_HEAD_DIM];
    size_t wid = (size_t)blockIdx.x * ATT_WARPS + threadIdx.x / WARP;
    uint32_t lane = threadIdx.x % WARP;
    size_t total = (size_t)a.t * a.heads * a.n_split;
    if (wid >= total)
        return;
    uint32_t s = wid % a.n_split, h = (wid / a.n_split) % a.heads;
    uint32_t t = (uint32_t)(wid / a.n_split / a.heads);
    uint32_t hd = a.hd, kvd = a.kv_heads * hd, kvh = h / (a.heads / a.kv_heads);
    uint32_t chunk = a.chunk_dev ? (uint32_t)*a.chunk_dev : a.chunk;
    uint32_t n = (uint32_t)a.tok_pos[t] + 1, k0 = s * chunk;
    uint32_t k1 = k0 + chunk < n ? k0 + chunk : n;
    const float *q = a.q + (size_t)t * a.q_ld + (size_t)h * hd;
    float *qw = qs[threadIdx.x / WARP];
    float sc = 1.0f / sqrtf((float)hd);
    for (uint32_t d = lane; d < hd; d += WARP)
        qw[d] = q[d] * sc;
    __syncwarp();
    float o[ATT_PER_LANE];
#pragma unroll
    for (int j = 0; j < ATT_PER_LANE; j++)
        o[j] = 0;
    float m = -INFINITY, l = 0;
    const uint32_t *tab = a.tab + a.tok_tab[t];
    for (uint32_t i0 = k0; i0 < k1; i0 += WARP) {
        uint32_t i = i0 + lane;
        float score = -INFINITY;
        /* Each lane finds its key's row once; the value pass below takes it from the lane. */
        unsigned long long row = 0;
        if (i < k1) {
            row = krn_kv_at(tab, i, a.bt, kvd) + (size_t)kvh * hd;
            const uint16_t *kr = a.kc + row;
            float dot = 0;
            if (VEC) {
#pragma unroll 16
                for (uint32_t d = 0; d < hd; d += 8) {
                    uint4 raw = *reinterpret_cast<const uint4 *>(kr + d);
                    const uint16_t *hv = reinterpret_cast<const uint16_t *>(&raw);
#pragma unroll
                    for (int j = 0; j < 8; j++)
                        dot += qw[d + j] * bf(hv[j]);
                }
            } else {
                for (uint32_t d = 0; d < hd; d++)
                    dot += qw[d] * bf(kr[d]);
            }
            score = dot;
        }
        float bm = score;
        for (int off = 16; off > 0; off >>= 1)
            bm = fmaxf(bm, __shfl_xor_sync(0xffffffffu, bm, off));
        float mn = fmaxf(m, bm), corr = expf(m - mn);
        float p = i < k1 ? expf(score - mn) : 0.0f;
        l = l * corr + warp_sum(p);
#pragma unroll
        for (int j = 0; j < ATT_PER_LANE; j++)
            o[j] *= corr;
        uint32_t nk = k1 - i0 < WARP ? k1 - i0 : WARP;
        for (uint32_t jj = 0; jj < nk; jj++) {
            float pj = __shfl_sync(0xffffffffu, p, jj);
            const uint16_t *vr = a.vc + __shfl_sync(0xffffffffu, row, jj);
#pragma unroll
            for (int j = 0; j < ATT_PER_LANE; j++) {
                uint32_t d = lane + j * WARP;
                if (d < hd)
                    o[j] += pj * bf(vr[d]);
            }
        }
        m = mn;
    }
    float *po = a.part_o + wid * hd;
#pragma unroll
    for (int j = 0; j < ATT_PER_LANE; j++) {
        uint32_t d = lane + j * WARP;
        if (d < hd)
            po[d] = o[j];
    }
    if (lane == 0) {
        a.part_ml[wid * 2] = m;
        a.part_ml[wid * 2 + 1] = l;
    }
}

/* One warp per (token, head): merges the splits. The lanes first take the splits (their
 * weights go to shared memory), then the dims, so every load of a pass is independent. */
__global__ static void attention_merge_kernel(struct krn_att_args a)
{
    __shared__ float wsm[ATT_WARPS][KRN_MAX_SPLITS];
    size_t wid = (size_t)blockIdx.x * ATT_WARPS + threadIdx.x / WARP;
    uint32_t lane = threadIdx.x % WARP, ns = a.n_split;
    if (wid >= (size_t)a.t * a.heads)
        return;
    float *w = wsm[threadIdx.x / WARP];
    const float *ml = a.part_ml + wid * ns * 2;
    float mx = -INFINITY;
    for (uint32_t s = lane; s < ns; s += WARP)
        mx = fmaxf(mx, ml[2 * s]);
    for (int o = 16; o > 0; o >>= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float l = 0;
    for (uint32_t s = lane; s < ns; s += WARP) {
        float e = ml[2 * s] > -INFINITY ? expf(ml[2 * s] - mx) : 0.0f;
        w[s] = e;
        l += ml[2 * s + 1] * e;
    }
    l = warp_sum(l);
    __syncwarp();
    const float *po = a.part_o + wid * ns * a.hd;
    for (uint32_t d = lane; d < a.hd; d += WARP) {
        float acc = 0;
#pragma unroll 8
        for (uint32_t s = 0; s < ns; s++)
            acc += po[(size_t)s * a.hd + d] * w[s];
        a.out[wid * a.hd + d] = acc / l;
    }
}

int krn_attention(const struct krn_att_args *a, cudaStream_t st)
{
    if (a->t == 0 || a->heads == 0 || a->kv_heads == 0 || a->heads % a->kv_heads ||
        a->n_split == 0 || a->chunk == 0 || a->bt == 0)
        return cru_err_set(CRU_EINVAL,
                           "krn_attention: %u tokens, %u/%u heads, %u splits of %u, blocks of %u",
                           a->t, a->heads, a->kv_heads, a->n_split, a->chunk, a->bt);
    if (a->n_split > KRN_MAX_SPLITS)
        return cru_err_set(CRU_ELIMIT, "krn_attention: %u splits (at most %d)", a->n_split,
                           KRN_MAX_SPLITS);
    if (a->hd == 0 || a->hd > KRN_MAX_HEAD_DIM)
        return cru_err_set(CRU_ELIMIT, "krn_attention: head_dim %u (1..%d)", a->hd,
                           KRN_MAX_HEAD_DIM);
    size_t warps = (size_t)a->t * a->heads * a->n_split;
    size_t blocks = (warps + ATT_WARPS - 1) / ATT_WARPS;
    if (a->hd % 8 == 0)
        attention_part_kernel<true><<<blocks, ATT_WARPS * WARP, 0, st>>>(*a);
    else
        attention_part_kernel<false><<<blocks, ATT_WARPS * WARP, 0, st>>>(*a);
    CRU_CUDA_CHECK_LAUNCH();
    warps = (size_t)a->t * a->heads;
    attention_merge_kernel<<<(warps + ATT_WARPS - 1) / ATT_WARPS, ATT_WARPS * WARP, 0, st>>>(*a);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

/* ---- routing ---- */

/* One block of 128 threads per token; the scores live in shared memory. Each of the K rounds
 * is a block-wide arg-max (the lower index wins ties) over the experts not yet taken. */
__global__ static void router_kernel(int32_t *sel, float *sel_w, const float *logits,
                                     const float *bias, uint32_t e, uint32_t k, int sigmoid,
                                     int norm)
{
    extern __shared__ float sm[];
    float *prob = sm, *choice = sm + e;
    __shared__ float rv[4];
    __shared__ int ri[4];
    __shared__ float red[4];
    uint32_t t = blockIdx.x, lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    const float *lg = logits + (size_t)t * e;
    if (sigmoid) {
        for (uint32_t i = threadIdx.x; i < e; i += blockDim.x) {
            float p = 1.0f / (1.0f + expf(-lg[i]));
            prob[i] = p;
            choice[i] = p + (bias ? bias[i] : 0.0f);
        }
    } else {
        float mx = -INFINITY;
        for (uint32_t i = threadIdx.x; i < e; i += blockDim.x)
            mx = fmaxf(mx, lg[i]);
        for (int o = 16; o > 0; o >>= 1)
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        if (lane == 0)
            red[warp] = mx;
        __syncthreads();
        mx = fmaxf(fmaxf(red[0], red[1]), fmaxf(red[2], red[3]));
        __syncthreads();
        float sum = 0;
        for (uint32_t i = threadIdx.x; i < e; i += blockDim.x) {
            float p = expf(lg[i] - mx);
            prob[i] = p;
            sum += p;
        }
        sum = warp_sum(sum);
        if (lane == 0)
            red[warp] = sum;
        __syncthreads();
        sum = red[0] + red[1] + red[2] + red[3];
        for (uint32_t i = threadIdx.x; i < e; i += blockDim.x) {
            prob[i] /= sum;
            choice[i] = prob[i];
        }
    }
    __syncthreads();
    float wsum = 0;
    for (uint32_t r = 0; r < k; r++) {
        float bv = -INFINITY;
        int bi = -1;
        for (uint32_t i = threadIdx.x; i < e; i += blockDim.x)
            if (choice[i] > bv) {
                bv = choice[i];
                bi = (int)i;
            }
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (oi >= 0 && (bi < 0 || ov > bv || (ov == bv && oi < bi))) {
                bv = ov;
                bi = oi;
            }
        }
        if (lane == 0) {
            rv[warp] = bv;
            ri[warp] = bi;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int w = 1; w < 4; w++)
                if (ri[w] >= 0 &&
                    (ri[0] < 0 || rv[w] > rv[0] || (rv[w] == rv[0] && ri[w] < ri[0]))) {
                    rv[0] = rv[w];
                    ri[0] = ri[w];
                }
            sel[(size_t)t * k + r] = ri[0];
            sel_w[(size_t)t * k + r] = prob[ri[0]];
            wsum += prob[ri[0]];
            choice[ri[0]] = -INFINITY; /* taken: a strict > never picks it again */
        }
        __syncthreads();
    }
    if (threadIdx.x == 0 && norm)
        for (uint32_t r = 0; r < k; r++)
            sel_w[(size_t)t * k + r] /= wsum;
}

int krn_router_topk(int32_t *sel, float *sel_w, const float *logits, const float *bias, uint32_t t,
                    uint32_t e, uint32_t k, int sigmoid, int norm, cudaStream_t st)
{
    if (t == 0 || e == 0 || k == 0 || k > e || t > 0x7fffffffu)
        return cru_err_set(CRU_EINVAL, "krn_router_topk: %u tokens, top-%u of %u", t, k, e);
    if (e > KRN_MAX_EXPERTS || k > KRN_MAX_TOPK)
        return cru_err_set(CRU_ELIMIT, "krn_router_topk: experts 1..%d, top-k 1..%d",
                           KRN_MAX_EXPERTS, KRN_MAX_TOPK);
    router_kernel<<<t, 128, 2 * e * sizeof(float), st>>>(sel, sel_w, logits, bias, e, k, sigmoid,
                                                         norm);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

/* ---- expert grouping ---- */

/* One block: counts by shared-memory atomics, a serial scan by thread 0 (E is small next to
 * the work of one expert), then each pair takes a place in its expert's range. */
__global__ static void group_kernel(int32_t *off, int32_t *perm, int32_t *act, int32_t *n_act,
                                    const int32_t *sel, uint32_t n, uint32_t e)
{
    extern __shared__ int32_t cnt[]; /* e counts, then e cursors */
    int32_t *cur = cnt + e;
    for (uint32_t i = threadIdx.x; i < e; i += blockDim.x)
        cnt[i] = 0;
    __syncthreads();
    for (uint32_t i = threadIdx.x; i < n; i += blockDim.x)
        atomicAdd(&cnt[sel[i]], 1);
    __syncthreads();
    if (threadIdx.x == 0) {
        int32_t o = 0, na = 0;
        for (uint32_t i = 0; i < e; i++) {
            off[i] = o;
            cur[i] = o;
            if (cnt[i] > 0)
                act[na++] = (int32_t)i;
            o += cnt[i];
        }
        off[e] = o;
        *n_act = na;
    }
    __syncthreads();
    for (uint32_t i = threadIdx.x; i < n; i += blockDim.x)
        perm[atomicAdd(&cur[sel[i]], 1)] = (int32_t)i;
}

int krn_moe_group(int32_t *off, int32_t *perm, int32_t *act, int32_t *n_act, const int32_t *sel,
                  uint32_t n, uint32_t e, cudaStream_t st)
{
    if (n == 0 || e == 0)
        return cru_err_set(CRU_EINVAL, "krn_moe_group: %u pairs, %u experts", n, e);
    if (e > KRN_MAX_EXPERTS)
        return cru_err_set(CRU_ELIMIT, "krn_moe_group: experts 1..%d", KRN_MAX_EXPERTS);
    group_kernel<<<1, 1024, 2 * e * sizeof(int32_t), st>>>(off, perm, act, n_act, sel, n, e);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

/* ---- grouped GEMV ---- */

#define GV_TOK   8 /* entries per pass over a weight row */
#define GV_WARPS 8
#define GV_NW    4 /* weight rows a warp streams together: 4 outputs, or 2 with SwiGLU */

/* Dot products of GV_NW weight rows WR with up to GV_TOK inputs XS: each input load serves
 * every row, and a lane has GV_NW 16-byte weight loads in flight per step. VEC: COLS is a
 * multiple of 8 and rows start 16-byte aligned, so each lane loads 8 bf16 at once. */
template <bool VEC>
__device__ static __forceinline__ void rows_dots(float (*acc)[GV_TOK], const uint16_t *const *wr,
                                                 const float *const *xs, int nt, uint32_t cols,
                                                 uint32_t lane)
{
    if (VEC) {
#pragma unroll 2
        for (uint32_t c = lane * 8; c < cols; c += WARP * 8) {
            float wf[GV_NW][8];
#pragma unroll
            for (int r = 0; r < GV_NW; r++) {
                uint4 raw = *reinterpret_cast<const uint4 *>(wr[r] + c);
                const uint16_t *hv = reinterpret_cast<const uint16_t *>(&raw);
#pragma unroll
                for (int j = 0; j < 8; j++)
                    wf[r][j] = bf(hv[j]);
            }
#pragma unroll
            for (int tk = 0; tk < GV_TOK; tk++) {
                if (tk >= nt)
                    break;
                const float4 *xp = reinterpret_cast<const float4 *>(xs[tk] + c);
                float4 x0 = xp[0], x1 = xp[1];
#pragma unroll
                for (int r = 0; r < GV_NW; r++)
                    acc[r][tk] += wf[r][0] * x0.x + wf[r][1] * x0.y + wf[r][2] * x0.z +
                                  wf[r][3] * x0.w + wf[r][4] * x1.x + wf[r][5] * x1.y +
                                  wf[r][6] * x1.z + wf[r][7] * x1.w;
            }
        }
    } else {
        for (uint32_t c = lane; c < cols; c += WARP) {
            float wf[GV_NW];
#pragma unroll
            for (int r = 0; r < GV_NW; r++)
                wf[r] = bf(wr[r][c]);
#pragma unroll
            for (int tk = 0; tk < GV_TOK; tk++) {
                if (tk >= nt)
                    break;
                float xv = xs[tk][c];
#pragma unroll
                for (int r = 0; r < GV_NW; r++)
                    acc[r][tk] += wf[r] * xv;
            }
        }
    }
}

/* A warp computes PER outputs (4, or 2 with SwiGLU, whose gate and up rows make the 4). Rows
 * past the matrix's end read row R0 again and are not written. */
template <bool VEC>
__global__ static void __launch_bounds__(GV_WARPS *WARP) grouped_gemv_kernel(struct krn_gemv_args a)
{
    uint32_t b = blockIdx.y;
    if ((int32_t)b >= *a.n_act)
        return;
    uint32_t per = a.swiglu ? GV_NW / 2 : GV_NW, lane = threadIdx.x % WARP;
    uint32_t r0 = (blockIdx.x * GV_WARPS + threadIdx.x / WARP) * per;
    if (r0 >= a.rows)
        return;
    uint32_t nr = a.rows - r0 < per ? a.rows - r0 : per;
    int32_t g = a.act ? a.act[b] : 0;
    int32_t j0 = a.off[g], j1 = a.off[g + 1];
    const uint16_t *w = a.w + (size_t)g * a.w_stride;
    const uint16_t *wr[GV_NW];
#pragma unroll
    for (uint32_t q = 0; q < GV_NW; q++) {
        uint32_t o = a.swiglu ? q % per : q; /* the output this row serves */
        uint32_t row = (o < nr ? r0 + o : r0) + (a.swiglu && q >= per ? a.rows : 0);
        wr[q] = w + (size_t)row * a.cols;
    }
    for (int32_t j = j0; j < j1; j += GV_TOK) {
        int nt = j1 - j < GV_TOK ? j1 - j : GV_TOK;
        const float *xs[GV_TOK];
        int32_t pj[GV_TOK];
#pragma unroll
        for (int tk = 0; tk < GV_TOK; tk++) {
            int32_t jj = j + (tk < nt ? tk : 0);
            pj[tk] = a.perm ? a.perm[jj] : jj;
            xs[tk] = a.x + (size_t)(pj[tk] / (int32_t)a.in_div) * a.ldx;
        }
        float acc[GV_NW][GV_TOK];
#pragma unroll
        for (int q = 0; q < GV_NW; q++)
#pragma unroll
            for (int tk = 0; tk < GV_TOK; tk++)
                acc[q][tk] = 0;
        rows_dots<VEC>(acc, wr, xs, nt, a.cols, lane);
#pragma unroll
        for (int tk = 0; tk < GV_TOK; tk++) {
            if (tk >= nt) /* warp-uniform: a decode step reduces what it uses */
                break;
#pragma unroll
            for (int q = 0; q < GV_NW; q++)
                acc[q][tk] = warp_sum(acc[q][tk]);
        }
        if (lane < (uint32_t)nt) {
#pragma unroll
            for (int tk = 0; tk < GV_TOK; tk++) {
                if ((int)lane != tk) /* constant indices keep acc and pj in registers */
                    continue;
                size_t orow = a.out_by_j ? (size_t)(j + tk) : (size_t)pj[tk];
                float *out = a.out + orow * a.ldo + r0;
#pragma unroll
                for (uint32_t o = 0; o < GV_NW; o++) {
                    if (o >= nr)
                        break;
                    out[o] = a.swiglu ? silu(acc[o][tk]) * acc[o + per][tk] : acc[o][tk];
                }
            }
        }
    }
}

int krn_grouped_gemv(const struct krn_gemv_args *a, cudaStream_t st)
{
    if (a->rows == 0 || a->cols == 0 || a->in_div == 0 || a->max_groups == 0)
        return cru_err_set(CRU_EINVAL, "krn_grouped_gemv: %u x %u, %u groups", a->rows, a->cols,
                           a->max_groups);
    if (a->max_groups > 65535)
        return cru_err_set(CRU_ELIMIT, "krn_grouped_gemv: at most 65535 groups");
    uint32_t per = a->swiglu ? GV_NW / 2 : GV_NW, rows_per_block = GV_WARPS * per;
    dim3 grid((a->rows + rows_per_block - 1) / rows_per_block, a->max_groups);
    bool vec = a->cols % 8 == 0 && a->ldx % 4 == 0 && a->w_stride % 8 == 0 &&
               ((uintptr_t)a->w % 16) == 0 && ((uintptr_t)a->x % 16) == 0;
    if (vec)
        grouped_gemv_kernel<true><<<grid, GV_WARPS * WARP, 0, st>>>(*a);
    else
        grouped_gemv_kernel<false><<<grid, GV_WARPS * WARP, 0, st>>>(*a);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

/* ---- combine, SwiGLU, gather, scatter ---- */

__global__ static void combine_kernel(float *delta, const float *y, const float *sel_w, uint32_t t,
                                      uint32_t k, uint32_t h)
{
    size_t n = (size_t)t * h;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t tok = i / h, d = i % h;
        float acc = 0;
        for (uint32_t j = 0; j < k; j++)
            acc += y[(tok * k + j) * h + d] * sel_w[tok * k + j];
        delta[i] = acc;
    }
}

int krn_moe_combine(float *delta, const float *y, const float *sel_w, uint32_t t, uint32_t k,
                    uint32_t h, cudaStream_t st)
{
    if (t == 0 || k == 0 || h == 0)
        return cru_err_set(CRU_EINVAL, "krn_moe_combine: empty shape");
    combine_kernel<<<grid_for((size_t)t * h, 256), 256, 0, st>>>(delta, y, sel_w, t, k, h);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

__global__ static void swiglu_kernel(uint16_t *out, const float *gu, uint32_t n, uint32_t cols)
{
    size_t tot = (size_t)n * cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < tot;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / cols, c = i % cols;
        const float *row = gu + r * 2 * cols;
        out[i] = to_bf(silu(row[c]) * row[cols + c]);
    }
}

int krn_swiglu_bf16(uint16_t *out, const float *gu, uint32_t n, uint32_t cols, cudaStream_t st)
{
    if (n == 0 || cols == 0)
        return cru_err_set(CRU_EINVAL, "krn_swiglu_bf16: empty shape");
    swiglu_kernel<<<grid_for((size_t)n * cols, 256), 256, 0, st>>>(out, gu, n, cols);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

__global__ static void gather_kernel(uint16_t *out, const float *x, const int32_t *perm, uint32_t n,
                                     uint32_t in_div, uint32_t h)
{
    size_t tot = (size_t)n * h;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < tot;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t j = i / h, d = i % h;
        out[i] = to_bf(x[(size_t)(perm[j] / (int32_t)in_div) * h + d]);
    }
}

int krn_gather_bf16(uint16_t *out, const float *x, const int32_t *perm, uint32_t n, uint32_t in_div,
                    uint32_t h, cudaStream_t st)
{
    if (n == 0 || h == 0 || in_div == 0)
        return cru_err_set(CRU_EINVAL, "krn_gather_bf16: empty shape");
    gather_kernel<<<grid_for((size_t)n * h, 256), 256, 0, st>>>(out, x, perm, n, in_div, h);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

__global__ static void scatter_kernel(float *y, const float *src, const int32_t *perm, uint32_t n,
                                      uint32_t h)
{
    size_t tot = (size_t)n * h;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < tot;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t j = i / h, d = i % h;
        y[(size_t)perm[j] * h + d] = src[i];
    }
}

int krn_scatter_rows(float *y, const float *src, const int32_t *perm, uint32_t n, uint32_t h,
                     cudaStream_t st)
{
    if (n == 0 || h == 0)
        return cru_err_set(CRU_EINVAL, "krn_scatter_rows: empty shape");
    scatter_kernel<<<grid_for((size_t)n * h, 256), 256, 0, st>>>(y, src, perm, n, h);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

/* ---- random fill ---- */

__device__ static inline float hash_unit(uint64_t seed, size_t i)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * (i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

__global__ static void fill_bf16_kernel(uint16_t *p, size_t n, uint64_t seed, float scale,
                                        float shift)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = to_bf(hash_unit(seed, i) * scale + shift);
}

__global__ static void fill_f32_kernel(float *p, size_t n, uint64_t seed, float scale, float shift)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = hash_unit(seed, i) * scale + shift;
}

int krn_fill_random_bf16(uint16_t *p, size_t n, uint64_t seed, float scale, float shift,
                         cudaStream_t st)
{
    if (n == 0)
        return 0;
    fill_bf16_kernel<<<grid_for(n, 256), 256, 0, st>>>(p, n, seed, scale, shift);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

int krn_fill_random_f32(float *p, size_t n, uint64_t seed, float scale, float shift,
                        cudaStream_t st)
{
    if (n == 0)
        return 0;
    fill_f32_kernel<<<grid_for(n, 256), 256, 0, st>>>(p, n, seed, scale, shift);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}

__global__ static void fill_kv_kernel(uint16_t *p, const uint32_t *tab, uint32_t len, uint32_t bt,
                                      uint32_t kvd, uint64_t seed)
{
    size_t n = (size_t)len * kvd;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[krn_kv_at(tab, (uint32_t)(i / kvd), bt, kvd) + i % kvd] = to_bf(hash_unit(seed, i));
}

int krn_fill_kv_random(uint16_t *p, const uint32_t *tab, uint32_t len, uint32_t bt, uint32_t kvd,
                       uint64_t seed, cudaStream_t st)
{
    if (bt == 0 || kvd == 0)
        return cru_err_set(CRU_EINVAL, "krn_fill_kv_random: blocks of %u, rows of %u", bt, kvd);
    if (len == 0)
        return 0;
    fill_kv_kernel<<<grid_for((size_t)len * kvd, 256), 256, 0, st>>>(p, tab, len, bt, kvd, seed);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}
