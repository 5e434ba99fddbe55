/* lt_campool.c — CAM-weighted pooling, the layer of the CAMC reconstruction
 * (specs/methods-a.md §4; no paper text or code was available, so the form
 * is the spec's stated reconstruction):
 *
 *   u_p   = F[:, p]                      (feature at location p of H x W)
 *   M_p   = cos(w_c, u_p)                (the class-c CAM of a cosine classifier)
 *   A     = softmax_p(scale * M_p)       (spatial attention; scale * M_p is the
 *                                          class-c logit the classifier would give
 *                                          location p alone)
 *   f     = GAP(F) + gamma * sum_p A_p u_p
 *
 * w_c is row c of a [C x K] parameter found by name (the cosine classifier
 * that reads f). The class: in a training forward of a use_labels layer
 * the row's label (lt_model_labels: the batch's labels, which the runner
 * and lt_step hand the model before each training forward, on every
 * backend); otherwise the top-1 class of cos(w_j, GAP(F_i)). That is the
 * prediction of a first pass with uniform attention (A_p = 1/HW gives f =
 * (1 + gamma) GAP(F), and a cosine classifier ignores the norm of f), so
 * one forward does what a two-pass test would. A built-in kind
 * (LT_LK_CAM_POOL): engine/cuda/lt_cuda_campool.cu is its device
 * implementation, these loops' arithmetic in the same order.
 *
 * Backward: into F through all three paths (GAP, the attention-weighted
 * sum, and A itself), and into w_c through A, unless stop_grad (A is then
 * a constant: only GAP and the weighted sum pass a gradient, nothing
 * reaches w). The weight belongs to a later node; its gradient is
 * accumulated here after that node's backward has run (backward goes in
 * reverse node order), before the optimizer step. Serial over samples: the
 * weight gradient is one shared accumulation, and at K x HW x N of a ResNet
 * head the layer is a small fraction of a step. */
#include <math.h>
#include <string.h>

#include "lt_kit.h"
#include "lt_layers_impl.h"
#include "lt_loss.h"

#define CP_EPS LT_CAM_POOL_EPS
typedef lt_cam_pool_cfg cp_cfg;

static int cp_dims(const lt_model *m, const lt_node *nd, int *K, int *HW) {
    lt_shape s = lt_node_in_shape(m, nd, 0);
    *K = s.c;
    *HW = s.h * s.w;
    return LT_OK;
}

static int cp_weight(lt_model *m, const lt_node *nd, int K, lt_param_info *w, int *C) {
    const cp_cfg *c = lt_node_cfg_const(nd);
    LT_TRY(lt_model_param_find(m, c->weight, w));
    if (w->count == 0 || w->count % (size_t)K)
        return lt_err(LT_EINVAL, "cam_pool %s: weight %s has %zu floats, not C x %d", lt_node_name(nd), c->weight,
                      w->count, K);
    *C = (int)(w->count / (size_t)K);
    return LT_OK;
}

static int cp_plan(lt_model *m, lt_node *nd) {
    int K, HW;
    cp_dims(m, nd, &K, &HW);
    if (K < 1 || HW < 1) return lt_err(LT_EINVAL, "cam_pool %s: input has no feature map", lt_node_name(nd));
    lt_node_set_shape(nd, (lt_shape){1, K, 1, 1});
    lt_node_set_saved(nd, (size_t)HW + 1, 0);   /* A [HW], then the class as a float */
    return LT_OK;
}

/* K floats: d what, the gradient of the normalised class weight */
static size_t cp_scratch(const lt_node *nd, int N) {
    (void)N;
    return (size_t)lt_node_shape(nd).c;
}

/* |v| floored at eps, as the cosine layer does */
static float cp_norm(const float *v, int n, size_t stride) {
    double s = 0;
    for (int k = 0; k < n; k++) s += (double)v[k * stride] * v[k * stride];
    float r = (float)sqrt(s);
    return r > CP_EPS ? r : CP_EPS;
}

