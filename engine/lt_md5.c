/* lt_md5.c — MD5 (RFC 1321), streaming and one-shot.
 *
 * MD5 is broken as a defence against a forger, so nothing here trusts it
 * for that: it exists because the publishers of the ImageNet and Places365
 * image tars give only an md5, and checking that md5 is what tells a
 * complete download from a cut or spliced one when no sha256 is pinned.
 * Written from the RFC (no crypto library), like lt_sha256.c. */
#include "lt_ckpt.h"
#include "lt_mdblock.h"

#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>

/* T[i] = floor(2^32 * |sin(i + 1)|), RFC 1321 section 3.4. */
static const uint32_t T[64] = {
    0xd76aa478u, 0xe8c7b756u, 0x242070dbu, 0xc1bdceeeu, 0xf57c0fafu, 0x4787c62au, 0xa8304613u, 0xfd469501u,
    0x698098d8u, 0x8b44f7afu, 0xffff5bb1u, 0x895cd7beu, 0x6b901122u, 0xfd987193u, 0xa679438eu, 0x49b40821u,
    0xf61e2562u, 0xc040b340u, 0x265e5a51u, 0xe9b6c7aau, 0xd62f105du, 0x02441453u, 0xd8a1e681u, 0xe7d3fbc8u,
    0x21e1cde6u, 0xc33707d6u, 0xf4d50d87u, 0x455a14edu, 0xa9e3e905u, 0xfcefa3f8u, 0x676f02d9u, 0x8d2a4c8au,
    0xfffa3942u, 0x8771f681u, 0x6d9d6122u, 0xfde5380cu, 0xa4beea44u, 0x4bdecfa9u, 0xf6bb4b60u, 0xbebfbc70u,
    0x289b7ec6u, 0xeaa127fau, 0xd4ef3085u, 0x04881d05u, 0xd9d4d039u, 0xe6db99e5u, 0x1fa27cf8u, 0xc4ac5665u,
    0xf4292244u, 0x432aff97u, 0xab9423a7u, 0xfc93a039u, 0x655b59c3u, 0x8f0ccc92u, 0xffeff47du, 0x85845dd1u,
    0x6fa87e4fu, 0xfe2ce6e0u, 0xa3014314u, 0x4e0811a1u, 0xf7537e82u, 0xbd3af235u, 0x2ad7d2bbu, 0xeb86d391u};

/* Per-round rotation amounts (four per round, repeated). */
static const unsigned R[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

static inline uint32_t rotl(uint32_t x, unsigned n) { return (x << n) | (x >> (32u - n)); }

/* One 64-byte block. Little-endian loads are done byte-wise so the code is
 * independent of host endianness and alignment. */
static void compress(uint32_t h[4], const uint8_t *p)
{
    uint32_t x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int k, round = i / 16;
        switch (round) {
        case 0: f = (b & c) | (~b & d); k = i; break;
        case 1: f = (d & b) | (~d & c); k = (5 * i + 1) & 15; break;
        case 2: f = b ^ c ^ d; k = (3 * i + 5) & 15; break;
        default: f = c ^ (b | ~d); k = (7 * i) & 15; break;
        }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rotl(a + f + T[i] + x[k], R[round][i & 3]);
        a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
}

void lt_md5_init(lt_md5 *s)
{
    s->h[0] = 0x67452301u;
    s->h[1] = 0xefcdab89u;
    s->h[2] = 0x98badcfeu;
    s->h[3] = 0x10325476u;
    s->len = 0;
    s->nbuf = 0;
}

void lt_md5_update(lt_md5 *s, const void *data, size_t n)
{
    lt_md_update(s->h, s->buf, &s->nbuf, &s->len, data, n, compress);
}

void lt_md5_final(lt_md5 *s, uint8_t out[16])
{
    lt_md_finish(s->h, s->buf, &s->nbuf, s->len, 0, compress);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (uint8_t)(s->h[i] >> (8 * j));
}

void lt_md5_hex(const uint8_t digest[16], char hex[33])
{
    static const char dig[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = dig[digest[i] >> 4];
        hex[2 * i + 1] = dig[digest[i] & 15];
    }
    hex[32] = '\0';
}

void lt_md5_buf(const void *data, size_t n, char hex[33])
{
    lt_md5 s;
    uint8_t d[16];
    lt_md5_init(&s);
    lt_md5_update(&s, data, n);
    lt_md5_final(&s, d);
    lt_md5_hex(d, hex);
}

/* Bytes lt_hash_file has read, process-wide: what a caller's hashing costs
 * on a file of a hundred GB, and how the tests see that a download is read
 * once. */
static _Atomic unsigned long long g_hashed;

unsigned long long lt_hash_file_bytes(void) { return g_hashed; }

int lt_hash_file(const char *path, char sha_hex[65], char md5_hex[33])
{
    return lt_hash_file_cb(path, sha_hex, md5_hex, NULL, NULL);
}

int lt_hash_file_cb(const char *path, char sha_hex[65], char md5_hex[33], lt_hash_progress_fn fn, void *ctx)
{
    /* One pass for both digests: the files that need an md5 are image tars
     * of tens or hundreds of GB. */
    enum { CHUNK = 1 << 20 };
    if (sha_hex) sha_hex[0] = '\0';
    if (md5_hex) md5_hex[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return lt_err(LT_EIO, "hashing %s: cannot open: %s", path, strerror(errno));
    uint8_t *buf = lt_alloc(CHUNK);
    if (!buf) {
        fclose(f);
        return lt_err(LT_ENOMEM, "hashing %s: out of memory", path);
    }
    lt_sha256 s;
    lt_md5 m;
    lt_sha256_init(&s);
    lt_md5_init(&m);
    unsigned long long total = 0, done = 0;
    struct stat sb;
    if (fn && fstat(fileno(f), &sb) == 0 && sb.st_size > 0) total = (unsigned long long)sb.st_size;
    size_t got;
    while ((got = fread(buf, 1, CHUNK, f)) > 0) {
        g_hashed += got;
        if (sha_hex) lt_sha256_update(&s, buf, got);
        if (md5_hex) lt_md5_update(&m, buf, got);
        done += got;
        if (fn) fn(ctx, done, total);
    }
    int bad = ferror(f);
    int saved = errno;
    lt_free(buf);
    fclose(f);
    if (bad) return lt_err(LT_EIO, "hashing %s: read error: %s", path, strerror(saved));
    if (sha_hex) {
        uint8_t d[32];
        lt_sha256_final(&s, d);
        lt_sha256_hex(d, sha_hex);
    }
    if (md5_hex) {
        uint8_t d[16];
        lt_md5_final(&m, d);
        lt_md5_hex(d, md5_hex);
    }
    return LT_OK;
}

int lt_md5_file(const char *path, char hex[33])
{
    return lt_hash_file(path, NULL, hex);
}
