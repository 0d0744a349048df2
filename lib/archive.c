/* archive: safe, all-or-nothing extraction of an archive that may be hostile.
 *
 * Each entry is read with libarchive, checked here (path, type, mode bits, link targets,
 * bounds) and written with archive_write_disk under its secure flags, which refuse again any
 * absolute path, any ".." and any path through a symlink already on disk. The entry paths are
 * written relative to a fresh DEST.partial-XXXXXX directory, which becomes DEST by a rename
 * that refuses to replace anything, and is removed on any failure. Before the rename every
 * symlink in the tree is resolved beneath it (openat2 RESOLVE_BENEATH), which catches chains
 * of links that each look harmless. It does not set owners, ACLs, extended attributes or file
 * flags, and it reads only real archive formats: mtree is left out on purpose, since an mtree
 * "archive" names host files whose contents it would copy in.
 */
#include "lib/archive.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/dl.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/path.h"
#include "lib/str.h"

/* How much of a hostile entry name goes into a message, after escaping. */
#define SHOW_MAX 200

/* What archive_write_disk enforces on its own; owners, ACLs, xattrs and fflags stay off. */
#define DISK_FLAGS                                                                                 \
    (ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |                           \
     ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME)

struct ax {
    const struct cru_libarchive *dl; /* libarchive, loaded on first use (lib/dl.h) */
    const struct cru_archive_limits *lim;
    struct archive *in;
    int in_fd; /* the archive file, opened by us so that only a regular file is read */
    struct archive *out;
    void *files; /* tsearch tree: paths (malloc'd) that hold a regular file we wrote */
    struct cru_archive_stats st;
    char name[SHOW_MAX * 4 + 8]; /* the current entry, escaped for messages */
};

/* An entry's name for messages: control and non-ASCII bytes as \xNN, cut at SHOW_MAX. */
static void show(char *dst, const char *s)
{
    cru_str_show(dst, s, SHOW_MAX, false);
}

/* Sets CODE with "entry N 'NAME': " and the message. The arguments may point into the current
 * error message: they are formatted before it is replaced. */
