/* lt_bn.c — batch normalisation over (N, H, W) per channel, PyTorch semantics.
 *
 * Train mode normalises with the biased batch variance and updates the
 * running variance with the unbiased one (M/(M-1), M = N*HW), exactly as
 * torch.nn.BatchNorm2d does. Statistics and the backward reductions are
 * accumulated in double. The variance comes from one pass of shifted sums,
 * sum(x - K) and sum((x - K)^2) with K a sample of the channel (the "shifted
 * data" algorithm): with K near the mean nothing cancels, and in double a
 * large mean would have to exceed the spread by ~1e6 before it mattered.
 *
 * Every loop is parallel over channels: a channel's reduction runs on one
 * thread in a fixed order, so results do not depend on the schedule. The
 * sums are kept in LT_BN_LANES explicit partial sums (lane l takes the
 * elements p with p % LT_BN_LANES == l of each full block), added in lane
 * order at the end: deterministic, and enough independent add chains to
 * keep the FP units busy. (Engine 0.2.0 used one omp-simd reduction per sum
 * and two passes for the variance: a single dependency chain of double adds
 * made BN a sixth of a ResNet step, seven times a memory pass.)
 * gamma / beta may be NULL (treated as 1 / 0, an affine-free BN) and so may
 * the running statistics in train mode (no update). */
#include "lt_ops.h"

#include <math.h>

#define LT_BN_PAR_MIN 32768
#define LT_BN_LANES 32

/* A channel's N blocks are CHW apart: each is a new stream the hardware
 * prefetcher starts cold (it does not cross 4 KiB pages; at 8x8 a block is
 * 256 bytes), and the activations are megabytes, out of L2. So each loop
 * asks for the block about 2 KiB ahead: pf_ahead(HW) images on. Measured
 * (ResNet-32 training step, 2 threads): chan_sums, chan_affine and chan_dx
 * had been 14% of it. */
static inline int pf_ahead(int HW) {
    const int b = HW * (int)sizeof(float);
    return b >= 2048 ? 1 : (2048 + b - 1) / b;
}
static inline void pf_block(const float *p, int HW) {
    for (int b = 0; b < HW * (int)sizeof(float); b += 64) __builtin_prefetch((const char *)p + b, 0, 3);
}

/* y = lt_bn_affine(x, mu, a, b) over one channel's N blocks, then the ReLU
 * when relu (what the in-place ReLU after the BN would compute, without its
 * pass over y). */
LT_HOT static void chan_affine(int N, int HW, size_t CHW, const float *x0, float mu, float a, float b,
                               int relu, float *y0) {
    const int ah = pf_ahead(HW);
    for (int n = 0; n < N; n++) {
        const float *xp = x0 + (size_t)n * CHW;
        float *yp = y0 + (size_t)n * CHW;
        if (n + ah < N) {
            pf_block(xp + (size_t)ah * CHW, HW);
            if (yp != xp) pf_block(yp + (size_t)ah * CHW, HW);
        }
        if (relu) {
#pragma omp simd
            for (int p = 0; p < HW; p++) yp[p] = lt_relu1(lt_bn_affine(xp[p], mu, a, b));
        } else {
#pragma omp simd
            for (int p = 0; p < HW; p++) yp[p] = lt_bn_affine(xp[p], mu, a, b);
        }
    }
}

/* The gradient reaching the BN through a ReLU on its output: what
 * lt_relu_backward_x writes (dy where the ReLU's output r is positive), so
 * the fused and unfused paths see the same floats. */
static inline float relu_masked(float dy, float r) { return r > 0.0f ? dy : 0.0f; }

/* dx (=, or += unless set) k*dy + kx*((x - mu)*rs) + k0 over one channel;
 * with r0, dy is first masked by the ReLU output r0 (relu_masked). */
