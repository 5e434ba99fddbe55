/* test_method_balms.c — BALMS (Balanced Meta-Softmax with the Meta Sampler).
 *
 * The method's static helpers are tested white-box (the method source is
 * included below with its entry point renamed, so it does not clash with the
 * copy linked into every test binary); the hooks are called the way the
 * runner calls them, on a tiny model built with the engine.
 *   - the closed-form meta-gradient dL_meta/dw against finite differences of
 *     a double-precision re-implementation of the official computation (a
 *     differentiable SGD step of the linear classifier with momentum, weight
 *     decay, optionally Nesterov; straight-through Gumbel-softmax selection
 *     weights with explicit noise; plain CE on a meta batch);
 *   - the conditional Gumbel draw of the soft masses against brute-force
 *     unconditional Gumbel-softmax rows (same conditional means);
 *   - the full meta step through the loss hook (expected soft mass) against
 *     finite differences of the score-function reference, and the Adam step;
 *   - initialisation of w for init_pow = 0 (q = 1/2) and > 0;
 *   - the Balanced Softmax part equals plain CE for uniform counts;
 *   - the per-batch redraw: images and labels agree, class frequencies follow
 *     n_c sigmoid(w_c);
 *   - save/load restores the state and a resumed step equals an
 *     uninterrupted one; results do not depend on the thread count;
 *   - hyper-parameter checks and defaults.json. */
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
#include <unistd.h>

#include "gradcheck.h"
#include "lt.h"
#include "lt_method.h"
#include "lt_run_internal.h"

#define lt_method_balms balms_entry_under_test
#include "../methods/balms/method.c"
#include "lt_model_impl.h"   /* white-box: the model's structs */
#undef lt_method_balms
const lt_method *lt_method_balms(void);

/* ---- shared helpers ----------------------------------------------------------- */

static double gumbel(lt_rng *r) { return -log(-log1p(-lt_rng_uniform(r))); }

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* CE (mean) of a [n x C] logit matrix in double. */
static double ce_rows(int n, int C, const double *z, const int32_t *y) {
    double L = 0;
    for (int i = 0; i < n; i++) {
        double mx = -INFINITY, s = 0;
        for (int c = 0; c < C; c++) mx = fmax(mx, z[i * C + c]);
        for (int c = 0; c < C; c++) s += exp(z[i * C + c] - mx);
        L += mx + log(s) - z[i * C + y[i]];
    }
    return L / n;
}

/* ---- 1. the closed-form meta-gradient against finite differences ------------- */

enum { FC = 4, FD = 3, FB = 6, FN = 12, FM = 8 };
static const long f_counts[FC] = {5, 4, 2, 1};

typedef struct {
    float w[FC];                     /* perturbed by gc_check */
    double w0[FC];
    int32_t img_lab[FN];             /* labels of the FN training images */
    double g[FB][FN];                /* Gumbel noise of each slot's row */
    int k[FB];                       /* the drawn image of each slot */
    int32_t y[FB];
    double s0[FB];                   /* s_{b,k_b} at w0 */
    float feat[FB * FD], mfeat[FM * FD];
    int32_t mlab[FM];
    float W[FC * FD], bias[FC], bufW[FC * FD], bufb[FC];
    float lr, mom, wd;
    int nesterov;
} fd_ctx;

static void soft_row(const fd_ctx *c, const double *w, int b, double *s) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < FN; i++) {
        s[i] = log(sigm(w[c->img_lab[i]])) + c->g[b][i];
        mx = fmax(mx, s[i]);
    }
    for (int i = 0; i < FN; i++) sum += (s[i] = exp(s[i] - mx));
    for (int i = 0; i < FN; i++) s[i] /= sum;
}

/* The official computation in double: v_b = 1 + s_{b,k_b}(w) - s_{b,k_b}(w0)
 * (value 1, straight-through gradient), inner loss (1/B) sum v_b l_b with l_b
 * the Balanced Softmax loss, one SGD step (momentum buffer, weight decay,
 * Nesterov as torch.optim.SGD), then plain CE on the meta batch. */
static double ref_meta_loss(void *p) {
    const fd_ctx *c = p;
    double w[FC], th[FC * (FD + 1)], g[FC * (FD + 1)] = {0};
    for (int j = 0; j < FC; j++) w[j] = c->w[j];
    for (int j = 0; j < FC; j++) {
        for (int d = 0; d < FD; d++) th[j * (FD + 1) + d] = c->W[j * FD + d];
        th[j * (FD + 1) + FD] = c->bias[j];
    }
    for (int b = 0; b < FB; b++) {
        double s[FN];
        soft_row(c, w, b, s);
        double v = 1.0 + s[c->k[b]] - c->s0[b];
        double z[FC], mx = -INFINITY, sum = 0;
        for (int j = 0; j < FC; j++) {
            z[j] = th[j * (FD + 1) + FD] + log((double)f_counts[j]);
            for (int d = 0; d < FD; d++) z[j] += th[j * (FD + 1) + d] * c->feat[b * FD + d];
            mx = fmax(mx, z[j]);
        }
        for (int j = 0; j < FC; j++) sum += (z[j] = exp(z[j] - mx));
        for (int j = 0; j < FC; j++) {
            double r = z[j] / sum - (j == c->y[b]);
            for (int d = 0; d < FD; d++) g[j * (FD + 1) + d] += v * r * c->feat[b * FD + d] / FB;
            g[j * (FD + 1) + FD] += v * r / FB;
        }
    }
    double th1[FC * (FD + 1)];
    for (int i = 0; i < FC * (FD + 1); i++) {
        int j = i / (FD + 1), d = i % (FD + 1);
        double buf = d < FD ? c->bufW[j * FD + d] : c->bufb[j];
        double gp = g[i] + c->wd * th[i];
        double nb = c->mom * buf + gp;
        th1[i] = th[i] - c->lr * (c->nesterov ? gp + c->mom * nb : nb);
    }
    double z[FM * FC];
    for (int m = 0; m < FM; m++)
        for (int j = 0; j < FC; j++) {
            z[m * FC + j] = th1[j * (FD + 1) + FD];
            for (int d = 0; d < FD; d++) z[m * FC + j] += th1[j * (FD + 1) + d] * c->mfeat[m * FD + d];
        }
    return ce_rows(FM, FC, z, c->mlab);
}

