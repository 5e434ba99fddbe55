/* test_cuemu_dnn.cc — self-test of the emulator's cuDNN and cuBLAS
 * (lt_cuemu_dnn.cc, lt_cuemu_blas.cc) on the emulator's runtime: every
 * result against a double-precision reference written here independently
 * (the convolutions as one scatter over all (output, tap) products, the
 * GEMM from its row/column definition), bounded by the float summation
 * error bound (T + 3) * 2^-24 * sum |terms|, plus the rules the fakes
 * promise: each direction's order of sums, bit for bit (test_sum_order),
 * alpha / beta, laziness, arguments taken at call time, TF32,
 * (non-)determinism, workspace and pointer checks, the heuristic lists and
 * the searches; NHWC against NCHW (the same bits once transposed) and the
 * refusal of mixed formats.
 * Each group of checks is a CMocka case; every check prints its line.
 * Built by make (build/tests/test_cuemu_dnn) against build/libltcuemu.a. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {
#include <cmocka.h>
}

#include <cublas_v2.h>
#include <cudnn.h>

#include "lt_cuemu.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

static int n_checks, n_fail;
#define CHECK(cond, ...)                                          \
    do {                                                          \
        n_checks++;                                               \
        if (!(cond)) {                                            \
            n_fail++;                                             \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);           \
            printf(__VA_ARGS__);                                  \
            printf("\n");                                         \
        }                                                         \
    } while (0)
/* the larger of a running maximum m and e, keeping a NaN: fmax(NaN, x) is x,
 * so a NaN error would vanish from an fmax maximum and pass its bound */
static double max_keep_nan(double m, double e) { return (isnan(m) || e <= m) ? m : e; }
/* the call runs once; its status must be `want` */
#define STATUS_IS(call, want)                                                             \
    do {                                                                                  \
        const int got_ = (int)(call);                                                     \
        CHECK(got_ == (int)(want), "%s -> %d, want %d", #call, got_, (int)(want));        \
    } while (0)
#define DNN_IS STATUS_IS
#define BLAS_IS STATUS_IS

static const double U = 1.0 / 16777216.0;   /* 2^-24, float's unit roundoff */
static cudaStream_t stream;
static cudnnHandle_t dnn;
static cublasHandle_t blas;

/* ---- helpers ------------------------------------------------------------------------ */
static uint64_t rng = 88172645463325252ull;
static float urand(void) {   /* uniform in [-1, 1) */
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (2.0 / 16777216.0) - 1.0);
}
static std::vector<float> randv(size_t n) {
    std::vector<float> v(n);
    for (float &f : v) f = urand();
    return v;
}
static void *dalloc(size_t bytes) {
    void *p = NULL;
    CHECK(cudaMalloc(&p, bytes) == cudaSuccess, "cudaMalloc %zu", bytes);
    return p;
}
static float *dput(const std::vector<float> &h) {
    float *d = (float *)dalloc(h.size() * 4);
    cudaMemcpy(d, h.data(), h.size() * 4, cudaMemcpyHostToDevice);
    return d;
}
static void dset(float *d, const std::vector<float> &h) { cudaMemcpy(d, h.data(), h.size() * 4, cudaMemcpyHostToDevice); }
static std::vector<float> dget(const float *d, size_t n) {
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "stream synchronize");
    std::vector<float> h(n);
    cudaMemcpy(h.data(), d, n * 4, cudaMemcpyDeviceToHost);
    return h;
}
static int same_bits(const std::vector<float> &a, const std::vector<float> &b) {
    return a.size() == b.size() && !memcmp(a.data(), b.data(), a.size() * 4);
}
static size_t n_differ(const std::vector<float> &a, const std::vector<float> &b) {
    size_t d = 0;
    for (size_t i = 0; i < a.size(); i++) d += memcmp(&a[i], &b[i], 4) != 0;
    return d;
}

/* fp32 -> TF32 written from the definition: 11 significant bits, round to
 * nearest, ties away from zero (normal numbers; the data here has no others) */
static float tf32_ref(float v) {
    if (!isfinite(v) || v == 0.0f) return v;
    int e;
    const double m = frexp(v, &e);
    return (float)ldexp(round(m * 2048.0) / 2048.0, e);
}
static std::vector<float> tf32v(const std::vector<float> &v) {
    std::vector<float> r(v);
    for (float &f : r) f = tf32_ref(f);
    return r;
}

/* |got - (a*ref + b*prior)| <= (|a| abs + |b prior|) * gamma for every element;
 * returns the number of violations (NaN counts), prints the first. */
static size_t bad_elems(const char *what, const std::vector<float> &got, const std::vector<double> &ref,
                        const std::vector<double> &abs_, double gamma, double a = 1, double b = 0,
                        const std::vector<float> *prior = NULL) {
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); i++) {
        const double p = prior ? (*prior)[i] : 0.0;
        const double want = a * ref[i] + b * p, tol = (fabs(a) * abs_[i] + fabs(b * p)) * gamma + 1e-30;
        if (!(fabs(got[i] - want) <= tol)) {
            if (!bad++) printf("  %s: element %zu = %.9g, want %.9g (tolerance %.3g)\n", what, i, got[i], want, tol);
        }
    }
    return bad;
}

/* ---- convolution cases and the reference ------------------------------------------- */
struct ccase {
    const char *name;
    int N, C, H, W, K, kh, kw, pad, stride, dil, G;
};
static int outdim(int in, int k, int pad, int stride, int dil) { return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1; }

/* Calls f(xi, wi, yi) once per product x[xi] * w[wi] that output yi sums. */
template <class F>
static void each_term(const ccase &c, F f) {
    const int ho = outdim(c.H, c.kh, c.pad, c.stride, c.dil), wo = outdim(c.W, c.kw, c.pad, c.stride, c.dil);
    const int Cg = c.C / c.G, Kg = c.K / c.G;
    for (int n = 0; n < c.N; n++)
        for (int k = 0; k < c.K; k++)
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++)
                    for (int cl = 0; cl < Cg; cl++)
                        for (int r = 0; r < c.kh; r++)
                            for (int q = 0; q < c.kw; q++) {
                                const int ih = oh * c.stride - c.pad + r * c.dil, iw = ow * c.stride - c.pad + q * c.dil;
                                if (ih < 0 || iw < 0 || ih >= c.H || iw >= c.W) continue;
                                const int ci = k / Kg * Cg + cl;
                                f((((size_t)n * c.C + ci) * c.H + ih) * c.W + iw,
                                  (((size_t)k * Cg + cl) * c.kh + r) * c.kw + q,
                                  (((size_t)n * c.K + k) * ho + oh) * wo + ow);
                            }
}

/* Calls f(xi, wi, yi) once per product dy[yi] * w[wi] that input gradient
 * xi sums, each xi's in the order (k, r, q). */
template <class F>
static void each_dx_term(const ccase &c, F f) {
    const int ho = outdim(c.H, c.kh, c.pad, c.stride, c.dil), wo = outdim(c.W, c.kw, c.pad, c.stride, c.dil);
    const int Cg = c.C / c.G, Kg = c.K / c.G;
    for (int n = 0; n < c.N; n++)
        for (int ci = 0; ci < c.C; ci++)
            for (int ih = 0; ih < c.H; ih++)
                for (int iw = 0; iw < c.W; iw++)
                    for (int k = ci / Cg * Kg; k < (ci / Cg + 1) * Kg; k++)
                        for (int r = 0; r < c.kh; r++)
                            for (int q = 0; q < c.kw; q++) {
                                const int sh = ih + c.pad - r * c.dil, sw = iw + c.pad - q * c.dil;
                                if (sh < 0 || sw < 0 || sh % c.stride || sw % c.stride) continue;
                                const int oh = sh / c.stride, ow = sw / c.stride;
                                if (oh >= ho || ow >= wo) continue;
                                f((((size_t)n * c.C + ci) * c.H + ih) * c.W + iw,
                                  (((size_t)k * Cg + ci % Cg) * c.kh + r) * c.kw + q,
                                  (((size_t)n * c.K + k) * ho + oh) * wo + ow);
                            }
}

struct conv {
    ccase c;
    cudnnTensorFormat_t f;   /* of every tensor and the filter on the device; the host data and references are NCHW */
    int ho, wo;
    size_t nx, nw, ny;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    std::vector<float> hx, hw, hdy;
    float *x, *w, *y, *dx, *dw, *dy;
    void *ws;
    size_t ws_bytes;
    /* references (double) and the sums of |terms| */
    std::vector<double> y_ref, y_abs, dx_ref, dx_abs, dw_ref, dw_abs;
    double g_fwd, g_bd, g_bf;   /* error-bound factors (T + 3) * 2^-24 */
};

static void reference(conv &v, const std::vector<float> &x, const std::vector<float> &w, const std::vector<float> &dy) {
    v.y_ref.assign(v.ny, 0);
    v.y_abs.assign(v.ny, 0);
    v.dx_ref.assign(v.nx, 0);
    v.dx_abs.assign(v.nx, 0);
    v.dw_ref.assign(v.nw, 0);
    v.dw_abs.assign(v.nw, 0);
    each_term(v.c, [&](size_t xi, size_t wi, size_t yi) {
        const double p = (double)x[xi] * w[wi], pd = (double)dy[yi] * w[wi], pw = (double)x[xi] * dy[yi];
        v.y_ref[yi] += p;
        v.y_abs[yi] += fabs(p);
        v.dx_ref[xi] += pd;
        v.dx_abs[xi] += fabs(pd);
        v.dw_ref[wi] += pw;
        v.dw_abs[wi] += fabs(pw);
    });
}

/* [n][c][h][w] <-> [n][h][w][c] (a filter: n = k, c = input channels per group) */
static std::vector<float> nchw_nhwc(const std::vector<float> &a, int N, int C, int H, int W, bool to_nhwc) {
    std::vector<float> r(a.size());
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    const size_t i = (((size_t)n * C + c) * H + h) * W + w, j = (((size_t)n * H + h) * W + w) * C + c;
                    if (to_nhwc) r[j] = a[i];
                    else r[i] = a[j];
                }
    return r;
}

/* v's x / dx, w / dw or y / dy data between NCHW order (host) and v's format */
enum tensor { TX, TW, TY };
static std::vector<float> relayout(const conv &v, tensor t, const std::vector<float> &a, bool to_nhwc) {
    if (v.f != CUDNN_TENSOR_NHWC) return a;
    if (t == TX) return nchw_nhwc(a, v.c.N, v.c.C, v.c.H, v.c.W, to_nhwc);
    if (t == TW) return nchw_nhwc(a, v.c.K, v.c.C / v.c.G, v.c.kh, v.c.kw, to_nhwc);
    return nchw_nhwc(a, v.c.N, v.c.K, v.ho, v.wo, to_nhwc);
}
/* NCHW-ordered host data into v's device buffer d, and back */
static void put(const conv &v, tensor t, float *d, const std::vector<float> &nchw) { dset(d, relayout(v, t, nchw, true)); }
static std::vector<float> get(const conv &v, tensor t, const float *d) {
    const size_t n = t == TX ? v.nx : t == TW ? v.nw : v.ny;
    return relayout(v, t, dget(d, n), false);
}

/* The case's descriptors (all in format f) and buffers; random data, or
 * `same`'s data (the same case) so that two formats compute on one input. */
static void conv_init(conv &v, const ccase &c, cudnnTensorFormat_t f = CUDNN_TENSOR_NCHW, const conv *same = NULL) {
    v.c = c;
    v.f = f;
    v.ho = outdim(c.H, c.kh, c.pad, c.stride, c.dil);
    v.wo = outdim(c.W, c.kw, c.pad, c.stride, c.dil);
    v.nx = (size_t)c.N * c.C * c.H * c.W;
    v.nw = (size_t)c.K * (c.C / c.G) * c.kh * c.kw;
    v.ny = (size_t)c.N * c.K * v.ho * v.wo;
    cudnnCreateTensorDescriptor(&v.xd);
    cudnnCreateTensorDescriptor(&v.yd);
    cudnnCreateFilterDescriptor(&v.wd);
    cudnnCreateConvolutionDescriptor(&v.cd);
    DNN_IS(cudnnSetTensor4dDescriptor(v.xd, f, CUDNN_DATA_FLOAT, c.N, c.C, c.H, c.W), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnSetFilter4dDescriptor(v.wd, CUDNN_DATA_FLOAT, f, c.K, c.C / c.G, c.kh, c.kw), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnSetConvolution2dDescriptor(v.cd, c.pad, c.pad, c.stride, c.stride, c.dil, c.dil, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT),
           CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnSetConvolutionGroupCount(v.cd, c.G), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnSetConvolutionMathType(v.cd, CUDNN_FMA_MATH), CUDNN_STATUS_SUCCESS);
    int n = 0, k = 0, h = 0, w = 0;
    DNN_IS(cudnnGetConvolution2dForwardOutputDim(v.cd, v.xd, v.wd, &n, &k, &h, &w), CUDNN_STATUS_SUCCESS);
    CHECK(n == c.N && k == c.K && h == v.ho && w == v.wo, "%s: output %dx%dx%dx%d, want %dx%dx%dx%d", c.name, n, k, h, w,
          c.N, c.K, v.ho, v.wo);
    DNN_IS(cudnnSetTensor4dDescriptor(v.yd, f, CUDNN_DATA_FLOAT, c.N, c.K, v.ho, v.wo), CUDNN_STATUS_SUCCESS);
    v.hx = same ? same->hx : randv(v.nx);
    v.hw = same ? same->hw : randv(v.nw);
    v.hdy = same ? same->hdy : randv(v.ny);
    v.x = dput(relayout(v, TX, v.hx, true));
    v.w = dput(relayout(v, TW, v.hw, true));
    v.dy = dput(relayout(v, TY, v.hdy, true));
    v.y = (float *)dalloc(v.ny * 4);
    v.dx = (float *)dalloc(v.nx * 4);
    v.dw = (float *)dalloc(v.nw * 4);
    v.ws_bytes = 4 * (v.nx + v.nw) + 4 * (size_t)c.kh * c.kw * v.ho * v.wo + 4096;   /* over every algorithm's */
    v.ws = dalloc(v.ws_bytes);
    reference(v, v.hx, v.hw, v.hdy);
    v.g_fwd = ((c.C / c.G) * c.kh * c.kw + 3) * U;
    v.g_bd = ((c.K / c.G) * c.kh * c.kw + 3) * U;
    v.g_bf = ((double)c.N * v.ho * v.wo + 3) * U;
}

