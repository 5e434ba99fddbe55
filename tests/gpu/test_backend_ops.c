/* test_backend_ops.c — the CUDA op library against the CPU kernels
 * (ggml's test-backend-ops pattern).
 *
 * One table of every op with shapes (CIFAR and ImageNet widths, odd sizes,
 * batch 1). Each case draws its inputs from the engine's counter-based RNG,
 * runs forward and backward on the CPU (lt_ops.h / lt_loss.h) and on the GPU
 * (lt_cuda.h) from the same inputs, gradients accumulated onto the same
 * random initial contents (the += contract), and compares every output by
 * max |gpu - cpu| / max |cpu| (tests/gpu/optable.h) against a tolerance per
 * op class and math mode:
 *
 *   class                    fp32    tf32   why
 *   conv, linear, cosine     1e-4    5e-3   cuDNN / cuBLAS sum in another order; TF32 rounds inputs to 10 bits
 *   batch norm               1e-5    1e-5   double statistics on both sides, other order
 *   losses (gradient, loss)  1e-6    1e-6   same double arithmetic; exp/log may differ in the last ulp
 *   elementwise, pools,      1e-6    1e-6   the same float operations (--fmad=false): expected 0
 *   shortcut, optimizers
 *   maxpool argmax           0 mismatches
 *
 * Layouts: the batch norm, pool and shortcut rows run in both layouts of
 * lt_layout (LAYOUTS): the same CPU inputs and references ([N][C][HW]); in
 * NHWC the activations go up transposed to [N][HW][C] and the outputs come
 * back transposed before the same comparison at the same tolerance (the
 * argmax values are plane indices h*W + w in both layouts: compared as they
 * are). Their rows print the layout in the op's name ("bn_train/nhwc").
 * Convolutions too: in NHWC the library converts the [co][ci][kh][kw]
 * weights for cuDNN and the filter gradient back, so w and dw are
 * compared as they are, and the bias rows exercise the NHWC bias kernels.
 *
 * Cases:
 *   cpu_harness        (runs everywhere) the comparator and the host
 *                      transposition on crafted data, and the CPU half of
 *                      every table row (shapes valid, outputs finite), so the
 *                      table itself is exercised without a GPU;
 *   no_device_status   (runs everywhere) a context for a missing device is a
 *                      status and a message, never an abort;
 *   optable_fp32 / optable_tf32   the table on the GPU, printed;
 *   deterministic      every row twice in deterministic mode, both layouts:
 *                      outputs memcmp-equal; and a third time with the
 *                      filter-gradient stream on (lt_cuda_set_wgrad_stream;
 *                      dw read back with no join but the copy's own):
 *                      memcmp-equal to the first;
 *   layout_convert     lt_cuda_layout_convert both ways, = and +=, odd sizes:
 *                      exact against the host transposition;
 *   algo_choice        convolution plans timed (cudnnFind) without deterministic
 *                      mode, heuristic with it and when made during a capture;
 *   oom                an absurd allocation: LT_ENOMEM + message, and the
 *                      context still works afterwards;
 *   error_paths        bad label, NaN logit, bad geometry, unknown layout:
 *                      statuses + messages.
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

#include "lt_cuda.h"
#include "lt_loss.h"
#include "lt_ops.h"
#include "lt_rng.h"
#include "conv_plan.h"
#include "optable.h"

/* ---- the table ------------------------------------------------------------------ */
enum { K_CONV, K_BN, K_RELU, K_ADD, K_ADD_RELU, K_MAXPOOL, K_GAP, K_SHORTCUT, K_LINEAR, K_COSINE, K_CE, K_BCE, K_SGD, K_ADAM };

typedef struct {
    int kind;
    const char *name;
    int a[10];
} ot_case;

/* conv: ci h w co k stride pad groups N flags(1 bias, 2 set_dx)
 * bn: N C H W relu
 * relu / add: n set
 * add_relu: n set_a set_b same (1: db is da's buffer)
 * maxpool: N C H W k s p quantized
 * gap: N C H W
 * shortcut: N Ci H W Co stride
 * linear: N in out bias set_dx
 * cosine: N in out zero_row
 * ce: N C offsets weights
 * bce: N C offsets
 * sgd: n momentum(x100) nesterov groups
 * adam: n groups */
static const ot_case cases[] = {
    {K_CONV, "conv", {16, 32, 32, 16, 3, 1, 1, 1, 4, 0}},
    {K_CONV, "conv", {16, 32, 32, 32, 3, 2, 1, 1, 4, 2}},
    {K_CONV, "conv", {64, 14, 14, 128, 1, 2, 0, 1, 4, 0}},
    {K_CONV, "conv", {3, 56, 56, 64, 7, 2, 3, 1, 2, 0}},
    {K_CONV, "conv", {128, 14, 14, 128, 3, 1, 1, 32, 2, 0}},
    {K_CONV, "conv", {5, 13, 11, 10, 3, 1, 1, 1, 3, 1}},
    {K_CONV, "conv", {6, 13, 11, 10, 3, 2, 1, 2, 1, 3}},
    {K_CONV, "conv", {64, 8, 8, 64, 3, 1, 1, 1, 1, 1}},
    {K_BN, "bn", {4, 16, 32, 32, 0}},
    {K_BN, "bn", {4, 64, 8, 8, 1}},
    {K_BN, "bn", {2, 256, 14, 14, 0}},
    {K_BN, "bn", {1, 10, 13, 11, 1}},
    {K_BN, "bn", {8, 2048, 1, 1, 0}},
    /* a channel over several reduction blocks (8192 elements each, the
     * last shorter; chunks cross image boundaries) */
    {K_BN, "bn", {16, 8, 56, 56, 1}},
    {K_BN, "bn", {3, 5, 61, 67, 0}},
    {K_RELU, "relu", {4 * 16 * 32 * 32, 0}},
    {K_RELU, "relu", {1001, 1}},
    {K_ADD, "add", {4 * 16 * 32 * 32, 0}},
    {K_ADD, "add", {1001, 1}},
    {K_ADD_RELU, "add_relu", {4 * 16 * 32 * 32, 1, 1, 0}},
    {K_ADD_RELU, "add_relu", {1001, 0, 1, 0}},
    {K_ADD_RELU, "add_relu", {999, 1, 0, 1}},
    {K_ADD_RELU, "add_relu", {999, 0, 0, 1}},
    {K_MAXPOOL, "maxpool", {4, 64, 56, 56, 3, 2, 1, 0}},
    {K_MAXPOOL, "maxpool", {3, 5, 13, 11, 3, 2, 1, 1}},
    {K_MAXPOOL, "maxpool", {1, 4, 8, 8, 2, 2, 0, 1}},
    {K_GAP, "gap", {4, 64, 8, 8}},
    {K_GAP, "gap", {3, 2048, 7, 7}},
    {K_GAP, "gap", {1, 10, 13, 11}},
    {K_SHORTCUT, "shortcut_a", {4, 16, 32, 32, 32, 2}},
    {K_SHORTCUT, "shortcut_a", {2, 32, 16, 16, 64, 2}},
    {K_SHORTCUT, "shortcut_a", {3, 5, 13, 11, 9, 2}},
    {K_SHORTCUT, "shortcut_a", {1, 16, 8, 8, 16, 1}},
    {K_LINEAR, "linear", {4, 64, 10, 1, 0}},
    {K_LINEAR, "linear", {3, 2048, 1000, 1, 1}},
    {K_LINEAR, "linear", {1, 7, 5, 0, 0}},
    {K_COSINE, "cosine", {4, 64, 10, 0}},
    {K_COSINE, "cosine", {3, 512, 100, 1}},
    {K_CE, "softmax_ce", {4, 10, 0, 0}},
    {K_CE, "softmax_ce", {8, 10, 1, 1}},
    {K_CE, "softmax_ce", {3, 1000, 1, 0}},
    {K_BCE, "sigmoid_bce", {4, 10, 1}},
    {K_BCE, "sigmoid_bce", {3, 1000, 0}},
    {K_SGD, "sgd", {10007, 90, 0, 1}},
    {K_SGD, "sgd", {10007, 90, 1, 3}},
    {K_SGD, "sgd", {999, 0, 0, 1}},
    {K_ADAM, "adam", {10007, 1}},
    {K_ADAM, "adam", {4099, 3}},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* ---- one run of the table ---------------------------------------------------------- */
#define MAX_DEV 32
#define MAX_CAP 48   /* a case's GPU outputs, all layouts */

typedef struct {
    lt_cuda_ctx *ctx;      /* NULL: CPU half only */
    const char *mode;      /* "fp32" / "tf32" */
    int tf32;
    lt_ot_table *tab;      /* rows go here (NULL: not recorded) */
    /* GPU outputs of the current case, kept for the determinism check */
    int n_cap;
    void *cap[MAX_CAP];
    size_t cap_bytes[MAX_CAP];
    void *dev[MAX_DEV];
    int n_dev;
    int status;            /* first non-LT_OK status of the case */
    const char *lay;       /* the layout being run ("" or "/nhwc"), for the status row */
    const char *fail_lay;  /* the layout of the first failed call */
    int cpu_bad;           /* a non-finite CPU output */
} run_t;

static void fill(lt_rng *r, float *p, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) p[i] = lo + (hi - lo) * lt_rng_uniformf(r);
}

