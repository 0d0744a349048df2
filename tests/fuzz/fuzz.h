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

/* Runs one input. DATA holds exactly SIZE bytes and is not NUL-terminated. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
