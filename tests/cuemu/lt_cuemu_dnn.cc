/* lt_cuemu_dnn.cc — the emulator's cuDNN (include/cudnn.h): the legacy
 * convolution API on the CPU, float tensors and filters in NCHW or NHWC,
 * so that engine/cuda's cuDNN call sequences run in the CPU test suite. A
 * test double written from cuDNN's documented semantics, not a copy of the
 * library: results are
 * plain direct convolutions, and the parts a caller can get wrong are made
 * to show, as they would on a GPU:
 *  - the work is queued on the handle's stream (lt_cuemu_enqueue) with the
 *    arguments copied at call time, so results appear at the stream's next
 *    synchronisation and a descriptor changed after the call does not matter;
 *  - every tensor and the workspace must be device memory covering its
 *    extent, and the workspace at least the chosen algorithm's size;
 *  - the queued work leaves garbage (0xff bytes: NaN as floats) over the
 *    workspace it was given, so nothing survives there between calls;
 *  - the algorithms cuDNN documents as non-deterministic (backward-data
 *    ALGO_0, backward-filter ALGO_0 and ALGO_3) sum in an order that changes
 *    on every run, the others in one fixed order;
 *  - the descriptor's math type at the time of the call decides TF32:
 *    tensor-op math rounds both inputs of every product (lt_cuemu_tf32);
 *  - a call's tensors and filter must share one format (all NCHW or all
 *    NHWC, as engine/cuda uses them): a mix is refused, NOT_SUPPORTED. An
 *    NHWC call sums the same terms in the same order as the NCHW one, so
 *    its result is the NCHW result transposed, bit for bit.
 * The heuristics return a short list per direction, best first, whose
 * entries differ in determinism, math type and workspace, so that a
 * caller's choice among them is exercised; the searches (cudnnFind*)
 * return another order (find(), below). */
#include <cudnn.h>

#include "lt_cuemu.h"

#include <algorithm>
#include <cmath>
#include <atomic>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>
#include <new>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lt_cuemu_dnn {
    cudaStream_t stream;
};
/* dims are always given (and kept) as n, c, h, w / k, c, h, w; fmt says
 * only how they lie in memory */
struct lt_cuemu_dnn_tensor {
    int set, n, c, h, w;
    cudnnTensorFormat_t fmt;
};
struct lt_cuemu_dnn_filter {
    int set, k, c, h, w;
    cudnnTensorFormat_t fmt;
};
struct lt_cuemu_dnn_conv {
    int set, pad_h, pad_w, u, v, dil_h, dil_w, groups;
    cudnnMathType_t math;
};

/* What one convolution call needs, copied into the queued work. */
struct geom {
    int N, C, H, W;      /* input */
    int K, kh, kw;       /* filter: K x C/G x kh x kw */
    int G, ph, pw, u, v, dh, dw;
    int ho, wo;          /* output */
    int nhwc;            /* every tensor and the filter NHWC, else all NCHW */
};

enum dir { FWD, BWD_DATA, BWD_FILTER };

static cudnnStatus_t fail(cudnnStatus_t s, const char *call, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cuemu cudnn: %s: ", call);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return s;
}

/* ---- library, handle --------------------------------------------------------------- */
/* The emulator's own version number (cuDNN 9.10.0), not a real library's. */
size_t cudnnGetVersion(void) { return 91000; }

const char *cudnnGetErrorString(cudnnStatus_t s) {
    switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED: return "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
    }
    return "CUDNN_UNKNOWN_STATUS_FOUND";
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *handle) {
    if (!handle) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreate", "NULL handle pointer");
    if (int f = lt_cuemu_fault_hit("cudnnCreate")) return (cudnnStatus_t)f;
    *handle = new (std::nothrow) lt_cuemu_dnn();
    if (!*handle) return CUDNN_STATUS_ALLOC_FAILED;
    lt_cuemu_dnn_live_add(1);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
    if (handle) lt_cuemu_dnn_live_add(-1);
    delete handle;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t s) {
    if (!handle) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetStream", "NULL handle");
    if (int f = lt_cuemu_fault_hit("cudnnSetStream")) return (cudnnStatus_t)f;
    handle->stream = s;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- descriptors ------------------------------------------------------------------- */
#define CREATE_DESC(fn, T, what)                                                          \
    cudnnStatus_t fn(T *d) {                                                              \
        if (!d) return fail(CUDNN_STATUS_BAD_PARAM, #fn, "NULL " what " pointer");        \
        *d = new (std::nothrow) std::remove_pointer<T>::type();                           \
        return *d ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_ALLOC_FAILED;                     \
    }
CREATE_DESC(cudnnCreateTensorDescriptor, cudnnTensorDescriptor_t, "descriptor")
CREATE_DESC(cudnnCreateFilterDescriptor, cudnnFilterDescriptor_t, "descriptor")

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
    if (!d) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateConvolutionDescriptor", "NULL descriptor pointer");
    *d = new (std::nothrow) lt_cuemu_dnn_conv();
    if (!*d) return CUDNN_STATUS_ALLOC_FAILED;
    (*d)->groups = 1;
    (*d)->math = CUDNN_DEFAULT_MATH;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { delete d; return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { delete d; return CUDNN_STATUS_SUCCESS; }
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) { delete d; return CUDNN_STATUS_SUCCESS; }

/* LT_CUEMU_DNN_FORMAT=nchw or nhwc: descriptors of the other format are
 * refused (NOT_SUPPORTED), so that a test can tell which layout a whole
 * run's convolutions were described in -- the numbers cannot tell, NHWC
 * being NCHW bit for bit here. */
static cudnnStatus_t format_allowed(const char *call, cudnnTensorFormat_t f) {
    const char *v = getenv("LT_CUEMU_DNN_FORMAT");
    if (!v || !v[0]) return CUDNN_STATUS_SUCCESS;
    if (strcmp(v, "nhwc") && strcmp(v, "nchw"))
        return fail(CUDNN_STATUS_BAD_PARAM, call, "LT_CUEMU_DNN_FORMAT=%s: expected nchw or nhwc", v);
    const cudnnTensorFormat_t only = !strcmp(v, "nhwc") ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    if (f == only) return CUDNN_STATUS_SUCCESS;
    return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "format %s refused: LT_CUEMU_DNN_FORMAT=%s",
                f == CUDNN_TENSOR_NHWC ? "NHWC" : "NCHW", v);
}

static cudnnStatus_t format_float(const char *call, cudnnTensorFormat_t f, cudnnDataType_t t) {
    if (f != CUDNN_TENSOR_NCHW && f != CUDNN_TENSOR_NHWC)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "format %d: only NCHW and NHWC are emulated", (int)f);
    cudnnStatus_t s = format_allowed(call, f);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    if (t != CUDNN_DATA_FLOAT) return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "data type %d: only FLOAT is emulated", (int)t);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type,
                                         int n, int c, int h, int w) {
    const char *call = "cudnnSetTensor4dDescriptor";
    if (!d) return fail(CUDNN_STATUS_BAD_PARAM, call, "NULL descriptor");
    cudnnStatus_t s = format_float(call, format, type);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return fail(CUDNN_STATUS_BAD_PARAM, call, "dims %dx%dx%dx%d", n, c, h, w);
    *d = lt_cuemu_dnn_tensor{1, n, c, h, w, format};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
    const char *call = "cudnnSetFilter4dDescriptor";
    if (!d) return fail(CUDNN_STATUS_BAD_PARAM, call, "NULL descriptor");
    cudnnStatus_t s = format_float(call, format, type);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    if (k <= 0 || c <= 0 || h <= 0 || w <= 0) return fail(CUDNN_STATUS_BAD_PARAM, call, "dims %dx%dx%dx%d", k, c, h, w);
    *d = lt_cuemu_dnn_filter{1, k, c, h, w, format};
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dil_h, int dil_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t computeType) {
    const char *call = "cudnnSetConvolution2dDescriptor";
    if (!d) return fail(CUDNN_STATUS_BAD_PARAM, call, "NULL descriptor");
    if ((int)mode == 0) return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "CUDNN_CONVOLUTION mode is not emulated");
    if (mode != CUDNN_CROSS_CORRELATION) return fail(CUDNN_STATUS_BAD_PARAM, call, "mode %d", (int)mode);
    if (computeType != CUDNN_DATA_FLOAT)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "compute type %d: only FLOAT is emulated", (int)computeType);
    if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dil_h <= 0 || dil_w <= 0)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "pad %d,%d stride %d,%d dilation %d,%d", pad_h, pad_w, u, v, dil_h,
                    dil_w);
    d->set = 1;
    d->pad_h = pad_h;
    d->pad_w = pad_w;
    d->u = u;
    d->v = v;
    d->dil_h = dil_h;
    d->dil_w = dil_w;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
    if (!d || groups <= 0) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolutionGroupCount", "group count %d", groups);
    d->groups = groups;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
    if (!d || (m != CUDNN_DEFAULT_MATH && m != CUDNN_TENSOR_OP_MATH && m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
               m != CUDNN_FMA_MATH))
        return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolutionMathType", "math type %d", (int)m);
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}

