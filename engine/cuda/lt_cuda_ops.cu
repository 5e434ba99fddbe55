/* lt_cuda_ops.cu — batch norm, elementwise ops, pooling, the option-A
 * shortcut and the conv bias kernels, in CUDA C.
 *
 * The arithmetic of each element is the CPU kernel's (engine/lt_bn.c,
 * lt_elementwise.c, lt_pool.c, lt_shortcut.c), in the same order of float
 * operations; the library is built with --fmad=false so that nvcc does not
 * contract a*b+c into an FMA (the engine's C is built with
 * -ffp-contract=off for the same reason). Elementwise results therefore
 * equal the CPU's bit for bit; reductions differ in summation order only.
 *
 * Layouts: the layout-sensitive ops take an lt_layout. NCHW ([N][C][H][W])
 * is the CPU's; NHWC ([N][H][W][C], channels innermost) has kernels of its
 * own with the same arithmetic per element: consecutive threads take
 * consecutive channels, so loads and stores stay coalesced. Pools keep the
 * argmax as the index into the input plane (h*W + w) in both layouts, and
 * the global average pool sums each (n, c) over p in the same order in
 * both (the same bits).
 *
 * Reductions: thread t of a block sums a fixed subset of the elements in a
 * fixed order (t, t + T, ...) in double, then the block adds the threads'
 * sums as a fixed binary tree; the NCHW conv bias gradient takes one block
 * per channel, batch norm (and the NHWC bias gradient) splits each channel
 * over several blocks (below). No value passes through an atomic (batch
 * norm's arrival counters decide only which block takes the last step), so
 * the results are the same run to run in any mode. */
#include "lt_cuda_impl.h"

#include <math.h>
#include <stdint.h>

#define RT 256   /* threads of the per-channel reduction blocks (power of two) */
#define ET 256   /* threads of the elementwise kernels */
#define TC 32    /* NHWC reduction blocks: TC consecutive channels (threadIdx.x) ... */
#define TL 8     /* ... x TL row lanes (threadIdx.y; a power of two) */

