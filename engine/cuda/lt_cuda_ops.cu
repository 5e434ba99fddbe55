/* lt_cuda_ops.cu — batch norm, elementwise ops, pooling, the option-A
 * shortcut and the conv bias kernels, in CUDA C.
 *
 * The arithmetic of each element is the CPU kernel's (engine/lt_bn.c,
 * lt_elementwise.c, lt_pool.c, lt_shortcut.c), in the same order of float
 * operations; the library is built with --fmad=false so that nvcc does not
 * contract a*b+c into an FMA (the engine's C is built with
 * -ffp-contract=off for the same reason). Elementwise results therefore
 * equal the CPU's bit for bit; reductions differ in summation order only.
 *
 * Reductions: thread t of a block sums a fixed subset of the elements in a
 * fixed order (t, t + T, ...) in double, then the block adds the threads'
 * sums as a fixed binary tree; the conv bias gradient takes one block per
 * channel, batch norm splits each channel over several blocks (below). No
 * value passes through an atomic (batch norm's arrival counters decide only
 * which block takes the last step), so the results are the same run to run
 * in any mode. */
#include "lt_cuda_impl.h"

#include <math.h>

#define RT 256   /* threads of the per-channel reduction blocks (power of two) */
#define ET 256   /* threads of the elementwise kernels */

/* Sum of v over the block, a fixed tree; every thread gets the result. */
__device__ static double block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = RT / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

static inline int launch_ok(const char *what) { return lt_cuda_launch_check(what); }

static int nchw_only(lt_layout layout, const char *what) {
    if (layout == LT_LAYOUT_NCHW) return LT_OK;
    return lt_err(LT_EINVAL, "cuda %s: layout %d not supported", what, (int)layout);
}

/* The channel of element i of an [N][C][P] tensor (lt_cuda_divmod: in 32
 * bits where the index fits). */
__device__ static inline int chan_of(size_t i, size_t P, int C) {
    size_t t, q, n, c;
    lt_cuda_divmod(i, P, &t, &q);
    lt_cuda_divmod(t, (size_t)C, &n, &c);
    return (int)c;
}

/* ---- conv bias ------------------------------------------------------------------ */
__global__ static void k_bias_add(size_t total, int C, size_t P, const float *b, float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int c = chan_of(i, P, C);
        y[i] = y[i] + b[c];
    }
}

int lt_cuda_bias_add(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, size_t P, const float *b, float *y) {
    LT_TRY(nchw_only(layout, "bias_add"));
    const size_t total = (size_t)N * C * P;
    if (!total) return LT_OK;
    LT_LAUNCH(k_bias_add, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, P, b, y);
    return launch_ok("bias add");
}

__global__ static void k_bias_grad(int N, int C, size_t P, const float *dy, float *db) {
    __shared__ double sh[RT];
    const int c = blockIdx.x;
    double s = 0;
    for (int n = 0; n < N; n++) {
        const float *d = dy + ((size_t)n * C + c) * P;
        for (size_t p = threadIdx.x; p < P; p += RT) s += d[p];
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) db[c] += (float)s;
}

int lt_cuda_bias_grad(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, size_t P, const float *dy, float *db) {
    LT_TRY(nchw_only(layout, "bias_grad"));
    if (!db || C <= 0) return LT_OK;
    LT_LAUNCH(k_bias_grad, C, RT, ctx->stream)(N, C, P, dy, db);
    return launch_ok("bias gradient");
}

/* ---- batch norm -----------------------------------------------------------------
 * Train statistics and the backward sums are split reductions, so that a
 * layer fills the GPU whatever its channel count (one block per channel
 * left most SMs idle at C = 16..64 and made BN latency-bound): channel c's
 * M = N*HW elements, in element order m = n*HW + p, are cut into S chunks of
 * ceil(M / S) (the last shorter); block (s, c) sums chunk s as above (thread
 * t: m = start + t, + RT, ... in double, then the fixed tree) into the
 * context workspace; the channel's block that arrives last (a counter per
 * channel, ctx->bn_count, back to zero after each call) then adds the S
 * partial sums in order s = 0 .. S-1 on one thread and computes the
 * channel's coefficients; an elementwise kernel applies them. Two launches
 * a direction (a separate per-channel kernel for the last step made three:
 * at CIFAR sizes, launches rather than bytes are BN's cost). S (bn_splits)
 * depends on the shape only: the same bits on every run and GPU, whichever
 * block arrives last. */

__device__ static inline float bn_affine(float v, float mu, float a, float b) { return (v - mu) * a + b; }
__device__ static inline float relu1(float v) { return v > 0.0f ? v : 0.0f; }
__device__ static inline float relu_masked(float dy, float r) { return r > 0.0f ? dy : 0.0f; }

