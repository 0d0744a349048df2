/* Tests for reward/ooxml: XLSX and DOCX files made by openpyxl and python-docx, and by hand
 * (tests/ooxml_fixtures.py) for what those never write, read back value by value; malformed
 * and hostile files (not a zip, missing parts, truncation, DOCTYPEs and entity bombs, parts
 * over the caps, zip bombs, lying headers, too many entries) refused with the right code and a
 * message that names the part, each with a positive control that opens. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "reward/ooxml.h"
#include "reward/spec.h"

static char dir[64];

static void make_dir(void)
{
    strcpy(dir, "/tmp/crucible-test-ooxml-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(ooxml, .init = make_dir, .fini = remove_dir);

/* Writes the fixture NAME (tests/ooxml_fixtures.py) and reads it into B. */
static void fixture(const char *name, struct cru_buf *b)
{
    const char *src = getenv("CRUCIBLE_SRC");
    cr_assert(src && *src, "CRUCIBLE_SRC is not set: run the tests with `make test`");
    char cmd[1024], path[256];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s/tests/ooxml_fixtures.py' '%s' '%s'", src, dir,
             name);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    *b = (struct cru_buf)CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(path, 16 << 20, b), 0, "%s", cru_err_msg());
}

static struct rwd_xlsx *open_xlsx(const char *name)
{
    struct cru_buf b;
    struct rwd_xlsx *x = NULL;
    fixture(name, &b);
    int rc = rwd_xlsx_open(b.data, b.len, &x);
    cr_assert_eq(rc, 0, "%s: %d %s", name, rc, cru_err_msg());
    cr_assert_not_null(x);
    cru_buf_free(&b);
    return x;
}

static struct rwd_docx *open_docx(const char *name)
{
    struct cru_buf b;
    struct rwd_docx *d = NULL;
    fixture(name, &b);
    int rc = rwd_docx_open(b.data, b.len, &d);
    cr_assert_eq(rc, 0, "%s: %d %s", name, rc, cru_err_msg());
    cr_assert_not_null(d);
    cru_buf_free(&b);
    return d;
}

static void check_fail(int rc, bool got, int code, const char *msg, const char *what)
{
    cr_assert_eq(rc, code, "%s: rc %d (%s), expected %d", what, rc, cru_err_msg(), code);
    cr_assert_not(got, "%s: a result on failure", what);
    cr_assert_eq(cru_err_code(), code);
    cr_assert(strstr(cru_err_msg(), msg), "%s: message '%s' lacks '%s'", what, cru_err_msg(), msg);
}

static void xlsx_bytes_fail(const void *data, size_t len, int code, const char *msg)
{
    struct rwd_xlsx *x = (struct rwd_xlsx *)dir; /* must be reset to NULL */
    cru_err_clear();
    int rc = rwd_xlsx_open(data, len, &x);
    check_fail(rc, x != NULL, code, msg, "rwd_xlsx_open");
}

static void docx_bytes_fail(const void *data, size_t len, int code, const char *msg)
{
    struct rwd_docx *d = (struct rwd_docx *)dir;
    cru_err_clear();
    int rc = rwd_docx_open(data, len, &d);
    check_fail(rc, d != NULL, code, msg, "rwd_docx_open");
}

static void xlsx_fails(const char *name, int code, const char *msg)
{
    struct cru_buf b;
    fixture(name, &b);
    xlsx_bytes_fail(b.data, b.len, code, msg);
    cru_buf_free(&b);
}

static void docx_fails(const char *name, int code, const char *msg)
{
    struct cru_buf b;
    fixture(name, &b);
    docx_bytes_fail(b.data, b.len, code, msg);
    cru_buf_free(&b);
}

static struct rwd_xlsx_value cell(const struct rwd_xlsx *x, const char *sheet, const char *ref)
{
    uint32_t col, row;
    struct rwd_xlsx_value v;
    cr_assert_eq(rwd_cell_ref(ref, &col, &row), 0);
    int rc = rwd_xlsx_cell(x, sheet, col, row, &v);
    cr_assert_eq(rc, 0, "%s!%s: %d %s", sheet, ref, rc, cru_err_msg());
    return v;
}

static void is_number(const struct rwd_xlsx *x, const char *sheet, const char *ref, double want)
{
    struct rwd_xlsx_value v = cell(x, sheet, ref);
    cr_assert_eq(v.type, RWD_XV_NUMBER, "%s!%s: type %d", sheet, ref, v.type);
    cr_assert_eq(v.number, want, "%s!%s: %.17g, expected %.17g", sheet, ref, v.number, want);
}

