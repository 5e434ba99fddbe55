/* lt_cuda_step.cu — the device half of the training step (lt_cuda.h,
 * "the training step"): pinned uploads, the accumulating cross-entropy, the
 * optimizer steps with rates in device memory, and CUDA-graph capture.
 *
 * What a capture cannot contain, and how the rest of the library keeps
 * out of it once lt_step.c has run one eager step of the same batch size:
 *  - waits and host copies (cudaStreamSynchronize, lt_cuda_d2h / _h2d,
 *    the synchronous losses lt_cuda_softmax_ce / _sigmoid_bce): the step
 *    uses lt_cuda_ce_acc and uploads before the capture; the learned-scale
 *    cosine layer's backward still reads its scale on the host, so a model
 *    with it fails the capture and runs eagerly (lt_step.c);
 *  - allocations: cuDNN plans and the context workspace are made in the
 *    eager step (the plan cache is keyed by (geometry, N), the workspace
 *    only grows, and a growth changes ws_gen so a graph holding the old
 *    address is dropped); cuBLAS gets an explicit workspace here
 *    (cublasSetWorkspace after its stream was set: cublasSetStream would
 *    reset it);
 *  - algorithm searches (cudnnFind, lt_cuda_conv.cu: only without
 *    deterministic mode) run when a plan is made, in the eager warm-up
 *    step, never during a capture; the captured step runs the eager
 *    step's algorithms, and in deterministic mode (heuristic choice, no
 *    timing) the same bits.
 * No atomics anywhere: every sum runs in a fixed order. */
