/* Tests for agent/image (the task image loader, workspaces, the rootfs cache) and
 * reward/spec (the reward spec it validates), and a load of every bundled image. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/check.h"
#include "agent/image.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "reward/spec.h"
#include "tests/fifo_util.h"

static char root[64]; /* a fresh folder per test */
static char img[128]; /* root/img-a: the image under test */

static void put(const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", img, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    cr_assert_eq(cru_mkdir_p(p, 0755), 0, "%s", cru_err_msg());
    *slash = '/';
    cr_assert_eq(cru_file_write_atomic(p, text, strlen(text), 0644), 0, "%s", cru_err_msg());
}

static void setup(void)
{
    snprintf(root, sizeof(root), "/tmp/crucible-image-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    snprintf(img, sizeof(img), "%s/img-a", root);
    put("workspace/main.py", "print('hi')\n");
    put("workspace/sub/data.txt", "data\n");
    put("hidden/test_main.py", "def test_x():\n    assert True\n");
    put("solution/solve.sh", "true\n");
}

static void teardown(void)
{
    cru_remove_tree(root);
}

TestSuite(image, .init = setup, .fini = teardown);

static const char minimal[] =
    "{\n"
    "  \"id\": \"img-a\",\n"
    "  \"kind\": \"coding\",\n"
    "  \"title\": \"A task\",\n"
    "  \"prompt\": \"Do it.\",\n"
    "  \"reward\": {\"checks\": [{\"kind\": \"command\", \"command\": \"true\"}]}\n"
    "}\n";

/* Loads TEXT as img/image.json; returns the code and leaves the problems in *problems. */
static int load_text(const char *text, struct agt_image **out, struct cru_buf *problems)
{
    put("image.json", text);
    return agt_image_load(img, out, problems);
}

Test(image, minimal_image_gets_the_defaults)
{
    struct agt_image *im;
    struct cru_buf pr = CRU_BUF_INIT;
    cr_assert_eq(load_text(minimal, &im, &pr), 0, "%s\n%s", cru_err_msg(), cru_buf_cstr(&pr));
    cr_expect_str_eq(im->id, "img-a");
    cr_expect_eq(im->kind, AGT_IMAGE_CODING);
    cr_expect_null(im->rootfs_tar, "host profile by default");
    cr_expect_eq(im->ws_kind, AGT_WS_DIR);
    cr_expect(strstr(im->ws_path, "img-a/workspace") != NULL, "%s", im->ws_path);
    cr_expect_eq(im->wall_ms, 30 * 60 * 1000);
    cr_expect_eq(im->turns, 50);
    cr_expect_eq(im->memory_bytes, (uint64_t)2 << 30);
    cr_expect_eq(im->reward->aggregate, RWD_AGG_ALL);
    cr_expect_eq(im->reward->n_checks, 1);
    cr_expect_str_eq(im->reward->checks[0].name, "command #1");
    cr_expect_eq(im->reward->checks[0].weight, 1.0);
    cr_expect_eq(im->reward->checks[0].timeout_ms, RWD_TIMEOUT_DEFAULT_MS);
    cr_expect_eq(im->solution_kind, AGT_SOLUTION_SCRIPT);
    cr_expect_not_null(im->hidden_dir);
    cr_expect_eq(pr.len, 0);
    agt_image_free(im);
    cru_buf_free(&pr);
}

Test(image, every_field_parsed)
{
    put("rootfs.tar", "not read by the loader");
    put("ws.tar", "x");
    const char *text =
        "{\"id\": \"img-a\", \"kind\": \"office\", \"title\": \"T\", \"prompt\": \"P\",\n"
        " \"rootfs\": \"tar:rootfs.tar\", \"workspace\": {\"kind\": \"tar\", \"path\": "
        "\"ws.tar\"},\n"
        " \"setup\": [\"echo a\", \"echo b\"], \"x-author\": \"me\",\n"
        " \"limits\": {\"wall\": \"90s\", \"turns\": 7, \"memory\": \"512M\", \"disk\": \"64M\", "
        "\"inodes\": 5000},\n"
        " \"reward\": {\"aggregate\": \"partial\", \"protected\": [\"./tests/\"], "
        "\"protected_fail\": true, \"checks\": [\n"
        "  {\"kind\": \"tests\", \"name\": \"t\", \"weight\": 2, \"timeout\": \"2m\", \"command\": "
        "\"pytest\", \"results\": \"junit:/results/j.xml\", \"fail_to_pass\": [\"a.b\"], "
        "\"pass_to_pass\": [\"a.c\", \"a.d\"]},\n"
        "  {\"kind\": \"file_exists\", \"path\": \"out.csv\"},\n"
        "  {\"kind\": \"file_sha256\", \"path\": \"o\", \"sha256\": "
        "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"},\n"
        "  {\"kind\": \"text\", \"path\": \"r.md\", \"contains\": [\"# R\"], \"regex\": "
        "[\"\\\\d+\"]},\n"
        "  {\"kind\": \"json\", \"path\": \"r.json\", \"pointer\": \"/a/0\", \"equals\": {\"k\": "
        "1}, "
        "\"tolerance\": 0.5},\n"
        "  {\"kind\": \"csv\", \"path\": \"o.csv\", \"unordered\": true, \"cells\": [{\"row\": 0, "
        "\"column\": \"total\", \"equals\": 3}], \"rows\": [[1, \"a\"]], \"columns\": [\"n\", "
        "\"s\"], \"row_count\": 1},\n"
        "  {\"kind\": \"xlsx\", \"path\": \"b.xlsx\", \"cells\": [{\"sheet\": \"S\", \"ref\": "
        "\"XFD1048576\", \"equals\": 1, \"formula\": true}]},\n"
        "  {\"kind\": \"docx\", \"path\": \"d.docx\", \"headings\": [{\"text\": \"H\", \"level\": "
        "2}], \"tables\": [{\"cells\": [{\"row\": 0, \"column\": 1, \"equals\": \"x\"}]}]},\n"
        "  {\"kind\": \"command\", \"command\": \"true\"}\n"
        " ]}}\n";
    struct agt_image *im;
    struct cru_buf pr = CRU_BUF_INIT;
    cr_assert_eq(load_text(text, &im, &pr), 0, "%s\n%s", cru_err_msg(), cru_buf_cstr(&pr));
    cr_expect_eq(im->kind, AGT_IMAGE_OFFICE);
    cr_expect(strstr(im->rootfs_tar, "img-a/rootfs.tar") != NULL);
    cr_expect_eq(im->ws_kind, AGT_WS_TAR);
    cr_expect_eq(im->n_setup, 2);
    cr_expect_str_eq(im->setup[1], "echo b");
    cr_expect_eq(im->wall_ms, 90000);
    cr_expect_eq(im->turns, 7);
    cr_expect_eq(im->memory_bytes, (uint64_t)512 << 20);
    cr_expect_eq(im->disk_bytes, (uint64_t)64 << 20);
    cr_expect_eq(im->disk_inodes, 5000);
    const struct rwd_spec *r = im->reward;
    cr_expect_eq(r->aggregate, RWD_AGG_PARTIAL);
    cr_assert_eq(r->n_protected, 1);
    cr_expect_str_eq(r->protected_paths[0], "tests");
    cr_expect(r->protected_fail);
    cr_assert_eq(r->n_checks, 9);
    const struct rwd_check *t = &r->checks[0];
    cr_expect_eq(t->kind, RWD_TESTS);
    cr_expect_str_eq(t->name, "t");
    cr_expect_eq(t->weight, 2.0);
    cr_expect_eq(t->timeout_ms, 120000);
    cr_expect_eq(t->results, RWD_RESULTS_JUNIT);
    cr_expect_str_eq(t->report_path, "/results/j.xml");
    cr_expect_eq(t->n_fail_to_pass, 1);
    cr_expect_eq(t->n_pass_to_pass, 2);
    cr_expect_str_eq(t->pass_to_pass[1], "a.d");
    cr_expect_str_eq(r->checks[5].path, "o.csv");
    cr_expect_eq(r->checks[7].kind, RWD_DOCX);
    agt_image_free(im);
    cru_buf_free(&pr);
}

