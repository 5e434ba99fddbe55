/* lt_compare.c — one run against another run of the same experiment
 * (lt_compare.h). */
#include "lt_compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt.h"
#include "lt_fingerprint.h"
#include "lt_io.h"
#include "lt_leaderboard.h"
#include "lt_regress.h"

/* Reads <dir>/result.json into r; a run that did not finish has no numbers
 * to compare. */
static int read_run(const char *dir, lt_run_record *r) {
    char path[LT_LB_PATH + 16];
    snprintf(path, sizeof path, "%s/result.json", dir);
    LT_TRY(lt_run_record_read(path, r));
    if (!r->ok) return lt_err(LT_EDATA, "%s: the run did not finish (%s): nothing to compare", path, r->reason);
    return LT_OK;
}

/* The same experiment: what the run was asked to do and on which data. */
static int same_experiment(const lt_run_record *a, const lt_run_record *b) {
    const struct {
        const char *what, *x, *y;
    } f[] = {{"protocol", a->protocol, b->protocol},
             {"protocol file (sha256)", a->protocol_sha256, b->protocol_sha256},
             {"scale", a->scale, b->scale},
             {"method", a->method, b->method},
             {"dataset manifest (sha256)", a->manifest_sha256, b->manifest_sha256}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (strcmp(f[i].x, f[i].y))
            return lt_err(LT_EINVAL, "%s and %s are different experiments: %s '%s' against '%s'", a->path, b->path,
                          f[i].what, f[i].x, f[i].y);
    if (a->seed != b->seed)
        return lt_err(LT_EINVAL, "%s and %s are different experiments: seed %d against %d", a->path, b->path, a->seed,
                      b->seed);
    return LT_OK;
}

/* 1 identical, 0 different; a missing or unreadable file is "different",
 * with the reason in why. */
static int same_file(const char *a, const char *b, char *why, size_t cap) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int same = 0;
    if (lt_io_read_all(a, &x, &nx) || lt_io_read_all(b, &y, &ny)) snprintf(why, cap, "%s", lt_errmsg());
    else if (nx != ny) snprintf(why, cap, "%zu bytes against %zu", nx, ny);
    else if (memcmp(x, y, nx)) snprintf(why, cap, "same length, different bytes");
    else same = 1;
    lt_err_clear();
    free(x);
    free(y);
    return same;
}

/* The tolerances of (protocol, method): the run's scale file first, then
 * ci.csv; a reference file that does not exist has none. */
typedef struct {
    lt_ref_row *rows[2];
    int n[2];
} refs;

static void refs_free(refs *r) {
    free(r->rows[0]);
    free(r->rows[1]);
}

static int refs_load(const char *dir, const char *scale, refs *r) {
    memset(r, 0, sizeof *r);
    const char *scales[2] = {scale, strcmp(scale, "ci") ? "ci" : NULL};
    for (int i = 0; i < 2; i++) {
        if (!scales[i]) continue;
        char path[LT_LB_PATH + 32];
        snprintf(path, sizeof path, "%s/%s.csv", dir, scales[i]);
        if (access(path, F_OK)) continue;
        LT_TRY(lt_ref_load(path, scales[i], &r->rows[i], &r->n[i]));
    }
    return LT_OK;
}

static const lt_ref_row *refs_find(const refs *r, const lt_run_record *x, int metric) {
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < r->n[i]; j++) {
            const lt_ref_row *t = &r->rows[i][j];
            if (t->metric == metric && !strcmp(t->protocol, x->protocol) && !strcmp(t->method, x->method)) return t;
        }
    return NULL;
}

static void exact(FILE *out, const lt_run_record *a, const lt_run_record *b, lt_compare_summary *s) {
    for (int m = 0; m < LT_M_COUNT; m++) {
        const double x = a->metric[m], y = b->metric[m];
        if (isnan(x) && isnan(y)) continue;   /* null in both: this protocol has no such number */
        s->n_compared++;
        /* the same printed digits are the same double: cJSON writes %.17g */
        const int same = (isnan(x) == isnan(y)) && (isnan(x) || x == y);
        if (!same) s->n_mismatch++;
        fprintf(out, "  %-9s %.17g  %.17g  %s\n", lt_metric_name(m), x, y, same ? "same" : "DIFFERENT");
    }
    char pa[LT_LB_PATH + 16], pb[LT_LB_PATH + 16], why[600];
    snprintf(pa, sizeof pa, "%s/per_class.csv", a->dir);
    snprintf(pb, sizeof pb, "%s/per_class.csv", b->dir);
    s->n_compared++;
    if (same_file(pa, pb, why, sizeof why)) {
        fprintf(out, "  per_class.csv identical\n");
    } else {
        s->n_mismatch++;
        fprintf(out, "  per_class.csv DIFFERENT (%s)\n", why);
    }
}

