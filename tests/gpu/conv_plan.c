/* conv_plan.c — see conv_plan.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_plan.h"

static void ok(int rc, const char *what) {
    if (rc != LT_OK) fail_msg("%s: %s", what, lt_errmsg());
}

void lt_test_conv_ones(lt_cuda_ctx *ctx, int ci, int co, int hw, int N, int bwd) {
    lt_conv_geom g;
    ok(lt_conv_geom_init(&g, ci, hw, hw, co, 3, 3, 1, 1, 1), "geometry");
    const size_t nx = (size_t)N * ci * hw * hw, ny = (size_t)N * co * g.ho * g.wo, nw = lt_conv2d_weight_count(&g);
    const size_t nmax = nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw);
    float *x = NULL, *w = NULL, *y = NULL, *dx = NULL, *dw = NULL;
    ok(lt_cuda_alloc(ctx, (void **)&x, nx * sizeof(float)), "alloc x");
    ok(lt_cuda_alloc(ctx, (void **)&w, nw * sizeof(float)), "alloc w");
    ok(lt_cuda_alloc(ctx, (void **)&y, ny * sizeof(float)), "alloc y");
    ok(lt_cuda_alloc(ctx, (void **)&dx, nx * sizeof(float)), "alloc dx");
    ok(lt_cuda_alloc(ctx, (void **)&dw, nw * sizeof(float)), "alloc dw");
    float *h = malloc(nmax * sizeof(float));
    assert_non_null(h);
    for (size_t i = 0; i < nmax; i++) h[i] = 1.0f;
    ok(lt_cuda_h2d(ctx, x, h, nx * sizeof(float)), "upload x");
    ok(lt_cuda_h2d(ctx, w, h, nw * sizeof(float)), "upload w");
    ok(lt_cuda_h2d(ctx, dw, h, nw * sizeof(float)), "upload dw");
    ok(lt_cuda_conv2d_forward(ctx, LT_LAYOUT_NCHW, &g, N, x, w, NULL, y), "conv forward");
    if (bwd) ok(lt_cuda_conv2d_backward(ctx, LT_LAYOUT_NCHW, &g, N, x, w, y, dx, dw, NULL, 1), "conv backward");
    ok(lt_cuda_sync(ctx), "sync");
    ok(lt_cuda_d2h(ctx, h, y, ny * sizeof(float)), "download y");
    /* an interior output of ones: 9 taps x ci channels (FFT and Winograd
     * round, hence not ==) */
    const float v = h[(size_t)(hw / 2) * hw + hw / 2];
    if (!(fabsf(v - (float)(9 * ci)) < 1e-3f * (float)(9 * ci)))
        fail_msg("conv of ones: interior output %g, expected %d", (double)v, 9 * ci);
    free(h);
    lt_cuda_free(ctx, x);
    lt_cuda_free(ctx, w);
    lt_cuda_free(ctx, y);
    lt_cuda_free(ctx, dx);
    lt_cuda_free(ctx, dw);
}

void lt_test_newest_plan(lt_cuda_ctx *ctx, char *line, size_t cap) {
    static char d[1 << 14];
    assert_true(lt_cuda_conv_plans_describe(ctx, d, sizeof d) > 0);
    const size_t n = strlen(d);
    assert_true(n > 0 && d[n - 1] == '\n');
    d[n - 1] = 0;
    const char *last = strrchr(d, '\n');
    snprintf(line, cap, "%s", last ? last + 1 : d);
}
