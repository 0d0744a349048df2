/* ooxml: reading XLSX workbooks and DOCX documents from memory.
 *
 * An Office Open XML file is a zip of XML parts tied together by relationship parts
 * (_rels/NAME.rels) and typed by [Content_Types].xml. The zip is walked with libarchive over
 * the caller's bytes: once to list and check the entries (count, duplicates, corruption), then
 * once per stage to read the parts that stage needs (the content types and the package's
 * relationships, which must make a package before any content is read; then the main part and
 * its relationships; then the sheets and shared strings, or the styles), each decompressed
 * into memory with its bytes counted against the bounds. Each part is parsed with libxml2
 * into a tree, the values are copied out into a pool of strings that lives as long as the
 * reader, and the tree is freed before the next part.
 * So the work is a few passes over the zip's headers, and the memory the largest part's tree
 * plus what is kept.
 *
 * It does not evaluate formulas, apply number formats, read dates as dates, follow external
 * relationships, or read headers, footers, footnotes, comments or embedded objects.
 */
#include "reward/ooxml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "lib/dl.h"
#include "lib/err.h"
#include "reward/xml.h"
#include "lib/str.h"
#include "reward/spec.h"

/* What libxml2 may do: no network, no messages on stderr, CDATA merged into text. Entities
 * are not substituted and no DTD is loaded (no NOENT, no DTDLOAD), and documents with a DTD
 * are refused before its declarations are parsed (refuse_dtd). */

/* The largest part of a name or value quoted in a message. */
#define SHOW_MAX 200

/* The last column (XFD) and row of a worksheet, from 0. */
#define XLSX_MAX_COL 16383u
#define XLSX_MAX_ROW 1048575u

static const char *const NS_S[] = { "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
                                    "http://purl.oclc.org/ooxml/spreadsheetml/main", NULL };
static const char *const NS_W[] = { "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
                                    "http://purl.oclc.org/ooxml/wordprocessingml/main", NULL };
static const char *const NS_R[] = {
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "http://purl.oclc.org/ooxml/officeDocument/relationships", NULL
};
static const char *const NS_PKG[] = {
    "http://schemas.openxmlformats.org/package/2006/relationships", NULL
};
static const char *const NS_CT[] = { "http://schemas.openxmlformats.org/package/2006/content-types",
                                     NULL };

/* The content types a part must have to be read as what it is read as. The strict variant of
 * the format keeps these (only namespaces and relationship types change). A workbook may be a
 * template or macro-enabled (openpyxl reads all four); a document only the plain kind, as
 * python-docx refuses the others. */
#define CT_PREFIX "application/vnd.openxmlformats-officedocument."
static const char *const CT_WORKBOOK[] = {
    CT_PREFIX "spreadsheetml.sheet.main+xml", CT_PREFIX "spreadsheetml.template.main+xml",
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
    "application/vnd.ms-excel.template.macroEnabled.main+xml", NULL
};
static const char *const CT_SST[] = { CT_PREFIX "spreadsheetml.sharedStrings+xml", NULL };
static const char *const CT_DOCUMENT[] = { CT_PREFIX "wordprocessingml.document.main+xml", NULL };
static const char *const CT_STYLES[] = { CT_PREFIX "wordprocessingml.styles+xml", NULL };

/* ---- small helpers ---- */

/* A name from the file, for messages: control bytes as \xNN, UTF-8 kept, cut at SHOW_MAX. */
#define SHOWN(s) cru_str_show((char[CRU_SHOW_CAP(SHOW_MAX)]){ 0 }, (s), SHOW_MAX, true)

static int nomem(void)
{
    return cru_err_set(CRU_ENOMEM, "out of memory");
}

/* Grows *ARR (of *CAP elements of SIZE bytes) to hold at least one more than N. */
static int grow(void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : 16;
    if (want > SIZE_MAX / size)
        return nomem();
    void *p = realloc(*(void **)arr, want * size);
    if (!p)
        return nomem();
    *(void **)arr = p;
    *cap = want;
    return 0;
}

/* A pool of strings that live as long as the reader: chunks that never move. */
struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
};

#define CHUNK_SIZE ((size_t)64 << 10)

struct pool {
    struct chunk *head;
};

