/* test_cuemu.cc — the emulator's runtime and scheduler (tests/cuemu): the
 * rules it promises (lt_cuemu_rt.cc, lt_cuemu_sched.cc), each checked on a
 * small kernel or call sequence. */
#include <vector>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lt_cuemu.h"
#include "lt_cuemu_counts.h"
#include <cudnn.h>

#define RT 256

/* A fixed-tree block sum through shared memory, the pattern of
 * lt_cuda_ops.cu's reductions: one block per row. */
__global__ static void k_rowsum(int n, const float *x, double *out) {
    __shared__ double sh[RT];
    const int row = (int)blockIdx.x;
    double s = 0;
    for (int i = (int)threadIdx.x; i < n; i += RT) s += x[(size_t)row * n + i];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (int h = RT / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) sh[threadIdx.x] += sh[threadIdx.x + h];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[row] = sh[0];
}

__global__ static void k_scale(size_t n, float a, const float *x, float *y) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = a * x[i];
}

/* every thread writes one slot: the last writer wins, which differs between
 * forward (even blocks) and reverse (odd blocks) order */
__global__ static void k_race(int *out) { out[blockIdx.x] = (int)threadIdx.x; }

__global__ static void k_divergent_barrier(int *out) {
    if (threadIdx.x == 5) __syncthreads();
    out[threadIdx.x] = 1;
}

__global__ static void k_index3(int *out) {
    const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    const unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    out[b * (blockDim.x * blockDim.y * blockDim.z) + t] = (int)(b * 1000 + t);
}

#define LAUNCH(k, g, b, s) lt_cuemu_launcher(k, #k, (g), (b), 0, (s))

static void *dev(size_t bytes) {
    void *p = NULL;
    assert_int_equal(cudaMalloc(&p, bytes), cudaSuccess);
    return p;
}

static void reset(void) {
    assert_int_equal(cudaDeviceReset(), cudaSuccess);
    (void)cudaGetLastError();
}

static void barrier_reduction(void **state) {
    (void)state;
    reset();
    const int rows = 7, n = 1000;
    float *h = (float *)malloc(sizeof(float) * rows * n);
    for (int i = 0; i < rows * n; i++) h[i] = (float)((i * 37) % 101) - 50.0f;
    float *x = (float *)dev(sizeof(float) * rows * n);
    double *o = (double *)dev(sizeof(double) * rows);
    assert_int_equal(cudaMemcpy(x, h, sizeof(float) * rows * n, cudaMemcpyHostToDevice), cudaSuccess);
    LAUNCH(k_rowsum, rows, RT, (cudaStream_t)NULL)(n, x, o);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    double got[7];
    assert_int_equal(cudaMemcpy(got, o, sizeof got, cudaMemcpyDeviceToHost), cudaSuccess);
    for (int r = 0; r < rows; r++) {
        double want = 0;
        for (int i = 0; i < n; i++) want += h[(size_t)r * n + i];
        assert_true(got[r] == want);   /* integers: exact in any order */
    }
    cudaFree(x);
    cudaFree(o);
    free(h);
}

static void plain_kernel_and_3d_index(void **state) {
    (void)state;
    reset();
    const size_t n = 100003;
    float *x = (float *)dev(n * sizeof(float)), *y = (float *)dev(n * sizeof(float));
    float *h = (float *)malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = (float)i;
    cudaMemcpy(x, h, n * sizeof(float), cudaMemcpyHostToDevice);
    LAUNCH(k_scale, 13u, 128u, (cudaStream_t)NULL)(n, 2.0, x, y);   /* a double argument converted to float */
    cudaMemcpy(h, y, n * sizeof(float), cudaMemcpyDeviceToHost);
    for (size_t i = 0; i < n; i++) assert_true(h[i] == 2.0f * (float)i);

    const dim3 g(3, 2, 2), b(4, 3, 2);
    const int total = 12 * 24;
    int *o = (int *)dev(total * sizeof(int));
    LAUNCH(k_index3, g, b, (cudaStream_t)NULL)(o);
    int ho[12 * 24];
    cudaMemcpy(ho, o, sizeof ho, cudaMemcpyDeviceToHost);
    for (int i = 0; i < total; i++) assert_int_equal(ho[i], (i / 24) * 1000 + i % 24);
    cudaFree(x);
    cudaFree(y);
    cudaFree(o);
    free(h);
}

