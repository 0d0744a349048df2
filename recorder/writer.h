/* writer: appends episodes to trajectory files, crash-safely.
 *
 *     struct rec_file *f;
 *     struct rec_file_opts o = REC_FILE_OPTS_INIT;
 *     rec_file_open(&f, "run/e1.traj", &o);
 *     struct rec_episode *ep;
 *     rec_episode_begin(&ep, f, &info);
 *     rec_model_call(ep, &call);           // as it happens
 *     rec_tool(ep, &tool);
 *     rec_reward(ep, 1.0, breakdown);
 *     rec_episode_end(ep, &end);           // written and fsynced (REC_SYNC_EPISODE)
 *     rec_episode_free(ep);
 *     rec_file_close(f);
 *
 * Records are framed, checksummed and buffered per episode. Several episodes may write to one
 * file from different threads (each episode from one thread at a time): the first to write
 * streams its records to the file, the others keep theirs in memory until it ends, so the
 * records of two episodes never interleave. A failed write (a full disk) is cut back to the
 * last complete record with ftruncate(), reported, and fails every later write to that file:
 * nothing that looks like a complete record is ever partial. A crash at any byte leaves a
 * file whose complete records all read back.
 *
 * The writer also keeps the token-exact bookkeeping: each branch's length in tokens, so that a
 * model call's prompt is recorded as a reference to the branch's previous tokens plus the new
 * ones, and a prompt that does not extend its branch must be a fork (rec_fork) instead.
 */
#ifndef CRU_RECORDER_WRITER_H
#define CRU_RECORDER_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "recorder/format.h"

struct rec_file;
struct rec_episode;

/* When data reaches the disk. */
enum rec_sync {
    REC_SYNC_EPISODE = 0, /* fsync when an episode ends (the default) */
    REC_SYNC_RECORD,      /* write and fsync every record as it is made */
    REC_SYNC_NONE,        /* write when an episode ends or its buffer fills; never fsync */
};

enum rec_open_mode {
    REC_CREATE = 0, /* a new file: an existing one is an error */
    REC_TRUNCATE,   /* replace whatever is there */
    REC_APPEND,     /* add episodes to an existing file (a torn tail is cut off first) */
};

/* The writer's system calls, replaceable for fault injection in tests. */
struct rec_io {
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n, off_t off);
    int (*fsync)(void *ctx, int fd);
    void *ctx;
};

#define REC_FILE_OPTS_VERSION 1
struct rec_file_opts {
    int version; /* REC_FILE_OPTS_VERSION */
    enum rec_open_mode mode;
    enum rec_sync sync;
    size_t buffer;           /* bytes an episode buffers before writing; 0: 1 MiB */
    const struct rec_io *io; /* NULL: pwrite(2) and fsync(2) */
    /* Optional: called with each record's payload (a msgpack map) as it is made, from the
     * thread that made it, before it reaches the file (a live transcript, say). */
    void (*on_record)(void *ctx, const uint8_t *payload, size_t len);
    void *on_record_ctx;
};
#define REC_FILE_OPTS_INIT                                                                         \
    {                                                                                              \
        REC_FILE_OPTS_VERSION, REC_CREATE, REC_SYNC_EPISODE, 0, NULL, NULL, NULL                   \
    }

/* Opens PATH for writing and takes an exclusive lock on it (another process writing the same
 * file is an error). */
int rec_file_open(struct rec_file **out, const char *path, const struct rec_file_opts *opts);
/* Writes what is buffered (of the episode that owns the file, and of finished ones waiting) and
 * fsyncs unless the policy is REC_SYNC_NONE. */
int rec_file_flush(struct rec_file *f);
/* Flushes and closes. Episodes still open keep the file's memory alive until they are freed,
 * but can write no more. Returns the first write error the file met, if any. Accepts NULL. */
int rec_file_close(struct rec_file *f);
/* Bytes written to the file so far (complete records only). */
uint64_t rec_file_size(const struct rec_file *f);

/* Sampling parameters as recorded in the episode header. */
struct rec_sampling {
    double temperature;
    double top_p;
    int64_t top_k;       /* 0: none */
    uint64_t max_tokens; /* per model call; 0: none */
};