#include "lt_cuda_impl.h"
#include "lt_cuda_optim.cuh"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* ---- uploads -----------------------------------------------------------------------------
 * The batch's bytes cross PCIe on a copy stream of their own, into device
 * staging, while the compute stream still runs the step before (a
 * ResNet-50 batch at 224 px is 154 MB: milliseconds of PCIe that used to
 * sit in the compute stream between two steps); the compute stream then
 * copies them from the staging to their destinations (device to device,
 * about a tenth of a millisecond) before the step. The destinations stay
 * fixed, so a captured graph holding their addresses stays valid.
 *
 * Order, per upload k: host -> pinned slot (after the slot's event: its
 * copy of upload k-2 has left it); on the copy stream: wait for
 * `consumed` (upload k-1's staging read out), one copy slot -> staging,
 * record the slot's event and `copied`; on the compute stream: wait for
 * `copied`, the device copies staging -> dst[k], record `consumed`. */
struct lt_cuda_upload {
    size_t bytes;
    void *host[2];
    cudaEvent_t ev[2];   /* the slot's copy to the staging done (copy stream) */
    int next;
    void *dev;           /* device staging, bytes */
    cudaStream_t copy;
    cudaEvent_t copied;     /* staging filled (copy stream) */
    cudaEvent_t consumed;   /* staging read out (compute stream) */
};

void lt_cuda_upload_free(lt_cuda_ctx *ctx, void *p) {
    struct lt_cuda_upload *up = (struct lt_cuda_upload *)p;
    if (!up) return;
    if (up->copy) cudaStreamSynchronize(up->copy);
    if (ctx && ctx->stream) cudaStreamSynchronize(ctx->stream);
    for (int k = 0; k < 2; k++) {
        if (up->ev[k]) cudaEventDestroy(up->ev[k]);
        if (up->host[k]) cudaFreeHost(up->host[k]);
    }
    if (up->copied) cudaEventDestroy(up->copied);
    if (up->consumed) cudaEventDestroy(up->consumed);
    if (up->dev) cudaFree(up->dev);
    if (up->copy) cudaStreamDestroy(up->copy);
    (void)cudaGetLastError();
    free(up);
}

int lt_cuda_upload_new(lt_cuda_ctx *ctx, size_t bytes, void **out) {
    LT_CTX(ctx);
    if (!out) return lt_err(LT_EINVAL, "cuda upload: NULL output");
    *out = NULL;
    struct lt_cuda_upload *up = (struct lt_cuda_upload *)calloc(1, sizeof *up);
    if (!up) return lt_err(LT_ENOMEM, "cuda upload: out of host memory");
    /* room for a 16-byte alignment of each region */
    up->bytes = bytes + 64;
    cudaError_t e = cudaSuccess;
    const char *what = "upload staging";
    int dev_mem = 0;   /* what ran out: pinned host memory, or device memory */
    for (int k = 0; k < 2 && e == cudaSuccess; k++) {
        e = cudaHostAlloc(&up->host[k], up->bytes, cudaHostAllocDefault);
        if (e != cudaSuccess) up->host[k] = NULL;
        else e = cudaEventCreateWithFlags(&up->ev[k], cudaEventDisableTiming);
    }
    if (e == cudaSuccess) {
        what = "upload: device staging";
        dev_mem = 1;
        e = cudaMalloc(&up->dev, up->bytes);
        if (e != cudaSuccess) up->dev = NULL;
    }
    if (e == cudaSuccess) {
        what = "upload: copy stream";
        e = cudaStreamCreateWithFlags(&up->copy, cudaStreamNonBlocking);
        if (e != cudaSuccess) up->copy = NULL;
    }
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&up->copied, cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventCreateWithFlags(&up->consumed, cudaEventDisableTiming);
    if (e != cudaSuccess) {
        lt_cuda_upload_free(ctx, up);
        return e == cudaErrorMemoryAllocation
                   ? lt_err(LT_ENOMEM, "cuda upload: out of %s memory (%zu bytes)",
                            dev_mem ? "device" : "pinned host", bytes)
                   : lt_cuda_rt_err(e, what);
    }
    *out = up;
    return LT_OK;
}

int lt_cuda_upload(lt_cuda_ctx *ctx, void *p, int n, void *const *dst, const void *const *src, const size_t *bytes) {
    LT_CTX(ctx);
    struct lt_cuda_upload *up = (struct lt_cuda_upload *)p;
    if (!up || n < 0 || (n && (!dst || !src || !bytes))) return lt_err(LT_EINVAL, "cuda upload: bad arguments");
    const int slot = up->next;
    /* the whole upload must fit before anything is written or queued */
    size_t total = 0;
    for (int k = 0; k < n; k++)
        if (bytes[k]) total = ((total + bytes[k] + 15) & ~(size_t)15);
    if (total > up->bytes)
        return lt_err(LT_EINVAL, "cuda upload: %zu bytes do not fit the %zu-byte staging", total, up->bytes - 64);
    if (!total) return LT_OK;
    /* the slot's copy of two uploads ago must have left it */
    LT_CU(cudaEventSynchronize(up->ev[slot]), "upload: wait for the staging slot");
    size_t off = 0;
    for (int k = 0; k < n; k++) {
        if (!bytes[k]) continue;
        memcpy((char *)up->host[slot] + off, src[k], bytes[k]);
        off = (off + bytes[k] + 15) & ~(size_t)15;
    }
    /* the copy stream: after the last upload's staging was read out */
    cudaError_t e = cudaStreamWaitEvent(up->copy, up->consumed, 0);
    if (e == cudaSuccess) e = cudaMemcpyAsync(up->dev, up->host[slot], total, cudaMemcpyHostToDevice, up->copy);
    /* recorded after a failed copy too: a copy queued before it may still
     * read the slot, and the next use of the slot waits for this event */
    const cudaError_t e2 = cudaEventRecord(up->ev[slot], up->copy);
    up->next = slot ^ 1;
    if (e != cudaSuccess) return lt_cuda_rt_err(e, "upload: copy to the device staging");
    if (e2 != cudaSuccess) return lt_cuda_rt_err(e2, "upload: record");
    LT_CU(cudaEventRecord(up->copied, up->copy), "upload: record");
    /* the compute stream: from the staging to the destinations */
    LT_CU(cudaStreamWaitEvent(ctx->stream, up->copied, 0), "upload: wait for the copy stream");
    off = 0;
    int rc = LT_OK;
    for (int k = 0; k < n && rc == LT_OK; k++) {
        if (!bytes[k]) continue;
        e = cudaMemcpyAsync(dst[k], (char *)up->dev + off, bytes[k], cudaMemcpyDeviceToDevice, ctx->stream);
        if (e != cudaSuccess) rc = lt_cuda_rt_err(e, "upload: copy from the device staging");
        off = (off + bytes[k] + 15) & ~(size_t)15;
    }
    /* recorded after a failed copy too: the next upload's copy into the
     * staging waits for it */
    e = cudaEventRecord(up->consumed, ctx->stream);
    if (rc) return rc;
    if (e != cudaSuccess) return lt_cuda_rt_err(e, "upload: record");
    return LT_OK;
}

/* ---- cross-entropy into device accumulators -------------------------------------------------
 * Rows: lt_cuda_loss.cu's k_softmax_ce_rows without offsets and weights (the
 * CPU's double arithmetic), plus the row's hit: its first maximum logit is
 * the label (the harness's argmax, row[j] > row[best]). */
__global__ static void k_ce_rows(int N, int C, const float *logits, const int32_t *labels, float *dlogits,
                                 double *rowloss, int32_t *rowbad, int32_t *rowhit) {
    GRID_LOOP(ii, (size_t)N) {
        const int i = (int)ii;
        rowbad[i] = -1;
        rowloss[i] = 0;
        const float *z = logits + (size_t)i * C;
        int best = 0;
        for (int j = 1; j < C; j++)
            if (z[j] > z[best]) best = j;
        const int y = labels[i];
        rowhit[i] = best == y;
        double m = -INFINITY;
        int bad = -1;
        for (int j = 0; j < C; j++) {
            if (!isfinite(z[j])) { bad = j; break; }
            const double zj = (double)z[j];
            if (zj > m) m = zj;
        }
        if (bad >= 0) { rowbad[i] = bad; continue; }
        double s = 0.0;
        float *g = dlogits + (size_t)i * C;
        for (int j = 0; j < C; j++) {
            const double e = exp((double)z[j] - m);
            s += e;
            g[j] = (float)e;
        }
        const double lse = m + log(s);
        const double w = 1.0;
        rowloss[i] = w * (lse - (double)z[y]);
        const double scale = w / (s * N);
        for (int j = 0; j < C; j++) g[j] = (float)(g[j] * scale);
        g[y] = (float)((double)g[y] - w / N);
    }
}

/* One thread: the rows in order, as the CPU sums them. */
__global__ static void k_ce_acc(int N, int C, const float *logits, const double *rowloss, const int32_t *rowbad,
                                const int32_t *rowhit, lt_ce_acc *acc) {
    double total = 0.0;
    long long hits = 0;
    int bad_row = -1;
    for (int i = 0; i < N; i++) {
        if (rowbad[i] >= 0 && bad_row < 0) bad_row = i;
        total += rowloss[i];
        hits += rowhit[i];
    }
    const double loss = total / N;
    if (acc->status == LT_CE_ACC_OK) {
        if (bad_row >= 0) {
            acc->status = LT_CE_ACC_LOGIT;
            acc->i = bad_row;
            acc->j = rowbad[bad_row];
            acc->val = logits[(size_t)bad_row * C + rowbad[bad_row]];
            acc->fail_step = acc->steps;
        } else if (!isfinite(loss)) {
            acc->status = LT_CE_ACC_LOSS;
            acc->val = loss;
            acc->fail_step = acc->steps;
        }
    }
    acc->loss_sum += loss * N;
    acc->last_loss = loss;
    acc->correct += hits;
    acc->seen += N;
    acc->steps++;
}

int lt_cuda_ce_acc(lt_cuda_ctx *ctx, int N, int C, const float *logits, const int32_t *labels, float *dlogits,
                   void *scratch, lt_ce_acc *acc) {
    static const char fn[] = "cuda ce_acc";
    LT_CTX(ctx);
    if (N <= 0 || C <= 0) return lt_err(LT_EINVAL, "%s: N=%d C=%d must be positive", fn, N, C);
    if (!logits || !labels || !dlogits || !scratch || !acc)
        return lt_err(LT_EINVAL, "%s: NULL logits, labels, gradient, scratch or accumulator", fn);
    double *rowloss = (double *)scratch;
    int32_t *rowbad = (int32_t *)(rowloss + N), *rowhit = rowbad + N;
    LT_LAUNCH(k_ce_rows, lt_cuda_blocks((size_t)N, 64), 64, ctx->stream)(N, C, logits, labels, dlogits, rowloss, rowbad,
                                                                     rowhit);
    LT_TRY(lt_cuda_launch_check(fn));
    LT_LAUNCH(k_ce_acc, 1, 1, ctx->stream)(N, C, logits, rowloss, rowbad, rowhit, acc);
    return lt_cuda_launch_check(fn);
}

/* ---- optimizers with device rates -------------------------------------------------------------
 * Each block first turns r into the groups' rates in shared memory, with
 * lt_optim_step's host arithmetic (double products rounded once to float),
 * then runs lt_cuda_loss.cu's element update unchanged. */
__device__ static float group_lr(const lt_step_rates *r, int k) {
    return k == 0 ? r->lr : (float)((double)r->lr * r->lr_mult[k]);
}

__global__ static void k_sgd_dr(size_t n, float *w, const float *g, float *mom, const uint8_t *mask, const uint8_t *gid,
                                int n_groups, const lt_step_rates *r, float mu, int nesterov) {
    __shared__ float ra[LT_STEP_MAX_GROUPS], rb[LT_STEP_MAX_GROUPS];
    if (threadIdx.x < (unsigned)n_groups) {
        ra[threadIdx.x] = group_lr(r, (int)threadIdx.x);
        rb[threadIdx.x] = r->wd[threadIdx.x];
    }
    __syncthreads();
    const int use_mom = mu != 0.0f;
    GRID_LOOP(i, n) lt_sgd_elem(i, w, g, mom, mask, gid, ra, rb, mu, use_mom, nesterov);
}

__global__ static void k_adam_dr(size_t n, float *w, const float *g, float *m1, float *m2, const uint8_t *mask,
                                 const uint8_t *gid, int n_groups, const lt_step_rates *r, float b1, float b2,
                                 float eps) {
    __shared__ float ra[LT_STEP_MAX_GROUPS], rb[LT_STEP_MAX_GROUPS];
    __shared__ float bc2_sqrt;
    if (threadIdx.x < (unsigned)n_groups) {
        ra[threadIdx.x] = (float)((double)group_lr(r, (int)threadIdx.x) / r->bc1);
        rb[threadIdx.x] = r->wd[threadIdx.x];
    }
    if (threadIdx.x == 0) bc2_sqrt = r->bc2_sqrt;
    __syncthreads();
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    GRID_LOOP(i, n) lt_adam_elem(i, w, g, m1, m2, mask, gid, ra, rb, b1, b2, c1, c2, bc2_sqrt, eps);
}

static int dr_args(const char *what, int n_groups, const lt_step_rates *r) {
    if (n_groups < 1 || n_groups > LT_STEP_MAX_GROUPS || !r)
        return lt_err(LT_EINVAL, "cuda %s: %d groups (1..%d) and device rates", what, n_groups, LT_STEP_MAX_GROUPS);
    return LT_OK;
}

int lt_cuda_sgd_dev_rates(lt_cuda_ctx *ctx, size_t n, float *w, const float *g, float *mom, const uint8_t *mask,
                          const uint8_t *gid, int n_groups, const lt_step_rates *r, float momentum, int nesterov) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    LT_TRY(dr_args("sgd", n_groups, r));
    if (!w || !g || (momentum != 0.0f && !mom)) return lt_err(LT_EINVAL, "cuda sgd: NULL parameter, gradient or momentum");
    LT_LAUNCH(k_sgd_dr, lt_cuda_blocks(n, 256), 256, ctx->stream)(n, w, g, mom, mask, gid, n_groups, r, momentum,
                                                               nesterov != 0);
    return lt_cuda_launch_check("sgd step (device rates)");
}

