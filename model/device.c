/* device: parses `--device` and finds the backend that computes there.
 *
 * The CPU backend is linked in. The CUDA backend lives in a shared object so that the binary
 * needs no CUDA library to start (model/device.h gives the order it is looked for in): this
 * module opens it with dlopen(RTLD_NOW | RTLD_LOCAL), so that a library missing one of its own
 * dependencies (libcudart, libcublas, the driver's libcuda) fails here with the loader's reason
 * rather than at its first call, then checks its entry point and ABI. It neither initialises
 * CUDA nor looks for a GPU: the backend's load() does that and reports what it finds.
 */
#include "model/device.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/str.h"

int mdl_device_parse(const char *s, struct mdl_device *out)
{
    uint64_t n;
    if (!s)
        return cru_err_set(CRU_EINVAL, "no device given: expected cpu, cuda or cuda:N");
    if (strcmp(s, "cpu") == 0) {
        *out = (struct mdl_device){ MDL_DEV_CPU, 0 };
        return 0;
    }
    if (strcmp(s, "cuda") == 0) {
        *out = (struct mdl_device){ MDL_DEV_CUDA, 0 };
        return 0;
    }
    if (strncmp(s, "cuda:", 5) == 0) {
        if (cru_parse_u64(s + 5, 0, MDL_MAX_DEVICES - 1, &n) < 0)
            return cru_err_set(CRU_EINVAL,
                               "unknown device '%s': in cuda:N, N is a device number from 0 "
                               "to %d",
                               s, MDL_MAX_DEVICES - 1);
        *out = (struct mdl_device){ MDL_DEV_CUDA, (int)n };
        return 0;
    }
    return cru_err_set(CRU_EINVAL, "unknown device '%s': expected cpu, cuda or cuda:N", s);
}

int mdl_device_memory_parse(const char *s, float *out)
{
    double d;
    /* A share that rounds to a float of 0 would leave the backend nothing. */
    if (!s || cru_parse_double(s, 0, 1, &d) < 0 || !((float)d > 0))
        return cru_err_set(CRU_EINVAL,
                           "'%s' is not a share of the device's memory: expected F with "
                           "0 < F <= 1, like 0.9",
                           s ? s : "");
    *out = (float)d;
    return 0;
}

/* The CUDA backend's shared object is process-wide, like any library: one attempt to load it,
 * whose outcome (table or message) is written once under the lock and only read after it. The
 * library is never closed: its table is lent to every engine of the process. */
static pthread_mutex_t cuda_lock = PTHREAD_MUTEX_INITIALIZER;
static bool cuda_tried;
static int cuda_rc;
static const struct mdl_backend *cuda_table;
static char cuda_why[CRU_ERR_MAX];

/* Where to look: $CRUCIBLE_CUDA_LIB as given, else the library beside the executable. Sets
 * *FROM_ENV to say which. */
