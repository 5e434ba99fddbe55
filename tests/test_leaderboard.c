/* test_leaderboard.c — results/leaderboard.csv, .md and tables/<p>_<s>.tex from
 * result files this test writes itself into a temporary results root:
 * 2 methods x 3 seeds on fmnist_lt_r100/short (one seed failed), plus a
 * full-scale protocol with paper numbers, a single-seed row and an
 * all-failed row. Means and standard deviations below are worked out by
 * hand from the fractions written. */
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
#include "lt.h"
#include "lt_leaderboard.h"
#include "lt_method.h"
#include "lt_runner.h"
#include "tfiles.h"

static char g_root[64];   /* temporary results root */

/* ---- helpers -------------------------------------------------------------- */

/* One result.json in the schema of harness/RESULTS.md. top1 < 0: failed run;
 * g_ece_ts < 0: "ece_ts" null (no validation split). */
static double g_ece_ts = -1;
static void write_run(const char *protocol, const char *scale, const char *method, const char *fidelity, int seed,
                      double top1, double many, double medium, double few, double ece)
{
    char ts[32];
    if (g_ece_ts < 0) snprintf(ts, sizeof ts, "null");
    else snprintf(ts, sizeof ts, "%.17g", g_ece_ts);
    char dir[512], path[600], text[4096];
    snprintf(dir, sizeof dir, "%s/runs/%s/%s/%s/seed%d", g_root, protocol, scale, method, seed);
    tf_mkdirs(dir);
    snprintf(path, sizeof path, "%s/result.json", dir);
    if (top1 < 0) {
        snprintf(text, sizeof text,
                 "{\"format\":1,\"status\":\"failed\",\"reason\":\"loss is NaN in stage 1 epoch 3\","
                 "\"protocol\":{\"name\":\"%s\",\"version\":1,\"sha256\":\"aaaa\"},\"scale\":\"%s\","
                 "\"method\":{\"name\":\"%s\",\"version\":\"1\",\"fidelity\":\"%s\",\"hparams\":{}},\"seed\":%d,"
                 "\"metrics\":{\"top1\":null,\"many\":null,\"medium\":null,\"few\":null,\"ece\":null,"
                 "\"macro_f1\":null,\"map\":null},"
                 "\"env\":{\"commit\":\"abc123def4567890\",\"dirty\":false,\"engine_version\":\"" LT_ENGINE_VERSION "\"}}\n",
                 protocol, scale, method, fidelity, seed);
    } else {
        snprintf(text, sizeof text,
                 "{\"format\":1,\"status\":\"ok\",\"reason\":\"\","
                 "\"protocol\":{\"name\":\"%s\",\"version\":1,\"sha256\":\"aaaa\"},\"scale\":\"%s\","
                 "\"method\":{\"name\":\"%s\",\"version\":\"1\",\"fidelity\":\"%s\",\"hparams\":{}},\"seed\":%d,"
                 "\"dataset\":{\"name\":\"fmnist\",\"manifest_sha256\":\"bbbb\",\"train_size\":14886,"
                 "\"test_size\":10000},"
                 "\"metrics\":{\"top1\":%.17g,\"many\":%.17g,\"medium\":%.17g,\"few\":%.17g,\"ece\":%.17g,"
                 "\"macro_f1\":0.5,\"map\":null,\"ece_ts\":%s},\"group_sizes\":[3,5,2],"
                 "\"timings\":{\"total_s\":12.5,\"stages_s\":[12.0],\"eval_s\":0.5},"
                 "\"env\":{\"commit\":\"abc123def4567890\",\"dirty\":false,\"engine_version\":\"" LT_ENGINE_VERSION "\",\"threads\":2},"
                 "\"started\":\"2024-01-01T00:00:00Z\",\"finished\":\"2024-01-01T00:01:00Z\"}\n",
                 protocol, scale, method, fidelity, seed, top1, many, medium, few, ece, ts);
    }
    tf_spit(path, text);
}

static void write_fixture(void)
{
    /* ce: top1 70 / 72 / 74 -> mean 72.00, sample std 2.00; ece_ts 5 / 6 / 7 */
    g_ece_ts = 0.05;
    write_run("fmnist_lt_r100", "short", "ce", "reconstructed", 0, 0.70, 0.90, 0.60, 0.30, 0.10);
    g_ece_ts = 0.06;
    write_run("fmnist_lt_r100", "short", "ce", "reconstructed", 1, 0.72, 0.91, 0.62, 0.33, 0.12);
    g_ece_ts = 0.07;
    write_run("fmnist_lt_r100", "short", "ce", "reconstructed", 2, 0.74, 0.92, 0.64, 0.36, 0.14);
    g_ece_ts = -1;   /* balanced_softmax: ece_ts null -> n/a */
    /* balanced_softmax: 75 / 78 ok, seed 2 failed -> mean 76.50, std 2.12 */
    write_run("fmnist_lt_r100", "short", "balanced_softmax", "paper", 0, 0.75, 0.85, 0.70, 0.60, 0.05);
    write_run("fmnist_lt_r100", "short", "balanced_softmax", "paper", 1, 0.78, 0.86, 0.72, 0.64, 0.07);
    write_run("fmnist_lt_r100", "short", "balanced_softmax", "paper", 2, -1, 0, 0, 0, 0);
    /* full scale: one seed (no std), paper number 70.36 from the CSV */
    g_ece_ts = 0.10;
    write_run("cifar10_lt_r100", "full", "ce", "official-code", 0, 0.7123, 0.9, 0.7, 0.5, 0.2);
    write_run("cifar10_lt_r100", "full", "crt", "reconstructed", 0, -1, 0, 0, 0, 0);
    g_ece_ts = -1;
    char p[256];
    snprintf(p, sizeof p, "%s/paper_numbers.csv", g_root);
    tf_spit(p, "protocol,method,top1,source\n"
            "cifar10_lt_r100,ce,70.36,\"Cao et al. 2019, Table 2\"\n"
            "fmnist_lt_r100,ce,99.00,not shown: short is not the paper's scale\n");
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/lt_lb_XXXXXX");
    if (!mkdtemp(g_root)) return -1;
    write_fixture();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

static char *build(const char *file)
{
    lt_lb_opts o = {.results_dir = g_root, .methods_dir = "/nonexistent", .log = NULL};
    assert_int_equal(lt_leaderboard_update(&o, NULL, NULL, NULL), LT_OK);
    char p[256];
    snprintf(p, sizeof p, "%s/%s", g_root, file);
    char *t = tf_slurp(p, NULL);
    assert_non_null(t);
    return t;
}

/* An output file as it is now, without rebuilding (malloc'd). */
static char *current(const char *file)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", g_root, file);
    char *t = tf_slurp(p, NULL);
    assert_non_null(t);
    return t;
}

/* The leaderboard is asked to rebuild while n result files are refused: it
 * fails saying so, and leaderboard.csv, .md and both tables are the bytes
 * they were (nothing rewritten without the refused files, no table pruned). */
static void assert_refused_untouched(int n)
{
    static const char *const files[] = {"leaderboard.csv", "leaderboard.md", "tables/fmnist_lt_r100_short.tex",
                                        "tables/cifar10_lt_r100_full.tex"};
    char *before[4], p[256];
    for (int i = 0; i < 4; i++) {   /* NULL: not there (a table pruned earlier) */
        snprintf(p, sizeof p, "%s/%s", g_root, files[i]);
        before[i] = tf_slurp(p, NULL);
    }
    assert_non_null(before[0]);
    lt_lb_opts o = {.results_dir = g_root, .methods_dir = "/nonexistent"};
    assert_int_equal(lt_leaderboard_update(&o, NULL, NULL, NULL), LT_EDATA);
    char want[128];
    snprintf(want, sizeof want, "%d result file%s refused (the first: ", n, n == 1 ? "" : "s");
    if (strncmp(lt_errmsg(), want, strlen(want)) || !strstr(lt_errmsg(), "); nothing written: "))
        fail_msg("message '%s' does not start '%s' or lacks 'nothing written'", lt_errmsg(), want);
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", g_root, files[i]);
        char *after = tf_slurp(p, NULL);
        if (!before[i] != !after || (after && strcmp(before[i], after)))
            fail_msg("%s was rewritten or removed although %d file(s) were refused", files[i], n);
        free(after);
        free(before[i]);
    }
}

/* ---- tests ---------------------------------------------------------------- */

