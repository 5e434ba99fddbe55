/* test_model_cuda.c — whole models on the CUDA backend against the same
 * models on the cpu backend (issue 19): ResNet-8 (28x28x1, 10 classes),
 * ResNet-32 (32x32x3, 100 classes) and ResNet-50 (64x64x3, 1000 classes),
 * built with the same seed (so the same initial parameters: a cuda model
 * is initialised on the host by the CPU code, then copied), one training
 * forward on the same batch, softmax cross-entropy (CPU: lt_softmax_ce; GPU:
 * lt_cuda_softmax_ce straight into the logits' device gradient), backward,
 * then one SGD step (momentum 0.9, weight decay 5e-4, Nesterov off).
 *
 * The CPU reference runs on the im2col + sgemm conv path (LT_CONV_PATH_REF:
 * no Winograd, whose own error is ~5e-6), so what differs is the GPU.
 * Compared:
 *
 *   output                      metric                    fp32    tf32
 *   logits                      max-normalised (1)        1e-3    2e-2 (ResNet-50: 2e-1)
 *   loss                        relative                  1e-4    2e-2 (ResNet-50: 5e-2)
 *   every parameter gradient    per-tensor L2 (2)         2.5e-1  6e-1 (ResNet-50: printed only)
 *   BN running mean / var       max-normalised (1)        1e-3    2e-2 (ResNet-50: 1e-1)
 *   parameters after SGD        max-normalised (1)        1e-6    1e-6  (3)
 *
 *   (1) max |gpu - cpu| / max |cpu| per tensor (tests/gpu/optable.h)
 *   (2) |g_gpu - g_cpu|_2 / |g_cpu|_2 per tensor; the global L2 error and
 *       the smallest cosine are printed with it
 *   (3) the CPU optimizer applied to the GPU's own gradients: the SGD
 *       kernels do the CPU's float operations, so this is exact up to an ulp
 *
 * Why these (measured before any GPU run, by two correct CPU models, the
 * Winograd path against im2col, whose ~5e-6 conv difference is what cuDNN's
 * own Winograd / FFT / other-order algorithms give; input seeds 1-30 and
 * 99): a 1e-6-sized difference in a conv output flips the sign of
 * ~1-3 pre-ReLU values per million, and at batch 4 one flip moves every
 * gradient upstream of it (ResNet-50's last stage normalises 4 x 2 x 2
 * values per channel). So a gradient's max-normalised error reached 0.57
 * (ResNet-50, fp32) for correct code, while its per-tensor L2 error stayed
 * at most 0.089 (fp32, ResNet-50; cosine >= 0.996; logits 1.7e-4, loss
 * 2.1e-5, BN 1.0e-4) and 0.24 (tf32, emulated by rounding the conv and
 * linear inputs to 10 mantissa bits, ResNet-32; logits 1.1e-3, loss 2.8e-4,
 * BN 2.1e-3). In tf32 ResNet-50's gradients decorrelate (global L2 up to
 * 0.74, one tensor 0.99), so there only the forward is asserted; its logits
 * reached 0.072, loss 0.018, BN buffers 0.049.
 * A wiring error (a lost shortcut gradient, a missing accumulation, a wrong
 * stride) moves a tensor's gradient by O(1); the op table checks each op's
 * gradient tightly (tests/gpu/test_backend_ops.c). The worst tensor of
 * every class is printed.
 *
 * Further cases:
 *   deterministic   a ResNet-32 step twice on a deterministic backend:
 *                   logits, loss, gradients, buffers memcmp-equal;
 *   fusion          the device's training fusion (BN / sum -> ReLU in one
 *                   kernel each way) against the same model unfused, on a
 *                   deterministic backend: every output bit for bit
 *                   (ResNet-8 plain, then a backward from a fused BN
 *                   alone; with a tap on a fused BN and with an eval-mode
 *                   backbone; ResNet-10);
 *   nhwc_fp32 / nhwc_tf32  the cpu_vs_cuda comparison above (same
 *                   tolerances) with the cuda model in NHWC
 *                   (lt_model_set_layout): ResNet-8 / 32 / 50 and the
 *                   heads in fp32, ResNet-50 in tf32 (PyTorch's
 *                   channels_last case); deterministic and fusion cases
 *                   repeated in NHWC;
 *   nhwc_host_copies  nodes of many pixels read back (lt_model_out_to_host,
 *                   then lt_model_dout_to_host after a backward from the
 *                   same logits tap) from an NHWC model equal the NCHW
 *                   model's within the conv tolerance; a gradient written
 *                   in reads back as written (the host sees NCHW); a
 *                   larger set_batch after the layout still matches; a
 *                   backward after a layout switch is LT_ESTATE;
 *   layout_refused  NHWC before finalize: LT_ESTATE; on a cpu model, on a
 *                   model whose plugin layer reads a many-pixel tensor, on
 *                   a linear layer reading one: LT_EINVAL naming the layer,
 *                   the model unchanged; lt_step_run with a many-pixel
 *                   logits node in NHWC: LT_EINVAL;
 *   plugin          plugin layers without forward_cuda (tests/host_plugin.h)
 *                   run on the host: their outputs and buffers equal the
 *                   cpu model's bit for bit, logits and gradients within
 *                   1e-5 (the device's linear layer);
 *   cam_pool        CAMC's CAM-weighted pooling against the cpu layer, both
 *                   layouts, labels / top-1 / eval / stop_grad / gamma 0:
 *                   output, attention, dF and the weight's gradient equal
 *                   (emulator) or within 1e-5 (GPU), see the case; a row
 *                   whose label is no class takes the top-1 class;
 * and, running on every machine:
 *   metrics_on_cpu_paths  the comparison and the fp32 tolerances above on
 *                   two correct cpu models (default conv path against the
 *                   reference): each class passes, the SGD step exactly;
 *   create_status   lt_backend_cuda_create without a device: LT_EDEVICE and
 *                   the reason (with one: an absent device index); a bad
 *                   math mode: LT_EINVAL;
 *   table_complete  every built-in layer kind has a CUDA forward and
 *                   backward, and a model with one node of every lt_add_*
 *                   layer has no node of the plugin kind;
 *   host_device     the model's device plumbing (device blocks, input copy,
 *                   first-writer dy bookkeeping with device memsets,
 *                   zero_grad, host copies, the optimizer's device path, the
 *                   host layers, the fused pairs' planning and running)
 *                   on a host-memory stand-in device whose layers run the
 *                   CPU kernels: ResNet-8 and a ResNet-50 slice must equal
 *                   the cpu model BIT FOR BIT (same kernels; the cpu
 *                   model's training fusion is bit-identical to unfused by
 *                   tests/test_model.c, the stand-in's sum -> ReLU pair is
 *                   the two CPU layers in turn).
 * Without a CUDA device the GPU cases print a reason and call skip(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_plugin.h"
#include "lt_backend_impl.h"
#include "lt_cuda.h"
#include "lt_kit.h"
#include "lt_layers_impl.h"
#include "lt_loss.h"
#include "lt_model.h"
#include "lt_model_impl.h"
#include "lt_rng.h"
#include "lt_step.h"
#include "optable.h"
#include "standin_dev.h"

/* grad < 0: the gradients are printed, not asserted */
typedef struct {
    double logits, loss, grad, buf, step;
} tols;
static const tols TOL_FP32 = {1e-3, 1e-4, 2.5e-1, 1e-3, 1e-6};
static const tols TOL_TF32 = {2e-2, 2e-2, 6e-1, 2e-2, 1e-6};
static const tols TOL_TF32_R50 = {2e-1, 5e-2, -1, 1e-1, 1e-6};

/* head: 0 a linear layer; HEAD_LWS a linear layer and a per-class scale
 * (LWS); HEAD_COSL a cosine classifier with a learned scale. */
enum { HEAD_LINEAR, HEAD_LWS, HEAD_COSL };
typedef struct {
    const char *arch;
    lt_shape in;
    int classes, N, head;
    lt_layout layout;   /* of the cuda model */
} net;
static const net R8 = {"resnet8_cifar", {1, 1, 28, 28}, 10, 4, HEAD_LINEAR, LT_LAYOUT_NCHW};
/* the heads the op table has no row for (their kernels: lt_cuda_layers.cu) */
static const net R8_LWS = {"resnet8_cifar", {1, 1, 28, 28}, 10, 4, HEAD_LWS, LT_LAYOUT_NCHW};
static const net R8_COSL = {"resnet8_cifar", {1, 1, 28, 28}, 10, 4, HEAD_COSL, LT_LAYOUT_NCHW};
static const net R32 = {"resnet32_cifar", {1, 3, 32, 32}, 100, 4, HEAD_LINEAR, LT_LAYOUT_NCHW};
static const net R50 = {"resnet50", {1, 3, 64, 64}, 1000, 4, HEAD_LINEAR, LT_LAYOUT_NCHW};
static const net R8_NHWC = {"resnet8_cifar", {1, 1, 28, 28}, 10, 4, HEAD_LINEAR, LT_LAYOUT_NHWC};
static const net R8_LWS_NHWC = {"resnet8_cifar", {1, 1, 28, 28}, 10, 4, HEAD_LWS, LT_LAYOUT_NHWC};
static const net R8_COSL_NHWC = {"resnet8_cifar", {1, 1, 28, 28}, 10, 4, HEAD_COSL, LT_LAYOUT_NHWC};
static const net R32_NHWC = {"resnet32_cifar", {1, 3, 32, 32}, 100, 4, HEAD_LINEAR, LT_LAYOUT_NHWC};
static const net R50_NHWC = {"resnet50", {1, 3, 64, 64}, 1000, 4, HEAD_LINEAR, LT_LAYOUT_NHWC};
static int is_r50(const net *n) { return !strcmp(n->arch, "resnet50"); }