static void fd_setup(fd_ctx *c, unsigned seed, int nesterov) {
    memset(c, 0, sizeof *c);
    int i = 0;
    for (int j = 0; j < FC; j++)
        for (long k = 0; k < f_counts[j]; k++) c->img_lab[i++] = j;
    gc_fill(c->w, FC, seed, -1.5f, 1.5f);
    for (int j = 0; j < FC; j++) c->w0[j] = c->w[j];
    lt_rng r;
    lt_rng_init(&r, seed, 77);
    for (int b = 0; b < FB; b++) {
        int best = 0;
        for (int n = 0; n < FN; n++) {
            c->g[b][n] = gumbel(&r);
            double v = log(sigm(c->w0[c->img_lab[n]])) + c->g[b][n];
            double vb = log(sigm(c->w0[c->img_lab[best]])) + c->g[b][best];
            if (v > vb) best = n;
        }
        c->k[b] = best;
        c->y[b] = c->img_lab[best];
        double s[FN];
        soft_row(c, c->w0, b, s);
        c->s0[b] = s[best];
    }
    gc_fill(c->feat, FB * FD, seed + 1, -2, 2);
    gc_fill(c->mfeat, FM * FD, seed + 2, -2, 2);
    for (int m = 0; m < FM; m++) c->mlab[m] = m % FC;
    gc_fill(c->W, FC * FD, seed + 3, -1, 1);
    gc_fill(c->bias, FC, seed + 4, -0.5f, 0.5f);
    gc_fill(c->bufW, FC * FD, seed + 5, -0.3f, 0.3f);
    gc_fill(c->bufb, FC, seed + 6, -0.3f, 0.3f);
    c->lr = 0.5f;   /* large, so the meta loss depends clearly on w */
    c->mom = 0.9f;
    c->wd = 5e-4f;
    c->nesterov = nesterov;
}

/* The method's path: real Balanced Softmax gradient, theta', G, soft masses
 * from the same noise, balms_meta_grad. */
static void fd_analytic(const fd_ctx *c, double *gw) {
    float off[FC], logits[FB * FC], dlog[FB * FC], gW[FC * FD] = {0}, gb[FC] = {0};
    float bufW[FC * FD], bufb[FC], W1[FC * FD], b1[FC], GW[FC * FD], Gb[FC];
    float mlogit[FM * FC], mdz[FM * FC], U[FB * FC], wq[FC];
    double S[FB * FC], skb[FB], dldv[FB], loss, mloss;
    for (int j = 0; j < FC; j++) off[j] = logf((float)f_counts[j]);
    lt_linear_forward(FB, FD, FC, c->feat, c->W, c->bias, logits);
    assert_int_equal(lt_softmax_ce(FB, FC, logits, c->y, off, NULL, &loss, dlog), LT_OK);
    lt_linear_backward(FB, FD, FC, c->feat, c->W, dlog, NULL, gW, gb);
    memcpy(bufW, c->bufW, sizeof bufW);
    memcpy(bufb, c->bufb, sizeof bufb);
    balms_inner_step(FC, FD, c->W, c->bias, gW, gb, bufW, bufb, c->lr, c->mom, c->wd, c->nesterov, 1, 1, W1, b1);
    /* the runner's momentum buffer is read, never written */
    assert_memory_equal(bufb, c->bufb, sizeof bufb);
    assert_int_equal(balms_meta_loss_grad(FM, FC, FD, c->mfeat, c->mlab, W1, b1, mlogit, mdz, &mloss, GW, Gb), LT_OK);
    assert_float_equal(mloss, ref_meta_loss((void *)c), 1e-4);
    for (int b = 0; b < FB; b++) {
        double s[FN];
        soft_row(c, c->w0, b, s);
        for (int j = 0; j < FC; j++) S[b * FC + j] = 0;
        for (int n = 0; n < FN; n++) S[b * FC + c->img_lab[n]] += s[n];
        skb[b] = s[c->k[b]];
    }
    for (int j = 0; j < FC; j++) wq[j] = (float)c->w0[j];
    double kappa = c->nesterov ? 1.0 + c->mom : 1.0;
    balms_meta_grad(FB, FC, FD, c->feat, c->y, dlog, GW, Gb, c->lr * kappa, S, skb, wq, U, dldv, gw);
}

static void test_meta_grad_fd(void **unused) {
    (void)unused;
    for (int nesterov = 0; nesterov <= 1; nesterov++)
        for (unsigned seed = 1; seed <= 3; seed++) {
            fd_ctx c;
            fd_setup(&c, seed * 10 + nesterov, nesterov);
            double gw[FC];
            fd_analytic(&c, gw);
            float gwf[FC];
            double mx = 0;
            for (int j = 0; j < FC; j++) {
                gwf[j] = (float)gw[j];
                mx = lt_tmax(mx, fabs(gw[j]));   /* a NaN stays: fails the signal check */
            }
            assert_true(mx > 1e-5);   /* a real signal, not a vacuous pass */
            gc_opts o = {.eps = 1e-3, .rtol = 2e-3, .atol = 1e-3 * mx, .max_checks = 0};
            assert_int_equal(gc_check("balms dL/dw", ref_meta_loss, &c, c.w, gwf, FC, &o), 0);
        }
}

/* The spec's closed form without the s_{b,k_b} factor is a different
 * gradient: the per-slot factor matters (documents why it is kept). */
