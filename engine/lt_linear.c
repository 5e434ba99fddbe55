/* lt_linear.c — fully connected and cosine (normalised) classifiers.
 *
 * Linear: y[N,out] = x[N,in] W^T + b with W [out][in], one sgemm each for
 * forward, dx and dW; the bias gradient is a column sum in a fixed order.
 *
 * Cosine: y_ij = scale * <x_i, w_j> * xinv_i * winv_j, with
 * xinv_i = 1/max(|x_i|, eps) and winv_j = 1/max(|w_j|, eps). Writing
 * xn = x*xinv, the Jacobian of the normalisation is xinv (I - xn xn^T) when
 * the norm is above eps and xinv I when it is clamped (the norm is then the
 * constant eps). With g_i = scale * sum_j dy_ij wn_j, and noting
 * g_i . xn_i = sum_j dy_ij y_ij, the exact gradients are
 *   dx_i += xinv_i * g_i - xinv_i^2 * (sum_j dy_ij y_ij) * x_i     (unclamped)
 *   dW_j += winv_j * h_j - winv_j^2 * (sum_i dy_ij y_ij) * w_j     (unclamped)
 * with h_j = scale * sum_i dy_ij xn_i. The classifier is small (out x in,
 * a few hundred thousand weights), so plain loops parallel over rows do it
 * without scratch memory; each row is owned by one thread (fixed order). */
#include "lt_ops.h"

#include <cblas.h>
#include <math.h>

#define LT_LIN_PAR_MIN 16384

void lt_linear_forward(int N, int in, int out, const float *x, const float *W, const float *b,
                       float *y) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, x, in, W, in, 0.0f,
                y, out);
    if (b) {
        for (int i = 0; i < N; i++) {
            float *yr = y + (size_t)i * out;
            for (int j = 0; j < out; j++) yr[j] += b[j];
        }
    }
}

void lt_linear_backward(int N, int in, int out, const float *x, const float *W,
                        const float *dy, float *dx, float *dW, float *db) {
    if (dx)   /* dx[N,in] += dy[N,out] W[out,in] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, dy, out, W, in,
                    1.0f, dx, in);
    if (dW)   /* dW[out,in] += dy^T x */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1.0f, dy, out, x, in,
                    1.0f, dW, in);
    if (db) {
        for (int j = 0; j < out; j++) {
            double s = 0;
            for (int i = 0; i < N; i++) s += dy[(size_t)i * out + j];
            db[j] += (float)s;
        }
    }
}

/* 1/max(|v|, eps) for each of n rows of length d, the norm in double. */
static void row_inv_norms(int n, int d, const float *v, float eps, float *inv) {
    LT_PAR_FOR(lt_par((size_t)n * d, LT_LIN_PAR_MIN),
    for (int i = 0; i < n; i++) {
        const float *r = v + (size_t)i * d;
        double s = 0;
        for (int k = 0; k < d; k++) s += (double)r[k] * r[k];
        double nrm = sqrt(s);
        inv[i] = (float)(1.0 / (nrm > eps ? nrm : (double)eps));
    });
}

/* True when the saved 1/max(|v|,eps) came from the clamp, i.e. |v| < eps.
 * Unclamped, |v| * inv is 1 up to float rounding; clamped it is |v|/eps < 1.
 * (Rows with |v| within a relative 1e-5 below eps count as unclamped.) */
static int row_clamped(const float *r, int d, float inv) {
    double s = 0;
    for (int k = 0; k < d; k++) s += (double)r[k] * r[k];
    return sqrt(s) * inv < 1.0 - 1e-5;
}

void lt_cosine_forward(int N, int in, int out, const float *x, const float *W, float scale,
                       float eps, float *y, float *xinv, float *winv) {
    row_inv_norms(N, in, x, eps, xinv);
    row_inv_norms(out, in, W, eps, winv);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, x, in, W, in, 0.0f,
                y, out);
    for (int i = 0; i < N; i++) {
        float *yr = y + (size_t)i * out;
        const float a = scale * xinv[i];
        for (int j = 0; j < out; j++) yr[j] *= a * winv[j];
    }
}

/* Rows are processed in blocks of LT_COS_BLOCK so that each row of the other
 * operand is loaded once per block instead of once per row (the classifier
 * weight matrix can be megabytes for 1000 classes). */
#define LT_COS_BLOCK 8

void lt_cosine_backward(int N, int in, int out, const float *x, const float *W, float scale,
                        const float *xinv, const float *winv, const float *y,
                        const float *dy, float *dx, float *dW) {
    if (dx) {
        const int nblk = (N + LT_COS_BLOCK - 1) / LT_COS_BLOCK;
        LT_PAR_FOR(lt_par((size_t)N * out * in, LT_LIN_PAR_MIN),
        for (int bk = 0; bk < nblk; bk++) {
            const int i0 = bk * LT_COS_BLOCK;
            const int i1 = i0 + LT_COS_BLOCK < N ? i0 + LT_COS_BLOCK : N;
            for (int j = 0; j < out; j++) {
                const float *wr = W + (size_t)j * in;
                for (int i = i0; i < i1; i++) {
                    const float cj = dy[(size_t)i * out + j] * winv[j] * (scale * xinv[i]);
                    if (cj == 0.0f) continue;
                    float *g = dx + (size_t)i * in;
                    for (int k = 0; k < in; k++) g[k] += cj * wr[k];
                }
            }
            for (int i = i0; i < i1; i++) {
                const float *xr = x + (size_t)i * in;
                if (row_clamped(xr, in, xinv[i])) continue;
                double s = 0;   /* g_i . xn_i = sum_j dy_ij y_ij */
                for (int j = 0; j < out; j++)
                    s += (double)dy[(size_t)i * out + j] * y[(size_t)i * out + j];
                const float cx = (float)(s * xinv[i] * xinv[i]);
                float *g = dx + (size_t)i * in;
                for (int k = 0; k < in; k++) g[k] -= cx * xr[k];
            }
        });
    }
    if (dW) {
        const int nblk = (out + LT_COS_BLOCK - 1) / LT_COS_BLOCK;
        LT_PAR_FOR(lt_par((size_t)N * out * in, LT_LIN_PAR_MIN),
        for (int bk = 0; bk < nblk; bk++) {
            const int j0 = bk * LT_COS_BLOCK;
            const int j1 = j0 + LT_COS_BLOCK < out ? j0 + LT_COS_BLOCK : out;
            for (int i = 0; i < N; i++) {
                const float *xr = x + (size_t)i * in;
                for (int j = j0; j < j1; j++) {
                    const float ci = dy[(size_t)i * out + j] * xinv[i] * (scale * winv[j]);
                    if (ci == 0.0f) continue;
                    float *g = dW + (size_t)j * in;
                    for (int k = 0; k < in; k++) g[k] += ci * xr[k];
                }
            }
            for (int j = j0; j < j1; j++) {
                const float *wr = W + (size_t)j * in;
                if (row_clamped(wr, in, winv[j])) continue;
                double s = 0;   /* h_j . wn_j = sum_i dy_ij y_ij */
                for (int i = 0; i < N; i++)
                    s += (double)dy[(size_t)i * out + j] * y[(size_t)i * out + j];
                const float cw = (float)(s * winv[j] * winv[j]);
                float *g = dW + (size_t)j * in;
                for (int k = 0; k < in; k++) g[k] -= cw * wr[k];
            }
        });
    }
}
