/* test_method_bcrumb.c — Breadcrumb / EMANATE (methods/bcrumb), white-box
 * (the method source is included with its entry point renamed) against a
 * fake host whose services are the engine's own pieces (sub-graph, a
 * module with its own SGD, the drawer on a synthetic dataset):
 *   - I, nb and q_c on a small fixture, and the deques filling until ready;
 *   - the bank: per-class row counts, and every row equal to the residual
 *     of its epoch moved onto the latest class mean, recomputed naively from
 *     the features as they were fed in;
 *   - Cb sends no gradient into F: the backbone's (and R's) gradients of an
 *     iteration are bit-identical with and without Cb's step before it, in
 *     the warm-up (F run on class-aware images) and on the bank; F on the
 *     warm-up images through the sub-graph equals the model's own forward;
 *   - the warm-up sampler: 4 consecutive images per class, every class once
 *     per cycle, the cycle's order reshuffled, each class's images cycled;
 *   - defaults.json equals the defaults; bad hyper-parameters are refused.
 * The resume test runs through the runner: test_method_bcrumb_run.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tassert.h"   /* lt_tmax: a max that keeps a NaN */

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_io.h"
#include "lt_method.h"
#include "lt_run_internal.h"

#define lt_method_bcrumb bcrumb_entry_under_test
#include "../methods/bcrumb/method.c"
#undef lt_method_bcrumb
const lt_method *lt_method_bcrumb(void);

/* ---- I, nb, q_c ------------------------------------------------------------------------ */

static void test_sizes(void **unused) {
    (void)unused;
    long q[4], I, nb;
    const long n[3] = {30, 12, 4};
    assert_int_equal(bc_sizes(3, n, 10, &I, &nb, q), LT_OK);
    assert_int_equal(I, 5);     /* ceil(46 / 10): the last partial batch counts */
    assert_int_equal(nb, 17);   /* ceil(5 * 10 / 3) */
    assert_int_equal(q[0], 1);
    assert_int_equal(q[1], 2);
    assert_int_equal(q[2], 5);
    /* the spec's worked example (§5.5.2): CIFAR-100-LT IF100, batch 128 */
    const long m100[2] = {10847 - 5, 5};
    assert_int_equal(bc_sizes(2, m100, 128, &I, &nb, q), LT_OK);
    assert_int_equal(I, 85);
    /* ImageNet-LT (§5.2): N = 115,846, B = 512, C = 1000 -> I = 227, nb = 117, q = 24 for 5 images */
    long *big = calloc(1000, sizeof *big), *qb = calloc(1000, sizeof *qb);
    for (int c = 0; c < 1000; c++) big[c] = c == 0 ? 115846 - 999 * 5 : 5;
    assert_int_equal(bc_sizes(1000, big, 512, &I, &nb, qb), LT_OK);
    assert_int_equal(I, 227);
    assert_int_equal(nb, 117);
    assert_int_equal(qb[1], 24);
    assert_int_equal(qb[0], 1);
    free(big);
    free(qb);
    /* a class without images has no deque to fill */
    const long bad[2] = {5, 0};
    assert_int_not_equal(bc_sizes(2, bad, 4, &I, &nb, q), LT_OK);
}

/* ---- a state without a host (sizes, deques, bank) ------------------------------------- */

enum { SC = 3, SD = 3, SB = 10 };
static const long s_counts[SC] = {30, 12, 4};

typedef struct {
    lt_run_info run;
    lt_host_api api;
    cJSON *obj;
    struct lt_hparams hp;
    bc_state *st;
} bare;

static void bare_open(bare *F) {
    memset(F, 0, sizeof *F);
    assert_int_equal(lt_method_hparams(bcrumb_entry_under_test(), NULL, &F->obj), LT_OK);
    F->hp.obj = F->obj;
    F->api.version = 1;
    F->run.seed = 11;
    F->run.n_classes = SC;
    F->run.feat_dim = SD;
    F->run.class_counts = s_counts;
    F->run.in_shape = (lt_shape){1, 1, 4, 4};
    F->run.api = &F->api;
    F->st = calloc(1, sizeof(bc_state));
    assert_int_equal(bc_init(F->st, &F->run, &F->hp), LT_OK);
    assert_int_equal(bc_alloc(F->st, SB), LT_OK);
}

static void bare_close(bare *F) {
    bc_fini(F->st);
    free(F->st);
    cJSON_Delete(F->obj);
}

