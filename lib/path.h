/* path: lexical, root-confined path joining.
 *
 * cru_path_join() builds ROOT/REL for a REL that comes from outside (a task file, an archive
 * entry, an agent's tool call) and refuses any REL that could name something outside ROOT by
 * its spelling: absolute paths and ".." components. It is lexical: it does not look at the
 * file system, so it cannot see symlinks. Code that opens files inside a tree another party
 * controls must also resolve them with the sandbox's root-confined open (openat2
 * RESOLVE_IN_ROOT), which follows symlinks safely.
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

#endif