/* Sum of v over the block, a fixed tree; every thread gets the result. */
__device__ static double block_sum(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = RT / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

/* Sums of a and b over the TL lanes of an NHWC reduction block (a fixed
 * tree over threadIdx.y, one per channel threadIdx.x); every thread gets its
 * channel's result. */
__device__ static void lane_sum2(double *a, double *b, double (*sa)[TC], double (*sb)[TC]) {
    const int tx = (int)threadIdx.x, ty = (int)threadIdx.y;
    sa[ty][tx] = *a;
    sb[ty][tx] = *b;
    __syncthreads();
    for (int h = TL / 2; h > 0; h >>= 1) {
        if (ty < h) {
            sa[ty][tx] += sa[ty + h][tx];
            sb[ty][tx] += sb[ty + h][tx];
        }
        __syncthreads();
    }
    *a = sa[0][tx];
    *b = sb[0][tx];
    __syncthreads();
}

static inline int launch_ok(const char *what) { return lt_cuda_launch_check(what); }

static int layout_ok(lt_layout layout, const char *what) {
    if (layout == LT_LAYOUT_NCHW || layout == LT_LAYOUT_NHWC) return LT_OK;
    return lt_err(LT_EINVAL, "cuda %s: unknown layout %d (LT_LAYOUT_NCHW or LT_LAYOUT_NHWC)", what, (int)layout);
}

/* The channel of element i of an [N][C][P] tensor (lt_cuda_divmod: in 32
 * bits where the index fits). */
__device__ static inline int chan_of(size_t i, size_t P, int C) {
    size_t t, q, n, c;
    lt_cuda_divmod(i, P, &t, &q);
    lt_cuda_divmod(t, (size_t)C, &n, &c);
    return (int)c;
}

/* ---- NHWC elementwise launches ----------------------------------------------------
 * Element i of an [M][C] tensor has channel i % C. A thread takes VW
 * consecutive elements (a vector: VW = 4 where C % 4 == 0 and every pointer
 * the kernel streams is 16-byte aligned, else 1) at vector j = t, t + G, ...
 * (G: the grid's threads); the grid is at most NHWC_BLOCKS blocks, rounded
 * up so that G * VW is a multiple of C: a thread's channels are then the
 * same at every step, and their coefficients are read (or computed) once,
 * with no division in the loop. */
#define NHWC_BLOCKS 2048

#ifdef LT_CUEMU
struct alignas(16) float4 { float x, y, z, w; };
#endif

struct nhwc_grid {
    unsigned blocks;
    int vw;
};

static inline int al16(const void *p) { return ((uintptr_t)p & 15) == 0; }

static nhwc_grid nhwc_grid_for(size_t total, int C, int aligned) {
    nhwc_grid g;
    g.vw = C % 4 == 0 && aligned ? 4 : 1;
    const size_t cv = (size_t)C / g.vw, vec = total / g.vw;
    size_t b = (vec + ET - 1) / ET;
    if (b > NHWC_BLOCKS) b = NHWC_BLOCKS;
    if (b < 1) b = 1;
    size_t a = cv, r = ET;   /* blocks a multiple of cv / gcd(cv, ET) */
    while (r) {
        const size_t t = a % r;
        a = r;
        r = t;
    }
    const size_t m = cv / a;
    g.blocks = (unsigned)((b + m - 1) / m * m);
    return g;
}

/* k<4> on vectors of 4 floats, else k<1>; total: elements, passed as vectors */
#define NHWC_LAUNCH(k, g, stream, total, ...)                                              \
    do {                                                                                   \
        if ((g).vw == 4) LT_LAUNCH(k<4>, (g).blocks, ET, (stream))((total) / 4, __VA_ARGS__); \
        else LT_LAUNCH(k<1>, (g).blocks, ET, (stream))((total), __VA_ARGS__);              \
    } while (0)

template <int VW>
__device__ static inline void ldv(const float *p, float *v) {
    if constexpr (VW == 4) {
        const float4 t = *(const float4 *)p;
        v[0] = t.x;
        v[1] = t.y;
        v[2] = t.z;
        v[3] = t.w;
    } else {
        v[0] = *p;
    }
}

template <int VW>
__device__ static inline void stv(float *p, const float *v) {
    if constexpr (VW == 4) {
        float4 t;
        t.x = v[0];
        t.y = v[1];
        t.z = v[2];
        t.w = v[3];
        *(float4 *)p = t;
    } else {
        *p = v[0];
    }
}

/* The thread's first vector t, the grid's stride G (vectors), and c0, the
 * channel of the thread's first element (the same at every step). */
#define NHWC_THREAD(t, G, c0, C)                                                        \
    const size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x, G = (size_t)gridDim.x * blockDim.x; \
    const unsigned c0 = (unsigned)(t * VW) % (unsigned)(C)

/* ---- batch norm -----------------------------------------------------------------
 * Train statistics and the backward sums are split reductions, so that a
 * layer fills the GPU whatever its channel count (one block per channel
 * left most SMs idle at C = 16..64 and made BN latency-bound): channel c's
 * M = N*HW elements, in element order m = n*HW + p, are cut into S chunks;
 * each block sums its part into the context workspace (double pairs); the
 * block that arrives last at a counter (ctx->bn_count, back to zero after
 * each call) then adds the partial sums in a fixed order and computes the
 * channel's coefficients; an elementwise kernel applies them. Two launches
 * a direction (a separate per-channel kernel for the last step made three:
 * at CIFAR sizes, launches rather than bytes are BN's cost). S depends on
 * the shape only: the same bits on every run and GPU, whichever block
 * arrives last.
 *
 * NCHW (k_bn_part): chunks of ceil(M / S) elements (the last shorter);
 * block (s, c) sums chunk s of channel c (thread t: m = start + t, + RT,
 * ... in double, then the fixed tree); a counter per channel; the last
 * block's thread 0 adds the S pairs in order s = 0 .. S-1.
 *
 * NHWC (k_bnh_part): a row m holds the C channels side by side, so a block
 * takes a tile of TC = 32 consecutive channels (threadIdx.x: one warp reads
 * 128 contiguous bytes of a row) by TL = 8 row lanes (threadIdx.y); block
 * (s, tile) sums chunk s's rows: the thread of lane l sums its channel over
 * rows start + l, + TL, ... in order (four rows' loads in flight before
 * their adds), then a fixed tree over the TL lanes gives the (channel,
 * chunk) pair, stored at part[(s*C + c)*2] (coalesced). A counter per
 * channel tile; the tile's last block finishes its channels with all its
 * threads: lane l adds the pairs s = l, l + TL, ... in order, the same lane
 * tree adds the lanes, and one thread per channel computes the
 * coefficients (one thread adding up to 1024 pairs in turn, an L2 round
 * trip each, would take tens of microseconds: at CIFAR sizes more than
 * the pass over the tensor). The order depends on S only.
 * The coefficients are stored channel-minor (coef[k*C + c], both layouts):
 * the NHWC apply kernels' consecutive threads take consecutive channels. */

__device__ static inline float bn_affine(float v, float mu, float a, float b) { return (v - mu) * a + b; }
__device__ static inline float relu1(float v) { return v > 0.0f ? v : 0.0f; }
__device__ static inline float relu_masked(float dy, float r) { return r > 0.0f ? dy : 0.0f; }

/* NCHW: chunks of at most 8192 elements, and for few channels more of
 * them, down to 1024 elements, until C * S reaches about 512 blocks (a few
 * per SM). */
static inline int bn_splits(size_t M, int C) {
    size_t S = (M + 8191) / 8192, fill = (512 + (size_t)C - 1) / (size_t)C;
    const size_t most = (M + 1023) / 1024;
    if (fill > most) fill = most;
    if (fill > S) S = fill;
    return (int)S;
}

/* NHWC: about 1024 blocks over all channel tiles, at least 64 rows a
 * chunk, at most 1024 chunks; then S = ceil(M / chunk), so that no chunk
 * is empty. */
static inline void bnh_splits(size_t M, int C, int *S_out, unsigned *chunk_out) {
    const size_t T = ((size_t)C + TC - 1) / TC;
    size_t S = (1024 + T - 1) / T;
    if (S > M / 64) S = M / 64;
    if (S > 1024) S = 1024;
    if (S < 1) S = 1;
    const size_t chunk = (M + S - 1) / S;
    *S_out = (int)((M + chunk - 1) / chunk);
    *chunk_out = (unsigned)chunk;
}

/* Workspace of a BN call: S*C partial pairs (double), then 5 floats of
 * coefficients per channel. */
struct bn_ws {
    double *part;
    float *coef;
    int S;
    unsigned chunk;   /* elements (NCHW) or rows (NHWC) a chunk */
};

/* M: the rows (N*HW) */
static int bn_ws_get(lt_cuda_ctx *ctx, lt_layout layout, size_t M, int C, struct bn_ws *w) {
    if (layout == LT_LAYOUT_NHWC) {
        bnh_splits(M, C, &w->S, &w->chunk);
    } else {
        w->S = bn_splits(M, C);
        w->chunk = (unsigned)((M + (size_t)w->S - 1) / (size_t)w->S);
    }
    const size_t part = (size_t)w->S * C * 2 * sizeof(double);
    LT_TRY(lt_cuda_ws_reserve(ctx, part + (size_t)C * 5 * sizeof(float)));
    w->part = (double *)ctx->ws;
    w->coef = (float *)((char *)ctx->ws + part);
    return LT_OK;
}

/* What the last block of a channel computes from the partial pairs:
 * what 0 (forward, train): the batch statistics into mean / rstd, the
 * running statistics (when both are set) and coef; what 1 (backward): the
 * parameter gradients and, when coef is set, the coefficients of dx, with
 * the saved smean / srstd (train) or, evar set, the running variance
 * (eval); what 2 (the NHWC conv bias gradient): dbeta[c] += the sum.
 * Coefficient k of channel c is coef[k*C + c] in both layouts. */
struct bn_fin {
    int what;
    const float *gamma, *beta;
    float *mean, *rstd, *run_mean, *run_var;
    float momentum, eps;
    const float *smean, *srstd, *evar;
    float *dgamma, *dbeta, *coef;
    unsigned C;   /* coef's stride between coefficients */
};

static bn_fin bn_fin_fwd(int C, const float *gamma, const float *beta, float *mean, float *rstd,
                         float *run_mean, float *run_var, float momentum, float eps, float *coef) {
    bn_fin f = {};
    f.what = 0;
    f.gamma = gamma;
    f.beta = beta;
    f.mean = mean;
    f.rstd = rstd;
    f.run_mean = run_mean;
    f.run_var = run_var;
    f.momentum = momentum;
    f.eps = eps;
    f.coef = coef;
    f.C = (unsigned)C;
    return f;
}

/* train: smean / srstd saved by the forward; eval: evar (the running
 * variance) and eps */
static bn_fin bn_fin_bwd(int C, const float *gamma, const float *smean, const float *srstd,
                         const float *evar, float eps, float *dgamma, float *dbeta, float *coef) {
    bn_fin f = {};
    f.what = 1;
    f.gamma = gamma;
    f.smean = smean;
    f.srstd = srstd;
    f.evar = evar;
    f.eps = eps;
    f.dgamma = dgamma;
    f.dbeta = dbeta;
    f.coef = coef;
    f.C = (unsigned)C;
    return f;
}

__device__ static inline float &coef_at(const bn_fin &f, int c, int k) {
    return f.coef[(size_t)k * f.C + (size_t)c];
}

/* NCHW: the channel's two totals, the partial pairs added in order s = 0 ..
 * S-1 (volatile: other blocks wrote them during this launch). */
__device__ static inline void part_total(const volatile double *part, int S, int c, double *s1, double *s2) {
    double a = 0, b = 0;
    for (int s = 0; s < S; s++) {
        a += part[((size_t)c * S + s) * 2];
        b += part[((size_t)c * S + s) * 2 + 1];
    }
    *s1 = a;
    *s2 = b;
}

/* Forward, from s1 = sum(x - K) and s2 = sum((x - K)^2) over the M
 * elements of channel c (K = its first element): batch statistics, running
 * statistics, and the affine coefficients (mu, a, b) of the apply kernel. */
__device__ static void bn_fwd_finish(size_t M, int c, double K, double s1, double s2, const bn_fin &f) {
    const double mu = K + s1 / (double)M;
    double ss = s2 - s1 * (s1 / (double)M);
    if (ss < 0) ss = 0;
    const double var = ss / (double)M;
    const double rs = 1.0 / sqrt(var + (double)f.eps);
    f.mean[c] = (float)mu;
    f.rstd[c] = (float)rs;
    if (f.run_mean && f.run_var) {
        const double unb = M > 1 ? ss / (double)(M - 1) : var;
        f.run_mean[c] = (float)((1.0 - f.momentum) * f.run_mean[c] + f.momentum * mu);
        f.run_var[c] = (float)((1.0 - f.momentum) * f.run_var[c] + f.momentum * unb);
    }
    coef_at(f, c, 0) = (float)mu;
    coef_at(f, c, 1) = (float)((f.gamma ? f.gamma[c] : 1.0f) * rs);
    coef_at(f, c, 2) = f.beta ? f.beta[c] : 0.0f;
}

/* Backward, from sdy = sum(w) and sdxm = sum(w * (x - center)): the
 * parameter gradients, and for train mode the coefficients of
 * dx = k*w + kx*((x - mu)*rs) + k0 (the CPU's). eval: the center is the
 * running mean, rs from the running variance. */
__device__ static void bn_bwd_finish(size_t M, int c, double sdy, double sdxm, const bn_fin &f) {
    const double rs = f.evar ? 1.0 / sqrt((double)f.evar[c] + (double)f.eps) : (double)f.srstd[c];
    const double sdyx = sdxm * rs;
    if (f.dgamma) f.dgamma[c] += (float)sdyx;
    if (f.dbeta) f.dbeta[c] += (float)sdy;
    if (f.coef) {
        const double gm = f.gamma ? f.gamma[c] : 1.0;
        coef_at(f, c, 0) = (float)(gm * rs);
        coef_at(f, c, 1) = (float)(-gm * rs * sdyx / (double)M);
        coef_at(f, c, 2) = (float)(-gm * rs * sdy / (double)M);
        coef_at(f, c, 3) = f.smean[c];
        coef_at(f, c, 4) = (float)rs;
    }
}

/* The channel's last step: what 0 / 1 / 2 (bn_fin) from the totals. */
__device__ static void bn_finish(size_t M, int c, double K, double s1, double s2, const bn_fin &f) {
    if (f.what == 0) bn_fwd_finish(M, c, K, s1, s2, f);
    else if (f.what == 1) bn_bwd_finish(M, c, s1, s2, f);
    else f.dbeta[c] += (float)s1;
}

/* NCHW block (s, c): the two sums of chunk s of channel c into
 * part[(c*S + s)*2]. f.what 0: v = x - K, sums v and v*v (K = the channel's
 * first element: the CPU's shifted sums); what 1: w = dy (masked by r > 0
 * when r), sums w and w * (x - K) (K = center[c]). The channel's last block
 * to arrive then finishes it (bn_finish) and sets its counter back to
 * zero. */
__global__ static void k_bn_part(int N, int C, int HW, int S, unsigned chunk, const float *x, const float *dy,
                                 const float *r, const float *center, double *part, unsigned *count, bn_fin f) {
    __shared__ double sh[RT];
    __shared__ int last;
    const int s = (int)blockIdx.x, c = (int)blockIdx.y;
    const unsigned M = (unsigned)N * (unsigned)HW, hw = (unsigned)HW;
    const unsigned m0 = (unsigned)s * chunk, m1 = m0 < M && chunk < M - m0 ? m0 + chunk : M;
    const double K = f.what == 0 ? (double)x[(size_t)c * HW] : (double)center[c];
    double s1 = 0, s2 = 0;
    for (unsigned m = m0 + threadIdx.x; m < m1; m += RT) {
        const unsigned n = m / hw, p = m - n * hw;
        const size_t off = ((size_t)n * C + c) * HW + p;
        const double d = (double)x[off] - K;
        if (f.what == 0) {
            s1 += d;
            s2 += d * d;
        } else {
            const float w = r ? relu_masked(dy[off], r[off]) : dy[off];
            s1 += w;
            s2 += (double)w * d;
        }
    }
    s1 = block_sum(s1, sh);
    s2 = block_sum(s2, sh);
    if (threadIdx.x == 0) {
        part[((size_t)c * S + s) * 2] = s1;
        part[((size_t)c * S + s) * 2 + 1] = s2;
        /* the pair visible to every block before this block counts in */
        __threadfence();
        last = atomicAdd(&count[c], 1u) == (unsigned)S - 1;
    }
    __syncthreads();
    if (!last || threadIdx.x != 0) return;
    __threadfence();
    count[c] = 0;
    double t1, t2;
    part_total(part, S, c, &t1, &t2);
    bn_finish((size_t)M, c, K, t1, t2, f);
}

/* One row of an NHWC chunk into the sums (what: bn_fin's). */
__device__ static inline void bnh_acc(int what, double K, float xv, float dv, float rv, int has_r, double *s1,
                                      double *s2) {
    if (what == 0) {
        const double d = (double)xv - K;
        *s1 += d;
        *s2 += d * d;
    } else if (what == 1) {
        const float w = has_r ? relu_masked(dv, rv) : dv;
        *s1 += w;
        *s2 += (double)w * ((double)xv - K);
    } else {
        *s1 += xv;
    }
}

/* NHWC block (s, tile): TC channels x TL lanes over the rows of chunk s
 * (the section comment); WHAT (= f.what, a template argument: one loop
 * each) 0 / 1 as k_bn_part, 2: the sum of x alone (x is the conv's dy). The tile's last block finishes its channels
 * and sets the tile's counter back to zero. M < 2^31 rows. */
template <int WHAT>
__global__ static void k_bnh_part(int C, unsigned M, int S, unsigned chunk, const float *x, const float *dy,
                                  const float *r, const float *center, double *part, unsigned *count, bn_fin f) {
    __shared__ double sh1[TL][TC], sh2[TL][TC];
    __shared__ int last;
    const int tx = (int)threadIdx.x, ty = (int)threadIdx.y, s = (int)blockIdx.x, tile = (int)blockIdx.y;
    const int c = tile * TC + tx;
    const int on = c < C, what = WHAT, has_r = r != NULL;
    const unsigned m0 = (unsigned)s * chunk, m1 = chunk < M - m0 ? m0 + chunk : M;   /* m0 < M: no chunk is empty */
    double K = 0, s1 = 0, s2 = 0;
    if (on) {
        K = what == 0 ? (double)x[c] : what == 1 ? (double)center[c] : 0.0;
        const size_t step = (size_t)TL * C;
        size_t off = (size_t)(m0 + ty) * C + c;
        unsigned m = m0 + ty;
        for (; m + 3 * TL < m1; m += 4 * TL, off += 4 * step) {
            float xv[4], dv[4] = {0, 0, 0, 0}, rv[4] = {0, 0, 0, 0};
            for (int u = 0; u < 4; u++) xv[u] = x[off + u * step];
            if (what == 1)
                for (int u = 0; u < 4; u++) dv[u] = dy[off + u * step];
            if (what == 1 && has_r)
                for (int u = 0; u < 4; u++) rv[u] = r[off + u * step];
            for (int u = 0; u < 4; u++) bnh_acc(what, K, xv[u], dv[u], rv[u], has_r, &s1, &s2);
        }
        for (; m < m1; m += TL, off += step)
            bnh_acc(what, K, x[off], what == 1 ? dy[off] : 0.0f, what == 1 && has_r ? r[off] : 0.0f, has_r, &s1, &s2);
    }
    lane_sum2(&s1, &s2, sh1, sh2);
    if (ty == 0 && on) {
        part[((size_t)s * C + c) * 2] = s1;
        part[((size_t)s * C + c) * 2 + 1] = s2;
        __threadfence();
    }
    __syncthreads();
    if (tx == 0 && ty == 0) {
        /* the block's pairs visible to every block before it counts in */
        __threadfence();
        last = atomicAdd(&count[tile], 1u) == (unsigned)S - 1;
        if (last) __threadfence();
    }
    __syncthreads();
    if (!last) return;
    /* the tile's totals: lane ty adds chunks ty, ty + TL, ... in order
     * (volatile: written by other blocks during this launch), four pairs'
     * loads in flight before their adds; then the lane tree */
    double t1 = 0, t2 = 0;
    if (on) {
        const volatile double *pp = part;
        const size_t ps = (size_t)TL * C * 2;
        size_t off = ((size_t)ty * C + c) * 2;
        int k = ty;
        for (; k + 3 * TL < S; k += 4 * TL, off += 4 * ps) {
            double a[4], b[4];
            for (int u = 0; u < 4; u++) {
                a[u] = pp[off + u * ps];
                b[u] = pp[off + u * ps + 1];
            }
            for (int u = 0; u < 4; u++) {
                t1 += a[u];
                t2 += b[u];
            }
        }
        for (; k < S; k += TL, off += ps) {
            t1 += pp[off];
            t2 += pp[off + 1];
        }
    }
    lane_sum2(&t1, &t2, sh1, sh2);
    if (tx == 0 && ty == 0) count[tile] = 0;
    if (ty == 0 && on) bn_finish((size_t)M, c, K, t1, t2, f);
}

/* Launches the split reduction of the layout: x [N][C][HW] or [M][C]. */
static int bn_part_launch(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const struct bn_ws *w,
                          const float *x, const float *dy, const float *r, const float *center, const bn_fin &f) {
    if (layout == LT_LAYOUT_NHWC) {
        const unsigned tiles = (unsigned)((C + TC - 1) / TC), M = (unsigned)((size_t)N * HW);
        const dim3 grid((unsigned)w->S, tiles), block(TC, TL);
        if (f.what == 0)
            LT_LAUNCH(k_bnh_part<0>, grid, block, ctx->stream)(C, M, w->S, w->chunk, x, dy, r, center, w->part,
                                                              ctx->bn_count, f);
        else if (f.what == 1)
            LT_LAUNCH(k_bnh_part<1>, grid, block, ctx->stream)(C, M, w->S, w->chunk, x, dy, r, center, w->part,
                                                              ctx->bn_count, f);
        else
            LT_LAUNCH(k_bnh_part<2>, grid, block, ctx->stream)(C, M, w->S, w->chunk, x, dy, r, center, w->part,
                                                              ctx->bn_count, f);
    } else {
        LT_LAUNCH(k_bn_part, dim3((unsigned)w->S, (unsigned)C), RT, ctx->stream)(N, C, HW, w->S, w->chunk, x, dy, r,
                                                                                center, w->part, ctx->bn_count, f);
    }
    return LT_OK;
}

__global__ static void k_bn_apply(size_t total, int C, int HW, const float *x, const float *coef, int relu, float *y) {
    GRID_LOOP(i, total) {
        const size_t c = (size_t)chan_of(i, (size_t)HW, C);
        const float v = bn_affine(x[i], coef[c], coef[C + c], coef[2 * (size_t)C + c]);
        y[i] = relu ? relu1(v) : v;
    }
}

/* NHWC apply */
template <int VW>
__global__ static void k_bnh_apply(size_t nvec, int C, const float *x, const float *coef, int relu, float *y) {
    NHWC_THREAD(t, G, c0, C);
    if (t >= nvec) return;
    float mu[VW], a[VW], b[VW];
    for (int k = 0; k < VW; k++) {
        mu[k] = coef[c0 + k];
        a[k] = coef[(unsigned)C + c0 + k];
        b[k] = coef[2u * (unsigned)C + c0 + k];
    }
    for (size_t j = t; j < nvec; j += G) {
        float v[VW];
        ldv<VW>(x + j * VW, v);
        for (int k = 0; k < VW; k++) {
            const float o = bn_affine(v[k], mu[k], a[k], b[k]);
            v[k] = relu ? relu1(o) : o;
        }
        stv<VW>(y + j * VW, v);
    }
}

static int bn_args(int N, int C, int HW, const void *x, const void *y) {
    if (N <= 0 || C <= 0 || HW <= 0) return lt_err(LT_ESHAPE, "cuda bn: N=%d C=%d HW=%d must be positive", N, C, HW);
    if (C > LT_CUDA_BN_MAX_C || (size_t)N * HW > (size_t)0x7fffffff)
        return lt_err(LT_ESHAPE, "cuda bn: N=%d C=%d HW=%d: over %d channels or 2^31 elements a channel", N, C, HW,
                      LT_CUDA_BN_MAX_C);
    if (!x || !y) return lt_err(LT_EINVAL, "cuda bn: NULL tensor");
    return LT_OK;
}

int lt_cuda_bn_forward_train(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x, const float *gamma,
                             const float *beta, float *y, float *mean, float *rstd, float *run_mean, float *run_var,
                             float momentum, float eps, int relu) {
    LT_TRY(layout_ok(layout, "bn forward (train)"));
    LT_CTX(ctx);
    LT_TRY(bn_args(N, C, HW, x, y));
    if (!mean || !rstd) return lt_err(LT_EINVAL, "cuda bn: NULL mean / rstd");
    struct bn_ws w;
    LT_TRY(bn_ws_get(ctx, layout, (size_t)N * HW, C, &w));
    const bn_fin f = bn_fin_fwd(C, gamma, beta, mean, rstd, run_mean, run_var, momentum, eps, w.coef);
    LT_TRY(bn_part_launch(ctx, layout, N, C, HW, &w, x, NULL, NULL, NULL, f));
    LT_TRY(launch_ok("bn forward (train): statistics"));
    const size_t total = (size_t)N * C * HW;
    if (layout == LT_LAYOUT_NHWC) {
        const nhwc_grid g = nhwc_grid_for(total, C, al16(x) && al16(y));
        NHWC_LAUNCH(k_bnh_apply, g, ctx->stream, total, C, x, w.coef, relu, y);
    } else {
        LT_LAUNCH(k_bn_apply, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, HW, x, w.coef, relu, y);
    }
    return launch_ok("bn forward (train)");
}

__device__ static inline void eval_coeff(int c, const float *gamma, const float *beta, const float *run_mean,
                                         const float *run_var, float eps, float *mu, float *a, float *b) {
    const double rs = 1.0 / sqrt((double)run_var[c] + (double)eps);
    *a = (float)((gamma ? gamma[c] : 1.0f) * rs);
    *b = beta ? beta[c] : 0.0f;
    *mu = run_mean[c];
}

__global__ static void k_bn_fwd_eval(size_t total, int C, int HW, const float *x, const float *gamma,
                                     const float *beta, const float *run_mean, const float *run_var, float eps,
                                     float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int c = chan_of(i, (size_t)HW, C);
        float mu, a, b;
        eval_coeff(c, gamma, beta, run_mean, run_var, eps, &mu, &a, &b);
        y[i] = bn_affine(x[i], mu, a, b);
    }
}

