/* json: jansson with positioned errors, strict defaults and typed field access.
 *
 * Parsing is jansson's (no JSON is parsed by hand in crucible); this module adds the file
 * reading bound, the error format, duplicate-key rejection, and field-path error messages.
 */
#include "lib/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"

int cru_json_parse(json_t **out, const char *text, size_t len, const char *name)
{
    json_error_t e;
    /* No JSON text holds a raw NUL byte, and jansson silently drops one that follows a number
     * ("[1\0,2]" reads as [1,2]), so it is refused here, where it is. */
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        int line = 1, col = 1;
        for (const char *p = text; p < nul; p++) {
            if (*p == '\n')
                line++, col = 1;
            else if ((*p & 0xC0) != 0x80)
                col++;
        }
        return cru_err_set(CRU_EPARSE, "%s:%d:%d: a NUL byte, which JSON text cannot hold", name,
                           line, col);
    }
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &e);
    if (!v) {
        if (json_error_code(&e) == json_error_out_of_memory)
            return cru_err_set(CRU_ENOMEM, "%s: out of memory parsing JSON", name);
        /* jansson reports column 0 for an error before the first character (empty input). */
        return cru_err_set(CRU_EPARSE, "%s:%d:%d: %s", name, e.line < 1 ? 1 : e.line,
                           e.column < 1 ? 1 : e.column, e.text);
    }
    *out = v;
    return 0;
}

void cru_json_count(const char *text, size_t len, struct cru_json_counts *out)
{
    memset(out, 0, sizeof(*out));
    size_t depth = 0, starts = 0;
    bool in_word = false;
    for (size_t i = 0; i < len; i++) {
        switch (text[i]) {
        case '"': {
            /* The closing quote is the next one not escaped, which memchr finds fast in the
             * long names that make up most of a big document. Each backslash before a quote is
             * looked at once, so the whole scan stays linear. */
            starts++;
            in_word = false;
            for (;;) {
                const char *q = memchr(text + i + 1, '"', len - i - 1);
                if (!q) {
                    i = len;
                    break;
                }
                i = (size_t)(q - text);
                size_t bs = 0;
                while (q - bs > text && q[-1 - (ptrdiff_t)bs] == '\\')
                    bs++;
                if (bs % 2 == 0)
                    break;
            }
            break;
        }
        case '{':
        case '[':
            starts++;
            depth++;
            in_word = false;
            break;
        case '}':
        case ']':
            depth -= depth > 0;
            in_word = false;
            break;
        case ':':
            /* Every member has one, after its key. */
            out->members++;
            if (depth >= 1 && depth <= CRU_JSON_COUNT_DEPTHS)
                out->members_at[depth - 1]++;
            in_word = false;
            break;
        case ',':
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            in_word = false;
            break;
        default:
            /* A number, true, false or null starts here. */
            starts += !in_word;
            in_word = true;
        }
    }
    /* A key is a string that is no value. */
    out->values = starts > out->members ? starts - out->members : 0;
}

int cru_json_load_file(json_t **out, const char *path, size_t max)
{
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cru_file_read(path, max ? max : CRU_JSON_MAX_BYTES, &b);
    if (rc == 0)
        rc = cru_json_parse(out, cru_buf_cstr(&b), b.len, path);
    cru_buf_free(&b);
    return rc;
}

int cru_json_dump(char **out, const json_t *v, bool pretty)
{
    size_t flags = JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT);
    char *s = json_dumps(v, flags);
    if (!s)
        return cru_err_set(CRU_ENOMEM, "cannot serialise JSON (out of memory)");
    *out = s;
    return 0;
}

int cru_json_write_file(const char *path, const json_t *v, mode_t mode)
{
    char *s = NULL;
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cru_json_dump(&s, v, true);
    if (rc == 0 && (rc = cru_buf_puts(&b, s)) == 0 && (rc = cru_buf_putc(&b, '\n')) == 0)
        rc = cru_file_write_atomic(path, b.data, b.len, mode);
    free(s);
    cru_buf_free(&b);
    return rc;
}

const char *cru_json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "an unknown value";
}

const char *cru_json_path_key(char *buf, size_t cap, const char *path, const char *key)
{
    if (path && *path)
        snprintf(buf, cap, "%s.%s", path, key);
    else
        snprintf(buf, cap, "%s", key);
    return buf;
}

const char *cru_json_path_index(char *buf, size_t cap, const char *path, size_t i)
{
    snprintf(buf, cap, "%s[%zu]", path ? path : "", i);
    return buf;
}

