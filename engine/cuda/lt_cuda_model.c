/* lt_cuda_model.c — models on the CUDA backend: the real
 * lt_backend_cuda_create (replacing the engine's weak module-loading
 * definition in programs linked with libltcuda.a), the CUDA module's entry
 * point (build/libltcuda.so, lt_cuda_module.h) and the device implementations of
 * every built-in layer kind, on the model's device buffers.
 *
 * Plain C, compiled with the engine's flags into libltcuda.a. Each layer is
 * lt_layers.c's CPU layer with its kernel calls replaced by the lt_cuda.h
 * ops of the same semantics (forward overwrites, backward accumulates or
 * overwrites per the node's dx_set, NULL gradients skipped). The engine
 * reaches these through the backend's lt_dev_ops table, by layer kind. */
#include "lt_cuda.h"
#include "lt_cuda_module.h"
#include "lt_layers_impl.h"
#include "lt_model_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lt_cuda_ctx *CX(const lt_model *m) { return m->dctx; }
static lt_layout LY(const lt_model *m) { return m->layout; }
static size_t numel(const lt_node *nd, int N) { return (size_t)N * lt_shape_count(nd->shape); }

static int noop(lt_model *m, lt_node *nd, int N) { (void)m; (void)nd; (void)N; return LT_OK; }

/* ---- conv2d (cuDNN) ------------------------------------------------------------------ */
static int conv_fwd(lt_model *m, lt_node *nd, int N) {
    const lt_conv_cfg *c = (const lt_conv_cfg *)nd->cfg;
    return lt_cuda_conv2d_forward(CX(m), LY(m), &c->g, N, lt_in_node(m, nd, 0)->y, lt_pw(m, nd, 0),
                                  c->bias ? lt_pw(m, nd, 1) : NULL, nd->y);
}
static int conv_bwd(lt_model *m, lt_node *nd, int N) {
    const lt_conv_cfg *c = (const lt_conv_cfg *)nd->cfg;
    return lt_cuda_conv2d_backward(CX(m), LY(m), &c->g, N, lt_in_node(m, nd, 0)->y, lt_pw(m, nd, 0), nd->dy,
                                   lt_in_dy(m, nd, 0), lt_pg(m, nd, 0), c->bias ? lt_pg(m, nd, 1) : NULL,
                                   nd->dx_set[0]);
}

/* ---- batch norm ---------------------------------------------------------------------- */
static int bn_fwd(lt_model *m, lt_node *nd, int N) {
    const lt_bn_cfg *c = (const lt_bn_cfg *)nd->cfg;
    const int C = nd->shape.c, HW = nd->shape.h * nd->shape.w;
    const float *x = lt_in_node(m, nd, 0)->y;
    if (lt_node_train_mode(m, nd))
        return lt_cuda_bn_forward_train(CX(m), LY(m), N, C, HW, x, lt_pw(m, nd, 0), lt_pw(m, nd, 1), nd->y, nd->saved,
                                        nd->saved + C, lt_bf(m, nd, 0), lt_bf(m, nd, 1), c->momentum, c->eps, 0);
    return lt_cuda_bn_forward_eval(CX(m), LY(m), N, C, HW, x, lt_pw(m, nd, 0), lt_pw(m, nd, 1), lt_bf(m, nd, 0),
                                   lt_bf(m, nd, 1), c->eps, nd->y);
}
static int bn_bwd(lt_model *m, lt_node *nd, int N) {
    const lt_bn_cfg *c = (const lt_bn_cfg *)nd->cfg;
    const int C = nd->shape.c, HW = nd->shape.h * nd->shape.w;
    const float *x = lt_in_node(m, nd, 0)->y;
    if (lt_node_train_mode(m, nd))
        return lt_cuda_bn_backward_train(CX(m), LY(m), N, C, HW, x, lt_pw(m, nd, 0), nd->saved, nd->saved + C, nd->dy, NULL,
                                         lt_in_dy(m, nd, 0), lt_pg(m, nd, 0), lt_pg(m, nd, 1), nd->dx_set[0]);
    return lt_cuda_bn_backward_eval(CX(m), LY(m), N, C, HW, x, lt_pw(m, nd, 0), lt_bf(m, nd, 0), lt_bf(m, nd, 1), c->eps,
                                    nd->dy, lt_in_dy(m, nd, 0), lt_pg(m, nd, 0), lt_pg(m, nd, 1), nd->dx_set[0]);
}

