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

#ifdef __cplusplus
}
#endif

#endif
