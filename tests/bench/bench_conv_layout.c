/* bench_conv_layout.c — what one training step's convolutions cost in
 * cuDNN with NCHW tensors (the CUDA backend's layout) and with NHWC
 * (channels-last, what PyTorch's side of make bench-gpu uses), for the
 * models of make bench-gpu. Not a test: a measurement for deciding whether
 * the backend should move to NHWC (issue 20's ResNet-50 targets).
 *
 * Each convolution of the model (its geometries from the engine's own
 * lt_resnet_backbone, counted with multiplicity) is timed in the three
 * directions a training step runs (forward, data gradient except for the
 * stem, whose input needs none, and filter gradient) by cudnnFind*: the
 * fastest algorithm cuDNN finds under the math mode, as the backend's
 * non-deterministic plans and PyTorch's cudnn.benchmark pick them. One line
 * a model and mode:
 *
 *   conv-layout: <model> <C>x<H>x<W> b<N> <mode>: <n> convolutions, one step's
 *   fastest cuDNN times: NCHW <ms> (fwd <ms>, dgrad <ms>, wgrad <ms>),
 *   NHWC <ms> (...): NHWC/NCHW <ratio>
 *
 * Only algorithms the backend could pick count (lt_cuda_conv_rules.h: in
 * fp32 FMA math only, never fp16 conversion, at most the workspace cap). A
 * layout cuDNN refuses for any geometry (the CPU emulator knows NCHW only)
 * makes that layout's total "n/a", with the count of refused timings.
 * Without a CUDA device: "skipped: ..." and status 0; an unknown model or
 * mode name: status 2.
 *
 * Usage: bench_conv_layout [--models a,b] [--modes fp32,tf32] */
#include <cuda_runtime.h>
#include <cudnn.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_cuda_conv_rules.h"
#include "lt_layers_impl.h"
#include "lt_model.h"
#include "lt_model_impl.h"

typedef struct {
    const char *name;
    int c, hw, batch;
} model_spec;

/* in the order they run: the question (NHWC for ResNet-50 in tf32) first,
 * so a timeout cuts the least useful lines */
static const model_spec MODELS[] = {
    {"resnet50", 3, 224, 256},
    {"resnet32_cifar", 3, 32, 128},
    {"resnet8_cifar", 1, 28, 128},
};

/* the directions; a time < 0: refused or failed */
enum { FWD, DGRAD, WGRAD };

static const char *dnn_msg(cudnnStatus_t s) { return cudnnGetErrorString(s); }

static int set_desc(cudnnTensorDescriptor_t xd, cudnnTensorDescriptor_t yd, cudnnFilterDescriptor_t wd,
                    cudnnConvolutionDescriptor_t cd, const lt_conv_geom *g, int N, cudnnTensorFormat_t f, int tf32) {
    cudnnStatus_t s;
    if ((s = cudnnSetTensor4dDescriptor(xd, f, CUDNN_DATA_FLOAT, N, g->ci, g->h, g->w)) ||
        (s = cudnnSetTensor4dDescriptor(yd, f, CUDNN_DATA_FLOAT, N, g->co, g->ho, g->wo)) ||
        (s = cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_FLOAT, f, g->co, g->ci / g->groups, g->kh, g->kw)) ||
        (s = cudnnSetConvolution2dDescriptor(cd, g->pad, g->pad, g->stride, g->stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                             CUDNN_DATA_FLOAT)) ||
        (s = cudnnSetConvolutionGroupCount(cd, g->groups)) ||
        (s = cudnnSetConvolutionMathType(cd, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH))) {
        fprintf(stderr, "bench_conv_layout: descriptors (%s): %s\n", f == CUDNN_TENSOR_NHWC ? "NHWC" : "NCHW",
                dnn_msg(s));
        return -1;
    }
    return 0;
}

/* The fastest successful entry of a cudnnFind result that the backend's
 * plans could use (lt_cuda_conv_rules.h: the mode's math types, the
 * workspace cap). */
