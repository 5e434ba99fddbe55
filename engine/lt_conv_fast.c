/* lt_conv_fast.c — direct convolution with AVX-512 "shifted GEMM" kernels
 * (and, on CPUs without AVX-512F, the same drivers on AVX2 kernels).
 *
 * Why not im2col + OpenBLAS: the ResNet shapes are skinny (16..64 output
 * channels), the 9x im2col copy costs as much memory traffic as the GEMM,
 * OpenBLAS's own thread pool fights the engine's OpenMP threads, and in this
 * environment OpenBLAS is pinned to its AVX2 (Haswell) kernels, half of what
 * the cores can do.
 *
 * The idea: pad each input plane and split it into stride x stride phase
 * planes ("polyphase"), all with the same row width Wg. Then the input value a
 * kernel tap (i, j) reads for output (oh, ow) is
 *     plane[c, i%s, j%s][(oh + i/s) * Wg + (ow + j/s)]
 * i.e. at a fixed offset from q = oh*Wg + ow. Computing the output on the
 * grid q in [0, ho*Wg) (the Wg - wo extra columns per row are garbage and
 * dropped) turns the convolution into
 *     Y[m][q] = sum_k A[m][k] * base[off[k] + q]
 * a GEMM whose K rows are shifted views of the planes: no im2col matrix. The
 * data gradient has the same form (dy on the grid, shifted the other way,
 * one GEMM per phase). The weight gradient dW[m][k] = sum_q dy[m][q] *
 * plane[off[k] + q] reduces over q, so it is vectorised over output
 * channels instead: dy is transposed to [q][m] and each tap's plane value is
 * broadcast (wg_tile). Garbage columns of dy on the grid are zero, so they
 * add nothing.
 *
 * Outputs at most 8 wide (the stride-2 layers' 7x7 / 8x8) waste most of
 * the grid's lanes; there the forward is vectorised over output channels
 * instead, each position a broadcast (cv_tile, same sums in the same order).
 *
 * 3x3 stride-1 pad-1 layers of 16+ channels take Winograd (lt_conv_wino.c):
 * F(4x4, 3x3) or F(2x2, 3x3) for the forward and the data gradient, and
 * F(3x3, 4x4) or F(3x3, 2x2) for the weight gradient; it reuses this file's GEMM
 * kernel (lt_conv_sgemm_shift) and channels-last transpose (lt_conv_nhwc16).
 *
 * ISA: the drivers call their kernels through a table (conv_kernels, by
 * lt_conv_isa()): this file's AVX-512 kernels, or lt_conv_avx2.c's 8-lane
 * grid GEMM, weight gradient and transpose with the data movers below
 * compiled for AVX2. Winograd and the channel-vectorised forward exist for
 * AVX-512 only.
 *
 * Parallelism: OpenMP over images, everything per image in per-thread
 * scratch (cache resident). Each thread owns a contiguous range of images;
 * in the forward and data-gradient loops (here and in lt_conv_wino.c) a
 * thread that is done with its own takes the others' from the back
 * (lt_conv_queue, lt_conv_fast.h), which changes no result. Weight gradients
 * go to per-thread partial sums over the static ranges, added in thread
 * order afterwards.
 *
 * Memory: a layer's input and output are megabytes per batch, out of L2, so
 * the passes that read or write them (planes, stores) prefetch the next
 * channel (lt_conv_prefetch, lt_conv_prefetch_w).
 *
 * Measured on this machine's Xeon, one thread, batch 128 (tests/bench and
 * the conv microbenchmark in the issue-6 note): forward and data gradient
 * 110-150 GFLOP/s on the 3x3 stride-1 layers (of ~245 peak per core); the
 * q-vectorised weight gradient ran at 31-44 GFLOP/s, the channel-vectorised
 * one at 96-145. For a fixed thread count the result is therefore identical run
 * to run. No OpenBLAS call is involved, so there is a single thread pool. */
#include "lt_conv_fast.h"

#include <immintrin.h>
#include <omp.h>
#include <string.h>

#define MR 8      /* output rows per forward tile (broadcast operand) */
#define NVMAX 3   /* 16-float vectors per forward tile (48 grid points) */
#define WMR 4     /* weight-gradient tile: output channels */
#define WKR 6     /* weight-gradient tile: taps */

typedef struct {
    int ci, co, kh, kw, s, p, H, W, ho, wo;
    int Hg, Wg, nph;     /* phase-plane grid */
    size_t PS;           /* floats per phase plane (with zero slack) */
    size_t Q;            /* output grid points = ho * Wg */
    size_t L, DS;        /* leading zeros and row stride of dy on the grid */
    int K, KD;           /* ci*kh*kw (forward taps), co*kh*kw (data-gradient taps) */
    size_t sh_afwd, sh_adg, sh_offf, sh_offd, shared;
    int Mp;              /* co rounded up to 16: lanes of the transposed dy */
    size_t t_planes, t_dyg, t_work, t_dyt, t_dw, per_thread;
} fl;

static size_t up16(size_t v) { return (v + 15) & ~(size_t)15; }
static int up8(int v) { return (v + 7) & ~7; }

static void fl_init(fl *f, const lt_conv_geom *g) {
    f->ci = g->ci; f->co = g->co; f->kh = g->kh; f->kw = g->kw;
    f->s = g->stride; f->p = g->pad; f->H = g->h; f->W = g->w; f->ho = g->ho; f->wo = g->wo;
    const int Hp = g->h + 2 * g->pad, Wp = g->w + 2 * g->pad;
    f->Hg = (Hp + f->s - 1) / f->s;
    f->Wg = (Wp + f->s - 1) / f->s;
    f->nph = f->s * f->s;
    /* the largest tap offset reaches (kw-1)/s past the grid */
    f->PS = up16((size_t)f->Hg * f->Wg + (size_t)(f->kw - 1) / f->s + 1);
    f->Q = (size_t)f->ho * f->Wg;
    f->L = (size_t)((f->kh - 1) / f->s) * f->Wg + (size_t)((f->kw - 1) / f->s);
    f->DS = up16(f->L + (size_t)f->Hg * f->Wg + 16);
    f->K = f->ci * f->kh * f->kw;
    f->KD = f->co * f->kh * f->kw;
    /* every block a multiple of 16 floats: the scratch base is 64-byte
     * aligned and the transposed dy / weight-gradient tiles use aligned loads */
    f->sh_afwd = up16((size_t)up8(f->co) * f->K);
    f->sh_adg = up16((size_t)up8(f->ci) * f->KD);
    f->sh_offf = up16((size_t)f->K);
    f->sh_offd = up16((size_t)f->KD);
    f->shared = f->sh_afwd + f->sh_adg + f->sh_offf + f->sh_offd;
    const size_t plane_img = (size_t)f->ci * f->nph * f->PS;
    f->t_planes = plane_img;
    f->t_dyg = (size_t)f->co * f->DS;
    size_t yq = (size_t)f->co * up16(f->Q);
    f->t_work = yq > plane_img ? yq : plane_img;
    f->Mp = (f->co + 15) & ~15;
    f->t_dyt = up16(f->Q * (size_t)f->Mp);
    f->t_dw = up16((size_t)f->K * f->Mp);
    f->per_thread = f->t_planes + f->t_dyg + f->t_work + f->t_dyt + f->t_dw;
}

