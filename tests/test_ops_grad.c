/* test_ops_grad.c — layer kernels (engine/lt_ops.h): finite-difference
 * gradient checks for every input and parameter gradient, value tests
 * against naive loops and hand-computed examples, the accumulate / NULL
 * conventions, and bit-exact determinism.
 *
 * Gradient checks use the projection loss L = sum(y * r) with a fixed random
 * r (so dy = r), evaluated in double from the float forward pass.
 * Tolerances (|num - ana| <= atol + rtol * max(|num|, |ana|)):
 *  - linear-in-the-checked-variable kernels (conv, linear, add, gap, pooling,
 *    shortcut, eval BN, relu away from 0): eps 1e-2, rtol 5e-3, atol 2e-4.
 *    The FD quotient is exact up to float rounding of y (~1e-6 in L), so
 *    anything larger is a real bug: a dropped tap or a wrong sign moves a
 *    gradient by O(0.1).
 *  - nonlinear kernels (train BN, cosine): eps 1e-2, rtol 2e-2, atol 1e-3,
 *    covering the O(eps^2) truncation error of the central difference. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "tassert.h"   /* NaN-safe assert_float_equal */

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "gradcheck.h"
#include "lt_base.h"
#include "lt_ops.h"
#include "lt_conv_fast.h"
#include "lt_model_impl.h"   /* white-box: the model's structs */

static const gc_opts LIN_TOL = {1e-2, 5e-3, 2e-4, 0};
static const gc_opts NONLIN_TOL = {1e-2, 2e-2, 1e-3, 0};
static const gc_opts WINO4_GC = {1e-1, 5e-3, 2e-4, 0};

static float *fa(size_t n) {
    float *p = lt_alloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    return p;
}

static float *frand(size_t n, unsigned seed, float lo, float hi) {
    float *p = fa(n);
    gc_fill(p, n, seed, lo, hi);
    return p;
}

/* ======================================================================== */
/* conv2d                                                                    */
/* ======================================================================== */

typedef struct {
    int N, ci, h, w, co, k, s, p, g, bias;
} conv_case;

typedef struct {
    lt_conv_geom g;
    int N;
    float *x, *w, *b, *y, *r, *scratch;
    size_t nx, nw, ny;
} conv_ctx;

static void conv_setup(conv_ctx *c, const conv_case *cc, unsigned seed) {
    memset(c, 0, sizeof *c);
    assert_int_equal(lt_conv_geom_init(&c->g, cc->ci, cc->h, cc->w, cc->co, cc->k, cc->k, cc->s,
                                       cc->p, cc->g),
                     LT_OK);
    c->N = cc->N;
    c->nx = (size_t)cc->N * cc->ci * cc->h * cc->w;
    c->nw = lt_conv2d_weight_count(&c->g);
    assert_int_equal(c->nw, (size_t)cc->co * (cc->ci / cc->g) * cc->k * cc->k);
    c->ny = (size_t)cc->N * cc->co * c->g.ho * c->g.wo;
    c->x = frand(c->nx, seed, -1, 1);
    c->w = frand(c->nw, seed + 1, -0.5f, 0.5f);
    c->b = cc->bias ? frand((size_t)cc->co, seed + 2, -0.5f, 0.5f) : NULL;
    c->y = fa(c->ny);
    c->r = frand(c->ny, seed + 3, -1, 1);
    c->scratch = fa(lt_conv2d_scratch_floats(&c->g, cc->N));
}

static void conv_free(conv_ctx *c) {
    lt_free(c->x); lt_free(c->w); lt_free(c->b); lt_free(c->y); lt_free(c->r);
    lt_free(c->scratch);
}

static double conv_loss(void *p) {
    conv_ctx *c = p;
    lt_conv2d_forward(&c->g, c->N, c->x, c->w, c->b, c->y, c->scratch);
    return gc_dot(c->y, c->r, c->ny);
}

/* Naive direct convolution in double: the 7-loop definition. */
static void conv_ref_forward(const lt_conv_geom *g, int N, const float *x, const float *w,
                             const float *b, double *y) {
    const int cig = g->ci / g->groups, cog = g->co / g->groups;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < g->co; o++)
            for (int oh = 0; oh < g->ho; oh++)
                for (int ow = 0; ow < g->wo; ow++) {
                    double s = b ? b[o] : 0.0;
                    const int gi = o / cog;
                    for (int c = 0; c < cig; c++)
                        for (int i = 0; i < g->kh; i++)
                            for (int j = 0; j < g->kw; j++) {
                                int ih = oh * g->stride - g->pad + i;
                                int iw = ow * g->stride - g->pad + j;
                                if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) continue;
                                s += (double)x[(((size_t)n * g->ci + gi * cig + c) * g->h + ih) *
                                                   g->w + iw] *
                                     w[(((size_t)o * cig + c) * g->kh + i) * g->kw + j];
                            }
                    y[(((size_t)n * g->co + o) * g->ho + oh) * g->wo + ow] = s;
                }
}

static void conv_ref_backward(const lt_conv_geom *g, int N, const float *x, const float *w,
                              const float *dy, double *dx, double *dw, double *db) {
    const int cig = g->ci / g->groups, cog = g->co / g->groups;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < g->co; o++)
            for (int oh = 0; oh < g->ho; oh++)
                for (int ow = 0; ow < g->wo; ow++) {
                    const double d = dy[(((size_t)n * g->co + o) * g->ho + oh) * g->wo + ow];
                    db[o] += d;
                    const int gi = o / cog;
                    for (int c = 0; c < cig; c++)
                        for (int i = 0; i < g->kh; i++)
                            for (int j = 0; j < g->kw; j++) {
                                int ih = oh * g->stride - g->pad + i;
                                int iw = ow * g->stride - g->pad + j;
                                if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) continue;
                                size_t xi = (((size_t)n * g->ci + gi * cig + c) * g->h + ih) *
                                                g->w + iw;
                                size_t wi = (((size_t)o * cig + c) * g->kh + i) * g->kw + j;
                                dx[xi] += d * w[wi];
                                dw[wi] += d * x[xi];
                            }
                }
}

static double max_abs_diff(const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

/* Geometries: stride 1/2, pad 0/1/3, kernel 1/3/7, groups 1/2/4 (depthwise),
 * with and without bias, batch 1 (the in-place paths) and >= 2 (batched). */
static const conv_case CONV_CASES[] = {
    {2, 3, 8, 8, 4, 3, 1, 1, 1, 1},   /* 3x3 s1 p1, bias */
    {2, 4, 7, 7, 6, 3, 2, 1, 2, 0},   /* groups 2, stride 2, odd size, no bias */
    {3, 4, 5, 5, 6, 3, 1, 0, 2, 1},   /* groups 2, pad 0, bias */
    {2, 4, 6, 6, 5, 1, 1, 0, 1, 1},   /* pointwise, batched path */
    {1, 4, 6, 6, 6, 1, 1, 0, 2, 0},   /* pointwise, one image: no im2col, in-place dx */
    {2, 4, 7, 7, 8, 1, 2, 0, 1, 0},   /* 1x1 stride 2 (option-B projection) */
    {2, 2, 11, 9, 4, 7, 2, 3, 1, 1},  /* 7x7 s2 p3 stem, non-square */
    {1, 3, 6, 6, 4, 3, 2, 1, 1, 1},   /* one image, 3x3 s2: in-place y/dy */
    {2, 4, 6, 6, 4, 3, 1, 1, 4, 0},   /* depthwise */
    {2, 3, 4, 5, 2, 3, 1, 2, 1, 1},   /* pad 2 with 3x3: all-padding border taps */
    /* the fast path's weight-gradient tiles: 3 channel vectors x 8 taps with
     * a partial last tap block (K = 45); 4 + 1 vectors (co 70) with the
     * 9-tap tile (K = 27); 2 vectors x 12 taps with fewer taps than a tile */
    {2, 5, 6, 6, 40, 3, 1, 1, 1, 0},
    {2, 3, 5, 5, 70, 3, 2, 1, 1, 1},
    {3, 1, 7, 7, 20, 3, 1, 1, 1, 0},
    /* rows wider than 16: a full 16 x 16 transpose block of dy plus a tail */
    {2, 3, 9, 21, 18, 3, 1, 1, 1, 1},
};
#define N_CONV_CASES (sizeof CONV_CASES / sizeof CONV_CASES[0])

/* The forward into c->y with scratch and output first filled with NaN (they
 * are caller memory with arbitrary contents: prove neither is read), the
 * naive forward into ref (c->ny doubles); returns max |y - ref|. */
static double conv_forward_vs_naive(conv_ctx *c, double *ref) {
    const size_t ns = lt_conv2d_scratch_floats(&c->g, c->N);
    for (size_t i = 0; i < ns; i++) c->scratch[i] = NAN;
    for (size_t i = 0; i < c->ny; i++) c->y[i] = NAN;
    lt_conv2d_forward(&c->g, c->N, c->x, c->w, c->b, c->y, c->scratch);
    conv_ref_forward(&c->g, c->N, c->x, c->w, c->b, ref);
    return max_abs_diff(c->y, ref, c->ny);
}

static void test_conv_forward_matches_naive(void **state) {
    (void)state;
    for (size_t t = 0; t < N_CONV_CASES; t++) {
        conv_ctx c;
        conv_setup(&c, &CONV_CASES[t], 100 + (unsigned)t);
        double *ref = test_calloc(c.ny, sizeof(double));
        double d = conv_forward_vs_naive(&c, ref);
        printf("note: conv fwd case %zu (ho=%d wo=%d) max|diff| = %.3g\n", t, c.g.ho, c.g.wo, d);
        assert_true(d < 1e-5);
        test_free(ref);
        conv_free(&c);
    }
}

static void test_conv_backward_matches_naive(void **state) {
    (void)state;
    for (size_t t = 0; t < N_CONV_CASES; t++) {
        conv_ctx c;
        conv_setup(&c, &CONV_CASES[t], 200 + (unsigned)t);
        const int co = CONV_CASES[t].co;
        float *dx = fa(c.nx), *dw = fa(c.nw), *db = fa((size_t)co);
        double *rdx = test_calloc(c.nx, sizeof(double)), *rdw = test_calloc(c.nw, sizeof(double));
        double *rdb = test_calloc((size_t)co, sizeof(double));
        lt_conv2d_backward(&c.g, c.N, c.x, c.w, c.r, dx, dw, db, c.scratch);
        conv_ref_backward(&c.g, c.N, c.x, c.w, c.r, rdx, rdw, rdb);
        double ex = max_abs_diff(dx, rdx, c.nx), ew = max_abs_diff(dw, rdw, c.nw);
        double eb = max_abs_diff(db, rdb, (size_t)co);
        printf("note: conv bwd case %zu max|diff| dx=%.3g dw=%.3g db=%.3g\n", t, ex, ew, eb);
        assert_true(ex < 1e-5);
        assert_true(ew < 1e-5);
        assert_true(eb < 1e-5);
        lt_free(dx); lt_free(dw); lt_free(db);
        test_free(rdx); test_free(rdw); test_free(rdb);
        conv_free(&c);
    }
}

/* max(1, max |v|): the scale a float result of that size is exact to */
static double max_abs(const double *v, size_t n) {
    double m = 1.0;
    for (size_t i = 0; i < n; i++) if (fabs(v[i]) > m) m = fabs(v[i]);
    return m;
}

/* Batches of several images per thread: the fast path writes a thread's
 * zero padding only for its first image and then only the data (and the
 * stride-2 rows go through the even/odd permute split and merge; outputs
 * with rows shorter than a vector are gathered 16 values at a time). Every
 * image must still match the naive convolution: rows wider than 32 (two
 * permute chunks), odd and even widths, pad 0 and 1, with 1 and 2 threads,
 * scratch and outputs starting as NaN, dx both set and accumulated. */
static void test_conv_many_images_per_thread(void **state) {
    (void)state;
    static const conv_case cases[] = {
        {7, 3, 9, 37, 5, 3, 2, 1, 1, 1},   /* 3x3 s2 p1, odd width > 32 */
        {6, 4, 10, 34, 6, 3, 2, 1, 1, 0},  /* 3x3 s2 p1, even width > 32 */
        {7, 2, 8, 34, 4, 1, 2, 0, 1, 0},   /* 1x1 s2 p0: one phase of four used */
        {5, 4, 10, 10, 6, 3, 1, 1, 1, 1},  /* 3x3 s1 p1 */
        {5, 3, 9, 40, 20, 3, 1, 1, 1, 0},  /* s1, width > 32, 2 channel vectors */
        {5, 3, 11, 13, 4, 7, 2, 3, 1, 1},  /* 7x7 s2 p3 (an ImageNet stem), odd sizes */
        /* small outputs (rows shorter than a vector: copy_out_short) */
        {11, 8, 14, 14, 16, 3, 2, 1, 1, 1},
        {9, 3, 8, 8, 5, 3, 1, 1, 1, 0},
    };
    const int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 2; threads++) {
        lt_set_num_threads(threads);
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            conv_ctx c;
            conv_setup(&c, &cases[t], 700 + (unsigned)t);
            const int co = cases[t].co;
            double *ref = test_calloc(c.ny, sizeof(double));
            double d = conv_forward_vs_naive(&c, ref);
            /* set: dx starts as NaN; accumulate: onto 1.0 everywhere */
            float *dx = fa(c.nx), *dx1 = fa(c.nx), *dw = fa(c.nw);
            for (size_t i = 0; i < c.nx; i++) { dx[i] = NAN; dx1[i] = 1.0f; }
            double *rdx = test_calloc(c.nx, sizeof(double)), *rdw = test_calloc(c.nw, sizeof(double));
            double *rdb = test_calloc((size_t)co, sizeof(double));
            conv_ref_backward(&c.g, c.N, c.x, c.w, c.r, rdx, rdw, rdb);
            lt_conv2d_backward_x(&c.g, c.N, c.x, c.w, c.r, dx, dw, NULL, c.scratch, 1);
            lt_conv2d_backward_x(&c.g, c.N, c.x, c.w, c.r, dx1, NULL, NULL, c.scratch, 0);
            double ex = max_abs_diff(dx, rdx, c.nx), ew = max_abs_diff(dw, rdw, c.nw), ea = 0;
            for (size_t i = 0; i < c.nx; i++) {
                const double e = fabs((double)dx1[i] - (1.0 + rdx[i]));
                if (!(e <= ea)) ea = e;   /* NaN-propagating max */
            }
            printf("note: conv %d thr case %zu (N=%d s%d %dx%d) fwd %.3g dx %.3g dx+= %.3g dw %.3g\n",
                   threads, t, c.N, c.g.stride, c.g.h, c.g.w, d, ex, ea, ew);
            /* float sums of up to ~2000 terms: bounds relative to the size of
             * the result (dw of case 4 is ~40 in magnitude) */
            assert_true(d < 2e-6 * max_abs(ref, c.ny));
            assert_true(ex < 2e-6 * max_abs(rdx, c.nx));
            assert_true(ea < 2e-6 * max_abs(rdx, c.nx));
            assert_true(ew < 2e-6 * max_abs(rdw, c.nw));
            lt_free(dx); lt_free(dx1); lt_free(dw);
            test_free(ref); test_free(rdx); test_free(rdw); test_free(rdb);
            conv_free(&c);
        }
    }
    lt_set_num_threads(saved);
}

