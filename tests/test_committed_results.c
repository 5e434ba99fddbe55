/* test_committed_results.c — the committed results are products of committed
 * code (issue 15). Reads only the files under results/: every
 * results/runs/ ** /result.json must name a commit and have env.dirty false,
 * and no row of results/leaderboard.csv may pool engine versions (its
 * `engine` column is one version, never empty or ';'-joined), and every
 * run was made by its method's current version (a method whose change
 * moves its files bumps its version and regenerates them: the leaderboard
 * keys rows by engine, not method version, so an old run would pass for a
 * current one). Cheap: no
 * training, so `make test` runs it. Each offending file is named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt_leaderboard.h"
#include "lt_method.h"
#include "lt_runner.h"

/* results/runs, read once for the tests that check every committed run
 * (group setup); have_runs 0 when it is absent (not run from the
 * repository root), and those tests skip. */
static lt_run_set g_runs;
static int have_runs;

static int scan_runs(void **state)
{
    (void)state;
    have_runs = access("results/runs", F_OK) == 0;
    return have_runs && lt_runs_scan("results", stderr, &g_runs) != LT_OK ? -1 : 0;
}

static int free_runs(void **state)
{
    (void)state;
    if (have_runs) lt_run_set_free(&g_runs);
    return 0;
}

static void need_runs(void)
{
    if (!have_runs) {
        print_message("skip: results/runs absent (not run from the repository root)\n");
        skip();
    }
}

static void test_runs_clean_and_committed(void **state)
{
    (void)state;
    need_runs();
    int bad = 0;
    for (int i = 0; i < g_runs.n; i++) {
        const lt_run_record *r = &g_runs.v[i];
        const char *why = !r->commit[0] || !strcmp(r->commit, "unknown") ? "no commit"
                          : r->dirty == 1                                 ? "env.dirty is true"
                          : r->dirty < 0                                  ? "env.dirty is null or absent"
                                                                          : NULL;
        if (!why) continue;
        print_message("committed result not made by committed code: %s: %s (engine %s)\n", r->path, why,
                      r->engine_version[0] ? r->engine_version : "?");
        bad++;
    }
    if (g_runs.n_refused)
        print_message("%d committed result file(s) refused by the reader (above)\n", g_runs.n_refused);
    print_message("note: %d of %d committed results are dirty or without a commit\n", bad, g_runs.n);
    assert_int_equal(g_runs.n_refused, 0);
    assert_int_equal(bad, 0);
}

static void test_runs_current_method_version(void **state)
{
    (void)state;
    need_runs();
    int bad = 0;
    for (int i = 0; i < g_runs.n; i++) {
        const lt_run_record *r = &g_runs.v[i];
        const lt_method *m = lt_method_find(r->method);
        if (!m) {
            print_message("committed result of an unknown method: %s: '%s'\n", r->path, r->method);
            bad++;
        } else if (strcmp(r->method_version, m->version)) {
            print_message("committed result of an old method version: %s: %s version '%s', the code's is '%s' "
                          "(regenerate it: ltbench reproduce --method %s ...)\n",
                          r->path, r->method, r->method_version, m->version, r->method);
            bad++;
        }
    }
    print_message("note: %d of %d committed results are not of their method's current version\n", bad, g_runs.n);
    assert_int_equal(bad, 0);
}

static void test_leaderboard_rows_one_engine(void **state)
{
    (void)state;
    FILE *f = fopen("results/leaderboard.csv", "r");
    if (!f) {
        print_message("skip: results/leaderboard.csv absent\n");
        skip();
    }
    char line[4096];
    int lineno = 0, col = -1, bad = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *fld[64];
        int n = lt_rep_csv_split(line, fld, 64);
        if (lineno == 1) {
            for (int k = 0; k < n && k < 64; k++)
                if (!strcmp(fld[k], "engine")) col = k;
            if (col < 0) {
                print_message("results/leaderboard.csv: no `engine` column: rows may pool engine versions\n");
                bad++;
                break;
            }
            continue;
        }
        if (n <= col || !fld[col][0] || strchr(fld[col], ';')) {
            print_message("results/leaderboard.csv:%d: %s %s %s: engine '%s': not one engine version\n", lineno,
                          n > 0 ? fld[0] : "?", n > 2 ? fld[2] : "?", n > 3 ? fld[3] : "?",
                          n > col ? fld[col] : "");
            bad++;
        }
    }
    fclose(f);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_clean_and_committed),
        cmocka_unit_test(test_runs_current_method_version),
        cmocka_unit_test(test_leaderboard_rows_one_engine),
    };
    return cmocka_run_group_tests(tests, scan_runs, free_runs);
}