/* Chunks of at most 8192 elements, and for few channels more of them, down
 * to 1024 elements, until C * S reaches about 512 blocks (a few per SM). */
static inline int bn_splits(int N, int C, int HW) {
    const size_t M = (size_t)N * HW;
    size_t S = (M + 8191) / 8192, fill = (512 + (size_t)C - 1) / (size_t)C;
    const size_t most = (M + 1023) / 1024;
    if (fill > most) fill = most;
    if (fill > S) S = fill;
    return (int)S;
}

/* Workspace of a BN call: S*C partial pairs (double), then 5 floats of
 * coefficients per channel. */
struct bn_ws {
    double *part;
    float *coef;
    int S;
    unsigned chunk;   /* elements a chunk: ceil(M / S) */
};

static int bn_ws_get(lt_cuda_ctx *ctx, int N, int C, int HW, struct bn_ws *w) {
    w->S = bn_splits(N, C, HW);
    w->chunk = (unsigned)(((size_t)N * HW + (size_t)w->S - 1) / (size_t)w->S);
    const size_t part = (size_t)w->S * C * 2 * sizeof(double);
    LT_TRY(lt_cuda_ws_reserve(ctx, part + (size_t)C * 5 * sizeof(float)));
    w->part = (double *)ctx->ws;
    w->coef = (float *)((char *)ctx->ws + part);
    return LT_OK;
}

/* What the last block of a channel computes from the S partial pairs:
 * what 0 (forward, train): the batch statistics into mean / rstd, the
 * running statistics (when both are set) and coef; what 1 (backward): the
 * parameter gradients and, when coef is set, the coefficients of dx, with
 * the saved smean / srstd (train) or, evar set, the running variance (eval). */
struct bn_fin {
    int what;
    const float *gamma, *beta;
    float *mean, *rstd, *run_mean, *run_var;
    float momentum, eps;
    const float *smean, *srstd, *evar;
    float *dgamma, *dbeta, *coef;
};

static bn_fin bn_fin_fwd(const float *gamma, const float *beta, float *mean, float *rstd, float *run_mean,
                         float *run_var, float momentum, float eps, float *coef) {
    bn_fin f = {};
    f.what = 0;
    f.gamma = gamma;
    f.beta = beta;
    f.mean = mean;
    f.rstd = rstd;
    f.run_mean = run_mean;
    f.run_var = run_var;
    f.momentum = momentum;
    f.eps = eps;
    f.coef = coef;
    return f;
}

/* train: smean / srstd saved by the forward; eval: evar (the running
 * variance) and eps */
static bn_fin bn_fin_bwd(const float *gamma, const float *smean, const float *srstd, const float *evar, float eps,
                         float *dgamma, float *dbeta, float *coef) {
    bn_fin f = {};
    f.what = 1;
    f.gamma = gamma;
    f.smean = smean;
    f.srstd = srstd;
    f.evar = evar;
    f.eps = eps;
    f.dgamma = dgamma;
    f.dbeta = dbeta;
    f.coef = coef;
    return f;
}

/* The channel's two totals: the partial pairs added in order s = 0 .. S-1
 * (volatile: other blocks wrote them during this launch). */
__device__ static inline void part_total(const volatile double *part, int S, int c, double *s1, double *s2) {
    double a = 0, b = 0;
    for (int s = 0; s < S; s++) {
        a += part[((size_t)c * S + s) * 2];
        b += part[((size_t)c * S + s) * 2 + 1];
    }
    *s1 = a;
    *s2 = b;
}

/* Forward: batch statistics, running statistics, and the affine
 * coefficients (mu, a, b) of the apply kernel. */
__device__ static void bn_fwd_finish(int N, int HW, int S, int c, const float *x, const volatile double *part,
                                     const bn_fin &f) {
    const size_t M = (size_t)N * HW;
    const double K = x[(size_t)c * HW];
    double s1, s2;
    part_total(part, S, c, &s1, &s2);
    const double mu = K + s1 / (double)M;
    double ss = s2 - s1 * (s1 / (double)M);
    if (ss < 0) ss = 0;
    const double var = ss / (double)M;
    const double rs = 1.0 / sqrt(var + (double)f.eps);
    f.mean[c] = (float)mu;
    f.rstd[c] = (float)rs;
    if (f.run_mean && f.run_var) {
        const double unb = M > 1 ? ss / (double)(M - 1) : var;
        f.run_mean[c] = (float)((1.0 - f.momentum) * f.run_mean[c] + f.momentum * mu);
        f.run_var[c] = (float)((1.0 - f.momentum) * f.run_var[c] + f.momentum * unb);
    }
    f.coef[(size_t)c * 5] = (float)mu;
    f.coef[(size_t)c * 5 + 1] = (float)((f.gamma ? f.gamma[c] : 1.0f) * rs);
    f.coef[(size_t)c * 5 + 2] = f.beta ? f.beta[c] : 0.0f;
}

