/* recorder/reader: streams framed records out of a trajectory file and checks each frame's
 * length and CRC32C before msgpack-c decodes it. It does not interpret records beyond their
 * common fields (type, episode, seq): recorder/verify and the exports do that.
 */
#include "recorder/reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/hash.h"
#include "lib/str.h"

/* Records are read in chunks, so that a damaged length allocates no more than the bytes that
 * are really there (plus one chunk). */
#define READ_CHUNK ((size_t)1 << 20)

struct rec_reader {
    FILE *f;
    bool own; /* F was opened here */
    char *name;
    uint8_t *buf;
    size_t cap;
    uint64_t off;   /* of the next frame */
    uint64_t count; /* records read intact */
    enum rec_problem problem;
    int err;     /* the error that ended the stream, repeated by later calls */
    char *error; /* its message */
    msgpack_unpacked up;
};

const char *rec_problem_name(enum rec_problem p)
{
    switch (p) {
    case REC_INTACT:
        return "intact";
    case REC_NOT_TRAJ:
        return "not a trajectory";
    case REC_TORN:
        return "torn tail";
    case REC_BAD_LENGTH:
        return "bad record length";
    case REC_BAD_CHECKSUM:
        return "bad checksum";
    case REC_BAD_RECORD:
        return "bad record";
    case REC_READ_ERROR:
        return "read error";
    }
    return "unknown";
}

/* Ends the stream with PROBLEM: the current error message, prefixed with the file's name,
 * becomes the one every later call returns. */
static int stop(struct rec_reader *r, enum rec_problem problem, int code)
{
    r->problem = problem;
    r->err = cru_err_wrap(code, "%s", r->name);
    free(r->error);
    r->error = strdup(cru_err_msg());
    return r->err;
}

/* Reads up to N bytes at the stream's position; *GOT is short only at the end of the file. */
static int read_full(struct rec_reader *r, void *p, size_t n, size_t *got)
{
    *got = fread(p, 1, n, r->f);
    if (*got < n && ferror(r->f)) {
        cru_err_sys("reading at byte %llu", (unsigned long long)(r->off + *got));
        return stop(r, REC_READ_ERROR, CRU_EIO);
    }
    return 0;
}

static int open_stream(struct rec_reader **out, FILE *f, bool own, const char *name)
{
    struct rec_reader *r = calloc(1, sizeof(*r));
    if (!r || !(r->name = strdup(name))) {
        free(r);
        if (own)
            fclose(f);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    r->f = f;
    r->own = own;
    msgpack_unpacked_init(&r->up);

    uint8_t hdr[REC_HEADER_LEN];
    size_t got;
    uint32_t version;
    int rc = read_full(r, hdr, sizeof(hdr), &got);
    if (rc == 0 && got < sizeof(hdr)) {
        cru_err_set(CRU_EPARSE, "not a crucible trajectory (%zu bytes, shorter than the header)",
                    got);
        rc = stop(r, REC_NOT_TRAJ, CRU_EPARSE);
    } else if (rc == 0 && (rc = rec_header_check(hdr, &version)) < 0) {
        rc = stop(r, REC_NOT_TRAJ, rc);
    }
    if (rc < 0) {
        rec_reader_free(r);
        return rc;
    }
    r->off = REC_HEADER_LEN;
    *out = r;
    return 0;
}

int rec_reader_open(struct rec_reader **out, const char *path)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return cru_err_sys("opening %s", path);
    return open_stream(out, f, true, path);
}

int rec_reader_open_stream(struct rec_reader **out, FILE *f, const char *name)
{
    return open_stream(out, f, false, name);
}

void rec_reader_free(struct rec_reader *r)
{
    if (!r)
        return;
    msgpack_unpacked_destroy(&r->up);
    if (r->own)
        fclose(r->f);
    free(r->buf);
    free(r->name);
    free(r->error);
    free(r);
}

/* A zero length where a frame should start: a tail of zeros is what some file systems leave
 * after a crash (the size was updated, the data never written), so it reads as a torn tail. */
static int zero_length(struct rec_reader *r)
{
    uint8_t chunk[4096];
    size_t got;
    do {
        if (read_full(r, chunk, sizeof(chunk), &got) < 0)
            return r->err;
        for (size_t i = 0; i < got; i++) {
            if (chunk[i] != 0) {
                cru_err_set(CRU_EPARSE, "record at byte %llu has length 0",
                            (unsigned long long)r->off);
                return stop(r, REC_BAD_LENGTH, CRU_EPARSE);
            }
        }
    } while (got == sizeof(chunk));
    cru_err_set(CRU_EPARSE, "torn tail: only zero bytes from byte %llu to the end",
                (unsigned long long)r->off);
    return stop(r, REC_TORN, CRU_EPARSE);
}