#define BEST(perf, n, tf32, out)                                                                 \
    do {                                                                                         \
        (out) = -1.0;                                                                            \
        for (int k_ = 0; k_ < (n); k_++) {                                                       \
            if ((perf)[k_].status != CUDNN_STATUS_SUCCESS || (perf)[k_].time < 0) continue;      \
            if (!lt_cuda_conv_math_ok((tf32), (perf)[k_].mathType)) continue;                   \
            if ((perf)[k_].memory > LT_CUDA_CONV_WS_CAP) continue;                              \
            if ((out) < 0 || (perf)[k_].time < (out)) (out) = (perf)[k_].time;                  \
        }                                                                                        \
    } while (0)

enum { MAXA = 16 };

static void time_geom(cudnnHandle_t h, const lt_conv_geom *g, int N, cudnnTensorFormat_t f, int tf32, double ms[3]) {
    ms[FWD] = ms[DGRAD] = ms[WGRAD] = -1;
    cudnnTensorDescriptor_t xd = NULL, yd = NULL;
    cudnnFilterDescriptor_t wd = NULL;
    cudnnConvolutionDescriptor_t cd = NULL;
    cudnnConvolutionFwdAlgoPerf_t pf[MAXA];
    cudnnConvolutionBwdDataAlgoPerf_t pd[MAXA];
    cudnnConvolutionBwdFilterAlgoPerf_t pw[MAXA];
    int n = 0;
    if (!cudnnCreateTensorDescriptor(&xd) && !cudnnCreateTensorDescriptor(&yd) && !cudnnCreateFilterDescriptor(&wd) &&
        !cudnnCreateConvolutionDescriptor(&cd) && !set_desc(xd, yd, wd, cd, g, N, f, tf32)) {
        if (cudnnFindConvolutionForwardAlgorithm(h, xd, wd, cd, yd, MAXA, &n, pf) == CUDNN_STATUS_SUCCESS)
            BEST(pf, n, tf32, ms[FWD]);
        if (cudnnFindConvolutionBackwardDataAlgorithm(h, wd, yd, cd, xd, MAXA, &n, pd) == CUDNN_STATUS_SUCCESS)
            BEST(pd, n, tf32, ms[DGRAD]);
        if (cudnnFindConvolutionBackwardFilterAlgorithm(h, xd, yd, cd, wd, MAXA, &n, pw) == CUDNN_STATUS_SUCCESS)
            BEST(pw, n, tf32, ms[WGRAD]);
        (void)cudaGetLastError();   /* a refused trial allocation is no error of the next call */
    }
    if (cd) cudnnDestroyConvolutionDescriptor(cd);
    if (wd) cudnnDestroyFilterDescriptor(wd);
    if (yd) cudnnDestroyTensorDescriptor(yd);
    if (xd) cudnnDestroyTensorDescriptor(xd);
}

/* One model and mode: every conv node's three directions in both layouts,
 * each distinct geometry timed once. */
