/* test_method_decoupled.c — the decoupled classifiers of Kang et al. (ICLR
 * 2020): crt, lws, taunorm, ncm. Each hook is called directly, the way the
 * runner calls it, on synthetic features or a tiny ResNet-8:
 *   - taunorm: row norms for tau = 0 (rows unchanged) and tau = 1 (unit rows),
 *     the bias dropped, and tau chosen on the dataset's validation split only;
 *   - ncm: both variants against a brute-force nearest-class-mean classifier;
 *   - lws: stage 0 is CE bit for bit (names, init, forward, an SGD step),
 *     stage 1 trains the scales only (frozen classifier incl. bias, BN eval,
 *     no decay, class-balanced sampler), and d loss / d s by finite
 *     differences through the model;
 *   - crt: stage 1 freezes the backbone (BN eval), re-initialises the linear
 *     layer U(+-1/sqrt(fan_in)) deterministically, samples class-balanced,
 *     and d loss / d (W, b) of the new layer by finite differences. */
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
#include <limits.h>
#include <unistd.h>

#include "gradcheck.h"
#include "lt.h"
#include "lt_method.h"
#include "lt_run_internal.h"
#include "lt_model_impl.h"   /* white-box: the model's structs */

const lt_method *lt_method_crt(void);
const lt_method *lt_method_lws(void);
const lt_method *lt_method_taunorm(void);
const lt_method *lt_method_ncm(void);

/* ---- a method instance the way the runner makes one ------------------------ */

typedef struct {
    char key[16][64];
    double val[16];
    int n;
} logbook;

static int log_cb(void *host, const char *key, double value) {
    logbook *b = host;
    if (b->n < 16) {
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

/* The host's validation_bank, faked: the bank a test puts in g_vbank
 * stands for the dataset's validation split. */
static const lt_feature_bank *g_vbank;
static int g_vbank_calls;
static int fake_validation_bank(void *host, lt_feature_bank *fb) {
    (void)host;
    g_vbank_calls++;
    if (!g_vbank) return lt_err(LT_EINVAL, "dataset test: no validation split (fake)");
    *fb = *g_vbank;
    return LT_OK;
}
static const lt_host_api g_fake_api = {.version = LT_HOST_API_VERSION, .validation_bank = fake_validation_bank};

typedef struct {
    const lt_method *m;
    cJSON *obj;
    struct lt_hparams hp;
    lt_run_info run;
    logbook book;
    long counts[16];
    void *st;
} inst;

static void inst_open(inst *I, const lt_method *m, const char *overrides, int C, int D, uint64_t seed) {
    memset(I, 0, sizeof *I);
    I->m = m;
    assert_int_equal(m->abi, LT_METHOD_ABI);
    assert_non_null(m->stage1_from);
    assert_string_equal(m->stage1_from, "ce");
    assert_int_equal(lt_method_hparams(m, overrides, &I->obj), LT_OK);
    I->hp.obj = I->obj;
    I->run.protocol = "test";
    I->run.scale = "ci";
    I->run.method = m->name;
    I->run.seed = seed;
    I->run.threads = 1;
    I->run.n_classes = C;
    I->run.feat_dim = D;
    I->run.class_counts = I->counts;
    I->run.host = &I->book;
    I->run.log = log_cb;
    I->run.api = &g_fake_api;
    I->st = calloc(1, m->state_size ? m->state_size : 1);
    assert_non_null(I->st);
    int rc = m->init(I->st, &I->run, &I->hp);
    if (rc) fail_msg("init: %s", lt_errmsg());
}

static void inst_close(inst *I) {
    if (I->m->fini) I->m->fini(I->st);
    free(I->st);
    cJSON_Delete(I->obj);
}

/* ---- taunorm ---------------------------------------------------------------- */

enum { TC = 5, TD = 7 };

/* A model with one linear layer "logits" (the default head) on a TD-vector
 * input, random rows of clearly different norms and a non-zero bias. */
static lt_model *linear_model(void) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, TD, 1, 1}), LT_OK);
    assert_true(lt_add_linear(m, "logits", "head", 0, TC, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 3), LT_OK);
    float *W = lt_model_param_data(m, "logits.weight"), *b = lt_model_param_data(m, "logits.bias");
    gc_fill(W, TC * TD, 11, -1, 1);
    for (int j = 0; j < TC; j++) {
        for (int d = 0; d < TD; d++) W[j * TD + d] *= (float)(j + 1);  /* norms grow with j */
        b[j] = 3.0f + j;
    }
    return m;
}

/* Reads the method's effective classifier back through predict: with the
 * features e_0..e_{D-1}, score[d][j] = w~_j[d] (plus any bias, which must be
 * gone), and with the zero feature every score is the bias. */
static void effective_rows(inst *I, float *Wt, float *bias) {
    float eye[TD * TD] = {0}, zero[TD] = {0}, scores[TD * TC];
    for (int d = 0; d < TD; d++) eye[d * TD + d] = 1;
    lt_taps t = {.n = TD, .n_classes = TC, .feat_dim = TD, .feat = eye, .stage = -1, .epoch = -1, .iter = -1};
    int kind = -1;
    assert_int_equal(I->m->predict(I->st, &t, scores, &kind), LT_OK);
    assert_int_equal(kind, LT_SCORES_SCORES);   /* rescaled logits: no raw ECE */
    for (int d = 0; d < TD; d++)
        for (int j = 0; j < TC; j++) Wt[j * TD + d] = scores[d * TC + j];
    t.n = 1;
    t.feat = zero;
    assert_int_equal(I->m->predict(I->st, &t, scores, &kind), LT_OK);
    for (int j = 0; j < TC; j++) bias[j] = scores[j];
}

