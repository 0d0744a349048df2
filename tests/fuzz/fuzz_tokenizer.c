/* fuzz/tokenizer: tok_encode, tok_decode, the streaming decoder, tok_added_edges and
 * tok_chat_parse on arbitrary bytes, invalid UTF-8 included.
 *
 * Two small tokenizers are built once, in memory: "plain" (byte-level BPE with merges, the
 * Qwen3 split regex, special, added and single-word tokens, no normalizer) and "nfc" (the
 * same with the NFC normalizer, a normalized added token, and tokens that strip the white
 * space around them, which is then gone from the decode, as in HuggingFace). Invariants: encoding
 * never fails; plain decodes back to exactly the input read as Python reads bytes with
 * errors="replace" (tok_utf8_lossy), so nothing is lost or invented; every decode of nfc is valid
 * UTF-8; the streaming decoder gives the whole decode's text; at every added-token edge of valid
 * text, encoding the two halves gives the ids of the whole (what tok_chat_append relies on); the
 * reply parser returns or reports, never crashes.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "model/chat.h"
#include "model/tokenizer.h"
#include "tests/fuzz/fuzz.h"

static const char split_re[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Raw merges (left, right); each merged token joins the vocabulary. */
static const char *const merges[] = {
    "t", "h", "h",  "e",  "th",   "e",    " ",    "t",    " t",       "he",
    "i", "n", "in", "g",  " ",    "a",    "e",    "r",    "\n",       "\n",
    " ", " ", "  ", "  ", "\xC3", "\xA9", "\xE4", "\xB8", "\xE4\xB8", "\xAD",
};

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
        if (cp < 0x80) {
            cru_buf_putc(out, (char)cp);
        } else {
            cru_buf_putc(out, (char)(0xC0 | (cp >> 6)));
            cru_buf_putc(out, (char)(0x80 | (cp & 0x3F)));
        }
    }
}

static struct tok *build(bool nfc)
{
    json_t *vocab = json_object(), *m = json_array();
    int next = 256;
    for (unsigned b = 0; b < 256; b++) {
        char c = (char)b;
        struct cru_buf k = CRU_BUF_INIT;
        byte_level(&c, 1, &k);
        json_object_set_new(vocab, cru_buf_cstr(&k), json_integer(b));
        cru_buf_free(&k);
    }
    for (size_t i = 0; i < sizeof(merges) / sizeof(merges[0]); i += 2) {
        struct cru_buf a = CRU_BUF_INIT, b = CRU_BUF_INIT, ab = CRU_BUF_INIT;
        byte_level(merges[i], strlen(merges[i]), &a);
        byte_level(merges[i + 1], strlen(merges[i + 1]), &b);
        cru_buf_printf(&ab, "%s%s", cru_buf_cstr(&a), cru_buf_cstr(&b));
        if (!json_object_get(vocab, cru_buf_cstr(&ab)))
            json_object_set_new(vocab, cru_buf_cstr(&ab), json_integer(next++));
        json_array_append_new(m, json_pack("[s,s]", cru_buf_cstr(&a), cru_buf_cstr(&b)));
        cru_buf_free(&a);
        cru_buf_free(&b);
        cru_buf_free(&ab);
    }
    json_t *added = json_pack(
        "[{s:i, s:s, s:b}, {s:i, s:s, s:b}, {s:i, s:s}, {s:i, s:s, s:b}, {s:i, s:s, s:b},"
        " {s:i, s:s, s:b}, {s:i, s:s, s:b}]",
        "id", 400, "content", "<|im_end|>", "special", 1, "id", 401, "content", "<|im_start|>",
        "special", 1, "id", 402, "content", "<tool_call>", "id", 403, "content", "<L>", "lstrip",
        nfc, "id", 404, "content", "<R>", "rstrip", nfc, "id", 405, "content", "word",
        "single_word", 1, "id", 406, "content", "\xC3\xA9t\xC3\xA9", "normalized", nfc);
    json_t *root = json_pack(
        "{s:{s:s, s:o, s:o}, s:o, s:{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s, s:b}]}, s:{s:s}}", "model",
        "type", "BPE", "vocab", vocab, "merges", m, "added_tokens", added, "pre_tokenizer", "type",
        "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex", split_re, "behavior",
        "Isolated", "type", "ByteLevel", "use_regex", 0, "decoder", "type", "ByteLevel");
    if (nfc)
        json_object_set_new(root, "normalizer", json_pack("{s:s}", "type", "NFC"));
    char *text = json_dumps(root, JSON_COMPACT);
    struct tok *t = NULL;
    if (!text || tok_load_json(&t, text, strlen(text), "fuzz.json") < 0) {
        fprintf(stderr, "fuzz_tokenizer: cannot build the tokenizer: %s\n", cru_err_msg());
        abort();
    }
    free(text);
    json_decref(root);
    return t;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_tokenizer: %s (%s)\n", what, cru_err_msg());
    abort();
}

