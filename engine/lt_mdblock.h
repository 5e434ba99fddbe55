/* lt_mdblock.h — the Merkle–Damgård framing MD5 (lt_md5.c) and SHA-256
 * (lt_sha256.c) share: bytes are cut into 64-byte blocks for the hash's
 * compression function, and the end is padded with 0x80, zeros to 56 mod
 * 64 and the message length in bits (little-endian for MD5, big-endian for
 * SHA-256). Internal to those two files. */
#ifndef LT_MDBLOCK_H
#define LT_MDBLOCK_H

#include <stdint.h>
#include <string.h>

typedef void (*lt_md_compress)(uint32_t *h, const uint8_t *block);

/* Top up a partial block first, then hash whole blocks straight from the
 * caller's memory (no copy), then keep the tail in buf. */
static inline void lt_md_update(uint32_t *h, uint8_t buf[64], size_t *nbuf, uint64_t *len, const void *data,
                                size_t n, lt_md_compress compress) {
    const uint8_t *p = data;
    if (n == 0) return; /* data may be NULL then; memcpy(…, NULL, 0) is UB */
    *len += (uint64_t)n;
    if (*nbuf) {
        size_t take = 64 - *nbuf;
        if (take > n) take = n;
        memcpy(buf + *nbuf, p, take);
        *nbuf += take; p += take; n -= take;
        if (*nbuf < 64) return;
        compress(h, buf);
        *nbuf = 0;
    }
    while (n >= 64) {
        compress(h, p);
        p += 64; n -= 64;
    }
    if (n) {
        memcpy(buf, p, n);
        *nbuf = n;
    }
}

/* The padding, written straight into buf (len is not disturbed), and the
 * last one or two blocks. */
static inline void lt_md_finish(uint32_t *h, uint8_t buf[64], size_t *nbuf, uint64_t len, int big_endian,
                                lt_md_compress compress) {
    uint64_t bits = len * 8u;
    buf[(*nbuf)++] = 0x80;
    if (*nbuf > 56) {
        memset(buf + *nbuf, 0, 64 - *nbuf);
        compress(h, buf);
        *nbuf = 0;
    }
    memset(buf + *nbuf, 0, 56 - *nbuf);
    for (int i = 0; i < 8; i++) buf[56 + i] = (uint8_t)(bits >> (big_endian ? 56 - 8 * i : 8 * i));
    compress(h, buf);
    *nbuf = 0;
}

#endif
