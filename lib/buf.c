/* buf: growable byte buffers with checked growth.
 *
 * Capacity doubles (amortised O(1) appends) up to CRU_BUF_MAX; every size computation is
 * checked for overflow. A failed append leaves the previous contents untouched.
 */
#include "lib/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

int cru_buf_reserve(struct cru_buf *b, size_t extra)
{
    if (extra > CRU_BUF_MAX || b->len > CRU_BUF_MAX - extra)
        return cru_err_set(CRU_ELIMIT, "buffer would exceed %zu bytes", CRU_BUF_MAX);
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > CRU_BUF_MAX + 1)
        cap = CRU_BUF_MAX + 1;
    char *p = realloc(b->data, cap);
    if (!p)
        return cru_err_set(CRU_ENOMEM, "out of memory growing a buffer to %zu bytes", cap);
    if (!b->data)
        p[0] = '\0';
    b->data = p;
    b->cap = cap;
    return 0;
}

int cru_buf_append(struct cru_buf *b, const void *data, size_t len)
{
    int rc = cru_buf_reserve(b, len);
    if (rc < 0)
        return rc;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int cru_buf_puts(struct cru_buf *b, const char *s)
{
    return cru_buf_append(b, s, strlen(s));
}

int cru_buf_putc(struct cru_buf *b, char c)
{
    return cru_buf_append(b, &c, 1);
}

int cru_buf_vprintf(struct cru_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return cru_err_set(CRU_EINVAL, "invalid format string '%s'", fmt);
    int rc = cru_buf_reserve(b, (size_t)n);
    if (rc < 0)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int cru_buf_printf(struct cru_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cru_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

const char *cru_buf_cstr(const struct cru_buf *b)
{
    return b->data ? b->data : "";
}

void cru_buf_reset(struct cru_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *cru_buf_detach(struct cru_buf *b, size_t *len)
{
    char *p = b->data;
    if (!p) {
        p = calloc(1, 1);
        if (!p) {
            cru_err_set(CRU_ENOMEM, "out of memory");
            return NULL;
        }
    }
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void cru_buf_free(struct cru_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