int lt_conv_steal_first = 0;

int lt_conv_fast_threads(int N) {
    int t = omp_get_max_threads();
    if (t > LT_CONV_MAX_THREADS) t = LT_CONV_MAX_THREADS;
    if (t > N) t = N;
    return t < 1 ? 1 : t;
}

size_t lt_conv_fast_scratch_floats(const lt_conv_geom *g, int N) {
    if (N <= 0) return 0;
    fl f;
    fl_init(&f, g);
    int T = N < LT_CONV_MAX_THREADS ? N : LT_CONV_MAX_THREADS;
    /* sized for Winograd too whether or not g's path takes it: one size for
     * both AVX-512 paths, as before the path moved into the geometry */
    const size_t direct = f.shared + (size_t)T * f.per_thread, wino = lt_conv_wino_scratch_floats(g, N);
    const size_t wwg = lt_conv_wino_wgrad_scratch_floats(g, N);
    const size_t m = direct > wino ? direct : wino;
    return m > wwg ? m : wwg;
}

/* ---- data movement (plain C, vectorised by the compiler) -------------------- */

/* ---- stride 2: even / odd column split by permutes ------------------------- */
/* The scalar stride-2 walks (one element per iteration, a division-free but
 * serial gather) took half of a 3x3 stride-2 layer's forward at ResNet-8's
 * sizes. Both helpers move exactly the elements the scalar loops did. */
__attribute__((target("avx512f"))) static inline __mmask16 mask16(long n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* ev[j] = xr[2j], od[j] = xr[2j + 1] for every such column < W: the row
 * read once for both column phases */
__attribute__((target("avx512f"))) static void split_row2(const float *xr, int W, float *ev, float *od) {
    const __m512i se = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i so = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int c0 = 0; c0 < W; c0 += 32) {
        const long rem = W - c0;
        const __m512 lo = _mm512_maskz_loadu_ps(mask16(rem), xr + c0);
        const __m512 hi = _mm512_maskz_loadu_ps(mask16(rem - 16), xr + c0 + 16);
        _mm512_mask_storeu_ps(ev + c0 / 2, mask16((rem + 1) / 2), _mm512_permutex2var_ps(lo, se, hi));
        _mm512_mask_storeu_ps(od + c0 / 2, mask16(rem / 2), _mm512_permutex2var_ps(lo, so, hi));
    }
}

/* build_planes' data for stride 2 without the zeros: input row r is plane
 * row u = (r + p) / 2 of row phase a = (r + p) % 2; column phase b starts at
 * v_b = (p - b + 1) / 2 with input column 2*v_b + b - p, which is 0 for one
 * b (the even columns) and 1 for the other (the odd ones). */
__attribute__((target("avx512f"))) static void build_planes2_data(const fl *f, const float *x, float *P) {
    const int p = f->p, H = f->H, W = f->W, Wg = f->Wg;
    float *dst[2];
    for (int c = 0; c < f->ci; c++) {
        const float *xc = x + (size_t)c * H * W;
        if (c + 1 < f->ci) lt_conv_prefetch(xc + (size_t)H * W, (size_t)H * W);
        for (int r = 0; r < H; r++) {
            const int a = (r + p) & 1, u = (r + p) >> 1;
            if (u >= f->Hg) break;
            for (int b = 0; b < 2; b++) {
                const int v = (p - b + 1) / 2;
                dst[2 * v + b - p] = P + ((size_t)c * 4 + (size_t)a * 2 + b) * f->PS + (size_t)u * Wg + v;
            }
            split_row2(xc + (size_t)r * W, W, dst[0], dst[1]);
        }
    }
}

/* d[w] (= or +=) the interleave of ev[j] (w = 2j) and od[j] (w = 2j + 1),
 * w < W; a NULL source contributes zeros (an unused phase). With set the
 * value is 0 + v, as memset-then-add gave (so -0 becomes +0, as before). */
__attribute__((target("avx512f"))) static void merge_row2(const float *ev, const float *od, int W, float *d, int set) {
    const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ih = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 zero = _mm512_setzero_ps();
    for (int c0 = 0; c0 < W; c0 += 32) {
        const long rem = W - c0;
        const __m512 e = ev ? _mm512_maskz_loadu_ps(mask16((rem + 1) / 2), ev + c0 / 2) : zero;
        const __m512 o = od ? _mm512_maskz_loadu_ps(mask16(rem / 2), od + c0 / 2) : zero;
        const __m512 v[2] = {_mm512_permutex2var_ps(e, il, o), _mm512_permutex2var_ps(e, ih, o)};
        for (int h = 0; h < 2; h++) {
            const __mmask16 mk = mask16(rem - 16 * h);
            if (!mk) break;
            float *dp = d + c0 + 16 * h;
            const __m512 base = set ? zero : _mm512_maskz_loadu_ps(mk, dp);
            _mm512_mask_storeu_ps(dp, mk, _mm512_add_ps(base, v[h]));
        }
    }
}

/* The data movers below (build_planes, build_dyg, scatter_planes, copy_out's
 * rows) are each compiled twice, for the AVX-512 kernels and for the AVX2
 * ones (wide: whether the AVX-512 permute helpers may run). */
#define LT_W512 __attribute__((target("avx512f")))
#define LT_W256 __attribute__((target("avx2,fma")))
#define LT_BODY static inline __attribute__((always_inline))

/* Phase planes of one image: P[(c*nph + a*s + b)*PS + u*Wg + v] =
 * xpad[s*u + a][s*v + b], zero outside the input and in the slack.
 * Which positions hold data and which stay zero is the same for every image
 * of a layer, so a thread that already built planes for this layer in this
 * buffer passes zeros = 0 and only the data is copied: for the small images
 * of ResNet-8 the per-row zero fills (calls of a few floats each) cost more
 * than the copy itself. */
LT_BODY void planes_body(const fl *f, const float *x, float *P, int zeros, const int wide) {
    const int s = f->s, p = f->p, H = f->H, W = f->W, Hg = f->Hg, Wg = f->Wg;
    if (wide && s == 2 && !zeros) {
        build_planes2_data(f, x, P);
        return;
    }
    for (int c = 0; c < f->ci; c++) {
        const float *xc = x + (size_t)c * H * W;
        if (c + 1 < f->ci) lt_conv_prefetch(xc + (size_t)H * W, (size_t)H * W);
        for (int a = 0; a < s; a++)
            for (int b = 0; b < s; b++) {
                float *pl = P + ((size_t)c * f->nph + (size_t)a * s + b) * f->PS;
                for (int u = 0; u < Hg; u++) {
                    float *d = pl + (size_t)u * Wg;
                    const int r = s * u + a - p;
                    if (r < 0 || r >= H) {
                        if (zeros) memset(d, 0, sizeof(float) * Wg);
                        continue;
                    }
                    const float *xr = xc + (size_t)r * W;
                    if (s == 1) {
                        /* v - p is the input column: p zeros, the row, zeros */
                        if (zeros) {
                            memset(d, 0, sizeof(float) * p);
                            memset(d + p + W, 0, sizeof(float) * (Wg - p - W));
                        }
                        float *dp = d + p;
#pragma omp simd
                        for (int w = 0; w < W; w++) dp[w] = xr[w];
                    } else {
                        /* valid v: 0 <= s*v + b - p < W, a contiguous range */
                        int v0 = (p - b + s - 1) / s, v1 = (W + p - b + s - 1) / s;
                        if (v0 < 0) v0 = 0;
                        if (v1 > Wg) v1 = Wg;
                        if (v1 < v0) v1 = v0;
                        if (zeros) {
                            for (int v = 0; v < v0; v++) d[v] = 0.0f;
                            for (int v = v1; v < Wg; v++) d[v] = 0.0f;
                        }
                        for (int v = v0; v < v1; v++) d[v] = xr[s * v + b - p];
                    }
                }
                if (zeros) memset(pl + (size_t)Hg * Wg, 0, sizeof(float) * (f->PS - (size_t)Hg * Wg));
            }
    }
}

