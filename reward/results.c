/* results: JUnit XML (through libxml2) and TAP test results.
 *
 * Reports come from commands the task author wrote, run on an artifact the agent wrote, so
 * both parsers treat their input as hostile: bounded sizes and counts, no DTDs or entities in
 * XML (a document that declares one is refused, so an entity bomb never expands), and
 * malformed input is an error with a reason, never a crash.
 */
#include "reward/results.h"

#include <ctype.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/err.h"
#include "lib/str.h"
#include "reward/xml.h"

void rwd_tests_free(struct rwd_tests *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->tests[i].id);
    free(t->tests);
    memset(t, 0, sizeof(*t));
}

struct collect {
    struct rwd_tests *t;
    size_t cap;
};

static int add(struct collect *c, const char *id, size_t id_len, enum rwd_test_status st)
{
    struct rwd_tests *t = c->t;
    if (t->n == RWD_RESULTS_MAX_TESTS)
        return cru_err_set(CRU_ELIMIT, "more than %d test results", RWD_RESULTS_MAX_TESTS);
    if (t->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct rwd_test *grown = realloc(t->tests, cap * sizeof(*grown));
        if (!grown)
            return cru_err_set(CRU_ENOMEM, "out of memory");
        t->tests = grown;
        c->cap = cap;
    }
    char *copy = strndup(id, id_len);
    if (!copy)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    t->tests[t->n++] = (struct rwd_test){ copy, st, 1u << st };
    t->reported++;
    return 0;
}

static int cmp_test(const void *a, const void *b)
{
    return strcmp(((const struct rwd_test *)a)->id, ((const struct rwd_test *)b)->id);
}

/* Sorts by id and merges duplicates, keeping the worst status and every status seen. */
static void finish(struct rwd_tests *t)
{
    if (t->n < 2)
        return;
    qsort(t->tests, t->n, sizeof(*t->tests), cmp_test);
    size_t w = 0;
    for (size_t r = 0; r < t->n; r++) {
        if (w > 0 && strcmp(t->tests[w - 1].id, t->tests[r].id) == 0) {
            if (t->tests[r].status > t->tests[w - 1].status)
                t->tests[w - 1].status = t->tests[r].status;
            t->tests[w - 1].seen |= t->tests[r].seen;
            free(t->tests[r].id);
        } else {
            t->tests[w++] = t->tests[r];
        }
    }
    t->n = w;
}

int rwd_tests_find(const struct rwd_tests *t, const char *id)
{
    struct rwd_test key = { .id = (char *)(uintptr_t)id };
    const struct rwd_test *hit =
        t->n ? bsearch(&key, t->tests, t->n, sizeof(*t->tests), cmp_test) : NULL;
    return hit ? (int)hit->status : -1;
}