static void test_taunorm_tau0_and_tau1(void **unused) {
    (void)unused;
    const lt_method *meth = lt_method_taunorm();
    assert_non_null(meth->post_train);
    assert_int_equal(meth->n_stages(NULL), 1);   /* no training of its own */
    lt_model *m = linear_model();
    const float *W = lt_model_param_data(m, "logits.weight");
    float W0[TC * TD];
    memcpy(W0, W, sizeof W0);
    float Wt[TC * TD], bias[TC];

    /* tau = 0: the joint classifier without its bias. */
    inst I;
    inst_open(&I, meth, "{\"tau\": 0}", TC, TD, 0);
    assert_int_not_equal(meth->predict(I.st, &(lt_taps){.n = 1, .n_classes = TC, .feat_dim = TD,
                                                         .feat = W0}, Wt, &(int){0}), LT_OK);
    assert_int_equal(meth->post_train(I.st, m, NULL), LT_OK);
    effective_rows(&I, Wt, bias);
    for (int i = 0; i < TC * TD; i++) assert_float_equal(Wt[i], W0[i], 1e-6);
    for (int j = 0; j < TC; j++) assert_float_equal(bias[j], 0, 0);
    double tau = NAN;   /* set by logged(); NaN fails assert_float_equal if it is not */
    assert_true(logged(&I.book, "tau", &tau));
    assert_float_equal(tau, 0, 0);
    inst_close(&I);

    /* tau = 1 (the default, PROTOCOLS.md fmnist_lt): unit rows, same directions. */
    inst_open(&I, meth, NULL, TC, TD, 0);
    /* a fixed tau asks for no feature bank (nor does select = val: it
     * reads the validation split, not the training set) */
    assert_int_equal(lt_method_wants_bank(meth, I.st), 0);
    assert_int_equal(meth->post_train(I.st, m, NULL), LT_OK);
    effective_rows(&I, Wt, bias);
    for (int j = 0; j < TC; j++) {
        double n0 = 0, n1 = 0;
        for (int d = 0; d < TD; d++) {
            n0 += (double)W0[j * TD + d] * W0[j * TD + d];
            n1 += (double)Wt[j * TD + d] * Wt[j * TD + d];
        }
        assert_float_equal(sqrt(n1), 1.0, 1e-6);
        for (int d = 0; d < TD; d++) assert_float_equal(Wt[j * TD + d], W0[j * TD + d] / sqrt(n0), 1e-6);
        assert_float_equal(bias[j], 0, 0);
    }
    /* The model itself is left alone: normalising twice is impossible. */
    assert_memory_equal(W, W0, sizeof W0);
    assert_int_equal(meth->post_train(I.st, m, NULL), LT_OK);
    float Wt2[TC * TD];
    effective_rows(&I, Wt2, bias);
    assert_memory_equal(Wt, Wt2, sizeof Wt);
    inst_close(&I);

    /* tau = 2: rows of norm 1/||w_j||. */
    inst_open(&I, meth, "{\"tau\": 2}", TC, TD, 0);
    assert_int_equal(meth->post_train(I.st, m, NULL), LT_OK);
    effective_rows(&I, Wt, bias);
    for (int j = 0; j < TC; j++) {
        double n0 = 0, n1 = 0;
        for (int d = 0; d < TD; d++) {
            n0 += (double)W0[j * TD + d] * W0[j * TD + d];
            n1 += (double)Wt[j * TD + d] * Wt[j * TD + d];
        }
        assert_float_equal(sqrt(n1) * sqrt(n0), 1.0, 1e-5);
    }
    inst_close(&I);

    /* Bad hparams are refused in init with a message. */
    cJSON *o = NULL;
    assert_int_equal(lt_method_hparams(meth, "{\"select\": \"test\"}", &o), LT_OK);
    struct lt_hparams hp = {o};
    lt_run_info run = {.n_classes = TC, .feat_dim = TD};
    void *st = calloc(1, meth->state_size);
    assert_int_equal(meth->init(st, &run, &hp), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "select"));
    if (meth->fini) meth->fini(st);
    free(st);
    cJSON_Delete(o);
    lt_model_free(m);
}

/* tau on the dataset's validation split (the host's validation_bank), never
 * on the training bank: two classes, w_0 = (4, 0), w_1 = (0, 1).
 * Validation images of class 1 have f = (0.5, 1): s_0 = 2/4^tau, s_1 = 1, so
 * they are right only for tau > 0.5 (tau = 0.5 ties, and a tie goes to class
 * 0); class 0's validation images f = (1, 0.2) are right for every tau on the
 * grid. The first best tau is therefore 0.6. The training images (the bank
 * post_train is handed, and version 1's carve of it) of class 1 are
 * f = (1, 0), wrong for every tau, and those of class 0 are f = (0.45, 1),
 * right only for tau <= 0.4: if they were used the answer would be tau = 0. */
