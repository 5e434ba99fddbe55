/* test_cuemu_plans.c — engine/cuda's convolution plans under conditions
 * only the emulator can make (tests/cuemu/lt_cuemu_dnn.cc):
 *  - list entries (heuristic or timed) that understate their algorithm's
 *    workspace (LT_CUEMU_DNN_UNDERSTATE_WS=1): lt_cuda_conv.cu sizes each
 *    direction's workspace by the larger of the entry and
 *    cudnnGet*WorkspaceSize, so every call gets what its algorithm needs;
 *    sized by the entry alone, the call passes too small a workspace size
 *    and the emulated cuDNN refuses it. Deterministic (heuristic plans) and
 *    not (timed plans); a 512->512 3x3 convolution, whose backward
 *    algorithms want 9 MB;
 *  - a search whose every trial failed for want of memory
 *    (LT_CUEMU_DNN_FIND_ALLOC_FAILS=1): the plan falls back to the
 *    heuristics (it says "(heuristic)", not "(timed)") and runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_cuda.h"

/* One forward and backward with env var `var` set to 1; the plan's line
 * must end with `how`. */
static void conv_runs_with(int deterministic, const char *var, const char *how) {
    lt_cuda_ctx *ctx = NULL;
    assert_int_equal(lt_cuda_create(&ctx, 0, LT_CUDA_FP32, deterministic), LT_OK);
    lt_conv_geom g;
    const int ci = 512, co = 512, hw = 4, N = 1;
    assert_int_equal(lt_conv_geom_init(&g, ci, hw, hw, co, 3, 3, 1, 1, 1), LT_OK);
    const size_t nx = (size_t)N * ci * hw * hw, ny = (size_t)N * co * g.ho * g.wo, nw = lt_conv2d_weight_count(&g);
    float *x = NULL, *w = NULL, *y = NULL, *dx = NULL, *dw = NULL;
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&x, nx * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&w, nw * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&y, ny * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&dx, nx * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&dw, nw * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_memset0(ctx, x, nx * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_memset0(ctx, w, nw * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_memset0(ctx, dw, nw * sizeof(float)), LT_OK);
    setenv(var, "1", 1);
    const int rf = lt_cuda_conv2d_forward(ctx, &g, N, x, w, NULL, y);
    const int rb = rf ? rf : lt_cuda_conv2d_backward(ctx, &g, N, x, w, y, dx, dw, NULL, 1);
    const int rs = lt_cuda_sync(ctx);
    unsetenv(var);
    if (rf || rb || rs) print_message("conv failed: %s\n", lt_errmsg());
    assert_int_equal(rf, LT_OK);
    assert_int_equal(rb, LT_OK);
    assert_int_equal(rs, LT_OK);
    char d[1024];
    assert_int_equal(lt_cuda_conv_plans_describe(ctx, d, sizeof d), 1);
    printf("%s, %s: %s", var, deterministic ? "deterministic" : "not deterministic", d);
    assert_non_null(strstr(d, how));
    float back[4];
    assert_int_equal(lt_cuda_d2h(ctx, back, dw, sizeof back), LT_OK);
    assert_true(back[0] == 0.0f);   /* zero inputs, zero gradients: the backward ran */
    lt_cuda_free(ctx, x);
    lt_cuda_free(ctx, w);
    lt_cuda_free(ctx, y);
    lt_cuda_free(ctx, dx);
    lt_cuda_free(ctx, dw);
    lt_cuda_free_ctx(ctx);
}

static void test_understated_workspace_heuristic(void **state) {
    (void)state;
    conv_runs_with(1, "LT_CUEMU_DNN_UNDERSTATE_WS", "(heuristic)");
}
static void test_understated_workspace_timed(void **state) {
    (void)state;
    conv_runs_with(0, "LT_CUEMU_DNN_UNDERSTATE_WS", "(timed)");
}
static void test_search_without_usable_entry(void **state) {
    (void)state;
    conv_runs_with(0, "LT_CUEMU_DNN_FIND_ALLOC_FAILS", "(heuristic)");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_understated_workspace_heuristic),
        cmocka_unit_test(test_understated_workspace_timed),
        cmocka_unit_test(test_search_without_usable_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