static char *pool_ndup(struct pool *p, const char *s, size_t n)
{
    struct chunk *c = p->head;
    if (!c || c->cap - c->used < n + 1) {
        size_t cap = n + 1 > CHUNK_SIZE ? n + 1 : CHUNK_SIZE;
        if (!(c = malloc(sizeof(*c) + cap))) {
            nomem();
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        if (cap > CHUNK_SIZE && p->head) { /* a large string: keep the head's free room */
            c->next = p->head->next;
            p->head->next = c;
        } else {
            c->next = p->head;
            p->head = c;
        }
    }
    char *d = c->data + c->used;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    c->used += n + 1;
    return d;
}

static char *pool_dup(struct pool *p, const char *s)
{
    return pool_ndup(p, s, strlen(s));
}

static void pool_free(struct pool *p)
{
    for (struct chunk *c = p->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    p->head = NULL;
}

/* ---- XML ---- */

/* Whether the namespace NS (of an element or attribute) is one of LIST. */
static bool ns_in(const xmlNs *ns, const char *const *list)
{
    if (!ns || !ns->href)
        return false;
    for (size_t i = 0; list[i]; i++)
        if (strcmp((const char *)ns->href, list[i]) == 0)
            return true;
    return false;
}

static bool in_ns(const xmlNode *n, const char *const *ns)
{
    return ns_in(n->ns, ns);
}

/* Whether N is the element NAME in one of the namespaces NS. */
static bool is_el(const xmlNode *n, const char *const *ns, const char *name)
{
    return n->type == XML_ELEMENT_NODE && in_ns(n, ns) && strcmp((const char *)n->name, name) == 0;
}

/* The first child element NAME of N in NS, or NULL. */
static xmlNode *child(const xmlNode *n, const char *const *ns, const char *name)
{
    for (xmlNode *c = n->children; c; c = c->next)
        if (is_el(c, ns, name))
            return c;
    return NULL;
}

/* The value of N's attribute NAME in one of the namespaces NS (NULL: no namespace), or NULL.
 * Borrowed from the tree. */
static const char *attr(const xmlNode *n, const char *const *ns, const char *name)
{
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        if (strcmp((const char *)a->name, name) != 0)
            continue;
        if (ns ? !ns_in(a->ns, ns) : a->ns != NULL)
            continue;
        if (!a->children)
            return "";
        if (a->children->type == XML_TEXT_NODE && !a->children->next && a->children->content)
            return (const char *)a->children->content;
        return NULL; /* entity references: impossible without a DTD */
    }
    return NULL;
}

/* Appends the text children of N. */
static int append_text(struct cru_buf *b, const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
            int rc = cru_buf_puts(b, (const char *)c->content);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

struct zip {
    const char *kind;   /* "XLSX" or "DOCX", for messages */
    const char *a_kind; /* "an XLSX" or "a DOCX" */
    const char *pkg;    /* "an Excel package" or "a Word package", for what the package lacks */
    const void *data;
    size_t len;
    char **names; /* the regular files, sorted */
    size_t n_names;
    uint64_t total;                  /* bytes of parts read so far */
    const struct cru_libarchive *dl; /* libarchive, loaded by zip_list (lib/dl.h) */
};

/* Parses PART (LEN bytes at DATA) into *OUT and checks that its root element is ROOT in NS (or
 * any element in NS when ROOT is NULL). */
static int xml_parse(const struct zip *z, const char *part, const char *data, size_t len,
                     const char *const *ns, const char *root, xmlDoc **out)
{
    char what[SHOW_MAX * 4 + 32];
    snprintf(what, sizeof(what), "%s part %s", z->kind, SHOWN(part));
    xmlDoc *doc = NULL;
    int rc = rwd_xml_read(data, len, what, &doc);
    *out = NULL;
    if (rc < 0)
        return rc;
    xmlNode *r = rwd_xml_root(doc);
    if (!r || (root ? !is_el(r, ns, root) : !in_ns(r, ns))) {
        const char *name = r ? (const char *)r->name : "(none)";
        rc = cru_err_set(CRU_EPARSE, "not %s file: part %s has the root element %s, not %s%s",
                         z->a_kind, SHOWN(part), SHOWN(name), root ? root : "one in ",
                         root ? "" : ns[0]);
        rwd_xml_free(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

/* ---- the zip ---- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Only the seekable zip reader: it reads the central directory, as Office and Python do, so a
 * file cut short (no end record) is refused instead of read as far as it goes. */
static int zip_start(const struct zip *z, struct archive **out)
{
    struct archive *a = z->dl->archive_read_new();
    *out = NULL;
    if (!a)
        return nomem();
    if (z->dl->archive_read_support_format_zip_seekable(a) != ARCHIVE_OK) {
        int rc = cru_err_set(CRU_EUNSUPPORTED, "libarchive: %s", z->dl->archive_error_string(a));
        z->dl->archive_read_free(a);
        return rc;
    }
    if (z->len == 0 || z->dl->archive_read_open_memory(a, z->data, z->len) != ARCHIVE_OK) {
        z->dl->archive_read_free(a);
        if (z->len >= 4 && memcmp(z->data, "PK\003\004", 4) == 0)
            return cru_err_set(CRU_EPARSE,
                               "not %s file: corrupt zip archive: no end of central directory "
                               "record (a truncated file?)",
                               z->a_kind);
        return cru_err_set(CRU_EPARSE, "not %s file: not a zip archive", z->a_kind);
    }
    *out = a;
    return 0;
}

static int corrupt(const struct zip *z, struct archive *a)
{
    const char *msg = z->dl->archive_error_string(a);
    return cru_err_set(CRU_EPARSE, "not %s file: corrupt zip archive: %s", z->a_kind,
                       msg ? msg : "unreadable");
}

static const char *entry_name(const struct zip *z, struct archive_entry *e)
{
    const char *name = z->dl->archive_entry_pathname(e);
    return name ? name : z->dl->archive_entry_pathname_utf8(e);
}

/* Lists the entries: counts them, keeps the regular files' names, refuses duplicates. */
static int zip_list(struct zip *z)
{
    struct archive *a;
    size_t count = 0, cap = 0;
    int rc = cru_dl_libarchive(&z->dl);
    if (rc < 0 || (rc = zip_start(z, &a)) < 0)
        return rc;
    for (;;) {
        struct archive_entry *e;
        int r = z->dl->archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = corrupt(z, a);
            goto done;
        }
        if (++count > RWD_OOXML_MAX_ENTRIES) {
            rc = cru_err_set(CRU_ELIMIT, "%s file has more than %zu zip entries", z->kind,
                             RWD_OOXML_MAX_ENTRIES);
            goto done;
        }
        const char *name = entry_name(z, e);
        if (z->dl->archive_entry_filetype(e) == AE_IFREG && name && *name) {
            if ((rc = grow(&z->names, &cap, z->n_names, sizeof(*z->names))) < 0)
                goto done;
            if (!(z->names[z->n_names] = strdup(name))) {
                rc = nomem();
                goto done;
            }
            z->n_names++;
        }
    }
    if (z->n_names > 1)
        qsort(z->names, z->n_names, sizeof(*z->names), cmp_name);
    for (size_t i = 1; i < z->n_names; i++) {
        if (strcmp(z->names[i - 1], z->names[i]) == 0) {
            rc = cru_err_set(CRU_EPARSE, "not %s file: the zip archive has two entries named %s",
                             z->a_kind, SHOWN(z->names[i]));
            goto done;
        }
    }
done:
    z->dl->archive_read_free(a);
    return rc;
}

static bool zip_has(const struct zip *z, const char *name)
{
    return z->n_names > 0 &&
           bsearch(&name, z->names, z->n_names, sizeof(*z->names), cmp_name) != NULL;
}

static void zip_free(struct zip *z)
{
    for (size_t i = 0; i < z->n_names; i++)
        free(z->names[i]);
    free(z->names);
}

/* Decompresses the current entry (the part NAME) into B, counting against the bounds. */
static int read_part(struct zip *z, struct archive *a, const char *name, struct cru_buf *b)
{
    for (;;) {
        int rc = cru_buf_reserve(b, 64 << 10);
        if (rc < 0)
            return rc;
        la_ssize_t got = z->dl->archive_read_data(a, b->data + b->len, 64 << 10);
        if (got < 0) {
            const char *msg = z->dl->archive_error_string(a);
            return cru_err_set(CRU_EPARSE, "not %s file: corrupt zip archive: reading %s: %s",
                               z->a_kind, SHOWN(name), msg ? msg : "unreadable");
        }
        if (got == 0)
            return 0;
        b->len += (size_t)got;
        b->data[b->len] = '\0';
        z->total += (uint64_t)got;
        if (b->len > RWD_OOXML_MAX_PART_BYTES)
            return cru_err_set(CRU_ELIMIT, "%s part %s is larger than %zu MiB uncompressed",
                               z->kind, SHOWN(name), RWD_OOXML_MAX_PART_BYTES >> 20);
        if (z->total > RWD_OOXML_MAX_TOTAL_BYTES)
            return cru_err_set(CRU_ELIMIT,
                               "%s file: the parts read come to more than %llu MiB uncompressed "
                               "(at %s)",
                               z->kind, (unsigned long long)(RWD_OOXML_MAX_TOTAL_BYTES >> 20),
                               SHOWN(name));
    }
}

/* Called with each part read, in zip order: WHICH is its index in the names asked for. */
typedef int (*part_fn)(void *ctx, size_t which, const char *name, const char *data, size_t len);

struct wanted {
    const char *name;
    size_t which;
};

static int cmp_wanted(const void *a, const void *b)
{
    return strcmp(((const struct wanted *)a)->name, ((const struct wanted *)b)->name);
}

/* Reads the N parts NAMES (distinct, each one that zip_has) in one pass, handing each to FN. */
static int zip_read(struct zip *z, const char *const *names, size_t n, part_fn fn, void *ctx)
{
    struct wanted *w = NULL;
    struct archive *a = NULL;
    struct cru_buf b = CRU_BUF_INIT;
    size_t found = 0;
    int rc = 0;

    if (n == 0)
        return 0;
    if (!(w = calloc(n, sizeof(*w))))
        return nomem();
    for (size_t i = 0; i < n; i++)
        w[i] = (struct wanted){ names[i], i };
    qsort(w, n, sizeof(*w), cmp_wanted);
    if ((rc = zip_start(z, &a)) < 0)
        goto done;
    while (found < n) {
        struct archive_entry *e;
        int r = z->dl->archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN) {
            rc = corrupt(z, a);
            goto done;
        }
        const char *name = entry_name(z, e);
        if (z->dl->archive_entry_filetype(e) != AE_IFREG || !name)
            continue;
        struct wanted key = { name, 0 };
        const struct wanted *hit = bsearch(&key, w, n, sizeof(*w), cmp_wanted);
        if (!hit)
            continue;
        cru_buf_reset(&b);
        if ((rc = read_part(z, a, hit->name, &b)) < 0 ||
            (rc = fn(ctx, hit->which, hit->name, b.data ? b.data : "", b.len)) < 0)
            goto done;
        found++;
    }
    if (found < n)
        rc = cru_err_set(CRU_EPARSE, "not %s file: the zip archive changed between reads",
                         z->a_kind);
done:
    z->dl->archive_read_free(a);
    cru_buf_free(&b);
    free(w);
    return rc;
}

/* ---- the package: relationships, part names, content types ---- */

#define CT_PART  "[Content_Types].xml"
#define PKG_RELS "_rels/.rels"

/* A fault in the package's structure: "not a Word package: WHY". */
__attribute__((format(printf, 2, 3))) static int not_package(const struct zip *z, const char *fmt,
                                                             ...)
{
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return cru_err_set(CRU_EPARSE, "not %s: %s", z->pkg, why);
}

struct rel {
    const char *id, *type, *target; /* borrowed from the rels tree */
    bool external;
};

struct rels {
    char *name; /* the relationships part; NULL when there is none */
    xmlDoc *doc;
    struct rel *v; /* sorted by id, ids unique */
    size_t n;
};

static void rels_free(struct rels *r)
{
    free(r->name);
    rwd_xml_free(r->doc);
    free(r->v);
    *r = (struct rels){ 0 };
}

static int cmp_rel_id(const void *a, const void *b)
{
    return strcmp(((const struct rel *)a)->id, ((const struct rel *)b)->id);
}

/* Parses a relationships part. Every <Relationship> needs an Id, a Type and a Target, and two
 * with one Id are refused: readers differ on which one a reference means. */
static int rels_parse(const struct zip *z, const char *part, const char *data, size_t len,
                      struct rels *out)
{
    size_t cap = 0;
    int rc = xml_parse(z, part, data, len, NS_PKG, "Relationships", &out->doc);
    if (rc < 0)
        return rc;
    if (!(out->name = strdup(part)))
        return nomem();
    for (xmlNode *c = rwd_xml_root(out->doc)->children; c; c = c->next) {
        if (!is_el(c, NS_PKG, "Relationship"))
            continue;
        const char *id = attr(c, NULL, "Id"), *type = attr(c, NULL, "Type");
        const char *target = attr(c, NULL, "Target"), *mode = attr(c, NULL, "TargetMode");
        if (!id || !*id || !type || !*type || !target)
            return not_package(z, "%s: a <Relationship> without %s", SHOWN(part),
                               !id || !*id       ? "an Id"
                               : !type || !*type ? "a Type"
                                                 : "a Target");
        if ((rc = grow(&out->v, &cap, out->n, sizeof(*out->v))) < 0)
            return rc;
        out->v[out->n++] = (struct rel){ id, type, target, mode && strcmp(mode, "External") == 0 };
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_rel_id);
    for (size_t i = 1; i < out->n; i++)
        if (strcmp(out->v[i - 1].id, out->v[i].id) == 0)
            return not_package(z, "%s has two relationships with the Id %s", SHOWN(part),
                               SHOWN(out->v[i].id));
    return 0;
}

static const struct rel *rel_by_id(const struct rels *r, const char *id)
{
    struct rel key = { .id = id };
    return r->n ? bsearch(&key, r->v, r->n, sizeof(*r->v), cmp_rel_id) : NULL;
}

/* Whether REL's type is SUFFIX in the transitional or the strict relationship namespace. */
static bool rel_is(const struct rel *rel, const char *suffix)
{
    for (size_t i = 0; NS_R[i]; i++) {
        size_t n = strlen(NS_R[i]);
        if (strncmp(rel->type, NS_R[i], n) == 0 && rel->type[n] == '/' &&
            strcmp(rel->type + n + 1, suffix) == 0)
            return true;
    }
    return false;
}

/* The internal relationship of R whose type is SUFFIX, or *OUT NULL when there is none. Two
 * are refused, as python-docx does: which one counts would be anybody's guess. */
static int rel_one(const struct zip *z, const struct rels *r, const char *suffix,
                   const struct rel **out)
{
    *out = NULL;
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].external || !rel_is(&r->v[i], suffix))
            continue;
        if (*out)
            return not_package(z, "%s has two %s relationships (%s and %s)", SHOWN(r->name), suffix,
                               SHOWN((*out)->id), SHOWN(r->v[i].id));
        *out = &r->v[i];
    }
    return 0;
}

