/* results: per-test results of a `tests` check, read from a JUnit XML report or TAP output.
 *
 * A test id is what the spec's fail_to_pass and pass_to_pass lists name: for JUnit, the
 * testcase's classname and name joined with "." (the name alone when there is no classname);
 * for TAP, the description after the test number and an optional "- ". A test that appears
 * more than once keeps its worst status, and remembers every status it was reported with, so
 * that a judge can refuse a report that gives one test two outcomes.
 */
#ifndef CRU_REWARD_RESULTS_H
#define CRU_REWARD_RESULTS_H

#include <stdbool.h>
#include <stddef.h>

enum rwd_test_status {
    RWD_TEST_PASS,
    RWD_TEST_SKIP,
    RWD_TEST_FAIL,
};

struct rwd_test {
    char *id;
    enum rwd_test_status status; /* the worst it was reported with */
    unsigned seen;               /* 1 << status for each status it was reported with */
};

struct rwd_tests {
    struct rwd_test *tests; /* sorted by id, unique */
    size_t n;
    size_t reported; /* results in the report, a test reported twice counted twice */
    bool has_plan;   /* TAP: a plan "1..N" was seen */
    size_t planned;  /* TAP: the plan's count N (0 for "1..0", or without a plan) */
    int bailed_out;  /* TAP: "Bail out!" was seen */
};

/* The largest report read, and the most tests kept. */
#define RWD_RESULTS_MAX_BYTES ((size_t)64 << 20)
#define RWD_RESULTS_MAX_TESTS 200000

/* Parses a JUnit XML report (<testsuites>/<testsuite>/<testcase>, with <failure>, <error> or
 * <skipped> children). No DTD, entity or external load is honoured. CRU_EPARSE for anything
 * that is not such a report, with the reason. */
int rwd_junit_parse(const char *xml, size_t len, struct rwd_tests *out);

/* Parses TAP (version 12 or 13): "ok N - desc", "not ok N - desc", "# SKIP" and "# TODO"
 * directives (a skipped test is SKIP; a TODO test is not a pass or a failure, so SKIP too),
 * the plan "1..N", and "Bail out!". Other lines (diagnostics, YAML blocks, indented subtests)
 * are ignored. A second plan is CRU_EPARSE, as in TAP. */
int rwd_tap_parse(const char *text, size_t len, struct rwd_tests *out);

void rwd_tests_free(struct rwd_tests *t);

/* The status of test ID, or -1 when it did not run. */
int rwd_tests_find(const struct rwd_tests *t, const char *id);

#endif
