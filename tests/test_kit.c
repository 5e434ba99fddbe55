/* test_kit.c — engine/lt_kit.h and the learned-scale cosine layer, each
 * against a naive reference written here, with finite-difference gradient
 * checks for every loss and layer:
 *  - Gamma / Beta draws: sample mean and variance against the moments;
 *  - mixup (pairs and in-batch) against a hand replay; mixed CE values and
 *    gradient;
 *  - EMA copy: exact copy, the update formula per element, buffer modes,
 *    name / size matching;
 *  - the labelled FIFO queue: order, wrap-around, overflow, checkpoint;
 *  - masked log-sum-exp contrastive loss (SSD's label-filtered MoCo loss
 *    written out by hand), stability at large logits, gradient;
 *  - KD (T^2 KL, teacher constant) and cosine feature distillation;
 *  - cosine classifier with fixed and learned scale (x via a preceding
 *    layer, W, s);
 *  - the scale layer's input gradient (through a linear layer before it);
 *  - class activation maps against a naive loop and resize;
 *  - a frozen teacher's BN modes (what the host's teacher service sets). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "tassert.h"   /* NaN-safe assert_float_equal */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradcheck.h"
#include "lt.h"

static const gc_opts LOSS_TOL = {1e-3, 1e-2, 1e-5, 0};
static const gc_opts NONLIN_TOL = {1e-2, 2e-2, 1e-3, 0};

/* ---- distributions ------------------------------------------------------------ */

static void moments(double a, double b, int n, unsigned seed, double *mean, double *var)
{
    lt_rng r;
    lt_rng_init(&r, seed, LT_STREAM_METHOD);
    double s = 0, s2 = 0;
    for (int i = 0; i < n; i++) {
        double x = b > 0 ? lt_rng_beta(&r, a, b) : lt_rng_gamma(&r, a);
        assert_true(isfinite(x));
        if (b > 0) assert_true(x >= 0 && x <= 1);
        s += x;
        s2 += x * x;
    }
    *mean = s / n;
    *var = s2 / n - *mean * *mean;
}

static void test_beta_moments(void **state)
{
    (void)state;
    const double ab[][2] = {{0.2, 0.2}, {1, 1}, {2, 2}, {2, 5}, {0.5, 3}};
    const int n = 40000;
    for (int k = 0; k < 5; k++) {
        const double a = ab[k][0], b = ab[k][1];
        const double m = a / (a + b), v = a * b / ((a + b) * (a + b) * (a + b + 1));
        double sm, sv;
        moments(a, b, n, 10 + k, &sm, &sv);
        /* 5 standard errors: the mean's is sqrt(v/n); the variance's about
         * sqrt(2/n) v for these shapes (kurtosis below 3 + 6) */
        printf("note: Beta(%g, %g): mean %.4f (%.4f), var %.5f (%.5f)\n", a, b, sm, m, sv, v);
        assert_true(fabs(sm - m) < 5 * sqrt(v / n));
        assert_true(fabs(sv - v) < 5 * sqrt(3.0 / n) * v);
    }
    /* Gamma(k): mean k, variance k, small and large shapes */
    const double ks[] = {0.3, 1.0, 4.5};
    for (int k = 0; k < 3; k++) {
        double sm, sv;
        moments(ks[k], 0, n, 30 + k, &sm, &sv);
        assert_true(fabs(sm - ks[k]) < 5 * sqrt(ks[k] / n));
        assert_true(fabs(sv - ks[k]) < 0.08 * ks[k]);
    }
    /* reproducible, and a stream of its own */
    lt_rng r1, r2;
    lt_rng_init(&r1, 3, LT_STREAM_METHOD);
    lt_rng_init(&r2, 3, LT_STREAM_METHOD);
    for (int i = 0; i < 100; i++) assert_true(lt_rng_beta(&r1, 0.7, 0.7) == lt_rng_beta(&r2, 0.7, 0.7));
    assert_true(isnan(lt_rng_gamma(&r1, 0)));
}

/* ---- mixup -------------------------------------------------------------------- */

