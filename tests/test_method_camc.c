/* test_method_camc.c — the CAM-weighted pooling layer (engine, lt_campool.c)
 * and the camc method (white-box: its source is included):
 *   - the layer's forward against a naive double reference, with the
 *     ground-truth class in a training forward and the top-1 class of the
 *     uniform-attention prediction in an inference forward;
 *   - its gradients by finite differences with respect to F and to the
 *     classifier weight as it enters A; with stop_grad the weight gets
 *     nothing and F only the GAP + weighted-sum part;
 *   - the labels reach it through the model (lt_model_set_labels) for
 *     one training forward only, never a sub-graph's; without them a
 *     use_labels layer's training forward is an error, a label outside
 *     the classes too;
 *   - camc's build wires it to the global pool's input and the cosine
 *     classifier, as the built-in kind with use_labels (cam_class "pred":
 *     without), and camc has no hook that touches the batch (so it trains
 *     through lt_step on a device); defaults.json. */
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
#include "lt_layers_impl.h"
#include "lt_run_internal.h"

#define lt_method_camc camc_entry_under_test
#include "../methods/camc/method.c"

enum { N = 3, K = 4, H = 3, W = 2, HW = H * W, C = 5 };
static const gc_opts TOL = {1e-2, 2e-2, 1e-3, 0};

typedef struct {
    lt_model *m;
    int pre, cp, logits;
    int32_t cls[N];
} fx;

/* input -> identity 1x1 conv "pre" (so F's gradient is pre's dy) -> cam_pool -> cosine "logits";
 * the labels of training forwards: f->cls */
static void fx_make_labels(fx *f, float gamma, int stop_grad, int use_labels) {
    assert_int_equal(lt_model_create(&f->m, (lt_shape){1, K, H, W}), LT_OK);
    f->pre = lt_add_conv(f->m, "pre", "backbone", 0, K, 1, 1, 0, 1, 0);
    f->cp = lt_add_cam_pool(f->m, "cp", "head", f->pre, "logits.weight", 16.0f, gamma, stop_grad, use_labels);
    f->logits = lt_add_cosine(f->m, "logits", "head", f->cp, C, 16.0f);
    assert_true(f->pre > 0 && f->cp > 0 && f->logits > 0);
    assert_int_equal(lt_model_finalize(f->m, 3), LT_OK);
    assert_int_equal(lt_model_set_batch(f->m, N), LT_OK);
    float *pw = lt_model_param_data(f->m, "pre.weight");
    memset(pw, 0, sizeof(float) * K * K);
    for (int k = 0; k < K; k++) pw[k * K + k] = 1.0f;
    gc_fill(lt_model_param_data(f->m, "logits.weight"), C * K, 7, -1, 1);
}
static void fx_make(fx *f, float gamma, int stop_grad) { fx_make_labels(f, gamma, stop_grad, 1); }

/* a training forward with the fixture's labels */
static int train_fwd(fx *f, const float *x) {
    int rc = lt_model_set_labels(f->m, f->cls, N);
    return rc ? rc : lt_model_forward(f->m, x, N, 1);
}

/* naive reference of one row: class c (or top-1 when c < 0) */
static void ref_row(const float *F, const float *Wc, float scale, float gamma, int c, double *f, int *used) {
    double gap[K];
    for (int k = 0; k < K; k++) {
        gap[k] = 0;
        for (int p = 0; p < HW; p++) gap[k] += F[k * HW + p] / (double)HW;
    }
    if (c < 0) {
        double best = -1e300;
        for (int j = 0; j < C; j++) {
            double d = 0, nw = 0, ng = 0;
            for (int k = 0; k < K; k++) {
                d += Wc[j * K + k] * gap[k];
                nw += (double)Wc[j * K + k] * Wc[j * K + k];
                ng += gap[k] * gap[k];
            }
            d /= sqrt(nw) * sqrt(ng);
            if (d > best) { best = d; c = j; }
        }
    }
    *used = c;
    double M[HW], mx = -1e300, z = 0, nw = 0;
    for (int k = 0; k < K; k++) nw += (double)Wc[c * K + k] * Wc[c * K + k];
    for (int p = 0; p < HW; p++) {
        double d = 0, nu = 0;
        for (int k = 0; k < K; k++) {
            d += Wc[c * K + k] * F[k * HW + p];
            nu += (double)F[k * HW + p] * F[k * HW + p];
        }
        M[p] = scale * d / (sqrt(nw) * sqrt(nu));
        if (M[p] > mx) mx = M[p];
    }
    for (int p = 0; p < HW; p++) z += exp(M[p] - mx);
    for (int k = 0; k < K; k++) {
        f[k] = gap[k];
        for (int p = 0; p < HW; p++) f[k] += gamma * exp(M[p] - mx) / z * F[k * HW + p];
    }
}

