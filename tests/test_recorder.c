/* Tests for recorder/: the framing and the writer's crash safety (a cut at every byte, full
 * disks at every write, a kill in the middle of a record), concurrent episodes in one file,
 * the reader's reports, the token-exact bookkeeping of branches, verify, and the exports
 * (samples rebuilt exactly, prefix trees that give every sample back).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/hash.h"
#include "recorder/episode.h"
#include "recorder/export.h"
#include "recorder/format.h"
#include "recorder/reader.h"
#include "recorder/writer.h"

static char tmpdir[] = "/tmp/crucible-test-recorder-XXXXXX";

static void setup(void)
{
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    cru_remove_tree(tmpdir);
}

TestSuite(recorder, .init = setup, .fini = teardown);

static char *path_of(const char *name)
{
    char *p = NULL;
    cr_assert_eq(asprintf(&p, "%s/%s", tmpdir, name) > 0, true);
    return p;
}

/* Deterministic tokens: ids and log-probs that differ from call to call. */
static void fill(int32_t *ids, float *lps, size_t n, int seed)
{
    for (size_t i = 0; i < n; i++) {
        ids[i] = (int32_t)((seed * 7919 + (int)i * 31) % 151000);
        if (lps)
            lps[i] = -0.001f * (float)((seed + (int)i) % 997);
    }
}

struct expect {
    int32_t ids[2][256]; /* per branch */
    uint8_t mask[2][256];
    float lps[2][256];
    size_t len[2];
};

/* One episode with every record type: two calls on branch 0, a tool, a fork, a call on the new
 * branch, reward, artifact, event, end. E receives the branches' expected tokens. */
static void write_episode(struct rec_file *f, const char *id, const char *group, int seed,
                          struct expect *e)
{
    struct rec_episode_info info = { .episode_id = id,
                                     .group_id = group,
                                     .task_id = "py-fizzbuzz",
                                     .task_digest = "abc",
                                     .scaffold_version = "s1",
                                     .agent = "scripted",
                                     .model_id = "tiny",
                                     .sampling = { 0.7, 0.95, 20, 512 },
                                     .seed = 42,
                                     .policy_version = 3 };
    json_t *msgs = json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content", "be brief",
                             "role", "user", "content", "fix the bug");
    info.messages = msgs;
    struct rec_episode *ep;
    cr_assert_eq(rec_episode_begin(&ep, f, &info), 0, "%s", cru_err_msg());
    json_decref(msgs);

    int32_t prompt[64], comp[32], top_ids[32 * 2];
    float lps[32], top_lps[32 * 2];
    struct expect local;
    if (!e)
        e = &local;
    memset(e, 0, sizeof(*e));
    /* Same prompt for every episode (seed-independent), so groups share a prefix. */
    fill(prompt, NULL, 40, 1);
    fill(comp, lps, 20, seed);
    fill(top_ids, top_lps, 40, seed + 1);
    json_t *calls = json_pack("[{s:s, s:s, s:s}]", "id", "c1", "name", "bash", "arguments",
                              "{\"command\": \"ls\"}");
    struct rec_model_call mc = { .branch = 0,
                                 .prompt = prompt,
                                 .n_prompt = 40,
                                 .completion = comp,
                                 .logprobs = lps,
                                 .n_completion = 20,
                                 .finish = "tool_call",
                                 .policy_version = 3,
                                 .top_k = 2,
                                 .top_ids = top_ids,
                                 .top_logprobs = top_lps,
                                 .text = "let me look",
                                 .tool_calls = calls };
    cr_assert_eq(rec_model_call(ep, &mc), 0, "%s", cru_err_msg());
    json_decref(calls);
    for (size_t i = 0; i < 40; i++)
        e->ids[0][i] = prompt[i];
    for (size_t i = 0; i < 20; i++) {
        e->ids[0][40 + i] = comp[i];
        e->mask[0][40 + i] = 1;
        e->lps[0][40 + i] = lps[i];
    }
    e->len[0] = 60;

    const char out[] = "a.py\nb.py\n\xff\xfe binary";
    struct rec_tool t = { .call_id = "c1",
                          .name = "bash",
                          .arguments = "{\"command\": \"ls\"}",
                          .status = "ok",
                          .exit_code = 0,
                          .output = out,
                          .output_len = sizeof(out) - 1,
                          .output_bytes = sizeof(out) - 1,
                          .output_cap = 16384,
                          .duration_ms = 3.5 };
    cr_assert_eq(rec_tool(ep, &t), 0, "%s", cru_err_msg());

    int32_t obs[10], comp2[8];
    float lps2[8];
    fill(obs, NULL, 10, seed + 2);
    fill(comp2, lps2, 8, seed + 3);
    mc = (struct rec_model_call){ .branch = 0,
                                  .prompt = obs,
                                  .n_prompt = 10,
                                  .completion = comp2,
                                  .logprobs = lps2,
                                  .n_completion = 8,
                                  .finish = "stop",
                                  .policy_version = 4,
                                  .text = "done" };
    cr_assert_eq(rec_model_call(ep, &mc), 0, "%s", cru_err_msg());
    for (size_t i = 0; i < 10; i++)
        e->ids[0][60 + i] = obs[i];
    for (size_t i = 0; i < 8; i++) {
        e->ids[0][70 + i] = comp2[i];
        e->mask[0][70 + i] = 1;
        e->lps[0][70 + i] = lps2[i];
    }
    e->len[0] = 78;

    uint32_t nb;
    cr_assert_eq(rec_fork(ep, 0, 50, "the template dropped the thinking", &nb), 0, "%s",
                 cru_err_msg());
    cr_assert_eq(nb, 1);
    memcpy(e->ids[1], e->ids[0], 50 * sizeof(int32_t));
    memcpy(e->mask[1], e->mask[0], 50);
    memcpy(e->lps[1], e->lps[0], 50 * sizeof(float));
    fill(obs, NULL, 5, seed + 4);
    fill(comp2, lps2, 6, seed + 5);
    mc = (struct rec_model_call){ .branch = 1,
                                  .prompt = obs,
                                  .n_prompt = 5,
                                  .completion = comp2,
                                  .logprobs = lps2,
                                  .n_completion = 6,
                                  .finish = "stop",
                                  .policy_version = 4 };
    cr_assert_eq(rec_model_call(ep, &mc), 0, "%s", cru_err_msg());
    for (size_t i = 0; i < 5; i++)
        e->ids[1][50 + i] = obs[i];
    for (size_t i = 0; i < 6; i++) {
        e->ids[1][55 + i] = comp2[i];
        e->mask[1][55 + i] = 1;
        e->lps[1][55 + i] = lps2[i];
    }
    e->len[1] = 61;

    json_t *bd = json_pack("[{s:s, s:f}]", "name", "tests", "score", 1.0);
    cr_assert_eq(rec_reward(ep, 0.5 + seed * 0.01, bd), 0, "%s", cru_err_msg());
    json_decref(bd);
    struct rec_artifact_file files[] = { { "a.py", 10, "00" } };
    cr_assert_eq(rec_artifact(ep, "--- a\n+++ b\n", files, 1), 0, "%s", cru_err_msg());
    cr_assert_eq(rec_event(ep, "note", NULL), 0, "%s", cru_err_msg());
    struct rec_end end = { REC_SUBMITTED, NULL };
    cr_assert_eq(rec_episode_end(ep, &end), 0, "%s", cru_err_msg());
    rec_episode_free(ep);
}

