/* lt_conv_wino.c — Winograd F(2x2, 3x3) and F(4x4, 3x3) for 3x3, stride-1,
 * pad-1 convolutions: the forward and the data gradient of the fast path; and
 * F(3x3, 2x2) for their weight gradient (engine 0.5.0, at the end of the
 * file: 32 -> 32 16x16 2.18-2.22 ms direct, 1.41-1.91 Winograd; 64 -> 64
 * 8x8 2.26-2.47 / 1.38-1.64; 16 -> 16 32x32 3.41-3.44 / 2.89-2.93).
 *
 * Why: after the weight gradient was vectorised (engine 0.2.0) the shifted
 * GEMM of the forward and data gradient was half of a training step and ran
 * at 55-60% of a core's FMA peak. F(2x2, 3x3) computes each 2x2 output tile
 * from a 4x4 input tile with 16 multiplies per (in, out) channel pair instead
 * of 36: 2.25x fewer FLOPs, paid for with two cheap, cache-resident
 * transforms (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
 * Networks").
 *
 * Layout, per image and per thread, all in the thread's scratch:
 *  1. the zero-padded input split into its four stride-2 phase planes, rows
 *     Wg = tW + 1 wide, so that element (i, j) of the 4x4 input tile of tile
 *     q = ty * Wg + tx is  plane[(i&1)*2 + (j&1)][q + (i>>1)*Wg + (j>>1)]: a
 *     shifted view, as in lt_conv_fast.c (one garbage tile column per row);
 *  2. input transform V[xi][c][q] = (B^T d B)[xi], vectorised over 16 tiles;
 *  3. 16 GEMMs M[xi] = U[xi] V[xi] with the shifted-GEMM kernel of the
 *     direct path (lt_conv_sgemm_shift; here the "taps" are channels);
 *  4. output transform A^T M A into four phase grids, then interleaved into
 *     the NCHW output rows with the bias / BN+ReLU epilogue / accumulate
 *     (under F(4x4), where a 16-lane group maps onto whole output rows or
 *     runs, 8-tile-wide grids, dense 4x4 tiles and quads, both in one pass
 *     from registers: wino_out_store4_w8, wino_out_store4_si).
 * Tiles are transformed and multiplied in chunks of 48 so that V and M stay
 * in L2 (small images: several whole images per chunk, see WINO_LANES_MIN);
 * the phase grids hold the whole image until it is stored.
 *
 * When F(2x2) paid (engine 0.5.0; 0.6.0 below), measured at batch 128 and
 * the runner's two threads (ms per call, direct / Winograd, 2026-11-23):
 *     layer            forward       data gradient
 *     1 -> 16, 28x28   0.17 / 0.58   (never needed: the input)
 *     16 -> 16, 32x32  1.88 / 2.00   1.93 / 2.00
 *     32 -> 32, 16x16  1.82 / 1.65   2.05 / 1.64
 *     32 -> 32, 14x14  1.49 / 1.41   1.62 / 1.40
 *     64 -> 64, 8x8    2.02 / 2.15   2.78 / 2.15
 *     64 -> 64, 7x7    1.81 / 2.14   2.32 / 2.14
 * So: at least 32 channels on both sides (the GEMM's reduction and its rows
 * are the channels; with 16 the transforms cost what the GEMM saves, with 1
 * or 3 far more). Engine 0.4.0 also kept forwards of fewer than 48 tiles per
 * image direct: one image per chunk left most GEMM lanes to padding tiles.
 * Since several small images share a chunk (engine 0.5.0) those pay too
 * (same table, 0.5.0, three alternating runs each: 64 -> 64 8x8 forward
 * 2.10-2.33 direct / 1.63-2.11 Winograd, data gradient 2.03-2.42 before /
 * 1.65-1.72 after; 7x7 forward 2.02-2.40 / 1.88-2.34, data gradient
 * 2.24-2.48 / 1.80-2.08). At one thread the 16-channel layers gain a few
 * percent; the rule follows the default.
 *
 * F(4x4, 3x3) (engine 0.6.0, the section after wino_store): 6x6 input
 * tiles, 36 matrices, 16 stride-4 phase planes; 2.25 multiplies per output
 * instead of 4. Once its planes and stores were cut to one permute per 16
 * values for rows of up to 32 (they had been half its time), measured at
 * batch 128, 2 threads, 30 interleaved calls each, min ms (direct / F(2x2)
 * on the grid / F(4x4) on the grid, 2026-11-23):
 *     layer            forward              data gradient
 *     16 -> 16, 32x32  1.67 / 1.70 / 1.27   1.81 / 1.73 / 1.28
 *     16 -> 16, 28x28  1.33 / 1.39 / 1.11   1.44 / 1.42 / 1.09
 *     32 -> 32, 16x16  1.69 / 1.44 / 1.33   2.00 / 1.49 / 1.39
 *     32 -> 32, 14x14  1.36 / 1.24 / 1.33   1.59 / 1.20 / 1.30
 *     64 -> 64, 8x8    1.87 / 1.65 / 1.61   2.82 / 1.67 / 1.65
 *     64 -> 64, 7x7    1.67 / 1.59 / 1.60   2.31 / 1.66 / 1.64
 * (one thread: 16 -> 16 32x32 forward 3.41 / 3.09 / 2.39).
 *
 * Small images waste the grid's garbage column (8x8 under F(2x2): 20 lanes
 * for 16 tiles; 16x16 under F(4x4): 20 for 16; 8x8 under F(4x4): 6 for 4),
 * so where an image has 4 x 4 tiles its 16 tiles are gathered from 5x5
 * phase planes by permutes into one dense vector (f->si: F(2x2) on 7..8 a
 * side, F(4x4) on 13..16), and where it has 2 x 2 tiles under F(4x4) four
 * images share a vector (f->quad: 5..8 a side). Same arithmetic per tile as
 * the grid (the dense F(2x2) path is bit-identical to it). Measured as
 * above, ms, forward / data gradient:
 *     32 -> 32, 16x16  dense F(2x2) 1.50 / 1.52, dense F(4x4) 0.93 / 0.95
 *     32 -> 32, 14x14  dense F(2x2) 1.28 / 1.29, dense F(4x4) 0.97 / 0.84
 *     64 -> 64, 8x8    grid F(2x2) 1.65 / 1.67, dense F(2x2) 1.19 / 1.19;
 *                      at a slower hour dense F(2x2) 1.39 / 1.37, quads 1.17 / 1.11
 *     64 -> 64, 7x7    grid F(2x2) 1.59 / 1.66, dense F(2x2) 1.19 / 1.16;
 *                      at a slower hour dense F(2x2) 1.39 / 1.37, quads 1.09-1.22 / 1.12
 * At ImageNet widths the same holds (batch 128, 2 threads, ms, direct /
 * F(2x2) / F(4x4); forward, then weight gradient by F(3x3, 2x2) / F(3x3,
 * 4x4)): 128 -> 128 28x28 76.3 / 46.3 / 34.7, 52.7 / 39.0; 256 -> 256
 * 14x14 79.9 / 53.3 / 31.8, 54.5 / 41.6; 512 -> 512 7x7 101.7 / 65.1 /
 * 45.0, 66.0 / 64.5.
 * The rule (lt_conv_wino_tile): F(4x4) on 2 x 2 tiles, 4 x 4 tiles and on
 * larger images whose sides are multiples of 4 (no padded tiles); F(2x2)
 * elsewhere; Winograd from 16 channels on both sides (F(2x2) at 16 is on
 * par with direct). F(4x4) rounds more: about 4-7e-6 of max|y| against
 * F(2x2)'s 3e-7 (G has 1/6 and 1/24, B^T and A^T entries up to 8), bounded
 * at 1e-5 in the tests.
 *
 * The data gradient of a 3x3 stride-1 pad-1 convolution is the same
 * convolution of dy with the weights transposed over channels and rotated
 * 180 degrees, so it runs through the same code.
 *
 * Numerics: the transforms reorder and rescale the sums (G has entries 1/2,
 * and 1/6, 1/24 under F(4x4)), so results differ from direct summation by a
 * few float roundings (F(4x4): a few more, see above); the
 * forward and gradients are checked against a naive convolution in
 * tests/test_ops_grad.c. Everything is per image, in a fixed order:
 * deterministic for a fixed thread count. */
#include "lt_conv_fast.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Tiles per chunk: the shifted GEMM's widest register tile (3 x 16 lanes).
 * V and M of a chunk, 16 x (ci + co) x 48 floats, stay in L2 (384 KiB at 64
 * + 64 channels); larger chunks measured no faster, smaller ones waste the
 * kernel's third vector. */
#define WINO_QB 48
/* Small images share a chunk: G = lanes / Q whole images back to back when
 * G >= 2, lanes = max(80, WINO_LANE_BUDGET / (ci + co)) (V and M of a chunk
 * about 590 KiB at most, in L2). 8x8 and 7x7 images (20 tiles with the
 * garbage column) at 64 channels: 4 per chunk, 80 lanes instead of 20 of 32
 * (a 7x7 data gradient had 16 useful lanes in 32); 16x16 / 14x14 at 32
 * channels: 2 per chunk, 144 / 112 lanes instead of 48 + 24 / 48 + 8 in
 * 80 / 64. Measured (ms, 2 threads, batch 128, three runs): 32 -> 32 16x16
 * data gradient 1.68-1.71 -> 1.43-1.50, 14x14 forward 1.48-1.54 ->
 * 1.17-1.43; 64 -> 64 8x8 no faster with more than 80 lanes. Per output
 * element the arithmetic is the same whichever images share its chunk. */
#define WINO_LANES_MIN 80
#define WINO_LANE_BUDGET 9216
/* F(4x4, 3x3): 36 matrices, so 16/36 of the lanes for the same footprint */
#define WINO4_LANES_MIN 48
#define WINO4_LANE_BUDGET 4096

typedef struct {
    int m, NX, NP;        /* output tile m x m (2 or 4); (m + 2)^2 matrices; m*m phases */
    int H, W, ci, co;     /* input size, input (reduction) and output channels */
    int tH, tW, Hg, Wg;   /* tiles and phase-plane grid */
    size_t PS;            /* floats per phase plane (with slack for shifted loads) */
    size_t Q;             /* lanes per image: tH * Wg on the grid; 16 dense (si); 4 (quad) */
    size_t QB;            /* tiles per chunk */
    size_t QP;            /* row length of V and M: QB, plus 16 when G > 1 (the last
                             image's 16-lane groups run past QB) */
    int G;                /* images per chunk: 1, or more for small images (WINO_LANES_MIN) */
    int si;               /* 4 x 4 tiles (F(2x2): 8x8, 7x7; F(4x4): 13..16): dense, 16 lanes per image */
    int quad;             /* F(4x4) on 2 x 2 tiles (5..8 a side): 4 images per 16 lanes */
    size_t PSI;           /* quad: floats between the 4 images' planes */
    size_t QY;            /* row length of the phase grids Y: up16(Q) */
    size_t sh_u, sh_off, shared;
    size_t VS, MS;        /* floats between the NX matrices of V / of M */
    size_t t_planes, t_v, t_m, t_y, per_thread;
} wg;