__attribute__((format(printf, 3, 4))) static int entry_err(const struct ax *x, int code,
                                                           const char *fmt, ...)
{
    char why[CRU_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return cru_err_set(code, "entry %llu '%s': %s", (unsigned long long)x->st.entries, x->name,
                       why);
}

/* libarchive's write_disk refusals (a symlink in the path, "..") carry no system errno. */
static int disk_err(const struct ax *x, const char *what)
{
    const struct cru_libarchive *dl = x->dl;
    int e = dl->archive_errno(x->out);
    const char *msg = dl->archive_error_string(x->out);
    return entry_err(x, e > 0 ? cru_err_from_errno(e) : CRU_EUNSAFE, "%s: %s", what,
                     msg ? msg : "failed");
}

static int read_err(const struct ax *x, const char *what)
{
    const struct cru_libarchive *dl = x->dl;
    const char *msg = dl->archive_error_string(x->in);
    return entry_err(x, CRU_EPARSE, "%s: %s", what, msg ? msg : "failed");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Whether TARGET, read from the directory that holds LINK (a clean relative path), climbs
 * above the tree's root at any step. */
static int link_escapes(const char *link, const char *target)
{
    long depth = 0;
    for (const char *p = link; *p; p++)
        depth += *p == '/';
    for (const char *p = target; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (--depth < 0)
                return 1;
        } else if (n > 0 && !(n == 1 && p[0] == '.')) {
            depth++;
        }
        p += n;
        while (*p == '/')
            p++;
    }
    return 0;
}

static void forget_file(struct ax *x, const char *path)
{
    void *node = tfind(path, &x->files, cmp_str);
    if (node) {
        char *key = *(char **)node;
        tdelete(path, &x->files, cmp_str);
        free(key);
    }
}

static int remember_file(struct ax *x, const char *path)
{
    char *key = strdup(path);
    if (!key || !tsearch(key, &x->files, cmp_str)) {
        free(key);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    return 0;
}

/* The checks on a hardlink entry; on success its target is rewritten to the clean path. */
static int check_hardlink(struct ax *x, struct archive_entry *e, const char *path, const char *hl)
{
    const struct cru_libarchive *dl = x->dl;
    char *target = NULL;
    int rc;

    if (strlen(hl) > x->lim->max_path)
        return entry_err(x, CRU_ELIMIT, "hardlink target longer than max_path (%zu bytes)",
                         x->lim->max_path);
    if (hl[0] == '/')
        return entry_err(x, CRU_EUNSAFE, "hardlink to an absolute path");
    if ((rc = cru_path_clean(&target, hl)) < 0)
        return entry_err(x, rc, "hardlink target: %s", cru_err_msg());
    if (!tfind(target, &x->files, cmp_str) || strcmp(target, path) == 0) {
        char shown[sizeof(x->name)];
        show(shown, target);
        rc = entry_err(x, CRU_EUNSAFE,
                       "hardlink target '%s' is not a regular file extracted earlier", shown);
    } else {
        dl->archive_entry_set_hardlink(e, target);
    }
    free(target);
    if (rc == 0 && dl->archive_entry_size_is_set(e) && dl->archive_entry_size(e) > 0 &&
        (uint64_t)dl->archive_entry_size(e) > x->lim->max_bytes - x->st.bytes)
        rc = entry_err(x, CRU_ELIMIT, "more than max_bytes (%llu) of file data",
                       (unsigned long long)x->lim->max_bytes);
    return rc;
}

static int check_symlink(struct ax *x, const char *path, const char *target)
{
    char shown[sizeof(x->name)];

    if (!target || !*target)
        return entry_err(x, CRU_EUNSAFE, "symlink without a target");
    if (strlen(target) > x->lim->max_path)
        return entry_err(x, CRU_ELIMIT, "symlink target longer than max_path (%zu bytes)",
                         x->lim->max_path);
    show(shown, target);
    if (target[0] == '/') {
        if (x->lim->rootfs)
            return 0; /* resolved inside the sandbox's own root, never by the host */
        return entry_err(x, CRU_EUNSAFE, "symlink to an absolute path '%s'", shown);
    }
    if (link_escapes(path, target))
        return entry_err(x, CRU_EUNSAFE, "symlink target '%s' leaves the tree", shown);
    return 0;
}

/* The type and mode checks; counts the entry in the stats. */
static int check_kind(struct ax *x, struct archive_entry *e, const char *path)
{
    const struct cru_libarchive *dl = x->dl;
    mode_t mode = dl->archive_entry_mode(e);
    const char *hl = dl->archive_entry_hardlink(e);

    /* A root filesystem's are dropped with the rest of the high bits (mode & 0777, below). */
    if ((mode & S_ISUID) && !x->lim->rootfs)
        return entry_err(x, CRU_EUNSAFE, "setuid bit (mode %o)", (unsigned)mode & 07777);
    if ((mode & S_ISGID) && !x->lim->rootfs)
        return entry_err(x, CRU_EUNSAFE, "setgid bit (mode %o)", (unsigned)mode & 07777);
    if (hl) {
        x->st.links++;
        return check_hardlink(x, e, path, hl);
    }
    switch (dl->archive_entry_filetype(e)) {
    case AE_IFREG:
        x->st.files++;
        return 0;
    case AE_IFDIR:
        x->st.dirs++;
        return 0;
    case AE_IFLNK:
        x->st.links++;
        return check_symlink(x, path, dl->archive_entry_symlink(e));
    case AE_IFCHR:
    case AE_IFBLK:
        return entry_err(x, CRU_EUNSAFE, "device node");
    case AE_IFIFO:
        return entry_err(x, CRU_EUNSAFE, "FIFO");
    case AE_IFSOCK:
        return entry_err(x, CRU_EUNSAFE, "socket");
    default:
        return entry_err(x, CRU_EUNSAFE, "unknown file type (mode %o)", (unsigned)mode);
    }
}

/* Copies the entry's data, counting the bytes it makes the file span (holes too), so that a
 * header that lies about sizes cannot get more than max_bytes onto the disk. */
static int copy_data(struct ax *x, struct archive_entry *e)
{
    const struct cru_libarchive *dl = x->dl;
    uint64_t end = 0;
    for (;;) {
        const void *buf;
        size_t size;
        la_int64_t off;
        int r = dl->archive_read_data_block(x->in, &buf, &size, &off);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return read_err(x, "reading data");
        if (off < 0 || (uint64_t)off > x->lim->max_bytes)
            return entry_err(x, CRU_ELIMIT, "data at offset %lld, beyond max_bytes (%llu)",
                             (long long)off, (unsigned long long)x->lim->max_bytes);
        uint64_t stop = (uint64_t)off + size;
        if (stop > end) {
            if (stop - end > x->lim->max_bytes - x->st.bytes)
                return entry_err(x, CRU_ELIMIT, "more than max_bytes (%llu) of file data",
                                 (unsigned long long)x->lim->max_bytes);
            x->st.bytes += stop - end;
            end = stop;
        }
        if (size > 0 && dl->archive_write_data_block(x->out, buf, size, off) < ARCHIVE_WARN)
            return disk_err(x, "writing");
    }
    /* A hardlink keeps its header size (cpio carries the data on a link), and write_disk
     * extends the file to it: count that too. It was checked against the bound already. */
    if (dl->archive_entry_size_is_set(e) && dl->archive_entry_size(e) > 0 &&
        (uint64_t)dl->archive_entry_size(e) > end)
        x->st.bytes += (uint64_t)dl->archive_entry_size(e) - end;
    return 0;
}

static int extract_entry(struct ax *x, struct archive_entry *e)
{
    const struct cru_libarchive *dl = x->dl;
    const char *raw = dl->archive_entry_pathname(e);
    char *path = NULL;
    int rc;

    show(x->name, raw ? raw : "");
    if (++x->st.entries > x->lim->max_entries)
        return entry_err(x, CRU_ELIMIT, "more than max_entries (%llu) entries",
                         (unsigned long long)x->lim->max_entries);
    if (!raw || !*raw)
        return entry_err(x, CRU_EUNSAFE, "empty path");
    if (strlen(raw) > x->lim->max_path)
        return entry_err(x, CRU_ELIMIT, "path longer than max_path (%zu bytes)", x->lim->max_path);
    if (raw[0] == '/')
        return entry_err(x, CRU_EUNSAFE, "absolute path");
    if ((rc = cru_path_clean(&path, raw)) < 0)
        return entry_err(x, rc, "%s", cru_err_msg());

    if (!*path) {
        /* "./" heads many tarballs: the root exists already, and keeps its own mode. */
        if (dl->archive_entry_filetype(e) != AE_IFDIR || dl->archive_entry_hardlink(e))
            rc = entry_err(x, CRU_EUNSAFE, "names the destination itself");
        goto done;
    }
    if ((rc = check_kind(x, e, path)) < 0)
        goto done;

    dl->archive_entry_set_pathname(e, path);
    dl->archive_entry_set_perm(e, dl->archive_entry_perm(e) & 0777);
    dl->archive_entry_acl_clear(e);
    dl->archive_entry_xattr_clear(e);
    dl->archive_entry_set_fflags(e, 0, 0);
    /* write_disk would extend a file to the size its header claims; only data counts. */
    if (!dl->archive_entry_hardlink(e))
        dl->archive_entry_unset_size(e);

    forget_file(x, path);
    if (dl->archive_write_header(x->out, e) < ARCHIVE_WARN) {
        rc = disk_err(x, "creating");
        goto done;
    }
    if ((rc = copy_data(x, e)) < 0)
        goto done;
    if (dl->archive_write_finish_entry(x->out) < ARCHIVE_WARN) {
        rc = disk_err(x, "finishing");
        goto done;
    }
    if (dl->archive_entry_hardlink(e) || dl->archive_entry_filetype(e) == AE_IFREG)
        rc = remember_file(x, path);
done:
    free(path);
    return rc;
}

/* Opens the archive FD (when not -1) or else the file ARCHIVE. */
static int open_input(struct ax *x, int fd, const char *archive)
{
    const struct cru_libarchive *dl = x->dl;
    struct archive *in = dl->archive_read_new();
    if (!in)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    x->in = in;
    /* Filters that libarchive would run as an external program when it lacks the library
     * are left out, and so is mtree (see the top of the file). */
    if (dl->archive_read_support_filter_gzip(in) < ARCHIVE_WARN ||
        dl->archive_read_support_filter_bzip2(in) < ARCHIVE_WARN ||
        dl->archive_read_support_filter_xz(in) < ARCHIVE_WARN ||
        dl->archive_read_support_filter_lzma(in) < ARCHIVE_WARN ||
        dl->archive_read_support_filter_zstd(in) < ARCHIVE_WARN ||
        dl->archive_read_support_filter_compress(in) < ARCHIVE_WARN ||
        dl->archive_read_support_format_tar(in) != ARCHIVE_OK ||
        dl->archive_read_support_format_cpio(in) != ARCHIVE_OK ||
        dl->archive_read_support_format_zip(in) != ARCHIVE_OK ||
        dl->archive_read_support_format_7zip(in) != ARCHIVE_OK ||
        dl->archive_read_support_format_iso9660(in) != ARCHIVE_OK ||
        dl->archive_read_support_format_ar(in) != ARCHIVE_OK ||
        dl->archive_read_support_format_xar(in) < ARCHIVE_WARN ||
        dl->archive_read_support_format_empty(in) != ARCHIVE_OK)
        return cru_err_set(CRU_EUNSUPPORTED, "libarchive: %s", dl->archive_error_string(in));
    if (fd >= 0 && lseek(fd, 0, SEEK_SET) < 0)
        return cru_err_sys("cannot rewind");
    /* A path is opened here rather than by libarchive, which would wait for ever on a FIFO. */
    int rc;
    if (fd < 0 && (rc = cru_file_open_regular(AT_FDCWD, archive, 0, archive, &x->in_fd, NULL)) < 0)
        return rc;
    if (dl->archive_read_open_fd(in, fd >= 0 ? fd : x->in_fd, 64 * 1024) != ARCHIVE_OK) {
        int e = dl->archive_errno(in);
        const char *msg = dl->archive_error_string(in);
        return cru_err_set(e > 0 ? cru_err_from_errno(e) : CRU_EPARSE, "cannot open: %s",
                           msg ? msg : "failed");
    }
    return 0;
}

static int extract_all(struct ax *x)
{
    const struct cru_libarchive *dl = x->dl;
    for (;;) {
        struct archive_entry *e;
        int r = dl->archive_read_next_header(x->in, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            const char *msg = dl->archive_error_string(x->in);
            return cru_err_set(CRU_EPARSE, "after entry %llu '%s': %s",
                               (unsigned long long)x->st.entries, x->name, msg ? msg : "failed");
        }
        int rc = extract_entry(x, e);
        if (rc < 0)
            return rc;
    }
    /* Applies the deferred directory modes and times, relative to the working directory. */
    if (dl->archive_write_close(x->out) < ARCHIVE_WARN)
        return disk_err(x, "finishing the tree");
    return 0;
}

/* ---- the tree: a walk that never follows links, for the link check and the removal ---- */

static int list_dir(int rootfd, const struct cru_buf *rel, struct dirent ***ents)
{
    int n = scandirat(rootfd, rel->len ? rel->data : ".", ents, NULL, NULL);
    if (n < 0)
        return cru_err_sys("cannot list %s", rel->len ? rel->data : ".");
    return n;
}

static int is_dot(const char *name)
{
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

static int push(struct cru_buf *rel, const char *name)
{
    return rel->len ? cru_buf_printf(rel, "/%s", name) : cru_buf_puts(rel, name);
}

static void pop(struct cru_buf *rel, size_t len)
{
    rel->len = len;
    if (rel->data)
        rel->data[len] = '\0';
}

/* Whether the symlink REL resolves beneath ROOTFD; a dangling or looping link is fine. */
static int check_link_beneath(int rootfd, const char *rel)
{
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    for (int tries = 0; tries < 8; tries++) {
        long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
        if (fd >= 0) {
            close((int)fd);
            return 0;
        }
        if (errno != EAGAIN)
            break;
    }
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == ENOSYS)
        return 0;
    char shown[SHOW_MAX * 4 + 8];
    show(shown, rel);
    if (errno == EXDEV)
        return cru_err_set(CRU_EUNSAFE, "symlink '%s' resolves outside the tree", shown);
    return cru_err_sys("cannot resolve symlink '%s'", shown);
}

static int check_links(int rootfd, struct cru_buf *rel)
{
    struct dirent **ents = NULL;
    int n = list_dir(rootfd, rel, &ents), rc = 0;
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        size_t len = rel->len;
        struct stat st;
        if (rc == 0 && !is_dot(ents[i]->d_name) && (rc = push(rel, ents[i]->d_name)) == 0) {
            if (fstatat(rootfd, rel->data, &st, AT_SYMLINK_NOFOLLOW) < 0)
                rc = cru_err_sys("cannot stat %s", rel->data);
            else if (S_ISDIR(st.st_mode))
                rc = check_links(rootfd, rel);
            else if (S_ISLNK(st.st_mode))
                rc = check_link_beneath(rootfd, rel->data);
            pop(rel, len);
        }
        free(ents[i]);
    }
    free(ents);
    return rc;
}

static int check_tree(const char *dir)
{
    struct cru_buf rel = CRU_BUF_INIT;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return cru_err_sys("cannot open %s", dir);
    int rc = check_links(fd, &rel);
    close(fd);
    cru_buf_free(&rel);
    return rc;
}

static int check_args(const char *archive, const char *dest, const struct cru_archive_limits *lim)
{
    if (!archive || !*archive || !dest || !*dest || !lim)
        return cru_err_set(CRU_EINVAL, "archive extract: missing archive, destination or limits");
    if (lim->version != CRU_ARCHIVE_LIMITS_VERSION)
        return cru_err_set(CRU_EINVAL, "archive limits: version %d, expected %d", lim->version,
                           CRU_ARCHIVE_LIMITS_VERSION);
    if (lim->max_path == 0 || lim->max_path > CRU_PATH_MAX - 1)
        return cru_err_set(CRU_EINVAL, "archive limits: max_path %zu is not within 1..%d",
                           lim->max_path, CRU_PATH_MAX - 1);
    return 0;
}

static int extract(int fd, const char *archive, const char *dest,
                   const struct cru_archive_limits *lim, struct cru_archive_stats *stats)
{
    const struct cru_libarchive *dl;
    struct ax x = { .lim = lim, .in_fd = -1 };
    char *target = NULL, *tmp = NULL;
    int rc, cwd = -1, moved = 0;
    struct stat st;

    if ((rc = check_args(archive, dest, lim)) < 0)
        return rc;
    if ((rc = cru_dl_libarchive(&dl)) < 0)
        return cru_err_wrap(rc, "extracting %s", archive);
    x.dl = dl;
    if ((rc = cru_str_printf(&target, "%s", dest)) < 0)
        return rc;
    for (size_t n = strlen(target); n > 1 && target[n - 1] == '/'; n--)
        target[n - 1] = '\0';
    if (strcmp(target, "/") == 0) {
        rc = cru_err_set(CRU_EINVAL, "the destination cannot be /");
        goto done;
    }
    if (lstat(target, &st) == 0) {
        rc = cru_err_set(CRU_EEXIST, "%s exists already", target);
        goto done;
    }
    if (errno != ENOENT) {
        rc = cru_err_sys("cannot check %s", target);
        goto done;
    }
    if ((rc = cru_str_printf(&tmp, "%s.partial-XXXXXX", target)) < 0)
        goto done;
    if (!mkdtemp(tmp)) {
        rc = cru_err_sys("cannot create a directory next to %s", target);
        free(tmp);
        tmp = NULL;
        goto done;
    }
    if ((rc = open_input(&x, fd, archive)) < 0)
        goto done;
    if (!(x.out = dl->archive_write_disk_new()) ||
        dl->archive_write_disk_set_options(x.out, DISK_FLAGS) != ARCHIVE_OK) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    /* libarchive resolves entry paths from the working directory, and its secure flags refuse
     * absolute ones: so it works from inside the fresh directory, which only we can write. */
    if ((cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = cru_err_sys("cannot open the working directory");
        goto done;
    }
    if (chdir(tmp) < 0) {
        rc = cru_err_sys("cannot enter %s", tmp);
        goto done;
    }
    moved = 1;
    if ((rc = extract_all(&x)) < 0)
        goto done;
    /* Freed here, while still inside the tree: closing applies deferred fixups by path. */
    dl->archive_write_free(x.out);
    x.out = NULL;
    if (fchdir(cwd) < 0) {
        rc = cru_err_sys("cannot return to the working directory");
        goto done;
    }
    moved = 0;
    /* A root filesystem's absolute links would all "escape"; its links are only ever
     * followed inside the sandbox's root, so the check is for trees the host reads. */
    if (!x.lim->rootfs && (rc = check_tree(tmp)) < 0)
        goto done;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_NOREPLACE) < 0) {
        rc = cru_err_sys("cannot rename the extracted tree to %s", target);
        goto done;
    }
    free(tmp);
    tmp = NULL;
    if (stats)
        *stats = x.st;
done:
    dl->archive_write_free(x.out);
    dl->archive_read_free(x.in);
    if (x.in_fd >= 0)
        close(x.in_fd);
    if (moved && fchdir(cwd) < 0 && rc == 0)
        rc = cru_err_sys("cannot return to the working directory");
    if (cwd >= 0)
        close(cwd);
    tdestroy(x.files, free);
    if (rc < 0 && tmp) {
        char msg[CRU_ERR_MAX];
        int code = cru_err_code();
        snprintf(msg, sizeof(msg), "%s", cru_err_msg());
        if (cru_remove_tree(tmp) < 0) {
            char why[CRU_ERR_MAX];
            snprintf(why, sizeof(why), "%s", cru_err_msg());
            cru_err_set(code, "%s (and %s could not be removed: %s)", msg, tmp, why);
        } else {
            cru_err_set(code, "%s", msg);
        }
    }
    free(tmp);
    free(target);
    if (rc < 0)
        cru_err_wrap(rc, "extracting %s", archive);
    return rc;
}