/* The geometry of (x, w, conv), checked as cuDNN documents: set descriptors,
 * filter C * groups == input C, K divisible by groups, a dilated kernel that
 * fits the padded input. */
static cudnnStatus_t geometry(const char *call, const lt_cuemu_dnn_tensor *x, const lt_cuemu_dnn_filter *w,
                              const lt_cuemu_dnn_conv *cd, geom *g) {
    if (!x || !x->set) return fail(CUDNN_STATUS_BAD_PARAM, call, "input tensor descriptor NULL or not set");
    if (!w || !w->set) return fail(CUDNN_STATUS_BAD_PARAM, call, "filter descriptor NULL or not set");
    if (!cd || !cd->set) return fail(CUDNN_STATUS_BAD_PARAM, call, "convolution descriptor NULL or not set");
    if ((long)w->c * cd->groups != x->c || w->k % cd->groups)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "filter %dx%d, %d groups, input with %d channels", w->k, w->c,
                    cd->groups, x->c);
    const long eh = (long)cd->dil_h * (w->h - 1) + 1, ew = (long)cd->dil_w * (w->w - 1) + 1;
    if (x->h + 2L * cd->pad_h < eh || x->w + 2L * cd->pad_w < ew)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "dilated %ldx%ld kernel larger than the padded %dx%d input", eh, ew,
                    x->h, x->w);
    *g = geom{x->n, x->c, x->h, x->w, w->k, w->h, w->w, cd->groups, cd->pad_h, cd->pad_w, cd->u, cd->v, cd->dil_h,
              cd->dil_w, (int)((x->h + 2L * cd->pad_h - eh) / cd->u + 1), (int)((x->w + 2L * cd->pad_w - ew) / cd->v + 1),
              x->fmt == CUDNN_TENSOR_NHWC};
    return CUDNN_STATUS_SUCCESS;
}

/* The output (y or dy) descriptor must be the convolution's output. */
static cudnnStatus_t check_out(const char *call, const char *name, const lt_cuemu_dnn_tensor *y, const geom &g) {
    if (!y || !y->set) return fail(CUDNN_STATUS_BAD_PARAM, call, "%s descriptor NULL or not set", name);
    if (y->n != g.N || y->c != g.K || y->h != g.ho || y->w != g.wo)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "%s is %dx%dx%dx%d, the convolution gives %dx%dx%dx%d", name, y->n,
                    y->c, y->h, y->w, g.N, g.K, g.ho, g.wo);
    return CUDNN_STATUS_SUCCESS;
}

static const char *format_name(cudnnTensorFormat_t f) { return f == CUDNN_TENSOR_NHWC ? "NHWC" : "NCHW"; }

/* The tensors and the filter of a call must share one format. Real cuDNN
 * runs some mixes with some algorithms; engine/cuda never asks for one, so
 * the emulator refuses them, and a caller that mixes formats by mistake
 * (an NHWC tensor described beside an NCHW filter) finds out at its first
 * query rather than computing on misread memory. The output-dim query is
 * left out: it reads shapes only, which do not depend on the format. */
static cudnnStatus_t same_format(const char *call, int d, const lt_cuemu_dnn_tensor *x, const lt_cuemu_dnn_filter *w,
                                 const lt_cuemu_dnn_tensor *y, const char *yname) {
    if (x->fmt != w->fmt || x->fmt != y->fmt)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, call,
                    "%s is %s, %s %s, %s %s: mixed formats are not emulated (all NCHW or all NHWC)",
                    d == BWD_DATA ? "dx" : "x", format_name(x->fmt), d == BWD_FILTER ? "dw" : "w", format_name(w->fmt),
                    yname, format_name(y->fmt));
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t cd,
                                                    const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
                                                    int *n, int *c, int *h, int *wo) {
    const char *call = "cudnnGetConvolution2dForwardOutputDim";
    if (!n || !c || !h || !wo) return fail(CUDNN_STATUS_BAD_PARAM, call, "NULL output pointer");
    geom g;
    cudnnStatus_t s = geometry(call, x, w, cd, &g);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    *n = g.N;
    *c = g.K;
    *h = g.ho;
    *wo = g.wo;
    return CUDNN_STATUS_SUCCESS;
}

/* ---- algorithms ---------------------------------------------------------------------- */
static size_t x_elems(const geom &g) { return (size_t)g.N * g.C * g.H * g.W; }
static size_t w_elems(const geom &g) { return (size_t)g.K * (g.C / g.G) * g.kh * g.kw; }
static size_t y_elems(const geom &g) { return (size_t)g.N * g.K * g.ho * g.wo; }

