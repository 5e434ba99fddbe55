/* lt_sweep.h — a grid of runs (methods x protocols x seeds at one scale):
 * its plan, and two ways to carry it out.
 *
 * Plan (lt_sweep_plan_make): the grid is expanded in the order the lists
 * were given; a method with a shared stage 1 (stage1_from, e.g. crt from
 * ce) gets the stage-1 run of the same protocol, scale and seed added to
 * the plan ("implied" when it was not asked for) as its dependency, once
 * however many methods share it. Runs are ordered by dependency level
 * (stage-1 runs first), stably. lt_sweep_plan_check then applies the skip
 * rule of `reproduce` (lt_result_reusable in lt_fingerprint.h, the same
 * code) to every run and estimates the cost of the rest.
 *
 * Local executor (lt_sweep_local): N runs at a time, each in a forked
 * child of the calling process that calls lt_runner_run (which forks the
 * isolated training child as always), its output appended to
 * <results>/sweep/logs/<protocol>.<scale>.<method>[@<device tag>].seed<k>.log. A run
 * starts once its dependency finished ok; a dependency that failed makes
 * its dependents "skipped" with the reason, without trying them (the
 * runner would otherwise train the stage 1 again inside each dependent). A
 * failed run does not stop the others. When *stop becomes non-zero (the
 * caller's SIGINT handler) the running children are killed (SIGKILL; their
 * training children follow by PR_SET_PDEATHSIG and the kernel drops their
 * flock locks), nothing more is started and the call returns with
 * interrupted set: the killed runs resume from their epoch checkpoints on
 * the next sweep. Children ignore SIGINT so a Ctrl-C reaches them only
 * through this path, never as a "crashed: signal 2" failed result. A run
 * that another process (another sweep, a `ltbench run`) is running is
 * waited for, then checked again with the skip rule: two overlapping
 * sweeps train each run once.
 *
 * Slurm executor (lt_sweep_slurm): one batch script per dependency level,
 * each a job array with one task per unfinished run, written into
 * <results>/sweep/slurm/<stamp>/ (read and edit them freely; re-submit with
 * sbatch), submitted with sbatch, level k+1 with --dependency=afterany on
 * level k (afterany: one failed run must not cancel the whole next level;
 * a dependent task checks its own stage-1 result and stops with a message
 * when it is not ok), and a last job that rebuilds the leaderboard and the
 * figures. Job ids are appended to <results>/sweep/slurm/jobs.txt, which
 * lt_sweep_status reads to ask squeue and sacct.
 *
 * Library code: errors are statuses with lt_errmsg() set, never exit(). */
#ifndef LT_SWEEP_H
#define LT_SWEEP_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "lt_datasets.h"
#include "lt_method.h"
#include "lt_protocol.h"
#include "lt_run_device.h"

#define LT_SWEEP_MAX_LIST 64   /* entries per comma list */

/* The dataset build a protocol asks for at a scale (the recipe the runner
 * opens): builds it when needed, else finds it up to date. */
int lt_protocol_dataset_build(const lt_protocol *p, const char *scale, const char *data_dir, lt_ds_built *b);

typedef enum {
    LT_SW_PENDING = 0,      /* plan: to run */
    LT_SW_DONE,          /* plan: a finished run the skip rule re-uses */
    LT_SW_DONE_ANY,      /* plan: re-used under --reuse any although stale (why says how) */
    LT_SW_RUNNING,       /* local executor states below */
    LT_SW_OK,            /* ran and finished */
    LT_SW_FAILED,        /* ran; result.json says failed (or the runner refused), why = reason */
    LT_SW_SKIPPED,       /* not tried: its stage-1 run failed (why says which and why) */
    LT_SW_OTHER,         /* another process finished it while this sweep waited */
} lt_sweep_state;

const char *lt_sweep_state_name(lt_sweep_state s);

typedef struct {
    int proto;               /* index into plan->protos */
    const lt_method *m;
    uint64_t seed;
    int dep;                 /* index of its stage-1 run in plan->runs, -1: none */
    int level;               /* 0: no dependency; k: its dependency has level k-1 */
    int implied;             /* in the plan only as another run's stage 1 */
    lt_sweep_state state;
    char why[600];           /* plan: why it runs or is re-used; after running: the failure reason */
    double est_s;            /* estimated seconds (< 0: no past run to time it) */
    double image_epochs;     /* training images x epochs of its own stages (estimate) */
    double top1, total_s;    /* after a run that finished */
    /* local executor bookkeeping */
    long pid;
    double t_start;
} lt_sweep_run;

typedef struct {
    char path[LT_PROTO_PATH_MAX];
    lt_protocol *p;          /* loaded; owned */
    char manifest[65];       /* the dataset build's manifest sha256; "" until built (skip rule skips it) */
    long n_train;            /* training images at the plan's scale; -1 unknown */
} lt_sweep_proto;

