/* test_subgraph_cuda.c — sub-graphs (lt_subgraph) of a model on the CUDA
 * backend against the same sub-graphs of the same model on the cpu: the
 * caller's rows are host arrays on both, the device's buffers are its own.
 *
 *   head_rows    feat -> logits on 9 extra rows (more than the batch of 6):
 *                the outputs, the head's parameter gradients and the
 *                gradient arriving at `feat` equal the cpu's (fp32: within
 *                1e-4, max-normalised / per-tensor L2); nothing reaches the
 *                backbone (its device gradients stay exactly 0); the batch's
 *                logits are untouched (bit for bit); the batch's own
 *                backward after it accumulates onto the sub-graph's
 *                gradients as on the cpu; a second forward of 3 other rows
 *                reads back its own outputs;
 *   many_pixels  conv1 -> logits (a BN in training mode, a ReLU, the pool,
 *                the head) on 5 rows, the cuda model in NCHW and in NHWC:
 *                outputs, every parameter gradient, the BN running
 *                statistics and the gradient arriving at conv1's many-pixel
 *                output (converted back to NCHW for the host) equal the
 *                cpu's;
 *   refused      a backward before any forward: LT_ESTATE; more rows than
 *                planned: LT_EINVAL; a backward after a layout switch:
 *                LT_ESTATE naming the backend.
 * Built against the CPU emulator (build/tests/test_subgraph_cuda_emu, run
 * by make test) and with nvcc on a GPU (tests/gpu/run.sh). Without a CUDA
 * device the cases print the reason and call skip(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"

enum { N = 6, C = 4, IN_C = 2, IN_HW = 6 };
#define TOL 1e-4

static lt_backend *gpu_backend(void) {
    lt_backend *b = NULL;
    if (lt_backend_cuda_create(0, LT_CUDA_FP32, 1, &b) != LT_OK) {
        print_message("skip: no usable CUDA device: %s\n", lt_errmsg());
        return NULL;
    }
    return b;
}
#define NEED_GPU(bp)                       \
    do {                                   \
        (bp) = gpu_backend();              \
        if (!(bp)) { skip(); return; }     \
    } while (0)

static void fill(float *v, size_t n, uint32_t seed) {
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        v[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* conv -> BN -> ReLU -> pool "feat" -> linear -> ReLU -> linear "logits",
 * the same parameters on every backend (seed 11). */
static lt_model *model(lt_backend *b, lt_layout layout) {
    lt_model *m;
    assert_int_equal(lt_model_create_on(&m, (lt_shape){1, IN_C, IN_HW, IN_HW}, b), LT_OK);
    int c1 = lt_add_conv(m, "conv1", "backbone", 0, 5, 3, 1, 1, 1, 0);
    int b1 = lt_add_bn(m, "bn1", "backbone", c1);
    int r1 = lt_add_relu(m, "relu1", "backbone", b1);
    int f = lt_add_gap(m, "feat", "backbone", r1);
    int p = lt_add_linear(m, "proj", "head", f, 7, 1);
    int pr = lt_add_relu(m, "proj_relu", "head", p);
    assert_true(lt_add_linear(m, "logits", "head", pr, C, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 11), LT_OK);
    if (layout != LT_LAYOUT_NCHW) assert_int_equal(lt_model_set_layout(m, layout), LT_OK);
    assert_int_equal(lt_model_set_batch(m, N), LT_OK);
    return m;
}

/* max |a - b| / max |a| (0 when both are 0; infinite where an element of
 * either is not finite: fmax drops a NaN, which would pass) */
static double maxnorm(const float *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)a[i]));
    }
    return s > 0 ? d / s : d;
}

static void expect_close(const char *what, const float *cpu, const float *dev, size_t n) {
    const double e = maxnorm(cpu, dev, n);
    print_message("%s: %.3g from the cpu's\n", what, e);
    if (!(e <= TOL)) fail_msg("%s differs from the cpu's by %.3g (max-normalised)", what, e);
}

/* Every parameter gradient of the device model against the cpu model's:
 * per-tensor L2 error within TOL; a tensor of `zero_group` must be exactly
 * zero on the device (and on the cpu). */
