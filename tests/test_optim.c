/* test_optim.c — SGD and Adam against hand-unrolled PyTorch formulas, the
 * frozen / no-decay mask, and the learning-rate schedules of PROTOCOLS.md. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "lt.h"
#include "lt_loss.h"
#include "lt_model_impl.h"   /* white-box: the model's structs */

static int close_to(double got, double want, double rtol) {
    return fabs(got - want) <= rtol * fmax(1.0, fabs(want));
}

/* ---- SGD ------------------------------------------------------------------ */

/* Scalar w0 = 1, gradients 0.5, -0.2, 0.1; lr 0.1, mu 0.9, wd 0.01. The
 * expected numbers were unrolled by hand from
 *   g' = g + wd w;  v = mu v + g';  w -= lr (nesterov ? g' + mu v : v)
 * (PyTorch's SGD; the first step's v = g'). */
static void test_sgd_three_steps(void **state) {
    (void)state;
    const float grads[3] = {0.5f, -0.2f, 0.1f};
    lt_sgd_cfg cfg = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = 0};
    /* step 1: g' = 0.51, v = 0.51, w = 0.949
     * step 2: g' = -0.19051, v = 0.26849, w = 0.922151
     * step 3: g' = 0.10922151, v = 0.35086251, w = 0.887064749 */
    const double w_plain[3] = {0.949, 0.922151, 0.887064749};
    const double v_plain[3] = {0.51, 0.26849, 0.35086251};
    float w = 1.0f, v = 0.0f;
    for (int t = 0; t < 3; t++) {
        lt_sgd_step(1, &w, &grads[t], &v, NULL, &cfg);
        assert_true(close_to(w, w_plain[t], 1e-6));
        assert_true(close_to(v, v_plain[t], 1e-6));
    }
    /* nesterov:
     * step 1: g' = 0.51, v = 0.51, d = 0.969, w = 0.9031
     * step 2: g' = -0.190969, v = 0.268031, d = 0.0502589, w = 0.89807411
     * step 3: g' = 0.1089807411, v = 0.3502086411, d = 0.42416851809, w = 0.855657258191 */
    const double w_nest[3] = {0.9031, 0.89807411, 0.855657258191};
    const double v_nest[3] = {0.51, 0.268031, 0.3502086411};
    cfg.nesterov = 1;
    w = 1.0f, v = 0.0f;
    for (int t = 0; t < 3; t++) {
        lt_sgd_step(1, &w, &grads[t], &v, NULL, &cfg);
        assert_true(close_to(w, w_nest[t], 1e-6));
        assert_true(close_to(v, v_nest[t], 1e-6));
    }
    /* no momentum: plain w -= lr (g + wd w), no state (mom may be NULL) */
    lt_sgd_cfg plain = {.lr = 0.1f, .momentum = 0.0f, .weight_decay = 0.01f};
    w = 1.0f;
    lt_sgd_step(1, &w, &grads[0], NULL, NULL, &plain);
    assert_true(close_to(w, 1.0 - 0.1 * 0.51, 1e-7));
    lt_sgd_step(1, &w, &grads[1], NULL, NULL, &plain);
    assert_true(close_to(w, 0.949 - 0.1 * (-0.2 + 0.01 * 0.949), 1e-7));
}

/* A vector of random values over 3 steps against a double reference: every
 * element follows the same scalar recursion independently. */
