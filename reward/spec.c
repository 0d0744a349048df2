/* spec: parsing and validating reward specs.
 *
 * Validation is complete and eager: each field is checked for type, range and meaning (a regex
 * must compile, a pointer must be well formed, a cell reference must lie on a sheet), and every
 * problem is reported rather than the first, so an author fixes a spec in one round. Scoring
 * is not done here (see the scorers in reward/).
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "reward/spec.h"

#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/path.h"
#include "lib/str.h"

static const char *const kind_names[] = {
    [RWD_TESTS] = "tests",
    [RWD_FILE_EXISTS] = "file_exists",
    [RWD_FILE_SHA256] = "file_sha256",
    [RWD_TEXT] = "text",
    [RWD_JSON] = "json",
    [RWD_CSV] = "csv",
    [RWD_XLSX] = "xlsx",
    [RWD_DOCX] = "docx",
    [RWD_COMMAND] = "command",
};
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

/* The fields each kind accepts besides kind, name, weight and timeout. */
static const char *const kind_keys[N_KINDS][12] = {
    [RWD_TESTS] = { "command", "results", "fail_to_pass", "pass_to_pass" },
    [RWD_FILE_EXISTS] = { "path" },
    [RWD_FILE_SHA256] = { "path", "sha256" },
    [RWD_TEXT] = { "path", "contains", "not_contains", "regex" },
    [RWD_JSON] = { "path", "pointer", "equals", "tolerance" },
    [RWD_CSV] = { "path", "header", "delimiter", "tolerance", "unordered", "cells", "rows",
                  "columns", "row_count" },
    [RWD_XLSX] = { "path", "cells", "tolerance" },
    [RWD_DOCX] = { "path", "contains", "headings", "tables" },
    [RWD_COMMAND] = { "command" },
};

const char *rwd_kind_name(enum rwd_kind kind)
{
    return (size_t)kind < N_KINDS ? kind_names[kind] : "unknown";
}

const char *rwd_aggregate_name(enum rwd_aggregate agg)
{
    switch (agg) {
    case RWD_AGG_ALL:
        return "all";
    case RWD_AGG_MEAN:
        return "mean";
    case RWD_AGG_PARTIAL:
        return "partial";
    }
    return "unknown";
}

