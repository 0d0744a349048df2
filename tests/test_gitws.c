/* Tests for agent/gitws: checkouts at a base commit and the diff against it. The repositories
 * are built here with libgit2, with a fixed signature and times, so their ids are the same on
 * every run. */
#include <criterion/criterion.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/gitws.h"
#include "lib/err.h"
#include "lib/fs.h"

static char dir[64];
static char src[128];
static git_oid c1, c2; /* the first commit (tag v1.0, branch first), the second (main) */
static char c1_hex[GIT_OID_HEXSZ + 1], c2_hex[GIT_OID_HEXSZ + 1];

static const char bin1[] = { 'B', 'I', 'N', 0, 1, 2, 'Q', 'Z', 'Q', 0 };
static const char bin2[] = { 'B', 'I', 'N', 0, 9, 8, 'X', 'W', 'X', 0 };

static char *in_dir(const char *name)
{
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
    return p[k];
}

static void put(const char *root, const char *rel, const void *data, size_t len)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    cr_assert_eq(cru_mkdir_p(p, 0755), 0, "%s", cru_err_msg());
    *slash = '/';
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static void put_s(const char *root, const char *rel, const char *text)
{
    put(root, rel, text, strlen(text));
}

static char *get(const char *root, const char *rel)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    struct cru_buf b = CRU_BUF_INIT;
    if (cru_file_read(p, 1 << 20, &b) < 0)
        return NULL;
    return cru_buf_detach(&b, NULL);
}

static bool exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

/* Stages the whole working tree (additions and deletions) and commits it on HEAD at TIME. */
static void commit_all(git_repository *repo, git_time_t time, git_oid *out)
{
    git_index *index;
    git_oid tree_id;
    git_tree *tree;
    git_signature *sig;
    git_commit *parent = NULL;
    git_oid head;
    cr_assert_eq(git_repository_index(&index, repo), 0);
    cr_assert_eq(git_index_add_all(index, NULL, 0, NULL, NULL), 0);
    cr_assert_eq(git_index_update_all(index, NULL, NULL, NULL), 0);
    cr_assert_eq(git_index_write(index), 0);
    cr_assert_eq(git_index_write_tree(&tree_id, index), 0);
    cr_assert_eq(git_tree_lookup(&tree, repo, &tree_id), 0);
    cr_assert_eq(git_signature_new(&sig, "Test", "test@example.com", time, 0), 0);
    if (git_reference_name_to_id(&head, repo, "HEAD") == 0)
        cr_assert_eq(git_commit_lookup(&parent, repo, &head), 0);
    const git_commit *parents[1] = { parent };
    cr_assert_eq(git_commit_create(out, repo, "HEAD", sig, sig, NULL, "commit", tree,
                                   parent ? 1 : 0, parents),
                 0, "%s", git_error_last()->message);
    git_commit_free(parent);
    git_signature_free(sig);
    git_tree_free(tree);
    git_index_free(index);
}

