/* Tests for model/tokenizer: exactness against the reference on a 2,400-string corpus, the
 * tokenizer.json features one by one on small tokenizers built here, errors and bounds,
 * invalid UTF-8, the streaming decoder, threads, and `crucible tokenize`. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utf8proc.h>

#include "lib/json.h"
#include "lib/str.h"
#include "model/tokenizer.h"
#include "tests/fifo_util.h"
#include "tests/tokenizer_util.h"

/* ---- the corpus ---- */

struct corpus {
    json_t **text; /* JSON strings */
    json_t **ids;  /* JSON arrays of ids from the reference */
    size_t n;
};

static json_t **read_lines(const char *name, size_t *n)
{
    struct cru_buf b = CRU_BUF_INIT;
    read_test_data(name, &b);
    size_t cap = 4096, k = 0;
    json_t **v = calloc(cap, sizeof(json_t *));
    for (char *p = b.data, *nl; p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        cr_assert_not_null(nl, "%s: the last line has no newline", name);
        cr_assert_lt(k, cap);
        cr_assert_eq(cru_json_parse(&v[k], p, (size_t)(nl - p), name), 0, "%s", cru_err_msg());
        k++;
    }
    cru_buf_free(&b);
    *n = k;
    return v;
}

static void corpus_load(struct corpus *c)
{
    size_t n_ids;
    c->text = read_lines("corpus.jsonl", &c->n);
    c->ids = read_lines("expected.jsonl", &n_ids);
    cr_assert_eq(c->n, n_ids,
                 "corpus.jsonl and expected.jsonl differ in length: regenerate "
                 "expected.jsonl with tests/tokenizer/reference.js");
    cr_assert_geq(c->n, 2000);
}

static void corpus_free(struct corpus *c)
{
    for (size_t i = 0; i < c->n; i++) {
        json_decref(c->text[i]);
        json_decref(c->ids[i]);
    }
    free(c->text);
    free(c->ids);
}

static bool ids_equal(const struct tok_ids *ids, const json_t *want, size_t *at)
{
    size_t n = json_array_size(want);
    for (*at = 0; *at < n && *at < ids->n; (*at)++)
        if (ids->v[*at] != json_integer_value(json_array_get(want, *at)))
            return false;
    return ids->n == n;
}

static char *nfc(const char *s, size_t n, size_t *out_len)
{
    utf8proc_uint8_t *o = NULL;
    utf8proc_ssize_t k = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &o,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    cr_assert_geq(k, 0);
    *out_len = (size_t)k;
    return (char *)o;
}

Test(tokenizer, corpus_ids_equal_the_reference_and_decode_gives_nfc)
{
    struct corpus c;
    corpus_load(&c);
    struct tok *t = qwen_load();
    for (size_t i = 0; i < c.n; i++) {
        const char *s = json_string_value(c.text[i]);
        size_t len = json_string_length(c.text[i]), at, nl;
        struct tok_ids ids = TOK_IDS_INIT;
        cr_assert_eq(tok_encode(t, s, len, &ids), 0, "%s", cru_err_msg());
        cr_assert(ids_equal(&ids, c.ids[i], &at),
                  "corpus line %zu: id %zu differs (ours %d, reference %d; %zu vs %zu ids)", i + 1,
                  at, at < ids.n ? ids.v[at] : -1,
                  (int)json_integer_value(json_array_get(c.ids[i], at)), ids.n,
                  json_array_size(c.ids[i]));
        struct cru_buf back = CRU_BUF_INIT;
        cr_assert_eq(tok_decode(t, ids.v, ids.n, &back), 0, "%s", cru_err_msg());
        char *want = nfc(s, len, &nl);
        cr_assert(back.len == nl && memcmp(back.data ? back.data : "", want, nl) == 0,
                  "corpus line %zu: decode(encode(s)) is not NFC(s)", i + 1);
        free(want);
        cru_buf_free(&back);
        tok_ids_free(&ids);
    }
    tok_free(t);
    corpus_free(&c);
}

/* The streaming decoder gives the same text, whatever the ids split. */
Test(tokenizer, stream_equals_whole_decode)
{
    struct corpus c;
    corpus_load(&c);
    struct tok *t = qwen_load();
    size_t held_somewhere = 0;
    for (size_t i = 0; i < c.n; i++) {
        struct tok_ids ids = TOK_IDS_INIT;
        struct cru_buf whole = CRU_BUF_INIT, lossy = CRU_BUF_INIT, streamed = CRU_BUF_INIT;
        struct tok_stream st;
        size_t n = json_array_size(c.ids[i]);
        for (size_t k = 0; k < n; k++)
            tok_ids_push(&ids, (int32_t)json_integer_value(json_array_get(c.ids[i], k)));
        cr_assert_eq(tok_decode(t, ids.v, ids.n, &whole), 0);
        cr_assert_eq(tok_utf8_lossy(cru_buf_cstr(&whole), whole.len, &lossy), 0);
        tok_stream_init(&st, t);
        for (size_t k = 0; k < ids.n; k++) {
            size_t before = streamed.len;
            cr_assert_eq(tok_stream_push(&st, ids.v[k], &streamed), 0, "%s", cru_err_msg());
            /* What has come out is always valid UTF-8. */
            cr_assert_eq(cru_buf_append(&streamed, "", 0), 0);
            cr_assert(utf8proc_decompose((const utf8proc_uint8_t *)streamed.data,
                                         (utf8proc_ssize_t)streamed.len, NULL, 0, 0) >= 0,
                      "line %zu: the stream emitted invalid UTF-8", i + 1);
            held_somewhere += st.n_held > 0 && streamed.len == before;
        }
        cr_assert_eq(tok_stream_finish(&st, &streamed), 0);
        cr_assert(streamed.len == lossy.len &&
                      memcmp(cru_buf_cstr(&streamed), cru_buf_cstr(&lossy), lossy.len) == 0,
                  "line %zu: the stream differs from the whole decode", i + 1);
        tok_ids_free(&ids);
        cru_buf_free(&whole);
        cru_buf_free(&lossy);
        cru_buf_free(&streamed);
    }
    /* The corpus has characters split across tokens (emoji, CJK), so something was held. */
    cr_assert_gt(held_somewhere, 0);
    tok_free(t);
    corpus_free(&c);
}

