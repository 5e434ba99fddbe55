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

#include "conv_plan.h"

/* One forward and backward of a 512->512 convolution with env var `var`
 * set to 1; the plan's line must end with `how`. */
static void conv_runs_with(int deterministic, const char *var, const char *how) {
    lt_cuda_ctx *ctx = NULL;
    assert_int_equal(lt_cuda_create(&ctx, 0, LT_CUDA_FP32, deterministic), LT_OK);
    setenv(var, "1", 1);
    lt_test_conv_ones(ctx, 512, 512, 4, 1, 1);
    unsetenv(var);
    char line[512];
    lt_test_newest_plan(ctx, line, sizeof line);
    printf("%s, %s: %s\n", var, deterministic ? "deterministic" : "not deterministic", line);
    assert_non_null(strstr(line, how));
    lt_cuda_free_ctx(ctx);
}

/* a failed case leaves its variable set: unset both for the next */
static int unset_vars(void **state) {
    (void)state;
    unsetenv("LT_CUEMU_DNN_UNDERSTATE_WS");
    unsetenv("LT_CUEMU_DNN_FIND_ALLOC_FAILS");
    return 0;
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
        cmocka_unit_test_teardown(test_understated_workspace_heuristic, unset_vars),
        cmocka_unit_test_teardown(test_understated_workspace_timed, unset_vars),
        cmocka_unit_test_teardown(test_search_without_usable_entry, unset_vars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