int rwd_cell_ref(const char *ref, uint32_t *col, uint32_t *row)
{
    const char *p = ref;
    uint64_t c = 0, r = 0;
    size_t letters = 0, digits = 0;

    while (isalpha((unsigned char)*p) && letters < 4) {
        c = c * 26 + (uint64_t)(toupper((unsigned char)*p) - 'A' + 1);
        p++;
        letters++;
    }
    while (isdigit((unsigned char)*p) && digits < 8) {
        r = r * 10 + (uint64_t)(*p - '0');
        p++;
        digits++;
    }
    if (*p || letters == 0 || digits == 0 || ref[letters] == '0')
        return cru_err_set(CRU_EINVAL, "\"%s\" is not an A1 cell reference", ref);
    if (c > 16384 || r < 1 || r > 1048576)
        return cru_err_set(CRU_EINVAL, "\"%s\" lies outside a worksheet (XFD1048576)", ref);
    *col = (uint32_t)(c - 1);
    *row = (uint32_t)(r - 1);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The validation context of one spec. */
struct ctx {
    struct cru_json_report *rep;
    size_t problems; /* at entry, to tell whether this spec added any */
};

#define bad(c, path, ...) cru_json_report_add((c)->rep, (path), __VA_ARGS__)

/* A getter's failure goes to the report; true when the getter succeeded. */
#define ok(c, rc, path) cru_json_report_ok((c)->rep, (rc), (path))

static bool check_rel_path(struct ctx *c, const char *field, const char *rel)
{
    char *clean = NULL;
    int rc = cru_path_clean(&clean, rel);
    bool good = rc == 0 && clean[0] != '\0';
    if (rc < 0)
        cru_json_report_add(c->rep, field, "\"%s\": %s", rel, cru_err_msg());
    else if (!good)
        bad(c, field, "a path in the workspace is needed, not \"%s\"", rel);
    free(clean);
    return good;
}

/* An optional array of non-empty strings at OBJ.KEY; *out and *n borrowed from OBJ. */
static void str_list(struct ctx *c, const json_t *obj, const char *path, const char *key,
                     const char ***out, size_t *n)
{
    char field[512], item[544];
    json_t *arr = NULL;
    cru_json_path_key(field, sizeof(field), path, key);
    if (!ok(c, cru_json_get_array(obj, path, key, false, &arr), field) || !arr)
        return;
    size_t len = json_array_size(arr);
    const char **list = len ? calloc(len, sizeof(*list)) : NULL;
    if (len && !list) {
        bad(c, field, "%s", "out of memory");
        return;
    }
    for (size_t i = 0; i < len; i++) {
        json_t *s = json_array_get(arr, i);
        cru_json_path_index(item, sizeof(item), field, i);
        if (!json_is_string(s))
            bad(c, item, "expected a string, got %s", cru_json_type_name(s));
        else if (json_string_length(s) == 0)
            bad(c, item, "%s", "must not be empty");
        else
            list[i] = json_string_value(s);
    }
    if (out) {
        *out = list;
        *n = len;
    } else {
        free(list);
    }
}

/* A test id may be listed once, in one list: listed twice, or as both fail-to-pass and
 * pass-to-pass, it is a mistake in the spec. */
static void listed_once(struct ctx *c, const char *path, const struct rwd_check *ck)
{
    size_t n = ck->n_fail_to_pass + ck->n_pass_to_pass;
    const char **all = n ? calloc(n, sizeof(*all)) : NULL;
    if (n && !all) {
        bad(c, path, "%s", "out of memory");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < ck->n_fail_to_pass; i++)
        if (ck->fail_to_pass[i])
            all[k++] = ck->fail_to_pass[i];
    for (size_t i = 0; i < ck->n_pass_to_pass; i++)
        if (ck->pass_to_pass[i])
            all[k++] = ck->pass_to_pass[i];
    if (k > 1)
        qsort(all, k, sizeof(*all), cmp_str);
    for (size_t i = 1; i < k; i++)
        if (strcmp(all[i - 1], all[i]) == 0 && (i < 2 || strcmp(all[i - 2], all[i]) != 0))
            bad(c, path, "the test \"%s\" is listed twice in fail_to_pass and pass_to_pass",
                all[i]);
    free(all);
}

static void check_regexes(struct ctx *c, const json_t *obj, const char *path)
{
    char field[512], item[544];
    json_t *arr = json_object_get(obj, "regex");
    cru_json_path_key(field, sizeof(field), path, "regex");
    for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr); i++) {
        json_t *s = json_array_get(arr, i);
        if (!json_is_string(s))
            continue; /* reported by str_list */
        int err;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)json_string_value(s), json_string_length(s),
                                       PCRE2_UTF, &err, &off, NULL);
        if (re) {
            pcre2_code_free(re);
            continue;
        }
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        cru_json_report_add(c->rep, cru_json_path_index(item, sizeof(item), field, i),
                            "the regex does not compile at offset %zu: %s", (size_t)off,
                            (const char *)msg);
    }
}

static void check_pointer(struct ctx *c, const char *field, const char *ptr)
{
    if (ptr[0] != '\0' && ptr[0] != '/') {
        bad(c, field, "a JSON pointer is \"\" or starts with '/', not \"%s\"", ptr);
        return;
    }
    for (const char *p = ptr; *p; p++)
        if (*p == '~' && p[1] != '0' && p[1] != '1') {
            bad(c, field, "'~' must be followed by 0 or 1 in a JSON pointer (\"%s\")", ptr);
            return;
        }
}