static void test_sgd_vector(void **state) {
    (void)state;
    enum { n = 37 };
    float w[n], v[n], g[3][n];
    double rw[n], rv[n];
    gc_fill(w, n, 1, -2.0f, 2.0f);
    for (int t = 0; t < 3; t++) gc_fill(g[t], n, 10 + t, -1.0f, 1.0f);
    for (int nest = 0; nest <= 1; nest++) {
        gc_fill(w, n, 1, -2.0f, 2.0f);
        memset(v, 0, sizeof v);
        for (int i = 0; i < n; i++) rw[i] = w[i], rv[i] = 0.0;
        lt_sgd_cfg cfg = {.lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = nest};
        for (int t = 0; t < 3; t++) {
            lt_sgd_step(n, w, g[t], v, NULL, &cfg);
            for (int i = 0; i < n; i++) {
                double gp = g[t][i] + (double)cfg.weight_decay * rw[i];
                rv[i] = (double)cfg.momentum * rv[i] + gp;
                rw[i] -= (double)cfg.lr * (nest ? gp + (double)cfg.momentum * rv[i] : rv[i]);
            }
        }
        for (int i = 0; i < n; i++) {
            assert_true(close_to(w[i], rw[i], 1e-6));
            assert_true(close_to(v[i], rv[i], 1e-6));
        }
    }
}

static void test_sgd_mask(void **state) {
    (void)state;
    enum { n = 6 };
    const uint8_t mask[n] = {0, LT_MASK_FROZEN, LT_MASK_NO_DECAY, LT_MASK_FROZEN | LT_MASK_NO_DECAY, 0,
                             LT_MASK_NO_DECAY};
    float w[n] = {1, 2, 3, 4, 5, 6}, g[n] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    float v[n] = {0.7f, 0.7f, 0.7f, 0.7f, 0.7f, 0.7f};   /* prior momentum */
    float w0[n], v0[n];
    memcpy(w0, w, sizeof w);
    memcpy(v0, v, sizeof v);
    lt_sgd_cfg cfg = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.1f, .nesterov = 0};
    for (int step = 0; step < 2; step++) lt_sgd_step(n, w, g, v, mask, &cfg);
    double rw[n], rv[n];
    for (int i = 0; i < n; i++) {
        rw[i] = w0[i], rv[i] = v0[i];
        for (int step = 0; step < 2; step++) {
            double wd = (mask[i] & LT_MASK_NO_DECAY) ? 0.0 : 0.1;
            double gp = g[i] + wd * rw[i];
            rv[i] = 0.9 * rv[i] + gp;
            rw[i] -= 0.1 * rv[i];
        }
    }
    for (int i = 0; i < n; i++) {
        if (mask[i] & LT_MASK_FROZEN) {
            /* bit-identical: neither the weight nor its momentum moves */
            assert_memory_equal(&w[i], &w0[i], sizeof(float));
            assert_memory_equal(&v[i], &v0[i], sizeof(float));
        } else {
            assert_true(close_to(w[i], rw[i], 1e-6));
            assert_true(close_to(v[i], rv[i], 1e-6));
        }
    }
    /* the no-decay element moved exactly as with wd = 0 */
    float wa = 3.0f, va = 0.7f, wb = 3.0f, vb = 0.7f;
    uint8_t nd = LT_MASK_NO_DECAY;
    lt_sgd_cfg nowd = cfg;
    nowd.weight_decay = 0.0f;
    lt_sgd_step(1, &wa, &g[2], &va, &nd, &cfg);
    lt_sgd_step(1, &wb, &g[2], &vb, NULL, &nowd);
    assert_true(wa == wb && va == vb);
    assert_true(wa != 3.0f);
}

/* Above the threshold the update runs on several threads; it must give the
 * bit-identical result of the element-by-element rule. */
