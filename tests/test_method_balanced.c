/* test_method_balanced.c — Balanced Softmax (bsm, bsm_dec) and Balanced
 * Sigmoid (bsig), called through their hooks with synthetic taps and tiny
 * engine models:
 *  - the bsm loss hook's gradient equals (softmax(z + log n) - onehot(y)) / N,
 *    computed here in double, passes finite differences, and reduces to plain
 *    CE for uniform counts; predict leaves the logits alone;
 *  - classes with zero training images are excluded (zero gradient, the
 *    limit of the loss, score -1e30 at test) and a label of one is refused;
 *  - bsm_dec's stage 2: backbone frozen, its BN in eval mode, the head
 *    re-initialised, instance sampler whatever the protocol prefilled; one
 *    SGD step moves only the head and leaves the BN statistics alone;
 *  - the bsig offsets equal log(phi/(1-phi)), its gradient passes finite
 *    differences, the bias starts at -log((1-pi)/pi), and predict returns the
 *    normalised sigmoid. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "lt.h"
#include "lt_method.h"
#include "lt_run_internal.h"
#include "lt_model_impl.h"   /* white-box: the model's structs */

const lt_method *lt_method_bsm(void);
const lt_method *lt_method_bsm_dec(void);
const lt_method *lt_method_bsig(void);

/* ---- a method instance, driven as the runner drives it ------------------- */

typedef struct {
    int calls;
    char key[64];
    double value;
} log_sink;

static int sink_log(void *host, const char *key, double value) {
    log_sink *s = host;
    s->calls++;
    snprintf(s->key, sizeof s->key, "%s", key);
    s->value = value;
    return LT_OK;
}

typedef struct {
    const lt_method *M;
    void *st;
    cJSON *hp_obj;
    lt_hparams hp;
    lt_run_info run;
    log_sink sink;
} inst;

static int inst_open(inst *I, const lt_method *M, const char *overrides, int C, const long *counts) {
    memset(I, 0, sizeof *I);
    I->M = M;
    assert_int_equal(M->abi, LT_METHOD_ABI);
    I->st = calloc(1, M->state_size ? M->state_size : 1);
    assert_non_null(I->st);
    assert_int_equal(lt_method_hparams(M, overrides, &I->hp_obj), LT_OK);
    I->hp.obj = I->hp_obj;
    I->run.protocol = "test";
    I->run.scale = "ci";
    I->run.method = M->name;
    I->run.seed = 7;
    I->run.threads = 1;
    I->run.n_classes = C;
    long n = 0;
    for (int j = 0; j < C; j++) n += counts[j];
    I->run.n_train = n;
    I->run.class_counts = counts;
    I->run.host = &I->sink;
    I->run.log = sink_log;
    return M->init ? M->init(I->st, &I->run, &I->hp) : LT_OK;
}

static void inst_close(inst *I) {
    if (I->M->fini) I->M->fini(I->st);
    free(I->st);
    cJSON_Delete(I->hp_obj);
}

static lt_taps make_taps(int n, int C, const float *logits, const int32_t *labels, const long *counts,
                         int stage) {
    lt_taps t;
    memset(&t, 0, sizeof t);
    t.n = n;
    t.n_classes = C;
    t.logits = logits;
    t.labels = labels;
    t.class_counts = counts;
    t.stage = stage;
    t.epoch = 0;
    t.iter = 0;
    t.lr = 0.1f;
    return t;
}

/* ---- Balanced Softmax ------------------------------------------------------ */

#define BN_ 6   /* batch */
#define BC 5    /* classes */

static const long k_counts[BC] = {1000, 300, 60, 12, 3};
static const int32_t k_labels[BN_] = {0, 4, 2, 1, 3, 4};

/* Reference: loss and gradient of CE(z + log n) in double. The hooks hold
 * their offsets as float (the engine's offset vectors are float), so the loss
 * values agree to about 1e-7 relative per offset, not to double precision:
 * losses are compared to 2e-6. */