struct extract_job {
    int fd;
    const char *archive, *dest;
    const struct cru_archive_limits *lim;
    struct cru_archive_stats *stats;
    int rc;
    char msg[CRU_ERR_MAX];
};

/* Runs in a thread of its own that first stops sharing the working directory with the rest of
 * the process (unshare(CLONE_FS) is per thread), so extract() may chdir into the tree without
 * moving any other thread. The thread's error is handed back to the caller's. */
static void *extract_thread(void *arg)
{
    struct extract_job *job = arg;
    if (unshare(CLONE_FS) < 0)
        job->rc = cru_err_sys("cannot give the extraction its own working directory");
    else
        job->rc = extract(job->fd, job->archive, job->dest, job->lim, job->stats);
    if (job->rc < 0)
        snprintf(job->msg, sizeof(job->msg), "%s", cru_err_msg());
    return NULL;
}

static int extract_in_thread(int fd, const char *archive, const char *dest,
                             const struct cru_archive_limits *lim, struct cru_archive_stats *stats)
{
    struct extract_job job = { fd, archive, dest, lim, stats, 0, "" };
    pthread_t t;
    int e = pthread_create(&t, NULL, extract_thread, &job);
    if (e != 0) {
        errno = e;
        return cru_err_sys("cannot start the extraction of %s", archive);
    }
    pthread_join(t, NULL);
    if (job.rc < 0)
        return cru_err_set(job.rc, "%s", job.msg);
    return 0;
}

int cru_archive_extract(const char *archive, const char *dest, const struct cru_archive_limits *lim,
                        struct cru_archive_stats *stats)
{
    return extract_in_thread(-1, archive, dest, lim, stats);
}

int cru_archive_extract_fd(int fd, const char *name, const char *dest,
                           const struct cru_archive_limits *lim, struct cru_archive_stats *stats)
{
    if (fd < 0)
        return cru_err_set(CRU_EINVAL, "archive extract: no descriptor for %s", name);
    return extract_in_thread(fd, name, dest, lim, stats);
}
