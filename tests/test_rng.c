/* test_rng.c — Philox known answers, stream properties, and NumPy legacy
 * RandomState vectors (specs/datasets.md §1.5, §2.4) including the LT rank
 * digests that pin the CIFAR-LT / Fashion-MNIST-LT subsets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_ckpt.h"
#include "lt_rng.h"

/* ---- Philox --------------------------------------------------------------- */

static void test_philox_kat(void **state)
{
    (void)state;
    /* Random123 tests/kat_vectors, philox4x32 10 rows. */
    static const uint32_t ctr[3][4] = {
        {0, 0, 0, 0},
        {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
        {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}};
    static const uint32_t key[3][2] = {
        {0, 0}, {0xffffffffu, 0xffffffffu}, {0xa4093822u, 0x299f31d0u}};
    static const uint32_t want[3][4] = {
        {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
        {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu},
        {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}};
    for (int t = 0; t < 3; t++) {
        uint32_t out[4];
        lt_philox4x32_10(ctr[t], key[t], out);
        for (int i = 0; i < 4; i++)
            assert_int_equal(out[i], want[t][i]);
    }
}

static void test_rng_stream_is_philox_of_counter(void **state)
{
    (void)state;
    /* The stream's words are exactly Philox(counter = block index, key). */
    lt_rng r;
    lt_rng_init(&r, 7, LT_STREAM_AUG);
    uint32_t key[2] = {(uint32_t)r.key, (uint32_t)(r.key >> 32)};
    for (uint32_t b = 0; b < 3; b++) {
        uint32_t ctr[4] = {b, 0, 0, 0}, out[4];
        lt_philox4x32_10(ctr, key, out);
        for (int i = 0; i < 4; i++)
            assert_int_equal(lt_rng_u32(&r), out[i]);
    }
    assert_int_equal(r.counter, 3);
}

static void test_rng_determinism_and_independence(void **state)
{
    (void)state;
    lt_rng a, b, c, d;
    lt_rng_init(&a, 42, LT_STREAM_ORDER);
    lt_rng_init(&b, 42, LT_STREAM_ORDER);
    lt_rng_init(&c, 42, LT_STREAM_AUG);
    lt_rng_init(&d, 43, LT_STREAM_ORDER);
    int same_c = 0, same_d = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x = lt_rng_u32(&a);
        assert_int_equal(x, lt_rng_u32(&b));
        same_c += x == lt_rng_u32(&c);
        same_d += x == lt_rng_u32(&d);
    }
    assert_true(same_c < 3);
    assert_true(same_d < 3);
    /* (seed, stream) order matters. */
    lt_rng_init(&a, 2, 3);
    lt_rng_init(&b, 3, 2);
    assert_true(a.key != b.key);

    /* Derived streams depend on (parent key, a, b) only, not the parent's counter. */
    lt_rng p, e1, e2, e3, e4;
    lt_rng_init(&p, 1, LT_STREAM_AUG);
    lt_rng_derive(&e1, &p, 5, 17);
    for (int i = 0; i < 9; i++)
        (void)lt_rng_u32(&p);
    lt_rng_derive(&e2, &p, 5, 17);
    lt_rng_derive(&e3, &p, 17, 5);
    lt_rng_derive(&e4, &p, 5, 18);
    assert_true(e1.key == e2.key);
    assert_true(e1.key != e3.key);
    assert_true(e1.key != e4.key);
    assert_true(e1.key != p.key);
    for (int i = 0; i < 100; i++)
        assert_int_equal(lt_rng_u32(&e1), lt_rng_u32(&e2));
}

static void test_rng_uniform_moments(void **state)
{
    (void)state;
    lt_rng r;
    lt_rng_init(&r, 3, 9);
    const int n = 200000;
    double s = 0, s2 = 0, sf = 0;
    for (int i = 0; i < n; i++) {
        double u = lt_rng_uniform(&r);
        float f = lt_rng_uniformf(&r);
        assert_true(u >= 0.0 && u < 1.0);
        assert_true(f >= 0.0f && f < 1.0f);
        s += u;
        s2 += u * u;
        sf += f;
    }
    double mean = s / n, var = s2 / n - mean * mean;
    /* std of the mean of U(0,1) is sqrt(1/12/n) ~ 6.5e-4: allow 5 sigma. */
    double tol = 5 * sqrt(1.0 / 12 / n);
    assert_true(fabs(mean - 0.5) < tol);
    assert_true(fabs(sf / n - 0.5) < tol);
    assert_true(fabs(var - 1.0 / 12) < 0.002);
}

static void test_rng_below_unbiased(void **state)
{
    (void)state;
    lt_rng r;
    lt_rng_init(&r, 11, 1);
    assert_int_equal(lt_rng_below(&r, 1), 0);
    assert_int_equal(lt_rng_below(&r, 0), 0);
    enum { K = 7, N = 140000 };
    long hist[K] = {0};
    for (int i = 0; i < N; i++) {
        uint32_t v = lt_rng_below(&r, K);
        assert_true(v < K);
        hist[v]++;
    }
    double p = 1.0 / K, sd = sqrt(N * p * (1 - p));
    for (int k = 0; k < K; k++)
        assert_true(fabs(hist[k] - N * p) < 5 * sd);

    /* n = 3*2^30: plain modulo would make the low third twice as likely
     * (values below 2^30 have two preimages). Rejection must give 1/3 each. */
    uint32_t big = 3u << 30;
    long third[3] = {0};
    for (int i = 0; i < 30000; i++) {
        uint32_t v = lt_rng_below(&r, big);
        assert_true(v < big);
        third[v >> 30]++;
    }
    double sd3 = sqrt(30000 * (1.0 / 3) * (2.0 / 3));
    for (int k = 0; k < 3; k++)
        assert_true(fabs(third[k] - 10000.0) < 5 * sd3);
}

static void test_rng_normal_moments(void **state)
{
    (void)state;
    lt_rng r;
    lt_rng_init(&r, 5, 2);
    const int n = 200000;
    double s = 0, s2 = 0, s4 = 0;
    long tail = 0;
    for (int i = 0; i < n; i++) {
        double z = lt_rng_normal(&r);
        assert_true(isfinite(z));
        s += z;
        s2 += z * z;
        s4 += z * z * z * z;
        tail += fabs(z) > 1.959963985;
    }
    /* Each draw consumes exactly four words (two 64-bit uniforms). */
    assert_int_equal(r.counter, (uint64_t)n);
    double mean = s / n, var = s2 / n - mean * mean;
    assert_true(fabs(mean) < 5 / sqrt(n));
    assert_true(fabs(var - 1) < 5 * sqrt(2.0 / n));
    assert_true(fabs(s4 / n - 3) < 0.1);
    double pt = 0.05, sdt = sqrt(n * pt * (1 - pt));
    assert_true(fabs(tail - n * pt) < 5 * sdt);
}

static void test_rng_shuffle_permutation(void **state)
{
    (void)state;
    lt_rng r, r2;
    lt_rng_init(&r, 1, 2);
    r2 = r;
    enum { N = 1000 };
    int32_t a[N], b[N];
    int seen[N] = {0};
    for (int i = 0; i < N; i++)
        a[i] = b[i] = i;
    lt_rng_shuffle_i32(&r, a, N);
    lt_rng_shuffle_i32(&r2, b, N);
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        assert_true(a[i] >= 0 && a[i] < N);
        seen[a[i]]++;
        fixed += a[i] == i;
        assert_int_equal(a[i], b[i]);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    assert_true(fixed < 10);  /* expected 1 fixed point */
}

/* ---- NumPy legacy RandomState ---------------------------------------------- */

static void np_permutation(uint32_t seed, long n, int32_t *out)
{
    lt_mt19937 s;
    lt_mt19937_seed(&s, seed);
    for (long i = 0; i < n; i++)
        out[i] = (int32_t)i;
    lt_np_shuffle_i32(&s, out, n);
}

static void test_mt19937_genrand(void **state)
{
    (void)state;
    lt_mt19937 s;
    lt_mt19937_seed(&s, 0);
    assert_int_equal(lt_mt19937_next32(&s), 2357136044u);
    assert_int_equal(lt_mt19937_next32(&s), 2546248239u);
    assert_int_equal(lt_mt19937_next32(&s), 3071714933u);
    /* Reference mt19937ar.c with init_genrand(5489): the 10000th output of
     * the default-seeded C++ std::mt19937 is 4123659995 (C++11 [rand.predef]). */
    lt_mt19937_seed(&s, 5489u);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++)
        v = lt_mt19937_next32(&s);
    assert_int_equal(v, 4123659995u);
}

