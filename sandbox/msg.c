/* msg: the messages on the sandbox's control socket: sending and receiving one message with
 * up to three descriptors, and the EXEC request's payload (cwd, argv, env), packed by the host
 * and parsed by the init.
 *
 * Used on both sides: by the host and by the sandbox's init, where only system calls are
 * allowed (see internal.h), so nothing the init calls allocates or uses stdio. Only
 * sbx_exec_req_pack, which runs on the host, grows a buffer and sets the last error.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "sandbox/internal.h"

#define MSG_MAX_FDS 3

int sbx_msg_send(int fd, const struct sbx_msg *m, const void *payload, const int *fds, size_t n_fds)
{
    struct iovec iov[2] = {
        { .iov_base = (void *)(uintptr_t)m, .iov_len = sizeof(*m) },
        { .iov_base = (void *)(uintptr_t)payload, .iov_len = m->len },
    };
    union {
        char buf[CMSG_SPACE(sizeof(int) * MSG_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = m->len ? 2 : 1 };

    if (n_fds > MSG_MAX_FDS || m->len > SBX_MSG_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (n_fds > 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
    }
    for (;;) {
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

ssize_t sbx_msg_recv(int fd, void *buf, size_t cap, int *fds, size_t *n_fds)
{
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    union {
        char buf[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = ctl.buf,
        .msg_controllen = sizeof(ctl.buf),
    };
    ssize_t n;

    *n_fds = 0;
    do {
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int got[8];
        memcpy(got, CMSG_DATA(c), k * sizeof(int));
        for (size_t i = 0; i < k; i++) {
            if (*n_fds < MSG_MAX_FDS)
                fds[(*n_fds)++] = got[i];
            else
                close(got[i]); /* more than the protocol allows: never leak them */
        }
    }
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        for (size_t i = 0; i < *n_fds; i++)
            close(fds[i]);
        *n_fds = 0;
        errno = EMSGSIZE;
        return -1;
    }
    if (n > 0 && (size_t)n < sizeof(struct sbx_msg)) {
        errno = EPROTO;
        return -1;
    }
    return n;
}

/* ---- the EXEC request ---- */

int sbx_exec_req_pack(struct cru_buf *b, const char *cwd, const char *const *argv,
                      const char *const *env)
{
    struct sbx_exec_req req = { 0 };
    int rc;
    while (argv[req.argc])
        req.argc++;
    while (env[req.envc])
        req.envc++;
    if (req.argc == 0)
        return cru_err_set(CRU_EINVAL, "empty command");
    if (req.argc >= SBX_EXEC_ARGS_MAX || req.envc >= SBX_EXEC_ARGS_MAX)
        return cru_err_set(CRU_ELIMIT,
                           "a command may have at most %u arguments and %u environment entries",
                           SBX_EXEC_ARGS_MAX - 1, SBX_EXEC_ARGS_MAX - 1);
    /* The size is known before anything is copied, so a command far over the limit costs no
     * memory. It cannot wrap: every string is in memory already. */
    size_t len = sizeof(req) + strlen(cwd) + 1;
    for (uint32_t i = 0; i < req.argc; i++)
        len += strlen(argv[i]) + 1;
    for (uint32_t i = 0; i < req.envc; i++) {
        if (!strchr(env[i], '='))
            return cru_err_set(CRU_EINVAL, "environment entry '%s' has no '='", env[i]);
        len += strlen(env[i]) + 1;
    }
    if (len > SBX_MSG_MAX)
        return cru_err_set(CRU_ELIMIT,
                           "command and environment take %zu bytes, over the limit of %u", len,
                           SBX_MSG_MAX);
    if ((rc = cru_buf_reserve(b, len)) < 0 || (rc = cru_buf_append(b, &req, sizeof(req))) < 0 ||
        (rc = cru_buf_append(b, cwd, strlen(cwd) + 1)) < 0)
        return rc;
    for (uint32_t i = 0; i < req.argc; i++) {
        if ((rc = cru_buf_append(b, argv[i], strlen(argv[i]) + 1)) < 0)
            return rc;
    }
    for (uint32_t i = 0; i < req.envc; i++) {
        if ((rc = cru_buf_append(b, env[i], strlen(env[i]) + 1)) < 0)
            return rc;
    }
    return 0;
}

int sbx_exec_req_parse(char *payload, size_t len, const char **cwd, char **argv, size_t argv_cap,
                       char **envp, size_t envp_cap)
{
    struct sbx_exec_req req;
    if (len < sizeof(req) || len > SBX_MSG_MAX)
        return -1;
    memcpy(&req, payload, sizeof(req));
    /* The counts come from the host; the caps keep them inside the caller's arrays, with room
     * for the NULL that ends each. */
    if (req.argc == 0 || req.argc >= argv_cap || req.envc >= envp_cap)
        return -1;
    char *p = payload + sizeof(req), *end = payload + len;
    size_t want = 1 + (size_t)req.argc + req.envc;
    for (size_t i = 0; i < want; i++) {
        char *z = memchr(p, '\0', (size_t)(end - p));
        if (!z)
            return -1;
        if (i == 0) {
            *cwd = p;
        } else if (i <= req.argc) {
            argv[i - 1] = p;
        } else {
            if (!memchr(p, '=', (size_t)(z - p)))
                return -1;
            envp[i - 1 - req.argc] = p;
        }
        p = z + 1;
    }
    /* Exactly what sbx_exec_req_pack writes: nothing may follow the last string. */
    if (p != end)
        return -1;
    argv[req.argc] = NULL;
    envp[req.envc] = NULL;
    return 0;
}