static size_t up16(size_t v) { return (v + 15) & ~(size_t)15; }
static int up8(int v) { return (v + 7) & ~7; }

/* ci: channels reduced over, co: channels produced (swapped for dgrad);
 * m: output tile, 2 for F(2x2, 3x3), 4 for F(4x4, 3x3). */
static void wg_init(wg *f, int H, int W, int ci, int co, int m) {
    f->m = m; f->NX = (m + 2) * (m + 2); f->NP = m * m;
    f->H = H; f->W = W; f->ci = ci; f->co = co;
    f->tH = (H + m - 1) / m; f->tW = (W + m - 1) / m;
    f->Hg = f->tH + 1; f->Wg = f->tW + 1;
    /* a 16-lane load at the last tile reads up to 15 + Wg + 1 past it */
    f->PS = up16((size_t)f->Hg * f->Wg + 16);
    f->Q = (size_t)f->tH * f->Wg;
    /* images of 4 x 4 tiles: their 16 tiles are one vector, gathered from the
     * phase planes by permutes (wino_input_si, wino_input4_si) instead of
     * shifted loads over a grid with a garbage column (20 lanes per image,
     * 25% waste in the transforms and the GEMM); 2 x 2 tiles under F(4x4):
     * four images per vector (wino_input4_q) */
    f->si = f->tH == 4 && f->tW == 4;   /* F(2x2): 8x8, 7x7; F(4x4): 16x16 .. 13x13 */
    if (f->si) f->Q = 16;
    f->quad = m == 4 && f->tH == 2 && f->tW == 2;
    if (f->quad) f->Q = 4;
    f->QY = up16(f->Q);
    f->QB = WINO_QB < f->QY ? WINO_QB : f->QY;
    f->G = 1;
    f->QP = f->QB;
    /* the same V + M footprint for either tile: 16 or 36 matrices */
    size_t lanes = (m == 2 ? WINO_LANE_BUDGET : WINO4_LANE_BUDGET) / (size_t)(ci + co);
    const size_t lmin = m == 2 ? WINO_LANES_MIN : WINO4_LANES_MIN;
    if (lanes < lmin) lanes = lmin;
    if (2 * f->Q <= lanes) {
        f->G = (int)(lanes / f->Q);
        if (f->quad) f->G &= ~3;   /* whole quads */
        f->QB = (size_t)f->G * f->Q;
        f->QP = f->QB + 16;
    } else if (m == 4) {
        /* F(4x4): one chunk per image when it fits (32x32: 72 tiles, not 48 + 24) */
        f->QB = f->QY <= (lanes + 15) / 16 * 16 ? f->QY : (lanes + 15) / 16 * 16;
        f->QP = f->QB;
    }
    f->sh_u = up16((size_t)f->NX * up8(co) * ci);
    f->sh_off = up16((size_t)ci);
    f->shared = f->sh_u + f->sh_off;
    f->t_planes = (size_t)ci * f->NP * f->PS;
    f->PSI = f->t_planes;
    if (f->quad) f->t_planes *= 4;
    /* one cache line more than the matrix: with 16 matrices a power-of-two
     * apart, the transforms' 16 streams alias in the 4 KiB store-forwarding
     * check (measured: the input transform took 1.5x the GEMM's time) */
    f->VS = (size_t)ci * f->QP + 16;
    f->MS = (size_t)co * f->QP + 16;
    f->t_v = (size_t)f->NX * f->VS;
    f->t_m = (size_t)f->NX * f->MS;
    f->t_y = (size_t)f->NP * co * f->QY + 16;
    f->per_thread = f->t_planes + f->t_v + f->t_m + f->t_y;
}

int lt_conv_wino_applies(const lt_conv_geom *g) {
    return g->groups == 1 && g->kh == 3 && g->kw == 3 && g->stride == 1 && g->pad == 1;
}

/* The backend's path decides (lt_conv_geom.path): AUTO the measured rule
 * below, WINO every 3x3 stride-1 pad-1 layer, DIRECT and REF never. */
int lt_conv_wino_pays(const lt_conv_geom *g, int pass) {
    const lt_conv_path path = lt_conv_geom_path(g);
    const int mode = path == LT_CONV_PATH_AUTO ? 1 : path == LT_CONV_PATH_WINO ? 2 : 0;
    /* the Winograd kernels are AVX-512 only */
    if (!mode || !lt_conv_wino_applies(g) || lt_conv_isa() != LT_CONV_ISA_AVX512) return 0;
    if (mode == 2) return 1;
    (void)pass;   /* all three passes: 16+ channels on both sides (the tile: lt_conv_wino_tile) */
    /* the weight gradient pays from 16 channels (16 -> 16 28x28: 2.77-2.80 ms
     * direct, 1.80-2.20 Winograd); the stems (1 or 3 input channels, 15 or
     * 13 of the 16 lanes idle) are 2-3x slower by it */
    return g->ci >= 16 && g->co >= 16;
}

int lt_conv_wino_tile(const lt_conv_geom *g, int pass) {
    const int forced = lt_conv_geom_wino_tile(g);
    if (forced) return forced;
    /* the weight gradient's tiles are dense (no grid): F(3x3, 4x4) from 7 a
     * side (2 threads, ms, F(3x3, 2x2) / F(3x3, 4x4): 16 -> 16 32x32 1.84 /
     * 1.37, 28x28 1.31 / 1.02, 32 -> 32 16x16 1.15 / 0.86, 14x14 0.92 /
     * 0.85, 64 -> 64 8x8 1.05 / 0.93, 7x7 1.02 / 0.89) */
    const int lo0 = g->h < g->w ? g->h : g->w;
    if (pass == LT_WINO_WGRAD) return lo0 >= 7 ? 4 : 2;
    /* F(4x4) on 2 x 2 tiles (5..8 a side: four images per vector,
     * wino_input4_q), on 4 x 4 tiles (13..16: dense, wino_input4_si) and on
     * larger images without padded tiles (sides multiples of 4); F(2x2) on
     * the rest */
    const int lo = g->h < g->w ? g->h : g->w, hi = g->h < g->w ? g->w : g->h;
    if (lo >= 5 && hi <= 8) return 4;
    if (lo >= 13 && hi <= 16) return 4;
    return lo >= 16 && g->h % 4 == 0 && g->w % 4 == 0 ? 4 : 2;
}

static size_t wg_scratch(int H, int W, int ci, int co, int m, int T) {
    wg f;
    wg_init(&f, H, W, ci, co, m);
    return f.shared + (size_t)T * f.per_thread;
}

size_t lt_conv_wino_scratch_floats(const lt_conv_geom *g, int N) {
    if (N <= 0 || !lt_conv_wino_applies(g)) return 0;
    const int T = N < LT_CONV_MAX_THREADS ? N : LT_CONV_MAX_THREADS;
    size_t best = 0;
    for (int m = 2; m <= 4; m += 2) {   /* forward, then data gradient (channels swapped) */
        const size_t a = wg_scratch(g->h, g->w, g->ci, g->co, m, T), b = wg_scratch(g->h, g->w, g->co, g->ci, m, T);
        if (a > best) best = a;
        if (b > best) best = b;
    }
    return best;
}

/* U[xi] = (G g G^T)[xi] for every (out o, in c) pair, packed for the shifted
 * GEMM as [xi][ceil(co/8)][ci][8]; g(o, c) = w[(o*ci + c)*9] (forward) or the
 * transposed, rotated kernel (dgrad: w is [ci_fwd = co here][co_fwd = ci]). */
static void pack_u(const wg *f, const float *w, int dgrad, float *U) {
    const int ci = f->ci, co = f->co, mb = up8(co) / 8;
    memset(U, 0, sizeof(float) * f->sh_u);
    for (int o = 0; o < co; o++)
        for (int c = 0; c < ci; c++) {
            float g[3][3];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    g[i][j] = dgrad ? w[((size_t)c * co + o) * 9 + (2 - i) * 3 + (2 - j)]
                                    : w[((size_t)o * ci + c) * 9 + i * 3 + j];
            float t[4][3];   /* G g */
            for (int j = 0; j < 3; j++) {
                t[0][j] = g[0][j];
                t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
                t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
                t[3][j] = g[2][j];
            }
            for (int i = 0; i < 4; i++) {
                const float u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]),
                                    0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
                for (int j = 0; j < 4; j++)
                    U[(size_t)(i * 4 + j) * mb * ci * 8 + ((size_t)(o / 8) * ci + c) * 8 + o % 8] = u[j];
            }
        }
}

#pragma GCC push_options
#pragma GCC target("avx512f")
#include <immintrin.h>

static inline __mmask16 mask_n(long n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* F(4x4, 3x3): U[xi] = (G g G^T)[xi], xi < 36, packed as pack_u does, with
 * G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6;
 * 0 0 1] (Lavin & Gray's points 0, +-1, +-2), for the output-channel blocks
 * ob0 <= ob < ob1 (the threads split them: 36 matrices of up to 64 x 64 took
 * 10-15% of an 8x8 layer when one thread packed them). Every forward and
 * data gradient repacks (weights change between steps), so this is in
 * AVX-512: the lanes are 16 consecutive floats of a packed row, (input
 * channel, output channel of the block) pairs, after one scalar pass puts
 * the block's 9 taps in that order; each of the 36 matrices is written as
 * contiguous runs (writing all 36 per (o, c), 16 KiB apart at 64 channels,
 * took a tenth of an 8x8 layer). The scalar version with 8 lanes took a
 * fifth of a batch-4 ResNet-8 forward. Same operations in the same order as
 * it, so bit-identical. */
static void pack_u4(const wg *f, const float *w, int dgrad, int ob0, int ob1, float *U) {
    const int ci = f->ci, co = f->co, mb = up8(co) / 8;
    const size_t xs = (size_t)mb * ci * 8;   /* floats between the 36 matrices */
    const __m512 s4 = _mm512_set1_ps(0.25f), s6 = _mm512_set1_ps(1.0f / 6), n6 = _mm512_set1_ps(-(1.0f / 6));
    const __m512 s12 = _mm512_set1_ps(1.0f / 12), s24 = _mm512_set1_ps(1.0f / 24);
    _Alignas(64) float gt[9][64 * 8];   /* tap k of (c0 + cc, ob*8 + l) at [k][cc*8 + l] */
    for (int ob = ob0; ob < ob1; ob++)
        for (int c0 = 0; c0 < ci; c0 += 64) {
            const int nc = ci - c0 < 64 ? ci - c0 : 64, n = nc * 8;
            for (int l = 0; l < 8; l++) {
                const int o = ob * 8 + l;
                for (int cc = 0; cc < nc; cc++) {
                    const int c = c0 + cc;
                    if (o >= co) {
                        for (int k = 0; k < 9; k++) gt[k][cc * 8 + l] = 0.0f;
                    } else if (dgrad) {
                        const float *wp = w + ((size_t)c * co + o) * 9;
                        for (int k = 0; k < 9; k++) gt[k][cc * 8 + l] = wp[8 - k];
                    } else {
                        const float *wp = w + ((size_t)o * ci + c) * 9;
                        for (int k = 0; k < 9; k++) gt[k][cc * 8 + l] = wp[k];
                    }
                }
            }
            if (n % 16)
                for (int k = 0; k < 9; k++) memset(&gt[k][n], 0, sizeof(float) * 8);
            float *ub = U + ((size_t)ob * ci + c0) * 8;
            for (int p = 0; p < n; p += 16) {
                const __mmask16 mk = n - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)0xFF;
                __m512 t[6][3];   /* G g */
#pragma GCC unroll 3
                for (int j = 0; j < 3; j++) {
                    const __m512 g0 = _mm512_load_ps(&gt[j][p]), g1 = _mm512_load_ps(&gt[3 + j][p]);
                    const __m512 g2 = _mm512_load_ps(&gt[6 + j][p]);
                    t[0][j] = _mm512_mul_ps(s4, g0);
                    t[1][j] = _mm512_mul_ps(n6, _mm512_add_ps(_mm512_add_ps(g0, g1), g2));
                    t[2][j] = _mm512_mul_ps(n6, _mm512_add_ps(_mm512_sub_ps(g0, g1), g2));
                    t[3][j] = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(s24, g0), _mm512_mul_ps(s12, g1)),
                                            _mm512_mul_ps(s6, g2));
                    t[4][j] = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(s24, g0), _mm512_mul_ps(s12, g1)),
                                            _mm512_mul_ps(s6, g2));
                    t[5][j] = g2;
                }
