/* lt_calib.c — temperature scaling (lt_calib.h). */
#include <math.h>

#include "lt_calib.h"

double lt_temp_nll(int N, int C, const float *scores, const int32_t *labels, double T)
{
    if (N <= 0 || C <= 0 || !scores || !labels || !(T > 0) || !isfinite(T)) return NAN;
    double sum = 0;
    for (int i = 0; i < N; i++) {
        const float *r = scores + (size_t)i * C;
        if (labels[i] < 0 || labels[i] >= C) return NAN;
        double mx = r[0];
        for (int j = 0; j < C; j++) {
            if (!isfinite(r[j])) return NAN;
            if (r[j] > mx) mx = r[j];
        }
        double s = 0;
        for (int j = 0; j < C; j++) s += exp(((double)r[j] - mx) / T);
        /* -log p_y = log sum exp((s_j - max) / T) - (s_y - max) / T */
        sum += log(s) - ((double)r[labels[i]] - mx) / T;
    }
    return sum / N;
}

int lt_temp_fit(int N, int C, const float *scores, const int32_t *labels, double *T, double *nll_before,
                double *nll_after, int *at_bound)
{
    if (N <= 0 || C <= 0 || !scores || !labels || !T)
        return lt_err(LT_EINVAL, "temperature fit: %d rows x %d classes (need at least one of each)", N, C);
    const double before = lt_temp_nll(N, C, scores, labels, 1.0);
    if (!isfinite(before))
        return lt_err(LT_EINVAL, "temperature fit: a score is not finite or a label is outside 0..%d", C - 1);
    /* Golden section on u = log T; the interior points are kept so each
     * step evaluates the NLL once. */
    const double g = 0.5 * (sqrt(5.0) - 1.0);
    double a = log(LT_TEMP_MIN), b = log(LT_TEMP_MAX);
    double x1 = b - g * (b - a), x2 = a + g * (b - a);
    double f1 = lt_temp_nll(N, C, scores, labels, exp(x1)), f2 = lt_temp_nll(N, C, scores, labels, exp(x2));
    while (b - a > 1e-9) {
        if (f1 <= f2) {   /* ties go left: the same answer on every machine */
            b = x2; x2 = x1; f2 = f1;
            x1 = b - g * (b - a);
            f1 = lt_temp_nll(N, C, scores, labels, exp(x1));
        } else {
            a = x1; x1 = x2; f1 = f2;
            x2 = a + g * (b - a);
            f2 = lt_temp_nll(N, C, scores, labels, exp(x2));
        }
    }
    double u = 0.5 * (a + b), t = exp(u), after = lt_temp_nll(N, C, scores, labels, t);
    /* T = 1 is a candidate too: the fit must never make the NLL worse than
     * the unscaled softmax because the bracket or the tolerance cut it. */
    if (before < after) { t = 1.0; after = before; }
    *T = t;
    if (nll_before) *nll_before = before;
    if (nll_after) *nll_after = after;
    if (at_bound) *at_bound = u - log(LT_TEMP_MIN) < 1e-6 || log(LT_TEMP_MAX) - u < 1e-6;
    return LT_OK;
}

int lt_temp_conf(int N, int C, const float *scores, const int32_t *labels, double T, float *conf,
                 uint8_t *correct)
{
    if (N < 0 || C <= 0 || !scores || !conf || !correct || !(T > 0) || !isfinite(T))
        return lt_err(LT_EINVAL, "temperature confidences: %d rows x %d classes, T = %g", N, C, T);
    for (int i = 0; i < N; i++) {
        const float *r = scores + (size_t)i * C;
        int best = 0;
        for (int j = 1; j < C; j++)
            if (r[j] > r[best]) best = j;
        double s = 0;
        for (int j = 0; j < C; j++) s += exp(((double)r[j] - r[best]) / T);
        conf[i] = (float)(1.0 / s);
        correct[i] = labels && labels[i] == best;
    }
    return LT_OK;
}
