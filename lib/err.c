/* err: error codes and a thread-local last-error message with context chaining.
 *
 * The message is a fixed thread-local buffer so that recording an error never allocates (an
 * out-of-memory error must be reportable) and threads never see each other's errors. It does
 * not print anything: the command line decides how and whether to show the message.
 */
#include "lib/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct err_state {
    int code;
    size_t len;
    char msg[CRU_ERR_MAX];
};

static _Thread_local struct err_state err_tls;

static const struct {
    int code;
    const char *name;
    const char *desc;
} err_table[] = {
    { CRU_OK, "CRU_OK", "success" },
    { CRU_ENOMEM, "CRU_ENOMEM", "out of memory" },
    { CRU_EINVAL, "CRU_EINVAL", "invalid argument" },
    { CRU_EIO, "CRU_EIO", "input/output error" },
    { CRU_ENOENT, "CRU_ENOENT", "not found" },
    { CRU_EEXIST, "CRU_EEXIST", "already exists" },
    { CRU_EPERM, "CRU_EPERM", "not permitted" },
    { CRU_EPARSE, "CRU_EPARSE", "malformed input" },
    { CRU_ELIMIT, "CRU_ELIMIT", "limit exceeded" },
    { CRU_EUNSAFE, "CRU_EUNSAFE", "refused as unsafe" },
    { CRU_ETIMEDOUT, "CRU_ETIMEDOUT", "timed out" },
    { CRU_EUNSUPPORTED, "CRU_EUNSUPPORTED", "not supported" },
    { CRU_EFAILED, "CRU_EFAILED", "failed" },
    { CRU_EUSAGE, "CRU_EUSAGE", "usage error" },
    { CRU_EINTERNAL, "CRU_EINTERNAL", "internal error" },
};

static size_t err_index(int code)
{
    for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++) {
        if (err_table[i].code == code)
            return i;
    }
    return SIZE_MAX;
}

const char *cru_err_str(int code)
{
    size_t i = err_index(code);
    return i == SIZE_MAX ? "unknown error" : err_table[i].desc;
}

const char *cru_err_name(int code)
{
    size_t i = err_index(code);
    return i == SIZE_MAX ? "CRU_E?" : err_table[i].name;
}

int cru_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return CRU_OK;
    case ENOMEM:
        return CRU_ENOMEM;
    case ENOENT:
    case ENOTDIR:
        return CRU_ENOENT;
    case EEXIST:
        return CRU_EEXIST;
    case EACCES:
    case EPERM:
    case EROFS:
        return CRU_EPERM;
    case EINVAL:
        return CRU_EINVAL;
    case ETIMEDOUT:
        return CRU_ETIMEDOUT;
    case ENOSYS:
    case EOPNOTSUPP:
        return CRU_EUNSUPPORTED;
    case E2BIG:
    case EFBIG:
    case ENAMETOOLONG:
    case ELOOP:
    case EMFILE:
    case ENFILE:
        return CRU_ELIMIT;
    default:
        return CRU_EIO;
    }
}

/* Marks a message that did not fit, so that a cut is always visible. */
static void err_mark_truncated(struct err_state *e)
{
    static const char mark[] = "...";
    memcpy(e->msg + CRU_ERR_MAX - sizeof(mark), mark, sizeof(mark));
    e->len = CRU_ERR_MAX - 1;
}

/* Records the length snprintf reported for the message it just wrote into e->msg. */
static void err_settle(struct err_state *e, int n)
{
    if (n < 0) {
        e->len = 0;
        e->msg[0] = '\0';
    } else if ((size_t)n >= sizeof(e->msg)) {
        err_mark_truncated(e);
    } else {
        e->len = (size_t)n;
    }
}

static void err_vformat(struct err_state *e, const char *fmt, va_list ap)
{
    err_settle(e, vsnprintf(e->msg, sizeof(e->msg), fmt, ap));
}

int cru_err_set(int code, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    err_tls.code = code;
    va_start(ap, fmt);
    err_vformat(&err_tls, fmt, ap);
    va_end(ap);
    errno = saved;
    return code;
}

int cru_err_sys(const char *fmt, ...)
{
    int saved = errno;
    struct err_state *e = &err_tls;
    va_list ap;

    e->code = cru_err_from_errno(saved);
    va_start(ap, fmt);
    err_vformat(e, fmt, ap);
    va_end(ap);
    if (e->len < CRU_ERR_MAX - 1) {
        int n = snprintf(e->msg + e->len, CRU_ERR_MAX - e->len, ": %s", strerror(saved));
        err_settle(e, n < 0 ? n : (int)e->len + n);
    }
    errno = saved;
    return e->code;
}

int cru_err_wrap(int code, const char *fmt, ...)
{
    int saved = errno;
    struct err_state *e = &err_tls;
    char prefix[CRU_ERR_MAX];
    char cause[CRU_ERR_MAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (n < 0)
        prefix[0] = '\0';
    /* A code passed up without a message gets its description as the cause. */
    snprintf(cause, sizeof(cause), "%s", e->len > 0 ? e->msg : cru_err_str(code));
    err_settle(e, snprintf(e->msg, sizeof(e->msg), "%s: %s", prefix, cause));
    e->code = code;
    errno = saved;
    return code;
}

int cru_err_code(void)
{
    return err_tls.code;
}

const char *cru_err_msg(void)
{
    return err_tls.msg;
}

void cru_err_clear(void)
{
    err_tls.code = CRU_OK;
    err_tls.len = 0;
    err_tls.msg[0] = '\0';
}
