/* fuzz/exec_req: the EXEC request's payload as the sandbox's init parses it.
 *
 * The payload comes from the host over the control socket; the init splits it with
 * sbx_exec_req_parse into arrays it hands to execve, so a parse that points outside the
 * payload, leaves a string unterminated or writes past an array is a hole in the sandbox's
 * PID 1. Any input must be refused (-1) or give: at least one argument, every pointer inside
 * the payload with its string's NUL inside too, argv and envp NULL-terminated within their
 * caps, every environment entry with a '='. What parses must pack back to the same bytes with
 * sbx_exec_req_pack (the parser accepts exactly the packer's language) and parse again to the
 * same strings. The arrays are allocated at exactly their caps, so AddressSanitizer sees a
 * write one past the end; what parses with the init's caps is parsed again with caps just
 * large enough, and with one too small for either array.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "sandbox/internal.h"
#include "tests/fuzz/fuzz.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_exec_req: %s\n", what);
    abort();
}

static char **alloc_array(size_t cap)
{
    char **a = malloc((cap ? cap : 1) * sizeof(*a));
    if (!a)
        fail("out of memory");
    return a;
}

/* Checks that S is a string that starts and ends inside [BASE, BASE + LEN). */
static void check_inside(const char *s, const char *base, size_t len, const char *what)
{
    if (s == NULL || s < base || s >= base + len)
        fail(what);
    if (!memchr(s, '\0', (size_t)(base + len - s)))
        fail(what);
}

/* Checks one successful parse and returns the number of entries of ARR before its NULL, which
 * must come within CAP. */
static size_t check_array(char **arr, size_t cap, const char *base, size_t len, bool env)
{
    size_t n = 0;
    while (n < cap && arr[n] != NULL) {
        check_inside(arr[n], base, len, "an entry lies outside the payload or is unterminated");
        if (env && !strchr(arr[n], '='))
            fail("an environment entry without '=' was accepted");
        n++;
    }
    if (n == cap)
        fail("an array is not NULL-terminated within its cap");
    return n;
}

static int parse(char *p, size_t len, const char **cwd, char **argv, size_t argv_cap, char **envp,
                 size_t envp_cap)
{
    *cwd = NULL;
    return sbx_exec_req_parse(p, len, cwd, argv, argv_cap, envp, envp_cap);
}

/* Packs what was parsed, checks that it gives back the input's bytes, and parses that again. */
static void check_round_trip(const char *payload, size_t len, const char *cwd, char **argv,
                             size_t argc, char **envp, size_t envc)
{
    struct cru_buf b = CRU_BUF_INIT;
    if (sbx_exec_req_pack(&b, cwd, (const char *const *)argv, (const char *const *)envp) < 0) {
        fprintf(stderr, "fuzz_exec_req: pack refused what parse accepted: %s\n", cru_err_msg());
        abort();
    }
    if (b.len != len || memcmp(b.data, payload, len) != 0)
        fail("pack(parse(x)) differs from x");

    const char *cwd2;
    char **argv2 = alloc_array(SBX_EXEC_ARGS_MAX), **envp2 = alloc_array(SBX_EXEC_ARGS_MAX);
    if (parse(b.data, b.len, &cwd2, argv2, SBX_EXEC_ARGS_MAX, envp2, SBX_EXEC_ARGS_MAX) != 0)
        fail("the packed request does not parse");
    if (strcmp(cwd, cwd2) != 0)
        fail("the round trip changed cwd");
    for (size_t i = 0; i <= argc; i++) {
        if ((argv[i] == NULL) != (argv2[i] == NULL) || (argv[i] && strcmp(argv[i], argv2[i])))
            fail("the round trip changed argv");
    }
    for (size_t i = 0; i <= envc; i++) {
        if ((envp[i] == NULL) != (envp2[i] == NULL) || (envp[i] && strcmp(envp[i], envp2[i])))
            fail("the round trip changed envp");
    }
    free(argv2);
    free(envp2);
    cru_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly SIZE bytes, so that a read past the payload is caught, and a second one
     * to show that parsing changes nothing. */
    char *p = malloc(size ? size : 1), *orig = malloc(size ? size : 1);
    char **argv = alloc_array(SBX_EXEC_ARGS_MAX), **envp = alloc_array(SBX_EXEC_ARGS_MAX);
    if (!p || !orig)
        fail("out of memory");
    if (size > 0) {
        memcpy(p, data, size);
        memcpy(orig, data, size);
    }

    const char *cwd;
    int rc = parse(p, size, &cwd, argv, SBX_EXEC_ARGS_MAX, envp, SBX_EXEC_ARGS_MAX);
    if (size > 0 && memcmp(p, orig, size) != 0)
        fail("parse changed the payload");
    if (rc != 0 && rc != -1)
        fail("parse returned neither 0 nor -1");
    if (rc == 0) {
        check_inside(cwd, p, size, "cwd lies outside the payload or is unterminated");
        size_t argc = check_array(argv, SBX_EXEC_ARGS_MAX, p, size, false);
        size_t envc = check_array(envp, SBX_EXEC_ARGS_MAX, p, size, true);
        if (argc == 0)
            fail("an empty argv was accepted");
        check_round_trip(p, size, cwd, argv, argc, envp, envc);

        /* The caps: just enough room for the NULLs works, one less fails. */
        char **a = alloc_array(argc + 1), **e = alloc_array(envc + 1);
        if (parse(p, size, &cwd, a, argc + 1, e, envc + 1) != 0)
            fail("caps with room for the NULLs were refused");
        if (parse(p, size, &cwd, a, argc, e, envc + 1) != -1 ||
            parse(p, size, &cwd, a, argc + 1, e, envc) != -1)
            fail("caps without room for the NULLs were accepted");
        free(a);
        free(e);
    }
    free(argv);
    free(envp);
    free(p);
    free(orig);
    return 0;
}
