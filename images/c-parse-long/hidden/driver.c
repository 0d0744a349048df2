/* parse_long driver: each line of stdin is one input string (without its newline); for each it
 * prints "RC VALUE", the return value of parse_long and the output variable afterwards (preset
 * to 5, so an unchanged output shows as 5), then "end". It judges nothing: the checker compares
 * these raw results with its own model of parse.h. */
#include <stdio.h>
#include <string.h>

#include "parse.h"

int main(void)
{
    static char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        long v = 5;
        int rc = parse_long(line, &v);
        printf("%d %ld\n", rc, v);
    }
    puts("end");
    return 0;
}
