/* recorder/format: the file header, the record type names, a bounds check of msgpack input, and
 * the msgpack packing and lookup helpers that the writer, the reader and the exports share.
 * Encoding and decoding themselves are msgpack-c's; nothing here parses msgpack except the
 * bounds check, which only walks lengths and counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/hash.h"
#include "lib/str.h"
#include "recorder/format.h"

static const char *const type_names[] = {
    [REC_UNKNOWN] = "unknown",
    [REC_EPISODE] = "episode",
    [REC_MODEL_CALL] = "model_call",
    [REC_TOOL] = "tool",
    [REC_CONTEXT_EDIT] = "context_edit",
    [REC_SCAFFOLD_EDIT] = "scaffold_edit",
    [REC_REWARD] = "reward",
    [REC_ARTIFACT] = "artifact",
    [REC_EVENT] = "event",
    [REC_END] = "end",
};

const char *rec_type_name(enum rec_type t)
{
    if ((size_t)t >= sizeof(type_names) / sizeof(type_names[0]))
        return "unknown";
    return type_names[t];
}

enum rec_type rec_type_from(const char *name, size_t len)
{
    for (size_t i = 1; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
        if (strlen(type_names[i]) == len && memcmp(type_names[i], name, len) == 0)
            return (enum rec_type)i;
    }
    return REC_UNKNOWN;
}

const char *rec_status_name(enum rec_status s)
{
    switch (s) {
    case REC_SUBMITTED:
        return "submitted";
    case REC_BUDGET:
        return "budget";
    case REC_TIMEOUT:
        return "timeout";
    case REC_ERROR:
        return "error";
    case REC_CANCELLED:
        return "cancelled";
    case REC_AGENT_ERROR:
        return "agent_error";
    }
    return "error";
}

void rec_header_make(uint8_t out[REC_HEADER_LEN])
{
    memcpy(out, REC_MAGIC, REC_MAGIC_LEN);
    rec_put_le32(out + 8, REC_FORMAT_VERSION);
    rec_put_le32(out + 12, cru_crc32c(0, out, 12));
}

int rec_header_check(const uint8_t hdr[REC_HEADER_LEN], uint32_t *version)
{
    if (memcmp(hdr, REC_MAGIC, REC_MAGIC_LEN) != 0)
        return cru_err_set(CRU_EPARSE, "not a crucible trajectory (no trajectory header)");
    if (rec_le32(hdr + 12) != cru_crc32c(0, hdr, 12))
        return cru_err_set(CRU_EPARSE, "the file header's checksum does not match");
    *version = rec_le32(hdr + 8);
    if (*version == 0 || *version > REC_FORMAT_VERSION)
        return cru_err_set(CRU_EUNSUPPORTED,
                           "trajectory format version %u (this crucible reads 1 to %u)", *version,
                           (unsigned)REC_FORMAT_VERSION);
    return 0;
}

/* The walk keeps, per open container, how many values it still expects; NEED is the total of
 * values promised by every open container, each of which takes at least one byte. */