static void is_string(const struct rwd_xlsx *x, const char *sheet, const char *ref,
                      const char *want)
{
    struct rwd_xlsx_value v = cell(x, sheet, ref);
    cr_assert_eq(v.type, RWD_XV_STRING, "%s!%s: type %d", sheet, ref, v.type);
    cr_assert_str_eq(v.text, want, "%s!%s", sheet, ref);
}

static void is_empty(const struct rwd_xlsx *x, const char *sheet, const char *ref)
{
    struct rwd_xlsx_value v = cell(x, sheet, ref);
    cr_assert_eq(v.type, RWD_XV_EMPTY, "%s!%s: type %d", sheet, ref, v.type);
    cr_assert_null(v.text);
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- XLSX: values ---- */

Test(ooxml, xlsx_openpyxl_values)
{
    struct rwd_xlsx *x = open_xlsx("openpyxl.xlsx");
    is_number(x, "Data", "A1", 1);
    is_number(x, "Data", "A2", 2.5);
    is_number(x, "Data", "A3", -3e-5);
    is_number(x, "Data", "D10", 1e300);
    struct rwd_xlsx_value v = cell(x, "Data", "B1");
    cr_assert_eq(v.type, RWD_XV_BOOL);
    cr_assert(v.boolean);
    cr_assert_not(v.has_formula);
    cr_assert_null(v.formula);
    v = cell(x, "Data", "B2");
    cr_assert_eq(v.type, RWD_XV_BOOL);
    cr_assert_not(v.boolean);
    /* openpyxl 3.0 writes strings inline (t="inlineStr") */
    is_string(x, "Data", "C1", "text");
    is_string(x, "Data", "C2", "caf\xc3\xa9 \xe2\x82\xac");
    is_empty(x, "Data", "Z99");
    is_empty(x, "Data", "XFD1048576");
    rwd_xlsx_free(x);
}

/* openpyxl stores "=SUM(A1:A3)" as <f>SUM(A1:A3)</f><v></v>: a formula without a cached value,
 * which reads as EMPTY with the formula (no leading "="). */
Test(ooxml, xlsx_openpyxl_formula_without_value)
{
    struct rwd_xlsx *x = open_xlsx("openpyxl.xlsx");
    struct rwd_xlsx_value v = cell(x, "Data", "A4");
    cr_assert_eq(v.type, RWD_XV_EMPTY);
    cr_assert(v.has_formula);
    cr_assert_str_eq(v.formula, "SUM(A1:A3)");
    rwd_xlsx_free(x);
}

Test(ooxml, xlsx_sheets_by_name)
{
    struct rwd_xlsx *x = open_xlsx("openpyxl.xlsx");
    cr_assert_eq(rwd_xlsx_sheet_count(x), 3);
    cr_assert_str_eq(rwd_xlsx_sheet_name(x, 0), "Data");
    cr_assert_str_eq(rwd_xlsx_sheet_name(x, 1), "Other");
    cr_assert_str_eq(rwd_xlsx_sheet_name(x, 2), "Third Sheet");
    cr_assert_null(rwd_xlsx_sheet_name(x, 3));
    is_string(x, "Other", "B2", "other sheet");
    is_empty(x, "Other", "A1");
    is_number(x, "Third Sheet", "A1", 3);
    is_empty(x, "Data", "A5");
    /* ASCII case is ignored when no name matches exactly, as Excel does */
    is_number(x, "data", "A1", 1);
    is_number(x, "THIRD SHEET", "A1", 3);
    rwd_xlsx_free(x);
}

Test(ooxml, xlsx_unknown_sheet_and_bad_cells)
{
    struct rwd_xlsx *x = open_xlsx("openpyxl.xlsx");
    struct rwd_xlsx_value v;
    cru_err_clear();
    cr_assert_eq(rwd_xlsx_cell(x, "Nope", 0, 0, &v), CRU_ENOENT);
    cr_assert_eq(v.type, RWD_XV_EMPTY);
    cr_assert(strstr(cru_err_msg(), "no sheet named 'Nope'"), "%s", cru_err_msg());
    cr_assert(strstr(cru_err_msg(), "'Data', 'Other', 'Third Sheet'"), "%s", cru_err_msg());
    cr_assert_eq(rwd_xlsx_cell(x, "Data", 16384, 0, &v), CRU_EINVAL);
    cr_assert_eq(rwd_xlsx_cell(x, "Data", 0, 1048576, &v), CRU_EINVAL);
    cr_assert_eq(rwd_xlsx_cell(x, NULL, 0, 0, &v), CRU_EINVAL);
    rwd_xlsx_free(x);
    rwd_xlsx_free(NULL);
}

Test(ooxml, xlsx_shared_and_inline_strings)
{
    struct rwd_xlsx *x = open_xlsx("handmade.xlsx");
    is_string(x, "First", "B1", "plain");
    /* rich text runs concatenated; the phonetic run left out */
    is_string(x, "First", "B2", "rich text");
    is_string(x, "First", "B3", " spaced & <escaped> ");
    is_string(x, "First", "B4", "inline runs");
    rwd_xlsx_free(x);
}

Test(ooxml, xlsx_formulas_and_cached_values)
{
    struct rwd_xlsx *x = open_xlsx("handmade.xlsx");
    struct rwd_xlsx_value v = cell(x, "First", "A4");
    cr_assert_eq(v.type, RWD_XV_NUMBER);
    cr_assert_eq(v.number, 6);
    cr_assert(v.has_formula);
    cr_assert_str_eq(v.formula, "SUM(A1:A3)");

    v = cell(x, "First", "C4"); /* t="str", and a leading "=" in <f> is dropped */
    cr_assert_eq(v.type, RWD_XV_STRING);
    cr_assert_str_eq(v.text, "X");
    cr_assert_str_eq(v.formula, "UPPER(\"x\")");

    v = cell(x, "First", "D4");
    cr_assert_eq(v.type, RWD_XV_ERROR);
    cr_assert_str_eq(v.text, "#DIV/0!");
    cr_assert_str_eq(v.formula, "1/0");

    v = cell(x, "First", "G4"); /* a shared formula's master */
    cr_assert_eq(v.number, 12);
    cr_assert_str_eq(v.formula, "A4*2");
    v = cell(x, "First", "G5"); /* a cell that shares it: a formula with no text of its own */
    cr_assert_eq(v.type, RWD_XV_NUMBER);
    cr_assert(v.has_formula);
    cr_assert_str_eq(v.formula, "");

    is_number(x, "First", "A1", 1); /* no formula */
    cr_assert_not(cell(x, "First", "A1").has_formula);
    rwd_xlsx_free(x);
}

Test(ooxml, xlsx_other_types_and_positions)
{
    struct rwd_xlsx *x = open_xlsx("handmade.xlsx");
    struct rwd_xlsx_value v = cell(x, "First", "E4");
    cr_assert_eq(v.type, RWD_XV_BOOL);
    cr_assert(v.boolean);
    is_string(x, "First", "F4", "2024-01-31T00:00:00"); /* t="d": its ISO text */
    is_empty(x, "First", "H5");                         /* a styled cell without a value */
    is_empty(x, "First", "I5");                         /* an empty <v> */
    is_number(x, "First", "J5", 75);
    cr_assert_str_eq(cell(x, "First", "J5").text, "  7.5e1 "); /* the text as stored */
    /* a row and cells without r: the row after the last, columns from A */
    is_number(x, "First", "A6", 10);
    is_string(x, "First", "B6", "second");
    /* relationship targets: absolute, and with "." and ".." and "//" */
    is_number(x, "Absolute", "A1", 100);
    is_string(x, "Dotted", "B2", "plain");
    rwd_xlsx_free(x);
}

Test(ooxml, xlsx_strict_namespaces)
{
    struct rwd_xlsx *x = open_xlsx("strict.xlsx");
    is_number(x, "S", "A1", 42);
    is_string(x, "S", "B1", "strict");
    rwd_xlsx_free(x);
}

Test(ooxml, xlsx_without_package_relationships)
{
    /* Excel finds the workbook through _rels/.rels only; a name that looks right is not it */
    xlsx_fails("norootrels.xlsx", CRU_EPARSE,
               "not an Excel package: no _rels/.rels (the package's relationships)");
}

/* ---- XLSX: malformed ---- */

Test(ooxml, xlsx_bad_cells_name_part_sheet_and_cell)
{
    xlsx_fails("badnum.xlsx", CRU_EPARSE,
               "XLSX part xl/worksheets/sheet1.xml (sheet 'Sheet1'): cell C7: '12abc' is not a "
               "number");
    xlsx_fails("badtype.xlsx", CRU_EPARSE, "cell A1: unknown cell type t=\"q\"");
    xlsx_fails("badbool.xlsx", CRU_EPARSE, "cell A1: 'yes' is not a boolean");
    xlsx_fails("badref.xlsx", CRU_EPARSE, "cell r=\"XFE1\"");
    xlsx_fails("dupcell.xlsx", CRU_EPARSE, "cell B2 appears twice");
    xlsx_fails("sstrange.xlsx", CRU_EPARSE, "cell A1: shared string 5 does not exist");
    xlsx_fails("nosst.xlsx", CRU_EPARSE, "cell A1: a shared string, but the workbook has no");
}

Test(ooxml, xlsx_not_a_zip)
{
    const char text[] = "name,value\n1,2\n";
    xlsx_bytes_fail(text, sizeof(text) - 1, CRU_EPARSE, "not an XLSX file: not a zip archive");
    xlsx_bytes_fail("", 0, CRU_EPARSE, "not an XLSX file: not a zip archive");
    xlsx_bytes_fail(NULL, 0, CRU_EPARSE, "not an XLSX file: not a zip archive");
    xlsx_bytes_fail("PK\003\004", 4, CRU_EPARSE, "not an XLSX file: corrupt zip archive");
}

Test(ooxml, xlsx_missing_parts)
{
    xlsx_fails("noparts.zip", CRU_EPARSE, "not an Excel package: no [Content_Types].xml");
    xlsx_fails("nosheet.xlsx", CRU_EPARSE,
               "not an Excel package: missing part xl/worksheets/sheet1.xml (sheet 'Gone')");
    xlsx_fails("norels.xlsx", CRU_EPARSE,
               "not an Excel package: missing part xl/_rels/workbook.xml.rels (the workbook's "
               "relationships)");
    xlsx_fails("python-docx.docx", CRU_EPARSE,
               "not an Excel package: /word/document.xml has the content type "
               "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml, "
               "not that of a workbook");
    xlsx_fails("escape.xlsx", CRU_EPARSE,
               "relationship target ../../outside.xml of "
               "xl/workbook.xml leaves the package");
    xlsx_fails("dupentry.xlsx", CRU_EPARSE, "two entries named xl/worksheets/sheet1.xml");
}

Test(ooxml, xlsx_truncated)
{
    struct cru_buf b;
    fixture("openpyxl.xlsx", &b);
    size_t cuts[] = { 1, 30, b.len / 4, b.len / 2, b.len - 100, b.len - 22, b.len - 1 };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        xlsx_bytes_fail(b.data, cuts[i], CRU_EPARSE, "not an XLSX file");
    /* a flipped byte in the compressed data fails the read (or its CRC), never silently */
    struct rwd_xlsx *x = NULL;
    b.data[b.len / 3] ^= 0x55;
    int rc = rwd_xlsx_open(b.data, b.len, &x);
    if (rc == 0)
        rwd_xlsx_free(x);
    else
        cr_assert(rc == CRU_EPARSE && cru_err_msg()[0], "%d %s", rc, cru_err_msg());
    cru_buf_free(&b);
}

Test(ooxml, xlsx_doctype_refused_fast)
{
    struct cru_buf b;
    fixture("bomb.xlsx", &b);
    double t0 = seconds();
    xlsx_bytes_fail(b.data, b.len, CRU_EPARSE,
                    "XLSX part xl/worksheets/sheet1.xml: has a DOCTYPE (a DTD), which is refused");
    cr_assert_lt(seconds() - t0, 1.0);
    cru_buf_free(&b);
    xlsx_fails("xxe.xlsx", CRU_EPARSE, "xl/worksheets/sheet1.xml: has a DOCTYPE");
    xlsx_fails("bomb-rels.xlsx", CRU_EPARSE, "XLSX part _rels/.rels: has a DOCTYPE");
    /* the positive control: the same workbook without the DOCTYPE opens */
    struct rwd_xlsx *x = open_xlsx("bomb-nodtd.xlsx");
    is_string(x, "S", "A1", "lol");
    rwd_xlsx_free(x);
}

Test(ooxml, xlsx_part_cap)
{
    /* exactly 64 MiB opens; one byte more does not, however it is compressed */
    struct rwd_xlsx *x = open_xlsx("cap-exact.xlsx");
    is_number(x, "S", "A1", 1);
    rwd_xlsx_free(x);
    xlsx_fails("cap-over.xlsx", CRU_ELIMIT,
               "XLSX part xl/worksheets/sheet1.xml is larger than 64 MiB uncompressed");
    /* 100 MiB of zeros in 100 KiB */
    xlsx_fails("zeros.xlsx", CRU_ELIMIT, "xl/worksheets/sheet1.xml is larger than 64 MiB");
    /* the same, with zip headers that claim 100 bytes: the bytes are counted, not trusted */
    xlsx_fails("liar.xlsx", CRU_ELIMIT, "xl/worksheets/sheet1.xml is larger than 64 MiB");
}

Test(ooxml, xlsx_total_cap)
{
    xlsx_fails(
        "total.xlsx", CRU_ELIMIT,
        "the parts read come to more than 256 MiB uncompressed (at xl/worksheets/sheet5.xml)");
}

Test(ooxml, xlsx_entry_cap)
{
    struct rwd_xlsx *x = open_xlsx("entries-max.xlsx");
    is_number(x, "S", "A1", 1);
    rwd_xlsx_free(x);
    xlsx_fails("entries-over.xlsx", CRU_ELIMIT, "XLSX file has more than 10000 zip entries");
}

/* ---- DOCX ---- */

static void par_is(const struct rwd_docx *d, size_t i, int heading, const char *text)
{
    cr_assert_lt(i, d->n_paragraphs, "paragraph %zu of %zu", i, d->n_paragraphs);
    cr_assert_str_eq(d->paragraphs[i].text, text, "paragraph %zu", i);
    cr_assert_eq(d->paragraphs[i].heading, heading, "paragraph %zu '%s': heading %d", i,
                 d->paragraphs[i].text, d->paragraphs[i].heading);
}

static void cell_is(const struct rwd_docx *d, size_t t, size_t r, size_t c, const char *text)
{
    cr_assert_lt(t, d->n_tables);
    const char *got = rwd_docx_cell(&d->tables[t], r, c);
    cr_assert_not_null(got, "table %zu cell %zu,%zu is outside", t, r, c);
    cr_assert_str_eq(got, text, "table %zu cell %zu,%zu", t, r, c);
}

Test(ooxml, docx_python_docx_paragraphs_and_headings)
{
    struct rwd_docx *d = open_docx("python-docx.docx");
    cr_assert_eq(d->n_paragraphs, 7);
    par_is(d, 0, 0, "The Title"); /* add_heading(level=0): style Title, not a heading */
    par_is(d, 1, 1, "Introduction");
    par_is(d, 2, 0, "Body text.");
    par_is(d, 3, 0, "tab\tbed\nnext line");
    par_is(d, 4, 2, "Details");
    par_is(d, 5, 0, "After the table"); /* table cell paragraphs are not listed */
    par_is(d, 6, 9, "Deep");
    rwd_docx_free(d);
    rwd_docx_free(NULL);
}

Test(ooxml, docx_python_docx_table)
{
    struct rwd_docx *d = open_docx("python-docx.docx");
    cr_assert_eq(d->n_tables, 1);
    const struct rwd_docx_table *t = &d->tables[0];
    cr_assert_eq(t->n_rows, 3);
    cr_assert_eq(t->n_cols, 3);
    /* merged across (gridSpan): the text in each column; merged down (vMerge): in each row */
    cell_is(d, 0, 0, 0, "wide");
    cell_is(d, 0, 0, 1, "wide");
    cell_is(d, 0, 0, 2, "r0c2");
    cell_is(d, 0, 1, 0, "tall");
    cell_is(d, 0, 2, 0, "tall");
    cell_is(d, 0, 1, 1, "r1c1");
    cell_is(d, 0, 1, 2, "r1c2\nsecond paragraph");
    cell_is(d, 0, 2, 2, "r2c2");
    cr_assert_null(rwd_docx_cell(t, 3, 0));
    cr_assert_null(rwd_docx_cell(t, 0, 3));
    cr_assert_null(rwd_docx_cell(NULL, 0, 0));
    rwd_docx_free(d);
}

Test(ooxml, docx_styles_runs_and_nesting)
{
    struct rwd_docx *d = open_docx("handmade.docx");
    cr_assert_eq(d->n_paragraphs, 7);
    par_is(d, 0, 1, "Kapitel"); /* style id berschrift1, named "heading 1" in styles.xml */
    par_is(d, 1, 0, "By id");   /* style id heading3, not in styles.xml: the default style */
    par_is(d, 2, 0, "Not one"); /* Heading10 / "heading 10" */
    /* a hyperlink and an insertion read; a deletion and a field instruction not; the tab
     * stops of pPr are not text */
    par_is(d, 3, 0, "link inserted 7");
    par_is(d, 4, 0, "in a control"); /* inside a body-level content control */
    par_is(d, 5, 0, "other prefix"); /* namespace, not prefix; x:p of another is skipped */
    par_is(d, 6, 0, "end");
    /* the outer table first, its nested table after; the nested text is not the cell's */
    cr_assert_eq(d->n_tables, 2);
    cr_assert_eq(d->tables[0].n_rows, 2);
    cr_assert_eq(d->tables[0].n_cols, 2);
    cell_is(d, 0, 0, 0, "outer");
    cell_is(d, 0, 0, 1, "after inner");
    cell_is(d, 0, 1, 0, "short");
    cell_is(d, 0, 1, 1, ""); /* a short row is padded */
    cr_assert_eq(d->tables[1].n_rows, 1);
    cr_assert_eq(d->tables[1].n_cols, 1);
    cell_is(d, 1, 0, 0, "inner");
    rwd_docx_free(d);
}

Test(ooxml, docx_malformed)
{
    const char text[] = "just text";
    docx_bytes_fail(text, sizeof(text) - 1, CRU_EPARSE, "not a DOCX file: not a zip archive");
    docx_fails("nodoc.docx", CRU_EPARSE,
               "not a Word package: missing part word/document.xml (the officeDocument target "
               "of _rels/.rels)");
    docx_fails("noparts.zip", CRU_EPARSE, "not a Word package: no [Content_Types].xml");
    docx_fails("nobody.docx", CRU_EPARSE, "DOCX part word/document.xml: no w:body element");
    docx_fails("openpyxl.xlsx", CRU_EPARSE,
               "not a Word package: /xl/workbook.xml has the content type "
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml, not "
               "that of a Word document");
    docx_fails("wide.docx", CRU_ELIMIT, "table 1 has a row wider than 1024 columns");
}

Test(ooxml, docx_truncated)
{
    struct cru_buf b;
    fixture("python-docx.docx", &b);
    size_t cuts[] = { 2, b.len / 3, b.len / 2, b.len - 22, b.len - 1 };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        docx_bytes_fail(b.data, cuts[i], CRU_EPARSE, "not a DOCX file");
    cru_buf_free(&b);
}

Test(ooxml, docx_doctype_refused_fast)
{
    struct cru_buf b;
    fixture("bomb.docx", &b);
    double t0 = seconds();
    docx_bytes_fail(b.data, b.len, CRU_EPARSE,
                    "DOCX part word/document.xml: has a DOCTYPE (a DTD), which is refused");
    cr_assert_lt(seconds() - t0, 1.0);
    cru_buf_free(&b);
    struct rwd_docx *d = open_docx("bomb-nodtd.docx"); /* the positive control */
    cr_assert_eq(d->n_paragraphs, 1);
    par_is(d, 0, 0, "lol");
    rwd_docx_free(d);
}

/* ---- packages: the structure Word, Excel, python-docx and openpyxl check ---- */

/* Each fixture a complete package (pkg-ok.*) with one piece missing or wrong. CODE 0 opens;
 * HEADING is then the level of the document's first paragraph (the fixture's "Minutes", styled
 * Heading1). LIBS says whether python-docx or openpyxl agree (open exactly what opens), checked
 * by running them on the same files; where they do not, the reader is the stricter, for the
 * reason given. */
static const struct {
    const char *name;
    int code;
    const char *msg;
    int heading;
    bool libs;
} packages[] = {
    /* DOCX */
    { "pkg-ok.docx", 0, NULL, 1, true },
    { "pkg-noct.docx", CRU_EPARSE, "not a Word package: no [Content_Types].xml", 0, true },
    { "pkg-ctbad.docx", CRU_EPARSE, "DOCX part [Content_Types].xml: line 1: XML", 0, true },
    { "pkg-ctnodoc.docx", CRU_EPARSE,
      "not a Word package: [Content_Types].xml has no content type for /word/document.xml", 0,
      true },
    { "pkg-ctxml.docx", CRU_EPARSE,
      "not a Word package: /word/document.xml has the content type application/xml, not that "
      "of a Word document (application/vnd.openxmlformats-officedocument.wordprocessingml."
      "document.main+xml)",
      0, true },
    { "pkg-ctsheet.docx", CRU_EPARSE,
      "/word/document.xml has the content type "
      "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml, not that of "
      "a Word document",
      0, true },
    { "pkg-ctdocm.docx", CRU_EPARSE,
      "has the content type application/vnd.ms-word.document.macroEnabled.main+xml", 0, true },
    /* a Default for .xml that makes every part a document, and part names in capitals */
    { "pkg-ctdefault.docx", 0, NULL, 1, true },
    { "pkg-ctcase.docx", 0, NULL, 1, true },
    /* python-docx takes the last of two entries; which counts is a guess: refused */
    { "pkg-ctdup.docx", CRU_EPARSE, "document.xml two content types", 0, true },
    { "pkg-norels.docx", CRU_EPARSE,
      "not a Word package: no _rels/.rels (the package's relationships)", 0, true },
    { "pkg-nooffice.docx", CRU_EPARSE,
      "not a Word package: _rels/.rels has no officeDocument relationship", 0, true },
    { "pkg-twooffice.docx", CRU_EPARSE,
      "not a Word package: _rels/.rels has two officeDocument relationships (rId1 and rId2)", 0,
      true },
    { "pkg-moved.docx", 0, NULL, 1, true },
    { "pkg-movedbad.docx", CRU_EPARSE,
      "not a Word package: missing part word/main.xml (the officeDocument target of "
      "_rels/.rels)",
      0, true },
    /* no styles part related to the document: every style is the default, no heading */
    { "pkg-nodocrels.docx", 0, NULL, 0, true },
    { "pkg-nostylesrel.docx", 0, NULL, 0, true },
    { "pkg-nostyles.docx", 0, NULL, 0, true },
    { "pkg-undefined.docx", 0, NULL, 0, true },
    { "pkg-plain.docx", 0, NULL, 0, true },
    { "pkg-stylesmissing.docx", CRU_EPARSE,
      "not a Word package: missing part word/styles.xml (the target of relationship rId1 in "
      "word/_rels/document.xml.rels)",
      0, true },
    { "pkg-stylesxml.docx", CRU_EPARSE,
      "not a Word package: /word/styles.xml has the content type application/xml, not that of "
      "a styles part",
      0, true },
    { "pkg-stylesnoct.docx", CRU_EPARSE,
      "not a Word package: [Content_Types].xml has no content type for /word/styles.xml", 0, true },
    { "pkg-targetmissing.docx", CRU_EPARSE,
      "not a Word package: missing part word/numbering.xml (the target of relationship rId2 in "
      "word/_rels/document.xml.rels)",
      0, true },
    { "pkg-external.docx", 0, NULL, 1, true }, /* an external target is not a part */
    /* python-docx keeps the last of two relationships with one Id */
    { "pkg-dupid.docx", CRU_EPARSE,
      "not a Word package: word/_rels/document.xml.rels has two relationships with the Id rId1", 0,
      false },
    /* XLSX */
    { "pkg-ok.xlsx", 0, NULL, 0, true },
    { "pkg-xlsm.xlsx", 0, NULL, 0, true },
    { "pkg-noct.xlsx", CRU_EPARSE, "not an Excel package: no [Content_Types].xml", 0, true },
    { "pkg-ctnowb.xlsx", CRU_EPARSE,
      "not an Excel package: [Content_Types].xml has no content type for /xl/workbook.xml", 0,
      true },
    { "pkg-ctxml.xlsx", CRU_EPARSE,
      "not an Excel package: /xl/workbook.xml has the content type application/xml, not that "
      "of a workbook",
      0, true },
    { "pkg-ctdocx.xlsx", CRU_EPARSE,
      "/xl/workbook.xml has the content type "
      "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
      0, true },
    { "pkg-ctnosst.xlsx", CRU_EPARSE,
      "not an Excel package: [Content_Types].xml has no content type for /xl/sharedStrings.xml", 0,
      true },
    { "pkg-sstxml.xlsx", CRU_EPARSE,
      "not an Excel package: /xl/sharedStrings.xml has the content type application/xml, not "
      "that of shared strings",
      0, true },
    { "pkg-nowbrels.xlsx", CRU_EPARSE,
      "not an Excel package: missing part xl/_rels/workbook.xml.rels (the workbook's "
      "relationships)",
      0, true },
    { "pkg-badrid.xlsx", CRU_EPARSE,
      "sheet 'Data' refers to relationship rId9, which its relationships part lacks", 0, true },
    /* openpyxl finds the workbook by its content type, Excel through _rels/.rels: both must
     * be there and agree */
    { "pkg-norels.xlsx", CRU_EPARSE,
      "not an Excel package: no _rels/.rels (the package's relationships)", 0, false },
    { "pkg-twowb.xlsx", CRU_EPARSE,
      "not an Excel package: [Content_Types].xml makes both /xl/workbook.xml and /xl/other.xml "
      "the workbook",
      0, false },
    /* openpyxl reads a sheet whatever its content type, and the shared strings by theirs:
     * Excel needs the one and follows relationships for the other */
    { "pkg-ctnosheet.xlsx", CRU_EPARSE,
      "not an Excel package: [Content_Types].xml has no content type for "
      "/xl/worksheets/sheet1.xml",
      0, false },
    { "pkg-nosstrel.xlsx", CRU_EPARSE,
      "cell A1: a shared string, but the workbook has no shared strings part", 0, false },
};
#define N_PACKAGES (sizeof(packages) / sizeof(packages[0]))

/* Writes every package fixture with one run of the generator, then asks python-docx and
 * openpyxl about them into DIR/libraries.txt. */
static void write_packages(void)
{
    const char *src = getenv("CRUCIBLE_SRC");
    cr_assert(src && *src, "CRUCIBLE_SRC is not set: run the tests with `make test`");
    struct cru_buf names = CRU_BUF_INIT, cmd = CRU_BUF_INIT;
    for (size_t i = 0; i < N_PACKAGES; i++)
        cru_buf_printf(&names, " '%s'", packages[i].name);
    cru_buf_printf(&cmd,
                   "/usr/bin/python3 '%s/tests/ooxml_fixtures.py' '%s'%s && /usr/bin/python3 "
                   "'%s/tests/ooxml_fixtures.py' --libraries '%s'%s > '%s/libraries.txt'",
                   src, dir, cru_buf_cstr(&names), src, dir, cru_buf_cstr(&names), dir);
    cr_assert_eq(system(cru_buf_cstr(&cmd)), 0, "%s failed", cru_buf_cstr(&cmd));
    cru_buf_free(&names);
    cru_buf_free(&cmd);
}

/* What the libraries said about NAME: true when they opened it; *STYLE (for a document) the
 * style name of its first paragraph. */
static bool library_opened(const struct cru_buf *said, const char *name, char *style, size_t cap)
{
    char key[128];
    snprintf(key, sizeof(key), "%s ", name);
    for (const char *p = cru_buf_cstr(said); p && *p;) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n >= strlen(key) && strncmp(p, key, strlen(key)) == 0) {
            const char *v = p + strlen(key);
            size_t vn = n - strlen(key);
            bool ok = vn >= 2 && strncmp(v, "ok", 2) == 0;
            size_t sn = ok && vn > 3 ? vn - 3 : 0;
            snprintf(style, cap, "%.*s", (int)(sn < cap ? sn : cap - 1), v + 3);
            return ok;
        }
        p = end ? end + 1 : p + n;
    }
    cr_assert_fail("the libraries said nothing about %s:\n%s", name, cru_buf_cstr(said));
    return false;
}

