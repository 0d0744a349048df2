/* score: the checks of a reward spec, run in a box, and their aggregation.
 *
 * Each check kind is one function that decides pass or fail (and a score) and says why in one
 * line. Files come from the box's confined reader; formats are read by reward/csv,
 * reward/ooxml and reward/results, which refuse malformed input with a reason that becomes the
 * check's message. Nothing here touches the host's file system.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "reward/score.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/str.h"
#include "reward/csv.h"
#include "reward/ooxml.h"
#include "reward/results.h"

/* The longest message a check keeps. */
#define MSG_MAX 1024

void rwd_exec_free(struct rwd_exec *e)
{
    cru_buf_free(&e->out);
    cru_buf_free(&e->err);
}

/* Sets the verdict of R: PASSED, SCORE and a formatted message (cut with "..." if long). */
static void verdict(struct rwd_check_result *r, bool passed, double score, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void verdict(struct rwd_check_result *r, bool passed, double score, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(msg))
        memcpy(msg + sizeof(msg) - 4, "...", 4);
    r->passed = passed;
    r->score = score;
    free(r->message);
    r->message = strdup(msg);
}

/* Reads workspace file PATH for check R; on failure R fails saying why, and false returns. */
static bool read_file(const struct rwd_box *box, struct rwd_check_result *r, const char *path,
                      struct cru_buf *out)
{
    int rc = box->read(box->ctx, path, RWD_FILE_MAX, out);
    if (rc == 0)
        return true;
    if (rc == CRU_ENOENT)
        verdict(r, false, 0, "%s does not exist", path);
    else
        verdict(r, false, 0, "cannot read %s: %s", path, cru_err_msg());
    return false;
}

/* The last line of TEXT that is not blank, into BUF (cut to CAP - 1 bytes). */
static const char *last_line(const struct cru_buf *text, char *buf, size_t cap)
{
    size_t end = text->len;
    while (end && isspace((unsigned char)text->data[end - 1]))
        end--;
    size_t start = end;
    while (start && text->data[start - 1] != '\n')
        start--;
    size_t n = end - start < cap - 1 ? end - start : cap - 1;
    memcpy(buf, text->data ? text->data + start : "", n);
    buf[n] = '\0';
    return buf;
}

/* A command stopped by its time limit or the OOM killer fails its check; returns whether so. */
static bool stopped(const struct rwd_check *ck, const struct rwd_exec *ex,
                    struct rwd_check_result *r)
{
    if (ex->timed_out)
        verdict(r, false, 0, "timed out after %llu ms", (unsigned long long)ck->timeout_ms);
    else if (ex->oom)
        verdict(r, false, 0, "ran out of memory");
    return ex->timed_out || ex->oom;
}

/* Passes on exit status 0; otherwise says the status and the last line of its output. */
static void exit_verdict(const struct rwd_exec *ex, struct rwd_check_result *r)
{
    char line[256];
    const struct cru_buf *tail = ex->err.len ? &ex->err : &ex->out;
    verdict(r, ex->exit_code == 0, ex->exit_code == 0, "exit status %d%s%s", ex->exit_code,
            ex->exit_code ? ": " : "", ex->exit_code ? last_line(tail, line, sizeof(line)) : "");
}

/* ---- tests ---- */

static const char *status_name(int st)
{
    return st == RWD_TEST_PASS   ? "passed"
           : st == RWD_TEST_SKIP ? "skipped"
           : st == RWD_TEST_FAIL ? "failed"
                                 : "did not run";
}

/* Appends to BAD (up to three names) each id of IDS whose status is not PASS. */
static size_t not_passing(const struct rwd_tests *t, const char **ids, size_t n,
                          struct cru_buf *bad)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        int st = rwd_tests_find(t, ids[i]);
        if (st == RWD_TEST_PASS)
            continue;
        if (count < 3)
            cru_buf_printf(bad, "%s%s %s", bad->len ? ", " : "", ids[i], status_name(st));
        count++;
    }
    return count;
}

/* Appends ", " and NAME to B for the first three names, counting them all in *COUNT. */
static void name_some(struct cru_buf *b, size_t *count, const char *name)
{
    if (*count < 3)
        cru_buf_printf(b, "%s%s", b->len ? ", " : "", name);
    (*count)++;
}

