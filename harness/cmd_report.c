/* cmd_report.c — `ltbench leaderboard`, `figures`, `regress`, `reproduce`.
 *
 * Thin option parsing over lt_leaderboard / lt_figures / lt_regress and the
 * runner. `reproduce` is the one-command path of the README: dataset, runs
 * (re-using finished ones), leaderboard, figures, and the row it produced. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_args.h"
#include "cmd_report.h"
#include "lt_compare.h"
#include "lt_datasets.h"
#include "lt_figures.h"
#include "lt_fingerprint.h"
#include "lt_leaderboard.h"
#include "lt_names.h"
#include "lt_protocol.h"
#include "lt_regress.h"
#include "lt_run_device.h"
#include "lt_runner.h"
#include "lt_sweep.h"

static const char LEADERBOARD_USAGE[] =
    "usage: ltbench leaderboard [--results DIR] [--methods DIR]\n"
    "\n"
    "Rebuild DIR/leaderboard.csv, DIR/leaderboard.md and DIR/tables/<protocol>_<scale>.tex from\n"
    "every DIR/runs/<protocol>/<scale>/<method>[@cuda|@cuda-tf32|@cuda-nhwc|@cuda-tf32-nhwc]/seed<k>/\n"
    "result.json: one row per (protocol, scale, method, backend cpu|cuda|cuda-tf32|cuda-nhwc|\n"
    "cuda-tf32-nhwc, engine), mean and sample std\n"
    "over the seeds that finished, failed runs counted in the status column. Paper numbers\n"
    "(full scale only) come from DIR/paper_numbers.csv or <methods>/<method>/paper.json.\n"
    "A result file that cannot be used (unreadable, malformed, or not the run its path names)\n"
    "is named on stderr, and then nothing is written: the existing files are left as they\n"
    "were, and the exit status is 1.\n"
    "  --results DIR  results directory (default results)\n"
    "  --methods DIR  methods directory, for paper.json (default methods)\n";

static const char FIGURES_USAGE[] =
    "usage: ltbench figures [--results DIR] [--out DIR] [--plots DIR]\n"
    "\n"
    "Write figure data files (.dat) from the runs in DIR and render them with gnuplot (if it is\n"
    "in PATH) into PNG and PDF (or SVG): per-class accuracy by training count, many/medium/few\n"
    "bars, classifier weight norms, top-1 against imbalance ratio, stage-1 training curves.\n"
    "A result file that cannot be used is named on stderr, and then nothing is written (the\n"
    "existing figures are left as they were) and the exit status is 1.\n"
    "  --results DIR  results directory (default results)\n"
    "  --out DIR      output directory (default plots/out; DIR/plots for another --results)\n"
    "  --plots DIR    directory of the gnuplot scripts (default $LTBENCH_PLOTS, else plots)\n";

static const char REGRESS_USAGE[] =
    "usage: ltbench regress --scale S [--results DIR] [--reference DIR] [--rerun] [--seeds LIST]\n"
    "                       [--threads N] [--data DIR]\n"
    "\n"
    "Compare the numbers of the runs in DIR with the references in REF/S.csv and print\n"
    "expected, obtained, delta, tolerance and above/within/below. Exit status 1 when a number\n"
    "is beyond its tolerance or has no run.\n"
    "  --scale S        ci, short or full (required)\n"
    "  --results DIR    results directory (default results)\n"
    "  --reference DIR  reference directory (default results/reference)\n"
    "  --rerun          re-run every referenced run first, from scratch\n"
    "  --seeds LIST     seeds to compare (and re-run), e.g. 0,1,2; default: 0 at ci, else the\n"
    "                   protocol's seeds\n"
    "  --threads N      threads of re-runs (default: the runner's, 2)\n"
    "  --data DIR       data directory for re-runs\n";

static const char REPRODUCE_USAGE[] =
    "usage: ltbench reproduce --method M [--protocol P] [--scale S] [--seeds LIST] [--results DIR]\n"
    "                         [--data DIR] [--out DIR] [--threads N] [--reuse strict|any] [--no-report]\n"
    "                         [--device D] [--math fp32|tf32] [--layout nchw|nhwc] [--deterministic]\n"
    "\n"
    "Build the protocol's dataset, run every seed, rebuild the leaderboard and the figures, and print\n"
    "the method's leaderboard row. A finished run of the same protocol file, dataset and method\n"
    "version is re-used when it was made by this engine version from a clean committed tree with\n"
    "the same conv backend, BLAS core and thread count (bit-identical numbers); otherwise it says\n"
    "why the run is stale and runs it again. Running it again re-uses everything.\n"
    "  --method M     method name (see methods/)\n"
    "  --protocol P   protocol name or file (default fmnist_lt_r100)\n"
    "  --scale S      ci, short (default) or full\n"
    "  --seeds LIST   e.g. 0,1,2 (default: the protocol's seeds)\n"
    "  --results DIR  results directory (default results)\n"
    "  --data DIR     data directory (default $LTBENCH_DATA, else data)\n"
    "  --out DIR      figure directory (default plots/out; DIR/plots for another --results)\n"
    "  --threads N    threads per run (default: the runner's, 2)\n"
    "  --reuse any    also re-use finished runs whose engine, tree or fingerprint differ (said on\n"
    "                 stderr and in the output); default --reuse strict\n"
    "  --no-report    only the runs: no leaderboard, figures or row (make regen-results)\n"
    "  --device D     cpu (default), cuda or cuda:N: the runs' device (`ltbench run --help`); cuda\n"
    "                 runs are their own rows, re-used only for cuda runs of the same math mode,\n"
    "                 layout, deterministic flag, GPU model and CUDA libraries\n"
    "  --math M       cuda only: fp32 (default) or tf32\n"
    "  --layout L     cuda only: the activation layout, nchw (default) or nhwc\n"
    "  --deterministic  cuda only: deterministic cuDNN algorithms (else timed on first use)\n";

/* ---- option parsing ------------------------------------------------------------ */

