/* lt_conv.c — 2-D convolution as im2col + one large cblas_sgemm per group.
 *
 * Layout of the batched GEMM (per group gi, cig = ci/groups, cog = co/groups,
 * K = cig*kh*kw, P = ho*wo, NP = nb*P for a chunk of nb images):
 *
 *   col [K x NP]   row k = (c, i, j), column = n*P + p          (im2col)
 *   Y   [cog x NP] = W_g [cog x K] * col                        (forward)
 *   dW_g          += dY_g [cog x NP] * col^T                    (backward, weights)
 *   dcol [K x NP]  = W_g^T * dY_g, then col2im adds into dx      (backward, data)
 *
 * Y / dY live in a [co x NP] buffer (image-major columns), so NCHW needs one
 * scatter / gather of contiguous P-float rows per (image, channel).
 *
 * Batching the whole minibatch into one GEMM makes the N dimension of the
 * GEMM large (N*HoWo), which is what OpenBLAS needs on the skinny ResNet
 * shapes (M = 16..64). Only when the batched col matrix would exceed
 * LT_CONV_SCRATCH_CAP floats is the batch processed in equal chunks of
 * images; for CIFAR-sized layers at batch 128 that never happens. Chunks are
 * a pure function of (geometry, N) and dW accumulates across them in order,
 * so results stay deterministic.
 *
 * A chunk of one image needs no scatter/gather: Y for one image already is
 * its NCHW slab, so the GEMM writes y (and reads dy) in place. A 1x1,
 * stride-1, unpadded convolution of one image also needs no im2col: the
 * input slab is the col matrix, and dcol is added to dx by the GEMM (beta=1).
 *
 * Determinism: im2col, col2im, scatter and gather write disjoint memory per
 * OpenMP iteration; bias gradients reduce in a fixed order per channel;
 * OpenBLAS level-3 calls split M/N (not K) across threads. */
#include "lt_conv_fast.h"
#include "lt_ops.h"

#include <cblas.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* 64 Mi floats (256 MiB) — the most col + Y scratch one chunk may use. */
#define LT_CONV_SCRATCH_CAP ((size_t)1 << 26)

/* Below this many floats of work an OpenMP region costs more than it saves. */
#define LT_CONV_PAR_MIN 32768

int lt_conv_geom_init(lt_conv_geom *g, int ci, int h, int w, int co, int kh, int kw,
                      int stride, int pad, int groups) {
    if (!g) return lt_err(LT_EINVAL, "conv geometry: NULL output");
    if (ci <= 0 || h <= 0 || w <= 0 || co <= 0 || kh <= 0 || kw <= 0)
        return lt_err(LT_ESHAPE, "conv geometry: non-positive size (ci=%d h=%d w=%d co=%d k=%dx%d)",
                      ci, h, w, co, kh, kw);
    if (stride <= 0 || pad < 0 || groups <= 0)
        return lt_err(LT_ESHAPE, "conv geometry: bad stride=%d pad=%d groups=%d", stride, pad,
                      groups);
    if (ci % groups || co % groups)
        return lt_err(LT_ESHAPE, "conv geometry: channels ci=%d co=%d not divisible by groups=%d",
                      ci, co, groups);
    int hp = h + 2 * pad, wp = w + 2 * pad;
    if (hp < kh || wp < kw)
        return lt_err(LT_ESHAPE, "conv geometry: kernel %dx%d larger than padded input %dx%d", kh,
                      kw, hp, wp);
    g->ci = ci; g->h = h; g->w = w;
    g->co = co; g->kh = kh; g->kw = kw;
    g->stride = stride; g->pad = pad; g->groups = groups;
    g->ho = (hp - kh) / stride + 1;
    g->wo = (wp - kw) / stride + 1;
    g->path = LT_CONV_PATH_DEFAULT;
    g->wino_tile = 0;
    return LT_OK;
}

size_t lt_conv2d_weight_count(const lt_conv_geom *g) {
    return (size_t)g->co * (g->ci / g->groups) * g->kh * g->kw;
}

