/* test_figures.c — figure data files and gnuplot rendering, from result
 * files, per_class.csv and events.jsonl this test writes itself:
 * fmnist_lt_r10 and fmnist_lt_r100 at scale short, methods ce and crt,
 * seeds 0 and 1. The expected .dat contents are worked out by hand. With
 * gnuplot in PATH the PNG and PDF files must exist and carry their magic
 * bytes; with PATH emptied the command must say so and still write the data. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lt_figures.h"
#include "tfiles.h"

static char g_root[64];   /* temporary results root; figures go to <root>/out* */
static lt_fig_summary g_sum;   /* of the rendering into <root>/out done in setup */

/* Training counts by class id: not sorted by id, so the figure's ordering
 * by count is visible in the data (class 1 has the most images). */
static const long COUNTS[10] = {100, 6000, 60, 3596, 774, 2156, 278, 1292, 166, 464};
static int g_epochs = 3;   /* stage-1 epochs write_run_on writes to events.jsonl */

/* One run: result.json with the given top-1 and many (medium, few derived),
 * per_class.csv with correct = base - step*class of 1000 test images, and
 * events.jsonl with three stage-1 epochs (ce) or stage-2 epochs only (crt).
 * cuda_math NULL: a cpu run; "fp32" / "tf32": a cuda run of that math mode,
 * in <method>@cuda/ or <method>@cuda-tf32/ as the runner puts it. */
static void write_run_on(const char *protocol, const char *method, const char *cuda_math, int seed, double top1,
                         double many)
{
    char dir[512], p[600], text[4096], med[32] = "null", few[32] = "null", env[128] = "";
    /* fmnist_lt_r10 as the real one: no medium or few class (null groups) */
    if (strcmp(protocol, "fmnist_lt_r10")) {
        snprintf(med, sizeof med, "%.17g", many - 0.3);
        snprintf(few, sizeof few, "%.17g", many - 0.6);
    }
    const char *suffix = !cuda_math ? "" : !strcmp(cuda_math, "tf32") ? "@cuda-tf32" : "@cuda";
    if (cuda_math) snprintf(env, sizeof env, ",\"backend\":\"cuda\",\"cuda_math\":\"%s\"", cuda_math);
    snprintf(dir, sizeof dir, "%s/runs/%s/short/%s%s/seed%d", g_root, protocol, method, suffix, seed);
    tf_mkdirs(dir);
    snprintf(p, sizeof p, "%s/result.json", dir);
    snprintf(text, sizeof text,
             "{\"format\":1,\"status\":\"ok\",\"reason\":\"\",\"protocol\":{\"name\":\"%s\",\"version\":1,"
             "\"sha256\":\"aa\"},\"scale\":\"short\",\"method\":{\"name\":\"%s\",\"version\":\"1\","
             "\"fidelity\":\"reconstructed\",\"hparams\":{}},\"seed\":%d,\"metrics\":{\"top1\":%.17g,"
             "\"many\":%.17g,\"medium\":%s,\"few\":%s,\"ece\":0.1,\"macro_f1\":0.5,\"map\":null},"
             "\"env\":{\"commit\":\"c0ffee\",\"dirty\":false%s}}\n",
             protocol, method, seed, top1, many, med, few, env);
    tf_spit(p, text);

    int ce = !strcmp(method, "ce");
    snprintf(p, sizeof p, "%s/per_class.csv", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "class_id,train_count,test_count,correct,acc,group,weight_norm\n");
    for (int c = 0; c < 10; c++) {
        int correct = ce ? 900 + 10 * seed - 50 * c : 800 + 20 * seed - 20 * c;
        const char *g = COUNTS[c] > 100 ? "many" : COUNTS[c] >= 20 ? "medium" : "few";
        if (ce) fprintf(f, "%d,%ld,1000,%d,%.4f,%s,%.4f\n", c, COUNTS[c], correct, correct / 1000.0, g, 2.0 - 0.1 * c);
        else fprintf(f, "%d,%ld,1000,%d,%.4f,%s,\n", c, COUNTS[c], correct, correct / 1000.0, g);
    }
    fclose(f);

    snprintf(p, sizeof p, "%s/events.jsonl", dir);
    f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "{\"t_ms\":1,\"event\":\"run_start\",\"stage\":null,\"epoch\":null,\"key\":\"seed\",\"value\":%d}\n", seed);
    for (int e = 0; e < g_epochs; e++) {
        fprintf(f,
                "{\"t_ms\":2,\"event\":\"epoch_end\",\"stage\":%d,\"epoch\":%d,\"key\":\"train\","
                "\"value\":{\"loss\":%.4f,\"acc\":%.4f,\"lr\":0.1,\"img_s\":500}}\n",
                ce ? 1 : 2, e, 2.0 + 0.2 * seed - 0.5 * e, 0.3 + 0.02 * seed + 0.2 * e);
    }
    if (ce)   /* a later stage of ce must not leak into the stage-1 curve */
        fprintf(f, "{\"t_ms\":3,\"event\":\"epoch_end\",\"stage\":2,\"epoch\":0,\"key\":\"train\","
                   "\"value\":{\"loss\":9,\"acc\":0.01}}\n");
    fprintf(f, "{\"t_ms\":4,\"event\":\"run_stop\",\"stage\":null,\"epoch\":null,\"key\":\"status\",\"value\":\"ok\"}\n");
    fclose(f);
}