LT_W512 static void build_planes(const fl *f, const float *x, float *P, int zeros) { planes_body(f, x, P, zeros, 1); }
LT_W256 static void build_planes8(const fl *f, const float *x, float *P, int zeros) { planes_body(f, x, P, zeros, 0); }

/* dy of one image on the output grid: row co holds L zeros, then ho rows of
 * Wg (wo values, zeros in the garbage columns), then zeros up to DS. As in
 * build_planes, the zeros are written only when zeros != 0. */
LT_BODY void dyg_body(const fl *f, const float *dy, float *D, int zeros) {
    const size_t P = (size_t)f->ho * f->wo;
    const int wo = f->wo;
    for (int o = 0; o < f->co; o++) {
        float *row = D + (size_t)o * f->DS;
        const float *src = dy + (size_t)o * P;
        if (zeros) memset(row, 0, sizeof(float) * f->L);
        float *g = row + f->L;
        for (int oh = 0; oh < f->ho; oh++) {
            float *d = g + (size_t)oh * f->Wg;
            const float *sr = src + (size_t)oh * wo;
#pragma omp simd
            for (int w = 0; w < wo; w++) d[w] = sr[w];
            if (zeros) memset(d + wo, 0, sizeof(float) * (f->Wg - wo));
        }
        if (zeros) memset(g + f->Q, 0, sizeof(float) * (f->DS - f->L - f->Q));
    }
}

LT_W512 static void build_dyg(const fl *f, const float *dy, float *D, int zeros) { dyg_body(f, dy, D, zeros); }
LT_W256 static void build_dyg8(const fl *f, const float *dy, float *D, int zeros) { dyg_body(f, dy, D, zeros); }

/* dx (one image) += the gradient w.r.t. the phase planes, at the input
 * positions; with set, dx = that gradient (positions no phase reaches: 0). */
LT_BODY void scatter_body(const fl *f, const float *dP, const int *phase_used, float *dx, int set, const int wide) {
    const int s = f->s, p = f->p, H = f->H, W = f->W, Wg = f->Wg;
    for (int c = 0; c < f->ci; c++) {
        float *dc = dx + (size_t)c * H * W;
        for (int h = 0; h < H; h++) {
            float *d = dc + (size_t)h * W;
            const int a = (h + p) % s, u = (h + p) / s;
            if (s == 1) {
                const float *sr = dP + (size_t)c * f->PS + (size_t)u * Wg + p;
                /* omp simd: at -O2 gcc does not vectorise a loop whose
                 * pointers might alias */
                if (set) {
                    memcpy(d, sr, sizeof(float) * W);
                } else {
#pragma omp simd
                    for (int w = 0; w < W; w++) d[w] += sr[w];
                }
                continue;
            }
            if (wide && s == 2) {
                /* phase b's first column 2*v_b + b - p is 0 or 1: one phase
                 * holds the even columns, the other the odd ones */
                const float *src[2] = {NULL, NULL};
                for (int b = 0; b < 2; b++) {
                    if (!phase_used[a * 2 + b]) continue;
                    const int v = (p - b + 1) / 2;
                    src[2 * v + b - p] = dP + ((size_t)c * f->nph + a * 2 + b) * f->PS + (size_t)u * Wg + v;
                }
                merge_row2(src[0], src[1], W, d, set);
                continue;
            }
            if (set) memset(d, 0, sizeof(float) * W);
            /* phase by phase: columns w = s*v + b - p, a stride-s walk with no
             * division per element */
            for (int b = 0; b < s; b++) {
                const int ph = a * s + b;
                int v = (p - b + s - 1) / s;   /* first v with s*v + b - p >= 0 */
                if (v < 0) v = 0;
                if (!phase_used[ph]) {
                    /* stride 2 (the AVX2 kernels): merge_row2 adds an unused
                     * phase's zeros, which turns an exact -0 in dx into +0;
                     * so does this, for the same bits */
                    if (s == 2 && !set)
                        for (int w = s * v + b - p; w < W; w += s) d[w] += 0.0f;
                    continue;
                }
                const float *sr = dP + ((size_t)c * f->nph + ph) * f->PS + (size_t)u * Wg;
                for (int w = s * v + b - p; w < W; w += s, v++) d[w] += sr[v];
            }
        }
    }
}

LT_W512 static void scatter_planes(const fl *f, const float *dP, const int *used, float *dx, int set) {
    scatter_body(f, dP, used, dx, set, 1);
}
LT_W256 static void scatter_planes8(const fl *f, const float *dP, const int *used, float *dx, int set) {
    scatter_body(f, dP, used, dx, set, 0);
}

/* The output grid of one image (rows Wg apart) into y's rows, with the bias
 * and the optional BN-eval [+ residual] + ReLU epilogue (lt_bn_forward_eval's,
 * lt_add_forward's and lt_relu_forward's operations); resn is this image's
 * residual (ep->res offset to the image) or NULL. Row by row (copy_out takes
 * copy_out_short for short rows on AVX-512). */
LT_BODY void copy_rows(const fl *f, const float *ygrid, const float *b, const lt_conv_epilogue *ep,
                       const float *resn, float *yn) {
    const size_t P = (size_t)f->ho * f->wo;
    for (int o = 0; o < f->co; o++) {
        const float *src = ygrid + (size_t)o * up16(f->Q);
        float *dst = yn + (size_t)o * P;
        const float bc = b ? b[o] : 0.0f;
        const float *ro = lt_conv_res_plane(ep, resn, o, P);
        if (o + 1 < f->co) {
            lt_conv_prefetch_w(dst + P, P);
            if (ro) lt_conv_prefetch(ro + P, P);
        }
        if (ep) {
            /* lt_bn_forward_eval's and lt_relu_forward's operations */
            const float mu = ep->mu[o], a = ep->a[o], bb = ep->b[o];
            for (int oh = 0; oh < f->ho; oh++) {
                float *d = dst + (size_t)oh * f->wo;
                const float *sr = src + (size_t)oh * f->Wg;
                if (ro) {
                    const float *rr = ro + (size_t)oh * f->wo;
                    if (ep->relu) {
#pragma omp simd
                        for (int ow = 0; ow < f->wo; ow++)
                            d[ow] = lt_relu1(lt_bn_affine(sr[ow] + bc, mu, a, bb) + rr[ow]);
                    } else {
#pragma omp simd
                        for (int ow = 0; ow < f->wo; ow++) d[ow] = lt_bn_affine(sr[ow] + bc, mu, a, bb) + rr[ow];
                    }
                } else if (ep->relu) {
#pragma omp simd
                    for (int ow = 0; ow < f->wo; ow++) {
                        d[ow] = lt_relu1(lt_bn_affine(sr[ow] + bc, mu, a, bb));
                    }
                } else {
#pragma omp simd
                    for (int ow = 0; ow < f->wo; ow++) d[ow] = lt_bn_affine(sr[ow] + bc, mu, a, bb);
                }
            }
            continue;
        }
        for (int oh = 0; oh < f->ho; oh++) {
            float *d = dst + (size_t)oh * f->wo;
            const float *sr = src + (size_t)oh * f->Wg;
#pragma omp simd
            for (int ow = 0; ow < f->wo; ow++) d[ow] = sr[ow] + bc;
        }
    }
}

