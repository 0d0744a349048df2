/* tools: the built-in scaffold's tools, run in an episode's sandbox.
 *
 *   bash         {command, timeout?}     a shell command in /workspace: exit status and output
 *   view         {path, start?, end?}    a text file with line numbers, or a range of lines
 *   create       {path, content}         write a file (parents created)
 *   str_replace  {path, old, new}        replace the one occurrence of OLD
 *   list         {path?}                 a folder's entries
 *   submit       {}                      the agent is done
 *
 * Every agent calls tools through agt_tool_run, so a scripted replay, a plugin and a model
 * take the same path, and every call is recorded as a tool record. File tools go through the
 * sandbox's root-confined file access (sandbox/fsaccess.h): a path is relative to /workspace
 * or absolute below it, and nothing outside the workspace can be named or reached through a
 * link. A bad call (an unknown tool, arguments that are not a JSON object, a missing argument,
 * a file that does not exist, an ambiguous replacement, arguments over 16 MiB, a command longer
 * than the sandbox takes) is an observation that starts with "error: " for the agent to read,
 * never a failure of the episode.
 */
#ifndef CRU_AGENT_TOOLS_H
#define CRU_AGENT_TOOLS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/scaffold.h"
#include "lib/buf.h"
#include "recorder/writer.h"
#include "sandbox/fsaccess.h"

struct sbx;

struct agt_tools {
    struct sbx *sb;
    struct sbx_fs fs;
    const struct agt_scaffold *sc;
    struct rec_episode *ep; /* where calls are recorded; NULL: nowhere */
    uint32_t branch;        /* recorded with each call */
    bool submitted;         /* set by submit */
    uint64_t calls;
    const char *last_status;   /* the last call's: "ok", "error", "timeout", "oom", "cancelled" */
    const atomic_bool *cancel; /* stops a running command when set (an interrupted run) */
};

/* Runs tool NAME with ARGUMENTS (JSON text; NULL: {}) and puts what the agent sees in OBS
 * (replacing its contents). Returns 0 whether the tool succeeded or not (OBS says), and a
 * negative code only when the sandbox broke or the record could not be written. */
int agt_tool_run(struct agt_tools *t, const char *call_id, const char *name, const char *arguments,
                 struct cru_buf *obs);

/* A path given to a tool as the workspace-relative path fsaccess takes: "a/b", "./a/b",
 * "/workspace/a/b" and "/workspace" are accepted; anything else absolute is outside
 * (CRU_EUNSAFE), and so is "..". */
int agt_tool_path(const char *path, char **rel);

#endif
