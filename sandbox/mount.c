/* mount: the sandbox's root file system, planned on the host and built inside.
 *
 * The host turns the options into a plan (a list of mkdir, bind, tmpfs, proc, devpts, mask and
 * remount steps with every path and file content spelled out); the init, already in its new
 * user and mount namespaces, runs the plan with plain system calls on a fresh tmpfs and
 * pivot_root()s into it. The host profile binds the host's /usr and the /bin, /lib* and /sbin
 * links or folders read-only, builds /etc from a curated list of host files plus generated
 * passwd, group, hostname and hosts, and exposes nothing else of the host: no /root, /home,
 * /run, /sys, /var or sockets. It does not decide limits or privileges (init.c, cgroup.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/path.h"
#include "lib/str.h"
#include "sandbox/internal.h"

/* The host's /etc entries a sandbox sees (read-only), when they exist: what programs need to
 * run (the loader cache, alternatives links, certificates, time zone, name service switch)
 * and nothing that names the host's users, secrets or services. Each folder here costs a
 * bind and a remount at every sandbox start, so a folder joins the list only when a program
 * the tasks run cannot do without it (Java, for one, wants /etc/java-*). */
static const char *const etc_allow[] = {
    "alternatives",
    "bash.bashrc",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "environment",
    "gai.conf",
    "host.conf",
    "inputrc",
    "issue",
    "ld.so.cache",
    "ld.so.conf",
    "localtime",
    "login.defs",
    "magic",
    "magic.mime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "profile",
    "protocols",
    "services",
    "ssl",
    "timezone",
    "gitconfig",
    NULL,
};

/* Host /etc files up to this size are copied into the sandbox's /etc rather than bound. */
#define ETC_COPY_MAX (256 * 1024)

static const char etc_passwd[] = "root:x:0:0:root:/root:/bin/bash\n"
                                 "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
static const char etc_group[] = "root:x:0:\nnogroup:x:65534:\n";

/* /proc entries hidden as Docker hides them: files that leak host state or can act on it. */
static const char *const proc_mask_files[] = {
    "/proc/kcore",         "/proc/keys",        "/proc/latency_stats",
    "/proc/timer_list",    "/proc/timer_stats", "/proc/sched_debug",
    "/proc/sysrq-trigger", "/proc/kallsyms",    "/proc/kmsg",
    "/proc/kpagecgroup",   "/proc/kpagecount",  "/proc/kpageflags",
    "/proc/config.gz",     "/proc/vmallocinfo", "/proc/buddyinfo",
    "/proc/pagetypeinfo",  "/proc/slabinfo",    NULL,
};
static const char *const proc_mask_dirs[] = { "/proc/acpi",   "/proc/scsi",       "/proc/asound",
                                              "/proc/driver", "/proc/tty/driver", NULL };
static const char *const proc_ro[] = { "/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", NULL };

static int plan_add(struct sbx_plan *p, enum sbx_mnt_op op, const char *src, const char *dst,
                    const char *data, size_t data_len, bool readonly, bool optional)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct sbx_mnt *ops = realloc(p->ops, cap * sizeof(*ops));
        if (!ops)
            return cru_err_set(CRU_ENOMEM, "out of memory planning mounts");
        p->ops = ops;
        p->cap = cap;
    }
    struct sbx_mnt *m = &p->ops[p->n];
    memset(m, 0, sizeof(*m));
    m->op = op;
    m->readonly = readonly;
    m->optional = optional;
    int rc = 0;
    if (src && (rc = cru_str_dup(&m->src, src)) < 0)
        goto fail;
    if (dst && (rc = cru_str_dup(&m->dst, dst)) < 0)
        goto fail;
    if (data && (rc = cru_str_ndup(&m->data, data, data_len)) < 0)
        goto fail;
    m->data_len = data_len;
    p->n++;
    return 0;
fail:
    free(m->src);
    free(m->dst);
    return rc;
}

static int add(struct sbx_plan *p, enum sbx_mnt_op op, const char *src, const char *dst,
               bool readonly)
{
    return plan_add(p, op, src, dst, NULL, 0, readonly, false);
}

