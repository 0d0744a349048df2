/* Tests for lib/str: helpers and the strict number, size and duration parsers. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/str.h"

Test(str, prefix_suffix)
{
    cr_assert(cru_str_starts_with("x-custom", "x-"));
    cr_assert_not(cru_str_starts_with("x", "x-"));
    cr_assert(cru_str_starts_with("abc", ""));
    cr_assert(cru_str_ends_with("image.json", ".json"));
    cr_assert_not(cru_str_ends_with("json", ".json"));
}

Test(str, copy_refuses_to_truncate)
{
    char dst[4] = "old";
    cr_assert_eq(cru_str_copy(dst, sizeof(dst), "abc"), 0);
    cr_assert_str_eq(dst, "abc");
    cr_assert_eq(cru_str_copy(dst, sizeof(dst), "abcd"), CRU_ELIMIT);
    cr_assert_str_eq(dst, "", "a failed copy must not leave a truncated prefix");
    cr_assert(strstr(cru_err_msg(), "limit of 3") != NULL);
}

Test(str, dup_printf_trim)
{
    char *s = NULL;
    cr_assert_eq(cru_str_dup(&s, "hello"), 0);
    cr_assert_str_eq(s, "hello");
    free(s);
    cr_assert_eq(cru_str_ndup(&s, "hello", 2), 0);
    cr_assert_str_eq(s, "he");
    free(s);
    cr_assert_eq(cru_str_printf(&s, "%s-%03d", "run", 7), 0);
    cr_assert_str_eq(s, "run-007");
    free(s);
    char t[] = " \t padded \n";
    cr_assert_str_eq(cru_str_trim(t), "padded");
    char e[] = "   ";
    cr_assert_str_eq(cru_str_trim(e), "");
}

Test(str, parse_u64)
{
    uint64_t v = 0;
    cr_assert_eq(cru_parse_u64("0", 0, 10, &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(cru_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    cr_assert_eq(v, UINT64_MAX);
    cr_assert_eq(cru_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), CRU_ELIMIT);
    cr_assert_eq(cru_parse_u64("11", 0, 10, &v), CRU_ELIMIT);
    cr_assert_str_eq(cru_err_msg(), "number 11 is out of range [0, 10]");
    cr_assert_eq(cru_parse_u64("", 0, 10, &v), CRU_EPARSE);
    cr_assert_eq(cru_parse_u64("-1", 0, 10, &v), CRU_EPARSE);
    cr_assert_eq(cru_parse_u64("+1", 0, 10, &v), CRU_EPARSE);
    cr_assert_eq(cru_parse_u64(" 1", 0, 10, &v), CRU_EPARSE);
    cr_assert_eq(cru_parse_u64("1 ", 0, 10, &v), CRU_EPARSE);
    cr_assert_eq(cru_parse_u64("0x10", 0, 100, &v), CRU_EPARSE);
    cr_assert_eq(cru_parse_u64("1.0", 0, 100, &v), CRU_EPARSE);
    cr_assert_str_eq(cru_err_msg(), "invalid number '1.0': unexpected '.0'");
    cr_assert_eq(v, UINT64_MAX, "failed parses leave the output alone");
}

Test(str, parse_i64)
{
    int64_t v;
    cr_assert_eq(cru_parse_i64("-9223372036854775808", INT64_MIN, INT64_MAX, &v), 0);
    cr_assert_eq(v, INT64_MIN);
    cr_assert_eq(cru_parse_i64("9223372036854775808", INT64_MIN, INT64_MAX, &v), CRU_ELIMIT);
    cr_assert_eq(cru_parse_i64("-5", -4, 4, &v), CRU_ELIMIT);
    cr_assert_eq(cru_parse_i64("+3", -4, 4, &v), 0);
    cr_assert_eq(v, 3);
    cr_assert_eq(cru_parse_i64("-", -4, 4, &v), CRU_EPARSE);
    cr_assert_eq(cru_parse_i64("--1", -4, 4, &v), CRU_EPARSE);
}

Test(str, parse_double)
{
    double d;
    cr_assert_eq(cru_parse_double("0.3", 0, 1, &d), 0);
    cr_assert_float_eq(d, 0.3, 1e-12);
    cr_assert_eq(cru_parse_double(".5", 0, 1, &d), 0);
    cr_assert_float_eq(d, 0.5, 1e-12);
    cr_assert_eq(cru_parse_double("1e-3", 0, 1, &d), 0);
    cr_assert_eq(cru_parse_double("1.5", 0, 1, &d), CRU_ELIMIT);
    cr_assert_eq(cru_parse_double("nan", 0, 1, &d), CRU_EPARSE);
    cr_assert_eq(cru_parse_double("inf", 0, 1e308, &d), CRU_EPARSE);
    cr_assert_eq(cru_parse_double("1e400", 0, 1e308, &d), CRU_ELIMIT);
    cr_assert_eq(cru_parse_double("0x1p3", 0, 100, &d), CRU_EPARSE);
    cr_assert_eq(cru_parse_double("1.0x", 0, 100, &d), CRU_EPARSE);
}

Test(str, parse_size)
{
    uint64_t v;
    cr_assert_eq(cru_parse_size("512", &v), 0);
    cr_assert_eq(v, 512);
    cr_assert_eq(cru_parse_size("64K", &v), 0);
    cr_assert_eq(v, 65536);
    cr_assert_eq(cru_parse_size("1.5GiB", &v), 0);
    cr_assert_eq(v, 1610612736);
    cr_assert_eq(cru_parse_size("2mb", &v), 0);
    cr_assert_eq(v, 2097152);
    cr_assert_eq(cru_parse_size("1T", &v), 0);
    cr_assert_eq(v, 1099511627776ull);
    cr_assert_eq(cru_parse_size("12Q", &v), CRU_EPARSE);
    cr_assert_str_eq(cru_err_msg(), "invalid size '12Q': unknown unit 'Q' (use K, M, G or T)");
    cr_assert_eq(cru_parse_size("-1K", &v), CRU_EPARSE);
    cr_assert_eq(cru_parse_size("K", &v), CRU_EPARSE);
    cr_assert_eq(cru_parse_size("99999999T", &v), CRU_ELIMIT);
    cr_assert_eq(cru_parse_size("1 K", &v), CRU_EPARSE);
    cr_assert_eq(cru_parse_size("+1K", &v), CRU_EPARSE);

    /* Integers are exact beyond a double's 53 bits, and overflow is caught exactly. */
    cr_assert_eq(cru_parse_size("9007199254740993", &v), 0);
    cr_assert_eq(v, 9007199254740993ull);
    cr_assert_eq(cru_parse_size("18446744073709551615", &v), 0);
    cr_assert_eq(v, UINT64_MAX);
    cr_assert_eq(cru_parse_size("18446744073709551616", &v), CRU_ELIMIT);
    cr_assert_eq(cru_parse_size("16777215T", &v), 0);
    cr_assert_eq(v, 16777215ull << 40);
    cr_assert_eq(cru_parse_size("16777216T", &v), CRU_ELIMIT);
    cr_assert_str_eq(cru_err_msg(), "size '16777216T' is too large");
}

