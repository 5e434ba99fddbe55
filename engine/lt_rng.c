/* lt_rng.c — Philox4x32-10 counter-based streams.
 *
 * Philox (Salmon, Moraes, Dror & Shaw, SC'11; the Random123 library) is a
 * keyed bijection of a 128-bit counter, so a stream is just (key, counter):
 * no hidden state to checkpoint, and any sub-stream can be made by choosing
 * a new key. The 64-bit key is derived from (seed, stream id) with
 * splitmix64 so that nearby seeds and ids give unrelated keys. */
#include "lt_rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u  /* golden ratio */
#define PHILOX_W1 0xBB67AE85u  /* sqrt(3) - 1 */

static inline void philox_round(uint32_t c[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k[0];
    uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
}

void lt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int r = 0; r < 10; r++) {
        if (r > 0) {  /* the key is bumped between rounds, not before the first */
            k[0] += PHILOX_W0;
            k[1] += PHILOX_W1;
        }
        philox_round(c, k);
    }
    out[0] = c[0];
    out[1] = c[1];
    out[2] = c[2];
    out[3] = c[3];
}

/* splitmix64 (Steele, Lea & Flood 2014): a strong 64-bit mixer, used only
 * to turn structured inputs (seed, stream, epoch, index) into keys. */
static uint64_t splitmix64(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void lt_rng_init(lt_rng *r, uint64_t seed, uint64_t stream)
{
    /* Nested rather than xor-ed side by side, so (s, t) and (t, s) differ. */
    r->key = splitmix64(splitmix64(seed) ^ stream);
    r->counter = 0;
    r->pos = 4;
    r->buf[0] = r->buf[1] = r->buf[2] = r->buf[3] = 0;
}

void lt_rng_derive(lt_rng *out, const lt_rng *parent, uint64_t a, uint64_t b)
{
    /* Depends only on the parent's key (not its counter), so a derived
     * stream is the same no matter how much the parent was used. The extra
     * constant separates derived keys from lt_rng_init keys. */
    uint64_t k = splitmix64(parent->key ^ 0x6A09E667F3BCC909ull);
    k = splitmix64(k ^ a);
    k = splitmix64(k ^ b);
    out->key = k;
    out->counter = 0;
    out->pos = 4;
    out->buf[0] = out->buf[1] = out->buf[2] = out->buf[3] = 0;
}

uint32_t lt_rng_u32(lt_rng *r)
{
    if (r->pos >= 4) {
        /* Counter words 2,3 stay zero: 2^64 blocks per stream is plenty. */
        uint32_t ctr[4] = {(uint32_t)r->counter, (uint32_t)(r->counter >> 32), 0, 0};
        uint32_t key[2] = {(uint32_t)r->key, (uint32_t)(r->key >> 32)};
        lt_philox4x32_10(ctr, key, r->buf);
        r->counter++;
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

uint64_t lt_rng_u64(lt_rng *r)
{
    uint64_t hi = lt_rng_u32(r);
    uint64_t lo = lt_rng_u32(r);
    return (hi << 32) | lo;
}

double lt_rng_uniform(lt_rng *r)
{
    return (double)(lt_rng_u64(r) >> 11) * 0x1.0p-53;
}

float lt_rng_uniformf(lt_rng *r)
{
    return (float)(lt_rng_u32(r) >> 8) * 0x1.0p-24f;
}

uint32_t lt_rng_below(lt_rng *r, uint32_t n)
{
    if (n <= 1)
        return 0;  /* n == 0 has no valid answer; 0 keeps callers in bounds */
    /* Reject the lowest (2^32 mod n) values so that every residue class has
     * exactly floor(2^32 / n) preimages. */
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t x = lt_rng_u32(r);
        if (x >= threshold)
            return x % n;
    }
}

double lt_rng_normal(lt_rng *r)
{
    /* 1 - U is in (0, 1], so the log is finite. The sine partner is dropped
     * on purpose: caching it would put hidden state outside (key, counter). */
    double u1 = 1.0 - lt_rng_uniform(r);
    double u2 = lt_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

void lt_rng_shuffle_i32(lt_rng *r, int32_t *a, long n)
{
    for (long i = n - 1; i >= 1; i--) {
        long j = (long)lt_rng_below(r, (uint32_t)(i + 1));
        int32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