static void thread_order_alternates(void **state) {
    (void)state;
    reset();
    int *o = (int *)dev(4 * sizeof(int));
    LAUNCH(k_race, 4u, 64u, (cudaStream_t)NULL)(o);
    int h[4];
    cudaMemcpy(h, o, sizeof h, cudaMemcpyDeviceToHost);
    /* every other block runs its threads in reverse: the last writer is
     * thread 63 in one, thread 0 in the next */
    assert_true((h[0] == 63 && h[1] == 0) || (h[0] == 0 && h[1] == 63));
    assert_int_equal(h[2], h[0]);
    assert_int_equal(h[3], h[1]);
    /* every other launch runs its blocks in reverse: the order flips */
    LAUNCH(k_race, 4u, 64u, (cudaStream_t)NULL)(o);
    int h2[4];
    cudaMemcpy(h2, o, sizeof h2, cudaMemcpyDeviceToHost);
    assert_int_equal(h2[0], h[1]);
    assert_int_equal(h2[1], h[0]);
    cudaFree(o);
}

/* reads its shared slot before writing it: garbage on a GPU */
__global__ static void k_shared_stale(float *out) {
    __shared__ float sh[4];
    out[blockIdx.x] = sh[threadIdx.x];
    sh[threadIdx.x] = 1.0f;
    __syncthreads();
}

static void shared_memory_starts_as_garbage(void **state) {
    (void)state;
    reset();
    float *o = (float *)dev(3 * sizeof(float));
    LAUNCH(k_shared_stale, 3u, 1u, (cudaStream_t)NULL)(o);
    float h[3];
    cudaMemcpy(h, o, sizeof h, cudaMemcpyDeviceToHost);
    /* not the 1.0 the previous block (or launch) left: NaN */
    for (int i = 0; i < 3; i++) assert_true(isnan(h[i]));
    cudaFree(o);
}

static void kernel_pointer_arguments(void **state) {
    (void)state;
    reset();
    float host[4] = {0, 0, 0, 0};
    float *pin = NULL;
    assert_int_equal(cudaHostAlloc((void **)&pin, sizeof host, cudaHostAllocDefault), cudaSuccess);
    LAUNCH(k_scale, 1u, 4u, (cudaStream_t)NULL)((size_t)4, 2.0f, pin, pin);   /* pinned: mapped, fine */
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    LAUNCH(k_scale, 1u, 4u, (cudaStream_t)NULL)((size_t)4, 2.0f, host, host);   /* pageable host memory */
    assert_int_equal(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
    reset();
}

static void divergent_barrier_is_sticky_fault(void **state) {
    (void)state;
    reset();
    int *o = (int *)dev(64 * sizeof(int));
    LAUNCH(k_divergent_barrier, 1u, 64u, (cudaStream_t)NULL)(o);
    assert_int_equal(cudaGetLastError(), cudaSuccess);   /* the configuration was fine */
    assert_int_equal(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
    assert_int_equal(cudaGetLastError(), cudaErrorLaunchFailure);   /* sticky */
    void *p = NULL;
    assert_int_equal(cudaMalloc(&p, 16), cudaErrorLaunchFailure);
    reset();
    assert_int_equal(cudaMalloc(&p, 16), cudaSuccess);
    cudaFree(p);
}

static void launch_configuration_errors(void **state) {
    (void)state;
    reset();
    float *x = (float *)dev(16);
    LAUNCH(k_scale, 0u, 128u, (cudaStream_t)NULL)((size_t)4, 1.0f, x, x);
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidConfiguration);
    assert_int_equal(cudaGetLastError(), cudaSuccess);   /* not sticky */
    LAUNCH(k_scale, 1u, 2048u, (cudaStream_t)NULL)((size_t)4, 1.0f, x, x);
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidConfiguration);
    cudaFree(x);
}

