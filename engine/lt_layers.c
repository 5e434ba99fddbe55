/* lt_layers.c — the built-in layer types: each is a plan/forward/backward
 * triple that binds a node's buffers to a kernel in lt_ops.h. The kernels do
 * the arithmetic; this file only routes pointers and decides which gradients
 * are needed (frozen parameters and inputs without trainable ancestors get
 * NULL, so their work is skipped). */
#include "lt_layers_impl.h"
#include "lt_model_impl.h"
#include "lt_loss.h"
#include "lt_ops.h"

#include <math.h>
#include <string.h>

/* the buffer routing helpers and the configurations are lt_layers_impl.h's
 * (the CUDA implementations share them) */
#define in_node lt_in_node
#define in_dy lt_in_dy
#define pw lt_pw
#define pg lt_pg
#define bf lt_bf
#define lin_in lt_lin_in
#define COS_EPS LT_COS_EPS
typedef lt_conv_cfg conv_cfg;
typedef lt_bn_cfg bn_cfg;
typedef lt_pool_cfg pool_cfg;
typedef lt_sca_cfg sca_cfg;
typedef lt_lin_cfg lin_cfg;

/* ---- conv2d ------------------------------------------------------------------ */

static int conv_plan(lt_model *m, lt_node *nd) {
    conv_cfg *c = (conv_cfg *)nd->cfg;
    lt_shape s = in_node(m, nd, 0)->shape;
    LT_TRY(lt_conv_geom_init(&c->g, s.c, s.h, s.w, c->g.co, c->g.kh, c->g.kw, c->g.stride, c->g.pad, c->g.groups));
    /* the model's backend picks the kernel path, here once for every later
     * call (scratch size, forward, backward) */
    lt_conv_geom_set_backend(&c->g, m->backend);
    nd->shape = (lt_shape){1, c->g.co, c->g.ho, c->g.wo};
    int fan_in = (c->g.ci / c->g.groups) * c->g.kh * c->g.kw;
    LT_TRY(lt_model_param_add(m, nd, "weight", lt_conv2d_weight_count(&c->g), fan_in, LT_INIT_KAIMING, 0));
    if (c->bias) LT_TRY(lt_model_param_add(m, nd, "bias", (size_t)c->g.co, fan_in, LT_INIT_UNIFORM_FANIN, 0));
    return LT_OK;
}
static int conv_fwd(lt_model *m, lt_node *nd, int N) {
    conv_cfg *c = (conv_cfg *)nd->cfg;
    lt_conv2d_forward(&c->g, N, in_node(m, nd, 0)->y, pw(m, nd, 0), c->bias ? pw(m, nd, 1) : NULL, nd->y, m->scratch);
    return LT_OK;
}
static int conv_bwd(lt_model *m, lt_node *nd, int N) {
    conv_cfg *c = (conv_cfg *)nd->cfg;
    lt_conv2d_backward_x(&c->g, N, in_node(m, nd, 0)->y, pw(m, nd, 0), nd->dy, in_dy(m, nd, 0), pg(m, nd, 0),
                         c->bias ? pg(m, nd, 1) : NULL, m->scratch, nd->dx_set[0]);
    return LT_OK;
}
static size_t conv_scratch(const lt_node *nd, int N) { return lt_conv2d_scratch_floats(&((const conv_cfg *)nd->cfg)->g, N); }
/* The conv stores through an epilogue (affine, residual add, ReLU) in
 * inference: lt_model's fusion of conv -> BN [-> add] [-> ReLU]. */
