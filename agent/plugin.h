/* plugin: runs a white-box plugin's episode in a worker process of its own.
 *
 * A plugin is C code from outside: a crash (a bad pointer, an abort) or a hang inside it must
 * not take crucible down, and with it the other episodes of a run. So each episode forks a
 * worker that calls the plugin's init, step and finish. The worker's host table is a proxy:
 * each host call travels over a socket to the episode's thread, which runs the real call (the
 * sandbox, the recorder and the model stay in crucible's process) and sends the result back.
 * The episode's thread drives the steps, so budgets, the deadline and interruptions are checked
 * where the plugin cannot interfere. A worker that dies, or does not answer before the
 * deadline, is killed and reaped; the episode then ends with status agent_error (or timeout)
 * and a message naming the signal, and its trajectory is still complete.
 */
#ifndef CRU_AGENT_PLUGIN_H
#define CRU_AGENT_PLUGIN_H

#include <stdbool.h>
#include <stdint.h>

#include "crucible/agent.h"

struct agt_plugin_run {
    const struct crucible_agent *plugin;
    const struct crucible_host *host; /* the real host calls, run in this process */
    /* Checked before each step with the steps taken so far: true stops the loop (a budget,
     * the deadline, a cancel). */
    bool (*stop)(void *ctx, uint64_t steps);
    void *stop_ctx;
    uint64_t deadline_ns; /* 0: none; a step still running then is killed */
    /* Out. */
    uint64_t steps;
    bool submitted;
    bool timed_out;   /* killed at the deadline */
    int failed_rc;    /* init's or a step's negative return, or 0 */
    int crash_signal; /* the signal that ended the worker, or 0 */
    int exit_status;  /* the worker's exit status when it exited unexpectedly, else -1 */
    char error[512];  /* what went wrong, for the end record */
};

/* Runs the episode's plugin loop in a worker. Returns 0 when the loop ran (see R for how it
 * ended, a plugin crash included), a negative code when no worker could be started. */
int agt_plugin_run(struct agt_plugin_run *r);

#endif
