/* Tests for lib/hash against published vectors: SHA-256 from FIPS 180-2 (appendix B) and
 * CRC32C from RFC 3720 (appendix B.4) and the common "123456789" check value. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/hash.h"
#include "tests/fifo_util.h"

static void sha_hex(const void *data, size_t len, char hex[CRU_SHA256_HEX_LEN + 1])
{
    uint8_t d[CRU_SHA256_LEN];
    cr_assert_eq(cru_sha256(data, len, d), 0);
    cru_hex(hex, d, sizeof(d));
}

Test(hash, sha256_fips_vectors)
{
    char hex[CRU_SHA256_HEX_LEN + 1];
    sha_hex("", 0, hex);
    cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha_hex(two, strlen(two), hex);
    cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(hash, sha256_streaming_million_a)
{
    struct cru_sha256 *h;
    uint8_t d[CRU_SHA256_LEN];
    char hex[CRU_SHA256_HEX_LEN + 1];
    char chunk[1000];
    memset(chunk, 'a', sizeof(chunk));
    cr_assert_eq(cru_sha256_new(&h), 0);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(cru_sha256_update(h, chunk, sizeof(chunk)), 0);
    cr_assert_eq(cru_sha256_final(h, d), 0);
    cru_sha256_free(h);
    cru_hex(hex, d, sizeof(d));
    cr_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    cru_sha256_free(NULL);
}

Test(hash, sha256_file)
{
    char path[] = "/tmp/crucible-test-hash-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "abc", 3), 3);
    close(fd);
    uint8_t d[CRU_SHA256_LEN];
    char hex[CRU_SHA256_HEX_LEN + 1];
    cr_assert_eq(cru_sha256_file(path, d), 0);
    cru_hex(hex, d, sizeof(d));
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* From a descriptor: the whole file, whatever was read of it before. */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    char c;
    cr_assert_eq(read(fd, &c, 1), 1);
    uint8_t d2[CRU_SHA256_LEN];
    cr_assert_eq(cru_sha256_fd(fd, path, d2), 0, "%s", cru_err_msg());
    close(fd);
    cr_assert_eq(memcmp(d, d2, sizeof(d)), 0);
    unlink(path);
    cr_assert_eq(cru_sha256_file(path, d), CRU_ENOENT);
    cr_assert(strstr(cru_err_msg(), path) != NULL);
}

/* A rootfs tarball is hashed before it is unpacked: a FIFO in its place must be refused, not
 * waited on (the digest of the regular file above is the control). */
Test(hash, sha256_file_refuses_a_fifo)
{
    char dir[] = "/tmp/crucible-test-hash-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/rootfs.tar", dir);
    uint8_t d[CRU_SHA256_LEN];
    struct timespec t0 = fifo_swap(path);
    int rc = cru_sha256_file(path, d);
    fifo_done(t0, rc, path);
    unlink(path);
    rmdir(dir);
}

Test(hash, crc32c_vectors)
{
    uint8_t buf[48];
    cr_assert_eq(cru_crc32c(0, "123456789", 9), 0xE3069283);
    cr_assert_eq(cru_crc32c(0, "", 0), 0);

    memset(buf, 0, 32);
    cr_assert_eq(cru_crc32c(0, buf, 32), 0x8A9136AA);
    memset(buf, 0xff, 32);
    cr_assert_eq(cru_crc32c(0, buf, 32), 0x62A8AB43);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    cr_assert_eq(cru_crc32c(0, buf, 32), 0x46DD794E);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    cr_assert_eq(cru_crc32c(0, buf, 32), 0x113FDB5C);

    /* RFC 3720 B.4: an iSCSI SCSI Read (10) command PDU. */
    static const uint8_t pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    cr_assert_eq(cru_crc32c(0, pdu, sizeof(pdu)), 0xD9963A56);
}

Test(hash, crc32c_chains)
{
    const char *s = "The quick brown fox jumps over the lazy dog";
    size_t n = strlen(s);
    uint32_t whole = cru_crc32c(0, s, n);
    cr_assert_eq(whole, 0x22620404);
    for (size_t cut = 0; cut <= n; cut++)
        cr_assert_eq(cru_crc32c(cru_crc32c(0, s, cut), s + cut, n - cut), whole, "cut at %zu", cut);
}

Test(hash, hex)
{
    char out[9];
    const uint8_t in[4] = { 0x00, 0x9f, 0xa0, 0xff };
    cru_hex(out, in, 4);
    cr_assert_str_eq(out, "009fa0ff");
}