static void test_meta_grad_needs_skb(void **unused) {
    (void)unused;
    fd_ctx c;
    fd_setup(&c, 5, 0);
    double fd[FC], gw[FC];
    fd_analytic(&c, gw);
    for (int j = 0; j < FC; j++) {
        float o = c.w[j];
        c.w[j] = o + 1e-3f;
        double p = ref_meta_loss(&c);
        c.w[j] = o - 1e-3f;
        double m = ref_meta_loss(&c);
        c.w[j] = o;
        fd[j] = (p - m) / ((double)(o + 1e-3f) - (double)(o - 1e-3f));
    }
    /* without s_{b,k_b}: */
    double S[FB * FC], one[FB], dldv[FB], g2[FC];
    float off[FC], logits[FB * FC], dlog[FB * FC], gW[FC * FD] = {0}, gb[FC] = {0}, W1[FC * FD], b1[FC];
    float GW[FC * FD], Gb[FC], ml[FM * FC], dz[FM * FC], U[FB * FC], wq[FC], bw[FC * FD], bb[FC];
    double loss, mloss;
    for (int j = 0; j < FC; j++) off[j] = logf((float)f_counts[j]);
    lt_linear_forward(FB, FD, FC, c.feat, c.W, c.bias, logits);
    lt_softmax_ce(FB, FC, logits, c.y, off, NULL, &loss, dlog);
    lt_linear_backward(FB, FD, FC, c.feat, c.W, dlog, NULL, gW, gb);
    memcpy(bw, c.bufW, sizeof bw);
    memcpy(bb, c.bufb, sizeof bb);
    balms_inner_step(FC, FD, c.W, c.bias, gW, gb, bw, bb, c.lr, c.mom, c.wd, 0, 1, 1, W1, b1);
    balms_meta_loss_grad(FM, FC, FD, c.mfeat, c.mlab, W1, b1, ml, dz, &mloss, GW, Gb);
    for (int b = 0; b < FB; b++) {
        double s[FN];
        soft_row(&c, c.w0, b, s);
        for (int j = 0; j < FC; j++) S[b * FC + j] = 0;
        for (int n = 0; n < FN; n++) S[b * FC + c.img_lab[n]] += s[n];
        one[b] = 1.0;
    }
    for (int j = 0; j < FC; j++) wq[j] = (float)c.w0[j];
    balms_meta_grad(FB, FC, FD, c.feat, c.y, dlog, GW, Gb, c.lr, S, one, wq, U, dldv, g2);
    /* lt_tmax, not fmax: a NaN in either gradient or the differences
     * stays in the max and fails both comparisons below */
    double err_with = 0, err_without = 0, scale = 0;
    for (int j = 0; j < FC; j++) {
        err_with = lt_tmax(err_with, fabs(gw[j] - fd[j]));
        err_without = lt_tmax(err_without, fabs(g2[j] - fd[j]));
        scale = lt_tmax(scale, fabs(fd[j]));
    }
    assert_true(err_with < 1e-2 * scale);
    assert_true(err_without > 0.1 * scale);
}

/* ---- 2. conditional Gumbel soft masses vs brute force --------------------------- */

static void test_soft_mass_sampled_matches_gumbel_softmax(void **unused) {
    (void)unused;
    enum { K = 3, NI = 9, R = 300000 };
    const long counts[K] = {4, 3, 2};
    const float w[K] = {0.3f, -0.5f, 1.2f};
    int32_t lab[NI];
    int i = 0;
    for (int c = 0; c < K; c++)
        for (long j = 0; j < counts[c]; j++) lab[i++] = c;
    /* brute force: unconditional Gumbel-softmax rows, grouped by drawn class */
    double bf_n[K] = {0}, bf_skb[K] = {0}, bf_S[K][K] = {{0}};
    lt_rng r;
    lt_rng_init(&r, 9, 1);
    for (long t = 0; t < R; t++) {
        double v[NI], mx = -INFINITY, sum = 0;
        int best = 0;
        for (int n = 0; n < NI; n++) {
            v[n] = log(sigm(w[lab[n]])) + gumbel(&r);
            if (v[n] > v[best]) best = n;
        }
        mx = v[best];
        for (int n = 0; n < NI; n++) sum += (v[n] = exp(v[n] - mx));
        int y = lab[best];
        bf_n[y]++;
        bf_skb[y] += v[best] / sum;
        for (int n = 0; n < NI; n++) bf_S[y][lab[n]] += v[n] / sum;
    }
    double Z = 0;
    for (int c = 0; c < K; c++) Z += counts[c] * sigm(w[c]);
    for (int y = 0; y < K; y++) {
        /* the hard draw is the sampler's distribution n_c q_c / Z */
        assert_float_equal(bf_n[y] / R, counts[y] * sigm(w[y]) / Z, 0.005);
        double cs_skb = 0, cs_S[K] = {0};
        const long RC = 100000;
        lt_rng_init(&r, 10 + y, 2);
        for (long t = 0; t < RC; t++) {
            double S[K], skb;
            balms_soft_mass_sampled(K, counts, w, y, &r, S, &skb);
            double tot = 0;
            for (int c = 0; c < K; c++) tot += S[c];
            assert_true(fabs(tot - 1.0) < 1e-9 && skb > 0 && skb <= S[y] + 1e-12);
            cs_skb += skb;
            for (int c = 0; c < K; c++) cs_S[c] += S[c];
        }
        assert_float_equal(cs_skb / RC, bf_skb[y] / bf_n[y], 0.01);
        for (int c = 0; c < K; c++) assert_float_equal(cs_S[c] / RC, bf_S[y][c] / bf_n[y], 0.01);
    }
    /* the expected variant: class probabilities, s_{b,k_b} = 1 */
    double S[K], skb;
    balms_soft_mass_expected(K, counts, w, S, &skb);
    assert_float_equal(skb, 1.0, 0);
    for (int c = 0; c < K; c++) assert_float_equal(S[c], counts[c] * sigm(w[c]) / Z, 1e-6);
}

/* ---- hook fixture: a tiny model, dataset and run ---------------------------------- */

enum { HC = 4, HD = 3, HB = 6 };

typedef struct {
    char key[64][32];
    double val[64];
    int n;
} logbook;

struct fx;
static logbook *fx_book(struct fx *F);
static int log_cb(void *host, const char *key, double value) {
    logbook *b = fx_book(host);
    if (b->n < 64) {
        snprintf(b->key[b->n], sizeof b->key[0], "%s", key);
        b->val[b->n++] = value;
    }
    return LT_OK;
}

static int logged(const logbook *b, const char *key, double *v) {
    for (int i = b->n - 1; i >= 0; i--)
        if (!strcmp(b->key[i], key)) { *v = b->val[i]; return 1; }
    return 0;
}

/* The fixture plays the runner: run.host is the fixture, whose host API
 * serves the optimizer's state (an SGD optimizer over the model, as the
 * runner's stage optimizer) and draws (the engine's lt_drawer, as the
 * runner's draw service). */
typedef struct fx {
    const lt_method *M;
    cJSON *obj;
    struct lt_hparams hp;
    lt_run_info run;
    lt_host_api api;
    lt_optim opt;
    int have_opt;
    lt_drawer *drawer;
    long counts[HC];
    lt_dataset ds;
    lt_aug aug;
    lt_model *m;
    balms_state *st;
    logbook book;
    lt_stage cfg;
} fx;

static logbook *fx_book(struct fx *F) { return &F->book; }

static int fx_opt_state(void *host, const char *name, const float **s1, const float **s2, size_t *count) {
    fx *F = host;
    if (!F->have_opt) return lt_err(LT_ESTATE, "no optimizer");
    return lt_optim_state(&F->opt, F->m, name, s1, s2, count);
}

static int fx_draw(void *host, const lt_draw_req *r, float *x, int32_t *labels, int32_t *ids) {
    fx *F = host;
    return lt_drawer_draw(F->drawer, r, x, labels, ids);
}

