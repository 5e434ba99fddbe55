/* test_method_sampling.c — the joint-training sampling baselines cbs, srs and
 * pbs (Kang et al., ICLR 2020): each plugin's stage_begin and per-epoch
 * sampler hook give the right sampler kind, and one epoch drawn with
 * lt_sampler_epoch from the configuration the hook returned has the class
 * distribution of the paper's formula, written out here independently of
 * the engine:
 *   cbs  p_j = 1/C
 *   srs  p_j = sqrt(n_j) / sum_i sqrt(n_i)
 *   pbs  p_j(e) = (1 - l) n_j/N + l/C,  l = e/(E-1)  (the official code's lambda)
 * Each class frequency must lie within 5 binomial standard deviations,
 * 5 sqrt(p(1-p)/N), of its target (a false alarm has probability < 1e-6 per
 * class, and the draws are seeded, so the test is deterministic). */
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

#include "lt.h"
#include "lt_method.h"
#include "lt_run_internal.h"

const lt_method *lt_method_cbs(void);
const lt_method *lt_method_srs(void);
const lt_method *lt_method_pbs(void);

#define C 10

/* The fmnist_lt_r100 profile: n_j = floor(6000 * 0.01^(j/9)), 14,886 images,
 * labels interleaved in a fixed pseudo-random order. */
typedef struct {
    long counts[C];
    long n;
    int32_t *labels;
} label_set;

static label_set make_set(void) {
    label_set s;
    s.n = 0;
    for (int j = 0; j < C; j++) {
        s.counts[j] = (long)(6000.0 * pow(0.01, j / (C - 1.0)));
        s.n += s.counts[j];
    }
    assert_int_equal(s.n, 14886);
    s.labels = malloc((size_t)s.n * sizeof *s.labels);
    assert_non_null(s.labels);
    long k = 0;
    for (int j = 0; j < C; j++)
        for (long i = 0; i < s.counts[j]; i++) s.labels[k++] = j;
    lt_rng r;
    lt_rng_init(&r, 5, 5);
    lt_rng_shuffle_i32(&r, s.labels, s.n);
    return s;
}

/* A method instance driven the way the runner drives it: defaults merged
 * with overrides, state allocated zeroed, init with a run description. */
typedef struct {
    const lt_method *M;
    void *st;
    cJSON *hp_obj;
    lt_hparams hp;
    lt_run_info run;
} inst;

static void inst_open(inst *I, const lt_method *M, const char *overrides, const label_set *s) {
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
    I->run.seed = 3;
    I->run.threads = 1;
    I->run.n_classes = C;
    I->run.n_train = s->n;
    I->run.class_counts = s->counts;
    if (M->init) assert_int_equal(M->init(I->st, &I->run, &I->hp), LT_OK);
}

static void inst_close(inst *I) {
    if (I->M->fini) I->M->fini(I->st);
    free(I->st);
    cJSON_Delete(I->hp_obj);
}

/* The stage as the runner prefills it from a protocol's stage 1 block. */
static lt_stage proto_stage1(int epochs) {
    lt_stage cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.index = 0;
    cfg.proto_stage = 1;
    cfg.epochs = epochs;
    cfg.batch = 128;
    cfg.drop_last = 1;
    cfg.sampler.kind = LT_SAMPLER_INSTANCE;
    cfg.bn_eval = 0;
    cfg.augment = 1;
    return cfg;
}

static void assert_binomial(long hits, long n, double p, const char *what, int epoch, int j) {
    double ph = (double)hits / (double)n;
    double tol = 5.0 * sqrt(p * (1.0 - p) / (double)n);
    if (!(fabs(ph - p) <= tol)) {   /* a NaN frequency or target fails */
        print_error("%s epoch %d class %d: p_hat %.5f vs target %.5f (tolerance %.5f)\n", what, epoch, j,
                    ph, p, tol);
        fail();
    }
}

/* Draws one epoch of N samples with the sampler configuration cfg and
 * checks its class histogram against target[]. */