static void and_more(struct cru_buf *b, size_t count)
{
    if (count > 3)
        cru_buf_printf(b, " and %zu more", count - 3);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends to NAMES (up to three) each test of T that neither list of CK names; returns how
 * many there are, or a negative code. */
static long long not_listed(const struct rwd_check *ck, const struct rwd_tests *t,
                            struct cru_buf *names)
{
    size_t n = ck->n_fail_to_pass + ck->n_pass_to_pass, count = 0;
    const char **ids = calloc(n, sizeof(*ids));
    if (!ids)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    if (ck->n_fail_to_pass) /* either list may be absent (NULL) */
        memcpy(ids, ck->fail_to_pass, ck->n_fail_to_pass * sizeof(*ids));
    if (ck->n_pass_to_pass)
        memcpy(ids + ck->n_fail_to_pass, ck->pass_to_pass, ck->n_pass_to_pass * sizeof(*ids));
    qsort(ids, n, sizeof(*ids), cmp_str);
    for (size_t i = 0; i < t->n; i++) {
        const char *id = t->tests[i].id;
        if (!bsearch(&id, ids, n, sizeof(*ids), cmp_str))
            name_some(names, &count, id);
    }
    free(ids);
    return (long long)count;
}

/* The statuses a test was reported with, "passed and failed", into BUF. */
static const char *outcomes(unsigned seen, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int st = RWD_TEST_PASS; st <= RWD_TEST_FAIL; st++)
        if (seen & (1u << st))
            o += (size_t)snprintf(buf + o, o < cap ? cap - o : 0, "%s%s", o ? " and " : "",
                                  status_name(st));
    return buf;
}

/* The verdict on a report. It must be whole: no bail-out, every planned TAP test reported, no
 * test reported with two outcomes. Without lists, at least one test ran and every test passed
 * (a skip is not a pass). With lists, every listed test passed, and the report names no test
 * outside them: a test the author did not list is one nobody checked was meant to run. */
static void judge_tests(const struct rwd_check *ck, const struct rwd_tests *t,
                        struct rwd_check_result *r)
{
    size_t pass = 0, fail = 0, skip = 0, twice = 0, unlisted = 0;
    struct cru_buf names = CRU_BUF_INIT;
    char seen[64];
    for (size_t i = 0; i < t->n; i++) {
        pass += t->tests[i].status == RWD_TEST_PASS;
        fail += t->tests[i].status == RWD_TEST_FAIL;
        skip += t->tests[i].status == RWD_TEST_SKIP;
    }
    if (t->bailed_out) {
        verdict(r, false, 0, "the tests bailed out (%zu passed, %zu failed)", pass, fail);
        return;
    }
    if (t->has_plan && t->reported != t->planned) {
        verdict(r, false, 0, "%zu of %zu planned tests reported", t->reported, t->planned);
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        unsigned s = t->tests[i].seen;
        if (s & (s - 1)) {
            if (twice == 0)
                outcomes(s, seen, sizeof(seen));
            name_some(&names, &twice, t->tests[i].id);
        }
    }
    if (twice) {
        and_more(&names, twice);
        verdict(r, false, 0, "the report gives tests two outcomes (%s %s): %s",
                twice == 1 ? "it is" : "the first is", seen, cru_buf_cstr(&names));
        cru_buf_free(&names);
        return;
    }
    if (ck->n_fail_to_pass == 0 && ck->n_pass_to_pass == 0) {
        bool ok = t->n > 0 && fail == 0 && skip == 0;
        if (t->n == 0)
            verdict(r, false, 0, "no tests ran");
        else
            verdict(r, ok, ok, "%zu passed, %zu failed, %zu skipped%s", pass, fail, skip,
                    !ok && fail == 0 ? " (every test must pass)" : "");
        return;
    }
    struct cru_buf f2p = CRU_BUF_INIT, p2p = CRU_BUF_INIT;
    size_t bad_f = not_passing(t, ck->fail_to_pass, ck->n_fail_to_pass, &f2p);
    size_t bad_p = not_passing(t, ck->pass_to_pass, ck->n_pass_to_pass, &p2p);
    long long extra = not_listed(ck, t, &names);
    unlisted = extra > 0 ? (size_t)extra : 0;
    and_more(&names, unlisted);
    if (extra < 0)
        verdict(r, false, 0, "%s", cru_err_msg());
    else if (bad_f || bad_p)
        verdict(r, false, 0,
                "not resolved: %zu of %zu fail-to-pass still failing%s%s%s; %zu of "
                "%zu pass-to-pass broken%s%s%s",
                bad_f, ck->n_fail_to_pass, bad_f ? " (" : "", bad_f ? cru_buf_cstr(&f2p) : "",
                bad_f ? ")" : "", bad_p, ck->n_pass_to_pass, bad_p ? " (" : "",
                bad_p ? cru_buf_cstr(&p2p) : "", bad_p ? ")" : "");
    else if (unlisted)
        verdict(r, false, 0, "the report names tests that are not in the lists: %s",
                cru_buf_cstr(&names));
    else
        verdict(r, true, 1, "resolved: %zu fail-to-pass and %zu pass-to-pass tests pass",
                ck->n_fail_to_pass, ck->n_pass_to_pass);
    cru_buf_free(&f2p);
    cru_buf_free(&p2p);
    cru_buf_free(&names);
}

