/* methods/cbn — Compound Batch Normalization with a Gaussian mixture
 * (Cheng et al., ACM MM 2022, arXiv:2212.01007). No official code exists:
 * this is the reconstruction of specs/methods-b.md §2, with the choices of
 * §2.5 (README.md lists every one).
 *
 * Two parts:
 *   1. a plugin layer ("cbn", LT_LAYER_ABI 2) that the norm_layer hook puts
 *      wherever the backbone has a BatchNorm: a K-component diagonal
 *      Gaussian mixture over the C-dimensional vector at every position;
 *      soft E-step with the running parameters (responsibilities are
 *      constants for the gradient), M-step on the batch, moving-average
 *      update, normalisation by the responsibility-weighted batch
 *      statistics, one per-channel affine. Every component variance is
 *      floored at rho times the layer's channel variance (version 2: GMM
 *      covariance regularisation against components collapsing onto a
 *      constant input; rho = 0 is version 1). In "split" mode (the auxiliary
 *      path) every position of image i belongs hard to the component of
 *      its class group.
 *   2. the method: the auxiliary path is the same batch through the same
 *      weights with the layers in split mode, run by the host's sub-graph
 *      service from "input" to "logits" (its own activations, so the main
 *      path's saved tensors stay for the runner's backward); loss =
 *      CE(main) + CE(aux) + lambda_cons * KL(softmax(main) || sg(softmax(aux))).
 *
 * Only lt.h, lt_method.h and standard headers (tests/test_method_isolation.c). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define CBN_DEFAULTS                                                                                          \
    "{\"K\": 3, \"running_update\": \"main\", \"pi_div\": false, \"lambda_cons\": 1.0, \"momentum\": 0.1, " \
    "\"eps\": 1e-05, \"rho\": 0, \"aux\": true}"

#define CBN_KMAX 8
/* the parallel loops pay only on large tensors (as the engine's BN) */
#define CBN_PAR_MIN 32768

/* ---- the layer ----------------------------------------------------------------------- */

/* Plain data copied into the node (LT_LAYER_CFG_MAX bytes at most). */
typedef struct {
    int K;          /* components */
    int pi_div;     /* 1: component term divided by sqrt(pi_k) (Mixture Normalization); §2.5.6 */
    float eps;      /* variance floor inside the sqrt, N_k guard, sigma^2 clamp */
    float momentum; /* moving-average factor of the running pi, mu, sigma^2 */
    float rho;      /* relative variance floor: sigma^2_kc >= rho * (the layer's variance of channel c); 0: none */
} cbn_cfg;

/* Shared by every cbn node of a model (the node's userdata; owned by the
 * method state). A node without userdata runs the main path and updates. */
enum { CBN_UPD_MAIN = 0, CBN_UPD_AUX = 1, CBN_UPD_BOTH = 2 };
typedef struct {
    int split;               /* 1 during the auxiliary pass: hard class-aware assignment */
    const int32_t *labels;   /* [rows] the rows' labels in split mode */
    const int *group;        /* [n_classes] component of each class */
    int n_classes;
    int update_main, update_aux;   /* which path moves the running statistics */
    int frozen;              /* 1: no path moves them (measurements after training) */
} cbn_ctx;

/* Saved floats: per sample the responsibilities r [K][HW]; fixed part:
 * mu [K*C], rstd [K*C], N_k [K], w_k [K] (1 or 1/sqrt(pi_k)), a flag
 * (1: train-mode statistics, whose gradients flow; 0: running ones), then
 * bound [K*C] (1 where the relative floor replaced the batch variance: no
 * gradient through it) and veff [K*C] (the floored running variances, the
 * E-step's and inference's; scratch planned with the node, so nothing is
 * allocated in the training loop). */
static size_t cbn_fixed(int K, int C) { return 4 * (size_t)K * C + 2 * (size_t)K + 1; }

static int cbn_plan(lt_model *m, lt_node *nd) {
    const cbn_cfg *c = lt_node_cfg_const(nd);
    const lt_shape s = lt_node_in_shape(m, nd, 0);
    if (c->K < 1 || c->K > CBN_KMAX) return lt_err(LT_EINVAL, "cbn: K = %d outside 1..%d", c->K, CBN_KMAX);
    lt_node_set_shape(nd, s);
    const size_t C = (size_t)s.c, K = (size_t)c->K;
    LT_TRY(lt_model_param_add(m, nd, "weight", C, 0, LT_INIT_ONE, 0));
    LT_TRY(lt_model_param_add(m, nd, "bias", C, 0, LT_INIT_ZERO, 0));
    /* before the first batch every component is BN's (0, 1): an untrained
     * model normalises as the engine's BN would */
    LT_TRY(lt_model_buffer_add(m, nd, "pi", K, 1.0f / (float)K));
    LT_TRY(lt_model_buffer_add(m, nd, "mean", K * C, 0.0f));
    LT_TRY(lt_model_buffer_add(m, nd, "var", K * C, 1.0f));
    /* 1 once the §2.2 first-batch initialisation ran (a buffer, so a
     * resumed run does not initialise again) */
    LT_TRY(lt_model_buffer_add(m, nd, "inited", 1, 0.0f));
    lt_node_set_saved(nd, K * (size_t)s.h * s.w, cbn_fixed(c->K, s.c));
    return LT_OK;
}

