/* Tests for lib/buf: appends, formatting, growth bounds, detach. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"

Test(buf, append_and_printf)
{
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_str_eq(cru_buf_cstr(&b), "");
    cr_assert_eq(cru_buf_puts(&b, "abc"), 0);
    cr_assert_eq(cru_buf_putc(&b, '-'), 0);
    cr_assert_eq(cru_buf_printf(&b, "%d/%s", 7, "x"), 0);
    cr_assert_eq(cru_buf_append(&b, "\0z", 2), 0);
    cr_assert_eq(b.len, 9);
    cr_assert_eq(memcmp(b.data, "abc-7/x\0z", 9), 0);
    cr_assert_eq(b.data[b.len], '\0');
    cru_buf_free(&b);
    cr_assert_null(b.data);
    cru_buf_free(NULL);
}

Test(buf, grows_across_many_appends)
{
    struct cru_buf b = CRU_BUF_INIT;
    for (int i = 0; i < 100000; i++)
        cr_assert_eq(cru_buf_printf(&b, "%05d", i % 100000), 0);
    cr_assert_eq(b.len, 500000);
    cr_assert_eq(memcmp(b.data + 5 * 12345, "12345", 5), 0);
    cr_assert_geq(b.cap, b.len + 1);
    cru_buf_free(&b);
}

Test(buf, reset_keeps_memory)
{
    struct cru_buf b = CRU_BUF_INIT;
    cru_buf_puts(&b, "hello");
    char *p = b.data;
    cru_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(cru_buf_cstr(&b), "");
    cru_buf_puts(&b, "hi");
    cr_assert_eq(b.data, p);
    cru_buf_free(&b);
}

Test(buf, oversized_request_fails_and_keeps_contents)
{
    struct cru_buf b = CRU_BUF_INIT;
    cru_buf_puts(&b, "keep");
    cr_assert_eq(cru_buf_reserve(&b, CRU_BUF_MAX), CRU_ELIMIT);
    cr_assert_eq(cru_buf_append(&b, "x", SIZE_MAX - 2), CRU_ELIMIT);
    cr_assert(strstr(cru_err_msg(), "exceed") != NULL);
    cr_assert_str_eq(cru_buf_cstr(&b), "keep");
    cr_assert_eq(b.len, 4);
    cru_buf_free(&b);
}

Test(buf, detach_hands_over_memory)
{
    struct cru_buf b = CRU_BUF_INIT;
    size_t n = 99;
    char *s = cru_buf_detach(&b, &n);
    cr_assert_str_eq(s, "");
    cr_assert_eq(n, 0);
    free(s);

    cru_buf_puts(&b, "data");
    s = cru_buf_detach(&b, &n);
    cr_assert_str_eq(s, "data");
    cr_assert_eq(n, 4);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    free(s);
}
