/* Tests for model/init and the loading of sharded checkpoints: a checkpoint split into several
 * files loads to the same weights, byte for byte, as the same seed in one file; the index is
 * the one save_pretrained writes; a hostile or broken index is refused with an error naming
 * the file and the tensor; the presets plan the published checkpoints' numbers (without
 * writing their tens of GB); a write that fails leaves no file under a final name. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/str.h"
#include "model/init.h"
#include "model/model.h"

static char *tmp_root(void)
{
    char tmpl[] = "/tmp/crucible-test-init-XXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    return strdup(tmpl);
}

static char *path_of(const char *dir, const char *name)
{
    char *p = NULL;
    cr_assert_eq(cru_str_printf(&p, "%s/%s", dir, name), 0);
    return p;
}

/* The small checkpoint of these tests: about 270 KB in bf16. */
static struct mdl_init_opts small_opts(uint64_t shard_size)
{
    struct mdl_init_opts o = MDL_INIT_OPTS_INIT;
    o.seed = 7;
    o.vocab = 100;
    o.shard_size = shard_size;
    return o;
}

static char *write_small(const char *root, const char *name, uint64_t shard_size)
{
    char *dir = path_of(root, name);
    struct mdl_init_opts o = small_opts(shard_size);
    cr_assert_eq(mdl_init_write(dir, &o), 0, "%s", cru_err_msg());
    return dir;
}

static struct mdl_model *load_ok(const char *dir)
{
    struct mdl_model *m = NULL;
    cr_assert_eq(mdl_model_load(&m, dir), 0, "%s", cru_err_msg());
    return m;
}

static void same_weight(const struct mdl_weight *a, const struct mdl_weight *b, const char *what)
{
    cr_assert_eq(a->dtype, b->dtype, "%s", what);
    cr_assert_eq(a->rows, b->rows, "%s", what);
    cr_assert_eq(a->cols, b->cols, "%s", what);
    size_t bytes = (size_t)a->rows * a->cols * (a->dtype == MDL_DT_F32 ? 4 : 2);
    cr_assert(memcmp(a->data, b->data, bytes) == 0, "%s differs", what);
}

static void same_model(const struct mdl_model *a, const struct mdl_model *b)
{
    cr_assert_eq(a->n_params, b->n_params);
    cr_assert_eq(a->weight_bytes, b->weight_bytes);
    same_weight(&a->embed, &b->embed, "embed");
    same_weight(&a->final_norm, &b->final_norm, "final norm");
    same_weight(&a->lm_head, &b->lm_head, "lm_head");
    for (uint32_t i = 0; i < a->cfg.layers; i++) {
        const struct mdl_layer *x = &a->layers[i], *y = &b->layers[i];
        const struct mdl_weight *wx[] = { &x->attn_norm, &x->q,      &x->k,        &x->v,     &x->o,
                                          &x->q_norm,    &x->k_norm, &x->mlp_norm, &x->router };
        const struct mdl_weight *wy[] = { &y->attn_norm, &y->q,      &y->k,        &y->v,     &y->o,
                                          &y->q_norm,    &y->k_norm, &y->mlp_norm, &y->router };
        for (size_t k = 0; k < sizeof(wx) / sizeof(wx[0]); k++)
            same_weight(wx[k], wy[k], "a layer's weight");
        for (uint32_t e = 0; e < a->cfg.experts; e++) {
            same_weight(&x->experts[e].gate, &y->experts[e].gate, "an expert's gate");
            same_weight(&x->experts[e].up, &y->experts[e].up, "an expert's up");
            same_weight(&x->experts[e].down, &y->experts[e].down, "an expert's down");
        }
    }
}

/* Split into files of at most 64 KB of tensors, the checkpoint holds the same bytes as in one
 * file, in the files and with the index save_pretrained would write. */