static int conv_fwd_ep(lt_model *m, lt_node *nd, int N, float *out, const lt_conv_epilogue *ep) {
    const conv_cfg *c = (const conv_cfg *)nd->cfg;
    lt_conv2d_forward_ep(&c->g, N, in_node(m, nd, 0)->y, pw(m, nd, 0), c->bias ? pw(m, nd, 1) : NULL, out,
                         m->scratch, ep);
    return LT_OK;
}
static double weight_macs(const lt_model *m, const lt_node *nd) {
    return nd->np > 0 ? (double)m->params[nd->p0].count : 0.0;   /* parameter 0 is the weight */
}
static double conv_macs(const lt_model *m, const lt_node *nd) {
    return weight_macs(m, nd) * nd->shape.h * nd->shape.w;
}
static const lt_layer_fusion conv_fusion = {.forward_epilogue = conv_fwd_ep};
static const lt_layer_ops conv_ops = {LT_LAYER_ABI, "conv2d", conv_plan, conv_fwd, conv_bwd, conv_scratch,
                                      LT_LAYER_SETS_DX, &conv_fusion, conv_macs, NULL, NULL};

int lt_add_conv(lt_model *m, const char *name, const char *group, int in, int co, int k, int stride,
                int pad, int groups, int bias) {
    conv_cfg c;
    memset(&c, 0, sizeof c);
    c.g.co = co; c.g.kh = k; c.g.kw = k; c.g.stride = stride; c.g.pad = pad; c.g.groups = groups;
    c.bias = bias;
    return lt_model_add(m, &conv_ops, name, group, in, -1, &c, sizeof c);
}

/* ---- batch norm ----------------------------------------------------------------- */

static int bn_plan(lt_model *m, lt_node *nd) {
    nd->shape = in_node(m, nd, 0)->shape;
    size_t C = (size_t)nd->shape.c;
    LT_TRY(lt_model_param_add(m, nd, "weight", C, 0, LT_INIT_ONE, 0));
    LT_TRY(lt_model_param_add(m, nd, "bias", C, 0, LT_INIT_ZERO, 0));
    LT_TRY(lt_model_buffer_add(m, nd, "running_mean", C, 0.0f));
    LT_TRY(lt_model_buffer_add(m, nd, "running_var", C, 1.0f));
    nd->saved_fixed = 2 * C; /* batch mean and rstd of the last train-mode forward */
    return LT_OK;
}
static int bn_train_mode(const lt_model *m, const lt_node *nd) { return m->training && !nd->eval_mode; }
static int bn_fwd(lt_model *m, lt_node *nd, int N) {
    bn_cfg *c = (bn_cfg *)nd->cfg;
    int C = nd->shape.c, HW = nd->shape.h * nd->shape.w;
    if (bn_train_mode(m, nd))
        lt_bn_forward_train(N, C, HW, in_node(m, nd, 0)->y, pw(m, nd, 0), pw(m, nd, 1), nd->y, nd->saved,
                            nd->saved + C, bf(m, nd, 0), bf(m, nd, 1), c->momentum, c->eps);
    else
        lt_bn_forward_eval(N, C, HW, in_node(m, nd, 0)->y, pw(m, nd, 0), pw(m, nd, 1), bf(m, nd, 0), bf(m, nd, 1),
                           c->eps, nd->y);
    return LT_OK;
}
static int bn_bwd(lt_model *m, lt_node *nd, int N) {
    bn_cfg *c = (bn_cfg *)nd->cfg;
    int C = nd->shape.c, HW = nd->shape.h * nd->shape.w;
    if (bn_train_mode(m, nd))
        lt_bn_backward_train_x(N, C, HW, in_node(m, nd, 0)->y, pw(m, nd, 0), nd->saved, nd->saved + C, nd->dy,
                               in_dy(m, nd, 0), pg(m, nd, 0), pg(m, nd, 1), nd->dx_set[0]);
    else
        lt_bn_backward_eval_x(N, C, HW, in_node(m, nd, 0)->y, pw(m, nd, 0), bf(m, nd, 0), bf(m, nd, 1), c->eps,
                              nd->dy, in_dy(m, nd, 0), pg(m, nd, 0), pg(m, nd, 1), nd->dx_set[0]);
    return LT_OK;
}
/* Eval-mode BN as an affine for a producer's epilogue. */
static int bn_eval_affine(lt_model *m, const lt_node *nd, float *mu, float *a, float *b) {
    const bn_cfg *c = (const bn_cfg *)nd->cfg;
    lt_bn_eval_coeffs(nd->shape.c, pw(m, nd, 0), pw(m, nd, 1), bf(m, nd, 0), bf(m, nd, 1), c->eps, mu, a, b);
    return LT_OK;
}
/* Training: BN -> the in-place ReLU reading it, as one pass each way. */
static int bn_fwd_relu(lt_model *m, lt_node *nd, int N) {
    if (!bn_train_mode(m, nd)) return 0;   /* eval-mode BN: the pair runs unfused */
    bn_cfg *c = (bn_cfg *)nd->cfg;
    int C = nd->shape.c, HW = nd->shape.h * nd->shape.w;
    lt_bn_forward_train_relu(N, C, HW, in_node(m, nd, 0)->y, pw(m, nd, 0), pw(m, nd, 1), nd->y, nd->saved,
                             nd->saved + C, bf(m, nd, 0), bf(m, nd, 1), c->momentum, c->eps, 1);
    return 1;
}
static int bn_bwd_relu(lt_model *m, lt_node *nd, const lt_node *rn, int N) {
    int C = nd->shape.c, HW = nd->shape.h * nd->shape.w;
    lt_bn_backward_train_relu(N, C, HW, in_node(m, nd, 0)->y, pw(m, nd, 0), nd->saved, nd->saved + C, rn->dy,
                              rn->y, in_dy(m, nd, 0), pg(m, nd, 0), pg(m, nd, 1), nd->dx_set[0]);
    return LT_OK;
}
static const lt_layer_fusion bn_fusion = {.eval_affine = bn_eval_affine, .forward_relu = bn_fwd_relu,
                                          .backward_relu = bn_bwd_relu};