static void setup(void)
{
    strcpy(dir, "/tmp/crucible-test-gitws-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(src, sizeof(src), "%s/src", dir);
    git_libgit2_init();

    git_repository *repo;
    git_repository_init_options io;
    git_repository_init_options_init(&io, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    io.flags = GIT_REPOSITORY_INIT_MKPATH;
    io.initial_head = "main";
    cr_assert_eq(git_repository_init_ext(&repo, src, &io), 0);
    put_s(src, "a.txt", "one\n");
    put_s(src, "dir/b.txt", "bee\n");
    put_s(src, "keep.txt", "kept\n");
    put(src, "bin.dat", bin1, sizeof(bin1));
    put_s(src, ".gitignore", "*.log\n");
    commit_all(repo, 1000000000, &c1);

    git_object *obj;
    git_signature *sig;
    git_oid tag;
    git_reference *br;
    cr_assert_eq(git_object_lookup(&obj, repo, &c1, GIT_OBJECT_COMMIT), 0);
    cr_assert_eq(git_signature_new(&sig, "Test", "test@example.com", 1000000000, 0), 0);
    cr_assert_eq(git_tag_create(&tag, repo, "v1.0", obj, sig, "release", 0), 0);
    cr_assert_eq(git_branch_create(&br, repo, "first", (git_commit *)obj, 0), 0);
    git_reference_free(br);
    git_signature_free(sig);
    git_object_free(obj);

    put_s(src, "a.txt", "two\n");
    put_s(src, "c.txt", "later\n");
    commit_all(repo, 1000000100, &c2);
    git_repository_free(repo);
    git_oid_tostr(c1_hex, sizeof(c1_hex), &c1);
    git_oid_tostr(c2_hex, sizeof(c2_hex), &c2);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    git_libgit2_shutdown();
}

TestSuite(gitws, .init = setup, .fini = teardown);

/* DEST is at C1: its files, a detached HEAD at C1, and no object of the later commit C2. */
static void assert_at_c1(const char *dest)
{
    char *a = get(dest, "a.txt");
    cr_assert_str_eq(a, "one\n");
    free(a);
    char c_path[512];
    snprintf(c_path, sizeof(c_path), "%s/c.txt", dest);
    cr_assert(!exists(c_path), "a later commit's file");
    git_repository *repo;
    cr_assert_eq(git_repository_open(&repo, dest), 0);
    cr_assert_eq(git_repository_head_detached(repo), 1);
    git_oid head;
    cr_assert_eq(git_reference_name_to_id(&head, repo, "HEAD"), 0);
    cr_assert(git_oid_equal(&head, &c1));
    git_commit *later;
    cr_assert_neq(git_commit_lookup(&later, repo, &c2), 0, "the later commit must not be copied");
    git_status_options so;
    git_status_options_init(&so, GIT_STATUS_OPTIONS_VERSION);
    git_status_list *st;
    cr_assert_eq(git_status_list_new(&st, repo, &so), 0);
    cr_assert_eq(git_status_list_entrycount(st), 0, "the working tree is clean");
    git_status_list_free(st);
    git_repository_free(repo);
}

Test(gitws, checkout_full_id)
{
    cr_assert_eq(agt_git_checkout(src, c1_hex, in_dir("ws")), 0, "%s", cru_err_msg());
    assert_at_c1(in_dir("ws"));
    char *b = get(in_dir("ws"), "dir/b.txt");
    cr_assert_str_eq(b, "bee\n");
    free(b);
}

Test(gitws, checkout_short_id)
{
    char short_id[8];
    snprintf(short_id, sizeof(short_id), "%.7s", c1_hex);
    cr_assert_eq(agt_git_checkout(src, short_id, in_dir("ws")), 0, "%s", cru_err_msg());
    assert_at_c1(in_dir("ws"));
}

Test(gitws, checkout_branch_and_tag)
{
    cr_assert_eq(agt_git_checkout(src, "first", in_dir("ws")), 0, "%s", cru_err_msg());
    assert_at_c1(in_dir("ws"));
    cr_assert_eq(agt_git_checkout(src, "v1.0", in_dir("ws2")), 0, "%s", cru_err_msg());
    assert_at_c1(in_dir("ws2"));
    cr_assert_eq(agt_git_checkout(src, "main", in_dir("ws3")), 0, "%s", cru_err_msg());
    char *a = get(in_dir("ws3"), "a.txt"), *c = get(in_dir("ws3"), "c.txt");
    cr_assert_str_eq(a, "two\n");
    cr_assert_str_eq(c, "later\n");
    free(a);
    free(c);
}

Test(gitws, checkout_from_bare)
{
    /* A copy of src's .git marked bare: git_clone would do, but libgit2 1.5's clone leaks a
     * regex match block, which LeakSanitizer would pin on this test. */
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cp -r '%s/.git' '%s'", src, in_dir("bare.git"));
    cr_assert_eq(system(cmd), 0);
    git_repository *bare;
    git_config *cfg;
    cr_assert_eq(git_repository_open(&bare, in_dir("bare.git")), 0);
    cr_assert_eq(git_repository_config(&cfg, bare), 0);
    cr_assert_eq(git_config_set_bool(cfg, "core.bare", 1), 0);
    git_config_free(cfg);
    git_repository_free(bare);
    cr_assert_eq(git_repository_open(&bare, in_dir("bare.git")), 0);
    cr_assert(git_repository_is_bare(bare));
    git_repository_free(bare);
    cr_assert_eq(agt_git_checkout(in_dir("bare.git"), c1_hex, in_dir("ws")), 0, "%s",
                 cru_err_msg());
    assert_at_c1(in_dir("ws"));
}

Test(gitws, unknown_commit_leaves_nothing)
{
    const char *bad = "0123456789abcdef0123456789abcdef01234567";
    cr_assert_lt(agt_git_checkout(src, bad, in_dir("ws")), 0);
    cr_assert(strstr(cru_err_msg(), bad), "%s", cru_err_msg());
    cr_assert(strstr(cru_err_msg(), src), "%s", cru_err_msg());
    cr_assert(!exists(in_dir("ws")));
    cr_assert_lt(agt_git_checkout(src, "no-such-branch", in_dir("ws")), 0);
    cr_assert(!exists(in_dir("ws")));
    cr_assert_lt(agt_git_checkout(in_dir("nothing"), c1_hex, in_dir("ws")), 0);
    cr_assert(!exists(in_dir("ws")));
}

Test(gitws, existing_dest_refused_and_kept)
{
    put_s(dir, "ws/mine", "x");
    cr_assert_eq(agt_git_checkout(src, c1_hex, in_dir("ws")), CRU_EEXIST);
    cr_assert(exists(in_dir("ws/mine")), "an existing DEST is never removed");
    cr_assert(!exists(in_dir("ws/.git")));
}

Test(gitws, checkout_from_bundle_copies_only_the_history)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "git -C %s bundle create -q %s --all 2>/dev/null", src,
             in_dir("repo.bundle"));
    /* The git CLI makes the bundle, as a user would. */
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    cr_assert_eq(agt_git_checkout(in_dir("repo.bundle"), c1_hex, in_dir("ws")), 0, "%s",
                 cru_err_msg());
    char *a = get(in_dir("ws"), "a.txt");
    cr_assert_not_null(a);
    free(a);
    /* The later commit stayed in the bundle; a name from the bundle's refs also resolves. */
    git_repository *repo;
    git_commit *c;
    cr_assert_eq(git_repository_open(&repo, in_dir("ws")), 0);
    cr_expect_neq(git_commit_lookup(&c, repo, &c2), 0, "the later commit leaked");
    git_repository_free(repo);
    cr_assert_eq(agt_git_checkout(in_dir("repo.bundle"), "main", in_dir("ws2")), 0, "%s",
                 cru_err_msg());
    cr_assert_eq(git_repository_open(&repo, in_dir("ws2")), 0);
    cr_expect_eq(git_commit_lookup(&c, repo, &c2), 0);
    git_commit_free(c);
    git_repository_free(repo);
}

