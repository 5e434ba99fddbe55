/* test_method_iccl.c — Interpolative Centroid Contrastive Learning
 * (methods/iccl), white-box: the method source is included with its entry
 * point renamed, and its hooks run on a tiny model and a synthetic dataset
 * whose extra batches come from the engine's lt_drawer behind a fake host:
 *   - the ICCL loss against the naive formula written here in double
 *     (z = g/|g|, s = z.c/tau, -lam log p[y^a] - (1-lam) log p[y^b]),
 *     its gradient with respect to the projection output g by finite
 *     differences, w_iccl scaling it, and the centroids untouched (they are
 *     constants of the loss);
 *   - the interpolation: rows [2n, 3n) = lam_i A_i + (1 - lam_i) B_i with one
 *     lam per pair, the labels kept as (y^a, y^b, lam), alpha = 0 gives the
 *     A rows; the same iteration redraws the same B and lam;
 *   - the two streams' class pattern: A over an epoch is the instance list
 *     (class counts = the training counts), B is the class-aware list with
 *     k = 1 (every aligned run of C rows holds each class once, across
 *     batches), rows [n, 2n);
 *   - the loss hook: CE on A only (zero logit gradient on B and M rows), the
 *     ICCL gradient on M's projection rows only, the total; iter_end's
 *     centroid EMA over the A then B rows, and the epoch-mean mode;
 *   - stage 2 is cRT (frozen backbone and projection head, class-balanced
 *     sampler, re-initialised classifier);
 *   - defaults.json equals the defaults; bad hyper-parameters are refused
 *     naming the key.
 * The resume test runs through the runner: test_method_iccl_run.c. */
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

#define lt_method_iccl iccl_entry_under_test
#include "../methods/iccl/method.c"
#undef lt_method_iccl
const lt_method *lt_method_iccl(void);

static const gc_opts LOSS_TOL = {1e-3, 1e-2, 1e-5, 0};

/* ---- the loss against the naive formula ------------------------------------------- */

enum { LN = 5, LC = 4, LD = 6 };

typedef struct {
    float *g, *cent, *lam;
    int32_t *ya, *yb;
    double tau;
} lctx;

/* mean_i [ -lam_i log softmax(s_i)[ya_i] - (1 - lam_i) log softmax(s_i)[yb_i] ], in double */
static double naive_iccl(void *p) {
    const lctx *c = p;
    double L = 0;
    for (int i = 0; i < LN; i++) {
        double nz = 0, s[LC], mx = -INFINITY, se = 0;
        for (int j = 0; j < LD; j++) nz += (double)c->g[i * LD + j] * c->g[i * LD + j];
        nz = sqrt(nz);
        for (int k = 0; k < LC; k++) {
            s[k] = 0;
            for (int j = 0; j < LD; j++) s[k] += c->g[i * LD + j] / nz * c->cent[k * LD + j];
            s[k] /= c->tau;
            mx = fmax(mx, s[k]);
        }
        for (int k = 0; k < LC; k++) se += exp(s[k] - mx);
        const double lse = mx + log(se);
        L += -c->lam[i] * (s[c->ya[i]] - lse) - (1.0 - c->lam[i]) * (s[c->yb[i]] - lse);
    }
    return L / LN;
}