static void test_conv_gradcheck(void **state) {
    (void)state;
    for (size_t t = 0; t < N_CONV_CASES; t++) {
        const conv_case *cc = &CONV_CASES[t];
        conv_ctx c;
        conv_setup(&c, cc, 300 + (unsigned)t);
        float *dx = fa(c.nx), *dw = fa(c.nw), *db = fa((size_t)cc->co);
        lt_conv2d_backward(&c.g, c.N, c.x, c.w, c.r, dx, dw, c.b ? db : NULL, c.scratch);
        char what[96];
        snprintf(what, sizeof what, "conv#%zu k%d s%d p%d g%d N%d dx", t, cc->k, cc->s, cc->p,
                 cc->g, cc->N);
        assert_int_equal(gc_check(what, conv_loss, &c, c.x, dx, c.nx, &LIN_TOL), 0);
        snprintf(what, sizeof what, "conv#%zu dw", t);
        assert_int_equal(gc_check(what, conv_loss, &c, c.w, dw, c.nw, &LIN_TOL), 0);
        if (c.b) {
            snprintf(what, sizeof what, "conv#%zu db", t);
            assert_int_equal(gc_check(what, conv_loss, &c, c.b, db, (size_t)cc->co, &LIN_TOL), 0);
        }
        lt_free(dx); lt_free(dw); lt_free(db);
        conv_free(&c);
    }
}

/* The forward and data-gradient loops let a thread that is done take
 * another's images (lt_conv_queue): the result must not depend on which
 * thread computes an image. With lt_conv_steal_first every chunk is taken
 * by a thread that does not own it, first (a thread's first chunk zeroes
 * its planes; under F(4x4) quads one chunk may use more plane slots than
 * the thread's first one did); outputs must equal the normal schedule's bit
 * for bit, with the scratch poisoned by NaN. Direct (stride 2), Winograd
 * on the grid, dense 4x4 tiles, several images per chunk and quads, at 2
 * and 3 threads, batches that split unevenly. */
static void test_conv_stolen_chunks(void **state) {
    (void)state;
    static const conv_case cases[] = {
        {7, 16, 14, 14, 24, 3, 2, 1, 1, 1},    /* direct, stride 2 */
        {5, 16, 28, 28, 16, 3, 1, 1, 1, 1},    /* F(4x4) grid */
        {9, 16, 14, 14, 16, 3, 1, 1, 1, 0},    /* F(4x4) dense, several images per chunk */
        {23, 16, 7, 7, 24, 3, 1, 1, 1, 1},     /* F(4x4) quads, partial quads */
        {13, 16, 8, 8, 16, 3, 1, 1, 1, 0},     /* quads */
        {26, 64, 7, 7, 64, 3, 1, 1, 1, 1},     /* quads, 12 images per chunk: 12 + 1 per thread */
        {6, 16, 11, 10, 16, 3, 1, 1, 1, 1},    /* F(2x2) grid */
    };
    const int saved = omp_get_max_threads();
    for (int threads = 2; threads <= 3; threads++) {
        lt_set_num_threads(threads);
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            conv_ctx c;
            conv_setup(&c, &cases[t], 1300 + (unsigned)t);
            const size_t ns = lt_conv2d_scratch_floats(&c.g, c.N);
            float *y[2], *dx[2];
            for (int mode = 0; mode < 2; mode++) {
                lt_conv_steal_first = mode;
                y[mode] = fa(c.ny);
                dx[mode] = fa(c.nx);
                for (size_t i = 0; i < ns; i++) c.scratch[i] = NAN;
                lt_conv2d_forward(&c.g, c.N, c.x, c.w, c.b, y[mode], c.scratch);
                for (size_t i = 0; i < ns; i++) c.scratch[i] = NAN;
                for (size_t i = 0; i < c.nx; i++) dx[mode][i] = NAN;
                lt_conv2d_backward_x(&c.g, c.N, c.x, c.w, c.r, dx[mode], NULL, NULL, c.scratch, 1);
            }
            lt_conv_steal_first = 0;
            for (size_t i = 0; i < c.ny; i++)
                if (!(y[0][i] == y[1][i])) fail_msg("case %zu thr %d: y[%zu] %g vs %g stolen", t, threads, i, y[0][i], y[1][i]);
            for (size_t i = 0; i < c.nx; i++)
                if (!(dx[0][i] == dx[1][i]))
                    fail_msg("case %zu thr %d: dx[%zu] %g vs %g stolen", t, threads, i, dx[0][i], dx[1][i]);
            for (int mode = 0; mode < 2; mode++) { lt_free(y[mode]); lt_free(dx[mode]); }
            conv_free(&c);
        }
    }
    lt_set_num_threads(saved);
}

/* The direct forward vectorised over output channels (lt_conv_cv_mode) sums
 * each output in the grid kernel's order: bit for bit the same outputs,
 * with bias, the BN / residual / ReLU epilogue (a residual on a channel
 * range too), 1..5 channel vectors (two blocks at 80), positions that do not
 * fill the last register tile, and against the naive convolution. */
static void test_conv_channel_vectorised(void **state) {
    (void)state;
    if (lt_conv_isa() != LT_CONV_ISA_AVX512) {
        printf("skip: no AVX-512: the channel-vectorised kernel is not used on this machine\n");
        skip();
    }
    static const conv_case cases[] = {
        {5, 32, 14, 14, 64, 3, 2, 1, 1, 1},   /* ResNet-8's 7x7 stride-2 layer */
        {3, 16, 16, 16, 32, 3, 2, 1, 1, 0},   /* 8x8 */
        {4, 7, 13, 11, 48, 3, 2, 1, 1, 1},    /* 7x6, 3 vectors */
        {3, 5, 9, 9, 80, 3, 2, 1, 1, 0},      /* 5x5, 5 vectors: two channel blocks */
        {2, 3, 10, 10, 16, 3, 1, 1, 1, 1},    /* stride 1, 1 vector, 100 positions */
        {2, 6, 9, 9, 32, 5, 2, 2, 1, 1},      /* 5x5 kernel */
    };
    const int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 2; threads++) {
        lt_set_num_threads(threads);
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            conv_ctx c;
            conv_setup(&c, &cases[t], 1400 + (unsigned)t);
            const int co = cases[t].co;
            float *mu = frand((size_t)co, 1500 + (unsigned)t, -0.5f, 0.5f);
            float *ea = frand((size_t)co, 1510 + (unsigned)t, 0.5f, 1.5f);
            float *eb = frand((size_t)co, 1520 + (unsigned)t, -0.5f, 0.5f);
            float *res = frand(c.ny, 1530 + (unsigned)t, -1, 1);
            double *ref = test_calloc(c.ny, sizeof(double));
            lt_conv_cv_mode(2);
            double d = conv_forward_vs_naive(&c, ref);
            lt_conv_cv_mode(1);
            for (int e = 0; e < 4; e++) {
                /* no epilogue; BN + ReLU; + residual; + residual on the middle channels */
                lt_conv_epilogue ep = {mu, ea, eb, e != 0, e >= 2 ? res : NULL, e == 3 ? co / 4 : 0, e == 3 ? 3 * co / 4 : 0};
                float *y[2];
                for (int mode = 0; mode < 2; mode++) {
                    lt_conv_cv_mode(mode == 0 ? 0 : 2);
                    y[mode] = fa(c.ny);
                    for (size_t i = 0; i < c.ny; i++) y[mode][i] = NAN;
                    lt_conv2d_forward_ep(&c.g, c.N, c.x, c.w, c.b, y[mode], c.scratch, e ? &ep : NULL);
                }
                lt_conv_cv_mode(1);
                for (size_t i = 0; i < c.ny; i++)
                    if (!(y[0][i] == y[1][i]))
                        fail_msg("case %zu ep %d thr %d: y[%zu] grid %g, channel-vectorised %g", t, e, threads, i, y[0][i],
                                 y[1][i]);
                lt_free(y[0]);
                lt_free(y[1]);
            }
            printf("note: channel-vectorised conv case %zu thr %d: max|diff| vs naive %.3g\n", t, threads, d);
            assert_true(d < 2e-6 * max_abs(ref, c.ny));
            test_free(ref);
            lt_free(mu); lt_free(ea); lt_free(eb); lt_free(res);
            conv_free(&c);
        }
    }
    lt_set_num_threads(saved);
}

