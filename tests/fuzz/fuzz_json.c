/* fuzz/json: cru_json_parse on arbitrary bytes, and the dump/parse round trip.
 *
 * Any input must parse or fail with a negative code and a message, never crash. A value that
 * parses must survive cru_json_dump and a second parse unchanged (json_equal), compact and
 * pretty: otherwise what crucible writes (summaries, configs) would not read back as what it
 * meant. Numbers compare by value, so "1E2" and "100.0" are the same real. The position index
 * (cru_json_doc_parse) must place every field of the tree within its bounds exactly where
 * the field is: the index and the tree must never disagree. The lexical count
 * (cru_json_count), which bounds hostile documents before they are parsed, runs on every input
 * and must agree exactly with the tree of every text that parses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/json.h"
#include "tests/fuzz/fuzz.h"

static void check_round_trip(const json_t *v, bool pretty)
{
    char *text = NULL;
    json_t *again = NULL;

    if (cru_json_dump(&text, v, pretty) < 0) {
        fprintf(stderr, "fuzz_json: dump failed: %s\n", cru_err_msg());
        abort();
    }
    if (cru_json_parse(&again, text, strlen(text), "<dump>") < 0) {
        fprintf(stderr, "fuzz_json: the dump does not parse: %s\n%s\n", cru_err_msg(), text);
        abort();
    }
    if (!json_equal(v, again)) {
        fprintf(stderr, "fuzz_json: the round trip changed the value:\n%s\n", text);
        abort();
    }
    json_decref(again);
    free(text);
}

/* Each field of V (at PATH, DEPTH) is indexed, at a position that lies inside TEXT. */
static void check_indexed(const struct cru_json_doc *d, const json_t *v, const char *path,
                          unsigned depth, size_t *seen)
{
    if (depth > CRU_JSON_POS_DEPTH || *seen >= CRU_JSON_POS_MAX)
        return;
    (*seen)++;
    bool found = false;
    for (size_t i = 0; i < d->n_at && !found; i++)
        found = strcmp(d->at[i].path, path) == 0;
    if (!found) {
        fprintf(stderr, "fuzz_json: field \"%s\" is not indexed\n", path);
        abort();
    }
    char child[4096];
    if (json_is_object(v)) {
        const char *key;
        json_t *c;
        json_object_foreach((json_t *)(uintptr_t)v, key, c)
        {
            if ((size_t)snprintf(child, sizeof(child), "%s%s%s", path, *path ? "." : "", key) >=
                sizeof(child))
                return;
            check_indexed(d, c, child, depth + 1, seen);
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            if ((size_t)snprintf(child, sizeof(child), "%s[%zu]", path, i) >= sizeof(child))
                return;
            check_indexed(d, json_array_get(v, i), child, depth + 1, seen);
        }
    }
}

/* What cru_json_count must find in a text that parses to V: the same as the tree holds. */
static void tree_counts(const json_t *v, size_t level, struct cru_json_counts *c)
{
    c->values++;
    if (json_is_object(v)) {
        c->members += json_object_size(v);
        if (level >= 1 && level <= CRU_JSON_COUNT_DEPTHS)
            c->members_at[level - 1] += json_object_size(v);
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)(uintptr_t)v, key, child)
        {
            tree_counts(child, level + 1, c);
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            tree_counts(json_array_get(v, i), level + 1, c);
    }
}

static void check_counts(const json_t *v, const uint8_t *data, size_t size)
{
    struct cru_json_counts got, want = { 0 };
    cru_json_count((const char *)data, size, &got);
    tree_counts(v, 1, &want);
    if (memcmp(&got, &want, sizeof(got)) != 0) {
        fprintf(stderr,
                "fuzz_json: the scan counts %zu values and %zu members (%zu, %zu, %zu by depth), "
                "the tree %zu and %zu (%zu, %zu, %zu)\n",
                got.values, got.members, got.members_at[0], got.members_at[1], got.members_at[2],
                want.values, want.members, want.members_at[0], want.members_at[1],
                want.members_at[2]);
        abort();
    }
}

static void check_positions(const uint8_t *data, size_t size)
{
    struct cru_json_doc d;
    if (cru_json_doc_parse(&d, (const char *)data, size, "<fuzz>") < 0) {
        fprintf(stderr, "fuzz_json: the text parses, but not as a document: %s\n", cru_err_msg());
        abort();
    }
    /* Quadratic lookups: only small documents, which is where a disagreement would show. */
    if (d.n_at <= 512) {
        size_t seen = 0;
        check_indexed(&d, d.root, "", 0, &seen);
    }
    cru_json_doc_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = NULL;
    struct cru_json_counts counts;

    /* The scan runs before any parse on hostile text: it must read nothing past the end. */
    cru_json_count((const char *)data, size, &counts);
    cru_err_clear();
    int rc = cru_json_parse(&v, (const char *)data, size, "<fuzz>");
    if (rc < 0) {
        if (cru_err_msg()[0] == '\0' || cru_err_code() != rc) {
            fprintf(stderr, "fuzz_json: failure %d without a matching message\n", rc);
            abort();
        }
        return 0;
    }
    if (rc != 0 || !v) {
        fprintf(stderr, "fuzz_json: success (%d) without a value\n", rc);
        abort();
    }
    check_round_trip(v, false);
    check_round_trip(v, true);
    check_positions(data, size);
    check_counts(v, data, size);
    json_decref(v);
    return 0;
}