static double ref_bsm(int n, int C, const float *z, const int32_t *y, const long *counts, double *grad) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        double a[64], m = -INFINITY, s = 0;
        for (int j = 0; j < C; j++) {
            a[j] = counts[j] > 0 ? (double)z[i * C + j] + log((double)counts[j]) : -INFINITY;
            if (a[j] > m) m = a[j];
        }
        for (int j = 0; j < C; j++) s += exp(a[j] - m);
        total += -(a[y[i]] - m - log(s));
        for (int j = 0; j < C; j++) grad[i * C + j] = (exp(a[j] - m) / s - (j == y[i])) / n;
    }
    return total / n;
}

typedef struct {
    inst *I;
    float *z;
    const int32_t *y;
    const long *counts;
    int n, C, stage;
    float *g;
} loss_ctx;

static double hook_loss(void *p) {
    loss_ctx *c = p;
    lt_taps t = make_taps(c->n, c->C, c->z, c->y, c->counts, c->stage);
    lt_grads g = {.dlogits = c->g};
    double loss = NAN;
    assert_int_equal(c->I->M->loss(c->I->st, &t, &loss, &g), LT_OK);
    return loss;
}

static void test_bsm_gradient(void **state) {
    (void)state;
    inst I;
    assert_int_equal(inst_open(&I, lt_method_bsm(), NULL, BC, k_counts), LT_OK);
    assert_null(I.M->stage1_from);
    assert_null(I.M->sampler);   /* instance-balanced: never with a balanced sampler */
    assert_int_equal(I.sink.calls, 0);

    float z[BN_ * BC], g[BN_ * BC], gscratch[BN_ * BC];
    gc_fill(z, BN_ * BC, 1, -3.0f, 3.0f);
    loss_ctx c = {&I, z, k_labels, k_counts, BN_, BC, 0, g};
    double loss = hook_loss(&c);
    double ref_g[BN_ * BC];
    double ref = ref_bsm(BN_, BC, z, k_labels, k_counts, ref_g);
    assert_true(fabs(loss - ref) < 2e-6 * fmax(1.0, fabs(ref)));
    for (int k = 0; k < BN_ * BC; k++) assert_true(fabs((double)g[k] - ref_g[k]) < 1e-7);
    /* each gradient row sums to 0 (softmax minus one-hot) */
    for (int i = 0; i < BN_; i++) {
        double s = 0;
        for (int j = 0; j < BC; j++) s += g[i * BC + j];
        assert_true(fabs(s) < 1e-7);
    }
    /* The offsets really matter: the plain-CE gradient is different. */
    double ce;
    float gce[BN_ * BC];
    assert_int_equal(lt_softmax_ce(BN_, BC, z, k_labels, NULL, NULL, &ce, gce), LT_OK);
    assert_true(fabs(ce - loss) > 0.1);

    /* finite differences through the hook */
    loss_ctx cf = {&I, z, k_labels, k_counts, BN_, BC, 0, gscratch};
    gc_opts o = {1e-2, 1e-2, 1e-5, 0};
    assert_int_equal(gc_check("bsm loss hook", hook_loss, &cf, z, g, BN_ * BC, &o), 0);

    /* predict: the plain logits (no adjustment at test) */
    float scores[BN_ * BC];
    int kind = -1;
    lt_taps t = make_taps(BN_, BC, z, NULL, k_counts, -1);
    assert_int_equal(I.M->predict(I.st, &t, scores, &kind), LT_OK);
    assert_int_equal(kind, LT_SCORES_LOGITS);
    assert_memory_equal(scores, z, sizeof z);
    inst_close(&I);
}

static void test_bsm_uniform_is_ce(void **state) {
    (void)state;
    const long uni[BC] = {40, 40, 40, 40, 40};
    inst I;
    assert_int_equal(inst_open(&I, lt_method_bsm(), NULL, BC, uni), LT_OK);
    float z[BN_ * BC], g[BN_ * BC], gce[BN_ * BC];
    gc_fill(z, BN_ * BC, 2, -4.0f, 4.0f);
    loss_ctx c = {&I, z, k_labels, uni, BN_, BC, 0, g};
    double loss = hook_loss(&c), ce;
    assert_int_equal(lt_softmax_ce(BN_, BC, z, k_labels, NULL, NULL, &ce, gce), LT_OK);
    assert_true(fabs(loss - ce) < 1e-6);
    for (int k = 0; k < BN_ * BC; k++) assert_true(fabs(g[k] - gce[k]) < 1e-7);

    /* The counts come from the taps: the same instance given long-tailed
     * taps counts follows them (and back). */
    c.counts = k_counts;
    double lt_loss = hook_loss(&c);
    double ref_g[BN_ * BC];
    assert_true(fabs(lt_loss - ref_bsm(BN_, BC, z, k_labels, k_counts, ref_g)) < 1e-6);
    c.counts = uni;
    assert_true(fabs(hook_loss(&c) - ce) < 1e-6);
    inst_close(&I);
}

