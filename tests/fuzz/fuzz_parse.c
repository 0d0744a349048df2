/* fuzz/parse: the strict number, size and duration parsers on arbitrary text.
 *
 * The input up to its first NUL is the text. Every parser must accept it or refuse it with a
 * negative code (the one cru_err_code() reports) and a message, and leave its output alone when
 * it refuses. Beyond not crashing, the parsers must agree with each other: a narrow range
 * accepts exactly what the widest range accepts and lies inside it, an integer means the same
 * to the signed and unsigned parsers, a plain integer is that many bytes or seconds, sizes and
 * durations take no sign, and size units ignore case.
 */
#include <ctype.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/str.h"
#include "tests/fuzz/fuzz.h"

/* Integers up to 2^53 survive the parsers that go through a double. */
#define EXACT_MAX ((uint64_t)1 << 53)

/* A value no parser returns for a short input, to see that a refusal wrote nothing. */
#define SENTINEL_U 0x5a5a5a5a5a5a5a5aull
#define SENTINEL_I ((int64_t)-0x5a5a5a5a5a5a5a5all)
#define SENTINEL_D (-1234.5e300)

static void fail(const char *what, const char *s)
{
    fprintf(stderr, "fuzz_parse: %s\n  input: '%s'\n", what, s);
    abort();
}

/* Checks the contract every parser shares; returns true when RC is a success. */
static bool check_rc(int rc, bool untouched, const char *parser, const char *s)
{
    char what[128];
    if (rc == 0)
        return true;
    snprintf(what, sizeof(what), "%s refused without a negative code and a message", parser);
    if (rc > 0 || cru_err_code() != rc || cru_err_msg()[0] == '\0')
        fail(what, s);
    snprintf(what, sizeof(what), "%s wrote its output although it refused", parser);
    if (!untouched)
        fail(what, s);
    return false;
}

static void check_integers(const char *s)
{
    uint64_t u = SENTINEL_U, un = SENTINEL_U;
    int64_t i = SENTINEL_I, in = SENTINEL_I;

    /* Each call is a statement of its own: the output is compared with the sentinel only
     * after the parser has run. */
    int rc = cru_parse_u64(s, 0, UINT64_MAX, &u);
    bool u_ok = check_rc(rc, u == SENTINEL_U, "u64", s);
    rc = cru_parse_u64(s, 10, 1000, &un);
    bool un_ok = check_rc(rc, un == SENTINEL_U, "u64 [10,1000]", s);
    if (un_ok != (u_ok && u >= 10 && u <= 1000) || (un_ok && un != u))
        fail("u64 [10, 1000] disagrees with the full range", s);

    rc = cru_parse_i64(s, INT64_MIN, INT64_MAX, &i);
    bool i_ok = check_rc(rc, i == SENTINEL_I, "i64", s);
    rc = cru_parse_i64(s, -1000, 1000, &in);
    bool in_ok = check_rc(rc, in == SENTINEL_I, "i64 [-1000,1000]", s);
    if (in_ok != (i_ok && i >= -1000 && i <= 1000) || (in_ok && in != i))
        fail("i64 [-1000, 1000] disagrees with the full range", s);

    if (u_ok && !isdigit((unsigned char)s[0]))
        fail("u64 accepted text that does not start with a digit", s);
    if (u_ok && u <= INT64_MAX && (!i_ok || (uint64_t)i != u))
        fail("i64 disagrees with u64", s);
    if (i_ok && i >= 0 && isdigit((unsigned char)s[0]) && (!u_ok || (uint64_t)i != u))
        fail("u64 disagrees with i64", s);

    if (u_ok && u <= EXACT_MAX) {
        uint64_t size = SENTINEL_U, ms = SENTINEL_U;
        if (cru_parse_size(s, &size) < 0 || size != u)
            fail("a plain integer is not that many bytes", s);
        if (u <= EXACT_MAX / 1000 && (cru_parse_duration_ms(s, &ms) < 0 || ms != u * 1000))
            fail("a plain integer is not that many seconds", s);
    }
}

static void check_double(const char *s)
{
    double d = SENTINEL_D, dn = SENTINEL_D;
    int rc = cru_parse_double(s, -DBL_MAX, DBL_MAX, &d);
    bool d_ok = check_rc(rc, d == SENTINEL_D, "double", s);
    rc = cru_parse_double(s, -1, 1, &dn);
    bool dn_ok = check_rc(rc, dn == SENTINEL_D, "double [-1,1]", s);
    if (dn_ok != (d_ok && d >= -1 && d <= 1) || (dn_ok && dn != d))
        fail("double [-1, 1] disagrees with the full range", s);
}

static void check_units(char *s)
{
    uint64_t size = SENTINEL_U, upper = SENTINEL_U, ms = SENTINEL_U;

    int rc = cru_parse_size(s, &size);
    bool ok = check_rc(rc, size == SENTINEL_U, "size", s);
    rc = cru_parse_duration_ms(s, &ms);
    bool ms_ok = check_rc(rc, ms == SENTINEL_U, "duration", s);
    /* Neither can be negative, so a sign (even on "-0") is always refused. */
    if ((s[0] == '-' || s[0] == '+') && (ok || ms_ok))
        fail("a size or duration with a sign was accepted", s);
    if (!ok)
        return;
    for (char *p = s; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    if (cru_parse_size(s, &upper) < 0 || upper != size)
        fail("size units are not case-insensitive", s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_text(data, size);

    if (!s)
        return 0;

    cru_err_clear();
    check_integers(s);
    check_double(s);
    check_units(s); /* last: it upper-cases S */
    free(s);
    return 0;
}
