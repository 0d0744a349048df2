/* A stand-in for the CUDA backend's shared object that hands back the CPU backend of the
 * executable that loads it. Its one reference, mdl_backend_cpu, is left undefined here and
 * resolved at dlopen from the executable's exported symbols, as the real backend's calls into
 * crucible are: `--device cuda` with this library must compute exactly what `--device cpu`
 * does, and fails to load at all when the executable exports nothing. */
#include "model/backend.h"

const struct mdl_backend *crucible_cuda_backend(uint32_t abi);

const struct mdl_backend *crucible_cuda_backend(uint32_t abi)
{
    return abi == MDL_BACKEND_ABI ? &mdl_backend_cpu : NULL;
}

/* The entry has the type model/device.c calls it through. */
static const mdl_cuda_entry_fn entry_type_check __attribute__((unused)) = crucible_cuda_backend;