static void test_csv_rows(void **state)
{
    (void)state;
    char *csv = build("leaderboard.csv");
    const char *want =
        LT_LB_CSV_HEADER "\n"
        "cifar10_lt_r100,1,full,ce,official-code,1,71.23,,90.00,70.00,50.00,20.00,10.00,,70.36,0.87,ok,abc123def456,"
        LT_ENGINE_VERSION ",cpu\n"
        "cifar10_lt_r100,1,full,crt,reconstructed,0,,,,,,,,,,,failed,abc123def456," LT_ENGINE_VERSION ",cpu\n"
        "fmnist_lt_r100,1,short,balanced_softmax,paper,2,76.50,2.12,85.50,71.00,62.00,6.00,,,,,failed(1/3),"
        "abc123def456," LT_ENGINE_VERSION ",cpu\n"
        "fmnist_lt_r100,1,short,ce,reconstructed,3,72.00,2.00,91.00,62.00,33.00,12.00,6.00,,,,ok,abc123def456,"
        LT_ENGINE_VERSION ",cpu\n";
    assert_string_equal(csv, want);
    const char *header = "protocol,protocol_version,scale,method,fidelity,n_seeds,top1_mean,top1_std,"
                         "many_mean,medium_mean,few_mean,ece_mean,ece_ts_mean,map_mean,paper_top1,delta_vs_paper,"
                         "status,commit,engine,backend\n";
    assert_int_equal(strncmp(csv, header, strlen(header)), 0);
    free(csv);
}

static void test_rows_numbers(void **state)
{
    (void)state;
    lt_lb_opts o = {.results_dir = g_root, .methods_dir = "/nonexistent"};
    lt_run_set set;
    lt_lb_row *rows;
    int n;
    assert_int_equal(lt_leaderboard_update(&o, &set, &rows, &n), LT_OK);
    assert_int_equal(set.n, 8);
    assert_int_equal(n, 4);
    const lt_lb_row *bs = &rows[2];
    assert_string_equal(bs->method, "balanced_softmax");
    assert_int_equal(bs->n_runs, 3);
    assert_int_equal(bs->n_ok, 2);
    assert_true(fabs(bs->mean[LT_M_TOP1] - 76.5) < 1e-9);
    assert_true(fabs(bs->top1_std - sqrt(4.5)) < 1e-9);   /* (1.5^2 + 1.5^2) / (2-1) */
    assert_string_equal(bs->status, "failed(1/3)");
    const lt_lb_row *ce = &rows[3];
    assert_true(fabs(ce->mean[LT_M_TOP1] - 72.0) < 1e-9);
    assert_true(fabs(ce->top1_std - 2.0) < 1e-9);
    assert_true(isnan(ce->paper_top1));                  /* short scale: no paper number */
    assert_true(isnan(rows[0].top1_std));                /* one seed */
    assert_true(fabs(rows[0].delta_vs_paper - (71.23 - 70.36)) < 1e-9);
    assert_true(isnan(rows[1].mean[LT_M_TOP1]));
    /* the failed run's reason is kept */
    assert_string_equal(set.v[1].reason, "loss is NaN in stage 1 epoch 3");
    lt_run_set_free(&set);
    free(rows);
}

static void test_markdown(void **state)
{
    (void)state;
    char *md = build("leaderboard.md");
    assert_non_null(strstr(md, "\n## fmnist_lt_r100, scale short (protocol version 1)\n"));
    assert_non_null(strstr(md, "\n## cifar10_lt_r100, scale full (protocol version 1)\n"));
    assert_non_null(strstr(md, "| method | backend | fidelity | seeds | top-1 | many | medium | few | ECE | ECE-TS | mAP "
                               "| paper top-1 | Δ paper | status | commit | engine |\n"));
    assert_non_null(strstr(md, "| ce | cpu | reconstructed | 3 | 72.00 ± 2.00 | 91.00 | 62.00 | 33.00 | 12.00 | 6.00 "
                               "|  |  |  | ok | abc123def456 | " LT_ENGINE_VERSION " |\n"));
    /* a null ece_ts of finished seeds is n/a, not a blank */
    assert_non_null(strstr(md, "| balanced_softmax | cpu | paper | 2 | 76.50 ± 2.12 | 85.50 | 71.00 | 62.00 | 6.00 "
                               "| n/a |  |"));
    assert_non_null(strstr(md, "| failed(1/3) |"));
    /* each failed seed with its reason, below the tables */
    assert_non_null(strstr(md, "\n## Failed runs\n"));
    assert_non_null(strstr(md, "| fmnist_lt_r100 | short | balanced_softmax | cpu | 2 | loss is NaN in stage 1 epoch 3 |\n"));
    assert_non_null(strstr(md, "| ce | cpu | official-code | 1 | 71.23 | 90.00 |"));
    assert_non_null(strstr(md, "| 70.36 | 0.87 | ok |"));
    /* cifar sorts before fmnist */
    assert_true(strstr(md, "## cifar10_lt_r100") < strstr(md, "## fmnist_lt_r100"));
    free(md);
}

/* The whole of FILE with every run of whitespace (and markdown line breaks)
 * turned into one space, so wrapped text compares with one-line text. */
static char *squeezed(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) fail_msg("%s: cannot open", file);
    static char raw[1 << 17];
    size_t n = fread(raw, 1, sizeof raw - 1, f);
    raw[n] = 0;
    fclose(f);
    char *out = malloc(n + 1), *w = out;
    for (const char *r = raw; *r; r++) {
        int sp = *r == ' ' || *r == '\n' || *r == '\t';
        if (sp && w > out && w[-1] == ' ') continue;
        *w++ = sp ? ' ' : *r;
    }
    *w = 0;
    return out;
}

/* The leaderboard legend defines the fidelity labels with the README's
 * words (one string, LT_FIDELITY_LEGEND), every method's label is the same in
 * its plugin, the README's method table and its own README, and the legend
 * declares bsig's classifier initialisation. */
static void test_fidelity_legend_matches_readme(void **state)
{
    (void)state;
    char *md = build("leaderboard.md");
    assert_non_null(strstr(md, "Fidelity: " LT_FIDELITY_LEGEND "."));
    assert_non_null(strstr(md, "`bsig` initialises its classifier weights"));
    assert_null(strstr(md, "first principles"));
    free(md);
    char *readme = squeezed("README.md");
    if (!strstr(readme, LT_FIDELITY_LEGEND))
        fail_msg("README.md does not define the fidelity labels as the leaderboard does: %s", LT_FIDELITY_LEGEND);
    for (int i = 0; i < lt_method_count(); i++) {
        const lt_method *m = lt_method_at(i);
        char row[160], own[200];
        snprintf(row, sizeof row, "| `%s` |", m->name);
        const char *at = strstr(readme, row);
        if (!at) {
            fail_msg("README.md: no row for method %s", m->name);
            return; /* cmocka's fail_msg is not declared noreturn here */
        }
        const char *next = strstr(at + 1, "| `");   /* the next row */
        char label[48];
        snprintf(label, sizeof label, "| %s |", m->fidelity);
        const char *hit = strstr(at, label);
        if (!hit || (next && hit > next))
            fail_msg("README.md: method %s's row does not say fidelity %s", m->name, m->fidelity);
        snprintf(own, sizeof own, "methods/%s/README.md", m->name);
        char *mr = squeezed(own);
        char a[80], b[80];
        snprintf(a, sizeof a, "Fidelity: %s", m->fidelity);
        snprintf(b, sizeof b, "Fidelity:** `%s`", m->fidelity);
        if (!strstr(mr, a) && !strstr(mr, b)) fail_msg("%s does not state fidelity %s", own, m->fidelity);
        free(mr);
    }
    free(readme);
    /* pbs follows the official sampler's lambda schedule (specs/methods-a.md 2) */
    for (int i = 0; i < lt_method_count(); i++)
        if (!strcmp(lt_method_at(i)->name, "pbs")) assert_string_equal(lt_method_at(i)->fidelity, "official-code");
}