static void test_forward_reference(void **unused) {
    (void)unused;
    fx f;
    fx_make(&f, 0.7f, 0);
    float x[N * K * HW];
    gc_fill(x, sizeof x / sizeof x[0], 11, -1, 2);
    const float *Wc = lt_model_param_data(f.m, "logits.weight");
    f.cls[0] = 2; f.cls[1] = 0; f.cls[2] = 4;
    /* training: the given classes */
    assert_int_equal(train_fwd(&f, x), LT_OK);
    for (int i = 0; i < N; i++) {
        double r[K];
        int used;
        ref_row(x + i * K * HW, Wc, 16.0f, 0.7f, f.cls[i], r, &used);
        for (int k = 0; k < K; k++) assert_float_equal(lt_model_out(f.m, f.cp)[i * K + k], r[k], 1e-5);
    }
    /* inference: the top-1 of the uniform-attention prediction, whatever cls says */
    assert_int_equal(lt_model_forward(f.m, x, N, 0), LT_OK);
    int differs = 0;
    for (int i = 0; i < N; i++) {
        double r[K];
        int used;
        ref_row(x + i * K * HW, Wc, 16.0f, 0.7f, -1, r, &used);
        differs += used != f.cls[i];
        for (int k = 0; k < K; k++) assert_float_equal(lt_model_out(f.m, f.cp)[i * K + k], r[k], 1e-5);
    }
    assert_true(differs > 0);   /* the test data exercises a class other than the label */
    /* the labels were for that one forward: another training forward
     * without them is an error naming the layer, as is one given fewer rows */
    lt_err_clear();
    assert_int_equal(lt_model_forward(f.m, x, N, 1), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "cam_pool cp: a training forward without the rows' labels"));
    assert_int_equal(lt_model_set_labels(f.m, f.cls, N - 1), LT_OK);
    assert_int_equal(lt_model_forward(f.m, x, N, 1), LT_EINVAL);
    assert_int_equal(lt_model_set_labels(f.m, NULL, N), LT_EINVAL);
    assert_int_equal(lt_model_set_labels(f.m, f.cls, N + 1), LT_EINVAL);   /* more rows than the batch */
    /* a sub-graph's rows are not the batch's: labels given to the model's
     * forward do not reach a training forward of a sub-graph through cam_pool */
    assert_int_equal(train_fwd(&f, x), LT_OK);
    lt_subgraph *sg = NULL;
    assert_int_equal(lt_subgraph_create(&sg, f.m, f.pre, f.logits, N), LT_OK);
    const float *fx_pre = lt_model_out(f.m, f.pre);
    float pre_rows[N * K * HW];
    memcpy(pre_rows, fx_pre, sizeof pre_rows);
    lt_err_clear();
    assert_int_equal(lt_subgraph_forward(sg, pre_rows, N, 1), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "a training forward without the rows' labels"));
    assert_int_equal(lt_subgraph_forward(sg, pre_rows, N, 0), LT_OK);   /* inference: the top-1, no labels needed */
    lt_subgraph_free(sg);
    /* an inference forward needs none and takes none: labels set before it are gone after it */
    assert_int_equal(lt_model_set_labels(f.m, f.cls, N), LT_OK);
    assert_int_equal(lt_model_forward(f.m, x, N, 0), LT_OK);
    assert_int_equal(lt_model_forward(f.m, x, N, 1), LT_EINVAL);
    lt_model_free(f.m);
    /* without use_labels, a training forward takes the top-1 too, labels or not */
    fx_make_labels(&f, 0.7f, 0, 0);
    Wc = lt_model_param_data(f.m, "logits.weight");   /* the same values (the fixture's fill) */
    assert_int_equal(train_fwd(&f, x), LT_OK);
    for (int i = 0; i < N; i++) {
        double r[K];
        int used;
        ref_row(x + i * K * HW, Wc, 16.0f, 0.7f, -1, r, &used);
        for (int k = 0; k < K; k++) assert_float_equal(lt_model_out(f.m, f.cp)[i * K + k], r[k], 1e-5);
    }
    assert_int_equal(lt_model_forward(f.m, x, N, 1), LT_OK);
    /* gamma = 0 is plain GAP */
    lt_model_free(f.m);
    fx_make(&f, 0.0f, 0);
    assert_int_equal(lt_model_forward(f.m, x, N, 0), LT_OK);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < K; k++) {
            double g = 0;
            for (int p = 0; p < HW; p++) g += x[i * K * HW + k * HW + p] / (double)HW;
            assert_float_equal(lt_model_out(f.m, f.cp)[i * K + k], g, 1e-6);
        }
    /* a label outside the classes is an error naming the layer */
    f.cls[0] = 0;
    f.cls[1] = C;
    f.cls[2] = 0;
    lt_err_clear();
    assert_int_equal(train_fwd(&f, x), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "cam_pool cp: label 5 of row 1 is not a class"));
    f.cls[1] = -1;
    assert_int_equal(train_fwd(&f, x), LT_EINVAL);
    lt_model_free(f.m);
    /* labels before a batch is planned: a state error */
    lt_model *m0;
    assert_int_equal(lt_model_create(&m0, (lt_shape){1, K, H, W}), LT_OK);
    assert_true(lt_add_conv(m0, "pre", "backbone", 0, K, 1, 1, 0, 1, 0) > 0);
    assert_int_equal(lt_model_finalize(m0, 3), LT_OK);
    assert_int_equal(lt_model_set_labels(m0, f.cls, N), LT_ESTATE);
    lt_model_free(m0);
}

