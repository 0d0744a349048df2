/* fsaccess: the host's opens, reads, writes, stats and listings inside a sandbox workspace.
 *
 * Every path the agent can influence is first cleaned lexically (cru_path_clean refuses
 * absolute paths and ".."), so the only way left out of the root is through the file system
 * itself: symlinks, /proc magic links, mount points, and renames between two steps. Those are
 * handled by one resolver, chosen per call: openat2 with RESOLVE_IN_ROOT, which resolves every
 * symlink as if ROOTFD were "/", or a component walk that opens one name at a time with
 * O_NOFOLLOW and refuses any symlink it meets. Whatever is resolved is then used through file
 * descriptors only (fstat, fchown, renameat relative to the confined parent), never by path
 * again, so a swap between two calls can change which file inside the root we reach but not
 * take us outside it. This module does not stop hard links (see the header), does not lock
 * against concurrent writers (last rename wins), and does not police what the caller does with
 * a descriptor that sbx_fs_open() hands out.
 */
#include "sandbox/fsaccess.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/fs.h"
#include "lib/path.h"

/* In root: absolute symlinks and ".." inside link targets stop at ROOTFD. No magic links:
 * /proc/PID/root and /proc/PID/fd/N jump to any file the target can see, ignoring the root;
 * today's kernels already refuse such jumps in an IN_ROOT lookup (with EXDEV), so this flag is
 * the explicit promise, and it makes the refusal say what it was. No mount crossings: the
 * host-side root is one mount (the sandbox's overlay), and whatever is mounted below it in the
 * host's view (a propagated /proc, /sys or /dev, a host bind) is not the workspace. Mounts the
 * sandbox makes in its own namespace never show through ROOTFD at all: a descriptor walks the
 * mount tree of the namespace it was opened in. A workspace that truly needs a host mount
 * inside it must be reached some other way. */
#define FS_RESOLVE (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)

/* openat2 answers EAGAIN when a rename or mount raced with a ".." step; a file lease answers
 * EAGAIN to an O_NONBLOCK open. Both are transient, but the agent can repeat them forever. */
#define FS_EAGAIN_TRIES 32
/* Rounds of "create exclusively, else open the existing file" before giving up on a name that
 * keeps appearing and disappearing (or that is a symlink to a missing file). */
#define FS_CREATE_TRIES 8
/* Directories made by sbx_fs_write(parents): set with fchmod, so the host's umask is moot. */
#define FS_DIR_MODE   0755
#define FS_READ_CHUNK 65536

/* ---- validation and names ---- */

static int fs_check(const struct sbx_fs *fs, const char *rel)
{
    if (!fs || fs->rootfd < 0)
        return cru_err_set(CRU_EINVAL, "no workspace root descriptor");
    if (fs->resolver != SBX_FS_AUTO && fs->resolver != SBX_FS_OPENAT2 &&
        fs->resolver != SBX_FS_WALK)
        return cru_err_set(CRU_EINVAL, "unknown workspace resolver %d", (int)fs->resolver);
    if (!rel)
        return cru_err_set(CRU_EINVAL, "no workspace path");
    return 0;
}

/* Checks FS and cleans REL; *clean ("" for the root) belongs to the caller. */
static int fs_begin(const struct sbx_fs *fs, const char *rel, char **clean)
{
    int rc = fs_check(fs, rel);
    if (rc < 0)
        return rc;
    return cru_path_clean(clean, rel);
}

/* Cleanup steps that keep the errno of the failure being reported. */
static void fs_close(int fd)
{
    int saved = errno;
    close(fd);
    errno = saved;
}

static void fs_closedir(DIR *d)
{
    int saved = errno;
    closedir(d);
    errno = saved;
}

/* ---- the openat2 resolver ---- */

/* Opens PATH beneath ROOTFD; the fd, or -1 with errno. */
static int fs_openat2(int rootfd, const char *path, int flags, mode_t mode)
{
    int creates = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
    struct open_how how = {
        .flags = (uint64_t)(unsigned)(flags | O_CLOEXEC),
        .mode = creates ? (uint64_t)mode : 0, /* openat2 refuses a mode it would ignore */
        .resolve = FS_RESOLVE,
    };
    for (int i = 0; i < FS_EAGAIN_TRIES; i++) {
        long fd = syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
        if (fd >= 0)
            return (int)fd;
        if (errno != EAGAIN)
            return -1;
    }
    return -1;
}

