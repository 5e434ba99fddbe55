/* lt_conv_avx2.c — the AVX2 + FMA kernels of the direct convolution
 * (lt_conv_fast.c) for CPUs without AVX-512F.
 *
 * Why: without them such a CPU takes the reference path (im2col + OpenBLAS
 * sgemm), whose batched im2col matrix is tens of megabytes per layer, out of
 * every cache, copied and read again for each pass: the direct path keeps
 * one image's planes in cache and does no im2col at all.
 *
 * The layout, packing and drivers are lt_conv_fast.c's; only the vector
 * kernels are narrower (8 lanes). Each kernel sums every output in the same
 * order, with the same fused multiply-adds, as its AVX-512 twin (sg_tile,
 * wg_tile): over the taps k (forward, data gradient) or the grid points q
 * (weight gradient) in order, from zero, then added to the destination.
 * So the AVX2 direct path gives the AVX-512 direct path's results bit for
 * bit (tests/test_ops_grad.c checks it where the CPU has both); Winograd and
 * the channel-vectorised forward stay AVX-512 only. */
#include "lt_conv_fast.h"

#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma")

/* lanes [0, n) on */
static inline __m256i lanes8(long n) {
    const int k = n <= 0 ? 0 : n >= 8 ? 8 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* ---- the shifted GEMM (forward and data gradient) --------------------------- */
/* C[m][q0 .. q0 + 8*NV) = sum_k A[k][h + m] * base[off[k] + q] for m < mr
 * (at most 4: one half of the packed 8-row block), lanes past Q neither read
 * nor written. 4 rows x 3 vectors = 12 accumulators of AVX2's 16 registers;
 * each k costs NV loads and 4 broadcasts for 4 * NV FMAs. */
static inline __attribute__((always_inline)) void
sg8_tile(const int NV, const int full, int K, const float *A, const float *base, const int *off, size_t q0,
         size_t Q, float *C, size_t ldc, int mr) {
    __m256 acc[4][3];
    __m256i mk[3];
#pragma GCC unroll 3
    for (int v = 0; v < NV; v++) mk[v] = lanes8((long)Q - (long)q0 - 8 * v);
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) acc[m][v] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        const float *b = base + off[k] + q0;
        __m256 bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) bv[v] = full ? _mm256_loadu_ps(b + 8 * v) : _mm256_maskload_ps(b + 8 * v, mk[v]);
        const float *a = A + (size_t)k * 8;
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            const __m256 am = _mm256_broadcast_ss(a + m);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) acc[m][v] = _mm256_fmadd_ps(am, bv[v], acc[m][v]);
        }
    }
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++) {
        if (m >= mr) break;
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            float *c = C + (size_t)m * ldc + q0 + 8 * v;
            if (full) _mm256_storeu_ps(c, acc[m][v]);
            else _mm256_maskstore_ps(c, mk[v], acc[m][v]);
        }
    }
}

static void sg8_full(int K, const float *A, const float *b, const int *o, size_t q0, size_t Q, float *C, size_t ldc,
                     int mr) { sg8_tile(3, 1, K, A, b, o, q0, Q, C, ldc, mr); }
static void sg8_3(int K, const float *A, const float *b, const int *o, size_t q0, size_t Q, float *C, size_t ldc,
                  int mr) { sg8_tile(3, 0, K, A, b, o, q0, Q, C, ldc, mr); }
static void sg8_2(int K, const float *A, const float *b, const int *o, size_t q0, size_t Q, float *C, size_t ldc,
                  int mr) { sg8_tile(2, 0, K, A, b, o, q0, Q, C, ldc, mr); }
static void sg8_1(int K, const float *A, const float *b, const int *o, size_t q0, size_t Q, float *C, size_t ldc,
                  int mr) { sg8_tile(1, 0, K, A, b, o, q0, Q, C, ldc, mr); }

/* lt_conv_sgemm_shift's contract (Ap packed [ceil(M/8)][K][8]); the panel of
 * 24 grid points stays in cache across the row blocks. */
