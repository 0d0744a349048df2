/* fs: bounded reads, complete writes and atomic file replacement.
 *
 * The atomic write follows the rename protocol that databases rely on: temp file in the same
 * directory (so rename(2) cannot cross a file system), fsync before rename (so the name never
 * points at unwritten data), fsync of the directory after (so the rename itself survives a
 * crash). It does not lock: concurrent writers of one path each replace it whole, last wins.
 */
#include "lib/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/hash.h"
#include "lib/path.h"
#include "lib/str.h"

/* How deep cru_remove_tree descends before it calls a tree hostile. */
#define REMOVE_DEPTH_MAX 4096
/* Random temporary names tried before giving up (a collision is astronomically unlikely). */
#define TMP_TRIES 16

const char *cru_file_type_name(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
        return "a regular file";
    case S_IFDIR:
        return "a directory";
    case S_IFLNK:
        return "a symlink";
    case S_IFIFO:
        return "a FIFO";
    case S_IFCHR:
        return "a character device";
    case S_IFBLK:
        return "a block device";
    case S_IFSOCK:
        return "a socket";
    default:
        return "a file of unknown type";
    }
}

int cru_file_open_regular(int dirfd, const char *name, int flags, const char *label, int *out_fd,
                          struct stat *out_st)
{
    *out_fd = -1;
    /* O_NONBLOCK: a FIFO opens at once instead of waiting for a writer that may never come (an
     * open that blocks cannot be refused afterwards). O_NOCTTY: a terminal never becomes ours.
     * Both matter only until fstat has shown what the name really is: a check of the name
     * before the open could be raced by a rename. */
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | flags);
    if (fd < 0)
        return cru_err_sys("cannot open %s", label);
    struct stat st;
    int rc = 0, fl;
    if (fstat(fd, &st) < 0) {
        rc = cru_err_sys("cannot stat %s", label);
    } else if (!S_ISREG(st.st_mode)) {
        rc = cru_err_set(CRU_EINVAL, "%s is %s, not a regular file", label,
                         cru_file_type_name(st.st_mode));
    } else if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        /* Regular files ignore O_NONBLOCK on read, but callers hand the descriptor to code
         * (libarchive, mmap users) that should see an ordinary one. */
        rc = cru_err_sys("cannot make %s blocking again", label);
    }
    if (rc < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return rc;
    }
    *out_fd = fd;
    if (out_st)
        *out_st = st;
    return 0;
}

/* Reads FD (named PATH in errors) to its end into OUT, at most MAX bytes. On failure OUT is
 * as it was. */
static int read_fd(int fd, const char *path, size_t max, struct cru_buf *out)
{
    int rc = 0;
    size_t start = out->len;
    /* Read until EOF rather than trusting st_size: /proc files and pipes report 0, and a file
     * may grow while it is read. One byte past MAX proves that it is too large. */
    for (;;) {
        if ((rc = cru_buf_reserve(out, 65536)) < 0)
            goto done;
        size_t room = out->cap - 1 - out->len;
        size_t left = max - (out->len - start);
        /* One byte past MAX is enough; LEFT + 1 cannot wrap since LEFT < ROOM there. */
        size_t want = left < room ? left + 1 : room;
        size_t n;
        if ((rc = cru_read_some(fd, out->data + out->len, want, &n, path)) < 0)
            goto done;
        if (n == 0)
            break;
        out->len += n;
        if (out->len - start > max) {
            rc = cru_err_set(CRU_ELIMIT, "%s is over the limit of %zu bytes", path, max);
            goto done;
        }
    }
done:
    if (rc < 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    } else {
        out->data[out->len] = '\0';
    }
    return rc;
}

int cru_file_read(const char *path, size_t max, struct cru_buf *out)
{
    int fd, rc;
    struct stat st;
    if ((rc = cru_file_open_regular(AT_FDCWD, path, 0, path, &fd, &st)) < 0)
        return rc;
    if ((uint64_t)st.st_size > max)
        rc = cru_err_set(CRU_ELIMIT, "%s is %lld bytes, over the limit of %zu", path,
                         (long long)st.st_size, max);
    else
        rc = read_fd(fd, path, max, out);
    close(fd);
    return rc;
}

