/* lt_backend_impl.h — the backend object's struct and the device interface
 * a device backend fills in (engine files and engine/cuda/ only).
 *
 * The engine library never calls into libltcuda directly: a cuda backend
 * carries a table of device functions (lt_dev_ops) and its context, set by
 * the real lt_backend_cuda_create in libltcuda.a or by the CUDA module's
 * entry point (lt_cuda_module.h). A field added here changes the module
 * ABI: the size check of lt_cuda_module.h catches a module built before. lt_model.c and lt_optim.c
 * call through the table, so libltengine.a links without libltcuda and a
 * CPU model never touches it (m->dev is NULL). */
#ifndef LT_BACKEND_IMPL_H
#define LT_BACKEND_IMPL_H

#include "lt_backend.h"
#include "lt_layers_impl.h"
#include "lt_loss.h"
#include "lt_step_dev.h"

/* engine/cuda/lt_cuda.h's context; opaque here (the same typedef). */
typedef struct lt_cuda_ctx lt_cuda_ctx;

/* A built-in layer kind's device implementation (node buffers are device
 * pointers; semantics are the CPU layer's).
 *
 * forward_relu / backward_relu (optional, both or neither): node nd with
 * the in-place ReLU that is its only reader (lt_model.c plans the pairs)
 * as one pass each way, the device twin of lt_layer_fusion's. forward_relu
 * sets *fused to 1 when it ran the pair, 0 when the pair must run unfused
 * this time (an eval-mode BN), and returns an error code; backward_relu
 * reads the ReLU's dy and output and leaves nd's own dy unwritten. Both
 * must give the unfused pair's results bit for bit. */
typedef struct {
    int (*forward)(lt_model *m, lt_node *nd, int N);
    int (*backward)(lt_model *m, lt_node *nd, int N);
    int (*forward_relu)(lt_model *m, lt_node *nd, int N, int *fused);
    int (*backward_relu)(lt_model *m, lt_node *nd, const lt_node *relu, int N);
    /* 1: forward / backward honour the model's layout (m->layout: NHWC
     * activations where H*W > 1); 0: NCHW only, so a model with such a
     * node keeps NCHW unless all its tensors are 1x1 (lt_model_set_layout) */
    int nhwc;
} lt_dev_layer;

/* The functions of engine/cuda/lt_cuda.h the model and the optimizer need,
 * with their signatures. */