/* The variance floor (GMM covariance regularisation, scale-free): every
 * component's variance of channel c is at least rho times the layer's
 * variance of channel c, the mixture's total variance by the law of total
 * variance, V_c = sum_k w_k (var_kc + (mu_kc - mbar_c)^2) with
 * mbar_c = sum_k w_k mu_kc and w_k the (normalised) weights. For the batch
 * (w_k = N_k / sum N_j, the M-step's mu, var) V_c is the whole batch's
 * variance of channel c (to the eps in N_k); for the running parameters
 * (w_k = pi_k) the running mixture's. K = 1 gives V_c = var_1c exactly, so
 * with rho <= 1 the floor never binds and K = 1 stays BN. */
static double cbn_pooled(int K, const double *w, const double *mu, const double *var) {
    double mb = 0, v = 0, z = 0;
    for (int k = 0; k < K; k++) z += w[k];
    for (int k = 0; k < K; k++) mb += w[k] / z * mu[k];
    for (int k = 0; k < K; k++) {
        const double d = mu[k] - mb;
        v += w[k] / z * (var[k] + d * d);
    }
    return v;
}

/* veff = max(var, rho * V_c) of the running parameters (rho = 0: a copy) */
static void cbn_floor_running(int K, int C, float rho, const float *pi, const float *mu, const float *var,
                              float *veff) {
    memcpy(veff, var, sizeof(float) * (size_t)K * C);
    if (!(rho > 0)) return;
    double w[CBN_KMAX], m[CBN_KMAX], v[CBN_KMAX];
    for (int k = 0; k < K; k++) w[k] = pi[k];
    for (int c = 0; c < C; c++) {
        for (int k = 0; k < K; k++) m[k] = mu[(size_t)k * C + c], v[k] = var[(size_t)k * C + c];
        const double fl = (double)rho * cbn_pooled(K, w, m, v);
        for (int k = 0; k < K; k++)
            if ((double)var[(size_t)k * C + c] < fl) veff[(size_t)k * C + c] = (float)fl;
    }
}

/* Responsibilities from the running parameters, in log space:
 * l_nk = log pi_k - 1/2 sum_c [log var_kc + (x_nc - mu_kc)^2 / var_kc],
 * r = softmax_k(l). The log-likelihood sums in float (the responsibilities
 * are constants of the gradient; K = 1 gives r = 1 exactly). */
static void cbn_estep(int N, int C, int HW, int K, const float *x, const float *pi, const float *mu,
                      const float *var, float eps, float *r) {
    double lc[CBN_KMAX];
    for (int k = 0; k < K; k++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += log(fmax((double)var[(size_t)k * C + c], (double)eps));
        lc[k] = log(fmax((double)pi[k], 1e-30)) - 0.5 * s;
    }
    const size_t CHW = (size_t)C * HW;
    LT_PAR_FOR(lt_par((size_t)N * CHW * K, CBN_PAR_MIN),
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * CHW;
        float *rn = r + (size_t)n * K * HW;
        if (K == 1) {
            for (int p = 0; p < HW; p++) rn[p] = 1.0f;
            continue;
        }
        for (int k = 0; k < K; k++) {
            float *l = rn + (size_t)k * HW;
            const float l0 = (float)lc[k];
            for (int p = 0; p < HW; p++) l[p] = l0;
            for (int c = 0; c < C; c++) {
                const float m = mu[(size_t)k * C + c];
                const float h = (float)(0.5 / fmax((double)var[(size_t)k * C + c], (double)eps));
                const float *xc = xn + (size_t)c * HW;
                _Pragma("omp simd")
                for (int p = 0; p < HW; p++) {
                    const float d = xc[p] - m;
                    l[p] -= h * d * d;
                }
            }
        }
        for (int p = 0; p < HW; p++) {
            float mx = rn[p];
            for (int k = 1; k < K; k++) mx = fmaxf(mx, rn[(size_t)k * HW + p]);
            double z = 0;
            for (int k = 0; k < K; k++) {
                /* below e^-30 of the largest a term is under the float
                 * resolution of the sum (>= 1): exactly 0, which also keeps
                 * denormals (exp(-100)) out of every later product */
                const float d = rn[(size_t)k * HW + p] - mx;
                const float e = d < -30.0f ? 0.0f : expf(d);
                rn[(size_t)k * HW + p] = e;
                z += e;
            }
            const float iz = (float)(1.0 / z);
            for (int k = 0; k < K; k++) rn[(size_t)k * HW + p] *= iz;
        }
    });
}

/* Hard assignment: every position of image n to the component of its class group. */
static int cbn_split(int N, int HW, int K, const cbn_ctx *ctx, float *r) {
    if (!ctx->labels || !ctx->group) return lt_err(LT_ESTATE, "cbn: split mode without labels");
    for (int n = 0; n < N; n++) {
        const int32_t y = ctx->labels[n];
        if (y < 0 || y >= ctx->n_classes) return lt_err(LT_EINVAL, "cbn: label %d outside [0, %d)", y, ctx->n_classes);
        const int g = ctx->group[y];
        float *rn = r + (size_t)n * K * HW;
        for (int k = 0; k < K; k++)
            for (int p = 0; p < HW; p++) rn[(size_t)k * HW + p] = k == g ? 1.0f : 0.0f;
    }
    return LT_OK;
}

