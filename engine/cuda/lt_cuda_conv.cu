/* lt_cuda_conv.cu — 2-D convolution through cuDNN 9's legacy convolution API
 * (cudnnConvolutionForward / BackwardData / BackwardFilter; present in
 * cuDNN 9, marked deprecated in favour of the graph API).
 *
 * Each (geometry, batch) gets a plan, made on first use and kept in the
 * context: tensor, filter and convolution descriptors (groups through
 * cudnnSetConvolutionGroupCount, weight layout [co][ci/groups][kh][kw] as
 * lt_conv_geom) and one algorithm per direction. Where they come from:
 *  - deterministic mode: the cuDNN heuristics (cudnnGet*Algorithm_v7: a
 *    pure function of the geometry, the GPU and the library, never a timing
 *    race, so a rerun picks the same kernels and gets the same bits);
 *  - otherwise: timed, as PyTorch's cudnn.benchmark (cudnnFind*Algorithm
 *    runs every algorithm once on buffers it allocates itself, so nothing
 *    of the caller's is overwritten; the list comes back fastest first).
 *    Timing can pick other kernels on another run, which is why only the
 *    non-deterministic mode does it. Not while the stream is captured into
 *    a CUDA graph (a search allocates and synchronises, which would
 *    invalidate the capture), and not when the search itself fails (out of
 *    memory for its buffers, say) or leaves no entry this context may use:
 *    the heuristics then, for that direction (describe says "partly
 *    timed" when some directions were timed and some not).
 * From either list (sized by cudnnGet*AlgorithmMaxCount) the first entry that
 *  - is deterministic, in deterministic mode;
 *  - uses FMA math only, in FP32 mode (no TF32 tensor cores, as PyTorch
 *    with allow_tf32 off), and never ALLOW_CONVERSION (fp16) in TF32 mode;
 *  - needs at most LT_CUDA_CONV_WS_CAP bytes of workspace;
 * else the classic deterministic FMA algorithms (forward IMPLICIT_GEMM,
 * backward ALGO_1).
 * The bias add and the bias gradient are the library's own kernels (the
 * gradient a fixed-order double reduction, no atomics).
 *
 * NHWC (lt_layout): x, y, dx, dy are [N][H][W][C] and the plan's
 * descriptors say so, the filter descriptor included: cuDNN's tensor-core
 * kernels want the filter as [co][kh][kw][ci] too (PyTorch's channels_last
 * converts its weights as well). The caller's weights and weight gradients
 * stay [co][ci][kh][kw], so that the optimizer, checkpoints and every
 * host copy see one layout: each call converts w into scratch behind
 * cuDNN's workspace (lt_cuda_layout_convert), and the filter gradient is
 * computed into scratch and added into dw converted back. A 1x1 filter is
 * the same bytes in both orders and is used as is. */
#include "lt_cuda_conv_rules.h"
#include "lt_cuda_impl.h"

#include <stdio.h>
#include <stdlib.h>

static int layout_ok(lt_layout l) { return l == LT_LAYOUT_NCHW || l == LT_LAYOUT_NHWC; }
static cudnnTensorFormat_t fmt(lt_layout l) { return l == LT_LAYOUT_NHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW; }

static int same_geom(const lt_conv_geom *a, const lt_conv_geom *b) {
    return a->ci == b->ci && a->h == b->h && a->w == b->w && a->co == b->co && a->kh == b->kh && a->kw == b->kw &&
           a->stride == b->stride && a->pad == b->pad && a->groups == b->groups;
}

/* lt_cuda_conv_rules.h says which math types a mode allows */
static int math_ok(const lt_cuda_ctx *ctx, cudnnMathType_t m) { return lt_cuda_conv_math_ok(ctx->math == LT_CUDA_TF32, m); }

/* The index of the first entry of a perf list (sorted best-first) that this
 * context may use, or -1. */
#define PICK(perf, n, best)                                                                     \
    do {                                                                                        \
        (best) = -1;                                                                            \
        for (int i_ = 0; i_ < (n) && (best) < 0; i_++) {                                        \
            if ((perf)[i_].status != CUDNN_STATUS_SUCCESS) continue;                            \
            if (ctx->deterministic && (perf)[i_].determinism != CUDNN_DETERMINISTIC) continue;  \
            if (!math_ok(ctx, (perf)[i_].mathType)) continue;                                   \
            if ((perf)[i_].memory > LT_CUDA_CONV_WS_CAP) continue;                              \
            (best) = i_;                                                                        \
        }                                                                                       \
    } while (0)

