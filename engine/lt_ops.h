/* lt_ops.h — layer kernels as explicit forward/backward pairs (llm.c style).
 *
 * Conventions (all of them, every kernel):
 *  - float32, NCHW, row-major; N is the batch size.
 *  - Forward writes its output (overwrites y).
 *  - Backward ACCUMULATES (+=) into dx and into parameter gradients, so that
 *    residual branches and shared parameters need no special handling; the
 *    caller zeroes them once per step. A NULL dx / dw / db means "not needed"
 *    (frozen input or frozen parameter) and the work is skipped. The *_x
 *    variants can overwrite dx instead (set = 1), for the model's first
 *    writer of each activation gradient.
 *  - Reductions are in a fixed order for a given thread count, so results are
 *    bit-identical run to run.
 *  - No allocation: scratch memory is passed in, sized by the *_scratch_floats
 *    functions. */
#ifndef LT_OPS_H
#define LT_OPS_H

#include "lt_backend.h"
#include "lt_base.h"

/* Hot loops of the engine are built for the baseline x86-64 ISA (SSE2: the
 * binary must run anywhere) and, as clones chosen at load time, for AVX2 and
 * AVX-512. Only loops whose results do not depend on the vector width may
 * carry it: elementwise float operations, and reductions whose partial sums
 * are spelled out in the code (e.g. lt_bn.c's lanes), never `omp simd
 * reduction`, whose order follows the width. FMA contraction stays off in
 * every clone (-std=c11 implies -ffp-contract=off). */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define LT_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LT_HOT
#endif

/* ---- conv2d (im2col + cblas_sgemm), groups supported -------------------- */
typedef struct {
    int ci, h, w;          /* input channels and spatial size */
    int co, kh, kw;        /* output channels, kernel */
    int stride, pad, groups;
    int ho, wo;            /* output spatial size (computed) */
    /* The kernel path, from the backend of the model the layer is in
     * (lt_conv_geom_set_backend at plan): every lt_conv2d_* call, scratch
     * size included, follows it, so models on different backends in one
     * process keep their own paths. LT_CONV_PATH_DEFAULT (0, what
     * lt_conv_geom_init leaves and a zeroed geometry holds) is the process
     * default backend's path and tile. */
    lt_conv_path path;
    int wino_tile;         /* 0 the rule, 2 or 4 forced (lt_cpu_opts.wino_tile) */
} lt_conv_geom;

/* Fills g (computes ho, wo; path LT_CONV_PATH_DEFAULT); LT_ESHAPE if ci or co
 * not divisible by groups or the output would be empty. Weight layout:
 * [co][ci/groups][kh][kw]. */
int lt_conv_geom_init(lt_conv_geom *g, int ci, int h, int w, int co, int kh, int kw,
                      int stride, int pad, int groups);
/* g's path and Winograd tile from cpu backend b (NULL: LT_CONV_PATH_DEFAULT).
 * Scratch sizes depend on the path: set it before lt_conv2d_scratch_floats. */
void lt_conv_geom_set_backend(lt_conv_geom *g, const lt_backend *b);
/* The path g runs on (AUTO .. WINO: DEFAULT resolved) and its forced
 * Winograd tile (0 = the rule). */
lt_conv_path lt_conv_geom_path(const lt_conv_geom *g);
int lt_conv_geom_wino_tile(const lt_conv_geom *g);
size_t lt_conv2d_scratch_floats(const lt_conv_geom *g, int N);
size_t lt_conv2d_weight_count(const lt_conv_geom *g);
/* b may be NULL (no bias). */
void lt_conv2d_forward(const lt_conv_geom *g, int N, const float *x, const float *w,
                       const float *b, float *y, float *scratch);
/* An inference-time epilogue applied to each output as it is stored: the
 * fusion of conv -> BN (eval) [-> residual add] -> ReLU. y = (v - mu[c]) *
 * a[c] + b[c], then y + res (res non-NULL: a tensor shaped like the output,
 * the other input of the residual sum), then y > 0 ? y : 0 when relu: the
 * float operations of lt_bn_forward_eval, lt_add_forward and lt_relu_forward
 * in the same order, so fused and unfused outputs are equal bit for bit
 * (tests/test_model.c). The memory passes of BN, the add and the ReLU over
 * the activation are saved. */