static void test_mixup(void **state)
{
    (void)state;
    enum { n = 6, d = 5 };
    float xa[n * d], xb[n * d], xm[n * d], lam[n];
    gc_fill(xa, n * d, 1, -1, 1);
    gc_fill(xb, n * d, 2, -1, 1);
    lt_rng r, q;
    lt_rng_init(&r, 9, LT_STREAM_METHOD + 1);
    q = r;
    assert_int_equal(lt_mixup_pairs(n, d, xa, xb, 0.4, &r, xm, lam), LT_OK);
    for (int i = 0; i < n; i++) {
        const float l = (float)lt_rng_beta(&q, 0.4, 0.4);   /* one lambda per pair, in order */
        assert_true(lam[i] == l);
        for (int k = 0; k < d; k++) assert_float_equal(xm[i * d + k], l * xa[i * d + k] + (1 - l) * xb[i * d + k], 1e-6);
    }
    /* in place over xa gives the same */
    float xa2[n * d], lam2[n];
    memcpy(xa2, xa, sizeof xa);
    lt_rng_init(&r, 9, LT_STREAM_METHOD + 1);
    assert_int_equal(lt_mixup_pairs(n, d, xa2, xb, 0.4, &r, xa2, lam2), LT_OK);
    assert_memory_equal(xa2, xm, sizeof xm);
    /* in-batch: perm first, then the lambdas; ya = y, yb = y[perm] */
    int32_t y[n] = {0, 1, 2, 3, 4, 5}, perm[n], ya[n], yb[n];
    lt_rng_init(&r, 4, 7);
    q = r;
    assert_int_equal(lt_mixup_batch(n, d, xa, y, 1.0, &r, perm, xm, ya, yb, lam), LT_OK);
    int32_t p2[n] = {0, 1, 2, 3, 4, 5}, seen[n] = {0};
    lt_rng_shuffle_i32(&q, p2, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(perm[i], p2[i]);
        seen[perm[i]]++;
        assert_int_equal(ya[i], y[i]);
        assert_int_equal(yb[i], y[perm[i]]);
        const float l = (float)lt_rng_beta(&q, 1.0, 1.0);
        assert_true(lam[i] == l);
        for (int k = 0; k < d; k++)
            assert_float_equal(xm[i * d + k], l * xa[i * d + k] + (1 - l) * xa[perm[i] * d + k], 1e-6);
    }
    for (int i = 0; i < n; i++) assert_int_equal(seen[i], 1);
    assert_int_equal(lt_mixup_batch(n, d, xa, y, 1.0, &r, perm, xa + d, ya, yb, lam), LT_EINVAL);
    /* alpha 0: no mixing */
    assert_int_equal(lt_mixup_pairs(n, d, xa, xb, 0.0, NULL, xm, lam), LT_OK);
    assert_memory_equal(xm, xa, sizeof xa);
}

typedef struct { int N, C; float *z; const int32_t *ya, *yb; const float *lam; } mce_ctx;
static double mce_loss(void *p)
{
    mce_ctx *c = p;
    double L;
    assert_int_equal(lt_mixup_ce(c->N, c->C, c->z, c->ya, c->yb, c->lam, &L, NULL), LT_OK);
    return L;
}

static void test_mixup_ce(void **state)
{
    (void)state;
    enum { N = 4, C = 5 };
    float z[N * C], g[N * C];
    gc_fill(z, N * C, 5, -3, 3);
    const int32_t ya[N] = {0, 2, 4, 1}, yb[N] = {3, 2, 0, 4};
    const float lam[N] = {0.3f, 0.9f, 1.0f, 0.0f};
    double L;
    assert_int_equal(lt_mixup_ce(N, C, z, ya, yb, lam, &L, g), LT_OK);
    double ref = 0;
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < C; j++) s += exp(z[i * C + j]);
        ref += -lam[i] * log(exp(z[i * C + ya[i]]) / s) - (1 - lam[i]) * log(exp(z[i * C + yb[i]]) / s);
    }
    assert_float_equal(L, ref / N, 1e-6);
    mce_ctx c = {N, C, z, ya, yb, lam};
    assert_int_equal(gc_check("mixup_ce dz", mce_loss, &c, z, g, N * C, &LOSS_TOL), 0);
    /* lam = 1 is plain CE */
    const float ones[N] = {1, 1, 1, 1};
    double L1, L2;
    assert_int_equal(lt_mixup_ce(N, C, z, ya, yb, ones, &L1, NULL), LT_OK);
    assert_int_equal(lt_softmax_ce(N, C, z, ya, NULL, NULL, &L2, NULL), LT_OK);
    assert_float_equal(L1, L2, 1e-9);
}

/* ---- EMA ------------------------------------------------------------------------ */

/* input 3x2x2 -> conv 1x1 (4) -> bn -> gap "feat" [-> linear "logits"] */
static lt_model *small_model(int with_head, int conv_out, uint64_t seed)
{
    lt_model *m;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 3, 2, 2}), LT_OK);
    int c = lt_add_conv(m, "conv", "backbone", 0, conv_out, 1, 1, 0, 1, 0);
    int b = lt_add_bn(m, "bn", "backbone", c);
    int f = lt_add_gap(m, "feat", "backbone", b);
    if (with_head) assert_true(lt_add_linear(m, "logits", "head", f, 3, 1) > 0);
    assert_int_equal(lt_model_finalize(m, seed), LT_OK);
    assert_int_equal(lt_model_set_batch(m, 4), LT_OK);
    return m;
}

