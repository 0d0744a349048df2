/* Tests for lib/err: codes, messages, context chaining, errno, truncation, thread isolation. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "lib/err.h"

Test(err, set_returns_code_and_keeps_message)
{
    cru_err_clear();
    cr_assert_eq(cru_err_set(CRU_EINVAL, "bad value %d", 42), CRU_EINVAL);
    cr_assert_eq(cru_err_code(), CRU_EINVAL);
    cr_assert_str_eq(cru_err_msg(), "bad value 42");
}

Test(err, clear_resets)
{
    cru_err_set(CRU_EIO, "x");
    cru_err_clear();
    cr_assert_eq(cru_err_code(), CRU_OK);
    cr_assert_str_eq(cru_err_msg(), "");
}

Test(err, wrap_chains_context_outside_in)
{
    cru_err_set(CRU_EPARSE, "image.json:3:7: invalid token");
    cr_assert_eq(cru_err_wrap(CRU_EPARSE, "loading image %s", "fix-bug"), CRU_EPARSE);
    cru_err_wrap(CRU_EPARSE, "run");
    cr_assert_str_eq(cru_err_msg(), "run: loading image fix-bug: image.json:3:7: invalid token");
    cr_assert_eq(cru_err_code(), CRU_EPARSE);
}

Test(err, wrap_without_message_uses_description)
{
    cru_err_clear();
    cru_err_wrap(CRU_ENOMEM, "reading tokens");
    cr_assert_str_eq(cru_err_msg(), "reading tokens: out of memory");
    cr_assert_eq(cru_err_code(), CRU_ENOMEM);
}

Test(err, sys_maps_errno_and_appends_strerror)
{
    errno = ENOENT;
    cr_assert_eq(cru_err_sys("cannot open %s", "x.json"), CRU_ENOENT);
    cr_assert_str_eq(cru_err_msg(), "cannot open x.json: No such file or directory");
    cr_assert_eq(errno, ENOENT, "errno must be preserved");

    errno = EACCES;
    cr_assert_eq(cru_err_sys("open"), CRU_EPERM);
    errno = EMFILE;
    cr_assert_eq(cru_err_sys("open"), CRU_ELIMIT);
    errno = EBADF;
    cr_assert_eq(cru_err_sys("read"), CRU_EIO);
}

Test(err, errno_preserved_by_set_and_wrap)
{
    errno = EAGAIN;
    cru_err_set(CRU_EIO, "a");
    cru_err_wrap(CRU_EIO, "b");
    cr_assert_eq(errno, EAGAIN);
}

Test(err, long_messages_are_cut_visibly)
{
    char big[CRU_ERR_MAX * 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cru_err_set(CRU_EINVAL, "%s", big);
    size_t n = strlen(cru_err_msg());
    cr_assert_eq(n, CRU_ERR_MAX - 1);
    cr_assert_str_eq(cru_err_msg() + n - 3, "...");

    /* Wrapping a full message keeps the new context at the front and still marks the cut. */
    cru_err_wrap(CRU_EINVAL, "context");
    cr_assert(strncmp(cru_err_msg(), "context: aaa", 12) == 0);
    cr_assert_str_eq(cru_err_msg() + strlen(cru_err_msg()) - 3, "...");

    /* A message that exactly fits is not marked. */
    memset(big, 'b', CRU_ERR_MAX - 1);
    big[CRU_ERR_MAX - 1] = '\0';
    cru_err_set(CRU_EINVAL, "%s", big);
    cr_assert_eq(strlen(cru_err_msg()), CRU_ERR_MAX - 1);
    cr_assert_eq(cru_err_msg()[CRU_ERR_MAX - 2], 'b');
}

static void *other_thread(void *arg)
{
    (void)arg;
    cr_assert_eq(cru_err_code(), CRU_OK, "a new thread starts with no error");
    cru_err_set(CRU_ETIMEDOUT, "thread error");
    return NULL;
}

Test(err, last_error_is_per_thread)
{
    pthread_t t;
    cru_err_set(CRU_EEXIST, "main error");
    cr_assert_eq(pthread_create(&t, NULL, other_thread, NULL), 0);
    pthread_join(t, NULL);
    cr_assert_eq(cru_err_code(), CRU_EEXIST);
    cr_assert_str_eq(cru_err_msg(), "main error");
}

Test(err, names_and_descriptions)
{
    cr_assert_str_eq(cru_err_name(CRU_ELIMIT), "CRU_ELIMIT");
    cr_assert_str_eq(cru_err_str(CRU_EUNSAFE), "refused as unsafe");
    cr_assert_str_eq(cru_err_str(-999), "unknown error");
    /* Every code from CRU_OK down to CRU_EINTERNAL has a distinct name. */
    for (int a = CRU_EINTERNAL; a <= CRU_OK; a++) {
        cr_assert_neq(strcmp(cru_err_name(a), "CRU_E?"), 0, "code %d has no name", a);
        for (int b = CRU_EINTERNAL; b < a; b++)
            cr_assert_neq(strcmp(cru_err_name(a), cru_err_name(b)), 0);
    }
}