static void check_epoch(const label_set *s, const lt_sampler_cfg *cfg, int epoch, const double *target,
                        const char *what) {
    int32_t *out = malloc((size_t)s->n * sizeof *out);
    assert_non_null(out);
    assert_int_equal(lt_sampler_epoch(cfg, epoch, 11, LT_STREAM_ORDER, s->labels, s->n, C, out, s->n), LT_OK);
    long hits[C] = {0};
    for (long i = 0; i < s->n; i++) {
        assert_true(out[i] >= 0 && out[i] < s->n);
        hits[s->labels[out[i]]]++;
    }
    double sum = 0;
    for (int j = 0; j < C; j++) {
        assert_binomial(hits[j], s->n, target[j], what, epoch, j);
        sum += target[j];
    }
    assert_true(fabs(sum - 1.0) < 1e-12);
    free(out);
}

/* Runs stage_begin and the sampler hook for one epoch; returns the hook's cfg. */
static lt_sampler_cfg hook_cfg(inst *I, lt_stage *stage, int epoch) {
    lt_sampler_cfg cfg = stage->sampler;
    assert_non_null(I->M->sampler);
    assert_int_equal(I->M->sampler(I->st, 0, epoch, &cfg), LT_OK);
    return cfg;
}

static void test_cbs(void **state) {
    (void)state;
    label_set s = make_set();
    inst I;
    inst_open(&I, lt_method_cbs(), NULL, &s);
    assert_null(I.M->stage1_from);
    assert_true(I.M->n_stages == NULL || I.M->n_stages(I.st) == 1);
    assert_null(I.M->loss);      /* plain softmax CE: the engine default */
    assert_null(I.M->predict);

    lt_stage st = proto_stage1(2);
    st.samples_per_epoch = 123;
    assert_int_equal(I.M->stage_begin(I.st, 0, &st, NULL), LT_OK);
    assert_int_equal(st.sampler.kind, LT_SAMPLER_CLASS_BALANCED);
    assert_int_equal(st.samples_per_epoch, 0);   /* N per epoch */

    double target[C];
    for (int j = 0; j < C; j++) target[j] = 1.0 / C;
    for (int e = 0; e < 2; e++) {
        /* even a protocol default left in the prefilled cfg is replaced */
        lt_stage pre = proto_stage1(2);
        lt_sampler_cfg cfg = hook_cfg(&I, &pre, e);
        assert_int_equal(cfg.kind, LT_SAMPLER_CLASS_BALANCED);
        assert_null(cfg.class_weights);
        check_epoch(&s, &cfg, e, target, "cbs");
    }
    /* only one stage exists */
    lt_stage st2 = proto_stage1(2);
    assert_int_not_equal(I.M->stage_begin(I.st, 1, &st2, NULL), LT_OK);
    inst_close(&I);

    /* the official ClassAwareSampler variant: same uniform class marginal */
    inst_open(&I, lt_method_cbs(), "{\"sampler\": \"class_aware\"}", &s);
    lt_stage pre = proto_stage1(2);
    assert_int_equal(I.M->stage_begin(I.st, 0, &pre, NULL), LT_OK);
    lt_sampler_cfg cfg = hook_cfg(&I, &pre, 0);
    assert_int_equal(cfg.kind, LT_SAMPLER_CLASS_AWARE);
    assert_int_equal(cfg.k_per_class, 4);
    check_epoch(&s, &cfg, 0, target, "cbs class_aware");
    inst_close(&I);

    /* an unknown choice is refused at init */
    void *stp = calloc(1, lt_method_cbs()->state_size);
    cJSON *o = NULL;
    assert_int_equal(lt_method_hparams(lt_method_cbs(), "{\"sampler\": \"sqrt\"}", &o), LT_OK);
    lt_hparams hp = {o};
    lt_run_info run = {0};
    run.n_classes = C;
    run.class_counts = s.counts;
    assert_int_equal(lt_method_cbs()->init(stp, &run, &hp), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "sampler"));
    cJSON_Delete(o);
    free(stp);
    free(s.labels);
}

static void test_srs(void **state) {
    (void)state;
    label_set s = make_set();
    inst I;
    inst_open(&I, lt_method_srs(), NULL, &s);
    assert_null(I.M->loss);
    lt_stage st = proto_stage1(2);
    assert_int_equal(I.M->stage_begin(I.st, 0, &st, NULL), LT_OK);
    assert_int_equal(st.sampler.kind, LT_SAMPLER_SQRT);

    double target[C], z = 0;
    for (int j = 0; j < C; j++) z += sqrt((double)s.counts[j]);
    for (int j = 0; j < C; j++) target[j] = sqrt((double)s.counts[j]) / z;
    /* sanity of the target itself: between instance and balanced for head and tail */
    assert_true(target[0] < (double)s.counts[0] / s.n && target[0] > 1.0 / C);
    assert_true(target[C - 1] > (double)s.counts[C - 1] / s.n && target[C - 1] < 1.0 / C);
    for (int e = 0; e < 2; e++) {
        lt_stage pre = proto_stage1(2);
        lt_sampler_cfg cfg = hook_cfg(&I, &pre, e);
        assert_int_equal(cfg.kind, LT_SAMPLER_SQRT);
        check_epoch(&s, &cfg, e, target, "srs");
    }
    inst_close(&I);
    free(s.labels);
}

