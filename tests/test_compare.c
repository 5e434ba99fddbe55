/* test_compare.c — lt_compare_runs and `ltbench compare` (the check behind
 * make verify-results) on result files this test writes into a temporary
 * directory: the exact comparison for the same fingerprint (a last-bit
 * change in one metric or one byte of per_class.csv is a mismatch), the
 * tolerance comparison for another fingerprint against a reference file,
 * and the refusals (different experiments, a run that did not finish, a
 * torn result file). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_report.h"
#include "lt.h"
#include "lt_compare.h"
#include "tfiles.h"

static char g_root[64];

/* What one run file says; the defaults are a finished ce run at 2 threads. */
typedef struct {
    const char *status, *protocol_sha, *method, *engine, *conv, *blas;
    int seed, threads;
    double top1, ece;
    const char *per_class;
    int no_per_class;
    const char *env_device;   /* the env's device keys; NULL: "backend":"cpu" */
    const char *env_tree;     /* the env's commit / dirty keys; NULL: a clean commit */
} run;

static run base(void) {
    run r = {.status = "ok", .protocol_sha = "aaaa", .method = "ce", .engine = LT_ENGINE_VERSION,
             .conv = "avx512-direct+winograd", .blas = "Cooperlake", .seed = 0, .threads = 2,
             .top1 = 0.85443999999999998, .ece = 0.0357, .per_class = "class,count,correct,acc\n0,100,90,0.9\n"};
    return r;
}

