/* test_method_ssd.c — Self Supervision to Distillation (methods/ssd).
 *
 * White-box (the method source is included with its entry point renamed),
 * on a real resnet8_cifar backbone with 8x8 one-channel inputs and a fake
 * host whose modules are plain models:
 *   - stage I's loss: CE + the label-filtered MoCo loss against a naive
 *     double-precision formula written as builder.py's cal_contrastive_loss
 *     (exp of the negatives times 1 - [same label], the positive always in
 *     the denominator); its gradient on the projection output (through the
 *     L2 normalisation) by finite differences;
 *   - shuffle-BN emulation: the keys equal the key encoder run on S shuffled
 *     sub-batches (and differ from one full-batch forward);
 *   - the EMA update of the key encoder and the queue's FIFO order and wrap
 *     through two loss calls; the key encoder starts as a copy;
 *   - the queue size rule floor(N / B) B and the label initialisation;
 *   - stage III: the teacher is the stage-II model (parameters and BN
 *     statistics), the student a fresh initialisation, the KD term equals
 *     T^2 KL(teacher || student), the teacher gets no gradient and its
 *     parameters are bit-identical after several SGD steps; its BN running
 *     statistics move with teacher_bn = "train" (the code's quirk) and stay
 *     with "eval"; stage III takes the protocol's stage-1 block;
 *   - the optional stage IV (only the scale on the hard head learns) and
 *     the reported head (soft by default, the scaled hard head on request);
 *   - defaults.json equals the defaults.
 * The resume test through the runner is test_method_ssd_run.c. */
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
#include "lt_io.h"
#include "lt_method.h"
#include "lt_run_internal.h"

#define lt_method_ssd ssd_entry_under_test
#include "../methods/ssd/method.c"
#undef lt_method_ssd
const lt_method *lt_method_ssd(void);

enum { TC = 3, TB = 6, SIDE = 8 };

typedef struct fx {
    lt_run_info run;
    lt_host_api api;
    cJSON *obj;
    struct lt_hparams hp;
    lt_model *m;
    ssd_state *st;
    lt_model *mods[8];
    int n_mod;
    long counts[TC];
    float x[2 * TB * SIDE * SIDE];
    int32_t y[2 * TB];
} fx;

static int fx_module_new(void *host, const char *name, lt_shape in, lt_model **m) {
    fx *F = host;
    (void)name;
    LT_TRY(lt_model_create(m, in));
    F->mods[F->n_mod++] = *m;
    return LT_OK;
}

static int fx_module_ready(void *host, lt_model *m, const lt_module_cfg *cfg) {
    fx *F = host;
    /* each module its own initialisation, none equal to the run model's */
    LT_TRY(lt_model_finalize(m, 1000u + (unsigned)F->n_mod * 17u + (uint64_t)(m == F->mods[0])));
    return lt_model_set_batch(m, cfg->max_rows);
}

static void fx_open(fx *F, const char *overrides, long n_train) {
    memset(F, 0, sizeof *F);
    F->counts[0] = 20;
    F->counts[1] = 12;
    F->counts[2] = 8;
    assert_int_equal(lt_method_hparams(ssd_entry_under_test(), overrides, &F->obj), LT_OK);
    F->hp.obj = F->obj;
    F->api.version = LT_HOST_API_VERSION;
    F->api.module_new = fx_module_new;
    F->api.module_ready = fx_module_ready;
    const lt_shape in = {1, 1, SIDE, SIDE};
    assert_int_equal(lt_model_create(&F->m, in), LT_OK);
    int f = lt_resnet_backbone(F->m, "resnet8_cifar");
    assert_true(f > 0);
    F->run.method = "ssd";
    F->run.seed = 5;
    F->run.n_classes = TC;
    F->run.class_counts = F->counts;
    F->run.n_train = n_train;
    F->run.feat_dim = (int)lt_model_out_size(F->m, f);
    F->run.in_shape = in;
    F->run.arch = "resnet8_cifar";
    F->run.host = F;
    F->run.api = &F->api;
    F->st = calloc(1, sizeof(ssd_state));
    assert_int_equal(ssd_init(F->st, &F->run, &F->hp), LT_OK);
    assert_int_equal(ssd_build(F->st, F->m, f), LT_OK);
    assert_int_equal(lt_model_finalize(F->m, 3), LT_OK);
    assert_int_equal(lt_model_set_batch(F->m, TB), LT_OK);
    gc_fill(F->x, sizeof F->x / sizeof *F->x, 11, -1.5f, 1.5f);
    for (int i = 0; i < TB; i++) F->y[i] = F->y[TB + i] = i % TC;
}