static const lt_layer_ops bn_ops = {LT_LAYER_ABI, "bn", bn_plan, bn_fwd, bn_bwd, NULL,
                                    LT_LAYER_SETS_DX | LT_LAYER_BWD_NO_Y, &bn_fusion, NULL, NULL, NULL};

int lt_add_bn(lt_model *m, const char *name, const char *group, int in) {
    bn_cfg c = {1e-5f, 0.1f};
    return lt_model_add(m, &bn_ops, name, group, in, -1, &c, sizeof c);
}

/* ---- relu ----------------------------------------------------------------------- */
static int same_plan(lt_model *m, lt_node *nd) { nd->shape = in_node(m, nd, 0)->shape; return LT_OK; }
static size_t numel(const lt_node *nd, int N) { return (size_t)N * lt_shape_count(nd->shape); }
static int relu_fwd(lt_model *m, lt_node *nd, int N) { lt_relu_forward(numel(nd, N), in_node(m, nd, 0)->y, nd->y); return LT_OK; }
static int relu_bwd(lt_model *m, lt_node *nd, int N) {
    float *dx = in_dy(m, nd, 0);
    if (dx) lt_relu_backward_x(numel(nd, N), nd->y, nd->dy, dx, nd->dx_set[0]);
    return LT_OK;
}
static const lt_layer_ops relu_ops = {LT_LAYER_ABI, "relu", same_plan, relu_fwd, relu_bwd, NULL,
                                      LT_LAYER_SETS_DX | LT_LAYER_IN_PLACE | LT_LAYER_EPI_RELU, NULL, NULL, NULL, NULL};
int lt_add_relu(lt_model *m, const char *name, const char *group, int in) {
    return lt_model_add(m, &relu_ops, name, group, in, -1, NULL, 0);
}