/* The workspace an algorithm needs: 1 when the emulator runs it, 0 when it
 * is a real algorithm the emulator does not run, -1 for no such algorithm.
 * The sizes stand for what the real kernels keep (indices per output pixel
 * and tap, a transformed filter, transformed input and filter); they only
 * need to be nonzero and to grow with the problem. */
static int algo_ws(int d, int algo, const geom &g, size_t *ws) {
    const size_t taps = (size_t)g.kh * g.kw * g.ho * g.wo;
    *ws = 0;
    if (d == FWD) {
        switch (algo) {
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return 1;
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: *ws = sizeof(int) * taps; return 1;
        case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: *ws = sizeof(float) * (x_elems(g) + w_elems(g)); return 1;
        }
        return algo >= 0 && algo <= CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED ? 0 : -1;
    }
    if (d == BWD_DATA) {
        switch (algo) {
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return 1;
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: *ws = sizeof(float) * w_elems(g); return 1;
        }
        return algo >= 0 && algo <= CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED ? 0 : -1;
    }
    switch (algo) {
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return 1;
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: *ws = sizeof(float) * w_elems(g); return 1;
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3: *ws = sizeof(int) * taps; return 1;
    }
    return algo >= 0 && algo <= CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ? 0 : -1;
}

static bool nondeterministic(int d, int algo) {
    return (d == BWD_DATA && algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0) ||
           (d == BWD_FILTER && (algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3));
}

struct entry {
    int algo;
    cudnnMathType_t math;
    cudnnStatus_t status;
};

#define LIST_MAX 8

/* The heuristic list, best first. Tensor-op entries come only when the
 * descriptor's math allows them (as in cuDNN), an ALLOW_CONVERSION entry
 * only under that math; an algorithm the emulator does not run ends the
 * list with status NOT_SUPPORTED, as cuDNN reports inapplicable ones. */
static int algo_list(int d, cudnnMathType_t m, entry *e) {
    const bool conv = m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, tensor = conv || m == CUDNN_TENSOR_OP_MATH;
    const cudnnMathType_t TO = CUDNN_TENSOR_OP_MATH, AC = CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, F = CUDNN_FMA_MATH;
    const cudnnStatus_t OK = CUDNN_STATUS_SUCCESS, NS = CUDNN_STATUS_NOT_SUPPORTED;
    int n = 0;
    if (d == FWD) {
        if (conv) e[n++] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, AC, OK};
        if (tensor) e[n++] = {CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, TO, OK};
        e[n++] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, F, OK};
        e[n++] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, F, OK};
        e[n++] = {CUDNN_CONVOLUTION_FWD_ALGO_FFT, F, NS};
    } else if (d == BWD_DATA) {
        if (conv) e[n++] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, AC, OK};
        if (tensor) e[n++] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, TO, OK};
        if (tensor) e[n++] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, TO, OK};
        e[n++] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, F, OK};
        e[n++] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, F, OK};
        e[n++] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, F, NS};
    } else {
        if (conv) e[n++] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, AC, OK};
        if (tensor) e[n++] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, TO, OK};
        if (tensor) e[n++] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, TO, OK};
        e[n++] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, F, OK};
        e[n++] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, F, OK};
        e[n++] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, F, OK};
        e[n++] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT, F, NS};
    }
    return n;
}

static cudnnStatus_t max_count(const char *call, cudnnHandle_t h, int *count) {
    if (!h || !count) return fail(CUDNN_STATUS_BAD_PARAM, call, "NULL handle or count");
    *count = LIST_MAX;
    return CUDNN_STATUS_SUCCESS;
}

/* LT_CUEMU_DNN_UNDERSTATE_WS=1: list entries report half the workspace
 * their algorithm needs. Real cuDNN's entries and cudnnGet*WorkspaceSize
 * need not agree; a caller that sizes the workspace by the entry alone
 * then fails its call (the workspace check of every call, below). */
static bool understate_ws(void) {
    const char *v = getenv("LT_CUEMU_DNN_UNDERSTATE_WS");
    return v && !strcmp(v, "1");
}

/* Fills a perf array (the three perf structs have the same fields). */
template <class Perf, class Algo>
static cudnnStatus_t heuristics(const char *call, int d, cudnnHandle_t h, const lt_cuemu_dnn_tensor *x,
                                const lt_cuemu_dnn_filter *w, const lt_cuemu_dnn_conv *cd,
                                const lt_cuemu_dnn_tensor *y, const char *yname, int requested, int *returned,
                                Perf *perf) {
    if (!h || !returned || !perf || requested < 1)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "NULL handle / output, or requestedAlgoCount %d", requested);
    geom g;
    cudnnStatus_t s = geometry(call, x, w, cd, &g);
    if (s == CUDNN_STATUS_SUCCESS) s = check_out(call, yname, y, g);
    if (s == CUDNN_STATUS_SUCCESS) s = same_format(call, d, x, w, y, yname);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    entry e[LIST_MAX];
    const int n = algo_list(d, cd->math, e);
    int i = 0;
    for (; i < n && i < requested; i++) {
        Perf p;
        memset(&p, 0, sizeof p);
        p.algo = (Algo)e[i].algo;
        p.status = e[i].status;
        p.time = -1.0f;   /* a heuristic guess, nothing was timed */
        p.mathType = e[i].math;
        p.determinism = nondeterministic(d, e[i].algo) ? CUDNN_NON_DETERMINISTIC : CUDNN_DETERMINISTIC;
        if (algo_ws(d, e[i].algo, g, &p.memory) != 1) p.memory = 0;
        if (understate_ws()) p.memory /= 2;
        perf[i] = p;
    }
    *returned = i;
    return CUDNN_STATUS_SUCCESS;
}

/* cudnnFind*Algorithm: cuDNN runs every algorithm on buffers it allocates
 * itself, synchronises, and returns the list fastest first. The emulator
 * has no clock. It allocates and frees a buffer and synchronises the
 * handle's stream, so the rules of those calls hold (a search during a
 * stream capture invalidates it, as on a GPU). Then it returns the
 * heuristic list's supported entries in reverse order with made-up times,
 * and the unsupported ones last: an order the heuristics never give, so a
 * caller that ignores a search's result shows. */