/* the arch, and the head when not the plain linear one */
static const char *net_label(const net *n) {
    static char buf[64];
    snprintf(buf, sizeof buf, "%s%s%s", n->arch, n->head == HEAD_LWS ? "+lws" : n->head == HEAD_COSL ? "+cosl" : "",
             n->layout == LT_LAYOUT_NHWC ? "/nhwc" : "");
    return buf;
}

/* ---- building and running one model ---------------------------------------------- */
static lt_model *build(const net *n, lt_backend *b, int *logits) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create_on(&m, n->in, b), LT_OK);
    int feat = lt_resnet_backbone(m, n->arch);
    assert_true(feat > 0);
    if (n->head == HEAD_COSL) {
        *logits = lt_add_cosine_learned(m, "logits", "head", feat, n->classes, 16.0f);
    } else {
        *logits = lt_add_linear(m, n->head == HEAD_LWS ? "fc" : "logits", "head", feat, n->classes, 1);
        if (n->head == HEAD_LWS && *logits > 0) *logits = lt_add_scale(m, "logits", "head", *logits);
    }
    assert_true(*logits > 0);
    assert_int_equal(lt_model_finalize(m, 1234), LT_OK);
    assert_int_equal(lt_model_set_batch(m, n->N), LT_OK);
    if (lt_model_device_ctx(m)) {
        assert_int_equal(lt_model_set_layout(m, n->layout), LT_OK);
        assert_int_equal(lt_model_layout(m), n->layout);
    }
    return m;
}

static void batch(const net *n, float **x, int32_t **y) {
    const size_t per = lt_shape_count(n->in);
    *x = malloc((size_t)n->N * per * sizeof(float));
    *y = malloc((size_t)n->N * sizeof(int32_t));
    assert_non_null(*x);
    assert_non_null(*y);
    lt_rng r;
    lt_rng_init(&r, 99, 7);
    for (size_t i = 0; i < (size_t)n->N * per; i++) (*x)[i] = (float)lt_rng_normal(&r);
    for (int i = 0; i < n->N; i++) (*y)[i] = (int32_t)lt_rng_below(&r, (uint32_t)n->classes);
}

/* Everything one step produces, on the host. */
typedef struct {
    float *logits;
    double loss;
    float **g, **w_after;   /* per parameter */
    float **bufs;           /* per buffer, after the forward */
    int np, nb;
} result;

static void result_free(result *r) {
    for (int i = 0; i < r->np; i++) { free(r->g[i]); free(r->w_after[i]); }
    for (int i = 0; i < r->nb; i++) free(r->bufs[i]);
    free(r->g); free(r->w_after); free(r->bufs); free(r->logits);
    memset(r, 0, sizeof *r);
}

/* One step of model m (any backend). On a cuda backend the loss runs on
 * the device (lt_cuda_softmax_ce into the logits' device gradient). With
 * step_grads (a cpu model only), r->g keeps m's own gradients but the SGD
 * step takes step_grads->g instead: the optimizer checked on the other
 * backend's gradients. */
static void step_tap(lt_model *m, int logits, int tap, const net *n, const float *x, const int32_t *y, result *r,
                     const result *step_grads) {
    const int N = n->N, C = n->classes;
    /* a real device (the host stand-in below has no context: host loss) */
    const int on_dev = lt_model_device_ctx(m) != NULL;
    memset(r, 0, sizeof *r);
    lt_model_zero_grad(m);
    assert_int_equal(lt_model_forward(m, x, N, 1), LT_OK);
    r->logits = malloc((size_t)N * C * sizeof(float));
    assert_int_equal(lt_model_out_to_host(m, logits, N, r->logits), LT_OK);
    if (on_dev) {
        lt_cuda_ctx *ctx = lt_model_device_ctx(m);
        int32_t *dy = NULL;
        assert_int_equal(lt_cuda_alloc(ctx, (void **)&dy, (size_t)N * sizeof(int32_t)), LT_OK);
        assert_int_equal(lt_cuda_h2d(ctx, dy, y, (size_t)N * sizeof(int32_t)), LT_OK);
        assert_int_equal(lt_cuda_softmax_ce(ctx, N, C, lt_model_out(m, logits), dy, NULL, NULL, &r->loss,
                                            lt_model_dout(m, logits)),
                         LT_OK);
        lt_cuda_free(ctx, dy);
    } else {
        float *dl = malloc((size_t)N * C * sizeof(float));
        assert_int_equal(lt_softmax_ce(N, C, r->logits, y, NULL, NULL, &r->loss, dl), LT_OK);
        assert_int_equal(lt_model_dout_from_host(m, logits, N, dl), LT_OK);
        free(dl);
    }
    r->nb = lt_model_n_buffers(m);
    r->bufs = calloc((size_t)r->nb + 1, sizeof(float *));
    for (int i = 0; i < r->nb; i++) {
        lt_buffer_info b;
        assert_int_equal(lt_model_buffer_at(m, i, &b), LT_OK);
        r->bufs[i] = malloc(b.count * sizeof(float));
        assert_int_equal(lt_model_buffer_to_host(m, i, r->bufs[i]), LT_OK);
    }
    int taps[2] = {logits, tap};
    if (tap > 0) {
        /* a caller-filled gradient on another node too (d loss / d out = 0.01) */
        const size_t nt = (size_t)N * lt_model_out_size(m, tap);
        float *dt = malloc(nt * sizeof(float));
        assert_non_null(dt);
        for (size_t i = 0; i < nt; i++) dt[i] = 0.01f;
        assert_int_equal(lt_model_dout_from_host(m, tap, N, dt), LT_OK);
        free(dt);
    }
    assert_int_equal(lt_model_backward(m, N, taps, tap > 0 ? 2 : 1), LT_OK);
    r->np = lt_model_n_params(m);
    r->g = calloc((size_t)r->np, sizeof(float *));
    r->w_after = calloc((size_t)r->np, sizeof(float *));
    for (int i = 0; i < r->np; i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(m, i, &p), LT_OK);
        r->g[i] = malloc(p.count * sizeof(float));
        r->w_after[i] = malloc(p.count * sizeof(float));
        assert_int_equal(lt_model_param_to_host(m, i, NULL, r->g[i]), LT_OK);
        if (step_grads) {
            assert_null(lt_model_device_ctx(m));
            assert_int_equal(step_grads->np, r->np);
            memcpy(p.g, step_grads->g[i], p.count * sizeof(float));
        }
    }
    lt_optim o;
    assert_int_equal(lt_optim_init(&o, m, LT_OPT_SGD, 0.9f, 5e-4f, 0), LT_OK);
    assert_int_equal(lt_optim_step(&o, m, 0.1f), LT_OK);
    for (int i = 0; i < r->np; i++) assert_int_equal(lt_model_param_to_host(m, i, r->w_after[i], NULL), LT_OK);
    lt_optim_free(&o);
    assert_int_equal(lt_model_sync(m), LT_OK);
}

static void step(lt_model *m, int logits, const net *n, const float *x, const int32_t *y, result *r,
                 const result *step_grads) {
    step_tap(m, logits, -1, n, x, y, r, step_grads);
}

/* |b - a|_2 / |a|_2 (|b|_2 when a is 0), and the pieces for the global error. */
static double l2err(const float *a, const float *b, size_t n, double *d2, double *a2, double *cosine) {
    double d = 0, aa = 0, bb = 0, ab = 0;
    for (size_t i = 0; i < n; i++) {
        const double u = a[i], v = b[i];
        d += (v - u) * (v - u);
        aa += u * u;
        bb += v * v;
        ab += u * v;
    }
    *d2 += d;
    *a2 += aa;
    *cosine = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1 : 0);
    const double e = aa > 0 ? sqrt(d / aa) : sqrt(d);
    return isnan(e) ? INFINITY : e;   /* a NaN must fail, and stay the worst */
}

