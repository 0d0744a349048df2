/* fifo_util: for the tests that hand a loader a FIFO where a file belongs (image.json,
 * config.json, a safetensors file, tokenizer.json, an archive...).
 *
 * A loader that opens a FIFO without O_NONBLOCK waits in open(2) for a writer that never
 * comes. fifo_swap() replaces the file by a FIFO and arms an alarm, so such a loader is ended
 * by SIGALRM, which Criterion reports as a crash: the test fails instead of hanging.
 * fifo_done() disarms it and requires the refusal to have been prompt. The alarm is the
 * test's own rather than Criterion's .timeout, because the runner keeps each timeout as an
 * allocated request that a test forked while one is pending inherits, and LeakSanitizer
 * (SAN=1) can report it there as that test's leak.
 */
#ifndef CRU_TESTS_FIFO_UTIL_H
#define CRU_TESTS_FIFO_UTIL_H

#include <criterion/criterion.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/err.h"

/* Seconds before a blocked loader is ended, and the most a refusal may take. */
#define FIFO_HANG_S   10
#define FIFO_PROMPT_S 2.0

/* Replaces PATH (a file or nothing) by a FIFO with no writer, and starts the clock. */
static inline struct timespec fifo_swap(const char *path)
{
    struct timespec t0;
    unlink(path);
    cr_assert_eq(mkfifo(path, 0644), 0, "mkfifo %s", path);
    alarm(FIFO_HANG_S);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    return t0;
}

/* After the loader returned RC: it must have refused the FIFO (CRU_EINVAL, a message naming
 * PATH and saying what it is) within FIFO_PROMPT_S of T0. */
static inline void fifo_done(struct timespec t0, int rc, const char *path)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    alarm(0);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_eq(rc, CRU_EINVAL, "a FIFO at %s: rc %d (%s)", path, rc, cru_err_msg());
    cr_assert(strstr(cru_err_msg(), path) != NULL, "the message names %s: %s", path, cru_err_msg());
    cr_assert(strstr(cru_err_msg(), "is a FIFO, not a regular file") != NULL, "%s", cru_err_msg());
    cr_assert_lt(s, FIFO_PROMPT_S, "the FIFO at %s took %.2f s to refuse", path, s);
}

#endif
