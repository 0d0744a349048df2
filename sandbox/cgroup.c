/* cgroup: one sandbox's cgroup: created with its limits, tasks attached, usage read, tasks
 * killed, directories removed; plus a sweep of cgroups left by crucible processes that died.
 *
 * Where: mounts come from /proc/self/mountinfo, crucible's own cgroup in each hierarchy from
 * /proc/self/cgroup, and a sandbox's cgroup is <mount><own path>/crucible-NAME, so crucible
 * works inside a delegated subtree and never writes above its own cgroup. Which hierarchy: v2
 * when it offers every controller a requested limit needs and at least as many of memory, pids
 * and cpu as v1 does (accounting is then as complete as the machine allows); else the v1
 * memory, pids, cpu and cpuacct hierarchies if they can enforce the limits; else
 * CRU_EUNSUPPORTED naming the controller and the hierarchies looked at. v2 lets a cgroup enable
 * controllers for its children only while it has no processes of its own (outside the root):
 * when crucible's own cgroup refuses with EBUSY, crucible moves itself into a leaf
 * crucible-supervisor beside the sandboxes and tries once more (later calls see that leaf in
 * /proc/self/cgroup and use its parent), so the NAME "supervisor" is reserved. If other
 * processes share that cgroup, crucible moves back: a limit then fails with CRU_EUNSUPPORTED,
 * and a sandbox without limits does without those controllers (its stats read 0). Killing writes
 * cgroup.kill where the kernel has it; otherwise, and in any case until the cgroup is empty,
 * it sends SIGKILL through a pidfd to each listed task after checking that the pid still names
 * a task of this cgroup, so neither a task forked meanwhile nor a reused pid escapes the loop.
 * It does not freeze, pin CPUs, limit I/O or devices, or nest cgroups inside a sandbox.
 */
#include "sandbox/cgroup.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"
#include "sandbox/cgroup_internal.h"

#define CG_NAME_MAX      64
#define CG_PREFIX        "crucible-"
#define CG_SUPERVISOR    "supervisor" /* the reserved NAME of crucible's own leaf on v2 */
#define CG_PERIOD_US     100000       /* the CPU quota's period: 100 ms */
#define CG_CPUS_MIN      0.01         /* 1 ms per period, the kernel's smallest quota */
#define CG_CPUS_MAX      65536.0
#define CG_PIDS_MAX      4194304           /* PID_MAX_LIMIT: the kernel refuses a larger pids.max */
#define CG_FILE_MAX      (64 * 1024)       /* a control file or /proc/PID/cgroup */
#define CG_PROCS_MAX     (4 * 1024 * 1024) /* cgroup.procs: about 500 000 pids */
#define CG_MOUNTINFO_MAX (4 * 1024 * 1024)
#define CG_WAIT_MS       2000 /* for tasks to die after SIGKILL and for rmdir to stop failing */
#define CG_POLL_MS       5
#define CG_SWEEP_MAX     4096 /* crucible-* cgroups one sweep looks at */
#define CG_MSG_MAX       1024

enum cg_ctrl { CG_MEMORY, CG_PIDS, CG_CPU, CG_CPUACCT, CG_NCTRL };

static const char *const cg_ctrl_names[CG_NCTRL] = { "memory", "pids", "cpu", "cpuacct" };

#define CG_BIT(c) (1u << (c))
/* The controllers that enforce limits and keep the usage that stats report. */
#define CG_MAIN (CG_BIT(CG_MEMORY) | CG_BIT(CG_PIDS) | CG_BIT(CG_CPU))

/* One hierarchy as discovery found it. */
struct cg_hier {
    bool mounted, has_own, usable;
    char mount[PATH_MAX]; /* mount point */
    char root[PATH_MAX];  /* the hierarchy's directory mounted there */
    char own[PATH_MAX];   /* crucible's cgroup, as /proc/PID/cgroup shows it */
    char base[PATH_MAX];  /* that cgroup's directory: where sandboxes go */
    char why[CG_MSG_MAX]; /* why it is not usable, for error messages */
};

struct cg_layout {
    struct cg_hier v2;
    unsigned v2_avail; /* CG_BIT()s listed in the v2 base's cgroup.controllers */
    bool v2_in_leaf;   /* crucible is in the supervisor leaf already */
    char v2_controllers[CG_MSG_MAX];
    struct cg_hier v1[CG_NCTRL];
};

struct cg_dir {
    char *path; /* the sandbox's cgroup directory */
    char *rel;  /* its path as /proc/PID/cgroup shows it */
};

struct sbx_cgroup {
    bool v2;
    int ndirs;
    struct cg_dir dirs[CG_NCTRL + 1]; /* a sweep may find one in v2 and in each v1 hierarchy */
    int ctrl_dir[CG_NCTRL];           /* index into dirs, or -1: controller not in use */
    uint64_t peak;                    /* highest memory use seen, where the kernel keeps none */
    uint64_t pids_max;                /* the pids limit (0: none), put back after a kill */
    char name[CG_NAME_MAX + 1];
};

/* The thread's last error, kept across cleanup that may overwrite it (sbx_cgroup_free runs in
 * callers' error paths and must not replace the message they are about to return). */
struct cg_saved_err {
    int code;
    char msg[CRU_ERR_MAX];
};

static void cg_err_save(struct cg_saved_err *s)
{
    s->code = cru_err_code();
    snprintf(s->msg, sizeof(s->msg), "%s", cru_err_msg());
}

static void cg_err_restore(const struct cg_saved_err *s)
{
    if (s->code == CRU_OK)
        cru_err_clear();
    else
        cru_err_set(s->code, "%s", s->msg);
}

/* snprintf into a fixed diagnostic buffer, ending a message that does not fit in "...". */
static void cg_msgf(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void cg_msgf(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
    if (n < 0)
        dst[0] = '\0';
    else if ((size_t)n >= cap && cap >= 4)
        memcpy(dst + cap - 4, "...", 4);
}

static int cg_path(char out[PATH_MAX], const char *dir, const char *file)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, file);
    if (n < 0 || n >= PATH_MAX)
        return cru_err_set(CRU_ELIMIT, "path %s/%s is longer than %d bytes", dir, file,
                           PATH_MAX - 1);
    return 0;
}

/* True when WORD is one of the SEP-separated items of LIST. */
static bool cg_list_has(const char *list, char sep, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p != NULL;) {
        const char *end = strchr(p, sep);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, word, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

static int cg_check_name(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return cru_err_set(CRU_EINVAL, "cgroup name is empty");
    size_t n = strnlen(name, CG_NAME_MAX + 1);
    if (n > CG_NAME_MAX)
        return cru_err_set(CRU_ELIMIT, "cgroup name '%.*s...' is longer than %d characters",
                           CG_NAME_MAX, name, CG_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok)
            return cru_err_set(CRU_EINVAL,
                               "cgroup name '%s' has the character 0x%02x at %zu: only letters, "
                               "digits, '-' and '_' are allowed",
                               name, c, i);
    }
    if (strcmp(name, CG_SUPERVISOR) == 0)
        return cru_err_set(CRU_EINVAL, "cgroup name '%s' is reserved for crucible itself", name);
    return 0;
}