/* 64-byte aligned and zeroed (lt_alloc: the CPU kernels' AVX-512 loads
 * need the alignment the model's buffers have); free() releases it. */
static float *hbuf(size_t n) {
    float *p = lt_alloc(n * sizeof(float));
    assert_non_null(p);
    return p;
}

static void *up(run_t *R, const void *h, size_t bytes) {
    if (!R->ctx || R->status) return NULL;
    void *d = NULL;
    int rc = lt_cuda_alloc(R->ctx, &d, bytes);
    if (rc == LT_OK && bytes) rc = lt_cuda_h2d(R->ctx, d, h, bytes);
    if (rc != LT_OK) {
        print_message("cuda: %s\n", lt_errmsg());
        R->status = rc;
        return NULL;
    }
    if (R->n_dev < MAX_DEV) R->dev[R->n_dev++] = d;
    else fail_msg("more than %d device buffers in one layout of a case: raise MAX_DEV", MAX_DEV);
    return d;
}
#define UPF(R, h, n) ((float *)up(R, h, (n) * sizeof(float)))

static void gpu(run_t *R, int rc) {
    if (rc != LT_OK && R->status == LT_OK) {
        print_message("cuda%s: %s (%s)\n", R->lay ? R->lay : "", lt_errmsg(), lt_strstatus(rc));
        R->status = rc;
        R->fail_lay = R->lay;
    }
}

static void check_finite(run_t *R, const float *ref, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(ref[i])) { R->cpu_bad = 1; return; }
}

static void keep(run_t *R, void *g, size_t bytes) {
    if (R->n_cap < MAX_CAP) {
        R->cap[R->n_cap] = g;
        R->cap_bytes[R->n_cap++] = bytes;
    } else {
        free(g);
        fail_msg("more than %d GPU outputs in one case: raise MAX_CAP", MAX_CAP);
    }
}

/* ---- layouts ---------------------------------------------------------------------
 * The layout-sensitive rows run once per entry of LAYOUTS. The CPU works in [N][C][HW]; up_act uploads such
 * an activation in the row's layout (transposed to [N][HW][C] for NHWC),
 * cmp_act / cmp_act_i32 bring a device activation back to [N][C][HW] before
 * comparing. Parameters, per-channel and [N][C] tensors are the same in
 * both layouts. */
static const lt_layout LAYOUTS[] = {LT_LAYOUT_NCHW, LT_LAYOUT_NHWC};
#define N_LAYOUTS ((int)(sizeof LAYOUTS / sizeof LAYOUTS[0]))

static const char *lay_suffix(lt_layout l) { return l == LT_LAYOUT_NHWC ? "/nhwc" : ""; }

/* The op's name in the table: "bn_train", "bn_train/nhwc". */
static const char *lay_op(char *buf, size_t cap, const char *op, lt_layout l) {
    snprintf(buf, cap, "%s%s", op, lay_suffix(l));
    return buf;
}

/* dst = src (4-byte elements: float or int32) in layout `to`: to NHWC,
 * [N][C][HW] -> [N][HW][C]; to NCHW, [N][HW][C] -> [N][C][HW]. */
static void host_convert(lt_layout to, int N, int C, int HW, const void *src, void *dst) {
    const char *s = src;
    char *d = dst;
    for (size_t n = 0; n < (size_t)N; n++)
        for (size_t c = 0; c < (size_t)C; c++)
            for (size_t p = 0; p < (size_t)HW; p++) {
                const size_t nchw = (n * C + c) * HW + p, nhwc = (n * HW + p) * C + c;
                if (to == LT_LAYOUT_NHWC) memcpy(d + 4 * nhwc, s + 4 * nchw, 4);
                else memcpy(d + 4 * nchw, s + 4 * nhwc, 4);
            }
}

/* An activation [N][C][HW] uploaded in layout l. */
static void *up_act(run_t *R, lt_layout l, const void *h, int N, int C, int HW) {
    const size_t bytes = (size_t)N * C * HW * 4;
    if (l == LT_LAYOUT_NCHW || !R->ctx || R->status) return up(R, h, bytes);
    void *t = malloc(bytes ? bytes : 1);
    assert_non_null(t);
    host_convert(LT_LAYOUT_NHWC, N, C, HW, h, t);
    void *d = up(R, t, bytes);
    free(t);
    return d;
}
#define UPA(R, l, h, N, C, HW) ((float *)up_act(R, l, h, N, C, HW))

/* An output the GPU must write: n floats of NaN (never the CPU's result,
 * nor what an earlier layout left in reused device memory). */
static float *up_junk(run_t *R, size_t n) {
    if (!R->ctx || R->status) return NULL;
    float *h = hbuf(n);
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    float *d = UPF(R, h, n);
    free(h);
    return d;
}

/* The device array d (n elements of 4 bytes, [N][C][HW] in layout l when
 * N > 0, else as it is) on the host in [N][C][HW]; NULL after a failed
 * copy (recorded). */
static void *down(run_t *R, lt_layout l, const void *d, size_t n, int N, int C, int HW) {
    void *g = malloc(n ? n * 4 : 1);
    assert_non_null(g);
    int rc = lt_cuda_d2h(R->ctx, g, d, n * 4);
    if (rc != LT_OK) { gpu(R, rc); free(g); return NULL; }
    if (l == LT_LAYOUT_NHWC && N > 0) {
        void *t = malloc(n ? n * 4 : 1);
        assert_non_null(t);
        host_convert(LT_LAYOUT_NCHW, N, C, HW, g, t);
        free(g);
        g = t;
    }
    return g;
}

/* Compares the CPU result `ref` ([N][C][HW]) with the device activation
 * `d` in layout l: a row in the table; the GPU output is kept for the
 * determinism check. */
static void cmp_act(run_t *R, lt_layout l, const char *op, const char *shape, const char *what, const float *ref,
                    const void *d, int N, int C, int HW, double tol) {
    const size_t n = (size_t)N * C * HW;
    check_finite(R, ref, n);
    if (!R->ctx || R->status || !d) return;
    float *g = down(R, l, d, n, N, C, HW);
    if (!g) return;
    char name[24];
    if (R->tab) lt_ot_add(R->tab, lay_op(name, sizeof name, op, l), shape, what, R->mode, lt_ot_relerr(ref, g, n), tol);
    keep(R, g, n * sizeof(float));
}

/* The same for a tensor that has no layout (parameters, per-channel
 * statistics, [N][C], losses' arrays): l only names the row. */
static void cmp_l(run_t *R, lt_layout l, const char *op, const char *shape, const char *what, const float *ref,
                  const void *d, size_t n, double tol) {
    check_finite(R, ref, n);
    if (!R->ctx || R->status || !d) return;
    float *g = down(R, LT_LAYOUT_NCHW, d, n, 0, 0, 0);
    if (!g) return;
    char name[24];
    if (R->tab) lt_ot_add(R->tab, lay_op(name, sizeof name, op, l), shape, what, R->mode, lt_ot_relerr(ref, g, n), tol);
    keep(R, g, n * sizeof(float));
}

static void cmp(run_t *R, const char *op, const char *shape, const char *what, const float *ref, const void *d, size_t n,
                double tol) {
    cmp_l(R, LT_LAYOUT_NCHW, op, shape, what, ref, d, n, tol);
}

/* maxpool's argmax ([N][C][P] int32 in layout l): the number of
 * mismatches. */
static void cmp_act_i32(run_t *R, lt_layout l, const char *op, const char *shape, const int32_t *ref, const void *d,
                        int N, int C, int HW) {
    const size_t n = (size_t)N * C * HW;
    if (!R->ctx || R->status || !d) return;
    int32_t *g = down(R, l, d, n, N, C, HW);
    if (!g) return;
    char name[24];
    if (R->tab)
        lt_ot_add(R->tab, lay_op(name, sizeof name, op, l), shape, "argmax", R->mode,
                  (double)lt_ot_mismatch_i32(ref, g, n), 0);
    keep(R, g, n * sizeof *g);
}

static void cmp_scalar(run_t *R, const char *op, const char *shape, double ref, double got, double tol) {
    if (!isfinite(ref)) R->cpu_bad = 1;
    if (!R->ctx || R->status) return;
    if (R->tab) lt_ot_add(R->tab, op, shape, "loss", R->mode, fabs(got - ref) / (fabs(ref) > 0 ? fabs(ref) : 1.0), tol);
    double *g = malloc(sizeof *g);
    assert_non_null(g);
    *g = got;
    keep(R, g, sizeof *g);
}

/* Frees the case's device buffers (also between two layouts of a case). */
static void case_end(run_t *R) {
    for (int i = 0; i < R->n_dev; i++) lt_cuda_free(R->ctx, R->dev[i]);
    R->n_dev = 0;
}

/* Starts layout l of a case: the buffers of the previous one freed. */
static lt_layout lay_begin(run_t *R, int li) {
    case_end(R);
    R->lay = lay_suffix(LAYOUTS[li]);
    return LAYOUTS[li];
}

static float *hcopy(const float *src, size_t n) {
    float *p = hbuf(n);
    memcpy(p, src, n * sizeof *p);
    return p;
}

