/* tokenizer: byte-level BPE from a HuggingFace tokenizer.json: encode text to token ids, decode
 * ids to bytes, and decode a stream of ids without splitting a character.
 *
 * Supported (docs/tokenizer.md has the details): model BPE (vocab; merges as "a b" strings or
 * ["a", "b"] pairs; ignore_merges), added and special tokens with their lstrip, rstrip,
 * single_word and normalized flags, the NFC normalizer, the Split pre-tokenizer (a PCRE2
 * regex or a literal string, behaviour Isolated or Removed), the ByteLevel pre-tokenizer and
 * decoder. Anything else is refused at load time with an error that names it.
 *
 * Encoding never fails on content: invalid UTF-8 is read as Python's
 * bytes.decode("utf-8", "replace") reads it (each maximal invalid subpart becomes U+FFFD).
 * A loaded tokenizer is immutable apart from an internal cache that is safe to share:
 * any number of threads may encode and decode with the same one at once.
 */
#ifndef CRU_MODEL_TOKENIZER_H
#define CRU_MODEL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* Bounds on what a tokenizer.json may hold. */
#define TOK_JSON_MAX    ((size_t)64 << 20) /* bytes of tokenizer.json */
#define TOK_VOCAB_MAX   ((size_t)1 << 22)  /* vocabulary entries, and the largest id + 1 */
#define TOK_MERGES_MAX  ((size_t)1 << 22)  /* merge rules */
#define TOK_TOKEN_MAX   1024               /* bytes in one token */
#define TOK_ADDED_MAX   65536              /* added tokens */
#define TOK_SPLIT_MAX   8                  /* Split steps in the pre-tokenizer */
#define TOK_PATTERN_MAX 4096               /* bytes of one Split pattern */

struct tok;

/* A growable array of token ids. */
struct tok_ids {
    int32_t *v; /* owned */
    size_t n, cap;
};

#define TOK_IDS_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

int tok_ids_push(struct tok_ids *ids, int32_t id);
int tok_ids_append(struct tok_ids *ids, const int32_t *v, size_t n);
void tok_ids_free(struct tok_ids *ids);

/* Loads DIR/tokenizer.json. *out belongs to the caller (tok_free()). */
int tok_load(struct tok **out, const char *dir);

/* Loads the tokenizer.json at PATH. */
int tok_load_file(struct tok **out, const char *path);

/* Loads a tokenizer.json held in memory; NAME labels errors. */
int tok_load_json(struct tok **out, const char *text, size_t len, const char *name);

void tok_free(struct tok *t);

/* Encodes LEN bytes of TEXT and appends the ids to OUT. Added tokens found in the text become
 * their ids (as HuggingFace's encode(text, add_special_tokens=False) does). Fails only for
 * lack of memory or when OUT would exceed CRU_BUF_MAX bytes. */
int tok_encode(const struct tok *t, const char *text, size_t len, struct tok_ids *out);

/* Appends the bytes of ids V[0..N) to OUT: added tokens as their content, the others as the
 * bytes the ByteLevel decoder gives. The result may end inside a UTF-8 character (or hold
 * invalid UTF-8 where the ids say so); tok_utf8_lossy() turns it into text as HuggingFace's
 * decode does. An id outside the vocabulary is CRU_EINVAL, naming it. */
int tok_decode(const struct tok *t, const int32_t *v, size_t n, struct cru_buf *out);

/* The bytes of token ID (borrowed; NULL for an id outside the vocabulary). */
const char *tok_token_bytes(const struct tok *t, int32_t id, size_t *len);

/* The id of the token whose bytes (or added token content) are exactly S[0..LEN); CRU_ENOENT
 * when there is none. Added tokens are found first. */
int tok_token_id(const struct tok *t, const char *s, size_t len, int32_t *id);

/* One past the largest id. */
size_t tok_vocab_size(const struct tok *t);

/* Whether ID is an added token marked special ("<|im_end|>"). */
bool tok_is_special(const struct tok *t, int32_t id);

/* Appends S[0..LEN) to OUT as valid UTF-8: each maximal invalid subpart (Unicode's
 * "substitution of maximal subparts", as Python and Rust's from_utf8_lossy do) becomes U+FFFD. */
int tok_utf8_lossy(const char *s, size_t len, struct cru_buf *out);

/* A streaming decoder: ids in, valid UTF-8 out. The bytes of a character split across ids are
 * held back until the character is complete; invalid bytes become U+FFFD as in
 * tok_utf8_lossy(). Pushing every id and then finishing yields tok_utf8_lossy() of
 * tok_decode() of all of them. */
struct tok_stream {
    const struct tok *t;
    unsigned char held[4];
    size_t n_held;
};

void tok_stream_init(struct tok_stream *s, const struct tok *t);

/* Appends the text that ID completes to OUT (possibly nothing). */
int tok_stream_push(struct tok_stream *s, int32_t id, struct cru_buf *out);

/* Appends what is still held (an incomplete character, as U+FFFD) and resets the stream. */
int tok_stream_finish(struct tok_stream *s, struct cru_buf *out);

/* Positions in TEXT where an added token found by tok_encode() begins or ends: encoding
 * TEXT[0..p) and TEXT[p..LEN) separately gives the ids of the whole at such a position p (so a
 * position where the cut would make a single-word token a whole word is left out).
 * Appends them in increasing order to *OUT (N_OUT of them, an array to free()); 0 and LEN are
 * not included. */
int tok_added_edges(const struct tok *t, const char *text, size_t len, size_t **out, size_t *n_out);

#endif
