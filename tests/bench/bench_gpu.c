/* bench_gpu.c — `make bench-gpu`: training steps (upload, forward, softmax
 * cross-entropy, backward, SGD momentum 0.9) and eval forwards on the CUDA
 * backend, side by side with PyTorch eager on the same GPU
 * (tests/bench/bench_gpu_torch.py), for
 *
 *   ResNet-32 (CIFAR, option A)  3x32x32    batch 128, 100 classes   target: train >= 2x PyTorch
 *   ResNet-8  (CIFAR, option A)  1x28x28    batch 128,  10 classes   target: train >= 2x PyTorch
 *   ResNet-50 (torchvision v1.5) 3x224x224  batch 256, 1000 classes  target: train >= 1x PyTorch
 *
 * each in math mode fp32 (IEEE float32, TF32 off on both sides) and tf32
 * (TF32 tensor cores in convolutions and GEMMs on both sides). Output lines:
 *
 *   bench-gpu: <model> <input> <mode> train ltbench=<img/s> pytorch=<img/s> ratio=<r> | ...
 *   bench-gpu: <model> <input> <mode> eval ltbench=<img/s> pytorch=<img/s> ratio=<r> | ...
 *
 * ratio = ltbench img/s / PyTorch img/s; after the bar: the model's GFLOP
 * per image, the achieved TFLOP/s of both and their fraction of the GPU's
 * dense peak for that mode (tests/gpu_peak.c: NVIDIA's data-sheet figures;
 * none printed for a GPU not in the table), and for train whether the
 * target is met. FLOPs: 2 x the forward multiply-adds of every conv and
 * linear layer (lt_model_macs walks the model's layers and asks each for
 * its geometry's MACs), x 3 for a training step (forward, data gradient,
 * weight gradient), the convention PyTorch benchmarks use; BN, ReLU, pools
 * and the optimizer are not counted.
 *
 * Method, the same on both sides: random N(0,1) inputs and uniform labels
 * in host memory, uploaded every step (as a training loop does); W warm-up
 * steps (the algorithms are chosen there, timed on both sides: ltbench's
 * backend is not deterministic, so lt_cuda_conv.cu searches with cudnnFind,
 * as PyTorch does with cudnn.benchmark on); then one timed
 * step gives the step count that fills --seconds (at least 5), and those
 * steps are timed as one block between two device synchronisations
 * (lt_model_sync here, torch.cuda.synchronize there). img/s = steps x
 * batch / seconds. PyTorch runs first, in its own process (so the two never
 * share the GPU), then ltbench in this one.
 *
 * ltbench's step is the harness's: lt_step (engine/lt_step.h) on a model
 * made with lt_model_create_on on a cuda backend, the whole step captured
 * as a CUDA graph after warm-up (LT_CUDA_GRAPH=0: every step eager, to
 * compare). A line per model and mode says how the steps ran.
 *
 * LT_BENCH_PROFILE=1: one more training step, after the count step, inside
 * the profiler's capture range (lt_cuda_profiler_range), so that
 * `ncu --profile-from-start off` records one step's kernels and no warm-up
 * (tests/gpu/train.sh, the profile steps; tests/gpu/ncu_summary.py).
 *
 * No CUDA device, or a binary whose backend was not built: prints
 * "bench-gpu: skipped: no CUDA device (<reason>)" and exits 0. PyTorch
 * missing or without CUDA: the pytorch columns say "skipped" with the reason.
 * Exit status 1 only when an ltbench measurement failed (an engine error).
 *
 * Layouts: each (model, mode) runs with NCHW activations (what `ltbench
 * run --device cuda` uses) and again with NHWC (lt_model_set_layout:
 * PyTorch's channels_last, the layout its ResNet-50 side runs in), the
 * NHWC lines with "<mode>/nhwc" in the mode column; --layouts picks.
 *
 * The filter-gradient stream (lt_cuda_set_wgrad_stream: cuDNN's
 * backward-filter beside the rest of the backward, on a second stream; off
 * in `ltbench run` unless LT_CUDA_WGRAD_STREAM=1): each (model, mode,
 * layout) is timed without it, then its training step again with it on the
 * same net and context (so the same convolution algorithms), the line's
 * mode column saying "<mode>+wgrad-stream" (eval is the same code either
 * way: timed again only when off was not); --wgrad-stream off,on picks.
 * Its own count of targets met is printed last.
 *
 * Usage: bench_gpu [--seconds S (default 2)] [--warmup W (default 5)]
 *                  [--models a,b] [--modes fp32,tf32] [--layouts nchw,nhwc]
 *                  [--wgrad-stream off,on]
 *                  [--python PY] [--no-torch]
 * PY (default $BENCH_GPU_PYTHON, else python3) runs tests/bench/bench_gpu_torch.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lt_backend.h"
#include "lt_cuda.h"
#include "lt_model.h"
#include "lt_rng.h"
#include "lt_step.h"
#include "../gpu_peak.h"

#define TORCH_SCRIPT "tests/bench/bench_gpu_torch.py"
#define MIN_STEPS 5
#define MAX_STEPS 5000

typedef struct {
    const char *arch;
    int c, hw, batch, classes;
    double target;   /* train: ltbench img/s >= target x PyTorch's */
} bench_cfg;

