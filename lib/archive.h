/* archive: safe, all-or-nothing extraction of an archive that may be hostile.
 *
 * Task workspaces, rootfs tarballs and artifacts arrive as archives that an agent or a task
 * author made, so every entry is checked before it touches the disk: no absolute paths, no
 * ".." components, no symlink that points out of the tree, no hardlink to anything but a
 * regular file extracted earlier, no device nodes, FIFOs, sockets, setuid or setgid bits (a root
 * filesystem's are dropped, not refused), and
 * bounds on the entry count, the path length and the bytes written (counted while copying,
 * never taken from headers). The tree is built in a fresh sibling of DEST and renamed to DEST
 * only when the whole archive passed; on any failure it is removed, so DEST either holds the
 * whole archive or does not exist.
 */
#ifndef CRU_LIB_ARCHIVE_H
#define CRU_LIB_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRU_ARCHIVE_LIMITS_VERSION 1

struct cru_archive_limits {
    int version;          /* CRU_ARCHIVE_LIMITS_VERSION */
    uint64_t max_bytes;   /* file data written, holes included */
    uint64_t max_entries; /* entries read, of any type */
    size_t max_path;      /* bytes in an entry's path or link target; at most CRU_PATH_MAX - 1 */
    bool rootfs;          /* a root filesystem: absolute symlinks are allowed (they resolve in
                             the sandbox's root; the host never follows links in the tree),
                             and setuid and setgid bits are dropped instead of refused (every
                             distribution's tarball has su and passwd; the bits would mean
                             nothing in the sandbox, and a root-owned setuid file in the host's
                             cache everything) */
};

#define CRU_ARCHIVE_LIMITS_INIT                                                                    \
    {                                                                                              \
        CRU_ARCHIVE_LIMITS_VERSION, (uint64_t)4 << 30, 1000000, 4095, false                        \
    }

struct cru_archive_stats {
    uint64_t entries; /* entries extracted, "." included */
    uint64_t bytes;   /* file data written */
    uint64_t files;   /* regular files, hardlinks excluded */
    uint64_t dirs;
    uint64_t links; /* symlinks and hardlinks */
};

/* Extracts ARCHIVE (a regular file: anything else is CRU_EINVAL, refused without blocking; any
 * format and filter libarchive reads) into DEST, which must not exist (CRU_EEXIST). Files get the
 * archive's permission bits & 0777 and belong to the caller. A refused entry is CRU_EUNSAFE, a
 * broken bound CRU_ELIMIT, a corrupt or truncated archive CRU_EPARSE; the message names the entry
 * and the reason. STATS may be NULL; it is filled only on success.
 *
 * libarchive resolves entry paths from the working directory, so the extraction runs in a
 * thread of its own with its own working directory (unshare(CLONE_FS)): the caller's and other
 * threads' working directories never change. */
int cru_archive_extract(const char *archive, const char *dest, const struct cru_archive_limits *lim,
                        struct cru_archive_stats *stats);

/* The same for the archive open at FD (a regular file, read from its start), which the caller
 * resolved (cru_path_open_beneath): the archive is not looked up by path again, so what was
 * checked is what is unpacked. NAME labels it in messages. FD stays open. */
int cru_archive_extract_fd(int fd, const char *name, const char *dest,
                           const struct cru_archive_limits *lim, struct cru_archive_stats *stats);

#endif
