/* lt_figures.h — the paper-style figures: data files from the run results,
 * rendered by gnuplot with the scripts in plots/<figure>.gp (plots/README.md).
 *
 * For every (protocol, scale) with finished runs, into the output directory:
 *   perclass_<p>_<s>   per-class test accuracy against class rank by training
 *                      count (descending), a line per method, the training
 *                      count as bars on a log second axis
 *   groups_<p>_<s>     many / medium / few accuracy, grouped bars per method
 *   wnorm_<p>_<s>      L2 norm of each class's classifier weight (the
 *                      decoupling paper's figure), when runs recorded it
 *   curves_<p>_<s>     stage-1 training loss and accuracy against epoch
 * and for every protocol family with two or more imbalance ratios at a scale
 * (fmnist_lt_r10 / _r100, cifar10_lt_r10 ... _r200):
 *   imbalance_<family>_<s>   top-1 against imbalance ratio, a line per method
 *
 * Each figure is a .dat file (always written) plus, when gnuplot is found in
 * PATH, a .png (pngcairo, else png) and a .pdf (pdfcairo, else .svg). Values
 * are means over a method's successful seeds, in percent; "?" marks a
 * missing value. A method keeps one colour in every figure (plots/palette.gp). */
#ifndef LT_FIGURES_H
#define LT_FIGURES_H

#include <stdio.h>

#include "lt_leaderboard.h"

typedef struct {
    const char *results_dir;   /* NULL: "results" */
    const char *out_dir;       /* NULL: "plots/out" for the default results
                                  root, else <results_dir>/plots */
    const char *scripts_dir;   /* NULL: $LTBENCH_PLOTS, else "plots" */
    FILE *log;                 /* progress and gnuplot's messages; NULL: quiet */
    FILE *warn;                /* refused result files, a line each; NULL: not printed */
} lt_fig_opts;

typedef struct {
    int n_data;                /* .dat files written */
    int n_figures;             /* figures asked of gnuplot (one per .dat) */
    int n_rendered;            /* figures whose PNG and vector file both exist afterwards */
    int gnuplot_found;         /* 0: no gnuplot in PATH; data files only */
    char gnuplot[1024];        /* the executable used */
    int n_refused;             /* result files refused by the scan (lt_runs_scan) */
} lt_fig_summary;

/* Writes the data files and renders them. set: the scanned runs (NULL: scan
 * o->results_dir). Without gnuplot this is not an error: the log says so
 * and how to get it, and sum->gnuplot_found = 0. LT_EIO when a file cannot
 * be written or a script is missing, or when the results directory does not
 * exist; refused result files are left out and counted in sum->n_refused
 * (they do not make this fail); LT_EDATA for a malformed per_class.csv
 * (naming file and line); LT_EIO naming the figure and gnuplot's message
 * when gnuplot fails. */
int lt_figures_make(const lt_fig_opts *o, const lt_run_set *set, lt_fig_summary *sum);

/* The executable named `name` on $PATH (first match) into buf: LT_OK, or
 * LT_EIO saying it is not on PATH. */
int lt_find_in_path(const char *name, char *buf, size_t cap);

#endif
