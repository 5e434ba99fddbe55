/* lt_cuda_core.cu — context, device memory, errors. */
#include "lt_cuda_impl.h"

#include <cuda_profiler_api.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lt_cuda_rt_err(cudaError_t e, const char *what) {
    /* a failed runtime call also sets the thread's last error; take it, so
     * the next launch check does not report this error against another op
     * (a sticky error stays whatever is done here) */
    (void)cudaGetLastError();
    if (e == cudaErrorMemoryAllocation)
        return lt_err(LT_ENOMEM, "cuda: %s: out of device memory (%s)", what, cudaGetErrorString(e));
    return lt_err(LT_EDEVICE, "cuda: %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

int lt_cuda_dnn_err(cudnnStatus_t s, const char *what) {
    if (s == CUDNN_STATUS_ALLOC_FAILED)
        return lt_err(LT_ENOMEM, "cudnn: %s: out of memory (%s)", what, cudnnGetErrorString(s));
    return lt_err(LT_EDEVICE, "cudnn: %s: %s (status %d)", what, cudnnGetErrorString(s), (int)s);
}

int lt_cuda_blas_err(cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_ALLOC_FAILED)
        return lt_err(LT_ENOMEM, "cublas: %s: out of memory (%s)", what, cublasGetStatusString(s));
    return lt_err(LT_EDEVICE, "cublas: %s: %s (status %d)", what, cublasGetStatusString(s), (int)s);
}

int lt_cuda_launch_check(const char *what) {
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? LT_OK : lt_cuda_rt_err(e, what);
}

int lt_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();   /* clear the sticky "no driver" state */
        return 0;
    }
    return n;
}

