/* test_method_cbn.c — Compound (Gaussian-mixture) BN (methods/cbn).
 *
 * White-box (the method source is included with its entry point renamed):
 *   - the mixture layer's train-mode forward against a naive reference in
 *     double (E-step from the running parameters, M-step, moving-average
 *     update, normalisation), with and without the pi division, and its
 *     eval-mode forward (running parameters for both steps);
 *   - gradients by finite differences of the naive forward with the
 *     responsibilities held fixed (as the layer defines them): input,
 *     gamma, beta; soft, pi-divided, split and eval mode;
 *   - K = 1 is the engine's BN: outputs, gradients, running statistics over
 *     several steps, and the eval forward, to float rounding (5e-6
 *     relative, not bit for bit: the layer sums in another order, and the
 *     spec's N_k = sum r + eps differs from BN's count by eps);
 *   - the relative variance floor rho (version 2): a component collapsed
 *     onto a constant input (Fashion-MNIST's background) has its batch
 *     variance floored at rho times the whole batch's channel variance
 *     (against a naive reference), the running variance it feeds, and the
 *     running variances at inference floored at rho times the running
 *     mixture's channel variance; finite differences with the floor active
 *     (its value held fixed: a clamp, no gradient through the floored
 *     variance); K = 1 with rho up to 1 never binds and stays BN (rho = 0,
 *     the default, is version 1's layer: the ci reference rows hold its
 *     numbers);
 *   - split mode normalises every class group by its own batch statistics
 *     and moves only the running statistics of the groups present;
 *   - the class groups (equal class count by frequency rank);
 *   - defaults.json equals the defaults, bad hyper-parameters are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tassert.h"   /* NaN-safe assert_float_equal */

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "lt.h"
#include "lt_method.h"
#include "lt_io.h"
#include "lt_run_internal.h"

#define lt_method_cbn cbn_entry_under_test
#include "../methods/cbn/method.c"
#undef lt_method_cbn
const lt_method *lt_method_cbn(void);

enum { N = 4, CH = 3, H = 3, W = 4, HWP = H * W };

/* ---- a one-layer model: identity 1x1 conv "pre" (its dy is the layer's dx) -> "norm" ---- */

typedef struct {
    lt_model *m;
    int pre, norm;
} net;

static float *buf(lt_model *m, const char *name) {
    for (int i = 0; i < lt_model_n_buffers(m); i++) {
        lt_buffer_info b;
        assert_int_equal(lt_model_buffer_at(m, i, &b), LT_OK);
        if (!strcmp(b.name, name)) return b.data;
    }
    fail_msg("no buffer %s", name);
    return NULL;
}

/* K = 0: the engine's BN instead of the mixture layer */
static net make_net_rho(int K, int pi_div, cbn_ctx *ctx, float rho) {
    net n;
    assert_int_equal(lt_model_create(&n.m, (lt_shape){1, CH, H, W}), LT_OK);
    n.pre = lt_add_conv(n.m, "pre", "backbone", 0, CH, 1, 1, 0, 1, 0);
    assert_true(n.pre > 0);
    if (K == 0) n.norm = lt_add_bn(n.m, "norm", "backbone", n.pre);
    else {
        const cbn_cfg c = {K, pi_div, 1e-5f, 0.1f, rho};
        n.norm = lt_model_add_ud(n.m, &cbn_ops, "norm", "backbone", n.pre, -1, &c, sizeof c, ctx);
    }
    assert_true(n.norm > 0);
    assert_int_equal(lt_model_finalize(n.m, 1), LT_OK);
    assert_int_equal(lt_model_set_batch(n.m, N), LT_OK);
    float *w = lt_model_param_data(n.m, "pre.weight");
    for (int i = 0; i < CH; i++)
        for (int j = 0; j < CH; j++) w[i * CH + j] = i == j ? 1.0f : 0.0f;
    float *g = lt_model_param_data(n.m, "norm.weight"), *b = lt_model_param_data(n.m, "norm.bias");
    gc_fill(g, CH, 21, 0.5f, 1.5f);
    gc_fill(b, CH, 22, -0.5f, 0.5f);
    return n;
}

static net make_net(int K, int pi_div, cbn_ctx *ctx) { return make_net_rho(K, pi_div, ctx, 0.0f); }

/* distinct running components (as after some training), marked initialised */
static void set_running(lt_model *m, int K) {
    float *pi = buf(m, "norm.pi"), *mu = buf(m, "norm.mean"), *var = buf(m, "norm.var");
    double z = 0;
    for (int k = 0; k < K; k++) z += pi[k] = 1.0f + k;
    for (int k = 0; k < K; k++) pi[k] = (float)(pi[k] / z);
    for (int k = 0; k < K; k++)
        for (int c = 0; c < CH; c++) {
            mu[k * CH + c] = -0.6f + 0.6f * k + 0.05f * c;
            var[k * CH + c] = 0.3f + 0.1f * k + 0.02f * c;
        }
    *buf(m, "norm.inited") = 1.0f;
}

/* ---- the naive reference, in double, straight from the definitions (§2.1) ---------- */