/* R_k = sum_n r_nk (double, fixed order). */
static void cbn_resp_sums(int N, int HW, int K, const float *r, double *R) {
    for (int k = 0; k < K; k++) {
        double s = 0;
        for (int n = 0; n < N; n++) {
            const float *rk = r + ((size_t)n * K + k) * HW;
            for (int p = 0; p < HW; p++) s += rk[p];
        }
        R[k] = s;
    }
}

/* M-step of channel c: with N_k = R_k + eps,
 * mu_k = sum r x / N_k, var_k = sum r (x - mu_k)^2 / N_k, from sums shifted
 * by a sample of the channel (as the engine's BN: nothing cancels), in double. */
static void cbn_mstep_channel(int N, int C, int HW, int K, int c, const float *x, const float *r, const double *R,
                              double eps, double *mu, double *var) {
    const size_t CHW = (size_t)C * HW;
    const double sh = x[(size_t)c * HW];
    double s1[CBN_KMAX] = {0}, s2[CBN_KMAX] = {0};
    for (int n = 0; n < N; n++) {
        const float *xc = x + (size_t)n * CHW + (size_t)c * HW;
        for (int k = 0; k < K; k++) {
            const float *rk = r + ((size_t)n * K + k) * HW;
            double a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
            for (int p = 0; p < HW; p++) {
                const double d = (double)xc[p] - sh, w = rk[p];
                a1 += w * d;
                a2 += w * d * d;
            }
            s1[k] += a1;
            s2[k] += a2;
        }
    }
    for (int k = 0; k < K; k++) {
        const double Nk = R[k] + eps;
        const double m = (s1[k] + sh * R[k]) / Nk;   /* sum r x / N_k */
        const double dm = m - sh;
        /* sum r (x - m)^2 = s2 - 2 dm s1 + dm^2 R */
        double v = (s2[k] - 2.0 * dm * s1[k] + dm * dm * R[k]) / Nk;
        mu[k] = m;
        var[k] = v > 0 ? v : 0;
    }
}

/* y = gamma * sum_k w_k r_k (x - mu_k) rstd_k + beta */
static void cbn_normalize(int N, int C, int HW, int K, const float *x, const float *r, const float *mu,
                          const float *rs, const float *wk, const float *gamma, const float *beta, float *y) {
    const size_t CHW = (size_t)C * HW;
    LT_PAR_FOR(lt_par((size_t)N * CHW * K, CBN_PAR_MIN),
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < C; c++) {
            const float *xc = x + (size_t)n * CHW + (size_t)c * HW;
            float *yc = y + (size_t)n * CHW + (size_t)c * HW;
            const float g = gamma[c], b = beta[c];
            for (int p = 0; p < HW; p++) yc[p] = 0.0f;
            for (int k = 0; k < K; k++) {
                const float *rk = r + ((size_t)n * K + k) * HW;
                const float m = mu[(size_t)k * C + c], a = wk[k] * rs[(size_t)k * C + c];
                _Pragma("omp simd")
                for (int p = 0; p < HW; p++) yc[p] += rk[p] * ((xc[p] - m) * a);
            }
            _Pragma("omp simd")
            for (int p = 0; p < HW; p++) yc[p] = g * yc[p] + b;
        }
    });
}

/* §2.2: pi = 1/K; mu_k = batch mean + delta_k * batch std with delta_k
 * evenly over [-0.5, 0.5]; sigma^2_k = batch variance (all positions). */
static void cbn_init_from_batch(int N, int C, int HW, int K, const float *x, float eps, float *pi, float *mu,
                                float *var) {
    const size_t CHW = (size_t)C * HW, M = (size_t)N * HW;
    for (int c = 0; c < C; c++) {
        const double sh = x[(size_t)c * HW];
        double s1 = 0, s2 = 0;
        for (int n = 0; n < N; n++) {
            const float *xc = x + (size_t)n * CHW + (size_t)c * HW;
            for (int p = 0; p < HW; p++) {
                const double d = (double)xc[p] - sh;
                s1 += d;
                s2 += d * d;
            }
        }
        const double m = sh + s1 / (double)M;
        double v = s2 / (double)M - (s1 / (double)M) * (s1 / (double)M);
        if (v < eps) v = eps;
        for (int k = 0; k < K; k++) {
            const double delta = K > 1 ? -0.5 + (double)k / (K - 1) : 0.0;
            mu[(size_t)k * C + c] = (float)(m + delta * sqrt(v));
            var[(size_t)k * C + c] = (float)v;
        }
    }
    for (int k = 0; k < K; k++) pi[k] = 1.0f / (float)K;
}