/* Training: BN -> the in-place ReLU reading it (the same kernels with the
 * ReLU folded in: lt_cuda.h); the pair runs unfused in eval mode. */
static int bn_fwd_relu(lt_model *m, lt_node *nd, int N, int *fused) {
    *fused = 0;
    if (!lt_node_train_mode(m, nd)) return LT_OK;
    const lt_bn_cfg *c = (const lt_bn_cfg *)nd->cfg;
    const int C = nd->shape.c, HW = nd->shape.h * nd->shape.w;
    LT_TRY(lt_cuda_bn_forward_train(CX(m), LY(m), N, C, HW, lt_in_node(m, nd, 0)->y, lt_pw(m, nd, 0), lt_pw(m, nd, 1), nd->y,
                                    nd->saved, nd->saved + C, lt_bf(m, nd, 0), lt_bf(m, nd, 1), c->momentum, c->eps,
                                    1));
    *fused = 1;
    return LT_OK;
}
static int bn_bwd_relu(lt_model *m, lt_node *nd, const lt_node *rn, int N) {
    const int C = nd->shape.c, HW = nd->shape.h * nd->shape.w;
    return lt_cuda_bn_backward_train(CX(m), LY(m), N, C, HW, lt_in_node(m, nd, 0)->y, lt_pw(m, nd, 0), nd->saved,
                                     nd->saved + C, rn->dy, rn->y, lt_in_dy(m, nd, 0), lt_pg(m, nd, 0), lt_pg(m, nd, 1),
                                     nd->dx_set[0]);
}

/* ---- relu (in place when the engine planned it so: y == x) ------------------------------ */
static int relu_fwd(lt_model *m, lt_node *nd, int N) {
    return lt_cuda_relu_forward(CX(m), numel(nd, N), lt_in_node(m, nd, 0)->y, nd->y);
}
static int relu_bwd(lt_model *m, lt_node *nd, int N) {
    float *dx = lt_in_dy(m, nd, 0);
    return dx ? lt_cuda_relu_backward(CX(m), numel(nd, N), nd->y, nd->dy, dx, nd->dx_set[0]) : LT_OK;
}

/* ---- max pool (int32 argmax in saved) --------------------------------------------------- */
static int maxpool_fwd(lt_model *m, lt_node *nd, int N) {
    const lt_pool_cfg *c = (const lt_pool_cfg *)nd->cfg;
    const lt_shape s = lt_in_node(m, nd, 0)->shape;
    return lt_cuda_maxpool_forward(CX(m), LY(m), N, s.c, s.h, s.w, c->k, c->s, c->p, lt_in_node(m, nd, 0)->y, nd->y,
                                   (int32_t *)nd->saved);
}
static int maxpool_bwd(lt_model *m, lt_node *nd, int N) {
    const lt_pool_cfg *c = (const lt_pool_cfg *)nd->cfg;
    const lt_shape s = lt_in_node(m, nd, 0)->shape;
    float *dx = lt_in_dy(m, nd, 0);
    return dx ? lt_cuda_maxpool_backward(CX(m), LY(m), N, s.c, s.h, s.w, c->k, c->s, c->p, (const int32_t *)nd->saved,
                                         nd->dy, dx)
              : LT_OK;
}

/* ---- global average pool ------------------------------------------------------------------ */
static int gap_fwd(lt_model *m, lt_node *nd, int N) {
    const lt_shape s = lt_in_node(m, nd, 0)->shape;
    return lt_cuda_gap_forward(CX(m), LY(m), N, s.c, s.h * s.w, lt_in_node(m, nd, 0)->y, nd->y);
}
static int gap_bwd(lt_model *m, lt_node *nd, int N) {
    const lt_shape s = lt_in_node(m, nd, 0)->shape;
    float *dx = lt_in_dy(m, nd, 0);
    return dx ? lt_cuda_gap_backward(CX(m), LY(m), N, s.c, s.h * s.w, nd->dy, dx) : LT_OK;
}

