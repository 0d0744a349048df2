/* kernels/sample: drawing a token from each row of logits on the GPU, as model/sample.c does.
 *
 * The distribution is the same as mdl_sample's: softmax after temperature, then top-k, then
 * top-p over the top-k ids in order (logit, then id), renormalised; temperature 0 is the arg
 * max (lowest id among equals) with log-prob 0; with neither truncation the draw walks the
 * ids in id order, as the CPU does. The uniform draw of each row comes from the caller (the
 * CPU's generator, so a seed reproduces the same tokens on either side). It covers greedy,
 * full softmax, and top-k up to KRN_SAMPLE_MAX_K (top-p within it); other settings (top-p over
 * the whole vocabulary, larger k) answer CRU_EUNSUPPORTED and stay with the CPU sampler.
 */
#include "kernels/sample.h"

#include <math.h>

#include "kernels/cuda_util.h"

#define SB 1024 /* threads per row */

/* Orders ids by logit, larger first, then by id (model/sample.c's better()). */
__device__ static inline bool better(const float *l, uint32_t a, uint32_t b)
{
    return l[a] > l[b] || (l[a] == l[b] && a < b);
}

/* The best id under better() among those worse than PREV (PREV UINT32_MAX: all), block-wide. */
__device__ static uint32_t block_best(const float *l, uint32_t v, uint32_t prev, uint32_t *red)
{
    uint32_t best = UINT32_MAX;
    for (uint32_t i = threadIdx.x; i < v; i += SB)
        if ((prev == UINT32_MAX || better(l, prev, i)) &&
            (best == UINT32_MAX || better(l, i, best)))
            best = i;
    for (int o = 16; o > 0; o >>= 1) {
        uint32_t other = __shfl_xor_sync(0xffffffffu, best, o);
        if (other != UINT32_MAX && (best == UINT32_MAX || better(l, other, best)))
            best = other;
    }
    if (threadIdx.x % 32 == 0)
        red[threadIdx.x / 32] = best;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < SB / 32; w++)
            if (red[w] != UINT32_MAX && (red[0] == UINT32_MAX || better(l, red[w], red[0])))
                red[0] = red[w];
    }
    __syncthreads();
    uint32_t r = red[0];
    __syncthreads();
    return r;
}

__device__ static double block_sum(double v, double *red)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x % 32 == 0)
        red[threadIdx.x / 32] = v;
    __syncthreads();
    double t = 0;
    for (int w = 0; w < SB / 32; w++)
        t += red[w];
    __syncthreads();
    return t;
}