/* The feature of image r of class c at epoch e: distinct, not centred. */
static float feat_of(int e, int c, int r, int d) {
    return (float)(0.5 * e + 3.0 * c + 0.01 * r * (d + 1) + sin(1.7 * e + r + 0.3 * d) + d);
}

/* One epoch's features fed as the runner does: images in a shuffled order,
 * batches of SB (the last partial). order[c][k] = image of class c's k-th
 * row this epoch, for the naive reference. */
static void feed_epoch(bc_state *st, int e, int order[SC][64]) {
    int32_t ids[64], y[64];
    long N = 0, k[SC] = {0};
    for (int c = 0; c < SC; c++)
        for (int r = 0; r < s_counts[c]; r++) {
            ids[N] = r;
            y[N++] = c;
        }
    lt_rng g;
    lt_rng_init(&g, 99, (uint64_t)e);
    for (long i = N - 1; i > 0; i--) {   /* shuffle (id, class) pairs together */
        const long j = lt_rng_below(&g, (uint32_t)(i + 1));
        int32_t t = ids[i]; ids[i] = ids[j]; ids[j] = t;
        t = y[i]; y[i] = y[j]; y[j] = t;
    }
    float f[SB * SD];
    for (long b0 = 0; b0 < N; b0 += SB) {
        const int n = N - b0 < SB ? (int)(N - b0) : SB;
        for (int i = 0; i < n; i++) {
            const int c = y[b0 + i], r = ids[b0 + i];
            order[c][k[c]++] = r;
            for (int d = 0; d < SD; d++) f[i * SD + d] = feat_of(e, c, r, d);
        }
        assert_int_equal(bc_append(st, n, f, y + b0), LT_OK);
    }
}

static void test_deques_and_bank(void **unused) {
    (void)unused;
    bare F;
    bare_open(&F);
    bc_state *st = F.st;
    assert_int_equal(st->I, 5);
    assert_int_equal(st->nb, 17);
    /* the history holds sum_c q_c n_c = 30 + 24 + 20 rows <= N + C nb */
    assert_int_equal(st->hist_floats, (size_t)(30 + 24 + 20) * SD);
    assert_true(30 + 24 + 20 <= 46 + 3 * 17);
    static int order[8][SC][64];   /* per epoch */
    const int E = 7;
    for (int e = 0; e < E; e++) {
        feed_epoch(st, e, order[e]);
        assert_int_equal(bc_epoch_close(st), LT_OK);
        /* ready once class 2 (q = 5) has 5 epochs */
        assert_int_equal(st->ready, e >= 4);
        for (int c = 0; c < SC; c++) assert_int_equal(st->len[c], e + 1 < st->q[c] ? e + 1 : st->q[c]);
    }
    assert_int_equal(st->peak_rows, 30 + 24 + 20);
    const int latest = E - 1;
    bc_bank_build(st, E);
    const long keep = st->I * SB, tot = (long)SC * st->nb;
    assert_int_equal(keep, 50);
    /* the permutation is one: every (class, row) once */
    char *seen = calloc((size_t)tot, 1);
    long per[SC] = {0};
    for (long r = 0; r < tot; r++) {
        assert_true(st->perm[r] >= 0 && st->perm[r] < tot);
        assert_int_equal(seen[st->perm[r]], 0);
        seen[st->perm[r]] = 1;
        if (r < keep) per[st->bank_y[r]]++;
    }
    free(seen);
    /* nb rows per class before the cut to I B rows, of which 50 of 51 are kept */
    assert_int_equal(per[0] + per[1] + per[2], keep);
    for (int c = 0; c < SC; c++) {
        long all = 0;
        for (long r = 0; r < tot; r++) all += st->perm[r] / st->nb == c;
        assert_int_equal(all, st->nb);
        assert_true(per[c] >= st->nb - 1 && per[c] <= st->nb);
    }
    /* every kept row, naively: class c's residuals, most recent epoch first,
     * rows in the order they were fed, the first nb, plus the latest mean */
    double worst = 0;
    for (long r = 0; r < keep; r++) {
        const int c = st->bank_y[r];
        const long k = st->perm[r] % st->nb;
        assert_int_equal(c, st->perm[r] / st->nb);
        const int e = latest - (int)(k / s_counts[c]);
        const int img = order[e][c][k % s_counts[c]];
        assert_true(e > latest - st->q[c]);   /* only the last q_c epochs */
        for (int d = 0; d < SD; d++) {
            double me = 0, ml = 0;
            for (int i = 0; i < s_counts[c]; i++) {
                me += feat_of(e, c, i, d);
                ml += feat_of(latest, c, i, d);
            }
            me /= (double)s_counts[c];
            ml /= (double)s_counts[c];
            const double want = (double)feat_of(e, c, img, d) - me + ml;
            worst = lt_tmax(worst, fabs(st->bank[r * SD + d] - want));   /* a NaN stays and fails */
        }
    }
    print_message("note: bank vs naive residual + latest mean: max |diff| %.3g\n", worst);
    assert_true(worst < 1e-5);
    /* class 0 (30 images >= nb) is the latest epoch only; class 2 reaches
     * back 5 epochs (17 = 4 * 4 + 1 rows) */
    /* the same epoch gives the same bank, another epoch another order */
    float *b1 = malloc((size_t)keep * SD * sizeof(float));
    memcpy(b1, st->bank, (size_t)keep * SD * sizeof(float));
    bc_bank_build(st, E);
    assert_memory_equal(b1, st->bank, (size_t)keep * SD * sizeof(float));
    bc_bank_build(st, E + 1);
    assert_memory_not_equal(b1, st->bank, (size_t)keep * SD * sizeof(float));
    free(b1);
    /* an epoch that misses an image, or sees one twice, is an error */
    int ord[SC][64];
    feed_epoch(st, E, ord);
    st->fill[1]--;
    assert_int_not_equal(bc_epoch_close(st), LT_OK);
    st->fill[1] = st->n[1];
    float f[SD] = {0};
    int32_t y1 = 1;
    assert_int_not_equal(bc_append(st, 1, f, &y1), LT_OK);
    bare_close(&F);
}

