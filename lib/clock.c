/* clock: monotonic time and deadline arithmetic. It never reads the wall clock. */
#include "lib/clock.h"

#include <errno.h>
#include <time.h>

uint64_t cru_now_ns(void)
{
    struct timespec ts;
    /* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * CRU_NS_PER_S + (uint64_t)ts.tv_nsec;
}

uint64_t cru_elapsed_ms(uint64_t start_ns)
{
    uint64_t now = cru_now_ns();
    return now > start_ns ? (now - start_ns) / CRU_NS_PER_MS : 0;
}

uint64_t cru_deadline_ms(uint64_t timeout_ms)
{
    if (timeout_ms == 0)
        return 0;
    uint64_t now = cru_now_ns();
    if (timeout_ms > (UINT64_MAX - now) / CRU_NS_PER_MS)
        return UINT64_MAX;
    return now + timeout_ms * CRU_NS_PER_MS;
}

uint64_t cru_deadline_left_ms(uint64_t deadline_ns)
{
    if (deadline_ns == 0)
        return UINT64_MAX;
    uint64_t now = cru_now_ns();
    if (now >= deadline_ns)
        return 0;
    return (deadline_ns - now + CRU_NS_PER_MS - 1) / CRU_NS_PER_MS;
}

bool cru_deadline_passed(uint64_t deadline_ns)
{
    return deadline_ns != 0 && cru_now_ns() >= deadline_ns;
}

void cru_sleep_ms(uint64_t ms)
{
    struct timespec ts = {
        .tv_sec = (time_t)(ms / 1000),
        .tv_nsec = (long)(ms % 1000) * 1000000L,
    };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}