static void fx_close(fx *F) {
    ssd_fini(F->st);
    free(F->st);
    for (int i = 0; i < F->n_mod; i++) lt_model_free(F->mods[i]);
    lt_model_free(F->m);
    cJSON_Delete(F->obj);
}

static lt_stage stage_cfg(int stage) {
    lt_stage c;
    memset(&c, 0, sizeof c);
    c.index = stage;
    c.proto_stage = stage ? 2 : 1;
    c.epochs = stage ? 1 : 7;
    c.batch = TB;
    c.momentum = 0.9f;
    c.weight_decay = stage ? 1e-4f : 5e-4f;
    c.sampler.kind = stage ? LT_SAMPLER_CLASS_BALANCED : LT_SAMPLER_INSTANCE;
    c.sampler.k_per_class = 4;
    c.bn_eval = stage ? 1 : 0;
    c.augment = 1;
    c.views = c.model_views = 1;
    return c;
}

/* One training batch's taps at stage `stage` (stage 0: two views). */
static lt_taps fx_taps(fx *F, int stage, long iter) {
    const int views = stage == 0 ? 2 : 1;
    assert_int_equal(lt_model_forward(F->m, F->x, TB, 1), LT_OK);
    lt_taps t = {.n = TB, .n_classes = TC, .feat_dim = F->run.feat_dim,
                 .logits = lt_model_out(F->m, lt_model_find(F->m, "logits")),
                 .feat = lt_model_out(F->m, lt_model_find(F->m, "feat")), .labels = F->y,
                 .class_counts = F->counts, .stage = stage, .epoch = 0, .iter = iter, .lr = 0.1f, .model = F->m,
                 .x = F->x, .x_rows = TB * views, .views = views};
    return t;
}

static lt_grads fx_grads(fx *F) {
    lt_grads g = {.dlogits = lt_model_dout(F->m, lt_model_find(F->m, "logits")),
                  .dfeat = lt_model_dout(F->m, lt_model_find(F->m, "feat"))};
    lt_model_zero_grad(F->m);
    return g;
}

/* ---- stage I: the label-filtered contrastive loss ---------------------------------------- */

typedef struct {
    int n, d, K;
    float *z;                  /* projection outputs [n x d] (perturbed by gc_check) */
    const float *k;            /* keys [n x d], normalised */
    const float *queue;        /* [K x d] */
    const int32_t *ql, *y;
    double tau;
} con_ref;

/* builder.py SSFL.cal_contrastive_loss, in double, from the unnormalised z. */
static double con_naive(void *p) {
    const con_ref *r = p;
    double L = 0;
    for (int i = 0; i < r->n; i++) {
        double q[64], s = 0;
        for (int c = 0; c < r->d; c++) s += (double)r->z[i * r->d + c] * r->z[i * r->d + c];
        for (int c = 0; c < r->d; c++) q[c] = r->z[i * r->d + c] / fmax(sqrt(s), 1e-12);
        double pos = 0;
        for (int c = 0; c < r->d; c++) pos += q[c] * r->k[i * r->d + c];
        pos /= r->tau;
        double den = exp(pos);
        for (int j = 0; j < r->K; j++) {
            double l = 0;
            for (int c = 0; c < r->d; c++) l += q[c] * r->queue[j * r->d + c];
            const double mask = 1.0 - (r->y[i] == r->ql[j]);
            den += exp(l / r->tau) * mask;
        }
        L += -(pos - log(den));
    }
    return L / r->n;
}

/* Fills the queue with K random unit keys labelled j % (TC + 1) - 1
 * (-1 = empty, and labels equal to the batch's). */