Test(model_init, sharded_equals_unsharded)
{
    char *root = tmp_root();
    char *one = write_small(root, "one", 0), *many = write_small(root, "many", 64 << 10);
    struct mdl_init_plan *p = NULL;
    struct mdl_init_opts o = small_opts(64 << 10);
    cr_assert_eq(mdl_init_plan_new(&p, &o), 0, "%s", cru_err_msg());
    cr_assert_geq(p->n_files, 4, "%zu files", p->n_files);

    struct mdl_model *a = load_ok(one), *b = load_ok(many);
    cr_assert_eq(a->n_maps, 1);
    cr_assert_eq(b->n_maps, p->n_files);
    same_model(a, b);
    mdl_model_free(a);
    mdl_model_free(b);

    /* The files: named as HuggingFace names them, none over the shard size but for its
     * header, no partial file left; one file and no index for the unsharded one. */
    uint64_t data = 0;
    for (size_t i = 0; i < p->n_files; i++) {
        char name[64];
        snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, p->n_files);
        cr_assert_str_eq(p->files[i].name, name);
        char *f = path_of(many, name), *partial = NULL;
        cr_assert_eq(cru_str_printf(&partial, "%s.partial", f), 0);
        struct stat st;
        cr_assert_eq(stat(f, &st), 0, "%s: %s", f, strerror(errno));
        cr_assert_eq((uint64_t)st.st_size, p->files[i].bytes);
        cr_assert_leq(p->files[i].data_bytes, 64 << 10);
        cr_assert_neq(access(partial, F_OK), 0, "%s is left", partial);
        data += p->files[i].data_bytes;
        free(f);
        free(partial);
    }
    cr_assert_eq(data, p->total_size);
    char *idx1 = path_of(one, "model.safetensors.index.json");
    cr_assert_neq(access(idx1, F_OK), 0, "an index for a checkpoint in one file");

    /* The index: metadata.total_size and a weight_map of every tensor, sorted by name, each to
     * the file that holds it; the embedding in the first file and lm_head in the last, as the
     * state_dict orders them. */
    char *idx = path_of(many, "model.safetensors.index.json");
    json_t *root_json = NULL;
    cr_assert_eq(cru_json_load_file(&root_json, idx, 0), 0, "%s", cru_err_msg());
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(root_json, "metadata"), "total_size")),
        (json_int_t)p->total_size);
    json_t *map = json_object_get(root_json, "weight_map");
    cr_assert_eq(json_object_size(map), p->n_tensors);
    const char *key, *prev = "";
    json_t *v;
    json_object_foreach(map, key, v)
    {
        cr_assert_lt(strcmp(prev, key), 0, "'%s' after '%s'", key, prev);
        prev = key;
    }
    cr_assert_str_eq(json_string_value(json_object_get(map, "model.embed_tokens.weight")),
                     p->files[0].name);
    cr_assert_str_eq(json_string_value(json_object_get(map, "lm_head.weight")),
                     p->files[p->n_files - 1].name);
    json_decref(root_json);

    mdl_init_plan_free(p);
    cru_remove_tree(root);
    free(idx);
    free(idx1);
    free(one);
    free(many);
    free(root);
}

/* Rewrites DIR's index through EDIT, then expects the load to fail with CODE and MSG, or to
 * succeed when CODE is 0. */
static void index_edit(const char *dir, void (*edit)(json_t *root, void *arg), void *arg, int code,
                       const char *msg)
{
    char *idx = path_of(dir, "model.safetensors.index.json"), *keep = NULL;
    cr_assert_eq(cru_str_printf(&keep, "%s.keep", idx), 0);
    json_t *root = NULL;
    cr_assert_eq(cru_json_load_file(&root, idx, 0), 0, "%s", cru_err_msg());
    edit(root, arg);
    cr_assert_eq(rename(idx, keep), 0);
    cr_assert_eq(cru_json_write_file(idx, root, 0644), 0, "%s", cru_err_msg());
    json_decref(root);
    struct mdl_model *m = (struct mdl_model *)&m;
    int rc = mdl_model_load(&m, dir);
    if (code == 0) {
        cr_assert_eq(rc, 0, "%s", cru_err_msg());
        mdl_model_free(m);
    } else {
        cr_assert_eq(rc, code, "rc %d (%s), expected %d", rc, cru_err_msg(), code);
        cr_assert_null(m);
        cr_assert(strstr(cru_err_msg(), msg), "message '%s' lacks '%s'", cru_err_msg(), msg);
    }
    cr_assert_eq(rename(keep, idx), 0);
    free(keep);
    free(idx);
}

static void edit_none(json_t *root, void *arg)
{
    (void)root, (void)arg;
}

static void edit_set(json_t *root, void *arg)
{
    const char *const *kv = arg;
    json_object_set_new(json_object_get(root, "weight_map"), kv[0], json_string(kv[1]));
}

static void edit_del(json_t *root, void *arg)
{
    json_object_del(json_object_get(root, "weight_map"), arg);
}

static void edit_total(json_t *root, void *arg)
{
    (void)arg;
    json_object_set_new(json_object_get(root, "metadata"), "total_size", json_integer(1));
}

