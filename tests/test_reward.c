/* Tests for reward/ (results parsing, every check kind on passing, failing and malformed
 * artifacts) and agent/check (the checker sandbox, protected paths), and reward hacking
 * attempts that must not earn reward, each with a control that shows the attempt would have
 * worked against a naive checker. Scoring runs real sandboxes: these tests need root. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/check.h"
#include "agent/image.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "reward/results.h"
#include "reward/score.h"
#include "sandbox/sandbox.h"

/* ---- results ---- */

Test(results, junit)
{
    const char *xml =
        "<?xml version=\"1.0\"?>\n<testsuites><testsuite name=\"s\">\n"
        "<testcase classname=\"test_m\" name=\"test_ok\"/>\n"
        "<testcase classname=\"test_m\" name=\"test_bad\"><failure message=\"x\"/></testcase>\n"
        "<testcase classname=\"test_m\" name=\"test_err\"><error/></testcase>\n"
        "<testcase classname=\"test_m\" name=\"test_skip\"><skipped/></testcase>\n"
        "<testsuite><testcase name=\"bare\"/></testsuite>\n"
        "<testcase classname=\"test_m\" name=\"test_twice\"/>\n"
        "<testcase classname=\"test_m\" name=\"test_twice\"><failure/></testcase>\n"
        "</testsuite></testsuites>\n";
    struct rwd_tests t;
    cr_assert_eq(rwd_junit_parse(xml, strlen(xml), &t), 0, "%s", cru_err_msg());
    cr_expect_eq(t.n, 6);
    cr_expect_eq(rwd_tests_find(&t, "test_m.test_ok"), RWD_TEST_PASS);
    cr_expect_eq(rwd_tests_find(&t, "test_m.test_bad"), RWD_TEST_FAIL);
    cr_expect_eq(rwd_tests_find(&t, "test_m.test_err"), RWD_TEST_FAIL);
    cr_expect_eq(rwd_tests_find(&t, "test_m.test_skip"), RWD_TEST_SKIP);
    cr_expect_eq(rwd_tests_find(&t, "bare"), RWD_TEST_PASS);
    cr_expect_eq(rwd_tests_find(&t, "test_m.test_twice"), RWD_TEST_FAIL, "the worst run counts");
    cr_expect_eq(rwd_tests_find(&t, "test_m.nope"), -1);
    cr_expect_eq(t.reported, 7, "each testcase counts, the one reported twice twice");
    for (size_t i = 0; i < t.n; i++) {
        bool twice = strcmp(t.tests[i].id, "test_m.test_twice") == 0;
        unsigned want =
            twice ? (1u << RWD_TEST_PASS) | (1u << RWD_TEST_FAIL) : 1u << t.tests[i].status;
        cr_expect_eq(t.tests[i].seen, want, "%s: seen %#x", t.tests[i].id, t.tests[i].seen);
    }
    rwd_tests_free(&t);
}

Test(results, junit_malformed_and_hostile)
{
    struct rwd_tests t;
    cr_expect_eq(rwd_junit_parse("<testsuite>", 11, &t), CRU_EPARSE);
    cr_expect_eq(rwd_junit_parse("", 0, &t), CRU_EPARSE);
    cr_expect_eq(rwd_junit_parse("<html/>", 7, &t), CRU_EPARSE);
    cr_expect(strstr(cru_err_msg(), "<html>") != NULL, "%s", cru_err_msg());
    cr_expect_eq(rwd_junit_parse("<testsuite><testcase/></testsuite>", 34, &t), CRU_EPARSE);
    /* An entity bomb is refused without being expanded. */
    char bomb[4096];
    int n = snprintf(bomb, sizeof(bomb),
                     "<?xml version=\"1.0\"?>\n<!DOCTYPE t [\n"
                     "<!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\">\n");
    for (int i = 1; i < 10; i++)
        n += snprintf(bomb + n, sizeof(bomb) - (size_t)n,
                      "<!ENTITY %c \"&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;\">\n", 'a' + i,
                      'a' + i - 1, 'a' + i - 1, 'a' + i - 1, 'a' + i - 1, 'a' + i - 1, 'a' + i - 1,
                      'a' + i - 1, 'a' + i - 1, 'a' + i - 1, 'a' + i - 1);
    n += snprintf(bomb + n, sizeof(bomb) - (size_t)n,
                  "]>\n<testsuite><testcase name=\"&j;\"/></testsuite>\n");
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_expect_eq(rwd_junit_parse(bomb, (size_t)n, &t), CRU_EPARSE);
    clock_gettime(CLOCK_MONOTONIC, &b);
    cr_expect(strstr(cru_err_msg(), "has a DOCTYPE") != NULL, "%s", cru_err_msg());
    cr_expect_lt(b.tv_sec - a.tv_sec, 5, "the bomb was expanded");
}

