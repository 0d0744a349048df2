/* crucible/agent.h: the white-box agent plugin ABI, version 1.
 *
 * A plugin is a shared object that exports one function:
 *
 *     const struct crucible_agent *crucible_agent_v1(void);
 *
 * returning a table whose abi_version is CRUCIBLE_AGENT_ABI. crucible loads it with
 * `--agent plugin:PATH.so`, checks the version (a mismatch is a clear error, never a call into
 * the wrong layout), then for each episode calls init once, step until the plugin submits or a
 * budget runs out, and finish once. The plugin acts only through the host table it receives:
 * generate with the episode's model, run commands in the sandbox, read and write workspace
 * files, edit its context (recorded as a fork), log, and record its own events. Every action
 * is recorded in the episode's trajectory exactly as crucible's own agents' are.
 *
 * Rules of the ABI:
 * - All strings are UTF-8 and NUL-terminated; buffers are the caller's, with their capacity
 *   given, and a result that does not fit is an error (CRUCIBLE_E_SPACE) with the size needed
 *   in the length output, never a silent truncation.
 * - Host functions return 0 or a negative CRUCIBLE_E_* code; last_error gives the message.
 * - One episode calls its plugin from one thread; different episodes may run in parallel
 *   threads, each with its own state pointer, so a plugin keeps no global mutable state.
 * - Tables only grow: a later version adds fields at the end and raises the version.
 *
 * Build a plugin with: cc -shared -fPIC -I include -o agent.so agent.c
 * (examples/agent_plugin.c is a complete one.)
 */
#ifndef CRUCIBLE_AGENT_H
#define CRUCIBLE_AGENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CRUCIBLE_AGENT_ABI 1

/* What step returns when it does not fail. */
enum crucible_step {
    CRUCIBLE_CONTINUE = 0, /* call step again */
    CRUCIBLE_SUBMIT = 1,   /* the agent is done: score the workspace */
};

/* Error codes of host functions (negative). */
enum crucible_error {
    CRUCIBLE_E_INVALID = -1,     /* a bad argument */
    CRUCIBLE_E_SPACE = -2,       /* the output buffer is too small (the length says how big) */
    CRUCIBLE_E_UNSUPPORTED = -3, /* not available in this episode (no model, say) */
    CRUCIBLE_E_BUDGET = -4,      /* a budget of the episode ran out */
    CRUCIBLE_E_FAILED = -5,      /* it failed: last_error says why */
};

/* Log levels for log(). */
enum crucible_log { CRUCIBLE_LOG_ERROR = 0, CRUCIBLE_LOG_WARN, CRUCIBLE_LOG_INFO };

/* The host table: what crucible offers a plugin. CTX is the host's; pass it back unchanged. */
struct crucible_host {
    uint32_t abi_version; /* CRUCIBLE_AGENT_ABI */
    uint32_t size;        /* sizeof(struct crucible_host) of the host */
    void *ctx;

    /* The task's prompt (borrowed, valid for the episode). */
    const char *prompt;

    /* Samples a completion on the current branch: the tokens PROMPT (N_PROMPT of them) are
     * appended to the branch's context, then up to MAX_TOKENS are sampled. The sampled ids and
     * their behavior log-probs go to IDS and LOGPROBS (room for CAP each), their count to
     * *N_OUT. Recorded as a model call. CRUCIBLE_E_UNSUPPORTED when the episode has no model. */
    int (*generate)(void *ctx, const int32_t *prompt, size_t n_prompt, uint32_t max_tokens,
                    int32_t *ids, float *logprobs, size_t cap, size_t *n_out);

    /* Runs COMMAND with /bin/sh -c in /workspace (TIMEOUT_MS 0: the scaffold's default). Its
     * exit status goes to *EXIT_CODE and what the agent would see (status line, stdout, then
     * stderr, capped like the bash tool) to OUT (CAP bytes, NUL-terminated; *OUT_LEN the
     * length). Recorded as a bash tool call. */
    int (*exec)(void *ctx, const char *command, uint64_t timeout_ms, int *exit_code, char *out,
                size_t cap, size_t *out_len);

    /* Reads the workspace file PATH into BUF (CAP bytes, NUL-terminated; *LEN its size). */
    int (*read_file)(void *ctx, const char *path, char *buf, size_t cap, size_t *len);

    /* Writes LEN bytes of DATA to the workspace file PATH (parents created). Recorded. */
    int (*write_file)(void *ctx, const char *path, const void *data, size_t len);

    /* Starts a new branch from the first POSITION tokens of branch FROM (WHY is recorded) and
     * makes it the current one; *BRANCH receives its id. */
    int (*context_edit)(void *ctx, uint32_t from, uint64_t position, const char *why,
                        uint32_t *branch);

    /* A line in crucible's log. */
    void (*log)(void *ctx, int level, const char *message);

    /* Records a custom event: NAME and DATA_JSON (a JSON value, or NULL). */
    int (*event)(void *ctx, const char *name, const char *data_json);

    /* The message of the last failed host call on this episode (borrowed). */
    const char *(*last_error)(void *ctx);
};

/* The plugin's table. */
struct crucible_agent {
    uint32_t abi_version; /* CRUCIBLE_AGENT_ABI */
    const char *name;

    /* Starts an episode: *STATE receives the plugin's per-episode state. 0 or a negative
     * code (the episode then ends with status agent_error; what the workspace holds is still
     * scored). */
    int (*init)(const struct crucible_host *host, void **state);

    /* One step: CRUCIBLE_CONTINUE, CRUCIBLE_SUBMIT, or a negative code (status agent_error). */
    int (*step)(void *state);

    /* The episode is over (STATUS: 0 submitted, else why it ended); free STATE. */
    void (*finish)(void *state, int status);
};

typedef const struct crucible_agent *(*crucible_agent_v1_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
