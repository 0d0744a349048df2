/* image: loading task images, and making an episode's workspace and root filesystem.
 *
 * The loader checks everything an episode will rely on, reports every problem (with its
 * position in image.json and its field path) rather than the first, and refuses unknown
 * fields outside "x-" names. The reward spec is validated by reward/spec. Workspaces are made
 * by copying a folder (lib/fs), unpacking a tarball (lib/archive) or checking out a commit
 * (agent/gitws); a rootfs tarball is unpacked once into a content-addressed cache.
 *
 * An image is hostile input, and crucible reads it as root: a path it names (the workspace, a
 * rootfs tarball) that is a symlink to a host file would put that file in the agent's sandbox
 * and its trajectory. So every such path is resolved beneath the image folder (openat2
 * RESOLVE_BENEATH), at load to report it and again at each use, where the descriptor it gives
 * is what is copied, hashed or unpacked; hidden/ and solution/ must be real folders.
 */
#include "agent/image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/gitws.h"
#include "lib/archive.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/hash.h"
#include "lib/json.h"
#include "lib/path.h"
#include "lib/str.h"

/* The largest workspace folder copied for an episode. */
#define WORKSPACE_MAX_BYTES ((uint64_t)1 << 30)

const char *agt_image_kind_name(enum agt_image_kind kind)
{
    return kind == AGT_IMAGE_CODING ? "coding" : "office";
}

const char *agt_ws_kind_name(enum agt_ws_kind kind)
{
    switch (kind) {
    case AGT_WS_DIR:
        return "dir";
    case AGT_WS_TAR:
        return "tar";
    case AGT_WS_GIT:
        return "git";
    }
    return "unknown";
}

void agt_image_free(struct agt_image *img)
{
    if (!img)
        return;
    free(img->dir);
    free(img->id);
    free(img->title);
    free(img->prompt);
    free(img->rootfs_tar);
    free(img->rootfs_rel);
    free(img->ws_path);
    free(img->ws_rel);
    free(img->ws_commit);
    for (size_t i = 0; i < img->n_setup; i++)
        free(img->setup[i]);
    free(img->setup);
    rwd_spec_free(img->reward);
    free(img->hidden_dir);
    free(img->solution);
    free(img);
}

/* The loading context: the document, the report, and the image being filled. */
struct load {
    const char *dir;
    int dirfd; /* the image folder, O_PATH; -1 when it cannot be opened (reported once) */
    struct cru_json_report *rep;
    struct agt_image *img;
    bool oom;
};

#define bad(l, path, ...) cru_json_report_add((l)->rep, (path), __VA_ARGS__)

#define ok(l, rc, path) cru_json_report_ok((l)->rep, (rc), (path))

static char *dup_or_oom(struct load *l, const char *s)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        l->oom = true;
    return d;
}

/* A problem with the image folder itself, not a field: "DIR/WHAT: why". */
static void bad_file(struct load *l, const char *what, const char *why)
{
    l->rep->count++;
    (void)cru_buf_printf(l->rep->out, "%s/%s: %s\n", l->dir, what, why);
}

/* A string field: required or not, non-empty, at most MAX bytes, one line when ONE_LINE. */
static const char *text_field(struct load *l, const json_t *root, const char *key, bool required,
                              size_t max, bool one_line)
{
    const char *s = NULL;
    if (!ok(l, cru_json_get_str(root, "", key, required, &s), key) || !s)
        return NULL;
    if (!s[0])
        bad(l, key, "must not be empty");
    else if (strlen(s) > max)
        bad(l, key, "longer than %zu bytes", max);
    else if (one_line && strchr(s, '\n'))
        bad(l, key, "must be one line");
    else
        return s;
    return NULL;
}

static bool valid_id(const char *id)
{
    if (!((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= '0' && id[0] <= '9')))
        return false;
    return strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789._-") == strlen(id);
}

/* The last component of DIR, ignoring trailing slashes, into BUF. */
static const char *dir_name(const char *dir, char *buf, size_t cap)
{
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    snprintf(buf, cap, "%.*s", (int)(len - start), dir + start);
    return buf;
}

/* Opens REL beneath DIRFD as agt_image_open() does: folders and regular files only, and no
 * waiting on a FIFO that stands where a file was expected. */