static void pbs_target(const label_set *s, int e, int E, double *target) {
    double lam = E > 1 ? (double)e / (double)(E - 1) : 0.0;
    for (int j = 0; j < C; j++) target[j] = (1.0 - lam) * (double)s->counts[j] / (double)s->n + lam / C;
}

static void test_pbs(void **state) {
    (void)state;
    label_set s = make_set();
    inst I;
    inst_open(&I, lt_method_pbs(), NULL, &s);
    assert_null(I.M->loss);

    /* sampler before stage_begin: E unknown */
    lt_stage early = proto_stage1(5);
    lt_sampler_cfg ec = early.sampler;
    assert_int_equal(I.M->sampler(I.st, 0, 0, &ec), LT_ESTATE);

    const int Es[] = {5, 2};   /* a short schedule and the ci scale's 2 epochs */
    for (size_t k = 0; k < sizeof Es / sizeof Es[0]; k++) {
        int E = Es[k];
        lt_stage st = proto_stage1(E);
        assert_int_equal(I.M->stage_begin(I.st, 0, &st, NULL), LT_OK);
        assert_int_equal(st.sampler.kind, LT_SAMPLER_PROGRESSIVE);
        assert_int_equal(st.sampler.total_epochs, E);
        for (int e = 0; e < E; e++) {
            lt_stage pre = proto_stage1(E);
            lt_sampler_cfg cfg = hook_cfg(&I, &pre, e);
            assert_int_equal(cfg.kind, LT_SAMPLER_PROGRESSIVE);
            assert_int_equal(cfg.total_epochs, E);
            double target[C];
            pbs_target(&s, e, E, target);
            char what[32];
            snprintf(what, sizeof what, "pbs E=%d", E);
            check_epoch(&s, &cfg, e, target, what);
            /* the engine's own probabilities agree with the formula */
            double p[C];
            assert_int_equal(lt_sampler_class_probs(&cfg, e, C, s.counts, p), LT_OK);
            for (int j = 0; j < C; j++) assert_true(fabs(p[j] - target[j]) < 1e-12);
        }
    }
    /* the end points of the code's convention: epoch 0 instance-balanced,
     * the last epoch exactly balanced */
    double t0[C], tl[C];
    pbs_target(&s, 0, 5, t0);
    pbs_target(&s, 4, 5, tl);
    for (int j = 0; j < C; j++) {
        assert_true(fabs(t0[j] - (double)s.counts[j] / s.n) < 1e-15);
        assert_true(fabs(tl[j] - 1.0 / C) < 1e-15);
    }
    inst_close(&I);
    free(s.labels);
}

/* The three plugins declare themselves as the registry expects and their
 * defaults parse; the per-epoch hooks reject a second stage. */
static void test_metadata(void **state) {
    (void)state;
    const lt_method *ms[] = {lt_method_cbs(), lt_method_srs(), lt_method_pbs()};
    const char *names[] = {"cbs", "srs", "pbs"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(ms[i]->name, names[i]);
        assert_int_equal(ms[i]->abi, LT_METHOD_ABI);
        cJSON *d = cJSON_Parse(ms[i]->defaults);
        assert_true(cJSON_IsObject(d));
        cJSON_Delete(d);
        lt_sampler_cfg cfg = {0};
        label_set s = make_set();
        inst I;
        inst_open(&I, ms[i], NULL, &s);
        lt_stage st = proto_stage1(3);
        assert_int_equal(ms[i]->stage_begin(I.st, 0, &st, NULL), LT_OK);
        assert_int_not_equal(ms[i]->sampler(I.st, 1, 0, &cfg), LT_OK);
        inst_close(&I);
        free(s.labels);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cbs),
        cmocka_unit_test(test_srs),
        cmocka_unit_test(test_pbs),
        cmocka_unit_test(test_metadata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