template <int VW>
__global__ static void k_bnh_fwd_eval(size_t nvec, int C, const float *x, const float *gamma, const float *beta,
                                      const float *run_mean, const float *run_var, float eps, float *y) {
    NHWC_THREAD(t, G, c0, C);
    if (t >= nvec) return;
    float mu[VW], a[VW], b[VW];
    for (int k = 0; k < VW; k++) eval_coeff((int)c0 + k, gamma, beta, run_mean, run_var, eps, &mu[k], &a[k], &b[k]);
    for (size_t j = t; j < nvec; j += G) {
        float v[VW];
        ldv<VW>(x + j * VW, v);
        for (int k = 0; k < VW; k++) v[k] = bn_affine(v[k], mu[k], a[k], b[k]);
        stv<VW>(y + j * VW, v);
    }
}

int lt_cuda_bn_forward_eval(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x, const float *gamma,
                            const float *beta, const float *run_mean, const float *run_var, float eps, float *y) {
    LT_TRY(layout_ok(layout, "bn forward (eval)"));
    LT_CTX(ctx);
    LT_TRY(bn_args(N, C, HW, x, y));
    if (!run_mean || !run_var) return lt_err(LT_EINVAL, "cuda bn: NULL running statistics");
    const size_t total = (size_t)N * C * HW;
    if (layout == LT_LAYOUT_NHWC) {
        const nhwc_grid g = nhwc_grid_for(total, C, al16(x) && al16(y));
        NHWC_LAUNCH(k_bnh_fwd_eval, g, ctx->stream, total, C, x, gamma, beta, run_mean, run_var, eps, y);
    } else {
        LT_LAUNCH(k_bn_fwd_eval, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, HW, x, gamma, beta, run_mean,
                                                                         run_var, eps, y);
    }
    return launch_ok("bn forward (eval)");
}

