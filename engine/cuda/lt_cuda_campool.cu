/* lt_cuda_campool.cu — CAM-weighted pooling (engine/lt_campool.c, the CAMC
 * reconstruction's layer) on the device.
 *
 * Every value is computed by one thread with lt_campool.c's operations in
 * its order (double sums serial over the same index, the same float / double
 * mix, --fmad=false), so a result equals the CPU's bit for bit wherever the
 * device's exp agrees with the host's (the emulator's does; a GPU's double
 * exp may differ in its last bit, which a float rarely keeps). The
 * parallelism is over what the CPU computes independently: rows, channels,
 * locations, classes. The weight gradient is one shared accumulation: a
 * thread per channel adds the rows in their order (no atomics), so it is
 * deterministic and the CPU's.
 *
 * F [N][K][HW] (NCHW) or [N][HW][K] (NHWC); W [C][K]; saved per row: A [HW]
 * then the class as a float (the CPU's layout, so either side's backward
 * reads the other's forward). */
#include "lt_cuda_impl.h"

#include <math.h>

#define ET 128
#define CT 128   /* threads of the class search, one row per block */
#define CP_EPS LT_CUDA_CAM_POOL_EPS

/* F[i][k][p] in either layout */
__device__ static inline size_t fi(int nhwc, int K, int HW, size_t i, size_t k, size_t p) {
    return nhwc ? (i * HW + p) * K + k : (i * K + k) * HW + p;
}

/* |v| over n floats at stride, floored at eps (lt_campool.c's cp_norm) */
__device__ static float cp_norm(const float *v, int n, size_t stride) {
    double s = 0;
    for (int k = 0; k < n; k++) s += (double)v[k * stride] * v[k * stride];
    float r = (float)sqrt(s);
    return r > CP_EPS ? r : CP_EPS;
}

/* ---- forward --------------------------------------------------------------------------- */

/* thread (i, k): y = GAP */
__global__ static void k_cp_gap(int N, int K, int HW, int nhwc, const float *F, float *y) {
    GRID_LOOP(t, (size_t)N * K) {
        size_t i, k;
        lt_cuda_divmod(t, (size_t)K, &i, &k);
        double s = 0;
        for (int p = 0; p < HW; p++) s += F[fi(nhwc, K, HW, i, k, p)];
        y[t] = (float)(s / HW);
    }
}

/* block i: the row's class into saved[HW]: its label when labels are given
 * (one outside 0..C-1 falls back to the top-1 below: the loss's own label
 * check reports it, and no thread reads outside W), else the top-1 class
 * of cos(w_j, GAP): thread t scores classes t, t + CT, ... as the CPU does
 * (the first maximum wins), then the block keeps the largest score, the
 * lowest class among equals: the CPU's serial argmax. */
__global__ static void k_cp_class(int N, int K, int HW, int C, const float *y, const float *W, const int32_t *cls,
                                  float *S) {
    __shared__ double sb[CT];
    __shared__ int sj[CT];
    const int i = (int)blockIdx.x;
    if (i >= N) return;
    float *A = S + (size_t)i * (HW + 1);
    const int lab = cls ? cls[i] : -1;
    if (lab >= 0 && lab < C) {
        if (threadIdx.x == 0) A[HW] = (float)lab;
        return;
    }
    const float *f = y + (size_t)i * K;
    const float nf = cp_norm(f, K, 1);
    double best = -INFINITY;
    int bj = -1;
    for (int j = (int)threadIdx.x; j < C; j += CT) {
        const float *wj = W + (size_t)j * K;
        double d = 0;
        for (int k = 0; k < K; k++) d += (double)wj[k] * f[k];
        d /= (double)cp_norm(wj, K, 1) * nf;
        if (d > best) {
            best = d;
            bj = j;
        }
    }
    sb[threadIdx.x] = best;
    sj[threadIdx.x] = bj;
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int t = 1; t < CT; t++)
        if (sj[t] >= 0 && (sj[0] < 0 || sb[t] > sb[0] || (sb[t] == sb[0] && sj[t] < sj[0]))) {
            sb[0] = sb[t];
            sj[0] = sj[t];
        }
    A[HW] = (float)(sj[0] < 0 ? 0 : sj[0]);
}