static int add_text(struct sbx_plan *p, enum sbx_mnt_op op, const char *dst, const char *text)
{
    return plan_add(p, op, NULL, dst, text, strlen(text), false, false);
}

/* DST shows the disk's folder NAME, made with MODE. */
static int add_disk(struct sbx_plan *p, const char *name, const char *dst, mode_t mode)
{
    int rc = plan_add(p, SBX_MNT_DISK, name, dst, NULL, 0, false, false);
    if (rc == 0)
        p->ops[p->n - 1].mode = mode;
    return rc;
}

/* mkdir DIR and every missing folder above it (a path relative to the new root). */
static int add_dirs(struct sbx_plan *p, const char *dir)
{
    char part[CRU_PATH_MAX];
    size_t len = strlen(dir);
    if (len >= sizeof(part))
        return cru_err_set(CRU_ELIMIT, "path /%s is too long", dir);
    for (size_t i = 1; i <= len; i++) {
        if (dir[i] != '/' && dir[i] != '\0')
            continue;
        memcpy(part, dir, i);
        part[i] = '\0';
        int rc = add(p, SBX_MNT_MKDIR, NULL, part, false);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* /bin, /lib, ... are links into /usr on a merged-/usr system and folders elsewhere: mirror
 * whichever ROOT ("" for the host, or a root filesystem folder) has, read-only. */
static int plan_system_dir(struct sbx_plan *p, const char *root, const char *name)
{
    char host[4096 + 256], target[256];
    snprintf(host, sizeof(host), "%s/%s", root, name);
    struct stat st;
    if (lstat(host, &st) < 0)
        return 0;
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlink(host, target, sizeof(target) - 1);
        if (n < 0)
            return cru_err_sys("cannot read the link %s", host);
        target[n] = '\0';
        return add(p, SBX_MNT_SYMLINK, target, name, false);
    }
    if (!S_ISDIR(st.st_mode))
        return 0;
    int rc = add(p, SBX_MNT_MKDIR, NULL, name, false);
    return rc < 0 ? rc : add(p, SBX_MNT_BIND, host, name, true);
}

/* The entries of ROOTFS/etc, but the files this plan writes itself. An etc that is not a real
 * folder (a link, which the host would follow out of the root) counts as none. */
static int rootfs_etc_names(const char *rootfs, char ***out, size_t *n)
{
    char dir[4096 + 8];
    snprintf(dir, sizeof(dir), "%s/etc", rootfs);
    *out = NULL;
    *n = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ELOOP || errno == ENOTDIR
                   ? 0
                   : cru_err_sys("cannot open %s", dir);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return cru_err_sys("cannot list %s", dir);
    }
    struct dirent *e;
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        static const char *const ours[] = {
            ".", "..", "hostname", "hosts", "passwd", "group", NULL
        };
        bool skip = false;
        for (size_t i = 0; ours[i] && !skip; i++)
            skip = strcmp(e->d_name, ours[i]) == 0;
        if (skip)
            continue;
        if (*n + 2 > cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(*out, cap * sizeof(char *));
            if (!grown) {
                rc = cru_err_set(CRU_ENOMEM, "out of memory");
                break;
            }
            *out = grown;
        }
        if (!((*out)[*n] = strdup(e->d_name)))
            rc = cru_err_set(CRU_ENOMEM, "out of memory");
        else
            (*out)[++*n] = NULL;
    }
    closedir(d);
    if (rc == 0 && *n > 1)
        qsort(*out, *n, sizeof(char *), cru_str_cmp_ptr);
    return rc;
}

