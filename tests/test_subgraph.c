/* test_subgraph.c — running a range of a model's nodes on extra rows
 * (lt_subgraph): the head forward / backward on rows that are not in the
 * batch equals the same rows run inside a batch (values and parameter
 * gradients); the batch's own activations are untouched; the gradient
 * reaches no parameter before the range; a sub-graph through train-mode BN;
 * bad ranges are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tassert.h"   /* NaN-safe assert_float_equal */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "lt.h"

enum { N = 6, C = 4 };

static lt_model *model(void) {
    lt_model *m;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 2, 6, 6}), LT_OK);
    int c1 = lt_add_conv(m, "conv1", "backbone", 0, 5, 3, 1, 1, 1, 0);
    int b1 = lt_add_bn(m, "bn1", "backbone", c1);
    int r1 = lt_add_relu(m, "relu1", "backbone", b1);
    int f = lt_add_gap(m, "feat", "backbone", r1);
    /* a two-layer head: projection, BN-free, then the classifier */
    int p = lt_add_linear(m, "proj", "head", f, 7, 1);
    int pr = lt_add_relu(m, "proj_relu", "head", p);
    assert_true(lt_add_linear(m, "logits", "head", pr, C, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 11), LT_OK);
    assert_int_equal(lt_model_set_batch(m, N), LT_OK);
    return m;
}

static void head_grads(lt_model *m, float *out, size_t *n) {
    *n = 0;
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(m, i, &p), LT_OK);
        if (strcmp(p.group, "head")) continue;
        memcpy(out + *n, p.g, p.count * sizeof(float));
        *n += p.count;
    }
}

static void test_head_rows_equal_batch_rows(void **unused) {
    (void)unused;
    lt_model *m = model();
    const int feat = lt_model_find(m, "feat"), lg = lt_model_find(m, "logits");
    float x[N * 72], dl[N * C];
    gc_fill(x, N * 72, 1, -1, 1);
    gc_fill(dl, N * C, 2, -1, 1);
    int32_t y[N] = {0, 1, 2, 3, 0, 1};
    (void)y;
    /* inside a batch: forward, backward from d loss / d logits */
    assert_int_equal(lt_model_forward(m, x, N, 1), LT_OK);
    float feat_rows[N * 5], logits_batch[N * C];
    memcpy(feat_rows, lt_model_out(m, feat), sizeof feat_rows);
    memcpy(logits_batch, lt_model_out(m, lg), sizeof logits_batch);
    memcpy(lt_model_dout(m, lg), dl, sizeof dl);
    lt_model_zero_grad(m);
    assert_int_equal(lt_model_backward(m, N, &lg, 1), LT_OK);
    float g_batch[200], g_rows[200];
    size_t nb, nr;
    head_grads(m, g_batch, &nb);
    lt_param_info cw;
    assert_int_equal(lt_model_param_find(m, "conv1.weight", &cw), LT_OK);

    /* the same feature rows as extra rows through feat -> logits */
    lt_subgraph *sg;
    assert_int_equal(lt_subgraph_create(&sg, m, feat, lg, 9), LT_OK);
    /* the batch's activations are restored: overwrite the batch taps with a
     * marker after the batch forward and check they survive */
    float *blog = lt_model_out(m, lg);
    blog[0] = 1234.5f;
    assert_int_equal(lt_subgraph_forward(sg, feat_rows, N, 1), LT_OK);
    assert_true(blog[0] == 1234.5f);
    blog[0] = logits_batch[0];
    const float *lo = lt_subgraph_out(sg, lg);
    for (int i = 0; i < N * C; i++) assert_float_equal(lo[i], logits_batch[i], 1e-6f * (1 + fabsf(logits_batch[i])));
    memcpy(lt_subgraph_dout(sg, lg), dl, sizeof dl);
    lt_model_zero_grad(m);
    assert_int_equal(lt_subgraph_backward(sg, N, &lg, 1), LT_OK);
    head_grads(m, g_rows, &nr);
    assert_int_equal(nr, nb);
    double scale = 0;
    for (size_t i = 0; i < nb; i++) scale = fmax(scale, fabs(g_batch[i]));
    assert_true(scale > 0);
    for (size_t i = 0; i < nb; i++) assert_float_equal(g_rows[i], g_batch[i], 1e-5 * scale);
    /* nothing reaches the backbone: the gradient stops at `feat` */
    for (size_t i = 0; i < cw.count; i++) assert_true(cw.g[i] == 0.0f);
    /* ... but is there for the caller at feat */
    const float *df = lt_subgraph_dout(sg, feat);
    double s = 0;
    for (int i = 0; i < N * 5; i++) s += fabs(df[i]);
    assert_true(s > 0);

    /* accumulation: batch backward after the rows' backward adds up */
    lt_model_zero_grad(m);
    assert_int_equal(lt_subgraph_forward(sg, feat_rows, 3, 1), LT_OK);
    memcpy(lt_subgraph_dout(sg, lg), dl, sizeof(float) * 3 * C);
    assert_int_equal(lt_subgraph_backward(sg, 3, &lg, 1), LT_OK);
    float g_three[200];
    head_grads(m, g_three, &nr);
    assert_int_equal(lt_model_forward(m, x, N, 1), LT_OK);
    memcpy(lt_model_dout(m, lg), dl, sizeof dl);
    assert_int_equal(lt_model_backward(m, N, &lg, 1), LT_OK);
    float g_sum[200];
    head_grads(m, g_sum, &nr);
    for (size_t i = 0; i < nb; i++) assert_float_equal(g_sum[i], g_three[i] + g_batch[i], 1e-5 * scale);
    lt_subgraph_free(sg);   /* before its model (lt_model.h) */
    lt_model_free(m);
}

