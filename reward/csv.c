/* csv: RFC 4180 parsing into a table of strings.
 *
 * The input is validated as UTF-8 first (utf8proc), then split in one pass. Cell texts go one
 * after another, each NUL-terminated, into one buffer, and their offsets into one array; only
 * when the whole input has parsed are the offsets turned into the rows' pointers. So a table
 * costs its text plus a pointer and a NUL per cell, and never a malloc per cell. Positions for
 * messages are computed only when there is an error, by a second scan up to the offending
 * byte. It does not guess delimiters, trim spaces, convert numbers or read files.
 */
#include "reward/csv.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "lib/buf.h"
#include "lib/err.h"

/* What rwd_csv_parse hands out: the public table first, so the pointer converts both ways. */
struct csv_doc {
    struct rwd_csv pub;
    char *text;  /* every cell, NUL-terminated, one after another */
    char **ptrs; /* every cell's pointer; each row's cells is a slice */
};

struct span {
    size_t first, n; /* the row's first cell (an index into offs) and its cell count */
};

struct parser {
    const char *d;
    size_t len;
    size_t start; /* past the BOM */
    char delim;
    struct cru_buf text;
    size_t *offs; /* each cell's offset in text */
    size_t n_offs, cap_offs;
    struct span *rows;
    size_t n_rows, cap_rows;
};