static void test_bsm_zero_count(void **state) {
    (void)state;
    const long cnt[4] = {500, 0, 40, 7};
    const int32_t y[3] = {0, 2, 3};
    inst I;
    assert_int_equal(inst_open(&I, lt_method_bsm(), NULL, 4, cnt), LT_OK);
    /* the exclusion is reported once, at init */
    assert_int_equal(I.sink.calls, 1);
    assert_string_equal(I.sink.key, "bsm_excluded_classes");
    assert_true(I.sink.value == 1.0);

    float z[12], g[12];
    gc_fill(z, 12, 3, -2.0f, 2.0f);
    z[1] = 50.0f;   /* even a huge logit of the empty class carries no weight */
    loss_ctx c = {&I, z, y, cnt, 3, 4, 0, g};
    double loss = hook_loss(&c), ref_g[12];
    double ref = ref_bsm(3, 4, z, y, cnt, ref_g);   /* the n_j -> 0 limit: class 1 absent */
    assert_true(isfinite(loss));
    assert_true(fabs(loss - ref) < 2e-6);
    for (int i = 0; i < 3; i++) assert_true(g[i * 4 + 1] == 0.0f);
    for (int k = 0; k < 12; k++) assert_true(fabs(g[k] - ref_g[k]) < 1e-7);

    /* a sample of the empty class contradicts the counts */
    const int32_t ybad[3] = {0, 1, 3};
    lt_taps t = make_taps(3, 4, z, ybad, cnt, 0);
    lt_grads gr = {.dlogits = g};
    assert_int_equal(I.M->loss(I.st, &t, &loss, &gr), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "0 training images"));

    /* at test the empty class is never predicted; the others keep their logits */
    float scores[12];
    int kind = -1;
    t = make_taps(3, 4, z, NULL, cnt, -1);
    assert_int_equal(I.M->predict(I.st, &t, scores, &kind), LT_OK);
    assert_int_equal(kind, LT_SCORES_LOGITS);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            if (j == 1) {
                assert_true(scores[i * 4 + j] < -1e29f);
                assert_true(isfinite(scores[i * 4 + j]));
                assert_true(exp((double)scores[i * 4 + j] - z[i * 4]) == 0.0);
            } else {
                assert_true(scores[i * 4 + j] == z[i * 4 + j]);
            }
        }
    inst_close(&I);

    /* no class with training images at all: refused at init */
    const long none[3] = {0, 0, 0};
    assert_int_equal(inst_open(&I, lt_method_bsm(), NULL, 3, none), LT_EINVAL);
    inst_close(&I);
    /* a negative count is refused */
    const long neg[3] = {5, -1, 3};
    assert_int_equal(inst_open(&I, lt_method_bsm(), NULL, 3, neg), LT_EINVAL);
    inst_close(&I);
}

/* ---- bsm_dec: stage configuration on a tiny model ------------------------- */

#define TN 8   /* batch */
#define TC 4   /* classes */

/* conv3x3(2->3) + BN + ReLU + GAP "feat" (group backbone), linear "logits" (head). */
static lt_model *tiny_model(const lt_method *M, void *st) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 2, 4, 4}), LT_OK);
    int c = lt_add_conv(m, "conv", "backbone", 0, 3, 3, 1, 1, 1, 0);
    assert_true(c > 0);
    int b = lt_add_bn(m, "bn", "backbone", c);
    assert_true(b > 0);
    int r = lt_add_relu(m, "relu", "backbone", b);
    assert_true(r > 0);
    int f = lt_add_gap(m, "feat", "backbone", r);
    assert_true(f > 0);
    if (M && M->build) assert_int_equal(M->build(st, m, f), LT_OK);
    else assert_true(lt_add_linear(m, "logits", "head", f, TC, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 1), LT_OK);
    assert_int_equal(lt_model_set_batch(m, TN), LT_OK);
    return m;
}

