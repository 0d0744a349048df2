/* bench/recorder: trajectory writing and reading against JSON lines written with jansson, in
 * the same run, and the throughput of the tokens export.
 *
 * The record is what an RL rollout writes most: a model call of 4096 sampled tokens with their
 * behavior log-probs, 256 new prompt tokens, and the completion's text (4 bytes a token).
 * Episodes are 16 such calls between a header and an end. Our side writes them with the
 * recorder (framed msgpack, bins of int32/float32, fsync at each episode's end); the peer
 * writes the same fields as one JSON object per line with jansson (ids and log-probs as JSON
 * arrays, log-probs with 9 significant digits so float32 survives) and fsyncs at the same
 * points. Reading back, both sides touch every id and log-prob: ours through the reader's
 * zero-copy arrays, the peer by parsing each line with jansson and walking its arrays. Rounds
 * alternate ours and peer (ABAB); the table gives medians over the rounds and the ratio
 * peer time / our time (higher is better for us). The export reads the same file and writes
 * one training sample per episode (`--format tokens`).
 *
 * Files go to a temporary folder under $TMPDIR (or /tmp), removed at the end. It prints a
 * table and, with --json, one JSON line after it. Errors: the message on stderr, exit 3.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "recorder/export.h"
#include "recorder/reader.h"
#include "recorder/writer.h"

#define COMPLETION  4096
#define PROMPT      256
#define PER_EPISODE 16
#define TEXT_BYTES  (4 * COMPLETION)
#define MAX_ROUNDS  101
#define MAX_RECORDS 1000000

struct data {
    int32_t prompt[PROMPT], completion[COMPLETION];
    float logprobs[COMPLETION];
    char text[TEXT_BYTES + 1];
};

static void make_data(struct data *d)
{
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < COMPLETION; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        d->completion[i] = (int32_t)(x % 151936);
        d->logprobs[i] = -(float)(x % 100000) / 10000.0f;
    }
    for (size_t i = 0; i < PROMPT; i++)
        d->prompt[i] = d->completion[i] ^ 0x55;
    for (size_t i = 0; i < TEXT_BYTES; i++)
        d->text[i] = "abcdefgh ijklmnop\n"[i % 18];
    d->text[TEXT_BYTES] = '\0';
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* ---- ours ---- */

/* Whether both sides fsync at each episode's end (the recorder's default) or never. */
static bool sync_episodes = true;

static int ours_write(const char *path, const struct data *d, size_t records)
{
    struct rec_file *f;
    struct rec_file_opts o = REC_FILE_OPTS_INIT;
    o.mode = REC_TRUNCATE;
    o.sync = sync_episodes ? REC_SYNC_EPISODE : REC_SYNC_NONE;
    int rc = rec_file_open(&f, path, &o);
    for (size_t done = 0; rc == 0 && done < records;) {
        char id[32];
        snprintf(id, sizeof(id), "ep%zu", done);
        struct rec_episode_info info = { .episode_id = id, .task_id = "bench" };
        struct rec_episode *ep;
        if ((rc = rec_episode_begin(&ep, f, &info)) < 0)
            break;
        for (size_t k = 0; rc == 0 && k < PER_EPISODE && done < records; k++, done++) {
            struct rec_model_call mc = { .prompt = d->prompt,
                                         .n_prompt = PROMPT,
                                         .completion = d->completion,
                                         .logprobs = d->logprobs,
                                         .n_completion = COMPLETION,
                                         .finish = "stop",
                                         .decode_ms = 1.5,
                                         .text = d->text };
            rc = rec_model_call(ep, &mc);
        }
        struct rec_end end = { REC_SUBMITTED, NULL };
        if (rc == 0)
            rc = rec_episode_end(ep, &end);
        rec_episode_free(ep);
    }
    int crc = rec_file_close(f);
    return rc < 0 ? rc : crc;
}

