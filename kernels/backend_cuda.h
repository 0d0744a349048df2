/* kernels/backend_cuda: the CUDA backend of model/backend.h, built by `make cuda` into
 * build/cuda/libcrucible-cuda.a.
 *
 *     void *st;
 *     struct mdl_backend_opts o = MDL_BACKEND_OPTS_INIT;
 *     if (mdl_backend_cuda.load(&st, model, &o) < 0) ... cru_err_msg()
 *     mdl_backend_cuda.forward(st, steps, n);  same contract as mdl_backend_cpu
 *     mdl_backend_cuda.free(st);
 *
 * The engine takes it as any other table (mdl_engine's backend), in a program linked with
 * this library, the CUDA runtime and cuBLAS.
 */
#ifndef CRU_KERNELS_BACKEND_CUDA_H
#define CRU_KERNELS_BACKEND_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "model/backend.h"

extern const struct mdl_backend mdl_backend_cuda;

/* As mdl_backend_cuda.load, but every weight of MODEL whose data is NULL is made on the device
 * from SEED (uniform, scaled by 1/sqrt(cols); norms near 1): a model of any shape without a
 * checkpoint, for benchmarks. */
int mdl_cuda_load_random(void **state, const struct mdl_model *model,
                         const struct mdl_backend_opts *o, uint64_t seed);

/* Benchmarks: declares that SLOT holds LEN tokens whose cache entries are random, as if a
 * prompt of LEN tokens had been run. */
int mdl_cuda_fake_context(void *state, uint32_t slot, uint32_t len);

/* Decode steps (at most 16 tokens) replay a CUDA graph of the whole forward, captured once per
 * token count; ON false launches every kernel each time instead (for comparison). */
void mdl_cuda_set_graphs(void *state, bool on);

#ifdef __cplusplus
}
#endif

#endif
