/* lt_cuemu.h — what the emulator's parts share (C++ only; the fake cuDNN
 * and cuBLAS use it, nothing in engine/ does).
 *
 * The emulator runs the CUDA library (engine/cuda) on the CPU so that every
 * line of it -- own kernels, the cuDNN / cuBLAS call sequences, streams,
 * events, graph capture -- runs in the CPU test suite. Device memory is
 * host memory from cudaMalloc's registry; stream work is queued and runs
 * lazily, at the stream's next synchronisation point, so code that reads a
 * result before it synchronises sees stale data, as it would on a GPU. */
#ifndef LT_CUEMU_H
#define LT_CUEMU_H

#include <cuda_runtime.h>

#include <functional>
#include <stddef.h>
#include <string.h>

/* Queues fn on stream s (NULL: the legacy default stream): recorded as a
 * graph node while s is capturing, else run in order at s's next
 * synchronisation point. Returns cudaSuccess, or the error that the call
 * would give (a sticky error; a capture-time error, which also invalidates
 * the capture). `what` names the work in the emulator's messages. */
cudaError_t lt_cuemu_enqueue(cudaStream_t s, const char *what, std::function<void()> fn);

/* 1 when [p, p + bytes) lies inside one live cudaMalloc allocation. */
int lt_cuemu_is_device(const void *p, size_t bytes);

/* Records a fault found while running queued work (a kernel or library
 * call that would have crashed or misbehaved on a GPU): the message is
 * printed to stderr once and the error becomes sticky, as an illegal
 * address is on a GPU. */
void lt_cuemu_fault(const char *fmt, ...);

/* Counts a call of `call` (lt_cuemu_counts.h's list) and returns the
 * code it must fail with now (an armed lt_cuemu_fail_call), else 0. */
int lt_cuemu_fault_hit(const char *call);

/* cuDNN handles alive (lt_cuemu_live), kept by lt_cuemu_dnn.cc. */
void lt_cuemu_dnn_live_add(long d);

/* Threads the emulated convolutions split their work over (0: the
 * default, LT_CUEMU_THREADS, else the CPUs up to 8). Any count gives the
 * same bits (test_cuemu_dnn's threads case). */
void lt_cuemu_dnn_set_threads(unsigned n);

/* Copies device memory to the host as it is now, without waiting for the
 * queue (device memory is not readable from the host otherwise): for tests
 * of the emulator's own laziness. */
void lt_cuemu_peek(void *dst, const void *src, size_t bytes);

/* Defined when built with AddressSanitizer: device memory then stays ASan's
 * heap (lt_cuemu_rt.cc) and fiber switches are announced to it
 * (lt_cuemu_sched.cc). */
#if defined(__SANITIZE_ADDRESS__)
#define LT_CUEMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LT_CUEMU_ASAN 1
#endif
#endif

/* fp32 -> TF32 (10 explicit mantissa bits, round to nearest, ties away
 * from zero as NVIDIA's conversion; NaN / Inf unchanged): what tensor-op
 * math does to every input of a product. */
static inline float lt_cuemu_tf32(float v) {
    unsigned u;
    memcpy(&u, &v, sizeof u);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

#endif