#pragma GCC unroll 6
                for (int i = 0; i < 6; i++) {
                    const __m512 g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
                    __m512 u[6];
                    u[0] = _mm512_mul_ps(s4, g0);
                    u[1] = _mm512_mul_ps(n6, _mm512_add_ps(_mm512_add_ps(g0, g1), g2));
                    u[2] = _mm512_mul_ps(n6, _mm512_add_ps(_mm512_sub_ps(g0, g1), g2));
                    u[3] = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(s24, g0), _mm512_mul_ps(s12, g1)),
                                         _mm512_mul_ps(s6, g2));
                    u[4] = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(s24, g0), _mm512_mul_ps(s12, g1)),
                                         _mm512_mul_ps(s6, g2));
                    u[5] = g2;
#pragma GCC unroll 6
                    for (int jx = 0; jx < 6; jx++) {
                        float *dst = ub + (size_t)(i * 6 + jx) * xs + p;
                        if (mk == 0xFFFF) _mm512_storeu_ps(dst, u[jx]);
                        else _mm512_mask_storeu_ps(dst, mk, u[jx]);
                    }
                }
            }
        }
}

/* Masked loads and stores are several times slower than plain ones on this
 * machine's cores even with every lane enabled (measured: wino_planes and
 * wino_store took a third of a 32x32 layer), so full vectors take the plain
 * instruction. */
static inline __m512 load_n(const float *p, long n) {
    return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask_n(n), p);
}
static inline void store_n(float *p, long n, __m512 v) {
    if (n >= 16) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, mask_n(n), v);
}

/* The store epilogue of every Winograd store (one output channel o): v =
 * conv + bias, then BN eval [+ residual] [ReLU] with the same float
 * operations as lt_bn_forward_eval / lt_add / lt_relu_forward, so fusion is
 * bit-identical, then set or accumulate n <= 16 values at dp (res: the
 * residual at the same position, or NULL). */
typedef struct {
    __m512 bc, mu, ea, eb;
    const lt_conv_epilogue *ep;
    int bias, accumulate;
} epi16;

static inline epi16 epi_for(const float *bias, const lt_conv_epilogue *ep, int accumulate, int o) {
    const __m512 zero = _mm512_setzero_ps();
    epi16 e = {_mm512_set1_ps(bias ? bias[o] : 0.0f), zero, zero, zero, ep, bias != NULL, accumulate};
    if (ep) {
        e.mu = _mm512_set1_ps(ep->mu[o]);
        e.ea = _mm512_set1_ps(ep->a[o]);
        e.eb = _mm512_set1_ps(ep->b[o]);
    }
    return e;
}

static inline __attribute__((always_inline)) void epi_store(const epi16 *e, __m512 x, const float *res, float *dp,
                                                            long n) {
    if (e->bias) x = _mm512_add_ps(x, e->bc);
    if (e->ep) {
        x = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(x, e->mu), e->ea), e->eb);
        if (res) x = _mm512_add_ps(x, load_n(res, n));
        if (e->ep->relu) x = _mm512_max_ps(x, _mm512_setzero_ps());
    }
    if (e->accumulate) x = _mm512_add_ps(load_n(dp, n), x);
    store_n(dp, n, x);
}

/* Phase planes of one image (padding 1): P[(c*4 + a*2 + b)*PS + u*Wg + v] =
 * x[2u + a - 1][2v + b - 1], zero outside. Each input row is split into its
 * even and odd columns with one permute per 16 outputs; every element is
 * written once (zeroing the whole buffer first cost as much as the copy).
 * The zero positions are the same for every image, so with zeros == 0 (the
 * thread built this layer's planes in P before) only the data is written. */
static void wino_planes(const wg *f, const float *x, float *P, int zeros) {
    const int H = f->H, W = f->W, Wg = f->Wg;
    const int n1 = (W + 1) / 2, n0 = W / 2;   /* data in plane b=1 (v < n1), b=0 (1 <= v <= n0) */
    const size_t tail = f->PS - (size_t)f->Hg * Wg;
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int c = 0; c < f->ci; c++) {
        const float *xc = x + (size_t)c * H * W;
        if (c + 1 < f->ci) lt_conv_prefetch(xc + (size_t)H * W, (size_t)H * W);
        for (int a = 0; a < 2; a++) {
            float *p0 = P + ((size_t)c * 4 + a * 2) * f->PS;   /* b = 0: columns 2v - 1 */
            float *p1 = p0 + f->PS;                             /* b = 1: columns 2v */
            for (int u = 0; u < f->Hg; u++) {
                const int r = 2 * u + a - 1;
                float *d0 = p0 + (size_t)u * Wg, *d1 = p1 + (size_t)u * Wg;
                if (r < 0 || r >= H) {
                    if (zeros) {
                        memset(d0, 0, sizeof(float) * Wg);
                        memset(d1, 0, sizeof(float) * Wg);
                    }
                    continue;
                }
                const float *xr = xc + (size_t)r * W;
                for (int v0 = 0; 2 * v0 < W; v0 += 16) {
                    const long rem = W - 2L * v0;   /* input columns left */
                    const __m512 lo = load_n(xr + 2 * v0, rem);
                    const __m512 hi = load_n(xr + 2 * v0 + 16, rem - 16);
                    /* even columns 2v -> plane b=1 at v; odd 2v+1 -> plane b=0 at v+1 */
                    store_n(d1 + v0, (rem + 1) / 2, _mm512_permutex2var_ps(lo, ev, hi));
                    store_n(d0 + 1 + v0, rem / 2, _mm512_permutex2var_ps(lo, od, hi));
                }
                if (!zeros) continue;
                d0[0] = 0.0f;
                for (int v = n0 + 1; v < Wg; v++) d0[v] = 0.0f;
                for (int v = n1; v < Wg; v++) d1[v] = 0.0f;
            }
            if (!zeros) continue;
            memset(p0 + (size_t)f->Hg * Wg, 0, sizeof(float) * tail);
            memset(p1 + (size_t)f->Hg * Wg, 0, sizeof(float) * tail);
        }
    }
}

/* The input transform of one 16-lane group of 4x4 tiles d: (B^T d B)[i][j]
 * stored at o[(i*4 + j) * ld], B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 * (shared by the forward / data gradient, lanes = tiles, and the weight
 * gradient, lanes = channels). */
