/* str: string helpers and strict whole-string parsers.
 *
 * Numbers are parsed with the C library (strtoull, strtoll, strtod) and then checked for the
 * things it lets through: empty input, junk after the number, signs on unsigned values,
 * overflow, NaN and infinities. Units are matched here.
 */
#include "lib/str.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <utf8proc.h>

#include "lib/buf.h"

#include "lib/err.h"

bool cru_str_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool cru_str_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int cru_str_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (cap == 0)
        return cru_err_set(CRU_ELIMIT, "no room to copy a string of %zu bytes", n);
    if (n >= cap) {
        dst[0] = '\0';
        return cru_err_set(CRU_ELIMIT, "string of %zu bytes exceeds the limit of %zu", n, cap - 1);
    }
    memcpy(dst, src, n + 1);
    return 0;
}

int cru_str_ndup(char **out, const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return cru_err_set(CRU_ENOMEM, "out of memory copying %zu bytes", n);
    memcpy(p, s, n);
    p[n] = '\0';
    *out = p;
    return 0;
}

int cru_str_dup(char **out, const char *s)
{
    return cru_str_ndup(out, s, strlen(s));
}

int cru_str_printf(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(out, fmt, ap);
    va_end(ap);
    if (n < 0) {
        *out = NULL;
        return cru_err_set(CRU_ENOMEM, "out of memory formatting a string");
    }
    return 0;
}

char *cru_str_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Rejects what strto* would skip or accept silently: empty text, leading space, and (for
 * unsigned values) any sign. */
static int parse_check_start(const char *s, bool sign_ok, const char *what)
{
    if (*s == '\0')
        return cru_err_set(CRU_EPARSE, "invalid %s '': empty", what);
    if (isspace((unsigned char)*s))
        return cru_err_set(CRU_EPARSE, "invalid %s '%s': leading white space", what, s);
    if (!sign_ok && (*s == '-' || *s == '+'))
        return cru_err_set(CRU_EPARSE, "invalid %s '%s': must not have a sign", what, s);
    return 0;
}

int cru_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    int rc = parse_check_start(s, false, "number");
    if (rc < 0)
        return rc;
    if (!isdigit((unsigned char)*s))
        return cru_err_set(CRU_EPARSE, "invalid number '%s': not a decimal integer", s);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0')
        return cru_err_set(CRU_EPARSE, "invalid number '%s': unexpected '%s'", s, end);
    if (errno == ERANGE || v < min || v > max)
        return cru_err_set(CRU_ELIMIT, "number %s is out of range [%llu, %llu]", s,
                           (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return 0;
}

int cru_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    int rc = parse_check_start(s, true, "number");
    if (rc < 0)
        return rc;
    const char *digits = (*s == '-' || *s == '+') ? s + 1 : s;
    if (!isdigit((unsigned char)*digits))
        return cru_err_set(CRU_EPARSE, "invalid number '%s': not a decimal integer", s);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0')
        return cru_err_set(CRU_EPARSE, "invalid number '%s': unexpected '%s'", s, end);
    if (errno == ERANGE || v < min || v > max)
        return cru_err_set(CRU_ELIMIT, "number %s is out of range [%lld, %lld]", s, (long long)min,
                           (long long)max);
    *out = v;
    return 0;
}

/* Parses the leading decimal number of S (no hex, no inf/nan); *end points past it. */
static int parse_decimal_prefix(const char *s, const char *what, double *v, const char **end)
{
    int rc = parse_check_start(s, true, what);
    if (rc < 0)
        return rc;
    const char *p = (*s == '-' || *s == '+') ? s + 1 : s;
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return cru_err_set(CRU_EPARSE, "invalid %s '%s': not a decimal number", what, s);
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        return cru_err_set(CRU_EPARSE, "invalid %s '%s': not a decimal number", what, s);
    char *e;
    errno = 0;
    *v = strtod(s, &e);
    if (errno == ERANGE || !isfinite(*v))
        return cru_err_set(CRU_ELIMIT, "%s '%s' is out of range", what, s);
    *end = e;
    return 0;
}

int cru_parse_double(const char *s, double min, double max, double *out)
{
    double v;
    const char *end;
    int rc = parse_decimal_prefix(s, "number", &v, &end);
    if (rc < 0)
        return rc;
    if (*end != '\0')
        return cru_err_set(CRU_EPARSE, "invalid number '%s': unexpected '%s'", s, end);
    if (v < min || v > max)
        return cru_err_set(CRU_ELIMIT, "number %s is out of range [%g, %g]", s, min, max);
    *out = v;
    return 0;
}