/* <root>/<name>/result.json (+ per_class.csv); returns the directory. */
static const char *write_run(const char *name, const run *r) {
    static char dirs[8][256];
    static int k;
    char *dir = dirs[k++ % 8];
    snprintf(dir, 256, "%s/%s", g_root, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    char path[300], text[4096];
    snprintf(text, sizeof text,
             "{\"format\":1,\"status\":\"%s\",\"reason\":\"%s\","
             "\"protocol\":{\"name\":\"fmnist_lt_r100\",\"version\":1,\"sha256\":\"%s\"},\"scale\":\"short\","
             "\"method\":{\"name\":\"%s\",\"version\":\"1\",\"fidelity\":\"reconstructed\",\"hparams\":{}},"
             "\"seed\":%d,\"dataset\":{\"name\":\"fmnist\",\"manifest_sha256\":\"bbbb\"},"
             "\"metrics\":{\"top1\":%.17g,\"many\":0.85,\"medium\":0.8722,\"few\":null,\"ece\":%.17g,"
             "\"macro_f1\":0.84,\"map\":null,\"ece_ts\":0.0125},"
             "\"env\":{%s,\"engine_version\":\"%s\","
             "\"conv_backend\":\"%s\",\"blas_core\":\"%s\",\"threads\":%d,%s}}\n",
             r->status, strcmp(r->status, "ok") ? "loss is NaN in stage 1 epoch 3" : "", r->protocol_sha, r->method,
             r->seed, r->top1, r->ece,
             r->env_tree ? r->env_tree : "\"commit\":\"abc123def4567890\",\"dirty\":false", r->engine, r->conv,
             r->blas, r->threads, r->env_device ? r->env_device : "\"backend\":\"cpu\"");
    snprintf(path, sizeof path, "%s/result.json", dir);
    tf_spit(path, text);
    if (!r->no_per_class) {
        snprintf(path, sizeof path, "%s/per_class.csv", dir);
        tf_spit(path, r->per_class);
    }
    return dir;
}

static int setup(void **state) {
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/lt_cmp_XXXXXX");
    if (!mkdtemp(g_root)) return -1;
    char p[128];
    snprintf(p, sizeof p, "%s/ref", g_root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/ref/short.csv", g_root);
    tf_spit(p, "protocol,scale,method,metric,expected,tol,why\n"
            "fmnist_lt_r100,short,ce,top1,85.44,0.50,seed spread\n");
    snprintf(p, sizeof p, "%s/ref/ci.csv", g_root);
    tf_spit(p, "fmnist_lt_r100,ci,ce,top1,60.00,9.00,not used: short.csv has top1\n"
            "fmnist_lt_r100,ci,ce,ece,9.90,1.00,ci tolerance used at short\n");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs the comparison with the report going to a file; returns the report
 * (static buffer) and the status. */
static int compare(const char *a, const char *b, lt_compare_summary *s, char *report, size_t cap) {
    char ref[128], out[128];
    snprintf(ref, sizeof ref, "%s/ref", g_root);
    snprintf(out, sizeof out, "%s/report.txt", g_root);
    FILE *f = fopen(out, "w+");
    assert_non_null(f);
    lt_compare_opts o = {.reference_dir = ref, .out = f};
    const int rc = lt_compare_runs(&o, a, b, s);
    rewind(f);
    const size_t n = fread(report, 1, cap - 1, f);
    report[n] = '\0';
    fclose(f);
    return rc;
}

static void test_exact_same(void **state) {
    (void)state;
    run r = base();
    const char *a = write_run("same_a", &r), *b = write_run("same_b", &r);
    lt_compare_summary s;
    char rep[8192];
    assert_int_equal(compare(a, b, &s, rep, sizeof rep), LT_OK);
    assert_int_equal(s.exact, 1);
    /* top1 many medium ece macro_f1 ece_ts + per_class.csv; few and map null in both */
    assert_int_equal(s.n_compared, 7);
    assert_int_equal(s.n_mismatch, 0);
    assert_non_null(strstr(rep, "same fingerprint"));
    assert_non_null(strstr(rep, "per_class.csv identical"));
    assert_non_null(strstr(rep, "compare: ok"));
}

/* Run r written as NA and, with top1 one double up, as NB, compared: an
 * exact comparison with that one mismatch (the report in rep). Returns
 * NA's directory. */
static const char *last_bit_apart(run r, const char *na, const char *nb, char *rep, size_t cap) {
    const char *a = write_run(na, &r);
    r.top1 = 0.85444000000000009;   /* the next double up */
    const char *b = write_run(nb, &r);
    lt_compare_summary s;
    assert_int_equal(compare(a, b, &s, rep, cap), LT_OK);
    assert_int_equal(s.exact, 1);
    assert_int_equal(s.n_mismatch, 1);
    return a;
}

static void test_exact_last_bit(void **state) {
    (void)state;
    char rep[8192];
    last_bit_apart(base(), "bit_a", "bit_b", rep, sizeof rep);
    assert_non_null(strstr(rep, "DIFFERENT"));
    assert_non_null(strstr(rep, "compare: MISMATCH"));
}

static void test_exact_per_class(void **state) {
    (void)state;
    run r = base();
    const char *a = write_run("pc_a", &r);
    r.per_class = "class,count,correct,acc\n0,100,80,0.8\n";
    const char *b = write_run("pc_b", &r);
    r.no_per_class = 1;
    const char *c = write_run("pc_c", &r);
    lt_compare_summary s;
    char rep[8192];
    assert_int_equal(compare(a, b, &s, rep, sizeof rep), LT_OK);
    assert_int_equal(s.n_mismatch, 1);
    assert_non_null(strstr(rep, "per_class.csv DIFFERENT (same length, different bytes)"));
    assert_int_equal(compare(a, c, &s, rep, sizeof rep), LT_OK);
    assert_int_equal(s.n_mismatch, 1);
    assert_non_null(strstr(rep, "per_class.csv DIFFERENT"));
    assert_non_null(strstr(rep, "cannot open"));
}

static void test_tolerance(void **state) {
    (void)state;
    run r = base();
    const char *a = write_run("tol_a", &r);
    r.threads = 16;        /* another fingerprint: tolerance comparison */
    r.top1 += 0.0049;      /* +0.49 points: within 0.50 (short.csv) */
    r.ece += 0.0101;       /* +1.01 points: beyond 1.00 (ci.csv, short.csv has none) */
    const char *b = write_run("tol_b", &r);
    lt_compare_summary s;
    char rep[8192];
    assert_int_equal(compare(a, b, &s, rep, sizeof rep), LT_OK);
    assert_int_equal(s.exact, 0);
    assert_int_equal(s.n_compared, 2);
    assert_int_equal(s.n_mismatch, 1);
    assert_int_equal(s.n_uncompared, 4);   /* many medium macro_f1 ece_ts */
    assert_non_null(strstr(rep, "threads 2, now 16"));
    assert_non_null(strstr(rep, "+0.49 points, tol 0.50"));
    assert_non_null(strstr(rep, "short.csv:2): within"));
    assert_non_null(strstr(rep, "+1.01 points, tol 1.00"));
    assert_non_null(strstr(rep, "ci.csv:2): BEYOND"));
    assert_non_null(strstr(rep, "no tolerance, not compared"));

    /* the other direction is as much a change */
    run t = base();
    t.conv = "im2col-sgemm";
    t.top1 -= 0.0051;
    const char *c = write_run("tol_c", &t);
    assert_int_equal(compare(a, c, &s, rep, sizeof rep), LT_OK);
    assert_int_equal(s.exact, 0);
    assert_int_equal(s.n_mismatch, 1);
    assert_non_null(strstr(rep, "-0.51 points, tol 0.50"));
}

/* Dirty runs: two of the same commit and the same uncommitted changes are
 * the same code, so every number must be identical (a last-bit difference
 * is a mismatch); other changes, no recorded hash (results before it was
 * kept, or a malformed one) or another commit compare within tolerance. */
static void test_dirty_same_changes(void **state) {
    (void)state;
#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
    run r = base();
    r.env_tree = "\"commit\":\"abc123def4567890\",\"dirty\":true,\"dirty_diff_sha256\":\"" H1 "\"";
    char rep[8192];
    const char *a = last_bit_apart(r, "dirty_a", "dirty_b", rep, sizeof rep);
    assert_non_null(strstr(rep, "same uncommitted changes (dirty_diff_sha256 111111111111)"));
    const char *trees[] = {
        "\"commit\":\"abc123def4567890\",\"dirty\":true,\"dirty_diff_sha256\":\"" H2 "\"",
        "\"commit\":\"abc123def4567890\",\"dirty\":true",
        "\"commit\":\"abc123def4567890\",\"dirty\":true,\"dirty_diff_sha256\":\"" H1 "x\"",
        "\"commit\":\"fedcba9876543210\",\"dirty\":true,\"dirty_diff_sha256\":\"" H1 "\""};
    const char *names[] = {"dirty_c", "dirty_d", "dirty_e", "dirty_f"};
    for (int i = 0; i < 4; i++) {
        run t = base();
        t.env_tree = trees[i];
        const char *c = write_run(names[i], &t);
        lt_compare_summary s;
        assert_int_equal(compare(a, c, &s, rep, sizeof rep), LT_OK);
        assert_int_equal(s.exact, 0);
        assert_non_null(strstr(rep, "uncommitted tree"));
        assert_int_equal(s.n_mismatch, 0);
    }
#undef H1
#undef H2
}

/* GPU runs of one experiment in the two layouts: the fingerprint lines
 * name each row's backend (cuda, cuda-nhwc), and the layout is the
 * difference that makes it a tolerance comparison. */
static void test_gpu_layouts(void **state) {
    (void)state;
    run r = base();
    r.conv = "cuda:0";
    r.env_device = "\"backend\":\"cuda\",\"gpu_name\":\"NVIDIA H100 80GB HBM3\",\"gpu_cc\":\"9.0\","
                   "\"cuda_math\":\"fp32\",\"cuda_deterministic\":true";
    const char *a = write_run("gpu_nchw", &r);
    r.env_device = "\"backend\":\"cuda\",\"gpu_name\":\"NVIDIA H100 80GB HBM3\",\"gpu_cc\":\"9.0\","
                   "\"cuda_math\":\"fp32\",\"cuda_deterministic\":true,\"cuda_layout\":\"nhwc\"";
    r.top1 += 0.001;
    const char *b = write_run("gpu_nhwc", &r);
    lt_compare_summary s;
    char rep[8192];
    assert_int_equal(compare(a, b, &s, rep, sizeof rep), LT_OK);
    assert_int_equal(s.exact, 0);
    assert_non_null(strstr(rep, "fingerprint A: engine " LT_ENGINE_VERSION ", cuda:0, BLAS core Cooperlake, 2 threads, "
                                "backend cuda\n"));
    assert_non_null(strstr(rep, "fingerprint B: engine " LT_ENGINE_VERSION ", cuda:0, BLAS core Cooperlake, 2 threads, "
                                "backend cuda-nhwc\n"));
    assert_non_null(strstr(rep, "layout nchw, now nhwc"));
    assert_int_equal(s.n_mismatch, 0);
}

static void test_refusals(void **state) {
    (void)state;
    run r = base();
    const char *a = write_run("ref_a", &r);
    lt_compare_summary s;
    char rep[8192];
    r.seed = 1;
    const char *b = write_run("ref_seed", &r);
    assert_int_equal(compare(a, b, &s, rep, sizeof rep), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "seed 0 against 1"));
    r = base();
    r.protocol_sha = "cccc";
    b = write_run("ref_proto", &r);
    assert_int_equal(compare(a, b, &s, rep, sizeof rep), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "protocol file"));
    r = base();
    r.method = "crt";
    b = write_run("ref_method", &r);
    assert_int_equal(compare(a, b, &s, rep, sizeof rep), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "method 'ce' against 'crt'"));
    r = base();
    r.status = "failed";
    b = write_run("ref_failed", &r);
    assert_int_equal(compare(a, b, &s, rep, sizeof rep), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "did not finish"));
    /* a torn file: refused with its name, not compared */
    char dir[128], p[160];
    snprintf(dir, sizeof dir, "%s/torn", g_root);
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/result.json", dir);
    tf_spit(p, "{\"format\":1,\"status\":\"ok\",\"metr");
    assert_int_equal(compare(a, dir, &s, rep, sizeof rep), LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "torn/result.json"));
    snprintf(dir, sizeof dir, "%s/nothing_here", g_root);
    assert_int_not_equal(compare(a, dir, &s, rep, sizeof rep), LT_OK);
    assert_non_null(strstr(lt_errmsg(), "nothing_here/result.json"));
}

