/* lt_mt19937.c — NumPy's legacy RandomState, bit-exact.
 *
 * Only used to pick the LDAM-style long-tailed subsets (specs/datasets.md
 * §1.5), so it must agree with NumPy's `np.random.seed(s); np.random.shuffle`
 * draw for draw: classic init_genrand seeding, genrand_int32, rk_interval
 * (mask + rejection, never modulo) and Fisher-Yates from the top. */
#include "lt_rng.h"

#define MT_N 624
#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu

void lt_mt19937_seed(lt_mt19937 *s, uint32_t seed)
{
    s->mt[0] = seed;
    for (int i = 1; i < MT_N; i++)
        s->mt[i] = 1812433253u * (s->mt[i - 1] ^ (s->mt[i - 1] >> 30)) + (uint32_t)i;
    /* mti == N forces a full twist before the first output, as in NumPy. */
    s->mti = MT_N;
}

/* Regenerates all 624 words at once (the reference "generate N words" step). */
static void mt_twist(lt_mt19937 *s)
{
    uint32_t *mt = s->mt, y;
    int k;
    for (k = 0; k < MT_N - MT_M; k++) {
        y = (mt[k] & MT_UPPER) | (mt[k + 1] & MT_LOWER);
        mt[k] = mt[k + MT_M] ^ (y >> 1) ^ ((y & 1u) ? MT_MATRIX_A : 0u);
    }
    for (; k < MT_N - 1; k++) {
        y = (mt[k] & MT_UPPER) | (mt[k + 1] & MT_LOWER);
        mt[k] = mt[k + (MT_M - MT_N)] ^ (y >> 1) ^ ((y & 1u) ? MT_MATRIX_A : 0u);
    }
    y = (mt[MT_N - 1] & MT_UPPER) | (mt[0] & MT_LOWER);
    mt[MT_N - 1] = mt[MT_M - 1] ^ (y >> 1) ^ ((y & 1u) ? MT_MATRIX_A : 0u);
    s->mti = 0;
}

uint32_t lt_mt19937_next32(lt_mt19937 *s)
{
    if (s->mti >= MT_N)
        mt_twist(s);
    uint32_t y = s->mt[s->mti++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
}

/* numpy rk_interval: uniform in [0, max] by masking to the next power of two
 * minus one and rejecting; the 64-bit branch draws two words (high first),
 * exactly as rk_ulong does on LP64 builds. */
uint64_t lt_np_random_interval(lt_mt19937 *s, uint64_t max)
{
    if (max == 0)
        return 0;
    uint64_t mask = max, v;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    if (max <= 0xffffffffu) {
        while ((v = (lt_mt19937_next32(s) & mask)) > max)
            ;
    } else {
        do {
            uint64_t hi = lt_mt19937_next32(s);
            uint64_t lo = lt_mt19937_next32(s);
            v = ((hi << 32) | lo) & mask;
        } while (v > max);
    }
    return v;
}

void lt_np_shuffle_i32(lt_mt19937 *s, int32_t *a, long n)
{
    for (long i = n - 1; i >= 1; i--) {
        long j = (long)lt_np_random_interval(s, (uint64_t)i);
        int32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

void lt_np_shuffle_i64(lt_mt19937 *s, int64_t *a, long n)
{
    for (long i = n - 1; i >= 1; i--) {
        long j = (long)lt_np_random_interval(s, (uint64_t)i);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