/* Worst error of each class; exact = 1 demands 0 everywhere. */
static int compare(lt_model *m, const net *n, const result *a, const result *b, const tols *t, const char *what,
                   int exact) {
    double e_log = lt_ot_relerr(a->logits, b->logits, (size_t)n->N * n->classes);
    double e_loss = fabs(a->loss - b->loss) / fmax(fabs(a->loss), 1e-30);
    double e_g = 0, e_b = 0, e_w = 0, d2 = 0, a2 = 0, cmin = 1;
    const char *wg = "-", *wb = "-", *ww = "-", *wc = "-";
    for (int i = 0; i < a->np; i++) {
        lt_param_info p;
        lt_model_param_at(m, i, &p);
        double cs;
        double e = l2err(a->g[i], b->g[i], p.count, &d2, &a2, &cs);
        if (exact && memcmp(a->g[i], b->g[i], p.count * sizeof(float))) e = fmax(e, 1e-300);
        if (!(e <= e_g)) { e_g = e; wg = p.name; }
        if (!(cs >= cmin)) { cmin = cs; wc = p.name; }
        e = lt_ot_relerr(a->w_after[i], b->w_after[i], p.count);
        if (!(e <= e_w)) { e_w = e; ww = p.name; }
    }
    for (int i = 0; i < a->nb; i++) {
        lt_buffer_info bi;
        lt_model_buffer_at(m, i, &bi);
        double e = lt_ot_relerr(a->bufs[i], b->bufs[i], bi.count);
        if (!(e <= e_b)) { e_b = e; wb = bi.name; }
    }
    const tols z = {0, 0, 0, 0, 0};
    if (exact) t = &z;
    const int grads_ok = t->grad < 0 ? 1 : e_g <= t->grad;
    int ok = e_log <= t->logits && e_loss <= t->loss && grads_ok && e_b <= t->buf && e_w <= t->step;
    char gtol[32];
    if (t->grad < 0) snprintf(gtol, sizeof gtol, "printed only");
    else snprintf(gtol, sizeof gtol, "tol %.1e", t->grad);
    print_message("%-15s %-6s N=%d: logits %.3g (tol %.0e), loss %.3g (%.0e), grads per-tensor L2 %.3g (%s, worst "
                  "%s; global L2 %.3g, min cosine %.6f at %s), BN buffers %.3g (%.0e, worst %s), SGD step %.3g "
                  "(%.0e, worst %s): %s\n",
                  net_label(n), what, n->N, e_log, t->logits, e_loss, t->loss, e_g, gtol, wg,
                  a2 > 0 ? sqrt(d2 / a2) : sqrt(d2), cmin, wc, e_b, t->buf, wb, e_w, t->step, ww,
                  ok ? "PASS" : "FAIL");
    return ok;
}

/* The cpu reference: im2col + sgemm convolutions (no Winograd error). */
static lt_backend *ref_cpu_backend(void) {
    lt_cpu_opts o;
    lt_cpu_opts_default(&o);
    o.conv = LT_CONV_PATH_REF;
    lt_backend *b = NULL;
    assert_int_equal(lt_backend_cpu_create(&o, &b), LT_OK);
    return b;
}

/* ---- GPU presence ------------------------------------------------------------------------ */
static lt_backend *gpu_backend(lt_cuda_math math, int det) {
    lt_backend *b = NULL;
    if (lt_backend_cuda_create(0, math, det, &b) != LT_OK) {
        print_message("skip: no usable CUDA device: %s\n", lt_errmsg());
        return NULL;
    }
    return b;
}
#define NEED_GPU(bp, math, det)      \
    do {                             \
        (bp) = gpu_backend(math, det); \
        if (!(bp)) { skip(); return; } \
    } while (0)

/* Model on backend `other` (a GPU, or the default cpu path) against the
 * reference cpu model: one step each, the reference's SGD step on the
 * other's gradients, compared with tolerances t. */
static int versus_ref(const net *n, lt_backend *other, const tols *t, const char *what) {
    float *x;
    int32_t *y;
    batch(n, &x, &y);
    int lc, lg;
    lt_backend *cb = ref_cpu_backend();
    lt_model *mc = build(n, cb, &lc), *mg = build(n, other, &lg);
    result rc, rg;
    step(mg, lg, n, x, y, &rg, NULL);
    step(mc, lc, n, x, y, &rc, &rg);   /* its SGD step on the other model's gradients */
    int ok = compare(mc, n, &rc, &rg, t, what, 0);
    lt_cuda_ctx *ctx = lt_model_device_ctx(mg);
    if (ctx) {
        /* what cuDNN chose (Winograd and FFT round differently from a direct
         * sum): printed with the errors; fp32 mode must use FMA math only */
        const size_t cap = 1 << 16;
        char *d = malloc(cap);
        assert_non_null(d);
        const int np = lt_cuda_conv_plans_describe(ctx, d, cap);
        /* printf, not print_message: CMocka's message buffer would cut the list */
        printf("%s %s: %d cuDNN convolution plans\n%s", net_label(n), what, np, d);
        fflush(stdout);
        assert_true(np > 0);
        assert_non_null(strstr(d, ": fwd "));
        if (!strcmp(what, "fp32")) assert_null(strstr(d, "TENSOR_OP"));
        /* every plan in the model's layout */
        if (n->layout == LT_LAYOUT_NHWC) assert_null(strstr(d, "N=4:"));
        else assert_null(strstr(d, " nhwc:"));
        free(d);
    }
    result_free(&rc);
    result_free(&rg);
    lt_model_free(mc);
    lt_model_free(mg);
    lt_backend_free(cb);
    free(x);
    free(y);
    return ok;
}

static void cpu_vs_cuda(const net *n, lt_cuda_math math) {
    lt_backend *gb;
    NEED_GPU(gb, math, 0);
    const tols *t = math == LT_CUDA_FP32 ? &TOL_FP32 : is_r50(n) ? &TOL_TF32_R50 : &TOL_TF32;
    int ok = versus_ref(n, gb, t, math == LT_CUDA_TF32 ? "tf32" : "fp32");
    lt_backend_free(gb);
    assert_true(ok);
}

/* Runs everywhere: the comparison above and its fp32 tolerances on two
 * correct cpu models, the default conv path (Winograd where AVX-512 has
 * it) against the reference: the size of difference cuDNN's algorithms
 * make. Every class must pass, and the SGD step (the same kernels on the
 * same gradients) must be exact. */
static void test_metrics_on_cpu_paths(void **s) {
    (void)s;
    const tols exact_step = {TOL_FP32.logits, TOL_FP32.loss, TOL_FP32.grad, TOL_FP32.buf, 0};
    assert_true(versus_ref(&R8, NULL, &exact_step, "cpu"));
    assert_true(versus_ref(&R32, NULL, &exact_step, "cpu"));
    assert_true(versus_ref(&R50, NULL, &exact_step, "cpu"));
    assert_true(versus_ref(&R8_LWS, NULL, &exact_step, "cpu"));
    assert_true(versus_ref(&R8_COSL, NULL, &exact_step, "cpu"));
}

static void test_resnet8_fp32(void **s) { (void)s; cpu_vs_cuda(&R8, LT_CUDA_FP32); }
static void test_resnet32_fp32(void **s) { (void)s; cpu_vs_cuda(&R32, LT_CUDA_FP32); }
static void test_resnet50_fp32(void **s) { (void)s; cpu_vs_cuda(&R50, LT_CUDA_FP32); }
static void test_resnet8_tf32(void **s) { (void)s; cpu_vs_cuda(&R8, LT_CUDA_TF32); }
static void test_heads_fp32(void **s) {
    (void)s;
    cpu_vs_cuda(&R8_LWS, LT_CUDA_FP32);
    cpu_vs_cuda(&R8_COSL, LT_CUDA_FP32);
}
static void test_resnet32_tf32(void **s) { (void)s; cpu_vs_cuda(&R32, LT_CUDA_TF32); }
static void test_resnet50_tf32(void **s) { (void)s; cpu_vs_cuda(&R50, LT_CUDA_TF32); }

static void test_nhwc_fp32(void **s) {
    (void)s;
    cpu_vs_cuda(&R8_NHWC, LT_CUDA_FP32);
    cpu_vs_cuda(&R32_NHWC, LT_CUDA_FP32);
    cpu_vs_cuda(&R50_NHWC, LT_CUDA_FP32);
    cpu_vs_cuda(&R8_LWS_NHWC, LT_CUDA_FP32);
    cpu_vs_cuda(&R8_COSL_NHWC, LT_CUDA_FP32);
}
static void test_nhwc_tf32(void **s) { (void)s; cpu_vs_cuda(&R50_NHWC, LT_CUDA_TF32); }

/* Two identical models, one deterministic backend: bit-identical steps. */
static void deterministic_case(const net *n) {
    lt_backend *gb;
    NEED_GPU(gb, LT_CUDA_FP32, 1);
    float *x;
    int32_t *y;
    batch(n, &x, &y);
    int l1, l2;
    lt_model *m1 = build(n, gb, &l1), *m2 = build(n, gb, &l2);
    result a, b;
    step(m1, l1, n, x, y, &a, NULL);
    step(m2, l2, n, x, y, &b, NULL);
    int ok = compare(m1, n, &a, &b, &TOL_FP32, "det", 1);
    result_free(&a);
    result_free(&b);
    lt_model_free(m1);
    lt_model_free(m2);
    lt_backend_free(gb);
    free(x);
    free(y);
    assert_true(ok);
}
static void test_deterministic(void **s) {
    (void)s;
    deterministic_case(&R32);
    deterministic_case(&R32_NHWC);
}