int cru_file_read_stream(const char *path, size_t max, struct cru_buf *out)
{
    /* A plain open on purpose: the caller asked to wait for a writer. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return cru_err_sys("cannot open %s", path);
    struct stat st;
    int rc;
    if (fstat(fd, &st) < 0)
        rc = cru_err_sys("cannot stat %s", path);
    else if (S_ISDIR(st.st_mode))
        rc = cru_err_set(CRU_EINVAL, "%s is a directory", path);
    else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
        rc = cru_err_set(CRU_ELIMIT, "%s is %lld bytes, over the limit of %zu", path,
                         (long long)st.st_size, max);
    else
        rc = read_fd(fd, path, max, out);
    close(fd);
    return rc;
}

int cru_read_some(int fd, void *buf, size_t len, size_t *got, const char *name)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0) {
            *got = (size_t)n;
            return 0;
        }
        if (errno != EINTR)
            return cru_err_sys("cannot read %s", name);
    }
}

int cru_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cru_err_sys("write failed");
        if (n == 0)
            return cru_err_set(CRU_EIO, "write made no progress");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Splits PATH into its directory ("." when it has none) and base name. */
static int split_dir(const char *path, char *dir, size_t cap, const char **base)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (slash == path)
        n = 1; /* "/name" lives in "/" */
    if (n >= cap)
        return cru_err_set(CRU_ELIMIT, "path %s is longer than %zu bytes", path, cap - 1);
    memcpy(dir, slash ? path : ".", n);
    dir[n] = '\0';
    *base = slash ? slash + 1 : path;
    if (**base == '\0')
        return cru_err_set(CRU_EINVAL, "path %s names a directory, not a file", path);
    return 0;
}

/* Creates ".NAME.<6 random characters>" in DIRFD with O_EXCL, which never follows a link: a
 * name planted in the directory cannot redirect the write. NAME is shortened to fit. */
static int tmp_create(int dirfd, const char *name, const char *label, char *tmp, size_t cap,
                      int *out_fd)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int i = 0; i < TMP_TRIES; i++) {
        unsigned char r[6];
        char suffix[sizeof(r) + 1];
        if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
            return cru_err_sys("cannot get random bytes for a temporary name");
        for (size_t j = 0; j < sizeof(r); j++)
            suffix[j] = alphabet[r[j] % (sizeof(alphabet) - 1)];
        suffix[sizeof(r)] = '\0';
        snprintf(tmp, cap, ".%.*s.%s", NAME_MAX - 8, name, suffix);
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            *out_fd = fd;
            return 0;
        }
        if (errno != EEXIST)
            return cru_err_sys("cannot create a temporary file beside %s", label);
    }
    return cru_err_set(CRU_EEXIST,
                       "cannot create a temporary file beside %s: %d random names were taken",
                       label, TMP_TRIES);
}

int cru_file_write_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                             uid_t uid, gid_t gid, const char *label)
{
    char tmp[NAME_MAX + 1];
    int fd = -1, rc;

    if ((rc = tmp_create(dirfd, name, label, tmp, sizeof(tmp), &fd)) < 0)
        return rc;
    if ((rc = cru_write_all(fd, data, len)) < 0) {
        cru_err_wrap(rc, "writing %s", label);
        goto fail;
    }
    if (fchmod(fd, mode) < 0) {
        rc = cru_err_sys("cannot set the mode of %s", label);
        goto fail;
    }
    if (uid != (uid_t)-1 && fchown(fd, uid, gid) < 0) {
        rc = cru_err_sys("cannot give %s to its owner", label);
        goto fail;
    }
    if (fsync(fd) < 0) {
        rc = cru_err_sys("cannot flush %s to disk", label);
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = cru_err_sys("cannot close the temporary file of %s", label);
        goto fail;
    }
    fd = -1;
    /* Relative to DIRFD on both sides: NAME itself is replaced (a link there too, its target
     * untouched), and nothing can land outside the directory. */
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        rc = cru_err_sys("cannot rename a temporary file over %s", label);
        goto fail;
    }
    /* The data is safe; the rename reaches the disk with the directory, which some file
     * systems cannot sync. */
    if (fsync(dirfd) < 0 && errno != EINVAL && errno != EROFS && errno != EBADF)
        return cru_err_sys("cannot flush the directory of %s", label);
    return 0;

fail:
    /* errno stays the failure's: callers may decide on it. */
    {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        unlinkat(dirfd, tmp, 0);
        errno = saved;
    }
    return rc;
}

