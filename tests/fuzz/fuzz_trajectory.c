/* fuzz/trajectory: the trajectory reader, verify and the episode rebuilder on arbitrary bytes.
 *
 * The input is a trajectory file. Reading it must end cleanly or with an error that has a
 * message and a problem kind, never crash, never allocate for counts the bytes cannot hold.
 * Every record that reads back must convert to JSON (what `show --json` prints), and the
 * episode rebuilder (what the exports use, tokens and messages both) must accept or refuse
 * each episode with a message. verify must agree with the reader on the records intact.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "recorder/episode.h"
#include "recorder/reader.h"
#include "tests/fuzz/fuzz.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_trajectory: %s (%s)\n", what, cru_err_msg());
    abort();
}

static uint64_t read_all(const uint8_t *data, size_t size, enum rec_problem *problem)
{
    FILE *f = fmemopen((void *)(uintptr_t)data, size, "rb");
    if (!f)
        return 0;
    struct rec_reader *r;
    struct rec_record rec;
    struct rec_ep *e = NULL;
    uint64_t n = 0;
    int rc = rec_reader_open_stream(&r, f, "fuzz");
    if (rc < 0) {
        if (cru_err_msg()[0] == '\0')
            fail("an open failure without a message");
        *problem = REC_NOT_TRAJ;
        fclose(f);
        return 0;
    }
    while ((rc = rec_reader_next(r, &rec)) > 0) {
        n++;
        if (rec.offset + 8 + rec.size > size)
            fail("a record past the end of the input");
        json_t *j = rec_msgpack_to_json(rec.map);
        if (!j)
            fail("a record that does not convert to JSON");
        char *txt = json_dumps(j, JSON_COMPACT);
        if (!txt)
            fail("a record whose JSON does not serialise");
        free(txt);
        json_decref(j);
        int erc = 0;
        if (rec.type == REC_EPISODE) {
            rec_ep_free(e);
            e = NULL;
            erc = rec_ep_new(&e, &rec, REC_EP_TOKENS | REC_EP_MESSAGES);
        } else if (e) {
            erc = rec_ep_add(e, &rec);
        }
        if (erc < 0) {
            if (cru_err_msg()[0] == '\0')
                fail("an episode refused without a message");
            rec_ep_free(e);
            e = NULL;
        } else if (e) {
            for (uint32_t b = 0; b < e->n_branches; b++) {
                const struct rec_branch *br = &e->branches[b];
                uint64_t ones = 0;
                for (uint64_t i = 0; i < br->len; i++)
                    ones += br->mask[i];
                if (ones != br->sampled)
                    fail("a branch's mask does not count its sampled tokens");
            }
        }
    }
    if (rc < 0 && (rec_reader_problem(r) == REC_INTACT || cru_err_msg()[0] == '\0'))
        fail("a read error without a problem kind or message");
    if (n != rec_reader_count(r))
        fail("the count disagrees with the records read");
    *problem = rec_reader_problem(r);
    rec_ep_free(e);
    rec_reader_free(r);
    fclose(f);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen() refuses an empty buffer */
    enum rec_problem problem;
    uint64_t n = read_all(data, size, &problem);
    if (n > size / 9)
        fail("more records than the bytes could frame");

    FILE *f = fmemopen((void *)(uintptr_t)data, size, "rb");
    if (!f)
        return 0;
    struct rec_verify v;
    int rc = rec_verify_stream(f, "fuzz", &v);
    fclose(f);
    if (rc < 0 && cru_err_msg()[0] == '\0')
        fail("verify failed without a message");
    if (v.records > n)
        fail("verify read more records than the reader");
    if (v.problem != REC_INTACT && (v.problem != problem || v.records != n))
        fail("verify and the reader disagree about the damage");
    return 0;
}