static void test_loss_naive(void **unused) {
    (void)unused;
    float g[LN * LD], z[LN * LD], cent[LC * LD], cent0[LC * LD], lam[LN] = {0.9f, 0.1f, 0.5f, 0.3f, 1.0f};
    int32_t ya[LN] = {0, 1, 2, 3, 1}, yb[LN] = {3, 1, 0, 2, 0};   /* row 1: both sources of one class */
    gc_fill(g, LN * LD, 21, -1, 1);
    gc_fill(cent, LC * LD, 22, -1, 1);
    lt_l2_normalize_rows(LC, LD, cent, 1e-12f, cent);
    memcpy(cent0, cent, sizeof cent);
    float s[LN * LC], ds[LN * LC], dz[LN * LD], dg[LN * LD], dg2[LN * LD];
    const double tau = 0.1;
    lctx c = {g, cent, lam, ya, yb, tau};
    double loss;
    lt_l2_normalize_rows(LN, LD, g, ICCL_EPS, z);
    assert_int_equal(iccl_centroid_loss(LN, LC, LD, g, z, cent, tau, ya, yb, lam, 1.0, s, ds, dz, &loss, dg), LT_OK);
    const double ref = naive_iccl(&c);
    print_message("note: iccl loss %.6f, naive %.6f\n", loss, ref);
    assert_float_equal(loss, ref, 1e-5 * fmax(1.0, fabs(ref)));
    assert_int_equal(gc_check("iccl dL/dg", naive_iccl, &c, g, dg, LN * LD, &LOSS_TOL), 0);
    /* the centroids are constants: unchanged, and no gradient slot exists */
    assert_memory_equal(cent, cent0, sizeof cent);
    /* w_iccl scales the gradient, not the returned (unweighted) loss */
    double loss2;
    assert_int_equal(iccl_centroid_loss(LN, LC, LD, g, z, cent, tau, ya, yb, lam, 2.5, s, ds, dz, &loss2, dg2), LT_OK);
    assert_true(loss2 == loss);
    for (int i = 0; i < LN * LD; i++) assert_float_equal(dg2[i], 2.5 * dg[i], 1e-6 + 1e-5 * fabs(dg[i]));
    /* the gradient does not move |g| (it is orthogonal to z per row) */
    for (int i = 0; i < LN; i++) {
        double dot = 0;
        for (int j = 0; j < LD; j++) dot += (double)dg[i * LD + j] * z[i * LD + j];
        assert_true(fabs(dot) < 1e-5);
    }
    /* lam = 1 on every row is plain centroid CE toward y^a: yb is irrelevant */
    float one[LN] = {1, 1, 1, 1, 1};
    int32_t other[LN] = {1, 2, 3, 0, 2};
    double la, lb;
    float dga[LN * LD], dgb[LN * LD];
    assert_int_equal(iccl_centroid_loss(LN, LC, LD, g, z, cent, tau, ya, yb, one, 1.0, s, ds, dz, &la, dga), LT_OK);
    assert_int_equal(iccl_centroid_loss(LN, LC, LD, g, z, cent, tau, ya, other, one, 1.0, s, ds, dz, &lb, dgb), LT_OK);
    assert_true(la == lb);
    assert_memory_equal(dga, dgb, sizeof dga);
}

/* ---- hooks on a tiny model with a synthetic dataset behind a fake host ------------ */

enum { HC = 4, HD = 3, HB = 8, HH = 4, HW = 4 };
/* 72 images: 36, 20, 12, 4 (a multiple of C, so the class-aware list's
 * cycles of C line up over a whole list) */
static const long COUNTS[HC] = {36, 20, 12, 4};

typedef struct fx {
    lt_run_info run;
    lt_host_api api;
    cJSON *obj;
    struct lt_hparams hp;
    lt_model *m;
    iccl_state *st;
    lt_dataset ds;
    lt_aug aug;
    lt_drawer *drawer;
    long counts[HC];
    long draws;
} fx;

static int fx_draw(void *host, const lt_draw_req *r, float *x, int32_t *labels, int32_t *ids) {
    fx *F = host;
    F->draws++;
    return lt_drawer_draw(F->drawer, r, x, labels, ids);
}