static int open_beneath(int dirfd, const char *rel, int flags, int *out)
{
    struct stat st;
    int fd, rc;
    *out = -1;
    /* openat2 refuses O_NONBLOCK beside O_PATH, which opens nothing that could block. */
    if ((rc = cru_path_open_beneath(&fd, dirfd, rel, flags & O_PATH ? flags : flags | O_NONBLOCK)) <
        0)
        return rc;
    if (fstat(fd, &st) < 0) {
        rc = cru_err_sys("cannot inspect '%s'", rel);
    } else if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        rc = cru_err_set(CRU_EUNSAFE, "'%s' is not a folder or regular file", rel);
    } else if (!(flags & O_PATH) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
        rc = cru_err_sys("cannot set up '%s'", rel);
    } else {
        *out = fd;
        return 0;
    }
    close(fd);
    return rc;
}

/* The path of REL inside the image folder, resolved beneath it (a symlink may lead elsewhere
 * inside the folder, never out of it) and checked to be of type S_IFMT bits WANT (0: a folder
 * or regular file). Returns DIR/REL (the caller frees) and the clean REL in *CLEAN, or NULL
 * after reporting at FIELD. */
static char *image_path(struct load *l, const char *field, const char *rel, mode_t want,
                        char **clean)
{
    char *full = NULL;
    struct stat st;
    int fd = -1, rc;
    *clean = NULL;
    if (!rel[0]) {
        bad(l, field, "a path inside the image folder is needed");
        return NULL;
    }
    if (cru_path_join(&full, l->dir, rel) < 0) {
        cru_json_report_add(l->rep, field, "\"%s\": %s", rel, cru_err_msg());
        return NULL;
    }
    if (l->dirfd < 0) {
        /* The folder itself could not be opened: said once, by the caller. */
    } else if ((rc = open_beneath(l->dirfd, rel, O_PATH, &fd)) < 0) {
        /* A refusal says why; a plain failure (a missing file) is said as the system says it. */
        bad(l, field, "%s: %s", full,
            rc == CRU_EUNSAFE || rc == CRU_ELIMIT ? cru_err_msg() : strerror(errno));
    } else if (fstat(fd, &st) < 0) {
        bad(l, field, "%s: %s", full, strerror(errno));
    } else if (want && (st.st_mode & S_IFMT) != want) {
        bad(l, field, "%s is not a %s", full, want == S_IFDIR ? "folder" : "regular file");
    } else if (cru_path_clean(clean, rel) < 0) {
        l->oom = true;
    } else {
        close(fd);
        return full;
    }
    if (fd >= 0)
        close(fd);
    free(full);
    return NULL;
}

static void load_rootfs(struct load *l, const json_t *root)
{
    const char *rootfs = "host";
    if (!ok(l, cru_json_get_str(root, "", "rootfs", false, &rootfs), "rootfs"))
        return;
    if (strcmp(rootfs, "host") == 0)
        return;
    if (strncmp(rootfs, "tar:", 4) != 0) {
        bad(l, "rootfs", "expected \"host\" or \"tar:PATH\", got \"%s\"", rootfs);
        return;
    }
    l->img->rootfs_tar = image_path(l, "rootfs", rootfs + 4, S_IFREG, &l->img->rootfs_rel);
}