/* Each bad image: a replacement applied to the minimal one, and what the problem must say. */
static const struct {
    const char *from, *to; /* replace FROM with TO in minimal */
    const char *want;      /* a part of the problem line */
} bad_cases[] = {
    { "\"kind\": \"coding\"", "\"kind\": \"codign\"", "3:3: kind: expected \"coding\" or" },
    { "\"kind\": \"coding\",\n", "", "1:1: kind: required field is missing" },
    { "\"title\": \"A task\"", "\"titel\": \"A task\"", "4:3: titel: unknown field" },
    { "\"id\": \"img-a\"", "\"id\": \"img-b\"", "2:3: id: \"img-b\" differs from the folder" },
    { "\"id\": \"img-a\"", "\"id\": \"Img A\"", "id: \"Img A\" is not an id" },
    { "\"prompt\": \"Do it.\"", "\"prompt\": \"\"", "5:3: prompt: must not be empty" },
    { "\"prompt\": \"Do it.\"", "\"prompt\": 5", "prompt: expected a string, got an integer" },
    { "\"title\": \"A task\"", "\"title\": \"two\\nlines\"", "title: must be one line" },
    { "\"prompt\"", "\"rootfs\": \"docker\", \"prompt\"",
      "rootfs: expected \"host\" or \"tar:PATH\"" },
    { "\"prompt\"", "\"rootfs\": \"tar:../x.tar\", \"prompt\"", "rootfs: \"../x.tar\"" },
    { "\"prompt\"", "\"rootfs\": \"tar:missing.tar\", \"prompt\"", "missing.tar: No such file" },
    { "\"prompt\"", "\"workspace\": {\"kind\": \"svn\", \"path\": \"w\"}, \"prompt\"",
      "workspace.kind: expected \"dir\", \"tar\" or \"git\"" },
    { "\"prompt\"", "\"workspace\": {\"kind\": \"dir\", \"path\": \"/etc\"}, \"prompt\"",
      "workspace.path: \"/etc\"" },
    { "\"prompt\"", "\"workspace\": {\"kind\": \"tar\", \"path\": \"workspace\"}, \"prompt\"",
      "is not a regular file" },
    { "\"prompt\"", "\"workspace\": {\"kind\": \"git\", \"path\": \"workspace\"}, \"prompt\"",
      "workspace.commit: a git workspace needs the base commit" },
    { "\"prompt\"",
      "\"workspace\": {\"kind\": \"git\", \"path\": \"workspace\", \"commit\": "
      "\"main\"}, \"prompt\"",
      "workspace.commit: expected a full commit id" },
    { "\"prompt\"",
      "\"workspace\": {\"kind\": \"dir\", \"path\": \"workspace\", \"commit\": "
      "\"0000000000000000000000000000000000000000\"}, \"prompt\"",
      "only a git workspace has a commit" },
    { "\"prompt\"", "\"setup\": [\"ok\", 3], \"prompt\"", "setup[1]: expected a shell command" },
    { "\"prompt\"", "\"limits\": {\"wall\": \"soon\"}, \"prompt\"",
      "limits.wall: invalid duration" },
    { "\"prompt\"", "\"limits\": {\"wall\": \"48h\"}, \"prompt\"",
      "limits.wall: \"48h\" is out of" },
    { "\"prompt\"", "\"limits\": {\"turns\": 0}, \"prompt\"", "limits.turns: 0 is out of range" },
    { "\"prompt\"", "\"limits\": {\"memory\": \"1K\"}, \"prompt\"",
      "limits.memory: \"1K\" is out" },
    { "\"prompt\"", "\"limits\": {\"mem\": \"1G\"}, \"prompt\"", "limits.mem: unknown field" },
    { "\"prompt\"", "\"limits\": {\"disk\": \"2T\"}, \"prompt\"",
      "limits.disk: \"2T\" is out of range" },
    { "\"prompt\"", "\"limits\": {\"inodes\": 10}, \"prompt\"", "limits.inodes: 10 is out" },
    { "\"reward\"", "\"rewards\"", "reward: required field is missing" },
    { "{\"checks\"", "{\"aggregate\": \"max\", \"checks\"", "reward.aggregate: expected \"all\"" },
    { "{\"checks\"", "{\"protected\": [\"../up\"], \"checks\"", "reward.protected[0]: \"../up\"" },
    { "[{\"kind\": \"command\", \"command\": \"true\"}]", "[]", "at least one check" },
    { "\"kind\": \"command\",", "\"kind\": \"cmd\",", "reward.checks[0].kind: unknown check kind" },
    { "\"command\": \"true\"}", "\"command\": \"true\", \"path\": \"x\"}",
      "6:64: reward.checks[0].path: unknown field" },
    { "\"command\": \"true\"}", "\"command\": \"true\", \"weight\": 0}",
      "reward.checks[0].weight: 0 is out of range" },
    { "\"command\": \"true\"}", "\"command\": \"true\", \"timeout\": \"2h\"}",
      "reward.checks[0].timeout: \"2h\" is out of range" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"tests\", \"command\": \"t\", \"results\": \"xml\"",
      "results: expected \"exit\", \"tap\", \"tap:/results/NAME\" or \"junit:/results/NAME\"" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"tests\", \"command\": \"t\", \"results\": \"tap:out.tap\"",
      "results: expected \"exit\", \"tap\", \"tap:/results/NAME\"" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"tests\", \"command\": \"t\", \"results\": \"junit:/tmp/j.xml\"",
      "(a report file is read from /results, which the artifact cannot reach)" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"tests\", \"command\": \"t\", \"results\": \"tap:/results/a/b\"",
      "got \"tap:/results/a/b\"" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"tests\", \"command\": \"t\", \"fail_to_pass\": [\"a\"]",
      "test id lists need per-test results" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"tests\", \"command\": \"t\", \"results\": \"tap:/results/t\", "
      "\"fail_to_pass\": [\"a\", \"b\"], \"pass_to_pass\": [\"c\", \"a\"]",
      "the test \"a\" is listed twice in fail_to_pass and pass_to_pass" },
    { "\"kind\": \"command\", \"command\": \"true\"", "\"kind\": \"file_exists\"",
      "reward.checks[0].path: required field is missing" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"file_sha256\", \"path\": \"f\", \"sha256\": \"abc\"",
      "sha256: expected 64 hex digits" },
    { "\"kind\": \"command\", \"command\": \"true\"", "\"kind\": \"text\", \"path\": \"f\"",
      "give at least one of \"contains\"" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"text\", \"path\": \"f\", \"regex\": [\"a(\"]", "regex[0]: the regex does not" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"json\", \"path\": \"f\", \"pointer\": \"a\", \"equals\": 1",
      "pointer: a JSON pointer is \"\" or starts with '/'" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"csv\", \"path\": \"f\", \"delimiter\": \";;\", \"row_count\": 1",
      "delimiter: expected one character" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"csv\", \"path\": \"f\", \"rows\": [[{\"a\": 1}]]",
      "rows[0][0]: expected a string, number" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"xlsx\", \"path\": \"f\", \"cells\": [{\"sheet\": \"S\", \"ref\": \"A0\", "
      "\"equals\": 1}]",
      "cells[0].ref: \"A0\" is not an A1 cell reference" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"xlsx\", \"path\": \"f\", \"cells\": [{\"sheet\": \"S\", \"ref\": \"A1\"}]",
      "give \"equals\", \"formula\": true, or both" },
    { "\"kind\": \"command\", \"command\": \"true\"",
      "\"kind\": \"docx\", \"path\": \"f\", \"headings\": [{\"text\": \"H\", \"level\": 10}]",
      "headings[0].level: 10 is out of range" },
};

