/* lt_conv_fast.h — the direct convolution behind lt_conv2d_*: AVX-512
 * kernels (with Winograd for 3x3 stride-1 pad-1 layers, lt_conv_wino.c), or
 * AVX2 + FMA kernels (lt_conv_avx2.c, direct only) on CPUs without AVX-512F
 * (lt_conv_isa, lt_backend.h).
 *
 * lt_conv2d_forward / lt_conv2d_backward (lt_ops.h) take the fast path when
 * the CPU has one of those (lt_conv_isa() != LT_CONV_ISA_NONE), the
 * convolution has groups == 1, and the geometry's path (lt_conv_geom.path,
 * from its model's backend: lt_backend.h) is not LT_CONV_PATH_REF. The fast
 * path sums in a different order than the
 * reference sgemm, so results agree to float rounding, not bit for bit
 * (tests/test_ops_grad.c bounds the difference); each path on its own is
 * deterministic for a fixed thread count. */
#ifndef LT_CONV_FAST_H
#define LT_CONV_FAST_H

#include "lt_ops.h"

/* Most threads one convolution uses; its scratch is sized for this many. */
#define LT_CONV_MAX_THREADS 8
/* Largest stride the fast path takes (it keeps stride^2 phase planes). */
#define LT_CONV_FAST_MAX_STRIDE 4

/* 1 when g would run on the fast path (on this CPU, on g's path). */
int lt_conv_fast_active(const lt_conv_geom *g);

/* Threads one batch-N fast-path convolution uses (its scratch has slots for
 * this many): omp_get_max_threads() capped by LT_CONV_MAX_THREADS and N. */
int lt_conv_fast_threads(int N);

/* LT_PAR_REGION(par, { block }): the block as OpenMP's `parallel
 * num_threads(T)` (T: an int in scope) where par holds, else run once by
 * this thread outside any region, as its team of one: there
 * omp_get_thread_num() is 0, omp_get_num_threads() 1, and an orphaned
 * single or barrier binds to this thread alone. Why: a region on one
 * thread costs a team allocation per call (lt_par, lt_base.h).
 * LT_PAR_FOR_T: the same for a `parallel for schedule(static)
 * num_threads(T)` loop. */
#define LT_PAR_REGION(par, ...) LT_PAR_IF(par, "omp parallel num_threads(T)", __VA_ARGS__)
#define LT_PAR_FOR_T(par, ...) LT_PAR_IF(par, "omp parallel for schedule(static) num_threads(T)", __VA_ARGS__)

/* The fast path itself (callers normally go through lt_conv2d_*). */
size_t lt_conv_fast_scratch_floats(const lt_conv_geom *g, int N);
/* ep may be NULL (see lt_conv2d_forward_ep) */
void lt_conv_fast_forward(const lt_conv_geom *g, int N, const float *x, const float *w,
                          const float *b, float *y, float *scratch, const lt_conv_epilogue *ep);
/* set_dx: overwrite dx instead of adding (see lt_conv2d_backward_x) */
void lt_conv_fast_backward(const lt_conv_geom *g, int N, const float *x, const float *w,
                           const float *dy, float *dx, float *dw, float *scratch, int set_dx);

/* The direct forward's kernel vectorised over output channels (for small
 * outputs; bit-identical to the grid kernel): 1 (default) where it is
 * measured faster, 0 never, 2 wherever it can run (16k output channels,
 * at most 1024 output positions; tests). */
void lt_conv_cv_mode(int mode);

/* C[m][q] = sum_k A[m][k] * base[off[k] + q] for m < M, q < Q: the shifted
 * GEMM kernel (AVX-512 only). Ap is packed [ceil(M/8)][K][8]; C rows are ldc
 * apart; lanes q >= Q are neither read nor written. */
void lt_conv_sgemm_shift(int M, int K, size_t Q, const float *Ap, const float *base,
                         const int *off, float *C, size_t ldc);

/* Winograd (lt_conv_wino.c): the fast path's forward, data gradient
 * (F(4x4, 3x3) or F(2x2, 3x3)) and weight gradient (F(3x3, 4x4) or
 * F(3x3, 2x2)) for 3x3 stride-1 pad-1 convolutions where it is measured to
 * pay (16+ input and output channels; the tile: lt_conv_wino_tile). g's
 * path decides: LT_CONV_PATH_AUTO (default) that rule; DIRECT never; WINO
 * every such convolution (tests; LT_CONV_WINO=2). */
int lt_conv_wino_applies(const lt_conv_geom *g);   /* 3x3, stride 1, pad 1, groups 1 */
/* Whether pass LT_WINO_FWD / LT_WINO_DGRAD / LT_WINO_WGRAD of g takes
 * Winograd on g's path. */
enum { LT_WINO_FWD = 0, LT_WINO_DGRAD = 1, LT_WINO_WGRAD = 2 };
int lt_conv_wino_pays(const lt_conv_geom *g, int pass);
/* The output tile of that pass: 2 for F(2x2, 3x3), 4 for F(4x4, 3x3) (the
 * rule, or the tile g's backend forces: lt_cpu_opts.wino_tile; tests). */
int lt_conv_wino_tile(const lt_conv_geom *g, int pass);
size_t lt_conv_wino_scratch_floats(const lt_conv_geom *g, int N);
void lt_conv_wino_forward(const lt_conv_geom *g, int N, const float *x, const float *w, const float *b,
                          float *y, float *scratch, const lt_conv_epilogue *ep);
void lt_conv_wino_dgrad(const lt_conv_geom *g, int N, const float *w, const float *dy, float *dx,
                        float *scratch, int set_dx);
