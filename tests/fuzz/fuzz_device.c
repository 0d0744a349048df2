/* fuzz/device: the --device and --gpu-memory parsers on arbitrary text.
 *
 * The input up to its first NUL is the text. mdl_device_parse must accept exactly "cpu",
 * "cuda" and "cuda:N" for N a decimal ordinal below MDL_MAX_DEVICES (digits alone: no sign,
 * space or base prefix), refusing anything else with a negative code and a message.
 * mdl_device_memory_parse must accept only shares in (0, 1].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "model/device.h"
#include "tests/fuzz/fuzz.h"

static void fail(const char *what, const char *s)
{
    fprintf(stderr, "fuzz_device: %s\n  input: '%s' (%s)\n", what, s, cru_err_msg());
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_text(data, size);
    if (!s)
        return 0;

    cru_err_clear();
    struct mdl_device d = { MDL_DEV_CUDA, 99 };
    int rc = mdl_device_parse(s, &d);
    if (rc < 0) {
        if (!cru_err_msg()[0])
            fail("a refusal with no message", s);
    } else if (d.kind == MDL_DEV_CPU) {
        if (strcmp(s, "cpu") != 0)
            fail("the CPU from text other than cpu", s);
    } else if (d.ordinal < 0 || d.ordinal >= MDL_MAX_DEVICES) {
        fail("an ordinal out of range", s);
    } else if (strcmp(s, "cuda") != 0 || d.ordinal != 0) {
        /* "cuda:" and decimal digits alone (leading zeros allowed), worth the ordinal */
        const char *p = s + 5;
        if (strncmp(s, "cuda:", 5) != 0 || !*p || strspn(p, "0123456789") != strlen(p) ||
            strtol(p, NULL, 10) != d.ordinal)
            fail("accepted text that is not cuda:N", s);
    }
    float f = -1.0f;
    cru_err_clear();
    if (mdl_device_memory_parse(s, &f) == 0 && !(f > 0.0f && f <= 1.0f))
        fail("a memory share outside (0, 1]", s);
    free(s);
    return 0;
}
