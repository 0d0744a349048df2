/* The KV block pool: holds, the prefix index, LRU eviction, and a random schedule of
 * admissions, forks, growth and frees that checks every hold against a model of them. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "model/kvpool.h"

#define BT 4

static struct mdl_kvpool *pool(uint32_t n)
{
    struct mdl_kvpool *p = NULL;
    cr_assert_eq(mdl_kvpool_new(&p, n, BT), 0, "%s", cru_err_msg());
    return p;
}

Test(kvpool, alloc_until_full_then_release)
{
    struct mdl_kvpool *p = pool(3);
    uint32_t b[4];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(mdl_kvpool_alloc(p, &b[i]), 0);
    cr_assert_eq(mdl_kvpool_available(p), 0);
    cr_assert_eq(mdl_kvpool_alloc(p, &b[3]), CRU_ELIMIT);
    cr_assert(strstr(cru_err_msg(), "all 3 blocks"), "%s", cru_err_msg());
    mdl_kvpool_release(p, b[1]);
    cr_assert_eq(mdl_kvpool_alloc(p, &b[3]), 0);
    cr_assert_eq(b[3], b[1], "a freed block is handed out again");
    for (int i = 0; i < 3; i++)
        mdl_kvpool_release(p, b[i == 1 ? 3 : i]);
    cr_assert_eq(mdl_kvpool_verify(p, NULL), 0, "%s", cru_err_msg());
    mdl_kvpool_free(p);
    cr_assert_eq(mdl_kvpool_new(&p, 0, BT), CRU_EINVAL);
}

Test(kvpool, published_chain_is_found_by_its_tokens_only)
{
    struct mdl_kvpool *p = pool(8);
    const int32_t ids[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    uint32_t a, b, got[4];
    cr_assert_eq(mdl_kvpool_alloc(p, &a), 0);
    cr_assert_eq(mdl_kvpool_alloc(p, &b), 0);
    /* Not published yet: nothing to find. */
    cr_assert_eq(mdl_kvpool_match(p, ids, 9, got, 4), 0);
    /* A child whose parent is not published is not published either. */
    mdl_kvpool_publish(p, a, b, ids + BT);
    cr_assert_eq(mdl_kvpool_match(p, ids, 9, got, 4), 0);
    mdl_kvpool_publish(p, MDL_KV_ROOT, a, ids);
    mdl_kvpool_publish(p, a, b, ids + BT);
    cr_assert_eq(mdl_kvpool_match(p, ids, 9, got, 4), 2);
    cr_assert_eq(got[0], a);
    cr_assert_eq(got[1], b);
    cr_assert_eq(mdl_kvpool_refs(p, a), 2);
    /* MAX bounds the match; a different second block stops it at one. */
    cr_assert_eq(mdl_kvpool_match(p, ids, 9, got + 2, 1), 1);
    const int32_t other[] = { 1, 2, 3, 4, 5, 6, 7, 0 };
    cr_assert_eq(mdl_kvpool_match(p, other, 8, got + 3, 4), 1);
    cr_assert_eq(got[3], a);
    /* Fewer tokens than a block: nothing. */
    cr_assert_eq(mdl_kvpool_match(p, ids, 3, got, 4), 0);
    uint32_t holds[8] = { 0 };
    holds[a] = 4;
    holds[b] = 2;
    cr_assert_eq(mdl_kvpool_verify(p, holds), 0, "%s", cru_err_msg());
    mdl_kvpool_free(p);
}