static void snapshot(lt_model *m, float *w, float *b)
{
    size_t o = 0;
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info p;
        lt_model_param_at(m, i, &p);
        memcpy(w + o, p.w, p.count * sizeof(float));
        o += p.count;
    }
    o = 0;
    for (int i = 0; i < lt_model_n_buffers(m); i++) {
        lt_buffer_info bi;
        lt_model_buffer_at(m, i, &bi);
        memcpy(b + o, bi.data, bi.count * sizeof(float));
        o += bi.count;
    }
}

static void test_ema(void **state)
{
    (void)state;
    lt_model *q = small_model(1, 4, 1), *k = small_model(0, 4, 2), *bad = small_model(0, 5, 3);
    lt_ema *e;
    assert_int_equal(lt_ema_create(&e, bad, q, LT_EMA_BUF_KEEP), LT_EINVAL);   /* conv sizes differ */
    assert_null(e);
    assert_int_equal(lt_ema_create(&e, q, k, LT_EMA_BUF_KEEP), LT_EINVAL);     /* k lacks "logits" */
    /* buffers of q differ from their initial values so the modes tell apart */
    float *rm = lt_model_param_data(q, "bn.weight");
    assert_non_null(rm);
    lt_buffer_info bq, bk;
    for (int i = 0; i < lt_model_n_buffers(q); i++) {
        lt_model_buffer_at(q, i, &bq);
        for (size_t j = 0; j < bq.count; j++) bq.data[j] = 0.25f * (float)(i + 1) + 0.01f * (float)j;
    }
    const size_t nkw = 4 * 3 + 4 + 4, nkb = 8;   /* conv w, bn w, bn b; running mean, var */
    float w0[32], b0[16], w1[32], b1[16], wq[64], bqs[16];
    for (int mode = 0; mode < 3; mode++) {
        lt_model_free(k);
        k = small_model(0, 4, 2);
        assert_int_equal(lt_ema_create(&e, k, q, mode), LT_OK);
        snapshot(k, w0, b0);
        snapshot(q, wq, bqs);   /* q's params in its order: conv, bn (same as k), then logits */
        const float m = 0.9f;
        assert_int_equal(lt_ema_update(e, m), LT_OK);
        snapshot(k, w1, b1);
        for (size_t j = 0; j < nkw; j++) assert_true(w1[j] == w0[j] * m + wq[j] * (1.0f - m));
        for (size_t j = 0; j < nkb; j++) {
            const float want = mode == LT_EMA_BUF_KEEP ? b0[j] : mode == LT_EMA_BUF_COPY ? bqs[j] : b0[j] * m + bqs[j] * (1.0f - m);
            assert_true(b1[j] == want);
        }
        /* copy: exact, buffers included */
        assert_int_equal(lt_ema_copy(e), LT_OK);
        snapshot(k, w1, b1);
        assert_memory_equal(w1, wq, nkw * sizeof(float));
        assert_memory_equal(b1, bqs, nkb * sizeof(float));
        /* the source never changes */
        float wq2[64], bq2[16];
        snapshot(q, wq2, bq2);
        assert_memory_equal(wq2, wq, (nkw + 3 * 4 + 3) * sizeof(float));
        assert_int_equal(lt_ema_update(e, 1.5f), LT_EINVAL);
        lt_ema_free(e);
    }
    (void)bk;
    lt_model_free(q);
    lt_model_free(k);
    lt_model_free(bad);
}

/* ---- key queue ---------------------------------------------------------------- */

static void test_keyqueue(void **state)
{
    (void)state;
    lt_keyqueue q;
    lt_rng r;
    lt_rng_init(&r, 1, LT_STREAM_METHOD);
    assert_int_equal(lt_keyqueue_init(&q, 5, 3, -1, &r), LT_OK);
    for (int i = 0; i < 5; i++) {
        double s = 0;
        for (int j = 0; j < 3; j++) s += (double)q.keys[i * 3 + j] * q.keys[i * 3 + j];
        assert_float_equal(s, 1.0, 1e-6);
        assert_int_equal(q.labels[i], -1);
    }
    float k[7 * 3];
    int32_t y[7];
    for (int i = 0; i < 7; i++) {
        y[i] = 10 + i;
        for (int j = 0; j < 3; j++) k[i * 3 + j] = (float)(100 * i + j);
    }
    /* 3 in: slots 0..2, ptr 3 */
    assert_int_equal(lt_keyqueue_push(&q, 3, k, y), LT_OK);
    assert_int_equal(q.ptr, 3);
    /* 4 more (rows 3..6): slots 3, 4, then wrap to 0, 1; ptr 2 */
    assert_int_equal(lt_keyqueue_push(&q, 4, k + 9, y + 3), LT_OK);
    assert_int_equal(q.ptr, 2);
    const int32_t want[5] = {15, 16, 12, 13, 14};
    for (int s = 0; s < 5; s++) {
        assert_int_equal(q.labels[s], want[s]);
        assert_true(q.keys[s * 3 + 1] == (float)(100 * (want[s] - 10) + 1));
    }
    /* checkpoint round trip */
    char path[] = "/tmp/lt_test_kit_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, path), LT_OK);
    assert_int_equal(lt_keyqueue_save(&q, w, "queue/"), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    /* overflow: 7 rows into 5 slots keeps rows 2..6 in FIFO order */
    assert_int_equal(lt_keyqueue_push(&q, 7, k, y), LT_OK);
    assert_int_equal(q.ptr, (2 + 7) % 5);
    for (int t = 0; t < 5; t++) assert_int_equal(q.labels[(q.ptr + t) % 5], 12 + t);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, path), LT_OK);
    assert_int_equal(lt_keyqueue_load(&q, c, "queue/"), LT_OK);
    assert_int_equal(q.ptr, 2);
    for (int s = 0; s < 5; s++) assert_int_equal(q.labels[s], want[s]);
    lt_ckpt_free(c);
    unlink(path);
    lt_keyqueue_free(&q);
}

