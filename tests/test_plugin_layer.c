/* test_plugin_layer.c — layers written outside the engine, through the
 * public node accessors only (what a method's mixture BN does):
 *   - a plugin layer whose type string is "bn" but that declares no
 *     capability is never fused or run in place (the engine decides by
 *     capability flags and fusion tables, not by type name), and computes
 *     exactly what the built-in BN computes;
 *   - the same layer declaring LT_LAYER_BWD_NO_Y and an eval_affine fusion
 *     is fused into the conv's epilogue, bit for bit equal to unfused;
 *   - its gradients by finite differences, its userdata pointer;
 *   - the backbone's norm-layer factory (lt_resnet_backbone_norm) puts it at
 *     every BN position, with the names the built-in BN gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "lt.h"
#include "lt_model_impl.h"   /* white-box: the fusion plan of each node */

/* ---- a BN as a plugin: the engine's kernels, reached through accessors ---------- */

typedef struct { float eps, momentum; } pbn_cfg;
typedef struct { long forwards; } pbn_ud;

static int pbn_plan(lt_model *m, lt_node *nd) {
    const lt_shape s = lt_node_in_shape(m, nd, 0);
    lt_node_set_shape(nd, s);
    const size_t C = (size_t)s.c;
    LT_TRY(lt_model_param_add(m, nd, "weight", C, 0, LT_INIT_ONE, 0));
    LT_TRY(lt_model_param_add(m, nd, "bias", C, 0, LT_INIT_ZERO, 0));
    LT_TRY(lt_model_buffer_add(m, nd, "running_mean", C, 0.0f));
    LT_TRY(lt_model_buffer_add(m, nd, "running_var", C, 1.0f));
    lt_node_set_saved(nd, 0, 2 * C);
    return LT_OK;
}

static int pbn_fwd(lt_model *m, lt_node *nd, int N) {
    const pbn_cfg *c = lt_node_cfg_const(nd);
    const lt_shape s = lt_node_shape(nd);
    const int C = s.c, HW = s.h * s.w;
    pbn_ud *ud = lt_node_userdata(nd);
    if (ud) ud->forwards++;
    float *saved = lt_node_saved(nd);
    if (lt_node_train_mode(m, nd))
        lt_bn_forward_train(N, C, HW, lt_node_x(m, nd, 0), lt_node_w(m, nd, 0), lt_node_w(m, nd, 1), lt_node_y(nd),
                            saved, saved + C, lt_node_buf(m, nd, 0), lt_node_buf(m, nd, 1), c->momentum, c->eps);
    else
        lt_bn_forward_eval(N, C, HW, lt_node_x(m, nd, 0), lt_node_w(m, nd, 0), lt_node_w(m, nd, 1),
                           lt_node_buf(m, nd, 0), lt_node_buf(m, nd, 1), c->eps, lt_node_y(nd));
    return LT_OK;
}

static int pbn_bwd(lt_model *m, lt_node *nd, int N) {
    const pbn_cfg *c = lt_node_cfg_const(nd);
    const lt_shape s = lt_node_shape(nd);
    const int C = s.c, HW = s.h * s.w;
    float *saved = lt_node_saved(nd);
    if (lt_node_train_mode(m, nd))
        lt_bn_backward_train_x(N, C, HW, lt_node_x(m, nd, 0), lt_node_w(m, nd, 0), saved, saved + C, lt_node_dy(nd),
                               lt_node_dx(m, nd, 0), lt_node_gw(m, nd, 0), lt_node_gw(m, nd, 1), lt_node_dx_set(nd, 0));
    else
        lt_bn_backward_eval_x(N, C, HW, lt_node_x(m, nd, 0), lt_node_w(m, nd, 0), lt_node_buf(m, nd, 0),
                              lt_node_buf(m, nd, 1), c->eps, lt_node_dy(nd), lt_node_dx(m, nd, 0),
                              lt_node_gw(m, nd, 0), lt_node_gw(m, nd, 1), lt_node_dx_set(nd, 0));
    return LT_OK;
}