static int check_tests(const struct rwd_check *ck, const struct rwd_box *box,
                       struct rwd_check_result *r)
{
    struct rwd_exec ex = { 0 };
    struct cru_buf file = CRU_BUF_INIT;
    const char *kind = ck->results == RWD_RESULTS_JUNIT ? "JUnit" : "TAP";
    size_t cap = ck->results == RWD_RESULTS_TAP ? RWD_RESULTS_MAX_BYTES : 64 << 10;
    int rc = box->exec(box->ctx, NULL, ck->command, ck->timeout_ms, cap, &ex);
    if (rc < 0)
        return rc;
    const struct cru_buf *report = &ex.out;
    int frc = 0;
    if (ck->report_path && !ex.timed_out && !ex.oom) {
        frc = box->report(box->ctx, ck->report_path, RWD_RESULTS_MAX_BYTES, &file);
        report = &file;
    }
    if (stopped(ck, &ex, r)) {
        /* the verdict is given */
    } else if (ck->results == RWD_RESULTS_EXIT) {
        exit_verdict(&ex, r);
    } else if (frc == CRU_ENOENT) {
        verdict(r, false, 0, "no %s report at %s (the command exited with %d)", kind,
                ck->report_path, ex.exit_code);
    } else if (frc == CRU_ELIMIT || (!ck->report_path && ex.out_total > ex.out.len)) {
        verdict(r, false, 0, "the test report is over %zu bytes", RWD_RESULTS_MAX_BYTES);
    } else if (frc < 0) {
        verdict(r, false, 0, "the %s report %s cannot be read: %s", kind, ck->report_path,
                cru_err_msg());
    } else {
        struct rwd_tests t = { 0 };
        const char *data = report->data ? report->data : "";
        if ((ck->results == RWD_RESULTS_JUNIT ? rwd_junit_parse(data, report->len, &t)
                                              : rwd_tap_parse(data, report->len, &t)) < 0)
            verdict(r, false, 0, "%s", cru_err_msg());
        else
            judge_tests(ck, &t, r);
        rwd_tests_free(&t);
    }
    cru_buf_free(&file);
    rwd_exec_free(&ex);
    return 0;
}

/* ---- command ---- */

static int check_command(const struct rwd_check *ck, const struct rwd_box *box,
                         struct rwd_check_result *r)
{
    struct rwd_exec ex = { 0 };
    char line[256];
    int rc = box->exec(box->ctx, NULL, ck->command, ck->timeout_ms, 64 << 10, &ex);
    if (rc < 0)
        return rc;
    json_t *v = NULL;
    last_line(&ex.out, line, sizeof(line));
    if (stopped(ck, &ex, r)) {
        /* the verdict is given */
    } else if (line[0] && cru_json_parse(&v, line, strlen(line), "score") == 0 &&
               json_is_number(v)) {
        double s = json_number_value(v);
        if (!(s >= 0 && s <= 1))
            verdict(r, false, 0, "printed %s, which is not a score in [0, 1]", line);
        else
            verdict(r, s >= 1, s, "score %g (exit status %d)", s, ex.exit_code);
    } else {
        exit_verdict(&ex, r);
    }
    json_decref(v);
    rwd_exec_free(&ex);
    return 0;
}

/* ---- files ---- */

static void check_file_exists(const struct rwd_check *ck, const struct rwd_box *box,
                              struct rwd_check_result *r)
{
    struct stat st;
    int rc = box->stat(box->ctx, ck->path, &st);
    if (rc == CRU_ENOENT)
        verdict(r, false, 0, "%s does not exist", ck->path);
    else if (rc < 0)
        verdict(r, false, 0, "cannot inspect %s: %s", ck->path, cru_err_msg());
    else if (S_ISLNK(st.st_mode))
        verdict(r, false, 0, "%s is a symlink, not a file", ck->path);
    else if (!S_ISREG(st.st_mode))
        verdict(r, false, 0, "%s is not a regular file", ck->path);
    else
        verdict(r, true, 1, "%s exists (%lld bytes)", ck->path, (long long)st.st_size);
}