static int cg_check_limits(const struct sbx_cgroup_limits *lim)
{
    if (lim->memory_bytes > (uint64_t)INT64_MAX)
        return cru_err_set(CRU_ELIMIT, "memory limit %" PRIu64 " is above %" PRId64 " bytes",
                           lim->memory_bytes, INT64_MAX);
    if (lim->pids > CG_PIDS_MAX)
        return cru_err_set(CRU_ELIMIT, "pids limit %" PRIu64 " is above the kernel's %d", lim->pids,
                           CG_PIDS_MAX);
    if (!isfinite(lim->cpus) || lim->cpus < 0)
        return cru_err_set(CRU_EINVAL, "CPU quota %g is not a number of CPUs", lim->cpus);
    if (lim->cpus != 0 && (lim->cpus < CG_CPUS_MIN || lim->cpus > CG_CPUS_MAX))
        return cru_err_set(CRU_ELIMIT, "CPU quota %g is outside [%g, %g] CPUs", lim->cpus,
                           CG_CPUS_MIN, CG_CPUS_MAX);
    return 0;
}

/* ---- discovery ---- */

/* Decodes mountinfo's octal escapes ("\040" for a space) in place. */
static void cg_unescape(char *s)
{
    char *w = s;
    for (const char *r = s; *r != '\0';) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7' && (r[1] != '0' || r[2] != '0' || r[3] != '0')) {
            *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

struct cg_mount_line {
    char *root, *mountpoint, *fstype, *superopts;
};

/* Splits a mountinfo line in place: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] -
 * FSTYPE SOURCE SUPEROPTIONS" (proc(5)). A line that is refused is left as it was, for the
 * caller's message. */
static int cg_split_mount_line(char *line, struct cg_mount_line *m)
{
    char *save = NULL;
    int i = 0, after_dash = -1;
    size_t len = strlen(line);
    memset(m, 0, sizeof(*m));
    for (char *t = strtok_r(line, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save), i++) {
        if (after_dash >= 0) {
            if (after_dash == 0)
                m->fstype = t;
            else if (after_dash == 2)
                m->superopts = t;
            after_dash++;
        } else if (i == 3) {
            m->root = t;
        } else if (i == 4) {
            m->mountpoint = t;
        } else if (i >= 6 && strcmp(t, "-") == 0) {
            after_dash = 0;
        }
    }
    if (m->root == NULL || m->mountpoint == NULL || m->superopts == NULL) {
        /* strtok_r cut the line at single spaces; the line held no NUL before it. */
        for (size_t k = 0; k < len; k++) {
            if (line[k] == '\0')
                line[k] = ' ';
        }
        return CRU_EPARSE;
    }
    cg_unescape(m->root);
    cg_unescape(m->mountpoint);
    return 0;
}

static int cg_note_mount(struct cg_hier *h, const struct cg_mount_line *m, const char *src)
{
    int rc;
    if (h->mounted) /* the first mount of a hierarchy wins */
        return 0;
    if ((rc = cru_str_copy(h->mount, sizeof(h->mount), m->mountpoint)) < 0 ||
        (rc = cru_str_copy(h->root, sizeof(h->root), m->root)) < 0)
        return cru_err_wrap(rc, "%s", src);
    h->mounted = true;
    return 0;
}

/* Reads a text file of at most MAX bytes. A NUL would end the line parsers' view of it early
 * and hide the rest, so it is refused. */
static int cg_read_text(const char *path, size_t max, struct cru_buf *b)
{
    int rc = cru_file_read(path, max, b);
    if (rc < 0)
        return rc;
    const char *nul = memchr(b->data, '\0', b->len);
    if (nul != NULL)
        return cru_err_set(CRU_EPARSE, "%s: NUL byte at offset %zu", path, (size_t)(nul - b->data));
    return 0;
}

static int cg_read_mounts(const char *path, struct cg_layout *lay)
{
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cg_read_text(path, CG_MOUNTINFO_MAX, &b);
    if (rc < 0)
        goto done;
    char *save = NULL;
    for (char *line = strtok_r(b.data, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        struct cg_mount_line m;
        if (cg_split_mount_line(line, &m) < 0) {
            rc = cru_err_set(CRU_EPARSE, "%s: malformed line '%s'", path, line);
            goto done;
        }
        if (m.fstype == NULL)
            continue;
        if (strcmp(m.fstype, "cgroup2") == 0) {
            if ((rc = cg_note_mount(&lay->v2, &m, path)) < 0)
                goto done;
        } else if (strcmp(m.fstype, "cgroup") == 0) {
            for (int c = 0; c < CG_NCTRL; c++) {
                if (cg_list_has(m.superopts, ',', cg_ctrl_names[c]) &&
                    (rc = cg_note_mount(&lay->v1[c], &m, path)) < 0)
                    goto done;
            }
        }
    }
done:
    cru_buf_free(&b);
    return rc;
}

static int cg_note_own(struct cg_hier *h, const char *own, const char *src)
{
    int rc = cru_str_copy(h->own, sizeof(h->own), own);
    if (rc < 0)
        return cru_err_wrap(rc, "%s", src);
    h->has_own = true;
    return 0;
}

/* Lines "ID:CONTROLLERS:PATH"; v2's is "0::PATH". */
static int cg_read_own(const char *path, struct cg_layout *lay)
{
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cg_read_text(path, CG_FILE_MAX, &b);
    if (rc < 0)
        goto done;
    char *save = NULL;
    for (char *line = strtok_r(b.data, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 == NULL || c2[1] != '/') {
            rc = cru_err_set(CRU_EPARSE, "%s: malformed line '%s'", path, line);
            goto done;
        }
        *c1 = *c2 = '\0';
        const char *list = c1 + 1, *own = c2 + 1;
        if (strcmp(line, "0") == 0 && *list == '\0') {
            if ((rc = cg_note_own(&lay->v2, own, path)) < 0)
                goto done;
            continue;
        }
        for (int c = 0; c < CG_NCTRL; c++) {
            if (cg_list_has(list, ',', cg_ctrl_names[c]) &&
                (rc = cg_note_own(&lay->v1[c], own, path)) < 0)
                goto done;
        }
    }
done:
    cru_buf_free(&b);
    return rc;
}

/* Finds the directory of crucible's own cgroup in H, or says in H->why why there is none. */
static int cg_resolve(struct cg_hier *h, const char *what, const struct sbx_cgroup_sources *src)
{
    if (!h->mounted) {
        cg_msgf(h->why, sizeof(h->why), "%s is not mounted (%s)", what, src->mountinfo);
        return 0;
    }
    if (!h->has_own) {
        cg_msgf(h->why, sizeof(h->why), "%s is mounted at %s but %s has no line for it", what,
                h->mount, src->cgroup);
        return 0;
    }
    /* A cgroup outside the reader's cgroup namespace shows as "/../x": never follow it out of
     * the mount. */
    if (strstr(h->own, "/../") != NULL || cru_str_ends_with(h->own, "/..")) {
        cg_msgf(h->why, sizeof(h->why),
                "crucible's cgroup %s in %s lies outside its cgroup "
                "namespace",
                h->own, what);
        return 0;
    }
    /* A container may see only a subtree of the hierarchy mounted (ROOT is then not "/"); the
     * own path is relative to the hierarchy, so the subtree's part is dropped. */
    const char *rel = h->own;
    if (strcmp(h->root, "/") != 0) {
        size_t n = strlen(h->root);
        if (strncmp(h->own, h->root, n) != 0 || (h->own[n] != '/' && h->own[n] != '\0')) {
            cg_msgf(h->why, sizeof(h->why),
                    "%s at %s shows the subtree %s, which does not hold crucible's cgroup %s", what,
                    h->mount, h->root, h->own);
            return 0;
        }
        rel = h->own + n;
    }
    if (strcmp(rel, "/") == 0)
        rel = "";
    int n = snprintf(h->base, sizeof(h->base), "%s%s", h->mount, rel);
    if (n < 0 || (size_t)n >= sizeof(h->base))
        return cru_err_set(CRU_ELIMIT, "cgroup path %s%s is longer than %d bytes", h->mount, rel,
                           PATH_MAX - 1);
    h->usable = true;
    return 0;
}

/* The controllers listed in DIR/cgroup.controllers, as CG_BIT()s and (when TEXT) as text. */
static int cg_v2_controllers(const char *dir, unsigned *bits, char *text, size_t cap)
{
    char path[PATH_MAX];
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cg_path(path, dir, "cgroup.controllers");
    if (rc < 0 || (rc = cru_file_read(path, CG_FILE_MAX, &b)) < 0)
        goto done;
    char *list = cru_str_trim(b.data);
    if (text != NULL)
        cg_msgf(text, cap, "%s", *list ? list : "none");
    *bits = 0;
    for (int c = 0; c < CG_NCTRL; c++) {
        if (cg_list_has(list, ' ', cg_ctrl_names[c]))
            *bits |= CG_BIT(c);
    }
done:
    cru_buf_free(&b);
    return rc;
}

static int cg_discover(const struct sbx_cgroup_sources *src, struct cg_layout *lay)
{
    int rc;
    memset(lay, 0, sizeof(*lay));
    if ((rc = cg_read_mounts(src->mountinfo, lay)) < 0 || (rc = cg_read_own(src->cgroup, lay)) < 0)
        return cru_err_wrap(rc, "discovering cgroups");

    /* After a move into the supervisor leaf, crucible's cgroup is that leaf's parent. */
    struct cg_hier *v2 = &lay->v2;
    size_t n = strlen(v2->own), k = strlen("/" CG_PREFIX CG_SUPERVISOR);
    if (v2->has_own && n >= k && strcmp(v2->own + n - k, "/" CG_PREFIX CG_SUPERVISOR) == 0) {
        v2->own[n - k == 0 ? 1 : n - k] = '\0';
        lay->v2_in_leaf = true;
    }

    if ((rc = cg_resolve(v2, "cgroup v2", src)) < 0)
        return rc;
    /* What crucible's own cgroup can hand to its children. */
    if (v2->usable && cg_v2_controllers(v2->base, &lay->v2_avail, lay->v2_controllers,
                                        sizeof(lay->v2_controllers)) < 0) {
        cg_msgf(v2->why, sizeof(v2->why), "cgroup v2: %s", cru_err_msg());
        v2->usable = false;
    }
    for (int c = 0; c < CG_NCTRL; c++) {
        char what[64];
        snprintf(what, sizeof(what), "the cgroup v1 %s hierarchy", cg_ctrl_names[c]);
        if ((rc = cg_resolve(&lay->v1[c], what, src)) < 0)
            return rc;
    }
    return 0;
}

/* Picks the hierarchy for limits that need the controllers NEEDED (see the top of the file). */
static int cg_choose(const struct cg_layout *lay, unsigned needed, bool *use_v2)
{
    unsigned v2 = lay->v2.usable ? lay->v2_avail & CG_MAIN : 0, v1 = 0;
    bool any_v1 = false;
    for (int c = 0; c < CG_NCTRL; c++) {
        any_v1 |= lay->v1[c].usable;
        if (lay->v1[c].usable && (CG_BIT(c) & CG_MAIN))
            v1 |= CG_BIT(c);
    }
    bool v2_ok = lay->v2.usable && (needed & ~v2) == 0;
    bool v1_ok = any_v1 && (needed & ~v1) == 0;
    if (v2_ok && (!v1_ok || __builtin_popcount(v2) >= __builtin_popcount(v1))) {
        *use_v2 = true;
        return 0;
    }
    if (v1_ok) {
        *use_v2 = false;
        return 0;
    }

    char v2_desc[CG_MSG_MAX + PATH_MAX];
    if (lay->v2.usable)
        cg_msgf(v2_desc, sizeof(v2_desc), "cgroup v2 at %s offers '%s'", lay->v2.base,
                lay->v2_controllers);
    else
        cg_msgf(v2_desc, sizeof(v2_desc), "%s", lay->v2.why);
    if (needed == 0)
        return cru_err_set(CRU_EUNSUPPORTED,
                           "no usable cgroup hierarchy: %s; no cgroup v1 hierarchy of memory, "
                           "pids, cpu or cpuacct is usable",
                           v2_desc);
    /* Each hierarchy lacks a needed controller: the first one it lacks is named. */
    int c2 = CG_NCTRL, c1 = CG_NCTRL;
    for (int c = CG_NCTRL - 1; c >= 0; c--) {
        if ((needed & CG_BIT(c)) && !(v2 & CG_BIT(c)))
            c2 = c;
        if ((needed & CG_BIT(c)) && !(v1 & CG_BIT(c)))
            c1 = c;
    }
    assert(c1 < CG_NCTRL && c2 < CG_NCTRL);
    if (c1 == c2)
        return cru_err_set(CRU_EUNSUPPORTED,
                           "cannot limit %s: no cgroup hierarchy has the %s controller (%s; %s)",
                           cg_ctrl_names[c1], cg_ctrl_names[c1], v2_desc, lay->v1[c1].why);
    return cru_err_set(CRU_EUNSUPPORTED,
                       "cannot apply these limits in one cgroup hierarchy: %s, without %s; and "
                       "%s",
                       v2_desc, cg_ctrl_names[c2], lay->v1[c1].why);
}

/* ---- description (for tests) ---- */

/* A line being written into a caller's fixed buffer; CUT once something did not fit. */
struct cg_text {
    char *out;
    size_t cap, len;
    bool cut;
};

static void cg_text_byte(struct cg_text *t, char c)
{
    if (t->len + 1 < t->cap)
        t->out[t->len++] = c;
    else
        t->cut = true;
}

/* Appends S; with ESCAPE, control bytes and '\' as \ooo, so that a path decoded from mountinfo
 * (which may hold a newline) keeps the description on one line and unambiguous. */
static void cg_text_put(struct cg_text *t, const char *s, bool escape)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (escape && (c < 0x20 || c == 0x7f || c == '\\')) {
            cg_text_byte(t, '\\');
            cg_text_byte(t, (char)('0' + (c >> 6)));
            cg_text_byte(t, (char)('0' + ((c >> 3) & 7)));
            cg_text_byte(t, (char)('0' + (c & 7)));
        } else {
            cg_text_byte(t, (char)c);
        }
    }
}