__global__ static void k_bn_bwd_dx(size_t total, int C, int HW, const float *x, const float *dy, const float *r,
                                   const float *coef, float *dx, int set) {
    GRID_LOOP(i, total) {
        const size_t c = (size_t)chan_of(i, (size_t)HW, C);
        const float *k = coef + c;   /* coefficient q at k[q * C] */
        const float d = r ? relu_masked(dy[i], r[i]) : dy[i];
        const float v = k[0] * d + k[C] * ((x[i] - k[3 * (size_t)C]) * k[4 * (size_t)C]) + k[2 * (size_t)C];
        if (set) dx[i] = v;
        else dx[i] += v;
    }
}

/* NHWC */
template <int VW>
__global__ static void k_bnh_bwd_dx(size_t nvec, int C, const float *x, const float *dy, const float *r,
                                    const float *coef, float *dx, int set) {
    NHWC_THREAD(t, G, c0, C);
    if (t >= nvec) return;
    float kc[5][VW];
    for (int q = 0; q < 5; q++)
        for (int k = 0; k < VW; k++) kc[q][k] = coef[(unsigned)q * (unsigned)C + c0 + k];
    for (size_t j = t; j < nvec; j += G) {
        float xv[VW], dv[VW], rv[VW], gv[VW];
        ldv<VW>(x + j * VW, xv);
        ldv<VW>(dy + j * VW, dv);
        if (r) ldv<VW>(r + j * VW, rv);
        if (!set) ldv<VW>(dx + j * VW, gv);
        for (int k = 0; k < VW; k++) {
            const float d = r ? relu_masked(dv[k], rv[k]) : dv[k];
            const float v = kc[0][k] * d + kc[1][k] * ((xv[k] - kc[3][k]) * kc[4][k]) + kc[2][k];
            gv[k] = set ? v : gv[k] + v;
        }
        stv<VW>(dx + j * VW, gv);
    }
}