void lt_conv_geom_set_backend(lt_conv_geom *g, const lt_backend *b) {
    lt_cpu_opts o;
    if (!b || lt_backend_cpu_opts(b, &o) != LT_OK) {
        /* no cpu backend: the process default's, looked up at each call */
        g->path = LT_CONV_PATH_DEFAULT;
        g->wino_tile = 0;
        return;
    }
    g->path = o.conv;
    g->wino_tile = o.wino_tile;
}

/* The process default backend's options, for geometries that name none. */
static lt_cpu_opts default_opts(void) {
    lt_cpu_opts o;
    if (lt_backend_cpu_opts(lt_backend_default(), &o) != LT_OK) lt_cpu_opts_default(&o);
    return o;
}

lt_conv_path lt_conv_geom_path(const lt_conv_geom *g) {
    return g->path != LT_CONV_PATH_DEFAULT ? g->path : default_opts().conv;
}

int lt_conv_geom_wino_tile(const lt_conv_geom *g) {
    return g->path != LT_CONV_PATH_DEFAULT ? g->wino_tile : default_opts().wino_tile;
}

int lt_conv_fast_active(const lt_conv_geom *g) {
    if (lt_conv_isa() == LT_CONV_ISA_NONE || lt_conv_geom_path(g) == LT_CONV_PATH_REF || g->groups != 1 ||
        g->stride > LT_CONV_FAST_MAX_STRIDE)
        return 0;
    /* tap offsets within one image are int */
    size_t planes = (size_t)g->ci * g->stride * g->stride * ((size_t)(g->h + 2 * g->pad + 1) * (g->w + 2 * g->pad + 1) + g->kw + 32);
    size_t dyg = (size_t)g->co * ((size_t)(g->h + 2 * g->pad + 1) * (g->w + 2 * g->pad + 1) + 64);
    return planes < INT_MAX / 2 && dyg < INT_MAX / 2;
}

static size_t conv_k(const lt_conv_geom *g) { return (size_t)(g->ci / g->groups) * g->kh * g->kw; }
static size_t conv_p(const lt_conv_geom *g) { return (size_t)g->ho * g->wo; }

/* Images per chunk: the whole batch unless that breaks the cap. Monotone in
 * N, and chunk(N) <= N, so scratch sized for N also serves any smaller batch
 * and scratch_floats(g, N) <= N * scratch_floats(g, 1). */
static int conv_chunk(const lt_conv_geom *g, int N) {
    size_t per_img = (conv_k(g) + (size_t)g->co) * conv_p(g);
    size_t cap = LT_CONV_SCRATCH_CAP / (per_img ? per_img : 1);
    if (cap < 1) cap = 1;
    return (size_t)N < cap ? N : (int)cap;
}

size_t lt_conv2d_scratch_floats(const lt_conv_geom *g, int N) {
    if (N <= 0) return 0;
    if (lt_conv_fast_active(g)) return lt_conv_fast_scratch_floats(g, N);
    int nb = conv_chunk(g, N);
    return (conv_k(g) + (size_t)g->co) * conv_p(g) * (size_t)nb;
}

static int is_pointwise(const lt_conv_geom *g) {
    return g->kh == 1 && g->kw == 1 && g->stride == 1 && g->pad == 0;
}

/* Output columns [lo, hi) of a kernel tap at offset kj (along one axis of
 * length n, output length no) read inside the input; the rest read padding. */
static void tap_range(int kj, int stride, int pad, int n, int no, int *lo, int *hi) {
    /* need 0 <= o*stride - pad + kj < n */
    int a = pad - kj;
    int l = a <= 0 ? 0 : (a + stride - 1) / stride;
    int b = n + pad - kj;           /* o*stride < b */
    int h = b <= 0 ? 0 : (b + stride - 1) / stride;
    if (h > no) h = no;
    if (l > h) l = h;
    *lo = l; *hi = h;
}