static void conv_free(conv &v) {
    cudaFree(v.x);
    cudaFree(v.w);
    cudaFree(v.y);
    cudaFree(v.dx);
    cudaFree(v.dw);
    cudaFree(v.dy);
    cudaFree(v.ws);
    cudnnDestroyTensorDescriptor(v.xd);
    cudnnDestroyTensorDescriptor(v.yd);
    cudnnDestroyFilterDescriptor(v.wd);
    cudnnDestroyConvolutionDescriptor(v.cd);
}

static size_t ws_fwd(conv &v, cudnnConvolutionFwdAlgo_t a) {
    size_t b = 0;
    DNN_IS(cudnnGetConvolutionForwardWorkspaceSize(dnn, v.xd, v.wd, v.cd, v.yd, a, &b), CUDNN_STATUS_SUCCESS);
    return b;
}
static size_t ws_bd(conv &v, cudnnConvolutionBwdDataAlgo_t a) {
    size_t b = 0;
    DNN_IS(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn, v.wd, v.yd, v.cd, v.xd, a, &b), CUDNN_STATUS_SUCCESS);
    return b;
}
static size_t ws_bf(conv &v, cudnnConvolutionBwdFilterAlgo_t a) {
    size_t b = 0;
    DNN_IS(cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn, v.xd, v.yd, v.cd, v.wd, a, &b), CUDNN_STATUS_SUCCESS);
    return b;
}

/* The three calls with the case's buffers; the workspace is the algorithm's size. */
static cudnnStatus_t fwd(conv &v, cudnnConvolutionFwdAlgo_t a, float alpha = 1, float beta = 0) {
    return cudnnConvolutionForward(dnn, &alpha, v.xd, v.x, v.wd, v.w, v.cd, a, v.ws, ws_fwd(v, a), &beta, v.yd, v.y);
}
static cudnnStatus_t bwd_data(conv &v, cudnnConvolutionBwdDataAlgo_t a, float alpha = 1, float beta = 0) {
    return cudnnConvolutionBackwardData(dnn, &alpha, v.wd, v.w, v.yd, v.dy, v.cd, a, v.ws, ws_bd(v, a), &beta, v.xd,
                                        v.dx);
}
static cudnnStatus_t bwd_filter(conv &v, cudnnConvolutionBwdFilterAlgo_t a, float alpha = 1, float beta = 0) {
    return cudnnConvolutionBackwardFilter(dnn, &alpha, v.xd, v.x, v.yd, v.dy, v.cd, a, v.ws, ws_bf(v, a), &beta, v.wd,
                                          v.dw);
}
static void nan_fill(float *d, size_t n) { dset(d, std::vector<float>(n, NAN)); }

static const cudnnConvolutionFwdAlgo_t FWD_ALGOS[] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                                      CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                                      CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED};
static const cudnnConvolutionBwdDataAlgo_t BD_ALGOS[] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
                                                         CUDNN_CONVOLUTION_BWD_DATA_ALGO_1};
static const cudnnConvolutionBwdFilterAlgo_t BF_ALGOS[] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
                                                           CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                                           CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3};

static const ccase CASES[] = {
    {"3x3 p1 s1 N1 odd 9x7", 1, 3, 9, 7, 4, 3, 3, 1, 1, 1, 1},
    {"3x3 p1 s2 g2 N3 11x10", 3, 4, 11, 10, 6, 3, 3, 1, 2, 1, 2},
    {"3x3 p1 s1 g32 (ResNeXt) N2 5x5", 2, 64, 5, 5, 64, 3, 3, 1, 1, 1, 32},
    {"1x1 p0 s1 N3 6x7", 3, 5, 6, 7, 3, 1, 1, 0, 1, 1, 1},
    {"1x1 p0 s2 N3 7x7 (downsample)", 3, 8, 7, 7, 16, 1, 1, 0, 2, 1, 1},
    {"7x7 p3 s2 N1 15x13 (stem)", 1, 3, 15, 13, 4, 7, 7, 3, 2, 1, 1},
    {"3x3 p0 s1 N3 odd 8x9", 3, 2, 8, 9, 5, 3, 3, 0, 1, 1, 1},
    {"3x3 p2 s1 dil2 N1 9x9", 1, 3, 9, 9, 2, 3, 3, 2, 1, 2, 1},
    {"3x3 p1 s2 g2 7x6 tail cut", 1, 4, 7, 6, 4, 3, 3, 1, 2, 1, 2},
};

/* ---- convolution checks ------------------------------------------------------------- */
static void test_cases(void) {
    for (const ccase &c : CASES) {
        conv v;
        conv_init(v, c);
        const int before = n_fail;
        for (auto a : FWD_ALGOS) {
            nan_fill(v.y, v.ny);
            DNN_IS(fwd(v, a), CUDNN_STATUS_SUCCESS);
            CHECK(!bad_elems("forward", dget(v.y, v.ny), v.y_ref, v.y_abs, v.g_fwd), "%s: forward algo %d", c.name, a);
        }
        for (auto a : BD_ALGOS) {
            nan_fill(v.dx, v.nx);
            DNN_IS(bwd_data(v, a), CUDNN_STATUS_SUCCESS);
            CHECK(!bad_elems("bwd data", dget(v.dx, v.nx), v.dx_ref, v.dx_abs, v.g_bd), "%s: bwd data algo %d", c.name, a);
        }
        for (auto a : BF_ALGOS) {
            nan_fill(v.dw, v.nw);
            DNN_IS(bwd_filter(v, a), CUDNN_STATUS_SUCCESS);
            CHECK(!bad_elems("bwd filter", dget(v.dw, v.nw), v.dw_ref, v.dw_abs, v.g_bf), "%s: bwd filter algo %d",
                  c.name, a);
        }
        printf("%s conv %-32s forward x3, bwd-data x2, bwd-filter x3 algorithms vs the double reference\n",
               n_fail == before ? "ok  " : "FAIL", c.name);
        conv_free(v);
    }
}

/* The order the emulator promises (lt_cuemu_dnn.cc): each output of the
 * forward sums its in-bounds (c, r, q) terms in that order, each input
 * gradient of a deterministic algorithm its (k, r, q) terms, and each
 * filter gradient its (n, oh, ow) terms, in float from +0, each product
 * rounded alone. each_term and each_dx_term visit every element's terms in
 * just those orders, so float sums along them are the emulator's bits: a
 * change of order (or a padding term that did change a sum) shows here,
 * where the double reference's bound would not. The input gradient is
 * checked a second time with an infinite weight: only the elements that
 * weight's terms reach become Inf or NaN (no padding term spreads it). */
static void test_sum_order(void) {
    for (const ccase &c : CASES) {
        conv v;
        conv_init(v, c);
        const int before = n_fail;
        std::vector<float> y(v.ny, 0.0f), dw(v.nw, 0.0f);
        each_term(c, [&](size_t xi, size_t wi, size_t yi) {
            const float p = v.hx[xi] * v.hw[wi], q = v.hx[xi] * v.hdy[yi];
            y[yi] += p;
            dw[wi] += q;
        });
        for (int inf = 0; inf < 2; inf++) {
            std::vector<float> w = v.hw, dx(v.nx, 0.0f);
            if (inf) w[v.nw / 2] = -INFINITY;
            each_dx_term(c, [&](size_t xi, size_t wi, size_t yi) { dx[xi] += v.hdy[yi] * w[wi]; });
            put(v, TW, v.w, w);
            nan_fill(v.dx, v.nx);
            DNN_IS(bwd_data(v, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1), CUDNN_STATUS_SUCCESS);
            size_t nonfinite = 0;
            for (float e : dx) nonfinite += !std::isfinite(e);
            CHECK(n_differ(get(v, TX, v.dx), dx) == 0 && (nonfinite > 0) == (inf == 1) && nonfinite < v.nx,
                  "%s: bwd data algo 1%s: not the (k, r, q) sums (%zu of %zu not finite)", c.name,
                  inf ? " with an infinite weight" : "", nonfinite, v.nx);
        }
        put(v, TW, v.w, v.hw);
        for (auto a : FWD_ALGOS) {
            nan_fill(v.y, v.ny);
            DNN_IS(fwd(v, a), CUDNN_STATUS_SUCCESS);
            CHECK(n_differ(relayout(v, TY, dget(v.y, v.ny), false), y) == 0, "%s: forward algo %d: not the (c, r, q) sums",
                  c.name, a);
        }
        nan_fill(v.dw, v.nw);
        DNN_IS(bwd_filter(v, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1), CUDNN_STATUS_SUCCESS);
        CHECK(n_differ(relayout(v, TW, dget(v.dw, v.nw), false), dw) == 0, "%s: bwd filter algo 1: not the (n, oh, ow) sums",
              c.name);
        printf("%s conv %-32s forward x3, bwd-data algo 1 (also with an inf weight), bwd-filter algo 1: the promised "
               "order of sums, bit for bit\n",
               n_fail == before ? "ok  " : "FAIL", c.name);
        conv_free(v);
    }
}

static void test_alpha_beta(void) {
    conv v;
    conv_init(v, CASES[1]);
    const int before = n_fail;
    const auto A = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    /* beta 0: the NaN in y is never read */
    nan_fill(v.y, v.ny);
    DNN_IS(fwd(v, A, 0.5f, 0.0f), CUDNN_STATUS_SUCCESS);
    CHECK(!bad_elems("fwd a=.5 b=0", dget(v.y, v.ny), v.y_ref, v.y_abs, v.g_fwd, 0.5), "forward alpha 0.5 beta 0 over NaN");
    const std::vector<float> y0 = randv(v.ny), dx0 = randv(v.nx), dw0 = randv(v.nw);
    for (float beta : {1.0f, -0.25f}) {
        dset(v.y, y0);
        DNN_IS(fwd(v, A, 2.0f, beta), CUDNN_STATUS_SUCCESS);
        CHECK(!bad_elems("fwd beta", dget(v.y, v.ny), v.y_ref, v.y_abs, v.g_fwd, 2.0, beta, &y0), "forward beta %g", beta);
        dset(v.dx, dx0);
        DNN_IS(bwd_data(v, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, 1.0f, beta), CUDNN_STATUS_SUCCESS);
        CHECK(!bad_elems("bwd data beta", dget(v.dx, v.nx), v.dx_ref, v.dx_abs, v.g_bd, 1.0, beta, &dx0),
              "bwd data beta %g", beta);
        dset(v.dw, dw0);
        DNN_IS(bwd_filter(v, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, 1.0f, beta), CUDNN_STATUS_SUCCESS);
        CHECK(!bad_elems("bwd filter beta", dget(v.dw, v.nw), v.dw_ref, v.dw_abs, v.g_bf, 1.0, beta, &dw0),
              "bwd filter beta %g", beta);
    }
    /* the backward calls with beta 0 over NaN (set_dx in lt_cuda_conv.cu) */
    nan_fill(v.dx, v.nx);
    DNN_IS(bwd_data(v, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, -1.0f, 0.0f), CUDNN_STATUS_SUCCESS);
    CHECK(!bad_elems("bwd data b=0", dget(v.dx, v.nx), v.dx_ref, v.dx_abs, v.g_bd, -1.0), "bwd data beta 0 over NaN");
    nan_fill(v.dw, v.nw);
    DNN_IS(bwd_filter(v, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, 3.0f, 0.0f), CUDNN_STATUS_SUCCESS);
    CHECK(!bad_elems("bwd filter b=0", dget(v.dw, v.nw), v.dw_ref, v.dw_abs, v.g_bf, 3.0), "bwd filter beta 0 over NaN");
    printf("%s alpha/beta: beta 0 never reads NaN outputs, beta 1 and -0.25 scale the prior values (3 directions)\n",
           n_fail == before ? "ok  " : "FAIL");
    conv_free(v);
}

/* L(x, w) = sum r .* conv(x, w): dL/dx = bwd_data(r), dL/dw = bwd_filter(r),
 * checked by central differences of the emulator's own forward. */