static void check_file_sha256(const struct rwd_check *ck, const struct rwd_box *box,
                              struct rwd_check_result *r)
{
    struct cru_buf b = CRU_BUF_INIT;
    uint8_t sum[CRU_SHA256_LEN];
    char hex[2 * CRU_SHA256_LEN + 1];
    const char *want = json_string_value(json_object_get(ck->params, "sha256"));
    if (read_file(box, r, ck->path, &b)) {
        if (cru_sha256(b.data ? b.data : "", b.len, sum) < 0) {
            verdict(r, false, 0, "cannot hash %s: %s", ck->path, cru_err_msg());
        } else {
            cru_hex(hex, sum, sizeof(sum));
            bool ok = strcasecmp(hex, want) == 0;
            verdict(r, ok, ok, "%s has SHA-256 %s%s", ck->path, hex,
                    ok ? "" : ", not the one expected");
        }
    }
    cru_buf_free(&b);
}

static void check_text(const struct rwd_check *ck, const struct rwd_box *box,
                       struct rwd_check_result *r)
{
    struct cru_buf b = CRU_BUF_INIT;
    if (!read_file(box, r, ck->path, &b))
        goto done;
    const char *text = b.data ? b.data : "";
    if (!cru_utf8_valid(text, b.len)) {
        verdict(r, false, 0, "%s is not valid UTF-8", ck->path);
        goto done;
    }
    json_t *arr = json_object_get(ck->params, "contains");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (!memmem(text, b.len, s, strlen(s))) {
            verdict(r, false, 0, "%s does not contain \"%s\"", ck->path, s);
            goto done;
        }
    }
    arr = json_object_get(ck->params, "not_contains");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (memmem(text, b.len, s, strlen(s))) {
            verdict(r, false, 0, "%s contains \"%s\"", ck->path, s);
            goto done;
        }
    }
    arr = json_object_get(ck->params, "regex");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        int err;
        PCRE2_SIZE off;
        pcre2_code *re =
            pcre2_compile((PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off, NULL);
        pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
        pcre2_match_context *mc = pcre2_match_context_create(NULL);
        int m = PCRE2_ERROR_NOMEMORY;
        if (md && mc) {
            /* Bound backtracking: a pathological pattern fails, it does not hang. */
            pcre2_set_match_limit(mc, 10000000);
            m = pcre2_match(re, (PCRE2_SPTR)text, b.len, 0, PCRE2_NO_UTF_CHECK, md, mc);
        }
        pcre2_match_context_free(mc);
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        if (m == PCRE2_ERROR_NOMATCH) {
            verdict(r, false, 0, "%s does not match /%s/", ck->path, s);
            goto done;
        }
        if (m < 0) {
            PCRE2_UCHAR why[128];
            pcre2_get_error_message(m, why, sizeof(why));
            verdict(r, false, 0, "matching /%s/ failed: %s", s, (const char *)why);
            goto done;
        }
    }
    verdict(r, true, 1, "%s has the expected text", ck->path);
done:
    cru_buf_free(&b);
}

/* ---- json ---- */

/* Whether ACTUAL equals WANT, numbers within TOL. */
static bool json_match(const json_t *want, const json_t *actual, double tol)
{
    if (json_is_number(want) && json_is_number(actual))
        return fabs(json_number_value(want) - json_number_value(actual)) <= tol;
    if (json_typeof(want) != json_typeof(actual))
        return false;
    if (json_is_array(want)) {
        if (json_array_size(want) != json_array_size(actual))
            return false;
        for (size_t i = 0; i < json_array_size(want); i++)
            if (!json_match(json_array_get(want, i), json_array_get(actual, i), tol))
                return false;
        return true;
    }
    if (json_is_object(want)) {
        const char *k;
        json_t *v;
        if (json_object_size(want) != json_object_size(actual))
            return false;
        json_object_foreach((json_t *)(uintptr_t)want, k, v)
        {
            const json_t *a = json_object_get(actual, k);
            if (!a || !json_match(v, a, tol))
                return false;
        }
        return true;
    }
    return json_equal(want, actual);
}

/* The value at RFC 6901 POINTER in ROOT, or NULL. */
static const json_t *json_at(const json_t *root, const char *pointer)
{
    const json_t *v = root;
    const char *p = pointer;
    char tok[1024];
    while (v && *p == '/') {
        p++;
        size_t n = 0;
        for (; *p && *p != '/'; p++) {
            if (n + 1 >= sizeof(tok))
                return NULL;
            if (*p == '~' && (p[1] == '0' || p[1] == '1'))
                tok[n++] = *++p == '0' ? '~' : '/';
            else
                tok[n++] = *p;
        }
        tok[n] = '\0';
        if (json_is_object(v)) {
            v = json_object_get(v, tok);
        } else if (json_is_array(v)) {
            uint64_t i;
            if ((n > 1 && tok[0] == '0') || cru_parse_u64(tok, 0, UINT64_MAX, &i) < 0 ||
                i >= json_array_size(v))
                return NULL;
            v = json_array_get(v, (size_t)i);
        } else {
            return NULL;
        }
    }
    return v;
}