Test(image, each_problem_is_named_and_placed)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const char *at = strstr(minimal, bad_cases[i].from);
        cr_assert_not_null(at, "case %zu: the replacement does not apply", i);
        char text[2048];
        snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - minimal), minimal, bad_cases[i].to,
                 at + strlen(bad_cases[i].from));
        struct agt_image *im = (struct agt_image *)1;
        struct cru_buf pr = CRU_BUF_INIT;
        int rc = load_text(text, &im, &pr);
        cr_expect_eq(rc, CRU_EINVAL, "case %zu: rc %d: %s", i, rc, cru_err_msg());
        cr_expect_null(im, "case %zu", i);
        cr_expect(strstr(cru_buf_cstr(&pr), bad_cases[i].want) != NULL,
                  "case %zu: wanted \"%s\" in:\n%s", i, bad_cases[i].want, cru_buf_cstr(&pr));
        /* Every line names the file and a position. */
        char prefix[256];
        snprintf(prefix, sizeof(prefix), "%s/image.json:", img);
        cr_expect_eq(strncmp(cru_buf_cstr(&pr), prefix, strlen(prefix)), 0, "case %zu: %s", i,
                     cru_buf_cstr(&pr));
        cru_buf_free(&pr);
    }
}

Test(image, all_problems_are_reported_not_only_the_first)
{
    const char *text = "{\"id\": \"img-a\", \"kind\": \"x\", \"title\": \"\", \"prompt\": \"p\",\n"
                       " \"typo\": 1, \"limits\": {\"turns\": -1},\n"
                       " \"reward\": {\"checks\": [{\"kind\": \"nope\"}, {\"kind\": \"json\"}]}}";
    struct agt_image *im;
    struct cru_buf pr = CRU_BUF_INIT;
    cr_assert_eq(load_text(text, &im, &pr), CRU_EINVAL);
    size_t lines = 0;
    for (const char *p = cru_buf_cstr(&pr); (p = strchr(p, '\n')); p++)
        lines++;
    /* kind, title, typo, turns, checks[0].kind, checks[1].path, .pointer, .equals */
    cr_expect_eq(lines, 8, "%s", cru_buf_cstr(&pr));
    cr_expect(strstr(cru_err_msg(), "8 problems") != NULL, "%s", cru_err_msg());
    cru_buf_free(&pr);
}

Test(image, not_json_is_a_positioned_parse_error)
{
    struct agt_image *im;
    struct cru_buf pr = CRU_BUF_INIT;
    cr_assert_eq(load_text("{\"id\": \"img-a\",\n  \"kind\" \"coding\"}", &im, &pr), CRU_EPARSE);
    cr_expect(strstr(cru_err_msg(), "image.json:2:") != NULL, "%s", cru_err_msg());
    cru_buf_free(&pr);
}

