/* test_cli.c — the command line's contract on hostile input, without
 * training anything:
 *   - every numeric flag of every command parses strictly (decimal integers
 *     for seeds and threads, finite non-negative decimals for time limits and
 *     ratios): "1.5", "nan", "inf", "0x10", " 1", "+1", "-1", "1e3" and ""
 *     are usage errors (exit 2) with a message naming the command, the flag
 *     and the value, and the values that should pass do;
 *   - a run whose result cannot be written (a full disk, here a file-size
 *     limit of 0) is the work failing: exit 1, not 2;
 *   - leaderboard and figures on a results root that does not exist fail
 *     with a message instead of writing an empty leaderboard;
 *   - an empty path argument is a usage error; datasets --data DIR notes
 *     on stderr that DIR does not exist.
 * Commands are called in this process (lt_cmd_*), their stderr captured in a
 * file; the disk-full run happens in a forked child. Runs from the
 * repository root. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd_datasets.h"
#include "cmd_report.h"
#include "cmd_run.h"
#include "cmd_sweep.h"
#include "fixtures_img.h"
#include "lt_backend.h"

static char g_tmp[256];

static int setup(void **state)
{
    (void)state;
    return fx_tmpdir(g_tmp, sizeof g_tmp);
}

static int teardown(void **state)
{
    (void)state;
    fx_rm_rf(g_tmp);
    return 0;
}

/* Runs a command with stderr (and stdout) captured; returns its exit code
 * and the stderr text in err (malloc'd). */
typedef int (*cmd_fn)(int, char **);
static int call(cmd_fn fn, char **argv, char **err)
{
    int argc = 0;
    while (argv[argc]) argc++;
    char path[400];
    snprintf(path, sizeof path, "%s/stderr.txt", g_tmp);
    fflush(stdout);
    fflush(stderr);
    int saved_err = dup(2), saved_out = dup(1);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    dup2(fileno(f), 2);
    int nul = open("/dev/null", O_WRONLY);
    if (nul >= 0) dup2(nul, 1);
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_err, 2);
    dup2(saved_out, 1);
    close(saved_err);
    close(saved_out);
    if (nul >= 0) close(nul);
    fclose(f);
    size_t n;
    assert_int_equal(fx_read_file(path, err, &n), 0);
    return rc;
}

/* fn(argv) must exit 2 and say "ltbench <cmd>: <flag> '<value>': expected". */
static void expect_usage(cmd_fn fn, char **argv, const char *cmd, const char *flag, const char *value)
{
    char *err;
    int rc = call(fn, argv, &err);
    char want[256];
    snprintf(want, sizeof want, "ltbench %s: %s '%s': expected", cmd, flag, value);
    if (rc != 2 || !strstr(err, want))
        fail_msg("%s %s '%s': exit %d, stderr: %s (want exit 2 and \"%s\")", cmd, flag, value, rc, err, want);
    free(err);
}

static const char *const BAD_INTEGERS[] = {"1.5", "nan", "inf", "0x10", " 1", "+1", "-1", "1e3", "", "1,", NULL};

