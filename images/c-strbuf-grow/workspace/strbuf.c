#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_init(strbuf *sb)
{
    sb->buf = NULL;
    sb->len = 0;
    sb->cap = 0;
}

int sb_grow(strbuf *sb, size_t extra)
{
    if (sb->len + extra < sb->cap)
        return 0;
    size_t ncap = sb->cap ? sb->cap * 2 : 16;
    char *p = realloc(sb->buf, ncap);
    if (!p)
        return -1;
    sb->buf = p;
    sb->cap = ncap;
    return 0;
}

int sb_append_n(strbuf *sb, const char *s, size_t n)
{
    if (sb_grow(sb, n) < 0)
        return -1;
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
    return 0;
}

int sb_append(strbuf *sb, const char *s)
{
    return sb_append_n(sb, s, strlen(s));
}

int sb_appendf(strbuf *sb, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof tmp)
        n = sizeof tmp - 1;
    return sb_append_n(sb, tmp, (size_t)n);
}

const char *sb_str(const strbuf *sb)
{
    return sb->buf ? sb->buf : "";
}

void sb_reset(strbuf *sb)
{
    sb->len = 0;
    if (sb->buf)
        sb->buf[0] = '\0';
}

char *sb_detach(strbuf *sb, size_t *len)
{
    char *p = sb->buf;
    if (!p) {
        p = malloc(1);
        if (!p)
            return NULL;
        p[0] = '\0';
    }
    if (len)
        *len = sb->len;
    return p;
}

void sb_free(strbuf *sb)
{
    free(sb->buf);
    sb_init(sb);
}
