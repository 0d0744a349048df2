/* tokenizer: byte-level BPE loaded from a HuggingFace tokenizer.json, exact to HuggingFace's
 * tokenizers library for the features it supports.
 *
 * Encoding runs the same stages as HuggingFace: added tokens are split out of the raw text
 * first (those marked normalized after normalization), each remaining segment is normalized
 * (NFC through utf8proc), split by the pre-tokenizer's regexes (PCRE2, UTF and Unicode
 * properties, JIT-compiled), and each piece is merged by BPE. Vocabulary entries are kept as
 * the raw bytes they stand for (the ByteLevel alphabet is undone once at load time), so BPE
 * starts from the piece's own bytes and no per-character mapping happens while encoding.
 * Merge ranks live in an open-addressing hash table keyed by the pair of ids; the result of
 * each short piece is remembered in a fixed-size cache shared by all threads (a direct-mapped
 * table whose slots are guarded by striped locks). This module does not know chat templates
 * (model/chat.c) and does not add special tokens around a text: templates do that.
 */
#include "model/tokenizer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <utf8proc.h>

#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/str.h"

/* The piece cache: slots, lock stripes, and what a slot can hold. */
#define CACHE_SLOTS     (1u << 15)
#define CACHE_STRIPES   64
#define CACHE_PIECE_MAX 30
#define CACHE_IDS_MAX   8

/* Code points below this have their NFC bit in a table; above, utf8proc is asked. */
#define NFC_TABLE_END 0x30000

/* Pieces with more symbols than this are merged with a heap instead of repeated scans. */
#define BPE_SCAN_MAX 48

/* The GPT-2 pre-tokenizer regex, used by a ByteLevel pre-tokenizer with use_regex. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

struct added {
    char *content; /* owned, raw text */
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
};

/* Added tokens that are matched in one pass, indexed by first byte, longest first. */
struct matcher {
    const struct added **tok; /* sorted by (first byte, length descending) */
    size_t n;
    uint32_t first[257]; /* tok[first[b]..first[b+1]) start with byte b */
    int only_first;      /* the first byte of every token when they share one ('<'), else -1 */
};

enum split_behavior { SPLIT_ISOLATED, SPLIT_REMOVED };

struct split {
    pcre2_code *re;
    bool jit;
    enum split_behavior behavior;
};

struct merge_slot {
    uint64_t key; /* (left << 32) | right; MERGE_EMPTY when free */
    uint32_t rank;
    int32_t id;
};

#define MERGE_EMPTY UINT64_MAX

/* The first merges of every piece are of two bytes: their table (512 KiB, where the merge
 * table is megabytes) answers them from cache. */
struct byte_pair {
    uint32_t rank; /* UINT32_MAX when the bytes do not merge */
    int32_t id;
};

struct cache_slot {
    uint64_t hash;
    uint8_t len, n_ids;
    char piece[CACHE_PIECE_MAX];
    int32_t ids[CACHE_IDS_MAX];
};

struct tok {
    /* id -> bytes: vocabulary entries as raw bytes, added tokens as their content */
    char *arena;
    size_t arena_len;
    uint32_t *off; /* n_ids + 1 offsets into arena; a token without bytes has off[i] == off[i+1] */
    uint8_t *kind; /* KIND_NONE, KIND_VOCAB, KIND_ADDED, KIND_SPECIAL */
    size_t n_ids;

    uint32_t *vocab_tab; /* open addressing over raw bytes: id + 1, 0 when free */
    size_t vocab_mask;
    struct merge_slot *merges;
    size_t merge_mask;
    int32_t byte_id[256];
    struct byte_pair *byte_pairs; /* the merge of raw bytes a, b at a * 256 + b */
    bool ignore_merges;

    struct added *added;
    size_t n_added;
    struct matcher raw, norm; /* normalized=false tokens; normalized=true ones */
    bool nfc;

    struct split splits[TOK_SPLIT_MAX];
    size_t n_splits;

    uint8_t *nfc_unsafe; /* a bit per code point below NFC_TABLE_END: may change under NFC */

    struct cache_slot *cache;
    pthread_mutex_t *locks; /* CACHE_STRIPES of them, guarding cache slots i % CACHE_STRIPES */
};

enum { KIND_NONE, KIND_VOCAB, KIND_ADDED, KIND_SPECIAL };

static int nfc_table(struct tok *t);
static uint32_t pair_rank(const struct tok *t, int32_t a, int32_t b, int32_t *id);

/* ---- small helpers ---- */

int tok_ids_push(struct tok_ids *ids, int32_t id)
{
    return tok_ids_append(ids, &id, 1);
}

int tok_ids_append(struct tok_ids *ids, const int32_t *v, size_t n)
{
    if (n > CRU_BUF_MAX / sizeof(int32_t) - ids->n)
        return cru_err_set(CRU_ELIMIT, "more than %zu token ids", CRU_BUF_MAX / sizeof(int32_t));
    if (ids->n + n > ids->cap) {
        size_t cap = ids->cap ? ids->cap : 64;
        while (cap < ids->n + n)
            cap *= 2;
        int32_t *p = realloc(ids->v, cap * sizeof(int32_t));
        if (!p)
            return cru_err_set(CRU_ENOMEM, "out of memory for %zu token ids", cap);
        ids->v = p;
        ids->cap = cap;
    }
    if (n)
        memcpy(ids->v + ids->n, v, n * sizeof(int32_t));
    ids->n += n;
    return 0;
}

void tok_ids_free(struct tok_ids *ids)
{
    free(ids->v);
    ids->v = NULL;
    ids->n = ids->cap = 0;
}

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return mix64(h ^ w ^ ((uint64_t)n << 59));
}

/* The length of the valid UTF-8 sequence at S (N bytes left): 1 to 4; or -K for an invalid
 * maximal subpart of K bytes; or 0 when the N bytes are a valid but incomplete start. */
static int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return -1;
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n)
            return 0;
        unsigned char b = s[i];
        if (b < lo || b > hi)
            return -i;
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

/* The length of the longest valid UTF-8 prefix of S. */
static size_t utf8_valid_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        int k = utf8_seq(p + i, n - i);
        if (k <= 0)
            return i;
        i += (size_t)k;
    }
    return n;
}

static const char replacement[] = "\xEF\xBF\xBD";

int tok_utf8_lossy(const char *s, size_t len, struct cru_buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t ok = utf8_valid_len(s + i, len - i);
        int rc = cru_buf_append(out, s + i, ok);
        if (rc < 0)
            return rc;
        i += ok;
        if (i >= len)
            break;
        int k = utf8_seq(p + i, len - i);
        /* An incomplete sequence at the very end is one maximal subpart too. */
        i += k < 0 ? (size_t)-k : len - i;
        if ((rc = cru_buf_append(out, replacement, 3)) < 0)
            return rc;
    }
    return 0;
}

/* ---- byte-level alphabet ---- */

/* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other 68 are shifted
 * to U+0100 and up, in byte order. CP_BYTE maps a code point below 0x144 back to its byte. */
static void byte_level_tables(int16_t cp_byte[0x144])
{
    int next = 256;
    for (int i = 0; i < 0x144; i++)
        cp_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        cp_byte[printable ? b : next++] = (int16_t)b;
    }
}

/* Converts the byte-level spelling S (UTF-8) to the raw bytes it stands for, into OUT (at
 * least LEN bytes). Returns the byte count, or -1 for a character outside the alphabet. */
static long byte_level_decode(const int16_t cp_byte[0x144], const char *s, size_t len, char *out)
{
    size_t i = 0, o = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0 || cp < 0 || cp >= 0x144 || cp_byte[cp] < 0)
            return -1;
        out[o++] = (char)cp_byte[cp];
        i += (size_t)k;
    }
    return (long)o;
}

/* ---- tables ---- */