static int run_model(cudnnHandle_t h, const model_spec *ms, int tf32) {
    lt_model *m = NULL;
    if (lt_model_create(&m, (lt_shape){1, ms->c, ms->hw, ms->hw})) return -1;
    if (lt_resnet_backbone(m, ms->name) <= 0) {
        fprintf(stderr, "bench_conv_layout: %s: %s\n", ms->name, lt_errmsg());
        lt_model_free(m);
        return -1;
    }
    /* shapes only: no finalize (no parameters are needed) */
    double sum[2][3] = {{0}}, cache_ms[64][2][3];
    lt_conv_geom seen[64];
    int n_seen = 0, n_conv = 0, na[2] = {0, 0};
    for (int i = 1; i < lt_model_n_nodes(m); i++) {
        const lt_node *nd = lt_model_node_const(m, i);
        if (nd->kind != LT_LK_CONV) continue;
        const lt_conv_geom *g = &((const lt_conv_cfg *)nd->cfg)->g;
        int k = 0;
        for (; k < n_seen; k++)
            if (seen[k].ci == g->ci && seen[k].co == g->co && seen[k].h == g->h && seen[k].w == g->w &&
                seen[k].kh == g->kh && seen[k].kw == g->kw && seen[k].stride == g->stride && seen[k].pad == g->pad &&
                seen[k].groups == g->groups)
                break;
        if (k == n_seen) {
            if (n_seen == 64) { fprintf(stderr, "bench_conv_layout: over 64 geometries\n"); break; }
            seen[n_seen] = *g;
            time_geom(h, g, ms->batch, CUDNN_TENSOR_NCHW, tf32, cache_ms[k][0]);
            time_geom(h, g, ms->batch, CUDNN_TENSOR_NHWC, tf32, cache_ms[k][1]);
            n_seen++;
        }
        n_conv++;
        const int stem = nd->in[0] == 0;   /* reads the image: no data gradient */
        for (int l = 0; l < 2; l++)
            for (int d = 0; d < 3; d++) {
                if (d == DGRAD && stem) continue;
                if (cache_ms[k][l][d] < 0) na[l]++;
                else sum[l][d] += cache_ms[k][l][d];
            }
    }
    char lay[2][160];
    for (int l = 0; l < 2; l++) {
        const double t = sum[l][0] + sum[l][1] + sum[l][2];
        if (na[l]) snprintf(lay[l], sizeof lay[l], "n/a (%d of the timings refused)", na[l]);
        else snprintf(lay[l], sizeof lay[l], "%.2f ms (fwd %.2f, dgrad %.2f, wgrad %.2f)", t, sum[l][0], sum[l][1],
                      sum[l][2]);
    }
    const double t0 = sum[0][0] + sum[0][1] + sum[0][2], t1 = sum[1][0] + sum[1][1] + sum[1][2];
    char ratio[32] = "n/a";
    if (!na[0] && !na[1] && t0 > 0) snprintf(ratio, sizeof ratio, "%.2f", t1 / t0);
    printf("conv-layout: %s %dx%dx%d b%d %s: %d convolutions (%d geometries), one step's fastest cuDNN times: "
           "NCHW %s, NHWC %s: NHWC/NCHW %s\n",
           ms->name, ms->c, ms->hw, ms->hw, ms->batch, tf32 ? "tf32" : "fp32", n_conv, n_seen, lay[0], lay[1], ratio);
    fflush(stdout);
    lt_model_free(m);
    return 0;
}

static int listed(const char *list, const char *name) {
    if (!list) return 1;
    const size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

int main(int argc, char **argv) {
    const char *models = NULL, *modes = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc) models = argv[++i];
        else if (!strcmp(argv[i], "--modes") && i + 1 < argc) modes = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--models resnet32_cifar,resnet8_cifar,resnet50] [--modes fp32,tf32]\n",
                    argv[0]);
            return 2;
        }
    }
    /* every name given must be known: a typo would otherwise print nothing */
    for (const char *list = models; list && *list;) {
        const size_t n = strcspn(list, ",");
        int known = 0;
        for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++)
            known |= strlen(MODELS[i].name) == n && !strncmp(MODELS[i].name, list, n);
        if (!known) {
            fprintf(stderr, "bench_conv_layout: unknown model '%.*s' (resnet32_cifar, resnet8_cifar, resnet50)\n",
                    (int)n, list);
            return 2;
        }
        list += n + (list[n] == ',');
    }
    for (const char *list = modes; list && *list;) {
        const size_t n = strcspn(list, ",");
        if (!((n == 4 && !strncmp(list, "fp32", 4)) || (n == 4 && !strncmp(list, "tf32", 4)))) {
            fprintf(stderr, "bench_conv_layout: unknown mode '%.*s' (fp32, tf32)\n", (int)n, list);
            return 2;
        }
        list += n + (list[n] == ',');
    }
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("conv-layout: skipped: no CUDA device\n");
        return 0;
    }
    cudnnHandle_t h;
    cudnnStatus_t s = cudnnCreate(&h);
    if (s != CUDNN_STATUS_SUCCESS) {
        fprintf(stderr, "bench_conv_layout: cudnnCreate: %s\n", dnn_msg(s));
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) {
        if (!listed(models, MODELS[i].name)) continue;
        for (int tf32 = 1; tf32 >= 0; tf32--)
            if (listed(modes, tf32 ? "tf32" : "fp32") && run_model(h, &MODELS[i], tf32)) rc = 1;
    }
    cudnnDestroy(h);
    return rc;
}