/* The relationships part of PART: "xl/workbook.xml" -> "xl/_rels/workbook.xml.rels"; "" (the
 * package) -> "_rels/.rels". */
static int rels_name(char **out, const char *part)
{
    const char *slash = strrchr(part, '/');
    if (!slash)
        return cru_str_printf(out, "_rels/%s.rels", part);
    return cru_str_printf(out, "%.*s/_rels/%s.rels", (int)(slash - part), part, slash + 1);
}

/* Resolves TARGET, a relationship target of the part SOURCE ("" for the package), into a part
 * name: absolute targets from the package root, others from SOURCE's folder; "." and ".."
 * segments resolved, ".." above the root refused. */
static int resolve(const struct zip *z, const char *source, const char *target, char **out)
{
    struct cru_buf b = CRU_BUF_INIT;
    int rc = 0;
    *out = NULL;
    if (target[0] != '/') {
        const char *slash = strrchr(source, '/');
        if (slash && (rc = cru_buf_append(&b, source, (size_t)(slash - source) + 1)) < 0)
            goto done;
    }
    for (const char *p = target; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.')) {
            /* an empty or "." segment */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (b.len == 0) {
                rc = not_package(z, "relationship target %s of %s leaves the package",
                                 SHOWN(target), SHOWN(source[0] ? source : "/"));
                goto done;
            }
            b.len--; /* the trailing '/' */
            while (b.len > 0 && b.data[b.len - 1] != '/')
                b.len--;
            b.data[b.len] = '\0';
        } else if ((rc = cru_buf_append(&b, p, n)) < 0 ||
                   (p[n] == '/' && (rc = cru_buf_putc(&b, '/')) < 0)) {
            goto done;
        }
        p += n;
        while (*p == '/')
            p++;
    }
    if (b.len == 0 || b.data[b.len - 1] == '/') {
        rc = not_package(z, "relationship target %s of %s names no part", SHOWN(target),
                         SHOWN(source[0] ? source : "/"));
        goto done;
    }
    *out = cru_buf_detach(&b, NULL);
    if (!*out)
        rc = nomem();
done:
    cru_buf_free(&b);
    return rc;
}

static int missing(const struct zip *z, const char *part, const char *why)
{
    return not_package(z, "missing part %s (%s)", SHOWN(part), why);
}

struct rels_ctx {
    const struct zip *z;
    struct rels *out;
};

static int rels_part(void *ctx, size_t which, const char *name, const char *data, size_t len)
{
    struct rels_ctx *c = ctx;
    (void)which;
    return rels_parse(c->z, name, data, len, c->out);
}

/* Reads the relationships of PART into OUT, which stays empty (OUT->name NULL) when the
 * package has none for it. */
static int read_rels(struct zip *z, const char *part, struct rels *out)
{
    char *name = NULL;
    int rc = rels_name(&name, part);
    if (rc == 0 && zip_has(z, name)) {
        const char *names[] = { name };
        struct rels_ctx c = { z, out };
        rc = zip_read(z, names, 1, rels_part, &c);
    }
    free(name);
    return rc;
}

/* Reads one part into a tree whose root is ROOT in NS. */
struct one_ctx {
    const struct zip *z;
    const char *const *ns;
    const char *root;
    xmlDoc *doc;
};

static int one_part(void *ctx, size_t which, const char *name, const char *data, size_t len)
{
    struct one_ctx *c = ctx;
    (void)which;
    return xml_parse(c->z, name, data, len, c->ns, c->root, &c->doc);
}

/* [Content_Types].xml: a content type for each extension (<Default>) and for single parts
 * (<Override>, which wins). Part names and extensions compare ignoring ASCII case, as the
 * package format says and python-docx does. */
struct ctype {
    const char *key; /* an extension, or a part name without its leading '/' (borrowed) */
    const char *type;
};

struct ctypes {
    xmlDoc *doc;
    struct ctype *defaults, *overrides; /* each sorted by key, keys unique */
    size_t n_defaults, n_overrides;
};

static void ctypes_free(struct ctypes *ct)
{
    rwd_xml_free(ct->doc);
    free(ct->defaults);
    free(ct->overrides);
    *ct = (struct ctypes){ 0 };
}

static int cmp_ctype(const void *a, const void *b)
{
    return strcasecmp(((const struct ctype *)a)->key, ((const struct ctype *)b)->key);
}

/* Sorts the N entries at V; two for one key are refused (readers differ on which wins). */
static int ctypes_sort(const struct zip *z, struct ctype *v, size_t n, bool parts)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_ctype);
    for (size_t i = 1; i < n; i++)
        if (cmp_ctype(&v[i - 1], &v[i]) == 0)
            return not_package(z, "%s gives %s%s two content types", CT_PART,
                               parts ? "/" : "the extension ", SHOWN(v[i].key));
    return 0;
}

static int ctypes_parse(const struct zip *z, const char *part, const char *data, size_t len,
                        struct ctypes *ct)
{
    size_t cap_d = 0, cap_o = 0;
    int rc = xml_parse(z, part, data, len, NS_CT, "Types", &ct->doc);
    if (rc < 0)
        return rc;
    for (const xmlNode *c = rwd_xml_root(ct->doc)->children; c; c = c->next) {
        bool def = is_el(c, NS_CT, "Default");
        if (!def && !is_el(c, NS_CT, "Override"))
            continue;
        const char *key = attr(c, NULL, def ? "Extension" : "PartName");
        const char *type = attr(c, NULL, "ContentType");
        if (!type || !*type || !key || (def ? !*key : key[0] != '/' || !key[1]))
            return not_package(z, "%s: a <%s> without %s and a ContentType", CT_PART,
                               def ? "Default" : "Override",
                               def ? "an Extension" : "a PartName starting with /");
        if (def) {
            if ((rc = grow(&ct->defaults, &cap_d, ct->n_defaults, sizeof(*ct->defaults))) < 0)
                return rc;
            ct->defaults[ct->n_defaults++] = (struct ctype){ key, type };
        } else {
            if ((rc = grow(&ct->overrides, &cap_o, ct->n_overrides, sizeof(*ct->overrides))) < 0)
                return rc;
            ct->overrides[ct->n_overrides++] = (struct ctype){ key + 1, type };
        }
    }
    if ((rc = ctypes_sort(z, ct->defaults, ct->n_defaults, false)) < 0)
        return rc;
    return ctypes_sort(z, ct->overrides, ct->n_overrides, true);
}

/* The content type of PART: its <Override>, else the <Default> of its extension; NULL when
 * there is neither. */
static const char *ctype_of(const struct ctypes *ct, const char *part)
{
    struct ctype key = { part, NULL };
    const struct ctype *hit =
        ct->n_overrides ? bsearch(&key, ct->overrides, ct->n_overrides, sizeof(key), cmp_ctype)
                        : NULL;
    if (hit)
        return hit->type;
    const char *slash = strrchr(part, '/');
    const char *dot = strrchr(slash ? slash + 1 : part, '.');
    if (!dot || !ct->n_defaults)
        return NULL;
    key.key = dot + 1;
    hit = bsearch(&key, ct->defaults, ct->n_defaults, sizeof(key), cmp_ctype);
    return hit ? hit->type : NULL;
}

static bool type_in(const char *type, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcasecmp(type, list[i]) == 0)
            return true;
    return false;
}

/* Fails unless PART has a content type, and one of WANT when WANT is given (WHAT names what
 * it is read as: "a workbook"). */
static int need_ctype(const struct zip *z, const struct ctypes *ct, const char *part,
                      const char *const *want, const char *what)
{
    const char *type = ctype_of(ct, part);
    if (!type)
        return not_package(z, "%s has no content type for /%s", CT_PART, SHOWN(part));
    if (want && !type_in(type, want))
        return not_package(z, "/%s has the content type %s, not that of %s (%s)", SHOWN(part),
                           SHOWN(type), what, want[0]);
    return 0;
}