static size_t table_size(size_t n)
{
    size_t cap = 1024;
    while (cap < n * 2)
        cap *= 2;
    return cap;
}

static int vocab_find(const struct tok *t, const char *s, size_t n)
{
    size_t i = hash_bytes(s, n) & t->vocab_mask;
    for (;;) {
        uint32_t e = t->vocab_tab[i];
        if (e == 0)
            return -1;
        int32_t id = (int32_t)(e - 1);
        size_t len = t->off[id + 1] - t->off[id];
        if (len == n && t->kind[id] == KIND_VOCAB && memcmp(t->arena + t->off[id], s, n) == 0)
            return id;
        i = (i + 1) & t->vocab_mask;
    }
}

static void vocab_insert(struct tok *t, int32_t id)
{
    const char *s = t->arena + t->off[id];
    size_t n = t->off[id + 1] - t->off[id];
    size_t i = hash_bytes(s, n) & t->vocab_mask;
    while (t->vocab_tab[i])
        i = (i + 1) & t->vocab_mask;
    t->vocab_tab[i] = (uint32_t)id + 1;
}

static const struct merge_slot *merge_find(const struct tok *t, int32_t a, int32_t b)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = mix64(key) & t->merge_mask;
    for (;;) {
        const struct merge_slot *m = &t->merges[i];
        if (m->key == key)
            return m;
        if (m->key == MERGE_EMPTY)
            return NULL;
        i = (i + 1) & t->merge_mask;
    }
}

/* A later duplicate of a merge replaces the earlier one, as in HuggingFace. */
static void merge_insert(struct tok *t, int32_t a, int32_t b, uint32_t rank, int32_t id)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = mix64(key) & t->merge_mask;
    while (t->merges[i].key != MERGE_EMPTY && t->merges[i].key != key)
        i = (i + 1) & t->merge_mask;
    t->merges[i] = (struct merge_slot){ key, rank, id };
}

/* ---- loading ---- */

struct loader {
    struct tok *t;
    const char *name;
    int16_t cp_byte[0x144];
};

static int unsupported(const struct loader *l, const char *what, const char *type)
{
    char shown[CRU_SHOW_CAP(64)];
    return cru_err_set(CRU_EUNSUPPORTED, "%s: %s '%s' is not supported", l->name, what,
                       cru_str_show(shown, type, 64, true));
}

static int get_type(const struct loader *l, const json_t *obj, const char *path, const char **type)
{
    if (!json_is_object(obj))
        return cru_err_set(CRU_EPARSE, "%s: %s: expected an object, got %s", l->name, path,
                           cru_json_type_name(obj));
    int rc = cru_json_get_str(obj, path, "type", true, type);
    return rc < 0 ? cru_err_wrap(rc, "%s", l->name) : 0;
}

static int load_normalizer(struct loader *l, const json_t *n)
{
    const char *type;
    int rc;
    if (!n || json_is_null(n))
        return 0;
    if ((rc = get_type(l, n, "normalizer", &type)) < 0)
        return rc;
    if (strcmp(type, "NFC") == 0) {
        l->t->nfc = true;
        return 0;
    }
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(n, "normalizers");
        size_t i;
        json_t *v;
        if (!json_is_array(list))
            return cru_err_set(CRU_EPARSE, "%s: normalizer.normalizers: expected an array",
                               l->name);
        json_array_foreach(list, i, v)
        {
            if ((rc = get_type(l, v, "normalizer", &type)) < 0)
                return rc;
            if (strcmp(type, "NFC") != 0)
                return unsupported(l, "normalizer type", type);
            l->t->nfc = true;
        }
        return 0;
    }
    return unsupported(l, "normalizer type", type);
}

static int compile_split(struct loader *l, const char *pattern, size_t len, bool literal,
                         enum split_behavior behavior)
{
    struct tok *t = l->t;
    int err;
    PCRE2_SIZE at;
    if (t->n_splits >= TOK_SPLIT_MAX)
        return cru_err_set(CRU_ELIMIT, "%s: more than %d Split steps in the pre-tokenizer", l->name,
                           TOK_SPLIT_MAX);
    if (len > TOK_PATTERN_MAX)
        return cru_err_set(CRU_ELIMIT, "%s: a Split pattern of %zu bytes (at most %d)", l->name,
                           len, TOK_PATTERN_MAX);
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, opts, &err, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        return cru_err_set(CRU_EPARSE, "%s: the Split pattern does not compile at offset %zu: %s",
                           l->name, (size_t)at, (const char *)msg);
    }
    struct split *s = &t->splits[t->n_splits++];
    s->re = re;
    s->behavior = behavior;
    /* Without JIT (a kernel that forbids executable memory) the interpreter gives the same
     * matches, only slower. */
    s->jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

static int load_pretok_one(struct loader *l, const json_t *p, bool *byte_level)
{
    const char *type, *behavior = NULL;
    int rc;
    if ((rc = get_type(l, p, "pre_tokenizer", &type)) < 0)
        return rc;
    if (strcmp(type, "ByteLevel") == 0) {
        bool prefix = false, use_regex = true;
        if ((rc = cru_json_get_bool(p, "pre_tokenizer", "add_prefix_space", false, &prefix)) < 0 ||
            (rc = cru_json_get_bool(p, "pre_tokenizer", "use_regex", false, &use_regex)) < 0)
            return cru_err_wrap(rc, "%s", l->name);
        if (prefix)
            return cru_err_set(CRU_EUNSUPPORTED,
                               "%s: pre_tokenizer ByteLevel with add_prefix_space is not supported",
                               l->name);
        *byte_level = true;
        return use_regex
                   ? compile_split(l, gpt2_pattern, strlen(gpt2_pattern), false, SPLIT_ISOLATED)
                   : 0;
    }
    if (strcmp(type, "Split") == 0) {
        bool invert = false;
        json_t *pat = json_object_get(p, "pattern");
        if ((rc = cru_json_get_str(p, "pre_tokenizer", "behavior", true, &behavior)) < 0 ||
            (rc = cru_json_get_bool(p, "pre_tokenizer", "invert", false, &invert)) < 0)
            return cru_err_wrap(rc, "%s", l->name);
        enum split_behavior b;
        if (strcmp(behavior, "Isolated") == 0)
            b = SPLIT_ISOLATED;
        else if (strcmp(behavior, "Removed") == 0)
            b = SPLIT_REMOVED;
        else
            return unsupported(l, "pre_tokenizer Split behavior", behavior);
        if (invert)
            return cru_err_set(CRU_EUNSUPPORTED,
                               "%s: pre_tokenizer Split with invert is not supported", l->name);
        json_t *re = json_object_get(pat, "Regex"), *str = json_object_get(pat, "String");
        if (json_is_string(re))
            return compile_split(l, json_string_value(re), json_string_length(re), false, b);
        if (json_is_string(str))
            return compile_split(l, json_string_value(str), json_string_length(str), true, b);
        return cru_err_set(CRU_EPARSE,
                           "%s: pre_tokenizer.pattern: expected {\"Regex\": ...} or "
                           "{\"String\": ...}",
                           l->name);
    }
    return unsupported(l, "pre_tokenizer type", type);
}

static int load_pretok(struct loader *l, const json_t *p)
{
    const char *type;
    bool byte_level = false;
    int rc;
    if (!p || json_is_null(p))
        return cru_err_set(CRU_EUNSUPPORTED,
                           "%s: no pre_tokenizer: only byte-level BPE (a ByteLevel "
                           "pre-tokenizer) is supported",
                           l->name);
    if ((rc = get_type(l, p, "pre_tokenizer", &type)) < 0)
        return rc;
    if (strcmp(type, "Sequence") == 0) {
        json_t *list = json_object_get(p, "pretokenizers"), *v;
        size_t i;
        if (!json_is_array(list))
            return cru_err_set(CRU_EPARSE, "%s: pre_tokenizer.pretokenizers: expected an array",
                               l->name);
        json_array_foreach(list, i, v)
        {
            if ((rc = load_pretok_one(l, v, &byte_level)) < 0)
                return rc;
        }
    } else if ((rc = load_pretok_one(l, p, &byte_level)) < 0) {
        return rc;
    }
    if (!byte_level)
        return cru_err_set(CRU_EUNSUPPORTED,
                           "%s: the pre_tokenizer has no ByteLevel step: only byte-level BPE is "
                           "supported",
                           l->name);
    return 0;
}