static void test_finite_differences(void) {
    conv v;
    conv_init(v, CASES[1]);
    const int before = n_fail;
    const auto F = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    auto loss = [&](const std::vector<float> &x, const std::vector<float> &w) {
        dset(v.x, x);
        dset(v.w, w);
        DNN_IS(fwd(v, F), CUDNN_STATUS_SUCCESS);
        const std::vector<float> y = dget(v.y, v.ny);
        double L = 0;
        for (size_t i = 0; i < v.ny; i++) L += (double)v.hdy[i] * y[i];
        return L;
    };
    DNN_IS(bwd_data(v, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1), CUDNN_STATUS_SUCCESS);
    DNN_IS(bwd_filter(v, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1), CUDNN_STATUS_SUCCESS);
    const std::vector<float> gx = dget(v.dx, v.nx), gw = dget(v.dw, v.nw);
    const float h = 0.25f;
    double worst = 0;
    for (int t = 0; t < 12; t++) {
        const size_t i = (size_t)(rng = rng * 6364136223846793005ull + 1442695040888963407ull) % v.nx;
        std::vector<float> xp = v.hx, xm = v.hx;
        xp[i] += h;
        xm[i] -= h;
        const double fd = (loss(xp, v.hw) - loss(xm, v.hw)) / (2.0 * h);
        worst = max_keep_nan(worst, fabs(fd - gx[i]));
        CHECK(fabs(fd - gx[i]) <= 1e-4 * (1 + fabs(fd)), "dL/dx[%zu]: difference %.7g, bwd data %.7g", i, fd, gx[i]);
        const size_t j = (size_t)(rng = rng * 6364136223846793005ull + 1442695040888963407ull) % v.nw;
        std::vector<float> wp = v.hw, wm = v.hw;
        wp[j] += h;
        wm[j] -= h;
        const double fdw = (loss(v.hx, wp) - loss(v.hx, wm)) / (2.0 * h);
        worst = max_keep_nan(worst, fabs(fdw - gw[j]));
        CHECK(fabs(fdw - gw[j]) <= 1e-4 * (1 + fabs(fdw)), "dL/dw[%zu]: difference %.7g, bwd filter %.7g", j, fdw, gw[j]);
    }
    printf("%s gradients: central differences of sum(r .* forward) match bwd-data and bwd-filter at 12+12 points "
           "(worst |diff| %.2g)\n", n_fail == before ? "ok  " : "FAIL", worst);
    conv_free(v);
}

static void test_tf32(void) {
    conv v;
    conv_init(v, CASES[2]);   /* ResNeXt 3x3, 18 terms per output */
    const int before = n_fail;
    const auto F = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    const auto BD = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    const auto BF = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    DNN_IS(fwd(v, F), CUDNN_STATUS_SUCCESS);
    const std::vector<float> y_fma = dget(v.y, v.ny);
    /* the reference with TF32-rounded inputs */
    conv t = v;
    reference(t, tf32v(v.hx), tf32v(v.hw), tf32v(v.hdy));
    DNN_IS(cudnnSetConvolutionMathType(v.cd, CUDNN_TENSOR_OP_MATH), CUDNN_STATUS_SUCCESS);
    DNN_IS(fwd(v, F), CUDNN_STATUS_SUCCESS);
    /* the math type of the call counts, not the one at the synchronisation */
    DNN_IS(cudnnSetConvolutionMathType(v.cd, CUDNN_FMA_MATH), CUDNN_STATUS_SUCCESS);
    const std::vector<float> y_tf = dget(v.y, v.ny);
    CHECK(!bad_elems("tf32 forward", y_tf, t.y_ref, t.y_abs, v.g_fwd), "TENSOR_OP forward = reference on TF32 inputs");
    double rel = 0;
    for (size_t i = 0; i < v.ny; i++) rel = max_keep_nan(rel, fabs((double)y_tf[i] - y_fma[i]) / v.y_abs[i]);
    CHECK(rel > 1e-5 && rel < 2.5e-3, "TENSOR_OP vs FMA: max |diff| / sum|terms| = %.3g, want ~1e-3", rel);
    DNN_IS(fwd(v, F), CUDNN_STATUS_SUCCESS);
    CHECK(same_bits(dget(v.y, v.ny), y_fma), "FMA again after TENSOR_OP: the FMA bits");
    DNN_IS(cudnnSetConvolutionMathType(v.cd, CUDNN_DEFAULT_MATH), CUDNN_STATUS_SUCCESS);
    DNN_IS(fwd(v, F), CUDNN_STATUS_SUCCESS);
    CHECK(same_bits(dget(v.y, v.ny), y_fma), "DEFAULT math: plain fp32");
    DNN_IS(cudnnSetConvolutionMathType(v.cd, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION), CUDNN_STATUS_SUCCESS);
    DNN_IS(fwd(v, F), CUDNN_STATUS_SUCCESS);
    CHECK(same_bits(dget(v.y, v.ny), y_tf), "ALLOW_CONVERSION: the TF32 bits");
    DNN_IS(cudnnSetConvolutionMathType(v.cd, CUDNN_TENSOR_OP_MATH), CUDNN_STATUS_SUCCESS);
    DNN_IS(bwd_data(v, BD), CUDNN_STATUS_SUCCESS);
    DNN_IS(bwd_filter(v, BF), CUDNN_STATUS_SUCCESS);
    const std::vector<float> dx_tf = dget(v.dx, v.nx), dw_tf = dget(v.dw, v.nw);
    CHECK(!bad_elems("tf32 bwd data", dx_tf, t.dx_ref, t.dx_abs, v.g_bd), "TENSOR_OP bwd data");
    CHECK(!bad_elems("tf32 bwd filter", dw_tf, t.dw_ref, t.dw_abs, v.g_bf), "TENSOR_OP bwd filter");
    DNN_IS(cudnnSetConvolutionMathType(v.cd, CUDNN_FMA_MATH), CUDNN_STATUS_SUCCESS);
    DNN_IS(bwd_data(v, BD), CUDNN_STATUS_SUCCESS);
    DNN_IS(bwd_filter(v, BF), CUDNN_STATUS_SUCCESS);
    CHECK(n_differ(dget(v.dx, v.nx), dx_tf) > 0 && n_differ(dget(v.dw, v.nw), dw_tf) > 0, "FMA backward differs from TF32");
    printf("%s tf32: TENSOR_OP / ALLOW_CONVERSION = reference on TF32-rounded inputs (3 directions), max rel. "
           "difference from FMA %.2g; DEFAULT / FMA plain fp32; the math of the call, not of the sync\n",
           n_fail == before ? "ok  " : "FAIL", rel);
    conv_free(v);
}

static void test_determinism(void) {
    const ccase big = {"many terms", 3, 8, 16, 16, 64, 3, 3, 1, 1, 1, 1};   /* 576 / 768 terms per sum */
    conv v;
    conv_init(v, big);
    const int before = n_fail;
    size_t d_bd = 0, d_bf0 = 0, d_bf3 = 0;
    {
        DNN_IS(bwd_data(v, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0), CUDNN_STATUS_SUCCESS);
        const std::vector<float> a = dget(v.dx, v.nx);
        DNN_IS(bwd_data(v, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0), CUDNN_STATUS_SUCCESS);
        const std::vector<float> b = dget(v.dx, v.nx);
        d_bd = n_differ(a, b);
        CHECK(d_bd > 0, "bwd data ALGO_0 twice: identical bits (it must be non-deterministic)");
        CHECK(!bad_elems("ALGO_0", b, v.dx_ref, v.dx_abs, v.g_bd), "bwd data ALGO_0 still within the bound");
    }
    for (auto a3 : {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3}) {
        DNN_IS(bwd_filter(v, a3), CUDNN_STATUS_SUCCESS);
        const std::vector<float> a = dget(v.dw, v.nw);
        DNN_IS(bwd_filter(v, a3), CUDNN_STATUS_SUCCESS);
        const std::vector<float> b = dget(v.dw, v.nw);
        (a3 == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 ? d_bf0 : d_bf3) = n_differ(a, b);
        CHECK(n_differ(a, b) > 0, "bwd filter algo %d twice: identical bits", a3);
        CHECK(!bad_elems("nondet filter", b, v.dw_ref, v.dw_abs, v.g_bf), "bwd filter algo %d within the bound", a3);
    }
    DNN_IS(bwd_data(v, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1), CUDNN_STATUS_SUCCESS);
    const std::vector<float> d1 = dget(v.dx, v.nx);
    DNN_IS(bwd_data(v, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1), CUDNN_STATUS_SUCCESS);
    CHECK(same_bits(d1, dget(v.dx, v.nx)), "bwd data ALGO_1: not bit-identical");
    DNN_IS(bwd_filter(v, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1), CUDNN_STATUS_SUCCESS);
    const std::vector<float> f1 = dget(v.dw, v.nw);
    DNN_IS(bwd_filter(v, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1), CUDNN_STATUS_SUCCESS);
    CHECK(same_bits(f1, dget(v.dw, v.nw)), "bwd filter ALGO_1: not bit-identical");
    for (auto a : FWD_ALGOS) {
        DNN_IS(fwd(v, a), CUDNN_STATUS_SUCCESS);
        const std::vector<float> y1 = dget(v.y, v.ny);
        DNN_IS(fwd(v, a), CUDNN_STATUS_SUCCESS);
        CHECK(same_bits(y1, dget(v.y, v.ny)), "forward algo %d: not bit-identical", a);
    }
    printf("%s determinism: two runs differ in %zu/%zu (bwd-data ALGO_0), %zu, %zu/%zu (bwd-filter ALGO_0, ALGO_3) "
           "elements; bwd ALGO_1 and the 3 forward algorithms bit-identical\n",
           n_fail == before ? "ok  " : "FAIL", d_bd, v.nx, d_bf0, d_bf3, v.nw);
    conv_free(v);
}

static void test_workspace_and_pointers(void) {
    conv v;
    conv_init(v, CASES[1]);
    const int before = n_fail;
    const auto P = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    const float one = 1, zero = 0;
    const size_t need = ws_fwd(v, P);
    CHECK(need > 0, "IMPLICIT_PRECOMP_GEMM needs workspace");
    CHECK(ws_fwd(v, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM) == 0, "IMPLICIT_GEMM needs none");
    unsigned char *ws = (unsigned char *)dalloc(need + 64);
    CHECK(cudaMemset(ws, 0, need + 64) == cudaSuccess, "memset");
    std::vector<char> host(need + 64);
    void *small = dalloc(need - 4);
#define FWD_WS(p, bytes) cudnnConvolutionForward(dnn, &one, v.xd, v.x, v.wd, v.w, v.cd, P, (p), (bytes), &zero, v.yd, v.y)
    DNN_IS(FWD_WS(ws, need - 1), CUDNN_STATUS_BAD_PARAM);
    DNN_IS(FWD_WS(NULL, need), CUDNN_STATUS_BAD_PARAM);
    DNN_IS(FWD_WS(host.data(), need), CUDNN_STATUS_BAD_PARAM);
    DNN_IS(FWD_WS(small, need), CUDNN_STATUS_BAD_PARAM);
    DNN_IS(FWD_WS(ws, need), CUDNN_STATUS_SUCCESS);
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "sync");
    cudaMemcpy(host.data(), ws, need + 64, cudaMemcpyDeviceToHost);
    size_t garbage = 0, beyond = 0;
    for (size_t i = 0; i < need; i++) garbage += (unsigned char)host[i] == 0xff;
    for (size_t i = need; i < need + 64; i++) beyond += host[i] != 0;
    CHECK(garbage == need && beyond == 0, "after the call %zu/%zu workspace bytes are garbage, %zu past it changed",
          garbage, need, beyond);
    DNN_IS(cudnnConvolutionForward(dnn, &one, v.xd, v.x, v.wd, v.w, v.cd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL,
                                   0, &zero, v.yd, v.y),
           CUDNN_STATUS_SUCCESS);
    /* backward workspaces */
    const size_t nbd = ws_bd(v, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1), nbf = ws_bf(v, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1),
                 nbf3 = ws_bf(v, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3);
    CHECK(nbd > 0 && nbf > 0 && nbf3 > 0, "backward ALGO_1 / ALGO_3 need workspace");
    CHECK(ws_bd(v, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0) == 0 && ws_bf(v, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0) == 0,
          "backward ALGO_0 needs none");
    DNN_IS(cudnnConvolutionBackwardData(dnn, &one, v.wd, v.w, v.yd, v.dy, v.cd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, v.ws,
                                        nbd - 1, &zero, v.xd, v.dx),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionBackwardFilter(dnn, &one, v.xd, v.x, v.yd, v.dy, v.cd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1,
                                          v.ws, nbf - 1, &zero, v.wd, v.dw),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionBackwardFilter(dnn, &one, v.xd, v.x, v.yd, v.dy, v.cd, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3,
                                          host.data(), nbf3, &zero, v.wd, v.dw),
           CUDNN_STATUS_BAD_PARAM);

    /* tensors: host memory, an overrun, NULL; a refused call queues nothing */
    const auto G = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    std::vector<float> hx = v.hx;
    float *w_short = (float *)dalloc(v.nw * 4);
    CHECK(cudaMemset(v.y, 0, v.ny * 4) == cudaSuccess, "memset");
    DNN_IS(cudnnConvolutionForward(dnn, &one, v.xd, hx.data(), v.wd, v.w, v.cd, G, NULL, 0, &zero, v.yd, v.y),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionForward(dnn, &one, v.xd, v.x, v.wd, w_short + 1, v.cd, G, NULL, 0, &zero, v.yd, v.y),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionForward(dnn, &one, v.xd, v.x, v.wd, v.w, v.cd, G, NULL, 0, &zero, v.yd, NULL),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionForward(dnn, NULL, v.xd, v.x, v.wd, v.w, v.cd, G, NULL, 0, &zero, v.yd, v.y),
           CUDNN_STATUS_BAD_PARAM);
    const std::vector<float> y = dget(v.y, v.ny);
    size_t touched = 0;
    for (float f : y) touched += f != 0.0f;
    CHECK(touched == 0, "a refused forward changed %zu outputs", touched);
    std::vector<float> hdx(v.nx), hdw(v.nw), hdy = v.hdy;
    const auto BD0 = CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
    const auto BF0 = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0;
    DNN_IS(cudnnConvolutionBackwardData(dnn, &one, v.wd, v.w, v.yd, v.dy, v.cd, BD0, NULL, 0, &zero, v.xd, hdx.data()),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionBackwardData(dnn, &one, v.wd, v.w, v.yd, hdy.data(), v.cd, BD0, NULL, 0, &zero, v.xd, v.dx),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionBackwardFilter(dnn, &one, v.xd, v.x, v.yd, v.dy, v.cd, BF0, NULL, 0, &zero, v.wd, hdw.data()),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionBackwardFilter(dnn, &one, v.xd, hx.data(), v.yd, v.dy, v.cd, BF0, NULL, 0, &zero, v.wd, v.dw),
           CUDNN_STATUS_BAD_PARAM);
    printf("%s workspace (too small, NULL, host, short allocation refused; 0xff garbage over exactly the needed bytes) "
           "and tensor pointers (host, overrun, NULL refused, nothing queued)\n", n_fail == before ? "ok  " : "FAIL");
    cudaFree(ws);
    cudaFree(small);
    cudaFree(w_short);
    conv_free(v);
}

