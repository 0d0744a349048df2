/* log: leveled diagnostics on stderr.
 *
 * Quiet by default: only warnings (and errors that are logged rather than returned) appear.
 * The command line raises the level with -v (info) and -vv (debug). A line is written with a
 * single write(2), so lines from concurrent threads and processes never interleave.
 */
#ifndef CRU_LIB_LOG_H
#define CRU_LIB_LOG_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

enum cru_log_level {
    CRU_LOG_ERROR = 0,
    CRU_LOG_WARN = 1,
    CRU_LOG_INFO = 2,
    CRU_LOG_DEBUG = 3,
    CRU_LOG_TRACE = 4,
};

/* The level is the one process-wide setting of this module, set by the command line before
 * any thread starts; reading it is atomic. Out-of-range values are clamped. */
void cru_log_set_level(int level);
enum cru_log_level cru_log_level(void);
bool cru_log_enabled(enum cru_log_level level);

/* Writes "crucible: LEVEL: MESSAGE\n" (debug and trace add "FILE:LINE: "). Lines longer than
 * the internal buffer end in "...". errno is preserved. */
void cru_log_at(enum cru_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define cru_error(...) cru_log_at(CRU_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define cru_warn(...)  cru_log_at(CRU_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define cru_info(...)  cru_log_at(CRU_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define cru_debug(...) cru_log_at(CRU_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
#define cru_trace(...) cru_log_at(CRU_LOG_TRACE, __FILE__, __LINE__, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif
