/* recorder/export: reads trajectory files episode by episode (recorder/episode rebuilds the
 * branches) and writes chat messages as JSON lines, training samples as msgpack maps, or the
 * samples of each group merged into a prefix tree. It never re-tokenizes: the ids, masks and
 * log-probs are the recorded ones.
 */
#include "recorder/export.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <msgpack.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/str.h"
#include "recorder/episode.h"
#include "recorder/reader.h"

/* Folders nested deeper than this are not searched (a link loop cannot recurse: links are not
 * followed). */
#define MAX_DIR_DEPTH 16
/* The most files one export reads. */
#define MAX_FILES 1000000

int rec_export_format_from(const char *name)
{
    if (strcmp(name, "jsonl") == 0)
        return REC_EXPORT_JSONL;
    if (strcmp(name, "tokens") == 0)
        return REC_EXPORT_TOKENS;
    if (strcmp(name, "tree") == 0)
        return REC_EXPORT_TREE;
    return -1;
}

/* ---- finding files ---- */

struct names {
    char **v;
    size_t n, cap;
};

static int names_add(struct names *ns, const char *path)
{
    if (ns->n >= MAX_FILES)
        return cru_err_set(CRU_ELIMIT, "more than %d trajectory files", MAX_FILES);
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 64;
        char **v = realloc(ns->v, cap * sizeof(*v));
        if (!v)
            return cru_err_set(CRU_ENOMEM, "out of memory");
        ns->v = v;
        ns->cap = cap;
    }
    if (!(ns->v[ns->n] = strdup(path)))
        return cru_err_set(CRU_ENOMEM, "out of memory");
    ns->n++;
    return 0;
}

static int scan_dir(struct names *ns, const char *dir, int depth)
{
    if (depth > MAX_DIR_DEPTH)
        return cru_err_set(CRU_ELIMIT, "%s: folders nested deeper than %d", dir, MAX_DIR_DEPTH);
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0)
        return cru_err_sys("reading folder %s", dir);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        char *path = NULL;
        struct stat st;
        if (rc < 0 || name[0] == '.' || cru_str_printf(&path, "%s/%s", dir, name) < 0 ||
            lstat(path, &st) < 0) {
            free(path);
            continue;
        }
        if (S_ISDIR(st.st_mode))
            rc = scan_dir(ns, path, depth + 1);
        else if (S_ISREG(st.st_mode) && cru_str_ends_with(name, ".traj"))
            rc = names_add(ns, path);
        free(path);
    }
    for (int i = 0; i < n; i++)
        free(ents[i]);
    free(ents);
    return rc;
}

int rec_collect_files(const char *const *srcs, size_t n_srcs, char ***out, size_t *n)
{
    struct names ns = { 0 };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n_srcs; i++) {
        struct stat st;
        if (stat(srcs[i], &st) < 0)
            rc = cru_err_sys("%s", srcs[i]);
        else if (S_ISDIR(st.st_mode))
            rc = scan_dir(&ns, srcs[i], 0);
        else
            rc = names_add(&ns, srcs[i]);
    }
    if (rc < 0) {
        for (size_t i = 0; i < ns.n; i++)
            free(ns.v[i]);
        free(ns.v);
        return rc;
    }
    *out = ns.v;
    *n = ns.n;
    return 0;
}

/* ---- output ---- */

/* Output goes to a temporary file beside OUT, renamed over it once complete, so a failed or
 * interrupted export never leaves a file that looks whole. */
struct sink {
    FILE *f;
    char *path, *tmp;
    msgpack_packer pk;
};

static int sink_write(void *data, const char *buf, size_t len)
{
    struct sink *s = data;
    return fwrite(buf, 1, len, s->f) == len ? 0 : -1;
}

static int sink_open(struct sink *s, const char *path)
{
    memset(s, 0, sizeof(*s));
    if (strcmp(path, "-") == 0) {
        s->f = stdout;
    } else {
        if (cru_str_printf(&s->path, "%s", path) < 0 ||
            cru_str_printf(&s->tmp, "%s.partial-XXXXXX", path) < 0)
            return CRU_ENOMEM;
        int fd = mkostemp(s->tmp, O_CLOEXEC);
        if (fd < 0 || !(s->f = fdopen(fd, "wb"))) {
            int rc = cru_err_sys("creating a file beside %s", path);
            if (fd >= 0)
                close(fd);
            free(s->path);
            free(s->tmp);
            s->tmp = NULL;
            return rc;
        }
        (void)fchmod(fd, 0644);
    }
    msgpack_packer_init(&s->pk, s, sink_write);
    return 0;
}

/* Completes the output (COMMIT) or throws it away. */
static int sink_close(struct sink *s, bool commit)
{
    int rc = 0;
    if (!s->f)
        return 0;
    if (fflush(s->f) != 0 || ferror(s->f))
        rc = cru_err_sys("writing %s", s->path ? s->path : "the output");
    if (s->f != stdout) {
        if (rc == 0 && commit && fsync(fileno(s->f)) < 0)
            rc = cru_err_sys("writing %s", s->path);
        if (fclose(s->f) != 0 && rc == 0)
            rc = cru_err_sys("writing %s", s->path);
        if (rc == 0 && commit && rename(s->tmp, s->path) < 0)
            rc = cru_err_sys("renaming the output to %s", s->path);
        if (rc < 0 || !commit)
            unlink(s->tmp);
    }
    free(s->path);
    free(s->tmp);
    s->f = NULL;
    return rc;
}

static int out_err(struct sink *s)
{
    return cru_err_sys("writing %s", s->path ? s->path : "the output");
}

/* ---- jsonl ---- */

static int write_jsonl(struct sink *s, const struct rec_ep *e)
{
    json_t *meta = json_deep_copy(e->header);
    if (meta) {
        json_object_del(meta, "messages");
        json_object_del(meta, "type");
        json_object_del(meta, "seq");
    }
    json_t *line = json_pack(
        "{s:s, s:s, s:s?, s:O, s:o, s:O?, s:s, s:s?, s:o}", "episode_id", e->id, "group_id",
        e->group, "task_id", e->task, "messages", e->messages, "reward",
        e->has_reward ? json_real(e->reward) : json_null(), "breakdown", e->breakdown, "status",
        e->status, "message", e->message, "metadata", meta ? meta : json_null());
    if (!line)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    int rc = json_dumpf(line, s->f, JSON_COMPACT) < 0 || fputc('\n', s->f) == EOF ? out_err(s) : 0;
    json_decref(line);
    return rc;
}

/* ---- tokens ---- */

static int pk(int rc)
{
    return rc == 0 ? 0 : cru_err_set(CRU_EIO, "writing the output failed");
}

static int pack_kv_str(msgpack_packer *p, const char *k, const char *v)
{
    return pk(rec_pack_kv_str(p, k, v));
}

static int pack_kv_u64(msgpack_packer *p, const char *k, uint64_t v)
{
    int rc = rec_pack_key(p, k);
    return rc ? rc : pk(msgpack_pack_uint64(p, v));
}

static int pack_reward(msgpack_packer *p, const struct rec_ep *e)
{
    int rc = rec_pack_key(p, "reward");
    return rc ? rc : pk(e->has_reward ? msgpack_pack_double(p, e->reward) : msgpack_pack_nil(p));
}

static int pack_u8s(msgpack_packer *p, const uint8_t *v, size_t n)
{
    int rc = pk(msgpack_pack_bin(p, n));
    return rc ? rc : pk(msgpack_pack_bin_body(p, v, n));
}

/* One sample: the tokens of branch B of episode E. */
static int write_sample(struct sink *s, const struct rec_ep *e, uint32_t b)
{
    const struct rec_branch *br = &e->branches[b];
    msgpack_packer *p = &s->pk;
    int rc = pk(msgpack_pack_map(p, 12));
    rc = rc ? rc : pack_kv_str(p, "episode_id", e->id);
    rc = rc ? rc : pack_kv_str(p, "group_id", e->group);
    rc = rc ? rc : pack_kv_str(p, "task_id", e->task);
    rc = rc ? rc : pack_kv_u64(p, "branch", b);
    rc = rc ? rc : rec_pack_key(p, "input_ids");
    rc = rc ? rc : rec_pack_i32s(p, br->ids, br->len);
    rc = rc ? rc : rec_pack_key(p, "loss_mask");
    rc = rc ? rc : pack_u8s(p, br->mask, br->len);
    rc = rc ? rc : rec_pack_key(p, "logprobs");
    rc = rc ? rc : rec_pack_f32s(p, br->logprobs, br->len);
    rc = rc ? rc : pack_reward(p, e);
    rc = rc ? rc : pack_kv_u64(p, "policy_version", br->policy_min);
    rc = rc ? rc : pack_kv_u64(p, "policy_version_max", br->policy_max);
    rc = rc ? rc : pack_kv_str(p, "status", e->status);
    rc = rc ? rc : pack_kv_u64(p, "sampled", br->sampled);
    return rc;
}

/* ---- tree ---- */

/* A token of the prefix tree. Two samples share a node only when the token, its mask and its
 * log-prob bits are all equal, so merging never changes what a trainer sees. */
struct node {
    int32_t tok;
    uint8_t mask;
    uint32_t lp; /* the log-prob's bits */
    int32_t parent, child, sibling;
};

struct sample {
    struct rec_ep *ep; /* shared by the episode's samples (refcounted below) */
    uint32_t branch;
    int32_t last; /* node index of the sample's last token */
};

struct group {
    char *id;
    struct node *nodes;
    size_t n_nodes, cap_nodes;
    int32_t root_child; /* first child of the virtual root */
    struct sample *samples;
    size_t n_samples, cap_samples;
};

struct tree {
    struct group *groups;
    size_t n, cap;
    struct rec_ep **eps; /* every episode kept, for freeing */
    size_t n_eps, cap_eps;
};

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static int grow(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    if (c > INT32_MAX)
        return cru_err_set(CRU_ELIMIT, "a tree of more than %d tokens", INT32_MAX);
    void *n = realloc(*v, c * size);
    if (!n)
        return cru_err_set(CRU_ENOMEM, "out of memory for the prefix tree");
    *v = n;
    *cap = c;
    return 0;
}

static struct group *find_group(struct tree *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->groups[i].id, id) == 0)
            return &t->groups[i];
    }
    if (grow((void **)&t->groups, &t->cap, t->n + 1, sizeof(*t->groups)) < 0)
        return NULL;
    struct group *g = &t->groups[t->n];
    memset(g, 0, sizeof(*g));
    g->root_child = -1;
    if (!(g->id = strdup(id))) {
        cru_err_set(CRU_ENOMEM, "out of memory");
        return NULL;
    }
    t->n++;
    return g;
}

static int tree_insert(struct group *g, struct rec_ep *e, uint32_t b)
{
    const struct rec_branch *br = &e->branches[b];
    int32_t parent = -1;
    for (uint64_t i = 0; i < br->len; i++) {
        uint32_t lp = f32_bits(br->logprobs[i]);
        int32_t *link = parent < 0 ? &g->root_child : &g->nodes[parent].child;
        int32_t at = *link;
        while (at >= 0 && !(g->nodes[at].tok == br->ids[i] && g->nodes[at].mask == br->mask[i] &&
                            g->nodes[at].lp == lp))
            at = g->nodes[at].sibling;
        if (at < 0) {
            if (grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(*g->nodes)) < 0)
                return CRU_ENOMEM;
            link = parent < 0 ? &g->root_child : &g->nodes[parent].child; /* may have moved */
            at = (int32_t)g->n_nodes++;
            g->nodes[at] = (struct node){ br->ids[i], br->mask[i], lp, parent, -1, *link };
            *link = at;
        }
        parent = at;
    }
    if (grow((void **)&g->samples, &g->cap_samples, g->n_samples + 1, sizeof(*g->samples)) < 0)
        return CRU_ENOMEM;
    g->samples[g->n_samples++] = (struct sample){ e, b, parent };
    return 0;
}

/* Packs a group: nodes in depth-first order (a parent before its children, each path's tokens
 * contiguous until it branches), with each token's parent and depth. */
static int write_group(struct sink *s, const struct group *g, uint64_t *tokens_out)
{
    size_t n = g->n_nodes;
    int32_t *packed = malloc((n ? n : 1) * sizeof(*packed)); /* node -> packed index */
    int32_t *stack = malloc((n ? n : 1) * sizeof(*stack));
    int32_t *ids = malloc((n ? n : 1) * sizeof(*ids));
    int32_t *par = malloc((n ? n : 1) * sizeof(*par));
    int32_t *pos = malloc((n ? n : 1) * sizeof(*pos));
    uint8_t *mask = malloc(n ? n : 1);
    float *lps = malloc((n ? n : 1) * sizeof(*lps));
    int rc = 0;
    if (!packed || !stack || !ids || !par || !pos || !mask || !lps) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory for the prefix tree");
        goto done;
    }
    size_t top = 0, k = 0;
    /* Children are linked newest first; pushing them in that order pops the oldest first. */
    for (int32_t c = g->root_child; c >= 0; c = g->nodes[c].sibling)
        stack[top++] = c;
    while (top) {
        int32_t at = stack[--top];
        const struct node *nd = &g->nodes[at];
        packed[at] = (int32_t)k;
        ids[k] = nd->tok;
        mask[k] = nd->mask;
        memcpy(&lps[k], &nd->lp, sizeof(float));
        par[k] = nd->parent < 0 ? -1 : packed[nd->parent];
        pos[k] = nd->parent < 0 ? 0 : pos[packed[nd->parent]] + 1;
        k++;
        for (int32_t c = nd->child; c >= 0; c = g->nodes[c].sibling)
            stack[top++] = c;
    }
    msgpack_packer *p = &s->pk;
    rc = pk(msgpack_pack_map(p, 8));
    rc = rc ? rc : pack_kv_str(p, "group_id", g->id);
    rc = rc ? rc : pack_kv_u64(p, "n_samples", g->n_samples);
    rc = rc ? rc : rec_pack_key(p, "input_ids");
    rc = rc ? rc : rec_pack_i32s(p, ids, n);
    rc = rc ? rc : rec_pack_key(p, "loss_mask");
    rc = rc ? rc : pack_u8s(p, mask, n);
    rc = rc ? rc : rec_pack_key(p, "logprobs");
    rc = rc ? rc : rec_pack_f32s(p, lps, n);
    rc = rc ? rc : rec_pack_key(p, "position_ids");
    rc = rc ? rc : rec_pack_i32s(p, pos, n);
    rc = rc ? rc : rec_pack_key(p, "parent");
    rc = rc ? rc : rec_pack_i32s(p, par, n);
    rc = rc ? rc : rec_pack_key(p, "samples");
    rc = rc ? rc : pk(msgpack_pack_array(p, g->n_samples));
    for (size_t i = 0; rc == 0 && i < g->n_samples; i++) {
        const struct sample *sm = &g->samples[i];
        const struct rec_branch *br = &sm->ep->branches[sm->branch];
        rc = pk(msgpack_pack_map(p, 8));
        rc = rc ? rc : pack_kv_str(p, "episode_id", sm->ep->id);
        rc = rc ? rc : pack_kv_str(p, "task_id", sm->ep->task);
        rc = rc ? rc : pack_kv_u64(p, "branch", sm->branch);
        rc = rc ? rc : pack_reward(p, sm->ep);
        rc = rc ? rc : pack_kv_u64(p, "policy_version", br->policy_min);
        rc = rc ? rc : pack_kv_str(p, "status", sm->ep->status);
        rc = rc ? rc : rec_pack_key(p, "last");
        rc = rc ? rc : pk(msgpack_pack_int64(p, sm->last < 0 ? -1 : packed[sm->last]));
        rc = rc ? rc : pack_kv_u64(p, "length", br->len);
    }
    *tokens_out += n;
done:
    free(packed);
    free(stack);
    free(ids);
    free(par);
    free(pos);
    free(mask);
    free(lps);
    return rc;
}

static void tree_free(struct tree *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->groups[i].id);
        free(t->groups[i].nodes);
        free(t->groups[i].samples);
    }
    free(t->groups);
    for (size_t i = 0; i < t->n_eps; i++)
        rec_ep_free(t->eps[i]);
    free(t->eps);
}

