/* recorder/writer: builds records with msgpack-c, frames and checksums them, and appends them
 * to a trajectory file so that neither a crash nor a full disk leaves a partial record that
 * looks whole, and concurrent episodes never interleave. It knows the token-exact rules of
 * branches (lengths and forks) but nothing of tokenizers or models.
 */
#include "recorder/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/hash.h"
#include "lib/log.h"
#include "lib/str.h"
#include "recorder/reader.h"

#define DEFAULT_BUFFER ((size_t)1 << 20)

/* The records of an episode that ended while another held the file, waiting their turn. */
struct pending {
    struct pending *next;
    struct cru_buf data;
};

struct rec_file {
    pthread_mutex_t lock;
    int fd;
    char *path;
    enum rec_sync sync;
    size_t buffer;
    struct rec_io io;
    void (*on_record)(void *ctx, const uint8_t *payload, size_t len);
    void *on_record_ctx;
    uint64_t size;              /* bytes on file, all of complete records */
    struct rec_episode *owner;  /* the episode streaming to the file, or NULL */
    struct pending *queue;      /* finished episodes waiting, oldest first */
    struct pending **queue_end; /* where the next one goes */
    int failed;                 /* the first write error; every later write returns it */
    char *failure;
    unsigned refs; /* the opener's, plus one per episode not yet freed */
    bool closed;
};

struct rec_episode {
    struct rec_file *f;
    char *id;
    uint64_t seq;
    struct cru_buf buf; /* framed records not yet written */
    uint64_t *branch_len;
    uint32_t n_branches;
    bool ended;
    bool has_reward;
    double reward;
    uint64_t start_ns;
    /* Totals for the end record. */
    uint64_t model_calls, tool_calls, prompt_tokens, completion_tokens, forks;
};

static ssize_t sys_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
    (void)ctx;
    return pwrite(fd, buf, n, off);
}

static int sys_fsync(void *ctx, int fd)
{
    (void)ctx;
    return fsync(fd);
}

/* Latches the first failure: the file accepts nothing more. Called with the lock held. */
static int fail(struct rec_file *f, int code)
{
    if (!f->failed) {
        f->failed = code;
        f->failure = strdup(cru_err_msg());
    }
    return code;
}

static int failed(const struct rec_file *f)
{
    return cru_err_set(f->failed, "%s", f->failure ? f->failure : "an earlier write failed");
}

/* Appends LEN bytes at the end of the file. A short write is retried; an error cuts the file
 * back to its last complete record, so the bytes that did land cannot pass for a record. */
static int file_write(struct rec_file *f, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t n = f->io.pwrite(f->io.ctx, f->fd, p + done, len - done, (off_t)(f->size + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            int saved = errno;
            bool cut = ftruncate(f->fd, (off_t)f->size) == 0;
            errno = saved;
            cru_err_sys("writing %s", f->path);
            cru_err_wrap(cru_err_code(),
                         "%zu bytes of records were not written; the file %s after its last "
                         "complete record, at byte %llu",
                         len, cut ? "was cut back to end" : "may hold a torn tail",
                         (unsigned long long)f->size);
            return fail(f, cru_err_code());
        }
        done += (size_t)n;
    }
    f->size += len;
    return 0;
}

static int file_sync(struct rec_file *f)
{
    if (f->sync == REC_SYNC_NONE)
        return 0;
    if (f->io.fsync(f->io.ctx, f->fd) != 0) {
        cru_err_sys("fsync of %s", f->path);
        return fail(f, cru_err_code());
    }
    return 0;
}

/* Writes and frees the queue of finished episodes. Called with the lock held and no owner. */
static int drain(struct rec_file *f)
{
    int rc = 0;
    while (f->queue) {
        struct pending *p = f->queue;
        f->queue = p->next;
        if (rc == 0 && !f->failed) {
            rc = file_write(f, p->data.data, p->data.len);
            if (rc == 0)
                rc = file_sync(f);
        }
        cru_buf_free(&p->data);
        free(p);
    }
    f->queue_end = &f->queue;
    return rc;
}

static int write_header(struct rec_file *f)
{
    uint8_t hdr[REC_HEADER_LEN];
    rec_header_make(hdr);
    return file_write(f, hdr, sizeof(hdr));
}