static void check_stream(const struct tok *t, const struct tok_ids *ids, const struct cru_buf *dec)
{
    struct cru_buf lossy = CRU_BUF_INIT, streamed = CRU_BUF_INIT;
    struct tok_stream st;
    if (tok_utf8_lossy(cru_buf_cstr(dec), dec->len, &lossy) < 0)
        fail("lossy failed");
    tok_stream_init(&st, t);
    for (size_t i = 0; i < ids->n; i++)
        if (tok_stream_push(&st, ids->v[i], &streamed) < 0)
            fail("stream push failed");
    if (tok_stream_finish(&st, &streamed) < 0)
        fail("stream finish failed");
    if (streamed.len != lossy.len ||
        memcmp(cru_buf_cstr(&streamed), cru_buf_cstr(&lossy), lossy.len) != 0)
        fail("the stream differs from the whole decode");
    cru_buf_free(&lossy);
    cru_buf_free(&streamed);
}

static void check_edges(const struct tok *t, const char *s, size_t n, const struct tok_ids *whole)
{
    size_t *edges = NULL, n_edges = 0;
    if (tok_added_edges(t, s, n, &edges, &n_edges) < 0)
        fail("tok_added_edges failed on valid text");
    for (size_t e = 0; e < n_edges && e < 8; e++) {
        struct tok_ids ids = TOK_IDS_INIT;
        if (edges[e] == 0 || edges[e] >= n)
            fail("an edge at the ends of the text");
        if (tok_encode(t, s, edges[e], &ids) < 0 ||
            tok_encode(t, s + edges[e], n - edges[e], &ids) < 0)
            fail("encoding halves failed");
        if (ids.n != whole->n || memcmp(ids.v, whole->v, ids.n * sizeof(int32_t)) != 0)
            fail("the halves at an added-token edge encode differently from the whole");
        tok_ids_free(&ids);
    }
    free(edges);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tok *plain, *nfc;
    const char *s = (const char *)data;
    if (!plain) {
        plain = build(false);
        nfc = build(true);
    }
    struct tok_ids a = TOK_IDS_INIT, b = TOK_IDS_INIT;
    struct cru_buf da = CRU_BUF_INIT, db = CRU_BUF_INIT, lossy = CRU_BUF_INIT;
    if (tok_encode(plain, s, size, &a) < 0 || tok_encode(nfc, s, size, &b) < 0)
        fail("encode failed");
    if (tok_decode(plain, a.v, a.n, &da) < 0 || tok_decode(nfc, b.v, b.n, &db) < 0)
        fail("decode of encoded ids failed");
    if (tok_utf8_lossy(s, size, &lossy) < 0)
        fail("lossy failed");
    if (da.len != lossy.len || memcmp(cru_buf_cstr(&da), cru_buf_cstr(&lossy), da.len) != 0)
        fail("decode(encode(x)) is not x read with replacement");
    struct cru_buf check = CRU_BUF_INIT;
    tok_utf8_lossy(cru_buf_cstr(&db), db.len, &check);
    if (check.len != db.len)
        fail("the NFC tokenizer decoded to invalid UTF-8");
    cru_buf_free(&check);
    check_stream(plain, &a, &da);
    check_stream(nfc, &b, &db);
    if (lossy.len == size && memcmp(cru_buf_cstr(&lossy), s, size) == 0)
        check_edges(plain, s, size, &a);

    struct tok_reply r;
    json_t *tools = json_pack("[{s:s, s:{s:{s:{s:s}}, s:[s]}}]", "name", "run", "parameters",
                              "properties", "cmd", "type", "string", "required", "cmd");
    if (tok_chat_parse(s, size, tools, &r) < 0)
        fail("the reply parser failed (it reports problems, it does not fail)");
    tok_reply_free(&r);
    json_decref(tools);

    tok_ids_free(&a);
    tok_ids_free(&b);
    cru_buf_free(&da);
    cru_buf_free(&db);
    cru_buf_free(&lossy);
    return 0;
}