static int fs_openat2_error(const char *rel, int err)
{
    errno = err;
    switch (err) {
    case EXDEV:
        return cru_err_set(CRU_EUNSAFE, "'%s' crosses a mount point inside the workspace", rel);
    case ELOOP:
        return cru_err_set(CRU_EUNSAFE,
                           "'%s' leads through a /proc magic link, a symlink loop or a symlink "
                           "that this call does not follow",
                           rel);
    case EAGAIN:
        return cru_err_set(CRU_EIO, "'%s' kept changing while it was resolved (%d tries)", rel,
                           FS_EAGAIN_TRIES);
    case ENOSYS:
        return cru_err_set(CRU_EUNSUPPORTED,
                           "cannot open '%s': openat2 is missing (Linux before 5.6) or denied",
                           rel);
    default:
        return cru_err_sys("cannot open '%s'", rel);
    }
}

/* ---- the walk resolver ---- */

/* Where a descriptor lives, to refuse mount crossings as RESOLVE_NO_XDEV does. The mount id
 * (Linux 5.8) sees bind mounts of the same file system; without it only directories are
 * compared by device, because overlayfs may report a lower layer's device for a file. */
struct fs_mnt {
    int have_id;
    uint64_t id;
    dev_t dev;
    mode_t mode;
};

static int fs_mnt_get(int fd, struct fs_mnt *m)
{
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MNT_ID, &stx) < 0)
        return -1;
    m->have_id = (stx.stx_mask & STATX_MNT_ID) != 0;
    m->id = stx.stx_mnt_id;
    m->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
    m->mode = stx.stx_mode;
    return 0;
}

static int fs_mnt_same(const struct fs_mnt *root, const struct fs_mnt *m)
{
    if (root->have_id && m->have_id)
        return root->id == m->id;
    return !S_ISDIR(m->mode) || root->dev == m->dev;
}