LT_W256 static void copy_out8(const fl *f, const float *ygrid, const float *b, const lt_conv_epilogue *ep,
                              const float *resn, float *yn) {
    copy_rows(f, ygrid, b, ep, resn, yn);
}

/* dy of one image transposed onto the output grid: T[q * Mp + m] = dy[m] at
 * grid point q = oh * Wg + ow; zero in the garbage columns (ow >= wo) and in
 * the padding lanes m >= co, so they add nothing to the weight gradient.
 * cl is the channels-last transpose of the ISA. */
static void build_dyt_with(const fl *f, const float *dy, float *T, int zeros,
                           void (*cl)(const float *, int, size_t, int, int, float *)) {
    const size_t P = (size_t)f->ho * f->wo;
    const int Mp = f->Mp;
    for (int oh = 0; oh < f->ho; oh++) {
        float *row = T + (size_t)oh * f->Wg * Mp;
        cl(dy + (size_t)oh * f->wo, f->co, P, f->wo, Mp, row);
        if (zeros) memset(row + (size_t)f->wo * Mp, 0, sizeof(float) * (size_t)(f->Wg - f->wo) * Mp);
    }
}

/* ---- AVX-512 kernels ---------------------------------------------------------- */
#pragma GCC push_options
#pragma GCC target("avx512f")
#include <immintrin.h>

static inline __mmask16 lane_mask(long n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* C[m][q0 .. q0+16*NV) = sum_k A[k][m] * base[off[k] + q], m < mr, masked at Q.
 * A is packed [K][MR] (rows beyond M are zero). */
static inline __attribute__((always_inline)) void
sg_tile(const int NV, int K, const float *A, const float *base, const int *off, size_t q0,
        size_t Q, float *C, size_t ldc, int mr) {
    __m512 acc[MR][NVMAX];
    __mmask16 mk[NVMAX];
#pragma GCC unroll 3
    for (int v = 0; v < NV; v++) mk[v] = lane_mask((long)Q - (long)q0 - 16 * v);
#pragma GCC unroll 8
    for (int m = 0; m < MR; m++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) acc[m][v] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        const float *b = base + off[k] + q0;
        __m512 bv[NVMAX];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) bv[v] = _mm512_maskz_loadu_ps(mk[v], b + 16 * v);
        const float *a = A + (size_t)k * MR;
#pragma GCC unroll 8
        for (int m = 0; m < MR; m++) {
            const __m512 am = _mm512_set1_ps(a[m]);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) acc[m][v] = _mm512_fmadd_ps(am, bv[v], acc[m][v]);
        }
    }
#pragma GCC unroll 8
    for (int m = 0; m < MR; m++) {
        if (m >= mr) break;
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            _mm512_mask_storeu_ps(C + (size_t)m * ldc + q0 + 16 * v, mk[v], acc[m][v]);
    }
}

static void sg_tile1(int K, const float *A, const float *b, const int *o, size_t q0, size_t Q,
                     float *C, size_t ldc, int mr) { sg_tile(1, K, A, b, o, q0, Q, C, ldc, mr); }
static void sg_tile2(int K, const float *A, const float *b, const int *o, size_t q0, size_t Q,
                     float *C, size_t ldc, int mr) { sg_tile(2, K, A, b, o, q0, Q, C, ldc, mr); }
static void sg_tile3(int K, const float *A, const float *b, const int *o, size_t q0, size_t Q,
                     float *C, size_t ldc, int mr) { sg_tile(3, K, A, b, o, q0, Q, C, ldc, mr); }

/* C[m][q] = sum_k A[m][k] * base[off[k] + q] for m < M, q < Q. Ap is packed
 * [ceil(M/8)][K][8]. The m loop is inside the q loop so that the K x 48 panel
 * of shifted inputs stays in L1 across all output rows. */
void lt_conv_sgemm_shift(int M, int K, size_t Q, const float *Ap, const float *base,
                         const int *off, float *C, size_t ldc) {
    const int mb = (M + MR - 1) / MR;
    for (size_t q0 = 0; q0 < Q; q0 += 16 * NVMAX) {
        const size_t rem = Q - q0;
        const int nv = rem > 32 ? 3 : rem > 16 ? 2 : 1;
        for (int bi = 0; bi < mb; bi++) {
            const int mr = M - bi * MR < MR ? M - bi * MR : MR;
            const float *A = Ap + (size_t)bi * K * MR;
            float *Cb = C + (size_t)bi * MR * ldc;
            if (nv == 3) sg_tile3(K, A, base, off, q0, Q, Cb, ldc, mr);
            else if (nv == 2) sg_tile2(K, A, base, off, q0, Q, Cb, ldc, mr);
            else sg_tile1(K, A, base, off, q0, Q, Cb, ldc, mr);
        }
    }
}

/* The weight gradient's transposed dy (build_dyt_with): 16 x 16 blocks (16
 * channels x 16 positions of a row) are transposed in registers: a scalar
 * gather would cost as much as a third of the weight gradient itself. */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    /* r[4g + j] now holds, in each 128-bit lane L, positions 4L..4L+3 of
     * rows 4g..4g+3 interleaved as column j: combine the 128-bit lanes */
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);       /* lanes 0,2 of a | 0,2 of b */
        t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);   /* lanes 1,3 */
        t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);        /* position lane 0 */
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);    /* lane 2 */
        r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);   /* lane 1 */
        r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xdd);  /* lane 3 */
    }
}

/* n positions of C channel rows (cs floats apart) to channels last:
 * dst[p * Cp + c] = src[c * cs + p], lanes C..Cp-1 zero (Cp a multiple of
 * 16), 16 x 16 blocks transposed in registers. */
