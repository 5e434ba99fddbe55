/* lt_compare.h — one run against another run of the same experiment: the
 * check behind `make verify-results` (a committed run against a fresh run
 * of it) and `ltbench compare`.
 *
 * The README promises bit-identical numbers for the same build, kernel
 * path, BLAS core and thread count (lt_fingerprint_stale decides "same"),
 * and numbers within results/reference's tolerances otherwise. So: when the
 * fingerprints agree every metric and per_class.csv must be identical;
 * when they differ each metric with a reference tolerance must be within
 * it, and the others are printed as not compared.
 *
 * Both result files are read through lt_run_record_read (they are
 * untrusted input: a torn or malformed file is an error naming it). Two
 * runs of different protocols, protocol files, datasets, scales, methods
 * or seeds are not the same experiment: that is an error, not a
 * comparison. */
#ifndef LT_COMPARE_H
#define LT_COMPARE_H

#include <stdio.h>

typedef struct {
    const char *reference_dir;   /* tolerances: <dir>/<scale>.csv, then <dir>/ci.csv; NULL: results/reference */
    FILE *out;                   /* the report, a line per number; NULL: stdout */
} lt_compare_opts;

typedef struct {
    int exact;                   /* 1: same fingerprint, exact comparison; 0: tolerance comparison */
    int n_compared;              /* metrics compared (+ per_class.csv in the exact case) */
    int n_mismatch;              /* of those: different (exact) or beyond tolerance */
    int n_uncompared;            /* tolerance case: metrics with a value and no tolerance */
} lt_compare_summary;

/* Compares the run in directory a (result.json, per_class.csv) with the run
 * in directory b, printing what it compared and how. LT_OK when the
 * comparison could be made, whatever its outcome (s says; a mismatch is
 * n_mismatch > 0). Errors: a result file that cannot be read or is refused,
 * a run that did not finish ("status" not ok), runs of different
 * experiments, a malformed reference file. */
int lt_compare_runs(const lt_compare_opts *o, const char *a, const char *b, lt_compare_summary *s);

#endif