static void load_workspace(struct load *l, const json_t *root)
{
    static const char *const keys[] = { "kind", "path", "commit", NULL };
    json_t *ws = NULL;
    const char *kind = "dir", *path = "workspace", *commit = NULL;
    struct agt_image *img = l->img;

    if (!ok(l, cru_json_get_object(root, "", "workspace", false, &ws), "workspace"))
        return;
    if (!ws) {
        img->ws_kind = AGT_WS_DIR;
        img->ws_path = image_path(l, "workspace", path, S_IFDIR, &img->ws_rel);
        return;
    }
    cru_json_report_unknown(l->rep, ws, "workspace", keys);
    if (!ok(l, cru_json_get_str(ws, "workspace", "kind", true, &kind), "workspace.kind") ||
        !ok(l, cru_json_get_str(ws, "workspace", "path", kind && strcmp(kind, "dir") != 0, &path),
            "workspace.path") ||
        !ok(l, cru_json_get_str(ws, "workspace", "commit", false, &commit), "workspace.commit"))
        return;
    mode_t want;
    if (strcmp(kind, "dir") == 0) {
        img->ws_kind = AGT_WS_DIR;
        want = S_IFDIR;
    } else if (strcmp(kind, "tar") == 0) {
        img->ws_kind = AGT_WS_TAR;
        want = S_IFREG;
    } else if (strcmp(kind, "git") == 0) {
        img->ws_kind = AGT_WS_GIT;
        want = 0; /* a repository folder or a bundle file */
    } else {
        bad(l, "workspace.kind", "expected \"dir\", \"tar\" or \"git\", got \"%s\"", kind);
        return;
    }
    img->ws_path = image_path(l, "workspace.path", path, want, &img->ws_rel);
    if (img->ws_kind == AGT_WS_GIT) {
        if (!commit)
            bad(l, "workspace.commit", "a git workspace needs the base commit");
        else if (strlen(commit) != 40 || strspn(commit, "0123456789abcdef") != 40)
            bad(l, "workspace.commit",
                "expected a full commit id (40 lower-case hex digits), got \"%s\"", commit);
        else
            img->ws_commit = dup_or_oom(l, commit);
    } else if (commit) {
        bad(l, "workspace.commit", "only a git workspace has a commit");
    }
}

static void load_setup(struct load *l, const json_t *root)
{
    json_t *arr = NULL;
    char item[64];
    if (!ok(l, cru_json_get_array(root, "", "setup", false, &arr), "setup") || !arr)
        return;
    size_t n = json_array_size(arr);
    if (n > AGT_IMAGE_SETUP_MAX) {
        bad(l, "setup", "more than %d commands", AGT_IMAGE_SETUP_MAX);
        return;
    }
    if (n && !(l->img->setup = calloc(n, sizeof(char *)))) {
        l->oom = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(arr, i);
        cru_json_path_index(item, sizeof(item), "setup", i);
        if (!json_is_string(c))
            bad(l, item, "expected a shell command (a string), got %s", cru_json_type_name(c));
        else if (!json_string_value(c)[0])
            bad(l, item, "must not be empty");
        else
            l->img->setup[l->img->n_setup++] = dup_or_oom(l, json_string_value(c));
    }
}

static void load_limits(struct load *l, const json_t *root)
{
    static const char *const keys[] = { "wall", "turns", "memory", "disk", "inodes", NULL };
    json_t *lim = NULL;
    const char *wall = NULL, *memory = NULL, *disk = NULL;
    struct agt_image *img = l->img;

    img->wall_ms = 30 * 60 * 1000;
    img->turns = 50;
    img->memory_bytes = (uint64_t)2 << 30;
    img->disk_bytes = (uint64_t)1 << 30;
    if (!ok(l, cru_json_get_object(root, "", "limits", false, &lim), "limits") || !lim)
        return;
    cru_json_report_unknown(l->rep, lim, "limits", keys);
    if (ok(l, cru_json_get_str(lim, "limits", "wall", false, &wall), "limits.wall") && wall) {
        if (cru_parse_duration_ms(wall, &img->wall_ms) < 0)
            cru_json_report_err(l->rep, "limits.wall");
        else if (img->wall_ms < 1000 || img->wall_ms > (uint64_t)24 * 3600 * 1000)
            bad(l, "limits.wall", "\"%s\" is out of range (1s to 24h)", wall);
    }
    ok(l, cru_json_get_u64(lim, "limits", "turns", false, 1, 10000, &img->turns), "limits.turns");
    if (ok(l, cru_json_get_str(lim, "limits", "memory", false, &memory), "limits.memory") &&
        memory) {
        if (cru_parse_size(memory, &img->memory_bytes) < 0)
            cru_json_report_err(l->rep, "limits.memory");
        else if (img->memory_bytes < ((uint64_t)16 << 20) ||
                 img->memory_bytes > ((uint64_t)1 << 40))
            bad(l, "limits.memory", "\"%s\" is out of range (16M to 1T)", memory);
    }
    if (ok(l, cru_json_get_str(lim, "limits", "disk", false, &disk), "limits.disk") && disk) {
        if (cru_parse_size(disk, &img->disk_bytes) < 0)
            cru_json_report_err(l->rep, "limits.disk");
        else if (img->disk_bytes < ((uint64_t)1 << 20) || img->disk_bytes > ((uint64_t)1 << 40))
            bad(l, "limits.disk", "\"%s\" is out of range (1M to 1T)", disk);
    }
    ok(l,
       cru_json_get_u64(lim, "limits", "inodes", false, 64, (uint64_t)1 << 32, &img->disk_inodes),
       "limits.inodes");
}

