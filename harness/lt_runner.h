/* lt_runner.h — running one (protocol, scale, method, seed) and the method
 * registry.
 *
 * lt_runner_run loads the protocol, opens the dataset (building it when
 * needed), builds the model, runs the method's stages with epoch
 * checkpoints, evaluates and writes the run directory
 *
 *   <results>/runs/<protocol>/<scale>/<method>/seed<k>/   (<method>@cuda/ for --device cuda,
 *                                                          <method>@cuda-tf32/ with --math tf32,
 *                                                          @cuda-nhwc/, @cuda-tf32-nhwc/ with
 *                                                          --layout nhwc)
 *       result.json     the run record (schema: harness/RESULTS.md)
 *       events.jsonl    one JSON event per line (harness/RESULTS.md)
 *       per_class.csv   class_id,train_count,test_count,correct,acc,group,weight_norm
 *       ckpt.ltc        epoch checkpoint while training (git-ignored)
 *       ckpt_final.ltc  the trained model once training finished (git-ignored;
 *                       the shared stage 1 of decoupled methods)
 *       .lock           the directory's lock (git-ignored, below)
 *
 * Isolation: the work happens in a forked child. A crash (signal), a NaN or
 * Inf loss, an error status or the time limit ends the child, and the parent
 * writes result.json with "status":"failed" and a reason naming where it
 * happened ("crashed: signal 11 (Segmentation fault) in stage 1 epoch 0").
 * The calling process always survives. The child dies with the calling
 * process (PR_SET_PDEATHSIG): killing the runner ends its run. It also keeps
 * the time limit itself (a timer sending SIGKILL at the limit), so a runner
 * that is stopped or not watching cannot let a run overrun it; the parent's
 * own watch is the second line.
 *
 * Locking: a run directory is used by one process at a time (flock on
 * <run_dir>/.lock, which holds the runner's "pid host"; the child shares
 * it; the runner touches it every LT_LOCK_BEAT_S as a heartbeat for other
 * hosts, lt_run_lock.c). A second identical run fails at once with
 * LT_EBUSY, "<dir>: already running (pid N) on host H", touching nothing. The lock of a runner that was killed
 * is released by the kernel; the next run takes it over and says whose it
 * was. A method with a shared stage 1 waits for the stage-1 run's lock
 * ("waiting for <dir> (pid N is running it)"; with a time limit, until the
 * limit), then re-uses its final checkpoint or, when there is none of this
 * identity, trains it: methods started together train it once.
 *
 * Caching: with resume set (the default), a run whose training finished
 * (ckpt_final.ltc present) is only re-evaluated, and an interrupted run
 * continues from ckpt.ltc; the numbers equal those of an uninterrupted run
 * (same seed and thread count).
 *
 * A finished result ("ok" result.json) is never destroyed by a session that
 * did not start the run over: when a re-evaluation fails (a damaged
 * ckpt_final.ltc: a valid checksum over bad contents, or a bad checksum) or
 * a session fails before it began training (setup, time limit, shared stage
 * 1), result.json, per_class.csv and events.jsonl stay as they were and the
 * call returns the failure as its error; for a damaged checkpoint LT_EDATA,
 * naming the file and saying that resume = 0 (--no-resume) starts the run
 * over.
 *
 * Calling process: call lt_runner_run before running any engine compute
 * (OpenMP parallel regions) in the same process. GNU libgomp's thread pool
 * does not survive fork(), so a child forked after the parent used OpenMP
 * can hang in its first parallel region. Reading results, protocols and
 * checkpoints is fine. */
#ifndef LT_RUNNER_H
#define LT_RUNNER_H

#include <stdio.h>

#include "lt_method.h"
#include "lt_run_device.h"

typedef struct lt_run_request {
    const char *protocol;        /* protocol name or path to a .json */
    const char *protocols_dir;   /* where bare names are looked up; NULL: default */
    const char *scale;           /* "ci" | "short" | "full" */
    const char *method;          /* registered method name */
    uint64_t seed;
    int threads;                 /* OpenMP + OpenBLAS threads; 0: 2 (see lt_run_request_default) */
    const char *results_root;    /* NULL: "results" */
    const char *data_dir;        /* NULL: $LTBENCH_DATA, else "data" */
    double time_limit_s;         /* wall-clock limit of the run; <= 0: none */
    int resume;                  /* 1 (default): reuse ckpt.ltc / ckpt_final.ltc */
    int quiet;                   /* 1: no progress output */
    FILE *log;                   /* progress output; NULL: stdout */
    const char *hparams;         /* JSON object overriding the method's defaults; NULL: none */
    /* The convolution path of the cpu backend the run's models are built on:
     * "auto", "ref", "direct" or "winograd" (lt_conv_path_parse); NULL or
     * "": from LT_CONV_REF / LT_CONV_WINO (lt_cpu_opts_from_env). The
     * result records the path as conv_backend. */
    const char *conv;
    /* The device the run's models are built on: "cpu" (NULL or "" too),
     * "cuda" (cuda:0) or "cuda:N" (lt_backend_parse_device). A cuda run
     * lives in its own directory (lt_run_dir_on) and records the device in
     * result.json's env (backend, GPU, library versions). */
    const char *device;
    /* cuda only: "fp32" (NULL or "" too) or "tf32" (lt_cuda_math_parse) */
    const char *math;
    /* cuda only: the model's activation layout, "nchw" (NULL or "" too) or
     * "nhwc" (lt_layout_parse, lt_model_set_layout) */
    const char *layout;
    /* cuda only: 1 = deterministic cuDNN algorithms (lt_cuda.h) */
    int deterministic;
    /* Testing: after the checkpoint of the k-th completed epoch (counted over
     * all stages, 1-based) the child dies as if killed (SIGKILL to itself).
     * 0: off. */
    int kill_after_epoch;
    /* Testing: called in the run's process before every training step
     * (before its batch is taken: stage 0-based, epoch, iteration it of the
     * epoch) and once after the epoch's last step (it = its step count);
     * NULL: off. tests/test_alloc_steps.c counts the allocations between
     * two calls. */
    void (*on_step)(void *ctx, int stage, int epoch, long it);
    void *on_step_ctx;
    /* Debugging only: run in the calling process, without isolation. */
    int no_fork;
} lt_run_request;