/* ---- masked contrastive --------------------------------------------------------- */

typedef struct { int N, M; float *z; const uint8_t *mask; } con_ctx;
static double con_loss(void *p)
{
    con_ctx *c = p;
    double L;
    assert_int_equal(lt_masked_contrast(c->N, c->M, c->z, c->mask, &L, NULL, NULL), LT_OK);
    return L;
}

static void test_masked_contrast(void **state)
{
    (void)state;
    enum { N = 4, K = 6, M = K + 1 };
    const int32_t y[N] = {0, 1, 2, 1}, ql[K] = {1, 0, 1, 2, -1, 0};
    uint8_t mask[N * M];
    lt_queue_contrast_mask(N, y, K, ql, mask);
    for (int i = 0; i < N; i++) {
        assert_int_equal(mask[i * M], LT_CON_DENOM | LT_CON_POS);
        for (int j = 0; j < K; j++) assert_int_equal(mask[i * M + 1 + j], ql[j] != y[i] ? LT_CON_DENOM : 0);
    }
    float z[N * M], g[N * M];
    gc_fill(z, N * M, 7, -2, 2);
    double L;
    int nv;
    assert_int_equal(lt_masked_contrast(N, M, z, mask, &L, g, &nv), LT_OK);
    assert_int_equal(nv, N);
    /* SSD's loss written out: -[l+ - log(exp(l+) + sum_{y_j != y} exp(l_j))] */
    double ref = 0;
    for (int i = 0; i < N; i++) {
        double s = exp(z[i * M]);
        for (int j = 0; j < K; j++)
            if (ql[j] != y[i]) s += exp(z[i * M + 1 + j]);
        ref += -(z[i * M] - log(s));
    }
    assert_float_equal(L, ref / N, 1e-6);
    con_ctx c = {N, M, z, mask};
    assert_int_equal(gc_check("masked_contrast dz", con_loss, &c, z, g, N * M, &LOSS_TOL), 0);
    /* SupCon with several positives and a row without any */
    uint8_t m2[N * M];
    for (int k = 0; k < N * M; k++) m2[k] = (uint8_t)(LT_CON_DENOM | ((k % 3 == 0) ? LT_CON_POS : 0));
    for (int j = 0; j < M; j++) m2[2 * M + j] = LT_CON_DENOM;   /* row 2: no positive */
    assert_int_equal(lt_masked_contrast(N, M, z, m2, &L, g, &nv), LT_OK);
    assert_int_equal(nv, N - 1);
    for (int j = 0; j < M; j++) assert_true(g[2 * M + j] == 0.0f);
    c.mask = m2;
    assert_int_equal(gc_check("supcon dz", con_loss, &c, z, g, N * M, &LOSS_TOL), 0);
    /* stable at large logits: 1/tau = 1/0.07 on |q.k| <= 1 is small, but
     * shifted logits of 1000 must not overflow */
    for (int k = 0; k < N * M; k++) z[k] += 1000.0f;
    double L3, lse[N];
    assert_int_equal(lt_masked_contrast(N, M, z, mask, &L3, g, NULL), LT_OK);
    assert_true(isfinite(L3));
    lt_masked_lse(N, M, z, mask, LT_CON_DENOM, lse);
    for (int i = 0; i < N; i++) assert_true(isfinite(lse[i]) && lse[i] >= 1000.0);
    uint8_t none[M] = {0};
    lt_masked_lse(1, M, z, none, LT_CON_DENOM, lse);
    assert_true(lse[0] == -INFINITY);
}

/* ---- distillation --------------------------------------------------------------- */