static void test_run_numbers_strict(void **state)
{
    (void)state;
    for (int i = 0; BAD_INTEGERS[i]; i++) {
        char *seed[] = {"run", "--seed", (char *)BAD_INTEGERS[i], NULL};
        expect_usage(lt_cmd_run, seed, "run", "--seed", BAD_INTEGERS[i]);
        char *threads[] = {"run", "--threads", (char *)BAD_INTEGERS[i], NULL};
        expect_usage(lt_cmd_run, threads, "run", "--threads", BAD_INTEGERS[i]);
    }
    char *big[] = {"run", "--seed", "4294967296", NULL};
    expect_usage(lt_cmd_run, big, "run", "--seed", "4294967296");
    char *zero_threads[] = {"run", "--threads", "0", NULL};
    expect_usage(lt_cmd_run, zero_threads, "run", "--threads", "0");
    static const char *const bad_time[] = {"nan", "inf", "-1", "0x10", "1e3", " 5", ".", "1.2.3", "", NULL};
    for (int i = 0; bad_time[i]; i++) {
        char *tl[] = {"run", "--time-limit", (char *)bad_time[i], NULL};
        expect_usage(lt_cmd_run, tl, "run", "--time-limit", bad_time[i]);
    }
    /* accepted values get past the parser: the next complaint is the missing protocol */
    char *good[] = {"run", "--seed", "16", "--threads", "2", "--time-limit", "0.5", NULL};
    char *err;
    assert_int_equal(call(lt_cmd_run, good, &err), 2);
    assert_non_null(strstr(err, "--protocol and --method are required"));
    free(err);
    char *good2[] = {"run", "--seed", "4294967295", "--time-limit", "3600", NULL};
    assert_int_equal(call(lt_cmd_run, good2, &err), 2);
    assert_non_null(strstr(err, "--protocol and --method are required"));
    free(err);
    /* the message names the value, control characters made visible */
    char *ctl[] = {"run", "--seed", "1\x1b[2J", NULL};
    expect_usage(lt_cmd_run, ctl, "run", "--seed", "1\\x1b[2J");
    char *nan[] = {"run", "--seed", "nan", NULL};
    assert_int_equal(call(lt_cmd_run, nan, &err), 2);
    print_message("note: %s", err);
    free(err);
    /* --conv takes the cpu backend's path names only */
    char *conv_bad[] = {"run", "--conv", "wino", NULL};
    assert_int_equal(call(lt_cmd_run, conv_bad, &err), 2);
    assert_non_null(strstr(err, "--conv: conv path 'wino': expected auto, ref, direct or winograd"));
    free(err);
    static const char *const conv_good[] = {"auto", "ref", "direct", "winograd", NULL};
    for (int i = 0; conv_good[i]; i++) {
        char *cv[] = {"run", "--conv", (char *)conv_good[i], NULL};
        assert_int_equal(call(lt_cmd_run, cv, &err), 2);
        assert_non_null(strstr(err, "--protocol and --method are required"));
        /* winograd without AVX-512 runs without it, and says so */
        const int noted = strstr(err, "--conv winograd: the Winograd kernels need AVX-512") != NULL;
        assert_int_equal(noted, !strcmp(conv_good[i], "winograd") && lt_conv_isa() != LT_CONV_ISA_AVX512);
        free(err);
    }
}

static void test_report_numbers_strict(void **state)
{
    (void)state;
    for (int i = 0; BAD_INTEGERS[i]; i++) {
        char *rg[] = {"regress", "--scale", "ci", "--threads", (char *)BAD_INTEGERS[i], NULL};
        expect_usage(lt_cmd_regress, rg, "regress", "--threads", BAD_INTEGERS[i]);
        char *rp[] = {"reproduce", "--method", "ce", "--threads", (char *)BAD_INTEGERS[i], NULL};
        expect_usage(lt_cmd_reproduce, rp, "reproduce", "--threads", BAD_INTEGERS[i]);
    }
    /* seed lists: each seed decimal digits, checked before any work */
    static const char *const bad_lists[] = {"1.5", "0,nan", "0x10", " 1", "+1", "0,-1", "1e3", "0,,1", NULL};
    for (int i = 0; bad_lists[i]; i++) {
        char *err;
        char *rg[] = {"regress", "--scale", "ci", "--seeds", (char *)bad_lists[i], "--results", "/nonexistent",
                      NULL};
        int rc = call(lt_cmd_regress, rg, &err);
        if (rc != 2 || !strstr(err, "ltbench regress: --seeds: seed list") || !strstr(err, bad_lists[i]))
            fail_msg("regress --seeds '%s': exit %d, stderr: %s", bad_lists[i], rc, err);
        free(err);
        char *rp[] = {"reproduce", "--method", "ce", "--seeds", (char *)bad_lists[i], NULL};
        rc = call(lt_cmd_reproduce, rp, &err);
        if (rc != 2 || !strstr(err, "ltbench reproduce: --seeds: seed list"))
            fail_msg("reproduce --seeds '%s': exit %d, stderr: %s", bad_lists[i], rc, err);
        free(err);
    }
    /* a scale that is not one is a usage error too (it names a reference file) */
    char *err;
    char *sc[] = {"regress", "--scale", "../../x", NULL};
    assert_int_equal(call(lt_cmd_regress, sc, &err), 2);
    assert_non_null(strstr(err, "ltbench regress: --scale '../../x': expected ci, short or full"));
    free(err);
}