static const enum rec_type episode_types[] = {
    REC_EPISODE,    REC_MODEL_CALL, REC_TOOL,     REC_MODEL_CALL, REC_CONTEXT_EDIT,
    REC_MODEL_CALL, REC_REWARD,     REC_ARTIFACT, REC_EVENT,      REC_END,
};
#define EPISODE_RECORDS (sizeof(episode_types) / sizeof(episode_types[0]))

static char *write_file(const char *name, int episodes)
{
    char *p = path_of(name);
    struct rec_file *f;
    struct rec_file_opts o = REC_FILE_OPTS_INIT;
    cr_assert_eq(rec_file_open(&f, p, &o), 0, "%s", cru_err_msg());
    for (int i = 0; i < episodes; i++) {
        char id[32];
        snprintf(id, sizeof(id), "ep%d", i);
        write_episode(f, id, "g0", i, NULL);
    }
    cr_assert_eq(rec_file_close(f), 0, "%s", cru_err_msg());
    return p;
}

/* Reads PATH: the number of records, and the problem that ended the stream. */
static uint64_t count_records(const char *path, enum rec_problem *problem)
{
    struct rec_reader *r;
    struct rec_record rec;
    int rc = rec_reader_open(&r, path);
    if (rc < 0) {
        *problem = REC_NOT_TRAJ;
        return 0;
    }
    while ((rc = rec_reader_next(r, &rec)) > 0)
        ;
    *problem = rec_reader_problem(r);
    uint64_t n = rec_reader_count(r);
    rec_reader_free(r);
    return n;
}

Test(recorder, round_trip_every_record_type)
{
    char *p = write_file("one.traj", 1);
    struct rec_reader *r;
    struct rec_record rec;
    cr_assert_eq(rec_reader_open(&r, p), 0, "%s", cru_err_msg());
    size_t i = 0;
    int rc;
    while ((rc = rec_reader_next(r, &rec)) > 0) {
        cr_assert_lt(i, EPISODE_RECORDS);
        cr_assert_eq(rec.type, episode_types[i], "record %zu is %.*s", i, (int)rec.type_len,
                     rec.type_name);
        cr_assert_eq(rec.seq, i);
        cr_assert_eq(rec.episode_len, 3);
        cr_assert_eq(memcmp(rec.episode, "ep0", 3), 0);
        if (i == 1) {
            struct rec_array comp, lps, top;
            int32_t want[20];
            float want_lp[20];
            fill(want, want_lp, 20, 0);
            cr_assert(rec_get_i32s(rec.map, "completion", &comp));
            cr_assert(rec_get_f32s(rec.map, "logprobs", &lps));
            cr_assert(rec_get_i32s(rec.map, "top_ids", &top));
            cr_assert_eq(comp.n, 20);
            cr_assert_eq(top.n, 40);
            for (size_t k = 0; k < 20; k++) {
                cr_assert_eq(rec_i32_at(&comp, k), want[k]);
                cr_assert_eq(rec_f32_at(&lps, k), want_lp[k]);
            }
            uint64_t prefix = 99;
            cr_assert(rec_get_u64(rec.map, "prefix", &prefix));
            cr_assert_eq(prefix, 0);
        }
        if (i == 3) {
            uint64_t prefix = 0;
            cr_assert(rec_get_u64(rec.map, "prefix", &prefix));
            cr_assert_eq(prefix, 60, "the second call extends the first's 60 tokens");
        }
        if (i == 2) {
            /* Invalid UTF-8 in a tool's output is repaired, its size kept. */
            const char *s;
            size_t n;
            cr_assert(rec_get_str(rec.map, "output", &s, &n));
            cr_assert_not_null(memmem(s, n, "\xEF\xBF\xBD\xEF\xBF\xBD binary", 11));
        }
        i++;
    }
    cr_assert_eq(rc, 0, "%s", cru_err_msg());
    cr_assert_eq(i, EPISODE_RECORDS);
    cr_assert_eq(rec_reader_problem(r), REC_INTACT);
    rec_reader_free(r);

    struct rec_verify v;
    cr_assert_eq(rec_verify_file(p, &v), 0, "%s", cru_err_msg());
    cr_assert_eq(v.records, EPISODE_RECORDS);
    cr_assert_eq(v.episodes, 1);
    cr_assert_eq(v.complete, 1);
    free(p);
}

