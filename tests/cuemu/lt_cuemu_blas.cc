/* lt_cuemu_blas.cc — the emulator's cuBLAS (include/cublas_v2.h): the handle
 * settings engine/cuda makes and cublasSgemm, on the CPU. A test double
 * written from cuBLAS's documented semantics, not a copy of the library:
 *  - column-major GEMM with the reference-BLAS argument checks (status
 *    INVALID_VALUE), a quick return when m or n is 0, A and B not read when
 *    alpha is 0 or k is 0, C not read when beta is 0;
 *  - the work is queued on the handle's stream (lt_cuemu_enqueue) with the
 *    scalars read at call time (host pointer mode);
 *  - every matrix must be device memory covering the part the call touches
 *    (a GPU would fault otherwise);
 *  - each sum runs in float in k order, one fixed order (cuBLAS GEMMs are
 *    bit-reproducible on one GPU); CUBLAS_TF32_TENSOR_OP_MATH rounds every
 *    element of A and B to TF32 (lt_cuemu_tf32);
 *  - cublasSetStream drops a user workspace, as cuBLAS documents, and a
 *    GEMM leaves garbage in the user workspace it may use (split-K
 *    partials), so nothing else can live there. */
#include <cublas_v2.h>

#include "lt_cuemu.h"

#include <new>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct lt_cuemu_blas {
    cudaStream_t stream;
    void *ws;
    size_t ws_bytes;
    cublasMath_t math;
    cublasAtomicsMode_t atomics;
};

static cublasStatus_t fail(cublasStatus_t s, const char *call, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuemu cublas: %s: ", call);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return s;
}