static int load_decoder(struct loader *l, const json_t *d, const json_t *post)
{
    const char *type;
    int rc;
    if (!d || json_is_null(d))
        return cru_err_set(CRU_EUNSUPPORTED, "%s: no decoder: a ByteLevel decoder is needed",
                           l->name);
    if ((rc = get_type(l, d, "decoder", &type)) < 0)
        return rc;
    if (strcmp(type, "ByteLevel") != 0)
        return unsupported(l, "decoder type", type);
    /* The post-processor only adds tokens around a sequence (which templates do here) or
     * adjusts offsets; ByteLevel's does the latter, which ids do not carry. */
    if (post && !json_is_null(post)) {
        if ((rc = get_type(l, post, "post_processor", &type)) < 0)
            return rc;
        if (strcmp(type, "ByteLevel") != 0)
            return unsupported(l, "post_processor type", type);
    }
    return 0;
}

/* Sizes the id tables to N_IDS entries and lays out the arena. */
static int alloc_ids(struct tok *t, size_t n_ids, size_t arena)
{
    t->n_ids = n_ids;
    t->off = calloc(n_ids + 1, sizeof(uint32_t));
    t->kind = calloc(n_ids, 1);
    t->arena = malloc(arena ? arena : 1);
    if (!t->off || !t->kind || !t->arena)
        return cru_err_set(CRU_ENOMEM, "out of memory for %zu tokens", n_ids);
    return 0;
}

/* The largest id and the total byte length of the vocabulary and the added tokens. */
static int measure(struct loader *l, const json_t *vocab, const json_t *added, size_t *n_ids,
                   size_t *arena)
{
    const char *key;
    json_t *v;
    size_t max = 0, bytes = 0, i;
    if (json_object_size(vocab) > TOK_VOCAB_MAX)
        return cru_err_set(CRU_ELIMIT, "%s: model.vocab has %zu entries (at most %zu)", l->name,
                           json_object_size(vocab), TOK_VOCAB_MAX);
    json_object_foreach((json_t *)(uintptr_t)vocab, key, v)
    {
        char shown[CRU_SHOW_CAP(64)];
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= (json_int_t)TOK_VOCAB_MAX)
            return cru_err_set(CRU_EPARSE,
                               "%s: model.vocab: token '%s' has id %s (expected an "
                               "integer from 0 to %zu)",
                               l->name, cru_str_show(shown, key, 64, true),
                               json_is_integer(v) ? "out of range" : cru_json_type_name(v),
                               TOK_VOCAB_MAX - 1);
        size_t len = strlen(key);
        if (len > TOK_TOKEN_MAX * 2)
            return cru_err_set(CRU_ELIMIT, "%s: model.vocab: a token of %zu bytes (at most %d)",
                               l->name, len, TOK_TOKEN_MAX);
        if ((size_t)json_integer_value(v) > max)
            max = (size_t)json_integer_value(v);
        bytes += len;
    }
    if (json_array_size(added) > TOK_ADDED_MAX)
        return cru_err_set(CRU_ELIMIT, "%s: %zu added tokens (at most %d)", l->name,
                           json_array_size(added), TOK_ADDED_MAX);
    json_array_foreach(added, i, v)
    {
        json_t *id = json_object_get(v, "id"), *content = json_object_get(v, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= (json_int_t)TOK_VOCAB_MAX || !json_is_string(content))
            return cru_err_set(CRU_EPARSE,
                               "%s: added_tokens[%zu]: expected an integer id from 0 to %zu and "
                               "a string content",
                               l->name, i, TOK_VOCAB_MAX - 1);
        if (json_string_length(content) == 0 || json_string_length(content) > TOK_TOKEN_MAX)
            return cru_err_set(CRU_ELIMIT, "%s: added_tokens[%zu]: content of %zu bytes (1 to %d)",
                               l->name, i, json_string_length(content), TOK_TOKEN_MAX);
        if ((size_t)json_integer_value(id) > max)
            max = (size_t)json_integer_value(id);
        bytes += json_string_length(content);
    }
    if (json_object_size(vocab) == 0)
        return cru_err_set(CRU_EPARSE, "%s: model.vocab is empty", l->name);
    *n_ids = max + 1;
    *arena = bytes;
    return 0;
}

static int load_vocab(struct loader *l, const json_t *vocab, const json_t *added)
{
    struct tok *t = l->t;
    size_t n_ids = 0, arena = 0, i;
    const char *key;
    json_t *v;
    int rc;
    if ((rc = measure(l, vocab, added, &n_ids, &arena)) < 0 ||
        (rc = alloc_ids(t, n_ids, arena)) < 0)
        return rc;
    /* Lay out in id order: lengths first, then offsets, then bytes. */
    uint32_t *len = calloc(n_ids, sizeof(uint32_t));
    char tmp[TOK_TOKEN_MAX * 2];
    if (!len)
        return cru_err_set(CRU_ENOMEM, "out of memory for %zu tokens", n_ids);
    json_object_foreach((json_t *)(uintptr_t)vocab, key, v)
    {
        size_t id = (size_t)json_integer_value(v);
        long n = byte_level_decode(l->cp_byte, key, strlen(key), tmp);
        char shown[CRU_SHOW_CAP(64)];
        if (n < 0 || n > TOK_TOKEN_MAX) {
            rc = cru_err_set(n < 0 ? CRU_EPARSE : CRU_ELIMIT, "%s: model.vocab: token '%s' %s",
                             l->name, cru_str_show(shown, key, 64, true),
                             n < 0 ? "has a character outside the byte-level alphabet"
                                   : "is too long");
            goto done;
        }
        if (t->kind[id] != KIND_NONE) {
            rc = cru_err_set(CRU_EPARSE, "%s: model.vocab: id %zu is given to two tokens", l->name,
                             id);
            goto done;
        }
        t->kind[id] = KIND_VOCAB;
        len[id] = (uint32_t)n;
    }
    json_array_foreach(added, i, v)
    {
        size_t id = (size_t)json_integer_value(json_object_get(v, "id"));
        /* An added token may repeat a vocabulary entry (same id): its content wins for
         * decoding, as in HuggingFace. */
        t->kind[id] = KIND_ADDED;
        len[id] = (uint32_t)json_string_length(json_object_get(v, "content"));
    }
    for (size_t k = 0; k < n_ids; k++)
        t->off[k + 1] = t->off[k] + len[k];
    json_object_foreach((json_t *)(uintptr_t)vocab, key, v)
    {
        size_t id = (size_t)json_integer_value(v);
        if (t->kind[id] == KIND_VOCAB)
            byte_level_decode(l->cp_byte, key, strlen(key), t->arena + t->off[id]);
    }
    json_array_foreach(added, i, v)
    {
        json_t *c = json_object_get(v, "content");
        size_t id = (size_t)json_integer_value(json_object_get(v, "id"));
        memcpy(t->arena + t->off[id], json_string_value(c), json_string_length(c));
    }
    t->arena_len = t->off[n_ids];

    t->vocab_mask = table_size(json_object_size(vocab)) - 1;
    t->vocab_tab = calloc(t->vocab_mask + 1, sizeof(uint32_t));
    if (!t->vocab_tab) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory for the vocabulary table");
        goto done;
    }
    for (size_t k = 0; k < n_ids; k++)
        if (t->kind[k] == KIND_VOCAB)
            vocab_insert(t, (int32_t)k);
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        if ((t->byte_id[b] = vocab_find(t, &c, 1)) < 0) {
            rc = cru_err_set(CRU_EPARSE,
                             "%s: model.vocab has no token for byte 0x%02x: not a byte-level "
                             "vocabulary",
                             l->name, b);
            goto done;
        }
    }