static void memory_rules(void **state) {
    (void)state;
    reset();
    float *d = (float *)dev(8 * sizeof(float));
    float h[8];
    cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
    for (int i = 0; i < 8; i++) assert_true(isnan(h[i]));   /* fresh device memory is NaN */
    /* directions: a host pointer as device memory is an error */
    assert_int_equal(cudaMemcpy(h, h, sizeof h, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
    assert_int_equal(cudaMemcpy(d, d, sizeof h, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
    assert_int_equal(cudaMemcpy(d + 4, h, sizeof h, cudaMemcpyHostToDevice), cudaErrorInvalidValue);   /* overrun */
    assert_int_equal(cudaMemsetAsync(h, 0, sizeof h, NULL), cudaErrorInvalidValue);
    assert_int_equal(cudaFree(d + 1), cudaErrorInvalidValue);
    (void)cudaGetLastError();
    /* an absurd allocation: out of memory, not sticky */
    void *p = NULL;
    assert_int_equal(cudaMalloc(&p, (size_t)1 << 50), cudaErrorMemoryAllocation);
    assert_null(p);
    assert_int_equal(cudaGetLastError(), cudaErrorMemoryAllocation);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    assert_true(lt_cuemu_is_device(d, 8 * sizeof(float)));
    assert_false(lt_cuemu_is_device(d, 9 * sizeof(float)));
    assert_false(lt_cuemu_is_device(h, 4));
    cudaPointerAttributes a;
    assert_int_equal(cudaPointerGetAttributes(&a, d), cudaSuccess);
    assert_int_equal(a.type, cudaMemoryTypeDevice);
    assert_int_equal(cudaPointerGetAttributes(&a, h), cudaSuccess);
    assert_int_equal(a.type, cudaMemoryTypeUnregistered);
    cudaFree(d);
}

static void lazy_streams(void **state) {
    (void)state;
    reset();
    cudaStream_t s;
    assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    float *d = (float *)dev(4 * sizeof(float));
    float *pin = NULL;
    assert_int_equal(cudaHostAlloc((void **)&pin, 4 * sizeof(float), cudaHostAllocDefault), cudaSuccess);
    cudaPointerAttributes a;
    cudaPointerGetAttributes(&a, pin);
    assert_int_equal(a.type, cudaMemoryTypeHost);
    /* from pinned memory: the bytes are read when the copy runs */
    for (int i = 0; i < 4; i++) pin[i] = 1.0f;
    cudaMemcpyAsync(d, pin, 4 * sizeof(float), cudaMemcpyHostToDevice, s);
    for (int i = 0; i < 4; i++) pin[i] = 2.0f;   /* reused before the copy ran */
    cudaStreamSynchronize(s);
    /* into pinned memory: stale until the wait */
    for (int i = 0; i < 4; i++) pin[i] = 0.0f;
    cudaMemcpyAsync(pin, d, 4 * sizeof(float), cudaMemcpyDeviceToHost, s);
    assert_true(pin[0] == 0.0f);
    cudaEvent_t ev;
    cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    cudaEventRecord(ev, s);
    assert_int_equal(cudaEventQuery(ev), cudaErrorNotReady);
    assert_int_equal(cudaEventSynchronize(ev), cudaSuccess);
    assert_int_equal(cudaEventQuery(ev), cudaSuccess);
    assert_true(pin[0] == 2.0f);
    /* from pageable memory: staged at the call */
    float pg[4] = {3, 3, 3, 3};
    cudaMemcpyAsync(d, pg, sizeof pg, cudaMemcpyHostToDevice, s);
    pg[0] = 9.0f;
    float back[4];
    cudaMemcpyAsync(back, d, sizeof back, cudaMemcpyDeviceToHost, s);   /* into pageable: returns when done */
    assert_true(back[0] == 3.0f);
    /* a wait on an event runs the work queued before its record, not after */
    float *e1 = (float *)dev(4 * sizeof(float)), *e2 = (float *)dev(4 * sizeof(float));
    for (int i = 0; i < 4; i++) pin[i] = 7.0f;
    cudaMemcpyAsync(e1, pin, 4 * sizeof(float), cudaMemcpyHostToDevice, s);
    cudaEventRecord(ev, s);
    cudaMemcpyAsync(e2, pin, 4 * sizeof(float), cudaMemcpyHostToDevice, s);
    assert_int_equal(cudaEventSynchronize(ev), cudaSuccess);
    float p1[4] = {0}, p2[4] = {0};
    lt_cuemu_peek(p1, e1, sizeof p1);
    lt_cuemu_peek(p2, e2, sizeof p2);
    assert_true(p1[0] == 7.0f);   /* before the record: done */
    assert_true(isnan(p2[0]));    /* after it: still fresh memory (NaN bytes) */
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    lt_cuemu_peek(p2, e2, sizeof p2);
    assert_true(p2[0] == 7.0f);
    cudaFree(e1);
    cudaFree(e2);
    cudaEventDestroy(ev);
    cudaFreeHost(pin);
    cudaFree(d);
    cudaStreamDestroy(s);
}

/* Streams are independent: waiting for one runs its work and what it waits
 * for (cudaStreamWaitEvent), not other streams' work queued before; the
 * legacy NULL stream orders with blocking streams only; a captured event
 * cannot be waited for. */
static void independent_streams(void **state) {
    (void)state;
    reset();
    cudaStream_t a, b;
    assert_int_equal(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking), cudaSuccess);
    assert_int_equal(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking), cudaSuccess);
    float *pin = NULL;
    assert_int_equal(cudaHostAlloc((void **)&pin, 4 * sizeof(float), cudaHostAllocDefault), cudaSuccess);
    float *da = (float *)dev(4 * sizeof(float)), *db = (float *)dev(4 * sizeof(float));
    for (int i = 0; i < 4; i++) pin[i] = 5.0f;
    /* b's copy is queued first, then a's: a's wait leaves b's pending */
    cudaMemcpyAsync(db, pin, 4 * sizeof(float), cudaMemcpyHostToDevice, b);
    cudaMemcpyAsync(da, pin, 4 * sizeof(float), cudaMemcpyHostToDevice, a);
    assert_int_equal(cudaStreamQuery(b), cudaErrorNotReady);
    assert_int_equal(cudaStreamSynchronize(a), cudaSuccess);
    assert_int_equal(cudaStreamQuery(a), cudaSuccess);
    assert_int_equal(cudaStreamQuery(b), cudaErrorNotReady);
    float p[4] = {0};
    lt_cuemu_peek(p, db, sizeof p);
    assert_true(isnan(p[0]));   /* b's copy has not run */
    /* a waits for b's event: a's wait now runs b's work up to the record */
    cudaEvent_t ev;
    cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    assert_int_equal(cudaEventRecord(ev, b), cudaSuccess);
    for (int i = 0; i < 4; i++) pin[i] = 6.0f;   /* b's first copy has not read the slot yet */
    const float eight[2] = {8.0f, 8.0f};
    cudaMemcpyAsync(db + 2, eight, sizeof eight, cudaMemcpyHostToDevice, b);   /* after the record */
    assert_int_equal(cudaStreamWaitEvent(a, ev, 0), cudaSuccess);
    cudaMemcpyAsync(da, db, 4 * sizeof(float), cudaMemcpyDeviceToDevice, a);
    assert_int_equal(cudaStreamSynchronize(a), cudaSuccess);
    lt_cuemu_peek(p, da, sizeof p);
    assert_true(p[0] == 6.0f && p[2] == 6.0f);   /* b's first copy ran (with the slot's later bytes), not its second */
    assert_int_equal(cudaStreamQuery(b), cudaErrorNotReady);
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    assert_int_equal(cudaStreamQuery(b), cudaSuccess);
    lt_cuemu_peek(p, db, sizeof p);
    assert_true(p[0] == 6.0f && p[2] == 8.0f);
    /* a wait on an event never recorded, or already complete, waits for nothing */
    cudaEvent_t fresh;
    cudaEventCreateWithFlags(&fresh, cudaEventDisableTiming);
    assert_int_equal(cudaStreamWaitEvent(a, fresh, 0), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(a, ev, 0), cudaSuccess);
    assert_int_equal(cudaStreamQuery(a), cudaSuccess);
    cudaEventDestroy(fresh);
    /* the legacy NULL stream: a blocking stream's later work waits for its
     * work, a non-blocking stream's does not */
    cudaStream_t c;
    assert_int_equal(cudaStreamCreate(&c), cudaSuccess);
    float *x = (float *)dev(4 * sizeof(float)), *y = (float *)dev(4 * sizeof(float)),
          *z = (float *)dev(4 * sizeof(float));
    assert_int_equal(cudaMemsetAsync(x, 0, 4 * sizeof(float), NULL), cudaSuccess);
    cudaMemcpyAsync(y, x, 4 * sizeof(float), cudaMemcpyDeviceToDevice, a);   /* non-blocking */
    cudaMemcpyAsync(z, x, 4 * sizeof(float), cudaMemcpyDeviceToDevice, c);   /* blocking */
    assert_int_equal(cudaStreamSynchronize(a), cudaSuccess);
    lt_cuemu_peek(p, y, sizeof p);
    assert_true(isnan(p[0]));   /* read before the legacy memset ran */
    assert_int_equal(cudaStreamSynchronize(c), cudaSuccess);
    lt_cuemu_peek(p, z, sizeof p);
    assert_true(p[0] == 0.0f);
    /* an event last recorded into a capture cannot be waited for from a stream */
    assert_int_equal(cudaStreamBeginCapture(a, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaEventRecord(ev, a), cudaSuccess);
    cudaGraph_t g = NULL;
    assert_int_equal(cudaStreamEndCapture(a, &g), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(b, ev, 0), cudaErrorCapturedEvent);
    (void)cudaGetLastError();
    cudaGraphDestroy(g);
    cudaFree(x);
    cudaFree(y);
    cudaFree(z);
    cudaStreamDestroy(c);
    cudaEventDestroy(ev);
    cudaFree(da);
    cudaFree(db);
    cudaFreeHost(pin);
    cudaStreamDestroy(a);
    cudaStreamDestroy(b);
}

static void graph_capture(void **state) {
    (void)state;
    reset();
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    const size_t n = 1000;
    float *x = (float *)dev(n * sizeof(float)), *y = (float *)dev(n * sizeof(float));
    cudaMemsetAsync(x, 0, n * sizeof(float), s);
    float a = 3.0f;
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    LAUNCH(k_scale, 4u, 256u, s)(n, a, y, x);   /* x = a * y, recorded with a = 3 */
    a = 5.0f;                                   /* a later change does not reach the graph */
    cudaGraph_t g = NULL;
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaSuccess);
    cudaGraphExec_t gx = NULL;
    assert_int_equal(cudaGraphInstantiate(&gx, g, 0), cudaSuccess);
    cudaGraphDestroy(g);
    float h[1000];
    for (size_t i = 0; i < n; i++) h[i] = (float)i;
    cudaMemcpy(y, h, sizeof h, cudaMemcpyHostToDevice);
    cudaStreamSynchronize(s);
    /* nothing ran at capture: x is still zero */
    cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost);
    assert_true(h[7] == 0.0f);
    assert_int_equal(cudaGraphLaunch(gx, s), cudaSuccess);
    cudaStreamSynchronize(s);
    cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost);
    assert_true(h[7] == 21.0f);

    /* not allowed while capturing: each invalidates the capture */
    void *p = NULL;
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaMalloc(&p, 64), cudaErrorStreamCaptureUnsupported);
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    assert_null(g);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaMemcpyAsync(x, h, sizeof h, cudaMemcpyHostToDevice, s), cudaErrorStreamCaptureUnsupported);
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    (void)cudaGetLastError();
    /* an event last recorded into a capture: no host wait or query on it
     * until it is recorded outside one again */
    cudaEvent_t ce;
    cudaEventCreateWithFlags(&ce, cudaEventDisableTiming);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaEventRecord(ce, s), cudaSuccess);
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaSuccess);
    cudaGraphDestroy(g);
    assert_int_equal(cudaEventSynchronize(ce), cudaErrorCapturedEvent);
    assert_int_equal(cudaEventQuery(ce), cudaErrorCapturedEvent);
    (void)cudaGetLastError();
    assert_int_equal(cudaEventRecord(ce, s), cudaSuccess);
    assert_int_equal(cudaEventSynchronize(ce), cudaSuccess);
    cudaEventDestroy(ce);
    assert_int_equal(cudaStreamBeginCapture(NULL, cudaStreamCaptureModeThreadLocal), cudaErrorStreamCaptureUnsupported);
    (void)cudaGetLastError();
    /* the context still works after the capture errors */
    assert_int_equal(cudaGraphLaunch(gx, s), cudaSuccess);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    cudaGraphExecDestroy(gx);
    cudaFree(x);
    cudaFree(y);
    cudaStreamDestroy(s);
}