/* ---- residual sum -------------------------------------------------------------------------- */
static int sum_fwd(lt_model *m, lt_node *nd, int N) {
    return lt_cuda_add_forward(CX(m), numel(nd, N), lt_in_node(m, nd, 0)->y, lt_in_node(m, nd, 1)->y, nd->y);
}
static int sum_bwd(lt_model *m, lt_node *nd, int N) {
    return lt_cuda_add_backward(CX(m), numel(nd, N), nd->dy, lt_in_dy(m, nd, 0), nd->dx_set[0], lt_in_dy(m, nd, 1),
                                nd->dx_set[1]);
}

/* The sum with the in-place ReLU after it: one kernel each way, in eval
 * mode too (nothing in the pair depends on it). */
static int sum_fwd_relu(lt_model *m, lt_node *nd, int N, int *fused) {
    *fused = 0;
    LT_TRY(lt_cuda_add_relu_forward(CX(m), numel(nd, N), lt_in_node(m, nd, 0)->y, lt_in_node(m, nd, 1)->y, nd->y));
    *fused = 1;
    return LT_OK;
}
static int sum_bwd_relu(lt_model *m, lt_node *nd, const lt_node *rn, int N) {
    return lt_cuda_add_relu_backward(CX(m), numel(nd, N), rn->y, rn->dy, lt_in_dy(m, nd, 0), nd->dx_set[0],
                                     lt_in_dy(m, nd, 1), nd->dx_set[1]);
}

/* ---- option-A shortcut ----------------------------------------------------------------------- */
static int sca_fwd(lt_model *m, lt_node *nd, int N) {
    const lt_sca_cfg *c = (const lt_sca_cfg *)nd->cfg;
    const lt_shape s = lt_in_node(m, nd, 0)->shape;
    return lt_cuda_shortcut_a_forward(CX(m), LY(m), N, s.c, s.h, s.w, c->co, c->stride, lt_in_node(m, nd, 0)->y, nd->y);
}
static int sca_bwd(lt_model *m, lt_node *nd, int N) {
    const lt_sca_cfg *c = (const lt_sca_cfg *)nd->cfg;
    const lt_shape s = lt_in_node(m, nd, 0)->shape;
    float *dx = lt_in_dy(m, nd, 0);
    return dx ? lt_cuda_shortcut_a_backward(CX(m), LY(m), N, s.c, s.h, s.w, c->co, c->stride, nd->dy, dx) : LT_OK;
}

/* ---- linear (cuBLAS) ------------------------------------------------------------------------------ */
static int lin_fwd(lt_model *m, lt_node *nd, int N) {
    const lt_lin_cfg *c = (const lt_lin_cfg *)nd->cfg;
    return lt_cuda_linear_forward(CX(m), N, lt_lin_in(m, nd), c->out, lt_in_node(m, nd, 0)->y, lt_pw(m, nd, 0),
                                  c->bias ? lt_pw(m, nd, 1) : NULL, nd->y);
}
static int lin_bwd(lt_model *m, lt_node *nd, int N) {
    const lt_lin_cfg *c = (const lt_lin_cfg *)nd->cfg;
    /* the CPU layer accumulates into dx (no LT_LAYER_SETS_DX): set_dx 0 */
    return lt_cuda_linear_backward(CX(m), N, lt_lin_in(m, nd), c->out, lt_in_node(m, nd, 0)->y, lt_pw(m, nd, 0),
                                   nd->dy, lt_in_dy(m, nd, 0), lt_pg(m, nd, 0), c->bias ? lt_pg(m, nd, 1) : NULL, 0);
}