Test(recorder, branches_are_token_exact)
{
    char *p = path_of("branches.traj");
    struct rec_file *f;
    struct rec_file_opts o = REC_FILE_OPTS_INIT;
    cr_assert_eq(rec_file_open(&f, p, &o), 0);
    struct rec_episode_info info = { .episode_id = "e" };
    struct rec_episode *ep;
    cr_assert_eq(rec_episode_begin(&ep, f, &info), 0);
    int32_t ids[4] = { 1, 2, 3, 4 };
    float lp[2] = { -0.5f, -0.25f };
    struct rec_model_call mc = { .branch = 1, .prompt = ids, .n_prompt = 2 };
    cr_assert_eq(rec_model_call(ep, &mc), CRU_EINVAL, "branch 1 does not exist yet");
    mc = (struct rec_model_call){ .branch = 0,
                                  .prompt = ids,
                                  .n_prompt = 2,
                                  .completion = ids + 2,
                                  .logprobs = lp,
                                  .n_completion = 2 };
    cr_assert_eq(rec_model_call(ep, &mc), 0, "%s", cru_err_msg());
    uint64_t len = 0;
    cr_assert(rec_branch_len(ep, 0, &len));
    cr_assert_eq(len, 4);
    uint32_t nb = 0;
    cr_assert_eq(rec_fork(ep, 0, 5, "past the end", &nb), CRU_EINVAL);
    cr_assert_eq(rec_fork(ep, 3, 0, "no such branch", &nb), CRU_EINVAL);
    cr_assert_eq(rec_fork(ep, 0, 3, "ok", &nb), 0);
    cr_assert(rec_branch_len(ep, nb, &len));
    cr_assert_eq(len, 3);
    struct rec_end end = { REC_BUDGET, "out of turns" };
    cr_assert_eq(rec_episode_end(ep, &end), 0);
    cr_assert_eq(rec_event(ep, "late", NULL), CRU_EINVAL, "nothing may follow the end");
    rec_episode_free(ep);
    cr_assert_eq(rec_file_close(f), 0);
    struct rec_verify v;
    cr_assert_eq(rec_verify_file(p, &v), 0, "%s", cru_err_msg());
    free(p);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(cru_write_all(fd, data, len), 0);
    close(fd);
}

/* A crash can stop the file at any byte: every complete record must read back, and the reader
 * must call the rest a torn tail. */
Test(recorder, a_cut_at_every_byte_keeps_every_complete_record)
{
    char *p = write_file("whole.traj", 2);
    struct cru_buf whole = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(p, 1 << 20, &whole), 0);
    /* Where each record ends. */
    uint64_t ends[2 * EPISODE_RECORDS];
    size_t n_ends = 0;
    for (size_t off = REC_HEADER_LEN; off < whole.len;) {
        off += REC_FRAME_LEN + rec_le32((const uint8_t *)whole.data + off);
        ends[n_ends++] = off;
    }
    cr_assert_eq(n_ends, 2 * EPISODE_RECORDS);
    cr_assert_eq(ends[n_ends - 1], whole.len);

    char *cut = path_of("cut.traj");
    for (size_t len = 0; len <= whole.len; len++) {
        write_bytes(cut, whole.data, len);
        enum rec_problem problem;
        uint64_t got = count_records(cut, &problem);
        size_t want = 0;
        while (want < n_ends && ends[want] <= len)
            want++;
        bool boundary = len == REC_HEADER_LEN || (want > 0 && ends[want - 1] == len);
        if (len < REC_HEADER_LEN) {
            cr_assert_eq(problem, REC_NOT_TRAJ, "cut at %zu", len);
            continue;
        }
        cr_assert_eq(got, want, "cut at %zu: %llu records, expected %zu", len,
                     (unsigned long long)got, want);
        cr_assert_eq(problem, boundary ? REC_INTACT : REC_TORN, "cut at %zu", len);
        /* Complete exactly where an episode's end record ends. */
        struct rec_verify v;
        bool complete = len == ends[EPISODE_RECORDS - 1] || len == whole.len;
        cr_assert_eq(rec_verify_file(cut, &v) == 0, complete, "cut at %zu", len);
    }
    cru_buf_free(&whole);
    free(cut);
    free(p);
}

Test(recorder, damage_is_reported_with_its_offset)
{
    char *p = write_file("dmg.traj", 1);
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(p, 1 << 20, &b), 0);
    uint8_t *d = (uint8_t *)b.data;
    size_t second = REC_HEADER_LEN + REC_FRAME_LEN + rec_le32(d + REC_HEADER_LEN);
    char *bad = path_of("bad.traj");

    /* A flipped byte inside the second record's payload: a bad checksum there. */
    d[second + REC_FRAME_LEN + 5] ^= 0x40;
    write_bytes(bad, b.data, b.len);
    struct rec_reader *r;
    struct rec_record rec;
    cr_assert_eq(rec_reader_open(&r, bad), 0);
    cr_assert_eq(rec_reader_next(r, &rec), 1);
    cr_assert_eq(rec_reader_next(r, &rec), CRU_EPARSE);
    cr_assert_eq(rec_reader_problem(r), REC_BAD_CHECKSUM);
    char want[64];
    snprintf(want, sizeof(want), "at byte %zu", second);
    cr_assert_not_null(strstr(cru_err_msg(), want), "%s", cru_err_msg());
    cr_assert_eq(rec_reader_next(r, &rec), CRU_EPARSE, "the error repeats");
    rec_reader_free(r);
    d[second + REC_FRAME_LEN + 5] ^= 0x40;

    /* A length beyond the limit. */
    uint8_t saved[4];
    memcpy(saved, d + second, 4);
    rec_put_le32(d + second, REC_MAX_RECORD + 1);
    write_bytes(bad, b.data, b.len);
    enum rec_problem problem;
    cr_assert_eq(count_records(bad, &problem), 1);
    cr_assert_eq(problem, REC_BAD_LENGTH);
    memcpy(d + second, saved, 4);

    /* Zeros after the last record, as a file system may leave after a crash: a torn tail. */
    cr_assert_eq(cru_buf_append(&b, (char[8192]){ 0 }, 8192), 0);
    write_bytes(bad, b.data, b.len);
    cr_assert_eq(count_records(bad, &problem), EPISODE_RECORDS);
    cr_assert_eq(problem, REC_TORN);

    /* Not a trajectory at all; a newer version. */
    write_bytes(bad, "hello, world, this is text\n", 27);
    cr_assert_eq(count_records(bad, &problem), 0);
    cr_assert_eq(problem, REC_NOT_TRAJ);
    uint8_t hdr[REC_HEADER_LEN];
    rec_header_make(hdr);
    rec_put_le32(hdr + 8, 99);
    rec_put_le32(hdr + 12, cru_crc32c(0, hdr, 12));
    write_bytes(bad, hdr, sizeof(hdr));
    cr_assert_eq(rec_reader_open(&r, bad), CRU_EUNSUPPORTED);
    cr_assert_not_null(strstr(cru_err_msg(), "version 99"), "%s", cru_err_msg());
    cru_buf_free(&b);
    free(bad);
    free(p);
}