/* Winograd F(2x2, 3x3) (lt_conv_wino.c), the fast path's forward and data
 * gradient of 3x3 stride-1 pad-1 convolutions, forced on (mode 2) for every
 * shape: against the naive double convolution and against the direct
 * kernel, on shapes that exercise odd and even sizes, partial 8-row blocks,
 * several 48-tile chunks per image (40x40) and small images; with NaN-filled
 * scratch and outputs, so nothing stale is read; dx set and accumulate; and
 * finite differences through the Winograd forward. Then the default rule
 * (mode 1) picks the layers it was measured to speed up. */
static void test_conv_winograd(void **state) {
    (void)state;
    if (lt_conv_isa() != LT_CONV_ISA_AVX512) {
        printf("skip: no AVX-512: the Winograd path is not used on this machine\n");
        skip();
    }
    static const conv_case cases[] = {
        {2, 3, 16, 16, 5, 3, 1, 1, 1, 1},    /* 64 tiles: forward and dgrad by Winograd */
        {2, 9, 13, 15, 11, 3, 1, 1, 1, 0},   /* odd sizes, 9 / 11 channels (partial blocks) */
        {1, 8, 40, 40, 8, 3, 1, 1, 1, 1},    /* 400 tiles: several chunks */
        {3, 16, 7, 7, 24, 3, 1, 1, 1, 0},    /* 16 tiles per image */
        {2, 32, 16, 16, 40, 3, 1, 1, 1, 1},  /* a ResNet-32 stage-2 shape, 40 rows */
        /* small images share a chunk (G = 80 / 20 = 4, 80 / 8 = 10; at 32
         * + 32 channels 144 / 56 = 2), with a last, partial group */
        {7, 5, 8, 8, 6, 3, 1, 1, 1, 1},
        {9, 4, 3, 5, 3, 3, 1, 1, 1, 0},
        {5, 32, 14, 14, 32, 3, 1, 1, 1, 0},
        /* F(4x4): rows wider than one 64-column block, odd widths */
        {2, 3, 9, 70, 5, 3, 1, 1, 1, 1},
        {3, 17, 6, 5, 18, 3, 1, 1, 1, 0},
        /* F(4x4) quads: 21 images per thread at 64 + 64 channels (G = 12):
         * planes slots reused with only the data written, a partial quad */
        {42, 64, 8, 8, 64, 3, 1, 1, 1, 0},
        /* F(4x4) on the grid with rows of 17..32 (two phases per permute,
         * whole-vector plane rows and output runs) and two images per chunk */
        {5, 16, 28, 28, 16, 3, 1, 1, 1, 1},
        /* grids 8 tiles wide (25..28) take the fused output transform +
         * store under F(4x4) (several images per chunk; one image in one
         * chunk at 24 channels; at 48 two chunks per image, not fused):
         * ragged last tile row and column */
        {3, 9, 27, 26, 7, 3, 1, 1, 1, 1},
        {2, 24, 25, 28, 24, 3, 1, 1, 1, 0},
        {2, 48, 25, 28, 48, 3, 1, 1, 1, 1},
    };
    const size_t nc = sizeof cases / sizeof cases[0];
    for (size_t tt = 0; tt < 2 * nc; tt++) {
        const size_t t = tt % nc;
        const int m = tt < nc ? 2 : 4;
        const conv_case *cc = &cases[t];
        conv_ctx c;
        conv_setup(&c, cc, 900 + (unsigned)t);
        /* what a cpu backend {LT_CONV_PATH_WINO, wino_tile m} gives its layers */
        c.g.path = LT_CONV_PATH_WINO;
        c.g.wino_tile = m;
        assert_true(lt_conv_wino_applies(&c.g));
        const size_t ns = lt_conv2d_scratch_floats(&c.g, c.N);
        double *ref = test_calloc(c.ny, sizeof(double));
        const double ef = conv_forward_vs_naive(&c, ref);
        float *yd = fa(c.ny);
        c.g.path = LT_CONV_PATH_DIRECT;
        lt_conv2d_forward(&c.g, c.N, c.x, c.w, c.b, yd, c.scratch);
        c.g.path = LT_CONV_PATH_WINO;
        double ed = 0;
        for (size_t i = 0; i < c.ny; i++) ed = lt_tmax(ed, fabs((double)c.y[i] - yd[i]));   /* keeps a NaN */
        /* data gradient, set and accumulate */
        float *dx = fa(c.nx), *dx2 = fa(c.nx), *dxd = fa(c.nx);
        for (size_t i = 0; i < c.nx; i++) { dx[i] = NAN; dx2[i] = 0.25f; }
        for (size_t i = 0; i < ns; i++) c.scratch[i] = NAN;
        lt_conv2d_backward_x(&c.g, c.N, c.x, c.w, c.r, dx, NULL, NULL, c.scratch, 1);
        lt_conv2d_backward_x(&c.g, c.N, c.x, c.w, c.r, dx2, NULL, NULL, c.scratch, 0);
        c.g.path = LT_CONV_PATH_DIRECT;
        lt_conv2d_backward_x(&c.g, c.N, c.x, c.w, c.r, dxd, NULL, NULL, c.scratch, 1);
        c.g.path = LT_CONV_PATH_WINO;
        double *rdx = test_calloc(c.nx, sizeof(double)), *rdw = test_calloc(c.nw, sizeof(double));
        double *rdb = test_calloc((size_t)cc->co, sizeof(double));
        conv_ref_backward(&c.g, c.N, c.x, c.w, c.r, rdx, rdw, rdb);
        const double ex = max_abs_diff(dx, rdx, c.nx);
        double exd = 0;
        for (size_t i = 0; i < c.nx; i++) {
            exd = lt_tmax(exd, fabs((double)dx[i] - dxd[i]));   /* keeps a NaN: fails below */
            if (!(dx2[i] == 0.25f + dx[i])) fail_msg("case %zu: accumulated dx[%zu] = %g, set %g", t, i, dx2[i], dx[i]);
        }
        printf("note: winograd F(%dx%d) case %zu (%dx%d, %d->%d): max|diff| vs naive fwd %.3g dx %.3g, vs direct fwd %.3g dx %.3g\n",
               m, m, t, cc->h, cc->w, cc->ci, cc->co, ef, ex, ed, exd);
        /* a few float roundings more than direct summation: bound it
         * relative to the outputs' size (sums of ci*9 products grow with ci) */
        double sy = 1, sx = 1;
        for (size_t i = 0; i < c.ny; i++) sy = fmax(sy, fabs(ref[i]));
        for (size_t i = 0; i < c.nx; i++) sx = fmax(sx, fabs(rdx[i]));
        printf("note:   relative to max|y| %.3g, max|dx| %.3g: %.2g %.2g %.2g %.2g\n", sy, sx, ef / sy, ex / sx,
               ed / sy, exd / sx);
        const double tol = m == 2 ? 1e-6 : 1e-5;
        assert_true(ef < tol * sy && ex < tol * sx && ed < 2 * tol * sy && exd < 2 * tol * sx);
        /* weight gradient (F(3x3, 2x2)), accumulated onto 0.5 */
        {
            float *dwv = fa(c.nw);
            for (size_t i = 0; i < c.nw; i++) dwv[i] = 0.5f;
            for (size_t i = 0; i < ns; i++) c.scratch[i] = NAN;
            lt_conv2d_backward_x(&c.g, c.N, c.x, c.w, c.r, NULL, dwv, NULL, c.scratch, 1);
            double ew = 0, sw = 1;
            for (size_t i = 0; i < c.nw; i++) {
                const double e = fabs((double)dwv[i] - 0.5 - rdw[i]);
                if (!(e <= ew)) ew = e;
                sw = fmax(sw, fabs(rdw[i]));
            }
            printf("note:   weight gradient max|diff| vs naive %.3g, relative to max|dw| %.3g: %.2g\n", ew, sw, ew / sw);
            assert_true(ew < (m == 2 ? 2e-6 : 1e-5) * sw);
            lt_free(dwv);
        }
        if (t == 0 || (m == 4 && t == 1)) {
            float *gdx = fa(c.nx);
            lt_conv2d_backward(&c.g, c.N, c.x, c.w, c.r, gdx, NULL, NULL, c.scratch);
            /* the loss is linear in x and w, so a wider step costs no
             * truncation error and keeps F(4x4)'s larger forward rounding
             * (~1e-6 of |y|) out of the difference quotient */
            const gc_opts *tol_gc = m == 2 ? &LIN_TOL : &WINO4_GC;
            assert_int_equal(gc_check("winograd conv dx", conv_loss, &c, c.x, gdx, c.nx, tol_gc), 0);
            float *gdw = fa(c.nw);
            lt_conv2d_backward(&c.g, c.N, c.x, c.w, c.r, NULL, gdw, NULL, c.scratch);
            assert_int_equal(gc_check("winograd conv dw", conv_loss, &c, c.w, gdw, c.nw, tol_gc), 0);
            lt_free(gdx);
            lt_free(gdw);
        }
        test_free(ref); test_free(rdx); test_free(rdw); test_free(rdb);
        lt_free(yd); lt_free(dx); lt_free(dx2); lt_free(dxd);
        conv_free(&c);
    }
    /* the default rule (engine 0.6.0): every pass from 16 channels on both
     * sides; F(4x4) for forward and data gradient on 2 x 2 tiles (5..8 a
     * side), 4 x 4 tiles (13..16) and larger images whose sides are
     * multiples of 4, F(2x2) otherwise; the weight gradient F(3x3, 4x4) from
     * 7 a side, F(3x3, 2x2) below */
    static const struct { int ci, co, hw, k, s, fwd, dgrad, wgrad, tile; } rule[] = {
        {1, 16, 28, 3, 1, 0, 0, 0, 4},  {3, 16, 32, 3, 1, 0, 0, 0, 4},  {16, 16, 32, 3, 1, 1, 1, 1, 4},
        {16, 16, 28, 3, 1, 1, 1, 1, 4}, {32, 32, 16, 3, 1, 1, 1, 1, 4}, {32, 32, 14, 3, 1, 1, 1, 1, 4},
        {64, 64, 8, 3, 1, 1, 1, 1, 4},  {64, 64, 7, 3, 1, 1, 1, 1, 4},  {16, 32, 8, 3, 1, 1, 1, 1, 4},
        {64, 64, 4, 3, 1, 1, 1, 1, 2},  {64, 64, 10, 3, 1, 1, 1, 1, 2},
        {8, 16, 32, 3, 1, 0, 0, 0, 4},  {32, 64, 16, 3, 2, 0, 0, 0, 4}, {64, 64, 8, 1, 1, 0, 0, 0, 4},
        {32, 32, 17, 3, 1, 1, 1, 1, 2}, {32, 32, 20, 3, 1, 1, 1, 1, 4}, {32, 32, 12, 3, 1, 1, 1, 1, 2},
    };
    for (size_t i = 0; i < sizeof rule / sizeof rule[0]; i++) {
        lt_conv_geom g;
        assert_int_equal(lt_conv_geom_init(&g, rule[i].ci, rule[i].hw, rule[i].hw, rule[i].co, rule[i].k, rule[i].k,
                                           rule[i].s, rule[i].k / 2, 1), LT_OK);
        g.path = LT_CONV_PATH_AUTO;
        assert_int_equal(lt_conv_wino_pays(&g, LT_WINO_FWD), rule[i].fwd);
        assert_int_equal(lt_conv_wino_pays(&g, LT_WINO_DGRAD), rule[i].dgrad);
        assert_int_equal(lt_conv_wino_pays(&g, LT_WINO_WGRAD), rule[i].wgrad);
        assert_int_equal(lt_conv_wino_tile(&g, LT_WINO_FWD), rule[i].tile);
        assert_int_equal(lt_conv_wino_tile(&g, LT_WINO_DGRAD), rule[i].tile);
        assert_int_equal(lt_conv_wino_tile(&g, LT_WINO_WGRAD), rule[i].hw >= 7 ? 4 : 2);
    }
    /* the other paths: direct and reference never, forced on the stems too */
    lt_conv_geom g;
    assert_int_equal(lt_conv_geom_init(&g, 32, 16, 16, 32, 3, 3, 1, 1, 1), LT_OK);
    g.path = LT_CONV_PATH_DIRECT;
    assert_int_equal(lt_conv_wino_pays(&g, LT_WINO_DGRAD), 0);
    assert_int_equal(lt_conv_fast_active(&g), 1);
    g.path = LT_CONV_PATH_REF;
    assert_int_equal(lt_conv_wino_pays(&g, LT_WINO_FWD), 0);
    assert_int_equal(lt_conv_fast_active(&g), 0);
    assert_int_equal(lt_conv_geom_init(&g, 3, 16, 16, 16, 3, 3, 1, 1, 1), LT_OK);
    g.path = LT_CONV_PATH_WINO;
    assert_int_equal(lt_conv_wino_pays(&g, LT_WINO_FWD), 1);
    g.wino_tile = 2;
    assert_int_equal(lt_conv_wino_tile(&g, LT_WINO_WGRAD), 2);
}