/* What the runner prefills for stage index 1 from a protocol's stage2 block. */
static lt_stage proto_stage2(void) {
    lt_stage cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.index = 1;
    cfg.proto_stage = 2;
    cfg.epochs = 1;
    cfg.batch = TN;
    cfg.drop_last = 1;
    cfg.momentum = 0.9f;
    cfg.weight_decay = 5e-4f;
    cfg.head_lr_mult = 1.0;
    cfg.sampler.kind = LT_SAMPLER_CLASS_BALANCED;   /* the protocols' stage-2 default (cRT) */
    cfg.bn_eval = 1;
    cfg.augment = 1;
    return cfg;
}

static void test_bsm_dec_stage(void **state) {
    (void)state;
    const long cnt[TC] = {400, 120, 30, 6};
    inst I;
    assert_int_equal(inst_open(&I, lt_method_bsm_dec(), NULL, TC, cnt), LT_OK);
    assert_non_null(I.M->stage1_from);
    assert_string_equal(I.M->stage1_from, "ce");
    assert_int_equal(I.M->n_stages(I.st), 2);

    lt_model *m = tiny_model(I.M, I.st);
    size_t nw = m->n_w;
    float *w0 = malloc(nw * sizeof *w0);
    assert_non_null(w0);
    memcpy(w0, m->w, nw * sizeof *w0);

    /* stage 0 (the shared ce stage) is left alone */
    lt_stage s0 = proto_stage2();
    s0.index = 0;
    s0.proto_stage = 1;
    s0.sampler.kind = LT_SAMPLER_INSTANCE;
    s0.bn_eval = 0;
    assert_int_equal(I.M->stage_begin(I.st, 0, &s0, m), LT_OK);
    assert_memory_equal(m->w, w0, nw * sizeof *w0);
    for (int i = 0; i < m->n_params; i++) assert_false(m->params[i].flags & LT_MASK_FROZEN);

    lt_stage s1 = proto_stage2();
    assert_int_equal(I.M->stage_begin(I.st, 1, &s1, m), LT_OK);
    /* instance sampler in place of the protocol's class-balanced default */
    assert_int_equal(s1.sampler.kind, LT_SAMPLER_INSTANCE);
    assert_int_equal(s1.freeze_backbone, 1);
    assert_int_equal(s1.reinit_head, 1);
    assert_int_equal(s1.bn_eval, 1);
    /* the per-epoch hook keeps it so */
    lt_sampler_cfg sc = {LT_SAMPLER_CLASS_BALANCED, 0, 0, NULL};
    assert_int_equal(I.M->sampler(I.st, 1, 0, &sc), LT_OK);
    assert_int_equal(sc.kind, LT_SAMPLER_INSTANCE);

    /* frozen backbone, trainable head, per parameter and per mask byte */
    for (int i = 0; i < m->n_params; i++) {
        const lt_param *p = &m->params[i];
        int backbone = !strcmp(m->nodes[p->node].group, "backbone");
        assert_int_equal(!!(p->flags & LT_MASK_FROZEN), backbone);
        for (size_t k = 0; k < p->count; k++) assert_int_equal(!!(m->mask[p->off + k] & LT_MASK_FROZEN), backbone);
    }
    /* BN of the backbone in eval mode */
    int bn = lt_model_find(m, "bn");
    assert_int_equal(m->nodes[bn].eval_mode, 1);
    /* head re-initialised: changed, U(+-1/sqrt(fan_in)) for weight AND bias,
     * backbone weights untouched, and reproducible from (seed + 1000*stage) */
    const lt_param *hw = lt_model_param(m, "logits.weight");
    const lt_param *hb = lt_model_param(m, "logits.bias");
    assert_non_null(hw);
    assert_non_null(hb);
    double bound = 1.0 / sqrt(3.0);   /* fan_in = feat dim 3 */
    int changed = 0;
    for (size_t k = 0; k < hw->count; k++) {
        changed += m->w[hw->off + k] != w0[hw->off + k];
        assert_true(fabs(m->w[hw->off + k]) <= bound);
    }
    for (size_t k = 0; k < hb->count; k++) assert_true(fabs(m->w[hb->off + k]) <= bound);
    assert_true(changed == (int)hw->count);
    for (int i = 0; i < m->n_params; i++) {
        const lt_param *p = &m->params[i];
        if (!strcmp(m->nodes[p->node].group, "backbone"))
            assert_memory_equal(m->w + p->off, w0 + p->off, p->count * sizeof(float));
    }
    float *head_after = malloc(nw * sizeof *head_after);
    assert_non_null(head_after);
    memcpy(head_after, m->w, nw * sizeof *head_after);
    assert_int_equal(lt_model_reinit(m, "head", I.run.seed + 1000u), LT_OK);
    assert_memory_equal(m->w, head_after, nw * sizeof *head_after);   /* runner's switch: same result */

    /* One training step as the runner does it: BN statistics and backbone
     * weights stay put, the head moves; the loss is Balanced Softmax. */
    float x[TN * 2 * 16];
    gc_fill(x, sizeof x / sizeof x[0], 9, -1.0f, 1.0f);
    const int32_t y[TN] = {0, 0, 0, 1, 1, 2, 3, 0};
    float *buf0 = malloc(m->n_b * sizeof *buf0);
    assert_non_null(buf0);
    memcpy(buf0, m->buf, m->n_b * sizeof *buf0);
    lt_optim opt;
    assert_int_equal(lt_optim_init(&opt, m, LT_OPT_SGD, 0.9f, 5e-4f, 0), LT_OK);
    assert_int_equal(lt_model_forward(m, x, TN, 1), LT_OK);
    int lg = lt_model_find(m, "logits");
    lt_taps t = make_taps(TN, TC, lt_model_out(m, lg), y, cnt, 1);
    lt_grads g = {.dlogits = lt_model_dout(m, lg)};
    double loss;
    assert_int_equal(I.M->loss(I.st, &t, &loss, &g), LT_OK);
    double ref_g[TN * TC];
    double ref = ref_bsm(TN, TC, lt_model_out(m, lg), y, cnt, ref_g);
    assert_true(fabs(loss - ref) < 2e-6);
    for (int k = 0; k < TN * TC; k++) assert_true(fabs(g.dlogits[k] - ref_g[k]) < 1e-7);
    lt_model_zero_grad(m);
    assert_int_equal(lt_model_backward(m, TN, &lg, 1), LT_OK);
    assert_int_equal(lt_optim_step(&opt, m, 0.1f), LT_OK);
    assert_memory_equal(m->buf, buf0, m->n_b * sizeof *buf0);
    int head_moved = 0;
    for (int i = 0; i < m->n_params; i++) {
        const lt_param *p = &m->params[i];
        if (!strcmp(m->nodes[p->node].group, "backbone"))
            assert_memory_equal(m->w + p->off, w0 + p->off, p->count * sizeof(float));
        else
            for (size_t k = 0; k < p->count; k++) {
                /* a step into NaN is no move (NaN != x would count it) */
                if (!isfinite(m->w[p->off + k])) fail_msg("%s[%zu] is %g after the step", p->name, k, m->w[p->off + k]);
                head_moved += m->w[p->off + k] != head_after[p->off + k];
            }
    }
    assert_true(head_moved > 0);
    /* in stage 0 the loss would be plain CE */
    t.stage = 0;
    double ce, l0;
    float gce[TN * TC];
    assert_int_equal(I.M->loss(I.st, &t, &l0, &g), LT_OK);
    assert_int_equal(lt_softmax_ce(TN, TC, t.logits, y, NULL, NULL, &ce, gce), LT_OK);
    assert_true(l0 == ce);

    lt_optim_free(&opt);
    free(buf0);
    free(head_after);
    free(w0);
    lt_model_free(m);
    inst_close(&I);

    /* stage2_bn: "train" re-estimates BN statistics (the official code);
     * "protocol" follows the prefilled bn_eval; a typo is refused */
    struct { const char *ov; int proto_bn, want; } cases[] = {
        {"{\"stage2_bn\": \"train\"}", 1, 0},
        {"{\"stage2_bn\": \"eval\"}", 0, 1},
        {"{\"stage2_bn\": \"protocol\"}", 0, 0},
        {"{\"stage2_bn\": \"protocol\"}", 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(inst_open(&I, lt_method_bsm_dec(), cases[i].ov, TC, cnt), LT_OK);
        m = tiny_model(I.M, I.st);
        lt_stage s = proto_stage2();
        s.bn_eval = cases[i].proto_bn;
        assert_int_equal(I.M->stage_begin(I.st, 1, &s, m), LT_OK);
        assert_int_equal(m->nodes[lt_model_find(m, "bn")].eval_mode, cases[i].want);
        assert_int_equal(s.bn_eval, cases[i].want);
        lt_model_free(m);
        inst_close(&I);
    }
    assert_int_equal(inst_open(&I, lt_method_bsm_dec(), "{\"stage2_bn\": \"frozen\"}", TC, cnt), LT_EINVAL);
    inst_close(&I);
}

/* ---- Balanced Sigmoid ---------------------------------------------------------- */

static const long s_counts[TC] = {600, 300, 90, 10};   /* N = 1000 */

/* Reference BCE on z + log(phi/(1-phi)), one-hot targets, sum over classes, mean over rows. */
static double ref_bsig(int n, int C, const float *z, const int32_t *y, const long *counts, double *grad) {
    double N = 0, total = 0;
    for (int j = 0; j < C; j++) N += counts[j];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < C; j++) {
            double phi = counts[j] / N;
            double a = (double)z[i * C + j] + log(phi / (1 - phi));
            double t = j == y[i];
            double p = 1.0 / (1.0 + exp(-a));
            total += -(t * log(p) + (1 - t) * log1p(-p));
            grad[i * C + j] = (p - t) / n;
        }
    return total / n;
}

