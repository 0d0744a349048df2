/* Tests for model/device: `--device` and `--gpu-memory` parsed (good forms and bad ones, each
 * error naming the text), and the CUDA backend's shared object found and loaded. The loader is
 * pointed ($CRUCIBLE_CUDA_LIB) at a missing file, at a library without the entry point, at one
 * built for another ABI, and at the positive control, tests/plugins/fake_cuda.c, whose entry
 * hands back this program's own CPU backend through the symbols the program exports. Criterion
 * runs each test in a process of its own, so each starts with nothing loaded. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "model/device.h"

Test(device, parse_accepts_cpu_cuda_and_cuda_n)
{
    static const struct {
        const char *s;
        enum mdl_device_kind kind;
        int ordinal;
    } good[] = {
        { "cpu", MDL_DEV_CPU, 0 },       { "cuda", MDL_DEV_CUDA, 0 },
        { "cuda:0", MDL_DEV_CUDA, 0 },   { "cuda:1", MDL_DEV_CUDA, 1 },
        { "cuda:63", MDL_DEV_CUDA, 63 },
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct mdl_device d = { MDL_DEV_CUDA, 99 };
        cr_assert_eq(mdl_device_parse(good[i].s, &d), 0, "%s: %s", good[i].s, cru_err_msg());
        cr_assert_eq(d.kind, good[i].kind, "%s", good[i].s);
        cr_assert_eq(d.ordinal, good[i].ordinal, "%s", good[i].s);
    }
}

Test(device, parse_refuses_anything_else_naming_it)
{
    static const char *const bad[] = { "",
                                       "gpu",
                                       "CPU",
                                       "cuda:",
                                       "cuda:-1",
                                       "cuda:64",
                                       "cuda:1x",
                                       "cuda: 1",
                                       "cuda:+1",
                                       "cpu:0",
                                       "cudax",
                                       "cuda:1:2",
                                       "cuda:99999999999999999999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mdl_device d = MDL_DEVICE_INIT;
        cr_assert_eq(mdl_device_parse(bad[i], &d), CRU_EINVAL, "'%s' was accepted", bad[i]);
        char want[128];
        snprintf(want, sizeof(want), "unknown device '%s'", bad[i]);
        cr_assert(strstr(cru_err_msg(), want), "'%s': %s", bad[i], cru_err_msg());
        cr_assert(strstr(cru_err_msg(), "cuda:N"), "'%s': %s", bad[i], cru_err_msg());
    }
}

Test(device, memory_share_is_a_fraction_in_0_1)
{
    float f = 0;
    cr_assert_eq(mdl_device_memory_parse("0.9", &f), 0);
    cr_assert_float_eq(f, 0.9f, 1e-7);
    cr_assert_eq(mdl_device_memory_parse("1", &f), 0);
    cr_assert_eq(f, 1.0f);
    cr_assert_eq(mdl_device_memory_parse("1e-3", &f), 0);
    cr_assert_float_eq(f, 1e-3f, 1e-9);
    static const char *const bad[] = { "0", "0.0",  "-0.5", "1.5", "abc",
                                       "",  "0.5x", "nan",  "inf", "1e-60" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(mdl_device_memory_parse(bad[i], &f), CRU_EINVAL, "'%s' was accepted", bad[i]);
        cr_assert(strstr(cru_err_msg(), "0 < F <= 1"), "'%s': %s", bad[i], cru_err_msg());
    }
}

Test(device, cpu_is_the_linked_backend)
{
    struct mdl_device d = MDL_DEVICE_INIT;
    const struct mdl_backend *be = NULL;
    cr_assert_eq(mdl_device_backend(&d, &be), 0);
    cr_assert_eq(be, &mdl_backend_cpu);
}

static const char *plugins_dir(void)
{
    const char *dir = getenv("CRUCIBLE_PLUGINS");
    cr_assert(dir && *dir, "CRUCIBLE_PLUGINS is not set: run the tests with `make test`");
    return dir;
}

/* Loads cuda:0 with $CRUCIBLE_CUDA_LIB set to LIB (NULL: unset); returns the code. */
static int load_cuda(const char *lib, const struct mdl_backend **be)
{
    if (lib)
        cr_assert_eq(setenv(MDL_CUDA_LIB_ENV, lib, 1), 0);
    else
        cr_assert_eq(unsetenv(MDL_CUDA_LIB_ENV), 0);
    struct mdl_device d = { MDL_DEV_CUDA, 0 };
    return mdl_device_backend(&d, be);
}

