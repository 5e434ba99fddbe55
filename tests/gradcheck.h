/* gradcheck.h — finite-difference gradient checking for the tests.
 *
 * A check perturbs x[i] by ±eps, re-evaluates the scalar loss f(ctx) (which
 * must read x), and compares (f(x+eps) - f(x-eps)) / 2eps with the analytic
 * gradient g[i]. Each element passes when num and ana are finite and
 *     |num - ana| <= atol + rtol * max(|num|, |ana|)
 * (a NaN or infinite loss difference or gradient fails).
 * Float32 forward passes limit precision, so callers choose eps ~1e-2..1e-3
 * and rtol ~1e-2; the losses evaluate in double where possible. */
#ifndef LT_GRADCHECK_H
#define LT_GRADCHECK_H

#include <stddef.h>

typedef double (*gc_loss_fn)(void *ctx);

typedef struct {
    double eps, rtol, atol;
    size_t max_checks;   /* check at most this many elements, spread evenly (0 = all) */
} gc_opts;

/* Returns the number of failing elements (0 = pass) and prints the worst
 * element as "gradcheck <what>: worst i=.. num=.. ana=..". */
int gc_check(const char *what, gc_loss_fn f, void *ctx, float *x, const float *g, size_t n,
             const gc_opts *o);

/* Deterministic test data: uniform in [lo, hi) from a fixed LCG seed. */
void gc_fill(float *x, size_t n, unsigned seed, float lo, float hi);
/* sum_i a[i] * r[i] in double: the projection loss used to test layers, whose
 * gradient with respect to a is r. */
double gc_dot(const float *a, const float *r, size_t n);

#endif