/* One direction's pick into perf / best: from the search FIND (a
 * cudnnFind* call) when `timed` and it leaves an entry this context may
 * use (then bit `bit` of p->timed is set), else from the heuristic query
 * HEUR (a cudnnGet*_v7 call; its failure is the plan's). */
#define CHOOSE(perf, bit, FIND, HEUR, what)                                  \
    do {                                                                     \
        best = -1;                                                           \
        if (timed) {                                                         \
            if ((FIND) == CUDNN_STATUS_SUCCESS) PICK(perf, n, best);         \
            search_done();                                                   \
        }                                                                    \
        if (best >= 0) {                                                     \
            p->timed |= (bit);                                               \
        } else {                                                             \
            LT_DNN(HEUR, what);                                              \
            PICK(perf, n, best);                                             \
        }                                                                    \
    } while (0)

/* How many entries a heuristic query may return: one per (algorithm, math
 * type), more than the *_ALGO_COUNT constants; at most LT_CUDA_PERF_MAX. */
#define LT_CUDA_PERF_MAX 64
static int perf_count(int max_count) { return max_count < 1 ? 1 : max_count > LT_CUDA_PERF_MAX ? LT_CUDA_PERF_MAX : max_count; }

static void plan_destroy(struct lt_cuda_conv_plan *p) {
    if (!p) return;
    if (p->xd) cudnnDestroyTensorDescriptor(p->xd);
    if (p->yd) cudnnDestroyTensorDescriptor(p->yd);
    if (p->wd) cudnnDestroyFilterDescriptor(p->wd);
    if (p->cd) cudnnDestroyConvolutionDescriptor(p->cd);
    free(p);
}

/* The status of a workspace query: for a heuristic pick its failure is not
 * fatal (the entry's own size stands, q = 0); for the fallback algorithm,
 * which has no entry, it is. */
static int ws_query(cudnnStatus_t st, int best, const char *what, size_t *q) {
    if (st == CUDNN_STATUS_SUCCESS) return LT_OK;
    *q = 0;
    return best >= 0 ? LT_OK : lt_cuda_dnn_err(st, what);
}

/* After a search: its trial allocations that failed (an algorithm wanting
 * more workspace than is free) leave the runtime's last error set, which
 * the next kernel's launch check would report as its own. */
static void search_done(void) { (void)cudaGetLastError(); }