static int cbn_fwd(lt_model *m, lt_node *nd, int N) {
    const cbn_cfg *cf = lt_node_cfg_const(nd);
    const cbn_ctx *ctx = lt_node_userdata(nd);
    const lt_shape s = lt_node_shape(nd);
    const int C = s.c, HW = s.h * s.w, K = cf->K;
    const float *x = lt_node_x(m, nd, 0), *gamma = lt_node_w(m, nd, 0), *beta = lt_node_w(m, nd, 1);
    float *pi = lt_node_buf(m, nd, 0), *rmu = lt_node_buf(m, nd, 1), *rvar = lt_node_buf(m, nd, 2);
    float *inited = lt_node_buf(m, nd, 3);
    float *r = lt_node_saved(nd), *fx = lt_node_saved_fixed(m, nd);
    float *mu = fx, *rs = fx + (size_t)K * C, *nk = rs + (size_t)K * C, *wk = nk + K, *flag = wk + K;
    float *bound = flag + 1, *veff = bound + (size_t)K * C;
    const double eps = cf->eps;
    const int split = ctx && ctx->split;
    memset(bound, 0, sizeof(float) * (size_t)K * C);

    if (!lt_node_train_mode(m, nd)) {
        /* inference: the running parameters for the responsibilities and
         * for the normalisation (§2.1 "Inference") */
        cbn_floor_running(K, C, cf->rho, pi, rmu, rvar, veff);
        cbn_estep(N, C, HW, K, x, pi, rmu, veff, cf->eps, r);
        for (size_t i = 0; i < (size_t)K * C; i++) {
            mu[i] = rmu[i];
            rs[i] = (float)(1.0 / sqrt((double)veff[i] + eps));
        }
        for (int k = 0; k < K; k++) {
            nk[k] = 0;
            wk[k] = cf->pi_div ? (float)(1.0 / sqrt(fmax((double)pi[k], 1e-30))) : 1.0f;
        }
        *flag = 0;
        cbn_normalize(N, C, HW, K, x, r, mu, rs, wk, gamma, beta, lt_node_y(nd));
        return LT_OK;
    }
    const int upd = ctx ? !ctx->frozen && (split ? ctx->update_aux : ctx->update_main) : 1;
    /* §2.2's first-batch initialisation spreads the components apart; one
     * component has nothing to spread and keeps BN's (0, 1) start, so that
     * K = 1 is BN (tested, to float rounding). */
    if (K > 1 && *inited == 0.0f && upd) {
        cbn_init_from_batch(N, C, HW, K, x, cf->eps, pi, rmu, rvar);
        *inited = 1.0f;
    }
    if (split) LT_TRY(cbn_split(N, HW, K, ctx, r));
    else {
        cbn_floor_running(K, C, cf->rho, pi, rmu, rvar, veff);
        cbn_estep(N, C, HW, K, x, pi, rmu, veff, cf->eps, r);
    }

    double R[CBN_KMAX], Rt = 0;
    cbn_resp_sums(N, HW, K, r, R);
    for (int k = 0; k < K; k++) Rt += R[k] + eps;
    for (int k = 0; k < K; k++) {
        nk[k] = (float)(R[k] + eps);
        /* the batch's mixture weight (a constant of the gradient: r is) */
        wk[k] = cf->pi_div ? (float)(1.0 / sqrt((R[k] + eps) / Rt)) : 1.0f;
    }
    *flag = 1;
    const float mom = cf->momentum;
    const double rho = cf->rho;
    double wN[CBN_KMAX];
    for (int k = 0; k < K; k++) wN[k] = R[k] + eps;
    LT_PAR_FOR(lt_par((size_t)N * C * HW * K, CBN_PAR_MIN),
    for (int c = 0; c < C; c++) {
        double bm[CBN_KMAX], bv[CBN_KMAX];
        cbn_mstep_channel(N, C, HW, K, c, x, r, R, eps, bm, bv);
        if (rho > 0) {
            /* the relative floor on the batch variances (a clamp: where it
             * binds the variance is the constant rho * V_c, no gradient) */
            const double fl = rho * cbn_pooled(K, wN, bm, bv);
            for (int k = 0; k < K; k++)
                if (bv[k] < fl) {
                    bv[k] = fl;
                    bound[(size_t)k * C + c] = 1.0f;
                }
        }
        for (int k = 0; k < K; k++) {
            const size_t i = (size_t)k * C + c;
            mu[i] = (float)bm[k];
            rs[i] = (float)(1.0 / sqrt(bv[k] + eps));
            /* A component with less than one position's worth of
             * responsibility has no batch estimate: its running mu and
             * sigma^2 stay (in split mode: its group is absent, §2.1). The
             * running variance takes the unbiased estimate with frequency
             * weights, N_k / (N_k - 1), as BN's does (K = 1 is BN). */
            if (upd && R[k] >= 1.0) {
                const double Nk = R[k] + eps;
                const double unb = Nk > 1.0 ? bv[k] * Nk / (Nk - 1.0) : bv[k];
                rmu[i] = (float)((1.0 - mom) * rmu[i] + mom * bm[k]);
                rvar[i] = (float)fmax((1.0 - mom) * rvar[i] + mom * unb, eps);
            }
        }
    });
    if (upd && K > 1) {
        /* pi_hat_k = N_k / sum_j N_j over the components present; absent
         * ones keep their weight; renormalised afterwards (§2.1 step 3) */
        double tot = 0, z = 0;
        for (int k = 0; k < K; k++) tot += R[k] >= 1.0 ? R[k] : 0.0;
        for (int k = 0; k < K; k++)
            if (R[k] >= 1.0 && tot > 0) pi[k] = (float)((1.0 - mom) * pi[k] + mom * (R[k] / tot));
        for (int k = 0; k < K; k++) z += pi[k];
        for (int k = 0; k < K; k++) pi[k] = (float)(pi[k] / z);
    }
    cbn_normalize(N, C, HW, K, x, r, mu, rs, wk, gamma, beta, lt_node_y(nd));
    return LT_OK;
}

