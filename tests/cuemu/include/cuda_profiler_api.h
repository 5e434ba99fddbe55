/* cuda_profiler_api.h — the emulator's profiler range (tests/cuemu): no
 * profiler attaches here, so both calls only succeed. */
#ifndef LT_CUEMU_CUDA_PROFILER_API_H
#define LT_CUEMU_CUDA_PROFILER_API_H

#include "cuda_runtime.h"

cudaError_t cudaProfilerStart(void);
cudaError_t cudaProfilerStop(void);

#endif