/* The host's validation service, faked when g_val is set (meta_set "val"). */
static lt_dataset *g_val;
static int fx_validation(void *host, const lt_dataset **val, const char **origin) {
    (void)host;
    *val = g_val;
    if (origin) *origin = "test: validation images";
    return LT_OK;
}

/* Image i has channel 0 = i (so a redrawn batch can be decoded) and random
 * other channels; labels interleave the classes (not grouped). */
static void fx_data(fx *F, const long *counts) {
    long n = 0;
    for (int c = 0; c < HC; c++) n += (F->counts[c] = counts[c]);
    assert_true(n <= 255);
    assert_int_equal(lt_dataset_alloc(&F->ds, n, HD, 1, 1, HC), LT_OK);
    long i = 0, stride = 7;
    for (;;) {   /* the smallest stride >= 7 coprime with n: a permutation */
        long a = stride, b = n;
        while (b) { long t = a % b; a = b; b = t; }
        if (a == 1) break;
        stride++;
    }
    for (int c = 0; c < HC; c++)
        for (long k = 0; k < counts[c]; k++, i++) F->ds.labels[(i * stride) % n] = c;
    for (long j = 0; j < n; j++) {
        F->ds.pixels[j * HD] = (uint8_t)j;
        for (int d = 1; d < HD; d++) F->ds.pixels[j * HD + d] = (uint8_t)((j * 53 + d * 97) % 256);
    }
    memset(&F->aug, 0, sizeof F->aug);
    F->aug.out_h = F->aug.out_w = 1;
    for (int k = 0; k < 3; k++) { F->aug.mean[k] = 0; F->aug.std[k] = 1; }
}

static lt_model *fx_model(void) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, HD, 1, 1}), LT_OK);
    int c1 = lt_add_conv(m, "conv1", "backbone", 0, HD, 1, 1, 0, 1, 0);
    assert_true(c1 > 0);
    int f = lt_add_gap(m, "feat", "backbone", c1);
    assert_true(f > 0);
    assert_true(lt_add_linear(m, "logits", "head", f, HC, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 5), LT_OK);
    assert_int_equal(lt_model_set_batch(m, HB), LT_OK);
    return m;
}

static int fx_try_open(fx *F, const char *overrides, const long *counts) {
    memset(F, 0, sizeof *F);
    F->M = balms_entry_under_test();
    fx_data(F, counts);
    assert_int_equal(lt_method_hparams(F->M, overrides, &F->obj), LT_OK);
    F->hp.obj = F->obj;
    F->run.protocol = "test";
    F->run.scale = "ci";
    F->run.method = "balms";
    F->run.seed = 3;
    F->run.threads = 1;
    F->run.n_classes = HC;
    F->run.n_train = F->ds.n;
    F->run.class_counts = F->counts;
    F->run.in_shape = (lt_shape){1, HD, 1, 1};
    F->run.feat_dim = HD;
    F->run.train = &F->ds;
    F->run.aug = &F->aug;
    F->run.host = F;
    F->run.log = log_cb;
    F->api.version = LT_HOST_API_VERSION;
    F->api.opt_state = fx_opt_state;
    F->api.draw = fx_draw;
    if (g_val) F->api.validation = fx_validation;
    F->run.api = &F->api;
    assert_int_equal(lt_drawer_create(&F->drawer, &F->ds, &F->aug, F->run.seed), LT_OK);
    F->st = calloc(1, F->M->state_size);
    assert_non_null(F->st);
    return F->M->init(F->st, &F->run, &F->hp);
}

/* the head's lr multiplier of the stage fx_open sets up (places_lt: 100) */
static double g_head_mult = 1.0;

static void fx_open_n(fx *F, const char *overrides, const long *counts, int nesterov) {
    int rc = fx_try_open(F, overrides, counts);
    if (rc) fail_msg("init: %s", lt_errmsg());
    F->m = fx_model();
    lt_stage *cfg = &F->cfg;
    cfg->index = 1;
    cfg->proto_stage = 2;
    cfg->epochs = 1;
    cfg->batch = HB;
    cfg->drop_last = 1;
    cfg->momentum = 0.9f;
    cfg->weight_decay = 5e-4f;
    cfg->head_lr_mult = g_head_mult;
    cfg->nesterov = nesterov;
    cfg->sampler.kind = LT_SAMPLER_CLASS_BALANCED;   /* the protocol's stage-2 default */
    cfg->bn_eval = 1;
    cfg->augment = 0;
    rc = F->M->stage_begin(F->st, 1, cfg, F->m);
    if (rc) fail_msg("stage_begin: %s", lt_errmsg());
    /* the runner creates the stage's optimizer after stage_begin */
    assert_int_equal(lt_optim_init(&F->opt, F->m, LT_OPT_SGD, 0.9f, 5e-4f, nesterov), LT_OK);
    if (g_head_mult != 1.0) assert_int_equal(lt_optim_set_group(&F->opt, F->m, "head", g_head_mult, 1.0), LT_OK);
    F->have_opt = 1;
}

static void fx_open(fx *F, const char *overrides, const long *counts) { fx_open_n(F, overrides, counts, 0); }

static void fx_close(fx *F) {
    if (F->have_opt) lt_optim_free(&F->opt);
    lt_drawer_free(F->drawer);
    if (F->M->fini) F->M->fini(F->st);
    free(F->st);
    cJSON_Delete(F->obj);
    lt_model_free(F->m);
    lt_dataset_free(&F->ds);
}

/* A training batch: features, labels, logits of the model's head. */
typedef struct {
    float feat[HB * HD], logits[HB * HC], dlogits[HB * HC], dfeat[HB * HD];
    int32_t y[HB], ids[HB];
} fx_batch;

static lt_taps fx_taps(fx *F, fx_batch *b, const int32_t *y, unsigned seed, long iter) {
    gc_fill(b->feat, HB * HD, seed, -2, 2);
    memcpy(b->y, y, sizeof b->y);
    for (int i = 0; i < HB; i++) b->ids[i] = i;
    lt_linear_forward(HB, HD, HC, b->feat, lt_model_param_data(F->m, "logits.weight"),
                      lt_model_param_data(F->m, "logits.bias"), b->logits);
    lt_taps t = {.n = HB, .n_classes = HC, .feat_dim = HD, .logits = b->logits, .feat = b->feat,
                 .labels = b->y, .ids = b->ids, .class_counts = F->counts, .stage = 1, .epoch = 0,
                 .iter = iter, .lr = 0.1f, .model = F->m};
    return t;
}

/* ---- 3. the full meta step through the loss hook (expected soft mass) ------------ */