/* Backward, from sdy = sum(w) and sdxm = sum(w * (x - center)): the
 * parameter gradients, and for train mode the coefficients of
 * dx = k*w + kx*((x - mu)*rs) + k0 (the CPU's). eval: the center is the
 * running mean, rs from the running variance. */
__device__ static void bn_bwd_finish(int N, int HW, int S, int c, const volatile double *part, const bn_fin &f) {
    const size_t M = (size_t)N * HW;
    double sdy, sdxm;
    part_total(part, S, c, &sdy, &sdxm);
    const double rs = f.evar ? 1.0 / sqrt((double)f.evar[c] + (double)f.eps) : (double)f.srstd[c];
    const double sdyx = sdxm * rs;
    if (f.dgamma) f.dgamma[c] += (float)sdyx;
    if (f.dbeta) f.dbeta[c] += (float)sdy;
    if (f.coef) {
        const double gm = f.gamma ? f.gamma[c] : 1.0;
        f.coef[(size_t)c * 5] = (float)(gm * rs);
        f.coef[(size_t)c * 5 + 1] = (float)(-gm * rs * sdyx / (double)M);
        f.coef[(size_t)c * 5 + 2] = (float)(-gm * rs * sdy / (double)M);
        f.coef[(size_t)c * 5 + 3] = f.smean[c];
        f.coef[(size_t)c * 5 + 4] = (float)rs;
    }
}

/* Block (s, c): the two sums of chunk s of channel c into part[(c*S + s)*2].
 * f.what 0: v = x - K, sums v and v*v (K = the channel's first element: the
 * CPU's shifted sums); what 1: w = dy (masked by r > 0 when r), sums w and
 * w * (x - K) (K = center[c]). The channel's last block to arrive then
 * finishes it (bn_fwd_finish / bn_bwd_finish) and sets its counter back to
 * zero. */
__global__ static void k_bn_part(int N, int C, int HW, int S, unsigned chunk, const float *x, const float *dy,
                                 const float *r, const float *center, double *part, unsigned *count, bn_fin f) {
    __shared__ double sh[RT];
    __shared__ int last;
    const int s = (int)blockIdx.x, c = (int)blockIdx.y;
    const unsigned M = (unsigned)N * (unsigned)HW, hw = (unsigned)HW;
    const unsigned m0 = (unsigned)s * chunk, m1 = m0 < M && chunk < M - m0 ? m0 + chunk : M;
    const double K = f.what == 0 ? (double)x[(size_t)c * HW] : (double)center[c];
    double s1 = 0, s2 = 0;
    for (unsigned m = m0 + threadIdx.x; m < m1; m += RT) {
        const unsigned n = m / hw, p = m - n * hw;
        const size_t off = ((size_t)n * C + c) * HW + p;
        const double d = (double)x[off] - K;
        if (f.what == 0) {
            s1 += d;
            s2 += d * d;
        } else {
            const float w = r ? relu_masked(dy[off], r[off]) : dy[off];
            s1 += w;
            s2 += (double)w * d;
        }
    }
    s1 = block_sum(s1, sh);
    s2 = block_sum(s2, sh);
    if (threadIdx.x == 0) {
        part[((size_t)c * S + s) * 2] = s1;
        part[((size_t)c * S + s) * 2 + 1] = s2;
        /* the pair visible to every block before this block counts in */
        __threadfence();
        last = atomicAdd(&count[c], 1u) == (unsigned)S - 1;
    }
    __syncthreads();
    if (!last || threadIdx.x != 0) return;
    __threadfence();
    count[c] = 0;
    if (f.what == 0) bn_fwd_finish(N, HW, S, c, x, part, f);
    else bn_bwd_finish(N, HW, S, c, part, f);
}

__global__ static void k_bn_apply(size_t total, int C, int HW, const float *x, const float *coef, int relu, float *y) {
    GRID_LOOP(i, total) {
        const size_t c = (size_t)chan_of(i, (size_t)HW, C);
        const float v = bn_affine(x[i], coef[c * 5], coef[c * 5 + 1], coef[c * 5 + 2]);
        y[i] = relu ? relu1(v) : v;
    }
}