static int plan_etc(struct sbx_plan *p, const struct sbx_opts *o)
{
    char buf[512];
    char **names = NULL;
    size_t n_names = 0;
    const char *root = o->rootfs ? o->rootfs : "";
    int rc;

    /* A root filesystem brings its whole /etc; the host lends only a curated part of its own. */
    if (o->rootfs && (rc = rootfs_etc_names(o->rootfs, &names, &n_names)) < 0) {
        for (size_t i = 0; i < n_names; i++)
            free(names[i]);
        free(names);
        return rc;
    }
    /* Static: a compound literal in the if below would end with the if (C11 6.8.4p3). */
    static const char *const none[] = { NULL };
    const char *const *allow = names ? (const char *const *)names : etc_allow;
    if (o->rootfs && !names)
        allow = none;
    rc = add(p, SBX_MNT_MKDIR, NULL, "etc", false);
    for (size_t i = 0; rc == 0 && allow[i]; i++) {
        char host[4096 + 256], dst[256];
        struct stat st;
        snprintf(host, sizeof(host), "%s/etc/%s", root, allow[i]);
        snprintf(dst, sizeof(dst), "etc/%s", allow[i]);
        if (lstat(host, &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            ssize_t n = readlink(host, buf, sizeof(buf) - 1);
            if (n < 0)
                continue;
            buf[n] = '\0';
            rc = add(p, SBX_MNT_SYMLINK, buf, dst, false);
        } else if (S_ISDIR(st.st_mode)) {
            if ((rc = add(p, SBX_MNT_MKDIR, NULL, dst, false)) == 0)
                rc = add(p, SBX_MNT_BIND, host, dst, true);
        } else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size <= ETC_COPY_MAX) {
            /* Small files are copied, not bound: a copy into the new tmpfs costs a fraction of
             * a bind and its read-only remount, and the root is made read-only at the end. */
            rc = plan_add(p, SBX_MNT_COPY, host, dst, NULL, 0, false, true);
        } else if (S_ISREG(st.st_mode)) {
            if ((rc = add_text(p, SBX_MNT_FILE, dst, "")) == 0)
                rc = add(p, SBX_MNT_BIND, host, dst, true);
        }
    }
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    if (rc < 0)
        return rc;
    const char *hostname = o->hostname ? o->hostname : "sandbox";
    snprintf(buf, sizeof(buf), "%s\n", hostname);
    if ((rc = add_text(p, SBX_MNT_FILE, "etc/hostname", buf)) < 0)
        return rc;
    snprintf(buf, sizeof(buf), "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost\n", hostname);
    if ((rc = add_text(p, SBX_MNT_FILE, "etc/hosts", buf)) < 0)
        return rc;
    if ((rc = add_text(p, SBX_MNT_FILE, "etc/passwd", etc_passwd)) < 0)
        return rc;
    return add_text(p, SBX_MNT_FILE, "etc/group", etc_group);
}

static int plan_dev(struct sbx_plan *p)
{
    static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty", NULL };
    int rc = add(p, SBX_MNT_MKDIR, NULL, "dev", false);
    if (rc == 0)
        rc = add_text(p, SBX_MNT_TMPFS, "dev", "mode=0755,size=64k,nr_inodes=64");
    for (size_t i = 0; rc == 0 && nodes[i]; i++) {
        char host[32], dst[32];
        snprintf(host, sizeof(host), "/dev/%s", nodes[i]);
        snprintf(dst, sizeof(dst), "dev/%s", nodes[i]);
        if ((rc = add_text(p, SBX_MNT_FILE, dst, "")) == 0 &&
            (rc = add(p, SBX_MNT_BIND, host, dst, false)) == 0)
            p->ops[p->n - 1].device = true;
    }
    if (rc == 0)
        rc = add(p, SBX_MNT_MKDIR, NULL, "dev/pts", false);
    if (rc == 0)
        rc = add(p, SBX_MNT_DEVPTS, NULL, "dev/pts", false);
    if (rc == 0)
        rc = add(p, SBX_MNT_SYMLINK, "pts/ptmx", "dev/ptmx", false);
    if (rc == 0)
        rc = add(p, SBX_MNT_MKDIR, NULL, "dev/shm", false);
    if (rc == 0)
        rc = add_disk(p, "shm", "dev/shm", 01777);
    if (rc == 0)
        rc = add(p, SBX_MNT_SYMLINK, "/proc/self/fd", "dev/fd", false);
    if (rc == 0)
        rc = add(p, SBX_MNT_SYMLINK, "/proc/self/fd/0", "dev/stdin", false);
    if (rc == 0)
        rc = add(p, SBX_MNT_SYMLINK, "/proc/self/fd/1", "dev/stdout", false);
    if (rc == 0)
        rc = add(p, SBX_MNT_SYMLINK, "/proc/self/fd/2", "dev/stderr", false);
    return rc;
}