Test(tokenizer, stream_holds_back_and_replaces)
{
    struct tok *t = qwen_load();
    int32_t e0, e1, e2, e3, a;
    /* The byte tokens of U+1F600 (F0 9F 98 80) and of 'a'. */
    cr_assert_eq(tok_token_id(t, "\xF0", 1, &e0), 0);
    cr_assert_eq(tok_token_id(t, "\x9F", 1, &e1), 0);
    cr_assert_eq(tok_token_id(t, "\x98", 1, &e2), 0);
    cr_assert_eq(tok_token_id(t, "\x80", 1, &e3), 0);
    cr_assert_eq(tok_token_id(t, "a", 1, &a), 0);
    struct tok_stream st;
    struct cru_buf out = CRU_BUF_INIT;
    tok_stream_init(&st, t);
    tok_stream_push(&st, e0, &out);
    tok_stream_push(&st, e1, &out);
    tok_stream_push(&st, e2, &out);
    cr_assert_eq(out.len, 0, "an incomplete character was emitted");
    tok_stream_push(&st, e3, &out);
    cr_assert_str_eq(out.data, "\xF0\x9F\x98\x80");
    /* A broken sequence: one U+FFFD for F0 9F, then 'a' as it is. */
    tok_stream_push(&st, e0, &out);
    tok_stream_push(&st, e1, &out);
    tok_stream_push(&st, a, &out);
    cr_assert_str_eq(out.data, "\xF0\x9F\x98\x80\xEF\xBF\xBD"
                               "a");
    /* An incomplete character at the end is flushed as U+FFFD. */
    tok_stream_push(&st, e0, &out);
    tok_stream_finish(&st, &out);
    cr_assert_str_eq(out.data, "\xF0\x9F\x98\x80\xEF\xBF\xBD"
                               "a\xEF\xBF\xBD");
    cr_assert_eq(tok_stream_push(&st, -1, &out), CRU_EINVAL);
    cr_assert_eq(tok_stream_push(&st, (int32_t)tok_vocab_size(t), &out), CRU_EINVAL);
    cru_buf_free(&out);
    tok_free(t);
}

Test(tokenizer, invalid_utf8_reads_as_replacement)
{
    struct tok *t = qwen_load();
    static const struct {
        const char *in, *as;
    } cases[] = {
        { "\xFF abc", "\xEF\xBF\xBD abc" },
        { "x\xC3", "x\xEF\xBF\xBD" }, /* cut at the end */
        { "\xE2\x82"
          "a\x80\x80",
          "\xEF\xBF\xBD"
          "a\xEF\xBF\xBD\xEF\xBF\xBD" },                                /* maximal subparts */
        { "\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" },     /* a surrogate */
        { "\xC0\xAF<|im_end|>", "\xEF\xBF\xBD\xEF\xBF\xBD<|im_end|>" }, /* overlong */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tok_ids a = TOK_IDS_INIT, b = TOK_IDS_INIT;
        struct cru_buf lossy = CRU_BUF_INIT, back = CRU_BUF_INIT;
        cr_assert_eq(tok_utf8_lossy(cases[i].in, strlen(cases[i].in), &lossy), 0);
        cr_assert_str_eq(lossy.data, cases[i].as, "case %zu", i);
        cr_assert_eq(tok_encode(t, cases[i].in, strlen(cases[i].in), &a), 0);
        cr_assert_eq(tok_encode(t, cases[i].as, strlen(cases[i].as), &b), 0);
        cr_assert_eq(a.n, b.n, "case %zu", i);
        cr_assert_arr_eq(a.v, b.v, a.n * sizeof(int32_t), "case %zu", i);
        cr_assert_eq(tok_decode(t, a.v, a.n, &back), 0);
        cr_assert_str_eq(back.data, cases[i].as);
        tok_ids_free(&a);
        tok_ids_free(&b);
        cru_buf_free(&lossy);
        cru_buf_free(&back);
    }
    tok_free(t);
}

