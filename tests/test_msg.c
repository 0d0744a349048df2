/* test_msg: sandbox/msg's EXEC request: what sbx_exec_req_pack writes, sbx_exec_req_parse reads
 * back, and every way a payload can break the format is refused by both sides.
 *
 * Each refusal sits beside its positive control: the same request one step inside the bound
 * (4095 arguments, an entry with its '=', the payload with its last NUL) is accepted.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "sandbox/internal.h"

#define CAP SBX_EXEC_ARGS_MAX

/* The parser's output arrays, one slot longer than the cap it is given, with a canary there. */
static char *argv_out[CAP + 1], *envp_out[CAP + 1];
static char canary[] = "canary";

static int parse(char *p, size_t len, const char **cwd)
{
    argv_out[CAP] = envp_out[CAP] = canary;
    int rc = sbx_exec_req_parse(p, len, cwd, argv_out, CAP, envp_out, CAP);
    cr_assert(argv_out[CAP] == canary && envp_out[CAP] == canary, "a write past the caps");
    return rc;
}

static void pack_ok(struct cru_buf *b, const char *cwd, const char *const *argv,
                    const char *const *env)
{
    cru_buf_reset(b);
    cr_assert_eq(sbx_exec_req_pack(b, cwd, argv, env), 0, "%s", cru_err_msg());
}

static void set_counts(struct cru_buf *b, uint32_t argc, uint32_t envc)
{
    struct sbx_exec_req req = { argc, envc };
    memcpy(b->data, &req, sizeof(req));
}

Test(msg, pack_parse_round_trip)
{
    static const char *const argv[] = { "/bin/sh", "-c", "echo 'a b'", "", NULL };
    static const char *const env[] = { "PATH=/bin", "EMPTY=", "=odd", NULL };
    struct cru_buf b = CRU_BUF_INIT;
    pack_ok(&b, "/workspace/sub dir", argv, env);
    cr_assert_eq(b.len, sizeof(struct sbx_exec_req) + sizeof("/workspace/sub dir") +
                            sizeof("/bin/sh") + sizeof("-c") + sizeof("echo 'a b'") + 1 +
                            sizeof("PATH=/bin") + sizeof("EMPTY=") + sizeof("=odd"));

    const char *cwd = NULL;
    cr_assert_eq(parse(b.data, b.len, &cwd), 0);
    cr_assert_str_eq(cwd, "/workspace/sub dir");
    for (size_t i = 0; argv[i]; i++)
        cr_assert_str_eq(argv_out[i], argv[i]);
    cr_assert_null(argv_out[4]);
    for (size_t i = 0; env[i]; i++)
        cr_assert_str_eq(envp_out[i], env[i]);
    cr_assert_null(envp_out[3]);
    /* The pointers point into the payload: nothing was copied. */
    cr_assert(argv_out[0] > b.data && argv_out[0] < b.data + b.len);
    cru_buf_free(&b);
}

Test(msg, an_empty_environment_round_trips)
{
    static const char *const argv[] = { "true", NULL };
    static const char *const env[] = { NULL };
    struct cru_buf b = CRU_BUF_INIT;
    pack_ok(&b, "/", argv, env);
    const char *cwd = NULL;
    cr_assert_eq(parse(b.data, b.len, &cwd), 0);
    cr_assert_str_eq(argv_out[0], "true");
    cr_assert_null(argv_out[1]);
    cr_assert_null(envp_out[0]);
    cru_buf_free(&b);
}

/* 4095 arguments (or entries) fit the init's arrays with their NULL; 4096 do not. */
Test(msg, counts_at_the_caps)
{
    static const char *many[CAP + 1];
    static const char *const one[] = { "x", NULL };
    static const char *const none[] = { NULL };
    struct cru_buf b = CRU_BUF_INIT;
    const char *cwd;

    for (size_t i = 0; i < CAP; i++)
        many[i] = "a=1";
    many[CAP] = NULL;
    cr_assert_eq(sbx_exec_req_pack(&b, "/", many, none), CRU_ELIMIT);
    cr_assert(strstr(cru_err_msg(), "at most 4095 arguments and 4095 environment entries"), "%s",
              cru_err_msg());
    cru_buf_reset(&b);
    cr_assert_eq(sbx_exec_req_pack(&b, "/", one, many), CRU_ELIMIT);

    many[CAP - 1] = NULL; /* 4095 */
    pack_ok(&b, "/", many, none);
    cr_assert_eq(parse(b.data, b.len, &cwd), 0);
    cr_assert_null(argv_out[CAP - 1]);
    pack_ok(&b, "/", one, many);
    cr_assert_eq(parse(b.data, b.len, &cwd), 0);
    cr_assert_null(envp_out[CAP - 1]);

    /* A payload that claims 4096 (or 2^32 - 1) is refused before any string is looked at. */
    pack_ok(&b, "/", many, none);
    set_counts(&b, CAP, 0);
    cr_assert_eq(parse(b.data, b.len, &cwd), -1);
    set_counts(&b, 1, CAP);
    cr_assert_eq(parse(b.data, b.len, &cwd), -1);
    set_counts(&b, UINT32_MAX, 0);
    cr_assert_eq(parse(b.data, b.len, &cwd), -1);
    set_counts(&b, 1, UINT32_MAX);
    cr_assert_eq(parse(b.data, b.len, &cwd), -1);

    /* Smaller caps bound the same payload: argc 2 needs 3 slots. */
    static const char *const two[] = { "a", "b", NULL };
    char *a[3], *e[1];
    pack_ok(&b, "/", two, none);
    cr_assert_eq(sbx_exec_req_parse(b.data, b.len, &cwd, a, 3, e, 1), 0);
    cr_assert_eq(sbx_exec_req_parse(b.data, b.len, &cwd, a, 2, e, 1), -1);
    cr_assert_eq(sbx_exec_req_parse(b.data, b.len, &cwd, a, 3, e, 0), -1);
    cru_buf_free(&b);
}