/* Whether the sandbox could read the /proc entry PATH unmasked. Its processes are never the
 * host's root and hold no capability outside their namespaces, so an entry of the host's root
 * that others may not read (most of Docker's list on a current kernel: 0400) is as closed as
 * a mask would make it, and an entry this kernel lacks needs none: neither costs a mount. */
static bool proc_readable(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return errno != ENOENT;
    return st.st_uid != 0 || (st.st_mode & S_IROTH);
}

/* Masks act on the mounted /proc after the pivot, so they come last in the plan. */
static int plan_proc_masks(struct sbx_plan *p)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && proc_mask_files[i]; i++)
        if (proc_readable(proc_mask_files[i]))
            rc = plan_add(p, SBX_MNT_MASK, NULL, proc_mask_files[i], NULL, 0, false, true);
    for (size_t i = 0; rc == 0 && proc_mask_dirs[i]; i++)
        if (proc_readable(proc_mask_dirs[i]))
            rc = plan_add(p, SBX_MNT_MASK_DIR, NULL, proc_mask_dirs[i], NULL, 0, true, true);
    for (size_t i = 0; rc == 0 && proc_ro[i]; i++)
        rc = plan_add(p, SBX_MNT_RO, NULL, proc_ro[i], NULL, 0, true, true);
    return rc;
}

/* An extra bind: its destination must be absolute, without "..", and not on top of the parts
 * of the root that the sandbox's safety depends on. */
static int plan_user_bind(struct sbx_plan *p, const struct sbx_bind *b)
{
    static const char *const reserved[] = { "proc", "dev", "etc", NULL };
    char *clean = NULL;
    struct stat st;
    int rc;

    if (b->dst[0] != '/')
        return cru_err_set(CRU_EINVAL, "bind destination '%s' must be an absolute path", b->dst);
    if ((rc = cru_path_clean(&clean, b->dst + 1)) < 0)
        return cru_err_wrap(rc, "bind destination");
    for (size_t i = 0; reserved[i]; i++) {
        size_t n = strlen(reserved[i]);
        if (clean[0] == '\0' ||
            (strncmp(clean, reserved[i], n) == 0 && (clean[n] == '\0' || clean[n] == '/'))) {
            rc = cru_err_set(CRU_EINVAL, "cannot bind over /%s", clean);
            goto done;
        }
    }
    if (stat(b->src, &st) < 0) {
        rc = cru_err_sys("bind source %s", b->src);
        goto done;
    }
    /* The destination's parents are made as needed, so that /opt/tool/data works on a root
     * without /opt; a parent inside a read-only bind cannot be made, which fails clearly. */
    char *slash = strrchr(clean, '/');
    if (slash) {
        *slash = '\0';
        rc = add_dirs(p, clean);
        *slash = '/';
        if (rc < 0)
            goto done;
    }
    if (S_ISDIR(st.st_mode))
        rc = add(p, SBX_MNT_MKDIR, NULL, clean, false);
    else
        rc = add_text(p, SBX_MNT_FILE, clean, "");
    if (rc == 0)
        rc = add(p, SBX_MNT_BIND, b->src, clean, b->readonly);
done:
    free(clean);
    return rc;
}

/* A root filesystem folder: each top-level folder bound read-only and each top-level link
 * mirrored, except what the sandbox makes itself. */
static int plan_rootfs(struct sbx_plan *p, const char *rootfs)
{
    static const char *const ours[] = { "proc", "dev", "sys",  "tmp",       "run",
                                        "root", "etc", "boot", "workspace", NULL };
    DIR *d = opendir(rootfs);
    if (!d)
        return cru_err_sys("cannot open the root filesystem %s", rootfs);
    int rc = 0;
    struct dirent *e;
    /* readdir's order is the file system's; the plan must not depend on it, so sort. */
    char *names[256];
    size_t n = 0;
    while ((e = readdir(d))) {
        bool skip = e->d_name[0] == '.';
        for (size_t i = 0; ours[i] && !skip; i++)
            skip = strcmp(e->d_name, ours[i]) == 0;
        if (skip)
            continue;
        if (n == sizeof(names) / sizeof(names[0])) {
            rc = cru_err_set(CRU_ELIMIT, "%s: more than %zu top-level entries", rootfs, n);
            break;
        }
        if (!(names[n++] = strdup(e->d_name))) {
            n--;
            rc = cru_err_set(CRU_ENOMEM, "out of memory");
            break;
        }
    }
    closedir(d);
    if (rc == 0)
        qsort(names, n, sizeof(names[0]), cru_str_cmp_ptr);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            rc = plan_system_dir(p, rootfs, names[i]);
        free(names[i]);
    }
    return rc;
}