/* Reads the payload of LEN bytes into r->buf, growing it chunk by chunk. */
static int read_payload(struct rec_reader *r, uint32_t len)
{
    size_t have = 0;
    while (have < len) {
        size_t want = len - have < READ_CHUNK ? len - have : READ_CHUNK;
        if (have + want > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < have + want)
                cap *= 2;
            uint8_t *nb = realloc(r->buf, cap);
            if (!nb) {
                cru_err_set(CRU_ENOMEM, "out of memory for a record of %u bytes", len);
                return stop(r, REC_READ_ERROR, CRU_ENOMEM);
            }
            r->buf = nb;
            r->cap = cap;
        }
        size_t got;
        if (read_full(r, r->buf + have, want, &got) < 0)
            return r->err;
        have += got;
        if (got < want) {
            cru_err_set(CRU_EPARSE,
                        "torn tail: the record at byte %llu needs %u bytes, the file ends "
                        "after %zu",
                        (unsigned long long)r->off, len, have);
            return stop(r, REC_TORN, CRU_EPARSE);
        }
    }
    return 0;
}

/* The common fields of a record whose frame is sound. */
static int decode(struct rec_reader *r, uint32_t len, struct rec_record *rec)
{
    if (rec_msgpack_check(r->buf, len) < 0) {
        cru_err_wrap(CRU_EPARSE, "record at byte %llu", (unsigned long long)r->off);
        return stop(r, REC_BAD_RECORD, CRU_EPARSE);
    }
    size_t pos = 0;
    msgpack_unpacked_destroy(&r->up);
    msgpack_unpacked_init(&r->up);
    msgpack_unpack_return ur = msgpack_unpack_next(&r->up, (const char *)r->buf, len, &pos);
    const msgpack_object *map = &r->up.data;
    const char *what = NULL;
    if (ur != MSGPACK_UNPACK_SUCCESS || pos != len)
        what = "is not one msgpack value";
    else if (map->type != MSGPACK_OBJECT_MAP)
        what = "is not a msgpack map";
    else if (!rec_get_str(map, "type", &rec->type_name, &rec->type_len))
        what = "has no \"type\" string";
    if (what) {
        cru_err_set(CRU_EPARSE, "record at byte %llu %s", (unsigned long long)r->off, what);
        return stop(r, REC_BAD_RECORD, CRU_EPARSE);
    }
    rec->type = rec_type_from(rec->type_name, rec->type_len);
    if (!rec_get_str(map, "episode", &rec->episode, &rec->episode_len)) {
        rec->episode = NULL;
        rec->episode_len = 0;
    }
    if (!rec_get_u64(map, "seq", &rec->seq))
        rec->seq = UINT64_MAX;
    rec->map = map;
    rec->offset = r->off;
    rec->size = len;
    return 0;
}

int rec_reader_next(struct rec_reader *r, struct rec_record *rec)
{
    if (r->err < 0)
        return cru_err_set(r->err, "%s", r->error ? r->error : "reading failed");
    uint8_t frame[REC_FRAME_LEN];
    size_t got;
    if (read_full(r, frame, sizeof(frame), &got) < 0)
        return r->err;
    if (got == 0)
        return 0;
    if (got < sizeof(frame)) {
        cru_err_set(CRU_EPARSE, "torn tail: %zu bytes of a record frame at byte %llu", got,
                    (unsigned long long)r->off);
        return stop(r, REC_TORN, CRU_EPARSE);
    }
    uint32_t len = rec_le32(frame), crc = rec_le32(frame + 4);
    if (len == 0 && crc == 0)
        return zero_length(r);
    if (len == 0 || len > REC_MAX_RECORD) {
        cru_err_set(CRU_EPARSE, "record at byte %llu has length %u (at most %u)",
                    (unsigned long long)r->off, len, REC_MAX_RECORD);
        return stop(r, REC_BAD_LENGTH, CRU_EPARSE);
    }
    int rc = read_payload(r, len);
    if (rc < 0)
        return rc;
    if (cru_crc32c(0, r->buf, len) != crc) {
        cru_err_set(CRU_EPARSE, "record at byte %llu (%u bytes): bad checksum",
                    (unsigned long long)r->off, len);
        return stop(r, REC_BAD_CHECKSUM, CRU_EPARSE);
    }
    if ((rc = decode(r, len, rec)) < 0)
        return rc;
    r->off += REC_FRAME_LEN + (uint64_t)len;
    r->count++;
    return 1;
}

enum rec_problem rec_reader_problem(const struct rec_reader *r)
{
    return r->problem;
}

uint64_t rec_reader_count(const struct rec_reader *r)
{
    return r->count;
}

uint64_t rec_reader_good_offset(const struct rec_reader *r)
{
    return r->off;
}
