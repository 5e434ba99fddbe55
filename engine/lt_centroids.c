/* lt_centroids.c — see lt_centroids.h. */
#include "lt_centroids.h"

#include <math.h>
#include <string.h>

void lt_centroids_random(int C, int d, float *cent, lt_rng *rng)
{
    for (int k = 0; k < C; k++) {
        float *c = cent + (size_t)k * d;
        double ss = 0;
        for (int j = 0; j < d; j++) {
            c[j] = (float)lt_rng_normal(rng);
            ss += (double)c[j] * c[j];
        }
        /* a zero draw has probability 0; guard the division anyway */
        const double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
        for (int j = 0; j < d; j++) c[j] = (float)(c[j] * inv);
    }
}

static int check_labels(const char *what, int C, int n, const int32_t *y)
{
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= C)
            return lt_err(LT_EINVAL, "%s: row %d has label %d outside [0, %d)", what, i, (int)y[i], C);
    return LT_OK;
}

int lt_centroids_ema(int C, int d, float *cent, int n, const float *z, const int32_t *y, float mu)
{
    if (C < 1 || d < 1 || n < 0 || !cent || (n > 0 && (!z || !y)))
        return lt_err(LT_EINVAL, "centroids_ema: bad arguments (C %d, d %d, n %d)", C, d, n);
    if (!(mu >= 0 && mu <= 1)) return lt_err(LT_EINVAL, "centroids_ema: momentum %g outside [0, 1]", (double)mu);
    LT_TRY(check_labels("centroids_ema", C, n, y));
    const double m = mu, w = 1.0 - (double)mu;
    for (int i = 0; i < n; i++) {
        float *c = cent + (size_t)y[i] * d;
        const float *zi = z + (size_t)i * d;
        double ss = 0;
        for (int j = 0; j < d; j++) {
            const double v = m * c[j] + w * zi[j];
            ss += v * v;
        }
        if (!(ss > 0)) continue;   /* nothing to normalise: keep the old centroid */
        const double inv = 1.0 / sqrt(ss);
        for (int j = 0; j < d; j++) c[j] = (float)((m * c[j] + w * zi[j]) * inv);
    }
    return LT_OK;
}

int lt_centroids_accum(int C, int d, double *sum, long *count, int n, const float *z, const int32_t *y)
{
    if (C < 1 || d < 1 || n < 0 || !sum || !count || (n > 0 && (!z || !y)))
        return lt_err(LT_EINVAL, "centroids_accum: bad arguments (C %d, d %d, n %d)", C, d, n);
    LT_TRY(check_labels("centroids_accum", C, n, y));
    for (int i = 0; i < n; i++) {
        double *s = sum + (size_t)y[i] * d;
        const float *zi = z + (size_t)i * d;
        for (int j = 0; j < d; j++) s[j] += zi[j];
        count[y[i]]++;
    }
    return LT_OK;
}

int lt_centroids_from_sums(int C, int d, const double *sum, const long *count, float *cent)
{
    int set = 0;
    for (int k = 0; k < C; k++) {
        if (count[k] <= 0) continue;
        const double *s = sum + (size_t)k * d;
        double ss = 0;
        for (int j = 0; j < d; j++) ss += s[j] * s[j];
        if (!(ss > 0)) continue;
        const double inv = 1.0 / sqrt(ss);
        for (int j = 0; j < d; j++) cent[(size_t)k * d + j] = (float)(s[j] * inv);
        set++;
    }
    return set;
}

void lt_centroids_logits(int n, int C, int d, const float *z, const float *cent, float inv_tau, float *s)
{
    for (int i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * d;
        for (int k = 0; k < C; k++) {
            const float *c = cent + (size_t)k * d;
            double acc = 0;
            for (int j = 0; j < d; j++) acc += (double)zi[j] * c[j];
            s[(size_t)i * C + k] = (float)(acc * inv_tau);
        }
    }
}

void lt_centroids_logits_backward(int n, int C, int d, const float *ds, const float *cent, float inv_tau,
                                  float *dz)
{
    for (int i = 0; i < n; i++) {
        const float *g = ds + (size_t)i * C;
        float *o = dz + (size_t)i * d;
        for (int j = 0; j < d; j++) {
            double acc = 0;
            for (int k = 0; k < C; k++) acc += (double)g[k] * cent[(size_t)k * d + j];
            o[j] = (float)(acc * inv_tau);
        }
    }
}

void lt_l2_normalize_rows_backward(int n, int d, const float *x, const float *y, const float *dy, float eps,
                                   float *dx)
{
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d, *yi = y + (size_t)i * d, *gi = dy + (size_t)i * d;
        float *o = dx + (size_t)i * d;
        double ss = 0, dot = 0;
        for (int j = 0; j < d; j++) {
            ss += (double)xi[j] * xi[j];
            dot += (double)yi[j] * gi[j];
        }
        const double nx = sqrt(ss);
        if (nx > (double)eps) {
            const double inv = 1.0 / nx;
            for (int j = 0; j < d; j++) o[j] = (float)(((double)gi[j] - yi[j] * dot) * inv);
        } else {
            /* clamped: y = x / eps, a linear map */
            const double inv = 1.0 / (double)eps;
            for (int j = 0; j < d; j++) o[j] = (float)(gi[j] * inv);
        }
    }
}