static void fill_queue(ssd_state *st) {
    const int K = st->q.K, d = st->dim;
    float *k = malloc((size_t)K * d * sizeof(float));
    int32_t *l = malloc((size_t)K * sizeof(int32_t));
    gc_fill(k, (size_t)K * d, 21, -1, 1);
    normalize_rows(K, d, k, k, NULL);
    for (int j = 0; j < K; j++) l[j] = j % (TC + 1) - 1;
    assert_int_equal(lt_keyqueue_push(&st->q, K, k, l), LT_OK);
    free(k);
    free(l);
}

static void test_stage1_loss_against_naive(void **unused) {
    (void)unused;
    fx F;
    fx_open(&F, "{\"queue_size\": 30, \"dim\": 8, \"shuffle_bn_splits\": 2, \"tau\": 0.2}", 40);
    lt_stage cfg = stage_cfg(0);
    assert_int_equal(ssd_stage_begin(F.st, 0, &cfg, F.m), LT_OK);
    assert_int_equal(cfg.views, 2);
    assert_int_equal(cfg.model_views, 1);
    /* the query keeps the protocol's augmentation; the key takes the strong
     * pipeline: RRC (0.2, 1), b/c jitter 0.4 with p 0.8, no grayscale or blur
     * on 1-channel 8x8 images */
    assert_int_equal(cfg.view_pipelines[0].enabled, 0);
    const lt_aug_pipeline *p = &cfg.view_pipelines[1];
    assert_true(p->enabled && p->crop == LT_AUG_CROP_RRC);
    assert_true(p->rrc_scale[0] == 0.2f && p->rrc_scale[1] == 1.0f);
    assert_true(p->brightness == 0.4f && p->contrast == 0.4f && p->saturation == 0.0f && p->hue == 0.0f);
    assert_true(p->jitter_p == 0.8f && p->gray_p == 0.0f && p->blur_p == 0.0f && p->hflip_p == 0.5f);
    fill_queue(F.st);
    const int K = F.st->q.K, d = F.st->dim;
    float *qk = malloc((size_t)K * d * sizeof(float));
    int32_t *ql = malloc((size_t)K * sizeof(int32_t));
    memcpy(qk, F.st->q.keys, (size_t)K * d * sizeof(float));
    memcpy(ql, F.st->q.labels, (size_t)K * sizeof(int32_t));
    lt_taps t = fx_taps(&F, 0, 3);
    lt_grads g = fx_grads(&F);
    double loss;
    assert_int_equal(ssd_loss(F.st, &t, &loss, &g), LT_OK);
    double lce;
    float tmp[TB * TC];
    assert_int_equal(lt_softmax_ce(TB, TC, t.logits, F.y, NULL, NULL, &lce, tmp), LT_OK);
    for (int i = 0; i < TB * TC; i++) assert_float_equal(g.dlogits[i], tmp[i], 1e-7);
    const int proj = lt_model_find(F.m, "proj2");
    float z[TB * 8], kk[TB * 8];
    memcpy(z, lt_model_out(F.m, proj), sizeof z);
    memcpy(kk, F.st->kn, sizeof kk);
    con_ref r = {TB, d, K, z, kk, qk, ql, F.y, 0.2};
    const double ref = con_naive(&r);
    print_message("note: stage I CE %.6f contrastive %.6f (naive %.6f)\n", lce, loss - lce, ref);
    assert_float_equal(loss - lce, ref, 1e-5 * fmax(1.0, fabs(ref)));
    /* the projection output's gradient (listed as an extra backward tap) */
    assert_int_equal(g.n_extra, 1);
    assert_int_equal(g.extra[0], proj);
    float dz[TB * 8];
    memcpy(dz, lt_model_dout(F.m, proj), sizeof dz);
    gc_opts o = {.eps = 1e-3, .rtol = 1e-2, .atol = 1e-5, .max_checks = 0};
    assert_int_equal(gc_check("ssd contrastive dz", con_naive, &r, z, dz, (size_t)TB * d, &o), 0);

    /* shuffle-BN: the keys are the key encoder on 2 shuffled sub-batches of 3 */
    lt_rng base, rr;
    lt_rng_init(&base, F.run.seed, LT_STREAM_METHOD + S_SHUFFLE);
    lt_rng_derive(&rr, &base, 3, 0);
    int32_t perm[TB];
    for (int i = 0; i < TB; i++) perm[i] = i;
    lt_rng_shuffle_i32(&rr, perm, TB);
    const size_t in = SIDE * SIDE;
    float xs[TB * SIDE * SIDE], kref[TB * 8];
    for (int i = 0; i < TB; i++) memcpy(xs + i * in, F.x + (TB + perm[i]) * in, in * sizeof(float));
    const int kp = lt_model_find(F.st->key, "proj2");
    for (int b = 0; b < 2; b++) {
        assert_int_equal(lt_model_forward(F.st->key, xs + b * 3 * in, 3, 1), LT_OK);
        for (int r2 = 0; r2 < 3; r2++)
            memcpy(kref + perm[b * 3 + r2] * d, lt_model_out(F.st->key, kp) + r2 * d, d * sizeof(float));
    }
    normalize_rows(TB, d, kref, kref, NULL);
    for (int i = 0; i < TB * d; i++) assert_float_equal(kk[i], kref[i], 1e-6);
    /* one full-batch forward normalises over all 6 rows: other keys */
    assert_int_equal(lt_model_forward(F.st->key, F.x + TB * in, TB, 1), LT_OK);
    normalize_rows(TB, d, lt_model_out(F.st->key, kp), kref, NULL);
    double diff = 0;
    for (int i = 0; i < TB * d; i++) diff = lt_tmax(diff, fabs(kk[i] - kref[i]));   /* a NaN stays and fails */
    assert_true(diff > 1e-3);
    free(qk);
    free(ql);
    fx_close(&F);
}