int rec_msgpack_check(const uint8_t *buf, size_t len)
{
    uint64_t left[REC_MAX_DEPTH + 1];
    size_t depth = 0, pos = 0;
    uint64_t need = 1;
    left[0] = 1;

    while (depth > 0 || left[0] > 0) {
        if (left[depth] == 0) {
            depth--;
            continue;
        }
        if (pos >= len)
            return cru_err_set(CRU_EPARSE, "msgpack value ends early at byte %zu", pos);
        uint8_t b = buf[pos++];
        left[depth]--;
        need--;
        uint64_t skip = 0, count = 0;
        unsigned lenbytes = 0;
        bool container = false, map = false;
        if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3 && b != 0xc1)) {
            /* fixints, nil, booleans */
        } else if (b >= 0x80 && b <= 0x8f) {
            container = map = true;
            count = b & 0x0f;
        } else if (b >= 0x90 && b <= 0x9f) {
            container = true;
            count = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4: /* bin 8, 16, 32 */
            case 0xd9: /* str 8, 16, 32 */
                lenbytes = 1;
                break;
            case 0xc5:
            case 0xda:
                lenbytes = 2;
                break;
            case 0xc6:
            case 0xdb:
                lenbytes = 4;
                break;
            case 0xc7: /* ext 8, 16, 32: length, then a type byte */
                lenbytes = 1;
                skip = 1;
                break;
            case 0xc8:
                lenbytes = 2;
                skip = 1;
                break;
            case 0xc9:
                lenbytes = 4;
                skip = 1;
                break;
            case 0xca: /* float 32, float 64 */
                skip = 4;
                break;
            case 0xcb:
                skip = 8;
                break;
            case 0xcc: /* uint and int 8, 16, 32, 64 */
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xd4: /* fixext 1, 2, 4, 8, 16: a type byte, then the data */
                skip = 2;
                break;
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc: /* array 16, 32 */
                container = true;
                lenbytes = 2;
                break;
            case 0xdd:
                container = true;
                lenbytes = 4;
                break;
            case 0xde: /* map 16, 32 */
                container = map = true;
                lenbytes = 2;
                break;
            case 0xdf:
                container = map = true;
                lenbytes = 4;
                break;
            default:
                return cru_err_set(CRU_EPARSE, "byte 0x%02x at %zu is not a msgpack type", b,
                                   pos - 1);
            }
        }
        if (lenbytes) {
            if (len - pos < lenbytes)
                return cru_err_set(CRU_EPARSE, "msgpack length ends early at byte %zu", pos);
            uint64_t n = 0;
            for (unsigned i = 0; i < lenbytes; i++)
                n = n << 8 | buf[pos++];
            if (container)
                count = n;
            else
                skip += n;
        }
        if (container) {
            if (map)
                count *= 2;
            /* Every promised value takes at least a byte: a count the rest of the record
             * cannot hold is corruption, refused before msgpack-c allocates for it. */
            if (count > len - pos || need + count > len - pos)
                return cru_err_set(CRU_EPARSE,
                                   "msgpack %s at byte %zu declares %llu values, more than the "
                                   "%zu bytes left could hold",
                                   map ? "map" : "array", pos, (unsigned long long)count,
                                   len - pos);
            if (count) {
                if (depth + 1 > REC_MAX_DEPTH)
                    return cru_err_set(CRU_ELIMIT, "msgpack nested deeper than %d levels",
                                       REC_MAX_DEPTH);
                left[++depth] = count;
                need += count;
            }
        } else if (skip > len - pos) {
            return cru_err_set(CRU_EPARSE, "msgpack value at byte %zu runs past the record", pos);
        } else {
            pos += skip;
        }
    }
    if (pos != len)
        return cru_err_set(CRU_EPARSE, "%zu bytes after the record's msgpack value", len - pos);
    return 0;
}

static int packed(int rc)
{
    return rc == 0 ? 0 : cru_err_set(CRU_ENOMEM, "packing a record: out of memory");
}

int rec_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT32_MAX)
        return cru_err_set(CRU_ELIMIT, "a string of %zu bytes is too long for a record", n);
    return packed(msgpack_pack_str_with_body(pk, s, n));
}

int rec_pack_key(msgpack_packer *pk, const char *key)
{
    return rec_pack_str(pk, key);
}

int rec_pack_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
    int rc = rec_pack_key(pk, key);
    if (rc < 0)
        return rc;
    return val ? rec_pack_str(pk, val) : packed(msgpack_pack_nil(pk));
}

/* Bins hold little-endian 4-byte elements; on a little-endian host that is memory as it is. */
static int pack_le32(msgpack_packer *pk, const void *v, size_t n)
{
    if (n > UINT32_MAX / 4)
        return cru_err_set(CRU_ELIMIT, "an array of %zu elements is too long for a record", n);
    if (packed(msgpack_pack_bin(pk, n * 4)) < 0)
        return CRU_ENOMEM;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return packed(msgpack_pack_bin_body(pk, v, n * 4));
#else
    const uint8_t *p = v;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        uint8_t le[4];
        memcpy(&u, p + 4 * i, 4);
        rec_put_le32(le, u);
        if (packed(msgpack_pack_bin_body(pk, le, 4)) < 0)
            return CRU_ENOMEM;
    }
    return 0;
