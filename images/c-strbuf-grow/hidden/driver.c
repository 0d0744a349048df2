/* strbuf driver: runs operations read from stdin, one a line, on one strbuf and prints one result
 * line for each, then "end". It judges nothing: the checker compares these raw results with its
 * own model of strbuf.h. Operations (TEXT is the rest of the line, possibly empty):
 *   append TEXT          sb_append; prints its return value
 *   append_n N TEXT      sb_append_n(sb, TEXT, N) with N <= strlen(TEXT); prints its return value
 *   append_pat N         sb_append of N bytes 'a' + i % 26; prints its return value
 *   appendf_id S D C     sb_appendf(sb, "%s-%05d-%c", S, D, C); prints its return value
 *   appendf_rep C N D    sb_appendf(sb, "%s|%d", N times C, D); prints its return value
 *   appendf_sum A B      sb_appendf(sb, " %d+%d=%d", A, B, A + B); prints its return value
 *   grow N               sb_grow; prints its return value
 *   fill_to_cap C        appends C while len + 1 < cap (at most 1 << 20 times); prints how often
 *   state                prints "LEN CAP ISNULL" (ISNULL: 1 when buf is NULL)
 *   term                 prints the byte at buf[len] (-1 when buf is NULL)
 *   str                  prints sb_str
 *   mark / same          remembers buf and cap / prints "BUF_SAME CAP_SAME" (1 or 0 each)
 *   reset / free         sb_reset / sb_free; print "-"
 *   detach               sb_detach with *len preset to 99; prints "ISNULL LEN TEXT" and keeps it
 *   detached I           prints the I-th detached string again */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* Results go to the descriptor named by argv[1], a pipe only the checker reads, not to
 * stdout: a library that prints on stdout disturbs nothing. */
static FILE *res;

static char line[1 << 16];

int main(int argc, char **argv)
{
    res = argc > 1 ? fdopen(atoi(argv[1]), "w") : stdout;
    if (!res)
        return 2;
    strbuf sb;
    char *kept[64];
    int n_kept = 0;
    char *mark_buf = NULL;
    size_t mark_cap = 0;
    sb_init(&sb);
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        char *arg = strchr(line, ' ');
        if (arg)
            *arg++ = '\0';
        else
            arg = line + strlen(line);
        if (!strcmp(line, "append")) {
            fprintf(res, "%d\n", sb_append(&sb, arg));
        } else if (!strcmp(line, "append_n")) {
            char *text = NULL;
            size_t k = strtoul(arg, &text, 10);
            text += *text == ' ';
            if (k > strlen(text))
                k = strlen(text);
            fprintf(res, "%d\n", sb_append_n(&sb, text, k));
        } else if (!strcmp(line, "append_pat")) {
            size_t k = strtoul(arg, NULL, 10);
            char *p = malloc(k + 1);
            for (size_t i = 0; i < k; i++)
                p[i] = (char)('a' + i % 26);
            p[k] = '\0';
            fprintf(res, "%d\n", sb_append(&sb, p));
            free(p);
        } else if (!strcmp(line, "appendf_id")) {
            char s[256], c = '?';
            int d = 0;
            s[0] = '\0';
            sscanf(arg, "%255s %d %c", s, &d, &c);
            fprintf(res, "%d\n", sb_appendf(&sb, "%s-%05d-%c", s, d, c));
        } else if (!strcmp(line, "appendf_rep")) {
            char c = '?';
            size_t k = 0;
            int d = 0;
            sscanf(arg, "%c %zu %d", &c, &k, &d);
            char *w = malloc(k + 1);
            memset(w, c, k);
            w[k] = '\0';
            fprintf(res, "%d\n", sb_appendf(&sb, "%s|%d", w, d));
            free(w);
        } else if (!strcmp(line, "appendf_sum")) {
            int a = 0, b = 0;
            sscanf(arg, "%d %d", &a, &b);
            fprintf(res, "%d\n", sb_appendf(&sb, " %d+%d=%d", a, b, a + b));
        } else if (!strcmp(line, "grow")) {
            fprintf(res, "%d\n", sb_grow(&sb, strtoul(arg, NULL, 10)));
        } else if (!strcmp(line, "fill_to_cap")) {
            long k = 0;
            while (sb.len + 1 < sb.cap && k < (1L << 20) && sb_append(&sb, arg) == 0)
                k++;
            fprintf(res, "%ld\n", k);
        } else if (!strcmp(line, "state")) {
            fprintf(res, "%zu %zu %d\n", sb.len, sb.cap, sb.buf == NULL);
        } else if (!strcmp(line, "term")) {
            fprintf(res, "%d\n", sb.buf ? (unsigned char)sb.buf[sb.len] : -1);
        } else if (!strcmp(line, "str")) {
            fprintf(res, "%s\n", sb_str(&sb));
        } else if (!strcmp(line, "mark")) {
            mark_buf = sb.buf;
            mark_cap = sb.cap;
            fprintf(res, "%s\n", "-");
        } else if (!strcmp(line, "same")) {
            fprintf(res, "%d %d\n", sb.buf == mark_buf, sb.cap == mark_cap);
        } else if (!strcmp(line, "reset")) {
            sb_reset(&sb);
            fprintf(res, "%s\n", "-");
        } else if (!strcmp(line, "free")) {
            sb_free(&sb);
            fprintf(res, "%s\n", "-");
        } else if (!strcmp(line, "detach")) {
            size_t len = 99;
            char *p = sb_detach(&sb, &len);
            fprintf(res, "%d %zu %s\n", p == NULL, len, p ? p : "");
            if (p && n_kept < 64)
                kept[n_kept++] = p;
        } else if (!strcmp(line, "detached")) {
            int i = atoi(arg);
            fprintf(res, "%s\n", i >= 0 && i < n_kept ? kept[i] : "(none)");
        } else {
            fprintf(res, "unknown operation %s\n", line);
        }
    }
    for (int i = 0; i < n_kept; i++)
        free(kept[i]);
    sb_free(&sb);
    fprintf(res, "%s\n", "end");
    return 0;
}
