/* lt_cuda.h — the CUDA op library: a device context, device memory, and the
 * layer kernels of lt_ops.h, the losses and the optimizer steps of lt_loss.h
 * on device pointers (issue 19, part 1: no model integration yet).
 *
 * A plain C header: no CUDA type appears here, so C code that links
 * build/libltcuda.a needs no CUDA headers. Built only where nvcc is found
 * (Makefile); cuDNN 9 (its legacy convolution API) does the convolutions,
 * cuBLAS the linear layers, small CUDA C kernels everything else.
 *
 * Semantics are lt_ops.h's, kernel for kernel (the same arguments in the
 * same order, device pointers instead of host pointers, and the context
 * first):
 *  - float32, row-major, NCHW; the layout-sensitive ops (convolution,
 *    batch norm, the pools, the option-A shortcut, the conv bias) take an
 *    lt_layout (lt_backend.h) right after the context: LT_LAYOUT_NHWC
 *    means [N][H][W][C] activations (weights stay [co][ci/groups][kh][kw]),
 *    the same arithmetic per element, reductions in another order;
 *  - forward overwrites its output; backward ACCUMULATES (+=) into dx, dw,
 *    db unless the op's `set` flag asks to overwrite dx; a NULL gradient
 *    pointer means "not needed" and the work is skipped;
 *  - every call returns a status (LT_OK == 0) and, on failure, sets the
 *    engine's message (lt_errmsg()): CUDA, cuDNN and cuBLAS errors become
 *    LT_EDEVICE, out of memory LT_ENOMEM with the size asked for, bad
 *    arguments LT_EINVAL / LT_ESHAPE. Nothing aborts.
 *  - Calls are asynchronous on the context's stream, except the losses
 *    (they return the loss value and validate labels on the host side) and
 *    the copies to the host. lt_cuda_sync waits and reports a failed kernel.
 *    (The filter-gradient stream, when switched on, is the one exception:
 *    lt_cuda_set_wgrad_stream.)
 *
 * Math modes: LT_CUDA_FP32 (the default) computes in IEEE float32 with
 * TF32 tensor cores off in cuDNN and cuBLAS; LT_CUDA_TF32 lets convolutions
 * and matrix products use TF32 tensor cores (about 3 decimal digits in the
 * products). Deterministic mode: cuDNN algorithms are chosen by heuristic
 * (never timed) among the deterministic ones, so the same inputs on the same
 * GPU and library versions give bit-identical outputs. Otherwise they are
 * timed on first use (cudnnFind, as PyTorch's cudnn.benchmark): the fastest
 * on this GPU, possibly other kernels on another run (lt_cuda_conv.cu).
 * No value of the library's own kernels passes through an atomic, in any
 * mode: every reduction (batch-norm statistics, bias gradients, loss sums)
 * runs in a fixed order, most of them in double as the CPU kernels do
 * (batch norm's arrival counters only pick which block adds the partial
 * sums up, in that order). */
#ifndef LT_CUDA_H
#define LT_CUDA_H