static const bench_cfg CFGS[] = {
    {"resnet32_cifar", 3, 32, 128, 100, 2.0},
    {"resnet8_cifar", 1, 28, 128, 10, 2.0},
    {"resnet50", 3, 224, 256, 1000, 1.0},
};
#define N_CFGS ((int)(sizeof CFGS / sizeof CFGS[0]))
static const char *const MODE_NAME[2] = {"fp32", "tf32"};
static const char *const LAYOUT_NAME[2] = {"nchw", "nhwc"};
static const char *const WGRAD_NAME[2] = {"off", "on"};
/* "tf32", "tf32/nhwc", "tf32/nhwc+wgrad-stream" */
static const char *mode_tag(int mode, lt_layout layout, int wgrad) {
    static char buf[40];
    snprintf(buf, sizeof buf, "%s%s%s", MODE_NAME[mode], layout == LT_LAYOUT_NHWC ? "/nhwc" : "",
             wgrad ? "+wgrad-stream" : "");
    return buf;
}

/* One side's numbers for one (model, mode); 0 = not measured. */
typedef struct {
    double train_ips, eval_ips;
    int train_steps, eval_steps;
    char why[240];   /* why not measured */
} side_result;

/* ---- ltbench side ------------------------------------------------------------- */
typedef struct {
    lt_backend *be;
    lt_model *m;
    lt_optim opt;
    int have_opt;
    lt_cuda_ctx *ctx;
    int logits, N, C;
    lt_step *step;    /* the harness's training step (graph after warm-up) */
} bench_net;

static void net_free(bench_net *b) {
    lt_step_free(b->step);
    if (b->have_opt) lt_optim_free(&b->opt);
    lt_model_free(b->m);
    lt_backend_free(b->be);
    memset(b, 0, sizeof *b);
}

static int net_create(bench_net *b, const bench_cfg *c, lt_cuda_math math, lt_layout layout) {
    memset(b, 0, sizeof *b);
    b->N = c->batch;
    b->C = c->classes;
    LT_TRY(lt_backend_cuda_create(0, math, 0, &b->be));
    int rc = lt_model_create_on(&b->m, (lt_shape){1, c->c, c->hw, c->hw}, b->be);
    int feat = rc ? -1 : lt_resnet_backbone(b->m, c->arch);
    if (!rc && feat < 0) rc = -feat;
    if (!rc) {
        b->logits = lt_add_linear(b->m, "logits", "head", feat, c->classes, 1);
        if (b->logits < 0) rc = -b->logits;
    }
    if (!rc) rc = lt_model_finalize(b->m, 0);
    if (!rc) rc = lt_model_set_batch(b->m, b->N);
    if (!rc) rc = lt_model_set_layout(b->m, layout);
    if (!rc) rc = lt_optim_init(&b->opt, b->m, LT_OPT_SGD, 0.9f, 5e-4f, 0);
    if (!rc) b->have_opt = 1;
    if (!rc) b->ctx = lt_model_device_ctx(b->m);
    if (!rc && !b->ctx) rc = lt_err(LT_EDEVICE, "bench_gpu: model on %s has no device context",
                                    lt_backend_describe(b->be));
    if (!rc) rc = lt_cuda_set_wgrad_stream(b->ctx, 0);   /* off first, whatever LT_CUDA_WGRAD_STREAM says */
    if (!rc) {
        lt_step_opts so;
        lt_step_opts_from_env(&so);
        rc = lt_step_create(&b->step, b->m, &b->opt, b->logits, b->N, b->C, &so);
    }
    if (rc) net_free(b);
    return rc;
}

