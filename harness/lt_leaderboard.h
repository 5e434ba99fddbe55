/* lt_leaderboard.h — reading run results back, and the leaderboard built
 * from them (results/leaderboard.csv, results/leaderboard.md,
 * results/tables/<protocol>_<scale>.tex).
 *
 * Runs live in <results>/runs/<protocol>/<scale>/<method>[@<device tag>]/seed<k>/ with
 * result.json, per_class.csv and events.jsonl (harness/RESULTS.md). This
 * module is also the one place that parses result.json for the figures and
 * the regression check, so the three agree on what a run said.
 *
 * Everything written here is a pure function of the result files (plus the
 * optional paper numbers): no timestamps, byte order sorting, fixed number
 * formats, so rebuilding from the same inputs gives the same bytes and the
 * files diff cleanly in review. */
#ifndef LT_LEADERBOARD_H
#define LT_LEADERBOARD_H

#include <stdio.h>

#include "lt_backend.h"   /* lt_backend_kind */
#include "lt_base.h"

#define LT_LB_NAME 64
#define LT_LB_PATH 1024

/* Leaderboard CSV header, exactly (the column contract of results/leaderboard.csv).
 * `backend` (cpu, cuda, cuda-tf32, cuda-nhwc, cuda-tf32-nhwc: lt_run_device_tag) came last, so readers
 * of the earlier columns by position are unchanged. */
#define LT_LB_CSV_HEADER                                                                   \
    "protocol,protocol_version,scale,method,fidelity,n_seeds,top1_mean,top1_std,many_mean," \
    "medium_mean,few_mean,ece_mean,ece_ts_mean,map_mean,paper_top1,delta_vs_paper,status,commit,engine,backend"

/* ---- one run ------------------------------------------------------------------ */

/* The metrics of result.json "metrics", as fractions in [0,1]; NAN for null
 * or absent. The order is the one lt_metric_name / lt_metric_parse use. */
enum { LT_M_TOP1 = 0, LT_M_MANY, LT_M_MEDIUM, LT_M_FEW, LT_M_ECE, LT_M_MACRO_F1, LT_M_MAP,
       LT_M_AP_R, LT_M_AP_C, LT_M_AP_F,   /* LVIS frequency groups; NAN elsewhere */
       LT_M_ECE_TS,                       /* ECE after temperature scaling on the validation split */
       LT_M_COUNT };
const char *lt_metric_name(int m);              /* "top1", "many", ... */
int lt_metric_parse(const char *s, int *m);     /* LT_EINVAL naming s when unknown */

typedef struct {
    char path[LT_LB_PATH];          /* the result.json */
    char dir[LT_LB_PATH];           /* its directory: per_class.csv, events.jsonl */
    char protocol[LT_LB_NAME];
    int protocol_version;
    char protocol_sha256[65];
    char scale[16];
    char method[LT_LB_NAME];
    char method_version[32];
    char fidelity[32];              /* official-code | paper | reconstructed | "" */
    int seed;
    int ok;                         /* status "ok" */
    char reason[256];               /* why it failed ("" when ok) */
    double metric[LT_M_COUNT];      /* fractions, NAN = null */
    char manifest_sha256[65];
    char commit[64];                /* env.commit; "" absent */
    int dirty;                      /* env.dirty: 1 true, 0 false, -1 null or absent */
    char dirty_diff_sha256[65];     /* env.dirty_diff_sha256: 64 hex digits, else "" */
    /* the numerics-relevant fingerprint (lt_fingerprint.h); "" / 0 absent */
    char engine_version[32];
    char conv_backend[64];
    char blas_core[64];
    int threads;
    /* what the models computed on: env.backend, "cpu" when the file has
     * none (every result before issue 20); the cuda fingerprint */
    char backend[8];
    char gpu_name[128], gpu_cc[16], cuda_math[8];   /* cuda_math: "fp32" | "tf32" for cuda */
    char cuda_layout[8];   /* cuda: "nchw" (also: not recorded) | "nhwc"; "" for cpu */
    /* the device part of the run's identity, from env.backend,
     * env.cuda_math and env.cuda_layout: "cpu", "cuda" (fp32), "cuda-tf32",
     * "cuda-nhwc" or "cuda-tf32-nhwc" (lt_run_device_tag); what rows group
     * by, and the row's backend */
    char device_tag[16];
    lt_backend_kind backend_kind;   /* env.backend parsed: what code branches on */
    int cuda_runtime, cudnn, cublas, cuda_deterministic;
} lt_run_record;

