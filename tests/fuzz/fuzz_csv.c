/* fuzz/csv: rwd_csv_parse on arbitrary bytes, and the write/parse round trip.
 *
 * The first byte picks the delimiter (',', ';', '\t' or '|'); the rest is the CSV. Any input
 * must parse or fail with a negative code (the one cru_err_code() reports), a message and no
 * table, never crash or read past its end. A table that parses must be consistent: the counts
 * match the arrays (NULL exactly when empty), every bound holds, no cell holds more text than
 * the input had, every cell is valid UTF-8. And it must survive being written back as CSV
 * (every field quoted, quotes doubled) and parsed again unchanged: otherwise the parser and the
 * format disagree about what a file means.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/str.h"
#include "reward/csv.h"
#include "tests/fuzz/fuzz.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_csv: %s (%s)\n", what, cru_err_msg());
    abort();
}

static void check_table(const struct rwd_csv *t, size_t input_len)
{
    size_t text = 0;
    if (t->n_rows > RWD_CSV_MAX_ROWS || (t->n_rows == 0) != (t->rows == NULL))
        fail("the row count does not match the rows");
    for (size_t r = 0; r < t->n_rows; r++) {
        const struct rwd_csv_row *row = &t->rows[r];
        if (row->n_cells > RWD_CSV_MAX_CELLS || (row->n_cells == 0) != (row->cells == NULL))
            fail("a cell count does not match the cells");
        for (size_t c = 0; c < row->n_cells; c++) {
            if (!row->cells[c])
                fail("a NULL cell");
            size_t n = strlen(row->cells[c]);
            if (n > RWD_CSV_MAX_CELL_BYTES)
                fail("a cell over the bound");
            if (!cru_utf8_valid(row->cells[c], n))
                fail("a cell that is not UTF-8");
            text += n;
        }
    }
    if (text > input_len)
        fail("more cell text than input");
}

/* Writes T as CSV with every field quoted. */
static void write_csv(const struct rwd_csv *t, char delim, struct cru_buf *b)
{
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->rows[r].n_cells; c++) {
            if (c > 0 && cru_buf_putc(b, delim) < 0)
                fail("out of memory");
            if (cru_buf_putc(b, '"') < 0)
                fail("out of memory");
            for (const char *p = t->rows[r].cells[c]; *p; p++)
                if ((*p == '"' && cru_buf_putc(b, '"') < 0) || cru_buf_putc(b, *p) < 0)
                    fail("out of memory");
            if (cru_buf_putc(b, '"') < 0)
                fail("out of memory");
        }
        if (cru_buf_puts(b, "\r\n") < 0)
            fail("out of memory");
    }
}

static void check_same(const struct rwd_csv *a, const struct rwd_csv *b)
{
    if (a->n_rows != b->n_rows)
        fail("the round trip changed the row count");
    for (size_t r = 0; r < a->n_rows; r++) {
        if (a->rows[r].n_cells != b->rows[r].n_cells)
            fail("the round trip changed a cell count");
        for (size_t c = 0; c < a->rows[r].n_cells; c++)
            if (strcmp(a->rows[r].cells[c], b->rows[r].cells[c]) != 0)
                fail("the round trip changed a cell");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char delims[] = { ',', ';', '\t', '|' };
    char delim = size > 0 ? delims[data[0] % sizeof(delims)] : ',';
    const char *csv = size > 0 ? (const char *)data + 1 : NULL;
    size_t len = size > 0 ? size - 1 : 0;
    struct rwd_csv *t = (struct rwd_csv *)&t, *again = NULL;

    cru_err_clear();
    int rc = rwd_csv_parse(csv, len, delim, &t);
    if (rc < 0) {
        if (cru_err_code() != rc || cru_err_msg()[0] == '\0')
            fail("a failure without a matching message");
        if (t)
            fail("a table on failure");
        return 0;
    }
    if (rc != 0 || !t)
        fail("success without a table");
    check_table(t, len);

    struct cru_buf b = CRU_BUF_INIT;
    write_csv(t, delim, &b);
    if (rwd_csv_parse(b.data, b.len, delim, &again) < 0)
        fail("the written table does not parse");
    check_same(t, again);
    rwd_csv_free(again);
    cru_buf_free(&b);
    rwd_csv_free(t);
    return 0;
}
