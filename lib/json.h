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

/* The largest JSON document read by default (64 MiB). */
#define CRU_JSON_MAX_BYTES ((size_t)64 << 20)

/* Parses LEN bytes of TEXT (any JSON value at the top level). NAME labels errors (a file name
 * or "<stdin>"). *out is a new reference (json_decref()). */
int cru_json_parse(json_t **out, const char *text, size_t len, const char *name);

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

#endif
