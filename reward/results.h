/* results: per-test results of a `tests` check, read from a JUnit XML report or TAP output.
 *
 * A test id is what the spec's fail_to_pass and pass_to_pass lists name: for JUnit, the
 * testcase's classname and name joined with "." (the name alone when there is no classname);
 * for TAP, the description after the test number and an optional "- ". A test that appears
 * more than once (a retried or parametrised test reported twice) keeps its worst status.
 */
#ifndef CRU_REWARD_RESULTS_H
#define CRU_REWARD_RESULTS_H

#include <stddef.h>

enum rwd_test_status {
    RWD_TEST_PASS,
    RWD_TEST_SKIP,
    RWD_TEST_FAIL,
};

struct rwd_test {
    char *id;
    enum rwd_test_status status;
};

struct rwd_tests {
    struct rwd_test *tests; /* sorted by id, unique */
    size_t n;
    size_t planned; /* TAP: the plan's count (1..N), or 0 when there is none */
    int bailed_out; /* TAP: "Bail out!" was seen */
};

/* The largest report read, and the most tests kept. */
#define RWD_RESULTS_MAX_BYTES ((size_t)64 << 20)
#define RWD_RESULTS_MAX_TESTS 200000

/* Parses a JUnit XML report (<testsuites>/<testsuite>/<testcase>, with <failure>, <error> or
 * <skipped> children). No DTD, entity or external load is honoured. CRU_EPARSE for anything
 * that is not such a report, with the reason. */
int rwd_junit_parse(const char *xml, size_t len, struct rwd_tests *out);

/* Parses TAP (version 12 or 13): "ok N - desc", "not ok N - desc", "# SKIP" and "# TODO"
 * directives (a skipped test is SKIP; a failing TODO test is not a failure, so SKIP too), the
 * plan "1..N", and "Bail out!". Other lines (diagnostics, YAML blocks) are ignored. */
int rwd_tap_parse(const char *text, size_t len, struct rwd_tests *out);

void rwd_tests_free(struct rwd_tests *t);

/* The status of test ID, or -1 when it did not run. */
int rwd_tests_find(const struct rwd_tests *t, const char *id);

#endif