static void cap_clear(run_t *R) {
    for (int i = 0; i < R->n_cap; i++) free(R->cap[i]);
    R->n_cap = 0;
}

#define TOL_MM(R) ((R)->tf32 ? 5e-3 : 1e-4)
#define TOL_BN 1e-5
#define TOL_EW 1e-6

/* ---- the cases ---------------------------------------------------------------------- */
static void run_conv(run_t *R, const ot_case *c, lt_rng *rng, char *shape) {
    const int *a = c->a;
    lt_conv_geom g;
    assert_int_equal(lt_conv_geom_init(&g, a[0], a[1], a[2], a[3], a[4], a[4], a[5], a[6], a[7]), LT_OK);
    const int N = a[8], bias = a[9] & 1, set_dx = (a[9] & 2) != 0;
    snprintf(shape, 64, "%dx%d s%d p%d g%d %d->%d %dx%d N=%d%s%s", g.kh, g.kw, g.stride, g.pad, g.groups, g.ci, g.co,
             g.h, g.w, N, bias ? " b" : "", set_dx ? " set" : "");
    const int HWi = g.h * g.w, HWo = g.ho * g.wo;
    const size_t nx = (size_t)N * g.ci * HWi, ny = (size_t)N * g.co * HWo, nw = lt_conv2d_weight_count(&g);
    float *x = hbuf(nx), *w = hbuf(nw), *b = hbuf(g.co), *y = hbuf(ny), *dy = hbuf(ny);
    float *dx = hbuf(nx), *dw = hbuf(nw), *db = hbuf(g.co);
    fill(rng, x, nx, -1, 1);
    fill(rng, w, nw, -0.5f, 0.5f);
    fill(rng, b, g.co, -0.5f, 0.5f);
    fill(rng, dy, ny, -1, 1);
    fill(rng, dx, nx, -1, 1);
    fill(rng, dw, nw, -1, 1);
    fill(rng, db, g.co, -1, 1);
    /* the gradients' initial contents, for every layout's run */
    float *dx0 = hcopy(dx, nx), *dw0 = hcopy(dw, nw), *db0 = hcopy(db, g.co);
    float *scr = hbuf(lt_conv2d_scratch_floats(&g, N));
    lt_conv2d_forward(&g, N, x, w, bias ? b : NULL, y, scr);
    lt_conv2d_backward_x(&g, N, x, w, dy, dx, dw, bias ? db : NULL, scr, set_dx);
    for (int li = 0; li < N_LAYOUTS; li++) {
        const lt_layout l = lay_begin(R, li);
        float *d_x = UPA(R, l, x, N, g.ci, HWi), *d_w = UPF(R, w, nw), *d_b = UPF(R, b, g.co), *d_y = up_junk(R, ny);
        float *d_dy = UPA(R, l, dy, N, g.co, HWo), *d_dx = UPA(R, l, dx0, N, g.ci, HWi), *d_dw = UPF(R, dw0, nw);
        float *d_db = UPF(R, db0, g.co);
        if (R->ctx && !R->status) {
            gpu(R, lt_cuda_conv2d_forward(R->ctx, l, &g, N, d_x, d_w, bias ? d_b : NULL, d_y));
            gpu(R, lt_cuda_conv2d_backward(R->ctx, l, &g, N, d_x, d_w, d_dy, d_dx, d_dw, bias ? d_db : NULL, set_dx));
        }
        cmp_act(R, l, c->name, shape, "y", y, d_y, N, g.co, HWo, TOL_MM(R));
        cmp_act(R, l, c->name, shape, "dx", dx, d_dx, N, g.ci, HWi, TOL_MM(R));
        cmp_l(R, l, c->name, shape, "dw", dw, d_dw, nw, TOL_MM(R));
        if (bias) cmp_l(R, l, c->name, shape, "db", db, d_db, g.co, TOL_BN);
    }
    free(x); free(w); free(b); free(y); free(dy); free(dx); free(dw); free(db); free(scr);
    free(dx0); free(dw0); free(db0);
}

static void run_bn(run_t *R, const ot_case *c, lt_rng *rng, char *shape) {
    const int N = c->a[0], C = c->a[1], HW = c->a[2] * c->a[3], relu = c->a[4];
    snprintf(shape, 64, "N=%d C=%d %dx%d%s", N, C, c->a[2], c->a[3], relu ? " +relu" : "");
    const size_t n = (size_t)N * C * HW;
    const float mom = 0.1f, eps = 1e-5f;
    float *x = hbuf(n), *y = hbuf(n), *dy = hbuf(n), *dx = hbuf(n), *ye = hbuf(n);
    float *ga = hbuf(C), *be = hbuf(C), *mean = hbuf(C), *rstd = hbuf(C), *rm = hbuf(C), *rv = hbuf(C);
    float *dg = hbuf(C), *dbt = hbuf(C);
    fill(rng, x, n, 2.0f, 4.0f);   /* a mean far from 0: the shifted sums matter */
    fill(rng, dy, n, -1, 1);
    fill(rng, dx, n, -1, 1);
    fill(rng, ga, C, 0.5f, 1.5f);
    fill(rng, be, C, -0.5f, 0.5f);
    fill(rng, rm, C, -0.1f, 0.1f);
    fill(rng, rv, C, 0.5f, 1.5f);
    fill(rng, dg, C, -1, 1);
    fill(rng, dbt, C, -1, 1);
    /* the initial contents of everything a call updates, for every layout's run */
    float *dx0 = hcopy(dx, n), *rm0 = hcopy(rm, C), *rv0 = hcopy(rv, C), *dg0 = hcopy(dg, C), *db0 = hcopy(dbt, C);
    float *dxe = hcopy(dx, n), *dge = hcopy(dg, C), *dbe = hcopy(dbt, C);
    /* eval first (running stats as drawn), then train (updates them) */
    lt_bn_forward_eval(N, C, HW, x, ga, be, rm, rv, eps, ye);
    lt_bn_backward_eval_x(N, C, HW, x, ga, rm, rv, eps, dy, dxe, dge, dbe, 0);
    lt_bn_forward_train_relu(N, C, HW, x, ga, be, y, mean, rstd, rm, rv, mom, eps, relu);
    lt_bn_backward_train_relu(N, C, HW, x, ga, mean, rstd, dy, relu ? y : NULL, dx, dg, dbt, relu);
    for (int li = 0; li < N_LAYOUTS; li++) {
        const lt_layout l = lay_begin(R, li);
        float *d_x = UPA(R, l, x, N, C, HW), *d_y = up_junk(R, n), *d_dy = UPA(R, l, dy, N, C, HW);
        float *d_dx = UPA(R, l, dx0, N, C, HW), *d_ye = up_junk(R, n), *d_dxe = UPA(R, l, dx0, N, C, HW);
        float *d_ga = UPF(R, ga, C), *d_be = UPF(R, be, C), *d_mean = up_junk(R, C), *d_rstd = up_junk(R, C);
        float *d_rm = UPF(R, rm0, C), *d_rv = UPF(R, rv0, C), *d_dg = UPF(R, dg0, C), *d_db = UPF(R, db0, C);
        float *d_dge = UPF(R, dg0, C), *d_dbe = UPF(R, db0, C);
        if (R->ctx && !R->status) {
            gpu(R, lt_cuda_bn_forward_eval(R->ctx, l, N, C, HW, d_x, d_ga, d_be, d_rm, d_rv, eps, d_ye));
            gpu(R, lt_cuda_bn_backward_eval(R->ctx, l, N, C, HW, d_x, d_ga, d_rm, d_rv, eps, d_dy, d_dxe, d_dge, d_dbe,
                                            0));
            gpu(R, lt_cuda_bn_forward_train(R->ctx, l, N, C, HW, d_x, d_ga, d_be, d_y, d_mean, d_rstd, d_rm, d_rv, mom,
                                            eps, relu));
            gpu(R, lt_cuda_bn_backward_train(R->ctx, l, N, C, HW, d_x, d_ga, d_mean, d_rstd, d_dy, relu ? d_y : NULL,
                                             d_dx, d_dg, d_db, relu));
        }
        cmp_act(R, l, "bn_eval", shape, "y", ye, d_ye, N, C, HW, TOL_BN);
        cmp_act(R, l, "bn_eval", shape, "dx", dxe, d_dxe, N, C, HW, TOL_BN);
        cmp_l(R, l, "bn_eval", shape, "dgamma", dge, d_dge, C, TOL_BN);
        cmp_l(R, l, "bn_eval", shape, "dbeta", dbe, d_dbe, C, TOL_BN);
        cmp_act(R, l, "bn_train", shape, "y", y, d_y, N, C, HW, TOL_BN);
        cmp_l(R, l, "bn_train", shape, "mean", mean, d_mean, C, TOL_BN);
        cmp_l(R, l, "bn_train", shape, "rstd", rstd, d_rstd, C, TOL_BN);
        cmp_l(R, l, "bn_train", shape, "run_mean", rm, d_rm, C, TOL_BN);
        cmp_l(R, l, "bn_train", shape, "run_var", rv, d_rv, C, TOL_BN);
        cmp_act(R, l, "bn_train", shape, "dx", dx, d_dx, N, C, HW, TOL_BN);
        cmp_l(R, l, "bn_train", shape, "dgamma", dg, d_dg, C, TOL_BN);
        cmp_l(R, l, "bn_train", shape, "dbeta", dbt, d_db, C, TOL_BN);
    }
    free(x); free(y); free(dy); free(dx); free(ye); free(dxe); free(ga); free(be); free(mean); free(rstd);
    free(rm); free(rv); free(dg); free(dbt); free(dge); free(dbe);
    free(dx0); free(rm0); free(rv0); free(dg0); free(db0);
}