int lt_cuda_bn_backward_train(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x, const float *gamma,
                              const float *mean, const float *rstd, const float *dy, const float *r, float *dx,
                              float *dgamma, float *dbeta, int set) {
    LT_TRY(layout_ok(layout, "bn backward (train)"));
    LT_CTX(ctx);
    LT_TRY(bn_args(N, C, HW, x, dy));
    if (!mean || !rstd) return lt_err(LT_EINVAL, "cuda bn: NULL mean / rstd");
    if (!dx && !dgamma && !dbeta) return LT_OK;
    struct bn_ws w;
    LT_TRY(bn_ws_get(ctx, layout, (size_t)N * HW, C, &w));
    const bn_fin f = bn_fin_bwd(C, gamma, mean, rstd, NULL, 0.0f, dgamma, dbeta, dx ? w.coef : NULL);
    LT_TRY(bn_part_launch(ctx, layout, N, C, HW, &w, x, dy, r, mean, f));
    LT_TRY(launch_ok("bn backward (train): sums"));
    if (!dx) return LT_OK;
    const size_t total = (size_t)N * C * HW;
    if (layout == LT_LAYOUT_NHWC) {
        const nhwc_grid g = nhwc_grid_for(total, C, al16(x) && al16(dy) && al16(r) && al16(dx));
        NHWC_LAUNCH(k_bnh_bwd_dx, g, ctx->stream, total, C, x, dy, r, w.coef, dx, set);
    } else {
        LT_LAUNCH(k_bn_bwd_dx, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, HW, x, dy, r, w.coef, dx, set);
    }
    return launch_ok("bn backward (train)");
}

__global__ static void k_bn_bwd_eval_dx(size_t total, int C, int HW, const float *gamma, const float *run_var,
                                        float eps, const float *dy, float *dx, int set) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int c = chan_of(i, (size_t)HW, C);
        const double rs = 1.0 / sqrt((double)run_var[c] + (double)eps);
        const float a = (float)((gamma ? gamma[c] : 1.0f) * rs);
        if (set) dx[i] = a * dy[i];
        else dx[i] += a * dy[i];
    }
}

template <int VW>
__global__ static void k_bnh_bwd_eval_dx(size_t nvec, int C, const float *gamma, const float *run_var, float eps,
                                         const float *dy, float *dx, int set) {
    NHWC_THREAD(t, G, c0, C);
    if (t >= nvec) return;
    float a[VW];
    for (int k = 0; k < VW; k++) {
        const int c = (int)c0 + k;
        const double rs = 1.0 / sqrt((double)run_var[c] + (double)eps);
        a[k] = (float)((gamma ? gamma[c] : 1.0f) * rs);
    }
    for (size_t j = t; j < nvec; j += G) {
        float dv[VW], gv[VW];
        ldv<VW>(dy + j * VW, dv);
        if (!set) ldv<VW>(dx + j * VW, gv);
        for (int k = 0; k < VW; k++) gv[k] = set ? a[k] * dv[k] : gv[k] + a[k] * dv[k];
        stv<VW>(dx + j * VW, gv);
    }
}

int lt_cuda_bn_backward_eval(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x, const float *gamma,
                             const float *run_mean, const float *run_var, float eps, const float *dy, float *dx,
                             float *dgamma, float *dbeta, int set) {
    LT_TRY(layout_ok(layout, "bn backward (eval)"));
    LT_CTX(ctx);
    LT_TRY(bn_args(N, C, HW, x, dy));
    if (!run_mean || !run_var) return lt_err(LT_EINVAL, "cuda bn: NULL running statistics");
    if (dgamma || dbeta) {
        struct bn_ws w;
        LT_TRY(bn_ws_get(ctx, layout, (size_t)N * HW, C, &w));
        const bn_fin f = bn_fin_bwd(C, gamma, NULL, NULL, run_var, eps, dgamma, dbeta, NULL);
        LT_TRY(bn_part_launch(ctx, layout, N, C, HW, &w, x, dy, NULL, run_mean, f));
        LT_TRY(launch_ok("bn backward (eval, parameters)"));
    }
    if (dx) {
        const size_t total = (size_t)N * C * HW;
        if (layout == LT_LAYOUT_NHWC) {
            const nhwc_grid g = nhwc_grid_for(total, C, al16(dy) && al16(dx));
            NHWC_LAUNCH(k_bnh_bwd_eval_dx, g, ctx->stream, total, C, gamma, run_var, eps, dy, dx, set);
        } else {
            LT_LAUNCH(k_bn_bwd_eval_dx, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, HW, gamma, run_var, eps,
                                                                                dy, dx, set);
        }
        LT_TRY(launch_ok("bn backward (eval)"));
    }
    return LT_OK;
}

/* ---- conv bias ------------------------------------------------------------------
 * NCHW: y[n][c][p] += b[c] per element; the gradient one block per channel
 * (thread t: n in order, p = t, t + RT, ... in double, then the tree).
 * NHWC: the add as the NHWC apply kernels; the gradient is batch norm's
 * split reduction (k_bnh_part, what 2: the column sums of dy, one chunk
 * size rule, a fixed order). */
__global__ static void k_bias_add(size_t total, int C, size_t P, const float *b, float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int c = chan_of(i, P, C);
        y[i] = y[i] + b[c];
    }
}

template <int VW>
__global__ static void k_bias_add_nhwc(size_t nvec, int C, const float *b, float *y) {
    NHWC_THREAD(t, G, c0, C);
    if (t >= nvec) return;
    float bb[VW];
    for (int k = 0; k < VW; k++) bb[k] = b[c0 + k];
    for (size_t j = t; j < nvec; j += G) {
        float v[VW];
        ldv<VW>(y + j * VW, v);
        for (int k = 0; k < VW; k++) v[k] = v[k] + bb[k];
        stv<VW>(y + j * VW, v);
    }
}

int lt_cuda_bias_add(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, size_t P, const float *b, float *y) {
    LT_TRY(layout_ok(layout, "bias add"));
    if (N <= 0 || C <= 0 || !P) return LT_OK;
    const size_t total = (size_t)N * C * P;
    if (layout == LT_LAYOUT_NHWC) {
        const nhwc_grid g = nhwc_grid_for(total, C, al16(y));
        NHWC_LAUNCH(k_bias_add_nhwc, g, ctx->stream, total, C, b, y);
    } else {
        LT_LAUNCH(k_bias_add, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, P, b, y);
    }
    return launch_ok("bias add");
}

__global__ static void k_bias_grad(int N, int C, size_t P, const float *dy, float *db) {
    __shared__ double sh[RT];
    const int c = blockIdx.x;
    double s = 0;
    for (int n = 0; n < N; n++) {
        const float *d = dy + ((size_t)n * C + c) * P;
        for (size_t p = threadIdx.x; p < P; p += RT) s += d[p];
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) db[c] += (float)s;
}