/* ==== bench_train_step: one training step, as the harness takes it ==========
 * lt_step_run: the batch uploaded through pinned staging, forward, softmax
 * cross-entropy into device accumulators, backward, SGD with the rate in
 * device memory; from the second full batch on one CUDA graph launch. */
static int bench_train_step(bench_net *b, const float *x, const int32_t *y, float lr) {
    return lt_step_run(b->step, x, y, b->N, lr);
}

static int bench_eval_step(bench_net *b, const float *x) { return lt_model_forward(b->m, x, b->N, 0); }

static int one_step(bench_net *b, int train, const float *x, const int32_t *y) {
    /* a small lr: random labels, many steps; the weights must stay finite */
    return train ? bench_train_step(b, x, y, 1e-3f) : bench_eval_step(b, x);
}

/* Warm-up, one timed step for the count, then the timed block. */
static int time_steps(bench_net *b, int train, const float *x, const int32_t *y, int warm, double secs,
                      double *ips, int *steps) {
    for (int i = 0; i < warm; i++) LT_TRY(one_step(b, train, x, y));
    LT_TRY(lt_model_sync(b->m));
    double t0 = lt_now_s();
    LT_TRY(one_step(b, train, x, y));
    LT_TRY(lt_model_sync(b->m));
    double t1 = lt_now_s() - t0;
    const char *prof = getenv("LT_BENCH_PROFILE");
    if (train && prof && !strcmp(prof, "1")) {
        LT_TRY(lt_cuda_profiler_range(1));
        const int rc = one_step(b, train, x, y);
        const int rc_sync = lt_model_sync(b->m);
        LT_TRY(lt_cuda_profiler_range(0));
        LT_TRY(rc);
        LT_TRY(rc_sync);
        printf("bench-gpu: one training step in the profiler's range (LT_BENCH_PROFILE=1)\n");
        fflush(stdout);
    }
    int n = t1 > 0 ? (int)ceil(secs / t1) : MAX_STEPS;
    if (n < MIN_STEPS) n = MIN_STEPS;
    if (n > MAX_STEPS) n = MAX_STEPS;
    t0 = lt_now_s();
    for (int i = 0; i < n; i++) LT_TRY(one_step(b, train, x, y));
    LT_TRY(lt_model_sync(b->m));
    double dt = lt_now_s() - t0;
    *ips = dt > 0 ? (double)n * b->N / dt : 0;
    *steps = n;
    return LT_OK;
}

/* One net, timed with the filter-gradient stream off (train, then eval)
 * and then on (train; eval too when off was not timed: the forward is the
 * same code either way), as use_wgrad says: the same context, so the same
 * convolution algorithms (the switch makes the step capture anew, in the
 * warm-up). done[v] = 1 for each setting measured; on a failure *failed is
 * the setting it happened in. */
static int run_ltbench(const bench_cfg *c, lt_cuda_math math, lt_layout layout, const int use_wgrad[2], int warm,
                       double secs, side_result r[2], int done[2], int *failed, double *flop_fwd, char *dev,
                       size_t dev_cap) {
    done[0] = done[1] = 0;
    *failed = use_wgrad[0] ? 0 : 1;
    bench_net b;
    LT_TRY(net_create(&b, c, math, layout));
    *flop_fwd = 2.0 * lt_model_macs(b.m);
    snprintf(dev, dev_cap, "%s", lt_cuda_describe(b.ctx));
    const size_t n_in = (size_t)c->batch * c->c * c->hw * c->hw;
    float *x = malloc(n_in * sizeof(float));
    int32_t *y = malloc((size_t)c->batch * sizeof(int32_t));
    int rc = x && y ? LT_OK : lt_err(LT_ENOMEM, "bench_gpu: out of host memory for a %s batch", c->arch);
    if (!rc) {
        lt_rng g;
        lt_rng_init(&g, 1, 1);
        for (size_t i = 0; i < n_in; i++) x[i] = (float)lt_rng_normal(&g);
        for (int i = 0; i < c->batch; i++) y[i] = (int32_t)lt_rng_below(&g, (uint32_t)c->classes);
    }
    lt_step_info s0 = {0};   /* the counts before this setting's steps */
    for (int v = 0; v < 2 && !rc; v++) {
        if (!use_wgrad[v]) continue;
        *failed = v;
        lt_step_get_info(b.step, &s0);
        rc = lt_cuda_set_wgrad_stream(b.ctx, v);
        if (!rc) rc = lt_step_reset_stats(b.step);
        if (!rc) rc = time_steps(&b, 1, x, y, warm, secs, &r[v].train_ips, &r[v].train_steps);
        if (!rc) {
            /* a non-finite loss in any timed step surfaces here; how the steps ran */
            double loss_sum;
            long correct, seen;
            rc = lt_step_epoch_stats(b.step, &loss_sum, &correct, &seen);
            lt_step_info si;
            lt_step_get_info(b.step, &si);
            printf("bench-gpu: %s %s step: graphs=%d captures=%ld graph_steps=%ld eager_steps=%ld "
                   "capture_failures=%ld mean_loss=%.4f%s%s\n",
                   c->arch, mode_tag(math, layout, v), si.graphs, si.captures - s0.captures,
                   si.graph_steps - s0.graph_steps, si.eager_steps - s0.eager_steps,
                   si.capture_failures - s0.capture_failures, seen ? loss_sum / seen : 0.0,
                   si.notice[0] ? " notice: " : "", si.notice);
            fflush(stdout);
        }
        if (!rc && (!v || !use_wgrad[0])) rc = time_steps(&b, 0, x, y, warm, secs, &r[v].eval_ips, &r[v].eval_steps);
        if (!rc) done[v] = 1;
    }
    free(x);
    free(y);
    net_free(&b);
    return rc;
}