static void to_channels_last(const float *src, int C, size_t cs, int n, int Cp, float *dst) {
    for (int p0 = 0; p0 < n; p0 += 16) {
        const int np = n - p0 < 16 ? n - p0 : 16;
        const __mmask16 mk = np == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << np) - 1);
        for (int c0 = 0; c0 < Cp; c0 += 16) {
            __m512 r[16];
            /* plain loads for full blocks: masked ones measured slower here
             * even with every lane on (see lt_conv_wino.c's load_n) */
            for (int i = 0; i < 16; i++)
                r[i] = c0 + i >= C ? _mm512_setzero_ps()
                       : np == 16 ? _mm512_loadu_ps(src + (size_t)(c0 + i) * cs + p0)
                                  : _mm512_maskz_loadu_ps(mk, src + (size_t)(c0 + i) * cs + p0);
            transpose16(r);
            for (int i = 0; i < np; i++) _mm512_storeu_ps(dst + (size_t)(p0 + i) * Cp + c0, r[i]);
        }
    }
}

/* One image [C][HW] to [HW][Cp]: the layout the Winograd weight gradient
 * vectorises over channels in. */
void lt_conv_nhwc16(const float *src, int C, int HW, int Cp, float *dst) {
    to_channels_last(src, C, (size_t)HW, HW, Cp, dst);
}

/* (the garbage rows ow >= wo are zeroed only when zeros != 0, as in build_planes) */
static void build_dyt(const fl *f, const float *dy, float *T, int zeros) {
    build_dyt_with(f, dy, T, zeros, to_channels_last);
}

/* Weight gradient of one image, vectorised over output channels:
 *     dWt[k][m] += sum_q planes[off[k] + q] * T[q][m]
 * A register tile holds R taps x NVM 16-channel vectors (R * NVM = 24
 * accumulators); each grid point q costs NVM aligned loads of T, R scalar
 * broadcasts of the planes and R * NVM FMAs, with no horizontal sums and no
 * masks. (The earlier kernel vectorised over q: ten unaligned, line-splitting
 * loads per 24 FMAs and 24 horizontal sums per tile ran at a quarter of the
 * forward's speed.) Each dWt element is one lane summed over q in order:
 * deterministic. Taps past K repeat the last one and are not stored. */
static inline __attribute__((always_inline)) void
wg_tile(const int NVM, const int R, int k0, int K, int mv0, size_t Q, int Mp, const float *planes,
        const int *off, const float *T, float *dWt) {
    __m512 acc[24];
    const float *b[24];
#pragma GCC unroll 24
    for (int r = 0; r < R; r++) {
        const int k = k0 + r < K ? k0 + r : K - 1;
        b[r] = planes + off[k];
#pragma GCC unroll 4
        for (int v = 0; v < NVM; v++) acc[r * NVM + v] = _mm512_setzero_ps();
    }
    const float *t = T + (size_t)mv0 * 16;
    for (size_t q = 0; q < Q; q++, t += Mp) {
        __m512 d[4];
#pragma GCC unroll 4
        for (int v = 0; v < NVM; v++) d[v] = _mm512_load_ps(t + 16 * v);
#pragma GCC unroll 24
        for (int r = 0; r < R; r++) {
            const __m512 x = _mm512_set1_ps(b[r][q]);
#pragma GCC unroll 4
            for (int v = 0; v < NVM; v++) acc[r * NVM + v] = _mm512_fmadd_ps(x, d[v], acc[r * NVM + v]);
        }
    }
#pragma GCC unroll 24
    for (int r = 0; r < R; r++) {
        if (k0 + r >= K) break;
        float *o = dWt + (size_t)(k0 + r) * Mp + (size_t)mv0 * 16;
#pragma GCC unroll 4
        for (int v = 0; v < NVM; v++)
            _mm512_store_ps(o + 16 * v, _mm512_add_ps(_mm512_load_ps(o + 16 * v), acc[r * NVM + v]));
    }
}

static void wg_tile_1(int k0, int K, int mv0, size_t Q, int Mp, const float *p, const int *off, const float *T,
                      float *dW) { wg_tile(1, 24, k0, K, mv0, Q, Mp, p, off, T, dW); }
/* 9 taps (one input channel of a 3x3 kernel) for K = 9, 27: no wasted taps */
static void wg_tile_1r9(int k0, int K, int mv0, size_t Q, int Mp, const float *p, const int *off, const float *T,
                        float *dW) { wg_tile(1, 9, k0, K, mv0, Q, Mp, p, off, T, dW); }
static void wg_tile_2(int k0, int K, int mv0, size_t Q, int Mp, const float *p, const int *off, const float *T,
                      float *dW) { wg_tile(2, 12, k0, K, mv0, Q, Mp, p, off, T, dW); }
static void wg_tile_3(int k0, int K, int mv0, size_t Q, int Mp, const float *p, const int *off, const float *T,
                      float *dW) { wg_tile(3, 8, k0, K, mv0, Q, Mp, p, off, T, dW); }
static void wg_tile_4(int k0, int K, int mv0, size_t Q, int Mp, const float *p, const int *off, const float *T,
                      float *dW) { wg_tile(4, 6, k0, K, mv0, Q, Mp, p, off, T, dW); }

/* dWt[k][m] (K x Mp) += this image's weight gradient. Channel blocks of up
 * to 64 (4 vectors); the taps in blocks of 24 / NVM. */
static void wgrad_image(const fl *f, const float *planes, const float *T, const int *off, float *dWt) {
    const int nvec = f->Mp / 16;
    for (int mv0 = 0; mv0 < nvec; mv0 += 4) {
        const int nvm = nvec - mv0 < 4 ? nvec - mv0 : 4;
        /* the first layers (K = 9 or 27 for 1 or 3 input channels) would waste
         * most of a 24-tap tile */
        const int r9 = nvm == 1 && f->K < 48 && f->K % 9 == 0;
        const int R = r9 ? 9 : 24 / nvm;
        for (int k0 = 0; k0 < f->K; k0 += R) {
            switch (nvm) {
            case 1:
                if (r9) wg_tile_1r9(k0, f->K, mv0, f->Q, f->Mp, planes, off, T, dWt);
                else wg_tile_1(k0, f->K, mv0, f->Q, f->Mp, planes, off, T, dWt);
                break;
            case 2: wg_tile_2(k0, f->K, mv0, f->Q, f->Mp, planes, off, T, dWt); break;
            case 3: wg_tile_3(k0, f->K, mv0, f->Q, f->Mp, planes, off, T, dWt); break;
            default: wg_tile_4(k0, f->K, mv0, f->Q, f->Mp, planes, off, T, dWt); break;
            }
        }
    }
}

/* copy_out for rows shorter than a vector (7x7, 14x14, 8x8 outputs of the
 * stride-2 layers): the plane is written 16 values at a time, each run
 * gathered from the grid by one permute of two loads (a run crosses at most
 * three rows, so it spans at most 15 + 2 * (Wg - wo) <= 32 grid points); the
 * row loops' 7- or 14-wide remainders took as long as the GEMM's tail.
 * The same float operations as copy_out. */
#define CO_RUNS 64
static int copy_out_runs(const fl *f) {
    const size_t P = (size_t)f->ho * f->wo;
    /* a run of 16 starting anywhere in a row crosses at most (wo + 14) / wo
     * row ends, each skipping Wg - wo grid points: it must fit two vectors */
    const int crossings = f->wo > 0 ? (f->wo + 14) / f->wo : 0;
    return f->wo > 0 && f->wo < 16 && P <= 16 * CO_RUNS && 15 + crossings * (f->Wg - f->wo) <= 31
               ? (int)((P + 15) / 16) : 0;
}

