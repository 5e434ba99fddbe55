/* lt_cuda_linear.cu — linear and cosine classifiers through cuBLAS.
 *
 * cuBLAS is column-major; a row-major [r][c] matrix is the column-major
 * c x r matrix with leading dimension c. So, with W [out][in], x [N][in]:
 *   y  [N][out] = x W^T   : Sgemm(T, N, m=out, n=N,   k=in,  W, in,  x, in,  y, out)
 *   dx [N][in] += dy W    : Sgemm(N, N, m=in,  n=N,   k=out, W, in,  dy, out, dx, in)
 *   dW [out][in] += dy^T x: Sgemm(N, T, m=in,  n=out, k=N,   x, in,  dy, out, dW, in)
 * The math mode is the context's (FP32: CUBLAS_PEDANTIC_MATH, no TF32; TF32:
 * CUBLAS_TF32_TENSOR_OP_MATH). Bias add and bias gradient are own kernels
 * (the gradient a column sum in double, rows in order, as lt_linear.c). */
#include "lt_cuda_impl.h"

#include <math.h>


static int gemm(lt_cuda_ctx *ctx, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float *A,
                int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    const float one = 1.0f;
    LT_BLAS(cublasSgemm(ctx->blas, ta, tb, m, n, k, &one, A, lda, B, ldb, &beta, C, ldc), "sgemm");
    return LT_OK;
}

__global__ static void k_row_bias(size_t total, int out, const float *b, float *y) {
    GRID_LOOP(i, total) {
        size_t row, j;
        lt_cuda_divmod(i, (size_t)out, &row, &j);
        y[i] += b[j];
    }
}

__global__ static void k_col_sum(int N, int out, const float *dy, float *db) {
    GRID_LOOP(j, (size_t)out) {
        double s = 0;
        for (int i = 0; i < N; i++) s += dy[(size_t)i * out + j];
        db[j] += (float)s;
    }
}

static int lin_args(int N, int in, int out) {
    if (N <= 0 || in <= 0 || out <= 0) return lt_err(LT_ESHAPE, "cuda linear: N=%d in=%d out=%d must be positive", N, in, out);
    return LT_OK;
}

int lt_cuda_linear_forward(lt_cuda_ctx *ctx, int N, int in, int out, const float *x, const float *W, const float *b,
                           float *y) {
    LT_CTX(ctx);
    LT_TRY(lin_args(N, in, out));
    LT_TRY(gemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, out, N, in, W, in, x, in, 0.0f, y, out));
    if (b) {
        const size_t total = (size_t)N * out;
        LT_LAUNCH(k_row_bias, lt_cuda_blocks(total, 256), 256, ctx->stream)(total, out, b, y);
        LT_TRY(lt_cuda_launch_check("linear bias"));
    }
    return LT_OK;
}

int lt_cuda_linear_backward(lt_cuda_ctx *ctx, int N, int in, int out, const float *x, const float *W, const float *dy,
                            float *dx, float *dW, float *db, int set_dx) {
    LT_CTX(ctx);
    LT_TRY(lin_args(N, in, out));
    if (dx) LT_TRY(gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_N, in, N, out, W, in, dy, out, set_dx ? 0.0f : 1.0f, dx, in));
    if (dW) LT_TRY(gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_T, in, out, N, x, in, dy, out, 1.0f, dW, in));
    if (db) {
        LT_LAUNCH(k_col_sum, lt_cuda_blocks((size_t)out, 128), 128, ctx->stream)(N, out, dy, db);
        LT_TRY(lt_cuda_launch_check("linear bias gradient"));
    }
    return LT_OK;
}

/* ---- cosine classifier -------------------------------------------------------------- */
__global__ static void k_row_inv(int n, int d, const float *v, float eps, float *inv) {
    GRID_LOOP(i, (size_t)n) {
        const float *r = v + i * (size_t)d;
        double s = 0;
        for (int k = 0; k < d; k++) s += (double)r[k] * r[k];
        const double nrm = sqrt(s);
        inv[i] = (float)(1.0 / (nrm > eps ? nrm : (double)eps));
    }
}

__global__ static void k_cos_scale(int N, int out, float scale, const float *xinv, const float *winv, float *y) {
    GRID_LOOP(t, (size_t)N * out) {
        const size_t i = t / out, j = t % out;
        const float a = scale * xinv[i];
        y[t] *= a * winv[j];
    }
}