/* ---- max pool ------------------------------------------------------------------- */
static int maxpool_plan(lt_model *m, lt_node *nd) {
    pool_cfg *c = (pool_cfg *)nd->cfg;
    lt_shape s = in_node(m, nd, 0)->shape;
    if (c->k <= 0 || c->s <= 0 || c->p < 0 || 2 * c->p > c->k)
        return lt_err(LT_EINVAL, "maxpool: bad kernel %d stride %d pad %d", c->k, c->s, c->p);
    nd->shape = (lt_shape){1, s.c, (s.h + 2 * c->p - c->k) / c->s + 1, (s.w + 2 * c->p - c->k) / c->s + 1};
    nd->saved_per_sample = lt_shape_count(nd->shape); /* int32 argmax per output */
    return LT_OK;
}
static int maxpool_fwd(lt_model *m, lt_node *nd, int N) {
    pool_cfg *c = (pool_cfg *)nd->cfg;
    lt_shape s = in_node(m, nd, 0)->shape;
    lt_maxpool_forward(N, s.c, s.h, s.w, c->k, c->s, c->p, in_node(m, nd, 0)->y, nd->y, (int32_t *)nd->saved);
    return LT_OK;
}
static int maxpool_bwd(lt_model *m, lt_node *nd, int N) {
    pool_cfg *c = (pool_cfg *)nd->cfg;
    lt_shape s = in_node(m, nd, 0)->shape;
    float *dx = in_dy(m, nd, 0);
    if (dx) lt_maxpool_backward(N, s.c, s.h, s.w, c->k, c->s, c->p, (const int32_t *)nd->saved, nd->dy, dx);
    return LT_OK;
}
static const lt_layer_ops maxpool_ops = {LT_LAYER_ABI, "maxpool", maxpool_plan, maxpool_fwd, maxpool_bwd, NULL, 0,
                                         NULL, NULL, NULL, NULL};
int lt_add_maxpool(lt_model *m, const char *name, const char *group, int in, int k, int stride, int pad) {
    pool_cfg c = {k, stride, pad};
    return lt_model_add(m, &maxpool_ops, name, group, in, -1, &c, sizeof c);
}

/* ---- global average pool -> [N, C, 1, 1] ------------------------------------------ */
static int gap_plan(lt_model *m, lt_node *nd) {
    lt_shape s = in_node(m, nd, 0)->shape;
    nd->shape = (lt_shape){1, s.c, 1, 1};
    return LT_OK;
}
static int gap_fwd(lt_model *m, lt_node *nd, int N) {
    lt_shape s = in_node(m, nd, 0)->shape;
    lt_gap_forward(N, s.c, s.h * s.w, in_node(m, nd, 0)->y, nd->y);
    return LT_OK;
}
static int gap_bwd(lt_model *m, lt_node *nd, int N) {
    lt_shape s = in_node(m, nd, 0)->shape;
    float *dx = in_dy(m, nd, 0);
    if (dx) lt_gap_backward(N, s.c, s.h * s.w, nd->dy, dx);
    return LT_OK;
}
static const lt_layer_ops gap_ops = {LT_LAYER_ABI, "gap", gap_plan, gap_fwd, gap_bwd, NULL, 0, NULL, NULL, NULL, NULL};
int lt_add_gap(lt_model *m, const char *name, const char *group, int in) {
    return lt_model_add(m, &gap_ops, name, group, in, -1, NULL, 0);
}

/* ---- residual sum ------------------------------------------------------------------ */
static int sum_plan(lt_model *m, lt_node *nd) {
    lt_shape a = in_node(m, nd, 0)->shape, b = in_node(m, nd, 1)->shape;
    if (a.c != b.c || a.h != b.h || a.w != b.w)
        return lt_err(LT_ESHAPE, "sum: inputs %dx%dx%d and %dx%dx%d differ", a.c, a.h, a.w, b.c, b.h, b.w);
    nd->shape = a;
    return LT_OK;
}
static int sum_fwd(lt_model *m, lt_node *nd, int N) {
    lt_add_forward(numel(nd, N), in_node(m, nd, 0)->y, in_node(m, nd, 1)->y, nd->y);
    return LT_OK;
}
static int sum_bwd(lt_model *m, lt_node *nd, int N) {
    lt_add_backward_x(numel(nd, N), nd->dy, in_dy(m, nd, 0), nd->dx_set[0], in_dy(m, nd, 1), nd->dx_set[1]);
    return LT_OK;
}
static const lt_layer_ops sum_ops = {LT_LAYER_ABI, "sum", sum_plan, sum_fwd, sum_bwd, NULL,
                                     LT_LAYER_SETS_DX | LT_LAYER_BWD_NO_Y | LT_LAYER_EPI_ADD, NULL, NULL, NULL, NULL};