/* The AVX2 kernels (lt_conv_avx2.c) sum every output in the AVX-512 direct
 * kernels' order: on a CPU with both, every pass of the direct path is bit
 * for bit the same with the kernels capped at AVX2 (lt_conv_isa_cap) as
 * with the AVX-512 ones (grid and channel-vectorised forward, stride 1, 2
 * and 7x7 stems, tails of 1..23 grid points, 1..8 output rows of a block,
 * 1 and 2 threads, dx set and accumulated, dw accumulated). Where the CPU
 * has only AVX2, the tests above check those kernels against the naive
 * convolution; here there is nothing to compare with. */
static void test_conv_avx2_matches_avx512(void **state) {
    (void)state;
    if (lt_conv_isa() != LT_CONV_ISA_AVX512) {
        printf("skip: no AVX-512 on this CPU: the AVX2 kernels (the path here: %s) have no AVX-512 twin to match\n",
               lt_conv_isa() == LT_CONV_ISA_AVX2 ? "avx2-direct" : "im2col-sgemm");
        skip();
    }
    static const conv_case cases[] = {
        {2, 3, 8, 8, 4, 3, 1, 1, 1, 1},      /* 4 output rows: one half block */
        {3, 5, 6, 6, 40, 3, 1, 1, 1, 0},     /* 5 row blocks */
        {2, 3, 5, 5, 70, 3, 2, 1, 1, 1},     /* 70 channels: a partial block and half */
        {5, 16, 14, 14, 32, 3, 2, 1, 1, 1},  /* 7x7 outputs: channel-vectorised on AVX-512 */
        {4, 16, 16, 16, 16, 3, 1, 1, 1, 0},  /* a ResNet-32 stage-1 layer */
        {3, 7, 9, 37, 6, 3, 2, 1, 1, 1},     /* odd width, stride 2 */
        {3, 2, 11, 13, 5, 7, 2, 3, 1, 0},    /* 7x7 s2 p3 stem */
        {3, 8, 8, 34, 12, 1, 2, 0, 1, 1},    /* 1x1 stride 2 */
        {2, 9, 3, 4, 7, 3, 1, 1, 1, 1},      /* grids under one vector */
    };
    const int saved = omp_get_max_threads();
    for (int threads = 1; threads <= 2; threads++) {
        lt_set_num_threads(threads);
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            conv_ctx c;
            conv_setup(&c, &cases[t], 1600 + (unsigned)t);
            c.g.path = LT_CONV_PATH_DIRECT;
            const size_t ns = lt_conv2d_scratch_floats(&c.g, c.N);
            /* y; dx set (from NaN); dx accumulated onto 0.25 and exact -0
             * (the AVX-512 stride-2 merge adds an unused phase's +0: the
             * AVX2 path must too); dw accumulated onto 0.25 */
            float *y[2], *dxs[2], *dxa[2], *dw[2];
            for (int k = 0; k < 2; k++) {
                lt_conv_isa_cap(k == 0 ? -1 : LT_CONV_ISA_AVX2);
                assert_int_equal(lt_conv_isa(), k == 0 ? LT_CONV_ISA_AVX512 : LT_CONV_ISA_AVX2);
                assert_true(lt_conv_fast_active(&c.g));
                y[k] = fa(c.ny); dxs[k] = fa(c.nx); dxa[k] = fa(c.nx); dw[k] = fa(c.nw);
                for (size_t i = 0; i < ns; i++) c.scratch[i] = NAN;
                for (size_t i = 0; i < c.ny; i++) y[k][i] = NAN;
                for (size_t i = 0; i < c.nx; i++) { dxs[k][i] = NAN; dxa[k][i] = i % 3 ? 0.25f : -0.0f; }
                for (size_t i = 0; i < c.nw; i++) dw[k][i] = 0.25f;
                lt_conv2d_forward(&c.g, c.N, c.x, c.w, c.b, y[k], c.scratch);
                lt_conv2d_backward_x(&c.g, c.N, c.x, c.w, c.r, dxs[k], dw[k], NULL, c.scratch, 1);
                lt_conv2d_backward_x(&c.g, c.N, c.x, c.w, c.r, dxa[k], NULL, NULL, c.scratch, 0);
            }
            lt_conv_isa_cap(-1);
            size_t nd[4] = {0, 0, 0, 0};
            for (size_t i = 0; i < c.ny; i++) nd[0] += memcmp(&y[0][i], &y[1][i], sizeof(float)) != 0;
            for (size_t i = 0; i < c.nx; i++) nd[1] += memcmp(&dxs[0][i], &dxs[1][i], sizeof(float)) != 0;
            for (size_t i = 0; i < c.nx; i++) nd[2] += memcmp(&dxa[0][i], &dxa[1][i], sizeof(float)) != 0;
            for (size_t i = 0; i < c.nw; i++) nd[3] += memcmp(&dw[0][i], &dw[1][i], sizeof(float)) != 0;
            double s = 0;
            for (size_t i = 0; i < c.ny; i++) s += fabs(y[1][i]);
            /* every output written, and to numbers: y and the set dx start
             * as NaN, so two paths that both left them would compare equal */
            size_t nonfinite = 0;
            for (size_t i = 0; i < c.ny; i++) nonfinite += !isfinite(y[1][i]);
            for (size_t i = 0; i < c.nx; i++) nonfinite += !isfinite(dxs[1][i]) + !isfinite(dxa[1][i]);
            for (size_t i = 0; i < c.nw; i++) nonfinite += !isfinite(dw[1][i]);
            assert_int_equal(nonfinite, 0);
            printf("note: avx2 vs avx512 direct, case %zu thr %d: %zu y, %zu dx, %zu dx+=, %zu dw of %zu, %zu, %zu, %zu "
                   "differ in any bit\n", t, threads, nd[0], nd[1], nd[2], nd[3], c.ny, c.nx, c.nx, c.nw);
            assert_true(s > 0);
            assert_int_equal(nd[0] + nd[1] + nd[2] + nd[3], 0);
            for (int k = 0; k < 2; k++) { lt_free(y[k]); lt_free(dxs[k]); lt_free(dxa[k]); lt_free(dw[k]); }
            conv_free(&c);
        }
    }
    lt_set_num_threads(saved);
}

/* Which kernels a geometry takes under each ISA the CPU offers (capped with
 * lt_conv_isa_cap): the direct path wherever there are AVX2 or AVX-512
 * kernels, Winograd (even forced) and the channel-vectorised forward only
 * with AVX-512 (their kernels are AVX-512 code), im2col + sgemm without
 * either. Runs on any CPU, for the ISAs it has. */
static void test_conv_paths_by_isa(void **state) {
    (void)state;
    const lt_conv_isa_kind cpu = lt_conv_isa();
    lt_conv_geom g;
    assert_int_equal(lt_conv_geom_init(&g, 32, 16, 16, 32, 3, 3, 1, 1, 1), LT_OK);
    for (int cap = LT_CONV_ISA_NONE; cap <= (int)cpu; cap++) {
        lt_conv_isa_cap(cap);
        for (lt_conv_path p = LT_CONV_PATH_AUTO; p <= LT_CONV_PATH_WINO; p++) {
            g.path = p;
            assert_int_equal(lt_conv_fast_active(&g), cap != LT_CONV_ISA_NONE && p != LT_CONV_PATH_REF);
            const int wino = cap == LT_CONV_ISA_AVX512 && (p == LT_CONV_PATH_AUTO || p == LT_CONV_PATH_WINO);
            assert_int_equal(lt_conv_wino_pays(&g, LT_WINO_FWD), wino);
            assert_int_equal(lt_conv_wino_pays(&g, LT_WINO_WGRAD), wino);
        }
        /* and the layer computes the convolution under that cap */
        const conv_case cc = {3, 5, 14, 14, 16, 3, 2, 1, 1, 1};   /* 7x7 outputs: cv's shape on AVX-512 */
        conv_ctx c;
        conv_setup(&c, &cc, 1800);
        double *ref = test_calloc(c.ny, sizeof(double));
        const double d = conv_forward_vs_naive(&c, ref);
        printf("note: kernels capped at %s: conv fwd max|diff| vs naive %.3g\n",
               cap == LT_CONV_ISA_AVX512 ? "AVX-512" : cap == LT_CONV_ISA_AVX2 ? "AVX2" : "none", d);
        assert_true(d < 2e-6 * max_abs(ref, c.ny));
        test_free(ref);
        conv_free(&c);
    }
    lt_conv_isa_cap(-1);
    assert_int_equal(lt_conv_isa(), cpu);
}