/* Frames a hand-made msgpack map as a record. */
static void append_raw(struct cru_buf *b, const char *json_map)
{
    json_t *v = json_loads(json_map, 0, NULL);
    cr_assert_not_null(v);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    cr_assert_eq(rec_pack_json(&pk, v), 0);
    uint8_t frame[8];
    rec_put_le32(frame, (uint32_t)sb.size);
    rec_put_le32(frame + 4, cru_crc32c(0, sb.data, sb.size));
    cru_buf_append(b, frame, 8);
    cru_buf_append(b, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    json_decref(v);
}

Test(recorder, unknown_types_and_fields_are_skipped)
{
    struct cru_buf b = CRU_BUF_INIT;
    uint8_t hdr[REC_HEADER_LEN];
    rec_header_make(hdr);
    cru_buf_append(&b, hdr, sizeof(hdr));
    append_raw(&b,
               "{\"type\":\"episode\",\"episode\":\"x\",\"seq\":0,\"new_field\":[1,{\"a\":2}]}");
    append_raw(&b,
               "{\"type\":\"hologram\",\"episode\":\"x\",\"seq\":1,\"data\":\"from the future\"}");
    append_raw(&b, "{\"type\":\"end\",\"episode\":\"x\",\"seq\":2,\"status\":\"submitted\"}");
    char *p = path_of("future.traj");
    write_bytes(p, b.data, b.len);
    struct rec_verify v;
    cr_assert_eq(rec_verify_file(p, &v), 0, "%s", cru_err_msg());
    cr_assert_eq(v.unknown, 1);
    cr_assert_eq(v.records, 3);

    /* Positive control: the same file with a missing seq fails verify. */
    cru_buf_reset(&b);
    cru_buf_append(&b, hdr, sizeof(hdr));
    append_raw(&b, "{\"type\":\"episode\",\"episode\":\"x\",\"seq\":0}");
    append_raw(&b, "{\"type\":\"end\",\"episode\":\"x\",\"seq\":2,\"status\":\"submitted\"}");
    write_bytes(p, b.data, b.len);
    cr_assert_eq(rec_verify_file(p, &v), CRU_EFAILED);
    cr_assert_not_null(strstr(cru_err_msg(), "seq 2 where 1 was expected"), "%s", cru_err_msg());
    cru_buf_free(&b);
    free(p);
}

/* Every status the writer can end an episode with verifies; one nobody knows does not
 * (verify_checks_token_consistency). */
Test(recorder, every_end_status_verifies)
{
    struct cru_buf b = CRU_BUF_INIT;
    uint8_t hdr[REC_HEADER_LEN];
    rec_header_make(hdr);
    char *p = path_of("statuses.traj");
    struct rec_verify v;
    for (int s = REC_SUBMITTED; s <= REC_AGENT_ERROR; s++) {
        char end[128];
        snprintf(end, sizeof(end),
                 "{\"type\":\"end\",\"episode\":\"x\",\"seq\":1,\"status\":\"%s\"}",
                 rec_status_name((enum rec_status)s));
        cru_buf_reset(&b);
        cru_buf_append(&b, hdr, sizeof(hdr));
        append_raw(&b, "{\"type\":\"episode\",\"episode\":\"x\",\"seq\":0}");
        append_raw(&b, end);
        write_bytes(p, b.data, b.len);
        cr_assert_eq(rec_verify_file(p, &v), 0, "%s: %s", end, cru_err_msg());
    }
    cr_assert_str_eq(rec_status_name(REC_AGENT_ERROR), "agent_error");
    cru_buf_free(&b);
    free(p);
}

Test(recorder, verify_checks_token_consistency)
{
    struct cru_buf b = CRU_BUF_INIT;
    uint8_t hdr[REC_HEADER_LEN];
    rec_header_make(hdr);
    char *p = path_of("inconsistent.traj");
    struct rec_verify v;
    static const char *const bad[] = {
        /* a prompt that does not extend the branch (prefix 5 of an empty branch) */
        "{\"type\":\"model_call\",\"episode\":\"x\",\"seq\":1,\"branch\":0,\"prefix\":5}",
        /* a fork from a branch that does not exist */
        "{\"type\":\"context_edit\",\"episode\":\"x\",\"seq\":1,\"branch\":1,\"from_branch\":4,"
        "\"position\":0}",
        /* a record of another episode inside this one */
        "{\"type\":\"event\",\"episode\":\"y\",\"seq\":1}",
        /* an end with a status nobody knows */
        "{\"type\":\"end\",\"episode\":\"x\",\"seq\":1,\"status\":\"sleepy\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cru_buf_reset(&b);
        cru_buf_append(&b, hdr, sizeof(hdr));
        append_raw(&b, "{\"type\":\"episode\",\"episode\":\"x\",\"seq\":0}");
        append_raw(&b, bad[i]);
        append_raw(&b, "{\"type\":\"end\",\"episode\":\"x\",\"seq\":2,\"status\":\"submitted\"}");
        write_bytes(p, b.data, b.len);
        cr_assert_eq(rec_verify_file(p, &v), CRU_EFAILED, "case %zu passed verify", i);
        cr_assert_eq(v.problem, REC_INTACT, "case %zu: the framing is fine", i);
    }
    cru_buf_free(&b);
    free(p);
}

/* ---- fault injection ---- */

struct faults {
    size_t budget;   /* bytes that may be written before the disk is "full" */
    size_t chunk;    /* the most bytes one pwrite takes (short writes) */
    bool kill_mid;   /* SIGKILL the process half-way through the write that crosses BUDGET */
    bool fail_fsync; /* fsync fails with EIO */
};

static ssize_t faulty_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
    struct faults *f = ctx;
    if (f->chunk && n > f->chunk)
        n = f->chunk;
    if (n > f->budget) {
        if (f->kill_mid) {
            size_t half = f->budget;
            if (half && pwrite(fd, buf, half, off) < 0)
                _exit(99);
            raise(SIGKILL);
        }
        if (f->budget == 0) {
            errno = ENOSPC;
            return -1;
        }
        n = f->budget; /* what fits lands: a short write, then ENOSPC on the next */
    }
    ssize_t w = pwrite(fd, buf, n, off);
    if (w > 0)
        f->budget -= (size_t)w;
    return w;
}