/* A report's path: one plain file name in /results. */
static bool report_name_ok(const char *path)
{
    const char *name = path + strlen(RWD_RESULTS_DIR "/");
    return strncmp(path, RWD_RESULTS_DIR "/", strlen(RWD_RESULTS_DIR "/")) == 0 && *name &&
           strlen(name) <= CRU_PATH_NAME_MAX && !strchr(name, '/') && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

static bool is_scalar(const json_t *v)
{
    return json_is_string(v) || json_is_number(v) || json_is_boolean(v) || json_is_null(v);
}

/* An array of objects at OBJ.KEY, each with exactly the keys in ALLOWED, handed to EACH. */
typedef void each_fn(struct ctx *c, const json_t *item, const char *path, const json_t *check);

static void obj_list(struct ctx *c, const json_t *obj, const char *path, const char *key,
                     const char *const allowed[], each_fn *each)
{
    char field[512], item[544];
    json_t *arr = NULL;
    cru_json_path_key(field, sizeof(field), path, key);
    if (!ok(c, cru_json_get_array(obj, path, key, false, &arr), field) || !arr)
        return;
    if (json_array_size(arr) == 0)
        bad(c, field, "%s", "must not be empty when given");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *it = json_array_get(arr, i);
        cru_json_path_index(item, sizeof(item), field, i);
        if (!json_is_object(it)) {
            bad(c, item, "expected an object, got %s", cru_json_type_name(it));
            continue;
        }
        cru_json_report_unknown(c->rep, it, item, allowed);
        each(c, it, item, obj);
    }
}

static void need_scalar(struct ctx *c, const json_t *obj, const char *path, const char *key,
                        bool required)
{
    char field[512];
    json_t *v = json_object_get(obj, key);
    cru_json_path_key(field, sizeof(field), path, key);
    if (!v && required)
        bad(c, field, "%s", "required field is missing");
    else if (v && !is_scalar(v))
        bad(c, field, "expected a string, number, boolean or null, got %s", cru_json_type_name(v));
}

static void csv_cell(struct ctx *c, const json_t *it, const char *path, const json_t *check)
{
    char field[600];
    uint64_t row;
    ok(c, cru_json_get_u64(it, path, "row", true, 0, UINT32_MAX, &row),
       cru_json_path_key(field, sizeof(field), path, "row"));
    json_t *col = json_object_get(it, "column");
    cru_json_path_key(field, sizeof(field), path, "column");
    json_t *header = json_object_get(check, "header");
    if (!col)
        bad(c, field, "%s", "required field is missing");
    else if (json_is_string(col) && json_is_false(header))
        bad(c, field, "a column named \"%s\" needs a header row", json_string_value(col));
    else if (!json_is_string(col) && !(json_is_integer(col) && json_integer_value(col) >= 0))
        bad(c, field, "expected a column name or a number from 0, got %s", cru_json_type_name(col));
    need_scalar(c, it, path, "equals", true);
}

static void xlsx_cell(struct ctx *c, const json_t *it, const char *path, const json_t *check)
{
    (void)check;
    char field[600];
    const char *sheet = NULL, *ref = NULL;
    bool formula = false;
    if (ok(c, cru_json_get_str(it, path, "sheet", true, &sheet),
           cru_json_path_key(field, sizeof(field), path, "sheet")) &&
        !sheet[0])
        bad(c, field, "%s", "must not be empty");
    uint32_t col, row;
    if (ok(c, cru_json_get_str(it, path, "ref", true, &ref),
           cru_json_path_key(field, sizeof(field), path, "ref")) &&
        rwd_cell_ref(ref, &col, &row) < 0)
        cru_json_report_err(c->rep, field);
    ok(c, cru_json_get_bool(it, path, "formula", false, &formula),
       cru_json_path_key(field, sizeof(field), path, "formula"));
    need_scalar(c, it, path, "equals", false);
    if (!json_object_get(it, "equals") && !formula)
        bad(c, path, "%s", "give \"equals\", \"formula\": true, or both");
}