/* Reads one result.json. Result files are shared between researchers and
 * are untrusted input, so the file is refused (LT_EDATA, or LT_EIO when it
 * cannot be opened; the message names the file and the problem) when it
 * cannot be parsed or is torn (the runner writes it atomically, so a damaged
 * file says nothing about the run: it is not counted as a failed run), when
 * its protocol, method or scale breaks the name rule of lt_names.h (they
 * become paths of tables and figures), or when a metric is neither null nor
 * a number in [0,1], or protocol.version a number but not an integer in
 * [0, INT_MAX], or env.backend neither "cpu" nor "cuda", or a cuda run's
 * env.cuda_math neither "fp32" nor "tf32", or its env.cuda_layout present
 * but neither "nchw" nor "nhwc" (absent: NCHW, every cuda result before
 * --layout), or the device they name not the one its directory names
 * (…/<method>@cuda/ holds cuda fp32 NCHW runs only, …/<method>@cuda-tf32/
 * cuda tf32 NCHW runs only, …/<method>@cuda-nhwc/ and @cuda-tf32-nhwc/
 * their NHWC twins, …/<method>/ cpu runs only), or seed present but not an
 * integer in [0, INT_MAX], or status "ok" without a metrics.top1 (a
 * finished run always has one).
 * Names the file does not give are taken from the path
 * (…/<protocol>/<scale>/<method>[@<tag>]/seed<k>/result.json), under the
 * same rule; where the path is laid out so, the protocol, scale, method
 * (without the @<tag>) and seed the file gives must be the path's (a file
 * copied into another run's directory is refused, naming the key). */
int lt_run_record_read(const char *path, lt_run_record *r);

typedef struct {
    lt_run_record *v;
    int n, cap;
    int n_refused;                  /* result files found but refused (not in v) */
    char first_refused[LT_LB_PATH + 512];   /* the first one's "<path>: <why>" ("" none) */
} lt_run_set;

/* Every <results_dir>/runs/ ** /result.json, sorted by protocol, scale,
 * method, device tag, engine (newest first), seed (byte order). A missing runs/ directory is an empty set; a
 * missing results_dir is LT_EIO (a mistyped --results must not look like an
 * empty leaderboard). A file lt_run_record_read refuses is left out, counted
 * in n_refused (first_refused keeps the first one's "<path>: <why>") and
 * reported as one line "refused result file: <why>" on `warn` (may be
 * NULL); so is a result.json that is not at
 * runs/<protocol>/<scale>/<method>[@<tag>]/seed<k>/result.json, and one
 * there whose path's identity is not valid or not the file's. A symbolic
 * link to a directory is not followed (a link can loop, or count a
 * protocol's runs twice): a line "skipped <path>: ..." on `warn`, not a
 * refusal. The other files are in the set; the commands exit with status 1
 * when n_refused > 0 (lt_leaderboard_update then writes nothing). LT_EIO
 * when a directory cannot be read, LT_ENOMEM. */
int lt_runs_scan(const char *results_dir, FILE *warn, lt_run_set *out);
void lt_run_set_free(lt_run_set *s);

/* ---- the leaderboard ---------------------------------------------------------- */

/* One row per (protocol, scale, method, backend, engine version), backend
 * the device tag (cuda fp32 and tf32 are two): seeds of different engines,
 * backends or cuda math modes are never pooled (their sums run in
 * different orders). Numbers are percent; NAN = empty. */
typedef struct {
    char protocol[LT_LB_NAME];
    int protocol_version;
    char scale[16];
    char method[LT_LB_NAME];
    char backend[16];               /* "cpu" | "cuda" | "cuda-tf32" | "cuda-nhwc" | "cuda-tf32-nhwc"
                                     * (lt_run_device_tag) */
    lt_backend_kind backend_kind;   /* its kind: what code branches on */
    char fidelity[32];
    int n_runs;                     /* result files found */
    int n_ok;                       /* runs with status ok = n_seeds */
    double mean[LT_M_COUNT];        /* over ok runs with a value */
    double top1_std;                /* sample std (n-1); NAN when n_ok < 2 */
    double paper_top1, delta_vs_paper;
    char status[64];                /* "ok", "failed(1/3)", "failed", + ";mixed-protocol",
                                       + ";stale" when engine is older than LT_ENGINE_VERSION */
    char commit[96];
    char engine[32];                /* the runs' env.engine_version ("" unknown) */
    int stale;                      /* engine older than this build's (or unknown) */
    int first;                      /* its runs: set.v[first .. first+n_runs-1] */
} lt_lb_row;