typedef struct {
    const char *results, *methods, *out, *plots, *scale, *reference, *seeds, *data, *method, *protocol, *reuse;
    const char *device, *math, *layout;
    int rerun, threads, help, no_report, deterministic;
} opts;

enum { O_RESULTS = 1, O_METHODS = 2, O_OUT = 4, O_PLOTS = 8, O_SCALE = 16, O_REF = 32, O_RERUN = 64,
       O_SEEDS = 128, O_THREADS = 256, O_DATA = 512, O_METHOD = 1024, O_PROTOCOL = 2048, O_REUSE = 4096,
       O_NO_REPORT = 8192, O_DEVICE = 16384 /* --device, --math, --layout, --deterministic */ };

static int parse(int argc, char **argv, unsigned allowed, opts *o, const char *usage)
{
    memset(o, 0, sizeof *o);
    static const struct {
        const char *name;
        unsigned bit;
        size_t off;
    } table[] = {
        {"--results", O_RESULTS, offsetof(opts, results)}, {"--methods", O_METHODS, offsetof(opts, methods)},
        {"--out", O_OUT, offsetof(opts, out)},             {"--plots", O_PLOTS, offsetof(opts, plots)},
        {"--scale", O_SCALE, offsetof(opts, scale)},       {"--reference", O_REF, offsetof(opts, reference)},
        {"--seeds", O_SEEDS, offsetof(opts, seeds)},       {"--data", O_DATA, offsetof(opts, data)},
        {"--method", O_METHOD, offsetof(opts, method)},    {"--protocol", O_PROTOCOL, offsetof(opts, protocol)},
        {"--reuse", O_REUSE, offsetof(opts, reuse)},       {"--device", O_DEVICE, offsetof(opts, device)},
        {"--math", O_DEVICE, offsetof(opts, math)},        {"--layout", O_DEVICE, offsetof(opts, layout)},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            o->help = 1;
            continue;
        }
        if ((allowed & O_NO_REPORT) && !strcmp(a, "--no-report")) {
            o->no_report = 1;
            continue;
        }
        if ((allowed & O_DEVICE) && !strcmp(a, "--deterministic")) {
            o->deterministic = 1;
            continue;
        }
        if ((allowed & O_RERUN) && !strcmp(a, "--rerun")) {
            o->rerun = 1;
            continue;
        }
        if ((allowed & O_THREADS) && !strcmp(a, "--threads")) {
            unsigned long long v;
            if (i + 1 >= argc) {
                fprintf(stderr, "ltbench %s: --threads needs a value\n%s", argv[0], usage);
                return 2;
            }
            if (!lt_arg_uint(argv[0], a, argv[++i], 1, 1024, &v)) return 2;
            o->threads = (int)v;
            continue;
        }
        int known = 0;
        for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
            if (!(allowed & table[k].bit) || strcmp(a, table[k].name)) continue;
            if (i + 1 >= argc) {
                fprintf(stderr, "ltbench %s: %s needs a value\n%s", argv[0], a, usage);
                return 2;
            }
            /* a directory option: "" would become "/<file>" */
            if ((table[k].bit & (O_RESULTS | O_METHODS | O_OUT | O_PLOTS | O_REF | O_DATA)) &&
                !lt_arg_path(argv[0], a, argv[i + 1])) {
                fputs(usage, stderr);
                return 2;
            }
            *(const char **)((char *)o + table[k].off) = argv[++i];
            known = 1;
            break;
        }
        if (!known) {
            fprintf(stderr, "ltbench %s: unknown option '%s'\n%s", argv[0], a, usage);
            return 2;
        }
    }
    if (o->help) {
        fputs(usage, stdout);
        return 0;
    }
    /* the seed list is checked here, not where it is first used, so a bad
     * one is a usage error (2) naming the flag, like every other number */
    if (o->seeds) {
        int seeds[64], ns;
        if (lt_seed_list_parse(o->seeds, seeds, 64, &ns)) {
            fprintf(stderr, "ltbench %s: --seeds: %s\n", argv[0], lt_errmsg());
            return 2;
        }
    }
    if (o->reuse && strcmp(o->reuse, "strict") && strcmp(o->reuse, "any")) {
        fprintf(stderr, "ltbench %s: --reuse '%s': expected strict or any\n", argv[0], o->reuse);
        return 2;
    }
    if (o->scale && !lt_scale_valid(o->scale)) {
        fprintf(stderr, "ltbench %s: --scale '%s': expected ci, short or full\n", argv[0], o->scale);
        return 2;
    }
    return -1;   /* go on */
}

