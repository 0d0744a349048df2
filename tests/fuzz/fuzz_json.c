/* fuzz/json: cru_json_parse on arbitrary bytes, and the dump/parse round trip.
 *
 * Any input must parse or fail with a negative code and a message, never crash. A value that
 * parses must survive cru_json_dump and a second parse unchanged (json_equal), compact and
 * pretty: otherwise what crucible writes (summaries, configs) would not read back as what it
 * meant. Numbers compare by value, so "1E2" and "100.0" are the same real.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/json.h"
#include "tests/fuzz/fuzz.h"

static void check_round_trip(const json_t *v, bool pretty)
{
    char *text = NULL;
    json_t *again = NULL;

    if (cru_json_dump(&text, v, pretty) < 0) {
        fprintf(stderr, "fuzz_json: dump failed: %s\n", cru_err_msg());
        abort();
    }
    if (cru_json_parse(&again, text, strlen(text), "<dump>") < 0) {
        fprintf(stderr, "fuzz_json: the dump does not parse: %s\n%s\n", cru_err_msg(), text);
        abort();
    }
    if (!json_equal(v, again)) {
        fprintf(stderr, "fuzz_json: the round trip changed the value:\n%s\n", text);
        abort();
    }
    json_decref(again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = NULL;

    cru_err_clear();
    int rc = cru_json_parse(&v, (const char *)data, size, "<fuzz>");
    if (rc < 0) {
        if (cru_err_msg()[0] == '\0' || cru_err_code() != rc) {
            fprintf(stderr, "fuzz_json: failure %d without a matching message\n", rc);
            abort();
        }
        return 0;
    }
    if (rc != 0 || !v) {
        fprintf(stderr, "fuzz_json: success (%d) without a value\n", rc);
        abort();
    }
    check_round_trip(v, false);
    check_round_trip(v, true);
    json_decref(v);
    return 0;
}
