/* fsaccess: the host's reads and writes inside a sandbox's workspace, confined to it.
 *
 * The workspace is a tree the agent controls: it may plant symlinks (to /etc/shadow, to
 * /proc/self/root, to "../../.."), replace directories with links between two calls, or
 * hard-link host files it can see. Every function here resolves REL beneath ROOTFD with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so absolute symlinks and ".." resolve inside
 * the workspace and never outside it; where openat2 is missing (kernels before 5.6, or a
 * seccomp policy that denies it) an O_NOFOLLOW component walk gives the same guarantee by
 * refusing symlinks. The host never follows a link out of the tree, whatever the agent did.
 */
#ifndef CRU_SANDBOX_FSACCESS_H
#define CRU_SANDBOX_FSACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lib/buf.h"

/* Which resolver a call uses; AUTO tries openat2 and falls back to the walk on ENOSYS. */
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

/* Opens REL beneath the root; FLAGS as for open(2) (O_CLOEXEC is added; O_CREAT creates with
 * MODE and the sandbox owner). */
int sbx_fs_open(const struct sbx_fs *fs, const char *rel, int flags, mode_t mode, int *out_fd);

/* Appends the whole regular file REL to OUT; larger than MAX is CRU_ELIMIT (nothing appended). */
int sbx_fs_read(const struct sbx_fs *fs, const char *rel, size_t max, struct cru_buf *out);

/* Replaces REL with DATA (atomically: temp file beside it, then rename), creating missing
 * parent directories when PARENTS. Owned by the sandbox owner, mode MODE. */
int sbx_fs_write(const struct sbx_fs *fs, const char *rel, const void *data, size_t len,
                 mode_t mode, bool parents);

/* lstat(2) of REL beneath the root (a final symlink is reported, not followed). */
int sbx_fs_stat(const struct sbx_fs *fs, const char *rel, struct stat *out);

/* The entries of directory REL, sorted by name, without "." and "..". At most MAX entries:
 * more is CRU_ELIMIT. *out and *n belong to the caller (sbx_fs_entries_free()). */
int sbx_fs_list(const struct sbx_fs *fs, const char *rel, size_t max, struct sbx_fs_entry **out,
                size_t *n);
void sbx_fs_entries_free(struct sbx_fs_entry *e, size_t n);

#endif