/* thread (i, p): the attention logit scale * cos(w_c, u_p) */
__global__ static void k_cp_logit(int N, int K, int HW, int nhwc, float scale, const float *F, const float *W,
                                  float *S) {
    GRID_LOOP(t, (size_t)N * HW) {
        size_t i, p;
        lt_cuda_divmod(t, (size_t)HW, &i, &p);
        float *A = S + i * (HW + 1);
        const float *wc = W + (size_t)A[HW] * K;
        const float nw = cp_norm(wc, K, 1);
        const size_t stride = nhwc ? 1 : (size_t)HW;
        const float *u = F + fi(nhwc, K, HW, i, 0, p);
        double d = 0;
        for (int k = 0; k < K; k++) d += (double)wc[k] * u[k * stride];
        const float M = (float)(d / ((double)nw * cp_norm(u, K, stride)));
        A[p] = scale * M;
    }
}

/* thread i: the softmax over the row's locations, in place */
__global__ static void k_cp_softmax(int N, int HW, float *S) {
    GRID_LOOP(i, (size_t)N) {
        float *A = S + i * (HW + 1);
        double mx = -INFINITY;
        for (int p = 0; p < HW; p++)
            if (A[p] > mx) mx = A[p];
        double z = 0;
        for (int p = 0; p < HW; p++) {
            A[p] = (float)exp(A[p] - mx);
            z += A[p];
        }
        for (int p = 0; p < HW; p++) A[p] = (float)(A[p] / z);
    }
}

/* thread (i, k): y += gamma * sum_p A_p u_p */
__global__ static void k_cp_pool(int N, int K, int HW, int nhwc, float gamma, const float *F, const float *S,
                                 float *y) {
    GRID_LOOP(t, (size_t)N * K) {
        size_t i, k;
        lt_cuda_divmod(t, (size_t)K, &i, &k);
        const float *A = S + i * (HW + 1);
        double s = 0;
        for (int p = 0; p < HW; p++) s += (double)A[p] * F[fi(nhwc, K, HW, i, k, p)];
        y[t] += gamma * (float)s;
    }
}

static int cp_args(lt_layout layout, int N, int K, int HW, int C, const char *what) {
    if (layout != LT_LAYOUT_NCHW && layout != LT_LAYOUT_NHWC) return lt_err(LT_EINVAL, "cuda %s: layout %d", what, (int)layout);
    if (N <= 0 || K <= 0 || HW <= 0 || C <= 0) return lt_err(LT_ESHAPE, "cuda %s: N=%d K=%d HW=%d C=%d", what, N, K, HW, C);
    return LT_OK;
}

int lt_cuda_cam_pool_forward(lt_cuda_ctx *ctx, lt_layout layout, int N, int K, int HW, int C, const float *F,
                             const float *W, const int32_t *cls, float scale, float gamma, float *y, float *saved) {
    LT_CTX(ctx);
    LT_TRY(cp_args(layout, N, K, HW, C, "cam_pool forward"));
    const int nhwc = layout == LT_LAYOUT_NHWC;
    const size_t NK = (size_t)N * K, NP = (size_t)N * HW;
    LT_LAUNCH(k_cp_gap, lt_cuda_blocks(NK, ET), ET, ctx->stream)(N, K, HW, nhwc, F, y);
    LT_LAUNCH(k_cp_class, (unsigned)N, CT, ctx->stream)(N, K, HW, C, y, W, cls, saved);
    LT_LAUNCH(k_cp_logit, lt_cuda_blocks(NP, ET), ET, ctx->stream)(N, K, HW, nhwc, scale, F, W, saved);
    LT_LAUNCH(k_cp_softmax, lt_cuda_blocks((size_t)N, ET), ET, ctx->stream)(N, HW, saved);
    LT_LAUNCH(k_cp_pool, lt_cuda_blocks(NK, ET), ET, ctx->stream)(N, K, HW, nhwc, gamma, F, saved, y);
    return lt_cuda_launch_check("cam_pool forward");
}

/* ---- backward ---------------------------------------------------------------------------
 * Workspace: per (i, p) six doubles (g = df . u_p, d = w_c . u_p, |u_p|,
 * its floored value, dM_p, M_p), per row three (dot, |w_c|, pr), then the
 * rows' d what [N][K] floats. */
enum { PP_G, PP_D, PP_NU, PP_NUC, PP_DM, PP_M, PP_N };
enum { PR_DOT, PR_NW, PR_PR, PR_N };