Test(image, folder_problems)
{
    struct agt_image *im;
    struct cru_buf pr = CRU_BUF_INIT;
    char p[256];
    /* No image.json at all. */
    cr_assert_eq(agt_image_load(img, &im, &pr), CRU_ENOENT);
    cr_expect(strstr(cru_err_msg(), "no image.json") != NULL, "%s", cru_err_msg());
    /* Both solutions. */
    put("solution/solution.patch", "");
    cr_assert_eq(load_text(minimal, &im, &pr), CRU_EINVAL);
    cr_expect(strstr(cru_buf_cstr(&pr), "solution: holds both") != NULL, "%s", cru_buf_cstr(&pr));
    /* Neither. */
    snprintf(p, sizeof(p), "%s/solution", img);
    cru_remove_tree(p);
    cru_buf_reset(&pr);
    cr_assert_eq(load_text(minimal, &im, &pr), CRU_EINVAL);
    cr_expect(strstr(cru_buf_cstr(&pr), "solution: needs solution.patch or solve.sh") != NULL);
    /* No default workspace folder. */
    snprintf(p, sizeof(p), "%s/workspace", img);
    cru_remove_tree(p);
    put("solution/solution.patch", "");
    cru_buf_reset(&pr);
    cr_assert_eq(load_text(minimal, &im, &pr), CRU_EINVAL);
    cr_expect(strstr(cru_buf_cstr(&pr), "workspace: ") != NULL, "%s", cru_buf_cstr(&pr));
    cru_buf_free(&pr);
}

/* image.json replaced by a FIFO with no writer: refused at once, naming it, where the load used
 * to wait in open(2) for ever. The same text in a regular file loads: the control. */
Test(image, a_fifo_for_image_json_is_refused_without_blocking)
{
    struct agt_image *im = NULL;
    struct cru_buf pr = CRU_BUF_INIT;
    cr_assert_eq(load_text(minimal, &im, &pr), 0, "control: %s", cru_err_msg());
    agt_image_free(im);

    char p[256];
    snprintf(p, sizeof(p), "%s/image.json", img);
    struct timespec t0 = fifo_swap(p);
    im = (struct agt_image *)&im;
    int rc = agt_image_load(img, &im, &pr);
    fifo_done(t0, rc, p);
    cr_assert_null(im);
    cru_buf_free(&pr);
}

static void expect_file(const char *dir, const char *rel, const char *want)
{
    char p[512];
    struct cru_buf b = CRU_BUF_INIT;
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    cr_assert_eq(cru_file_read(p, 1 << 20, &b), 0, "%s", cru_err_msg());
    cr_expect_str_eq(cru_buf_cstr(&b), want);
    cru_buf_free(&b);
}

static struct agt_image *load_ok(const char *text)
{
    struct agt_image *im;
    struct cru_buf pr = CRU_BUF_INIT;
    cr_assert_eq(load_text(text, &im, &pr), 0, "%s\n%s", cru_err_msg(), cru_buf_cstr(&pr));
    cru_buf_free(&pr);
    return im;
}

Test(image, workspace_from_a_folder_and_a_tarball)
{
    struct agt_image *im = load_ok(minimal);
    char ws[256], cmd[768];
    snprintf(ws, sizeof(ws), "%s/ep1", root);
    cr_assert_eq(agt_workspace_make(im, ws), 0, "%s", cru_err_msg());
    expect_file(ws, "main.py", "print('hi')\n");
    expect_file(ws, "sub/data.txt", "data\n");
    cr_expect_eq(agt_workspace_make(im, ws), CRU_EEXIST, "an existing workspace is kept");
    agt_image_free(im);

    snprintf(cmd, sizeof(cmd), "tar -C %s/workspace -czf %s/ws.tar.gz .", img, img);
    cr_assert_eq(system(cmd), 0);
    char text[1024];
    const char *at = strstr(minimal, "\"prompt\"");
    snprintf(text, sizeof(text),
             "%.*s\"workspace\": {\"kind\": \"tar\", \"path\": "
             "\"ws.tar.gz\"}, %s",
             (int)(at - minimal), minimal, at);
    im = load_ok(text);
    snprintf(ws, sizeof(ws), "%s/ep2", root);
    cr_assert_eq(agt_workspace_make(im, ws), 0, "%s", cru_err_msg());
    expect_file(ws, "sub/data.txt", "data\n");
    agt_image_free(im);

    /* A hostile tarball leaves no workspace behind. */
    snprintf(cmd, sizeof(cmd), "cd %s && ln -s /etc/passwd evil && tar -czf %s/ws.tar.gz evil",
             root, img);
    cr_assert_eq(system(cmd), 0);
    im = load_ok(text);
    snprintf(ws, sizeof(ws), "%s/ep3", root);
    cr_expect_eq(agt_workspace_make(im, ws), CRU_EUNSAFE, "%s", cru_err_msg());
    struct stat st;
    cr_expect_lt(lstat(ws, &st), 0);
    agt_image_free(im);
}