static void test_bsig_offsets_and_gradient(void **state) {
    (void)state;
    inst I;
    assert_int_equal(inst_open(&I, lt_method_bsig(), NULL, TC, s_counts), LT_OK);
    lt_model *m = tiny_model(I.M, I.st);
    lt_stage s = proto_stage2();
    s.index = 0;
    s.proto_stage = 1;
    s.sampler.kind = LT_SAMPLER_INSTANCE;
    assert_int_equal(I.M->stage_begin(I.st, 0, &s, m), LT_OK);
    assert_int_equal(s.sampler.kind, LT_SAMPLER_INSTANCE);   /* untouched */

    /* Offsets: at z = 0 the gradient is (sigma(o_j) - y_ij)/N, so
     * sigma(o_j) = phi_j, i.e. o_j = log(phi_j/(1-phi_j)). */
    const int32_t y[TN] = {0, 1, 2, 3, 0, 0, 1, 3};
    float z0[TN * TC] = {0}, g[TN * TC];
    loss_ctx c = {&I, z0, y, s_counts, TN, TC, 0, g};
    double loss = hook_loss(&c);
    for (int i = 0; i < TN; i++)
        for (int j = 0; j < TC; j++) {
            double phi = s_counts[j] / 1000.0;
            double sig = (double)g[i * TC + j] * TN + (j == y[i]);
            assert_true(fabs(sig - phi) < 1e-6);
            if (j != y[i]) {
                double o = log(sig / (1.0 - sig));
                assert_true(fabs(o - log(phi / (1.0 - phi))) < 1e-4);
            }
        }
    double ref_g[TN * TC];
    assert_true(fabs(loss - ref_bsig(TN, TC, z0, y, s_counts, ref_g)) < 2e-6);

    /* value, gradient and finite differences at random logits */
    float z[TN * TC], gs[TN * TC];
    gc_fill(z, TN * TC, 4, -5.0f, 5.0f);
    c.z = z;
    loss = hook_loss(&c);
    double ref = ref_bsig(TN, TC, z, y, s_counts, ref_g);
    assert_true(fabs(loss - ref) < 2e-6 * fmax(1.0, ref));
    for (int k = 0; k < TN * TC; k++) assert_true(fabs(g[k] - ref_g[k]) < 1e-7);
    loss_ctx cf = {&I, z, y, s_counts, TN, TC, 0, gs};
    gc_opts o = {1e-2, 1e-2, 1e-5, 0};
    assert_int_equal(gc_check("bsig loss hook", hook_loss, &cf, z, g, TN * TC, &o), 0);

    /* a batch larger than the stage's planned batch is refused */
    lt_taps big = make_taps(TN + 1, TC, z, y, s_counts, 0);
    lt_grads gg = {.dlogits = g};
    assert_int_equal(I.M->loss(I.st, &big, &loss, &gg), LT_ESTATE);
    lt_model_free(m);
    inst_close(&I);
}

