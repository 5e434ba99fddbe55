/* test_loss.c — losses: finite-difference gradients, hand-computed values,
 * Balanced Softmax / Balanced Sigmoid identities, stability, error codes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gradcheck.h"
#include "lt_loss.h"
#include "lt_model_impl.h"   /* white-box: the model's structs */

enum { N = 4, C = 6, D = 7 };

/* One context for every loss: the loss function reads its inputs from here,
 * so the finite-difference checker can perturb logits / a / b in place. */
typedef enum { K_CE, K_SOFT, K_BCE, K_COS } kind_t;
typedef struct {
    kind_t kind;
    float z[N * C], q[N * C], off[C], w[N];
    int32_t y[N];
    int use_off, use_w, kl;
    float T;
    float a[N * D], b[N * D];
} ctx_t;

static double eval(ctx_t *c, float *g1, float *g2) {
    double L = NAN;
    int rc = LT_EINVAL;
    switch (c->kind) {
    case K_CE:
        rc = lt_softmax_ce(N, C, c->z, c->y, c->use_off ? c->off : NULL, c->use_w ? c->w : NULL, &L, g1);
        break;
    case K_SOFT: rc = lt_soft_ce(N, C, c->z, c->q, c->T, c->kl, &L, g1); break;
    case K_BCE: rc = lt_sigmoid_bce(N, C, c->z, c->q, c->use_off ? c->off : NULL, &L, g1); break;
    case K_COS: rc = lt_cosine_distance(N, D, c->a, c->b, 1e-8f, &L, g1, g2); break;
    }
    assert_int_equal(rc, LT_OK);
    return L;
}
static double eval_loss(void *p) { return eval(p, NULL, NULL); }

static const gc_opts GC = {.eps = 1e-3, .rtol = 2e-3, .atol = 1e-6, .max_checks = 0};

static void setup_ctx(ctx_t *c, kind_t k, unsigned seed) {
    memset(c, 0, sizeof *c);
    c->kind = k;
    c->T = 1.0f;
    gc_fill(c->z, N * C, seed, -3.0f, 3.0f);
    for (int i = 0; i < N; i++) c->y[i] = (int32_t)((i * 5 + 1) % C);
    /* Balanced-Softmax-like offsets: log of a long-tailed count profile. */
    static const float counts[C] = {6000, 2156, 774, 278, 100, 60};
    for (int j = 0; j < C; j++) c->off[j] = logf(counts[j]);
    gc_fill(c->w, N, seed + 1, 0.2f, 2.0f);
    /* Soft targets: rows of a random distribution (sum to 1). */
    gc_fill(c->q, N * C, seed + 2, 0.05f, 1.0f);
    for (int i = 0; i < N; i++) {
        float s = 0;
        for (int j = 0; j < C; j++) s += c->q[i * C + j];
        for (int j = 0; j < C; j++) c->q[i * C + j] /= s;
    }
    gc_fill(c->a, N * D, seed + 3, -1.0f, 1.0f);
    gc_fill(c->b, N * D, seed + 4, -1.0f, 1.0f);
}

static void gradcheck_logits(ctx_t *c, const char *what) {
    float g[N * C];
    eval(c, g, NULL);
    assert_int_equal(gc_check(what, eval_loss, c, c->z, g, N * C, &GC), 0);
}

/* ---- finite-difference gradients ---------------------------------------- */

static void test_ce_gradcheck(void **state) {
    (void)state;
    ctx_t c;
    setup_ctx(&c, K_CE, 11);
    gradcheck_logits(&c, "ce plain");
    c.use_off = 1;
    gradcheck_logits(&c, "ce offsets");
    c.use_w = 1;
    gradcheck_logits(&c, "ce offsets+weights");
    c.use_off = 0;
    gradcheck_logits(&c, "ce weights");
}