/* For REC_APPEND: the offset after the last complete record of the existing file, cutting off
 * a torn tail (with a warning) so that new records follow whole ones. */
static int append_offset(struct rec_file *f)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return cru_err_sys("%s", f->path);
    if (st.st_size == 0)
        return write_header(f);
    int dupfd = dup(f->fd);
    FILE *in = dupfd >= 0 ? fdopen(dupfd, "rb") : NULL;
    if (!in) {
        if (dupfd >= 0)
            close(dupfd);
        return cru_err_sys("%s", f->path);
    }
    struct rec_reader *r = NULL;
    struct rec_record rec;
    int rc = rec_reader_open_stream(&r, in, f->path);
    if (rc == 0) {
        while ((rc = rec_reader_next(r, &rec)) > 0)
            ;
        if (rc == 0 || rec_reader_problem(r) == REC_TORN) {
            uint64_t good = rec_reader_good_offset(r);
            rc = 0;
            if ((uint64_t)st.st_size > good) {
                cru_warn("%s: cutting off a torn tail of %llu bytes after byte %llu", f->path,
                         (unsigned long long)st.st_size - good, (unsigned long long)good);
                if (ftruncate(f->fd, (off_t)good) < 0)
                    rc = cru_err_sys("cutting the torn tail of %s", f->path);
            }
            f->size = good;
        }
    }
    if (rc < 0)
        rc = cru_err_wrap(rc, "cannot append to %s", f->path);
    rec_reader_free(r);
    fclose(in);
    return rc;
}

int rec_file_open(struct rec_file **out, const char *path, const struct rec_file_opts *opts)
{
    struct rec_file_opts def = REC_FILE_OPTS_INIT;
    if (!opts)
        opts = &def;
    if (opts->version != REC_FILE_OPTS_VERSION)
        return cru_err_set(CRU_EINVAL, "rec_file_opts version %d (expected %d)", opts->version,
                           REC_FILE_OPTS_VERSION);
    struct rec_file *f = calloc(1, sizeof(*f));
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&f->lock, NULL);
    f->sync = opts->sync;
    f->buffer = opts->buffer ? opts->buffer : DEFAULT_BUFFER;
    f->io.pwrite = opts->io && opts->io->pwrite ? opts->io->pwrite : sys_pwrite;
    f->io.fsync = opts->io && opts->io->fsync ? opts->io->fsync : sys_fsync;
    f->io.ctx = opts->io ? opts->io->ctx : NULL;
    f->queue_end = &f->queue;
    f->refs = 1;
    f->on_record = opts->on_record;
    f->on_record_ctx = opts->on_record_ctx;

    int flags = O_RDWR | O_CREAT | O_CLOEXEC;
    if (opts->mode == REC_CREATE)
        flags |= O_EXCL;
    int rc = 0;
    f->fd = open(path, flags, 0644);
    if (f->fd < 0) {
        rc = errno == EEXIST ? cru_err_set(CRU_EEXIST, "%s exists already", path)
                             : cru_err_sys("opening %s", path);
        goto done;
    }
    /* Two writers of one file would interleave records; the lock makes the second fail. */
    if (flock(f->fd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK
                 ? cru_err_set(CRU_EPERM, "%s is being written by another process", path)
                 : cru_err_sys("locking %s", path);
        goto done;
    }
    if (opts->mode == REC_APPEND) {
        rc = append_offset(f);
    } else {
        if (opts->mode == REC_TRUNCATE && ftruncate(f->fd, 0) < 0)
            rc = cru_err_sys("truncating %s", path);
        if (rc == 0)
            rc = write_header(f);
    }
done:
    if (rc < 0) {
        if (f->fd >= 0)
            close(f->fd);
        free(f->failure);
        pthread_mutex_destroy(&f->lock);
        free(f->path);
        free(f);
        return rc;
    }
    *out = f;
    return 0;
}

uint64_t rec_file_size(const struct rec_file *f)
{
    return f->size;
}

/* Writes the owner's buffered records; called with the lock held. */
static int flush_owner(struct rec_file *f)
{
    struct rec_episode *ep = f->owner;
    if (!ep || ep->buf.len == 0)
        return 0;
    int rc = file_write(f, ep->buf.data, ep->buf.len);
    cru_buf_reset(&ep->buf);
    return rc;
}

