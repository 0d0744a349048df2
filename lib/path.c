/* path: lexical confinement of relative paths to a root.
 *
 * A component walk, not string matching: "a/../b", "./..", "a//..", "../" and "..\0" tricks
 * are all caught because every component is compared whole. Backslashes are ordinary
 * characters on Linux and are left alone.
 */
#include "lib/path.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"

int cru_path_clean(char **out, const char *rel)
{
    struct cru_buf b = CRU_BUF_INIT;
    size_t total = strlen(rel);
    int rc = 0;

    if (rel[0] == '/')
        return cru_err_set(CRU_EUNSAFE, "path '%s' is absolute; a relative path is required", rel);
    if (total >= CRU_PATH_MAX)
        return cru_err_set(CRU_ELIMIT, "path of %zu bytes exceeds the limit of %d", total,
                           CRU_PATH_MAX - 1);

    for (const char *p = rel; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            rc = cru_err_set(CRU_EUNSAFE, "path '%s' has a '..' component", rel);
            goto done;
        }
        if (n > CRU_PATH_NAME_MAX) {
            rc = cru_err_set(CRU_ELIMIT, "path '%.40s...' has a component of %zu bytes (limit %d)",
                             rel, n, CRU_PATH_NAME_MAX);
            goto done;
        }
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (b.len > 0 && (rc = cru_buf_putc(&b, '/')) < 0)
                goto done;
            if ((rc = cru_buf_append(&b, p, n)) < 0)
                goto done;
        }
        p += n;
        while (*p == '/')
            p++;
    }
    *out = cru_buf_detach(&b, NULL);
    if (!*out)
        rc = CRU_ENOMEM;
done:
    cru_buf_free(&b);
    return rc;
}

int cru_path_join(char **out, const char *root, const char *rel)
{
    char *clean = NULL;
    size_t rlen = strlen(root);
    int rc;

    if (rlen == 0)
        return cru_err_set(CRU_EINVAL, "cannot join '%s' to an empty root", rel);
    while (rlen > 1 && root[rlen - 1] == '/')
        rlen--;
    if ((rc = cru_path_clean(&clean, rel)) < 0)
        return rc;

    size_t clen = strlen(clean);
    int slash = clen > 0 && !(rlen == 1 && root[0] == '/');
    if (rlen + (size_t)slash + clen >= CRU_PATH_MAX) {
        free(clean);
        return cru_err_set(CRU_ELIMIT, "joined path of %zu bytes exceeds the limit of %d",
                           rlen + (size_t)slash + clen, CRU_PATH_MAX - 1);
    }
    char *p = malloc(rlen + (size_t)slash + clen + 1);
    if (!p) {
        free(clean);
        return cru_err_set(CRU_ENOMEM, "out of memory joining a path");
    }
    memcpy(p, root, rlen);
    if (slash)
        p[rlen] = '/';
    memcpy(p + rlen + (size_t)slash, clean, clen + 1);
    free(clean);
    *out = p;
    return 0;
}