static void test_soft_ce_gradcheck(void **state) {
    (void)state;
    ctx_t c;
    setup_ctx(&c, K_SOFT, 12);
    c.T = 1.0f;
    gradcheck_logits(&c, "soft ce T=1");
    c.T = 4.0f;
    gradcheck_logits(&c, "soft ce T=4");
    c.kl = 1;
    gradcheck_logits(&c, "kl T=4");
    c.T = 1.0f;
    gradcheck_logits(&c, "kl T=1");
}

static void test_bce_gradcheck(void **state) {
    (void)state;
    ctx_t c;
    setup_ctx(&c, K_BCE, 13);
    /* hard multi-label targets, a few positives per row */
    for (int k = 0; k < N * C; k++) c.q[k] = (k % 3 == 0) ? 1.0f : 0.0f;
    gradcheck_logits(&c, "bce");
    /* Balanced Sigmoid offsets log(phi/(1-phi)) */
    static const float phi[C] = {0.5f, 0.2f, 0.05f, 0.01f, 0.003f, 0.001f};
    for (int j = 0; j < C; j++) c.off[j] = logf(phi[j] / (1.0f - phi[j]));
    c.use_off = 1;
    gradcheck_logits(&c, "bce offsets");
    /* soft targets as well */
    gc_fill(c.q, N * C, 99, 0.0f, 1.0f);
    gradcheck_logits(&c, "bce soft targets");
}

static void test_cosine_gradcheck(void **state) {
    (void)state;
    ctx_t c;
    setup_ctx(&c, K_COS, 14);
    float ga[N * D], gb[N * D];
    eval(&c, ga, gb);
    assert_int_equal(gc_check("cosine da", eval_loss, &c, c.a, ga, N * D, &GC), 0);
    assert_int_equal(gc_check("cosine db", eval_loss, &c, c.b, gb, N * D, &GC), 0);
    /* either gradient may be requested alone and must equal the joint one */
    float ga2[N * D], gb2[N * D];
    double L1, L2;
    assert_int_equal(lt_cosine_distance(N, D, c.a, c.b, 1e-8f, &L1, ga2, NULL), LT_OK);
    assert_int_equal(lt_cosine_distance(N, D, c.a, c.b, 1e-8f, &L2, NULL, gb2), LT_OK);
    assert_memory_equal(ga, ga2, sizeof ga);
    assert_memory_equal(gb, gb2, sizeof gb);
    assert_true(L1 == L2);
}

/* ---- hand-computed values ------------------------------------------------ */

static void test_ce_values(void **state) {
    (void)state;
    /* uniform logits: loss = log C, gradient (1/C - onehot)/N */
    float z[N * C];
    int32_t y[N] = {0, 3, 5, 2};
    for (int k = 0; k < N * C; k++) z[k] = 0.7f;
    double L;
    float g[N * C];
    assert_int_equal(lt_softmax_ce(N, C, z, y, NULL, NULL, &L, g), LT_OK);
    assert_true(fabs(L - log((double)C)) < 1e-12);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) {
            double want = (1.0 / C - (j == y[i])) / N;
            assert_true(fabs(g[i * C + j] - want) < 1e-7);
        }

    /* logits {1,2,3}, label 0: log(e + e^2 + e^3) - 1 */
    float z3[6] = {1, 2, 3, 1, 2, 3};
    int32_t y3[2] = {0, 2};
    assert_int_equal(lt_softmax_ce(1, 3, z3, y3, NULL, NULL, &L, NULL), LT_OK);
    assert_true(fabs(L - 2.40760596444438) < 1e-12);
    /* weighted mean divides by N, not by the weight sum:
     * l0 = 2.40760596444438, l1 = l0 - 2 */
    float w[2] = {2.0f, 0.5f};
    assert_int_equal(lt_softmax_ce(2, 3, z3, y3, NULL, w, &L, NULL), LT_OK);
    assert_true(fabs(L - (2.0 * 2.40760596444438 + 0.5 * 0.40760596444438) / 2.0) < 1e-12);
    /* gradient scales with the weight */
    float g3[6], g1[6];
    assert_int_equal(lt_softmax_ce(2, 3, z3, y3, NULL, w, &L, g3), LT_OK);
    assert_int_equal(lt_softmax_ce(2, 3, z3, y3, NULL, NULL, &L, g1), LT_OK);
    for (int k = 0; k < 6; k++) assert_true(fabsf(g3[k] - w[k / 3] * g1[k]) < 1e-7f);
    /* dlogits == NULL gives the same loss */
    double La, Lb;
    assert_int_equal(lt_softmax_ce(2, 3, z3, y3, NULL, w, &La, g3), LT_OK);
    assert_int_equal(lt_softmax_ce(2, 3, z3, y3, NULL, w, &Lb, NULL), LT_OK);
    assert_true(La == Lb);
}

