/* lt_base.c — last-error message, aligned allocation, thread count. */
#include "lt_base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Thread-local so a background loader thread cannot clobber the trainer's message. */
static _Thread_local char lt_msg[1024];

int lt_err(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lt_msg, sizeof lt_msg, fmt, ap);
    va_end(ap);
    return code;
}

int lt_err_wrap(int code, const char *fmt, ...) {
    char prefix[384], old[sizeof lt_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, lt_msg, sizeof old);
    if (old[0])
        snprintf(lt_msg, sizeof lt_msg, "%.383s: %.600s", prefix, old);
    else
        snprintf(lt_msg, sizeof lt_msg, "%.383s", prefix);
    return code;
}

const char *lt_errmsg(void) { return lt_msg; }
void lt_err_clear(void) { lt_msg[0] = 0; }

const char *lt_strstatus(int code) {
    switch (code) {
    case LT_OK: return "ok";
    case LT_EINVAL: return "invalid argument";
    case LT_ESHAPE: return "shape mismatch";
    case LT_ENOMEM: return "out of memory";
    case LT_EIO: return "I/O error";
    case LT_EDATA: return "malformed data";
    case LT_EABI: return "ABI/version mismatch";
    case LT_ENET: return "network error";
    case LT_ECHECKSUM: return "checksum mismatch";
    case LT_ENUM: return "non-finite number";
    case LT_ESTATE: return "wrong state";
    case LT_EDEVICE: return "device error";
    case LT_ENOTBUILT: return "not built into this binary";
    default: return "unknown error";
    }
}

void lt_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "ltbench: internal invariant violated at %s:%d: %s\n", file, line, expr);
    abort();
}

void *lt_alloc(size_t bytes) {
    if (bytes == 0) bytes = 64;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void lt_free(void *p) { free(p); }

int lt_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* With AVX-512 the convolutions run on the engine's own OpenMP threads and
 * OpenBLAS only sees the small classifier GEMMs, so it gets one thread;
 * otherwise the im2col + sgemm reference path wants BLAS threads. Those are
 * the engine's OpenMP pool when the programs run OpenBLAS's OpenMP build (the
 * Makefile's runpath); the pthreads build's own pool and OpenMP's spin and
 * yield against each other on the same cores (measured: 2 threads slower
 * than 1, a ci-scale run twice as long). */
void lt_set_num_threads(int n) {
    if (n <= 0) return;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(__builtin_cpu_supports("avx512f") ? 1 : n);
}

double lt_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