void lt_conv_sgemm_shift_avx2(int M, int K, size_t Q, const float *Ap, const float *base, const int *off, float *C,
                              size_t ldc) {
    const int mb = (M + 7) / 8;
    for (size_t q0 = 0; q0 < Q; q0 += 24) {
        const size_t rem = Q - q0;
        for (int bi = 0; bi < mb; bi++) {
            const int m8 = M - bi * 8 < 8 ? M - bi * 8 : 8;
            for (int h = 0; h < m8; h += 4) {
                const int mr = m8 - h < 4 ? m8 - h : 4;
                const float *A = Ap + (size_t)bi * K * 8 + h;
                float *Ch = C + ((size_t)bi * 8 + h) * ldc;
                if (rem >= 24) sg8_full(K, A, base, off, q0, Q, Ch, ldc, mr);
                else if (rem > 16) sg8_3(K, A, base, off, q0, Q, Ch, ldc, mr);
                else if (rem > 8) sg8_2(K, A, base, off, q0, Q, Ch, ldc, mr);
                else sg8_1(K, A, base, off, q0, Q, Ch, ldc, mr);
            }
        }
    }
}

/* ---- channels last (the weight gradient's transposed dy) -------------------- */
static inline void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x20);
        r[4 + i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x31);
    }
}

/* dst[p * Cp + c] = src[c * cs + p] for p < n, c < C; lanes C..Cp-1 zero
 * (Cp a multiple of 8); 8 x 8 blocks transposed in registers. */
void lt_conv_channels_last_avx2(const float *src, int C, size_t cs, int n, int Cp, float *dst) {
    for (int p0 = 0; p0 < n; p0 += 8) {
        const int np = n - p0 < 8 ? n - p0 : 8;
        const __m256i mk = lanes8(np);
        for (int c0 = 0; c0 < Cp; c0 += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) {
                const float *s = src + (size_t)(c0 + i) * cs + p0;
                r[i] = c0 + i >= C ? _mm256_setzero_ps() : np == 8 ? _mm256_loadu_ps(s) : _mm256_maskload_ps(s, mk);
            }
            transpose8(r);
            for (int i = 0; i < np; i++) _mm256_storeu_ps(dst + (size_t)(p0 + i) * Cp + c0, r[i]);
        }
    }
}

/* ---- the weight gradient ------------------------------------------------------ */
/* dWt[k][m] += sum_q planes[off[k] + q] * T[q][m] for taps k0 .. k0+R-1 and
 * the 16 channels from lane vector mv0 (8 lanes each): 6 taps x 2 vectors =
 * 12 accumulators; per grid point 2 aligned loads of T and 6 broadcasts.
 * Taps past K repeat the last one and are not stored. */
static inline __attribute__((always_inline)) void
wg8_tile(const int R, int k0, int K, int mv0, size_t Q, int Mp, const float *planes, const int *off, const float *T,
         float *dWt) {
    __m256 acc[6][2];
    const float *b[6];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        const int k = k0 + r < K ? k0 + r : K - 1;
        b[r] = planes + off[k];
        acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    }
    const float *t = T + (size_t)mv0 * 8;
    for (size_t q = 0; q < Q; q++, t += Mp) {
        const __m256 d0 = _mm256_load_ps(t), d1 = _mm256_load_ps(t + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            const __m256 x = _mm256_broadcast_ss(b[r] + q);
            acc[r][0] = _mm256_fmadd_ps(x, d0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(x, d1, acc[r][1]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
        if (k0 + r >= K) break;
        float *o = dWt + (size_t)(k0 + r) * Mp + (size_t)mv0 * 8;
        _mm256_store_ps(o, _mm256_add_ps(_mm256_load_ps(o), acc[r][0]));
        _mm256_store_ps(o + 8, _mm256_add_ps(_mm256_load_ps(o + 8), acc[r][1]));
    }
}

void lt_conv_wgrad_avx2(int K, size_t Q, int Mp, const float *planes, const int *off, const float *T, float *dWt) {
    for (int mv0 = 0; mv0 < Mp / 8; mv0 += 2)
        for (int k0 = 0; k0 < K; k0 += 6) wg8_tile(6, k0, K, mv0, Q, Mp, planes, off, T, dWt);
}

#pragma GCC pop_options
