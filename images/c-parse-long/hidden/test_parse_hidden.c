/* Hidden parse_long tests; prints TAP. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "parse.h"

static int n, failed;

static void ok(int cond, const char *name)
{
    n++;
    failed += !cond;
    printf("%s %d - %s\n", cond ? "ok" : "not ok", n, name);
}

int main(void)
{
    long v;
    printf("1..9\n");
    v = 0;
    ok(parse_long("12345", &v) == 0 && v == 12345, "plain number");
    v = 0;
    ok(parse_long("  +7", &v) == 0 && v == 7 && parse_long("-0", &v) == 0 && v == 0, "spaces and signs");
    v = 5;
    ok(parse_long("", &v) == -1 && parse_long("   ", &v) == -1 && parse_long("-", &v) == -1 && v == 5, "empty input rejected");
    v = 5;
    ok(parse_long("12abc", &v) == -1 && v == 5, "trailing garbage rejected");
    v = 5;
    ok(parse_long("42 ", &v) == -1 && parse_long("4 2", &v) == -1 && parse_long("1.5", &v) == -1 && v == 5, "trailing space or dot rejected");
    v = 5;
    ok(parse_long("99999999999999999999", &v) == -1 && v == 5, "overflow rejected");
    v = 5;
    ok(parse_long("-99999999999999999999", &v) == -1 && v == 5, "underflow rejected");
    char buf[64];
    snprintf(buf, sizeof buf, "%ld", LONG_MAX);
    v = 0;
    int a = parse_long(buf, &v) == 0 && v == LONG_MAX;
    snprintf(buf, sizeof buf, "%ld", LONG_MIN);
    v = 0;
    ok(a && parse_long(buf, &v) == 0 && v == LONG_MIN, "limits accepted");
    v = 5;
    ok(parse_long("0x1A", &v) == -1 && v == 5, "hex rejected");
    return failed ? 1 : 0;
}