/* A stride-2 1x1 convolution reaches only even rows and columns of x. When
 * the data gradient accumulates, the direct path adds +0 to the others
 * (AVX-512: the even / odd merge adds the unused phases' zeros; AVX2: the
 * phase loop does the same on purpose), so an exact -0 there becomes +0 on
 * both ISAs: the bits test_conv_avx2_matches_avx512 compares. */
static void test_conv_unreached_dx_gets_plus_zero(void **state) {
    (void)state;
    const conv_case cc = {2, 3, 6, 9, 4, 1, 2, 0, 1, 0};
    conv_ctx c;
    conv_setup(&c, &cc, 1700);
    c.g.path = LT_CONV_PATH_DIRECT;
    if (!lt_conv_fast_active(&c.g)) {
        conv_free(&c);
        printf("skip: no direct convolution path on this CPU (im2col + sgemm adds nothing to unreached dx)\n");
        skip();
    }
    float *dx = fa(c.nx);
    for (size_t i = 0; i < c.nx; i++) dx[i] = -0.0f;
    lt_conv2d_backward_x(&c.g, c.N, c.x, c.w, c.r, dx, NULL, NULL, c.scratch, 0);
    size_t unreached = 0;
    for (size_t i = 0; i < c.nx; i++) {
        const int w = (int)(i % (size_t)cc.w), h = (int)(i / (size_t)cc.w % (size_t)cc.h);
        if (h % 2 == 0 && w % 2 == 0) continue;
        unreached++;
        if (!(dx[i] == 0.0f && !signbit(dx[i]))) fail_msg("dx[%zu] (h %d, w %d) is %g, sign %d", i, h, w, dx[i], !!signbit(dx[i]));
    }
    printf("note: %zu unreached dx elements accumulated from -0 are +0 (%s)\n", unreached,
           lt_conv_isa() == LT_CONV_ISA_AVX512 ? "AVX-512" : "AVX2");
    assert_true(unreached > 0);
    lt_free(dx);
    conv_free(&c);
}

/* Backward adds into dx/dw/db, and a NULL gradient is skipped without
 * changing the others. */
static void test_conv_accumulates_and_null(void **state) {
    (void)state;
    const conv_case cc = {2, 4, 7, 7, 6, 3, 2, 1, 2, 1};
    conv_ctx c;
    conv_setup(&c, &cc, 400);
    float *dx = fa(c.nx), *dw = fa(c.nw), *db = fa(6);
    float *dx2 = fa(c.nx), *dw2 = fa(c.nw), *db2 = fa(6);
    lt_conv2d_backward(&c.g, c.N, c.x, c.w, c.r, dx, dw, db, c.scratch);
    for (size_t i = 0; i < c.nx; i++) dx2[i] = 1.0f;
    for (size_t i = 0; i < c.nw; i++) dw2[i] = -2.0f;
    for (int i = 0; i < 6; i++) db2[i] = 0.5f;
    lt_conv2d_backward(&c.g, c.N, c.x, c.w, c.r, dx2, dw2, db2, c.scratch);
    for (size_t i = 0; i < c.nx; i++) assert_float_equal(dx2[i], dx[i] + 1.0f, 1e-5);
    for (size_t i = 0; i < c.nw; i++) assert_float_equal(dw2[i], dw[i] - 2.0f, 1e-5);
    for (int i = 0; i < 6; i++) assert_float_equal(db2[i], db[i] + 0.5f, 1e-5);
    /* each gradient alone equals the all-at-once result */
    memset(dx2, 0, sizeof(float) * c.nx);
    memset(dw2, 0, sizeof(float) * c.nw);
    memset(db2, 0, sizeof(float) * 6);
    lt_conv2d_backward(&c.g, c.N, c.x, c.w, c.r, dx2, NULL, NULL, c.scratch);
    lt_conv2d_backward(&c.g, c.N, c.x, c.w, c.r, NULL, dw2, NULL, c.scratch);
    lt_conv2d_backward(&c.g, c.N, c.x, c.w, c.r, NULL, NULL, db2, c.scratch);
    assert_memory_equal(dx2, dx, sizeof(float) * c.nx);
    assert_memory_equal(dw2, dw, sizeof(float) * c.nw);
    assert_memory_equal(db2, db, sizeof(float) * 6);
    lt_free(dx); lt_free(dw); lt_free(db); lt_free(dx2); lt_free(dw2); lt_free(db2);
    conv_free(&c);
}

/* set_dx = 1 overwrites dx (whatever it held, NaN here) with exactly what
 * accumulating into zeros gives; positions no output reaches (1x1 stride 2)
 * become 0. Also the element-wise and BN kernels' overwrite switches. */