static void test_bsig_bias_init(void **state) {
    (void)state;
    struct { const char *ov; double pi; } cases[] = {{NULL, 0.001}, {"{\"prior_prob\": 0.01}", 0.01}};
    for (int k = 0; k < 2; k++) {
        inst I;
        assert_int_equal(inst_open(&I, lt_method_bsig(), cases[k].ov, TC, s_counts), LT_OK);
        lt_model *m = tiny_model(I.M, I.st);
        float *w0 = malloc(m->n_w * sizeof *w0);
        assert_non_null(w0);
        memcpy(w0, m->w, m->n_w * sizeof *w0);
        lt_stage s = proto_stage2();
        s.index = 0;
        assert_int_equal(I.M->stage_begin(I.st, 0, &s, m), LT_OK);
        const lt_param *b = lt_model_param(m, "logits.bias");
        assert_non_null(b);
        assert_int_equal(b->count, TC);
        float want = (float)-log((1.0 - cases[k].pi) / cases[k].pi);
        for (size_t j = 0; j < b->count; j++) assert_true(m->w[b->off + j] == want);
        if (k == 0) assert_true(fabs(want + 6.906755) < 1e-5);
        /* nothing else changed */
        for (size_t i = 0; i < m->n_w; i++)
            if (i < b->off || i >= b->off + b->count) assert_true(m->w[i] == w0[i]);
        free(w0);
        lt_model_free(m);
        inst_close(&I);
    }
    inst I;
    assert_int_equal(inst_open(&I, lt_method_bsig(), "{\"prior_prob\": 1.5}", TC, s_counts), LT_EINVAL);
    inst_close(&I);
}

