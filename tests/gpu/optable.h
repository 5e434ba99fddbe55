/* optable.h — the comparison and report half of the op-table test
 * (test_backend_ops.c): pure C, no CUDA, so it is tested on any machine.
 *
 * Error measure of one output: max_i |got_i - ref_i| / max_i |ref_i|
 * (relative to the largest reference value, ggml test-backend-ops style;
 * an all-zero reference uses 1 as the denominator, i.e. an absolute error).
 * A NaN or Inf in one array where the other has a different value makes the
 * error +inf, so a non-finite result never passes. */
#ifndef LT_OPTABLE_H
#define LT_OPTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

double lt_ot_relerr(const float *ref, const float *got, size_t n);
/* Integer outputs (maxpool argmax): the number of differing elements. */
size_t lt_ot_mismatch_i32(const int32_t *ref, const int32_t *got, size_t n);

typedef struct {
    char op[24], shape[64], what[16], mode[16];
    double err, tol;
    int pass;
} lt_ot_row;

typedef struct {
    lt_ot_row *rows;
    int n, cap;
    int n_fail;
} lt_ot_table;

/* Appends a row (pass = err <= tol; a NaN err fails) and returns pass; 0 and
 * no row on allocation failure (the table then reports n_fail + 1). */
int lt_ot_add(lt_ot_table *t, const char *op, const char *shape, const char *what, const char *mode, double err,
              double tol);
/* The table as text: op, shape, output, mode, max err, tol, PASS/FAIL, then a
 * summary line "N rows, N passed, N failed". */
void lt_ot_print(const lt_ot_table *t, FILE *f);
void lt_ot_free(lt_ot_table *t);

#endif