Test(gitws, broken_bundles_are_refused_and_leave_nothing)
{
    char text[256];
    /* A pack that is not one. */
    snprintf(text, sizeof(text), "# v2 git bundle\n%s refs/heads/main\n\nPACKgarbage", c2_hex);
    put_s(dir, "bad.bundle", text);
    cr_assert_lt(agt_git_checkout(in_dir("bad.bundle"), c1_hex, in_dir("ws")), 0);
    cr_assert(strstr(cru_err_msg(), "pack"), "%s", cru_err_msg());
    cr_assert(!exists(in_dir("ws")));
    /* A thin bundle (with a prerequisite) cannot be a whole workspace. */
    snprintf(text, sizeof(text), "# v2 git bundle\n-%s\n%s refs/heads/main\n\nPACK", c1_hex,
             c2_hex);
    put_s(dir, "thin.bundle", text);
    cr_assert_eq(agt_git_checkout(in_dir("thin.bundle"), c2_hex, in_dir("ws")), CRU_EUNSUPPORTED);
    cr_assert(strstr(cru_err_msg(), "prerequisite"), "%s", cru_err_msg());
    cr_assert(!exists(in_dir("ws")));
}

Test(gitws, bundle_header)
{
    struct agt_git_bundle *h = malloc(sizeof(*h));
    char text[512];
    snprintf(text, sizeof(text),
             "# v3 git bundle\n@object-format=sha1\n%s refs/heads/main\n%s HEAD\n\nPACK....",
             c2_hex, c1_hex);
    cr_assert_eq(agt_git_bundle_header(text, strlen(text), h), 0, "%s", cru_err_msg());
    cr_expect_eq(h->n_refs, 2);
    cr_expect_str_eq(h->refs[0].oid, c2_hex);
    cr_expect_str_eq(h->refs[0].name, "refs/heads/main");
    cr_expect_str_eq(h->refs[1].name, "HEAD");
    cr_expect_eq(memcmp(text + h->pack_offset, "PACK", 4), 0);

    static const struct {
        const char *text;
        int rc;
    } bad[] = {
        { "# v4 git bundle\n\nPACK", CRU_EPARSE },
        { "# v2 git bundle\n@object-format=sha1\n\nPACK", CRU_EPARSE },
        { "# v3 git bundle\n@object-format=sha256\n\nPACK", CRU_EUNSUPPORTED },
        { "# v3 git bundle\n@filter=blob:none\n\nPACK", CRU_EUNSUPPORTED },
        { "# v2 git bundle\nxyz refs/heads/main\n\nPACK", CRU_EPARSE },
        { "# v2 git bundle\n\nNOPE", CRU_EPARSE },
        { "# v2 git bundle\n", CRU_EPARSE },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(agt_git_bundle_header(bad[i].text, strlen(bad[i].text), h), bad[i].rc,
                     "case %zu: %s", i, cru_err_msg());
    free(h);
}

/* Diffs the workspace ws against c1, asserting success. */
static void diff_ws(struct cru_buf *patch, char ***files, size_t *n)
{
    cr_assert_eq(agt_git_diff(in_dir("ws"), c1_hex, patch, files, n), 0, "%s", cru_err_msg());
}

Test(gitws, diff_unchanged_is_empty)
{
    cr_assert_eq(agt_git_checkout(src, c1_hex, in_dir("ws")), 0, "%s", cru_err_msg());
    struct cru_buf patch = CRU_BUF_INIT;
    char **files;
    size_t n;
    diff_ws(&patch, &files, &n);
    cr_assert_eq(patch.len, 0, "%s", cru_buf_cstr(&patch));
    cr_assert_eq(n, 0);
    agt_git_files_free(files, n);
    cru_buf_free(&patch);
}

Test(gitws, diff_modified_added_deleted_ignored)
{
    cr_assert_eq(agt_git_checkout(src, c1_hex, in_dir("ws")), 0, "%s", cru_err_msg());
    put_s(in_dir("ws"), "a.txt", "one\nmore\n");
    put_s(in_dir("ws"), "new/sub/n.txt", "fresh\n");
    put_s(in_dir("ws"), "debug.log", "SECRET-LOG\n");
    cr_assert_eq(unlink(in_dir("ws/dir/b.txt")), 0);
    struct cru_buf patch = CRU_BUF_INIT;
    char **files;
    size_t n;
    diff_ws(&patch, &files, &n);
    const char *p = cru_buf_cstr(&patch);
    cr_assert(strstr(p, "+more\n"), "%s", p);
    cr_assert(strstr(p, "new file mode"), "%s", p);
    cr_assert(strstr(p, "+++ b/new/sub/n.txt\n@@ -0,0 +1 @@\n+fresh\n"), "%s", p);
    cr_assert(strstr(p, "deleted file mode"), "%s", p);
    cr_assert(strstr(p, "-bee\n"), "%s", p);
    cr_assert(!strstr(p, "debug.log") && !strstr(p, "SECRET-LOG"), "ignored file: %s", p);
    cr_assert(!strstr(p, ".git/"), "%s", p);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(files[0], "a.txt");
    cr_assert_str_eq(files[1], "dir/b.txt");
    cr_assert_str_eq(files[2], "new/sub/n.txt");
    agt_git_files_free(files, n);
    cru_buf_free(&patch);
}

Test(gitws, diff_binary_is_a_marker)
{
    cr_assert_eq(agt_git_checkout(src, c1_hex, in_dir("ws")), 0, "%s", cru_err_msg());
    put(in_dir("ws"), "bin.dat", bin2, sizeof(bin2));
    struct cru_buf patch = CRU_BUF_INIT;
    char **files;
    size_t n;
    diff_ws(&patch, &files, &n);
    const char *p = cru_buf_cstr(&patch);
    cr_assert(strstr(p, "Binary files a/bin.dat and b/bin.dat differ"), "%s", p);
    cr_assert_eq(strlen(p), patch.len, "no NUL byte of the content");
    cr_assert(!strstr(p, "QZQ") && !strstr(p, "XWX"), "no content: %s", p);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(files[0], "bin.dat");
    agt_git_files_free(files, n);
    cru_buf_free(&patch);
}

/* The strongest check: the patch, applied by libgit2 to a fresh checkout of the base, gives
 * the agent's tree, and the fresh tree's own diff is the same patch. */
Test(gitws, diff_applies_to_fresh_checkout)
{
    cr_assert_eq(agt_git_checkout(src, c1_hex, in_dir("ws")), 0, "%s", cru_err_msg());
    put_s(in_dir("ws"), "a.txt", "zero\none\n");
    put_s(in_dir("ws"), "dir/b.txt", "bee\nsee\n");
    put_s(in_dir("ws"), "new/sub/n.txt", "fresh\n");
    put_s(in_dir("ws"), "noeol.txt", "no newline");
    cr_assert_eq(unlink(in_dir("ws/keep.txt")), 0);
    struct cru_buf patch = CRU_BUF_INIT;
    char **files;
    size_t n;
    diff_ws(&patch, &files, &n);
    cr_assert_eq(n, 5);
    agt_git_files_free(files, n);

    cr_assert_eq(agt_git_checkout(src, c1_hex, in_dir("fresh")), 0, "%s", cru_err_msg());
    git_repository *repo;
    git_diff *d;
    cr_assert_eq(git_repository_open(&repo, in_dir("fresh")), 0);
    cr_assert_eq(git_diff_from_buffer(&d, patch.data, patch.len), 0, "%s",
                 git_error_last()->message);
    cr_assert_eq(git_apply(repo, d, GIT_APPLY_LOCATION_WORKDIR, NULL), 0, "%s",
                 git_error_last()->message);
    git_diff_free(d);
    git_repository_free(repo);

    const char *names[] = { "a.txt", "dir/b.txt", "new/sub/n.txt", "noeol.txt" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *want = get(in_dir("ws"), names[i]), *got = get(in_dir("fresh"), names[i]);
        cr_assert_not_null(got, "%s", names[i]);
        cr_assert_str_eq(got, want, "%s", names[i]);
        free(want);
        free(got);
    }
    cr_assert(!exists(in_dir("fresh/keep.txt")));

    struct cru_buf again = CRU_BUF_INIT;
    cr_assert_eq(agt_git_diff(in_dir("fresh"), c1_hex, &again, &files, &n), 0, "%s", cru_err_msg());
    cr_assert_str_eq(cru_buf_cstr(&again), cru_buf_cstr(&patch));
    agt_git_files_free(files, n);
    cru_buf_free(&again);
    cru_buf_free(&patch);
}

Test(gitws, patch_bound_is_an_error_not_a_truncation)
{
    cr_assert_eq(agt_git_checkout(src, c1_hex, in_dir("ws")), 0, "%s", cru_err_msg());
    put_s(in_dir("ws"), "a.txt", "one\ntwo\nthree\n");
    struct cru_buf full = CRU_BUF_INIT;
    char **files;
    size_t n;
    diff_ws(&full, &files, &n);
    agt_git_files_free(files, n);

    struct cru_buf patch = CRU_BUF_INIT;
    cru_buf_puts(&patch, "before");
    cr_assert_eq(agt_git_diff_max(in_dir("ws"), c1_hex, full.len - 1, &patch, &files, &n),
                 CRU_ELIMIT);
    cr_assert_str_eq(cru_buf_cstr(&patch), "before", "nothing may be appended on failure");
    cr_assert_null(files);
    cr_assert_eq(n, 0);
    cr_assert(strstr(cru_err_msg(), "larger than"), "%s", cru_err_msg());
    cr_assert_eq(agt_git_diff_max(in_dir("ws"), c1_hex, full.len, &patch, &files, &n), 0,
                 "exactly the bound is fine: %s", cru_err_msg());
    cr_assert_eq(patch.len, 6 + full.len);
    cr_assert_str_eq(patch.data + 6, full.data);
    agt_git_files_free(files, n);
    cru_buf_free(&patch);
    cru_buf_free(&full);
}

Test(gitws, diff_unknown_base_fails)
{
    cr_assert_eq(agt_git_checkout(src, c1_hex, in_dir("ws")), 0, "%s", cru_err_msg());
    struct cru_buf patch = CRU_BUF_INIT;
    char **files;
    size_t n;
    cr_assert_lt(agt_git_diff(in_dir("ws"), c2_hex, &patch, &files, &n), 0);
    cr_assert_null(files);
    cr_assert_eq(patch.len, 0);
}

/* The agent owns .git: a core.worktree pointing elsewhere must not make the diff read there,
 * and a .git file ("gitdir: ...") is refused. */
Test(gitws, diff_stays_in_workdir)
{
    cr_assert_eq(agt_git_checkout(src, c1_hex, in_dir("ws")), 0, "%s", cru_err_msg());
    put_s(dir, "outside/secret.txt", "HOST-SECRET\n");
    git_repository *repo;
    git_config *cfg;
    cr_assert_eq(git_repository_open(&repo, in_dir("ws")), 0);
    cr_assert_eq(git_repository_config(&cfg, repo), 0);
    cr_assert_eq(git_config_set_string(cfg, "core.worktree", in_dir("outside")), 0);
    git_config_free(cfg);
    git_repository_free(repo);
    /* Positive control: a plain open does follow core.worktree. */
    cr_assert_eq(git_repository_open(&repo, in_dir("ws")), 0);
    cr_assert(strstr(git_repository_workdir(repo), "outside"), "%s", git_repository_workdir(repo));
    git_repository_free(repo);

    struct cru_buf patch = CRU_BUF_INIT;
    char **files;
    size_t n;
    diff_ws(&patch, &files, &n);
    cr_assert(!strstr(cru_buf_cstr(&patch), "HOST-SECRET"), "%s", cru_buf_cstr(&patch));
    cr_assert_eq(n, 0, "%s", cru_buf_cstr(&patch));
    agt_git_files_free(files, n);

    cr_assert_eq(rename(in_dir("ws/.git"), in_dir("real.git")), 0);
    char text[300];
    snprintf(text, sizeof(text), "gitdir: %s\n", in_dir("real.git"));
    put_s(in_dir("ws"), ".git", text);
    cr_assert_eq(agt_git_diff(in_dir("ws"), c1_hex, &patch, &files, &n), CRU_EUNSAFE);
    cru_buf_free(&patch);
}
