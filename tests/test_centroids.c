/* test_centroids.c — engine/lt_centroids.h against naive references written
 * here:
 *  - random unit centroids: unit norm, reproducible from the stream;
 *  - the per-update EMA, row by row in double, rows of one class in order,
 *    labels checked before anything changes;
 *  - class sums and the normalised mean estimate (empty classes untouched);
 *  - similarity logits / tau and their gradient into z by finite
 *    differences (centroids constant);
 *  - the backward of lt_l2_normalize_rows by finite differences, and its
 *    clamped branch. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "tassert.h"   /* NaN-safe assert_float_equal */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "lt.h"

static const gc_opts TOL = {1e-3, 1e-2, 1e-5, 0};

static double row_norm(const float *x, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)x[j] * x[j];
    return sqrt(s);
}

static void test_random(void **unused)
{
    (void)unused;
    enum { C = 5, D = 7 };
    float a[C * D], b[C * D];
    lt_rng r;
    lt_rng_init(&r, 3, LT_STREAM_METHOD + 2);
    lt_centroids_random(C, D, a, &r);
    lt_rng_init(&r, 3, LT_STREAM_METHOD + 2);
    lt_centroids_random(C, D, b, &r);
    assert_memory_equal(a, b, sizeof a);
    for (int k = 0; k < C; k++) assert_float_equal(row_norm(a + k * D, D), 1.0, 1e-6);
    /* distinct rows (independent draws) */
    assert_true(memcmp(a, a + D, D * sizeof(float)) != 0);
}

static void test_ema(void **unused)
{
    (void)unused;
    enum { C = 3, D = 4, N = 6 };
    float c[C * D], z[N * D];
    gc_fill(c, C * D, 1, -1, 1);
    gc_fill(z, N * D, 2, -1, 1);
    for (int k = 0; k < C; k++) {   /* unit rows, as the table keeps them */
        const double n = row_norm(c + k * D, D);
        for (int j = 0; j < D; j++) c[k * D + j] = (float)(c[k * D + j] / n);
    }
    const int32_t y[N] = {0, 2, 0, 0, 1, 2};
    const float mu = 0.9f;
    /* naive: row by row, in double */
    double ref[C * D];
    for (int i = 0; i < C * D; i++) ref[i] = c[i];
    float got[C * D];
    memcpy(got, c, sizeof c);
    for (int i = 0; i < N; i++) {
        double v[D], ss = 0;
        for (int j = 0; j < D; j++) {
            v[j] = (double)mu * (float)ref[y[i] * D + j] + (1.0 - (double)mu) * z[i * D + j];
            ss += v[j] * v[j];
        }
        for (int j = 0; j < D; j++) ref[y[i] * D + j] = (float)(v[j] / sqrt(ss));
    }
    assert_int_equal(lt_centroids_ema(C, D, got, N, z, y, mu), LT_OK);
    for (int i = 0; i < C * D; i++) assert_float_equal(got[i], ref[i], 1e-6);
    for (int k = 0; k < C; k++) assert_float_equal(row_norm(got + k * D, D), 1.0, 1e-6);
    /* mu = 1 keeps the table; mu = 0 takes the last row of each class */
    memcpy(got, c, sizeof c);
    assert_int_equal(lt_centroids_ema(C, D, got, N, z, y, 1.0f), LT_OK);
    for (int i = 0; i < C * D; i++) assert_float_equal(got[i], c[i], 1e-6);
    assert_int_equal(lt_centroids_ema(C, D, got, N, z, y, 0.0f), LT_OK);
    const double n3 = row_norm(z + 3 * D, D);
    for (int j = 0; j < D; j++) assert_float_equal(got[j], z[3 * D + j] / n3, 1e-6);
    /* a bad label changes nothing */
    const int32_t bad[N] = {0, 1, 2, 3, 0, 0};
    memcpy(got, c, sizeof c);
    assert_int_equal(lt_centroids_ema(C, D, got, N, z, bad, mu), LT_EINVAL);
    assert_memory_equal(got, c, sizeof c);
    assert_int_equal(lt_centroids_ema(C, D, got, N, z, y, 1.5f), LT_EINVAL);
}