static void copy_out_short(const fl *f, const float *ygrid, const float *b, const lt_conv_epilogue *ep,
                           const float *resn, float *yn) {
    const int P = f->ho * f->wo, nr = (P + 15) / 16;
    int base[CO_RUNS];
    __m512i ix[CO_RUNS];
    for (int r = 0; r < nr; r++) {
        int v[16];
        const int e0 = 16 * r;
        base[r] = (e0 / f->wo) * f->Wg + e0 % f->wo;
        for (int k = 0; k < 16; k++) {
            const int e = e0 + k < P ? e0 + k : P - 1;
            v[k] = (e / f->wo) * f->Wg + e % f->wo - base[r];
        }
        ix[r] = _mm512_loadu_si512(v);
    }
    const __m512 zero = _mm512_setzero_ps();
    for (int o = 0; o < f->co; o++) {
        const float *src = ygrid + (size_t)o * up16(f->Q);
        float *dst = yn + (size_t)o * P;
        const float *rr = lt_conv_res_plane(ep, resn, o, P);
        if (o + 1 < f->co) {
            lt_conv_prefetch_w(dst + P, (size_t)P);
            if (rr) lt_conv_prefetch(rr + P, (size_t)P);
        }
        const __m512 bc = _mm512_set1_ps(b ? b[o] : 0.0f);
        __m512 mu = zero, ea = zero, eb = zero;
        if (ep) { mu = _mm512_set1_ps(ep->mu[o]); ea = _mm512_set1_ps(ep->a[o]); eb = _mm512_set1_ps(ep->b[o]); }
        for (int r = 0; r < nr; r++) {
            const long rem = P - 16L * r;
            const __mmask16 mk = lane_mask(rem);
            /* the grid holds up16(Q) + slack per row: the second load stays in it */
            const __m512 x = _mm512_permutex2var_ps(_mm512_loadu_ps(src + base[r]), ix[r],
                                                    _mm512_loadu_ps(src + base[r] + 16));
            __m512 v = _mm512_add_ps(x, bc);
            if (ep) {
                v = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(v, mu), ea), eb);
                if (rr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, rr + 16 * r));
                if (ep->relu) v = _mm512_max_ps(v, zero);
            }
            _mm512_mask_storeu_ps(dst + 16 * r, mk, v);
        }
    }
}

static void copy_out(const fl *f, const float *ygrid, const float *b, const lt_conv_epilogue *ep,
                     const float *resn, float *yn) {
    if (copy_out_runs(f)) copy_out_short(f, ygrid, b, ep, resn, yn);
    else copy_rows(f, ygrid, b, ep, resn, yn);
}

/* ---- the forward vectorised over output channels ------------------------------ */
/* For small outputs (the stride-2 layers' 14x14 and 7x7) the grid's rows
 * waste lanes: 7 of 8 grid points are outputs, and 56 of them fill 3 + 1
 * vectors (the last one half garbage, a tile that is load-bound). Here the
 * lanes are 16 output channels and each output position is a broadcast:
 *     T[p][m] = sum_k planes[off[k] + q(p)] * A[k][m]
 * over the P positions p only (q(p) = oh*Wg + ow), no garbage. Each sum is
 * the same FMAs in the same k order as sg_tile's, so the result is bit for
 * bit the grid path's. A register tile holds R positions x NVM vectors
 * (R * NVM <= 24); positions past the image repeat the last one and are
 * not stored. */
static inline __attribute__((always_inline)) void
cv_tile(const int NVM, const int R, int K, const float *Ak, int Mp, int mv0, const float *planes, const int *off,
        const int *qp, int np, float *T) {
    __m512 acc[24];
    const float *b[24];
#pragma GCC unroll 24
    for (int r = 0; r < R; r++) {
        b[r] = planes + qp[r < np ? r : np - 1];
#pragma GCC unroll 4
        for (int v = 0; v < NVM; v++) acc[r * NVM + v] = _mm512_setzero_ps();
    }
    const float *a = Ak + (size_t)mv0 * 16;
    for (int k = 0; k < K; k++, a += Mp) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int v = 0; v < NVM; v++) wv[v] = _mm512_loadu_ps(a + 16 * v);
        const int o = off[k];
#pragma GCC unroll 24
        for (int r = 0; r < R; r++) {
            const __m512 x = _mm512_set1_ps(b[r][o]);
#pragma GCC unroll 4
            for (int v = 0; v < NVM; v++) acc[r * NVM + v] = _mm512_fmadd_ps(x, wv[v], acc[r * NVM + v]);
        }
    }
#pragma GCC unroll 24
    for (int r = 0; r < R; r++) {
        if (r >= np) break;
#pragma GCC unroll 4
        for (int v = 0; v < NVM; v++) _mm512_storeu_ps(T + (size_t)r * Mp + (size_t)mv0 * 16 + 16 * v, acc[r * NVM + v]);
    }
}

static void cv_tile_1(int K, const float *A, int Mp, int mv0, const float *pl, const int *off, const int *qp, int np,
                      float *T) { cv_tile(1, 16, K, A, Mp, mv0, pl, off, qp, np, T); }
static void cv_tile_2(int K, const float *A, int Mp, int mv0, const float *pl, const int *off, const int *qp, int np,
                      float *T) { cv_tile(2, 12, K, A, Mp, mv0, pl, off, qp, np, T); }
static void cv_tile_3(int K, const float *A, int Mp, int mv0, const float *pl, const int *off, const int *qp, int np,
                      float *T) { cv_tile(3, 8, K, A, Mp, mv0, pl, off, qp, np, T); }
static void cv_tile_4(int K, const float *A, int Mp, int mv0, const float *pl, const int *off, const int *qp, int np,
                      float *T) { cv_tile(4, 6, K, A, Mp, mv0, pl, off, qp, np, T); }

/* T[p][m] (P x Mp) for one image; Ak is [K][Mp], qp[p] = q(p). */
static void cv_image(const fl *f, const float *planes, const float *Ak, const int *off, const int *qp, float *T) {
    const int P = f->ho * f->wo, nvec = f->Mp / 16;
    for (int mv0 = 0; mv0 < nvec; mv0 += 4) {
        const int nvm = nvec - mv0 < 4 ? nvec - mv0 : 4;
        const int R = nvm == 1 ? 16 : 24 / nvm;
        for (int p0 = 0; p0 < P; p0 += R) {
            const int np = P - p0 < R ? P - p0 : R;
            switch (nvm) {
            case 1: cv_tile_1(f->K, Ak, f->Mp, mv0, planes, off, qp + p0, np, T + (size_t)p0 * f->Mp); break;
            case 2: cv_tile_2(f->K, Ak, f->Mp, mv0, planes, off, qp + p0, np, T + (size_t)p0 * f->Mp); break;
            case 3: cv_tile_3(f->K, Ak, f->Mp, mv0, planes, off, qp + p0, np, T + (size_t)p0 * f->Mp); break;
            default: cv_tile_4(f->K, Ak, f->Mp, mv0, planes, off, qp + p0, np, T + (size_t)p0 * f->Mp); break;
            }
        }
    }
}