Test(image, workspace_from_a_git_bundle_at_its_base_commit)
{
    char cmd[2048], text[1024], ws[256], base[64] = "";
    snprintf(cmd, sizeof(cmd),
             "set -e; cd %s; git init -q r; cd r; git config user.email t@t; git config "
             "user.name t; echo one > f; git add f; git commit -qm one; git rev-parse HEAD > "
             "../base; echo two > f; git commit -qam two; git bundle create -q %s/repo.bundle "
             "--all 2>/dev/null",
             root, img);
    cr_assert_eq(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s/base", root);
    FILE *f = fopen(cmd, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(base, sizeof(base), f));
    fclose(f);
    base[strcspn(base, "\n")] = '\0';
    const char *at = strstr(minimal, "\"prompt\"");
    snprintf(text, sizeof(text),
             "%.*s\"workspace\": {\"kind\": \"git\", \"path\": "
             "\"repo.bundle\", \"commit\": \"%s\"}, %s",
             (int)(at - minimal), minimal, base, at);
    struct agt_image *im = load_ok(text);
    cr_expect_str_eq(im->ws_commit, base);
    snprintf(ws, sizeof(ws), "%s/ep", root);
    cr_assert_eq(agt_workspace_make(im, ws), 0, "%s", cru_err_msg());
    expect_file(ws, "f", "one\n");
    agt_image_free(im);
}

/* A rootfs tarball with an absolute symlink, as real ones have. */
static struct agt_image *rootfs_image(void)
{
    char cmd[1024], text[1024];
    snprintf(cmd, sizeof(cmd),
             "set -e; mkdir -p %s/rfs/usr/bin %s/rfs/etc; echo motd > %s/rfs/etc/motd; "
             "ln -s /usr/bin %s/rfs/bin; tar -C %s/rfs -czf %s/rootfs.tar.gz .",
             root, root, root, root, root, img);
    cr_assert_eq(system(cmd), 0);
    const char *at = strstr(minimal, "\"prompt\"");
    snprintf(text, sizeof(text), "%.*s\"rootfs\": \"tar:rootfs.tar.gz\", %s", (int)(at - minimal),
             minimal, at);
    return load_ok(text);
}

Test(image, rootfs_is_unpacked_once_and_reused)
{
    cr_assert_eq(chmod(root, 0755), 0, "the cache below must be reachable by the sandbox");
    struct agt_image *im = rootfs_image();
    char cache[256], *dir = NULL, *again = NULL;
    snprintf(cache, sizeof(cache), "%s/cache", root);
    cr_assert_eq(agt_rootfs_prepare(im, cache, &dir), 0, "%s", cru_err_msg());
    cr_expect(strstr(dir, "/cache/rootfs/") != NULL, "%s", dir);
    expect_file(dir, "etc/motd", "motd\n");
    char link[256], target[64] = "";
    snprintf(link, sizeof(link), "%s/bin", dir);
    cr_expect_gt(readlink(link, target, sizeof(target) - 1), 0);
    cr_expect_str_eq(target, "/usr/bin");
    /* A mark left in the cache survives the second use: it was not unpacked again. */
    char mark[512];
    snprintf(mark, sizeof(mark), "%s/mark", dir);
    cr_assert_eq(cru_file_write_atomic(mark, "m", 1, 0644), 0);
    cr_assert_eq(agt_rootfs_prepare(im, cache, &again), 0, "%s", cru_err_msg());
    cr_expect_str_eq(again, dir);
    cr_expect_eq(access(mark, F_OK), 0);
    free(dir);
    free(again);
    /* The host profile has no rootfs folder. */
    free(im->rootfs_tar);
    im->rootfs_tar = NULL;
    cr_expect_eq(agt_rootfs_prepare(im, cache, &dir), 0);
    cr_expect_null(dir);
    agt_image_free(im);
}

Test(image, rootfs_concurrent_first_use_unpacks_once)
{
    cr_assert_eq(chmod(root, 0755), 0, "the cache below must be reachable by the sandbox");
    struct agt_image *im = rootfs_image();
    char cache[256];
    snprintf(cache, sizeof(cache), "%s/cache", root);
    enum { N = 6 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0) {
            char *dir = NULL;
            _exit(agt_rootfs_prepare(im, cache, &dir) == 0 && dir ? 0 : 1);
        }
    }
    for (int i = 0; i < N; i++) {
        int st;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "process %d failed", i);
    }
    /* One tree and its lock; no temporary half-trees left behind. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s/rootfs | wc -l) -eq 2", cache);
    cr_expect_eq(system(cmd), 0, "the cache holds more than the tree and its lock");
    agt_image_free(im);
}

/* The sandbox's init binds the cached tree's folders by path as an unprivileged user: the
 * tree (which mkdtemp made 0700) and CACHE/rootfs must be open to it, a tree an older version
 * left 0700 is opened up on its next use, and a folder above the cache that others may not
 * enter is an error that names it. */
Test(image, rootfs_cache_is_open_to_the_sandbox_user)
{
    cr_assert_eq(chmod(root, 0755), 0);
    struct agt_image *im = rootfs_image();
    char cache[256], rootfs_dir[300], *dir = NULL;
    struct stat st;
    snprintf(cache, sizeof(cache), "%s/cache", root);
    snprintf(rootfs_dir, sizeof(rootfs_dir), "%s/rootfs", cache);
    cr_assert_eq(agt_rootfs_prepare(im, cache, &dir), 0, "%s", cru_err_msg());
    cr_assert_eq(stat(dir, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0755, "the unpacked tree has mode %o", st.st_mode & 0777);
    cr_assert_eq(stat(rootfs_dir, &st), 0);
    cr_expect_eq(st.st_mode & 0755, 0755, "CACHE/rootfs has mode %o", st.st_mode & 0777);

    cr_assert_eq(chmod(dir, 0700), 0);
    free(dir);
    cr_assert_eq(agt_rootfs_prepare(im, cache, &dir), 0, "%s", cru_err_msg());
    cr_assert_eq(stat(dir, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0755, "a cached tree left 0700 is opened up");
    free(dir);
    dir = NULL;

    cr_assert_eq(chmod(root, 0700), 0);
    cr_expect_eq(agt_rootfs_prepare(im, cache, &dir), CRU_EPERM, "%s", cru_err_msg());
    cr_expect_null(dir);
    cr_expect(strstr(cru_err_msg(), root) && strstr(cru_err_msg(), "0700"), "%s", cru_err_msg());
    agt_image_free(im);
}

/* ---- paths the image names never lead out of it ---- */

static const char secret[] = "the host secret\n";
static char outside[256]; /* root/outside: host files that no image may reach */
static char base_commit[64];

/* A file only root may read, and a folder, tarballs, a git repository and its bundle holding
 * it, all outside the image folder; and the same under img/inside, inside it. */
static void make_outside(void)
{
    char *cmd = NULL;
    snprintf(outside, sizeof(outside), "%s/outside", root);
    cr_assert(asprintf(&cmd,
                       "set -e; o=%s; mkdir -p $o/wsdir $o/sol; printf '%%s' '%s' > $o/secret; "
                       "chmod 600 $o/secret; cp -p $o/secret $o/wsdir/secret.txt; "
                       "echo 'cp /etc/hostname /workspace' > $o/sol/solve.sh; "
                       "tar -C $o/wsdir -czf $o/ws.tar.gz .; cp $o/ws.tar.gz $o/rootfs.tar.gz; "
                       "git init -q $o/repo; cd $o/repo; git config user.email t@t; "
                       "git config user.name t; cp -p $o/secret secret.txt; git add secret.txt; "
                       "git commit -qm secret; git rev-parse HEAD > $o/base; "
                       "git bundle create -q $o/repo.bundle --all 2>/dev/null; "
                       "cp -a $o %s/inside",
                       outside, secret, img) > 0);
    cr_assert_eq(system(cmd), 0);
    free(cmd);
    char p[300];
    snprintf(p, sizeof(p), "%s/base", outside);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(base_commit, sizeof(base_commit), f));
    fclose(f);
    base_commit[strcspn(base_commit, "\n")] = '\0';
}

/* Runs the shell command CMD in the image folder, '@' standing for TARGET. */
static void in_image(const char *cmd, const char *target)
{
    struct cru_buf b = CRU_BUF_INIT;
    cr_assert_eq(cru_buf_printf(&b, "set -e; cd %s; ", img), 0);
    for (const char *c = cmd; *c; c++)
        cr_assert_eq(*c == '@' ? cru_buf_puts(&b, target) : cru_buf_putc(&b, *c), 0);
    cr_assert_eq(system(cru_buf_cstr(&b)), 0, "%s", cru_buf_cstr(&b));
    cru_buf_free(&b);
}

/* TEMPLATE with its "%s", if any, replaced by VALUE. */
static void fill(char *out, size_t cap, const char *template, const char *value)
{
    const char *at = strstr(template, "%s");
    if (!at)
        snprintf(out, cap, "%s", template);
    else
        snprintf(out, cap, "%.*s%s%s", (int)(at - template), template, value, at + 2);
}

/* The minimal image with FIELDS (JSON members and a comma, "%s" for the base commit) added. */
static void image_with(char *text, size_t cap, const char *fields)
{
    char f[512];
    fill(f, sizeof(f), fields, base_commit);
    const char *at = strstr(minimal, "\"prompt\"");
    snprintf(text, cap, "%.*s%s %s", (int)(at - minimal), minimal, f, at);
}

/* Whether the secret is anywhere below DIR. */
static bool holds_secret(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "grep -rqF 'the host secret' %s 2>/dev/null", dir);
    return system(cmd) == 0;
}

