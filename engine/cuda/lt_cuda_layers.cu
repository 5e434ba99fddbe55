/* lt_cuda_layers.cu — the kernels of the two built-in layers lt_cuda_ops.cu
 * has no op for: the learned cosine classifier's scale (y = (mul * p) * cos
 * and its one-float gradient) and the per-class scale of LWS. The
 * arithmetic is lt_layers.c's, float for float (--fmad=false); the
 * reductions run in its order (one serial double sum per output), so the
 * results equal the CPU's bit for bit. */
#include "lt_cuda_impl.h"

#define ET 256

__global__ static void k_scale_by(size_t n, float mul, const float *p, const float *x, float *y) {
    const float s = mul * p[0];
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = s * x[i];
}

int lt_cuda_scale_by(lt_cuda_ctx *ctx, size_t n, float mul, const float *p, const float *x, float *y) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    LT_LAUNCH(k_scale_by, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, mul, p, x, y);
    return lt_cuda_launch_check("scale by");
}

/* one thread: the CPU's serial sum, in double */
__global__ static void k_dot_acc(size_t n, const float *a, const float *b, float mul, float *out) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double acc = 0;
    for (size_t k = 0; k < n; k++) acc += (double)a[k] * b[k];
    out[0] += (float)(acc * mul);
}

int lt_cuda_dot_acc(lt_cuda_ctx *ctx, size_t n, const float *a, const float *b, float mul, float *out) {
    LT_CTX(ctx);
    LT_LAUNCH(k_dot_acc, 1, 1, ctx->stream)(n, a, b, mul, out);
    return lt_cuda_launch_check("dot accumulate");
}

__global__ static void k_chscale_fwd(int N, size_t C, const float *s, const float *x, float *y) {
    const size_t n = (size_t)N * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t row, j;
        lt_cuda_divmod(i, C, &row, &j);
        y[i] = s[j] * x[i];
    }
}

int lt_cuda_chscale_forward(lt_cuda_ctx *ctx, int N, size_t C, const float *s, const float *x, float *y) {
    LT_CTX(ctx);
    if (!N || !C) return LT_OK;
    LT_LAUNCH(k_chscale_fwd, lt_cuda_blocks((size_t)N * C, ET), ET, ctx->stream)(N, C, s, x, y);
    return lt_cuda_launch_check("per-class scale forward");
}

/* thread j: column j over the rows in order, as lt_layers.c's scale_bwd */
__global__ static void k_chscale_bwd(int N, size_t C, const float *x, const float *s, const float *dy, float *dx,
                                     float *ds) {
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < C; j += (size_t)gridDim.x * blockDim.x) {
        double acc = 0;
        for (int i = 0; i < N; i++) {
            const float d = dy[i * C + j];
            acc += (double)d * x[i * C + j];
            if (dx) dx[i * C + j] += d * s[j];
        }
        if (ds) ds[j] += (float)acc;
    }
}

int lt_cuda_chscale_backward(lt_cuda_ctx *ctx, int N, size_t C, const float *x, const float *s, const float *dy,
                             float *dx, float *ds) {
    LT_CTX(ctx);
    if (!N || !C || (!dx && !ds)) return LT_OK;
    LT_LAUNCH(k_chscale_bwd, lt_cuda_blocks(C, ET), ET, ctx->stream)(N, C, x, s, dy, dx, ds);
    return lt_cuda_launch_check("per-class scale backward");
}