/* T (positions x channels) into the image's output planes, 16 x 16 blocks
 * transposed in registers, with the bias and epilogue in copy_out_short's
 * operations (bit-identical to it). */
static void cv_store(const fl *f, const float *T, const float *b, const lt_conv_epilogue *ep, const float *resn,
                     float *yn) {
    const int P = f->ho * f->wo, Mp = f->Mp;
    const __m512 zero = _mm512_setzero_ps();
    for (int p0 = 0; p0 < P; p0 += 16) {
        const int np = P - p0 < 16 ? P - p0 : 16;
        const __mmask16 mk = lane_mask(np);
        for (int c0 = 0; c0 < f->co; c0 += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; i++) r[i] = i < np ? _mm512_loadu_ps(T + (size_t)(p0 + i) * Mp + c0) : zero;
            transpose16(r);
            for (int j = 0; j < 16 && c0 + j < f->co; j++) {
                const int o = c0 + j;
                float *dst = yn + (size_t)o * P + p0;
                __m512 v = _mm512_add_ps(r[j], _mm512_set1_ps(b ? b[o] : 0.0f));
                if (ep) {
                    v = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(v, _mm512_set1_ps(ep->mu[o])), _mm512_set1_ps(ep->a[o])),
                                      _mm512_set1_ps(ep->b[o]));
                    const float *ro = lt_conv_res_plane(ep, resn, o, (size_t)P);
                    if (ro) v = _mm512_add_ps(v, np == 16 ? _mm512_loadu_ps(ro + p0) : _mm512_maskz_loadu_ps(mk, ro + p0));
                    if (ep->relu) v = _mm512_max_ps(v, zero);
                }
                if (np == 16) _mm512_storeu_ps(dst, v);
                else _mm512_mask_storeu_ps(dst, mk, v);
            }
        }
    }
}

#pragma GCC pop_options

/* ---- packing ------------------------------------------------------------------ */

/* off[k] = tap k = (c, i, j)'s plane and shift. */
static void tap_offsets(const fl *f, int *off) {
    const int s = f->s;
    for (int c = 0; c < f->ci; c++)
        for (int i = 0; i < f->kh; i++)
            for (int j = 0; j < f->kw; j++) {
                const int k = (c * f->kh + i) * f->kw + j;
                off[k] = (int)(((size_t)c * f->nph + (size_t)(i % s) * s + j % s) * f->PS +
                               (size_t)(i / s) * f->Wg + j / s);
            }
}

/* Forward: A[m = output channel][k = (c, i, j)] = w[m*K + k], packed
 * [ceil(co/8)][K][8] for the grid kernel, and the tap offsets. */
static void pack_forward(const fl *f, const float *w, float *Ap, int *off) {
    const int K = f->K;
    memset(Ap, 0, sizeof(float) * f->sh_afwd);
    for (int m = 0; m < f->co; m++)
        for (int k = 0; k < K; k++) Ap[((size_t)(m / MR) * K + k) * MR + m % MR] = w[(size_t)m * K + k];
    tap_offsets(f, off);
}

/* Data gradient, one GEMM per phase (a, b): rows are input channels, taps are
 * (o, i, j) with i%s == a and j%s == b, reading dy on the grid shifted back by
 * the tap's offset. ph0[ph] / phn[ph] give each phase's first tap and count in
 * off / the packed A (which holds the phases one after another). */
static void pack_dgrad(const fl *f, const float *w, float *Ap, int *off, int *ph0, int *phn) {
    const int s = f->s, ci = f->ci, kh = f->kh, kw = f->kw, mb = up8(ci) / MR;
    memset(Ap, 0, sizeof(float) * f->sh_adg);
    int t = 0;
    size_t abase = 0;
    for (int ph = 0; ph < f->nph; ph++) {
        const int a = ph / s, b = ph % s;
        ph0[ph] = t;
        int n = 0;
        for (int o = 0; o < f->co; o++)
            for (int i = a; i < kh; i += s)
                for (int j = b; j < kw; j += s) {
                    off[t + n] = (int)((size_t)o * f->DS + f->L - ((size_t)(i / s) * f->Wg + j / s));
                    n++;
                }
        phn[ph] = n;
        /* pack this phase's block: [mb][n][8] */
        int q = 0;
        for (int o = 0; o < f->co; o++)
            for (int i = a; i < kh; i += s)
                for (int j = b; j < kw; j += s) {
                    for (int c = 0; c < ci; c++)
                        Ap[abase + ((size_t)(c / MR) * n + q) * MR + c % MR] =
                            w[(((size_t)o * ci + c) * kh + i) * kw + j];
                    q++;
                }
        abase += (size_t)mb * n * MR;
        t += n;
    }
}

/* ---- drivers ------------------------------------------------------------------- */

/* The kernels of one ISA (lt_conv_isa); the drivers below are the same for
 * both. */
typedef struct {
    void (*planes)(const fl *, const float *, float *, int);
    void (*dyg)(const fl *, const float *, float *, int);
    void (*scatter)(const fl *, const float *, const int *, float *, int);
    void (*dyt)(const fl *, const float *, float *, int);
    void (*wgrad)(const fl *, const float *, const float *, const int *, float *);
    void (*sgemm)(int, int, size_t, const float *, const float *, const int *, float *, size_t);
    void (*copy_out)(const fl *, const float *, const float *, const lt_conv_epilogue *, const float *, float *);
    int cv;   /* has the channel-vectorised forward (cv_tile) */
} conv_kernels;

static void build_dyt8(const fl *f, const float *dy, float *T, int zeros) {
    build_dyt_with(f, dy, T, zeros, lt_conv_channels_last_avx2);
}
static void wgrad_image8(const fl *f, const float *planes, const float *T, const int *off, float *dWt) {
    lt_conv_wgrad_avx2(f->K, f->Q, f->Mp, planes, off, T, dWt);
}

static const conv_kernels k512 = {build_planes, build_dyg, scatter_planes, build_dyt, wgrad_image,
                                  lt_conv_sgemm_shift, copy_out, 1};
static const conv_kernels k256 = {build_planes8, build_dyg8, scatter_planes8, build_dyt8, wgrad_image8,
                                  lt_conv_sgemm_shift_avx2, copy_out8, 0};
static const conv_kernels *kernels(void) { return lt_conv_isa() == LT_CONV_ISA_AVX512 ? &k512 : &k256; }

/* Whether the forward takes the channel-vectorised kernel (cv_tile): for
 * kernels of 9+ taps with outputs at most 8 wide, where the grid wastes
 * most (2 threads, batch 128, ms, grid / cv: 32 -> 64 3x3 s2 to 7x7 1.00 /
 * 0.85, to 8x8 1.08 / 0.98, 64 -> 128 to 8x8 4.12 / 3.85; to 14x14 16 -> 32
 * 0.95 / 0.95, even; 1x1 convolutions are slower by it, 256 -> 64 8x8 1.05 /
 * 1.12, 64 -> 256 7x7 0.90 / 1.21: with few taps the transposed store
 * costs more than the lanes saved). */