static void cg_text_hier(struct cg_text *t, const char *name, const struct cg_hier *h)
{
    cg_text_put(t, name, false);
    if (!h->usable) {
        cg_text_put(t, ": none (", false);
        cg_text_put(t, h->why, true);
        cg_text_put(t, ")", false);
        return;
    }
    cg_text_put(t, ": ", false);
    cg_text_put(t, h->base, true);
    cg_text_put(t, " (mount ", false);
    cg_text_put(t, h->mount, true);
    cg_text_put(t, ", root ", false);
    cg_text_put(t, h->root, true);
    cg_text_put(t, ", own ", false);
    cg_text_put(t, h->own, true);
    cg_text_put(t, ")", false);
}

int sbx_cgroup_describe_from(const struct sbx_cgroup_sources *src, char *out, size_t cap)
{
    if (cap < 4)
        return cru_err_set(CRU_EINVAL, "no room for a cgroup description in %zu bytes", cap);
    out[0] = '\0';
    struct cg_layout *lay = malloc(sizeof(*lay));
    if (lay == NULL)
        return cru_err_set(CRU_ENOMEM, "out of memory for the cgroup layout");
    int rc = cg_discover(src, lay);
    if (rc < 0)
        goto done;

    struct cg_text t = { out, cap, 0, false };
    cg_text_hier(&t, "v2", &lay->v2);
    if (lay->v2.usable) {
        cg_text_put(&t, lay->v2_in_leaf ? " in the supervisor leaf" : "", false);
        cg_text_put(&t, " offers '", false);
        cg_text_put(&t, lay->v2_controllers, true);
        cg_text_put(&t, "'", false);
    }
    for (int c = 0; c < CG_NCTRL; c++) {
        cg_text_put(&t, "; ", false);
        cg_text_hier(&t, cg_ctrl_names[c], &lay->v1[c]);
    }
    out[t.len] = '\0';
    if (t.cut) {
        memcpy(out + cap - 4, "...", 4);
        rc = cru_err_set(CRU_ELIMIT, "the cgroup description does not fit in %zu bytes", cap);
    }
done:
    free(lay);
    return rc;
}

/* ---- control files ---- */

/* Writes VALUE to DIR/FILE with one write(2), as the kernel takes one command per write.
 * errno is left as the failing call set it, so callers can tell EBUSY or ENOENT apart. */
static int cg_write(const char *dir, const char *file, const char *value)
{
    char path[PATH_MAX];
    int rc = cg_path(path, dir, file);
    if (rc < 0)
        return rc;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return cru_err_sys("cannot open %s", path);
    size_t len = strlen(value);
    ssize_t n;
    do {
        n = write(fd, value, len);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        rc = cru_err_sys("cannot write '%s' to %s", value, path);
    else if ((size_t)n != len)
        rc = cru_err_set(CRU_EIO, "short write of '%s' to %s", value, path);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static int cg_write_u64(const char *dir, const char *file, uint64_t v)
{
    char s[32];
    snprintf(s, sizeof(s), "%" PRIu64, v);
    return cg_write(dir, file, s);
}

/* Reads DIR/FILE, which holds one number or "max" (read as UINT64_MAX). A missing file is
 * CRU_ENOENT, which callers of optional files test for. */
static int cg_read_u64(const char *dir, const char *file, uint64_t *out)
{
    char path[PATH_MAX];
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cg_path(path, dir, file);
    if (rc < 0 || (rc = cru_file_read(path, CG_FILE_MAX, &b)) < 0)
        goto done;
    char *s = cru_str_trim(b.data);
    if (strcmp(s, "max") == 0)
        *out = UINT64_MAX;
    else if ((rc = cru_parse_u64(s, 0, UINT64_MAX, out)) < 0)
        rc = cru_err_wrap(rc, "%s", path);
done:
    cru_buf_free(&b);
    return rc;
}

/* Reads the value of KEY in DIR/FILE, a file of "KEY VALUE" lines; *OUT is left alone when no
 * line has KEY (older kernels lack some keys). */
static int cg_read_key(const char *dir, const char *file, const char *key, uint64_t *out)
{
    char path[PATH_MAX];
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cg_path(path, dir, file);
    if (rc < 0 || (rc = cru_file_read(path, CG_FILE_MAX, &b)) < 0)
        goto done;
    char *save = NULL;
    size_t klen = strlen(key);
    for (char *line = strtok_r(b.data, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, key, klen) != 0 || line[klen] != ' ')
            continue;
        if ((rc = cru_parse_u64(line + klen + 1, 0, UINT64_MAX, out)) < 0)
            rc = cru_err_wrap(rc, "%s: %s", path, key);
        break;
    }
done:
    cru_buf_free(&b);
    return rc;
}

/* ---- the cgroup object ---- */

static int cg_alloc(struct sbx_cgroup **out, const char *name)
{
    struct sbx_cgroup *cg = calloc(1, sizeof(*cg));
    if (cg == NULL)
        return cru_err_set(CRU_ENOMEM, "out of memory for cgroup %s", name);
    snprintf(cg->name, sizeof(cg->name), "%s", name);
    for (int c = 0; c < CG_NCTRL; c++)
        cg->ctrl_dir[c] = -1;
    *out = cg;
    return 0;
}

static void cg_release(struct sbx_cgroup *cg)
{
    for (int i = 0; i < cg->ndirs; i++) {
        free(cg->dirs[i].path);
        free(cg->dirs[i].rel);
    }
    free(cg);
}

/* Adds the directory of this cgroup below hierarchy H's base, creating it when CREATE (else it
 * must exist). Returns its index in *IDX; a directory is recorded only once it exists, so
 * cleanup removes exactly what is there. */
static int cg_add_dir(struct sbx_cgroup *cg, const struct cg_hier *h, bool create, int *idx)
{
    struct cg_dir d = { NULL, NULL };
    const char *own = strcmp(h->own, "/") == 0 ? "" : h->own;
    int rc;
    if ((rc = cru_str_printf(&d.path, "%s/" CG_PREFIX "%s", h->base, cg->name)) < 0 ||
        (rc = cru_str_printf(&d.rel, "%s/" CG_PREFIX "%s", own, cg->name)) < 0)
        goto done;
    for (int i = 0; i < cg->ndirs; i++) {
        if (strcmp(cg->dirs[i].path, d.path) == 0) {
            *idx = i; /* co-mounted controllers (cpu,cpuacct) share one directory */
            goto done;
        }
    }
    if (create && mkdir(d.path, 0755) < 0) {
        if (errno == EEXIST)
            rc = cru_err_set(CRU_EEXIST,
                             "cgroup %s exists already (a sandbox of that name is running, or "
                             "a dead one awaits sbx_cgroup_sweep)",
                             d.path);
        else
            rc = cru_err_sys("cannot create cgroup %s", d.path);
        goto done;
    }
    *idx = cg->ndirs;
    cg->dirs[cg->ndirs++] = d;
    d.path = d.rel = NULL;
done:
    free(d.path);
    free(d.rel);
    return rc;
}

/* Removes the directories, retrying while killed tasks are still leaving; warns about each one
 * that stays and returns how many did. Leaves the last error alone. */
static size_t cg_remove(const struct sbx_cgroup *cg)
{
    uint64_t deadline = cru_deadline_ms(CG_WAIT_MS);
    size_t left = 0;
    for (int i = cg->ndirs - 1; i >= 0; i--) {
        const char *p = cg->dirs[i].path;
        while (rmdir(p) < 0 && errno != ENOENT) {
            if (errno == EBUSY && !cru_deadline_passed(deadline)) {
                cru_sleep_ms(CG_POLL_MS);
                continue;
            }
            cru_warn("cannot remove cgroup %s: %s", p, strerror(errno));
            left++;
            break;
        }
    }
    return left;
}

static const char *cg_dir_of(const struct sbx_cgroup *cg, enum cg_ctrl c)
{
    return cg->ctrl_dir[c] < 0 ? NULL : cg->dirs[cg->ctrl_dir[c]].path;
}

/* ---- creation ---- */

/* Enables in BASE's cgroup.subtree_control those of WANT that are not on yet; CMD gets what
 * was written ("" for nothing). errno tells why a write failed. */
static int cg_v2_subtree(const char *base, unsigned want, char cmd[64])
{
    char path[PATH_MAX];
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cg_path(path, base, "cgroup.subtree_control");
    cmd[0] = '\0';
    if (rc < 0 || (rc = cru_file_read(path, CG_FILE_MAX, &b)) < 0)
        goto done;
    char *on = cru_str_trim(b.data);
    for (int c = 0; c < CG_NCTRL; c++) {
        if ((want & CG_BIT(c)) && !cg_list_has(on, ' ', cg_ctrl_names[c])) {
            strcat(cmd, *cmd ? " +" : "+");
            strcat(cmd, cg_ctrl_names[c]);
        }
    }
    if (*cmd != '\0')
        rc = cg_write(base, "cgroup.subtree_control", cmd);
done:
    cru_buf_free(&b);
    return rc;
}

/* Enables the controllers WANT for the sandboxes below crucible's own v2 cgroup; those of
 * NEEDED must be enabled, the others (accounting) are enabled where possible. */
static int cg_v2_enable(const struct cg_layout *lay, unsigned needed, unsigned want)
{
    const char *base = lay->v2.base;
    char cmd[64], leaf[PATH_MAX], pid[32];
    bool made = false, moved = false;
    int rc = cg_v2_subtree(base, want, cmd);
    if (rc == 0 || errno != EBUSY)
        return rc;

    /* EBUSY: the no-internal-processes rule. Crucible moves into a leaf of its own (which needs
     * no more rights than creating sandboxes beside it) and tries again. What else shares its
     * cgroup is not crucible's to move: if that is the reason, crucible moves back. */
    if (!lay->v2_in_leaf) {
        snprintf(pid, sizeof(pid), "%d", (int)getpid());
        if ((rc = cg_path(leaf, base, CG_PREFIX CG_SUPERVISOR)) < 0)
            return rc;
        if (mkdir(leaf, 0755) == 0)
            made = true;
        else if (errno != EEXIST)
            return cru_err_sys("cannot create cgroup %s", leaf);
        if ((rc = cg_write(leaf, "cgroup.procs", pid)) < 0)
            goto undo;
        moved = true;
        if ((rc = cg_v2_subtree(base, want, cmd)) == 0) {
            cru_info("moved crucible into %s to enable '%s' in %s", leaf, cmd, base);
            return 0;
        }
        if (errno != EBUSY)
            goto undo;
    }
    if (needed != 0) {
        rc = cru_err_set(CRU_EUNSUPPORTED,
                         "cannot enable '%s' in %s: other processes share crucible's cgroup, and "
                         "cgroup v2 gives controllers to child cgroups only of a cgroup without "
                         "processes",
                         cmd, base);
    } else {
        rc = 0;
        cru_info("cgroup v2 sandboxes go without '%s': other processes share %s", cmd, base);
    }
undo:
    if (moved || made) {
        struct cg_saved_err saved;
        cg_err_save(&saved);
        if (moved && cg_write(base, "cgroup.procs", pid) < 0)
            cru_warn("cannot move crucible back: %s", cru_err_msg());
        if (made && rmdir(leaf) < 0)
            cru_warn("cannot remove cgroup %s: %s", leaf, strerror(errno));
        cg_err_restore(&saved);
    }
    return rc;
}

static unsigned cg_needed(const struct sbx_cgroup_limits *lim)
{
    return (lim->memory_bytes ? CG_BIT(CG_MEMORY) : 0) | (lim->pids ? CG_BIT(CG_PIDS) : 0) |
           (lim->cpus != 0 ? CG_BIT(CG_CPU) : 0);
}

static int cg_create_v2(struct sbx_cgroup *cg, const struct cg_layout *lay,
                        const struct sbx_cgroup_limits *lim)
{
    unsigned needed = cg_needed(lim), have = 0;
    int rc, idx;
    if ((rc = cg_v2_enable(lay, needed, lay->v2_avail & CG_MAIN)) < 0 ||
        (rc = cg_add_dir(cg, &lay->v2, true, &idx)) < 0 ||
        (rc = cg_v2_controllers(cg->dirs[idx].path, &have, NULL, 0)) < 0)
        return rc;
    if ((needed & ~have) != 0)
        return cru_err_set(CRU_EUNSUPPORTED, "cgroup %s did not get the controllers enabled for it",
                           cg->dirs[idx].path);
    cg->v2 = true;
    cg->pids_max = lim->pids;
    for (int c = 0; c < CG_NCTRL; c++) {
        if (have & CG_MAIN & CG_BIT(c))
            cg->ctrl_dir[c] = idx;
    }
    cg->ctrl_dir[CG_CPUACCT] = idx; /* every v2 cgroup keeps cpu.stat's usage_usec */
    const char *dir = cg->dirs[idx].path;

    if (lim->memory_bytes) {
        if ((rc = cg_write_u64(dir, "memory.max", lim->memory_bytes)) < 0)
            return rc;
        /* memory.swap.max exists only where the kernel accounts swap; where it does not,
         * swapped pages are not charged and memory.max is the whole limit. */
        if ((rc = cg_write(dir, "memory.swap.max", "0")) < 0 && errno != ENOENT)
            return rc;
    }
    if (lim->pids && (rc = cg_write_u64(dir, "pids.max", lim->pids)) < 0)
        return rc;
    if (lim->cpus != 0) {
        char quota[64];
        snprintf(quota, sizeof(quota), "%lld %d", llround(lim->cpus * CG_PERIOD_US), CG_PERIOD_US);
        if ((rc = cg_write(dir, "cpu.max", quota)) < 0)
            return rc;
    }
    return 0;
}

static int cg_create_v1(struct sbx_cgroup *cg, const struct cg_layout *lay,
                        const struct sbx_cgroup_limits *lim)
{
    int rc;
    /* Each hierarchy costs a mkdir, an attach and an rmdir: a lean cgroup has only the limited
     * controllers, plus memory, whose OOM counter every command's result reads. */
    unsigned want = lim->lean ? cg_needed(lim) | CG_BIT(CG_MEMORY) : ~0u;
    for (int c = 0; c < CG_NCTRL; c++) {
        if (lay->v1[c].usable && (want & CG_BIT(c)) &&
            (rc = cg_add_dir(cg, &lay->v1[c], true, &cg->ctrl_dir[c])) < 0)
            return rc;
    }
    const char *mem = cg_dir_of(cg, CG_MEMORY), *cpu = cg_dir_of(cg, CG_CPU);
    cg->pids_max = lim->pids;
    if (lim->memory_bytes) {
        /* Fails where the kernel refuses it (a root cgroup, cgroup-v1 memory in some kernels'
         * legacy mode); swap stays bounded by memsw below where swap is accounted. */
        if (cg_write(mem, "memory.swappiness", "0") < 0)
            cru_debug("%s", cru_err_msg());
        /* The limit first: memsw must never be below it. */
        if ((rc = cg_write_u64(mem, "memory.limit_in_bytes", lim->memory_bytes)) < 0)
            return rc;
        if ((rc = cg_write_u64(mem, "memory.memsw.limit_in_bytes", lim->memory_bytes)) < 0 &&
            errno != ENOENT)
            return rc;
    }
    if (lim->pids && (rc = cg_write_u64(cg_dir_of(cg, CG_PIDS), "pids.max", lim->pids)) < 0)
        return rc;
    if (lim->cpus != 0) {
        if ((rc = cg_write_u64(cpu, "cpu.cfs_period_us", CG_PERIOD_US)) < 0 ||
            (rc = cg_write_u64(cpu, "cpu.cfs_quota_us",
                               (uint64_t)llround(lim->cpus * CG_PERIOD_US))) < 0)
            return rc;
    }
    return 0;
}

int sbx_cgroup_new_from(struct sbx_cgroup **out, const char *name,
                        const struct sbx_cgroup_limits *limits,
                        const struct sbx_cgroup_sources *src)
{
    static const struct sbx_cgroup_limits none = { 0, 0, 0, false };
    const struct sbx_cgroup_limits *lim = limits ? limits : &none;
    struct cg_layout *lay = NULL;
    struct sbx_cgroup *cg = NULL;
    bool use_v2 = false;
    *out = NULL;
    int rc = cg_check_name(name);
    if (rc < 0 || (rc = cg_check_limits(lim)) < 0)
        goto done;
    unsigned needed = cg_needed(lim);
    if ((lay = malloc(sizeof(*lay))) == NULL) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory for the cgroup layout");
        goto done;
    }
    if ((rc = cg_discover(src, lay)) < 0 || (rc = cg_choose(lay, needed, &use_v2)) < 0 ||
        (rc = cg_alloc(&cg, name)) < 0)
        goto done;
    rc = use_v2 ? cg_create_v2(cg, lay, lim) : cg_create_v1(cg, lay, lim);
done:
    if (rc < 0 && cg != NULL) {
        cg_remove(cg); /* empty directories: nothing was attached yet */
        cg_release(cg);
        cg = NULL;
    }
    free(lay);
    if (rc < 0)
        return cru_err_wrap(rc, "creating cgroup crucible-%s", name ? name : "");
    cru_debug("cgroup crucible-%s: %s, %s", name, use_v2 ? "v2" : "v1", cg->dirs[0].path);
    *out = cg;
    return 0;
}