static const struct {
    const char *what;
    const char *make; /* run in the image folder; '@' is where the link points */
    const char *undo; /* puts the image back */
    const char *fields;
    const char *want; /* in the problem */
    bool inside_ok;   /* a link that stays inside the image is accepted */
} link_cases[] = {
    { "the workspace folder", "mv workspace ws-real; ln -s @/wsdir workspace",
      "rm workspace; mv ws-real workspace", "", "workspace: %s/workspace: 'workspace' leads out",
      true },
    { "workspace.path", "ln -s @/wsdir ws", "rm ws",
      "\"workspace\": {\"kind\": \"dir\", \"path\": \"ws\"},",
      "workspace.path: %s/ws: 'ws' leads out", true },
    { "a link in the middle of workspace.path", "ln -s @ up", "rm up",
      "\"workspace\": {\"kind\": \"dir\", \"path\": \"up/wsdir\"},",
      "workspace.path: %s/up/wsdir: 'up/wsdir' leads out", true },
    { "a workspace tarball", "ln -s @/ws.tar.gz ws.tar.gz", "rm ws.tar.gz",
      "\"workspace\": {\"kind\": \"tar\", \"path\": \"ws.tar.gz\"},",
      "workspace.path: %s/ws.tar.gz: 'ws.tar.gz' leads out", true },
    { "a rootfs tarball", "ln -s @/rootfs.tar.gz rootfs.tar.gz", "rm rootfs.tar.gz",
      "\"rootfs\": \"tar:rootfs.tar.gz\",", "rootfs: %s/rootfs.tar.gz: 'rootfs.tar.gz' leads out",
      true },
    { "a git bundle", "ln -s @/repo.bundle repo.bundle", "rm repo.bundle",
      "\"workspace\": {\"kind\": \"git\", \"path\": \"repo.bundle\", \"commit\": \"%s\"},",
      "workspace.path: %s/repo.bundle: 'repo.bundle' leads out", true },
    { "a git repository", "ln -s @/repo repo", "rm repo",
      "\"workspace\": {\"kind\": \"git\", \"path\": \"repo\", \"commit\": \"%s\"},",
      "workspace.path: %s/repo: 'repo' leads out", true },
    { "the solution folder", "mv solution sol-real; ln -s @/sol solution",
      "rm solution; mv sol-real solution", "", "solution: is a symbolic link", false },
    { "the hidden folder", "mv hidden hid-real; ln -s @/wsdir hidden",
      "rm hidden; mv hid-real hidden", "", "hidden: is a symbolic link", false },
};

/* Each path an image names, made a symlink to a root-only file's folder or archive outside the
 * image, is refused at load with the field and the path, and nothing of it is copied. The
 * controls: the link does reach the secret, and the same link pointing inside the image loads
 * and makes its workspace (the hidden and solution folders must be real folders, which the
 * other tests load). */
Test(image, paths_that_leave_the_image_through_a_link_are_refused)
{
    cr_assert_eq(chmod(root, 0755), 0); /* the rootfs cache of the controls lives here */
    make_outside();
    char rel_out[300], cache[300], want[512], text[2048], probe[512];
    snprintf(rel_out, sizeof(rel_out), "../outside");
    snprintf(cache, sizeof(cache), "%s/cache", root);
    for (size_t i = 0; i < sizeof(link_cases) / sizeof(link_cases[0]); i++) {
        const char *what = link_cases[i].what;
        image_with(text, sizeof(text), link_cases[i].fields);
        /* Out: by an absolute link, and by a relative one that climbs out. */
        for (int rel = 0; rel < 2; rel++) {
            in_image(link_cases[i].make, rel ? rel_out : outside);
            snprintf(probe, sizeof(probe), "%s/%s", img,
                     strstr(link_cases[i].make, "wsdir") ? "ws-probe" : "");
            struct agt_image *im = (struct agt_image *)1;
            struct cru_buf pr = CRU_BUF_INIT;
            cr_expect_eq(load_text(text, &im, &pr), CRU_EINVAL, "%s: %s", what, cru_err_msg());
            cr_expect_null(im, "%s", what);
            fill(want, sizeof(want), link_cases[i].want, img);
            cr_expect(strstr(cru_buf_cstr(&pr), want) != NULL, "%s: wanted \"%s\" in:\n%s", what,
                      want, cru_buf_cstr(&pr));
            cr_expect(strstr(cru_buf_cstr(&pr), "secret") == NULL, "%s", cru_buf_cstr(&pr));
            cru_buf_free(&pr);
            in_image(link_cases[i].undo, "");
        }
        /* The control: the same link, pointing inside the image, loads and is used. */
        in_image(link_cases[i].make, "inside");
        struct agt_image *im = NULL;
        struct cru_buf pr = CRU_BUF_INIT;
        int rc = load_text(text, &im, &pr);
        if (link_cases[i].inside_ok) {
            cr_expect_eq(rc, 0, "control %s: %s\n%s", what, cru_err_msg(), cru_buf_cstr(&pr));
            char ws[300], *dir = NULL;
            snprintf(ws, sizeof(ws), "%s/ws-%zu", root, i);
            if (im) {
                cr_expect_eq(agt_workspace_make(im, ws), 0, "control %s: %s", what, cru_err_msg());
                cr_expect_eq(agt_rootfs_prepare(im, cache, &dir), 0, "control %s: %s", what,
                             cru_err_msg());
                cr_expect(holds_secret(ws) || (dir && holds_secret(dir)),
                          "control %s: the image's own copy was not used", what);
                free(dir);
            }
        } else {
            cr_expect_eq(rc, CRU_EINVAL, "%s inside the image is still a link", what);
        }
        agt_image_free(im);
        cru_buf_free(&pr);
        in_image(link_cases[i].undo, "");
    }
    /* The probe points at the secret: the link followed plainly reads it. */
    in_image("ln -s @/wsdir ws", outside);
    struct cru_buf b = CRU_BUF_INIT;
    snprintf(probe, sizeof(probe), "%s/ws/secret.txt", img);
    cr_expect_eq(cru_file_read(probe, 1024, &b), 0);
    cr_expect_str_eq(cru_buf_cstr(&b), secret, "control: the link leads to the secret");
    cru_buf_free(&b);
}