int lt_add_sum(lt_model *m, const char *name, const char *group, int a, int b) {
    return lt_model_add(m, &sum_ops, name, group, a, b, NULL, 0);
}

/* ---- option-A shortcut ---------------------------------------------------------------- */
static int sca_plan(lt_model *m, lt_node *nd) {
    sca_cfg *c = (sca_cfg *)nd->cfg;
    lt_shape s = in_node(m, nd, 0)->shape;
    if (c->co < s.c || (c->co - s.c) % 2 || c->stride < 1)
        return lt_err(LT_ESHAPE, "shortcut A: cannot map %d to %d channels with stride %d", s.c, c->co, c->stride);
    nd->shape = (lt_shape){1, c->co, (s.h + c->stride - 1) / c->stride, (s.w + c->stride - 1) / c->stride};
    return LT_OK;
}
static int sca_fwd(lt_model *m, lt_node *nd, int N) {
    sca_cfg *c = (sca_cfg *)nd->cfg;
    lt_shape s = in_node(m, nd, 0)->shape;
    lt_shortcut_a_forward(N, s.c, s.h, s.w, c->co, c->stride, in_node(m, nd, 0)->y, nd->y);
    return LT_OK;
}
static int sca_bwd(lt_model *m, lt_node *nd, int N) {
    sca_cfg *c = (sca_cfg *)nd->cfg;
    lt_shape s = in_node(m, nd, 0)->shape;
    float *dx = in_dy(m, nd, 0);
    if (dx) lt_shortcut_a_backward(N, s.c, s.h, s.w, c->co, c->stride, nd->dy, dx);
    return LT_OK;
}
/* In a fused inference forward only the data channels are written (the
 * epilogue adds only those; the zero channels are never read). */
static int sca_fwd_data(lt_model *m, lt_node *nd, int N, int *c0, int *c1) {
    const sca_cfg *c = (const sca_cfg *)nd->cfg;
    const lt_shape s = in_node(m, nd, 0)->shape;
    lt_shortcut_a_forward_data(N, s.c, s.h, s.w, c->co, c->stride, in_node(m, nd, 0)->y, nd->y);
    *c0 = (c->co - s.c) / 2;
    *c1 = *c0 + s.c;
    return LT_OK;
}
static const lt_layer_fusion sca_fusion = {.forward_data = sca_fwd_data};
static const lt_layer_ops sca_ops = {LT_LAYER_ABI, "shortcut_a", sca_plan, sca_fwd, sca_bwd, NULL, 0, &sca_fusion,
                                     NULL, NULL, NULL};
int lt_add_shortcut_a(lt_model *m, const char *name, const char *group, int in, int co, int stride) {
    sca_cfg c = {co, stride};
    return lt_model_add(m, &sca_ops, name, group, in, -1, &c, sizeof c);
}