int cru_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    char dir[PATH_MAX];
    const char *base = NULL;
    int rc;

    if ((rc = split_dir(path, dir, sizeof(dir), &base)) < 0)
        return rc;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return cru_err_sys("cannot open the directory of %s", path);
    rc = cru_file_write_atomic_at(dirfd, base, data, len, mode, (uid_t)-1, (gid_t)-1, path);
    close(dirfd);
    return rc;
}

int cru_mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (*path == '\0')
        return cru_err_set(CRU_EINVAL, "cannot create a directory with an empty name");
    int rc = cru_str_copy(buf, sizeof(buf), path);
    if (rc < 0)
        return cru_err_wrap(rc, "directory name %.64s...", path);
    /* Create each prefix in turn; EEXIST on a prefix is fine if it is a directory. */
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return cru_err_sys("cannot create directory %s", buf);
        *p = saved;
        if (saved == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) < 0)
        return cru_err_sys("cannot stat %s", path);
    if (!S_ISDIR(st.st_mode))
        return cru_err_set(CRU_EEXIST, "%s exists and is not a directory", path);
    return 0;
}

/* Empties the directory DIRFD (closed here). Every step is relative to a descriptor opened
 * with O_NOFOLLOW, so a link in the tree is removed, never followed, and a directory is never
 * reached through a path that could have changed. */
static int remove_contents(int dirfd, const char *path, int depth)
{
    if (depth > REMOVE_DEPTH_MAX) {
        close(dirfd);
        return cru_err_set(CRU_ELIMIT, "%s is nested deeper than %d levels", path,
                           REMOVE_DEPTH_MAX);
    }
    DIR *d = fdopendir(dirfd);
    if (!d) {
        int rc = cru_err_sys("cannot list %s", path);
        close(dirfd);
        return rc;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd, e->d_name, 0) == 0 || errno == ENOENT)
            continue;
        if (errno != EISDIR) {
            rc = cru_err_sys("cannot remove %s/%s", path, e->d_name);
            break;
        }
        /* A directory without write or search permission (an archive's modes, overlayfs's
         * work dir) is opened up first. */
        (void)!fchmodat(dirfd, e->d_name, 0700, 0);
        int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            rc = cru_err_sys("cannot open %s/%s", path, e->d_name);
            break;
        }
        if ((rc = remove_contents(sub, path, depth + 1)) == 0 &&
            unlinkat(dirfd, e->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
            rc = cru_err_sys("cannot remove %s/%s", path, e->d_name);
    }
    if (rc == 0 && errno != 0)
        rc = cru_err_sys("cannot list %s", path);
    closedir(d);
    return rc;
}

int cru_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : cru_err_sys("cannot inspect %s", path);
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0 && errno != ENOENT)
            return cru_err_sys("cannot remove %s", path);
        return 0;
    }
    (void)!chmod(path, 0700);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return cru_err_sys("cannot open %s", path);
    int rc = remove_contents(fd, path, 0);
    if (rc == 0 && rmdir(path) < 0 && errno != ENOENT)
        rc = cru_err_sys("cannot remove %s", path);
    return rc;
}

/* What a copy may still take, and how. */
struct copy {
    uint64_t bytes, entries; /* left */
    unsigned flags;
};

static int copy_dir(int sfd, int dfd, const char *path, unsigned depth, struct copy *c);

/* Copies SIZE bytes from IN to OUT: copy_file_range() (reflinks, in-kernel copies), or read and
 * write where the kernel refuses the pair (across file systems, EXDEV; some file systems,
 * EINVAL or EOPNOTSUPP). */