static inline __attribute__((always_inline)) void input_transform(__m512 d[4][4], float *o, size_t ld) {
    __m512 t[4][4];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        t[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
        t[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
        t[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
        t[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        float *oi = o + (size_t)i * 4 * ld;
        _mm512_storeu_ps(oi, _mm512_sub_ps(t[i][0], t[i][2]));
        _mm512_storeu_ps(oi + ld, _mm512_add_ps(t[i][1], t[i][2]));
        _mm512_storeu_ps(oi + 2 * ld, _mm512_sub_ps(t[i][2], t[i][1]));
        _mm512_storeu_ps(oi + 3 * ld, _mm512_sub_ps(t[i][1], t[i][3]));
    }
}

/* V[xi][c][q - q0] = (B^T d B)[xi] for tiles q in [q0, q0 + n) of the chunk. */
static void wino_input(const wg *f, const float *P, size_t q0, size_t n, float *V) {
    const size_t Wg = (size_t)f->Wg, ld = f->VS;
    for (int c = 0; c < f->ci; c++) {
        const float *pc = P + (size_t)c * 4 * f->PS;
        float *vc = V + (size_t)c * f->QP;
        for (size_t q = 0; q < n; q += 16) {
            __m512 d[4][4];
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++)
                    d[i][j] = _mm512_loadu_ps(pc + (size_t)((i & 1) * 2 + (j & 1)) * f->PS + q0 + q +
                                              (size_t)(i >> 1) * Wg + (size_t)(j >> 1));
            input_transform(d, vc + q, ld);
        }
    }
}

/* Y[o][a*2 + b][q0 + q] = (A^T M A)[a][b], A^T = [1 1 1 0; 0 1 -1 -1]. */
static void wino_output(const wg *f, const float *M, size_t q0, size_t n, float *Y) {
    const size_t ld = f->MS;
    for (int o = 0; o < f->co; o++) {
        const float *mo = M + (size_t)o * f->QP;
        float *yo = Y + (size_t)o * 4 * f->QY + q0;
        for (size_t q = 0; q < n; q += 16) {
            __m512 s[2][4];
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const __m512 m0 = _mm512_loadu_ps(mo + (size_t)(0 + j) * ld + q);
                const __m512 m1 = _mm512_loadu_ps(mo + (size_t)(4 + j) * ld + q);
                const __m512 m2 = _mm512_loadu_ps(mo + (size_t)(8 + j) * ld + q);
                const __m512 m3 = _mm512_loadu_ps(mo + (size_t)(12 + j) * ld + q);
                s[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                s[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
            }
#pragma GCC unroll 2
            for (int a = 0; a < 2; a++) {
                _mm512_storeu_ps(yo + (size_t)(a * 2) * f->QY + q,
                                _mm512_add_ps(_mm512_add_ps(s[a][0], s[a][1]), s[a][2]));
                _mm512_storeu_ps(yo + (size_t)(a * 2 + 1) * f->QY + q,
                                _mm512_sub_ps(_mm512_sub_ps(s[a][1], s[a][2]), s[a][3]));
            }
        }
    }
}

/* Interleaves the phase grids into the output image y ([co][H][W]): v = conv + bias, then the epilogue of lt_conv_fast
 * (BN eval, ReLU: the same float operations as lt_bn_forward_eval and
 * lt_relu_forward, so fusion stays bit-identical), then set or accumulate. */
static void wino_store(const wg *f, const float *Y, const float *bias,
                       const lt_conv_epilogue *ep, const float *res, int accumulate, float *y) {
    const int H = f->H, W = f->W, Wg = f->Wg;
    const __m512i lo_i = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_i = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (int o = 0; o < f->co; o++) {
        const float *yo = Y + (size_t)o * 4 * f->QY;
        float *out = y + (size_t)o * H * W;
        const float *ro = lt_conv_res_plane(ep, res, o, (size_t)H * W);
        const epi16 epi = epi_for(bias, ep, accumulate, o);
        if (o + 1 < f->co) {
            lt_conv_prefetch_w(out + (size_t)H * W, (size_t)H * W);
            if (ro) lt_conv_prefetch(ro + (size_t)H * W, (size_t)H * W);
        }
        for (int r = 0; r < f->tH; r++)
            for (int a = 0; a < 2; a++) {
                const int oh = 2 * r + a;
                if (oh >= H) break;
                const float *g0 = yo + (size_t)(a * 2) * f->QY + (size_t)r * Wg;
                const float *g1 = g0 + f->QY;
                float *d = out + (size_t)oh * W;
                for (int t0 = 0; 2 * t0 < W; t0 += 16) {
                    /* lanes past the row's tiles are garbage or past the buffer */
                    const __m512 e = load_n(g0 + t0, f->tW - t0), od = load_n(g1 + t0, f->tW - t0);
                    __m512 v[2] = {_mm512_permutex2var_ps(e, lo_i, od), _mm512_permutex2var_ps(e, hi_i, od)};
#pragma GCC unroll 2
                    for (int h = 0; h < 2; h++) {
                        const long rem = W - 2L * t0 - 16L * h;
                        if (rem <= 0) break;
                        float *dp = d + 2 * t0 + 16 * h;
                        epi_store(&epi, v[h], ro ? ro + (dp - out) : NULL, dp, rem);
                    }
                }
            }
    }
}


/* ---- F(2x2) on 8x8 / 7x7 images (f->si) ----------------------------------------
 * Each 5x5 phase plane fits two vectors, so tile element (i, j) of all 16
 * tiles is one permute of phase plane (i&1)*2 + (j&1) shifted by (i>>1, j>>1);
 * V and M hold 16 dense lanes per image, and the output plane (64 or 49
 * values per channel) is assembled 16 at a time from the four phase grids
 * by two permutes and a blend. Per tile the same arithmetic as the grid
 * path: bit-identical. */
/* is[s]: lane k (tile ty = k >> 2, tx = k & 3) of a 4 x 4-tile image's
 * plane, shifted by (s >> 1, s & 1) rows / columns */
static void si_index(const wg *f, __m512i is[4]) {
    for (int s = 0; s < 4; s++) {
        int ix[16];
        for (int k = 0; k < 16; k++) ix[k] = ((k >> 2) + (s >> 1)) * f->Wg + (k & 3) + (s & 1);
        is[s] = _mm512_loadu_si512(ix);
    }
}

static void wino_input_si(const wg *f, const float *P, float *V) {
    __m512i is[4];
    si_index(f, is);
    const __m512i i00 = is[0], i01 = is[1], i10 = is[2], i11 = is[3];
    for (int c = 0; c < f->ci; c++) {
        const float *pc = P + (size_t)c * 4 * f->PS;
        __m512 lo[4], hi[4];
#pragma GCC unroll 4
        for (int ph = 0; ph < 4; ph++) {
            lo[ph] = _mm512_loadu_ps(pc + (size_t)ph * f->PS);
            hi[ph] = _mm512_loadu_ps(pc + (size_t)ph * f->PS + 16);
        }
        __m512 d[4][4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                const int ph = (i & 1) * 2 + (j & 1), s = (i >> 1) * 2 + (j >> 1);
                const __m512i ix_s = s == 0 ? i00 : s == 1 ? i01 : s == 2 ? i10 : i11;
                d[i][j] = _mm512_permutex2var_ps(lo[ph], ix_s, hi[ph]);
            }
        input_transform(d, V + (size_t)c * f->QP, f->VS);
    }
}

static void wino_store_si(const wg *f, const float *Y, const float *bias,
                          const lt_conv_epilogue *ep, const float *res, int accumulate, float *y) {
    const int HW = f->H * f->W, nb = (HW + 15) / 16;
    __m512i ix[4];
    __mmask16 odd[4];
    for (int cb = 0; cb < nb; cb++) {
        int v[16];
        unsigned mk = 0;
        for (int k = 0; k < 16; k++) {
            const int e = cb * 16 + k < HW ? cb * 16 + k : HW - 1, oh = e / f->W, ow = e % f->W;
            v[k] = (oh >> 1) * 4 + (ow >> 1) + 16 * (ow & 1);
            if (oh & 1) mk |= 1u << k;
        }
        ix[cb] = _mm512_loadu_si512(v);
        odd[cb] = (__mmask16)mk;
    }
    for (int o = 0; o < f->co; o++) {
        const float *yo = Y + (size_t)o * 4 * f->QY;
        const __m512 y00 = _mm512_loadu_ps(yo), y01 = _mm512_loadu_ps(yo + f->QY);
        const __m512 y10 = _mm512_loadu_ps(yo + 2 * f->QY), y11 = _mm512_loadu_ps(yo + 3 * f->QY);
        float *out = y + (size_t)o * HW;
        const float *ro = lt_conv_res_plane(ep, res, o, (size_t)HW);
        const epi16 epi = epi_for(bias, ep, accumulate, o);
        for (int cb = 0; cb < nb; cb++) {
            const long rem = HW - 16L * cb;
            float *dp = out + 16 * cb;
            const __m512 ev = _mm512_permutex2var_ps(y00, ix[cb], y01), od = _mm512_permutex2var_ps(y10, ix[cb], y11);
            __m512 x = _mm512_mask_blend_ps(odd[cb], ev, od);
            epi_store(&epi, x, ro ? ro + 16 * cb : NULL, dp, rem);
        }
    }
}

/* ---- F(4x4, 3x3) --------------------------------------------------------------
 * The same scheme with 4x4 output tiles from 6x6 input tiles: 36 multiplies
 * per (in, out) pair for 16 outputs (2.25 per output instead of F(2x2)'s 4
 * and the direct path's 9), and V, M of 36 / 16 = 2.25 floats per output
 * instead of 4. The input is split into 16 stride-4 phase planes, so tile
 * element (i, j) of tile q is plane[(i&3)*4 + (j&3)][q + (i>>2)*Wg + (j>>2)]. */

/* Phase planes of one image (padding 1): P[(c*16 + a*4 + b)*PS + u*Wg + v] =
 * x[4u + a - 1][4v + b - 1], zero outside. A row is split into its four
 * column phases with two permutes and a lane shuffle per 16 outputs. The
 * first image of a thread zeroes the planes first; the zero positions are
 * the same for every image, so later ones write only the data. */
/* lanes 8-15 (AVX-512F has no 32x8 extract) */
static inline __m256 hi8(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

/* n >= 16 lanes: a plain load; fewer: masked; none: no load at all */
static inline __m512 load_in(const float *p, long n) {
    return n >= 16 ? _mm512_loadu_ps(p) : n > 0 ? _mm512_maskz_loadu_ps(mask_n(n), p) : _mm512_setzero_ps();
}

static void wino_planes4(const wg *f, const float *x, float *P, int zeros) {
    const int H = f->H, W = f->W, Wg = f->Wg;
    if (zeros) memset(P, 0, sizeof(float) * f->PSI);   /* one image's planes (a quad has four) */
    __m512i ix[4];
    for (int p = 0; p < 4; p++) {
        int v[16];
        for (int k = 0; k < 16; k++) v[k] = p + 4 * (k & 7);
        ix[p] = _mm512_loadu_si512(v);
    }
    /* rows of up to 32: phases p, p + 1 in one vector; nz[p]: the mask of
     * phase p's n = ceil((W - p) / 4) data lanes */
    int i2[2][16];
    unsigned nz[4];
    for (int k = 0; k < 16; k++) {
        i2[0][k] = (k >> 3) + 4 * (k & 7);
        i2[1][k] = 2 + (k >> 3) + 4 * (k & 7);
    }
    for (int p = 0; p < 4; p++) {
        const int n = W > p ? (W - p + 3) / 4 : 0;
        nz[p] = n >= 8 ? 0xFFu : (1u << n) - 1;
    }
    const __m512i i01 = _mm512_loadu_si512(i2[0]), i23 = _mm512_loadu_si512(i2[1]);
    for (int c = 0; c < f->ci; c++) {
        const float *xc = x + (size_t)c * H * W;
        if (c + 1 < f->ci) lt_conv_prefetch(xc + (size_t)H * W, (size_t)H * W);
        /* input rows in order (row r is row u = (r + 1) / 4 of phase a =
         * (r + 1) % 4; each plane's rows still ascend): the input is a
         * previous layer's output, mostly not in L2, and a sequential walk
         * is what the hardware prefetcher follows (phase by phase, rows 4
         * apart, the loads' misses were two thirds of this function) */
        for (int r = 0; r < H; r++) {
            const int a = (r + 1) & 3, u = (r + 1) >> 2;
            if (u >= f->Hg) break;
            {
                float *pa = P + ((size_t)c * 16 + a * 4) * f->PS;
                const float *xr = xc + (size_t)r * W;
                float *d = pa + (size_t)u * Wg;
                if (W <= 32) {
                    /* up to 8 per phase: one permute gives two phases (lanes
                     * 0-7 and 8-15), stored as 8-lane halves, zero past the
                     * data (n <= 8 <= Wg - 1 + 1: the half ends in the row or
                     * on the next row's first, zero-or-rewritten position) */
                    const __m512 x0 = load_in(xr, W), x1 = load_in(xr + 16, W - 16);
                    const __m512 v01 = _mm512_permutex2var_ps(x0, i01, x1), v23 = _mm512_permutex2var_ps(x0, i23, x1);
                    const __mmask16 z = (__mmask16)(nz[0] | nz[1] << 8), z23 = (__mmask16)(nz[2] | nz[3] << 8);
                    const __m512 w01 = _mm512_maskz_mov_ps(z, v01), w23 = _mm512_maskz_mov_ps(z23, v23);
                    _mm256_storeu_ps(d + f->PS, _mm512_castps512_ps256(w01));              /* phase 0 -> b = 1 */
                    _mm256_storeu_ps(d + 2 * f->PS, hi8(w01));       /* phase 1 -> b = 2 */
                    _mm256_storeu_ps(d + 3 * f->PS, _mm512_castps512_ps256(w23));          /* phase 2 -> b = 3 */
                    _mm256_storeu_ps(d + 1, hi8(w23));               /* phase 3 -> b = 0 */
                    continue;
                }
                for (int v0 = 0; 4 * v0 < W; v0 += 16) {
                    const long rem = W - 4L * v0;   /* input columns left */
                    const __m512 x0 = load_in(xr + 4 * v0, rem), x1 = load_in(xr + 4 * v0 + 16, rem - 16);
                    const __m512 x2 = load_in(xr + 4 * v0 + 32, rem - 32), x3 = load_in(xr + 4 * v0 + 48, rem - 48);
#pragma GCC unroll 4
                    for (int p = 0; p < 4; p++) {
                        /* input columns 4k + p: plane b = p + 1 at v = k, or b = 0 at k + 1 for p = 3 */
                        const __m512 lo = _mm512_permutex2var_ps(x0, ix[p], x1);
                        const __m512 hi = _mm512_permutex2var_ps(x2, ix[p], x3);
                        const __m512 v = _mm512_shuffle_f32x4(lo, hi, _MM_SHUFFLE(1, 0, 1, 0));
                        const long n = (rem - p + 3) / 4;
                        if (n <= 0) continue;
                        /* all 16 lanes, those past the row's data zero: they
                         * land on the next plane row (written after this one,
                         * rows ascending) or the plane's slack, where zeros
                         * belong anyway; masked stores cost several times
                         * more (planes were a quarter of a 16x32x32 layer) */
                        const __m512 vz = n >= 16 ? v : _mm512_maskz_mov_ps(mask_n(n), v);
                        _mm512_storeu_ps(p < 3 ? d + (size_t)(p + 1) * f->PS + v0 : d + 1 + v0, vz);
                    }
                }
            }
        }
    }
}

/* the 1-D input transform B^T d, B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0;
 * 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1] */
static inline __attribute__((always_inline)) void bt6(const __m512 d[6], __m512 t[6]) {
    const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f);
    const __m512 a = _mm512_fnmadd_ps(four, d[2], d[4]), b = _mm512_fnmadd_ps(four, d[1], d[3]);
    const __m512 c = _mm512_sub_ps(d[4], d[2]), e = _mm512_add_ps(_mm512_sub_ps(d[3], d[1]), _mm512_sub_ps(d[3], d[1]));
    t[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
    t[1] = _mm512_add_ps(a, b);
    t[2] = _mm512_sub_ps(a, b);
    t[3] = _mm512_add_ps(c, e);
    t[4] = _mm512_sub_ps(c, e);
    t[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

/* The column pass of the 6x6 input transform: e holds the rows of d B; stores
 * (B^T e)[i][j] at o[(i*6 + j) * ld] (F(4x4) forward / data gradient, lanes =
 * tiles; F(3x3, 4x4) weight gradient, lanes = channels). */
static inline __attribute__((always_inline)) void cols6(__m512 e[6][6], float *o, size_t ld) {
#pragma GCC unroll 6
    for (int j = 0; j < 6; j++) {
        const __m512 col[6] = {e[0][j], e[1][j], e[2][j], e[3][j], e[4][j], e[5][j]};
        __m512 t[6];
        bt6(col, t);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) _mm512_storeu_ps(o + (size_t)(i * 6 + j) * ld, t[i]);
    }
}

/* the 1-D output transform A^T m, A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0;
 * 0 1 1 4 4 0; 0 1 -1 8 -8 1] */
static inline __attribute__((always_inline)) void at6(const __m512 m[6], __m512 y[4]) {
    const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
    const __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
    y[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
    y[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d34, d12);
    y[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), s34, s12);
    y[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d34, d12), m[5]);
}

/* V[xi][c][q - q0] = (B^T d B)[xi], xi < 36, for tiles [q0, q0 + n). */
static void wino_input4(const wg *f, const float *P, size_t q0, size_t n, float *V) {
    const size_t Wg = (size_t)f->Wg, ld = f->VS;
    for (int c = 0; c < f->ci; c++) {
        const float *pc = P + (size_t)c * 16 * f->PS;
        float *vc = V + (size_t)c * f->QP;
        for (size_t q = 0; q < n; q += 16) {
            __m512 e[6][6];   /* rows of d B */
#pragma GCC unroll 6
            for (int i = 0; i < 6; i++) {
                __m512 d[6];
#pragma GCC unroll 6
                for (int j = 0; j < 6; j++)
                    d[j] = _mm512_loadu_ps(pc + (size_t)((i & 3) * 4 + (j & 3)) * f->PS + q0 + q +
                                           (size_t)(i >> 2) * Wg + (size_t)(j >> 2));
                bt6(d, e[i]);
            }
            cols6(e, vc + q, ld);
        }
    }
}

/* The output transform of one 16-lane group: y[a][b] = (A^T m A)[a][b]
 * from the 36 matrices' lanes at mo (ld apart). Shared by wino_output4 and
 * the fused stores, so they cannot drift apart. */
static inline __attribute__((always_inline)) void out4_group(const float *mo, size_t ld, __m512 y[4][4]) {
    __m512 s[6][4];   /* rows of M A */
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        __m512 m[6];
#pragma GCC unroll 6
        for (int j = 0; j < 6; j++) m[j] = _mm512_loadu_ps(mo + (size_t)(i * 6 + j) * ld);
        at6(m, s[i]);
    }
#pragma GCC unroll 4
    for (int b = 0; b < 4; b++) {
        const __m512 col[6] = {s[0][b], s[1][b], s[2][b], s[3][b], s[4][b], s[5][b]};
        __m512 t4[4];
        at6(col, t4);
#pragma GCC unroll 4
        for (int a = 0; a < 4; a++) y[a][b] = t4[a];
    }
}

/* Y[o][a*4 + b][q0 + q] = (A^T M A)[a][b]. */
static void wino_output4(const wg *f, const float *M, size_t q0, size_t n, float *Y) {
    for (int o = 0; o < f->co; o++) {
        const float *mo = M + (size_t)o * f->QP;
        float *yo = Y + (size_t)o * 16 * f->QY + q0;
        for (size_t q = 0; q < n; q += 16) {
            __m512 y[4][4];
            out4_group(mo + q, f->MS, y);
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) _mm512_storeu_ps(yo + (size_t)(a * 4 + b) * f->QY + q, y[a][b]);
        }
    }
}

/* lanes 0-7 from p, 8-15 from q */
static inline __m512 cat8(const float *p, const float *q) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(p))),
                                               _mm256_castps_pd(_mm256_loadu_ps(q)), 1));
}