int sbx_cgroup_new(struct sbx_cgroup **out, const char *name,
                   const struct sbx_cgroup_limits *limits)
{
    const struct sbx_cgroup_sources src = SBX_CGROUP_SOURCES_PROC;
    return sbx_cgroup_new_from(out, name, limits, &src);
}

/* ---- tasks ---- */

int sbx_cgroup_attach(struct sbx_cgroup *cg, pid_t pid)
{
    if (pid <= 0)
        return cru_err_set(CRU_EINVAL, "cannot attach pid %d to cgroup crucible-%s", (int)pid,
                           cg->name);
    char s[32];
    snprintf(s, sizeof(s), "%d", (int)pid);
    for (int i = 0; i < cg->ndirs; i++) {
        int rc = cg_write(cg->dirs[i].path, "cgroup.procs", s);
        if (rc < 0 && errno == ESRCH)
            rc = cru_err_set(CRU_ENOENT, "no process %d to attach to %s", (int)pid,
                             cg->dirs[i].path);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* True when /proc/PID/cgroup puts PID in one of this cgroup's directories. */
static int cg_task_is_ours(const struct sbx_cgroup *cg, pid_t pid, bool *ours)
{
    char path[64];
    struct cru_buf b = CRU_BUF_INIT;
    *ours = false;
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    int rc = cru_file_read(path, CG_FILE_MAX, &b);
    if (rc == CRU_ENOENT || (rc < 0 && errno == ESRCH)) { /* gone */
        rc = 0;
        goto done;
    }
    if (rc < 0)
        goto done;
    char *save = NULL;
    for (char *line = strtok_r(b.data, "\n", &save); line != NULL && !*ours;
         line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':');
        char *own = c1 ? strchr(c1 + 1, ':') : NULL;
        for (int i = 0; own != NULL && i < cg->ndirs; i++)
            *ours |= strcmp(own + 1, cg->dirs[i].rel) == 0;
    }
done:
    cru_buf_free(&b);
    return rc;
}

/* SIGKILLs PID if it is still a task of this cgroup. The pidfd pins the process: once the check
 * passes, the signal cannot reach another process that reused the pid. */
static int cg_kill_task(const struct sbx_cgroup *cg, pid_t pid)
{
    if (pid == getpid())
        return cru_err_set(CRU_EINTERNAL, "crucible's own process %d is in cgroup crucible-%s",
                           (int)pid, cg->name);
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0 && errno == ESRCH)
        return 0;
    if (fd < 0 && errno == ENOSYS) {
        /* Before Linux 5.3: a pid reused between the listing and here is the residual risk. */
        if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
            return cru_err_sys("cannot kill task %d", (int)pid);
        return 0;
    }
    if (fd < 0)
        return cru_err_sys("cannot open a pidfd for task %d", (int)pid);
    bool ours;
    int rc = cg_task_is_ours(cg, pid, &ours);
    if (rc == 0 && ours && syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) < 0 &&
        errno != ESRCH)
        rc = cru_err_sys("cannot kill task %d", (int)pid);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Kills each task listed in DIR/cgroup.procs; *LISTED is their number. */
