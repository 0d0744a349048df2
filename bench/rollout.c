/* bench/rollout: whole episodes per second on the bundled suite, where an episode's time goes,
 * and the sandboxed tool calls against one fresh bubblewrap per command, in the same run.
 *
 * Every episode runs the same scripted agent, whatever the image: list the workspace, two
 * shell commands, create a file, view it, one more command, submit (7 tool calls, 4 of them
 * commands). The suite (every bundled image, once) runs at -j 1, 2 and 8 through the real
 * scheduler and runner: workspace and setup, the session sandbox, the tools, the artifact, the
 * reward in a fresh checker sandbox, and the recording; the runner's own timings split the
 * time per episode.
 *
 * The peer is how mini-swe-agent's bubblewrap backend runs an agent's actions: one fresh
 * `bwrap` per command over the workspace. For every image, in alternation with ours, the same
 * six actions (the file tools as the shell commands such an agent would send: ls, cat -n,
 * printf > file) each run in their own bwrap with the workspace bound read-write. Compared
 * with ours: the session sandbox created and destroyed plus the 7 tool calls, recording
 * included. Rounds: the medians of -r rounds (default 3).
 *
 * Needs root (sandboxes). Prints a table and, with --json, one JSON line. Errors: exit 3.
 */
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/check.h"
#include "agent/rollout.h"
#include "bench/bench.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fs.h"

#define MAX_ROUNDS 21
#define MAX_IMAGES 256

static const char script[] =
    "[{\"tool\": \"list\"},"
    " {\"tool\": \"bash\", \"arguments\": {\"command\": \"ls -la | head -20\"}},"
    " {\"tool\": \"bash\", \"arguments\": {\"command\": \"grep -rln import . | head -5; true\"}},"
    " {\"tool\": \"create\", \"arguments\": {\"path\": \"NOTES.md\", \"content\": \"checked\\n\"}},"
    " {\"tool\": \"view\", \"arguments\": {\"path\": \"NOTES.md\"}},"
    " {\"tool\": \"bash\", \"arguments\": {\"command\": \"wc -l NOTES.md\"}},"
    " {\"tool\": \"submit\"}]";

/* The same actions as shell commands, one bwrap each. */
static const char *const peer_cmds[] = {
    "ls -1A",
    "ls -la | head -20",
    "grep -rln import . | head -5; true",
    "printf 'checked\\n' > NOTES.md",
    "cat -n NOTES.md",
    "wc -l NOTES.md",
    NULL,
};

struct split {
    pthread_mutex_t lock;
    double workspace, sandbox, agent, artifact, reward, record, wall;
    size_t n, scored;
};

static int timed_run(void *ctx, const struct agt_episode_opts *o, struct agt_episode_result *r)
{
    struct split *s = ctx;
    int rc = agt_episode_run(o, r);
    if (rc == 0) {
        pthread_mutex_lock(&s->lock);
        s->workspace += r->ms.workspace;
        s->sandbox += r->ms.sandbox;
        s->agent += r->ms.agent;
        s->artifact += r->ms.artifact;
        s->reward += r->ms.reward;
        s->record += r->ms.record;
        s->wall += (double)r->wall_ms;
        s->n++;
        s->scored += r->scored;
        pthread_mutex_unlock(&s->lock);
    }
    return rc;
}

/* The peer for one image: a fresh workspace after setup, then each action in its own bwrap.
 * Returns the milliseconds of the actions. */