static void test_optim_large_buffer(void **state) {
    (void)state;
    const size_t n = 200003;
    float *w = malloc(n * sizeof *w), *g = malloc(n * sizeof *g), *v = calloc(n, sizeof *v);
    float *w1 = malloc(n * sizeof *w1), *v1 = calloc(n, sizeof *v1);
    float *m = calloc(n, sizeof *m), *s = calloc(n, sizeof *s);
    uint8_t *mask = malloc(n);
    assert_true(w && g && v && w1 && v1 && m && s && mask);
    gc_fill(w, n, 3, -1.0f, 1.0f);
    gc_fill(g, n, 4, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i++) mask[i] = (uint8_t)(i % 7 == 0 ? LT_MASK_FROZEN : i % 5 == 0 ? LT_MASK_NO_DECAY : 0);
    memcpy(w1, w, n * sizeof *w);
    lt_sgd_cfg cfg = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 5e-4f, .nesterov = 1};
    lt_sgd_step(n, w, g, v, mask, &cfg);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float wi = w1[i], vi = v1[i];
        lt_sgd_step(1, &wi, &g[i], &vi, &mask[i], &cfg);
        bad += memcmp(&wi, &w[i], sizeof wi) != 0 || memcmp(&vi, &v[i], sizeof vi) != 0;
    }
    assert_int_equal(bad, 0);
    memcpy(w, w1, n * sizeof *w);
    lt_adam_cfg acfg = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 1e-4f};
    lt_adam_step(n, w, g, m, s, mask, &acfg, 1);
    for (size_t i = 0; i < n; i++) {
        float wi = w1[i], mi = 0, si = 0;
        lt_adam_step(1, &wi, &g[i], &mi, &si, &mask[i], &acfg, 1);
        bad += memcmp(&wi, &w[i], sizeof wi) != 0 || memcmp(&mi, &m[i], sizeof mi) != 0;
    }
    assert_int_equal(bad, 0);
    free(w), free(g), free(v), free(w1), free(v1), free(m), free(s), free(mask);
}

/* ---- Adam ----------------------------------------------------------------- */

/* Scalar w0 = 1, gradients 0.5, -0.3; lr 0.01, betas (0.9, 0.999), eps 1e-8,
 * wd 0.1 (L2, added to g). By hand:
 * step 1: g' = 0.6, m = 0.06, v = 0.00036; m/(1-0.9) = 0.6,
 *         sqrt(v/(1-0.999)) = 0.6 -> w = 1 - 0.01 * 0.6/(0.6 + 1e-8) = 0.99000000016667
 * step 2: g' = -0.3 + 0.099 = -0.201, m = 0.054 - 0.0201 = 0.0339,
 *         v = 0.00035964 + 0.000040401 = 0.000400041,
 *         w = 0.99 - 0.01 * (0.0339/0.19) / (sqrt(0.000400041/0.001999) + 1e-8)
 *           = 0.98601158616 */
static void test_adam_two_steps(void **state) {
    (void)state;
    lt_adam_cfg cfg = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.1f};
    const float grads[2] = {0.5f, -0.3f};
    float w = 1.0f, m = 0.0f, v = 0.0f;
    lt_adam_step(1, &w, &grads[0], &m, &v, NULL, &cfg, 1);
    assert_true(close_to(m, 0.06, 1e-6));
    /* beta2 is stored as float (0.999f = 0.99900001287), so 1 - beta2 is
     * 1.3e-5 relatively off 0.001; the bias correction uses the same float
     * beta2, so the update itself is unaffected at this precision. */
    assert_true(fabs(v - 0.00036) < 2e-5 * 0.00036);
    assert_true(close_to(w, 0.99000000016667, 1e-6));
    lt_adam_step(1, &w, &grads[1], &m, &v, NULL, &cfg, 2);
    assert_true(close_to(m, 0.0339, 1e-5));
    assert_true(fabs(v - 0.000400041) < 2e-5 * 0.000400041);
    assert_true(close_to(w, 0.98601158616, 1e-6));
    printf("note: adam after 2 steps w=%.9f (hand 0.986011586)\n", (double)w);

    /* mask: frozen keeps w, m, v; no-decay equals wd = 0 */
    uint8_t mask[2] = {LT_MASK_FROZEN, LT_MASK_NO_DECAY};
    float ws[2] = {1.0f, 1.0f}, ms[2] = {0.25f, 0.0f}, vs[2] = {0.5f, 0.0f}, gs[2] = {0.5f, 0.5f};
    lt_adam_step(2, ws, gs, ms, vs, mask, &cfg, 1);
    assert_true(ws[0] == 1.0f && ms[0] == 0.25f && vs[0] == 0.5f);
    lt_adam_cfg nowd = cfg;
    nowd.weight_decay = 0.0f;
    float w2 = 1.0f, m2 = 0.0f, v2 = 0.0f;
    lt_adam_step(1, &w2, &gs[1], &m2, &v2, NULL, &nowd, 1);
    assert_true(ws[1] == w2 && ms[1] == m2 && vs[1] == v2);
    assert_true(close_to(ws[1], 0.99, 1e-6));   /* first Adam step moves by ~lr */
}