static int bn_args(int N, int C, int HW, const void *x, const void *y) {
    if (N <= 0 || C <= 0 || HW <= 0) return lt_err(LT_ESHAPE, "cuda bn: N=%d C=%d HW=%d must be positive", N, C, HW);
    if (C > LT_CUDA_BN_MAX_C || (size_t)N * HW > (size_t)0x7fffffff)
        return lt_err(LT_ESHAPE, "cuda bn: N=%d C=%d HW=%d: over %d channels or 2^31 elements a channel", N, C, HW,
                      LT_CUDA_BN_MAX_C);
    if (!x || !y) return lt_err(LT_EINVAL, "cuda bn: NULL tensor");
    return LT_OK;
}

int lt_cuda_bn_forward_train(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x, const float *gamma,
                             const float *beta, float *y, float *mean, float *rstd, float *run_mean, float *run_var,
                             float momentum, float eps, int relu) {
    LT_TRY(nchw_only(layout, "bn_forward_train"));
    LT_CTX(ctx);
    LT_TRY(bn_args(N, C, HW, x, y));
    if (!mean || !rstd) return lt_err(LT_EINVAL, "cuda bn: NULL mean / rstd");
    struct bn_ws w;
    LT_TRY(bn_ws_get(ctx, N, C, HW, &w));
    const bn_fin f = bn_fin_fwd(gamma, beta, mean, rstd, run_mean, run_var, momentum, eps, w.coef);
    LT_LAUNCH(k_bn_part, dim3((unsigned)w.S, (unsigned)C), RT, ctx->stream)(N, C, HW, w.S, w.chunk, x, NULL, NULL,
                                                                            NULL, w.part, ctx->bn_count, f);
    LT_TRY(launch_ok("bn forward (train): statistics"));
    const size_t total = (size_t)N * C * HW;
    LT_LAUNCH(k_bn_apply, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, HW, x, w.coef, relu, y);
    return launch_ok("bn forward (train)");
}

__device__ static inline void eval_coeff(int c, const float *gamma, const float *beta, const float *run_mean,
                                         const float *run_var, float eps, float *mu, float *a, float *b) {
    const double rs = 1.0 / sqrt((double)run_var[c] + (double)eps);
    *a = (float)((gamma ? gamma[c] : 1.0f) * rs);
    *b = beta ? beta[c] : 0.0f;
    *mu = run_mean[c];
}

__global__ static void k_bn_fwd_eval(size_t total, int C, int HW, const float *x, const float *gamma,
                                     const float *beta, const float *run_mean, const float *run_var, float eps,
                                     float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int c = chan_of(i, (size_t)HW, C);
        float mu, a, b;
        eval_coeff(c, gamma, beta, run_mean, run_var, eps, &mu, &a, &b);
        y[i] = bn_affine(x[i], mu, a, b);
    }
}

int lt_cuda_bn_forward_eval(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x, const float *gamma,
                            const float *beta, const float *run_mean, const float *run_var, float eps, float *y) {
    LT_TRY(nchw_only(layout, "bn_forward_eval"));
    LT_CTX(ctx);
    LT_TRY(bn_args(N, C, HW, x, y));
    if (!run_mean || !run_var) return lt_err(LT_EINVAL, "cuda bn: NULL running statistics");
    const size_t total = (size_t)N * C * HW;
    LT_LAUNCH(k_bn_fwd_eval, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, HW, x, gamma, beta, run_mean, run_var,
                                                                     eps, y);
    return launch_ok("bn forward (eval)");
}

__global__ static void k_bn_bwd_dx(size_t total, int C, int HW, const float *x, const float *dy, const float *r,
                                   const float *coef, float *dx, int set) {
    GRID_LOOP(i, total) {
        const size_t c = (size_t)chan_of(i, (size_t)HW, C);
        const float *k = coef + c * 5;
        const float d = r ? relu_masked(dy[i], r[i]) : dy[i];
        const float v = k[0] * d + k[1] * ((x[i] - k[3]) * k[4]) + k[2];
        if (set) dx[i] = v;
        else dx[i] += v;
    }
}

int lt_cuda_bn_backward_train(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x, const float *gamma,
                              const float *mean, const float *rstd, const float *dy, const float *r, float *dx,
                              float *dgamma, float *dbeta, int set) {
    LT_TRY(nchw_only(layout, "bn_backward_train"));
    LT_CTX(ctx);
    LT_TRY(bn_args(N, C, HW, x, dy));
    if (!mean || !rstd) return lt_err(LT_EINVAL, "cuda bn: NULL mean / rstd");
    if (!dx && !dgamma && !dbeta) return LT_OK;
    struct bn_ws w;
    LT_TRY(bn_ws_get(ctx, N, C, HW, &w));
    const bn_fin f = bn_fin_bwd(gamma, mean, rstd, NULL, 0.0f, dgamma, dbeta, dx ? w.coef : NULL);
    LT_LAUNCH(k_bn_part, dim3((unsigned)w.S, (unsigned)C), RT, ctx->stream)(N, C, HW, w.S, w.chunk, x, dy, r, mean,
                                                                            w.part, ctx->bn_count, f);
    LT_TRY(launch_ok("bn backward (train): sums"));
    if (!dx) return LT_OK;
    const size_t total = (size_t)N * C * HW;
    LT_LAUNCH(k_bn_bwd_dx, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, HW, x, dy, r, w.coef, dx, set);
    return launch_ok("bn backward (train)");
}