LT_HOT static void chan_dx(int N, int HW, size_t CHW, const float *x0, const float *dy0, const float *r0,
                           float k, float kx, float k0, float mu, float rs, float *dx0, int set) {
    const int ah = pf_ahead(HW);
    for (int n = 0; n < N; n++) {
        const float *xp = x0 + (size_t)n * CHW, *dp = dy0 + (size_t)n * CHW;
        const float *rp = r0 ? r0 + (size_t)n * CHW : NULL;
        float *gp = dx0 + (size_t)n * CHW;
        if (n + ah < N) {
            const size_t o = (size_t)ah * CHW;
            pf_block(xp + o, HW);
            pf_block(dp + o, HW);
            if (rp) pf_block(rp + o, HW);
            if (gp != dp) pf_block(gp + o, HW);
        }
        if (rp && set) {
#pragma omp simd
            for (int p = 0; p < HW; p++) gp[p] = k * relu_masked(dp[p], rp[p]) + kx * ((xp[p] - mu) * rs) + k0;
        } else if (rp) {
#pragma omp simd
            for (int p = 0; p < HW; p++) gp[p] += k * relu_masked(dp[p], rp[p]) + kx * ((xp[p] - mu) * rs) + k0;
        } else if (set) {
#pragma omp simd
            for (int p = 0; p < HW; p++) gp[p] = k * dp[p] + kx * ((xp[p] - mu) * rs) + k0;
        } else {
#pragma omp simd
            for (int p = 0; p < HW; p++) gp[p] += k * dp[p] + kx * ((xp[p] - mu) * rs) + k0;
        }
    }
}

/* Over one channel's N blocks of HW floats (x0, then every CHW):
 * with w == NULL: *s1 = sum(x - K), *s2 = sum((x - K)^2);
 * with w:         *s1 = sum(w),     *s2 = sum(w * (x - K)),
 * w masked by the ReLU output r0 first when r0 != NULL (relu_masked).
 * In double, in LT_BN_LANES partial sums (see the file comment). */
LT_HOT static void chan_sums(int N, int HW, size_t CHW, const float *x0, const float *w0, const float *r0,
                             double K, double *s1, double *s2) {
    double a1[LT_BN_LANES] = {0}, a2[LT_BN_LANES] = {0};
    double t1 = 0, t2 = 0;
    const int ah = pf_ahead(HW);
    for (int n = 0; n < N; n++) {
        const float *xp = x0 + (size_t)n * CHW;
        if (n + ah < N) {
            const size_t o = (size_t)ah * CHW;
            pf_block(xp + o, HW);
            if (w0) pf_block(w0 + (size_t)n * CHW + o, HW);
            if (r0) pf_block(r0 + (size_t)n * CHW + o, HW);
        }
        int p = 0;
        if (w0 && r0) {
            const float *wp = w0 + (size_t)n * CHW, *rp = r0 + (size_t)n * CHW;
            for (; p + LT_BN_LANES <= HW; p += LT_BN_LANES) {
                /* the mask as its own float loop: with the select inside the
                 * double accumulation gcc left the whole loop scalar */
                float wm[LT_BN_LANES];
#pragma omp simd
                for (int l = 0; l < LT_BN_LANES; l++) wm[l] = relu_masked(wp[p + l], rp[p + l]);
#pragma omp simd
                for (int l = 0; l < LT_BN_LANES; l++) {
                    const double w = wm[l];
                    a1[l] += w;
                    a2[l] += w * ((double)xp[p + l] - K);
                }
            }
            for (; p < HW; p++) {
                const float w = relu_masked(wp[p], rp[p]);
                t1 += w;
                t2 += (double)w * ((double)xp[p] - K);
            }
        } else if (w0) {
            const float *wp = w0 + (size_t)n * CHW;
            for (; p + LT_BN_LANES <= HW; p += LT_BN_LANES) {
#pragma omp simd
                for (int l = 0; l < LT_BN_LANES; l++) {
                    const double w = wp[p + l];
                    a1[l] += w;
                    a2[l] += w * ((double)xp[p + l] - K);
                }
            }
            for (; p < HW; p++) {
                t1 += wp[p];
                t2 += (double)wp[p] * ((double)xp[p] - K);
            }
        } else {
            for (; p + LT_BN_LANES <= HW; p += LT_BN_LANES) {
#pragma omp simd
                for (int l = 0; l < LT_BN_LANES; l++) {
                    const double d = (double)xp[p + l] - K;
                    a1[l] += d;
                    a2[l] += d * d;
                }
            }
            for (; p < HW; p++) {
                const double d = (double)xp[p] - K;
                t1 += d;
                t2 += d * d;
            }
        }
    }
    for (int l = 0; l < LT_BN_LANES; l++) { t1 += a1[l]; t2 += a2[l]; }
    *s1 = t1;
    *s2 = t2;
}

void lt_bn_forward_train(int N, int C, int HW, const float *x, const float *gamma,
                         const float *beta, float *y, float *mean, float *rstd,
                         float *run_mean, float *run_var, float momentum, float eps) {
    lt_bn_forward_train_relu(N, C, HW, x, gamma, beta, y, mean, rstd, run_mean, run_var, momentum, eps, 0);
}