/* ---- PyTorch side ------------------------------------------------------------- */
/* Runs the script once for every selected (model, mode) and fills
 * torch[cfg][mode]; returns 0, or -1 with why (then every cell says it). */
static int run_torch(const char *python, const int *use_cfg, const int *use_mode, int warm, double secs,
                     side_result torch[][2], char *info, size_t info_cap, char *why, size_t why_cap) {
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd, "'%s' %s --seconds %g --warmup %d --modes %s%s%s", python, TORCH_SCRIPT,
                     secs, warm, use_mode[0] ? "fp32" : "", use_mode[0] && use_mode[1] ? "," : "",
                     use_mode[1] ? "tf32" : "");
    for (int i = 0; i < N_CFGS; i++)
        if (use_cfg[i])
            n += snprintf(cmd + n, sizeof cmd - (size_t)n, " %s:%d:%d:%d:%d", CFGS[i].arch, CFGS[i].c, CFGS[i].hw,
                          CFGS[i].batch, CFGS[i].classes);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " 2>&1");
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(why, why_cap, "cannot start %s", python);
        return -1;
    }
    char line[2048], last[512] = "";
    int got = 0;
    while (fgets(line, sizeof line, p)) {
        char arch[64], mode[16];
        double tr, ev;
        int ts, es;
        if (sscanf(line, "torch %63s %15s train %lf eval %lf steps %d %d", arch, mode, &tr, &ev, &ts, &es) == 6) {
            for (int i = 0; i < N_CFGS; i++)
                for (int k = 0; k < 2; k++)
                    if (!strcmp(arch, CFGS[i].arch) && !strcmp(mode, MODE_NAME[k])) {
                        torch[i][k].train_ips = tr;
                        torch[i][k].eval_ips = ev;
                        torch[i][k].train_steps = ts;
                        torch[i][k].eval_steps = es;
                        got++;
                    }
        } else if (!strncmp(line, "torch-info ", 11)) {
            line[strcspn(line, "\n")] = 0;
            snprintf(info, info_cap, "%s", line + 11);
        } else if (line[0] != '\n') {
            line[strcspn(line, "\n")] = 0;
            snprintf(last, sizeof last, "%s", line);
            printf("bench-gpu: [pytorch] %s\n", line);
        }
    }
    int st = pclose(p);
    int code = st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (code == 3 || code == 4 || code == 127) {
        snprintf(why, why_cap, "%s", code == 3   ? "python cannot import torch"
                                     : code == 4 ? "torch sees no CUDA device"
                                                 : "python not found");
        return -1;
    }
    if (code != 0 || !got) {
        snprintf(why, why_cap, "PyTorch script failed (exit %d)%s%s", code, last[0] ? ": " : "", last);
        if (!got) return -1;
    }
    return 0;
}

