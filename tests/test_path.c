/* Tests for lib/path: joins that stay inside the root and refusals of every escape. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/path.h"

static void joins(const char *root, const char *rel, const char *want)
{
    char *out = NULL;
    cr_assert_eq(cru_path_join(&out, root, rel), 0, "%s + %s: %s", root, rel, cru_err_msg());
    cr_assert_str_eq(out, want, "%s + %s", root, rel);
    free(out);
}

static void refuses(const char *rel, int code)
{
    char *out = NULL;
    cr_assert_eq(cru_path_join(&out, "/ws", rel), code, "'%s' must be refused", rel);
    cr_assert_null(out);
    cr_assert_neq(cru_err_msg()[0], '\0');
}

Test(path, joins_and_normalises)
{
    joins("/ws", "a/b.txt", "/ws/a/b.txt");
    joins("/ws/", "a//b/./c/", "/ws/a/b/c");
    joins("/ws", "", "/ws");
    joins("/ws", ".", "/ws");
    joins("/ws", "./././", "/ws");
    joins("/", "etc", "/etc");
    joins("/", "", "/");
    joins("rel/root", "x", "rel/root/x");
    joins("/ws", "..a/b..c/...", "/ws/..a/b..c/...");
    joins("/ws", "a\\..\\b", "/ws/a\\..\\b");
}

Test(path, refuses_escapes)
{
    refuses("..", CRU_EUNSAFE);
    refuses("../etc/passwd", CRU_EUNSAFE);
    refuses("a/../../etc", CRU_EUNSAFE);
    refuses("a/..", CRU_EUNSAFE);
    refuses("./..", CRU_EUNSAFE);
    refuses("a//..//b", CRU_EUNSAFE);
    refuses("/etc/passwd", CRU_EUNSAFE);
    refuses("//etc", CRU_EUNSAFE);
    cr_assert_str_eq(cru_err_msg(), "path '//etc' is absolute; a relative path is required");
    refuses("a/b/c/..", CRU_EUNSAFE);
    cr_assert_str_eq(cru_err_msg(), "path 'a/b/c/..' has a '..' component");
}

Test(path, refuses_overlong)
{
    char name[300];
    memset(name, 'n', 256);
    name[256] = '\0';
    refuses(name, CRU_ELIMIT);
    name[255] = '\0';
    char *out = NULL;
    cr_assert_eq(cru_path_join(&out, "/ws", name), 0, "255 bytes is a legal name");
    free(out);

    char *deep = malloc(CRU_PATH_MAX + 10);
    for (size_t i = 0; i < CRU_PATH_MAX + 8; i += 2)
        memcpy(deep + i, "d/", 2);
    deep[CRU_PATH_MAX + 8] = '\0';
    refuses(deep, CRU_ELIMIT);
    /* Under the limit alone, but over it once joined to the root. */
    deep[CRU_PATH_MAX - 2] = '\0';
    refuses(deep, CRU_ELIMIT);
    free(deep);

    cr_assert_eq(cru_path_join(&out, "", "a"), CRU_EINVAL);
}

Test(path, clean)
{
    char *out = NULL;
    cr_assert_eq(cru_path_clean(&out, "a/./b//"), 0);
    cr_assert_str_eq(out, "a/b");
    free(out);
    cr_assert_eq(cru_path_clean(&out, "/a"), CRU_EUNSAFE);
}
