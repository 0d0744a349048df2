/* episode: rebuilds one episode from its records and checks that they are consistent.
 *
 * Records are fed in file order. The first is the episode header; each later record must
 * carry the next sequence number. A model call must extend its branch exactly (its "prefix"
 * equals the branch's length so far), a fork must start a new branch inside an existing one,
 * token and log-prob arrays must agree in length, log-probs must be finite and at most 0, and
 * nothing may follow the end record. Unknown record types are counted and skipped.
 *
 * With REC_EP_TOKENS the branches' tokens are kept: ids, loss mask (1 exactly on sampled
 * tokens) and behavior log-probs aligned with the ids (0 where the mask is 0): the training
 * samples. With REC_EP_MESSAGES the conversation is rebuilt in the OpenAI chat shape.
 * verify uses neither and so keeps only lengths.
 */
#ifndef CRU_RECORDER_EPISODE_H
#define CRU_RECORDER_EPISODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "recorder/reader.h"

enum {
    REC_EP_TOKENS = 1 << 0,
    REC_EP_MESSAGES = 1 << 1,
};

struct rec_branch {
    uint64_t len;    /* tokens */
    int32_t *ids;    /* REC_EP_TOKENS only: LEN of each */
    uint8_t *mask;   /* 1 on sampled tokens */
    float *logprobs; /* behavior log-probs on sampled tokens, 0 elsewhere */
    size_t cap;
    uint64_t sampled;                /* tokens with mask 1 */
    uint64_t policy_min, policy_max; /* of the model calls that sampled on this branch */
    uint64_t calls;
};

struct rec_ep {
    char *id;
    char *group;
    char *task; /* NULL when the header names none */
    uint64_t policy_version;
    json_t *header;   /* the header record as JSON (metadata for exports) */
    json_t *messages; /* REC_EP_MESSAGES only */
    struct rec_branch *branches;
    uint32_t n_branches;
    uint64_t records, unknown;
    bool has_reward;
    double reward;
    json_t *breakdown; /* NULL when none */
    bool ended;
    char *status;  /* the end record's status */
    char *message; /* and its message, when any */
    uint64_t next_seq;
    unsigned flags;
};

/* Starts an episode from its header record. */
int rec_ep_new(struct rec_ep **out, const struct rec_record *header, unsigned flags);
/* Adds the next record of the episode; CRU_EPARSE naming the record (offset, seq) and what is
 * inconsistent. */
int rec_ep_add(struct rec_ep *e, const struct rec_record *r);
void rec_ep_free(struct rec_ep *e);

/* The whole-file check behind `crucible verify`. */
struct rec_verify {
    uint64_t records;  /* intact records */
    uint64_t episodes; /* episode headers seen */
    uint64_t complete; /* episodes with an end record */
    uint64_t unknown;  /* records of unknown types (skipped) */
    uint64_t bytes;    /* up to the end of the last intact record */
    enum rec_problem problem;
};

/* Reads PATH to the end. Returns 0 when the file is intact and complete (every episode has
 * its end record and the file ends with one), CRU_EFAILED with the message saying what is wrong
 * otherwise, and other codes when the file cannot be read at all. OUT is filled either way. */
int rec_verify_file(const char *path, struct rec_verify *out);
/* The same for a stream (the fuzz target reads from memory). */
int rec_verify_stream(FILE *f, const char *name, struct rec_verify *out);

#endif