/* ---- report ------------------------------------------------------------------------ */
static void print_pair(const bench_cfg *c, int mode, lt_layout layout, int wgrad, int train, const side_result *lt,
                       const side_result *pt, double flop_fwd, const lt_gpu_peak *peak, int *met, int *judged) {
    const double a = train ? lt->train_ips : lt->eval_ips, b = train ? pt->train_ips : pt->eval_ips;
    const double flop_img = flop_fwd * (train ? 3.0 : 1.0);
    char ptxt[96];
    if (b > 0) snprintf(ptxt, sizeof ptxt, "pytorch=%.1f ratio=%.2f", b, a / b);
    else snprintf(ptxt, sizeof ptxt, "pytorch=skipped ratio=n/a");
    printf("bench-gpu: %s %dx%dx%d %s %s ltbench=%.1f %s | batch %d, %.3f GFLOP/img, ltbench %.2f TFLOP/s",
           c->arch, c->c, c->hw, c->hw, mode_tag(mode, layout, wgrad), train ? "train" : "eval", a, ptxt, c->batch,
           flop_img / 1e9, a * flop_img / 1e12);
    const double pk = lt_gpu_peak_tflops(peak, mode);
    if (pk > 0) printf(" = %.1f%% of %.0f", 100.0 * a * flop_img / 1e12 / pk, pk);
    if (b > 0) {
        printf(", pytorch %.2f TFLOP/s", b * flop_img / 1e12);
        if (pk > 0) printf(" = %.1f%%", 100.0 * b * flop_img / 1e12 / pk);
    }
    if (train) {
        if (b > 0) {
            const int ok = a >= c->target * b;
            printf(" | target ltbench >= %.1fx pytorch: %s", c->target, ok ? "met yes" : "met no");
            *met += ok;
            (*judged)++;
        } else {
            printf(" | target ltbench >= %.1fx pytorch: not judged (no pytorch number)", c->target);
        }
    }
    printf("\n");
}

static int parse_list(const char *s, const char *const *names, int n, int *use, const char *what) {
    for (int i = 0; i < n; i++) use[i] = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        int k = -1;
        for (int i = 0; i < n; i++)
            if (!strcmp(t, names[i])) k = i;
        if (k < 0) {
            fprintf(stderr, "bench_gpu: unknown %s '%s'\n", what, t);
            return -1;
        }
        use[k] = 1;
    }
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_gpu [--seconds S] [--warmup W] [--models resnet32_cifar,resnet8_cifar,resnet50]\n"
                    "                 [--modes fp32,tf32] [--layouts nchw,nhwc] [--wgrad-stream off,on]\n"
                    "                 [--python PY] [--no-torch]\n");
}