#endif
}

int rec_pack_i32s(msgpack_packer *pk, const int32_t *v, size_t n)
{
    return pack_le32(pk, v, n);
}

int rec_pack_f32s(msgpack_packer *pk, const float *v, size_t n)
{
    return pack_le32(pk, v, n);
}

static int pack_json(msgpack_packer *pk, const json_t *v, int depth)
{
    if (depth > REC_MAX_DEPTH)
        return cru_err_set(CRU_ELIMIT, "a JSON value nested deeper than %d levels", REC_MAX_DEPTH);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        if (packed(msgpack_pack_map(pk, json_object_size(v))) < 0)
            return CRU_ENOMEM;
        json_object_foreach((json_t *)(uintptr_t)v, k, x)
        {
            int rc = rec_pack_key(pk, k);
            if (rc == 0)
                rc = pack_json(pk, x, depth + 1);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        if (packed(msgpack_pack_array(pk, json_array_size(v))) < 0)
            return CRU_ENOMEM;
        json_array_foreach(v, i, x)
        {
            int rc = pack_json(pk, x, depth + 1);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    case JSON_STRING:
        if (json_string_length(v) > UINT32_MAX)
            return cru_err_set(CRU_ELIMIT, "a string too long for a record");
        return packed(msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v)));
    case JSON_INTEGER:
        return packed(msgpack_pack_int64(pk, json_integer_value(v)));
    case JSON_REAL:
        return packed(msgpack_pack_double(pk, json_real_value(v)));
    case JSON_TRUE:
        return packed(msgpack_pack_true(pk));
    case JSON_FALSE:
        return packed(msgpack_pack_false(pk));
    case JSON_NULL:
        return packed(msgpack_pack_nil(pk));
    }
    return cru_err_set(CRU_EINTERNAL, "unknown JSON type");
}

int rec_pack_json(msgpack_packer *pk, const json_t *v)
{
    return pack_json(pk, v, 0);
}

enum bin_kind { BIN_BYTES, BIN_I32, BIN_F32, BIN_U8 };

static enum bin_kind bin_kind_of(const char *key, size_t len)
{
    static const char *const i32[] = { "prompt",    "completion",   "top_ids",
                                       "input_ids", "position_ids", "parent" };
    static const char *const f32[] = { "logprobs", "top_logprobs" };
    for (size_t i = 0; i < sizeof(i32) / sizeof(i32[0]); i++) {
        if (strlen(i32[i]) == len && memcmp(i32[i], key, len) == 0)
            return BIN_I32;
    }
    for (size_t i = 0; i < sizeof(f32) / sizeof(f32[0]); i++) {
        if (strlen(f32[i]) == len && memcmp(f32[i], key, len) == 0)
            return BIN_F32;
    }
    if (len == 9 && memcmp(key, "loss_mask", 9) == 0)
        return BIN_U8;
    return BIN_BYTES;
}

static json_t *bin_to_json(const msgpack_object_bin *b, enum bin_kind kind)
{
    struct rec_array a = { (const uint8_t *)b->ptr, b->size / 4 };
    if ((kind == BIN_I32 || kind == BIN_F32) && b->size % 4 == 0) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < a.n; i++) {
            json_t *x = kind == BIN_I32 ? json_integer(rec_i32_at(&a, i))
                                        : json_real((double)rec_f32_at(&a, i));
            if (json_array_append_new(arr, x) < 0) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    if (kind == BIN_U8) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < b->size; i++) {
            if (json_array_append_new(arr, json_integer((uint8_t)b->ptr[i])) < 0) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    char *hex = malloc((size_t)b->size * 2 + 1);
    if (!hex)
        return NULL;
    cru_hex(hex, (const uint8_t *)b->ptr, b->size);
    json_t *s = json_string(hex);
    free(hex);
    return s;
}