__global__ static void k_bn_bwd_eval_dx(size_t total, int C, int HW, const float *gamma, const float *run_var,
                                        float eps, const float *dy, float *dx, int set) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int c = chan_of(i, (size_t)HW, C);
        const double rs = 1.0 / sqrt((double)run_var[c] + (double)eps);
        const float a = (float)((gamma ? gamma[c] : 1.0f) * rs);
        if (set) dx[i] = a * dy[i];
        else dx[i] += a * dy[i];
    }
}

int lt_cuda_bn_backward_eval(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x, const float *gamma,
                             const float *run_mean, const float *run_var, float eps, const float *dy, float *dx,
                             float *dgamma, float *dbeta, int set) {
    LT_TRY(nchw_only(layout, "bn_backward_eval"));
    LT_CTX(ctx);
    LT_TRY(bn_args(N, C, HW, x, dy));
    if (!run_mean || !run_var) return lt_err(LT_EINVAL, "cuda bn: NULL running statistics");
    if (dgamma || dbeta) {
        struct bn_ws w;
        LT_TRY(bn_ws_get(ctx, N, C, HW, &w));
        const bn_fin f = bn_fin_bwd(gamma, NULL, NULL, run_var, eps, dgamma, dbeta, NULL);
        LT_LAUNCH(k_bn_part, dim3((unsigned)w.S, (unsigned)C), RT, ctx->stream)(N, C, HW, w.S, w.chunk, x, dy, NULL,
                                                                                run_mean, w.part, ctx->bn_count, f);
        LT_TRY(launch_ok("bn backward (eval, parameters)"));
    }
    if (dx) {
        const size_t total = (size_t)N * C * HW;
        LT_LAUNCH(k_bn_bwd_eval_dx, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, HW, gamma, run_var, eps, dy, dx,
                                                                            set);
        LT_TRY(launch_ok("bn backward (eval)"));
    }
    return LT_OK;
}

/* ---- elementwise ---------------------------------------------------------------- */

__global__ static void k_relu_fwd(size_t n, const float *x, float *y) { GRID_LOOP(i, n) y[i] = relu1(x[i]); }
__global__ static void k_relu_bwd(size_t n, const float *y, const float *dy, float *dx, int set) {
    GRID_LOOP(i, n) {
        const float g = y[i] > 0.0f ? dy[i] : 0.0f;
        if (set) dx[i] = g;
        else dx[i] += g;
    }
}
__global__ static void k_add_fwd(size_t n, const float *a, const float *b, float *y) { GRID_LOOP(i, n) y[i] = a[i] + b[i]; }
__global__ static void k_acc(size_t n, const float *dy, float *d, int set) {
    GRID_LOOP(i, n) {
        if (set) d[i] = dy[i];
        else d[i] += dy[i];
    }
}

/* A residual sum and the in-place ReLU after it, as one pass each way: the
 * same float operations as k_add_fwd then k_relu_fwd (a + b rounded, then
 * max with 0), and as k_relu_bwd into the sum's gradient then k_acc into
 * each input (g = dy masked by y > 0; da first, then db, which when it is
 * da's buffer receives the second g on top). */
__global__ static void k_add_relu_fwd(size_t n, const float *a, const float *b, float *y) {
    GRID_LOOP(i, n) y[i] = relu1(a[i] + b[i]);
}
__global__ static void k_add_relu_bwd(size_t n, const float *y, const float *dy, float *da, int set_a, float *db,
                                      int set_b) {
    GRID_LOOP(i, n) {
        const float g = y[i] > 0.0f ? dy[i] : 0.0f;
        float va = 0.0f;
        if (da) {
            va = set_a ? g : da[i] + g;
            da[i] = va;
        }
        if (db) {
            if (db == da) db[i] = va + g;
            else db[i] = set_b ? g : db[i] + g;
        }
    }
}

int lt_cuda_relu_forward(lt_cuda_ctx *ctx, size_t n, const float *x, float *y) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    LT_LAUNCH(k_relu_fwd, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, x, y);
    return launch_ok("relu forward");
}

int lt_cuda_relu_backward(lt_cuda_ctx *ctx, size_t n, const float *y, const float *dy, float *dx, int set) {
    LT_CTX(ctx);
    if (!n || !dx) return LT_OK;
    LT_LAUNCH(k_relu_bwd, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, y, dy, dx, set);
    return launch_ok("relu backward");
}