/* ---- linear ------------------------------------------------------------------------------ */
static int lin_plan(lt_model *m, lt_node *nd) {
    lin_cfg *c = (lin_cfg *)nd->cfg;
    int in = lin_in(m, nd);
    if (c->out <= 0) return lt_err(LT_EINVAL, "linear: %d outputs", c->out);
    nd->shape = (lt_shape){1, c->out, 1, 1};
    LT_TRY(lt_model_param_add(m, nd, "weight", (size_t)c->out * in, in, LT_INIT_KAIMING, 0));
    if (c->bias) LT_TRY(lt_model_param_add(m, nd, "bias", (size_t)c->out, in, LT_INIT_UNIFORM_FANIN, 0));
    return LT_OK;
}
static int lin_fwd(lt_model *m, lt_node *nd, int N) {
    lin_cfg *c = (lin_cfg *)nd->cfg;
    lt_linear_forward(N, lin_in(m, nd), c->out, in_node(m, nd, 0)->y, pw(m, nd, 0), c->bias ? pw(m, nd, 1) : NULL, nd->y);
    return LT_OK;
}
static int lin_bwd(lt_model *m, lt_node *nd, int N) {
    lin_cfg *c = (lin_cfg *)nd->cfg;
    lt_linear_backward(N, lin_in(m, nd), c->out, in_node(m, nd, 0)->y, pw(m, nd, 0), nd->dy, in_dy(m, nd, 0),
                       pg(m, nd, 0), c->bias ? pg(m, nd, 1) : NULL);
    return LT_OK;
}
static const lt_layer_ops lin_ops = {LT_LAYER_ABI, "linear", lin_plan, lin_fwd, lin_bwd, NULL, 0, NULL, weight_macs, NULL, NULL};
int lt_add_linear(lt_model *m, const char *name, const char *group, int in, int out, int bias) {
    lin_cfg c = {out, bias, 1.0f};
    return lt_model_add(m, &lin_ops, name, group, in, -1, &c, sizeof c);
}

/* ---- cosine linear ------------------------------------------------------------------------- */
static int cos_plan(lt_model *m, lt_node *nd) {
    lin_cfg *c = (lin_cfg *)nd->cfg;
    int in = lin_in(m, nd);
    if (c->out <= 0) return lt_err(LT_EINVAL, "cosine: %d outputs", c->out);
    nd->shape = (lt_shape){1, c->out, 1, 1};
    LT_TRY(lt_model_param_add(m, nd, "weight", (size_t)c->out * in, in, LT_INIT_KAIMING, 0));
    nd->saved_per_sample = 1;        /* 1/|x_i| */
    nd->saved_fixed = (size_t)c->out; /* 1/|w_j| */
    return LT_OK;
}
static int cos_fwd(lt_model *m, lt_node *nd, int N) {
    lin_cfg *c = (lin_cfg *)nd->cfg;
    lt_cosine_forward(N, lin_in(m, nd), c->out, in_node(m, nd, 0)->y, pw(m, nd, 0), c->scale, COS_EPS, nd->y,
                      nd->saved, nd->saved + m->batch);
    return LT_OK;
}
static int cos_bwd(lt_model *m, lt_node *nd, int N) {
    lin_cfg *c = (lin_cfg *)nd->cfg;
    lt_cosine_backward(N, lin_in(m, nd), c->out, in_node(m, nd, 0)->y, pw(m, nd, 0), c->scale, nd->saved,
                       nd->saved + m->batch, nd->y, nd->dy, in_dy(m, nd, 0), pg(m, nd, 0));
    return LT_OK;
}
static const lt_layer_ops cos_ops = {LT_LAYER_ABI, "cosine", cos_plan, cos_fwd, cos_bwd, NULL, 0, NULL, weight_macs, NULL, NULL};
int lt_add_cosine(lt_model *m, const char *name, const char *group, int in, int out, float scale) {
    lin_cfg c = {out, 0, scale};
    return lt_model_add(m, &cos_ops, name, group, in, -1, &c, sizeof c);
}

/* ---- cosine linear with a learned scale ------------------------------------------------------
 * y = (scale_init * p) * cos: the kernel runs at scale 1 and leaves the
 * cosines (saved per sample, the scale's gradient sum_ij dy_ij cos_ij needs
 * them even when s is 0), then y is scaled. Saved: [xinv | cos] per sample,
 * winv fixed. */