/* ReLU, add, and the residual sum with the ReLU after it (one kernel each
 * way) against the CPU's two layers in turn: add, ReLU; the ReLU's
 * backward into the sum's gradient, then the sum's into both inputs. */
static void run_relu_add(run_t *R, const ot_case *c, lt_rng *rng, char *shape) {
    const size_t n = (size_t)c->a[0];
    const int set = c->a[1], set_b = c->a[2], same = c->kind == K_ADD_RELU && c->a[3];
    if (c->kind == K_ADD_RELU)
        snprintf(shape, 64, "n=%zu%s%s%s", n, set ? " set_a" : "", set_b ? " set_b" : "", same ? " da=db" : "");
    else
        snprintf(shape, 64, "n=%zu%s", n, set ? " set" : "");
    float *a = hbuf(n), *b = hbuf(n), *y = hbuf(n), *dy = hbuf(n), *da = hbuf(n), *db = hbuf(n);
    fill(rng, a, n, -1, 1);
    fill(rng, b, n, -1, 1);
    fill(rng, dy, n, -1, 1);
    fill(rng, da, n, -1, 1);
    fill(rng, db, n, -1, 1);
    float *d_a = UPF(R, a, n), *d_b = UPF(R, b, n), *d_y = UPF(R, y, n), *d_dy = UPF(R, dy, n);
    float *d_da = UPF(R, da, n), *d_db = UPF(R, db, n);
    if (c->kind == K_RELU) {
        lt_relu_forward(n, a, y);
        lt_relu_backward_x(n, y, dy, da, set);
        if (R->ctx && !R->status) {
            gpu(R, lt_cuda_relu_forward(R->ctx, n, d_a, d_y));
            gpu(R, lt_cuda_relu_backward(R->ctx, n, d_y, d_dy, d_da, set));
        }
        cmp(R, c->name, shape, "y", y, d_y, n, TOL_EW);
        cmp(R, c->name, shape, "dx", da, d_da, n, TOL_EW);
    } else if (c->kind == K_ADD) {
        lt_add_forward(n, a, b, y);
        lt_add_backward_x(n, dy, da, set, db, 0);
        if (R->ctx && !R->status) {
            gpu(R, lt_cuda_add_forward(R->ctx, n, d_a, d_b, d_y));
            gpu(R, lt_cuda_add_backward(R->ctx, n, d_dy, d_da, set, d_db, 0));
        }
        cmp(R, c->name, shape, "y", y, d_y, n, TOL_EW);
        cmp(R, c->name, shape, "da", da, d_da, n, TOL_EW);
        cmp(R, c->name, shape, "db", db, d_db, n, TOL_EW);
    } else {
        float *g = hbuf(n);
        lt_add_forward(n, a, b, y);
        lt_relu_forward(n, y, y);
        lt_relu_backward_x(n, y, dy, g, 1);
        lt_add_backward_x(n, g, da, set, same ? da : db, set_b);
        if (R->ctx && !R->status) {
            gpu(R, lt_cuda_add_relu_forward(R->ctx, n, d_a, d_b, d_y));
            gpu(R, lt_cuda_add_relu_backward(R->ctx, n, d_y, d_dy, d_da, set, same ? d_da : d_db, set_b));
        }
        cmp(R, c->name, shape, "y", y, d_y, n, TOL_EW);
        cmp(R, c->name, shape, "da", da, d_da, n, TOL_EW);
        if (!same) cmp(R, c->name, shape, "db", db, d_db, n, TOL_EW);
        free(g);
    }
    free(a); free(b); free(y); free(dy); free(da); free(db);
}

static void run_maxpool(run_t *R, const ot_case *c, lt_rng *rng, char *shape) {
    const int N = c->a[0], C = c->a[1], H = c->a[2], W = c->a[3], k = c->a[4], s = c->a[5], p = c->a[6];
    const int ho = (H + 2 * p - k) / s + 1, wo = (W + 2 * p - k) / s + 1;
    snprintf(shape, 64, "k%d s%d p%d N=%d C=%d %dx%d%s", k, s, p, N, C, H, W, c->a[7] ? " ties" : "");
    const size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * ho * wo;
    float *x = hbuf(nx), *y = hbuf(ny), *dy = hbuf(ny), *dx = hbuf(nx);
    int32_t *am = calloc(ny, sizeof *am);
    assert_non_null(am);
    fill(rng, x, nx, -1, 1);
    if (c->a[7])   /* few distinct values: ties, first maximum must win */
        for (size_t i = 0; i < nx; i++) x[i] = floorf(x[i] * 2.0f);
    fill(rng, dy, ny, -1, 1);
    fill(rng, dx, nx, -1, 1);
    float *dx0 = hcopy(dx, nx);
    lt_maxpool_forward(N, C, H, W, k, s, p, x, y, am);
    lt_maxpool_backward(N, C, H, W, k, s, p, am, dy, dx);
    for (int li = 0; li < N_LAYOUTS; li++) {
        const lt_layout l = lay_begin(R, li);
        float *d_x = UPA(R, l, x, N, C, H * W), *d_y = up_junk(R, ny), *d_dy = UPA(R, l, dy, N, C, ho * wo);
        float *d_dx = UPA(R, l, dx0, N, C, H * W);
        int32_t *d_am = (int32_t *)up_junk(R, ny);   /* NaN bytes: no plane index */
        if (R->ctx && !R->status) {
            gpu(R, lt_cuda_maxpool_forward(R->ctx, l, N, C, H, W, k, s, p, d_x, d_y, d_am));
            gpu(R, lt_cuda_maxpool_backward(R->ctx, l, N, C, H, W, k, s, p, d_am, d_dy, d_dx));
        }
        cmp_act(R, l, c->name, shape, "y", y, d_y, N, C, ho * wo, TOL_EW);
        cmp_act_i32(R, l, c->name, shape, am, d_am, N, C, ho * wo);
        cmp_act(R, l, c->name, shape, "dx", dx, d_dx, N, C, H * W, TOL_EW);
    }
    free(x); free(y); free(dy); free(dx); free(am); free(dx0);
}

static void run_gap(run_t *R, const ot_case *c, lt_rng *rng, char *shape) {
    const int N = c->a[0], C = c->a[1], HW = c->a[2] * c->a[3];
    snprintf(shape, 64, "N=%d C=%d %dx%d", N, C, c->a[2], c->a[3]);
    const size_t nx = (size_t)N * C * HW, ny = (size_t)N * C;
    float *x = hbuf(nx), *y = hbuf(ny), *dy = hbuf(ny), *dx = hbuf(nx);
    fill(rng, x, nx, -1, 1);
    fill(rng, dy, ny, -1, 1);
    fill(rng, dx, nx, -1, 1);
    float *dx0 = hcopy(dx, nx);
    lt_gap_forward(N, C, HW, x, y);
    lt_gap_backward(N, C, HW, dy, dx);
    for (int li = 0; li < N_LAYOUTS; li++) {
        const lt_layout l = lay_begin(R, li);
        /* y and dy are [N][C] in both layouts */
        float *d_x = UPA(R, l, x, N, C, HW), *d_y = up_junk(R, ny), *d_dy = UPF(R, dy, ny);
        float *d_dx = UPA(R, l, dx0, N, C, HW);
        if (R->ctx && !R->status) {
            gpu(R, lt_cuda_gap_forward(R->ctx, l, N, C, HW, d_x, d_y));
            gpu(R, lt_cuda_gap_backward(R->ctx, l, N, C, HW, d_dy, d_dx));
        }
        cmp_l(R, l, c->name, shape, "y", y, d_y, ny, TOL_EW);
        cmp_act(R, l, c->name, shape, "dx", dx, d_dx, N, C, HW, TOL_EW);
    }
    free(x); free(y); free(dy); free(dx); free(dx0);
}