/* Backward with r (and w_k) constant. Per component k and channel c, with
 * h_n = w_k r_nk gamma dy_n, z_n = (x_n - mu_k) rstd_k, N_k = R_k + eps:
 *   dvar = -1/2 rstd^3 sum_n h_n (x_n - mu_k)
 *   dmu  = -rstd sum_n h_n + dvar * (-2/N_k) sum_n r_nk (x_n - mu_k)
 *        (the last sum is mu_k eps, not 0, since N_k carries eps)
 *   dx_n += r_nk (w_k gamma rstd dy_n + dmu / N_k + 2 dvar (x_n - mu_k) / N_k)
 * and, from running statistics (flag 0), only the first term. Where the
 * relative variance floor bound (var_kc = rho V_c) the variance is a
 * constant, as after a clamp: dvar = 0 (the floor's V_c is a constant of
 * the gradient, as r), while the gradient through mu_k still flows. */
static int cbn_bwd(lt_model *m, lt_node *nd, int N) {
    const cbn_cfg *cf = lt_node_cfg_const(nd);
    const lt_shape s = lt_node_shape(nd);
    const int C = s.c, HW = s.h * s.w, K = cf->K;
    const size_t CHW = (size_t)C * HW;
    const float *x = lt_node_x(m, nd, 0), *gamma = lt_node_w(m, nd, 0), *dy = lt_node_dy(nd);
    float *dx = lt_node_dx(m, nd, 0), *dg = lt_node_gw(m, nd, 0), *db = lt_node_gw(m, nd, 1);
    const int set = dx ? lt_node_dx_set(nd, 0) : 0;
    const float *r = lt_node_saved(nd), *fx = lt_node_saved_fixed(m, nd);
    const float *mu = fx, *rs = fx + (size_t)K * C, *nk = rs + (size_t)K * C, *wk = nk + K, *flag = wk + K;
    const float *bound = flag + 1;
    const int stats = *flag != 0.0f;
    const double eps = cf->eps;
    LT_PAR_FOR(lt_par((size_t)N * CHW * K, CBN_PAR_MIN),
    for (int c = 0; c < C; c++) {
        double sdy = 0, sdyxh = 0, A[CBN_KMAX] = {0}, B[CBN_KMAX] = {0};
        for (int n = 0; n < N; n++) {
            const float *xc = x + (size_t)n * CHW + (size_t)c * HW, *dc = dy + (size_t)n * CHW + (size_t)c * HW;
            for (int k = 0; k < K; k++) {
                const float *rk = r + ((size_t)n * K + k) * HW;
                const double mk = mu[(size_t)k * C + c], rk_s = rs[(size_t)k * C + c];
                double a = 0, b = 0;
                _Pragma("omp simd reduction(+ : a, b)")
                for (int p = 0; p < HW; p++) {
                    const double w = (double)rk[p] * dc[p];
                    a += w;
                    b += w * ((double)xc[p] - mk);
                }
                A[k] += a;   /* sum r dy */
                B[k] += b;   /* sum r dy (x - mu) */
                sdyxh += wk[k] * rk_s * b;   /* sum dy xhat */
            }
            for (int p = 0; p < HW; p++) sdy += dc[p];
        }
        if (dg) dg[c] += (float)sdyxh;
        if (db) db[c] += (float)sdy;
        if (!dx) continue;
        const double g = gamma[c];
        float ka[CBN_KMAX], kb[CBN_KMAX], kc[CBN_KMAX], km[CBN_KMAX];
        for (int k = 0; k < K; k++) {
            const double rsd = rs[(size_t)k * C + c], mk = mu[(size_t)k * C + c];
            const double hs = wk[k] * g;   /* h = hs * r * dy */
            ka[k] = (float)(hs * rsd);
            km[k] = (float)mk;
            if (stats) {
                const double Nk = nk[k];
                const double dvar = bound[(size_t)k * C + c] != 0.0f ? 0.0 : -0.5 * rsd * rsd * rsd * hs * B[k];
                const double dmu = -rsd * hs * A[k] + dvar * (-2.0 * mk * eps / Nk);
                kb[k] = (float)(2.0 * dvar / Nk);
                kc[k] = (float)(dmu / Nk);
            } else {
                kb[k] = 0.0f;
                kc[k] = 0.0f;
            }
        }
        for (int n = 0; n < N; n++) {
            const float *xc = x + (size_t)n * CHW + (size_t)c * HW, *dc = dy + (size_t)n * CHW + (size_t)c * HW;
            float *gc = dx + (size_t)n * CHW + (size_t)c * HW;
            if (set)
                for (int p = 0; p < HW; p++) gc[p] = 0.0f;
            for (int k = 0; k < K; k++) {
                const float *rk = r + ((size_t)n * K + k) * HW;
                const float a = ka[k], b = kb[k], cc = kc[k], mk = km[k];
                _Pragma("omp simd")
                for (int p = 0; p < HW; p++) gc[p] += rk[p] * (a * dc[p] + b * (xc[p] - mk) + cc);
            }
        }
    });
    return LT_OK;
}

static double cbn_macs(const lt_model *m, const lt_node *nd) {
    (void)m;
    const cbn_cfg *c = lt_node_cfg_const(nd);
    const lt_shape s = lt_node_shape(nd);
    /* E-step and normalisation: about 2 K C multiply-adds per position */
    return 2.0 * c->K * (double)s.c * s.h * s.w;
}

/* Backward reads the input, never its own output (a following in-place
 * ReLU may overwrite it), and can overwrite the input gradient. No fusion:
 * the layer is not an affine map of its input, so it cannot fold into a
 * convolution's epilogue. */
