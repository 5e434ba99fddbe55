/* test_blas_build.c — which OpenBLAS build the programs run with.
 *
 * The Makefile puts OpenBLAS's OpenMP build (Debian's libopenblas0-openmp,
 * installed by make deps) on every program's runpath, ahead of the
 * pthreads build that the libopenblas.so.0 alternative names by default:
 * with the pthreads build, its thread pool and the engine's OpenMP pool
 * spin and yield against each other on the same cores, which on a CPU
 * without AVX-512 (im2col + sgemm convolutions) doubled a run's time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cblas.h>
#include <dlfcn.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#else
#define MULTIARCH ""
#endif
#define OMP_DIR "/usr/lib/" MULTIARCH "/openblas-openmp"

#include "lt_base.h"

static void test_openmp_build_loaded(void **state) {
    (void)state;
    if (!MULTIARCH[0] || access(OMP_DIR "/libopenblas.so.0", R_OK)) {
        printf("skip: no %s/libopenblas.so.0 (Debian's libopenblas0-openmp: make deps)\n", OMP_DIR);
        skip();
    }
    Dl_info di;
    assert_true(dladdr((void *)openblas_get_config, &di) && di.dli_fname);
    printf("note: OpenBLAS from %s: %s (core %s)\n", di.dli_fname, openblas_get_config(), openblas_get_corename());
    /* 2: OpenMP (0 sequential, 1 pthreads) */
    if (openblas_get_parallel() != 2)
        fail_msg("OpenBLAS %s is the %s build, not the OpenMP build in %s: was the program linked without the "
                 "Makefile's -Wl,-rpath?",
                 di.dli_fname, openblas_get_parallel() == 1 ? "pthreads" : "sequential", OMP_DIR);
    assert_non_null(strstr(openblas_get_config(), "USE_OPENMP"));
    assert_int_equal(strncmp(di.dli_fname, OMP_DIR "/", strlen(OMP_DIR) + 1), 0);
}

/* lt_set_num_threads(n) gives the engine n OpenMP threads whatever OpenBLAS
 * build runs: the OpenMP build's openblas_set_num_threads is
 * omp_set_num_threads for the whole process, and calling it with 1 (meant
 * for OpenBLAS alone) once made every run on an AVX-512 CPU single-threaded
 * while it asked for 2. */
static void test_set_num_threads_reaches_openmp(void **state) {
    (void)state;
    const int saved = lt_num_threads();
    for (int n = 2; n >= 1; n--) {
        lt_set_num_threads(n);
        assert_int_equal(lt_num_threads(), n);
        assert_int_equal(omp_get_max_threads(), n);
        int team = 0;
#pragma omp parallel
        {
#pragma omp single
            team = omp_get_num_threads();
        }
        printf("note: lt_set_num_threads(%d): OpenMP team of %d, OpenBLAS %s build, %d thread(s)\n", n, team,
               openblas_get_parallel() == 2 ? "OpenMP" : openblas_get_parallel() == 1 ? "pthreads" : "sequential",
               openblas_get_num_threads());
        assert_int_equal(team, n);
    }
    lt_set_num_threads(saved);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openmp_build_loaded),
        cmocka_unit_test(test_set_num_threads_reaches_openmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