/* ---- schedules ------------------------------------------------------------- */

/* fmnist_lt stage 1: base 0.1, 30 epochs, per-iteration warm-up over the
 * first epoch, then per-iteration cosine to 0. ipe = floor(14886/128) = 116. */
static void test_sched_warmup_cosine(void **state) {
    (void)state;
    const long ipe = 116, E = 30;
    lt_sched s = {.kind = LT_SCHED_COSINE, .base_lr = 0.1, .epochs = (int)E, .warmup_epochs = 1};
    assert_true(close_to(lt_sched_lr(&s, 0, ipe), 0.1 / 116, 1e-12));
    assert_true(close_to(lt_sched_lr(&s, 57, ipe), 0.1 * 58 / 116, 1e-12));
    assert_true(close_to(lt_sched_lr(&s, ipe - 1, ipe), 0.1, 1e-12));
    /* first cosine iteration: t = 0 -> base */
    assert_true(close_to(lt_sched_lr(&s, ipe, ipe), 0.1, 1e-12));
    /* midpoint of the cosine part: t = T/2 -> base/2 (T = 29*116 is even) */
    long T = (E - 1) * ipe;
    assert_true(close_to(lt_sched_lr(&s, ipe + T / 2, ipe), 0.05, 1e-12));
    /* a quarter of the way: 0.5 (1 + cos(pi/4)) */
    assert_true(close_to(lt_sched_lr(&s, ipe + T / 4, ipe), 0.1 * 0.5 * (1 + cos(M_PI / 4)), 1e-12));
    /* end: 0 at it = epochs*ipe and after; the last trained iteration is tiny but > 0 */
    assert_true(fabs(lt_sched_lr(&s, E * ipe, ipe)) < 1e-15);
    assert_true(fabs(lt_sched_lr(&s, E * ipe + 500, ipe)) < 1e-15);
    double last = lt_sched_lr(&s, E * ipe - 1, ipe);
    assert_true(last > 0.0 && last < 1e-7);
    /* rises during warm-up, never rises after it */
    double prev = 0.0;
    for (long it = 0; it < E * ipe; it++) {
        double lr = lt_sched_lr(&s, it, ipe);
        if (it < ipe) assert_true(lr > prev);
        else assert_true(lr <= prev);
        prev = lr;
    }
    /* stage 2: cosine with no warm-up starts at base */
    lt_sched s2 = {.kind = LT_SCHED_COSINE, .base_lr = 0.1, .epochs = 10};
    assert_true(close_to(lt_sched_lr(&s2, 0, ipe), 0.1, 1e-12));
    assert_true(close_to(lt_sched_lr(&s2, 5 * ipe, ipe), 0.05, 1e-12));
    /* constant */
    lt_sched c = {.kind = LT_SCHED_CONSTANT, .base_lr = 0.01, .epochs = 10};
    assert_true(lt_sched_lr(&c, 0, ipe) == 0.01 && lt_sched_lr(&c, 99999, ipe) == 0.01);
}

/* LDAM-DRW CIFAR schedule. Epochs below are 1-BASED (e = 1..200, as in
 * PROTOCOLS.md and the LDAM-DRW code); epoch e spans iterations
 * [(e-1)*ipe, e*ipe). The struct's milestones are 0-based epoch indices, so
 * "after epoch 160" is milestone 160. */
static double ldam_lr_at_epoch(const lt_sched *s, int e, long ipe, long offset) {
    return lt_sched_lr(s, (long)(e - 1) * ipe + offset, ipe);
}