typedef struct {
    float w[HC];
    double w0[HC];
    const fx *F;
    const fx_batch *b;
    double lr, mom, wd;
    int nesterov;
    int P;
    const float *pool;
    const int32_t *plab;
} hk_ctx;

/* Score-function reference: v_b = 1 + log P(draw k_b; w) - log P(draw k_b; w0),
 * P = sigmoid(w_y) / sum_i sigmoid(w_{y_i}); momentum buffer 0 (first step). */
static double hk_ref(void *p) {
    const hk_ctx *c = p;
    const fx *F = c->F;
    const float *W = lt_model_param_data(F->m, "logits.weight"), *bias = lt_model_param_data(F->m, "logits.bias");
    double Z = 0, Z0 = 0;
    for (int j = 0; j < HC; j++) {
        Z += F->counts[j] * sigm(c->w[j]);
        Z0 += F->counts[j] * sigm(c->w0[j]);
    }
    double g[HC * (HD + 1)] = {0}, th[HC * (HD + 1)];
    for (int j = 0; j < HC; j++) {
        for (int d = 0; d < HD; d++) th[j * (HD + 1) + d] = W[j * HD + d];
        th[j * (HD + 1) + HD] = bias[j];
    }
    for (int b = 0; b < HB; b++) {
        int y = c->b->y[b];
        double v = 1.0 + log(sigm(c->w[y]) / Z) - log(sigm(c->w0[y]) / Z0);
        double z[HC], mx = -INFINITY, s = 0;
        for (int j = 0; j < HC; j++) {
            z[j] = th[j * (HD + 1) + HD] + log((double)F->counts[j]);
            for (int d = 0; d < HD; d++) z[j] += th[j * (HD + 1) + d] * c->b->feat[b * HD + d];
            mx = fmax(mx, z[j]);
        }
        for (int j = 0; j < HC; j++) s += (z[j] = exp(z[j] - mx));
        for (int j = 0; j < HC; j++) {
            double r = z[j] / s - (j == y);
            for (int d = 0; d < HD; d++) g[j * (HD + 1) + d] += v * r * c->b->feat[b * HD + d] / HB;
            g[j * (HD + 1) + HD] += v * r / HB;
        }
    }
    double z[HC * HC];
    int32_t ym[HC];
    /* buf = 0, so buf' = g'; Nesterov steps by g' + mom buf' */
    for (int i = 0; i < HC * (HD + 1); i++) th[i] -= c->lr * (c->nesterov ? 1 + c->mom : 1) * (g[i] + c->wd * th[i]);
    /* meta batch = every class's single pool image, each equally often */
    assert_int_equal(c->P, HC);
    for (int m = 0; m < HC; m++) {
        ym[m] = c->plab[m];
        for (int j = 0; j < HC; j++) {
            z[m * HC + j] = th[j * (HD + 1) + HD];
            for (int d = 0; d < HD; d++) z[m * HC + j] += th[j * (HD + 1) + d] * c->pool[m * HD + d];
        }
    }
    return ce_rows(HC, HC, z, ym);
}

static void hook_meta_step(int nesterov) {
    static const long counts[HC] = {20, 9, 4, 2};
    fx F;
    fx_open_n(&F, "{\"soft_mass\": \"expected\", \"draw\": \"epoch\", \"meta_pool_per_class\": 1, "
                  "\"meta_batch\": 8, \"meta_lr\": 0.05}", counts, nesterov);
    balms_state *st = F.st;
    /* stage 1 is set up: frozen backbone, re-initialised head, never the
     * protocol's class-balanced sampler (over-balancing guard) */
    assert_int_equal(F.cfg.sampler.kind, LT_SAMPLER_WEIGHTS);
    assert_true(F.cfg.freeze_backbone && F.cfg.reinit_head && F.cfg.bn_eval);
    assert_true(lt_model_param(F.m, "conv1.weight")->flags & LT_MASK_FROZEN);
    assert_false(lt_model_param(F.m, "logits.weight")->flags & LT_MASK_FROZEN);
    assert_int_equal(st->P, HC);
    double v;
    assert_true(logged(&F.book, "meta_set_is_val", &v) && v == 0);
    assert_true(logged(&F.book, "meta_pool_images", &v) && v == HC);
    /* the pool holds the backbone's features of the pool images */
    {
        float x[HD], y[HD];
        for (int p = 0; p < st->P; p++) {
            long img = -1;
            for (long i = 0; i < F.ds.n; i++) {
                lt_aug_eval(&F.aug, HD, 1, 1, F.ds.pixels + i * HD, x);
                assert_int_equal(lt_model_forward(F.m, x, 1, 0), LT_OK);
                memcpy(y, lt_model_out(F.m, lt_model_find(F.m, "feat")), sizeof y);
                double err = 0;
                for (int d = 0; d < HD; d++) err = lt_tmax(err, fabs(y[d] - st->pool_feat[p * HD + d]));
                if (err < 1e-5) img = i;
            }
            assert_true(img >= 0);
            assert_int_equal(F.ds.labels[img], st->pool_lab[p]);
        }
    }
    lt_sampler_cfg sc = F.cfg.sampler;
    assert_int_equal(F.M->sampler(F.st, 1, 0, &sc), LT_OK);

    fx_batch b;
    static const int32_t y[HB] = {0, 1, 0, 2, 3, 1};
    lt_taps t = fx_taps(&F, &b, y, 21, 0);
    lt_grads g = {.dlogits = b.dlogits, .dfeat = b.dfeat};
    hk_ctx c = {.F = &F, .b = &b, .lr = 0.1 * g_head_mult, .mom = 0.9, .wd = 5e-4, .nesterov = nesterov, .P = (int)st->P, .pool = st->pool_feat,
                .plab = st->pool_lab};
    for (int j = 0; j < HC; j++) c.w0[j] = c.w[j] = st->w[j];
    double loss;
    assert_int_equal(F.M->loss(F.st, &t, &loss, &g), LT_OK);
    /* the real loss is the unweighted Balanced Softmax */
    float off[HC], ref_d[HB * HC];
    double ref_loss;
    for (int j = 0; j < HC; j++) off[j] = logf((float)counts[j]);
    assert_int_equal(lt_softmax_ce(HB, HC, b.logits, y, off, NULL, &ref_loss, ref_d), LT_OK);
    assert_float_equal(loss, ref_loss, 1e-6);
    for (int i = 0; i < HB * HC; i++) assert_float_equal(b.dlogits[i], ref_d[i], 1e-7);
    assert_int_equal(g.use_dfeat, 0);
    /* the meta-gradient the hook computed (st->gw) vs finite differences */
    float gwf[HC];
    double mx = 0;
    for (int j = 0; j < HC; j++) {
        gwf[j] = (float)st->gw[j];
        mx = lt_tmax(mx, fabs(st->gw[j]));   /* a NaN stays: fails the signal check */
    }
    assert_true(mx > 1e-6);
    gc_opts o = {.eps = 1e-3, .rtol = 2e-3, .atol = 1e-3 * mx, .max_checks = 0};
    assert_int_equal(gc_check("balms hook dL/dw", hk_ref, &c, c.w, gwf, HC, &o), 0);
    /* first Adam step: w moves by meta_lr against the gradient's sign */
    for (int j = 0; j < HC; j++) {
        double dw = st->w[j] - c.w0[j];
        assert_float_equal(fabs(dw), 0.05, 1e-4);
        assert_true(dw * st->gw[j] < 0);
    }
    assert_int_equal(st->adam_step, 1);
    /* the meta step read the runner's momentum buffer (0 before the first
     * step, as hk_ref assumes) and left it alone */
    const float *s1;
    size_t cnt;
    assert_int_equal(lt_optim_state(&F.opt, F.m, "logits.bias", &s1, NULL, &cnt), LT_OK);
    for (size_t j = 0; j < cnt; j++) assert_true(s1[j] == 0.0f);
    /* epoch_end logs the sampling weights */
    assert_int_equal(F.M->epoch_end(F.st, 1, 0, F.m), LT_OK);
    assert_true(logged(&F.book, "q_class0", &v) && fabs(v - sigm(st->w[0])) < 1e-6);
    assert_true(logged(&F.book, "meta_loss", &v) && v > 0);
    /* draw = epoch needs the sampler's snapshot of the batch's epoch */
    t.epoch = 3;
    assert_int_not_equal(F.M->loss(F.st, &t, &loss, &g), LT_OK);
    fx_close(&F);
}

