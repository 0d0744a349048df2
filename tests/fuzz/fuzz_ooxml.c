/* fuzz/ooxml: rwd_xlsx_open and rwd_docx_open on arbitrary bytes, and on XML parts.
 *
 * The input goes to both readers as a whole file. Since a zip's CRCs make nearly every mutation
 * of a part's bytes a corrupt archive, the input is also wrapped as one XML part of a small
 * fixed package built here (stored, with correct CRCs): the first byte picks which part, a
 * worksheet, the shared strings, the workbook's relationships, the workbook, the document,
 * its styles, either package's content types or the document's relationships; the rest is
 * the part. So the fuzzer reaches the XML readers and the package checks directly.
 *
 * Any input must open or fail with a negative code (the one cru_err_code() reports), a message
 * and no result, never crash. A workbook that opens answers every lookup: each sheet it names
 * is found, by that name, and its cells have consistent values (text for every type but
 * EMPTY, a formula exactly when has_formula); an unknown sheet is CRU_ENOENT. A document that
 * opens is consistent: counts match arrays, headings lie in 0..9, every table cell is a string,
 * tables keep within their bounds.
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "reward/ooxml.h"
#include "tests/fuzz/fuzz.h"

#define S_NS "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
#define R_NS "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
#define P_NS "http://schemas.openxmlformats.org/package/2006/relationships"
#define W_NS "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
#define C_NS "http://schemas.openxmlformats.org/package/2006/content-types"
#define CT   "application/vnd.openxmlformats-officedocument."

struct part {
    const char *name, *xml;
};

static const struct part xlsx_parts[] = {
    { "[Content_Types].xml",
      "<Types xmlns=\"" C_NS "\"><Default Extension=\"xml\" ContentType=\"application/xml\"/>"
      "<Override PartName=\"/xl/workbook.xml\" ContentType=\"" CT "spreadsheetml.sheet.main+xml\"/>"
      "<Override PartName=\"/xl/sharedStrings.xml\" ContentType=\"" CT
      "spreadsheetml.sharedStrings+xml\"/></Types>" },
    { "_rels/.rels", "<Relationships xmlns=\"" P_NS "\"><Relationship Id=\"rId1\" Type=\"" R_NS
                     "/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>" },
    { "xl/workbook.xml", "<workbook xmlns=\"" S_NS "\" xmlns:r=\"" R_NS "\"><sheets>"
                         "<sheet name=\"S\" sheetId=\"1\" r:id=\"rId1\"/>"
                         "<sheet name=\"T\" sheetId=\"2\" r:id=\"rId2\"/></sheets></workbook>" },
    { "xl/_rels/workbook.xml.rels",
      "<Relationships xmlns=\"" P_NS "\"><Relationship Id=\"rId1\" Type=\"" R_NS
      "/worksheet\" Target=\"worksheets/sheet1.xml\"/><Relationship Id=\"rId2\" Type=\"" R_NS
      "/worksheet\" Target=\"/xl/worksheets/sheet2.xml\"/><Relationship Id=\"rId3\" Type=\"" R_NS
      "/sharedStrings\" Target=\"sharedStrings.xml\"/></Relationships>" },
    { "xl/sharedStrings.xml", "<sst xmlns=\"" S_NS "\"><si><t>a</t></si><si><r><t>b</t></r>"
                              "</si></sst>" },
    { "xl/worksheets/sheet1.xml",
      "<worksheet xmlns=\"" S_NS "\"><sheetData><row r=\"1\"><c r=\"A1\" t=\"s\"><v>1</v></c>"
      "<c r=\"B1\"><f>A1</f><v>2</v></c></row></sheetData></worksheet>" },
    { "xl/worksheets/sheet2.xml", "<worksheet xmlns=\"" S_NS "\"/>" },
};

static const struct part docx_parts[] = {
    { "[Content_Types].xml",
      "<Types xmlns=\"" C_NS "\"><Default Extension=\"xml\" ContentType=\"application/xml\"/>"
      "<Override PartName=\"/word/document.xml\" ContentType=\"" CT
      "wordprocessingml.document.main+xml\"/><Override PartName=\"/word/styles.xml\" "
      "ContentType=\"" CT "wordprocessingml.styles+xml\"/></Types>" },
    { "_rels/.rels", "<Relationships xmlns=\"" P_NS "\"><Relationship Id=\"rId1\" Type=\"" R_NS
                     "/officeDocument\" Target=\"word/document.xml\"/></Relationships>" },
    { "word/document.xml",
      "<w:document xmlns:w=\"" W_NS "\"><w:body><w:p><w:pPr><w:pStyle w:val=\"H\"/></w:pPr>"
      "<w:r><w:t>x</w:t></w:r></w:p><w:tbl><w:tr><w:tc><w:p/></w:tc></w:tr></w:tbl></w:body>"
      "</w:document>" },
    { "word/_rels/document.xml.rels",
      "<Relationships xmlns=\"" P_NS "\"><Relationship Id=\"rId1\" Type=\"" R_NS
      "/styles\" Target=\"styles.xml\"/></Relationships>" },
    { "word/styles.xml", "<w:styles xmlns:w=\"" W_NS "\"><w:style w:styleId=\"H\"><w:name "
                         "w:val=\"heading 1\"/></w:style></w:styles>" },
};

/* Which part the input replaces, by its first byte. */
static const struct {
    bool docx;
    const char *name;
} targets[] = {
    { false, "xl/worksheets/sheet1.xml" },
    { false, "xl/sharedStrings.xml" },
    { false, "xl/_rels/workbook.xml.rels" },
    { false, "xl/workbook.xml" },
    { true, "word/document.xml" },
    { true, "word/styles.xml" },
    { false, "[Content_Types].xml" },
    { true, "[Content_Types].xml" },
    { true, "word/_rels/document.xml.rels" },
};

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_ooxml: %s (%s)\n", what, cru_err_msg());
    abort();
}