/* The command: exit 0 / 1 / 2 and its usage errors. */
static void test_command(void **state) {
    (void)state;
    run r = base();
    const char *a = write_run("cmd_a", &r), *b = write_run("cmd_b", &r);
    r.top1 = 0.5;
    const char *c = write_run("cmd_c", &r);
    char ref[128];
    snprintf(ref, sizeof ref, "%s/ref", g_root);
    char *ok[] = {"compare", "--reference", ref, (char *)a, (char *)b};
    char *bad[] = {"compare", "--reference", ref, (char *)a, (char *)c};
    char *one[] = {"compare", (char *)a};
    char *three[] = {"compare", (char *)a, (char *)b, (char *)c};
    char *flag[] = {"compare", "--tolerance", "1", (char *)a, (char *)b};
    char *noval[] = {"compare", (char *)a, (char *)b, "--reference"};
    const int r_ok = lt_cmd_compare(5, ok), r_bad = lt_cmd_compare(5, bad), r_one = lt_cmd_compare(2, one),
              r_three = lt_cmd_compare(4, three), r_flag = lt_cmd_compare(5, flag), r_noval = lt_cmd_compare(4, noval);
    assert_int_equal(r_ok, 0);
    assert_int_equal(r_bad, 1);
    assert_int_equal(r_one, 2);
    assert_int_equal(r_three, 2);
    assert_int_equal(r_flag, 2);
    assert_int_equal(r_noval, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_same),    cmocka_unit_test(test_exact_last_bit),
        cmocka_unit_test(test_exact_per_class), cmocka_unit_test(test_tolerance),
        cmocka_unit_test(test_gpu_layouts),
        cmocka_unit_test(test_dirty_same_changes),
        cmocka_unit_test(test_refusals),      cmocka_unit_test(test_command),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