/* Released published blocks stay cached and are evicted least recently released first. */
Test(kvpool, lru_eviction_order)
{
    struct mdl_kvpool *p = pool(3);
    const int32_t x[] = { 1, 1, 1, 1, 2, 2, 2, 2 }, y[] = { 3, 3, 3, 3 };
    uint32_t a, b, c, got[2];
    mdl_kvpool_alloc(p, &a);
    mdl_kvpool_alloc(p, &b);
    mdl_kvpool_alloc(p, &c);
    mdl_kvpool_publish(p, MDL_KV_ROOT, a, x);
    mdl_kvpool_publish(p, a, b, x + BT);
    mdl_kvpool_publish(p, MDL_KV_ROOT, c, y);
    /* Released child first, then parent, then c: the LRU order is b, a, c. */
    mdl_kvpool_release(p, b);
    mdl_kvpool_release(p, a);
    mdl_kvpool_release(p, c);
    struct mdl_kvpool_counts k;
    mdl_kvpool_counts(p, &k);
    cr_assert_eq(k.cached, 3);
    cr_assert_eq(k.free, 0);
    uint32_t n;
    cr_assert_eq(mdl_kvpool_alloc(p, &n), 0);
    cr_assert_eq(n, b, "the least recently released block goes first");
    cr_assert_eq(mdl_kvpool_match(p, x, 8, got, 2), 1, "x's second block was evicted");
    /* Matching a cached block takes it off the LRU list: c is the next to go. */
    uint32_t m;
    cr_assert_eq(mdl_kvpool_alloc(p, &m), 0);
    cr_assert_eq(m, c);
    cr_assert_eq(mdl_kvpool_alloc(p, &m), CRU_ELIMIT);
    mdl_kvpool_counts(p, &k);
    cr_assert_eq(k.evictions, 2);
    cr_assert_eq(mdl_kvpool_verify(p, NULL), 0, "%s", cru_err_msg());
    mdl_kvpool_free(p);
}

/* A parent evicted while its child is still cached, its number reused for other contents:
 * the child is never found under the new parent. */
Test(kvpool, evicted_parent_orphans_its_children)
{
    struct mdl_kvpool *p = pool(3);
    const int32_t x[] = { 1, 1, 1, 1, 2, 2, 2, 2 }, yx[] = { 3, 3, 3, 3, 2, 2, 2, 2 };
    uint32_t a, b, c, got[2];
    mdl_kvpool_alloc(p, &a);
    mdl_kvpool_alloc(p, &b);
    mdl_kvpool_alloc(p, &c);
    mdl_kvpool_publish(p, MDL_KV_ROOT, a, x);
    mdl_kvpool_publish(p, a, b, x + BT);
    mdl_kvpool_release(p, a); /* the parent is the older */
    mdl_kvpool_release(p, b);
    uint32_t n;
    cr_assert_eq(mdl_kvpool_alloc(p, &n), 0);
    cr_assert_eq(n, a);
    mdl_kvpool_publish(p, MDL_KV_ROOT, n, yx);
    cr_assert_eq(mdl_kvpool_match(p, yx, 8, got, 2), 1,
                 "the old child of block %u was found under new contents", a);
    cr_assert_eq(got[0], n);
    cr_assert_eq(mdl_kvpool_match(p, x, 8, got, 2), 0);
    cr_assert_eq(mdl_kvpool_verify(p, NULL), 0, "%s", cru_err_msg());
    mdl_kvpool_free(p);
}

/* ---- the random schedule ---- */

#define NB    48
#define NSEQ  10
#define MAXB  12
#define STEPS 20000

struct seq {
    bool live;
    int32_t toks[MAXB * BT];
    uint32_t len; /* positions "computed" */
    uint32_t table[MAXB];
    uint32_t n;
};

/* What each block holds, as the (simulated) backend wrote it. */
static int32_t shadow[NB][BT];
static uint32_t holds[NB];

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void seq_free(struct mdl_kvpool *p, struct seq *q)
{
    while (q->n > 0) {
        uint32_t b = q->table[--q->n];
        holds[b]--;
        mdl_kvpool_release(p, b);
    }
    q->live = false;
}

