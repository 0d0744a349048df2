/* Tests for lib/log: levels, format, quiet default. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <string.h>

#include "lib/log.h"

static void redirect(void)
{
    cr_redirect_stderr();
}

Test(log, quiet_by_default_shows_warnings_only, .init = redirect)
{
    cr_assert_eq(cru_log_level(), CRU_LOG_WARN);
    cru_info("not shown");
    cru_debug("not shown");
    cru_warn("disk %d%% full", 95);
    fflush(stderr);
    cr_assert_stderr_eq_str("crucible: warning: disk 95% full\n");
}

Test(log, verbose_levels, .init = redirect)
{
    cru_log_set_level(CRU_LOG_INFO);
    cru_info("hello");
    cru_debug("hidden");
    cru_log_set_level(CRU_LOG_DEBUG);
    cru_debug("x=%d", 1);
    fflush(stderr);
    char expect[256];
    snprintf(expect, sizeof(expect), "crucible: info: hello\ncrucible: debug: %s:%d: x=1\n",
             __FILE__, __LINE__ - 4);
    cr_assert_stderr_eq_str(expect);
}

Test(log, level_is_clamped)
{
    cru_log_set_level(99);
    cr_assert_eq(cru_log_level(), CRU_LOG_TRACE);
    cru_log_set_level(-5);
    cr_assert_eq(cru_log_level(), CRU_LOG_ERROR);
    cr_assert(cru_log_enabled(CRU_LOG_ERROR));
    cr_assert_not(cru_log_enabled(CRU_LOG_WARN));
}

Test(log, long_line_is_cut_with_marker_and_newline, .init = redirect)
{
    char big[8192];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    errno = ERANGE;
    cru_warn("%s", big);
    cr_assert_eq(errno, ERANGE);
    fflush(stderr);
    FILE *f = cr_get_redirected_stderr();
    char line[8192];
    cr_assert_not_null(fgets(line, sizeof(line), f));
    size_t n = strlen(line);
    cr_assert_lt(n, 4097);
    cr_assert_str_eq(line + n - 4, "...\n");
}
