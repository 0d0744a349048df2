/* bench/model_cpu: the CPU forward's speed against the machine's memory-bandwidth floor.
 *
 * Decoding one token must read every weight the token uses (attention, the chosen experts,
 * the output projection) at least once, so bytes of active weights over the memory's copy
 * bandwidth is a floor on the time per token that no CPU implementation beats while the
 * weights do not fit in cache. The benchmark measures that bandwidth in the same run (memcpy
 * of a buffer far larger than the caches, on one thread and on every thread, the faster
 * counted) and reports, for each model, the decode rate as a fraction of the floor's rate
 * (1.0 would be at the floor), next to prefill and batched decode rates. Models: the tiny
 * default of `crucible model init` and a ~100M-parameter MoE, both written by mdl_init_write
 * into a temporary folder and memory-mapped as a real checkpoint is.
 *
 * It prints a table on stdout and, with --json, one JSON line after it; it leaves no file.
 * Errors: crucible's message on stderr, exit status 3.
 */
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/str.h"
#include "model/backend.h"
#include "model/init.h"
#include "model/model.h"

#define COPY_BYTES ((size_t)512 << 20) /* far beyond any last-level cache */
#define COPY_REPS  5

struct copy_job {
    char *dst;
    const char *src;
    size_t len;
};

static void *copy_part(void *arg)
{
    struct copy_job *j = arg;
    memcpy(j->dst, j->src, j->len);
    return NULL;
}

/* Bytes copied per second with THREADS threads (the best of COPY_REPS). */
static double copy_bandwidth(char *dst, const char *src, uint32_t threads)
{
    double best = 0;
    for (int r = 0; r < COPY_REPS; r++) {
        pthread_t th[64];
        struct copy_job jobs[64];
        size_t part = COPY_BYTES / threads;
        uint64_t t0 = cru_now_ns();
        for (uint32_t i = 0; i < threads; i++) {
            jobs[i] = (struct copy_job){ dst + i * part, src + i * part, part };
            if (threads == 1 || pthread_create(&th[i], NULL, copy_part, &jobs[i]) != 0)
                copy_part(&jobs[i]), th[i] = 0;
        }
        for (uint32_t i = 0; i < threads; i++)
            if (th[i])
                pthread_join(th[i], NULL);
        double s = (double)(cru_now_ns() - t0) / 1e9, bw = (double)(part * threads) / s;
        best = bw > best ? bw : best;
    }
    return best;
}

struct result {
    const char *name;
    uint64_t params, active_bytes;
    double prefill_tps, decode_tps, batch_tps, floor_tps;
};

static int run_model(const char *root, const char *name, const struct mdl_init_opts *io,
                     uint32_t threads, uint32_t prefill, uint32_t decode, uint32_t batch,
                     double bandwidth, struct result *out)
{
    char *dir = NULL;
    struct mdl_model *m = NULL;
    void *be = NULL;
    float *logits = NULL;
    int32_t *ids = NULL;
    uint32_t *tables = NULL;
    int rc;
    if ((rc = cru_str_printf(&dir, "%s/%s", root, name)) < 0 ||
        (rc = mdl_init_write(dir, io)) < 0 || (rc = mdl_model_load(&m, dir)) < 0)
        goto done;
    struct mdl_backend_opts bo = MDL_BACKEND_OPTS_INIT;
    bo.max_seqs = batch;
    bo.threads = threads;
    bo.max_ctx = prefill + decode + 8;
    /* Sequence S owns blocks S * PER .. (S + 1) * PER - 1. */
    uint32_t per = (bo.max_ctx + MDL_BLOCK_TOKENS - 1) / MDL_BLOCK_TOKENS;
    bo.n_blocks = per * batch;
    if ((rc = mdl_backend_cpu.load(&be, m, &bo)) < 0)
        goto done;
    size_t V = m->cfg.vocab;
    logits = malloc((size_t)batch * V * sizeof(float));
    ids = malloc((size_t)(prefill + decode) * sizeof(int32_t));
    tables = malloc((size_t)bo.n_blocks * sizeof(uint32_t));
    if (!logits || !ids || !tables) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    for (uint32_t i = 0; i < prefill + decode; i++)
        ids[i] = (int32_t)((i * 7919u + 13u) % V);
    for (uint32_t b = 0; b < bo.n_blocks; b++)
        tables[b] = b;
    /* Prefill every slot (the first one timed), then decode: one sequence, then all. */
    uint64_t t0 = cru_now_ns();
    struct mdl_step st = { tables, per, 0, ids, prefill, false, logits };
    if ((rc = mdl_backend_cpu.forward(be, &st, 1)) < 0)
        goto done;
    out->prefill_tps = prefill / ((double)(cru_now_ns() - t0) / 1e9);
    for (uint32_t s = 1; s < batch; s++) {
        st = (struct mdl_step){ tables + s * per, per, 0, ids, prefill, false, logits };
        if ((rc = mdl_backend_cpu.forward(be, &st, 1)) < 0)
            goto done;
    }
    t0 = cru_now_ns();
    for (uint32_t i = 0; i < decode; i++) {
        st = (struct mdl_step){ tables, per, prefill + i, &ids[prefill + i], 1, false, logits };
        if ((rc = mdl_backend_cpu.forward(be, &st, 1)) < 0)
            goto done;
    }
    out->decode_tps = decode / ((double)(cru_now_ns() - t0) / 1e9);
    struct mdl_step steps[64];
    t0 = cru_now_ns();
    for (uint32_t i = 0; i < decode; i++) {
        for (uint32_t s = 0; s < batch; s++)
            steps[s] = (struct mdl_step){ tables + s * per,      per, prefill + i,
                                          &ids[prefill + i],     1,   false,
                                          logits + (size_t)s * V };
        if ((rc = mdl_backend_cpu.forward(be, steps, batch)) < 0)
            goto done;
    }
    out->batch_tps = (double)decode * batch / ((double)(cru_now_ns() - t0) / 1e9);
    out->name = name;
    out->params = m->n_params;
    out->active_bytes = m->active_bytes;
    out->floor_tps = bandwidth / (double)m->active_bytes;
done:
    free(tables);
    if (be)
        mdl_backend_cpu.free(be);
    mdl_model_free(m);
    free(logits);
    free(ids);
    free(dir);
    return rc;
}