static void expect_perm(uint32_t seed, long n, const int32_t *want, int nw)
{
    int32_t *p = malloc((size_t)n * sizeof *p);
    assert_non_null(p);
    np_permutation(seed, n, p);
    for (int i = 0; i < nw; i++)
        assert_int_equal(p[i], want[i]);
    free(p);
}

static void test_np_shuffle_vectors(void **state)
{
    (void)state;
    static const int32_t s0[10] = {2, 8, 4, 9, 1, 6, 7, 3, 0, 5};
    static const int32_t s42a[12] = {10, 9, 0, 8, 5, 2, 1, 11, 4, 7, 3, 6};
    static const int32_t s42b[8] = {83, 53, 70, 45, 44, 39, 22, 80};
    static const int32_t s3[8] = {642, 762, 909, 199, 586, 797, 652, 755};
    static const int32_t s1[5] = {2, 1, 4, 0, 3};
    expect_perm(0, 10, s0, 10);
    expect_perm(42, 12, s42a, 12);
    expect_perm(42, 100, s42b, 8);
    expect_perm(3, 1000, s3, 8);
    expect_perm(1, 5, s1, 5);

    /* The int64 variant draws identically. */
    lt_mt19937 s;
    lt_mt19937_seed(&s, 0);
    int64_t a[10];
    for (int i = 0; i < 10; i++)
        a[i] = i;
    lt_np_shuffle_i64(&s, a, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(a[i], s0[i]);
}

static void test_np_random_interval(void **state)
{
    (void)state;
    lt_mt19937 s, t;
    lt_mt19937_seed(&s, 0);
    assert_int_equal(lt_np_random_interval(&s, 0), 0);
    /* max = 0 draws nothing: the stream still starts at the first word. */
    lt_mt19937_seed(&t, 0);
    assert_int_equal(lt_np_random_interval(&s, 0xffffffffu), lt_mt19937_next32(&t));
    /* Masked rejection: max = 9 uses mask 15 on each word until <= 9. */
    lt_mt19937_seed(&s, 0);
    lt_mt19937_seed(&t, 0);
    for (int k = 0; k < 50; k++) {
        uint32_t w;
        while ((w = lt_mt19937_next32(&t) & 15u) > 9u)
            ;
        assert_int_equal(lt_np_random_interval(&s, 9), w);
    }
}

/* The LDAM selection: one stream seeded `seed`, class c = 0..C-1 in order
 * shuffles arange(n_per_class); perms[c*n + i] = perm_c[i]. */
static int32_t *ldam_perms(uint32_t seed, int C, long n)
{
    int32_t *p = malloc((size_t)C * (size_t)n * sizeof *p);
    assert_non_null(p);
    lt_mt19937 s;
    lt_mt19937_seed(&s, seed);
    for (int c = 0; c < C; c++) {
        int32_t *pc = p + (size_t)c * n;
        for (long i = 0; i < n; i++)
            pc[i] = (int32_t)i;
        lt_np_shuffle_i32(&s, pc, n);
    }
    return p;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Rank digest of specs/datasets.md §1.5. */
static void rank_digest(const int32_t *perms, int C, long n, double ir, char hex[65])
{
    size_t cap = (size_t)C * (size_t)n * 8 + 16, len = 0;
    char *str = malloc(cap);
    int32_t *tmp = malloc((size_t)n * sizeof *tmp);
    assert_non_null(str);
    assert_non_null(tmp);
    for (int c = 0; c < C; c++) {
        long nc = (long)((double)n * pow(1.0 / ir, c / (C - 1.0)));
        memcpy(tmp, perms + (size_t)c * n, (size_t)nc * sizeof *tmp);
        qsort(tmp, (size_t)nc, sizeof *tmp, cmp_i32);
        if (c > 0)
            str[len++] = ' ';
        for (long i = 0; i < nc; i++)
            len += (size_t)snprintf(str + len, cap - len, i ? ",%d" : "%d", (int)tmp[i]);
    }
    lt_sha256_buf(str, len, hex);
    free(tmp);
    free(str);
}

static void expect_row(const int32_t *perms, long n, int c, const int32_t want[12])
{
    for (int i = 0; i < 12; i++)
        assert_int_equal(perms[(size_t)c * n + i], want[i]);
}

static void test_ldam_cifar10(void **state)
{
    (void)state;
    static const int32_t p0[12] = {398, 3833, 4836, 4572, 636, 2545, 1161, 2230, 148, 2530, 4070, 1261};
    static const int32_t p1[12] = {597, 332, 521, 3935, 4800, 1102, 4304, 1826, 4282, 2746, 1944, 1989};
    static const int32_t p9[12] = {2204, 3816, 2206, 2507, 1926, 4765, 368, 3808, 4418, 3498, 541, 4760};
    int32_t *perms = ldam_perms(0, 10, 5000);
    expect_row(perms, 5000, 0, p0);
    expect_row(perms, 5000, 1, p1);
    expect_row(perms, 5000, 9, p9);
    static const struct { double ir; const char *hex; } d[4] = {
        {10, "29734c38b1efdfb3fb1f890e0f75de9cb8c7a49cec6cf085ac49af75a7f522b3"},
        {50, "8a24c1e8fcce1680801179d01420655cb05a9799cf8380a888d124ccf96de1e5"},
        {100, "0632086064e4d4dd306ebe21b38c28fc41bb555fea4ce0baaae0864ba78d9c59"},
        {200, "3fed219b89887e59f77f9c21d707e07cbee98d5507fc75afb268b5b0b02cfa05"}};
    for (int k = 0; k < 4; k++) {
        char hex[65];
        rank_digest(perms, 10, 5000, d[k].ir, hex);
        assert_string_equal(hex, d[k].hex);
    }
    free(perms);
}

static void test_ldam_cifar100(void **state)
{
    (void)state;
    static const int32_t p0[12] = {90, 254, 283, 445, 461, 15, 316, 489, 159, 153, 241, 250};
    static const int32_t p1[12] = {277, 307, 436, 88, 261, 57, 413, 459, 398, 201, 103, 44};
    static const int32_t p99[12] = {348, 153, 363, 361, 299, 353, 338, 99, 481, 246, 426, 182};
    int32_t *perms = ldam_perms(0, 100, 500);
    expect_row(perms, 500, 0, p0);
    expect_row(perms, 500, 1, p1);
    expect_row(perms, 500, 99, p99);
    static const struct { double ir; const char *hex; } d[4] = {
        {10, "14f431f80b707474608b052016370ecd7af29c5b4ea074bcac5aa461a81cdc72"},
        {50, "629374088d6117ddd50ad594062558cb0080fbe35ba8198e14f49f6ad68b7dfe"},
        {100, "ca20f49070889af27f53b94e9240800c6c9b9e3f169205a88333e90bf96b2b3f"},
        {200, "cb64024701a0e7b955905c87d26b1291a36877f7bcfdf75cea21017093fb69ff"}};
    for (int k = 0; k < 4; k++) {
        char hex[65];
        rank_digest(perms, 100, 500, d[k].ir, hex);
        assert_string_equal(hex, d[k].hex);
    }
    free(perms);
}

static void test_ldam_fmnist(void **state)
{
    (void)state;
    static const int32_t p0[12] = {4320, 2006, 5689, 472, 1370, 1457, 5783, 3484, 1145, 130, 1136, 4658};
    int32_t *perms = ldam_perms(0, 10, 6000);
    expect_row(perms, 6000, 0, p0);
    char hex[65];
    rank_digest(perms, 10, 6000, 100, hex);
    assert_string_equal(hex, "0349c26f25afbc0ec16b058c1a40d24dd79225482a395f26e16c11d1e9407727");
    free(perms);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_kat),
        cmocka_unit_test(test_rng_stream_is_philox_of_counter),
        cmocka_unit_test(test_rng_determinism_and_independence),
        cmocka_unit_test(test_rng_uniform_moments),
        cmocka_unit_test(test_rng_below_unbiased),
        cmocka_unit_test(test_rng_normal_moments),
        cmocka_unit_test(test_rng_shuffle_permutation),
        cmocka_unit_test(test_mt19937_genrand),
        cmocka_unit_test(test_np_shuffle_vectors),
        cmocka_unit_test(test_np_random_interval),
        cmocka_unit_test(test_ldam_cifar10),
        cmocka_unit_test(test_ldam_cifar100),
        cmocka_unit_test(test_ldam_fmnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