static const lt_layer_ops cbn_ops = {LT_LAYER_ABI, "cbn", cbn_plan, cbn_fwd, cbn_bwd, NULL,
                                     LT_LAYER_SETS_DX | LT_LAYER_BWD_NO_Y, NULL, cbn_macs, NULL, NULL};

/* ---- the method ---------------------------------------------------------------------- */

static const char *const cbn_update_names[] = {"main", "aux", "both", NULL};

typedef struct {
    const lt_run_info *run;
    int K, update, pi_div, aux;
    double lambda, momentum, eps, rho;
    int C;
    int *group;              /* [C] component of each class */
    cbn_ctx ctx;
    lt_subgraph *sg;         /* "input" .. "logits" for the auxiliary path (the host's) */
    int logits, batch;
    int rows;                /* rows the sub-graph has room for */
    int n_layers;
} cbn_state;

/* Classes sorted by training count, descending (ties: lower index first),
 * cut into K contiguous groups of equal class count (sizes differ by at
 * most one, larger groups first): rank q goes to group floor(q K / C). */
static int cbn_groups(int C, int K, const long *counts, int *group) {
    int *order = malloc((size_t)C * sizeof *order);
    if (!order) return lt_err(LT_ENOMEM, "cbn: out of memory");
    for (int i = 0; i < C; i++) order[i] = i;
    for (int i = 1; i < C; i++) {   /* insertion sort: stable, C is small */
        const int v = order[i];
        int j = i - 1;
        while (j >= 0 && counts[order[j]] < counts[v]) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = v;
    }
    for (int q = 0; q < C; q++) group[order[q]] = (int)((long)q * K / C);
    free(order);
    return LT_OK;
}

static int cbn_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    cbn_state *st = stp;
    st->run = run;
    st->C = run->n_classes;
    long K;
    int rc = lt_hp_int(hp, "K", &K);
    if (!rc) rc = lt_hp_choice(hp, "running_update", cbn_update_names, &st->update);
    double b;
    if (!rc) rc = lt_hp_num(hp, "pi_div", &b);
    if (!rc) st->pi_div = b != 0;
    if (!rc) rc = lt_hp_num(hp, "aux", &b);
    if (!rc) st->aux = b != 0;
    if (!rc) rc = lt_hp_num(hp, "lambda_cons", &st->lambda);
    if (!rc) rc = lt_hp_num(hp, "momentum", &st->momentum);
    if (!rc) rc = lt_hp_num(hp, "eps", &st->eps);
    if (!rc) rc = lt_hp_num(hp, "rho", &st->rho);
    if (rc) return lt_err_wrap(rc, "cbn");
    if (K < 1 || K > CBN_KMAX) return lt_err(LT_EINVAL, "cbn: K %ld outside 1..%d", K, CBN_KMAX);
    st->K = (int)K;
    if (!(st->lambda >= 0) || !isfinite(st->lambda))
        return lt_err(LT_EINVAL, "cbn: lambda_cons %g must be >= 0", st->lambda);
    if (!(st->momentum > 0 && st->momentum <= 1)) return lt_err(LT_EINVAL, "cbn: momentum %g outside (0, 1]", st->momentum);
    if (!(st->eps > 0) || !isfinite(st->eps)) return lt_err(LT_EINVAL, "cbn: eps %g must be > 0", st->eps);
    /* rho > 1 would make every component wider than the channel itself */
    if (!(st->rho >= 0 && st->rho <= 1)) return lt_err(LT_EINVAL, "cbn: rho %g outside [0, 1]", st->rho);
    if (st->C < 1) return lt_err(LT_EINVAL, "cbn: %d classes", st->C);
    if (st->K > st->C) return lt_err(LT_EINVAL, "cbn: K %d exceeds the %d classes (a class group would be empty)", st->K, st->C);
    if (!run->api || run->api->version < 1) return lt_err(LT_EABI, "cbn: needs the host services (method ABI 3)");
    st->group = calloc((size_t)st->C, sizeof *st->group);
    if (!st->group) return lt_err(LT_ENOMEM, "cbn: out of memory");
    LT_TRY(cbn_groups(st->C, st->K, run->class_counts, st->group));
    st->ctx = (cbn_ctx){.split = 0, .labels = NULL, .group = st->group, .n_classes = st->C,
                        .update_main = st->update != CBN_UPD_AUX, .update_aux = st->update != CBN_UPD_MAIN,
                        .frozen = 0};
    /* with no auxiliary pass, "aux" would leave the running statistics at
     * their start: refuse it rather than evaluate an unfitted mixture */
    if (!st->aux && st->update == CBN_UPD_AUX)
        return lt_err(LT_EINVAL, "cbn: running_update \"aux\" needs the auxiliary path (aux = true)");
    return LT_OK;
}

static void cbn_fini(void *stp) {
    cbn_state *st = stp;
    free(st->group);
    memset(st, 0, sizeof *st);   /* the sub-graph is the host's */
}

static int cbn_norm_layer(void *stp, lt_model *m, const char *name, const char *group, int in) {
    cbn_state *st = stp;
    const cbn_cfg c = {st->K, st->pi_div, (float)st->eps, (float)st->momentum, (float)st->rho};
    st->n_layers++;
    return lt_model_add_ud(m, &cbn_ops, name, group, in, -1, &c, sizeof c, &st->ctx);
}