/* ---- leaderboard / figures ----------------------------------------------------- */

/* Refused result files (each already named on stderr by the scan) leave the
 * figures and the regression's table made from the others, and fail the
 * command at the end. (The leaderboard writes nothing then: its update
 * fails.) */
static int refused_status(const char *cmd, int n_refused)
{
    if (!n_refused) return 0;
    fprintf(stderr, "ltbench %s: %d result file%s refused (named above); the others were used\n", cmd, n_refused,
            n_refused == 1 ? "" : "s");
    return 1;
}

int lt_cmd_leaderboard(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, O_RESULTS | O_METHODS, &o, LEADERBOARD_USAGE);
    if (rc >= 0) return rc;
    lt_lb_opts lo = {.results_dir = o.results, .methods_dir = o.methods, .log = stdout, .warn = stderr};
    /* a refused result file fails the update, which then writes nothing */
    if (lt_leaderboard_update(&lo, NULL, NULL, NULL) != LT_OK) {
        fprintf(stderr, "ltbench leaderboard: %s\n", lt_errmsg());
        return 1;
    }
    return 0;
}

int lt_cmd_figures(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, O_RESULTS | O_OUT | O_PLOTS, &o, FIGURES_USAGE);
    if (rc >= 0) return rc;
    lt_fig_opts fo = {.results_dir = o.results, .out_dir = o.out, .scripts_dir = o.plots, .log = stdout,
                      .warn = stderr};
    lt_fig_summary sum;
    if (lt_figures_make(&fo, NULL, &sum) != LT_OK) {
        fprintf(stderr, "ltbench figures: %s\n", lt_errmsg());
        return 1;
    }
    return refused_status("figures", sum.n_refused);
}

/* ---- regress -------------------------------------------------------------------- */

int lt_cmd_regress(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, O_RESULTS | O_REF | O_SCALE | O_RERUN | O_SEEDS | O_THREADS | O_DATA, &o,
                   REGRESS_USAGE);
    if (rc >= 0) return rc;
    if (!o.scale) {
        fprintf(stderr, "ltbench regress: --scale is required\n%s", REGRESS_USAGE);
        return 2;
    }
    lt_regress_opts ro = {.scale = o.scale, .results_dir = o.results, .reference_dir = o.reference,
                          .data_dir = o.data, .seeds = o.seeds, .rerun = o.rerun, .threads = o.threads,
                          .out = stdout, .log = o.rerun ? stderr : NULL, .warn = stderr};
    lt_regress_summary s;
    if (lt_regress_run(&ro, &s) != LT_OK) {
        fprintf(stderr, "ltbench regress: %s\n", lt_errmsg());
        return 1;
    }
    rc = refused_status("regress", s.n_refused);
    return s.n_above + s.n_below + s.n_missing || rc ? 1 : 0;
}