/* ---- cosine (fixed scale): saved = xinv [batch] then winv [out] ---------------------------------------- */
static int cos_fwd(lt_model *m, lt_node *nd, int N) {
    const lt_lin_cfg *c = (const lt_lin_cfg *)nd->cfg;
    return lt_cuda_cosine_forward(CX(m), N, lt_lin_in(m, nd), c->out, lt_in_node(m, nd, 0)->y, lt_pw(m, nd, 0),
                                  c->scale, LT_COS_EPS, nd->y, nd->saved, nd->saved + m->batch);
}
static int cos_bwd(lt_model *m, lt_node *nd, int N) {
    const lt_lin_cfg *c = (const lt_lin_cfg *)nd->cfg;
    return lt_cuda_cosine_backward(CX(m), N, lt_lin_in(m, nd), c->out, lt_in_node(m, nd, 0)->y, lt_pw(m, nd, 0),
                                   c->scale, nd->saved, nd->saved + m->batch, nd->y, nd->dy, lt_in_dy(m, nd, 0),
                                   lt_pg(m, nd, 0));
}

/* ---- cosine with a learned scale: saved = [xinv | cos] per sample, winv fixed ---------------------------- */
static float *cosl_cos(lt_model *m, lt_node *nd) { return nd->saved + m->batch; }
static int cosl_fwd(lt_model *m, lt_node *nd, int N) {
    const lt_lin_cfg *c = (const lt_lin_cfg *)nd->cfg;
    float *cs = cosl_cos(m, nd);
    LT_TRY(lt_cuda_cosine_forward(CX(m), N, lt_lin_in(m, nd), c->out, lt_in_node(m, nd, 0)->y, lt_pw(m, nd, 0), 1.0f,
                                  LT_COS_EPS, cs, nd->saved, lt_node_saved_fixed(m, nd)));
    return lt_cuda_scale_by(CX(m), (size_t)N * c->out, c->scale, lt_pw(m, nd, 1), cs, nd->y);
}
static int cosl_bwd(lt_model *m, lt_node *nd, int N) {
    const lt_lin_cfg *c = (const lt_lin_cfg *)nd->cfg;
    float p = 0;   /* the kernel takes the scale on the host: one float back */
    LT_TRY(lt_cuda_d2h(CX(m), &p, lt_pw(m, nd, 1), sizeof p));
    const float s = c->scale * p;
    LT_TRY(lt_cuda_cosine_backward(CX(m), N, lt_lin_in(m, nd), c->out, lt_in_node(m, nd, 0)->y, lt_pw(m, nd, 0), s,
                                   nd->saved, lt_node_saved_fixed(m, nd), nd->y, nd->dy, lt_in_dy(m, nd, 0),
                                   lt_pg(m, nd, 0)));
    float *gs = lt_pg(m, nd, 1);
    return gs ? lt_cuda_dot_acc(CX(m), (size_t)N * c->out, nd->dy, cosl_cos(m, nd), c->scale, gs) : LT_OK;
}

/* ---- per-class scale (LWS) -------------------------------------------------------------------------------- */
static int scale_fwd(lt_model *m, lt_node *nd, int N) {
    return lt_cuda_chscale_forward(CX(m), N, lt_shape_count(nd->shape), lt_pw(m, nd, 0), lt_in_node(m, nd, 0)->y,
                                   nd->y);
}
static int scale_bwd(lt_model *m, lt_node *nd, int N) {
    return lt_cuda_chscale_backward(CX(m), N, lt_shape_count(nd->shape), lt_in_node(m, nd, 0)->y, lt_pw(m, nd, 0),
                                    nd->dy, lt_in_dy(m, nd, 0), lt_pg(m, nd, 0));
}

