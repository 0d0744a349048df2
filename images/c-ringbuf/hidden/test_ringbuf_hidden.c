/* Hidden ring buffer tests: exit status 0 when every test passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ringbuf.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: %s\n", __func__, __LINE__, #c); failures++; return; } } while (0)

static void test_basic(void)
{
    ringbuf *rb = rb_new(4);
    CHECK(rb && rb_capacity(rb) == 4 && rb_len(rb) == 0 && rb_space(rb) == 4);
    uint8_t out[4];
    CHECK(rb_pop(rb, out, 4) == 0);
    CHECK(rb_push(rb, (const uint8_t *)"ab", 2) == 2 && rb_len(rb) == 2 && rb_space(rb) == 2);
    CHECK(rb_pop(rb, out, 1) == 1 && out[0] == 'a');
    rb_free(rb);
}

static void test_fill_to_capacity(void)
{
    ringbuf *rb = rb_new(4);
    CHECK(rb_push(rb, (const uint8_t *)"wxyz", 4) == 4);
    CHECK(rb_len(rb) == 4 && rb_space(rb) == 0);
    CHECK(rb_push(rb, (const uint8_t *)"!", 1) == 0);
    uint8_t out[4] = {0};
    CHECK(rb_pop(rb, out, 4) == 4 && memcmp(out, "wxyz", 4) == 0);
    CHECK(rb_len(rb) == 0 && rb_space(rb) == 4);
    rb_free(rb);
}

static void test_push_truncates(void)
{
    ringbuf *rb = rb_new(5);
    CHECK(rb_push(rb, (const uint8_t *)"abcdefgh", 8) == 5);
    CHECK(rb_len(rb) == 5);
    uint8_t out[8] = {0};
    CHECK(rb_pop(rb, out, 8) == 5 && memcmp(out, "abcde", 5) == 0);
    rb_free(rb);
}

static void test_capacity_one(void)
{
    ringbuf *rb = rb_new(1);
    uint8_t b = 0;
    for (int i = 0; i < 10; i++) {
        uint8_t v = (uint8_t)i;
        CHECK(rb_push(rb, &v, 1) == 1 && rb_len(rb) == 1);
        CHECK(rb_push(rb, &v, 1) == 0);
        CHECK(rb_pop(rb, &b, 1) == 1 && b == v && rb_len(rb) == 0);
    }
    rb_free(rb);
}

static void test_peek_wraps(void)
{
    ringbuf *rb = rb_new(6);
    uint8_t out[6] = {0};
    CHECK(rb_push(rb, (const uint8_t *)"1234", 4) == 4);
    CHECK(rb_pop(rb, out, 3) == 3);
    CHECK(rb_push(rb, (const uint8_t *)"56789", 5) == 5);
    memset(out, 0, sizeof out);
    CHECK(rb_peek(rb, out, 6) == 6 && memcmp(out, "456789", 6) == 0);
    CHECK(rb_len(rb) == 6);
    memset(out, 0, sizeof out);
    CHECK(rb_pop(rb, out, 6) == 6 && memcmp(out, "456789", 6) == 0);
    rb_free(rb);
}

static void test_stream_against_model(void)
{
    /* Push and pop pseudo-random amounts; compare with a plain array FIFO. */
    enum { CAP = 7, TOTAL = 20000 };
    ringbuf *rb = rb_new(CAP);
    static uint8_t model[TOTAL];
    size_t produced = 0, consumed = 0;
    unsigned seed = 12345;
    while (consumed < TOTAL) {
        seed = seed * 1103515245u + 12345u;
        size_t want = (seed >> 16) % (CAP + 3);
        uint8_t chunk[CAP + 3];
        for (size_t i = 0; i < want; i++)
            chunk[i] = (uint8_t)((produced + i) * 31 + 7);
        if (produced + want > TOTAL)
            want = TOTAL - produced;
        size_t expect = want < CAP - (produced - consumed) ? want : CAP - (produced - consumed);
        size_t got = rb_push(rb, chunk, want);
        CHECK(got == expect);
        memcpy(model + produced, chunk, got);
        produced += got;
        CHECK(rb_len(rb) == produced - consumed);
        seed = seed * 1103515245u + 12345u;
        size_t take = (seed >> 16) % (CAP + 3);
        uint8_t out[CAP + 3];
        size_t n = rb_pop(rb, out, take);
        size_t avail = produced - consumed;
        CHECK(n == (take < avail ? take : avail));
        CHECK(memcmp(out, model + consumed, n) == 0);
        consumed += n;
        if (produced == TOTAL && rb_len(rb) == 0)
            break;
    }
    CHECK(consumed == TOTAL);
    rb_free(rb);
}

int main(void)
{
    test_basic();
    test_fill_to_capacity();
    test_push_truncates();
    test_capacity_one();
    test_peek_wraps();
    test_stream_against_model();
    if (failures) {
        fprintf(stderr, "%d test(s) failed\n", failures);
        return 1;
    }
    puts("all hidden ringbuf tests passed");
    return 0;
}
