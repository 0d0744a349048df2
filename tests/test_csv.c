/* Tests for reward/csv: RFC 4180 parsing (quotes, escaped quotes, delimiters and line ends
 * inside quotes, CRLF, BOM, custom delimiters, ragged rows, empty lines as Python's csv module
 * reads them), every error with its line and column, and every bound at and past its edge. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "reward/csv.h"

static struct rwd_csv *parse_n(const char *s, size_t len, char delim)
{
    struct rwd_csv *t = NULL;
    int rc = rwd_csv_parse(s, len, delim, &t);
    cr_assert_eq(rc, 0, "rwd_csv_parse: %d %s", rc, cru_err_msg());
    cr_assert_not_null(t);
    return t;
}

static struct rwd_csv *parse(const char *s)
{
    return parse_n(s, strlen(s), ',');
}

/* Row R has exactly the N cells given. */
static void row_is(const struct rwd_csv *t, size_t r, size_t n, ...)
{
    cr_assert_lt(r, t->n_rows, "row %zu of %zu", r, t->n_rows);
    cr_assert_eq(t->rows[r].n_cells, n, "row %zu: %zu cells, expected %zu", r, t->rows[r].n_cells,
                 n);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        const char *want = va_arg(ap, const char *);
        cr_assert_str_eq(t->rows[r].cells[i], want, "row %zu cell %zu", r, i);
    }
    va_end(ap);
}

static void fails(const char *s, size_t len, char delim, int code, const char *msg)
{
    struct rwd_csv *t = (struct rwd_csv *)&t; /* must be reset */
    cru_err_clear();
    int rc = rwd_csv_parse(s, len, delim, &t);
    cr_assert_eq(rc, code, "rc %d (%s), expected %d", rc, cru_err_msg(), code);
    cr_assert_null(t);
    cr_assert_eq(cru_err_code(), code);
    cr_assert(strstr(cru_err_msg(), msg), "message '%s' lacks '%s'", cru_err_msg(), msg);
}

static void fails_s(const char *s, int code, const char *msg)
{
    fails(s, strlen(s), ',', code, msg);
}

Test(csv, plain_rows)
{
    struct rwd_csv *t = parse("a,b,c\n1,2,3\n");
    cr_assert_eq(t->n_rows, 2);
    row_is(t, 0, 3, "a", "b", "c");
    row_is(t, 1, 3, "1", "2", "3");
    rwd_csv_free(t);
}

Test(csv, quoting_and_escaped_quotes)
{
    struct rwd_csv *t = parse("\"a,b\",\"say \"\"hi\"\"\",plain,\"\",\"\"\"\"\n");
    cr_assert_eq(t->n_rows, 1);
    row_is(t, 0, 5, "a,b", "say \"hi\"", "plain", "", "\"");
    rwd_csv_free(t);
}

Test(csv, newlines_inside_quotes_are_kept)
{
    struct rwd_csv *t = parse("\"line1\nline2\",x\r\n\"crlf\r\ninside\",\"lone\rcr\"\n");
    cr_assert_eq(t->n_rows, 2);
    row_is(t, 0, 2, "line1\nline2", "x");
    row_is(t, 1, 2, "crlf\r\ninside", "lone\rcr");
    rwd_csv_free(t);
}

Test(csv, crlf_lf_and_no_final_line_end)
{
    struct rwd_csv *t = parse("a,b\r\nc,d\ne,f");
    cr_assert_eq(t->n_rows, 3);
    row_is(t, 0, 2, "a", "b");
    row_is(t, 1, 2, "c", "d");
    row_is(t, 2, 2, "e", "f");
    rwd_csv_free(t);

    t = parse("a\rb\r"); /* lone CRs end lines too, as in Python */
    cr_assert_eq(t->n_rows, 2);
    row_is(t, 0, 1, "a");
    row_is(t, 1, 1, "b");
    rwd_csv_free(t);
}

