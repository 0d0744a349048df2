/* examples/agent_plugin: a complete white-box agent plugin for crucible.
 *
 * Build:  cc -shared -fPIC -I include -o agent_plugin.so examples/agent_plugin.c
 * Run:    crucible run-task IMAGE --agent plugin:./agent_plugin.so
 *
 * It shows every host call a plugin has: it looks at the workspace (exec), reads a file
 * (read_file), leaves a note (write_file), records what it saw (event), asks the model for a
 * completion (generate: without a model the host says so, and the plugin carries on), starts
 * a new branch of its context (context_edit), and submits on its third step. A real agent
 * would loop on generate and parse tool calls from the model's output here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crucible/agent.h"

struct state {
    const struct crucible_host *host;
    int steps;
    char out[8192];
};

static int init(const struct crucible_host *host, void **state)
{
    if (host->abi_version != CRUCIBLE_AGENT_ABI)
        return CRUCIBLE_E_UNSUPPORTED;
    struct state *s = calloc(1, sizeof(*s));
    if (!s)
        return CRUCIBLE_E_FAILED;
    s->host = host;
    *state = s;
    host->log(host->ctx, CRUCIBLE_LOG_INFO, "example plugin: started");
    return 0;
}

static int first_step(struct state *s)
{
    const struct crucible_host *h = s->host;
    int exit_code = -1;
    size_t len = 0;
    int rc = h->exec(h->ctx, "ls -1 | head -20", 0, &exit_code, s->out, sizeof(s->out), &len);
    if (rc < 0)
        return rc;
    char data[256];
    snprintf(data, sizeof(data), "{\"ls_exit\": %d, \"ls_bytes\": %zu, \"prompt_bytes\": %zu}",
             exit_code, len, strlen(h->prompt));
    return h->event(h->ctx, "example.looked", data);
}

static int second_step(struct state *s)
{
    const struct crucible_host *h = s->host;
    static const char note[] = "notes from the example plugin\n";
    int rc = h->write_file(h->ctx, "PLUGIN_NOTES.txt", note, sizeof(note) - 1);
    if (rc < 0)
        return rc;
    size_t len = 0;
    if ((rc = h->read_file(h->ctx, "PLUGIN_NOTES.txt", s->out, sizeof(s->out), &len)) < 0)
        return rc;
    if (len != sizeof(note) - 1 || memcmp(s->out, note, len) != 0)
        return CRUCIBLE_E_FAILED;

    /* The model: ids in, ids and behavior log-probs out. */
    int32_t prompt[3] = { 1, 2, 3 }, ids[16];
    float logprobs[16];
    size_t n = 0;
    rc = h->generate(h->ctx, prompt, 3, 16, ids, logprobs, 16, &n);
    if (rc == CRUCIBLE_E_UNSUPPORTED) {
        h->log(h->ctx, CRUCIBLE_LOG_INFO, "example plugin: no model in this episode");
        return h->event(h->ctx, "example.no_model", NULL);
    }
    if (rc < 0)
        return rc;
    /* Keep the prompt, drop the completion: a context edit, recorded as a fork. */
    uint32_t branch;
    return h->context_edit(h->ctx, 0, 3, "example: drop the first completion", &branch);
}

static int step(void *state)
{
    struct state *s = state;
    switch (s->steps++) {
    case 0:
        return first_step(s) < 0 ? CRUCIBLE_E_FAILED : CRUCIBLE_CONTINUE;
    case 1:
        return second_step(s) < 0 ? CRUCIBLE_E_FAILED : CRUCIBLE_CONTINUE;
    default:
        return CRUCIBLE_SUBMIT;
    }
}

static void finish(void *state, int status)
{
    struct state *s = state;
    char msg[64];
    snprintf(msg, sizeof(msg), "example plugin: finished with status %d", status);
    s->host->log(s->host->ctx, CRUCIBLE_LOG_INFO, msg);
    free(s);
}

static const struct crucible_agent agent = {
    .abi_version = CRUCIBLE_AGENT_ABI,
    .name = "example",
    .init = init,
    .step = step,
    .finish = finish,
};

const struct crucible_agent *crucible_agent_v1(void);

const struct crucible_agent *crucible_agent_v1(void)
{
    return &agent;
}