static void run_shortcut(run_t *R, const ot_case *c, lt_rng *rng, char *shape) {
    const int N = c->a[0], Ci = c->a[1], H = c->a[2], W = c->a[3], Co = c->a[4], st = c->a[5];
    const int ho = (H + st - 1) / st, wo = (W + st - 1) / st;
    snprintf(shape, 64, "N=%d %d->%d %dx%d s%d", N, Ci, Co, H, W, st);
    const size_t nx = (size_t)N * Ci * H * W, ny = (size_t)N * Co * ho * wo;
    float *x = hbuf(nx), *y = hbuf(ny), *dy = hbuf(ny), *dx = hbuf(nx);
    fill(rng, x, nx, -1, 1);
    fill(rng, y, ny, -1, 1);   /* garbage the forward must overwrite, zero channels included */
    fill(rng, dy, ny, -1, 1);
    fill(rng, dx, nx, -1, 1);
    float *y0 = hcopy(y, ny), *dx0 = hcopy(dx, nx);
    lt_shortcut_a_forward(N, Ci, H, W, Co, st, x, y);
    lt_shortcut_a_backward(N, Ci, H, W, Co, st, dy, dx);
    for (int li = 0; li < N_LAYOUTS; li++) {
        const lt_layout l = lay_begin(R, li);
        float *d_x = UPA(R, l, x, N, Ci, H * W), *d_y = UPA(R, l, y0, N, Co, ho * wo);
        float *d_dy = UPA(R, l, dy, N, Co, ho * wo), *d_dx = UPA(R, l, dx0, N, Ci, H * W);
        if (R->ctx && !R->status) {
            gpu(R, lt_cuda_shortcut_a_forward(R->ctx, l, N, Ci, H, W, Co, st, d_x, d_y));
            gpu(R, lt_cuda_shortcut_a_backward(R->ctx, l, N, Ci, H, W, Co, st, d_dy, d_dx));
        }
        cmp_act(R, l, c->name, shape, "y", y, d_y, N, Co, ho * wo, TOL_EW);
        cmp_act(R, l, c->name, shape, "dx", dx, d_dx, N, Ci, H * W, TOL_EW);
    }
    free(x); free(y); free(dy); free(dx); free(y0); free(dx0);
}

static void run_linear(run_t *R, const ot_case *c, lt_rng *rng, char *shape) {
    const int N = c->a[0], in = c->a[1], out = c->a[2], bias = c->a[3], set_dx = c->a[4];
    snprintf(shape, 64, "N=%d %d->%d%s%s", N, in, out, bias ? " b" : "", set_dx ? " set" : "");
    const size_t nx = (size_t)N * in, ny = (size_t)N * out, nw = (size_t)out * in;
    float *x = hbuf(nx), *w = hbuf(nw), *b = hbuf(out), *y = hbuf(ny), *dy = hbuf(ny), *dx = hbuf(nx);
    float *dw = hbuf(nw), *db = hbuf(out);
    fill(rng, x, nx, -1, 1);
    fill(rng, w, nw, -0.1f, 0.1f);
    fill(rng, b, out, -0.5f, 0.5f);
    fill(rng, dy, ny, -1, 1);
    fill(rng, dx, nx, -1, 1);
    fill(rng, dw, nw, -1, 1);
    fill(rng, db, out, -1, 1);
    float *d_x = UPF(R, x, nx), *d_w = UPF(R, w, nw), *d_b = UPF(R, b, out), *d_y = UPF(R, y, ny);
    float *d_dy = UPF(R, dy, ny), *d_dx = UPF(R, dx, nx), *d_dw = UPF(R, dw, nw), *d_db = UPF(R, db, out);
    lt_linear_forward(N, in, out, x, w, bias ? b : NULL, y);
    if (set_dx) memset(dx, 0, nx * sizeof *dx);   /* the CPU kernel accumulates: set == += onto zeros */
    lt_linear_backward(N, in, out, x, w, dy, dx, dw, bias ? db : NULL);
    if (R->ctx && !R->status) {
        gpu(R, lt_cuda_linear_forward(R->ctx, N, in, out, d_x, d_w, bias ? d_b : NULL, d_y));
        gpu(R, lt_cuda_linear_backward(R->ctx, N, in, out, d_x, d_w, d_dy, d_dx, d_dw, bias ? d_db : NULL, set_dx));
    }
    cmp(R, c->name, shape, "y", y, d_y, ny, TOL_MM(R));
    cmp(R, c->name, shape, "dx", dx, d_dx, nx, TOL_MM(R));
    cmp(R, c->name, shape, "dw", dw, d_dw, nw, TOL_MM(R));
    if (bias) cmp(R, c->name, shape, "db", db, d_db, out, TOL_BN);
    free(x); free(w); free(b); free(y); free(dy); free(dx); free(dw); free(db);
}

static void run_cosine(run_t *R, const ot_case *c, lt_rng *rng, char *shape) {
    const int N = c->a[0], in = c->a[1], out = c->a[2], zero_row = c->a[3];
    const float scale = 16.0f, eps = 1e-8f;
    snprintf(shape, 64, "N=%d %d->%d s=16%s", N, in, out, zero_row ? " zero-row" : "");
    const size_t nx = (size_t)N * in, ny = (size_t)N * out, nw = (size_t)out * in;
    float *x = hbuf(nx), *w = hbuf(nw), *y = hbuf(ny), *dy = hbuf(ny), *dx = hbuf(nx), *dw = hbuf(nw);
    float *xi = hbuf(N), *wi = hbuf(out);
    fill(rng, x, nx, -1, 1);
    if (zero_row) memset(x, 0, in * sizeof *x);   /* a clamped norm */
    fill(rng, w, nw, -0.1f, 0.1f);
    fill(rng, dy, ny, -1, 1);
    fill(rng, dx, nx, -1, 1);
    fill(rng, dw, nw, -1, 1);
    float *d_x = UPF(R, x, nx), *d_w = UPF(R, w, nw), *d_y = UPF(R, y, ny), *d_dy = UPF(R, dy, ny);
    float *d_dx = UPF(R, dx, nx), *d_dw = UPF(R, dw, nw), *d_xi = UPF(R, xi, N), *d_wi = UPF(R, wi, out);
    lt_cosine_forward(N, in, out, x, w, scale, eps, y, xi, wi);
    lt_cosine_backward(N, in, out, x, w, scale, xi, wi, y, dy, dx, dw);
    if (R->ctx && !R->status) {
        gpu(R, lt_cuda_cosine_forward(R->ctx, N, in, out, d_x, d_w, scale, eps, d_y, d_xi, d_wi));
        gpu(R, lt_cuda_cosine_backward(R->ctx, N, in, out, d_x, d_w, scale, d_xi, d_wi, d_y, d_dy, d_dx, d_dw));
    }
    cmp(R, c->name, shape, "y", y, d_y, ny, TOL_MM(R));
    cmp(R, c->name, shape, "xinv", xi, d_xi, N, TOL_EW);
    cmp(R, c->name, shape, "winv", wi, d_wi, out, TOL_EW);
    cmp(R, c->name, shape, "dx", dx, d_dx, nx, TOL_MM(R));
    cmp(R, c->name, shape, "dw", dw, d_dw, nw, TOL_MM(R));
    free(x); free(w); free(y); free(dy); free(dx); free(dw); free(xi); free(wi);
}

static void run_loss(run_t *R, const ot_case *c, lt_rng *rng, char *shape) {
    const int N = c->a[0], C = c->a[1], offs = c->a[2], wts = c->kind == K_CE && c->a[3];
    snprintf(shape, 64, "N=%d C=%d%s%s", N, C, offs ? " offsets" : "", wts ? " weights" : "");
    const size_t n = (size_t)N * C;
    float *z = hbuf(n), *g = hbuf(n), *t = hbuf(n), *off = hbuf(C), *w = hbuf(N);
    int32_t *lab = calloc(N, sizeof *lab);
    assert_non_null(lab);
    fill(rng, z, n, -4, 4);
    fill(rng, w, N, 0.5f, 2.0f);
    fill(rng, g, n, -1, 1);   /* garbage the loss must overwrite */
    for (int j = 0; j < C; j++) off[j] = (float)log(1.0 + (double)lt_rng_below(rng, 500));
    if (offs && C > 3) off[3] = LT_OFFSET_EXCLUDED;   /* a masked class (no training image) */
    for (int i = 0; i < N; i++) {
        lab[i] = (int32_t)lt_rng_below(rng, (uint32_t)C);
        if (offs && lab[i] == 3) lab[i] = 4;
        t[(size_t)i * C + lab[i]] = 1.0f;
    }
    float *d_z = UPF(R, z, n), *d_g = UPF(R, g, n), *d_t = UPF(R, t, n), *d_off = UPF(R, off, C), *d_w = UPF(R, w, N);
    int32_t *d_lab = (int32_t *)up(R, lab, N * sizeof *lab);
    double loss = 0, dloss = 0;
    if (c->kind == K_CE) {
        assert_int_equal(lt_softmax_ce(N, C, z, lab, offs ? off : NULL, wts ? w : NULL, &loss, g), LT_OK);
        if (R->ctx && !R->status)
            gpu(R, lt_cuda_softmax_ce(R->ctx, N, C, d_z, d_lab, offs ? d_off : NULL, wts ? d_w : NULL, &dloss, d_g));
    } else {
        assert_int_equal(lt_sigmoid_bce(N, C, z, t, offs ? off : NULL, &loss, g), LT_OK);
        if (R->ctx && !R->status) gpu(R, lt_cuda_sigmoid_bce(R->ctx, N, C, d_z, d_t, offs ? d_off : NULL, &dloss, d_g));
    }
    cmp_scalar(R, c->name, shape, loss, dloss, 1e-6);
    cmp(R, c->name, shape, "dlogits", g, d_g, n, 1e-6);
    free(z); free(g); free(t); free(off); free(w); free(lab);
}

