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
 * What make test re-runs: the rows of the methods that start from another
 * method's run (stage1_from: crt, lws, taunorm, ncm, bsm_dec and balms
 * from ce, cbd from cbd_teacher) and of the methods they start from: two
 * ci-scale trainings, cbd's distillation and six short stage 2s, about two
 * minutes on a 2-core machine, which cover the engine every run uses
 * (convolutions, BN, SGD, the schedule, samplers, augmentation,
 * evaluation, calibration). The other methods took 24 to 90 s each there
 * (about 7 min together) and are left out; each has its own tests
 * (test_method_*). With LT_REGRESS_CI_ALL=1 (.ci/run
 * sets it) every row is re-run here, so CI checks every number; so does
 * make regress-ci.
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
#include "lt_runner.h"

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

/* The rows of METHOD in rows[0, n). */
static int n_rows(const char *method, const lt_ref_row *rows, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) k += !strcmp(rows[i].method, method);
    return k;
}

/* 1 when make test re-runs M's rows: it starts from another method's run,
 * or a method with rows starts from M's */
static int shared_stage1(const lt_method *m, const lt_ref_row *rows, int n)
{
    if (m->stage1_from) return 1;
    for (int i = 0; i < lt_method_count(); i++) {
        const lt_method *d = lt_method_at(i);
        if (d->stage1_from && !strcmp(d->stage1_from, m->name) && n_rows(d->name, rows, n)) return 1;
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
    for (int i = 0; i < n; i++)
        if (!lt_method_find(rows[i].method))
            fail_msg("%s/ci.csv:%d names method '%s', which this build does not have", REFERENCE_DIR, rows[i].line,
                     rows[i].method);
    /* the methods left out, comma-separated, for lt_regress_opts */
    char skip[4096] = "";
    int n_left = 0;
    for (int i = 0; i < lt_method_count() && !every; i++) {
        const lt_method *m = lt_method_at(i);
        const int k = n_rows(m->name, rows, n);
        if (!k || shared_stage1(m, rows, n)) continue;
        n_left += k;
        const size_t len = strlen(skip);
        if (len + strlen(m->name) + 2 > sizeof skip) fail_msg("too many methods in %s/ci.csv", REFERENCE_DIR);
        snprintf(skip + len, sizeof skip - len, "%s,", m->name);
    }
    if (*skip) skip[strlen(skip) - 1] = '\0';   /* the trailing comma */
    free(rows);
    n -= n_left;
    assert_true(n > 0);

    char root[] = "/tmp/lt_regress_ci_XXXXXX";
    assert_non_null(mkdtemp(root));
    lt_regress_opts o = {
        .scale = "ci",
        .results_dir = root,
        .reference_dir = REFERENCE_DIR,
        .rerun = 1,
        .time_limit_s = 1800,   /* a hung run fails the test instead of the suite hanging */
        .exclude_methods = *skip ? skip : NULL,
        .out = stdout,
        .log = NULL,
    };
    if (every) printf("note: %d reference numbers to re-run (LT_REGRESS_CI_ALL=1: every row)\n", n);
    else printf("note: %d reference numbers to re-run (not those of %s: make regress-ci, LT_REGRESS_CI_ALL=1)\n", n, skip);
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