/* ---- the fake host: engine pieces behind the service table ---------------------------- */

enum { HC = 3, HB = 8, HW = 12 };
static const long h_counts[HC] = {12, 6, 4};   /* pass = 12 x 3 = 36 = 9 visits of 4 */

typedef struct {
    lt_run_info run;
    lt_host_api api;
    cJSON *obj;
    struct lt_hparams hp;
    lt_dataset ds;
    lt_aug aug;
    lt_drawer *drawer;
    lt_model *m;
    bc_state *st;
    lt_subgraph *sg;
    lt_model *mod;
    lt_optim opt;
    int have_opt;
    long steps;
} fx;

static int fx_subgraph(void *host, lt_model *m, const char *from, const char *to, int rows, lt_subgraph **sg) {
    fx *F = host;
    LT_TRY(lt_subgraph_create(sg, m, lt_model_find(m, from), lt_model_find(m, to), rows));
    F->sg = *sg;
    return LT_OK;
}

static int fx_module_new(void *host, const char *name, lt_shape in, lt_model **m) {
    fx *F = host;
    (void)name;
    LT_TRY(lt_model_create(&F->mod, in));
    *m = F->mod;
    return LT_OK;
}

static int fx_module_ready(void *host, lt_model *m, const lt_module_cfg *cfg) {
    fx *F = host;
    LT_TRY(lt_model_finalize(m, 5));
    LT_TRY(lt_model_set_batch(m, cfg->max_rows));
    LT_TRY(lt_optim_init(&F->opt, m, cfg->kind, cfg->momentum, cfg->weight_decay, cfg->nesterov));
    F->have_opt = 1;
    return LT_OK;
}

static int fx_module_step(void *host, lt_model *m, long iter, long ipe, float *lr) {
    fx *F = host;
    (void)iter;
    (void)ipe;
    if (lr) *lr = 0.1f;
    F->steps++;
    return lt_optim_step(&F->opt, m, 0.1f);
}

static int fx_draw(void *host, const lt_draw_req *req, float *x, int32_t *labels, int32_t *ids) {
    fx *F = host;
    return lt_drawer_draw(F->drawer, req, x, labels, ids);
}

static lt_model *resnet8(void) {
    lt_model *m;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 1, HW, HW}), LT_OK);
    int f = lt_resnet_backbone(m, "resnet8_cifar");
    assert_true(f > 0);
    assert_true(lt_add_linear(m, "logits", "head", f, HC, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 3), LT_OK);
    assert_int_equal(lt_model_set_batch(m, HB), LT_OK);
    return m;
}