static int faulty_fsync(void *ctx, int fd)
{
    struct faults *f = ctx;
    if (f->fail_fsync) {
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}

Test(recorder, short_writes_are_completed)
{
    struct faults fl = { .budget = SIZE_MAX, .chunk = 7 };
    struct rec_io io = { faulty_pwrite, faulty_fsync, &fl };
    struct rec_file_opts o = REC_FILE_OPTS_INIT;
    o.io = &io;
    o.sync = REC_SYNC_RECORD;
    char *p = path_of("short.traj");
    struct rec_file *f;
    cr_assert_eq(rec_file_open(&f, p, &o), 0);
    write_episode(f, "e", NULL, 1, NULL);
    cr_assert_eq(rec_file_close(f), 0);
    struct rec_verify v;
    cr_assert_eq(rec_verify_file(p, &v), 0, "%s", cru_err_msg());
    cr_assert_eq(v.records, EPISODE_RECORDS);
    free(p);
}

/* A full disk at every possible byte: the write fails, says so, and the file always reads back
 * clean (no torn tail: the partial bytes were cut), holding a prefix of the records. */
Test(recorder, a_full_disk_at_any_byte_leaves_only_complete_records)
{
    char *ref = write_file("ref.traj", 1);
    struct stat st;
    cr_assert_eq(stat(ref, &st), 0);
    char *p = path_of("full.traj");
    for (size_t budget = 0; budget < (size_t)st.st_size; budget += 13) {
        unlink(p);
        struct faults fl = { .budget = budget };
        struct rec_io io = { faulty_pwrite, faulty_fsync, &fl };
        struct rec_file_opts o = REC_FILE_OPTS_INIT;
        o.io = &io;
        o.sync = REC_SYNC_RECORD;
        struct rec_file *f = NULL;
        int rc = rec_file_open(&f, p, &o);
        if (rc == 0) {
            struct rec_episode_info info = { .episode_id = "e" };
            struct rec_episode *ep = NULL;
            int32_t ids[300];
            float lps[300];
            fill(ids, lps, 300, 5);
            rc = rec_episode_begin(&ep, f, &info);
            for (int k = 0; rc == 0 && k < 4; k++) {
                struct rec_model_call mc = { .prompt = ids,
                                             .n_prompt = 100,
                                             .completion = ids,
                                             .logprobs = lps,
                                             .n_completion = 100 };
                rc = rec_model_call(ep, &mc);
            }
            if (rc == 0) {
                struct rec_end end = { REC_SUBMITTED, NULL };
                rc = rec_episode_end(ep, &end);
            }
            if (rc < 0) {
                cr_assert(strstr(cru_err_msg(), "No space left") ||
                              strstr(cru_err_msg(), "an earlier write failed") ||
                              strstr(cru_err_msg(), "were not written"),
                          "budget %zu: %s", budget, cru_err_msg());
            }
            rec_episode_free(ep);
            int crc = rec_file_close(f);
            cr_assert(rc == 0 || crc < 0, "budget %zu: close must report the failure", budget);
        }
        struct stat now;
        if (stat(p, &now) == 0 && now.st_size >= REC_HEADER_LEN) {
            enum rec_problem problem;
            (void)count_records(p, &problem);
            cr_assert_eq(problem, REC_INTACT, "budget %zu: the file holds a partial record",
                         budget);
        } else if (stat(p, &now) == 0) {
            cr_assert_eq(now.st_size, 0, "budget %zu: a partial header was left", budget);
        }
    }
    free(p);
    free(ref);
}

Test(recorder, a_failed_fsync_is_reported)
{
    struct faults fl = { .budget = SIZE_MAX, .fail_fsync = true };
    struct rec_io io = { faulty_pwrite, faulty_fsync, &fl };
    struct rec_file_opts o = REC_FILE_OPTS_INIT;
    o.io = &io;
    char *p = path_of("fsync.traj");
    struct rec_file *f;
    cr_assert_eq(rec_file_open(&f, p, &o), 0);
    struct rec_episode_info info = { .episode_id = "e" };
    struct rec_episode *ep;
    cr_assert_eq(rec_episode_begin(&ep, f, &info), 0);
    struct rec_end end = { REC_SUBMITTED, NULL };
    cr_assert_eq(rec_episode_end(ep, &end), CRU_EIO);
    cr_assert_not_null(strstr(cru_err_msg(), "fsync"), "%s", cru_err_msg());
    rec_episode_free(ep);
    cr_assert_eq(rec_file_close(f), CRU_EIO, "close repeats the failure");
    free(p);
}

/* A process killed in the middle of writing a record: the records before it survive. */
Test(recorder, a_kill_in_the_middle_of_a_record)
{
    char *p = path_of("killed.traj");
    for (size_t budget = 100; budget < 4000; budget += 700) {
        unlink(p);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            struct faults fl = { .budget = budget, .kill_mid = true };
            struct rec_io io = { faulty_pwrite, faulty_fsync, &fl };
            struct rec_file_opts o = REC_FILE_OPTS_INIT;
            o.io = &io;
            o.sync = REC_SYNC_RECORD;
            struct rec_file *f;
            if (rec_file_open(&f, p, &o) < 0)
                _exit(2);
            for (int i = 0; i < 20; i++) {
                char id[16];
                snprintf(id, sizeof(id), "e%d", i);
                write_episode(f, id, NULL, i, NULL);
            }
            _exit(3); /* the budget should have killed it before this */
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "budget %zu: the writer was not killed (status %d)", budget, status);
        enum rec_problem problem;
        uint64_t n = count_records(p, &problem);
        struct stat st;
        cr_assert_eq(stat(p, &st), 0);
        /* The kill struck inside a record: a torn tail, all records before it intact. */
        cr_assert_eq(problem, REC_TORN, "budget %zu, size %lld", budget, (long long)st.st_size);
        struct rec_reader *r;
        struct rec_record rec;
        cr_assert_eq(rec_reader_open(&r, p), 0);
        while (rec_reader_next(r, &rec) > 0)
            ;
        cr_assert_eq(rec_reader_count(r), n);
        cr_assert_leq(rec_reader_good_offset(r), budget);
        rec_reader_free(r);
    }
    free(p);
}