/* ---- EMA and queue order --------------------------------------------------------------- */

static void test_ema_and_queue_order(void **unused) {
    (void)unused;
    fx F;
    fx_open(&F, "{\"queue_size\": 10, \"dim\": 8, \"ema_m\": 0.9}", 40);
    lt_stage cfg = stage_cfg(0);
    assert_int_equal(ssd_stage_begin(F.st, 0, &cfg, F.m), LT_OK);
    lt_model *key = F.st->key;
    /* the key encoder holds the encoder and projection only, as copies */
    assert_true(lt_model_param_data(key, "cls.weight") == NULL);
    const int np = lt_model_n_params(key);
    size_t total = 0;
    for (int i = 0; i < np; i++) {
        lt_param_info a, b;
        assert_int_equal(lt_model_param_at(key, i, &a), LT_OK);
        assert_int_equal(lt_model_param_find(F.m, a.name, &b), LT_OK);
        assert_memory_equal(a.w, b.w, a.count * sizeof(float));
        total += a.count;
    }
    /* a step of the query encoder, then the loss hook's EMA update */
    for (int i = 0; i < np; i++) {
        lt_param_info a, b;
        assert_int_equal(lt_model_param_at(key, i, &a), LT_OK);
        assert_int_equal(lt_model_param_find(F.m, a.name, &b), LT_OK);
        for (size_t k = 0; k < b.count; k++) b.w[k] += 0.01f * (float)((int)(k % 7) - 3);
    }
    float *old = malloc(total * sizeof(float));
    for (int i = 0, off = 0; i < np; i++) {
        lt_param_info a;
        assert_int_equal(lt_model_param_at(key, i, &a), LT_OK);
        memcpy(old + off, a.w, a.count * sizeof(float));
        off += (int)a.count;
    }
    /* the queue starts with random unit keys labelled -1 */
    assert_int_equal(F.st->q.K, 10);
    for (int j = 0; j < 10; j++) assert_int_equal(F.st->q.labels[j], -1);
    lt_taps t = fx_taps(&F, 0, 0);
    lt_grads g = fx_grads(&F);
    double loss;
    int rc = ssd_loss(F.st, &t, &loss, &g);
    if (rc) fail_msg("ssd_loss: %s", lt_errmsg());
    for (int i = 0, off = 0; i < np; i++) {
        lt_param_info a, b;
        assert_int_equal(lt_model_param_at(key, i, &a), LT_OK);
        assert_int_equal(lt_model_param_find(F.m, a.name, &b), LT_OK);
        for (size_t k = 0; k < a.count; k++) {
            const float want = old[off + k] * 0.9f + b.w[k] * (1.0f - 0.9f);
            assert_float_equal(a.w[k], want, 1e-6 * fmax(1.0, fabs(want)));
        }
        off += (int)a.count;
    }
    free(old);
    const int d = F.st->dim;
    float k1[TB * 8];
    memcpy(k1, F.st->kn, sizeof k1);
    assert_int_equal(F.st->q.ptr, TB);
    for (int i = 0; i < TB; i++) {
        assert_memory_equal(F.st->q.keys + i * d, k1 + i * d, d * sizeof(float));
        assert_int_equal(F.st->q.labels[i], F.y[i]);
    }
    /* the second batch wraps: entries 6..9 then 0..1; 2..5 stay */
    for (int i = 0; i < TB; i++) F.y[i] = F.y[TB + i] = (i + 1) % TC;
    t = fx_taps(&F, 0, 1);
    g = fx_grads(&F);
    assert_int_equal(ssd_loss(F.st, &t, &loss, &g), LT_OK);
    assert_int_equal(F.st->q.ptr, 2);
    for (int i = 0; i < TB; i++) {
        const int slot = (TB + i) % 10;
        assert_memory_equal(F.st->q.keys + slot * d, F.st->kn + i * d, d * sizeof(float));
        assert_int_equal(F.st->q.labels[slot], (i + 1) % TC);
    }
    for (int j = 2; j < 6; j++) {
        assert_memory_equal(F.st->q.keys + j * d, k1 + j * d, d * sizeof(float));
        assert_int_equal(F.st->q.labels[j], j % TC);
    }
    fx_close(&F);
}

