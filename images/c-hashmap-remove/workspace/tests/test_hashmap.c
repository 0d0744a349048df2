#include <assert.h>
#include <stdio.h>

#include "hashmap.h"

int main(void)
{
    hashmap *m = hm_new();
    int v = 0;
    assert(m && hm_len(m) == 0);
    assert(hm_put(m, "one", 1) == 0 && hm_put(m, "two", 2) == 0);
    assert(hm_get(m, "one", &v) == 1 && v == 1);
    assert(hm_put(m, "one", 11) == 0 && hm_get(m, "one", &v) == 1 && v == 11);
    assert(hm_len(m) == 2);
    assert(hm_get(m, "three", &v) == 0);
    assert(hm_remove(m, "two") == 1 && hm_remove(m, "two") == 0);
    assert(hm_get(m, "two", NULL) == 0 && hm_len(m) == 1);
    hm_free(m);
    puts("hashmap: ok");
    return 0;
}