static void test_taunorm_selects_on_validation_split(void **unused) {
    (void)unused;
    const lt_method *meth = lt_method_taunorm();
    lt_model *m = NULL;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 2, 1, 1}), LT_OK);
    assert_true(lt_add_linear(m, "logits", "head", 0, 2, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 0), LT_OK);
    float *W = lt_model_param_data(m, "logits.weight");
    W[0] = 4; W[1] = 0; W[2] = 0; W[3] = 1;
    lt_model_param_data(m, "logits.bias")[0] = 100;   /* dropped: would decide everything */

    enum { NPC = 100, NV = 7 };
    static float feat[2 * NPC * 2], vfeat[2 * NV * 2];
    static int32_t labels[2 * NPC], vlabels[2 * NV];
    long counts[2] = {NPC, NPC};
    for (int i = 0; i < 2 * NPC; i++) {   /* training rows */
        int y = i % 2;
        labels[i] = y;
        float *f = feat + 2 * i;
        if (y == 0) { f[0] = 0.45f; f[1] = 1.0f; }
        else { f[0] = 1.0f; f[1] = 0.0f; }
    }
    for (int i = 0; i < 2 * NV; i++) {   /* validation rows */
        int y = i < NV ? 0 : 1;
        vlabels[i] = y;
        float *f = vfeat + 2 * i;
        if (y == 0) { f[0] = 1.0f; f[1] = 0.2f; }
        else { f[0] = 0.5f; f[1] = 1.0f; }
    }
    lt_feature_bank fb = {.n = 2 * NPC, .feat_dim = 2, .n_classes = 2, .feat = feat, .labels = labels,
                          .class_counts = counts};
    lt_feature_bank vb = {.n = 2 * NV, .feat_dim = 2, .n_classes = 2, .feat = vfeat, .labels = vlabels,
                          .class_counts = counts};
    inst I;
    inst_open(&I, meth, "{\"select\": \"val\"}", 2, 2, 0);
    assert_int_equal(lt_method_wants_bank(meth, I.st), 0);   /* no training bank */
    g_vbank = &vb;
    g_vbank_calls = 0;
    assert_int_equal(meth->post_train(I.st, m, &fb), LT_OK);   /* fb handed anyway: must be ignored */
    assert_int_equal(g_vbank_calls, 1);
    double tau = NAN, n_val = NAN, acc = NAN;   /* set by logged() */
    assert_true(logged(&I.book, "tau", &tau));
    assert_float_equal(tau, 0.6, 1e-12);
    assert_true(logged(&I.book, "tau_val_images", &n_val));
    assert_float_equal(n_val, 2 * NV, 0);
    assert_true(logged(&I.book, "tau_val_mean_class_acc", &acc));
    assert_float_equal(acc, 1.0, 0);
    /* predict uses that tau: row 0 becomes (4 / 4^0.6, 0). */
    float scores[2], e0[2] = {1, 0};
    int kind;
    assert_int_equal(meth->predict(I.st, &(lt_taps){.n = 1, .n_classes = 2, .feat_dim = 2, .feat = e0},
                                   scores, &kind), LT_OK);
    assert_float_equal(scores[0], 4.0 / pow(4.0, 0.6), 1e-5);
    assert_float_equal(scores[1], 0, 0);
    inst_close(&I);

    /* A dataset without a validation split: an error naming it, not a
     * silent fall-back to training rows or a default tau. */
    inst_open(&I, meth, "{\"select\": \"val\"}", 2, 2, 0);
    g_vbank = NULL;
    assert_int_not_equal(meth->post_train(I.st, m, &fb), LT_OK);
    assert_non_null(strstr(lt_errmsg(), "no validation split"));
    assert_non_null(strstr(lt_errmsg(), "taunorm"));
    inst_close(&I);

    /* version 1's carve hparams are gone: refused before init, naming the key */
    cJSON *o = NULL;
    assert_int_equal(lt_method_hparams(meth, "{\"select\": \"val\", \"val_max_per_class\": 3}", &o), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "val_max_per_class"));
    assert_int_equal(lt_method_hparams(meth, "{\"val_fraction\": 0.1}", &o), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "val_fraction"));
    /* a host without the service (API 1) is refused at init for select = val */
    static const lt_host_api old_api = {.version = 1};
    assert_int_equal(lt_method_hparams(meth, "{\"select\": \"val\"}", &o), LT_OK);
    struct lt_hparams hp = {o};
    lt_run_info run = {.n_classes = 2, .feat_dim = 2, .api = &old_api};
    void *st = calloc(1, meth->state_size);
    assert_int_equal(meth->init(st, &run, &hp), LT_EABI);
    assert_non_null(strstr(lt_errmsg(), "validation_bank"));
    if (meth->fini) meth->fini(st);
    free(st);
    cJSON_Delete(o);
    lt_model_free(m);
}

/* ---- ncm -------------------------------------------------------------------- */

enum { NC = 6, ND = 9, NTRAIN = 240, NTEST = 50 };

static void brute_transform(const float *x, const double *g, double *out) {
    double s = 0;
    for (int d = 0; d < ND; d++) {
        out[d] = x[d] - (g ? g[d] : 0);
        s += out[d] * out[d];
    }
    for (int d = 0; d < ND; d++) out[d] /= sqrt(s);
}

/* Brute force, written from the definitions: scores[i][j] (cosine, or the
 * negative squared distance) and the predicted class. */
static void brute_ncm(int centred, const float *tr, const int32_t *y, const float *te, double *scores,
                      int *pred) {
    double g[ND] = {0}, mean[NC][ND] = {{0}}, x[ND];
    int cnt[NC] = {0};
    if (centred) {
        for (int i = 0; i < NTRAIN; i++)
            for (int d = 0; d < ND; d++) g[d] += tr[i * ND + d] / (double)NTRAIN;
    }
    for (int i = 0; i < NTRAIN; i++) {
        brute_transform(tr + i * ND, centred ? g : NULL, x);
        for (int d = 0; d < ND; d++) mean[y[i]][d] += x[d];
        cnt[y[i]]++;
    }
    for (int j = 0; j < NC; j++)
        for (int d = 0; d < ND; d++) mean[j][d] /= cnt[j];
    for (int i = 0; i < NTEST; i++) {
        brute_transform(te + i * ND, centred ? g : NULL, x);
        double best = -INFINITY;
        for (int j = 0; j < NC; j++) {
            double s;
            if (centred) {   /* nearest mean in squared Euclidean distance */
                double dist = 0;
                for (int d = 0; d < ND; d++) dist += (x[d] - mean[j][d]) * (x[d] - mean[j][d]);
                s = -dist;
            } else {         /* cosine with the normalised mean */
                double dot = 0, mm = 0;
                for (int d = 0; d < ND; d++) { dot += x[d] * mean[j][d]; mm += mean[j][d] * mean[j][d]; }
                s = dot / sqrt(mm);
            }
            scores[i * NC + j] = s;
            if (s > best) { best = s; pred[i] = j; }
        }
    }
}