/* ---- queue size rule ------------------------------------------------------------------ */

static void test_queue_size_rule(void **unused) {
    (void)unused;
    assert_int_equal(ssd_queue_size(115846, 256), 115712);   /* the code's ImageNet-LT K */
    assert_int_equal(ssd_queue_size(10847, 128), 10752);     /* §4.5.2's CIFAR-100-LT example */
    assert_int_equal(ssd_queue_size(14886, 128), 14848);     /* fmnist_lt_r100 */
    fx F;
    fx_open(&F, "{\"dim\": 8}", 40);
    lt_stage cfg = stage_cfg(0);
    assert_int_equal(ssd_stage_begin(F.st, 0, &cfg, F.m), LT_OK);
    assert_int_equal(F.st->q.K, 36);   /* floor(40 / 6) x 6 */
    assert_int_equal(F.st->q.D, 8);
    for (int j = 0; j < 36; j++) {
        assert_int_equal(F.st->q.labels[j], -1);
        double s = 0;
        for (int c = 0; c < 8; c++) s += (double)F.st->q.keys[j * 8 + c] * F.st->q.keys[j * 8 + c];
        assert_float_equal(s, 1.0, 1e-5);
    }
    fx_close(&F);
    fx_open(&F, "{\"dim\": 8, \"queue_label0\": true}", 40);
    cfg = stage_cfg(0);
    assert_int_equal(ssd_stage_begin(F.st, 0, &cfg, F.m), LT_OK);
    for (int j = 0; j < 36; j++) assert_int_equal(F.st->q.labels[j], 0);
    fx_close(&F);
}

/* ---- stage III: teacher and student ---------------------------------------------------- */

static double kd_naive(int n, int C, const float *s, const float *t, double T) {
    double L = 0;
    for (int i = 0; i < n; i++) {
        double ms = -INFINITY, mt = -INFINITY, zs = 0, zt = 0;
        for (int j = 0; j < C; j++) {
            ms = fmax(ms, s[i * C + j] / T);
            mt = fmax(mt, t[i * C + j] / T);
        }
        for (int j = 0; j < C; j++) {
            zs += exp(s[i * C + j] / T - ms);
            zt += exp(t[i * C + j] / T - mt);
        }
        for (int j = 0; j < C; j++) {
            const double lpt = t[i * C + j] / T - mt - log(zt), lps = s[i * C + j] / T - ms - log(zs);
            L += exp(lpt) * (lpt - lps);
        }
    }
    return L * T * T / n;
}

/* Every BN buffer of `a` equals the snapshot of `b`'s buffer of the same name. */
static int buffers_match(lt_model *a, lt_model *b, float **snap) {
    int hit = 0;
    for (int i = 0; i < lt_model_n_buffers(a); i++) {
        lt_buffer_info x;
        lt_model_buffer_at(a, i, &x);
        for (int k = 0; k < lt_model_n_buffers(b); k++) {
            lt_buffer_info z;
            lt_model_buffer_at(b, k, &z);
            if (strcmp(x.name, z.name)) continue;
            if (memcmp(x.data, snap[k], x.count * sizeof(float))) return 0;
            hit++;
        }
    }
    return hit == lt_model_n_buffers(a);
}

