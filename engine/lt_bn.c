/* lt_bn.c — batch normalisation over (N, H, W) per channel, PyTorch semantics.
 *
 * Train mode normalises with the biased batch variance and updates the
 * running variance with the unbiased one (M/(M-1), M = N*HW), exactly as
 * torch.nn.BatchNorm2d does. Statistics and the backward reductions are
 * accumulated in double, two-pass (mean first, then centred squares), so a
 * large mean does not cancel away the variance in float.
 *
 * Every loop is parallel over channels: a channel's reduction runs on one
 * thread in a fixed (n, p) order, so results do not depend on the schedule.
 * The inner loops are `omp simd` reductions: the compiler keeps a fixed
 * number of partial sums in vector lanes (fixed for a given build), which
 * changes the rounding of the double sums by ~1e-16 relative, not their
 * determinism.
 * gamma / beta may be NULL (treated as 1 / 0, an affine-free BN) and so may
 * the running statistics in train mode (no update). */
#include "lt_ops.h"

#include <math.h>

#define LT_BN_PAR_MIN 32768

void lt_bn_forward_train(int N, int C, int HW, const float *x, const float *gamma,
                         const float *beta, float *y, float *mean, float *rstd,
                         float *run_mean, float *run_var, float momentum, float eps) {
    const size_t M = (size_t)N * HW, CHW = (size_t)C * HW;
#pragma omp parallel for schedule(static) if (M * C >= LT_BN_PAR_MIN)
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int n = 0; n < N; n++) {
            const float *xp = x + n * CHW + (size_t)c * HW;
#pragma omp simd reduction(+ : s)
            for (int p = 0; p < HW; p++) s += xp[p];
        }
        const double mu = s / (double)M;
        double ss = 0;
        for (int n = 0; n < N; n++) {
            const float *xp = x + n * CHW + (size_t)c * HW;
#pragma omp simd reduction(+ : ss)
            for (int p = 0; p < HW; p++) {
                double d = xp[p] - mu;
                ss += d * d;
            }
        }
        const double var = ss / (double)M;           /* biased: used to normalise */
        const double rs = 1.0 / sqrt(var + (double)eps);
        mean[c] = (float)mu;
        rstd[c] = (float)rs;
        if (run_mean && run_var) {
            const double unb = M > 1 ? ss / (double)(M - 1) : var;
            run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * mu);
            run_var[c] = (float)((1.0 - momentum) * run_var[c] + momentum * unb);
        }
        /* y = (x - mean)*a + beta, a = gamma*rstd; centring first (rather
         * than x*a + (beta - mean*a)) avoids cancellation for large means */
        const float a = (float)((gamma ? gamma[c] : 1.0f) * rs);
        const float bb = beta ? beta[c] : 0.0f, fmu = (float)mu;
        for (int n = 0; n < N; n++) {
            const float *xp = x + n * CHW + (size_t)c * HW;
            float *yp = y + n * CHW + (size_t)c * HW;
#pragma omp simd
            for (int p = 0; p < HW; p++) yp[p] = lt_bn_affine(xp[p], fmu, a, bb);
        }
    }
}

static void eval_coeff(int c, const float *gamma, const float *beta, const float *run_mean,
                       const float *run_var, float eps, float *mu, float *a, float *b) {
    const double rs = 1.0 / sqrt((double)run_var[c] + (double)eps);
    *a = (float)((gamma ? gamma[c] : 1.0f) * rs);
    *b = beta ? beta[c] : 0.0f;
    *mu = run_mean[c];
}

void lt_bn_eval_coeffs(int C, const float *gamma, const float *beta, const float *run_mean,
                       const float *run_var, float eps, float *mu, float *a, float *b) {
    for (int c = 0; c < C; c++) eval_coeff(c, gamma, beta, run_mean, run_var, eps, &mu[c], &a[c], &b[c]);
}

void lt_bn_forward_eval(int N, int C, int HW, const float *x, const float *gamma,
                        const float *beta, const float *run_mean, const float *run_var,
                        float eps, float *y) {
    const size_t CHW = (size_t)C * HW;
#pragma omp parallel for schedule(static) if ((size_t)N * CHW >= LT_BN_PAR_MIN)
    for (int c = 0; c < C; c++) {
        float a, bb, fmu;
        eval_coeff(c, gamma, beta, run_mean, run_var, eps, &fmu, &a, &bb);
        for (int n = 0; n < N; n++) {
            const float *xp = x + n * CHW + (size_t)c * HW;
            float *yp = y + n * CHW + (size_t)c * HW;
#pragma omp simd
            for (int p = 0; p < HW; p++) yp[p] = lt_bn_affine(xp[p], fmu, a, bb);
        }
    }
}