Test(tokenizer, lookups_and_decode_errors)
{
    struct tok *t = qwen_load();
    int32_t id;
    size_t len;
    cr_assert_eq(tok_token_id(t, "<|im_end|>", 10, &id), 0);
    cr_assert(tok_is_special(t, id));
    const char *im_end = tok_token_bytes(t, id, &len);
    cr_assert(len == 10 && memcmp(im_end, "<|im_end|>", 10) == 0);
    cr_assert_eq(tok_token_id(t, "<think>", 7, &id), 0);
    cr_assert_not(tok_is_special(t, id), "<think> is an added token, not a special one");
    cr_assert_eq(tok_token_id(t, " the", 4, &id), 0);
    const char *b = tok_token_bytes(t, id, &len);
    cr_assert(len == 4 && memcmp(b, " the", 4) == 0);
    cr_assert_eq(tok_token_id(t, "no such token at all", 20, &id), CRU_ENOENT);
    cr_assert_gt(tok_vocab_size(t), 151000);
    int32_t bad[] = { 1, -5 };
    struct cru_buf out = CRU_BUF_INIT;
    cr_assert_eq(tok_decode(t, bad, 2, &out), CRU_EINVAL);
    cr_assert(strstr(cru_err_msg(), "token id -5 (position 1)"), "%s", cru_err_msg());
    cr_assert_eq(out.len, 0, "a failed decode appended nothing");
    cru_buf_free(&out);
    tok_free(t);
}

/* ---- many threads share one tokenizer and its cache ---- */

struct thread_arg {
    const struct tok *t;
    const struct corpus *c;
    size_t start, mismatches;
};

static void *encode_thread(void *p)
{
    struct thread_arg *a = p;
    for (size_t k = 0; k < a->c->n; k++) {
        size_t i = (k + a->start) % a->c->n, at;
        struct tok_ids ids = TOK_IDS_INIT;
        if (tok_encode(a->t, json_string_value(a->c->text[i]), json_string_length(a->c->text[i]),
                       &ids) < 0 ||
            !ids_equal(&ids, a->c->ids[i], &at))
            a->mismatches++;
        tok_ids_free(&ids);
    }
    return NULL;
}

Test(tokenizer, threads_share_one_tokenizer)
{
    struct corpus c;
    corpus_load(&c);
    struct tok *t = qwen_load();
    pthread_t th[4];
    struct thread_arg args[4];
    for (size_t i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){ t, &c, i * 600, 0 };
        cr_assert_eq(pthread_create(&th[i], NULL, encode_thread, &args[i]), 0);
    }
    for (size_t i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(args[i].mismatches, 0, "thread %zu", i);
    }
    tok_free(t);
    corpus_free(&c);
}

/* ---- small tokenizers built here, one feature at a time ---- */

/* The byte-level spelling of the raw bytes S (GPT-2's bytes_to_unicode), into OUT. */
static void byte_level(const char *s, size_t n, struct cru_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned b = (unsigned char)s[i], cp = b, k = 0;
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        if (!printable) {
            for (unsigned x = 0; x < b; x++)
                k += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174);
            cp = 256 + k;
        }
        utf8proc_uint8_t u[4];
        utf8proc_ssize_t len = utf8proc_encode_char((utf8proc_int32_t)cp, u);
        cru_buf_append(out, u, (size_t)len);
    }
}

static json_t *bl_string(const char *s)
{
    struct cru_buf b = CRU_BUF_INIT;
    byte_level(s, strlen(s), &b);
    json_t *v = json_stringn(cru_buf_cstr(&b), b.len);
    cru_buf_free(&b);
    return v;
}

struct small {
    const char *const *extra;  /* more vocabulary entries (raw), ids from 256 */
    const char *const *merges; /* pairs of raw strings, NULL-terminated */
    bool pairs;                /* merges as ["a", "b"] rather than "a b" */
    bool ignore_merges;
    const char *added;      /* JSON array, or NULL */
    const char *normalizer; /* JSON, or NULL */
    const char *pre;        /* JSON, or NULL for a ByteLevel with the GPT-2 regex */
};

static char *small_json(const struct small *s)
{
    json_t *vocab = json_object(), *merges = json_array();
    for (unsigned b = 0; b < 256; b++) {
        char c = (char)b;
        struct cru_buf k = CRU_BUF_INIT;
        byte_level(&c, 1, &k);
        json_object_set_new(vocab, cru_buf_cstr(&k), json_integer(b));
        cru_buf_free(&k);
    }
    for (size_t i = 0; s->extra && s->extra[i]; i++) {
        json_t *k = bl_string(s->extra[i]);
        json_object_set_new(vocab, json_string_value(k), json_integer(256 + (int)i));
        json_decref(k);
    }
    for (size_t i = 0; s->merges && s->merges[i]; i += 2) {
        json_t *a = bl_string(s->merges[i]), *b = bl_string(s->merges[i + 1]);
        if (s->pairs) {
            json_array_append_new(merges, json_pack("[o,o]", a, b));
        } else {
            char *m = NULL;
            cru_str_printf(&m, "%s %s", json_string_value(a), json_string_value(b));
            json_array_append_new(merges, json_string(m));
            free(m);
            json_decref(a);
            json_decref(b);
        }
    }
    char *text = NULL;
    json_t *root = json_pack("{s:{s:s, s:o, s:o, s:b}, s:{s:s}, s:{s:s}}", "model", "type", "BPE",
                             "vocab", vocab, "merges", merges, "ignore_merges", s->ignore_merges,
                             "pre_tokenizer", "type", "ByteLevel", "decoder", "type", "ByteLevel");
    json_t *v = NULL;
    if (s->added) {
        cr_assert_eq(cru_json_parse(&v, s->added, strlen(s->added), "added"), 0);
        json_object_set_new(root, "added_tokens", v);
    }
    if (s->normalizer) {
        cr_assert_eq(cru_json_parse(&v, s->normalizer, strlen(s->normalizer), "n"), 0);
        json_object_set_new(root, "normalizer", v);
    }
    if (s->pre) {
        cr_assert_eq(cru_json_parse(&v, s->pre, strlen(s->pre), "pre"), 0);
        json_object_set_new(root, "pre_tokenizer", v);
    }
    cr_assert_eq(cru_json_dump(&text, root, false), 0);
    json_decref(root);
    return text;
}