static int peer_episode(const struct agt_image *img, const char *dir, double *ms)
{
    char ws[4096];
    snprintf(ws, sizeof(ws), "%s/peer-ws", dir);
    cru_remove_tree(ws);
    int rc = agt_workspace_make(img, ws);
    if (rc == 0)
        rc = agt_prepare_workspace(img, ws, NULL, false, NULL);
    if (rc < 0)
        return rc;
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    uint64_t t = cru_now_ns();
    for (size_t i = 0; rc == 0 && peer_cmds[i]; i++) {
        const char *const extra[] = { "--bind", ws, "/workspace", "--chdir", "/workspace", NULL };
        const char *const cmd[] = { "/bin/sh", "-c", peer_cmds[i], NULL };
        struct argv_list a = { 0 };
        pid_t pid;
        int fds[4] = { -1, devnull, devnull, -1 };
        rc = bwrap_argv(&a, extra, cmd);
        if (rc == 0)
            rc = spawn(&pid, &a, fds);
        if (rc == 0)
            rc = wait_ok(pid, "bwrap");
        argv_free(&a);
    }
    *ms = (double)(cru_now_ns() - t) / 1e6;
    close(devnull);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    size_t rounds = 3;
    bool json = false;
    int c;
    while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
        if (c == 'r')
            rounds = strtoul(optarg, NULL, 10);
        else if (c == 'j')
            json = true;
        else {
            fputs("usage: rollout [-r ROUNDS] [--json]\n"
                  "Runs the bundled suite with a scripted agent at -j 1, 2 and 8, and the same\n"
                  "actions with one bwrap per command. Needs root.\n",
                  c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "rollout: -r must be 1..%d\n", MAX_ROUNDS);
        return 2;
    }
    char dir[] = "/tmp/crucible-bench-rollout-XXXXXX", path[4200], out[4200];
    char *images_dir = NULL, *sc_dir = NULL, **ids = NULL;
    size_t n_ids = 0, n = 0;
    struct agt_image *imgs[MAX_IMAGES];
    struct agt_scaffold *sc = NULL;
    struct agt_agent *agent = NULL;
    int rc = mkdtemp(dir) ? 0 : cru_err_sys("mkdtemp");
    if (rc == 0)
        snprintf(path, sizeof(path), "%s/script.json", dir);
    if (rc == 0 && (rc = cru_file_write_atomic(path, script, sizeof(script) - 1, 0644)) == 0) {
        char spec[4300];
        snprintf(spec, sizeof(spec), "scripted:%s", path);
        rc = agt_agent_load(spec, &agent);
    }
    if (rc == 0 && (rc = agt_images_dir(NULL, &images_dir)) == 0 &&
        (rc = agt_images_list(images_dir, &ids, &n_ids)) == 0 &&
        (rc = agt_scaffold_dir(NULL, &sc_dir)) == 0)
        rc = agt_scaffold_load(sc_dir, &sc);
    for (size_t i = 0; rc == 0 && i < n_ids && n < MAX_IMAGES; i++) {
        char *d = NULL;
        if ((rc = agt_image_find(images_dir, ids[i], &d)) == 0 &&
            (rc = agt_image_load(d, &imgs[n], NULL)) == 0)
            n++;
        free(d);
    }
    static const unsigned jobs[] = { 1, 2, 8 };
    double rate[3][MAX_ROUNDS], ours[MAX_ROUNDS], peer[MAX_ROUNDS];
    struct split first = { .lock = PTHREAD_MUTEX_INITIALIZER };
    for (size_t r = 0; rc == 0 && r < rounds; r++) {
        for (size_t k = 0; rc == 0 && k < 3; k++) {
            struct split s = { .lock = PTHREAD_MUTEX_INITIALIZER };
            struct agt_rollout_opts ro = { 0 };
            snprintf(out, sizeof(out), "%s/run-%zu-%u", dir, r, jobs[k]);
            ro.images = (const struct agt_image *const *)imgs;
            ro.n_images = n;
            ro.sc = sc;
            ro.agent = agent;
            ro.out = out;
            ro.jobs = jobs[k];
            ro.run_episode = timed_run;
            ro.run_ctx = &s;
            struct agt_rollout_summary sum;
            uint64_t t = cru_now_ns();
            if ((rc = agt_rollout(&ro, &sum)) < 0)
                break;
            rate[k][r] = (double)sum.done / ((double)(cru_now_ns() - t) / 1e9);
            agt_rollout_summary_free(&sum);
            if (s.n != n || s.scored != n)
                rc = cru_err_set(CRU_EFAILED, "%zu of %zu episodes were scored", s.scored, n);
            if (k == 0) {
                ours[r] = (s.sandbox + s.agent) / (double)s.n;
                if (r == 0)
                    first = s;
            }
            cru_remove_tree(out);
        }
        double total = 0, ms = 0;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if ((rc = peer_episode(imgs[i], dir, &ms)) == 0)
                total += ms;
        }
        peer[r] = total / (double)(n ? n : 1);
    }
    cru_remove_tree(dir);
    for (size_t i = 0; i < n; i++)
        agt_image_free(imgs[i]);
    agt_images_list_free(ids, n_ids);
    agt_scaffold_free(sc);
    agt_agent_free(agent);
    free(images_dir);
    free(sc_dir);
    if (rc < 0) {
        fprintf(stderr, "rollout: %s\n", cru_err_msg());
        return 3;
    }
    double r1 = bench_median(rate[0], rounds), r2 = bench_median(rate[1], rounds),
           r8 = bench_median(rate[2], rounds), mo = bench_median(ours, rounds),
           mp = bench_median(peer, rounds);
    double e = (double)first.n;
    printf("rollout: %zu bundled images, a scripted agent of 7 tool calls (4 commands), %zu "
           "rounds (medians)\n",
           n, rounds);
    printf("episodes/s    -j 1: %.2f   -j 2: %.2f   -j 8: %.2f\n", r1, r2, r8);
    printf("per episode at -j 1 (first round), ms: workspace+setup %.1f, sandbox %.1f, tools "
           "%.1f, artifact %.1f, reward %.1f, recording %.1f; wall %.1f\n",
           first.workspace / e, first.sandbox / e, first.agent / e, first.artifact / e,
           first.reward / e, first.record / e, first.wall / e);
    printf("tool calls per episode: crucible session (create, 7 calls, destroy) %.1f ms; one "
           "bwrap per command (6) %.1f ms; ratio ours/peer %.2f\n",
           mo, mp, mo / mp);
    if (json)
        printf("{\"images\":%zu,\"rounds\":%zu,\"episodes_per_s\":[%.3f,%.3f,%.3f],"
               "\"ms\":{\"workspace\":%.2f,\"sandbox\":%.2f,\"tools\":%.2f,\"artifact\":%.2f,"
               "\"reward\":%.2f,\"record\":%.2f,\"wall\":%.2f},\"session_ms\":%.2f,"
               "\"bwrap_ms\":%.2f}\n",
               n, rounds, r1, r2, r8, first.workspace / e, first.sandbox / e, first.agent / e,
               first.artifact / e, first.reward / e, first.record / e, first.wall / e, mo, mp);
    return 0;
}