static void test_bsig_predict(void **state) {
    (void)state;
    inst I;
    assert_int_equal(inst_open(&I, lt_method_bsig(), NULL, TC, s_counts), LT_OK);
    float z[3 * TC] = {2.0f, -1.0f, 0.5f, -3.0f,          /* ordinary */
                       -800.0f, -801.0f, -799.5f, -900.0f, /* every sigma underflows in float */
                       30.0f, 29.0f, -30.0f, 0.0f};        /* saturated */
    float q[3 * TC];
    int kind = -1;
    lt_taps t = make_taps(3, TC, z, NULL, s_counts, -1);
    assert_int_equal(I.M->predict(I.st, &t, q, &kind), LT_OK);
    assert_int_equal(kind, LT_SCORES_SIGMOID);
    /* the scores are the plain logits (no adjustment at test); the runner
     * normalises them with lt_sigmoid_norm_rows for top-1 / ECE */
    for (int k = 0; k < 3 * TC; k++) assert_true(q[k] == z[k]);
    lt_sigmoid_norm_rows(3, TC, q, q);
    for (int i = 0; i < 3; i++) {
        double s = 0;
        int am_q = 0, am_z = 0;
        for (int j = 0; j < TC; j++) {
            assert_true(q[i * TC + j] >= 0.0f && isfinite(q[i * TC + j]));
            s += q[i * TC + j];
            if (q[i * TC + j] > q[i * TC + am_q]) am_q = j;
            if (z[i * TC + j] > z[i * TC + am_z]) am_z = j;
        }
        assert_true(fabs(s - 1.0) < 1e-6);
        assert_int_equal(am_q, am_z);   /* top-1 of the sigmoid model */
    }
    /* row 0: exactly the normalised sigmoid */
    double ss = 0;
    for (int j = 0; j < TC; j++) ss += 1.0 / (1.0 + exp(-(double)z[j]));
    for (int j = 0; j < TC; j++) assert_true(fabs(q[j] - (1.0 / (1.0 + exp(-(double)z[j]))) / ss) < 1e-6);
    /* row 1: sigma(z) ~ e^z, so the normalised scores are a softmax */
    double m = -799.5, se = 0;
    for (int j = 0; j < TC; j++) se += exp((double)z[TC + j] - m);
    for (int j = 0; j < TC; j++) assert_true(fabs(q[TC + j] - exp((double)z[TC + j] - m) / se) < 1e-6);
    inst_close(&I);
}