static int plan_build(lt_cuda_ctx *ctx, lt_layout layout, const lt_conv_geom *g, int N, struct lt_cuda_conv_plan *p) {
    p->g = *g;
    p->N = N;
    p->layout = layout;
    LT_DNN(cudnnCreateTensorDescriptor(&p->xd), "create tensor descriptor");
    LT_DNN(cudnnCreateTensorDescriptor(&p->yd), "create tensor descriptor");
    LT_DNN(cudnnCreateFilterDescriptor(&p->wd), "create filter descriptor");
    LT_DNN(cudnnCreateConvolutionDescriptor(&p->cd), "create convolution descriptor");
    LT_DNN(cudnnSetTensor4dDescriptor(p->xd, fmt(layout), CUDNN_DATA_FLOAT, N, g->ci, g->h, g->w), "input descriptor");
    LT_DNN(cudnnSetTensor4dDescriptor(p->yd, fmt(layout), CUDNN_DATA_FLOAT, N, g->co, g->ho, g->wo), "output descriptor");
    LT_DNN(cudnnSetFilter4dDescriptor(p->wd, CUDNN_DATA_FLOAT, fmt(layout), g->co, g->ci / g->groups, g->kh, g->kw),
           "filter descriptor");
    LT_DNN(cudnnSetConvolution2dDescriptor(p->cd, g->pad, g->pad, g->stride, g->stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT),
           "convolution descriptor");
    LT_DNN(cudnnSetConvolutionGroupCount(p->cd, g->groups), "group count");
    LT_DNN(cudnnSetConvolutionMathType(p->cd, ctx->math == LT_CUDA_TF32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH),
           "math type");
    int n_out = 0, ho = 0, wo = 0, co = 0;
    LT_DNN(cudnnGetConvolution2dForwardOutputDim(p->cd, p->xd, p->wd, &n_out, &co, &ho, &wo), "output size");
    if (n_out != N || co != g->co || ho != g->ho || wo != g->wo)
        return lt_err(LT_ESHAPE, "cudnn: output %dx%dx%dx%d, geometry says %dx%dx%dx%d", n_out, co, ho, wo, N, g->co,
                      g->ho, g->wo);

    /* When no heuristic entry qualifies: the classic FMA algorithms, each
     * deterministic and fp32 (forward IMPLICIT_GEMM, backward ALGO_1). Either
     * way the workspace is the larger of the entry's and what
     * cudnnGet*WorkspaceSize says for the chosen algorithm under its math
     * type (the size the call is checked against; ws_query). The heuristic
     * queries run under the context's math type. */
    const cudnnMathType_t heur_math = ctx->math == LT_CUDA_TF32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
    int n = 0, max = 0, best = -1;
    size_t q = 0;

    /* timed (cudnnFind) or not: the file's comment says when */
    const int timed = !ctx->deterministic && !lt_cuda_capturing(ctx);   /* a failed query: no search either */
    p->timed = 0;

    LT_DNN(cudnnGetConvolutionForwardAlgorithmMaxCount(ctx->dnn, &max), "forward algorithm count");
    cudnnConvolutionFwdAlgoPerf_t pf[LT_CUDA_PERF_MAX];
    CHOOSE(pf, 1, cudnnFindConvolutionForwardAlgorithm(ctx->dnn, p->xd, p->wd, p->cd, p->yd, perf_count(max), &n, pf),
           cudnnGetConvolutionForwardAlgorithm_v7(ctx->dnn, p->xd, p->wd, p->cd, p->yd, perf_count(max), &n, pf),
           "forward algorithm");
    p->fwd = best >= 0 ? pf[best].algo : CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    p->fwd_math = best >= 0 ? pf[best].mathType : CUDNN_FMA_MATH;
    LT_DNN(cudnnSetConvolutionMathType(p->cd, p->fwd_math), "math type");
    LT_TRY(ws_query(cudnnGetConvolutionForwardWorkspaceSize(ctx->dnn, p->xd, p->wd, p->cd, p->yd, p->fwd, &q), best,
                    "forward workspace", &q));
    p->ws_fwd = best >= 0 && pf[best].memory > q ? pf[best].memory : q;
    LT_DNN(cudnnSetConvolutionMathType(p->cd, heur_math), "math type");

    LT_DNN(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(ctx->dnn, &max), "backward-data algorithm count");
    cudnnConvolutionBwdDataAlgoPerf_t pd[LT_CUDA_PERF_MAX];
    CHOOSE(pd, 2,
           cudnnFindConvolutionBackwardDataAlgorithm(ctx->dnn, p->wd, p->yd, p->cd, p->xd, perf_count(max), &n, pd),
           cudnnGetConvolutionBackwardDataAlgorithm_v7(ctx->dnn, p->wd, p->yd, p->cd, p->xd, perf_count(max), &n, pd),
           "backward-data algorithm");
    p->bwd_data = best >= 0 ? pd[best].algo : CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    p->bwd_data_math = best >= 0 ? pd[best].mathType : CUDNN_FMA_MATH;
    LT_DNN(cudnnSetConvolutionMathType(p->cd, p->bwd_data_math), "math type");
    LT_TRY(ws_query(cudnnGetConvolutionBackwardDataWorkspaceSize(ctx->dnn, p->wd, p->yd, p->cd, p->xd, p->bwd_data, &q),
                    best, "backward-data workspace", &q));
    p->ws_bwd_data = best >= 0 && pd[best].memory > q ? pd[best].memory : q;
    LT_DNN(cudnnSetConvolutionMathType(p->cd, heur_math), "math type");

    LT_DNN(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(ctx->dnn, &max), "backward-filter algorithm count");
    cudnnConvolutionBwdFilterAlgoPerf_t pw[LT_CUDA_PERF_MAX];
    CHOOSE(pw, 4,
           cudnnFindConvolutionBackwardFilterAlgorithm(ctx->dnn, p->xd, p->yd, p->cd, p->wd, perf_count(max), &n, pw),
           cudnnGetConvolutionBackwardFilterAlgorithm_v7(ctx->dnn, p->xd, p->yd, p->cd, p->wd, perf_count(max), &n, pw),
           "backward-filter algorithm");
    p->bwd_filter = best >= 0 ? pw[best].algo : CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    p->bwd_filter_math = best >= 0 ? pw[best].mathType : CUDNN_FMA_MATH;
    LT_DNN(cudnnSetConvolutionMathType(p->cd, p->bwd_filter_math), "math type");
    LT_TRY(ws_query(cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx->dnn, p->xd, p->yd, p->cd, p->wd, p->bwd_filter,
                                                                   &q),
                    best, "backward-filter workspace", &q));
    p->ws_bwd_filter = best >= 0 && pw[best].memory > q ? pw[best].memory : q;
    if (p->ws_fwd > LT_CUDA_CONV_WS_CAP || p->ws_bwd_data > LT_CUDA_CONV_WS_CAP || p->ws_bwd_filter > LT_CUDA_CONV_WS_CAP)
        return lt_err(LT_EDEVICE, "cudnn: conv %dx%d s%d p%d g%d %d->%d %dx%d N=%d needs over %zu bytes of workspace",
                      g->kh, g->kw, g->stride, g->pad, g->groups, g->ci, g->co, g->h, g->w, N,
                      (size_t)LT_CUDA_CONV_WS_CAP);
    return LT_OK;
}

