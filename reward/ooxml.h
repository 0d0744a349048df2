/* ooxml: XLSX and DOCX readers over bytes in memory, for the `xlsx` and `docx` check kinds.
 *
 *     struct rwd_xlsx *x;
 *     struct rwd_xlsx_value v;
 *     uint32_t col, row;
 *     if (rwd_xlsx_open(data, len, &x) < 0 || rwd_cell_ref("B2", &col, &row) < 0 ||
 *         rwd_xlsx_cell(x, "Sheet1", col, row, &v) < 0) ... cru_err_msg() ...
 *     rwd_xlsx_free(x);
 *
 * Both readers take the whole file in memory (the caller reads it, with a bound) and read
 * everything they expose when opened: a successful open means the parts it needs were all
 * there and well formed, and the lookups afterwards only fail for what the caller asked.
 *
 * The package is checked before any content is read, as Word, Excel, python-docx and openpyxl
 * check it, so that a file those refuse to open never passes a check:
 *  - [Content_Types].xml is there and well formed; a part name or an extension given two
 *    content types is refused;
 *  - _rels/.rels is there and has exactly one officeDocument relationship; its target (any
 *    part name: "word/document.xml" is only the usual one) is the main part, which exists and
 *    has the content type of a workbook (also a template or macro-enabled one: openpyxl reads
 *    them) or of a Word document (only that one: python-docx refuses .docm and .dotx);
 *  - every part read has a content type, from an <Override> or the <Default> of its
 *    extension; a part found through a relationship must exist;
 *  - XLSX: the workbook's relationships part is there; each sheet is the target of the
 *    relationship its r:id names; the shared strings are the target of the workbook's one
 *    sharedStrings relationship (none without it) and have the shared strings content type.
 *    The workbook and the shared strings are each the only part with their content type,
 *    since openpyxl finds them by it rather than through relationships;
 *  - DOCX: every internal relationship of the package and of the document leads to a part
 *    that exists and has a content type (python-docx loads them all); the styles part is the
 *    target of the document's one styles relationship and has the styles content type; a
 *    document whose body paragraphs name a style (w:pStyle) must have one.
 * Relationships need an Id, a Type and a Target, and two with one Id in a part are refused.
 * These failures are CRU_EPARSE "not a Word package: ..." ("not an Excel package: ..."),
 * naming what is missing or wrong: "not a Word package: [Content_Types].xml has no content
 * type for /word/document.xml".
 *
 * Safety and bounds (the input is hostile):
 *  - The zip is read with libarchive from memory: at most RWD_OOXML_MAX_ENTRIES entries; each
 *    part read is counted while it is decompressed (sizes in zip headers are never trusted) and
 *    may be at most RWD_OOXML_MAX_PART_BYTES, and all the parts read together at most
 *    RWD_OOXML_MAX_TOTAL_BYTES: CRU_ELIMIT naming the part. A duplicated entry name is
 *    CRU_EPARSE (two readers could disagree on which one counts).
 *  - XML is libxml2 without entity substitution, DTD loading or network access; a part that
 *    has a DOCTYPE is refused (CRU_EPARSE) the moment the DOCTYPE is seen, before its internal
 *    subset is parsed, so an entity bomb costs nothing. libxml2's own limits (depth 256, 10 MB
 *    text nodes) stay on.
 *  - Parts are zip members looked up by exact (case-sensitive) name; targets of relationships
 *    are resolved against their source part's folder ("worksheets/sheet1.xml" from
 *    xl/workbook.xml is xl/worksheets/sheet1.xml; "/xl/x.xml" is absolute; ".." may not leave
 *    the package). Relationship types are matched whole, in the transitional or the strict
 *    namespace. Content types are looked up ignoring ASCII case, as part names are.
 *  - Elements are matched by namespace URI and local name, never by prefix; both the
 *    transitional and the strict ("http://purl.oclc.org/ooxml/...") namespaces are read.
 *
 * Errors from the open functions: CRU_EPARSE "not an XLSX file: not a zip archive", "not an
 * XLSX file: corrupt zip archive: ...", "not an Excel package: missing part
 * xl/worksheets/sheet1.xml (sheet 'Data')", "XLSX part xl/worksheets/sheet1.xml: line 3: XML:
 * ..." and so on (DOCX alike); CRU_ELIMIT for the bounds; CRU_ENOMEM. Callers add the file
 * name.
 */
#ifndef CRU_REWARD_OOXML_H
#define CRU_REWARD_OOXML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The bounds on an input; breaking one is CRU_ELIMIT. */
#define RWD_OOXML_MAX_ENTRIES     ((size_t)10000)       /* zip entries, of any kind */
#define RWD_OOXML_MAX_PART_BYTES  ((size_t)64 << 20)    /* one part, uncompressed */
#define RWD_OOXML_MAX_TOTAL_BYTES ((uint64_t)256 << 20) /* all the parts read, uncompressed */
#define RWD_DOCX_MAX_COLS         ((size_t)1024)        /* grid columns of a table */
#define RWD_DOCX_MAX_CELLS        ((size_t)4000000)     /* grid cells of all tables together */

/* ---- XLSX ----
 *
 * The sheets are those of the workbook part (<sheet name= r:id=>), each found through the
 * workbook's relationships; shared strings through its sharedStrings relationship. Every
 * sheet is parsed at open into a sorted table of its non-empty cells; the XML is not kept. */
struct rwd_xlsx;

