/* csv: an RFC 4180 CSV parser over bytes in memory, for the `csv` check kind.
 *
 *     struct rwd_csv *t;
 *     if (rwd_csv_parse(data, len, ',', &t) < 0) ... cru_err_msg() ...
 *     for (size_t r = 0; r < t->n_rows; r++)
 *         for (size_t c = 0; c < t->rows[r].n_cells; c++)
 *             use(t->rows[r].cells[c]);
 *     rwd_csv_free(t);
 *
 * The grammar, and what it does at each corner (it follows Python's csv module in strict mode):
 *
 *  - The input is UTF-8; a UTF-8 byte order mark at the very start is skipped. Invalid UTF-8
 *    and NUL bytes are errors (CRU_EPARSE), so a cell is never cut short by an embedded NUL.
 *  - A record ends at a line end: CRLF, LF, or a lone CR (as Python reads old Mac files). The
 *    last record's line end is optional. Lines and columns in messages count physical lines
 *    (line ends inside quoted fields included) and code points, both from 1.
 *  - Fields are separated by DELIM. A field that starts with a double quote is quoted: it runs
 *    to the matching closing quote, "" inside it stands for one quote, and delimiters and line
 *    ends inside it are kept as they are (a CRLF inside quotes stays CRLF). Quotes are removed.
 *    After the closing quote only DELIM, a line end or the end of the input may follow.
 *  - An unquoted field runs to the next DELIM or line end; it is kept byte for byte (no space is
 *    trimmed) and may not contain a double quote.
 *  - Empty lines: a line end at the start of a record is a row with ZERO cells (as Python's
 *    csv.reader gives []), wherever it is: "a\n\nb" is three rows, [a], [], [b], and "a\n\n"
 *    is two, [a], []. A quoted empty field ("") is a row with one empty cell, and "a," is two
 *    cells, "a" and "". Empty input (or a BOM alone) is zero rows. Rows may be ragged: each
 *    keeps its own cell count.
 *
 * Errors: CRU_EPARSE for an unterminated quoted field (at its opening quote), a quote inside an
 * unquoted field, a character after a closing quote, invalid UTF-8 or a NUL byte, each
 * "line L, column C: what"; CRU_ELIMIT for the bounds below (naming the bound and the line);
 * CRU_EINVAL for a delimiter that cannot be one; CRU_ENOMEM.
 */
#ifndef CRU_REWARD_CSV_H
#define CRU_REWARD_CSV_H

#include <stddef.h>

/* The bounds on an input; breaking one is CRU_ELIMIT. */
#define RWD_CSV_MAX_ROWS       ((size_t)1000000) /* rows, empty lines included */
#define RWD_CSV_MAX_CELLS      ((size_t)10000)   /* cells in one row */
#define RWD_CSV_MAX_CELL_BYTES ((size_t)1 << 20) /* bytes in one cell, after unquoting */

struct rwd_csv_row {
    size_t n_cells;
    char **cells; /* n_cells NUL-terminated UTF-8 strings; NULL when n_cells is 0 */
};

struct rwd_csv {
    size_t n_rows;
    struct rwd_csv_row *rows; /* NULL when n_rows is 0 */
};

/* Parses LEN bytes at DATA (which need not be NUL-terminated; NULL is fine when LEN is 0) with
 * the field delimiter DELIM: any ASCII character but NUL, CR, LF and the double quote
 * (CRU_EINVAL otherwise). On success *OUT is a new table that owns all its strings. */
int rwd_csv_parse(const char *data, size_t len, char delim, struct rwd_csv **out);

/* Frees a table from rwd_csv_parse; NULL is fine. */
void rwd_csv_free(struct rwd_csv *csv);

#endif