/* The 1-based line and column (in code points) of byte AT. */
static void position(const struct parser *p, size_t at, size_t *line, size_t *col)
{
    size_t l = 1, c = 1;
    for (size_t i = p->start; i < at && i < p->len; i++) {
        unsigned char ch = (unsigned char)p->d[i];
        if (ch == '\n' || (ch == '\r' && !(i + 1 < p->len && p->d[i + 1] == '\n'))) {
            l++;
            c = 1;
        } else if (ch != '\r' && (ch & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

__attribute__((format(printf, 4, 5))) static int fail_at(const struct parser *p, int code,
                                                         size_t at, const char *fmt, ...)
{
    char why[512];
    size_t line, col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    position(p, at, &line, &col);
    return cru_err_set(code, "line %zu, column %zu: %s", line, col, why);
}

static int validate(const struct parser *p)
{
    const unsigned char *d = (const unsigned char *)p->d;
    for (size_t i = p->start; i < p->len;) {
        if (d[i] >= 0x80) {
            utf8proc_int32_t cp;
            size_t left = p->len - i < 4 ? p->len - i : 4;
            utf8proc_ssize_t n = utf8proc_iterate(d + i, (utf8proc_ssize_t)left, &cp);
            if (n <= 0)
                return fail_at(p, CRU_EPARSE, i, "invalid UTF-8 (byte 0x%02x)", d[i]);
            i += (size_t)n;
        } else if (d[i] == 0) {
            return fail_at(p, CRU_EPARSE, i, "a NUL byte");
        } else {
            i++;
        }
    }
    return 0;
}

/* A character for a message: 'c' when printable ASCII, else its byte in hex. */
static const char *shown(char c, char buf[16])
{
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7f)
        snprintf(buf, 16, "'%c'", u);
    else
        snprintf(buf, 16, "byte 0x%02x", u);
    return buf;
}

/* Grows *ARR (of *CAP elements of SIZE bytes) to hold at least one more. */
static int grow(void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : 64;
    if (want > SIZE_MAX / size)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    void *p = realloc(*(void **)arr, want * size);
    if (!p)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    *(void **)arr = p;
    *cap = want;
    return 0;
}

static int push_row(struct parser *p, size_t first, size_t at)
{
    if (p->n_rows == RWD_CSV_MAX_ROWS)
        return fail_at(p, CRU_ELIMIT, at, "more than %zu rows", RWD_CSV_MAX_ROWS);
    int rc = grow(&p->rows, &p->cap_rows, p->n_rows, sizeof(*p->rows));
    if (rc < 0)
        return rc;
    p->rows[p->n_rows++] = (struct span){ first, p->n_offs - first };
    return 0;
}

static bool is_end(const struct parser *p, size_t i)
{
    return p->d[i] == '\n' || p->d[i] == '\r';
}

/* Skips the line end at I (CRLF, LF or CR). */
static size_t skip_line_end(const struct parser *p, size_t i)
{
    if (p->d[i] == '\r' && i + 1 < p->len && p->d[i + 1] == '\n')
        return i + 2;
    return i + 1;
}

/* Parses the field at *I, appending its text; leaves *I at what follows it. */
static int field(struct parser *p, size_t *i)
{
    size_t at = *i, off = p->text.len;
    int rc;

    if (at < p->len && p->d[at] == '"') {
        size_t k = at + 1;
        for (;;) {
            const char *q = memchr(p->d + k, '"', p->len - k);
            if (!q)
                return fail_at(p, CRU_EPARSE, at, "unterminated quoted field");
            size_t e = (size_t)(q - p->d);
            if ((rc = cru_buf_append(&p->text, p->d + k, e - k)) < 0)
                return rc;
            if (e + 1 < p->len && p->d[e + 1] == '"') {
                if ((rc = cru_buf_putc(&p->text, '"')) < 0)
                    return rc;
                k = e + 2;
            } else {
                k = e + 1;
                break;
            }
            if (p->text.len - off > RWD_CSV_MAX_CELL_BYTES)
                break;
        }
        if (p->text.len - off <= RWD_CSV_MAX_CELL_BYTES && k < p->len && p->d[k] != p->delim &&
            !is_end(p, k))
            return fail_at(p, CRU_EPARSE, k,
                           "%s after the closing quote of a field (expected the "
                           "delimiter or a line end)",
                           shown(p->d[k], (char[16]){ 0 }));
        *i = k;
    } else {
        size_t k = at;
        while (k < p->len && p->d[k] != p->delim && !is_end(p, k) && p->d[k] != '"')
            k++;
        if (k < p->len && p->d[k] == '"')
            return fail_at(p, CRU_EPARSE, k,
                           "a quote inside an unquoted field (quote the whole "
                           "field and double the quote)");
        if ((rc = cru_buf_append(&p->text, p->d + at, k - at)) < 0)
            return rc;
        *i = k;
    }
    if (p->text.len - off > RWD_CSV_MAX_CELL_BYTES)
        return fail_at(p, CRU_ELIMIT, at, "a cell longer than %zu bytes", RWD_CSV_MAX_CELL_BYTES);
    if ((rc = cru_buf_putc(&p->text, '\0')) < 0)
        return rc;
    if ((rc = grow(&p->offs, &p->cap_offs, p->n_offs, sizeof(*p->offs))) < 0)
        return rc;
    p->offs[p->n_offs++] = off;
    return 0;
}

static int parse(struct parser *p)
{
    size_t i = p->start;
    int rc;

    while (i < p->len) {
        size_t first = p->n_offs, row_at = i;
        if (is_end(p, i)) {
            if ((rc = push_row(p, first, row_at)) < 0)
                return rc;
            i = skip_line_end(p, i);
            continue;
        }
        for (;;) {
            if (p->n_offs - first == RWD_CSV_MAX_CELLS)
                return fail_at(p, CRU_ELIMIT, i, "more than %zu cells in a row", RWD_CSV_MAX_CELLS);
            if ((rc = field(p, &i)) < 0)
                return rc;
            if (i < p->len && p->d[i] == p->delim) {
                i++;
                continue;
            }
            break;
        }
        if ((rc = push_row(p, first, row_at)) < 0)
            return rc;
        if (i < p->len)
            i = skip_line_end(p, i);
    }
    return 0;
}

/* Turns the offsets into the public table; takes the text buffer. */
static int build(struct parser *p, struct csv_doc *doc)
{
    if (p->n_rows > 0 && !(doc->pub.rows = calloc(p->n_rows, sizeof(*doc->pub.rows))))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    if (p->n_offs > 0 && !(doc->ptrs = calloc(p->n_offs, sizeof(*doc->ptrs))))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    if (p->text.data) {
        doc->text = p->text.data;
        p->text = (struct cru_buf)CRU_BUF_INIT;
    }
    for (size_t i = 0; i < p->n_offs; i++)
        doc->ptrs[i] = doc->text + p->offs[i];
    for (size_t r = 0; r < p->n_rows; r++) {
        doc->pub.rows[r].n_cells = p->rows[r].n;
        doc->pub.rows[r].cells = p->rows[r].n ? doc->ptrs + p->rows[r].first : NULL;
    }
    doc->pub.n_rows = p->n_rows;
    return 0;
}

int rwd_csv_parse(const char *data, size_t len, char delim, struct rwd_csv **out)
{
    struct parser p = { .d = data, .len = len, .delim = delim, .text = CRU_BUF_INIT };
    struct csv_doc *doc = NULL;
    int rc;

    *out = NULL;
    if (!data && len > 0)
        return cru_err_set(CRU_EINVAL, "CSV: no data");
    if (delim == '\0' || delim == '\r' || delim == '\n' || delim == '"' ||
        (unsigned char)delim >= 0x80)
        return cru_err_set(CRU_EINVAL,
                           "CSV: invalid delimiter 0x%02x (an ASCII character other "
                           "than NUL, CR, LF and '\"')",
                           (unsigned char)delim);
    if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
        p.start = 3;
    if ((rc = validate(&p)) < 0 || (rc = parse(&p)) < 0)
        goto done;
    if (!(doc = calloc(1, sizeof(*doc)))) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = build(&p, doc)) < 0)
        goto done;
    *out = &doc->pub;
    doc = NULL;
done:
    rwd_csv_free(doc ? &doc->pub : NULL);
    cru_buf_free(&p.text);
    free(p.offs);
    free(p.rows);
    return rc;
}

void rwd_csv_free(struct rwd_csv *csv)
{
    if (!csv)
        return;
    struct csv_doc *doc = (struct csv_doc *)csv;
    free(doc->pub.rows);
    free(doc->ptrs);
    free(doc->text);
    free(doc);
}