static void test_sched_ldam_multistep(void **state) {
    (void)state;
    const long ipe = 97;   /* ceil(12406/128) for CIFAR-10-LT IR 100 */
    lt_sched s = {.kind = LT_SCHED_MULTISTEP, .base_lr = 0.1, .epochs = 200, .warmup_epochs = 5,
                  .warmup_per_epoch = 1, .n_milestones = 2, .milestones = {160, 180}, .gamma = 0.01};
    struct { int e; double lr; } want[] = {
        {1, 0.02}, {2, 0.04}, {5, 0.1}, {6, 0.1}, {160, 0.1}, {161, 0.001},
        {180, 0.001}, {181, 0.00001}, {200, 0.00001},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        /* constant within an epoch: first and last iteration agree */
        double first = ldam_lr_at_epoch(&s, want[k].e, ipe, 0);
        double lastit = ldam_lr_at_epoch(&s, want[k].e, ipe, ipe - 1);
        assert_true(close_to(first, want[k].lr, 1e-12));
        assert_true(first == lastit);
    }
    printf("note: LDAM lr at 1-based epochs 1,5,6,160,161,181: %g %g %g %g %g %g\n",
           ldam_lr_at_epoch(&s, 1, ipe, 0), ldam_lr_at_epoch(&s, 5, ipe, 0),
           ldam_lr_at_epoch(&s, 6, ipe, 0), ldam_lr_at_epoch(&s, 160, ipe, 0),
           ldam_lr_at_epoch(&s, 161, ipe, 0), ldam_lr_at_epoch(&s, 181, ipe, 0));
    /* the boundary is exactly at iteration 160*ipe */
    assert_true(lt_sched_lr(&s, 160 * ipe - 1, ipe) == 0.1);
    assert_true(close_to(lt_sched_lr(&s, 160 * ipe, ipe), 0.001, 1e-12));
    /* multistep without warm-up, per-iteration warm-up composes with it */
    lt_sched p = {.kind = LT_SCHED_MULTISTEP, .base_lr = 1.0, .epochs = 10, .n_milestones = 1,
                  .milestones = {3}, .gamma = 0.1};
    assert_true(lt_sched_lr(&p, 0, 10) == 1.0 && lt_sched_lr(&p, 29, 10) == 1.0);
    assert_true(close_to(lt_sched_lr(&p, 30, 10), 0.1, 1e-12));
    p.warmup_epochs = 1;
    assert_true(close_to(lt_sched_lr(&p, 4, 10), 0.5, 1e-12));
}

/* BALMS's CIFAR schedules (utils.py CosineAnnealingLRWarmup, stepped at the
 * start of every 1-based epoch e), written out from the official code:
 * stage 1 base_lr 0.05 -> warmup_lr 0.1 over W = 37 epochs, cosine to 0 at
 * T = 591 (CIFAR-10-LT IF 200: 13,000 iterations at ceil(11203/512) = 22);
 * stage 2 CosineAnnealingLR(T = 96, eta_min 0) from 0.1. */
static double balms_ref(int e, int W, int T) {
    const double base_lr = 0.05, warmup_lr = 0.1, eta_min = 0.0;
    if (e < W) return ((warmup_lr - base_lr) / (W - 1) * (e - 1) + base_lr) / base_lr * base_lr;
    return eta_min + (warmup_lr - eta_min) * (1 + cos(M_PI * (e - W) / (T - W))) / 2 / base_lr * base_lr;
}

