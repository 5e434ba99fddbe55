/* lt_cuda_conv_rules.h — which cuDNN convolution algorithms the CUDA
 * backend may use, whatever the search or heuristic ranks first: one
 * definition for lt_cuda_conv.cu and for tests/bench/bench_conv_layout.c,
 * so the bench times only algorithms the backend could pick. C and CUDA C++. */
#ifndef LT_CUDA_CONV_RULES_H
#define LT_CUDA_CONV_RULES_H

#include <cudnn.h>
#include <stddef.h>

/* The most workspace one convolution call may take. */
#define LT_CUDA_CONV_WS_CAP ((size_t)2 << 30)

/* FP32 mode: FMA math only. cuDNN's DEFAULT math lets the library use TF32
 * tensor cores on Ampere and later (cudnnMathType_t), which is what FP32 mode
 * must exclude (PyTorch asserts FMA math with allow_tf32 off). TF32 mode:
 * anything but ALLOW_CONVERSION, which may convert fp32 data to fp16. */
static inline int lt_cuda_conv_math_ok(int tf32, cudnnMathType_t m) {
    if (tf32) return m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    return m == CUDNN_FMA_MATH;
}

#endif