int lt_cuda_adam_dev_rates(lt_cuda_ctx *ctx, size_t n, float *w, const float *g, float *m1, float *m2,
                           const uint8_t *mask, const uint8_t *gid, int n_groups, const lt_step_rates *r, float beta1,
                           float beta2, float eps) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    LT_TRY(dr_args("adam", n_groups, r));
    if (!w || !g || !m1 || !m2) return lt_err(LT_EINVAL, "cuda adam: NULL parameter, gradient or state");
    LT_LAUNCH(k_adam_dr, lt_cuda_blocks(n, 256), 256, ctx->stream)(n, w, g, m1, m2, mask, gid, n_groups, r, beta1, beta2,
                                                                eps);
    return lt_cuda_launch_check("adam step (device rates)");
}

/* ---- CUDA graphs ---------------------------------------------------------------------------- */
int lt_cuda_graph_prepare(lt_cuda_ctx *ctx) {
    LT_CTX(ctx);
    if (ctx->blas_ws) return LT_OK;
    LT_TRY(lt_cuda_alloc(ctx, &ctx->blas_ws, LT_CUDA_BLAS_WS));
    cublasStatus_t s = cublasSetWorkspace(ctx->blas, ctx->blas_ws, LT_CUDA_BLAS_WS);
    if (s != CUBLAS_STATUS_SUCCESS) {
        cudaFree(ctx->blas_ws);
        ctx->blas_ws = NULL;
        return lt_cuda_blas_err(s, "set workspace");
    }
    return LT_OK;
}

