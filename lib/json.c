/* json: jansson with positioned errors, strict defaults and typed field access.
 *
 * Parsing is jansson's (no JSON is parsed by hand in crucible); this module adds the file
 * reading bound, the error format, duplicate-key rejection, and field-path error messages.
 */
#include "lib/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"

int cru_json_parse(json_t **out, const char *text, size_t len, const char *name)
{
    json_error_t e;
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

/* "path.key", or "key" at the root; into a fixed buffer, since paths in messages are short. */
static const char *field_name(char *buf, size_t cap, const char *path, const char *key)
{
    if (path && *path)
        snprintf(buf, cap, "%s.%s", path, key);
    else
        snprintf(buf, cap, "%s", key);
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
                           field_name(name, sizeof(name), path, key));
    return 0;
}

static int field_type_error(const char *path, const char *key, const char *want, const json_t *v)
{
    char name[512];
    return cru_err_set(CRU_EINVAL, "%s: expected %s, got %s",
                       field_name(name, sizeof(name), path, key), want, cru_json_type_name(v));
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
                           field_name(name, sizeof(name), path, key), (long long)i,
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
                           field_name(name, sizeof(name), path, key), d, min, max);
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
        bool known = strncmp(key, "x-", 2) == 0;
        for (size_t i = 0; !known && allowed[i]; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known)
            return cru_err_set(CRU_EINVAL, "%s: unknown field",
                               field_name(name, sizeof(name), path, key));
    }
    return 0;
}
