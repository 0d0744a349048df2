/* A plugin that crashes: its first step runs a command, its second dereferences a null pointer.
 * The crash must end only this episode (status error, the signal named), never crucible. With
 * CRUCIBLE_TEST_HANG set in the task's prompt it instead spins forever in its second step, and
 * the episode's deadline must stop it. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

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
        int code;
        return s->host->exec(s->host->ctx, "echo before the crash", 0, &code, out, sizeof(out),
                             &len) < 0
                   ? CRUCIBLE_E_FAILED
                   : CRUCIBLE_CONTINUE;
    }
    if (strstr(s->host->prompt, "CRUCIBLE_TEST_HANG"))
        for (volatile int spin = 1; spin;)
            ;
    raise(SIGSEGV);
    return CRUCIBLE_E_FAILED;
}

static void finish(void *state, int status)
{
    (void)status;
    free(state);
}

static const struct crucible_agent agent = {
    .abi_version = CRUCIBLE_AGENT_ABI,
    .name = "crashing",
    .init = init,
    .step = step,
    .finish = finish,
};

const struct crucible_agent *crucible_agent_v1(void);

const struct crucible_agent *crucible_agent_v1(void)
{
    return &agent;
}
