/* test_calib.c — temperature scaling (engine/lt_calib.c) against naive
 * references: the NLL written from the definition in long double, the
 * fitted T against a fine grid search, T recovered when the scores are known
 * logits multiplied by k, the derivative of the NLL at the fitted T by
 * finite differences, and the scaled softmax's confidences. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"

/* splitmix64: test data independent of the engine's RNG */
static uint64_t g_s;
static double unif(void) {
    uint64_t z = (g_s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}
static double gauss(void) { return sqrt(-2 * log(1 - unif())) * cos(6.283185307179586 * unif()); }

/* N rows of "true" logits z (scale sd) and labels drawn from softmax(z):
 * then T = 1 is the best temperature for z in expectation. */
static void synth(int N, int C, double sd, float *z, int32_t *y) {
    for (int i = 0; i < N; i++) {
        double p[64], s = 0;
        for (int j = 0; j < C; j++) { z[i * C + j] = (float)(sd * gauss()); p[j] = exp(z[i * C + j]); s += p[j]; }
        double u = unif() * s, acc = 0;
        y[i] = C - 1;
        for (int j = 0; j < C; j++) { acc += p[j]; if (u < acc) { y[i] = j; break; } }
    }
}

static double naive_nll(int N, int C, const float *s, const int32_t *y, double T) {
    long double sum = 0;
    for (int i = 0; i < N; i++) {
        long double den = 0;
        for (int j = 0; j < C; j++) den += expl((long double)s[i * C + j] / T);
        sum += -logl(expl((long double)s[i * C + y[i]] / T) / den);
    }
    return (double)(sum / N);
}

static void test_nll_matches_definition(void **st) {
    (void)st;
    enum { N = 200, C = 7 };
    static float z[N * C];
    static int32_t y[N];
    g_s = 1;
    synth(N, C, 2.0, z, y);
    const double Ts[] = {0.05, 0.3, 1.0, 2.5, 40.0};
    for (int k = 0; k < 5; k++) {
        double a = lt_temp_nll(N, C, z, y, Ts[k]), b = naive_nll(N, C, z, y, Ts[k]);
        assert_true(fabs(a - b) <= 1e-9 * fmax(1.0, fabs(b)));
    }
    /* large scores (NCM distances): no overflow, max subtracted first */
    float big[2 * 3] = {3000, 2990, 1000, -5000, -4990, -6000};
    int32_t yb[2] = {1, 1};
    double v = lt_temp_nll(2, 3, big, yb, 1.0);
    assert_true(isfinite(v));
    assert_true(fabs(v - 0.5 * ((10 + log1p(exp(-10) + exp(-2000))) + log1p(exp(-10) + exp(-1000)))) < 1e-9);
    /* bad input is NAN */
    int32_t ybad[1] = {3};
    assert_true(isnan(lt_temp_nll(1, 3, big, ybad, 1.0)));
    assert_true(isnan(lt_temp_nll(2, 3, big, yb, 0.0)));
    assert_true(isnan(lt_temp_nll(0, 3, big, yb, 1.0)));
}

/* The fit against a grid of 4001 temperatures, log-spaced over the bracket:
 * the fitted NLL is no worse than the grid's best, and T lies within one grid
 * step of the grid's argmin. */
static void test_fit_matches_grid_search(void **st) {
    (void)st;
    enum { N = 500, C = 10 };
    static float z[N * C];
    static int32_t y[N];
    const double scale[3] = {0.2, 3.0, 40.0};   /* under-confident, near, over-confident */
    for (int c = 0; c < 3; c++) {
        g_s = 7 + c;
        synth(N, C, 1.5, z, y);
        for (int i = 0; i < N * C; i++) z[i] *= (float)scale[c];
        double T, before, after;
        int at_bound = -1;
        assert_int_equal(lt_temp_fit(N, C, z, y, &T, &before, &after, &at_bound), LT_OK);
        assert_int_equal(at_bound, 0);
        const int G = 4001;
        const double lo = log(LT_TEMP_MIN), hi = log(LT_TEMP_MAX), step = (hi - lo) / (G - 1);
        double best = INFINITY, bestT = 0;
        for (int g = 0; g < G; g++) {
            double t = exp(lo + g * step), v = naive_nll(N, C, z, y, t);
            if (v < best) { best = v; bestT = t; }
        }
        assert_true(after <= best + 1e-9);
        assert_true(fabs(log(T) - log(bestT)) <= step);
        assert_true(fabs(before - naive_nll(N, C, z, y, 1.0)) < 1e-9);
        assert_true(fabs(after - naive_nll(N, C, z, y, T)) < 1e-9);
        assert_true(after <= before);
        /* d NLL / d log T = 0 at the fit, by central differences */
        const double h = 1e-4;
        double d = (lt_temp_nll(N, C, z, y, T * exp(h)) - lt_temp_nll(N, C, z, y, T * exp(-h))) / (2 * h);
        assert_true(fabs(d) < 1e-5);
    }
}

/* Scores z = k * (true logits): the fitted T is k (up to the sampling noise
 * of the labels: about 4% at N = 20000). */
static void test_known_temperature_recovered(void **st) {
    (void)st;
    enum { N = 20000, C = 5 };
    static float z[N * C];
    static int32_t y[N];
    const double ks[3] = {0.25, 1.0, 6.0};
    for (int c = 0; c < 3; c++) {
        g_s = 100 + c;
        synth(N, C, 2.0, z, y);
        for (int i = 0; i < N * C; i++) z[i] *= (float)ks[c];
        double T;
        assert_int_equal(lt_temp_fit(N, C, z, y, &T, NULL, NULL, NULL), LT_OK);
        print_message("note: k = %g, fitted T = %.4f\n", ks[c], T);
        assert_true(fabs(T / ks[c] - 1) < 0.04);
    }
}

/* Deterministic, and separable data ends on the bracket's lower edge. */
static void test_fit_deterministic_and_bounds(void **st) {
    (void)st;
    enum { N = 300, C = 4 };
    static float z[N * C];
    static int32_t y[N];
    g_s = 5;
    synth(N, C, 1.0, z, y);
    double T1, T2;
    assert_int_equal(lt_temp_fit(N, C, z, y, &T1, NULL, NULL, NULL), LT_OK);
    assert_int_equal(lt_temp_fit(N, C, z, y, &T2, NULL, NULL, NULL), LT_OK);
    assert_memory_equal(&T1, &T2, sizeof T1);
    /* every row right by a margin: the NLL falls as T -> 0 */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) z[i * C + j] = j == y[i] ? 1.0f : 0.0f;
    int at_bound;
    double after;
    assert_int_equal(lt_temp_fit(N, C, z, y, &T1, NULL, &after, &at_bound), LT_OK);
    assert_int_equal(at_bound, 1);
    assert_true(T1 < 2 * LT_TEMP_MIN);
    assert_true(after < 1e-12);
    /* bad input: an error naming the problem, not a number */
    y[0] = C;
    assert_int_equal(lt_temp_fit(N, C, z, y, &T1, NULL, NULL, NULL), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "temperature fit"));
    assert_int_equal(lt_temp_fit(0, C, z, y, &T1, NULL, NULL, NULL), LT_EINVAL);
}

