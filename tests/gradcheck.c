/* gradcheck.c — see gradcheck.h. */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>

int gc_check(const char *what, gc_loss_fn f, void *ctx, float *x, const float *g, size_t n,
             const gc_opts *o) {
    size_t step = 1;
    if (o->max_checks && n > o->max_checks) step = (n + o->max_checks - 1) / o->max_checks;
    int bad = 0;
    double worst = -INFINITY, wnum = 0, wana = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i += step) {
        float orig = x[i];
        x[i] = orig + (float)o->eps;
        double fp = f(ctx);
        x[i] = orig - (float)o->eps;
        double fm = f(ctx);
        x[i] = orig;
        /* use the actually representable perturbation */
        double h = ((double)(orig + (float)o->eps) - (double)(orig - (float)o->eps));
        double num = (fp - fm) / h;
        double ana = g[i];
        double err = fabs(num - ana);
        double tol = o->atol + o->rtol * fmax(fabs(num), fabs(ana));
        /* A non-finite loss difference or gradient fails: written as
         * !(err <= tol) and with isfinite() because NaN compares false with
         * everything (a `score > 0` test let a NaN gradient pass) and an
         * infinite one gives err = tol = inf. Such an element is the worst. */
        int ok = isfinite(num) && isfinite(ana) && err <= tol;
        double score = ok ? err - tol : INFINITY;
        if (!ok) bad++;
        if (i == 0 || score > worst) { worst = score; wnum = num; wana = ana; wi = i; }
    }
    printf("note: gradcheck %s: %s (n=%zu, worst i=%zu num=%.6g ana=%.6g)\n", what,
           bad ? "FAIL" : "ok", n, wi, wnum, wana);
    return bad;
}

void gc_fill(float *x, size_t n, unsigned seed, float lo, float hi) {
    unsigned long long s = 0x9E3779B97F4A7C15ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s >> 11) / 9007199254740992.0;
        x[i] = (float)(lo + (hi - lo) * u);
    }
}

double gc_dot(const float *a, const float *r, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * r[i];
    return s;
}