/* ---- the export loop ---- */

struct run {
    enum rec_export_format fmt;
    struct sink sink;
    struct tree tree;
    struct rec_export_stats *st;
};

/* Takes a complete episode: written at once, or kept for the tree. *KEPT is set when the
 * tree took ownership. */
static int take(struct run *x, struct rec_ep *e, bool *kept)
{
    *kept = false;
    x->st->episodes++;
    if (x->fmt == REC_EXPORT_JSONL)
        return write_jsonl(&x->sink, e);
    for (uint32_t b = 0; b < e->n_branches; b++) {
        if (e->branches[b].sampled == 0)
            continue; /* nothing sampled: nothing to train on */
        x->st->samples++;
        x->st->tokens += e->branches[b].len;
        if (x->fmt == REC_EXPORT_TOKENS) {
            x->st->tokens_out += e->branches[b].len;
            int rc = write_sample(&x->sink, e, b);
            if (rc < 0)
                return rc;
            continue;
        }
        struct group *g = find_group(&x->tree, e->group);
        if (!g || tree_insert(g, e, b) < 0)
            return cru_err_code();
        *kept = true;
    }
    if (*kept) {
        if (grow((void **)&x->tree.eps, &x->tree.cap_eps, x->tree.n_eps + 1, sizeof(*x->tree.eps)) <
            0) {
            *kept = false; /* the caller frees it; the tree's samples must not outlive it */
            return CRU_ENOMEM;
        }
        x->tree.eps[x->tree.n_eps++] = e;
    }
    return 0;
}

/* Exports the complete episodes of one file. A damaged file gives up its intact episodes and
 * a warning; an episode cut short by the damage is not exported. */
static int export_file(struct run *x, const char *path)
{
    struct rec_reader *r = NULL;
    struct rec_ep *e = NULL;
    struct rec_record rec;
    unsigned flags = x->fmt == REC_EXPORT_JSONL ? REC_EP_MESSAGES : REC_EP_TOKENS;
    int rc = rec_reader_open(&r, path);
    if (rc < 0) {
        cru_warn("export: skipping %s: %s", path, cru_err_msg());
        x->st->damaged++;
        return 0;
    }
    x->st->files++;
    while ((rc = rec_reader_next(r, &rec)) > 0) {
        if (rec.type == REC_EPISODE) {
            if (e) {
                x->st->incomplete++;
                rec_ep_free(e);
                e = NULL;
            }
            rc = rec_ep_new(&e, &rec, flags);
        } else if (e) {
            rc = rec_ep_add(e, &rec);
        } else {
            continue; /* a record outside any episode: verify reports it */
        }
        if (rc < 0)
            break;
        if (e && e->ended) {
            bool kept;
            rc = take(x, e, &kept);
            if (!kept)
                rec_ep_free(e);
            e = NULL;
            if (rc < 0) {
                rec_reader_free(r);
                return rc; /* the output failed: the export cannot go on */
            }
        }
    }
    if (rc < 0) {
        cru_warn("export: %s: %s (the episodes before it are exported)", path, cru_err_msg());
        x->st->damaged++;
    }
    if (e) {
        x->st->incomplete++;
        rec_ep_free(e);
    }
    rec_reader_free(r);
    return 0;
}

int rec_export(char *const *files, size_t n_files, enum rec_export_format fmt, const char *out,
               struct rec_export_stats *stats)
{
    struct run x = { .fmt = fmt, .st = stats };
    memset(stats, 0, sizeof(*stats));
    int rc = sink_open(&x.sink, out);
    if (rc < 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < n_files; i++)
        rc = export_file(&x, files[i]);
    for (size_t i = 0; rc == 0 && i < x.tree.n; i++) {
        stats->groups++;
        rc = write_group(&x.sink, &x.tree.groups[i], &stats->tokens_out);
    }
    if (rc == 0 && stats->files == 0)
        rc = cru_err_set(CRU_EINVAL, "no trajectory file could be read");
    tree_free(&x.tree);
    int crc = sink_close(&x.sink, rc == 0);
    return rc < 0 ? rc : crc;
}
