/* lt_regress.h — regression of numbers against reference values, printed as
 * mmpretrain's benchmark regression does: expected, obtained, delta,
 * tolerance and a verdict "above" / "within" / "below".
 *
 * References: <reference_dir>/<scale>.csv, one row per number:
 *
 *   protocol,scale,method,metric,expected,tol,why
 *   fmnist_lt_r100,ci,ce,top1,63.15,0.50,"bit-identical at 2 threads; tol covers ..."
 *
 * expected and tol are percentage points (the leaderboard's unit); metric is
 * one of top1 many medium few ece macro_f1 map; '#' starts a comment line;
 * the header line is optional. results/reference/README.md says how the
 * references are produced and why each tolerance is what it is.
 *
 * The obtained number is the mean over the successful cpu runs of the
 * compared seeds: by default seed 0 at scale ci (a smoke scale runs one
 * seed) and the protocol's seeds at short and full. The references are
 * CPU numbers; GPU runs (<method>@cuda*) are other experiments and are
 * left out. A number beyond tolerance in
 * either direction fails: "above" is as much a change as "below", and an
 * unexplained improvement is usually a bug in evaluation. */
#ifndef LT_REGRESS_H
#define LT_REGRESS_H

#include <stdio.h>

#include "lt_leaderboard.h"

typedef struct {
    char file[LT_LB_PATH];
    int line;
    char protocol[LT_LB_NAME];
    char scale[16];
    char method[LT_LB_NAME];
    int metric;                 /* LT_M_* */
    double expected, tol;       /* percentage points */
    char why[512];
} lt_ref_row;

/* Reads a reference file. Every malformed line is an LT_EDATA error whose
 * message starts "<file>:<line>: " and says what is wrong (field count,
 * a protocol or method that is not a name of lt_names.h, a scale that is
 * not ci, short or full, unknown metric, a number that is not one, negative
 * tolerance, a scale other than `scale` when scale != NULL, a duplicate
 * row). A missing file is LT_EIO naming it; a file without rows (empty,
 * header or comments only) LT_EDATA "<file>: no reference rows". *rows is
 * malloc'd (free()). */
int lt_ref_load(const char *path, const char *scale, lt_ref_row **rows, int *n);

typedef enum { LT_V_WITHIN = 0, LT_V_ABOVE, LT_V_BELOW, LT_V_MISSING } lt_verdict;
const char *lt_verdict_name(lt_verdict v);   /* "within" "above" "below" "missing" */

typedef struct {
    const char *scale;          /* required: "ci" | "short" | "full" */
    const char *results_dir;    /* where runs are read (and re-run into); NULL: "results" */
    const char *reference_dir;  /* NULL: "results/reference" */
    const char *protocols_dir;  /* NULL: the protocol loader's default */
    const char *data_dir;       /* for --rerun; NULL: the dataset layer's default */
    const char *seeds;          /* "0,1,2"; NULL: seed 0 at ci, else the protocol's seeds */
    int rerun;                  /* 1: run every referenced (protocol, method, seed) first */
    int threads;                /* threads of re-runs; 0: the runner's default */
    double time_limit_s;        /* wall-clock limit per re-run; <= 0: none */
    const char *exclude_methods; /* "a,b": these methods' rows are neither re-run nor compared; NULL: none */
    FILE *out;                  /* the table; NULL: stdout */
    FILE *log;                  /* re-run progress; NULL: quiet */
    FILE *warn;                 /* refused result files, a line each; NULL: not printed */
} lt_regress_opts;

typedef struct {
    int n;                      /* numbers compared */
    int n_within, n_above, n_below, n_missing;
    int n_refused;              /* result files refused by the scan (lt_runs_scan), left out */
} lt_regress_summary;

/* Loads the references, optionally re-runs, compares and prints the table
 * and a summary line. LT_OK when the comparison could be made, whatever
 * the verdicts (s tells; drift = n_above + n_below + n_missing). Errors:
 * the reference file's, a protocol that cannot be found (for default
 * seeds), a run request the runner refuses; those two start with the
 * reference file and line of the row that named the run. */
int lt_regress_run(const lt_regress_opts *o, lt_regress_summary *s);

/* Parses "0,1,2" into seeds (at most max): decimal digits only (no sign,
 * blank, exponent or hex), each 0..1000000, no repeats. LT_EINVAL naming
 * the text. */
int lt_seed_list_parse(const char *text, int *seeds, int max, int *n);

#endif