/* The device's training fusion (BN -> ReLU and sum -> ReLU as one kernel
 * each way) against the same model unfused (no_fuse), on a deterministic
 * backend: logits, loss, gradients, BN buffers and SGD step bit for bit.
 * Modes as tests/test_model.c's: 0 plain; 1 a caller tap on a fused BN
 * (its ReLU then accumulates, so that pair runs unfused backward); 2 the
 * backbone in eval mode (BN on running statistics: BN pairs unfused, sums
 * still fused). */
static void fusion_case(lt_backend *gb, const net *n, int mode) {
    float *x;
    int32_t *y;
    batch(n, &x, &y);
    int l0, l1;
    lt_model *m0 = build(n, gb, &l0), *m1 = build(n, gb, &l1);
    lt_model_set_no_fuse(m0, 1);
    if (mode == 2) {
        assert_int_equal(lt_model_set_eval(m0, "backbone", 1), LT_OK);
        assert_int_equal(lt_model_set_eval(m1, "backbone", 1), LT_OK);
    }
    const int tap = mode == 1 ? lt_model_find(m1, "layer1.0.bn1") : -1;
    if (mode == 1) assert_true(tap > 0 && lt_model_node_const(m1, tap)->fuse_train);
    result a, b;
    step_tap(m0, l0, tap, n, x, y, &a, NULL);
    step_tap(m1, l1, tap, n, x, y, &b, NULL);
    int bn = 0, sum = 0, planned = 0;
    for (int i = 1; i < lt_model_n_nodes(m1); i++) {
        const lt_node *nd = lt_model_node_const(m1, i);
        assert_int_equal(lt_model_node_const(m0, i)->fused_now, 0);
        planned += nd->fuse_train;
        bn += nd->fused_now && nd->kind == LT_LK_BN;
        sum += nd->fused_now && nd->kind == LT_LK_SUM;
    }
    char what[16];
    snprintf(what, sizeof what, "fused%d", mode);
    int ok = compare(m0, n, &a, &b, &TOL_FP32, what, 1);
    if (mode == 0) {
        /* then a backward from a fused BN alone: its ReLU lies beyond the
         * pass's last node, with the earlier pass's "overwrites" flag still
         * set, so the BN must run its own backward */
        const int t = lt_model_find(m1, "layer1.0.bn1");
        assert_true(t > 0 && lt_model_node_const(m1, t)->fused_now);
        const size_t nt = (size_t)n->N * lt_model_out_size(m1, t);
        float *dt = malloc(nt * sizeof(float)), *g[2] = {NULL, NULL};
        assert_non_null(dt);
        for (size_t i = 0; i < nt; i++) dt[i] = 0.01f * (float)(i % 7) - 0.03f;
        lt_model *ms[2] = {m0, m1};
        size_t total = 0;
        for (int k = 0; k < 2; k++) {
            lt_model_zero_grad(ms[k]);
            assert_int_equal(lt_model_dout_from_host(ms[k], t, n->N, dt), LT_OK);
            assert_int_equal(lt_model_backward(ms[k], n->N, &t, 1), LT_OK);
            total = 0;
            for (int i = 0; i < lt_model_n_params(ms[k]); i++) {
                lt_param_info p;
                assert_int_equal(lt_model_param_at(ms[k], i, &p), LT_OK);
                g[k] = realloc(g[k], (total + p.count) * sizeof(float));
                assert_non_null(g[k]);
                assert_int_equal(lt_model_param_to_host(ms[k], i, NULL, g[k] + total), LT_OK);
                total += p.count;
            }
        }
        size_t nz = 0;   /* non-zero gradients, each a number: NaN != 0 would count, and the byte
                          * comparison below holds for NaNs in the same places */
        for (size_t i = 0; i < total; i++) {
            if (!isfinite(g[0][i])) fail_msg("%s: gradient %zu is %g", net_label(n), i, g[0][i]);
            nz += g[0][i] != 0.0f;
        }
        print_message("%s: backward from %s alone: %zu gradients non-zero, fused %s unfused\n", net_label(n),
                      lt_model_node_const(m1, t)->name, nz, memcmp(g[0], g[1], total * sizeof(float)) ? "!=" : "==");
        assert_true(nz > 0);
        assert_memory_equal(g[0], g[1], total * sizeof(float));
        free(dt);
        free(g[0]);
        free(g[1]);
    }
    print_message("%s mode %d: %d pairs planned, %d BN -> ReLU and %d sum -> ReLU fused\n", net_label(n), mode, planned,
                  bn, sum);
    result_free(&a);
    result_free(&b);
    lt_model_free(m0);
    lt_model_free(m1);
    free(x);
    free(y);
    assert_true(ok);
    assert_true(sum >= 1);
    if (mode == 2) assert_int_equal(bn, 0);
    else assert_true(bn >= 2);
    assert_int_equal(bn + sum, mode == 2 ? sum : planned);
}

static void test_fusion_bit_identical(void **s) {
    (void)s;
    lt_backend *gb;
    NEED_GPU(gb, LT_CUDA_FP32, 1);
    /* small inputs, cheap on the emulator; ResNet-10: the ImageNet stem,
     * max pool and projection shortcuts (conv -> BN into the sum) */
    const net r8 = {"resnet8_cifar", {1, 1, 12, 12}, 10, 3, HEAD_LINEAR, LT_LAYOUT_NCHW};
    const net r10 = {"resnet10", {1, 3, 32, 32}, 10, 2, HEAD_LINEAR, LT_LAYOUT_NCHW};
    for (int mode = 0; mode < 3; mode++) fusion_case(gb, &r8, mode);
    fusion_case(gb, &r10, 0);
    const net r8n = {"resnet8_cifar", {1, 1, 12, 12}, 10, 3, HEAD_LINEAR, LT_LAYOUT_NHWC};
    const net r10n = {"resnet10", {1, 3, 32, 32}, 10, 2, HEAD_LINEAR, LT_LAYOUT_NHWC};
    fusion_case(gb, &r8n, 0);
    fusion_case(gb, &r10n, 0);
    lt_backend_free(gb);
}

/* Node nd of two models read back to the host (grad: its gradient),
 * max |b - a| / max |a|. */
static double readback_err(lt_model *ma, lt_model *mb, int nd, int N, int grad) {
    const size_t n = (size_t)N * lt_model_out_size(ma, nd);
    float *ya = malloc(n * sizeof(float)), *yb = malloc(n * sizeof(float));
    assert_non_null(ya);
    assert_non_null(yb);
    int (*read)(lt_model *, int, int, float *) = grad ? lt_model_dout_to_host : lt_model_out_to_host;
    assert_int_equal(read(ma, nd, N, ya), LT_OK);
    assert_int_equal(read(mb, nd, N, yb), LT_OK);
    const double e = lt_ot_relerr(ya, yb, n);
    free(ya);
    free(yb);
    return e;
}

/* A many-pixel node read back from an NHWC model is the NCHW model's
 * (within the conv tolerance: cuDNN may pick other kernels per layout),
 * and a gradient written into it reads back as written. */