typedef struct { fx *f; const float *x, *r; } gctx;
static double cp_loss(void *p) {
    gctx *c = p;
    assert_int_equal(train_fwd(c->f, c->x), LT_OK);
    return gc_dot(lt_model_out(c->f->m, c->f->cp), c->r, (size_t)N * K);
}

/* analytic gradients of sum(cp_out * r): dF = pre's dy, dW from the weight */
static void backward(fx *f, const float *r, float *dF, float *dW) {
    lt_model_zero_grad(f->m);
    memcpy(lt_model_dout(f->m, f->cp), r, sizeof(float) * N * K);
    memset(lt_model_dout(f->m, f->logits), 0, sizeof(float) * N * C);
    const int taps[2] = {f->cp, f->logits};
    assert_int_equal(lt_model_backward(f->m, N, taps, 2), LT_OK);
    memcpy(dF, lt_model_dout(f->m, f->pre), sizeof(float) * N * K * HW);
    lt_param_info pi;
    assert_int_equal(lt_model_param_find(f->m, "logits.weight", &pi), LT_OK);
    memcpy(dW, pi.g, sizeof(float) * C * K);
}

static void test_gradients(void **unused) {
    (void)unused;
    fx f;
    fx_make(&f, 0.8f, 0);
    float x[N * K * HW], r[N * K], dF[N * K * HW], dW[C * K];
    gc_fill(x, sizeof x / sizeof x[0], 12, -1, 2);
    gc_fill(r, sizeof r / sizeof r[0], 13, -1, 1);
    f.cls[0] = 1; f.cls[1] = 3; f.cls[2] = 1;
    cp_loss(&(gctx){&f, x, r});
    backward(&f, r, dF, dW);
    gctx c = {&f, x, r};
    assert_int_equal(gc_check("cam_pool dF", cp_loss, &c, x, dF, sizeof x / sizeof x[0], &TOL), 0);
    float *Wp = lt_model_param_data(f.m, "logits.weight");
    assert_int_equal(gc_check("cam_pool dW (through A)", cp_loss, &c, Wp, dW, C * K, &TOL), 0);
    /* only the rows of the classes used get a gradient */
    for (int k = 0; k < K; k++) {
        assert_true(dW[0 * K + k] == 0.0f && dW[2 * K + k] == 0.0f && dW[4 * K + k] == 0.0f);
    }
    double s = 0;
    for (int k = 0; k < K; k++) s += fabs(dW[1 * K + k]) + fabs(dW[3 * K + k]);
    assert_true(s > 0);
    lt_model_free(f.m);

    /* stop_grad: A constant; dF = df/HW + gamma A df, nothing into W */
    fx_make(&f, 0.8f, 1);
    f.cls[0] = 1; f.cls[1] = 3; f.cls[2] = 1;
    cp_loss(&(gctx){&f, x, r});
    backward(&f, r, dF, dW);
    for (int j = 0; j < C * K; j++) assert_true(dW[j] == 0.0f);
    fx g;
    fx_make(&g, 0.8f, 0);
    memcpy(g.cls, f.cls, sizeof f.cls);
    for (int i = 0; i < N; i++) {
        /* A from the reference: the attention-weighted part divided out */
        const float *F = x + i * K * HW;
        const float *Wc = lt_model_param_data(f.m, "logits.weight");
        double M[HW], mx = -1e300, z = 0, nw = 0;
        const int cl = f.cls[i];
        for (int k = 0; k < K; k++) nw += (double)Wc[cl * K + k] * Wc[cl * K + k];
        for (int p = 0; p < HW; p++) {
            double d = 0, nu = 0;
            for (int k = 0; k < K; k++) { d += Wc[cl * K + k] * F[k * HW + p]; nu += (double)F[k * HW + p] * F[k * HW + p]; }
            M[p] = 16.0 * d / sqrt(nw * nu);
            if (M[p] > mx) mx = M[p];
        }
        for (int p = 0; p < HW; p++) z += exp(M[p] - mx);
        for (int k = 0; k < K; k++)
            for (int p = 0; p < HW; p++)
                assert_float_equal(dF[i * K * HW + k * HW + p],
                                   r[i * K + k] / HW + 0.8 * exp(M[p] - mx) / z * r[i * K + k], 1e-5);
    }
    lt_model_free(g.m);
    lt_model_free(f.m);
}