static double tolerance(const struct rwd_check *ck)
{
    const json_t *t = json_object_get(ck->params, "tolerance");
    return json_is_number(t) ? json_number_value(t) : 0;
}

static void check_json(const struct rwd_check *ck, const struct rwd_box *box,
                       struct rwd_check_result *r)
{
    struct cru_buf b = CRU_BUF_INIT;
    json_t *doc = NULL;
    const char *pointer = json_string_value(json_object_get(ck->params, "pointer"));
    const json_t *want = json_object_get(ck->params, "equals");
    if (!read_file(box, r, ck->path, &b))
        goto done;
    if (cru_json_parse(&doc, b.data ? b.data : "", b.len, ck->path) < 0) {
        verdict(r, false, 0, "%s", cru_err_msg());
        goto done;
    }
    const json_t *at = json_at(doc, pointer);
    char *got = NULL, *exp = NULL;
    if (!at) {
        verdict(r, false, 0, "%s has nothing at \"%s\"", ck->path, pointer);
    } else if (json_match(want, at, tolerance(ck))) {
        verdict(r, true, 1, "%s at \"%s\" is as expected", ck->path, pointer);
    } else if (cru_json_dump(&got, at, false) == 0 && cru_json_dump(&exp, want, false) == 0) {
        verdict(r, false, 0, "%s at \"%s\" is %.200s, expected %.200s", ck->path, pointer, got,
                exp);
    } else {
        verdict(r, false, 0, "%s at \"%s\" is not as expected", ck->path, pointer);
    }
    free(got);
    free(exp);
done:
    json_decref(doc);
    cru_buf_free(&b);
}

/* ---- csv ---- */

/* Whether the text of a cell matches WANT (a JSON scalar): numbers within TOL, strings exactly,
 * booleans as true/false (any case), null as an empty cell. */
static bool cell_match(const char *cell, const json_t *want, double tol)
{
    if (json_is_null(want))
        return cell[0] == '\0';
    if (json_is_string(want))
        return strcmp(cell, json_string_value(want)) == 0;
    if (json_is_boolean(want))
        return strcasecmp(cell, json_is_true(want) ? "true" : "false") == 0;
    if (json_is_number(want)) {
        double d;
        char trimmed[256];
        size_t s = 0, n = strlen(cell);
        while (s < n && isspace((unsigned char)cell[s]))
            s++;
        while (n > s && isspace((unsigned char)cell[n - 1]))
            n--;
        if (n - s >= sizeof(trimmed))
            return false;
        memcpy(trimmed, cell + s, n - s);
        trimmed[n - s] = '\0';
        return cru_parse_double(trimmed, -DBL_MAX, DBL_MAX, &d) == 0 &&
               fabs(d - json_number_value(want)) <= tol;
    }
    return false;
}

static bool row_match(const struct rwd_csv_row *row, const json_t *want, double tol)
{
    if (row->n_cells != json_array_size(want))
        return false;
    for (size_t i = 0; i < row->n_cells; i++)
        if (!cell_match(row->cells[i], json_array_get(want, i), tol))
            return false;
    return true;
}

static void check_csv(const struct rwd_check *ck, const struct rwd_box *box,
                      struct rwd_check_result *r)
{
    struct cru_buf b = CRU_BUF_INIT;
    struct rwd_csv *csv = NULL;
    const json_t *p = ck->params;
    const char *delim = json_string_value(json_object_get(p, "delimiter"));
    bool header = !json_is_false(json_object_get(p, "header"));
    bool unordered = json_is_true(json_object_get(p, "unordered"));
    double tol = tolerance(ck);
    bool *used = NULL;

    if (!read_file(box, r, ck->path, &b))
        goto done;
    if (rwd_csv_parse(b.data ? b.data : "", b.len, delim ? delim[0] : ',', &csv) < 0) {
        verdict(r, false, 0, "%s: %s", ck->path, cru_err_msg());
        goto done;
    }
    if (header && csv->n_rows == 0) {
        verdict(r, false, 0, "%s is empty: no header row", ck->path);
        goto done;
    }
    const struct rwd_csv_row *head = header ? &csv->rows[0] : NULL;
    const struct rwd_csv_row *body = csv->rows + (header ? 1 : 0);
    size_t n_body = csv->n_rows - (header ? 1 : 0);