static void test_ncm_matches_brute_force(void **unused) {
    (void)unused;
    const lt_method *meth = lt_method_ncm();
    assert_true(meth->flags & LT_METHOD_NEEDS_FEATURE_BANK);
    assert_int_equal(meth->n_stages(NULL), 1);
    static float tr[NTRAIN * ND], te[NTEST * ND], off[NC * ND];
    static int32_t y[NTRAIN];
    long counts[NC] = {0};
    /* Non-negative features (post-ReLU pooling) with class-dependent offsets
     * and a long-tailed label distribution; every class present. */
    gc_fill(tr, NTRAIN * ND, 1, 0, 1);
    gc_fill(te, NTEST * ND, 2, 0, 1.5f);
    gc_fill(off, NC * ND, 3, 0, 1);
    for (int i = 0; i < NTRAIN; i++) {
        y[i] = i < NC ? i : (int32_t)((unsigned)(i * 7919) % 97 % 41 % NC);
        counts[y[i]]++;
        for (int d = 0; d < ND; d++) tr[i * ND + d] += off[y[i] * ND + d];
    }
    lt_feature_bank fb = {.n = NTRAIN, .feat_dim = ND, .n_classes = NC, .feat = tr, .labels = y,
                          .class_counts = counts};
    const char *variants[2] = {NULL, "{\"variant\": \"cl2n_l2\"}"};
    for (int v = 0; v < 2; v++) {
        double ref[NTEST * NC];
        int pred[NTEST];
        brute_ncm(v, tr, y, te, ref, pred);
        inst I;
        inst_open(&I, meth, variants[v], NC, ND, 0);
        float scores[NTEST * NC];
        int kind = -1;
        lt_taps t = {.n = NTEST, .n_classes = NC, .feat_dim = ND, .feat = te, .stage = -1, .epoch = -1, .iter = -1};
        assert_int_equal(meth->predict(I.st, &t, scores, &kind), LT_ESTATE);   /* before post_train */
        assert_int_equal(meth->post_train(I.st, NULL, &fb), LT_OK);
        assert_int_equal(meth->predict(I.st, &t, scores, &kind), LT_OK);
        assert_int_equal(kind, LT_SCORES_SCORES);   /* similarities or -distances: no raw ECE */
        int agree = 0, distinct = 0;
        for (int i = 0; i < NTEST; i++) {
            int arg = 0;
            for (int j = 0; j < NC; j++) {
                assert_float_equal(scores[i * NC + j], ref[i * NC + j], 2e-6);
                if (scores[i * NC + j] > scores[i * NC + arg]) arg = j;
            }
            agree += arg == pred[i];
            distinct |= 1 << pred[i];
        }
        assert_int_equal(agree, NTEST);
        assert_true(__builtin_popcount((unsigned)distinct) >= 2);   /* not a constant classifier */
        /* The predict batch may be smaller than before, and larger. */
        t.n = 3;
        assert_int_equal(meth->predict(I.st, &t, scores, &kind), LT_OK);
        for (int j = 0; j < 3 * NC; j++) assert_float_equal(scores[j], ref[j], 2e-6);
        inst_close(&I);
    }
    /* The two variants really differ on this data (centring matters). */
    double r0[NTEST * NC], r1[NTEST * NC];
    int p0[NTEST], p1[NTEST], differ = 0;
    brute_ncm(0, tr, y, te, r0, p0);
    brute_ncm(1, tr, y, te, r1, p1);
    for (int i = 0; i < NTEST; i++) differ += p0[i] != p1[i];
    assert_true(differ > 0);
}

/* ---- shared: a tiny ResNet-8 with a method's head ---------------------------- */

enum { MC = 5, MB = 6 };
static const lt_shape k_in = {1, 1, 8, 8};

/* build: NULL = the engine default (CE's "logits" linear layer). */
static lt_model *resnet_model(const lt_method *meth, void *st, uint64_t seed) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create(&m, k_in), LT_OK);
    int feat = lt_resnet_backbone(m, "resnet8_cifar");
    assert_true(feat > 0);
    if (meth && meth->build) {
        int rc = meth->build(st, m, feat);
        if (rc) fail_msg("build: %s", lt_errmsg());
    } else {
        assert_true(lt_add_linear(m, "logits", "head", feat, MC, 1) > 0);
    }
    assert_int_equal(lt_model_finalize(m, seed), LT_OK);
    assert_int_equal(lt_model_set_batch(m, MB), LT_OK);
    return m;
}

typedef struct {
    lt_model *m;
    const float *x;
    const int32_t *y;
    int li;   /* the "logits" node */
} ce_ctx;

static double ce_loss(void *p) {
    ce_ctx *c = p;
    double loss;
    assert_int_equal(lt_model_forward(c->m, c->x, MB, 1), LT_OK);
    assert_int_equal(lt_softmax_ce(MB, MC, lt_model_out(c->m, c->li), c->y, NULL, NULL, &loss, NULL), LT_OK);
    return loss;
}

/* The runner's training step up to the optimizer: forward, CE, backward. */
static double ce_backward(ce_ctx *c) {
    double loss;
    assert_int_equal(lt_model_forward(c->m, c->x, MB, 1), LT_OK);
    assert_int_equal(lt_softmax_ce(MB, MC, lt_model_out(c->m, c->li), c->y, NULL, NULL, &loss,
                                   lt_model_dout(c->m, c->li)), LT_OK);
    lt_model_zero_grad(c->m);
    assert_int_equal(lt_model_backward(c->m, MB, &c->li, 1), LT_OK);
    return loss;
}

static void batch_data(float *x, int32_t *y) {
    gc_fill(x, (size_t)MB * 64, 5, -1, 1);
    for (int i = 0; i < MB; i++) y[i] = i % MC;
}

static lt_stage stage2_cfg(void) {
    lt_stage cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.index = 1;
    cfg.proto_stage = 2;
    cfg.epochs = 1;
    cfg.batch = MB;
    cfg.momentum = 0.9f;
    cfg.weight_decay = 5e-4f;
    cfg.head_lr_mult = 1;
    cfg.bn_eval = 1;         /* the protocol's stage-2 bn_mode "eval" */
    cfg.augment = 1;
    cfg.sampler.kind = LT_SAMPLER_INSTANCE;   /* the method must set its own */
    cfg.sched = (lt_sched){.kind = LT_SCHED_COSINE, .base_lr = 0.1, .epochs = 1};
    return cfg;
}

static int is_bn(const lt_node *nd) { return !strcmp(nd->ops->type, "bn"); }