static void write_run(const char *protocol, const char *method, int seed, double top1, double many)
{
    write_run_on(protocol, method, NULL, seed, top1, many);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/lt_fig_XXXXXX");
    if (!mkdtemp(g_root)) return -1;
    for (int s = 0; s < 2; s++) {
        write_run("fmnist_lt_r100", "ce", s, 0.70 + 0.02 * s, 0.90 + 0.02 * s);
        write_run("fmnist_lt_r100", "crt", s, 0.75 + 0.02 * s, 0.80);
        write_run("fmnist_lt_r10", "ce", s, 0.80 + 0.02 * s, 0.95);
        write_run("fmnist_lt_r10", "crt", s, 0.85 + 0.02 * s, 0.85);
    }
    /* one rendering pass shared by the tests that inspect its output */
    char od[128], log[128];
    snprintf(od, sizeof od, "%s/out", g_root);
    snprintf(log, sizeof log, "%s/log_main", g_root);
    FILE *lf = fopen(log, "w");
    if (!lf) return -1;
    lt_fig_opts o = {.results_dir = g_root, .out_dir = od, .scripts_dir = "plots", .log = lf};
    int rc = lt_figures_make(&o, NULL, &g_sum);
    fclose(lf);
    if (rc) {
        printf("lt_figures_make: %s\n", lt_errmsg());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

static char *dat(const char *out, const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s/%s.dat", g_root, out, name);
    char *t = tf_slurp(p, NULL);
    if (!t) fail_msg("missing %s", p);
    return t;
}

/* The data lines of a .dat (comment lines dropped). */
static char *data_lines(char *t)
{
    char *w = t, *r = t;
    while (*r) {
        char *nl = strchr(r, '\n');
        size_t len = nl ? (size_t)(nl - r + 1) : strlen(r);
        if (*r != '#') {
            memmove(w, r, len);
            w += len;
        }
        r += len;
    }
    *w = '\0';
    return t;
}

static int has_magic(const char *path, const char *magic, size_t n)
{
    char buf[16] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t k = fread(buf, 1, n, f);
    fclose(f);
    return k == n && !memcmp(buf, magic, n);
}

/* lt_figures_make with an empty PATH: no gnuplot, the data files only
 * (quick); PATH is restored before returning. */
static int make_data_only(const lt_fig_opts *o, lt_fig_summary *sum)
{
    char *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", "", 1);
    const int rc = lt_figures_make(o, NULL, sum);
    if (saved) setenv("PATH", saved, 1);
    free(saved);
    return rc;
}

/* The data files into <root>/<out> (no gnuplot), the log into log_path. */
static void make(const char *out, const char *log_path, lt_fig_summary *sum)
{
    char od[256];
    snprintf(od, sizeof od, "%s/%s", g_root, out);
    FILE *log = fopen(log_path, "w+");
    assert_non_null(log);
    lt_fig_opts o = {.results_dir = g_root, .out_dir = od, .scripts_dir = "plots", .log = log};
    int rc = make_data_only(&o, sum);
    if (rc) fail_msg("lt_figures_make: %s", lt_errmsg());
    fclose(log);
}

/* ---- tests ---------------------------------------------------------------- */

/* Skips the calling test (CMocka skip()) where gnuplot is not in PATH,
 * saying what goes unchecked. */
static void need_gnuplot(const char *what)
{
    char gp[1024];
    if (lt_find_in_path("gnuplot", gp, sizeof gp) != LT_OK) {
        printf("skip: gnuplot not in PATH; %s not checked\n", what);
        skip();
    }
}

static void test_data_files(void **state)
{
    (void)state;
    assert_int_equal(g_sum.n_data, 2 * 4 + 1);   /* 4 per protocol + 1 imbalance */

    /* per-class: classes by count descending; ce = (905 - 50c)/10 %, crt = (810 - 20c)/10 % */
    char *t = data_lines(dat("out", "perclass_fmnist_lt_r100_short"));
    assert_string_equal(t, "0 1 6000 85.5000 79.0000\n"
                           "1 3 3596 75.5000 75.0000\n"
                           "2 5 2156 65.5000 71.0000\n"
                           "3 7 1292 55.5000 67.0000\n"
                           "4 4 774 70.5000 73.0000\n"
                           "5 9 464 45.5000 63.0000\n"
                           "6 6 278 60.5000 69.0000\n"
                           "7 8 166 50.5000 65.0000\n"
                           "8 0 100 90.5000 81.0000\n"
                           "9 2 60 80.5000 77.0000\n");
    free(t);
    t = dat("out", "perclass_fmnist_lt_r100_short");
    assert_non_null(strstr(t, "\n# rank class_id train_count ce crt\n"));
    free(t);

    /* weight norms: only ce recorded them */
    t = dat("out", "wnorm_fmnist_lt_r100_short");
    assert_non_null(strstr(t, "\n# rank class_id train_count ce\n0 1 6000 1.9000\n1 3 3596 1.7000\n"));
    free(t);

    /* shot groups: means of the two seeds, percent */
    /* shot groups: means of the two seeds and their standard deviation
     * (n-1), percent; the y-range fitted to mean -+ std (20 .. 92.4, a margin
     * of 8% + 1, clamped to 100) */
    t = data_lines(dat("out", "groups_fmnist_lt_r100_short"));
    assert_string_equal(t, "many 91.0000 1.4142 80.0000 0.0000\n"
                           "medium 61.0000 1.4142 50.0000 0.0000\n"
                           "few 31.0000 1.4142 20.0000 0.0000\n");
    free(t);
    t = dat("out", "groups_fmnist_lt_r100_short");
    assert_non_null(strstr(t, "\n# yrange 13 100\n# group ce ce_std crt crt_std\n"));
    free(t);
    /* fmnist_lt_r10 has no medium or few classes: no empty groups */
    t = data_lines(dat("out", "groups_fmnist_lt_r10_short"));
    assert_string_equal(t, "many 95.0000 0.0000 85.0000 0.0000\n");
    free(t);
    t = dat("out", "groups_fmnist_lt_r10_short");
    assert_non_null(strstr(t, "\n# yrange 83 97\n"));
    free(t);

    /* top-1 against imbalance ratio, ascending ratio */
    t = dat("out", "imbalance_fmnist_lt_short");
    assert_non_null(strstr(t, "# ir ce crt\n10 81.0000 86.0000\n100 71.0000 76.0000\n"));
    free(t);

    /* stage-1 curves: ce only (crt logged stage 2 only); ce's stage-2 epoch ignored */
    t = dat("out", "curves_fmnist_lt_r100_short");
    assert_non_null(strstr(t, "# epoch ce_loss ce_acc\n"
                              "1 2.1000 31.0000\n"
                              "2 1.6000 51.0000\n"
                              "3 1.1000 71.0000\n"));
    assert_null(strstr(t, "crt"));
    free(t);
}

static void test_rendered(void **state)
{
    (void)state;
    need_gnuplot("rendering");
    assert_true(g_sum.gnuplot_found);
    assert_int_equal(g_sum.n_figures, 9);
    assert_int_equal(g_sum.n_rendered, 9);
    static const char *const figs[] = {"perclass_fmnist_lt_r100_short", "perclass_fmnist_lt_r10_short",
                                       "groups_fmnist_lt_r100_short",   "wnorm_fmnist_lt_r10_short",
                                       "curves_fmnist_lt_r100_short",   "imbalance_fmnist_lt_short"};
    for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
        char p[300], v[300];
        snprintf(p, sizeof p, "%s/out/%s.png", g_root, figs[i]);
        assert_true(has_magic(p, "\x89PNG\r\n\x1a\n", 8));
        snprintf(p, sizeof p, "%s/out/%s.pdf", g_root, figs[i]);
        snprintf(v, sizeof v, "%s/out/%s.svg", g_root, figs[i]);
        assert_true(has_magic(p, "%PDF", 4) || has_magic(v, "<?xml", 5) || has_magic(v, "<svg", 4));
        FILE *f = fopen(p, "rb");
        if (f) { /* committed figures must not change on a rebuild: no wall-clock date inside */
            static char buf[1 << 16];
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = 0;
            for (size_t k = 0; k + 17 < n; k++)
                if (!memcmp(buf + k, "/CreationDate (D:", 17)) assert_memory_equal(buf + k + 17, "20000101000000", 14);
        }
    }
}

static void test_no_gnuplot(void **state)
{
    (void)state;
    lt_fig_summary sum;
    char log[256];
    snprintf(log, sizeof log, "%s/log3", g_root);
    make("out_nogp", log, &sum);
    assert_false(sum.gnuplot_found);
    assert_int_equal(sum.n_data, 9);
    assert_int_equal(sum.n_rendered, 0);
    char *text = tf_slurp(log, NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "figures: gnuplot not found in PATH, so only the data files are written"));
    assert_non_null(strstr(text, "gnuplot-nox"));
    free(text);
    char p[300];
    snprintf(p, sizeof p, "%s/out_nogp/perclass_fmnist_lt_r100_short.dat", g_root);
    assert_int_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/out_nogp/perclass_fmnist_lt_r100_short.png", g_root);
    assert_int_not_equal(access(p, F_OK), 0);
}