    const json_t *cols = json_object_get(p, "columns");
    if (cols) {
        bool ok = head && head->n_cells == json_array_size(cols);
        for (size_t i = 0; ok && i < head->n_cells; i++)
            ok = strcmp(head->cells[i], json_string_value(json_array_get(cols, i))) == 0;
        if (!ok) {
            verdict(r, false, 0, "%s: the header is not the expected columns", ck->path);
            goto done;
        }
    }
    const json_t *count = json_object_get(p, "row_count");
    if (count && (json_int_t)n_body != json_integer_value(count)) {
        verdict(r, false, 0, "%s has %zu rows, expected %lld", ck->path, n_body,
                (long long)json_integer_value(count));
        goto done;
    }
    const json_t *cells = json_object_get(p, "cells");
    for (size_t i = 0; i < json_array_size(cells); i++) {
        const json_t *c = json_array_get(cells, i);
        json_int_t row = json_integer_value(json_object_get(c, "row"));
        const json_t *col = json_object_get(c, "column");
        size_t ci = (size_t)-1;
        if (json_is_string(col)) {
            for (size_t k = 0; head && k < head->n_cells && ci == (size_t)-1; k++)
                if (strcmp(head->cells[k], json_string_value(col)) == 0)
                    ci = k;
            if (ci == (size_t)-1) {
                verdict(r, false, 0, "%s has no column \"%s\"", ck->path, json_string_value(col));
                goto done;
            }
        } else {
            ci = (size_t)json_integer_value(col);
        }
        if ((size_t)row >= n_body || ci >= body[row].n_cells) {
            verdict(r, false, 0, "%s has no cell at row %lld, column %zu", ck->path, (long long)row,
                    ci);
            goto done;
        }
        if (!cell_match(body[row].cells[ci], json_object_get(c, "equals"), tol)) {
            verdict(r, false, 0, "%s: the cell at row %lld, column %zu is \"%.100s\"", ck->path,
                    (long long)row, ci, body[row].cells[ci]);
            goto done;
        }
    }
    const json_t *rows = json_object_get(p, "rows");
    if (rows) {
        size_t n = json_array_size(rows);
        if (n != n_body) {
            verdict(r, false, 0, "%s has %zu rows, expected %zu", ck->path, n_body, n);
            goto done;
        }
        if (n && !(used = calloc(n, sizeof(*used)))) {
            verdict(r, false, 0, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *want = json_array_get(rows, i);
            bool found = false;
            if (!unordered) {
                found = row_match(&body[i], want, tol);
            } else {
                for (size_t k = 0; k < n_body && !found; k++)
                    if (!used[k] && row_match(&body[k], want, tol))
                        found = used[k] = true;
            }
            if (!found) {
                verdict(r, false, 0,
                        unordered ? "%s: expected row %zu is missing"
                                  : "%s: row %zu is not as expected",
                        ck->path, i);
                goto done;
            }
        }
    }
    verdict(r, true, 1, "%s is as expected (%zu rows)", ck->path, n_body);
done:
    free(used);
    rwd_csv_free(csv);
    cru_buf_free(&b);
}

/* ---- xlsx ---- */

static bool xlsx_match(const struct rwd_xlsx_value *v, const json_t *want, double tol)
{
    if (json_is_null(want))
        return v->type == RWD_XV_EMPTY;
    if (json_is_number(want))
        return v->type == RWD_XV_NUMBER && fabs(v->number - json_number_value(want)) <= tol;
    if (json_is_boolean(want))
        return v->type == RWD_XV_BOOL && v->boolean == json_is_true(want);
    if (json_is_string(want))
        return v->type == RWD_XV_STRING && strcmp(v->text, json_string_value(want)) == 0;
    return false;
}

static const char *xlsx_show(const struct rwd_xlsx_value *v, char *buf, size_t cap)
{
    switch (v->type) {
    case RWD_XV_EMPTY:
        snprintf(buf, cap, "empty");
        break;
    case RWD_XV_NUMBER:
        snprintf(buf, cap, "%.15g", v->number);
        break;
    case RWD_XV_BOOL:
        snprintf(buf, cap, "%s", v->boolean ? "TRUE" : "FALSE");
        break;
    case RWD_XV_STRING:
        snprintf(buf, cap, "\"%.100s\"", v->text);
        break;
    case RWD_XV_ERROR:
        snprintf(buf, cap, "the error %.100s", v->text);
        break;
    }
    return buf;
}

static void check_xlsx(const struct rwd_check *ck, const struct rwd_box *box,
                       struct rwd_check_result *r)
{
    struct cru_buf b = CRU_BUF_INIT;
    struct rwd_xlsx *x = NULL;
    char shown[160];
    if (!read_file(box, r, ck->path, &b))
        goto done;
    if (rwd_xlsx_open(b.data ? b.data : "", b.len, &x) < 0) {
        verdict(r, false, 0, "%s: %s", ck->path, cru_err_msg());
        goto done;
    }
    const json_t *cells = json_object_get(ck->params, "cells");
    for (size_t i = 0; i < json_array_size(cells); i++) {
        const json_t *c = json_array_get(cells, i);
        const char *sheet = json_string_value(json_object_get(c, "sheet"));
        const char *ref = json_string_value(json_object_get(c, "ref"));
        const json_t *want = json_object_get(c, "equals");
        struct rwd_xlsx_value v;
        uint32_t col, row;
        if (rwd_cell_ref(ref, &col, &row) < 0 || rwd_xlsx_cell(x, sheet, col, row, &v) < 0) {
            verdict(r, false, 0, "%s: %s", ck->path, cru_err_msg());
            goto done;
        }
        if (json_is_true(json_object_get(c, "formula")) && !v.has_formula) {
            verdict(r, false, 0, "%s: %s!%s holds no formula", ck->path, sheet, ref);
            goto done;
        }
        if (want && !xlsx_match(&v, want, tolerance(ck))) {
            verdict(r, false, 0, "%s: %s!%s is %s%s", ck->path, sheet, ref,
                    xlsx_show(&v, shown, sizeof(shown)),
                    v.has_formula && v.type == RWD_XV_EMPTY
                        ? " (a formula without a cached value: save the file from a program "
                          "that computes formulas)"
                        : "");
            goto done;
        }
    }
    verdict(r, true, 1, "%s: %zu cells as expected", ck->path, json_array_size(cells));
done:
    rwd_xlsx_free(x);
    cru_buf_free(&b);
}

/* ---- docx ---- */

/* TEXT without leading and trailing white space equals WANT. */
static bool trimmed_eq(const char *text, const char *want)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t n = strlen(text);
    while (n && isspace((unsigned char)text[n - 1]))
        n--;
    return n == strlen(want) && strncmp(text, want, n) == 0;
}