/* Grows Q by up to 2 blocks' worth of tokens, as engine steps do; false if the pool is out. */
static bool seq_grow(struct mdl_kvpool *p, struct seq *q, uint64_t *r)
{
    uint32_t add = 1 + (uint32_t)(rnd(r) % (2 * BT));
    if (q->len + add > MAXB * BT)
        add = MAXB * BT - q->len;
    for (uint32_t pos = q->len; pos < q->len + add; pos++) {
        if (pos / BT >= q->n) {
            uint32_t b;
            if (mdl_kvpool_alloc(p, &b) < 0)
                return false;
            cr_assert_eq(holds[b], 0, "block %u handed out while held", b);
            holds[b] = 1;
            q->table[q->n++] = b;
        }
        shadow[q->table[pos / BT]][pos % BT] = q->toks[pos];
    }
    uint32_t from = q->len;
    q->len += add;
    for (uint32_t j = from / BT; (j + 1) * BT <= q->len; j++)
        mdl_kvpool_publish(p, j ? q->table[j - 1] : MDL_KV_ROOT, q->table[j], q->toks + j * BT);
    return true;
}

Test(kvpool, random_schedule_never_leaks_or_serves_stale_blocks)
{
    struct mdl_kvpool *p = pool(NB);
    struct seq seqs[NSEQ];
    memset(seqs, 0, sizeof(seqs));
    memset(holds, 0, sizeof(holds));
    uint64_t r = 0x9e3779b97f4a7c15ull;
    uint64_t matched = 0, forks = 0, preempted = 0;
    for (int step = 0; step < STEPS; step++) {
        struct seq *q = &seqs[rnd(&r) % NSEQ];
        uint32_t op = (uint32_t)(rnd(&r) % 10);
        if (!q->live) {
            /* Admission: tokens from a small alphabet and one of three stems, so that
             * prefixes repeat; the cached part is checked against what was written. */
            uint32_t stem = (uint32_t)(rnd(&r) % 3),
                     n = BT + (uint32_t)(rnd(&r) % (MAXB * BT - BT));
            for (uint32_t i = 0; i < MAXB * BT; i++)
                q->toks[i] = i < 2 * BT ? (int32_t)(stem * 100 + i) : (int32_t)(rnd(&r) % 3);
            q->n = mdl_kvpool_match(p, q->toks, n, q->table, (n - 1) / BT);
            for (uint32_t j = 0; j < q->n; j++) {
                holds[q->table[j]]++;
                cr_assert_arr_eq(shadow[q->table[j]], q->toks + j * BT, sizeof(shadow[0]),
                                 "a cached block holds other tokens than its key");
            }
            matched += q->n;
            q->len = q->n * BT;
            q->live = true;
        } else if (op < 6) {
            if (!seq_grow(p, q, &r)) {
                seq_free(p, q); /* preempted */
                preempted++;
            }
        } else if (op < 8) {
            /* A fork: another sequence starts from Q's full blocks. */
            struct seq *f = NULL;
            for (int i = 0; i < NSEQ && !f; i++)
                f = seqs[i].live ? NULL : &seqs[i];
            if (f && q->len >= BT) {
                *f = *q;
                f->n = f->len = q->len / BT * BT == q->len ? q->n : q->len / BT;
                f->len = f->n * BT;
                for (uint32_t j = 0; j < f->n; j++) {
                    mdl_kvpool_hold(p, f->table[j]);
                    holds[f->table[j]]++;
                }
                forks++;
            }
        } else {
            seq_free(p, q);
        }
        cr_assert_eq(mdl_kvpool_verify(p, holds), 0, "step %d: %s", step, cru_err_msg());
    }
    for (int i = 0; i < NSEQ; i++)
        if (seqs[i].live)
            seq_free(p, &seqs[i]);
    cr_assert_eq(mdl_kvpool_verify(p, holds), 0, "%s", cru_err_msg());
    struct mdl_kvpool_counts k;
    mdl_kvpool_counts(p, &k);
    cr_assert_eq(k.held, 0, "%u blocks still held after every sequence ended", k.held);
    cr_assert_eq(k.free + k.cached, NB);
    /* The schedule exercised what it is for. */
    cr_assert_gt(matched, 100);
    cr_assert_gt(forks, 100);
    cr_assert_gt(preempted, 10);
    cr_assert_gt(k.evictions, 100);
    mdl_kvpool_free(p);
}