/* A capture across streams (CUDA's fork and join): a stream that waits for
 * an event recorded into an open capture joins it, its work lands in the
 * same graph, and the capture ends only when that work was joined back;
 * every joined stream leaves capture mode with the origin. */
static void cross_stream_capture(void **state) {
    (void)state;
    reset();
    cudaStream_t s, side, other;
    assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
    assert_int_equal(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking), cudaSuccess);
    assert_int_equal(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking), cudaSuccess);
    cudaEvent_t fork, join;
    cudaEventCreateWithFlags(&fork, cudaEventDisableTiming);
    cudaEventCreateWithFlags(&join, cudaEventDisableTiming);
    const size_t n = 1000;
    float *x = (float *)dev(n * sizeof(float)), *y = (float *)dev(n * sizeof(float)),
          *z = (float *)dev(n * sizeof(float));
    float h[1000];
    for (size_t i = 0; i < n; i++) h[i] = (float)i;
    cudaMemcpy(x, h, sizeof h, cudaMemcpyHostToDevice);

    /* y = 2x on s; fork; z = 3y on side while s computes x = 5y; join */
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    LAUNCH(k_scale, 4u, 256u, s)(n, 2.0f, x, y);
    assert_int_equal(cudaEventRecord(fork, s), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(side, fork, 0), cudaSuccess);
    enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    assert_int_equal(cudaStreamIsCapturing(side, &cs), cudaSuccess);
    assert_int_equal((int)cs, (int)cudaStreamCaptureStatusActive);
    LAUNCH(k_scale, 4u, 256u, side)(n, 3.0f, y, z);
    LAUNCH(k_scale, 4u, 256u, s)(n, 5.0f, y, x);
    /* only the origin ends a capture */
    cudaGraph_t g = NULL;
    assert_int_equal(cudaStreamEndCapture(side, &g), cudaErrorStreamCaptureUnmatched);
    assert_int_equal(cudaEventRecord(join, side), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(s, join, 0), cudaSuccess);
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaSuccess);
    assert_int_equal(cudaStreamIsCapturing(side, &cs), cudaSuccess);
    assert_int_equal((int)cs, (int)cudaStreamCaptureStatusNone);
    cudaGraphExec_t gx = NULL;
    assert_int_equal(cudaGraphInstantiate(&gx, g, 0), cudaSuccess);
    cudaGraphDestroy(g);
    cudaStreamSynchronize(s);
    cudaMemcpy(h, z, sizeof h, cudaMemcpyDeviceToHost);
    assert_true(isnan(h[7]));   /* nothing ran at capture */
    assert_int_equal(cudaGraphLaunch(gx, s), cudaSuccess);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    cudaMemcpy(h, z, sizeof h, cudaMemcpyDeviceToHost);
    assert_true(h[7] == 42.0f);   /* 3 * (2 * 7): side's node ran after the fork's */
    cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost);
    assert_true(h[7] == 70.0f);
    cudaGraphExecDestroy(gx);
    /* the side stream is an eager stream again */
    LAUNCH(k_scale, 4u, 256u, side)(n, 1.0f, x, z);
    assert_int_equal(cudaStreamSynchronize(side), cudaSuccess);
    cudaMemcpy(h, z, sizeof h, cudaMemcpyDeviceToHost);
    assert_true(h[7] == 70.0f);

    /* a fork never joined back: the capture fails, both streams leave it */
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaEventRecord(fork, s), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(side, fork, 0), cudaSuccess);
    LAUNCH(k_scale, 4u, 256u, side)(n, 3.0f, y, z);
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureUnjoined);
    assert_null(g);
    assert_int_equal(cudaStreamIsCapturing(side, &cs), cudaSuccess);
    assert_int_equal((int)cs, (int)cudaStreamCaptureStatusNone);
    /* joined, then more work on the side stream: unjoined again */
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaEventRecord(fork, s), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(side, fork, 0), cudaSuccess);
    assert_int_equal(cudaEventRecord(join, side), cudaSuccess);
    LAUNCH(k_scale, 4u, 256u, side)(n, 3.0f, y, z);
    assert_int_equal(cudaStreamWaitEvent(s, join, 0), cudaSuccess);
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureUnjoined);
    /* a join through a third stream counts (side -> other -> s) */
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaEventRecord(fork, s), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(side, fork, 0), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(other, fork, 0), cudaSuccess);
    LAUNCH(k_scale, 4u, 256u, side)(n, 3.0f, y, z);
    assert_int_equal(cudaEventRecord(join, side), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(other, join, 0), cudaSuccess);
    assert_int_equal(cudaEventRecord(join, other), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(s, join, 0), cudaSuccess);
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaSuccess);
    cudaGraphDestroy(g);
    /* a capture error on a joined stream fails the whole capture */
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaEventRecord(fork, s), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(side, fork, 0), cudaSuccess);
    assert_int_equal(cudaStreamSynchronize(side), cudaErrorStreamCaptureUnsupported);
    assert_int_equal(cudaEventRecord(join, side), cudaErrorStreamCaptureInvalidated);
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    /* after the capture, its events cannot be waited for */
    assert_int_equal(cudaStreamWaitEvent(side, fork, 0), cudaErrorCapturedEvent);
    (void)cudaGetLastError();
    assert_int_equal(cudaStreamSynchronize(side), cudaSuccess);
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    /* a captured stream may not wait for work recorded outside the capture */
    LAUNCH(k_scale, 4u, 256u, side)(n, 1.0f, x, z);
    assert_int_equal(cudaEventRecord(join, side), cudaSuccess);
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(s, join, 0), cudaErrorStreamCaptureIsolation);
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    /* two captures never merge: both fail */
    assert_int_equal(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaStreamBeginCapture(other, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    assert_int_equal(cudaEventRecord(fork, s), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(other, fork, 0), cudaErrorStreamCaptureMerge);
    assert_int_equal(cudaStreamEndCapture(other, &g), cudaErrorStreamCaptureInvalidated);
    assert_int_equal(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
    (void)cudaGetLastError();
    assert_int_equal(cudaStreamSynchronize(side), cudaSuccess);
    cudaEventDestroy(fork);
    cudaEventDestroy(join);
    cudaFree(x);
    cudaFree(y);
    cudaFree(z);
    cudaStreamDestroy(s);
    cudaStreamDestroy(side);
    cudaStreamDestroy(other);
}

/* host code that dereferences a device pointer dies, as on a GPU: a small
 * allocation and one mapped for huge pages (2 MiB and more, lt_cuemu_rt.cc
 * map_device), read at its last float */
static void host_reads_of_device_memory_fault(void **state) {
    (void)state;
#ifdef LT_CUEMU_ASAN
    print_message("skip: under AddressSanitizer device memory is ASan's heap (its kernels' accesses are checked "
                  "instead), not protected\n");
    skip();
#else
    const char *v = getenv("LT_CUEMU_PROTECT");
    if (v && !strcmp(v, "0")) {
        print_message("skip: LT_CUEMU_PROTECT=0\n");
        skip();
        return;
    }
    reset();
    for (size_t bytes : {(size_t)64, (size_t)(3 << 20) + 12}) {
        const size_t n = bytes / sizeof(float);
        float *d = (float *)dev(bytes);
        fflush(NULL);
        const pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            signal(SIGSEGV, SIG_DFL);   /* not CMocka's handler: die of it */
            volatile float x = d[n - 1];
            (void)x;
            _exit(0);
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFSIGNALED(st));
        assert_int_equal(WTERMSIG(st), SIGSEGV);
        /* while the device's work runs, the same memory is there */
        std::vector<float> h(n, 1.0f);
        assert_int_equal(cudaMemset(d, 0, bytes), cudaSuccess);
        assert_int_equal(cudaMemcpy(h.data(), d, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
        assert_true(h[3] == 0.0f && h[n - 1] == 0.0f);
        cudaFree(d);
    }
#endif
}

static void tf32_rounding(void **state) {
    (void)state;
    assert_true(lt_cuemu_tf32(1.0f) == 1.0f);
    const float v = 1.0f + 1.0f / 4096.0f;   /* below TF32's resolution (2^-10) */
    assert_true(lt_cuemu_tf32(v) == 1.0f);
    assert_true(lt_cuemu_tf32(1.0f + 1.0f / 1024.0f) == 1.0f + 1.0f / 1024.0f);
    assert_true(lt_cuemu_tf32(1.0f + 3.0f / 2048.0f) == 1.0f + 2.0f / 1024.0f);   /* tie: away from zero */
    assert_true(isinf(lt_cuemu_tf32(INFINITY)));
    assert_true(isnan(lt_cuemu_tf32(NAN)));
}

/* lt_cuemu_fail_call: the aimed call alone fails, once, with the code and
 * no effect; the counts and the live objects follow */
static void fault_injection(void **state) {
    (void)state;
    assert_int_equal(lt_cuemu_fail_call("cudaMalloc", 1, cudaErrorMemoryAllocation), -1);   /* not in the list */
    assert_int_equal(lt_cuemu_fail_call("cudaEventRecord", 0, cudaErrorUnknown), -1);
    assert_int_equal(lt_cuemu_fail_call("cudaEventRecord", 1, 0), -1);
    lt_cuemu_live l0;
    lt_cuemu_live_get(&l0);
    cudaStream_t s = NULL;
    const unsigned long long c0 = lt_cuemu_calls("cudaStreamCreateWithFlags");
    assert_int_equal(lt_cuemu_fail_call("cudaStreamCreateWithFlags", 2, cudaErrorMemoryAllocation), 0);
    assert_int_equal(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);   /* the first: runs */
    cudaStream_t s2 = NULL;
    assert_int_equal(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking), cudaErrorMemoryAllocation);
    assert_null(s2);
    assert_int_equal(cudaGetLastError(), cudaErrorMemoryAllocation);   /* not sticky: taken once */
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    assert_int_equal(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking), cudaSuccess);   /* once only */
    assert_int_equal(lt_cuemu_calls("cudaStreamCreateWithFlags"), c0 + 3);
    cudaEvent_t e = NULL;
    assert_int_equal(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), cudaSuccess);
    cudnnHandle_t h = NULL;
    assert_int_equal(lt_cuemu_fail_call("cudnnSetStream", 1, CUDNN_STATUS_INTERNAL_ERROR), 0);
    assert_int_equal(cudnnCreate(&h), CUDNN_STATUS_SUCCESS);
    assert_int_equal(cudnnSetStream(h, s), CUDNN_STATUS_INTERNAL_ERROR);
    assert_int_equal(cudnnSetStream(h, s), CUDNN_STATUS_SUCCESS);
    lt_cuemu_live l;
    lt_cuemu_live_get(&l);
    assert_int_equal(l.streams, l0.streams + 2);
    assert_int_equal(l.events, l0.events + 1);
    assert_int_equal(l.dnn_handles, l0.dnn_handles + 1);
    /* a failed record leaves the event as it was: a wait on it is no wait */
    int *d = NULL;
    assert_int_equal(cudaMalloc((void **)&d, sizeof(int)), cudaSuccess);
    assert_int_equal(lt_cuemu_fail_call("cudaEventRecord", 1, cudaErrorLaunchFailure), 0);
    assert_int_equal(cudaMemsetAsync(d, 0, sizeof(int), s), cudaSuccess);
    assert_int_equal(cudaEventRecord(e, s), cudaErrorLaunchFailure);
    assert_int_equal(cudaEventQuery(e), cudaSuccess);   /* never recorded */
    /* armed faults are dropped by lt_cuemu_fail_clear */
    assert_int_equal(lt_cuemu_fail_call("cudaStreamWaitEvent", 1, cudaErrorUnknown), 0);
    lt_cuemu_fail_clear();
    assert_int_equal(cudaStreamWaitEvent(s2, e, 0), cudaSuccess);
    (void)cudaGetLastError();
    assert_int_equal(cudaStreamSynchronize(s), cudaSuccess);
    assert_int_equal(cudaFree(d), cudaSuccess);
    assert_int_equal(cudnnDestroy(h), CUDNN_STATUS_SUCCESS);
    assert_int_equal(cudaEventDestroy(e), cudaSuccess);
    assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
    assert_int_equal(cudaStreamDestroy(s2), cudaSuccess);
    lt_cuemu_live_get(&l);
    assert_int_equal(l.streams, l0.streams);
    assert_int_equal(l.events, l0.events);
    assert_int_equal(l.dnn_handles, l0.dnn_handles);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(barrier_reduction),
        cmocka_unit_test(plain_kernel_and_3d_index),
        cmocka_unit_test(thread_order_alternates),
        cmocka_unit_test(shared_memory_starts_as_garbage),
        cmocka_unit_test(kernel_pointer_arguments),
        cmocka_unit_test(divergent_barrier_is_sticky_fault),
        cmocka_unit_test(launch_configuration_errors),
        cmocka_unit_test(memory_rules),
        cmocka_unit_test(lazy_streams),
        cmocka_unit_test(independent_streams),
        cmocka_unit_test(graph_capture),
        cmocka_unit_test(cross_stream_capture),
        cmocka_unit_test(host_reads_of_device_memory_fault),
        cmocka_unit_test(tf32_rounding),
        cmocka_unit_test(fault_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
