/* bench_step.c — `make bench`: training steps (forward, loss, backward, SGD
 * update) and eval forwards of ResNet-32 on 32x32x3 and ResNet-8 on 28x28x1
 * at batch 128, with 1 and 2 threads, side by side with PyTorch on the same
 * CPU (tests/bench/bench_torch.py, Debian python3-torch; skipped with a
 * message when it cannot be imported).
 *
 * For each (model, threads) the two engines run alternately, ROUNDS times,
 * each run in its own process (so a peak RSS is its own and neither warms
 * the other's caches), and the reported time is the median over all timed
 * steps of all rounds. Alternating spreads the drift of a shared, noisy
 * machine over both sides instead of charging it to whichever ran second.
 * GFLOP/s counts 2 x forward MACs for eval and 3 x that for training
 * (forward + data grad + weight grad), against the fp32 FMA peak of the CPU
 * it runs on: measured by a register-only FMA loop at the same thread
 * count (tests/cpu_peak.c), with the derivation from /proc/cpuinfo (threads
 * x FMA units x SIMD lanes x 2 x clock) printed beside it and used where the
 * loop cannot run; not given at all where the ISA or the clock is unknown.
 * The MACs are those of direct convolution; Winograd layers multiply
 * 2.25-4x less, so the rate is an
 * effective one (the same FLOPs PyTorch's figure would be counted with) and
 * can approach or pass the FMA peak.
 *
 * Usage: bench_step [steps per run (default 10)]
 *        bench_step --child ARCH C HW THREADS STEPS   (one ltbench run) */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lt.h"
#include "../cpu_peak.h"
#include "lt_model_impl.h"   /* white-box: the model's structs */

#define ROUNDS 2
#define MAX_SAMPLES 4096
#define TORCH_SCRIPT "tests/bench/bench_torch.py"
#define TORCH_PYTHON "/usr/bin/python3"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One ltbench run; prints "lt <train s,...> <eval s,...> <macs> <peak RSS KiB>". */
static int child(const char *arch, int c, int hw, int threads, int steps) {
    const int N = 128, C = 10;
    /* OpenBLAS's threads too (lt_base.c: with its OpenMP build they are the
     * engine's; calling openblas_set_num_threads(1) here made the thr=2
     * runs single-threaded) */
    lt_set_num_threads(threads);
    lt_model *m;
    if (lt_model_classifier(&m, arch, (lt_shape){1, c, hw, hw}, C, N, 0)) {
        fprintf(stderr, "bench: %s\n", lt_errmsg());
        return 1;
    }
    lt_optim opt;
    if (lt_optim_init(&opt, m, LT_OPT_SGD, 0.9f, 1e-4f, 0)) {
        fprintf(stderr, "bench: %s\n", lt_errmsg());
        return 1;
    }
    size_t in = (size_t)N * c * hw * hw;
    float *x = lt_alloc(in * sizeof(float));
    int32_t *y = lt_alloc(N * sizeof(int32_t));
    double *t = malloc(sizeof(double) * steps);
    if (!x || !y || !t) return 1;
    lt_rng r;
    lt_rng_init(&r, 1, 1);
    for (size_t i = 0; i < in; i++) x[i] = (float)lt_rng_normal(&r);
    for (int i = 0; i < N; i++) y[i] = (int32_t)lt_rng_below(&r, C);
    int logits = lt_model_find(m, "logits");
    double loss;
    const int warm = 5;
    printf("lt ");
    for (int s = -warm; s < steps; s++) {
        double t0 = lt_now_s();
        lt_model_forward(m, x, N, 1);
        lt_softmax_ce(N, C, lt_model_out(m, logits), y, NULL, NULL, &loss, lt_model_dout(m, logits));
        lt_model_zero_grad(m);
        lt_model_backward(m, N, &logits, 1);
        lt_optim_step(&opt, m, 0.1f);
        if (s >= 0) printf("%s%.6f", s ? "," : "", lt_now_s() - t0);
    }
    printf(" ");
    for (int s = -warm; s < steps; s++) {
        double t0 = lt_now_s();
        lt_model_forward(m, x, N, 0);
        if (s >= 0) printf("%s%.6f", s ? "," : "", lt_now_s() - t0);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf(" %.0f %ld\n", lt_model_macs(m), ru.ru_maxrss);
    free(t);
    lt_free(x);
    lt_free(y);
    lt_optim_free(&opt);
    lt_model_free(m);
    return 0;
}

/* Appends the comma-separated numbers of s to v[*n]. */
static void parse_list(const char *s, double *v, int *n) {
    while (*s && *n < MAX_SAMPLES) {
        char *e;
        double d = strtod(s, &e);
        if (e == s) break;
        v[(*n)++] = d;
        s = *e == ',' ? e + 1 : e;
    }
}

/* Runs cmd and parses "<tag> <train list> <eval list> [macs rss]". 0 on success. */
static int run_cmd(const char *cmd, const char *tag, double *tr, int *ntr, double *ev, int *nev,
                   double *macs, long *rss) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    static char line[1 << 17];
    int ok = -1;
    while (fgets(line, sizeof line, p)) {
        char t[8], *a = NULL, *b = NULL;
        if (sscanf(line, "%7s", t) != 1 || strcmp(t, tag)) continue;
        a = strchr(line, ' ');
        if (!a) continue;
        a++;
        b = strchr(a, ' ');
        if (!b) continue;
        *b++ = 0;
        parse_list(a, tr, ntr);
        char *c = strchr(b, ' ');
        if (c) *c++ = 0;
        parse_list(b, ev, nev);
        if (c && macs && rss) sscanf(c, "%lf %ld", macs, rss);
        ok = 0;
    }
    int st = pclose(p);
    return st == 0 ? ok : (st > 0 && WEXITSTATUS(st) == 3 ? 3 : -1);
}