Test(csv, bom_is_skipped_only_at_the_start)
{
    struct rwd_csv *t = parse("\xef\xbb\xbfname,x\xef\xbb\xbfy\n");
    row_is(t, 0, 2, "name", "x\xef\xbb\xbfy");
    rwd_csv_free(t);

    t = parse("\xef\xbb\xbf\"quoted\"\n"); /* a quote right after the BOM opens a field */
    row_is(t, 0, 1, "quoted");
    rwd_csv_free(t);

    t = parse("\xef\xbb\xbf");
    cr_assert_eq(t->n_rows, 0);
    cr_assert_null(t->rows);
    rwd_csv_free(t);
}

Test(csv, custom_delimiters)
{
    const char *s = "a;\"b;c\";d,e\n1;2\n";
    struct rwd_csv *t = parse_n(s, strlen(s), ';');
    cr_assert_eq(t->n_rows, 2);
    row_is(t, 0, 3, "a", "b;c", "d,e");
    row_is(t, 1, 2, "1", "2");
    rwd_csv_free(t);

    s = "a\tb c\t\n";
    t = parse_n(s, strlen(s), '\t');
    row_is(t, 0, 3, "a", "b c", "");
    rwd_csv_free(t);
}

Test(csv, ragged_rows_and_spaces_kept)
{
    struct rwd_csv *t = parse("a\nb,c,d\n e , f\n,\n");
    cr_assert_eq(t->n_rows, 4);
    row_is(t, 0, 1, "a");
    row_is(t, 1, 3, "b", "c", "d");
    row_is(t, 2, 2, " e ", " f");
    row_is(t, 3, 2, "", "");
    rwd_csv_free(t);
}

/* As Python's csv.reader: an empty line is a row with zero cells, wherever it is. */
Test(csv, empty_lines_are_rows_without_cells)
{
    struct rwd_csv *t = parse("a\n\nb\r\n\r\nc\n\n");
    cr_assert_eq(t->n_rows, 6);
    row_is(t, 0, 1, "a");
    row_is(t, 1, 0);
    cr_assert_null(t->rows[1].cells);
    row_is(t, 2, 1, "b");
    row_is(t, 3, 0);
    row_is(t, 4, 1, "c");
    row_is(t, 5, 0);
    rwd_csv_free(t);

    t = parse("\n");
    cr_assert_eq(t->n_rows, 1);
    row_is(t, 0, 0);
    rwd_csv_free(t);

    t = parse("\"\"\n"); /* a quoted empty field is one empty cell */
    cr_assert_eq(t->n_rows, 1);
    row_is(t, 0, 1, "");
    rwd_csv_free(t);

    t = parse("a,");
    row_is(t, 0, 2, "a", "");
    rwd_csv_free(t);
}

Test(csv, empty_input)
{
    struct rwd_csv *t = parse_n(NULL, 0, ',');
    cr_assert_eq(t->n_rows, 0);
    cr_assert_null(t->rows);
    rwd_csv_free(t);
    rwd_csv_free(NULL);
}

Test(csv, utf8_passes_through)
{
    struct rwd_csv *t = parse("caf\xc3\xa9,\"\xe2\x82\xac 5\",\xf0\x9f\x98\x80\n");
    row_is(t, 0, 3, "caf\xc3\xa9", "\xe2\x82\xac 5", "\xf0\x9f\x98\x80");
    rwd_csv_free(t);
}

Test(csv, does_not_read_past_len)
{
    /* The bytes after LEN (a quote that would close the field) must not be seen. */
    const char *s = "a,\"b\"";
    fails(s, 4, ',', CRU_EPARSE, "line 1, column 3: unterminated quoted field");
    struct rwd_csv *t = parse_n("x,y,z", 3, ',');
    row_is(t, 0, 2, "x", "y");
    rwd_csv_free(t);
}

Test(csv, unterminated_quote_names_its_opening)
{
    fails_s("a,b\nc,\"open\nstill open\n", CRU_EPARSE,
            "line 2, column 3: unterminated quoted field");
    fails_s("\"", CRU_EPARSE, "line 1, column 1: unterminated");
    fails_s("\"a\"\"", CRU_EPARSE, "line 1, column 1: unterminated");
}