/* dw += the weight gradient by Winograd F(3x3, 4x4) / F(3x3, 2x2)
 * (lt_conv_wino.c), for the geometries lt_conv_wino_pays(g, LT_WINO_WGRAD)
 * accepts. */
void lt_conv_wino_wgrad(const lt_conv_geom *g, int N, const float *x, const float *dy, float *dw,
                        float *scratch);
size_t lt_conv_wino_wgrad_scratch_floats(const lt_conv_geom *g, int N);
/* Asks for the n floats at p to be brought into the cache. The planes
 * builders call it for the next input channel while they copy this one: a
 * layer's input is the previous layer's output, gone from L2 by the time it
 * is read (a batch's activations are megabytes), and the copies stalled on
 * those misses (a ResNet-8 forward 3-4% faster with it). */
static inline void lt_conv_prefetch(const float *p, size_t n) {
    const char *c = (const char *)p;
    for (size_t b = 0; b < n * sizeof(float); b += 64) __builtin_prefetch(c + b, 0, 3);
}

/* The same for n floats about to be written (prefetchw: the line arrives
 * owned, so the stores do not stall on its read-for-ownership): the stores
 * call it for the next output channel (and lt_conv_prefetch for its
 * residual). */
static inline void lt_conv_prefetch_w(float *p, size_t n) {
    char *c = (char *)p;
    for (size_t b = 0; b < n * sizeof(float); b += 64) __asm__ volatile("prefetchw %0" : : "m"(c[b]));
}

/* Per-image work split of the forward and data-gradient loops: thread t
 * owns units [U*t/T, U*(t+1)/T) and takes them from the front, in order, so
 * an image stays on the thread that had it in the previous layer (its
 * activations in that core's caches: a fully dynamic schedule measured 8-14%
 * slower); a thread whose own units are done takes the others' from the
 * back. On this shared machine a core is regularly slowed for a while, and
 * with a static split the other then waits at the end of every layer.
 * Which thread computes an image does not change its result (each uses its
 * own scratch, the same operations), so outputs stay bit-identical; the
 * weight gradient's per-thread partial sums keep the static split. */
#include <stdatomic.h>
typedef struct {
    _Alignas(64) _Atomic unsigned long long fb;   /* front (low 32 bits), back (high 32): chunk indices */
    int n0, n1, G;                                /* this thread's images, chunks of G from n0 */
} lt_conv_queue;
/* Thread t's images are [N*t/T, N*(t+1)/T), in chunks of G (the last one
 * of each thread may be shorter), as the static split had them. */
static inline void lt_conv_queue_init(lt_conv_queue *q, int T, int N, int G) {
    for (int t = 0; t < T; t++) {
        q[t].n0 = (int)((long)N * t / T);
        q[t].n1 = (int)((long)N * (t + 1) / T);
        q[t].G = G;
        const unsigned long long nc = (unsigned long long)((q[t].n1 - q[t].n0 + G - 1) / G);
        atomic_store_explicit(&q[t].fb, nc << 32, memory_order_relaxed);
    }
}
/* Tests: 1 makes every thread take the next thread's chunks (from the
 * back) before its own, so that each chunk is computed away from its owner
 * and a thread's first chunk is not its own (lt_conv_fast.c). */
extern int lt_conv_steal_first;
/* The next chunk for thread t: 1 with its first image *n and its count *g,
 * 0 when every chunk is taken. */
static inline int lt_conv_queue_next(lt_conv_queue *q, int T, int t, int *n, int *g) {
    const int k0 = lt_conv_steal_first && T > 1 ? 1 : 0;
    for (int kk = 0; kk < T; kk++) {
        const int k = (kk + k0) % T;
        lt_conv_queue *o = &q[(t + k) % T];
        unsigned long long v = atomic_load_explicit(&o->fb, memory_order_relaxed);
        for (;;) {
            const unsigned long long f = v & 0xFFFFFFFFull, b = v >> 32;
            if (f >= b) break;
            /* own queue: the front; another's: the back */
            const unsigned long long nv = k == 0 ? (f + 1) | b << 32 : f | (b - 1) << 32;
            if (atomic_compare_exchange_weak_explicit(&o->fb, &v, nv, memory_order_relaxed, memory_order_relaxed)) {
                *n = o->n0 + (int)(k == 0 ? f : b - 1) * o->G;
                *g = o->n1 - *n < o->G ? o->n1 - *n : o->G;
                return 1;
            }
        }
    }
    return 0;
}

/* One image [C][HW] to channels-last [HW][Cp] (Cp a multiple of 16, lanes
 * past C zero); AVX-512 only (lt_conv_fast.c). */
void lt_conv_nhwc16(const float *src, int C, int HW, int Cp, float *dst);

/* The AVX2 + FMA kernels (lt_conv_avx2.c), for CPUs without AVX-512F: the
 * same contracts and the same sums, in the same order, as the AVX-512
 * kernels (lt_conv_sgemm_shift; the weight gradient's wg_tile and its
 * channels-last transpose in lt_conv_fast.c). */
void lt_conv_sgemm_shift_avx2(int M, int K, size_t Q, const float *Ap, const float *base, const int *off, float *C,
                              size_t ldc);
/* dst[p * Cp + c] = src[c * cs + p] for p < n; lanes C..Cp-1 zero (Cp a
 * multiple of 8) */
void lt_conv_channels_last_avx2(const float *src, int C, size_t cs, int n, int Cp, float *dst);
/* dWt[k][m] (K x Mp, Mp a multiple of 16, 32-byte aligned) += sum over q < Q
 * of planes[off[k] + q] * T[q * Mp + m] */
void lt_conv_wgrad_avx2(int K, size_t Q, int Mp, const float *planes, const int *off, const float *T, float *dWt);

#endif
