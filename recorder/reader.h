/* reader: streams the records of a trajectory file in constant memory.
 *
 *     struct rec_reader *r;
 *     struct rec_record rec;
 *     rec_reader_open(&r, path);
 *     while ((rc = rec_reader_next(r, &rec)) > 0)
 *         use(rec.type, rec.map);        // valid until the next call
 *     if (rc < 0) report(cru_err_msg(), rec_reader_problem(r));
 *     rec_reader_free(r);
 *
 * One record's bytes are in memory at a time (a buffer that grows to the largest record, at
 * most REC_MAX_RECORD). Strings and bins in REC.MAP point into that buffer: token arrays are
 * read in place. Unknown record types come back as REC_UNKNOWN, unknown fields are simply not
 * looked up. The first damaged byte ends the stream with an error that says what and where:
 * a torn tail (the file ends inside a record, as after a crash), a bad checksum, a bad length.
 */
#ifndef CRU_RECORDER_READER_H
#define CRU_RECORDER_READER_H

#include <stdint.h>
#include <stdio.h>

#include <msgpack.h>

#include "recorder/format.h"

struct rec_reader;

/* What stopped a stream early. */
enum rec_problem {
    REC_INTACT = 0,   /* no problem (so far) */
    REC_NOT_TRAJ,     /* no valid file header */
    REC_TORN,         /* the file ends inside a record: a crash or a copy cut short */
    REC_BAD_LENGTH,   /* a record length of 0 or above REC_MAX_RECORD */
    REC_BAD_CHECKSUM, /* the bytes of a record do not match its CRC32C */
    REC_BAD_RECORD,   /* the checksum holds but the record is not a msgpack map with a type */
    REC_READ_ERROR,   /* the file could not be read */
};
const char *rec_problem_name(enum rec_problem p);

struct rec_record {
    enum rec_type type;
    const char *type_name; /* as written (not NUL-terminated), TYPE_LEN bytes */
    size_t type_len;
    const char *episode; /* the episode id (not NUL-terminated); NULL when absent */
    size_t episode_len;
    uint64_t seq;
    uint64_t offset; /* of the record's frame in the file */
    uint32_t size;   /* payload bytes */
    const msgpack_object *map;
};

/* Opens PATH, or reads the stream F (borrowed; NAME labels messages) from its position. The
 * file header is read and checked at once. */
int rec_reader_open(struct rec_reader **out, const char *path);
int rec_reader_open_stream(struct rec_reader **out, FILE *f, const char *name);
void rec_reader_free(struct rec_reader *r);

/* The next record: 1 and *REC filled, 0 at a clean end of file, or a negative CRU_E* code with
 * the message naming the problem and its byte offset. After an error it keeps returning it. */
int rec_reader_next(struct rec_reader *r, struct rec_record *rec);

/* What ended the stream (REC_INTACT while records are coming or after a clean end). */
enum rec_problem rec_reader_problem(const struct rec_reader *r);
/* Records read intact so far; the offset just past the last intact one (where an appending
 * writer may continue). */
uint64_t rec_reader_count(const struct rec_reader *r);
uint64_t rec_reader_good_offset(const struct rec_reader *r);

#endif