static void grads_close(lt_model *mc, lt_model *mg, const char *zero_group, const char *what) {
    const int np = lt_model_n_params(mc);
    assert_int_equal(lt_model_n_params(mg), np);
    for (int i = 0; i < np; i++) {
        lt_param_info pc, pg;
        assert_int_equal(lt_model_param_at(mc, i, &pc), LT_OK);
        assert_int_equal(lt_model_param_at(mg, i, &pg), LT_OK);
        assert_string_equal(pc.name, pg.name);
        assert_int_equal(pc.count, pg.count);
        float *g = malloc(pc.count * sizeof(float));
        assert_non_null(g);
        assert_int_equal(lt_model_param_to_host(mg, i, NULL, g), LT_OK);
        double d = 0, s = 0, amax = 0;
        for (size_t k = 0; k < pc.count; k++) {
            d += ((double)pc.g[k] - g[k]) * ((double)pc.g[k] - g[k]);
            s += (double)pc.g[k] * pc.g[k];
            amax = fmax(amax, fabs((double)g[k]));
        }
        if (zero_group && !strcmp(pc.group, zero_group)) {
            if (amax != 0 || s != 0) fail_msg("%s: %s's gradient is not 0 (device max %g)", what, pc.name, amax);
        } else {
            const double e = s > 0 ? sqrt(d / s) : sqrt(d);
            if (!(s > 0)) fail_msg("%s: %s's cpu gradient is 0: nothing to compare", what, pc.name);
            if (!(e <= TOL)) fail_msg("%s: %s's gradient is %.3g from the cpu's (L2)", what, pc.name, e);
        }
        free(g);
    }
}

static void buffers_close(lt_model *mc, lt_model *mg, const char *what) {
    const int nb = lt_model_n_buffers(mc);
    assert_int_equal(lt_model_n_buffers(mg), nb);
    assert_true(nb >= 2);
    for (int i = 0; i < nb; i++) {
        lt_buffer_info bc;
        assert_int_equal(lt_model_buffer_at(mc, i, &bc), LT_OK);
        float *v = malloc(bc.count * sizeof(float));
        assert_non_null(v);
        assert_int_equal(lt_model_buffer_to_host(mg, i, v), LT_OK);
        char label[160];
        snprintf(label, sizeof label, "%s: buffer %s", what, bc.name);
        expect_close(label, bc.data, v, bc.count);
        free(v);
    }
}