done:
    free(len);
    return rc;
}

static int build_byte_pairs(struct tok *t)
{
    t->byte_pairs = malloc(65536 * sizeof(struct byte_pair));
    if (!t->byte_pairs)
        return cru_err_set(CRU_ENOMEM, "out of memory for the byte-pair table");
    for (unsigned a = 0; a < 256; a++)
        for (unsigned b = 0; b < 256; b++) {
            struct byte_pair *bp = &t->byte_pairs[a * 256 + b];
            bp->id = 0;
            bp->rank = pair_rank(t, t->byte_id[a], t->byte_id[b], &bp->id);
        }
    return 0;
}

/* Splits merge I (a "left right" string or a [left, right] pair) into its two halves. */
static int merge_halves(struct loader *l, const json_t *m, size_t i, const char **a, size_t *na,
                        const char **b, size_t *nb)
{
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        const char *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' '))
            return cru_err_set(CRU_EPARSE,
                               "%s: model.merges[%zu]: expected two tokens "
                               "separated by one space",
                               l->name, i);
        *a = s;
        *na = (size_t)(sp - s);
        *b = sp + 1;
        *nb = strlen(sp + 1);
        return 0;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0));
        *na = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1));
        *nb = json_string_length(json_array_get(m, 1));
        return 0;
    }
    return cru_err_set(CRU_EPARSE,
                       "%s: model.merges[%zu]: expected a \"a b\" string or an [\"a\", \"b\"] "
                       "pair",
                       l->name, i);
}

static int load_merges(struct loader *l, const json_t *merges)
{
    struct tok *t = l->t;
    size_t i;
    json_t *m;
    if (merges && !json_is_array(merges))
        return cru_err_set(CRU_EPARSE, "%s: model.merges: expected an array", l->name);
    size_t n = json_array_size(merges);
    if (n > TOK_MERGES_MAX)
        return cru_err_set(CRU_ELIMIT, "%s: model.merges has %zu entries (at most %zu)", l->name, n,
                           TOK_MERGES_MAX);
    t->merge_mask = table_size(n) - 1;
    t->merges = malloc((t->merge_mask + 1) * sizeof(struct merge_slot));
    if (!t->merges)
        return cru_err_set(CRU_ENOMEM, "out of memory for %zu merges", n);
    for (size_t k = 0; k <= t->merge_mask; k++)
        t->merges[k].key = MERGE_EMPTY;
    char buf[TOK_TOKEN_MAX * 2];
    json_array_foreach(merges, i, m)
    {
        const char *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        int rc = merge_halves(l, m, i, &a, &na, &b, &nb);
        if (rc < 0)
            return rc;
        long ra = na <= TOK_TOKEN_MAX ? byte_level_decode(l->cp_byte, a, na, buf) : -1;
        long rb =
            ra >= 0 && nb <= TOK_TOKEN_MAX ? byte_level_decode(l->cp_byte, b, nb, buf + ra) : -1;
        int ia = ra >= 0 ? vocab_find(t, buf, (size_t)ra) : -1;
        int ib = rb >= 0 ? vocab_find(t, buf + ra, (size_t)rb) : -1;
        int iab = ia >= 0 && ib >= 0 ? vocab_find(t, buf, (size_t)(ra + rb)) : -1;
        if (iab < 0) {
            char sa[CRU_SHOW_CAP(48)], sb[CRU_SHOW_CAP(48)];
            return cru_err_set(CRU_EPARSE,
                               "%s: model.merges[%zu]: '%s' + '%s': %s is not in the vocabulary",
                               l->name, i, cru_str_show(sa, a, na < 48 ? na : 48, true),
                               cru_str_show(sb, b, nb < 48 ? nb : 48, true),
                               ia < 0   ? "the first"
                               : ib < 0 ? "the second"
                                        : "the merged token");
        }
        merge_insert(t, ia, ib, (uint32_t)i, iab);
    }
    return 0;
}

static int load_model(struct loader *l, const json_t *model, const json_t *added)
{
    const char *type, *s = NULL;
    double dropout = 0;
    int rc;
    if ((rc = get_type(l, model, "model", &type)) < 0)
        return rc;
    if (strcmp(type, "BPE") != 0)
        return unsupported(l, "model type", type);
    json_t *d = json_object_get(model, "dropout");
    if (d && !json_is_null(d) &&
        (rc = cru_json_get_double(model, "model", "dropout", false, 0, 1, &dropout)) < 0)
        return cru_err_wrap(rc, "%s", l->name);
    if (dropout > 0)
        return cru_err_set(CRU_EUNSUPPORTED, "%s: model.dropout %g is not supported", l->name,
                           dropout);
    static const char *const empty_only[] = { "continuing_subword_prefix", "end_of_word_suffix" };
    for (size_t k = 0; k < 2; k++) {
        json_t *v = json_object_get(model, empty_only[k]);
        s = json_is_string(v) ? json_string_value(v) : "";
        if (v && !json_is_null(v) && (!json_is_string(v) || *s))
            return cru_err_set(CRU_EUNSUPPORTED, "%s: model.%s '%s' is not supported", l->name,
                               empty_only[k], s);
    }
    bool byte_fallback = false;
    if ((rc = cru_json_get_bool(model, "model", "byte_fallback", false, &byte_fallback)) < 0 ||
        (rc = cru_json_get_bool(model, "model", "ignore_merges", false, &l->t->ignore_merges)) < 0)
        return cru_err_wrap(rc, "%s", l->name);
    if (byte_fallback)
        return cru_err_set(CRU_EUNSUPPORTED, "%s: model.byte_fallback is not supported", l->name);
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab))
        return cru_err_set(CRU_EPARSE, "%s: model.vocab: expected an object", l->name);
    if ((rc = load_vocab(l, vocab, added)) < 0 ||
        (rc = load_merges(l, json_object_get(model, "merges"))) < 0)
        return rc;
    return build_byte_pairs(l->t);
}

