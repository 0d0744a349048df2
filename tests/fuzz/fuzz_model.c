/* fuzz/model: the checkpoint parsers on arbitrary bytes: mdl_st_parse (a safetensors file),
 * mdl_config_parse (config.json) and mdl_st_index_parse (model.safetensors.index.json).
 *
 * The first byte picks the parser (its value modulo 3: 0 safetensors, 1 config, 2 index); the
 * rest is the input. Any input must parse or fail with a negative code, a message and nothing
 * returned, never crash or read past its end. A header that parses must be consistent and
 * within its bounds: every tensor's bytes inside the data area and of the size its dtype and
 * shape give, names sorted and unique and findable, no two non-empty tensors overlapping. A
 * config that parses must be within every bound. An index that parses names 1 to
 * MDL_MAX_SHARDS distinct plain file names, each held by an entry, and its entries are sorted,
 * unique, of bounded names, and each in one of those files.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "model/model.h"
#include "tests/fuzz/fuzz.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_model: %s (%s)\n", what, cru_err_msg());
    abort();
}

static void check_header(const struct mdl_st_header *h, size_t size)
{
    if (h->data_start > size)
        fail("data starts past the end");
    if (h->n > MDL_MAX_TENSORS || h->data_start - 8 > MDL_MAX_ST_HEADER)
        fail("a header past its bounds");
    uint64_t data = size - h->data_start;
    for (size_t i = 0; i < h->n; i++) {
        const struct mdl_st_tensor *t = &h->tensors[i];
        if (t->begin > t->end || t->end > data)
            fail("a tensor outside the data");
        if (i && strcmp(h->tensors[i - 1].name, t->name) >= 0)
            fail("names not sorted and unique");
        if (mdl_st_find(h, t->name) != t)
            fail("a tensor that cannot be found");
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims; d++)
            n *= t->shape[d];
        if (t->dtype == MDL_DT_F32 && t->end - t->begin != 4 * n)
            fail("F32 bytes do not match the shape");
        if ((t->dtype == MDL_DT_BF16 || t->dtype == MDL_DT_F16) && t->end - t->begin != 2 * n)
            fail("16-bit bytes do not match the shape");
        /* Empty tensors occupy no bytes, so they overlap nothing. */
        for (size_t j = 0; j < i && t->begin < t->end; j++) {
            const struct mdl_st_tensor *u = &h->tensors[j];
            if (u->begin < u->end && t->begin < u->end && u->begin < t->end)
                fail("two tensors overlap");
        }
    }
}

static void check_config(const struct mdl_config *c)
{
    if (c->arch != MDL_ARCH_QWEN3_MOE && c->arch != MDL_ARCH_MINIMAX_M2)
        fail("an unknown architecture");
    if (!c->vocab || c->vocab > MDL_MAX_VOCAB || !c->hidden || c->hidden > MDL_MAX_HIDDEN ||
        !c->layers || c->layers > MDL_MAX_LAYERS || !c->heads || c->heads > MDL_MAX_HEADS ||
        !c->kv_heads || c->heads % c->kv_heads || !c->head_dim || c->head_dim > MDL_MAX_HEAD_DIM)
        fail("dimensions out of bounds");
    if (!c->rotary_dim || c->rotary_dim > c->head_dim || c->rotary_dim % 2)
        fail("rotary dims out of bounds");
    if (c->experts > MDL_MAX_EXPERTS || (c->experts && c->top_k > c->experts))
        fail("experts out of bounds");
    if (!c->moe_layer || c->n_eos > MDL_MAX_STOP_TOKENS)
        fail("layers or eos out of bounds");
    for (size_t i = 0; i < c->n_eos; i++)
        if (c->eos[i] < 0 || (uint32_t)c->eos[i] >= c->vocab)
            fail("an eos id outside the vocabulary");
}

static void check_index(const struct mdl_st_index *ix)
{
    size_t n = ix->n_files;
    if (n == 0 || n > MDL_MAX_SHARDS)
        fail("an index of no files or too many");
    if (ix->n_entries > MDL_MAX_TENSORS)
        fail("an index of too many entries");
    for (size_t i = 0; i < n; i++) {
        const char *f = ix->files[i];
        if (!*f || strchr(f, '/') || strcmp(f, ".") == 0 || strcmp(f, "..") == 0 || strlen(f) > 255)
            fail("a shard that is not a plain file name");
        for (size_t j = 0; j < i; j++)
            if (strcmp(ix->files[j], f) == 0)
                fail("a shard named twice");
    }
    bool *held = calloc(n, sizeof(bool));
    if (!held)
        return;
    for (size_t i = 0; i < ix->n_entries; i++) {
        const struct mdl_st_index_entry *e = &ix->entries[i];
        size_t len = strlen(e->tensor);
        if (len == 0 || len > MDL_MAX_NAME)
            fail("a tensor name out of bounds");
        if (i && strcmp(ix->entries[i - 1].tensor, e->tensor) >= 0)
            fail("entries not sorted and unique");
        if (e->file >= n)
            fail("an entry in no file");
        held[e->file] = true;
    }
    for (size_t i = 0; i < n; i++)
        if (!held[i])
            fail("a file that no entry names");
    free(held);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] % 3;
    data++;
    size--;
    /* A copy of exactly SIZE bytes, so that a read past the end is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    cru_err_clear();
    if (which == 2) {
        struct mdl_st_index *ix = (struct mdl_st_index *)&ix;
        int rc = mdl_st_index_parse(&ix, (const char *)copy, size, "index.json");
        if (rc == 0) {
            check_index(ix);
            mdl_st_index_free(ix);
        } else if (ix || rc > 0 || !*cru_err_msg() || cru_err_code() != rc) {
            fail("a failure without its code and message, or with an index");
        }
    } else if (which == 1) {
        struct mdl_config c;
        int rc = mdl_config_parse(&c, (const char *)copy, size, "config.json");
        if (rc == 0) {
            check_config(&c);
            mdl_config_free(&c);
        } else if (rc > 0 || !*cru_err_msg() || cru_err_code() != rc) {
            fail("a failure without its code and message");
        }
    } else {
        struct mdl_st_header *h = NULL;
        int rc = mdl_st_parse(&h, copy, size, "model.safetensors");
        if (rc == 0) {
            check_header(h, size);
            mdl_st_header_free(h);
        } else if (h || rc > 0 || !*cru_err_msg() || cru_err_code() != rc) {
            fail("a failure without its code and message, or with a header");
        }
    }
    free(copy);
    return 0;
}