/* 3 steps of SGD or Adam over n elements with a mask (frozen / no-decay
 * elements) and n_groups groups with their own rates. The CPU reference
 * of a grouped step is one lt_*_step per group over the elements of that
 * group (the others masked frozen): lt_optim.c's per-element arithmetic. */
static void run_optim(run_t *R, const ot_case *c, lt_rng *rng, char *shape) {
    const size_t n = (size_t)c->a[0];
    const int adam = c->kind == K_ADAM;
    const float mu = adam ? 0 : (float)c->a[1] / 100.0f;
    const int nesterov = adam ? 0 : c->a[2], G = adam ? c->a[1] : c->a[3];
    snprintf(shape, 64, "n=%zu %s%s groups=%d", n, adam ? "" : (mu != 0 ? "mom " : "no-mom "),
             nesterov ? "nesterov" : "", G);
    float *w = hbuf(n), *gr = hbuf(n), *s1 = hbuf(n), *s2 = hbuf(n);
    uint8_t *mask = calloc(n, 1), *gid = calloc(n, 1), *mk = calloc(n, 1);
    assert_true(mask && gid && mk);
    fill(rng, w, n, -1, 1);
    for (size_t i = 0; i < n; i++) {
        const uint32_t u = lt_rng_below(rng, 10);
        mask[i] = u == 0 ? LT_MASK_FROZEN : u == 1 ? LT_MASK_NO_DECAY : 0;
        gid[i] = (uint8_t)lt_rng_below(rng, (uint32_t)G);
    }
    float glr[LT_CUDA_MAX_GROUPS], gwd[LT_CUDA_MAX_GROUPS], gstep[LT_CUDA_MAX_GROUPS];
    float *d_w = UPF(R, w, n), *d_g = UPF(R, gr, n), *d_s1 = UPF(R, s1, n), *d_s2 = UPF(R, s2, n);
    uint8_t *d_mask = up(R, mask, n), *d_gid = up(R, gid, n);
    const float lr = adam ? 1e-3f : 0.1f, wd = 5e-4f;
    for (long step = 1; step <= 3; step++) {
        fill(rng, gr, n, -1, 1);
        if (R->ctx && !R->status) gpu(R, lt_cuda_h2d(R->ctx, d_g, gr, n * sizeof *gr));
        for (int k = 0; k < G; k++) {
            glr[k] = k == 0 ? lr : (float)((double)lr * (0.5 + k));
            gwd[k] = k == 0 ? wd : (float)((double)wd * (k == 1 ? 0.0 : 2.0));
        }
        const double bc1 = 1.0 - pow(0.9, (double)step), bc2 = 1.0 - pow((double)0.999f, (double)step);
        for (int k = 0; k < G; k++) {
            for (size_t i = 0; i < n; i++) mk[i] = G == 1 || gid[i] == k ? mask[i] : LT_MASK_FROZEN;
            if (adam) {
                lt_adam_cfg ac = {glr[k], 0.9f, 0.999f, 1e-8f, gwd[k]};
                lt_adam_step(n, w, gr, s1, s2, mk, &ac, step);
            } else {
                lt_sgd_cfg sc = {glr[k], mu, gwd[k], nesterov};
                lt_sgd_step(n, w, gr, s1, mk, &sc);
            }
        }
        if (!R->ctx || R->status) continue;
        if (adam && G == 1) {
            lt_adam_cfg ac = {lr, 0.9f, 0.999f, 1e-8f, wd};
            gpu(R, lt_cuda_adam_step(R->ctx, n, d_w, d_g, d_s1, d_s2, d_mask, &ac, step));
        } else if (adam) {
            const double b1c = 1.0 - pow((double)0.9f, (double)step);
            (void)bc1;
            for (int k = 0; k < G; k++) gstep[k] = (float)(glr[k] / b1c);
            gpu(R, lt_cuda_adam_step_grouped(R->ctx, n, d_w, d_g, d_s1, d_s2, d_mask, d_gid, G, gstep, gwd, 0.9f,
                                             0.999f, 1e-8f, (float)sqrt(bc2)));
        } else if (G == 1) {
            lt_sgd_cfg sc = {lr, mu, wd, nesterov};
            gpu(R, lt_cuda_sgd_step(R->ctx, n, d_w, d_g, mu != 0 ? d_s1 : NULL, d_mask, &sc));
        } else {
            gpu(R, lt_cuda_sgd_step_grouped(R->ctx, n, d_w, d_g, d_s1, d_mask, d_gid, G, glr, gwd, mu, nesterov));
        }
    }
    cmp(R, c->name, shape, "w", w, d_w, n, TOL_EW);
    if (adam || mu != 0) cmp(R, c->name, shape, adam ? "m" : "mom", s1, d_s1, n, TOL_EW);
    if (adam) cmp(R, c->name, shape, "v", s2, d_s2, n, TOL_EW);
    free(w); free(gr); free(s1); free(s2); free(mask); free(gid); free(mk);
}

/* Runs case i (inputs from the RNG stream of the case index, so every run
 * and mode sees the same inputs). */
static void run_case(run_t *R, int i) {
    const ot_case *c = &cases[i];
    lt_rng rng;
    lt_rng_init(&rng, 19, (uint64_t)i);
    char shape[64] = "";
    R->status = LT_OK;
    R->lay = "";
    R->fail_lay = "";
    R->cpu_bad = 0;
    switch (c->kind) {
    case K_CONV: run_conv(R, c, &rng, shape); break;
    case K_BN: run_bn(R, c, &rng, shape); break;
    case K_RELU: case K_ADD: case K_ADD_RELU: run_relu_add(R, c, &rng, shape); break;
    case K_MAXPOOL: run_maxpool(R, c, &rng, shape); break;
    case K_GAP: run_gap(R, c, &rng, shape); break;
    case K_SHORTCUT: run_shortcut(R, c, &rng, shape); break;
    case K_LINEAR: run_linear(R, c, &rng, shape); break;
    case K_COSINE: run_cosine(R, c, &rng, shape); break;
    case K_CE: case K_BCE: run_loss(R, c, &rng, shape); break;
    case K_SGD: case K_ADAM: run_optim(R, c, &rng, shape); break;
    default: fail_msg("case %d: unknown kind %d", i, c->kind);
    }
    if (R->ctx && R->status == LT_OK) gpu(R, lt_cuda_sync(R->ctx));
    if (R->ctx && R->status != LT_OK && R->tab) {   /* a failed call is a failed row */
        char name[24];
        snprintf(name, sizeof name, "%s%s", c->name, R->fail_lay ? R->fail_lay : "");
        lt_ot_add(R->tab, name, shape, "status", R->mode, INFINITY, 0);
    }
    case_end(R);
    R->lay = "";
}

/* ---- GPU presence ----------------------------------------------------------------
 * A context on device 0, or the case prints its reason and is skipped. */
#define NEED_GPU(ctxp, m, det)                                                   \
    do {                                                                         \
        if (lt_cuda_create((ctxp), 0, (m), (det)) != LT_OK) {                    \
            print_message("skip: no usable CUDA device: %s\n", lt_errmsg());   \
            skip();                                                              \
            return;                                                              \
        }                                                                        \
        print_message("note: %s\n", lt_cuda_describe(*(ctxp)));                 \
    } while (0)

/* ---- tests that run everywhere --------------------------------------------------- */
static void test_cpu_harness(void **state) {
    (void)state;
    /* the comparator */
    const float ref[4] = {1.0f, -2.0f, 0.5f, 0.0f};
    float got[4] = {1.0f, -2.0f, 0.5f, 0.0f};
    assert_true(lt_ot_relerr(ref, got, 4) == 0.0);
    got[2] = 0.75f;   /* 0.25 absolute over max |ref| = 2 */
    assert_true(lt_ot_relerr(ref, got, 4) == 0.125);
    got[2] = NAN;
    assert_true(isinf(lt_ot_relerr(ref, got, 4)));
    const float zr[2] = {0, 0}, zg[2] = {0, 3e-7f};
    assert_true(fabs(lt_ot_relerr(zr, zg, 2) - 3e-7) < 1e-12);   /* all-zero reference: absolute */
    const float ir[2] = {INFINITY, 1}, ig[2] = {INFINITY, 1};
    assert_true(lt_ot_relerr(ir, ig, 2) == 0.0);
    const int32_t ai[3] = {1, 2, 3}, bi[3] = {1, 5, 3};
    assert_int_equal(lt_ot_mismatch_i32(ai, bi, 3), 1);

    /* the table and its report */
    lt_ot_table t = {0};
    assert_true(lt_ot_add(&t, "conv", "3x3", "y", "fp32", 1e-6, 1e-4));
    assert_false(lt_ot_add(&t, "conv", "3x3", "dw", "fp32", 2e-4, 1e-4));
    assert_false(lt_ot_add(&t, "bn", "x", "y", "fp32", NAN, 1e-5));
    assert_int_equal(t.n, 3);
    assert_int_equal(t.n_fail, 2);
    char buf[4096] = "";
    FILE *f = fmemopen(buf, sizeof buf, "w");
    assert_non_null(f);
    lt_ot_print(&t, f);
    fclose(f);
    assert_non_null(strstr(buf, "3 rows, 1 passed, 2 failed"));
    assert_non_null(strstr(buf, "FAIL"));
    lt_ot_free(&t);

    /* the host transposition the NHWC rows rely on: v[n][c][p] = 100n + 10c + p */
    {
        enum { TN = 2, TCH = 3, THW = 5 };
        float a[TN * TCH * THW], t[TN * TCH * THW], back[TN * TCH * THW];
        for (int n = 0; n < TN; n++)
            for (int ch = 0; ch < TCH; ch++)
                for (int q = 0; q < THW; q++) a[(n * TCH + ch) * THW + q] = (float)(100 * n + 10 * ch + q);
        host_convert(LT_LAYOUT_NHWC, TN, TCH, THW, a, t);
        for (int n = 0; n < TN; n++)
            for (int q = 0; q < THW; q++)
                for (int ch = 0; ch < TCH; ch++)
                    assert_true(t[(n * THW + q) * TCH + ch] == (float)(100 * n + 10 * ch + q));
        host_convert(LT_LAYOUT_NCHW, TN, TCH, THW, t, back);
        assert_memory_equal(a, back, sizeof a);
        char name[24];
        assert_string_equal(lay_op(name, sizeof name, "bn_train", LT_LAYOUT_NHWC), "bn_train/nhwc");
        assert_string_equal(lay_op(name, sizeof name, "bn_train", LT_LAYOUT_NCHW), "bn_train");
    }

    /* the CPU half of every row: shapes valid, references finite */
    run_t R = {.mode = "cpu"};
    for (int i = 0; i < N_CASES; i++) {
        run_case(&R, i);
        if (R.cpu_bad) fail_msg("case %d (%s): a CPU reference output is not finite", i, cases[i].name);
    }
    print_message("note: CPU half of the %d-case op table ran (every layout of a case)\n", N_CASES);
}