static void naive_estep(int K, const float *x, const float *pi, const float *mu, const float *var, double eps,
                        double *r) {
    for (int n = 0; n < N; n++)
        for (int p = 0; p < HWP; p++) {
            double l[CBN_KMAX], mx = -INFINITY, z = 0;
            for (int k = 0; k < K; k++) {
                l[k] = log(pi[k]);
                for (int c = 0; c < CH; c++) {
                    const double v = fmax(var[k * CH + c], eps), d = x[(n * CH + c) * HWP + p] - mu[k * CH + c];
                    l[k] -= 0.5 * (log(v) + d * d / v);
                }
                mx = fmax(mx, l[k]);
            }
            for (int k = 0; k < K; k++) z += exp(l[k] - mx);
            for (int k = 0; k < K; k++) r[(n * K + k) * HWP + p] = exp(l[k] - mx) / z;
        }
}

/* y from fixed responsibilities r: batch statistics (train) or the given
 * statistics (eval: mu_e, var_e, pi_e). Also the batch mu, var, R. */
/* The relative floor of the naive reference, from the definitions:
 * training: rho times the whole batch's variance of channel c (every
 * position, divided by the count); inference: rho times the running
 * mixture's variance of channel c, E[x^2] - E[x]^2 under the mixture. */
static void naive_floor_batch(double rho, const float *x, double *fl) {
    for (int c = 0; c < CH; c++) {
        double s = 0, v = 0;
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HWP; p++) s += x[(n * CH + c) * HWP + p];
        s /= N * HWP;
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HWP; p++) v += pow(x[(n * CH + c) * HWP + p] - s, 2);
        fl[c] = rho * v / (N * HWP);
    }
}

static void naive_floor_running(int K, double rho, const float *pi, const float *mu, const float *var, double *fl) {
    for (int c = 0; c < CH; c++) {
        double e1 = 0, e2 = 0, z = 0;
        for (int k = 0; k < K; k++) {
            z += pi[k];
            e1 += pi[k] * (double)mu[k * CH + c];
            e2 += pi[k] * ((double)var[k * CH + c] + (double)mu[k * CH + c] * mu[k * CH + c]);
        }
        fl[c] = rho * (e2 / z - (e1 / z) * (e1 / z));
    }
}

/* y from fixed responsibilities r: batch statistics (train) or the given
 * statistics (eval: mu_e, var_e, pi_e); every variance (batch or given) at
 * least fl[c] when fl is not NULL (the relative floor). Also the batch mu,
 * the floored batch var, R. */
static void naive_norm_fl(int K, int pi_div, const float *x, const double *r, const float *gamma, const float *beta,
                          double eps, const float *mu_e, const float *var_e, const float *pi_e, const double *fl,
                          const double *shift, double *y, double *bm, double *bv, double *R) {
    double mu[CBN_KMAX * CH], rs[CBN_KMAX * CH], wk[CBN_KMAX], Rs[CBN_KMAX] = {0}, tot = 0;
    for (int k = 0; k < K; k++) {
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HWP; p++) Rs[k] += r[(n * K + k) * HWP + p];
        tot += Rs[k] + eps;
    }
    for (int k = 0; k < K; k++) {
        const double Nk = Rs[k] + eps;
        for (int c = 0; c < CH; c++) {
            double s = 0, v = 0;
            for (int n = 0; n < N; n++)
                for (int p = 0; p < HWP; p++) s += r[(n * K + k) * HWP + p] * x[(n * CH + c) * HWP + p];
            const double m = s / Nk;
            for (int n = 0; n < N; n++)
                for (int p = 0; p < HWP; p++) {
                    const double d = x[(n * CH + c) * HWP + p] - m;
                    v += r[(n * K + k) * HWP + p] * d * d;
                }
            v /= Nk;
            if (shift) v += shift[k * CH + c];
            if (fl && v < fl[c]) v = fl[c];
            if (bm) bm[k * CH + c] = m;
            if (bv) bv[k * CH + c] = v;
            mu[k * CH + c] = mu_e ? mu_e[k * CH + c] : m;
            double ve = var_e ? var_e[k * CH + c] : v;
            if (fl && ve < fl[c]) ve = fl[c];
            rs[k * CH + c] = 1.0 / sqrt(ve + eps);
        }
        wk[k] = !pi_div ? 1.0 : pi_e ? 1.0 / sqrt(pi_e[k]) : 1.0 / sqrt(Nk / tot);
        if (R) R[k] = Rs[k];
    }
    for (int n = 0; n < N; n++)
        for (int c = 0; c < CH; c++)
            for (int p = 0; p < HWP; p++) {
                double xh = 0;
                for (int k = 0; k < K; k++)
                    xh += wk[k] * r[(n * K + k) * HWP + p] * (x[(n * CH + c) * HWP + p] - mu[k * CH + c]) * rs[k * CH + c];
                y[(n * CH + c) * HWP + p] = gamma[c] * xh + beta[c];
            }
}

static void naive_norm(int K, int pi_div, const float *x, const double *r, const float *gamma, const float *beta,
                       double eps, const float *mu_e, const float *var_e, const float *pi_e, double *y, double *bm,
                       double *bv, double *R) {
    naive_norm_fl(K, pi_div, x, r, gamma, beta, eps, mu_e, var_e, pi_e, NULL, NULL, y, bm, bv, R);
}

static void assert_close(const char *what, const float *a, const double *b, size_t n, double tol) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs(a[i] - b[i]) / (1.0 + fabs(b[i]));
        if (!(d <= worst)) worst = d, wi = i;
    }
    if (!(worst <= tol)) fail_msg("%s: element %zu: %.9g vs %.9g (rel %.3g > %.3g)", what, wi, a[wi], b[wi], worst, tol);
}

/* ---- forward against the naive reference ---------------------------------------------- */