static void test_loss_hook_meta_step(void **unused) {
    (void)unused;
    hook_meta_step(0);
    /* Nesterov: d theta' / d grad = -lr (1 + momentum); the head's lr is
     * lr * head_lr_mult (the runner's taps carry the base lr) */
    g_head_mult = 2.0;
    hook_meta_step(1);
    g_head_mult = 1.0;
}

/* ---- 4. initialisation of w -------------------------------------------------------- */

static void test_init_formula(void **unused) {
    (void)unused;
    static const long counts[HC] = {40, 12, 5, 2};
    fx F;
    double cw[HC];
    /* p = 0 (CIFAR / Fashion-MNIST): every q = 1/2, i.e. instance-balanced */
    fx_open(&F, NULL, counts);
    lt_sampler_cfg sc = F.cfg.sampler;
    assert_int_equal(F.M->sampler(F.st, 1, 0, &sc), LT_OK);
    assert_int_equal(sc.kind, LT_SAMPLER_WEIGHTS);
    for (int j = 0; j < HC; j++) assert_float_equal(sc.class_weights[j] / counts[j], 0.5, 1e-7);
    assert_int_equal(lt_sampler_class_probs(&sc, 0, HC, counts, cw), LT_OK);
    for (int j = 0; j < HC; j++) assert_float_equal(cw[j], counts[j] / 59.0, 1e-7);
    fx_close(&F);
    /* p = 0.3 (Places-LT) */
    fx_open(&F, "{\"init_pow\": 0.3}", counts);
    sc = F.cfg.sampler;
    assert_int_equal(F.M->sampler(F.st, 1, 0, &sc), LT_OK);
    double lo = INFINITY, hi = 0;
    for (int j = 0; j < HC; j++) {
        double v = pow(counts[j] / 59.0, -0.3);
        lo = fmin(lo, v);
        hi = fmax(hi, v);
    }
    for (int j = 0; j < HC; j++)
        assert_float_equal(sc.class_weights[j] / counts[j], pow(counts[j] / 59.0, -0.3) / (lo + hi), 1e-6);
    /* tail classes get the larger q */
    assert_true(sc.class_weights[3] / counts[3] > sc.class_weights[0] / counts[0]);
    fx_close(&F);
}

/* ---- 5. Balanced Softmax == CE for uniform counts ------------------------------------ */

static void test_balanced_softmax_uniform_is_ce(void **unused) {
    (void)unused;
    static const long counts[HC] = {7, 7, 7, 7};
    fx F;
    fx_open(&F, NULL, counts);
    fx_batch b;
    static const int32_t y[HB] = {3, 1, 0, 2, 3, 0};
    lt_batch bt = {.n = HB, .x = calloc(HB * HD, sizeof(float)), .labels = b.y, .ids = b.ids, .stage = 1,
                   .epoch = 0, .iter = 0};
    lt_rng r;
    lt_rng_init(&r, 1, 2);
    memcpy(b.y, y, sizeof b.y);
    assert_int_equal(F.M->batch_hook(F.st, &bt, &r), LT_OK);
    int32_t yy[HB];
    memcpy(yy, b.y, sizeof yy);   /* the redrawn labels */
    lt_taps t = fx_taps(&F, &b, yy, 4, 0);
    lt_grads g = {.dlogits = b.dlogits, .dfeat = b.dfeat};
    double loss, ref;
    float d[HB * HC];
    assert_int_equal(F.M->loss(F.st, &t, &loss, &g), LT_OK);
    assert_int_equal(lt_softmax_ce(HB, HC, b.logits, yy, NULL, NULL, &ref, d), LT_OK);
    assert_float_equal(loss, ref, 1e-6);
    for (int i = 0; i < HB * HC; i++) assert_float_equal(b.dlogits[i], d[i], 1e-7);
    /* and predict is the plain logits */
    float sc[HB * HC];
    int kind = -1;
    assert_int_equal(F.M->predict(F.st, &t, sc, &kind), LT_OK);
    assert_int_equal(kind, LT_SCORES_LOGITS);
    assert_memory_equal(sc, b.logits, sizeof sc);
    free(bt.x);
    fx_close(&F);
}

/* ---- 6. the per-batch redraw ------------------------------------------------------- */