/* wino_store for 4x4 tiles: output row 4r + a interleaves the four phase
 * grids (a, b = 0..3). Rows of up to 32 (8 tiles) put two grids in one
 * vector and need one permute per 16 outputs; wider rows two levels of
 * pairwise interleaves per 64. The epilogue is wino_store's. */
static void wino_store4(const wg *f, const float *Y, const float *bias,
                        const lt_conv_epilogue *ep, const float *res, int accumulate, float *y) {
    const int H = f->H, W = f->W, Wg = f->Wg;
    const size_t QY = f->QY;
    const __m512i lo_i = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_i = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i lo_d = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
    const __m512i hi_d = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
    int sidx[2][16];   /* output 4t + b of tiles t < 8 from cat8(g0, g1), cat8(g2, g3) */
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 16; k++) {
            const int t = 4 * h + (k >> 2), b = k & 3;
            sidx[h][k] = (b & 1) * 8 + (b >> 1) * 16 + t;
        }
    const __m512i s0 = _mm512_loadu_si512(sidx[0]), s1 = _mm512_loadu_si512(sidx[1]);
    const __m512 zero = _mm512_setzero_ps();
    for (int o = 0; o < f->co; o++) {
        const float *yo = Y + (size_t)o * 16 * QY;
        float *out = y + (size_t)o * H * W;
        const float *ro = lt_conv_res_plane(ep, res, o, (size_t)H * W);
        const epi16 epi = epi_for(bias, ep, accumulate, o);
        if (o + 1 < f->co) {
            lt_conv_prefetch_w(out + (size_t)H * W, (size_t)H * W);
            if (ro) lt_conv_prefetch(ro + (size_t)H * W, (size_t)H * W);
        }
        for (int r = 0; r < f->tH; r++)
            for (int a = 0; a < 4; a++) {
                const int oh = 4 * r + a;
                if (oh >= H) break;
                /* lanes past the row's tiles are garbage (Y has 16 floats of slack) */
                const float *g0 = yo + (size_t)(a * 4) * QY + (size_t)r * Wg;
                float *d = out + (size_t)oh * W;
                for (int t0 = 0; 4 * t0 < W; t0 += 16) {
                    __m512 v[4];
                    if (W <= 32) {
                        const __m512 b01 = cat8(g0, g0 + QY), b23 = cat8(g0 + 2 * QY, g0 + 3 * QY);
                        v[0] = _mm512_permutex2var_ps(b01, s0, b23);
                        v[1] = _mm512_permutex2var_ps(b01, s1, b23);
                        v[2] = v[3] = zero;   /* unused: rem <= 0 */
                    } else {
                        const __m512 b0 = _mm512_loadu_ps(g0 + t0), b1 = _mm512_loadu_ps(g0 + QY + t0);
                        const __m512 b2 = _mm512_loadu_ps(g0 + 2 * QY + t0), b3 = _mm512_loadu_ps(g0 + 3 * QY + t0);
                        const __m512d p01l = _mm512_castps_pd(_mm512_permutex2var_ps(b0, lo_i, b1));
                        const __m512d p01h = _mm512_castps_pd(_mm512_permutex2var_ps(b0, hi_i, b1));
                        const __m512d p23l = _mm512_castps_pd(_mm512_permutex2var_ps(b2, lo_i, b3));
                        const __m512d p23h = _mm512_castps_pd(_mm512_permutex2var_ps(b2, hi_i, b3));
                        v[0] = _mm512_castpd_ps(_mm512_permutex2var_pd(p01l, lo_d, p23l));
                        v[1] = _mm512_castpd_ps(_mm512_permutex2var_pd(p01l, hi_d, p23l));
                        v[2] = _mm512_castpd_ps(_mm512_permutex2var_pd(p01h, lo_d, p23h));
                        v[3] = _mm512_castpd_ps(_mm512_permutex2var_pd(p01h, hi_d, p23h));
                    }
#pragma GCC unroll 4
                    for (int h = 0; h < 4; h++) {
                        const long rem = W - 4L * t0 - 16L * h;
                        if (rem <= 0) break;
                        float *dp = d + 4 * t0 + 16 * h;
                        epi_store(&epi, v[h], ro ? ro + (dp - out) : NULL, dp, rem);
                    }
                }
            }
    }
}

/* wino_output4 + wino_store4 in one pass for grids 8 tiles wide (Wg == 8:
 * 25..28 a side, the default protocol's 28x28): a 16-lane group is exactly
 * two grid rows, so the 16 output-transform vectors of a group give its 8
 * output rows directly (the halves of each phase pair side by side, then
 * wino_store4's permutes), and the phase grids Y (64 KiB per image at 16
 * channels, written then read back through L2) are not needed. The same
 * operations as the two functions, so bit-identical. M is one image's
 * (lane 0 = its tile 0). */