/* Fails when a part other than PART has one of the content types TYPES through an
 * <Override>: a reader that finds the part by its content type (openpyxl does, for the
 * workbook and the shared strings) would read another part than one that follows the
 * relationships. */
static int only_one_of_type(const struct zip *z, const struct ctypes *ct, const char *part,
                            const char *const *types, const char *what)
{
    for (size_t i = 0; i < ct->n_overrides; i++)
        if (type_in(ct->overrides[i].type, types) && strcasecmp(ct->overrides[i].key, part) != 0)
            return not_package(z, "%s makes both /%s and /%s %s", CT_PART, SHOWN(part),
                               SHOWN(ct->overrides[i].key), what);
    return 0;
}

/* What package_open reads: the content types, the package's relationships, the main part. */
struct package {
    struct ctypes ct;
    struct rels rels; /* _rels/.rels */
    char *main;       /* the target of its officeDocument relationship */
};

static void package_free(struct package *p)
{
    ctypes_free(&p->ct);
    rels_free(&p->rels);
    free(p->main);
}

struct package_ctx {
    const struct zip *z;
    struct package *p;
};

static int package_part(void *ctx, size_t which, const char *name, const char *data, size_t len)
{
    struct package_ctx *c = ctx;
    if (which == 0)
        return ctypes_parse(c->z, name, data, len, &c->p->ct);
    return rels_parse(c->z, name, data, len, &c->p->rels);
}

/* Lists the zip and checks it is a package whose main part is WHAT: [Content_Types].xml and
 * _rels/.rels present and well formed, one officeDocument relationship, its target present
 * with one of the content types MAIN_TYPES. This is what Office and python-docx check before
 * they read anything (openpyxl finds the workbook by its content type; see only_one_of_type).
 * P is released with package_free() whatever the outcome. */
static int package_open(struct zip *z, struct package *p, const char *const *main_types,
                        const char *what)
{
    const struct rel *main = NULL;
    int rc = zip_list(z);
    if (rc < 0)
        return rc;
    if (!zip_has(z, CT_PART))
        return not_package(z, "no %s (the content types of its parts)", CT_PART);
    if (!zip_has(z, PKG_RELS))
        return not_package(z, "no %s (the package's relationships)", PKG_RELS);
    const char *names[] = { CT_PART, PKG_RELS };
    struct package_ctx c = { z, p };
    if ((rc = zip_read(z, names, 2, package_part, &c)) < 0 ||
        (rc = rel_one(z, &p->rels, "officeDocument", &main)) < 0)
        return rc;
    if (!main)
        return not_package(z, "%s has no officeDocument relationship (to the main part)", PKG_RELS);
    if ((rc = resolve(z, "", main->target, &p->main)) < 0)
        return rc;
    if (!zip_has(z, p->main))
        return missing(z, p->main, "the officeDocument target of " PKG_RELS);
    return need_ctype(z, &p->ct, p->main, main_types, what);
}

/* Each internal relationship of R (the relationships of SOURCE, "" for the package) must lead
 * to a part that exists and has a content type: python-docx loads every such part, and fails
 * on one that is missing or has none. */
static int targets_exist(const struct zip *z, const struct ctypes *ct, const struct rels *r,
                         const char *source)
{
    int rc = 0;
    for (size_t i = 0; i < r->n && rc == 0; i++) {
        char *part = NULL;
        if (r->v[i].external)
            continue;
        if ((rc = resolve(z, source, r->v[i].target, &part)) < 0)
            break;
        if (!zip_has(z, part)) {
            char why[SHOW_MAX * 8 + 64];
            snprintf(why, sizeof(why), "the target of relationship %s in %s", SHOWN(r->v[i].id),
                     SHOWN(r->name));
            rc = missing(z, part, why);
        } else {
            rc = need_ctype(z, ct, part, NULL, NULL);
        }
        free(part);
    }
    return rc;
}

/* ---- XLSX ---- */

struct xcell {
    uint32_t row, col;
    enum rwd_xv_type type;
    bool has_formula;
    bool boolean;
    bool shared; /* a shared string whose text is not looked up yet (index in sst) */
    size_t sst;
    double number;
    const char *text, *formula;
};

struct xsheet {
    const char *name, *part; /* pool */
    struct xcell *cells;     /* sorted by row, then column */
    size_t n_cells, cap;
};

struct rwd_xlsx {
    struct pool pool;
    struct xsheet *sheets;
    size_t n_sheets;
    const char **sst; /* the shared strings (pool) */
    size_t n_sst;
    const char *sst_part; /* NULL when the workbook has none */
};

struct xctx {
    struct zip *z;
    struct rwd_xlsx *x;
    struct cru_buf tb; /* scratch text */
};

/* "B2" for column 1, row 1 (both within a worksheet). */
static const char *cell_name(char buf[16], uint32_t col, uint32_t row)
{
    char letters[8];
    size_t n = 0;
    for (uint32_t c = col + 1; c > 0 && n < sizeof(letters); c = (c - 1) / 26)
        letters[n++] = (char)('A' + (c - 1) % 26);
    size_t o = 0;
    while (n > 0)
        buf[o++] = letters[--n];
    snprintf(buf + o, 16 - o, "%lu", (unsigned long)row + 1);
    return buf;
}
#define CELL_NAME(col, row) cell_name((char[16]){ 0 }, (col), (row))

__attribute__((format(printf, 4, 5))) static int
sheet_err(const struct xctx *c, const struct xsheet *sh, int code, const char *fmt, ...)
{
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return cru_err_set(code, "%s part %s (sheet '%s'): %s", c->z->kind, SHOWN(sh->part),
                       SHOWN(sh->name), why);
}

/* A decimal number as Excel stores it: [+-]digits[.digits][e[+-]digits], finite; ASCII white
 * space around it is ignored. S is changed (trimmed). */
static bool parse_number(char *s, double *out)
{
    s = cru_str_trim(s);
    const char *p = s;
    bool digits = false;
    if (*p == '+' || *p == '-')
        p++;
    for (; *p >= '0' && *p <= '9'; p++)
        digits = true;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            digits = true;
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p != '\0')
        return false;
    double v = strtod(s, NULL);
    if (!isfinite(v))
        return false;
    *out = v;
    return true;
}

/* The text of an <is> or <si>: its <t>, and the <t> of its rich-text runs <r>; phonetic runs
 * (<rPh>) are left out. */
static int rich_text(struct cru_buf *b, const xmlNode *n)
{
    int rc = 0;
    for (const xmlNode *k = n->children; k && rc == 0; k = k->next) {
        if (is_el(k, NS_S, "t")) {
            rc = append_text(b, k);
        } else if (is_el(k, NS_S, "r")) {
            for (const xmlNode *t = k->children; t && rc == 0; t = t->next)
                if (is_el(t, NS_S, "t"))
                    rc = append_text(b, t);
        }
    }
    return rc;
}

static int parse_cell(struct xctx *c, struct xsheet *sh, const xmlNode *n, uint32_t col,
                      uint32_t row)
{
    const char *t = attr(n, NULL, "t");
    const xmlNode *f = child(n, NS_S, "f"), *v = child(n, NS_S, "v"), *is = child(n, NS_S, "is");
    struct xcell cell = { .row = row, .col = col, .type = RWD_XV_EMPTY };
    struct cru_buf *b = &c->tb;
    struct pool *pool = &c->x->pool;
    int rc;

    if (!t)
        t = "n";
    if (f) {
        cru_buf_reset(b);
        if ((rc = append_text(b, f)) < 0)
            return rc;
        const char *s = cru_buf_cstr(b);
        if (!(cell.formula = pool_dup(pool, s[0] == '=' ? s + 1 : s)))
            return CRU_ENOMEM;
        cell.has_formula = true;
    }
    cru_buf_reset(b);
    if (v && (rc = append_text(b, v)) < 0)
        return rc;
    bool has_v = v && b->len > 0;
    /* The text of <v> as stored; B is scratch from here on (the parsers trim it). */
    const char *vtext = NULL;
    if (v && strcmp(t, "s") != 0 && !(vtext = pool_ndup(pool, cru_buf_cstr(b), b->len)))
        return CRU_ENOMEM;

    if (strcmp(t, "n") == 0) {
        if (has_v) {
            if (!parse_number(b->data, &cell.number))
                return sheet_err(c, sh, CRU_EPARSE, "cell %s: '%s' is not a number",
                                 CELL_NAME(col, row), SHOWN(b->data));
            cell.type = RWD_XV_NUMBER;
        }
    } else if (strcmp(t, "s") == 0) {
        if (has_v) {
            uint64_t i;
            if (cru_parse_u64(cru_str_trim(b->data), 0, SIZE_MAX, &i) < 0)
                return sheet_err(c, sh, CRU_EPARSE, "cell %s: shared string index '%s': %s",
                                 CELL_NAME(col, row), SHOWN(b->data), cru_err_msg());
            cell.type = RWD_XV_STRING;
            cell.shared = true;
            cell.sst = (size_t)i;
        }
    } else if (strcmp(t, "inlineStr") == 0) {
        if (is) {
            cru_buf_reset(b);
            if ((rc = rich_text(b, is)) < 0)
                return rc;
            if (!(cell.text = pool_ndup(pool, cru_buf_cstr(b), b->len)))
                return CRU_ENOMEM;
            cell.type = RWD_XV_STRING;
        } else if (has_v) {
            cell.type = RWD_XV_STRING;
        }
    } else if (strcmp(t, "str") == 0) {
        if (v)
            cell.type = RWD_XV_STRING; /* a formula's string result, "" included */
    } else if (strcmp(t, "b") == 0) {
        if (has_v) {
            const char *s = cru_str_trim(b->data);
            if (strcmp(s, "1") == 0 || strcmp(s, "true") == 0)
                cell.boolean = true;
            else if (strcmp(s, "0") != 0 && strcmp(s, "false") != 0)
                return sheet_err(c, sh, CRU_EPARSE, "cell %s: '%s' is not a boolean (0 or 1)",
                                 CELL_NAME(col, row), SHOWN(b->data));
            cell.type = RWD_XV_BOOL;
        }
    } else if (strcmp(t, "e") == 0) {
        if (has_v)
            cell.type = RWD_XV_ERROR;
    } else if (strcmp(t, "d") == 0) {
        if (has_v)
            cell.type = RWD_XV_STRING;
    } else {
        return sheet_err(c, sh, CRU_EPARSE, "cell %s: unknown cell type t=\"%s\"",
                         CELL_NAME(col, row), SHOWN(t));
    }
    if (cell.type == RWD_XV_EMPTY && !cell.has_formula)
        return 0;
    if (cell.type != RWD_XV_EMPTY && !cell.shared && !cell.text)
        cell.text = vtext;
    if ((rc = grow(&sh->cells, &sh->cap, sh->n_cells, sizeof(*sh->cells))) < 0)
        return rc;
    sh->cells[sh->n_cells++] = cell;
    return 0;
}