static void test_batch_redraw(void **unused) {
    (void)unused;
    static const long counts[HC] = {30, 15, 6, 3};
    fx F;
    fx_open(&F, NULL, counts);
    balms_state *st = F.st;
    const float w[HC] = {-1.0f, 0.5f, 1.5f, 2.5f};
    memcpy(st->w, w, sizeof w);
    double Z = 0, freq[HC] = {0};
    for (int j = 0; j < HC; j++) Z += counts[j] * sigm(w[j]);
    float x[HB * HD];
    int32_t lab[HB], ids[HB] = {0};
    const long R = 5000;
    lt_rng base;
    lt_rng_init(&base, 3, LT_STREAM_METHOD + 1000);
    for (long it = 0; it < R; it++) {
        lt_batch bt = {.n = HB, .x = x, .labels = lab, .ids = ids, .stage = 1, .epoch = 0, .iter = it};
        lt_rng r;
        lt_rng_derive(&r, &base, (uint64_t)it, 0);
        assert_int_equal(F.M->batch_hook(F.st, &bt, &r), LT_OK);
        assert_int_equal(st->batch_iter, it);
        for (int s = 0; s < HB; s++) {
            long img = lroundf(x[s * HD] * 255.0f);   /* channel 0 encodes the image */
            assert_true(img >= 0 && img < F.ds.n);
            assert_int_equal(lab[s], F.ds.labels[img]);
            float ref[HD];
            lt_aug_eval(&F.aug, HD, 1, 1, F.ds.pixels + img * HD, ref);
            assert_memory_equal(x + s * HD, ref, sizeof ref);
            freq[lab[s]]++;
        }
    }
    for (int j = 0; j < HC; j++) assert_float_equal(freq[j] / (R * HB), counts[j] * sigm(w[j]) / Z, 0.01);
    /* stage 0 batches are left alone */
    lt_batch b0 = {.n = HB, .x = x, .labels = lab, .ids = ids, .stage = 0, .epoch = 0, .iter = 0};
    memset(lab, 0, sizeof lab);
    lt_rng r;
    lt_rng_init(&r, 1, 1);
    assert_int_equal(F.M->batch_hook(F.st, &b0, &r), LT_OK);
    for (int s = 0; s < HB; s++) assert_int_equal(lab[s], 0);
    fx_close(&F);
}

/* ---- 7. save/load, resume equivalence, thread independence -------------------------- */

static void run_steps(fx *F, long first, long n) {
    lt_rng base;
    lt_rng_init(&base, 3, LT_STREAM_METHOD + 1000);
    float x[HB * HD];
    int32_t lab[HB], ids[HB] = {0};
    for (long it = first; it < first + n; it++) {
        lt_batch bt = {.n = HB, .x = x, .labels = lab, .ids = ids, .stage = 1, .epoch = 0, .iter = it};
        lt_rng r;
        lt_rng_derive(&r, &base, (uint64_t)it, 0);
        assert_int_equal(F->M->batch_hook(F->st, &bt, &r), LT_OK);
        fx_batch b;
        lt_taps t = fx_taps(F, &b, lab, (unsigned)(100 + it), it);
        lt_grads g = {.dlogits = b.dlogits, .dfeat = b.dfeat};
        double loss;
        assert_int_equal(F->M->loss(F->st, &t, &loss, &g), LT_OK);
        /* the real step the runner takes: the head's gradient into the
         * model's gradient block, then the stage optimizer */
        lt_model_zero_grad(F->m);
        lt_param_info pw, pb;
        assert_int_equal(lt_model_param_find(F->m, "logits.weight", &pw), LT_OK);
        assert_int_equal(lt_model_param_find(F->m, "logits.bias", &pb), LT_OK);
        lt_linear_backward(HB, HD, HC, b.feat, pw.w, b.dlogits, NULL, pw.g, pb.g);
        assert_int_equal(lt_optim_step(&F->opt, F->m, 0.1f), LT_OK);
    }
}

static void test_save_load_resume(void **unused) {
    (void)unused;
    static const long counts[HC] = {25, 10, 5, 2};
    char path[] = "/tmp/test_balms_ckpt_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);

    fx A;
    fx_open(&A, NULL, counts);
    run_steps(&A, 0, 3);
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, path), LT_OK);
    assert_int_equal(lt_model_save(A.m, w, "m/"), LT_OK);
    assert_int_equal(lt_optim_save(&A.opt, w, "o/"), LT_OK);
    assert_int_equal(A.M->save(A.st, w, "method/"), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    run_steps(&A, 3, 3);

    /* B: a resume. The model starts from another init (the replayed
     * stage_begin computes its pool from it), then the checkpoint loads. */
    fx B;
    int rc = fx_try_open(&B, NULL, counts);
    assert_int_equal(rc, LT_OK);
    lt_model *m = NULL;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, HD, 1, 1}), LT_OK);
    int c1 = lt_add_conv(m, "conv1", "backbone", 0, HD, 1, 1, 0, 1, 0);
    int f = lt_add_gap(m, "feat", "backbone", c1);
    assert_true(lt_add_linear(m, "logits", "head", f, HC, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 99), LT_OK);
    assert_int_equal(lt_model_set_batch(m, HB), LT_OK);
    B.m = m;
    B.cfg = A.cfg;
    B.cfg.sampler.kind = LT_SAMPLER_CLASS_BALANCED;
    assert_int_equal(B.M->stage_begin(B.st, 1, &B.cfg, B.m), LT_OK);
    assert_int_equal(lt_optim_init(&B.opt, B.m, LT_OPT_SGD, 0.9f, 5e-4f, 0), LT_OK);
    B.have_opt = 1;
    lt_ckpt *ck;
    assert_int_equal(lt_ckpt_read(&ck, path), LT_OK);
    assert_int_equal(lt_model_load(B.m, ck, "m/"), LT_OK);
    assert_int_equal(lt_optim_load(&B.opt, ck, "o/"), LT_OK);
    assert_int_equal(B.M->load(B.st, ck, "method/"), LT_OK);
    lt_ckpt_free(ck);
    unlink(path);
    balms_state *sa = A.st, *sb = B.st;
    assert_int_equal(sb->adam_step, 3);
    assert_int_equal(sb->P, sa->P);
    assert_memory_equal(sb->pool_feat, sa->pool_feat, (size_t)sa->P * HD * sizeof(float));
    run_steps(&B, 3, 3);
    /* bit-identical to the uninterrupted run */
    assert_memory_equal(sb->w, sa->w, HC * sizeof(float));
    assert_memory_equal(sb->am, sa->am, HC * sizeof(float));
    assert_memory_equal(sb->av, sa->av, HC * sizeof(float));
    assert_memory_equal(B.opt.s1, A.opt.s1, A.opt.n * sizeof(float));
    assert_memory_equal(lt_model_param_data(B.m, "logits.weight"), lt_model_param_data(A.m, "logits.weight"),
                        HC * HD * sizeof(float));

    /* a meta step count from a corrupt (checksum-valid) file is refused
     * by load, not left to abort in lt_adam_step's assert */
    const long keep = sa->adam_step;
    sa->adam_step = -2;
    assert_int_equal(lt_ckpt_writer_open(&w, path), LT_OK);
    assert_int_equal(A.M->save(A.st, w, "method/"), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    sa->adam_step = keep;
    assert_int_equal(lt_ckpt_read(&ck, path), LT_OK);
    assert_int_equal(B.M->load(B.st, ck, "method/"), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "adam_step -2 out of range"));
    lt_ckpt_free(ck);
    unlink(path);

    /* the sampled soft masses do not depend on the thread count */
    fx C1, C2;
    lt_set_num_threads(1);
    fx_open(&C1, NULL, counts);
    run_steps(&C1, 0, 4);
    lt_set_num_threads(2);
    fx_open(&C2, NULL, counts);
    run_steps(&C2, 0, 4);
    assert_memory_equal(((balms_state *)C1.st)->w, ((balms_state *)C2.st)->w, HC * sizeof(float));
    /* and the sampler learned something: w moved, to a number (the byte
     * comparison above holds for two equal NaNs, and NaN != 0 is true) */
    const float w0 = ((balms_state *)C1.st)->w[0];
    assert_true(isfinite(w0) && w0 != 0.0f);
    fx_close(&C1);
    fx_close(&C2);
    fx_close(&A);
    fx_close(&B);
}

