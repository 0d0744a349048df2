/* kernels/sample: one token per row of logits, drawn on the GPU as model/sample.c draws it.
 *
 * For each of ROWS rows of VOCAB logits (stride LDL): the drawn ID, its LOGPROB under the
 * distribution it was drawn from (0 when greedy or when one id is left) and its RAW_LOGPROB
 * under the model's softmax. U holds one uniform draw in [0, 1) per row (the caller's
 * generator: mdl_rng_uniform gives the CPU sampler's). Supported: temperature 0 (greedy),
 * the full softmax (top_k 0 or >= vocab, top_p 1), and top_k up to KRN_SAMPLE_MAX_K with any
 * top_p; anything else is CRU_EUNSUPPORTED. All pointers are device pointers.
 */
#ifndef CRU_KERNELS_SAMPLE_H
#define CRU_KERNELS_SAMPLE_H

#include <stdint.h>

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KRN_SAMPLE_MAX_K 64

struct krn_sample_args {
    const float *logits;
    const double *u;
    int32_t *id;
    float *logprob, *raw_logprob;
    uint32_t rows, vocab, ldl;
    float temperature, top_p;
    uint32_t top_k;
};

int krn_sample(const struct krn_sample_args *a, cudaStream_t st);

#ifdef __cplusplus
}
#endif

#endif
