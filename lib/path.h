/* path: root-confined paths: lexical joining, and opening beneath a folder.
 *
 * cru_path_join() builds ROOT/REL for a REL that comes from outside (a task file, an archive
 * entry, an agent's tool call) and refuses any REL that could name something outside ROOT by
 * its spelling: absolute paths and ".." components. It is lexical: it does not look at the
 * file system, so it cannot see symlinks. Code that opens files inside a tree another party
 * controls must resolve them with cru_path_open_beneath() (a folder the host reads, such as a
 * task image) or the sandbox's root-confined open (a workspace, openat2 RESOLVE_IN_ROOT).
 */
#ifndef CRU_LIB_PATH_H
#define CRU_LIB_PATH_H

#include <stddef.h>

/* Bounds for a relative path accepted from outside. */
#define CRU_PATH_MAX      4096
#define CRU_PATH_NAME_MAX 255

/* Normalises REL: collapses repeated slashes, drops "." components and a trailing slash.
 * "" and "." become "". Absolute paths and ".." components are CRU_EUNSAFE; a component longer
 * than CRU_PATH_NAME_MAX or a result longer than CRU_PATH_MAX - 1 is CRU_ELIMIT.
 * *out belongs to the caller (free()). */
int cru_path_clean(char **out, const char *rel);

/* ROOT "/" cru_path_clean(REL), or ROOT itself when REL is empty or ".". ROOT is trusted and
 * used as given (without its trailing slashes). *out belongs to the caller (free()). */
int cru_path_join(char **out, const char *root, const char *rel);

/* Opens REL (cleaned as by cru_path_clean; "" is ROOTFD's folder itself) beneath the folder
 * ROOTFD, never leaving it: openat2 with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, so a symlink
 * on the way is followed only while it stays beneath ROOTFD. A symlink that leads out (an
 * absolute target, or ".." above ROOTFD) is CRU_EUNSAFE, and so are a /proc magic link and a
 * symlink loop; with O_NOFOLLOW in FLAGS a symlink as the last component is CRU_EUNSAFE too.
 * FLAGS are open(2) flags for an existing file (O_CREAT is CRU_EINVAL); O_CLOEXEC is added.
 * Where the kernel lacks openat2 (before 5.6) it falls back to cru_path_walk_beneath(). The
 * descriptor *out belongs to the caller; use it rather than the path, which may change. */
int cru_path_open_beneath(int *out, int rootfd, const char *rel, int flags);

/* The same by a walk of one component at a time with O_NOFOLLOW, which follows no symlink at
 * all: any symlink on the way is CRU_EUNSAFE. What cru_path_open_beneath() does without
 * openat2; callable on its own for kernels without it, and for tests. */
int cru_path_walk_beneath(int *out, int rootfd, const char *rel, int flags);

#endif
