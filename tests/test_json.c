/* Tests for lib/json: positioned parse errors, strictness, files, typed getters, key checks. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "tests/fifo_util.h"

static json_t *parse_ok(const char *text)
{
    json_t *v = NULL;
    cr_assert_eq(cru_json_parse(&v, text, strlen(text), "t.json"), 0, "%s", cru_err_msg());
    return v;
}

static void parse_fails(const char *text, const char *msg)
{
    json_t *v = NULL;
    cr_assert_eq(cru_json_parse(&v, text, strlen(text), "t.json"), CRU_EPARSE, "%s", text);
    cr_assert_null(v);
    cr_assert_str_eq(cru_err_msg(), msg);
}

Test(json, parse_values)
{
    json_t *v = parse_ok("{\"a\": [1, 2.5, \"x\", true, null]}");
    cr_assert(json_is_object(v));
    cr_assert_eq(json_array_size(json_object_get(v, "a")), 5);
    json_decref(v);
    v = parse_ok("42");
    cr_assert_eq(json_integer_value(v), 42);
    json_decref(v);
}

Test(json, errors_name_line_and_column)
{
    parse_fails("{\"a\": 1,\n  \"b\": }", "t.json:2:8: unexpected token near '}'");
    parse_fails("[1, 2,\n\n   x]", "t.json:3:4: invalid token near 'x'");
    parse_fails("", "t.json:1:1: unexpected token near end of file");
    parse_fails("[1] 2", "t.json:1:5: end of file expected near '2'");
    parse_fails("{\"a\":\n 1", "t.json:2:2: '}' expected near end of file");
}

Test(json, duplicate_keys_and_nul_are_rejected)
{
    parse_fails("{\"a\":1,\"a\":2}", "t.json:1:10: duplicate object key near '\"a\"'");
    json_t *v = NULL;
    cr_assert_eq(cru_json_parse(&v, "\"\\u0000\"", 8, "t.json"), CRU_EPARSE);
    cr_assert_eq(cru_json_parse(&v, "\"\xff\"", 3, "t.json"), CRU_EPARSE, "invalid UTF-8");
    /* An embedded NUL byte in the input is not the end of the document. */
    cr_assert_eq(cru_json_parse(&v, "[1]\0[2]", 7, "t.json"), CRU_EPARSE);
}

