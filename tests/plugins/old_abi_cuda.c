/* A CUDA backend built for another backend ABI: its entry answers NULL to this crucible's, as
 * the real one does when the two were built from different trees. */
#include "model/backend.h"

const struct mdl_backend *crucible_cuda_backend(uint32_t abi);

const struct mdl_backend *crucible_cuda_backend(uint32_t abi)
{
    (void)abi;
    return NULL;
}