typedef struct { int N, C; float *s; const float *t; float T; float *ws; } kd_ctx;
static double kd_loss(void *p)
{
    kd_ctx *c = p;
    double L;
    assert_int_equal(lt_kd_loss(c->N, c->C, c->s, c->t, c->T, c->ws, &L, NULL), LT_OK);
    return L;
}

typedef struct { int N, D; float *a; const float *b; } cd_ctx;
static double cd_loss(void *p)
{
    cd_ctx *c = p;
    double L;
    assert_int_equal(lt_cosine_distance(c->N, c->D, c->a, c->b, 1e-8f, &L, NULL, NULL), LT_OK);
    return L;
}

static void test_kd_and_cosine_distill(void **state)
{
    (void)state;
    enum { N = 3, C = 6 };
    float s[N * C], t[N * C], t0[N * C], ws[N * C], g[N * C];
    gc_fill(s, N * C, 11, -3, 3);
    gc_fill(t, N * C, 12, -4, 4);
    memcpy(t0, t, sizeof t);
    const float Ts[] = {1.0f, 2.0f, 4.0f};
    for (int k = 0; k < 3; k++) {
        const double T = Ts[k];
        double L;
        assert_int_equal(lt_kd_loss(N, C, s, t, Ts[k], ws, &L, g), LT_OK);
        double ref = 0;
        for (int i = 0; i < N; i++) {
            double zs = 0, zt = 0;
            for (int j = 0; j < C; j++) { zs += exp(s[i * C + j] / T); zt += exp(t[i * C + j] / T); }
            for (int j = 0; j < C; j++) {
                const double pt = exp(t[i * C + j] / T) / zt, ps = exp(s[i * C + j] / T) / zs;
                ref += pt * log(pt / ps);
            }
        }
        ref *= T * T / N;
        assert_float_equal(L, ref, 1e-6);
        /* gradient T (p_s - p_t) / N, checked by finite differences */
        kd_ctx c = {N, C, s, t, Ts[k], ws};
        char what[64];
        snprintf(what, sizeof what, "kd T=%g ds", T);
        assert_int_equal(gc_check(what, kd_loss, &c, s, g, N * C, &LOSS_TOL), 0);
        assert_memory_equal(t, t0, sizeof t);   /* the teacher is a constant */
    }
    /* identical logits: no loss, no gradient */
    double L0;
    assert_int_equal(lt_kd_loss(N, C, t, t, 2.0f, ws, &L0, g), LT_OK);
    assert_float_equal(L0, 0, 1e-6);   /* float probabilities: ~1e-8 */
    /* cosine feature distillation (CBD): 1/N sum (1 - cos) */
    enum { D = 5 };
    float a[N * D], b[N * D], ga[N * D], bn[N * D];
    gc_fill(a, N * D, 13, -1, 1);
    gc_fill(b, N * D, 14, -1, 1);
    double L;
    assert_int_equal(lt_cosine_distance(N, D, a, b, 1e-8f, &L, ga, NULL), LT_OK);
    double ref = 0;
    for (int i = 0; i < N; i++) {
        double ab = 0, aa = 0, bb = 0;
        for (int j = 0; j < D; j++) { ab += a[i * D + j] * b[i * D + j]; aa += a[i * D + j] * a[i * D + j]; bb += b[i * D + j] * b[i * D + j]; }
        ref += 1 - ab / sqrt(aa * bb);
    }
    assert_float_equal(L, ref / N, 1e-6);
    cd_ctx cc = {N, D, a, b};
    assert_int_equal(gc_check("cosine distill da", cd_loss, &cc, a, ga, N * D, &LOSS_TOL), 0);
    /* normalised rows (CBD's teacher feature): unit norm, same direction */
    lt_l2_normalize_rows(N, D, b, 1e-12f, bn);
    for (int i = 0; i < N; i++) {
        double nn = 0;
        for (int j = 0; j < D; j++) nn += (double)bn[i * D + j] * bn[i * D + j];
        assert_float_equal(nn, 1, 1e-6);
    }
    double L2;
    assert_int_equal(lt_cosine_distance(N, D, a, bn, 1e-8f, &L2, NULL, NULL), LT_OK);
    assert_float_equal(L2, L, 1e-6);
}

/* ---- cosine classifier ------------------------------------------------------------ */

typedef struct { lt_model *m; int out; const float *x, *r; int N, nout; } cm_ctx;   /* nout: the output's width */
static double cm_loss(void *p)
{
    cm_ctx *c = p;
    assert_int_equal(lt_model_forward(c->m, c->x, c->N, 1), LT_OK);
    return gc_dot(lt_model_out(c->m, c->out), c->r, (size_t)c->N * c->nout);
}