static int cuda_path(char *path, size_t cap, bool *from_env)
{
    const char *env = getenv(MDL_CUDA_LIB_ENV);
    *from_env = env && *env;
    if (*from_env) {
        /* A name without a slash would send dlopen() searching the library path: it is a
         * file in the current folder, as for any other program taking a path. */
        int len = snprintf(path, cap, "%s%s", strchr(env, '/') ? "" : "./", env);
        if (len < 0 || (size_t)len >= cap)
            return cru_err_set(CRU_ELIMIT, "$%s is longer than %zu bytes", MDL_CUDA_LIB_ENV,
                               cap - 3);
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        return cru_err_sys("finding the executable's folder (to load %s beside it): readlink "
                           "/proc/self/exe",
                           MDL_CUDA_LIB);
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    size_t dir = slash ? (size_t)(slash - exe) : 0;
    int len = snprintf(path, cap, "%.*s/%s", (int)dir, exe, MDL_CUDA_LIB);
    if (len < 0 || (size_t)len >= cap)
        return cru_err_set(CRU_ELIMIT, "the executable's folder %.*s is too long", (int)dir, exe);
    return 0;
}

/* A dlsym address into a typed function pointer. POSIX makes them the same size for dlsym's
 * sake; memcpy says so without punning through a cast. */
static mdl_cuda_entry_fn entry_of(void *addr)
{
    mdl_cuda_entry_fn f;
    memcpy(&f, &addr, sizeof(f));
    return f;
}

/* The one attempt: find, open, look up the entry, check the ABI. */
static int cuda_load(const struct mdl_backend **out)
{
    char path[PATH_MAX];
    bool from_env;
    struct stat st;
    int rc = cuda_path(path, sizeof(path), &from_env);
    if (rc < 0)
        return cru_err_wrap(rc, "the CUDA backend");
    if (stat(path, &st) < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        if (from_env)
            return cru_err_set(CRU_EUNSUPPORTED,
                               "the CUDA backend is not found: $%s names %s, which does not "
                               "exist (unset it to load %s from the executable's folder)",
                               MDL_CUDA_LIB_ENV, path, MDL_CUDA_LIB);
        return cru_err_set(CRU_EUNSUPPORTED,
                           "the CUDA backend is not found: no %s (the executable's folder; $%s "
                           "is not set): build it with make on a machine with nvcc, or set "
                           "%s to its path",
                           path, MDL_CUDA_LIB_ENV, MDL_CUDA_LIB_ENV);
    }
    /* dlerror() is per thread: reading it once clears any earlier message. */
    dlerror();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        why = why ? why : "unknown dlopen error";
        /* A symbol of crucible's that the library needs and the executable lacks: the two
         * come from different trees. Anything else is a library of its own that is missing. */
        const char *hint =
            strstr(why, "undefined symbol")
                ? "it was built from another version of crucible: rebuild it with this one"
                : "install the CUDA libraries it was built with (libcudart, libcublas) and the "
                  "NVIDIA driver (libcuda), or add their folder to LD_LIBRARY_PATH";
        return cru_err_set(CRU_EUNSUPPORTED, "the CUDA backend %s cannot be loaded: %s; %s", path,
                           why, hint);
    }
    dlerror();
    void *addr = dlsym(h, MDL_CUDA_ENTRY);
    const char *why = dlerror();
    if (why || !addr)
        return cru_err_set(CRU_EUNSUPPORTED,
                           "%s is not a crucible CUDA backend: it has no entry point %s (%s)", path,
                           MDL_CUDA_ENTRY, why ? why : "a null address");
    const struct mdl_backend *be = entry_of(addr)(MDL_BACKEND_ABI);
    if (!be)
        return cru_err_set(CRU_EUNSUPPORTED,
                           "the CUDA backend %s was built for another backend ABI than this "
                           "crucible's (%d): rebuild it with this version of crucible",
                           path, MDL_BACKEND_ABI);
    if (!be->load || !be->forward || !be->limits || !be->free)
        return cru_err_set(CRU_EUNSUPPORTED, "the CUDA backend %s has an incomplete table", path);
    *out = be;
    return 0;
}

int mdl_device_backend(const struct mdl_device *d, const struct mdl_backend **out)
{
    *out = NULL;
    if (d->kind == MDL_DEV_CPU) {
        *out = &mdl_backend_cpu;
        return 0;
    }
    if (d->kind != MDL_DEV_CUDA || d->ordinal < 0 || d->ordinal >= MDL_MAX_DEVICES)
        return cru_err_set(CRU_EINVAL, "no such device (kind %d, number %d)", (int)d->kind,
                           d->ordinal);
    pthread_mutex_lock(&cuda_lock);
    if (!cuda_tried) {
        cuda_tried = true;
        cuda_rc = cuda_load(&cuda_table);
        if (cuda_rc < 0)
            snprintf(cuda_why, sizeof(cuda_why), "%s", cru_err_msg());
    }
    int rc = cuda_rc;
    const struct mdl_backend *be = cuda_table;
    pthread_mutex_unlock(&cuda_lock);
    if (rc < 0)
        return cru_err_set(rc, "%s", cuda_why);
    *out = be;
    return 0;
}