void lt_run_request_default(lt_run_request *r);

typedef struct lt_run_outcome {
    int ok;                      /* 1: result.json has "status":"ok" */
    char reason[512];            /* failure reason ("" when ok) */
    char run_dir[1024];
    char result_path[1100];
    /* metrics as fractions in [0,1]; NAN when not computed */
    double top1, many, medium, few, ece, macro_f1, map;
    double ece_ts;               /* temperature-scaled ECE (T fitted on the validation split) */
    double total_s;
    int bad_request;             /* the error was the request's own (see lt_runner_run): a usage error */
} lt_run_outcome;

/* Runs the request. Returns LT_OK when a result.json was written (outcome->ok
 * tells whether the run succeeded; a failed run is not an error of this
 * call). Returns a status, without writing results, when the request cannot
 * be carried out at all: LT_EINVAL (unknown method — the message lists the
 * known ones —, unknown scale, bad hparams, a bad device, math mode or an
 * option that does not fit the device), LT_EIO / LT_EDATA / LT_EABI
 * (protocol file unreadable or invalid) — these set outcome->bad_request —
 * and, with bad_request 0, LT_ENOTBUILT (no CUDA module) and LT_EDEVICE
 * ("no CUDA device: ...") for a cuda device this machine cannot give
 * (probed in a child: this process never initialises CUDA), LT_EIO when
 * the run directory or the result cannot be written (a full disk), the errors of the shared stage 1,
 * LT_EBUSY (the run is already running in another process), or the
 * failure of a session that kept a finished result (LT_EDATA for a damaged
 * final checkpoint, above). */
int lt_runner_run(const lt_run_request *req, lt_run_outcome *out);

/* results_root/runs/<protocol>/<scale>/<method>/seed<k>: a cpu run's */
int lt_run_dir(const char *results_root, const char *protocol, const char *scale,
               const char *method, uint64_t seed, char *buf, size_t cap);
/* The directory of a run on a device: cpu as lt_run_dir, cuda
 * results_root/runs/<protocol>/<scale>/<method>@<tag>/seed<k>, the tag
 * "cuda" for fp32 math and "cuda-tf32" for tf32, "-nhwc" appended in the
 * NHWC layout (lt_run_device_method_dir). The backend, the cuda math mode
 * and the layout are part of a run's identity: a cuda run never writes
 * over, resumes or stands for a cpu run, nor a tf32 run for an fp32 one,
 * nor an NHWC run for an NCHW one (their numbers are not bit-identical). */
int lt_run_dir_on(const char *results_root, const char *protocol, const char *scale, const char *method,
                  const lt_run_device *dev, uint64_t seed, char *buf, size_t cap);

/* Reads a result.json into *out (metrics, status, reason, total_s).
 * LT_EIO / LT_EDATA naming the file. */
int lt_result_read(const char *path, lt_run_outcome *out);

/* ---- method registry ---------------------------------------------------------
 * Filled on first use from the generated table (build/methods_table.c: one
 * `lt_method_<dir>` per methods/<dir>/), in name order. */
typedef const lt_method *(*lt_method_entry)(void);
extern const lt_method_entry lt_method_table[];   /* NULL-terminated (generated) */

/* Checks a method (abi, name, fidelity, defaults parse as a JSON object) and
 * adds it. LT_EABI for an ABI newer than LT_METHOD_ABI (or < 1), LT_EINVAL
 * for a bad or duplicate entry. */
int lt_method_register(const lt_method *m);
int lt_method_count(void);
const lt_method *lt_method_at(int i);
/* How method M trains on a device backend (--device cuda), from its hooks
 * and flags: LT_DEV_STEP, the whole step on the device (lt_step: a CUDA
 * graph from the second full batch; a batch_hook of a LT_METHOD_HOST_TAPS
 * method runs on the batch's host rows before the upload);
 * LT_DEV_HOST_HOOKS, eager steps with its loss / iter_end on host copies
 * (LT_METHOD_HOST_TAPS); LT_DEV_REFUSED, *hook (if hook) names the
 * per-batch hook the device cannot run. `ltbench list methods` prints it. */
typedef enum { LT_DEV_STEP = 0, LT_DEV_HOST_HOOKS = 1, LT_DEV_REFUSED = 2 } lt_dev_mode;
lt_dev_mode lt_method_dev_mode(const lt_method *M, const char **hook);
const lt_method *lt_method_find(const char *name);   /* NULL if unknown */
/* "ce, crt, lws" into buf (for error messages). */
void lt_method_names(char *buf, size_t cap);

#endif
