/* cli/tokenize: `crucible tokenize --tokenizer DIR [--decode] [--json] [--jsonl]`. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fs.h"
#include "lib/json.h"
#include "lib/str.h"
#include "model/tokenizer.h"

/* The most read from stdin. */
#define TOKENIZE_INPUT_MAX ((size_t)1 << 30)

static int read_stdin(struct cru_buf *b)
{
    for (;;) {
        size_t got;
        int rc = cru_buf_reserve(b, 65536);
        if (rc < 0)
            return rc;
        if ((rc = cru_read_some(0, b->data + b->len, 65536, &got, "stdin")) < 0)
            return rc;
        if (got == 0)
            return 0;
        b->len += got;
        b->data[b->len] = '\0';
        if (b->len > TOKENIZE_INPUT_MAX)
            return cru_err_set(CRU_ELIMIT, "stdin holds more than %zu bytes", TOKENIZE_INPUT_MAX);
    }
}

static void print_ids(const struct tok_ids *ids, bool json)
{
    if (json)
        putchar('[');
    for (size_t i = 0; i < ids->n; i++)
        printf(json ? "%s%d" : "%s%d", i ? (json ? "," : " ") : "", (int)ids->v[i]);
    puts(json ? "]" : "");
}

/* Ids separated by white space or commas, optionally inside [ ]. */
static int parse_ids(const char *s, size_t len, struct tok_ids *ids, const char *where)
{
    size_t i = 0;
    bool open = false;
    while (i < len && strchr(" \t\r\n", s[i]))
        i++;
    if (i < len && s[i] == '[') {
        open = true;
        i++;
    }
    while (i < len) {
        if (strchr(" \t\r\n,", s[i])) {
            i++;
            continue;
        }
        if (s[i] == ']' && open) {
            open = false;
            i++;
            continue;
        }
        char num[16];
        size_t k = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && k < sizeof(num) - 1)
            num[k++] = s[i++];
        num[k] = '\0';
        uint64_t v;
        if (k == 0 || (i < len && !strchr(" \t\r\n,]", s[i])) ||
            cru_parse_u64(num, 0, INT32_MAX, &v) < 0)
            return cru_err_set(CRU_EINVAL, "%s: expected token ids (integers from 0) at byte %zu",
                               where, i);
        int rc = tok_ids_push(ids, (int32_t)v);
        if (rc < 0)
            return rc;
    }
    return open ? cru_err_set(CRU_EINVAL, "%s: an unclosed '['", where) : 0;
}

static int encode_all(const struct tok *t, const struct cru_buf *in, bool json)
{
    struct tok_ids ids = TOK_IDS_INIT;
    int rc = tok_encode(t, in->data ? in->data : "", in->len, &ids);
    if (rc == 0)
        print_ids(&ids, json);
    tok_ids_free(&ids);
    return rc;
}

static int decode_all(const struct tok *t, const struct cru_buf *in, bool json)
{
    struct tok_ids ids = TOK_IDS_INIT;
    struct cru_buf text = CRU_BUF_INIT, lossy = CRU_BUF_INIT;
    int rc = parse_ids(in->data ? in->data : "", in->len, &ids, "stdin");
    if (rc == 0)
        rc = tok_decode(t, ids.v, ids.n, &text);
    if (rc == 0 && json) {
        if ((rc = tok_utf8_lossy(text.data ? text.data : "", text.len, &lossy)) == 0)
            rc = cli_print_json(json_stringn(cru_buf_cstr(&lossy), lossy.len));
    } else if (rc == 0) {
        fwrite(text.data ? text.data : "", 1, text.len, stdout);
    }
    tok_ids_free(&ids);
    cru_buf_free(&text);
    cru_buf_free(&lossy);
    return rc;
}