static int added_cmp(const void *a, const void *b)
{
    const struct added *x = *(const struct added *const *)a, *y = *(const struct added *const *)b;
    unsigned char fx = (unsigned char)x->content[0], fy = (unsigned char)y->content[0];
    if (fx != fy)
        return fx < fy ? -1 : 1;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int build_matcher(struct matcher *m, struct added *all, size_t n, bool normalized)
{
    m->tok = calloc(n ? n : 1, sizeof(*m->tok));
    if (!m->tok)
        return cru_err_set(CRU_ENOMEM, "out of memory for added tokens");
    for (size_t i = 0; i < n; i++)
        if (all[i].normalized == normalized)
            m->tok[m->n++] = &all[i];
    qsort(m->tok, m->n, sizeof(*m->tok), added_cmp);
    size_t k = 0;
    for (unsigned b = 0; b < 256; b++) {
        m->first[b] = (uint32_t)k;
        while (k < m->n && (unsigned char)m->tok[k]->content[0] == b)
            k++;
    }
    m->first[256] = (uint32_t)k;
    m->only_first = m->n ? (unsigned char)m->tok[0]->content[0] : -1;
    for (size_t i = 1; i < m->n; i++)
        if ((unsigned char)m->tok[i]->content[0] != m->only_first)
            m->only_first = -1;
    return 0;
}

static int load_added(struct loader *l, const json_t *added)
{
    struct tok *t = l->t;
    size_t i;
    json_t *v;
    t->added = calloc(json_array_size(added) + 1, sizeof(struct added));
    if (!t->added)
        return cru_err_set(CRU_ENOMEM, "out of memory for added tokens");
    json_array_foreach(added, i, v)
    {
        struct added *a = &t->added[t->n_added];
        char path[64];
        json_t *c = json_object_get(v, "content");
        snprintf(path, sizeof(path), "added_tokens[%zu]", i);
        int rc;
        if ((rc = cru_json_get_bool(v, path, "special", false, &a->special)) < 0 ||
            (rc = cru_json_get_bool(v, path, "lstrip", false, &a->lstrip)) < 0 ||
            (rc = cru_json_get_bool(v, path, "rstrip", false, &a->rstrip)) < 0 ||
            (rc = cru_json_get_bool(v, path, "single_word", false, &a->single_word)) < 0 ||
            (rc = cru_json_get_bool(v, path, "normalized", false, &a->normalized)) < 0)
            return cru_err_wrap(rc, "%s", l->name);
        a->id = (int32_t)json_integer_value(json_object_get(v, "id"));
        a->len = json_string_length(c);
        if ((rc = cru_str_ndup(&a->content, json_string_value(c), a->len)) < 0)
            return rc;
        if (!t->nfc)
            a->normalized = false;
        t->kind[a->id] = a->special ? KIND_SPECIAL : KIND_ADDED;
        t->n_added++;
    }
    int rc = build_matcher(&t->raw, t->added, t->n_added, false);
    return rc < 0 ? rc : build_matcher(&t->norm, t->added, t->n_added, true);
}

static int load_root(struct loader *l, const json_t *root)
{
    int rc;
    if (!json_is_object(root))
        return cru_err_set(CRU_EPARSE, "%s: expected a JSON object", l->name);
    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_null(added) && !json_is_array(added))
        return cru_err_set(CRU_EPARSE, "%s: added_tokens: expected an array", l->name);
    json_t *model = json_object_get(root, "model");
    if (!model)
        return cru_err_set(CRU_EPARSE, "%s: no model", l->name);
    if ((rc = load_model(l, model, added)) < 0 ||
        (rc = load_normalizer(l, json_object_get(root, "normalizer"))) < 0 ||
        (rc = load_pretok(l, json_object_get(root, "pre_tokenizer"))) < 0 ||
        (rc = load_decoder(l, json_object_get(root, "decoder"),
                           json_object_get(root, "post_processor"))) < 0)
        return rc;
    return load_added(l, added);
}

int tok_load_json(struct tok **out, const char *text, size_t len, const char *name)
{
    json_t *root = NULL;
    struct tok *t = NULL;
    int rc;
    *out = NULL;
    if (len > TOK_JSON_MAX)
        return cru_err_set(CRU_ELIMIT, "%s: %zu bytes (at most %zu)", name, len, TOK_JSON_MAX);
    if ((rc = cru_json_parse(&root, text, len, name)) < 0)
        return rc;
    t = calloc(1, sizeof(*t));
    if (!t) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    struct loader l = { .t = t, .name = name };
    byte_level_tables(l.cp_byte);
    if ((rc = load_root(&l, root)) < 0 || (t->nfc && (rc = nfc_table(t)) < 0))
        goto done;
    t->cache = calloc(CACHE_SLOTS, sizeof(struct cache_slot));
    t->locks = calloc(CACHE_STRIPES, sizeof(pthread_mutex_t));
    if (!t->cache || !t->locks) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory for the piece cache");
        goto done;
    }
    for (size_t i = 0; i < CACHE_STRIPES; i++)
        pthread_mutex_init(&t->locks[i], NULL);
    *out = t;
    t = NULL;
done:
    tok_free(t);
    json_decref(root);
    return rc;
}

int tok_load_file(struct tok **out, const char *path)
{
    struct cru_buf b = CRU_BUF_INIT;
    *out = NULL;
    int rc = cru_file_read(path, TOK_JSON_MAX, &b);
    if (rc == 0)
        rc = tok_load_json(out, cru_buf_cstr(&b), b.len, path);
    cru_buf_free(&b);
    return rc;
}

int tok_load(struct tok **out, const char *dir)
{
    char *path = NULL;
    *out = NULL;
    int rc = cru_str_printf(&path, "%s/tokenizer.json", dir);
    if (rc == 0)
        rc = tok_load_file(out, path);
    free(path);
    return rc;
}

void tok_free(struct tok *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_splits; i++)
        pcre2_code_free(t->splits[i].re);
    for (size_t i = 0; i < t->n_added; i++)
        free(t->added[i].content);
    for (size_t i = 0; t->locks && i < CACHE_STRIPES; i++)
        pthread_mutex_destroy(&t->locks[i]);
    free(t->locks);
    free(t->added);
    free(t->raw.tok);
    free(t->norm.tok);
    free(t->arena);
    free(t->off);
    free(t->kind);
    free(t->vocab_tab);
    free(t->merges);
    free(t->byte_pairs);
    free(t->cache);
    free(t->nfc_unsafe);
    free(t);
}

/* ---- BPE ---- */

/* The rank and result of merging symbols A and B: UINT32_MAX when they do not merge. */
static uint32_t pair_rank(const struct tok *t, int32_t a, int32_t b, int32_t *id)
{
    const struct merge_slot *m = merge_find(t, a, b);
    if (!m)
        return UINT32_MAX;
    *id = m->id;
    return m->rank;
}

/* Merges the symbols IDS[0..N) (the bytes S[0..N)) in place, lowest rank first and leftmost among
 * equal ranks (HuggingFace's order); returns the new count. The rank of each adjacent pair is kept
 * in an array, so a merge costs a scan for the minimum and two lookups for its new neighbours: the
 * fastest way for the short pieces that make up nearly all text. */
static size_t bpe_scan(const struct tok *t, const char *s, int32_t *ids, size_t n)
{
    uint32_t rank[BPE_SCAN_MAX];
    int32_t to[BPE_SCAN_MAX];
    for (size_t i = 0; i + 1 < n; i++) {
        const struct byte_pair *bp =
            &t->byte_pairs[(unsigned char)s[i] * 256 + (unsigned char)s[i + 1]];
        rank[i] = bp->rank;
        to[i] = bp->id;
    }
    while (n > 1) {
        size_t at = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (rank[i] < rank[at])
                at = i;
        if (rank[at] == UINT32_MAX)
            break;
        ids[at] = to[at];
        memmove(ids + at + 1, ids + at + 2, (n - at - 2) * sizeof(int32_t));
        /* The pairs after the merged one move down by one; its neighbours are recomputed. */
        size_t tail = at + 3 <= n ? n - at - 3 : 0;
        memmove(rank + at + 1, rank + at + 2, tail * sizeof(uint32_t));
        memmove(to + at + 1, to + at + 2, tail * sizeof(int32_t));
        n--;
        if (at > 0)
            rank[at - 1] = pair_rank(t, ids[at - 1], ids[at], &to[at - 1]);
        if (at + 1 < n)
            rank[at] = pair_rank(t, ids[at], ids[at + 1], &to[at]);
    }
    return n;
}

/* The same merges for long pieces (a run of one letter is a single piece), with a binary
 * heap of candidate pairs ordered by (rank, position) and symbols in a linked list. A popped
 * candidate whose symbols have changed since it was pushed is stale and dropped. */
struct cand {
    uint32_t rank;
    uint32_t pos;
    int32_t id;
};

