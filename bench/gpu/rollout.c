/* bench/gpu/rollout: concurrent multi-turn episodes through the engine on the CUDA backend.
 *
 *     build/cuda/bench-rollout [LAYERS [SECONDS [EPISODES...]]]
 *
 * A synthetic agentic task on a Qwen3-30B-A3B-shaped model with random bf16 weights: each
 * episode starts from a 2048-token prompt shared by its group of 8, then runs up to 8 turns of
 * at most 256 sampled tokens (a length drawn per turn, as agent turns vary), each followed by a
 * scripted observation of 200 tokens; an episode that ends starts another, so the concurrency
 * stays at EPISODES until SECONDS have passed. Reported per concurrency: generated tokens/s,
 * prompt tokens computed against requested (the saving from shared prefixes and reused turns),
 * the KV blocks at their peak against a contiguous cache for the same episodes, preemptions,
 * and the share of the time the engine spent in backend steps.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/gpu/shape.h"
#include "kernels/backend_cuda.h"
#include "lib/err.h"
#include "model/engine.h"

enum { PROMPT = 2048, GROUP = 8, TURNS = 8, MAX_GEN = 256, OBS = 200 };
#define CTX (PROMPT + TURNS * (MAX_GEN + OBS) + 16)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    double d = t - now();
    if (d > 0) {
        struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };
        nanosleep(&ts, NULL);
    }
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int random_load(void **st, const struct mdl_model *m, const struct mdl_backend_opts *o)
{
    return mdl_cuda_load_random(st, m, o, 12345);
}

struct run {
    struct mdl_engine *e;
    uint32_t vocab;
    double deadline;
    atomic_uint_fast64_t generated, episodes, turns, next_episode;
    atomic_int failed;
};

static void *episode_loop(void *arg)
{
    struct run *r = arg;
    int32_t *ctx = malloc(CTX * sizeof(int32_t));
    while (ctx && now() < r->deadline && !atomic_load(&r->failed)) {
        uint64_t ep = atomic_fetch_add(&r->next_episode, 1), group = ep / GROUP;
        size_t n = 0;
        for (; n < PROMPT; n++)
            ctx[n] = (int32_t)(mix(group * 1000003 + n) % r->vocab);
        for (int turn = 0; turn < TURNS && now() < r->deadline; turn++) {
            struct mdl_request q = MDL_REQUEST_INIT;
            q.prompt = ctx;
            q.n_prompt = n;
            q.sampling.seed = mix(ep * 131 + (uint64_t)turn);
            q.sampling.temperature = 1.0f;
            q.sampling.max_tokens = 32 + (uint32_t)(q.sampling.seed % (MAX_GEN - 31));
            q.sampling.stop_at_eos = false;
            struct mdl_result res;
            if (mdl_engine_generate(r->e, &q, &res) < 0) {
                fprintf(stderr, "rollout: episode %llu turn %d: %s\n", (unsigned long long)ep, turn,
                        cru_err_msg());
                atomic_store(&r->failed, 1);
                mdl_result_free(&res);
                break;
            }
            memcpy(ctx + n, res.ids, res.n * sizeof(int32_t));
            n += res.n;
            atomic_fetch_add(&r->generated, res.n);
            atomic_fetch_add(&r->turns, 1);
            mdl_result_free(&res);
            for (int i = 0; i < OBS; i++, n++)
                ctx[n] = (int32_t)(mix(ep * 7919 + n) % r->vocab);
        }
        atomic_fetch_add(&r->episodes, 1);
    }
    free(ctx);
    return NULL;
}

int main(int argc, char **argv)
{
    uint32_t layers = argc > 1 ? (uint32_t)atoi(argv[1]) : 48;
    double seconds = argc > 2 ? atof(argv[2]) : 60;
    uint32_t conc[16] = { 64, 128, 256 }, n_conc = 3;
    if (argc > 3)
        for (n_conc = 0; n_conc < 16 && 3 + n_conc < (uint32_t)argc; n_conc++)
            conc[n_conc] = (uint32_t)atoi(argv[3 + n_conc]);
    struct mdl_model m;
    qwen3_30b_shape(&m, layers, CTX);
    struct mdl_backend be = mdl_backend_cuda;
    be.load = random_load;
    uint32_t kv_token = layers * 2 * m.cfg.kv_heads * m.cfg.head_dim * 2;
    printf("rollout: %u layers, prompt %d shared by %d, %d turns of at most %d tokens and %d "
           "observed, %.0f s a run\n",
           layers, PROMPT, GROUP, TURNS, MAX_GEN, OBS, seconds);
    int status = 0;
    /* ROLLOUT_COMPARE=1: each concurrency also with prompts joining every step (the engine's
     * default on a backend with a fast short step is to hold them back: docs/model.md). */
    bool compare = getenv("ROLLOUT_COMPARE") && strcmp(getenv("ROLLOUT_COMPARE"), "1") == 0;
    for (uint32_t run = 0; run < n_conc * (compare ? 2 : 1) && !status; run++) {
        uint32_t N = conc[compare ? run / 2 : run];
        bool mixed = compare && run % 2 == 0;
        struct mdl_engine_opts o = MDL_ENGINE_OPTS_INIT;
        o.backend = &be;
        o.backend_opts.max_seqs = N;
        o.backend_opts.max_ctx = CTX;
        o.backend_opts.max_step_tokens = 8192 > N ? 8192 : N;
        if (mixed) { /* never held: no wait at all */
            o.prefill_batch = 1;
            o.prefill_wait = 0;
        }
        printf("prompts %s\n", mixed ? "join every step" : "held back as the engine decides");
        struct run r = { .vocab = m.cfg.vocab };
        double t0 = now();
        if (mdl_engine_new(&r.e, &m, &o) < 0) {
            fprintf(stderr, "rollout: %s\n", cru_err_msg());
            return 3;
        }
        struct mdl_backend_limits l;
        mdl_engine_limits(r.e, &l);
        printf("engine: %u sequences, %u blocks of %u tokens (%.1f GB of KV), loaded in %.1f s\n",
               N, l.n_blocks, l.block_tokens, (double)l.n_blocks * l.block_bytes / 1e9, now() - t0);
        pthread_t *th = calloc(N, sizeof(pthread_t));
        t0 = now();
        r.deadline = t0 + seconds;
        for (uint32_t i = 0; i < N; i++)
            pthread_create(&th[i], NULL, episode_loop, &r);
        /* The steady rate: tokens sampled between a fifth of the run (the groups' prompts are
         * computed by then) and its end, before the last turns drain. */
        struct mdl_engine_stats s0, s1, s;
        sleep_until(t0 + seconds / 5);
        mdl_engine_stats(r.e, &s0);
        double w0 = now();
        sleep_until(r.deadline);
        mdl_engine_stats(r.e, &s1);
        double steady = (double)(s1.decode_tokens - s0.decode_tokens) / (now() - w0);
        double busy = (double)(s1.busy_ns - s0.busy_ns) / 1e9 / (now() - w0);
        double batch = s1.steps > s0.steps ? (double)(s1.decode_tokens - s0.decode_tokens) /
                                                 (double)(s1.steps - s0.steps)
                                           : 0;
        for (uint32_t i = 0; i < N; i++)
            pthread_join(th[i], NULL);
        double wall = now() - t0;
        mdl_engine_stats(r.e, &s);
        double contiguous = (double)N * CTX * kv_token;
        printf("rollout %3u episodes: %.0f generated tok/s steady (mean batch %.1f, engine busy "
               "%.0f%%); %.0f tok/s over the whole run (%llu tokens, %llu turns, %llu episodes "
               "begun, %.0f s); prompt tokens computed %llu of %llu requested (%.1fx saved); KV "
               "peak %.1f GB against %.1f GB contiguous; %llu preemptions, %llu evictions, %llu "
               "steps holding prompts back; mean batch %.1f, engine busy %.0f%%\n",
               N, steady, batch, 100 * busy, (double)r.generated / wall,
               (unsigned long long)r.generated, (unsigned long long)r.turns,
               (unsigned long long)r.next_episode, wall, (unsigned long long)s.prefill_tokens,
               (unsigned long long)s.prompt_tokens,
               s.prefill_tokens ? (double)s.prompt_tokens / (double)s.prefill_tokens : 0.0,
               (double)s.blocks_peak * l.block_bytes / 1e9, contiguous / 1e9,
               (unsigned long long)s.preemptions, (unsigned long long)s.evictions,
               (unsigned long long)s.held_steps,
               s.steps ? (double)s.decode_tokens / (double)s.steps : 0.0,
               100.0 * (double)s.busy_ns / 1e9 / wall);
        fflush(stdout);
        status = atomic_load(&r.failed);
        mdl_engine_free(r.e);
        free(th);
    }
    free(m.layers[0].experts);
    free(m.layers);
    return status ? 1 : 0;
}