static void test_descriptors(void) {
    const int before = n_fail;
    cudnnTensorDescriptor_t t, y;
    cudnnFilterDescriptor_t f;
    cudnnConvolutionDescriptor_t c;
    cudnnCreateTensorDescriptor(&t);
    cudnnCreateTensorDescriptor(&y);
    cudnnCreateFilterDescriptor(&f);
    cudnnCreateConvolutionDescriptor(&c);
    DNN_IS(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 0, 3, 8, 8), CUDNN_STATUS_BAD_PARAM);
    /* NCHW_VECT_C (2) is not emulated; NHWC is (below, and test_nhwc) */
    DNN_IS(cudnnSetTensor4dDescriptor(t, (cudnnTensorFormat_t)2, CUDNN_DATA_FLOAT, 2, 3, 8, 8), CUDNN_STATUS_NOT_SUPPORTED);
    DNN_IS(cudnnSetFilter4dDescriptor(f, CUDNN_DATA_FLOAT, (cudnnTensorFormat_t)2, 4, 3, 3, 3), CUDNN_STATUS_NOT_SUPPORTED);
    DNN_IS(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, (cudnnDataType_t)2, 2, 3, 8, 8), CUDNN_STATUS_NOT_SUPPORTED);
    DNN_IS(cudnnSetFilter4dDescriptor(f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 3, 0, 3), CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnSetConvolution2dDescriptor(c, 1, 1, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnSetConvolution2dDescriptor(c, -1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnSetConvolution2dDescriptor(c, 1, 1, 1, 1, 1, 1, (cudnnConvolutionMode_t)0, CUDNN_DATA_FLOAT),
           CUDNN_STATUS_NOT_SUPPORTED);
    DNN_IS(cudnnSetConvolutionGroupCount(c, 0), CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnSetConvolutionMathType(c, (cudnnMathType_t)7), CUDNN_STATUS_BAD_PARAM);
    int n, k, h, w;
    /* never set: refused */
    DNN_IS(cudnnGetConvolution2dForwardOutputDim(c, t, f, &n, &k, &h, &w), CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 2, 3, 8, 8), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnSetFilter4dDescriptor(f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 4, 3, 3, 3), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnSetTensor4dDescriptor(t, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 6, 8, 8), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnSetConvolution2dDescriptor(c, 1, 1, 2, 2, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
           CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnSetFilter4dDescriptor(f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 6, 3, 3), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnGetConvolution2dForwardOutputDim(c, t, f, &n, &k, &h, &w), CUDNN_STATUS_SUCCESS);
    CHECK(n == 2 && k == 4 && h == 4 && w == 4, "output %dx%dx%dx%d, want 2x4x4x4", n, k, h, w);
    DNN_IS(cudnnSetConvolutionGroupCount(c, 2), CUDNN_STATUS_SUCCESS);   /* filter C 6 * 2 != 6 */
    DNN_IS(cudnnGetConvolution2dForwardOutputDim(c, t, f, &n, &k, &h, &w), CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnSetFilter4dDescriptor(f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 5, 3, 3, 3), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnGetConvolution2dForwardOutputDim(c, t, f, &n, &k, &h, &w), CUDNN_STATUS_BAD_PARAM);   /* 5 % 2 */
    DNN_IS(cudnnSetFilter4dDescriptor(f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 3, 11, 3), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnGetConvolution2dForwardOutputDim(c, t, f, &n, &k, &h, &w), CUDNN_STATUS_BAD_PARAM);   /* 11 > 8+2 */
    DNN_IS(cudnnSetFilter4dDescriptor(f, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 3, 3, 3), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnGetConvolution2dForwardOutputDim(c, t, f, &n, &k, &h, &w), CUDNN_STATUS_SUCCESS);
    /* output descriptors that disagree with the convolution; unknown or unemulated algorithms */
    size_t b;
    DNN_IS(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 4, 4, 5), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnGetConvolutionForwardWorkspaceSize(dnn, t, f, c, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, &b),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn, f, y, c, t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, &b),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 4, 4, 4), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnGetConvolutionForwardWorkspaceSize(dnn, t, f, c, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, &b),
           CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnGetConvolutionForwardWorkspaceSize(dnn, t, f, c, y, CUDNN_CONVOLUTION_FWD_ALGO_FFT, &b),
           CUDNN_STATUS_NOT_SUPPORTED);
    DNN_IS(cudnnGetConvolutionForwardWorkspaceSize(dnn, t, f, c, y, (cudnnConvolutionFwdAlgo_t)99, &b),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn, t, y, c, f, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD, &b),
           CUDNN_STATUS_NOT_SUPPORTED);
    DNN_IS(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn, f, y, c, t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, &b),
           CUDNN_STATUS_NOT_SUPPORTED);
    const float one = 1, zero = 0;
    float *dx = (float *)dalloc(2 * 6 * 8 * 8 * 4), *dw = (float *)dalloc(4 * 3 * 9 * 4), *dy = (float *)dalloc(2 * 4 * 16 * 4);
    DNN_IS(cudnnConvolutionForward(dnn, &one, t, dx, f, dw, c, CUDNN_CONVOLUTION_FWD_ALGO_GEMM, NULL, 0, &zero, y, dy),
           CUDNN_STATUS_NOT_SUPPORTED);
    DNN_IS(cudnnConvolutionForward(dnn, &one, t, dx, f, dw, c, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &zero, y,
                                   dy),
           CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnConvolutionForward(NULL, &one, t, dx, f, dw, c, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &zero,
                                   y, dy),
           CUDNN_STATUS_BAD_PARAM);
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "sync");
    cudaFree(dx);
    cudaFree(dw);
    cudaFree(dy);
    cudnnDestroyTensorDescriptor(t);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyFilterDescriptor(f);
    cudnnDestroyConvolutionDescriptor(c);
    DNN_IS(cudnnDestroyTensorDescriptor(NULL), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnDestroyFilterDescriptor(NULL), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnDestroyConvolutionDescriptor(NULL), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnDestroy(NULL), CUDNN_STATUS_SUCCESS);
    CHECK(cudnnGetVersion() == 91000, "version %zu", cudnnGetVersion());
    CHECK(!strcmp(cudnnGetErrorString(CUDNN_STATUS_BAD_PARAM), "CUDNN_STATUS_BAD_PARAM"), "error string");
    CHECK((int)CUDNN_STATUS_ALLOC_FAILED == 4003 && (int)CUDNN_STATUS_BAD_PARAM == 2000, "status values");
    printf("%s descriptors: bad dims / stride / pad / groups / math refused, NHWC accepted, NCHW_VECT_C / half / "
           "CUDNN_CONVOLUTION not supported, group and kernel-size consistency, output descriptor checks, unknown and "
           "unemulated algorithms; NULL destroys; version, strings\n", n_fail == before ? "ok  " : "FAIL");
}

/* lt_cuda_conv.cu's choice: the first usable entry */
template <class P>
static int pick(const P *p, int n, bool det, bool tf32) {
    for (int i = 0; i < n; i++) {
        if (p[i].status != CUDNN_STATUS_SUCCESS) continue;
        if (det && p[i].determinism != CUDNN_DETERMINISTIC) continue;
        if (tf32 ? p[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION : p[i].mathType != CUDNN_FMA_MATH) continue;
        if (p[i].memory > ((size_t)2 << 30)) continue;
        return i;
    }
    return -1;
}

static void test_heuristics(void) {
    conv v;
    conv_init(v, CASES[1]);
    const int before = n_fail;
    int mf = 0, md = 0, mw = 0;
    DNN_IS(cudnnGetConvolutionForwardAlgorithmMaxCount(dnn, &mf), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(dnn, &md), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(dnn, &mw), CUDNN_STATUS_SUCCESS);
    CHECK(mf >= 1 && mf <= 64 && md >= 1 && md <= 64 && mw >= 1 && mw <= 64, "max counts %d %d %d", mf, md, mw);
    cudnnConvolutionFwdAlgoPerf_t pf[64];
    cudnnConvolutionBwdDataAlgoPerf_t pd[64];
    cudnnConvolutionBwdFilterAlgoPerf_t pw[64];
    int nf = 0, nd = 0, nw = 0;
    /* per mode: what lt_cuda_conv.cu would pick (algorithm, math) */
    struct mode {
        bool det, tf32;
        int fwd, fwd_m, bd, bd_m, bf, bf_m;
    } modes[] = {
        {true, false, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_FMA_MATH, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
         CUDNN_FMA_MATH, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_FMA_MATH},
        {false, false, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_FMA_MATH, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
         CUDNN_FMA_MATH, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_FMA_MATH},
        {true, true, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, CUDNN_TENSOR_OP_MATH, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
         CUDNN_TENSOR_OP_MATH, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_TENSOR_OP_MATH},
        {false, true, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, CUDNN_TENSOR_OP_MATH, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0,
         CUDNN_TENSOR_OP_MATH, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_TENSOR_OP_MATH},
    };
    for (const mode &m : modes) {
        DNN_IS(cudnnSetConvolutionMathType(v.cd, m.tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnGetConvolutionForwardAlgorithm_v7(dnn, v.xd, v.wd, v.cd, v.yd, mf, &nf, pf), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn, v.wd, v.yd, v.cd, v.xd, md, &nd, pd), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnGetConvolutionBackwardFilterAlgorithm_v7(dnn, v.xd, v.yd, v.cd, v.wd, mw, &nw, pw),
               CUDNN_STATUS_SUCCESS);
        CHECK(nf >= 2 && nf <= mf && nd >= 2 && nd <= md && nw >= 2 && nw <= mw, "list lengths %d %d %d", nf, nd, nw);
        const int i = pick(pf, nf, m.det, m.tf32), j = pick(pd, nd, m.det, m.tf32), k = pick(pw, nw, m.det, m.tf32);
        CHECK(i >= 0 && (int)pf[i].algo == m.fwd && (int)pf[i].mathType == m.fwd_m, "det %d tf32 %d: forward pick",
              m.det, m.tf32);
        CHECK(j >= 0 && (int)pd[j].algo == m.bd && (int)pd[j].mathType == m.bd_m, "det %d tf32 %d: bwd data pick", m.det,
              m.tf32);
        CHECK(k >= 0 && (int)pw[k].algo == m.bf && (int)pw[k].mathType == m.bf_m, "det %d tf32 %d: bwd filter pick",
              m.det, m.tf32);
        /* every usable entry's memory is its workspace query, and it runs with exactly that */
        int nondet = 0, unsupported = 0;
        for (int e = 0; e < nf; e++) {
            unsupported += pf[e].status != CUDNN_STATUS_SUCCESS;
            if (pf[e].status != CUDNN_STATUS_SUCCESS) continue;
            CHECK(pf[e].memory == ws_fwd(v, pf[e].algo), "forward entry %d memory", e);
            CHECK(pf[e].determinism == CUDNN_DETERMINISTIC, "forward entries are deterministic");
            CHECK(m.tf32 || pf[e].mathType == CUDNN_FMA_MATH, "FMA math: FMA entries only");
            DNN_IS(fwd(v, pf[e].algo), CUDNN_STATUS_SUCCESS);
        }
        for (int e = 0; e < nd; e++) {
            if (pd[e].status != CUDNN_STATUS_SUCCESS) {
                unsupported++;
                continue;
            }
            nondet += pd[e].determinism == CUDNN_NON_DETERMINISTIC;
            CHECK(pd[e].memory == ws_bd(v, pd[e].algo), "bwd data entry %d memory", e);
            CHECK((pd[e].determinism == CUDNN_NON_DETERMINISTIC) == (pd[e].algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0),
                  "bwd data entry %d determinism", e);
            DNN_IS(bwd_data(v, pd[e].algo), CUDNN_STATUS_SUCCESS);
        }
        for (int e = 0; e < nw; e++) {
            if (pw[e].status != CUDNN_STATUS_SUCCESS) {
                unsupported++;
                continue;
            }
            nondet += pw[e].determinism == CUDNN_NON_DETERMINISTIC;
            CHECK(pw[e].memory == ws_bf(v, pw[e].algo), "bwd filter entry %d memory", e);
            DNN_IS(bwd_filter(v, pw[e].algo), CUDNN_STATUS_SUCCESS);
        }
        CHECK(nondet >= 2 && unsupported >= 3, "lists hold non-deterministic (%d) and unsupported (%d) entries", nondet,
              unsupported);
    }
    /* ALLOW_CONVERSION math: such an entry first, which TF32 mode skips */
    DNN_IS(cudnnSetConvolutionMathType(v.cd, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnGetConvolutionForwardAlgorithm_v7(dnn, v.xd, v.wd, v.cd, v.yd, mf, &nf, pf), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn, v.wd, v.yd, v.cd, v.xd, md, &nd, pd), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnGetConvolutionBackwardFilterAlgorithm_v7(dnn, v.xd, v.yd, v.cd, v.wd, mw, &nw, pw), CUDNN_STATUS_SUCCESS);
    CHECK(pf[0].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && pd[0].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
              pw[0].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION,
          "ALLOW_CONVERSION entries first");
    CHECK(pick(pf, nf, true, true) == 1 && pick(pd, nd, true, true) > 0 && pick(pw, nw, true, true) > 0,
          "TF32 mode skips ALLOW_CONVERSION");
    /* requested count, bad arguments */
    DNN_IS(cudnnGetConvolutionForwardAlgorithm_v7(dnn, v.xd, v.wd, v.cd, v.yd, 1, &nf, pf), CUDNN_STATUS_SUCCESS);
    CHECK(nf == 1, "requested 1, returned %d", nf);
    DNN_IS(cudnnGetConvolutionForwardAlgorithm_v7(dnn, v.xd, v.wd, v.cd, v.yd, 0, &nf, pf), CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn, v.wd, v.xd, v.cd, v.xd, md, &nd, pd), CUDNN_STATUS_BAD_PARAM);
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "sync");
    printf("%s heuristics: lists best first, the picks of lt_cuda_conv.cu in fp32/tf32 x deterministic or not, "
           "memory = workspace query, each usable entry runs, ALLOW_CONVERSION first under that math\n",
           n_fail == before ? "ok  " : "FAIL");
    conv_free(v);
}