/* ---- CAM-weighted pooling: the class weight by name, as the CPU layer finds it ------------------- */
static int campool_args(lt_model *m, const lt_node *nd, int *K, int *HW, int *C, lt_param_info *w) {
    const lt_cam_pool_cfg *c = (const lt_cam_pool_cfg *)nd->cfg;
    const lt_shape s = lt_in_node(m, nd, 0)->shape;
    *K = s.c;
    *HW = s.h * s.w;
    LT_TRY(lt_model_param_find(m, c->weight, w));
    if (w->count == 0 || w->count % (size_t)*K)
        return lt_err(LT_EINVAL, "cam_pool %s: weight %s has %zu floats, not C x %d", nd->name, c->weight, w->count,
                      *K);
    *C = (int)(w->count / (size_t)*K);
    return LT_OK;
}
static int campool_fwd(lt_model *m, lt_node *nd, int N) {
    const lt_cam_pool_cfg *c = (const lt_cam_pool_cfg *)nd->cfg;
    int K, HW, C;
    lt_param_info w;
    LT_TRY(campool_args(m, nd, &K, &HW, &C, &w));
    const int32_t *cls = c->use_labels ? lt_model_labels(m, N) : NULL;
    if (c->use_labels && m->training && !cls)
        return lt_err(LT_EINVAL, "cam_pool %s: a training forward without the rows' labels (lt_model_set_labels)",
                      nd->name);
    return lt_cuda_cam_pool_forward(CX(m), LY(m), N, K, HW, C, lt_in_node(m, nd, 0)->y, w.w, cls, c->scale, c->gamma,
                                    nd->y, nd->saved);
}
static int campool_bwd(lt_model *m, lt_node *nd, int N) {
    const lt_cam_pool_cfg *c = (const lt_cam_pool_cfg *)nd->cfg;
    int K, HW, C;
    lt_param_info w;
    LT_TRY(campool_args(m, nd, &K, &HW, &C, &w));
    float *gw = (w.flags & LT_MASK_FROZEN) ? NULL : w.g;
    return lt_cuda_cam_pool_backward(CX(m), LY(m), N, K, HW, C, lt_in_node(m, nd, 0)->y, w.w, nd->saved, nd->dy,
                                     c->scale, c->gamma, c->stop_grad, lt_in_dy(m, nd, 0), gw);
}

/* Every built-in kind; LT_LK_PLUGIN stays empty (plugins bring their own).
 * nhwc: the layer passes the model's layout to its ops (LY) or is
 * elementwise; the heads (linear, cosine, scale) read rows as flat
 * vectors, so they run on 1x1 tensors only under NHWC. */
static const lt_dev_layer layers[LT_LK_COUNT] = {
    [LT_LK_INPUT] = {noop, noop, .nhwc = 1},
    [LT_LK_CONV] = {conv_fwd, conv_bwd, .nhwc = 1},
    [LT_LK_BN] = {bn_fwd, bn_bwd, bn_fwd_relu, bn_bwd_relu, .nhwc = 1},
    [LT_LK_RELU] = {relu_fwd, relu_bwd, .nhwc = 1},
    [LT_LK_MAXPOOL] = {maxpool_fwd, maxpool_bwd, .nhwc = 1},
    [LT_LK_GAP] = {gap_fwd, gap_bwd, .nhwc = 1},
    [LT_LK_SUM] = {sum_fwd, sum_bwd, sum_fwd_relu, sum_bwd_relu, .nhwc = 1},
    [LT_LK_SHORTCUT_A] = {sca_fwd, sca_bwd, .nhwc = 1},
    [LT_LK_LINEAR] = {lin_fwd, lin_bwd},
    [LT_LK_COSINE] = {cos_fwd, cos_bwd},
    [LT_LK_COSINE_LEARNED] = {cosl_fwd, cosl_bwd},
    [LT_LK_SCALE] = {scale_fwd, scale_bwd},
    [LT_LK_CAM_POOL] = {campool_fwd, campool_bwd, .nhwc = 1},
};

const void *lt_cuda_model_layers(void) { return layers; }
int lt_cuda_model_layer_count(void) { return LT_LK_COUNT; }