static void test_nhwc_host_copies(void **s) {
    (void)s;
    lt_backend *gb;
    NEED_GPU(gb, LT_CUDA_FP32, 1);
    const net a = {"resnet10", {1, 3, 20, 20}, 10, 2, HEAD_LINEAR, LT_LAYOUT_NCHW};
    net b = a;
    b.layout = LT_LAYOUT_NHWC;
    float *x;
    int32_t *y;
    batch(&a, &x, &y);
    int la, lb;
    lt_model *ma = build(&a, gb, &la), *mb = build(&b, gb, &lb);
    lt_model_set_no_fuse(ma, 1);
    lt_model_set_no_fuse(mb, 1);
    assert_int_equal(lt_model_forward(ma, x, a.N, 0), LT_OK);
    assert_int_equal(lt_model_forward(mb, x, a.N, 0), LT_OK);
    const char *names[] = {"conv1", "layer1.0.conv2", "layer2.0.bn1"};
    for (int k = 0; k < 3; k++) {
        const int nd = lt_model_find(ma, names[k]);
        assert_true(nd > 0);
        const lt_shape sh = lt_node_shape(lt_model_node_const(ma, nd));
        assert_true(sh.h * sh.w > 1 && sh.c > 1);
        const double e = readback_err(ma, mb, nd, a.N, 0);
        print_message("nhwc host copy of %s (%dx%dx%d): %.3g from the NCHW model's\n", names[k], sh.c, sh.h, sh.w, e);
        assert_true(e <= 1e-4);
    }
    /* gradients: the same tap on the logits of both, a backward, then the
     * many-pixel nodes' dy read back (converted) against the NCHW model's */
    const size_t nl = (size_t)a.N * a.classes;
    float *dl = malloc(nl * sizeof(float));
    assert_non_null(dl);
    for (size_t i = 0; i < nl; i++) dl[i] = 0.05f * (float)((int)(i % 11) - 5);
    lt_model *ms[2] = {ma, mb};
    const int ls[2] = {la, lb};
    for (int k = 0; k < 2; k++) {
        lt_model_zero_grad(ms[k]);
        assert_int_equal(lt_model_dout_from_host(ms[k], ls[k], a.N, dl), LT_OK);
        assert_int_equal(lt_model_backward(ms[k], a.N, &ls[k], 1), LT_OK);
    }
    for (int k = 0; k < 3; k++) {
        const int nd = lt_model_find(ma, names[k]);
        const double e = readback_err(ma, mb, nd, a.N, 1);
        print_message("nhwc host copy of d %s: %.3g from the NCHW model's\n", names[k], e);
        assert_true(e <= 1e-4);
        /* and a gradient written in reads back as written */
        const size_t n = (size_t)a.N * lt_model_out_size(mb, nd);
        float *g = malloc(n * sizeof(float)), *back = malloc(n * sizeof(float));
        assert_non_null(g);
        assert_non_null(back);
        for (size_t i = 0; i < n; i++) g[i] = (float)i;
        assert_int_equal(lt_model_dout_from_host(mb, nd, a.N, g), LT_OK);
        assert_int_equal(lt_model_dout_to_host(mb, nd, a.N, back), LT_OK);
        assert_memory_equal(g, back, n * sizeof(float));
        free(g);
        free(back);
    }
    free(dl);
    /* a larger batch planned after the layout: the NHWC input copy grows */
    net a3 = a;
    a3.N = 3;
    float *x3;
    int32_t *y3;
    batch(&a3, &x3, &y3);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(lt_model_set_batch(ms[k], a3.N), LT_OK);
        assert_int_equal(lt_model_forward(ms[k], x3, a3.N, 0), LT_OK);
    }
    const double e3 = readback_err(ma, mb, lt_model_find(ma, "conv1"), a3.N, 0);
    print_message("nhwc after set_batch(%d): conv1 %.3g from the NCHW model's\n", a3.N, e3);
    assert_true(e3 <= 1e-4);
    free(x3);
    free(y3);
    /* a backward in another layout than its forward is refused */
    assert_int_equal(lt_model_set_layout(mb, LT_LAYOUT_NCHW), LT_OK);
    lt_err_clear();
    assert_int_equal(lt_model_backward(mb, a.N, &lb, 1), LT_ESTATE);
    print_message("backward after a layout switch: %s\n", lt_errmsg());
    lt_model_free(ma);
    lt_model_free(mb);
    lt_backend_free(gb);
    free(x);
    free(y);
}

/* ---- CAM-weighted pooling (CAMC's layer) on the device ---------------------------------------------
 * input -> identity 1x1 conv "pre" (F exact on both backends, and F's
 * gradient is pre's dy) -> cam_pool -> cosine "logits" (the weight the
 * pooling reads), on the cpu and on the device from the same parameters;
 * the backward from a gradient on cam_pool's output (the logits' tap
 * zero, so the cosine layer adds exact zeros), as the layer's own tests do.
 * Compared by lt_ot_relerr: cam_pool's output, the saved attention and
 * class, pre's dy (dF) and the classifier weight's gradient (through A),
 * in training forwards with the labels (lt_model_set_labels: copied to the
 * device), without them (cam_class "pred", the top-1 class) and in
 * inference; both layouts; stop_grad; C = 300 classes, so the class search
 * spans several per thread and the block's reduction. Every value is the
 * CPU's operations in its order: on the emulator (host exp) exactly equal;
 * on a GPU within 1e-5 (its double exp may differ in the last bit). */
enum { CPK = 16, CPH = 3, CPW = 5, CPC = 300, CPN = 6 };

static lt_model *cp_build(lt_backend *b, lt_layout layout, float gamma, int stop_grad, int use_labels, int *cp,
                          int *pre, int *lg) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create_on(&m, (lt_shape){1, CPK, CPH, CPW}, b), LT_OK);
    *pre = lt_add_conv(m, "pre", "backbone", 0, CPK, 1, 1, 0, 1, 0);
    *cp = lt_add_cam_pool(m, "cp", "head", *pre, "logits.weight", 4.0f, gamma, stop_grad, use_labels);
    *lg = lt_add_cosine(m, "logits", "head", *cp, CPC, 16.0f);
    assert_true(*pre > 0 && *cp > 0 && *lg > 0);
    assert_int_equal(lt_model_finalize(m, 77), LT_OK);
    assert_int_equal(lt_model_set_batch(m, CPN), LT_OK);
    float *id = calloc(CPK * CPK, sizeof(float));
    assert_non_null(id);
    for (int k = 0; k < CPK; k++) id[k * CPK + k] = 1.0f;
    assert_int_equal(lt_model_param_from_host(m, lt_model_param_index(m, "pre.weight"), id), LT_OK);
    free(id);
    if (lt_model_device_ctx(m)) assert_int_equal(lt_model_set_layout(m, layout), LT_OK);
    return m;
}

/* forward (training with labels when y), then the backward from dcp; the
 * outputs on the host */
static void cp_run(lt_model *m, int cp, int pre, int lg, const float *x, const int32_t *y, int training,
                   const float *dcp, float *out, float *saved, float *dF, float *dW) {
    if (y) assert_int_equal(lt_model_set_labels(m, y, CPN), LT_OK);
    assert_int_equal(lt_model_forward(m, x, CPN, training), LT_OK);
    assert_int_equal(lt_model_out_to_host(m, cp, CPN, out), LT_OK);
    const lt_node *nd = lt_model_node_const(m, cp);
    const size_t ns = (size_t)CPN * (CPH * CPW + 1);
    if (lt_model_device_ctx(m))
        assert_int_equal(lt_cuda_d2h(lt_model_device_ctx(m), saved, nd->saved, ns * sizeof(float)), LT_OK);
    else
        memcpy(saved, nd->saved, ns * sizeof(float));
    float *zero = calloc((size_t)CPN * CPC, sizeof(float));
    assert_non_null(zero);
    lt_model_zero_grad(m);
    assert_int_equal(lt_model_dout_from_host(m, cp, CPN, dcp), LT_OK);
    assert_int_equal(lt_model_dout_from_host(m, lg, CPN, zero), LT_OK);
    const int taps[2] = {cp, lg};
    assert_int_equal(lt_model_backward(m, CPN, taps, 2), LT_OK);
    assert_int_equal(lt_model_dout_to_host(m, pre, CPN, dF), LT_OK);
    assert_int_equal(lt_model_param_to_host(m, lt_model_param_index(m, "logits.weight"), NULL, dW), LT_OK);
    free(zero);
}

static void cam_pool_case(lt_backend *gb, lt_layout layout, float gamma, int stop_grad, int use_labels,
                          int training, int exact) {
    lt_backend *cb = ref_cpu_backend();
    int cp[2], pre[2], lg[2];
    lt_model *ms[2] = {cp_build(cb, layout, gamma, stop_grad, use_labels, &cp[0], &pre[0], &lg[0]),
                       cp_build(gb, layout, gamma, stop_grad, use_labels, &cp[1], &pre[1], &lg[1])};
    const size_t nx = (size_t)CPN * CPK * CPH * CPW, no = (size_t)CPN * CPK, ns = (size_t)CPN * (CPH * CPW + 1),
                 nw = (size_t)CPC * CPK;
    float *x = malloc(nx * sizeof(float)), *dcp = malloc(no * sizeof(float));
    int32_t y[CPN];
    assert_non_null(x);
    assert_non_null(dcp);
    lt_rng r;
    lt_rng_init(&r, 5, 3);
    for (size_t i = 0; i < nx; i++) x[i] = (float)lt_rng_normal(&r);
    for (size_t i = 0; i < no; i++) dcp[i] = (float)lt_rng_normal(&r);
    for (int i = 0; i < CPN; i++) y[i] = (int32_t)lt_rng_below(&r, CPC);
    y[3] = y[1];   /* two rows of one class: their weight gradients add up in row order */
    float *out[2], *sv[2], *dF[2], *dW[2];
    for (int k = 0; k < 2; k++) {
        out[k] = malloc(no * sizeof(float));
        sv[k] = malloc(ns * sizeof(float));
        dF[k] = malloc(nx * sizeof(float));
        dW[k] = malloc(nw * sizeof(float));
        assert_true(out[k] && sv[k] && dF[k] && dW[k]);
        cp_run(ms[k], cp[k], pre[k], lg[k], x, training && use_labels ? y : NULL, training, dcp, out[k], sv[k], dF[k],
               dW[k]);
    }
    /* the class each row used: the label, or the top-1 search's */
    int classes_equal = 1, labels_used = 1;
    for (int i = 0; i < CPN; i++) {
        const float c0 = sv[0][(size_t)i * (CPH * CPW + 1) + CPH * CPW], c1 = sv[1][(size_t)i * (CPH * CPW + 1) + CPH * CPW];
        classes_equal &= c0 == c1;
        labels_used &= c0 == (float)y[i];
    }
    assert_true(classes_equal);
    assert_int_equal(labels_used, training && use_labels);
    const double e_out = lt_ot_relerr(out[0], out[1], no), e_sv = lt_ot_relerr(sv[0], sv[1], ns),
                 e_dF = lt_ot_relerr(dF[0], dF[1], nx), e_dW = lt_ot_relerr(dW[0], dW[1], nw);
    double wsum = 0;
    for (size_t i = 0; i < nw; i++) wsum += fabs(dW[0][i]);
    print_message("cam_pool %s gamma %g%s%s %s: out %.3g, attention %.3g, dF %.3g, dW %.3g (|dW| %.3g)\n",
                  layout == LT_LAYOUT_NHWC ? "nhwc" : "nchw", gamma, stop_grad ? " stop_grad" : "",
                  use_labels ? " labels" : " top-1", training ? "train" : "eval", e_out, e_sv, e_dF, e_dW, wsum);
    const double tol = exact ? 0.0 : 1e-5;
    assert_true(e_out <= tol && e_sv <= tol && e_dF <= tol && e_dW <= tol);
    /* lt_ot_relerr passes NaNs in the same places, and a NaN sum is not > 0:
     * "no gradient" must be a zero one */
    assert_true(isfinite(wsum));
    assert_int_equal(wsum > 0, !stop_grad && gamma != 0.0f);   /* the weight's gradient through A, or none */
    for (int k = 0; k < 2; k++) {
        free(out[k]);
        free(sv[k]);
        free(dF[k]);
        free(dW[k]);
        lt_model_free(ms[k]);
    }
    free(x);
    free(dcp);
    lt_backend_free(cb);
}