static void test_backward_set_mode(void **state) {
    (void)state;
    for (size_t t = 0; t < N_CONV_CASES; t++) {
        conv_ctx c;
        conv_setup(&c, &CONV_CASES[t], 600 + (unsigned)t);
        float *acc = fa(c.nx), *set = fa(c.nx);
        for (size_t i = 0; i < c.nx; i++) set[i] = NAN;
        lt_conv2d_backward_x(&c.g, c.N, c.x, c.w, c.r, acc, NULL, NULL, c.scratch, 0);
        lt_conv2d_backward_x(&c.g, c.N, c.x, c.w, c.r, set, NULL, NULL, c.scratch, 1);
        for (size_t i = 0; i < c.nx; i++)
            if (!(acc[i] == set[i])) fail_msg("conv case %zu: dx[%zu] %g (set) vs %g", t, i, set[i], acc[i]);
        lt_free(acc); lt_free(set);
        conv_free(&c);
    }
    enum { N = 3, C = 4, HW = 5, n = N * C * HW };
    float x[n], y[n], dy[n], a0[n], a1[n], b0[n], b1[n], gam[C], mean[C], rstd[C], rv[C];
    gc_fill(x, n, 1, -1, 1);
    gc_fill(dy, n, 2, -1, 1);
    gc_fill(gam, C, 3, 0.5f, 1.5f);
    gc_fill(mean, C, 4, -0.2f, 0.2f);
    gc_fill(rstd, C, 5, 0.5f, 2.0f);
    gc_fill(rv, C, 6, 0.5f, 2.0f);
    for (int i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
    for (int i = 0; i < n; i++) { a0[i] = 0; a1[i] = NAN; }
    lt_relu_backward_x(n, y, dy, a0, 0);
    lt_relu_backward_x(n, y, dy, a1, 1);
    assert_memory_equal(a0, a1, sizeof a0);
    for (int i = 0; i < n; i++) { a0[i] = 0; a1[i] = NAN; b0[i] = b1[i] = 1.0f; }
    lt_add_backward_x(n, dy, a0, 0, b0, 0);
    lt_add_backward_x(n, dy, a1, 1, b1, 0);
    assert_memory_equal(a0, a1, sizeof a0);
    assert_memory_equal(b0, b1, sizeof b0);
    /* y = a + a: set then add on the same buffer gives 2 dy */
    for (int i = 0; i < n; i++) a1[i] = NAN;
    lt_add_backward_x(n, dy, a1, 1, a1, 0);
    for (int i = 0; i < n; i++) assert_true(a1[i] == dy[i] + dy[i]);
    for (int i = 0; i < n; i++) { a0[i] = 0; a1[i] = NAN; }
    lt_bn_backward_train_x(N, C, HW, x, gam, mean, rstd, dy, a0, NULL, NULL, 0);
    lt_bn_backward_train_x(N, C, HW, x, gam, mean, rstd, dy, a1, NULL, NULL, 1);
    for (int i = 0; i < n; i++) assert_true(a0[i] == a1[i]);
    for (int i = 0; i < n; i++) { a0[i] = 0; a1[i] = NAN; }
    lt_bn_backward_eval_x(N, C, HW, x, gam, mean, rv, 1e-5f, dy, a0, NULL, NULL, 0);
    lt_bn_backward_eval_x(N, C, HW, x, gam, mean, rv, 1e-5f, dy, a1, NULL, NULL, 1);
    for (int i = 0; i < n; i++) assert_true(a0[i] == a1[i]);
}

/* Two full forward+backward runs of a layer big enough to use OpenMP and
 * multi-threaded sgemm produce bit-identical outputs and gradients. */
static void test_conv_deterministic(void **state) {
    (void)state;
    const conv_case cases[] = {
        {8, 16, 16, 16, 16, 3, 1, 1, 1, 0},
        {8, 16, 16, 16, 32, 3, 2, 1, 1, 1},
        {8, 32, 8, 8, 32, 1, 1, 0, 2, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        conv_ctx c;
        conv_setup(&c, &cases[t], 500 + (unsigned)t);
        float *out[2][4];
        for (int run = 0; run < 2; run++) {
            float *y = fa(c.ny), *dx = fa(c.nx), *dw = fa(c.nw), *db = fa((size_t)cases[t].co);
            memset(c.scratch, 0xff, sizeof(float) * lt_conv2d_scratch_floats(&c.g, c.N));
            lt_conv2d_forward(&c.g, c.N, c.x, c.w, c.b, y, c.scratch);
            lt_conv2d_backward(&c.g, c.N, c.x, c.w, c.r, dx, dw, db, c.scratch);
            out[run][0] = y; out[run][1] = dx; out[run][2] = dw; out[run][3] = db;
        }
        assert_memory_equal(out[0][0], out[1][0], sizeof(float) * c.ny);
        assert_memory_equal(out[0][1], out[1][1], sizeof(float) * c.nx);
        assert_memory_equal(out[0][2], out[1][2], sizeof(float) * c.nw);
        assert_memory_equal(out[0][3], out[1][3], sizeof(float) * (size_t)cases[t].co);
        double s = 0;
        for (size_t i = 0; i < c.nw; i++) s += fabs(out[0][2][i]);
        assert_true(s > 0);   /* something was actually computed */
        for (int run = 0; run < 2; run++)
            for (int k = 0; k < 4; k++) lt_free(out[run][k]);
        conv_free(&c);
    }
    printf("note: conv determinism checked with %d threads\n", lt_num_threads());
}

static void test_conv_geom(void **state) {
    (void)state;
    lt_conv_geom g;
    assert_int_equal(lt_conv_geom_init(&g, 3, 32, 32, 16, 3, 3, 1, 1, 1), LT_OK);
    assert_int_equal(g.ho, 32);
    assert_int_equal(g.wo, 32);
    assert_int_equal(lt_conv2d_weight_count(&g), 16 * 3 * 9);
    assert_true(lt_conv2d_scratch_floats(&g, 4) >= (size_t)27 * 4 * 1024);
    assert_int_equal(lt_conv_geom_init(&g, 64, 224, 224, 64, 7, 7, 2, 3, 1), LT_OK);
    assert_int_equal(g.ho, 112);
    assert_int_equal(lt_conv_geom_init(&g, 16, 32, 31, 32, 3, 3, 2, 1, 1), LT_OK);
    assert_int_equal(g.ho, 16);
    assert_int_equal(g.wo, 16);
    assert_int_equal(lt_conv_geom_init(&g, 4, 6, 6, 6, 3, 3, 1, 1, 2), LT_OK);
    assert_int_equal(lt_conv2d_weight_count(&g), 6 * 2 * 9);
    /* scratch for a batch also serves every smaller batch */
    assert_true(lt_conv2d_scratch_floats(&g, 8) >= lt_conv2d_scratch_floats(&g, 3));
    assert_true(lt_conv2d_scratch_floats(&g, 8) <= 8 * lt_conv2d_scratch_floats(&g, 1));

    /* rejected: channels not divisible by groups, empty output, bad params */
    lt_err_clear();
    assert_int_equal(lt_conv_geom_init(&g, 3, 8, 8, 6, 3, 3, 1, 1, 2), LT_ESHAPE);
    assert_true(strlen(lt_errmsg()) > 0);
    assert_int_equal(lt_conv_geom_init(&g, 4, 8, 8, 6, 3, 3, 1, 1, 4), LT_ESHAPE);
    assert_int_equal(lt_conv_geom_init(&g, 4, 2, 2, 4, 5, 5, 1, 0, 1), LT_ESHAPE);
    assert_int_equal(lt_conv_geom_init(&g, 4, 8, 8, 4, 3, 3, 0, 1, 1), LT_ESHAPE);
    assert_int_equal(lt_conv_geom_init(&g, 4, 8, 8, 4, 3, 3, 1, -1, 1), LT_ESHAPE);
    assert_int_equal(lt_conv_geom_init(&g, 4, 8, 8, 4, 3, 3, 1, 1, 0), LT_ESHAPE);
    assert_int_equal(lt_conv_geom_init(&g, 0, 8, 8, 4, 3, 3, 1, 1, 1), LT_ESHAPE);
}

/* ======================================================================== */
/* batch norm                                                                */
/* ======================================================================== */

typedef struct {
    int N, C, HW, train;
    float *x, *gamma, *beta, *y, *mean, *rstd, *rm, *rv, *r;
    float eps;
} bn_ctx;

static double bn_loss(void *p) {
    bn_ctx *b = p;
    if (b->train)   /* running stats not passed: the loss must not change them */
        lt_bn_forward_train(b->N, b->C, b->HW, b->x, b->gamma, b->beta, b->y, b->mean, b->rstd,
                            NULL, NULL, 0.1f, b->eps);
    else
        lt_bn_forward_eval(b->N, b->C, b->HW, b->x, b->gamma, b->beta, b->rm, b->rv, b->eps,
                           b->y);
    return gc_dot(b->y, b->r, (size_t)b->N * b->C * b->HW);
}

static void bn_gradcheck(int train) {
    bn_ctx b = {3, 4, 5, train, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1e-5f};
    const size_t n = (size_t)b.N * b.C * b.HW;
    b.x = frand(n, 600 + train, -1, 2);
    b.gamma = frand(4, 601, 0.5f, 1.5f);
    b.beta = frand(4, 602, -0.5f, 0.5f);
    b.y = fa(n);
    b.mean = fa(4);
    b.rstd = fa(4);
    b.rm = frand(4, 603, -0.3f, 0.3f);
    b.rv = frand(4, 604, 0.5f, 1.5f);
    b.r = frand(n, 605, -1, 1);
    float *dx = fa(n), *dg = fa(4), *dbeta = fa(4);
    bn_loss(&b);
    if (train)
        lt_bn_backward_train(b.N, b.C, b.HW, b.x, b.gamma, b.mean, b.rstd, b.r, dx, dg, dbeta);
    else
        lt_bn_backward_eval(b.N, b.C, b.HW, b.x, b.gamma, b.rm, b.rv, b.eps, b.r, dx, dg, dbeta);
    const gc_opts *o = train ? &NONLIN_TOL : &LIN_TOL;
    const char *m = train ? "bn-train" : "bn-eval";
    char w[64];
    snprintf(w, sizeof w, "%s dx", m);
    assert_int_equal(gc_check(w, bn_loss, &b, b.x, dx, n, o), 0);
    snprintf(w, sizeof w, "%s dgamma", m);
    assert_int_equal(gc_check(w, bn_loss, &b, b.gamma, dg, 4, o), 0);
    snprintf(w, sizeof w, "%s dbeta", m);
    assert_int_equal(gc_check(w, bn_loss, &b, b.beta, dbeta, 4, o), 0);
    if (train) {
        /* batch-statistics BN: dx sums to zero per channel (mean is removed) */
        for (int c = 0; c < b.C; c++) {
            double s = 0;
            for (int i = 0; i < b.N; i++)
                for (int p = 0; p < b.HW; p++) s += dx[((size_t)i * b.C + c) * b.HW + p];
            assert_true(fabs(s) < 1e-5);
        }
    }
    lt_free(b.x); lt_free(b.gamma); lt_free(b.beta); lt_free(b.y); lt_free(b.mean);
    lt_free(b.rstd); lt_free(b.rm); lt_free(b.rv); lt_free(b.r);
    lt_free(dx); lt_free(dg); lt_free(dbeta);
}

static void test_bn_train_gradcheck(void **state) { (void)state; bn_gradcheck(1); }
static void test_bn_eval_gradcheck(void **state) { (void)state; bn_gradcheck(0); }

/* Hand example: N=2, C=2, HW=2.
 * channel 0 values {1, 2, 3, 6}: mean 3, sum sq dev 4+1+0+9 = 14,
 *   biased var 3.5, unbiased 14/3.
 * channel 1 values {-1, -1, 1, 1}: mean 0, biased var 1, unbiased 4/3.
 * Running stats start at mean 0.5 / var 2 and update with momentum 0.1. */
/* The BN -> ReLU training fusion (lt_bn_forward_train_relu /
 * lt_bn_backward_train_relu) against the separate calls, bit for bit: a
 * channel size with a tail past the 32 lanes and one without, dx set and
 * accumulated, with and without gamma. */
static void test_bn_relu_fused_bit_identical(void **state) {
    (void)state;
    const int HWs[2] = {45, 64};
    for (int t = 0; t < 2; t++)
        for (int affine = 0; affine < 2; affine++) {
            const int N = 5, C = 3, HW = HWs[t];
            const size_t n = (size_t)N * C * HW;
            float *x = frand(n, 900 + t, -1, 3), *dy = frand(n, 910 + t, -1, 1);
            float *g = affine ? frand(C, 920, 0.5f, 1.5f) : NULL, *b = affine ? frand(C, 930, -0.5f, 0.5f) : NULL;
            float *y0 = fa(n), *y1 = fa(n), *st0 = fa(2 * C), *st1 = fa(2 * C), *r0 = fa(2 * C), *r1 = fa(2 * C);
            for (int c = 0; c < C; c++) { r0[c] = r1[c] = 0.1f; r0[C + c] = r1[C + c] = 0.9f; }
            lt_bn_forward_train(N, C, HW, x, g, b, y0, st0, st0 + C, r0, r0 + C, 0.1f, 1e-5f);
            lt_relu_forward(n, y0, y0);
            lt_bn_forward_train_relu(N, C, HW, x, g, b, y1, st1, st1 + C, r1, r1 + C, 0.1f, 1e-5f, 1);
            assert_memory_equal(y0, y1, n * sizeof(float));
            assert_memory_equal(st0, st1, 2 * C * sizeof(float));
            assert_memory_equal(r0, r1, 2 * C * sizeof(float));
            size_t pos = 0;
            for (size_t i = 0; i < n; i++) pos += y0[i] > 0.0f;
            assert_true(pos > n / 4 && pos < n);   /* the mask matters */
            for (int set = 0; set < 2; set++) {
                float *m = fa(n), *dx0 = frand(n, 940, -1, 1), *dx1 = frand(n, 940, -1, 1);
                float *dg0 = fa(2 * C), *dg1 = fa(2 * C);
                lt_relu_backward_x(n, y0, dy, m, 1);
                lt_bn_backward_train_x(N, C, HW, x, g, st0, st0 + C, m, dx0, affine ? dg0 : NULL,
                                       affine ? dg0 + C : NULL, set);
                lt_bn_backward_train_relu(N, C, HW, x, g, st1, st1 + C, dy, y1, dx1, affine ? dg1 : NULL,
                                          affine ? dg1 + C : NULL, set);
                assert_memory_equal(dx0, dx1, n * sizeof(float));
                assert_memory_equal(dg0, dg1, 2 * C * sizeof(float));
                lt_free(m); lt_free(dx0); lt_free(dx1); lt_free(dg0); lt_free(dg1);
            }
            lt_free(x); lt_free(dy); lt_free(g); lt_free(b); lt_free(y0); lt_free(y1);
            lt_free(st0); lt_free(st1); lt_free(r0); lt_free(r1);
        }
}

static void test_bn_running_stats(void **state) {
    (void)state;
    const float x[8] = {1, 2, -1, -1, /* n=1: */ 3, 6, 1, 1};
    const float gamma[2] = {2.0f, 1.0f}, beta[2] = {0.5f, -1.0f};
    float y[8], mean[2], rstd[2], rm[2] = {0.5f, 0.5f}, rv[2] = {2.0f, 2.0f};
    const float eps = 1e-5f;
    lt_bn_forward_train(2, 2, 2, x, gamma, beta, y, mean, rstd, rm, rv, 0.1f, eps);
    assert_float_equal(mean[0], 3.0f, 1e-6);
    assert_float_equal(mean[1], 0.0f, 1e-6);
    assert_float_equal(rstd[0], 1.0 / sqrt(3.5 + 1e-5), 1e-6);
    assert_float_equal(rstd[1], 1.0 / sqrt(1.0 + 1e-5), 1e-6);
    assert_float_equal(rm[0], 0.9 * 0.5 + 0.1 * 3.0, 1e-6);
    assert_float_equal(rm[1], 0.9 * 0.5 + 0.1 * 0.0, 1e-6);
    assert_float_equal(rv[0], 0.9 * 2.0 + 0.1 * (14.0 / 3.0), 1e-6);   /* unbiased */
    assert_float_equal(rv[1], 0.9 * 2.0 + 0.1 * (4.0 / 3.0), 1e-6);
    /* y = gamma * (x - mean) * rstd + beta */
    const double r0 = 1.0 / sqrt(3.5 + 1e-5), r1 = 1.0 / sqrt(1.0 + 1e-5);
    assert_float_equal(y[0], 2.0 * (1 - 3) * r0 + 0.5, 1e-5);
    assert_float_equal(y[5], 2.0 * (6 - 3) * r0 + 0.5, 1e-5);
    assert_float_equal(y[2], 1.0 * (-1) * r1 - 1.0, 1e-5);
    assert_float_equal(y[7], 1.0 * (1) * r1 - 1.0, 1e-5);
    /* eval mode with the updated running statistics */
    lt_bn_forward_eval(2, 2, 2, x, gamma, beta, rm, rv, eps, y);
    assert_float_equal(y[1], 2.0 * (2 - rm[0]) / sqrt(rv[0] + 1e-5) + 0.5, 1e-5);
    assert_float_equal(y[6], 1.0 * (1 - rm[1]) / sqrt(rv[1] + 1e-5) - 1.0, 1e-5);
}

/* A large common offset must not destroy the variance (double, two-pass). */
static void test_bn_large_mean(void **state) {
    (void)state;
    const int N = 4, HW = 64;
    float *x = fa((size_t)N * HW), *y = fa((size_t)N * HW);
    gc_fill(x, (size_t)N * HW, 700, -1, 1);
    double m = 0, v = 0;
    for (int i = 0; i < N * HW; i++) m += x[i];
    m /= N * HW;
    for (int i = 0; i < N * HW; i++) v += (x[i] - m) * (x[i] - m);
    v /= N * HW;
    for (int i = 0; i < N * HW; i++) x[i] += 1000.0f;
    float mean, rstd;
    lt_bn_forward_train(N, 1, HW, x, NULL, NULL, y, &mean, &rstd, NULL, NULL, 0.1f, 1e-5f);
    assert_float_equal(rstd, 1.0 / sqrt(v + 1e-5), 2e-3 / sqrt(v));
    double s = 0, ss = 0;
    for (int i = 0; i < N * HW; i++) { s += y[i]; ss += (double)y[i] * y[i]; }
    assert_true(fabs(s / (N * HW)) < 1e-3);
    assert_true(fabs(ss / (N * HW) - 1.0) < 1e-2);
    lt_free(x); lt_free(y);
}

/* ======================================================================== */
/* elementwise, pooling, shortcut                                           */
/* ======================================================================== */

typedef struct {
    int kind;   /* 0 relu, 1 add, 2 gap, 3 maxpool, 4 shortcut */
    int N, C, H, W, k, s, p, Co;
    float *a, *b, *y, *r;
    int32_t *arg;
    size_t ny;
} simple_ctx;

static double simple_loss(void *p) {
    simple_ctx *c = p;
    size_t n = (size_t)c->N * c->C * c->H * c->W;
    switch (c->kind) {
    case 0: lt_relu_forward(n, c->a, c->y); break;
    case 1: lt_add_forward(n, c->a, c->b, c->y); break;
    case 2: lt_gap_forward(c->N, c->C, c->H * c->W, c->a, c->y); break;
    case 3: lt_maxpool_forward(c->N, c->C, c->H, c->W, c->k, c->s, c->p, c->a, c->y, c->arg); break;
    default: lt_shortcut_a_forward(c->N, c->C, c->H, c->W, c->Co, c->s, c->a, c->y); break;
    }
    return gc_dot(c->y, c->r, c->ny);
}

static void test_relu_gradcheck(void **state) {
    (void)state;
    simple_ctx c = {0, 2, 3, 4, 5, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, 0};
    size_t n = 2 * 3 * 4 * 5;
    c.ny = n;
    c.a = frand(n, 800, -1, 1);
    /* keep every point at least 5*eps from the kink */
    for (size_t i = 0; i < n; i++)
        if (fabsf(c.a[i]) < 0.05f) c.a[i] += c.a[i] < 0 ? -0.05f : 0.05f;
    c.y = fa(n);
    c.r = frand(n, 801, -1, 1);
    float *dx = fa(n);
    simple_loss(&c);
    lt_relu_backward(n, c.y, c.r, dx);
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++) zeros += dx[i] == 0.0f;
    assert_true(zeros > 0 && zeros < n);   /* both sides of the kink are exercised */
    assert_int_equal(gc_check("relu dx", simple_loss, &c, c.a, dx, n, &LIN_TOL), 0);
    /* in place: y aliases x */
    float *cp = fa(n);
    memcpy(cp, c.a, sizeof(float) * n);
    lt_relu_forward(n, cp, cp);
    assert_memory_equal(cp, c.y, sizeof(float) * n);
    lt_free(cp); lt_free(c.a); lt_free(c.y); lt_free(c.r); lt_free(dx);
}

static void test_add_gradcheck(void **state) {
    (void)state;
    simple_ctx c = {1, 2, 3, 2, 2, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, 0};
    size_t n = 24;
    c.ny = n;
    c.a = frand(n, 810, -1, 1);
    c.b = frand(n, 811, -1, 1);
    c.y = fa(n);
    c.r = frand(n, 812, -1, 1);
    float *da = fa(n), *db = fa(n);
    simple_loss(&c);
    for (size_t i = 0; i < n; i++) assert_float_equal(c.y[i], c.a[i] + c.b[i], 0);
    lt_add_backward(n, c.r, da, db);
    assert_int_equal(gc_check("add da", simple_loss, &c, c.a, da, n, &LIN_TOL), 0);
    assert_int_equal(gc_check("add db", simple_loss, &c, c.b, db, n, &LIN_TOL), 0);
    /* accumulation and aliasing: y = a + a gives 2*dy */
    memset(da, 0, sizeof(float) * n);
    lt_add_backward(n, c.r, da, da);
    for (size_t i = 0; i < n; i++) assert_float_equal(da[i], 2 * c.r[i], 1e-6);
    lt_add_backward(n, c.r, NULL, da);
    for (size_t i = 0; i < n; i++) assert_float_equal(da[i], 3 * c.r[i], 1e-6);
    lt_free(c.a); lt_free(c.b); lt_free(c.y); lt_free(c.r); lt_free(da); lt_free(db);
}

static void test_gap_gradcheck(void **state) {
    (void)state;
    simple_ctx c = {2, 3, 4, 3, 5, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, 0};
    size_t n = 3 * 4 * 15;
    c.ny = 12;
    c.a = frand(n, 820, -1, 1);
    c.y = fa(12);
    c.r = frand(12, 821, -1, 1);
    float *dx = fa(n);
    simple_loss(&c);
    for (int pl = 0; pl < 12; pl++) {
        double s = 0;
        for (int q = 0; q < 15; q++) s += c.a[pl * 15 + q];
        assert_float_equal(c.y[pl], s / 15, 1e-6);
    }
    lt_gap_backward(3, 4, 15, c.r, dx);
    assert_int_equal(gc_check("gap dx", simple_loss, &c, c.a, dx, n, &LIN_TOL), 0);
    lt_free(c.a); lt_free(c.y); lt_free(c.r); lt_free(dx);
}

/* Distinct values at least 0.05 apart (a shuffled ladder), so no window has
 * a near-tie that a +-eps perturbation could flip. */
static float *distinct_values(size_t n, unsigned seed) {
    float *x = fa(n);
    for (size_t i = 0; i < n; i++) x[i] = (float)i * 0.05f - (float)n * 0.025f;
    unsigned long long s = seed * 2654435761ull + 1;
    for (size_t i = n - 1; i > 0; i--) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t)((s >> 33) % (i + 1));
        float t = x[i]; x[i] = x[j]; x[j] = t;
    }
    return x;
}