/* The searches (cudnnFind*): the heuristic list's supported entries in
 * reverse, with increasing made-up times, then the unsupported ones; and
 * they allocate and synchronise, so a search during a stream capture
 * invalidates it. */
template <class Perf>
static void check_search(const char *dir, const Perf *h, int nh, const Perf *f, int nf) {
    int sup = 0;
    for (int i = 0; i < nh; i++) sup += h[i].status == CUDNN_STATUS_SUCCESS;
    CHECK(nf == nh, "%s: search returned %d entries, heuristics %d", dir, nf, nh);
    int k = 0;
    for (int i = nh - 1; i >= 0 && k < nf; i--) {
        if (h[i].status != CUDNN_STATUS_SUCCESS) continue;
        CHECK(f[k].algo == h[i].algo && f[k].mathType == h[i].mathType && f[k].memory == h[i].memory &&
                  f[k].determinism == h[i].determinism,
              "%s: search entry %d is heuristic entry %d", dir, k, i);
        CHECK(f[k].time > 0 && (k == 0 || f[k].time > f[k - 1].time), "%s: search entry %d time %g", dir, k,
              (double)f[k].time);
        k++;
    }
    CHECK(k == sup, "%s: %d supported entries first", dir, sup);
    for (; k < nf; k++) CHECK(f[k].status != CUDNN_STATUS_SUCCESS, "%s: unsupported entries last", dir);
}

static void test_searches(void) {
    conv v;
    conv_init(v, CASES[1]);
    const int before = n_fail;
    cudnnConvolutionFwdAlgoPerf_t hf[64], ff[64];
    cudnnConvolutionBwdDataAlgoPerf_t hd[64], fd[64];
    cudnnConvolutionBwdFilterAlgoPerf_t hw[64], fw[64];
    for (int tf32 = 0; tf32 < 2; tf32++) {
        int a = 0, b = 0;
        DNN_IS(cudnnSetConvolutionMathType(v.cd, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnGetConvolutionForwardAlgorithm_v7(dnn, v.xd, v.wd, v.cd, v.yd, 64, &a, hf), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnFindConvolutionForwardAlgorithm(dnn, v.xd, v.wd, v.cd, v.yd, 64, &b, ff), CUDNN_STATUS_SUCCESS);
        check_search("forward", hf, a, ff, b);
        DNN_IS(cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn, v.wd, v.yd, v.cd, v.xd, 64, &a, hd), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnFindConvolutionBackwardDataAlgorithm(dnn, v.wd, v.yd, v.cd, v.xd, 64, &b, fd), CUDNN_STATUS_SUCCESS);
        check_search("bwd data", hd, a, fd, b);
        DNN_IS(cudnnGetConvolutionBackwardFilterAlgorithm_v7(dnn, v.xd, v.yd, v.cd, v.wd, 64, &a, hw),
               CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnFindConvolutionBackwardFilterAlgorithm(dnn, v.xd, v.yd, v.cd, v.wd, 64, &b, fw), CUDNN_STATUS_SUCCESS);
        check_search("bwd filter", hw, a, fw, b);
        CHECK(ff[0].algo != hf[0].algo || ff[0].mathType != hf[0].mathType, "tf32 %d: the search's first differs", tf32);
    }
    int b = 0;
    DNN_IS(cudnnFindConvolutionForwardAlgorithm(dnn, v.xd, v.wd, v.cd, v.yd, 1, &b, ff), CUDNN_STATUS_SUCCESS);
    CHECK(b == 1, "requested 1, returned %d", b);
    DNN_IS(cudnnFindConvolutionForwardAlgorithm(dnn, v.xd, v.wd, v.cd, v.yd, 0, &b, ff), CUDNN_STATUS_BAD_PARAM);
    /* during a capture: fails, and the capture with it */
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "sync");
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusActive;
    CHECK(cudaStreamIsCapturing(stream, &cs) == cudaSuccess && cs == cudaStreamCaptureStatusNone, "not capturing");
    CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess, "begin capture");
    CHECK(cudaStreamIsCapturing(stream, &cs) == cudaSuccess && cs == cudaStreamCaptureStatusActive, "capturing");
    CHECK(cudnnFindConvolutionForwardAlgorithm(dnn, v.xd, v.wd, v.cd, v.yd, 64, &b, ff) != CUDNN_STATUS_SUCCESS,
          "a search during a capture fails");
    CHECK(cudaStreamIsCapturing(stream, &cs) == cudaSuccess && cs == cudaStreamCaptureStatusInvalidated,
          "and invalidates it");
    cudaGraph_t g = NULL;
    CHECK(cudaStreamEndCapture(stream, &g) == cudaErrorStreamCaptureInvalidated && !g, "end capture fails");
    (void)cudaGetLastError();
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "sync after");
    printf("%s searches: supported heuristic entries reversed with rising times, unsupported last; a search during "
           "a capture fails and invalidates it\n",
           n_fail == before ? "ok  " : "FAIL");
    conv_free(v);
}

/* Laziness: nothing before the sync; scalars are taken at the call. */
static void call_with_local_alpha(conv &v, float a) {
    float alpha = a, beta = 0;
    DNN_IS(cudnnConvolutionForward(dnn, &alpha, v.xd, v.x, v.wd, v.w, v.cd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                   NULL, 0, &beta, v.yd, v.y),
           CUDNN_STATUS_SUCCESS);
    alpha = 1e9f;   /* a later change must not matter */
}

static void test_lazy(void) {
    conv v;
    conv_init(v, CASES[0]);
    const int before = n_fail;
    CHECK(cudaMemset(v.y, 0, v.ny * 4) == cudaSuccess, "memset");
    call_with_local_alpha(v, 2.0f);
    /* the descriptor's later state must not matter either */
    DNN_IS(cudnnSetConvolutionMathType(v.cd, CUDNN_TENSOR_OP_MATH), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnSetTensor4dDescriptor(v.xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 1, 1), CUDNN_STATUS_SUCCESS);
    std::vector<float> early(v.ny);
    lt_cuemu_peek(early.data(), v.y, v.ny * 4);   /* a stale read, without a sync */
    size_t written = 0;
    for (float f : early) written += f != 0.0f;
    CHECK(written == 0, "%zu outputs written before the stream synchronised", written);
    CHECK(!bad_elems("lazy", dget(v.y, v.ny), v.y_ref, v.y_abs, v.g_fwd, 2.0), "result with the call's alpha and math");
    DNN_IS(cudnnSetTensor4dDescriptor(v.xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, v.c.N, v.c.C, v.c.H, v.c.W),
           CUDNN_STATUS_SUCCESS);
    printf("%s laziness: nothing written before the sync; alpha, math type and shapes taken at the call\n",
           n_fail == before ? "ok  " : "FAIL");
    conv_free(v);
}

/* ---- NHWC ---------------------------------------------------------------------------- */
/* Each runs in both formats on one set of data (conv_init's `same`). */
static const ccase NHWC_CASES[] = {
    {"3x3 p1 s1 N1 odd 13x11", 1, 8, 13, 11, 12, 3, 3, 1, 1, 1, 1},
    {"3x3 p1 s2 N3 odd 13x11", 3, 8, 13, 11, 16, 3, 3, 1, 2, 1, 1},
    {"1x1 p0 s2 N3 13x11 (downsample)", 3, 16, 13, 11, 8, 1, 1, 0, 2, 1, 1},
    {"7x7 p3 s2 C3 N1 23x19 (stem)", 1, 3, 23, 19, 8, 7, 7, 3, 2, 1, 1},
    {"7x7 p3 s2 C3 N3 16x16 (stem)", 3, 3, 16, 16, 4, 7, 7, 3, 2, 1, 1},
    {"3x3 p1 s1 g8 N3 odd 9x7", 3, 16, 9, 7, 24, 3, 3, 1, 1, 1, 8},
    {"3x3 p1 s2 g8 depthwise N1 13x11", 1, 8, 13, 11, 8, 3, 3, 1, 2, 1, 8},
    {"3x3 p2 s1 dil2 g2 N3 odd 11x9", 3, 4, 11, 9, 6, 3, 3, 2, 1, 2, 2},
};

/* The NHWC convolution is the NCHW one transposed, bit for bit: the
 * emulator sums the same terms in the same order whatever the format. The
 * non-deterministic algorithms take a new order on every call (a global run
 * count), so no NHWC call can share an NCHW call's order: those are held to
 * the float bound and shown still to vary, not compared bit for bit. */