static void test_latex(void **state)
{
    (void)state;
    char *tex = build("tables/fmnist_lt_r100_short.tex");
    assert_non_null(strstr(tex, "\\begin{tabular}{llrrrrrrr}\n\\toprule\n"
                                "Method & Fidelity & Seeds & Top-1 & Many & Medium & Few & ECE & ECE-TS \\\\\n"
                                "\\midrule\n"));
    assert_non_null(strstr(tex, "\nbalanced\\_softmax & paper & 2/3 & 76.50 $\\pm$ 2.12 & 85.50 & 71.00 & 62.00 & "
                                "6.00 & n/a \\\\\n"));
    assert_non_null(strstr(tex, "\nce & reconstructed & 3 & 72.00 $\\pm$ 2.00 & 91.00 & 62.00 & 33.00 & 12.00 & "
                                "6.00 \\\\\n"));
    assert_non_null(strstr(tex, "\\bottomrule\n\\end{tabular}\n"));
    assert_null(strstr(tex, "balanced_softmax"));   /* every underscore escaped */
    free(tex);
    /* the full-scale table has the paper columns; the failed row shows dashes */
    tex = build("tables/cifar10_lt_r100_full.tex");
    assert_non_null(strstr(tex, "Few & ECE & ECE-TS & Paper & $\\Delta$ \\\\\n"));
    assert_non_null(strstr(tex, "\nce & official-code & 1 & 71.23 & 90.00 & 70.00 & 50.00 & 20.00 & 10.00 & 70.36 & "
                                "+0.87 \\\\\n"));
    assert_non_null(strstr(tex, "\ncrt & reconstructed & 0/1 & -- & -- & -- & -- & -- & -- & -- & -- \\\\\n"));
    free(tex);
}

static void test_deterministic(void **state)
{
    (void)state;
    static const char *const files[] = {"leaderboard.csv", "leaderboard.md", "tables/fmnist_lt_r100_short.tex",
                                        "tables/cifar10_lt_r100_full.tex"};
    char *first[4];
    for (int i = 0; i < 4; i++) first[i] = build(files[i]);
    /* a rebuild, later, from the same inputs: the same bytes */
    sleep(1);
    for (int i = 0; i < 4; i++) {
        char *again = build(files[i]);
        assert_string_equal(first[i], again);
        free(again);
        free(first[i]);
    }
    /* no temp files left behind */
    char p[256];
    snprintf(p, sizeof p, "%s/leaderboard.csv.tmp", g_root);
    assert_int_not_equal(access(p, F_OK), 0);
}

/* Scans with refusals written to a temporary file; returns the scan's
 * n_refused and the refusal lines (malloc'd) in *warn_text. With refusals,
 * the leaderboard must refuse to rebuild and leave its files as they were;
 * without, it is rebuilt. */
static int build_refusing(char **warn_text)
{
    FILE *w = tmpfile();
    assert_non_null(w);
    lt_run_set set;
    assert_int_equal(lt_runs_scan(g_root, w, &set), LT_OK);
    int n = set.n_refused;
    if (n) assert_refused_untouched(n);
    else free(build("leaderboard.csv"));
    lt_run_set_free(&set);
    fflush(w);
    long len = ftell(w);
    rewind(w);
    *warn_text = calloc((size_t)len + 1, 1);
    assert_non_null(*warn_text);
    assert_int_equal(fread(*warn_text, 1, (size_t)len, w), (size_t)len);
    fclose(w);
    return n;
}

/* The fmnist ce row of the fixture, which the refused files below must not move. */
#define CE_ROW "fmnist_lt_r100,1,short,ce,reconstructed,3,72.00,2.00,91.00,62.00,33.00,12.00,6.00,,,,ok,abc123def456," \
               LT_ENGINE_VERSION ",cpu\n"

static void test_corrupt_and_pruned(void **state)
{
    (void)state;
    /* A torn result.json is refused by name: the runner writes it
     * atomically, so it is not a failed run of its path's identity, and the
     * row keeps its three good seeds. */
    char dir[256], p[300];
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce/seed3", g_root);
    tf_mkdirs(dir);
    snprintf(p, sizeof p, "%s/result.json", dir);
    tf_spit(p, "{\"format\":1,\"status\":\"ok\",\"metr");
    char *warn;
    assert_int_equal(build_refusing(&warn), 1);
    char want[400];
    snprintf(want, sizeof want, "refused result file: %s: invalid JSON", p);
    assert_non_null(strstr(warn, want));
    print_message("note: %s", warn);
    free(warn);
    unlink(p);
    rmdir(dir);
    char *csv = build("leaderboard.csv");
    assert_non_null(strstr(csv, CE_ROW));
    free(csv);
    /* a protocol whose runs are gone loses its table */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/runs/cifar10_lt_r100'", g_root);
    assert_int_equal(system(cmd), 0);
    free(build("leaderboard.csv"));
    snprintf(p, sizeof p, "%s/tables/cifar10_lt_r100_full.tex", g_root);
    assert_int_not_equal(access(p, F_OK), 0);
    write_fixture();   /* restore for the other tests */
}

static void test_paper_sources(void **state)
{
    (void)state;
    char mdir[256], p[300];
    snprintf(mdir, sizeof mdir, "%s/methods/crt", g_root);
    tf_mkdirs(mdir);
    snprintf(p, sizeof p, "%s/paper.json", mdir);
    tf_spit(p, "{\"source\": \"Kang et al. 2020\", \"top1\": {\"cifar10_lt_r100\": 73.5}}\n");
    lt_lb_opts o = {.results_dir = g_root};
    char methods[256];
    snprintf(methods, sizeof methods, "%s/methods", g_root);
    o.methods_dir = methods;
    double v;
    assert_int_equal(lt_paper_top1(&o, "cifar10_lt_r100", "crt", &v), LT_OK);
    assert_true(fabs(v - 73.5) < 1e-12);
    assert_int_equal(lt_paper_top1(&o, "cifar10_lt_r100", "ce", &v), LT_OK);   /* CSV */
    assert_true(fabs(v - 70.36) < 1e-12);
    assert_int_equal(lt_paper_top1(&o, "fmnist_lt_r100", "crt", &v), LT_OK);
    assert_true(isnan(v));
    /* a malformed CSV names file and line */
    snprintf(p, sizeof p, "%s/paper_numbers.csv", g_root);
    tf_spit(p, "protocol,method,top1,source\ncifar10_lt_r100,ce,seventy,x\n");
    assert_int_equal(lt_paper_top1(&o, "cifar10_lt_r100", "ce", &v), LT_EDATA);
    char want[400];
    snprintf(want, sizeof want, "%s:2: top1 'seventy' is not a percentage in [0,100]", p);
    assert_string_equal(lt_errmsg(), want);
    write_fixture();
}

/* A result.json at runs/fmnist_lt_r100/short/<dir_method>/seed<seed> with
 * the given JSON fragments for protocol name, scale and method name and
 * metrics (status ok). */
static void write_hostile(const char *dir_method, int seed, const char *proto_json, const char *scale_json,
                          const char *method_json, const char *metrics_json, char *path, size_t cap)
{
    char dir[512], text[4096];
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/%s/seed%d", g_root, dir_method, seed);
    tf_mkdirs(dir);
    snprintf(path, cap, "%s/result.json", dir);
    snprintf(text, sizeof text,
             "{\"format\":1,\"status\":\"ok\",\"reason\":\"\",\"protocol\":{\"name\":%s,\"version\":1,"
             "\"sha256\":\"aaaa\"},\"scale\":%s,\"method\":{\"name\":%s,\"version\":\"1\",\"fidelity\":\"paper\"},"
             "\"seed\":%d,\"metrics\":%s,\"env\":{\"commit\":\"abc123def4567890\",\"dirty\":false,\"engine_version\":\"" LT_ENGINE_VERSION "\"}}\n",
             proto_json, scale_json, method_json, seed, metrics_json);
    tf_spit(path, text);
}

static void remove_hostile(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/runs/fmnist_lt_r100/short/hostile' '%s/escape_short.tex' '%s/tables/x'",
             g_root, g_root, g_root);
    assert_int_equal(system(cmd), 0);
}

/* Result files are shared and untrusted: a protocol, scale or method name
 * with '/', ".." or control characters used to become a path of
 * tables/<protocol>_<scale>.tex (written outside tables/). Each such file is
 * refused by name, nothing is written for it, the others still count, and
 * the command exits 1. */