/* The episode header. Strings may be NULL (recorded as nil), except EPISODE_ID. */
struct rec_episode_info {
    const char *episode_id;
    const char *group_id; /* episodes of one GRPO group share it; NULL: the episode id */
    const char *task_id, *task_digest;
    const char *scaffold_version;
    const char *agent;
    const char *model_id, *model_digest;
    const char *tokenizer_digest;
    const char *chat_template;
    struct rec_sampling sampling;
    uint64_t seed;
    uint64_t policy_version;
    double start_time;      /* Unix seconds; 0: now */
    const char *host;       /* NULL: this machine's host name */
    const json_t *messages; /* optional: the conversation's first messages ([{role, content}]) */
    const json_t *meta;     /* optional: anything else, an object */
};

/* One call of the model on one branch of the episode's context. */
struct rec_model_call {
    uint32_t branch;
    const int32_t *prompt; /* the tokens appended to the branch before sampling */
    size_t n_prompt;
    const int32_t *completion; /* the sampled tokens */
    const float *logprobs;     /* their behavior log-probs */
    size_t n_completion;
    const char *finish; /* "stop", "length", "tool_call", ... */
    uint64_t policy_version;
    double queue_ms, prefill_ms, decode_ms;
    /* Optional: the TOP_K most likely alternatives at each sampled position. */
    uint32_t top_k;
    const int32_t *top_ids;    /* n_completion * top_k */
    const float *top_logprobs; /* n_completion * top_k */
    /* Optional, for people: the completion as text (derived from the ids), the reasoning part,
     * and the tool calls parsed from it ([{id, name, arguments}]). */
    const char *text;
    const char *reasoning;
    const json_t *tool_calls;
};

/* One tool call and its result. */
struct rec_tool {
    uint32_t branch;
    const char *call_id; /* the id the model gave the call, if any */
    const char *name;
    const char *arguments; /* as the model wrote them (JSON text) */
    /* The arguments' full size when ARGUMENTS holds only their start (a call refused for
     * being over the size limit); 0: ARGUMENTS is complete. */
    uint64_t arguments_bytes;
    const char *status; /* "ok", "error", "timeout", ... */
    int64_t exit_code;  /* for commands; -1 when not applicable */
    const char *output; /* what the agent saw, at most OUTPUT_CAP bytes of OUTPUT_BYTES */
    size_t output_len;
    uint64_t output_bytes; /* the full output's size before the cap */
    uint64_t output_cap;   /* the cap applied (0: none) */
    double duration_ms;
};

struct rec_scaffold_edit {
    const char *parent, *child; /* scaffold versions */
    const char *diff;
    const json_t *evaluation; /* optional: how the child scored */
};

/* A file of the artifact, with its SHA-256 in hex. */
struct rec_artifact_file {
    const char *path;
    uint64_t size;
    const char *sha256;
};

struct rec_end {
    enum rec_status status;
    const char *message; /* why, for errors and budgets; NULL when none */
};

/* Starts an episode in F and writes its header record. */
int rec_episode_begin(struct rec_episode **out, struct rec_file *f,
                      const struct rec_episode_info *info);

/* Records a model call. Its prompt extends the branch (which must exist); the branch's length
 * grows by the prompt and the completion. */
int rec_model_call(struct rec_episode *ep, const struct rec_model_call *mc);
int rec_tool(struct rec_episode *ep, const struct rec_tool *t);
/* Starts a new branch holding the first POSITION tokens of branch FROM (a context edit: the
 * template rewrote history, or the agent edited its context). *BRANCH receives its id. */
int rec_fork(struct rec_episode *ep, uint32_t from, uint64_t position, const char *why,
             uint32_t *branch);
int rec_scaffold_edit(struct rec_episode *ep, const struct rec_scaffold_edit *e);
/* The reward and its per-check breakdown (any JSON; NULL: none). */
int rec_reward(struct rec_episode *ep, double value, const json_t *breakdown);
/* The artifact: a diff and/or files with digests. */
int rec_artifact(struct rec_episode *ep, const char *diff, const struct rec_artifact_file *files,
                 size_t n_files);
/* A custom event (a plugin's, say): NAME and any JSON DATA. */
int rec_event(struct rec_episode *ep, const char *name, const json_t *data);
/* Writes the end record with the episode's totals, then the episode's records reach the file
 * (and the disk, by the sync policy). No record may follow. */
int rec_episode_end(struct rec_episode *ep, const struct rec_end *end);
/* Frees EP. An episode that was not ended keeps the records it made (the file shows it
 * incomplete). Accepts NULL. */
void rec_episode_free(struct rec_episode *ep);

/* The number of tokens on BRANCH so far; false for a branch that does not exist. */
bool rec_branch_len(const struct rec_episode *ep, uint32_t branch, uint64_t *len);

#endif