/* ---- concurrency and appending ---- */

Test(recorder, concurrent_episodes_never_interleave)
{
    char *p = path_of("two.traj");
    struct rec_file *f;
    struct rec_file_opts o = REC_FILE_OPTS_INIT;
    o.buffer = 64; /* every record would be written at once if it owned the file */
    cr_assert_eq(rec_file_open(&f, p, &o), 0);
    struct rec_episode_info ia = { .episode_id = "a" }, ib = { .episode_id = "b" };
    struct rec_episode *a, *b;
    cr_assert_eq(rec_episode_begin(&a, f, &ia), 0);
    cr_assert_eq(rec_episode_begin(&b, f, &ib), 0);
    cr_assert_eq(rec_event(b, "b1", NULL), 0);
    cr_assert_eq(rec_event(a, "a1", NULL), 0);
    struct rec_end end = { REC_SUBMITTED, NULL };
    cr_assert_eq(rec_episode_end(b, &end), 0, "b ends first, while a owns the file");
    cr_assert_eq(rec_event(a, "a2", NULL), 0);
    cr_assert_eq(rec_episode_end(a, &end), 0);
    rec_episode_free(a);
    rec_episode_free(b);
    cr_assert_eq(rec_file_close(f), 0);

    struct rec_reader *r;
    struct rec_record rec;
    cr_assert_eq(rec_reader_open(&r, p), 0);
    const char *want = "aaaabbb";
    for (size_t i = 0; want[i]; i++) {
        cr_assert_eq(rec_reader_next(r, &rec), 1);
        cr_assert_eq(rec.episode[0], want[i], "record %zu", i);
    }
    cr_assert_eq(rec_reader_next(r, &rec), 0);
    rec_reader_free(r);
    struct rec_verify v;
    cr_assert_eq(rec_verify_file(p, &v), 0, "%s", cru_err_msg());
    cr_assert_eq(v.episodes, 2);
    free(p);
}

struct worker {
    struct rec_file *f;
    int id;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 25; i++) {
        char id[32];
        snprintf(id, sizeof(id), "t%d-%d", w->id, i);
        struct rec_episode_info info = { .episode_id = id };
        struct rec_episode *ep;
        if (rec_episode_begin(&ep, w->f, &info) < 0)
            return (void *)1;
        int32_t ids[50];
        float lps[50];
        fill(ids, lps, 50, i);
        for (int k = 0; k < 4; k++) {
            struct rec_model_call mc = { .prompt = ids,
                                         .n_prompt = 50,
                                         .completion = ids,
                                         .logprobs = lps,
                                         .n_completion = 50 };
            if (rec_model_call(ep, &mc) < 0)
                return (void *)1;
        }
        struct rec_end end = { REC_SUBMITTED, NULL };
        if (rec_episode_end(ep, &end) < 0)
            return (void *)1;
        rec_episode_free(ep);
    }
    return NULL;
}

Test(recorder, many_threads_one_file)
{
    char *p = path_of("threads.traj");
    struct rec_file *f;
    struct rec_file_opts o = REC_FILE_OPTS_INIT;
    o.buffer = 512;
    o.sync = REC_SYNC_NONE;
    cr_assert_eq(rec_file_open(&f, p, &o), 0);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ f, i };
        cr_assert_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        cr_assert_null(ret, "thread %d failed", i);
    }
    cr_assert_eq(rec_file_close(f), 0);
    struct rec_verify v;
    cr_assert_eq(rec_verify_file(p, &v), 0, "%s", cru_err_msg());
    cr_assert_eq(v.episodes, 100);
    cr_assert_eq(v.complete, 100);
    cr_assert_eq(v.records, 600);
    free(p);
}

Test(recorder, append_cuts_a_torn_tail_and_continues)
{
    char *p = write_file("append.traj", 1);
    /* A torn tail: half a frame. */
    int fd = open(p, O_WRONLY | O_APPEND);
    cr_assert_eq(write(fd, "\x40\x00\x00\x00\x01\x02", 6), 6);
    close(fd);
    struct rec_file *f;
    struct rec_file_opts o = REC_FILE_OPTS_INIT;
    cr_assert_eq(rec_file_open(&f, p, &o), CRU_EEXIST, "create refuses an existing file");
    o.mode = REC_APPEND;
    cr_assert_eq(rec_file_open(&f, p, &o), 0, "%s", cru_err_msg());
    struct rec_file *again;
    cr_assert_eq(rec_file_open(&again, p, &o), CRU_EPERM, "a second writer is refused");
    write_episode(f, "second", NULL, 2, NULL);
    cr_assert_eq(rec_file_close(f), 0);
    struct rec_verify v;
    cr_assert_eq(rec_verify_file(p, &v), 0, "%s", cru_err_msg());
    cr_assert_eq(v.episodes, 2);
    free(p);
}

Test(recorder, msgpack_bounds)
{
    /* An array that declares 2^32-1 elements in a few bytes. */
    const uint8_t huge[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01 };
    cr_assert_eq(rec_msgpack_check(huge, sizeof(huge)), CRU_EPARSE);
    cr_assert_not_null(strstr(cru_err_msg(), "declares"), "%s", cru_err_msg());
    uint8_t deep[64];
    memset(deep, 0x91, sizeof(deep)); /* arrays of one array of ... */
    deep[63] = 0x01;
    cr_assert_eq(rec_msgpack_check(deep, sizeof(deep)), CRU_ELIMIT);
    /* Positive control: a well-formed nested value passes. */
    const uint8_t ok[] = { 0x82, 0xa1, 'a', 0x91, 0x01, 0xa1, 'b', 0xc4, 0x02, 0x00, 0x01 };
    cr_assert_eq(rec_msgpack_check(ok, sizeof(ok)), 0, "%s", cru_err_msg());
    cr_assert_eq(rec_msgpack_check(ok, sizeof(ok) - 1), CRU_EPARSE);
}