struct unit {
    const char *name;
    uint64_t scale;
};

/* Parses "NUMBER[UNIT]" where UNIT is one of UNITS (case-insensitive; "" is the default
 * unit, which must be listed). An integer NUMBER is scaled exactly; a decimal one is rounded
 * to the nearest integer. The result must fit in a uint64_t. */
static int parse_with_unit(const char *s, const char *what, const struct unit *units,
                           const char *unit_help, uint64_t *out)
{
    double v;
    const char *end;
    int rc = parse_decimal_prefix(s, what, &v, &end);
    if (rc < 0)
        return rc;
    if (*s == '-' || *s == '+')
        return cru_err_set(CRU_EPARSE, "invalid %s '%s': must not have a sign", what, s);
    const struct unit *u = units;
    while (u->name && strcasecmp(end, u->name) != 0)
        u++;
    if (!u->name)
        return cru_err_set(CRU_EPARSE, "invalid %s '%s': unknown unit '%s' (use %s)", what, s, end,
                           unit_help);

    size_t digits = strspn(s, "0123456789");
    if (s + digits == end) {
        /* An integer: exact, since a double loses precision above 2^53. */
        errno = 0;
        unsigned long long n = strtoull(s, NULL, 10);
        if (errno == ERANGE || n > UINT64_MAX / u->scale)
            return cru_err_set(CRU_ELIMIT, "%s '%s' is too large", what, s);
        *out = (uint64_t)n * u->scale;
        return 0;
    }
    double r = round(v * (double)u->scale);
    /* 2^64 is exactly representable; anything at or above it does not fit. */
    if (r >= 18446744073709551616.0)
        return cru_err_set(CRU_ELIMIT, "%s '%s' is too large", what, s);
    *out = (uint64_t)r;
    return 0;
}

int cru_parse_size(const char *s, uint64_t *out)
{
    static const struct unit units[] = {
        { "", 1 },
        { "b", 1 },
        { "k", 1024 },
        { "kb", 1024 },
        { "kib", 1024 },
        { "m", 1048576 },
        { "mb", 1048576 },
        { "mib", 1048576 },
        { "g", 1073741824 },
        { "gb", 1073741824 },
        { "gib", 1073741824 },
        { "t", 1099511627776 },
        { "tb", 1099511627776 },
        { "tib", 1099511627776 },
        { NULL, 0 },
    };
    return parse_with_unit(s, "size", units, "K, M, G or T", out);
}

int cru_parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct unit units[] = {
        { "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { NULL, 0 },
    };
    return parse_with_unit(s, "duration", units, "ms, s, m or h", out);
}

const char *cru_str_show(char *dst, const char *s, size_t max, bool keep_utf8)
{
    size_t o = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (i == max) {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '\\' || (c >= 0x80 && !keep_utf8)) {
            static const char hex[] = "0123456789abcdef";
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
    return dst;
}

bool cru_utf8_valid(const char *s, size_t len)
{
    size_t off = 0;
    while (off < len) {
        /* Runs of ASCII (most text crucible records) go 8 bytes at a time. */
        uint64_t word;
        if (len - off >= 8 && (memcpy(&word, s + off, 8), (word & 0x8080808080808080ull) == 0)) {
            off += 8;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)s + off, (utf8proc_ssize_t)(len - off), &cp);
        if (n <= 0 || cp < 0)
            return false;
        off += (size_t)n;
    }
    return true;
}

int cru_utf8_repair(struct cru_buf *out, const char *s, size_t len)
{
    size_t off = 0, start = 0;
    while (off < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n =
            utf8proc_iterate((const utf8proc_uint8_t *)s + off, (utf8proc_ssize_t)(len - off), &cp);
        if (n > 0 && cp >= 0) {
            off += (size_t)n;
            continue;
        }
        int rc = cru_buf_append(out, s + start, off - start);
        if (rc == 0)
            rc = cru_buf_append(out, "\xEF\xBF\xBD", 3);
        if (rc < 0)
            return rc;
        start = ++off;
    }
    return cru_buf_append(out, s + start, off - start);
}

int cru_str_cmp_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}