/* Finds KEY in OBJ. Returns 1 and sets *v when present, 0 when absent and optional. */
static int field_lookup(const json_t *obj, const char *path, const char *key, bool required,
                        json_t **v)
{
    char name[512];
    if (!json_is_object(obj))
        return cru_err_set(CRU_EINVAL, "%s: expected an object, got %s",
                           path && *path ? path : "(root)", cru_json_type_name(obj));
    *v = json_object_get(obj, key);
    if (*v)
        return 1;
    if (required)
        return cru_err_set(CRU_ENOENT, "%s: required field is missing",
                           cru_json_path_key(name, sizeof(name), path, key));
    return 0;
}

static int field_type_error(const char *path, const char *key, const char *want, const json_t *v)
{
    char name[512];
    return cru_err_set(CRU_EINVAL, "%s: expected %s, got %s",
                       cru_json_path_key(name, sizeof(name), path, key), want,
                       cru_json_type_name(v));
}

int cru_json_get_str(const json_t *obj, const char *path, const char *key, bool required,
                     const char **out)
{
    json_t *v;
    int rc = field_lookup(obj, path, key, required, &v);
    if (rc <= 0)
        return rc;
    if (!json_is_string(v))
        return field_type_error(path, key, "a string", v);
    *out = json_string_value(v);
    return 0;
}

int cru_json_get_bool(const json_t *obj, const char *path, const char *key, bool required,
                      bool *out)
{
    json_t *v;
    int rc = field_lookup(obj, path, key, required, &v);
    if (rc <= 0)
        return rc;
    if (!json_is_boolean(v))
        return field_type_error(path, key, "a boolean", v);
    *out = json_is_true(v);
    return 0;
}

int cru_json_get_u64(const json_t *obj, const char *path, const char *key, bool required,
                     uint64_t min, uint64_t max, uint64_t *out)
{
    char name[512];
    json_t *v;
    int rc = field_lookup(obj, path, key, required, &v);
    if (rc <= 0)
        return rc;
    if (!json_is_integer(v))
        return field_type_error(path, key, "an integer", v);
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
        return cru_err_set(CRU_EINVAL, "%s: %lld is out of range [%llu, %llu]",
                           cru_json_path_key(name, sizeof(name), path, key), (long long)i,
                           (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)i;
    return 0;
}

int cru_json_get_double(const json_t *obj, const char *path, const char *key, bool required,
                        double min, double max, double *out)
{
    char name[512];
    json_t *v;
    int rc = field_lookup(obj, path, key, required, &v);
    if (rc <= 0)
        return rc;
    if (!json_is_number(v))
        return field_type_error(path, key, "a number", v);
    double d = json_number_value(v);
    if (!(d >= min && d <= max))
        return cru_err_set(CRU_EINVAL, "%s: %g is out of range [%g, %g]",
                           cru_json_path_key(name, sizeof(name), path, key), d, min, max);
    *out = d;
    return 0;
}

static int get_container(const json_t *obj, const char *path, const char *key, bool required,
                         json_type type, const char *want, json_t **out)
{
    json_t *v;
    int rc = field_lookup(obj, path, key, required, &v);
    if (rc == 0)
        *out = NULL;
    if (rc <= 0)
        return rc;
    if (json_typeof(v) != type)
        return field_type_error(path, key, want, v);
    *out = v;
    return 0;
}

int cru_json_get_object(const json_t *obj, const char *path, const char *key, bool required,
                        json_t **out)
{
    return get_container(obj, path, key, required, JSON_OBJECT, "an object", out);
}

int cru_json_get_array(const json_t *obj, const char *path, const char *key, bool required,
                       json_t **out)
{
    return get_container(obj, path, key, required, JSON_ARRAY, "an array", out);
}

static bool key_allowed(const char *key, const char *const allowed[])
{
    if (strncmp(key, "x-", 2) == 0)
        return true;
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(key, allowed[i]) == 0)
            return true;
    return false;
}

int cru_json_check_keys(const json_t *obj, const char *path, const char *const allowed[])
{
    char name[512];
    const char *key;
    json_t *v;

    if (!json_is_object(obj))
        return cru_err_set(CRU_EINVAL, "%s: expected an object, got %s",
                           path && *path ? path : "(root)", cru_json_type_name(obj));
    json_object_foreach((json_t *)(uintptr_t)obj, key, v)
    {
        if (!key_allowed(key, allowed))
            return cru_err_set(CRU_EINVAL, "%s: unknown field",
                               cru_json_path_key(name, sizeof(name), path, key));
    }
    return 0;
}

/* The position index. The scan trusts nothing: jansson has accepted the text, but if the scan
 * and the tree ever disagree the scan stops, and the fields it did not reach are reported at
 * an enclosing field. */