/* ---- compare -------------------------------------------------------------------- */

static const char COMPARE_USAGE[] =
    "usage: ltbench compare [--reference DIR] RUN_A RUN_B\n"
    "\n"
    "Compare two runs of one experiment (directories holding result.json and per_class.csv, e.g.\n"
    "results/runs/fmnist_lt_r100/short/ce/seed0 and a fresh run of it). When RUN_A was made from a\n"
    "committed tree (or both from one commit with the same uncommitted changes: env.dirty_diff_sha256)\n"
    "and their numerics fingerprints agree (engine version, conv backend, BLAS core, threads;\n"
    "backend, math mode, layout and GPU libraries on cuda) every metric and per_class.csv must be\n"
    "identical; otherwise each metric must be within its tolerance in DIR/<scale>.csv, else\n"
    "DIR/ci.csv, and metrics without one are printed as not compared. Exit status 1 on a\n"
    "difference, or when the runs are not of the same protocol file, dataset, scale, method and\n"
    "seed.\n"
    "  --reference DIR  reference directory (default results/reference)\n";

int lt_cmd_compare(int argc, char **argv)
{
    const char *ref = NULL, *run[2] = {NULL, NULL};
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(COMPARE_USAGE, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--reference")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ltbench compare: --reference needs a value\n%s", COMPARE_USAGE);
                return 2;
            }
            if (!lt_arg_path("compare", "--reference", argv[i + 1])) {
                fputs(COMPARE_USAGE, stderr);
                return 2;
            }
            ref = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "ltbench compare: unknown option '%s'\n%s", argv[i], COMPARE_USAGE);
            return 2;
        } else if (n < 2) {
            if (!lt_arg_path("compare", n ? "RUN_B" : "RUN_A", argv[i])) {
                fputs(COMPARE_USAGE, stderr);
                return 2;
            }
            run[n++] = argv[i];
        } else {
            fprintf(stderr, "ltbench compare: more than two runs ('%s')\n%s", argv[i], COMPARE_USAGE);
            return 2;
        }
    }
    if (n != 2) {
        fprintf(stderr, "ltbench compare: two run directories are needed\n%s", COMPARE_USAGE);
        return 2;
    }
    lt_compare_opts co = {.reference_dir = ref, .out = stdout};
    lt_compare_summary s;
    if (lt_compare_runs(&co, run[0], run[1], &s) != LT_OK) {
        fprintf(stderr, "ltbench compare: %s\n", lt_errmsg());
        return 1;
    }
    return s.n_mismatch ? 1 : 0;
}

/* ---- reproduce ------------------------------------------------------------------ */

