/* buf: a growable byte buffer, always NUL-terminated once it holds anything.
 *
 *     struct cru_buf b = CRU_BUF_INIT;
 *     if (cru_buf_printf(&b, "%d tokens", n) < 0) ...
 *     use(b.data, b.len);
 *     cru_buf_free(&b);
 *
 * Growth is checked for overflow and bounded by CRU_BUF_MAX; a failure leaves the buffer as it
 * was (nothing is half-appended) and returns CRU_ENOMEM or CRU_ELIMIT with a message.
 */
#ifndef CRU_LIB_BUF_H
#define CRU_LIB_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct cru_buf {
    char *data; /* owned; NULL until the first append; data[len] == '\0' when non-NULL */
    size_t len;
    size_t cap; /* allocated bytes, including room for the terminating NUL */
};

#define CRU_BUF_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* The largest buffer crucible will grow (4 GiB): inputs larger than this are refused. */
#define CRU_BUF_MAX ((size_t)4 << 30)

/* Ensures room for EXTRA more bytes (plus the NUL) without another allocation. */
int cru_buf_reserve(struct cru_buf *b, size_t extra);
int cru_buf_append(struct cru_buf *b, const void *data, size_t len);
int cru_buf_puts(struct cru_buf *b, const char *s);
int cru_buf_putc(struct cru_buf *b, char c);
int cru_buf_printf(struct cru_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cru_buf_vprintf(struct cru_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* The contents as a C string: "" for a buffer that holds nothing. Borrowed. */
const char *cru_buf_cstr(const struct cru_buf *b);

/* Empties the buffer but keeps its memory. */
void cru_buf_reset(struct cru_buf *b);

/* Hands the memory to the caller (free() it) and leaves B empty. Never NULL on success: an
 * empty buffer detaches as an allocated "". Returns NULL only when that allocation fails. */
char *cru_buf_detach(struct cru_buf *b, size_t *len);

void cru_buf_free(struct cru_buf *b);

#endif