static void check_params_frozen(lt_model *m, const char *except) {
    for (int i = 0; i < m->n_params; i++) {
        const lt_param *p = &m->params[i];
        int trainable = !(p->flags & LT_MASK_FROZEN);
        if (except && !strcmp(p->name, except)) assert_true(trainable);
        else if (trainable) fail_msg("parameter %s is trainable", p->name);
    }
}

/* ---- lws -------------------------------------------------------------------- */

/* Stage 0 of LWS is CE: the same parameter names (so CE's checkpoint loads,
 * with only the scale missing), the same initial values, the same forward
 * output bit for bit, and the same SGD step. */
static void test_lws_stage0_is_ce(void **unused) {
    (void)unused;
    const lt_method *meth = lt_method_lws();
    inst I;
    inst_open(&I, meth, NULL, MC, 64, 0);
    lt_model *ce = resnet_model(NULL, NULL, 42), *lw = resnet_model(meth, I.st, 42);
    lt_stage cfg = stage2_cfg();
    cfg.index = 0;
    cfg.proto_stage = 1;
    cfg.bn_eval = 0;
    assert_int_equal(meth->stage_begin(I.st, 0, &cfg, lw), LT_OK);

    int li = lt_model_find(lw, "logits");
    assert_true(li > 0);
    assert_string_equal(lw->nodes[li].ops->type, "scale");   /* the tap is the scaled output */
    assert_int_equal(lw->n_params, ce->n_params + 1);
    for (int i = 0; i < lw->n_params; i++) {
        const lt_param *p = &lw->params[i];
        lt_param *q = lt_model_param(ce, p->name);
        if (!strcmp(p->name, "logits.scale")) {
            assert_null(q);                                    /* keeps its init when loading CE */
            assert_true(p->flags & LT_MASK_FROZEN);
            assert_true(p->flags & LT_MASK_NO_DECAY);
            for (size_t k = 0; k < p->count; k++) assert_true(lw->w[p->off + k] == 1.0f);
            continue;
        }
        if (!q) fail_msg("CE has no parameter '%s'", p->name);
        assert_int_equal(p->count, q->count);
        assert_memory_equal(lw->w + p->off, ce->w + q->off, p->count * sizeof(float));
    }
    assert_non_null(lt_model_param(lw, "logits.weight"));
    assert_non_null(lt_model_param(lw, "logits.bias"));

    float x[MB * 64];
    int32_t y[MB];
    batch_data(x, y);
    ce_ctx a = {ce, x, y, lt_model_find(ce, "logits")}, b = {lw, x, y, li};
    for (int step = 0; step < 2; step++) {
        double la = ce_backward(&a), lb = ce_backward(&b);
        assert_true(la == lb);
        assert_memory_equal(lt_model_out(ce, a.li), lt_model_out(lw, li), MB * MC * sizeof(float));
        lt_optim oa, ob;
        assert_int_equal(lt_optim_init(&oa, ce, LT_OPT_SGD, 0.9f, 5e-4f, 0), LT_OK);
        assert_int_equal(lt_optim_init(&ob, lw, LT_OPT_SGD, 0.9f, 5e-4f, 0), LT_OK);
        assert_int_equal(lt_optim_step(&oa, ce, 0.1f), LT_OK);
        assert_int_equal(lt_optim_step(&ob, lw, 0.1f), LT_OK);
        lt_optim_free(&oa);
        lt_optim_free(&ob);
    }
    for (int i = 0; i < ce->n_params; i++) {
        const lt_param *q = &ce->params[i];
        lt_param *p = lt_model_param(lw, q->name);
        assert_memory_equal(lw->w + p->off, ce->w + q->off, p->count * sizeof(float));
    }
    assert_true(lt_model_param_data(lw, "logits.scale")[0] == 1.0f);
    lt_model_free(ce);
    lt_model_free(lw);
    inst_close(&I);
}