/* im2col of channels [c0, c0+cig) of images [n0, n0+nb) into col [K x nb*P]. */
static void im2col(const lt_conv_geom *g, const float *x, int n0, int nb, int c0, float *col) {
    const int cig = g->ci / g->groups, kh = g->kh, kw = g->kw, s = g->stride, pad = g->pad;
    const int H = g->h, W = g->w, ho = g->ho, wo = g->wo;
    const size_t P = conv_p(g), NP = P * (size_t)nb, HW = (size_t)H * W;
    const long tasks = (long)cig * nb;
    LT_PAR_FOR(lt_par((size_t)tasks * kh * kw * P, LT_CONV_PAR_MIN),
    for (long t = 0; t < tasks; t++) {
        int c = (int)(t / nb), n = (int)(t % nb);
        const float *xp = x + ((size_t)(n0 + n) * g->ci + c0 + c) * HW;
        for (int i = 0; i < kh; i++) {
            int olo, ohi;
            tap_range(i, s, pad, H, ho, &olo, &ohi);
            for (int j = 0; j < kw; j++) {
                int wlo, whi;
                tap_range(j, s, pad, W, wo, &wlo, &whi);
                float *dst = col + ((size_t)(c * kh + i) * kw + j) * NP + (size_t)n * P;
                /* rows above / below the input read only padding */
                memset(dst, 0, sizeof(float) * (size_t)olo * wo);
                memset(dst + (size_t)ohi * wo, 0, sizeof(float) * (size_t)(ho - ohi) * wo);
                for (int oh = olo; oh < ohi; oh++) {
                    float *d = dst + (size_t)oh * wo;
                    /* input row; column of output ow is ow*s + j - pad (>= 0 for ow >= wlo) */
                    const float *src = xp + (size_t)(oh * s - pad + i) * W;
                    const int off = j - pad;
                    for (int ow = 0; ow < wlo; ow++) d[ow] = 0.0f;
                    if (s == 1) {
                        memcpy(d + wlo, src + (wlo + off), sizeof(float) * (size_t)(whi - wlo));
                    } else {
                        for (int ow = wlo; ow < whi; ow++) d[ow] = src[ow * s + off];
                    }
                    for (int ow = whi; ow < wo; ow++) d[ow] = 0.0f;
                }
            }
        }
    });
}

/* dx += col2im(dcol) for channels [c0, c0+cig) of images [n0, n0+nb). Each
 * iteration owns one (image, channel) plane of dx, and adds the taps in a
 * fixed order, so there are no races and no order dependence on threads. */
static void col2im_add(const lt_conv_geom *g, const float *dcol, int n0, int nb, int c0,
                       float *dx) {
    const int cig = g->ci / g->groups, kh = g->kh, kw = g->kw, s = g->stride, pad = g->pad;
    const int H = g->h, W = g->w, ho = g->ho, wo = g->wo;
    const size_t P = conv_p(g), NP = P * (size_t)nb, HW = (size_t)H * W;
    const long tasks = (long)cig * nb;
    LT_PAR_FOR(lt_par((size_t)tasks * kh * kw * P, LT_CONV_PAR_MIN),
    for (long t = 0; t < tasks; t++) {
        int c = (int)(t / nb), n = (int)(t % nb);
        float *xp = dx + ((size_t)(n0 + n) * g->ci + c0 + c) * HW;
        for (int i = 0; i < kh; i++) {
            int olo, ohi;
            tap_range(i, s, pad, H, ho, &olo, &ohi);
            for (int j = 0; j < kw; j++) {
                int wlo, whi;
                tap_range(j, s, pad, W, wo, &wlo, &whi);
                const float *src = dcol + ((size_t)(c * kh + i) * kw + j) * NP + (size_t)n * P;
                for (int oh = olo; oh < ohi; oh++) {
                    const float *sr = src + (size_t)oh * wo;
                    float *d = xp + (size_t)(oh * s - pad + i) * W;
                    const int off = j - pad;
                    if (s == 1) {
                        for (int ow = wlo; ow < whi; ow++) d[ow + off] += sr[ow];
                    } else {
                        for (int ow = wlo; ow < whi; ow++) d[ow * s + off] += sr[ow];
                    }
                }
            }
        }
    });
}