int lt_cuda_add_forward(lt_cuda_ctx *ctx, size_t n, const float *a, const float *b, float *y) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    LT_LAUNCH(k_add_fwd, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, a, b, y);
    return launch_ok("add forward");
}

int lt_cuda_add_backward(lt_cuda_ctx *ctx, size_t n, const float *dy, float *da, int set_a, float *db, int set_b) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    if (da) {
        LT_LAUNCH(k_acc, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, dy, da, set_a);
        LT_TRY(launch_ok("add backward"));
    }
    if (db) {
        /* same buffer as da: the second contribution accumulates (CPU: dy + dy) */
        LT_LAUNCH(k_acc, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, dy, db, set_b && db != da);
        LT_TRY(launch_ok("add backward"));
    }
    return LT_OK;
}

int lt_cuda_add_relu_forward(lt_cuda_ctx *ctx, size_t n, const float *a, const float *b, float *y) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    if (!a || !b || !y) return lt_err(LT_EINVAL, "cuda add+relu: NULL tensor");
    LT_LAUNCH(k_add_relu_fwd, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, a, b, y);
    return launch_ok("add+relu forward");
}

int lt_cuda_add_relu_backward(lt_cuda_ctx *ctx, size_t n, const float *y, const float *dy, float *da, int set_a,
                              float *db, int set_b) {
    LT_CTX(ctx);
    if (!n || (!da && !db)) return LT_OK;
    if (!y || !dy) return lt_err(LT_EINVAL, "cuda add+relu backward: NULL tensor");
    LT_LAUNCH(k_add_relu_bwd, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, y, dy, da, set_a, db, set_b);
    return launch_ok("add+relu backward");
}

/* ---- pooling -------------------------------------------------------------------- */
__global__ static void k_maxpool_fwd(long planes, int H, int W, int k, int s, int p, int ho, int wo, const float *x,
                                     float *y, int32_t *argmax) {
    const size_t P = (size_t)ho * wo, HW = (size_t)H * W;
    GRID_LOOP(i, (size_t)planes * P) {
        size_t pl, q;
        lt_cuda_divmod(i, P, &pl, &q);
        const int oh = (int)q / wo, ow = (int)q % wo;
        const float *xp = x + pl * HW;
        const int h0 = oh * s - p, w0 = ow * s - p;
        const int hlo = h0 < 0 ? 0 : h0, hhi = h0 + k > H ? H : h0 + k;
        const int wlo = w0 < 0 ? 0 : w0, whi = w0 + k > W ? W : w0 + k;
        float best = -INFINITY;
        int32_t bi = -1;
        for (int ih = hlo; ih < hhi; ih++)
            for (int iw = wlo; iw < whi; iw++) {
                const float v = xp[(size_t)ih * W + iw];
                if (bi < 0 || v > best || isnan(v)) {
                    if (bi >= 0 && isnan(best)) continue;
                    best = v;
                    bi = (int32_t)(ih * W + iw);
                }
            }
        y[i] = best;
        argmax[i] = bi;
    }
}

/* Each input element gathers the gradients of the windows whose argmax it
 * is, in ascending output order: the CPU's scatter order, so equal sums. */
__global__ static void k_maxpool_bwd(long planes, int H, int W, int k, int s, int p, int ho, int wo,
                                     const int32_t *argmax, const float *dy, float *dx) {
    const size_t P = (size_t)ho * wo, HW = (size_t)H * W;
    GRID_LOOP(i, (size_t)planes * HW) {
        size_t pl, r;
        lt_cuda_divmod(i, HW, &pl, &r);
        const int idx = (int)r, ih = idx / W, iw = idx % W;
        const int nh = ih + p - k + 1, nw = iw + p - k + 1;
        const int oh0 = nh <= 0 ? 0 : (nh + s - 1) / s, ow0 = nw <= 0 ? 0 : (nw + s - 1) / s;
        int oh1 = (ih + p) / s, ow1 = (iw + p) / s;
        if (oh1 > ho - 1) oh1 = ho - 1;
        if (ow1 > wo - 1) ow1 = wo - 1;
        const int32_t *ap = argmax + pl * P;
        const float *dp = dy + pl * P;
        float acc = dx[i];
        int hit = 0;
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++) {
                const size_t q = (size_t)oh * wo + ow;
                if (ap[q] == idx) {
                    acc += dp[q];
                    hit = 1;
                }
            }
        if (hit) dx[i] = acc;
    }
}