int sbx_plan_build(struct sbx_plan *p, const struct sbx_opts *o)
{
    static const char *const system_dirs[] = { "bin",   "sbin",   "lib", "lib32",
                                               "lib64", "libx32", NULL };
    int rc;

    memset(p, 0, sizeof(*p));
    if (o->rootfs) {
        if ((rc = plan_rootfs(p, o->rootfs)) < 0)
            goto fail;
    } else {
        if ((rc = add(p, SBX_MNT_MKDIR, NULL, "usr", false)) < 0 ||
            (rc = add(p, SBX_MNT_BIND, "/usr", "usr", true)) < 0)
            goto fail;
        for (size_t i = 0; system_dirs[i]; i++) {
            if ((rc = plan_system_dir(p, "", system_dirs[i])) < 0)
                goto fail;
        }
    }
    if ((rc = plan_etc(p, o)) < 0 || (rc = plan_dev(p)) < 0 ||
        (rc = add(p, SBX_MNT_MKDIR, NULL, "proc", false)) < 0 ||
        (rc = add(p, SBX_MNT_PROC, NULL, "proc", false)) < 0)
        goto fail;

    /* Everything writable is a folder of the one disk, so that one size and one inode count
     * bound all the sandbox can write. */
    static const struct {
        const char *name;
        mode_t mode;
    } writable[] = { { "tmp", 01777 }, { "root", 0755 }, { "run", 0755 }, { "var", 0755 } };
    for (size_t i = 0; i < sizeof(writable) / sizeof(writable[0]); i++) {
        if (o->rootfs && strcmp(writable[i].name, "var") == 0)
            continue; /* the root filesystem's own /var, read-only */
        if ((rc = add(p, SBX_MNT_MKDIR, NULL, writable[i].name, false)) < 0 ||
            (rc = add_disk(p, writable[i].name, writable[i].name, writable[i].mode)) < 0)
            goto fail;
    }
    if ((!o->rootfs && (rc = add(p, SBX_MNT_MKDIR, NULL, "var/tmp", false)) < 0) ||
        (rc = add(p, SBX_MNT_MKDIR, NULL, "workspace", false)) < 0 ||
        (rc = o->workspace ? add(p, SBX_MNT_WS, NULL, "workspace", false)
                           : add_disk(p, "workspace", "workspace", 0755)) < 0)
        goto fail;
    for (size_t i = 0; i < o->n_binds; i++) {
        if ((rc = plan_user_bind(p, &o->binds[i])) < 0)
            goto fail;
    }
    if (!(o->disable_layers & SBX_LAYER_PROC_MASK) && (rc = plan_proc_masks(p)) < 0)
        goto fail;
    return 0;
fail:
    sbx_plan_free(p);
    return rc;
}

void sbx_plan_free(struct sbx_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->ops[i].src);
        free(p->ops[i].dst);
        free(p->ops[i].data);
    }
    free(p->ops);
    memset(p, 0, sizeof(*p));
}

/* ---- In the init: system calls only from here on (see internal.h). ---- */

/* The steps that act on paths of the sandbox after the pivot; the plan puts them last. */
static bool sbx_mnt_after_pivot(enum sbx_mnt_op op)
{
    return op == SBX_MNT_MASK || op == SBX_MNT_MASK_DIR || op == SBX_MNT_RO;
}

/* dst = root "/" rel, into a caller buffer. */
static int join(char *dst, size_t cap, const char *root, const char *rel)
{
    size_t a = strlen(root), b = strlen(rel);
    if (a + 1 + b + 1 > cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dst, root, a);
    dst[a] = '/';
    memcpy(dst + a + 1, rel, b + 1);
    return 0;
}

