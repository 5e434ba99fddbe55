/* test_regress.c — reference files, verdicts and exit status of the number
 * regression, on result files and reference files this test writes itself
 * (no training: the re-running path is exercised by test_regress_ci.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_report.h"
#include "lt_protocol.h"
#include "lt_regress.h"
#include "lt_fingerprint.h"
#include "lt_run_internal.h"
#include "tfiles.h"

static char g_root[64];   /* results root; references in <root>/ref */

static char *slurp_file(FILE *f)
{
    fflush(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    return b;
}

/* <root>/runs/fmnist_lt_r100/ci/<method><suffix>/seed<k>/result.json with
 * ENV_JSON (",\"env\":{...}" or "") after the metrics. */
static void write_run_on(const char *method, const char *suffix, const char *env_json, int seed, const char *status,
                         double top1, double many, double few)
{
    char dir[512], p[600], text[2048];
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/ci/%s%s/seed%d", g_root, method, suffix, seed);
    tf_mkdirs(dir);
    snprintf(p, sizeof p, "%s/result.json", dir);
    snprintf(text, sizeof text,
             "{\"format\":1,\"status\":\"%s\",\"reason\":\"%s\",\"protocol\":{\"name\":\"fmnist_lt_r100\","
             "\"version\":1,\"sha256\":\"aa\"},\"scale\":\"ci\",\"method\":{\"name\":\"%s\",\"version\":\"1\","
             "\"fidelity\":\"reconstructed\"},\"seed\":%d,\"metrics\":{\"top1\":%.17g,\"many\":%.17g,"
             "\"medium\":0.5,\"few\":%.17g,\"ece\":0.05,\"macro_f1\":0.6,\"map\":null}%s}\n",
             status, strcmp(status, "ok") ? "crashed: signal 11 (Segmentation fault) in stage 1 epoch 1" : "", method,
             seed, top1, many, few, env_json);
    tf_spit(p, text);
}

static void write_run(const char *method, int seed, const char *status, double top1, double many, double few)
{
    write_run_on(method, "", "", seed, status, top1, many, few);
}

/* A GPU run of the same method and seed (<method>@cuda/): never pooled
 * with the cpu runs the references describe. */
static void write_cuda_run(const char *method, int seed, double top1)
{
    write_run_on(method, "@cuda", ",\"env\":{\"backend\":\"cuda\",\"gpu_name\":\"NVIDIA H100 80GB HBM3\","
                 "\"gpu_cc\":\"9.0\",\"cuda_math\":\"fp32\"}", seed, "ok", top1, top1, top1);
}

static char g_ref[128];

static void write_ref(const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/ci.csv", g_ref);
    tf_spit(p, text);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/lt_reg_XXXXXX");
    if (!mkdtemp(g_root)) return -1;
    snprintf(g_ref, sizeof g_ref, "%s/ref", g_root);
    tf_mkdirs(g_ref);
    write_run("ce", 0, "ok", 0.6315, 0.81, 0.40);
    /* seed 1 exists but ci compares seed 0 only: its wild numbers must not count */
    write_run("ce", 1, "ok", 0.10, 0.10, 0.10);
    write_run("crt", 0, "failed", 0, 0, 0);
    /* and ce seed 0 on a GPU: its numbers must not count either */
    write_cuda_run("ce", 0, 0.10);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

static int run(lt_regress_summary *s, char **table)
{
    FILE *out = tmpfile();
    assert_non_null(out);
    lt_regress_opts o = {.scale = "ci", .results_dir = g_root, .reference_dir = g_ref, .out = out};
    int rc = lt_regress_run(&o, s);
    *table = slurp_file(out);
    fclose(out);
    return rc;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_within(void **state)
{
    (void)state;
    write_ref("protocol,scale,method,metric,expected,tol,why\n"
              "# a comment line\n"
              "fmnist_lt_r100,ci,ce,top1,63.00,0.50,\"measured at 2 threads, seed 0\"\n"
              "fmnist_lt_r100,ci,ce,many,81.40,0.40,edge: delta -0.40 is within\n");
    lt_regress_summary s;
    char *t;
    assert_int_equal(run(&s, &t), LT_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.n_within, 2);
    assert_non_null(strstr(t, "protocol             method             metric    expected  obtained    delta    tol  "
                              "verdict\n"));
    assert_non_null(strstr(t, "fmnist_lt_r100       ce                 top1         63.00     63.15    +0.15   0.50  "
                              "within\n"));
    assert_non_null(strstr(t, "fmnist_lt_r100       ce                 many         81.40     81.00    -0.40   0.40  "
                              "within\n"));
    assert_non_null(strstr(t, "regress ci: 2 within, 0 above, 0 below, 0 missing -> ok\n"));
    free(t);
    char *argv[] = {"regress", "--scale", "ci", "--results", g_root, "--reference", g_ref, NULL};
    assert_int_equal(lt_cmd_regress(7, argv), 0);
}

/* exclude_methods: the rows of listed methods are neither compared nor
 * missing (test_regress_ci leaves out methods this way) */
static void test_exclude_methods(void **state)
{
    (void)state;
    write_ref("protocol,scale,method,metric,expected,tol,why\n"
              "fmnist_lt_r100,ci,ce,top1,63.00,0.50,ce is there\n"
              "fmnist_lt_r100,ci,slow_method,top1,50.00,0.50,no run of it: missing unless excluded\n"
              "fmnist_lt_r100,ci,other,top1,50.00,0.50,no run either\n");
    lt_regress_summary s;
    FILE *out = tmpfile();
    assert_non_null(out);
    lt_regress_opts o = {.scale = "ci", .results_dir = g_root, .reference_dir = g_ref, .out = out,
                         .exclude_methods = "other,slow_method"};
    assert_int_equal(lt_regress_run(&o, &s), LT_OK);
    fclose(out);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.n_within, 1);
    assert_int_equal(s.n_missing, 0);
    o.exclude_methods = "slow";   /* a prefix of a name is not the name */
    out = tmpfile();
    o.out = out;
    assert_int_equal(lt_regress_run(&o, &s), LT_OK);
    fclose(out);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.n_missing, 2);
}

static void test_beyond(void **state)
{
    (void)state;
    write_ref("fmnist_lt_r100,ci,ce,top1,63.10,0.10,within\n"
              "fmnist_lt_r100,ci,ce,many,80.00,0.50,obtained 81.00: above\n"
              "fmnist_lt_r100,ci,ce,few,50.00,2.00,obtained 40.00: below\n"
              "fmnist_lt_r100,ci,crt,top1,60.00,0.50,the run failed: missing\n"
              "fmnist_lt_r100,ci,lws,top1,60.00,0.50,never run: missing\n");
    lt_regress_summary s;
    char *t;
    assert_int_equal(run(&s, &t), LT_OK);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.n_within, 1);
    assert_int_equal(s.n_above, 1);
    assert_int_equal(s.n_below, 1);
    assert_int_equal(s.n_missing, 2);
    assert_non_null(strstr(t, " many         80.00     81.00    +1.00   0.50  above\n"));
    assert_non_null(strstr(t, " few          50.00     40.00   -10.00   2.00  below\n"));
    assert_non_null(strstr(t, "crt                top1         60.00         -        -   0.50  missing (crashed: "
                              "signal 11 (Segmentation fault) in stage 1 epoch 1)\n"));
    assert_non_null(strstr(t, "lws                top1         60.00         -        -   0.50  missing (no run of "
                              "these seeds)\n"));
    assert_non_null(strstr(t, "regress ci: 1 within, 1 above, 1 below, 2 missing -> FAILED\n"));
    free(t);
    /* the command's exit status says it */
    char *argv[] = {"regress", "--scale", "ci", "--results", g_root, "--reference", g_ref, NULL};
    assert_int_equal(lt_cmd_regress(7, argv), 1);
    /* with seed 1 named explicitly the wild run is compared */
    FILE *out = tmpfile();
    lt_regress_opts o = {.scale = "ci", .results_dir = g_root, .reference_dir = g_ref, .seeds = "1", .out = out};
    assert_int_equal(lt_regress_run(&o, &s), LT_OK);
    assert_int_equal(s.n_below, 3);   /* ce top1, many and few of seed 1 */
    fclose(out);
}

