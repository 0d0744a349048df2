/* fuzz/path: the confinement invariants of cru_path_clean and cru_path_join.
 *
 * The input up to its first NUL is the relative path (a C string cannot carry more). Whatever
 * it is, a cleaned path that is returned is relative, has no "..", "." or empty component and
 * no trailing slash, and cleans to itself; a joined path is the root itself or lies below it.
 * A refusal has a negative code and a message, and clean and join refuse the same inputs
 * (join may also refuse one that only its root makes too long).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/path.h"
#include "tests/fuzz/fuzz.h"

static void fail(const char *what, const char *rel, const char *result)
{
    fprintf(stderr, "fuzz_path: %s\n  input:  '%s'\n  result: '%s'\n", what, rel,
            result ? result : "(none)");
    abort();
}

static void check_failure(int rc, const char *rel)
{
    if (rc >= 0 || cru_err_code() != rc || cru_err_msg()[0] == '\0')
        fail("a refusal without a negative code and a message", rel, NULL);
}

/* True when some '/'-separated component of P is NAME (or empty, for NAME ""). */
static bool has_component(const char *p, const char *name)
{
    size_t want = strlen(name);
    for (;;) {
        size_t n = strcspn(p, "/");
        if (n == want && strncmp(p, name, n) == 0)
            return true;
        if (p[n] == '\0')
            return false;
        p += n + 1;
    }
}

static void check_clean(const char *rel, char **clean)
{
    int rc = cru_path_clean(clean, rel);
    if (rc < 0) {
        check_failure(rc, rel);
        *clean = NULL;
        return;
    }
    const char *c = *clean;
    if (c[0] == '/')
        fail("clean returned an absolute path", rel, c);
    if (has_component(c, ".."))
        fail("clean returned a '..' component", rel, c);
    if (c[0] != '\0' && (has_component(c, ".") || has_component(c, "")))
        fail("clean left a '.' or empty component", rel, c);
    if (strlen(c) >= CRU_PATH_MAX)
        fail("clean returned a path over CRU_PATH_MAX", rel, c);

    char *twice = NULL;
    if (cru_path_clean(&twice, c) < 0 || strcmp(twice, c) != 0)
        fail("cleaning a clean path changed it", rel, twice);
    free(twice);
}

/* Joins REL to ROOT (spelt ROOT_LEN bytes without trailing slashes) and checks the result
 * against CLEAN, the outcome of cru_path_clean (NULL when it refused). */
static void check_join(const char *root, size_t root_len, const char *rel, const char *clean)
{
    char *joined = NULL;
    int rc = cru_path_join(&joined, root, rel);
    if (rc < 0) {
        check_failure(rc, rel);
        if (clean && rc != CRU_ELIMIT)
            fail("join refused a path that clean accepts", rel, clean);
        return;
    }
    if (!clean)
        fail("join accepted a path that clean refuses", rel, joined);
    if (strncmp(joined, root, root_len) != 0)
        fail("join left the root", rel, joined);
    if (root_len == 1) {
        /* The root "/": the result is "/" or "/" followed by the clean path. */
        if (strcmp(joined + 1, clean) != 0)
            fail("join under '/' is not '/' + the clean path", rel, joined);
    } else if (joined[root_len] != '\0') {
        if (joined[root_len] != '/' || strcmp(joined + root_len + 1, clean) != 0)
            fail("join is not ROOT/clean", rel, joined);
    } else if (clean[0] != '\0') {
        fail("join dropped a non-empty path", rel, joined);
    }
    if (has_component(joined + 1, ".."))
        fail("join returned a '..' component", rel, joined);
    free(joined);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *rel = fuzz_text(data, size);
    char *clean = NULL;

    if (!rel)
        return 0;

    cru_err_clear();
    check_clean(rel, &clean);
    check_join("/r", 2, rel, clean);
    /* Trailing slashes on the root are dropped, so this must equal the join to "/r". */
    check_join("/r//", 2, rel, clean);
    check_join("/", 1, rel, clean);

    free(clean);
    free(rel);
    return 0;
}