static int cmp_cell(const void *a, const void *b)
{
    const struct xcell *x = a, *y = b;
    if (x->row != y->row)
        return x->row < y->row ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return 0;
}

static int parse_rows(struct xctx *c, struct xsheet *sh, const xmlNode *data)
{
    uint32_t next_row = 0;
    int rc;
    for (const xmlNode *r = data->children; r; r = r->next) {
        if (!is_el(r, NS_S, "row"))
            continue;
        uint32_t row;
        const char *rs = attr(r, NULL, "r");
        if (rs) {
            uint64_t v;
            if (cru_parse_u64(rs, 1, (uint64_t)XLSX_MAX_ROW + 1, &v) < 0)
                return sheet_err(c, sh, CRU_EPARSE, "row r=\"%s\": %s", SHOWN(rs), cru_err_msg());
            row = (uint32_t)(v - 1);
        } else if (next_row > XLSX_MAX_ROW) {
            return sheet_err(c, sh, CRU_EPARSE, "more rows than a worksheet has");
        } else {
            row = next_row;
        }
        next_row = row + 1;
        uint32_t next_col = 0;
        for (const xmlNode *n = r->children; n; n = n->next) {
            if (!is_el(n, NS_S, "c"))
                continue;
            uint32_t col, crow;
            const char *ref = attr(n, NULL, "r");
            if (ref) {
                if (rwd_cell_ref(ref, &col, &crow) < 0)
                    return sheet_err(c, sh, CRU_EPARSE, "cell r=\"%s\": %s", SHOWN(ref),
                                     cru_err_msg());
            } else if (next_col > XLSX_MAX_COL) {
                return sheet_err(c, sh, CRU_EPARSE, "row %lu: more cells than a row has",
                                 (unsigned long)row + 1);
            } else {
                col = next_col;
                crow = row;
            }
            next_col = col + 1;
            if ((rc = parse_cell(c, sh, n, col, crow)) < 0)
                return rc;
        }
    }
    if (sh->n_cells > 1)
        qsort(sh->cells, sh->n_cells, sizeof(*sh->cells), cmp_cell);
    for (size_t i = 1; i < sh->n_cells; i++)
        if (cmp_cell(&sh->cells[i - 1], &sh->cells[i]) == 0)
            return sheet_err(c, sh, CRU_EPARSE, "cell %s appears twice",
                             CELL_NAME(sh->cells[i].col, sh->cells[i].row));
    return 0;
}

static int parse_sheet(struct xctx *c, struct xsheet *sh, const char *data, size_t len)
{
    xmlDoc *doc;
    int rc = xml_parse(c->z, sh->part, data, len, NS_S, NULL, &doc);
    if (rc < 0)
        return rc;
    const xmlNode *root = rwd_xml_root(doc);
    if (is_el(root, NS_S, "worksheet")) {
        const xmlNode *sd = child(root, NS_S, "sheetData");
        if (sd)
            rc = parse_rows(c, sh, sd);
    } else if (!is_el(root, NS_S, "chartsheet") && !is_el(root, NS_S, "dialogsheet")) {
        rc = sheet_err(c, sh, CRU_EPARSE, "the root element is %s, not worksheet",
                       SHOWN((const char *)root->name));
    }
    rwd_xml_free(doc);
    return rc;
}

static int parse_sst(struct xctx *c, const char *part, const char *data, size_t len)
{
    struct rwd_xlsx *x = c->x;
    xmlDoc *doc;
    size_t cap = 0;
    int rc = xml_parse(c->z, part, data, len, NS_S, "sst", &doc);
    if (rc < 0)
        return rc;
    for (const xmlNode *si = rwd_xml_root(doc)->children; si && rc == 0; si = si->next) {
        if (!is_el(si, NS_S, "si"))
            continue;
        cru_buf_reset(&c->tb);
        if ((rc = rich_text(&c->tb, si)) < 0 ||
            (rc = grow(&x->sst, &cap, x->n_sst, sizeof(*x->sst))) < 0)
            break;
        if (!(x->sst[x->n_sst] = pool_ndup(&x->pool, cru_buf_cstr(&c->tb), c->tb.len)))
            rc = CRU_ENOMEM;
        else
            x->n_sst++;
    }
    rwd_xml_free(doc);
    return rc;
}

static int xlsx_part(void *ctx, size_t which, const char *name, const char *data, size_t len)
{
    struct xctx *c = ctx;
    if (which < c->x->n_sheets)
        return parse_sheet(c, &c->x->sheets[which], data, len);
    return parse_sst(c, name, data, len);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fails when two of the N strings at V (a scratch copy is sorted) are equal. */
static int no_duplicates(const struct zip *z, const char *wb, const char **v, size_t n,
                         const char *what)
{
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_str_ptr);
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i - 1], v[i]) == 0)
            return cru_err_set(CRU_EPARSE, "%s part %s: two sheets have the %s %s", z->kind,
                               SHOWN(wb), what, SHOWN(v[i]));
    return 0;
}

/* Reads the sheet list of the workbook part WB (tree DOC, relationships RELS): each sheet is
 * reached through the relationship its r:id names, and its part needs a content type. */
static int workbook_sheets(struct xctx *c, const char *wb, xmlDoc *doc, const struct rels *rels,
                           const struct ctypes *ct)
{
    struct rwd_xlsx *x = c->x;
    const xmlNode *sheets = child(rwd_xml_root(doc), NS_S, "sheets");
    size_t cap = 0;
    const char **scratch = NULL;
    int rc = 0;

    if (!sheets)
        return cru_err_set(CRU_EPARSE, "%s part %s: no <sheets> element", c->z->kind, SHOWN(wb));
    for (const xmlNode *n = sheets->children; n; n = n->next) {
        if (!is_el(n, NS_S, "sheet"))
            continue;
        const char *name = attr(n, NULL, "name"), *id = attr(n, NS_R, "id");
        char *part = NULL;
        if (!name || !*name)
            return cru_err_set(CRU_EPARSE, "%s part %s: a <sheet> without a name", c->z->kind,
                               SHOWN(wb));
        if (!id)
            return cru_err_set(CRU_EPARSE, "%s part %s: sheet '%s' has no r:id", c->z->kind,
                               SHOWN(wb), SHOWN(name));
        const struct rel *rel = rel_by_id(rels, id);
        if (!rel || rel->external)
            return cru_err_set(CRU_EPARSE,
                               "%s part %s: sheet '%s' refers to relationship %s, which its "
                               "relationships part lacks",
                               c->z->kind, SHOWN(wb), SHOWN(name), SHOWN(id));
        if ((rc = resolve(c->z, wb, rel->target, &part)) < 0)
            return rc;
        if (!zip_has(c->z, part)) {
            char why[SHOW_MAX * 4 + 16];
            snprintf(why, sizeof(why), "sheet '%s'", SHOWN(name));
            rc = missing(c->z, part, why);
        } else {
            rc = need_ctype(c->z, ct, part, NULL, NULL);
        }
        if (rc < 0) {
            free(part);
            return rc;
        }
        /* Each sheet has a part of its own, so there are no more sheets than parts. */
        if (x->n_sheets >= c->z->n_names)
            rc = cru_err_set(CRU_EPARSE, "%s part %s: more sheets than the zip has parts",
                             c->z->kind, SHOWN(wb));
        else
            rc = grow(&x->sheets, &cap, x->n_sheets, sizeof(*x->sheets));
        if (rc == 0) {
            struct xsheet *sh = &x->sheets[x->n_sheets];
            *sh = (struct xsheet){ .name = pool_dup(&x->pool, name),
                                   .part = pool_dup(&x->pool, part) };
            if (!sh->name || !sh->part)
                rc = CRU_ENOMEM;
            else
                x->n_sheets++;
        }
        free(part);
        if (rc < 0)
            return rc;
    }
    if (x->n_sheets > 1) {
        if (!(scratch = calloc(x->n_sheets, sizeof(*scratch))))
            return nomem();
        for (size_t i = 0; i < x->n_sheets; i++)
            scratch[i] = x->sheets[i].name;
        rc = no_duplicates(c->z, wb, scratch, x->n_sheets, "name");
        for (size_t i = 0; rc == 0 && i < x->n_sheets; i++)
            scratch[i] = x->sheets[i].part;
        if (rc == 0)
            rc = no_duplicates(c->z, wb, scratch, x->n_sheets, "part");
        free(scratch);
    }
    return rc;
}