/* A malformed reference names file and line and says what is wrong. */
static void expect_bad(const char *text, const char *msg_after_line)
{
    write_ref(text);
    lt_regress_summary s;
    char *t = NULL;
    FILE *out = tmpfile();
    lt_regress_opts o = {.scale = "ci", .results_dir = g_root, .reference_dir = g_ref, .out = out};
    assert_int_equal(lt_regress_run(&o, &s), LT_EDATA);
    fclose(out);
    free(t);
    char want[512];
    snprintf(want, sizeof want, "%s/ci.csv:%s", g_ref, msg_after_line);
    assert_string_equal(lt_errmsg(), want);
}

static void test_malformed(void **state)
{
    (void)state;
    expect_bad("protocol,scale,method,metric,expected,tol,why\n"
               "fmnist_lt_r100,ci,ce,top1,63.00,0.50,ok\n"
               "fmnist_lt_r100,ci,ce,many,80.00\n",
               "3: expected 7 fields protocol,scale,method,metric,expected,tol,why, got 5");
    expect_bad("fmnist_lt_r100,ci,ce,top5,63.00,0.50,x\n",
               "1: unknown metric 'top5' (top1 many medium few ece macro_f1 map ap_r ap_c ap_f ece_ts)");
    expect_bad("\n# c\nfmnist_lt_r100,ci,ce,top1,sixty,0.50,x\n", "3: expected 'sixty' is not a number");
    expect_bad("fmnist_lt_r100,ci,ce,top1,63,-1,x\n", "1: tol '-1' is not a non-negative number");
    expect_bad("fmnist_lt_r100,short,ce,top1,63,1,x\n", "1: scale 'short' in the reference file of scale ci");
    expect_bad("fmnist_lt_r100,ci,ce,top1,63,1,x\nfmnist_lt_r100,ci,ce,top1,64,1,y\n",
               "2: duplicate of line 1 (fmnist_lt_r100 ci ce top1)");
    expect_bad("fmnist_lt_r100,ci,ce,top1,63,1,\"unterminated\n", "1: unterminated quote");
    /* the CLI prints the same message and fails */
    char *argv[] = {"regress", "--scale", "ci", "--results", g_root, "--reference", g_ref, NULL};
    assert_int_equal(lt_cmd_regress(7, argv), 1);
    /* a missing reference file */
    char *argv2[] = {"regress", "--scale", "full", "--results", g_root, "--reference", g_ref, NULL};
    assert_int_equal(lt_cmd_regress(7, argv2), 1);
    char want[300];
    snprintf(want, sizeof want, "%s/full.csv: cannot open the reference file: No such file or directory", g_ref);
    assert_string_equal(lt_errmsg(), want);
    /* usage errors */
    char *argv3[] = {"regress", "--results", g_root, NULL};
    assert_int_equal(lt_cmd_regress(3, argv3), 2);
}