static void maxpool_gradcheck(int N, int C, int H, int W, int k, int s, int p, unsigned seed) {
    simple_ctx c = {3, N, C, H, W, k, s, p, 0, NULL, NULL, NULL, NULL, NULL, 0};
    const int ho = (H + 2 * p - k) / s + 1, wo = (W + 2 * p - k) / s + 1;
    size_t n = (size_t)N * C * H * W;
    c.ny = (size_t)N * C * ho * wo;
    c.a = distinct_values(n, seed);
    c.y = fa(c.ny);
    c.arg = lt_alloc(sizeof(int32_t) * c.ny);
    c.r = frand(c.ny, seed + 1, -1, 1);
    float *dx = fa(n);
    simple_loss(&c);
    lt_maxpool_backward(N, C, H, W, k, s, p, c.arg, c.r, dx);
    char w[64];
    snprintf(w, sizeof w, "maxpool k%d s%d p%d dx", k, s, p);
    assert_int_equal(gc_check(w, simple_loss, &c, c.a, dx, n, &LIN_TOL), 0);
    lt_free(c.a); lt_free(c.y); lt_free(c.arg); lt_free(c.r); lt_free(dx);
}

static void test_maxpool_gradcheck(void **state) {
    (void)state;
    maxpool_gradcheck(2, 2, 7, 7, 3, 2, 1, 830);   /* ImageNet stem pool */
    maxpool_gradcheck(2, 3, 6, 6, 2, 2, 0, 840);
    maxpool_gradcheck(1, 2, 5, 6, 3, 1, 1, 850);   /* overlapping windows */
}

/* Hand example on one 4x4 plane:
 *    1  5  2  0
 *    3  4  9  9        k2 s2 p0 -> [5 9; 8 7]  (tie 9|9: first in scan order)
 *    8  0 -1  7
 *    2  8  6  7        (tie 8|8 in window (1,0): the first 8 at (2,0) wins) */
static void test_maxpool_hand(void **state) {
    (void)state;
    const float x[16] = {1, 5, 2, 0, 3, 4, 9, 9, 8, 0, -1, 7, 2, 8, 6, 7};
    float y[9];
    int32_t arg[9];
    lt_maxpool_forward(1, 1, 4, 4, 2, 2, 0, x, y, arg);
    const float ey[4] = {5, 9, 8, 7};
    const int32_t ea[4] = {1, 6, 8, 11};
    for (int i = 0; i < 4; i++) {
        assert_float_equal(y[i], ey[i], 0);
        assert_int_equal(arg[i], ea[i]);
    }
    float dx[16] = {0};
    const float dy[4] = {1, 2, 3, 4};
    lt_maxpool_backward(1, 1, 4, 4, 2, 2, 0, arg, dy, dx);
    assert_float_equal(dx[1], 1, 0);
    assert_float_equal(dx[6], 2, 0);
    assert_float_equal(dx[7], 0, 0);
    assert_float_equal(dx[8], 3, 0);
    assert_float_equal(dx[13], 0, 0);
    assert_float_equal(dx[11], 4, 0);
    /* k3 s2 p1: padding is -inf, so an all-negative border still yields a
     * real input value, never 0. Output 2x2. */
    const float xn[16] = {-5, -4, -3, -2, -6, -7, -8, -9, -1, -2, -3, -4, -9, -9, -9, -9};
    lt_maxpool_forward(1, 1, 4, 4, 3, 2, 1, xn, y, arg);
    /* window (0,0): rows -1..1, cols -1..1 -> {-5,-4,-6,-7} -> -4 at 1 */
    assert_float_equal(y[0], -4, 0);
    assert_int_equal(arg[0], 1);
    /* window (0,1): rows -1..1, cols 1..3 -> {-4,-3,-2,-7,-8,-9} -> -2 at 3 */
    assert_float_equal(y[1], -2, 0);
    assert_int_equal(arg[1], 3);
    /* window (1,0): rows 1..3, cols -1..1 -> {-6,-7,-1,-2,-9,-9} -> -1 at 8 */
    assert_float_equal(y[2], -1, 0);
    assert_int_equal(arg[2], 8);
    /* window (1,1): rows 1..3, cols 1..3 -> {-7,-8,-9,-2,-3,-4,-9,-9,-9} -> -2 at 9 */
    assert_float_equal(y[3], -2, 0);
    assert_int_equal(arg[3], 9);
}

static void shortcut_gradcheck(int N, int Ci, int H, int W, int Co, int s, unsigned seed) {
    simple_ctx c = {4, N, Ci, H, W, 0, s, 0, Co, NULL, NULL, NULL, NULL, NULL, 0};
    const int ho = (H + s - 1) / s, wo = (W + s - 1) / s;
    size_t n = (size_t)N * Ci * H * W;
    c.ny = (size_t)N * Co * ho * wo;
    c.a = frand(n, seed, -1, 1);
    c.y = fa(c.ny);
    c.r = frand(c.ny, seed + 1, -1, 1);
    float *dx = fa(n);
    simple_loss(&c);
    lt_shortcut_a_backward(N, Ci, H, W, Co, s, c.r, dx);
    char w[64];
    snprintf(w, sizeof w, "shortcut-A %d->%d s%d dx", Ci, Co, s);
    assert_int_equal(gc_check(w, simple_loss, &c, c.a, dx, n, &LIN_TOL), 0);
    lt_free(c.a); lt_free(c.y); lt_free(c.r); lt_free(dx);
}