/* the engine headers have no extern "C" of their own */
#ifdef __cplusplus
extern "C" {
#endif

#include "lt_backend.h"
#include "lt_base.h"
#include "lt_loss.h"
#include "lt_ops.h"
#include "lt_step_dev.h"

typedef struct lt_cuda_ctx lt_cuda_ctx;

/* lt_cuda_math (LT_CUDA_FP32, LT_CUDA_TF32) is lt_backend.h's. */

/* Number of CUDA devices the driver reports (0 without a driver or device;
 * never an error). */
int lt_cuda_device_count(void);
/* Creates a context on device `device` (0-based): a stream, a cuDNN and a
 * cuBLAS handle bound to it, the math mode and the deterministic flag.
 * LT_EDEVICE with a message ("no CUDA device: ...") when there is no
 * driver, no device or the index is out of range; *out is NULL then. */
int lt_cuda_create(lt_cuda_ctx **out, int device, lt_cuda_math math, int deterministic);
void lt_cuda_free_ctx(lt_cuda_ctx *ctx);              /* NULL is fine */
lt_cuda_math lt_cuda_math_mode(const lt_cuda_ctx *ctx);
int lt_cuda_deterministic(const lt_cuda_ctx *ctx);
/* "NVIDIA H200 (sm_90, 132 SMs), CUDA runtime 13000, cuDNN 91900, cuBLAS 130000" */
const char *lt_cuda_describe(const lt_cuda_ctx *ctx);
/* The cudaStream_t of the context, as void * (for later CUDA-graph capture). */
void *lt_cuda_stream(lt_cuda_ctx *ctx);
/* The device's name, compute capability, the driver, runtime, cuDNN and
 * cuBLAS versions, the math mode and deterministic flag, as read when the
 * context was made (the backend's `info` op, lt_backend_get_info). */
int lt_cuda_get_info(const lt_cuda_ctx *ctx, lt_backend_info *out);

/* ---- device memory ----------------------------------------------------------
 * lt_cuda_alloc: *p = device memory of `bytes` (0 bytes gives NULL and LT_OK);
 * LT_ENOMEM "cuda: out of device memory allocating N bytes (x GiB)" on
 * failure, with *p = NULL. Copies and memset are ordered on the stream; the
 * device-to-host copy waits for it. */
int lt_cuda_alloc(lt_cuda_ctx *ctx, void **p, size_t bytes);
void lt_cuda_free(lt_cuda_ctx *ctx, void *p);          /* NULL is fine */
int lt_cuda_memset0(lt_cuda_ctx *ctx, void *p, size_t bytes);
int lt_cuda_h2d(lt_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
int lt_cuda_d2h(lt_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
int lt_cuda_d2d(lt_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
/* Waits for the stream; reports any error a kernel raised (LT_EDEVICE). */
int lt_cuda_sync(lt_cuda_ctx *ctx);
/* The filter-gradient stream. With it on, lt_cuda_conv2d_backward queues
 * a filter gradient (cuDNN's backward-filter, and for NHWC the addition of
 * it into dw in dw's order) on a second stream that starts where the
 * context's stream stands, so that it runs beside the data gradient and
 * whatever is queued after it (the rest of a model's backward) rather than
 * before them: the small convolutions of the CIFAR ResNets leave most of a
 * large GPU idle. dw is complete only after lt_cuda_join, which makes the
 * context's stream wait for that work (lt_model_backward calls it at its
 * end); lt_cuda_sync, lt_cuda_memset0, lt_cuda_h2d / _d2h / _d2d and the
 * graph calls (begin, launch) join first; nothing else does (the kernels,
 * lt_cuda_layout_convert, lt_cuda_upload's copies). The same
 * kernels on the same inputs write the same outputs, so no value changes
 * (in deterministic mode not one bit; tests/gpu's test_train_cuda checks
 * that on the GPU). Off by default: LT_CUDA_WGRAD_STREAM=1 in the
 * environment turns it on in lt_cuda_create (lt_cuda_wgrad_stream_from_env,
 * lt_backend.h; a failure to make it there fails lt_cuda_create), and a
 * run records it (env.cuda_wgrad_stream). Turning it on makes the stream,
 * a cuDNN handle and two events, all or none (LT_EDEVICE / LT_ENOMEM when
 * that fails, and it stays off); switching while the
 * context's stream is captured is LT_ESTATE. A switch changes
 * lt_cuda_ws_generation (a captured step has the other structure). */
int lt_cuda_set_wgrad_stream(lt_cuda_ctx *ctx, int on);
int lt_cuda_wgrad_stream(const lt_cuda_ctx *ctx);   /* 1 when on */
/* The context's stream waits for the filter-gradient stream's work queued
 * so far (nothing when there is none; asynchronous, capturable). */
int lt_cuda_join(lt_cuda_ctx *ctx);
/* Grows the context's workspace (cuDNN's and the library's scratch) to at
 * least `bytes` now: growing it while the stream is captured into a CUDA
 * graph would invalidate the capture. */
int lt_cuda_workspace_reserve(lt_cuda_ctx *ctx, size_t bytes);
/* The profiler's capture range (cudaProfilerStart when on, else
 * cudaProfilerStop): a profiler started with --profile-from-start off
 * (ncu) records only the GPU work queued in between (tests/bench/bench_gpu
 * with LT_BENCH_PROFILE=1). */
int lt_cuda_profiler_range(int on);
/* host memory (issue 20, C): *p = `bytes` of pinned host memory
 * (cudaHostAlloc, portable: usable by any context's copies), 0 bytes gives
 * NULL and LT_OK; LT_ENOMEM "cuda: out of pinned host memory allocating N
 * bytes" or LT_EDEVICE naming the runtime error, with *p = NULL. Free with
 * lt_cuda_host_free (cudaFreeHost; NULL is fine). */
int lt_cuda_host_alloc(lt_cuda_ctx *ctx, void **p, size_t bytes);
void lt_cuda_host_free(lt_cuda_ctx *ctx, void *p);
/* 1 when p points into page-locked host memory the CUDA runtime knows
 * (cudaHostAlloc / cudaHostRegister), 0 otherwise (ordinary host memory,
 * device memory, or the query failed): what the tests check the loader's
 * slots with. */
int lt_cuda_host_is_pinned(const void *p);

/* ---- convolution (cuDNN) -----------------------------------------------------
 * Geometry and weight layout as lt_conv_geom ([co][ci/groups][kh][kw], in
 * both activation layouts: NHWC converts a copy for cuDNN); b may be NULL.
 * The algorithms of each (layout, geometry, N) are chosen once and cached
 * in the context, with their workspace. */
int lt_cuda_conv2d_forward(lt_cuda_ctx *ctx, lt_layout layout, const lt_conv_geom *g, int N, const float *x,
                           const float *w, const float *b, float *y);
/* dx (+=, or = when set_dx), dw +=, db += ; each may be NULL. dw on the
 * filter-gradient stream when it is on (above: complete after a join). */
int lt_cuda_conv2d_backward(lt_cuda_ctx *ctx, lt_layout layout, const lt_conv_geom *g, int N, const float *x,
                            const float *w, const float *dy, float *dx, float *dw, float *db,
                            int set_dx);
/* What cuDNN chose: one line per cached plan, oldest first, e.g.
 *   "conv 3x3 s1 p1 g1 64->64 56x56 N=4: fwd IMPLICIT_PRECOMP_GEMM/FMA 0 KiB,
 *    bwd-data ALGO_1/FMA 0 KiB, bwd-filter ALGO_1/FMA 512 KiB\n"
 * ("N=4 nhwc:" for an NHWC plan; the algorithm decides how far a result may be from the CPU's: Winograd
 * and FFT round differently from a direct sum: tests/gpu print it). At
 * most cap bytes, always NUL-terminated when cap > 0; the plan count, or -1
 * for a NULL context. */
int lt_cuda_conv_plans_describe(const lt_cuda_ctx *ctx, char *buf, size_t cap);

/* ---- batch normalisation (lt_bn_* semantics) ----------------------------------
 * Train forward: batch statistics in double, mean and rstd saved, running
 * stats updated with the unbiased variance (run_mean / run_var may be NULL);
 * relu != 0 folds the following ReLU in (lt_bn_forward_train_relu).
 * gamma / beta may be NULL (1 / 0). */
int lt_cuda_bn_forward_train(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x,
                             const float *gamma, const float *beta, float *y, float *mean,
                             float *rstd, float *run_mean, float *run_var, float momentum,
                             float eps, int relu);
int lt_cuda_bn_forward_eval(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x,
                            const float *gamma, const float *beta, const float *run_mean,
                            const float *run_var, float eps, float *y);
/* r: the fused ReLU's output (dy is masked by r > 0), NULL for plain BN. */
int lt_cuda_bn_backward_train(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x,
                              const float *gamma, const float *mean, const float *rstd,
                              const float *dy, const float *r, float *dx, float *dgamma,
                              float *dbeta, int set);
int lt_cuda_bn_backward_eval(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x,
                             const float *gamma, const float *run_mean, const float *run_var,
                             float eps, const float *dy, float *dx, float *dgamma, float *dbeta,
                             int set);

/* ---- layout conversion -----------------------------------------------------------
 * dst = (or += when accumulate) src converted to layout `to` from the other
 * one: to NHWC, src [N][C][HW] -> dst [N][HW][C]; to NCHW, src [N][HW][C]
 * -> dst [N][C][HW]. src and dst must not overlap. Exact (a copy, or one
 * float add per element). The same call converts a weight [co][ci][kh][kw]
 * to [co][kh][kw][ci] and back (N = co, C = ci, HW = kh*kw). */
int lt_cuda_layout_convert(lt_cuda_ctx *ctx, lt_layout to, int N, int C, int HW, const float *src, float *dst,
                           int accumulate);

/* ---- elementwise ----------------------------------------------------------------- */
int lt_cuda_relu_forward(lt_cuda_ctx *ctx, size_t n, const float *x, float *y);
int lt_cuda_relu_backward(lt_cuda_ctx *ctx, size_t n, const float *y, const float *dy, float *dx,
                          int set);
int lt_cuda_add_forward(lt_cuda_ctx *ctx, size_t n, const float *a, const float *b, float *y);
/* da written before db (they may be the same buffer), as lt_add_backward_x. */
int lt_cuda_add_backward(lt_cuda_ctx *ctx, size_t n, const float *dy, float *da, int set_a,
                         float *db, int set_b);
/* The residual sum with the in-place ReLU after it, as one kernel each way
 * (the training fusion of lt_model.c on a device): y = max(0, a + b); and
 * g = (y > 0 ? dy : 0) into da, then db, with lt_cuda_add_backward's
 * set / same-buffer rules. Bit for bit the unfused pair's results. */
int lt_cuda_add_relu_forward(lt_cuda_ctx *ctx, size_t n, const float *a, const float *b, float *y);
int lt_cuda_add_relu_backward(lt_cuda_ctx *ctx, size_t n, const float *y, const float *dy, float *da,
                              int set_a, float *db, int set_b);

/* ---- pooling ------------------------------------------------------------------------
 * Max pool: -inf padding, first maximum in row-major window order wins, a
 * NaN wins and sticks; argmax (int32, index into the input plane) saved.
 * Backward gathers in the CPU's order (no atomics), so gradients equal the
 * CPU's bit for bit. */
int lt_cuda_maxpool_forward(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int H, int W, int k, int s, int p,
                            const float *x, float *y, int32_t *argmax);
int lt_cuda_maxpool_backward(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int H, int W, int k, int s, int p,
                             const int32_t *argmax, const float *dy, float *dx);
int lt_cuda_gap_forward(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x, float *y);
int lt_cuda_gap_backward(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *dy, float *dx);

/* ---- option-A shortcut ------------------------------------------------------------------ */
int lt_cuda_shortcut_a_forward(lt_cuda_ctx *ctx, lt_layout layout, int N, int Ci, int H, int W, int Co, int stride,
                               const float *x, float *y);
int lt_cuda_shortcut_a_backward(lt_cuda_ctx *ctx, lt_layout layout, int N, int Ci, int H, int W, int Co, int stride,
                                const float *dy, float *dx);

/* ---- linear (cuBLAS): y[N,out] = x[N,in] W^T + b, W [out][in] ------------------------- */
int lt_cuda_linear_forward(lt_cuda_ctx *ctx, int N, int in, int out, const float *x,
                           const float *W, const float *b, float *y);
int lt_cuda_linear_backward(lt_cuda_ctx *ctx, int N, int in, int out, const float *x,
                            const float *W, const float *dy, float *dx, float *dW, float *db,
                            int set_dx);
/* Cosine classifier (lt_cosine_*): xinv [N], winv [out] saved by forward. */
int lt_cuda_cosine_forward(lt_cuda_ctx *ctx, int N, int in, int out, const float *x,
                           const float *W, float scale, float eps, float *y, float *xinv,
                           float *winv);
int lt_cuda_cosine_backward(lt_cuda_ctx *ctx, int N, int in, int out, const float *x,
                            const float *W, float scale, const float *xinv, const float *winv,
                            const float *y, const float *dy, float *dx, float *dW);

/* ---- the learned cosine scale and the per-class scale (lt_layers.c) ----------
 * y[i] = (mul * p[0]) * x[i], p a device float (the learned scale); *out +=
 * (float)(sum_k (double)a[k] * b[k] * mul), one serial sum (its gradient). */
int lt_cuda_scale_by(lt_cuda_ctx *ctx, size_t n, float mul, const float *p, const float *x, float *y);
int lt_cuda_dot_acc(lt_cuda_ctx *ctx, size_t n, const float *a, const float *b, float mul, float *out);
/* LWS: y[i][j] = s[j] x[i][j]; backward dx += dy * s (dx may be NULL), ds[j] +=
 * sum_i dy x (double, rows in order; ds may be NULL). */
int lt_cuda_chscale_forward(lt_cuda_ctx *ctx, int N, size_t C, const float *s, const float *x, float *y);
int lt_cuda_chscale_backward(lt_cuda_ctx *ctx, int N, size_t C, const float *x, const float *s, const float *dy,
                             float *dx, float *ds);
/* CAM-weighted pooling (lt_campool.c's layer; lt_cuda_campool.cu): F the
 * feature maps [N][K][HW] in `layout`, W the classifier [C][K], y [N][K],
 * saved [N][HW + 1] (attention, then the class as a float). cls: the rows'
 * labels on the device, or NULL (top-1 of cos(w_j, GAP)); a label outside
 * 0..C-1 takes the top-1 too. Backward accumulates into dF and gW (either
 * may be NULL; stop_grad: nothing into gW, no path through A) and uses the
 * context workspace. Each value in the CPU's operations and order. */
#define LT_CUDA_CAM_POOL_EPS 1e-12f
int lt_cuda_cam_pool_forward(lt_cuda_ctx *ctx, lt_layout layout, int N, int K, int HW, int C, const float *F,
                             const float *W, const int32_t *cls, float scale, float gamma, float *y, float *saved);
int lt_cuda_cam_pool_backward(lt_cuda_ctx *ctx, lt_layout layout, int N, int K, int HW, int C, const float *F,
                              const float *W, const float *saved, const float *dy, float scale, float gamma,
                              int stop_grad, float *dF, float *gW);

/* ---- models on the CUDA backend (engine/cuda/lt_cuda_model.c) -------------------
 * lt_backend_cuda_create (lt_backend.h) is defined there. The device
 * implementations of the built-in layer kinds, indexed by lt_layer_kind
 * (lt_layers_impl.h; lt_cuda_model_layer_count() entries): a table test
 * checks that every built-in kind has one. Returns void * to keep this
 * header free of engine-internal types (it is const lt_dev_layer *). */
const void *lt_cuda_model_layers(void);
int lt_cuda_model_layer_count(void);

/* ---- losses (lt_loss.h semantics; the loss is the batch mean, returned on
 * the host in *loss; dlogits overwritten, already divided by N, may be NULL).
 * labels, offsets, weights, targets are device pointers; offsets / weights
 * may be NULL. LT_EINVAL for a label outside [0, C), LT_ENUM for a
 * non-finite logit, offset, weight or loss (dlogits undefined then). These
 * calls wait for the stream. */
int lt_cuda_softmax_ce(lt_cuda_ctx *ctx, int N, int C, const float *logits, const int32_t *labels,
                       const float *offsets, const float *weights, double *loss, float *dlogits);
int lt_cuda_sigmoid_bce(lt_cuda_ctx *ctx, int N, int C, const float *logits, const float *targets,
                        const float *offsets, double *loss, float *dlogits);

/* ---- optimizers (lt_optim.c's arithmetic, element by element, in float) ------
 * mask: device bytes (LT_MASK_FROZEN / LT_MASK_NO_DECAY) or NULL. */
int lt_cuda_sgd_step(lt_cuda_ctx *ctx, size_t n, float *params, const float *grads, float *mom,
                     const uint8_t *mask, const lt_sgd_cfg *cfg);
int lt_cuda_adam_step(lt_cuda_ctx *ctx, size_t n, float *params, const float *grads, float *m,
                      float *v, const uint8_t *mask, const lt_adam_cfg *cfg, long step);
/* lt_optim_step's grouped updates: element i uses the rates of group gid[i]
 * (gid: device bytes, < n_groups <= LT_CUDA_MAX_GROUPS). glr / gwd / gstep
 * are host arrays of n_groups floats computed as lt_optim_step does. */
#define LT_CUDA_MAX_GROUPS 16
int lt_cuda_sgd_step_grouped(lt_cuda_ctx *ctx, size_t n, float *w, const float *g, float *mom,
                             const uint8_t *mask, const uint8_t *gid, int n_groups,
                             const float *glr, const float *gwd, float momentum, int nesterov);
int lt_cuda_adam_step_grouped(lt_cuda_ctx *ctx, size_t n, float *w, const float *g, float *m1,
                              float *m2, const uint8_t *mask, const uint8_t *gid, int n_groups,
                              const float *gstep, const float *gwd, float beta1, float beta2,
                              float eps, float bc2_sqrt);

/* ---- the training step (issue 20, B; engine/cuda/lt_cuda_step.cu) -------------
 * What engine/lt_step.c runs through lt_dev_ops to keep a whole step on the
 * stream, capturable as a CUDA graph (lt_step.h says how it is used).
 *
 * Uploads: pinned host staging with two slots of `bytes` each and an event
 * per slot, device staging of `bytes` and a copy stream; lt_cuda_upload
 * copies n host regions into the next slot (after waiting for that slot's
 * earlier copy), queues one copy of the slot into the device staging on
 * the copy stream (after the previous upload's staging was read out), and
 * on the compute stream, after that copy, the device copies from the
 * staging to dst[k]: the PCIe transfer overlaps the step before. src may
 * be reused at return. */
int lt_cuda_upload_new(lt_cuda_ctx *ctx, size_t bytes, void **up);
void lt_cuda_upload_free(lt_cuda_ctx *ctx, void *up);
int lt_cuda_upload(lt_cuda_ctx *ctx, void *up, int n, void *const *dst, const void *const *src, const size_t *bytes);
/* Softmax cross-entropy of N rows (no offsets or weights), lt_cuda_softmax_ce's
 * arithmetic, dlogits overwritten (divided by N), accumulated into the
 * device record acc (lt_step_dev.h) instead of returned: asynchronous.
 * Labels must be in [0, C) (the caller checks them on the host); a
 * non-finite logit or loss is recorded in acc->status (the first one).
 * scratch: device memory of N * (sizeof(double) + 2 * sizeof(int32_t)) bytes. */
int lt_cuda_ce_acc(lt_cuda_ctx *ctx, int N, int C, const float *logits, const int32_t *labels, float *dlogits,
                   void *scratch, lt_ce_acc *acc);
/* lt_cuda_sgd_step_grouped / lt_cuda_adam_step_grouped with the rates read
 * from device memory r (lt_step_dev.h: group k's rate from r->lr and
 * r->lr_mult[k] in lt_optim_step's arithmetic); gid NULL = group 0. */
int lt_cuda_sgd_dev_rates(lt_cuda_ctx *ctx, size_t n, float *w, const float *g, float *mom, const uint8_t *mask,
                          const uint8_t *gid, int n_groups, const lt_step_rates *r, float momentum, int nesterov);
int lt_cuda_adam_dev_rates(lt_cuda_ctx *ctx, size_t n, float *w, const float *g, float *m1, float *m2,
                           const uint8_t *mask, const uint8_t *gid, int n_groups, const lt_step_rates *r,
                           float beta1, float beta2, float eps);
/* CUDA graphs. prepare: once per context, an explicit cuBLAS workspace
 * (cublasSetWorkspace, LT_CUDA_BLAS_WS bytes): cuBLAS then allocates
 * nothing while a stream is captured. ws_generation: changes whenever the
 * context's workspace is reallocated (a graph holds its address).
 * begin / end: stream capture (cudaStreamCaptureModeThreadLocal) and
 * instantiation; end always takes the stream out of capture mode and
 * returns LT_EDEVICE with *exec = NULL when the capture was invalidated (a
 * wait, a host copy or an allocation inside it) or instantiation failed. */
#define LT_CUDA_BLAS_WS ((size_t)32 << 20)
int lt_cuda_graph_prepare(lt_cuda_ctx *ctx);
unsigned long lt_cuda_ws_generation(const lt_cuda_ctx *ctx);
int lt_cuda_graph_begin(lt_cuda_ctx *ctx);
int lt_cuda_graph_end(lt_cuda_ctx *ctx, void **exec);
int lt_cuda_graph_launch(lt_cuda_ctx *ctx, void *exec);
void lt_cuda_graph_free(lt_cuda_ctx *ctx, void *exec);

#ifdef __cplusplus
}
#endif

#endif