static void test_sched_cosine_epoch(void **state) {
    (void)state;
    const long ipe = 21;   /* floor(11203/512): the steps an epoch runs */
    lt_sched s = {.kind = LT_SCHED_COSINE_EPOCH, .base_lr = 0.1, .epochs = 591, .warmup_epochs = 37,
                  .warmup_start = 0.5};
    for (int e = 1; e <= 591; e++) {
        double first = lt_sched_lr(&s, (long)(e - 1) * ipe, ipe), lastit = lt_sched_lr(&s, (long)e * ipe - 1, ipe);
        assert_true(first == lastit);
        assert_true(close_to(first, balms_ref(e, 37, 591), 1e-12));
    }
    assert_true(close_to(lt_sched_lr(&s, 0, ipe), 0.05, 1e-15));          /* e = 1: the start */
    assert_true(close_to(lt_sched_lr(&s, 35 * ipe, ipe), 0.05 + 0.05 * 35 / 36, 1e-15));   /* e = W - 1 */
    assert_true(close_to(lt_sched_lr(&s, 36 * ipe, ipe), 0.1, 1e-15));     /* e = W: the peak, cos(0) */
    assert_true(fabs(lt_sched_lr(&s, 590 * ipe, ipe)) < 1e-15);            /* e = T: 0, as the code */
    assert_true(fabs(lt_sched_lr(&s, 700 * ipe, ipe)) < 1e-15);
    /* stage 2: no warm-up, epoch e runs at 0.1 (1 + cos(pi e / T)) / 2 */
    lt_sched s2 = {.kind = LT_SCHED_COSINE_EPOCH, .base_lr = 0.1, .epochs = 96};
    for (int e = 1; e <= 96; e++)
        assert_true(close_to(lt_sched_lr(&s2, (long)(e - 1) * ipe + 3, ipe),
                             0.1 * (1 + cos(M_PI * e / 96.0)) / 2, 1e-15));
    /* W = 1: no warm-up epoch, the cosine counts from epoch 1 */
    lt_sched s3 = {.kind = LT_SCHED_COSINE_EPOCH, .base_lr = 1.0, .epochs = 5, .warmup_epochs = 1,
                   .warmup_start = 0.5};
    assert_true(lt_sched_lr(&s3, 0, 1) == 1.0 && fabs(lt_sched_lr(&s3, 4, 1)) < 1e-15);
}

static void test_sched_pure(void **state) {
    (void)state;
    lt_sched s[3] = {
        {.kind = LT_SCHED_COSINE, .base_lr = 0.1, .epochs = 30, .warmup_epochs = 1},
        {.kind = LT_SCHED_MULTISTEP, .base_lr = 0.1, .epochs = 200, .warmup_epochs = 5,
         .warmup_per_epoch = 1, .n_milestones = 2, .milestones = {160, 180}, .gamma = 0.01},
        {.kind = LT_SCHED_CONSTANT, .base_lr = 0.3, .epochs = 5, .warmup_epochs = 2},
    };
    const long ipe = 50;
    for (int k = 0; k < 3; k++) {
        lt_sched copy;
        memcpy(&copy, &s[k], sizeof copy);
        long n = (long)s[k].epochs * ipe;
        double *fwd = malloc((size_t)n * sizeof *fwd);
        assert_non_null(fwd);
        for (long it = 0; it < n; it++) fwd[it] = lt_sched_lr(&s[k], it, ipe);
        /* backwards and in a scrambled order: same values, bit for bit */
        int bad = 0;
        for (long it = n - 1; it >= 0; it--) bad += lt_sched_lr(&s[k], it, ipe) != fwd[it];
        for (long j = 0; j < n; j++) {
            long it = (j * 7919) % n;
            bad += lt_sched_lr(&s[k], it, ipe) != fwd[it];
        }
        assert_int_equal(bad, 0);
        assert_memory_equal(&copy, &s[k], sizeof copy);   /* the struct is not written */
        free(fwd);
    }
    /* clamped arguments stay finite */
    assert_true(isfinite(lt_sched_lr(&s[0], -5, 0)));
    assert_true(lt_sched_lr(&s[0], -5, ipe) == lt_sched_lr(&s[0], 0, ipe));
}

/* ---- per-group factors over a model (lt_optim_set_group) ------------------------ */

static lt_model *grouped_model(void) {
    lt_model *m;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 3, 1, 1}), LT_OK);
    int a = lt_add_linear(m, "a", "backbone", 0, 4, 1);
    int b = lt_add_linear(m, "b", "proj", a, 2, 1);
    assert_true(lt_add_linear(m, "logits", "head", b, 2, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 5), LT_OK);
    assert_int_equal(lt_model_no_decay(m, "logits.bias"), LT_OK);
    return m;
}

