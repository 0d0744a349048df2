/* cli/images: `crucible images list | show`. */
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "agent/check.h"
#include "agent/image.h"
#include "cli/cli.h"
#include "lib/err.h"

/* Loads the image in DIR; a broken one has its problems printed to stderr. */
static int load(const char *dir, struct agt_image **img)
{
    struct cru_buf problems = CRU_BUF_INIT;
    int rc = agt_image_load(dir, img, &problems);
    if (problems.len)
        fputs(cru_buf_cstr(&problems), stderr);
    cru_buf_free(&problems);
    return rc;
}

static json_t *image_json(const struct agt_image *img, bool full)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", img->id, "kind",
                  agt_image_kind_name(img->kind), "title", img->title, "rootfs",
                  img->rootfs_tar ? "tar" : "host", "workspace", agt_ws_kind_name(img->ws_kind));
    if (!o || !full)
        return o;
    json_t *setup = json_array(), *checks = json_array(), *prot = json_array();
    for (size_t i = 0; setup && i < img->n_setup; i++)
        json_array_append_new(setup, json_string(img->setup[i]));
    for (size_t i = 0; checks && i < img->reward->n_checks; i++) {
        const struct rwd_check *c = &img->reward->checks[i];
        json_array_append_new(checks, json_pack("{s:s, s:s, s:f, s:I}", "name", c->name, "kind",
                                                rwd_kind_name(c->kind), "weight", c->weight,
                                                "timeout_ms", (json_int_t)c->timeout_ms));
    }
    for (size_t i = 0; prot && i < img->reward->n_protected; i++)
        json_array_append_new(prot, json_string(img->reward->protected_paths[i]));
    json_object_set_new(o, "dir", json_string(img->dir));
    json_object_set_new(o, "prompt", json_string(img->prompt));
    if (img->rootfs_tar)
        json_object_set_new(o, "rootfs_tar", json_string(img->rootfs_tar));
    json_object_set_new(o, "workspace_path", json_string(img->ws_path));
    if (img->ws_commit)
        json_object_set_new(o, "commit", json_string(img->ws_commit));
    json_object_set_new(o, "setup", setup);
    json_object_set_new(o, "limits",
                        json_pack("{s:I, s:I, s:I, s:I, s:I}", "wall_ms", (json_int_t)img->wall_ms,
                                  "turns", (json_int_t)img->turns, "memory_bytes",
                                  (json_int_t)img->memory_bytes, "disk_bytes",
                                  (json_int_t)img->disk_bytes, "disk_inodes",
                                  (json_int_t)img->disk_inodes));
    json_object_set_new(o, "reward",
                        json_pack("{s:s, s:o, s:b, s:o}", "aggregate",
                                  rwd_aggregate_name(img->reward->aggregate), "protected", prot,
                                  "protected_fail", img->reward->protected_fail, "checks", checks));
    json_object_set_new(o, "hidden", img->hidden_dir ? json_string(img->hidden_dir) : json_null());
    json_object_set_new(o, "solution", json_string(img->solution));
    return o;
}

