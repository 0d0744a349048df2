/* backend: what the backends share: the validation of one forward's steps.
 *
 * Both backends call mdl_steps_check() before touching a step, so that the engine's mistakes
 * (a table too short, a block outside the pool, two steps writing one block) are errors naming
 * the step, never writes into another sequence's cache. It does not compute anything.
 */
#include "model/backend.h"

#include <string.h>

#include "lib/err.h"

int mdl_steps_check(const struct mdl_backend_limits *l, uint32_t vocab, const struct mdl_step *st,
                    size_t n, uint8_t *seen, size_t *T)
{
    size_t t = 0;
    int rc = 0;
    size_t i = 0;
    if (n == 0)
        return cru_err_set(CRU_EINVAL, "no steps");
    for (; i < n && rc == 0; i++) {
        const struct mdl_step *s = &st[i];
        uint64_t end = (uint64_t)s->pos + s->n_ids;
        if (s->n_ids == 0 || !s->ids || !s->logits || !s->blocks) {
            rc = cru_err_set(CRU_EINVAL, "step %zu: no tokens, block table or logits buffer", i);
            break;
        }
        if (end > l->max_ctx) {
            rc = cru_err_set(CRU_ELIMIT, "step %zu: %u + %u tokens exceed the context of %u", i,
                             s->pos, s->n_ids, l->max_ctx);
            break;
        }
        uint64_t need = (end + l->block_tokens - 1) / l->block_tokens;
        if (s->n_blocks < need) {
            rc = cru_err_set(CRU_EINVAL, "step %zu: %u tokens need %llu blocks, the table has %u",
                             i, (uint32_t)end, (unsigned long long)need, s->n_blocks);
            break;
        }
        for (uint64_t b = 0; b < need && rc == 0; b++)
            if (s->blocks[b] >= l->n_blocks)
                rc = cru_err_set(CRU_EINVAL, "step %zu: block %u of a pool of %u", i, s->blocks[b],
                                 l->n_blocks);
        for (uint32_t k = 0; k < s->n_ids && rc == 0; k++)
            if (s->ids[k] < 0 || (uint32_t)s->ids[k] >= vocab)
                rc = cru_err_set(CRU_EINVAL, "step %zu: token id %d outside the vocabulary (%u)", i,
                                 s->ids[k], vocab);
        for (uint64_t b = s->pos / l->block_tokens; b < need && rc == 0; b++) {
            if (seen[s->blocks[b]])
                rc = cru_err_set(CRU_EINVAL, "step %zu: block %u is written by an earlier step", i,
                                 s->blocks[b]);
            seen[s->blocks[b]] = 1;
        }
        t += s->n_ids;
    }
    /* SEEN goes back to all zeros, so that the caller clears it once. */
    for (size_t j = 0; j < i; j++) {
        uint64_t end = (uint64_t)st[j].pos + st[j].n_ids;
        uint64_t need = (end + l->block_tokens - 1) / l->block_tokens;
        if (!st[j].blocks || end > l->max_ctx || st[j].n_blocks < need || st[j].n_ids == 0)
            continue;
        for (uint64_t b = st[j].pos / l->block_tokens; b < need; b++)
            if (st[j].blocks[b] < l->n_blocks)
                seen[st[j].blocks[b]] = 0;
    }
    if (rc < 0)
        return rc;
    *T = t;
    return 0;
}