static void test_lws_stage1_and_scale_gradient(void **unused) {
    (void)unused;
    const lt_method *meth = lt_method_lws();
    inst I;
    inst_open(&I, meth, NULL, MC, 64, 0);
    lt_model *m = resnet_model(meth, I.st, 7);
    lt_stage cfg = stage2_cfg();
    assert_int_equal(meth->n_stages(I.st), 2);
    assert_int_equal(meth->stage_begin(I.st, 0, &cfg, m), LT_OK);
    cfg = stage2_cfg();
    /* Stand-in for CE's trained head: scales away from 1 so the gradient is
     * not the CE gradient in disguise. */
    float *s = lt_model_param_data(m, "logits.scale");
    for (int j = 0; j < MC; j++) s[j] = 0.5f + 0.3f * j;
    const float *W = lt_model_param_data(m, "logits.weight"), *bias = lt_model_param_data(m, "logits.bias");
    float W0[MC * 64], b0[MC];
    memcpy(W0, W, sizeof W0);
    memcpy(b0, bias, sizeof b0);
    assert_int_equal(meth->stage_begin(I.st, 1, &cfg, m), LT_OK);

    /* Configuration: only s trainable (the classifier keeps W and b frozen),
     * s without decay, BN of the backbone in eval mode, the classifier not
     * re-initialised, class-balanced sampling. */
    check_params_frozen(m, "logits.scale");
    lt_param *sp = lt_model_param(m, "logits.scale");
    assert_true(sp->flags & LT_MASK_NO_DECAY);
    for (size_t k = 0; k < sp->count; k++) assert_int_equal(m->mask[sp->off + k], LT_MASK_NO_DECAY);
    for (int i = 1; i < m->n_nodes; i++)
        if (is_bn(&m->nodes[i])) assert_int_equal(m->nodes[i].eval_mode, 1);
    assert_int_equal(cfg.bn_eval, 1);
    assert_int_equal(cfg.freeze_backbone, 1);
    assert_int_equal(cfg.reinit_head, 0);
    assert_int_equal(cfg.sampler.kind, LT_SAMPLER_CLASS_BALANCED);
    assert_memory_equal(W, W0, sizeof W0);
    assert_memory_equal(bias, b0, sizeof b0);
    /* The backbone needs no backward pass at all. */
    assert_int_equal(m->nodes[lt_model_find(m, "feat")].need_dy, 0);

    float x[MB * 64];
    int32_t y[MB];
    batch_data(x, y);
    ce_ctx c = {m, x, y, lt_model_find(m, "logits")};
    ce_backward(&c);
    /* logits = s_j (w_j.f + b_j): check the forward against that formula. */
    const float *f = lt_model_out(m, lt_model_find(m, "feat")), *z = lt_model_out(m, c.li);
    for (int i = 0; i < MB; i++)
        for (int j = 0; j < MC; j++) {
            double acc = b0[j];
            for (int d = 0; d < 64; d++) acc += (double)W0[j * 64 + d] * f[i * 64 + d];
            assert_float_equal(z[i * MC + j], s[j] * acc, 1e-4);
        }
    float g[MC];
    memcpy(g, m->g + sp->off, sizeof g);
    double gn = 0;
    for (int j = 0; j < MC; j++) gn += fabs(g[j]);
    assert_true(gn > 1e-3);
    /* Nothing else receives a gradient. */
    for (int i = 0; i < m->n_params; i++) {
        const lt_param *p = &m->params[i];
        if (p == sp) continue;
        for (size_t k = 0; k < p->count; k++) assert_true(m->g[p->off + k] == 0.0f);
    }
    gc_opts o = {.eps = 1e-2, .rtol = 2e-2, .atol = 1e-5};
    assert_int_equal(gc_check("lws d loss / d s", ce_loss, &c, s, g, MC, &o), 0);

    /* An SGD step moves s only. */
    lt_optim opt;
    float s0[MC];
    memcpy(s0, s, sizeof s0);
    ce_backward(&c);
    assert_int_equal(lt_optim_init(&opt, m, LT_OPT_SGD, cfg.momentum, cfg.weight_decay, 0), LT_OK);
    assert_int_equal(lt_optim_step(&opt, m, 0.1f), LT_OK);
    lt_optim_free(&opt);
    for (int j = 0; j < MC; j++) assert_float_equal(s[j], s0[j] - 0.1f * m->g[sp->off + j], 1e-7);
    assert_memory_equal(W, W0, sizeof W0);
    assert_memory_equal(bias, b0, sizeof b0);
    lt_model_free(m);
    inst_close(&I);

    /* The official code's variants: decay on s, BN re-estimated (train mode),
     * the class-aware sampler. */
    inst_open(&I, meth, "{\"scale_decay\": true, \"stage2_bn\": \"train\", \"sampler\": \"class_aware\"}",
              MC, 64, 0);
    m = resnet_model(meth, I.st, 7);
    cfg = stage2_cfg();
    assert_int_equal(meth->stage_begin(I.st, 1, &cfg, m), LT_OK);
    sp = lt_model_param(m, "logits.scale");
    assert_false(sp->flags & LT_MASK_NO_DECAY);
    assert_int_equal(m->mask[sp->off], 0);
    for (int i = 1; i < m->n_nodes; i++)
        if (is_bn(&m->nodes[i])) assert_int_equal(m->nodes[i].eval_mode, 0);
    assert_int_equal(cfg.bn_eval, 0);
    assert_int_equal(cfg.sampler.kind, LT_SAMPLER_CLASS_AWARE);
    assert_int_equal(cfg.sampler.k_per_class, 4);
    check_params_frozen(m, "logits.scale");
    lt_model_free(m);
    inst_close(&I);
}

/* ---- crt -------------------------------------------------------------------- */