Test(csv, quote_inside_unquoted_field)
{
    fails_s("a,b\nab,c\"d\n", CRU_EPARSE, "line 2, column 5: a quote inside an unquoted field");
    fails_s(" \"x\"", CRU_EPARSE, "line 1, column 2: a quote inside an unquoted field");
    /* Columns count code points, not bytes; lines count those inside quoted fields. */
    fails_s("\"multi\nline\"\n\xc3\xa9\xc3\xa9\"", CRU_EPARSE,
            "line 3, column 3: a quote inside an unquoted field");
}

Test(csv, character_after_closing_quote)
{
    fails_s("a,\"b\"c\n", CRU_EPARSE, "line 1, column 6: 'c' after the closing quote");
    fails_s("\"b\" ,c", CRU_EPARSE, "line 1, column 4: ' ' after the closing quote");
    fails_s("\r\n\"b\"\t", CRU_EPARSE, "line 2, column 4: byte 0x09 after the closing quote");
}

Test(csv, invalid_utf8_and_nul)
{
    fails_s("ok\nab\xff", CRU_EPARSE, "line 2, column 3: invalid UTF-8 (byte 0xff)");
    fails_s("\xc3\xa9,\xc3", CRU_EPARSE, "line 1, column 3: invalid UTF-8");
    fails_s("\xc0\x80", CRU_EPARSE, "line 1, column 1: invalid UTF-8");     /* overlong NUL */
    fails_s("\xed\xa0\x80", CRU_EPARSE, "line 1, column 1: invalid UTF-8"); /* a surrogate */
    fails_s("\"\xf4\x90\x80\x80\"", CRU_EPARSE, "line 1, column 2: invalid UTF-8"); /* > U+10FFFF */
    fails("a,b\nc\0d", 7, ',', CRU_EPARSE, "line 2, column 2: a NUL byte");
}

Test(csv, bad_delimiters)
{
    const char bad[] = { '"', '\n', '\r', '\0', (char)0xc3 };
    for (size_t i = 0; i < sizeof(bad); i++)
        fails("a", 1, bad[i], CRU_EINVAL, "invalid delimiter");
}

Test(csv, row_bound)
{
    size_t n = RWD_CSV_MAX_ROWS;
    char *s = malloc(n + 2);
    cr_assert_not_null(s);
    memset(s, '\n', n + 1);
    struct rwd_csv *t = parse_n(s, n, ',');
    cr_assert_eq(t->n_rows, n);
    rwd_csv_free(t);
    fails(s, n + 1, ',', CRU_ELIMIT, "line 1000001, column 1: more than 1000000 rows");
    free(s);
}

Test(csv, cell_count_bound)
{
    size_t n = RWD_CSV_MAX_CELLS;
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    memset(s, ',', n);
    s[n] = '\0';
    struct rwd_csv *t = parse_n(s, n - 1, ','); /* n - 1 delimiters: n cells */
    cr_assert_eq(t->n_rows, 1);
    cr_assert_eq(t->rows[0].n_cells, n);
    rwd_csv_free(t);
    fails(s, n, ',', CRU_ELIMIT, "line 1, column 10001: more than 10000 cells in a row");
    free(s);
}

Test(csv, cell_size_bound)
{
    size_t n = RWD_CSV_MAX_CELL_BYTES;
    char *s = malloc(n + 8);
    cr_assert_not_null(s);
    memset(s, 'x', n + 8);
    struct rwd_csv *t = parse_n(s, n, ',');
    cr_assert_eq(strlen(t->rows[0].cells[0]), n);
    rwd_csv_free(t);
    fails(s, n + 1, ',', CRU_ELIMIT, "line 1, column 1: a cell longer than 1048576 bytes");

    /* Quoted: the bound is on the text after unquoting ("" counts once). */
    s[0] = '"';
    memcpy(s + 1, "\"\"", 2);
    s[n + 2] = '"';
    t = parse_n(s, n + 3, ',');
    cr_assert_eq(strlen(t->rows[0].cells[0]), n);
    cr_assert_eq(t->rows[0].cells[0][0], '"');
    rwd_csv_free(t);
    s[n + 2] = 'x';
    s[n + 3] = '"';
    fails(s, n + 4, ',', CRU_ELIMIT, "a cell longer than");
    free(s);
}