template <class Perf, class Algo>
static cudnnStatus_t find(const char *call, int d, cudnnHandle_t h, const lt_cuemu_dnn_tensor *x,
                          const lt_cuemu_dnn_filter *w, const lt_cuemu_dnn_conv *cd, const lt_cuemu_dnn_tensor *y,
                          const char *yname, int requested, int *returned, Perf *perf) {
    if (!h || !returned || !perf || requested < 1)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "NULL handle / output, or requestedAlgoCount %d", requested);
    Perf all[LIST_MAX];
    int n = 0;
    cudnnStatus_t s = heuristics<Perf, Algo>(call, d, h, x, w, cd, y, yname, LIST_MAX, &n, all);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    void *buf = NULL;
    if (cudaMalloc(&buf, 256) != cudaSuccess) return fail(CUDNN_STATUS_ALLOC_FAILED, call, "cannot allocate its buffers");
    cudaFree(buf);
    if (cudaStreamSynchronize(h->stream) != cudaSuccess)
        return fail(CUDNN_STATUS_EXECUTION_FAILED, call, "synchronising the handle's stream failed");
    int k = 0;
    for (int i = n - 1; i >= 0 && k < requested; i--)
        if (all[i].status == CUDNN_STATUS_SUCCESS) {
            perf[k] = all[i];
            perf[k].time = 0.25f * (float)(k + 1);
            k++;
        }
    for (int i = 0; i < n && k < requested; i++)
        if (all[i].status != CUDNN_STATUS_SUCCESS) {
            perf[k] = all[i];
            perf[k].time = -1.0f;
            k++;
        }
    /* LT_CUEMU_DNN_FIND_ALLOC_FAILS=1: every trial failed for want of
     * memory (a search under memory pressure), the call itself succeeds */
    const char *af = getenv("LT_CUEMU_DNN_FIND_ALLOC_FAILS");
    if (af && !strcmp(af, "1"))
        for (int i = 0; i < k; i++) perf[i].status = CUDNN_STATUS_ALLOC_FAILED;
    *returned = k;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                   const cudnnFilterDescriptor_t w, const cudnnConvolutionDescriptor_t cd,
                                                   const cudnnTensorDescriptor_t y, const int requested, int *returned,
                                                   cudnnConvolutionFwdAlgoPerf_t *perf) {
    return find<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
        "cudnnFindConvolutionForwardAlgorithm", FWD, h, x, w, cd, y, "y", requested, returned, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(cudnnHandle_t h, const cudnnFilterDescriptor_t w,
                                                        const cudnnTensorDescriptor_t dy,
                                                        const cudnnConvolutionDescriptor_t cd,
                                                        const cudnnTensorDescriptor_t dx, const int requested,
                                                        int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf) {
    return find<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
        "cudnnFindConvolutionBackwardDataAlgorithm", BWD_DATA, h, dx, w, cd, dy, "dy", requested, returned, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t cd,
                                                          const cudnnFilterDescriptor_t dw, const int requested,
                                                          int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
    return find<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
        "cudnnFindConvolutionBackwardFilterAlgorithm", BWD_FILTER, h, x, dw, cd, dy, "dy", requested, returned, perf);
}

/* Geometry, output shape and the algorithm's workspace of a call. */
static cudnnStatus_t prepare(const char *call, int d, cudnnHandle_t h, const lt_cuemu_dnn_tensor *x,
                             const lt_cuemu_dnn_filter *w, const lt_cuemu_dnn_conv *cd, const lt_cuemu_dnn_tensor *y,
                             const char *yname, int algo, geom *g, size_t *ws) {
    if (!h) return fail(CUDNN_STATUS_BAD_PARAM, call, "NULL handle");
    cudnnStatus_t s = geometry(call, x, w, cd, g);
    if (s == CUDNN_STATUS_SUCCESS) s = check_out(call, yname, y, *g);
    if (s == CUDNN_STATUS_SUCCESS) s = same_format(call, d, x, w, y, yname);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    const int r = algo_ws(d, algo, *g, ws);
    if (r < 0) return fail(CUDNN_STATUS_BAD_PARAM, call, "no algorithm %d", algo);
    if (r == 0) return fail(CUDNN_STATUS_NOT_SUPPORTED, call, "algorithm %d is not emulated", algo);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t h, int *count) {
    return max_count("cudnnGetConvolutionForwardAlgorithmMaxCount", h, count);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t h, int *count) {
    return max_count("cudnnGetConvolutionBackwardDataAlgorithmMaxCount", h, count);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t h, int *count) {
    return max_count("cudnnGetConvolutionBackwardFilterAlgorithmMaxCount", h, count);
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                     const cudnnFilterDescriptor_t w,
                                                     const cudnnConvolutionDescriptor_t cd,
                                                     const cudnnTensorDescriptor_t y, const int requested,
                                                     int *returned, cudnnConvolutionFwdAlgoPerf_t *perf) {
    return heuristics<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
        "cudnnGetConvolutionForwardAlgorithm_v7", FWD, h, x, w, cd, y, "y", requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t h, const cudnnFilterDescriptor_t w,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t cd,
                                                          const cudnnTensorDescriptor_t dx, const int requested,
                                                          int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf) {
    return heuristics<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
        "cudnnGetConvolutionBackwardDataAlgorithm_v7", BWD_DATA, h, dx, w, cd, dy, "dy", requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                            const cudnnTensorDescriptor_t dy,
                                                            const cudnnConvolutionDescriptor_t cd,
                                                            const cudnnFilterDescriptor_t dw, const int requested,
                                                            int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
    return heuristics<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
        "cudnnGetConvolutionBackwardFilterAlgorithm_v7", BWD_FILTER, h, x, dw, cd, dy, "dy", requested, returned, perf);
}