/* y[n0+n][c] = buf[c][n*P ..] (+ b[c]) for a chunk. */
static void scatter_out(const lt_conv_geom *g, const float *buf, const float *b, int n0, int nb,
                        float *y) {
    const int co = g->co;
    const size_t P = conv_p(g), NP = P * (size_t)nb;
    const long tasks = (long)co * nb;
    LT_PAR_FOR(lt_par((size_t)tasks * P, LT_CONV_PAR_MIN),
    for (long t = 0; t < tasks; t++) {
        int n = (int)(t / co), c = (int)(t % co);
        const float *src = buf + (size_t)c * NP + (size_t)n * P;
        float *dst = y + ((size_t)(n0 + n) * co + c) * P;
        if (b) {
            const float bc = b[c];
            for (size_t p = 0; p < P; p++) dst[p] = src[p] + bc;
        } else {
            memcpy(dst, src, sizeof(float) * P);
        }
    });
}

/* buf[c][n*P ..] = dy[n0+n][c] for a chunk. */
static void gather_dy(const lt_conv_geom *g, const float *dy, int n0, int nb, float *buf) {
    const int co = g->co;
    const size_t P = conv_p(g), NP = P * (size_t)nb;
    const long tasks = (long)co * nb;
    LT_PAR_FOR(lt_par((size_t)tasks * P, LT_CONV_PAR_MIN),
    for (long t = 0; t < tasks; t++) {
        int n = (int)(t / co), c = (int)(t % co);
        memcpy(buf + (size_t)c * NP + (size_t)n * P, dy + ((size_t)(n0 + n) * co + c) * P,
               sizeof(float) * P);
    });
}

void lt_conv2d_forward(const lt_conv_geom *g, int N, const float *x, const float *w,
                       const float *b, float *y, float *scratch) {
    lt_conv2d_forward_ep(g, N, x, w, b, y, scratch, NULL);
}

void lt_conv2d_forward_ep(const lt_conv_geom *g, int N, const float *x, const float *w,
                          const float *b, float *y, float *scratch, const lt_conv_epilogue *ep) {
    if (lt_conv_fast_active(g)) {
        lt_conv_fast_forward(g, N, x, w, b, y, scratch, ep);
        return;
    }
    const int G = g->groups, cig = g->ci / G, cog = g->co / G;
    const size_t K = conv_k(g), P = conv_p(g), HW = (size_t)g->h * g->w;
    const int chunk = conv_chunk(g, N);
    for (int n0 = 0; n0 < N; n0 += chunk) {
        const int nb = N - n0 < chunk ? N - n0 : chunk;
        const size_t NP = P * (size_t)nb;
        float *col = scratch, *ybuf = scratch + K * NP;
        for (int gi = 0; gi < G; gi++) {
            const float *wg = w + (size_t)gi * cog * K;
            const float *A;
            size_t lda;
            if (nb == 1 && is_pointwise(g)) {
                A = x + ((size_t)n0 * g->ci + (size_t)gi * cig) * HW;
                lda = HW;
            } else {
                im2col(g, x, n0, nb, gi * cig, col);
                A = col;
                lda = NP;
            }
            float *out = nb == 1 ? y + ((size_t)n0 * g->co + (size_t)gi * cog) * P
                                 : ybuf + (size_t)gi * cog * NP;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cog, (int)NP, (int)K, 1.0f, wg,
                        (int)K, A, (int)lda, 0.0f, out, (int)NP);
        }
        if (nb == 1) {
            if (b) {
                float *yn = y + (size_t)n0 * g->co * P;
                for (int c = 0; c < g->co; c++) {
                    const float bc = b[c];
                    float *yc = yn + (size_t)c * P;
                    for (size_t p = 0; p < P; p++) yc[p] += bc;
                }
            }
        } else {
            scatter_out(g, ybuf, b, n0, nb, y);
        }
    }
    if (!ep) return;
    /* the reference path applies the epilogue as a pass of its own */
    LT_PAR_FOR(lt_par((size_t)N * g->co * P, LT_CONV_PAR_MIN),
    for (long t = 0; t < (long)N * g->co; t++) {
        const int c = (int)(t % g->co);
        const float mu = ep->mu[c], a = ep->a[c], bb = ep->b[c];
        float *yc = y + (size_t)t * P;
        const float *rc = lt_conv_res_plane(ep, ep->res, c, P);
        if (rc) rc += (size_t)(t / g->co) * g->co * P;
        for (size_t p = 0; p < P; p++) {
            float v = lt_bn_affine(yc[p], mu, a, bb);
            if (rc) v += rc[p];
            yc[p] = ep->relu ? lt_relu1(v) : v;
        }
    });
}