int lt_cuda_bias_grad(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, size_t P, const float *dy, float *db) {
    LT_TRY(layout_ok(layout, "bias gradient"));
    if (!db || C <= 0) return LT_OK;
    if (layout == LT_LAYOUT_NHWC) {
        const size_t M = N > 0 ? (size_t)N * P : 0;
        if (!M) return LT_OK;
        if (M > (size_t)0x7fffffff || (C + TC - 1) / TC > LT_CUDA_BN_MAX_C)
            return lt_err(LT_ESHAPE, "cuda bias gradient: N=%d C=%d P=%zu: over 2^31 rows or %d channel tiles", N, C,
                          P, LT_CUDA_BN_MAX_C);
        struct bn_ws w;
        LT_TRY(bn_ws_get(ctx, layout, M, C, &w));
        bn_fin f = {};
        f.what = 2;
        f.dbeta = db;
        LT_TRY(bn_part_launch(ctx, layout, N, C, (int)P, &w, dy, NULL, NULL, NULL, f));
        return launch_ok("bias gradient");
    }
    LT_LAUNCH(k_bias_grad, C, RT, ctx->stream)(N, C, P, dy, db);
    return launch_ok("bias gradient");
}

/* ---- elementwise ---------------------------------------------------------------- */

__global__ static void k_relu_fwd(size_t n, const float *x, float *y) { GRID_LOOP(i, n) y[i] = relu1(x[i]); }
__global__ static void k_relu_bwd(size_t n, const float *y, const float *dy, float *dx, int set) {
    GRID_LOOP(i, n) {
        const float g = y[i] > 0.0f ? dy[i] : 0.0f;
        if (set) dx[i] = g;
        else dx[i] += g;
    }
}
__global__ static void k_add_fwd(size_t n, const float *a, const float *b, float *y) { GRID_LOOP(i, n) y[i] = a[i] + b[i]; }
__global__ static void k_acc(size_t n, const float *dy, float *d, int set) {
    GRID_LOOP(i, n) {
        if (set) d[i] = dy[i];
        else d[i] += dy[i];
    }
}

/* A residual sum and the in-place ReLU after it, as one pass each way: the
 * same float operations as k_add_fwd then k_relu_fwd (a + b rounded, then
 * max with 0), and as k_relu_bwd into the sum's gradient then k_acc into
 * each input (g = dy masked by y > 0; da first, then db, which when it is
 * da's buffer receives the second g on top). */
__global__ static void k_add_relu_fwd(size_t n, const float *a, const float *b, float *y) {
    GRID_LOOP(i, n) y[i] = relu1(a[i] + b[i]);
}
__global__ static void k_add_relu_bwd(size_t n, const float *y, const float *dy, float *da, int set_a, float *db,
                                      int set_b) {
    GRID_LOOP(i, n) {
        const float g = y[i] > 0.0f ? dy[i] : 0.0f;
        float va = 0.0f;
        if (da) {
            va = set_a ? g : da[i] + g;
            da[i] = va;
        }
        if (db) {
            if (db == da) db[i] = va + g;
            else db[i] = set_b ? g : db[i] + g;
        }
    }
}

int lt_cuda_relu_forward(lt_cuda_ctx *ctx, size_t n, const float *x, float *y) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    LT_LAUNCH(k_relu_fwd, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, x, y);
    return launch_ok("relu forward");
}

int lt_cuda_relu_backward(lt_cuda_ctx *ctx, size_t n, const float *y, const float *dy, float *dx, int set) {
    LT_CTX(ctx);
    if (!n || !dx) return LT_OK;
    LT_LAUNCH(k_relu_bwd, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, y, dy, dx, set);
    return launch_ok("relu backward");
}

int lt_cuda_add_forward(lt_cuda_ctx *ctx, size_t n, const float *a, const float *b, float *y) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    LT_LAUNCH(k_add_fwd, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, a, b, y);
    return launch_ok("add forward");
}

int lt_cuda_add_backward(lt_cuda_ctx *ctx, size_t n, const float *dy, float *da, int set_a, float *db, int set_b) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    if (da) {
        LT_LAUNCH(k_acc, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, dy, da, set_a);
        LT_TRY(launch_ok("add backward"));
    }
    if (db) {
        /* same buffer as da: the second contribution accumulates (CPU: dy + dy) */
        LT_LAUNCH(k_acc, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, dy, db, set_b && db != da);
        LT_TRY(launch_ok("add backward"));
    }
    return LT_OK;
}

int lt_cuda_add_relu_forward(lt_cuda_ctx *ctx, size_t n, const float *a, const float *b, float *y) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    if (!a || !b || !y) return lt_err(LT_EINVAL, "cuda add+relu: NULL tensor");
    LT_LAUNCH(k_add_relu_fwd, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, a, b, y);
    return launch_ok("add+relu forward");
}

int lt_cuda_add_relu_backward(lt_cuda_ctx *ctx, size_t n, const float *y, const float *dy, float *da, int set_a,
                              float *db, int set_b) {
    LT_CTX(ctx);
    if (!n || (!da && !db)) return LT_OK;
    if (!y || !dy) return lt_err(LT_EINVAL, "cuda add+relu backward: NULL tensor");
    LT_LAUNCH(k_add_relu_bwd, lt_cuda_blocks(n, ET), ET, ctx->stream)(n, y, dy, da, set_a, db, set_b);
    return launch_ok("add+relu backward");
}

/* ---- pooling --------------------------------------------------------------------
 * One thread per output (forward) or input (backward) element in both
 * layouts; es is the distance between two pixels of a plane: 1 in NCHW,
 * C in NHWC (xp, ap, dp then point at the element's channel). */

/* The window of output (oh, ow): -inf padding, the first maximum in
 * row-major window order wins, a NaN wins and sticks. */
__device__ static inline void maxpool_window(const float *xp, size_t es, int H, int W, int k, int s, int p, int oh,
                                             int ow, float *y, int32_t *argmax) {
    const int h0 = oh * s - p, w0 = ow * s - p;
    const int hlo = h0 < 0 ? 0 : h0, hhi = h0 + k > H ? H : h0 + k;
    const int wlo = w0 < 0 ? 0 : w0, whi = w0 + k > W ? W : w0 + k;
    float best = -INFINITY;
    int32_t bi = -1;
    for (int ih = hlo; ih < hhi; ih++)
        for (int iw = wlo; iw < whi; iw++) {
            const float v = xp[((size_t)ih * W + iw) * es];
            if (bi < 0 || v > best || isnan(v)) {
                if (bi >= 0 && isnan(best)) continue;
                best = v;
                bi = (int32_t)(ih * W + iw);
            }
        }
    *y = best;
    *argmax = bi;
}

/* Input pixel (ih, iw) gathers the gradients of the windows whose argmax it
 * is, in ascending output order: the CPU's scatter order, so equal sums. */
__device__ static inline void maxpool_gather(const int32_t *ap, const float *dp, size_t es, int W, int k, int s, int p,
                                             int ho, int wo, int ih, int iw, float *dx) {
    const int idx = ih * W + iw;
    const int nh = ih + p - k + 1, nw = iw + p - k + 1;
    const int oh0 = nh <= 0 ? 0 : (nh + s - 1) / s, ow0 = nw <= 0 ? 0 : (nw + s - 1) / s;
    int oh1 = (ih + p) / s, ow1 = (iw + p) / s;
    if (oh1 > ho - 1) oh1 = ho - 1;
    if (ow1 > wo - 1) ow1 = wo - 1;
    float acc = *dx;
    int hit = 0;
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++) {
            const size_t q = ((size_t)oh * wo + ow) * es;
            if (ap[q] == idx) {
                acc += dp[q];
                hit = 1;
            }
        }
    if (hit) *dx = acc;
}

__global__ static void k_maxpool_fwd(long planes, int H, int W, int k, int s, int p, int ho, int wo, const float *x,
                                     float *y, int32_t *argmax) {
    const size_t P = (size_t)ho * wo, HW = (size_t)H * W;
    GRID_LOOP(i, (size_t)planes * P) {
        size_t pl, q;
        lt_cuda_divmod(i, P, &pl, &q);
        const int oh = (int)q / wo, ow = (int)q % wo;
        maxpool_window(x + pl * HW, 1, H, W, k, s, p, oh, ow, &y[i], &argmax[i]);
    }
}

