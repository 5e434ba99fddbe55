/* bench_step.c — `make bench`: time training steps (forward, loss, backward,
 * SGD update) and eval forwards of ResNet-32 on 32x32x3 and ResNet-8 on
 * 28x28x1 at batch 128, with 1 and 2 threads. Each configuration runs in its
 * own child process so its peak RSS is its own. Reports the median of timed
 * steps after warm-up, images/s, and GFLOP/s counting 2 x forward MACs for
 * eval and 3 x that for training (forward + data grad + weight grad).
 * Usage: bench_step [steps (default 12)] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lt.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run(const char *arch, int c, int hw, int threads, int steps) {
    const int N = 128, C = 10;
    lt_set_num_threads(threads);
    openblas_set_num_threads(threads);
    lt_model *m;
    if (lt_model_classifier(&m, arch, (lt_shape){1, c, hw, hw}, C, N, 0)) {
        fprintf(stderr, "bench: %s\n", lt_errmsg());
        return 1;
    }
    lt_optim opt;
    lt_optim_init(&opt, m, LT_OPT_SGD, 0.9f, 1e-4f, 0);
    size_t in = (size_t)N * c * hw * hw;
    float *x = lt_alloc(in * sizeof(float));
    int32_t *y = lt_alloc(N * sizeof(int32_t));
    lt_rng r;
    lt_rng_init(&r, 1, 1);
    for (size_t i = 0; i < in; i++) x[i] = (float)lt_rng_normal(&r);
    for (int i = 0; i < N; i++) y[i] = (int32_t)lt_rng_below(&r, C);
    int logits = lt_model_find(m, "logits");
    double *t = malloc(sizeof(double) * steps), loss;
    const int warm = 3;
    for (int s = -warm; s < steps; s++) {
        double t0 = now();
        lt_model_forward(m, x, N, 1);
        lt_softmax_ce(N, C, lt_model_out(m, logits), y, NULL, NULL, &loss, lt_model_dout(m, logits));
        lt_model_zero_grad(m);
        lt_model_backward(m, N, &logits, 1);
        lt_optim_step(&opt, m, 0.1f);
        if (s >= 0) t[s] = now() - t0;
    }
    qsort(t, steps, sizeof *t, cmp);
    double train = t[steps / 2];
    for (int s = -warm; s < steps; s++) {
        double t0 = now();
        lt_model_forward(m, x, N, 0);
        if (s >= 0) t[s] = now() - t0;
    }
    qsort(t, steps, sizeof *t, cmp);
    double eval = t[steps / 2];
    double macs = lt_model_macs(m);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("bench: %-15s %dx%dx%d thr=%d train %7.1f ms/step %7.1f img/s %6.1f GFLOP/s | eval %6.1f ms %7.1f img/s %6.1f GFLOP/s | peak RSS %.0f MiB\n",
           arch, c, hw, hw, threads, train * 1e3, N / train, 3 * 2 * macs * N / train / 1e9, eval * 1e3, N / eval,
           2 * macs * N / eval / 1e9, ru.ru_maxrss / 1024.0);
    fflush(stdout);
    free(t);
    lt_free(x);
    lt_free(y);
    lt_optim_free(&opt);
    lt_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 12;
    if (steps < 1) steps = 1;
    printf("bench: batch 128, median of %d steps after 3 warm-up; OpenBLAS %s (core %s)\n", steps, openblas_get_config(),
           openblas_get_corename());
    struct { const char *arch; int c, hw; } cfg[] = {{"resnet32_cifar", 3, 32}, {"resnet8_cifar", 1, 28}};
    int rc = 0;
    for (int i = 0; i < 2; i++)
        for (int th = 1; th <= 2; th++) {
            fflush(stdout);
            pid_t p = fork();
            if (p == 0) _exit(run(cfg[i].arch, cfg[i].c, cfg[i].hw, th, steps));
            int status = 0;
            waitpid(p, &status, 0);
            if (!WIFEXITED(status) || WEXITSTATUS(status)) rc = 1;
        }
    return rc;
}