Test(json, deep_nesting_is_refused_not_crashing)
{
    size_t depth = 100000;
    char *s = malloc(depth * 2 + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[depth * 2] = '\0';
    json_t *v = NULL;
    cr_assert_eq(cru_json_parse(&v, s, depth * 2, "deep.json"), CRU_EPARSE);
    cr_assert(strstr(cru_err_msg(), "deep.json:1:") == cru_err_msg());
    free(s);
}

/* The counts that bound a document before it is parsed agree with the parsed tree, whatever
 * the strings hold (quotes, braces and colons, escaped backslashes before a quote). */
Test(json, count_agrees_with_the_tree)
{
    static const struct {
        const char *text;
        size_t values, members, at0, at1, at2;
    } cases[] = {
        { "{}", 1, 0, 0, 0, 0 },
        { "7", 1, 0, 0, 0, 0 },
        { " \"a:{\\\"[\" ", 1, 0, 0, 0, 0 },
        { "{\"a\":1,\"b\":[true,false,null,-1.5e3]}", 7, 2, 2, 0, 0 },
        { "{\"w\":{\"x\":\"y\",\"z\\\\\":\"}\"},\"m\":{\"t\":\"8\"}}", 6, 5, 2, 3, 0 },
        { "[{\"a\":{\"b\":{\"c\":{\"d\":0}}}}]", 6, 4, 0, 1, 1 },
        { "{\"\\\\\":\"\\\\\",\"\\\"\":\":\"}", 3, 2, 2, 0, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = cases[i].text;
        json_t *v = NULL;
        cr_assert_eq(cru_json_parse(&v, t, strlen(t), "case"), 0, "%s: %s", t, cru_err_msg());
        json_decref(v);
        struct cru_json_counts c;
        cru_json_count(t, strlen(t), &c);
        cr_expect_eq(c.values, cases[i].values, "%s: %zu values", t, c.values);
        cr_expect_eq(c.members, cases[i].members, "%s: %zu members", t, c.members);
        cr_expect_eq(c.members_at[0], cases[i].at0, "%s: %zu at depth 1", t, c.members_at[0]);
        cr_expect_eq(c.members_at[1], cases[i].at1, "%s: %zu at depth 2", t, c.members_at[1]);
        cr_expect_eq(c.members_at[2], cases[i].at2, "%s: %zu at depth 3", t, c.members_at[2]);
    }
    /* Truncated and malformed text is counted without reading past its end. */
    struct cru_json_counts c;
    cru_json_count("{\"open", 6, &c);
    cr_expect_eq(c.values, 2);
    cru_json_count("\"\\", 2, &c);
    cr_expect_eq(c.values, 1);
    cru_json_count("", 0, &c);
    cr_expect_eq(c.values, 0);
}

Test(json, file_round_trip_and_bounds)
{
    char dir[] = "/tmp/crucible-test-json-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/out.json", dir);

    json_t *v = json_pack("{s:s, s:[i,i], s:{s:b}}", "id", "t1", "xs", 1, 2, "o", "k", 1);
    cr_assert_eq(cru_json_write_file(path, v, 0644), 0, "%s", cru_err_msg());
    json_t *back = NULL;
    cr_assert_eq(cru_json_load_file(&back, path, 0), 0, "%s", cru_err_msg());
    cr_assert(json_equal(v, back));
    json_decref(back);

    /* Pretty with a trailing newline, keys in insertion order. */
    FILE *f = fopen(path, "r");
    char text[512] = { 0 };
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    cr_assert_gt(n, 0);
    cr_assert_eq(text[n - 1], '\n');
    cr_assert(strstr(text, "\n  \"id\": \"t1\"") != NULL);
    cr_assert_lt(strstr(text, "\"id\""), strstr(text, "\"xs\""));

    cr_assert_eq(cru_json_load_file(&back, path, 8), CRU_ELIMIT);
    cr_assert(strstr(cru_err_msg(), "limit") != NULL);
    json_decref(v);

    unlink(path);
    cr_assert_eq(cru_json_load_file(&back, path, 0), CRU_ENOENT);
    rmdir(dir);
}

/* Both file loaders refuse a FIFO at once; the same text in a regular file is the control. */
Test(json, file_loaders_refuse_a_fifo)
{
    char dir[] = "/tmp/crucible-test-json-XXXXXX", path[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/config.json", dir);
    cr_assert_eq(cru_file_write_atomic(path, "{\"a\": 1}", 8, 0644), 0);
    json_t *v = NULL;
    cr_assert_eq(cru_json_load_file(&v, path, 0), 0, "%s", cru_err_msg());
    json_decref(v);
    struct cru_json_doc doc = CRU_JSON_DOC_INIT;
    cr_assert_eq(cru_json_doc_load(&doc, path, 0), 0, "%s", cru_err_msg());
    cru_json_doc_free(&doc);

    struct timespec t0 = fifo_swap(path);
    v = NULL;
    int rc = cru_json_load_file(&v, path, 0);
    fifo_done(t0, rc, path);
    cr_assert_null(v);
    t0 = fifo_swap(path);
    rc = cru_json_doc_load(&doc, path, 0);
    fifo_done(t0, rc, path);
    cr_assert_null(doc.root);
    unlink(path);
    rmdir(dir);
}

Test(json, dump_compact)
{
    json_t *v = json_pack("{s:i, s:s}", "b", 1, "a", "x");
    char *s = NULL;
    cr_assert_eq(cru_json_dump(&s, v, false), 0);
    cr_assert_str_eq(s, "{\"b\":1,\"a\":\"x\"}");
    free(s);
    json_decref(v);
}

Test(json, typed_getters)
{
    json_t *v = parse_ok("{\"s\":\"str\",\"b\":true,\"n\":7,\"d\":0.5,\"o\":{},\"a\":[],"
                         "\"neg\":-1}");
    const char *s = NULL;
    bool b = false;
    uint64_t n = 0;
    double d = 0;
    json_t *o = NULL;

    cr_assert_eq(cru_json_get_str(v, "limits", "s", true, &s), 0);
    cr_assert_str_eq(s, "str");
    cr_assert_eq(cru_json_get_bool(v, "", "b", true, &b), 0);
    cr_assert(b);
    cr_assert_eq(cru_json_get_u64(v, "", "n", true, 0, 10, &n), 0);
    cr_assert_eq(n, 7);
    cr_assert_eq(cru_json_get_double(v, "", "n", true, 0, 10, &d), 0, "integers are numbers");
    cr_assert_float_eq(d, 7.0, 0);
    cr_assert_eq(cru_json_get_double(v, "", "d", true, 0, 1, &d), 0);
    cr_assert_eq(cru_json_get_object(v, "", "o", true, &o), 0);
    cr_assert(json_is_object(o));
    cr_assert_eq(cru_json_get_array(v, "", "a", true, &o), 0);
    cr_assert(json_is_array(o));

    cr_assert_eq(cru_json_get_str(v, "limits", "n", true, &s), CRU_EINVAL);
    cr_assert_str_eq(cru_err_msg(), "limits.n: expected a string, got an integer");
    cr_assert_eq(cru_json_get_u64(v, "", "n", true, 8, 10, &n), CRU_EINVAL);
    cr_assert_str_eq(cru_err_msg(), "n: 7 is out of range [8, 10]");
    cr_assert_eq(cru_json_get_u64(v, "", "neg", true, 0, 10, &n), CRU_EINVAL);
    cr_assert_eq(cru_json_get_u64(v, "", "d", true, 0, 10, &n), CRU_EINVAL);
    cr_assert_eq(cru_json_get_object(v, "", "a", true, &o), CRU_EINVAL);
    cr_assert_str_eq(cru_err_msg(), "a: expected an object, got an array");

    cr_assert_eq(cru_json_get_str(v, "reward", "missing", true, &s), CRU_ENOENT);
    cr_assert_str_eq(cru_err_msg(), "reward.missing: required field is missing");
    s = "default";
    cr_assert_eq(cru_json_get_str(v, "", "missing", false, &s), 0);
    cr_assert_str_eq(s, "default");
    o = v;
    cr_assert_eq(cru_json_get_array(v, "", "missing", false, &o), 0);
    cr_assert_null(o);

    json_t *arr = json_array();
    cr_assert_eq(cru_json_get_str(arr, "x", "k", true, &s), CRU_EINVAL);
    cr_assert_str_eq(cru_err_msg(), "x: expected an object, got an array");
    json_decref(arr);
    json_decref(v);
}

Test(json, unknown_keys)
{
    static const char *const allowed[] = { "id", "kind", NULL };
    json_t *v = parse_ok("{\"id\":1,\"kind\":2,\"x-note\":3}");
    cr_assert_eq(cru_json_check_keys(v, "", allowed), 0);
    json_decref(v);
    v = parse_ok("{\"id\":1,\"kidn\":2}");
    cr_assert_eq(cru_json_check_keys(v, "limits", allowed), CRU_EINVAL);
    cr_assert_str_eq(cru_err_msg(), "limits.kidn: unknown field");
    json_decref(v);
}

static void expect_at(const struct cru_json_doc *d, const char *path, unsigned line, unsigned col)
{
    unsigned l = 0, c = 0;
    cru_json_doc_where(d, path, &l, &c);
    cr_expect(l == line && c == col, "%s: expected %u:%u, got %u:%u", path, line, col, l, c);
}

Test(json, doc_positions_of_every_field)
{
    const char *text = "{\n"
                       "  \"id\": \"x\",\n"
                       "  \"t\\u00e9\": 1,\n"
                       "  \"limits\": {\"wall\": \"10m\", \"memory\": 5},\n"
                       "  \"list\": [1, {\"k\": [true, null]}],\n"
                       "  \"\xc3\xa9\xc3\xa9\": 2, \"after\": 3\n"
                       "}\n";
    struct cru_json_doc d;
    cr_assert_eq(cru_json_doc_parse(&d, text, strlen(text), "img.json"), 0, "%s", cru_err_msg());
    expect_at(&d, "", 1, 1);
    expect_at(&d, "id", 2, 3);
    expect_at(&d, "t\xc3\xa9", 3, 3); /* an escaped key is matched by its decoded name */
    expect_at(&d, "limits", 4, 3);
    expect_at(&d, "limits.wall", 4, 14);
    expect_at(&d, "limits.memory", 4, 29);
    expect_at(&d, "list[0]", 5, 12);
    expect_at(&d, "list[1]", 5, 15);
    expect_at(&d, "list[1].k[1]", 5, 28);
    expect_at(&d, "after", 6, 12); /* columns count characters, not bytes */
    /* Missing fields are placed at the nearest enclosing one. */
    expect_at(&d, "limits.turns", 4, 3);
    expect_at(&d, "list[1].k[7].z", 5, 16);
    expect_at(&d, "nothing.here", 1, 1);
    cru_json_doc_free(&d);
}

Test(json, doc_report_collects_every_problem)
{
    const char *text = "{\"a\": 1,\n \"b\": {\"c\": \"x\"}}";
    struct cru_json_doc d;
    struct cru_buf out = CRU_BUF_INIT;
    cr_assert_eq(cru_json_doc_parse(&d, text, strlen(text), "f.json"), 0);
    struct cru_json_report r = { &d, &out, 0 };
    const char *s = NULL;
    cr_assert_lt(cru_json_get_str(d.root, "", "a", true, &s), 0);
    cru_json_report_err(&r, "a");
    cru_json_report_add(&r, "b.c", "must be %s", "\"y\"");
    cr_assert_lt(cru_json_get_str(json_object_get(d.root, "b"), "b", "d", true, &s), 0);
    cru_json_report_err(&r, "b.d");
    cr_expect_eq(r.count, 3);
    cr_expect_str_eq(cru_buf_cstr(&out), "f.json:1:2: a: expected a string, got an integer\n"
                                         "f.json:2:8: b.c: must be \"y\"\n"
                                         "f.json:2:2: b.d: required field is missing\n");
    cru_buf_free(&out);
    cru_json_doc_free(&d);
}

Test(json, doc_bad_text_is_a_positioned_parse_error)
{
    struct cru_json_doc d;
    cr_assert_eq(cru_json_doc_parse(&d, "{\"a\": }", 7, "f.json"), CRU_EPARSE);
    cr_expect(strstr(cru_err_msg(), "f.json:1:") != NULL, "%s", cru_err_msg());
    cr_expect_null(d.root);
    cru_json_doc_free(&d);
}

Test(json, doc_deep_fields_fall_back_to_an_indexed_ancestor)
{
    struct cru_buf b = CRU_BUF_INIT;
    for (int i = 0; i < 100; i++)
        cru_buf_puts(&b, "[");
    for (int i = 0; i < 100; i++)
        cru_buf_puts(&b, "]");
    struct cru_json_doc d;
    cr_assert_eq(cru_json_doc_parse(&d, b.data, b.len, "deep"), 0);
    cr_expect_eq(d.n_at, 1 + CRU_JSON_POS_DEPTH);
    struct cru_buf p = CRU_BUF_INIT;
    for (int i = 0; i < 99; i++)
        cru_buf_puts(&p, "[0]");
    expect_at(&d, cru_buf_cstr(&p), 1, 1 + CRU_JSON_POS_DEPTH);
    cru_buf_free(&p);
    cru_buf_free(&b);
    cru_json_doc_free(&d);
}

Test(json, doc_report_lines_cannot_be_split_or_forged)
{
    const char *text = "{\"a\\nf.json:9:9: forged\": 1}";
    struct cru_json_doc d;
    struct cru_buf out = CRU_BUF_INIT;
    cr_assert_eq(cru_json_doc_parse(&d, text, strlen(text), "f.json"), 0);
    struct cru_json_report r = { &d, &out, 0 };
    static const char *const none[] = { NULL };
    cr_assert_eq(cru_json_report_unknown(&r, d.root, "", none), 1);
    cr_expect_str_eq(cru_buf_cstr(&out), "f.json:1:2: a\\nf.json:9:9: forged: unknown field\n");
    cru_buf_free(&out);
    cru_json_doc_free(&d);
}