static void wino_out_store4_w8(const wg *f, const float *M, const float *bias, const lt_conv_epilogue *ep,
                               const float *res, int accumulate, float *y) {
    const int H = f->H, W = f->W;
    const size_t HW = (size_t)H * W;
    int sidx[2][16];   /* as in wino_store4 */
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 16; k++) {
            const int t = 4 * h + (k >> 2), b = k & 3;
            sidx[h][k] = (b & 1) * 8 + (b >> 1) * 16 + t;
        }
    const __m512i s0 = _mm512_loadu_si512(sidx[0]), s1 = _mm512_loadu_si512(sidx[1]);
    for (int o = 0; o < f->co; o++) {
        const float *mo = M + (size_t)o * f->QP;
        float *out = y + (size_t)o * HW;
        const float *ro = lt_conv_res_plane(ep, res, o, HW);
        lt_conv_prefetch_w(out + HW, HW);
        if (ro) lt_conv_prefetch(ro + HW, HW);
        const epi16 epi = epi_for(bias, ep, accumulate, o);
        for (int r0 = 0; r0 < f->tH; r0 += 2) {
            __m512 yv[4][4];
            out4_group(mo + (size_t)r0 * 8, f->MS, yv);
            for (int hs = 0; hs < 2 && r0 + hs < f->tH; hs++)
                for (int a = 0; a < 4; a++) {
                    const int oh = 4 * (r0 + hs) + a;
                    if (oh >= H) break;
                    const __m512 b01 = hs ? _mm512_shuffle_f32x4(yv[a][0], yv[a][1], 0xEE)
                                          : _mm512_shuffle_f32x4(yv[a][0], yv[a][1], 0x44);
                    const __m512 b23 = hs ? _mm512_shuffle_f32x4(yv[a][2], yv[a][3], 0xEE)
                                          : _mm512_shuffle_f32x4(yv[a][2], yv[a][3], 0x44);
                    float *d = out + (size_t)oh * W;
                    const float *rr = ro ? ro + (size_t)oh * W : NULL;
                    epi_store(&epi, _mm512_permutex2var_ps(b01, s0, b23), rr, d, W);
                    if (W > 16) epi_store(&epi, _mm512_permutex2var_ps(b01, s1, b23), rr ? rr + 16 : NULL, d + 16, W - 16);
                }
        }
    }
}

/* F(4x4) on images of 4 x 4 tiles (f->si: 16x16 .. 13x13): as
 * wino_input_si, with 16 phase planes of 5x5 and 6x6 tile elements. */
static void wino_input4_si(const wg *f, const float *P, float *V) {
    __m512i is[4];
    si_index(f, is);
    const size_t ld = f->VS;
    for (int c = 0; c < f->ci; c++) {
        const float *pc = P + (size_t)c * 16 * f->PS;
        float *vc = V + (size_t)c * f->QP;
        __m512 e[6][6];   /* rows of d B */
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) {
            __m512 d[6];
#pragma GCC unroll 6
            for (int j = 0; j < 6; j++) {
                const float *pl = pc + (size_t)((i & 3) * 4 + (j & 3)) * f->PS;
                d[j] = _mm512_permutex2var_ps(_mm512_loadu_ps(pl), is[(i >> 2) * 2 + (j >> 2)], _mm512_loadu_ps(pl + 16));
            }
            bt6(d, e[i]);
        }
        cols6(e, vc, ld);
    }
}

/* The runs of the F(4x4) dense store (wino_out_store4_si): the output
 * plane 16 values at a time, each
 * gathered from the 16 phase grids Y[a*4 + b] (or their vectors): per
 * output row in the run (two when W >= 8, up to four below), two permutes
 * (b = 0/1 by ix, 2/3 by ix) and a blend (mb), the row's lanes rm, its
 * phase a. Tile lanes from 0 (add lane0: the quad's image). */
enum { SI_NB = 16 };   /* runs: 16x16 / 16 */
typedef struct {
    int nb;
    __m512i ix[SI_NB];
    __mmask16 mb[SI_NB], rm[SI_NB][4];
    int na[SI_NB], aa[SI_NB][4];
} si_runs;

static void si_runs_init(const wg *f, si_runs *R) {
    const int HW = f->H * f->W;
    R->nb = (HW + 15) / 16;
    for (int cb = 0; cb < R->nb; cb++) {
        int v[16];
        unsigned hb = 0;
        R->na[cb] = 0;
        int last = -1;
        for (int k = 0; k < 16; k++) {
            const int e = cb * 16 + k < HW ? cb * 16 + k : HW - 1, oh = e / f->W, ow = e % f->W;
            v[k] = (oh >> 2) * f->tW + (ow >> 2) + 16 * (ow & 1);
            if (ow & 2) hb |= 1u << k;
            if (oh != last) {
                R->aa[cb][R->na[cb]] = oh & 3;
                R->rm[cb][R->na[cb]++] = 0;
                last = oh;
            }
            R->rm[cb][R->na[cb] - 1] |= (__mmask16)(1u << k);
        }
        R->ix[cb] = _mm512_loadu_si512(v);
        R->mb[cb] = (__mmask16)hb;
    }
}

/* One output channel's plane from its 16 phase vectors y[a][b]. */
static inline __attribute__((always_inline)) void si_store_plane(const si_runs *R, __m512i lane0, const __m512 y[4][4],
                                                                 const epi16 *epi, const float *ro, float *out, int HW) {
    for (int cb = 0; cb < R->nb; cb++) {
        const __m512i ix = _mm512_add_epi32(R->ix[cb], lane0);
        __m512 x = _mm512_setzero_ps();
        for (int r = 0; r < R->na[cb]; r++) {
            const int a = R->aa[cb][r];
            const __m512 p01 = _mm512_permutex2var_ps(y[a][0], ix, y[a][1]);
            const __m512 p23 = _mm512_permutex2var_ps(y[a][2], ix, y[a][3]);
            x = _mm512_mask_mov_ps(x, R->rm[cb][r], _mm512_mask_blend_ps(R->mb[cb], p01, p23));
        }
        epi_store(epi, x, ro ? ro + 16 * cb : NULL, out + 16 * cb, HW - 16L * cb);
    }
}

/* wino_output4 and the dense store in one pass for the dense 4x4-tile path
 * (f->si) and quads (f->quad: the group's images img[0..ni), ni <= 4, at
 * lanes 4j): each channel's 16 transform vectors stay in registers instead
 * of going through the phase grids Y. Bit-identical to the two. M holds
 * the group's 16 lanes from lane 0. out[j] / res[j]: image j's output and
 * residual (or NULL). */
static void wino_out_store4_si(const wg *f, const float *M, int ni, const float *bias, const lt_conv_epilogue *ep,
                               const float *const *res, int accumulate, float *const *out) {
    const int HW = f->H * f->W;
    si_runs R;
    si_runs_init(f, &R);
    for (int o = 0; o < f->co; o++) {
        const float *mo = M + (size_t)o * f->QP;
        const epi16 epi = epi_for(bias, ep, accumulate, o);
        __m512 yv[4][4];
        out4_group(mo, f->MS, yv);
        for (int j = 0; j < ni; j++) {
            float *oj = out[j] + (size_t)o * HW;
            const float *ro = lt_conv_res_plane(ep, res[j], o, (size_t)HW);
            lt_conv_prefetch_w(oj + HW, (size_t)HW);
            if (ro) lt_conv_prefetch(ro + HW, (size_t)HW);
            si_store_plane(&R, _mm512_set1_epi32(4 * j), yv, &epi, ro, oj, HW);
        }
    }
}

/* F(4x4) on images of 2 x 2 tiles (f->quad: 5..8 a side): lane k of a
 * vector is tile k & 3 of image k >> 2 of a quad, gathered from the four
 * images' 3x3 phase planes (P, PSI apart) by two permutes and a blend. */
static void wino_input4_q(const wg *f, const float *P, float *V) {
    int ix[4][16];
    for (int s = 0; s < 4; s++)
        for (int k = 0; k < 16; k++) {
            const int t = k & 3;
            ix[s][k] = ((t >> 1) + (s >> 1)) * f->Wg + (t & 1) + (s & 1) + 16 * ((k >> 2) & 1);
        }
    const __m512i is[4] = {_mm512_loadu_si512(ix[0]), _mm512_loadu_si512(ix[1]), _mm512_loadu_si512(ix[2]),
                           _mm512_loadu_si512(ix[3])};
    const size_t ld = f->VS, PSI = f->PSI;
    for (int c = 0; c < f->ci; c++) {
        const float *pc = P + (size_t)c * 16 * f->PS;
        float *vc = V + (size_t)c * f->QP;
        __m512 d[6][6];
#pragma GCC unroll 16
        for (int ph = 0; ph < 16; ph++) {
            const float *pl = pc + (size_t)ph * f->PS;
            const __m512 r0 = _mm512_loadu_ps(pl), r1 = _mm512_loadu_ps(pl + PSI);
            const __m512 r2 = _mm512_loadu_ps(pl + 2 * PSI), r3 = _mm512_loadu_ps(pl + 3 * PSI);
#pragma GCC unroll 2
            for (int di = 0; di < 2; di++)
#pragma GCC unroll 2
                for (int dj = 0; dj < 2; dj++) {
                    const int i = (ph >> 2) + 4 * di, j = (ph & 3) + 4 * dj;
                    if (i >= 6 || j >= 6) continue;
                    const __m512i x = is[di * 2 + dj];
                    d[i][j] = _mm512_mask_blend_ps((__mmask16)0xFF00, _mm512_permutex2var_ps(r0, x, r1),
                                                   _mm512_permutex2var_ps(r2, x, r3));
                }
        }
        __m512 e[6][6];
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) bt6(d[i], e[i]);
        cols6(e, vc, ld);
    }
}


/* ---- weight gradient: F(3x3, 2x2), and F(3x3, 4x4) (engine 0.6.0) ------------------
 * F(3x3, 4x4) (ww_transform4): 6x6 input tiles, 4x4 dy tiles, 36 matrices,
 * dW = G^T M G with the 6x3 G of F(4x4, 3x3); 36 multiplies per (o, c, 16
 * pixels) instead of 64, at about 2-3e-6 of max|dw| in rounding (F(3x3,
 * 2x2): 2-8e-7). Same channels-last layout and GEMM as F(3x3, 2x2):
 * dW[o][c] = G^T [ sum over images and tiles of (A g A^T) .* (B^T d B) ] G,
 * with d the 4x4 input tile, g the 2x2 output-gradient tile, B^T and G the
 * forward's input and kernel transforms and A = (A^T)^T its output
 * transform: the forward's identity read the other way (the 3x3 weights are
 * now the output, the 2x2 gradient tile the filter). 16 multiplies per
 * (o, c, tile) instead of 36.
 * Vectorised over channels: each image's x and dy are made channels-last
 * (lt_conv_nhwc16), the transforms write V[xi][t][c] and U[xi] packed
 * [co/8][t][8] for the shifted GEMM (co rows, ci lanes, the chunk's tiles as
 * the reduction), and each chunk's product is added into a per-thread
 * M[xi][o][c]; the threads' M are added in thread order and transformed once.
 * Tiles are dense (ty * tW + tx): no garbage column. */
typedef struct {
    int m, NX;                               /* dy tile m x m (2: F(3x3, 2x2); 4: F(3x3, 4x4)); NX = (m + 2)^2 */
    int H, W, ci, co, tH, tW, Cp, Op, ob;   /* Cp, Op: channels rounded up to 16; ob: co / 8 rounded up */
    size_t T, KB;                            /* tiles per image, per chunk */
    size_t t_xn, t_dn, t_v, t_u, t_c, t_acc, VS, US, per_thread, shared;
} ww;