int lt_cuda_maxpool_forward(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int H, int W, int k, int s, int p, const float *x,
                            float *y, int32_t *argmax) {
    LT_TRY(nchw_only(layout, "maxpool_forward"));
    LT_CTX(ctx);
    if (N <= 0 || C <= 0 || k <= 0 || s <= 0 || p < 0 || H + 2 * p < k || W + 2 * p < k)
        return lt_err(LT_ESHAPE, "cuda maxpool: bad shape N=%d C=%d %dx%d k=%d s=%d p=%d", N, C, H, W, k, s, p);
    const int ho = (H + 2 * p - k) / s + 1, wo = (W + 2 * p - k) / s + 1;
    const size_t total = (size_t)N * C * ho * wo;
    LT_LAUNCH(k_maxpool_fwd, lt_cuda_blocks(total, ET), ET, ctx->stream)((long)N * C, H, W, k, s, p, ho, wo, x, y, argmax);
    return launch_ok("maxpool forward");
}

int lt_cuda_maxpool_backward(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int H, int W, int k, int s, int p, const int32_t *argmax,
                             const float *dy, float *dx) {
    LT_TRY(nchw_only(layout, "maxpool_backward"));
    LT_CTX(ctx);
    if (!dx) return LT_OK;
    if (N <= 0 || C <= 0 || k <= 0 || s <= 0 || p < 0 || H + 2 * p < k || W + 2 * p < k)
        return lt_err(LT_ESHAPE, "cuda maxpool: bad shape N=%d C=%d %dx%d k=%d s=%d p=%d", N, C, H, W, k, s, p);
    const int ho = (H + 2 * p - k) / s + 1, wo = (W + 2 * p - k) / s + 1;
    const size_t total = (size_t)N * C * H * W;
    LT_LAUNCH(k_maxpool_bwd, lt_cuda_blocks(total, ET), ET, ctx->stream)((long)N * C, H, W, k, s, p, ho, wo, argmax, dy, dx);
    return launch_ok("maxpool backward");
}

__global__ static void k_gap_fwd(size_t planes, int HW, const float *x, float *y) {
    GRID_LOOP(pl, planes) {
        const float *xp = x + pl * (size_t)HW;
        double sum = 0;
        for (int q = 0; q < HW; q++) sum += xp[q];
        y[pl] = (float)(sum / HW);
    }
}

__global__ static void k_gap_bwd(size_t total, int HW, float inv, const float *dy, float *dx) {
    GRID_LOOP(i, total) {
        size_t pl, r;
        lt_cuda_divmod(i, (size_t)HW, &pl, &r);
        const float g = dy[pl] * inv;
        dx[i] += g;
    }
}

int lt_cuda_gap_forward(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x, float *y) {
    LT_TRY(nchw_only(layout, "gap_forward"));
    LT_CTX(ctx);
    if (N <= 0 || C <= 0 || HW <= 0) return lt_err(LT_ESHAPE, "cuda gap: N=%d C=%d HW=%d", N, C, HW);
    const size_t planes = (size_t)N * C;
    LT_LAUNCH(k_gap_fwd, lt_cuda_blocks(planes, 128), 128, ctx->stream)(planes, HW, x, y);
    return launch_ok("global average pool forward");
}

int lt_cuda_gap_backward(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *dy, float *dx) {
    LT_TRY(nchw_only(layout, "gap_backward"));
    LT_CTX(ctx);
    if (!dx) return LT_OK;
    if (N <= 0 || C <= 0 || HW <= 0) return lt_err(LT_ESHAPE, "cuda gap: N=%d C=%d HW=%d", N, C, HW);
    const size_t total = (size_t)N * C * HW;
    LT_LAUNCH(k_gap_bwd, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, HW, 1.0f / (float)HW, dy, dx);
    return launch_ok("global average pool backward");
}

/* ---- option-A shortcut ------------------------------------------------------------ */
__global__ static void k_sc_fwd(int N, int Ci, int H, int W, int Co, int stride, int ho, int wo, const float *x,
                                float *y) {
    const int lo = (Co - Ci) / 2;
    const size_t P = (size_t)ho * wo;
    GRID_LOOP(i, (size_t)N * Co * P) {
        size_t t, q;
        lt_cuda_divmod(i, P, &t, &q);
        const int n = (int)(t / (size_t)Co), c = (int)(t % (size_t)Co), cs = c - lo;
        if (cs < 0 || cs >= Ci) {
            y[i] = 0.0f;
            continue;
        }
        const int oh = (int)(q / wo), ow = (int)(q % wo);
        y[i] = x[((size_t)n * Ci + cs) * H * W + (size_t)oh * stride * W + (size_t)ow * stride];
    }
}