static void test_hostile_names_refused(void **state)
{
    (void)state;
    static const struct {
        const char *proto, *scale, *method, *key;
    } bad[] = {
        {"\"../escape\"", "\"short\"", "\"ce\"", "key 'protocol.name' is '../escape'"},
        {"\"..\"", "\"short\"", "\"ce\"", "key 'protocol.name' is '..'"},
        {"\"a/b\"", "\"short\"", "\"ce\"", "key 'protocol.name' is 'a/b'"},
        {"\"fmnist\\u001b[31m\"", "\"short\"", "\"ce\"", "key 'protocol.name' is 'fmnist\\x1b[31m'"},
        {"\"fmnist_lt_r100\"", "\"../x\"", "\"ce\"", "key 'scale' is '../x', not ci, short or full"},
        {"\"fmnist_lt_r100\"", "\"huge\"", "\"ce\"", "key 'scale' is 'huge', not ci, short or full"},
        {"\"fmnist_lt_r100\"", "\"short\"", "\"../../ce\"", "key 'method.name' is '../../ce'"},
        {"\"fmnist_lt_r100\"", "\"short\"", "\"ce\\n\"", "key 'method.name' is 'ce\\x0a'"},
        {"\"fmnist_lt_r100\"", "\"short\"", "7", "key 'method.name' is not a string"},
    };
    const int n_bad = (int)(sizeof bad / sizeof bad[0]);
    char paths[16][600];
    for (int i = 0; i < n_bad; i++)
        write_hostile("hostile", i, bad[i].proto, bad[i].scale, bad[i].method,
                      "{\"top1\":0.5,\"many\":0.5,\"medium\":0.5,\"few\":0.5,\"ece\":0.1}", paths[i],
                      sizeof paths[i]);
    char *warn;
    assert_int_equal(build_refusing(&warn), n_bad);
    for (int i = 0; i < n_bad; i++) {
        char want[900];
        snprintf(want, sizeof want, "refused result file: %s: %s", paths[i], bad[i].key);
        if (!strstr(warn, want)) fail_msg("no line '%s' in:\n%s", want, warn);
    }
    print_message("note: %.*s", (int)(strchr(warn, '\n') - warn + 1), warn);
    free(warn);
    /* nothing outside tables/, no row for them, the other rows as before */
    char p[300];
    snprintf(p, sizeof p, "%s/escape_short.tex", g_root);
    assert_int_not_equal(access(p, F_OK), 0);
    char *csv = current("leaderboard.csv");
    assert_non_null(strstr(csv, CE_ROW));
    assert_null(strstr(csv, "escape"));
    assert_null(strstr(csv, "hostile"));
    free(csv);
    /* the command reports them on stderr and fails */
    char *argv[] = {"leaderboard", "--results", g_root, "--methods", "/nonexistent", NULL};
    fflush(stdout);
    assert_int_equal(lt_cmd_leaderboard(5, argv), 1);
    /* a directory name from the path is held to the same rule */
    char dir[400];
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/hostile", g_root);
    remove_hostile();
    write_hostile("hostile", 0, "\"fmnist_lt_r100\"", "\"short\"", "\"ce\"", "{\"top1\":0.5}", p, sizeof p);
    char moved[600];
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/x\x1b", g_root);
    tf_mkdirs(dir);
    snprintf(moved, sizeof moved, "%s/runs/fmnist_lt_r100/x\x1b/ce", g_root);
    tf_mkdirs(moved);
    snprintf(moved, sizeof moved, "%s/runs/fmnist_lt_r100/x\x1b/ce/seed0", g_root);
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/hostile/seed0", g_root);
    assert_int_equal(rename(dir, moved), 0);
    snprintf(p, sizeof p, "%s/result.json", moved);
    tf_spit(p, "{\"format\":1,\"status\":\"ok\",\"metrics\":{\"top1\":0.5}}\n");   /* identity from the path */
    assert_int_equal(build_refusing(&warn), 1);
    assert_non_null(strstr(warn, "with valid names"));
    free(warn);
    snprintf(dir, sizeof dir, "rm -rf '%s/runs/fmnist_lt_r100/x\x1b'", g_root);
    assert_int_equal(system(dir), 0);
    remove_hostile();
}

/* Metrics are fractions in [0,1]; anything else would be averaged in as if
 * it were one (top-1 5.0 = 500%). Refused, naming the file and the key. */
static void test_metric_out_of_range_refused(void **state)
{
    (void)state;
    static const struct {
        const char *metrics, *key;
    } bad[] = {
        {"{\"top1\":5.0}", "key 'metrics.top1' is 5, not a fraction in [0, 1]"},
        {"{\"top1\":0.5,\"many\":-0.1}", "key 'metrics.many' is -0.1, not a fraction in [0, 1]"},
        {"{\"top1\":\"0.5\"}", "key 'metrics.top1' is not a number or null"},
        {"{\"top1\":0.5,\"ece\":1e999}", "key 'metrics.ece' is inf, not a fraction in [0, 1]"},
        {"{\"top1\":true}", "key 'metrics.top1' is not a number or null"},
        {"[0.5]", "key 'metrics' is not an object"},
    };
    const int n_bad = (int)(sizeof bad / sizeof bad[0]);
    char paths[8][600];
    for (int i = 0; i < n_bad; i++)
        write_hostile("hostile", i, "\"fmnist_lt_r100\"", "\"short\"", "\"ce\"", bad[i].metrics, paths[i],
                      sizeof paths[i]);
    char *warn;
    assert_int_equal(build_refusing(&warn), n_bad);
    for (int i = 0; i < n_bad; i++) {
        char want[900];
        snprintf(want, sizeof want, "refused result file: %s: %s", paths[i], bad[i].key);
        if (!strstr(warn, want)) fail_msg("no line '%s' in:\n%s", want, warn);
    }
    free(warn);
    /* the ce row still averages its three good seeds only */
    char *csv = current("leaderboard.csv");
    assert_non_null(strstr(csv, CE_ROW));
    free(csv);
    remove_hostile();
    /* null and absent metrics are "not computed", not refused */
    char p[600];
    write_hostile("hostile", 7, "\"fmnist_lt_r100\"", "\"short\"", "\"hostile\"", "{\"top1\":0.72,\"map\":null}",
                  p, sizeof p);
    assert_int_equal(build_refusing(&warn), 0);
    free(warn);
    remove_hostile();
}

/* protocol.version must be an integer an int holds: tests/fuzz found
 * "version": 444444444453, which the reader converted to int (undefined
 * behaviour), and the leaderboard prints the largest version of a row. A
 * version that is not a number still reads as 0 (unknown). */
static void test_protocol_version_out_of_range_refused(void **state)
{
    (void)state;
    static const struct {
        const char *version, *why;
    } bad[] = {
        {"444444444453", "key 'protocol.version' is 4.44444e+11, not an integer in [0, 2147483647]"},
        {"-1", "key 'protocol.version' is -1, not an integer in [0, 2147483647]"},
        {"1.5", "key 'protocol.version' is 1.5, not an integer in [0, 2147483647]"},
        {"1e999", "key 'protocol.version' is inf, not an integer in [0, 2147483647]"},
    };
    char dir[512], p[600], text[1024];
    snprintf(dir, sizeof dir, "%s/versions/runs/fmnist_lt_r100/short/ce/seed0", g_root);
    tf_mkdirs(dir);
    snprintf(p, sizeof p, "%s/result.json", dir);
    lt_run_record r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "{\"format\":1,\"status\":\"ok\",\"protocol\":{\"version\":%s},"
                 "\"metrics\":{\"top1\":0.5}}\n", bad[i].version);
        tf_spit(p, text);
        assert_int_equal(lt_run_record_read(p, &r), LT_EDATA);
        char want[900];
        snprintf(want, sizeof want, "%s: %s", p, bad[i].why);
        assert_string_equal(lt_errmsg(), want);
    }
    tf_spit(p, "{\"format\":1,\"status\":\"ok\",\"protocol\":{\"version\":2147483647},\"metrics\":{\"top1\":0.5}}\n");
    assert_int_equal(lt_run_record_read(p, &r), LT_OK);
    assert_int_equal(r.protocol_version, 2147483647);
    tf_spit(p, "{\"format\":1,\"status\":\"ok\",\"protocol\":{\"version\":\"1\"},\"metrics\":{\"top1\":0.5}}\n");
    assert_int_equal(lt_run_record_read(p, &r), LT_OK);
    assert_int_equal(r.protocol_version, 0);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/versions'", g_root);
    assert_int_equal(system(cmd), 0);
}

