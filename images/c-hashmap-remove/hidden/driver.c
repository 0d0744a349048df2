/* hashmap driver: runs operations read from stdin, one a line, on one map and prints one result
 * line for each, then "end". A key is written "=KEY" (so "=" is the empty key; keys hold no
 * spaces). It judges nothing: the checker compares these raw results with a Python dict.
 * Operations:
 *   put =KEY V   hm_put; prints its return value
 *   get =KEY     hm_get; prints "1 VALUE" or "0"
 *   has =KEY     hm_get with a NULL value pointer; prints its return value
 *   rm =KEY      hm_remove; prints its return value
 *   len          hm_len; prints it */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"

/* Results go to the descriptor named by argv[1], a pipe only the checker reads, not to
 * stdout: a library that prints on stdout disturbs nothing. */
static FILE *res;

static char line[4096];

int main(int argc, char **argv)
{
    res = argc > 1 ? fdopen(atoi(argv[1]), "w") : stdout;
    if (!res)
        return 2;
    hashmap *m = hm_new();
    if (!m) {
        fprintf(res, "%s\n", "hm_new returned NULL");
        return 1;
    }
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        char *key = strchr(line, '=');
        char *val = key ? strchr(key, ' ') : NULL;
        if (val)
            *val++ = '\0';
        if (key)
            key++;
        if (!strncmp(line, "put ", 4) && key && val) {
            fprintf(res, "%d\n", hm_put(m, key, atoi(val)));
        } else if (!strncmp(line, "get ", 4) && key) {
            int v = -12345;
            int rc = hm_get(m, key, &v);
            if (rc)
                fprintf(res, "%d %d\n", rc, v);
            else
                fprintf(res, "%d\n", rc);
        } else if (!strncmp(line, "has ", 4) && key) {
            fprintf(res, "%d\n", hm_get(m, key, NULL));
        } else if (!strncmp(line, "rm ", 3) && key) {
            fprintf(res, "%d\n", hm_remove(m, key));
        } else if (!strcmp(line, "len")) {
            fprintf(res, "%zu\n", hm_len(m));
        } else {
            fprintf(res, "unknown operation %s\n", line);
        }
    }
    hm_free(m);
    fprintf(res, "%s\n", "end");
    return 0;
}
