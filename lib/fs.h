/* fs: whole-file reads with a bound, complete writes, atomic replacement, directory creation.
 *
 * cru_file_write_atomic() is how crucible writes every file another process may read while it
 * is written (summaries, indexes, configs): readers see the old file or the new one, never a
 * mix, and a crash leaves no partial file under the final name.
 */
#ifndef CRU_LIB_FS_H
#define CRU_LIB_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lib/buf.h"

/* Reads the whole of PATH into OUT (appending). A file larger than MAX bytes is an error
 * (CRU_ELIMIT) and nothing is appended: never a silently truncated read. PATH must be a regular
 * file (/proc and cgroup files are): a FIFO, device, socket or directory is refused at once
 * (CRU_EINVAL, naming what it is), never waited on, since a FIFO put where a file belongs would
 * otherwise block the reader for ever. */
int cru_file_read(const char *path, size_t max, struct cru_buf *out);

/* The same for a caller that means to read a stream: PATH may also be a pipe, a FIFO or a
 * character device (/dev/stdin, a process substitution), read until its end or MAX bytes. It
 * may block until a writer comes. Only a directory is refused. */
int cru_file_read_stream(const char *path, size_t max, struct cru_buf *out);

/* Opens NAME (relative to DIRFD, or AT_FDCWD) for reading if it is a regular file, with
 * O_RDONLY | O_CLOEXEC and FLAGS (O_NOFOLLOW, ...). Anything else is refused without blocking
 * (CRU_EINVAL: "LABEL is a FIFO, not a regular file"). On success *OUT_FD is an ordinary
 * blocking descriptor that the caller closes, and *OUT_ST (when not NULL) its fstat. */
int cru_file_open_regular(int dirfd, const char *name, int flags, const char *label, int *out_fd,
                          struct stat *out_st);

/* "a regular file", "a directory", "a FIFO", "a character device", ... for a st_mode. */
const char *cru_file_type_name(mode_t mode);

/* One read(2) of up to LEN bytes, retried on EINTR: *got is the count, 0 at end of file.
 * NAME labels the error ("cannot read NAME: ..."). */
int cru_read_some(int fd, void *buf, size_t len, size_t *got, const char *name);

/* Writes all LEN bytes, retrying short writes and EINTR. */
int cru_write_all(int fd, const void *data, size_t len);

/* Replaces PATH with DATA: writes a temporary file in the same directory, fsyncs it, sets
 * MODE, renames it over PATH and fsyncs the directory. On failure PATH is untouched and the
 * temporary file is removed. */
int cru_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* The same relative to the directory DIRFD: the temporary file is ".NAME." and 6 random
 * characters, created with O_EXCL; the rename is renameat() within DIRFD. So a link planted
 * there can neither redirect the write nor take it outside. When UID is not (uid_t)-1 the file is
 * given to UID:GID before it is renamed into place. LABEL names the file in errors. */
int cru_file_write_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                             uid_t uid, gid_t gid, const char *label);

/* Creates PATH and its missing parents (like mkdir -p). An existing directory is success;
 * an existing non-directory is CRU_EEXIST. */
int cru_mkdir_p(const char *path, mode_t mode);

/* Removes PATH and, for a directory, everything below it (like rm -rf, but never following a
 * link, and opening up directories whose modes forbid their removal). A missing PATH is
 * success. */
int cru_remove_tree(const char *path);

/* Flags of cru_copy_tree(). */
enum cru_copy_flags {
    CRU_COPY_SKIP_SPECIAL = 1u << 0, /* leave devices, FIFOs and sockets out instead of failing */
    CRU_COPY_NO_LINKS = 1u << 1,     /* refuse symlinks (CRU_EUNSAFE) instead of copying them */
    /* Bytes only, for an artifact to be judged: files 0644 (0755 when any execute bit was
     * set), folders 0755, and only the symlinks that lead to a file or folder of the copy
     * itself (others, absolute, dangling or leading out, are left out). */
    CRU_COPY_FREEZE = 1u << 2,
    CRU_COPY_NO_CACHES = 1u << 3, /* leave out __pycache__ folders and *.pyc / *.pyo files */
};

/* Copies the tree at SRC (a folder, or a single file or link) to DEST, which must not exist
 * (CRU_EEXIST): folders, regular files (permission bits & 0777) and symlinks (as links, never
 * followed, SRC itself included: a link at SRC is copied as a link). Anything else (a device,
 * a FIFO, a socket) is CRU_EUNSAFE, or left out with CRU_COPY_SKIP_SPECIAL; more than
 * MAX_BYTES of file data is CRU_ELIMIT. On any failure DEST is removed, so it holds the whole
 * copy or does not exist. */
int cru_copy_tree(const char *src, const char *dest, uint64_t max_bytes, unsigned flags);

/* cru_copy_tree_fd() with a bound on the number of entries (files, folders and links)
 * besides the bytes: more than MAX_ENTRIES is CRU_ELIMIT too (0: no bound). */
int cru_copy_tree_bounded(int srcfd, const char *name, const char *dest, uint64_t max_bytes,
                          uint64_t max_entries, unsigned flags);

/* The same for the folder or regular file open (not O_PATH) at SRCFD, which the caller
 * resolved (cru_path_open_beneath): nothing is looked up by path on the source side, so what
 * was checked is what is copied. A file is copied from its start. NAME labels SRCFD in
 * messages. */
int cru_copy_tree_fd(int srcfd, const char *name, const char *dest, uint64_t max_bytes,
                     unsigned flags);

/* One entry of a tree's manifest. */
struct cru_manifest_entry {
    char *path; /* relative to the tree's root, '/'-separated */
    char type;  /* 'f' regular file, 'l' symlink, 'd' folder */
    uint64_t size;
    uint8_t sha256[32]; /* of the file's contents, or of the link's target; zero for folders */
};

struct cru_manifest {
    struct cru_manifest_entry *v;
    size_t n;
};

/* Lists every folder, regular file and symlink below ROOT (not following links; other kinds
 * are left out), sorted by path, with their sizes and SHA-256 digests. More than MAX_FILES
 * entries or MAX_BYTES of file data is CRU_ELIMIT. */
int cru_manifest_make(const char *root, size_t max_files, uint64_t max_bytes,
                      struct cru_manifest *out);
/* The same, with ROOT called NAME in messages ("listing the workspace: more than ..."). */
int cru_manifest_make_named(const char *root, const char *name, size_t max_files,
                            uint64_t max_bytes, struct cru_manifest *out);
void cru_manifest_free(struct cru_manifest *m);
/* One digest of the whole manifest (paths, types, sizes, digests): a tree's content id. */
void cru_manifest_digest(const struct cru_manifest *m, uint8_t out[32]);
/* The entry for PATH, or NULL (binary search). */
const struct cru_manifest_entry *cru_manifest_find(const struct cru_manifest *m, const char *path);

#endif