static void test_shortcut_gradcheck(void **state) {
    (void)state;
    shortcut_gradcheck(2, 2, 5, 5, 4, 2, 860);   /* odd size: ceil(5/2) = 3 */
    shortcut_gradcheck(2, 3, 6, 4, 9, 2, 870);   /* Co = 3Ci: 3 zero channels each side */
    shortcut_gradcheck(2, 4, 3, 3, 4, 1, 880);   /* identity */
}

/* The stride-2 subsample against a plain loop at CIFAR's sizes and odd
 * ones; the data-only variant (the fused residual's) must leave the zero
 * channels as they were. */
static void test_shortcut_sizes(void **state) {
    (void)state;
    const int sizes[][2] = {{7, 7}, {8, 8}, {13, 9}, {14, 14}, {16, 16}, {28, 28}, {32, 32}, {3, 31}, {5, 33}, {6, 40}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        const int N = 3, Ci = 4, Co = 8, H = sizes[k][0], W = sizes[k][1], ho = (H + 1) / 2, wo = (W + 1) / 2;
        const size_t nx = (size_t)N * Ci * H * W, ny = (size_t)N * Co * ho * wo;
        float *x = frand(nx, 900 + (unsigned)k, -1, 1), *y = fa(ny), *yd = fa(ny);
        for (size_t i = 0; i < ny; i++) y[i] = yd[i] = NAN;
        lt_shortcut_a_forward(N, Ci, H, W, Co, 2, x, y);
        lt_shortcut_a_forward_data(N, Ci, H, W, Co, 2, x, yd);
        for (int n = 0; n < N; n++)
            for (int c = 0; c < Co; c++)
                for (int i = 0; i < ho; i++)
                    for (int j = 0; j < wo; j++) {
                        const size_t o = (((size_t)n * Co + c) * ho + i) * wo + j;
                        const int cs = c - (Co - Ci) / 2;
                        if (cs < 0 || cs >= Ci) {
                            assert_true(y[o] == 0.0f);
                            assert_true(isnan(yd[o]));
                        } else {
                            const float e = x[(((size_t)n * Ci + cs) * H + 2 * i) * W + 2 * j];
                            assert_true(y[o] == e);
                            assert_true(yd[o] == e);
                        }
                    }
        lt_free(x); lt_free(y); lt_free(yd);
    }
}

/* LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2], (0,0,0,0, planes//4, planes//4)))
 * with Ci=2, Co=4 on a 3x3 input: channels 0 and 3 are zero, channel 1 is
 * input channel 0 at (0,0),(0,2),(2,0),(2,2), channel 2 is input channel 1. */
static void test_shortcut_hand(void **state) {
    (void)state;
    float x[2 * 18];
    for (int i = 0; i < 36; i++) x[i] = (float)(i + 1);   /* n0: 1..18, n1: 19..36 */
    float y[2 * 16];
    for (int i = 0; i < 32; i++) y[i] = NAN;
    lt_shortcut_a_forward(2, 2, 3, 3, 4, 2, x, y);
    const float e0[16] = {0, 0, 0, 0, 1, 3, 7, 9, 10, 12, 16, 18, 0, 0, 0, 0};
    for (int i = 0; i < 16; i++) {
        assert_float_equal(y[i], e0[i], 0);
        assert_float_equal(y[16 + i], e0[i] == 0 ? 0 : e0[i] + 18, 0);
    }
    float dx[36] = {0};
    float dy[32];
    for (int i = 0; i < 32; i++) dy[i] = (float)(i + 1);
    lt_shortcut_a_backward(2, 2, 3, 3, 4, 2, dy, dx);
    /* image 0, input channel 0 <- output channel 1 (dy 5..8) */
    assert_float_equal(dx[0], 5, 0);
    assert_float_equal(dx[2], 6, 0);
    assert_float_equal(dx[6], 7, 0);
    assert_float_equal(dx[8], 8, 0);
    assert_float_equal(dx[1], 0, 0);
    assert_float_equal(dx[4], 0, 0);
    /* image 1, input channel 1 <- output channel 2 of image 1 (dy 25..28) */
    assert_float_equal(dx[27], 25, 0);
    assert_float_equal(dx[35], 28, 0);
}

/* ======================================================================== */
/* linear and cosine                                                         */
/* ======================================================================== */

typedef struct {
    int N, in, out, cosine;
    float *x, *W, *b, *y, *r, *xinv, *winv;
    float scale, eps;
} lin_ctx;

static double lin_loss(void *p) {
    lin_ctx *l = p;
    if (l->cosine)
        lt_cosine_forward(l->N, l->in, l->out, l->x, l->W, l->scale, l->eps, l->y, l->xinv,
                          l->winv);
    else
        lt_linear_forward(l->N, l->in, l->out, l->x, l->W, l->b, l->y);
    return gc_dot(l->y, l->r, (size_t)l->N * l->out);
}

static void lin_setup(lin_ctx *l, int N, int in, int out, int cosine, int bias, unsigned seed) {
    memset(l, 0, sizeof *l);
    l->N = N; l->in = in; l->out = out; l->cosine = cosine;
    l->x = frand((size_t)N * in, seed, -1, 1);
    l->W = frand((size_t)out * in, seed + 1, -1, 1);
    l->b = bias ? frand((size_t)out, seed + 2, -1, 1) : NULL;
    l->y = fa((size_t)N * out);
    l->r = frand((size_t)N * out, seed + 3, -1, 1);
    l->xinv = fa((size_t)N);
    l->winv = fa((size_t)out);
    l->scale = 4.0f;
    l->eps = 1e-6f;
}

static void lin_free(lin_ctx *l) {
    lt_free(l->x); lt_free(l->W); lt_free(l->b); lt_free(l->y); lt_free(l->r);
    lt_free(l->xinv); lt_free(l->winv);
}

static void test_linear_naive_and_gradcheck(void **state) {
    (void)state;
    for (int bias = 0; bias < 2; bias++) {
        lin_ctx l;
        lin_setup(&l, 3, 7, 5, 0, bias, 900 + bias * 10);
        lin_loss(&l);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++) {
                double s = bias ? l.b[j] : 0;
                for (int k = 0; k < 7; k++) s += (double)l.x[i * 7 + k] * l.W[j * 7 + k];
                assert_float_equal(l.y[i * 5 + j], s, 1e-5);
            }
        float *dx = fa(21), *dW = fa(35), *db = fa(5);
        lt_linear_backward(3, 7, 5, l.x, l.W, l.r, dx, dW, bias ? db : NULL);
        const char *tag = bias ? "linear+b" : "linear";
        char w[64];
        snprintf(w, sizeof w, "%s dx", tag);
        assert_int_equal(gc_check(w, lin_loss, &l, l.x, dx, 21, &LIN_TOL), 0);
        snprintf(w, sizeof w, "%s dW", tag);
        assert_int_equal(gc_check(w, lin_loss, &l, l.W, dW, 35, &LIN_TOL), 0);
        if (bias) assert_int_equal(gc_check("linear+b db", lin_loss, &l, l.b, db, 5, &LIN_TOL), 0);
        /* accumulation: a second backward doubles every gradient */
        float *dx2 = fa(21);
        memcpy(dx2, dx, sizeof(float) * 21);
        lt_linear_backward(3, 7, 5, l.x, l.W, l.r, dx2, NULL, NULL);
        for (int i = 0; i < 21; i++) assert_float_equal(dx2[i], 2 * dx[i], 1e-5);
        lt_free(dx); lt_free(dx2); lt_free(dW); lt_free(db);
        lin_free(&l);
    }
}

static void cosine_gradcheck(lin_ctx *l, const char *tag) {
    const size_t nx = (size_t)l->N * l->in, nw = (size_t)l->out * l->in;
    float *dx = fa(nx), *dW = fa(nw);
    lin_loss(l);
    lt_cosine_backward(l->N, l->in, l->out, l->x, l->W, l->scale, l->xinv, l->winv, l->y, l->r,
                       dx, dW);
    char w[64];
    snprintf(w, sizeof w, "%s dx", tag);
    assert_int_equal(gc_check(w, lin_loss, l, l->x, dx, nx, &NONLIN_TOL), 0);
    snprintf(w, sizeof w, "%s dW", tag);
    assert_int_equal(gc_check(w, lin_loss, l, l->W, dW, nw, &NONLIN_TOL), 0);
    lt_free(dx); lt_free(dW);
}

static void test_cosine(void **state) {
    (void)state;
    lin_ctx l;
    lin_setup(&l, 4, 6, 5, 1, 0, 950);
    lin_loss(&l);
    /* value: scale * cos(x_i, w_j), and |y| <= scale */
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 5; j++) {
            double d = 0, nx = 0, nw = 0;
            for (int k = 0; k < 6; k++) {
                d += (double)l.x[i * 6 + k] * l.W[j * 6 + k];
                nx += (double)l.x[i * 6 + k] * l.x[i * 6 + k];
                nw += (double)l.W[j * 6 + k] * l.W[j * 6 + k];
            }
            assert_float_equal(l.y[i * 5 + j], 4.0 * d / sqrt(nx * nw), 1e-5);
            assert_float_equal(l.xinv[i], 1.0 / sqrt(nx), 1e-5);
        }
    cosine_gradcheck(&l, "cosine");
    /* batch larger than the row block (8), with 1 row of x clamped by eps:
     * that row's norm is the constant eps, so its Jacobian has no projection */
    lin_free(&l);
    lin_setup(&l, 11, 5, 10, 1, 0, 960);
    l.eps = 0.2f;
    for (int k = 0; k < 5; k++) l.x[3 * 5 + k] *= 0.05f;   /* |x_3| < 0.2 */
    lin_loss(&l);
    assert_float_equal(l.xinv[3], 5.0f, 1e-6);
    cosine_gradcheck(&l, "cosine (clamped row)");
    lin_free(&l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_geom),
        cmocka_unit_test(test_conv_forward_matches_naive),
        cmocka_unit_test(test_conv_backward_matches_naive),
        cmocka_unit_test(test_conv_many_images_per_thread),
        cmocka_unit_test(test_conv_stolen_chunks),
        cmocka_unit_test(test_conv_channel_vectorised),
        cmocka_unit_test(test_conv_gradcheck),
        cmocka_unit_test(test_conv_accumulates_and_null),
        cmocka_unit_test(test_conv_winograd),
        cmocka_unit_test(test_conv_avx2_matches_avx512),
        cmocka_unit_test(test_conv_unreached_dx_gets_plus_zero),
        cmocka_unit_test(test_conv_paths_by_isa),
        cmocka_unit_test(test_backward_set_mode),
        cmocka_unit_test(test_conv_deterministic),
        cmocka_unit_test(test_bn_train_gradcheck),
        cmocka_unit_test(test_bn_eval_gradcheck),
        cmocka_unit_test(test_bn_relu_fused_bit_identical),
        cmocka_unit_test(test_bn_running_stats),
        cmocka_unit_test(test_bn_large_mean),
        cmocka_unit_test(test_relu_gradcheck),
        cmocka_unit_test(test_add_gradcheck),
        cmocka_unit_test(test_gap_gradcheck),
        cmocka_unit_test(test_maxpool_gradcheck),
        cmocka_unit_test(test_maxpool_hand),
        cmocka_unit_test(test_shortcut_gradcheck),
        cmocka_unit_test(test_shortcut_hand),
        cmocka_unit_test(test_shortcut_sizes),
        cmocka_unit_test(test_linear_naive_and_gradcheck),
        cmocka_unit_test(test_cosine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
