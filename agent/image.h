/* image: task images (docs/images.md): loading and validating image.json, finding images, and
 * making what an episode starts from (its workspace, its root filesystem).
 *
 *     struct agt_image *img;
 *     struct cru_buf problems = CRU_BUF_INIT;
 *     if (agt_image_load("images/py-median-even", &img, &problems) < 0)
 *         ... print problems (one "FILE:LINE:COL: FIELD: what" a line) and cru_err_msg() ...
 *     agt_workspace_make(img, "/run/ep/ws");
 */
#ifndef CRU_AGENT_IMAGE_H
#define CRU_AGENT_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "reward/spec.h"

enum agt_image_kind { AGT_IMAGE_CODING, AGT_IMAGE_OFFICE };
enum agt_ws_kind { AGT_WS_DIR, AGT_WS_TAR, AGT_WS_GIT };
enum agt_solution_kind { AGT_SOLUTION_PATCH, AGT_SOLUTION_SCRIPT };

/* Bounds on what an image may hold. */
#define AGT_IMAGE_JSON_MAX   ((size_t)1 << 20) /* image.json */
#define AGT_IMAGE_ID_MAX     64
#define AGT_IMAGE_TITLE_MAX  200
#define AGT_IMAGE_PROMPT_MAX ((size_t)64 << 10)
#define AGT_IMAGE_SETUP_MAX  64 /* setup commands */

struct agt_image {
    char *dir; /* the image folder, as given */
    char *id, *title, *prompt;
    enum agt_image_kind kind;
    char *rootfs_tar; /* the rootfs tarball's path (DIR/REL); NULL for the host profile */
    char *rootfs_rel; /* the same relative to DIR: what each use opens, beneath DIR */
    enum agt_ws_kind ws_kind;
    char *ws_path;   /* the workspace folder, tarball, repository or bundle (DIR/REL) */
    char *ws_rel;    /* the same relative to DIR: what each use opens, beneath DIR */
    char *ws_commit; /* AGT_WS_GIT: the base commit, 40 hex digits */
    char **setup;
    size_t n_setup;
    uint64_t wall_ms, turns, memory_bytes;
    uint64_t disk_bytes, disk_inodes; /* the sandbox's disk; inodes 0: the sandbox's default */
    struct rwd_spec *reward;
    char *hidden_dir; /* DIR/hidden, or NULL when the image has none */
    enum agt_solution_kind solution_kind;
    char *solution; /* DIR/solution/solution.patch or DIR/solution/solve.sh */
};

/* Loads and validates the image in folder DIR. Every problem found goes to PROBLEMS, a line
 * each ("DIR/image.json:LINE:COL: FIELD: what", or "DIR/...: what" for the folder's files);
 * the return is then CRU_EINVAL, with a summary as the message. image.json that is not JSON
 * at all is CRU_EPARSE with its position in the message. */
int agt_image_load(const char *dir, struct agt_image **out, struct cru_buf *problems);

/* The same for image.json's TEXT (LEN bytes), as if read from DIR/image.json. */
int agt_image_parse(const char *dir, const char *text, size_t len, struct agt_image **out,
                    struct cru_buf *problems);

void agt_image_free(struct agt_image *img);

const char *agt_image_kind_name(enum agt_image_kind kind);
const char *agt_ws_kind_name(enum agt_ws_kind kind);

/* A folder of crucible's data named NAME: GIVEN if not NULL, else $ENV_NAME, else NAME next to
 * the running executable, else NAME in the current folder. WHAT names it in errors. */
int agt_data_dir(const char *given, const char *env_name, const char *name, const char *what,
                 char **out);

/* The images folder: IMAGES if not NULL, else $CRUCIBLE_IMAGES, else images/ next to the
 * running executable, else images/ in the current folder. *out belongs to the caller. */
int agt_images_dir(const char *images, char **out);

/* The ids of the images in folder IMAGES (subfolders holding image.json), sorted. */
int agt_images_list(const char *images, char ***ids, size_t *n);
void agt_images_list_free(char **ids, size_t n);

/* The folder of image ARG: a path when ARG contains '/', else IMAGES/ARG. CRU_ENOENT names
 * the image when there is none. *out belongs to the caller. */
int agt_image_find(const char *images, const char *arg, char **out);

/* Opens REL beneath IMG's folder (cru_path_open_beneath: a symlink is followed only while it
 * stays inside the folder; one that leads out is CRU_EUNSAFE). Every use of a path the image
 * names goes through here, and then through the descriptor, so what the loader checked is
 * what is used even if the folder changed since. FIELD (e.g. "workspace.path") names the path
 * in errors. A FIFO or device never blocks the open: anything but a folder or regular file is
 * CRU_EUNSAFE. *out belongs to the caller. */
int agt_image_open(const struct agt_image *img, const char *field, const char *rel, int flags,
                   int *out);

/* Copies IMG's folder NAME ("hidden", "solution"), which must be a real folder (not a link),
 * to DEST, which must not exist, taking at most MAX_BYTES. Links below it are copied as links,
 * never followed (cru_copy_tree). */
int agt_image_copy_folder(const struct agt_image *img, const char *name, const char *dest,
                          uint64_t max_bytes);

/* Makes DEST (which must not exist) the episode's starting workspace: a copy of the folder,
 * the unpacked tarball, or a checkout of the base commit, each opened beneath the image folder
 * (agt_image_open). On failure nothing is left. */
int agt_workspace_make(const struct agt_image *img, const char *dest);

/* The root filesystem folder for IMG's rootfs: NULL for the host profile, or the cached
 * unpacked tarball under CACHE/rootfs/SHA256 (CACHE NULL: $CRUCIBLE_CACHE, else
 * /var/cache/crucible), unpacking it on first use under a lock, so that concurrent first uses
 * unpack it once. The sandbox's unprivileged user binds the tree's folders by path, so the
 * tree and CACHE/rootfs are made 0755, and a folder above them that others may not enter is
 * CRU_EPERM, naming it. *out belongs to the caller. */
int agt_rootfs_prepare(const struct agt_image *img, const char *cache, char **out);

#endif
