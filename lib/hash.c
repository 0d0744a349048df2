/* hash: thin, checked wrappers over nettle's SHA-256 and ISA-L's CRC32C.
 *
 * The wrappers exist to give the rest of crucible one error convention and to bound what the
 * libraries are handed (ISA-L takes an int length, so long inputs go in chunks). nettle is
 * linked from its static archive and picks the SHA extensions of the CPU at start-up where
 * there are any.
 */
#include "lib/hash.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <isa-l/crc.h>
#include <nettle/sha2.h>

#include "lib/err.h"
#include "lib/fs.h"

struct cru_sha256 {
    struct sha256_ctx ctx;
};

int cru_sha256_new(struct cru_sha256 **out)
{
    struct cru_sha256 *h = malloc(sizeof(*h));
    if (!h)
        return cru_err_set(CRU_ENOMEM, "out of memory for a SHA-256 context");
    sha256_init(&h->ctx);
    *out = h;
    return 0;
}

int cru_sha256_update(struct cru_sha256 *h, const void *data, size_t len)
{
    sha256_update(&h->ctx, len, data);
    return 0;
}

int cru_sha256_final(struct cru_sha256 *h, uint8_t out[CRU_SHA256_LEN])
{
    sha256_digest(&h->ctx, CRU_SHA256_LEN, out);
    return 0;
}

void cru_sha256_free(struct cru_sha256 *h)
{
    free(h);
}

int cru_sha256(const void *data, size_t len, uint8_t out[CRU_SHA256_LEN])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, CRU_SHA256_LEN, out);
    return 0;
}

int cru_sha256_fd(int fd, const char *name, uint8_t out[CRU_SHA256_LEN])
{
    struct cru_sha256 *h = NULL;
    uint8_t buf[1 << 16];
    int rc;
    if (lseek(fd, 0, SEEK_SET) < 0)
        return cru_err_sys("cannot rewind %s", name);
    if ((rc = cru_sha256_new(&h)) < 0)
        return rc;
    for (;;) {
        size_t n;
        if ((rc = cru_read_some(fd, buf, sizeof(buf), &n, name)) < 0)
            goto done;
        if (n == 0)
            break;
        if ((rc = cru_sha256_update(h, buf, n)) < 0)
            goto done;
    }
    rc = cru_sha256_final(h, out);
done:
    cru_sha256_free(h);
    return rc;
}

int cru_sha256_file(const char *path, uint8_t out[CRU_SHA256_LEN])
{
    /* A regular file only: a FIFO would be waited on for ever. */
    int fd, rc = cru_file_open_regular(AT_FDCWD, path, 0, path, &fd, NULL);
    if (rc < 0)
        return rc;
    rc = cru_sha256_fd(fd, path, out);
    close(fd);
    return rc;
}

uint32_t cru_crc32c(uint32_t crc, const void *data, size_t len)
{
    /* ISA-L's crc32_iscsi works on the raw register: the standard CRC32C pre- and
     * post-inverts it, which is what makes the chained form above compose. */
    uint32_t state = ~crc;
    const unsigned char *p = data;
    while (len > 0) {
        int n = len > (size_t)INT_MAX ? INT_MAX : (int)len;
        /* crc32_iscsi only reads the buffer; its prototype just lacks the const. */
        state = crc32_iscsi((unsigned char *)(uintptr_t)p, n, state);
        p += n;
        len -= (size_t)n;
    }
    return ~state;
}

void cru_hex(char *out, const uint8_t *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = '\0';
}