static void forward_vs_naive(int K, int pi_div) {
    net t = make_net(K, pi_div, NULL);
    set_running(t.m, K);
    float x[N * CH * HWP];
    gc_fill(x, N * CH * HWP, 7, -1.5f, 1.5f);
    float pi0[CBN_KMAX], mu0[CBN_KMAX * CH], var0[CBN_KMAX * CH];
    memcpy(pi0, buf(t.m, "norm.pi"), sizeof(float) * K);
    memcpy(mu0, buf(t.m, "norm.mean"), sizeof(float) * K * CH);
    memcpy(var0, buf(t.m, "norm.var"), sizeof(float) * K * CH);
    const float *gamma = lt_model_param_data(t.m, "norm.weight"), *beta = lt_model_param_data(t.m, "norm.bias");
    double r[N * CBN_KMAX * HWP], y[N * CH * HWP], bm[CBN_KMAX * CH], bv[CBN_KMAX * CH], R[CBN_KMAX];
    naive_estep(K, x, pi0, mu0, var0, 1e-5, r);
    /* the responsibilities are soft and not degenerate here */
    double rmin = 1, rmax = 0;
    for (int i = 0; i < N * K * HWP; i++) rmin = fmin(rmin, r[i]), rmax = fmax(rmax, r[i]);
    if (K > 1) assert_true(rmin < 0.2 && rmax > 0.8);
    naive_norm(K, pi_div, x, r, gamma, beta, 1e-5, NULL, NULL, NULL, y, bm, bv, R);

    assert_int_equal(lt_model_forward(t.m, x, N, 1), LT_OK);
    const lt_node *nd = lt_model_node(t.m, t.norm);
    const float *rl = lt_node_saved(nd);
    assert_close("responsibilities", rl, r, (size_t)N * K * HWP, 2e-6);
    assert_close("train y", lt_model_out(t.m, t.norm), y, N * CH * HWP, 2e-5);
    /* the moving-average update: pi, mu, unbiased (frequency-weighted) var */
    double epi[CBN_KMAX], emu[CBN_KMAX * CH], evar[CBN_KMAX * CH], tot = 0, z = 0;
    for (int k = 0; k < K; k++) tot += R[k];
    for (int k = 0; k < K; k++) z += epi[k] = 0.9 * pi0[k] + 0.1 * R[k] / tot;
    for (int k = 0; k < K; k++) epi[k] = K > 1 ? epi[k] / z : pi0[k];
    for (int i = 0; i < K * CH; i++) {
        const double Nk = R[i / CH] + 1e-5;
        emu[i] = 0.9 * mu0[i] + 0.1 * bm[i];
        evar[i] = 0.9 * var0[i] + 0.1 * bv[i] * Nk / (Nk - 1);
    }
    assert_close("running pi", buf(t.m, "norm.pi"), epi, K, 1e-6);
    assert_close("running mean", buf(t.m, "norm.mean"), emu, K * CH, 1e-6);
    assert_close("running var", buf(t.m, "norm.var"), evar, K * CH, 1e-6);

    /* eval: responsibilities and normalisation from the running parameters */
    const float *pr = buf(t.m, "norm.pi"), *mr = buf(t.m, "norm.mean"), *vr = buf(t.m, "norm.var");
    naive_estep(K, x, pr, mr, vr, 1e-5, r);
    naive_norm(K, pi_div, x, r, gamma, beta, 1e-5, mr, vr, pr, y, NULL, NULL, NULL);
    assert_int_equal(lt_model_forward(t.m, x, N, 0), LT_OK);
    assert_close("eval y", lt_model_out(t.m, t.norm), y, N * CH * HWP, 2e-5);
    lt_model_free(t.m);
}

static void test_forward_naive(void **unused) {
    (void)unused;
    forward_vs_naive(3, 0);
    forward_vs_naive(2, 0);
    forward_vs_naive(3, 1);
    forward_vs_naive(1, 0);
}

/* ---- finite differences with the responsibilities held fixed ------------------------ */

typedef struct {
    int K, pi_div, eval, use_fl, use_shift;
    double fl[CH];   /* the relative floor, held fixed (a clamp's constant) when use_fl */
    double shift[CBN_KMAX * CH];   /* added to the batch variances when use_shift */
    float x[N * CH * HWP], gamma[CH], beta[CH], proj[N * CH * HWP];
    float mu_e[CBN_KMAX * CH], var_e[CBN_KMAX * CH], pi_e[CBN_KMAX];
    double r[N * CBN_KMAX * HWP];
} fd_ctx;

static double fd_loss(void *p) {
    fd_ctx *c = p;
    double y[N * CH * HWP], s = 0;
    naive_norm_fl(c->K, c->pi_div, c->x, c->r, c->gamma, c->beta, 1e-5, c->eval ? c->mu_e : NULL,
                  c->eval ? c->var_e : NULL, c->eval ? c->pi_e : NULL, c->use_fl ? c->fl : NULL,
                  c->use_shift ? c->shift : NULL, y, NULL, NULL, NULL);
    for (int i = 0; i < N * CH * HWP; i++) s += y[i] * c->proj[i];
    return s;
}

/* Fashion-MNIST's background after the first convolution: the first half
 * of the positions of every image hold one constant vector BG, and the
 * running component 0 sits on it with a tiny variance (the collapse of
 * methods/cbn/README.md: its batch variance is then ~0). */