static void fx_open(fx *F) {
    memset(F, 0, sizeof *F);
    long N = 0;
    for (int c = 0; c < HC; c++) N += h_counts[c];
    assert_int_equal(lt_dataset_alloc(&F->ds, N, 1, HW, HW, HC), LT_OK);
    lt_rng g;
    lt_rng_init(&g, 4, 4);
    for (size_t i = 0; i < (size_t)N * HW * HW; i++) F->ds.pixels[i] = (uint8_t)lt_rng_below(&g, 256);
    /* labels: classes interleaved (not sorted), with the right counts */
    long left[HC];
    memcpy(left, h_counts, sizeof left);
    for (long i = 0, c = 0; i < N; c = (c + 1) % HC) {
        if (left[c] > 0) {
            F->ds.labels[i++] = (int32_t)c;
            left[c]--;
        }
    }
    F->aug = (lt_aug){.out_h = HW, .out_w = HW, .pad = 2, .random_crop = 1, .hflip = 1, .mean = {0.3f}, .std = {0.3f}};
    assert_int_equal(lt_drawer_create(&F->drawer, &F->ds, &F->aug, 21), LT_OK);
    assert_int_equal(lt_method_hparams(bcrumb_entry_under_test(), NULL, &F->obj), LT_OK);
    F->hp.obj = F->obj;
    F->api.version = LT_HOST_API_VERSION;
    F->api.subgraph = fx_subgraph;
    F->api.module_new = fx_module_new;
    F->api.module_ready = fx_module_ready;
    F->api.module_step = fx_module_step;
    F->api.draw = fx_draw;
    F->run.method = "bcrumb";
    F->run.seed = 2;
    F->run.n_classes = HC;
    F->run.class_counts = h_counts;
    F->run.n_train = N;
    F->run.in_shape = (lt_shape){1, 1, HW, HW};
    F->run.host = F;
    F->run.api = &F->api;
    F->m = resnet8();
    F->run.feat_dim = (int)lt_model_out_size(F->m, lt_model_find(F->m, "feat"));
    F->st = calloc(1, sizeof(bc_state));
    assert_int_equal(bc_init(F->st, &F->run, &F->hp), LT_OK);
    lt_stage cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.batch = HB;
    cfg.drop_last = 1;
    cfg.views = cfg.model_views = 1;
    cfg.momentum = 0.9f;
    cfg.weight_decay = 5e-4f;
    cfg.sched = (lt_sched){.kind = LT_SCHED_CONSTANT, .base_lr = 0.1};
    assert_int_equal(bc_stage_begin(F->st, 0, &cfg, F->m), LT_OK);
    assert_int_equal(cfg.drop_last, 0);   /* the official loader keeps the last batch */
    assert_int_equal(cfg.sampler.kind, LT_SAMPLER_INSTANCE);
}

static void fx_close(fx *F) {
    bc_fini(F->st);
    free(F->st);
    lt_subgraph_free(F->sg);
    if (F->have_opt) lt_optim_free(&F->opt);
    lt_model_free(F->mod);
    lt_model_free(F->m);
    lt_drawer_free(F->drawer);
    lt_dataset_free(&F->ds);
    cJSON_Delete(F->obj);
}

/* Gradients of every parameter of m after one CE iteration on (x, y). */
static float *iteration_grads(lt_model *m, const float *x, const int32_t *y, size_t *count) {
    assert_int_equal(lt_model_forward(m, x, HB, 1), LT_OK);
    const int lg = lt_model_find(m, "logits");
    double loss;
    lt_model_zero_grad(m);
    assert_int_equal(lt_softmax_ce(HB, HC, lt_model_out(m, lg), y, NULL, NULL, &loss, lt_model_dout(m, lg)), LT_OK);
    assert_int_equal(lt_model_backward(m, HB, &lg, 1), LT_OK);
    size_t tot = 0;
    for (int k = 0; k < lt_model_n_params(m); k++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(m, k, &p), LT_OK);
        tot += p.count;
    }
    float *g = malloc(tot * sizeof *g);
    size_t o = 0;
    for (int k = 0; k < lt_model_n_params(m); k++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(m, k, &p), LT_OK);
        memcpy(g + o, p.g, p.count * sizeof(float));
        o += p.count;
    }
    *count = tot;
    return g;
}

static void cb_weights(fx *F, float *out) {
    lt_param_info w;
    assert_int_equal(lt_model_param_find(F->mod, "cb.weight", &w), LT_OK);
    memcpy(out, w.w, w.count * sizeof(float));
}

