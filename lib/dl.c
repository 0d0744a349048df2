/* dl: libgit2, libarchive, libxml2 and libmicrohttpd, loaded on first use (see dl.h for why).
 *
 * Each library is described once (soname, Debian package, the feature that needs it, the
 * functions called), opened with dlopen(RTLD_NOW | RTLD_LOCAL) so that a library missing one
 * of its own dependencies fails here and not in the middle of a call, and its table filled
 * with dlsym. The outcome, table or error message, is kept for the life of the process. This
 * module does not wrap or check the calls made through the tables.
 */
#include "lib/dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"

/* The soname of each library built against and the package that ships it are read off the
 * build machine by the Makefile (deps/dl-defs.sh), so they follow the headers compiled
 * against. */
#if !defined(CRU_LIBGIT2_SONAME) || !defined(CRU_LIBARCHIVE_SONAME) ||                             \
    !defined(CRU_LIBXML2_SONAME) || !defined(CRU_LIBMHD_SONAME)
#error "the sonames of the libraries loaded on first use are not defined: build with make"
#endif

/* The most functions one library's table holds. */
#define DL_SYMBOLS_MAX 64

#define DL_NAME(name)  #name,
#define DL_COUNT(name) +1

int cru_dl_open(const struct cru_dl_spec *spec, void **slots)
{
    char pkg[128] = "";
    if (spec->package && spec->package[0])
        snprintf(pkg, sizeof(pkg), ", Debian package %s", spec->package);
    /* dlerror() is per thread: reading it once clears any earlier message. */
    dlerror();
    void *h = dlopen(spec->soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        return cru_err_set(CRU_EUNSUPPORTED, "%s needs %s (%s%s), which cannot be loaded: %s",
                           spec->feature, spec->name, spec->soname, pkg,
                           why ? why : "unknown dlopen error");
    }
    for (size_t i = 0; i < spec->n_symbols; i++) {
        dlerror();
        slots[i] = dlsym(h, spec->symbols[i]);
        const char *why = dlerror();
        if (why || !slots[i]) {
            /* Left loaded: dlclose of a library whose constructors ran is not worth the risk
             * for an error the process reports and then lives with. */
            return cru_err_set(CRU_EUNSUPPORTED, "%s needs %s (%s%s), which lacks %s: %s",
                               spec->feature, spec->name, spec->soname, pkg, spec->symbols[i],
                               why ? why : "a null address");
        }
    }
    return 0;
}

/* One library: its description, how its table is filled from the addresses found, and the
 * outcome of the one attempt to load it. */
struct dl_lib {
    struct cru_dl_spec spec;
    int (*fill)(void *const *addrs); /* copies ADDRS into the table, then initialises */
    bool tried;
    int rc;
    char why[CRU_ERR_MAX];
};

/* The tables and the outcome of each load are process-wide, like the libraries themselves:
 * written once under the lock, read-only after it (a caller reads a table only after taking
 * the lock in dl_load, which orders the writes before its reads). */
static pthread_mutex_t dl_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cru_libgit2 libgit2;
static struct cru_libarchive libarchive;
static struct cru_libxml2 libxml2;
static struct cru_libmhd libmhd;

/* A dlsym address into a typed pointer. POSIX makes data and function pointers the same size
 * for dlsym's sake; memcpy says so without punning through a cast. */
_Static_assert(sizeof(void (*)(void)) == sizeof(void *), "function pointers differ from void *");
#define DL_TAKE(table, addrs, i, name) memcpy(&(table).name, &(addrs)[(i)++], sizeof(void *));

static int fill_libgit2(void *const *addrs)
{
    size_t i = 0;
#define X(name) DL_TAKE(libgit2, addrs, i, name)
    CRU_LIBGIT2_FUNCTIONS(X)
#undef X
    /* Global state set up once and never torn down: workspaces are made from several threads,
     * and git_libgit2_shutdown() while another thread uses libgit2 is unsafe. */
    if (libgit2.git_libgit2_init() < 0)
        return cru_err_set(CRU_EINTERNAL, "cannot initialise libgit2");
    return 0;
}

static int fill_libarchive(void *const *addrs)
{
    size_t i = 0;
#define X(name) DL_TAKE(libarchive, addrs, i, name)
    CRU_LIBARCHIVE_FUNCTIONS(X)
#undef X
    return 0;
}

static int fill_libxml2(void *const *addrs)
{
    size_t i = 0;
#define X(name) DL_TAKE(libxml2, addrs, i, name)
    CRU_LIBXML2_FUNCTIONS(X)
#undef X
    /* Once per process, never cleaned up: other threads may be parsing. */
    libxml2.xmlInitParser();
    return 0;
}

