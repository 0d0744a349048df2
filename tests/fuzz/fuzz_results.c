/* fuzz/results: the JUnit XML and TAP readers on arbitrary bytes.
 *
 * The first byte picks the reader (even: JUnit, odd: TAP); the rest is the report. Any input
 * parses or fails with a negative code and a message, never crashes. Parsed results are
 * sorted by id with no id twice, each status one of pass, skip or fail and the worst of the
 * statuses the test was seen with, every id is found again by rwd_tests_find with its status,
 * and no fewer results were reported than there are tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "reward/results.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct rwd_tests t;
    const char *text = (const char *)data + 1;
    cru_err_clear();
    int rc =
        data[0] % 2 == 0 ? rwd_junit_parse(text, size - 1, &t) : rwd_tap_parse(text, size - 1, &t);
    if (rc < 0) {
        if (cru_err_code() != rc || cru_err_msg()[0] == '\0') {
            fprintf(stderr, "fuzz_results: failure %d without a matching message\n", rc);
            abort();
        }
        return 0;
    }
    for (size_t i = 0; i < t.n; i++) {
        if (i > 0 && strcmp(t.tests[i - 1].id, t.tests[i].id) >= 0) {
            fprintf(stderr, "fuzz_results: ids out of order or repeated at %zu\n", i);
            abort();
        }
        if (t.tests[i].status > RWD_TEST_FAIL ||
            rwd_tests_find(&t, t.tests[i].id) != (int)t.tests[i].status) {
            fprintf(stderr, "fuzz_results: test %s is not found with its status\n", t.tests[i].id);
            abort();
        }
        /* the status kept is the worst of those seen, and it was seen */
        unsigned seen = t.tests[i].seen;
        if (!(seen & (1u << t.tests[i].status)) || seen >> (t.tests[i].status + 1) != 0) {
            fprintf(stderr, "fuzz_results: test %s has status %d but was seen as %#x\n",
                    t.tests[i].id, (int)t.tests[i].status, seen);
            abort();
        }
    }
    if (t.reported < t.n || (!t.has_plan && t.planned != 0)) {
        fprintf(stderr, "fuzz_results: %zu reported for %zu tests, plan %d/%zu\n", t.reported, t.n,
                (int)t.has_plan, t.planned);
        abort();
    }
    rwd_tests_free(&t);
    return 0;
}