void lt_bn_backward_train(int N, int C, int HW, const float *x, const float *gamma,
                          const float *mean, const float *rstd, const float *dy,
                          float *dx, float *dgamma, float *dbeta) {
    lt_bn_backward_train_x(N, C, HW, x, gamma, mean, rstd, dy, dx, dgamma, dbeta, 0);
}

void lt_bn_backward_train_x(int N, int C, int HW, const float *x, const float *gamma,
                            const float *mean, const float *rstd, const float *dy,
                            float *dx, float *dgamma, float *dbeta, int set) {
    const size_t M = (size_t)N * HW, CHW = (size_t)C * HW;
#pragma omp parallel for schedule(static) if (M * C >= LT_BN_PAR_MIN)
    for (int c = 0; c < C; c++) {
        const double mu = mean[c], rs = rstd[c];
        double sdy = 0, sdyx = 0;   /* sum(dy), sum(dy * xhat) */
        for (int n = 0; n < N; n++) {
            const float *xp = x + n * CHW + (size_t)c * HW;
            const float *dp = dy + n * CHW + (size_t)c * HW;
#pragma omp simd reduction(+ : sdy, sdyx)
            for (int p = 0; p < HW; p++) {
                sdy += dp[p];
                sdyx += dp[p] * ((xp[p] - mu) * rs);
            }
        }
        if (dgamma) dgamma[c] += (float)sdyx;
        if (dbeta) dbeta[c] += (float)sdy;
        if (!dx) continue;
        /* dx = gamma*rstd/M * (M*dy - sum(dy) - xhat*sum(dy*xhat))
         *    = k*dy + kx*xhat + k0,  xhat = (x - mean)*rstd.
         * xhat is formed explicitly (not folded into x*a + b) so that a large
         * mean does not cancel in float. */
        const double gm = gamma ? gamma[c] : 1.0;
        const float fk = (float)(gm * rs);
        const float fkx = (float)(-gm * rs * sdyx / (double)M);
        const float fk0 = (float)(-gm * rs * sdy / (double)M);
        const float fmu = (float)mu, frs = (float)rs;
        for (int n = 0; n < N; n++) {
            const float *xp = x + n * CHW + (size_t)c * HW;
            const float *dp = dy + n * CHW + (size_t)c * HW;
            float *gp = dx + n * CHW + (size_t)c * HW;
            if (set) {
#pragma omp simd
                for (int p = 0; p < HW; p++) gp[p] = fk * dp[p] + fkx * ((xp[p] - fmu) * frs) + fk0;
            } else {
#pragma omp simd
                for (int p = 0; p < HW; p++) gp[p] += fk * dp[p] + fkx * ((xp[p] - fmu) * frs) + fk0;
            }
        }
    }
}

void lt_bn_backward_eval(int N, int C, int HW, const float *x, const float *gamma,
                         const float *run_mean, const float *run_var, float eps,
                         const float *dy, float *dx, float *dgamma, float *dbeta) {
    lt_bn_backward_eval_x(N, C, HW, x, gamma, run_mean, run_var, eps, dy, dx, dgamma, dbeta, 0);
}

void lt_bn_backward_eval_x(int N, int C, int HW, const float *x, const float *gamma,
                           const float *run_mean, const float *run_var, float eps,
                           const float *dy, float *dx, float *dgamma, float *dbeta, int set) {
    const size_t CHW = (size_t)C * HW;
#pragma omp parallel for schedule(static) if ((size_t)N * CHW >= LT_BN_PAR_MIN)
    for (int c = 0; c < C; c++) {
        const double mu = run_mean[c];
        const double rs = 1.0 / sqrt((double)run_var[c] + (double)eps);
        if (dgamma || dbeta) {
            double sdy = 0, sdyx = 0;
            for (int n = 0; n < N; n++) {
                const float *xp = x + n * CHW + (size_t)c * HW;
                const float *dp = dy + n * CHW + (size_t)c * HW;
                for (int p = 0; p < HW; p++) {
                    sdy += dp[p];
                    sdyx += dp[p] * ((xp[p] - mu) * rs);
                }
            }
            if (dgamma) dgamma[c] += (float)sdyx;
            if (dbeta) dbeta[c] += (float)sdy;
        }
        if (!dx) continue;
        const float a = (float)((gamma ? gamma[c] : 1.0f) * rs);
        for (int n = 0; n < N; n++) {
            const float *dp = dy + n * CHW + (size_t)c * HW;
            float *gp = dx + n * CHW + (size_t)c * HW;
            if (set) {
#pragma omp simd
                for (int p = 0; p < HW; p++) gp[p] = a * dp[p];
            } else {
#pragma omp simd
                for (int p = 0; p < HW; p++) gp[p] += a * dp[p];
            }
        }
    }
}
