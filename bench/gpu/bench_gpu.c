/* bench-gpu: the CUDA backend on a Qwen3-30B-A3B-shaped model with random bf16 weights made on
 * the device (no files), against the card's own limits measured in the same run.
 *
 * Prints, one line each: the device-to-device copy bandwidth (bytes read plus written, the
 * decode roofline's denominator), the bf16 matrix rate of cuBLAS (8192^3), decode tokens/s at
 * batch 1, 8 and 64 with 2048 tokens of context in every sequence (each sequence's own blocks of
 * the paged cache filled with random values rather than by a prompt; a batch the pool cannot
 * hold is skipped), each against the bytes a decode step must read, and the
 * prefill of one 2048-token prompt against the matrix rate. LAYERS (argv[1], default 48) can
 * shrink the model for a quick run; "prefill" as argv[2] runs only the prefill (for a
 * profiler). "profile B" as argv[2] and argv[3] runs one forward of batch B (0: the prefill)
 * between cudaProfilerStart and cudaProfilerStop after warm-ups, without a graph, for
 * `ncu --profile-from-start off`: each kernel of one step, timed alone.
 */
#include <cublas_v2.h>
#include <cuda_profiler_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/gpu/shape.h"
#include "kernels/backend_cuda.h"
#include "kernels/cuda_util.h"
#include "kernels/forward.h"
#include "lib/err.h"

#define CTX 2048

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define CC(x)                                                                                      \
    do {                                                                                           \
        cudaError_t e_ = (x);                                                                      \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "bench-gpu: %s:%d: %s: %s\n", __FILE__, __LINE__, #x,                  \
                    cudaGetErrorString(e_));                                                       \
            exit(3);                                                                               \
        }                                                                                          \
    } while (0)

#define CK(x)                                                                                      \
    do {                                                                                           \
        if ((x) < 0) {                                                                             \
            fprintf(stderr, "bench-gpu: %s:%d: %s\n", __FILE__, __LINE__, cru_err_msg());          \
            exit(3);                                                                               \
        }                                                                                          \
    } while (0)

