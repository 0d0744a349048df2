/* TEMPORARY scaffolding for local testing; replaced by the real module at merge. */
#include "sandbox/seccomp.h"

#include <linux/filter.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"

int sbx_seccomp_apply(void)
{
    return 0;
}

int sbx_seccomp_program(struct sock_fprog *prog)
{
    memset(prog, 0, sizeof(*prog));
    return 0;
}

void sbx_seccomp_program_free(struct sock_fprog *prog)
{
    free(prog->filter);
    memset(prog, 0, sizeof(*prog));
}