static void fx_open(fx *F, const char *overrides) {
    memset(F, 0, sizeof *F);
    long n = 0;
    for (int k = 0; k < HC; k++) n += COUNTS[k];
    assert_int_equal(lt_dataset_alloc(&F->ds, n, 1, HH, HW, HC), LT_OK);
    /* labels interleaved so that class order is not image order; pixels vary */
    long left[HC];
    memcpy(left, COUNTS, sizeof left);
    for (long i = 0, k = 0; i < n; k = (k + 1) % HC) {
        if (!left[k]) continue;
        left[k]--;
        F->ds.labels[i] = (int32_t)k;
        for (int p = 0; p < HH * HW; p++) F->ds.pixels[i * HH * HW + p] = (uint8_t)((i * 37 + p * 11) % 251);
        i++;
    }
    lt_dataset_class_counts(&F->ds, F->counts);
    for (int k = 0; k < HC; k++) assert_int_equal(F->counts[k], COUNTS[k]);
    F->aug.out_h = HH;
    F->aug.out_w = HW;
    F->aug.mean[0] = 0.5f;
    F->aug.std[0] = 0.25f;
    assert_int_equal(lt_drawer_create(&F->drawer, &F->ds, &F->aug, 5), LT_OK);
    assert_int_equal(lt_method_hparams(iccl_entry_under_test(), overrides, &F->obj), LT_OK);
    F->hp.obj = F->obj;
    F->api.version = LT_HOST_API_VERSION;
    F->api.draw = fx_draw;
    F->run.method = "iccl";
    F->run.seed = 5;
    F->run.n_classes = HC;
    F->run.n_train = n;
    F->run.class_counts = F->counts;
    F->run.feat_dim = HD;
    F->run.in_shape = (lt_shape){1, 1, HH, HW};
    F->run.train = &F->ds;
    F->run.aug = &F->aug;
    F->run.host = F;
    F->run.api = &F->api;
    F->st = calloc(1, sizeof(iccl_state));
    assert_int_equal(iccl_init(F->st, &F->run, &F->hp), LT_OK);
    assert_int_equal(lt_model_create(&F->m, F->run.in_shape), LT_OK);
    int c = lt_add_conv(F->m, "conv", "backbone", 0, HD, 3, 1, 1, 1, 0);
    int f = lt_add_gap(F->m, "feat", "backbone", c);
    assert_int_equal(iccl_build(F->st, F->m, f), LT_OK);
    assert_int_equal(lt_model_finalize(F->m, 3), LT_OK);
    assert_int_equal(lt_model_set_batch(F->m, 3 * HB), LT_OK);
}

static void fx_stage(fx *F, int stage, lt_stage *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->index = stage;
    cfg->epochs = 2;
    cfg->batch = HB;
    cfg->views = cfg->model_views = 1;
    cfg->augment = 1;
    cfg->sampler.kind = stage ? LT_SAMPLER_CLASS_BALANCED : LT_SAMPLER_INSTANCE;
    assert_int_equal(iccl_stage_begin(F->st, stage, cfg, F->m), LT_OK);
}

static void fx_close(fx *F) {
    iccl_fini(F->st);
    free(F->st);
    lt_model_free(F->m);
    cJSON_Delete(F->obj);
    lt_drawer_free(F->drawer);
    lt_dataset_free(&F->ds);
}

typedef struct {
    float x[3 * HB * HH * HW];
    int32_t y[3 * HB], id[3 * HB];
} rows;

/* The runner's batch: A = samples idx[0..n) through the eval transform,
 * then the batch hook with the runner's per-iteration stream. */
static lt_batch fx_batch(fx *F, rows *R, const int32_t *idx, int n, int epoch, long git) {
    const size_t in = HH * HW;
    for (int i = 0; i < n; i++) {
        lt_aug_eval(&F->aug, 1, HH, HW, F->ds.pixels + (size_t)idx[i] * in, R->x + i * in);
        R->y[i] = F->ds.labels[idx[i]];
        R->id[i] = idx[i];
    }
    lt_batch b = {n, R->x, R->y, R->id, 0, epoch, git, 3 * HB, 1};
    lt_rng base, r;
    lt_rng_init(&base, F->run.seed, LT_STREAM_METHOD);
    lt_rng_derive(&r, &base, (uint64_t)git, 0);
    assert_int_equal(iccl_batch_hook(F->st, &b, &r), LT_OK);
    return b;
}