typedef struct lt_dev_ops {
    int (*alloc)(lt_cuda_ctx *ctx, void **p, size_t bytes);
    void (*free)(lt_cuda_ctx *ctx, void *p);
    int (*memset0)(lt_cuda_ctx *ctx, void *p, size_t bytes);
    int (*h2d)(lt_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
    int (*d2h)(lt_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
    int (*d2d)(lt_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);
    /* lt_cuda_layout_convert: the model's input rows into NHWC */
    int (*layout_convert)(lt_cuda_ctx *ctx, lt_layout to, int N, int C, int HW, const float *src, float *dst,
                          int accumulate);
    int (*sync)(lt_cuda_ctx *ctx);
    void (*ctx_free)(lt_cuda_ctx *ctx);
    int (*sgd_step)(lt_cuda_ctx *ctx, size_t n, float *params, const float *grads, float *mom,
                    const uint8_t *mask, const lt_sgd_cfg *cfg);
    int (*adam_step)(lt_cuda_ctx *ctx, size_t n, float *params, const float *grads, float *m, float *v,
                     const uint8_t *mask, const lt_adam_cfg *cfg, long step);
    int (*sgd_grouped)(lt_cuda_ctx *ctx, size_t n, float *w, const float *g, float *mom, const uint8_t *mask,
                       const uint8_t *gid, int n_groups, const float *glr, const float *gwd, float momentum,
                       int nesterov);
    int (*adam_grouped)(lt_cuda_ctx *ctx, size_t n, float *w, const float *g, float *m1, float *m2,
                        const uint8_t *mask, const uint8_t *gid, int n_groups, const float *gstep,
                        const float *gwd, float beta1, float beta2, float eps, float bc2_sqrt);
    /* [LT_LK_COUNT]: every built-in kind (LT_LK_PLUGIN's entry unused) */
    const lt_dev_layer *layers;
    /* device info (issue 20, A) */
    /* the device's properties and library versions, math mode and
     * deterministic flag (lt_backend_get_info fills kind and device) */
    int (*info)(const lt_cuda_ctx *ctx, lt_backend_info *out);
    /* host memory (issue 20, C): pinned host buffers (cudaHostAlloc /
     * cudaFreeHost) for lt_backend_host_alloc; NULL: aligned heap memory */
    int (*host_alloc)(lt_cuda_ctx *ctx, void **p, size_t bytes);
    void (*host_free)(lt_cuda_ctx *ctx, void *p);

    /* training step (issue 20, B): what engine/lt_step.c needs to run a
     * whole step on the stream without the host, and to capture it as a
     * CUDA graph. Every call is asynchronous unless it says otherwise. */
    /* Pinned host staging of `bytes` per slot (two slots, so the host fills
     * one while the device still reads the other). */
    int (*upload_new)(lt_cuda_ctx *ctx, size_t bytes, void **up);
    void (*upload_free)(lt_cuda_ctx *ctx, void *up);
    /* Copies n host regions (any memory; src may be reused at return) into
     * device dst[k] through the next slot: waits until that slot's earlier
     * copies are done, memcpy into it, async copies, records an event. The
     * regions together must fit the slot. */
    int (*upload)(lt_cuda_ctx *ctx, void *up, int n, void *const *dst, const void *const *src,
                  const size_t *bytes);
    /* Softmax cross-entropy (batch mean) of N rows into dlogits (divided by
     * N), accumulated into the device record acc (lt_step_dev.h); labels on
     * the device, checked by the caller; scratch: device memory of
     * lt_ce_acc_scratch_bytes(N). No host wait. */
    int (*ce_acc)(lt_cuda_ctx *ctx, int N, int C, const float *logits, const int32_t *labels, float *dlogits,
                  void *scratch, lt_ce_acc *acc);
    /* lt_optim_step's grouped SGD / Adam with the rates read from device
     * memory (r: lt_step_rates on the device); gid may be NULL (group 0). */
    int (*sgd_dev_rates)(lt_cuda_ctx *ctx, size_t n, float *w, const float *g, float *mom, const uint8_t *mask,
                         const uint8_t *gid, int n_groups, const lt_step_rates *r, float momentum, int nesterov);
    int (*adam_dev_rates)(lt_cuda_ctx *ctx, size_t n, float *w, const float *g, float *m1, float *m2,
                          const uint8_t *mask, const uint8_t *gid, int n_groups, const lt_step_rates *r,
                          float beta1, float beta2, float eps);
    /* Makes the context capturable once (an explicit cuBLAS workspace), and
     * a counter that changes whenever the context's own workspace is
     * reallocated (a captured graph holds its address). */
    int (*graph_prepare)(lt_cuda_ctx *ctx);
    unsigned long (*ws_generation)(const lt_cuda_ctx *ctx);
    /* Stream capture: begin; end + instantiate (*exec = NULL and an error
     * when the capture was invalidated or instantiation failed; the stream
     * is out of capture mode either way); launch; free (NULL is fine). */
    int (*graph_begin)(lt_cuda_ctx *ctx);
    int (*graph_end)(lt_cuda_ctx *ctx, void **exec);
    int (*graph_launch)(lt_cuda_ctx *ctx, void *exec);
    void (*graph_free)(lt_cuda_ctx *ctx, void *exec);
    /* The end of a model's backward (lt_cuda_join): the compute stream waits
     * for work the backward queued on other streams (the filter-gradient
     * stream), so that whatever comes next (the optimizer, the next
     * forward, a copy) sees complete gradients. NULL: nothing to join. */
    int (*join)(lt_cuda_ctx *ctx);
} lt_dev_ops;

/* Device scratch the ce_acc call needs for N rows (row losses, failing
 * columns, hits). */
#define lt_ce_acc_scratch_bytes(N) ((size_t)(N) * (sizeof(double) + 2 * sizeof(int32_t)))

struct lt_backend {
    lt_backend_kind kind;
    lt_cpu_opts cpu;      /* kind == LT_BACKEND_CPU */
    int device;           /* kind == LT_BACKEND_CUDA */
    char cuda_name[24];   /* "cuda:N", what lt_backend_describe returns for it */
    int is_default;       /* the process default: lt_backend_free leaves it */
    /* kind == LT_BACKEND_CUDA: the device functions and the context (owned) */
    const lt_dev_ops *dev;
    lt_cuda_ctx *ctx;
    lt_cuda_math math;
    int deterministic;
};

#endif