const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) {
    if (!handle) return fail(CUBLAS_STATUS_INVALID_VALUE, "cublasCreate", "NULL handle pointer");
    *handle = new (std::nothrow) lt_cuemu_blas();
    if (!*handle) return CUBLAS_STATUS_ALLOC_FAILED;
    (*handle)->math = CUBLAS_DEFAULT_MATH;
    (*handle)->atomics = CUBLAS_ATOMICS_NOT_ALLOWED;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    if (!handle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasDestroy", "NULL handle");
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

/* The emulator's own version number (cuBLAS 13.0.0), not a real library's. */
cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int *version) {
    (void)handle;
    if (!version) return fail(CUBLAS_STATUS_INVALID_VALUE, "cublasGetVersion", "NULL version pointer");
    *version = 130000;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t s) {
    if (!handle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetStream", "NULL handle");
    handle->stream = s;
    /* cuBLAS resets the workspace to its default pool on every stream change */
    handle->ws = NULL;
    handle->ws_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}

/* cuBLAS requires the workspace 256-byte aligned (INVALID_VALUE otherwise);
 * cudaMalloc's pointers are. */
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void *ws, size_t bytes) {
    const char *call = "cublasSetWorkspace";
    if (!handle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, call, "NULL handle");
    if (bytes && (!ws || !lt_cuemu_is_device(ws, bytes)))
        return fail(CUBLAS_STATUS_INVALID_VALUE, call, "%p is not device memory covering %zu bytes", ws, bytes);
    if ((uintptr_t)ws % 256) return fail(CUBLAS_STATUS_INVALID_VALUE, call, "%p is not 256-byte aligned", ws);
    handle->ws = bytes ? ws : NULL;
    handle->ws_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetAtomicsMode(cublasHandle_t handle, cublasAtomicsMode_t mode) {
    if (!handle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetAtomicsMode", "NULL handle");
    if (mode != CUBLAS_ATOMICS_NOT_ALLOWED && mode != CUBLAS_ATOMICS_ALLOWED)
        return fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSetAtomicsMode", "mode %d", (int)mode);
    handle->atomics = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!handle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, "cublasSetMathMode", "NULL handle");
    const int base = (int)mode & ~(int)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    if (base != CUBLAS_DEFAULT_MATH && base != CUBLAS_PEDANTIC_MATH && base != CUBLAS_TF32_TENSOR_OP_MATH)
        return fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSetMathMode", "mode %d is not emulated", (int)mode);
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

static bool device_arg(const char *arg, const void *p, size_t bytes) {
    if (p && lt_cuemu_is_device(p, bytes)) return true;
    fprintf(stderr, "cuemu cublas: cublasSgemm: %s = %p is not device memory covering %zu bytes (a GPU would fault)\n",
            arg, p, bytes);
    return false;
}

/* Bytes of a column-major rows x cols matrix with leading dimension ld. */
static size_t extent(int rows, int cols, int ld) { return 4 * ((size_t)ld * (cols - 1) + rows); }

struct gemm_args {
    bool ta, tb, tf32;
    int m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
};

/* C = alpha * op(A) op(B) + beta * C, column-major; op(A)[i][p] is
 * A[i + p*lda] or, transposed, A[p + i*lda]. */
static void run_gemm(const gemm_args &g) {
    const bool read_ab = g.k > 0 && g.alpha != 0.0f;
    for (int j = 0; j < g.n; j++)
        for (int i = 0; i < g.m; i++) {
            float acc = 0.0f;
            if (read_ab)
                for (int p = 0; p < g.k; p++) {
                    float a = g.ta ? g.A[p + (size_t)i * g.lda] : g.A[i + (size_t)p * g.lda];
                    float b = g.tb ? g.B[j + (size_t)p * g.ldb] : g.B[p + (size_t)j * g.ldb];
                    if (g.tf32) {
                        a = lt_cuemu_tf32(a);
                        b = lt_cuemu_tf32(b);
                    }
                    acc += a * b;
                }
            float *c = &g.C[i + (size_t)j * g.ldc];
            float v = read_ab ? g.alpha * acc : 0.0f;
            if (g.beta != 0.0f) v += g.beta * *c;
            *c = v;
        }
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                              int k, const float *alpha, const float *A, int lda, const float *B, int ldb,
                              const float *beta, float *C, int ldc) {
    const char *call = "cublasSgemm";
    if (!handle) return fail(CUBLAS_STATUS_NOT_INITIALIZED, call, "NULL handle");
    const bool ops_ok = (transa == CUBLAS_OP_N || transa == CUBLAS_OP_T || transa == CUBLAS_OP_C) &&
                        (transb == CUBLAS_OP_N || transb == CUBLAS_OP_T || transb == CUBLAS_OP_C);
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    const int a_rows = ta ? k : m, b_rows = tb ? n : k;
    if (!ops_ok || m < 0 || n < 0 || k < 0 || lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) ||
        ldc < (m > 1 ? m : 1) || !alpha || !beta)
        return fail(CUBLAS_STATUS_INVALID_VALUE, call, "op %d/%d m=%d n=%d k=%d lda=%d ldb=%d ldc=%d%s", (int)transa,
                    (int)transb, m, n, k, lda, ldb, ldc, !alpha || !beta ? ", NULL alpha or beta" : "");
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    const float a = *alpha, b = *beta;
    if ((k == 0 || a == 0.0f) && b == 1.0f) return CUBLAS_STATUS_SUCCESS;   /* C unchanged */
    if (k > 0 && a != 0.0f &&
        (!device_arg("A", A, extent(a_rows, ta ? m : k, lda)) || !device_arg("B", B, extent(b_rows, tb ? k : n, ldb))))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!device_arg("C", C, extent(m, n, ldc))) return CUBLAS_STATUS_INVALID_VALUE;

    const int base = (int)handle->math & ~(int)CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION;
    const gemm_args g{ta, tb, base == CUBLAS_TF32_TENSOR_OP_MATH, m, n, k, lda, ldb, ldc, a, b, A, B, C};
    void *ws = handle->ws;
    size_t scratch = 4 * (size_t)m * n;
    if (scratch > handle->ws_bytes) scratch = handle->ws_bytes;
    cudaError_t e = lt_cuemu_enqueue(handle->stream, call, [g, ws, scratch]() {
        run_gemm(g);
        if (scratch) memset(ws, 0xff, scratch);
    });
    if (e != cudaSuccess) return fail(CUBLAS_STATUS_EXECUTION_FAILED, call, "queueing failed (cuda error %d)", (int)e);
    return CUBLAS_STATUS_SUCCESS;
}