/* Finds the shared strings part: the target of the workbook's sharedStrings relationship
 * (none without one), with the shared strings content type, which no other part has (openpyxl
 * finds the part by it). */
static int find_sst(struct xctx *c, const char *wb, const struct rels *rels,
                    const struct ctypes *ct)
{
    const struct rel *rel;
    char *part = NULL;
    int rc = rel_one(c->z, rels, "sharedStrings", &rel);
    if (rc < 0 || !rel)
        return rc;
    if ((rc = resolve(c->z, wb, rel->target, &part)) < 0)
        return rc;
    if (!zip_has(c->z, part))
        rc = missing(c->z, part, "the workbook's shared strings");
    else if ((rc = need_ctype(c->z, ct, part, CT_SST, "shared strings")) == 0 &&
             (rc = only_one_of_type(c->z, ct, part, CT_SST, "the shared strings")) == 0 &&
             !(c->x->sst_part = pool_dup(&c->x->pool, part)))
        rc = CRU_ENOMEM;
    free(part);
    return rc;
}

/* Replaces the shared string indexes with their texts. */
static int link_shared(struct xctx *c)
{
    struct rwd_xlsx *x = c->x;
    for (size_t s = 0; s < x->n_sheets; s++) {
        struct xsheet *sh = &x->sheets[s];
        for (size_t i = 0; i < sh->n_cells; i++) {
            struct xcell *cell = &sh->cells[i];
            if (!cell->shared)
                continue;
            if (!x->sst_part)
                return sheet_err(c, sh, CRU_EPARSE,
                                 "cell %s: a shared string, but the workbook has no shared "
                                 "strings part",
                                 CELL_NAME(cell->col, cell->row));
            if (cell->sst >= x->n_sst)
                return sheet_err(
                    c, sh, CRU_EPARSE, "cell %s: shared string %zu does not exist (%s has %zu)",
                    CELL_NAME(cell->col, cell->row), cell->sst, SHOWN(x->sst_part), x->n_sst);
            cell->text = x->sst[cell->sst];
            cell->shared = false;
        }
    }
    return 0;
}

static int xlsx_load(struct xctx *c)
{
    struct package pkg = { 0 };
    struct rels rels = { 0 };
    const char **names = NULL;
    struct one_ctx one = { c->z, NS_S, "workbook", NULL };
    int rc;

    if ((rc = package_open(c->z, &pkg, CT_WORKBOOK, "a workbook")) < 0 ||
        (rc = only_one_of_type(c->z, &pkg.ct, pkg.main, CT_WORKBOOK, "the workbook")) < 0)
        goto done;
    const char *wb = pkg.main, *wb_names[] = { wb };
    if ((rc = zip_read(c->z, wb_names, 1, one_part, &one)) < 0 ||
        (rc = read_rels(c->z, wb, &rels)) < 0)
        goto done;
    if (!rels.doc) {
        char *name = NULL;
        if ((rc = rels_name(&name, wb)) == 0)
            rc = missing(c->z, name, "the workbook's relationships");
        free(name);
        goto done;
    }
    if ((rc = workbook_sheets(c, wb, one.doc, &rels, &pkg.ct)) < 0 ||
        (rc = find_sst(c, wb, &rels, &pkg.ct)) < 0)
        goto done;
    rwd_xml_free(one.doc);
    one.doc = NULL;
    rels_free(&rels);
    ctypes_free(&pkg.ct);

    size_t n = c->x->n_sheets;
    if (!(names = calloc(n + 1, sizeof(*names)))) {
        rc = nomem();
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        names[i] = c->x->sheets[i].part;
    if (c->x->sst_part) {
        for (size_t i = 0; i < n && rc == 0; i++)
            if (strcmp(names[i], c->x->sst_part) == 0)
                rc = cru_err_set(CRU_EPARSE, "%s: part %s is both a sheet and the shared strings",
                                 c->z->kind, SHOWN(names[i]));
        names[n++] = c->x->sst_part;
    }
    if (rc == 0 && (rc = zip_read(c->z, names, n, xlsx_part, c)) == 0)
        rc = link_shared(c);
done:
    rwd_xml_free(one.doc);
    rels_free(&rels);
    package_free(&pkg);
    free(names);
    return rc;
}

int rwd_xlsx_open(const void *data, size_t len, struct rwd_xlsx **out)
{
    struct zip z = { "XLSX", "an XLSX", "an Excel package", data, len, NULL, 0, 0, NULL };
    struct xctx c = { &z, NULL, CRU_BUF_INIT };
    int rc;

    *out = NULL;
    if (!data && len > 0)
        return cru_err_set(CRU_EINVAL, "XLSX: no data");
    if (!(c.x = calloc(1, sizeof(*c.x))))
        return nomem();
    rc = xlsx_load(&c);
    cru_buf_free(&c.tb);
    zip_free(&z);
    if (rc < 0) {
        rwd_xlsx_free(c.x);
        return rc;
    }
    *out = c.x;
    return 0;
}

void rwd_xlsx_free(struct rwd_xlsx *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->n_sheets; i++)
        free(x->sheets[i].cells);
    free(x->sheets);
    free(x->sst);
    pool_free(&x->pool);
    free(x);
}

size_t rwd_xlsx_sheet_count(const struct rwd_xlsx *x)
{
    return x ? x->n_sheets : 0;
}

const char *rwd_xlsx_sheet_name(const struct rwd_xlsx *x, size_t i)
{
    return x && i < x->n_sheets ? x->sheets[i].name : NULL;
}

static const struct xsheet *find_sheet(const struct rwd_xlsx *x, const char *name)
{
    const struct xsheet *hit = NULL;
    for (size_t i = 0; i < x->n_sheets; i++)
        if (strcmp(x->sheets[i].name, name) == 0)
            return &x->sheets[i];
    for (size_t i = 0; i < x->n_sheets; i++) {
        if (strcasecmp(x->sheets[i].name, name) == 0) {
            if (hit)
                return NULL; /* ambiguous */
            hit = &x->sheets[i];
        }
    }
    return hit;
}

static int no_sheet(const struct rwd_xlsx *x, const char *name)
{
    struct cru_buf b = CRU_BUF_INIT;
    for (size_t i = 0; i < x->n_sheets; i++) {
        if (b.len > 1000) {
            cru_buf_puts(&b, ", ...");
            break;
        }
        cru_buf_printf(&b, "%s'%s'", i ? ", " : "", SHOWN(x->sheets[i].name));
    }
    int rc = cru_err_set(CRU_ENOENT, "XLSX: no sheet named '%s' (the sheets are: %s)", SHOWN(name),
                         x->n_sheets ? cru_buf_cstr(&b) : "none");
    cru_buf_free(&b);
    return rc;
}

int rwd_xlsx_cell(const struct rwd_xlsx *x, const char *sheet, uint32_t col, uint32_t row,
                  struct rwd_xlsx_value *out)
{
    if (!x || !sheet || !out)
        return cru_err_set(CRU_EINVAL, "XLSX: rwd_xlsx_cell without a workbook, sheet or result");
    *out = (struct rwd_xlsx_value){ .type = RWD_XV_EMPTY };
    if (col > XLSX_MAX_COL || row > XLSX_MAX_ROW)
        return cru_err_set(CRU_EINVAL, "XLSX: column %lu, row %lu lies outside a worksheet",
                           (unsigned long)col, (unsigned long)row);
    const struct xsheet *sh = find_sheet(x, sheet);
    if (!sh)
        return no_sheet(x, sheet);
    struct xcell key = { .row = row, .col = col };
    const struct xcell *cell =
        sh->n_cells ? bsearch(&key, sh->cells, sh->n_cells, sizeof(*sh->cells), cmp_cell) : NULL;
    if (!cell)
        return 0;
    out->type = cell->type;
    out->number = cell->type == RWD_XV_NUMBER ? cell->number : 0;
    out->boolean = cell->type == RWD_XV_BOOL && cell->boolean;
    out->text = cell->type == RWD_XV_EMPTY ? NULL : cell->text;
    out->has_formula = cell->has_formula;
    out->formula = cell->formula;
    return 0;
}