/* The loader's check is repeated where the path is used: a workspace, rootfs tarball or
 * solution folder replaced by a link after the image was loaded is refused then, and nothing
 * of the host's is copied. */
Test(image, a_link_put_in_after_loading_is_refused_at_use)
{
    cr_assert_eq(chmod(root, 0755), 0);
    make_outside();
    static const struct {
        const char *what, *fields, *swap;
    } cases[] = {
        { "a workspace folder", "", "mv workspace ws-real; ln -s @/wsdir workspace" },
        { "a workspace tarball", "\"workspace\": {\"kind\": \"tar\", \"path\": \"ws.tar.gz\"},",
          "cp inside/ws.tar.gz .; ./load; rm ws.tar.gz; ln -s @/ws.tar.gz ws.tar.gz" },
        { "a git bundle",
          "\"workspace\": {\"kind\": \"git\", \"path\": \"repo.bundle\", \"commit\": \"%s\"},",
          "cp inside/repo.bundle .; ./load; rm repo.bundle; ln -s @/repo.bundle repo.bundle" },
        { "a git repository",
          "\"workspace\": {\"kind\": \"git\", \"path\": \"repo\", \"commit\": \"%s\"},",
          "cp -a inside/repo repo; ./load; rm -r repo; ln -s @/repo repo" },
    };
    char text[2048], ws[300];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* The real thing first (the loader sees it), then the swap. */
        const char *swap = cases[i].swap;
        const char *load = strstr(swap, "./load; ");
        char before[256] = "true";
        if (load)
            snprintf(before, sizeof(before), "%.*s", (int)(load - swap), swap);
        in_image(before, "");
        image_with(text, sizeof(text), cases[i].fields);
        struct agt_image *im = load_ok(text);
        in_image(load ? load + strlen("./load; ") : swap, outside);
        snprintf(ws, sizeof(ws), "%s/ws-%zu", root, i);
        cr_expect_eq(agt_workspace_make(im, ws), CRU_EUNSAFE, "%s: %s", cases[i].what,
                     cru_err_msg());
        cr_expect(access(ws, F_OK) < 0 && !holds_secret(ws), "%s: copied", cases[i].what);
        agt_image_free(im);
        in_image(i == 0 ? "rm workspace; mv ws-real workspace" : "true", "");
    }

    /* The rootfs tarball, hashed and unpacked from what the loader did not see. */
    char cache[300], *dir = NULL;
    snprintf(cache, sizeof(cache), "%s/cache", root);
    in_image("cp inside/rootfs.tar.gz .", "");
    image_with(text, sizeof(text), "\"rootfs\": \"tar:rootfs.tar.gz\",");
    struct agt_image *im = load_ok(text);
    in_image("rm rootfs.tar.gz; ln -s @/rootfs.tar.gz rootfs.tar.gz", outside);
    cr_expect_eq(agt_rootfs_prepare(im, cache, &dir), CRU_EUNSAFE, "%s", cru_err_msg());
    cr_expect_null(dir);
    cr_expect(!holds_secret(cache), "the rootfs was unpacked from outside");
    in_image("rm rootfs.tar.gz", "");
    agt_image_free(im);

    /* The solution folder the oracle gets. */
    im = load_ok(minimal);
    in_image("mv solution sol-real; ln -s @/wsdir solution", outside);
    char *scratch = NULL, *sol = NULL;
    cr_expect_lt(agt_solution_stage(im, &scratch, &sol), 0, "the solution link was followed");
    if (scratch) {
        cr_expect(!holds_secret(scratch), "the solution came from outside");
        cru_remove_tree(scratch);
    }
    free(scratch);
    free(sol);
    agt_image_free(im);
}

/* A git repository folder is read by libgit2, which follows what the repository says: objects
 * borrowed from another repository (alternates), a .git that is a link, or a link inside .git
 * would check out a repository outside the image. Each is refused when the workspace is made,
 * and the control, a plain copy of the repository inside the image, checks out. */