static const float BG[CH] = {0.25f, -0.4f, 0.1f};

static void collapse_input(float *x, float amp) {
    float noise[N * CH * HWP];
    gc_fill(noise, N * CH * HWP, 91, -amp, amp);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < CH; c++)
            for (int p = 0; p < HWP / 2; p++) x[(n * CH + c) * HWP + p] = BG[c] + noise[(n * CH + c) * HWP + p];
}

static void collapse_running(lt_model *m) {
    float *mu = buf(m, "norm.mean"), *var = buf(m, "norm.var");
    for (int c = 0; c < CH; c++) mu[c] = BG[c], var[c] = 1e-4f;
}

static const float *saved_bound(lt_model *m, int node, int K) {
    return (const float *)lt_node_saved_fixed(m, (lt_node *)lt_model_node(m, node)) + 2 * K * CH + 2 * K + 1;
}

static void gradcheck_rho(int K, int pi_div, int split, int eval, float rho, int collapse) {
    static const int group[4] = {0, 1, 2, 1};
    static const int32_t labels[N] = {0, 3, 1, 0};
    cbn_ctx ctx = {.split = split, .labels = labels, .group = group, .n_classes = 4, .update_main = 1,
                   .update_aux = 1};
    net t = make_net_rho(K, pi_div, &ctx, rho);
    set_running(t.m, K);
    if (collapse) collapse_running(t.m);
    static fd_ctx c;
    memset(&c, 0, sizeof c);
    c.K = K, c.pi_div = pi_div, c.eval = eval;
    gc_fill(c.x, N * CH * HWP, 31, -1.5f, 1.5f);
    /* the background with a little noise (0.01, variance ~3e-5, far under
     * the floor), so that the bound component's output depends on its
     * variance and the gradient through it is not negligible */
    if (collapse) collapse_input(c.x, 0.01f);
    if (rho > 0 && K > 1) {
        /* the floor's value is a constant of the gradient (as r): held at
         * its value for the unperturbed input. (K = 1: the floor is the
         * component's own variance and never binds, so the reference is the
         * unfloored layer; the naive whole-batch variance divides by the
         * count, not by the spec's N_k = count + eps, and at rho = 1 would
         * sit a rounding above the component's variance.) */
        c.use_fl = 1;
        if (eval) naive_floor_running(K, rho, buf(t.m, "norm.pi"), buf(t.m, "norm.mean"), buf(t.m, "norm.var"), c.fl);
        else naive_floor_batch(rho, c.x, c.fl);
    }
    gc_fill(c.proj, N * CH * HWP, 32, -1, 1);
    memcpy(c.gamma, lt_model_param_data(t.m, "norm.weight"), sizeof c.gamma);
    memcpy(c.beta, lt_model_param_data(t.m, "norm.bias"), sizeof c.beta);
    memcpy(c.mu_e, buf(t.m, "norm.mean"), sizeof(float) * K * CH);
    memcpy(c.var_e, buf(t.m, "norm.var"), sizeof(float) * K * CH);
    memcpy(c.pi_e, buf(t.m, "norm.pi"), sizeof(float) * K);
    assert_int_equal(lt_model_forward(t.m, c.x, N, !eval), LT_OK);
    /* the floor binds for the collapsed component (so the clamp's zero
     * gradient through its variance is what is checked), not elsewhere; for
     * K = 1 never */
    const int expect_bound = collapse && rho > 0 && !eval && !split && K > 1;
    if (!eval && !split) {
        const float *bd = saved_bound(t.m, t.norm, K);
        for (int ch = 0; ch < CH; ch++)
            for (int k = 0; k < K; k++) assert_true(bd[k * CH + ch] == (expect_bound && k == 0 ? 1.0f : 0.0f));
    }
    const float *rl = lt_node_saved(lt_model_node(t.m, t.norm));
    for (int i = 0; i < N * K * HWP; i++) c.r[i] = rl[i];
    memcpy(lt_model_dout(t.m, t.norm), c.proj, sizeof c.proj);
    lt_model_zero_grad(t.m);
    assert_int_equal(lt_model_backward(t.m, N, &t.norm, 1), LT_OK);
    float dx[N * CH * HWP], dg[CH], db[CH];
    memcpy(dx, lt_model_dout(t.m, t.pre), sizeof dx);
    lt_param_info g, b;
    assert_int_equal(lt_model_param_find(t.m, "norm.weight", &g), LT_OK);
    assert_int_equal(lt_model_param_find(t.m, "norm.bias", &b), LT_OK);
    memcpy(dg, g.g, sizeof dg);
    memcpy(db, b.g, sizeof db);
    gc_opts o = {.eps = 1e-3, .rtol = 2e-3, .atol = 2e-4, .max_checks = 0};
    char what[120];
    snprintf(what, sizeof what, "cbn dx (K %d pi_div %d split %d eval %d rho %g collapse %d)", K, pi_div, split, eval,
             rho, collapse);
    assert_int_equal(gc_check(what, fd_loss, &c, c.x, dx, N * CH * HWP, &o), 0);
    snprintf(what, sizeof what, "cbn dgamma (K %d pi_div %d split %d eval %d rho %g collapse %d)", K, pi_div, split,
             eval, rho, collapse);
    assert_int_equal(gc_check(what, fd_loss, &c, c.gamma, dg, CH, &o), 0);
    snprintf(what, sizeof what, "cbn dbeta (K %d pi_div %d split %d eval %d rho %g collapse %d)", K, pi_div, split,
             eval, rho, collapse);
    assert_int_equal(gc_check(what, fd_loss, &c, c.beta, db, CH, &o), 0);
    if (expect_bound) {
        /* and the check is sensitive to it: had the gradient flowed through
         * the bound component's batch variance (its value kept, the
         * variance shifted by a constant instead of clamped), the finite
         * differences would disagree with the layer's dx */
        double bv0[CBN_KMAX * CH], y0[N * CH * HWP];
        naive_norm(K, pi_div, c.x, c.r, c.gamma, c.beta, 1e-5, NULL, NULL, NULL, y0, NULL, bv0, NULL);
        c.use_fl = 0;
        c.use_shift = 1;
        for (int i = 0; i < K * CH; i++) c.shift[i] = i < CH ? c.fl[i] - bv0[i] : 0.0;
        assert_int_not_equal(gc_check("cbn dx if the gradient flowed through the floored variance (must FAIL)",
                                      fd_loss, &c, c.x, dx, N * CH * HWP, &o),
                             0);
    }
    lt_model_free(t.m);
}

