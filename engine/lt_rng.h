/* lt_rng.h — random numbers.
 *
 * Two generators with two jobs:
 *  - lt_rng: counter-based (Philox4x32-10) streams keyed by (seed, stream id).
 *    Data order, augmentation, initialisation and each method's randomness
 *    use different stream ids, so one consumer drawing more numbers never
 *    shifts another; a stream can also be derived per (epoch, sample) so
 *    results do not depend on thread scheduling. The state is two integers,
 *    trivially checkpointed.
 *  - lt_mt19937: NumPy's legacy RandomState (MT19937 + random_interval +
 *    shuffle), reproduced exactly, used only to select LT subsets the way the
 *    LDAM-DRW code does (specs/datasets.md §1.5). */
#ifndef LT_RNG_H
#define LT_RNG_H

#include "lt_base.h"

/* Well-known stream ids (methods use LT_STREAM_METHOD + k). */
enum {
    LT_STREAM_INIT = 1,
    LT_STREAM_ORDER = 2,   /* sampler / data order */
    LT_STREAM_AUG = 3,     /* augmentation */
    LT_STREAM_ORDER2 = 4,  /* a second sampling stream (e.g. class-balanced branch) */
    LT_STREAM_AUG2 = 5,
    LT_STREAM_SPLIT = 6,   /* validation carve-outs */
    LT_STREAM_METHOD = 100
};

typedef struct {
    uint64_t key;      /* derived from (seed, stream) */
    uint64_t counter;  /* number of 128-bit blocks consumed */
    uint32_t buf[4];
    int pos;           /* next unused word in buf (4 = empty) */
} lt_rng;

/* key = mix(seed, stream); counter = 0. */
void lt_rng_init(lt_rng *r, uint64_t seed, uint64_t stream);
/* A sub-stream: a new generator keyed by (parent key, a, b), e.g. (epoch, sample index). */
void lt_rng_derive(lt_rng *out, const lt_rng *parent, uint64_t a, uint64_t b);
uint32_t lt_rng_u32(lt_rng *r);
uint64_t lt_rng_u64(lt_rng *r);
double lt_rng_uniform(lt_rng *r);            /* [0,1), 53 bits */
float lt_rng_uniformf(lt_rng *r);            /* [0,1), 24 bits */
uint32_t lt_rng_below(lt_rng *r, uint32_t n); /* uniform in [0,n), unbiased (rejection) */
double lt_rng_normal(lt_rng *r);             /* N(0,1), Box-Muller (no cached second value, so state is just counter) */
void lt_rng_shuffle_i32(lt_rng *r, int32_t *a, long n); /* Fisher-Yates */
/* The raw Philox4x32-10 block function (for the known-answer test). */
void lt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* ---- NumPy legacy RandomState --------------------------------------------- */
typedef struct { uint32_t mt[624]; int mti; } lt_mt19937;
void lt_mt19937_seed(lt_mt19937 *s, uint32_t seed);   /* init_genrand */
uint32_t lt_mt19937_next32(lt_mt19937 *s);            /* genrand_int32 */
uint64_t lt_np_random_interval(lt_mt19937 *s, uint64_t max); /* numpy rk_interval */
void lt_np_shuffle_i32(lt_mt19937 *s, int32_t *a, long n);   /* np.random.shuffle on 1-D */
void lt_np_shuffle_i64(lt_mt19937 *s, int64_t *a, long n);

#endif