static void test_balanced_softmax(void **state) {
    (void)state;
    ctx_t c;
    setup_ctx(&c, K_CE, 21);
    double L, Lshift;
    float g[N * C], gshift[N * C];
    assert_int_equal(lt_softmax_ce(N, C, c.z, c.y, c.off, NULL, &L, g), LT_OK);
    /* gradient = (softmax(z + log n) - onehot(y)) / N, computed independently */
    for (int i = 0; i < N; i++) {
        double s = 0, p[C];
        for (int j = 0; j < C; j++) s += p[j] = exp((double)c.z[i * C + j] + c.off[j]);
        for (int j = 0; j < C; j++) {
            double want = (p[j] / s - (j == c.y[i])) / N;
            assert_true(fabs(g[i * C + j] - want) < 1e-6);
        }
    }
    /* same as plain CE on the shifted logits */
    float zs[N * C];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) zs[i * C + j] = c.z[i * C + j] + c.off[j];
    assert_int_equal(lt_softmax_ce(N, C, zs, c.y, NULL, NULL, &Lshift, gshift), LT_OK);
    assert_true(fabs(L - Lshift) < 1e-5);
    for (int k = 0; k < N * C; k++) assert_true(fabsf(g[k] - gshift[k]) < 1e-6f);
    /* uniform counts: the constant offset cancels -> plain CE */
    float uni[C];
    for (int j = 0; j < C; j++) uni[j] = logf(500.0f);
    double Lu, Lp;
    float gu[N * C], gp[N * C];
    assert_int_equal(lt_softmax_ce(N, C, c.z, c.y, uni, NULL, &Lu, gu), LT_OK);
    assert_int_equal(lt_softmax_ce(N, C, c.z, c.y, NULL, NULL, &Lp, gp), LT_OK);
    assert_true(fabs(Lu - Lp) < 1e-6);
    for (int k = 0; k < N * C; k++) assert_true(fabsf(gu[k] - gp[k]) < 1e-7f);
    /* the tail label gets a larger loss under Balanced Softmax than the head */
    printf("note: balanced softmax loss %.6f vs plain %.6f\n", L, Lp);
}

