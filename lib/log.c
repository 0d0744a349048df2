/* log: leveled diagnostics on stderr, quiet unless asked.
 *
 * It formats into a stack buffer and emits each line with one write(2) so that output from
 * threads and forked children stays line-atomic. It does not open files, rotate, or buffer:
 * crucible's durable records are trajectories, not logs.
 */
#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

/* The single process-wide log level; written by the CLI at start-up, read everywhere. */
static atomic_int log_level = CRU_LOG_WARN;

static const char *const level_names[] = { "error", "warning", "info", "debug", "trace" };

void cru_log_set_level(int level)
{
    if (level < CRU_LOG_ERROR)
        level = CRU_LOG_ERROR;
    if (level > CRU_LOG_TRACE)
        level = CRU_LOG_TRACE;
    atomic_store(&log_level, level);
}

enum cru_log_level cru_log_level(void)
{
    return (enum cru_log_level)atomic_load(&log_level);
}

bool cru_log_enabled(enum cru_log_level level)
{
    return (int)level <= atomic_load(&log_level);
}

void cru_log_at(enum cru_log_level level, const char *file, int line, const char *fmt, ...)
{
    char buf[4096];
    size_t len;
    int n;
    va_list ap;

    if (!cru_log_enabled(level))
        return;
    int saved = errno;
    if (level >= CRU_LOG_DEBUG)
        n = snprintf(buf, sizeof(buf), "crucible: %s: %s:%d: ", level_names[level], file, line);
    else
        n = snprintf(buf, sizeof(buf), "crucible: %s: ", level_names[level]);
    len = n < 0 ? 0 : (size_t)n;
    if (len < sizeof(buf)) {
        va_start(ap, fmt);
        n = vsnprintf(buf + len, sizeof(buf) - len, fmt, ap);
        va_end(ap);
        len += n < 0 ? 0 : (size_t)n;
    }
    if (len >= sizeof(buf) - 1) {
        /* Too long for one line: cut visibly, keeping the newline. */
        len = sizeof(buf) - 5;
        buf[len++] = '.';
        buf[len++] = '.';
        buf[len++] = '.';
    }
    buf[len++] = '\n';

    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* nowhere left to report a failure to report */
        p += w;
        len -= (size_t)w;
    }
    errno = saved;
}