static void gradcheck(int K, int pi_div, int split, int eval) { gradcheck_rho(K, pi_div, split, eval, 0.0f, 0); }

static void test_gradcheck(void **unused) {
    (void)unused;
    gradcheck(3, 0, 0, 0);   /* soft responsibilities */
    gradcheck(2, 0, 0, 0);
    gradcheck(3, 1, 0, 0);   /* divided by sqrt(pi_hat) */
    gradcheck(3, 0, 1, 0);   /* split mode: hard groups */
    gradcheck(1, 0, 0, 0);   /* BN */
    gradcheck(3, 0, 0, 1);   /* eval mode: running statistics */
    /* the relative floor: inactive on ordinary inputs, binding on the
     * collapsed component (train, pi-divided, split, eval) */
    gradcheck_rho(3, 0, 0, 0, 1e-2f, 0);
    gradcheck_rho(3, 0, 0, 0, 1e-2f, 1);
    gradcheck_rho(2, 0, 0, 0, 1e-2f, 1);
    gradcheck_rho(3, 1, 0, 0, 1e-2f, 1);
    gradcheck_rho(3, 0, 1, 0, 1e-2f, 1);
    gradcheck_rho(3, 0, 0, 1, 1e-2f, 1);
    gradcheck_rho(1, 0, 0, 0, 1.0f, 1);   /* K = 1: never binds, even at rho = 1 */
}

/* ---- K = 1 is BN ---------------------------------------------------------------------- */

static void k1_is_bn(float rho) {
    net a = make_net(0, 0, NULL), b = make_net_rho(1, 0, NULL, rho);
    float x[N * CH * HWP], proj[N * CH * HWP];
    for (int step = 0; step < 3; step++) {
        gc_fill(x, N * CH * HWP, 40 + step, -1.0f + step, 2.0f + 0.5f * step);
        gc_fill(proj, N * CH * HWP, 50 + step, -1, 1);
        net *nets[2] = {&a, &b};
        float y[2][N * CH * HWP], dx[2][N * CH * HWP], dg[2][CH], db[2][CH];
        for (int i = 0; i < 2; i++) {
            net *t = nets[i];
            assert_int_equal(lt_model_forward(t->m, x, N, 1), LT_OK);
            memcpy(y[i], lt_model_out(t->m, t->norm), sizeof y[i]);
            memcpy(lt_model_dout(t->m, t->norm), proj, sizeof proj);
            lt_model_zero_grad(t->m);
            assert_int_equal(lt_model_backward(t->m, N, &t->norm, 1), LT_OK);
            memcpy(dx[i], lt_model_dout(t->m, t->pre), sizeof dx[i]);
            lt_param_info g, bb;
            assert_int_equal(lt_model_param_find(t->m, "norm.weight", &g), LT_OK);
            assert_int_equal(lt_model_param_find(t->m, "norm.bias", &bb), LT_OK);
            memcpy(dg[i], g.g, sizeof dg[i]);
            memcpy(db[i], bb.g, sizeof db[i]);
        }
        double ref[N * CH * HWP];
        for (int i = 0; i < N * CH * HWP; i++) ref[i] = y[0][i];
        assert_close("K=1 train y", y[1], ref, N * CH * HWP, 5e-6);
        for (int i = 0; i < N * CH * HWP; i++) ref[i] = dx[0][i];
        assert_close("K=1 dx", dx[1], ref, N * CH * HWP, 1e-5);
        for (int i = 0; i < CH; i++) ref[i] = dg[0][i];
        assert_close("K=1 dgamma", dg[1], ref, CH, 1e-5);
        for (int i = 0; i < CH; i++) ref[i] = db[0][i];
        assert_close("K=1 dbeta", db[1], ref, CH, 5e-6);
        /* the relative floor never binds for one component (rho <= 1):
         * the whole batch's variance is the component's */
        const float *bd = saved_bound(b.m, b.norm, 1);
        for (int i = 0; i < CH; i++) assert_true(bd[i] == 0.0f);
        /* running statistics: BN's (0, 1) start, momentum, unbiased var */
        for (int i = 0; i < CH; i++) ref[i] = buf(a.m, "norm.running_mean")[i];
        assert_close("K=1 running mean", buf(b.m, "norm.mean"), ref, CH, 1e-6);
        for (int i = 0; i < CH; i++) ref[i] = buf(a.m, "norm.running_var")[i];
        assert_close("K=1 running var", buf(b.m, "norm.var"), ref, CH, 1e-6);
        assert_true(buf(b.m, "norm.pi")[0] == 1.0f);
        /* eval forward with those statistics */
        assert_int_equal(lt_model_forward(a.m, x, N, 0), LT_OK);
        assert_int_equal(lt_model_forward(b.m, x, N, 0), LT_OK);
        for (int i = 0; i < N * CH * HWP; i++) ref[i] = lt_model_out(a.m, a.norm)[i];
        assert_close("K=1 eval y", lt_model_out(b.m, b.norm), ref, N * CH * HWP, 5e-6);
    }
    lt_model_free(a.m);
    lt_model_free(b.m);
}