/* Explains a failed openat of COMP in DIRFD: a symlink gets CRU_EUNSAFE, the rest errno. */
static int fs_walk_error(int dirfd, const char *comp, const char *rel)
{
    int saved = errno;
    struct stat st;
    if ((saved == ELOOP || saved == ENOTDIR) &&
        fstatat(dirfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return cru_err_set(
            CRU_EUNSAFE, "'%s': '%s' is a symlink, and the walk resolver follows none", rel, comp);
    errno = saved;
    return cru_err_sys("cannot open '%s' (at '%s')", rel, comp);
}

/* Opens CLEAN one component at a time: directories as O_PATH|O_NOFOLLOW, the last with FLAGS
 * and O_NOFOLLOW, each checked to be on the root's mount. "" opens the root itself. */
static int fs_walk(const struct sbx_fs *fs, const char *rel, const char *clean, int flags,
                   mode_t mode, int *out_fd)
{
    char comp[CRU_PATH_NAME_MAX + 1];
    struct fs_mnt root, m;
    const char *p = *clean ? clean : ".";
    int cur = -1, rc = 0;

    if (fs_mnt_get(fs->rootfd, &root) < 0)
        return cru_err_sys("cannot stat the workspace root");
    for (;;) {
        size_t n = strcspn(p, "/");
        int last = p[n] == '\0';
        int dirfd = cur >= 0 ? cur : fs->rootfd;
        if (n > CRU_PATH_NAME_MAX) { /* cru_path_clean bounds it; this keeps comp safe */
            rc = cru_err_set(CRU_ELIMIT, "'%s' has a component over %d bytes", rel,
                             CRU_PATH_NAME_MAX);
            goto done;
        }
        memcpy(comp, p, n);
        comp[n] = '\0';

        int fd = last ? openat(dirfd, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode)
                      : openat(dirfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            rc = fs_walk_error(dirfd, comp, rel);
            goto done;
        }
        if (cur >= 0)
            fs_close(cur);
        cur = fd;
        if (fs_mnt_get(cur, &m) < 0) {
            rc = cru_err_sys("cannot stat '%s' (at '%s')", rel, comp);
            goto done;
        }
        if (!fs_mnt_same(&root, &m)) {
            rc = cru_err_set(CRU_EUNSAFE, "'%s' crosses a mount point at '%s'", rel, comp);
            goto done;
        }
        /* Only O_PATH opens a final symlink under O_NOFOLLOW; it is what stat asks for, and
         * a refusal for anyone who did not ask for the link itself. */
        if (last && S_ISLNK(m.mode) && !(flags & O_NOFOLLOW)) {
            rc = cru_err_set(CRU_EUNSAFE,
                             "'%s': '%s' is a symlink, and the walk resolver follows none", rel,
                             comp);
            goto done;
        }
        if (last)
            break;
        p += n + 1;
    }
    *out_fd = cur;
    cur = -1;
done:
    if (cur >= 0)
        fs_close(cur);
    return rc;
}

/* ---- one entry point for both ---- */

/* Opens CLEAN beneath the root with the configured resolver; REL names it in errors. */
static int fs_resolve(const struct sbx_fs *fs, const char *rel, const char *clean, int flags,
                      mode_t mode, int *out_fd)
{
    if (fs->resolver != SBX_FS_WALK) {
        int fd = fs_openat2(fs->rootfd, clean, flags, mode);
        if (fd >= 0) {
            *out_fd = fd;
            return 0;
        }
        if (errno != ENOSYS || fs->resolver != SBX_FS_AUTO)
            return fs_openat2_error(rel, errno);
    }
    return fs_walk(fs, rel, clean, flags, mode, out_fd);
}

/* Gives a file or directory the host created to the sandbox owner, then sets MODE (after the
 * chown, which clears set-id bits). Through the descriptor: no path, no race. */
static int fs_give(const struct sbx_fs *fs, int fd, mode_t mode, const char *what)
{
    if (fchown(fd, fs->uid, fs->gid) < 0)
        return cru_err_sys("cannot give %s to %u:%u", what, (unsigned)fs->uid, (unsigned)fs->gid);
    if (fchmod(fd, mode) < 0)
        return cru_err_sys("cannot set the mode of %s to %04o", what, (unsigned)mode);
    return 0;
}

/* ---- open ---- */

/* O_CREAT without O_EXCL cannot tell us whether it created the file, and only a file we
 * created may be chowned (chowning an existing one would hand the agent a file it did not own,
 * such as a hard link to something of the host's). So: create exclusively, else open the
 * existing file without O_CREAT, and repeat while the name flickers. */
static int fs_open_create(const struct sbx_fs *fs, const char *rel, const char *clean, int flags,
                          mode_t mode, int *out_fd, int *created)
{
    int rc;
    *created = 0;
    if (flags & O_EXCL) {
        if ((rc = fs_resolve(fs, rel, clean, flags, mode, out_fd)) == 0)
            *created = 1;
        return rc;
    }
    for (int i = 0; i < FS_CREATE_TRIES; i++) {
        rc = fs_resolve(fs, rel, clean, flags | O_EXCL, mode, out_fd);
        if (rc == 0) {
            *created = 1;
            return 0;
        }
        if (rc != CRU_EEXIST)
            return rc;
        rc = fs_resolve(fs, rel, clean, flags & ~(O_CREAT | O_EXCL), 0, out_fd);
        if (rc != CRU_ENOENT)
            return rc;
    }
    return cru_err_set(CRU_EEXIST,
                       "cannot create '%s': it is a symlink to a missing file, or it keeps "
                       "appearing and vanishing",
                       rel);
}

static int fs_open(const struct sbx_fs *fs, const char *rel, int flags, mode_t mode, int *out_fd)
{
    char *clean = NULL;
    int fd = -1, created = 0, rc;

    if ((rc = fs_begin(fs, rel, &clean)) < 0)
        return rc;
    if (mode & ~(mode_t)07777) {
        rc = cru_err_set(CRU_EINVAL, "mode %o for '%s' has bits beyond 07777", (unsigned)mode, rel);
        goto done;
    }
    if ((flags & O_TMPFILE) == O_TMPFILE) {
        rc = fs_resolve(fs, rel, clean, flags, mode, &fd);
        created = 1;
    } else if (flags & O_CREAT) {
        rc = fs_open_create(fs, rel, clean, flags, mode, &fd, &created);
    } else {
        rc = fs_resolve(fs, rel, clean, flags, 0, &fd);
    }
    if (rc < 0)
        goto done;
    if (created && (rc = fs_give(fs, fd, mode, rel)) < 0)
        goto done;
    *out_fd = fd;
    fd = -1;
done:
    if (fd >= 0)
        fs_close(fd);
    free(clean);
    return rc;
}

/* ---- read ---- */

/* Appends FD's contents to OUT, refusing more than MAX bytes; reads to EOF rather than
 * trusting st_size, since the agent may grow the file while we read it. */
static int fs_read_fd(int fd, const char *rel, size_t max, struct cru_buf *out)
{
    size_t start = out->len;
    int rc = 0;
    for (;;) {
        if ((rc = cru_buf_reserve(out, FS_READ_CHUNK)) < 0)
            break;
        size_t room = out->cap - 1 - out->len;
        size_t allowed = max - (out->len - start);
        if (allowed < SIZE_MAX)
            allowed++; /* one byte past MAX proves the file too large */
        size_t n;
        if ((rc = cru_read_some(fd, out->data + out->len, room < allowed ? room : allowed, &n,
                                rel)) < 0)
            break;
        if (n == 0)
            break;
        out->len += n;
        if (out->len - start > max) {
            rc = cru_err_set(CRU_ELIMIT, "'%s' is over the limit of %zu bytes", rel, max);
            break;
        }
    }
    if (rc < 0)
        out->len = start;
    if (out->data)
        out->data[out->len] = '\0';
    return rc;
}

int sbx_fs_read(const struct sbx_fs *fs, const char *rel, size_t max, struct cru_buf *out)
{
    char *clean = NULL;
    int fd = -1, rc;
    struct stat st;

    if ((rc = fs_begin(fs, rel, &clean)) < 0)
        return rc;
    /* O_NONBLOCK: a FIFO opens at once instead of waiting for a writer that never comes, and a
     * leased file answers EAGAIN instead of stalling us for the lease-break time. O_NOCTTY: a
     * terminal never becomes ours. The agent cannot create device nodes (no CAP_MKNOD over the
     * host), so opening one has no side effects beyond what its owner arranged. */
    if ((rc = fs_resolve(fs, rel, clean, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, &fd)) < 0)
        goto done;
    if (fstat(fd, &st) < 0) {
        rc = cru_err_sys("cannot stat '%s'", rel);
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = cru_err_set(CRU_EINVAL, "'%s' is %s, not a regular file", rel,
                         cru_file_type_name(st.st_mode));
        goto done;
    }
    if ((uint64_t)st.st_size > max) {
        rc = cru_err_set(CRU_ELIMIT, "'%s' is %lld bytes, over the limit of %zu", rel,
                         (long long)st.st_size, max);
        goto done;
    }
    rc = fs_read_fd(fd, rel, max, out);
done:
    if (fd >= 0)
        fs_close(fd);
    free(clean);
    return rc;
}

/* ---- write ---- */

/* Opens the existing directory NAME in DIRFD, or creates it for the sandbox owner. Never
 * follows NAME: a symlink there (even one planted since our lookup) is refused. */
static int fs_mkdir_one(const struct sbx_fs *fs, int dirfd, const char *name, const char *rel,
                        int *out_fd)
{
    int made = mkdirat(dirfd, name, 0700) == 0; /* 0700 until it belongs to the owner */
    if (!made && errno != EEXIST)
        return cru_err_sys("cannot create directory '%s' for '%s'", name, rel);
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
            return cru_err_set(
                S_ISLNK(st.st_mode) ? CRU_EUNSAFE : CRU_EEXIST,
                "cannot create directory '%s' for '%s': it exists as %s%s", name, rel,
                cru_file_type_name(st.st_mode),
                S_ISLNK(st.st_mode) ? " that leads to no directory inside the workspace" : "");
        errno = saved;
        return cru_err_sys("cannot open directory '%s' for '%s'", name, rel);
    }
    if (made) {
        int rc = fs_give(fs, fd, FS_DIR_MODE, name);
        if (rc < 0) {
            fs_close(fd);
            return rc;
        }
    }
    *out_fd = fd;
    return 0;
}

/* Opens directory DIR (cleaned; "" is the root) for writing, creating missing components.
 * Each prefix is resolved from the root like any other path, so existing symlinks resolve
 * inside the workspace (or are refused by the walk); only missing names are made, each with
 * mkdirat relative to the confined descriptor of its parent. DIR is modified and restored. */
static int fs_mkdirs(const struct sbx_fs *fs, const char *rel, char *dir, int *out_fd)
{
    int cur = -1, next = -1, rc;

    if ((rc = fs_resolve(fs, rel, "", O_RDONLY | O_DIRECTORY, 0, &cur)) < 0)
        return rc;
    for (char *p = dir; *p;) {
        size_t n = strcspn(p, "/");
        char saved = p[n];
        p[n] = '\0';
        rc = fs_resolve(fs, rel, dir, O_RDONLY | O_DIRECTORY, 0, &next);
        if (rc == CRU_ENOENT)
            rc = fs_mkdir_one(fs, cur, p, rel, &next);
        p[n] = saved;
        if (rc < 0)
            goto done;
        fs_close(cur);
        cur = next;
        next = -1;
        p += n + (saved != '\0');
    }
    *out_fd = cur;
    cur = -1;
done:
    if (cur >= 0)
        fs_close(cur);
    return rc;
}

/* Writes DATA to a new temporary file in DIRFD, given to the sandbox's owner, and renames it
 * over NAME within the confined DIRFD (lib/fs.h). */
static int fs_replace(const struct sbx_fs *fs, int dirfd, const char *name, const char *rel,
                      const void *data, size_t len, mode_t mode)
{
    char label[CRU_PATH_MAX + 2];
    snprintf(label, sizeof(label), "'%s'", rel);
    return cru_file_write_atomic_at(dirfd, name, data, len, mode, fs->uid, fs->gid, label);
}

static int fs_write(const struct sbx_fs *fs, const char *rel, const void *data, size_t len,
                    mode_t mode, bool parents)
{
    char *clean = NULL;
    const char *name;
    int dirfd = -1, rc;
    struct stat st;

    if ((rc = fs_begin(fs, rel, &clean)) < 0)
        return rc;
    if (mode & ~(mode_t)07777) {
        rc = cru_err_set(CRU_EINVAL, "mode %o for '%s' has bits beyond 07777", (unsigned)mode, rel);
        goto done;
    }
    if (*clean == '\0') {
        rc = cru_err_set(CRU_EINVAL, "cannot write '%s': it names the workspace root", rel);
        goto done;
    }
    char *slash = strrchr(clean, '/');
    char *dir = slash ? clean : clean + strlen(clean); /* "" for a name in the root */
    name = slash ? slash + 1 : clean;
    if (slash)
        *slash = '\0';

    rc = parents ? fs_mkdirs(fs, rel, dir, &dirfd)
                 : fs_resolve(fs, rel, dir, O_RDONLY | O_DIRECTORY, 0, &dirfd);
    if (rc < 0) {
        cru_err_wrap(rc, "writing '%s'", rel);
        goto done;
    }
    /* rename(2) would refuse a directory too; this is for a clearer message. */
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        rc = cru_err_set(CRU_EINVAL, "cannot write '%s': it is a directory", rel);
        goto done;
    }
    rc = fs_replace(fs, dirfd, name, rel, data, len, mode);
done:
    if (dirfd >= 0)
        fs_close(dirfd);
    free(clean);
    return rc;
}