Test(image, a_git_repository_must_be_wholly_inside_the_image)
{
    make_outside();
    static const struct {
        const char *what, *make, *want;
    } cases[] = {
        { "alternates", "git clone -q --bare --shared @/repo repo", "objects/info/alternates" },
        { "a .git link", "mkdir repo; ln -s @/repo/.git repo/.git", ".git is a symbolic link" },
        { "a link inside .git",
          "cp -a inside/repo repo; rm -r repo/.git/objects; ln -s @/repo/.git/objects "
          "repo/.git/objects",
          "is a symbolic link" },
        { "a gitdir file", "mkdir repo; echo 'gitdir: @/repo/.git' > repo/.git", "gitdir" },
    };
    char text[2048], ws[300];
    image_with(text, sizeof(text),
               "\"workspace\": {\"kind\": \"git\", \"path\": \"repo\", \"commit\": \"%s\"},");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        in_image(cases[i].make, outside);
        struct agt_image *im = load_ok(text);
        snprintf(ws, sizeof(ws), "%s/ws-%zu", root, i);
        cr_expect_eq(agt_workspace_make(im, ws), CRU_EUNSAFE, "%s: %s", cases[i].what,
                     cru_err_msg());
        cr_expect(strstr(cru_err_msg(), cases[i].want) != NULL, "%s: %s", cases[i].what,
                  cru_err_msg());
        cr_expect(access(ws, F_OK) < 0, "%s: a workspace was made", cases[i].what);
        agt_image_free(im);
        in_image("rm -rf repo", "");
    }
    in_image("cp -a inside/repo repo", "");
    struct agt_image *im = load_ok(text);
    snprintf(ws, sizeof(ws), "%s/ws-control", root);
    cr_assert_eq(agt_workspace_make(im, ws), 0, "%s", cru_err_msg());
    expect_file(ws, "secret.txt", secret);
    agt_image_free(im);
}

Test(image, find_and_list)
{
    char *dir = NULL, **ids = NULL;
    size_t n = 0;
    put("image.json", minimal);
    char other[256];
    snprintf(other, sizeof(other), "%s/not-an-image", root);
    cr_assert_eq(mkdir(other, 0755), 0);
    cr_assert_eq(agt_images_list(root, &ids, &n), 0, "%s", cru_err_msg());
    cr_assert_eq(n, 1);
    cr_expect_str_eq(ids[0], "img-a");
    agt_images_list_free(ids, n);
    cr_assert_eq(agt_image_find(root, "img-a", &dir), 0);
    cr_expect_str_eq(dir, img);
    free(dir);
    dir = NULL;
    cr_expect_eq(agt_image_find(root, "img-b", &dir), CRU_ENOENT);
    cr_assert_eq(agt_image_find("/nonexistent", img, &dir), 0, "a path is taken as a path");
    cr_expect_str_eq(dir, img);
    free(dir);
    cr_expect_eq(agt_image_find(root, "Bad Id", &dir), CRU_EINVAL);
}

Test(spec, cell_refs)
{
    uint32_t c, r;
    cr_assert_eq(rwd_cell_ref("A1", &c, &r), 0);
    cr_expect(c == 0 && r == 0);
    cr_assert_eq(rwd_cell_ref("ab12", &c, &r), 0);
    cr_expect(c == 27 && r == 11, "%u %u", c, r);
    cr_assert_eq(rwd_cell_ref("XFD1048576", &c, &r), 0);
    cr_expect(c == 16383 && r == 1048575);
    const char *bad[] = { "", "A", "1", "A0", "XFE1", "A1048577", "A01", "A1B", "ABCDE1", "A-1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(rwd_cell_ref(bad[i], &c, &r), CRU_EINVAL, "\"%s\"", bad[i]);
}

/* Every image of the bundled suite loads, and the suite has what it promises. */
Test(image, bundled_suite_loads)
{
    const char *src = getenv("CRUCIBLE_SRC");
    cr_assert(src && *src, "CRUCIBLE_SRC is not set: run the tests with `make test`");
    char images[512];
    snprintf(images, sizeof(images), "%s/images", src);
    char **ids = NULL;
    size_t n = 0, coding = 0, office = 0, git = 0;
    cr_assert_eq(agt_images_list(images, &ids, &n), 0, "%s", cru_err_msg());
    for (size_t i = 0; i < n; i++) {
        char dir[1024];
        struct agt_image *im = NULL;
        struct cru_buf pr = CRU_BUF_INIT;
        snprintf(dir, sizeof(dir), "%s/%s", images, ids[i]);
        cr_expect_eq(agt_image_load(dir, &im, &pr), 0, "%s: %s\n%s", ids[i], cru_err_msg(),
                     cru_buf_cstr(&pr));
        if (im) {
            coding += im->kind == AGT_IMAGE_CODING;
            office += im->kind == AGT_IMAGE_OFFICE;
            git += im->ws_kind == AGT_WS_GIT;
            cr_expect_not_null(im->hidden_dir, "%s has no hidden checks", ids[i]);
        }
        agt_image_free(im);
        cru_buf_free(&pr);
    }
    agt_images_list_free(ids, n);
    cr_expect_geq(coding, 16, "%zu coding images", coding);
    cr_expect_geq(office, 8, "%zu office images", office);
    cr_expect_geq(git, 1, "no image has a git workspace");
}

/* The checker helpers the bundled images share (hidden/crucible_artifact.py of the Python
 * images, hidden/artifact.py of the C and shell ones) are one file each, copied so that every
 * image stays self-contained: the copies must not drift apart. */
Test(image, shared_checker_helpers_are_identical_copies)
{
    const char *src = getenv("CRUCIBLE_SRC");
    cr_assert(src && *src, "CRUCIBLE_SRC is not set: run the tests with `make test`");
    static const char *const helpers[] = { "crucible_artifact.py", "artifact.py" };
    char images[512];
    snprintf(images, sizeof(images), "%s/images", src);
    char **ids = NULL;
    size_t n = 0;
    cr_assert_eq(agt_images_list(images, &ids, &n), 0, "%s", cru_err_msg());
    for (size_t h = 0; h < 2; h++) {
        struct cru_buf first = CRU_BUF_INIT;
        const char *first_id = NULL;
        size_t copies = 0;
        for (size_t i = 0; i < n; i++) {
            char path[1024];
            struct cru_buf b = CRU_BUF_INIT;
            snprintf(path, sizeof(path), "%s/%s/hidden/%s", images, ids[i], helpers[h]);
            if (cru_file_read(path, 1 << 22, &b) < 0)
                continue;
            copies++;
            if (!first_id) {
                first_id = ids[i];
                first = b;
                continue;
            }
            cr_expect(b.len == first.len && memcmp(b.data, first.data, b.len) == 0,
                      "hidden/%s of %s differs from that of %s", helpers[h], ids[i], first_id);
            cru_buf_free(&b);
        }
        cr_expect_geq(copies, 2, "%s is in %zu images", helpers[h], copies);
        cru_buf_free(&first);
    }
    agt_images_list_free(ids, n);
}