static void test_k1_is_bn(void **unused) {
    (void)unused;
    k1_is_bn(0.0f);
    k1_is_bn(1e-2f);
    k1_is_bn(1.0f);   /* the largest rho allowed */
}

/* ---- the relative variance floor against the naive reference ------------------------- */

/* One component collapsed onto a constant input (half of every image is the
 * background vector BG; the running component 0 sits on it with variance
 * 1e-4): its batch variance is ~0, and with rho > 0 the layer normalises it
 * with rho times the whole batch's channel variance, feeds that floored
 * value into the running variance, and at inference floors the running
 * variances at rho times the running mixture's channel variance. With rho =
 * 0 the gain of the collapsed component is the spec's 1/sqrt(eps) range. */
static void test_floor_collapse(void **unused) {
    (void)unused;
    enum { K = 3 };
    for (int pass = 0; pass < 2; pass++) {
        const float rho = pass ? 1e-2f : 0.0f;
        net t = make_net_rho(K, 0, NULL, rho);
        set_running(t.m, K);
        collapse_running(t.m);
        float x[N * CH * HWP];
        gc_fill(x, N * CH * HWP, 81, -1.5f, 1.5f);
        collapse_input(x, 0.0f);
        float pi0[K], mu0[K * CH], var0[K * CH], veff[K * CH];
        memcpy(pi0, buf(t.m, "norm.pi"), sizeof pi0);
        memcpy(mu0, buf(t.m, "norm.mean"), sizeof mu0);
        memcpy(var0, buf(t.m, "norm.var"), sizeof var0);
        const float *gamma = lt_model_param_data(t.m, "norm.weight"), *beta = lt_model_param_data(t.m, "norm.bias");
        double fl[CH], flr[CH], r[N * K * HWP], y[N * CH * HWP], bm[K * CH], bv[K * CH], bv0[K * CH], R[K];
        naive_floor_batch(rho, x, fl);
        naive_floor_running(K, rho, pi0, mu0, var0, flr);
        for (int i = 0; i < K * CH; i++) veff[i] = (float)fmax(var0[i], flr[i % CH]);
        naive_estep(K, x, pi0, mu0, veff, 1e-5, r);
        naive_norm(K, 0, x, r, gamma, beta, 1e-5, NULL, NULL, NULL, y, NULL, bv0, NULL);
        naive_norm_fl(K, 0, x, r, gamma, beta, 1e-5, NULL, NULL, NULL, fl, NULL, y, bm, bv, R);
        assert_int_equal(lt_model_forward(t.m, x, N, 1), LT_OK);
        const lt_node *nd = lt_model_node(t.m, t.norm);
        assert_close("collapse responsibilities", lt_node_saved(nd), r, (size_t)N * K * HWP, 2e-6);
        assert_close("collapse train y", lt_model_out(t.m, t.norm), y, N * CH * HWP, 2e-5);
        const float *rs = (const float *)lt_node_saved_fixed(t.m, (lt_node *)nd) + K * CH;
        const float *bd = saved_bound(t.m, t.norm, K);
        for (int c = 0; c < CH; c++) {
            /* the collapse: component 0's batch variance is ~0 */
            assert_true(bv0[c] < 1e-9);
            if (pass) {
                assert_true(bd[c] == 1.0f);
                assert_true(fabs(rs[c] * sqrt(fl[c] + 1e-5) - 1.0) < 1e-5);   /* 1/sqrt(rho V_c + eps) */
                assert_true(rs[c] < 20.0f);
            } else {
                assert_true(bd[c] == 0.0f);
                assert_true(rs[c] > 300.0f);   /* 1/sqrt(eps): the v1 gain */
            }
            for (int k = 1; k < K; k++) {   /* the broad components are untouched */
                assert_true(bd[k * CH + c] == 0.0f);
                assert_true(bv[k * CH + c] == bv0[k * CH + c]);
                assert_true(fabs(rs[k * CH + c] * sqrt(bv0[k * CH + c] + 1e-5) - 1.0) < 1e-5);
            }
        }
        /* the running variance takes the floored (regularised) estimate */
        double evar[K * CH];
        for (int i = 0; i < K * CH; i++) {
            const double Nk = R[i / CH] + 1e-5;
            evar[i] = 0.9 * var0[i] + 0.1 * bv[i] * Nk / (Nk - 1);
        }
        assert_close("collapse running var", buf(t.m, "norm.var"), evar, K * CH, 1e-6);

        /* inference: the running variances floored at rho times the running
         * mixture's channel variance (binds here for component 0: its
         * running variance is still ~1e-3 after one update) */
        const float *pr = buf(t.m, "norm.pi"), *mr = buf(t.m, "norm.mean"), *vr = buf(t.m, "norm.var");
        naive_floor_running(K, rho, pr, mr, vr, flr);
        int binds = 0;
        for (int i = 0; i < K * CH; i++) {
            veff[i] = (float)fmax(vr[i], flr[i % CH]);
            binds += vr[i] < flr[i % CH];
        }
        assert_int_equal(binds, pass ? CH : 0);
        naive_estep(K, x, pr, mr, veff, 1e-5, r);
        naive_norm_fl(K, 0, x, r, gamma, beta, 1e-5, mr, vr, pr, flr, NULL, y, NULL, NULL, NULL);
        assert_int_equal(lt_model_forward(t.m, x, N, 0), LT_OK);
        assert_close("collapse eval responsibilities", lt_node_saved(nd), r, (size_t)N * K * HWP, 2e-6);
        assert_close("collapse eval y", lt_model_out(t.m, t.norm), y, N * CH * HWP, 2e-5);
        lt_model_free(t.m);
    }
}