static int pbn_affine(lt_model *m, const lt_node *nd, float *mu, float *a, float *b) {
    const pbn_cfg *c = lt_node_cfg_const(nd);
    lt_bn_eval_coeffs(lt_node_shape(nd).c, lt_node_w(m, nd, 0), lt_node_w(m, nd, 1), lt_node_buf(m, nd, 0),
                      lt_node_buf(m, nd, 1), c->eps, mu, a, b);
    return LT_OK;
}

/* Named "bn", declaring nothing: must run as a plain node. */
static const lt_layer_ops pbn_named_bn = {LT_LAYER_ABI, "bn", pbn_plan, pbn_fwd, pbn_bwd, NULL, 0, NULL, NULL, NULL, NULL};
/* Another name, declaring what it can: the engine may fuse it. */
static const lt_layer_fusion pbn_fusion = {.eval_affine = pbn_affine};
static const lt_layer_ops pbn_capable = {LT_LAYER_ABI, "plugin_norm", pbn_plan, pbn_fwd, pbn_bwd, NULL,
                                         LT_LAYER_SETS_DX | LT_LAYER_BWD_NO_Y, &pbn_fusion, NULL, NULL, NULL};

typedef struct {
    const lt_layer_ops *ops;
    pbn_ud *ud;
    int calls;
    char names[32][LT_NAME_MAX];
} factory;

static int make_norm(void *p, lt_model *m, const char *name, const char *group, int in) {
    factory *f = p;
    if (f->calls < 32) snprintf(f->names[f->calls], LT_NAME_MAX, "%s", name);
    f->calls++;
    pbn_cfg c = {1e-5f, 0.1f};
    return lt_model_add_ud(m, f->ops, name, group, in, -1, &c, sizeof c, f->ud);
}

static lt_model *resnet8(factory *f, int N) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 1, 12, 12}), LT_OK);
    int feat = f ? lt_resnet_backbone_norm(m, "resnet8_cifar", make_norm, f) : lt_resnet_backbone(m, "resnet8_cifar");
    assert_true(feat > 0);
    assert_true(lt_add_linear(m, "logits", "head", feat, 5, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 7), LT_OK);
    assert_int_equal(lt_model_set_batch(m, 4), LT_OK);
    (void)N;
    return m;
}

/* non-trivial running statistics, the same in both models (same names) */
static void set_stats(lt_model *m) {
    for (int i = 0; i < lt_model_n_buffers(m); i++) {
        lt_buffer_info b;
        assert_int_equal(lt_model_buffer_at(m, i, &b), LT_OK);
        gc_fill(b.data, b.count, 50 + (unsigned)i, 0.5f, 1.5f);
    }
}

static int count_fused(const lt_model *m) {
    int n = 0;
    for (int i = 1; i < m->n_nodes; i++) n += m->nodes[i].fuse != 0 || m->nodes[i].fuse_train != 0;
    return n;
}

/* Eval logits and one training step's gradient of a model. */
static void run(lt_model *m, const float *x, float *logits, float *grad) {
    const int N = 4, lg = lt_model_find(m, "logits");
    assert_int_equal(lt_model_forward(m, x, N, 0), LT_OK);
    memcpy(logits, lt_model_out(m, lg), sizeof(float) * N * 5);
    int32_t y[4] = {0, 3, 1, 4};
    double loss;
    assert_int_equal(lt_model_forward(m, x, N, 1), LT_OK);
    assert_int_equal(lt_softmax_ce(N, 5, lt_model_out(m, lg), y, NULL, NULL, &loss, lt_model_dout(m, lg)), LT_OK);
    lt_model_zero_grad(m);
    assert_int_equal(lt_model_backward(m, N, &lg, 1), LT_OK);
    memcpy(grad, m->g, m->n_w * sizeof(float));
}