/* ---- exports ---- */

/* Reads a msgpack stream file into one unpacker; calls FN on each top-level map. */
static size_t each_map(const char *path, void (*fn)(const msgpack_object *, void *), void *arg)
{
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_file_read(path, 64 << 20, &b), 0);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0, n = 0;
    while (off < b.len) {
        cr_assert_eq(msgpack_unpack_next(&up, b.data, b.len, &off), MSGPACK_UNPACK_SUCCESS);
        cr_assert_eq(up.data.type, MSGPACK_OBJECT_MAP);
        fn(&up.data, arg);
        n++;
    }
    msgpack_unpacked_destroy(&up);
    cru_buf_free(&b);
    return n;
}

struct want {
    struct expect e[3];
    size_t seen;
};

static void check_sample(const msgpack_object *m, void *arg)
{
    struct want *w = arg;
    const char *ep;
    size_t n;
    uint64_t branch, version;
    struct rec_array ids, lps;
    cr_assert(rec_get_str(m, "episode_id", &ep, &n));
    cr_assert(rec_get_u64(m, "branch", &branch));
    cr_assert(rec_get_u64(m, "policy_version", &version));
    cr_assert_eq(version, 3, "the oldest policy that sampled on the branch");
    int e = ep[2] - '0';
    const struct expect *x = &w->e[e];
    cr_assert(rec_get_i32s(m, "input_ids", &ids));
    cr_assert(rec_get_f32s(m, "logprobs", &lps));
    const msgpack_object *mask = rec_get(m, "loss_mask");
    cr_assert_eq(ids.n, x->len[branch]);
    cr_assert_eq(lps.n, ids.n);
    cr_assert_eq(mask->via.bin.size, ids.n);
    for (size_t i = 0; i < ids.n; i++) {
        cr_assert_eq(rec_i32_at(&ids, i), x->ids[branch][i], "%s branch %llu token %zu", ep,
                     (unsigned long long)branch, i);
        cr_assert_eq((uint8_t)mask->via.bin.ptr[i], x->mask[branch][i]);
        cr_assert_eq(rec_f32_at(&lps, i), x->lps[branch][i]);
    }
    double reward;
    cr_assert(rec_get_f64(m, "reward", &reward));
    cr_assert_float_eq(reward, 0.5 + e * 0.01, 1e-9);
    w->seen++;
}

static char *write_group(struct want *w)
{
    char *p = path_of("group.traj");
    struct rec_file *f;
    struct rec_file_opts o = REC_FILE_OPTS_INIT;
    cr_assert_eq(rec_file_open(&f, p, &o), 0);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof(id), "ep%d", i);
        write_episode(f, id, "g", i, &w->e[i]);
    }
    /* An episode that never ended is not exported. */
    struct rec_episode_info info = { .episode_id = "cut" };
    struct rec_episode *ep;
    cr_assert_eq(rec_episode_begin(&ep, f, &info), 0);
    rec_episode_free(ep);
    cr_assert_eq(rec_file_close(f), 0);
    return p;
}

Test(recorder, export_tokens_rebuilds_every_branch)
{
    struct want w = { 0 };
    char *src = write_group(&w);
    char *out = path_of("samples.msgpack");
    struct rec_export_stats st;
    cr_assert_eq(rec_export(&src, 1, REC_EXPORT_TOKENS, out, &st), 0, "%s", cru_err_msg());
    cr_assert_eq(st.episodes, 3);
    cr_assert_eq(st.incomplete, 1);
    cr_assert_eq(st.samples, 6);
    cr_assert_eq(each_map(out, check_sample, &w), 6);
    cr_assert_eq(w.seen, 6);
    free(out);
    free(src);
}

struct tree_check {
    struct want *w;
    uint64_t tokens;
};

static void check_tree(const msgpack_object *m, void *arg)
{
    struct tree_check *tc = arg;
    struct rec_array ids, par, pos, lps;
    cr_assert(rec_get_i32s(m, "input_ids", &ids));
    cr_assert(rec_get_i32s(m, "parent", &par));
    cr_assert(rec_get_i32s(m, "position_ids", &pos));
    cr_assert(rec_get_f32s(m, "logprobs", &lps));
    const msgpack_object *mask = rec_get(m, "loss_mask");
    tc->tokens += ids.n;
    for (size_t i = 0; i < ids.n; i++) {
        int32_t pa = rec_i32_at(&par, i);
        cr_assert_lt(pa, (int32_t)i, "a parent comes before its child");
        cr_assert_eq(rec_i32_at(&pos, i), pa < 0 ? 0 : rec_i32_at(&pos, (size_t)pa) + 1);
    }
    const msgpack_object *samples = rec_get(m, "samples");
    cr_assert_eq(samples->via.array.size, 6);
    for (uint32_t s = 0; s < samples->via.array.size; s++) {
        const msgpack_object *sm = &samples->via.array.ptr[s];
        const char *ep;
        size_t n;
        uint64_t branch, length;
        int64_t last;
        cr_assert(rec_get_str(sm, "episode_id", &ep, &n));
        cr_assert(rec_get_u64(sm, "branch", &branch));
        cr_assert(rec_get_u64(sm, "length", &length));
        cr_assert(rec_get_i64(sm, "last", &last));
        const struct expect *x = &tc->w->e[ep[2] - '0'];
        cr_assert_eq(length, x->len[branch]);
        /* Walking up from the sample's last token gives its tokens back, in reverse. */
        int64_t at = last;
        for (size_t k = length; k-- > 0;) {
            cr_assert_geq(at, 0);
            cr_assert_eq(rec_i32_at(&ids, (size_t)at), x->ids[branch][k]);
            cr_assert_eq((uint8_t)mask->via.bin.ptr[at], x->mask[branch][k]);
            cr_assert_eq(rec_f32_at(&lps, (size_t)at), x->lps[branch][k]);
            at = rec_i32_at(&par, (size_t)at);
        }
        cr_assert_eq(at, -1, "the walk ends at the root");
    }
}

