/* lt_cuemu_counts.h — what the emulated CUDA runtime was asked to do, for
 * tests that check a claim about host / device traffic (C and C++). */
#ifndef LT_CUEMU_COUNTS_H
#define LT_CUEMU_COUNTS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    unsigned long long mallocs, frees;             /* cudaMalloc / cudaFree that did something */
    unsigned long long host_allocs, host_frees;    /* cudaHostAlloc / cudaMallocHost / cudaFreeHost */
    unsigned long long stream_syncs, event_syncs, device_syncs;   /* waits the host asked for */
    unsigned long long h2d, d2h, d2d, memsets;     /* copies and memsets queued outside a capture */
    unsigned long long launches;                   /* kernels queued outside a capture (eager) */
    unsigned long long lib_calls;                  /* other queued work outside a capture: cuDNN, cuBLAS */
    unsigned long long captures, graph_launches;   /* captures ended with a graph; graph launches */
} lt_cuemu_counts;

/* A copy of the counters since the process started (or cudaDeviceReset). */
void lt_cuemu_counts_get(lt_cuemu_counts *c);

/* Objects alive now: streams (not the legacy one), events, cuDNN handles.
 * For tests that a failed creation or a freed context leaves none behind. */
typedef struct {
    long streams, events, dnn_handles;
} lt_cuemu_live;
void lt_cuemu_live_get(lt_cuemu_live *l);

/* Fault injection, for the error paths of code that creates or joins
 * streams. The nth call from now (1: the next) of `call` fails once with
 * `code` (a cudaError_t; a cudnnStatus_t for the cudnn calls) and does
 * nothing else, as a failed call does; the others run as usual. `call`
 * is one of cudaStreamCreateWithFlags, cudaEventCreateWithFlags,
 * cudaEventRecord, cudaStreamWaitEvent, cudnnCreate, cudnnSetStream.
 * Up to 8 faults may be armed at once. Returns 0, or -1 for another name,
 * nth < 1, code 0 or no free slot. lt_cuemu_fail_clear disarms them all. */
int lt_cuemu_fail_call(const char *call, int nth, int code);
void lt_cuemu_fail_clear(void);

/* How many times `call` (a name above) was made since the process
 * started: to aim a fault at one call of a known sequence. */
unsigned long long lt_cuemu_calls(const char *call);

#ifdef __cplusplus
}
#endif

#endif