struct scan {
    const char *p, *end;
    unsigned line, col;
    struct cru_buf path;
    struct cru_json_at *at;
    size_t n_at, cap_at;
    bool stop; /* a disagreement, or out of memory: index no further */
};

static void scan_adv(struct scan *s)
{
    unsigned char c = (unsigned char)*s->p++;
    if (c == '\n') {
        s->line++;
        s->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        s->col++;
    }
}

static void scan_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        scan_adv(s);
}

static bool scan_expect(struct scan *s, char c)
{
    scan_ws(s);
    if (s->p >= s->end || *s->p != c) {
        s->stop = true;
        return false;
    }
    scan_adv(s);
    return true;
}

static void scan_record(struct scan *s, unsigned line, unsigned col)
{
    if (s->n_at >= CRU_JSON_POS_MAX)
        return;
    if (s->n_at == s->cap_at) {
        size_t cap = s->cap_at ? s->cap_at * 2 : 32;
        struct cru_json_at *at = realloc(s->at, cap * sizeof(*at));
        if (!at) {
            s->stop = true;
            return;
        }
        s->at = at;
        s->cap_at = cap;
    }
    char *path = strdup(cru_buf_cstr(&s->path));
    if (!path) {
        s->stop = true;
        return;
    }
    s->at[s->n_at++] = (struct cru_json_at){ path, line, col };
}

/* Skips a string, its quotes included (escapes are two characters or \uXXXX: skipping the
 * backslash's successor is enough, since hex digits need no care). */
static void scan_string(struct scan *s)
{
    scan_adv(s);
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\' && s->p + 1 < s->end)
            scan_adv(s);
        scan_adv(s);
    }
    if (s->p >= s->end)
        s->stop = true;
    else
        scan_adv(s);
}

static void scan_value(struct scan *s, json_t *v, unsigned depth);

static void scan_member(struct scan *s, const char *key, json_t *child, unsigned depth)
{
    size_t mark = s->path.len;
    unsigned line = s->line, col = s->col;
    scan_string(s);
    if (s->stop || !scan_expect(s, ':'))
        return;
    if (depth < CRU_JSON_POS_DEPTH) {
        if ((mark ? cru_buf_putc(&s->path, '.') : 0) < 0 || cru_buf_puts(&s->path, key) < 0) {
            s->stop = true;
            return;
        }
        scan_record(s, line, col);
    }
    scan_value(s, child, depth + 1);
    s->path.len = mark;
    if (s->path.data)
        s->path.data[mark] = '\0';
}

static void scan_value(struct scan *s, json_t *v, unsigned depth)
{
    scan_ws(s);
    if (s->stop || s->p >= s->end) {
        s->stop = true;
        return;
    }
    if (json_is_object(v)) {
        if (!scan_expect(s, '{'))
            return;
        bool first = true;
        for (void *it = json_object_iter(v); it && !s->stop;
             it = json_object_iter_next(v, it), first = false) {
            if (!first && !scan_expect(s, ','))
                return;
            scan_ws(s);
            if (s->p >= s->end || *s->p != '"') {
                s->stop = true;
                return;
            }
            scan_member(s, json_object_iter_key(it), json_object_iter_value(it), depth);
        }
        scan_expect(s, '}');
    } else if (json_is_array(v)) {
        if (!scan_expect(s, '['))
            return;
        for (size_t i = 0; i < json_array_size(v) && !s->stop; i++) {
            if (i > 0 && !scan_expect(s, ','))
                return;
            scan_ws(s);
            size_t mark = s->path.len;
            if (depth < CRU_JSON_POS_DEPTH) {
                if (cru_buf_printf(&s->path, "[%zu]", i) < 0) {
                    s->stop = true;
                    return;
                }
                scan_record(s, s->line, s->col);
            }
            scan_value(s, json_array_get(v, i), depth + 1);
            s->path.len = mark;
            if (s->path.data)
                s->path.data[mark] = '\0';
        }
        scan_expect(s, ']');
    } else if (json_is_string(v)) {
        if (*s->p != '"')
            s->stop = true;
        else
            scan_string(s);
    } else {
        /* A number or a literal: up to the next delimiter. */
        while (s->p < s->end && !strchr(",]}: \t\r\n", *s->p))
            scan_adv(s);
    }
}

static int at_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cru_json_at *)a)->path, ((const struct cru_json_at *)b)->path);
}