Test(recorder, export_tree_merges_shared_prefixes)
{
    struct want w = { 0 };
    char *src = write_group(&w);
    char *out = path_of("tree.msgpack");
    struct rec_export_stats st;
    cr_assert_eq(rec_export(&src, 1, REC_EXPORT_TREE, out, &st), 0, "%s", cru_err_msg());
    cr_assert_eq(st.groups, 1);
    cr_assert_eq(st.samples, 6);
    cr_assert_eq(st.tokens, 3 * (78 + 61));
    /* The three episodes share the 40-token prompt; each fork shares 50 tokens with its
     * parent branch: 40 + 3 * (78 - 40) + 3 * (61 - 50). */
    cr_assert_eq(st.tokens_out, 40 + 3 * 38 + 3 * 11, "merged to %llu",
                 (unsigned long long)st.tokens_out);
    struct tree_check tc = { &w, 0 };
    cr_assert_eq(each_map(out, check_tree, &tc), 1);
    cr_assert_eq(tc.tokens, st.tokens_out);
    free(out);
    free(src);
}

Test(recorder, export_jsonl_has_chat_messages)
{
    struct want w = { 0 };
    char *src = write_group(&w);
    char *out = path_of("chat.jsonl");
    struct rec_export_stats st;
    cr_assert_eq(rec_export(&src, 1, REC_EXPORT_JSONL, out, &st), 0, "%s", cru_err_msg());
    FILE *in = fopen(out, "r");
    char line[1 << 16];
    int n = 0;
    while (fgets(line, sizeof(line), in)) {
        json_error_t je;
        json_t *v = json_loads(line, 0, &je);
        cr_assert_not_null(v, "line %d: %s", n, je.text);
        json_t *msgs = json_object_get(v, "messages");
        /* system, user, assistant (tool call), tool, assistant, assistant (branch 1) */
        cr_assert_eq(json_array_size(msgs), 6);
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "role")),
                         "system");
        json_t *call = json_array_get(json_object_get(json_array_get(msgs, 2), "tool_calls"), 0);
        cr_assert_str_eq(
            json_string_value(json_object_get(json_object_get(call, "function"), "arguments")),
            "{\"command\": \"ls\"}");
        json_t *tool = json_array_get(msgs, 3);
        cr_assert_str_eq(json_string_value(json_object_get(tool, "tool_call_id")), "c1");
        cr_assert_str_eq(json_string_value(json_object_get(v, "status")), "submitted");
        cr_assert_str_eq(json_string_value(json_object_get(v, "group_id")), "g");
        json_decref(v);
        n++;
    }
    fclose(in);
    cr_assert_eq(n, 3);
    free(out);
    free(src);
}

Test(recorder, export_never_leaves_a_partial_output)
{
    struct want w = { 0 };
    char *src = write_group(&w);
    /* The output's folder does not exist: the export fails and leaves nothing. */
    char *out = path_of("missing/out.msgpack");
    struct rec_export_stats st;
    cr_assert_lt(rec_export(&src, 1, REC_EXPORT_TOKENS, out, &st), 0);
    cr_assert_eq(access(out, F_OK), -1);
    free(out);
    free(src);
}

/* The Python reader (tools/python) loads both exports; its per-sample digests must match the
 * tokens the test wrote. */
static void python_agrees(const char *kind, const char *export_path, struct want *w)
{
    const char *src = getenv("CRUCIBLE_SRC");
    cr_assert(src && *src, "CRUCIBLE_SRC is not set: run the tests with `make test`");
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s/tools/python/crucible_traj.py' %s '%s'", src,
             kind, export_path);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    struct cru_buf out = CRU_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        cru_buf_append(&out, chunk, n);
    cr_assert_eq(pclose(p), 0, "%s failed: %s", cmd, cru_buf_cstr(&out));
    json_error_t je;
    json_t *arr = json_loads(cru_buf_cstr(&out), 0, &je);
    cr_assert_not_null(arr, "%s: %s", je.text, cru_buf_cstr(&out));
    cr_assert_eq(json_array_size(arr), 6);
    size_t i;
    json_t *d;
    json_array_foreach(arr, i, d)
    {
        const char *ep = json_string_value(json_object_get(d, "episode"));
        int branch = (int)json_integer_value(json_object_get(d, "branch"));
        const struct expect *x = &w->e[ep[2] - '0'];
        long long ids = 0, sampled = 0;
        double lps = 0;
        for (size_t k = 0; k < x->len[branch]; k++) {
            ids += x->ids[branch][k];
            sampled += x->mask[branch][k];
            lps += x->lps[branch][k];
        }
        cr_assert_eq(json_integer_value(json_object_get(d, "n")), (json_int_t)x->len[branch]);
        cr_assert_eq(json_integer_value(json_object_get(d, "ids_sum")), ids, "%s %s/%d", kind, ep,
                     branch);
        cr_assert_eq(json_integer_value(json_object_get(d, "sampled")), sampled);
        cr_assert_float_eq(json_real_value(json_object_get(d, "logprob_sum")), lps, 2e-3);
    }
    json_decref(arr);
    cru_buf_free(&out);
}

Test(recorder, python_reader_loads_both_exports)
{
    struct want w = { 0 };
    char *src = write_group(&w);
    char *tokens = path_of("py-tokens.msgpack"), *tree = path_of("py-tree.msgpack");
    struct rec_export_stats st;
    cr_assert_eq(rec_export(&src, 1, REC_EXPORT_TOKENS, tokens, &st), 0, "%s", cru_err_msg());
    cr_assert_eq(rec_export(&src, 1, REC_EXPORT_TREE, tree, &st), 0, "%s", cru_err_msg());
    python_agrees("tokens", tokens, &w);
    python_agrees("tree", tree, &w);
    free(tokens);
    free(tree);
    free(src);
}