static void teacher_case(const char *hp, int bn_train) {
    fx F;
    fx_open(&F, hp, 40);
    lt_stage c0 = stage_cfg(0), c1 = stage_cfg(1), c2 = stage_cfg(2);
    assert_int_equal(ssd_stage_begin(F.st, 0, &c0, F.m), LT_OK);
    assert_int_equal(ssd_stage_begin(F.st, 1, &c1, F.m), LT_OK);
    /* stage II: the scale alone trains, class-aware 2 per class, BN in train
     * mode, the scale decays */
    assert_int_equal(c1.sampler.kind, LT_SAMPLER_CLASS_AWARE);
    assert_int_equal(c1.sampler.k_per_class, 2);
    assert_int_equal(c1.bn_eval, 0);
    lt_param_info sc;
    assert_int_equal(lt_model_param_find(F.m, "logits.scale", &sc), LT_OK);
    assert_int_equal(sc.flags & (LT_MASK_FROZEN | LT_MASK_NO_DECAY), 0);
    lt_param_info cw;
    assert_int_equal(lt_model_param_find(F.m, "cls.weight", &cw), LT_OK);
    assert_true(cw.flags & LT_MASK_FROZEN);
    /* "train" the stage-II model: BN statistics and scales that differ */
    assert_int_equal(lt_model_forward(F.m, F.x, TB, 1), LT_OK);
    for (int j = 0; j < TC; j++) sc.w[j] = 0.5f + 0.25f * (float)j;
    /* snapshot of the stage-II model by name */
    const int np = lt_model_n_params(F.m);
    float **snap = calloc((size_t)np, sizeof *snap);
    for (int i = 0; i < np; i++) {
        lt_param_info a;
        assert_int_equal(lt_model_param_at(F.m, i, &a), LT_OK);
        snap[i] = malloc(a.count * sizeof(float));
        memcpy(snap[i], a.w, a.count * sizeof(float));
    }
    const int nb = lt_model_n_buffers(F.m);
    float **bsnap = calloc((size_t)nb, sizeof *bsnap);
    for (int i = 0; i < nb; i++) {
        lt_buffer_info b;
        assert_int_equal(lt_model_buffer_at(F.m, i, &b), LT_OK);
        bsnap[i] = malloc(b.count * sizeof(float));
        memcpy(bsnap[i], b.data, b.count * sizeof(float));
    }
    assert_int_equal(ssd_stage_begin(F.st, 2, &c2, F.m), LT_OK);
    /* the teacher carries the BN statistics stage II re-estimated */
    assert_true(buffers_match(F.st->teacher, F.m, bsnap));
    for (int i = 0; i < nb; i++) free(bsnap[i]);
    free(bsnap);
    /* a representation stage: the stage-1 block */
    assert_int_equal(c2.epochs, 7);
    assert_true(c2.weight_decay == 5e-4f);
    assert_int_equal(c2.sampler.kind, LT_SAMPLER_INSTANCE);
    assert_int_equal(c2.views, 1);
    lt_model *T = F.st->teacher, *fresh = F.st->fresh;
    assert_non_null(lt_model_param_data(T, "logits.scale"));
    assert_true(lt_model_param_data(T, "soft.weight") == NULL);
    for (int i = 0; i < np; i++) {
        lt_param_info a, b, f;
        assert_int_equal(lt_model_param_at(F.m, i, &a), LT_OK);
        /* the teacher = the stage-II model */
        if (lt_model_param_find(T, a.name, &b) == LT_OK) assert_memory_equal(b.w, snap[i], a.count * sizeof(float));
        /* the student = the fresh initialisation */
        assert_int_equal(lt_model_param_find(fresh, a.name, &f), LT_OK);
        assert_memory_equal(a.w, f.w, a.count * sizeof(float));
    }
    lt_err_clear();
    for (int j = 0; j < TC; j++) assert_true(lt_model_param_data(F.m, "logits.scale")[j] == 1.0f);
    assert_true(lt_model_param_data(T, "logits.scale")[2] == 1.0f);
    /* SGD on the student through the loss hook: CE(hard) + KD(soft) */
    lt_optim opt;
    assert_int_equal(lt_optim_init(&opt, F.m, LT_OPT_SGD, 0.9f, 5e-4f, 0), LT_OK);
    float **tsnap = calloc((size_t)lt_model_n_params(T), sizeof *tsnap);
    for (int i = 0; i < lt_model_n_params(T); i++) {
        lt_param_info a;
        assert_int_equal(lt_model_param_at(T, i, &a), LT_OK);
        tsnap[i] = malloc(a.count * sizeof(float));
        memcpy(tsnap[i], a.w, a.count * sizeof(float));
    }
    int bn_moved = 0;
    for (int it = 0; it < 3; it++) {
        lt_buffer_info b0;
        assert_int_equal(lt_model_buffer_at(T, 0, &b0), LT_OK);
        const float before = b0.data[0];
        lt_taps t = fx_taps(&F, 2, it);
        lt_grads g = fx_grads(&F);
        double loss;
        assert_int_equal(ssd_loss(F.st, &t, &loss, &g), LT_OK);
        assert_true(isfinite(b0.data[0]));   /* NaN != before would count as moved */
        bn_moved |= b0.data[0] != before;
        double lce;
        float tmp[TB * TC];
        assert_int_equal(lt_softmax_ce(TB, TC, t.logits, F.y, NULL, NULL, &lce, tmp), LT_OK);
        const int soft = lt_model_find(F.m, "soft");
        const double kd = kd_naive(TB, TC, lt_model_out(F.m, soft),
                                   lt_model_out(T, lt_model_find(T, "logits")), 2.0);
        assert_float_equal(loss, lce + kd, 1e-5);
        assert_int_equal(g.n_extra, 1);
        assert_int_equal(g.extra[0], soft);
        int taps[2] = {lt_model_find(F.m, "logits"), soft};
        assert_int_equal(lt_model_backward(F.m, TB, taps, 2), LT_OK);
        assert_int_equal(lt_optim_step(&opt, F.m, 0.1f), LT_OK);
    }
    /* bit-identical teacher, no gradient anywhere in it */
    for (int i = 0; i < lt_model_n_params(T); i++) {
        lt_param_info a;
        assert_int_equal(lt_model_param_at(T, i, &a), LT_OK);
        assert_true(a.flags & LT_MASK_FROZEN);
        assert_memory_equal(a.w, tsnap[i], a.count * sizeof(float));
        if (a.g)
            for (size_t k = 0; k < a.count; k++) assert_true(a.g[k] == 0.0f);
        free(tsnap[i]);
    }
    free(tsnap);
    /* the code's quirk: a train-mode teacher re-estimates its BN statistics */
    assert_int_equal(bn_moved, bn_train);
    /* the student moved */
    lt_param_info sw, fw;
    assert_int_equal(lt_model_param_find(F.m, "soft.weight", &sw), LT_OK);
    assert_int_equal(lt_model_param_find(fresh, "soft.weight", &fw), LT_OK);
    for (size_t k = 0; k < sw.count; k++)   /* a NaN weight would differ too */
        if (!isfinite(sw.w[k])) fail_msg("student soft.weight[%zu] is %g", k, sw.w[k]);
    assert_true(memcmp(sw.w, fw.w, sw.count * sizeof(float)) != 0);
    for (int i = 0; i < np; i++) free(snap[i]);
    free(snap);
    lt_optim_free(&opt);
    fx_close(&F);
}