static cudnnStatus_t ws_size(const char *call, int d, cudnnHandle_t h, const lt_cuemu_dnn_tensor *x,
                             const lt_cuemu_dnn_filter *w, const lt_cuemu_dnn_conv *cd, const lt_cuemu_dnn_tensor *y,
                             const char *yname, int algo, size_t *bytes) {
    if (!bytes) return fail(CUDNN_STATUS_BAD_PARAM, call, "NULL size pointer");
    geom g;
    return prepare(call, d, h, x, w, cd, y, yname, algo, &g, bytes);
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                      const cudnnFilterDescriptor_t w,
                                                      const cudnnConvolutionDescriptor_t cd,
                                                      const cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *bytes) {
    return ws_size("cudnnGetConvolutionForwardWorkspaceSize", FWD, h, x, w, cd, y, "y", algo, bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t h, const cudnnFilterDescriptor_t w,
                                                           const cudnnTensorDescriptor_t dy,
                                                           const cudnnConvolutionDescriptor_t cd,
                                                           const cudnnTensorDescriptor_t dx,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t *bytes) {
    return ws_size("cudnnGetConvolutionBackwardDataWorkspaceSize", BWD_DATA, h, dx, w, cd, dy, "dy", algo, bytes);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t h, const cudnnTensorDescriptor_t x,
                                                             const cudnnTensorDescriptor_t dy,
                                                             const cudnnConvolutionDescriptor_t cd,
                                                             const cudnnFilterDescriptor_t dw,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes) {
    return ws_size("cudnnGetConvolutionBackwardFilterWorkspaceSize", BWD_FILTER, h, x, dw, cd, dy, "dy", algo, bytes);
}

/* ---- the kernels --------------------------------------------------------------------- */
/* Each output element is a float sum of its terms in a fixed order (or, for
 * a non-deterministic algorithm, an order that changes from call to call).
 * The loops run term by term over whole planes: for one term index, every
 * output element gets at most one product, so each element still sees its
 * terms in that order, and the inner loops are plain strided loops. */

/* Where a non-deterministic algorithm starts each sum's terms: a new order
 * on every run, as atomics' arrival order on a GPU. */
static std::atomic<unsigned long long> nondet_runs{0};
static inline size_t start_of(unsigned long long run, size_t elem, size_t total) {
    return (size_t)((run * 0x9E3779B97F4A7C15ull + elem * 0xD1B54A32D192ED03ull) >> 17) % total;
}


/* Threads for one call's work: lt_cuemu_dnn_set_threads's, else
 * LT_CUEMU_THREADS, else the CPUs (at most 8). The work is split by output
 * element (planes, filter elements), and each element is summed by one
 * thread in its own fixed order, so a call gives the same bits on any
 * number of threads; the threads only make the CPU suite's emulated runs
 * faster (convolution is most of their time). */
static std::atomic<unsigned> threads_set{0};
void lt_cuemu_dnn_set_threads(unsigned n) { threads_set = n; }
static unsigned work_threads(void) {
    static const unsigned dflt = [] {
        const char *e = getenv("LT_CUEMU_THREADS");
        long v = e && *e ? strtol(e, NULL, 10) : 0;
        if (v < 1) {
            const unsigned hw = std::thread::hardware_concurrency();
            v = hw ? hw : 1;
        }
        return (unsigned)std::min(v, 8L);
    }();
    const unsigned n = threads_set;
    return n ? n : dflt;
}

/* f(lo, hi) over [0, n) in contiguous chunks, one per thread (the calling
 * thread takes the first). Small calls (under about a million
 * multiply-adds) stay on the calling thread: starting a thread costs more.
 * A thread that cannot be started leaves its chunk to the calling thread. */
template <class F> static void split_work(size_t n, double macs, F f) {
    unsigned nt = macs < (double)(1 << 20) ? 1 : work_threads();
    if (nt > n) nt = (unsigned)n;
    if (nt <= 1) {
        f((size_t)0, n);
        return;
    }
    std::vector<std::thread> th;
    std::vector<unsigned> left;   /* chunks no thread could be started for */
    for (unsigned i = 1; i < nt; i++) {
        try {
            th.emplace_back(f, n * i / nt, n * (i + 1) / nt);
        } catch (const std::system_error &) {
            left.push_back(i);
        }
    }
    f((size_t)0, n / nt);
    for (unsigned i : left) f(n * i / nt, n * (i + 1) / nt);
    for (auto &t : th) t.join();
}

/* alpha * acc + beta * prior; beta == 0 never reads the prior value. */
static inline void store(float *p, float acc, float alpha, float beta) {
    float v = alpha * acc;
    if (beta != 0.0f) v += beta * *p;
    *p = v;
}

/* The o in [0, n_out) with 0 <= o*stride + off < n_in, as [*lo, *hi]. */
static inline void span(int n_out, int stride, int off, int n_in, int *lo, int *hi) {
    *lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
    *hi = n_in - 1 - off < 0 ? -1 : (n_in - 1 - off) / stride;
    if (*hi > n_out - 1) *hi = n_out - 1;
}

/* Where element (n, c, h, w) of a tensor (k, c, r, q of a filter) lies:
 * n * s.n + c * s.c + h * s.h + w * s.w. */
struct strides {
    ptrdiff_t n, c, h, w;
};
static strides layout(bool nhwc, int c, int h, int w) {
    const ptrdiff_t chw = (ptrdiff_t)c * h * w;
    if (nhwc) return strides{chw, 1, (ptrdiff_t)w * c, c};   /* [n][h][w][c] */
    return strides{chw, (ptrdiff_t)h * w, w, 1};           /* [n][c][h][w] */
}

/* The kernels below read their inputs in NCHW order, tf32-rounded when the
 * math mode asks, and write their output through its strides. An NHWC
 * input is first copied into NCHW order (when the queued work runs): the
 * kernels read whole rows and planes of their inputs once per output
 * element or plane, which NHWC's strided reads made up to ten times
 * slower; a tf32 input is rounded in that copy, once per element rather
 * than once per term. Everything else (accumulators, term order, the
 * non-deterministic starts) is keyed by the NCHW indices, so an NHWC call
 * computes exactly the NCHW call's sums and only stores them elsewhere. */
static const float *kernel_input(bool nhwc, bool tf32, const float *p, int n, int c, int h, int w,
                                 std::vector<float> &copy) {
    if (!nhwc && !tf32) return p;
    const size_t hw = (size_t)h * w;
    copy.resize((size_t)n * c * hw);
    float *d = copy.data();
    if (!nhwc) {
        for (size_t i = 0; i < copy.size(); i++) d[i] = lt_cuemu_tf32(p[i]);
        return d;
    }
    for (int i = 0; i < n; i++, d += (size_t)c * hw)
        for (size_t j = 0; j < hw; j++, p += c)
            for (int k = 0; k < c; k++) d[(size_t)k * hw + j] = tf32 ? lt_cuemu_tf32(p[k]) : p[k];
    return copy.data();
}

/* Padded coordinates (input row ih + ph, column iw + pw) split by stride,
 * as the forward reads its input and the data gradient sums: position
 * (P, Q) is element (P / u, Q / v) of phase plane (P mod u, Q mod v), so a
 * tap or term (r, q) touches one phase plane, at offset ((r*dh) / u,
 * (q*dw) / v), a dense ho x wo block. A phase plane is Hq x Wq, which holds
 * every position a tap reads or a term writes, then the slack that a run
 * over ho rows of Wq, from column (q*dw) / v, reaches past it. */
struct phase_planes {
    int u, v, Hq, Wq;
    size_t plane;   /* floats of one phase plane, slack included */
    explicit phase_planes(const geom &g)
        : u(g.u), v(g.v), Hq(g.ho + (g.kh - 1) * g.dh / g.u), Wq(g.wo + (g.kw - 1) * g.dw / g.v),
          plane((size_t)Hq * Wq + (size_t)((g.kw - 1) * g.dw / g.v)) {}
    size_t floats() const { return plane * u * v; }   /* the u*v planes of one (n, c) */
    bool holds(int P, int Q) const { return P / u < Hq && Q / v < Wq; }
    size_t at(int P, int Q) const {
        return (size_t)(P % u * v + Q % v) * plane + (size_t)(P / u) * Wq + (size_t)(Q / v);
    }
};

/* The kernels' vectors run across positions (or across FB separate sums),
 * so the AVX2 clone (x86-64, where the CPU has it) gives the same bits as
 * the default one. */
#if defined(__x86_64__) && defined(__GNUC__)
#define KERNEL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KERNEL_CLONES
#endif

/* y[n][k][oh][ow] = sum over (c < C/G, r, q), in that order, of
 * x[n][g*C/G + c][ih][iw] * w[k][c][r][q]
 *
 * x is first copied into zero-padded phase planes (phase_planes), so a tap
 * reads contiguously at any stride. A tap is then one
 * run over the output's rows (Wq apart; the Wq - wo positions past each
 * row's end read the next row, or the slack after the plane, and are
 * never stored), and up to four taps in a row are added in one pass, each
 * element's adds still one after another in (c, r, q) order. A tap on the
 * padding adds 0 * w: the sum starts at +0 and so is never -0, and a +-0
 * added leaves it as it was; only an infinite or NaN weight then makes NaN
 * of an output it did not reach before, as the zeros of cuDNN's own
 * padding do. */
struct fwd_args {
    const geom *g;
    phase_planes pl;
    const float *xp, *w;   /* x's phase planes [N][C][pl.floats()]; weights [K][C/G][kh][kw] */
};

/* acc = output plane (n, k) of fwd_args, rows pl.Wq apart. */
KERNEL_CLONES static void fwd_plane(const fwd_args *A, int n, int k, float *__restrict acc) {
    const geom &g = *A->g;
    const phase_planes &pl = A->pl;
    const int Cg = g.C / g.G, Kg = g.K / g.G, KK = g.kh * g.kw, T = Cg * KK;
    const size_t run = (size_t)g.ho * pl.Wq;
    const float *xg = A->xp + ((size_t)n * g.C + (size_t)(k / Kg) * Cg) * pl.floats();
    const float *wk = A->w + (size_t)k * T;
    /* tap t's first input and weight */
    auto tap = [&](int t, const float **x0, float *wv) {
        const int c = t / KK, r = t / g.kw % g.kh, q = t % g.kw;
        *x0 = xg + (size_t)c * pl.floats() + pl.at(r * g.dh, q * g.dw);
        *wv = wk[t];
    };
    for (size_t i = 0; i < run; i++) acc[i] = 0.0f;
    int t = 0;
    for (; t + 4 <= T; t += 4) {
        const float *x0, *x1, *x2, *x3;
        float w0, w1, w2, w3;
        tap(t, &x0, &w0);
        tap(t + 1, &x1, &w1);
        tap(t + 2, &x2, &w2);
        tap(t + 3, &x3, &w3);
        for (size_t i = 0; i < run; i++) {
            float a = acc[i];
            a += x0[i] * w0;
            a += x1[i] * w1;
            a += x2[i] * w2;
            a += x3[i] * w3;
            acc[i] = a;
        }
    }
    for (; t < T; t++) {
        const float *x0;
        float w0;
        tap(t, &x0, &w0);
        for (size_t i = 0; i < run; i++) acc[i] += x0[i] * w0;
    }
}

static void run_fwd(const geom &g, const float *x, const float *w, float *y, float alpha, float beta, bool tf32) {
    const int Cg = g.C / g.G, T = Cg * g.kh * g.kw;
    std::vector<float> xc, wc;
    x = kernel_input(g.nhwc, tf32, x, g.N, g.C, g.H, g.W, xc);
    w = kernel_input(g.nhwc, tf32, w, g.K, Cg, g.kh, g.kw, wc);
    const phase_planes pl(g);
    const int Wq = pl.Wq;
    /* every input element at its padded position; the rest stays 0 */
    std::vector<float> xp((size_t)g.N * g.C * pl.floats(), 0.0f);
    for (size_t nc = 0; nc < (size_t)g.N * g.C; nc++)
        for (int ih = 0; ih < g.H; ih++)
            for (int iw = 0; iw < g.W; iw++)
                if (pl.holds(ih + g.ph, iw + g.pw))
                    xp[nc * pl.floats() + pl.at(ih + g.ph, iw + g.pw)] = x[(nc * g.H + ih) * g.W + iw];
    const fwd_args A = {&g, pl, xp.data(), w};
    const strides ys = layout(g.nhwc, g.K, g.ho, g.wo);
    const double macs = (double)g.N * g.K * g.ho * g.wo * T;
    split_work((size_t)g.N * g.K, macs, [&](size_t lo, size_t hi) {
        std::vector<float> acc((size_t)g.ho * Wq);
        for (size_t nk = lo; nk < hi; nk++) {
            const int n = (int)(nk / (size_t)g.K), k = (int)(nk % (size_t)g.K);
            fwd_plane(&A, n, k, acc.data());
            float *yp = y + n * ys.n + k * ys.c;
            for (int oh = 0; oh < g.ho; oh++)
                for (int ow = 0; ow < g.wo; ow++)
                    store(&yp[oh * ys.h + ow * ys.w], acc[(size_t)oh * Wq + ow], alpha, beta);
        }
    });
}

/* dx[n][c][ih][iw] = sum over the group's (k, r, q), in that order (from a
 * per-plane start when run != 0), of dy[n][k][oh][ow] * w[k][c mod C/G][r][q]
 * where ih = oh*u - ph + r*dh, iw = ow*v - pw + q*dw
 *
 * Each plane is summed into phase planes (phase_planes), so a term writes
 * whole rows, contiguous, without bounds, at any stride; a term's products
 * past the input's edge land on padding and are dropped with it, so every
 * element gets exactly its own terms, in order. */
struct bwd_data_args {
    const geom *g;
    phase_planes pl;
    const float *w, *dy;   /* NCHW */
    const float *dyp;      /* dy's rows padded to pl.Wq with zeros */
};

/* acc = the u*v phase planes of plane (n, c) of dx; t0: the first term. A
 * term with a finite weight is one run over its block's rows (dyp): the
 * Wq - wo zeros after each row add 0 * w = +-0, which leaves every sum as
 * it was (a sum starts at +0, so is never -0); a non-finite weight runs
 * row by row, as 0 * inf would be NaN. */
KERNEL_CLONES static void bwd_data_plane(const bwd_data_args *A, int n, int c, size_t t0, float *acc) {
    const geom &g = *A->g;
    const phase_planes &pl = A->pl;
    const int Cg = g.C / g.G, Kg = g.K / g.G, KK = g.kh * g.kw, T = Kg * KK, Wq = pl.Wq, wo = g.wo;
    const int k0 = c / Cg * Kg, cl = c % Cg;
    const size_t run = (size_t)g.ho * Wq;
    for (size_t i = 0; i < pl.floats(); i++) acc[i] = 0.0f;
    for (int i = 0; i < T; i++) {
        const int t = (int)((t0 + (size_t)i) % (size_t)T);
        const int k = k0 + t / KK, r = t / g.kw % g.kh, q = t % g.kw;
        const float wv = A->w[(((size_t)k * Cg + cl) * g.kh + r) * g.kw + q];
        float *a0 = acc + pl.at(r * g.dh, q * g.dw);
        if (std::isfinite(wv)) {
            const float *d = A->dyp + ((size_t)n * g.K + k) * run;
            for (size_t j = 0; j < run; j++) a0[j] += d[j] * wv;
            continue;
        }
        const float *d = A->dy + ((size_t)n * g.K + k) * g.ho * wo;
        for (int oh = 0; oh < g.ho; oh++, d += wo) {
            float *a = a0 + (size_t)oh * Wq;
            for (int ow = 0; ow < wo; ow++) a[ow] += d[ow] * wv;
        }
    }
}

static void run_bwd_data(const geom &g, const float *w, const float *dy, float *dx, float alpha, float beta, bool tf32,
                         unsigned long long run) {
    const int Cg = g.C / g.G, Kg = g.K / g.G, T = Kg * g.kh * g.kw;
    std::vector<float> wc, dyc;
    w = kernel_input(g.nhwc, tf32, w, g.K, Cg, g.kh, g.kw, wc);
    dy = kernel_input(g.nhwc, tf32, dy, g.N, g.K, g.ho, g.wo, dyc);
    const phase_planes pl(g);
    std::vector<float> dyp((size_t)g.N * g.K * g.ho * pl.Wq, 0.0f);
    for (size_t row = 0; row < (size_t)g.N * g.K * g.ho; row++)
        memcpy(&dyp[row * pl.Wq], dy + row * g.wo, g.wo * sizeof(float));
    const bwd_data_args A = {&g, pl, w, dy, dyp.data()};
    const strides xs = layout(g.nhwc, g.C, g.H, g.W);
    const double macs = (double)g.N * g.C * g.ho * g.wo * T;
    split_work((size_t)g.N * g.C, macs, [&](size_t lo, size_t hi) {
        std::vector<float> acc(pl.floats());
        for (size_t plane = lo; plane < hi; plane++) {
            const int n = (int)(plane / (size_t)g.C), c = (int)(plane % (size_t)g.C);
            bwd_data_plane(&A, n, c, run ? start_of(run, plane, (size_t)T) : 0, acc.data());
            /* positions no term reaches get the sum of no terms */
            float *xp = dx + n * xs.n + c * xs.c;
            for (int ih = 0; ih < g.H; ih++)
                for (int iw = 0; iw < g.W; iw++) {
                    const int P = ih + g.ph, Q = iw + g.pw;
                    store(&xp[ih * xs.h + iw * xs.w], pl.holds(P, Q) ? acc[pl.at(P, Q)] : 0.0f, alpha, beta);
                }
        }
    });
}

/* dw[k][c][r][q] = sum over the rows (n, oh) in order, each row's ow in
 * order, of x[n][g*C/G + c][ih][iw] * dy[n][k][oh][ow]; a non-deterministic
 * algorithm (run != 0) starts the rows at a point of its own (and wraps
 * around), for each element (c, r, q) of each block of FB filters, new on
 * every run.
 *
 * Each element's sum is one chain of dependent adds, so FB filters of a
 * group (same c, r, q; the same x terms) are summed side by side, each its
 * own chain in its own order: the same bits, without waiting out every
 * add's latency. dy is first copied with each block's FB filters
 * interleaved (dyt[n][block][oh][ow][FB], zeros past a group's last
 * filter), so that the FB chains are one vector. */
enum { FB = 8 };
typedef float v8 __attribute__((vector_size(FB * sizeof(float))));
struct wgrad_args {
    const geom *g;
    const float *x, *dyt;   /* x NCHW; dy interleaved as above */
    int blocks;             /* FB-filter blocks over all groups */
};

/* The FB sums of block blk at filter element (c of the input, r, q), over
 * the rows from r0 on whose oh is in [h0, h1], and the columns ow in
 * [w0, w1], which tap the input. */
KERNEL_CLONES static void wgrad_block(const wgrad_args *A, int blk, int ci, int r, int q, size_t r0, int h0, int h1,
                                   int w0, int w1, float *out) {
    const geom &g = *A->g;
    const size_t rows = (size_t)g.N * g.ho;
    v8 acc = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0, row = r0; i < rows; i++, row = row + 1 == rows ? 0 : row + 1) {
        const int n = (int)(row / (size_t)g.ho), oh = (int)(row % (size_t)g.ho);
        if (oh < h0 || oh > h1) continue;
        /* x's index of ow = 0 (may be negative: only ow in [w0, w1] are read) */
        const ptrdiff_t xi = (((ptrdiff_t)n * g.C + ci) * g.H + oh * g.u - g.ph + r * g.dh) * g.W - g.pw + q * g.dw;
        const float *d = A->dyt + (((size_t)n * A->blocks + blk) * g.ho + oh) * g.wo * FB;
        for (int ow = w0; ow <= w1; ow++) {
            v8 dv;
            memcpy(&dv, d + (size_t)ow * FB, sizeof dv);
            acc += A->x[xi + (ptrdiff_t)ow * g.v] * dv;   /* per lane: a product, then a sum */
        }
    }
    memcpy(out, &acc, sizeof acc);
}