static int cg_kill_listed(const struct sbx_cgroup *cg, const char *dir, struct cru_buf *procs,
                          size_t *listed)
{
    char path[PATH_MAX];
    int rc = cg_path(path, dir, "cgroup.procs");
    *listed = 0;
    cru_buf_reset(procs);
    if (rc < 0)
        return rc;
    if ((rc = cru_file_read(path, CG_PROCS_MAX, procs)) == CRU_ENOENT)
        return 0; /* removed already */
    if (rc < 0)
        return rc;
    char *save = NULL;
    for (char *line = strtok_r(procs->data, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        uint64_t pid;
        if ((rc = cru_parse_u64(line, 1, INT_MAX, &pid)) < 0)
            return cru_err_wrap(rc, "%s", path);
        if ((rc = cg_kill_task(cg, (pid_t)pid)) < 0)
            return rc;
        (*listed)++;
    }
    return 0;
}

static int cg_kill(const struct sbx_cgroup *cg)
{
    struct cru_buf procs = CRU_BUF_INIT;
    uint64_t deadline = cru_deadline_ms(CG_WAIT_MS);
    const char *pids = cg_dir_of(cg, CG_PIDS);
    bool fenced = false;
    int rc = 0;
    /* pids.max 0 makes every fork in the cgroup fail, so that without cgroup.kill the loop
     * below cannot be outrun by tasks that keep forking (or hop to new pids by forking and
     * exiting). The limit is put back at the end: the cgroup may be used again. */
    if (pids != NULL) {
        if ((rc = cg_write(pids, "pids.max", "0")) < 0 && errno != ENOENT)
            goto done;
        fenced = rc == 0;
    }
    /* cgroup.kill (v2, Linux 5.14) also kills what is forked while it runs; the loop below then
     * only waits for the tasks to go. */
    for (int i = 0; i < cg->ndirs; i++) {
        if ((rc = cg_write(cg->dirs[i].path, "cgroup.kill", "1")) < 0 && errno != ENOENT)
            goto done;
    }
    for (;;) {
        size_t left = 0, n;
        const char *where = NULL;
        for (int i = 0; i < cg->ndirs; i++) {
            if ((rc = cg_kill_listed(cg, cg->dirs[i].path, &procs, &n)) < 0)
                goto done;
            left += n;
            where = n ? cg->dirs[i].path : where;
        }
        if (left == 0)
            break;
        if (cru_deadline_passed(deadline)) {
            rc = cru_err_set(CRU_ETIMEDOUT, "%zu tasks still in %s %d ms after SIGKILL", left,
                             where, CG_WAIT_MS);
            goto done;
        }
        cru_sleep_ms(CG_POLL_MS);
    }
    rc = 0;
done:
    if (fenced) {
        struct cg_saved_err saved;
        cg_err_save(&saved);
        int put = cg->pids_max ? cg_write_u64(pids, "pids.max", cg->pids_max)
                               : cg_write(pids, "pids.max", "max");
        if (put < 0 && errno != ENOENT)
            cru_warn("cgroup crucible-%s: %s", cg->name, cru_err_msg());
        cg_err_restore(&saved);
    }
    cru_buf_free(&procs);
    return rc;
}

int sbx_cgroup_kill(struct sbx_cgroup *cg)
{
    int rc = cg_kill(cg);
    if (rc < 0)
        return cru_err_wrap(rc, "killing the tasks of cgroup crucible-%s", cg->name);
    return 0;
}

/* ---- accounting ---- */

static int cg_stats_memory(struct sbx_cgroup *cg, const char *dir, struct sbx_cgroup_stats *s)
{
    uint64_t peak = 0;
    int rc;
    if (cg->v2) {
        if ((rc = cg_read_u64(dir, "memory.current", &s->memory_current)) < 0 ||
            (rc = cg_read_key(dir, "memory.events", "oom_kill", &s->oom_kills)) < 0)
            return rc;
        /* memory.peak: Linux 5.19; before it, the highest value this module saw. */
        if ((rc = cg_read_u64(dir, "memory.peak", &peak)) < 0 && rc != CRU_ENOENT)
            return rc;
    } else {
        if ((rc = cg_read_u64(dir, "memory.usage_in_bytes", &s->memory_current)) < 0 ||
            (rc = cg_read_u64(dir, "memory.max_usage_in_bytes", &peak)) < 0 ||
            (rc = cg_read_key(dir, "memory.oom_control", "oom_kill", &s->oom_kills)) < 0)
            return rc;
    }
    if (s->memory_current > cg->peak)
        cg->peak = s->memory_current;
    s->memory_peak = peak > cg->peak ? peak : cg->peak;
    return 0;
}

int sbx_cgroup_stats(struct sbx_cgroup *cg, struct sbx_cgroup_stats *out)
{
    struct sbx_cgroup_stats s = { 0, 0, 0, 0, 0 };
    const char *mem = cg_dir_of(cg, CG_MEMORY), *pids = cg_dir_of(cg, CG_PIDS);
    const char *acct = cg_dir_of(cg, CG_CPUACCT);
    int rc = 0;
    if (mem && (rc = cg_stats_memory(cg, mem, &s)) < 0)
        goto done;
    if (pids && (rc = cg_read_u64(pids, "pids.current", &s.pids_current)) < 0)
        goto done;
    if (acct && cg->v2) {
        uint64_t usec = 0;
        if ((rc = cg_read_key(acct, "cpu.stat", "usage_usec", &usec)) < 0)
            goto done;
        s.cpu_usage_ns = usec > UINT64_MAX / 1000 ? UINT64_MAX : usec * 1000;
    } else if (acct && (rc = cg_read_u64(acct, "cpuacct.usage", &s.cpu_usage_ns)) < 0) {
        goto done;
    }
    *out = s;
done:
    if (rc < 0)
        return cru_err_wrap(rc, "reading the usage of cgroup crucible-%s", cg->name);
    return 0;
}

int sbx_cgroup_oom_kills(struct sbx_cgroup *cg, uint64_t *out)
{
    const char *mem = cg_dir_of(cg, CG_MEMORY);
    int rc = 0;
    *out = 0;
    if (mem && cg->v2)
        rc = cg_read_key(mem, "memory.events", "oom_kill", out);
    else if (mem)
        rc = cg_read_key(mem, "memory.oom_control", "oom_kill", out);
    return rc < 0 ? cru_err_wrap(rc, "reading the OOM kills of cgroup crucible-%s", cg->name) : 0;
}

const char *sbx_cgroup_version(const struct sbx_cgroup *cg)
{
    return cg->v2 ? "v2" : "v1";
}

const char *sbx_cgroup_dir(const struct sbx_cgroup *cg, const char *controller)
{
    if (controller == NULL)
        return cg->ndirs > 0 ? cg->dirs[0].path : NULL;
    for (int c = 0; c < CG_NCTRL; c++) {
        if (strcmp(controller, cg_ctrl_names[c]) == 0)
            return cg_dir_of(cg, (enum cg_ctrl)c);
    }
    return NULL;
}

void sbx_cgroup_free(struct sbx_cgroup *cg)
{
    if (cg == NULL)
        return;
    int saved_errno = errno;
    struct cg_saved_err saved;
    cg_err_save(&saved);
    if (cg_kill(cg) < 0)
        cru_warn("cgroup crucible-%s: %s", cg->name, cru_err_msg());
    cg_remove(cg);
    cg_err_restore(&saved);
    cg_release(cg);
    errno = saved_errno;
}

/* ---- sweep ---- */

typedef char cg_name_t[CG_NAME_MAX + 1];

static int cg_name_cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b); /* each element is a string */
}