static int cbn_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    cbn_state *st = stp;
    if (stage != 0) return lt_err(LT_EINVAL, "cbn: no stage %d (1 stage)", stage);
    if (st->n_layers == 0) return lt_err(LT_EINVAL, "cbn: the backbone has no BN position for the mixture layer");
    st->logits = lt_model_find(m, "logits");
    if (st->logits < 0) return lt_err(LT_EINVAL, "cbn: the model has no 'logits'");
    st->batch = cfg->batch;
    const int rows = cfg->batch_cap > cfg->batch * cfg->model_views ? cfg->batch_cap : cfg->batch * cfg->model_views;
    /* created once (a resume replays this hook in a new process): the whole
     * network on the batch's rows again, with activations of its own */
    if (st->aux && !st->sg) {
        LT_TRY(st->run->api->subgraph(st->run->host, m, "input", "logits", rows, &st->sg));
        st->rows = rows;
    }
    if (st->run->log) {
        LT_TRY(st->run->log(st->run->host, "cbn_layers", (double)st->n_layers));
        for (int c = 0; c < st->C && c < 64; c++) {
            char key[40];
            snprintf(key, sizeof key, "cbn_group_class%d", c);
            LT_TRY(st->run->log(st->run->host, key, (double)st->group[c]));
        }
    }
    return LT_OK;
}

/* KL(p || q) of one row of logits (p = softmax(a), q = softmax(b), q a
 * constant): its value, and d/da_j = p_j (log p_j - log q_j - KL) * scale
 * added to g. */
static double cbn_kl_row(int C, const float *a, const float *b, float scale, float *g) {
    double ma = a[0], mb = b[0];
    for (int j = 1; j < C; j++) {
        ma = fmax(ma, a[j]);
        mb = fmax(mb, b[j]);
    }
    double za = 0, zb = 0;
    for (int j = 0; j < C; j++) {
        za += exp(a[j] - ma);
        zb += exp(b[j] - mb);
    }
    const double la = ma + log(za), lb = mb + log(zb);
    double kl = 0;
    for (int j = 0; j < C; j++) {
        const double lp = a[j] - la, lq = b[j] - lb;
        kl += exp(lp) * (lp - lq);
    }
    for (int j = 0; j < C; j++) {
        const double lp = a[j] - la, lq = b[j] - lb;
        g[j] += (float)(scale * exp(lp) * (lp - lq - kl));
    }
    return kl;
}

static int cbn_loss(void *stp, const lt_taps *t, double *loss, lt_grads *g) {
    cbn_state *st = stp;
    const int n = t->n, C = st->C;
    if (t->n_classes != C) return lt_err(LT_EINVAL, "cbn: taps have %d classes, the run %d", t->n_classes, C);
    double lmain;
    LT_TRY(lt_softmax_ce(n, C, t->logits, t->labels, NULL, NULL, &lmain, g->dlogits));
    if (!st->aux) {
        *loss = lmain;
        return LT_OK;
    }
    if (n > st->rows) return lt_err(LT_EINVAL, "cbn: %d rows, the auxiliary path has room for %d", n, st->rows);
    if (!t->x) return lt_err(LT_ESTATE, "cbn: the taps carry no input rows");
    /* the auxiliary path: the same rows (the model forwards the first n of
     * t->x) through the same weights, every mixture layer split by class */
    st->ctx.split = 1;
    st->ctx.labels = t->labels;
    int rc = lt_subgraph_forward(st->sg, t->x, n, 1);
    st->ctx.split = 0;
    st->ctx.labels = NULL;
    LT_TRY(rc);
    const float *za = lt_subgraph_out(st->sg, st->logits);
    float *dza = lt_subgraph_dout(st->sg, st->logits);
    double laux;
    LT_TRY(lt_softmax_ce(n, C, za, t->labels, NULL, NULL, &laux, dza));
    /* consistency: KL(softmax(main) || stopgrad(softmax(aux))), mean over
     * rows; its gradient reaches only the main path */
    double kl = 0;
    if (st->lambda > 0) {
        const float sc = (float)(st->lambda / n);
        for (int i = 0; i < n; i++)
            kl += cbn_kl_row(C, t->logits + (size_t)i * C, za + (size_t)i * C, sc, g->dlogits + (size_t)i * C);
        kl /= n;
    }
    /* the aux CE's gradient through the same weights, added to the main
     * path's (the runner zeroed the gradients before this hook) */
    LT_TRY(lt_subgraph_backward(st->sg, n, &st->logits, 1));
    *loss = lmain + laux + st->lambda * kl;
    return LT_OK;
}

/* ---- after training: train mode against eval mode on the same images ----------------- */

static int argmax(int C, const float *z) {
    int b = 0;
    for (int j = 1; j < C; j++)
        if (z[j] > z[b]) b = j;
    return b;
}

/* What cbn_consistency measures, in percent. */
typedef struct {
    double acc_train, acc_eval;         /* over the images */
    double cls_train, cls_eval;         /* mean per-class accuracy (classes with images measured) */
    double disagree;                    /* images whose two predictions differ */
} cbn_modes;

/* Every full batch of a fixed permutation of the training set (eval
 * transform), forwarded in train mode (batch statistics, soft E-step from
 * the running parameters; running statistics frozen) and in eval mode
 * (running parameters): the accuracies and how often the two predictions
 * differ. The class mean weighs the tail as much as the head: the training
 * images are long-tailed, and a tail-class inconsistency would hide in the
 * micro accuracy. */