static int copy_data(int in, int out, off_t size, const char *name)
{
    bool fallback = false;
    char buf[65536];
    for (off_t left = size; left > 0;) {
        ssize_t k;
        if (!fallback) {
            k = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
            if (k < 0 &&
                (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS) &&
                left == size) {
                fallback = true;
                continue;
            }
        } else {
            size_t got = 0;
            int rc = cru_read_some(in, buf, (size_t)left < sizeof(buf) ? (size_t)left : sizeof(buf),
                                   &got, name);
            if (rc < 0)
                return rc;
            if (got && (rc = cru_write_all(out, buf, got)) < 0)
                return cru_err_wrap(rc, "copying %s", name);
            k = (ssize_t)got;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k < 0 ? cru_err_sys("cannot copy %s", name)
                         : cru_err_set(CRU_EIO, "%s shrank while being copied", name);
        left -= k;
    }
    return 0;
}

/* Copies entry SN of folder SFD (a path when SFD is AT_FDCWD) to DN of folder DFD, never
 * following a link; SUB names it in messages. */
static bool is_cache(const char *name, mode_t mode)
{
    size_t n = strlen(name);
    if (S_ISDIR(mode))
        return strcmp(name, "__pycache__") == 0;
    return S_ISREG(mode) && n > 4 &&
           (strcmp(name + n - 4, ".pyc") == 0 || strcmp(name + n - 4, ".pyo") == 0);
}

/* The mode a copy gets: the source's permission bits, or with CRU_COPY_FREEZE only whether it
 * may be executed. */
static mode_t copy_mode(const struct copy *c, mode_t mode)
{
    if (!(c->flags & CRU_COPY_FREEZE))
        return mode & 0777;
    return S_ISDIR(mode) || (mode & 0111) ? 0755 : 0644;
}

static int copy_entry(int sfd, const char *sn, int dfd, const char *dn, const char *sub,
                      unsigned depth, struct copy *c)
{
    int rc = 0;
    unsigned flags = c->flags;
    struct stat st;
    if (fstatat(sfd, sn, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return cru_err_sys("cannot inspect %s", sub);
    if ((flags & CRU_COPY_NO_CACHES) && is_cache(sn, st.st_mode))
        return 0;
    if (c->entries == 0)
        return cru_err_set(CRU_ELIMIT, "%s: the tree holds more than the entries allowed", sub);
    c->entries--;
    if (S_ISDIR(st.st_mode)) {
        int s2 = openat(sfd, sn, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), d2 = -1;
        if (s2 < 0)
            rc = cru_err_sys("cannot open %s", sub);
        else if (mkdirat(dfd, dn, 0700) < 0 ||
                 (d2 = openat(dfd, dn, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
            rc = cru_err_sys("cannot create the copy of %s", sub);
        else if ((rc = copy_dir(s2, d2, sub, depth + 1, c)) == 0 &&
                 fchmod(d2, copy_mode(c, st.st_mode)) < 0)
            rc = cru_err_sys("cannot set the mode of the copy of %s", sub);
        if (s2 >= 0)
            close(s2);
        if (d2 >= 0)
            close(d2);
    } else if (S_ISLNK(st.st_mode) && (flags & CRU_COPY_NO_LINKS)) {
        rc = cru_err_set(CRU_EUNSAFE, "%s is a symbolic link; not copied", sub);
    } else if (S_ISLNK(st.st_mode)) {
        char target[CRU_PATH_MAX];
        ssize_t len = readlinkat(sfd, sn, target, sizeof(target));
        if (len < 0 || (size_t)len >= sizeof(target))
            rc = len < 0 ? cru_err_sys("cannot read the link %s", sub)
                         : cru_err_set(CRU_ELIMIT, "%s: link target too long", sub);
        else if ((target[len] = '\0', symlinkat(target, dfd, dn)) < 0)
            rc = cru_err_sys("cannot create the copy of %s", sub);
    } else if (S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size > c->bytes) {
            return cru_err_set(CRU_ELIMIT, "%s: the tree holds more than the bytes allowed", sub);
        }
        c->bytes -= (uint64_t)st.st_size;
        int in = -1, out = -1;
        /* Checked again on the open file: the name may have become a FIFO since. */
        rc = cru_file_open_regular(sfd, sn, O_NOFOLLOW, sub, &in, NULL);
        if (rc == 0 && (out = openat(dfd, dn, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                     copy_mode(c, st.st_mode))) < 0)
            rc = cru_err_sys("cannot create the copy of %s", sub);
        if (rc == 0)
            rc = copy_data(in, out, st.st_size, sub);
        if (rc == 0 && out >= 0 && fchmod(out, copy_mode(c, st.st_mode)) < 0)
            rc = cru_err_sys("cannot set the mode of the copy of %s", sub);
        if (in >= 0)
            close(in);
        if (out >= 0 && close(out) < 0 && rc == 0)
            rc = cru_err_sys("cannot write the copy of %s", sub);
    } else if (!(flags & CRU_COPY_SKIP_SPECIAL)) {
        rc = cru_err_set(CRU_EUNSAFE, "%s is not a file, folder or link; not copied", sub);
    }
    return rc;
}

/* Copies the contents of folder SFD into folder DFD, PATH naming SFD in messages. */
static int copy_dir(int sfd, int dfd, const char *path, unsigned depth, struct copy *c)
{
    if (depth > 256)
        return cru_err_set(CRU_ELIMIT, "%s: folders nested more than 256 deep", path);
    int lfd = dup(sfd);
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (!d) {
        if (lfd >= 0)
            close(lfd);
        return cru_err_sys("cannot list %s", path);
    }
    rewinddir(d); /* the duplicate shares SFD's position: a caller may have read it before */
    int rc = 0;
    struct dirent *e;
    errno = 0;
    while (rc == 0 && (e = readdir(d))) {
        const char *n = e->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        char sub[CRU_PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/%s", path, n);
        rc = copy_entry(sfd, n, dfd, n, sub, depth, c);
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = cru_err_sys("cannot list %s", path);
    closedir(d);
    return rc;
}

/* Removes the half-made DEST of a failed copy, keeping the copy's error. */
static int copy_failed(int rc, const char *dest)
{
    char msg[CRU_ERR_MAX];
    snprintf(msg, sizeof(msg), "%s", cru_err_msg());
    cru_remove_tree(dest);
    return cru_err_set(rc, "%s", msg);
}

/* Copies the regular file open at IN (from its start) to the new file DEST. */
static int copy_file_fd(int in, const struct stat *st, const char *name, const char *dest,
                        uint64_t max_bytes)
{
    if ((uint64_t)st->st_size > max_bytes)
        return cru_err_set(CRU_ELIMIT, "%s: the tree holds more than the bytes allowed", name);
    if (lseek(in, 0, SEEK_SET) < 0)
        return cru_err_sys("cannot rewind %s", name);
    int out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st->st_mode & 0777);
    if (out < 0)
        return cru_err_sys("cannot create the copy of %s", name);
    int rc = copy_data(in, out, st->st_size, name);
    if (rc == 0 && fchmod(out, st->st_mode & 0777) < 0)
        rc = cru_err_sys("cannot set the mode of the copy of %s", name);
    if (close(out) < 0 && rc == 0)
        rc = cru_err_sys("cannot write the copy of %s", name);
    return rc < 0 ? copy_failed(rc, dest) : 0;
}

/* Removes every symlink in folder FD (REL its path beneath ROOTFD, "" for the root itself)
 * and below that does not lead to an existing file or folder beneath ROOTFD: the kernel
 * resolves each (openat2, RESOLVE_BENEATH), so no ".." or link chain is misjudged. Without
 * openat2 every link goes. */
static int drop_links_out(int rootfd, int fd, const char *rel, unsigned depth)
{
    int lfd = dup(fd), rc = 0;
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (!d) {
        if (lfd >= 0)
            close(lfd);
        return cru_err_sys("cannot list the copy's %s", *rel ? rel : "root");
    }
    rewinddir(d);
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        char sub[CRU_PATH_MAX], target[CRU_PATH_MAX], path[2 * CRU_PATH_MAX];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        if (S_ISDIR(st.st_mode) && depth < 256) {
            int sfd = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = sfd < 0 ? cru_err_sys("cannot open the copy's %s", sub)
                         : drop_links_out(rootfd, sfd, sub, depth + 1);
            if (sfd >= 0)
                close(sfd);
            continue;
        }
        if (!S_ISLNK(st.st_mode))
            continue;
        ssize_t len = readlinkat(fd, e->d_name, target, sizeof(target) - 1);
        bool keep = len > 0 && target[0] != '/';
        if (keep) {
            target[len] = '\0';
            snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "", target);
            struct open_how how = { .flags = O_PATH | O_CLOEXEC,
                                    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
            long t = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
            keep = t >= 0;
            if (t >= 0)
                close((int)t);
        }
        if (!keep && unlinkat(fd, e->d_name, 0) < 0)
            rc = cru_err_sys("cannot remove the copy's link %s", sub);
    }
    closedir(d);
    return rc;
}

int cru_copy_tree_bounded(int srcfd, const char *name, const char *dest, uint64_t max_bytes,
                          uint64_t max_entries, unsigned flags)
{
    struct stat st;
    struct copy c = { max_bytes, max_entries ? max_entries : UINT64_MAX, flags };
    if (lstat(dest, &st) == 0)
        return cru_err_set(CRU_EEXIST, "copying %s: %s exists already", name, dest);
    if (fstat(srcfd, &st) < 0)
        return cru_err_sys("cannot inspect %s", name);
    if (S_ISREG(st.st_mode))
        return copy_file_fd(srcfd, &st, name, dest, max_bytes);
    if (!S_ISDIR(st.st_mode))
        return cru_err_set(CRU_EUNSAFE, "%s is not a file or folder; not copied", name);
    int dfd = -1, rc = 0;
    if (mkdir(dest, 0700) < 0)
        return cru_err_sys("copying %s: cannot create %s", name, dest);
    if ((dfd = open(dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        rc = cru_err_sys("cannot open %s", dest);
    else if ((rc = copy_dir(srcfd, dfd, name, 0, &c)) == 0 && (flags & CRU_COPY_FREEZE))
        rc = drop_links_out(dfd, dfd, "", 0);
    if (rc == 0 && fchmod(dfd, copy_mode(&c, st.st_mode)) < 0)
        rc = cru_err_sys("cannot set the mode of %s", dest);
    if (dfd >= 0)
        close(dfd);
    return rc < 0 ? copy_failed(rc, dest) : 0;
}

int cru_copy_tree_fd(int srcfd, const char *name, const char *dest, uint64_t max_bytes,
                     unsigned flags)
{
    return cru_copy_tree_bounded(srcfd, name, dest, max_bytes, 0, flags);
}

int cru_copy_tree(const char *src, const char *dest, uint64_t max_bytes, unsigned flags)
{
    struct stat st;
    struct copy c = { max_bytes, UINT64_MAX, flags };
    if (lstat(dest, &st) == 0)
        return cru_err_set(CRU_EEXIST, "copying %s: %s exists already", src, dest);
    if (lstat(src, &st) < 0)
        return cru_err_sys("cannot inspect %s", src);
    if (!S_ISDIR(st.st_mode)) {
        /* One file or link; a link is copied as a link, like every link below a folder. */
        int rc = copy_entry(AT_FDCWD, src, AT_FDCWD, dest, src, 0, &c);
        if (rc < 0) {
            char msg[CRU_ERR_MAX];
            snprintf(msg, sizeof(msg), "%s", cru_err_msg());
            unlink(dest);
            cru_err_set(rc, "%s", msg);
        }
        return rc;
    }
    /* O_NOFOLLOW: a folder swapped for a link since the lstat is refused, not followed. */
    int sfd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0)
        return cru_err_sys("cannot open the folder %s", src);
    int rc = cru_copy_tree_fd(sfd, src, dest, max_bytes, flags);
    close(sfd);
    return rc;
}

/* ---- manifests ---- */

struct walk {
    struct cru_manifest *m;
    size_t cap, max_files;
    uint64_t budget;
};

static int manifest_add(struct walk *w, const char *rel, char type, uint64_t size,
                        const uint8_t *digest)
{
    if (w->m->n >= w->max_files)
        return cru_err_set(CRU_ELIMIT, "more than %zu files", w->max_files);
    if (w->m->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct cru_manifest_entry *v = realloc(w->m->v, cap * sizeof(*v));
        if (!v)
            return cru_err_set(CRU_ENOMEM, "out of memory");
        w->m->v = v;
        w->cap = cap;
    }
    struct cru_manifest_entry *e = &w->m->v[w->m->n];
    memset(e, 0, sizeof(*e));
    if (!(e->path = strdup(rel)))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    e->type = type;
    e->size = size;
    if (digest)
        memcpy(e->sha256, digest, 32);
    w->m->n++;
    return 0;
}

/* Digests the regular file NAME in DIRFD, opened without following a link. */
static int digest_file(int dirfd, const char *name, const char *rel, uint64_t *budget,
                       uint8_t out[32], uint64_t *size)
{
    int fd;
    /* Checked again on the open file: the name may have become a FIFO since it was listed. */
    int rc = cru_file_open_regular(dirfd, name, O_NOFOLLOW, rel, &fd, NULL);
    if (rc < 0)
        return rc;
    struct cru_sha256 *h = NULL;
    rc = cru_sha256_new(&h);
    char buf[65536];
    *size = 0;
    while (rc == 0) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cru_err_sys("reading %s", rel);
            break;
        }
        if (n == 0)
            break;
        if ((uint64_t)n > *budget) {
            rc = cru_err_set(CRU_ELIMIT, "%s: the tree holds more file data than allowed", rel);
            break;
        }
        *budget -= (uint64_t)n;
        *size += (uint64_t)n;
        rc = cru_sha256_update(h, buf, (size_t)n);
    }
    if (rc == 0)
        rc = cru_sha256_final(h, out);
    cru_sha256_free(h);
    close(fd);
    return rc;
}

static int manifest_walk(struct walk *w, int dirfd, const char *prefix, int depth)
{
    if (depth > 256)
        return cru_err_set(CRU_ELIMIT, "%s: folders nested deeper than 256", prefix);
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return cru_err_sys("reading folder %s", *prefix ? prefix : ".");
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *rel = NULL;
        if ((rc = cru_str_printf(&rel, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name)) < 0)
            break;
        struct stat st;
        uint8_t dg[32];
        uint64_t size = 0;
        if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = cru_err_sys("%s", rel);
        } else if (S_ISREG(st.st_mode)) {
            rc = digest_file(dirfd, de->d_name, rel, &w->budget, dg, &size);
            if (rc == 0)
                rc = manifest_add(w, rel, 'f', size, dg);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlinkat(dirfd, de->d_name, target, sizeof(target));
            if (n < 0)
                rc = cru_err_sys("%s", rel);
            else if ((rc = cru_sha256(target, (size_t)n, dg)) == 0)
                rc = manifest_add(w, rel, 'l', (uint64_t)n, dg);
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                rc = cru_err_sys("%s", rel);
            } else {
                rc = manifest_add(w, rel, 'd', 0, NULL);
                if (rc == 0)
                    rc = manifest_walk(w, sub, rel, depth + 1);
                close(sub);
            }
        }
        free(rel);
    }
    if (rc == 0 && errno != 0)
        rc = cru_err_sys("reading folder %s", *prefix ? prefix : ".");
    closedir(d);
    return rc;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cru_manifest_entry *)a)->path,
                  ((const struct cru_manifest_entry *)b)->path);
}

