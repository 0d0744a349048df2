/* format: the trajectory file's framing and record types, shared by the writer and the reader.
 *
 * A trajectory file is a 16-byte file header followed by framed records:
 *
 *     header:  "\x89CRUTRJ\n" | u32 LE format version | u32 LE CRC32C of the 12 bytes before
 *     record:  u32 LE length N | u32 LE CRC32C of the N payload bytes | N bytes: a msgpack map
 *
 * Every record map holds "type" (a string), "episode" (the episode id), "seq" (the record's
 * number within its episode, from 0) and "time" (Unix seconds as a float64). The fields of each
 * type are in docs/trajectory-format.md. Token ids and log-probs are msgpack bin of
 * little-endian int32 / float32 arrays.
 */
#ifndef CRU_RECORDER_FORMAT_H
#define CRU_RECORDER_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

#define REC_MAGIC                                                                                  \
    "\x89"                                                                                         \
    "CRUTRJ\n"
#define REC_MAGIC_LEN      8
#define REC_HEADER_LEN     16
#define REC_FRAME_LEN      8
#define REC_FORMAT_VERSION 1

/* The largest record payload written or read (64 MiB): a model call of a million tokens with
 * log-probs and top-8 alternatives fits; a length beyond it is corruption, not a record. */
#define REC_MAX_RECORD ((uint32_t)64 << 20)

/* The most branches (forks plus one) in one episode: context edits are rare by nature. */
#define REC_MAX_BRANCHES 4096

/* The most tokens a reader keeps for one episode's branches together (exports): 64 Mi tokens,
 * about 600 MB of ids, masks and log-probs. */
#define REC_MAX_EPISODE_TOKENS ((uint64_t)1 << 26)

/* The deepest nesting of maps and arrays accepted inside a record. */
#define REC_MAX_DEPTH 24

enum rec_type {
    REC_UNKNOWN = 0, /* a type this reader does not know: skipped, never an error */
    REC_EPISODE,     /* episode header */
    REC_MODEL_CALL,
    REC_TOOL,
    REC_CONTEXT_EDIT,
    REC_SCAFFOLD_EDIT,
    REC_REWARD,
    REC_ARTIFACT,
    REC_EVENT,
    REC_END,
};

/* "episode", "model_call", ...; "unknown" for REC_UNKNOWN. */
const char *rec_type_name(enum rec_type t);
enum rec_type rec_type_from(const char *name, size_t len);

/* How an episode ended. The two failures are told apart by whose doing they were: an
 * agent_error is the agent's (it is scored, 0 when its artifact could not be), an error the
 * environment's (crucible, the image, the host: no reward, and a run retries it). */
enum rec_status {
    REC_SUBMITTED,   /* the agent submitted */
    REC_BUDGET,      /* a turn, token or memory budget ran out */
    REC_TIMEOUT,     /* the wall-clock budget ran out */
    REC_ERROR,       /* the environment failed; the end record says what */
    REC_CANCELLED,   /* the run was interrupted */
    REC_AGENT_ERROR, /* the agent failed or left an artifact that cannot be scored */
};
const char *rec_status_name(enum rec_status s);

/* Fills the 16-byte file header. */
void rec_header_make(uint8_t out[REC_HEADER_LEN]);
/* Checks a file header: CRU_EPARSE for a file that is not a trajectory, CRU_EUNSUPPORTED for
 * a newer format version. *VERSION receives the version. */
int rec_header_check(const uint8_t hdr[REC_HEADER_LEN], uint32_t *version);

static inline uint32_t rec_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void rec_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Checks that LEN bytes hold exactly one well-formed msgpack value whose arrays and maps
 * declare no more elements than the bytes left could hold, nested at most REC_MAX_DEPTH deep.
 * msgpack-c allocates a declared count before reading the elements, so this runs first on
 * every record read from outside. CRU_EPARSE with a message on failure. */
int rec_msgpack_check(const uint8_t *buf, size_t len);

/* Packing helpers for record writers. Bins are little-endian whatever the host. */
int rec_pack_str(msgpack_packer *pk, const char *s);
int rec_pack_kv_str(msgpack_packer *pk, const char *key, const char *val); /* NULL: nil */
int rec_pack_key(msgpack_packer *pk, const char *key);
int rec_pack_i32s(msgpack_packer *pk, const int32_t *v, size_t n);
int rec_pack_f32s(msgpack_packer *pk, const float *v, size_t n);
/* Packs a JSON value as msgpack (objects as maps, integers as ints, reals as float64). */
int rec_pack_json(msgpack_packer *pk, const json_t *v);

/* A msgpack value as JSON. A bin becomes an array of numbers when its key names what it holds
 * (int32 for "prompt", "completion", "top_ids"; float32 for "logprobs", "top_logprobs"), and a
 * string of hex digits otherwise. Returns a new reference, or NULL when out of memory. */
json_t *rec_msgpack_to_json(const msgpack_object *o);

/* Lookups in a record map: the value of KEY, or NULL when absent. */
const msgpack_object *rec_get(const msgpack_object *map, const char *key);
/* Typed lookups: false when absent or of another type (an int accepted as a double). */
bool rec_get_str(const msgpack_object *map, const char *key, const char **s, size_t *len);
bool rec_get_u64(const msgpack_object *map, const char *key, uint64_t *v);
bool rec_get_i64(const msgpack_object *map, const char *key, int64_t *v);
bool rec_get_f64(const msgpack_object *map, const char *key, double *v);
bool rec_get_bool(const msgpack_object *map, const char *key, bool *v);

/* A borrowed little-endian array inside a record (zero-copy: P points into the reader's
 * buffer, valid until its next record). P need not be aligned: read elements with
 * rec_i32_at / rec_f32_at, or memcpy the whole array on a little-endian host. */
struct rec_array {
    const uint8_t *p;
    size_t n; /* elements */
};

/* The bin at KEY as int32s / float32s: false when absent, not a bin, or not a multiple of 4
 * bytes long. */
bool rec_get_i32s(const msgpack_object *map, const char *key, struct rec_array *a);
bool rec_get_f32s(const msgpack_object *map, const char *key, struct rec_array *a);

static inline int32_t rec_i32_at(const struct rec_array *a, size_t i)
{
    return (int32_t)rec_le32(a->p + 4 * i);
}

static inline float rec_f32_at(const struct rec_array *a, size_t i)
{
    uint32_t u = rec_le32(a->p + 4 * i);
    float f;
    __builtin_memcpy(&f, &u, sizeof(f));
    return f;
}

#endif