int main(int argc, char **argv) {
    if (argc == 7 && !strcmp(argv[1], "--child"))
        return child(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
    int steps = argc > 1 ? atoi(argv[1]) : 10;
    if (steps < 1) steps = 1;
    if (steps > MAX_SAMPLES / ROUNDS) steps = MAX_SAMPLES / ROUNDS;
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) { fprintf(stderr, "bench: cannot find own executable\n"); return 1; }
    self[len] = 0;
    const char *wp = getenv("OMP_WAIT_POLICY");
    printf("bench: batch 128, %d rounds x %d timed steps (after 5 warm-up), medians; OpenBLAS %s (core %s); OMP_WAIT_POLICY=%s\n",
           ROUNDS, steps, openblas_get_config(), openblas_get_corename(), wp ? wp : "(unset)");
    printf("bench: GFLOP/s = direct-convolution FLOPs / time: an effective rate, since Winograd layers multiply "
           "2.25-4x less (it can pass the FMA peak)\n");
    lt_cpu_peak peak;
    char why[200], how[300];
    int have_peak = lt_cpu_peak_here(&peak, why, sizeof why) == 0;
    /* the percentages are of the measured FMA loop at the same thread
     * count where it ran, else of the derivation */
    double pk_thr[3] = {0, 0, 0};
    const char *pk_what = "derived";
    if (have_peak) {
        lt_cpu_peak_describe(&peak, how, sizeof how);
        printf("bench: peak (derived) = %s (thr=N uses N cores)\n", how);
        lt_cpu_peak_run mr[2];
        if (lt_cpu_peak_measure(&peak, 1, 0.3, &mr[0]) == 0 && lt_cpu_peak_measure(&peak, 2, 0.3, &mr[1]) == 0) {
            pk_thr[1] = mr[0].gflops;
            pk_thr[2] = mr[1].gflops;
            pk_what = "measured";
            printf("bench: peak (measured, register-only %d-lane FMA loop, best of 3) = %.1f GFLOP/s at thr=1 (as at "
                   "%.2f GHz), %.1f at thr=2 (%.2f GHz): the %% below are of these\n",
                   peak.lanes, mr[0].gflops, mr[0].ghz, mr[1].gflops, mr[1].ghz);
        } else {
            pk_thr[1] = peak.gflops_per_core;
            pk_thr[2] = 2 * peak.gflops_per_core;
            printf("bench: peak not measured (no %s here): the %% below are of the derivation\n", peak.isa);
        }
    } else {
        printf("bench: peak not derived (%s): no %% of peak printed\n", why);
    }
    int have_torch = access(TORCH_PYTHON, X_OK) == 0 && access(TORCH_SCRIPT, R_OK) == 0;
    if (have_torch) {
        have_torch = system(TORCH_PYTHON " -c 'import torch' >/dev/null 2>&1") == 0;
    }
    if (!have_torch)
        printf("bench: PyTorch not available (%s cannot import torch; `make bench-deps` installs python3-torch): pytorch columns skipped\n",
               TORCH_PYTHON);
    fflush(stdout);
    struct { const char *arch; int c, hw; } cfg[] = {{"resnet32_cifar", 3, 32}, {"resnet8_cifar", 1, 28}};
    static double ltr[MAX_SAMPLES], lev[MAX_SAMPLES], ttr[MAX_SAMPLES], tev[MAX_SAMPLES];
    int rc = 0;
    for (int i = 0; i < 2; i++)
        for (int th = 1; th <= 2; th++) {
            int nltr = 0, nlev = 0, nttr = 0, ntev = 0;
            double macs = 0;
            long rss = 0;
            char cmd[8192];
            for (int rd = 0; rd < ROUNDS; rd++) {
                snprintf(cmd, sizeof cmd, "'%s' --child %s %d %d %d %d", self, cfg[i].arch, cfg[i].c,
                         cfg[i].hw, th, steps);
                long r1 = 0;
                if (run_cmd(cmd, "lt", ltr, &nltr, lev, &nlev, &macs, &r1)) {
                    fprintf(stderr, "bench: ltbench run failed: %s\n", cmd);
                    rc = 1;
                }
                if (r1 > rss) rss = r1;
                if (have_torch) {
                    snprintf(cmd, sizeof cmd, "%s %s %s %d %d %d %d", TORCH_PYTHON, TORCH_SCRIPT,
                             cfg[i].arch, cfg[i].c, cfg[i].hw, th, steps);
                    if (run_cmd(cmd, "torch", ttr, &nttr, tev, &ntev, NULL, NULL)) {
                        printf("bench: PyTorch run failed (%s): pytorch columns skipped\n", cmd);
                        have_torch = 0;
                        nttr = ntev = 0;
                    }
                }
            }
            const double N = 128;
            double lt_t = median(ltr, nltr), lt_e = median(lev, nlev);
            double pt_t = median(ttr, nttr), pt_e = median(tev, ntev);
            for (int mode = 0; mode < 2; mode++) {
                double a = mode ? lt_e : lt_t, b = mode ? pt_e : pt_t;
                double gf = (mode ? 2.0 : 6.0) * macs * N / (a > 0 ? a : 1) / 1e9;
                char pt[64] = "pytorch=skipped ratio=n/a";
                if (b > 0 && a > 0)
                    snprintf(pt, sizeof pt, "pytorch=%.1f ratio=%.2f", N / b, b / a);
                printf("bench: %s %dx%dx%d thr=%d %s ltbench=%.1f %s | %.1f ms%s %.1f GFLOP/s",
                       cfg[i].arch, cfg[i].c, cfg[i].hw, cfg[i].hw, th, mode ? "eval " : "train",
                       a > 0 ? N / a : 0.0, pt, a * 1e3, mode ? "/fwd " : "/step", gf);
                if (have_peak) {
                    const double pk = pk_thr[th];
                    printf(" = %.1f%% of %.0f %s peak", 100 * gf / pk, pk, pk_what);
                }
                if (b > 0) printf(" (pytorch %.1f ms)", b * 1e3);
                if (!mode) printf(" | peak RSS %.0f MiB", rss / 1024.0);
                printf("\n");
            }
            fflush(stdout);
        }
    return rc;
}