/* Two SGD steps (momentum, per-group lr and weight decay, one no-decay
 * parameter) against the update written out by hand in double. */
static void test_optim_groups_hand_computed(void **state) {
    (void)state;
    lt_model *m = grouped_model();
    const float lr = 0.1f, mu = 0.9f, wd = 0.01f;
    const double lr_mult[3] = {1.0, 0.5, 10.0}, wd_mult[3] = {1.0, 0.0, 2.0};   /* backbone, proj, head */
    lt_optim o;
    assert_int_equal(lt_optim_init(&o, m, LT_OPT_SGD, mu, wd, 0), LT_OK);
    assert_int_equal(lt_optim_set_group(&o, m, "proj", lr_mult[1], wd_mult[1]), LT_OK);
    assert_int_equal(lt_optim_set_group(&o, m, "head", 3.0, 1.0), LT_OK);
    assert_int_equal(lt_optim_set_group(&o, m, "head", lr_mult[2], wd_mult[2]), LT_OK);   /* replaced */
    assert_int_not_equal(lt_optim_set_group(&o, m, "nope", 1, 1), LT_OK);
    const int np = lt_model_n_params(m);
    double w[6][16], v[6][16] = {{0}};
    for (int i = 0; i < np; i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(m, i, &p), LT_OK);
        for (size_t k = 0; k < p.count; k++) w[i][k] = p.w[k];
    }
    for (int step = 0; step < 2; step++) {
        for (int i = 0; i < np; i++) {
            lt_param_info p;
            assert_int_equal(lt_model_param_at(m, i, &p), LT_OK);
            gc_fill(p.g, p.count, 100 + 10 * (unsigned)step + (unsigned)i, -1, 1);
            const int grp = !strcmp(p.group, "proj") ? 1 : !strcmp(p.group, "head") ? 2 : 0;
            const float glr = grp ? (float)((double)lr * lr_mult[grp]) : lr;
            const float gwd = grp ? (float)((double)wd * wd_mult[grp]) : wd;
            for (size_t k = 0; k < p.count; k++) {
                /* float arithmetic in the optimizer's order */
                float g = p.g[k];
                if (!(p.flags & LT_MASK_NO_DECAY)) g = g + gwd * (float)w[i][k];
                float nv = mu * (float)v[i][k] + g;
                v[i][k] = nv;
                w[i][k] = (float)w[i][k] - glr * nv;
            }
        }
        assert_int_equal(lt_optim_step(&o, m, lr), LT_OK);
        for (int i = 0; i < np; i++) {
            lt_param_info p;
            assert_int_equal(lt_model_param_at(m, i, &p), LT_OK);
            for (size_t k = 0; k < p.count; k++) assert_true(p.w[k] == (float)w[i][k]);
        }
    }
    /* the state of one parameter: its momentum buffer */
    const float *s1, *s2;
    size_t n;
    assert_int_equal(lt_optim_state(&o, m, "b.weight", &s1, &s2, &n), LT_OK);
    assert_int_equal(n, 8);
    assert_null(s2);
    int bi = -1;
    for (int i = 0; i < np; i++) {
        lt_param_info p;
        lt_model_param_at(m, i, &p);
        if (!strcmp(p.name, "b.weight")) bi = i;
    }
    for (size_t k = 0; k < n; k++) assert_true(s1[k] == (float)v[bi][k]);
    assert_int_not_equal(lt_optim_state(&o, m, "missing", &s1, &s2, &n), LT_OK);
    /* the same as host copies (lt_optim_state_host): at the parameter's
     * offset in arrays of the whole state, nothing else written */
    float *h1 = malloc(o.n * sizeof(float)), *h2 = malloc(o.n * sizeof(float));
    assert_non_null(h1);
    assert_non_null(h2);
    for (size_t k = 0; k < o.n; k++) h1[k] = h2[k] = -7.0f;
    const float *c1, *c2;
    size_t nc;
    assert_int_equal(lt_optim_state_host(&o, m, "b.weight", h1, h2, &c1, &c2, &nc), LT_OK);
    assert_int_equal(nc, n);
    assert_null(c2);
    assert_true(c1 == h1 + (s1 - o.s1));
    for (size_t k = 0; k < n; k++) assert_true(c1[k] == s1[k]);
    size_t untouched = 0;
    for (size_t k = 0; k < o.n; k++) untouched += h1[k] == -7.0f;
    assert_int_equal(untouched, o.n - n);
    for (size_t k = 0; k < o.n; k++) assert_true(h2[k] == -7.0f);   /* SGD: no second moment */
    assert_int_not_equal(lt_optim_state_host(&o, m, "missing", h1, h2, &c1, &c2, &nc), LT_OK);
    assert_int_equal(lt_optim_state_host(&o, m, "b.weight", NULL, h2, &c1, &c2, &nc), LT_EINVAL);
    assert_int_equal(lt_model_param_index(m, "b.weight"), bi);
    assert_int_equal(lt_model_param_index(m, "missing"), -1);
    lt_optim_free(&o);
    /* Adam: both moments, at the same offset */
    assert_int_equal(lt_optim_init(&o, m, LT_OPT_ADAM, 0.0f, 0.0f, 0), LT_OK);
    assert_int_equal(lt_optim_step(&o, m, lr), LT_OK);
    assert_int_equal(lt_optim_state(&o, m, "b.weight", &s1, &s2, &n), LT_OK);
    assert_non_null(s2);
    assert_int_equal(lt_optim_state_host(&o, m, "b.weight", h1, h2, &c1, &c2, &nc), LT_OK);
    assert_true(c1 == h1 + (s1 - o.s1) && c2 == h2 + (s2 - o.s2));
    for (size_t k = 0; k < n; k++) assert_true(c1[k] == s1[k] && c2[k] == s2[k] && s2[k] > 0);
    assert_int_equal(lt_optim_state_host(&o, m, "b.weight", h1, NULL, &c1, &c2, &nc), LT_EINVAL);
    free(h1);
    free(h2);
    lt_optim_free(&o);
    lt_model_free(m);
}