Test(ooxml, packages_checked_as_office_and_the_libraries_do, .timeout = 120)
{
    struct cru_buf said = CRU_BUF_INIT;
    char path[256], style[64];
    write_packages();
    snprintf(path, sizeof(path), "%s/libraries.txt", dir);
    cr_assert_eq(cru_file_read(path, 1 << 20, &said), 0, "%s", cru_err_msg());
    for (size_t i = 0; i < N_PACKAGES; i++) {
        const char *name = packages[i].name;
        bool docx = strstr(name, ".docx") != NULL;
        struct cru_buf b = CRU_BUF_INIT;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        cr_assert_eq(cru_file_read(path, 16 << 20, &b), 0, "%s", cru_err_msg());
        if (packages[i].code != 0 && docx) {
            docx_bytes_fail(b.data, b.len, packages[i].code, packages[i].msg);
        } else if (packages[i].code != 0) {
            xlsx_bytes_fail(b.data, b.len, packages[i].code, packages[i].msg);
        } else if (docx) {
            struct rwd_docx *d = NULL;
            int rc = rwd_docx_open(b.data, b.len, &d);
            cr_assert_eq(rc, 0, "%s: %d %s", name, rc, cru_err_msg());
            par_is(d, 0, packages[i].heading, "Minutes");
            rwd_docx_free(d);
        } else {
            struct rwd_xlsx *x = NULL;
            int rc = rwd_xlsx_open(b.data, b.len, &x);
            cr_assert_eq(rc, 0, "%s: %d %s", name, rc, cru_err_msg());
            is_string(x, "Data", "A1", "name");
            is_number(x, "Data", "B1", 7);
            rwd_xlsx_free(x);
        }
        cru_buf_free(&b);

        bool opened = library_opened(&said, name, style, sizeof(style));
        if (!packages[i].libs) {
            /* the reader is the stricter: the library opens what it refuses */
            cr_assert(opened, "%s: %s now refuses it too: mark it as agreeing", name,
                      docx ? "python-docx" : "openpyxl");
            continue;
        }
        cr_assert_eq(opened, packages[i].code == 0, "%s: the reader %s it, %s %s", name,
                     packages[i].code == 0 ? "opens" : "refuses", docx ? "python-docx" : "openpyxl",
                     opened ? "opens it" : "does not");
        if (opened && docx)
            cr_assert_eq(packages[i].heading == 1, strcmp(style, "Heading 1") == 0,
                         "%s: heading %d, python-docx says the style is '%s'", name,
                         packages[i].heading, style);
    }
    cru_buf_free(&said);
}
