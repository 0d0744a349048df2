/* fuzz/bundle: the git bundle header parser on arbitrary bytes.
 *
 * Any input parses or fails with a negative code and a message, never crashes or reads past
 * the input. A header that parses has at most AGT_GIT_BUNDLE_REFS_MAX refs, each a 40-digit
 * lower-case hex id and a name with no space, and its pack offset lies inside the input at
 * "PACK".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/gitws.h"
#include "lib/err.h"
#include "tests/fuzz/fuzz.h"

static struct agt_git_bundle hdr;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cru_err_clear();
    int rc = agt_git_bundle_header(data, size, &hdr);
    if (rc < 0) {
        if (cru_err_code() != rc || cru_err_msg()[0] == '\0') {
            fprintf(stderr, "fuzz_bundle: failure %d without a matching message\n", rc);
            abort();
        }
        return 0;
    }
    if (hdr.n_refs > AGT_GIT_BUNDLE_REFS_MAX || hdr.pack_offset + 4 > size ||
        memcmp(data + hdr.pack_offset, "PACK", 4) != 0) {
        fprintf(stderr, "fuzz_bundle: a bad header was accepted\n");
        abort();
    }
    for (size_t i = 0; i < hdr.n_refs; i++)
        if (strlen(hdr.refs[i].oid) != 40 || strspn(hdr.refs[i].oid, "0123456789abcdef") != 40 ||
            strchr(hdr.refs[i].name, ' ') || hdr.refs[i].name[0] == '\0') {
            fprintf(stderr, "fuzz_bundle: a bad ref was accepted: %s %s\n", hdr.refs[i].oid,
                    hdr.refs[i].name);
            abort();
        }
    return 0;
}