static void test_stage3_teacher(void **unused) {
    (void)unused;
    teacher_case("{\"dim\": 8}", 1);
    teacher_case("{\"dim\": 8, \"teacher_bn\": \"eval\"}", 0);
}

/* ---- optional stage IV and the reported head -------------------------------------------- */

static void test_stage4_and_report(void **unused) {
    (void)unused;
    fx F;
    fx_open(&F, "{\"dim\": 8, \"stage4\": true, \"report\": \"hard\"}", 40);
    assert_int_equal(ssd_n_stages(F.st), 4);
    lt_stage c[4] = {stage_cfg(0), stage_cfg(1), stage_cfg(2), stage_cfg(3)};
    for (int k = 0; k < 4; k++) assert_int_equal(ssd_stage_begin(F.st, k, &c[k], F.m), LT_OK);
    /* stage IV: LWS on the stage-III hard head; only the scale learns */
    assert_int_equal(c[3].sampler.kind, LT_SAMPLER_CLASS_AWARE);
    assert_int_equal(c[3].sampler.k_per_class, 2);
    const char *frozen[] = {"cls.weight", "cls.bias", "soft.weight", "proj1.weight"};
    for (size_t i = 0; i < sizeof frozen / sizeof *frozen; i++) {
        lt_param_info a;
        assert_int_equal(lt_model_param_find(F.m, frozen[i], &a), LT_OK);
        assert_true(a.flags & LT_MASK_FROZEN);
    }
    lt_param_info s;
    assert_int_equal(lt_model_param_find(F.m, "logits.scale", &s), LT_OK);
    assert_int_equal(s.flags & LT_MASK_FROZEN, 0);
    for (int j = 0; j < TC; j++) assert_true(s.w[j] == 1.0f);
    /* report "hard": the scaled hard head; "soft": the KD head */
    assert_int_equal(lt_model_forward(F.m, F.x, TB, 0), LT_OK);
    lt_taps t = {.n = TB, .n_classes = TC, .logits = lt_model_out(F.m, lt_model_find(F.m, "logits")),
                 .model = F.m, .stage = -1, .epoch = -1, .iter = -1};
    float sc[TB * TC];
    int kind = -1;
    assert_int_equal(ssd_predict(F.st, &t, sc, &kind), LT_OK);
    assert_int_equal(kind, LT_SCORES_LOGITS);
    assert_memory_equal(sc, t.logits, sizeof sc);
    F.st->report = REPORT_SOFT;
    assert_int_equal(ssd_predict(F.st, &t, sc, &kind), LT_OK);
    assert_memory_equal(sc, lt_model_out(F.m, lt_model_find(F.m, "soft")), sizeof sc);
    double norms[TC];
    assert_int_equal(ssd_class_norms(F.st, F.m, TC, norms), LT_OK);
    for (int j = 0; j < TC; j++) assert_true(norms[j] > 0);
    fx_close(&F);
}