Test(str, parse_duration)
{
    uint64_t ms;
    cr_assert_eq(cru_parse_duration_ms("30", &ms), 0);
    cr_assert_eq(ms, 30000);
    cr_assert_eq(cru_parse_duration_ms("250ms", &ms), 0);
    cr_assert_eq(ms, 250);
    cr_assert_eq(cru_parse_duration_ms("1.5m", &ms), 0);
    cr_assert_eq(ms, 90000);
    cr_assert_eq(cru_parse_duration_ms("2h", &ms), 0);
    cr_assert_eq(ms, 7200000);
    cr_assert_eq(cru_parse_duration_ms("0.0004s", &ms), 0);
    cr_assert_eq(ms, 0);
    cr_assert_eq(cru_parse_duration_ms("5d", &ms), CRU_EPARSE);
    cr_assert(strstr(cru_err_msg(), "ms, s, m or h") != NULL);
}

Test(str, show_escapes_and_cuts)
{
    char out[CRU_SHOW_CAP(8)];
    cr_expect_str_eq(cru_str_show(out, "a\nb\\c", 8, false), "a\\x0ab\\x5cc");
    cr_expect_str_eq(cru_str_show(out, "\xc3\xa9t\x7f", 8, false), "\\xc3\\xa9t\\x7f");
    cr_expect_str_eq(cru_str_show(out, "\xc3\xa9t", 8, true), "\xc3\xa9t");
    cr_expect_str_eq(cru_str_show(out, "0123456789", 8, true), "01234567...");
    char worst[CRU_SHOW_CAP(8)];
    cr_expect_eq(strlen(cru_str_show(worst, "\x01\x01\x01\x01\x01\x01\x01\x01\x01", 8, false)),
                 8 * 4 + 3);
}

Test(str, utf8_valid_and_repair)
{
    /* An invalid byte at every offset of a long ASCII run: the 8-byte fast path must not skip
     * over it, wherever it falls in a word. */
    char s[40];
    for (size_t at = 0; at < sizeof(s); at++) {
        memset(s, 'a', sizeof(s));
        s[at] = (char)0xff;
        cr_assert_not(cru_utf8_valid(s, sizeof(s)), "0xff at %zu passed", at);
        struct cru_buf b = CRU_BUF_INIT;
        cr_assert_eq(cru_utf8_repair(&b, s, sizeof(s)), 0);
        cr_assert_eq(b.len, sizeof(s) + 2, "one byte became the 3 bytes of U+FFFD");
        cr_assert_eq(memcmp(b.data + at, "\xEF\xBF\xBD", 3), 0);
        cr_assert(cru_utf8_valid(b.data, b.len));
        cru_buf_free(&b);
    }
    /* Positive controls: ASCII, multi-byte characters across word boundaries, NUL. */
    const char ok[] = "abcdefg\xC3\xA9hijklmn\xE4\xB8\xAD\xF0\x9F\x98\x80 tail\0x";
    cr_assert(cru_utf8_valid(ok, sizeof(ok) - 1));
    /* Overlong forms, surrogates and truncated sequences are invalid. */
    cr_assert_not(cru_utf8_valid("\xC0\xAF", 2));
    cr_assert_not(cru_utf8_valid("\xED\xA0\x80", 3));
    cr_assert_not(cru_utf8_valid("abcdefgh\xE4\xB8", 10));
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_utf8_repair(&b, "ab\xE4\xB8", 4), 0);
    cr_assert_str_eq(b.data, "ab\xEF\xBF\xBD\xEF\xBF\xBD");
    cru_buf_free(&b);
}