static void test_nhwc(void) {
    const auto BD1 = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    const auto BF1 = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    size_t varied = 0;
    for (const ccase &c : NHWC_CASES) {
        conv a, b;
        conv_init(a, c);
        conv_init(b, c, CUDNN_TENSOR_NHWC, &a);
        const int before = n_fail;
        for (int tf32 = 0; tf32 < 2; tf32++) {
            const cudnnMathType_t m = tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
            DNN_IS(cudnnSetConvolutionMathType(a.cd, m), CUDNN_STATUS_SUCCESS);
            DNN_IS(cudnnSetConvolutionMathType(b.cd, m), CUDNN_STATUS_SUCCESS);
            /* beta 0 over NaN */
            for (auto al : FWD_ALGOS) {
                nan_fill(a.y, a.ny);
                nan_fill(b.y, b.ny);
                DNN_IS(fwd(a, al), CUDNN_STATUS_SUCCESS);
                DNN_IS(fwd(b, al), CUDNN_STATUS_SUCCESS);
                const std::vector<float> ya = get(a, TY, a.y), yb = get(b, TY, b.y);
                CHECK(same_bits(ya, yb), "%s: tf32 %d forward algo %d: NHWC differs from NCHW in %zu elements", c.name,
                      tf32, al, n_differ(ya, yb));
                CHECK(tf32 || !bad_elems("nhwc forward", yb, a.y_ref, a.y_abs, a.g_fwd), "%s: forward algo %d", c.name,
                      al);
            }
            nan_fill(a.dx, a.nx);
            nan_fill(b.dx, b.nx);
            DNN_IS(bwd_data(a, BD1), CUDNN_STATUS_SUCCESS);
            DNN_IS(bwd_data(b, BD1), CUDNN_STATUS_SUCCESS);
            const std::vector<float> dxa = get(a, TX, a.dx), dxb = get(b, TX, b.dx);
            CHECK(same_bits(dxa, dxb), "%s: tf32 %d bwd data: NHWC differs from NCHW in %zu elements", c.name, tf32,
                  n_differ(dxa, dxb));
            CHECK(tf32 || !bad_elems("nhwc bwd data", dxb, a.dx_ref, a.dx_abs, a.g_bd), "%s: bwd data", c.name);
            nan_fill(a.dw, a.nw);
            nan_fill(b.dw, b.nw);
            DNN_IS(bwd_filter(a, BF1), CUDNN_STATUS_SUCCESS);
            DNN_IS(bwd_filter(b, BF1), CUDNN_STATUS_SUCCESS);
            const std::vector<float> dwa = get(a, TW, a.dw), dwb = get(b, TW, b.dw);
            CHECK(same_bits(dwa, dwb), "%s: tf32 %d bwd filter: NHWC differs from NCHW in %zu elements", c.name, tf32,
                  n_differ(dwa, dwb));
            CHECK(tf32 || !bad_elems("nhwc bwd filter", dwb, a.dw_ref, a.dw_abs, a.g_bf), "%s: bwd filter", c.name);
        }
        DNN_IS(cudnnSetConvolutionMathType(a.cd, CUDNN_FMA_MATH), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnSetConvolutionMathType(b.cd, CUDNN_FMA_MATH), CUDNN_STATUS_SUCCESS);
        /* alpha 0.5, beta 1: accumulation onto one prior, laid out in each format */
        const std::vector<float> y0 = randv(a.ny), dx0 = randv(a.nx), dw0 = randv(a.nw);
        for (conv *v : {&a, &b}) {
            put(*v, TY, v->y, y0);
            put(*v, TX, v->dx, dx0);
            put(*v, TW, v->dw, dw0);
            DNN_IS(fwd(*v, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, 0.5f, 1.0f), CUDNN_STATUS_SUCCESS);
            DNN_IS(bwd_data(*v, BD1, 0.5f, 1.0f), CUDNN_STATUS_SUCCESS);
            DNN_IS(bwd_filter(*v, BF1, 0.5f, 1.0f), CUDNN_STATUS_SUCCESS);
        }
        const std::vector<float> ya = get(a, TY, a.y), yb = get(b, TY, b.y), dxa = get(a, TX, a.dx),
                                 dxb = get(b, TX, b.dx), dwa = get(a, TW, a.dw), dwb = get(b, TW, b.dw);
        CHECK(same_bits(ya, yb) && same_bits(dxa, dxb) && same_bits(dwa, dwb),
              "%s: beta 1: NHWC differs from NCHW in %zu (y), %zu (dx), %zu (dw) elements", c.name, n_differ(ya, yb),
              n_differ(dxa, dxb), n_differ(dwa, dwb));
        CHECK(!bad_elems("nhwc fwd beta 1", yb, a.y_ref, a.y_abs, a.g_fwd, 0.5, 1.0, &y0) &&
                  !bad_elems("nhwc bwd data beta 1", dxb, a.dx_ref, a.dx_abs, a.g_bd, 0.5, 1.0, &dx0) &&
                  !bad_elems("nhwc bwd filter beta 1", dwb, a.dw_ref, a.dw_abs, a.g_bf, 0.5, 1.0, &dw0),
              "%s: beta 1 against the reference", c.name);
        /* the non-deterministic algorithms: within the bound, and varying */
        {
            nan_fill(b.dx, b.nx);
            DNN_IS(bwd_data(b, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0), CUDNN_STATUS_SUCCESS);
            const std::vector<float> r1 = get(b, TX, b.dx);
            DNN_IS(bwd_data(b, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0), CUDNN_STATUS_SUCCESS);
            const std::vector<float> r2 = get(b, TX, b.dx);
            CHECK(!bad_elems("nhwc bwd data ALGO_0", r1, a.dx_ref, a.dx_abs, a.g_bd) &&
                      !bad_elems("nhwc bwd data ALGO_0", r2, a.dx_ref, a.dx_abs, a.g_bd),
                  "%s: bwd data ALGO_0", c.name);
            varied += n_differ(r1, r2);
        }
        for (auto al : {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3}) {
            nan_fill(b.dw, b.nw);
            DNN_IS(bwd_filter(b, al), CUDNN_STATUS_SUCCESS);
            const std::vector<float> r1 = get(b, TW, b.dw);
            DNN_IS(bwd_filter(b, al), CUDNN_STATUS_SUCCESS);
            const std::vector<float> r2 = get(b, TW, b.dw);
            CHECK(!bad_elems("nhwc bwd filter nondet", r1, a.dw_ref, a.dw_abs, a.g_bf) &&
                      !bad_elems("nhwc bwd filter nondet", r2, a.dw_ref, a.dw_abs, a.g_bf),
                  "%s: bwd filter algo %d", c.name, al);
            varied += n_differ(r1, r2);
        }
        printf("%s nhwc %-34s = NCHW bits: forward x3, bwd-data ALGO_1, bwd-filter ALGO_1 (fp32 and tf32, beta 0 "
               "over NaN; alpha 0.5 beta 1); ALGO_0 / ALGO_3 within the bound\n",
               n_fail == before ? "ok  " : "FAIL", c.name);
        conv_free(a);
        conv_free(b);
    }
    CHECK(varied > 0, "NHWC non-deterministic algorithms: every rerun gave the same bits");
    printf("%s nhwc non-deterministic algorithms still vary: %zu elements differed between reruns\n",
           varied > 0 ? "ok  " : "FAIL", varied);
}

/* The convolutions split their work over threads (lt_cuemu_dnn_set_threads):
 * every count gives the one-thread bits, in both formats, and stays within
 * the bound. The cases are above the size under which a call stays on one
 * thread. */
static void test_threads(void) {
    static const ccase TCASES[] = {
        {"3x3 p1 s1 N3 16x16 K64", 3, 8, 16, 16, 64, 3, 3, 1, 1, 1, 1},
        {"3x3 p1 s1 g4 N4 odd 15x17 K48", 4, 32, 15, 17, 48, 3, 3, 1, 1, 1, 4},
    };
    const auto BD1 = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    const auto BF1 = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
    const unsigned counts[] = {1, 2, 3, 7};
    for (const ccase &c : TCASES)
        for (auto fmt : {CUDNN_TENSOR_NCHW, CUDNN_TENSOR_NHWC}) {
            conv v;
            conv_init(v, c, fmt);
            const int before = n_fail;
            std::vector<float> y1, dx1, dw1;
            for (unsigned t : counts) {
                lt_cuemu_dnn_set_threads(t);
                nan_fill(v.y, v.ny);
                nan_fill(v.dx, v.nx);
                nan_fill(v.dw, v.nw);
                DNN_IS(fwd(v, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM), CUDNN_STATUS_SUCCESS);
                DNN_IS(bwd_data(v, BD1), CUDNN_STATUS_SUCCESS);
                DNN_IS(bwd_filter(v, BF1), CUDNN_STATUS_SUCCESS);
                const std::vector<float> y = dget(v.y, v.ny), dx = dget(v.dx, v.nx), dw = dget(v.dw, v.nw);
                if (t == 1) {
                    y1 = y, dx1 = dx, dw1 = dw;
                    if (fmt == CUDNN_TENSOR_NCHW)
                        CHECK(!bad_elems("threads fwd", y, v.y_ref, v.y_abs, v.g_fwd) &&
                                  !bad_elems("threads bwd data", dx, v.dx_ref, v.dx_abs, v.g_bd) &&
                                  !bad_elems("threads bwd filter", dw, v.dw_ref, v.dw_abs, v.g_bf),
                              "%s: one thread against the reference", c.name);
                    continue;
                }
                CHECK(same_bits(y, y1) && same_bits(dx, dx1) && same_bits(dw, dw1),
                      "%s %s: %u threads differ from one in %zu (y), %zu (dx), %zu (dw) elements", c.name,
                      fmt == CUDNN_TENSOR_NHWC ? "NHWC" : "NCHW", t, n_differ(y, y1), n_differ(dx, dx1),
                      n_differ(dw, dw1));
            }
            lt_cuemu_dnn_set_threads(0);
            printf("%s threads %-32s %s: forward, bwd-data ALGO_1, bwd-filter ALGO_1 on 2, 3, 7 threads = 1 "
                   "thread's bits\n",
                   n_fail == before ? "ok  " : "FAIL", c.name, fmt == CUDNN_TENSOR_NHWC ? "NHWC" : "NCHW");
            conv_free(v);
        }
}

/* The heuristics and the searches on NHWC descriptors: the NCHW lists, and
 * what lt_cuda_conv.cu would pick from them runs to the NCHW bits. */
static void test_nhwc_choice(void) {
    conv a, b;
    conv_init(a, NHWC_CASES[1]);
    conv_init(b, NHWC_CASES[1], CUDNN_TENSOR_NHWC, &a);
    const int before = n_fail;
    cudnnConvolutionFwdAlgoPerf_t hfa[64], hfb[64], ffb[64];
    cudnnConvolutionBwdDataAlgoPerf_t hda[64], hdb[64], fdb[64];
    cudnnConvolutionBwdFilterAlgoPerf_t hwa[64], hwb[64], fwb[64];
    /* the same list entries; the list lengths must agree too */
    auto same_list = [](const char *dir, const auto *p, int np, const auto *q, int nq) {
        bool same = np == nq;
        for (int i = 0; same && i < np; i++)
            same = p[i].algo == q[i].algo && p[i].status == q[i].status && p[i].mathType == q[i].mathType &&
                   p[i].determinism == q[i].determinism && p[i].memory == q[i].memory;
        CHECK(same, "%s: the NHWC list differs from the NCHW one (%d, %d entries)", dir, nq, np);
    };
    int picks = 0;
    for (int tf32 = 0; tf32 < 2; tf32++) {
        const cudnnMathType_t m = tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
        int n1 = 0, n2 = 0, n3 = 0, nf[2], nd[2], nw[2];   /* the NHWC list lengths: heuristics, search */
        DNN_IS(cudnnSetConvolutionMathType(a.cd, m), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnSetConvolutionMathType(b.cd, m), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnGetConvolutionForwardAlgorithm_v7(dnn, a.xd, a.wd, a.cd, a.yd, 64, &n1, hfa), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnGetConvolutionForwardAlgorithm_v7(dnn, b.xd, b.wd, b.cd, b.yd, 64, &n2, hfb), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnFindConvolutionForwardAlgorithm(dnn, b.xd, b.wd, b.cd, b.yd, 64, &n3, ffb), CUDNN_STATUS_SUCCESS);
        same_list("forward", hfa, n1, hfb, n2);
        check_search("nhwc forward", hfb, n2, ffb, n3);
        nf[0] = n2;
        nf[1] = n3;
        for (int e = 0; e < n2; e++)
            if (hfb[e].status == CUDNN_STATUS_SUCCESS) CHECK(hfb[e].memory == ws_fwd(b, hfb[e].algo), "forward memory");
        DNN_IS(cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn, a.wd, a.yd, a.cd, a.xd, 64, &n1, hda), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn, b.wd, b.yd, b.cd, b.xd, 64, &n2, hdb), CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnFindConvolutionBackwardDataAlgorithm(dnn, b.wd, b.yd, b.cd, b.xd, 64, &n3, fdb), CUDNN_STATUS_SUCCESS);
        same_list("bwd data", hda, n1, hdb, n2);
        check_search("nhwc bwd data", hdb, n2, fdb, n3);
        nd[0] = n2;
        nd[1] = n3;
        for (int e = 0; e < n2; e++)
            if (hdb[e].status == CUDNN_STATUS_SUCCESS) CHECK(hdb[e].memory == ws_bd(b, hdb[e].algo), "bwd data memory");
        DNN_IS(cudnnGetConvolutionBackwardFilterAlgorithm_v7(dnn, a.xd, a.yd, a.cd, a.wd, 64, &n1, hwa),
               CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnGetConvolutionBackwardFilterAlgorithm_v7(dnn, b.xd, b.yd, b.cd, b.wd, 64, &n2, hwb),
               CUDNN_STATUS_SUCCESS);
        DNN_IS(cudnnFindConvolutionBackwardFilterAlgorithm(dnn, b.xd, b.yd, b.cd, b.wd, 64, &n3, fwb),
               CUDNN_STATUS_SUCCESS);
        same_list("bwd filter", hwa, n1, hwb, n2);
        check_search("nhwc bwd filter", hwb, n2, fwb, n3);
        nw[0] = n2;
        nw[1] = n3;
        for (int e = 0; e < n2; e++)
            if (hwb[e].status == CUDNN_STATUS_SUCCESS) CHECK(hwb[e].memory == ws_bf(b, hwb[e].algo), "bwd filter memory");
        /* deterministic picks, from the heuristics and from the searches, in the entry's math: the NCHW bits */
        for (int searched = 0; searched < 2; searched++) {
            const cudnnConvolutionFwdAlgoPerf_t *pf = searched ? ffb : hfb;
            const cudnnConvolutionBwdDataAlgoPerf_t *pd = searched ? fdb : hdb;
            const cudnnConvolutionBwdFilterAlgoPerf_t *pw = searched ? fwb : hwb;
            const int i = pick(pf, nf[searched], true, tf32), j = pick(pd, nd[searched], true, tf32),
                      k = pick(pw, nw[searched], true, tf32);
            CHECK(i >= 0 && j >= 0 && k >= 0, "tf32 %d searched %d: no deterministic pick", tf32, searched);
            if (i < 0 || j < 0 || k < 0) continue;
            for (conv *v : {&a, &b}) {
                DNN_IS(cudnnSetConvolutionMathType(v->cd, pf[i].mathType), CUDNN_STATUS_SUCCESS);
                nan_fill(v->y, v->ny);
                DNN_IS(fwd(*v, pf[i].algo), CUDNN_STATUS_SUCCESS);
                DNN_IS(cudnnSetConvolutionMathType(v->cd, pd[j].mathType), CUDNN_STATUS_SUCCESS);
                nan_fill(v->dx, v->nx);
                DNN_IS(bwd_data(*v, pd[j].algo), CUDNN_STATUS_SUCCESS);
                DNN_IS(cudnnSetConvolutionMathType(v->cd, pw[k].mathType), CUDNN_STATUS_SUCCESS);
                nan_fill(v->dw, v->nw);
                DNN_IS(bwd_filter(*v, pw[k].algo), CUDNN_STATUS_SUCCESS);
                DNN_IS(cudnnSetConvolutionMathType(v->cd, m), CUDNN_STATUS_SUCCESS);
            }
            CHECK(same_bits(get(a, TY, a.y), get(b, TY, b.y)) && same_bits(get(a, TX, a.dx), get(b, TX, b.dx)) &&
                      same_bits(get(a, TW, a.dw), get(b, TW, b.dw)),
                  "tf32 %d searched %d: picks %d/%d/%d: NHWC differs from NCHW", tf32, searched, (int)pf[i].algo,
                  (int)pd[j].algo, (int)pw[k].algo);
            picks++;
        }
    }
    printf("%s nhwc heuristics and searches: the NCHW lists (fp32, tf32), memory = the NHWC workspace query; %d "
           "deterministic picks of lt_cuda_conv.cu run to the NCHW bits\n",
           n_fail == before ? "ok  " : "FAIL", picks);
    conv_free(a);
    conv_free(b);
}