static void test_interpolation(void **unused) {
    (void)unused;
    fx F;
    lt_stage cfg;
    fx_open(&F, NULL);
    fx_stage(&F, 0, &cfg);
    assert_int_equal(cfg.batch_cap, 3 * HB);
    const size_t in = HH * HW;
    int32_t idx[HB];
    for (int i = 0; i < HB; i++) idx[i] = (int32_t)(7 * i + 3);
    static rows R, R2;
    lt_batch b = fx_batch(&F, &R, idx, HB, 0, 4);
    assert_int_equal(b.n, 3 * HB);
    assert_int_equal(F.st->ns, HB);
    double lam_sum = 0;
    int distinct = 0;
    for (int i = 0; i < HB; i++) {
        const float l = F.st->lam[i];
        assert_true(l >= 0 && l <= 1);
        lam_sum += l;
        distinct += i > 0 && l != F.st->lam[i - 1];
        /* labels: (y^a, y^b, lam); the M row carries y^a for the runner's accuracy */
        assert_int_equal(F.st->ya[i], F.ds.labels[idx[i]]);
        assert_int_equal(F.st->yb[i], b.labels[HB + i]);
        assert_int_equal(b.labels[HB + i], F.ds.labels[b.ids[HB + i]]);
        assert_int_equal(b.labels[2 * HB + i], F.st->ya[i]);
        /* M = lam A + (1 - lam) B, row by row */
        for (size_t k = 0; k < in; k++) {
            const float a = R.x[i * in + k], bb = R.x[(HB + i) * in + k];
            assert_true(R.x[(2 * HB + i) * in + k] == l * a + (1.0f - l) * bb);
        }
    }
    assert_true(distinct >= HB - 2);   /* one lam per pair, not per batch */
    print_message("note: lam of %d pairs: mean %.3f\n", HB, lam_sum / HB);
    /* the same iteration redraws the same B rows and lam (a resume) */
    float lam0[HB];
    memcpy(lam0, F.st->lam, sizeof lam0);
    lt_batch b2 = fx_batch(&F, &R2, idx, HB, 0, 4);
    assert_int_equal(b2.n, b.n);
    assert_memory_equal(R.x, R2.x, sizeof R.x);
    assert_memory_equal(R.y, R2.y, sizeof R.y);
    assert_memory_equal(lam0, F.st->lam, sizeof lam0);
    /* a short last batch: n pairs, B still from the full-batch slots */
    lt_batch b3 = fx_batch(&F, &R2, idx, 3, 0, 5);
    assert_int_equal(b3.n, 9);
    /* stage 2 leaves the batch alone */
    lt_batch s2 = {HB, R2.x, R2.y, R2.id, 1, 0, 0, HB, 1};
    lt_rng r;
    lt_rng_init(&r, 1, 2);
    assert_int_equal(iccl_batch_hook(F.st, &s2, &r), LT_OK);
    assert_int_equal(s2.n, HB);
    fx_close(&F);
    /* alpha = 0: lam = 1, the interpolation is the A batch */
    fx_open(&F, "{\"alpha\": 0}");
    fx_stage(&F, 0, &cfg);
    b = fx_batch(&F, &R, idx, HB, 0, 0);
    for (int i = 0; i < HB; i++) assert_true(F.st->lam[i] == 1.0f);
    assert_memory_equal(R.x + 2 * HB * in, R.x, HB * in * sizeof(float));
    fx_close(&F);
}

static void test_stream_pattern(void **unused) {
    (void)unused;
    fx F;
    lt_stage cfg;
    fx_open(&F, NULL);
    fx_stage(&F, 0, &cfg);
    const long N = F.ds.n, ipe = N / HB;   /* 9 batches: the A epoch exactly */
    int32_t order[72], bseq[72 * 2];
    long acount[HC] = {0}, bcount[HC] = {0}, nb = 0;
    static rows R;
    for (int e = 0; e < 2; e++) {
        /* A: the runner's instance-balanced list of the epoch */
        lt_sampler_cfg sc = {.kind = LT_SAMPLER_INSTANCE};
        assert_int_equal(lt_sampler_epoch(&sc, e, 5, LT_STREAM_ORDER, F.ds.labels, N, HC, order, N), LT_OK);
        memset(acount, 0, sizeof acount);
        for (long it = 0; it < ipe; it++) {
            lt_batch b = fx_batch(&F, &R, order + it * HB, HB, e, e * ipe + it);
            for (int i = 0; i < HB; i++) {
                acount[b.labels[i]]++;
                bseq[nb++] = b.labels[HB + i];
                bcount[b.labels[HB + i]]++;
            }
        }
        /* A over an epoch: every training image once, class counts n_c */
        for (int k = 0; k < HC; k++) assert_int_equal(acount[k], COUNTS[k]);
    }
    /* B: class-aware with k = 1, one list stream across batches and epochs:
     * each aligned run of C rows is a permutation of the classes */
    assert_int_equal(nb, 2 * N);
    for (long s = 0; s + HC <= nb; s += HC) {
        int seen[HC] = {0};
        for (int j = 0; j < HC; j++) seen[bseq[s + j]]++;
        for (int k = 0; k < HC; k++) assert_int_equal(seen[k], 1);
    }
    for (int k = 0; k < HC; k++) assert_int_equal(bcount[k], 2 * N / HC);
    print_message("note: A counts %ld %ld %ld %ld per epoch, B %ld %ld %ld %ld over two\n", acount[0], acount[1],
                  acount[2], acount[3], bcount[0], bcount[1], bcount[2], bcount[3]);
    /* B rows are not a copy of the A rows' classes: the tail class is as
     * frequent as the head class in B */
    assert_int_equal(bcount[3], bcount[0]);
    assert_int_equal(F.draws, 2 * ipe);
    fx_close(&F);
}

