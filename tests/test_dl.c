/* Tests for lib/dl: the libraries loaded on first use. The loader is tried on a library that
 * is not there and on one that lacks a symbol (the errors must name the library, its soname,
 * the package and the feature), and each real library's table must come back whole, the same
 * table on every call. */
#include <criterion/criterion.h>
#include <string.h>

#include "lib/dl.h"
#include "lib/err.h"

static const char *const libc_symbols[] = { "strlen", "no_such_function_in_libc" };

static const struct cru_dl_spec missing = {
    "libmissing",  "libcrucible-test-missing.so.0",
    "libmissing0", "the test feature",
    libc_symbols,  1,
};

Test(dl, missing_library_names_it_its_package_and_the_feature)
{
    void *slots[1] = { NULL };
    cr_assert_eq(cru_dl_open(&missing, slots), CRU_EUNSUPPORTED);
    const char *msg = cru_err_msg();
    cr_assert(strstr(msg, "the test feature needs libmissing (libcrucible-test-missing.so.0, "
                          "Debian package libmissing0), which cannot be loaded: "),
              "message: %s", msg);
    /* dlerror's reason follows. */
    cr_assert(strstr(msg, "No such file"), "message: %s", msg);
}

Test(dl, missing_package_is_left_out_of_the_message)
{
    struct cru_dl_spec spec = missing;
    spec.package = "";
    void *slots[1];
    cr_assert_eq(cru_dl_open(&spec, slots), CRU_EUNSUPPORTED);
    cr_assert(strstr(cru_err_msg(), "(libcrucible-test-missing.so.0), which"), "message: %s",
              cru_err_msg());
}

Test(dl, missing_symbol_is_named)
{
    struct cru_dl_spec spec = { "libc", "libc.so.6", "libc6", "the test feature", libc_symbols, 2 };
    void *slots[2] = { NULL, NULL };
    cr_assert_eq(cru_dl_open(&spec, slots), CRU_EUNSUPPORTED);
    cr_assert(strstr(cru_err_msg(), "which lacks no_such_function_in_libc"), "message: %s",
              cru_err_msg());
    /* The positive control: the symbol before it was found. */
    cr_assert_not_null(slots[0]);
}

Test(dl, present_library_fills_the_slots)
{
    struct cru_dl_spec spec = { "libc", "libc.so.6", "libc6", "the test feature", libc_symbols, 1 };
    void *slot = NULL;
    cr_assert_eq(cru_dl_open(&spec, &slot), 0, "%s", cru_err_msg());
    size_t (*len)(const char *);
    memcpy(&len, &slot, sizeof(slot));
    cr_assert_eq(len("crucible"), 8);
}

/* Every pointer of a table is set (the tables are arrays of pointers in all but type). */
static void assert_all_set(const void *table, size_t size, const char *name)
{
    const void *const *p = table;
    for (size_t i = 0; i < size / sizeof(void *); i++)
        cr_assert_not_null(p[i], "%s: entry %zu is not set", name, i);
}

Test(dl, real_libraries_load_once_with_every_function)
{
    const struct cru_libgit2 *git, *git2;
    const struct cru_libarchive *ar, *ar2;
    const struct cru_libxml2 *xml, *xml2;
    const struct cru_libmhd *mhd, *mhd2;
    cr_assert_eq(cru_dl_libgit2(&git), 0, "%s", cru_err_msg());
    cr_assert_eq(cru_dl_libarchive(&ar), 0, "%s", cru_err_msg());
    cr_assert_eq(cru_dl_libxml2(&xml), 0, "%s", cru_err_msg());
    cr_assert_eq(cru_dl_libmhd(&mhd), 0, "%s", cru_err_msg());
    assert_all_set(git, sizeof(*git), "libgit2");
    assert_all_set(ar, sizeof(*ar), "libarchive");
    assert_all_set(xml, sizeof(*xml), "libxml2");
    assert_all_set(mhd, sizeof(*mhd), "libmicrohttpd");
    cr_assert_eq(cru_dl_libgit2(&git2), 0);
    cr_assert_eq(cru_dl_libarchive(&ar2), 0);
    cr_assert_eq(cru_dl_libxml2(&xml2), 0);
    cr_assert_eq(cru_dl_libmhd(&mhd2), 0);
    cr_assert(git == git2 && ar == ar2 && xml == xml2 && mhd == mhd2,
              "a second call returned another table");
    /* Initialised as the header promises: libgit2 counts its initialisations. */
    cr_assert_gt(git->git_libgit2_init(), 1);
    /* A call through a table reaches the library. */
    struct archive *a = ar->archive_read_new();
    cr_assert_not_null(a);
    cr_assert_eq(ar->archive_read_free(a), ARCHIVE_OK);
}