typedef struct {
    const char *methods;         /* "ce,crt" (required) */
    const char *protocols;       /* names or paths (required) */
    const char *seeds;           /* "0,1,2"; NULL: each protocol's own seeds */
    const char *scale;           /* NULL: "short" */
    const char *results;         /* NULL: "results" */
    const char *protocols_dir;   /* NULL: $LTBENCH_PROTOCOLS, else protocols */
    int threads;                 /* threads per run: part of the skip rule's fingerprint; 0: 2 */
    int reuse_any;               /* --reuse any */
    /* the runs' device (lt_run_request's words): NULL / "" = cpu */
    const char *device, *math, *layout;
    int deterministic;
    /* cuda: the device as probed here (lt_run_device_probe), the skip rule's
     * fingerprint; NULL when it could not be probed (a Slurm login node
     * without a GPU): the skip rule then knows only backend, math mode and layout,
     * so cuda runs of any GPU look stale and are submitted again */
    const lt_backend_info *dev_info;
} lt_sweep_opts;

typedef struct {
    char scale[8];
    char results[1024];
    int threads, reuse_any;
    lt_run_device dev;           /* the runs' device; runs/<p>/<s>/<method>@cuda/ for cuda
                                    (@cuda-tf32/ with tf32 math, -nhwc appended in
                                    NHWC: lt_run_dir_on) */
    char device[16], math[8], layout[8];   /* the words passed on to the runs ("" = default) */
    lt_backend_info dev_info;    /* the skip rule's device (see lt_sweep_opts.dev_info) */
    lt_sweep_proto *protos;
    int n_protos;
    lt_sweep_run *runs;
    int n_runs;
} lt_sweep_plan;

/* Expands and orders the grid (no file but the protocols is read). LT_EINVAL
 * naming the entry for an unknown method, a bad seed list, an empty or too
 * long list; the protocol loader's errors naming the file. */
int lt_sweep_plan_make(const lt_sweep_opts *o, lt_sweep_plan *plan);
/* Applies the skip rule to every run (LT_SW_PENDING / DONE / DONE_ANY and why)
 * with each protocol's manifest as known so far, and the cost estimates. */
void lt_sweep_plan_check(lt_sweep_plan *plan);
void lt_sweep_plan_free(lt_sweep_plan *plan);
/* results/runs/<protocol>/<scale>/<method>[@<device tag>]/seed<k> (lt_run_dir_on) */
int lt_sweep_run_dir(const lt_sweep_plan *plan, int i, char *buf, size_t cap);
/* "fmnist_lt_r100 ci crt seed 0" */
void lt_sweep_run_name(const lt_sweep_plan *plan, int i, char *buf, size_t cap);
/* The dry run: every run with its state and dependency, then per protocol
 * and scale the runs to do and the estimated cost, labelled as estimates
 * and saying what they rest on. */
void lt_sweep_plan_print(const lt_sweep_plan *plan, FILE *f);

/* ---- local executor ------------------------------------------------------ */
typedef struct {
    int jobs;                        /* concurrent runs (>= 1) */
    const char *data_dir;            /* NULL: the runner's default */
    FILE *log;                       /* progress lines; NULL: stdout */
    volatile sig_atomic_t *stop;     /* set non-zero to stop (NULL: never) */
    double time_limit_s;             /* per run; <= 0: none */
} lt_sweep_local_opts;

typedef struct {
    int n_todo, n_ok, n_failed, n_skipped, n_other, n_reused;
    int interrupted;
    double wall_s;
} lt_sweep_summary;

/* Runs the plan's LT_SW_PENDING runs. LT_OK when every run was tried (failed
 * ones are counted, not errors) or the sweep was interrupted; LT_EIO when
 * the log directory cannot be made or a child cannot be forked. */
int lt_sweep_local(lt_sweep_plan *plan, const lt_sweep_local_opts *o, lt_sweep_summary *s);

/* ---- Slurm executor ------------------------------------------------------ */
typedef struct {
    const char *partition, *time, *gres;   /* NULL: not set (the site's defaults) */
    int cpus_per_task;                     /* 0: the plan's threads */
    const char *data_dir;                  /* passed to every run; NULL: $LTBENCH_DATA / data */
    const char *ltbench;                   /* the binary the jobs run; NULL: this process's */
    const char *sbatch;                    /* NULL: "sbatch" ($PATH) */
    int no_submit;                         /* 1: only write the scripts */
    double time_limit_s;                   /* each run's --time-limit; <= 0: none */
    FILE *log;                             /* NULL: stdout */
} lt_sweep_slurm_opts;

/* Writes and submits the scripts for the plan's LT_SW_PENDING runs; prints
 * the directory and the job ids. LT_OK with nothing written when nothing is
 * left to run; LT_EIO naming the file or the sbatch command that failed
 * (with sbatch's own message). */
int lt_sweep_slurm(const lt_sweep_plan *plan, const lt_sweep_slurm_opts *o);

/* The grid's state: per run finished / failed (reason) / running here or
 * elsewhere (lock holder) / not started, then the jobs of jobs.txt as
 * squeue and sacct see them. Without accounting (sacct fails) it says so
 * and rests on squeue and the result files. Returns the number of runs not
 * finished ok. */
int lt_sweep_status(const lt_sweep_plan *plan, FILE *f);

#endif