static void test_missing_results_root(void **state)
{
    (void)state;
    char root[128];
    snprintf(root, sizeof root, "%s/absent", g_root);
    lt_lb_opts o = {.results_dir = root};
    assert_int_equal(lt_leaderboard_update(&o, NULL, NULL, NULL), LT_EIO);
    char want[300];
    snprintf(want, sizeof want, "results directory %s: No such file or directory", root);
    assert_string_equal(lt_errmsg(), want);
    assert_int_not_equal(access(root, F_OK), 0);   /* and it was not created */
}

static void test_csv_split(void **state)
{
    (void)state;
    char line[] = "a,\"b,c\",\"say \"\"hi\"\"\",,d\r\n";
    char *f[8];
    assert_int_equal(lt_rep_csv_split(line, f, 8), 5);
    assert_string_equal(f[0], "a");
    assert_string_equal(f[1], "b,c");
    assert_string_equal(f[2], "say \"hi\"");
    assert_string_equal(f[3], "");
    assert_string_equal(f[4], "d");
    char bad[] = "a,\"open";
    assert_int_equal(lt_rep_csv_split(bad, f, 8), -1);
    char buf[16];
    lt_rep_pct(-0.001, buf, sizeof buf);
    assert_string_equal(buf, "0.00");
    lt_rep_pct(NAN, buf, sizeof buf);
    assert_string_equal(buf, "");
}

/* Seeds of different engine versions sum in different orders: never one
 * row. Two ce seeds made by engine 0.1.0 next to the fixture's three of
 * this engine give a second, stale row (after the current one), with the
 * engine column filled, in the CSV, the Markdown and the LaTeX table. */
static void test_engines_separate_and_stale(void **state)
{
    (void)state;
    char dir[512], path[600], text[2048];
    for (int seed = 0; seed < 2; seed++) {
        snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce/seed%d", g_root, seed + 7);
        tf_mkdirs(dir);
        snprintf(path, sizeof path, "%s/result.json", dir);
        snprintf(text, sizeof text,
                 "{\"format\":1,\"status\":\"ok\",\"reason\":\"\",\"protocol\":{\"name\":\"fmnist_lt_r100\","
                 "\"version\":1,\"sha256\":\"aaaa\"},\"scale\":\"short\",\"method\":{\"name\":\"ce\","
                 "\"version\":\"1\",\"fidelity\":\"reconstructed\"},\"seed\":%d,\"metrics\":{\"top1\":0.5},"
                 "\"env\":{\"commit\":\"0123456789abcdef\",\"dirty\":true,\"engine_version\":\"0.1.0\"}}\n",
                 seed + 7);
        tf_spit(path, text);
    }
    lt_lb_opts o = {.results_dir = g_root, .methods_dir = "/nonexistent"};
    lt_run_set set;
    lt_lb_row *rows;
    int n;
    assert_int_equal(lt_leaderboard_update(&o, &set, &rows, &n), LT_OK);
    assert_int_equal(n, 5);
    assert_string_equal(rows[3].method, "ce");
    assert_string_equal(rows[3].engine, LT_ENGINE_VERSION);
    assert_int_equal(rows[3].n_ok, 3);
    assert_int_equal(rows[3].stale, 0);
    assert_true(fabs(rows[3].mean[LT_M_TOP1] - 72.0) < 1e-9);   /* the 0.1.0 seeds are not pooled in */
    assert_string_equal(rows[4].method, "ce");
    assert_string_equal(rows[4].engine, "0.1.0");
    assert_int_equal(rows[4].n_ok, 2);
    assert_int_equal(rows[4].stale, 1);
    assert_string_equal(rows[4].status, "ok;stale");
    assert_string_equal(rows[4].commit, "0123456789ab+dirty");
    lt_run_set_free(&set);
    free(rows);
    char *csv = build("leaderboard.csv");
    assert_non_null(strstr(csv, CE_ROW));
    assert_non_null(strstr(csv, "\nfmnist_lt_r100,1,short,ce,reconstructed,2,50.00,0.00,,,,,,,,,ok;stale,"
                                "0123456789ab+dirty,0.1.0,cpu\n"));
    free(csv);
    char *md = build("leaderboard.md");
    assert_non_null(strstr(md, "| ok;stale | 0123456789ab+dirty | 0.1.0 |\n"));
    assert_non_null(strstr(md, "Status `stale`"));
    free(md);
    char *tex = build("tables/fmnist_lt_r100_short.tex");
    assert_non_null(strstr(tex, "\nce (engine 0.1.0, stale) & reconstructed & 2 & "));
    free(tex);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/runs/fmnist_lt_r100/short/ce/seed7' '%s/runs/fmnist_lt_r100/short/ce/seed8'",
             g_root, g_root);
    assert_int_equal(system(cmd), 0);
}

/* A cuda result as the runner writes it: seed, top-1, math mode, layout
 * (NULL: no key, as every cuda result before --layout). */
static void cuda_result_lay(const char *dir, int seed, const char *top1, const char *math, const char *gpu,
                            const char *layout)
{
    char path[600], text[2048], lay[64] = "";
    if (layout) snprintf(lay, sizeof lay, ",\"cuda_layout\":\"%s\"", layout);
    tf_mkdirs(dir);
    snprintf(path, sizeof path, "%s/result.json", dir);
    snprintf(text, sizeof text,
             "{\"format\":1,\"status\":\"ok\",\"reason\":\"\",\"protocol\":{\"name\":\"fmnist_lt_r100\","
             "\"version\":1,\"sha256\":\"aaaa\"},\"scale\":\"short\",\"method\":{\"name\":\"ce\","
             "\"version\":\"1\",\"fidelity\":\"reconstructed\"},\"seed\":%d,\"metrics\":{\"top1\":%s},"
             "\"env\":{\"commit\":\"abc123def4567890\",\"dirty\":false,\"engine_version\":\"" LT_ENGINE_VERSION "\","
             "\"threads\":2,\"backend\":\"cuda\",\"gpu_name\":\"%s\",\"gpu_cc\":\"9.0\","
             "\"cuda_math\":\"%s\",\"cuda_deterministic\":false%s}}\n",
             seed, top1, gpu, math, lay);
    tf_spit(path, text);
}

static void cuda_result_on(const char *dir, int seed, const char *top1, const char *math, const char *gpu)
{
    cuda_result_lay(dir, seed, top1, math, gpu, NULL);
}

static void cuda_result(const char *dir, int seed, const char *top1, const char *math)
{
    cuda_result_on(dir, seed, top1, math, "NVIDIA H100 80GB HBM3");
}

/* A leaderboard row: method, backend, seeds, mean top-1 and (std >= 0)
 * its sample std. */
static void assert_row(const lt_lb_row *r, const char *method, const char *backend, int n_ok, double top1,
                       double std) {
    assert_string_equal(r->method, method);
    assert_string_equal(r->backend, backend);
    assert_int_equal(r->n_ok, n_ok);
    assert_true(fabs(r->mean[LT_M_TOP1] - top1) < 1e-9);
    if (std >= 0) assert_true(fabs(r->top1_std - std) < 1e-9);
}

/* Cuda results of the same (protocol, scale, method, seed) as a cpu one, in
 * fp32 and in tf32 math, and in fp32 in the NHWC layout: four rows (backend
 * cpu, cuda, cuda-nhwc, cuda-tf32), none pooled into nor written over
 * another. The runner puts cuda runs in <method>@cuda/, tf32 ones in
 * <method>@cuda-tf32/ and NHWC ones in <method>@cuda-nhwc/ (lt_run_dir_on),
 * so the files exist side by side; the row identity takes env.backend,
 * env.cuda_math and env.cuda_layout. */
