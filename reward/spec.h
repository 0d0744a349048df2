/* spec: the reward spec of a task image, parsed and validated.
 *
 * The spec is the "reward" object of image.json (docs/images.md): an aggregation, the
 * protected paths, and a list of checks. rwd_spec_parse() checks everything a scorer will rely
 * on (kinds, fields, types, ranges, workspace paths, regexes, JSON pointers, cell references)
 * so that a broken spec fails when the image is loaded, not when an episode is scored; every
 * problem goes to the report, positioned at its field. The scorers read the typed fields below
 * and, for their kind's details, the check's own object (PARAMS), which the spec keeps alive.
 */
#ifndef CRU_REWARD_SPEC_H
#define CRU_REWARD_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/json.h"

enum rwd_aggregate {
    RWD_AGG_ALL,     /* 1 only when every check passes */
    RWD_AGG_MEAN,    /* the weighted mean of the scores */
    RWD_AGG_PARTIAL, /* 0.5 x mean + 0.5 x all */
};

enum rwd_kind {
    RWD_TESTS,
    RWD_FILE_EXISTS,
    RWD_FILE_SHA256,
    RWD_TEXT,
    RWD_JSON,
    RWD_CSV,
    RWD_XLSX,
    RWD_DOCX,
    RWD_COMMAND,
};

/* Where a check's command writes a report file: a folder made fresh for each check, which only
 * the checker can reach. */
#define RWD_RESULTS_DIR "/results"

enum rwd_results {
    RWD_RESULTS_EXIT,     /* the exit status */
    RWD_RESULTS_TAP,      /* TAP on stdout */
    RWD_RESULTS_JUNIT,    /* a JUnit XML file the command writes */
    RWD_RESULTS_TAP_FILE, /* a TAP file the command writes */
};

/* The default and largest time a check may take. */
#define RWD_TIMEOUT_DEFAULT_MS ((uint64_t)60 * 1000)
#define RWD_TIMEOUT_MAX_MS     ((uint64_t)3600 * 1000)

struct rwd_check {
    enum rwd_kind kind;
    char *name;    /* given, or "KIND #N" (N from 1) */
    double weight; /* > 0 */
    uint64_t timeout_ms;
    const json_t *params; /* the check's object in the spec (borrowed from the spec) */
    const char *path;     /* the workspace path a file check reads; NULL for tests, command */
    const char *command;  /* tests, command: the shell command */
    enum rwd_results results;
    const char *report_path; /* JUNIT, TAP_FILE: where the command writes its report: a file
                                in RWD_RESULTS_DIR */
    const char **fail_to_pass, **pass_to_pass; /* test ids, borrowed */
    size_t n_fail_to_pass, n_pass_to_pass;
};

struct rwd_spec {
    enum rwd_aggregate aggregate;
    char **protected_paths; /* cleaned workspace paths */
    size_t n_protected;
    bool protected_fail;
    bool keep_caches; /* the artifact's compiled caches (__pycache__, *.pyc) reach the checks */
    struct rwd_check *checks;
    size_t n_checks;
    json_t *json; /* the spec's object (a reference the spec holds) */
};

/* Validates V, the reward spec found at field PATH of REPORT's document ("reward"). Every
 * problem is added to REPORT. Returns 0 and a new spec when there was none; CRU_EINVAL (with
 * the problems in REPORT) when there were; CRU_ENOMEM. */
int rwd_spec_parse(const json_t *v, const char *path, struct cru_json_report *report,
                   struct rwd_spec **out);

void rwd_spec_free(struct rwd_spec *spec);

const char *rwd_kind_name(enum rwd_kind kind);
const char *rwd_aggregate_name(enum rwd_aggregate agg);

/* Parses an A1 cell reference ("B2", "xfd1048576"): *col and *row from 0. CRU_EINVAL when it
 * is not one, or lies outside a worksheet (XFD, row 1048576). */
int rwd_cell_ref(const char *ref, uint32_t *col, uint32_t *row);

#endif
