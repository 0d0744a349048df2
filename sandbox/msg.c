/* msg: one message with up to three descriptors over the sandbox's control socket.
 *
 * Used on both sides: by the host and by the sandbox's init, where only system calls are
 * allowed (see internal.h), so nothing here allocates.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

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