unsigned long lt_cuda_ws_generation(const lt_cuda_ctx *ctx) { return ctx ? ctx->ws_gen : 0; }

int lt_cuda_graph_begin(lt_cuda_ctx *ctx) {
    LT_CTX(ctx);
    /* eager filter-gradient work joined now: a join inside the capture
     * would make the captured stream wait for uncaptured work (invalid) */
    LT_TRY(lt_cuda_join(ctx));
    LT_CU(cudaStreamBeginCapture(ctx->stream, cudaStreamCaptureModeThreadLocal), "begin graph capture");
    return LT_OK;
}

int lt_cuda_graph_end(lt_cuda_ctx *ctx, void **exec) {
    LT_CTX(ctx);
    if (!exec) return lt_err(LT_EINVAL, "cuda graph: NULL output");
    *exec = NULL;
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(ctx->stream, &g);
    if (e != cudaSuccess) {
        if (g) cudaGraphDestroy(g);
        (void)cudaGetLastError();   /* capture errors are not sticky: clear them */
        return lt_cuda_rt_err(e, "end graph capture");
    }
    cudaGraphExec_t x = NULL;
    e = cudaGraphInstantiate(&x, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return lt_cuda_rt_err(e, "instantiate graph");
    }
    *exec = (void *)x;
    return LT_OK;
}

int lt_cuda_graph_launch(lt_cuda_ctx *ctx, void *exec) {
    LT_CTX(ctx);
    if (!exec) return lt_err(LT_EINVAL, "cuda graph: NULL graph");
    LT_TRY(lt_cuda_join(ctx));   /* the graph's filter gradients reuse dw and the side workspace */
    LT_CU(cudaGraphLaunch((cudaGraphExec_t)exec, ctx->stream), "graph launch");
    return LT_OK;
}

void lt_cuda_graph_free(lt_cuda_ctx *ctx, void *exec) {
    (void)ctx;
    if (exec) cudaGraphExecDestroy((cudaGraphExec_t)exec);
}