__global__ static void k_sc_bwd(int N, int Ci, int H, int W, int Co, int stride, int ho, int wo, const float *dy,
                                float *dx) {
    const int lo = (Co - Ci) / 2;
    const size_t HW = (size_t)H * W, P = (size_t)ho * wo;
    GRID_LOOP(i, (size_t)N * Ci * HW) {
        size_t t, q;
        lt_cuda_divmod(i, HW, &t, &q);
        const int ih = (int)(q / W), iw = (int)(q % W);
        if (ih % stride || iw % stride) continue;
        const int n = (int)(t / Ci), c = (int)(t % Ci);
        dx[i] += dy[((size_t)n * Co + lo + c) * P + (size_t)(ih / stride) * wo + iw / stride];
    }
}

static int sc_args(int N, int Ci, int H, int W, int Co, int stride) {
    if (N <= 0 || Ci <= 0 || H <= 0 || W <= 0 || Co < Ci || (Co - Ci) % 2 || stride < 1)
        return lt_err(LT_ESHAPE, "cuda shortcut: bad shape N=%d Ci=%d %dx%d Co=%d stride=%d", N, Ci, H, W, Co, stride);
    return LT_OK;
}

int lt_cuda_shortcut_a_forward(lt_cuda_ctx *ctx, lt_layout layout, int N, int Ci, int H, int W, int Co, int stride, const float *x,
                               float *y) {
    LT_TRY(nchw_only(layout, "shortcut_a_forward"));
    LT_CTX(ctx);
    LT_TRY(sc_args(N, Ci, H, W, Co, stride));
    const int ho = (H + stride - 1) / stride, wo = (W + stride - 1) / stride;
    const size_t total = (size_t)N * Co * ho * wo;
    LT_LAUNCH(k_sc_fwd, lt_cuda_blocks(total, ET), ET, ctx->stream)(N, Ci, H, W, Co, stride, ho, wo, x, y);
    return launch_ok("shortcut forward");
}

int lt_cuda_shortcut_a_backward(lt_cuda_ctx *ctx, lt_layout layout, int N, int Ci, int H, int W, int Co, int stride, const float *dy,
                                float *dx) {
    LT_TRY(nchw_only(layout, "shortcut_a_backward"));
    LT_CTX(ctx);
    if (!dx) return LT_OK;
    LT_TRY(sc_args(N, Ci, H, W, Co, stride));
    const int ho = (H + stride - 1) / stride, wo = (W + stride - 1) / stride;
    const size_t total = (size_t)N * Ci * H * W;
    LT_LAUNCH(k_sc_bwd, lt_cuda_blocks(total, ET), ET, ctx->stream)(N, Ci, H, W, Co, stride, ho, wo, dy, dx);
    return launch_ok("shortcut backward");
}

/* ---- layout conversion ---------------------------------------------------------------
 * One thread per destination element (coalesced stores; the loads are
 * strided, which at weight and input sizes costs little). */
__global__ static void k_layout_convert(size_t total, int to_nhwc, int C, int HW, const float *src, float *dst,
                                        int acc) {
    GRID_LOOP(i, total) {
        size_t s;
        if (to_nhwc) {   /* i = (n*HW + p)*C + c  <-  (n*C + c)*HW + p */
            size_t t, c, n, p;
            lt_cuda_divmod(i, (size_t)C, &t, &c);
            lt_cuda_divmod(t, (size_t)HW, &n, &p);
            s = (n * C + c) * HW + p;
        } else {         /* i = (n*C + c)*HW + p  <-  (n*HW + p)*C + c */
            size_t t, p, n, c;
            lt_cuda_divmod(i, (size_t)HW, &t, &p);
            lt_cuda_divmod(t, (size_t)C, &n, &c);
            s = (n * HW + p) * C + c;
        }
        dst[i] = acc ? dst[i] + src[s] : src[s];
    }
}

int lt_cuda_layout_convert(lt_cuda_ctx *ctx, lt_layout to, int N, int C, int HW, const float *src, float *dst,
                           int accumulate) {
    LT_CTX(ctx);
    if (N < 0 || C < 0 || HW < 0) return lt_err(LT_ESHAPE, "cuda layout convert: N=%d C=%d HW=%d", N, C, HW);
    if (to != LT_LAYOUT_NCHW && to != LT_LAYOUT_NHWC) return lt_err(LT_EINVAL, "cuda layout convert: layout %d", (int)to);
    const size_t total = (size_t)N * C * HW;
    if (!total) return LT_OK;
    if (!src || !dst) return lt_err(LT_EINVAL, "cuda layout convert: NULL tensor");
    LT_LAUNCH(k_layout_convert, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, to == LT_LAYOUT_NHWC, C, HW, src,
                                                                             dst, accumulate != 0);
    return launch_ok("layout convert");
}
