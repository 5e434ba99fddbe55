/* NaN-safe float assertions for the CMocka tests: include after <cmocka.h>.
 *
 * CMocka 1.1.5's assert_float_equal(a, b, eps) passes whenever a or b is not
 * finite: its comparison computes d = |a - b| and fails only on
 * `d > max(|a|, |b|) * FLT_EPSILON`, which is false when d is NaN (a NaN
 * operand, or inf - inf) and when that bound is itself infinite (an inf
 * operand).  So assert_float_equal(NAN, 1, 1e-6), (INFINITY, 1, 1e-6) and
 * (INFINITY, -INFINITY, 0) all pass, and a computation that broke into NaN
 * satisfies every equality the suite asks of it.
 *
 * The rule here:
 *   - a NaN on either side, or a NaN tolerance, fails: NaN is no value, and a
 *     test comparing against a tolerance means a number;
 *   - an infinity equals only the same infinity (+inf == +inf, -inf == -inf),
 *     so a test may still state that a result is deliberately infinite (a
 *     masked logit, -log 0), but inf never equals a finite value or -inf;
 *   - finite values compare as CMocka does (both sides and the tolerance
 *     converted to float; equal when |a - b| <= eps or
 *     |a - b| <= max(|a|, |b|) * FLT_EPSILON), so finite results keep their
 *     verdicts.  One difference: each argument is converted as a whole,
 *     (float)(x + y), where CMocka's unparenthesised (float)a converted
 *     only the first operand of an expression argument.
 * assert_float_not_equal(a, b, eps) passes only for two values that the rule
 * above calls unequal and neither of which is NaN (CMocka already fails it on
 * NaN; kept so).  This CMocka has no assert_double_equal.
 *
 * A failure prints both values, the tolerance and the difference with %.9g
 * (CMocka's "%f" shows 1e-7 as 0.000000) and reports the assertion's own
 * file:line.  Every argument is evaluated once.
 *
 * lt_tmax(m, e): a maximum for error accumulations that keeps a NaN (fmax
 * drops it: fmax(NaN, x) = x, so a NaN error would vanish from a max and its
 * `max < tol` check would pass).  Once m is NaN it stays NaN. */
#ifndef LT_TESTS_TASSERT_H
#define LT_TESTS_TASSERT_H

#ifndef CMOCKA_H_
#error "tests/tassert.h redefines CMocka's float assertions: include it after <cmocka.h>"
#endif

#include <float.h>
#include <math.h>

/* 1 when a and b are equal under the rule above, 0 when not, -1 when either
 * operand or the tolerance is NaN */
static inline int lt_tassert_float_cmp(float a, float b, float eps) {
    if (isnan(a) || isnan(b) || isnan(eps)) return -1;
    if (isinf(a) || isinf(b)) return a == b;
    const float d = fabsf(a - b);   /* inf when the difference overflows: unequal */
    if (d <= eps) return 1;
    const float la = fabsf(a), lb = fabsf(b);
    return d <= (la > lb ? la : lb) * FLT_EPSILON;
}

static inline void lt_tassert_float_equal(float a, float b, float eps, const char *ea, const char *eb,
                                          const char *file, int line) {
    if (lt_tassert_float_cmp(a, b, eps) == 1) return;
    print_error("%s = %.9g != %s = %.9g (|diff| %.9g, epsilon %.9g%s)\n", ea, (double)a, eb, (double)b,
                (double)fabsf(a - b), (double)eps,
                isfinite(a) && isfinite(b) ? "" : "; a NaN or an infinity fails unless both are the same infinity");
    _fail(file, line);
}

static inline void lt_tassert_float_not_equal(float a, float b, float eps, const char *ea, const char *eb,
                                              const char *file, int line) {
    if (lt_tassert_float_cmp(a, b, eps) == 0) return;
    print_error("%s = %.9g == %s = %.9g (|diff| %.9g, epsilon %.9g%s)\n", ea, (double)a, eb, (double)b,
                (double)fabsf(a - b), (double)eps, isnan(a) || isnan(b) ? "; NaN is neither equal nor unequal to anything" : "");
    _fail(file, line);
}

#undef assert_float_equal
#define assert_float_equal(a, b, epsilon) \
    lt_tassert_float_equal((float)(a), (float)(b), (float)(epsilon), #a, #b, __FILE__, __LINE__)
#undef assert_float_not_equal
#define assert_float_not_equal(a, b, epsilon) \
    lt_tassert_float_not_equal((float)(a), (float)(b), (float)(epsilon), #a, #b, __FILE__, __LINE__)

static inline double lt_tmax(double m, double e) {
    return (isnan(m) || e <= m) ? m : e;
}

#endif