static void docx_heading(struct ctx *c, const json_t *it, const char *path, const json_t *check)
{
    (void)check;
    char field[600];
    const char *text;
    uint64_t level;
    ok(c, cru_json_get_str(it, path, "text", true, &text),
       cru_json_path_key(field, sizeof(field), path, "text"));
    ok(c, cru_json_get_u64(it, path, "level", false, 1, 9, &level),
       cru_json_path_key(field, sizeof(field), path, "level"));
}

static void docx_cell(struct ctx *c, const json_t *it, const char *path, const json_t *check)
{
    (void)check;
    char field[600];
    uint64_t n;
    const char *text;
    ok(c, cru_json_get_u64(it, path, "row", true, 0, 65535, &n),
       cru_json_path_key(field, sizeof(field), path, "row"));
    ok(c, cru_json_get_u64(it, path, "column", true, 0, 65535, &n),
       cru_json_path_key(field, sizeof(field), path, "column"));
    ok(c, cru_json_get_str(it, path, "equals", true, &text),
       cru_json_path_key(field, sizeof(field), path, "equals"));
}

static void docx_table(struct ctx *c, const json_t *it, const char *path, const json_t *check)
{
    static const char *const cell_keys[] = { "row", "column", "equals", NULL };
    char field[600];
    if (!json_object_get(it, "cells"))
        bad(c, cru_json_path_key(field, sizeof(field), path, "cells"), "%s",
            "required field is missing");
    obj_list(c, it, path, "cells", cell_keys, docx_cell);
    (void)check;
}

static void need_one_of(struct ctx *c, const json_t *obj, const char *path,
                        const char *const keys[], const char *list)
{
    for (size_t i = 0; keys[i]; i++)
        if (json_object_get(obj, keys[i]))
            return;
    bad(c, path, "give at least one of %s", list);
}

static void parse_kind_fields(struct ctx *c, const json_t *obj, const char *path,
                              struct rwd_check *ck)
{
    static const char *const csv_cell_keys[] = { "row", "column", "equals", NULL };
    static const char *const xlsx_cell_keys[] = { "sheet", "ref", "equals", "formula", NULL };
    static const char *const heading_keys[] = { "text", "level", NULL };
    static const char *const table_keys[] = { "cells", NULL };
    char field[512];
    double tol;
    bool flag;

    if (ck->kind == RWD_TESTS || ck->kind == RWD_COMMAND) {
        if (ok(c, cru_json_get_str(obj, path, "command", true, &ck->command),
               cru_json_path_key(field, sizeof(field), path, "command")) &&
            ck->command && !ck->command[0])
            bad(c, field, "%s", "must not be empty");
    } else if (ok(c, cru_json_get_str(obj, path, "path", true, &ck->path),
                  cru_json_path_key(field, sizeof(field), path, "path")) &&
               ck->path) {
        check_rel_path(c, field, ck->path);
    }
    if (json_object_get(obj, "tolerance"))
        ok(c, cru_json_get_double(obj, path, "tolerance", false, 0, 1e300, &tol),
           cru_json_path_key(field, sizeof(field), path, "tolerance"));