/* ---- 7b. meta_set "val": the pool from the validation split -------------------------- */

/* Validation images (channel 0 = 200 + i: none is a training image) with
 * counts 2, 0, 1, 3: the pool holds exactly their features and labels, and
 * class 1 (no validation image) never enters a meta batch. */
static void test_meta_set_val_pool(void **unused) {
    (void)unused;
    static const long counts[HC] = {5, 4, 3, 2};
    static const int32_t vlab[6] = {3, 0, 2, 3, 0, 3};
    lt_dataset val;
    assert_int_equal(lt_dataset_alloc(&val, 6, HD, 1, 1, HC), LT_OK);
    for (int j = 0; j < 6; j++) {
        val.labels[j] = vlab[j];
        val.pixels[j * HD] = (uint8_t)(200 + j);
        for (int d = 1; d < HD; d++) val.pixels[j * HD + d] = (uint8_t)((j * 31 + d * 17) % 256);
    }
    g_val = &val;
    fx F;
    fx_open(&F, "{\"meta_set\": \"val\"}", counts);
    g_val = NULL;
    balms_state *st = F.st;
    double v;
    assert_true(logged(&F.book, "meta_set_is_val", &v) && v == 1);
    assert_true(logged(&F.book, "meta_pool_images", &v) && v == 6);
    assert_true(logged(&F.book, "meta_classes", &v) && v == 3);
    assert_int_equal(st->P, 6);
    assert_int_equal(st->n_meta_cls, 3);
    assert_int_equal(st->meta_cls[0], 0);
    assert_int_equal(st->meta_cls[1], 2);
    assert_int_equal(st->meta_cls[2], 3);
    /* every pool row is the feature of a validation image of its label, and
     * of no training image */
    float x[HD], y[HD];
    const int feat = lt_model_find(F.m, "feat");
    for (int p = 0; p < st->P; p++) {
        int hit = -1;
        for (int i = 0; i < 6; i++) {
            lt_aug_eval(&F.aug, HD, 1, 1, val.pixels + i * HD, x);
            assert_int_equal(lt_model_forward(F.m, x, 1, 0), LT_OK);
            memcpy(y, lt_model_out(F.m, feat), sizeof y);
            double err = 0;
            for (int d = 0; d < HD; d++) err = lt_tmax(err, fabs(y[d] - st->pool_feat[p * HD + d]));
            if (err < 1e-5) hit = i;
        }
        assert_true(hit >= 0);
        assert_int_equal(vlab[hit], st->pool_lab[p]);
        for (long i = 0; i < F.ds.n; i++) {
            lt_aug_eval(&F.aug, HD, 1, 1, F.ds.pixels + i * HD, x);
            assert_int_equal(lt_model_forward(F.m, x, 1, 0), LT_OK);
            memcpy(y, lt_model_out(F.m, feat), sizeof y);
            double err = 0;
            for (int d = 0; d < HD; d++) err = lt_tmax(err, fabs(y[d] - st->pool_feat[p * HD + d]));
            assert_true(err > 1e-6);
        }
    }
    fx_close(&F);
    lt_dataset_free(&val);
}

/* ---- 8. hyper-parameters and defaults ------------------------------------------------ */

static void test_hparams_and_defaults(void **unused) {
    (void)unused;
    static const long counts[HC] = {5, 4, 3, 2};
    fx F;
    /* the official ImageNet-LT / Places-LT meta set needs the host's
     * validation service (this fixture's host has none unless g_val) */
    assert_int_equal(fx_try_open(&F, "{\"meta_set\": \"val\"}", counts), LT_EABI);
    assert_non_null(strstr(lt_errmsg(), "validation"));
    F.M->fini(F.st);
    free(F.st);
    cJSON_Delete(F.obj);
    lt_drawer_free(F.drawer);
    lt_dataset_free(&F.ds);
    assert_int_equal(fx_try_open(&F, "{\"soft_mass\": \"gumbel\"}", counts), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "soft_mass"));
    F.M->fini(F.st);
    free(F.st);
    cJSON_Delete(F.obj);
    lt_drawer_free(F.drawer);
    lt_dataset_free(&F.ds);

    /* registered entry point == the tested copy; defaults.json == defaults */
    const lt_method *M = lt_method_balms();
    assert_string_equal(M->name, "balms");
    assert_string_equal(M->fidelity, "reconstructed");
    assert_string_equal(M->stage1_from, "ce");
    assert_string_equal(M->defaults, balms_entry_under_test()->defaults);
    FILE *fp = fopen("methods/balms/defaults.json", "r");
    assert_non_null(fp);
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
    assert_string_equal(buf, M->defaults);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_grad_fd),
        cmocka_unit_test(test_meta_grad_needs_skb),
        cmocka_unit_test(test_soft_mass_sampled_matches_gumbel_softmax),
        cmocka_unit_test(test_loss_hook_meta_step),
        cmocka_unit_test(test_init_formula),
        cmocka_unit_test(test_balanced_softmax_uniform_is_ce),
        cmocka_unit_test(test_batch_redraw),
        cmocka_unit_test(test_save_load_resume),
        cmocka_unit_test(test_meta_set_val_pool),
        cmocka_unit_test(test_hparams_and_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