int lt_cuda_create(lt_cuda_ctx **out, int device, lt_cuda_math math, int deterministic) {
    if (!out) return lt_err(LT_EINVAL, "cuda: NULL output context");
    *out = NULL;
    if (math != LT_CUDA_FP32 && math != LT_CUDA_TF32) return lt_err(LT_EINVAL, "cuda: unknown math mode %d", (int)math);
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return lt_err(LT_EDEVICE, "no CUDA device: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    }
    if (n == 0) return lt_err(LT_EDEVICE, "no CUDA device: the driver reports none");
    if (device < 0 || device >= n)
        return lt_err(LT_EDEVICE, "no CUDA device %d: the driver reports %d device%s", device, n, n == 1 ? "" : "s");
    lt_cuda_ctx *c = (lt_cuda_ctx *)calloc(1, sizeof *c);
    if (!c) return lt_err(LT_ENOMEM, "cuda: out of host memory for the context");
    c->device = device;
    c->math = math;
    c->deterministic = deterministic != 0;
    int rc = LT_OK;
    cudaDeviceProp prop;
    size_t blas_ver = 0;
    int rt_ver = 0;
#define TRY_(x) do { rc = (x); if (rc != LT_OK) goto fail; } while (0)
    if ((e = cudaSetDevice(device)) != cudaSuccess) { rc = lt_cuda_rt_err(e, "set device"); goto fail; }
    if ((e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        rc = lt_cuda_rt_err(e, "create stream");
        goto fail;
    }
    {
        cudnnStatus_t s = cudnnCreate(&c->dnn);
        if (s != CUDNN_STATUS_SUCCESS) { c->dnn = NULL; rc = lt_cuda_dnn_err(s, "create handle"); goto fail; }
        if ((s = cudnnSetStream(c->dnn, c->stream)) != CUDNN_STATUS_SUCCESS) { rc = lt_cuda_dnn_err(s, "set stream"); goto fail; }
    }
    {
        cublasStatus_t s = cublasCreate(&c->blas);
        if (s != CUBLAS_STATUS_SUCCESS) { c->blas = NULL; rc = lt_cuda_blas_err(s, "create handle"); goto fail; }
        if ((s = cublasSetStream(c->blas, c->stream)) != CUBLAS_STATUS_SUCCESS) { rc = lt_cuda_blas_err(s, "set stream"); goto fail; }
        /* FP32: no TF32, no reduced-precision reductions; TF32: tensor cores */
        s = cublasSetMathMode(c->blas, math == LT_CUDA_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH);
        if (s != CUBLAS_STATUS_SUCCESS) { rc = lt_cuda_blas_err(s, "set math mode"); goto fail; }
        /* atomics off: cuBLAS results are then bit-reproducible on one GPU */
        if ((s = cublasSetAtomicsMode(c->blas, CUBLAS_ATOMICS_NOT_ALLOWED)) != CUBLAS_STATUS_SUCCESS) {
            rc = lt_cuda_blas_err(s, "set atomics mode");
            goto fail;
        }
        int bv = 0;
        if (cublasGetVersion(c->blas, &bv) == CUBLAS_STATUS_SUCCESS) blas_ver = (size_t)bv;
    }
    TRY_(lt_cuda_alloc(c, &c->small, 256));
    /* batch norm's arrival counters (lt_cuda_ops.cu): zero at rest */
    TRY_(lt_cuda_alloc(c, (void **)&c->bn_count, LT_CUDA_BN_MAX_C * sizeof(unsigned)));
    TRY_(lt_cuda_memset0(c, c->bn_count, LT_CUDA_BN_MAX_C * sizeof(unsigned)));
    TRY_(lt_cuda_sync(c));
    if ((e = cudaGetDeviceProperties(&prop, device)) != cudaSuccess) { rc = lt_cuda_rt_err(e, "device properties"); goto fail; }
    rt_ver = 0;
    cudaRuntimeGetVersion(&rt_ver);
    snprintf(c->desc, sizeof c->desc, "%s (sm_%d%d, %d SMs), CUDA runtime %d, cuDNN %zu, cuBLAS %zu, %s%s", prop.name,
             prop.major, prop.minor, prop.multiProcessorCount, rt_ver, cudnnGetVersion(), blas_ver,
             math == LT_CUDA_TF32 ? "tf32" : "fp32", c->deterministic ? ", deterministic" : "");
    {
        lt_backend_info *in = &c->info;
        in->kind = LT_BACKEND_CUDA;
        in->device = device;
        snprintf(in->device_name, sizeof in->device_name, "%s", prop.name);
        in->cc_major = prop.major;
        in->cc_minor = prop.minor;
        int drv = 0;
        if (cudaDriverGetVersion(&drv) != cudaSuccess) drv = 0;
        in->driver_version = drv;
        in->runtime_version = rt_ver;
        in->cudnn_version = (int)cudnnGetVersion();
        in->cublas_version = (int)blas_ver;
        in->math = math;
        in->deterministic = c->deterministic;
    }
    if (lt_cuda_wgrad_stream_from_env()) TRY_(lt_cuda_set_wgrad_stream(c, 1));   /* LT_CUDA_WGRAD_STREAM=1 */
#undef TRY_
    *out = c;
    return LT_OK;
fail:
    lt_cuda_free_ctx(c);
    return rc;
}

void lt_cuda_free_ctx(lt_cuda_ctx *c) {
    if (!c) return;
    if (c->side) cudaStreamSynchronize(c->side);
    if (c->stream) cudaStreamSynchronize(c->stream);
    for (struct lt_cuda_conv_plan *p = c->plans, *nx; p; p = nx) {
        nx = p->next;
        cudnnDestroyTensorDescriptor(p->xd);
        cudnnDestroyTensorDescriptor(p->yd);
        cudnnDestroyFilterDescriptor(p->wd);
        cudnnDestroyConvolutionDescriptor(p->cd);
        free(p);
    }
    if (c->ws) cudaFree(c->ws);
    if (c->small) cudaFree(c->small);
    if (c->bn_count) cudaFree(c->bn_count);
    if (c->blas) cublasDestroy(c->blas);
    if (c->blas_ws) cudaFree(c->blas_ws);   /* after the handle that used it */
    if (c->dnn) cudnnDestroy(c->dnn);
    if (c->dnn_side) cudnnDestroy(c->dnn_side);
    if (c->ws_side) cudaFree(c->ws_side);   /* after the handle that used it */
    if (c->ev_fork) cudaEventDestroy(c->ev_fork);
    if (c->ev_join) cudaEventDestroy(c->ev_join);
    if (c->side) cudaStreamDestroy(c->side);
    if (c->stream) cudaStreamDestroy(c->stream);
    (void)cudaGetLastError();
    free(c);
}

lt_cuda_math lt_cuda_math_mode(const lt_cuda_ctx *ctx) { return ctx ? ctx->math : LT_CUDA_FP32; }
int lt_cuda_deterministic(const lt_cuda_ctx *ctx) { return ctx ? ctx->deterministic : 0; }
const char *lt_cuda_describe(const lt_cuda_ctx *ctx) { return ctx ? ctx->desc : "(no context)"; }
void *lt_cuda_stream(lt_cuda_ctx *ctx) { return ctx ? (void *)ctx->stream : NULL; }

int lt_cuda_get_info(const lt_cuda_ctx *ctx, lt_backend_info *out) {
    LT_CTX(ctx);
    if (!out) return lt_err(LT_EINVAL, "cuda: info: NULL output");
    *out = ctx->info;
    return LT_OK;
}

int lt_cuda_alloc(lt_cuda_ctx *ctx, void **p, size_t bytes) {
    LT_CTX(ctx);
    if (!p) return lt_err(LT_EINVAL, "cuda: alloc: NULL output pointer");
    *p = NULL;
    if (bytes == 0) return LT_OK;
    cudaError_t e = cudaMalloc(p, bytes);
    if (e != cudaSuccess) {
        *p = NULL;
        (void)cudaGetLastError();   /* an allocation failure is not sticky: clear it */
        if (e == cudaErrorMemoryAllocation)
            return lt_err(LT_ENOMEM, "cuda: out of device memory allocating %zu bytes (%.2f GiB)", bytes,
                          (double)bytes / (1024.0 * 1024.0 * 1024.0));
        return lt_cuda_rt_err(e, "cudaMalloc");
    }
    return LT_OK;
}

void lt_cuda_free(lt_cuda_ctx *ctx, void *p) {
    (void)ctx;
    if (p) cudaFree(p);
}

/* host memory (issue 20, C) */
int lt_cuda_host_alloc(lt_cuda_ctx *ctx, void **p, size_t bytes) {
    LT_CTX(ctx);
    if (!p) return lt_err(LT_EINVAL, "cuda: host alloc: NULL output pointer");
    *p = NULL;
    if (bytes == 0) return LT_OK;
    /* portable: pinned for every context, so a loader's slots may feed
     * copies on any device's stream */
    cudaError_t e = cudaHostAlloc(p, bytes, cudaHostAllocPortable);
    if (e != cudaSuccess) {
        *p = NULL;
        (void)cudaGetLastError();   /* not sticky: clear it */
        if (e == cudaErrorMemoryAllocation)
            return lt_err(LT_ENOMEM, "cuda: out of pinned host memory allocating %zu bytes (%.2f GiB)", bytes,
                          (double)bytes / (1024.0 * 1024.0 * 1024.0));
        return lt_cuda_rt_err(e, "cudaHostAlloc");
    }
    return LT_OK;
}

int lt_cuda_host_is_pinned(const void *p) {
    if (!p) return 0;
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return a.type == cudaMemoryTypeHost;
}

void lt_cuda_host_free(lt_cuda_ctx *ctx, void *p) {
    (void)ctx;
    if (p) cudaFreeHost(p);
}

int lt_cuda_profiler_range(int on) {
    LT_CU(on ? cudaProfilerStart() : cudaProfilerStop(), on ? "profiler start" : "profiler stop");
    return LT_OK;
}

int lt_cuda_workspace_reserve(lt_cuda_ctx *ctx, size_t bytes) {
    LT_CTX(ctx);
    return lt_cuda_ws_reserve(ctx, bytes);
}

/* Grows one of the context's workspaces, *ws of *have bytes, to at least
 * `bytes` (1 MiB at least): waits for every stream of the context before
 * freeing the old one (a workspace's users: the stream it belongs to, and
 * the compute stream, where a graph replays the filter-gradient stream's
 * work too), and counts the change in ws_gen. */
static int ws_grow(lt_cuda_ctx *ctx, void **ws, size_t *have, size_t bytes, const char *what) {
    if (bytes <= *have) return LT_OK;
    cudaError_t e = cudaStreamSynchronize(ctx->stream);
    if (e == cudaSuccess && ctx->side) e = cudaStreamSynchronize(ctx->side);
    if (e != cudaSuccess) return lt_err_wrap(lt_cuda_rt_err(e, "sync"), "%s", what);
    if (*ws) cudaFree(*ws);
    *ws = NULL;
    *have = 0;
    ctx->ws_gen++;   /* the old address is gone, even if the new one fails: no graph may keep it */
    size_t want = bytes < ((size_t)1 << 20) ? ((size_t)1 << 20) : bytes;
    int rc = lt_cuda_alloc(ctx, ws, want);
    if (rc != LT_OK) return lt_err_wrap(rc, "%s", what);
    *have = want;
    ctx->ws_gen++;
    return LT_OK;
}

int lt_cuda_ws_reserve(lt_cuda_ctx *ctx, size_t bytes) {
    return ws_grow(ctx, &ctx->ws, &ctx->ws_bytes, bytes, "workspace");
}

/* ---- the filter-gradient stream ------------------------------------------------- */
/* Made once, when first turned on, never during a capture (cudnnCreate
 * allocates): all four parts or none, so that a failed try leaves nothing
 * that a later try would take for a finished stream (a handle not bound to
 * the stream would run on the legacy stream, unordered with both). */
static int side_create(lt_cuda_ctx *c) {
    if (c->side) return LT_OK;
    cudaStream_t st = NULL;
    cudaEvent_t fork = NULL, join = NULL;
    cudnnHandle_t h = NULL;
    const char *what = "filter-gradient stream: create stream";
    cudaError_t e = cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    if (e != cudaSuccess) st = NULL;
    if (e == cudaSuccess) {
        what = "filter-gradient stream: create event";
        e = cudaEventCreateWithFlags(&fork, cudaEventDisableTiming);
        if (e != cudaSuccess) fork = NULL;
    }
    if (e == cudaSuccess) {
        e = cudaEventCreateWithFlags(&join, cudaEventDisableTiming);
        if (e != cudaSuccess) join = NULL;
    }
    cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
    const char *dwhat = "filter-gradient stream: create handle";
    if (e == cudaSuccess) {
        s = cudnnCreate(&h);
        if (s != CUDNN_STATUS_SUCCESS) h = NULL;
        else if ((s = cudnnSetStream(h, st)) != CUDNN_STATUS_SUCCESS) dwhat = "filter-gradient stream: set stream";
    }
    if (e != cudaSuccess || s != CUDNN_STATUS_SUCCESS) {
        if (h) cudnnDestroy(h);
        if (join) cudaEventDestroy(join);
        if (fork) cudaEventDestroy(fork);
        if (st) cudaStreamDestroy(st);
        (void)cudaGetLastError();
        return e != cudaSuccess ? lt_cuda_rt_err(e, what) : lt_cuda_dnn_err(s, dwhat);
    }
    c->side = st;
    c->ev_fork = fork;
    c->ev_join = join;
    c->dnn_side = h;
    return LT_OK;
}

int lt_cuda_capturing(const lt_cuda_ctx *ctx) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(ctx->stream, &cs) != cudaSuccess) {
        (void)cudaGetLastError();   /* not sticky: clear it for the next launch check */
        return 1;
    }
    return cs != cudaStreamCaptureStatusNone;
}