static void check_failure(int rc, bool got)
{
    if (rc > 0 || (rc < 0 && (cru_err_code() != rc || cru_err_msg()[0] == '\0')))
        fail("a failure without a matching message");
    if (rc < 0 && got)
        fail("a result on failure");
    if (rc == 0 && !got)
        fail("success without a result");
}

static void check_value(const struct rwd_xlsx_value *v)
{
    if (v->type > RWD_XV_ERROR)
        fail("an unknown value type");
    if ((v->type == RWD_XV_EMPTY) != (v->text == NULL))
        fail("text present exactly when the cell has a value");
    if (v->has_formula != (v->formula != NULL))
        fail("a formula present exactly when has_formula");
    if (v->type != RWD_XV_NUMBER && v->number != 0)
        fail("a number on a cell that is not one");
    if (v->type != RWD_XV_BOOL && v->boolean)
        fail("a boolean on a cell that is not one");
}

static void check_xlsx(const struct rwd_xlsx *x)
{
    static const uint32_t cells[][2] = { { 0, 0 }, { 1, 0 }, { 0, 1 },
                                         { 1, 1 }, { 2, 3 }, { 16383, 1048575 } };
    struct rwd_xlsx_value v;
    size_t n = rwd_xlsx_sheet_count(x);
    for (size_t i = 0; i < n; i++) {
        const char *name = rwd_xlsx_sheet_name(x, i);
        if (!name || !name[0])
            fail("a sheet without a name");
        for (size_t k = 0; k < sizeof(cells) / sizeof(cells[0]); k++) {
            if (rwd_xlsx_cell(x, name, cells[k][0], cells[k][1], &v) != 0)
                fail("a listed sheet fails a lookup");
            check_value(&v);
        }
    }
    if (rwd_xlsx_sheet_name(x, n) != NULL)
        fail("a name past the last sheet");
    cru_err_clear();
    int rc = rwd_xlsx_cell(x, "\x01no such sheet", 0, 0, &v);
    if (rc != CRU_ENOENT || cru_err_msg()[0] == '\0' || v.type != RWD_XV_EMPTY)
        fail("an unknown sheet is not CRU_ENOENT");
}

