/* fsaccess: the host's reads and writes inside a sandbox's workspace, confined to it.
 *
 * The workspace is a tree the agent controls: it may plant symlinks (to /etc/shadow, to
 * /proc/self/root, to "../../.."), replace directories with links between two calls, or
 * hard-link host files it can see. Every function here first refuses an absolute REL or one
 * with a ".." component (CRU_EUNSAFE, lexically: "" and "." name the root), then resolves REL
 * beneath ROOTFD with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV):
 * absolute symlinks and ".." inside link targets resolve inside the workspace and never
 * outside it, /proc magic links are refused, and so is any mount point below the root (the
 * host-side root is one overlay mount; anything mounted beneath it is not the workspace).
 * Where openat2 is missing (kernels before 5.6, or a seccomp policy that denies it) a
 * component walk with O_NOFOLLOW gives the same confinement more strictly: it refuses every
 * symlink on the way (CRU_EUNSAFE, naming the component) instead of resolving it, and refuses
 * mount crossings too. The host never follows a link out of the tree, whatever the agent did.
 *
 * Hard links are outside what path resolution can see: a hard link inside the workspace to a
 * host file IS that file, and reading it returns the host's data. The guarantee rests on the
 * sandbox being unable to create one: it cannot see host files, and link(2) needs a name for
 * the source. The host must therefore never place its own files in a workspace's file system.
 */
#ifndef CRU_SANDBOX_FSACCESS_H
#define CRU_SANDBOX_FSACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lib/buf.h"

/* Which resolver a call uses; AUTO tries openat2 and falls back to the walk on ENOSYS. The two
 * differ only in symlinks: openat2 follows them inside the root, the walk refuses them. */
enum sbx_fs_resolver {
    SBX_FS_AUTO = 0,
    SBX_FS_OPENAT2,
    SBX_FS_WALK,
};

struct sbx_fs {
    int rootfd; /* an O_PATH or O_DIRECTORY fd of the workspace root */
    uid_t uid;  /* owner given to files and directories the host creates */
    gid_t gid;  /*   (the sandbox root's host ids) */
    enum sbx_fs_resolver resolver;
};

struct sbx_fs_entry {
    char *name;  /* owned; freed by sbx_fs_entries_free() */
    mode_t type; /* S_IFREG, S_IFDIR, S_IFLNK, ... */
    uint64_t size;
};

/* Opens REL beneath the root; FLAGS as for open(2), with O_CLOEXEC added. A file that O_CREAT
 * (or O_TMPFILE) creates gets the sandbox owner and exactly MODE (not masked by the umask); an
 * existing file keeps its owner and mode. With O_CREAT, a final symlink to a missing file is
 * not followed to create its target (CRU_EEXIST). *out_fd belongs to the caller. */
int sbx_fs_open(const struct sbx_fs *fs, const char *rel, int flags, mode_t mode, int *out_fd);

/* Appends the whole regular file REL to OUT; larger than MAX is CRU_ELIMIT (nothing appended).
 * Anything but a regular file (directory, FIFO, device, socket) is CRU_EINVAL, at once: a FIFO
 * is opened without blocking and refused. */
int sbx_fs_read(const struct sbx_fs *fs, const char *rel, size_t max, struct cru_buf *out);

/* Replaces REL with DATA (atomically: a temporary ".NAME.<random>" beside it, then rename),
 * creating missing parent directories (mode 0755, the sandbox owner) when PARENTS. The file gets
 * the sandbox owner and exactly MODE. A symlink at REL is replaced by the file, its target
 * untouched; a directory at REL is CRU_EINVAL. On failure REL is untouched and no temporary file
 * remains. */
int sbx_fs_write(const struct sbx_fs *fs, const char *rel, const void *data, size_t len,
                 mode_t mode, bool parents);

/* lstat(2) of REL beneath the root (a final symlink is reported, not followed, by both
 * resolvers; the walk still refuses symlinks before the last component). */
int sbx_fs_stat(const struct sbx_fs *fs, const char *rel, struct stat *out);

/* The entries of directory REL, sorted by name (strcmp), without "." and "..", each with its
 * lstat type and size. At most MAX entries: more is CRU_ELIMIT. An entry removed while the
 * list is read is left out. *out and *n belong to the caller (sbx_fs_entries_free()). */
int sbx_fs_list(const struct sbx_fs *fs, const char *rel, size_t max, struct sbx_fs_entry **out,
                size_t *n);
void sbx_fs_entries_free(struct sbx_fs_entry *e, size_t n);

#endif
