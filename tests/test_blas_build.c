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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openmp_build_loaded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