static void test_cam_pool(void **s) {
    (void)s;
    lt_backend *gb;
    NEED_GPU(gb, LT_CUDA_FP32, 1);
    const int exact = strstr(lt_backend_describe(gb), "cuemu") != NULL;
    for (int l = 0; l < 2; l++) {
        const lt_layout ly = l ? LT_LAYOUT_NHWC : LT_LAYOUT_NCHW;
        cam_pool_case(gb, ly, 1.0f, 0, 1, 1, exact);   /* camc's default: the label's CAM */
        cam_pool_case(gb, ly, 1.0f, 0, 1, 0, exact);   /* its test forward: the top-1 */
        cam_pool_case(gb, ly, 0.7f, 0, 0, 1, exact);   /* cam_class "pred" */
        cam_pool_case(gb, ly, 1.0f, 1, 1, 1, exact);   /* stop_grad */
    }
    cam_pool_case(gb, LT_LAYOUT_NCHW, 0.0f, 0, 1, 1, exact);   /* gamma 0: GAP, no path through A */
    /* a training forward of a use_labels layer without labels fails naming it */
    int cp, pre, lg;
    lt_model *m = cp_build(gb, LT_LAYOUT_NCHW, 1.0f, 0, 1, &cp, &pre, &lg);
    const size_t nx = (size_t)CPN * CPK * CPH * CPW, ns = (size_t)CPN * (CPH * CPW + 1);
    float *x = malloc(nx * sizeof(float)), *sv = malloc(ns * sizeof(float));
    assert_true(x && sv);
    lt_rng r;
    lt_rng_init(&r, 6, 3);
    for (size_t i = 0; i < nx; i++) x[i] = (float)lt_rng_normal(&r);
    lt_err_clear();
    assert_int_equal(lt_model_forward(m, x, CPN, 1), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "cam_pool cp: a training forward without the rows' labels"));
    /* labels outside 0..C-1 (the loss reports them): the device takes the
     * top-1 class for those rows, reading nothing outside the weights */
    int32_t y[CPN] = {1, CPC, 2, -1, CPC + 1000000, 3};
    assert_int_equal(lt_model_set_labels(m, y, CPN), LT_OK);
    assert_int_equal(lt_model_forward(m, x, CPN, 1), LT_OK);
    const lt_node *nd = lt_model_node_const(m, cp);
    assert_int_equal(lt_cuda_d2h(lt_model_device_ctx(m), sv, nd->saved, ns * sizeof(float)), LT_OK);
    float top1[CPN];
    for (int i = 0; i < CPN; i++) top1[i] = sv[(size_t)i * (CPH * CPW + 1) + CPH * CPW];
    assert_int_equal(lt_model_forward(m, x, CPN, 0), LT_OK);   /* inference: the top-1 of every row */
    assert_int_equal(lt_cuda_d2h(lt_model_device_ctx(m), sv, nd->saved, ns * sizeof(float)), LT_OK);
    for (int i = 0; i < CPN; i++) {
        const float want = y[i] >= 0 && y[i] < CPC ? (float)y[i] : sv[(size_t)i * (CPH * CPW + 1) + CPH * CPW];
        assert_true(top1[i] == want);
    }
    free(x);
    free(sv);
    lt_model_free(m);
    lt_backend_free(gb);
}

/* a plugin layer that computes nothing (NHWC refusal, the kinds' table) */
static int pl_plan(lt_model *m, lt_node *nd) {
    lt_node_set_shape(nd, lt_node_in_shape(m, nd, 0));
    return LT_OK;
}
static int pl_run(lt_model *m, lt_node *nd, int N) { (void)m; (void)nd; (void)N; return LT_OK; }
static const lt_layer_ops plugin_ops = {LT_LAYER_ABI, "my_plugin", pl_plan, pl_run, pl_run, NULL, 0, NULL, NULL,
                                        NULL, NULL};

/* ---- plugin layers without CUDA code: host layers ---------------------------------------
 * The test plugins of tests/host_plugin.h (every buffer a layer can reach;
 * a ReLU whose backward reads its output) on backend b against the cpu
 * model: input 2x6x6 -> t0 -> pr (in place) -> t3 (reads pr twice) -> gap
 * -> linear logits (5), batch 4, a training forward with labels and a
 * backward from a fixed logits gradient. The host layers' outputs and
 * buffers depend on host code and the input only: equal bit for bit on
 * every backend; the logits and the gradients pass the device's linear
 * layer: bit for bit on the stand-in (`exact`), else within 1e-5 of the
 * largest. The plugins see no device pointer (on the stand-in the check
 * is test_host_layers.c's; on a GPU one would fault). */
static lt_model *host_layers_model(lt_backend *b, int *t0, int *pr, int *t3, int *lg) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create_on(&m, (lt_shape){1, 2, 6, 6}, b), LT_OK);
    *t0 = hp_add(m, "t0", 0, -1);
    *pr = hp_add_relu(m, "pr", *t0);
    *t3 = hp_add(m, "t3", *pr, *pr);
    const int g = lt_add_gap(m, "gap", "backbone", *t3);
    *lg = lt_add_linear(m, "logits", "head", g, 5, 1);
    assert_true(*t0 > 0 && *pr > 0 && *t3 > 0 && g > 0 && *lg > 0);
    assert_int_equal(lt_model_finalize(m, 9), LT_OK);
    assert_int_equal(lt_model_set_batch(m, 4), LT_OK);
    return m;
}

static void plugin_on_host(lt_backend *b, int exact) {
    /* built alike: the same node indices in both */
    int t0, pr, t3, lg;
    lt_model *m = host_layers_model(b, &t0, &pr, &t3, &lg), *mc = host_layers_model(NULL, &t0, &pr, &t3, &lg);
    assert_int_equal(lt_model_n_host_nodes(m), 3);
    assert_int_equal(lt_model_n_host_nodes(mc), 0);
    assert_ptr_equal(lt_model_first_host_node(m), lt_model_node_const(m, t0));
    assert_null(lt_model_first_host_node(mc));
    if (exact) standin_scratch_for(m, 4);   /* the stand-in's CPU layers */
    float x[4 * 72], dl[4 * 5];
    const int32_t y[4] = {1, 4, 0, 2};
    for (int i = 0; i < 4 * 72; i++) x[i] = (float)sin(0.37 * i) * 2.0f;
    for (int i = 0; i < 4 * 5; i++) dl[i] = 0.1f * (float)((i * 3) % 7) - 0.3f;
    lt_model *both[2] = {m, mc};
    for (int k = 0; k < 2; k++) {
        lt_model_zero_grad(both[k]);
        assert_int_equal(lt_model_set_labels(both[k], y, 4), LT_OK);
        assert_int_equal(lt_model_forward(both[k], x, 4, 1), LT_OK);
        assert_int_equal(lt_model_dout_from_host(both[k], lg, 4, dl), LT_OK);
        assert_int_equal(lt_model_backward(both[k], 4, &lg, 1), LT_OK);
    }
    /* the host layers' outputs (t0 under pr's in-place overwrite: pr) */
    const int nodes[2] = {pr, t3};
    for (int j = 0; j < 2; j++) {
        float a[4 * 72], c[4 * 72];
        assert_int_equal(lt_model_out_to_host(m, nodes[j], 4, a), LT_OK);
        assert_int_equal(lt_model_out_to_host(mc, nodes[j], 4, c), LT_OK);
        assert_memory_equal(a, c, sizeof a);
    }
    for (int i = 0; i < lt_model_n_buffers(m); i++) {
        lt_buffer_info bi;
        assert_int_equal(lt_model_buffer_at(m, i, &bi), LT_OK);
        float a[8], c[8];
        assert_true(bi.count <= 8);
        assert_int_equal(lt_model_buffer_to_host(m, i, a), LT_OK);
        assert_int_equal(lt_model_buffer_to_host(mc, i, c), LT_OK);
        assert_memory_equal(a, c, bi.count * sizeof(float));
    }
    double worst = readback_err(mc, m, lg, 4, 0);
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(m, i, &p), LT_OK);
        float *ga = malloc(p.count * sizeof(float)), *gc = malloc(p.count * sizeof(float));
        assert_true(ga && gc);
        assert_int_equal(lt_model_param_to_host(m, i, NULL, ga), LT_OK);
        assert_int_equal(lt_model_param_to_host(mc, i, NULL, gc), LT_OK);
        const double e = lt_ot_relerr(gc, ga, p.count);
        if (e > worst) worst = e;
        free(ga);
        free(gc);
    }
    print_message("host layers on %s: outputs and buffers bit for bit, logits and gradients max-normalised %.3g "
                  "(%s); %.6f s in host layers\n", lt_backend_describe(b), worst, exact ? "must be 0" : "<= 1e-5",
                  lt_model_host_seconds(m));
    if (exact) assert_true(worst == 0);
    else assert_true(worst <= 1e-5);
    lt_model_free(m);
    lt_model_free(mc);
    if (exact) standin_scratch_free();
}