static void ww_init(ww *f, const lt_conv_geom *g, int m) {
    f->m = m; f->NX = (m + 2) * (m + 2);
    f->H = g->h; f->W = g->w; f->ci = g->ci; f->co = g->co;
    f->tH = (g->h + m - 1) / m; f->tW = (g->w + m - 1) / m;
    f->Cp = (g->ci + 15) & ~15; f->Op = (g->co + 15) & ~15; f->ob = (g->co + 7) / 8;
    f->T = (size_t)f->tH * f->tW;
    /* the same V + U footprint for 16 or 36 matrices */
    size_t kb = (m == 2 ? WINO_LANE_BUDGET : WINO4_LANE_BUDGET) / (size_t)(g->ci + g->co);
    if (kb < WINO_QB) kb = WINO_QB;
    f->KB = f->T <= kb ? (kb / f->T) * f->T : kb;
    f->t_xn = up16((size_t)f->H * f->W * f->Cp);
    f->t_dn = up16((size_t)f->H * f->W * f->Op);
    f->VS = f->KB * f->Cp + 16;
    f->US = (size_t)f->ob * f->KB * 8 + 16;
    f->t_v = (size_t)f->NX * f->VS;
    f->t_u = (size_t)f->NX * f->US;
    f->t_c = up16((size_t)f->ob * 8 * f->Cp);
    f->t_acc = up16((size_t)f->NX * f->co * f->Cp);
    f->per_thread = f->t_xn + f->t_dn + f->t_v + f->t_u + f->t_c + f->t_acc;
    f->shared = up16(f->KB);   /* the GEMM's tap offsets */
}

size_t lt_conv_wino_wgrad_scratch_floats(const lt_conv_geom *g, int N) {
    if (N <= 0 || !lt_conv_wino_applies(g)) return 0;
    const int T = N < LT_CONV_MAX_THREADS ? N : LT_CONV_MAX_THREADS;
    size_t best = 0;
    for (int m = 2; m <= 4; m += 2) {
        ww f;
        ww_init(&f, g, m);
        const size_t n = f.shared + (size_t)T * f.per_thread;
        if (n > best) best = n;
    }
    return best;
}

/* 16 channels from c0 at pixel (r, c) of a channels-last image (Cs floats
 * per pixel), zero outside the image: a tile's padding */
static inline __m512 ww_at(const ww *f, const float *img, int Cs, int r, int c, int c0) {
    return r >= 0 && r < f->H && c >= 0 && c < f->W ? _mm512_loadu_ps(img + ((size_t)r * f->W + c) * Cs + c0)
                                                    : _mm512_setzero_ps();
}

/* u (output channels o0 .. o0 + 15 of tile position k) into matrix xi of U,
 * packed [ob][nq][8] for the shifted GEMM */
static inline void ww_put_u(const ww *f, float *U, int xi, int o0, size_t nq, size_t k, __m512 u) {
    float *ub = U + (size_t)xi * f->US;
    const int b0 = o0 / 8;
    _mm256_storeu_ps(ub + ((size_t)b0 * nq + k) * 8, _mm512_castps512_ps256(u));
    if (b0 + 1 < f->ob)
        _mm256_storeu_ps(ub + ((size_t)(b0 + 1) * nq + k) * 8,
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u), 1)));
}

/* Tiles t0 .. t0 + n of one image (channels-last xn, dn) into chunk
 * positions k0 .. k0 + n of V and U (U packed for a chunk of nq tiles). */
static void ww_transform(const ww *f, const float *xn, const float *dn, size_t t0, size_t n, size_t k0,
                         size_t nq, float *V, float *U) {
    const int Cp = f->Cp, Op = f->Op;
    const __m512 zero = _mm512_setzero_ps();
    for (size_t q = 0; q < n; q++) {
        const int ty = (int)((t0 + q) / (size_t)f->tW), tx = (int)((t0 + q) % (size_t)f->tW);
        const size_t k = k0 + q;
        for (int c0 = 0; c0 < Cp; c0 += 16) {
            __m512 d[4][4];
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) d[i][j] = ww_at(f, xn, Cp, 2 * ty - 1 + i, 2 * tx - 1 + j, c0);
            input_transform(d, V + k * Cp + c0, f->VS);
        }
        for (int o0 = 0; o0 < Op; o0 += 16) {
            __m512 gg[2][2];
#pragma GCC unroll 2
            for (int a = 0; a < 2; a++)
#pragma GCC unroll 2
                for (int b = 0; b < 2; b++) gg[a][b] = ww_at(f, dn, Op, 2 * ty + a, 2 * tx + b, o0);
            /* h = A g: rows g0, g0 + g1, g0 - g1, -g1; then the same on columns */
            __m512 h[4][2];
#pragma GCC unroll 2
            for (int b = 0; b < 2; b++) {
                h[0][b] = gg[0][b];
                h[1][b] = _mm512_add_ps(gg[0][b], gg[1][b]);
                h[2][b] = _mm512_sub_ps(gg[0][b], gg[1][b]);
                h[3][b] = _mm512_sub_ps(zero, gg[1][b]);
            }
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                const __m512 u[4] = {h[r][0], _mm512_add_ps(h[r][0], h[r][1]), _mm512_sub_ps(h[r][0], h[r][1]),
                                     _mm512_sub_ps(zero, h[r][1])};
#pragma GCC unroll 4
                for (int s = 0; s < 4; s++) ww_put_u(f, U, r * 4 + s, o0, nq, k, u[s]);
            }
        }
    }
}

/* ww_transform for F(3x3, 4x4): 6x6 input tiles (bt6 on rows, then on
 * columns) and 4x4 dy tiles through A (6x4: rows [1 0 0 0], [1 1 1 1],
 * [1 -1 1 -1], [1 2 4 8], [1 -2 4 -8], [0 0 0 1], the forward's A^T read
 * the other way). */
static inline __attribute__((always_inline)) void a64(const __m512 g[4], __m512 u[6]) {
    const __m512 s02 = _mm512_add_ps(g[0], g[2]), s13 = _mm512_add_ps(g[1], g[3]);
    const __m512 t02 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), g[2], g[0]);
    const __m512 t13 = _mm512_fmadd_ps(_mm512_set1_ps(8.0f), g[3], _mm512_add_ps(g[1], g[1]));
    u[0] = g[0];
    u[1] = _mm512_add_ps(s02, s13);
    u[2] = _mm512_sub_ps(s02, s13);
    u[3] = _mm512_add_ps(t02, t13);
    u[4] = _mm512_sub_ps(t02, t13);
    u[5] = g[3];
}

static void ww_transform4(const ww *f, const float *xn, const float *dn, size_t t0, size_t n, size_t k0,
                          size_t nq, float *V, float *U) {
    const int Cp = f->Cp, Op = f->Op;
    for (size_t q = 0; q < n; q++) {
        const int ty = (int)((t0 + q) / (size_t)f->tW), tx = (int)((t0 + q) % (size_t)f->tW);
        const size_t k = k0 + q;
        for (int c0 = 0; c0 < Cp; c0 += 16) {
            __m512 e[6][6];
#pragma GCC unroll 6
            for (int i = 0; i < 6; i++) {
                __m512 d[6];
#pragma GCC unroll 6
                for (int j = 0; j < 6; j++) d[j] = ww_at(f, xn, Cp, 4 * ty - 1 + i, 4 * tx - 1 + j, c0);
                bt6(d, e[i]);
            }
            float *vk = V + k * Cp + c0;
            cols6(e, vk, f->VS);
        }
        for (int o0 = 0; o0 < Op; o0 += 16) {
            __m512 h[6][4];   /* A g: columns b of the 4x4 tile */
#pragma GCC unroll 4
            for (int b = 0; b < 4; b++) {
                __m512 gcol[4], u[6];
#pragma GCC unroll 4
                for (int a = 0; a < 4; a++) gcol[a] = ww_at(f, dn, Op, 4 * ty + a, 4 * tx + b, o0);
                a64(gcol, u);
#pragma GCC unroll 6
                for (int r = 0; r < 6; r++) h[r][b] = u[r];
            }
#pragma GCC unroll 6
            for (int r = 0; r < 6; r++) {
                __m512 u[6];
                a64(h[r], u);
#pragma GCC unroll 6
                for (int sc = 0; sc < 6; sc++) ww_put_u(f, U, r * 6 + sc, o0, nq, k, u[sc]);
            }
        }
    }
}

/* acc[xi][o][c] += the chunk's nq tiles */
static void ww_chunk(const ww *f, size_t nq, const float *V, const float *U, const int *off, float *C, float *acc) {
    for (int xi = 0; xi < f->NX; xi++) {
        lt_conv_sgemm_shift(f->co, (int)nq, (size_t)f->ci, U + (size_t)xi * f->US, V + (size_t)xi * f->VS, off, C,
                            (size_t)f->Cp);
        float *a = acc + (size_t)xi * f->co * f->Cp;
        for (int o = 0; o < f->co; o++) {
            float *ao = a + (size_t)o * f->Cp;
            const float *co_ = C + (size_t)o * f->Cp;
#pragma omp simd
            for (int c = 0; c < f->ci; c++) ao[c] += co_[c];
        }
    }
}

#pragma GCC pop_options

/* The tile size's four steps (f->m: 2 or 4). */
static void planes_m(const wg *f, const float *x, float *P, int zeros) {
    if (f->m == 4) wino_planes4(f, x, P, zeros);
    else wino_planes(f, x, P, zeros);
}
static void input_m(const wg *f, const float *P, size_t q0, size_t n, float *V) {
    if (f->si) {
        if (f->m == 4) wino_input4_si(f, P, V);
        else wino_input_si(f, P, V);
    } else if (f->m == 4) wino_input4(f, P, q0, n, V);
    else wino_input(f, P, q0, n, V);
}
static void output_m(const wg *f, const float *M, size_t q0, size_t n, float *Y) {
    if (f->m == 4) wino_output4(f, M, q0, n, Y);
    else wino_output(f, M, q0, n, Y);
}
static void store_m(const wg *f, const float *Y, const float *bias, const lt_conv_epilogue *ep, const float *res,
                    int accumulate, float *y) {
    /* (F(4x4) dense tiles and quads store from registers: out_store_m) */
    if (f->si) wino_store_si(f, Y, bias, ep, res, accumulate, y);
    else if (f->m == 4) wino_store4(f, Y, bias, ep, res, accumulate, y);
    else wino_store(f, Y, bias, ep, res, accumulate, y);
}

/* output_m then store_m for one image whose tiles are all in M (lane 0 =
 * its tile 0); fused where the grid is 8 tiles wide (wino_out_store4_w8). */
static void out_store_m(const wg *f, const float *M, float *Y, const float *bias, const lt_conv_epilogue *ep,
                        const float *res, int accumulate, float *y) {
    if (f->m == 4 && !f->si && !f->quad && f->Wg == 8) {
        wino_out_store4_w8(f, M, bias, ep, res, accumulate, y);
        return;
    }
    if (f->m == 4 && f->si) {
        wino_out_store4_si(f, M, 1, bias, ep, &res, accumulate, &y);
        return;
    }
    output_m(f, M, 0, f->Q, Y);
    store_m(f, Y, bias, ep, res, accumulate, y);
}

