/* parse_long driver: each line of stdin is one input string (without its newline); for each it
 * prints "RC VALUE", the return value of parse_long and the output variable afterwards (preset
 * to 5, so an unchanged output shows as 5), then "end". It judges nothing: the checker compares
 * these raw results with its own model of parse.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* Results go to the descriptor named by argv[1], a pipe only the checker reads, not to
 * stdout: a library that prints on stdout disturbs nothing. */
static FILE *res;

int main(int argc, char **argv)
{
    res = argc > 1 ? fdopen(atoi(argv[1]), "w") : stdout;
    if (!res)
        return 2;
    static char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        long v = 5;
        int rc = parse_long(line, &v);
        fprintf(res, "%d %ld\n", rc, v);
    }
    fprintf(res, "%s\n", "end");
    return 0;
}
