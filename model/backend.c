/* backend: what every backend checks of a forward's steps, written once. */
#include "model/backend.h"

#include <string.h>

#include "lib/err.h"

int mdl_steps_check(const struct mdl_backend_limits *l, uint32_t vocab, const struct mdl_step *st,
                    size_t n, uint8_t *seen, size_t *T)
{
    *T = 0;
    if (n > l->max_seqs)
        return cru_err_set(CRU_ELIMIT, "a forward of %zu steps; at most %u", n, l->max_seqs);
    memset(seen, 0, l->n_blocks);
    uint32_t bt = l->block_tokens;
    for (size_t i = 0; i < n; i++) {
        const struct mdl_step *s = &st[i];
        if (s->n_ids == 0 || !s->ids || !s->logits || !s->blocks)
            return cru_err_set(CRU_EINVAL, "step %zu: no tokens, blocks or logits buffer", i);
        if ((uint64_t)s->pos + s->n_ids > l->max_ctx)
            return cru_err_set(CRU_ELIMIT, "step %zu: %u + %u tokens exceed the context of %u", i,
                               s->pos, s->n_ids, l->max_ctx);
        uint32_t end = s->pos + s->n_ids, need = (end + bt - 1) / bt;
        if (s->n_blocks < need)
            return cru_err_set(CRU_EINVAL, "step %zu: %u blocks for %u positions of %u each", i,
                               s->n_blocks, end, bt);
        for (uint32_t k = 0; k < need; k++)
            if (s->blocks[k] >= l->n_blocks)
                return cru_err_set(CRU_EINVAL, "step %zu: block %u of a pool of %u", i,
                                   s->blocks[k], l->n_blocks);
        for (uint32_t k = s->pos / bt; k < need; k++) {
            if (seen[s->blocks[k]])
                return cru_err_set(CRU_EINVAL, "step %zu: block %u is written by another step", i,
                                   s->blocks[k]);
            seen[s->blocks[k]] = 1;
        }
        for (uint32_t k = 0; k < s->n_ids; k++)
            if (s->ids[k] < 0 || (uint32_t)s->ids[k] >= vocab)
                return cru_err_set(CRU_EINVAL, "step %zu: token id %d outside the vocabulary (%u)",
                                   i, s->ids[k], vocab);
        if ((*T += s->n_ids) > l->max_step_tokens)
            return cru_err_set(CRU_ELIMIT, "a forward of more than %u tokens", l->max_step_tokens);
    }
    /* The blocks a step only reads hold finished positions: no step of the call writes them. */
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < st[i].pos / bt; k++)
            if (seen[st[i].blocks[k]])
                return cru_err_set(CRU_EINVAL, "step %zu: block %u is read while another step "
                                   "writes it", i, st[i].blocks[k]);
    return 0;
}
