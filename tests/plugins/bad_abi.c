/* A plugin built for an agent ABI version this crucible does not speak: loading it must fail
 * with a clear error, before any of its functions is called. */
#include <stdlib.h>

#include "crucible/agent.h"

static int init(const struct crucible_host *host, void **state)
{
    (void)host;
    (void)state;
    abort(); /* never called: the version check comes first */
}

static int step(void *state)
{
    (void)state;
    abort();
}

static void finish(void *state, int status)
{
    (void)state;
    (void)status;
    abort();
}

static const struct crucible_agent agent = {
    .abi_version = CRUCIBLE_AGENT_ABI + 41,
    .name = "bad-abi",
    .init = init,
    .step = step,
    .finish = finish,
};

const struct crucible_agent *crucible_agent_v1(void);

const struct crucible_agent *crucible_agent_v1(void)
{
    return &agent;
}