/* The flags a read-only remount must keep: in a user namespace the kernel refuses to clear
 * the nosuid, nodev, noexec and atime flags that the host set on a mount. */
static unsigned long locked_flags(const char *path)
{
    struct statvfs sv;
    unsigned long f = 0;
    if (statvfs(path, &sv) < 0)
        return 0;
    if (sv.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    return f;
}

/* Changes the flags of the mount at PATH (not of its file system). */
static int remount(const char *path, unsigned long flags)
{
    return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | locked_flags(path) | flags, NULL);
}

/* Sets ATTRS (MOUNT_ATTR_*) on the mount at PATH and every mount below it: a bind with
 * MS_REC brings the source's submounts along, and a remount changes only the top one, so a
 * read-only bind of a folder holding, say, a tmpfs would leave that tmpfs writable. */
static int setattr_tree(const char *path, uint64_t attrs)
{
    struct mount_attr a = { .attr_set = attrs };
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &a, sizeof(a)) < 0)
        return -1;
    return 0;
}

static int write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -1;
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return close(fd);
}

/* Copies the host file SRC (at most ETC_COPY_MAX bytes: a file that grew is cut there, which
 * only a racing host administrator could cause) into DST, by the kernel, without a buffer. The
 * init copies as the sandbox's unprivileged root: a file it may not read (a root filesystem's
 * /etc/shadow, 0640) is left out when OPTIONAL, as the sandbox could not have read it either. */
static int copy_file(const char *src, const char *dst, bool optional)
{
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return optional && (errno == ENOENT || errno == EACCES) ? 0 : -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (out < 0) {
        int e = errno;
        close(in);
        errno = e;
        return -1;
    }
    size_t left = ETC_COPY_MAX;
    ssize_t n = 0;
    while (left > 0 && (n = sendfile(out, in, NULL, left)) > 0)
        left -= (size_t)n;
    int e = errno;
    close(in);
    close(out);
    errno = e;
    return n < 0 ? -1 : 0;
}

/* Binds host PATH (already resolved by the caller's own rights: the rootless case) on DST
 * without setuid or device semantics, all the way down. */