    switch (ck->kind) {
    case RWD_TESTS: {
        const char *results = "exit";
        bool known = false;
        cru_json_path_key(field, sizeof(field), path, "results");
        if (ok(c, cru_json_get_str(obj, path, "results", false, &results), field)) {
            known = true;
            if (strcmp(results, "exit") == 0) {
                ck->results = RWD_RESULTS_EXIT;
            } else if (strcmp(results, "tap") == 0) {
                ck->results = RWD_RESULTS_TAP;
            } else if (strncmp(results, "junit:", 6) == 0 && report_name_ok(results + 6)) {
                ck->results = RWD_RESULTS_JUNIT;
                ck->report_path = results + 6;
            } else if (strncmp(results, "tap:", 4) == 0 && report_name_ok(results + 4)) {
                ck->results = RWD_RESULTS_TAP_FILE;
                ck->report_path = results + 4;
            } else {
                bad(c, field,
                    "expected \"exit\", \"tap\", \"tap:/results/NAME\" or "
                    "\"junit:/results/NAME\" (a report file is read from /results, which the "
                    "artifact cannot reach), got \"%s\"",
                    results);
                known = false;
            }
        }
        str_list(c, obj, path, "fail_to_pass", &ck->fail_to_pass, &ck->n_fail_to_pass);
        str_list(c, obj, path, "pass_to_pass", &ck->pass_to_pass, &ck->n_pass_to_pass);
        if (known && (ck->n_fail_to_pass || ck->n_pass_to_pass) && ck->results == RWD_RESULTS_EXIT)
            bad(c, field, "%s",
                "test id lists need per-test results: \"tap\", \"tap:PATH\" or \"junit:PATH\"");
        listed_once(c, path, ck);
        break;
    }
    case RWD_FILE_SHA256: {
        const char *hex = NULL;
        cru_json_path_key(field, sizeof(field), path, "sha256");
        if (ok(c, cru_json_get_str(obj, path, "sha256", true, &hex), field) && hex) {
            size_t n = strspn(hex, "0123456789abcdefABCDEF");
            if (n != 64 || hex[n])
                bad(c, field, "expected 64 hex digits, got \"%s\"", hex);
        }
        break;
    }
    case RWD_TEXT: {
        static const char *const any[] = { "contains", "not_contains", "regex", NULL };
        str_list(c, obj, path, "contains", NULL, NULL);
        str_list(c, obj, path, "not_contains", NULL, NULL);
        str_list(c, obj, path, "regex", NULL, NULL);
        check_regexes(c, obj, path);
        need_one_of(c, obj, path, any, "\"contains\", \"not_contains\", \"regex\"");
        break;
    }
    case RWD_JSON: {
        const char *ptr = NULL;
        cru_json_path_key(field, sizeof(field), path, "pointer");
        if (ok(c, cru_json_get_str(obj, path, "pointer", true, &ptr), field) && ptr)
            check_pointer(c, field, ptr);
        if (!json_object_get(obj, "equals"))
            bad(c, cru_json_path_key(field, sizeof(field), path, "equals"), "%s",
                "required field is missing");
        break;
    }
    case RWD_CSV: {
        static const char *const any[] = { "cells", "rows", "columns", "row_count", NULL };
        const char *delim = ",";
        uint64_t n;
        ok(c, cru_json_get_bool(obj, path, "header", false, &flag),
           cru_json_path_key(field, sizeof(field), path, "header"));
        ok(c, cru_json_get_bool(obj, path, "unordered", false, &flag),
           cru_json_path_key(field, sizeof(field), path, "unordered"));
        cru_json_path_key(field, sizeof(field), path, "delimiter");
        if (ok(c, cru_json_get_str(obj, path, "delimiter", false, &delim), field) &&
            (strlen(delim) != 1 || strchr("\"\r\n", delim[0])))
            bad(c, field, "expected one character other than a quote or newline, got \"%s\"",
                delim);
        ok(c, cru_json_get_u64(obj, path, "row_count", false, 0, UINT32_MAX, &n),
           cru_json_path_key(field, sizeof(field), path, "row_count"));
        str_list(c, obj, path, "columns", NULL, NULL);
        json_t *rows = NULL;
        cru_json_path_key(field, sizeof(field), path, "rows");
        if (ok(c, cru_json_get_array(obj, path, "rows", false, &rows), field) && rows) {
            for (size_t i = 0; i < json_array_size(rows); i++) {
                char item[544], cell[576];
                json_t *row = json_array_get(rows, i);
                cru_json_path_index(item, sizeof(item), field, i);
                if (!json_is_array(row)) {
                    bad(c, item, "expected an array of cells, got %s", cru_json_type_name(row));
                    continue;
                }
                for (size_t j = 0; j < json_array_size(row); j++)
                    if (!is_scalar(json_array_get(row, j)))
                        bad(c, cru_json_path_index(cell, sizeof(cell), item, j),
                            "expected a string, number, boolean or null, got %s",
                            cru_json_type_name(json_array_get(row, j)));
            }
        }
        obj_list(c, obj, path, "cells", csv_cell_keys, csv_cell);
        need_one_of(c, obj, path, any, "\"cells\", \"rows\", \"columns\", \"row_count\"");
        break;
    }
    case RWD_XLSX:
        if (!json_object_get(obj, "cells"))
            bad(c, cru_json_path_key(field, sizeof(field), path, "cells"), "%s",
                "required field is missing");
        obj_list(c, obj, path, "cells", xlsx_cell_keys, xlsx_cell);
        break;
    case RWD_DOCX: {
        static const char *const any[] = { "contains", "headings", "tables", NULL };
        str_list(c, obj, path, "contains", NULL, NULL);
        obj_list(c, obj, path, "headings", heading_keys, docx_heading);
        obj_list(c, obj, path, "tables", table_keys, docx_table);
        need_one_of(c, obj, path, any, "\"contains\", \"headings\", \"tables\"");
        break;
    }
    case RWD_FILE_EXISTS:
    case RWD_COMMAND:
        break;
    }
}