int rec_file_flush(struct rec_file *f)
{
    pthread_mutex_lock(&f->lock);
    int rc = f->failed ? failed(f) : flush_owner(f);
    if (rc == 0 && !f->owner)
        rc = drain(f);
    if (rc == 0)
        rc = file_sync(f);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

/* Drops a reference. Called with the lock held, which it releases. */
static void file_unref(struct rec_file *f)
{
    bool last = --f->refs == 0;
    pthread_mutex_unlock(&f->lock);
    if (!last)
        return;
    pthread_mutex_destroy(&f->lock);
    free(f->failure);
    free(f->path);
    free(f);
}

int rec_file_close(struct rec_file *f)
{
    if (!f)
        return 0;
    int rc = rec_file_flush(f);
    pthread_mutex_lock(&f->lock);
    if (rc == 0 && f->failed)
        rc = failed(f);
    if (close(f->fd) < 0 && rc == 0)
        rc = cru_err_sys("closing %s", f->path);
    f->fd = -1;
    f->closed = true;
    file_unref(f);
    return rc;
}

/* ---- building records ---- */

/* A record's fields are packed into BODY as they come, counted, and the map header that
 * msgpack needs in front (with the count) is made at the end. */
struct recb {
    msgpack_sbuffer body;
    msgpack_packer pk;
    uint32_t keys;
    int err;
};

static void rb_init(struct recb *b)
{
    msgpack_sbuffer_init(&b->body);
    msgpack_packer_init(&b->pk, &b->body, msgpack_sbuffer_write);
    b->keys = 0;
    b->err = 0;
}

static bool rb_key(struct recb *b, const char *key)
{
    if (b->err)
        return false;
    if ((b->err = rec_pack_key(&b->pk, key)) < 0)
        return false;
    b->keys++;
    return true;
}

static void rb_pk(struct recb *b, int rc)
{
    if (!b->err && rc != 0)
        b->err = cru_err_set(CRU_ENOMEM, "packing a record: out of memory");
}

static void kv_str(struct recb *b, const char *key, const char *v)
{
    if (rb_key(b, key))
        rb_pk(b, v ? msgpack_pack_str_with_body(&b->pk, v, strlen(v)) : msgpack_pack_nil(&b->pk));
}

/* A string from outside (tool output): invalid UTF-8 is repaired so every reader can show it. */
static void kv_text(struct recb *b, const char *key, const char *v, size_t len)
{
    if (!rb_key(b, key))
        return;
    if (cru_utf8_valid(v, len)) {
        rb_pk(b, msgpack_pack_str_with_body(&b->pk, v, len));
        return;
    }
    struct cru_buf fixed = CRU_BUF_INIT;
    int rc = cru_utf8_repair(&fixed, v, len);
    if (rc < 0)
        b->err = rc;
    else
        rb_pk(b, msgpack_pack_str_with_body(&b->pk, fixed.data ? fixed.data : "", fixed.len));
    cru_buf_free(&fixed);
}

static void kv_u64(struct recb *b, const char *key, uint64_t v)
{
    if (rb_key(b, key))
        rb_pk(b, msgpack_pack_uint64(&b->pk, v));
}

static void kv_i64(struct recb *b, const char *key, int64_t v)
{
    if (rb_key(b, key))
        rb_pk(b, msgpack_pack_int64(&b->pk, v));
}

static void kv_f64(struct recb *b, const char *key, double v)
{
    if (rb_key(b, key))
        rb_pk(b, msgpack_pack_double(&b->pk, v));
}

static void kv_i32s(struct recb *b, const char *key, const int32_t *v, size_t n)
{
    if (rb_key(b, key) && (b->err = rec_pack_i32s(&b->pk, v, n)) < 0)
        return;
}

static void kv_f32s(struct recb *b, const char *key, const float *v, size_t n)
{
    if (rb_key(b, key) && (b->err = rec_pack_f32s(&b->pk, v, n)) < 0)
        return;
}

static void kv_json(struct recb *b, const char *key, const json_t *v)
{
    if (v && rb_key(b, key))
        b->err = rec_pack_json(&b->pk, v);
}

static double unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The fields every record starts with. */
static void rb_begin(struct recb *b, struct rec_episode *ep, enum rec_type type)
{
    rb_init(b);
    kv_str(b, "type", rec_type_name(type));
    kv_str(b, "episode", ep->id);
    kv_u64(b, "seq", ep->seq);
    kv_f64(b, "time", unix_now());
}

/* Frames the record (map header + body) into the episode's buffer, then lets the file take
 * it: the episode that owns the file writes when its buffer is full (or at every record with
 * REC_SYNC_RECORD); the others keep theirs until the owner ends. */
static int emit(struct rec_episode *ep, struct recb *b)
{
    struct rec_file *f = ep->f;
    int rc = b->err;
    msgpack_sbuffer head;
    msgpack_sbuffer_init(&head);
    if (rc < 0)
        goto done;
    if (ep->ended) {
        rc = cru_err_set(CRU_EINVAL, "episode %s has ended: no record may follow", ep->id);
        goto done;
    }
    msgpack_packer hp;
    msgpack_packer_init(&hp, &head, msgpack_sbuffer_write);
    if (msgpack_pack_map(&hp, b->keys) != 0) {
        rc = cru_err_set(CRU_ENOMEM, "out of memory");
        goto done;
    }
    size_t len = head.size + b->body.size;
    if (len > REC_MAX_RECORD) {
        rc = cru_err_set(CRU_ELIMIT, "a %s record of %zu bytes is larger than the %u-byte limit",
                         "trajectory", len, REC_MAX_RECORD);
        goto done;
    }
    uint8_t frame[REC_FRAME_LEN];
    rec_put_le32(frame, (uint32_t)len);
    rec_put_le32(frame + 4,
                 cru_crc32c(cru_crc32c(0, head.data, head.size), b->body.data, b->body.size));
    size_t before = ep->buf.len;
    if ((rc = cru_buf_reserve(&ep->buf, REC_FRAME_LEN + len)) < 0)
        goto done;
    cru_buf_append(&ep->buf, frame, sizeof(frame));
    cru_buf_append(&ep->buf, head.data, head.size);
    cru_buf_append(&ep->buf, b->body.data, b->body.size);

    pthread_mutex_lock(&f->lock);
    if (f->closed)
        rc = cru_err_set(CRU_EINVAL, "%s is closed", f->path);
    else if (f->failed)
        rc = failed(f);
    if (rc < 0) {
        ep->buf.len = before; /* the record was not taken */
        pthread_mutex_unlock(&f->lock);
        goto done;
    }
    ep->seq++;
    if (!f->owner)
        f->owner = ep;
    if (f->owner == ep && (f->sync == REC_SYNC_RECORD || ep->buf.len >= f->buffer)) {
        rc = flush_owner(f);
        if (rc == 0 && f->sync == REC_SYNC_RECORD)
            rc = file_sync(f);
    }
    pthread_mutex_unlock(&f->lock);
    /* The record's bytes are still where they were framed: a flush only resets the buffer's
     * length, and nothing else appends to this episode's buffer meanwhile. */
    if (rc == 0 && f->on_record)
        f->on_record(f->on_record_ctx, (const uint8_t *)ep->buf.data + before + REC_FRAME_LEN, len);
done:
    msgpack_sbuffer_destroy(&head);
    msgpack_sbuffer_destroy(&b->body);
    return rc;
}

/* Hands the episode's records to the file for good: written now if it owns the file (or
 * nobody does), else queued behind the owner. Called with the lock held. */
static int release(struct rec_episode *ep)
{
    struct rec_file *f = ep->f;
    int rc = 0;
    if (f->closed)
        return cru_err_set(CRU_EINVAL, "%s is closed", f->path);
    if (f->failed)
        return failed(f);
    if (!f->owner || f->owner == ep) {
        f->owner = ep;
        rc = flush_owner(f);
        if (rc == 0)
            rc = file_sync(f);
        f->owner = NULL;
        if (rc == 0)
            rc = drain(f);
        return rc;
    }
    if (ep->buf.len == 0)
        return 0;
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    p->data = ep->buf;
    ep->buf = (struct cru_buf)CRU_BUF_INIT;
    *f->queue_end = p;
    f->queue_end = &p->next;
    return 0;
}

/* ---- episodes ---- */

static void pack_sampling(struct recb *b, const struct rec_sampling *s)
{
    if (!rb_key(b, "sampling"))
        return;
    rb_pk(b, msgpack_pack_map(&b->pk, 4));
    int rc = rec_pack_key(&b->pk, "temperature");
    rc = rc ? rc : msgpack_pack_double(&b->pk, s->temperature);
    rc = rc ? rc : rec_pack_key(&b->pk, "top_p");
    rc = rc ? rc : msgpack_pack_double(&b->pk, s->top_p);
    rc = rc ? rc : rec_pack_key(&b->pk, "top_k");
    rc = rc ? rc : msgpack_pack_int64(&b->pk, s->top_k);
    rc = rc ? rc : rec_pack_key(&b->pk, "max_tokens");
    rc = rc ? rc : msgpack_pack_uint64(&b->pk, s->max_tokens);
    rb_pk(b, rc);
}

int rec_episode_begin(struct rec_episode **out, struct rec_file *f,
                      const struct rec_episode_info *info)
{
    if (!info->episode_id || !*info->episode_id)
        return cru_err_set(CRU_EINVAL, "an episode needs an id");
    if (info->messages && !json_is_array(info->messages))
        return cru_err_set(CRU_EINVAL, "an episode's first messages must be a JSON array");
    if (info->meta && !json_is_object(info->meta))
        return cru_err_set(CRU_EINVAL, "an episode's meta must be a JSON object");
    struct rec_episode *ep = calloc(1, sizeof(*ep));
    if (!ep || !(ep->id = strdup(info->episode_id)) ||
        !(ep->branch_len = calloc(1, sizeof(*ep->branch_len)))) {
        if (ep)
            free(ep->id);
        free(ep);
        return cru_err_set(CRU_ENOMEM, "out of memory");
    }
    ep->f = f;
    ep->n_branches = 1;
    ep->start_ns = cru_now_ns();
    pthread_mutex_lock(&f->lock);
    f->refs++;
    pthread_mutex_unlock(&f->lock);

    char host[256] = "";
    if (!info->host && gethostname(host, sizeof(host) - 1) < 0)
        host[0] = '\0';
    struct recb b;
    rb_begin(&b, ep, REC_EPISODE);
    kv_u64(&b, "format", REC_FORMAT_VERSION);
    kv_str(&b, "group", info->group_id ? info->group_id : info->episode_id);
    kv_str(&b, "task", info->task_id);
    kv_str(&b, "task_digest", info->task_digest);
    kv_str(&b, "scaffold", info->scaffold_version);
    kv_str(&b, "agent", info->agent);
    kv_str(&b, "model", info->model_id);
    kv_str(&b, "model_digest", info->model_digest);
    kv_str(&b, "tokenizer_digest", info->tokenizer_digest);
    kv_str(&b, "chat_template", info->chat_template);
    pack_sampling(&b, &info->sampling);
    kv_u64(&b, "seed", info->seed);
    kv_u64(&b, "policy_version", info->policy_version);
    kv_f64(&b, "start_time", info->start_time > 0 ? info->start_time : unix_now());
    kv_str(&b, "host", info->host ? info->host : host);
    kv_json(&b, "messages", info->messages);
    kv_json(&b, "meta", info->meta);
    int rc = emit(ep, &b);
    if (rc < 0) {
        rec_episode_free(ep);
        return rc;
    }
    *out = ep;
    return 0;
}

bool rec_branch_len(const struct rec_episode *ep, uint32_t branch, uint64_t *len)
{
    if (branch >= ep->n_branches)
        return false;
    *len = ep->branch_len[branch];
    return true;
}

int rec_model_call(struct rec_episode *ep, const struct rec_model_call *mc)
{
    if (mc->branch >= ep->n_branches)
        return cru_err_set(CRU_EINVAL, "model call on branch %u, which does not exist", mc->branch);
    if ((mc->n_completion && (!mc->completion || !mc->logprobs)) || (mc->n_prompt && !mc->prompt))
        return cru_err_set(CRU_EINVAL, "model call: tokens or log-probs missing");
    if (mc->top_k && (!mc->top_ids || !mc->top_logprobs))
        return cru_err_set(CRU_EINVAL, "model call: top-%u alternatives missing", mc->top_k);
    if (mc->top_k && mc->n_completion > SIZE_MAX / mc->top_k)
        return cru_err_set(CRU_ELIMIT, "model call: too many top-k alternatives");
    struct recb b;
    rb_begin(&b, ep, REC_MODEL_CALL);
    kv_u64(&b, "branch", mc->branch);
    kv_u64(&b, "prefix", ep->branch_len[mc->branch]);
    kv_i32s(&b, "prompt", mc->prompt, mc->n_prompt);
    kv_i32s(&b, "completion", mc->completion, mc->n_completion);
    kv_f32s(&b, "logprobs", mc->logprobs, mc->n_completion);
    kv_str(&b, "finish", mc->finish);
    kv_u64(&b, "policy_version", mc->policy_version);
    kv_f64(&b, "queue_ms", mc->queue_ms);
    kv_f64(&b, "prefill_ms", mc->prefill_ms);
    kv_f64(&b, "decode_ms", mc->decode_ms);
    if (mc->top_k) {
        kv_u64(&b, "top_k", mc->top_k);
        kv_i32s(&b, "top_ids", mc->top_ids, mc->n_completion * mc->top_k);
        kv_f32s(&b, "top_logprobs", mc->top_logprobs, mc->n_completion * mc->top_k);
    }
    if (mc->text)
        kv_text(&b, "text", mc->text, strlen(mc->text));
    if (mc->reasoning)
        kv_text(&b, "reasoning", mc->reasoning, strlen(mc->reasoning));
    kv_json(&b, "tool_calls", mc->tool_calls);
    int rc = emit(ep, &b);
    if (rc < 0)
        return rc;
    ep->branch_len[mc->branch] += mc->n_prompt + mc->n_completion;
    ep->model_calls++;
    ep->prompt_tokens += mc->n_prompt;
    ep->completion_tokens += mc->n_completion;
    return 0;
}

int rec_tool(struct rec_episode *ep, const struct rec_tool *t)
{
    if (!t->name)
        return cru_err_set(CRU_EINVAL, "a tool record needs the tool's name");
    struct recb b;
    rb_begin(&b, ep, REC_TOOL);
    kv_u64(&b, "branch", t->branch);
    kv_str(&b, "call_id", t->call_id);
    kv_str(&b, "name", t->name);
    if (t->arguments)
        kv_text(&b, "arguments", t->arguments, strlen(t->arguments));
    if (t->arguments_bytes)
        kv_u64(&b, "arguments_bytes", t->arguments_bytes);
    kv_str(&b, "status", t->status ? t->status : "ok");
    kv_i64(&b, "exit", t->exit_code);
    kv_text(&b, "output", t->output ? t->output : "", t->output ? t->output_len : 0);
    kv_u64(&b, "output_bytes", t->output_bytes);
    kv_u64(&b, "output_cap", t->output_cap);
    kv_f64(&b, "duration_ms", t->duration_ms);
    int rc = emit(ep, &b);
    if (rc == 0)
        ep->tool_calls++;
    return rc;
}

int rec_fork(struct rec_episode *ep, uint32_t from, uint64_t position, const char *why,
             uint32_t *branch)
{
    if (from >= ep->n_branches)
        return cru_err_set(CRU_EINVAL, "fork from branch %u, which does not exist", from);
    if (position > ep->branch_len[from])
        return cru_err_set(CRU_EINVAL, "fork at token %llu of branch %u, which has %llu",
                           (unsigned long long)position, from,
                           (unsigned long long)ep->branch_len[from]);
    if (ep->n_branches >= REC_MAX_BRANCHES)
        return cru_err_set(CRU_ELIMIT, "episode %s has %d branches, the most allowed", ep->id,
                           REC_MAX_BRANCHES);
    uint64_t *nb = realloc(ep->branch_len, (ep->n_branches + 1) * sizeof(*nb));
    if (!nb)
        return cru_err_set(CRU_ENOMEM, "out of memory");
    ep->branch_len = nb;
    struct recb b;
    rb_begin(&b, ep, REC_CONTEXT_EDIT);
    kv_u64(&b, "branch", ep->n_branches);
    kv_u64(&b, "from_branch", from);
    kv_u64(&b, "position", position);
    kv_str(&b, "why", why ? why : "");
    int rc = emit(ep, &b);
    if (rc < 0)
        return rc;
    nb[ep->n_branches] = position;
    *branch = ep->n_branches++;
    ep->forks++;
    return 0;
}

int rec_scaffold_edit(struct rec_episode *ep, const struct rec_scaffold_edit *e)
{
    struct recb b;
    rb_begin(&b, ep, REC_SCAFFOLD_EDIT);
    kv_str(&b, "parent", e->parent);
    kv_str(&b, "child", e->child);
    kv_str(&b, "diff", e->diff);
    kv_json(&b, "evaluation", e->evaluation);
    return emit(ep, &b);
}

int rec_reward(struct rec_episode *ep, double value, const json_t *breakdown)
{
    struct recb b;
    rb_begin(&b, ep, REC_REWARD);
    kv_f64(&b, "value", value);
    kv_json(&b, "breakdown", breakdown);
    int rc = emit(ep, &b);
    if (rc == 0) {
        ep->has_reward = true;
        ep->reward = value;
    }
    return rc;
}

int rec_artifact(struct rec_episode *ep, const char *diff, const struct rec_artifact_file *files,
                 size_t n_files)
{
    struct recb b;
    rb_begin(&b, ep, REC_ARTIFACT);
    if (diff)
        kv_text(&b, "diff", diff, strlen(diff));
    if (rb_key(&b, "files")) {
        rb_pk(&b, msgpack_pack_array(&b.pk, n_files));
        for (size_t i = 0; i < n_files && !b.err; i++) {
            rb_pk(&b, msgpack_pack_map(&b.pk, 3));
            int rc = rec_pack_kv_str(&b.pk, "path", files[i].path);
            rc = rc ? rc : rec_pack_key(&b.pk, "size");
            rc = rc ? rc : msgpack_pack_uint64(&b.pk, files[i].size);
            rc = rc ? rc : rec_pack_kv_str(&b.pk, "sha256", files[i].sha256);
            rb_pk(&b, rc);
        }
    }
    return emit(ep, &b);
}

int rec_event(struct rec_episode *ep, const char *name, const json_t *data)
{
    if (!name)
        return cru_err_set(CRU_EINVAL, "an event needs a name");
    struct recb b;
    rb_begin(&b, ep, REC_EVENT);
    kv_str(&b, "name", name);
    kv_json(&b, "data", data);
    return emit(ep, &b);
}

int rec_episode_end(struct rec_episode *ep, const struct rec_end *end)
{
    struct recb b;
    rb_begin(&b, ep, REC_END);
    kv_str(&b, "status", rec_status_name(end->status));
    kv_str(&b, "message", end->message);
    if (ep->has_reward)
        kv_f64(&b, "reward", ep->reward);
    kv_u64(&b, "model_calls", ep->model_calls);
    kv_u64(&b, "tool_calls", ep->tool_calls);
    kv_u64(&b, "prompt_tokens", ep->prompt_tokens);
    kv_u64(&b, "completion_tokens", ep->completion_tokens);
    kv_u64(&b, "branches", ep->n_branches);
    kv_f64(&b, "wall_ms", (double)(cru_now_ns() - ep->start_ns) / 1e6);
    int rc = emit(ep, &b);
    if (rc < 0)
        return rc;
    ep->ended = true;
    pthread_mutex_lock(&ep->f->lock);
    rc = release(ep);
    pthread_mutex_unlock(&ep->f->lock);
    return rc;
}

void rec_episode_free(struct rec_episode *ep)
{
    if (!ep)
        return;
    struct rec_file *f = ep->f;
    pthread_mutex_lock(&f->lock);
    /* Records of an episode that never ended are kept: the file shows it incomplete. A
     * failure here has no caller to tell; the file's next operation reports it. */
    if (!f->closed && !f->failed && (ep->buf.len || f->owner == ep))
        (void)release(ep);
    if (f->owner == ep)
        f->owner = NULL;
    cru_buf_free(&ep->buf);
    free(ep->branch_len);
    free(ep->id);
    free(ep);
    file_unref(f);
}