static void test_cpu_and_cuda_rows(void **state)
{
    (void)state;
    char dir[512];
    /* where the runner puts them */
    char cpu_dir[512], cuda_dir[512], tf32_dir[512], nhwc_dir[512];
    const lt_run_device cpu = {.kind = LT_BACKEND_CPU}, cuda = {.kind = LT_BACKEND_CUDA, .math = LT_CUDA_FP32},
                        tf32 = {.kind = LT_BACKEND_CUDA, .math = LT_CUDA_TF32, .deterministic = 1, .device = 1},
                        nhwc = {.kind = LT_BACKEND_CUDA, .math = LT_CUDA_FP32, .layout = LT_LAYOUT_NHWC};
    assert_int_equal(lt_run_dir_on(g_root, "fmnist_lt_r100", "short", "ce", &cpu, 0, cpu_dir, sizeof cpu_dir), LT_OK);
    assert_int_equal(lt_run_dir_on(g_root, "fmnist_lt_r100", "short", "ce", &cuda, 0, cuda_dir, sizeof cuda_dir),
                     LT_OK);
    assert_int_equal(lt_run_dir_on(g_root, "fmnist_lt_r100", "short", "ce", &tf32, 0, tf32_dir, sizeof tf32_dir),
                     LT_OK);
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce/seed0", g_root);
    assert_string_equal(cpu_dir, dir);   /* cpu: the layout every committed result has */
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce@cuda/seed0", g_root);
    assert_string_equal(cuda_dir, dir);
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce@cuda-tf32/seed0", g_root);
    assert_string_equal(tf32_dir, dir);
    assert_int_equal(lt_run_dir_on(g_root, "fmnist_lt_r100", "short", "ce", &nhwc, 0, nhwc_dir, sizeof nhwc_dir),
                     LT_OK);
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce@cuda-nhwc/seed0", g_root);
    assert_string_equal(nhwc_dir, dir);
    for (int seed = 0; seed < 2; seed++) {
        snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce@cuda/seed%d", g_root, seed);
        cuda_result(dir, seed, seed ? "0.81" : "0.80", "fp32");
        snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce@cuda-tf32/seed%d", g_root, seed);
        cuda_result(dir, seed, seed ? "0.92" : "0.90", "tf32");
        snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce@cuda-nhwc/seed%d", g_root, seed);
        cuda_result_lay(dir, seed, seed ? "0.86" : "0.84", "fp32", "NVIDIA H100 80GB HBM3", "nhwc");
    }
    lt_lb_opts o = {.results_dir = g_root, .methods_dir = "/nonexistent"};
    lt_run_set set;
    lt_lb_row *rows;
    int n;
    assert_int_equal(lt_leaderboard_update(&o, &set, &rows, &n), LT_OK);
    assert_int_equal(set.n, 14);
    assert_int_equal(n, 7);
    /* cpu, cuda, cuda-nhwc, cuda-tf32, each with its own seeds */
    assert_row(&rows[3], "ce", "cpu", 3, 72.0, -1);
    assert_row(&rows[4], "ce", "cuda", 2, 80.5, sqrt(0.5));
    /* the cpu seed 0 file is untouched beside the cuda seed 0 */
    assert_int_equal(set.v[rows[3].first].seed, 0);
    assert_true(fabs(set.v[rows[3].first].metric[LT_M_TOP1] - 0.70) < 1e-12);
    assert_int_equal(set.v[rows[4].first].seed, 0);
    assert_true(fabs(set.v[rows[4].first].metric[LT_M_TOP1] - 0.80) < 1e-12);
    assert_string_equal(set.v[rows[4].first].gpu_name, "NVIDIA H100 80GB HBM3");
    assert_string_equal(set.v[rows[4].first].device_tag, "cuda");
    assert_row(&rows[5], "ce", "cuda-nhwc", 2, 85.0, sqrt(2.0));
    assert_string_equal(set.v[rows[5].first].cuda_layout, "nhwc");
    assert_string_equal(set.v[rows[4].first].cuda_layout, "nchw");   /* no key: NCHW */
    assert_row(&rows[6], "ce", "cuda-tf32", 2, 91.0, sqrt(2.0));
    assert_int_equal(set.v[rows[6].first].seed, 0);
    assert_true(fabs(set.v[rows[6].first].metric[LT_M_TOP1] - 0.90) < 1e-12);
    assert_string_equal(set.v[rows[6].first].backend, "cuda");   /* env.backend as the file says */
    assert_string_equal(set.v[rows[6].first].cuda_math, "tf32");
    lt_run_set_free(&set);
    free(rows);
    char *csv = build("leaderboard.csv");
    assert_non_null(strstr(csv, CE_ROW));
    assert_non_null(strstr(csv, CE_ROW "fmnist_lt_r100,1,short,ce,reconstructed,2,80.50,0.71,,,,,,,,,ok,abc123def456,"
                                LT_ENGINE_VERSION ",cuda\n"
                                "fmnist_lt_r100,1,short,ce,reconstructed,2,85.00,1.41,,,,,,,,,ok,abc123def456,"
                                LT_ENGINE_VERSION ",cuda-nhwc\n"
                                "fmnist_lt_r100,1,short,ce,reconstructed,2,91.00,1.41,,,,,,,,,ok,abc123def456,"
                                LT_ENGINE_VERSION ",cuda-tf32\n"));
    free(csv);
    char *md = build("leaderboard.md");
    assert_non_null(strstr(md, "| ce | cpu | reconstructed | 3 | 72.00 ± 2.00 |"));
    assert_non_null(strstr(md, "| ce | cuda | reconstructed | 2 | 80.50 ± 0.71 |"));
    assert_non_null(strstr(md, "| ce | cuda-tf32 | reconstructed | 2 | 91.00 ± 1.41 |"));
    assert_non_null(strstr(md, "| ce | cuda-nhwc | reconstructed | 2 | 85.00 ± 1.41 |"));
    assert_non_null(strstr(md, "CPU runs and GPU runs of each math mode and layout are separate rows"));
    free(md);
    char *tex = build("tables/fmnist_lt_r100_short.tex");
    assert_non_null(strstr(tex, "\nce & reconstructed & 3 & 72.00 $\\pm$ 2.00 & "));
    assert_non_null(strstr(tex, "\nce (cuda) & reconstructed & 2 & 80.50 $\\pm$ 0.71 & "));
    assert_non_null(strstr(tex, "\nce (cuda-tf32) & reconstructed & 2 & 91.00 $\\pm$ 1.41 & "));
    assert_non_null(strstr(tex, "\nce (cuda-nhwc) & reconstructed & 2 & 85.00 $\\pm$ 1.41 & "));
    free(tex);
    /* a tf32 result in the fp32 directory, and an fp32 one in the tf32
     * directory: refused by name, the rows unchanged */
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce@cuda/seed5", g_root);
    cuda_result(dir, 5, "0.10", "tf32");
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce@cuda-tf32/seed6", g_root);
    cuda_result(dir, 6, "0.10", "fp32");
    /* and a run on the CPU emulator of the CUDA backend: refused, never a row */
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce@cuda/seed9", g_root);
    cuda_result_on(dir, 9, "0.10", "fp32", LT_CUEMU_DEVICE_NAME);
    /* an NHWC result in the NCHW directory, an NCHW one (no key) in the NHWC one */
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce@cuda/seed7", g_root);
    cuda_result_lay(dir, 7, "0.10", "fp32", "NVIDIA H100 80GB HBM3", "nhwc");
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce@cuda-nhwc/seed8", g_root);
    cuda_result(dir, 8, "0.10", "fp32");
    char *warn;
    assert_int_equal(build_refusing(&warn), 5);
    assert_non_null(strstr(warn, "ce@cuda/seed9/result.json: a run on the CPU emulator of the CUDA backend"));
    assert_non_null(strstr(warn, "ce@cuda/seed5/result.json: a cuda-tf32 run (env.backend, env.cuda_math, "
                                 "env.cuda_layout) in a directory of cuda runs"));
    assert_non_null(strstr(warn, "ce@cuda-tf32/seed6/result.json: a cuda run (env.backend, env.cuda_math, "
                                 "env.cuda_layout) in a directory of cuda-tf32 runs"));
    assert_non_null(strstr(warn, "ce@cuda/seed7/result.json: a cuda-nhwc run (env.backend, env.cuda_math, "
                                 "env.cuda_layout) in a directory of cuda runs"));
    assert_non_null(strstr(warn, "ce@cuda-nhwc/seed8/result.json: a cuda run (env.backend, env.cuda_math, "
                                 "env.cuda_layout) in a directory of cuda-nhwc runs"));
    free(warn);
    csv = current("leaderboard.csv");
    assert_non_null(strstr(csv, ",2,80.50,0.71,"));
    assert_non_null(strstr(csv, ",2,91.00,1.41,"));
    assert_non_null(strstr(csv, ",2,85.00,1.41,"));
    free(csv);
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/runs/fmnist_lt_r100/short/ce@cuda' "
             "'%s/runs/fmnist_lt_r100/short/ce@cuda-tf32' '%s/runs/fmnist_lt_r100/short/ce@cuda-nhwc'",
             g_root, g_root, g_root);
    assert_int_equal(system(cmd), 0);
}