static void test_crt_stage1_and_head_gradient(void **unused) {
    (void)unused;
    const lt_method *meth = lt_method_crt();
    assert_null(meth->build);    /* CE's head: the checkpoint loads as is */
    assert_null(meth->loss);     /* plain softmax cross-entropy */
    inst I;
    inst_open(&I, meth, NULL, MC, 64, 3);
    assert_int_equal(meth->n_stages(I.st), 2);
    lt_model *m = resnet_model(meth, I.st, 9);
    lt_stage cfg = stage2_cfg();
    assert_int_equal(meth->stage_begin(I.st, 0, &cfg, m), LT_OK);
    /* Stage 0 is untouched CE: everything trainable, BN in train mode. */
    for (int i = 0; i < m->n_params; i++) assert_false(m->params[i].flags & LT_MASK_FROZEN);
    /* A "trained" head to be thrown away. */
    float *W = lt_model_param_data(m, "logits.weight"), *b = lt_model_param_data(m, "logits.bias");
    for (int k = 0; k < MC * 64; k++) W[k] = 7.0f;
    for (int j = 0; j < MC; j++) b[j] = -7.0f;
    size_t nbb = (size_t)(lt_model_param(m, "logits.weight")->off);   /* the backbone precedes the head */
    float *bb0 = malloc(nbb * sizeof(float));
    memcpy(bb0, m->w, nbb * sizeof(float));

    cfg = stage2_cfg();
    assert_int_equal(meth->stage_begin(I.st, 1, &cfg, m), LT_OK);
    /* Frozen backbone, BN eval, trainable head, class-balanced sampler. */
    for (int i = 0; i < m->n_params; i++) {
        const lt_param *p = &m->params[i];
        int head = !strncmp(p->name, "logits.", 7);
        assert_int_equal(!(p->flags & LT_MASK_FROZEN), head);
    }
    for (int i = 1; i < m->n_nodes; i++)
        if (is_bn(&m->nodes[i])) assert_int_equal(m->nodes[i].eval_mode, 1);
    assert_int_equal(cfg.freeze_backbone, 1);
    assert_int_equal(cfg.reinit_head, 1);
    assert_int_equal(cfg.bn_eval, 1);
    assert_int_equal(cfg.sampler.kind, LT_SAMPLER_CLASS_BALANCED);
    assert_memory_equal(m->w, bb0, nbb * sizeof(float));   /* backbone untouched */
    /* Re-initialised: U(-1/sqrt(64), 1/sqrt(64)) for weight and bias, spread
     * over the interval, from (seed, stage) so it is reproducible. */
    double bound = 1.0 / 8.0, mean = 0, var = 0;
    for (int k = 0; k < MC * 64; k++) {
        assert_true(fabs(W[k]) <= bound);
        mean += W[k];
        var += (double)W[k] * W[k];
    }
    mean /= MC * 64;
    var /= MC * 64;
    assert_true(fabs(mean) < 0.02);
    assert_float_equal(var, bound * bound / 3, 0.25 * bound * bound / 3);   /* U(-a,a): a^2/3 */
    for (int j = 0; j < MC; j++) assert_true(fabs(b[j]) <= bound && b[j] != -7.0f);
    float W1[MC * 64], b1[MC];
    memcpy(W1, W, sizeof W1);
    memcpy(b1, b, sizeof b1);
    /* Replaying stage_begin (resume) gives the same head; another seed does not. */
    cfg = stage2_cfg();
    assert_int_equal(meth->stage_begin(I.st, 1, &cfg, m), LT_OK);
    assert_memory_equal(W, W1, sizeof W1);
    assert_memory_equal(b, b1, sizeof b1);
    inst I2;
    inst_open(&I2, meth, NULL, MC, 64, 4);
    cfg = stage2_cfg();
    assert_int_equal(meth->stage_begin(I2.st, 1, &cfg, m), LT_OK);
    assert_memory_not_equal(W, W1, sizeof W1);
    inst_close(&I2);
    cfg = stage2_cfg();
    assert_int_equal(meth->stage_begin(I.st, 1, &cfg, m), LT_OK);

    /* d loss / d (W, b) of the re-initialised layer, by finite differences
     * through the whole model; the frozen backbone gets nothing. */
    float x[MB * 64];
    int32_t y[MB];
    batch_data(x, y);
    ce_ctx c = {m, x, y, lt_model_find(m, "logits")};
    ce_backward(&c);
    lt_param *pw = lt_model_param(m, "logits.weight"), *pb = lt_model_param(m, "logits.bias");
    float gW[MC * 64], gb[MC];
    memcpy(gW, m->g + pw->off, sizeof gW);
    memcpy(gb, m->g + pb->off, sizeof gb);
    for (size_t k = 0; k < nbb; k++) assert_true(m->g[k] == 0.0f);
    assert_int_equal(m->nodes[lt_model_find(m, "feat")].need_dy, 0);
    gc_opts o = {.eps = 1e-2, .rtol = 2e-2, .atol = 2e-5, .max_checks = 80};
    assert_int_equal(gc_check("crt d loss / d W", ce_loss, &c, W, gW, MC * 64, &o), 0);
    assert_int_equal(gc_check("crt d loss / d b", ce_loss, &c, b, gb, MC, &o), 0);
    free(bb0);
    lt_model_free(m);
    inst_close(&I);

    /* The official code's BN re-estimation and sampler, as hparams; an
     * unknown value is an error. */
    inst_open(&I, meth, "{\"stage2_bn\": \"train\", \"sampler\": \"class_aware\"}", MC, 64, 3);
    m = resnet_model(meth, I.st, 9);
    cfg = stage2_cfg();
    assert_int_equal(meth->stage_begin(I.st, 1, &cfg, m), LT_OK);
    for (int i = 1; i < m->n_nodes; i++)
        if (is_bn(&m->nodes[i])) assert_int_equal(m->nodes[i].eval_mode, 0);
    assert_int_equal(cfg.bn_eval, 0);
    assert_int_equal(cfg.sampler.kind, LT_SAMPLER_CLASS_AWARE);
    lt_model_free(m);
    inst_close(&I);
    cJSON *ob = NULL;
    assert_int_equal(lt_method_hparams(meth, "{\"stage2_bn\": \"sometimes\"}", &ob), LT_OK);
    struct lt_hparams hp = {ob};
    lt_run_info run = {.n_classes = MC, .feat_dim = 64};
    void *st = calloc(1, meth->state_size);
    assert_int_equal(meth->init(st, &run, &hp), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "stage2_bn"));
    free(st);
    cJSON_Delete(ob);
}

/* The repository root, where methods/ lies: the working directory (tests/run.sh
 * starts every test there), else two folders above this executable
 * (<root>/build/tests/<name>). The marker is the Makefile beside methods/, not
 * a defaults.json, so that a missing defaults.json fails rather than skips.
 * 0 found (root in buf, "" for the working directory), -1 not. */
static int repo_root(char *buf, size_t cap) {
    buf[0] = '\0';
    if (access("Makefile", F_OK) == 0 && access("methods", F_OK) == 0) return 0;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    for (int up = 0; up < 3; up++) {   /* the file name, tests/, build/ */
        char *slash = strrchr(exe, '/');
        if (!slash) return -1;
        *slash = '\0';
    }
    char probe[PATH_MAX + 16];
    snprintf(probe, sizeof probe, "%s/Makefile", exe);
    if (access(probe, F_OK) != 0) return -1;
    snprintf(probe, sizeof probe, "%s/methods", exe);
    if (access(probe, F_OK) != 0) return -1;
    snprintf(buf, cap, "%s/", exe);
    return 0;
}

/* defaults.json of each method equals its `defaults` string (as JSON). */
static void test_defaults_files(void **unused) {
    (void)unused;
    char root[PATH_MAX + 1];
    if (repo_root(root, sizeof root) != 0) {
        printf("skip: the repository (methods/) not found from the working directory or the executable\n");
        skip();
    }
    const lt_method *ms[4] = {lt_method_crt(), lt_method_lws(), lt_method_taunorm(), lt_method_ncm()};
    for (int i = 0; i < 4; i++) {
        char path[PATH_MAX + 64], buf[4096];
        snprintf(path, sizeof path, "%smethods/%s/defaults.json", root, ms[i]->name);
        FILE *f = fopen(path, "rb");
        if (!f) print_error("%s: cannot open\n", path);
        assert_non_null(f);
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        cJSON *a = cJSON_Parse(buf), *b = cJSON_Parse(ms[i]->defaults);
        assert_non_null(a);
        assert_non_null(b);
        assert_true(cJSON_Compare(a, b, 1));
        cJSON_Delete(a);
        cJSON_Delete(b);
    }
}

