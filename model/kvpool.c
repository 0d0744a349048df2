/* kvpool: reference-counted KV blocks, a prefix index over full blocks, LRU eviction.
 *
 * Every block is in exactly one of three states: free (on the free list), held (refs > 0) or
 * cached (published, refs 0, on the LRU list). The index is a hash table chained through the
 * blocks themselves: a block has at most one entry, so the table never allocates after start.
 */
#include "model/kvpool.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

#define NIL UINT32_MAX

struct blk {
    uint32_t refs;
    uint32_t gen;                /* changes whenever the block leaves the index */
    uint32_t parent, parent_gen; /* its key, with its tokens, while published */
    uint32_t chain;              /* the next block of its hash bucket */
    uint32_t prev, next;         /* the LRU list while cached; next: the free list while free */
    uint64_t hash;
    bool published, is_free;
};

struct mdl_kvpool {
    uint32_t n, bt;
    struct blk *b;
    int32_t *toks; /* n x bt: a published block's tokens */
    uint32_t *buckets, mask;
    uint32_t free_head, n_free;
    uint32_t lru_head, lru_tail, n_cached;
    uint64_t evictions;
};

static uint64_t key_hash(uint32_t parent, uint32_t pgen, const int32_t *ids, uint32_t bt)
{
    uint64_t h = 0xcbf29ce484222325ull ^ ((uint64_t)parent << 32 | pgen);
    for (uint32_t i = 0; i < bt; i++) {
        h ^= (uint32_t)ids[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

int mdl_kvpool_new(struct mdl_kvpool **out, uint32_t n_blocks, uint32_t block_tokens)
{
    *out = NULL;
    if (n_blocks < 1 || n_blocks >= NIL / 2 || block_tokens < 1)
        return cru_err_set(CRU_EINVAL, "kv pool: %u blocks of %u tokens", n_blocks, block_tokens);
    struct mdl_kvpool *p = calloc(1, sizeof(*p));
    uint32_t nb = 1;
    while (nb < 2 * n_blocks)
        nb <<= 1;
    if (p) {
        p->b = calloc(n_blocks, sizeof(*p->b));
        p->toks = malloc((size_t)n_blocks * block_tokens * sizeof(int32_t));
        p->buckets = malloc(nb * sizeof(uint32_t));
    }
    if (!p || !p->b || !p->toks || !p->buckets) {
        mdl_kvpool_free(p);
        return cru_err_set(CRU_ENOMEM, "out of memory for a pool of %u blocks", n_blocks);
    }
    p->n = n_blocks;
    p->bt = block_tokens;
    p->mask = nb - 1;
    memset(p->buckets, 0xff, nb * sizeof(uint32_t));
    p->lru_head = p->lru_tail = NIL;
    /* The free list hands out low numbers first. */
    p->free_head = NIL;
    for (uint32_t i = n_blocks; i-- > 0;) {
        p->b[i] = (struct blk){ .parent = NIL, .chain = NIL, .prev = NIL, .next = p->free_head,
                                .is_free = true };
        p->free_head = i;
    }
    p->n_free = n_blocks;
    *out = p;
    return 0;
}

void mdl_kvpool_free(struct mdl_kvpool *p)
{
    if (!p)
        return;
    free(p->b);
    free(p->toks);
    free(p->buckets);
    free(p);
}

static void lru_remove(struct mdl_kvpool *p, uint32_t i)
{
    struct blk *b = &p->b[i];
    if (b->prev != NIL)
        p->b[b->prev].next = b->next;
    else
        p->lru_head = b->next;
    if (b->next != NIL)
        p->b[b->next].prev = b->prev;
    else
        p->lru_tail = b->prev;
    b->prev = b->next = NIL;
    p->n_cached--;
}

static void lru_append(struct mdl_kvpool *p, uint32_t i)
{
    struct blk *b = &p->b[i];
    b->prev = p->lru_tail;
    b->next = NIL;
    if (p->lru_tail != NIL)
        p->b[p->lru_tail].next = i;
    else
        p->lru_head = i;
    p->lru_tail = i;
    p->n_cached++;
}

static void unpublish(struct mdl_kvpool *p, uint32_t i)
{
    struct blk *b = &p->b[i];
    uint32_t *at = &p->buckets[b->hash & p->mask];
    while (*at != i)
        at = &p->b[*at].chain;
    *at = b->chain;
    b->chain = NIL;
    b->published = false;
    b->parent = NIL;
    b->gen++;
}

int mdl_kvpool_alloc(struct mdl_kvpool *p, uint32_t *out)
{
    uint32_t i;
    if (p->free_head != NIL) {
        i = p->free_head;
        p->free_head = p->b[i].next;
        p->b[i].next = NIL;
        p->b[i].is_free = false;
        p->n_free--;
    } else if (p->lru_head != NIL) {
        i = p->lru_head;
        lru_remove(p, i);
        unpublish(p, i);
        p->evictions++;
    } else {
        return cru_err_set(CRU_ELIMIT, "kv pool: all %u blocks are in use", p->n);
    }
    p->b[i].refs = 1;
    *out = i;
    return 0;
}

void mdl_kvpool_hold(struct mdl_kvpool *p, uint32_t i)
{
    if (p->b[i].refs++ == 0)
        lru_remove(p, i);
}

void mdl_kvpool_release(struct mdl_kvpool *p, uint32_t i)
{
    struct blk *b = &p->b[i];
    if (--b->refs > 0)
        return;
    if (b->published) {
        lru_append(p, i);
        return;
    }
    b->is_free = true;
    b->next = p->free_head;
    p->free_head = i;
    p->n_free++;
}

/* The published block under PARENT (of generation PGEN) holding IDS, or NIL. */
static uint32_t find(const struct mdl_kvpool *p, uint32_t parent, uint32_t pgen,
                     const int32_t *ids, uint64_t h)
{
    for (uint32_t i = p->buckets[h & p->mask]; i != NIL; i = p->b[i].chain) {
        const struct blk *b = &p->b[i];
        if (b->hash == h && b->parent == parent && b->parent_gen == pgen &&
            memcmp(p->toks + (size_t)i * p->bt, ids, p->bt * sizeof(int32_t)) == 0)
            return i;
    }
    return NIL;
}

uint32_t mdl_kvpool_match(struct mdl_kvpool *p, const int32_t *ids, size_t n_ids, uint32_t *out,
                          uint32_t max)
{
    uint32_t parent = MDL_KV_ROOT, pgen = 0, n = 0;
    while (n < max && (size_t)(n + 1) * p->bt <= n_ids) {
        const int32_t *blk = ids + (size_t)n * p->bt;
        uint32_t i = find(p, parent, pgen, blk, key_hash(parent, pgen, blk, p->bt));
        if (i == NIL)
            break;
        mdl_kvpool_hold(p, i);
        out[n++] = i;
        parent = i;
        pgen = p->b[i].gen;
    }
    return n;
}

void mdl_kvpool_publish(struct mdl_kvpool *p, uint32_t parent, uint32_t i, const int32_t *ids)
{
    struct blk *b = &p->b[i];
    if (b->published || b->refs == 0 || (parent != MDL_KV_ROOT && !p->b[parent].published))
        return;
    uint32_t pgen = parent == MDL_KV_ROOT ? 0 : p->b[parent].gen;
    uint64_t h = key_hash(parent, pgen, ids, p->bt);
    if (find(p, parent, pgen, ids, h) != NIL)
        return;
    memcpy(p->toks + (size_t)i * p->bt, ids, p->bt * sizeof(int32_t));
    b->parent = parent;
    b->parent_gen = pgen;
    b->hash = h;
    b->published = true;
    b->chain = p->buckets[h & p->mask];
    p->buckets[h & p->mask] = i;
}

uint32_t mdl_kvpool_refs(const struct mdl_kvpool *p, uint32_t i)
{
    return p->b[i].refs;
}

uint32_t mdl_kvpool_available(const struct mdl_kvpool *p)
{
    return p->n_free + p->n_cached;
}

void mdl_kvpool_counts(const struct mdl_kvpool *p, struct mdl_kvpool_counts *out)
{
    *out = (struct mdl_kvpool_counts){ p->n, p->n_free, p->n_cached,
                                       p->n - p->n_free - p->n_cached, p->evictions };
}

int mdl_kvpool_verify(const struct mdl_kvpool *p, const uint32_t *holds)
{
    uint32_t n_free = 0, n_lru = 0, n_pub = 0, n_chained = 0;
    for (uint32_t i = p->free_head; i != NIL; i = p->b[i].next) {
        if (!p->b[i].is_free || p->b[i].refs || p->b[i].published || ++n_free > p->n)
            return cru_err_set(CRU_EINTERNAL, "kv pool: block %u on the free list is in use", i);
    }
    for (uint32_t i = p->lru_head, prev = NIL; i != NIL; prev = i, i = p->b[i].next) {
        if (p->b[i].prev != prev || p->b[i].refs || !p->b[i].published || p->b[i].is_free ||
            ++n_lru > p->n)
            return cru_err_set(CRU_EINTERNAL, "kv pool: block %u on the LRU list is wrong", i);
    }
    for (uint32_t k = 0; k <= p->mask; k++)
        for (uint32_t i = p->buckets[k]; i != NIL; i = p->b[i].chain) {
            if (!p->b[i].published || (p->b[i].hash & p->mask) != k || ++n_chained > p->n)
                return cru_err_set(CRU_EINTERNAL, "kv pool: index bucket %u is wrong", k);
        }
    for (uint32_t i = 0; i < p->n; i++) {
        const struct blk *b = &p->b[i];
        n_pub += b->published;
        if (holds && holds[i] != b->refs)
            return cru_err_set(CRU_EINTERNAL, "kv pool: block %u has %u holds, %u expected", i,
                               b->refs, holds[i]);
        if (b->refs == 0 && !b->published && !b->is_free)
            return cru_err_set(CRU_EINTERNAL, "kv pool: block %u is lost (no holds, not listed)",
                               i);
    }
    if (n_free != p->n_free || n_lru != p->n_cached || n_pub != n_chained)
        return cru_err_set(CRU_EINTERNAL,
                           "kv pool: counts disagree (free %u/%u, cached %u/%u, index %u/%u)",
                           n_free, p->n_free, n_lru, p->n_cached, n_chained, n_pub);
    return 0;
}