/* Copies the fixture's fmnist ce seed 0 result.json to runs/<rel>/result.json. */
static void copy_ce0(const char *rel, char *path, size_t cap)
{
    char dir[512], cmd[1400];
    snprintf(dir, sizeof dir, "%s/runs/%s", g_root, rel);
    tf_mkdirs(dir);
    snprintf(path, cap, "%s/result.json", dir);
    snprintf(cmd, sizeof cmd, "cp '%s/runs/fmnist_lt_r100/short/ce/seed0/result.json' '%s'", g_root, path);
    assert_int_equal(system(cmd), 0);
}

/* A result file names its protocol, scale, method and seed, and so does its
 * path: where they disagree the file was copied from another run, and is
 * refused (naming the key) instead of being counted where its path puts it
 * (a copied seed directory seed7 was a 4th seed of the row, a file copied
 * into another protocol's directory a row there) or where it says it is.
 * The seed must be an integer an int holds (1.5 read as 1, 1e20 as
 * INT_MAX). The same scan feeds regress (test_regress.c). */
static void test_identity_must_match_path(void **state)
{
    (void)state;
    static const struct {
        const char *rel, *why;
    } bad[] = {
        {"fmnist_lt_r100/short/ce/seed7", "key 'seed' is 0, but the path says seed7"},
        {"cifar10_lt_r100/short/ce/seed0", "key 'protocol.name' is 'fmnist_lt_r100', but the path says "
                                          "'cifar10_lt_r100'"},
        {"fmnist_lt_r100/full/ce/seed0", "key 'scale' is 'short', but the path says 'full'"},
        {"fmnist_lt_r100/short/crt/seed0", "key 'method.name' is 'ce', but the path says 'crt'"},
        {"old/fmnist_lt_r100/short/ce/seed0", "not at runs/<protocol>/<scale>/<method>[@<tag>]/seed<k>/result.json"},
    };
    const int n_bad = (int)(sizeof bad / sizeof bad[0]);
    char paths[8][600];
    for (int i = 0; i < n_bad; i++) copy_ce0(bad[i].rel, paths[i], sizeof paths[i]);
    char *warn;
    assert_int_equal(build_refusing(&warn), n_bad);
    for (int i = 0; i < n_bad; i++) {
        char want[900];
        snprintf(want, sizeof want, "refused result file: %s: %s", paths[i], bad[i].why);
        if (!strstr(warn, want)) fail_msg("no line '%s' in:\n%s", want, warn);
    }
    free(warn);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/runs/fmnist_lt_r100/short/ce/seed7' '%s/runs/cifar10_lt_r100/short' "
             "'%s/runs/fmnist_lt_r100/full' '%s/runs/fmnist_lt_r100/short/crt' '%s/runs/old'", g_root, g_root, g_root,
             g_root, g_root);
    assert_int_equal(system(cmd), 0);
    /* seeds that are not an int's integers, or not numbers */
    static const struct {
        const char *seed, *why;
    } seeds[] = {
        {"1.5", "key 'seed' is 1.5, not an integer in [0, 2147483647]"},
        {"1e20", "key 'seed' is 1e+20, not an integer in [0, 2147483647]"},
        {"-1", "key 'seed' is -1, not an integer in [0, 2147483647]"},
        {"\"1\"", "key 'seed' is not a number"},
    };
    char dir[512], p[600], text[1024];
    snprintf(dir, sizeof dir, "%s/seeds/runs/fmnist_lt_r100/short/ce/seed1", g_root);
    tf_mkdirs(dir);
    snprintf(p, sizeof p, "%s/result.json", dir);
    lt_run_record r;
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        snprintf(text, sizeof text, "{\"format\":1,\"status\":\"ok\",\"seed\":%s,\"metrics\":{\"top1\":0.5}}\n",
                 seeds[i].seed);
        tf_spit(p, text);
        assert_int_equal(lt_run_record_read(p, &r), LT_EDATA);
        char want[900];
        snprintf(want, sizeof want, "%s: %s", p, seeds[i].why);
        assert_string_equal(lt_errmsg(), want);
    }
    /* the seed the path gives, and the method without its @<tag>, agree */
    tf_spit(p, "{\"format\":1,\"status\":\"ok\",\"seed\":1,\"method\":{\"name\":\"ce\"},\"metrics\":{\"top1\":0.5}}\n");
    assert_int_equal(lt_run_record_read(p, &r), LT_OK);
    assert_int_equal(r.seed, 1);
    snprintf(dir, sizeof dir, "%s/seeds/runs/fmnist_lt_r100/short/lws@cuda/seed2", g_root);
    tf_mkdirs(dir);
    snprintf(p, sizeof p, "%s/result.json", dir);
    tf_spit(p, "{\"format\":1,\"status\":\"ok\",\"seed\":2,\"method\":{\"name\":\"ce\"},\"metrics\":{\"top1\":0.5},"
               "\"env\":{\"backend\":\"cuda\",\"cuda_math\":\"fp32\"}}\n");
    assert_int_equal(lt_run_record_read(p, &r), LT_EDATA);
    char want[900];
    snprintf(want, sizeof want, "%s: key 'method.name' is 'ce', but the path says 'lws' (a result file copied from "
             "another run?)", p);
    assert_string_equal(lt_errmsg(), want);
    tf_spit(p, "{\"format\":1,\"status\":\"ok\",\"seed\":2,\"method\":{\"name\":\"lws\"},\"metrics\":{\"top1\":0.5},"
               "\"env\":{\"backend\":\"cuda\",\"cuda_math\":\"fp32\"}}\n");
    assert_int_equal(lt_run_record_read(p, &r), LT_OK);
    assert_string_equal(r.method, "lws");
    assert_string_equal(r.device_tag, "cuda");
    /* a file read from elsewhere (compare's run directories) keeps its own identity */
    snprintf(dir, sizeof dir, "%s/seeds/elsewhere", g_root);
    tf_mkdirs(dir);
    snprintf(p, sizeof p, "%s/result.json", dir);
    tf_spit(p, "{\"format\":1,\"status\":\"ok\",\"seed\":3,\"protocol\":{\"name\":\"fmnist_lt_r100\"},\"scale\":\"ci\","
               "\"method\":{\"name\":\"ce\"},\"metrics\":{\"top1\":0.5}}\n");
    assert_int_equal(lt_run_record_read(p, &r), LT_OK);
    assert_int_equal(r.seed, 3);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/seeds'", g_root);
    assert_int_equal(system(cmd), 0);
    /* nothing left over: the rows are the fixture's */
    char *csv = build("leaderboard.csv");
    assert_non_null(strstr(csv, CE_ROW));
    free(csv);
}

/* status "ok" with no top-1 (no metrics, metrics without top1, top1 null)
 * is malformed: it used to count as a finished seed of its row (3 seeds)
 * left out of the mean (of 2). A failed run needs none. */
static void test_ok_without_top1_refused(void **state)
{
    (void)state;
    static const struct {
        const char *metrics, *why;
    } bad[] = {
        {"", "status \"ok\" but key 'metrics.top1' is missing (no 'metrics')"},
        {",\"metrics\":null", "status \"ok\" but key 'metrics.top1' is missing (no 'metrics')"},
        {",\"metrics\":{\"many\":0.5}", "status \"ok\" but key 'metrics.top1' is missing or null"},
        {",\"metrics\":{\"top1\":null,\"many\":0.5}", "status \"ok\" but key 'metrics.top1' is missing or null"},
    };
    const int n_bad = (int)(sizeof bad / sizeof bad[0]);
    char paths[8][600];
    for (int i = 0; i < n_bad; i++) {
        char dir[512], text[1024];
        snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/ce/seed%d", g_root, 10 + i);
        tf_mkdirs(dir);
        snprintf(paths[i], sizeof paths[i], "%s/result.json", dir);
        snprintf(text, sizeof text, "{\"format\":1,\"status\":\"ok\",\"seed\":%d%s}\n", 10 + i, bad[i].metrics);
        tf_spit(paths[i], text);
    }
    char *warn;
    assert_int_equal(build_refusing(&warn), n_bad);
    for (int i = 0; i < n_bad; i++) {
        char want[900];
        snprintf(want, sizeof want, "refused result file: %s: %s", paths[i], bad[i].why);
        if (!strstr(warn, want)) fail_msg("no line '%s' in:\n%s", want, warn);
    }
    free(warn);
    for (int i = 0; i < n_bad; i++) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s/runs/fmnist_lt_r100/short/ce/seed%d'", g_root, 10 + i);
        assert_int_equal(system(cmd), 0);
    }
    char *csv = build("leaderboard.csv");
    assert_non_null(strstr(csv, CE_ROW));
    free(csv);
}