/* NHWC: i = ((n*ho + oh)*wo + ow)*C + c */
__global__ static void k_maxpool_fwd_nhwc(size_t total, int C, int H, int W, int k, int s, int p, int ho, int wo,
                                          const float *x, float *y, int32_t *argmax) {
    GRID_LOOP(i, total) {
        size_t q, c, t, ow, n, oh;
        lt_cuda_divmod(i, (size_t)C, &q, &c);
        lt_cuda_divmod(q, (size_t)wo, &t, &ow);
        lt_cuda_divmod(t, (size_t)ho, &n, &oh);
        maxpool_window(x + n * H * W * C + c, (size_t)C, H, W, k, s, p, (int)oh, (int)ow, &y[i], &argmax[i]);
    }
}

__global__ static void k_maxpool_bwd(long planes, int H, int W, int k, int s, int p, int ho, int wo,
                                     const int32_t *argmax, const float *dy, float *dx) {
    const size_t P = (size_t)ho * wo, HW = (size_t)H * W;
    GRID_LOOP(i, (size_t)planes * HW) {
        size_t pl, r;
        lt_cuda_divmod(i, HW, &pl, &r);
        const int idx = (int)r, ih = idx / W, iw = idx % W;
        maxpool_gather(argmax + pl * P, dy + pl * P, 1, W, k, s, p, ho, wo, ih, iw, &dx[i]);
    }
}

/* NHWC: i = ((n*H + ih)*W + iw)*C + c */
__global__ static void k_maxpool_bwd_nhwc(size_t total, int C, int H, int W, int k, int s, int p, int ho, int wo,
                                          const int32_t *argmax, const float *dy, float *dx) {
    GRID_LOOP(i, total) {
        size_t q, c, t, iw, n, ih;
        lt_cuda_divmod(i, (size_t)C, &q, &c);
        lt_cuda_divmod(q, (size_t)W, &t, &iw);
        lt_cuda_divmod(t, (size_t)H, &n, &ih);
        const size_t o = n * ho * wo * C + c;
        maxpool_gather(argmax + o, dy + o, (size_t)C, W, k, s, p, ho, wo, (int)ih, (int)iw, &dx[i]);
    }
}

static int maxpool_args(int N, int C, int H, int W, int k, int s, int p) {
    if (N <= 0 || C <= 0 || k <= 0 || s <= 0 || p < 0 || H + 2 * p < k || W + 2 * p < k)
        return lt_err(LT_ESHAPE, "cuda maxpool: bad shape N=%d C=%d %dx%d k=%d s=%d p=%d", N, C, H, W, k, s, p);
    return LT_OK;
}

int lt_cuda_maxpool_forward(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int H, int W, int k, int s, int p,
                            const float *x, float *y, int32_t *argmax) {
    LT_TRY(layout_ok(layout, "maxpool forward"));
    LT_CTX(ctx);
    LT_TRY(maxpool_args(N, C, H, W, k, s, p));
    const int ho = (H + 2 * p - k) / s + 1, wo = (W + 2 * p - k) / s + 1;
    const size_t total = (size_t)N * C * ho * wo;
    if (layout == LT_LAYOUT_NHWC)
        LT_LAUNCH(k_maxpool_fwd_nhwc, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, H, W, k, s, p, ho, wo, x,
                                                                                y, argmax);
    else
        LT_LAUNCH(k_maxpool_fwd, lt_cuda_blocks(total, ET), ET, ctx->stream)((long)N * C, H, W, k, s, p, ho, wo, x, y,
                                                                           argmax);
    return launch_ok("maxpool forward");
}

int lt_cuda_maxpool_backward(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int H, int W, int k, int s, int p,
                             const int32_t *argmax, const float *dy, float *dx) {
    LT_TRY(layout_ok(layout, "maxpool backward"));
    LT_CTX(ctx);
    if (!dx) return LT_OK;
    LT_TRY(maxpool_args(N, C, H, W, k, s, p));
    const int ho = (H + 2 * p - k) / s + 1, wo = (W + 2 * p - k) / s + 1;
    const size_t total = (size_t)N * C * H * W;
    if (layout == LT_LAYOUT_NHWC)
        LT_LAUNCH(k_maxpool_bwd_nhwc, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, H, W, k, s, p, ho, wo,
                                                                                argmax, dy, dx);
    else
        LT_LAUNCH(k_maxpool_bwd, lt_cuda_blocks(total, ET), ET, ctx->stream)((long)N * C, H, W, k, s, p, ho, wo, argmax,
                                                                           dy, dx);
    return launch_ok("maxpool backward");
}

/* Global average pool: (n, c) summed over p = 0 .. HW-1 in order, in
 * double, in both layouts (NHWC: consecutive threads take consecutive
 * channels of a pixel): the same bits. */
__global__ static void k_gap_fwd(size_t planes, int HW, const float *x, float *y) {
    GRID_LOOP(pl, planes) {
        const float *xp = x + pl * (size_t)HW;
        double sum = 0;
        for (int q = 0; q < HW; q++) sum += xp[q];
        y[pl] = (float)(sum / HW);
    }
}

__global__ static void k_gap_fwd_nhwc(size_t planes, int C, int HW, const float *x, float *y) {
    GRID_LOOP(i, planes) {
        size_t n, c;
        lt_cuda_divmod(i, (size_t)C, &n, &c);
        const float *xp = x + n * HW * C + c;
        double sum = 0;
        for (int q = 0; q < HW; q++) sum += xp[(size_t)q * C];
        y[i] = (float)(sum / HW);
    }
}

__global__ static void k_gap_bwd(size_t total, int HW, float inv, const float *dy, float *dx) {
    GRID_LOOP(i, total) {
        size_t pl, r;
        lt_cuda_divmod(i, (size_t)HW, &pl, &r);
        const float g = dy[pl] * inv;
        dx[i] += g;
    }
}

/* NHWC: i = (n*HW + q)*C + c gets dy[n*C + c] / HW */
__global__ static void k_gap_bwd_nhwc(size_t total, int C, size_t HWC, float inv, const float *dy, float *dx) {
    GRID_LOOP(i, total) {
        size_t n, r, q, c;
        lt_cuda_divmod(i, HWC, &n, &r);
        lt_cuda_divmod(r, (size_t)C, &q, &c);
        const float g = dy[n * C + c] * inv;
        dx[i] += g;
    }
}

int lt_cuda_gap_forward(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *x, float *y) {
    LT_TRY(layout_ok(layout, "global average pool forward"));
    LT_CTX(ctx);
    if (N <= 0 || C <= 0 || HW <= 0) return lt_err(LT_ESHAPE, "cuda gap: N=%d C=%d HW=%d", N, C, HW);
    const size_t planes = (size_t)N * C;
    if (layout == LT_LAYOUT_NHWC)
        LT_LAUNCH(k_gap_fwd_nhwc, lt_cuda_blocks(planes, 128), 128, ctx->stream)(planes, C, HW, x, y);
    else
        LT_LAUNCH(k_gap_fwd, lt_cuda_blocks(planes, 128), 128, ctx->stream)(planes, HW, x, y);
    return launch_ok("global average pool forward");
}

int lt_cuda_gap_backward(lt_cuda_ctx *ctx, lt_layout layout, int N, int C, int HW, const float *dy, float *dx) {
    LT_TRY(layout_ok(layout, "global average pool backward"));
    LT_CTX(ctx);
    if (!dx) return LT_OK;
    if (N <= 0 || C <= 0 || HW <= 0) return lt_err(LT_ESHAPE, "cuda gap: N=%d C=%d HW=%d", N, C, HW);
    const size_t total = (size_t)N * C * HW;
    if (layout == LT_LAYOUT_NHWC)
        LT_LAUNCH(k_gap_bwd_nhwc, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, C, (size_t)HW * C,
                                                                            1.0f / (float)HW, dy, dx);
    else
        LT_LAUNCH(k_gap_bwd, lt_cuda_blocks(total, ET), ET, ctx->stream)(total, HW, 1.0f / (float)HW, dy, dx);
    return launch_ok("global average pool backward");
}

/* ---- option-A shortcut ------------------------------------------------------------
 * (Co - Ci)/2 zero channels on each side, the input channels in the middle
 * (lt_shortcut.c), pixels subsampled from (0, 0) by the stride; NHWC:
 * y[n][oh][ow][co] = x[n][oh*stride][ow*stride][co - lo]. */
