/* ringbuf driver: runs operations read from stdin, one a line, on one ring buffer and prints one
 * result line for each, then "end". Bytes are written in hex ("-" for none). It judges nothing:
 * the checker compares these raw results with its own model of ringbuf.h. Operations:
 *   new CAP       rb_new (freeing the previous buffer); prints 1, or 0 when it returned NULL
 *   cap/len/space rb_capacity / rb_len / rb_space; prints the value
 *   push HEX      rb_push; prints the count it returned
 *   pop N/peek N  rb_pop / rb_peek into an N-byte allocation; prints the count and the bytes
 *   free          rb_free; prints "-" */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringbuf.h"

/* Results go to the descriptor named by argv[1], a pipe only the checker reads, not to
 * stdout: a library that prints on stdout disturbs nothing. */
static FILE *res;

static char line[1 << 16];

static int nibble(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int main(int argc, char **argv)
{
    res = argc > 1 ? fdopen(atoi(argv[1]), "w") : stdout;
    if (!res)
        return 2;
    ringbuf *rb = NULL;
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        char *arg = strchr(line, ' ');
        if (arg)
            *arg++ = '\0';
        else
            arg = line + strlen(line);
        if (!strcmp(line, "new")) {
            rb_free(rb);
            rb = rb_new(strtoul(arg, NULL, 10));
            fprintf(res, "%d\n", rb != NULL);
        } else if (!rb) {
            fprintf(res, "%s\n", "no buffer");
        } else if (!strcmp(line, "cap")) {
            fprintf(res, "%zu\n", rb_capacity(rb));
        } else if (!strcmp(line, "len")) {
            fprintf(res, "%zu\n", rb_len(rb));
        } else if (!strcmp(line, "space")) {
            fprintf(res, "%zu\n", rb_space(rb));
        } else if (!strcmp(line, "push")) {
            /* exactly as many bytes as given, in an allocation of their own */
            size_t n = 0;
            uint8_t *src = malloc(strlen(arg) / 2 + 1);
            while (nibble(arg[2 * n]) >= 0 && nibble(arg[2 * n + 1]) >= 0) {
                src[n] = (uint8_t)(nibble(arg[2 * n]) * 16 + nibble(arg[2 * n + 1]));
                n++;
            }
            uint8_t *exact = malloc(n ? n : 1);
            memcpy(exact, src, n);
            free(src);
            fprintf(res, "%zu\n", rb_push(rb, exact, n));
            free(exact);
        } else if (!strcmp(line, "pop") || !strcmp(line, "peek")) {
            size_t n = strtoul(arg, NULL, 10);
            uint8_t *dst = malloc(n ? n : 1);
            size_t got = !strcmp(line, "pop") ? rb_pop(rb, dst, n) : rb_peek(rb, dst, n);
            fprintf(res, "%zu ", got);
            if (got > n)
                got = n;
            if (!got)
                fputc('-', res);
            for (size_t i = 0; i < got; i++)
                fprintf(res, "%02x", dst[i]);
            fputc('\n', res);
            free(dst);
        } else if (!strcmp(line, "free")) {
            rb_free(rb);
            rb = NULL;
            fprintf(res, "%s\n", "-");
        } else {
            fprintf(res, "unknown operation %s\n", line);
        }
    }
    rb_free(rb);
    fprintf(res, "%s\n", "end");
    return 0;
}
