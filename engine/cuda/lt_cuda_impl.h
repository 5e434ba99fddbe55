/* lt_cuda_impl.h — the context struct and helpers shared by the lt_cuda_*.cu
 * files (CUDA C++; never included from C). */
#ifndef LT_CUDA_IMPL_H
#define LT_CUDA_IMPL_H

#include "lt_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

/* One cached convolution: descriptors and algorithms of a (geometry, N). */
struct lt_cuda_conv_plan {
    lt_conv_geom g;
    int N;
    lt_layout layout;   /* of x / y (and of the filter descriptor: NHWC = [co][kh][kw][ci]) */
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    cudnnMathType_t fwd_math, bwd_data_math, bwd_filter_math;
    size_t ws_fwd, ws_bwd_data, ws_bwd_filter;
    int timed;   /* bits 1 / 2 / 4: fwd / bwd-data / bwd-filter chosen by cudnnFind (lt_cuda_conv.cu) */
    struct lt_cuda_conv_plan *next;
};

/* Most channels a batch-norm call takes (its grid's y extent). */
#define LT_CUDA_BN_MAX_C 65535

struct lt_cuda_ctx {
    int device;
    lt_cuda_math math;
    int deterministic;
    cudaStream_t stream;
    cudnnHandle_t dnn;
    cublasHandle_t blas;
    void *ws;          /* workspace (cuDNN, scratch of the own kernels) */
    size_t ws_bytes;
    void *small;       /* a few bytes for loss values and status words */
    unsigned *bn_count;   /* LT_CUDA_BN_MAX_C per-channel arrival counters of batch norm, zero at rest */
    struct lt_cuda_conv_plan *plans;
    char desc[512];
    lt_backend_info info;   /* read once in lt_cuda_create (lt_cuda_get_info) */
    /* training step (issue 20, B): ws_gen counts reallocations of ws (a
     * captured graph holds ws's address); blas_ws is the explicit cuBLAS
     * workspace that makes cuBLAS capturable (lt_cuda_graph_prepare) */
    unsigned long ws_gen;
    void *blas_ws;
    /* the filter-gradient stream (lt_cuda_set_wgrad_stream): cuDNN's
     * backward-filter calls on a stream of their own, with their own handle
     * and workspace (ws_side; its growth changes ws_gen too), forked from
     * `stream` at each convolution's backward (ev_fork) and joined back by
     * lt_cuda_join (ev_join) */
    int wgrad_on;
    int side_busy;   /* work queued on side since the last join */
    cudaStream_t side;
    cudnnHandle_t dnn_side;
    cudaEvent_t ev_fork, ev_join;
    void *ws_side;
    size_t ws_side_bytes;
};

/* Status helpers: each turns a failed call into the engine's error. */
int lt_cuda_rt_err(cudaError_t e, const char *what);
int lt_cuda_dnn_err(cudnnStatus_t s, const char *what);
int lt_cuda_blas_err(cublasStatus_t s, const char *what);
/* The error of the last launch (cudaGetLastError). */
int lt_cuda_launch_check(const char *what);
/* Grows the context's workspace to at least `bytes` (waits for the
 * context's streams before freeing the old one). */
int lt_cuda_ws_reserve(lt_cuda_ctx *ctx, size_t bytes);
/* 1 when the context's stream is being captured into a CUDA graph (or the
 * query fails). Only this stream: the library captures nothing else, and a
 * capture on another stream of the same thread (thread-local mode) would
 * be invalidated by what this guards as well. */
int lt_cuda_capturing(const lt_cuda_ctx *ctx);
/* The same for the filter-gradient stream's workspace. */
int lt_cuda_ws_side_reserve(lt_cuda_ctx *ctx, size_t bytes);
/* lt_cuda_layout_convert on a given stream (the filter-gradient stream's
 * conversion of an NHWC filter gradient). */
int lt_cuda_layout_convert_on(lt_cuda_ctx *ctx, cudaStream_t stream, lt_layout to, int N, int C, int HW,
                              const float *src, float *dst, int accumulate);

/* Kernels other files call (lt_cuda_ops.cu): y[n][c][p] += b[c]; and
 * db[c] += sum over n, p of dy[n][c][p] (double, fixed order), with
 * y / dy in `layout` ([N][P][C] for LT_LAYOUT_NHWC; P = the output's
 * pixels). NHWC's gradient is batch norm's split reduction: it uses the
 * context workspace and arrival counters, and refuses over 2^31 rows
 * (N*P) with LT_ESHAPE. */
int lt_cuda_bias_add(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, size_t P, const float *b, float *y);
int lt_cuda_bias_grad(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, size_t P, const float *dy, float *db);

#define LT_CU(call, what) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) return lt_cuda_rt_err(e_, what); } while (0)
#define LT_DNN(call, what) do { cudnnStatus_t s_ = (call); if (s_ != CUDNN_STATUS_SUCCESS) return lt_cuda_dnn_err(s_, what); } while (0)
#define LT_BLAS(call, what) do { cublasStatus_t s_ = (call); if (s_ != CUBLAS_STATUS_SUCCESS) return lt_cuda_blas_err(s_, what); } while (0)
#define LT_CTX(ctx) do { if (!(ctx)) return lt_err(LT_EINVAL, "cuda: NULL context"); } while (0)

/* Grid of 1-D elementwise launches: enough blocks for n, capped (the
 * kernels stride over the rest). */
static inline unsigned lt_cuda_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535u * 8u) b = 65535u * 8u;
    return (unsigned)b;
}

/* A kernel launch: LT_LAUNCH(k, grid, block, stream)(args...). With nvcc
 * the triple-chevron launch (no dynamic shared memory); in the CPU build of
 * this library (tests/cuemu, -DLT_CUEMU) a call that runs k once per
 * emulated thread, so the same source is tested without a GPU. */
#ifdef LT_CUEMU
#define LT_LAUNCH(k, grid, block, stream) lt_cuemu_launcher(k, #k, (grid), (block), 0, (stream))
#else
#define LT_LAUNCH(k, grid, block, stream) k<<<(grid), (block), 0, (stream)>>>
#endif

/* q = i / d, r = i % d: in 32 bits where both fit (a 64-bit division is a
 * long software sequence on the GPU, and the elementwise kernels would
 * spend more on it than on memory). */
__device__ static inline void lt_cuda_divmod(size_t i, size_t d, size_t *q, size_t *r) {
    if (i <= 0xffffffffu && d <= 0xffffffffu) {
        const unsigned a = (unsigned)i, b = (unsigned)d, qq = a / b;
        *q = qq;
        *r = a - qq * b;
    } else {
        *q = i / d;
        *r = i - *q * d;
    }
}

/* The element loop of those launches: thread i, then a grid's stride on. */
#define GRID_LOOP(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

#endif
