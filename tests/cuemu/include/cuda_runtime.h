/* cuda_runtime.h — the emulator's CUDA runtime (tests/cuemu): the subset of
 * the CUDA runtime API and of the device language that engine/cuda uses,
 * with CUDA's names and values, for the CPU build of the CUDA library
 * (g++ -DLT_CUEMU). Not NVIDIA's header: only what the library needs.
 *
 * Device code: a __global__ function is a plain C++ function run once per
 * emulated thread; threadIdx / blockIdx are variables the scheduler sets
 * (globals: one kernel runs at a time); __shared__ data are function statics (one block runs at
 * a time, so a block's threads share them, as on a GPU); __syncthreads()
 * is a barrier between the block's threads, which run as fibers. Launches
 * go through LT_LAUNCH (lt_cuda_impl.h), which here becomes
 * lt_cuemu_launcher(k, ...)(args): the arguments are copied at launch, as
 * CUDA copies them. */
#ifndef LT_CUEMU_CUDA_RUNTIME_H
#define LT_CUEMU_CUDA_RUNTIME_H

#ifndef __cplusplus
#error "tests/cuemu/include/cuda_runtime.h is C++ (the emulated CUDA library is built with g++)"
#endif

/* device code sees the math library, as under nvcc */
#include <math.h>
#include <stddef.h>

#include <functional>
#include <tuple>
#include <utility>

/* ---- types ---------------------------------------------------------------------- */
enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevice = 101,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchFailure = 719,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureMerge = 902,
    cudaErrorStreamCaptureUnmatched = 903,
    cudaErrorStreamCaptureUnjoined = 904,
    cudaErrorStreamCaptureIsolation = 905,
    cudaErrorCapturedEvent = 907,
    cudaErrorStreamCaptureWrongThread = 908,
    cudaErrorIllegalState = 401,
    cudaErrorUnknown = 999
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};

enum cudaMemoryType { cudaMemoryTypeUnregistered = 0, cudaMemoryTypeHost = 1, cudaMemoryTypeDevice = 2, cudaMemoryTypeManaged = 3 };

struct cudaPointerAttributes {
    enum cudaMemoryType type;
    int device;
    void *devicePointer;
    void *hostPointer;
};

enum cudaStreamCaptureMode { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1, cudaStreamCaptureModeRelaxed = 2 };
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1, cudaStreamCaptureStatusInvalidated = 2 };
typedef enum cudaStreamCaptureStatus cudaStreamCaptureStatus;

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    int major, minor;
    int multiProcessorCount;
    int maxThreadsPerBlock;
    int warpSize;
    int clockRate;
    int memoryClockRate;
    int memoryBusWidth;
};

typedef struct lt_cuemu_stream *cudaStream_t;
typedef struct lt_cuemu_event *cudaEvent_t;
typedef struct lt_cuemu_graph *cudaGraph_t;
typedef struct lt_cuemu_graph_exec *cudaGraphExec_t;

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00
#define cudaHostAllocPortable 0x01
#define cudaHostRegisterDefault 0x00
#define cudaHostRegisterPortable 0x01

/* ---- runtime API ---------------------------------------------------------------- */
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device);
cudaError_t cudaRuntimeGetVersion(int *v);
cudaError_t cudaDriverGetVersion(int *v);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaDeviceReset(void);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);

cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned flags);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaHostRegister(void *p, size_t bytes, unsigned flags);
cudaError_t cudaHostUnregister(void *p);
cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *a, const void *p);

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s);

cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);

cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b);

cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x);

/* ---- the device language -------------------------------------------------------- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
/* one section for every kernel's shared arrays, so the scheduler can fill
 * it with NaN bytes before a block runs: a read of shared memory this block
 * did not write gives garbage, as on a GPU, not an earlier block's values */
#define __shared__ __attribute__((section("lt_cuemu_shared"), used)) static
#define __launch_bounds__(...)

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

/* The barrier of the running block. */
void lt_cuemu_syncthreads(void);
#define __syncthreads() lt_cuemu_syncthreads()

/* One block runs at a time and its threads take turns only at barriers:
 * an atomic is a plain read-modify-write, and a fence has nothing to order.
 * Blocks arrive in the order the scheduler runs them (lt_cuemu_sched.cc:
 * every other launch in reverse), so a "last block" pattern is tested with
 * the first and the last block of the grid finishing. */
inline unsigned atomicAdd(unsigned *p, unsigned v) {
    const unsigned old = *p;
    *p = old + v;
    return old;
}
inline void __threadfence(void) {}

/* Runs (or queues) a launch: body() once per thread of grid x block, with
 * threadIdx / blockIdx set. Launch-configuration errors are returned by the
 * next cudaGetLastError, as on a GPU. */
void lt_cuemu_launch(const char *name, dim3 grid, dim3 block, size_t shmem, cudaStream_t s, std::function<void()> body);

/* A kernel's pointer argument must be NULL, device memory or pinned host
 * memory (mapped into the device's address space); anything else is a fault
 * (an illegal address on a GPU). Checked at the launch. */
void lt_cuemu_check_kernel_ptr(const char *kernel, int arg, const void *p);
template <class T>
inline void lt_cuemu_check_arg(const char *, int, const T &) {}
template <class T>
inline void lt_cuemu_check_arg(const char *kernel, int arg, T *const &p) {
    lt_cuemu_check_kernel_ptr(kernel, arg, (const void *)p);
}

template <class... P>
struct lt_cuemu_launch_args {
    void (*k)(P...);
    const char *name;
    dim3 grid, block;
    size_t shmem;
    cudaStream_t s;
    /* the arguments convert to the kernel's parameter types at the call
     * (NULL included) and are copied now */
    void operator()(P... a) const {
        int i = 0;
        (lt_cuemu_check_arg(name, i++, a), ...);
        std::tuple<P...> args(a...);
        void (*kk)(P...) = k;
        lt_cuemu_launch(name, grid, block, shmem, s, [kk, args]() { std::apply(kk, args); });
    }
};

template <class... P>
lt_cuemu_launch_args<P...> lt_cuemu_launcher(void (*k)(P...), const char *name, dim3 grid, dim3 block, size_t shmem,
                                             cudaStream_t s) {
    return lt_cuemu_launch_args<P...>{k, name, grid, block, shmem, s};
}

#endif