static int cp_fwd(lt_model *m, lt_node *nd, int N) {
    const cp_cfg *c = lt_node_cfg_const(nd);
    int K, HW, C;
    cp_dims(m, nd, &K, &HW);
    lt_param_info w;
    LT_TRY(cp_weight(m, nd, K, &w, &C));
    const float *X = lt_node_x(m, nd, 0);
    float *Y = lt_node_y(nd), *S = lt_node_saved(nd);
    const int32_t *cls = c->use_labels ? lt_model_labels(m, N) : NULL;
    if (c->use_labels && lt_model_training(m) && !cls)
        return lt_err(LT_EINVAL, "cam_pool %s: a training forward without the rows' labels (lt_model_set_labels)",
                      lt_node_name(nd));
    for (int i = 0; i < N; i++) {
        const float *F = X + (size_t)i * K * HW;
        float *f = Y + (size_t)i * K, *A = S + (size_t)i * (HW + 1);
        for (int k = 0; k < K; k++) {
            double s = 0;
            for (int p = 0; p < HW; p++) s += F[(size_t)k * HW + p];
            f[k] = (float)(s / HW);
        }
        int cl = cls ? cls[i] : -1;
        if (cls && (cl < 0 || cl >= C))
            return lt_err(LT_EINVAL, "cam_pool %s: label %d of row %d is not a class (0..%d)", lt_node_name(nd), cl, i,
                          C - 1);
        if (cl < 0) {   /* top-1 of the cosine scores of GAP(F): ties to the lowest class; all NaN: 0 */
            const float nf = cp_norm(f, K, 1);
            double best = -INFINITY;
            for (int j = 0; j < C; j++) {
                const float *wj = w.w + (size_t)j * K;
                double d = 0;
                for (int k = 0; k < K; k++) d += (double)wj[k] * f[k];
                d /= (double)cp_norm(wj, K, 1) * nf;
                if (d > best) {
                    best = d;
                    cl = j;
                }
            }
            if (cl < 0) cl = 0;
        }
        const float *wc = w.w + (size_t)cl * K;
        const float nw = cp_norm(wc, K, 1);
        double mx = -INFINITY;
        for (int p = 0; p < HW; p++) {
            double d = 0;
            for (int k = 0; k < K; k++) d += (double)wc[k] * F[(size_t)k * HW + p];
            const float M = (float)(d / ((double)nw * cp_norm(F + p, K, (size_t)HW)));
            A[p] = c->scale * M;
            if (A[p] > mx) mx = A[p];
        }
        double z = 0;
        for (int p = 0; p < HW; p++) {
            A[p] = (float)exp(A[p] - mx);
            z += A[p];
        }
        for (int p = 0; p < HW; p++) A[p] = (float)(A[p] / z);
        A[HW] = (float)cl;
        for (int k = 0; k < K; k++) {
            double s = 0;
            for (int p = 0; p < HW; p++) s += (double)A[p] * F[(size_t)k * HW + p];
            f[k] += c->gamma * (float)s;
        }
    }
    return LT_OK;
}