static const lt_dev_ops cuda_dev = {
    .alloc = lt_cuda_alloc,
    .free = lt_cuda_free,
    .memset0 = lt_cuda_memset0,
    .h2d = lt_cuda_h2d,
    .d2h = lt_cuda_d2h,
    .d2d = lt_cuda_d2d,
    .layout_convert = lt_cuda_layout_convert,
    .sync = lt_cuda_sync,
    .ctx_free = lt_cuda_free_ctx,
    .sgd_step = lt_cuda_sgd_step,
    .adam_step = lt_cuda_adam_step,
    .sgd_grouped = lt_cuda_sgd_step_grouped,
    .adam_grouped = lt_cuda_adam_step_grouped,
    .layers = layers,
    /* device info (issue 20, A) */
    .info = lt_cuda_get_info,
    /* host memory (issue 20, C) */
    .host_alloc = lt_cuda_host_alloc,
    .host_free = lt_cuda_host_free,
    /* training step (issue 20, B) */
    .upload_new = lt_cuda_upload_new,
    .upload_free = lt_cuda_upload_free,
    .upload = lt_cuda_upload,
    .ce_acc = lt_cuda_ce_acc,
    .sgd_dev_rates = lt_cuda_sgd_dev_rates,
    .adam_dev_rates = lt_cuda_adam_dev_rates,
    .graph_prepare = lt_cuda_graph_prepare,
    .ws_generation = lt_cuda_ws_generation,
    .graph_begin = lt_cuda_graph_begin,
    .graph_end = lt_cuda_graph_end,
    .graph_launch = lt_cuda_graph_launch,
    .graph_free = lt_cuda_graph_free,
    .join = lt_cuda_join,
};

/* Fills b's cuda part on a new context (b is zeroed by the caller). */
static int cuda_backend_fill(int device, lt_cuda_math math, int deterministic, lt_backend *b) {
    lt_cuda_ctx *ctx = NULL;
    int rc = lt_cuda_create(&ctx, device, math, deterministic);
    if (rc) return lt_err_wrap(rc, "CUDA backend cuda:%d", device);
    b->kind = LT_BACKEND_CUDA;
    b->device = device;
    snprintf(b->cuda_name, sizeof b->cuda_name, "cuda:%d", device);
    b->dev = &cuda_dev;
    b->ctx = ctx;
    b->math = math;
    b->deterministic = deterministic != 0;
    return LT_OK;
}

/* The strong definition, for programs linked with libltcuda.a (the engine's
 * weak one in lt_backend_dl.c loads the module instead). In the module it
 * is not exported (engine/cuda/module.map), so nothing there can call the
 * program's weak one by mistake. */
int lt_backend_cuda_create(int device, lt_cuda_math math, int deterministic, lt_backend **out) {
    if (!out) return lt_err(LT_EINVAL, "CUDA backend: NULL output");
    *out = NULL;
    lt_backend *b = calloc(1, sizeof *b);
    if (!b) return lt_err(LT_ENOMEM, "CUDA backend: out of memory");
    int rc = cuda_backend_fill(device, math, deterministic, b);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    return LT_OK;
}

/* The module's entry point (lt_cuda_module.h): the only symbol
 * build/libltcuda.so exports. */
int lt_cuda_module_entry(const lt_cuda_module_abi *abi, int device, lt_cuda_math math, int deterministic,
                         lt_backend *out) {
    if (!abi || !out) return lt_err(LT_EINVAL, "CUDA module: NULL argument");
    const lt_cuda_module_abi mine = lt_cuda_module_abi_here();
    /* the version first: a program of another ABI may pass a shorter struct */
    if (abi->version != mine.version)
        return lt_err(LT_ENOTBUILT, "stale CUDA module: built for ABI %u, the program has ABI %u: rebuild it with "
                      "`make cuda`", mine.version, abi->version);
    if (memcmp(abi, &mine, sizeof mine))
        return lt_err(LT_ENOTBUILT,
                      "stale CUDA module: built for ABI %u (struct sizes %u/%u/%u/%u/%u, %u layer kinds), the "
                      "program has ABI %u (%u/%u/%u/%u/%u, %u): rebuild it with `make cuda`",
                      mine.version, mine.backend_size, mine.dev_ops_size, mine.model_size, mine.node_size,
                      mine.dev_layer_size, mine.layer_kinds, abi->version, abi->backend_size, abi->dev_ops_size,
                      abi->model_size, abi->node_size, abi->dev_layer_size, abi->layer_kinds);
    return cuda_backend_fill(device, math, deterministic, out);
}