typedef struct {
    const char *results_dir;        /* NULL: "results" */
    const char *methods_dir;        /* NULL: "methods" (for <methods>/<name>/paper.json) */
    FILE *log;                      /* the summary line; NULL: quiet */
    FILE *warn;                     /* refused result files, a line each; NULL: not printed */
} lt_lb_opts;

/* Groups a scanned set into rows (set must be sorted as lt_runs_scan sorts)
 * and attaches paper numbers. *rows is malloc'd; free() it. */
int lt_leaderboard_rows(const lt_lb_opts *o, const lt_run_set *set, lt_lb_row **rows, int *n_rows);

/* Scans, aggregates and writes <results>/leaderboard.csv, leaderboard.md and
 * tables/<protocol>_<scale>.tex, each atomically (temp + rename). Tables
 * that this command wrote before and whose protocol/scale has no runs any
 * more are removed. set/rows/n_rows may be NULL; when given they receive
 * the scan and the rows (caller frees with lt_run_set_free / free). When
 * the scan refuses any result file nothing is written (the existing files
 * and tables are left as they were: written from the others, a row would
 * lose seeds or vanish and its table be pruned) and it fails with LT_EDATA,
 * saying how many were refused and the first one's reason (each one is on
 * o->warn). */
int lt_leaderboard_update(const lt_lb_opts *o, lt_run_set *set, lt_lb_row **rows, int *n_rows);

/* The CSV line of a row (no newline). */
void lt_lb_row_csv(const lt_lb_row *r, char *buf, size_t cap);

/* Paper top-1 (percent) of (protocol, method): <results>/paper_numbers.csv
 * (protocol,method,top1,source) first, else <methods>/<method>/paper.json
 * ({"source": "...", "top1": {"<protocol>": 41.3}}). NAN when neither has
 * one. A malformed file is an error naming the file (and the CSV's line): a
 * top1 that is not a percentage in [0, 100] in either, and in the CSV a
 * field count other than 4, an unterminated quote, a line longer than 1022
 * characters or a second row of one (protocol, method). */
int lt_paper_top1(const lt_lb_opts *o, const char *protocol, const char *method, double *top1);

/* ---- small shared helpers (also used by lt_figures.c and lt_regress.c) ---- */

/* Growable text buffer. */
typedef struct {
    char *s;
    size_t n, cap;
    int oom;                        /* an append failed; lt_rep_buf_ok reports it */
} lt_rep_buf;
void lt_rep_buf_printf(lt_rep_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int lt_rep_buf_ok(const lt_rep_buf *b, const char *what);   /* LT_ENOMEM naming what */
void lt_rep_buf_free(lt_rep_buf *b);

/* mkdir -p. */
int lt_rep_mkdirs(const char *dir);

/* Writes text to path atomically, creating the parent directories. */
int lt_rep_write(const char *path, const lt_rep_buf *b);

/* Splits one CSV line in place into at most max fields (RFC 4180 quoting:
 * "a,b" and "" inside quotes). Returns the field count, or -1 for an
 * unterminated quote. A trailing '\n' / '\r\n' is removed first. */
int lt_rep_csv_split(char *line, char **fields, int max);

/* "%.2f" of a percent value with "-0.00" folded to "0.00"; "" for NAN. */
void lt_rep_pct(double v, char *buf, size_t cap);

/* The fidelity labels' definitions, written into leaderboard.md's legend.
 * README.md ("Methods") states the same words; tests/test_leaderboard.c
 * checks that it contains this text, so the two cannot drift apart again. */
#define LT_FIDELITY_LEGEND                                                                      \
    "`official-code` (follows the authors' code), `paper` (follows the paper where the code " \
    "differs or is unavailable), `reconstructed` (details the sources leave open were filled in by us)"

/* Deviations a reader of the leaderboard must know that the fidelity label
 * does not say (each also in the method's README). */
#define LT_LEADERBOARD_NOTES                                                                     \
    "Notes: `bsig` initialises its classifier weights with the engine's Kaiming normal "        \
    "N(0, 2/fan_in), not the official N(0, 0.01) of detectron2's FastRCNNOutputLayers "        \
    "(methods/bsig/README.md).\n"

#endif