static int list_run(const char *images, bool json)
{
    char **ids = NULL;
    size_t n = 0, broken = 0;
    int rc = agt_images_list(images, &ids, &n);
    if (rc < 0)
        return cli_fail("images list");
    json_t *arr = json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        char *dir = NULL;
        struct agt_image *img = NULL;
        if (agt_image_find(images, ids[i], &dir) < 0 || load(dir, &img) < 0) {
            fprintf(stderr, "crucible: images list: %s\n", cru_err_msg());
            broken++;
        } else if (json) {
            json_array_append_new(arr, image_json(img, false));
        } else {
            printf("%-28s %-7s %s\n", img->id, agt_image_kind_name(img->kind), img->title);
        }
        agt_image_free(img);
        free(dir);
    }
    agt_images_list_free(ids, n);
    if (json && cli_print_json(arr) < 0)
        return cli_fail("images list");
    if (broken) {
        fprintf(stderr, "crucible: images list: %zu of %zu images do not load\n", broken, n);
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

static void print_image(const struct agt_image *img)
{
    printf("id:         %s\nkind:       %s\ntitle:      %s\nfolder:     %s\n", img->id,
           agt_image_kind_name(img->kind), img->title, img->dir);
    printf("rootfs:     %s%s\n", img->rootfs_tar ? "tar:" : "host",
           img->rootfs_tar ? img->rootfs_tar : "");
    printf("workspace:  %s %s%s%s\n", agt_ws_kind_name(img->ws_kind), img->ws_path,
           img->ws_commit ? " at " : "", img->ws_commit ? img->ws_commit : "");
    for (size_t i = 0; i < img->n_setup; i++)
        printf("setup:      %s\n", img->setup[i]);
    printf("limits:     wall %llus, %llu turns, memory %llu MiB, disk %llu MiB\n",
           (unsigned long long)(img->wall_ms / 1000), (unsigned long long)img->turns,
           (unsigned long long)(img->memory_bytes >> 20),
           (unsigned long long)(img->disk_bytes >> 20));
    printf("reward:     %s of %zu check%s\n", rwd_aggregate_name(img->reward->aggregate),
           img->reward->n_checks, img->reward->n_checks == 1 ? "" : "s");
    for (size_t i = 0; i < img->reward->n_checks; i++) {
        const struct rwd_check *c = &img->reward->checks[i];
        printf("  - %-11s %s (weight %g, timeout %llus)\n", rwd_kind_name(c->kind), c->name,
               c->weight, (unsigned long long)(c->timeout_ms / 1000));
    }
    for (size_t i = 0; i < img->reward->n_protected; i++)
        printf("protected:  %s%s\n", img->reward->protected_paths[i],
               img->reward->protected_fail ? " (a change fails every check)" : "");
    printf("hidden:     %s\nsolution:   %s\n\n%s\n", img->hidden_dir ? img->hidden_dir : "(none)",
           img->solution, img->prompt);
}

static int show_run(const char *images, const char *arg, bool json)
{
    char *dir = NULL;
    struct agt_image *img = NULL;
    if (agt_image_find(images, arg, &dir) < 0 || load(dir, &img) < 0) {
        free(dir);
        /* An image with problems is a failed check of the image (1), not an error of ours. */
        int status = cli_fail("images show");
        return cru_err_code() == CRU_EINVAL ? CLI_EXIT_FAILED : status;
    }
    int rc = CLI_EXIT_OK;
    if (json) {
        if (cli_print_json(image_json(img, true)) < 0)
            rc = cli_fail("images show");
    } else {
        print_image(img);
    }
    agt_image_free(img);
    free(dir);
    return rc;
}

/* `images check`: each image's oracle and no-op, N at a time. */
struct check_job {
    const char *images;
    char **ids;
    size_t n;
    atomic_size_t next, done;
    struct agt_image_check *res;
    char **load_errors;
    pthread_mutex_t lock; /* progress lines */
    bool progress;
};

static void check_one(struct check_job *j, size_t i)
{
    char *dir = NULL;
    struct agt_image *img = NULL;
    struct cru_buf problems = CRU_BUF_INIT;
    if (agt_image_find(j->images, j->ids[i], &dir) < 0 ||
        agt_image_load(dir, &img, &problems) < 0) {
        /* The first problem says most; `images show` prints them all. */
        const char *first = problems.len ? cru_buf_cstr(&problems) : cru_err_msg();
        size_t n = strcspn(first, "\n");
        j->load_errors[i] = strndup(first, n);
    } else {
        agt_image_check(img, NULL, &j->res[i]);
    }
    size_t done = atomic_fetch_add(&j->done, 1) + 1;
    if (j->progress) {
        const struct agt_image_check *r = &j->res[i];
        pthread_mutex_lock(&j->lock);
        if (r->ran)
            fprintf(stderr, "[%zu/%zu] %s: oracle %.3f, no-op %.3f%s\n", done, j->n, j->ids[i],
                    r->oracle, r->noop, r->pass ? "" : "  FAILED");
        else
            fprintf(stderr, "[%zu/%zu] %s: FAILED\n", done, j->n, j->ids[i]);
        pthread_mutex_unlock(&j->lock);
    }
    agt_image_free(img);
    cru_buf_free(&problems);
    free(dir);
}

static void *check_worker(void *arg)
{
    struct check_job *j = arg;
    for (size_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n;)
        check_one(j, i);
    return NULL;
}

static int check_run(const char *images, char **args, size_t n_args, bool json, long jobs)
{
    char **ids = NULL;
    size_t n = 0;
    if (n_args == 0) {
        if (agt_images_list(images, &ids, &n) < 0)
            return cli_fail("images check");
    } else {
        ids = calloc(n_args, sizeof(char *));
        for (size_t i = 0; ids && i < n_args; i++)
            if ((ids[i] = strdup(args[i])))
                n++;
        if (!ids || n != n_args) {
            agt_images_list_free(ids, n);
            cru_err_set(CRU_ENOMEM, "out of memory");
            return cli_fail("images check");
        }
    }
    struct check_job j = { .images = images, .ids = ids, .n = n, .progress = isatty(2) != 0 };
    j.res = calloc(n ? n : 1, sizeof(*j.res));
    j.load_errors = calloc(n ? n : 1, sizeof(char *));
    pthread_mutex_init(&j.lock, NULL);
    if (!j.res || !j.load_errors) {
        cru_err_set(CRU_ENOMEM, "out of memory");
        return cli_fail("images check");
    }
    size_t n_threads = (size_t)jobs < n ? (size_t)jobs : n;
    pthread_t *th = calloc(n_threads ? n_threads : 1, sizeof(*th));
    size_t started = 0;
    for (; th && started < n_threads; started++)
        if (pthread_create(&th[started], NULL, check_worker, &j) != 0)
            break;
    if (started == 0)
        check_worker(&j);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);

    size_t failed = 0;
    json_t *arr = json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        const struct agt_image_check *r = &j.res[i];
        const char *err = j.load_errors[i] ? j.load_errors[i] : r->error;
        failed += !r->pass;
        if (json) {
            json_t *o = json_pack("{s:s, s:b}", "id", ids[i], "pass", r->pass);
            if (r->ran) {
                json_object_set_new(o, "oracle", json_real(r->oracle));
                json_object_set_new(o, "noop", json_real(r->noop));
                json_object_set_new(o, "oracle_result", rwd_result_json(&r->oracle_res));
                json_object_set_new(o, "noop_result", rwd_result_json(&r->noop_res));
            } else {
                json_object_set_new(o, "oracle", json_null());
                json_object_set_new(o, "noop", json_null());
                json_object_set_new(o, "error", json_string(err ? err : "unknown error"));
            }
            json_array_append_new(arr, o);
        } else if (r->ran) {
            printf("%-4s %-28s oracle %.3f  no-op %.3f\n", r->pass ? "ok" : "FAIL", ids[i],
                   r->oracle, r->noop);
            /* Say why: the oracle's failing checks, or that the no-op is already perfect. */
            for (size_t k = 0; !r->pass && k < r->oracle_res.n_checks; k++)
                if (!r->oracle_res.checks[k].passed)
                    printf("       oracle: %s: %s\n", r->oracle_res.checks[k].name,
                           r->oracle_res.checks[k].message);
            if (!r->pass && r->noop >= 1.0)
                printf("       no-op: the untouched workspace already scores 1\n");
        } else {
            printf("FAIL %-28s %s\n", ids[i], err ? err : "unknown error");
        }
    }
    int rc = CLI_EXIT_OK;
    if (json && cli_print_json(arr) < 0)
        rc = cli_fail("images check");
    else if (!json)
        printf("%zu image%s: %zu passed, %zu failed\n", n, n == 1 ? "" : "s", n - failed, failed);
    for (size_t i = 0; i < n; i++) {
        agt_image_check_free(&j.res[i]);
        free(j.load_errors[i]);
    }
    free(j.res);
    free(j.load_errors);
    pthread_mutex_destroy(&j.lock);
    agt_images_list_free(ids, n);
    if (rc == CLI_EXIT_OK && failed)
        rc = CLI_EXIT_FAILED;
    return rc;
}