/* ---- DOCX ---- */

/* What rwd_docx_open hands out: the public document first, so the pointer converts both ways. */
struct docx_doc {
    struct rwd_docx pub;
    struct pool pool;
};

struct style_level {
    const char *id; /* pool */
    int level;      /* 0: not a heading */
    size_t order;   /* in the styles part */
};

struct dctx {
    struct zip *z;
    struct docx_doc *d;
    const char *part; /* the document part, for messages */
    size_t cap_pars, cap_tables, cap_styles;
    const char **par_styles; /* each paragraph's style id, or NULL */
    struct style_level *levels;
    size_t n_levels, cap_levels;
    size_t cells; /* grid cells of the tables so far */
    char *empty;  /* "" in the pool, for padding */
};

/* A table's grid while it is read: the cells' texts row after row, and where each row starts. */
struct grid {
    size_t index; /* the table's, from 0 */
    char **slots;
    size_t n, cap;
    size_t *rows;
    size_t n_rows, cap_rows;
};

static int table(struct dctx *c, const xmlNode *tbl);

/* The level N of S when it is PREFIX followed by one digit 1..9 (ASCII case ignored), else 0. */
static int level_of(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    if (s && strncasecmp(s, prefix, n) == 0 && s[n] >= '1' && s[n] <= '9' && s[n + 1] == '\0')
        return s[n] - '0';
    return 0;
}

static bool w_named(const xmlNode *n, const char *name)
{
    return is_el(n, NS_W, name);
}

/* Appends the text of the inline content of N (a paragraph, or a run container inside one). */
static int inline_text(struct cru_buf *b, const xmlNode *n)
{
    static const char *const containers[] = { "r",         "hyperlink", "ins",        "smartTag",
                                              "fldSimple", "sdt",       "sdtContent", "customXml",
                                              "moveTo",    "dir",       "bdo",        NULL };
    int rc = 0;
    for (const xmlNode *k = n->children; k && rc == 0; k = k->next) {
        if (k->type != XML_ELEMENT_NODE || !in_ns(k, NS_W))
            continue;
        const char *name = (const char *)k->name;
        if (strcmp(name, "t") == 0) {
            rc = append_text(b, k);
        } else if (strcmp(name, "tab") == 0 || strcmp(name, "ptab") == 0) {
            rc = cru_buf_putc(b, '\t');
        } else if (strcmp(name, "br") == 0 || strcmp(name, "cr") == 0) {
            rc = cru_buf_putc(b, '\n');
        } else if (strcmp(name, "noBreakHyphen") == 0) {
            rc = cru_buf_putc(b, '-');
        } else {
            for (size_t i = 0; containers[i]; i++) {
                if (strcmp(name, containers[i]) == 0) {
                    rc = inline_text(b, k);
                    break;
                }
            }
        }
    }
    return rc;
}

static int add_paragraph(struct dctx *c, const xmlNode *p)
{
    struct rwd_docx *d = &c->d->pub;
    struct cru_buf b = CRU_BUF_INIT;
    const xmlNode *ppr = child(p, NS_W, "pPr");
    const xmlNode *ps = ppr ? child(ppr, NS_W, "pStyle") : NULL;
    const char *style = ps ? attr(ps, NS_W, "val") : NULL;
    int rc;

    if ((rc = inline_text(&b, p)) < 0 ||
        (rc = grow(&d->paragraphs, &c->cap_pars, d->n_paragraphs, sizeof(*d->paragraphs))) < 0 ||
        (rc = grow(&c->par_styles, &c->cap_styles, d->n_paragraphs, sizeof(*c->par_styles))) < 0)
        goto done;
    char *text = pool_ndup(&c->d->pool, cru_buf_cstr(&b), b.len);
    const char *sid = style ? pool_dup(&c->d->pool, style) : NULL;
    if (!text || (style && !sid)) {
        rc = CRU_ENOMEM;
        goto done;
    }
    c->par_styles[d->n_paragraphs] = sid;
    d->paragraphs[d->n_paragraphs++] = (struct rwd_docx_par){ text, 0 };
done:
    cru_buf_free(&b);
    return rc;
}

/* Walks the block-level content of N: paragraphs go to the document when CELL is NULL, else
 * into CELL, joined with "\n" (*FIRST says whether one was added yet); tables go to the
 * tables. Content controls and custom XML are looked into. */
static int blocks(struct dctx *c, const xmlNode *n, struct cru_buf *cell, bool *first)
{
    int rc = 0;
    for (const xmlNode *k = n->children; k && rc == 0; k = k->next) {
        if (w_named(k, "p")) {
            if (!cell) {
                rc = add_paragraph(c, k);
            } else {
                if (!*first)
                    rc = cru_buf_putc(cell, '\n');
                *first = false;
                if (rc == 0)
                    rc = inline_text(cell, k);
            }
        } else if (w_named(k, "tbl")) {
            rc = table(c, k);
        } else if (w_named(k, "sdt")) {
            const xmlNode *content = child(k, NS_W, "sdtContent");
            if (content)
                rc = blocks(c, content, cell, first);
        } else if (w_named(k, "customXml")) {
            rc = blocks(c, k, cell, first);
        }
    }
    return rc;
}

static int too_many_cells(const struct dctx *c)
{
    return cru_err_set(CRU_ELIMIT, "%s part %s: the tables have more than %zu cells", c->z->kind,
                       SHOWN(c->part), RWD_DOCX_MAX_CELLS);
}

static int grid_push(struct dctx *c, struct grid *g, char *text)
{
    size_t width = g->n - g->rows[g->n_rows - 1];
    if (width >= RWD_DOCX_MAX_COLS)
        return cru_err_set(CRU_ELIMIT, "%s part %s: table %zu has a row wider than %zu columns",
                           c->z->kind, SHOWN(c->part), g->index + 1, RWD_DOCX_MAX_COLS);
    if (c->cells + g->n >= RWD_DOCX_MAX_CELLS)
        return too_many_cells(c);
    int rc = grow(&g->slots, &g->cap, g->n, sizeof(*g->slots));
    if (rc == 0)
        g->slots[g->n++] = text;
    return rc;
}

static int table_cell(struct dctx *c, struct grid *g, const xmlNode *tc)
{
    const xmlNode *pr = child(tc, NS_W, "tcPr");
    const xmlNode *span_el = pr ? child(pr, NS_W, "gridSpan") : NULL;
    const xmlNode *vmerge = pr ? child(pr, NS_W, "vMerge") : NULL;
    const char *v;
    uint64_t span = 1;
    struct cru_buf b = CRU_BUF_INIT;
    bool first = true;
    int rc;

    if (span_el && (v = attr(span_el, NS_W, "val")) != NULL) {
        /* A span too wide fails in grid_push, at the bound on a row's width. */
        if (cru_parse_u64(v, 0, UINT64_MAX, &span) < 0) {
            char why[CRU_ERR_MAX];
            snprintf(why, sizeof(why), "%s", cru_err_msg());
            return cru_err_set(CRU_EPARSE, "%s part %s: table %zu: gridSpan \"%s\": %s", c->z->kind,
                               SHOWN(c->part), g->index + 1, SHOWN(v), why);
        }
        if (span == 0)
            span = 1;
    }
    v = vmerge ? attr(vmerge, NS_W, "val") : NULL;
    bool cont = vmerge && (!v || strcmp(v, "continue") == 0);

    if ((rc = blocks(c, tc, &b, &first)) < 0)
        goto done;
    char *text = pool_ndup(&c->d->pool, cru_buf_cstr(&b), b.len);
    if (!text) {
        rc = CRU_ENOMEM;
        goto done;
    }
    for (uint64_t i = 0; i < span && rc == 0; i++) {
        char *slot = text;
        size_t at = g->n - g->rows[g->n_rows - 1];
        if (cont && g->n_rows > 1) {
            size_t prev = g->rows[g->n_rows - 2], prev_len = g->rows[g->n_rows - 1] - prev;
            if (at < prev_len)
                slot = g->slots[prev + at];
        }
        rc = grid_push(c, g, slot);
    }
done:
    cru_buf_free(&b);
    return rc;
}

/* The cells of a row, looking into content controls and custom XML. */
static int row_cells(struct dctx *c, struct grid *g, const xmlNode *n)
{
    int rc = 0;
    for (const xmlNode *k = n->children; k && rc == 0; k = k->next) {
        if (w_named(k, "tc")) {
            rc = table_cell(c, g, k);
        } else if (w_named(k, "sdt")) {
            const xmlNode *content = child(k, NS_W, "sdtContent");
            if (content)
                rc = row_cells(c, g, content);
        } else if (w_named(k, "customXml")) {
            rc = row_cells(c, g, k);
        }
    }
    return rc;
}