static int get_plan(lt_cuda_ctx *ctx, lt_layout layout, const lt_conv_geom *g, int N, struct lt_cuda_conv_plan **out) {
    if (!g || N <= 0) return lt_err(LT_EINVAL, "cuda conv: NULL geometry or N=%d", N);
    if (!layout_ok(layout)) return lt_err(LT_EINVAL, "cuda conv: layout %d", (int)layout);
    if (g->groups <= 0 || g->ci % g->groups || g->co % g->groups || g->ho <= 0 || g->wo <= 0)
        return lt_err(LT_ESHAPE, "cuda conv: geometry not initialised (lt_conv_geom_init)");
    for (struct lt_cuda_conv_plan *p = ctx->plans; p; p = p->next)
        if (p->N == N && p->layout == layout && same_geom(&p->g, g)) { *out = p; return LT_OK; }
    struct lt_cuda_conv_plan *p = (struct lt_cuda_conv_plan *)calloc(1, sizeof *p);
    if (!p) return lt_err(LT_ENOMEM, "cuda conv: out of host memory");
    int rc = plan_build(ctx, layout, g, N, p);
    if (rc != LT_OK) {
        plan_destroy(p);
        return rc;
    }
    p->next = ctx->plans;
    ctx->plans = p;
    *out = p;
    return LT_OK;
}

/* NHWC scratch behind cuDNN's workspace of `ws` bytes: the filter as
 * [co][kh][kw][ci] (and, for the backward, its gradient) -- none for a 1x1
 * filter or NCHW, whose weights cuDNN reads as they are. */
static size_t wt_floats(const struct lt_cuda_conv_plan *p) {
    const lt_conv_geom *g = &p->g;
    if (p->layout != LT_LAYOUT_NHWC || g->kh * g->kw == 1) return 0;
    return (size_t)g->co * (g->ci / g->groups) * g->kh * g->kw;
}
static size_t wt_offset(size_t ws) { return (ws + 255) & ~(size_t)255; }

/* w in cuDNN's order for the plan: w itself, or converted into *wt. */
static int filter_for(lt_cuda_ctx *ctx, const struct lt_cuda_conv_plan *p, const float *w, float *wt, const float **out) {
    *out = w;
    if (!wt) return LT_OK;
    const lt_conv_geom *g = &p->g;
    LT_TRY(lt_cuda_layout_convert(ctx, LT_LAYOUT_NHWC, g->co, g->ci / g->groups, g->kh * g->kw, w, wt, 0));
    *out = wt;
    return LT_OK;
}

int lt_cuda_conv2d_forward(lt_cuda_ctx *ctx, lt_layout layout, const lt_conv_geom *g, int N, const float *x, const float *w,
                           const float *b, float *y) {
    LT_CTX(ctx);
    struct lt_cuda_conv_plan *p;
    LT_TRY(get_plan(ctx, layout, g, N, &p));
    const size_t nwt = wt_floats(p), off = wt_offset(p->ws_fwd);
    LT_TRY(lt_cuda_ws_reserve(ctx, nwt ? off + nwt * sizeof(float) : p->ws_fwd));
    const float *wc;
    LT_TRY(filter_for(ctx, p, w, nwt ? (float *)((char *)ctx->ws + off) : NULL, &wc));
    const float one = 1.0f, zero = 0.0f;
    LT_DNN(cudnnSetConvolutionMathType(p->cd, p->fwd_math), "math type");
    LT_DNN(cudnnConvolutionForward(ctx->dnn, &one, p->xd, x, p->wd, wc, p->cd, p->fwd, ctx->ws, p->ws_fwd, &zero, p->yd, y),
           "convolution forward");
    if (b) LT_TRY(lt_cuda_bias_add(ctx, layout, N, g->co, (size_t)g->ho * g->wo, b, y));
    return LT_OK;
}