static int fill_libmhd(void *const *addrs)
{
    size_t i = 0;
#define X(name) DL_TAKE(libmhd, addrs, i, name)
    CRU_LIBMHD_FUNCTIONS(X)
#undef X
    return 0;
}

static const char *const libgit2_symbols[] = { CRU_LIBGIT2_FUNCTIONS(DL_NAME) };
static const char *const libarchive_symbols[] = { CRU_LIBARCHIVE_FUNCTIONS(DL_NAME) };
static const char *const libxml2_symbols[] = { CRU_LIBXML2_FUNCTIONS(DL_NAME) };
static const char *const libmhd_symbols[] = { CRU_LIBMHD_FUNCTIONS(DL_NAME) };

_Static_assert(0 CRU_LIBGIT2_FUNCTIONS(DL_COUNT) <= DL_SYMBOLS_MAX, "raise DL_SYMBOLS_MAX");
_Static_assert(0 CRU_LIBARCHIVE_FUNCTIONS(DL_COUNT) <= DL_SYMBOLS_MAX, "raise DL_SYMBOLS_MAX");
_Static_assert(0 CRU_LIBXML2_FUNCTIONS(DL_COUNT) <= DL_SYMBOLS_MAX, "raise DL_SYMBOLS_MAX");
_Static_assert(0 CRU_LIBMHD_FUNCTIONS(DL_COUNT) <= DL_SYMBOLS_MAX, "raise DL_SYMBOLS_MAX");

#define DL_SYMBOLS(v) v, sizeof(v) / sizeof(v[0])

static struct dl_lib dl_libgit2 = {
    { "libgit2", CRU_LIBGIT2_SONAME, CRU_LIBGIT2_PACKAGE, "a git workspace",
      DL_SYMBOLS(libgit2_symbols) },
    fill_libgit2,
    false,
    0,
    "",
};

static struct dl_lib dl_libarchive = {
    { "libarchive", CRU_LIBARCHIVE_SONAME, CRU_LIBARCHIVE_PACKAGE,
      "reading archives (tarballs, zip, XLSX, DOCX)", DL_SYMBOLS(libarchive_symbols) },
    fill_libarchive,
    false,
    0,
    "",
};

static struct dl_lib dl_libxml2 = {
    { "libxml2", CRU_LIBXML2_SONAME, CRU_LIBXML2_PACKAGE, "reading XML (JUnit reports, XLSX, DOCX)",
      DL_SYMBOLS(libxml2_symbols) },
    fill_libxml2,
    false,
    0,
    "",
};

static struct dl_lib dl_libmhd = {
    { "libmicrohttpd", CRU_LIBMHD_SONAME, CRU_LIBMHD_PACKAGE, "the HTTP gateway (crucible serve)",
      DL_SYMBOLS(libmhd_symbols) },
    fill_libmhd,
    false,
    0,
    "",
};

static int dl_load(struct dl_lib *l)
{
    pthread_mutex_lock(&dl_lock);
    if (!l->tried) {
        void *addrs[DL_SYMBOLS_MAX];
        l->tried = true;
        if ((l->rc = cru_dl_open(&l->spec, addrs)) == 0)
            l->rc = l->fill(addrs);
        if (l->rc < 0)
            snprintf(l->why, sizeof(l->why), "%s", cru_err_msg());
    }
    int rc = l->rc;
    pthread_mutex_unlock(&dl_lock);
    /* The message was kept, not the thread-local error: every caller gets it. */
    return rc < 0 ? cru_err_set(rc, "%s", l->why) : 0;
}

int cru_dl_libgit2(const struct cru_libgit2 **out)
{
    int rc = dl_load(&dl_libgit2);
    *out = rc == 0 ? &libgit2 : NULL;
    return rc;
}

int cru_dl_libarchive(const struct cru_libarchive **out)
{
    int rc = dl_load(&dl_libarchive);
    *out = rc == 0 ? &libarchive : NULL;
    return rc;
}

int cru_dl_libxml2(const struct cru_libxml2 **out)
{
    int rc = dl_load(&dl_libxml2);
    *out = rc == 0 ? &libxml2 : NULL;
    return rc;
}

int cru_dl_libmhd(const struct cru_libmhd **out)
{
    int rc = dl_load(&dl_libmhd);
    *out = rc == 0 ? &libmhd : NULL;
    return rc;
}