/* thread (i, p): g, d and |u_p| */
__global__ static void k_cpb_dots(int N, int K, int HW, int nhwc, const float *F, const float *W, const float *S,
                                  const float *dy, double *pp) {
    GRID_LOOP(t, (size_t)N * HW) {
        size_t i, p;
        lt_cuda_divmod(t, (size_t)HW, &i, &p);
        const float *A = S + i * (HW + 1), *df = dy + i * K;
        const float *wc = W + (size_t)A[HW] * K;
        const size_t stride = nhwc ? 1 : (size_t)HW;
        const float *u = F + fi(nhwc, K, HW, i, 0, p);
        double g = 0, d = 0, nu2 = 0;
        for (int k = 0; k < K; k++) {
            g += (double)df[k] * u[k * stride];
            d += (double)wc[k] * u[k * stride];
        }
        for (int k = 0; k < K; k++) nu2 += (double)u[k * stride] * u[k * stride];
        double *q = pp + t * PP_N;
        q[PP_G] = g;
        q[PP_D] = d;
        q[PP_NU] = sqrt(nu2);
        q[PP_NUC] = q[PP_NU] > CP_EPS ? q[PP_NU] : CP_EPS;
    }
}

/* thread i: dot = sum_p A_p gamma g_p, and |w_c| */
__global__ static void k_cpb_row(int N, int K, int HW, float gamma, const float *W, const float *S, const double *pp,
                                 double *pr) {
    GRID_LOOP(i, (size_t)N) {
        const float *A = S + i * (HW + 1);
        double dot = 0;
        for (int p = 0; p < HW; p++) dot += A[p] * gamma * pp[(i * HW + p) * PP_N + PP_G];
        pr[i * PR_N + PR_DOT] = dot;
        pr[i * PR_N + PR_NW] = cp_norm(W + (size_t)A[HW] * K, K, 1);
    }
}

/* thread (i, p): dM_p and M_p */
__global__ static void k_cpb_dm(int N, int HW, float scale, float gamma, const float *S, double *pp,
                                const double *pr) {
    GRID_LOOP(t, (size_t)N * HW) {
        size_t i, p;
        lt_cuda_divmod(t, (size_t)HW, &i, &p);
        const float *A = S + i * (HW + 1);
        double *q = pp + t * PP_N;
        const float nw = (float)pr[i * PR_N + PR_NW];
        q[PP_DM] = scale * A[p] * (gamma * q[PP_G] - pr[i * PR_N + PR_DOT]);
        q[PP_M] = q[PP_D] / nw / q[PP_NUC];
    }
}

/* thread (i, k, p) of dF: the GAP and weighted-sum part, then (full) the
 * part through A, as two additions in the CPU's order */
__global__ static void k_cpb_dx(int N, int K, int HW, int nhwc, int full, float gamma, const float *F, const float *W,
                                const float *S, const float *dy, const double *pp, const double *pr, float *dF) {
    GRID_LOOP(t, (size_t)N * K * HW) {
        size_t i, r, k, p;
        lt_cuda_divmod(t, (size_t)K * HW, &i, &r);
        if (nhwc) lt_cuda_divmod(r, (size_t)K, &p, &k);
        else lt_cuda_divmod(r, (size_t)HW, &k, &p);
        const float *A = S + i * (HW + 1);
        const float dfk = dy[i * K + k];
        float v = dF[t];
        v += dfk / HW + gamma * A[p] * dfk;
        if (full) {
            const double *q = pp + (i * HW + p) * PP_N;
            const float nw = (float)pr[i * PR_N + PR_NW];
            const float wk = W[(size_t)A[HW] * K + k];
            const double u = F[t], nu = q[PP_NU], nuc = q[PP_NUC];
            const double g_u = wk / nw / nuc - (nu > CP_EPS ? q[PP_M] * u / (nuc * nuc) : 0.0);
            v += (float)(q[PP_DM] * g_u);
        }
        dF[t] = v;
    }
}

/* thread (i, k): d what_k = sum_p dM_p u_p,k / |u_p| (float sum, p in order) */
__global__ static void k_cpb_dwh(int N, int K, int HW, int nhwc, const float *F, const double *pp, float *dwh) {
    GRID_LOOP(t, (size_t)N * K) {
        size_t i, k;
        lt_cuda_divmod(t, (size_t)K, &i, &k);
        float s = 0;
        for (int p = 0; p < HW; p++) {
            const double *q = pp + (i * HW + p) * PP_N;
            s += (float)(q[PP_DM] * (double)F[fi(nhwc, K, HW, i, k, p)] / q[PP_NUC]);
        }
        dwh[t] = s;
    }
}