/* dw += the filter gradient, on `stream` with its cuDNN handle and
 * workspace: into dw directly, or (NHWC, dwt set) into dwt's
 * [co][kh][kw][ci] (=) and then added into dw in dw's order. */
static int filter_grad(lt_cuda_ctx *ctx, const struct lt_cuda_conv_plan *p, cudnnHandle_t dnn, cudaStream_t stream,
                       void *ws, float *dwt, const float *x, const float *dy, float *dw) {
    const lt_conv_geom *g = &p->g;
    const float one = 1.0f, zero = 0.0f;
    LT_DNN(cudnnSetConvolutionMathType(p->cd, p->bwd_filter_math), "math type");
    LT_DNN(cudnnConvolutionBackwardFilter(dnn, &one, p->xd, x, p->yd, dy, p->cd, p->bwd_filter, ws, p->ws_bwd_filter,
                                          dwt ? &zero : &one, p->wd, dwt ? dwt : dw),
           "convolution backward filter");
    if (dwt)
        LT_TRY(lt_cuda_layout_convert_on(ctx, stream, LT_LAYOUT_NCHW, g->co, g->ci / g->groups, g->kh * g->kw, dwt, dw,
                                         1));
    return LT_OK;
}

/* The filter gradient on the filter-gradient stream (lt_cuda.h): it
 * starts where the compute stream stands (dy complete), reads x and dy,
 * which nothing overwrites before the join (a model's backward writes each
 * node's dy before that node's backward and never again, and no
 * activation), and writes only dw (NHWC: through the side workspace). */
static int filter_grad_on_side(lt_cuda_ctx *ctx, const struct lt_cuda_conv_plan *p, const float *x, const float *dy,
                               float *dw, size_t nwt) {
    const size_t off = wt_offset(p->ws_bwd_filter);
    LT_TRY(lt_cuda_ws_side_reserve(ctx, nwt ? off + nwt * sizeof(float) : p->ws_bwd_filter));
    LT_CU(cudaEventRecord(ctx->ev_fork, ctx->stream), "filter-gradient stream: fork (record)");
    LT_CU(cudaStreamWaitEvent(ctx->side, ctx->ev_fork, 0), "filter-gradient stream: fork (wait)");
    ctx->side_busy = 1;
    return filter_grad(ctx, p, ctx->dnn_side, ctx->side, ctx->ws_side,
                       nwt ? (float *)((char *)ctx->ws_side + off) : NULL, x, dy, dw);
}

int lt_cuda_conv2d_backward(lt_cuda_ctx *ctx, lt_layout layout, const lt_conv_geom *g, int N, const float *x, const float *w,
                            const float *dy, float *dx, float *dw, float *db, int set_dx) {
    LT_CTX(ctx);
    struct lt_cuda_conv_plan *p;
    LT_TRY(get_plan(ctx, layout, g, N, &p));
    /* first: the bias gradient may grow (move) the workspace that the
     * scratch pointers below point into */
    if (db) LT_TRY(lt_cuda_bias_grad(ctx, layout, N, g->co, (size_t)g->ho * g->wo, dy, db));
    /* the filter gradient here, or on the filter-gradient stream (which
     * has a workspace of its own) */
    const int dw_here = dw && !ctx->wgrad_on;
    /* NHWC scratch: [converted w | the filter gradient computed here],
     * behind the larger of this stream's directions' workspaces, each
     * 256-byte aligned as cuDNN's other pointers are */
    const size_t nwt = wt_floats(p);
    const size_t ws_here = dw_here && p->ws_bwd_filter > p->ws_bwd_data ? p->ws_bwd_filter : p->ws_bwd_data;
    const size_t off = wt_offset(ws_here);
    const size_t off2 = wt_offset(off + nwt * sizeof(float));
    float *wt = NULL, *dwt = NULL;
    if (nwt && (dw_here || dx)) {
        LT_TRY(lt_cuda_ws_reserve(ctx, dw_here ? off2 + nwt * sizeof(float) : off + nwt * sizeof(float)));
        wt = (float *)((char *)ctx->ws + off);
        if (dw_here) dwt = (float *)((char *)ctx->ws + off2);
    }
    if (dw_here) {
        LT_TRY(lt_cuda_ws_reserve(ctx, p->ws_bwd_filter));
        LT_TRY(filter_grad(ctx, p, ctx->dnn, ctx->stream, ctx->ws, dwt, x, dy, dw));
    } else if (dw) {
        LT_TRY(filter_grad_on_side(ctx, p, x, dy, dw, nwt));
    }
    if (dx) {
        const float one = 1.0f, zero = 0.0f;
        LT_TRY(lt_cuda_ws_reserve(ctx, p->ws_bwd_data));
        const float *wc;
        LT_TRY(filter_for(ctx, p, w, wt, &wc));
        LT_DNN(cudnnSetConvolutionMathType(p->cd, p->bwd_data_math), "math type");
        LT_DNN(cudnnConvolutionBackwardData(ctx->dnn, &one, p->wd, wc, p->yd, dy, p->cd, p->bwd_data, ctx->ws,
                                            p->ws_bwd_data, set_dx ? &zero : &one, p->xd, dx),
               "convolution backward data");
    }
    return LT_OK;
}