static void check_docx(const struct rwd_docx *d)
{
    size_t cells = 0;
    if ((d->n_paragraphs == 0) != (d->paragraphs == NULL) ||
        (d->n_tables == 0) != (d->tables == NULL))
        fail("a count does not match its array");
    for (size_t i = 0; i < d->n_paragraphs; i++) {
        if (!d->paragraphs[i].text)
            fail("a paragraph without text");
        if (d->paragraphs[i].heading < 0 || d->paragraphs[i].heading > 9)
            fail("a heading level outside 0..9");
        (void)strlen(d->paragraphs[i].text);
    }
    for (size_t t = 0; t < d->n_tables; t++) {
        const struct rwd_docx_table *tb = &d->tables[t];
        size_t n = tb->n_rows * tb->n_cols;
        if ((n == 0) != (tb->cells == NULL) || tb->n_cols > RWD_DOCX_MAX_COLS)
            fail("a table's cells do not match its size");
        cells += n;
        for (size_t k = 0; k < n; k++)
            if (!tb->cells[k] || rwd_docx_cell(tb, k / tb->n_cols, k % tb->n_cols) != tb->cells[k])
                fail("a table cell is not a string");
        if (rwd_docx_cell(tb, tb->n_rows, 0) || rwd_docx_cell(tb, 0, tb->n_cols))
            fail("a cell outside the table");
    }
    if (cells > RWD_DOCX_MAX_CELLS)
        fail("more cells than the bound");
}

static void run(const void *data, size_t size)
{
    struct rwd_xlsx *x = (struct rwd_xlsx *)&x;
    cru_err_clear();
    int rc = rwd_xlsx_open(data, size, &x);
    check_failure(rc, x != NULL);
    if (rc == 0) {
        check_xlsx(x);
        rwd_xlsx_free(x);
    }

    struct rwd_docx *d = (struct rwd_docx *)&d;
    cru_err_clear();
    rc = rwd_docx_open(data, size, &d);
    check_failure(rc, d != NULL);
    if (rc == 0) {
        check_docx(d);
        rwd_docx_free(d);
    }
}

static void add(struct archive *a, const char *name, const void *data, size_t len)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        fail("out of memory");
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t)len);
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        (len > 0 && archive_write_data(a, data, len) != (la_ssize_t)len))
        fail(archive_error_string(a));
    archive_entry_free(e);
}

/* Builds the package TARGETS[WHICH] belongs to with its part replaced by DATA, and runs it. */
static void run_wrapped(size_t which, const uint8_t *data, size_t size)
{
    const struct part *parts = targets[which].docx ? docx_parts : xlsx_parts;
    size_t n = targets[which].docx ? sizeof(docx_parts) / sizeof(docx_parts[0])
                                   : sizeof(xlsx_parts) / sizeof(xlsx_parts[0]);
    size_t cap = size + 64 * 1024, used = 0;
    char *zip = malloc(cap);
    struct archive *a = archive_write_new();
    if (!zip || !a)
        fail("out of memory");
    if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
        archive_write_zip_set_compression_store(a) != ARCHIVE_OK ||
        archive_write_open_memory(a, zip, cap, &used) != ARCHIVE_OK)
        fail(archive_error_string(a));
    for (size_t i = 0; i < n; i++) {
        if (strcmp(parts[i].name, targets[which].name) == 0)
            add(a, parts[i].name, data, size);
        else
            add(a, parts[i].name, parts[i].xml, strlen(parts[i].xml));
    }
    if (archive_write_close(a) != ARCHIVE_OK)
        fail(archive_error_string(a));
    archive_write_free(a);
    run(zip, used);
    free(zip);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size);
    if (size > 0)
        run_wrapped(data[0] % (sizeof(targets) / sizeof(targets[0])), data + 1, size - 1);
    return 0;
}
