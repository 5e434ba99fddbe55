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

void lt_relu_forward(size_t n, const float *x, float *y) {
    /* y may alias x: each element is read before it is written */
#pragma omp parallel for simd schedule(static) if (n >= LT_EW_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = lt_relu1(x[i]);
}

/* Uses the output: y > 0 exactly where x > 0, so x need not be kept. */
void lt_relu_backward_x(size_t n, const float *y, const float *dy, float *dx, int set) {
    if (!dx) return;
    if (set) {
#pragma omp parallel for simd schedule(static) if (n >= LT_EW_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            const float g = dy[i];   /* loaded unconditionally: keeps the loop branch-free */
            dx[i] = y[i] > 0.0f ? g : 0.0f;
        }
        return;
    }
#pragma omp parallel for simd schedule(static) if (n >= LT_EW_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        const float g = dy[i];
        dx[i] += y[i] > 0.0f ? g : 0.0f;
    }
}
void lt_relu_backward(size_t n, const float *y, const float *dy, float *dx) { lt_relu_backward_x(n, y, dy, dx, 0); }

void lt_add_forward(size_t n, const float *a, const float *b, float *y) {
#pragma omp parallel for simd schedule(static) if (n >= LT_EW_PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

/* da and db may be the same buffer (y = a + a): da is written first, so
 * with set_a the buffer ends as dy + dy. */
void lt_add_backward_x(size_t n, const float *dy, float *da, int set_a, float *db, int set_b) {
    if (da && set_a) {
#pragma omp parallel for simd schedule(static) if (n >= LT_EW_PAR_MIN)
        for (size_t i = 0; i < n; i++) da[i] = dy[i];
    } else if (da) {
#pragma omp parallel for simd schedule(static) if (n >= LT_EW_PAR_MIN)
        for (size_t i = 0; i < n; i++) da[i] += dy[i];
    }
    if (db && set_b && db != da) {
#pragma omp parallel for simd schedule(static) if (n >= LT_EW_PAR_MIN)
        for (size_t i = 0; i < n; i++) db[i] = dy[i];
    } else if (db) {
#pragma omp parallel for simd schedule(static) if (n >= LT_EW_PAR_MIN)
        for (size_t i = 0; i < n; i++) db[i] += dy[i];
    }
}
void lt_add_backward(size_t n, const float *dy, float *da, float *db) { lt_add_backward_x(n, dy, da, 0, db, 0); }