static void test_build_numbers_strict(void **state)
{
    (void)state;
    for (int i = 0; BAD_INTEGERS[i]; i++) {
        char *seed[] = {"build", "fmnist", "--seed", (char *)BAD_INTEGERS[i], NULL};
        expect_usage(lt_cmd_build, seed, "build", "--seed", BAD_INTEGERS[i]);
    }
    static const char *const bad_ir[] = {"nan", "inf", "0x10", "1e3", "0.5", "-100", " 100", "", NULL};
    for (int i = 0; bad_ir[i]; i++) {
        char *ir[] = {"build", "fmnist", "--ir", (char *)bad_ir[i], NULL};
        expect_usage(lt_cmd_build, ir, "build", "--ir", bad_ir[i]);
    }
}

/* A build tag names an IR with %g: an IR it does not name exactly
 * (100.0000001 would share exp_ir100 with 100) is a usage error giving the
 * IR in full, and IRs in range errors are not rounded (1000001 is not
 * "1e+06"). The data directory is scratch and nothing is fetched. */
static void expect_build_refused(const char *ir, const char *want1, const char *want2)
{
    char data[400];
    snprintf(data, sizeof data, "%s/data_ir", g_tmp);
    char *argv[] = {"build", "fmnist", "--ir", (char *)ir, "--data", data, "--no-fetch", NULL};
    char *err;
    int rc = call(lt_cmd_build, argv, &err);
    if (rc != 2 || !strstr(err, want1) || (want2 && !strstr(err, want2)))
        fail_msg("build --ir %s: exit %d, stderr: %s (want exit 2, \"%s\"%s%s)", ir, rc, err, want1,
                 want2 ? ", " : "", want2 ? want2 : "");
    free(err);
}

static void test_build_ir_exact(void **state)
{
    (void)state;
    expect_build_refused("100.0000001", "imbalance ratio 100.0000001 ", "ir100");
    expect_build_refused("1000001", "imbalance ratio 1000001 outside [1, 1e6]", NULL);
    /* an IR above the head class's 6000 images leaves tail classes empty */
    expect_build_refused("10000", "imbalance ratio 10000 leaves classes with no training images",
                         "the largest IR allowed is 6000");
}

/* A result that cannot be written is the work failing (exit 1). The run is
 * made in a child whose files may not grow (RLIMIT_FSIZE 0, SIGXFSZ
 * ignored, so writes fail with EFBIG as on a full disk); the dataset is a
 * generated one that an empty data directory does not have, so the run
 * fails at once without a download and the runner then has to write the
 * failed result. Its stderr goes through a pipe, which the limit does not
 * touch. */
static void test_disk_full_is_exit_1(void **state)
{
    (void)state;
    char data[400], results[400];
    snprintf(data, sizeof data, "%s/data", g_tmp);
    snprintf(results, sizeof results, "%s/full_disk", g_tmp);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 2);
        dup2(pfd[1], 1);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {0, 0};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(99);
        char *argv[] = {"run", "--protocol", "lvis_lt_fixture", "--method", "ce", "--scale", "ci",
                        "--data", data, "--results", results, "--quiet", NULL};
        _exit(lt_cmd_run(12, argv));
    }
    close(pfd[1]);
    char msg[4096];
    size_t n = 0;
    for (ssize_t k; n < sizeof msg - 1 && (k = read(pfd[0], msg + n, sizeof msg - 1 - n)) > 0;) n += (size_t)k;
    msg[n] = '\0';
    close(pfd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    print_message("note: disk full: exit %d: %s", WEXITSTATUS(status), msg);
    assert_int_equal(WEXITSTATUS(status), 1);
    /* the first file the run writes (its lock, since runs are locked) is
     * named with the reason */
    assert_non_null(strstr(msg, "full_disk/runs/"));
    assert_non_null(strstr(msg, "File too large"));
}