Test(results, tap)
{
    const char *tap = "TAP version 13\n1..6\nok 1 - adds\nnot ok 2 - subtracts\n"
                      "  ---\n  message: x\n  ...\nok 3 skipped one # SKIP no network\n"
                      "not ok 4 - later # TODO not yet\nok 5\n# a comment\nok 6 - a \\# b\r\n";
    struct rwd_tests t;
    cr_assert_eq(rwd_tap_parse(tap, strlen(tap), &t), 0, "%s", cru_err_msg());
    cr_expect(t.has_plan);
    cr_expect_eq(t.planned, 6);
    cr_expect_eq(t.n, 6);
    cr_expect_eq(t.reported, 6);
    cr_expect_eq(rwd_tests_find(&t, "adds"), RWD_TEST_PASS);
    cr_expect_eq(rwd_tests_find(&t, "subtracts"), RWD_TEST_FAIL);
    cr_expect_eq(rwd_tests_find(&t, "skipped one"), RWD_TEST_SKIP);
    cr_expect_eq(rwd_tests_find(&t, "later"), RWD_TEST_SKIP);
    cr_expect_eq(rwd_tests_find(&t, "5"), RWD_TEST_PASS);
    cr_expect_eq(rwd_tests_find(&t, "a \\# b"), RWD_TEST_PASS);
    cr_expect(!t.bailed_out);
    rwd_tests_free(&t);
    cr_assert_eq(rwd_tap_parse("ok 1 - a\nBail out! db down\n", 27, &t), 0);
    cr_expect(t.bailed_out);
    cr_expect(!t.has_plan);
    rwd_tests_free(&t);
    cr_expect_eq(rwd_tap_parse("not ok\n", 7, &t), CRU_EPARSE);
}

Test(results, tap_plans_and_repeats)
{
    struct rwd_tests t;
    /* "1..0" is a plan (of nothing), not the absence of one */
    const char *none = "1..0 # SKIP no database\n";
    cr_assert_eq(rwd_tap_parse(none, strlen(none), &t), 0, "%s", cru_err_msg());
    cr_expect(t.has_plan);
    cr_expect_eq(t.planned, 0);
    cr_expect_eq(t.n, 0);
    rwd_tests_free(&t);
    /* a plan at the end counts; a second one is malformed TAP */
    const char *end = "ok 1 - a\nok 2 - b\n1..2\n";
    cr_assert_eq(rwd_tap_parse(end, strlen(end), &t), 0, "%s", cru_err_msg());
    cr_expect(t.has_plan);
    cr_expect_eq(t.planned, 2);
    rwd_tests_free(&t);
    const char *two = "1..1\nok 1 - a\n1..1\n";
    cr_expect_eq(rwd_tap_parse(two, strlen(two), &t), CRU_EPARSE);
    cr_expect(strstr(cru_err_msg(), "TAP line 3: a second plan") != NULL, "%s", cru_err_msg());
    /* "1.." without a count, and an indented subtest's plan, are not plans */
    const char *odd = "1..\n    1..3\n    ok 1 - inner\nok 1 - outer\n";
    cr_assert_eq(rwd_tap_parse(odd, strlen(odd), &t), 0, "%s", cru_err_msg());
    cr_expect(!t.has_plan);
    cr_expect_eq(t.n, 1);
    cr_expect_eq(rwd_tests_find(&t, "outer"), RWD_TEST_PASS);
    rwd_tests_free(&t);
    /* one test reported twice, with two outcomes: the worst, both remembered */
    const char *twice = "ok 1 - a\nnot ok 2 - a\nok 3 - b # skip\nok 4 - b # SKIP\n";
    cr_assert_eq(rwd_tap_parse(twice, strlen(twice), &t), 0, "%s", cru_err_msg());
    cr_expect_eq(t.n, 2);
    cr_expect_eq(t.reported, 4);
    cr_expect_eq(rwd_tests_find(&t, "a"), RWD_TEST_FAIL);
    cr_expect_eq(t.tests[0].seen, (1u << RWD_TEST_PASS) | (1u << RWD_TEST_FAIL));
    cr_expect_eq(t.tests[1].seen, 1u << RWD_TEST_SKIP);
    rwd_tests_free(&t);
}

/* ---- scoring: an image made per test ---- */

static char root[64];
static char img_dir[128], ws[128], pristine[128];

static void put(const char *base, const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", base, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    cr_assert_eq(cru_mkdir_p(p, 0755), 0, "%s", cru_err_msg());
    *slash = '/';
    cr_assert_eq(cru_file_write_atomic(p, text, strlen(text), 0644), 0, "%s", cru_err_msg());
}

