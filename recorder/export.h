/* export: trajectory files to training data.
 *
 *   jsonl   one JSON line per episode: messages (OpenAI chat shape), reward, metadata
 *   tokens  a msgpack stream of maps, one per training sample (a branch of an episode):
 *           input_ids, loss_mask (1 exactly on sampled tokens), behavior logprobs aligned with
 *           input_ids, reward, group, episode, policy version. Nothing is re-tokenized.
 *   tree    the samples of each group (the episodes that share a group id, with their branches)
 *           merged into one prefix tree and emitted as one packed map per group: tokens in
 *           depth-first order with each token's parent index and position id, so a trainer
 *           computes every shared prefix once.
 *
 * docs/trajectory-format.md specifies every field. Only episodes with an end record are
 * exported; incomplete ones and damaged files are counted and reported, never half-exported.
 */
#ifndef CRU_RECORDER_EXPORT_H
#define CRU_RECORDER_EXPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum rec_export_format {
    REC_EXPORT_JSONL,
    REC_EXPORT_TOKENS,
    REC_EXPORT_TREE,
};

/* "jsonl", "tokens", "tree"; -1 for an unknown name. */
int rec_export_format_from(const char *name);

struct rec_export_stats {
    uint64_t files;
    uint64_t damaged;    /* files with a torn tail or a bad record: their intact part was used */
    uint64_t episodes;   /* exported */
    uint64_t incomplete; /* skipped: no end record */
    uint64_t samples;    /* tokens and tree: branches with at least one sampled token */
    uint64_t groups;     /* tree */
    uint64_t tokens;     /* tokens in the samples */
    uint64_t tokens_out; /* tokens written: after merging for tree, else equal to TOKENS */
};

/* The trajectory files named by SRCS: files as given, folders searched recursively for
 * "*.traj" files, each folder's in name order. *out is an array of N strings (free each and
 * the array). */
int rec_collect_files(const char *const *srcs, size_t n_srcs, char ***out, size_t *n);

/* Exports the files to OUT (a file path, written to a temporary name and renamed when whole;
 * "-" for stdout). Problems with single files are warnings (logged, counted in STATS); the
 * export fails only when nothing could be read or the output cannot be written. */
int rec_export(char *const *files, size_t n_files, enum rec_export_format fmt, const char *out,
               struct rec_export_stats *stats);

#endif