static int cosl_plan(lt_model *m, lt_node *nd) {
    lin_cfg *c = (lin_cfg *)nd->cfg;
    int in = lin_in(m, nd);
    if (c->out <= 0) return lt_err(LT_EINVAL, "cosine: %d outputs", c->out);
    nd->shape = (lt_shape){1, c->out, 1, 1};
    LT_TRY(lt_model_param_add(m, nd, "weight", (size_t)c->out * in, in, LT_INIT_KAIMING, 0));
    LT_TRY(lt_model_param_add(m, nd, "scale", 1, 0, LT_INIT_ONE, LT_MASK_NO_DECAY));
    nd->saved_per_sample = 1 + (size_t)c->out;
    nd->saved_fixed = (size_t)c->out;
    return LT_OK;
}
static float *cosl_cos(lt_model *m, lt_node *nd) { return nd->saved + m->batch; }
static int cosl_fwd(lt_model *m, lt_node *nd, int N) {
    lin_cfg *c = (lin_cfg *)nd->cfg;
    float *cs = cosl_cos(m, nd);
    lt_cosine_forward(N, lin_in(m, nd), c->out, in_node(m, nd, 0)->y, pw(m, nd, 0), 1.0f, COS_EPS, cs,
                      nd->saved, lt_node_saved_fixed(m, nd));
    const float s = c->scale * pw(m, nd, 1)[0];
    for (size_t k = 0; k < (size_t)N * c->out; k++) nd->y[k] = s * cs[k];
    return LT_OK;
}
static int cosl_bwd(lt_model *m, lt_node *nd, int N) {
    lin_cfg *c = (lin_cfg *)nd->cfg;
    const float s = c->scale * pw(m, nd, 1)[0];
    lt_cosine_backward(N, lin_in(m, nd), c->out, in_node(m, nd, 0)->y, pw(m, nd, 0), s, nd->saved,
                       lt_node_saved_fixed(m, nd), nd->y, nd->dy, in_dy(m, nd, 0), pg(m, nd, 0));
    float *gs = pg(m, nd, 1);
    if (gs) {
        const float *cs = cosl_cos(m, nd);
        double acc = 0;   /* fixed order: one serial sum */
        for (size_t k = 0; k < (size_t)N * c->out; k++) acc += (double)nd->dy[k] * cs[k];
        gs[0] += (float)(acc * c->scale);
    }
    return LT_OK;
}
static const lt_layer_ops cosl_ops = {LT_LAYER_ABI, "cosine_learned", cosl_plan, cosl_fwd, cosl_bwd, NULL, 0, NULL,
                                      weight_macs, NULL, NULL};
int lt_add_cosine_learned(lt_model *m, const char *name, const char *group, int in, int out, float scale_init) {
    if (!isfinite(scale_init)) return -lt_err(LT_EINVAL, "cosine %s: scale %g", name, (double)scale_init);
    lin_cfg c = {out, 0, scale_init};
    return lt_model_add(m, &cosl_ops, name, group, in, -1, &c, sizeof c);
}

/* ---- per-class scale (LWS): y_ij = s_j x_ij ---------------------------------------------------- */
static int scale_plan(lt_model *m, lt_node *nd) {
    nd->shape = in_node(m, nd, 0)->shape;
    size_t C = lt_shape_count(nd->shape);
    LT_TRY(lt_model_param_add(m, nd, "scale", C, 0, LT_INIT_ONE, LT_MASK_NO_DECAY));
    return LT_OK;
}
static int scale_fwd(lt_model *m, lt_node *nd, int N) {
    size_t C = lt_shape_count(nd->shape);
    const float *x = in_node(m, nd, 0)->y, *s = pw(m, nd, 0);
    for (int i = 0; i < N; i++)
        for (size_t j = 0; j < C; j++) nd->y[i * C + j] = s[j] * x[i * C + j];
    return LT_OK;
}
static int scale_bwd(lt_model *m, lt_node *nd, int N) {
    size_t C = lt_shape_count(nd->shape);
    const float *x = in_node(m, nd, 0)->y, *s = pw(m, nd, 0);
    float *dx = in_dy(m, nd, 0), *ds = pg(m, nd, 0);
    for (size_t j = 0; j < C; j++) {
        double acc = 0;
        for (int i = 0; i < N; i++) {
            float dy = nd->dy[i * C + j];
            acc += (double)dy * x[i * C + j];
            if (dx) dx[i * C + j] += dy * s[j];
        }
        if (ds) ds[j] += (float)acc;
    }
    return LT_OK;
}
static const lt_layer_ops scale_ops = {LT_LAYER_ABI, "scale", scale_plan, scale_fwd, scale_bwd, NULL, 0, NULL, NULL, NULL, NULL};
int lt_add_scale(lt_model *m, const char *name, const char *group, int in) {
    return lt_model_add(m, &scale_ops, name, group, in, -1, NULL, 0);
}