static void sh(const char *cmd)
{
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void setup(void)
{
    snprintf(root, sizeof(root), "/tmp/crucible-reward-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    snprintf(img_dir, sizeof(img_dir), "%s/img-r", root);
    snprintf(ws, sizeof(ws), "%s/final", root);
    snprintf(pristine, sizeof(pristine), "%s/pristine", root);
    put(img_dir, "workspace/README", "task\n");
    put(img_dir, "solution/solve.sh", "true\n");
    put(img_dir, "hidden/check.sh", "test -f /workspace/done\n");
}

static void teardown(void)
{
    cru_remove_tree(root);
}

TestSuite(score, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(hacking, .init = setup, .fini = teardown, .timeout = 120);

/* Loads the image with REWARD as its reward spec and makes its pristine and final workspaces
 * (the final one is then changed by the test, as an agent would). */
static struct agt_image *image(const char *reward)
{
    char text[8192];
    snprintf(text, sizeof(text),
             "{\"id\": \"img-r\", \"kind\": \"coding\", \"title\": \"t\", \"prompt\": \"p\", "
             "\"limits\": {\"memory\": \"1G\"}, \"reward\": %s}",
             reward);
    put(img_dir, "image.json", text);
    struct agt_image *im = NULL;
    struct cru_buf pr = CRU_BUF_INIT;
    cr_assert_eq(agt_image_load(img_dir, &im, &pr), 0, "%s\n%s", cru_err_msg(), cru_buf_cstr(&pr));
    cru_buf_free(&pr);
    cr_assert_eq(agt_workspace_make(im, pristine), 0, "%s", cru_err_msg());
    cr_assert_eq(agt_workspace_make(im, ws), 0, "%s", cru_err_msg());
    return im;
}

/* Scores the final workspace; returns the reward and leaves the result in *res. */
static double score(const struct agt_image *im, struct rwd_result *res)
{
    cr_assert_eq(agt_score(im, ws, pristine, NULL, NULL, res), 0, "%s", cru_err_msg());
    return res->reward;
}

/* The reward of the final workspace, asserting that the first check's message contains WANT
 * (when not NULL). */
static double score_says(const struct agt_image *im, const char *want)
{
    struct rwd_result res;
    double r = score(im, &res);
    if (want)
        cr_expect(strstr(res.checks[0].message, want) != NULL, "message: %s (wanted %s)",
                  res.checks[0].message, want);
    rwd_result_free(&res);
    return r;
}

/* Criterion's assertion macros may evaluate their arguments more than once: score first. */
static void expect_reward(const struct agt_image *im, double want, const char *says)
{
    double r = score_says(im, says);
    cr_expect_float_eq(r, want, 1e-9, "reward %g, expected %g", r, want);
}

static void workspace(const char *rel, const char *text)
{
    put(ws, rel, text);
}

Test(score, tests_exit_status)
{
    struct agt_image *im = image("{\"checks\": [{\"kind\": \"tests\", \"command\": \"sh "
                                 "/hidden/check.sh\"}]}");
    expect_reward(im, 0, "exit status 1");
    workspace("done", "");
    expect_reward(im, 1, "exit status 0");
    agt_image_free(im);
}

static const char test_py[] = "from m import f\n"
                              "def test_new():\n    assert f(2) == 4\n"
                              "def test_old():\n    assert f(0) == 0\n";

Test(score, tests_junit_fail_to_pass_and_pass_to_pass)
{
    put(img_dir, "hidden/test_m.py", test_py);
    put(img_dir, "workspace/m.py", "def f(x):\n    return x\n");
    struct agt_image *im = image(
        "{\"checks\": [{\"kind\": \"tests\", \"command\": \"PYTHONPATH=/workspace python3 -m "
        "pytest -q -p "
        "no:cacheprovider --junitxml=/results/j.xml /hidden/test_m.py\", \"results\": "
        "\"junit:/results/j.xml\", \"fail_to_pass\": [\"test_m.test_new\"], \"pass_to_pass\": "
        "[\"test_m.test_old\"]}]}");
    expect_reward(im, 0, "1 of 1 fail-to-pass still failing");
    workspace("m.py", "def f(x):\n    return 2 * x\n");
    expect_reward(im, 1, "resolved");
    /* Fixing the new test while breaking the old one is not resolved. */
    workspace("m.py", "def f(x):\n    return 4 if x == 2 else 1\n");
    expect_reward(im, 0, "1 of 1 pass-to-pass broken (test_m.test_old failed)");
    /* Code that does not even import: the tests fail, nothing crashes. */
    workspace("m.py", "def f(x:\n");
    expect_reward(im, 0, "not resolved");
    agt_image_free(im);
}

Test(score, tests_tap)
{
    put(img_dir, "hidden/tap.sh",
        "echo 1..2\nif [ -f /workspace/a ]; then echo 'ok 1 - a'; else echo 'not ok 1 - a'; fi\n"
        "echo 'ok 2 - b'\n");
    struct agt_image *im = image("{\"checks\": [{\"kind\": \"tests\", \"command\": \"sh "
                                 "/hidden/tap.sh\", \"results\": \"tap\", \"fail_to_pass\": "
                                 "[\"a\"], \"pass_to_pass\": [\"b\"]}]}");
    expect_reward(im, 0, "a failed");
    workspace("a", "");
    expect_reward(im, 1, "resolved");
    agt_image_free(im);
}

/* A check that reads TAP from the workspace file tap.txt (the report under test), with the
 * lists given in LISTS (may be empty), over RESULTS ("tap" or "tap:/results/t.tap"). */
static struct agt_image *tap_image(const char *lists)
{
    char spec[1024];
    snprintf(spec, sizeof(spec),
             "{\"checks\": [{\"kind\": \"tests\", \"command\": \"cat tap.txt\", \"results\": "
             "\"tap\"%s%s}]}",
             lists[0] ? ", " : "", lists);
    return image(spec);
}

Test(score, tests_without_lists_need_every_test_run_and_passed)
{
    struct agt_image *im = tap_image("");
    /* Control: one test, passed. */
    workspace("tap.txt", "1..1\nok 1 - a\n");
    expect_reward(im, 1, "1 passed, 0 failed, 0 skipped");
    /* A skip is not a pass, even when nothing failed. */
    workspace("tap.txt", "1..1\nok 1 - a # SKIP no network\n");
    expect_reward(im, 0, "0 passed, 0 failed, 1 skipped (every test must pass)");
    workspace("tap.txt", "1..2\nok 1 - a\nok 2 - b # TODO later\n");
    expect_reward(im, 0, "1 passed, 0 failed, 1 skipped");
    /* Nothing ran: no output, only a plan of nothing, or only diagnostics. */
    workspace("tap.txt", "");
    expect_reward(im, 0, "no tests ran");
    workspace("tap.txt", "1..0 # SKIP everything\n");
    expect_reward(im, 0, "no tests ran");
    workspace("tap.txt", "# all good\n");
    expect_reward(im, 0, "no tests ran");
    /* The plan must be met exactly: fewer (a crash) or more. */
    workspace("tap.txt", "1..3\nok 1 - a\nok 2 - b\n");
    expect_reward(im, 0, "2 of 3 planned tests reported");
    workspace("tap.txt", "1..1\nok 1 - a\nok 2 - b\n");
    expect_reward(im, 0, "2 of 1 planned tests reported");
    workspace("tap.txt", "1..1\nok 1 - a\nBail out! disk full\n");
    expect_reward(im, 0, "bailed out");
    /* One test with two outcomes. */
    workspace("tap.txt", "1..2\nok 1 - a\nnot ok 2 - a\n");
    expect_reward(im, 0, "the report gives tests two outcomes (it is passed and failed): a");
    /* Control: a test reported twice with one outcome is fine. */
    workspace("tap.txt", "1..2\nok 1 - a\nok 2 - a\n");
    expect_reward(im, 1, "1 passed");
    agt_image_free(im);
}

Test(score, tests_junit_without_lists_all_skipped_fails)
{
    /* "0 passed, 1 skipped": pytest's own summary of a run that proved nothing. */
    put(img_dir, "hidden/test_s.py",
        "import pytest\n\n@pytest.mark.skipif(True, reason='x')\ndef test_s():\n    pass\n");
    put(img_dir, "hidden/test_p.py", "def test_p():\n    pass\n");
    struct agt_image *im = image(
        "{\"aggregate\": \"mean\", \"checks\": [{\"kind\": \"tests\", \"command\": \"python3 -m "
        "pytest -q -p no:cacheprovider --junitxml=/results/j.xml /hidden/test_s.py\", "
        "\"results\": \"junit:/results/j.xml\"}, {\"kind\": \"tests\", \"command\": \"python3 -m "
        "pytest -q -p no:cacheprovider --junitxml=/results/k.xml /hidden/test_p.py\", "
        "\"results\": \"junit:/results/k.xml\"}]}");
    struct rwd_result res;
    double r = score(im, &res);
    cr_expect(!res.checks[0].passed);
    cr_expect(strstr(res.checks[0].message, "0 passed, 0 failed, 1 skipped") != NULL, "%s",
              res.checks[0].message);
    /* Control: the same run with a test that passes. */
    cr_expect(res.checks[1].passed, "%s", res.checks[1].message);
    cr_expect_float_eq(r, 0.5, 1e-9);
    rwd_result_free(&res);
    agt_image_free(im);
}

Test(score, tests_lists_refuse_tests_not_listed)
{
    struct agt_image *im = tap_image("\"fail_to_pass\": [\"a\"], \"pass_to_pass\": [\"b\"]");
    /* Control: exactly the listed tests, passed. */
    workspace("tap.txt", "1..2\nok 1 - a\nok 2 - b\n");
    expect_reward(im, 1, "resolved: 1 fail-to-pass and 1 pass-to-pass tests pass");
    /* A test nobody listed: a report of something else than what the author meant to run. */
    workspace("tap.txt", "1..3\nok 1 - a\nok 2 - b\nok 3 - c\n");
    expect_reward(im, 0, "the report names tests that are not in the lists: c");
    workspace("tap.txt", "ok - a\nok - b\nok - c\nok - d\nnot ok - e\nok - f\nok - g\n");
    expect_reward(im, 0, "not in the lists: c, d, e and 2 more");
    /* A listed test missing or skipped is not resolved (as before). */
    workspace("tap.txt", "1..1\nok 1 - b\n");
    expect_reward(im, 0, "1 of 1 fail-to-pass still failing (a did not run)");
    workspace("tap.txt", "1..2\nok 1 - a # SKIP\nok 2 - b\n");
    expect_reward(im, 0, "(a skipped)");
    /* A listed test with two outcomes. */
    workspace("tap.txt", "1..3\nok 1 - a\nok 2 - b\nnot ok 3 - a\n");
    expect_reward(im, 0, "two outcomes (it is passed and failed): a");
    agt_image_free(im);
}

Test(score, tests_tap_file)
{
    /* The report is a file the command writes; its stdout is not read. */
    put(img_dir, "hidden/tap.sh",
        "echo '1..1'; echo 'ok 1 - a'\n"
        "if [ -f /workspace/a ]; then r=ok; else r='not ok'; fi\n"
        "printf '1..1\\n%s 1 - a\\n' \"$r\" > /results/t.tap\n");
    struct agt_image *im = image("{\"checks\": [{\"kind\": \"tests\", \"command\": \"sh "
                                 "/hidden/tap.sh\", \"results\": \"tap:/results/t.tap\", "
                                 "\"fail_to_pass\": [\"a\"]}]}");
    expect_reward(im, 0, "1 of 1 fail-to-pass still failing (a failed)");
    workspace("a", "");
    expect_reward(im, 1, "resolved");
    agt_image_free(im);
    /* No file written: the check fails, whatever the command printed. */
    cru_remove_tree(ws);
    cru_remove_tree(pristine);
    im = image("{\"checks\": [{\"kind\": \"tests\", \"command\": \"echo 1..1; echo ok 1 - a\", "
               "\"results\": \"tap:/results/t.tap\"}]}");
    expect_reward(im, 0, "no TAP report at /results/t.tap");
    agt_image_free(im);
}

Test(score, command_scores_and_timeouts)
{
    struct agt_image *im = image(
        "{\"aggregate\": \"mean\", \"checks\": [{\"kind\": \"command\", \"command\": \"echo "
        "progress; echo 0.25\"}, {\"kind\": \"command\", \"command\": \"sleep 30\", \"timeout\": "
        "\"1s\"}, {\"kind\": \"command\", \"command\": \"echo 7\"}, {\"kind\": \"command\", "
        "\"command\": \"exit 0\", \"weight\": 2}]}");
    struct rwd_result res;
    double r = score(im, &res);
    cr_expect_eq(res.checks[0].score, 0.25);
    cr_expect(!res.checks[0].passed);
    cr_expect(!res.checks[1].passed);
    cr_expect(strstr(res.checks[1].message, "timed out") != NULL, "%s", res.checks[1].message);
    cr_expect_lt(res.checks[1].duration_ms, 10000);
    cr_expect(strstr(res.checks[2].message, "not a score") != NULL, "%s", res.checks[2].message);
    cr_expect(res.checks[3].passed);
    cr_expect_float_eq(r, (0.25 + 0 + 0 + 2 * 1) / 5.0, 1e-9);
    rwd_result_free(&res);
    agt_image_free(im);
}

Test(score, aggregations)
{
    const char *checks = "[{\"kind\": \"file_exists\", \"path\": \"a\"}, {\"kind\": "
                         "\"file_exists\", \"path\": \"b\", \"weight\": 3}]";
    char spec[512];
    snprintf(spec, sizeof(spec), "{\"aggregate\": \"all\", \"checks\": %s}", checks);
    struct agt_image *im = image(spec);
    workspace("b", "");
    expect_reward(im, 0, NULL);
    agt_image_free(im);
    cru_remove_tree(ws);
    cru_remove_tree(pristine);
    snprintf(spec, sizeof(spec), "{\"aggregate\": \"mean\", \"checks\": %s}", checks);
    im = image(spec);
    workspace("b", "");
    expect_reward(im, 0.75, NULL);
    agt_image_free(im);
    cru_remove_tree(ws);
    cru_remove_tree(pristine);
    snprintf(spec, sizeof(spec), "{\"aggregate\": \"partial\", \"checks\": %s}", checks);
    im = image(spec);
    workspace("b", "");
    expect_reward(im, 0.375, NULL);
    workspace("a", "");
    expect_reward(im, 1, NULL);
    agt_image_free(im);
}

Test(score, file_exists_and_sha256)
{
    struct agt_image *im =
        image("{\"aggregate\": \"mean\", \"checks\": [{\"kind\": \"file_exists\", \"path\": "
              "\"out/r.txt\"}, {\"kind\": \"file_sha256\", \"path\": \"out/r.txt\", \"sha256\": "
              "\"5891B5B522D5DF086D0FF0B110FBD9D21BB4FC7163AF34D08286A2E846F6BE03\"}]}");
    expect_reward(im, 0, "does not exist");
    workspace("out/r.txt", "hello\n");
    expect_reward(im, 1, "exists");
    workspace("out/r.txt", "hello!\n");
    expect_reward(im, 0.5, NULL);
    agt_image_free(im);
}

Test(score, text)
{
    struct agt_image *im = image(
        "{\"checks\": [{\"kind\": \"text\", \"path\": \"r.md\", \"contains\": [\"# Report\"], "
        "\"not_contains\": [\"TODO\"], \"regex\": [\"(?m)^Total: \\\\d+$\"]}]}");
    expect_reward(im, 0, "does not exist");
    workspace("r.md", "# Report\nTotal: 12\n");
    expect_reward(im, 1, "expected text");
    workspace("r.md", "# Report\nTotal: 12\nTODO\n");
    expect_reward(im, 0, "contains \"TODO\"");
    workspace("r.md", "# Report\nTotal: twelve\n");
    expect_reward(im, 0, "does not match");
    workspace("r.md", "# Report\nTotal: 12\n\xff\xfe\n");
    expect_reward(im, 0, "not valid UTF-8");
    agt_image_free(im);
}

Test(score, json)
{
    struct agt_image *im =
        image("{\"aggregate\": \"mean\", \"checks\": [{\"kind\": \"json\", \"path\": \"r.json\", "
              "\"pointer\": \"/totals/0/sum\", \"equals\": 10.5, \"tolerance\": 0.01}, {\"kind\": "
              "\"json\", \"path\": \"r.json\", \"pointer\": \"/a~1b\", \"equals\": {\"k\": [1, "
              "\"x\"]}}]}");
    workspace("r.json", "{\"totals\": [{\"sum\": 10.504}], \"a/b\": {\"k\": [1.0, \"x\"]}}");
    expect_reward(im, 1, "as expected");
    workspace("r.json", "{\"totals\": [{\"sum\": 10.6}], \"a/b\": {\"k\": [1, \"y\"]}}");
    expect_reward(im, 0, "is 10.6");
    workspace("r.json", "{\"totals\": []}");
    expect_reward(im, 0, "nothing at");
    workspace("r.json", "{\"totals\": [");
    expect_reward(im, 0, "r.json:1:");
    agt_image_free(im);
}

Test(score, csv)
{
    struct agt_image *im =
        image("{\"checks\": [{\"kind\": \"csv\", \"path\": \"o.csv\", \"unordered\": true, "
              "\"tolerance\": 0.01, \"columns\": [\"region\", \"total\"], \"row_count\": 2, "
              "\"cells\": [{\"row\": 0, \"column\": \"total\", \"equals\": 12.5}], \"rows\": "
              "[[\"south\", 3], [\"north\", 12.5]]}]}");
    workspace("o.csv", "region,total\r\nnorth,12.499\r\nsouth,3\r\n");
    expect_reward(im, 1, "as expected");
    workspace("o.csv", "region,total\nsouth,3\nnorth,12.5\n");
    expect_reward(im, 0, "row 0");
    workspace("o.csv", "region,sum\nnorth,12.5\nsouth,3\n");
    expect_reward(im, 0, "header");
    workspace("o.csv", "region,total\nnorth,12.5\n");
    expect_reward(im, 0, "has 1 rows");
    workspace("o.csv", "region,total\n\"north,12.5\nsouth,3\n");
    expect_reward(im, 0, "o.csv");
    agt_image_free(im);
}

/* Runs a Python program on the host to make an office file in the final workspace. */
static void python(const char *program)
{
    char path[256], cmd[512];
    snprintf(path, sizeof(path), "%s/make.py", root);
    cr_assert_eq(cru_file_write_atomic(path, program, strlen(program), 0644), 0);
    snprintf(cmd, sizeof(cmd), "cd %s && /usr/bin/python3 %s", ws, path);
    sh(cmd);
}

Test(score, xlsx)
{
    struct agt_image *im = image(
        "{\"checks\": [{\"kind\": \"xlsx\", \"path\": \"b.xlsx\", \"tolerance\": 0.001, "
        "\"cells\": [{\"sheet\": \"Data\", \"ref\": \"A1\", \"equals\": \"name\"}, {\"sheet\": "
        "\"Data\", \"ref\": \"B2\", \"equals\": 2.5}, {\"sheet\": \"Summary\", \"ref\": \"A1\", "
        "\"formula\": true}, {\"sheet\": \"Summary\", \"ref\": \"B1\", \"equals\": true}]}]}");
    python("import openpyxl\nwb = openpyxl.Workbook()\nws = wb.active\nws.title = 'Data'\n"
           "ws.append(['name', 'value'])\nws.append(['a', 2.5])\ns = wb.create_sheet('Summary')\n"
           "s['A1'] = '=SUM(Data!B2:B2)'\ns['B1'] = True\nwb.save('b.xlsx')\n");
    expect_reward(im, 1, "4 cells as expected");
    python("import openpyxl\nwb = openpyxl.Workbook()\nws = wb.active\nws.title = 'Data'\n"
           "ws.append(['name', 'value'])\nws.append(['a', 2.6])\ns = wb.create_sheet('Summary')\n"
           "s['A1'] = 5\ns['B1'] = True\nwb.save('b.xlsx')\n");
    expect_reward(im, 0, "Data!B2 is 2.6");
    workspace("b.xlsx", "PK\3\4 this is not a workbook");
    expect_reward(im, 0, "b.xlsx: ");
    agt_image_free(im);
}

Test(score, docx)
{
    struct agt_image *im = image(
        "{\"checks\": [{\"kind\": \"docx\", \"path\": \"r.docx\", \"contains\": [\"revenue "
        "grew\"], \"headings\": [{\"text\": \"Summary\", \"level\": 1}, {\"text\": \"Details\", "
        "\"level\": 2}], \"tables\": [{\"cells\": [{\"row\": 0, \"column\": 1, \"equals\": "
        "\"Q1\"}, {\"row\": 1, \"column\": 1, \"equals\": \"10\"}]}]}]}");
    python("import docx\nd = docx.Document()\nd.add_heading('Summary', level=1)\n"
           "d.add_paragraph('In short, revenue grew.')\nd.add_heading('Details', level=2)\n"
           "t = d.add_table(rows=2, cols=2)\nt.cell(0, 1).text = 'Q1'\nt.cell(1, 1).text = '10'\n"
           "d.save('r.docx')\n");
    expect_reward(im, 1, "expected content");
    python("import docx\nd = docx.Document()\nd.add_heading('Summary', level=2)\n"
           "d.add_paragraph('In short, revenue grew.')\nd.save('r.docx')\n");
    expect_reward(im, 0, "no heading \"Summary\"");
    workspace("r.docx", "");
    expect_reward(im, 0, "r.docx: ");
    agt_image_free(im);
}

/* ---- reward hacking ---- */

static const char visible_test[] = "from m import f\ndef test_f():\n    assert f(2) == 4\n";
static const char junit_spec[] =
    "{\"protected\": [\"tests\"], \"checks\": [{\"kind\": \"tests\", \"command\": \"python3 -m "
    "pytest -q -p no:cacheprovider --junitxml=/results/j.xml tests\", \"results\": "
    "\"junit:/results/j.xml\", \"fail_to_pass\": [\"tests.test_m.test_f\"]}]}";

Test(hacking, editing_or_deleting_the_tests_earns_nothing)
{
    put(img_dir, "workspace/tests/__init__.py", "");
    put(img_dir, "workspace/tests/test_m.py", visible_test);
    put(img_dir, "workspace/m.py", "def f(x):\n    return x\n");
    struct agt_image *im = image(junit_spec);
    struct rwd_result res;
    double reward;
    /* Control: a real fix passes, and nothing is reported as changed. */
    workspace("m.py", "def f(x):\n    return 2 * x\n");
    reward = score(im, &res);
    cr_expect_eq(reward, 1, "%s", res.checks[0].message);
    cr_expect_eq(res.n_protected_changed, 0);
    rwd_result_free(&res);
    /* The attack: the code stays wrong, the test is made to pass. */
    workspace("m.py", "def f(x):\n    return x\n");
    workspace("tests/test_m.py", "def test_f():\n    assert True\n");
    reward = score(im, &res);
    cr_expect_eq(reward, 0, "editing the test earned reward: %s", res.checks[0].message);
    cr_assert_eq(res.n_protected_changed, 1);
    cr_expect_str_eq(res.protected_changed[0], "tests");
    rwd_result_free(&res);
    /* Deleting them, or replacing the folder with a link to a folder of passing tests. */
    char p[256];
    snprintf(p, sizeof(p), "%s/tests", ws);
    cru_remove_tree(p);
    reward = score(im, &res);
    cr_expect_eq(reward, 0);
    cr_expect_eq(res.n_protected_changed, 1);
    rwd_result_free(&res);
    put(root, "fake/__init__.py", "");
    put(root, "fake/test_m.py", "def test_f():\n    assert True\n");
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "ln -s %s/fake %s/tests", root, ws);
    sh(cmd);
    reward = score(im, &res);
    cr_expect_eq(reward, 0);
    cr_expect_eq(res.n_protected_changed, 1);
    rwd_result_free(&res);
    /* With protected_fail, any change fails every check outright. */
    agt_image_free(im);
    cru_remove_tree(ws);
    cru_remove_tree(pristine);
    char spec[1024];
    snprintf(spec, sizeof(spec), "{\"protected_fail\": true, %s", junit_spec + 1);
    im = image(spec);
    workspace("m.py", "def f(x):\n    return 2 * x\n");
    workspace("tests/extra.py", "");
    reward = score(im, &res);
    cr_expect_eq(reward, 0);
    cr_expect(strstr(res.checks[0].message, "protected path tests was changed") != NULL, "%s",
              res.checks[0].message);
    rwd_result_free(&res);
    agt_image_free(im);
}

/* Code under test that writes the report itself: the checker runs it as the artifact, which
 * cannot reach /results, so its forged report never stands. The control is the same code run
 * as the checker (one uid for both), whose report is read and passes. */
Test(hacking, a_report_forged_by_the_code_under_test_is_not_read)
{
    static const char forge[] =
        "printf '<testsuite><testcase classname=\"t\" name=\"x\"/></testsuite>' "
        "> /results/report.xml 2>/dev/null; exit 0\n";
    static const char spec[] = "{\"checks\": [{\"kind\": \"tests\", \"command\": \"%s sh "
                               "/workspace/forge.sh\", \"results\": \"junit:/results/report.xml\", "
                               "\"fail_to_pass\": [\"t.x\"]}]}";
    char text[512];
    put(img_dir, "workspace/forge.sh", forge);
    snprintf(text, sizeof(text), spec, "setpriv --reuid=1000 --regid=1000 --clear-groups --");
    struct agt_image *im = image(text);
    expect_reward(im, 0, "no JUnit report");
    agt_image_free(im);
    cru_remove_tree(ws);
    cru_remove_tree(pristine);
    snprintf(text, sizeof(text), spec, "");
    im = image(text);
    expect_reward(im, 1, "resolved");
    agt_image_free(im);
}

Test(hacking, a_symlink_to_a_host_file_is_not_followed)
{
    /* The expected output is the first line of the host's /etc/passwd. */
    struct agt_image *im = image("{\"checks\": [{\"kind\": \"text\", \"path\": \"out.txt\", "
                                 "\"contains\": [\"root:x:0:0\"]}]}");
    /* Control: a regular file with that content passes. */
    workspace("out.txt", "root:x:0:0:root:/root:/bin/bash\n");
    expect_reward(im, 1, NULL);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm %s/out.txt && ln -s /etc/passwd %s/out.txt", ws, ws);
    sh(cmd);
    expect_reward(im, 0, "out.txt");
    snprintf(cmd, sizeof(cmd), "rm %s/out.txt && ln -s ../../../../../etc/passwd %s/out.txt", ws,
             ws);
    sh(cmd);
    expect_reward(im, 0, "out.txt");
    agt_image_free(im);
}

/* A folder of host files, only root may read, outside the image. */
static void host_secret(char *dir, size_t cap)
{
    char cmd[1024];
    snprintf(dir, cap, "%s/outside", root);
    snprintf(cmd, sizeof(cmd),
             "mkdir -p %s && echo 'the host secret' > %s/secret.txt && chmod 600 %s/secret.txt",
             dir, dir, dir);
    sh(cmd);
}

/* hidden/ replaced by a link to host files after the image was loaded: the checker refuses to
 * copy it rather than showing the host's files at /hidden. The control: the real folder is
 * copied and the check sees it. */
Test(hacking, hidden_swapped_for_a_link_is_not_followed)
{
    char outside[256], cmd[1024];
    host_secret(outside, sizeof(outside));
    struct agt_image *im = image("{\"checks\": [{\"kind\": \"command\", \"command\": "
                                 "\"test -f /hidden/check.sh && test ! -e /hidden/secret.txt\"}]}");
    expect_reward(im, 1, NULL);
    snprintf(cmd, sizeof(cmd), "mv %s/hidden %s/hidden-real && ln -s %s %s/hidden", img_dir,
             img_dir, outside, img_dir);
    sh(cmd);
    struct rwd_result res;
    cr_expect_eq(agt_score(im, ws, pristine, NULL, NULL, &res), CRU_EUNSAFE,
                 "the hidden link was followed (%s)", cru_err_msg());
    cr_expect(strstr(cru_err_msg(), "hidden") != NULL, "%s", cru_err_msg());
    rwd_result_free(&res);
    agt_image_free(im);
}

/* A protected path that the image's own workspace holds as a link to a host folder is restored
 * as that link, never as a copy of the host folder it names. */
Test(hacking, a_protected_link_is_restored_as_a_link)
{
    char outside[256], cmd[1024];
    host_secret(outside, sizeof(outside));
    snprintf(cmd, sizeof(cmd), "ln -s %s %s/workspace/tests", outside, img_dir);
    sh(cmd);
    struct agt_image *im =
        image("{\"protected\": [\"tests\"], \"checks\": [{\"kind\": \"command\", \"command\": "
              "\"test -L /workspace/tests && test ! -e /workspace/tests/secret.txt\"}]}");
    expect_reward(im, 1, NULL);
    agt_image_free(im);
}

Test(hacking, a_background_process_left_behind_changes_nothing)
{
    struct agt_image *im = image("{\"checks\": [{\"kind\": \"text\", \"path\": \"answer.txt\", "
                                 "\"contains\": [\"42\"]}]}");
    workspace("answer.txt", "7\n");
    /* The agent's sandbox leaves a daemon that writes the answer a little later. */
    struct sbx_opts o = SBX_OPTS_INIT;
    o.workspace = ws;
    o.workspace_bind = true;
    struct sbx *agent;
    cr_assert_eq(sbx_new(&agent, &o), 0, "%s", cru_err_msg());
    struct sbx_cmd c = SBX_CMD_INIT;
    struct sbx_result r = { 0 };
    c.shell = "setsid sh -c 'sleep 1; echo 42 > /workspace/answer.txt' >/dev/null 2>&1 &";
    cr_assert_eq(sbx_exec(agent, &c, &r), 0, "%s", cru_err_msg());
    sbx_result_free(&r);
    /* Control: while the agent's sandbox lives, the daemon does its work. */
    sleep(2);
    struct cru_buf b = CRU_BUF_INIT;
    char p[256];
    snprintf(p, sizeof(p), "%s/answer.txt", ws);
    cr_assert_eq(cru_file_read(p, 64, &b), 0);
    cr_expect_str_eq(cru_buf_cstr(&b), "42\n", "the daemon did not run: the control failed");
    cru_buf_free(&b);
    /* The attack: the agent stops (its sandbox is destroyed) before the daemon writes. */
    workspace("answer.txt", "7\n");
    cr_assert_eq(sbx_exec(agent, &c, &r), 0, "%s", cru_err_msg());
    sbx_result_free(&r);
    sbx_free(agent);
    struct rwd_result res;
    double reward;
    reward = score(im, &res);
    cr_expect_eq(reward, 0, "the daemon's late answer earned reward");
    rwd_result_free(&res);
    sleep(2);
    cr_assert_eq(cru_file_read(p, 64, &b), 0);
    cr_expect_str_eq(cru_buf_cstr(&b), "7\n", "a process outlived the agent's sandbox");
    cru_buf_free(&b);
    agt_image_free(im);
}

Test(hacking, a_fifo_or_a_huge_file_does_not_break_the_checker)
{
    struct agt_image *im = image("{\"aggregate\": \"mean\", \"checks\": [{\"kind\": \"text\", "
                                 "\"path\": \"pipe\", \"contains\": [\"x\"]}, {\"kind\": "
                                 "\"file_exists\", \"path\": \"README\"}]}");
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "mkfifo %s/pipe", ws);
    sh(cmd);
    struct rwd_result res;
    double reward;
    reward = score(im, &res);
    cr_expect_float_eq(reward, 0.5, 1e-9);
    cr_expect(!res.checks[0].passed);
    cr_expect(res.checks[1].passed);
    rwd_result_free(&res);
    agt_image_free(im);
}

/* ---- the image check: oracle and no-op ---- */

Test(score, image_check_oracle_and_noop)
{
    put(img_dir, "workspace/m.py", "def f(x):\n    return x\n");
    put(img_dir, "hidden/test_m.py", "from m import f\ndef test_f():\n    assert f(2) == 4\n");
    put(img_dir, "solution/solve.sh", "cp /solution/m.py /workspace/m.py\n");
    put(img_dir, "solution/m.py", "def f(x):\n    return 2 * x\n");
    struct agt_image *im = image("{\"checks\": [{\"kind\": \"tests\", \"command\": "
                                 "\"PYTHONPATH=/workspace python3 -m pytest -q -p "
                                 "no:cacheprovider /hidden/test_m.py\"}]}");
    struct agt_image_check c;
    cr_assert_eq(agt_image_check(im, NULL, &c), 0, "%s", cru_err_msg());
    cr_expect(c.ran && c.pass, "oracle %g, no-op %g", c.oracle, c.noop);
    cr_expect_eq(c.oracle, 1);
    cr_expect_eq(c.noop, 0);
    agt_image_check_free(&c);
    agt_image_free(im);

    /* A patch solution, and a setup command that runs before it. */
    cru_remove_tree(ws);
    cru_remove_tree(pristine);
    char p[256];
    snprintf(p, sizeof(p), "%s/solution/solve.sh", img_dir);
    cr_assert_eq(unlink(p), 0);
    put(img_dir, "solution/solution.patch",
        "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n def f(x):\n"
        "-    return x\n+    return 2 * x\n");
    im = image(
        "{\"checks\": [{\"kind\": \"command\", \"command\": \"test -f /workspace/set && "
        "PYTHONPATH=/workspace python3 -m pytest -q -p no:cacheprovider /hidden/test_m.py\"}]}");
    free(im->setup);
    im->setup = calloc(1, sizeof(char *));
    im->setup[0] = strdup("touch set");
    im->n_setup = 1;
    cr_assert_eq(agt_image_check(im, NULL, &c), 0, "%s", cru_err_msg());
    cr_expect(c.ran && c.pass, "oracle %g, no-op %g", c.oracle, c.noop);
    agt_image_check_free(&c);

    /* A solution that does not apply is an error that says so. */
    put(img_dir, "solution/solution.patch",
        "diff --git a/zz b/zz\n--- a/zz\n+++ b/zz\n@@ -1 +1 @@\n-a\n+b\n");
    cr_assert_lt(agt_image_check(im, NULL, &c), 0);
    cr_expect(!c.ran && c.error && strstr(c.error, "the reference solution failed"), "%s",
              c.error ? c.error : "(no error)");
    agt_image_check_free(&c);
    agt_image_free(im);
}