/* d(sum r . logits)/d(parameters) by finite differences, through a range
 * that includes a train-mode BN (its saved statistics are the sub-graph's). */
typedef struct {
    lt_model *m;
    lt_subgraph *sg;
    float x[N * 72], r[N * C];
} fd_ctx;

static double fd_loss(void *p) {
    fd_ctx *c = p;
    assert_int_equal(lt_subgraph_forward(c->sg, c->x, N, 1), LT_OK);
    return gc_dot(lt_subgraph_out(c->sg, lt_model_find(c->m, "logits")), c->r, N * C);
}

static void test_range_with_bn_gradcheck(void **unused) {
    (void)unused;
    fd_ctx c;
    c.m = model();
    assert_int_equal(lt_subgraph_create(&c.sg, c.m, 0, lt_model_find(c.m, "logits"), N), LT_OK);
    gc_fill(c.x, N * 72, 5, -1, 1);
    gc_fill(c.r, N * C, 6, -1, 1);
    const int lg = lt_model_find(c.m, "logits");
    fd_loss(&c);
    memcpy(lt_subgraph_dout(c.sg, lg), c.r, sizeof c.r);
    lt_model_zero_grad(c.m);
    assert_int_equal(lt_subgraph_backward(c.sg, N, &lg, 1), LT_OK);
    lt_param_info g, w;
    assert_int_equal(lt_model_param_find(c.m, "bn1.weight", &g), LT_OK);
    assert_int_equal(lt_model_param_find(c.m, "proj.weight", &w), LT_OK);
    float ag[5], aw[35];
    memcpy(ag, g.g, sizeof ag);
    memcpy(aw, w.g, sizeof aw);
    gc_opts o = {.eps = 1e-3, .rtol = 2e-2, .atol = 1e-3, .max_checks = 0};
    assert_int_equal(gc_check("subgraph bn gamma", fd_loss, &c, g.w, ag, 5, &o), 0);
    assert_int_equal(gc_check("subgraph proj W", fd_loss, &c, w.w, aw, 35, &o), 0);
    lt_subgraph_free(c.sg);
    lt_model_free(c.m);
}

static void test_bad_ranges(void **unused) {
    (void)unused;
    lt_model *m = model();
    lt_subgraph *sg;
    const int feat = lt_model_find(m, "feat"), lg = lt_model_find(m, "logits");
    assert_int_not_equal(lt_subgraph_create(&sg, m, lg, feat, 4), LT_OK);
    assert_int_not_equal(lt_subgraph_create(&sg, m, feat, lg, 0), LT_OK);
    /* a residual add reading a node before the range */
    {
        lt_model *r;
        assert_int_equal(lt_model_create(&r, (lt_shape){1, 2, 3, 3}), LT_OK);
        int a = lt_add_conv(r, "a", "backbone", 0, 2, 1, 1, 0, 1, 0);
        int b = lt_add_relu(r, "b", "backbone", a);
        int sum = lt_add_sum(r, "s", "backbone", a, b);
        assert_int_equal(lt_model_finalize(r, 1), LT_OK);
        assert_int_not_equal(lt_subgraph_create(&sg, r, b, sum, 4), LT_OK);
        assert_non_null(strstr(lt_errmsg(), "before the range"));
        assert_int_equal(lt_subgraph_create(&sg, r, a, sum, 4), LT_OK);
        lt_subgraph_free(sg);
        lt_model_free(r);
    }
    assert_int_equal(lt_subgraph_create(&sg, m, lt_model_find(m, "proj"), lg, 4), LT_OK);
    float rows[7 * 5];
    gc_fill(rows, 35, 1, -1, 1);
    assert_int_not_equal(lt_subgraph_forward(sg, rows, 5, 1), LT_OK);   /* more rows than planned */
    assert_int_not_equal(lt_subgraph_backward(sg, 2, &lg, 1), LT_OK);   /* no forward yet */
    lt_subgraph_free(sg);
    lt_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_rows_equal_batch_rows),
        cmocka_unit_test(test_range_with_bn_gradcheck),
        cmocka_unit_test(test_bad_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
