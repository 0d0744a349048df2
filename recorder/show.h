/* show: a trajectory file as a transcript for people, or as decoded JSON records.
 *
 * The transcript shows each episode's header, the messages it started with, every model call
 * (branch, token counts, finish reason, the text trimmed), tool calls and their outputs
 * (trimmed), forks, rewards with their breakdown, and the end. Colors only when asked (the
 * command line asks on a terminal). The JSON form is one object per record per line, with
 * token ids and log-probs as arrays.
 */
#ifndef CRU_RECORDER_SHOW_H
#define CRU_RECORDER_SHOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct rec_show_opts {
    bool json;
    bool color;
    unsigned max_lines; /* lines of each text shown; 0: 12 */
};

/* Writes PATH to OUT. The records before damage are shown; the damage is then the error
 * (CRU_EFAILED). A failed write to OUT is CRU_EIO. */
int rec_show(const char *path, FILE *out, const struct rec_show_opts *opts);

/* Writes one record's PAYLOAD (a msgpack map, as a writer's on_record hook receives it) to OUT
 * as `show` would (a transcript line, or a JSON line). CRU_EPARSE for a payload that is not a
 * record. */
int rec_show_payload(FILE *out, const uint8_t *payload, size_t len,
                     const struct rec_show_opts *opts);

#endif