/* ---- effective classifier norms (per_class.csv weight_norm, wnorm figure) ---- */

/* taunorm: ||w_j||^(1 - tau) of CE's rows, NAN before post_train. */
static void test_class_norms_taunorm(void **unused) {
    (void)unused;
    const lt_method *meth = lt_method_taunorm();
    assert_non_null(meth->class_norms);
    lt_model *m = linear_model();
    const float *W = lt_model_param_data(m, "logits.weight");
    double norms[TC];
    const double taus[3] = {0, 0.5, 1};
    for (int k = 0; k < 3; k++) {
        char hp[32];
        snprintf(hp, sizeof hp, "{\"tau\": %g}", taus[k]);
        inst I;
        inst_open(&I, meth, hp, TC, TD, 0);
        assert_int_equal(meth->class_norms(I.st, m, TC, norms), LT_OK);
        for (int j = 0; j < TC; j++) assert_true(isnan(norms[j]));
        assert_int_equal(meth->post_train(I.st, m, NULL), LT_OK);
        assert_int_equal(meth->class_norms(I.st, m, TC, norms), LT_OK);
        for (int j = 0; j < TC; j++) {
            double n0 = 0;
            for (int d = 0; d < TD; d++) n0 += (double)W[j * TD + d] * W[j * TD + d];
            assert_float_equal(norms[j], pow(sqrt(n0), 1 - taus[k]), 1e-5);
        }
        assert_int_not_equal(meth->class_norms(I.st, m, TC + 1, norms), LT_OK);
        inst_close(&I);
    }
    lt_model_free(m);
}

/* ncm: the centroids' norms (unit for l2n_cos, the centred means' for cl2n_l2). */
static void test_class_norms_ncm(void **unused) {
    (void)unused;
    const lt_method *meth = lt_method_ncm();
    assert_non_null(meth->class_norms);
    static float tr[NTRAIN * ND];
    static int32_t y[NTRAIN];
    long counts[NC] = {0};
    gc_fill(tr, NTRAIN * ND, 5, 0, 1);
    for (int i = 0; i < NTRAIN; i++) {
        y[i] = i % NC;
        counts[y[i]]++;
        for (int d = 0; d < ND; d++) tr[i * ND + d] += (float)(y[i] == d);
    }
    lt_feature_bank fb = {.n = NTRAIN, .feat_dim = ND, .n_classes = NC, .feat = tr, .labels = y,
                          .class_counts = counts};
    const char *variants[2] = {NULL, "{\"variant\": \"cl2n_l2\"}"};
    for (int v = 0; v < 2; v++) {
        double g[ND] = {0}, mean[NC][ND] = {{0}}, x[ND], norms[NC];
        for (int i = 0; i < NTRAIN; i++)
            for (int d = 0; d < ND; d++) g[d] += tr[i * ND + d] / (double)NTRAIN;
        for (int i = 0; i < NTRAIN; i++) {
            brute_transform(tr + i * ND, v ? g : NULL, x);
            for (int d = 0; d < ND; d++) mean[y[i]][d] += x[d] / (double)counts[y[i]];
        }
        inst I;
        inst_open(&I, meth, variants[v], NC, ND, 0);
        assert_int_equal(meth->class_norms(I.st, NULL, NC, norms), LT_OK);
        for (int j = 0; j < NC; j++) assert_true(isnan(norms[j]));
        assert_int_equal(meth->post_train(I.st, NULL, &fb), LT_OK);
        assert_int_equal(meth->class_norms(I.st, NULL, NC, norms), LT_OK);
        for (int j = 0; j < NC; j++) {
            double mm = 0;
            for (int d = 0; d < ND; d++) mm += mean[j][d] * mean[j][d];
            assert_float_equal(norms[j], v ? sqrt(mm) : 1.0, 1e-5);
            if (v) assert_true(norms[j] < 0.999);   /* not the unit rows of l2n_cos */
        }
        inst_close(&I);
    }
}

/* lws: |s_j| ||w_j|| of the linear rows and the learnt scales. */
static void test_class_norms_lws(void **unused) {
    (void)unused;
    const lt_method *meth = lt_method_lws();
    assert_non_null(meth->class_norms);
    inst I;
    inst_open(&I, meth, NULL, MC, 64, 0);
    lt_model *m = resnet_model(meth, I.st, 42);
    float *sc = lt_model_param_data(m, "logits.scale");
    const float *W = lt_model_param_data(m, "logits.weight");
    assert_non_null(sc);
    assert_non_null(W);
    for (int j = 0; j < MC; j++) sc[j] = (j % 2 ? -1.0f : 1.0f) * (0.5f + (float)j);
    double norms[MC];
    assert_int_equal(meth->class_norms(I.st, m, MC, norms), LT_OK);
    for (int j = 0; j < MC; j++) {
        double q = 0;
        for (int d = 0; d < 64; d++) q += (double)W[j * 64 + d] * W[j * 64 + d];
        assert_float_equal(norms[j], (0.5 + j) * sqrt(q), 1e-5);
    }
    assert_int_not_equal(meth->class_norms(I.st, m, MC + 1, norms), LT_OK);
    /* a plain CE model has no scale: refused, not guessed */
    lt_model *ce = resnet_model(NULL, NULL, 42);
    assert_int_not_equal(meth->class_norms(I.st, ce, MC, norms), LT_OK);
    lt_model_free(ce);
    lt_model_free(m);
    inst_close(&I);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_taunorm_tau0_and_tau1),
        cmocka_unit_test(test_taunorm_selects_on_validation_split),
        cmocka_unit_test(test_ncm_matches_brute_force),
        cmocka_unit_test(test_lws_stage0_is_ce),
        cmocka_unit_test(test_lws_stage1_and_scale_gradient),
        cmocka_unit_test(test_crt_stage1_and_head_gradient),
        cmocka_unit_test(test_defaults_files),
        cmocka_unit_test(test_class_norms_taunorm),
        cmocka_unit_test(test_class_norms_ncm),
        cmocka_unit_test(test_class_norms_lws),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
