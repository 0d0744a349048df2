/* fuzz/image: agt_image_parse on arbitrary image.json text, for one fixed image folder.
 *
 * The folder (/tmp/crucible-fuzz-image/img-a, made once per process) has what a valid image
 * needs, so that inputs can reach every field's checks: workspace/ and hidden/ folders,
 * solution/solve.sh, and small files for "tar:" and git paths (rootfs.tar, ws.tar,
 * repo.bundle). Whatever the input, the loader returns 0 with a whole image (id "img-a",
 * title, prompt, workspace, reward with at least one check, solution; no problem reported), or
 * a negative code with a message and no image. A document that parses but is not a valid
 * image is CRU_EINVAL with at least one problem, and every line of the report has the form
 * "NAME:LINE:COL: ..." (NAME the folder's image.json, LINE and COL from 1); text that is not
 * JSON is CRU_EPARSE, positioned the same way in the message. Never a crash or a leak (the
 * sanitizers of `make fuzz` and SAN=1 watch for those).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/image.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "reward/spec.h"
#include "tests/fuzz/fuzz.h"

#define IMAGE_ROOT "/tmp/crucible-fuzz-image"
#define IMAGE_DIR  IMAGE_ROOT "/img-a"
#define IMAGE_JSON IMAGE_DIR "/image.json"

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_image: %s\n%s\n", what, detail ? detail : "");
    abort();
}

static void put(const char *rel, const char *text, mode_t mode)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", IMAGE_DIR, rel);
    if (cru_file_write_atomic(path, text, strlen(text), mode) < 0)
        fail("cannot make the image folder", cru_err_msg());
}

/* Idempotent, so that several fuzzing processes may make it at once. */
static void make_image_folder(void)
{
    static int done;
    if (done)
        return;
    if (cru_mkdir_p(IMAGE_DIR "/workspace", 0755) < 0 ||
        cru_mkdir_p(IMAGE_DIR "/hidden", 0755) < 0 || cru_mkdir_p(IMAGE_DIR "/solution", 0755) < 0)
        fail("cannot make the image folder", cru_err_msg());
    put("workspace/main.py", "print('hello')\n", 0644);
    put("hidden/test_main.py", "def test_main():\n    pass\n", 0644);
    put("solution/solve.sh", "#!/bin/sh\necho solved >/workspace/out.txt\n", 0755);
    put("rootfs.tar", "not really a tarball: the loader only checks that it is a file\n", 0644);
    put("ws.tar", "not really a tarball either\n", 0644);
    put("repo.bundle", "not really a bundle\n", 0644);
    done = 1;
}

/* A decimal number from 1 at *P, which is left after it; 0 when there is none. */
static unsigned long number(const char **p)
{
    unsigned long n = 0;
    const char *s = *p;
    while (*s >= '0' && *s <= '9' && n < 100000000)
        n = n * 10 + (unsigned long)(*s++ - '0');
    if (s == *p || (*s >= '0' && *s <= '9'))
        return 0;
    *p = s;
    return n;
}

/* Whether LINE (LEN bytes, no newline) starts "IMAGE_JSON:LINE:COL: " with LINE, COL >= 1. */
static int positioned(const char *line, size_t len)
{
    size_t n = strlen(IMAGE_JSON);
    if (len < n + 6 || strncmp(line, IMAGE_JSON, n) != 0 || line[n] != ':')
        return 0;
    const char *p = line + n + 1;
    if (number(&p) == 0 || *p++ != ':' || number(&p) == 0 || *p++ != ':' || *p != ' ')
        return 0;
    return (size_t)(p - line) < len;
}

static void check_report(const struct cru_buf *problems)
{
    const char *text = cru_buf_cstr(problems);
    if (problems->len == 0)
        fail("CRU_EINVAL without a problem in the report", cru_err_msg());
    if (strlen(text) != problems->len)
        fail("a NUL byte in the report", text);
    if (text[problems->len - 1] != '\n')
        fail("the report does not end with a newline", text);
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (!positioned(line, (size_t)(end - line)))
            fail("a report line is not \"NAME:LINE:COL: ...\"", text);
        line = end + 1;
    }
}

static void check_image(const struct agt_image *img, const struct cru_buf *problems)
{
    if (!img)
        fail("success without an image", NULL);
    if (problems->len != 0)
        fail("success with problems in the report", cru_buf_cstr(problems));
    if (!img->id || !img->title || !img->prompt || !img->reward || !img->dir || !img->ws_path ||
        !img->solution)
        fail("success with a field left unset", img->id);
    if (strcmp(img->id, "img-a") != 0 || strcmp(img->dir, IMAGE_DIR) != 0)
        fail("the image's id or folder is not the one given", img->id);
    if (!img->title[0] || strchr(img->title, '\n') || !img->prompt[0])
        fail("an empty or multi-line title, or an empty prompt", img->title);
    if (img->reward->n_checks == 0 || !img->reward->checks)
        fail("a reward spec without checks", NULL);
    for (size_t i = 0; i < img->reward->n_checks; i++)
        if (!img->reward->checks[i].name || !(img->reward->checks[i].weight > 0))
            fail("a check without a name or a positive weight", NULL);
    if (img->solution_kind != AGT_SOLUTION_SCRIPT)
        fail("the folder holds solve.sh, not solution.patch", img->solution);
    if (img->ws_kind == AGT_WS_GIT && (!img->ws_commit || strlen(img->ws_commit) != 40))
        fail("a git workspace without its 40-digit commit", img->ws_commit);
    if (img->n_setup > AGT_IMAGE_SETUP_MAX || (img->n_setup && !img->setup))
        fail("more setup commands than allowed", NULL);
    for (size_t i = 0; i < img->n_setup; i++)
        if (!img->setup[i] || !img->setup[i][0])
            fail("an empty setup command", NULL);
    if (img->wall_ms < 1000 || img->turns < 1 || img->turns > 10000 ||
        img->memory_bytes < ((uint64_t)16 << 20))
        fail("a limit out of its range", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agt_image *img = NULL;
    struct cru_buf problems = CRU_BUF_INIT;

    make_image_folder();
    cru_err_clear();
    int rc = agt_image_parse(IMAGE_DIR, (const char *)data, size, &img, &problems);
    if (rc == 0) {
        check_image(img, &problems);
    } else {
        if (img)
            fail("failure with an image", cru_err_msg());
        if (rc > 0 || cru_err_code() != rc || !cru_err_msg()[0])
            fail("failure without a matching message", cru_err_msg());
        if (rc == CRU_EINVAL) {
            check_report(&problems);
        } else if (rc == CRU_EPARSE) {
            if (!positioned(cru_err_msg(), strlen(cru_err_msg())))
                fail("a parse error not positioned as \"NAME:LINE:COL: ...\"", cru_err_msg());
            if (problems.len != 0)
                fail("a parse error with problems in the report", cru_buf_cstr(&problems));
        } else if (rc != CRU_ENOMEM) {
            fail("a failure other than CRU_EINVAL, CRU_EPARSE or CRU_ENOMEM", cru_err_msg());
        }
    }
    agt_image_free(img);
    cru_buf_free(&problems);
    return 0;
}