static void test_plugin_named_bn_is_not_fused(void **unused) {
    (void)unused;
    pbn_ud ud = {0};
    factory f = {&pbn_named_bn, &ud, 0, {{0}}};
    lt_model *p = resnet8(&f, 4), *b = resnet8(NULL, 4);
    assert_int_equal(f.calls, 7);
    /* nothing is fused, and no ReLU overwrites the plugin's output */
    assert_int_equal(count_fused(p), 0);
    assert_true(count_fused(b) > 0);
    for (int i = 1; i < p->n_nodes; i++)
        if (p->nodes[i].ops == &pbn_named_bn)
            for (int j = i + 1; j < p->n_nodes; j++)
                if (p->nodes[j].n_in == 1 && p->nodes[j].in[0] == i) assert_ptr_not_equal(p->nodes[j].y, p->nodes[i].y);
    set_stats(p);
    set_stats(b);
    assert_int_equal(p->n_w, b->n_w);
    float x[4 * 144], l1[20], l2[20];
    gc_fill(x, 4 * 144, 3, -1, 1);
    float *g1 = malloc(p->n_w * sizeof(float)), *g2 = malloc(b->n_w * sizeof(float));
    run(p, x, l1, g1);
    run(b, x, l2, g2);
    /* the same numbers as the engine's BN, fused or not */
    assert_memory_equal(l1, l2, sizeof l1);
    assert_memory_equal(g1, g2, p->n_w * sizeof(float));
    assert_true(ud.forwards > 0);   /* the userdata pointer reached the layer */
    free(g1);
    free(g2);
    lt_model_free(p);
    lt_model_free(b);
}

static void test_plugin_capable_norm_is_fused(void **unused) {
    (void)unused;
    factory f = {&pbn_capable, NULL, 0, {{0}}};
    lt_model *p = resnet8(&f, 4);
    int f_conv = 0;
    for (int i = 1; i < p->n_nodes; i++) f_conv += p->nodes[i].fuse != 0;
    assert_int_equal(f_conv, 7);   /* every conv -> norm pair (no training fusion: no forward_relu) */
    set_stats(p);
    float x[4 * 144], fused[20], plain[20];
    gc_fill(x, 4 * 144, 5, -1, 1);
    const int lg = lt_model_find(p, "logits");
    lt_model_set_no_fuse(p, 1);
    assert_int_equal(lt_model_forward(p, x, 4, 0), LT_OK);
    memcpy(plain, lt_model_out(p, lg), sizeof plain);
    lt_model_set_no_fuse(p, 0);
    assert_int_equal(lt_model_forward(p, x, 4, 0), LT_OK);
    memcpy(fused, lt_model_out(p, lg), sizeof fused);
    assert_memory_equal(fused, plain, sizeof fused);
    lt_model_free(p);
}

/* Finite differences through a small model with the plugin in train mode. */
typedef struct {
    lt_model *m;
    float x[2 * 2 * 4 * 4], r[2 * 3];
} gc_ctx;

static double gc_loss(void *p) {
    gc_ctx *c = p;
    assert_int_equal(lt_model_forward(c->m, c->x, 2, 1), LT_OK);
    return gc_dot(lt_model_out(c->m, lt_model_find(c->m, "logits")), c->r, 6);
}

static void test_plugin_gradcheck(void **unused) {
    (void)unused;
    gc_ctx c;
    assert_int_equal(lt_model_create(&c.m, (lt_shape){1, 2, 4, 4}), LT_OK);
    int cv = lt_add_conv(c.m, "conv", "backbone", 0, 3, 3, 1, 1, 1, 0);
    pbn_cfg cfg = {1e-5f, 0.1f};
    int n = lt_model_add(c.m, &pbn_capable, "norm", "backbone", cv, -1, &cfg, sizeof cfg);
    int r = lt_add_relu(c.m, "relu", "backbone", n);
    int g = lt_add_gap(c.m, "feat", "backbone", r);
    assert_true(lt_add_linear(c.m, "logits", "head", g, 3, 1) > 0);
    assert_int_equal(lt_model_finalize(c.m, 3), LT_OK);
    assert_int_equal(lt_model_set_batch(c.m, 2), LT_OK);
    gc_fill(c.x, sizeof c.x / sizeof c.x[0], 9, -1, 1);
    gc_fill(c.r, 6, 10, -1, 1);
    lt_param_info gamma, w;
    assert_int_equal(lt_model_param_find(c.m, "norm.weight", &gamma), LT_OK);
    assert_int_equal(lt_model_param_find(c.m, "conv.weight", &w), LT_OK);
    gc_fill(gamma.w, gamma.count, 11, 0.5f, 1.5f);
    /* analytic: backward from d loss / d logits = r */
    const int lg = lt_model_find(c.m, "logits");
    gc_loss(&c);
    memcpy(lt_model_dout(c.m, lg), c.r, sizeof c.r);
    lt_model_zero_grad(c.m);
    assert_int_equal(lt_model_backward(c.m, 2, &lg, 1), LT_OK);
    float *ag = malloc(gamma.count * sizeof(float)), *aw = malloc(w.count * sizeof(float));
    memcpy(ag, gamma.g, gamma.count * sizeof(float));
    memcpy(aw, w.g, w.count * sizeof(float));
    /* small steps: the ReLU's kinks are close at batch 2 */
    gc_opts o = {.eps = 1e-3, .rtol = 2e-2, .atol = 2e-3, .max_checks = 0};
    assert_int_equal(gc_check("plugin norm dgamma", gc_loss, &c, gamma.w, ag, gamma.count, &o), 0);
    assert_int_equal(gc_check("plugin norm (conv dW through it)", gc_loss, &c, w.w, aw, w.count, &o), 0);
    free(ag);
    free(aw);
    lt_model_free(c.m);
}