/* ---- the loss hook and the centroid update ------------------------------------------ */

static void loss_hook(const char *overrides, int mixup) {
    fx F;
    lt_stage cfg;
    fx_open(&F, overrides);
    fx_stage(&F, 0, &cfg);
    iccl_state *st = F.st;
    const int n = 6, d = st->d;
    int32_t idx[6] = {0, 9, 20, 33, 50, 71};
    static rows R;
    lt_batch b = fx_batch(&F, &R, idx, n, 0, 2);
    lt_model *m = F.m;
    assert_int_equal(lt_model_forward(m, R.x, b.n, 1), LT_OK);
    const int lg = lt_model_find(m, "logits"), pj = lt_model_find(m, "proj"), ft = lt_model_find(m, "feat");
    lt_taps t = {b.n, HC, HD, lt_model_out(m, lg), lt_model_out(m, ft), R.y, R.id, F.counts, 0, 0, 2, 0.1f, m,
                 R.x, b.n, 1};
    lt_grads g = {lt_model_dout(m, lg), lt_model_dout(m, ft), 0, 0, {0}};
    float cent0[HC * 128];
    memcpy(cent0, st->cent, (size_t)HC * d * sizeof(float));
    double loss;
    lt_model_zero_grad(m);
    assert_int_equal(iccl_loss(st, &t, &loss, &g), LT_OK);
    assert_int_equal(g.n_extra, 1);
    assert_int_equal(g.extra[0], pj);
    /* CE on A only */
    float dce[6 * HC];
    double lce, lmix = 0;
    assert_int_equal(lt_softmax_ce(n, HC, t.logits, R.y, NULL, NULL, &lce, dce), LT_OK);
    assert_memory_equal(g.dlogits, dce, sizeof dce);
    float dmix[6 * HC];
    if (mixup) assert_int_equal(lt_mixup_ce(n, HC, t.logits + 2 * n * HC, st->ya, st->yb, st->lam, &lmix, dmix), LT_OK);
    for (int i = n * HC; i < 3 * n * HC; i++) {
        const float want = mixup && i >= 2 * n * HC ? dmix[i - 2 * n * HC] : 0.0f;
        assert_true(g.dlogits[i] == want);
    }
    /* ICCL on M's projection rows only, against the naive loss of those rows */
    const float *gp = lt_model_out(m, pj), *dg = lt_model_dout(m, pj);
    for (int i = 0; i < 2 * n * d; i++) assert_true(dg[i] == 0.0f);
    double ref = 0;
    for (int i = 0; i < n; i++) {
        const float *gi = gp + (size_t)(2 * n + i) * d;
        double nz = 0, s[HC], mx = -INFINITY, se = 0;
        for (int j = 0; j < d; j++) nz += (double)gi[j] * gi[j];
        nz = sqrt(nz);
        for (int k = 0; k < HC; k++) {
            s[k] = 0;
            for (int j = 0; j < d; j++) s[k] += gi[j] / nz * st->cent[k * d + j];
            s[k] /= st->tau;
            mx = fmax(mx, s[k]);
        }
        for (int k = 0; k < HC; k++) se += exp(s[k] - mx);
        ref += -st->lam[i] * (s[st->ya[i]] - mx - log(se)) - (1 - st->lam[i]) * (s[st->yb[i]] - mx - log(se));
    }
    ref /= n;
    const double want = lce + st->w * ref + lmix;
    print_message("note: loss hook %.6f = CE %.6f + %.1f x ICCL %.6f%s\n", loss, lce, st->w, ref,
                  mixup ? " + mixup CE" : "");
    assert_float_equal(loss, want, 1e-5 * fmax(1.0, fabs(want)));
    int nonzero = 0;   /* M's rows got a gradient, each a number: NaN != 0 would count */
    for (int i = 2 * n * d; i < 3 * n * d; i++) {
        if (!isfinite(dg[i])) fail_msg("ICCL gradient %d is %g", i, dg[i]);
        nonzero += dg[i] != 0.0f;
    }
    assert_true(nonzero > 0);
    /* the centroids are not touched by the loss ... */
    assert_memory_equal(st->cent, cent0, (size_t)HC * d * sizeof(float));
    /* ... but by iter_end: EMA over the A rows, then the B rows, in order,
     * with the embeddings of the forward (computed here by hand) */
    static float z[3 * 6 * 128];
    lt_l2_normalize_rows(2 * n, d, gp, 1e-12f, z);
    float want_c[HC * 128];
    memcpy(want_c, cent0, (size_t)HC * d * sizeof(float));
    for (int i = 0; i < 2 * n; i++)
        assert_int_equal(lt_centroids_ema(HC, d, want_c, 1, z + (size_t)i * d, R.y + i, (float)st->mu), LT_OK);
    assert_int_equal(iccl_iter_end(st, &t), LT_OK);
    assert_memory_equal(st->cent, want_c, (size_t)HC * d * sizeof(float));
    fx_close(&F);
}