static void test_cosine_learned(void **state)
{
    (void)state;
    enum { N = 3, IN = 6, OUT = 5 };
    lt_model *m;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, IN, 1, 1}), LT_OK);
    const int pre = lt_add_scale(m, "pre", "backbone", 0);   /* its gradient is the cosine's dx, scaled */
    const int cos = lt_add_cosine_learned(m, "cos", "head", pre, OUT, 16.0f);
    const int fix = lt_add_cosine(m, "fix", "head", pre, OUT, 16.0f);
    assert_true(pre > 0 && cos > 0 && fix > 0);
    assert_int_equal(lt_model_finalize(m, 5), LT_OK);
    assert_int_equal(lt_model_set_batch(m, N), LT_OK);
    float x[N * IN], r[N * OUT];
    gc_fill(x, N * IN, 21, -1, 1);
    gc_fill(r, N * OUT, 22, -1, 1);
    float *pw = lt_model_param_data(m, "pre.scale"), *W = lt_model_param_data(m, "cos.weight"),
          *sp = lt_model_param_data(m, "cos.scale");
    assert_non_null(pw); assert_non_null(W); assert_non_null(sp);
    assert_true(sp[0] == 1.0f);
    lt_param_info pi;
    assert_int_equal(lt_model_param_find(m, "cos.scale", &pi), LT_OK);
    assert_true(pi.flags & LT_MASK_NO_DECAY);
    memcpy(lt_model_param_data(m, "fix.weight"), W, sizeof(float) * OUT * IN);
    for (int k = 0; k < IN; k++) pw[k] = 0.5f + 0.1f * (float)k;
    sp[0] = 1.3f;
    assert_int_equal(lt_model_forward(m, x, N, 1), LT_OK);
    const float *y = lt_model_out(m, cos), *yf = lt_model_out(m, fix);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < OUT; j++) {
            double xw = 0, xx = 0, ww = 0;
            for (int k = 0; k < IN; k++) {
                const double xi = (double)pw[k] * x[i * IN + k];
                xw += xi * W[j * IN + k]; xx += xi * xi; ww += (double)W[j * IN + k] * W[j * IN + k];
            }
            assert_float_equal(y[i * OUT + j], 16.0 * 1.3 * xw / sqrt(xx * ww), 1e-4);
            assert_float_equal(yf[i * OUT + j], 16.0 * xw / sqrt(xx * ww), 1e-4);
        }
    /* gradients of the projection loss sum(y * r) on the learned head */
    lt_model_zero_grad(m);
    memcpy(lt_model_dout(m, cos), r, sizeof r);
    memset(lt_model_dout(m, fix), 0, sizeof r);
    const int taps[2] = {cos, fix};
    assert_int_equal(lt_model_backward(m, N, taps, 2), LT_OK);
    const size_t nw = OUT * IN;
    float gpre[IN], gW[OUT * IN], gs;
    lt_model_param_find(m, "pre.scale", &pi);
    memcpy(gpre, pi.g, sizeof gpre);
    lt_model_param_find(m, "cos.weight", &pi);
    memcpy(gW, pi.g, sizeof gW);
    lt_model_param_find(m, "cos.scale", &pi);
    gs = pi.g[0];
    cm_ctx c = {m, cos, x, r, N, OUT};
    assert_int_equal(gc_check("cosine_learned dx (via pre.scale)", cm_loss, &c, pw, gpre, IN, &NONLIN_TOL), 0);
    assert_int_equal(gc_check("cosine_learned dW", cm_loss, &c, W, gW, nw, &NONLIN_TOL), 0);
    assert_int_equal(gc_check("cosine_learned ds", cm_loss, &c, sp, &gs, 1, &NONLIN_TOL), 0);
    /* the scale's gradient at s = 0 still flows (cosines are saved) */
    sp[0] = 0.0f;
    cm_loss(&c);
    lt_model_zero_grad(m);
    memcpy(lt_model_dout(m, cos), r, sizeof r);
    assert_int_equal(lt_model_backward(m, N, taps, 2), LT_OK);
    assert_true(isfinite(pi.g[0]) && pi.g[0] != 0.0f);   /* NaN != 0 would pass alone */
    /* exported shape [out, in] like the other classifiers */
    int64_t dims[4];
    int nd = 0;
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info q;
        lt_model_param_at(m, i, &q);
        if (!strcmp(q.name, "cos.weight")) {
            assert_int_equal(lt_model_param_shape(m, i, dims, &nd), LT_OK);
            assert_int_equal(nd, 2);
            assert_int_equal(dims[0], OUT);
            assert_int_equal(dims[1], IN);
        }
    }
    lt_model_free(m);
}

/* The scale layer's input gradient dx = dy * s: its input is a linear
 * layer's output, so the linear's weight and bias gradients are the scale's
 * dx passed back (the cosine case above feeds the scale the model input,
 * whose dx is not kept). s != 1 per feature, one negative, so dx = dy or a
 * permuted s fails. */
