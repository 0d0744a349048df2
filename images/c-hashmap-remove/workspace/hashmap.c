#include "hashmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    char *key; /* NULL: empty */
    int value;
};

struct hashmap {
    struct slot *slots;
    size_t cap; /* a power of two */
    size_t len;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Index of key's slot, or of the empty slot where it would be inserted. */
static size_t find(const struct slot *slots, size_t cap, const char *key)
{
    size_t i = (size_t)hash(key) & (cap - 1);
    while (slots[i].key && strcmp(slots[i].key, key) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

hashmap *hm_new(void)
{
    hashmap *m = malloc(sizeof *m);
    if (!m)
        return NULL;
    m->cap = 8;
    m->len = 0;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void hm_free(hashmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    free(m);
}

static int grow(hashmap *m)
{
    size_t ncap = m->cap * 2;
    struct slot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key)
            ns[find(ns, ncap, m->slots[i].key)] = m->slots[i];
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

int hm_put(hashmap *m, const char *key, int value)
{
    if ((m->len + 1) * 10 > m->cap * 7 && grow(m) < 0)
        return -1;
    size_t i = find(m->slots, m->cap, key);
    if (m->slots[i].key) {
        m->slots[i].value = value;
        return 0;
    }
    char *copy = malloc(strlen(key) + 1);
    if (!copy)
        return -1;
    strcpy(copy, key);
    m->slots[i].key = copy;
    m->slots[i].value = value;
    m->len++;
    return 0;
}

int hm_get(const hashmap *m, const char *key, int *value)
{
    size_t i = find(m->slots, m->cap, key);
    if (!m->slots[i].key)
        return 0;
    if (value)
        *value = m->slots[i].value;
    return 1;
}

int hm_remove(hashmap *m, const char *key)
{
    size_t i = find(m->slots, m->cap, key);
    if (!m->slots[i].key)
        return 0;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->len--;
    return 1;
}

size_t hm_len(const hashmap *m)
{
    return m->len;
}
