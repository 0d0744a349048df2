/* A plugin that samples from the episode's model every step (8 tokens after a 2-token prompt)
 * and, in its second step, forks its context: a test of the recorded model calls, of branches,
 * and of the sampled-token budget that ends the episode. */
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
    const struct crucible_host *h = s->host;
    int32_t prompt[2] = { 7, s->steps }, ids[8];
    float logprobs[8];
    size_t n = 0;
    if (s->steps++ == 1) {
        uint32_t branch;
        /* Keep the first call's prompt, drop its completion. */
        int rc = h->context_edit(h->ctx, 0, 2, "test: drop the first completion", &branch);
        if (rc < 0 || branch != 1)
            return CRUCIBLE_E_FAILED;
    }
    int rc = h->generate(h->ctx, prompt, 2, 8, ids, logprobs, 8, &n);
    return rc < 0 ? rc : CRUCIBLE_CONTINUE;
}

static void finish(void *state, int status)
{
    (void)status;
    free(state);
}

static const struct crucible_agent agent = {
    .abi_version = CRUCIBLE_AGENT_ABI,
    .name = "generator",
    .init = init,
    .step = step,
    .finish = finish,
};

const struct crucible_agent *crucible_agent_v1(void);

const struct crucible_agent *crucible_agent_v1(void)
{
    return &agent;
}