int main(int argc, char **argv) {
    double secs = 2.0;
    int warm = 5, no_torch = 0;
    int use_cfg[N_CFGS], use_mode[2] = {1, 1}, use_layout[2] = {1, 1}, use_wgrad[2] = {1, 1};
    for (int i = 0; i < N_CFGS; i++) use_cfg[i] = 1;
    const char *python = getenv("BENCH_GPU_PYTHON");
    if (!python || !*python) python = "python3";
    const char *cfg_names[N_CFGS];
    for (int i = 0; i < N_CFGS; i++) cfg_names[i] = CFGS[i].arch;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-torch")) { no_torch = 1; continue; }
        if (!v) { usage(); return 2; }
        if (!strcmp(a, "--seconds")) secs = atof(v);
        else if (!strcmp(a, "--warmup")) warm = atoi(v);
        else if (!strcmp(a, "--python")) python = v;
        else if (!strcmp(a, "--models")) { if (parse_list(v, cfg_names, N_CFGS, use_cfg, "model")) return 2; }
        else if (!strcmp(a, "--modes")) { if (parse_list(v, MODE_NAME, 2, use_mode, "math mode")) return 2; }
        else if (!strcmp(a, "--layouts")) { if (parse_list(v, LAYOUT_NAME, 2, use_layout, "layout")) return 2; }
        else if (!strcmp(a, "--wgrad-stream")) {
            if (parse_list(v, WGRAD_NAME, 2, use_wgrad, "filter-gradient stream setting")) return 2;
        }
        else { usage(); return 2; }
        i++;
    }
    if (!(secs > 0) || warm < 1) { usage(); return 2; }

    /* No device: say so and succeed (this is a bench, not a test). */
    lt_backend *probe = NULL;
    if (lt_cuda_device_count() <= 0 || lt_backend_cuda_create(0, LT_CUDA_FP32, 0, &probe) != LT_OK) {
        printf("bench-gpu: skipped: no CUDA device (%s)\n",
               lt_cuda_device_count() <= 0 ? "the CUDA runtime reports no device" : lt_errmsg());
        return 0;
    }
    lt_backend_free(probe);

    static side_result lt[N_CFGS][2][2][2], pt[N_CFGS][2];   /* [model][mode][layout][filter-gradient stream] */
    char tinfo[512] = "", twhy[512] = "";
    int have_torch = 0;
    if (no_torch) snprintf(twhy, sizeof twhy, "--no-torch");
    else if (access(TORCH_SCRIPT, R_OK)) snprintf(twhy, sizeof twhy, "%s not found (run from the repository root)", TORCH_SCRIPT);
    else {
        printf("bench-gpu: PyTorch side first (%s %s), %g s per measurement after %d warm-up steps\n", python,
               TORCH_SCRIPT, secs, warm);
        fflush(stdout);
        have_torch = run_torch(python, use_cfg, use_mode, warm, secs, pt, tinfo, sizeof tinfo, twhy, sizeof twhy) == 0;
    }
    if (have_torch) printf("bench-gpu: pytorch: %s%s%s\n", tinfo, twhy[0] ? "; " : "", twhy);
    else printf("bench-gpu: pytorch: skipped (%s)\n", twhy);

    int rc = 0, met[2][2] = {{0, 0}, {0, 0}}, judged[2][2] = {{0, 0}, {0, 0}};   /* [filter-gradient stream][layout] */
    char dev[512] = "";
    const lt_gpu_peak *peak = NULL;
    int dev_said = 0;   /* the device line once, known peak or not */
    for (int i = 0; i < N_CFGS; i++)
        for (int k = 0; k < 2; k++)
            for (int l = 0; l < 2; l++) {
                if (!use_cfg[i] || !use_mode[k] || !use_layout[l]) continue;
                const lt_layout lay = l ? LT_LAYOUT_NHWC : LT_LAYOUT_NCHW;
                side_result *r = lt[i][k][l];
                int done[2], failed = 0;
                double flop_fwd = 0;
                fflush(stdout);
                const int fail = run_ltbench(&CFGS[i], k ? LT_CUDA_TF32 : LT_CUDA_FP32, lay, use_wgrad, warm, secs, r,
                                             done, &failed, &flop_fwd, dev, sizeof dev);
                if ((done[0] || done[1]) && !dev_said) {
                    dev_said = 1;
                    peak = lt_gpu_peak_find(dev);
                    printf("bench-gpu: ltbench: %s; peak %s\n", dev,
                           peak ? "from NVIDIA's data sheet (tests/gpu_peak.c), dense"
                                : "unknown for this GPU: no % of peak");
                    if (peak)
                        printf("bench-gpu: peak of the %s: fp32 %.1f TFLOP/s, tf32 %.1f TFLOP/s\n", peak->product,
                               peak->fp32_tflops, peak->tf32_tflops);
                }
                for (int v = 0; v < 2; v++) {
                    if (!done[v]) continue;
                    print_pair(&CFGS[i], k, lay, v, 1, &r[v], &pt[i][k], flop_fwd, peak, &met[v][l], &judged[v][l]);
                    if (r[v].eval_steps)
                        print_pair(&CFGS[i], k, lay, v, 0, &r[v], &pt[i][k], flop_fwd, peak, &met[v][l],
                                   &judged[v][l]);
                }
                if (fail) {
                    printf("bench-gpu: %s %dx%dx%d %s FAILED: %s\n", CFGS[i].arch, CFGS[i].c, CFGS[i].hw, CFGS[i].hw,
                           mode_tag(k, lay, failed), lt_errmsg());
                    rc = 1;
                }
                fflush(stdout);
            }
    /* NCHW without the second stream is what `ltbench run --device cuda`
     * runs: its count first */
    printf("bench-gpu: train targets met:");
    const char *sep = "";
    for (int v = 0; v < 2; v++) {
        if (!use_wgrad[v]) continue;
        printf("%s%s %d of %d judged (nchw), %d of %d (nhwc)", sep, v ? " with the filter-gradient stream:" : "",
               met[v][0], judged[v][0], met[v][1], judged[v][1]);
        sep = ";";
    }
    printf("%s\n", rc ? " (some ltbench runs FAILED)" : "");
    return rc;
}
