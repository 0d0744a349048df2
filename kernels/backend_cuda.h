/* kernels/backend_cuda: the CUDA backend of model/backend.h. `make` builds it into the shared
 * object libcrucible-cuda.so, which exports one symbol (MDL_CUDA_ENTRY) and takes the host
 * functions it calls (cru_err_*, mdl_weight_at, mdl_steps_check) from the program that loads
 * it; `make cuda` also builds it into build/cuda/libcrucible-cuda.a for the GPU checks and the
 * benchmark, which link it directly.
 *
 *     void *st;
 *     struct mdl_backend_opts o = MDL_BACKEND_OPTS_INIT;
 *     if (mdl_backend_cuda.load(&st, model, &o) < 0) ... cru_err_msg()
 *     mdl_backend_cuda.forward(st, steps, n);  same contract as mdl_backend_cpu
 *     mdl_backend_cuda.free(st);
 *
 * load() takes o.device (the ordinal) and o.memory (the share of the device's memory that the
 * weights, the step buffers and the KV pool may take together); with o.n_blocks 0 the pool
 * gets all that the share leaves, and max_ctx is lowered to what the pool holds (limits()
 * says what came out). No driver, no device or a bad ordinal is CRU_EUNSUPPORTED; weights
 * that do not fit, or a pool of fewer than a few blocks, CRU_ELIMIT with the sizes.
 */
#ifndef CRU_KERNELS_BACKEND_CUDA_H
#define CRU_KERNELS_BACKEND_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "model/backend.h"

extern const struct mdl_backend mdl_backend_cuda;

/* The shared object's entry (its name is MDL_CUDA_ENTRY): &mdl_backend_cuda when ABI is
 * MDL_BACKEND_ABI, else NULL. */
const struct mdl_backend *crucible_cuda_backend(uint32_t abi);

/* As mdl_backend_cuda.load, but every weight of MODEL whose data is NULL is made on the device
 * from SEED (uniform, scaled by 1/sqrt(cols); norms near 1): a model of any shape without a
 * checkpoint, for benchmarks. */
int mdl_cuda_load_random(void **state, const struct mdl_model *model,
                         const struct mdl_backend_opts *o, uint64_t seed);

/* What load copied from the host to the device (bytes) and how long the copy of the weights
 * took, from the first read of the checkpoint's pages to the last copy's end (seconds). */
void mdl_cuda_load_info(void *state, uint64_t *bytes, double *seconds);

/* Benchmarks and checks: fills positions 0 .. LEN-1 of the sequence whose block table is BLOCKS
 * (N_BLOCKS entries) with random keys and values, as if a prompt of LEN tokens had been run.
 * The values depend on the position alone, not on the blocks that hold it. */
int mdl_cuda_fake_context(void *state, const uint32_t *blocks, uint32_t n_blocks, uint32_t len);

/* Decode steps (at most 16 tokens) replay a CUDA graph of the whole forward, captured once per
 * token count; ON false launches every kernel each time instead (for comparison). */
void mdl_cuda_set_graphs(void *state, bool on);

#ifdef __cplusplus
}
#endif

#endif