/* A live sandbox's workspace is an overlay mounted inside the sandbox's user namespace, which
 * refuses to create inodes for an owner it cannot map (the host's root): EOVERFLOW. Then the
 * operation is done again with the file-system ids of the sandbox's root, which the namespace
 * maps; setfsuid affects only the calling thread and is restored at once. */
static bool fs_retry_as_owner(int rc)
{
    return rc < 0 && errno == EOVERFLOW;
}

struct fs_ids {
    int uid, gid;
};

static struct fs_ids fs_become(const struct sbx_fs *fs)
{
    struct fs_ids old;
    old.gid = setfsgid(fs->gid);
    old.uid = setfsuid(fs->uid);
    return old;
}

static void fs_restore(struct fs_ids old)
{
    int saved = errno;
    setfsuid((uid_t)old.uid);
    setfsgid((gid_t)old.gid);
    errno = saved;
}

int sbx_fs_open(const struct sbx_fs *fs, const char *rel, int flags, mode_t mode, int *out_fd)
{
    int rc = fs_open(fs, rel, flags, mode, out_fd);
    if (fs_retry_as_owner(rc)) {
        struct fs_ids old = fs_become(fs);
        rc = fs_open(fs, rel, flags, mode, out_fd);
        fs_restore(old);
    }
    return rc;
}