static void parse_check(struct ctx *c, const json_t *obj, const char *path, size_t index,
                        struct rwd_check *ck)
{
    char field[512];
    const char *kind = NULL, *name = NULL, *timeout = NULL;

    ck->weight = 1;
    ck->timeout_ms = RWD_TIMEOUT_DEFAULT_MS;
    ck->params = obj;
    if (!json_is_object(obj)) {
        bad(c, path, "expected an object, got %s", cru_json_type_name(obj));
        return;
    }
    cru_json_path_key(field, sizeof(field), path, "kind");
    if (!ok(c, cru_json_get_str(obj, path, "kind", true, &kind), field))
        return;
    size_t k = 0;
    while (k < N_KINDS && strcmp(kind_names[k], kind) != 0)
        k++;
    if (k == N_KINDS) {
        bad(c, field,
            "unknown check kind \"%s\" (tests, file_exists, file_sha256, text, json, csv, xlsx, "
            "docx, command)",
            kind);
        return;
    }
    ck->kind = (enum rwd_kind)k;

    const char *allowed[20] = { "kind", "name", "weight", "timeout" };
    size_t n = 4;
    for (size_t i = 0; kind_keys[k][i]; i++)
        allowed[n++] = kind_keys[k][i];
    allowed[n] = NULL;
    cru_json_report_unknown(c->rep, obj, path, allowed);

    if (ok(c, cru_json_get_str(obj, path, "name", false, &name),
           cru_json_path_key(field, sizeof(field), path, "name")) &&
        name && !name[0])
        bad(c, field, "%s", "must not be empty");
    if (name)
        ck->name = strdup(name);
    else if (asprintf(&ck->name, "%s #%zu", kind, index + 1) < 0)
        ck->name = NULL;
    ok(c, cru_json_get_double(obj, path, "weight", false, 1e-9, 1e9, &ck->weight),
       cru_json_path_key(field, sizeof(field), path, "weight"));
    cru_json_path_key(field, sizeof(field), path, "timeout");
    if (ok(c, cru_json_get_str(obj, path, "timeout", false, &timeout), field) && timeout) {
        if (cru_parse_duration_ms(timeout, &ck->timeout_ms) < 0)
            cru_json_report_err(c->rep, field);
        else if (ck->timeout_ms == 0 || ck->timeout_ms > RWD_TIMEOUT_MAX_MS)
            bad(c, field, "\"%s\" is out of range (above 0, at most 1h)", timeout);
    }
    parse_kind_fields(c, obj, path, ck);
}