__global__ static void __launch_bounds__(SB) sample_kernel(struct krn_sample_args a)
{
    __shared__ uint32_t redu[SB / 32];
    __shared__ double redd[SB / 32];
    __shared__ double part[SB];
    __shared__ uint32_t top[KRN_SAMPLE_MAX_K];
    const float *l = a.logits + (size_t)blockIdx.x * a.ldl;
    uint32_t V = a.vocab;
    /* the model's own log-softmax (temperature 1) */
    uint32_t amax = block_best(l, V, UINT32_MAX, redu);
    double mx = l[amax], s = 0;
    for (uint32_t i = threadIdx.x; i < V; i += SB)
        s += exp((double)l[i] - mx);
    double lse = mx + log(block_sum(s, redd));
    int32_t id;
    float lp;
    if (a.temperature == 0) {
        id = (int32_t)amax;
        lp = 0;
    } else if (a.top_k == 0 || a.top_k >= V) {
        /* full softmax, the draw in id order over contiguous chunks of ids */
        float it = 1.0f / a.temperature; /* as the CPU: a float, products in double */
        double zmax = mx * (double)it;
        uint32_t per = (V + SB - 1) / SB, c0 = threadIdx.x * per;
        uint32_t c1 = c0 + per < V ? c0 + per : V;
        double cs = 0;
        for (uint32_t i = c0; i < c1; i++)
            cs += exp((double)l[i] * it - zmax);
        part[threadIdx.x] = cs;
        __syncthreads();
        __shared__ double total;
        __shared__ uint32_t pick;
        if (threadIdx.x == 0) {
            double t = 0;
            for (int i = 0; i < SB; i++) {
                double p = part[i];
                part[i] = t; /* exclusive prefix */
                t += p;
            }
            total = t;
            pick = V - 1;
        }
        __syncthreads();
        double target = a.u[blockIdx.x] * total;
        if (c0 < c1 && part[threadIdx.x] <= target) {
            double cum = part[threadIdx.x];
            for (uint32_t i = c0; i < c1; i++) {
                cum += exp((double)l[i] * it - zmax);
                if (target < cum) {
                    atomicMin(&pick, i);
                    break;
                }
            }
        }
        __syncthreads();
        id = (int32_t)pick;
        lp = (float)((double)l[id] * it - zmax - log(total));
    } else {
        /* top-k by successive order statistics, then top-p over them in order */
        uint32_t k = a.top_k, prev = UINT32_MAX;
        for (uint32_t r = 0; r < k; r++) {
            prev = block_best(l, V, prev, redu);
            if (threadIdx.x == 0)
                top[r] = prev;
        }
        __syncthreads();
        __shared__ int32_t pick_id;
        __shared__ float pick_lp;
        if (threadIdx.x == 0) {
            float it = 1.0f / a.temperature;
            double zmax = (double)l[top[0]] * it, sum = 0;
            for (uint32_t r = 0; r < k; r++)
                sum += exp((double)l[top[r]] * it - zmax);
            uint32_t kept = k;
            if (a.top_p < 1) {
                double cum = 0, target = (double)a.top_p * sum;
                kept = 0;
                while (kept < k) {
                    cum += exp((double)l[top[kept]] * it - zmax);
                    kept++;
                    if (cum >= target)
                        break;
                }
                sum = cum;
            }
            uint32_t pid = top[0];
            if (kept > 1) {
                double u = a.u[blockIdx.x] * exp(log(sum)), cum = 0;
                pid = top[kept - 1];
                for (uint32_t r = 0; r < kept; r++) {
                    cum += exp((double)l[top[r]] * it - zmax);
                    if (u < cum) {
                        pid = top[r];
                        break;
                    }
                }
            }
            pick_id = (int32_t)pid;
            pick_lp = kept == 1 ? 0.0f : (float)((double)l[pid] * it - zmax - log(sum));
        }
        __syncthreads();
        id = pick_id;
        lp = pick_lp;
    }
    if (threadIdx.x == 0) {
        a.id[blockIdx.x] = id;
        a.logprob[blockIdx.x] = lp;
        a.raw_logprob[blockIdx.x] = (float)((double)l[id] - lse);
    }
}

int krn_sample(const struct krn_sample_args *a, cudaStream_t st)
{
    if (a->rows == 0 || a->vocab == 0 || a->ldl < a->vocab || a->rows > 0x7fffffffu)
        return cru_err_set(CRU_EINVAL, "krn_sample: %u rows of %u", a->rows, a->vocab);
    if (!(a->temperature == 0 || (a->temperature >= 1e-4f && a->temperature <= 100.0f)) ||
        !(a->top_p > 0 && a->top_p <= 1))
        return cru_err_set(CRU_EINVAL, "krn_sample: temperature %g, top_p %g",
                           (double)a->temperature, (double)a->top_p);
    bool full = a->top_k == 0 || a->top_k >= a->vocab;
    if (a->temperature != 0 && ((full && a->top_p < 1) || (!full && a->top_k > KRN_SAMPLE_MAX_K)))
        return cru_err_set(CRU_EUNSUPPORTED,
                           "krn_sample: top-p over the whole vocabulary, or top-k above %d",
                           KRN_SAMPLE_MAX_K);
    sample_kernel<<<a->rows, SB, 0, st>>>(*a);
    CRU_CUDA_CHECK_LAUNCH();
    return 0;
}