int sbx_fs_write(const struct sbx_fs *fs, const char *rel, const void *data, size_t len,
                 mode_t mode, bool parents)
{
    int rc = fs_write(fs, rel, data, len, mode, parents);
    if (fs_retry_as_owner(rc)) {
        struct fs_ids old = fs_become(fs);
        rc = fs_write(fs, rel, data, len, mode, parents);
        fs_restore(old);
    }
    return rc;
}

/* ---- stat ---- */

int sbx_fs_stat(const struct sbx_fs *fs, const char *rel, struct stat *out)
{
    char *clean = NULL;
    int fd = -1, rc;

    if ((rc = fs_begin(fs, rel, &clean)) < 0)
        return rc;
    /* O_PATH|O_NOFOLLOW opens a final symlink itself; fstat then describes the link. */
    if ((rc = fs_resolve(fs, rel, clean, O_PATH | O_NOFOLLOW, 0, &fd)) < 0)
        goto done;
    if (fstat(fd, out) < 0)
        rc = cru_err_sys("cannot stat '%s'", rel);
done:
    if (fd >= 0)
        fs_close(fd);
    free(clean);
    return rc;
}

/* ---- list ---- */

static int fs_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sbx_fs_entry *)a)->name, ((const struct sbx_fs_entry *)b)->name);
}