int lt_cmd_reproduce(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv,
                   O_METHOD | O_PROTOCOL | O_SCALE | O_SEEDS | O_RESULTS | O_DATA | O_OUT | O_THREADS | O_REUSE |
                       O_NO_REPORT | O_DEVICE,
                   &o, REPRODUCE_USAGE);
    if (rc >= 0) return rc;
    if (!o.method) {
        fprintf(stderr, "ltbench reproduce: --method is required\n%s", REPRODUCE_USAGE);
        return 2;
    }
    lt_run_device dev;
    if (lt_run_device_parse(o.device, o.math, o.layout, o.deterministic, NULL, &dev) != LT_OK) {
        fprintf(stderr, "ltbench reproduce: %s\n%s", lt_errmsg(), REPRODUCE_USAGE);
        return 2;
    }
    const char *protocol = o.protocol ? o.protocol : "fmnist_lt_r100";
    const char *scale = o.scale ? o.scale : "short";
    const lt_method *m = lt_method_find(o.method);
    if (!m) {
        char names[1024];
        lt_method_names(names, sizeof names);
        fprintf(stderr, "ltbench reproduce: unknown method '%s'; known: %s\n", o.method, names);
        return 2;
    }

    /* 1. protocol */
    char ppath[LT_PROTO_PATH_MAX];
    lt_protocol *p = malloc(sizeof *p);
    const lt_proto_scale *ps;
    if (!p) {
        fprintf(stderr, "ltbench reproduce: out of memory\n");
        return 1;
    }
    if (lt_protocol_find(protocol, NULL, ppath, sizeof ppath) || lt_protocol_load(ppath, p) ||
        lt_protocol_scale(p, scale, &ps)) {
        fprintf(stderr, "ltbench reproduce: %s\n", lt_errmsg());
        free(p);
        return 1;
    }
    int seeds[64], ns = 0;
    if (o.seeds) {
        if (lt_seed_list_parse(o.seeds, seeds, 64, &ns)) {
            fprintf(stderr, "ltbench reproduce: %s\n", lt_errmsg());
            free(p);
            return 2;
        }
    } else {
        ns = p->n_seeds;
        for (int i = 0; i < ns; i++) seeds[i] = p->seeds[i];
    }
    printf("reproduce: %s (method version %s) on %s (protocol version %d, sha256 %.12s), scale %s, seeds", m->name,
           m->version, p->name, p->version, p->sha256, scale);
    for (int i = 0; i < ns; i++) printf("%s%d", i ? "," : " ", seeds[i]);
    printf("\n");

    /* the device, asked before any work (in a child: CUDA stays out of this process) */
    lt_backend_info dev_info;
    if (lt_run_device_probe(&dev, &dev_info) != LT_OK) {
        fprintf(stderr, "ltbench reproduce: %s\n", lt_errmsg());
        free(p);
        return 1;
    }

    /* 2. dataset */
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    printf("reproduce: [1/4] dataset %s\n", p->dataset.name);
    fflush(stdout);
    if (lt_protocol_dataset_build(p, scale, o.data, &b) != LT_OK) {
        fprintf(stderr, "ltbench reproduce: dataset %s: %s\n", p->dataset.name, lt_errmsg());
        free(p);
        return 1;
    }
    printf("reproduce: dataset %s %s%s: %ld train / %ld test, manifest %.12s\n", p->dataset.name, b.tag,
           b.rebuilt ? "" : " (up to date)", b.n_train, b.n_test, b.manifest_sha256);

    /* 3. runs */
    int n_failed = 0, n_busy = 0;   /* n_busy: seeds another process was running */
    const int any = o.reuse && !strcmp(o.reuse, "any");
    lt_fingerprint now;
    /* threads: the runner's default */
    lt_fingerprint_current_on(&now, o.threads > 0 ? o.threads : 2, &dev_info, dev.layout);
    char overridden[1024] = "";   /* seeds re-used under --reuse any despite a mismatch */
    for (int i = 0; i < ns; i++) {
        char dir[1024], result[1100], why[600];
        if (lt_run_dir_on(o.results, p->name, scale, m->name, &dev, (uint64_t)seeds[i], dir, sizeof dir)) {
            fprintf(stderr, "ltbench reproduce: %s\n", lt_errmsg());
            n_failed = -1;
            break;
        }
        snprintf(result, sizeof result, "%s/result.json", dir);
        const int use = lt_result_reusable_m(result, p->sha256, b.manifest_sha256, m, &now, any, why, sizeof why);
        if (use == 1) {
            printf("reproduce: [2/4] seed %d: re-using %s\n", seeds[i], result);
            continue;
        }
        if (use == 2) {
            printf("reproduce: [2/4] seed %d: re-using %s under --reuse any, although %s\n", seeds[i], result, why);
            fprintf(stderr, "ltbench reproduce: warning: seed %d re-used under --reuse any, although %s\n", seeds[i],
                    why);
            size_t len = strlen(overridden);
            snprintf(overridden + len, sizeof overridden - len, "%sseed %d (%s)", len ? "; " : "", seeds[i], why);
            continue;
        }
        printf("reproduce: [2/4] seed %d: running (%s)\n", seeds[i], why);
        fflush(stdout);
        lt_run_request req;
        lt_run_request_default(&req);
        req.protocol = ppath;
        req.scale = scale;
        req.method = m->name;
        req.seed = (uint64_t)seeds[i];
        req.results_root = o.results;
        req.data_dir = o.data;
        req.device = o.device;
        req.math = o.math;
        req.layout = o.layout;
        req.deterministic = o.deterministic;
        if (o.threads > 0) req.threads = o.threads;
        lt_run_outcome out;
        const int rrc = lt_runner_run(&req, &out);
        if (rrc == LT_EBUSY) {
            /* another process holds the run's lock: the other seeds go on,
             * and the leaderboard shows what is finished */
            fprintf(stderr, "ltbench reproduce: seed %d: %s; the other seeds go on, run reproduce again once it "
                    "has finished\n", seeds[i], lt_errmsg());
            n_busy++;
            continue;
        }
        if (rrc != LT_OK) {
            fprintf(stderr, "ltbench reproduce: seed %d: %s\n", seeds[i], lt_errmsg());
            n_failed = -1;
            break;
        }
        if (out.ok) {
            printf("reproduce: seed %d: top-1 %.2f%% (%.0f s)\n", seeds[i], 100.0 * out.top1, out.total_s);
        } else {
            printf("reproduce: seed %d: FAILED: %s\n", seeds[i], out.reason);
            n_failed++;
        }
    }
    lt_ds_built_free(&b);
    if (n_failed < 0) {
        free(p);
        return 1;
    }
    if (o.no_report) {
        free(p);
        return n_failed || n_busy ? 1 : 0;
    }

    /* 4. leaderboard and figures */
    printf("reproduce: [3/4] leaderboard\n");
    lt_lb_opts lo = {.results_dir = o.results, .log = stdout, .warn = stderr};
    lt_lb_row *rows = NULL;
    int n_rows = 0;
    lt_run_set set;
    if (lt_leaderboard_update(&lo, &set, &rows, &n_rows) != LT_OK) {
        /* a refused result file: neither leaderboard nor figures are
         * rewritten without it (the runs themselves are done) */
        fprintf(stderr, "ltbench reproduce: leaderboard: %s\n", lt_errmsg());
        fprintf(stderr, "ltbench reproduce: the leaderboard and the figures were not rebuilt; mend what is named "
                "above and run `ltbench leaderboard` and `ltbench figures`\n");
        free(p);
        return 1;
    }
    printf("reproduce: [4/4] figures\n");
    /* the figures use the leaderboard's scan, which refused nothing (else
     * the update above failed) */
    lt_fig_opts fo = {.results_dir = o.results, .out_dir = o.out, .log = stdout};
    lt_fig_summary fs;
    rc = lt_figures_make(&fo, &set, &fs);
    lt_run_set_free(&set);
    if (rc != LT_OK) fprintf(stderr, "ltbench reproduce: figures: %s\n", lt_errmsg());
    int shown = 0;
    for (int i = 0; i < n_rows; i++) {
        if (strcmp(rows[i].protocol, p->name) || strcmp(rows[i].scale, scale) || strcmp(rows[i].method, m->name) ||
            strcmp(rows[i].backend, lt_run_device_tag(dev.kind, dev.math, dev.layout)))
            continue;
        char line[1024], top1[32], std[32];
        lt_lb_row_csv(&rows[i], line, sizeof line);
        lt_rep_pct(rows[i].mean[LT_M_TOP1], top1, sizeof top1);
        lt_rep_pct(rows[i].top1_std, std, sizeof std);
        printf("\n%s\n%s\n\n%s %s %s: top-1 %s%s%s over %d seed(s), status %s\n", LT_LB_CSV_HEADER, line, p->name,
               scale, m->name, top1[0] ? top1 : "-", std[0] ? " +- " : "", std, rows[i].n_ok, rows[i].status);
        shown = 1;
        break;   /* the newest engine's row (rows of a method sort newest first) */
    }
    if (overridden[0]) {
        printf("reproduce: NOTE: re-used under --reuse any, not as this build would make them: %s\n", overridden);
        fprintf(stderr, "ltbench reproduce: re-used under --reuse any despite a mismatch: %s\n", overridden);
    }
    free(rows);
    free(p);
    if (!shown) {
        fprintf(stderr, "ltbench reproduce: no leaderboard row for %s (results directory?)\n", m->name);
        return 1;
    }
    if (n_busy)
        fprintf(stderr, "ltbench reproduce: %d seed%s busy in another process: not in this row yet\n", n_busy,
                n_busy == 1 ? "" : "s");
    return n_failed || n_busy || rc ? 1 : 0;
}