/* Without --out, figures of a results root other than the repository's go
 * to <root>/plots: a reproduce into a scratch directory must not overwrite
 * the committed plots/out. */
static void test_default_out_beside_results(void **state)
{
    (void)state;
    struct stat before;
    const int had = stat("plots/out/perclass_fmnist_lt_r100_short.dat", &before) == 0;
    lt_fig_opts o = {.results_dir = g_root, .scripts_dir = "plots"};
    lt_fig_summary sum;
    const int rc = make_data_only(&o, &sum);
    assert_int_equal(rc, LT_OK);
    assert_int_equal(sum.n_data, 9);
    char p[300];
    snprintf(p, sizeof p, "%s/plots/perclass_fmnist_lt_r100_short.dat", g_root);
    assert_int_equal(access(p, F_OK), 0);
    struct stat after;
    if (had) {
        assert_int_equal(stat("plots/out/perclass_fmnist_lt_r100_short.dat", &after), 0);
        assert_true(after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
    }
}

static void test_bad_per_class(void **state)
{
    (void)state;
    char p[300];
    snprintf(p, sizeof p, "%s/runs/fmnist_lt_r100/short/ce/seed1/per_class.csv", g_root);
    char *orig = tf_slurp(p, NULL);
    tf_spit(p, "class_id,train_count,test_count,correct,acc,group,weight_norm\n0,100,1000,900,0.9,many,1\nx,1,1,1,1,few,1\n");
    char od[256];
    snprintf(od, sizeof od, "%s/out_bad", g_root);
    lt_fig_opts o = {.results_dir = g_root, .out_dir = od, .scripts_dir = "plots"};
    lt_fig_summary sum;
    assert_int_equal(lt_figures_make(&o, NULL, &sum), LT_EDATA);
    char want[400];
    snprintf(want, sizeof want, "%s:3: class_id 'x' is not an integer in [0, 9999999]", p);
    assert_string_equal(lt_errmsg(), want);
    tf_spit(p, orig);
    free(orig);
}

/* Counts are integers in range and a class has at most as many correct as
 * test images: correct > test_count was drawn as 9999.9%, and a
 * train_count of 1e30 or inf went through an undefined double -> long
 * conversion and came out as "class 0 missing". Each names field and line. */
static void test_per_class_counts_checked(void **state)
{
    (void)state;
    static const struct {
        const char *row, *msg;
    } bad[] = {
        {"0,100,1000,1200,0.9,many,1", "correct 1200 is more than test_count 1000"},
        {"0,1e30,1000,900,0.9,many,1", "train_count '1e30' is not an integer in [0, 2147483647]"},
        {"0,inf,1000,900,0.9,many,1", "train_count 'inf' is not an integer in [0, 2147483647]"},
        {"0,100,-1,0,0.9,many,1", "test_count '-1' is not an integer in [0, 2147483647]"},
        {"0,100,1000,2.5,0.9,many,1", "correct '2.5' is not an integer in [0, 2147483647]"},
        {"0,,1000,900,0.9,many,1", "train_count is missing"},
        {"1e300,100,1000,900,0.9,many,1", "class_id '1e300' is not an integer in [0, 9999999]"},
    };
    char p[300], od[256], text[1024], want[600];
    snprintf(p, sizeof p, "%s/runs/fmnist_lt_r100/short/ce/seed1/per_class.csv", g_root);
    snprintf(od, sizeof od, "%s/out_counts", g_root);
    char *orig = tf_slurp(p, NULL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = (size_t)snprintf(text, sizeof text, "class_id,train_count,test_count,correct,acc,group,"
                                      "weight_norm\n%s\n", bad[i].row);
        for (int c = 1; c < 10; c++)   /* the other classes of the protocol, fine */
            len += (size_t)snprintf(text + len, sizeof text - len, "%d,%d,1000,500,0.5,few,1\n", c, 12 - c);
        tf_spit(p, text);
        lt_fig_opts o = {.results_dir = g_root, .out_dir = od, .scripts_dir = "plots"};
        lt_fig_summary sum;
        assert_int_equal(lt_figures_make(&o, NULL, &sum), LT_EDATA);
        snprintf(want, sizeof want, "%s:2: %s", p, bad[i].msg);
        assert_string_equal(lt_errmsg(), want);
    }
    /* correct == test_count and an absent correct (acc then) are fine */
    size_t len = (size_t)snprintf(text, sizeof text, "class_id,train_count,test_count,correct,acc,group,weight_norm\n"
                                  "0,100,1000,1000,1,many,1\n1,50,1000,,0.5,medium,1\n");
    for (int c = 2; c < 10; c++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%d,%d,1000,500,0.5,few,1\n", c, 12 - c);
    tf_spit(p, text);
    lt_fig_opts o = {.results_dir = g_root, .out_dir = od, .scripts_dir = "plots"};
    lt_fig_summary sum;
    assert_int_equal(lt_figures_make(&o, NULL, &sum), LT_OK);
    tf_spit(p, orig);
    free(orig);
}

/* A shared result.json whose scale is "x/../../../escape" used to make the
 * figure base name groups_<protocol>_x/../../../escape: its .dat written
 * (parent directories created on the way) outside the output directory,
 * and the .png/.pdf/.svg of that name deleted first when gnuplot is there.
 * The file is refused by name and nothing is written at all: not outside
 * the output directory, and (as the leaderboard does) not the other runs'
 * figures either, which would lose the refused runs from figures already
 * made. */
static void test_hostile_result_refused(void **state)
{
    (void)state;
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/evil/seed0", g_root);
    tf_mkdirs(dir);
    snprintf(p, sizeof p, "%s/result.json", dir);
    tf_spit(p, "{\"format\":1,\"status\":\"ok\",\"reason\":\"\",\"protocol\":{\"name\":\"fmnist_lt_r100\"},"
            "\"scale\":\"x/../../../escape\",\"method\":{\"name\":\"evil\"},\"seed\":0,"
            "\"metrics\":{\"top1\":0.5,\"many\":0.5,\"medium\":0.5,\"few\":0.5}}\n");
    /* a file the hostile name points at, which must survive */
    char victim[300], escaped[300];
    snprintf(victim, sizeof victim, "%s/escape.png", g_root);
    tf_spit(victim, "precious");
    snprintf(escaped, sizeof escaped, "%s/escape.dat", g_root);
    char od[256], wlog[256];
    snprintf(od, sizeof od, "%s/out_hostile/deep", g_root);
    snprintf(wlog, sizeof wlog, "%s/warn_hostile", g_root);
    FILE *w = fopen(wlog, "w+");
    assert_non_null(w);
    lt_fig_opts o = {.results_dir = g_root, .out_dir = od, .scripts_dir = "plots", .warn = w};
    lt_fig_summary sum;
    const int rc = make_data_only(&o, &sum);
    fclose(w);
    /* the refused file is removed before any assert, so that the cases after
     * this one see the honest runs alone even when one fails */
    unlink(p);
    rmdir(dir);
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_r100/short/evil", g_root);
    rmdir(dir);
    assert_int_equal(rc, LT_EDATA);
    assert_non_null(strstr(lt_errmsg(), "1 result file refused"));
    assert_non_null(strstr(lt_errmsg(), "nothing written"));
    assert_int_equal(sum.n_refused, 1);
    assert_int_equal(sum.n_data, 0);
    assert_int_not_equal(access(od, F_OK), 0);   /* not even the output directory */
    char *text = tf_slurp(wlog, NULL);
    assert_non_null(text);
    char want[800];
    snprintf(want, sizeof want, "refused result file: %s: key 'scale' is 'x/../../../escape', not ci, short or full", p);
    assert_non_null(strstr(text, want));
    print_message("note: %s", text);
    free(text);
    assert_int_not_equal(access(escaped, F_OK), 0);
    char *v = tf_slurp(victim, NULL);
    assert_non_null(v);
    assert_string_equal(v, "precious");
    free(v);
    unlink(victim);
}

/* Cuda runs of ce beside the cpu ones, in fp32 and in tf32 math: each its
 * own series, named as its run directory ("ce@cuda", "ce@cuda-tf32"), with
 * its own numbers (never pooled with the cpu runs or each other). */
static void test_cuda_series(void **state)
{
    (void)state;
    write_run_on("fmnist_lt_r100", "ce", "fp32", 0, 0.60, 0.85);
    write_run_on("fmnist_lt_r100", "ce", "tf32", 0, 0.65, 0.95);
    lt_fig_summary sum;
    char log[256];
    snprintf(log, sizeof log, "%s/log_cuda", g_root);
    make("out_cuda", log, &sum);
    assert_int_equal(sum.n_refused, 0);
    /* many / medium / few of the one seed each: 85 / 55 / 25 (fp32) and
     * 95 / 65 / 35 (tf32), beside the cpu means of before */
    char *t = dat("out_cuda", "groups_fmnist_lt_r100_short");
    assert_non_null(strstr(t, "\n# group ce ce_std ce@cuda ce@cuda_std ce@cuda-tf32 ce@cuda-tf32_std crt crt_std\n"
                              "many 91.0000 1.4142 85.0000 0.0000 95.0000 0.0000 80.0000 0.0000\n"
                              "medium 61.0000 1.4142 55.0000 0.0000 65.0000 0.0000 50.0000 0.0000\n"
                              "few 31.0000 1.4142 25.0000 0.0000 35.0000 0.0000 20.0000 0.0000\n"));
    free(t);
    /* top-1: cuda runs of fmnist_lt_r100 only ('?' at ratio 10) */
    t = dat("out_cuda", "imbalance_fmnist_lt_short");
    assert_non_null(strstr(t, "\n# ir ce ce@cuda ce@cuda-tf32 crt\n10 81.0000 ? ? 86.0000\n"
                              "100 71.0000 60.0000 65.0000 76.0000\n"));
    free(t);
    /* per class: the cuda runs are seed 0's numbers, the cpu column the two seeds' mean */
    t = dat("out_cuda", "perclass_fmnist_lt_r100_short");
    assert_non_null(strstr(t, "\n# rank class_id train_count ce ce@cuda ce@cuda-tf32 crt\n"
                              "0 1 6000 85.5000 85.0000 85.0000 79.0000\n"));
    free(t);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/runs/fmnist_lt_r100/short/ce@cuda' '%s/runs/fmnist_lt_r100/short/ce@cuda-tf32'",
             g_root, g_root);
    assert_int_equal(system(cmd), 0);
}

/* A one-epoch run (the GPU smoke run of a full-scale model is one): its
 * curve is one point, an empty x range to gnuplot unless curves.gp widens
 * it; every figure must still render. Its own results root. */
static void test_one_epoch_rendered(void **state)
{
    (void)state;
    need_gnuplot("rendering");
    char saved[sizeof g_root];
    memcpy(saved, g_root, sizeof g_root);
    snprintf(g_root, sizeof g_root, "/tmp/lt_fig1_XXXXXX");
    assert_non_null(mkdtemp(g_root));
    g_epochs = 1;
    write_run("fmnist_lt_r100", "ce", 0, 0.70, 0.90);
    g_epochs = 3;
    char od[128], log[128];
    snprintf(od, sizeof od, "%s/out", g_root);
    snprintf(log, sizeof log, "%s/log", g_root);
    FILE *lf = fopen(log, "w+");
    assert_non_null(lf);
    lt_fig_opts o = {.results_dir = g_root, .out_dir = od, .scripts_dir = "plots", .log = lf};
    lt_fig_summary sum;
    const int rc = lt_figures_make(&o, NULL, &sum);
    fclose(lf);
    if (rc) fail_msg("lt_figures_make: %s", lt_errmsg());
    assert_true(sum.n_figures > 0);
    assert_int_equal(sum.n_rendered, sum.n_figures);
    char p[300];
    snprintf(p, sizeof p, "%s/curves_fmnist_lt_r100_short.png", od);
    assert_true(has_magic(p, "\x89PNG\r\n\x1a\n", 8));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    assert_int_equal(system(cmd), 0);
    memcpy(g_root, saved, sizeof g_root);
}

/* plots/palette.gp: the table's colours, and a stable hash colour for a
 * method not in the table. */
static void test_palette(void **state)
{
    (void)state;
    need_gnuplot("palette");
    char out[2][128];
    for (int i = 0; i < 2; i++) {
        FILE *p = popen("gnuplot -e 'load \"plots/palette.gp\"; print method_colour(\"ce\"), \" \", "
                        "method_colour(\"crt\"), \" \", method_colour(\"some_new_method\")' 2>&1", "r");
        assert_non_null(p);
        assert_non_null(fgets(out[i], sizeof out[i], p));
        assert_int_equal(pclose(p), 0);
    }
    assert_string_equal(out[0], out[1]);
    char ce[16], crt[16], other[16];
    assert_int_equal(sscanf(out[0], "%15s %15s %15s", ce, crt, other), 3);
    assert_string_equal(ce, "#000000");
    assert_string_equal(crt, "#0072B2");
    assert_int_equal(strlen(other), 7);
    assert_int_equal(other[0], '#');
    assert_int_equal(strspn(other + 1, "0123456789abcdef"), 6);
}

/* Every registered method (a folder under methods/) has its own entry in
 * plots/palette.gp: an Okabe-Ito colour, and no two methods share a
 * (colour, pattern) pair or a (colour, point) pair, so each is distinguishable
 * in the bar and line figures. Read from the file, so no gnuplot is needed;
 * groups.gp uses the pattern and the std column. */
static void test_palette_distinct(void **state)
{
    (void)state;
    FILE *f = fopen("plots/palette.gp", "r");
    assert_non_null(f);
    static char pal[16384];
    pal[fread(pal, 1, sizeof pal - 1, f)] = 0;
    fclose(f);
    static const char *const okabe_ito[8] = {"#000000", "#E69F00", "#56B4E9", "#009E73",
                                             "#F0E442", "#0072B2", "#D55E00", "#CC79A7"};
    glob_t g;
    assert_int_equal(glob("methods/*/method.c", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 13);
    char col[64][8], pat[64][8], pt[64][8], name[64][64];
    size_t n = g.gl_pathc;
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        const char *d = g.gl_pathv[i] + strlen("methods/");
        size_t l = strcspn(d, "/");
        snprintf(name[i], sizeof name[i], "%.*s", (int)l, d);
        char key[96];
        const char *at;
        snprintf(key, sizeof key, "\nc_%s ", name[i]);
        if (!(at = strstr(pal, key))) fail_msg("plots/palette.gp: no colour c_%s", name[i]);
        assert_int_equal(sscanf(strchr(at, '"'), "\"%7[^\"]\"", col[i]), 1);
        int ok = 0;
        for (int k = 0; k < 8; k++) ok |= !strcmp(col[i], okabe_ito[k]);
        if (!ok) fail_msg("plots/palette.gp: c_%s = %s is not an Okabe-Ito colour", name[i], col[i]);
        snprintf(key, sizeof key, " p_%s ", name[i]);
        if (!(at = strstr(pal, key))) fail_msg("plots/palette.gp: no pattern p_%s", name[i]);
        assert_int_equal(sscanf(strchr(at, '=') + 1, "%7s", pat[i]), 1);
        snprintf(key, sizeof key, " pt_%s ", name[i]);
        if (!(at = strstr(pal, key))) fail_msg("plots/palette.gp: no point type pt_%s", name[i]);
        assert_int_equal(sscanf(strchr(at, '=') + 1, "%7s", pt[i]), 1);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            if (!strcmp(col[i], col[j]) && !strcmp(pat[i], pat[j]))
                fail_msg("plots/palette.gp: %s and %s share colour %s and pattern %s", name[i], name[j], col[i], pat[i]);
            if (!strcmp(col[i], col[j]) && !strcmp(pt[i], pt[j]))
                fail_msg("plots/palette.gp: %s and %s share colour %s and point %s", name[i], name[j], col[i], pt[i]);
        }
    globfree(&g);
    f = fopen("plots/groups.gp", "r");
    assert_non_null(f);
    static char gp[4096];
    gp[fread(gp, 1, sizeof gp - 1, f)] = 0;
    fclose(f);
    assert_non_null(strstr(gp, "method_pattern("));
    assert_non_null(strstr(gp, "errorbars"));
    assert_null(strstr(gp, "set yrange [0:100]"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_files),
        cmocka_unit_test(test_rendered),
        cmocka_unit_test(test_no_gnuplot),
        cmocka_unit_test(test_bad_per_class),
        cmocka_unit_test(test_per_class_counts_checked),
        cmocka_unit_test(test_default_out_beside_results),
        cmocka_unit_test(test_palette),
        cmocka_unit_test(test_palette_distinct),
        cmocka_unit_test(test_hostile_result_refused),
        cmocka_unit_test(test_cuda_series),
        cmocka_unit_test(test_one_epoch_rendered),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