int lt_cuda_set_wgrad_stream(lt_cuda_ctx *ctx, int on) {
    LT_CTX(ctx);
    on = on != 0;
    if (on == ctx->wgrad_on) return LT_OK;
    if (lt_cuda_capturing(ctx))
        return lt_err(LT_ESTATE, "cuda: the filter-gradient stream cannot be switched while the stream is captured");
    if (on) {
        /* what a failed creation made stays for lt_cuda_free_ctx; the
         * setting stays off */
        LT_TRY(side_create(ctx));
    } else {
        LT_TRY(lt_cuda_join(ctx));
    }
    ctx->wgrad_on = on;
    ctx->ws_gen++;   /* a captured step has the other structure baked in */
    return LT_OK;
}

int lt_cuda_wgrad_stream(const lt_cuda_ctx *ctx) { return ctx ? ctx->wgrad_on : 0; }

int lt_cuda_join(lt_cuda_ctx *ctx) {
    LT_CTX(ctx);
    if (!ctx->side_busy) return LT_OK;
    LT_CU(cudaEventRecord(ctx->ev_join, ctx->side), "filter-gradient stream: join (record)");
    LT_CU(cudaStreamWaitEvent(ctx->stream, ctx->ev_join, 0), "filter-gradient stream: join (wait)");
    ctx->side_busy = 0;
    return LT_OK;
}