static struct tok *small_load(const struct small *s)
{
    char *text = small_json(s);
    struct tok *t = NULL;
    cr_assert_eq(tok_load_json(&t, text, strlen(text), "small.json"), 0, "%s", cru_err_msg());
    free(text);
    return t;
}

static void expect_ids(const struct tok *t, const char *text, const int32_t *want, size_t n)
{
    struct tok_ids ids = TOK_IDS_INIT;
    cr_assert_eq(tok_encode(t, text, strlen(text), &ids), 0, "%s", cru_err_msg());
    char got[512] = "";
    for (size_t i = 0; i < ids.n && strlen(got) < 480; i++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), " %d", ids.v[i]);
    cr_assert_eq(ids.n, n, "'%s': got%s", text, got);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(ids.v[i], want[i], "'%s': id %zu; got%s", text, i, got);
    tok_ids_free(&ids);
}

#define IDS(...) (const int32_t[]){ __VA_ARGS__ }, sizeof((const int32_t[]){ __VA_ARGS__ }) / 4

/* Ranks decide, leftmost first among equals; both spellings of merges read the same. */
static const char *const abc_extra[] = { "ab", "abab", "bc", "abc", NULL };
static const char *const abc_merges[] = { "a", "b", "ab", "ab", "b", "c", "ab", "c", NULL };

Test(tokenizer, merges_in_both_spellings)
{
    for (int pairs = 0; pairs < 2; pairs++) {
        struct small s = { .extra = abc_extra, .merges = abc_merges, .pairs = pairs };
        struct tok *t = small_load(&s);
        expect_ids(t, "ab", IDS(256));
        expect_ids(t, "abab", IDS(257));
        /* "a b" (rank 0) beats "b c" (rank 2): ab + c, then "ab c" (rank 3). */
        expect_ids(t, "abc", IDS(259));
        /* "bcbc": only b c merges, leftmost first. */
        expect_ids(t, "bcbc", IDS(258, 258));
        /* A piece longer than the scan limit goes through the heap: the same rules. */
        char longer[201];
        for (int i = 0; i < 200; i += 2)
            memcpy(longer + i, "ab", 2);
        longer[200] = '\0';
        struct tok_ids ids = TOK_IDS_INIT;
        cr_assert_eq(tok_encode(t, longer, 200, &ids), 0);
        cr_assert_eq(ids.n, 50);
        for (size_t i = 0; i < ids.n; i++)
            cr_assert_eq(ids.v[i], 257);
        tok_ids_free(&ids);
        tok_free(t);
    }
}

Test(tokenizer, heap_and_scan_agree_on_odd_runs)
{
    /* "aaa...": "a a" then "aa aa": for an odd count the last 'a' stays alone, whichever
     * merge loop runs (short pieces scan, long ones use the heap). */
    static const char *const extra[] = { "aa", "aaaa", NULL };
    static const char *const merges[] = { "a", "a", "aa", "aa", NULL };
    struct small s = { .extra = extra, .merges = merges };
    struct tok *t = small_load(&s);
    for (size_t n = 1; n < 300; n += 7) {
        char *text = malloc(n + 1);
        memset(text, 'a', n);
        text[n] = '\0';
        struct tok_ids ids = TOK_IDS_INIT;
        cr_assert_eq(tok_encode(t, text, n, &ids), 0);
        size_t want = n / 4 + (n % 4) / 2 + (n % 2);
        cr_assert_eq(ids.n, want, "n=%zu", n);
        for (size_t i = 0; i < n / 4; i++)
            cr_assert_eq(ids.v[i], 257, "n=%zu", n);
        tok_ids_free(&ids);
        free(text);
    }
    tok_free(t);
}

Test(tokenizer, ignore_merges_takes_whole_pieces)
{
    /* "abc" is in the vocabulary but no merge reaches it. */
    static const char *const extra[] = { "ab", "abc", NULL };
    static const char *const merges[] = { "a", "b", NULL };
    struct small s = { .extra = extra, .merges = merges };
    struct tok *t = small_load(&s);
    expect_ids(t, "abc", IDS(256, 'c'));
    tok_free(t);
    s.ignore_merges = true;
    t = small_load(&s);
    expect_ids(t, "abc", IDS(257));
    expect_ids(t, "abcab", IDS(256, 'c', 256)); /* one piece, not in the vocabulary: merged */
    tok_free(t);
}