/* camc's build on a real backbone: cam_pool reads the global pool's input,
 * the cosine head reads cam_pool; the layer takes the batch's labels from
 * the model (no hook of camc's touches the batch) */
static void test_method_build_and_hook(void **unused) {
    (void)unused;
    camc_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    lt_run_info run;
    memset(&run, 0, sizeof run);
    run.n_classes = 10;
    const lt_method *M = camc_entry_under_test();
    assert_string_equal(M->fidelity, "reconstructed");
    st->C = 10; st->s = 16; st->gamma = 1; st->cam_scale = 1; st->stop_grad = 0;
    assert_null(M->batch_hook);
    assert_null(M->loss);
    assert_null(M->iter_end);
    assert_int_equal(M->flags & LT_METHOD_HOST_TAPS, 0);
    lt_model *m;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 1, 28, 28}), LT_OK);
    const int feat = lt_resnet_backbone(m, "resnet8_cifar");
    assert_true(feat > 0);
    assert_int_equal(M->build(st, m, feat), LT_OK);
    const int cp = lt_model_find(m, "cam_pool"), lg = lt_model_find(m, "logits");
    assert_true(cp > 0 && lg > cp);
    assert_int_equal(lt_node_input(lt_model_node(m, cp), 0), lt_node_input(lt_model_node(m, feat), 0));
    assert_int_equal(lt_node_input(lt_model_node(m, lg), 0), cp);
    const lt_node *cpn = lt_model_node(m, cp);
    assert_int_equal(cpn->kind, LT_LK_CAM_POOL);   /* the built-in: it has a CUDA implementation */
    assert_int_equal(((const lt_cam_pool_cfg *)lt_node_cfg_const(cpn))->use_labels, 1);
    lt_model_free(m);
    /* cam_class "pred": no label reaches the layer (the top-1 class, as at test) */
    st->train_pred = 1;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 1, 28, 28}), LT_OK);
    assert_int_equal(M->build(st, m, lt_resnet_backbone(m, "resnet8_cifar")), LT_OK);
    cpn = lt_model_node(m, lt_model_find(m, "cam_pool"));
    assert_int_equal(((const lt_cam_pool_cfg *)lt_node_cfg_const(cpn))->use_labels, 0);
    lt_model_free(m);
    /* class_norms: every class gets s, the norm the cosine classifier scores
     * with; a class count other than the run's is refused */
    assert_non_null(M->class_norms);
    double norms[11];
    for (int j = 0; j < 11; j++) norms[j] = -1;
    st->s = 8;
    assert_int_equal(M->class_norms(st, NULL, 10, norms), LT_OK);
    for (int j = 0; j < 10; j++) assert_float_equal(norms[j], 8.0, 0);
    assert_float_equal(norms[10], -1.0, 0);
    assert_int_not_equal(M->class_norms(st, NULL, 11, norms), LT_OK);
    free(st);
    /* defaults.json == the table's defaults */
    char *d;
    size_t n;
    assert_int_equal(lt_io_read_all("methods/camc/defaults.json", &d, &n), LT_OK);
    while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == ' ')) d[--n] = 0;
    assert_string_equal(d, M->defaults);
    free(d);
}

/* init: the defaults give the spec's choice (the label's CAM in training);
 * cam_class "pred" takes the top-1 class's; anything else is refused naming
 * the key */
static int init_with(const char *overrides, camc_state *st) {
    const lt_method *M = camc_entry_under_test();
    cJSON *obj = NULL;
    assert_int_equal(lt_method_hparams(M, overrides, &obj), LT_OK);
    struct lt_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.obj = obj;
    lt_run_info run;
    memset(&run, 0, sizeof run);
    run.n_classes = 10;
    memset(st, 0, sizeof *st);
    const int rc = M->init(st, &run, &hp);
    cJSON_Delete(obj);
    return rc;
}

static void test_init_cam_class(void **unused) {
    (void)unused;
    camc_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    assert_int_equal(init_with(NULL, st), LT_OK);
    assert_int_equal(st->train_pred, 0);
    assert_true(st->s == 16 && st->gamma == 1 && st->cam_scale == 1 && st->stop_grad == 0);
    assert_int_equal(init_with("{\"cam_class\": \"pred\"}", st), LT_OK);
    assert_int_equal(st->train_pred, 1);
    assert_int_equal(init_with("{\"cam_class\": \"top1\"}", st), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "cam_class"));
    free(st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_cam_class),
        cmocka_unit_test(test_forward_reference),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_method_build_and_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