static void test_seed_list(void **state)
{
    (void)state;
    int s[8], n;
    assert_int_equal(lt_seed_list_parse("0,1,2", s, 8, &n), LT_OK);
    assert_int_equal(n, 3);
    assert_int_equal(s[2], 2);
    assert_int_equal(lt_seed_list_parse("0,,1", s, 8, &n), LT_EINVAL);
    assert_int_equal(lt_seed_list_parse("0,1,1", s, 8, &n), LT_EINVAL);
    assert_int_equal(lt_seed_list_parse("-1", s, 8, &n), LT_EINVAL);
    assert_int_equal(lt_seed_list_parse("", s, 8, &n), LT_EINVAL);
}

/* `ltbench reproduce` re-uses a finished run of the same protocol file
 * instead of training: a result.json carrying the real protocol hash is
 * planted (made with ce's default hyper-parameters, {}), and reproduce must
 * go straight to the leaderboard and print the row (twice: the second call
 * is the idempotency check). Needs the
 * Fashion-MNIST build (cached in the data directory). */
static void test_reproduce_reuses(void **state)
{
    (void)state;
    char sha[65], dir[512], p[600], text[2048], out[300];
    assert_int_equal(lt_protocol_hash("protocols/fmnist_lt_r100.json", sha), LT_OK);
    /* a clean run of this engine with this process's numerics fingerprint at
     * reproduce's default 2 threads: the only kind strict re-use accepts */
    lt_fingerprint now;
    lt_fingerprint_current(&now, 2);
    snprintf(dir, sizeof dir, "%s/rep/runs/fmnist_lt_r100/ci/ce/seed0", g_root);
    tf_mkdirs(dir);
    snprintf(p, sizeof p, "%s/result.json", dir);
    snprintf(text, sizeof text,
             "{\"format\":1,\"status\":\"ok\",\"reason\":\"\",\"protocol\":{\"name\":\"fmnist_lt_r100\","
             "\"version\":1,\"sha256\":\"%s\"},\"scale\":\"ci\",\"method\":{\"name\":\"ce\",\"version\":\"1\","
             "\"fidelity\":\"official-code\",\"hparams\":{}},\"seed\":0,\"metrics\":{\"top1\":0.5,\"many\":0.6,"
             "\"medium\":0.1,\"few\":null,\"ece\":0.1,\"macro_f1\":0.4,\"map\":null},"
             "\"env\":{\"commit\":\"0123456789abcdef\",\"dirty\":false,\"engine_version\":\"%s\","
             "\"conv_backend\":\"%s\",\"blas_core\":\"%s\",\"threads\":%d}}\n",
             sha, now.engine_version, now.conv_backend, now.blas_core, now.threads);
    tf_spit(p, text);
    char results[300];
    snprintf(results, sizeof results, "%s/rep", g_root);
    snprintf(out, sizeof out, "%s/rep/figs", g_root);
    char *argv[] = {"reproduce", "--method", "ce", "--scale", "ci", "--seeds", "0",
                    "--results", results, "--out", out, NULL};
    for (int round = 0; round < 2; round++) {
        fflush(stdout);
        assert_int_equal(lt_cmd_reproduce(11, argv), 0);
        snprintf(p, sizeof p, "%s/rep/leaderboard.csv", g_root);
        FILE *f = fopen(p, "r");
        assert_non_null(f);
        char *csv = slurp_file(f);
        fclose(f);
        assert_non_null(strstr(csv, "\nfmnist_lt_r100,1,ci,ce,official-code,1,50.00,,60.00,10.00,,10.00,,,,,ok,012345678"));
        free(csv);
    }
    /* the planted run was not replaced by a training run */
    snprintf(p, sizeof p, "%s/events.jsonl", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    /* an unknown method is a usage error */
    char *bad[] = {"reproduce", "--method", "no_such_method", NULL};
    assert_int_equal(lt_cmd_reproduce(3, bad), 2);

    /* a seed another process is running (its directory's lock held here) is
     * passed over: the others go on and the leaderboard is built from what
     * is finished, and the exit status says one was busy */
    char busy[600];
    snprintf(busy, sizeof busy, "%s/rep/runs/fmnist_lt_r100/ci/ce/seed1", g_root);
    tf_mkdirs(busy);
    lt_dir_lock lk;
    assert_int_equal(lt_dir_lock_take(&lk, busy, 0, 0, NULL), LT_OK);
    snprintf(p, sizeof p, "%s/rep/leaderboard.csv", g_root);
    unlink(p);
    char *two[] = {"reproduce", "--method", "ce", "--scale", "ci", "--seeds", "1,0",
                   "--results", results, "--out", out, NULL};
    fflush(stdout);
    assert_int_equal(lt_cmd_reproduce(11, two), 1);
    lt_dir_lock_release(&lk);
    FILE *f = fopen(p, "r");
    assert_non_null(f);   /* seed 0 went on, and the leaderboard was built */
    char *csv = slurp_file(f);
    fclose(f);
    assert_non_null(strstr(csv, "\nfmnist_lt_r100,1,ci,ce,official-code,1,50.00,"));
    free(csv);
    snprintf(p, sizeof p, "%s/result.json", busy);
    assert_int_not_equal(access(p, F_OK), 0);   /* nothing ran in the busy one */
}

/* A reference file without rows (empty, header only, comments only, or cut
 * before its first row) compared nothing and said "0 within ... -> ok",
 * exit 0: a regression that checked no number passed. */
static void test_no_reference_rows(void **state)
{
    (void)state;
    static const char *const texts[] = {"", "protocol,scale,method,metric,expected,tol,why\n", "# only a comment\n\n",
                                        "protocol,scale,method,metric,expected,tol,why"};
    char want[300];
    snprintf(want, sizeof want, "%s/ci.csv: no reference rows", g_ref);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        write_ref(texts[i]);
        lt_regress_summary s;
        FILE *out = tmpfile();
        lt_regress_opts o = {.scale = "ci", .results_dir = g_root, .reference_dir = g_ref, .out = out};
        assert_int_equal(lt_regress_run(&o, &s), LT_EDATA);
        fclose(out);
        assert_string_equal(lt_errmsg(), want);
        char *argv[] = {"regress", "--scale", "ci", "--results", g_root, "--reference", g_ref, NULL};
        assert_int_equal(lt_cmd_regress(7, argv), 1);
    }
}