/* Appends the NAMEs of the crucible-NAME directories in BASE to NAMES. */
static int cg_sweep_list(const char *base, cg_name_t *names, size_t *n)
{
    DIR *d = opendir(base);
    if (d == NULL && errno == ENOENT)
        return 0;
    if (d == NULL)
        return cru_err_sys("cannot list cgroup %s", base);
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name + strlen(CG_PREFIX);
        if (e->d_type != DT_DIR || !cru_str_starts_with(e->d_name, CG_PREFIX) ||
            cg_check_name(name) < 0) /* also skips the supervisor leaf */
            continue;
        if (*n == CG_SWEEP_MAX) {
            rc = cru_err_set(CRU_ELIMIT, "more than %d crucible-* cgroups in %s", CG_SWEEP_MAX,
                             base);
            break;
        }
        snprintf(names[(*n)++], sizeof(cg_name_t), "%s", name);
    }
    int saved = errno;
    closedir(d);
    errno = saved;
    return rc;
}

/* The cgroup NAME as it exists in every usable hierarchy of LAY. */
static int cg_open_existing(struct sbx_cgroup **out, const struct cg_layout *lay, const char *name)
{
    struct sbx_cgroup *cg;
    int rc = cg_alloc(&cg, name), idx;
    if (rc < 0)
        return rc;
    for (int h = -1; h < CG_NCTRL; h++) {
        const struct cg_hier *hier = h < 0 ? &lay->v2 : &lay->v1[h];
        char path[PATH_MAX];
        struct stat st;
        if (!hier->usable)
            continue;
        if (snprintf(path, sizeof(path), "%s/" CG_PREFIX "%s", hier->base, name) >= PATH_MAX ||
            stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if ((rc = cg_add_dir(cg, hier, false, &idx)) < 0) {
            cg_release(cg);
            return rc;
        }
        if (h < 0 || h == CG_PIDS) /* where cg_kill can stop forks */
            cg->ctrl_dir[CG_PIDS] = idx;
    }
    *out = cg;
    return 0;
}

int sbx_cgroup_sweep_from(bool (*is_stale)(const char *name, void *arg), void *arg,
                          const struct sbx_cgroup_sources *src)
{
    struct cg_layout *lay = malloc(sizeof(*lay));
    cg_name_t *names = calloc(CG_SWEEP_MAX, sizeof(cg_name_t));
    size_t n = 0, failed = 0;
    int rc = 0, removed = 0, first_rc = 0;
    char first[CG_NAME_MAX + 1] = "";
    if (lay == NULL || names == NULL) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory for a cgroup sweep");
        goto done;
    }
    if ((rc = cg_discover(src, lay)) < 0)
        goto done;
    for (int h = -1; h < CG_NCTRL; h++) {
        const struct cg_hier *hier = h < 0 ? &lay->v2 : &lay->v1[h];
        if (hier->usable && (rc = cg_sweep_list(hier->base, names, &n)) < 0)
            goto done;
    }
    qsort(names, n, sizeof(cg_name_t), cg_name_cmp);
    for (size_t i = 0; i < n; i++) {
        if ((i > 0 && strcmp(names[i], names[i - 1]) == 0) || !is_stale(names[i], arg))
            continue;
        struct sbx_cgroup *cg;
        if ((rc = cg_open_existing(&cg, lay, names[i])) < 0)
            goto done;
        rc = cg_kill(cg);
        if (rc < 0)
            cru_warn("sweeping cgroup crucible-%s: %s", names[i], cru_err_msg());
        if (cg_remove(cg) > 0 && rc == 0)
            rc = CRU_EIO;
        cg_release(cg);
        if (rc == 0) {
            removed++;
            continue;
        }
        if (failed++ == 0) {
            first_rc = rc;
            snprintf(first, sizeof(first), "%s", names[i]);
        }
    }
    rc = 0;
    if (failed > 0)
        rc = cru_err_set(first_rc,
                         "%zu stale cgroups could not be removed, the first "
                         "crucible-%s (see the warnings)",
                         failed, first);
done:
    free(names);
    free(lay);
    if (rc < 0)
        return cru_err_wrap(rc, "sweeping crucible's cgroups");
    return removed;
}

int sbx_cgroup_sweep(bool (*is_stale)(const char *name, void *arg), void *arg)
{
    const struct sbx_cgroup_sources src = SBX_CGROUP_SOURCES_PROC;
    return sbx_cgroup_sweep_from(is_stale, arg, &src);
}