enum rwd_xv_type {
    RWD_XV_EMPTY,  /* no cell, a cell without a value, or a formula without a cached value */
    RWD_XV_NUMBER, /* no t, t="n": <v> as a finite double */
    RWD_XV_STRING, /* t="s" (shared), t="inlineStr", t="str" (a formula's string result),
                      t="d" (an ISO 8601 date, kept as its text) */
    RWD_XV_BOOL,   /* t="b": <v> 0 or 1 (also false/true) */
    RWD_XV_ERROR,  /* t="e": text is the error ("#DIV/0!") */
};

struct rwd_xlsx_value {
    enum rwd_xv_type type;
    double number; /* NUMBER; 0 otherwise */
    bool boolean;  /* BOOL; false otherwise */
    /* STRING: the string (a shared string is the concatenation of its <t> and rich-text run
     * <r><t> texts, phonetic <rPh> runs left out); ERROR: the error text; NUMBER and BOOL: the
     * text of <v> as stored ("2.50", "1"); EMPTY: NULL. Owned by the reader. */
    const char *text;
    bool has_formula; /* the cell has an <f> element, with or without a cached value */
    /* The text of <f> without a leading "=" (openpyxl stores "SUM(A1:A3)", as Excel does);
     * "" for a cell that only points at a shared formula (<f t="shared" si="0"/>); NULL
     * without a formula. Owned by the reader. */
    const char *formula;
};

/* Opens the workbook in LEN bytes at DATA. DATA may be freed after the call. */
int rwd_xlsx_open(const void *data, size_t len, struct rwd_xlsx **out);

/* Frees a workbook; NULL is fine. Every string a lookup returned goes with it. */
void rwd_xlsx_free(struct rwd_xlsx *x);

/* Looks up the cell at COL and ROW (from 0; "B2" is 1, 1: parse it with rwd_cell_ref() from
 * reward/spec.h) of the sheet named SHEET: an exact match first, else the one sheet whose name
 * matches ignoring ASCII case (Excel treats sheet names so). A cell that the sheet lacks is
 * RWD_XV_EMPTY and success. An unknown sheet is CRU_ENOENT naming it and listing the sheets
 * that exist; a column or row outside a worksheet (XFD, 1048576) is CRU_EINVAL. */
int rwd_xlsx_cell(const struct rwd_xlsx *x, const char *sheet, uint32_t col, uint32_t row,
                  struct rwd_xlsx_value *out);

/* The sheets, in workbook order. */
size_t rwd_xlsx_sheet_count(const struct rwd_xlsx *x);
const char *rwd_xlsx_sheet_name(const struct rwd_xlsx *x, size_t i); /* NULL when out of range */

/* ---- DOCX ----
 *
 * From the main document part (usually word/document.xml):
 *  - paragraphs: the body's <w:p>, in order, including those inside content controls
 *    (<w:sdt>) and custom XML at body level, but not those in tables (see tables), text boxes,
 *    headers, footers, footnotes or comments;
 *  - a paragraph's text: its <w:t> texts in order, "\t" for <w:tab/> and <w:ptab/>, "\n" for
 *    <w:br/> (any type) and <w:cr/>, "-" for <w:noBreakHyphen/>, through runs, hyperlinks,
 *    insertions (tracked changes: the text as it would read with them accepted; deleted text
 *    is left out), smart tags, simple fields and content controls; field instructions,
 *    drawings and text boxes are left out;
 *  - heading: the level N of a paragraph whose style (<w:pPr><w:pStyle w:val=ID/>) is a
 *    paragraph style named "heading N" in the styles part (<w:style w:styleId=ID><w:name
 *    w:val="heading 2"/>, ASCII case ignored, N 1 to 9; this is how Word localises style
 *    ids). Everything else is 0: body text, a style id the styles part does not define (Word
 *    and python-docx read it as the default style, whatever the id says), and also "Title"
 *    (python-docx's add_heading(level=0)) and "Subtitle", which are not headings;
 *  - tables: each <w:tbl>, in document order of its start (a table nested in a cell comes
 *    after the table that holds it and is not part of that cell's text). Cells sit on the
 *    table's grid as python-docx's table.cell(r, c) sees them: a cell spanning columns
 *    (<w:gridSpan>) repeats its text in each; a vertically merged continuation (<w:vMerge/>)
 *    repeats the text of the cell above; n_cols is the widest row; a row shorter than that is
 *    padded with "". A cell's text is its paragraphs' texts joined with "\n".
 */
struct rwd_docx_par {
    char *text;  /* UTF-8, owned by the document */
    int heading; /* 0 if not a heading, else the level 1..9 */
};

struct rwd_docx_table {
    size_t n_rows, n_cols;
    char **cells; /* row-major, n_rows * n_cols, "" for missing; NULL when either is 0 */
};

struct rwd_docx {
    size_t n_paragraphs;
    struct rwd_docx_par *paragraphs; /* NULL when n_paragraphs is 0 */
    size_t n_tables;
    struct rwd_docx_table *tables; /* NULL when n_tables is 0 */
};

/* Opens the document in LEN bytes at DATA. DATA may be freed after the call. */
int rwd_docx_open(const void *data, size_t len, struct rwd_docx **out);

/* Frees a document; NULL is fine. */
void rwd_docx_free(struct rwd_docx *d);

/* The text of a table's cell, or NULL when ROW or COL is outside the table. */
const char *rwd_docx_cell(const struct rwd_docx_table *t, size_t row, size_t col);

#endif