Test(model_init, hostile_index)
{
    char *root = tmp_root(), *dir = write_small(root, "ck", 64 << 10);
    const char *emb = "model.embed_tokens.weight", *f1 = NULL, *f2 = NULL;
    struct mdl_init_plan *p = NULL;
    struct mdl_init_opts o = small_opts(64 << 10);
    cr_assert_eq(mdl_init_plan_new(&p, &o), 0, "%s", cru_err_msg());
    f1 = p->files[0].name;
    f2 = p->files[1].name;
    char msg[512];

    /* The control: the index as written loads. */
    index_edit(dir, edit_none, NULL, 0, NULL);
    /* A file outside the folder, by a path or by "..". */
    const char *up[] = { emb, "../ck/model-00001-of-00002.safetensors" };
    index_edit(dir, edit_set, up, CRU_EUNSAFE,
               "weight_map.model.embed_tokens.weight: expected a file name in the folder");
    const char *dots[] = { emb, ".." };
    index_edit(dir, edit_set, dots, CRU_EUNSAFE, "expected a file name in the folder");
    /* A file that is not there. */
    const char *gone[] = { emb, "model-00009-of-00009.safetensors" };
    index_edit(dir, edit_set, gone, CRU_ENOENT,
               "model-00009-of-00009.safetensors, named by model.safetensors.index.json");
    /* A tensor in another file than the index says. */
    const char *moved[] = { emb, f2 };
    snprintf(msg, sizeof(msg),
             "model.safetensors.index.json puts tensor 'model.embed_tokens.weight' in %s, but it "
             "is in %s",
             f2, f1);
    index_edit(dir, edit_set, moved, CRU_EINVAL, msg);
    /* A tensor the index names that no file holds. */
    const char *ghost[] = { "model.layers.0.ghost.weight", f1 };
    snprintf(msg, sizeof(msg),
             "model.safetensors.index.json puts tensor 'model.layers.0.ghost.weight' in %s, "
             "which does not hold it",
             f1);
    index_edit(dir, edit_set, ghost, CRU_EINVAL, msg);
    /* A tensor of a file that the index leaves out. */
    snprintf(msg, sizeof(msg),
             "tensor 'model.embed_tokens.weight' of %s is not in model.safetensors.index.json", f1);
    char emb_name[] = "model.embed_tokens.weight";
    index_edit(dir, edit_del, emb_name, CRU_EINVAL, msg);
    /* A total_size that does not add up is only reported. */
    index_edit(dir, edit_total, NULL, 0, NULL);

    mdl_init_plan_free(p);
    cru_remove_tree(root);
    free(dir);
    free(root);
}

/* The published Qwen3-30B-A3B: 30.5 billion parameters, 61,064,245,248 bytes in bf16 (the
 * total_size of its published index), 18,867 tensors; planned, not written. */
Test(model_init, preset_qwen3_30b_a3b)
{
    struct mdl_init_opts o = MDL_INIT_OPTS_INIT;
    cr_assert_eq(mdl_init_preset(&o, "qwen3-30b-a3b"), 0, "%s", cru_err_msg());
    struct mdl_init_plan *p = NULL;
    cr_assert_eq(mdl_init_plan_new(&p, &o), 0, "%s", cru_err_msg());
    cr_assert_eq(p->params, 30532122624ull);
    cr_assert_eq(p->total_size, 61064245248ull);
    cr_assert_eq(p->n_tensors, 18867);
    cr_assert_eq(p->n_files, 13);
    uint64_t sum = 0;
    for (size_t i = 0; i < p->n_files; i++) {
        cr_assert_leq(p->files[i].data_bytes, MDL_INIT_SHARD_SIZE);
        sum += p->files[i].data_bytes;
    }
    cr_assert_eq(sum, p->total_size);
    cr_assert_not_null(p->index);

    /* Its config.json is read back as the published one is. */
    struct mdl_config c;
    cr_assert_eq(mdl_config_parse(&c, p->config, strlen(p->config), "config.json"), 0, "%s",
                 cru_err_msg());
    cr_assert_eq(c.arch, MDL_ARCH_QWEN3_MOE);
    cr_assert_eq(c.vocab, 151936);
    cr_assert_eq(c.hidden, 2048);
    cr_assert_eq(c.layers, 48);
    cr_assert_eq(c.heads, 32);
    cr_assert_eq(c.kv_heads, 4);
    cr_assert_eq(c.head_dim, 128);
    cr_assert_eq(c.experts, 128);
    cr_assert_eq(c.top_k, 8);
    cr_assert_eq(c.moe_inter, 768);
    cr_assert_eq(c.max_pos, 40960);
    cr_assert_eq(c.rotary_dim, 128);
    cr_assert(c.norm_topk_prob);
    cr_assert(!c.tied);
    cr_assert_eq(c.rope_theta, 1e6);
    cr_assert_float_eq(c.rms_eps, 1e-6f, 1e-12);
    cr_assert_eq(c.n_eos, 1);
    cr_assert_eq(c.eos[0], 151645);
    mdl_config_free(&c);
    mdl_init_plan_free(p);

    /* One layer, as benchmarks write it: one file of 2.5 GB, no index. */
    o.layers = 1;
    cr_assert_eq(mdl_init_plan_new(&p, &o), 0, "%s", cru_err_msg());
    cr_assert_eq(p->n_files, 1);
    cr_assert_str_eq(p->files[0].name, "model.safetensors");
    cr_assert_null(p->index);
    cr_assert_eq(p->total_size, 2 * (2 * 151936ull * 2048 + 2048 + 623120640ull));
    mdl_init_plan_free(p);
}