static void test_no_device_status(void **state) {
    (void)state;
    const int n = lt_cuda_device_count();
    lt_cuda_ctx *ctx = (lt_cuda_ctx *)&ctx;   /* must be reset to NULL */
    lt_err_clear();
    /* device index n never exists: with no GPU that is device 0 */
    int rc = lt_cuda_create(&ctx, n, LT_CUDA_FP32, 0);
    assert_int_equal(rc, LT_EDEVICE);
    assert_null(ctx);
    assert_true(strlen(lt_errmsg()) > 0);
    assert_non_null(strstr(lt_errmsg(), "CUDA device"));
    print_message("note: %d CUDA device(s); create(device %d): %s\n", n, n, lt_errmsg());
    assert_int_equal(lt_cuda_create(&ctx, 0, (lt_cuda_math)7, 0), LT_EINVAL);
    lt_cuda_free_ctx(NULL);
}

/* ---- GPU tests --------------------------------------------------------------------- */
static void optable(lt_cuda_math m) {
    lt_cuda_ctx *ctx = NULL;
    NEED_GPU(&ctx, m, 0);
    lt_ot_table t = {0};
    run_t R = {.ctx = ctx, .mode = m == LT_CUDA_TF32 ? "tf32" : "fp32", .tf32 = m == LT_CUDA_TF32, .tab = &t};
    for (int i = 0; i < N_CASES; i++) {
        run_case(&R, i);
        cap_clear(&R);
    }
    lt_ot_print(&t, stdout);
    fflush(stdout);
    const int fails = t.n_fail;
    lt_ot_free(&t);
    lt_cuda_free_ctx(ctx);
    assert_int_equal(fails, 0);
}

static void test_optable_fp32(void **state) { (void)state; optable(LT_CUDA_FP32); }
static void test_optable_tf32(void **state) { (void)state; optable(LT_CUDA_TF32); }

static void test_deterministic(void **state) {
    (void)state;
    lt_cuda_ctx *ctx = NULL;
    NEED_GPU(&ctx, LT_CUDA_FP32, 1);
    int bad = 0, compared = 0;
    for (int i = 0; i < N_CASES; i++) {
        run_t A = {.ctx = ctx, .mode = "det"}, B = {.ctx = ctx, .mode = "det"}, W = {.ctx = ctx, .mode = "det"};
        run_case(&A, i);
        run_case(&B, i);
        assert_int_equal(lt_cuda_set_wgrad_stream(ctx, 1), LT_OK);
        run_case(&W, i);
        assert_int_equal(lt_cuda_set_wgrad_stream(ctx, 0), LT_OK);
        assert_int_equal(A.status, LT_OK);
        assert_int_equal(B.status, LT_OK);
        assert_int_equal(W.status, LT_OK);
        assert_int_equal(A.n_cap, B.n_cap);
        assert_int_equal(A.n_cap, W.n_cap);
        const run_t *other[2] = {&B, &W};
        const char *why[2] = {"between two deterministic runs", "with the filter-gradient stream"};
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < A.n_cap; k++) {
                compared++;
                if (A.cap_bytes[k] != other[j]->cap_bytes[k] || memcmp(A.cap[k], other[j]->cap[k], A.cap_bytes[k])) {
                    print_message("case %d (%s): output %d differs %s\n", i, cases[i].name, k, why[j]);
                    bad++;
                }
            }
        cap_clear(&A);
        cap_clear(&B);
        cap_clear(&W);
    }
    print_message("note: deterministic mode: %d outputs of %d cases (every layout; twice, and with the filter-gradient "
                  "stream) compared bit for bit, %d differ\n", compared, N_CASES, bad);
    lt_cuda_free_ctx(ctx);
    assert_int_equal(bad, 0);
}

/* lt_cuda_layout_convert both ways, = and +=, against host_convert: exact
 * (a copy, or one float add per element); odd sizes, a single channel, a
 * single pixel, and an empty tensor. */
static void test_layout_convert(void **state) {
    (void)state;
    lt_cuda_ctx *ctx = NULL;
    NEED_GPU(&ctx, LT_CUDA_FP32, 0);
    static const int shapes[][3] = {{3, 5, 7}, {2, 64, 49}, {1, 1, 13}, {4, 3, 1}, {2, 17, 9}, {0, 4, 4}};
    lt_rng rng;
    lt_rng_init(&rng, 19, 1000);
    int checked = 0;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const int N = shapes[k][0], C = shapes[k][1], HW = shapes[k][2];
        const size_t n = (size_t)N * C * HW, bytes = n * sizeof(float);
        float *src = hbuf(n + 1), *dst0 = hbuf(n + 1), *want = hbuf(n + 1), *got = hbuf(n + 1);
        float *d_src = NULL, *d_dst = NULL;
        assert_int_equal(lt_cuda_alloc(ctx, (void **)&d_src, bytes), LT_OK);
        assert_int_equal(lt_cuda_alloc(ctx, (void **)&d_dst, bytes), LT_OK);
        for (int to = 0; to < 2; to++)
            for (int acc = 0; acc < 2; acc++) {
                const lt_layout l = to ? LT_LAYOUT_NHWC : LT_LAYOUT_NCHW;
                fill(&rng, src, n, -1, 1);
                fill(&rng, dst0, n, -1, 1);
                assert_int_equal(lt_cuda_h2d(ctx, d_src, src, bytes), LT_OK);
                assert_int_equal(lt_cuda_h2d(ctx, d_dst, dst0, bytes), LT_OK);
                assert_int_equal(lt_cuda_layout_convert(ctx, l, N, C, HW, d_src, d_dst, acc), LT_OK);
                assert_int_equal(lt_cuda_d2h(ctx, got, d_dst, bytes), LT_OK);
                host_convert(l, N, C, HW, src, want);
                if (acc)
                    for (size_t i = 0; i < n; i++) want[i] = dst0[i] + want[i];
                if (memcmp(want, got, bytes))
                    fail_msg("layout convert to %s, N=%d C=%d HW=%d, %s: differs from the host transposition",
                             to ? "NHWC" : "NCHW", N, C, HW, acc ? "+=" : "=");
                checked++;
            }
        lt_cuda_free(ctx, d_src);
        lt_cuda_free(ctx, d_dst);
        free(src); free(dst0); free(want); free(got);
    }
    assert_int_equal(lt_cuda_sync(ctx), LT_OK);
    print_message("note: layout convert: %d conversions exact\n", checked);
    lt_cuda_free_ctx(ctx);
}

/* How convolution algorithms are chosen: timed (cudnnFind, as PyTorch's
 * cudnn.benchmark) without deterministic mode, by heuristic with it, and
 * by heuristic for a plan first needed while the stream is captured into a
 * CUDA graph (a search allocates and synchronises: the capture would be
 * invalidated). On the emulator the searches return an order the
 * heuristics never give, so the timed picks are known. */
