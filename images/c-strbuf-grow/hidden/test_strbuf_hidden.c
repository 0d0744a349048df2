/* Hidden tests for strbuf; prints TAP. Each test runs in its own process so a
 * crash fails only that test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "strbuf.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); return 1; } } while (0)

static int t_small_appends(void)
{
    strbuf sb;
    sb_init(&sb);
    CHECK(sb_append(&sb, "ab") == 0);
    CHECK(sb_append_n(&sb, "cdef", 2) == 0);
    CHECK(strcmp(sb_str(&sb), "abcd") == 0 && sb.len == 4 && sb.cap >= 5);
    sb_free(&sb);
    CHECK(sb.buf == NULL && sb.len == 0 && sb.cap == 0);
    return 0;
}

static int t_empty_str(void)
{
    strbuf sb;
    sb_init(&sb);
    CHECK(strcmp(sb_str(&sb), "") == 0);
    CHECK(sb_append(&sb, "") == 0);
    CHECK(strcmp(sb_str(&sb), "") == 0 && sb.len == 0);
    sb_free(&sb);
    return 0;
}

static int t_many_small_appends(void)
{
    strbuf sb;
    sb_init(&sb);
    for (int i = 0; i < 1000; i++)
        CHECK(sb_append(&sb, "x") == 0);
    CHECK(sb.len == 1000 && sb.cap >= 1001 && strlen(sb_str(&sb)) == 1000);
    sb_free(&sb);
    return 0;
}

static int t_appendf_short(void)
{
    strbuf sb;
    sb_init(&sb);
    CHECK(sb_appendf(&sb, "%s-%05d-%c", "id", 42, 'z') == 0);
    CHECK(strcmp(sb_str(&sb), "id-00042-z") == 0 && sb.len == 10);
    sb_free(&sb);
    return 0;
}

static int t_reset_keeps_memory(void)
{
    strbuf sb;
    sb_init(&sb);
    CHECK(sb_append(&sb, "some text") == 0);
    char *before = sb.buf;
    size_t cap = sb.cap;
    sb_reset(&sb);
    CHECK(sb.len == 0 && sb.buf == before && sb.cap == cap && strcmp(sb_str(&sb), "") == 0);
    sb_free(&sb);
    return 0;
}

static int t_large_append(void)
{
    char big[5000];
    for (int i = 0; i < 4999; i++)
        big[i] = 'a' + i % 26;
    big[4999] = '\0';
    strbuf sb;
    sb_init(&sb);
    CHECK(sb_append(&sb, big) == 0);
    CHECK(sb.len == 4999);
    CHECK(sb.cap >= sb.len + 1);
    CHECK(strcmp(sb_str(&sb), big) == 0);
    CHECK(sb_append(&sb, big) == 0);
    CHECK(sb.len == 9998 && sb.cap >= 9999);
    CHECK(memcmp(sb.buf + 4999, big, 4999) == 0 && sb.buf[9998] == '\0');
    sb_free(&sb);
    return 0;
}

static int t_exact_fit(void)
{
    /* appending exactly up to the capacity must still leave room for the NUL */
    strbuf sb;
    sb_init(&sb);
    CHECK(sb_append(&sb, "x") == 0);
    size_t cap = sb.cap;
    while (sb.len + 1 < cap)
        CHECK(sb_append(&sb, "y") == 0);
    CHECK(sb.cap >= sb.len + 1);
    CHECK(sb_append_n(&sb, "0123456789abcdef0123456789abcdef0123456789", 42) == 0);
    CHECK(sb.cap >= sb.len + 1 && sb.buf[sb.len] == '\0');
    CHECK(memcmp(sb.buf + sb.len - 42, "0123456789abcdef0123456789abcdef0123456789", 42) == 0);
    sb_free(&sb);
    return 0;
}

static int t_grow_reserves(void)
{
    strbuf sb;
    sb_init(&sb);
    CHECK(sb_grow(&sb, 300) == 0);
    CHECK(sb.cap >= 301);
    CHECK(sb_append(&sb, "abc") == 0);
    CHECK(sb_grow(&sb, 1000) == 0);
    CHECK(sb.cap >= sb.len + 1001);
    CHECK(strcmp(sb_str(&sb), "abc") == 0);
    sb_free(&sb);
    return 0;
}

static int t_appendf_long(void)
{
    char word[701];
    memset(word, 'w', 700);
    word[700] = '\0';
    strbuf sb;
    sb_init(&sb);
    CHECK(sb_append(&sb, "<") == 0);
    CHECK(sb_appendf(&sb, "%s|%d", word, 12345) == 0);
    CHECK(sb.len == 1 + 700 + 6);
    CHECK(sb.buf[0] == '<' && memcmp(sb.buf + 1, word, 700) == 0 && strcmp(sb.buf + 701, "|12345") == 0);
    sb_free(&sb);
    return 0;
}

static int t_detach_resets(void)
{
    strbuf sb;
    sb_init(&sb);
    CHECK(sb_append(&sb, "payload") == 0);
    size_t len = 0;
    char *p = sb_detach(&sb, &len);
    CHECK(p != NULL && len == 7 && strcmp(p, "payload") == 0);
    CHECK(sb.buf == NULL && sb.len == 0 && sb.cap == 0);
    CHECK(sb_append(&sb, "again") == 0);
    CHECK(strcmp(sb_str(&sb), "again") == 0);
    CHECK(strcmp(p, "payload") == 0);
    free(p);
    sb_free(&sb);
    return 0;
}

static int t_detach_empty(void)
{
    strbuf sb;
    sb_init(&sb);
    size_t len = 99;
    char *p = sb_detach(&sb, &len);
    CHECK(p != NULL && len == 0 && p[0] == '\0');
    free(p);
    return 0;
}

static const struct { const char *name; int (*fn)(void); } tests[] = {
    {"small appends", t_small_appends},
    {"empty string", t_empty_str},
    {"many small appends", t_many_small_appends},
    {"appendf short", t_appendf_short},
    {"reset keeps memory", t_reset_keeps_memory},
    {"detach empty buffer", t_detach_empty},
    {"large append", t_large_append},
    {"append at exact capacity", t_exact_fit},
    {"grow reserves requested room", t_grow_reserves},
    {"appendf longer than 256 bytes", t_appendf_long},
    {"detach leaves buffer empty", t_detach_resets},
};

int main(void)
{
    int n = (int)(sizeof tests / sizeof tests[0]), failed = 0;
    printf("1..%d\n", n);
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(tests[i].fn());
        int status = 0;
        waitpid(pid, &status, 0);
        int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        failed += !ok;
        printf("%s %d - %s\n", ok ? "ok" : "not ok", i + 1, tests[i].name);
        fflush(stdout);
    }
    return failed ? 1 : 0;
}
