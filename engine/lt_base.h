/* lt_base.h — status codes, the last-error message, small shared types.
 *
 * Every engine function that can fail returns an int status (LT_OK == 0) and,
 * on failure, records a human-readable message retrievable with lt_errmsg().
 * Nothing below the CLI calls exit(). LT_ASSERT is kept for internal
 * invariants only (a broken invariant is a bug, not bad input). */
#ifndef LT_BASE_H
#define LT_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
    LT_OK = 0,
    LT_EINVAL = 1,  /* bad argument or configuration */
    LT_ESHAPE = 2,  /* tensor shapes do not fit */
    LT_ENOMEM = 3,  /* allocation failed */
    LT_EIO = 4,     /* read/write/open failed */
    LT_EDATA = 5,   /* malformed or corrupt input data */
    LT_EABI = 6,    /* plugin or file built for another version */
    LT_ENET = 7,    /* network failure */
    LT_ECHECKSUM = 8, /* hash / checksum mismatch */
    LT_ENUM = 9,    /* NaN/Inf where a finite number was required */
    LT_ESTATE = 10, /* call made in the wrong state (e.g. before plan) */
    LT_EDEVICE = 11,  /* no usable accelerator, or a device/driver/library error (CUDA) */
    LT_ENOTBUILT = 12, /* a feature this binary was built without (the CUDA backend) */
    LT_EBUSY = 13     /* another process holds it (a run directory's lock) */
};

/* Sets the thread-local last-error message (printf-style) and returns code,
 * so library code can write `return lt_err(LT_EIO, "open %s: %s", p, strerror(errno));` */
int lt_err(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prefixes the current message with more context: "ctx: old message". Returns code. */
int lt_err_wrap(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *lt_errmsg(void);   /* last message of this thread ("" if none) */
const char *lt_strstatus(int code);
void lt_err_clear(void);

#define LT_TRY(expr) do { int lt_rc_ = (expr); if (lt_rc_ != LT_OK) return lt_rc_; } while (0)

void lt_assert_fail(const char *file, int line, const char *expr);
#define LT_ASSERT(x) do { if (!(x)) lt_assert_fail(__FILE__, __LINE__, #x); } while (0)

/* Per-sample shape (the batch dimension n is carried separately where it varies). */
typedef struct { int n, c, h, w; } lt_shape;
static inline size_t lt_shape_count(lt_shape s) { return (size_t)s.n * s.c * s.h * s.w; }

/* 64-byte aligned allocation (AVX-512 friendly); free with lt_free. Zeroed. */
void *lt_alloc(size_t bytes);
void lt_free(void *p);

/* Number of OpenMP threads the engine uses (1 when built without OpenMP). */
int lt_num_threads(void);
void lt_set_num_threads(int n);

/* Whether a loop of `work` units runs as an OpenMP parallel region: at
 * least `min` units, more than one thread, and not inside a region already.
 * Loops that fail it run as plain loops, outside any region, rather than
 * as a region with a false if() clause: libgomp builds a team for every
 * region it enters and frees a team of one thread at the region's end, so
 * such a region (or any region on one thread, --threads 1) costs an
 * allocation and a free per call, and the training loop allocates nothing
 * (tests/test_alloc_steps.c counts). */
int lt_par(size_t work, size_t min);

/* LT_PAR_IF(par, "omp ...", code): code under the OpenMP directive where
 * par (lt_par) holds, else the same code plainly, outside any region; one
 * text, so both run the same arithmetic. The code holds no directives
 * (_Pragma("omp simd") instead of #pragma).
 * LT_PAR_FOR(par, for (...) body): the loop as `parallel for
 * schedule(static)`. */
#define LT_PAR_IF(par, pragma, ...) \
    do {                            \
        if (par) {                  \
            _Pragma(pragma)         \
            __VA_ARGS__             \
        } else {                    \
            __VA_ARGS__             \
        }                           \
    } while (0)
#define LT_PAR_FOR(par, ...) LT_PAR_IF(par, "omp parallel for schedule(static)", __VA_ARGS__)

/* Monotonic seconds (CLOCK_MONOTONIC): durations, progress, timeouts. */
double lt_now_s(void);
/* Progress lines (downloads, archive reads, training, sweeps): b bytes as
 * "812 B", "23.5 KiB", "1.4 GiB"; s seconds as "m:ss" or "h:mm:ss", "--:--"
 * when unknown (negative, NaN, over 10,000 h). */
void lt_fmt_bytes(double b, char *out, size_t n);
void lt_fmt_eta(double s, char *out, size_t n);
/* Where long work (an archive read, hashing a file) prints its progress
 * lines: log (NULL: none), each line starting "<label>: ", one every
 * interval_s seconds (lt_progress_interval: 10 where <= 0). */
typedef struct {
    FILE *log;
    const char *label;
    double interval_s;
} lt_progress;
double lt_progress_interval(const lt_progress *p);

#endif
