/* json: JSON through jansson, with errors that say where.
 *
 * Parse errors read "NAME:LINE:COLUMN: what" (jansson's position: line from 1, column in
 * characters from 1). Duplicate object keys are errors, because a config with a key given
 * twice almost always hides a typo. The typed field getters name the full field path
 * ("limits.memory: expected a string, got an integer"), and cru_json_check_keys() rejects
 * unknown keys (except those starting with "x-") so that typos do not pass silently.
 */
#ifndef CRU_LIB_JSON_H
#define CRU_LIB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "lib/buf.h"

/* The largest JSON document read by default (64 MiB). */
#define CRU_JSON_MAX_BYTES ((size_t)64 << 20)

/* Parses LEN bytes of TEXT (any JSON value at the top level). NAME labels errors (a file name
 * or "<stdin>"). *out is a new reference (json_decref()). */
int cru_json_parse(json_t **out, const char *text, size_t len, const char *name);

/* How many values and object members a JSON text holds, found by cru_json_count(). */
#define CRU_JSON_COUNT_DEPTHS 3
struct cru_json_counts {
    size_t values;  /* values of every kind at any depth, the top-level one included */
    size_t members; /* object members at any depth */
    /* Object members by depth: [0] those of the top-level object, [1] those of the objects
     * directly inside it, [2] one level further. */
    size_t members_at[CRU_JSON_COUNT_DEPTHS];
};

/* Counts the values and members of LEN bytes of TEXT with a lexical scan that reads each byte
 * once and allocates nothing. jansson's memory and time grow with these counts (about 40
 * bytes an array element, 200 an object member), so a reader of hostile documents bounds them
 * before it parses. The scan does not validate: on malformed text the counts are estimates, and the
 * parse that follows refuses such text anyway. */
void cru_json_count(const char *text, size_t len, struct cru_json_counts *out);

/* Reads and parses PATH; MAX bounds its size (0: CRU_JSON_MAX_BYTES). */
int cru_json_load_file(json_t **out, const char *path, size_t max);

/* Serialises V: compact on one line, or PRETTY with two-space indents. Keys keep their order.
 * *out belongs to the caller (free()). */
int cru_json_dump(char **out, const json_t *v, bool pretty);

/* Writes V to PATH atomically, pretty-printed, with a final newline. */
int cru_json_write_file(const char *path, const json_t *v, mode_t mode);

/* The type name used in messages: "object", "array", "string", "integer", "number", ... */
const char *cru_json_type_name(const json_t *v);

/* Typed field getters. OBJ is an object at field path PATH ("" for the document root); KEY is
 * the field. A missing field is CRU_ENOENT when REQUIRED, else success leaving *out as it was
 * (so the caller presets the default). A field of the wrong type or out of range is
 * CRU_EINVAL. Strings are borrowed from OBJ. */
int cru_json_get_str(const json_t *obj, const char *path, const char *key, bool required,
                     const char **out);
int cru_json_get_bool(const json_t *obj, const char *path, const char *key, bool required,
                      bool *out);
int cru_json_get_u64(const json_t *obj, const char *path, const char *key, bool required,
                     uint64_t min, uint64_t max, uint64_t *out);
int cru_json_get_double(const json_t *obj, const char *path, const char *key, bool required,
                        double min, double max, double *out);
/* The value of an object or array field, borrowed; *out is NULL when absent and optional. */
int cru_json_get_object(const json_t *obj, const char *path, const char *key, bool required,
                        json_t **out);
int cru_json_get_array(const json_t *obj, const char *path, const char *key, bool required,
                       json_t **out);

/* Fails with CRU_EINVAL naming the first key of OBJ that is not in ALLOWED (a NULL-terminated
 * list) and does not start with "x-". */
int cru_json_check_keys(const json_t *obj, const char *path, const char *const allowed[]);

/* A parsed document that remembers where each field is, for messages that point at the
 * problem ("image.json:12:5: limits.memory: ..."). jansson keeps no positions, so after it has
 * parsed (and validated) the text, a scan of the same text in step with jansson's tree (whose
 * objects keep their keys in document order) records the line and column of every field.
 *
 * Field paths are written as in the getters above: "limits.memory" for members, "checks[2]"
 * for array elements, "" for the root. A member's position is that of its key; an element's,
 * that of its value. Fields nested deeper than CRU_JSON_POS_DEPTH, or beyond the first
 * CRU_JSON_POS_MAX fields, are not indexed: they are reported at their nearest indexed
 * enclosing field. */
#define CRU_JSON_POS_DEPTH 64
#define CRU_JSON_POS_MAX   100000

struct cru_json_at {
    char *path;
    unsigned line, col; /* from 1; col counts characters, as jansson's do */
};

struct cru_json_doc {
    json_t *root;           /* owned */
    char *name;             /* what errors call the document (a file name) */
    struct cru_json_at *at; /* sorted by path */
    size_t n_at;
};

#define CRU_JSON_DOC_INIT                                                                          \
    {                                                                                              \
        NULL, NULL, NULL, 0                                                                        \
    }

/* Parses TEXT as cru_json_parse() does and indexes it. On failure DOC is empty. */
int cru_json_doc_parse(struct cru_json_doc *doc, const char *text, size_t len, const char *name);

/* Reads PATH (at most MAX bytes; 0: CRU_JSON_MAX_BYTES) into DOC, named PATH. */
int cru_json_doc_load(struct cru_json_doc *doc, const char *path, size_t max);

void cru_json_doc_free(struct cru_json_doc *doc);

/* The position of the field at PATH, or of the nearest enclosing field that is indexed (a
 * missing field is reported at its parent object). */
void cru_json_doc_where(const struct cru_json_doc *doc, const char *path, unsigned *line,
                        unsigned *col);

/* A list of problems found in a document, one line each: "NAME:LINE:COL: FIELD: what". A
 * loader that validates a document collects every problem here instead of stopping at the
 * first, so that an author fixes them all in one round. */
struct cru_json_report {
    const struct cru_json_doc *doc;
    struct cru_buf *out; /* the lines, each ending in '\n' */
    size_t count;
};

/* Adds a problem about the field at PATH: "FIELD: " and the formatted text. */
void cru_json_report_add(struct cru_json_report *r, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Adds the current error message as a problem positioned at PATH, with "FIELD: " in front
 * unless it starts so already (as the getters' messages do). */
void cru_json_report_err(struct cru_json_report *r, const char *path);

/* For a getter's return RC: on failure adds its message as a problem at PATH (as
 * cru_json_report_err does). Returns whether RC is a success, so a loader can write
 * `if (cru_json_report_ok(r, cru_json_get_str(...), "name") && s) ...`. */
bool cru_json_report_ok(struct cru_json_report *r, int rc, const char *path);

/* Adds a problem for every key of OBJ (an object at PATH) that is not in ALLOWED (a
 * NULL-terminated list) and does not start with "x-". Returns how many there were. */
size_t cru_json_report_unknown(struct cru_json_report *r, const json_t *obj, const char *path,
                               const char *const allowed[]);

/* "PATH.KEY" (or "KEY" at the root) and "PATH[I]", into BUF of CAP bytes; returns BUF. */
const char *cru_json_path_key(char *buf, size_t cap, const char *path, const char *key);
const char *cru_json_path_index(char *buf, size_t cap, const char *path, size_t i);

#endif