static int bind_path(const char *path, const char *dst)
{
    if (mount(path, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return -1;
    return setattr_tree(dst, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
}

/* The workspace at DST: the idmapped tree WS_FD (as root) or the host path (rootless), bound
 * as it is, or read-only below an overlay whose upper layer is on the disk. The overlay uses
 * user.overlay.* xattrs ("userxattr"): in a user namespace the kernel refuses the trusted.*
 * ones, and without either it fails to remove a lower folder (EIO). */
static int mount_workspace(const struct sbx_init_args *a, int ws_fd, bool upper_on_disk,
                           const char *dst, const char **what)
{
    if (a->ws_mode == SBX_WS_BIND) {
        *what = "attach the workspace";
        if (ws_fd < 0)
            return bind_path(a->ws_path, dst);
        return (int)syscall(SYS_move_mount, ws_fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH);
    }
    char opts[4096 * 3 + 64], upper[4096], work[4096];
    *what = "attach the workspace's lower layer";
    if (mkdir(a->ws_lower_dir, 0700) < 0 && errno != EEXIST)
        return -1;
    if (ws_fd < 0 ? bind_path(a->ws_path, a->ws_lower_dir) < 0
                  : syscall(SYS_move_mount, ws_fd, "", AT_FDCWD, a->ws_lower_dir,
                            MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return -1;
    *what = "make the workspace's upper layer";
    if (upper_on_disk) {
        if (join(upper, sizeof(upper), a->disk_dir, ".ws-upper") < 0 ||
            join(work, sizeof(work), a->disk_dir, ".ws-work") < 0 ||
            (mkdir(upper, 0755) < 0 && errno != EEXIST) ||
            (mkdir(work, 0700) < 0 && errno != EEXIST))
            return -1;
    } else if (!a->upper_dir) {
        errno = EOPNOTSUPP; /* the host was told the disk would hold it */
        return -1;
    } else if (snprintf(upper, sizeof(upper), "%s", a->upper_dir) >= (int)sizeof(upper) ||
               snprintf(work, sizeof(work), "%s", a->work_dir) >= (int)sizeof(work)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* The overlay's top folder shows the upper layer's owner and mode: those of the
     * workspace's own top folder (in a checker sandbox, the artifact's). */
    struct stat st;
    *what = "give the workspace's upper layer the workspace's owner";
    if (stat(a->ws_lower_dir, &st) < 0 || chown(upper, st.st_uid, st.st_gid) < 0 ||
        chmod(upper, st.st_mode & 07777) < 0)
        return -1;
    int n = snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s,userxattr",
                     a->ws_lower_dir, upper, work);
    if (n < 0 || (size_t)n >= sizeof(opts)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    *what = "mount the workspace overlay (it needs overlayfs; --bind-workspace does without)";
    if (mount("overlay", dst, "overlay", MS_NOSUID | MS_NODEV, opts) < 0)
        return -1;
    /* The overlay holds its own reference to the lower tree; the staging mount can go. */
    *what = "detach the workspace's staging mount";
    if (umount2(a->ws_lower_dir, MNT_DETACH) < 0)
        return -1;
    return rmdir(a->ws_lower_dir);
}

/* The disk's folder NAME with MODE (set whatever the umask), bound on DST. The bind keeps the
 * disk's nosuid and nodev. */
static int mount_disk_dir(const struct sbx_init_args *a, const char *name, mode_t mode,
                          const char *dst)
{
    char path[4096];
    if (join(path, sizeof(path), a->disk_dir, name) < 0 ||
        (mkdir(path, 0700) < 0 && errno != EEXIST) || chmod(path, mode) < 0)
        return -1;
    return mount(path, dst, NULL, MS_BIND, NULL);
}

/* "ACTION PATH" in a static buffer: the init's error messages name the step and its path. */
static const char *step(const char *action, const char *path)
{
    static char text[512];
    size_t a = strlen(action), b = strlen(path);
    if (a + 1 + b >= sizeof(text))
        b = sizeof(text) - a - 2;
    memcpy(text, action, a);
    text[a] = ' ';
    memcpy(text + a + 1, path, b);
    text[a + 1 + b] = '\0';
    return text;
}

static int run_op(const struct sbx_init_args *a, const struct sbx_mnt *m, int ws_fd,
                  bool upper_on_disk, const char **what)
{
    char dst[4096];
    if (sbx_mnt_after_pivot(m->op)) {
        /* After the pivot: absolute paths inside the sandbox. */
        if (strlen(m->dst) >= sizeof(dst)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        strcpy(dst, m->dst);
    } else if (join(dst, sizeof(dst), a->root_dir, m->dst) < 0) {
        return -1;
    }

    switch (m->op) {
    case SBX_MNT_MKDIR:
        *what = step("create the directory", dst);
        return mkdir(dst, 0755) < 0 && errno != EEXIST ? -1 : 0;
    case SBX_MNT_FILE:
        *what = step("create the file", dst);
        return write_file(dst, m->data, m->data_len);
    case SBX_MNT_COPY:
        *what = step("copy", m->src);
        return copy_file(m->src, dst, m->optional);
    case SBX_MNT_SYMLINK:
        *what = step("create the link", dst);
        return symlink(m->src, dst);
    case SBX_MNT_TMPFS:
        *what = step("mount a tmpfs on", dst);
        return mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, m->data);
    case SBX_MNT_BIND:
        *what = step("bind", m->src);
        if (mount(m->src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
            return m->optional && errno == ENOENT ? 0 : -1;
        /* Host binds never carry setuid bits into the sandbox, nor device semantics except
         * for the device nodes bound on purpose; and the same holds for every mount below
         * (mount_setattr only adds flags, so those the host locked stay). */
        return setattr_tree(dst, (m->readonly ? MOUNT_ATTR_RDONLY : 0) | MOUNT_ATTR_NOSUID |
                                     (m->device ? MOUNT_ATTR_NOEXEC : MOUNT_ATTR_NODEV));
    case SBX_MNT_PROC:
        *what = "mount /proc";
        return mount("proc", dst, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    case SBX_MNT_DEVPTS:
        *what = "mount /dev/pts";
        return mount("devpts", dst, "devpts", MS_NOSUID | MS_NOEXEC,
                     "newinstance,ptmxmode=0666,mode=0620");
    case SBX_MNT_MASK:
        *what = step("mask", m->dst);
        if (mount("/dev/null", dst, NULL, MS_BIND, NULL) < 0)
            return m->optional && errno == ENOENT ? 0 : -1;
        return 0;
    case SBX_MNT_MASK_DIR:
        *what = step("mask", m->dst);
        if (mount("tmpfs", dst, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=0,nr_inodes=1") < 0)
            return m->optional && errno == ENOENT ? 0 : -1;
        return 0;
    case SBX_MNT_RO:
        *what = step("make read-only", m->dst);
        if (mount(dst, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
            return m->optional && errno == ENOENT ? 0 : -1;
        return setattr_tree(dst, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                     MOUNT_ATTR_NOEXEC);
    case SBX_MNT_WS:
        return mount_workspace(a, ws_fd, upper_on_disk, dst, what);
    case SBX_MNT_DISK:
        *what = step("put the disk on", dst);
        return mount_disk_dir(a, m->src, m->mode, dst);
    }
    errno = EINVAL;
    return -1;
}

/* Mounts the disk and says whether it takes user xattrs (tmpfs does from Linux 6.6), which an
 * overlay's upper layer in a user namespace needs. */
static int disk_mount(const struct sbx_init_args *a, bool *xattrs, const char **what)
{
    *what = "mount the sandbox's disk";
    if (mkdir(a->disk_dir, 0700) < 0 ||
        mount("tmpfs", a->disk_dir, "tmpfs", MS_NOSUID | MS_NODEV, a->disk_opts) < 0)
        return -1;
    *xattrs = setxattr(a->disk_dir, "user.crucible", "1", 1, 0) == 0;
    if (*xattrs)
        removexattr(a->disk_dir, "user.crucible");
    return 0;
}

int sbx_plan_run(const struct sbx_init_args *a, int ws_fd, bool *upper_on_disk, const char **what)
{
    /* Nothing done here may propagate back to the host's mounts. */
    *what = "make the mount tree private";
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -1;
    *what = "mount the root tmpfs";
    if (mount("tmpfs", a->root_dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
        return -1;
    if (disk_mount(a, upper_on_disk, what) < 0)
        return -1;

    size_t i = 0;
    for (; i < a->plan->n; i++) {
        const struct sbx_mnt *m = &a->plan->ops[i];
        if (sbx_mnt_after_pivot(m->op))
            break; /* these act on the pivoted root */
        if (run_op(a, m, ws_fd, *upper_on_disk, what) < 0)
            return -1;
    }
    /* The disk is reachable only through the folders bound from it (and the overlay, which
     * holds its own reference): its staging mount must not show inside. */
    *what = "detach the disk's staging mount";
    if (umount2(a->disk_dir, MNT_DETACH) < 0 || rmdir(a->disk_dir) < 0)
        return -1;

    char old[4096];
    if (join(old, sizeof(old), a->root_dir, ".oldroot") < 0)
        return -1;
    *what = "pivot into the new root";
    if (mkdir(old, 0700) < 0 || chdir(a->root_dir) < 0 ||
        syscall(SYS_pivot_root, ".", ".oldroot") < 0 || chdir("/") < 0)
        return -1;
    *what = "detach the host's root";
    if (umount2("/.oldroot", MNT_DETACH) < 0 || rmdir("/.oldroot") < 0)
        return -1;

    for (; i < a->plan->n; i++) {
        const struct sbx_mnt *m = &a->plan->ops[i];
        if (!sbx_mnt_after_pivot(m->op)) {
            *what = "plan order";
            errno = EINVAL;
            return -1;
        }
        if (run_op(a, m, ws_fd, *upper_on_disk, what) < 0)
            return -1;
    }
    /* The root itself and the files placed on it (etc/passwd, ...) are read-only; /tmp,
     * /root, /run, /var, /dev/shm and /workspace are their own writable mounts. */
    *what = "make the root read-only";
    return remount("/", MS_RDONLY | MS_NOSUID | MS_NODEV);
}