static int ours_read(const char *path, uint64_t *sum)
{
    struct rec_reader *r;
    struct rec_record rec;
    int rc = rec_reader_open(&r, path);
    if (rc < 0)
        return rc;
    while ((rc = rec_reader_next(r, &rec)) > 0) {
        struct rec_array ids, lps;
        if (rec.type != REC_MODEL_CALL)
            continue;
        if (!rec_get_i32s(rec.map, "completion", &ids) || !rec_get_f32s(rec.map, "logprobs", &lps))
            return cru_err_set(CRU_EPARSE, "a model call without tokens");
        for (size_t i = 0; i < ids.n; i++)
            *sum += (uint64_t)rec_i32_at(&ids, i) + (uint64_t)(-rec_f32_at(&lps, i));
    }
    rec_reader_free(r);
    return rc;
}

/* ---- the peer: JSON lines with jansson ---- */

static json_t *int_array(const int32_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static json_t *real_array(const float *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static int peer_write(const char *path, const struct data *d, size_t records)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return cru_err_sys("%s", path);
    int rc = 0;
    for (size_t done = 0; rc == 0 && done < records; done++) {
        json_t *o = json_pack(
            "{s:s, s:s, s:I, s:f, s:i, s:I, s:o, s:o, s:o, s:s, s:f, s:s}", "type", "model_call",
            "episode", "ep", "seq", (json_int_t)done, "time", 1.0e9, "branch", 0, "prefix",
            (json_int_t)done, "prompt", int_array(d->prompt, PROMPT), "completion",
            int_array(d->completion, COMPLETION), "logprobs", real_array(d->logprobs, COMPLETION),
            "finish", "stop", "decode_ms", 1.5, "text", d->text);
        if (!o || json_dumpf(o, f, JSON_COMPACT | JSON_REAL_PRECISION(9)) < 0 ||
            fputc('\n', f) == EOF)
            rc = cru_err_sys("writing %s", path);
        json_decref(o);
        /* The same durability as ours: an fsync at the end of each episode. */
        if (rc == 0 && sync_episodes && ((done + 1) % PER_EPISODE == 0 || done + 1 == records) &&
            (fflush(f) != 0 || fsync(fileno(f)) != 0))
            rc = cru_err_sys("writing %s", path);
    }
    if (fclose(f) != 0 && rc == 0)
        rc = cru_err_sys("writing %s", path);
    return rc;
}

static int peer_read(const char *path, uint64_t *sum)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return cru_err_sys("%s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)n, 0, &je);
        json_t *ids = json_object_get(o, "completion"), *lps = json_object_get(o, "logprobs");
        if (!ids || !lps) {
            rc = cru_err_set(CRU_EPARSE, "%s: %s", path, je.text);
        } else {
            for (size_t i = 0; i < json_array_size(ids); i++)
                *sum += (uint64_t)json_integer_value(json_array_get(ids, i)) +
                        (uint64_t)(-json_real_value(json_array_get(lps, i)));
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return rc;
}

/* ---- timing ---- */

static void usage(FILE *out)
{
    fputs("usage: recorder [-n RECORDS] [-r ROUNDS] [--no-sync] [--json]\n"
          "\n"
          "Writes and reads RECORDS model calls of 4096 tokens (default 512) with the recorder\n"
          "and, in the same rounds, as JSON lines with jansson; then exports the trajectory as\n"
          "training samples. Medians over ROUNDS (default 5), ours and peer alternating.\n"
          "Both sides fsync at each episode's end, unless --no-sync.\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },
        { "no-sync", no_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    size_t records = 512, rounds = 5;
    bool json = false;
    int c;
    while ((c = getopt_long(argc, argv, "n:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            records = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            rounds = strtoul(optarg, NULL, 10);
            break;
        case 'j':
            json = true;
            break;
        case 'S':
            sync_episodes = false;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (records < 1 || records > MAX_RECORDS || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "recorder: -n must be 1..%d and -r 1..%d\n", MAX_RECORDS, MAX_ROUNDS);
        return 2;
    }
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/crucible-bench-recorder-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("recorder: mkdtemp");
        return 3;
    }
    char ours_path[600], peer_path[600], export_path[600];
    snprintf(ours_path, sizeof(ours_path), "%s/run.traj", dir);
    snprintf(peer_path, sizeof(peer_path), "%s/run.jsonl", dir);
    snprintf(export_path, sizeof(export_path), "%s/samples.msgpack", dir);
    struct data *d = malloc(sizeof(*d));
    if (!d)
        return 3;
    make_data(d);

    double ow[MAX_ROUNDS], pw[MAX_ROUNDS], orr[MAX_ROUNDS], pr[MAX_ROUNDS], ex[MAX_ROUNDS];
    uint64_t osum = 0, psum = 0;
    struct rec_export_stats st = { 0 };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < rounds; i++) {
        uint64_t t = cru_now_ns();
        rc = ours_write(ours_path, d, records);
        ow[i] = (double)(cru_now_ns() - t) / 1e9;
        t = cru_now_ns();
        if (rc == 0)
            rc = peer_write(peer_path, d, records);
        pw[i] = (double)(cru_now_ns() - t) / 1e9;
        osum = psum = 0;
        t = cru_now_ns();
        if (rc == 0)
            rc = ours_read(ours_path, &osum);
        orr[i] = (double)(cru_now_ns() - t) / 1e9;
        t = cru_now_ns();
        if (rc == 0)
            rc = peer_read(peer_path, &psum);
        pr[i] = (double)(cru_now_ns() - t) / 1e9;
        char *files[] = { ours_path };
        t = cru_now_ns();
        if (rc == 0)
            rc = rec_export(files, 1, REC_EXPORT_TOKENS, export_path, &st);
        ex[i] = (double)(cru_now_ns() - t) / 1e9;
        if (rc == 0 && osum != psum)
            rc = cru_err_set(CRU_EINTERNAL, "the two sides read different data");
    }
    uint64_t obytes = file_size(ours_path), pbytes = file_size(peer_path);
    cru_remove_tree(dir);
    free(d);
    if (rc < 0) {
        fprintf(stderr, "recorder: %s\n", cru_err_msg());
        return 3;
    }
    double mow = bench_median(ow, rounds), mpw = bench_median(pw, rounds),
           mor = bench_median(orr, rounds), mpr = bench_median(pr, rounds),
           mex = bench_median(ex, rounds);
    double n = (double)records;
    printf("recorder: %zu model calls of %d tokens with log-probs, %zu rounds (medians), %s\n",
           records, COMPLETION, rounds, sync_episodes ? "fsync per episode" : "no fsync");
    printf("%-22s %14s %14s %10s\n", "", "crucible", "jansson JSONL", "ratio");
    printf("%-22s %14.0f %14.0f %9.1fx\n", "write records/s", n / mow, n / mpw, mpw / mow);
    printf("%-22s %14.1f %14.1f\n", "write MB/s", (double)obytes / mow / 1e6,
           (double)pbytes / mpw / 1e6);
    printf("%-22s %14.0f %14.0f %9.1fx\n", "read records/s", n / mor, n / mpr, mpr / mor);
    printf("%-22s %14.1f %14.1f\n", "read MB/s", (double)obytes / mor / 1e6,
           (double)pbytes / mpr / 1e6);
    printf("%-22s %14.1f %14.1f %9.2fx\n", "file MB", (double)obytes / 1e6, (double)pbytes / 1e6,
           (double)pbytes / (double)obytes);
    printf("export (tokens): %.0f episodes/s, %.1f M tokens/s, %.1f MB/s of trajectory\n",
           (double)st.episodes / mex, (double)st.tokens / mex / 1e6, (double)obytes / mex / 1e6);
    if (json)
        printf("{\"records\":%zu,\"rounds\":%zu,\"write_s\":[%.6f,%.6f],\"read_s\":[%.6f,%.6f],"
               "\"bytes\":[%llu,%llu],\"export_s\":%.6f,\"export_tokens\":%llu}\n",
               records, rounds, mow, mpw, mor, mpr, (unsigned long long)obytes,
               (unsigned long long)pbytes, mex, (unsigned long long)st.tokens);
    return 0;
}