static void test_soft_ce_values(void **state) {
    (void)state;
    ctx_t c;
    setup_ctx(&c, K_SOFT, 31);
    /* one-hot targets: T^2 * CE(z / T) */
    float q[N * C], zt[N * C];
    memset(q, 0, sizeof q);
    for (int i = 0; i < N; i++) q[i * C + c.y[i]] = 1.0f;
    const float T = 4.0f;
    for (int k = 0; k < N * C; k++) zt[k] = c.z[k] / T;
    double Ls, Lce;
    assert_int_equal(lt_soft_ce(N, C, c.z, q, T, 0, &Ls, NULL), LT_OK);
    assert_int_equal(lt_softmax_ce(N, C, zt, c.y, NULL, NULL, &Lce, NULL), LT_OK);
    assert_true(fabs(Ls - T * T * Lce) < 1e-5);

    /* KL = soft CE - T^2 * H(q) / N, same gradient */
    double H = 0;
    for (int k = 0; k < N * C; k++) H -= c.q[k] * log((double)c.q[k]);
    double Lkl, Lsce;
    float gkl[N * C], gsce[N * C];
    assert_int_equal(lt_soft_ce(N, C, c.z, c.q, T, 1, &Lkl, gkl), LT_OK);
    assert_int_equal(lt_soft_ce(N, C, c.z, c.q, T, 0, &Lsce, gsce), LT_OK);
    assert_true(fabs(Lkl - (Lsce - T * T * H / N)) < 1e-9);
    assert_memory_equal(gkl, gsce, sizeof gkl);

    /* KL(p || p) = 0 with zero gradient when q = softmax(z / T) */
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < C; j++) s += exp(c.z[i * C + j] / T);
        for (int j = 0; j < C; j++) q[i * C + j] = (float)(exp(c.z[i * C + j] / T) / s);
    }
    assert_int_equal(lt_soft_ce(N, C, c.z, q, T, 1, &Lkl, gkl), LT_OK);
    assert_true(fabs(Lkl) < 1e-5);
    for (int k = 0; k < N * C; k++) assert_true(fabsf(gkl[k]) < 1e-6f);

    /* a zero target entry contributes 0 log 0 = 0 to KL (no NaN) */
    float q0[3] = {0.0f, 1.0f, 0.0f}, z0[3] = {0.0f, 0.0f, 0.0f};
    assert_int_equal(lt_soft_ce(1, 3, z0, q0, 1.0f, 1, &Lkl, NULL), LT_OK);
    assert_true(fabs(Lkl - log(3.0)) < 1e-12);
}

static void test_bce_values(void **state) {
    (void)state;
    /* z = 0: log 2 per element; z = 2, y = 0: softplus(2); z = 2, y = 1: softplus(-2) */
    float z[4] = {0.0f, 0.0f, 2.0f, 2.0f}, y[4] = {1.0f, 0.0f, 0.0f, 1.0f};
    double L;
    float g[4];
    assert_int_equal(lt_sigmoid_bce(1, 4, z, y, NULL, &L, g), LT_OK);
    double want = 2 * log(2.0) + 2.1269280110429727 + log1p(exp(-2.0));
    assert_true(fabs(L - want) < 1e-12);
    assert_true(fabsf(g[0] - (-0.5f)) < 1e-7f);
    assert_true(fabsf(g[1] - 0.5f) < 1e-7f);
    assert_true(fabs(g[2] - 1.0 / (1.0 + exp(-2.0))) < 1e-7);
    /* the mean is over N rows, summed over classes */
    float z2[8] = {0, 0, 2, 2, 0, 0, 2, 2}, y2[8] = {1, 0, 0, 1, 1, 0, 0, 1};
    double L2;
    assert_int_equal(lt_sigmoid_bce(2, 4, z2, y2, NULL, &L2, NULL), LT_OK);
    assert_true(fabs(L2 - want) < 1e-12);

    /* Balanced Sigmoid: an offset is exactly a shift of the logit */
    ctx_t c;
    setup_ctx(&c, K_BCE, 41);
    float zs[N * C], go[N * C], gs[N * C];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) zs[i * C + j] = c.z[i * C + j] + c.off[j];
    double Lo, Ls;
    assert_int_equal(lt_sigmoid_bce(N, C, c.z, c.q, c.off, &Lo, go), LT_OK);
    assert_int_equal(lt_sigmoid_bce(N, C, zs, c.q, NULL, &Ls, gs), LT_OK);
    assert_true(fabs(Lo - Ls) < 1e-5);
    for (int k = 0; k < N * C; k++) assert_true(fabsf(go[k] - gs[k]) < 1e-6f);
}