static void test_no_gradient_into_backbone(void **unused) {
    (void)unused;
    fx F;
    fx_open(&F);
    bc_state *st = F.st;
    lt_model *ref = resnet8();   /* the same weights: same seed, same graph */
    float x[HB * HW * HW];
    int32_t y[HB];
    lt_rng g;
    lt_rng_init(&g, 8, 8);
    for (int i = 0; i < HB * HW * HW; i++) x[i] = (float)lt_rng_normal(&g);
    for (int i = 0; i < HB; i++) y[i] = i % HC;
    const size_t nw = (size_t)HC * st->D;
    float *w0 = malloc(nw * sizeof(float)), *w1 = malloc(nw * sizeof(float));
    for (int phase = 0; phase < 2; phase++) {
        /* phase 0: the warm-up (F on a class-aware batch); phase 1: the bank */
        if (phase == 1) {
            int32_t yy[HB];
            float *f = calloc((size_t)HB * st->D, sizeof(float));
            for (int e = 0; !st->ready; e++) {
                long left[HC];
                memcpy(left, h_counts, sizeof left);
                for (int c = 0, done = 0; !done;) {
                    int n = 0;
                    for (; n < HB; c = (c + 1) % HC) {
                        if (left[0] + left[1] + left[2] == 0) break;
                        if (left[c] > 0) {
                            yy[n] = c;
                            for (int d = 0; d < st->D; d++) f[n * st->D + d] = (float)(e + c + 0.1 * left[c] + d);
                            left[c]--;
                            n++;
                        }
                    }
                    if (n) assert_int_equal(bc_append(st, n, f, yy), LT_OK);
                    done = left[0] + left[1] + left[2] == 0;
                }
                assert_int_equal(bc_epoch_close(st), LT_OK);
            }
            free(f);
        }
        const int epoch = phase == 0 ? 0 : 9;
        lt_batch b = {HB, x, y, NULL, 0, epoch, (long)epoch * st->I + 1, HB, 1};
        lt_rng r;
        lt_rng_init(&r, 1, 1);
        cb_weights(&F, w0);
        const long steps = F.steps;
        assert_int_equal(bc_batch_hook(st, &b, &r), LT_OK);
        assert_int_equal(F.steps, steps + 1);
        cb_weights(&F, w1);
        assert_memory_not_equal(w0, w1, nw * sizeof(float));   /* Cb did train */
        if (phase == 0) {
            /* F on the warm-up images through the sub-graph is F */
            float *xd = malloc((size_t)HB * HW * HW * sizeof(float));
            memcpy(xd, st->dx, (size_t)HB * HW * HW * sizeof(float));
            assert_int_equal(lt_model_forward(ref, xd, HB, 1), LT_OK);
            const float *a = lt_model_out(ref, lt_model_find(ref, "feat"));
            const float *s = lt_subgraph_out(st->sg, st->feat);
            double mx = 0;
            for (int i = 0; i < HB * st->D; i++) mx = lt_tmax(mx, fabs(a[i] - s[i]));   /* a NaN stays and fails */
            print_message("note: warm-up feat through the sub-graph vs the model's forward: max |diff| %.3g\n", mx);
            assert_true(mx < 1e-5);
            free(xd);
        } else {
            assert_int_equal(st->bank_epoch, 9);
            assert_int_equal(st->ready_epoch, 9);
        }
        /* the iteration's F + R gradients: with Cb's step before, and without */
        size_t na, nr;
        float *ga = iteration_grads(F.m, x, y, &na);
        float *gr = iteration_grads(ref, x, y, &nr);
        assert_int_equal(na, nr);
        assert_memory_equal(ga, gr, na * sizeof(float));
        free(ga);
        free(gr);
    }
    free(w0);
    free(w1);
    lt_model_free(ref);
    fx_close(&F);
}

/* ---- the warm-up sampler ---------------------------------------------------------------- */