/* Reads the entries of D (whose descriptor is DIRFD) into a growing array. An entry removed
 * between readdir and fstatat is skipped: it is gone, and listing it would describe nothing. */
static int fs_collect(DIR *d, int dirfd, const char *rel, size_t max, struct sbx_fs_entry **e,
                      size_t *n)
{
    size_t cap = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno != 0)
                return cru_err_sys("cannot read directory '%s'", rel);
            return 0;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue;
            return cru_err_sys("cannot stat '%s' in '%s'", de->d_name, rel);
        }
        if (*n == max)
            return cru_err_set(CRU_ELIMIT, "directory '%s' has more than %zu entries", rel, max);
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            if (ncap > max)
                ncap = max;
            struct sbx_fs_entry *ne = reallocarray(*e, ncap, sizeof(**e));
            if (!ne)
                return cru_err_set(CRU_ENOMEM, "out of memory listing '%s'", rel);
            *e = ne;
            cap = ncap;
        }
        char *name = strdup(de->d_name);
        if (!name)
            return cru_err_set(CRU_ENOMEM, "out of memory listing '%s'", rel);
        (*e)[*n] = (struct sbx_fs_entry){ name, st.st_mode & S_IFMT, (uint64_t)st.st_size };
        (*n)++;
    }
}

int sbx_fs_list(const struct sbx_fs *fs, const char *rel, size_t max, struct sbx_fs_entry **out,
                size_t *n)
{
    char *clean = NULL;
    struct sbx_fs_entry *e = NULL;
    size_t count = 0;
    DIR *d = NULL;
    int fd = -1, rc;

    *out = NULL;
    *n = 0;
    if ((rc = fs_begin(fs, rel, &clean)) < 0)
        return rc;
    if ((rc = fs_resolve(fs, rel, clean, O_RDONLY | O_DIRECTORY, 0, &fd)) < 0)
        goto done;
    /* fdopendir takes its descriptor; FD stays ours for the fstatat calls. */
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) {
        rc = cru_err_sys("cannot list '%s'", rel);
        goto done;
    }
    if (!(d = fdopendir(dup_fd))) {
        rc = cru_err_sys("cannot list '%s'", rel);
        fs_close(dup_fd);
        goto done;
    }
    if ((rc = fs_collect(d, fd, rel, max, &e, &count)) < 0)
        goto done;
    if (count > 0)
        qsort(e, count, sizeof(*e), fs_entry_cmp);
    *out = e;
    *n = count;
    e = NULL;
    count = 0;
done:
    sbx_fs_entries_free(e, count);
    if (d)
        fs_closedir(d);
    if (fd >= 0)
        fs_close(fd);
    free(clean);
    return rc;
}

void sbx_fs_entries_free(struct sbx_fs_entry *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}