/* Whether NAME in DIRFD is a folder of its own (S_ISDIR without following a link); a link or a
 * file there is reported. */
static bool own_folder(struct load *l, int dirfd, const char *name, const char *shown)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return false;
    if (S_ISDIR(st.st_mode))
        return true;
    bad_file(l, shown,
             S_ISLNK(st.st_mode) ? "is a symbolic link; it must be a folder inside the image"
                                 : "is not a folder");
    return false;
}

/* Whether NAME in DIRFD is a regular file (not a link to one). */
static bool own_file(int dirfd, const char *name)
{
    struct stat st;
    return dirfd >= 0 && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* hidden/ and solution/: files, not fields. Each is looked at without following a link, so a
 * "solution" link cannot lend the image a folder of the host's. */
static void load_folders(struct load *l)
{
    struct agt_image *img = l->img;
    if (l->dirfd < 0)
        return;
    if (own_folder(l, l->dirfd, "hidden", "hidden") &&
        cru_path_join(&img->hidden_dir, l->dir, "hidden") < 0)
        l->oom = true;

    int sol = -1;
    if (own_folder(l, l->dirfd, "solution", "solution"))
        sol = openat(l->dirfd, "solution", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    bool has_patch = own_file(sol, "solution.patch");
    bool has_script = own_file(sol, "solve.sh");
    if (sol >= 0)
        close(sol);
    const char *rel = NULL;
    if (has_patch && has_script) {
        bad_file(l, "solution", "holds both solution.patch and solve.sh; keep one");
    } else if (has_patch) {
        img->solution_kind = AGT_SOLUTION_PATCH;
        rel = "solution/solution.patch";
    } else if (has_script) {
        img->solution_kind = AGT_SOLUTION_SCRIPT;
        rel = "solution/solve.sh";
    } else {
        bad_file(l, "solution", "needs solution.patch or solve.sh (the reference solution)");
    }
    if (rel && cru_path_join(&img->solution, l->dir, rel) < 0)
        l->oom = true;
}

int agt_image_parse(const char *dir, const char *text, size_t len, struct agt_image **out,
                    struct cru_buf *problems)
{
    static const char *const keys[] = { "id",        "kind",  "title",  "prompt", "rootfs",
                                        "workspace", "setup", "limits", "reward", NULL };
    struct cru_json_doc doc;
    char name[PATH_MAX + 16], base[256];
    int rc;

    *out = NULL;
    snprintf(name, sizeof(name), "%s/image.json", dir);
    if ((rc = cru_json_doc_parse(&doc, text, len, name)) < 0)
        return rc;
    struct cru_json_report rep = { &doc, problems, 0 };
    struct agt_image *img = calloc(1, sizeof(*img));
    struct load l = { dir, -1, &rep, img, false };
    if (!img || !(img->dir = strdup(dir))) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    /* Every path the image names is resolved beneath this descriptor. */
    if ((l.dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rep.count++;
        (void)cru_buf_printf(problems, "%s: cannot open the image folder: %s\n", dir,
                             strerror(errno));
    }
    const json_t *root = doc.root;
    if (!json_is_object(root)) {
        bad(&l, "", "expected an object, got %s", cru_json_type_name(root));
        goto check;
    }
    cru_json_report_unknown(&rep, root, "", keys);

    const char *id = text_field(&l, root, "id", true, AGT_IMAGE_ID_MAX, true);
    if (id && !valid_id(id))
        bad(&l, "id", "\"%s\" is not an id (lower-case letters, digits, '.', '_', '-')", id);
    else if (id && strcmp(id, dir_name(dir, base, sizeof(base))) != 0)
        bad(&l, "id", "\"%s\" differs from the folder's name \"%s\"", id, base);
    img->id = dup_or_oom(&l, id);

    const char *kind = NULL;
    if (ok(&l, cru_json_get_str(root, "", "kind", true, &kind), "kind") && kind) {
        if (strcmp(kind, "coding") == 0)
            img->kind = AGT_IMAGE_CODING;
        else if (strcmp(kind, "office") == 0)
            img->kind = AGT_IMAGE_OFFICE;
        else
            bad(&l, "kind", "expected \"coding\" or \"office\", got \"%s\"", kind);
    }
    img->title = dup_or_oom(&l, text_field(&l, root, "title", true, AGT_IMAGE_TITLE_MAX, true));
    img->prompt = dup_or_oom(&l, text_field(&l, root, "prompt", true, AGT_IMAGE_PROMPT_MAX, false));
    load_rootfs(&l, root);
    load_workspace(&l, root);
    load_setup(&l, root);
    load_limits(&l, root);
    json_t *reward = NULL;
    if (ok(&l, cru_json_get_object(root, "", "reward", true, &reward), "reward") && reward &&
        rwd_spec_parse(reward, "reward", &rep, &img->reward) == CRU_ENOMEM)
        l.oom = true;
    load_folders(&l);

check:
    if (l.oom) {
        rc = cru_err_set(CRU_ENOMEM, "%s: out of memory", name);
    } else if (rep.count > 0) {
        rc = cru_err_set(CRU_EINVAL, "image %s: %zu problem%s", dir, rep.count,
                         rep.count == 1 ? "" : "s");
    } else {
        *out = img;
        img = NULL;
    }
done:
    if (l.dirfd >= 0)
        close(l.dirfd);
    agt_image_free(img);
    cru_json_doc_free(&doc);
    return rc;
}

int agt_image_load(const char *dir, struct agt_image **out, struct cru_buf *problems)
{
    char path[PATH_MAX];
    struct cru_buf b = CRU_BUF_INIT;
    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/image.json", dir) >= (int)sizeof(path))
        return cru_err_set(CRU_ELIMIT, "image folder path too long: %s", dir);
    int rc = cru_file_read(path, AGT_IMAGE_JSON_MAX, &b);
    if (rc == CRU_ENOENT)
        rc = cru_err_set(CRU_ENOENT, "%s is not an image: it has no image.json", dir);
    if (rc == 0)
        rc = agt_image_parse(dir, b.data ? b.data : "", b.len, out, problems);
    cru_buf_free(&b);
    return rc;
}

int agt_data_dir(const char *given, const char *env_name, const char *name, const char *what,
                 char **out)
{
    const char *env = getenv(env_name);
    struct stat st;
    if (given || (env && *env)) {
        const char *d = given ? given : env;
        if (stat(d, &st) < 0 || !S_ISDIR(st.st_mode))
            return cru_err_set(CRU_ENOENT, "the %s folder %s%s%s%s does not exist", what, d,
                               given ? "" : " ($", given ? "" : env_name, given ? "" : ")");
        return (*out = strdup(d)) ? 0 : cru_err_set(CRU_ENOMEM, "out of memory");
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 64);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            snprintf(slash + 1, sizeof(exe) - (size_t)(slash + 1 - exe), "%s", name);
            if (stat(exe, &st) == 0 && S_ISDIR(st.st_mode))
                return (*out = strdup(exe)) ? 0 : cru_err_set(CRU_ENOMEM, "out of memory");
        }
    }
    if (stat(name, &st) == 0 && S_ISDIR(st.st_mode))
        return (*out = strdup(name)) ? 0 : cru_err_set(CRU_ENOMEM, "out of memory");
    return cru_err_set(CRU_ENOENT, "no %s folder: give its path or set %s", what, env_name);
}

int agt_images_dir(const char *images, char **out)
{
    return agt_data_dir(images, "CRUCIBLE_IMAGES", "images", "images", out);
}

void agt_images_list_free(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}

int agt_images_list(const char *images, char ***ids, size_t *n)
{
    DIR *d = opendir(images);
    char **list = NULL;
    size_t len = 0, cap = 0;
    struct dirent *e;
    *ids = NULL;
    *n = 0;
    if (!d)
        return cru_err_sys("cannot list the images folder %s", images);
    while ((e = readdir(d))) {
        char p[PATH_MAX];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s/image.json", images, e->d_name);
        if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (len == cap) {
            cap = cap ? cap * 2 : 32;
            char **grown = realloc(list, cap * sizeof(*list));
            if (!grown)
                goto oom;
            list = grown;
        }
        if (!(list[len] = strdup(e->d_name)))
            goto oom;
        len++;
    }
    closedir(d);
    if (len > 1)
        qsort(list, len, sizeof(*list), cru_str_cmp_ptr);
    *ids = list;
    *n = len;
    return 0;
oom:
    closedir(d);
    agt_images_list_free(list, len);
    return cru_err_set(CRU_ENOMEM, "out of memory listing %s", images);
}

int agt_image_find(const char *images, const char *arg, char **out)
{
    struct stat st;
    char *p = NULL;
    if (strchr(arg, '/')) {
        if (!(p = strdup(arg)))
            return cru_err_set(CRU_ENOMEM, "out of memory");
    } else {
        if (!valid_id(arg))
            return cru_err_set(CRU_EINVAL, "\"%s\" is not an image id", arg);
        if (cru_path_join(&p, images, arg) < 0)
            return cru_err_code();
    }
    if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
        int rc = cru_err_set(CRU_ENOENT, "no image %s (%s is not a folder)", arg, p);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int agt_image_open(const struct agt_image *img, const char *field, const char *rel, int flags,
                   int *out)
{
    *out = -1;
    int dirfd = open(img->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return cru_err_sys("%s: cannot open the image folder %s", field, img->dir);
    int rc = open_beneath(dirfd, rel, flags, out);
    close(dirfd);
    if (rc < 0)
        return cru_err_wrap(rc, "%s", field);
    return 0;
}

int agt_image_copy_folder(const struct agt_image *img, const char *name, const char *dest,
                          uint64_t max_bytes)
{
    char *shown = NULL;
    int fd, rc;
    if ((rc = agt_image_open(img, name, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, &fd)) < 0)
        return rc;
    if ((rc = cru_path_join(&shown, img->dir, name)) == 0)
        rc = cru_copy_tree_fd(fd, shown, dest, max_bytes, 0);
    free(shown);
    close(fd);
    return rc;
}

int agt_workspace_make(const struct agt_image *img, const char *dest)
{
    int rc, fd = -1;
    struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
    /* Opened again beneath the image folder, not by the path the loader checked: a link put
     * there since is refused, and the descriptor is what gets copied. */
    switch (img->ws_kind) {
    case AGT_WS_DIR:
        if ((rc = agt_image_open(img, "workspace.path", img->ws_rel, O_RDONLY | O_DIRECTORY,
                                 &fd)) == 0)
            rc = cru_copy_tree_fd(fd, img->ws_path, dest, WORKSPACE_MAX_BYTES, 0);
        break;
    case AGT_WS_TAR:
        lim.max_bytes = WORKSPACE_MAX_BYTES;
        if ((rc = agt_image_open(img, "workspace.path", img->ws_rel, O_RDONLY, &fd)) == 0)
            rc = cru_archive_extract_fd(fd, img->ws_path, dest, &lim, NULL);
        break;
    case AGT_WS_GIT:
        if ((rc = agt_image_open(img, "workspace.path", img->ws_rel, O_RDONLY, &fd)) == 0)
            rc = agt_git_checkout_fd(fd, img->ws_path, img->ws_commit, dest);
        break;
    default:
        rc = cru_err_set(CRU_EINTERNAL, "unknown workspace kind %d", (int)img->ws_kind);
    }
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        return cru_err_wrap(rc, "image %s: making the workspace", img->id);
    return 0;
}

/* Gives others the right to enter (and list) the folder P of crucible's own. */
static int open_up(const char *p)
{
    struct stat st;
    int rc = 0, fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return cru_err_sys("cannot open %s", p);
    if (fstat(fd, &st) < 0 ||
        ((st.st_mode & 0755) != 0755 && fchmod(fd, (st.st_mode & 07777) | 0755) < 0))
        rc = cru_err_sys("cannot let the sandbox enter %s", p);
    close(fd);
    return rc;
}

/* The sandbox's init binds the tree's folders by path as an unprivileged user, who must be
 * able to enter every folder on the way: FINAL, CACHE/rootfs and CACHE when this call made it
 * (NEW_CACHE) are crucible's and are opened up here (mkdtemp made the tree 0700, and a umask
 * may have narrowed the rest); a folder above them is the user's, and is only checked. */
static int cache_reachable(const char *cache, bool new_cache, const char *rootfs_dir,
                           const char *final)
{
    char real[PATH_MAX];
    struct stat st;
    int rc;
    if ((rc = open_up(final)) < 0 || (rc = open_up(rootfs_dir)) < 0 ||
        (new_cache && (rc = open_up(cache)) < 0))
        return rc;
    if (!realpath(rootfs_dir, real))
        return cru_err_sys("cannot resolve %s", rootfs_dir);
    for (char *slash = strrchr(real, '/'); slash; slash = strrchr(real, '/')) {
        *slash = '\0';
        const char *dir = real[0] ? real : "/";
        if (stat(dir, &st) < 0)
            return cru_err_sys("cannot inspect %s", dir);
        if (!(st.st_mode & S_IXOTH))
            return cru_err_set(CRU_EPERM,
                               "the rootfs cache %s is out of reach of the sandbox's "
                               "unprivileged user: %s has mode %04o, which others may not "
                               "enter (use a cache that all may traverse, $CRUCIBLE_CACHE, or "
                               "chmod o+x %s)",
                               final, dir, (unsigned)(st.st_mode & 07777), dir);
    }
    return 0;
}

int agt_rootfs_prepare(const struct agt_image *img, const char *cache, char **out)
{
    uint8_t sum[CRU_SHA256_LEN];
    char hex[2 * CRU_SHA256_LEN + 1], dir[PATH_MAX], final[PATH_MAX], lock[PATH_MAX];
    struct stat st;
    int rc, fd = -1, tar = -1;

    *out = NULL;
    if (!img->rootfs_tar)
        return 0;
    const char *env = getenv("CRUCIBLE_CACHE");
    if (!cache)
        cache = env && *env ? env : "/var/cache/crucible";
    if (snprintf(dir, sizeof(dir), "%s/rootfs", cache) >= (int)sizeof(dir))
        return cru_err_set(CRU_ELIMIT, "the cache path %s is too long", cache);
    /* One descriptor for the hash and the unpacking: what is named by the hash is what is
     * unpacked, and it was found beneath the image folder. */
    if ((rc = agt_image_open(img, "rootfs", img->rootfs_rel, O_RDONLY, &tar)) < 0 ||
        (rc = cru_sha256_fd(tar, img->rootfs_tar, sum)) < 0) {
        cru_err_wrap(rc, "image %s: hashing the rootfs", img->id);
        goto done;
    }
    cru_hex(hex, sum, sizeof(sum));
    if (snprintf(final, sizeof(final), "%s/%s", dir, hex) >= (int)sizeof(final) ||
        snprintf(lock, sizeof(lock), "%s/%s.lock", dir, hex) >= (int)sizeof(lock)) {
        rc = cru_err_set(CRU_ELIMIT, "the cache path %s is too long", cache);
        goto done;
    }
    bool new_cache = lstat(cache, &st) < 0 && errno == ENOENT;
    if ((rc = cru_mkdir_p(dir, 0755)) < 0) {
        cru_err_wrap(rc, "image %s: the rootfs cache", img->id);
        goto done;
    }
    /* The lock makes concurrent first uses wait for one extraction; the extraction itself is
     * all-or-nothing (a temporary sibling renamed into place), so a crash leaves no half
     * tree under the final name. */
    if ((fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644)) < 0) {
        rc = cru_err_sys("cannot open the cache lock %s", lock);
        goto done;
    }
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR) {
            rc = cru_err_sys("cannot lock %s", lock);
            goto done;
        }
    if (lstat(final, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = 0;
    } else {
        struct cru_archive_limits lim = CRU_ARCHIVE_LIMITS_INIT;
        lim.rootfs = true;
        lim.max_bytes = (uint64_t)16 << 30;
        rc = cru_archive_extract_fd(tar, img->rootfs_tar, final, &lim, NULL);
        if (rc < 0)
            cru_err_wrap(rc, "image %s: unpacking the rootfs %s", img->id, img->rootfs_tar);
    }
    /* Under the lock, so a tree cached by an older crucible (left 0700) is opened up once. */
    if (rc == 0 && (rc = cache_reachable(cache, new_cache, dir, final)) < 0)
        cru_err_wrap(rc, "image %s", img->id);
    if (rc == 0 && !(*out = strdup(final)))
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
done:
    if (fd >= 0)
        close(fd); /* releases the lock */
    if (tar >= 0)
        close(tar);
    return rc;
}