/* A symbolic link to a directory is not followed: `ln -s . runs/loop` made
 * the scan count every run again at each level it went down, and a linked
 * method directory counted its seeds twice. Each skip is said on warn; the
 * rows are the fixture's. */
static void test_symlinked_dirs_skipped(void **state)
{
    (void)state;
    char loop[300], twin[300];
    snprintf(loop, sizeof loop, "%s/runs/loop", g_root);
    snprintf(twin, sizeof twin, "%s/runs/fmnist_lt_r100/short/ce_twin", g_root);
    assert_int_equal(symlink(".", loop), 0);
    assert_int_equal(symlink("ce", twin), 0);
    FILE *w = tmpfile();
    assert_non_null(w);
    lt_run_set set;
    assert_int_equal(lt_runs_scan(g_root, w, &set), LT_OK);
    assert_int_equal(set.n, 8);
    assert_int_equal(set.n_refused, 0);
    lt_run_set_free(&set);
    fflush(w);
    long len = ftell(w);
    rewind(w);
    char text[4096] = "";
    assert_true(len > 0 && len < (long)sizeof text);
    assert_int_equal(fread(text, 1, (size_t)len, w), (size_t)len);
    fclose(w);
    char want[600];
    snprintf(want, sizeof want, "skipped %s: a symbolic link to a directory (the scan does not follow them)\n", loop);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "skipped %s: a symbolic link to a directory (the scan does not follow them)\n", twin);
    assert_non_null(strstr(text, want));
    char *csv = build("leaderboard.csv");
    assert_non_null(strstr(csv, CE_ROW));
    free(csv);
    unlink(loop);
    unlink(twin);
}

/* One refused result file and the leaderboard is not rewritten: written
 * from the others, a row would lose seeds or vanish, and a protocol whose
 * every run is refused would lose its table (pruned). The command names
 * every refused file on stderr and exits 1; the files stay as they were. */
static void test_refused_writes_nothing(void **state)
{
    (void)state;
    free(build("leaderboard.csv"));   /* every table there */
    char p[600];
    snprintf(p, sizeof p, "%s/runs/cifar10_lt_r100/full/ce/seed0/result.json", g_root);
    tf_spit(p, "{\"format\":1,\"status\":\"ok\",\"metr");
    snprintf(p, sizeof p, "%s/runs/cifar10_lt_r100/full/crt/seed0/result.json", g_root);
    tf_spit(p, "{\"format\":1,\"status\":\"ok\",\"seed\":0,\"metrics\":{\"top1\":7}}\n");
    assert_refused_untouched(2);
    snprintf(p, sizeof p, "%s/tables/cifar10_lt_r100_full.tex", g_root);
    assert_int_equal(access(p, F_OK), 0);
    char *argv[] = {"leaderboard", "--results", g_root, "--methods", "/nonexistent", NULL};
    fflush(stdout);
    assert_int_equal(lt_cmd_leaderboard(5, argv), 1);
    assert_int_equal(access(p, F_OK), 0);
    char *csv = current("leaderboard.csv");
    assert_non_null(strstr(csv, "\ncifar10_lt_r100,1,full,ce,official-code,1,71.23,"));
    free(csv);
    write_fixture();
    csv = build("leaderboard.csv");
    assert_non_null(strstr(csv, "\ncifar10_lt_r100,1,full,ce,official-code,1,71.23,"));
    free(csv);
}

/* paper_numbers.csv is read as the reference files are: a second row of
 * one (protocol, method) is refused (the last one silently won), an
 * unterminated quote is said as such (it was "expected 4 fields, got -1"),
 * a line too long for the reader is named (its rest was read as the next
 * line, and that one named). paper.json's numbers are percentages in
 * [0,100] as the CSV's are (1e308 and -500 were shown as paper top-1). */
static void test_paper_numbers_checked(void **state)
{
    (void)state;
    char p[300], want[600];
    snprintf(p, sizeof p, "%s/paper_numbers.csv", g_root);
    lt_lb_opts o = {.results_dir = g_root, .methods_dir = "/nonexistent"};
    double v;
    tf_spit(p, "protocol,method,top1,source\ncifar10_lt_r100,ce,70.36,a\ncifar10_lt_r100,crt,71,b\n"
               "cifar10_lt_r100,ce,99.00,c\n");
    assert_int_equal(lt_paper_top1(&o, "cifar10_lt_r100", "ce", &v), LT_EDATA);
    snprintf(want, sizeof want, "%s:4: duplicate of line 2 (cifar10_lt_r100 ce)", p);
    assert_string_equal(lt_errmsg(), want);
    assert_int_equal(lt_paper_top1(&o, "cifar10_lt_r100", "crt", &v), LT_EDATA);   /* the file, whatever is asked */
    tf_spit(p, "protocol,method,top1,source\ncifar10_lt_r100,ce,70.36,\"Cao et al.\n");
    assert_int_equal(lt_paper_top1(&o, "cifar10_lt_r100", "ce", &v), LT_EDATA);
    snprintf(want, sizeof want, "%s:2: unterminated quote", p);
    assert_string_equal(lt_errmsg(), want);
    char longf[1400];
    memset(longf, 'x', 1100);
    longf[1100] = 0;
    char text[1700];
    snprintf(text, sizeof text, "protocol,method,top1,source\ncifar10_lt_r100,ce,70.36,%s\nfmnist_lt_r100,ce,1,x\n",
             longf);
    tf_spit(p, text);
    assert_int_equal(lt_paper_top1(&o, "cifar10_lt_r100", "ce", &v), LT_EDATA);
    snprintf(want, sizeof want, "%s:2: line longer than 1022 characters", p);
    assert_string_equal(lt_errmsg(), want);
    unlink(p);
    /* paper.json */
    char mdir[300], mj[400], methods[300];
    snprintf(methods, sizeof methods, "%s/methods", g_root);
    snprintf(mdir, sizeof mdir, "%s/crt", methods);
    tf_mkdirs(mdir);
    snprintf(mj, sizeof mj, "%s/paper.json", mdir);
    o.methods_dir = methods;
    static const struct {
        const char *num, *shown;
    } bad[] = {{"1e308", "1e+308"}, {"-500", "-500"}, {"100.5", "100.5"}, {"1e999", "inf"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "{\"source\": \"x\", \"top1\": {\"cifar10_lt_r100\": %s}}\n", bad[i].num);
        tf_spit(mj, text);
        assert_int_equal(lt_paper_top1(&o, "cifar10_lt_r100", "crt", &v), LT_EDATA);
        snprintf(want, sizeof want, "%s: top1.cifar10_lt_r100 is %s, not a percentage in [0,100]", mj, bad[i].shown);
        assert_string_equal(lt_errmsg(), want);
    }
    tf_spit(mj, "{\"source\": \"x\", \"top1\": {\"cifar10_lt_r100\": 100}}\n");
    assert_int_equal(lt_paper_top1(&o, "cifar10_lt_r100", "crt", &v), LT_OK);
    assert_true(v == 100.0);
    unlink(mj);
    write_fixture();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_rows),     cmocka_unit_test(test_rows_numbers),
        cmocka_unit_test(test_markdown),     cmocka_unit_test(test_latex),
        cmocka_unit_test(test_fidelity_legend_matches_readme),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_corrupt_and_pruned),
        cmocka_unit_test(test_paper_sources), cmocka_unit_test(test_csv_split),
        cmocka_unit_test(test_hostile_names_refused), cmocka_unit_test(test_metric_out_of_range_refused),
        cmocka_unit_test(test_missing_results_root), cmocka_unit_test(test_protocol_version_out_of_range_refused),
        cmocka_unit_test(test_engines_separate_and_stale),
        cmocka_unit_test(test_cpu_and_cuda_rows),
        cmocka_unit_test(test_identity_must_match_path),
        cmocka_unit_test(test_ok_without_top1_refused),
        cmocka_unit_test(test_symlinked_dirs_skipped),
        cmocka_unit_test(test_refused_writes_nothing),
        cmocka_unit_test(test_paper_numbers_checked),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