/* ---- the head on extra rows ---------------------------------------------------------- */
static void test_head_rows(void **unused) {
    (void)unused;
    lt_backend *gb;
    NEED_GPU(gb);
    lt_model *mc = model(NULL, LT_LAYOUT_NCHW), *mg = model(gb, LT_LAYOUT_NCHW);
    const int feat = lt_model_find(mc, "feat"), lg = lt_model_find(mc, "logits");
    const int D = (int)lt_model_out_size(mc, feat);
    float x[N * IN_C * IN_HW * IN_HW], dl[N * C];
    fill(x, sizeof x / sizeof x[0], 1);
    fill(dl, N * C, 2);
    assert_int_equal(lt_model_forward(mc, x, N, 1), LT_OK);
    assert_int_equal(lt_model_forward(mg, x, N, 1), LT_OK);
    float batch_before[N * C], batch_after[N * C];
    assert_int_equal(lt_model_out_to_host(mg, lg, N, batch_before), LT_OK);
    expect_close("batch logits", lt_model_out(mc, lg), batch_before, N * C);

    enum { R = 9 };   /* more rows than the batch */
    lt_subgraph *sc, *sgd;
    assert_int_equal(lt_subgraph_create(&sc, mc, feat, lg, R), LT_OK);
    assert_int_equal(lt_subgraph_create(&sgd, mg, feat, lg, R), LT_OK);
    float rows[R * 16], dz[R * C];
    assert_true(D <= 16);
    fill(rows, (size_t)R * D, 3);
    fill(dz, R * C, 4);
    lt_model_zero_grad(mc);
    lt_model_zero_grad(mg);
    assert_int_equal(lt_subgraph_forward(sc, rows, R, 1), LT_OK);
    assert_int_equal(lt_subgraph_forward(sgd, rows, R, 1), LT_OK);
    const float *zg = lt_subgraph_out(sgd, lg);
    assert_non_null(zg);
    expect_close("sub-graph logits (9 rows)", lt_subgraph_out(sc, lg), zg, R * C);
    /* the caller's gradient: written into dout, copied in at backward */
    memcpy(lt_subgraph_dout(sc, lg), dz, sizeof dz);
    memcpy(lt_subgraph_dout(sgd, lg), dz, sizeof dz);
    const int tap = lg;
    assert_int_equal(lt_subgraph_backward(sc, R, &tap, 1), LT_OK);
    assert_int_equal(lt_subgraph_backward(sgd, R, &tap, 1), LT_OK);
    grads_close(mc, mg, "backbone", "sub-graph backward");
    const float *df = lt_subgraph_dout(sgd, feat);
    assert_non_null(df);
    expect_close("gradient at feat", lt_subgraph_dout(sc, feat), df, (size_t)R * D);
    /* the batch's activations are the model's, untouched */
    assert_int_equal(lt_model_out_to_host(mg, lg, N, batch_after), LT_OK);
    assert_memory_equal(batch_before, batch_after, sizeof batch_before);

    /* the batch's own backward accumulates onto the sub-graph's gradients */
    memcpy(lt_model_dout(mc, lg), dl, sizeof dl);
    assert_int_equal(lt_model_dout_from_host(mg, lg, N, dl), LT_OK);
    assert_int_equal(lt_model_backward(mc, N, &tap, 1), LT_OK);
    assert_int_equal(lt_model_backward(mg, N, &tap, 1), LT_OK);
    grads_close(mc, mg, NULL, "sub-graph + batch backward");

    /* a second forward of other rows: out reads back the new outputs */
    fill(rows, (size_t)3 * D, 5);
    assert_int_equal(lt_subgraph_forward(sc, rows, 3, 0), LT_OK);
    assert_int_equal(lt_subgraph_forward(sgd, rows, 3, 0), LT_OK);
    zg = lt_subgraph_out(sgd, lg);
    assert_non_null(zg);
    expect_close("second forward's logits (3 rows)", lt_subgraph_out(sc, lg), zg, 3 * C);
    lt_subgraph_free(sc);
    lt_subgraph_free(sgd);
    lt_model_free(mc);
    lt_model_free(mg);
    lt_backend_free(gb);
}