typedef struct lt_conv_epilogue {
    const float *mu, *a, *b;   /* [co] from lt_bn_eval_coeffs */
    int relu;
    const float *res;          /* [N][co][ho][wo] added after the BN, or NULL */
    /* res_c0 < res_c1: only channels [res_c0, res_c1) of res hold data and
     * are added; the others are zeros that were never written (the fused
     * option-A shortcut, whose padding channels are zero). Both 0: all. */
    int res_c0, res_c1;
} lt_conv_epilogue;
/* Channel c's residual plane (P floats) of one image's res, or NULL when c
 * has none. */
static inline const float *lt_conv_res_plane(const lt_conv_epilogue *ep, const float *res, int c, size_t P) {
    if (!ep || !res || (ep->res_c0 < ep->res_c1 && (c < ep->res_c0 || c >= ep->res_c1))) return NULL;
    return res + (size_t)c * P;
}
/* The one spelling of that arithmetic, shared by lt_bn_forward_eval /
 * lt_bn_forward_train's normalisation, lt_relu_forward and the two conv
 * epilogues, so the fused and unfused paths cannot drift apart. */
static inline float lt_bn_affine(float v, float mu, float a, float b) { return (v - mu) * a + b; }
static inline float lt_relu1(float v) { return v > 0.0f ? v : 0.0f; }
void lt_conv2d_forward_ep(const lt_conv_geom *g, int N, const float *x, const float *w,
                          const float *b, float *y, float *scratch, const lt_conv_epilogue *ep);
void lt_conv2d_backward(const lt_conv_geom *g, int N, const float *x, const float *w,
                        const float *dy, float *dx, float *dw, float *db, float *scratch);

/* ---- batch normalisation over (N, H, W) per channel ---------------------- */
/* Train mode: batch statistics; saves mean and rstd (=1/sqrt(var+eps), biased
 * var) per channel for backward; updates running stats PyTorch-style:
 * run = (1-momentum)*run + momentum*stat, with the UNBIASED variance. */
void lt_bn_forward_train(int N, int C, int HW, const float *x, const float *gamma,
                         const float *beta, float *y, float *mean, float *rstd,
                         float *run_mean, float *run_var, float momentum, float eps);
/* Eval-mode BN as y = (x - mu) * a + b per channel: the coefficients
 * lt_bn_forward_eval uses (a = gamma / sqrt(running_var + eps) in double,
 * rounded once). gamma / beta may be NULL (1 / 0). */
void lt_bn_eval_coeffs(int C, const float *gamma, const float *beta, const float *run_mean,
                       const float *run_var, float eps, float *mu, float *a, float *b);
void lt_bn_forward_eval(int N, int C, int HW, const float *x, const float *gamma,
                        const float *beta, const float *run_mean, const float *run_var,
                        float eps, float *y);
/* Backward of the train-mode forward (mean, rstd as saved). */
void lt_bn_backward_train(int N, int C, int HW, const float *x, const float *gamma,
                          const float *mean, const float *rstd, const float *dy,
                          float *dx, float *dgamma, float *dbeta);
/* Backward of the eval-mode forward (statistics are constants). */
void lt_bn_backward_eval(int N, int C, int HW, const float *x, const float *gamma,
                         const float *run_mean, const float *run_var, float eps,
                         const float *dy, float *dx, float *dgamma, float *dbeta);

/* ---- elementwise ---------------------------------------------------------- */
void lt_relu_forward(size_t n, const float *x, float *y);          /* y may alias x */
void lt_relu_backward(size_t n, const float *y, const float *dy, float *dx); /* uses output y */
void lt_add_forward(size_t n, const float *a, const float *b, float *y);
void lt_add_backward(size_t n, const float *dy, float *da, float *db);

/* The same backward kernels with an overwrite switch: set = 1 writes
 * dx = gradient instead of dx += gradient (dx's old contents are never read,
 * so they may be garbage). The model uses it for the first writer of each
 * activation gradient in a backward pass, which spares zeroing every
 * activation gradient before each step (lt_model_backward). */
void lt_relu_backward_x(size_t n, const float *y, const float *dy, float *dx, int set);
/* da is written before db (they may be the same buffer) */
void lt_add_backward_x(size_t n, const float *dy, float *da, int set_a, float *db, int set_b);
void lt_bn_backward_train_x(int N, int C, int HW, const float *x, const float *gamma,
                            const float *mean, const float *rstd, const float *dy,
                            float *dx, float *dgamma, float *dbeta, int set);
