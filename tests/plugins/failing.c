/* A plugin whose second step fails: the episode must end with status error, the plugin's
 * message in the end record, and a valid, complete trajectory. */
#include <stdlib.h>

#include "crucible/agent.h"

struct state {
    const struct crucible_host *host;
    int steps;
};

static int init(const struct crucible_host *host, void **state)
{
    struct state *s = calloc(1, sizeof(*s));
    if (!s)
        return CRUCIBLE_E_FAILED;
    s->host = host;
    *state = s;
    return 0;
}

static int step(void *state)
{
    struct state *s = state;
    if (s->steps++ == 0) {
        char out[256];
        size_t len;
        /* A file outside the workspace cannot be named: the host refuses. */
        return s->host->read_file(s->host->ctx, "/etc/passwd", out, sizeof(out), &len) < 0
                   ? CRUCIBLE_CONTINUE
                   : CRUCIBLE_E_FAILED;
    }
    return CRUCIBLE_E_FAILED;
}

static void finish(void *state, int status)
{
    (void)status;
    free(state);
}

static const struct crucible_agent agent = {
    .abi_version = CRUCIBLE_AGENT_ABI,
    .name = "failing",
    .init = init,
    .step = step,
    .finish = finish,
};

const struct crucible_agent *crucible_agent_v1(void);

const struct crucible_agent *crucible_agent_v1(void)
{
    return &agent;
}
