/* test_blas_build.c — which OpenBLAS build the programs run with.
 *
 * The Makefile puts OpenBLAS's OpenMP build (Debian's libopenblas0-openmp,
 * installed by make deps) on every program's runpath, ahead of the
 * pthreads build that the libopenblas.so.0 alternative names by default:
 * with the pthreads build, its thread pool and the engine's OpenMP pool
 * spin and yield against each other on the same cores, which on a CPU
 * without AVX-512 (im2col + sgemm convolutions) doubled a run's time.
 *
 * Built a second time with LT_BLAS_PTHREADS (test_blas_build_pthreads,
 * its runpath the pthreads build's directory), it checks what
 * lt_set_num_threads does for a program linked without the Makefile's
 * runpath: OpenMP gets n threads, OpenBLAS's own pool 1 where the engine's
 * kernels run the convolutions (lt_conv_isa), else n. */
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
#ifdef LT_BLAS_PTHREADS
#define BLAS_DIR "/usr/lib/" MULTIARCH "/openblas-pthread"
#define BLAS_PKG "libopenblas0-pthread"
#define WANT_PARALLEL 1   /* openblas_get_parallel: 0 sequential, 1 pthreads, 2 OpenMP */
#else
#define BLAS_DIR "/usr/lib/" MULTIARCH "/openblas-openmp"
#define BLAS_PKG "libopenblas0-openmp: make deps"
#define WANT_PARALLEL 2
#endif

#include "lt_backend.h"
#include "lt_base.h"

static const char *build_name(int parallel) {
    return parallel == 2 ? "OpenMP" : parallel == 1 ? "pthreads" : "sequential";
}

static void skip_unless_installed(void) {
    if (!MULTIARCH[0] || access(BLAS_DIR "/libopenblas.so.0", R_OK)) {
        printf("skip: no %s/libopenblas.so.0 (Debian's %s)\n", BLAS_DIR, BLAS_PKG);
        skip();
    }
}

static void test_build_loaded(void **state) {
    (void)state;
    skip_unless_installed();
    Dl_info di;
    assert_true(dladdr((void *)openblas_get_config, &di) && di.dli_fname);
    printf("note: OpenBLAS from %s: %s (core %s)\n", di.dli_fname, openblas_get_config(), openblas_get_corename());
    if (openblas_get_parallel() != WANT_PARALLEL)
        fail_msg("OpenBLAS %s is the %s build, not the %s build in %s: was the program linked without its -Wl,-rpath?",
                 di.dli_fname, build_name(openblas_get_parallel()), build_name(WANT_PARALLEL), BLAS_DIR);
    assert_true((strstr(openblas_get_config(), "USE_OPENMP") != NULL) == (WANT_PARALLEL == 2));
    assert_int_equal(strncmp(di.dli_fname, BLAS_DIR "/", strlen(BLAS_DIR) + 1), 0);
}

/* lt_set_num_threads(n) gives the engine n OpenMP threads whatever OpenBLAS
 * build runs: the OpenMP build's openblas_set_num_threads is
 * omp_set_num_threads for the whole process, and calling it with 1 (meant
 * for OpenBLAS alone) once made every run on an AVX-512 CPU single-threaded
 * while it asked for 2. */
static void test_set_num_threads_reaches_openmp(void **state) {
    (void)state;
    skip_unless_installed();   /* the build the test is about */
    const int saved = lt_num_threads();
    for (int n = 2; n >= 1; n--) {
#ifdef LT_BLAS_PTHREADS
        const int want = lt_conv_isa() != LT_CONV_ISA_NONE ? 1 : n;
        openblas_set_num_threads(want == 1 ? 2 : 1);   /* so that the call has something to change */
#endif
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
               build_name(openblas_get_parallel()), openblas_get_num_threads());
        assert_int_equal(team, n);
#ifdef LT_BLAS_PTHREADS
        /* its own pool: 1 beside the engine's convolution kernels, else n */
        assert_int_equal(openblas_get_num_threads(), want);
#endif
    }
    lt_set_num_threads(saved);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_loaded),
        cmocka_unit_test(test_set_num_threads_reaches_openmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