Test(msg, payload_over_the_message_limit)
{
    static const char *const env[] = { NULL };
    size_t n = SBX_MSG_MAX - sizeof(struct sbx_exec_req) - sizeof("/") - 1;
    char *big = malloc(n + 2);
    cr_assert_not_null(big);
    memset(big, 'x', n + 1);
    big[n] = '\0';
    const char *argv[] = { big, NULL };
    struct cru_buf b = CRU_BUF_INIT;
    pack_ok(&b, "/", argv, env); /* exactly SBX_MSG_MAX */
    cr_assert_eq(b.len, SBX_MSG_MAX);
    const char *cwd;
    cr_assert_eq(parse(b.data, b.len, &cwd), 0);

    big[n] = 'x';
    big[n + 1] = '\0';
    cru_buf_reset(&b);
    cr_assert_eq(sbx_exec_req_pack(&b, "/", argv, env), CRU_ELIMIT);
    cr_assert(strstr(cru_err_msg(), "over the limit of 262144"), "%s", cru_err_msg());
    cr_assert_eq(b.len, 0, "nothing is packed when the request is too large");
    free(big);
    cru_buf_free(&b);
}

Test(msg, env_entry_without_equals)
{
    static const char *const argv[] = { "A=B", NULL };
    static const char *const bad[] = { "A=1", "NOEQUALS", NULL };
    static const char *const good[] = { "K=1", "L=2", NULL };
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(sbx_exec_req_pack(&b, "/C=D", argv, bad), CRU_EINVAL);
    cr_assert(strstr(cru_err_msg(), "environment entry 'NOEQUALS' has no '='"), "%s",
              cru_err_msg());

    /* The parser refuses it too: the same payload with the first entry's '=' replaced. The
     * '=' in cwd, in the argument and in the next entry do not count for it. */
    pack_ok(&b, "/C=D", argv, good);
    const char *cwd;
    cr_assert_eq(parse(b.data, b.len, &cwd), 0);
    char *eq = (char *)memmem(b.data, b.len, "K=1", 3) + 1;
    *eq = '_';
    cr_assert_eq(parse(b.data, b.len, &cwd), -1);
    cru_buf_free(&b);
}

Test(msg, missing_terminators_and_trailing_bytes)
{
    static const char *const argv[] = { "/bin/echo", "hi", NULL };
    static const char *const env[] = { "K=V", NULL };
    struct cru_buf b = CRU_BUF_INIT;
    pack_ok(&b, "/w", argv, env);
    const char *cwd;
    cr_assert_eq(parse(b.data, b.len, &cwd), 0);
    /* Every proper prefix is refused: a string is cut or missing. */
    for (size_t len = 0; len < b.len; len++)
        cr_assert_eq(parse(b.data, len, &cwd), -1, "prefix of %zu bytes accepted", len);
    /* The last NUL turned into a byte: the last entry runs off the end. */
    b.data[b.len - 1] = 'x';
    cr_assert_eq(parse(b.data, b.len, &cwd), -1);
    b.data[b.len - 1] = '\0';
    /* Bytes after the last string are refused, even NULs. */
    cr_assert_eq(cru_buf_append(&b, "\0", 1), 0);
    cr_assert_eq(parse(b.data, b.len, &cwd), -1);
    cru_buf_free(&b);
}

Test(msg, argc_zero)
{
    static const char *const empty[] = { NULL };
    static const char *const argv[] = { "x", NULL };
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(sbx_exec_req_pack(&b, "/", empty, empty), CRU_EINVAL);
    cr_assert_str_eq(cru_err_msg(), "empty command");

    pack_ok(&b, "/", argv, empty);
    const char *cwd;
    cr_assert_eq(parse(b.data, b.len, &cwd), 0);
    /* The same payload claiming no arguments, with and without the argument's bytes. */
    set_counts(&b, 0, 0);
    cr_assert_eq(parse(b.data, b.len, &cwd), -1);
    cr_assert_eq(parse(b.data, b.len - sizeof("x"), &cwd), -1);
    cru_buf_free(&b);
}