/* Formats mixed within one call are refused (NOT_SUPPORTED) by every call
 * that takes the descriptors together, and queue nothing; the pointer
 * checks count an NHWC tensor's elements as an NCHW one's. */
static void test_nhwc_rules(void) {
    conv a, b;
    conv_init(a, NHWC_CASES[1]);
    conv_init(b, NHWC_CASES[1], CUDNN_TENSOR_NHWC, &a);
    const int before = n_fail;
    const float one = 1, zero = 0;
    const auto F = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;   /* no workspace: the check is the formats' */
    const auto BD = CUDNN_CONVOLUTION_BWD_DATA_ALGO_0;
    const auto BF = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0;
    const cudnnStatus_t NS = CUDNN_STATUS_NOT_SUPPORTED;
    cudnnConvolutionFwdAlgoPerf_t pf[64];
    cudnnConvolutionBwdDataAlgoPerf_t pd[64];
    cudnnConvolutionBwdFilterAlgoPerf_t pw[64];
    CHECK(cudaMemset(a.y, 0, a.ny * 4) == cudaSuccess && cudaMemset(a.dx, 0, a.nx * 4) == cudaSuccess &&
              cudaMemset(a.dw, 0, a.nw * 4) == cudaSuccess,
          "memset");
    int mixes = 0;
    /* bit 0: x NHWC, bit 1: the filter, bit 2: y; 0 and 7 are the uniform ones */
    for (int mix = 1; mix < 7; mix++) {
        const conv &X = mix & 1 ? b : a, &W = mix & 2 ? b : a, &Y = mix & 4 ? b : a;
        size_t bytes = 0;
        int n = 0;
        DNN_IS(cudnnGetConvolutionForwardWorkspaceSize(dnn, X.xd, W.wd, a.cd, Y.yd, F, &bytes), NS);
        DNN_IS(cudnnGetConvolutionBackwardDataWorkspaceSize(dnn, W.wd, Y.yd, a.cd, X.xd, BD, &bytes), NS);
        DNN_IS(cudnnGetConvolutionBackwardFilterWorkspaceSize(dnn, X.xd, Y.yd, a.cd, W.wd, BF, &bytes), NS);
        DNN_IS(cudnnGetConvolutionForwardAlgorithm_v7(dnn, X.xd, W.wd, a.cd, Y.yd, 64, &n, pf), NS);
        DNN_IS(cudnnGetConvolutionBackwardDataAlgorithm_v7(dnn, W.wd, Y.yd, a.cd, X.xd, 64, &n, pd), NS);
        DNN_IS(cudnnGetConvolutionBackwardFilterAlgorithm_v7(dnn, X.xd, Y.yd, a.cd, W.wd, 64, &n, pw), NS);
        DNN_IS(cudnnFindConvolutionForwardAlgorithm(dnn, X.xd, W.wd, a.cd, Y.yd, 64, &n, pf), NS);
        DNN_IS(cudnnFindConvolutionBackwardDataAlgorithm(dnn, W.wd, Y.yd, a.cd, X.xd, 64, &n, pd), NS);
        DNN_IS(cudnnFindConvolutionBackwardFilterAlgorithm(dnn, X.xd, Y.yd, a.cd, W.wd, 64, &n, pw), NS);
        DNN_IS(cudnnConvolutionForward(dnn, &one, X.xd, a.x, W.wd, a.w, a.cd, F, NULL, 0, &zero, Y.yd, a.y), NS);
        DNN_IS(cudnnConvolutionBackwardData(dnn, &one, W.wd, a.w, Y.yd, a.dy, a.cd, BD, NULL, 0, &zero, X.xd, a.dx), NS);
        DNN_IS(cudnnConvolutionBackwardFilter(dnn, &one, X.xd, a.x, Y.yd, a.dy, a.cd, BF, NULL, 0, &zero, W.wd, a.dw),
               NS);
        /* the output-dim query reads shapes only, which no format changes */
        int on = 0, oc = 0, oh = 0, ow = 0;
        DNN_IS(cudnnGetConvolution2dForwardOutputDim(a.cd, X.xd, W.wd, &on, &oc, &oh, &ow), CUDNN_STATUS_SUCCESS);
        CHECK(on == a.c.N && oc == a.c.K && oh == a.ho && ow == a.wo, "mix %d: output dims", mix);
        mixes++;
    }
    size_t touched = 0;
    for (float f : dget(a.y, a.ny)) touched += f != 0.0f;
    for (float f : dget(a.dx, a.nx)) touched += f != 0.0f;
    for (float f : dget(a.dw, a.nw)) touched += f != 0.0f;
    CHECK(touched == 0, "refused mixed-format calls changed %zu outputs", touched);
    /* NHWC pointers: one element short is refused, as in NCHW (the allocations are exact) */
    DNN_IS(cudnnConvolutionForward(dnn, &one, b.xd, b.x + 1, b.wd, b.w, b.cd, F, NULL, 0, &zero, b.yd, b.y),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionForward(dnn, &one, b.xd, b.x, b.wd, b.w + 1, b.cd, F, NULL, 0, &zero, b.yd, b.y),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionForward(dnn, &one, b.xd, b.x, b.wd, b.w, b.cd, F, NULL, 0, &zero, b.yd, b.y + 1),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionBackwardData(dnn, &one, b.wd, b.w, b.yd, b.dy + 1, b.cd, BD, NULL, 0, &zero, b.xd, b.dx),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionBackwardData(dnn, &one, b.wd, b.w, b.yd, b.dy, b.cd, BD, NULL, 0, &zero, b.xd, b.dx + 1),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionBackwardFilter(dnn, &one, b.xd, b.x, b.yd, b.dy, b.cd, BF, NULL, 0, &zero, b.wd, b.dw + 1),
           CUDNN_STATUS_BAD_PARAM);
    DNN_IS(cudnnConvolutionForward(dnn, &one, b.xd, b.x, b.wd, b.w, b.cd, F, NULL, 0, &zero, b.yd, b.y),
           CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnConvolutionBackwardData(dnn, &one, b.wd, b.w, b.yd, b.dy, b.cd, BD, NULL, 0, &zero, b.xd, b.dx),
           CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnConvolutionBackwardFilter(dnn, &one, b.xd, b.x, b.yd, b.dy, b.cd, BF, NULL, 0, &zero, b.wd, b.dw),
           CUDNN_STATUS_SUCCESS);
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "sync");
    printf("%s nhwc rules: %d format mixes refused (NOT_SUPPORTED) by the workspace queries, heuristics, searches and "
           "the 3 calls, nothing queued, output dims still given; NHWC pointers one element short refused, exact ones "
           "run\n",
           n_fail == before ? "ok  " : "FAIL", mixes);
    conv_free(a);
    conv_free(b);
}

/* ---- cuBLAS ------------------------------------------------------------------------ */
/* column-major op(A)[i][p] */
static double opa(const std::vector<float> &A, bool t, int lda, int i, int p) { return t ? A[p + (size_t)i * lda] : A[i + (size_t)p * lda]; }

static void gemm_ref(bool ta, bool tb, int m, int n, int k, const std::vector<float> &A, int lda,
                     const std::vector<float> &B, int ldb, int ldc, std::vector<double> &ref, std::vector<double> &abs_) {
    ref.assign((size_t)ldc * n, 0);
    abs_.assign((size_t)ldc * n, 0);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            for (int p = 0; p < k; p++) {
                const double t = opa(A, ta, lda, i, p) * opa(B, !tb, ldb, j, p);   /* op(B)[p][j] */
                ref[i + (size_t)j * ldc] += t;
                abs_[i + (size_t)j * ldc] += fabs(t);
            }
}

static void test_sgemm(void) {
    const int before = n_fail;
    const int m = 5, n = 7, k = 9, ldc = m + 4;
    const float one = 1, zero = 0, half = 0.5f, minus2 = -2;
    const float SENT = 12345.0f;
    float *dC = (float *)dalloc((size_t)ldc * n * 4);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
            const int lda = ar + 3, ldb = br + 2;
            std::vector<float> A = randv((size_t)lda * ac), B = randv((size_t)ldb * bc);
            float *dA = dput(A), *dB = dput(B);
            std::vector<double> ref, abs_;
            gemm_ref(ta, tb, m, n, k, A, lda, B, ldb, ldc, ref, abs_);
            const double gam = (k + 3) * U;
            const cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
            /* beta 0 over NaN; the rows between m and ldc are never touched */
            std::vector<float> C0((size_t)ldc * n, NAN);
            for (int j = 0; j < n; j++)
                for (int i = m; i < ldc; i++) C0[i + (size_t)j * ldc] = SENT;
            dset(dC, C0);
            BLAS_IS(cublasSgemm(blas, oa, ob, m, n, k, &one, dA, lda, dB, ldb, &zero, dC, ldc), CUBLAS_STATUS_SUCCESS);
            std::vector<float> C = dget(dC, (size_t)ldc * n);
            size_t bad = 0, pad = 0;
            for (int j = 0; j < n; j++)
                for (int i = 0; i < ldc; i++) {
                    const size_t at = i + (size_t)j * ldc;
                    if (i >= m) pad += C[at] != SENT;
                    else bad += !(fabs(C[at] - ref[at]) <= abs_[at] * gam);
                }
            CHECK(bad == 0 && pad == 0, "op %d%d: %zu wrong, %zu padding elements touched", ta, tb, bad, pad);
            /* beta 1, -2 accumulate; same bits on a second run */
            std::vector<float> P = randv((size_t)ldc * n);
            for (float beta : {1.0f, -2.0f}) {
                dset(dC, P);
                BLAS_IS(cublasSgemm(blas, oa, ob, m, n, k, &half, dA, lda, dB, ldb, &beta, dC, ldc), CUBLAS_STATUS_SUCCESS);
                C = dget(dC, (size_t)ldc * n);
                bad = 0;
                for (int j = 0; j < n; j++)
                    for (int i = 0; i < m; i++) {
                        const size_t at = i + (size_t)j * ldc;
                        const double want = 0.5 * ref[at] + (double)beta * P[at];
                        bad += !(fabs(C[at] - want) <= (0.5 * abs_[at] + fabs(beta * P[at])) * gam);
                    }
                CHECK(bad == 0, "op %d%d beta %g: %zu wrong", ta, tb, beta, bad);
            }
            dset(dC, P);
            BLAS_IS(cublasSgemm(blas, oa, ob, m, n, k, &half, dA, lda, dB, ldb, &minus2, dC, ldc), CUBLAS_STATUS_SUCCESS);
            CHECK(same_bits(C, dget(dC, (size_t)ldc * n)), "op %d%d: a second run differs", ta, tb);
            cudaFree(dA);
            cudaFree(dB);
        }
    printf("%s sgemm: NN NT TN TT with lda/ldb/ldc > rows vs the double reference; beta 0 over NaN, beta 1 and -2 "
           "accumulate; padding untouched; bit-identical reruns\n", n_fail == before ? "ok  " : "FAIL");
    cudaFree(dC);
}