/* Names from a reference file are names: a protocol with '/' or ending in
 * .json went to lt_protocol_find as a path (a row ../../../etc/passwd read
 * that file and echoed it in the error). Errors that come from a row's
 * protocol (not found) start with the file and the row's line. */
static void test_reference_names_checked(void **state)
{
    (void)state;
    static const struct {
        const char *row, *msg;
    } bad[] = {
        {"../../../etc/passwd,short,ce,top1,63,1,x\n",
         "1: protocol '../../../etc/passwd' is not a name ([a-z0-9_], 1..63 characters)"},
        {"fmnist_lt_r100.json,short,ce,top1,63,1,x\n", "1: protocol 'fmnist_lt_r100.json' is not a name"},
        {"fmnist_lt_r100,short,../ce,top1,63,1,x\n", "1: method '../ce' is not a name"},
        {"fmnist_lt_r100,short,CE,top1,63,1,x\n", "1: method 'CE' is not a name"},
    };
    char p[300], want[512];
    snprintf(p, sizeof p, "%s/short.csv", g_ref);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tf_spit(p, bad[i].row);
        lt_regress_summary s;
        FILE *out = tmpfile();
        lt_regress_opts o = {.scale = "short", .results_dir = g_root, .reference_dir = g_ref, .out = out};
        assert_int_equal(lt_regress_run(&o, &s), LT_EDATA);
        fclose(out);
        snprintf(want, sizeof want, "%s:%s", p, bad[i].msg);
        if (strncmp(lt_errmsg(), want, strlen(want))) fail_msg("message '%s', want '%s...'", lt_errmsg(), want);
        assert_null(strstr(lt_errmsg(), "root:"));
    }
    /* a valid name that names no protocol: the row's file and line first */
    tf_spit(p, "# comment\nno_such_protocol,short,ce,top1,63,1,x\n");
    lt_regress_summary s;
    FILE *out = tmpfile();
    lt_regress_opts o = {.scale = "short", .results_dir = g_root, .reference_dir = g_ref, .out = out};
    assert_int_not_equal(lt_regress_run(&o, &s), LT_OK);
    fclose(out);
    snprintf(want, sizeof want, "%s:2: unknown protocol 'no_such_protocol'", p);
    if (strncmp(lt_errmsg(), want, strlen(want))) fail_msg("message '%s', want '%s...'", lt_errmsg(), want);
    unlink(p);
}