Test(model_init, preset_minimax_m2)
{
    struct mdl_init_opts o = MDL_INIT_OPTS_INIT;
    cr_assert_eq(mdl_init_preset(&o, "minimax-m2"), 0, "%s", cru_err_msg());
    struct mdl_init_plan *p = NULL;
    cr_assert_eq(mdl_init_plan_new(&p, &o), 0, "%s", cru_err_msg());
    /* About 229 billion parameters. */
    cr_assert(p->params > 228e9 && p->params < 230e9, "%llu", (unsigned long long)p->params);
    struct mdl_config c;
    cr_assert_eq(mdl_config_parse(&c, p->config, strlen(p->config), "config.json"), 0, "%s",
                 cru_err_msg());
    cr_assert_eq(c.arch, MDL_ARCH_MINIMAX_M2);
    cr_assert_eq(c.experts, 256);
    cr_assert_eq(c.rotary_dim, 64);
    cr_assert(c.routing_bias);
    mdl_config_free(&c);
    mdl_init_plan_free(p);
    cr_assert_eq(mdl_init_preset(&o, "llama"), CRU_EINVAL);
    cr_assert(strstr(cru_err_msg(), "unknown preset 'llama' (qwen3-30b-a3b, minimax-m2)"), "%s",
              cru_err_msg());
}

/* A write cut short by a file size limit (standing in for a full disk) leaves no safetensors
 * file under its final name, no partial file, and no config.json; the same write without the
 * limit then succeeds in the same folder. */
Test(model_init, failed_write_leaves_no_checkpoint)
{
    char *root = tmp_root(), *dir = path_of(root, "ck");
    struct mdl_init_opts o = small_opts(0);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 100 << 10;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = mdl_init_write(dir, &o);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    cr_assert_lt(rc, 0);
    cr_assert(strstr(cru_err_msg(), "model.safetensors.partial"), "%s", cru_err_msg());
    const char *names[] = { "model.safetensors", "model.safetensors.partial", "config.json" };
    for (size_t i = 0; i < 3; i++) {
        char *f = path_of(dir, names[i]);
        cr_assert_neq(access(f, F_OK), 0, "%s is there", names[i]);
        free(f);
    }
    cr_assert_eq(mdl_init_write(dir, &o), 0, "%s", cru_err_msg());
    struct mdl_model *m = load_ok(dir);
    mdl_model_free(m);
    /* A folder with a checkpoint is refused, index or not. */
    cr_assert_eq(mdl_init_write(dir, &o), CRU_EEXIST);
    cru_remove_tree(root);
    free(dir);
    free(root);
}

/* The values keep the scales of the documented distributions: the embedding N(0,1), matrices
 * N(0, 1/fan_in), norms 1 + 0.1 N(0,1); another seed gives other values. */
Test(model_init, value_scales)
{
    char *root = tmp_root();
    char *dir = path_of(root, "ck"), *dir2 = path_of(root, "ck2");
    struct mdl_init_opts o = small_opts(0);
    o.vocab = 512;
    o.hidden = 256;
    cr_assert_eq(mdl_init_write(dir, &o), 0, "%s", cru_err_msg());
    o.seed = 8;
    cr_assert_eq(mdl_init_write(dir2, &o), 0, "%s", cru_err_msg());
    struct mdl_model *m = load_ok(dir), *m2 = load_ok(dir2);
    struct {
        const struct mdl_weight *w;
        double mean, sd;
    } cases[] = {
        { &m->embed, 0, 1 },
        { &m->lm_head, 0, 1 / sqrt(256.0) },
        { &m->layers[0].experts[0].down, 0, 1 / sqrt(32.0) },
        { &m->layers[1].attn_norm, 1, 0.1 },
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const struct mdl_weight *w = cases[k].w;
        size_t n = (size_t)w->rows * w->cols;
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) {
            double x = mdl_weight_at(w, i);
            s += x;
            s2 += x * x;
        }
        double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
        double tol = 5 * cases[k].sd / sqrt((double)n);
        cr_assert(fabs(mean - cases[k].mean) < tol, "case %zu: mean %g", k, mean);
        cr_assert(fabs(sd / cases[k].sd - 1) < 0.08, "case %zu: sd %g, expected %g", k, sd,
                  cases[k].sd);
    }
    cr_assert(memcmp(m->embed.data, m2->embed.data, (size_t)512 * 256 * 2) != 0,
              "two seeds gave the same embedding");
    mdl_model_free(m);
    mdl_model_free(m2);
    cru_remove_tree(root);
    free(dir);
    free(dir2);
    free(root);
}
