/* lt_fingerprint.h — what decides a run's last bits, and whether a finished
 * run may stand for one this process would make now.
 *
 * Same build (engine version), same convolution kernel path, same BLAS core
 * and same thread count give bit-identical numbers (README, Reproducibility);
 * anything else gives numbers within the tolerance of results/reference, not
 * the same ones. So a run is re-used as is only when all four match, and
 * only when it was made from a committed, clean tree (otherwise nobody can
 * say which code produced it).
 *
 * The backend is part of it (issue 20): a cuda run never stands for a cpu
 * run or the reverse, and a cuda run only for one of the same math mode,
 * activation layout, deterministic flag, GPU model (name, compute capability) and CUDA
 * runtime, cuDNN and cuBLAS versions (their kernels and heuristics decide
 * the sums). The driver version is recorded, not compared: it runs the
 * kernels the libraries chose, it does not choose them. Results written
 * before the backend was recorded have none: they are cpu runs. */
#ifndef LT_FINGERPRINT_H
#define LT_FINGERPRINT_H

#include <stddef.h>

#include "lt_backend.h"
#include "lt_method.h"

typedef struct {
    char engine_version[32];   /* LT_ENGINE_VERSION of the run; "" unknown */
    char conv_backend[64];     /* lt_backend_describe(): the kernel path */
    char blas_core[64];        /* openblas_get_corename() */
    int threads;               /* 0 unknown */
    char commit[64];           /* "" or "unknown": not made from a git tree */
    int dirty;                 /* 1 dirty, 0 clean, -1 unknown */
    char dirty_diff[65];       /* dirty: the changes' sha256 (env.dirty_diff_sha256), else "" */
    char backend[8];           /* "cpu" (also: not recorded) or "cuda": for messages */
    lt_backend_kind kind;      /* the same, what the checks branch on */
    /* cuda only ("" / 0 for cpu) */
    char gpu_name[128];
    char gpu_cc[16];           /* compute capability "9.0" */
    int cuda_runtime, cudnn, cublas;   /* the libraries' version integers */
    char math[8];              /* "fp32" | "tf32" */
    char layout[8];            /* "nchw" (also: not recorded) | "nhwc" */
    int deterministic;
} lt_fingerprint;

/* This process's fingerprint for cpu runs at `threads` threads (commit and
 * dirty are not looked at by lt_fingerprint_stale for `now`). */
void lt_fingerprint_current(lt_fingerprint *f, int threads);
/* The same for runs on a device: dev NULL or a cpu kind is
 * lt_fingerprint_current; a cuda device's info (lt_run_device_probe) and
 * the runs' activation layout give the cuda fingerprint. */
void lt_fingerprint_current_on(lt_fingerprint *f, int threads, const lt_backend_info *dev, lt_layout layout);

/* Why a run made under `run` is not the run this process would make under
 * `now`: 0 when it is (why = ""), else 1 with the first reason in why, e.g.
 * "made by engine 0.1.0, now 0.7.0", "made from an uncommitted tree (+dirty)",
 * "made from no known commit", "backend cuda, now cpu", "threads 2, now
 * 16", "conv backend im2col-sgemm, now avx512-direct+winograd" (cpu),
 * "math mode tf32, now fp32", "layout nhwc, now nchw", "deterministic algorithms off, now on", "GPU
 * NVIDIA A100 (8.0), now NVIDIA H100 (9.0)", "cuDNN 91900, now 92000",
 * "cuBLAS ...", "CUDA runtime ..." (cuda), "BLAS core Haswell, now
 * SkylakeX". Checked in that order. */
int lt_fingerprint_stale(const lt_fingerprint *run, const lt_fingerprint *now, char *why, size_t cap);

/* The fingerprint a result file recorded (lt_run_record's env fields). */
#include "lt_leaderboard.h"
void lt_fingerprint_of_record(const lt_run_record *r, lt_fingerprint *f);

/* The skip rule of `reproduce` and `sweep`: whether the finished run whose
 * result file is result_path can stand for the run this process would make
 * now. 1: yes. 0: no, why says so ("no result yet", "the last attempt
 * failed: ...", "the protocol file changed since it ran", "stale: made by
 * engine ...", "backend cuda, now cpu: another experiment ..."). 2: only
 * under any = 1 (--reuse any): ok and made from the same protocol, dataset
 * and method version, but its engine, tree or fingerprint differ (why says
 * which); never for another backend, cuda math mode or layout, which are
 * other experiments rather than other builds. manifest "" skips the dataset check
 * (a plan made before the dataset was built); method_version NULL skips
 * the method check. */
int lt_result_reusable(const char *result_path, const char *proto_sha, const char *manifest,
                       const char *method_version, const lt_fingerprint *now, int any, char *why, size_t cap);

/* lt_result_reusable for method m (its version), and the run's
 * method.hparams must be m's defaults, what reproduce and sweep run with: a
 * run made with `ltbench run --hparams` sits in the same directory as the
 * default one and would otherwise stand for it. Other hyper-parameters are
 * another experiment: 0 even under any. */
int lt_result_reusable_m(const char *result_path, const char *proto_sha, const char *manifest, const lt_method *m,
                         const lt_fingerprint *now, int any, char *why, size_t cap);

/* Orders two engine versions "MAJOR.MINOR.PATCH" numerically (-1, 0, 1);
 * "" or text that is not a version sorts before every version. */
int lt_engine_version_cmp(const char *a, const char *b);

#endif