/* regress reads the leaderboard's scan: ce/seed0 copied into seed1 was
 * compared as a second seed of the same numbers ("ok", exit 0). The copy
 * is refused by name and the command fails. */
static void test_copied_seed_refused(void **state)
{
    (void)state;
    char root[200], dir[400], cmd[1200];
    snprintf(root, sizeof root, "%s/copied", g_root);
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/ci/ce", root);
    tf_mkdirs(dir);
    snprintf(cmd, sizeof cmd, "cp -r '%s/runs/fmnist_lt_r100/ci/ce/seed0' '%s/seed0' && cp -r '%s/seed0' '%s/seed1'",
             g_root, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    write_ref("fmnist_lt_r100,ci,ce,top1,63.15,0.10,seed 0\n");
    FILE *out = tmpfile(), *warn = tmpfile();
    lt_regress_opts o = {.scale = "ci", .results_dir = root, .reference_dir = g_ref, .seeds = "0,1", .out = out,
                         .warn = warn};
    lt_regress_summary s;
    assert_int_equal(lt_regress_run(&o, &s), LT_OK);
    fclose(out);
    char *w = slurp_file(warn);
    fclose(warn);
    assert_int_equal(s.n_refused, 1);
    char want[600];
    snprintf(want, sizeof want, "refused result file: %s/seed1/result.json: key 'seed' is 0, but the path says seed1",
             dir);
    if (!strstr(w, want)) fail_msg("no line '%s' in:\n%s", want, w);
    free(w);
    char *argv[] = {"regress", "--scale", "ci", "--results", root, "--reference", g_ref, "--seeds", "0,1", NULL};
    assert_int_equal(lt_cmd_regress(9, argv), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_within),
        cmocka_unit_test(test_exclude_methods),
        cmocka_unit_test(test_beyond),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_seed_list),
        cmocka_unit_test(test_reproduce_reuses),
        cmocka_unit_test(test_no_reference_rows),
        cmocka_unit_test(test_reference_names_checked),
        cmocka_unit_test(test_copied_seed_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