int cru_manifest_make(const char *root, size_t max_files, uint64_t max_bytes,
                      struct cru_manifest *out)
{
    return cru_manifest_make_named(root, root, max_files, max_bytes, out);
}

int cru_manifest_make_named(const char *root, const char *name, size_t max_files,
                            uint64_t max_bytes, struct cru_manifest *out)
{
    memset(out, 0, sizeof(*out));
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cru_err_sys("%s", name);
    struct walk w = { out, 0, max_files, max_bytes };
    int rc = manifest_walk(&w, fd, "", 0);
    close(fd);
    if (rc < 0) {
        cru_manifest_free(out);
        return cru_err_wrap(rc, "listing %s", name);
    }
    if (out->n)
        qsort(out->v, out->n, sizeof(*out->v), entry_cmp);
    return 0;
}

void cru_manifest_free(struct cru_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].path);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

void cru_manifest_digest(const struct cru_manifest *m, uint8_t out[32])
{
    struct cru_sha256 *h = NULL;
    memset(out, 0, 32);
    if (cru_sha256_new(&h) < 0)
        return;
    for (size_t i = 0; i < m->n; i++) {
        const struct cru_manifest_entry *e = &m->v[i];
        char head[64];
        int n = snprintf(head, sizeof(head), "%c %llu ", e->type, (unsigned long long)e->size);
        cru_sha256_update(h, head, (size_t)n);
        cru_sha256_update(h, e->path, strlen(e->path) + 1); /* with its NUL: unambiguous */
        cru_sha256_update(h, e->sha256, 32);
    }
    cru_sha256_final(h, out);
    cru_sha256_free(h);
}

const struct cru_manifest_entry *cru_manifest_find(const struct cru_manifest *m, const char *path)
{
    struct cru_manifest_entry key = { .path = (char *)(uintptr_t)path };
    return m->n ? bsearch(&key, m->v, m->n, sizeof(*m->v), entry_cmp) : NULL;
}
