/* optable.c — see optable.h. */
#include "optable.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double lt_ot_relerr(const float *ref, const float *got, size_t n) {
    double maxref = 0, maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        const double r = ref[i], g = got[i];
        if (!isfinite(r) || !isfinite(g)) {
            /* equal non-finite values (same inf, both NaN) are no error */
            if ((isnan(r) && isnan(g)) || r == g) continue;
            return INFINITY;
        }
        if (fabs(r) > maxref) maxref = fabs(r);
        if (fabs(g - r) > maxdiff) maxdiff = fabs(g - r);
    }
    return maxdiff / (maxref > 0 ? maxref : 1.0);
}

size_t lt_ot_mismatch_i32(const int32_t *ref, const int32_t *got, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += ref[i] != got[i];
    return bad;
}

int lt_ot_add(lt_ot_table *t, const char *op, const char *shape, const char *what, const char *mode, double err,
              double tol) {
    const int pass = err <= tol;   /* NaN compares false: fails */
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        lt_ot_row *r = realloc(t->rows, (size_t)cap * sizeof *r);
        if (!r) { t->n_fail++; return 0; }
        t->rows = r;
        t->cap = cap;
    }
    lt_ot_row *r = &t->rows[t->n++];
    memset(r, 0, sizeof *r);
    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    snprintf(r->what, sizeof r->what, "%s", what);
    snprintf(r->mode, sizeof r->mode, "%s", mode);
    r->err = err;
    r->tol = tol;
    r->pass = pass;
    if (!pass) t->n_fail++;
    return pass;
}

void lt_ot_print(const lt_ot_table *t, FILE *f) {
    fprintf(f, "%-16s %-34s %-10s %-6s %11s %9s  %s\n", "op", "shape", "output", "mode", "max err", "tol", "result");
    for (int i = 0; i < t->n; i++) {
        const lt_ot_row *r = &t->rows[i];
        fprintf(f, "%-16s %-34s %-10s %-6s %11.3e %9.1e  %s\n", r->op, r->shape, r->what, r->mode, r->err, r->tol,
                r->pass ? "PASS" : "FAIL");
    }
    fprintf(f, "%d rows, %d passed, %d failed\n", t->n, t->n - t->n_fail, t->n_fail);
}

void lt_ot_free(lt_ot_table *t) {
    free(t->rows);
    memset(t, 0, sizeof *t);
}