/* Bytes read plus written per second by cudaMemcpy device to device of 1 GiB. */
static double copy_bandwidth(void)
{
    size_t n = (size_t)1 << 30;
    void *a, *b;
    CC(cudaMalloc(&a, n));
    CC(cudaMalloc(&b, n));
    CC(cudaMemset(a, 1, n));
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    CC(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
    cudaEventRecord(e0, 0);
    for (int i = 0; i < 10; i++)
        CC(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
    cudaEventRecord(e1, 0);
    CC(cudaEventSynchronize(e1));
    float ms;
    cudaEventElapsedTime(&ms, e0, e1);
    cudaFree(a);
    cudaFree(b);
    return 2.0 * n * 10 / (ms * 1e-3);
}

/* FLOP/s of a bf16 8192^3 product with fp32 accumulation (random inputs). */
static double matrix_rate(void)
{
    int n = 8192;
    uint16_t *a, *b;
    float *c;
    CC(cudaMalloc((void **)&a, (size_t)n * n * 2));
    CC(cudaMalloc((void **)&b, (size_t)n * n * 2));
    CC(cudaMalloc((void **)&c, (size_t)n * n * 2));
    CK(krn_fill_random_bf16(a, (size_t)n * n, 1, 1, 0, 0));
    CK(krn_fill_random_bf16(b, (size_t)n * n, 2, 1, 0, 0));
    cublasHandle_t h;
    cublasCreate(&h);
    float alpha = 1, beta = 0;
    double best = 0;
    for (int i = 0; i < 8; i++) {
        CC(cudaDeviceSynchronize());
        double t0 = now();
        if (cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, a, CUDA_R_16BF, n, b,
                         CUDA_R_16BF, n, &beta, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS) {
            fprintf(stderr, "bench-gpu: cublasGemmEx failed\n");
            exit(3);
        }
        CC(cudaDeviceSynchronize());
        double r = 2.0 * n * n * (double)n / (now() - t0);
        best = i >= 2 && r > best ? r : best;
    }
    cublasDestroy(h);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    return best;
}

int main(int argc, char **argv)
{
    uint32_t layers = argc > 1 ? (uint32_t)atoi(argv[1]) : 48;
    bool only_prefill = argc > 2 && strcmp(argv[2], "prefill") == 0; /* for a profiler */
    int profile = argc > 3 && strcmp(argv[2], "profile") == 0 ? atoi(argv[3]) : -1;
    struct cru_cuda_device dev;
    CK(cru_cuda_device_info(0, &dev));
    int drv = 0;
    cudaDriverGetVersion(&drv);
    printf("device: %s, %d SMs, %.0f GiB, driver API %d.%d\n", dev.name, dev.sm_count,
           dev.mem_total / 1073741824.0, drv / 1000, drv % 1000 / 10);
    double bw = profile < 0 ? copy_bandwidth() : 1, mr = profile < 0 ? matrix_rate() : 1;
    printf("copy bandwidth (read + write): %.0f GB/s\n", bw / 1e9);
    printf("cuBLAS bf16 8192^3: %.0f TFLOP/s\n", mr / 1e12);

    struct mdl_model m;
    qwen3_30b_shape(&m, layers, CTX + 32);
    struct mdl_config *c = &m.cfg;
    struct mdl_mlp *ex = m.layers[0].experts;
    uint32_t H = c->hidden, I = c->moe_inter, qd = c->heads * c->head_dim,
             kvd = c->kv_heads * c->head_dim;
    struct mdl_backend_opts o = MDL_BACKEND_OPTS_INIT;
    o.max_seqs = 64;
    o.max_ctx = CTX + 32;
    o.memory = 0.97f; /* the card is the benchmark's alone: batch 64 at 2k needs 12.9 GB of KV */
    void *st = NULL;
    double t0 = now();
    CK(mdl_cuda_load_random(&st, &m, &o, 12345));
    struct mdl_backend_limits lim;
    mdl_backend_cuda.limits(st, &lim);
    printf("model: %u layers, random bf16 weights made on the device in %.1f s; KV pool of %u "
           "blocks of %u tokens (%.1f GiB), context %u\n",
           layers, now() - t0, lim.n_blocks, lim.block_tokens,
           (double)lim.n_blocks * lim.block_bytes / 1073741824.0, lim.max_ctx);
    /* Each sequence's own blocks, in order: CTX tokens of context and the one decoded. */
    uint32_t per = (CTX + 1 + lim.block_tokens - 1) / lim.block_tokens;
    uint32_t *tab = malloc((size_t)64 * per * sizeof(uint32_t));
    for (uint32_t i = 0; i < 64 * per; i++)
        tab[i] = i;

    /* Bytes one decode step reads: attention and router weights, the distinct experts that B
     * tokens choose (expected, routing uniform: E (1 - (1 - K/E)^B)), lm_head, and the cache. */
    double attn = (double)(qd * H * 2 + kvd * H * 2) * 2, router = (double)c->experts * H * 2;
    double expert = 3.0 * H * I * 2, lm = (double)c->vocab * H * 2;
    int32_t *ids = malloc(CTX * sizeof(int32_t));
    for (int i = 0; i < CTX; i++)
        ids[i] = (int32_t)((i * 7919u + 13) % c->vocab);
    float *logits = malloc((size_t)64 * c->vocab * sizeof(float));
    uint32_t batches[] = { 1, 1, 8, 64 };
    for (size_t bi = 0; bi < (only_prefill || profile == 0 ? 0 : 4); bi++) {
        uint32_t B = batches[bi];
        if (profile > 0 && (bi == 0 || (int)B != profile))
            continue;
        bool graphs = bi > 0; /* the first run launches each kernel: the graph's gain */
        if ((uint64_t)B * per > lim.n_blocks || lim.max_ctx <= CTX) {
            printf("decode batch %2u ctx %d: skipped, the pool holds %u blocks of the %u needed\n",
                   B, CTX, lim.n_blocks, B * per);
            continue;
        }
        mdl_cuda_set_graphs(st, graphs);
        struct mdl_step steps[64];
        for (uint32_t s = 0; s < B; s++) {
            CK(mdl_cuda_fake_context(st, tab + (size_t)s * per, per, CTX));
            steps[s] = (struct mdl_step){ .blocks = tab + (size_t)s * per,
                                          .n_blocks = per,
                                          .pos = CTX,
                                          .ids = &ids[s],
                                          .n_ids = 1,
                                          .logits = logits + (size_t)s * c->vocab };
        }
        for (int i = 0; i < 3; i++)
            CK(mdl_backend_cuda.forward(st, steps, B));
        if (profile > 0) {
            mdl_cuda_set_graphs(st, false);
            CC(cudaProfilerStart());
            CK(mdl_backend_cuda.forward(st, steps, B));
            CC(cudaProfilerStop());
            printf("profiled one step of batch %u\n", B);
            continue;
        }
        int iters = 20;
        t0 = now();
        for (int i = 0; i < iters; i++)
            CK(mdl_backend_cuda.forward(st, steps, B));
        double dt = (now() - t0) / iters;
        double chosen = c->experts * (1 - pow(1 - (double)c->top_k / c->experts, B));
        double bytes = layers * (attn + router + chosen * expert) + lm +
                       (double)B * CTX * layers * kvd * 2 * 2;
        double roof = bytes / bw; /* the copy's rate counts its reads and its writes */
        printf("decode batch %2u ctx %d%s: %8.1f tok/s, step %.2f ms; roofline %.2f ms (%.2f GB "
               "read) -> %.0f%% of roofline\n",
               B, CTX, graphs ? "" : " (no graph)", B / dt, dt * 1e3, roof * 1e3, bytes / 1e9,
               100 * roof / dt);
    }
    /* Prefill: one 2048-token prompt in the first sequence's blocks. */
    struct mdl_step p = {
        .blocks = tab, .n_blocks = per, .ids = ids, .n_ids = CTX, .logits = logits
    };
    CK(mdl_backend_cuda.forward(st, &p, 1));
    if (profile > 0)
        goto done;
    if (profile == 0)
        CC(cudaProfilerStart());
    t0 = now();
    CK(mdl_backend_cuda.forward(st, &p, 1));
    double dt = now() - t0;
    if (profile == 0)
        CC(cudaProfilerStop());
    double flops = 2.0 * CTX *
                       (layers * ((double)qd * H * 2 + (double)kvd * H * 2 + c->experts * H +
                                  c->top_k * 3.0 * H * I)) +
                   2.0 * c->vocab * H + layers * 2.0 * 2 * c->heads * 128 * (double)CTX * CTX / 2;
    printf("prefill %d tokens: %.0f tok/s, %.1f ms, %.0f TFLOP/s = %.0f%% of the cuBLAS rate\n",
           CTX, CTX / dt, dt * 1e3, flops / dt / 1e12, 100 * flops / dt / mr);
done:
    mdl_backend_cuda.free(st);
    free(ids);
    free(tab);
    free(logits);
    free(ex);
    free(m.layers);
    return 0;
}