static void test_missing_results_root(void **state)
{
    (void)state;
    char root[400];
    snprintf(root, sizeof root, "%s/no_such_results", g_tmp);
    char *err;
    char *lb[] = {"leaderboard", "--results", root, NULL};
    assert_int_equal(call(lt_cmd_leaderboard, lb, &err), 1);
    char want[600];
    snprintf(want, sizeof want, "ltbench leaderboard: results directory %s: No such file or directory", root);
    assert_non_null(strstr(err, want));
    free(err);
    char *fg[] = {"figures", "--results", root, NULL};
    assert_int_equal(call(lt_cmd_figures, fg, &err), 1);
    snprintf(want, sizeof want, "ltbench figures: results directory %s: No such file or directory", root);
    assert_non_null(strstr(err, want));
    free(err);
    /* nothing was written in its place */
    struct stat st;
    assert_int_not_equal(stat(root, &st), 0);
    /* an existing root without runs/ is simply empty */
    char empty[400];
    snprintf(empty, sizeof empty, "%s/empty_results", g_tmp);
    assert_int_equal(mkdir(empty, 0755), 0);
    char *lb2[] = {"leaderboard", "--results", empty, NULL};
    assert_int_equal(call(lt_cmd_leaderboard, lb2, &err), 0);
    free(err);
}