static bool cand_less(const struct cand *a, const struct cand *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct cand *h, size_t *n, struct cand c)
{
    size_t i = (*n)++;
    while (i > 0 && cand_less(&c, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static struct cand heap_pop(struct cand *h, size_t *n)
{
    struct cand top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c]))
            c++;
        if (!cand_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

static int bpe_heap(const struct tok *t, int32_t *ids, size_t *np)
{
    size_t n = *np, nh = 0;
    int32_t *prev = malloc(n * sizeof(int32_t)), *next = malloc(n * sizeof(int32_t));
    /* Each merge pushes at most two candidates: the heap never holds more than 3n. */
    struct cand *h = malloc(3 * n * sizeof(struct cand));
    bool *gone = calloc(n, 1);
    int rc = 0;
    if (!prev || !next || !h || !gone) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory merging a piece of %zu bytes", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        const struct merge_slot *m = merge_find(t, ids[i], ids[i + 1]);
        if (m)
            heap_push(h, &nh, (struct cand){ m->rank, (uint32_t)i, m->id });
    }
    while (nh) {
        struct cand c = heap_pop(h, &nh);
        int32_t r = next[c.pos];
        if (gone[c.pos] || r < 0)
            continue;
        const struct merge_slot *m = merge_find(t, ids[c.pos], ids[r]);
        if (!m || m->id != c.id || m->rank != c.rank)
            continue;
        ids[c.pos] = c.id;
        gone[r] = true;
        next[c.pos] = next[r];
        if (next[r] >= 0)
            prev[next[r]] = (int32_t)c.pos;
        int32_t p = prev[c.pos];
        if (p >= 0 && (m = merge_find(t, ids[p], ids[c.pos])))
            heap_push(h, &nh, (struct cand){ m->rank, (uint32_t)p, m->id });
        if (next[c.pos] >= 0 && (m = merge_find(t, ids[c.pos], ids[next[c.pos]])))
            heap_push(h, &nh, (struct cand){ m->rank, c.pos, m->id });
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = next[i])
        ids[k++] = ids[i];
    *np = k;
done:
    free(prev);
    free(next);
    free(h);
    free(gone);
    return rc;
}

/* Encodes one pre-tokenized piece. */
static int encode_piece(const struct tok *t, const char *s, size_t n, struct tok_ids *out)
{
    int32_t small[BPE_SCAN_MAX];
    uint64_t hash = 0;
    struct cache_slot *slot = NULL;
    pthread_mutex_t *lock = NULL;
    int rc;

    if (n == 0)
        return 0;
    if (n == 1)
        return tok_ids_push(out, t->byte_id[(unsigned char)s[0]]);
    if (t->ignore_merges) {
        int id = vocab_find(t, s, n);
        if (id >= 0)
            return tok_ids_push(out, id);
    }
    /* Two or three bytes merge faster than the cache answers. */
    if (n > 3 && n <= CACHE_PIECE_MAX) {
        hash = hash_bytes(s, n);
        size_t i = hash & (CACHE_SLOTS - 1);
        slot = &t->cache[i];
        lock = &t->locks[i % CACHE_STRIPES];
        pthread_mutex_lock(lock);
        if (slot->hash == hash && slot->len == n && memcmp(slot->piece, s, n) == 0) {
            int32_t ids[CACHE_IDS_MAX];
            size_t k = slot->n_ids;
            memcpy(ids, slot->ids, k * sizeof(int32_t));
            pthread_mutex_unlock(lock);
            return tok_ids_append(out, ids, k);
        }
        pthread_mutex_unlock(lock);
    }
    if (n <= BPE_SCAN_MAX) {
        for (size_t i = 0; i < n; i++)
            small[i] = t->byte_id[(unsigned char)s[i]];
        size_t k = bpe_scan(t, s, small, n);
        if (slot && k <= CACHE_IDS_MAX) {
            pthread_mutex_lock(lock);
            slot->hash = hash;
            slot->len = (uint8_t)n;
            slot->n_ids = (uint8_t)k;
            memcpy(slot->piece, s, n);
            memcpy(slot->ids, small, k * sizeof(int32_t));
            pthread_mutex_unlock(lock);
        }
        return tok_ids_append(out, small, k);
    }
    int32_t *ids = malloc(n * sizeof(int32_t));
    if (!ids)
        return cru_err_set(CRU_ENOMEM, "out of memory merging a piece of %zu bytes", n);
    for (size_t i = 0; i < n; i++)
        ids[i] = t->byte_id[(unsigned char)s[i]];
    size_t k = n;
    if ((rc = bpe_heap(t, ids, &k)) == 0)
        rc = tok_ids_append(out, ids, k);
    free(ids);
    return rc;
}

/* ---- pre-tokenization ---- */

struct enc {
    const struct tok *t;
    struct tok_ids *out;
    pcre2_match_data *md;
};

static int split_step(struct enc *e, size_t step, const char *s, size_t n);

static int split_emit(struct enc *e, size_t step, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (step + 1 < e->t->n_splits)
        return split_step(e, step + 1, s, n);
    return encode_piece(e->t, s, n, e->out);
}

/* Splits S by step STEP's regex: matches and the gaps between them become pieces (Isolated),
 * or only the gaps (Removed). Empty matches split nothing. */
static int split_step(struct enc *e, size_t step, const char *s, size_t n)
{
    const struct split *sp = &e->t->splits[step];
    size_t at = 0, gap = 0;
    int rc;
    while (at < n) {
        int m = sp->jit
                    ? pcre2_jit_match(sp->re, (PCRE2_SPTR)s, n, at, 0, e->md, NULL)
                    : pcre2_match(sp->re, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, e->md, NULL);
        if (m == PCRE2_ERROR_NOMATCH)
            break;
        if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof(msg));
            return cru_err_set(CRU_EINTERNAL, "the pre-tokenizer regex failed: %s",
                               (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        size_t start = ov[0], end = ov[1];
        if (end == start) {
            /* Step over one whole character so that the next search starts on a boundary. */
            at = start + 1;
            while (at < n && ((unsigned char)s[at] & 0xC0) == 0x80)
                at++;
            continue;
        }
        if ((rc = split_emit(e, step, s + gap, start - gap)) < 0)
            return rc;
        if (sp->behavior == SPLIT_ISOLATED &&
            (rc = split_emit(e, step, s + start, end - start)) < 0)
            return rc;
        at = gap = end;
    }
    return split_emit(e, step, s + gap, n - gap);
}

static int pretokenize(struct enc *e, const char *s, size_t n)
{
    if (e->t->n_splits == 0)
        return encode_piece(e->t, s, n, e->out);
    return split_step(e, 0, s, n);
}

/* ---- added tokens ---- */

static bool is_word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c >= 0x80;
}

static bool is_space_byte(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

struct match {
    size_t start, end; /* the span taken out of the text, stripped space included */
    const struct added *a;
};

/* The leftmost, then longest, added token of M in S[from..N); false when there is none. */
static bool find_added(const struct matcher *m, const char *s, size_t n, size_t from, size_t floor,
                       struct match *out)
{
    for (size_t i = from; i < n; i++) {
        if (m->only_first >= 0) {
            const char *q = memchr(s + i, m->only_first, n - i);
            if (!q)
                return false;
            i = (size_t)(q - s);
        }
        unsigned char c = (unsigned char)s[i];
        for (uint32_t k = m->first[c]; k < m->first[c + 1]; k++) {
            const struct added *a = m->tok[k];
            if (a->len > n - i || memcmp(s + i, a->content, a->len) != 0)
                continue;
            size_t end = i + a->len;
            if (a->single_word && ((i > 0 && is_word_byte((unsigned char)s[i - 1])) ||
                                   (end < n && is_word_byte((unsigned char)s[end]))))
                continue;
            size_t start = i;
            if (a->lstrip)
                while (start > floor && is_space_byte((unsigned char)s[start - 1]))
                    start--;
            if (a->rstrip)
                while (end < n && is_space_byte((unsigned char)s[end]))
                    end++;
            *out = (struct match){ start, end, a };
            return true;
        }
    }
    return false;
}

static int encode_normalized(struct enc *e, const char *s, size_t n)
{
    const struct matcher *m = &e->t->norm;
    size_t at = 0;
    struct match mt;
    int rc;
    while (m->n && find_added(m, s, n, at, at, &mt)) {
        if ((rc = pretokenize(e, s + at, mt.start - at)) < 0 ||
            (rc = tok_ids_push(e->out, mt.a->id)) < 0)
            return rc;
        at = mt.end;
    }
    return pretokenize(e, s + at, n - at);
}

/* Whether NFC may change text that holds code point CP: CP has a non-zero combining class,
 * can be the second half of a canonical composition, is a conjoining Hangul jamo (composed by
 * algorithm, not by table), or is not its own NFC (a singleton or a composition exclusion). Text
 * made only of other code points is already NFC, and utf8proc is not needed for it. */
static bool nfc_may_change(utf8proc_int32_t cp)
{
    const utf8proc_property_t *p = utf8proc_get_property(cp);
    if (p->combining_class != 0 || (p->comb_index != UINT16_MAX && (p->comb_index & 0x8000)))
        return true;
    if (cp >= 0x1100 && cp <= 0x11FF)
        return true;
    if (p->decomp_type != 0 || p->decomp_seqindex == UINT16_MAX)
        return false;
    /* A canonical decomposition: stable when NFC composes it back (é), not when it is a
     * singleton or excluded from composition (U+212B ANGSTROM SIGN becomes U+00C5). */
    utf8proc_uint8_t one[4], *norm = NULL;
    utf8proc_ssize_t n = utf8proc_encode_char(cp, one);
    utf8proc_ssize_t k = utf8proc_map(one, n, &norm, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    bool same = k == n && memcmp(norm, one, (size_t)n) == 0;
    free(norm);
    return !same;
}

static int nfc_table(struct tok *t)
{
    t->nfc_unsafe = calloc(NFC_TABLE_END / 8, 1);
    if (!t->nfc_unsafe)
        return cru_err_set(CRU_ENOMEM, "out of memory for the NFC table");
    for (utf8proc_int32_t cp = 0x300; cp < NFC_TABLE_END; cp++)
        if (nfc_may_change(cp))
            t->nfc_unsafe[cp / 8] |= (uint8_t)(1u << (cp % 8));
    return 0;
}

static bool cp_unsafe(const struct tok *t, utf8proc_int32_t cp)
{
    return cp >= NFC_TABLE_END ? nfc_may_change(cp) : (t->nfc_unsafe[cp / 8] >> (cp % 8)) & 1;
}

static int ccc(utf8proc_int32_t cp)
{
    return utf8proc_get_property(cp)->combining_class;
}

/* Puts each run of combining marks (class above 0) of V[0..N) in canonical order: stably by
 * class. Short runs by insertion, long ones by counting, so the cost is linear. */
static int order_marks(utf8proc_int32_t *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (ccc(v[i]) == 0) {
            i++;
            continue;
        }
        size_t end = i;
        while (end < n && ccc(v[end]) != 0)
            end++;
        size_t len = end - i;
        if (len <= 32) {
            for (size_t a = i + 1; a < end; a++) {
                utf8proc_int32_t x = v[a];
                int cx = ccc(x);
                size_t b = a;
                for (; b > i && ccc(v[b - 1]) > cx; b--)
                    v[b] = v[b - 1];
                v[b] = x;
            }
        } else {
            size_t count[257] = { 0 };
            utf8proc_int32_t *tmp = malloc(len * sizeof(*tmp));
            if (!tmp)
                return cru_err_set(CRU_ENOMEM, "out of memory ordering %zu combining marks", len);
            for (size_t a = i; a < end; a++)
                count[ccc(v[a]) + 1]++;
            for (size_t c = 1; c < 257; c++)
                count[c] += count[c - 1];
            for (size_t a = i; a < end; a++)
                tmp[count[ccc(v[a])]++] = v[a];
            memcpy(v + i, tmp, len * sizeof(*tmp));
            free(tmp);
        }
        i = end;
    }
    return 0;
}

/* Appends NFC of the valid UTF-8 S to OUT. utf8proc decomposes each code point and composes
 * the result; the canonical ordering in between is done here (order_marks), because
 * utf8proc's own ordering is quadratic in the length of a run of marks: a tool's output of
 * 100,000 combining marks took half a minute. */
static int nfc_window(const char *s, size_t n, struct cru_buf *out)
{
    const utf8proc_option_t opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    utf8proc_int32_t stack[256], *buf = stack;
    size_t cap = 256, len = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) {
            rc = cru_err_set(CRU_EINTERNAL, "invalid UTF-8 reached the normalizer");
            break;
        }
        /* One slot stays free: utf8proc_reencode writes a NUL after the text. */
        utf8proc_ssize_t d =
            utf8proc_decompose_char(cp, buf + len, (utf8proc_ssize_t)(cap - len - 1), opts, NULL);
        if (d < 0) {
            rc = cru_err_set(CRU_EINTERNAL, "NFC normalization failed: %s", utf8proc_errmsg(d));
            break;
        }
        if ((size_t)d >= cap - len) {
            size_t ncap = cap * 2 + (size_t)d;
            utf8proc_int32_t *nb =
                buf == stack ? malloc(ncap * sizeof(*nb)) : realloc(buf, ncap * sizeof(*nb));
            if (!nb) {
                rc = cru_err_set(CRU_ENOMEM, "out of memory normalizing %zu bytes", n);
                break;
            }
            if (buf == stack)
                memcpy(nb, stack, len * sizeof(*nb));
            buf = nb;
            cap = ncap;
            continue; /* decompose the same code point again, into the larger buffer */
        }
        len += (size_t)d;
        i += (size_t)k;
    }
    if (rc == 0)
        rc = order_marks(buf, len);
    if (rc == 0) {
        utf8proc_ssize_t b = utf8proc_reencode(buf, (utf8proc_ssize_t)len, opts);
        rc = b < 0 ? cru_err_set(CRU_EINTERNAL, "NFC normalization failed: %s", utf8proc_errmsg(b))
                   : cru_buf_append(out, buf, (size_t)b);
    }
    if (buf != stack)
        free(buf);
    return rc;
}

