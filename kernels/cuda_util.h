/* kernels/cuda_util: error checking and device discovery for the CUDA backend.
 *
 * Every CUDA runtime call and every kernel launch in kernels/ is checked with CRU_CUDA_CHECK
 * or CRU_CUDA_CHECK_LAUNCH, which turn a failure into a crucible error naming the file, the
 * line, the call and CUDA's own message. The functions below are callable from C.
 */
#ifndef CRU_KERNELS_CUDA_UTIL_H
#define CRU_KERNELS_CUDA_UTIL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct cru_cuda_device {
    int index;
    char name[256];
    int cc_major, cc_minor; /* compute capability, e.g. 9.0 for Hopper */
    int sm_count;
    size_t mem_total, mem_free; /* bytes */
};

/* The number of CUDA devices visible to this process (0 when there is no driver or device:
 * that is not an error). */
int cru_cuda_device_count(int *out);

int cru_cuda_device_info(int index, struct cru_cuda_device *out);

/* Launches a kernel on device INDEX that writes a known pattern into N elements, reads it back
 * and checks every element: proof that this build's device code runs on the device. */
int cru_cuda_selftest(int index, size_t n);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#include <cuda_runtime.h>

#include "lib/err.h"

/* In a function returning int: on failure, set the crucible error and return CRU_EIO. */
#define CRU_CUDA_CHECK(call)                                                                       \
    do {                                                                                           \
        cudaError_t cru_cuda_e_ = (call);                                                          \
        if (cru_cuda_e_ != cudaSuccess)                                                            \
            return cru_err_set(CRU_EIO, "%s:%d: %s: %s", __FILE__, __LINE__, #call,                \
                               cudaGetErrorString(cru_cuda_e_));                                   \
    } while (0)

/* After a <<<launch>>>: reports launch errors (bad configuration) at once. */
#define CRU_CUDA_CHECK_LAUNCH() CRU_CUDA_CHECK(cudaGetLastError())
#endif

#endif
