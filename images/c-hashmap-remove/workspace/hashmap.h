#ifndef HASHMAP_H
#define HASHMAP_H

#include <stddef.h>

/* A hash map from NUL-terminated strings to ints (open addressing, linear probing). */
typedef struct hashmap hashmap;

hashmap *hm_new(void);
void hm_free(hashmap *m);
/* Insert key (copied) or update its value. 0 on success, -1 when out of memory. */
int hm_put(hashmap *m, const char *key, int value);
/* 1 and *value set if key is present (value may be NULL), else 0. */
int hm_get(const hashmap *m, const char *key, int *value);
/* 1 if key was present and is now removed, else 0. */
int hm_remove(hashmap *m, const char *key);
/* Number of keys stored. */
size_t hm_len(const hashmap *m);

#endif