static void usage(FILE *f)
{
    fputs("usage: model_cpu [--threads N] [--quick] [--json]\n"
          "  --threads N  CPU threads for the forward (default: every core)\n"
          "  --quick      fewer tokens (a smoke test, not a measurement)\n"
          "  --json       also print one JSON line with every number\n",
          f);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "threads", required_argument, NULL, 't' },
        { "quick", no_argument, NULL, 'q' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    uint32_t threads = 0, prefill = 128, decode = 32, batch = 8;
    bool json = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        uint64_t v;
        switch (c) {
        case 't':
            if (cru_parse_u64(optarg, 1, 64, &v) < 0) {
                fprintf(stderr, "model_cpu: --threads: %s\n", cru_err_msg());
                return 2;
            }
            threads = (uint32_t)v;
            break;
        case 'q':
            prefill = 16;
            decode = 4;
            batch = 2;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n < 1 ? 1 : n > 64 ? 64 : (uint32_t)n;
    }
    char tmpl[] = "/tmp/crucible-bench-model-XXXXXX";
    char *root = mkdtemp(tmpl);
    char *src = malloc(COPY_BYTES), *dst = malloc(COPY_BYTES);
    if (!root || !src || !dst) {
        fprintf(stderr, "crucible: bench model_cpu: cannot set up: out of memory or /tmp\n");
        return 3;
    }
    memset(src, 1, COPY_BYTES);
    memset(dst, 2, COPY_BYTES);
    double bw1 = copy_bandwidth(dst, src, 1), bwn = copy_bandwidth(dst, src, threads);
    double bw = bw1 > bwn ? bw1 : bwn;
    free(src);
    free(dst);

    struct mdl_init_opts tiny = MDL_INIT_OPTS_INIT;
    tiny.seed = 1;
    struct mdl_init_opts moe = MDL_INIT_OPTS_INIT;
    moe.seed = 2;
    moe.layers = 6;
    moe.hidden = 512;
    moe.heads = 8;
    moe.kv_heads = 2;
    moe.head_dim = 64;
    moe.experts = 32;
    moe.top_k = 4;
    moe.moe_inter = 256;
    moe.vocab = 16384;
    struct result res[2] = { { 0 } };
    int rc = run_model(root, "tiny", &tiny, threads, prefill, decode, batch, bw, &res[0]);
    if (rc == 0)
        rc = run_model(root, "moe-100m", &moe, threads, prefill, decode, batch, bw, &res[1]);
    cru_remove_tree(root);
    if (rc < 0) {
        fprintf(stderr, "crucible: bench model_cpu: %s\n", cru_err_msg());
        return 3;
    }
    struct utsname u;
    uname(&u);
    printf("model_cpu: %s %s, %u threads; copy bandwidth %.2f GB/s (1 thread %.2f, %u threads "
           "%.2f)\n",
           u.sysname, u.machine, threads, bw / 1e9, bw1 / 1e9, threads, bwn / 1e9);
    printf("%-10s %10s %12s %12s %12s %12s %12s %8s\n", "model", "params", "active MiB",
           "prefill t/s", "decode t/s", "batch t/s", "floor t/s", "decode/floor");
    for (int i = 0; i < 2; i++)
        printf("%-10s %10llu %12.2f %12.1f %12.1f %12.1f %12.1f %8.3f\n", res[i].name,
               (unsigned long long)res[i].params, res[i].active_bytes / 1048576.0,
               res[i].prefill_tps, res[i].decode_tps, res[i].batch_tps, res[i].floor_tps,
               res[i].decode_tps / res[i].floor_tps);
    if (json) {
        json_t *arr = json_array();
        for (int i = 0; i < 2; i++)
            json_array_append_new(
                arr, json_pack("{s:s, s:I, s:I, s:f, s:f, s:f, s:f, s:f}", "model", res[i].name,
                               "params", (json_int_t)res[i].params, "active_bytes",
                               (json_int_t)res[i].active_bytes, "prefill_tps", res[i].prefill_tps,
                               "decode_tps", res[i].decode_tps, "batch_tps", res[i].batch_tps,
                               "floor_tps", res[i].floor_tps, "decode_over_floor",
                               res[i].decode_tps / res[i].floor_tps));
        json_t *o = json_pack("{s:I, s:f, s:I, s:o}", "threads", (json_int_t)threads,
                              "copy_bytes_per_s", bw, "batch", (json_int_t)batch, "models", arr);
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    }
    return 0;
}
