/* hash: SHA-256 (nettle) and CRC32C (Intel ISA-L), plus hex encoding.
 *
 * SHA-256 names content: cached rootfs trees, task and model digests. CRC32C frames
 * trajectory records. Both are computed by the libraries, which use the CPU's SHA and CRC
 * instructions where present; nothing here implements either algorithm.
 */
#ifndef CRU_LIB_HASH_H
#define CRU_LIB_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CRU_SHA256_LEN     32
#define CRU_SHA256_HEX_LEN 64

struct cru_sha256; /* opaque streaming context */

int cru_sha256_new(struct cru_sha256 **out);
int cru_sha256_update(struct cru_sha256 *h, const void *data, size_t len);
/* Writes the digest; the context may not be updated afterwards. */
int cru_sha256_final(struct cru_sha256 *h, uint8_t out[CRU_SHA256_LEN]);
void cru_sha256_free(struct cru_sha256 *h);

/* One-shot digest of a buffer, and of a regular file's contents (streamed; any size; anything
 * else is refused without blocking, as cru_file_read does). */
int cru_sha256(const void *data, size_t len, uint8_t out[CRU_SHA256_LEN]);
int cru_sha256_file(const char *path, uint8_t out[CRU_SHA256_LEN]);
/* The digest of what the open file FD holds from its start; NAME labels it in messages. */
int cru_sha256_fd(int fd, const char *name, uint8_t out[CRU_SHA256_LEN]);

/* CRC32C (Castagnoli, as in iSCSI, ext4 and our trajectory frames). Chainable:
 * cru_crc32c(cru_crc32c(0, a, n), b, m) equals the CRC of a followed by b. Start with 0. */
uint32_t cru_crc32c(uint32_t crc, const void *data, size_t len);

/* Lower-case hex of LEN bytes into OUT, which must hold 2 * LEN + 1 bytes. */
void cru_hex(char *out, const uint8_t *data, size_t len);

#endif