int lt_cuda_ws_side_reserve(lt_cuda_ctx *ctx, size_t bytes) {
    return ws_grow(ctx, &ctx->ws_side, &ctx->ws_side_bytes, bytes, "filter-gradient workspace");
}

/* The copies, the memset and sync below join the filter-gradient stream
 * first: what they read or overwrite may be what it still works on. */
int lt_cuda_memset0(lt_cuda_ctx *ctx, void *p, size_t bytes) {
    LT_CTX(ctx);
    if (!bytes) return LT_OK;
    LT_TRY(lt_cuda_join(ctx));
    LT_CU(cudaMemsetAsync(p, 0, bytes, ctx->stream), "memset");
    return LT_OK;
}

int lt_cuda_h2d(lt_cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    LT_CTX(ctx);
    if (!bytes) return LT_OK;
    LT_TRY(lt_cuda_join(ctx));
    /* pageable host memory: the copy is staged, src may be reused at return */
    LT_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream), "copy host to device");
    LT_CU(cudaStreamSynchronize(ctx->stream), "copy host to device");
    return LT_OK;
}

int lt_cuda_d2h(lt_cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    LT_CTX(ctx);
    if (!bytes) return LT_OK;
    LT_TRY(lt_cuda_join(ctx));
    LT_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx->stream), "copy device to host");
    LT_CU(cudaStreamSynchronize(ctx->stream), "copy device to host");
    return LT_OK;
}

int lt_cuda_d2d(lt_cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    LT_CTX(ctx);
    if (!bytes) return LT_OK;
    LT_TRY(lt_cuda_join(ctx));
    LT_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx->stream), "copy device to device");
    return LT_OK;
}

int lt_cuda_sync(lt_cuda_ctx *ctx) {
    LT_CTX(ctx);
    LT_TRY(lt_cuda_join(ctx));
    LT_CU(cudaStreamSynchronize(ctx->stream), "sync");
    return lt_cuda_launch_check("sync");
}