/* ---- parameter tensor shapes (for export) ------------------------------------------
 * Only the layer that declared a parameter knows its tensor shape; the flat
 * buffers do not. Conv weights are [co, ci/groups, kh, kw] and linear /
 * cosine weights [out, in], PyTorch's layouts (the engine stores them in
 * that row-major order); everything else, plugin layers' parameters
 * included, is one-dimensional. */
int lt_model_param_shape(const lt_model *m, int i, int64_t dims[4], int *ndim) {
    if (i < 0 || i >= m->n_params) return lt_err(LT_EINVAL, "parameter %d of %d", i, m->n_params);
    const lt_param *p = &m->params[i];
    const lt_node *nd = &m->nodes[p->node];
    const int first = p->node >= 0 && i == nd->p0;   /* "weight" is each built-in layer's first */
    if (first && nd->ops == &conv_ops) {
        const conv_cfg *c = (const conv_cfg *)nd->cfg;
        dims[0] = c->g.co; dims[1] = c->g.ci / c->g.groups; dims[2] = c->g.kh; dims[3] = c->g.kw;
        *ndim = 4;
    } else if (first && (nd->ops == &lin_ops || nd->ops == &cos_ops || nd->ops == &cosl_ops)) {
        const lin_cfg *c = (const lin_cfg *)nd->cfg;
        dims[0] = c->out; dims[1] = (int64_t)(p->count / (size_t)c->out);
        *ndim = 2;
    } else {
        dims[0] = (int64_t)p->count;
        *ndim = 1;
    }
    return LT_OK;
}

/* ---- built-in kinds (lt_layers_impl.h) ---------------------------------------------
 * By table address: a plugin that copies a built-in's members is a plugin. */
lt_layer_kind lt_layer_kind_of(const lt_layer_ops *ops) {
    if (ops == &conv_ops) return LT_LK_CONV;
    if (ops == &bn_ops) return LT_LK_BN;
    if (ops == &relu_ops) return LT_LK_RELU;
    if (ops == &maxpool_ops) return LT_LK_MAXPOOL;
    if (ops == &gap_ops) return LT_LK_GAP;
    if (ops == &sum_ops) return LT_LK_SUM;
    if (ops == &sca_ops) return LT_LK_SHORTCUT_A;
    if (ops == &lin_ops) return LT_LK_LINEAR;
    if (ops == &cos_ops) return LT_LK_COSINE;
    if (ops == &cosl_ops) return LT_LK_COSINE_LEARNED;
    if (ops == &scale_ops) return LT_LK_SCALE;
    if (ops == &lt_cam_pool_ops) return LT_LK_CAM_POOL;
    return LT_LK_PLUGIN;
}

const char *lt_layer_kind_name(int kind) {
    static const char *const names[LT_LK_COUNT] = {"plugin", "input", "conv2d", "bn", "relu", "maxpool", "gap",
                                                   "sum", "shortcut_a", "linear", "cosine", "cosine_learned",
                                                   "scale", "cam_pool"};
    return kind >= 0 && kind < LT_LK_COUNT ? names[kind] : "?";
}
