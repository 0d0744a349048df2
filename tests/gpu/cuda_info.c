/* cuda-info: lists the CUDA devices and runs the build's self-test on each. Exit 0 when every
 * device passes, 1 when one fails, 3 when there is no device or the runtime fails. */
#include <stdio.h>

#include "kernels/cuda_util.h"
#include "lib/err.h"

int main(void)
{
    int n = 0, failed = 0;
    if (cru_cuda_device_count(&n) < 0) {
        fprintf(stderr, "crucible: cuda-info: %s\n", cru_err_msg());
        return 3;
    }
    if (n == 0) {
        fprintf(stderr, "crucible: cuda-info: no CUDA device is visible\n");
        return 3;
    }
    for (int i = 0; i < n; i++) {
        struct cru_cuda_device d;
        if (cru_cuda_device_info(i, &d) < 0) {
            fprintf(stderr, "crucible: cuda-info: device %d: %s\n", i, cru_err_msg());
            return 3;
        }
        printf("device %d: %s, compute %d.%d, %d SMs, %.1f GiB (%.1f GiB free)\n", d.index, d.name,
               d.cc_major, d.cc_minor, d.sm_count, (double)d.mem_total / (1 << 30),
               (double)d.mem_free / (1 << 30));
        if (cru_cuda_selftest(i, (size_t)1 << 24) < 0) {
            printf("device %d: self-test FAILED: %s\n", i, cru_err_msg());
            failed = 1;
        } else {
            printf("device %d: self-test passed (16 Mi elements written and checked)\n", i);
        }
    }
    return failed;
}