Test(tokenizer, added_tokens_and_their_flags)
{
    struct small s = {
        .added = "[{\"id\": 300, \"content\": \"<s>\", \"special\": true},"
                 " {\"id\": 301, \"content\": \"<L>\", \"lstrip\": true},"
                 " {\"id\": 302, \"content\": \"<R>\", \"rstrip\": true},"
                 " {\"id\": 303, \"content\": \"cat\", \"single_word\": true},"
                 " {\"id\": 304, \"content\": \"<s>x\"}]",
    };
    struct tok *t = small_load(&s);
    expect_ids(t, "a<s>b", IDS('a', 300, 'b'));
    expect_ids(t, "<s>x", IDS(304)); /* the longest at the same position */
    expect_ids(t, "a  <L>b", IDS('a', 301, 'b'));
    expect_ids(t, "a<R>  b", IDS('a', 302, 'b'));
    expect_ids(t, "a <R>", IDS('a', ' ', 302));
    expect_ids(t, "the cat sat", IDS('t', 'h', 'e', ' ', 303, ' ', 's', 'a', 't'));
    expect_ids(t, "concat", IDS('c', 'o', 'n', 'c', 'a', 't'));
    cr_assert(tok_is_special(t, 300));
    cr_assert_not(tok_is_special(t, 301));
    struct cru_buf out = CRU_BUF_INIT;
    cr_assert_eq(tok_decode(t, (const int32_t[]){ 'a', 300, 301, 304 }, 4, &out), 0);
    cr_assert_str_eq(out.data, "a<s><L><s>x");
    cru_buf_free(&out);
    tok_free(t);
}

Test(tokenizer, nfc_and_normalized_added_tokens)
{
    static const char *const extra[] = { "\xC3\xA9", NULL }; /* é */
    static const char *const merges[] = { "\xC3", "\xA9", NULL };
    struct small s = {
        .extra = extra,
        .merges = merges,
        .normalizer = "{\"type\": \"NFC\"}",
        .added = "[{\"id\": 300, \"content\": \"\xC3\xA9t\xC3\xA9\", \"normalized\": true},"
                 " {\"id\": 301, \"content\": \"e\xCC\x81!\", \"normalized\": false}]",
    };
    struct tok *t = small_load(&s);
    /* e + U+0301 composes to é, one token. */
    expect_ids(t, "e\xCC\x81", IDS(256));
    /* A normalized added token matches after NFC; a raw one before it. */
    expect_ids(t, "e\xCC\x81te\xCC\x81", IDS(300));
    expect_ids(t, "e\xCC\x81!", IDS(301));
    tok_free(t);
    /* Without a normalizer nothing composes. */
    s.normalizer = NULL;
    s.added = NULL;
    t = small_load(&s);
    expect_ids(t, "e\xCC\x81", IDS('e', 0xCC, 0x81));
    tok_free(t);
}

/* Encoding normalizes only around the code points NFC may change: that shortcut must give
 * utf8proc's NFC for every code point, alone, after a starter, before a combining mark, and
 * next to its neighbours. */
Test(tokenizer, nfc_on_every_code_point)
{
    struct small s = { .normalizer = "{\"type\": \"NFC\"}" };
    struct tok *t = small_load(&s);
    for (utf8proc_int32_t base = 0; base < 0x110000; base += 256) {
        for (int form = 0; form < 3; form++) {
            struct cru_buf in = CRU_BUF_INIT, out = CRU_BUF_INIT;
            for (utf8proc_int32_t cp = base; cp < base + 256; cp++) {
                utf8proc_uint8_t u[4];
                if (!utf8proc_codepoint_valid(cp) || cp == 0)
                    continue;
                if (form == 1)
                    cru_buf_putc(&in, 'a');
                cru_buf_append(&in, u, (size_t)utf8proc_encode_char(cp, u));
                if (form == 1)
                    cru_buf_puts(&in, "\xCC\x81 ");
                if (form == 2 && cp % 3 == 0)
                    cru_buf_putc(&in, ' ');
            }
            if (in.len == 0)
                continue;
            struct tok_ids ids = TOK_IDS_INIT;
            size_t nl;
            cr_assert_eq(tok_encode(t, in.data, in.len, &ids), 0);
            cr_assert_eq(tok_decode(t, ids.v, ids.n, &out), 0);
            char *want = nfc(in.data, in.len, &nl);
            cr_assert(out.len == nl && memcmp(out.data, want, nl) == 0,
                      "NFC differs in the block at U+%04X (form %d)", (unsigned)base, form);
            free(want);
            tok_ids_free(&ids);
            cru_buf_free(&in);
            cru_buf_free(&out);
        }
    }
    tok_free(t);
}

/* A long run of combining marks: canonical ordering must stay linear (utf8proc's own is
 * quadratic: 100,000 marks took half a minute) and agree with utf8proc. */
