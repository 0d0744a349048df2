/* clock: monotonic time, durations and deadlines.
 *
 * All timing in crucible (limits, budgets, reported durations) uses CLOCK_MONOTONIC, which
 * never jumps with the wall clock. Deadlines are absolute monotonic nanoseconds; 0 means none.
 */
#ifndef CRU_LIB_CLOCK_H
#define CRU_LIB_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#define CRU_NS_PER_MS 1000000ull
#define CRU_NS_PER_S  1000000000ull

/* Nanoseconds on the monotonic clock (an arbitrary but fixed origin). */
uint64_t cru_now_ns(void);

/* Milliseconds elapsed since START_NS (a cru_now_ns() value); 0 if START_NS is in the future. */
uint64_t cru_elapsed_ms(uint64_t start_ns);

/* A deadline TIMEOUT_MS from now; 0 (no deadline) when TIMEOUT_MS is 0. Saturates instead of
 * wrapping for absurd timeouts. */
uint64_t cru_deadline_ms(uint64_t timeout_ms);

/* Milliseconds left before DEADLINE_NS (rounded up, so only a passed deadline gives 0);
 * UINT64_MAX for no deadline. */
uint64_t cru_deadline_left_ms(uint64_t deadline_ns);
bool cru_deadline_passed(uint64_t deadline_ns);

/* Sleeps for MS milliseconds, resuming after signals. */
void cru_sleep_ms(uint64_t ms);

#endif