static void test_cosine_values(void **state) {
    (void)state;
    float a[3 * 2] = {1, 2, 3, -1, 1, 0}, b[3 * 2] = {2, 4, -3, 1, 0, 5};
    double L;
    float ga[6], gb[6];
    /* rows: parallel (cos 1), antiparallel (cos -1), orthogonal (cos 0) */
    assert_int_equal(lt_cosine_distance(3, 2, a, b, 1e-8f, &L, ga, gb), LT_OK);
    assert_true(fabs(L - (0.0 + 2.0 + 1.0) / 3.0) < 1e-12);
    /* parallel and antiparallel rows are stationary points */
    for (int k = 0; k < 4; k++) {
        assert_true(fabsf(ga[k]) < 1e-7f);
        assert_true(fabsf(gb[k]) < 1e-7f);
    }
    /* orthogonal row: d(1-cos)/da = -b/(|a||b|)/N = -(0,5)/5/3 */
    assert_true(fabsf(ga[4] - 0.0f) < 1e-7f && fabsf(ga[5] - (-1.0f / 3.0f)) < 1e-7f);
    /* scale invariance */
    float a2[6];
    for (int k = 0; k < 6; k++) a2[k] = 7.5f * a[k];
    double L2;
    assert_int_equal(lt_cosine_distance(3, 2, a2, b, 1e-8f, &L2, NULL, NULL), LT_OK);
    assert_true(fabs(L - L2) < 1e-12);
    /* a zero vector is guarded by eps: cos = 0, finite gradient */
    float zero[2] = {0, 0}, v[2] = {3, 4}, gz[2];
    assert_int_equal(lt_cosine_distance(1, 2, zero, v, 1e-8f, &L, gz, NULL), LT_OK);
    assert_true(fabs(L - 1.0) < 1e-12);
    assert_true(isfinite(gz[0]) && isfinite(gz[1]));
    /* ...but with eps = 0 there is nothing to guard it */
    assert_int_equal(lt_cosine_distance(1, 2, zero, v, 0.0f, &L, gz, NULL), LT_ENUM);
}

/* ---- stability with huge logits ----------------------------------------- */

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static void test_stability(void **state) {
    (void)state;
    float z[2 * 3] = {1e4f, -1e4f, 0.0f, -1e4f, 1e4f, 1e4f};
    int32_t y[2] = {1, 0};
    double L;
    float g[6];
    /* row 0: lse = 1e4, label logit -1e4 -> 2e4; row 1: lse = 1e4 + log 2, label -1e4 */
    assert_int_equal(lt_softmax_ce(2, 3, z, y, NULL, NULL, &L, g), LT_OK);
    assert_true(isfinite(L) && all_finite(g, 6));
    assert_true(fabs(L - (2e4 + 2e4 + log(2.0)) / 2.0) < 1e-6);
    assert_true(fabsf(g[0] - 0.5f) < 1e-7f && fabsf(g[1] + 0.5f) < 1e-7f);
    int32_t yc[2] = {0, 1};   /* confident and right: loss ~ 0 and log 2 */
    assert_int_equal(lt_softmax_ce(2, 3, z, yc, NULL, NULL, &L, g), LT_OK);
    assert_true(fabs(L - log(2.0) / 2.0) < 1e-9);
    /* with Balanced Softmax offsets too */
    float off[3] = {logf(5000.0f), logf(50.0f), logf(5.0f)};
    assert_int_equal(lt_softmax_ce(2, 3, z, y, off, NULL, &L, g), LT_OK);
    assert_true(isfinite(L) && all_finite(g, 6));

    float q[6] = {0.2f, 0.3f, 0.5f, 1.0f, 0.0f, 0.0f};
    for (int kl = 0; kl <= 1; kl++)
        for (int t = 0; t < 2; t++) {
            float T = t ? 4.0f : 1.0f;
            assert_int_equal(lt_soft_ce(2, 3, z, q, T, kl, &L, g), LT_OK);
            assert_true(isfinite(L) && all_finite(g, 6));
        }

    float yb[6] = {0, 1, 1, 1, 0, 1};
    assert_int_equal(lt_sigmoid_bce(2, 3, z, yb, NULL, &L, g), LT_OK);
    assert_true(isfinite(L) && all_finite(g, 6));
    /* elements: (1e4,0)->1e4, (-1e4,1)->1e4, (0,1)->log2,
     *           (-1e4,1)->1e4, (1e4,0)->1e4, (1e4,1)->~0 */
    assert_true(fabs(L - (4e4 + log(2.0)) / 2.0) < 1e-6);

    float a[3] = {1e4f, -1e4f, 1e-4f}, b[3] = {-2e4f, 3e4f, 1e4f};
    float ga[3], gb[3];
    assert_int_equal(lt_cosine_distance(1, 3, a, b, 1e-8f, &L, ga, gb), LT_OK);
    assert_true(isfinite(L) && all_finite(ga, 3) && all_finite(gb, 3));
}