static int table_rows(struct dctx *c, struct grid *g, const xmlNode *n)
{
    int rc = 0;
    for (const xmlNode *k = n->children; k && rc == 0; k = k->next) {
        if (w_named(k, "tr")) {
            if ((rc = grow(&g->rows, &g->cap_rows, g->n_rows, sizeof(*g->rows))) < 0)
                break;
            g->rows[g->n_rows++] = g->n;
            rc = row_cells(c, g, k);
        } else if (w_named(k, "sdt")) {
            const xmlNode *content = child(k, NS_W, "sdtContent");
            if (content)
                rc = table_rows(c, g, content);
        } else if (w_named(k, "customXml")) {
            rc = table_rows(c, g, k);
        }
    }
    return rc;
}

/* Reads a table into the next slot of the tables (reserved first, so a table nested in one of
 * its cells comes after it). */
static int table(struct dctx *c, const xmlNode *tbl)
{
    struct rwd_docx *d = &c->d->pub;
    struct grid g = { 0 };
    int rc = grow(&d->tables, &c->cap_tables, d->n_tables, sizeof(*d->tables));
    if (rc < 0)
        return rc;
    size_t index = d->n_tables++;
    g.index = index;
    d->tables[index] = (struct rwd_docx_table){ 0, 0, NULL };
    if ((rc = table_rows(c, &g, tbl)) < 0)
        goto done;
    size_t cols = 0;
    for (size_t r = 0; r < g.n_rows; r++) {
        size_t end = r + 1 < g.n_rows ? g.rows[r + 1] : g.n;
        if (end - g.rows[r] > cols)
            cols = end - g.rows[r];
    }
    if (cols > 0 && g.n_rows > (RWD_DOCX_MAX_CELLS - c->cells) / cols) {
        rc = too_many_cells(c);
        goto done;
    }
    struct rwd_docx_table *t = &d->tables[index];
    t->n_rows = g.n_rows;
    t->n_cols = cols;
    if (cols == 0 || g.n_rows == 0)
        goto done;
    if (!(t->cells = calloc(g.n_rows * cols, sizeof(*t->cells)))) {
        rc = nomem();
        goto done;
    }
    c->cells += g.n_rows * cols;
    for (size_t r = 0; r < g.n_rows; r++) {
        size_t start = g.rows[r], end = r + 1 < g.n_rows ? g.rows[r + 1] : g.n;
        for (size_t k = 0; k < cols; k++)
            t->cells[r * cols + k] = start + k < end ? g.slots[start + k] : c->empty;
    }
done:
    free(g.slots);
    free(g.rows);
    return rc;
}

static int parse_document(struct dctx *c, const char *data, size_t len)
{
    xmlDoc *doc;
    int rc = xml_parse(c->z, c->part, data, len, NS_W, "document", &doc);
    if (rc < 0)
        return rc;
    const xmlNode *body = child(rwd_xml_root(doc), NS_W, "body");
    if (!body)
        rc = cru_err_set(CRU_EPARSE, "%s part %s: no w:body element", c->z->kind, SHOWN(c->part));
    else
        rc = blocks(c, body, NULL, NULL);
    rwd_xml_free(doc);
    return rc;
}

static int cmp_level(const void *a, const void *b)
{
    return strcmp(((const struct style_level *)a)->id, ((const struct style_level *)b)->id);
}

static int cmp_level_order(const void *a, const void *b)
{
    const struct style_level *x = a, *y = b;
    int d = strcmp(x->id, y->id);
    return d ? d : x->order < y->order ? -1 : x->order > y->order;
}

/* Collects the styles of a styles part, each with its heading level: that of a paragraph
 * style (w:type "paragraph", the default) named "heading N". A style id defined twice means
 * its first definition, as in python-docx. */
static int parse_styles(struct dctx *c, const char *part, const char *data, size_t len)
{
    xmlDoc *doc;
    int rc = xml_parse(c->z, part, data, len, NS_W, "styles", &doc);
    if (rc < 0)
        return rc;
    for (const xmlNode *s = rwd_xml_root(doc)->children; s && rc == 0; s = s->next) {
        if (!w_named(s, "style"))
            continue;
        const char *id = attr(s, NS_W, "styleId"), *type = attr(s, NS_W, "type");
        const xmlNode *name = child(s, NS_W, "name");
        int level = level_of(name ? attr(name, NS_W, "val") : NULL, "heading ");
        if (!id)
            continue;
        if (type && strcmp(type, "paragraph") != 0)
            level = 0;
        if ((rc = grow(&c->levels, &c->cap_levels, c->n_levels, sizeof(*c->levels))) < 0)
            break;
        const char *kept = pool_dup(&c->d->pool, id);
        if (!kept) {
            rc = CRU_ENOMEM;
        } else {
            c->levels[c->n_levels] = (struct style_level){ kept, level, c->n_levels };
            c->n_levels++;
        }
    }
    rwd_xml_free(doc);
    if (rc == 0 && c->n_levels > 1) {
        qsort(c->levels, c->n_levels, sizeof(*c->levels), cmp_level_order);
        size_t w = 1;
        for (size_t r = 1; r < c->n_levels; r++)
            if (strcmp(c->levels[w - 1].id, c->levels[r].id) != 0)
                c->levels[w++] = c->levels[r];
        c->n_levels = w;
    }
    return rc;
}

static int docx_part(void *ctx, size_t which, const char *name, const char *data, size_t len)
{
    (void)which;
    (void)name;
    return parse_document(ctx, data, len);
}

static int docx_styles(void *ctx, size_t which, const char *name, const char *data, size_t len)
{
    (void)which;
    return parse_styles(ctx, name, data, len);
}

/* Finds the styles part: the target of the document's styles relationship (none without
 * one; that it exists was checked with the other targets), with the styles content type. */
static int find_styles(struct dctx *c, const struct ctypes *ct, const struct rels *rels, char **out)
{
    const struct rel *rel;
    int rc = rel_one(c->z, rels, "styles", &rel);
    *out = NULL;
    if (rc < 0 || !rel)
        return rc;
    if ((rc = resolve(c->z, c->part, rel->target, out)) < 0)
        return rc;
    return need_ctype(c->z, ct, *out, CT_STYLES, "a styles part");
}

static int docx_load(struct dctx *c)
{
    struct package pkg = { 0 };
    struct rels rels = { 0 };
    char *styles = NULL;
    int rc;

    if ((rc = package_open(c->z, &pkg, CT_DOCUMENT, "a Word document")) < 0 ||
        (rc = targets_exist(c->z, &pkg.ct, &pkg.rels, "")) < 0)
        goto done;
    c->part = pkg.main;
    if (!(c->empty = pool_dup(&c->d->pool, ""))) {
        rc = CRU_ENOMEM;
        goto done;
    }
    const char *names[] = { pkg.main };
    if ((rc = zip_read(c->z, names, 1, docx_part, c)) < 0 ||
        (rc = read_rels(c->z, pkg.main, &rels)) < 0 ||
        (rc = targets_exist(c->z, &pkg.ct, &rels, pkg.main)) < 0 ||
        (rc = find_styles(c, &pkg.ct, &rels, &styles)) < 0)
        goto done;
    if (styles) {
        const char *snames[] = { styles };
        if ((rc = zip_read(c->z, snames, 1, docx_styles, c)) < 0)
            goto done;
    }
    /* A style id the styles part does not define (or any, without a styles part) is the
     * default style, as in Word and python-docx: not a heading, whatever the id says. */
    struct rwd_docx *d = &c->d->pub;
    for (size_t i = 0; i < d->n_paragraphs; i++) {
        const char *id = c->par_styles[i];
        if (!id || c->n_levels == 0)
            continue;
        struct style_level key = { .id = id };
        const struct style_level *hit =
            bsearch(&key, c->levels, c->n_levels, sizeof(*c->levels), cmp_level);
        d->paragraphs[i].heading = hit ? hit->level : 0;
    }
done:
    c->part = NULL;
    rels_free(&rels);
    package_free(&pkg);
    free(styles);
    return rc;
}

int rwd_docx_open(const void *data, size_t len, struct rwd_docx **out)
{
    struct zip z = { "DOCX", "a DOCX", "a Word package", data, len, NULL, 0, 0, NULL };
    struct dctx c = { .z = &z };
    int rc;

    *out = NULL;
    if (!data && len > 0)
        return cru_err_set(CRU_EINVAL, "DOCX: no data");
    if (!(c.d = calloc(1, sizeof(*c.d))))
        return nomem();
    rc = docx_load(&c);
    free(c.par_styles);
    free(c.levels);
    zip_free(&z);
    if (rc < 0) {
        rwd_docx_free(&c.d->pub);
        return rc;
    }
    *out = &c.d->pub;
    return 0;
}

void rwd_docx_free(struct rwd_docx *d)
{
    if (!d)
        return;
    struct docx_doc *doc = (struct docx_doc *)d;
    for (size_t i = 0; i < d->n_tables; i++)
        free(d->tables[i].cells);
    free(d->tables);
    free(d->paragraphs);
    pool_free(&doc->pool);
    free(doc);
}

const char *rwd_docx_cell(const struct rwd_docx_table *t, size_t row, size_t col)
{
    if (!t || row >= t->n_rows || col >= t->n_cols || !t->cells)
        return NULL;
    return t->cells[row * t->n_cols + col];
}
