/* err: crucible's error codes and the thread-local last-error message.
 *
 * A fallible function returns 0 or a negative CRU_E* code and describes the failure with
 * cru_err_set(). Callers that pass an error up add what they were doing with cru_err_wrap(),
 * so the message reads from the outside in ("loading image x: image.json:3:7: ..."). Only the
 * command line prints it. The message lives in thread-local storage: each thread sees its own
 * last error, and a later failure on the same thread replaces it.
 */
#ifndef CRU_LIB_ERR_H
#define CRU_LIB_ERR_H

#include <stddef.h>

/* Also included by the CUDA sources in kernels/, which nvcc compiles as C++. */
#ifdef __cplusplus
extern "C" {
#endif

enum cru_err_code {
    CRU_OK = 0,
    CRU_ENOMEM = -1,        /* an allocation failed */
    CRU_EINVAL = -2,        /* an invalid argument or value */
    CRU_EIO = -3,           /* a system call or I/O failed */
    CRU_ENOENT = -4,        /* a file or item does not exist */
    CRU_EEXIST = -5,        /* it exists already */
    CRU_EPERM = -6,         /* not permitted */
    CRU_EPARSE = -7,        /* malformed input: JSON, numbers, records */
    CRU_ELIMIT = -8,        /* an input broke a bound (size, count, depth, length) */
    CRU_EUNSAFE = -9,       /* refused for safety: a path escape, a hostile archive entry */
    CRU_ETIMEDOUT = -10,    /* a deadline passed */
    CRU_EUNSUPPORTED = -11, /* the machine or build lacks a facility */
    CRU_EFAILED = -12,      /* the task or check ran and failed (exit status 1) */
    CRU_EUSAGE = -13,       /* the command line is wrong (exit status 2) */
    CRU_EINTERNAL = -14,    /* a bug in crucible */
};

/* The longest message kept; a longer one ends in "..." so truncation is never silent. */
#define CRU_ERR_MAX 2048

/* Sets the last error to CODE and a printf-style message; returns CODE so that a caller can
 * write `return cru_err_set(CRU_EINVAL, "...")`. errno is preserved. */
int cru_err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like cru_err_set, appending ": " and strerror(errno), with the code chosen from errno
 * (ENOENT -> CRU_ENOENT, EACCES/EPERM -> CRU_EPERM, ENOMEM -> CRU_ENOMEM, ...). Returns it. */
int cru_err_sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prefixes the current message with context and ": ". CODE is returned unchanged and becomes
 * the current code; when no message is set the code's description stands in for it. */
int cru_err_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last error's code and message on this thread ("" and CRU_OK when none). The message is
 * borrowed: valid until the next cru_err_* call on this thread. */
int cru_err_code(void);
const char *cru_err_msg(void);
void cru_err_clear(void);

/* A static description of a code ("out of memory"), and its symbolic name ("CRU_ENOMEM"). */
const char *cru_err_str(int code);
const char *cru_err_name(int code);

/* The code that corresponds to an errno value. */
int cru_err_from_errno(int errnum);

#ifdef __cplusplus
}
#endif

#endif