static int bad_norm(void *p, lt_model *m, const char *name, const char *group, int in) {
    (void)p;
    /* a "norm" that changes the channel count */
    return lt_add_conv(m, name, group, in, 3, 1, 1, 0, 1, 0);
}

static void test_norm_factory_names(void **unused) {
    (void)unused;
    factory f = {&pbn_capable, NULL, 0, {{0}}};
    lt_model *p = resnet8(&f, 4);
    static const char *const want[] = {"bn1", "layer1.0.bn1", "layer1.0.bn2", "layer2.0.bn1", "layer2.0.bn2",
                                       "layer3.0.bn1", "layer3.0.bn2"};
    assert_int_equal(f.calls, 7);
    for (int i = 0; i < 7; i++) {
        assert_string_equal(f.names[i], want[i]);
        int k = lt_model_find(p, want[i]);
        assert_true(k > 0);
        assert_ptr_equal(p->nodes[k].ops, &pbn_capable);
    }
    lt_model_free(p);
    /* projection shortcuts' BN comes from the factory too */
    lt_model *r10;
    factory g = {&pbn_capable, NULL, 0, {{0}}};
    assert_int_equal(lt_model_create(&r10, (lt_shape){1, 3, 32, 32}), LT_OK);
    assert_true(lt_resnet_backbone_norm(r10, "resnet10", make_norm, &g) > 0);
    int proj = 0;
    for (int i = 0; i < g.calls && i < 32; i++) proj += strstr(g.names[i], "downsample.1") != NULL;
    assert_int_equal(proj, 3);
    lt_model_free(r10);
    /* a factory that changes the shape is refused, naming the layer */
    lt_model *bad;
    assert_int_equal(lt_model_create(&bad, (lt_shape){1, 1, 12, 12}), LT_OK);
    assert_true(lt_resnet_backbone_norm(bad, "resnet8_cifar", bad_norm, NULL) < 0);
    assert_non_null(strstr(lt_errmsg(), "bn1"));
    lt_model_free(bad);
}

/* An ABI-1 layer table (no fusion, no macs members) is still accepted; an
 * unknown ABI is refused. */
static void test_layer_abi(void **unused) {
    (void)unused;
    lt_model *m;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 1, 4, 4}), LT_OK);
    lt_layer_ops v1 = pbn_named_bn;
    v1.abi = 1;
    pbn_cfg c = {1e-5f, 0.1f};
    assert_true(lt_model_add(m, &v1, "old", "backbone", 0, -1, &c, sizeof c) > 0);
    lt_layer_ops v9 = pbn_named_bn;
    v9.abi = 9;
    assert_true(lt_model_add(m, &v9, "new", "backbone", 0, -1, &c, sizeof c) < 0);
    assert_non_null(strstr(lt_errmsg(), "ABI"));
    lt_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugin_named_bn_is_not_fused),
        cmocka_unit_test(test_plugin_capable_norm_is_fused),
        cmocka_unit_test(test_plugin_gradcheck),
        cmocka_unit_test(test_norm_factory_names),
        cmocka_unit_test(test_layer_abi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