__global__ static void k_sc_fwd(int N, int Ci, int H, int W, int Co, int stride, int ho, int wo, const float *x,
                                float *y) {
    const int lo = (Co - Ci) / 2;
    const size_t P = (size_t)ho * wo;
    GRID_LOOP(i, (size_t)N * Co * P) {
        size_t t, q;
        lt_cuda_divmod(i, P, &t, &q);
        const int n = (int)(t / (size_t)Co), c = (int)(t % (size_t)Co), cs = c - lo;
        if (cs < 0 || cs >= Ci) {
            y[i] = 0.0f;
            continue;
        }
        const int oh = (int)(q / wo), ow = (int)(q % wo);
        y[i] = x[((size_t)n * Ci + cs) * H * W + (size_t)oh * stride * W + (size_t)ow * stride];
    }
}

__global__ static void k_sc_fwd_nhwc(int Ci, int H, int W, int Co, int stride, int ho, int wo, size_t total,
                                     const float *x, float *y) {
    const int lo = (Co - Ci) / 2;
    GRID_LOOP(i, total) {
        size_t q, co, t, ow, n, oh;
        lt_cuda_divmod(i, (size_t)Co, &q, &co);
        const int cs = (int)co - lo;
        if (cs < 0 || cs >= Ci) {
            y[i] = 0.0f;
            continue;
        }
        lt_cuda_divmod(q, (size_t)wo, &t, &ow);
        lt_cuda_divmod(t, (size_t)ho, &n, &oh);
        y[i] = x[((n * H + oh * stride) * W + ow * stride) * Ci + cs];
    }
}

__global__ static void k_sc_bwd(int N, int Ci, int H, int W, int Co, int stride, int ho, int wo, const float *dy,
                                float *dx) {
    const int lo = (Co - Ci) / 2;
    const size_t HW = (size_t)H * W, P = (size_t)ho * wo;
    GRID_LOOP(i, (size_t)N * Ci * HW) {
        size_t t, q;
        lt_cuda_divmod(i, HW, &t, &q);
        const int ih = (int)(q / W), iw = (int)(q % W);
        if (ih % stride || iw % stride) continue;
        const int n = (int)(t / Ci), c = (int)(t % Ci);
        dx[i] += dy[((size_t)n * Co + lo + c) * P + (size_t)(ih / stride) * wo + iw / stride];
    }
}

/* NHWC: dx[n][ih][iw][c] += dy[n][ih/stride][iw/stride][lo + c] on the sampled pixels */
__global__ static void k_sc_bwd_nhwc(int Ci, int H, int W, int Co, int stride, int ho, int wo, size_t total,
                                     const float *dy, float *dx) {
    const int lo = (Co - Ci) / 2;
    GRID_LOOP(i, total) {
        size_t q, c, t, iw, n, ih;
        lt_cuda_divmod(i, (size_t)Ci, &q, &c);
        lt_cuda_divmod(q, (size_t)W, &t, &iw);
        lt_cuda_divmod(t, (size_t)H, &n, &ih);
        if (ih % stride || iw % stride) continue;
        dx[i] += dy[((n * ho + ih / stride) * wo + iw / stride) * Co + lo + c];
    }
}

static int sc_args(int N, int Ci, int H, int W, int Co, int stride) {
    if (N <= 0 || Ci <= 0 || H <= 0 || W <= 0 || Co < Ci || (Co - Ci) % 2 || stride < 1)
        return lt_err(LT_ESHAPE, "cuda shortcut: bad shape N=%d Ci=%d %dx%d Co=%d stride=%d", N, Ci, H, W, Co, stride);
    return LT_OK;
}

int lt_cuda_shortcut_a_forward(lt_cuda_ctx *ctx, lt_layout layout, int N, int Ci, int H, int W, int Co, int stride,
                               const float *x, float *y) {
    LT_TRY(layout_ok(layout, "shortcut forward"));
    LT_CTX(ctx);
    LT_TRY(sc_args(N, Ci, H, W, Co, stride));
    const int ho = (H + stride - 1) / stride, wo = (W + stride - 1) / stride;
    const size_t total = (size_t)N * Co * ho * wo;
    if (layout == LT_LAYOUT_NHWC)
        LT_LAUNCH(k_sc_fwd_nhwc, lt_cuda_blocks(total, ET), ET, ctx->stream)(Ci, H, W, Co, stride, ho, wo, total, x, y);
    else
        LT_LAUNCH(k_sc_fwd, lt_cuda_blocks(total, ET), ET, ctx->stream)(N, Ci, H, W, Co, stride, ho, wo, x, y);
    return launch_ok("shortcut forward");
}

int lt_cuda_shortcut_a_backward(lt_cuda_ctx *ctx, lt_layout layout, int N, int Ci, int H, int W, int Co, int stride,
                                const float *dy, float *dx) {
    LT_TRY(layout_ok(layout, "shortcut backward"));
    LT_CTX(ctx);
    if (!dx) return LT_OK;
    LT_TRY(sc_args(N, Ci, H, W, Co, stride));
    const int ho = (H + stride - 1) / stride, wo = (W + stride - 1) / stride;
    const size_t total = (size_t)N * Ci * H * W;
    if (layout == LT_LAYOUT_NHWC)
        LT_LAUNCH(k_sc_bwd_nhwc, lt_cuda_blocks(total, ET), ET, ctx->stream)(Ci, H, W, Co, stride, ho, wo, total, dy,
                                                                           dx);
    else
        LT_LAUNCH(k_sc_bwd, lt_cuda_blocks(total, ET), ET, ctx->stream)(N, Ci, H, W, Co, stride, ho, wo, dy, dx);
    return launch_ok("shortcut backward");
}

/* ---- layout conversion ---------------------------------------------------------------
 * One thread per destination element (coalesced stores; the loads are
 * strided, which at weight and input sizes costs little). */
__global__ static void k_layout_convert(size_t total, int to_nhwc, int C, int HW, const float *src, float *dst,
                                        int acc) {
    GRID_LOOP(i, total) {
        size_t s;
        if (to_nhwc) {   /* i = (n*HW + p)*C + c  <-  (n*C + c)*HW + p */
            size_t t, c, n, p;
            lt_cuda_divmod(i, (size_t)C, &t, &c);
            lt_cuda_divmod(t, (size_t)HW, &n, &p);
            s = (n * C + c) * HW + p;
        } else {         /* i = (n*C + c)*HW + p  <-  (n*HW + p)*C + c */
            size_t t, p, n, c;
            lt_cuda_divmod(i, (size_t)HW, &t, &p);
            lt_cuda_divmod(t, (size_t)C, &n, &c);
            s = (n * HW + p) * C + c;
        }
        dst[i] = acc ? dst[i] + src[s] : src[s];
    }
}

int lt_cuda_layout_convert(lt_cuda_ctx *ctx, lt_layout to, int N, int C, int HW, const float *src, float *dst,
                           int accumulate) {
    LT_CTX(ctx);
    return lt_cuda_layout_convert_on(ctx, ctx->stream, to, N, C, HW, src, dst, accumulate);
}

int lt_cuda_layout_convert_on(lt_cuda_ctx *ctx, cudaStream_t stream, lt_layout to, int N, int C, int HW,
                              const float *src, float *dst, int accumulate) {
    LT_CTX(ctx);
    if (N < 0 || C < 0 || HW < 0) return lt_err(LT_ESHAPE, "cuda layout convert: N=%d C=%d HW=%d", N, C, HW);
    if (to != LT_LAYOUT_NCHW && to != LT_LAYOUT_NHWC) return lt_err(LT_EINVAL, "cuda layout convert: layout %d", (int)to);
    const size_t total = (size_t)N * C * HW;
    if (!total) return LT_OK;
    if (!src || !dst) return lt_err(LT_EINVAL, "cuda layout convert: NULL tensor");
    LT_LAUNCH(k_layout_convert, lt_cuda_blocks(total, ET), ET, stream)(total, to == LT_LAYOUT_NHWC, C, HW, src, dst,
                                                                        accumulate != 0);
    return launch_ok("layout convert");
}
