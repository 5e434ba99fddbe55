/* lt_base.c — last-error message, aligned allocation, thread count. */
#include "lt_base.h"
#include "lt_backend.h"

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
    case LT_EBUSY: return "busy in another process";
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

/* OpenBLAS's OpenMP build (the Makefile's runpath) has no pool of its own:
 * it runs on the engine's OpenMP threads, and its openblas_set_num_threads
 * is omp_set_num_threads for the whole process, so it is not called there
 * (calling it with 1 made every OpenMP region of the engine single-threaded).
 * With the pthreads build (a program linked without the runpath) its pool
 * and OpenMP's spin and yield against each other on the same cores, so it
 * gets one thread where the convolutions run on the engine's own kernels
 * (lt_conv_isa) and OpenBLAS sees only the small classifier GEMMs, n where
 * the im2col + sgemm path needs it. */
void lt_set_num_threads(int n) {
    if (n <= 0) return;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    if (openblas_get_parallel() == 2) return;
    openblas_set_num_threads(lt_conv_isa() != LT_CONV_ISA_NONE ? 1 : n);
}

int lt_par(size_t work, size_t min) {
#ifdef _OPENMP
    return work >= min && !omp_in_parallel() && omp_get_max_threads() > 1;
#else
    (void)work;
    (void)min;
    return 0;
#endif
}

double lt_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void lt_fmt_bytes(double b, char *out, size_t n) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) { b /= 1024; i++; }
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

double lt_progress_interval(const lt_progress *p) { return p && p->interval_s > 0 ? p->interval_s : 10.0; }

void lt_fmt_eta(double s, char *out, size_t n) {
    /* A full-scale CPU run may have a few hundred hours left; past 10,000 h
     * (or NaN) the estimate means nothing. */
    if (!(s >= 0) || s > 36e6) { snprintf(out, n, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}