/* sweep: numbers as strict as everywhere, and its own usage errors */
static void test_sweep_usage(void **state)
{
    (void)state;
    for (int i = 0; BAD_INTEGERS[i]; i++) {
        char *j[] = {"sweep", "--methods", "ce", "--protocols", "fmnist_lt_r100", "-j", (char *)BAD_INTEGERS[i], NULL};
        expect_usage(lt_cmd_sweep, j, "sweep", "-j", BAD_INTEGERS[i]);
        char *t[] = {"sweep", "--threads", (char *)BAD_INTEGERS[i], NULL};
        expect_usage(lt_cmd_sweep, t, "sweep", "--threads", BAD_INTEGERS[i]);
    }
    char *zero[] = {"sweep", "-j", "0", NULL};
    expect_usage(lt_cmd_sweep, zero, "sweep", "-j", "0");
    static const struct { const char *a[12]; const char *want; } cases[] = {
        {{"sweep", "--methods", "ce", NULL}, "--methods and --protocols are required"},
        {{"sweep", "--methods", "ce", "--protocols", "fmnist_lt_r100", "--scale", "huge", NULL}, "--scale 'huge'"},
        {{"sweep", "--methods", "ce", "--protocols", "fmnist_lt_r100", "--executor", "pbs", NULL},
         "--executor 'pbs': expected local or slurm"},
        {{"sweep", "--methods", "ce", "--protocols", "fmnist_lt_r100", "--partition", "gpu", NULL},
         "are for --executor slurm"},
        {{"sweep", "--methods", "ce,nosuch", "--protocols", "fmnist_lt_r100", "--dry-run", NULL},
         "unknown method 'nosuch'"},
        {{"sweep", "--methods", "ce", "--protocols", "fmnist_lt_r100", "--seeds", "0,0", "--dry-run", NULL},
         "--seeds"},
        {{"sweep", "--methods", "ce", "--protocols", "fmnist_lt_r100", "--reuse", "some", NULL}, "--reuse 'some'"},
        {{"sweep", "--bogus", "x", NULL}, "unknown option '--bogus'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err;
        int rc = call(lt_cmd_sweep, (char **)cases[i].a, &err);
        if (rc != 2 || !strstr(err, cases[i].want))
            fail_msg("sweep case %zu: exit %d, stderr: %s (want 2 and \"%s\")", i, rc, err, cases[i].want);
        free(err);
    }
    /* a dry run reads protocols and results only */
    char res[400];
    snprintf(res, sizeof res, "%s/sweep-dry", g_tmp);
    char *dry[] = {"sweep", "--methods", "crt", "--protocols", "fmnist_lt_r100", "--seeds", "0", "--scale", "ci",
                   "--results", res, "--dry-run", NULL};
    char *err;
    assert_int_equal(call(lt_cmd_sweep, dry, &err), 0);
    free(err);
    assert_int_equal(access(res, F_OK), -1);
}

/* --device, --math, --layout, --deterministic of run, reproduce and sweep: bad words
 * and combinations are usage errors naming the choices; a cuda device this
 * machine cannot give (no CUDA module: LTBENCH_CUDA_LIB names nothing) is
 * exit 1 with the loader's message, and nothing is written. */
static void test_device_options(void **state)
{
    (void)state;
    setenv("LTBENCH_CUDA_LIB", "/nonexistent/libltcuda.so", 1);
    char res[400];
    snprintf(res, sizeof res, "%s/dev-results", g_tmp);
    const struct { const char *a[16]; int rc; const char *want; } cases[] = {
        {{"run", "--protocol", "fmnist_lt_r100", "--method", "ce", "--device", "gpu", NULL}, 2,
         "ltbench run: device 'gpu': expected cpu, cuda or cuda:N"},
        {{"run", "--protocol", "fmnist_lt_r100", "--method", "ce", "--device", "cuda:x", NULL}, 2,
         "expected cpu, cuda or cuda:N"},
        {{"run", "--protocol", "fmnist_lt_r100", "--method", "ce", "--device", "cuda", "--math", "fp16", NULL}, 2,
         "ltbench run: math mode 'fp16': expected fp32 or tf32"},
        {{"run", "--protocol", "fmnist_lt_r100", "--method", "ce", "--math", "tf32", NULL}, 2,
         "math mode tf32: only for a cuda device (--device cuda)"},
        {{"run", "--protocol", "fmnist_lt_r100", "--method", "ce", "--device", "cpu", "--deterministic", NULL}, 2,
         "deterministic: only for a cuda device"},
        {{"run", "--protocol", "fmnist_lt_r100", "--method", "ce", "--device", "cuda", "--conv", "ref", NULL}, 2,
         "conv path ref: a cpu backend's option, not for device cuda"},
        {{"run", "--device", NULL}, 2, "--device needs a value"},
        {{"run", "--protocol", "fmnist_lt_r100", "--method", "ce", "--layout", "nhwc", NULL}, 2,
         "ltbench run: layout nhwc: only for a cuda device (--device cuda)"},
        {{"run", "--protocol", "fmnist_lt_r100", "--method", "ce", "--device", "cuda", "--layout", "NHWC", NULL}, 2,
         "ltbench run: layout 'NHWC': expected nchw or nhwc"},
        {{"run", "--layout", NULL}, 2, "--layout needs a value"},
        {{"run", "--protocol", "fmnist_lt_r100", "--method", "ce", "--scale", "ci", "--device", "cuda", "--layout",
          "nhwc", "--results", res, NULL}, 1, "ltbench run: CUDA backend not built"},
        {{"reproduce", "--method", "ce", "--device", "cuda", "--layout", "chwn", NULL}, 2,
         "ltbench reproduce: layout 'chwn': expected nchw or nhwc"},
        {{"sweep", "--methods", "ce", "--protocols", "fmnist_lt_r100", "--layout", "nhwc", NULL}, 2,
         "ltbench sweep: layout nhwc: only for a cuda device"},
        {{"run", "--protocol", "fmnist_lt_r100", "--method", "ce", "--scale", "ci", "--device", "cuda:1", "--math",
          "tf32", "--deterministic", "--results", res, NULL}, 1,
         "ltbench run: CUDA backend not built: no CUDA module at /nonexistent/libltcuda.so (cuda:1 requested)"},
        {{"reproduce", "--method", "ce", "--device", "tpu", NULL}, 2, "ltbench reproduce: device 'tpu': expected"},
        {{"reproduce", "--method", "ce", "--math", "tf32", NULL}, 2, "only for a cuda device"},
        {{"reproduce", "--method", "ce", "--scale", "ci", "--seeds", "0", "--device", "cuda", "--results", res,
          NULL}, 1, "ltbench reproduce: CUDA backend not built"},
        {{"sweep", "--methods", "ce", "--protocols", "fmnist_lt_r100", "--device", "cuda:256", NULL}, 2,
         "ltbench sweep: device 'cuda:256': expected cpu, cuda or cuda:N"},
        {{"sweep", "--methods", "ce", "--protocols", "fmnist_lt_r100", "--deterministic", NULL}, 2,
         "deterministic: only for a cuda device"},
        {{"sweep", "--methods", "ce", "--protocols", "fmnist_lt_r100", "--scale", "ci", "--device", "cuda",
          "--results", res, NULL}, 1, "ltbench sweep: CUDA backend not built"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err;
        cmd_fn fn = !strcmp(cases[i].a[0], "run") ? lt_cmd_run : !strcmp(cases[i].a[0], "sweep") ? lt_cmd_sweep
                                                                                                 : lt_cmd_reproduce;
        int rc = call(fn, (char **)cases[i].a, &err);
        if (rc != cases[i].rc || !strstr(err, cases[i].want))
            fail_msg("device case %zu: exit %d, stderr: %s (want %d and \"%s\")", i, rc, err, cases[i].rc,
                     cases[i].want);
        free(err);
    }
    /* nothing was written for the runs the device refused */
    assert_int_equal(access(res, F_OK), -1);
    /* a look at a cuda plan (--dry-run) needs no device: a note, the plan */
    char *dry[] = {"sweep", "--methods", "crt", "--protocols", "fmnist_lt_r100", "--seeds", "0", "--scale", "ci",
                   "--device", "cuda", "--math", "tf32", "--results", res, "--dry-run", NULL};
    char *err;
    assert_int_equal(call(lt_cmd_sweep, dry, &err), 0);
    assert_non_null(strstr(err, "ltbench sweep: note: CUDA backend not built"));
    free(err);
    assert_int_equal(access(res, F_OK), -1);
    unsetenv("LTBENCH_CUDA_LIB");
}

/* `ltbench list methods`: every method's row carries its "on cuda" mode
 * (lt_method_dev_mode), e.g. camc's CUDA-graph step, bsig's host hooks,
 * ssd's and cbn's host hooks; the legend follows the rows. */
static void test_list_cuda_column(void **state)
{
    (void)state;
    char path[400];
    snprintf(path, sizeof path, "%s/list.txt", g_tmp);
    fflush(stdout);
    const int saved = dup(1);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    dup2(fileno(f), 1);
    char *argv[] = {"list", "methods", NULL};
    const int rc = lt_cmd_list(2, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(f);
    assert_int_equal(rc, 0);
    char *out;
    size_t n;
    assert_int_equal(fx_read_file(path, &out, &n), 0);
    assert_non_null(strstr(out, "methods (name, version, fidelity, stage 1, on cuda, citation):"));
    static const struct { const char *name, *mode; } want[] = {
        {"camc", "step"}, {"ce", "step"}, {"bsig", "host-hooks"}, {"ssd", "host-hooks"}, {"cbn", "host-hooks"}};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        char row[64];
        snprintf(row, sizeof row, "\n  %-22s ", want[k].name);
        const char *r = strstr(out, row);
        if (!r) fail_msg("no row for %s in:\n%s", want[k].name, out);
        const char *end = strchr(r + 1, '\n');
        char mode[32];
        snprintf(mode, sizeof mode, " %s ", want[k].mode);
        const char *m = strstr(r, mode);
        if (!m || (end && m > end)) fail_msg("%s's row does not say '%s':\n%.*s", want[k].name, want[k].mode,
                                             end ? (int)(end - r) : 80, r);
    }
    assert_non_null(strstr(out, "(on cuda: step = the whole training step on the GPU"));
    free(out);
}

/* An empty path argument is a usage error (exit 2) naming it: "" used to
 * become "/result.json", "/ci.csv", "/<dataset>" (export, compare, regress,
 * datasets --data), or a results tree at the file system's root. */
static void test_empty_paths(void **state)
{
    (void)state;
    static const struct {
        cmd_fn fn;
        const char *argv[8];
        const char *msg;
    } cases[] = {
        {lt_cmd_compare, {"compare", "", "", NULL}, "ltbench compare: RUN_A is an empty path"},
        {lt_cmd_compare, {"compare", "results", "", NULL}, "ltbench compare: RUN_B is an empty path"},
        {lt_cmd_compare, {"compare", "--reference", "", "a", "b", NULL}, "ltbench compare: --reference is an empty path"},
        {lt_cmd_regress, {"regress", "--scale", "ci", "--reference", "", NULL},
         "ltbench regress: --reference is an empty path"},
        {lt_cmd_regress, {"regress", "--scale", "ci", "--results", "", NULL},
         "ltbench regress: --results is an empty path"},
        {lt_cmd_leaderboard, {"leaderboard", "--results", "", NULL}, "ltbench leaderboard: --results is an empty path"},
        {lt_cmd_figures, {"figures", "--out", "", NULL}, "ltbench figures: --out is an empty path"},
        {lt_cmd_datasets, {"datasets", "--data", "", NULL}, "ltbench datasets: --data is an empty path"},
        {lt_cmd_fetch, {"fetch", "fmnist", "--from", "", NULL}, "ltbench fetch: --from is an empty path"},
        {lt_cmd_run, {"run", "--results", "", NULL}, "ltbench run: --results is an empty path"},
        {lt_cmd_sweep, {"sweep", "--data", "", NULL}, "ltbench sweep: --data is an empty path"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err;
        if (call(cases[i].fn, (char **)cases[i].argv, &err) != 2) fail_msg("%s: not a usage error", cases[i].msg);
        if (!strstr(err, cases[i].msg)) fail_msg("no '%s' in:\n%s", cases[i].msg, err);
        free(err);
    }
}

/* datasets --data DIR where DIR does not exist: the listing is made (every
 * dataset "not fetched"), with a note on stderr that the directory is not
 * there, so a mistyped --data does not read as an empty data directory. */
static void test_datasets_missing_data_dir(void **state)
{
    (void)state;
    char dir[400], want[600];
    snprintf(dir, sizeof dir, "%s/no_such_data", g_tmp);
    char *argv[] = {"datasets", "--data", dir, NULL};
    char *err;
    assert_int_equal(call(lt_cmd_datasets, argv, &err), 0);
    snprintf(want, sizeof want, "ltbench datasets: note: the data directory %s does not exist\n", dir);
    assert_non_null(strstr(err, want));
    free(err);
    struct stat st;
    assert_int_not_equal(stat(dir, &st), 0);   /* and it was not created */
    char *here[] = {"datasets", "--data", g_tmp, NULL};
    assert_int_equal(call(lt_cmd_datasets, here, &err), 0);
    assert_null(strstr(err, "note:"));
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_numbers_strict),
        cmocka_unit_test(test_report_numbers_strict),
        cmocka_unit_test(test_build_numbers_strict),
        cmocka_unit_test(test_build_ir_exact),
        cmocka_unit_test(test_disk_full_is_exit_1),
        cmocka_unit_test(test_missing_results_root),
        cmocka_unit_test(test_sweep_usage),
        cmocka_unit_test(test_device_options),
        cmocka_unit_test(test_list_cuda_column),
        cmocka_unit_test(test_empty_paths),
        cmocka_unit_test(test_datasets_missing_data_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