static bool named(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static int junit_walk(struct collect *c, const xmlNode *n, unsigned depth)
{
    if (depth > 64)
        return cru_err_set(CRU_ELIMIT, "JUnit report nested more than 64 deep");
    for (; n; n = n->next) {
        if (named(n, "testcase")) {
            char *cls = NULL, *name = NULL;
            int rc = rwd_xml_prop(n, "classname", &cls);
            if (rc == 0)
                rc = rwd_xml_prop(n, "name", &name);
            enum rwd_test_status st = RWD_TEST_PASS;
            for (const xmlNode *k = n->children; k; k = k->next) {
                if (named(k, "failure") || named(k, "error"))
                    st = RWD_TEST_FAIL;
                else if (named(k, "skipped") && st == RWD_TEST_PASS)
                    st = RWD_TEST_SKIP;
            }
            if (rc == 0 && !name) {
                rc = cru_err_set(CRU_EPARSE, "JUnit report: a <testcase> without a name (line %d)",
                                 n->line);
            } else if (rc == 0) {
                char id[2048];
                int len = snprintf(id, sizeof(id), "%s%s%s", cls && *cls ? cls : "",
                                   cls && *cls ? "." : "", name);
                rc = len < 0 || (size_t)len >= sizeof(id)
                         ? cru_err_set(CRU_ELIMIT, "JUnit report: a test id over %zu bytes",
                                       sizeof(id) - 1)
                         : add(c, id, (size_t)len, st);
            }
            free(cls);
            free(name);
            if (rc < 0)
                return rc;
        } else if (n->type == XML_ELEMENT_NODE) {
            int rc = junit_walk(c, n->children, depth + 1);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int rwd_junit_parse(const char *xml, size_t len, struct rwd_tests *out)
{
    memset(out, 0, sizeof(*out));
    if (len > RWD_RESULTS_MAX_BYTES)
        return cru_err_set(CRU_ELIMIT, "JUnit report over %zu bytes", RWD_RESULTS_MAX_BYTES);
    xmlDoc *doc = NULL;
    int rc = rwd_xml_read(xml, len, "JUnit report", &doc);
    if (rc < 0)
        return rc;
    const xmlNode *root = rwd_xml_root(doc);
    if (!root || !(named(root, "testsuites") || named(root, "testsuite"))) {
        char shown[CRU_SHOW_CAP(100)];
        rc =
            cru_err_set(CRU_EPARSE,
                        "not a JUnit report: the root element is <%s>, not <testsuites> or "
                        "<testsuite>",
                        root ? cru_str_show(shown, (const char *)root->name, 100, true) : "(none)");
        rwd_xml_free(doc); /* after the message: the name lives in the document */
        return rc;
    }
    struct collect c = { out, 0 };
    rc = junit_walk(&c, root, 0);
    rwd_xml_free(doc);
    if (rc < 0) {
        rwd_tests_free(out);
        return rc;
    }
    finish(out);
    return 0;
}

/* One TAP line without its end. */
static int tap_line(struct collect *c, const char *p, size_t n, size_t line_no)
{
    struct rwd_tests *t = c->t;
    bool ok;
    if (n >= 2 && memcmp(p, "ok", 2) == 0 && (n == 2 || p[2] == ' ' || p[2] == '\t')) {
        ok = true;
        p += 2, n -= 2;
    } else if (n >= 6 && memcmp(p, "not ok", 6) == 0 && (n == 6 || p[6] == ' ' || p[6] == '\t')) {
        ok = false;
        p += 6, n -= 6;
    } else if (n >= 4 && memcmp(p, "1..", 3) == 0 && isdigit((unsigned char)p[3])) {
        size_t planned = 0, i = 3;
        while (i < n && isdigit((unsigned char)p[i]) && planned <= RWD_RESULTS_MAX_TESTS)
            planned = planned * 10 + (size_t)(p[i++] - '0');
        if (t->has_plan)
            return cru_err_set(CRU_EPARSE, "TAP line %zu: a second plan", line_no);
        t->has_plan = true;
        t->planned = planned;
        return 0;
    } else {
        if (n >= 9 && memcmp(p, "Bail out!", 9) == 0)
            t->bailed_out = 1;
        return 0; /* a diagnostic, YAML, or anything else */
    }
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    const char *num = p;
    while (n && isdigit((unsigned char)*p))
        p++, n--;
    size_t num_len = (size_t)(p - num);
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    if (n && *p == '-' && (n == 1 || p[1] == ' ' || p[1] == '\t'))
        p++, n--;
    while (n && (*p == ' ' || *p == '\t'))
        p++, n--;
    /* The description ends at an unescaped '#', which starts a directive. */
    size_t d = 0;
    while (d < n && !(p[d] == '#' && (d == 0 || p[d - 1] != '\\')))
        d++;
    enum rwd_test_status st = ok ? RWD_TEST_PASS : RWD_TEST_FAIL;
    if (d < n) {
        const char *dir = p + d + 1;
        size_t dn = n - d - 1;
        while (dn && (*dir == ' ' || *dir == '\t'))
            dir++, dn--;
        if ((dn >= 4 && strncasecmp(dir, "skip", 4) == 0) ||
            (dn >= 4 && strncasecmp(dir, "todo", 4) == 0))
            st = RWD_TEST_SKIP;
    }
    size_t desc = d;
    while (desc && (p[desc - 1] == ' ' || p[desc - 1] == '\t'))
        desc--;
    if (desc == 0 && num_len == 0)
        return cru_err_set(CRU_EPARSE, "TAP line %zu: a result with neither number nor name",
                           line_no);
    return desc ? add(c, p, desc, st) : add(c, num, num_len, st);
}

int rwd_tap_parse(const char *text, size_t len, struct rwd_tests *out)
{
    memset(out, 0, sizeof(*out));
    if (len > RWD_RESULTS_MAX_BYTES)
        return cru_err_set(CRU_ELIMIT, "TAP output over %zu bytes", RWD_RESULTS_MAX_BYTES);
    struct collect c = { out, 0 };
    size_t line_no = 0;
    for (const char *p = text, *end = text + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line_no++;
        size_t m = n;
        if (m && p[m - 1] == '\r')
            m--;
        int rc = tap_line(&c, p, m, line_no);
        if (rc < 0) {
            rwd_tests_free(out);
            return rc;
        }
        p += n + (nl ? 1 : 0);
    }
    finish(out);
    return 0;
}
