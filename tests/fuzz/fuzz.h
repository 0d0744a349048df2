/* fuzz: the entry point every fuzz target defines.
 *
 * A target is built two ways: with clang's -fsanitize=fuzzer, where libFuzzer supplies main()
 * and generates inputs, and with any compiler against tests/fuzz/driver.c, which replays the
 * seed corpus (tests/fuzz/corpus/NAME/) on every `make test`. A target reports a broken
 * invariant with abort(), which both treat as a finding.
 */
#ifndef CRU_TESTS_FUZZ_H
#define CRU_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Runs one input. DATA holds exactly SIZE bytes and is not NUL-terminated. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* For targets whose input is text: DATA up to its first NUL, as a string to free(); NULL when
 * out of memory. */
static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    const uint8_t *nul = size > 0 ? memchr(data, '\0', size) : NULL;
    size_t n = nul ? (size_t)(nul - data) : size;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (n > 0)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

#endif