int cru_json_doc_parse(struct cru_json_doc *doc, const char *text, size_t len, const char *name)
{
    *doc = (struct cru_json_doc)CRU_JSON_DOC_INIT;
    doc->name = strdup(name);
    if (!doc->name)
        return cru_err_set(CRU_ENOMEM, "%s: out of memory", name);
    int rc = cru_json_parse(&doc->root, text, len, name);
    if (rc < 0) {
        cru_json_doc_free(doc);
        return rc;
    }
    struct scan s = { .p = text, .end = text + len, .line = 1, .col = 1, .path = CRU_BUF_INIT };
    if (cru_buf_puts(&s.path, "") == 0) {
        scan_ws(&s);
        scan_record(&s, s.line, s.col);
        scan_value(&s, doc->root, 0);
    }
    cru_buf_free(&s.path);
    doc->at = s.at;
    doc->n_at = s.n_at;
    if (doc->n_at > 1)
        qsort(doc->at, doc->n_at, sizeof(*doc->at), at_cmp);
    return 0;
}

int cru_json_doc_load(struct cru_json_doc *doc, const char *path, size_t max)
{
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cru_file_read(path, max ? max : CRU_JSON_MAX_BYTES, &b);
    if (rc == 0)
        rc = cru_json_doc_parse(doc, cru_buf_cstr(&b), b.len, path);
    else
        *doc = (struct cru_json_doc)CRU_JSON_DOC_INIT;
    cru_buf_free(&b);
    return rc;
}

void cru_json_doc_free(struct cru_json_doc *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->n_at; i++)
        free(doc->at[i].path);
    free(doc->at);
    free(doc->name);
    json_decref(doc->root);
    *doc = (struct cru_json_doc)CRU_JSON_DOC_INIT;
}

void cru_json_doc_where(const struct cru_json_doc *doc, const char *path, unsigned *line,
                        unsigned *col)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", path ? path : "");
    *line = 1;
    *col = 1;
    for (;;) {
        struct cru_json_at key = { .path = buf };
        const struct cru_json_at *hit =
            doc->n_at ? bsearch(&key, doc->at, doc->n_at, sizeof(*doc->at), at_cmp) : NULL;
        if (hit) {
            *line = hit->line;
            *col = hit->col;
            return;
        }
        if (!buf[0])
            return;
        /* Up one level: drop the last ".key" or "[i]". */
        char *cut = strrchr(buf, '.');
        char *br = strrchr(buf, '[');
        if (br && (!cut || br > cut))
            cut = br;
        if (cut)
            *cut = '\0';
        else
            buf[0] = '\0';
    }
}

static void report_line(struct cru_json_report *r, const char *path, const char *msg)
{
    unsigned line, col;
    cru_json_doc_where(r->doc, path, &line, &col);
    r->count++;
    /* A problem is one line: control characters from the document (a key holding a newline)
     * are escaped, so that no value can split a line or forge another. An allocation failure
     * loses the line, but the count still says the document failed. */
    (void)cru_buf_printf(r->out, "%s:%u:%u: ", r->doc->name, line, col);
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p == '\n')
            (void)cru_buf_puts(r->out, "\\n");
        else if (*p < 0x20 || *p == 0x7f)
            (void)cru_buf_printf(r->out, "\\x%02x", *p);
        else
            (void)cru_buf_putc(r->out, (char)*p);
    }
    (void)cru_buf_putc(r->out, '\n');
}

void cru_json_report_add(struct cru_json_report *r, const char *path, const char *fmt, ...)
{
    char msg[1024];
    int n = snprintf(msg, sizeof(msg), "%s: ", path && *path ? path : "(root)");
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof(msg) &&
        vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap) >= (int)(sizeof(msg) - (size_t)n))
        memcpy(msg + sizeof(msg) - 4, "...", 4); /* never cut silently */
    va_end(ap);
    report_line(r, path, msg);
}

void cru_json_report_err(struct cru_json_report *r, const char *path)
{
    /* The getters' messages start with the field; others (a parser's) get it put in front. */
    const char *msg = cru_err_msg();
    const char *field = path && *path ? path : "(root)";
    size_t n = strlen(field);
    if (strncmp(msg, field, n) == 0 && msg[n] == ':')
        report_line(r, path, msg);
    else
        cru_json_report_add(r, path, "%s", msg);
}

size_t cru_json_report_unknown(struct cru_json_report *r, const json_t *obj, const char *path,
                               const char *const allowed[])
{
    char name[512];
    const char *key;
    json_t *v;
    size_t n = 0;

    json_object_foreach((json_t *)(uintptr_t)obj, key, v)
    {
        if (key_allowed(key, allowed))
            continue;
        cru_json_report_add(r, cru_json_path_key(name, sizeof(name), path, key), "%s",
                            "unknown field");
        n++;
    }
    return n;
}

bool cru_json_report_ok(struct cru_json_report *r, int rc, const char *path)
{
    if (rc < 0)
        cru_json_report_err(r, path);
    return rc >= 0;
}