/* ---- split mode: every group by its own statistics -------------------------------------- */

static void test_split_groups(void **unused) {
    (void)unused;
    enum { K = 3 };
    /* classes 0..3 in groups 0, 1, 1, 0; group 2 has no image in the batch */
    static const int group[4] = {0, 1, 1, 0};
    static const int32_t labels[N] = {0, 1, 3, 2};
    cbn_ctx ctx = {.split = 1, .labels = labels, .group = group, .n_classes = 4, .update_main = 0,
                   .update_aux = 1};
    net t = make_net(K, 0, &ctx);
    set_running(t.m, K);
    float mu0[K * CH], var0[K * CH], pi0[K];
    memcpy(mu0, buf(t.m, "norm.mean"), sizeof mu0);
    memcpy(var0, buf(t.m, "norm.var"), sizeof var0);
    memcpy(pi0, buf(t.m, "norm.pi"), sizeof pi0);
    float x[N * CH * HWP];
    gc_fill(x, N * CH * HWP, 61, -2, 2);
    for (int i = CH * HWP; i < 2 * CH * HWP; i++) x[i] += 3.0f;   /* image 1: another distribution */
    assert_int_equal(lt_model_forward(t.m, x, N, 1), LT_OK);
    const float *y = lt_model_out(t.m, t.norm);
    const float *gamma = lt_model_param_data(t.m, "norm.weight"), *beta = lt_model_param_data(t.m, "norm.bias");
    /* groups 0 and 1 = images {0, 2} and {1, 3}: plain BN statistics over the group's images */
    static const int members[2][2] = {{0, 2}, {1, 3}};
    for (int g = 0; g < 2; g++)
        for (int c = 0; c < CH; c++) {
            double s = 0, v = 0;
            const int M = 2 * HWP;
            for (int j = 0; j < 2; j++)
                for (int p = 0; p < HWP; p++) s += x[(members[g][j] * CH + c) * HWP + p];
            const double m = s / (M + 1e-5);
            for (int j = 0; j < 2; j++)
                for (int p = 0; p < HWP; p++) {
                    const double d = x[(members[g][j] * CH + c) * HWP + p] - m;
                    v += d * d;
                }
            v /= M + 1e-5;
            for (int j = 0; j < 2; j++)
                for (int p = 0; p < HWP; p++) {
                    const int i = (members[g][j] * CH + c) * HWP + p;
                    const double want = gamma[c] * (x[i] - m) / sqrt(v + 1e-5) + beta[c];
                    if (!(fabs(y[i] - want) <= 2e-5 * (1 + fabs(want))))   /* NaN fails */
                        fail_msg("group %d image %d: %.8g vs %.8g", g, members[g][j], y[i], want);
                }
            /* the group's running statistics moved towards its own */
            const double unb = v * (M + 1e-5) / (M + 1e-5 - 1);
            assert_float_equal(buf(t.m, "norm.mean")[g * CH + c], 0.9 * mu0[g * CH + c] + 0.1 * m, 1e-6);
            assert_float_equal(buf(t.m, "norm.var")[g * CH + c], 0.9 * var0[g * CH + c] + 0.1 * unb, 1e-6);
        }
    /* the absent group keeps its mean and variance */
    assert_memory_equal(buf(t.m, "norm.mean") + 2 * CH, mu0 + 2 * CH, sizeof(float) * CH);
    assert_memory_equal(buf(t.m, "norm.var") + 2 * CH, var0 + 2 * CH, sizeof(float) * CH);
    /* pi: the present groups move towards their batch share (1/2 each), the
     * absent one keeps its weight, then all are renormalised */
    double e[K] = {0.9 * pi0[0] + 0.05, 0.9 * pi0[1] + 0.05, pi0[2]}, z = e[0] + e[1] + e[2];
    for (int k = 0; k < K; k++) assert_float_equal(buf(t.m, "norm.pi")[k], e[k] / z, 1e-6);

    /* the main path does not move them when only the aux path updates
     * (running_update "aux"), and frozen stops both */
    ctx.split = 0;
    float snap[K * CH];
    memcpy(snap, buf(t.m, "norm.mean"), sizeof snap);
    assert_int_equal(lt_model_forward(t.m, x, N, 1), LT_OK);
    assert_memory_equal(buf(t.m, "norm.mean"), snap, sizeof snap);
    ctx.split = 1;
    ctx.frozen = 1;
    assert_int_equal(lt_model_forward(t.m, x, N, 1), LT_OK);
    assert_memory_equal(buf(t.m, "norm.mean"), snap, sizeof snap);
    lt_model_free(t.m);
}