static void test_loss_hook(void **unused) {
    (void)unused;
    loss_hook(NULL, 0);
    loss_hook("{\"mixup_ce\": true, \"w_iccl\": 0.5, \"proj_dim\": 16}", 1);
}

/* epoch_mean: within epoch 0 the EMA runs, the sums gather; epoch_end sets
 * each centroid to its class's normalised mean; later epochs keep it. */
static void test_epoch_mean(void **unused) {
    (void)unused;
    fx F;
    lt_stage cfg;
    fx_open(&F, "{\"centroids\": \"epoch_mean\", \"proj_dim\": 8}");
    fx_stage(&F, 0, &cfg);
    iccl_state *st = F.st;
    lt_model *m = F.m;
    const int n = HB, d = st->d;
    static rows R;
    double sum[HC * 8] = {0};
    long count[HC] = {0};
    for (int e = 0; e < 2; e++) {
        for (long it = 0; it < 3; it++) {
            int32_t idx[HB];
            for (int i = 0; i < HB; i++) idx[i] = (int32_t)((it * HB + i * 5 + e) % 72);
            lt_batch b = fx_batch(&F, &R, idx, n, e, e * 3 + it);
            assert_int_equal(lt_model_forward(m, R.x, b.n, 1), LT_OK);
            const int lg = lt_model_find(m, "logits"), pj = lt_model_find(m, "proj");
            lt_taps t = {b.n, HC, HD, lt_model_out(m, lg), NULL, R.y, R.id, F.counts, 0, e, e * 3 + it, 0.1f, m,
                         R.x, b.n, 1};
            lt_grads g = {lt_model_dout(m, lg), NULL, 0, 0, {0}};
            double loss;
            assert_int_equal(iccl_loss(st, &t, &loss, &g), LT_OK);
            float before[HC * 8];
            memcpy(before, st->cent, sizeof before);
            if (e == 1) {
                float z[2 * HB * 8];
                lt_l2_normalize_rows(2 * n, d, lt_model_out(m, pj), 1e-12f, z);
                assert_int_equal(lt_centroids_accum(HC, d, sum, count, 2 * n, z, R.y), LT_OK);
            }
            assert_int_equal(iccl_iter_end(st, &t), LT_OK);
            if (e == 1) assert_memory_equal(st->cent, before, sizeof before);   /* fixed in epoch 1 */
        }
        assert_int_equal(iccl_epoch_end(st, 0, e, m), LT_OK);
    }
    float want[HC * 8];
    memcpy(want, st->cent, sizeof want);
    assert_int_equal(lt_centroids_from_sums(HC, d, sum, count, want), HC);
    assert_memory_equal(st->cent, want, sizeof want);
    for (int k = 0; k < HC; k++) assert_int_equal(st->count[k], 0);   /* reset for the next epoch */
    fx_close(&F);
}

