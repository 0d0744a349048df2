/* weight: element types of weights (bf16, f16, f32) to and from float.
 *
 * Kept apart from model.c, which parses checkpoints with a JSON library, so that programs that
 * only compute (the CPU reference linked into the GPU checks) need nothing beyond libc.
 */
#include <math.h>
#include <string.h>

#include "model/model.h"

float mdl_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t mdl_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays a (quiet) NaN */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float mdl_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) {
                man <<= 1;
                exp--;
            }
            u = sign | (exp << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float mdl_weight_at(const struct mdl_weight *w, size_t i)
{
    uint16_t h;
    float f;
    switch (w->dtype) {
    case MDL_DT_BF16:
        memcpy(&h, (const uint8_t *)w->data + 2 * i, 2);
        return mdl_bf16_to_f32(h);
    case MDL_DT_F16:
        memcpy(&h, (const uint8_t *)w->data + 2 * i, 2);
        return mdl_f16_to_f32(h);
    case MDL_DT_F32:
        memcpy(&f, (const uint8_t *)w->data + 4 * i, 4);
        return f;
    default:
        return NAN;
    }
}