int lt_cuda_cosine_forward(lt_cuda_ctx *ctx, int N, int in, int out, const float *x, const float *W, float scale,
                           float eps, float *y, float *xinv, float *winv) {
    LT_CTX(ctx);
    LT_TRY(lin_args(N, in, out));
    LT_LAUNCH(k_row_inv, lt_cuda_blocks((size_t)N, 128), 128, ctx->stream)(N, in, x, eps, xinv);
    LT_LAUNCH(k_row_inv, lt_cuda_blocks((size_t)out, 128), 128, ctx->stream)(out, in, W, eps, winv);
    LT_TRY(lt_cuda_launch_check("cosine norms"));
    LT_TRY(gemm(ctx, CUBLAS_OP_T, CUBLAS_OP_N, out, N, in, W, in, x, in, 0.0f, y, out));
    LT_LAUNCH(k_cos_scale, lt_cuda_blocks((size_t)N * out, 256), 256, ctx->stream)(N, out, scale, xinv, winv, y);
    return lt_cuda_launch_check("cosine scale");
}

/* D[i][j] = dy_ij * winv_j * (scale * xinv_i) (for dx), or
 * E[i][j] = dy_ij * xinv_i * (scale * winv_j) (for dW): lt_linear.c's factors. */
__global__ static void k_cos_coef(int N, int out, float scale, const float *xinv, const float *winv, const float *dy,
                                  float *D, int for_w) {
    GRID_LOOP(t, (size_t)N * out) {
        const size_t i = t / out, j = t % out;
        D[t] = for_w ? dy[t] * xinv[i] * (scale * winv[j]) : dy[t] * winv[j] * (scale * xinv[i]);
    }
}

/* Radial term of row r of `v` (rows: the N samples, or the out classes):
 * coef = sum_o dy*y * inv^2 (0 when the norm was clamped), then
 * g[r][k] -= coef * v[r][k]. by_col: the sum over i for class j. */
__global__ static void k_cos_radial(int rows, int other, int d, const float *v, const float *inv, const float *dy,
                                    const float *y, int by_col, float *g) {
    GRID_LOOP(r, (size_t)rows) {
        const float *vr = v + r * (size_t)d;
        double ss = 0;
        for (int k = 0; k < d; k++) ss += (double)vr[k] * vr[k];
        if (sqrt(ss) * inv[r] < 1.0 - 1e-5) continue;   /* clamped: no radial term */
        double s = 0;
        for (int o = 0; o < other; o++) {
            const size_t t = by_col ? (size_t)o * rows + r : r * (size_t)other + o;
            s += (double)dy[t] * y[t];
        }
        const float c = (float)(s * inv[r] * inv[r]);
        float *gr = g + r * (size_t)d;
        for (int k = 0; k < d; k++) gr[k] -= c * vr[k];
    }
}

int lt_cuda_cosine_backward(lt_cuda_ctx *ctx, int N, int in, int out, const float *x, const float *W, float scale,
                            const float *xinv, const float *winv, const float *y, const float *dy, float *dx,
                            float *dW) {
    LT_CTX(ctx);
    LT_TRY(lin_args(N, in, out));
    if (!dx && !dW) return LT_OK;
    LT_TRY(lt_cuda_ws_reserve(ctx, (size_t)N * out * sizeof(float)));
    float *D = (float *)ctx->ws;
    const unsigned nb = lt_cuda_blocks((size_t)N * out, 256);
    if (dx) {
        LT_LAUNCH(k_cos_coef, nb, 256, ctx->stream)(N, out, scale, xinv, winv, dy, D, 0);
        LT_TRY(lt_cuda_launch_check("cosine backward"));
        LT_TRY(gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_N, in, N, out, W, in, D, out, 1.0f, dx, in));
        LT_LAUNCH(k_cos_radial, lt_cuda_blocks((size_t)N, 64), 64, ctx->stream)(N, out, in, x, xinv, dy, y, 0, dx);
        LT_TRY(lt_cuda_launch_check("cosine backward"));
    }
    if (dW) {
        LT_LAUNCH(k_cos_coef, nb, 256, ctx->stream)(N, out, scale, xinv, winv, dy, D, 1);
        LT_TRY(lt_cuda_launch_check("cosine backward"));
        LT_TRY(gemm(ctx, CUBLAS_OP_N, CUBLAS_OP_T, in, out, N, x, in, D, out, 1.0f, dW, in));
        LT_LAUNCH(k_cos_radial, lt_cuda_blocks((size_t)out, 64), 64, ctx->stream)(out, N, in, W, winv, dy, y, 1, dW);
        LT_TRY(lt_cuda_launch_check("cosine backward"));
    }
    return LT_OK;
}