static void test_bsig_edge_counts(void **state) {
    (void)state;
    /* a class without training images: offset -> -inf, i.e. no loss, no
     * gradient, probability 0 at test */
    const long cnt[TC] = {700, 0, 250, 50};
    inst I;
    assert_int_equal(inst_open(&I, lt_method_bsig(), NULL, TC, cnt), LT_OK);
    assert_int_equal(I.sink.calls, 1);
    assert_string_equal(I.sink.key, "bsig_excluded_classes");
    lt_model *m = tiny_model(I.M, I.st);
    lt_stage s = proto_stage2();
    s.index = 0;
    assert_int_equal(I.M->stage_begin(I.st, 0, &s, m), LT_OK);
    const int32_t y[TN] = {0, 2, 3, 0, 0, 2, 0, 3};
    float z[TN * TC], g[TN * TC];
    gc_fill(z, TN * TC, 5, -3.0f, 3.0f);
    loss_ctx c = {&I, z, y, cnt, TN, TC, 0, g};
    double loss = hook_loss(&c);
    /* reference over the three non-empty classes */
    double N = 1000, ref = 0;
    for (int i = 0; i < TN; i++)
        for (int j = 0; j < TC; j++) {
            if (j == 1) {
                assert_true(g[i * TC + j] == 0.0f);
                continue;
            }
            double phi = cnt[j] / N, a = z[i * TC + j] + log(phi / (1 - phi)), t = j == y[i];
            ref += (a > 0 ? a : 0) + log1p(exp(-fabs(a))) - t * a;
            assert_true(fabs(g[i * TC + j] - ((1.0 / (1.0 + exp(-a))) - t) / TN) < 1e-7);
        }
    assert_true(fabs(loss - ref / TN) < 2e-6);
    float q[TN * TC];
    int kind;
    lt_taps t = make_taps(TN, TC, z, NULL, cnt, -1);
    assert_int_equal(I.M->predict(I.st, &t, q, &kind), LT_OK);
    assert_int_equal(kind, LT_SCORES_SIGMOID);
    lt_sigmoid_norm_rows(TN, TC, q, q);
    for (int i = 0; i < TN; i++) assert_true(q[i * TC + 1] == 0.0f);
    /* a positive of the empty class is refused */
    const int32_t ybad[TN] = {0, 1, 3, 0, 0, 2, 0, 3};
    lt_taps tb = make_taps(TN, TC, z, ybad, cnt, 0);
    lt_grads gg = {.dlogits = g};
    assert_int_equal(I.M->loss(I.st, &tb, &loss, &gg), LT_EINVAL);
    lt_model_free(m);
    inst_close(&I);

    /* one class holding every image: phi = 1, +inf offset: refused */
    const long one[TC] = {0, 0, 80, 0};
    assert_int_equal(inst_open(&I, lt_method_bsig(), NULL, TC, one), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "phi = 1"));
    inst_close(&I);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bsm_gradient),
        cmocka_unit_test(test_bsm_uniform_is_ce),
        cmocka_unit_test(test_bsm_zero_count),
        cmocka_unit_test(test_bsm_dec_stage),
        cmocka_unit_test(test_bsig_offsets_and_gradient),
        cmocka_unit_test(test_bsig_bias_init),
        cmocka_unit_test(test_bsig_predict),
        cmocka_unit_test(test_bsig_edge_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
