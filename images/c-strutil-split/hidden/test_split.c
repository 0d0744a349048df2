/* Hidden tests for str_split / str_split_free; prints TAP, one process per test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "strutil.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, __LINE__); return 1; } } while (0)

static int expect(const char *s, char sep, const char **want, size_t nwant)
{
    size_t count = 12345;
    char **parts = str_split(s, sep, &count);
    CHECK(parts != NULL);
    CHECK(count == nwant);
    for (size_t i = 0; i < nwant; i++)
        CHECK(parts[i] != NULL && strcmp(parts[i], want[i]) == 0);
    CHECK(parts[nwant] == NULL);
    str_split_free(parts);
    return 0;
}

static int t_simple(void)
{
    const char *w[] = {"a", "bb", "ccc"};
    return expect("a,bb,ccc", ',', w, 3);
}

static int t_no_separator(void)
{
    const char *w[] = {"hello world"};
    return expect("hello world", ',', w, 1);
}

static int t_empty_string(void)
{
    const char *w[] = {""};
    return expect("", ',', w, 1);
}

static int t_empty_fields(void)
{
    const char *w[] = {"", "x", "", "", "y", ""};
    return expect(",x,,,y,", ',', w, 6);
}

static int t_only_separators(void)
{
    const char *w[] = {"", "", ""};
    return expect("::", ':', w, 3);
}

static int t_other_separator(void)
{
    const char *w[] = {"usr", "local", "bin"};
    return expect("usr/local/bin", '/', w, 3);
}

static int t_count_may_be_null(void)
{
    char **parts = str_split("1 2 3 4", ' ', NULL);
    CHECK(parts != NULL);
    size_t n = 0;
    while (parts[n])
        n++;
    CHECK(n == 4 && strcmp(parts[3], "4") == 0);
    str_split_free(parts);
    return 0;
}

static int t_input_untouched_and_copies(void)
{
    char input[] = "k=v;x=y";
    char **parts = str_split(input, ';', NULL);
    CHECK(parts != NULL);
    CHECK(strcmp(input, "k=v;x=y") == 0);
    input[0] = 'Z';
    CHECK(strcmp(parts[0], "k=v") == 0 && strcmp(parts[1], "x=y") == 0);
    parts[0][0] = 'Q';
    CHECK(strcmp(parts[1], "x=y") == 0);
    str_split_free(parts);
    return 0;
}

static int t_long_input(void)
{
    size_t n = 20000;
    char *s = malloc(n * 4 + 1);
    CHECK(s != NULL);
    char *p = s;
    for (size_t i = 0; i < n; i++) {
        memcpy(p, "abc|", 4);
        p += 4;
    }
    *p = '\0';
    size_t count = 0;
    char **parts = str_split(s, '|', &count);
    CHECK(parts != NULL && count == n + 1);
    CHECK(strcmp(parts[0], "abc") == 0 && strcmp(parts[n - 1], "abc") == 0 && strcmp(parts[n], "") == 0);
    CHECK(parts[n + 1] == NULL);
    str_split_free(parts);
    free(s);
    return 0;
}

static int t_free_null(void)
{
    str_split_free(NULL);
    return 0;
}

static int t_existing_functions(void)
{
    char a[] = "\t x \n";
    CHECK(strcmp(str_trim(a), "x") == 0);
    CHECK(str_startswith("abc", "ab") && str_count_char("aXbXc", 'X') == 2);
    return 0;
}

static const struct { const char *name; int (*fn)(void); } tests[] = {
    {"existing functions unchanged", t_existing_functions},
    {"split simple", t_simple},
    {"split without separator", t_no_separator},
    {"split empty string", t_empty_string},
    {"split keeps empty fields", t_empty_fields},
    {"split only separators", t_only_separators},
    {"split other separator", t_other_separator},
    {"count may be NULL", t_count_may_be_null},
    {"input untouched, parts are copies", t_input_untouched_and_copies},
    {"split long input", t_long_input},
    {"free NULL is a no-op", t_free_null},
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