/* §2.2 initialisation on the first training batch: pi = 1/K, mu_k = mean +
 * delta_k std with delta evenly over [-0.5, 0.5], var = batch variance. */
static void test_first_batch_init(void **unused) {
    (void)unused;
    enum { K = 3 };
    net t = make_net(K, 0, NULL);
    float x[N * CH * HWP];
    gc_fill(x, N * CH * HWP, 71, -1, 3);
    float mu[K * CH], var[K * CH], pi[K];
    cbn_init_from_batch(N, CH, HWP, K, x, 1e-5f, pi, mu, var);
    for (int c = 0; c < CH; c++) {
        double s = 0, v = 0;
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HWP; p++) s += x[(n * CH + c) * HWP + p];
        s /= N * HWP;
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HWP; p++) v += pow(x[(n * CH + c) * HWP + p] - s, 2);
        v /= N * HWP;
        for (int k = 0; k < K; k++) {
            assert_float_equal(mu[k * CH + c], s + (-0.5 + 0.5 * k) * sqrt(v), 1e-5);
            assert_float_equal(var[k * CH + c], v, 1e-5);
        }
    }
    assert_int_equal(lt_model_forward(t.m, x, N, 1), LT_OK);
    assert_true(*buf(t.m, "norm.inited") == 1.0f);
    /* the first update starts from the initialised values */
    assert_true(fabsf(buf(t.m, "norm.mean")[0] - buf(t.m, "norm.mean")[2 * CH]) > 0.1f);
    lt_model_free(t.m);
}

/* ---- groups, defaults -------------------------------------------------------------------- */

static void test_groups(void **unused) {
    (void)unused;
    const long counts[10] = {50, 500, 5, 100, 100, 20, 1000, 10, 200, 1};
    int g[10];
    assert_int_equal(cbn_groups(10, 3, counts, g), LT_OK);
    /* rank order 6, 1, 8, 3, 4 (tie: lower index first), 0, 5, 7, 2, 9 -> 4 + 3 + 3 */
    const int want[10] = {1, 0, 2, 0, 1, 1, 0, 2, 0, 2};
    assert_memory_equal(g, want, sizeof want);
    assert_int_equal(cbn_groups(10, 1, counts, g), LT_OK);
    for (int i = 0; i < 10; i++) assert_int_equal(g[i], 0);
}

static void test_defaults(void **unused) {
    (void)unused;
    const lt_method *M = lt_method_cbn();
    assert_string_equal(M->name, "cbn");
    assert_string_equal(M->fidelity, "reconstructed");
    assert_int_equal(M->abi, LT_METHOD_ABI);   /* built for the ABI it is compiled with (3 or later) */
    assert_true(M->abi >= 3);                   /* norm_layer and the host services */
    assert_non_null(M->norm_layer);
    char *d;
    size_t n;
    assert_int_equal(lt_io_read_all("methods/cbn/defaults.json", &d, &n), LT_OK);
    while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == ' ')) d[--n] = 0;
    assert_string_equal(d, M->defaults);
    free(d);
    lt_host_api api = {.version = 1};
    const long counts[3] = {50, 10, 2};
    lt_run_info run = {.n_classes = 3, .feat_dim = 4, .class_counts = counts, .api = &api};
    const char *bad[] = {"{\"K\": 0}", "{\"K\": 4}", "{\"running_update\": \"all\"}", "{\"lambda_cons\": -1}",
                         "{\"momentum\": 0}", "{\"eps\": 0}", "{\"aux\": false, \"running_update\": \"aux\"}",
                         "{\"rho\": -0.01}", "{\"rho\": 1.5}"};
    const char *key[] = {"K", "K", "running_update", "lambda_cons", "momentum", "eps", "aux", "rho", "rho"};
    for (int i = 0; i < 9; i++) {
        cJSON *o;
        assert_int_equal(lt_method_hparams(M, bad[i], &o), LT_OK);
        struct lt_hparams hp = {o};
        cbn_state st;
        memset(&st, 0, sizeof st);
        assert_int_not_equal(cbn_init(&st, &run, &hp), LT_OK);
        if (!strstr(lt_errmsg(), key[i])) fail_msg("%s: message '%s' does not name %s", bad[i], lt_errmsg(), key[i]);
        cbn_fini(&st);
        cJSON_Delete(o);
    }
    /* the defaults: main path only moves the running statistics */
    cJSON *o;
    assert_int_equal(lt_method_hparams(M, NULL, &o), LT_OK);
    struct lt_hparams hp = {o};
    cbn_state st;
    memset(&st, 0, sizeof st);
    assert_int_equal(cbn_init(&st, &run, &hp), LT_OK);
    assert_int_equal(st.K, 3);
    assert_true(st.ctx.update_main && !st.ctx.update_aux && st.aux && !st.pi_div);
    assert_true(st.rho == 0);      /* the relative variance floor: opt-in (README "Results") */
    assert_string_equal(M->version, "2");
    assert_int_equal(st.group[0], 0);
    assert_int_equal(st.group[2], 2);
    cbn_fini(&st);
    cJSON_Delete(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_naive),   cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_k1_is_bn),        cmocka_unit_test(test_floor_collapse),
        cmocka_unit_test(test_split_groups),
        cmocka_unit_test(test_first_batch_init), cmocka_unit_test(test_groups),
        cmocka_unit_test(test_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