static void test_plugin_gpu(void **s) {
    (void)s;
    lt_backend *gb;
    NEED_GPU(gb, LT_CUDA_FP32, 0);
    plugin_on_host(gb, 0);
    lt_backend_free(gb);
}

/* lt_ema (lt_kit.h) between models on different backends: a cpu key
 * encoder of a device run's model (ssd), a device model taking a cpu
 * module's values. Every parameter and buffer of both sides gets the same
 * random values on each backend; after an average (buffers averaged too)
 * and after a copy, the destination holds the bits of the cpu-to-cpu EMA,
 * with the destination or the source or both on the device. */
static void ema_fill(lt_model *m, uint64_t seed) {
    lt_rng r;
    lt_rng_init(&r, seed, 11);
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(m, i, &p), LT_OK);
        float *v = malloc(p.count * sizeof(float));
        assert_non_null(v);
        for (size_t k = 0; k < p.count; k++) v[k] = (float)lt_rng_normal(&r);
        assert_int_equal(lt_model_param_from_host(m, i, v), LT_OK);
        free(v);
    }
    for (int i = 0; i < lt_model_n_buffers(m); i++) {
        lt_buffer_info b;
        assert_int_equal(lt_model_buffer_at(m, i, &b), LT_OK);
        float *v = malloc(b.count * sizeof(float));
        assert_non_null(v);
        for (size_t k = 0; k < b.count; k++) v[k] = 0.5f + (float)lt_rng_uniform(&r);
        assert_int_equal(lt_model_buffer_from_host(m, i, v), LT_OK);
        free(v);
    }
}

/* 1 when every parameter and buffer of a and b has the same bits */
static int ema_same(lt_model *a, lt_model *b) {
    int same = 1;
    for (int i = 0; i < lt_model_n_params(a) + lt_model_n_buffers(a); i++) {
        const int buf = i >= lt_model_n_params(a), j = buf ? i - lt_model_n_params(a) : i;
        size_t n;
        if (buf) {
            lt_buffer_info bi;
            assert_int_equal(lt_model_buffer_at(a, j, &bi), LT_OK);
            n = bi.count;
        } else {
            lt_param_info pi;
            assert_int_equal(lt_model_param_at(a, j, &pi), LT_OK);
            n = pi.count;
        }
        float *va = malloc(n * sizeof(float)), *vb = malloc(n * sizeof(float));
        assert_true(va && vb);
        assert_int_equal(buf ? lt_model_buffer_to_host(a, j, va) : lt_model_param_to_host(a, j, va, NULL), LT_OK);
        assert_int_equal(buf ? lt_model_buffer_to_host(b, j, vb) : lt_model_param_to_host(b, j, vb, NULL), LT_OK);
        same &= !memcmp(va, vb, n * sizeof(float));
        free(va);
        free(vb);
    }
    return same;
}

static void test_ema_across_backends(void **s) {
    (void)s;
    lt_backend *gb;
    NEED_GPU(gb, LT_CUDA_FP32, 1);
    lt_backend *cb = ref_cpu_backend();
    int lg;
    for (int where = 1; where <= 3; where++) {   /* 1: dst on the device, 2: src, 3: both */
        for (int copy = 0; copy < 2; copy++) {
            lt_model *rd = build(&R8, cb, &lg), *rs = build(&R8, cb, &lg);
            lt_model *d = build(&R8, where & 1 ? gb : cb, &lg), *sm = build(&R8, where & 2 ? gb : cb, &lg);
            ema_fill(rd, 1), ema_fill(d, 1);
            ema_fill(rs, 2), ema_fill(sm, 2);
            lt_ema *er, *e;
            const int mode = copy ? LT_EMA_BUF_COPY : LT_EMA_BUF_EMA;
            assert_int_equal(lt_ema_create(&er, rd, rs, mode), LT_OK);
            assert_int_equal(lt_ema_create(&e, d, sm, mode), LT_OK);
            if (copy) {
                assert_int_equal(lt_ema_copy(er), LT_OK);
                assert_int_equal(lt_ema_copy(e), LT_OK);
            } else {
                assert_int_equal(lt_ema_update(er, 0.9f), LT_OK);
                assert_int_equal(lt_ema_update(e, 0.9f), LT_OK);
                assert_int_equal(lt_ema_update(er, 0.999f), LT_OK);
                assert_int_equal(lt_ema_update(e, 0.999f), LT_OK);
            }
            const int same = ema_same(rd, d), moved = !ema_same(rd, sm) || copy;
            print_message("%s ema %s, dst on %s, src on %s: the cpu pair's bits\n", same && moved ? "ok  " : "FAIL",
                          copy ? "copy" : "average (x2)", where & 1 ? "the device" : "cpu",
                          where & 2 ? "the device" : "cpu");
            assert_true(same);
            assert_true(moved);   /* an average is neither side */
            lt_ema_free(er);
            lt_ema_free(e);
            lt_model_free(rd), lt_model_free(rs), lt_model_free(d), lt_model_free(sm);
        }
    }
    lt_backend_free(cb);
    lt_backend_free(gb);
}

/* NHWC refused where a layer cannot take it: the message names it and the
 * model stays NCHW. */
static void layout_refused_on(lt_backend *b, int plugin) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create_on(&m, (lt_shape){1, 1, 8, 8}, b), LT_OK);
    int c = lt_add_conv(m, "conv", "backbone", 0, 4, 3, 1, 1, 1, 0);
    assert_true(c > 0);
    /* before finalize: more nodes may come, which the check could not see */
    assert_int_equal(lt_model_set_layout(m, LT_LAYOUT_NHWC), LT_ESTATE);
    if (plugin) assert_true(lt_model_add(m, &plugin_ops, "odd_norm", "backbone", c, -1, NULL, 0) > 0);
    else assert_true(lt_add_linear(m, "flat_fc", "head", c, 5, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 1), LT_OK);
    assert_int_equal(lt_model_set_batch(m, 2), LT_OK);
    lt_err_clear();
    assert_int_equal(lt_model_set_layout(m, LT_LAYOUT_NHWC), LT_EINVAL);
    print_message("layout refused: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), plugin ? "'odd_norm'" : "'flat_fc'"));
    assert_non_null(strstr(lt_errmsg(), "NCHW only"));
    assert_int_equal(lt_model_layout(m), LT_LAYOUT_NCHW);
    assert_int_equal(lt_model_set_layout(m, (lt_layout)5), LT_EINVAL);
    assert_int_equal(lt_model_set_layout(m, LT_LAYOUT_NCHW), LT_OK);
    lt_model_free(m);
}

static void test_layout_refused(void **s) {
    (void)s;
    /* a cpu model: NHWC is a device layout */
    lt_backend *cb = ref_cpu_backend();
    lt_model *m = NULL;
    assert_int_equal(lt_model_create_on(&m, (lt_shape){1, 1, 8, 8}, cb), LT_OK);
    assert_true(lt_add_conv(m, "conv", "backbone", 0, 4, 3, 1, 1, 1, 0) > 0);
    assert_int_equal(lt_model_finalize(m, 1), LT_OK);
    lt_err_clear();
    assert_int_equal(lt_model_set_layout(m, LT_LAYOUT_NHWC), LT_EINVAL);
    print_message("cpu model: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "device layout"));
    assert_int_equal(lt_model_set_layout(m, LT_LAYOUT_NCHW), LT_OK);
    lt_model_free(m);
    lt_backend_free(cb);
    lt_backend *gb;
    NEED_GPU(gb, LT_CUDA_FP32, 0);
    layout_refused_on(gb, 1);
    layout_refused_on(gb, 0);
    /* a training step whose logits node has many pixels (a conv's 2x4x4 as
     * 32 classes): NHWC would permute them, so lt_step_run refuses */
    assert_int_equal(lt_model_create_on(&m, (lt_shape){1, 1, 4, 4}, gb), LT_OK);
    const int lg = lt_add_conv(m, "conv_logits", "head", 0, 2, 3, 1, 1, 1, 1);
    assert_true(lg > 0);
    assert_int_equal(lt_model_finalize(m, 1), LT_OK);
    assert_int_equal(lt_model_set_batch(m, 2), LT_OK);
    assert_int_equal(lt_model_set_layout(m, LT_LAYOUT_NHWC), LT_OK);
    lt_optim o;
    assert_int_equal(lt_optim_init(&o, m, LT_OPT_SGD, 0.9f, 0.0f, 0), LT_OK);
    lt_step_opts so;
    lt_step_opts_default(&so);
    lt_step *st = NULL;
    assert_int_equal(lt_step_create(&st, m, &o, lg, 2, 32, &so), LT_OK);
    float x[2 * 16] = {0};
    int32_t y[2] = {1, 30};
    lt_err_clear();
    assert_int_equal(lt_step_run(st, x, y, 2, 0.1f), LT_EINVAL);
    print_message("step with many-pixel logits in NHWC: %s\n", lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "NHWC"));
    lt_step_free(st);
    lt_optim_free(&o);
    lt_model_free(m);
    lt_backend_free(gb);
}