/* ---- defaults and checks ----------------------------------------------------------------- */

static void test_defaults_file_and_checks(void **unused) {
    (void)unused;
    char *s;
    size_t n;
    assert_int_equal(lt_io_read_all("methods/ssd/defaults.json", &s, &n), LT_OK);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
    assert_string_equal(s, lt_method_ssd()->defaults);
    assert_string_equal(ssd_entry_under_test()->defaults, lt_method_ssd()->defaults);
    free(s);
    /* bad values are errors naming the key */
    const char *bad[] = {"{\"tau\": 0}", "{\"shuffle_bn_splits\": 0}", "{\"report\": \"hard\"}",
                         "{\"teacher_bn\": \"x\"}", "{\"queue_size\": -1}",
                         /* the soft head after a stage IV that moved the BN statistics */
                         "{\"stage4\": true}", "{\"stage4\": true, \"lws_bn\": \"protocol\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cJSON *o;
        assert_int_equal(lt_method_hparams(ssd_entry_under_test(), bad[i], &o), LT_OK);
        struct lt_hparams hp = {o};
        ssd_state st;
        memset(&st, 0, sizeof st);
        lt_run_info run;
        memset(&run, 0, sizeof run);
        run.n_classes = 3;
        run.feat_dim = 4;
        assert_int_not_equal(ssd_init(&st, &run, &hp), LT_OK);
        cJSON_Delete(o);
    }
    lt_err_clear();
    /* stages: 3, or 4 with stage4 */
    ssd_state st;
    memset(&st, 0, sizeof st);
    assert_int_equal(ssd_n_stages(&st), 3);
    st.stage4 = 1;
    assert_int_equal(ssd_n_stages(&st), 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage1_loss_against_naive),
        cmocka_unit_test(test_ema_and_queue_order),
        cmocka_unit_test(test_queue_size_rule),
        cmocka_unit_test(test_stage3_teacher),
        cmocka_unit_test(test_stage4_and_report),
        cmocka_unit_test(test_defaults_file_and_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