/* NFC of the valid UTF-8 S, into OUT; *CHANGED says whether anything needed normalizing (if
 * not, OUT is left empty and S is already NFC).
 *
 * NFC is local: a code point that nfc_may_change() clears (a starter that is not the second
 * half of any composition) blocks reordering and composition across it. So only windows
 * around the other code points go through utf8proc, each from the code point before the
 * first of a run (the starter its marks may compose with) to the end of the run; the rest is
 * copied. Below U+0300 (lead bytes below 0xCC) nothing decomposes or composes, so ASCII and
 * Latin-1 text is decided by one comparison a byte. */
static int nfc_apply(const struct tok *t, const char *s, size_t n, struct cru_buf *out,
                     bool *changed)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, prev = 0, done = 0;
    int rc;
    *changed = false;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                prev = i + 7;
                i += 8;
                continue;
            }
        }
        if (p[i] < 0xCC) {
            prev = i;
            i += p[i] < 0x80 ? 1 : 2;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0)
            return cru_err_set(CRU_EINTERNAL, "invalid UTF-8 reached the normalizer");
        if (!cp_unsafe(t, cp)) {
            prev = i;
            i += (size_t)k;
            continue;
        }
        size_t ws = prev > done ? prev : done, we = i + (size_t)k;
        while (we < n) {
            k = utf8proc_iterate(p + we, (utf8proc_ssize_t)(n - we), &cp);
            if (k <= 0 || !cp_unsafe(t, cp))
                break;
            we += (size_t)k;
        }
        *changed = true;
        if ((rc = cru_buf_append(out, s + done, ws - done)) < 0 ||
            (rc = nfc_window(s + ws, we - ws, out)) < 0)
            return rc;
        done = prev = we;
        i = we;
    }
    return *changed ? cru_buf_append(out, s + done, n - done) : 0;
}