int rwd_spec_parse(const json_t *v, const char *path, struct cru_json_report *report,
                   struct rwd_spec **out)
{
    static const char *const keys[] = { "aggregate", "protected",   "protected_fail",
                                        "checks",    "keep_caches", NULL };
    struct ctx c = { report, report->count };
    char field[512], item[544];
    struct rwd_spec *s = calloc(1, sizeof(*s));
    if (!s)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    s->json = json_incref((json_t *)(uintptr_t)v);
    *out = NULL;

    if (!json_is_object(v)) {
        bad(&c, path, "expected an object, got %s", cru_json_type_name(v));
        goto done;
    }
    cru_json_report_unknown(report, v, path, keys);

    const char *agg = "all";
    cru_json_path_key(field, sizeof(field), path, "aggregate");
    if (ok(&c, cru_json_get_str(v, path, "aggregate", false, &agg), field)) {
        if (strcmp(agg, "all") == 0)
            s->aggregate = RWD_AGG_ALL;
        else if (strcmp(agg, "mean") == 0)
            s->aggregate = RWD_AGG_MEAN;
        else if (strcmp(agg, "partial") == 0)
            s->aggregate = RWD_AGG_PARTIAL;
        else
            bad(&c, field, "expected \"all\", \"mean\" or \"partial\", got \"%s\"", agg);
    }
    ok(&c, cru_json_get_bool(v, path, "protected_fail", false, &s->protected_fail),
       cru_json_path_key(field, sizeof(field), path, "protected_fail"));
    ok(&c, cru_json_get_bool(v, path, "keep_caches", false, &s->keep_caches),
       cru_json_path_key(field, sizeof(field), path, "keep_caches"));

    const char **prot = NULL;
    size_t n_prot = 0;
    str_list(&c, v, path, "protected", &prot, &n_prot);
    if (n_prot) {
        s->protected_paths = calloc(n_prot, sizeof(char *));
        if (!s->protected_paths) {
            free(prot);
            rwd_spec_free(s);
            return cru_err_set(CRU_ENOMEM, "out of memory");
        }
        cru_json_path_key(field, sizeof(field), path, "protected");
        for (size_t i = 0; i < n_prot; i++) {
            cru_json_path_index(item, sizeof(item), field, i);
            if (!prot[i] || !check_rel_path(&c, item, prot[i]))
                continue;
            if (cru_path_clean(&s->protected_paths[s->n_protected], prot[i]) == 0)
                s->n_protected++;
        }
    }
    free(prot);

    json_t *checks = NULL;
    cru_json_path_key(field, sizeof(field), path, "checks");
    if (ok(&c, cru_json_get_array(v, path, "checks", true, &checks), field)) {
        size_t n = json_array_size(checks);
        if (n == 0)
            bad(&c, field, "%s", "a reward needs at least one check");
        s->checks = n ? calloc(n, sizeof(*s->checks)) : NULL;
        if (n && !s->checks) {
            rwd_spec_free(s);
            return cru_err_set(CRU_ENOMEM, "out of memory");
        }
        s->n_checks = n;
        for (size_t i = 0; i < n; i++)
            parse_check(&c, json_array_get(checks, i),
                        cru_json_path_index(item, sizeof(item), field, i), i, &s->checks[i]);
    }
done:
    if (report->count > c.problems || !json_is_object(v)) {
        rwd_spec_free(s);
        return cru_err_set(CRU_EINVAL, "%s: %zu problem%s in the reward spec",
                           path && *path ? path : "(root)", report->count - c.problems,
                           report->count - c.problems == 1 ? "" : "s");
    }
    *out = s;
    return 0;
}

void rwd_spec_free(struct rwd_spec *spec)
{
    if (!spec)
        return;
    for (size_t i = 0; i < spec->n_checks; i++) {
        free(spec->checks[i].name);
        free(spec->checks[i].fail_to_pass);
        free(spec->checks[i].pass_to_pass);
    }
    free(spec->checks);
    for (size_t i = 0; i < spec->n_protected; i++)
        free(spec->protected_paths[i]);
    free(spec->protected_paths);
    json_decref(spec->json);
    free(spec);
}