/* A group whose factors are 1 updates exactly as no group at all (SGD and
 * Adam), so the runner's head_lr_mult = 1 changes no number. */
static void test_optim_unit_group_is_plain(void **state) {
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        lt_model *a = grouped_model(), *b = grouped_model();
        lt_optim oa, ob;
        assert_int_equal(lt_optim_init(&oa, a, (lt_opt_kind)kind, 0.9f, 5e-4f, 1), LT_OK);
        assert_int_equal(lt_optim_init(&ob, b, (lt_opt_kind)kind, 0.9f, 5e-4f, 1), LT_OK);
        assert_int_equal(lt_optim_set_group(&ob, b, "head", 1.0, 1.0), LT_OK);
        assert_non_null(ob.gid);
        for (int step = 0; step < 3; step++) {
            gc_fill(a->g, a->n_w, 7 + (unsigned)step, -1, 1);
            memcpy(b->g, a->g, a->n_w * sizeof(float));
            assert_int_equal(lt_optim_step(&oa, a, 0.05f), LT_OK);
            assert_int_equal(lt_optim_step(&ob, b, 0.05f), LT_OK);
        }
        assert_memory_equal(a->w, b->w, a->n_w * sizeof(float));
        lt_optim_free(&oa);
        lt_optim_free(&ob);
        lt_model_free(a);
        lt_model_free(b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_three_steps),
        cmocka_unit_test(test_sgd_vector),
        cmocka_unit_test(test_sgd_mask),
        cmocka_unit_test(test_optim_large_buffer),
        cmocka_unit_test(test_adam_two_steps),
        cmocka_unit_test(test_sched_warmup_cosine),
        cmocka_unit_test(test_sched_ldam_multistep),
        cmocka_unit_test(test_sched_cosine_epoch),
        cmocka_unit_test(test_sched_pure),
        cmocka_unit_test(test_optim_groups_hand_computed),
        cmocka_unit_test(test_optim_unit_group_is_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
