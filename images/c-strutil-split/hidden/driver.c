/* strutil driver: runs operations read from stdin, one a line, and prints one result line for
 * each, then "end". Strings are written in hex (two digits a byte, "-" for the empty string), so
 * any byte goes both ways. It judges nothing: the checker compares these raw results with its
 * own model of the functions. Operations:
 *   split C HEX        str_split(TEXT, C, &count) (count preset to 12345); prints "NULL", or the
 *                      count, each of the first count parts, and "end" when parts[count] is NULL
 *   split_nocount C HEX  str_split with count NULL; prints the parts up to the NULL pointer
 *   split_long N       str_split of N times "abc|" at '|'; prints like split
 *   copies             splits "k=v;x=y" at ';', changes the input and a part; prints the input
 *                      after the split, part 0 after the input changed, part 1 after part 0 did
 *   free_null          str_split_free(NULL); prints "-"
 *   trim HEX           str_trim of a copy; prints the result
 *   startswith HEX HEX str_startswith; prints its return value
 *   count_char C HEX   str_count_char; prints its return value
 * C is a byte as two hex digits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strutil.h"

/* Results go to the descriptor named by argv[1], a pipe only the checker reads, not to
 * stdout: a library that prints on stdout disturbs nothing. */
static FILE *res;

static char line[1 << 16];

static int nibble(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode the hex word at *p (advancing past it and one space) into a malloc'ed string. */
static char *unhex(char **p)
{
    char *s = *p, *out = malloc(strlen(s) / 2 + 1), *o = out;
    if (*s == '-')
        s++;
    while (nibble(s[0]) >= 0 && nibble(s[1]) >= 0) {
        *o++ = (char)(nibble(s[0]) * 16 + nibble(s[1]));
        s += 2;
    }
    *o = '\0';
    *p = s + (*s == ' ');
    return out;
}

static void puthex(const char *s)
{
    fputc(' ', res);
    if (!*s)
        fputc('-', res);
    for (; *s; s++)
        fprintf(res, "%02x", (unsigned char)*s);
}

static void print_parts(char **parts, size_t count, int counted)
{
    if (!parts) {
        fprintf(res, "%s\n", "NULL");
        return;
    }
    if (!counted)
        for (count = 0; count < (1u << 24) && parts[count]; count++)
            ;
    fprintf(res, "%zu", count);
    for (size_t i = 0; i < count; i++)
        puthex(parts[i] ? parts[i] : "(null)");
    fprintf(res, " %s\n", parts[count] == NULL ? "end" : "no-null");
    str_split_free(parts);
}

int main(int argc, char **argv)
{
    res = argc > 1 ? fdopen(atoi(argv[1]), "w") : stdout;
    if (!res)
        return 2;
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        char *arg = strchr(line, ' ');
        if (arg)
            *arg++ = '\0';
        else
            arg = line + strlen(line);
        if (!strcmp(line, "split") || !strcmp(line, "split_nocount") ||
            !strcmp(line, "count_char")) {
            char *c = unhex(&arg), *text = unhex(&arg);
            if (!strcmp(line, "count_char")) {
                fprintf(res, "%zu\n", str_count_char(text, c[0]));
            } else if (!strcmp(line, "split")) {
                size_t count = 12345;
                char **parts = str_split(text, c[0], &count);
                print_parts(parts, count, 1);
            } else {
                print_parts(str_split(text, c[0], NULL), 0, 0);
            }
            free(c);
            free(text);
        } else if (!strcmp(line, "split_long")) {
            size_t n = strtoul(arg, NULL, 10), count = 12345;
            char *s = malloc(n * 4 + 1);
            for (size_t i = 0; i < n; i++)
                memcpy(s + 4 * i, "abc|", 4);
            s[n * 4] = '\0';
            char **parts = str_split(s, '|', &count);
            print_parts(parts, count, 1);
            free(s);
        } else if (!strcmp(line, "copies")) {
            char input[] = "k=v;x=y";
            char **parts = str_split(input, ';', NULL);
            if (!parts || !parts[0] || !parts[1]) {
                fprintf(res, "%s\n", "NULL");
                str_split_free(parts);
                continue;
            }
            fprintf(res, "%s", input);
            input[0] = 'Z';
            fprintf(res, " %s", parts[0]);
            parts[0][0] = 'Q';
            fprintf(res, " %s\n", parts[1]);
            str_split_free(parts);
        } else if (!strcmp(line, "free_null")) {
            str_split_free(NULL);
            fprintf(res, "%s\n", "-");
        } else if (!strcmp(line, "trim")) {
            char *s = unhex(&arg);
            fprintf(res, "[%s]\n", str_trim(s));
            free(s);
        } else if (!strcmp(line, "startswith")) {
            char *a = unhex(&arg), *b = unhex(&arg);
            fprintf(res, "%d\n", str_startswith(a, b));
            free(a);
            free(b);
        } else {
            fprintf(res, "unknown operation %s\n", line);
        }
    }
    fprintf(res, "%s\n", "end");
    return 0;
}
