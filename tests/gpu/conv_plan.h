/* conv_plan.h — a convolution run only for the plan it leaves, shared by
 * the tests of how lt_cuda_conv.cu chooses its algorithms
 * (tests/gpu/test_backend_ops.c, case algo_choice; tests/cuemu/
 * test_cuemu_plans.c). CMocka asserts: include cmocka.h first. */
#ifndef LT_TEST_CONV_PLAN_H
#define LT_TEST_CONV_PLAN_H

#include <stddef.h>

#include "cuda/lt_cuda.h"

/* A 3x3, stride 1, pad 1 convolution of N x ci x hw x hw ones by ones into
 * co channels, forward, and backward too when `bwd`, on fresh device
 * buffers freed again. Every call must succeed (else lt_errmsg is printed
 * and the test fails), and an interior output must be 9 x ci. */
void lt_test_conv_ones(lt_cuda_ctx *ctx, int ci, int co, int hw, int N, int bwd);

/* The newest plan's line of lt_cuda_conv_plans_describe, without its
 * newline, into line. */
void lt_test_newest_plan(lt_cuda_ctx *ctx, char *line, size_t cap);

#endif