/* ---- runs everywhere ------------------------------------------------------------------------ */
static void test_create_status(void **s) {
    (void)s;
    lt_backend *b = (lt_backend *)&b;
    const int devs = lt_cuda_device_count();
    const int idx = devs > 0 ? devs + 7 : 0;
    lt_err_clear();
    assert_int_equal(lt_backend_cuda_create(idx, LT_CUDA_FP32, 0, &b), LT_EDEVICE);
    assert_null(b);
    print_message("cuda:%d -> %s\n", idx, lt_errmsg());
    assert_non_null(strstr(lt_errmsg(), "no CUDA device"));
    char tag[16];
    snprintf(tag, sizeof tag, "cuda:%d", idx);
    assert_non_null(strstr(lt_errmsg(), tag));
    b = (lt_backend *)&b;
    assert_int_equal(lt_backend_cuda_create(0, (lt_cuda_math)7, 0, &b), LT_EINVAL);
    assert_null(b);
    assert_int_equal(lt_backend_cuda_create(0, LT_CUDA_FP32, 0, NULL), LT_EINVAL);
    char d[8] = "x";
    assert_int_equal(lt_cuda_conv_plans_describe(NULL, d, sizeof d), -1);
    assert_string_equal(d, "");
}

static void test_table_complete(void **s) {
    (void)s;
    assert_int_equal(lt_cuda_model_layer_count(), LT_LK_COUNT);
    const lt_dev_layer *t = lt_cuda_model_layers();
    for (int k = LT_LK_PLUGIN + 1; k < LT_LK_COUNT; k++) {
        if (!t[k].forward || !t[k].backward) print_message("kind %d (%s) has no CUDA entry\n", k, lt_layer_kind_name(k));
        assert_non_null(t[k].forward);
        assert_non_null(t[k].backward);
    }
    /* one node of every built-in layer: each gets a built-in kind, and
     * together they cover every kind (a new lt_add_* without a kind, or a
     * kind nobody makes, fails here) */
    lt_model *m = NULL;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 4, 8, 8}), LT_OK);
    int c = lt_add_conv(m, "conv", "b", 0, 4, 3, 1, 1, 1, 0);
    int bn = lt_add_bn(m, "bn", "b", c);
    int r = lt_add_relu(m, "relu", "b", bn);
    int mp = lt_add_maxpool(m, "mp", "b", r, 3, 2, 1);
    int sc = lt_add_shortcut_a(m, "sc", "b", mp, 8, 1);
    int sc2 = lt_add_shortcut_a(m, "sc2", "b", mp, 8, 1);
    int sm = lt_add_sum(m, "sum", "b", sc, sc2);
    int g = lt_add_gap(m, "gap", "b", sm);
    int li = lt_add_linear(m, "lin", "h", g, 5, 1);
    int co = lt_add_cosine(m, "cos", "h", g, 5, 16.0f);
    int cl = lt_add_cosine_learned(m, "cosl", "h", g, 5, 16.0f);
    int scl = lt_add_scale(m, "scale", "h", li);
    int cp = lt_add_cam_pool(m, "cp", "h", sm, "cos.weight", 1.0f, 1.0f, 0, 1);
    assert_true(c > 0 && bn > 0 && r > 0 && mp > 0 && sc > 0 && sc2 > 0 && sm > 0 && g > 0 && li > 0 && co > 0 &&
                cl > 0 && scl > 0 && cp > 0);
    int seen[LT_LK_COUNT] = {0};
    for (int i = 0; i < lt_model_n_nodes(m); i++) {
        const lt_node *nd = lt_model_node_const(m, i);
        assert_int_not_equal(nd->kind, LT_LK_PLUGIN);
        seen[nd->kind] = 1;
    }
    for (int k = LT_LK_PLUGIN + 1; k < LT_LK_COUNT; k++) {
        if (!seen[k]) print_message("kind %s made by no lt_add_* here\n", lt_layer_kind_name(k));
        assert_true(seen[k]);
    }
    /* a plugin copying a built-in's members is still a plugin */
    lt_model *m2 = NULL;
    assert_int_equal(lt_model_create(&m2, (lt_shape){1, 1, 4, 4}), LT_OK);
    assert_true(lt_model_add(m2, &plugin_ops, "p", "b", 0, -1, NULL, 0) > 0);
    assert_int_equal(lt_model_node_const(m2, 1)->kind, LT_LK_PLUGIN);
    lt_model_free(m2);
    lt_model_free(m);
}

/* ---- a host-memory stand-in device (tests/standin_dev.h) ---------------------------------------
 * The model's device plumbing, tested on any machine. */
static lt_dev_ops fake_dev;

static lt_backend *fake_backend(void) {
    standin_ops_init(&fake_dev);
    return standin_backend(&fake_dev);
}

static void host_device_case(const net *n) {
    lt_backend *fb = fake_backend();
    float *x;
    int32_t *y;
    batch(n, &x, &y);
    int lc, lf;
    lt_model *mc = build(n, NULL, &lc), *mf = build(n, fb, &lf);
    standin_scratch_for(mf, n->N);
    /* the device model's blocks are not the cpu model's; it fuses the pairs
     * its table offers (BN and sum -> ReLU), the cpu model BN -> ReLU only */
    assert_ptr_not_equal(lt_model_out(mf, lf), lt_model_out(mc, lc));
    int pairs = 0;
    for (int i = 1; i < lt_model_n_nodes(mf); i++) pairs += lt_model_node_const(mf, i)->fuse_train;
    assert_true(pairs >= 4);
    result rc, rf;
    step(mc, lc, n, x, y, &rc, NULL);
    step(mf, lf, n, x, y, &rf, NULL);
    assert_true(compare(mc, n, &rc, &rf, &TOL_FP32, "host", 1));
    /* a second step accumulates onto a zeroed gradient again */
    result_free(&rf);
    result_free(&rc);
    lt_model_free(mc);
    lt_model_free(mf);
    standin_scratch_free();
    plugin_on_host(fb, 1);
    lt_backend_free(fb);
    free(x);
    free(y);
}

static void test_host_device_resnet8(void **s) { (void)s; host_device_case(&R8); }
/* ResNet-50's stem, max pool, bottlenecks and projections at 32x32 / batch
 * 2: every layer kind of the ImageNet ResNets through the device plumbing */
static void test_host_device_resnet50(void **s) {
    (void)s;
    const net small = {"resnet50", {1, 3, 32, 32}, 10, 2, HEAD_LINEAR, LT_LAYOUT_NCHW};
    host_device_case(&small);
}

int main(void) {
#ifdef LT_TEST_EMU_TWIN
    (void)test_host_device_resnet8;
    (void)test_host_device_resnet50;
    (void)test_metrics_on_cpu_paths;
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_status),
        cmocka_unit_test(test_table_complete),
#ifndef LT_TEST_EMU_TWIN   /* CPU-only cases: the nvcc build of this test runs them (Makefile, tests/cuemu) */
        cmocka_unit_test(test_host_device_resnet8),
        cmocka_unit_test(test_host_device_resnet50),
        cmocka_unit_test(test_metrics_on_cpu_paths),
#endif
        cmocka_unit_test(test_resnet8_fp32),
        cmocka_unit_test(test_resnet32_fp32),
        cmocka_unit_test(test_resnet50_fp32),
        cmocka_unit_test(test_heads_fp32),
        cmocka_unit_test(test_resnet8_tf32),
        cmocka_unit_test(test_resnet32_tf32),
        cmocka_unit_test(test_resnet50_tf32),
        cmocka_unit_test(test_nhwc_fp32),
        cmocka_unit_test(test_nhwc_tf32),
        cmocka_unit_test(test_nhwc_host_copies),
        cmocka_unit_test(test_layout_refused),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_fusion_bit_identical),
        cmocka_unit_test(test_plugin_gpu),
        cmocka_unit_test(test_cam_pool),
        cmocka_unit_test(test_ema_across_backends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