Test(device, missing_library_named_with_what_to_do)
{
    const struct mdl_backend *be = NULL;
    cr_assert_eq(load_cuda("/nonexistent/libcrucible-cuda.so", &be), CRU_EUNSUPPORTED);
    cr_assert_null(be);
    const char *msg = cru_err_msg();
    cr_assert(strstr(msg, "the CUDA backend is not found: $CRUCIBLE_CUDA_LIB names "
                          "/nonexistent/libcrucible-cuda.so, which does not exist"),
              "%s", msg);
}

Test(device, default_is_the_library_beside_the_executable)
{
    const struct mdl_backend *be = NULL;
    /* This program is build/.../tests/crucible-tests: nothing named libcrucible-cuda.so lies
     * beside it. */
    cr_assert_eq(load_cuda(NULL, &be), CRU_EUNSUPPORTED);
    const char *msg = cru_err_msg();
    cr_assert(strstr(msg, "/tests/libcrucible-cuda.so (the executable's folder"), "%s", msg);
    cr_assert(strstr(msg, "build it with make on a machine with nvcc, or set CRUCIBLE_CUDA_LIB"),
              "%s", msg);
    /* An empty variable is no variable. */
    cr_assert_eq(load_cuda("", &be), CRU_EUNSUPPORTED);
}

Test(device, a_library_that_does_not_load_gives_the_loaders_reason)
{
    const char *src = getenv("CRUCIBLE_SRC");
    cr_assert(src && *src, "CRUCIBLE_SRC is not set: run the tests with `make test`");
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/plugins/fake_cuda.c", src);
    const struct mdl_backend *be = NULL;
    /* A file that is not a shared object at all. */
    cr_assert_eq(load_cuda(path, &be), CRU_EUNSUPPORTED);
    const char *msg = cru_err_msg();
    cr_assert(strstr(msg, "the CUDA backend ") && strstr(msg, "cannot be loaded: "), "%s", msg);
    cr_assert(strstr(msg, path), "%s", msg);
}

Test(device, a_library_without_the_entry_point)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/plugins/failing.so", plugins_dir());
    const struct mdl_backend *be = NULL;
    cr_assert_eq(load_cuda(path, &be), CRU_EUNSUPPORTED);
    cr_assert(strstr(cru_err_msg(), "is not a crucible CUDA backend: it has no entry point "
                                    "crucible_cuda_backend"),
              "%s", cru_err_msg());
}

Test(device, a_library_of_another_abi)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/plugins/old_abi_cuda.so", plugins_dir());
    const struct mdl_backend *be = NULL;
    cr_assert_eq(load_cuda(path, &be), CRU_EUNSUPPORTED);
    cr_assert(strstr(cru_err_msg(), "was built for another backend ABI than this crucible's"), "%s",
              cru_err_msg());
}

/* The positive control: the stand-in's undefined mdl_backend_cpu binds to this program's, so
 * the table that comes back is ours, the very same address. Loaded once: a second request,
 * whatever the variable says by then, gets the same table. */
Test(device, the_library_binds_to_the_executables_symbols_and_is_loaded_once)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/plugins/fake_cuda.so", plugins_dir());
    const struct mdl_backend *be = NULL, *again = NULL;
    cr_assert_eq(load_cuda(path, &be), 0, "%s", cru_err_msg());
    cr_assert_eq(be, &mdl_backend_cpu);
    cr_assert_eq(load_cuda("/nonexistent/libcrucible-cuda.so", &again), 0, "%s", cru_err_msg());
    cr_assert_eq(again, be);
}

/* A bare name is a file in the current folder, as a path on any command line is, not a search
 * of the library path. */
Test(device, a_bare_name_is_a_file_in_the_current_folder)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/tests/plugins", plugins_dir());
    cr_assert_eq(chdir(dir), 0, "%s", dir);
    const struct mdl_backend *be = NULL;
    cr_assert_eq(load_cuda("fake_cuda.so", &be), 0, "%s", cru_err_msg());
    cr_assert_eq(be, &mdl_backend_cpu);
}

/* A failure is kept too, message and all. */
Test(device, a_failure_is_kept)
{
    const struct mdl_backend *be = NULL;
    cr_assert_eq(load_cuda("/nonexistent/a.so", &be), CRU_EUNSUPPORTED);
    char first[1024];
    snprintf(first, sizeof(first), "%s", cru_err_msg());
    cru_err_clear();
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/plugins/fake_cuda.so", plugins_dir());
    cr_assert_eq(load_cuda(path, &be), CRU_EUNSUPPORTED);
    cr_assert_str_eq(cru_err_msg(), first);
}
