/* device: where a model computes (`--device cpu|cuda[:N]`), and the backend that serves it.
 *
 * The CPU backend is part of the binary. The CUDA backend is a shared object,
 * libcrucible-cuda.so, loaded the first time a CUDA device is asked for, so that the binary
 * starts and does all CPU work on a machine without CUDA. It is looked for in this order:
 *
 *   1. $CRUCIBLE_CUDA_LIB, when set and not empty: the library's path (a bare name is a file in
 *      the current folder, not a search of the library path);
 *   2. libcrucible-cuda.so in the folder of the running executable (/proc/self/exe).
 *
 * The library exports one symbol, MDL_CUDA_ENTRY (model/backend.h), which returns its backend
 * table when called with the MDL_BACKEND_ABI it was built against. Its own references to
 * crucible's functions (cru_*, mdl_*) are resolved from the executable, which exports them
 * for it (see the Makefile). The outcome of the one attempt to load it, table or error, is
 * kept for the life of the process.
 */
#ifndef CRU_MODEL_DEVICE_H
#define CRU_MODEL_DEVICE_H

#include "model/backend.h"

/* The name of the CUDA backend's shared object, and the variable that overrides its path. */
#define MDL_CUDA_LIB     "libcrucible-cuda.so"
#define MDL_CUDA_LIB_ENV "CRUCIBLE_CUDA_LIB"

/* Device ordinals accepted by "cuda:N" are below this. */
#define MDL_MAX_DEVICES 64

enum mdl_device_kind {
    MDL_DEV_CPU = 0,
    MDL_DEV_CUDA,
};

struct mdl_device {
    enum mdl_device_kind kind;
    int ordinal; /* cuda: which device; cpu: 0 */
};

#define MDL_DEVICE_INIT                                                                            \
    {                                                                                              \
        MDL_DEV_CPU, 0                                                                             \
    }

/* Parses "cpu", "cuda" (device 0) or "cuda:N" (0 <= N < MDL_MAX_DEVICES) into *OUT. Anything
 * else is CRU_EINVAL with a message naming the text and the accepted forms. */
int mdl_device_parse(const char *s, struct mdl_device *out);

/* Parses a share of a device's memory, 0 < F <= 1 ("0.9"), into *OUT; else CRU_EINVAL. */
int mdl_device_memory_parse(const char *s, float *out);

/* Sets *OUT to the backend that computes on D (borrowed: valid for the life of the process).
 * The CPU backend always; the CUDA one when its shared object loads (see above). Errors are
 * CRU_EUNSUPPORTED, saying what is missing and what to do: the library is not found (the
 * paths tried), it cannot be loaded (the loader's reason: a missing libcudart, libcublas or
 * libcuda), it lacks the entry point, or it was built for another ABI. Whether the machine
 * has a driver, a GPU and the memory is found out by the backend's load(). Thread-safe. */
int mdl_device_backend(const struct mdl_device *d, const struct mdl_backend **out);

#endif
