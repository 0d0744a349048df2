/* Tests for lib/clock: monotonic time and deadline arithmetic (no timing assertions beyond
 * ordering: performance belongs in bench/). */
#include <criterion/criterion.h>
#include <stdint.h>

#include "lib/clock.h"

Test(clock, monotonic_and_sleep)
{
    uint64_t a = cru_now_ns();
    cru_sleep_ms(5);
    uint64_t b = cru_now_ns();
    cr_assert_geq(b - a, 5 * CRU_NS_PER_MS, "sleep must last at least as long as asked");
    cr_assert_geq(cru_elapsed_ms(a), 5);
    cr_assert_eq(cru_elapsed_ms(b + CRU_NS_PER_S), 0, "a start in the future is 0");
}

Test(clock, deadlines)
{
    cr_assert_eq(cru_deadline_ms(0), 0);
    cr_assert_eq(cru_deadline_left_ms(0), UINT64_MAX);
    cr_assert_not(cru_deadline_passed(0));

    uint64_t d = cru_deadline_ms(60000);
    uint64_t left = cru_deadline_left_ms(d);
    cr_assert_leq(left, 60000);
    cr_assert_gt(left, 50000);
    cr_assert_not(cru_deadline_passed(d));

    uint64_t past = cru_now_ns() - 1;
    cr_assert(cru_deadline_passed(past));
    cr_assert_eq(cru_deadline_left_ms(past), 0);

    cr_assert_eq(cru_deadline_ms(UINT64_MAX), UINT64_MAX, "absurd timeouts saturate");
}