static void test_warmup_sampler(void **unused) {
    (void)unused;
    fx F;
    fx_open(&F);
    bc_state *st = F.st;
    assert_int_equal(st->cas_len, 36);   /* max_c n_c x C */
    enum { ITERS = 18, SLOTS = ITERS * HB };   /* 144 slots = 4 passes */
    int32_t lab[SLOTS], id[SLOTS];
    float x[HB * HW * HW];
    int32_t y[HB];
    memset(x, 0, sizeof x);
    memset(y, 0, sizeof y);
    for (int it = 0; it < ITERS; it++) {
        /* iterations of consecutive epochs (I = 3): the slots run on */
        lt_batch b = {HB, x, y, NULL, 0, it / (int)st->I, it, HB, 1};
        lt_rng r;
        lt_rng_init(&r, 1, 1);
        assert_int_equal(bc_batch_hook(st, &b, &r), LT_OK);
        memcpy(lab + it * HB, st->dy, sizeof y);
        memcpy(id + it * HB, st->did, sizeof y);
    }
    int orders_differ = 0, first[HC];
    for (int s = 0; s < SLOTS; s++) assert_int_equal(lab[s], F.ds.labels[id[s]]);
    for (int v = 0; v < SLOTS / 4; v++) {
        /* 4 consecutive images of one class per visit */
        for (int j = 1; j < 4; j++) assert_int_equal(lab[4 * v + j], lab[4 * v]);
        /* every class once per cycle of 3 visits (passes of 9 visits) */
        if (v % HC == 0) {
            int have[HC] = {0};
            for (int j = 0; j < HC; j++) have[lab[4 * (v + j)]]++;
            for (int c = 0; c < HC; c++) assert_int_equal(have[c], 1);
            int cyc[HC];
            for (int j = 0; j < HC; j++) cyc[j] = lab[4 * (v + j)];
            if (v == 0) memcpy(first, cyc, sizeof first);
            else orders_differ += memcmp(first, cyc, sizeof first) != 0;
        }
    }
    print_message("note: %d of %d later class cycles differ from the first\n", orders_differ, SLOTS / 4 / HC - 1);
    assert_true(orders_differ > 0);   /* reshuffled per cycle */
    /* within a pass each class's images cycle: class 0's 12 visits-worth of
     * slots hold each of its 12 images once, class 2's every 4 slots its 4 */
    for (int p = 0; p < SLOTS / 36; p++) {
        int cnt[HC] = {0}, seen0[64] = {0};
        for (int s = 36 * p; s < 36 * (p + 1); s++) {
            const int c = lab[s];
            if (c == 0) seen0[id[s]]++;
            cnt[c]++;
        }
        for (int c = 0; c < HC; c++) assert_int_equal(cnt[c], 12);
        for (int i = 0; i < (int)F.ds.n; i++)
            if (F.ds.labels[i] == 0) assert_int_equal(seen0[i], 1);
    }
    /* the same iteration draws the same batch (a resumed run redraws it) */
    lt_batch b = {HB, x, y, NULL, 0, 1, 5, HB, 1};
    lt_rng r;
    lt_rng_init(&r, 1, 1);
    assert_int_equal(bc_batch_hook(st, &b, &r), LT_OK);
    assert_memory_equal(st->did, id + 5 * HB, sizeof y);
    fx_close(&F);
}

/* ---- registration and defaults ------------------------------------------------------------ */

static void test_defaults(void **unused) {
    (void)unused;
    const lt_method *M = lt_method_bcrumb();
    assert_string_equal(M->name, "bcrumb");
    assert_string_equal(M->fidelity, "official-code");
    assert_null(M->stage1_from);
    assert_int_equal(M->abi, LT_METHOD_ABI);
    char *d;
    size_t n;
    assert_int_equal(lt_io_read_all("methods/bcrumb/defaults.json", &d, &n), LT_OK);
    while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == ' ')) d[--n] = 0;
    assert_string_equal(d, M->defaults);
    free(d);
    lt_host_api api = {.version = 1};
    const long counts[2] = {5, 1};
    lt_run_info run = {.n_classes = 2, .feat_dim = 4, .class_counts = counts, .api = &api};
    const char *bad[] = {"{\"k_per_class\": 0}", "{\"cb_lr_mult\": -1}"};
    const char *key[] = {"k_per_class", "cb_lr_mult"};
    for (int i = 0; i < 2; i++) {
        cJSON *o;
        assert_int_equal(lt_method_hparams(M, bad[i], &o), LT_OK);
        struct lt_hparams hp = {o};
        bc_state st;
        memset(&st, 0, sizeof st);
        assert_int_not_equal(bc_init(&st, &run, &hp), LT_OK);
        assert_non_null(strstr(lt_errmsg(), key[i]));
        bc_fini(&st);
        cJSON_Delete(o);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_deques_and_bank),
        cmocka_unit_test(test_no_gradient_into_backbone),
        cmocka_unit_test(test_warmup_sampler),
        cmocka_unit_test(test_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