#define CV_MAX_P 1024
static int cv_mode = 1;
void lt_conv_cv_mode(int mode) { cv_mode = mode < 0 ? 0 : mode > 2 ? 2 : mode; }
static int cv_pays(const fl *f) {
    if (!cv_mode || f->co % 16 || f->ho * f->wo > CV_MAX_P) return 0;
    return cv_mode == 2 || (f->kh * f->kw >= 9 && f->wo <= 8);
}

void lt_conv_fast_forward(const lt_conv_geom *g, int N, const float *x, const float *w,
                          const float *b, float *y, float *scratch, const lt_conv_epilogue *ep) {
    if (lt_conv_wino_pays(g, LT_WINO_FWD)) {
        lt_conv_wino_forward(g, N, x, w, b, y, scratch, ep);
        return;
    }
    const conv_kernels *kk = kernels();
    fl f;
    fl_init(&f, g);
    float *Ap = scratch;
    int *off = (int *)(scratch + f.sh_afwd + f.sh_adg);
    const int cv = kk->cv && cv_pays(&f);
    const size_t HWi = (size_t)f.H * f.W, P = (size_t)f.ho * f.wo;
    /* the channel-vectorised kernel's A as [K][Mp], in the data gradient's
     * packing area (unused here), and its positions' grid points */
    float *Ak = scratch + f.sh_afwd;
    int qp[CV_MAX_P];
    if (cv) {
        tap_offsets(&f, off);
        for (int k = 0; k < f.K; k++)
            for (int m = 0; m < f.co; m++) Ak[(size_t)k * f.Mp + m] = w[(size_t)m * f.K + k];
        for (int p = 0; p < (int)P; p++) qp[p] = (p / f.wo) * f.Wg + p % f.wo;
    } else {
        pack_forward(&f, w, Ap, off);
    }
    float *tbase = scratch + f.shared;
    const int T = lt_conv_fast_threads(N);
    lt_conv_queue q[LT_CONV_MAX_THREADS];
    LT_PAR_REGION(T > 1,
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        _Pragma("omp single")
        lt_conv_queue_init(q, nt, N, 1);
        float *planes = tbase + (size_t)t * f.per_thread;
        float *ygrid = planes + f.t_planes + f.t_dyg;   /* the grid's output, or cv's T */
        int first = 1;
        for (int n, g; lt_conv_queue_next(q, nt, t, &n, &g); first = 0) {
            float *yn = y + (size_t)n * f.co * P;
            const float *rn = ep && ep->res ? ep->res + (size_t)n * f.co * P : NULL;
            kk->planes(&f, x + (size_t)n * f.ci * HWi, planes, first);
            if (cv) {
                /* cv_store writes 16 output planes at a time: their lines
                 * are fetched (owned) while the kernel runs from cache */
                lt_conv_prefetch_w(yn, (size_t)f.co * P);
                if (rn) lt_conv_prefetch(rn, (size_t)f.co * P);
                cv_image(&f, planes, Ak, off, qp, ygrid);
                cv_store(&f, ygrid, b, ep, rn, yn);
            } else {
                kk->sgemm(f.co, f.K, f.Q, Ap, planes, off, ygrid, up16(f.Q));
                kk->copy_out(&f, ygrid, b, ep, rn, yn);
            }
        }
    });
}

void lt_conv_fast_backward(const lt_conv_geom *g, int N, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, float *scratch, int set_dx) {
    if (!dx && !dw) return;
    if (dw && lt_conv_wino_pays(g, LT_WINO_WGRAD)) {
        lt_conv_wino_wgrad(g, N, x, dy, dw, scratch);
        if (!dx) return;
        dw = NULL;
    }
    if (dx && lt_conv_wino_pays(g, LT_WINO_DGRAD)) {
        /* the weight gradient direct, then the data gradient by Winograd in
         * the same scratch (the direct pass is done with it by then) */
        lt_conv_fast_backward(g, N, x, w, dy, NULL, dw, scratch, set_dx);
        lt_conv_wino_dgrad(g, N, w, dy, dx, scratch, set_dx);
        return;
    }
    const conv_kernels *kk = kernels();
    fl f;
    fl_init(&f, g);
    float *Apd = scratch + f.sh_afwd;
    int *offf = (int *)(scratch + f.sh_afwd + f.sh_adg);
    int *offd = (int *)(scratch + f.sh_afwd + f.sh_adg + f.sh_offf);
    int ph0[LT_CONV_FAST_MAX_STRIDE * LT_CONV_FAST_MAX_STRIDE];
    int phn[LT_CONV_FAST_MAX_STRIDE * LT_CONV_FAST_MAX_STRIDE];
    tap_offsets(&f, offf);
    if (dx) pack_dgrad(&f, w, Apd, offd, ph0, phn);
    float *tbase = scratch + f.shared;
    const size_t HWi = (size_t)f.H * f.W, P = (size_t)f.ho * f.wo;
    const int T = lt_conv_fast_threads(N);
    int used = 1;
    LT_PAR_REGION(T > 1,
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        if (t == 0) used = nt;
        float *planes = tbase + (size_t)t * f.per_thread;
        float *dyg = planes + f.t_planes;
        float *work = dyg + f.t_dyg;
        float *dyt = work + f.t_work;
        float *dWt = dyt + f.t_dyt;
        if (dw) memset(dWt, 0, sizeof(float) * (size_t)f.K * f.Mp);
        const int n0 = (int)((long)N * t / nt), n1 = (int)((long)N * (t + 1) / nt);
        for (int n = n0; n < n1; n++) {
            const float *dyn = dy + (size_t)n * f.co * P;
            if (dw) {
                kk->planes(&f, x + (size_t)n * f.ci * HWi, planes, n == n0);
                kk->dyt(&f, dyn, dyt, n == n0);
                kk->wgrad(&f, planes, dyt, offf, dWt);
            }
            if (!dx) continue;
            kk->dyg(&f, dyn, dyg, n == n0);
            size_t abase = 0;
            int used_ph[LT_CONV_FAST_MAX_STRIDE * LT_CONV_FAST_MAX_STRIDE];
            for (int ph = 0; ph < f.nph; ph++) {
                used_ph[ph] = phn[ph] > 0;
                if (!phn[ph]) continue;
                kk->sgemm(f.ci, phn[ph], (size_t)f.Hg * f.Wg, Apd + abase, dyg, offd + ph0[ph],
                            work + (size_t)ph * f.PS, (size_t)f.nph * f.PS);
                abase += (size_t)(up8(f.ci) / MR) * phn[ph] * MR;
            }
            kk->scatter(&f, work, used_ph, dx + (size_t)n * f.ci * HWi, set_dx);
        }
    });
    if (dw) {
        /* fixed order over threads: deterministic for a fixed thread count;
         * dWt is [K][Mp], dw is [co][K] */
        for (int t = 0; t < used; t++) {
            const float *p = tbase + (size_t)t * f.per_thread + f.t_planes + f.t_dyg + f.t_work + f.t_dyt;
            for (int m = 0; m < f.co; m++)
                for (int k = 0; k < f.K; k++) dw[(size_t)m * f.K + k] += p[(size_t)k * f.Mp + m];
        }
    }
}
