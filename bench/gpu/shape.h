/* The Qwen3-30B-A3B shape the GPU benchmarks run, weights left to be made on the device. */
#ifndef CRU_BENCH_GPU_SHAPE_H
#define CRU_BENCH_GPU_SHAPE_H

#include <stdlib.h>
#include <string.h>

#include "model/model.h"

/* Fills M with LAYERS layers of Qwen3-30B-A3B's shapes and no data (free(m->layers[0].experts),
 * free(m->layers) afterwards). */
static inline void qwen3_30b_shape(struct mdl_model *m, uint32_t layers, uint32_t max_pos)
{
    memset(m, 0, sizeof(*m));
    struct mdl_config *c = &m->cfg;
    c->arch = MDL_ARCH_QWEN3_MOE;
    c->vocab = 151936;
    c->hidden = 2048;
    c->layers = layers;
    c->heads = 32;
    c->kv_heads = 4;
    c->head_dim = 128;
    c->inter = 6144;
    c->moe_inter = 768;
    c->experts = 128;
    c->top_k = 8;
    c->rotary_dim = 128;
    c->max_pos = max_pos;
    c->norm_topk_prob = true;
    c->rms_eps = 1e-6f;
    c->rope_theta = 1e6;
    m->layers = calloc(layers, sizeof(struct mdl_layer));
    struct mdl_mlp *ex = calloc(c->experts, sizeof(struct mdl_mlp));
    uint32_t H = c->hidden, qd = c->heads * c->head_dim, kvd = c->kv_heads * c->head_dim;
    for (uint32_t l = 0; m->layers && l < layers; l++) {
        struct mdl_layer *L = &m->layers[l];
        L->moe = true;
        L->experts = ex;
        L->q = (struct mdl_weight){ NULL, MDL_DT_BF16, qd, H };
        L->k = (struct mdl_weight){ NULL, MDL_DT_BF16, kvd, H };
        L->v = (struct mdl_weight){ NULL, MDL_DT_BF16, kvd, H };
        L->o = (struct mdl_weight){ NULL, MDL_DT_BF16, H, qd };
    }
}

#endif