Test(tokenizer, long_runs_of_marks)
{
    struct small s = { .normalizer = "{\"type\": \"NFC\"}" };
    struct tok *t = small_load(&s);
    static const char *const marks[] = { "\xCC\x81", "\xCC\xA3", "\xD6\xB0", "\xCC\x95" };
    for (size_t count = 10; count <= 400000; count *= 20) {
        struct cru_buf in = CRU_BUF_INIT, out = CRU_BUF_INIT;
        cru_buf_putc(&in, 'a');
        for (size_t i = 0; i < count; i++)
            cru_buf_puts(&in, marks[(i * 7) % 4]);
        cru_buf_puts(&in, "e\xCC\x81");
        struct tok_ids ids = TOK_IDS_INIT;
        cr_assert_eq(tok_encode(t, in.data, in.len, &ids), 0);
        cr_assert_eq(tok_decode(t, ids.v, ids.n, &out), 0);
        if (count <= 4000) {
            size_t nl;
            char *want = nfc(in.data, in.len, &nl);
            cr_assert(out.len == nl && memcmp(out.data, want, nl) == 0, "%zu marks", count);
            free(want);
        } else {
            /* utf8proc's own NFC would take hours here: check the rule instead. Classes
             * never decrease along the run, a + U+0323 composed (U+05B0, class 10, does not
             * block it) and so did the final e + U+0301. */
            const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)out.data;
            utf8proc_int32_t cp;
            size_t at = (size_t)utf8proc_iterate(p, (utf8proc_ssize_t)out.len, &cp);
            cr_assert_eq(cp, 0x1EA1);
            int last = 0;
            for (size_t i = 0; i < count - count / 4; i++) {
                at += (size_t)utf8proc_iterate(p + at, (utf8proc_ssize_t)(out.len - at), &cp);
                int c = utf8proc_get_property(cp)->combining_class;
                cr_assert(c > 0 && c >= last, "mark %zu (U+%04X) out of order", i, (unsigned)cp);
                last = c;
            }
            cr_assert_eq(out.len, in.len - 1);
            cr_assert_str_eq(out.data + out.len - 2, "\xC3\xA9");
        }
        tok_ids_free(&ids);
        cru_buf_free(&in);
        cru_buf_free(&out);
    }
    tok_free(t);
}

Test(tokenizer, split_behaviors)
{
    struct small s = {
        .pre = "{\"type\": \"Sequence\", \"pretokenizers\": ["
               "{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"Removed\"},"
               "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\p{N}\"}, \"behavior\": "
               "\"Isolated\"},"
               "{\"type\": \"ByteLevel\", \"use_regex\": false}]}",
        .extra = abc_extra,
        .merges = abc_merges,
    };
    struct tok *t = small_load(&s);
    /* '-' is removed; digits split "ab1ab" into ab | 1 | ab; without the digit abab merges. */
    expect_ids(t, "ab-ab", IDS(256, 256));
    expect_ids(t, "abab", IDS(257));
    expect_ids(t, "ab1ab", IDS(256, '1', 256));
    tok_free(t);
}

static void load_fails(const char *text, int code, const char *msg)
{
    struct tok *t = NULL;
    cr_assert_eq(tok_load_json(&t, text, strlen(text), "t.json"), code, "%s: %s", text,
                 cru_err_msg());
    cr_assert_null(t);
    cr_assert(strstr(cru_err_msg(), msg), "want '%s' in '%s'", msg, cru_err_msg());
}

/* A small valid document with one field replaced: KEY's value becomes VALUE. */
static char *with(const char *key, const char *value)
{
    struct small s = { 0 };
    char *text = small_json(&s);
    json_t *root = NULL, *v = NULL;
    cr_assert_eq(cru_json_parse(&root, text, strlen(text), "t"), 0);
    cr_assert_eq(cru_json_parse(&v, value, strlen(value), "v"), 0, "%s", cru_err_msg());
    if (strncmp(key, "model.", 6) == 0)
        json_object_set_new(json_object_get(root, "model"), key + 6, v);
    else
        json_object_set_new(root, key, v);
    free(text);
    cr_assert_eq(cru_json_dump(&text, root, false), 0);
    json_decref(root);
    return text;
}