static void run_bwd_filter(const geom &g, const float *x, const float *dy, float *dw, float alpha, float beta,
                           bool tf32, unsigned long long run) {
    const int Cg = g.C / g.G, Kg = g.K / g.G;
    std::vector<float> xc, dyc;
    x = kernel_input(g.nhwc, tf32, x, g.N, g.C, g.H, g.W, xc);
    dy = kernel_input(g.nhwc, tf32, dy, g.N, g.K, g.ho, g.wo, dyc);
    const strides fs = layout(g.nhwc, Cg, g.kh, g.kw);
    const size_t rows = (size_t)g.N * g.ho, per_k = (size_t)Cg * g.kh * g.kw, hw = (size_t)g.ho * g.wo;
    const double macs = (double)g.N * g.K * g.ho * g.wo * per_k;
    const int kbs = (Kg + FB - 1) / FB, blocks = g.G * kbs;
    std::vector<float> dyt((size_t)g.N * blocks * hw * FB, 0.0f);
    for (int n = 0; n < g.N; n++)
        for (int b = 0; b < blocks; b++)
            for (int j = 0; j < FB; j++) {
                const int kl = b % kbs * FB + j;
                if (kl >= Kg) break;
                const float *src = dy + ((size_t)n * g.K + (size_t)(b / kbs) * Kg + kl) * hw;
                float *dst = &dyt[((size_t)n * blocks + b) * hw * FB + j];
                for (size_t i = 0; i < hw; i++) dst[i * FB] = src[i];
            }
    const wgrad_args A = {&g, x, dyt.data(), blocks};
    /* work items: (block of FB filters of one group, c, r, q) */
    split_work((size_t)blocks * per_k, macs, [&](size_t lo, size_t hi) {
        for (size_t item = lo; item < hi; item++) {
            const int b = (int)(item / per_k);
            const size_t e = item % per_k;
            const int k0 = b / kbs * Kg + b % kbs * FB, nb = std::min((int)FB, Kg - b % kbs * FB);
            const int c = (int)(e / ((size_t)g.kh * g.kw)), r = (int)(e / (size_t)g.kw % (size_t)g.kh),
                      q = (int)(e % (size_t)g.kw);
            int h0, h1, w0, w1;
            span(g.ho, g.u, r * g.dh - g.ph, g.H, &h0, &h1);
            span(g.wo, g.v, q * g.dw - g.pw, g.W, &w0, &w1);
            float out[FB];
            wgrad_block(&A, b, b / kbs * Cg + c, r, q, run ? start_of(run, item, rows) : 0, h0, h1, w0, w1, out);
            for (int j = 0; j < nb; j++)
                store(&dw[(k0 + j) * fs.n + c * fs.c + r * fs.h + q * fs.w], out[j], alpha, beta);
        }
    });
}