/* thread i: pr = what . d what */
__global__ static void k_cpb_pr(int N, int K, int HW, const float *W, const float *S, const float *dwh, double *pr) {
    GRID_LOOP(i, (size_t)N) {
        const float *wc = W + (size_t)S[i * (HW + 1) + HW] * K;
        const float nw = (float)pr[i * PR_N + PR_NW];
        double s = 0;
        for (int k = 0; k < K; k++) s += (double)wc[k] / nw * dwh[i * K + k];
        pr[i * PR_N + PR_PR] = s;
    }
}

/* thread k: gW[c_i][k] += (d what_k - what_k pr_i) / |w_c|, rows in order */
__global__ static void k_cpb_dw(int N, int K, int HW, const float *W, const float *S, const float *dwh,
                                const double *pr, float *gW) {
    GRID_LOOP(k, (size_t)K) {
        for (int i = 0; i < N; i++) {
            const size_t c = (size_t)S[(size_t)i * (HW + 1) + HW];
            const float nw = (float)pr[(size_t)i * PR_N + PR_NW];
            const double p = pr[(size_t)i * PR_N + PR_PR];
            const float wk = W[c * K + k];
            gW[c * K + k] += (float)((dwh[(size_t)i * K + k] - (nw > CP_EPS ? wk / nw * p : 0.0)) / nw);
        }
    }
}

int lt_cuda_cam_pool_backward(lt_cuda_ctx *ctx, lt_layout layout, int N, int K, int HW, int C, const float *F,
                              const float *W, const float *saved, const float *dy, float scale, float gamma,
                              int stop_grad, float *dF, float *gW) {
    LT_CTX(ctx);
    LT_TRY(cp_args(layout, N, K, HW, C, "cam_pool backward"));
    const int nhwc = layout == LT_LAYOUT_NHWC;
    const int full = !stop_grad && gamma != 0.0f;
    if (stop_grad) gW = NULL;
    if (!dF && !gW) return LT_OK;
    const size_t NP = (size_t)N * HW, NK = (size_t)N * K, NKP = NK * HW;
    if (!full) {
        if (dF)
            LT_LAUNCH(k_cpb_dx, lt_cuda_blocks(NKP, ET), ET, ctx->stream)(N, K, HW, nhwc, 0, gamma, F, W, saved, dy,
                                                                          NULL, NULL, dF);
        return lt_cuda_launch_check("cam_pool backward");
    }
    const size_t pp_bytes = NP * PP_N * sizeof(double), pr_bytes = (size_t)N * PR_N * sizeof(double);
    LT_TRY(lt_cuda_ws_reserve(ctx, pp_bytes + pr_bytes + NK * sizeof(float)));
    double *pp = (double *)ctx->ws, *pr = pp + NP * PP_N;
    float *dwh = (float *)(pr + (size_t)N * PR_N);
    LT_LAUNCH(k_cpb_dots, lt_cuda_blocks(NP, ET), ET, ctx->stream)(N, K, HW, nhwc, F, W, saved, dy, pp);
    LT_LAUNCH(k_cpb_row, lt_cuda_blocks((size_t)N, ET), ET, ctx->stream)(N, K, HW, gamma, W, saved, pp, pr);
    LT_LAUNCH(k_cpb_dm, lt_cuda_blocks(NP, ET), ET, ctx->stream)(N, HW, scale, gamma, saved, pp, pr);
    if (dF)
        LT_LAUNCH(k_cpb_dx, lt_cuda_blocks(NKP, ET), ET, ctx->stream)(N, K, HW, nhwc, 1, gamma, F, W, saved, dy, pp,
                                                                      pr, dF);
    if (gW) {
        LT_LAUNCH(k_cpb_dwh, lt_cuda_blocks(NK, ET), ET, ctx->stream)(N, K, HW, nhwc, F, pp, dwh);
        LT_LAUNCH(k_cpb_pr, lt_cuda_blocks((size_t)N, ET), ET, ctx->stream)(N, K, HW, W, saved, dwh, pr);
        LT_LAUNCH(k_cpb_dw, lt_cuda_blocks((size_t)K, ET), ET, ctx->stream)(N, K, HW, W, saved, dwh, pr, gW);
    }
    return lt_cuda_launch_check("cam_pool backward");
}
