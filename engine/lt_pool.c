/* lt_pool.c — max pooling (with argmax for backward) and global average pool.
 *
 * Max-pool padding acts as -inf, as in PyTorch: padded positions never win.
 * Ties go to the first maximum in row-major scan order of the window (strict
 * '>'), and a NaN wins and sticks, so NaNs propagate like torch.max_pool2d.
 * Work is split over (image, channel) planes; backward scatters into the
 * plane it owns, so there are no races and the order is fixed. */
#include "lt_ops.h"

#include <math.h>

#define LT_POOL_PAR_MIN 32768

void lt_maxpool_forward(int N, int C, int H, int W, int k, int s, int p, const float *x,
                        float *y, int32_t *argmax) {
    const int ho = (H + 2 * p - k) / s + 1, wo = (W + 2 * p - k) / s + 1;
    const long planes = (long)N * C;
    const size_t HW = (size_t)H * W, P = (size_t)ho * wo;
    LT_PAR_FOR(lt_par((size_t)planes * P * k * k, LT_POOL_PAR_MIN),
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * HW;
        float *yp = y + pl * P;
        int32_t *ap = argmax + pl * P;
        for (int oh = 0; oh < ho; oh++) {
            const int h0 = oh * s - p;
            const int hlo = h0 < 0 ? 0 : h0, hhi = h0 + k > H ? H : h0 + k;
            for (int ow = 0; ow < wo; ow++) {
                const int w0 = ow * s - p;
                const int wlo = w0 < 0 ? 0 : w0, whi = w0 + k > W ? W : w0 + k;
                /* a window wholly in the padding (only possible for p > k/2,
                 * which PyTorch rejects) yields -inf with no argmax */
                float best = -INFINITY;
                int32_t bi = -1;
                for (int ih = hlo; ih < hhi; ih++) {
                    for (int iw = wlo; iw < whi; iw++) {
                        const float v = xp[(size_t)ih * W + iw];
                        if (bi < 0 || v > best || isnan(v)) {
                            if (bi >= 0 && isnan(best)) continue;   /* first NaN sticks */
                            best = v;
                            bi = (int32_t)(ih * W + iw);
                        }
                    }
                }
                yp[(size_t)oh * wo + ow] = best;
                ap[(size_t)oh * wo + ow] = bi;
            }
        }
    });
}

void lt_maxpool_backward(int N, int C, int H, int W, int k, int s, int p,
                         const int32_t *argmax, const float *dy, float *dx) {
    if (!dx) return;
    const int ho = (H + 2 * p - k) / s + 1, wo = (W + 2 * p - k) / s + 1;
    const long planes = (long)N * C;
    const size_t HW = (size_t)H * W, P = (size_t)ho * wo;
    LT_PAR_FOR(lt_par((size_t)planes * P, LT_POOL_PAR_MIN),
    for (long pl = 0; pl < planes; pl++) {
        const int32_t *ap = argmax + pl * P;
        const float *dp = dy + pl * P;
        float *gp = dx + pl * HW;
        for (size_t q = 0; q < P; q++)
            if (ap[q] >= 0) gp[ap[q]] += dp[q];
    });
}

void lt_gap_forward(int N, int C, int HW, const float *x, float *y) {
    const long planes = (long)N * C;
    LT_PAR_FOR(lt_par((size_t)planes * HW, LT_POOL_PAR_MIN),
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * (size_t)HW;
        double sum = 0;
        for (int q = 0; q < HW; q++) sum += xp[q];
        y[pl] = (float)(sum / HW);
    });
}

void lt_gap_backward(int N, int C, int HW, const float *dy, float *dx) {
    if (!dx) return;
    const long planes = (long)N * C;
    const float inv = 1.0f / (float)HW;
    LT_PAR_FOR(lt_par((size_t)planes * HW, LT_POOL_PAR_MIN),
    for (long pl = 0; pl < planes; pl++) {
        float *gp = dx + pl * (size_t)HW;
        const float g = dy[pl] * inv;
        for (int q = 0; q < HW; q++) gp[q] += g;
    });
}