static bool docx_contains(const struct rwd_docx *d, const char *s)
{
    for (size_t i = 0; i < d->n_paragraphs; i++)
        if (strstr(d->paragraphs[i].text, s))
            return true;
    for (size_t t = 0; t < d->n_tables; t++)
        for (size_t i = 0; i < d->tables[t].n_rows * d->tables[t].n_cols; i++)
            if (strstr(d->tables[t].cells[i], s))
                return true;
    return false;
}

static bool docx_table_match(const struct rwd_docx_table *t, const json_t *cells)
{
    for (size_t i = 0; i < json_array_size(cells); i++) {
        const json_t *c = json_array_get(cells, i);
        size_t row = (size_t)json_integer_value(json_object_get(c, "row"));
        size_t col = (size_t)json_integer_value(json_object_get(c, "column"));
        if (row >= t->n_rows || col >= t->n_cols ||
            !trimmed_eq(t->cells[row * t->n_cols + col],
                        json_string_value(json_object_get(c, "equals"))))
            return false;
    }
    return true;
}

static void check_docx(const struct rwd_check *ck, const struct rwd_box *box,
                       struct rwd_check_result *r)
{
    struct cru_buf b = CRU_BUF_INIT;
    struct rwd_docx *d = NULL;
    if (!read_file(box, r, ck->path, &b))
        goto done;
    if (rwd_docx_open(b.data ? b.data : "", b.len, &d) < 0) {
        verdict(r, false, 0, "%s: %s", ck->path, cru_err_msg());
        goto done;
    }
    const json_t *arr = json_object_get(ck->params, "contains");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (!docx_contains(d, s)) {
            verdict(r, false, 0, "%s: no paragraph contains \"%s\"", ck->path, s);
            goto done;
        }
    }
    arr = json_object_get(ck->params, "headings");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *h = json_array_get(arr, i);
        const char *text = json_string_value(json_object_get(h, "text"));
        json_int_t level = json_integer_value(json_object_get(h, "level"));
        bool found = false;
        for (size_t k = 0; k < d->n_paragraphs && !found; k++)
            found = d->paragraphs[k].heading > 0 &&
                    (level == 0 || d->paragraphs[k].heading == level) &&
                    trimmed_eq(d->paragraphs[k].text, text);
        if (!found) {
            verdict(r, false, 0, "%s: no heading \"%s\"%s", ck->path, text,
                    level ? " at the level expected" : "");
            goto done;
        }
    }
    arr = json_object_get(ck->params, "tables");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *cells = json_object_get(json_array_get(arr, i), "cells");
        bool found = false;
        for (size_t t = 0; t < d->n_tables && !found; t++)
            found = docx_table_match(&d->tables[t], cells);
        if (!found) {
            verdict(r, false, 0, "%s: no table has the cells of expected table %zu", ck->path, i);
            goto done;
        }
    }
    verdict(r, true, 1, "%s has the expected content", ck->path);
