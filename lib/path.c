/* path: confinement of relative paths to a root, by spelling and on the file system.
 *
 * The lexical part is a component walk, not string matching: "a/../b", "./..", "a//..", "../"
 * and "..\0" tricks are all caught because every component is compared whole. Backslashes are
 * ordinary characters on Linux and are left alone. The file-system part opens a clean path
 * beneath a folder's descriptor with openat2 (the kernel refuses every step out, atomically),
 * or where that is missing one component at a time without following any link; either way
 * the caller gets a descriptor, so a rename after the check cannot redirect the use. It does
 * not stop hard links, which look like any other file.
 */
#include "lib/path.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* openat2 answers EAGAIN when a rename raced with a ".." step of the lookup. */
#define BENEATH_EAGAIN_TRIES 16

static int beneath_flags_ok(const char *rel, int flags)
{
    if (flags & O_CREAT)
        return cru_err_set(CRU_EINVAL, "opening '%s' beneath a folder: O_CREAT is not supported",
                           rel);
    return 0;
}

/* Explains a failed openat of COMP (a component of REL) in DIRFD: a symlink is CRU_EUNSAFE. */
static int walk_error(int dirfd, const char *comp, const char *rel)
{
    int saved = errno;
    struct stat st;
    if ((saved == ELOOP || saved == ENOTDIR) &&
        fstatat(dirfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return cru_err_set(CRU_EUNSAFE, "'%s': '%s' is a symbolic link, and this open follows none",
                           rel, comp);
    errno = saved;
    return cru_err_sys("cannot open '%s' (at '%s')", rel, comp);
}

/* Opens CLEAN (a clean path, "" for the root) beneath ROOTFD one component at a time. */
static int walk_clean(int *out, int rootfd, const char *rel, const char *clean, int flags)
{
    char comp[CRU_PATH_NAME_MAX + 1];
    const char *p = *clean ? clean : ".";
    int cur = -1, rc = 0;

    for (;;) {
        size_t n = strcspn(p, "/");
        int last = p[n] == '\0';
        int dirfd = cur >= 0 ? cur : rootfd;
        if (n > CRU_PATH_NAME_MAX) { /* cru_path_clean bounds it; this keeps comp safe */
            rc = cru_err_set(CRU_ELIMIT, "'%s' has a component over %d bytes", rel,
                             CRU_PATH_NAME_MAX);
            goto done;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        int fd = last ? openat(dirfd, comp, flags | O_NOFOLLOW | O_CLOEXEC)
                      : openat(dirfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            rc = walk_error(dirfd, comp, rel);
            goto done;
        }
        if (cur >= 0)
            close(cur);
        cur = fd;
        if (last)
            break;
        p += n + 1;
    }
    /* O_PATH | O_NOFOLLOW opens a final symlink itself: a refusal unless the caller asked for
     * the link (O_NOFOLLOW). */
    struct stat st;
    if (!(flags & O_NOFOLLOW) && fstat(cur, &st) == 0 && S_ISLNK(st.st_mode)) {
        rc = cru_err_set(CRU_EUNSAFE, "'%s' is a symbolic link, and this open follows none", rel);
        goto done;
    }
    *out = cur;
    cur = -1;
done:
    if (cur >= 0)
        close(cur);
    return rc;
}

int cru_path_walk_beneath(int *out, int rootfd, const char *rel, int flags)
{
    char *clean = NULL;
    int rc;
    *out = -1;
    if ((rc = beneath_flags_ok(rel, flags)) < 0 || (rc = cru_path_clean(&clean, rel)) < 0)
        return rc;
    rc = walk_clean(out, rootfd, rel, clean, flags);
    free(clean);
    return rc;
}

/* Whether CLEAN beneath ROOTFD is itself a symlink (O_NOFOLLOW's refusal of one reads as ELOOP,
 * or as ENOTDIR beside O_DIRECTORY). */
static bool link_beneath(int rootfd, const char *clean)
{
    struct open_how how = {
        .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    struct stat st;
    long fd = syscall(SYS_openat2, rootfd, *clean ? clean : ".", &how, sizeof(how));
    if (fd < 0)
        return false;
    bool link = fstat((int)fd, &st) == 0 && S_ISLNK(st.st_mode);
    close((int)fd);
    return link;
}

int cru_path_open_beneath(int *out, int rootfd, const char *rel, int flags)
{
    char *clean = NULL;
    int rc;
    *out = -1;
    if ((rc = beneath_flags_ok(rel, flags)) < 0 || (rc = cru_path_clean(&clean, rel)) < 0)
        return rc;
    /* Beneath, not in root: an absolute link is refused rather than re-rooted, since whoever
     * wrote it meant a file outside. No magic links: /proc/PID/fd/N would jump anywhere. */
    struct open_how how = {
        .flags = (uint64_t)(unsigned)(flags | O_CLOEXEC),
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = -1;
    for (int i = 0; i < BENEATH_EAGAIN_TRIES; i++) {
        fd = syscall(SYS_openat2, rootfd, *clean ? clean : ".", &how, sizeof(how));
        if (fd >= 0 || errno != EAGAIN)
            break;
    }
    int e = errno;
    if (fd >= 0) {
        *out = (int)fd;
    } else if (e == ENOSYS) {
        rc = walk_clean(out, rootfd, rel, clean, flags);
    } else if ((e == ELOOP || e == ENOTDIR) && (flags & O_NOFOLLOW) &&
               link_beneath(rootfd, clean)) {
        rc = cru_err_set(CRU_EUNSAFE, "'%s' is a symbolic link, where none is allowed", rel);
    } else if (e == EXDEV) {
        rc = cru_err_set(CRU_EUNSAFE, "'%s' leads out of its folder through a symbolic link", rel);
    } else if (e == ELOOP) {
        rc = cru_err_set(CRU_EUNSAFE,
                         "'%s' leads through a symbolic link loop or a /proc magic link", rel);
    } else if (e == EAGAIN) {
        rc = cru_err_set(CRU_EIO, "'%s' kept changing while it was resolved (%d tries)", rel,
                         BENEATH_EAGAIN_TRIES);
    } else {
        errno = e;
        rc = cru_err_sys("cannot open '%s'", rel);
    }
    free(clean);
    return rc;
}