static void test_scale_dx(void **state)
{
    (void)state;
    enum { N = 3, IN = 4, H = 5 };
    static const gc_opts LIN_TOL = {1e-2, 5e-3, 2e-4, 0};
    lt_model *m;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, IN, 1, 1}), LT_OK);
    const int fc = lt_add_linear(m, "fc", "backbone", 0, H, 1);
    const int sc = lt_add_scale(m, "sc", "head", fc);
    assert_true(fc > 0 && sc > 0);
    assert_int_equal(lt_model_finalize(m, 7), LT_OK);
    assert_int_equal(lt_model_set_batch(m, N), LT_OK);
    float x[N * IN], r[N * H];
    gc_fill(x, N * IN, 31, -1, 1);
    gc_fill(r, N * H, 32, -1, 1);
    float *W = lt_model_param_data(m, "fc.weight"), *b = lt_model_param_data(m, "fc.bias"),
          *s = lt_model_param_data(m, "sc.scale");
    assert_non_null(W); assert_non_null(b); assert_non_null(s);
    static const float sv[H] = {2.5f, 0.4f, -1.5f, 3.0f, 0.7f};
    memcpy(s, sv, sizeof sv);
    gc_fill(b, H, 33, -0.5f, 0.5f);
    /* forward: y = s * (W x + b) */
    assert_int_equal(lt_model_forward(m, x, N, 1), LT_OK);
    const float *y = lt_model_out(m, sc);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < H; j++) {
            double z = b[j];
            for (int k = 0; k < IN; k++) z += (double)W[j * IN + k] * x[i * IN + k];
            assert_true(fabs(y[i * H + j] - sv[j] * z) <= 1e-5 * (1 + fabs(sv[j] * z)));
        }
    lt_model_zero_grad(m);
    memcpy(lt_model_dout(m, sc), r, sizeof r);
    const int taps[1] = {sc};
    assert_int_equal(lt_model_backward(m, N, taps, 1), LT_OK);
    float gW[H * IN], gb[H], gs[H];
    lt_param_info pi;
    assert_int_equal(lt_model_param_find(m, "fc.weight", &pi), LT_OK);
    memcpy(gW, pi.g, sizeof gW);
    assert_int_equal(lt_model_param_find(m, "fc.bias", &pi), LT_OK);
    memcpy(gb, pi.g, sizeof gb);
    assert_int_equal(lt_model_param_find(m, "sc.scale", &pi), LT_OK);
    memcpy(gs, pi.g, sizeof gs);
    cm_ctx c = {m, sc, x, r, N, H};
    assert_int_equal(gc_check("scale dx (via fc.weight)", cm_loss, &c, W, gW, H * IN, &LIN_TOL), 0);
    assert_int_equal(gc_check("scale dx (via fc.bias)", cm_loss, &c, b, gb, H, &LIN_TOL), 0);
    assert_int_equal(gc_check("scale ds", cm_loss, &c, s, gs, H, &LIN_TOL), 0);
    /* the bias gradient is the scale's dx summed over the batch: sum_i r s */
    for (int j = 0; j < H; j++) {
        double want = 0;
        for (int i = 0; i < N; i++) want += (double)r[i * H + j] * sv[j];
        assert_true(fabs(gb[j] - want) <= 1e-5 * (1 + fabs(want)));
    }
    lt_model_free(m);
}

/* ---- CAMs -------------------------------------------------------------------------- */

/* PyTorch interpolate(bilinear, align_corners=False), written from its formula in double */
static double ref_bilinear(const double *in, int H, int W, int oh, int ow, int y, int x)
{
    double sy = (y + 0.5) * H / oh - 0.5, sx = (x + 0.5) * W / ow - 0.5;
    if (sy < 0) sy = 0;
    if (sx < 0) sx = 0;
    int y0 = (int)floor(sy), x0 = (int)floor(sx);
    if (y0 > H - 1) y0 = H - 1;
    if (x0 > W - 1) x0 = W - 1;
    int y1 = y0 + 1 < H ? y0 + 1 : H - 1, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
    double ly = sy - y0, lx = sx - x0;
    return (1 - ly) * ((1 - lx) * in[y0 * W + x0] + lx * in[y0 * W + x1]) +
           ly * ((1 - lx) * in[y1 * W + x0] + lx * in[y1 * W + x1]);
}