done:
    rwd_docx_free(d);
    cru_buf_free(&b);
}

/* ---- the spec ---- */

static int run_check(const struct rwd_check *ck, const struct rwd_box *box,
                     struct rwd_check_result *r)
{
    switch (ck->kind) {
    case RWD_TESTS:
        return check_tests(ck, box, r);
    case RWD_COMMAND:
        return check_command(ck, box, r);
    case RWD_FILE_EXISTS:
        check_file_exists(ck, box, r);
        return 0;
    case RWD_FILE_SHA256:
        check_file_sha256(ck, box, r);
        return 0;
    case RWD_TEXT:
        check_text(ck, box, r);
        return 0;
    case RWD_JSON:
        check_json(ck, box, r);
        return 0;
    case RWD_CSV:
        check_csv(ck, box, r);
        return 0;
    case RWD_XLSX:
        check_xlsx(ck, box, r);
        return 0;
    case RWD_DOCX:
        check_docx(ck, box, r);
        return 0;
    }
    return cru_err_set(CRU_EINTERNAL, "unknown check kind %d", (int)ck->kind);
}

void rwd_result_free(struct rwd_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n_checks; i++) {
        free(res->checks[i].name);
        free(res->checks[i].message);
    }
    free(res->checks);
    for (size_t i = 0; i < res->n_protected_changed; i++)
        free(res->protected_changed[i]);
    free(res->protected_changed);
    memset(res, 0, sizeof(*res));
}

int rwd_score(const struct rwd_spec *spec, const struct rwd_box *box, char *const *changed,
              size_t n_changed, struct rwd_result *res)
{
    memset(res, 0, sizeof(*res));
    res->checks = calloc(spec->n_checks, sizeof(*res->checks));
    res->protected_changed = n_changed ? calloc(n_changed, sizeof(char *)) : NULL;
    if (!res->checks || (n_changed && !res->protected_changed)) {
        rwd_result_free(res);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n_changed; i++)
        if ((res->protected_changed[i] = strdup(changed[i])))
            res->n_protected_changed++;
    res->n_checks = spec->n_checks;

    double weights = 0, weighted = 0;
    bool all = true;
    for (size_t i = 0; i < spec->n_checks; i++) {
        const struct rwd_check *ck = &spec->checks[i];
        struct rwd_check_result *r = &res->checks[i];
        r->name = strdup(ck->name);
        r->kind = ck->kind;
        uint64_t t0 = cru_now_ns();
        bool runs = ck->kind == RWD_TESTS || ck->kind == RWD_COMMAND;
        if (spec->protected_fail && n_changed) {
            verdict(r, false, 0, "not run: the protected path %s was changed", changed[0]);
        } else {
            int rc = runs && box->begin ? box->begin(box->ctx, ck) : 0;
            if (rc == 0)
                rc = run_check(ck, box, r);
            if (runs && box->end)
                box->end(box->ctx);
            if (rc < 0) {
                int code = cru_err_wrap(rc, "check \"%s\"", ck->name);
                rwd_result_free(res);
                return code;
            }
        }
        r->duration_ms = cru_elapsed_ms(t0);
        if (!r->name || !r->message) {
            rwd_result_free(res);
            return cru_err_set(CRU_ENOMEM, "out of memory");
        }
        weights += ck->weight;
        weighted += ck->weight * r->score;
        all = all && r->passed;
    }
    double mean = weights > 0 ? weighted / weights : 0;
    res->all_passed = all;
    switch (spec->aggregate) {
    case RWD_AGG_ALL:
        res->reward = all ? 1 : 0;
        break;
    case RWD_AGG_MEAN:
        res->reward = mean;
        break;
    case RWD_AGG_PARTIAL:
        res->reward = 0.5 * mean + 0.5 * (all ? 1 : 0);
        break;
    }
    return 0;
}

json_t *rwd_result_json(const struct rwd_result *res)
{
    json_t *checks = json_array(), *changed = json_array();
    for (size_t i = 0; checks && i < res->n_checks; i++) {
        const struct rwd_check_result *r = &res->checks[i];
        json_array_append_new(checks, json_pack("{s:s, s:s, s:b, s:f, s:s, s:I}", "name", r->name,
                                                "kind", rwd_kind_name(r->kind), "passed", r->passed,
                                                "score", r->score, "message", r->message,
                                                "duration_ms", (json_int_t)r->duration_ms));
    }
    for (size_t i = 0; changed && i < res->n_protected_changed; i++)
        json_array_append_new(changed, json_string(res->protected_changed[i]));
    return json_pack("{s:f, s:b, s:o, s:o}", "reward", res->reward, "all_passed", res->all_passed,
                     "protected_changed", changed, "checks", checks);
}