/* lt_cuda_linear.cu's calls: row-major y = x W^T, dx = dy W, dW = dy^T x */
static void test_linear_shapes(void) {
    const int before = n_fail;
    const int N = 3, in = 6, out = 4;
    std::vector<float> x = randv((size_t)N * in), W = randv((size_t)out * in), dy = randv((size_t)N * out);
    float *dx_ = dput(x), *dW = dput(W), *ddy = dput(dy), *y = (float *)dalloc(N * out * 4),
          *gx = (float *)dalloc(N * in * 4), *gW = (float *)dalloc(out * in * 4);
    const float one = 1, zero = 0;
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, out, N, in, &one, dW, in, dx_, in, &zero, y, out),
            CUBLAS_STATUS_SUCCESS);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, in, N, out, &one, dW, in, ddy, out, &zero, gx, in),
            CUBLAS_STATUS_SUCCESS);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_T, in, out, N, &one, dx_, in, ddy, out, &zero, gW, in),
            CUBLAS_STATUS_SUCCESS);
    const std::vector<float> hy = dget(y, N * out), hgx = dget(gx, N * in), hgW = dget(gW, out * in);
    double worst = 0;
    for (int i = 0; i < N; i++)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int c = 0; c < in; c++) s += (double)x[i * in + c] * W[o * in + c];
            worst = max_keep_nan(worst, fabs(hy[i * out + o] - s));
        }
    for (int i = 0; i < N; i++)
        for (int c = 0; c < in; c++) {
            double s = 0;
            for (int o = 0; o < out; o++) s += (double)dy[i * out + o] * W[o * in + c];
            worst = max_keep_nan(worst, fabs(hgx[i * in + c] - s));
        }
    for (int o = 0; o < out; o++)
        for (int c = 0; c < in; c++) {
            double s = 0;
            for (int i = 0; i < N; i++) s += (double)dy[i * out + o] * x[i * in + c];
            worst = max_keep_nan(worst, fabs(hgW[o * in + c] - s));
        }
    CHECK(worst < 1e-5, "linear layer products: worst error %.3g", worst);
    printf("%s sgemm in lt_cuda_linear.cu's row-major calls (y = x W^T, dx = dy W, dW = dy^T x), worst error %.2g\n",
           n_fail == before ? "ok  " : "FAIL", worst);
    cudaFree(dx_);
    cudaFree(dW);
    cudaFree(ddy);
    cudaFree(y);
    cudaFree(gx);
    cudaFree(gW);
}

static void test_sgemm_rules(void) {
    const int before = n_fail;
    const int m = 6, n = 5, k = 40;
    const float one = 1, zero = 0, two = 2, half = 0.5f;
    std::vector<float> A = randv((size_t)m * k), B = randv((size_t)k * n), P = randv((size_t)m * n);
    float *dA = dput(A), *dB = dput(B), *dC = (float *)dalloc((size_t)m * n * 4);
    float *nanA = (float *)dalloc((size_t)m * k * 4);   /* fresh device memory: NaN */
    std::vector<double> ref, abs_;
    gemm_ref(false, false, m, n, k, A, m, B, k, m, ref, abs_);
    /* alpha 0 or k 0: A and B are not read, C = beta C */
    dset(dC, P);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &zero, nanA, m, nanA, k, &two, dC, m),
            CUBLAS_STATUS_SUCCESS);
    std::vector<float> C = dget(dC, (size_t)m * n);
    size_t bad = 0;
    for (size_t i = 0; i < C.size(); i++) bad += C[i] != 2 * P[i];
    CHECK(bad == 0, "alpha 0: %zu elements not 2*C", bad);
    dset(dC, P);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, 0, &one, NULL, m, NULL, 1, &zero, dC, m),
            CUBLAS_STATUS_SUCCESS);
    C = dget(dC, (size_t)m * n);
    bad = 0;
    for (float f : C) bad += f != 0.0f;
    CHECK(bad == 0, "k 0, beta 0: %zu elements not 0", bad);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, 0, n, k, &one, NULL, 1, NULL, k, &zero, NULL, 1),
            CUBLAS_STATUS_SUCCESS);
    /* argument checks */
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, -1, n, k, &one, dA, m, dB, k, &zero, dC, m),
            CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m - 1, dB, k, &zero, dC, m),
            CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, dA, k - 1, dB, k, &zero, dC, m),
            CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_T, m, n, k, &one, dA, m, dB, n - 1, &zero, dC, m),
            CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m - 1),
            CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSgemm(blas, (cublasOperation_t)7, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m),
            CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, NULL, dA, m, dB, k, &zero, dC, m),
            CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSgemm(NULL, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m),
            CUBLAS_STATUS_NOT_INITIALIZED);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A.data(), m, dB, k, &zero, dC, m),
            CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB + 1, k, &zero, dC, m),
            CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m + 1),
            CUBLAS_STATUS_INVALID_VALUE);   /* C's extent with ldc m+1 overruns */
    /* laziness and alpha at the call */
    dset(dC, std::vector<float>((size_t)m * n, 0.0f));
    {
        float a = 0.5f;
        BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &a, dA, m, dB, k, &zero, dC, m),
                CUBLAS_STATUS_SUCCESS);
        a = 100.0f;
    }
    bad = 0;
    {
        std::vector<float> early((size_t)m * n);
        lt_cuemu_peek(early.data(), dC, early.size() * 4);   /* a stale read, without a sync */
        for (float f : early) bad += f != 0.0f;
    }
    CHECK(bad == 0, "sgemm wrote %zu elements before the sync", bad);
    CHECK(!bad_elems("sgemm lazy", dget(dC, (size_t)m * n), ref, abs_, (k + 3) * U, 0.5), "alpha taken at the call");
    /* TF32 math */
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m), CUBLAS_STATUS_SUCCESS);
    const std::vector<float> c_ped = dget(dC, (size_t)m * n);
    BLAS_IS(cublasSetMathMode(blas, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m), CUBLAS_STATUS_SUCCESS);
    const std::vector<float> c_tf = dget(dC, (size_t)m * n);
    std::vector<double> tref, tabs;
    gemm_ref(false, false, m, n, k, tf32v(A), m, tf32v(B), k, m, tref, tabs);
    CHECK(!bad_elems("sgemm tf32", c_tf, tref, tabs, (k + 3) * U), "TF32 sgemm = reference on TF32 inputs");
    double rel = 0;
    for (size_t i = 0; i < c_tf.size(); i++) rel = max_keep_nan(rel, fabs((double)c_tf[i] - c_ped[i]) / abs_[i]);
    CHECK(rel > 1e-5 && rel < 2.5e-3, "TF32 vs pedantic: max rel. difference %.3g", rel);
    BLAS_IS(cublasSetMathMode(blas, (cublasMath_t)(CUBLAS_PEDANTIC_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)),
            CUBLAS_STATUS_SUCCESS);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m), CUBLAS_STATUS_SUCCESS);
    CHECK(same_bits(dget(dC, (size_t)m * n), c_ped), "PEDANTIC|DISALLOW_REDUCED: the plain fp32 bits");
    BLAS_IS(cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH), CUBLAS_STATUS_SUCCESS);
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m), CUBLAS_STATUS_SUCCESS);
    CHECK(same_bits(dget(dC, (size_t)m * n), c_ped), "DEFAULT math: the plain fp32 bits");
    BLAS_IS(cublasSetMathMode(blas, (cublasMath_t)9), CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSetMathMode(blas, CUBLAS_PEDANTIC_MATH), CUBLAS_STATUS_SUCCESS);
    /* workspace: device, 256-aligned; garbage after a GEMM; dropped by SetStream */
    unsigned char *ws = (unsigned char *)dalloc(4096);
    std::vector<unsigned char> hws(4096);
    BLAS_IS(cublasSetWorkspace(blas, hws.data(), 4096), CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSetWorkspace(blas, ws + 4, 1024), CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSetWorkspace(blas, ws, 8192), CUBLAS_STATUS_INVALID_VALUE);
    BLAS_IS(cublasSetWorkspace(blas, ws, 4096), CUBLAS_STATUS_SUCCESS);
    CHECK(cudaMemset(ws, 0, 4096) == cudaSuccess, "memset");
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m), CUBLAS_STATUS_SUCCESS);
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "sync");
    cudaMemcpy(hws.data(), ws, 4096, cudaMemcpyDeviceToHost);
    size_t junk = 0;
    for (unsigned char ch : hws) junk += ch != 0;
    CHECK(junk > 0, "a GEMM left the user workspace untouched");
    CHECK(same_bits(dget(dC, (size_t)m * n), c_ped), "with a workspace: the same bits");
    BLAS_IS(cublasSetStream(blas, stream), CUBLAS_STATUS_SUCCESS);
    CHECK(cudaMemset(ws, 0, 4096) == cudaSuccess, "memset");
    BLAS_IS(cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, dA, m, dB, k, &zero, dC, m), CUBLAS_STATUS_SUCCESS);
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess, "sync");
    cudaMemcpy(hws.data(), ws, 4096, cudaMemcpyDeviceToHost);
    junk = 0;
    for (unsigned char ch : hws) junk += ch != 0;
    CHECK(junk == 0, "after cublasSetStream the old workspace was still used");
    /* handle settings, strings */
    BLAS_IS(cublasSetAtomicsMode(blas, CUBLAS_ATOMICS_NOT_ALLOWED), CUBLAS_STATUS_SUCCESS);
    BLAS_IS(cublasSetAtomicsMode(blas, (cublasAtomicsMode_t)5), CUBLAS_STATUS_INVALID_VALUE);
    int ver = 0;
    BLAS_IS(cublasGetVersion(blas, &ver), CUBLAS_STATUS_SUCCESS);
    CHECK(ver == 130000, "version %d", ver);
    CHECK(!strcmp(cublasGetStatusString(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE"), "status string");
    (void)half;
    printf("%s sgemm rules: alpha 0 / k 0 read no A, B; m 0 quick return; lda/ldb/ldc/m/op/NULL checks; host and "
           "overrunning pointers refused; lazy with alpha at the call; TF32 = reference on TF32 inputs (max rel. "
           "difference %.2g), DEFAULT / PEDANTIC plain; workspace checks, garbage, dropped by SetStream\n",
           n_fail == before ? "ok  " : "FAIL", rel);
    cudaFree(ws);
    cudaFree(dA);
    cudaFree(dB);
    cudaFree(dC);
    cudaFree(nanA);
}

/* CMocka: each group of checks is a case that fails when any check in it
 * failed (the failed checks print their own lines). */
static int setup(void **st) {
    (void)st;
    CHECK(cudaStreamCreate(&stream) == cudaSuccess, "stream");
    DNN_IS(cudnnCreate(&dnn), CUDNN_STATUS_SUCCESS);
    DNN_IS(cudnnSetStream(dnn, stream), CUDNN_STATUS_SUCCESS);
    BLAS_IS(cublasCreate(&blas), CUBLAS_STATUS_SUCCESS);
    BLAS_IS(cublasSetStream(blas, stream), CUBLAS_STATUS_SUCCESS);
    BLAS_IS(cublasSetMathMode(blas, CUBLAS_PEDANTIC_MATH), CUBLAS_STATUS_SUCCESS);
    printf("(the emulator's stderr lines below come from calls this test makes to be refused)\n");
    return n_fail ? -1 : 0;
}

static int teardown(void **st) {
    (void)st;
    CHECK(cudaDeviceSynchronize() == cudaSuccess, "no sticky error at the end");
    BLAS_IS(cublasDestroy(blas), CUBLAS_STATUS_SUCCESS);
    DNN_IS(cudnnDestroy(dnn), CUDNN_STATUS_SUCCESS);
    cudaStreamDestroy(stream);
    printf("%d checks, %d failed\n", n_checks, n_fail);
    return n_fail ? -1 : 0;
}

#define CM_CASE(fn)                     \
    static void cm_##fn(void **st) {    \
        (void)st;                       \
        const int before = n_fail;      \
        fn();                           \
        fflush(stdout);                 \
        assert_int_equal(n_fail, before); \
    }
CM_CASE(test_cases)
CM_CASE(test_sum_order)
CM_CASE(test_alpha_beta)
CM_CASE(test_finite_differences)
CM_CASE(test_tf32)
CM_CASE(test_determinism)
CM_CASE(test_workspace_and_pointers)
CM_CASE(test_descriptors)
CM_CASE(test_heuristics)
CM_CASE(test_searches)
CM_CASE(test_lazy)
CM_CASE(test_nhwc)
CM_CASE(test_threads)
CM_CASE(test_nhwc_choice)
CM_CASE(test_nhwc_rules)
CM_CASE(test_sgemm)
CM_CASE(test_linear_shapes)
CM_CASE(test_sgemm_rules)

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cm_test_cases),         cmocka_unit_test(cm_test_sum_order),
        cmocka_unit_test(cm_test_alpha_beta),
        cmocka_unit_test(cm_test_finite_differences), cmocka_unit_test(cm_test_tf32),
        cmocka_unit_test(cm_test_determinism),   cmocka_unit_test(cm_test_workspace_and_pointers),
        cmocka_unit_test(cm_test_descriptors),   cmocka_unit_test(cm_test_heuristics),
        cmocka_unit_test(cm_test_searches),
        cmocka_unit_test(cm_test_lazy),          cmocka_unit_test(cm_test_nhwc),
        cmocka_unit_test(cm_test_threads),
        cmocka_unit_test(cm_test_nhwc_choice),   cmocka_unit_test(cm_test_nhwc_rules),
        cmocka_unit_test(cm_test_sgemm),
        cmocka_unit_test(cm_test_linear_shapes), cmocka_unit_test(cm_test_sgemm_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