/* Normalizes one segment between added tokens, then encodes it. */
static int encode_segment(struct enc *e, const char *s, size_t n)
{
    struct cru_buf norm = CRU_BUF_INIT;
    bool changed = false;
    int rc;
    if (n == 0)
        return 0;
    if (e->t->nfc && (rc = nfc_apply(e->t, s, n, &norm, &changed)) < 0)
        return rc;
    rc = changed ? encode_normalized(e, norm.data, norm.len) : encode_normalized(e, s, n);
    cru_buf_free(&norm);
    return rc;
}

int tok_encode(const struct tok *t, const char *text, size_t len, struct tok_ids *out)
{
    struct cru_buf clean = CRU_BUF_INIT;
    struct enc e = { .t = t, .out = out };
    size_t at = 0, n0 = out->n;
    struct match mt;
    int rc = 0;

    if (utf8_valid_len(text, len) != len) {
        if ((rc = tok_utf8_lossy(text, len, &clean)) < 0)
            return rc;
        text = clean.data;
        len = clean.len;
    }
    e.md = pcre2_match_data_create(1, NULL);
    if (!e.md) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory for regex match data");
        goto done;
    }
    while (t->raw.n && find_added(&t->raw, text, len, at, at, &mt)) {
        if ((rc = encode_segment(&e, text + at, mt.start - at)) < 0 ||
            (rc = tok_ids_push(out, mt.a->id)) < 0)
            goto done;
        at = mt.end;
    }
    rc = encode_segment(&e, text + at, len - at);
done:
    if (rc < 0)
        out->n = n0;
    pcre2_match_data_free(e.md);
    cru_buf_free(&clean);
    return rc;
}

/* Whether cutting S (N bytes) at P would change a single-word token's verdict: one that ends
 * at P is a whole word in the left part (its end is the text's) but not in S when S[P] is a
 * word byte, and one that begins at P likewise with S[P-1]. */
static bool cut_changes_a_word(const struct matcher *m, const char *s, size_t n, size_t p)
{
    for (size_t k = 0; k < m->n; k++) {
        const struct added *a = m->tok[k];
        if (!a->single_word)
            continue;
        if (p < n && is_word_byte((unsigned char)s[p]) && a->len <= p &&
            memcmp(s + p - a->len, a->content, a->len) == 0 &&
            (p == a->len || !is_word_byte((unsigned char)s[p - a->len - 1])))
            return true;
        if (p > 0 && is_word_byte((unsigned char)s[p - 1]) && a->len <= n - p &&
            memcmp(s + p, a->content, a->len) == 0 &&
            (p + a->len == n || !is_word_byte((unsigned char)s[p + a->len])))
            return true;
    }
    return false;
}

int tok_added_edges(const struct tok *t, const char *text, size_t len, size_t **out, size_t *n_out)
{
    struct cru_buf clean = CRU_BUF_INIT;
    size_t *v = NULL, n = 0, cap = 0, at = 0;
    struct match mt;
    int rc = 0;
    *out = NULL;
    *n_out = 0;
    /* Only valid text maps positions one to one; lossy replacement would shift them. */
    if (utf8_valid_len(text, len) != len)
        return cru_err_set(CRU_EINVAL, "the text is not valid UTF-8");
    while (t->raw.n && find_added(&t->raw, text, len, at, at, &mt)) {
        if (n + 2 > cap) {
            size_t *p = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(size_t));
            if (!p) {
                rc = cru_err_set(CRU_ENOMEM, "out of memory");
                goto done;
            }
            v = p;
        }
        if (mt.start > 0 && (n == 0 || v[n - 1] != mt.start) &&
            !cut_changes_a_word(&t->raw, text, len, mt.start))
            v[n++] = mt.start;
        if (mt.end < len && !cut_changes_a_word(&t->raw, text, len, mt.end))
            v[n++] = mt.end;
        at = mt.end;
    }
    *out = v;
    *n_out = n;
    v = NULL;
done:
    free(v);
    cru_buf_free(&clean);
    return rc;
}

/* ---- decoding and lookups ---- */

const char *tok_token_bytes(const struct tok *t, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= t->n_ids || t->kind[id] == KIND_NONE)
        return NULL;
    *len = t->off[id + 1] - t->off[id];
    return t->arena + t->off[id];
}

int tok_decode(const struct tok *t, const int32_t *v, size_t n, struct cru_buf *out)
{
    size_t len0 = out->len;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *s = tok_token_bytes(t, v[i], &len);
        int rc = s ? cru_buf_append(out, s, len)
                   : cru_err_set(CRU_EINVAL,
                                 "token id %d (position %zu) is not in the vocabulary "
                                 "(%zu ids)",
                                 (int)v[i], i, t->n_ids);
        if (rc < 0) {
            out->len = len0;
            if (out->data)
                out->data[len0] = '\0';
            return rc;
        }
    }
    return 0;
}

int tok_token_id(const struct tok *t, const char *s, size_t len, int32_t *id)
{
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].len == len && memcmp(t->added[i].content, s, len) == 0) {
            *id = t->added[i].id;
            return 0;
        }
    int v = vocab_find(t, s, len);
    if (v < 0) {
        char shown[CRU_SHOW_CAP(64)];
        return cru_err_set(CRU_ENOENT, "no token '%s' in the vocabulary",
                           cru_str_show(shown, s, len < 64 ? len : 64, true));
    }
    *id = v;
    return 0;
}

size_t tok_vocab_size(const struct tok *t)
{
    return t->n_ids;
}

bool tok_is_special(const struct tok *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n_ids && t->kind[id] == KIND_SPECIAL;
}

/* ---- streaming decoder ---- */

void tok_stream_init(struct tok_stream *s, const struct tok *t)
{
    s->t = t;
    s->n_held = 0;
}

/* Emits the complete part of HELD + S[0..N) and keeps an incomplete character's start. */
static int stream_feed(struct tok_stream *st, const char *s, size_t n, struct cru_buf *out)
{
    int rc;
    /* Complete the held character first, one byte at a time (at most three). */
    while (st->n_held && n) {
        st->held[st->n_held++] = (unsigned char)*s++;
        n--;
        int k = utf8_seq(st->held, st->n_held);
        if (k == 0)
            continue;
        if (k > 0) {
            rc = cru_buf_append(out, st->held, (size_t)k);
        } else {
            /* The maximal subpart is the held bytes before the one that broke it; that byte
             * starts over. */
            size_t bad = (size_t)-k;
            unsigned char rest[4];
            size_t n_rest = st->n_held - bad;
            memcpy(rest, st->held + bad, n_rest);
            st->n_held = 0;
            if ((rc = cru_buf_append(out, replacement, 3)) < 0 ||
                (rc = stream_feed(st, (const char *)rest, n_rest, out)) < 0)
                return rc;
            continue;
        }
        st->n_held = 0;
        if (rc < 0)
            return rc;
    }
    if (!n)
        return 0;
    size_t i = 0;
    while (i < n) {
        size_t ok = utf8_valid_len(s + i, n - i);
        if ((rc = cru_buf_append(out, s + i, ok)) < 0)
            return rc;
        i += ok;
        if (i >= n)
            break;
        int k = utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0) {
            memcpy(st->held, s + i, n - i);
            st->n_held = n - i;
            return 0;
        }
        i += (size_t)-k;
        if ((rc = cru_buf_append(out, replacement, 3)) < 0)
            return rc;
    }
    return 0;
}

int tok_stream_push(struct tok_stream *s, int32_t id, struct cru_buf *out)
{
    size_t len;
    const char *b = tok_token_bytes(s->t, id, &len);
    if (!b)
        return cru_err_set(CRU_EINVAL, "token id %d is not in the vocabulary (%zu ids)", (int)id,
                           s->t->n_ids);
    return stream_feed(s, b, len, out);
}

int tok_stream_finish(struct tok_stream *s, struct cru_buf *out)
{
    size_t held = s->n_held;
    s->n_held = 0;
    return held ? cru_buf_append(out, replacement, 3) : 0;
}
