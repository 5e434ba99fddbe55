/* lt_elementwise.c — ReLU and the residual add.
 *
 * Pure streaming loops: OpenMP static split over elements above a size where
 * a parallel region pays for itself. Each element is independent, so the
 * result is the same for any schedule. The loops are written branch-free and
 * marked simd: a data-dependent branch on the sign of random activations
 * mispredicts half the time, which made a scalar ReLU ten times slower than
 * the memory traffic it needs. */
#include "lt_ops.h"

#define LT_EW_PAR_MIN 65536

/* for (i in [0, n)) BODY: a parallel simd loop where it pays, else a
 * plain simd loop outside any OpenMP region (lt_par: a region that runs on
 * one thread allocates) */
#define EW_LOOP(...)                                                      \
    do {                                                                  \
        if (lt_par(n, LT_EW_PAR_MIN)) {                                   \
            _Pragma("omp parallel for simd schedule(static)")             \
            for (size_t i = 0; i < n; i++) { __VA_ARGS__ }                \
        } else {                                                          \
            _Pragma("omp simd")                                           \
            for (size_t i = 0; i < n; i++) { __VA_ARGS__ }                \
        }                                                                 \
    } while (0)

void lt_relu_forward(size_t n, const float *x, float *y) {
    /* y may alias x: each element is read before it is written */
    EW_LOOP(y[i] = lt_relu1(x[i]););
}

/* Uses the output: y > 0 exactly where x > 0, so x need not be kept. */
void lt_relu_backward_x(size_t n, const float *y, const float *dy, float *dx, int set) {
    if (!dx) return;
    if (set) {
        /* dy loaded unconditionally: keeps the loop branch-free */
        EW_LOOP(const float g = dy[i]; dx[i] = y[i] > 0.0f ? g : 0.0f;);
        return;
    }
    EW_LOOP(const float g = dy[i]; dx[i] += y[i] > 0.0f ? g : 0.0f;);
}
void lt_relu_backward(size_t n, const float *y, const float *dy, float *dx) { lt_relu_backward_x(n, y, dy, dx, 0); }

void lt_add_forward(size_t n, const float *a, const float *b, float *y) {
    EW_LOOP(y[i] = a[i] + b[i];);
}

/* da and db may be the same buffer (y = a + a): da is written first, so
 * with set_a the buffer ends as dy + dy. */
void lt_add_backward_x(size_t n, const float *dy, float *da, int set_a, float *db, int set_b) {
    if (da && set_a) {
        EW_LOOP(da[i] = dy[i];);
    } else if (da) {
        EW_LOOP(da[i] += dy[i];);
    }
    if (db && set_b && db != da) {
        EW_LOOP(db[i] = dy[i];);
    } else if (db) {
        EW_LOOP(db[i] += dy[i];);
    }
}
void lt_add_backward(size_t n, const float *dy, float *da, float *db) { lt_add_backward_x(n, dy, da, 0, db, 0); }
