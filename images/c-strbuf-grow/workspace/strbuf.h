#ifndef STRBUF_H
#define STRBUF_H

#include <stddef.h>

/* A growable, always NUL-terminated string buffer.
 * Invariant once anything was appended: buf != NULL and cap >= len + 1. */
typedef struct {
    char *buf;
    size_t len; /* bytes used, not counting the terminating NUL */
    size_t cap; /* bytes allocated */
} strbuf;

void sb_init(strbuf *sb);
/* Make room for at least extra more bytes plus the NUL. 0 on success, -1 on ENOMEM. */
int sb_grow(strbuf *sb, size_t extra);
int sb_append_n(strbuf *sb, const char *s, size_t n);
int sb_append(strbuf *sb, const char *s);
/* printf-style append, any length. 0 on success, -1 on error. */
int sb_appendf(strbuf *sb, const char *fmt, ...);
/* The contents; "" for an empty buffer. */
const char *sb_str(const strbuf *sb);
/* Empty the buffer but keep its memory. */
void sb_reset(strbuf *sb);
/* Hand the buffer to the caller (who frees it) and leave sb empty and reusable
 * (buf NULL, len 0, cap 0). *len receives the length if len is not NULL.
 * Returns a malloc'ed "" for an empty buffer. */
char *sb_detach(strbuf *sb, size_t *len);
void sb_free(strbuf *sb);

#endif