/* crucible writes valid UTF-8, but a record from elsewhere may not hold it, and JSON must. */
static json_t *str_to_json(const char *s, size_t len)
{
    if (cru_utf8_valid(s, len))
        return json_stringn_nocheck(s, len);
    struct cru_buf b = CRU_BUF_INIT;
    json_t *v = cru_utf8_repair(&b, s, len) == 0 ? json_stringn_nocheck(b.data, b.len) : NULL;
    cru_buf_free(&b);
    return v;
}

static json_t *to_json(const msgpack_object *o, const char *key, size_t key_len)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        /* JSON integers here are int64: larger values keep their magnitude as a real. */
        if (o->via.u64 > INT64_MAX)
            return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return str_to_json(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return bin_to_json(&o->via.bin, bin_kind_of(key, key_len));
    case MSGPACK_OBJECT_EXT:
        return json_null();
    case MSGPACK_OBJECT_ARRAY: {
        json_t *arr = json_array();
        for (uint32_t i = 0; arr && i < o->via.array.size; i++) {
            if (json_array_append_new(arr, to_json(&o->via.array.ptr[i], key, key_len)) < 0) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *obj = json_object();
        for (uint32_t i = 0; obj && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            char kbuf[64];
            const char *k = kbuf;
            size_t klen;
            if (kv->key.type == MSGPACK_OBJECT_STR) {
                k = kv->key.via.str.ptr;
                klen = kv->key.via.str.size;
            } else {
                /* A non-string key (never written by crucible) is shown by its type. */
                klen = (size_t)snprintf(kbuf, sizeof(kbuf), "#%u", (unsigned)i);
            }
            json_t *v = to_json(&kv->val, k, klen);
            if (!v || json_object_setn_new_nocheck(obj, k, klen, v) < 0) {
                json_decref(obj);
                return NULL;
            }
        }
        return obj;
    }
    }
    return json_null();
}

json_t *rec_msgpack_to_json(const msgpack_object *o)
{
    return to_json(o, "", 0);
}

const msgpack_object *rec_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

bool rec_get_str(const msgpack_object *map, const char *key, const char **s, size_t *len)
{
    const msgpack_object *v = rec_get(map, key);
    if (!v || v->type != MSGPACK_OBJECT_STR)
        return false;
    *s = v->via.str.ptr;
    *len = v->via.str.size;
    return true;
}

bool rec_get_u64(const msgpack_object *map, const char *key, uint64_t *out)
{
    const msgpack_object *v = rec_get(map, key);
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *out = v->via.u64;
    return true;
}

bool rec_get_i64(const msgpack_object *map, const char *key, int64_t *out)
{
    const msgpack_object *v = rec_get(map, key);
    if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = v->via.i64;
        return true;
    }
    if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX) {
        *out = (int64_t)v->via.u64;
        return true;
    }
    return false;
}

bool rec_get_f64(const msgpack_object *map, const char *key, double *out)
{
    const msgpack_object *v = rec_get(map, key);
    if (!v)
        return false;
    switch (v->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *out = v->via.f64;
        return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)v->via.u64;
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)v->via.i64;
        return true;
    default:
        return false;
    }
}

bool rec_get_bool(const msgpack_object *map, const char *key, bool *out)
{
    const msgpack_object *v = rec_get(map, key);
    if (!v || v->type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    *out = v->via.boolean;
    return true;
}

static bool get_le32s(const msgpack_object *map, const char *key, struct rec_array *a)
{
    const msgpack_object *v = rec_get(map, key);
    if (!v || v->type != MSGPACK_OBJECT_BIN || v->via.bin.size % 4 != 0)
        return false;
    a->p = (const uint8_t *)v->via.bin.ptr;
    a->n = v->via.bin.size / 4;
    return true;
}

bool rec_get_i32s(const msgpack_object *map, const char *key, struct rec_array *a)
{
    return get_le32s(map, key, a);
}

bool rec_get_f32s(const msgpack_object *map, const char *key, struct rec_array *a)
{
    return get_le32s(map, key, a);
}