Test(tokenizer, unsupported_and_malformed_are_named)
{
    static const struct {
        const char *key, *value;
        int code;
        const char *msg;
    } cases[] = {
        { "model.type", "\"WordPiece\"", CRU_EUNSUPPORTED,
          "model type 'WordPiece' is not supported" },
        { "model.type", "\"Unigram\"", CRU_EUNSUPPORTED, "model type 'Unigram'" },
        { "normalizer", "{\"type\": \"NFKC\"}", CRU_EUNSUPPORTED, "normalizer type 'NFKC'" },
        { "normalizer", "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Lowercase\"}]}",
          CRU_EUNSUPPORTED, "normalizer type 'Lowercase'" },
        { "pre_tokenizer", "{\"type\": \"Metaspace\"}", CRU_EUNSUPPORTED,
          "pre_tokenizer type 'Metaspace'" },
        { "pre_tokenizer",
          "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"x\"}, "
          "\"behavior\": \"Isolated\"}",
          CRU_EUNSUPPORTED, "no ByteLevel step" },
        { "pre_tokenizer",
          "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
          "\"pattern\": {\"Regex\": \"x\"}, \"behavior\": \"Contiguous\"}]}",
          CRU_EUNSUPPORTED, "Split behavior 'Contiguous' is not supported" },
        { "pre_tokenizer",
          "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
          "\"pattern\": {\"Regex\": \"(x\"}, \"behavior\": \"Isolated\"}]}",
          CRU_EPARSE, "does not compile at offset 2" },
        { "pre_tokenizer", "{\"type\": \"ByteLevel\", \"add_prefix_space\": true}",
          CRU_EUNSUPPORTED, "add_prefix_space" },
        { "decoder", "{\"type\": \"WordPiece\"}", CRU_EUNSUPPORTED, "decoder type 'WordPiece'" },
        { "post_processor", "{\"type\": \"TemplateProcessing\"}", CRU_EUNSUPPORTED,
          "post_processor type 'TemplateProcessing'" },
        { "model.byte_fallback", "true", CRU_EUNSUPPORTED, "byte_fallback" },
        { "model.dropout", "0.1", CRU_EUNSUPPORTED, "dropout" },
        { "model.continuing_subword_prefix", "\"##\"", CRU_EUNSUPPORTED,
          "continuing_subword_prefix '##'" },
        { "model.merges", "[\"a\"]", CRU_EPARSE, "model.merges[0]: expected two tokens" },
        { "model.merges", "[\"a zz\"]", CRU_EPARSE, "the second is not in the vocabulary" },
        { "model.merges", "[[\"a\", \"b\", \"c\"]]", CRU_EPARSE, "model.merges[0]: expected" },
        { "model.merges", "[\"a b\"]", CRU_EPARSE, "the merged token is not in the vocabulary" },
        { "model.vocab", "{\"a\": 0}", CRU_EPARSE, "no token for byte 0x00" },
        { "model.vocab", "{\"a\": -1}", CRU_EPARSE, "token 'a' has id out of range" },
        { "model.vocab", "{\"a\": 99999999}", CRU_EPARSE, "token 'a' has id out of range" },
        { "model.vocab", "{\"\\u00e0\\u4e2d\": 1}", CRU_EPARSE, "outside the byte-level alphabet" },
        { "added_tokens", "[{\"id\": 1, \"content\": \"\"}]", CRU_ELIMIT, "added_tokens[0]" },
        { "added_tokens", "[{\"id\": \"x\", \"content\": \"y\"}]", CRU_EPARSE, "added_tokens[0]" },
        { "added_tokens", "{}", CRU_EPARSE, "added_tokens: expected an array" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = with(cases[i].key, cases[i].value);
        load_fails(text, cases[i].code, cases[i].msg);
        free(text);
    }
    load_fails("[1]", CRU_EPARSE, "expected a JSON object");
    load_fails("{\"model\": ", CRU_EPARSE, "t.json:1:");
}

Test(tokenizer, bounds)
{
    /* The document size bound is checked before parsing anything. */
    struct tok *t = NULL;
    cr_assert_eq(tok_load_json(&t, "{}", TOK_JSON_MAX + 1, "big.json"), CRU_ELIMIT);
    cr_assert(strstr(cru_err_msg(), "big.json"));
    /* A token longer than TOK_TOKEN_MAX. */
    char *big = malloc(TOK_TOKEN_MAX * 2 + 64);
    memset(big, 'a', TOK_TOKEN_MAX + 1);
    big[TOK_TOKEN_MAX + 1] = '\0';
    char *value = NULL;
    cru_str_printf(&value, "[{\"id\": 1, \"content\": \"%s\"}]", big);
    char *text = with("added_tokens", value);
    load_fails(text, CRU_ELIMIT, "content of 1025 bytes");
    free(text);
    free(value);
    free(big);
    cr_assert_eq(tok_load(&t, "/nonexistent-folder"), CRU_ENOENT);
    cr_assert(strstr(cru_err_msg(), "/nonexistent-folder/tokenizer.json"), "%s", cru_err_msg());
}

/* tokenizer.json replaced by a FIFO with no writer: refused at once, where the loader used to
 * wait in open(2) for ever. The same document in a regular file is the control. */
Test(tokenizer, a_fifo_is_refused_without_blocking)
{
    struct small sm = { .extra = abc_extra, .merges = abc_merges };
    char *text = small_json(&sm);
    char dir[] = "/tmp/crucible-test-tok-XXXXXX", path[128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
    cr_assert_eq(cru_file_write_atomic(path, text, strlen(text), 0644), 0);
    struct tok *t = NULL;
    cr_assert_eq(tok_load(&t, dir), 0, "control: %s", cru_err_msg());
    tok_free(t);

    struct timespec t0 = fifo_swap(path);
    t = (struct tok *)&t;
    int rc = tok_load(&t, dir);
    fifo_done(t0, rc, path);
    cr_assert_null(t);
    cru_remove_tree(dir);
    free(text);
}

/* ---- crucible tokenize ---- */

struct cli_run {
    int status;
    struct cru_buf out, err;
};

/* Runs `crucible tokenize ARGS` with INPUT on stdin. */
static void tokenize_cli(struct cli_run *r, const char *args, const char *input, size_t len)
{
    const char *bin = getenv("CRUCIBLE_BIN");
    cr_assert(bin && *bin, "CRUCIBLE_BIN is not set: run the tests with `make test`");
    char dir[] = "/tmp/crucible-test-tokenize-XXXXXX", cmd[8192], path[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/in", dir);
    cr_assert_eq(cru_file_write_atomic(path, input, len, 0600), 0);
    snprintf(cmd, sizeof(cmd), "'%s' tokenize %s <%s/in >%s/out 2>%s/err", bin, args, dir, dir,
             dir);
    int st = system(cmd);
    cr_assert(WIFEXITED(st), "%s", cmd);
    memset(r, 0, sizeof(*r));
    r->status = WEXITSTATUS(st);
    snprintf(path, sizeof(path), "%s/out", dir);
    cr_assert_eq(cru_file_read(path, 1 << 24, &r->out), 0);
    snprintf(path, sizeof(path), "%s/err", dir);
    cr_assert_eq(cru_file_read(path, 1 << 24, &r->err), 0);
    cru_buf_append(&r->out, "", 0);
    cru_buf_append(&r->err, "", 0);
    cru_remove_tree(dir);
}

static void cli_free(struct cli_run *r)
{
    cru_buf_free(&r->out);
    cru_buf_free(&r->err);
}

static char *ids_line(const char *text, bool json)
{
    struct tok *t = qwen_load();
    struct tok_ids ids = TOK_IDS_INIT;
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(tok_encode(t, text, strlen(text), &ids), 0);
    cru_buf_puts(&b, json ? "[" : "");
    for (size_t i = 0; i < ids.n; i++)
        cru_buf_printf(&b, "%s%d", i ? (json ? "," : " ") : "", ids.v[i]);
    cru_buf_puts(&b, json ? "]\n" : "\n");
    tok_ids_free(&ids);
    tok_free(t);
    return cru_buf_detach(&b, NULL);
}

Test(tokenize_cli, encode_decode_json_jsonl, .timeout = 60)
{
    char args[4400];
    const char *text = "Hello, 世界!<|im_end|>\n  don't";
    struct cli_run r;
    char *want = ids_line(text, false), *want_json = ids_line(text, true);

    snprintf(args, sizeof(args), "--tokenizer '%s'", qwen_dir());
    tokenize_cli(&r, args, text, strlen(text));
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    cr_assert_str_eq(r.out.data, want);
    cli_free(&r);

    snprintf(args, sizeof(args), "--tokenizer '%s' --json", qwen_dir());
    tokenize_cli(&r, args, text, strlen(text));
    cr_assert_str_eq(r.out.data, want_json);
    cli_free(&r);

    snprintf(args, sizeof(args), "-t '%s' --decode", qwen_dir());
    tokenize_cli(&r, args, want_json, strlen(want_json));
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    cr_assert_str_eq(r.out.data, text);
    cli_free(&r);

    /* --jsonl: one string a line in, one array a line out; and back. */
    const char *lines = "\"Hello, 世界!<|im_end|>\\n  don't\"\n\"\"\n";
    snprintf(args, sizeof(args), "-t '%s' --jsonl", qwen_dir());
    tokenize_cli(&r, args, lines, strlen(lines));
    cr_assert_eq(r.status, 0, "%s", r.err.data);
    char *both = NULL;
    cru_str_printf(&both, "%s[]\n", want_json);
    cr_assert_str_eq(r.out.data, both);
    snprintf(args, sizeof(args), "-t '%s' --jsonl --decode", qwen_dir());
    struct cli_run back;
    tokenize_cli(&back, args, r.out.data, r.out.len);
    cr_assert_eq(back.status, 0, "%s", back.err.data);
    cr_assert_str_eq(back.out.data, lines);
    cli_free(&back);
    cli_free(&r);
    free(both);
    free(want);
    free(want_json);
}

Test(tokenize_cli, errors, .timeout = 60)
{
    struct cli_run r;
    char args[4400];
    tokenize_cli(&r, "", "x", 1);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err.data, "crucible: tokenize: --tokenizer DIR is required"), "%s",
              r.err.data);
    cli_free(&r);
    tokenize_cli(&r, "--tokenizer /nonexistent", "x", 1);
    cr_assert_eq(r.status, 3);
    cr_assert(strstr(r.err.data, "crucible: tokenize: cannot open /nonexistent/tokenizer.json") ||
                  strstr(r.err.data, "crucible: tokenize: ") == r.err.data,
              "%s", r.err.data);
    cli_free(&r);
    snprintf(args, sizeof(args), "-t '%s' --decode", qwen_dir());
    tokenize_cli(&r, args, "12 x3", 5);
    cr_assert_eq(r.status, 3);
    cr_assert(strstr(r.err.data, "stdin: expected token ids"), "%s", r.err.data);
    cli_free(&r);
    tokenize_cli(&r, args, "99999999", 8);
    cr_assert_eq(r.status, 3);
    cr_assert(strstr(r.err.data, "token id 99999999"), "%s", r.err.data);
    cli_free(&r);
    snprintf(args, sizeof(args), "-t '%s' --jsonl", qwen_dir());
    tokenize_cli(&r, args, "\"a\"\n[1]\n", 8);
    cr_assert_eq(r.status, 3);
    cr_assert(strstr(r.err.data, "stdin line 2: expected a JSON string, got an array"), "%s",
              r.err.data);
    cli_free(&r);
    snprintf(args, sizeof(args), "-t '%s' --json --jsonl", qwen_dir());
    tokenize_cli(&r, args, "", 0);
    cr_assert_eq(r.status, 2);
    cli_free(&r);
}