static int cbn_consistency(cbn_state *st, lt_model *m, cbn_modes *out) {
    const lt_run_info *run = st->run;
    const lt_dataset *ds = run->train;
    const int B = st->batch, C = st->C;
    if (!ds || ds->n < B || B < 1) return lt_err(LT_EINVAL, "cbn: no full batch of training images to measure on");
    const lt_shape in = lt_model_in_shape(m);
    const size_t isz = lt_shape_count(in), img = (size_t)ds->c * ds->h * ds->w;
    if (lt_model_batch(m) < B) LT_TRY(lt_model_set_batch(m, B));
    float *x = malloc((size_t)B * isz * sizeof *x);
    int32_t *perm = malloc((size_t)ds->n * sizeof *perm), *pt = malloc((size_t)B * sizeof *pt);
    long *cnt = calloc((size_t)3 * C, sizeof *cnt);   /* per class: images, train-mode hits, eval-mode hits */
    if (!x || !perm || !pt || !cnt) {
        free(x), free(perm), free(pt), free(cnt);
        return lt_err(LT_ENOMEM, "cbn: out of memory");
    }
    lt_rng r;
    lt_rng_init(&r, run->seed, LT_STREAM_METHOD + 1);
    for (long i = 0; i < ds->n; i++) perm[i] = (int32_t)i;
    for (long i = ds->n - 1; i > 0; i--) {   /* Fisher-Yates */
        const long j = (long)lt_rng_below(&r, (uint32_t)(i + 1));
        const int32_t v = perm[i];
        perm[i] = perm[j];
        perm[j] = v;
    }
    long ct = 0, ce = 0, dis = 0, tot = 0;
    int rc = LT_OK;
    st->ctx.frozen = 1;
    for (long b0 = 0; b0 + B <= ds->n && !rc; b0 += B) {
        for (int i = 0; i < B; i++) {
            const long id = perm[b0 + i];
            lt_aug_eval(run->aug, ds->c, ds->h, ds->w, ds->pixels + (size_t)id * img, x + (size_t)i * isz);
        }
        rc = lt_model_forward(m, x, B, 1);
        if (rc) break;
        const float *z = lt_model_out(m, st->logits);
        for (int i = 0; i < B; i++) pt[i] = argmax(C, z + (size_t)i * C);
        rc = lt_model_forward(m, x, B, 0);
        if (rc) break;
        z = lt_model_out(m, st->logits);
        for (int i = 0; i < B; i++) {
            const int y = ds->labels[perm[b0 + i]], pe = argmax(C, z + (size_t)i * C);
            ct += pt[i] == y;
            ce += pe == y;
            if (y >= 0 && y < C) {
                cnt[3 * y]++;
                cnt[3 * y + 1] += pt[i] == y;
                cnt[3 * y + 2] += pe == y;
            }
            dis += pe != pt[i];
            tot++;
        }
    }
    st->ctx.frozen = 0;
    double st_sum = 0, se_sum = 0;
    int nc = 0;
    for (int j = 0; j < C; j++)
        if (cnt[3 * j] > 0) {
            st_sum += (double)cnt[3 * j + 1] / cnt[3 * j];
            se_sum += (double)cnt[3 * j + 2] / cnt[3 * j];
            nc++;
        }
    free(x), free(perm), free(pt), free(cnt);
    LT_TRY(rc);
    out->acc_train = 100.0 * ct / tot;
    out->acc_eval = 100.0 * ce / tot;
    out->disagree = 100.0 * dis / tot;
    out->cls_train = nc ? 100.0 * st_sum / nc : 0;
    out->cls_eval = nc ? 100.0 * se_sum / nc : 0;
    return LT_OK;
}

static int cbn_post_train(void *stp, lt_model *m, const lt_feature_bank *fb) {
    cbn_state *st = stp;
    (void)fb;
    cbn_modes r = {0, 0, 0, 0, 0};
    LT_TRY(cbn_consistency(st, m, &r));
    if (st->run->log) {
        LT_TRY(st->run->log(st->run->host, "cbn_train_mode_acc", r.acc_train));
        LT_TRY(st->run->log(st->run->host, "cbn_eval_mode_acc", r.acc_eval));
        LT_TRY(st->run->log(st->run->host, "cbn_mode_gap", r.acc_train - r.acc_eval));
        LT_TRY(st->run->log(st->run->host, "cbn_train_mode_class_acc", r.cls_train));
        LT_TRY(st->run->log(st->run->host, "cbn_eval_mode_class_acc", r.cls_eval));
        LT_TRY(st->run->log(st->run->host, "cbn_mode_class_gap", r.cls_train - r.cls_eval));
        LT_TRY(st->run->log(st->run->host, "cbn_mode_disagree", r.disagree));
    }
    return LT_OK;
}

const lt_method *lt_method_cbn(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "cbn",
        .version = "2",
        .cite = "Cheng et al., ACM MM 2022, arXiv:2212.01007",
        .fidelity = "reconstructed",
        .defaults = CBN_DEFAULTS,
        /* the loss reads only the taps' host arrays and the sub-graph's; on a
         * device the mixture layers (no CUDA code) run on the host */
        .flags = LT_METHOD_HOST_TAPS,
        .state_size = sizeof(cbn_state),
        .init = cbn_init,
        .fini = cbn_fini,
        .stage_begin = cbn_stage_begin,
        .loss = cbn_loss,
        .post_train = cbn_post_train,
        .norm_layer = cbn_norm_layer,
    };
    return &m;
}