static void test_algo_choice(void **state) {
    (void)state;
    lt_cuda_ctx *ctx = NULL;
    NEED_GPU(&ctx, LT_CUDA_FP32, 0);
    const int emu = strstr(lt_cuda_describe(ctx), LT_CUEMU_DEVICE_NAME) != NULL;
    char line[512];
    lt_test_conv_ones(ctx, 16, 16, 12, 2, 1);
    lt_test_newest_plan(ctx, line, sizeof line);
    print_message("note: not deterministic: %s\n", line);
    assert_non_null(strstr(line, "(timed)"));
    assert_null(strstr(line, "TENSOR_OP"));
    if (emu)   /* the fake search's fastest: the last supported entry of each heuristic list */
    {
        assert_non_null(strstr(line, "fwd IMPLICIT_GEMM/FMA "));
        assert_non_null(strstr(line, "bwd-data ALGO_1/FMA "));
        assert_non_null(strstr(line, "bwd-filter ALGO_3/FMA "));
    }

    /* a plan made during a capture: heuristic, and the capture stands */
    assert_int_equal(lt_cuda_graph_prepare(ctx), LT_OK);
    assert_int_equal(lt_cuda_workspace_reserve(ctx, (size_t)64 << 20), LT_OK);
    lt_conv_geom g;
    assert_int_equal(lt_conv_geom_init(&g, 4, 6, 6, 8, 3, 3, 1, 1, 1), LT_OK);
    float *x = NULL, *w = NULL, *y = NULL;
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&x, 4 * 36 * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&w, lt_conv2d_weight_count(&g) * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&y, 8 * 36 * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_memset0(ctx, x, 4 * 36 * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_memset0(ctx, w, lt_conv2d_weight_count(&g) * sizeof(float)), LT_OK);
    assert_int_equal(lt_cuda_sync(ctx), LT_OK);
    void *exec = NULL;
    assert_int_equal(lt_cuda_graph_begin(ctx), LT_OK);
    const int rc = lt_cuda_conv2d_forward(ctx, LT_LAYOUT_NCHW, &g, 1, x, w, NULL, y);
    const int rc_end = lt_cuda_graph_end(ctx, &exec);
    if (rc_end != LT_OK) print_message("capture: %s\n", lt_errmsg());
    assert_int_equal(rc, LT_OK);
    assert_int_equal(rc_end, LT_OK);
    assert_non_null(exec);
    assert_int_equal(lt_cuda_graph_launch(ctx, exec), LT_OK);
    assert_int_equal(lt_cuda_sync(ctx), LT_OK);
    lt_cuda_graph_free(ctx, exec);
    lt_test_newest_plan(ctx, line, sizeof line);
    print_message("note: made during a capture: %s\n", line);
    assert_non_null(strstr(line, "(heuristic)"));
    lt_cuda_free(ctx, x);
    lt_cuda_free(ctx, w);
    lt_cuda_free(ctx, y);
    lt_cuda_free_ctx(ctx);

    /* deterministic: heuristic */
    NEED_GPU(&ctx, LT_CUDA_FP32, 1);
    lt_test_conv_ones(ctx, 16, 16, 12, 2, 1);
    lt_test_newest_plan(ctx, line, sizeof line);
    print_message("note: deterministic: %s\n", line);
    assert_non_null(strstr(line, "(heuristic)"));
    lt_cuda_free_ctx(ctx);
}

static void test_oom(void **state) {
    (void)state;
    lt_cuda_ctx *ctx = NULL;
    NEED_GPU(&ctx, LT_CUDA_FP32, 0);
    void *p = (void *)&p;
    lt_err_clear();
    const size_t absurd = (size_t)1 << 50;   /* 1 PiB */
    assert_int_equal(lt_cuda_alloc(ctx, &p, absurd), LT_ENOMEM);
    assert_null(p);
    assert_non_null(strstr(lt_errmsg(), "1125899906842624 bytes"));
    print_message("note: OOM: %s\n", lt_errmsg());
    /* the context still works */
    float h[4] = {1, 2, 3, 4}, back[4] = {0};
    assert_int_equal(lt_cuda_alloc(ctx, &p, sizeof h), LT_OK);
    assert_int_equal(lt_cuda_h2d(ctx, p, h, sizeof h), LT_OK);
    assert_int_equal(lt_cuda_relu_forward(ctx, 4, p, p), LT_OK);
    assert_int_equal(lt_cuda_d2h(ctx, back, p, sizeof back), LT_OK);
    assert_memory_equal(h, back, sizeof h);
    assert_int_equal(lt_cuda_sync(ctx), LT_OK);
    lt_cuda_free(ctx, p);
    lt_cuda_free_ctx(ctx);
}

static void test_error_paths(void **state) {
    (void)state;
    lt_cuda_ctx *ctx = NULL;
    NEED_GPU(&ctx, LT_CUDA_FP32, 0);
    const int N = 2, C = 3;
    float z[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}, g[6];
    int32_t lab[2] = {1, 3};   /* 3 is outside [0, 3) */
    float *dz = NULL, *dg = NULL;
    int32_t *dl = NULL;
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&dz, sizeof z), LT_OK);
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&dg, sizeof g), LT_OK);
    assert_int_equal(lt_cuda_alloc(ctx, (void **)&dl, sizeof lab), LT_OK);
    assert_int_equal(lt_cuda_h2d(ctx, dz, z, sizeof z), LT_OK);
    assert_int_equal(lt_cuda_h2d(ctx, dl, lab, sizeof lab), LT_OK);
    double loss = 0;
    assert_int_equal(lt_cuda_softmax_ce(ctx, N, C, dz, dl, NULL, NULL, &loss, dg), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "label[1] = 3 outside [0, 3)"));
    print_message("note: bad label: %s\n", lt_errmsg());
    lab[1] = 2;
    z[4] = NAN;
    assert_int_equal(lt_cuda_h2d(ctx, dl, lab, sizeof lab), LT_OK);
    assert_int_equal(lt_cuda_h2d(ctx, dz, z, sizeof z), LT_OK);
    assert_int_equal(lt_cuda_softmax_ce(ctx, N, C, dz, dl, NULL, NULL, &loss, dg), LT_ENUM);
    assert_non_null(strstr(lt_errmsg(), "logit[1,1]"));
    print_message("note: NaN logit: %s\n", lt_errmsg());
    /* a geometry that was never initialised */
    lt_conv_geom bad = {0};
    assert_int_equal(lt_cuda_conv2d_forward(ctx, LT_LAYOUT_NCHW, &bad, 1, dz, dz, NULL, dg), LT_ESHAPE);
    print_message("note: bad geometry: %s\n", lt_errmsg());
    assert_int_equal(lt_cuda_maxpool_forward(ctx, LT_LAYOUT_NCHW, 1, 1, 2, 2, 5, 1, 0, dz, dg, dl), LT_ESHAPE);
    assert_int_equal(lt_cuda_sgd_step_grouped(ctx, 6, dz, dg, NULL, NULL, NULL, 99, NULL, NULL, 0, 0), LT_EINVAL);
    /* a layout that is neither NCHW nor NHWC: refused before anything else */
    const lt_layout bad_l = (lt_layout)2;
    float *f6 = dz;
    int rcs[11];
    rcs[0] = lt_cuda_bn_forward_train(ctx, bad_l, 1, 2, 3, f6, NULL, NULL, dg, dg, dg, NULL, NULL, 0.1f, 1e-5f, 0);
    rcs[1] = lt_cuda_bn_forward_eval(ctx, bad_l, 1, 2, 3, f6, NULL, NULL, f6, f6, 1e-5f, dg);
    rcs[2] = lt_cuda_bn_backward_train(ctx, bad_l, 1, 2, 3, f6, NULL, f6, f6, f6, NULL, dg, NULL, NULL, 1);
    rcs[3] = lt_cuda_bn_backward_eval(ctx, bad_l, 1, 2, 3, f6, NULL, f6, f6, 1e-5f, f6, dg, NULL, NULL, 1);
    rcs[4] = lt_cuda_maxpool_forward(ctx, bad_l, 1, 1, 2, 3, 1, 1, 0, dz, dg, dl);
    rcs[5] = lt_cuda_maxpool_backward(ctx, bad_l, 1, 1, 2, 3, 1, 1, 0, dl, dz, dg);
    rcs[6] = lt_cuda_gap_forward(ctx, bad_l, 1, 2, 3, dz, dg);
    rcs[7] = lt_cuda_gap_backward(ctx, bad_l, 1, 2, 3, dz, dg);
    rcs[8] = lt_cuda_shortcut_a_forward(ctx, bad_l, 1, 1, 2, 3, 1, 1, dz, dg);
    rcs[9] = lt_cuda_shortcut_a_backward(ctx, bad_l, 1, 1, 2, 3, 1, 1, dz, dg);
    rcs[10] = lt_cuda_layout_convert(ctx, bad_l, 1, 2, 3, dz, dg, 0);
    for (int k = 0; k < 11; k++) {
        if (rcs[k] != LT_EINVAL) fail_msg("layout 2, call %d: status %d, not LT_EINVAL", k, rcs[k]);
    }
    lt_err_clear();
    assert_int_equal(lt_cuda_gap_forward(ctx, (lt_layout)-1, 1, 2, 3, dz, dg), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "layout -1"));
    print_message("note: bad layout: %s\n", lt_errmsg());
    /* nothing above is sticky */
    assert_int_equal(lt_cuda_sync(ctx), LT_OK);
    lt_cuda_free(ctx, dz);
    lt_cuda_free(ctx, dg);
    lt_cuda_free(ctx, dl);
    lt_cuda_free_ctx(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_harness),
        cmocka_unit_test(test_no_device_status),
        cmocka_unit_test(test_optable_fp32),
        cmocka_unit_test(test_optable_tf32),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_layout_convert),
        cmocka_unit_test(test_algo_choice),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_error_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