static int cp_bwd(lt_model *m, lt_node *nd, int N) {
    const cp_cfg *c = lt_node_cfg_const(nd);
    int K, HW, C;
    cp_dims(m, nd, &K, &HW);
    lt_param_info w;
    LT_TRY(cp_weight(m, nd, K, &w, &C));
    const float *X = lt_node_x(m, nd, 0), *DY = lt_node_dy(nd), *S = lt_node_saved(nd);
    float *DX = lt_node_dx(m, nd, 0);
    float *gw = (w.flags & LT_MASK_FROZEN) || c->stop_grad ? NULL : w.g;
    if (!DX && !gw) return LT_OK;
    for (int i = 0; i < N; i++) {
        const float *F = X + (size_t)i * K * HW, *df = DY + (size_t)i * K, *A = S + (size_t)i * (HW + 1);
        float *dF = DX ? DX + (size_t)i * K * HW : NULL;
        const int cl = (int)A[HW];
        /* GAP and the attention-weighted sum, A held constant */
        if (dF)
            for (int k = 0; k < K; k++)
                for (int p = 0; p < HW; p++) dF[(size_t)k * HW + p] += df[k] / HW + c->gamma * A[p] * df[k];
        if (c->stop_grad || c->gamma == 0.0f) continue;
        /* through A: dA_p = gamma df . u_p; dz_p = A_p (dA_p - sum_q A_q dA_q);
         * dM_p = scale dz_p; M_p = what . u_p / |u_p| with what = w_c / |w_c| */
        double dot = 0;
        for (int p = 0; p < HW; p++) {
            double g = 0;
            for (int k = 0; k < K; k++) g += (double)df[k] * F[(size_t)k * HW + p];
            dot += A[p] * c->gamma * g;
        }
        const float *wc = w.w + (size_t)cl * K;
        const float nw = cp_norm(wc, K, 1);
        float *dwh = lt_model_scratch(m);
        memset(dwh, 0, (size_t)K * sizeof *dwh);
        for (int p = 0; p < HW; p++) {
            double g = 0, d = 0;
            for (int k = 0; k < K; k++) {
                g += (double)df[k] * F[(size_t)k * HW + p];
                d += (double)wc[k] * F[(size_t)k * HW + p];
            }
            const double dM = c->scale * A[p] * (c->gamma * g - dot);
            double nu2 = 0;
            for (int k = 0; k < K; k++) nu2 += (double)F[(size_t)k * HW + p] * F[(size_t)k * HW + p];
            const double nu = sqrt(nu2);
            const double nuc = nu > CP_EPS ? nu : CP_EPS;
            const double M = d / nw / nuc;   /* what . u_p / |u_p| */
            for (int k = 0; k < K; k++) {
                const double u = F[(size_t)k * HW + p];
                if (dF) {
                    /* dM/du = what / |u| - M u / |u|^2 (norm above the floor) */
                    double g_u = wc[k] / nw / nuc - (nu > CP_EPS ? M * u / (nuc * nuc) : 0.0);
                    dF[(size_t)k * HW + p] += (float)(dM * g_u);
                }
                dwh[k] += (float)(dM * u / nuc);
            }
        }
        if (gw) {   /* d w_c = (d what - what (what . d what)) / |w_c| (norm above the floor) */
            double pr = 0;
            for (int k = 0; k < K; k++) pr += (double)wc[k] / nw * dwh[k];
            float *g = gw + (size_t)cl * K;
            for (int k = 0; k < K; k++)
                g[k] += (float)((dwh[k] - (nw > CP_EPS ? wc[k] / nw * pr : 0.0)) / nw);
        }
    }
    return LT_OK;
}

static double cp_macs(const lt_model *m, const lt_node *nd) {
    int K, HW;
    cp_dims(m, nd, &K, &HW);
    return 4.0 * K * HW;
}

const lt_layer_ops lt_cam_pool_ops = {LT_LAYER_ABI, "cam_pool", cp_plan, cp_fwd, cp_bwd, cp_scratch, 0, NULL, cp_macs,
                                      NULL, NULL};

int lt_add_cam_pool(lt_model *m, const char *name, const char *group, int in, const char *weight, float scale,
                    float gamma, int stop_grad, int use_labels) {
    if (!weight || strlen(weight) >= sizeof((cp_cfg *)0)->weight)
        return lt_err(LT_EINVAL, "cam_pool %s: weight parameter name missing or too long", name ? name : "");
    if (!(scale > 0) || !isfinite(gamma))
        return lt_err(LT_EINVAL, "cam_pool %s: scale %g must be > 0 and gamma %g finite", name ? name : "", scale,
                      gamma);
    cp_cfg c;
    memset(&c, 0, sizeof c);
    c.scale = scale;
    c.gamma = gamma;
    c.stop_grad = stop_grad != 0;
    c.use_labels = use_labels != 0;
    strcpy(c.weight, weight);
    return lt_model_add(m, &lt_cam_pool_ops, name, group, in, -1, &c, sizeof c);
}