static void test_mean(void **unused)
{
    (void)unused;
    enum { C = 4, D = 3, N = 5 };
    float z[N * D], cent[C * D];
    gc_fill(z, N * D, 5, -1, 1);
    for (int i = 0; i < C * D; i++) cent[i] = -7.0f;
    const int32_t y[N] = {1, 1, 0, 3, 1};
    double sum[C * D] = {0};
    long count[C] = {0};
    assert_int_equal(lt_centroids_accum(C, D, sum, count, 3, z, y), LT_OK);
    assert_int_equal(lt_centroids_accum(C, D, sum, count, 2, z + 3 * D, y + 3), LT_OK);
    assert_int_equal(count[0], 1);
    assert_int_equal(count[1], 3);
    assert_int_equal(count[2], 0);
    assert_int_equal(count[3], 1);
    assert_int_equal(lt_centroids_from_sums(C, D, sum, count, cent), 3);
    double m[D], ss = 0;
    for (int j = 0; j < D; j++) {
        m[j] = (double)z[0 * D + j] + z[1 * D + j] + z[4 * D + j];
        ss += m[j] * m[j];
    }
    for (int j = 0; j < D; j++) assert_float_equal(cent[1 * D + j], m[j] / sqrt(ss), 1e-6);
    for (int j = 0; j < D; j++) assert_true(cent[2 * D + j] == -7.0f);   /* no sample: untouched */
    const int32_t bad[1] = {4};
    assert_int_equal(lt_centroids_accum(C, D, sum, count, 1, z, bad), LT_EINVAL);
    assert_int_equal(count[1], 3);
}

/* ---- gradients ---------------------------------------------------------------- */

enum { GN = 3, GC = 4, GD = 5 };
typedef struct {
    float *x, *c, *r;     /* the checked input, centroids, projection weights */
    float inv_tau;
} gctx;

static double logits_loss(void *p)
{
    gctx *g = p;
    float s[GN * GC];
    lt_centroids_logits(GN, GC, GD, g->x, g->c, g->inv_tau, s);
    return gc_dot(s, g->r, GN * GC);
}

static void test_logits(void **unused)
{
    (void)unused;
    float z[GN * GD], c[GC * GD], r[GN * GC], s[GN * GC], dz[GN * GD];
    gc_fill(z, GN * GD, 7, -1, 1);
    gc_fill(c, GC * GD, 8, -1, 1);
    gc_fill(r, GN * GC, 9, -1, 1);
    const float it = 1 / 0.1f;
    lt_centroids_logits(GN, GC, GD, z, c, it, s);
    for (int i = 0; i < GN; i++)
        for (int k = 0; k < GC; k++) {
            double a = 0;
            for (int j = 0; j < GD; j++) a += (double)z[i * GD + j] * c[k * GD + j];
            assert_float_equal(s[i * GC + k], a * it, 1e-4);
        }
    lt_centroids_logits_backward(GN, GC, GD, r, c, it, dz);
    gctx g = {z, c, r, it};
    assert_int_equal(gc_check("centroid logits dz", logits_loss, &g, z, dz, GN * GD, &TOL), 0);
}

static double norm_loss(void *p)
{
    gctx *g = p;
    float y[GN * GD];
    lt_l2_normalize_rows(GN, GD, g->x, 1e-12f, y);
    return gc_dot(y, g->r, GN * GD);
}

static void test_l2_backward(void **unused)
{
    (void)unused;
    float x[GN * GD], y[GN * GD], r[GN * GD], dx[GN * GD];
    gc_fill(x, GN * GD, 11, -1, 1);
    gc_fill(r, GN * GD, 12, -1, 1);
    lt_l2_normalize_rows(GN, GD, x, 1e-12f, y);
    lt_l2_normalize_rows_backward(GN, GD, x, y, r, 1e-12f, dx);
    gctx g = {x, NULL, r, 0};
    assert_int_equal(gc_check("l2 normalize dx", norm_loss, &g, x, dx, GN * GD, &TOL), 0);
    /* the gradient is orthogonal to y (the norm does not move along y) */
    for (int i = 0; i < GN; i++) {
        double dot = 0;
        for (int j = 0; j < GD; j++) dot += (double)dx[i * GD + j] * y[i * GD + j];
        assert_true(fabs(dot) < 1e-5);
    }
    /* in place, and the clamped branch: a row shorter than eps is x / eps */
    float tiny[GD] = {1e-4f, -2e-4f, 0, 3e-4f, 0}, ty[GD], g1[GD];
    memcpy(g1, r, sizeof g1);
    lt_l2_normalize_rows(1, GD, tiny, 1.0f, ty);
    lt_l2_normalize_rows_backward(1, GD, tiny, ty, g1, 1.0f, g1);
    for (int j = 0; j < GD; j++) assert_float_equal(g1[j], r[j], 1e-7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_ema),
        cmocka_unit_test(test_mean),
        cmocka_unit_test(test_logits),
        cmocka_unit_test(test_l2_backward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