static int images_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'Z' },
        { "images", required_argument, NULL, 'I' },
        { "jobs", required_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *images_opt = NULL;
    bool json = false;
    long jobs = 1;
    int c;

    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":hj:", opts, NULL)) != -1) {
        switch (c) {
        case 'j': {
            char *end;
            jobs = strtol(optarg, &end, 10);
            if (*end || jobs < 1 || jobs > 256)
                return cli_usage("images", "-j: '%s' is not a number of jobs from 1 to 256",
                                 optarg);
            break;
        }
        case 'Z':
            json = true;
            break;
        case 'I':
            images_opt = optarg;
            break;
        case 'h':
            cli_print_help(&cli_cmd_images, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("images", c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage("images", "a subcommand is needed: list or show");
    const char *sub = argv[optind++];
    char *images = NULL;
    bool is_list = strcmp(sub, "list") == 0, is_show = strcmp(sub, "show") == 0;
    if (strcmp(sub, "check") == 0) {
        /* Ids name images of the folder; a folder path is checked where it is. */
        if (agt_images_dir(images_opt, &images) < 0)
            return cli_fail("images check");
        int rc = check_run(images, argv + optind, (size_t)(argc - optind), json, jobs);
        free(images);
        return rc;
    }
    if (!is_list && !is_show)
        return cli_usage("images", "unknown subcommand '%s' (list, show, check)", sub);
    if (is_list && optind < argc)
        return cli_usage("images", "unexpected argument '%s'", argv[optind]);
    if (is_show && argc - optind != 1)
        return cli_usage("images", "show takes one image id or folder");
    /* A path given to show needs no images folder. */
    if (!(is_show && strchr(argv[optind], '/')) && agt_images_dir(images_opt, &images) < 0)
        return cli_fail("images");
    int rc = is_list ? list_run(images, json) : show_run(images, argv[optind], json);
    free(images);
    return rc;
}

const struct cli_command cli_cmd_images = {
    .name = "images",
    .summary = "list task images, show one, or check that they are sound",
    .help = "usage: crucible images list [--json] [--images DIR]\n"
            "       crucible images show ID|FOLDER [--json] [--images DIR]\n"
            "       crucible images check [ID|FOLDER...] [--json] [-j N] [--images DIR]\n"
            "\n"
            "list   loads every image of the images folder and prints its id, kind and title;\n"
            "       images that do not load have their problems printed on stderr, one\n"
            "       'FILE:LINE:COLUMN: FIELD: what' a line, and make the exit status 1.\n"
            "show   loads one image (an id, or a folder path containing '/') and prints it as\n"
            "       the loader understood it: rootfs, workspace, setup, limits, reward checks,\n"
            "       hidden files, solution, prompt.\n"
            "check  for each image (default: all), scores the reference solution (the oracle:\n"
            "       setup, then solution/ applied) and the untouched workspace (the no-op) in\n"
            "       fresh sandboxes; an image passes when the oracle scores 1 and the no-op less.\n"
            "       Exit status 1 when any image fails. Runs rootless without root.\n"
            "\n"
            "Options:\n"
            "  --json         list: a JSON array of {id, kind, title, rootfs, workspace};\n"
            "                 show: one JSON object with every field;\n"
            "                 check: a JSON array of {id, pass, oracle, noop, oracle_result,\n"
            "                 noop_result} (each result with its per-check breakdown), or\n"
            "                 {id, pass, oracle: null, noop: null, error}\n"
            "  -j, --jobs N   check: images checked at once (default 1)\n"
            "  --images DIR   the images folder (default: $CRUCIBLE_IMAGES, else images/ next\n"
            "                 to the crucible executable, else ./images)\n"
            "  -h, --help     show this help\n"
            "\n"
            "The image format is described in docs/images.md.\n",
    .run = images_run,
};