/* ---- a range that starts at a many-pixel tensor ---------------------------------------- */
static void many_pixels(lt_backend *gb, lt_layout layout) {
    const char *ln = layout == LT_LAYOUT_NHWC ? "nhwc" : "nchw";
    lt_model *mc = model(NULL, LT_LAYOUT_NCHW), *mg = model(gb, layout);
    const int c1 = lt_model_find(mc, "conv1"), lg = lt_model_find(mc, "logits");
    const size_t act = lt_model_out_size(mc, c1);
    enum { R = 5, MAXR = 8 };
    lt_subgraph *sc, *sgd;
    assert_int_equal(lt_subgraph_create(&sc, mc, c1, lg, MAXR), LT_OK);
    assert_int_equal(lt_subgraph_create(&sgd, mg, c1, lg, MAXR), LT_OK);
    float *rows = malloc(R * act * sizeof(float)), dz[R * C];
    assert_non_null(rows);
    fill(rows, R * act, 6);
    fill(dz, R * C, 7);
    lt_model_zero_grad(mc);
    lt_model_zero_grad(mg);
    assert_int_equal(lt_subgraph_forward(sc, rows, R, 1), LT_OK);
    assert_int_equal(lt_subgraph_forward(sgd, rows, R, 1), LT_OK);
    char what[96];
    snprintf(what, sizeof what, "%s: logits through the BN", ln);
    const float *zg = lt_subgraph_out(sgd, lg);
    assert_non_null(zg);
    expect_close(what, lt_subgraph_out(sc, lg), zg, R * C);
    /* an intermediate many-pixel output, read back in NCHW */
    const int b1 = lt_model_find(mc, "bn1");
    snprintf(what, sizeof what, "%s: bn1's output", ln);
    const float *bg = lt_subgraph_out(sgd, b1);
    assert_non_null(bg);
    expect_close(what, lt_subgraph_out(sc, b1), bg, R * act);
    memcpy(lt_subgraph_dout(sc, lg), dz, sizeof dz);
    memcpy(lt_subgraph_dout(sgd, lg), dz, sizeof dz);
    assert_int_equal(lt_subgraph_backward(sc, R, &lg, 1), LT_OK);
    assert_int_equal(lt_subgraph_backward(sgd, R, &lg, 1), LT_OK);
    snprintf(what, sizeof what, "%s: sub-graph through the BN", ln);
    /* conv1's own parameters are before the range: exactly 0 */
    for (int i = 0; i < lt_model_n_params(mg); i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(mg, i, &p), LT_OK);
        if (strncmp(p.name, "conv1.", 6)) continue;
        float *g = malloc(p.count * sizeof(float));
        assert_non_null(g);
        assert_int_equal(lt_model_param_to_host(mg, i, NULL, g), LT_OK);
        for (size_t k = 0; k < p.count; k++)
            if (g[k] != 0) fail_msg("%s: %s has gradient %g before the range", what, p.name, g[k]);
        free(g);
    }
    /* the rest against the cpu (conv1's cpu gradient is 0 too) */
    {
        const int np = lt_model_n_params(mc);
        for (int i = 0; i < np; i++) {
            lt_param_info pc;
            assert_int_equal(lt_model_param_at(mc, i, &pc), LT_OK);
            if (!strncmp(pc.name, "conv1.", 6)) {
                for (size_t k = 0; k < pc.count; k++) assert_true(pc.g[k] == 0);
                continue;
            }
            float *g = malloc(pc.count * sizeof(float));
            assert_non_null(g);
            assert_int_equal(lt_model_param_to_host(mg, i, NULL, g), LT_OK);
            char label[160];
            snprintf(label, sizeof label, "%s: gradient of %s", ln, pc.name);
            expect_close(label, pc.g, g, pc.count);
            free(g);
        }
    }
    snprintf(what, sizeof what, "%s: BN running statistics", ln);
    buffers_close(mc, mg, what);
    snprintf(what, sizeof what, "%s: gradient at conv1 (many pixels)", ln);
    const float *dg = lt_subgraph_dout(sgd, c1);
    assert_non_null(dg);
    expect_close(what, lt_subgraph_dout(sc, c1), dg, R * act);
    lt_subgraph_free(sc);
    lt_subgraph_free(sgd);
    lt_model_free(mc);
    lt_model_free(mg);
    free(rows);
}

static void test_many_pixels(void **unused) {
    (void)unused;
    lt_backend *gb;
    NEED_GPU(gb);
    many_pixels(gb, LT_LAYOUT_NCHW);
    many_pixels(gb, LT_LAYOUT_NHWC);
    lt_backend_free(gb);
}

/* ---- what is refused ------------------------------------------------------------------- */
static void test_refused(void **unused) {
    (void)unused;
    lt_backend *gb;
    NEED_GPU(gb);
    lt_model *mg = model(gb, LT_LAYOUT_NCHW);
    const int c1 = lt_model_find(mg, "conv1"), lg = lt_model_find(mg, "logits");
    lt_subgraph *sg;
    assert_int_equal(lt_subgraph_create(&sg, mg, c1, lg, 4), LT_OK);
    lt_err_clear();
    assert_int_equal(lt_subgraph_backward(sg, 2, &lg, 1), LT_ESTATE);
    print_message("backward first: %s\n", lt_errmsg());
    const size_t act = lt_model_out_size(mg, c1);
    float *rows = calloc(5 * act, sizeof(float));
    assert_non_null(rows);
    assert_int_equal(lt_subgraph_forward(sg, rows, 5, 1), LT_EINVAL);
    assert_int_equal(lt_subgraph_forward(sg, rows, 2, 1), LT_OK);
    assert_int_equal(lt_model_set_layout(mg, LT_LAYOUT_NHWC), LT_OK);
    lt_err_clear();
    assert_int_equal(lt_subgraph_backward(sg, 2, &lg, 1), LT_ESTATE);
    print_message("backward after a layout switch: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "cuda:0"));
    free(rows);
    lt_subgraph_free(sg);
    lt_model_free(mg);
    lt_backend_free(gb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_rows),
        cmocka_unit_test(test_many_pixels),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