/* ---- error codes --------------------------------------------------------- */

static void test_nonfinite_inputs(void **state) {
    (void)state;
    ctx_t c;
    setup_ctx(&c, K_CE, 51);
    double L;
    float g[N * C];
    const float bad[2] = {NAN, INFINITY};
    for (int b = 0; b < 2; b++) {
        float z[N * C];
        memcpy(z, c.z, sizeof z);
        z[2 * C + 3] = bad[b];
        lt_err_clear();
        assert_int_equal(lt_softmax_ce(N, C, z, c.y, NULL, NULL, &L, g), LT_ENUM);
        assert_true(strlen(lt_errmsg()) > 0);
        assert_int_equal(lt_softmax_ce(N, C, z, c.y, c.off, NULL, &L, NULL), LT_ENUM);
        assert_int_equal(lt_soft_ce(N, C, z, c.q, 4.0f, 0, &L, g), LT_ENUM);
        assert_int_equal(lt_soft_ce(N, C, z, c.q, 1.0f, 1, &L, g), LT_ENUM);
        assert_int_equal(lt_sigmoid_bce(N, C, z, c.q, NULL, &L, g), LT_ENUM);
        float a[N * D];
        memcpy(a, c.a, sizeof a);
        a[5] = bad[b];
        assert_int_equal(lt_cosine_distance(N, D, a, c.b, 1e-8f, &L, NULL, NULL), LT_ENUM);
        assert_int_equal(lt_cosine_distance(N, D, c.b, a, 1e-8f, &L, NULL, NULL), LT_ENUM);
    }
    /* non-finite offsets (log 0), weights and targets */
    float off[C];
    memcpy(off, c.off, sizeof off);
    off[4] = -INFINITY;
    assert_int_equal(lt_softmax_ce(N, C, c.z, c.y, off, NULL, &L, g), LT_ENUM);
    assert_int_equal(lt_sigmoid_bce(N, C, c.z, c.q, off, &L, g), LT_ENUM);
    float w[N] = {1, NAN, 1, 1};
    assert_int_equal(lt_softmax_ce(N, C, c.z, c.y, NULL, w, &L, g), LT_ENUM);
    float q[N * C];
    memcpy(q, c.q, sizeof q);
    q[7] = NAN;
    assert_int_equal(lt_soft_ce(N, C, c.z, q, 1.0f, 0, &L, g), LT_ENUM);
    assert_int_equal(lt_sigmoid_bce(N, C, c.z, q, NULL, &L, g), LT_ENUM);
}

