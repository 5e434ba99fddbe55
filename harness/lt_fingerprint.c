/* lt_fingerprint.c — see lt_fingerprint.h. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_fingerprint.h"
#include "lt_leaderboard.h"

void lt_fingerprint_current(lt_fingerprint *f, int threads)
{
    memset(f, 0, sizeof *f);
    snprintf(f->engine_version, sizeof f->engine_version, "%s", LT_ENGINE_VERSION);
    /* the backend a run of this process gets without --conv: the environment's */
    snprintf(f->conv_backend, sizeof f->conv_backend, "%s", lt_backend_describe(lt_backend_default()));
    snprintf(f->blas_core, sizeof f->blas_core, "%s", openblas_get_corename());
    f->threads = threads;
    f->dirty = -1;
    snprintf(f->backend, sizeof f->backend, "cpu");
    f->kind = LT_BACKEND_CPU;
}

void lt_fingerprint_current_on(lt_fingerprint *f, int threads, const lt_backend_info *dev, lt_layout layout)
{
    lt_fingerprint_current(f, threads);
    if (!dev || dev->kind != LT_BACKEND_CUDA) return;
    snprintf(f->backend, sizeof f->backend, "%s", lt_backend_kind_name(dev->kind));
    f->kind = dev->kind;
    /* what lt_backend_describe says of the backend the run's child makes */
    snprintf(f->conv_backend, sizeof f->conv_backend, "cuda:%d", dev->device);
    snprintf(f->gpu_name, sizeof f->gpu_name, "%s", dev->device_name);
    snprintf(f->gpu_cc, sizeof f->gpu_cc, "%d.%d", dev->cc_major, dev->cc_minor);
    f->cuda_runtime = dev->runtime_version;
    f->cudnn = dev->cudnn_version;
    f->cublas = dev->cublas_version;
    snprintf(f->math, sizeof f->math, "%s", lt_cuda_math_name(dev->math));
    snprintf(f->layout, sizeof f->layout, "%s", lt_layout_name(layout));
    f->deterministic = dev->deterministic;
}

void lt_fingerprint_of_record(const lt_run_record *r, lt_fingerprint *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->engine_version, sizeof f->engine_version, "%s", r->engine_version);
    snprintf(f->conv_backend, sizeof f->conv_backend, "%s", r->conv_backend);
    snprintf(f->blas_core, sizeof f->blas_core, "%s", r->blas_core);
    f->threads = r->threads;
    snprintf(f->commit, sizeof f->commit, "%s", r->commit);
    f->dirty = r->dirty;
    snprintf(f->dirty_diff, sizeof f->dirty_diff, "%s", r->dirty_diff_sha256);
    snprintf(f->backend, sizeof f->backend, "%s", r->backend[0] ? r->backend : "cpu");
    f->kind = r->backend_kind;
    snprintf(f->gpu_name, sizeof f->gpu_name, "%s", r->gpu_name);
    snprintf(f->gpu_cc, sizeof f->gpu_cc, "%s", r->gpu_cc);
    f->cuda_runtime = r->cuda_runtime;
    f->cudnn = r->cudnn;
    f->cublas = r->cublas;
    snprintf(f->math, sizeof f->math, "%s", r->cuda_math);
    snprintf(f->layout, sizeof f->layout, "%s", r->cuda_layout);   /* "nchw" for a cuda result without the key */
    f->deterministic = r->cuda_deterministic;
}

/* The cuda part of the stale check: 1 with why when it differs. */
static int cuda_stale(const lt_fingerprint *run, const lt_fingerprint *now, char *why, size_t cap)
{
    if (strcmp(run->math, now->math))
        snprintf(why, cap, "math mode %s, now %s", run->math[0] ? run->math : "(unknown)", now->math);
    else if (strcmp(run->layout, now->layout))
        snprintf(why, cap, "layout %s, now %s", run->layout[0] ? run->layout : "(unknown)", now->layout);
    else if (run->deterministic != now->deterministic)
        snprintf(why, cap, "deterministic algorithms %s, now %s", run->deterministic ? "on" : "off",
                 now->deterministic ? "on" : "off");
    else if (strcmp(run->gpu_name, now->gpu_name) || strcmp(run->gpu_cc, now->gpu_cc))
        snprintf(why, cap, "GPU %s (%s), now %s (%s)", run->gpu_name[0] ? run->gpu_name : "(unknown)",
                 run->gpu_cc[0] ? run->gpu_cc : "?", now->gpu_name, now->gpu_cc);
    else if (run->cudnn != now->cudnn) snprintf(why, cap, "cuDNN %d, now %d", run->cudnn, now->cudnn);
    else if (run->cublas != now->cublas) snprintf(why, cap, "cuBLAS %d, now %d", run->cublas, now->cublas);
    else if (run->cuda_runtime != now->cuda_runtime)
        snprintf(why, cap, "CUDA runtime %d, now %d", run->cuda_runtime, now->cuda_runtime);
    else return 0;
    return 1;
}

int lt_fingerprint_stale(const lt_fingerprint *run, const lt_fingerprint *now, char *why, size_t cap)
{
    why[0] = '\0';
    if (strcmp(run->engine_version, now->engine_version))
        snprintf(why, cap, "made by engine %s, now %s", run->engine_version[0] ? run->engine_version : "(unknown)",
                 now->engine_version);
    else if (run->dirty == 1) snprintf(why, cap, "made from an uncommitted tree (+dirty)");
    else if (!run->commit[0] || !strcmp(run->commit, "unknown") || run->dirty < 0)
        snprintf(why, cap, "made from no known commit (not a clean git tree)");
    else if (run->kind != now->kind)
        snprintf(why, cap, "backend %s, now %s", lt_backend_kind_name(run->kind), lt_backend_kind_name(now->kind));
    else if (run->threads != now->threads) snprintf(why, cap, "threads %d, now %d", run->threads, now->threads);
    else if (now->kind == LT_BACKEND_CUDA) {
        /* the device index (conv_backend "cuda:N") is where it ran, not how */
        if (!cuda_stale(run, now, why, cap) && strcmp(run->blas_core, now->blas_core))
            snprintf(why, cap, "BLAS core %s, now %s", run->blas_core[0] ? run->blas_core : "(unknown)",
                     now->blas_core);
        return why[0] != '\0';
    }
    else if (strcmp(run->conv_backend, now->conv_backend))
        snprintf(why, cap, "conv backend %s, now %s", run->conv_backend[0] ? run->conv_backend : "(unknown)",
                 now->conv_backend);
    else if (strcmp(run->blas_core, now->blas_core))
        snprintf(why, cap, "BLAS core %s, now %s", run->blas_core[0] ? run->blas_core : "(unknown)", now->blas_core);
    else return 0;
    return 1;
}

/* Three non-negative numbers, or -1 when s is not "A.B.C". */
static int parse_version(const char *s, long v[3])
{
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        char *end;
        if (*p < '0' || *p > '9') return -1;
        v[i] = strtol(p, &end, 10);
        p = end;
        if (i < 2 && *p++ != '.') return -1;
    }
    return *p ? -1 : 0;
}

int lt_engine_version_cmp(const char *a, const char *b)
{
    long x[3], y[3];
    int ga = parse_version(a, x) == 0, gb = parse_version(b, y) == 0;
    if (!ga || !gb) return ga == gb ? (strcmp(a, b) > 0) - (strcmp(a, b) < 0) : (ga ? 1 : -1);
    for (int i = 0; i < 3; i++)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}