void lt_conv2d_backward(const lt_conv_geom *g, int N, const float *x, const float *w,
                        const float *dy, float *dx, float *dw, float *db, float *scratch) {
    lt_conv2d_backward_x(g, N, x, w, dy, dx, dw, db, scratch, 0);
}

void lt_conv2d_backward_x(const lt_conv_geom *g, int N, const float *x, const float *w,
                          const float *dy, float *dx, float *dw, float *db, float *scratch, int set_dx) {
    const int G = g->groups, cig = g->ci / G, cog = g->co / G;
    const size_t K = conv_k(g), P = conv_p(g), HW = (size_t)g->h * g->w;

    if (db) {
        /* per channel, fixed order over (n, p), in double */
        LT_PAR_FOR(lt_par((size_t)N * g->co * P, LT_CONV_PAR_MIN),
        for (int c = 0; c < g->co; c++) {
            double s = 0;
            for (int n = 0; n < N; n++) {
                const float *d = dy + ((size_t)n * g->co + c) * P;
                for (size_t p = 0; p < P; p++) s += d[p];
            }
            db[c] += (float)s;
        });
    }
    if (!dx && !dw) return;
    if (lt_conv_fast_active(g)) {
        lt_conv_fast_backward(g, N, x, w, dy, dx, dw, scratch, set_dx);
        return;
    }
    /* the reference path accumulates (col2im): start from zero */
    if (dx && set_dx) memset(dx, 0, sizeof(float) * (size_t)N * g->ci * HW);

    const int chunk = conv_chunk(g, N);
    for (int n0 = 0; n0 < N; n0 += chunk) {
        const int nb = N - n0 < chunk ? N - n0 : chunk;
        const size_t NP = P * (size_t)nb;
        float *col = scratch, *dybuf = scratch + K * NP;
        const float *dY;
        if (nb == 1) {
            dY = dy + (size_t)n0 * g->co * P;
        } else {
            gather_dy(g, dy, n0, nb, dybuf);
            dY = dybuf;
        }
        for (int gi = 0; gi < G; gi++) {
            const float *wg = w + (size_t)gi * cog * K;
            const float *dYg = dY + (size_t)gi * cog * NP;
            const int direct = nb == 1 && is_pointwise(g);
            if (dw) {
                const float *A;
                size_t lda;
                if (direct) {
                    A = x + ((size_t)n0 * g->ci + (size_t)gi * cig) * HW;
                    lda = HW;
                } else {
                    im2col(g, x, n0, nb, gi * cig, col);
                    A = col;
                    lda = NP;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cog, (int)K, (int)NP, 1.0f,
                            dYg, (int)NP, A, (int)lda, 1.0f, dw + (size_t)gi * cog * K, (int)K);
            }
            if (dx) {
                if (direct) {
                    /* col2im of a pointwise conv is the identity: add in place */
                    float *dxg = dx + ((size_t)n0 * g->ci + (size_t)gi * cig) * HW;
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)NP, cog,
                                1.0f, wg, (int)K, dYg, (int)NP, 1.0f, dxg, (int)HW);
                } else {
                    /* col is free again (dW for this group is done) */
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)NP, cog,
                                1.0f, wg, (int)K, dYg, (int)NP, 0.0f, col, (int)NP);
                    col2im_add(g, col, n0, nb, gi * cig, dx);
                }
            }
        }
    }
}