void lt_bn_backward_eval_x(int N, int C, int HW, const float *x, const float *gamma,
                           const float *run_mean, const float *run_var, float eps,
                           const float *dy, float *dx, float *dgamma, float *dbeta, int set);
/* Train-mode BN with the ReLU that follows it folded in (the model's
 * training fusion of BN -> in-place ReLU). Forward with relu != 0 writes
 * y = max(0, BN(x)); backward takes the ReLU's output gradient dy and its
 * output r (r == NULL: plain BN) and masks dy by r > 0 as it reads it. The
 * floats are those of the separate BN and ReLU calls, bit for bit
 * (tests/test_ops_grad.c); a read-and-write pass over the activation is
 * saved each way. */
void lt_bn_forward_train_relu(int N, int C, int HW, const float *x, const float *gamma,
                              const float *beta, float *y, float *mean, float *rstd,
                              float *run_mean, float *run_var, float momentum, float eps, int relu);
void lt_bn_backward_train_relu(int N, int C, int HW, const float *x, const float *gamma,
                               const float *mean, const float *rstd, const float *dy, const float *r,
                               float *dx, float *dgamma, float *dbeta, int set);
void lt_conv2d_backward_x(const lt_conv_geom *g, int N, const float *x, const float *w,
                          const float *dy, float *dx, float *dw, float *db, float *scratch, int set_dx);

/* ---- pooling -------------------------------------------------------------- */
/* Max-pool k x k, stride s, zero... (-inf) padding p; argmax saved as int32
 * index into the input plane for backward. Output size (H+2p-k)/s+1. */
void lt_maxpool_forward(int N, int C, int H, int W, int k, int s, int p, const float *x,
                        float *y, int32_t *argmax);
void lt_maxpool_backward(int N, int C, int H, int W, int k, int s, int p,
                         const int32_t *argmax, const float *dy, float *dx);
/* Global average pool [N,C,H,W] -> [N,C]. */
void lt_gap_forward(int N, int C, int HW, const float *x, float *y);
void lt_gap_backward(int N, int C, int HW, const float *dy, float *dx);

/* ---- option-A shortcut (CIFAR ResNets, He et al. 2016 / LDAM code) -------- */
/* x [N,Ci,H,W] -> y [N,Co,Ho,Wo] with Ho=ceil(H/stride): x[:, :, ::stride, ::stride]
 * and zero channels padded (Co-Ci)/2 before and after (F.pad(..., planes//4)
 * when Co = 2Ci). Requires Co >= Ci and (Co-Ci) even. */
void lt_shortcut_a_forward(int N, int Ci, int H, int W, int Co, int stride, const float *x,
                           float *y);
/* The same without writing the zero channels (channels [(Co-Ci)/2,
 * (Co+Ci)/2) only): for a fused residual add that skips the others
 * (lt_conv_epilogue.res_c0 / res_c1). */
void lt_shortcut_a_forward_data(int N, int Ci, int H, int W, int Co, int stride, const float *x,
                                float *y);
void lt_shortcut_a_backward(int N, int Ci, int H, int W, int Co, int stride, const float *dy,
                            float *dx);

/* ---- linear: y[N,out] = x[N,in] W^T + b, W [out][in], b may be NULL ------- */
void lt_linear_forward(int N, int in, int out, const float *x, const float *W, const float *b,
                       float *y);
void lt_linear_backward(int N, int in, int out, const float *x, const float *W,
                        const float *dy, float *dx, float *dW, float *db);

/* ---- cosine (normalised) linear: y = scale * <x/|x|, w_j/|w_j|> ------------
 * Saves per-sample 1/|x| (xinv[N]) and per-class 1/|w| (winv[out]); eps guards
 * zero norms: 1/max(|v|, eps). */
void lt_cosine_forward(int N, int in, int out, const float *x, const float *W, float scale,
                       float eps, float *y, float *xinv, float *winv);
void lt_cosine_backward(int N, int in, int out, const float *x, const float *W, float scale,
                        const float *xinv, const float *winv, const float *y,
                        const float *dy, float *dx, float *dW);

#endif