/* One pass over the batch: out = conv(in) through F(m x m, 3x3). */
static void wino_run(const wg *f, int N, const float *in, const float *w, int dgrad, const float *bias,
                     const lt_conv_epilogue *ep, int accumulate, float *out, float *scratch) {
    float *U = scratch;
    int *off = (int *)(scratch + f->sh_u);
    if (f->m == 2) pack_u(f, w, dgrad, U);
    for (int c = 0; c < f->ci; c++) off[c] = (int)((size_t)c * f->QP);
    float *tbase = scratch + f->shared;
    const size_t in_img = (size_t)f->ci * f->H * f->W, out_img = (size_t)f->co * f->H * f->W;
    const size_t ustride = (size_t)up8(f->co) * f->ci;
    const int T = lt_conv_fast_threads(N);
    lt_conv_queue q[LT_CONV_MAX_THREADS];
    LT_PAR_REGION(T > 1,
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *P = tbase + (size_t)t * f->per_thread;
        float *V = P + f->t_planes, *M = V + f->t_v, *Y = M + f->t_m;
        if (f->m == 4) {
            const int mb = up8(f->co) / 8;
            pack_u4(f, w, dgrad, mb * t / nt, mb * (t + 1) / nt, U);
        }
        if (t == 0) lt_conv_queue_init(q, nt, N, f->G > 1 ? f->G : 1);
        /* U packed and the queues set before any thread starts */
        _Pragma("omp barrier")
        /* chunks of G images (or one), taken as lt_conv_queue says */
        const int G = f->G > 1 ? f->G : 1;
        int first = 1, zslots = 0;
        for (int n, g; lt_conv_queue_next(q, nt, t, &n, &g); first = 0) {
            if (f->quad) {
                /* quads: image j's planes in slot j & 3 (each slot zeroed on
                 * its first use: zslots of them are; a chunk taken from
                 * another thread may use more than this thread's first),
                 * one input transform per 4 images */
                for (int j = 0; j < g; j++) {
                    planes_m(f, in + (size_t)(n + j) * in_img, P + (size_t)(j & 3) * f->PSI, j < 4 && j >= zslots);
                    if ((j & 3) == 3 || j == g - 1) wino_input4_q(f, P, V + (size_t)(j & ~3) * 4);
                }
                if (g > zslots) zslots = g < 4 ? g : 4;
                for (int xi = 0; xi < f->NX; xi++)
                    lt_conv_sgemm_shift(f->co, f->ci, (size_t)g * 4, U + (size_t)xi * ustride,
                                        V + (size_t)xi * f->VS, off, M + (size_t)xi * f->MS, f->QP);
                for (int j = 0; j < g; j += 4) {
                    const int ni = g - j < 4 ? g - j : 4;
                    const float *rs[4];
                    float *os[4];
                    for (int jj = 0; jj < ni; jj++) {
                        rs[jj] = ep && ep->res ? ep->res + (size_t)(n + j + jj) * out_img : NULL;
                        os[jj] = out + (size_t)(n + j + jj) * out_img;
                    }
                    wino_out_store4_si(f, M + (size_t)j * 4, ni, bias, ep, rs, accumulate, os);
                }
            } else if (G > 1) {
                /* small images: G of them side by side in one chunk; image
                 * j's tiles are columns j*Q .. j*Q + Q of V and M (its
                 * garbage lanes past Q are overwritten by image j + 1, in
                 * order) */
                for (int j = 0; j < g; j++) {
                    planes_m(f, in + (size_t)(n + j) * in_img, P, first && j == 0);
                    input_m(f, P, 0, f->Q, V + (size_t)j * f->Q);
                }
                for (int xi = 0; xi < f->NX; xi++)
                    lt_conv_sgemm_shift(f->co, f->ci, (size_t)g * f->Q, U + (size_t)xi * ustride,
                                        V + (size_t)xi * f->VS, off, M + (size_t)xi * f->MS, f->QP);
                for (int j = 0; j < g; j++)
                    out_store_m(f, M + (size_t)j * f->Q, Y, bias, ep,
                                ep && ep->res ? ep->res + (size_t)(n + j) * out_img : NULL, accumulate,
                                out + (size_t)(n + j) * out_img);
            } else {
                /* one image in chunks of QB tiles; when one chunk holds it
                 * all, M has every tile and out_store_m may store fused */
                const int whole = f->QB >= f->Q;
                const float *rn = ep && ep->res ? ep->res + (size_t)n * out_img : NULL;
                planes_m(f, in + (size_t)n * in_img, P, first);
                for (size_t q0 = 0; q0 < f->Q; q0 += f->QB) {
                    const size_t nq = f->Q - q0 < f->QB ? f->Q - q0 : f->QB;
                    input_m(f, P, q0, nq, V);
                    for (int xi = 0; xi < f->NX; xi++)
                        lt_conv_sgemm_shift(f->co, f->ci, nq, U + (size_t)xi * ustride,
                                            V + (size_t)xi * f->VS, off, M + (size_t)xi * f->MS, f->QP);
                    if (!whole) output_m(f, M, q0, nq, Y);
                }
                if (whole) out_store_m(f, M, Y, bias, ep, rn, accumulate, out + (size_t)n * out_img);
                else store_m(f, Y, bias, ep, rn, accumulate, out + (size_t)n * out_img);
            }
        }
    });
}

void lt_conv_wino_forward(const lt_conv_geom *g, int N, const float *x, const float *w, const float *b,
                          float *y, float *scratch, const lt_conv_epilogue *ep) {
    wg f;
    wg_init(&f, g->h, g->w, g->ci, g->co, lt_conv_wino_tile(g, LT_WINO_FWD));
    wino_run(&f, N, x, w, 0, b, ep, 0, y, scratch);
}

void lt_conv_wino_dgrad(const lt_conv_geom *g, int N, const float *w, const float *dy, float *dx,
                        float *scratch, int set_dx) {
    wg f;
    wg_init(&f, g->h, g->w, g->co, g->ci, lt_conv_wino_tile(g, LT_WINO_DGRAD));
    wino_run(&f, N, dy, w, 1, NULL, NULL, !set_dx, dx, scratch);
}

void lt_conv_wino_wgrad(const lt_conv_geom *g, int N, const float *x, const float *dy, float *dw,
                        float *scratch) {
    ww f;
    ww_init(&f, g, lt_conv_wino_tile(g, LT_WINO_WGRAD));
    int *off = (int *)scratch;
    for (size_t k = 0; k < f.KB; k++) off[k] = (int)(k * (size_t)f.Cp);
    float *tbase = scratch + f.shared;
    const size_t HW = (size_t)f.H * f.W, in_img = (size_t)f.ci * HW, out_img = (size_t)f.co * HW;
    const int T = lt_conv_fast_threads(N);
    int used = 1;
    LT_PAR_REGION(T > 1,
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        if (t == 0) used = nt;
        float *xn = tbase + (size_t)t * f.per_thread, *dn = xn + f.t_xn, *V = dn + f.t_dn, *U = V + f.t_v;
        float *C = U + f.t_u, *acc = C + f.t_c;
        memset(acc, 0, sizeof(float) * f.NX * (size_t)f.co * f.Cp);
        const int n0 = (int)((long)N * t / nt), n1 = (int)((long)N * (t + 1) / nt);
        if (f.T <= f.KB) {
            /* whole images per chunk */
            const int G = (int)(f.KB / f.T);
            for (int n = n0; n < n1; n += G) {
                const int gn = n1 - n < G ? n1 - n : G;
                const size_t nq = (size_t)gn * f.T;
                for (int j = 0; j < gn; j++) {
                    lt_conv_nhwc16(x + (size_t)(n + j) * in_img, f.ci, (int)HW, f.Cp, xn);
                    lt_conv_nhwc16(dy + (size_t)(n + j) * out_img, f.co, (int)HW, f.Op, dn);
                    if (f.m == 4) ww_transform4(&f, xn, dn, 0, f.T, (size_t)j * f.T, nq, V, U);
                    else ww_transform(&f, xn, dn, 0, f.T, (size_t)j * f.T, nq, V, U);
                }
                ww_chunk(&f, nq, V, U, off, C, acc);
            }
        } else {
            for (int n = n0; n < n1; n++) {
                lt_conv_nhwc16(x + (size_t)n * in_img, f.ci, (int)HW, f.Cp, xn);
                lt_conv_nhwc16(dy + (size_t)n * out_img, f.co, (int)HW, f.Op, dn);
                for (size_t t0 = 0; t0 < f.T; t0 += f.KB) {
                    const size_t nq = f.T - t0 < f.KB ? f.T - t0 : f.KB;
                    if (f.m == 4) ww_transform4(&f, xn, dn, t0, nq, 0, nq, V, U);
                    else ww_transform(&f, xn, dn, t0, nq, 0, nq, V, U);
                    ww_chunk(&f, nq, V, U, off, C, acc);
                }
            }
        }
    });
    /* the threads' M added in thread order, then dW += G^T M G per (o, c);
     * parallel over o (each element's order is fixed: the same for any
     * schedule) */
    const float *acc0 = tbase + f.t_xn + f.t_dn + f.t_v + f.t_u + f.t_c;
    LT_PAR_FOR_T(T > 1,
    for (int o = 0; o < f.co; o++)
        for (int c = 0; c < f.ci; c++) {
            float *d = dw + ((size_t)o * f.ci + c) * 9;
            if (f.m == 4) {
                /* dW = G^T M G, G 6x3 as in pack_u4 (in double: 1/6, 1/24) */
                static const double G4[6][3] = {{0.25, 0, 0},
                                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                                {0, 0, 1}};
                double m6[6][6], t6[6][3];
                for (int xi = 0; xi < 36; xi++) {
                    const size_t at = ((size_t)xi * f.co + o) * f.Cp + c;
                    float v = acc0[at];
                    for (int t = 1; t < used; t++) v += acc0[(size_t)t * f.per_thread + at];
                    m6[xi / 6][xi % 6] = v;
                }
                for (int r = 0; r < 6; r++)
                    for (int j = 0; j < 3; j++) {
                        double v = 0;
                        for (int sc = 0; sc < 6; sc++) v += m6[r][sc] * G4[sc][j];
                        t6[r][j] = v;
                    }
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++) {
                        double v = 0;
                        for (int r = 0; r < 6; r++) v += G4[r][i] * t6[r][j];
                        d[i * 3 + j] += (float)v;
                    }
                continue;
            }
            float m[4][4], tm[4][3];
            for (int xi = 0; xi < 16; xi++) {
                const size_t at = ((size_t)xi * f.co + o) * f.Cp + c;
                float v = acc0[at];
                for (int t = 1; t < used; t++) v += acc0[(size_t)t * f.per_thread + at];
                m[xi / 4][xi % 4] = v;
            }
            /* G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1] */
            for (int r = 0; r < 4; r++) {
                tm[r][0] = m[r][0] + 0.5f * (m[r][1] + m[r][2]);
                tm[r][1] = 0.5f * (m[r][1] - m[r][2]);
                tm[r][2] = 0.5f * (m[r][1] + m[r][2]) + m[r][3];
            }
            for (int j = 0; j < 3; j++) {
                d[0 * 3 + j] += tm[0][j] + 0.5f * (tm[1][j] + tm[2][j]);
                d[1 * 3 + j] += 0.5f * (tm[1][j] - tm[2][j]);
                d[2 * 3 + j] += 0.5f * (tm[1][j] + tm[2][j]) + tm[3][j];
            }
        });
}