/* ---- what was chosen -------------------------------------------------------------- */
static const char *fwd_name(cudnnConvolutionFwdAlgo_t a) {
    switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "IMPLICIT_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "IMPLICIT_PRECOMP_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "DIRECT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "FFT_TILING";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    default: return "?";
    }
}
static const char *bwd_data_name(cudnnConvolutionBwdDataAlgo_t a) {
    switch (a) {
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return "ALGO_0";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: return "ALGO_1";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING: return "FFT_TILING";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    default: return "?";
    }
}
static const char *bwd_filter_name(cudnnConvolutionBwdFilterAlgo_t a) {
    switch (a) {
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return "ALGO_0";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: return "ALGO_1";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT: return "FFT";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3: return "ALGO_3";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD: return "WINOGRAD";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING: return "FFT_TILING";
    default: return "?";
    }
}
static const char *math_name(cudnnMathType_t m) {
    switch (m) {
    case CUDNN_DEFAULT_MATH: return "DEFAULT";
    case CUDNN_TENSOR_OP_MATH: return "TENSOR_OP";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "TENSOR_OP_ALLOW_CONVERSION";
    case CUDNN_FMA_MATH: return "FMA";
    default: return "?";
    }
}

int lt_cuda_conv_plans_describe(const lt_cuda_ctx *ctx, char *buf, size_t cap) {
    if (buf && cap) buf[0] = 0;
    if (!ctx) return -1;
    int n = 0;
    for (const struct lt_cuda_conv_plan *p = ctx->plans; p; p = p->next) n++;
    size_t used = 0;
    /* the list is newest first: walk it from the end */
    for (int k = n - 1; k >= 0 && buf && cap; k--) {
        const struct lt_cuda_conv_plan *p = ctx->plans;
        for (int j = 0; j < k; j++) p = p->next;
        const lt_conv_geom *g = &p->g;
        const int w = snprintf(buf + used, cap - used,
                               "conv %dx%d s%d p%d g%d %d->%d %dx%d N=%d%s: fwd %s/%s %zu KiB, bwd-data %s/%s %zu KiB, "
                               "bwd-filter %s/%s %zu KiB (%s)\n",
                               g->kh, g->kw, g->stride, g->pad, g->groups, g->ci, g->co, g->h, g->w, p->N,
                               p->layout == LT_LAYOUT_NHWC ? " nhwc" : "",
                               fwd_name(p->fwd), math_name(p->fwd_math), p->ws_fwd >> 10, bwd_data_name(p->bwd_data),
                               math_name(p->bwd_data_math), p->ws_bwd_data >> 10, bwd_filter_name(p->bwd_filter),
                               math_name(p->bwd_filter_math), p->ws_bwd_filter >> 10,
                               p->timed == 7 ? "timed" : p->timed ? "partly timed" : "heuristic");
        if (w < 0 || (size_t)w >= cap - used) {   /* the rest does not fit: no partial line */
            buf[used] = 0;
            break;
        }
        used += (size_t)w;
    }
    return n;
}