static void within(FILE *out, const lt_run_record *a, const lt_run_record *b, const refs *r,
                   lt_compare_summary *s) {
    for (int m = 0; m < LT_M_COUNT; m++) {
        const double x = a->metric[m], y = b->metric[m];
        if (isnan(x) && isnan(y)) continue;
        const lt_ref_row *t = refs_find(r, a, m);
        if (isnan(x) != isnan(y)) {   /* a number in one run only is a change, tolerance or not */
            s->n_compared++;
            s->n_mismatch++;
            fprintf(out, "  %-9s %8.2f  %8.2f  DIFFERENT (a number in one run only)\n", lt_metric_name(m), 100 * x,
                    100 * y);
            continue;
        }
        if (!t) {
            s->n_uncompared++;
            fprintf(out, "  %-9s %8.2f  %8.2f  no tolerance, not compared\n", lt_metric_name(m), 100 * x, 100 * y);
            continue;
        }
        s->n_compared++;
        const double d = 100 * (y - x);
        const int ok = fabs(d) <= t->tol;
        if (!ok) s->n_mismatch++;
        fprintf(out, "  %-9s %8.2f  %8.2f  %+.2f points, tol %.2f (%s:%d): %s\n", lt_metric_name(m), 100 * x, 100 * y,
                d, t->tol, t->file, t->line, ok ? "within" : "BEYOND");
    }
}

int lt_compare_runs(const lt_compare_opts *o, const char *a_dir, const char *b_dir, lt_compare_summary *s) {
    if (!a_dir || !b_dir || !s) return lt_err(LT_EINVAL, "compare: NULL run directory or summary");
    memset(s, 0, sizeof *s);
    FILE *out = o && o->out ? o->out : stdout;
    const char *ref_dir = o && o->reference_dir ? o->reference_dir : "results/reference";
    lt_run_record *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    int rc = a && b ? LT_OK : lt_err(LT_ENOMEM, "compare: out of memory");
    if (!rc) rc = read_run(a_dir, a);
    if (!rc) rc = read_run(b_dir, b);
    if (!rc) rc = same_experiment(a, b);
    refs r = {0};
    if (!rc) rc = refs_load(ref_dir, a->scale, &r);
    if (!rc) {
        lt_fingerprint fa, fb;
        lt_fingerprint_of_record(a, &fa);
        lt_fingerprint_of_record(b, &fb);
        /* two runs of one uncommitted tree (the same commit and the same
         * changes) are the same code: the rest of the fingerprint decides,
         * as for two clean runs */
        const int same_changes = fa.dirty == 1 && fb.dirty == 1 && fa.dirty_diff[0] &&
                                 !strcmp(fa.dirty_diff, fb.dirty_diff) && fa.commit[0] &&
                                 !strcmp(fa.commit, fb.commit);
        if (same_changes) fa.dirty = fb.dirty = 0;
        char why[512];
        s->exact = !lt_fingerprint_stale(&fa, &fb, why, sizeof why);
        fprintf(out, "compare: %s %s %s seed %d\n  A %s\n  B %s\n", a->protocol, a->scale, a->method, a->seed, a->path,
                b->path);
        /* the backend as the row names it: cpu, cuda, cuda-tf32, cuda-nhwc, ... */
        fprintf(out, "  fingerprint A: engine %s, %s, BLAS core %s, %d threads, backend %s\n", fa.engine_version,
                fa.conv_backend, fa.blas_core, fa.threads, a->device_tag);
        if (s->exact) {
            if (same_changes)
                fprintf(out, "  both made from commit %.12s with the same uncommitted changes (dirty_diff_sha256 %.12s)\n",
                        fa.commit, fa.dirty_diff);
            fprintf(out, "  same fingerprint: every number must be identical\n");
            fprintf(out, "  %-9s %-19s  %-19s\n", "metric", "A", "B");
            exact(out, a, b, s);
        } else {
            fprintf(out, "  fingerprint B: engine %s, %s, BLAS core %s, %d threads, backend %s\n", fb.engine_version,
                    fb.conv_backend, fb.blas_core, fb.threads, b->device_tag);
            fprintf(out, "  different fingerprint (A against B: %s): each number within its tolerance\n", why);
            fprintf(out, "  %-9s %8s  %8s  (percent)\n", "metric", "A", "B");
            within(out, a, b, &r, s);
        }
        fprintf(out, "compare: %s: %d compared, %d %s%s\n", s->n_mismatch ? "MISMATCH" : "ok", s->n_compared,
                s->n_mismatch, s->exact ? "different" : "beyond tolerance",
                s->n_uncompared ? " (some numbers have no tolerance)" : "");
    }
    refs_free(&r);
    free(a);
    free(b);
    return rc;
}