static void test_bad_arguments(void **state) {
    (void)state;
    ctx_t c;
    setup_ctx(&c, K_CE, 61);
    double L = 123.0;
    float g[N * C];
    int32_t y[N];
    memcpy(y, c.y, sizeof y);
    y[3] = C;
    lt_err_clear();
    assert_int_equal(lt_softmax_ce(N, C, c.z, y, NULL, NULL, &L, g), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "label"));
    y[3] = -1;
    assert_int_equal(lt_softmax_ce(N, C, c.z, y, c.off, c.w, &L, g), LT_EINVAL);
    assert_int_equal(lt_softmax_ce(0, C, c.z, c.y, NULL, NULL, &L, g), LT_EINVAL);
    assert_int_equal(lt_softmax_ce(N, 0, c.z, c.y, NULL, NULL, &L, g), LT_EINVAL);
    assert_int_equal(lt_softmax_ce(N, C, c.z, NULL, NULL, NULL, &L, g), LT_EINVAL);
    assert_int_equal(lt_softmax_ce(N, C, c.z, c.y, NULL, NULL, NULL, g), LT_EINVAL);
    assert_int_equal(lt_soft_ce(N, C, c.z, c.q, 0.0f, 0, &L, g), LT_EINVAL);
    assert_int_equal(lt_soft_ce(N, C, c.z, c.q, -1.0f, 0, &L, g), LT_EINVAL);
    assert_int_equal(lt_soft_ce(N, C, c.z, c.q, NAN, 0, &L, g), LT_EINVAL);
    assert_int_equal(lt_soft_ce(N, C, c.z, NULL, 1.0f, 0, &L, g), LT_EINVAL);
    float q[N * C];
    memcpy(q, c.q, sizeof q);
    q[0] = -0.1f;
    assert_int_equal(lt_soft_ce(N, C, c.z, q, 1.0f, 1, &L, g), LT_EINVAL);
    assert_int_equal(lt_sigmoid_bce(N, C, c.z, NULL, NULL, &L, g), LT_EINVAL);
    assert_int_equal(lt_sigmoid_bce(-1, C, c.z, c.q, NULL, &L, g), LT_EINVAL);
    assert_int_equal(lt_cosine_distance(N, D, c.a, NULL, 1e-8f, &L, NULL, NULL), LT_EINVAL);
    assert_int_equal(lt_cosine_distance(N, D, c.a, c.b, -1.0f, &L, NULL, NULL), LT_EINVAL);
    assert_int_equal(lt_cosine_distance(N, 0, c.a, c.b, 1e-8f, &L, NULL, NULL), LT_EINVAL);
    assert_true(L == 123.0);   /* failed calls leave the loss alone */
}

/* Balanced-Softmax prior offsets: log n_j, the excluded stand-in for empty
 * classes (probability exactly 0 through lt_softmax_ce), bad counts refused. */
static void test_log_count_offsets(void **st) {
    (void)st;
    const long n[4] = {100, 10, 0, 1};
    float o[4];
    int ex = -1;
    assert_int_equal(lt_log_count_offsets(4, n, o, &ex), LT_OK);
    assert_int_equal(ex, 1);
    assert_true(o[0] == (float)log(100.0) && o[1] == (float)log(10.0) && o[3] == 0.0f);
    assert_true(o[2] == LT_OFFSET_EXCLUDED);
    const float z[4] = {3, -2, 50, 0};
    const int32_t y[1] = {0};
    float d[4];
    double loss;
    assert_int_equal(lt_softmax_ce(1, 4, z, y, o, NULL, &loss, d), LT_OK);
    assert_true(d[2] == 0.0f);   /* the empty class takes no gradient, even at logit 50 */
    const long neg[2] = {3, -1}, none[2] = {0, 0};
    assert_int_equal(lt_log_count_offsets(2, neg, o, NULL), LT_EINVAL);
    assert_int_equal(lt_log_count_offsets(2, none, o, NULL), LT_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_count_offsets),
        cmocka_unit_test(test_ce_gradcheck),
        cmocka_unit_test(test_soft_ce_gradcheck),
        cmocka_unit_test(test_bce_gradcheck),
        cmocka_unit_test(test_cosine_gradcheck),
        cmocka_unit_test(test_ce_values),
        cmocka_unit_test(test_balanced_softmax),
        cmocka_unit_test(test_soft_ce_values),
        cmocka_unit_test(test_bce_values),
        cmocka_unit_test(test_cosine_values),
        cmocka_unit_test(test_stability),
        cmocka_unit_test(test_nonfinite_inputs),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
