/* lt_shortcut.c — the parameter-free option-A shortcut of CIFAR ResNets.
 *
 * Matches the LambdaLayer of the LDAM-DRW / akamaster code:
 *   F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes//4, planes//4))
 * i.e. spatial subsampling starting at (0, 0) and (Co-Ci)/2 zero channels on
 * each side, input channels in the middle. Ho = ceil(H/stride). */
#include "lt_ops.h"

#include <string.h>

#define LT_SC_PAR_MIN 32768

static void sc_forward(int N, int Ci, int H, int W, int Co, int stride, const float *x, float *y, int zeros) {
    /* Shapes are validated when the model is planned; a mismatch here is an
     * engine bug, not bad input. */
    LT_ASSERT(Co >= Ci && (Co - Ci) % 2 == 0 && stride >= 1);
    const int ho = (H + stride - 1) / stride, wo = (W + stride - 1) / stride;
    const int lo = (Co - Ci) / 2;
    const size_t P = (size_t)ho * wo, HW = (size_t)H * W;
    const long tasks = (long)N * Co;
    LT_PAR_FOR(lt_par((size_t)tasks * P, LT_SC_PAR_MIN),
    for (long t = 0; t < tasks; t++) {
        const int n = (int)(t / Co), c = (int)(t % Co), cs = c - lo;
        float *yp = y + t * P;
        if (cs < 0 || cs >= Ci) {
            if (zeros) memset(yp, 0, sizeof(float) * P);
            continue;
        }
        const float *xp = x + ((size_t)n * Ci + cs) * HW;
        if (stride == 1) {
            memcpy(yp, xp, sizeof(float) * P);
            continue;
        }
        for (int oh = 0; oh < ho; oh++) {
            const float *xr = xp + (size_t)oh * stride * W;
            float *yr = yp + (size_t)oh * wo;
            for (int ow = 0; ow < wo; ow++) yr[ow] = xr[(size_t)ow * stride];
        }
    });
}

void lt_shortcut_a_forward(int N, int Ci, int H, int W, int Co, int stride, const float *x,
                           float *y) {
    sc_forward(N, Ci, H, W, Co, stride, x, y, 1);
}

void lt_shortcut_a_forward_data(int N, int Ci, int H, int W, int Co, int stride, const float *x,
                                float *y) {
    sc_forward(N, Ci, H, W, Co, stride, x, y, 0);
}

void lt_shortcut_a_backward(int N, int Ci, int H, int W, int Co, int stride, const float *dy,
                            float *dx) {
    if (!dx) return;
    LT_ASSERT(Co >= Ci && (Co - Ci) % 2 == 0 && stride >= 1);
    const int ho = (H + stride - 1) / stride, wo = (W + stride - 1) / stride;
    const int lo = (Co - Ci) / 2;
    const size_t P = (size_t)ho * wo, HW = (size_t)H * W;
    const long tasks = (long)N * Ci;
    LT_PAR_FOR(lt_par((size_t)tasks * P, LT_SC_PAR_MIN),
    for (long t = 0; t < tasks; t++) {
        const int n = (int)(t / Ci), c = (int)(t % Ci);
        const float *dp = dy + ((size_t)n * Co + lo + c) * P;
        float *gp = dx + t * HW;
        for (int oh = 0; oh < ho; oh++) {
            const float *dr = dp + (size_t)oh * wo;
            float *gr = gp + (size_t)oh * stride * W;
            for (int ow = 0; ow < wo; ow++) gr[(size_t)ow * stride] += dr[ow];
        }
    });
}