static void test_cam(void **state)
{
    (void)state;
    enum { N = 2, K = 4, H = 3, W = 4, C = 3, OH = 7, OW = 9 };
    float F[N * K * H * W], Wc[C * K], cam[N * OH * OW], ws[H * W];
    gc_fill(F, N * K * H * W, 31, 0, 2);
    gc_fill(Wc, C * K, 32, -1, 1);
    const int32_t cls[N] = {2, 0};
    assert_int_equal(lt_cam(N, K, H, W, F, C, Wc, cls, OH, OW, cam, ws), LT_OK);
    for (int i = 0; i < N; i++) {
        double lo[H * W], up[OH * OW], mn = INFINITY, mx = -INFINITY;
        for (int p = 0; p < H * W; p++) {
            lo[p] = 0;
            for (int k = 0; k < K; k++) lo[p] += (double)Wc[cls[i] * K + k] * F[((i * K) + k) * H * W + p];
        }
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                double v = ref_bilinear(lo, H, W, OH, OW, y, x);
                up[y * OW + x] = v;
                mn = fmin(mn, v);
                mx = fmax(mx, v);
            }
        for (int p = 0; p < OH * OW; p++) assert_float_equal(cam[i * OH * OW + p], (up[p] - mn) / (mx - mn), 1e-4);
    }
    /* same size: no resampling, just the weighted sum, min-max normalised;
     * a constant map gives zeros */
    float cam2[N * H * W];
    assert_int_equal(lt_cam(N, K, H, W, F, C, Wc, cls, H, W, cam2, ws), LT_OK);
    float flat[K * H * W];
    for (int k = 0; k < K * H * W; k++) flat[k] = 3.0f;
    assert_int_equal(lt_cam(1, K, H, W, flat, C, Wc, cls, OH, OW, cam, ws), LT_OK);
    for (int p = 0; p < OH * OW; p++) assert_true(cam[p] == 0.0f);
    const int32_t badc[1] = {C};
    assert_int_equal(lt_cam(1, K, H, W, F, C, Wc, badc, OH, OW, cam, ws), LT_EINVAL);
}

/* ---- frozen teacher BN mode ------------------------------------------------------------
 * The host's teacher service (harness/lt_run_host.c svc_teacher) freezes
 * every parameter and calls lt_model_set_eval(m, NULL, !bn_train): checked
 * here on a model with BN. bn_train = 0: a training forward equals the
 * inference forward and the running statistics stay; bn_train = 1 (SSD's
 * stage-III teacher): batch statistics, the running statistics move; in
 * both modes the parameters never change and no gradient is produced. */
static void test_teacher_bn_modes(void **state)
{
    (void)state;
    float x[4 * 12];
    gc_fill(x, 4 * 12, 41, -2, 3);
    for (int bn_train = 0; bn_train < 2; bn_train++) {
        lt_model *t = small_model(1, 4, 7);
        assert_int_equal(lt_model_freeze(t, NULL, 1), LT_OK);
        assert_int_equal(lt_model_set_eval(t, NULL, !bn_train), LT_OK);
        const int lg = lt_model_find(t, "logits");
        float w0[64], b0[16], w1[64], b1[16], ye[12], yt[12];
        snapshot(t, w0, b0);
        assert_int_equal(lt_model_forward(t, x, 4, 0), LT_OK);
        memcpy(ye, lt_model_out(t, lg), sizeof ye);
        assert_int_equal(lt_model_forward(t, x, 4, 1), LT_OK);
        memcpy(yt, lt_model_out(t, lg), sizeof yt);
        lt_model_zero_grad(t);
        memset(lt_model_dout(t, lg), 0, sizeof yt);
        lt_model_dout(t, lg)[0] = 1.0f;
        assert_int_equal(lt_model_backward(t, 4, &lg, 1), LT_OK);
        snapshot(t, w1, b1);
        assert_memory_equal(w0, w1, sizeof(float) * (12 + 4 + 4 + 12 + 3));
        for (int i = 0; i < lt_model_n_params(t); i++) {
            lt_param_info p;
            lt_model_param_at(t, i, &p);
            assert_true(p.flags & LT_MASK_FROZEN);
        }
        if (!bn_train) {
            assert_memory_equal(ye, yt, sizeof ye);
            assert_memory_equal(b0, b1, sizeof(float) * 8);
        } else {
            /* batch statistics: other outputs, moved running statistics;
             * numbers, since NaNs would differ bytewise too */
            for (int i = 0; i < 12; i++) assert_true(isfinite(yt[i]));
            for (int i = 0; i < 8; i++) assert_true(isfinite(b1[i]));
            assert_true(memcmp(ye, yt, sizeof ye) != 0);
            assert_true(memcmp(b0, b1, sizeof(float) * 8) != 0);
        }
        lt_model_free(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_beta_moments),
        cmocka_unit_test(test_mixup),
        cmocka_unit_test(test_mixup_ce),
        cmocka_unit_test(test_ema),
        cmocka_unit_test(test_keyqueue),
        cmocka_unit_test(test_masked_contrast),
        cmocka_unit_test(test_kd_and_cosine_distill),
        cmocka_unit_test(test_cosine_learned),
        cmocka_unit_test(test_scale_dx),
        cmocka_unit_test(test_cam),
        cmocka_unit_test(test_teacher_bn_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