/* ---- stage 2 and the defaults ------------------------------------------------------- */

static void test_stage2_crt(void **unused) {
    (void)unused;
    fx F;
    lt_stage cfg;
    fx_open(&F, NULL);
    fx_stage(&F, 0, &cfg);
    fx_stage(&F, 1, &cfg);
    assert_int_equal(cfg.sampler.kind, LT_SAMPLER_CLASS_BALANCED);
    assert_true(cfg.freeze_backbone);
    assert_true(cfg.reinit_head);
    assert_true(cfg.bn_eval);
    assert_int_equal(cfg.batch_cap, 0);
    /* only the classifier trains: the backbone and the projection head are frozen */
    lt_model *m = F.m;
    const int np = lt_model_n_params(m);
    int trainable = 0;
    for (int i = 0; i < np; i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(m, i, &p), LT_OK);
        const int head = !strncmp(p.name, "logits.", 7);
        assert_int_equal(!(p.flags & LT_MASK_FROZEN), head);
        trainable += head;
    }
    assert_int_equal(trainable, 2);
    fx_close(&F);
}

static void test_defaults(void **unused) {
    (void)unused;
    const lt_method *M = lt_method_iccl();
    assert_string_equal(M->name, "iccl");
    assert_string_equal(M->fidelity, "reconstructed");
    assert_null(M->stage1_from);
    assert_int_equal(M->abi, 4);
    char *d;
    size_t n;
    assert_int_equal(lt_io_read_all("methods/iccl/defaults.json", &d, &n), LT_OK);
    while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == ' ')) d[--n] = 0;
    assert_string_equal(d, M->defaults);
    free(d);
    const char *bad[] = {"{\"tau\": 0}", "{\"alpha\": -1}", "{\"mu_c\": 1.5}", "{\"w_iccl\": -1}",
                         "{\"proj_dim\": 0}", "{\"k_per_class\": 0}", "{\"centroids\": \"queue\"}",
                         "{\"stage2_bn\": \"half\"}", "{\"stage2_sampler\": \"sqrt\"}"};
    const char *key[] = {"tau", "alpha", "mu_c", "w_iccl", "proj_dim", "k_per_class", "centroids", "stage2_bn",
                         "stage2_sampler"};
    for (int i = 0; i < 9; i++) {
        fx F;
        memset(&F, 0, sizeof F);
        const long counts[2] = {5, 1};
        lt_run_info run = {.n_classes = 2, .feat_dim = 4, .class_counts = counts, .api = &F.api,
                           .in_shape = {1, 1, 2, 2}};
        F.api.version = LT_HOST_API_VERSION;
        cJSON *o;
        assert_int_equal(lt_method_hparams(M, bad[i], &o), LT_OK);
        struct lt_hparams hp = {o};
        iccl_state st;
        memset(&st, 0, sizeof st);
        assert_int_not_equal(iccl_init(&st, &run, &hp), LT_OK);
        if (!strstr(lt_errmsg(), key[i])) fail_msg("'%s' not named in: %s", key[i], lt_errmsg());
        iccl_fini(&st);
        cJSON_Delete(o);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_naive),
        cmocka_unit_test(test_interpolation),
        cmocka_unit_test(test_stream_pattern),
        cmocka_unit_test(test_loss_hook),
        cmocka_unit_test(test_epoch_mean),
        cmocka_unit_test(test_stage2_crt),
        cmocka_unit_test(test_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
