/* kvpool: the engine's bookkeeping of a backend's paged KV cache.
 *
 *     struct mdl_kvpool *p;
 *     mdl_kvpool_new(&p, n_blocks, block_tokens);
 *     n = mdl_kvpool_match(p, ids, n_ids, table, max);  cached full blocks of a prefix, held
 *     mdl_kvpool_alloc(p, &b);                           a fresh block, held
 *     mdl_kvpool_publish(p, parent, b, ids + j * bt);    block b is full: others may share it
 *     mdl_kvpool_release(p, b);                          let go of one hold
 *
 * Blocks are reference-counted: a block is held by every sequence whose block table names it.
 * A full block can be published in the prefix index under its contents and its parent (the block
 * before it in the table that published it), so that a later prompt beginning with the same
 * tokens finds the whole chain. A published block that nobody holds stays cached, oldest first
 * in an LRU list, until a fresh block is needed and no block is free: then the least recently
 * released one is evicted. Lookups compare the stored tokens, never a hash alone, and a block's
 * generation changes whenever it leaves the index, so an entry whose parent was evicted and
 * reused can never be reached again. Not thread-safe: the engine's thread owns it.
 */
#ifndef CRU_MODEL_KVPOOL_H
#define CRU_MODEL_KVPOOL_H

#include <stddef.h>
#include <stdint.h>

#define MDL_KV_ROOT UINT32_MAX /* the parent of a sequence's first block */

struct mdl_kvpool;

struct mdl_kvpool_counts {
    uint32_t blocks, free, cached, held; /* cached: published and held by nobody */
    uint64_t evictions;
};

int mdl_kvpool_new(struct mdl_kvpool **out, uint32_t n_blocks, uint32_t block_tokens);
void mdl_kvpool_free(struct mdl_kvpool *p);

/* A block for new contents, held once: a free one, else the least recently released cached one
 * (evicted from the index). CRU_ELIMIT when every block is held. */
int mdl_kvpool_alloc(struct mdl_kvpool *p, uint32_t *out);
/* One more hold on B (a block that is held or cached). */
void mdl_kvpool_hold(struct mdl_kvpool *p, uint32_t b);
/* Lets go of one hold on B; with none left it is cached (published) or free. */
void mdl_kvpool_release(struct mdl_kvpool *p, uint32_t b);
/* Holds and writes to OUT the longest chain of published blocks that holds IDS[0 .. n*bt) for
 * n <= MAX, and returns n. */
uint32_t mdl_kvpool_match(struct mdl_kvpool *p, const int32_t *ids, size_t n_ids, uint32_t *out,
                          uint32_t max);
/* Publishes B, held and full with the block_tokens IDS, as the child of PARENT (MDL_KV_ROOT, or
 * the published block before it). Nothing happens when the same contents under the same parent
 * are published already, or when PARENT is not published. */
void mdl_kvpool_publish(struct mdl_kvpool *p, uint32_t parent, uint32_t b, const int32_t *ids);
/* Holds on B. */
uint32_t mdl_kvpool_refs(const struct mdl_kvpool *p, uint32_t b);
/* Blocks that an allocation could take now (free and cached). */
uint32_t mdl_kvpool_available(const struct mdl_kvpool *p);
void mdl_kvpool_counts(const struct mdl_kvpool *p, struct mdl_kvpool_counts *out);
/* Checks every invariant (holds, lists, index) against HOLDS, the holds the caller knows of per
 * block (NULL: skip that part); CRU_EINTERNAL naming the first broken one. For tests. */
int mdl_kvpool_verify(const struct mdl_kvpool *p, const uint32_t *holds);

#endif
