/* kernels/cuda_util: device discovery and a self-test of the CUDA build.
 *
 * The self-test is the smallest end-to-end proof that the code nvcc produced for this build's
 * architecture loads and runs on the device: it is what tests/gpu/run.sh checks first.
 */
#include "kernels/cuda_util.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int cru_cuda_device_count(int *out)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) {
        cudaGetLastError(); /* clear it, so that later calls do not report it again */
        *out = 0;
        return 0;
    }
    CRU_CUDA_CHECK(e);
    *out = n;
    return 0;
}

int cru_cuda_device_info(int index, struct cru_cuda_device *out)
{
    cudaDeviceProp p;
    CRU_CUDA_CHECK(cudaGetDeviceProperties(&p, index));
    CRU_CUDA_CHECK(cudaSetDevice(index));
    memset(out, 0, sizeof(*out));
    out->index = index;
    snprintf(out->name, sizeof(out->name), "%s", p.name);
    out->cc_major = p.major;
    out->cc_minor = p.minor;
    out->sm_count = p.multiProcessorCount;
    CRU_CUDA_CHECK(cudaMemGetInfo(&out->mem_free, &out->mem_total));
    return 0;
}

/* A value no uninitialised or stale buffer holds by accident. */
__host__ __device__ static uint32_t pattern(size_t i)
{
    return (uint32_t)(i * 2654435761u) ^ 0x5bd1e995u;
}

__global__ static void fill_pattern(uint32_t *out, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = pattern(i);
}

static int selftest_run(uint32_t *dev, uint32_t *host, size_t n)
{
    CRU_CUDA_CHECK(cudaMemset(dev, 0, n * sizeof(uint32_t)));
    fill_pattern<<<256, 256>>>(dev, n);
    CRU_CUDA_CHECK_LAUNCH();
    CRU_CUDA_CHECK(cudaMemcpy(host, dev, n * sizeof(uint32_t), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++) {
        if (host[i] != pattern(i))
            return cru_err_set(CRU_EINTERNAL, "self-test: element %zu is %08x, expected %08x", i,
                               host[i], pattern(i));
    }
    return 0;
}

int cru_cuda_selftest(int index, size_t n)
{
    uint32_t *dev = NULL;
    uint32_t *host = NULL;
    CRU_CUDA_CHECK(cudaSetDevice(index));
    CRU_CUDA_CHECK(cudaMalloc(&dev, n * sizeof(uint32_t)));
    int rc = 0;
    cudaError_t e = cudaMallocHost(&host, n * sizeof(uint32_t));
    if (e != cudaSuccess)
        rc = cru_err_set(CRU_ENOMEM, "self-test: cudaMallocHost: %s", cudaGetErrorString(e));
    else
        rc = selftest_run(dev, host, n);
    cudaFreeHost(host);
    cudaFree(dev);
    return rc;
}