void lt_bn_forward_train_relu(int N, int C, int HW, const float *x, const float *gamma,
                              const float *beta, float *y, float *mean, float *rstd,
                              float *run_mean, float *run_var, float momentum, float eps, int relu) {
    const size_t M = (size_t)N * HW, CHW = (size_t)C * HW;
    LT_PAR_FOR(lt_par(M * C, LT_BN_PAR_MIN),
    for (int c = 0; c < C; c++) {
        const float *xc = x + (size_t)c * HW;
        const double K = xc[0];
        double s1, s2;
        chan_sums(N, HW, CHW, xc, NULL, NULL, K, &s1, &s2);
        const double mu = K + s1 / (double)M;
        double ss = s2 - s1 * (s1 / (double)M);       /* sum of squared deviations */
        if (ss < 0) ss = 0;
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
        chan_affine(N, HW, CHW, xc, fmu, a, bb, relu, y + (size_t)c * HW);
    });
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
    LT_PAR_FOR(lt_par((size_t)N * CHW, LT_BN_PAR_MIN),
    for (int c = 0; c < C; c++) {
        float a, bb, fmu;
        eval_coeff(c, gamma, beta, run_mean, run_var, eps, &fmu, &a, &bb);
        chan_affine(N, HW, CHW, x + (size_t)c * HW, fmu, a, bb, 0, y + (size_t)c * HW);
    });
}

void lt_bn_backward_train(int N, int C, int HW, const float *x, const float *gamma,
                          const float *mean, const float *rstd, const float *dy,
                          float *dx, float *dgamma, float *dbeta) {
    lt_bn_backward_train_x(N, C, HW, x, gamma, mean, rstd, dy, dx, dgamma, dbeta, 0);
}

void lt_bn_backward_train_x(int N, int C, int HW, const float *x, const float *gamma,
                            const float *mean, const float *rstd, const float *dy,
                            float *dx, float *dgamma, float *dbeta, int set) {
    lt_bn_backward_train_relu(N, C, HW, x, gamma, mean, rstd, dy, NULL, dx, dgamma, dbeta, set);
}

void lt_bn_backward_train_relu(int N, int C, int HW, const float *x, const float *gamma,
                               const float *mean, const float *rstd, const float *dy, const float *r,
                               float *dx, float *dgamma, float *dbeta, int set) {
    const size_t M = (size_t)N * HW, CHW = (size_t)C * HW;
    LT_PAR_FOR(lt_par(M * C, LT_BN_PAR_MIN),
    for (int c = 0; c < C; c++) {
        const double mu = mean[c], rs = rstd[c];
        double sdy, sdxm;   /* sum(dy), sum(dy * (x - mean)) */
        const float *rc = r ? r + (size_t)c * HW : NULL;
        chan_sums(N, HW, CHW, x + (size_t)c * HW, dy + (size_t)c * HW, rc, mu, &sdy, &sdxm);
        const double sdyx = sdxm * rs;   /* sum(dy * xhat) */
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
        chan_dx(N, HW, CHW, x + (size_t)c * HW, dy + (size_t)c * HW, rc, fk, fkx, fk0, (float)mu, (float)rs,
                dx + (size_t)c * HW, set);
    });
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
    LT_PAR_FOR(lt_par((size_t)N * CHW, LT_BN_PAR_MIN),
    for (int c = 0; c < C; c++) {
        const double mu = run_mean[c];
        const double rs = 1.0 / sqrt((double)run_var[c] + (double)eps);
        if (dgamma || dbeta) {
            double sdy, sdxm;
            chan_sums(N, HW, CHW, x + (size_t)c * HW, dy + (size_t)c * HW, NULL, mu, &sdy, &sdxm);
            const double sdyx = sdxm * rs;
            if (dgamma) dgamma[c] += (float)sdyx;
            if (dbeta) dbeta[c] += (float)sdy;
        }
        if (!dx) continue;
        const float a = (float)((gamma ? gamma[c] : 1.0f) * rs);
        for (int n = 0; n < N; n++) {
            const float *dp = dy + n * CHW + (size_t)c * HW;
            float *gp = dx + n * CHW + (size_t)c * HW;
            if (set) {
                _Pragma("omp simd")
                for (int p = 0; p < HW; p++) gp[p] = a * dp[p];
            } else {
                _Pragma("omp simd")
                for (int p = 0; p < HW; p++) gp[p] += a * dp[p];
            }
        }
    });
}