/* One JSON value a line: strings to arrays of ids, or (DECODE) arrays of ids to strings. */
static int jsonl_all(const struct tok *t, const struct cru_buf *in, bool decode)
{
    const char *s = in->data ? in->data : "";
    size_t line = 0;
    int rc = 0;
    for (size_t at = 0; at < in->len && rc == 0;) {
        const char *nl = memchr(s + at, '\n', in->len - at);
        size_t end = nl ? (size_t)(nl - s) : in->len;
        char where[64];
        json_t *v = NULL;
        struct tok_ids ids = TOK_IDS_INIT;
        struct cru_buf text = CRU_BUF_INIT, lossy = CRU_BUF_INIT;
        line++;
        snprintf(where, sizeof(where), "stdin line %zu", line);
        if (end == at) {
            at = end + 1;
            continue;
        }
        if ((rc = cru_json_parse(&v, s + at, end - at, where)) < 0) {
        } else if (!decode) {
            if (!json_is_string(v))
                rc = cru_err_set(CRU_EINVAL, "%s: expected a JSON string, got %s", where,
                                 cru_json_type_name(v));
            else if ((rc = tok_encode(t, json_string_value(v), json_string_length(v), &ids)) == 0)
                print_ids(&ids, true);
        } else {
            size_t i;
            json_t *x;
            if (!json_is_array(v))
                rc = cru_err_set(CRU_EINVAL, "%s: expected a JSON array of ids, got %s", where,
                                 cru_json_type_name(v));
            json_array_foreach(v, i, x)
            {
                if (rc < 0)
                    break;
                if (!json_is_integer(x) || json_integer_value(x) < 0 ||
                    json_integer_value(x) > INT32_MAX)
                    rc = cru_err_set(CRU_EINVAL, "%s: element %zu is not a token id", where, i);
                else
                    rc = tok_ids_push(&ids, (int32_t)json_integer_value(x));
            }
            if (rc == 0 && (rc = tok_decode(t, ids.v, ids.n, &text)) == 0 &&
                (rc = tok_utf8_lossy(cru_buf_cstr(&text), text.len, &lossy)) == 0)
                rc = cli_print_json(json_stringn(cru_buf_cstr(&lossy), lossy.len));
        }
        json_decref(v);
        tok_ids_free(&ids);
        cru_buf_free(&text);
        cru_buf_free(&lossy);
        at = end + 1;
    }
    return rc;
}

static int tokenize_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "tokenizer", required_argument, NULL, 't' },
        { "decode", no_argument, NULL, 'd' },
        { "json", no_argument, NULL, 'j' },
        { "jsonl", no_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL;
    bool decode = false, json = false, jsonl = false;
    int c;

    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":hdt:", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            dir = optarg;
            break;
        case 'd':
            decode = true;
            break;
        case 'j':
            json = true;
            break;
        case 'l':
            jsonl = true;
            break;
        case 'h':
            cli_print_help(&cli_cmd_tokenize, stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("tokenize", c, argv);
        }
    }
    if (optind < argc)
        return cli_usage("tokenize", "unexpected argument '%s'", argv[optind]);
    if (!dir)
        return cli_usage("tokenize", "--tokenizer DIR is required");
    if (json && jsonl)
        return cli_usage("tokenize", "--json and --jsonl exclude each other");

    struct tok *t = NULL;
    struct cru_buf in = CRU_BUF_INIT;
    int rc = tok_load(&t, dir);
    if (rc == 0)
        rc = read_stdin(&in);
    if (rc == 0)
        rc = jsonl    ? jsonl_all(t, &in, decode)
             : decode ? decode_all(t, &in, json)
                      : encode_all(t, &in, json);
    tok_free(t);
    cru_buf_free(&in);
    return rc < 0 ? cli_fail("tokenize") : CLI_EXIT_OK;
}

const struct cli_command cli_cmd_tokenize = {
    .name = "tokenize",
    .summary = "turn text into token ids and back with a model's tokenizer",
    .help = "usage: crucible tokenize --tokenizer DIR [--decode] [--json | --jsonl]\n"
            "\n"
            "Encodes the text on stdin with DIR/tokenizer.json (a HuggingFace byte-level BPE\n"
            "tokenizer) and prints the ids on one line, separated by spaces. Added tokens in\n"
            "the text ('<|im_end|>') become their ids; nothing is added around the text.\n"
            "Invalid UTF-8 is read as U+FFFD, as Python's decode(errors='replace') reads it.\n"
            "\n"
            "Options:\n"
            "  -t, --tokenizer DIR  the folder holding tokenizer.json (required)\n"
            "  -d, --decode         the other way: ids on stdin (separated by spaces, newlines\n"
            "                       or commas, optionally in [ ]) to their exact bytes\n"
            "  --json               print a JSON array of ids (with --decode: a JSON string, in\n"
            "                       which bytes that are not valid UTF-8 become U+FFFD)\n"
            "  --jsonl              one JSON string a line in, one JSON array of ids a line out\n"
            "                       (with --decode: arrays in, strings out); empty lines are\n"
            "                       skipped\n"
            "  -h, --help           show this help\n"
            "\n"
            "Exit status: 0 success, 2 usage error, 3 a tokenizer that does not load or input\n"
            "that is not what the mode expects (the message names the line and position).\n",
    .run = tokenize_run,
};
