/* str: string helpers and strict parsers for numbers, sizes and durations.
 *
 * The parsers accept a whole string or nothing: no leading or trailing junk, no sign where
 * none is meaningful, no silent wrap-around. Their errors quote the input and name the bound
 * it broke, ready for a command line to print ("invalid size '12Q': unknown unit 'Q'").
 */
#ifndef CRU_LIB_STR_H
#define CRU_LIB_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool cru_str_starts_with(const char *s, const char *prefix);
bool cru_str_ends_with(const char *s, const char *suffix);

/* Copies SRC into DST (capacity CAP, NUL included). A SRC that does not fit is an error
 * (CRU_ELIMIT) and leaves DST as "" rather than a truncated prefix. */
int cru_str_copy(char *dst, size_t cap, const char *src);

/* Allocating helpers; *out belongs to the caller (free()). */
int cru_str_dup(char **out, const char *s);
int cru_str_ndup(char **out, const char *s, size_t n);
int cru_str_printf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* qsort()/bsearch() comparison of two `char *` elements, by strcmp(). */
int cru_str_cmp_ptr(const void *a, const void *b);

/* The bytes cru_str_show() needs for an input cut at MAX bytes. */
#define CRU_SHOW_CAP(max) ((max)*4 + 4)

/* Writes S into DST (CRU_SHOW_CAP(MAX) bytes) for a message: control bytes, DEL and '\' as
 * \xNN, and bytes from 0x80 too unless KEEP_UTF8; cut with "..." after MAX bytes of S, so a
 * name from outside can neither flood a message nor put a line break in it. Returns DST. */
const char *cru_str_show(char *dst, const char *s, size_t max, bool keep_utf8);

/* Whether LEN bytes of S are well-formed UTF-8 (utf8proc's definition: no overlong forms, no
 * surrogates, nothing past U+10FFFF). NUL bytes count as valid. */
bool cru_utf8_valid(const char *s, size_t len);

/* Appends LEN bytes of S to OUT as valid UTF-8: each byte that does not start a well-formed
 * sequence becomes U+FFFD, as the WHATWG decoder does. */
struct cru_buf;
int cru_utf8_repair(struct cru_buf *out, const char *s, size_t len);

/* Strips leading and trailing ASCII white space in place; returns S advanced past the
 * leading space. */
char *cru_str_trim(char *s);

/* Decimal integers within [min, max]. */
int cru_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int cru_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* A finite decimal number within [min, max] ("0.3", "1e-3"). */
int cru_parse_double(const char *s, double min, double max, double *out);

/* A byte size: an integer or decimal with an optional binary unit, K, M, G or T, optionally
 * followed by "iB" or "B" ("512", "64K", "1.5GiB"); case-insensitive units. */
int cru_parse_size(const char *s, uint64_t *out);

/* A duration in milliseconds: a number with an optional unit ms, s (the default), m or h
 * ("250ms", "30", "1.5m"). */
int cru_parse_duration_ms(const char *s, uint64_t *out);

#endif