/* ---- the calls ------------------------------------------------------------------------ */
static bool device_arg(const char *call, const char *arg, const void *p, size_t bytes) {
    if (p && lt_cuemu_is_device(p, bytes)) return true;
    fprintf(stderr, "cuemu cudnn: %s: %s = %p is not device memory covering %zu bytes (a GPU would fault)\n", call, arg,
            p, bytes);
    return false;
}

/* Checks shared by the three calls: scaling factors, the workspace. */
static cudnnStatus_t call_args(const char *call, const void *alpha, const void *beta, void *ws, size_t ws_bytes,
                               size_t need) {
    if (!alpha || !beta) return fail(CUDNN_STATUS_BAD_PARAM, call, "NULL alpha or beta");
    if (need == 0) return CUDNN_STATUS_SUCCESS;
    if (ws_bytes < need)
        return fail(CUDNN_STATUS_BAD_PARAM, call, "workspace of %zu bytes, the algorithm needs %zu", ws_bytes, need);
    if (!device_arg(call, "workSpace", ws, need)) return CUDNN_STATUS_BAD_PARAM;
    return CUDNN_STATUS_SUCCESS;
}

static bool tensor_math(const lt_cuemu_dnn_conv *cd) {
    return cd->math == CUDNN_TENSOR_OP_MATH || cd->math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

/* Queues the work; after it the algorithm's workspace holds garbage. */
static cudnnStatus_t queue(const char *call, cudnnHandle_t h, void *ws, size_t need, std::function<void()> work) {
    cudaError_t e = lt_cuemu_enqueue(h->stream, call, [work, ws, need]() {
        work();
        if (need) memset(ws, 0xff, need);
    });
    if (e != cudaSuccess) return fail(CUDNN_STATUS_EXECUTION_FAILED, call, "queueing failed (cuda error %d)", (int)e);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                      const void *x, const cudnnFilterDescriptor_t wd, const void *w,
                                      const cudnnConvolutionDescriptor_t cd, cudnnConvolutionFwdAlgo_t algo, void *ws,
                                      size_t ws_bytes, const void *beta, const cudnnTensorDescriptor_t yd, void *y) {
    const char *call = "cudnnConvolutionForward";
    geom g;
    size_t need;
    cudnnStatus_t s = prepare(call, FWD, h, xd, wd, cd, yd, "y", algo, &g, &need);
    if (s == CUDNN_STATUS_SUCCESS) s = call_args(call, alpha, beta, ws, ws_bytes, need);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    if (!device_arg(call, "x", x, 4 * x_elems(g)) || !device_arg(call, "w", w, 4 * w_elems(g)) ||
        !device_arg(call, "y", y, 4 * y_elems(g)))
        return CUDNN_STATUS_BAD_PARAM;
    const float a = *(const float *)alpha, b = *(const float *)beta;
    const bool tf32 = tensor_math(cd);
    const float *xp = (const float *)x, *wp = (const float *)w;
    float *yp = (float *)y;
    return queue(call, h, ws, need, [g, xp, wp, yp, a, b, tf32]() { run_fwd(g, xp, wp, yp, a, b, tf32); });
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha, const cudnnFilterDescriptor_t wd,
                                           const void *w, const cudnnTensorDescriptor_t dyd, const void *dy,
                                           const cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdDataAlgo_t algo,
                                           void *ws, size_t ws_bytes, const void *beta,
                                           const cudnnTensorDescriptor_t dxd, void *dx) {
    const char *call = "cudnnConvolutionBackwardData";
    geom g;
    size_t need;
    cudnnStatus_t s = prepare(call, BWD_DATA, h, dxd, wd, cd, dyd, "dy", algo, &g, &need);
    if (s == CUDNN_STATUS_SUCCESS) s = call_args(call, alpha, beta, ws, ws_bytes, need);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    if (!device_arg(call, "w", w, 4 * w_elems(g)) || !device_arg(call, "dy", dy, 4 * y_elems(g)) ||
        !device_arg(call, "dx", dx, 4 * x_elems(g)))
        return CUDNN_STATUS_BAD_PARAM;
    const float a = *(const float *)alpha, b = *(const float *)beta;
    const bool tf32 = tensor_math(cd), nondet = nondeterministic(BWD_DATA, algo);
    const float *wp = (const float *)w, *dyp = (const float *)dy;
    float *dxp = (float *)dx;
    return queue(call, h, ws, need, [g, wp, dyp, dxp, a, b, tf32, nondet]() {
        run_bwd_data(g, wp, dyp, dxp, a, b, tf32, nondet ? ++nondet_runs : 0);
    });
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                             const void *x, const cudnnTensorDescriptor_t dyd, const void *dy,
                                             const cudnnConvolutionDescriptor_t cd,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *ws, size_t ws_bytes,
                                             const void *beta, const cudnnFilterDescriptor_t dwd, void *dw) {
    const char *call = "cudnnConvolutionBackwardFilter";
    geom g;
    size_t need;
    cudnnStatus_t s = prepare(call, BWD_FILTER, h, xd, dwd, cd, dyd, "dy", algo, &g, &need);
    if (s == CUDNN_STATUS_SUCCESS) s = call_args(call, alpha, beta, ws, ws_bytes, need);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    if (!device_arg(call, "x", x, 4 * x_elems(g)) || !device_arg(call, "dy", dy, 4 * y_elems(g)) ||
        !device_arg(call, "dw", dw, 4 * w_elems(g)))
        return CUDNN_STATUS_BAD_PARAM;
    const float a = *(const float *)alpha, b = *(const float *)beta;
    const bool tf32 = tensor_math(cd), nondet = nondeterministic(BWD_FILTER, algo);
    const float *xp = (const float *)x, *dyp = (const float *)dy;
    float *dwp = (float *)dw;
    return queue(call, h, ws, need, [g, xp, dyp, dwp, a, b, tf32, nondet]() {
        run_bwd_filter(g, xp, dyp, dwp, a, b, tf32, nondet ? ++nondet_runs : 0);
    });
}
