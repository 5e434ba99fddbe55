/* test_regress_ci.c — the number regression of `make test`: re-runs, from
 * scratch, every (protocol, method) listed in results/reference/ci.csv at
 * the ci scale (seed 0, the runner's default 2 threads) into a temporary
 * results root, and fails when a number leaves its tolerance band. The
 * table (expected, obtained, delta, tol, verdict) is printed either way, so
 * a failing `make test` shows what moved and by how much.
 *
 * Needs the real Fashion-MNIST (dataset-fashion-mnist, or data/fmnist
 * already fetched); the dataset build is cached in the data directory
 * ($LTBENCH_DATA, else data/). Runs from the repository root.
 *
 * Left out here: the methods in SLOW, the three slowest at the ci scale
 * (one `ltbench regress --scale ci --rerun` on a 2-core machine: cbn
 * 43 s, ssd 42 s, iccl 37 s, against 16 s or less for every other
 * method; ssd has three stages, a key encoder forward per step and a
 * teacher forward in stage III), so `make test` stays within its time;
 * their rows are checked by `make regress-ci`, and the methods themselves
 * by their own test_method_*_run. With LT_REGRESS_CI_ALL=1 (.ci/run sets
 * it) every row is re-run here, SLOW included, so that CI checks each
 * number once instead of re-running most of them in make regress-ci.
 *
 * Under AddressSanitizer (`make asan`) the re-runs are skipped: they would
 * take several times longer and test no memory behaviour that test_runner
 * does not already cover. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_regress.h"

#if defined(__SANITIZE_ADDRESS__)
#define LT_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LT_UNDER_ASAN 1
#endif
#endif
#ifndef LT_UNDER_ASAN
#define LT_UNDER_ASAN 0
#endif

#define REFERENCE_DIR "results/reference"
#define SLOW "ssd,cbn,iccl"

/* 1 when method is one of SLOW's comma-separated names (whole names) */
static int is_slow(const char *method)
{
    const size_t n = strlen(method);
    for (const char *p = SLOW; *p;) {
        const size_t k = strcspn(p, ",");
        if (k == n && !strncmp(p, method, n)) return 1;
        p += k + (p[k] == ',');
    }
    return 0;
}

static void test_ci_numbers(void **state)
{
    (void)state;
    if (LT_UNDER_ASAN) {
        printf("skip: ci number regression not run under AddressSanitizer\n");
        skip();
    }
    /* the reference file must exist and list something: an empty one would
     * make this test pass without checking a number */
    lt_ref_row *rows = NULL;
    int n = 0;
    if (lt_ref_load(REFERENCE_DIR "/ci.csv", "ci", &rows, &n) != LT_OK) fail_msg("%s", lt_errmsg());
    const char *all = getenv("LT_REGRESS_CI_ALL");
    const int every = all && !strcmp(all, "1");
    int n_slow = 0;
    for (int i = 0; i < n && !every; i++) n_slow += is_slow(rows[i].method);
    free(rows);
    n -= n_slow;
    assert_true(n > 0);

    char root[] = "/tmp/lt_regress_ci_XXXXXX";
    assert_non_null(mkdtemp(root));
    lt_regress_opts o = {
        .scale = "ci",
        .results_dir = root,
        .reference_dir = REFERENCE_DIR,
        .rerun = 1,
        .time_limit_s = 1800,   /* a hung run fails the test instead of the suite hanging */
        .exclude_methods = every ? NULL : SLOW,
        .out = stdout,
        .log = NULL,
    };
    printf("note: %d reference numbers to re-run%s\n", n,
           every ? " (LT_REGRESS_CI_ALL=1: every row)" : " (without " SLOW ": make regress-ci, LT_REGRESS_CI_ALL=1)");
    lt_regress_summary s;
    int rc = lt_regress_run(&o, &s);
    if (rc != LT_OK) fail_msg("regress: %s", lt_errmsg());
    fflush(stdout);
    printf("note: ci regression: %d numbers, %d within, %d above, %d below, %d missing\n", s.n, s.n_within,
           s.n_above, s.n_below, s.n_missing);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) printf("note: could not remove %s\n", root);
    assert_int_equal(s.n, n);
    assert_int_equal(s.n_above + s.n_below + s.n_missing, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ci_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