/* Confidences: max of softmax(s / T) written naively; prediction argmax with
 * the lowest index on ties; ECE of the scaled confidences equals lt_ece of
 * the naive ones. */
static void test_conf_matches_naive(void **st) {
    (void)st;
    enum { N = 400, C = 6 };
    static float z[N * C], conf[N];
    static int32_t y[N];
    static uint8_t ok[N];
    g_s = 9;
    synth(N, C, 2.0, z, y);
    z[0] = z[1] = 50;   /* a tie in row 0: class 0 wins */
    const double T = 1.7;
    assert_int_equal(lt_temp_conf(N, C, z, y, T, conf, ok), LT_OK);
    static float nconf[N];
    static uint8_t nok[N];
    for (int i = 0; i < N; i++) {
        long double den = 0, best = -1;
        int arg = 0;
        for (int j = 0; j < C; j++) den += expl((long double)z[i * C + j] / T);
        for (int j = 0; j < C; j++) {
            long double p = expl((long double)z[i * C + j] / T) / den;
            if (p > best) { best = p; arg = j; }
        }
        nconf[i] = (float)best;
        nok[i] = arg == y[i];
        assert_true(fabsf(conf[i] - nconf[i]) < 1e-6f);
        assert_int_equal(ok[i], nok[i]);
    }
    assert_int_equal(ok[0], y[0] == 0);
    assert_true(fabs(lt_ece(N, conf, ok, 15) - lt_ece(N, nconf, nok, 15)) < 1e-6);
    assert_int_equal(lt_temp_conf(N, C, z, y, 0.0, conf, ok), LT_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nll_matches_definition),
        cmocka_unit_test(test_fit_matches_grid_search),
        cmocka_unit_test(test_known_temperature_recovered),
        cmocka_unit_test(test_fit_deterministic_and_bounds),
        cmocka_unit_test(test_conf_matches_naive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
