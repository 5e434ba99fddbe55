/* test_sweep.c — `ltbench sweep` (harness/lt_sweep.h).
 *
 * Without data (always run):
 *   - grid expansion and dependency order: a decoupled method brings the
 *     `ce` run of its protocol, scale and seed into the plan once, before
 *     it, however many methods share it; unknown methods, bad seed lists
 *     and repeated protocols are refused by name;
 *   - the skip rule on fixture result files: current (re-used), another
 *     thread count (stale; re-used only under --reuse any), failed, other
 *     protocol file, other method version.
 * On the small fmnist copy of tests/test_runner.c (skips without the Debian
 * Fashion-MNIST package):
 *   - the local executor, -j 2, grid {ce, crt, test_crash, test_dec_crash}
 *     x seeds {0, 1}: each ce trains once (its log has one first epoch, no
 *     crt log trains a stage 1), the crashing method fails with its reason
 *     and the others finish, the method whose stage 1 is test_crash is
 *     skipped without being tried, and a second sweep re-uses everything;
 *   - a sweep stopped by SIGINT and then one killed by SIGKILL, each while a
 *     run trains, leave no process holding a lock and resume to completion
 *     with the interrupted run continuing from its checkpoint;
 *   - two sweeps over overlapping grids at once: every run is trained once
 *     (one first epoch in its log, however many sweeps asked) and every
 *     result reads back ok.
 *   - the run lock across hosts: a lock file naming a holder on another host
 *     with a fresh heartbeat, although the flock was free, is refused
 *     loudly (the file system's locks do not reach across hosts); with an
 *     old heartbeat it is taken over with a note; the file names pid and host.
 * With Slurm (skips with the script's reason where slurm-wlm / munge are
 * missing or cannot start): tests/slurm/run_slurm_test.sh.
 *
 * Runs are made by forked children of this process (helpers that call
 * lt_cmd_sweep, which forks the runs); this process runs no engine compute.
 * Runs from the repository root. Runs made from a dirty tree are "stale"
 * under the strict rule, so the executor tests use --reuse any: the strict
 * rule itself is the fixture test's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cblas.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd_sweep.h"
#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt.h"
#include "lt_run_internal.h"   /* the run lock, white-box */
#include "lt_runner.h"
#include "lt_sweep.h"
#include "tfiles.h"

const lt_method *lt_method_test_crash(void);

static char g_proto[512], g_proto_long[512];

/* a decoupled method whose stage 1 is the crashing one: its dependents are skipped */
static const lt_method dec_crash_m = {.abi = LT_METHOD_ABI, .name = "test_dec_crash", .version = "1",
                                      .cite = "none", .fidelity = "reconstructed", .defaults = "{}",
                                      .stage1_from = "test_crash"};

static int setup(void **state)
{
    if (fx_scratch_setup(state)) return -1;
    /* the tiny protocol, and one with more epochs, renamed: a run long
     * enough to be interrupted while it trains */
    if (fx_tiny_protocol(fx_scratch, g_proto, sizeof g_proto) ||
        fx_tiny_protocol_as(fx_scratch, "fmnist_lt_tiny8", 8, g_proto_long, sizeof g_proto_long))
        return -1;
    if (lt_method_register(lt_method_test_crash()) || lt_method_register(&dec_crash_m)) return -1;
    return 0;
}

static int teardown(void **state)
{
    fx_scratch_teardown(state);   /* what it cannot remove is not reported */
    return 0;
}

static int count_in(const char *path, const char *needle);

static int find(const lt_sweep_plan *pl, const char *method, uint64_t seed)
{
    for (int i = 0; i < pl->n_runs; i++)
        if (!strcmp(pl->runs[i].m->name, method) && pl->runs[i].seed == seed) return i;
    return -1;
}

/* ---- plan ------------------------------------------------------------------------ */

static void test_plan_grid_and_order(void **state)
{
    (void)state;
    char root[400];
    snprintf(root, sizeof root, "%s/plan", fx_scratch);
    lt_sweep_opts o = {.methods = "crt,lws,ce", .protocols = g_proto, .seeds = "0,1", .scale = "ci",
                       .results = root, .threads = 1};
    lt_sweep_plan pl;
    assert_int_equal(lt_sweep_plan_make(&o, &pl), LT_OK);
    assert_int_equal(pl.n_runs, 6);   /* ce x2 once, although crt and lws both need it */
    for (uint64_t s = 0; s < 2; s++) {
        int ce = find(&pl, "ce", s), crt = find(&pl, "crt", s), lws = find(&pl, "lws", s);
        assert_true(ce >= 0 && crt >= 0 && lws >= 0);
        assert_int_equal(pl.runs[ce].level, 0);
        assert_int_equal(pl.runs[ce].dep, -1);
        assert_int_equal(pl.runs[ce].implied, 0);   /* asked for, although after crt */
        assert_int_equal(pl.runs[crt].dep, ce);
        assert_int_equal(pl.runs[lws].dep, ce);
        assert_int_equal(pl.runs[crt].level, 1);
        assert_true(ce < crt && ce < lws);
    }
    /* ordered by level, the given order kept within a level */
    for (int i = 1; i < pl.n_runs; i++) assert_true(pl.runs[i - 1].level <= pl.runs[i].level);
    assert_true(find(&pl, "crt", 0) < find(&pl, "crt", 1));
    assert_true(find(&pl, "crt", 1) < find(&pl, "lws", 0));
    lt_sweep_plan_free(&pl);

    /* a decoupled method alone brings its stage 1 in, marked implied */
    lt_sweep_opts o2 = o;
    o2.methods = "taunorm";
    o2.seeds = "3";
    assert_int_equal(lt_sweep_plan_make(&o2, &pl), LT_OK);
    assert_int_equal(pl.n_runs, 2);
    assert_string_equal(pl.runs[0].m->name, "ce");
    assert_int_equal(pl.runs[0].implied, 1);
    assert_int_equal(pl.runs[1].dep, 0);
    /* a fresh results root: everything to run, with an estimate of the work */
    lt_sweep_plan_check(&pl);
    assert_int_equal(pl.runs[0].state, LT_SW_PENDING);
    assert_string_equal(pl.runs[0].why, "no result yet");
    assert_true(pl.runs[0].image_epochs > 0);
    assert_true(pl.runs[0].est_s < 0);   /* nothing timed before */
    lt_sweep_plan_free(&pl);

    /* refused by name */
    lt_sweep_opts bad = o;
    bad.methods = "ce,nosuch";
    assert_int_equal(lt_sweep_plan_make(&bad, &pl), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "unknown method 'nosuch'"));
    bad = o;
    bad.seeds = "0,x";
    assert_int_equal(lt_sweep_plan_make(&bad, &pl), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "--seeds"));
    bad = o;
    bad.methods = "ce,,crt";
    assert_int_equal(lt_sweep_plan_make(&bad, &pl), LT_EINVAL);
    char two[1100];
    snprintf(two, sizeof two, "%s,%s", g_proto, g_proto);
    bad = o;
    bad.protocols = two;
    assert_int_equal(lt_sweep_plan_make(&bad, &pl), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "given twice"));
    bad = o;
    bad.protocols = "no_such_protocol";
    assert_int_not_equal(lt_sweep_plan_make(&bad, &pl), LT_OK);
    assert_non_null(strstr(lt_errmsg(), "no_such_protocol"));
}

/* A result file as the runner writes it, with what the skip rule reads. */
static void fixture(const char *root, const char *method, const char *version, int seed, const char *status,
                    const char *sha, int threads)
{
    char dir[600], path[700], text[4096];
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_tiny/ci/%s/seed%d", root, method, seed);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/result.json", dir);
    snprintf(text, sizeof text,
             "{\"format\":1,\"status\":\"%s\",\"reason\":\"%s\","
             "\"protocol\":{\"name\":\"fmnist_lt_tiny\",\"version\":1,\"sha256\":\"%s\"},\"scale\":\"ci\","
             "\"method\":{\"name\":\"%s\",\"version\":\"%s\",\"fidelity\":\"paper\",\"hparams\":{}},\"seed\":%d,"
             "\"dataset\":{\"name\":\"fmnist\",\"manifest_sha256\":\"\",\"train_size\":1120,\"test_size\":300},"
             "\"metrics\":{\"top1\":0.5,\"many\":0.5,\"medium\":0.5,\"few\":null,\"ece\":0.1,\"macro_f1\":0.5,"
             "\"map\":null},\"timings\":{\"total_s\":3.5,\"stages_s\":[3.0],\"eval_s\":0.5},"
             "\"env\":{\"commit\":\"0123456789abcdef0123456789abcdef01234567\",\"dirty\":false,"
             "\"engine_version\":\"%s\",\"conv_backend\":\"%s\",\"blas_core\":\"%s\",\"threads\":%d}}\n",
             status, strcmp(status, "ok") ? "crashed: signal 11 (Segmentation fault) in stage 1 epoch 1" : "", sha,
             method, version, seed, LT_ENGINE_VERSION, lt_backend_describe(lt_backend_default()), openblas_get_corename(), threads);
    assert_int_equal(fx_write_file(path, text, strlen(text)), 0);
}

static void test_skip_rule_fixtures(void **state)
{
    (void)state;
    char root[400], sha[65];
    snprintf(root, sizeof root, "%s/skip", fx_scratch);
    assert_int_equal(lt_protocol_hash(g_proto, sha), LT_OK);
    const lt_method *ce = lt_method_find("ce");
    fixture(root, "ce", ce->version, 0, "ok", sha, 1);                  /* current */
    fixture(root, "ce", ce->version, 1, "ok", sha, 2);                  /* other thread count */
    fixture(root, "ce", ce->version, 2, "failed", sha, 1);              /* failed */
    fixture(root, "ce", ce->version, 3, "ok", "ffff", 1);               /* other protocol file */
    fixture(root, "crt", "0.0-old", 0, "ok", sha, 1);                   /* other method version */
    lt_sweep_opts o = {.methods = "ce,crt", .protocols = g_proto, .seeds = "0,1,2,3", .scale = "ci",
                       .results = root, .threads = 1};
    lt_sweep_plan pl;
    assert_int_equal(lt_sweep_plan_make(&o, &pl), LT_OK);
    lt_sweep_plan_check(&pl);
    assert_int_equal(pl.runs[find(&pl, "ce", 0)].state, LT_SW_DONE);
    int i = find(&pl, "ce", 1);
    assert_int_equal(pl.runs[i].state, LT_SW_PENDING);
    assert_string_equal(pl.runs[i].why, "stale: threads 2, now 1");
    i = find(&pl, "ce", 2);
    assert_int_equal(pl.runs[i].state, LT_SW_PENDING);
    assert_non_null(strstr(pl.runs[i].why, "the last attempt failed: crashed"));
    i = find(&pl, "ce", 3);
    assert_int_equal(pl.runs[i].state, LT_SW_PENDING);
    assert_string_equal(pl.runs[i].why, "the protocol file changed since it ran");
    i = find(&pl, "crt", 0);
    assert_int_equal(pl.runs[i].state, LT_SW_PENDING);
    assert_non_null(strstr(pl.runs[i].why, "method version 0.0-old, now"));
    assert_int_equal(pl.runs[find(&pl, "crt", 1)].state, LT_SW_PENDING);
    /* the past wall time of ce here (3.5 s, the ok fixtures) is the estimate */
    assert_true(pl.runs[find(&pl, "ce", 1)].est_s > 3.4 && pl.runs[find(&pl, "ce", 1)].est_s < 3.6);
    lt_sweep_plan_free(&pl);
    /* --reuse any: the stale one is re-used, saying why */
    o.reuse_any = 1;
    assert_int_equal(lt_sweep_plan_make(&o, &pl), LT_OK);
    lt_sweep_plan_check(&pl);
    i = find(&pl, "ce", 1);
    assert_int_equal(pl.runs[i].state, LT_SW_DONE_ANY);
    assert_int_equal(pl.runs[find(&pl, "ce", 2)].state, LT_SW_PENDING);   /* failed stays failed */
    lt_sweep_plan_free(&pl);
}

/* A cuda run's result file: ce of the tiny protocol in <method>@<suffix>/. */
static void cuda_fixture_lay(const char *root, const char *suffix, const char *math, const char *layout, int seed,
                             const char *sha)
{
    char dir[600], path[700], text[2048], lay[64] = "";
    if (layout) snprintf(lay, sizeof lay, ",\"cuda_layout\":\"%s\"", layout);
    snprintf(dir, sizeof dir, "%s/runs/fmnist_lt_tiny/ci/ce%s/seed%d", root, suffix, seed);
    tf_mkdirs(dir);
    snprintf(path, sizeof path, "%s/result.json", dir);
    snprintf(text, sizeof text,
             "{\"format\":1,\"status\":\"ok\",\"reason\":\"\","
             "\"protocol\":{\"name\":\"fmnist_lt_tiny\",\"version\":1,\"sha256\":\"%s\"},\"scale\":\"ci\","
             "\"method\":{\"name\":\"ce\",\"version\":\"%s\"},\"seed\":%d,\"metrics\":{\"top1\":0.5},"
             "\"timings\":{\"total_s\":2.0},"
             "\"env\":{\"commit\":\"0123456789abcdef0123456789abcdef01234567\",\"dirty\":false,"
             "\"engine_version\":\"%s\",\"conv_backend\":\"cuda:0\",\"blas_core\":\"%s\",\"threads\":1,"
             "\"backend\":\"cuda\",\"gpu_name\":\"NVIDIA H100 80GB HBM3\",\"gpu_cc\":\"9.0\",\"cuda_runtime\":13000,"
             "\"cudnn\":91900,\"cublas\":130100,\"cuda_math\":\"%s\",\"cuda_deterministic\":false%s}}\n",
             sha, lt_method_find("ce")->version, seed, LT_ENGINE_VERSION, openblas_get_corename(), math, lay);
    tf_spit(path, text);
}

static void cuda_fixture(const char *root, const char *suffix, const char *math, int seed, const char *sha)
{
    cuda_fixture_lay(root, suffix, math, NULL, seed, sha);
}

/* The Slurm script the plan's level 0 gets (written, not submitted), each
 * run with --time-limit time_limit_s (<= 0: none). */
static char *slurm_level0_tl(const lt_sweep_plan *pl, double time_limit_s)
{
    FILE *log = tmpfile();
    assert_non_null(log);
    lt_sweep_slurm_opts so = {.no_submit = 1, .log = log, .sbatch = "/nonexistent/sbatch",
                              .time_limit_s = time_limit_s};
    assert_int_equal(lt_sweep_slurm(pl, &so), LT_OK);
    char text[4096] = "";
    rewind(log);
    size_t n = fread(text, 1, sizeof text - 1, log);
    text[n] = '\0';
    fclose(log);
    char *w = strstr(text, "sweep: wrote "), *end = w ? strstr(w, "/level0.sbatch") : NULL;
    if (!end) fail_msg("no level 0 script in: %s", text);
    char path[1024];
    snprintf(path, sizeof path, "%.*s/level0.sbatch", (int)(end - (w + 13)), w + 13);
    return tf_read(path, NULL);
}

static char *slurm_level0(const lt_sweep_plan *pl) { return slurm_level0_tl(pl, 0); }

/* cuda runs: fp32 in <method>@cuda/, tf32 in <method>@cuda-tf32/, tf32
 * NHWC ones in <method>@cuda-tf32-nhwc/ (lt_run_dir_on), so a sweep of one math
 * mode or layout neither sees, re-uses nor overwrites another's results; the plan's note and the Slurm scripts
 * name the same directories. The device is not probed (no dev_info): the
 * skip rule then knows backend and math mode only, so a found cuda run is
 * stale by its GPU, which shows that it was found. */
static void test_plan_cuda_math_dirs(void **state)
{
    (void)state;
    char root[400], sha[65], dir[600], want[700];
    snprintf(root, sizeof root, "%s/cudamath", fx_scratch);
    assert_int_equal(lt_protocol_hash(g_proto, sha), LT_OK);
    cuda_fixture(root, "@cuda", "fp32", 0, sha);
    cuda_fixture(root, "@cuda-tf32", "tf32", 1, sha);
    lt_sweep_opts o = {.methods = "ce", .protocols = g_proto, .seeds = "0,1", .scale = "ci", .results = root,
                       .threads = 1, .device = "cuda", .math = "tf32"};
    lt_sweep_plan pl;
    assert_int_equal(lt_sweep_plan_make(&o, &pl), LT_OK);
    int i0 = find(&pl, "ce", 0), i1 = find(&pl, "ce", 1);
    assert_int_equal(lt_sweep_run_dir(&pl, i0, dir, sizeof dir), LT_OK);
    snprintf(want, sizeof want, "%s/runs/fmnist_lt_tiny/ci/ce@cuda-tf32/seed0", root);
    assert_string_equal(dir, want);
    lt_sweep_plan_check(&pl);
    assert_int_equal(pl.runs[i0].state, LT_SW_PENDING);
    assert_string_equal(pl.runs[i0].why, "no result yet");   /* the fp32 seed 0 is not this run */
    assert_int_equal(pl.runs[i1].state, LT_SW_PENDING);
    assert_non_null(strstr(pl.runs[i1].why, "stale: GPU NVIDIA H100 80GB HBM3 (9.0)"));   /* the tf32 seed 1 is */
    FILE *f = tmpfile();
    assert_non_null(f);
    lt_sweep_plan_print(&pl, f);
    char text[8192] = "";
    rewind(f);
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    assert_non_null(strstr(text, "math tf32, layout nchw (runs in <method>@cuda-tf32/)"));
    char *sh = slurm_level0(&pl);
    assert_non_null(strstr(sh, "DEVICE_ARGS='--device cuda --math tf32'\nMETHOD_DIR_SUFFIX=@cuda-tf32\n"));
    free(sh);
    lt_sweep_plan_free(&pl);

    /* tf32 in NHWC: its own directory; the NCHW tf32 seed 1 is not its run */
    cuda_fixture_lay(root, "@cuda-tf32-nhwc", "tf32", "nhwc", 0, sha);
    o.layout = "nhwc";
    assert_int_equal(lt_sweep_plan_make(&o, &pl), LT_OK);
    i0 = find(&pl, "ce", 0);
    i1 = find(&pl, "ce", 1);
    assert_int_equal(lt_sweep_run_dir(&pl, i0, dir, sizeof dir), LT_OK);
    snprintf(want, sizeof want, "%s/runs/fmnist_lt_tiny/ci/ce@cuda-tf32-nhwc/seed0", root);
    assert_string_equal(dir, want);
    lt_sweep_plan_check(&pl);
    assert_non_null(strstr(pl.runs[i0].why, "stale: GPU NVIDIA H100 80GB HBM3 (9.0)"));   /* found */
    assert_string_equal(pl.runs[i1].why, "no result yet");
    f = tmpfile();
    assert_non_null(f);
    lt_sweep_plan_print(&pl, f);
    rewind(f);
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    assert_non_null(strstr(text, "math tf32, layout nhwc (runs in <method>@cuda-tf32-nhwc/)"));
    sh = slurm_level0(&pl);
    assert_non_null(strstr(sh, "DEVICE_ARGS='--device cuda --math tf32 --layout nhwc'\n"
                               "METHOD_DIR_SUFFIX=@cuda-tf32-nhwc\n"));
    free(sh);
    lt_sweep_plan_free(&pl);
    /* a layout without cuda, or one that is not one: refused */
    lt_sweep_opts bad = o;
    bad.device = NULL;
    bad.math = NULL;
    assert_int_equal(lt_sweep_plan_make(&bad, &pl), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "layout nhwc: only for a cuda device"));
    bad = o;
    bad.layout = "hwcn";
    assert_int_equal(lt_sweep_plan_make(&bad, &pl), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "layout 'hwcn': expected nchw or nhwc"));
    o.layout = NULL;

    /* fp32 (the default math mode): the other way round */
    o.math = NULL;
    assert_int_equal(lt_sweep_plan_make(&o, &pl), LT_OK);
    i0 = find(&pl, "ce", 0);
    i1 = find(&pl, "ce", 1);
    assert_int_equal(lt_sweep_run_dir(&pl, i1, dir, sizeof dir), LT_OK);
    snprintf(want, sizeof want, "%s/runs/fmnist_lt_tiny/ci/ce@cuda/seed1", root);
    assert_string_equal(dir, want);
    lt_sweep_plan_check(&pl);
    assert_non_null(strstr(pl.runs[i0].why, "stale: GPU NVIDIA H100 80GB HBM3 (9.0)"));
    assert_string_equal(pl.runs[i1].why, "no result yet");
    sh = slurm_level0(&pl);
    assert_non_null(strstr(sh, "DEVICE_ARGS='--device cuda'\nMETHOD_DIR_SUFFIX=@cuda\n"));
    free(sh);
    lt_sweep_plan_free(&pl);

    /* cpu: no suffix, and neither cuda result is its run */
    o.device = NULL;
    assert_int_equal(lt_sweep_plan_make(&o, &pl), LT_OK);
    lt_sweep_plan_check(&pl);
    assert_string_equal(pl.runs[find(&pl, "ce", 0)].why, "no result yet");
    assert_string_equal(pl.runs[find(&pl, "ce", 1)].why, "no result yet");
    sh = slurm_level0(&pl);
    assert_non_null(strstr(sh, "DEVICE_ARGS=''\nMETHOD_DIR_SUFFIX=\n"));
    assert_non_null(strstr(sh, "TIME_LIMIT=\n"));   /* none given: none passed on */
    free(sh);
    /* --time-limit reaches every run of the scripts (it was dropped) */
    sh = slurm_level0_tl(&pl, 90.5);
    assert_non_null(strstr(sh, "TIME_LIMIT=90.5\n"));
    assert_non_null(strstr(sh, "${TIME_LIMIT:+--time-limit \"$TIME_LIMIT\"}"));
    free(sh);
    lt_sweep_plan_free(&pl);
}

static void test_lock_other_host(void **state)
{
    (void)state;
    char dir[400], path[500], log_path[500];
    snprintf(dir, sizeof dir, "%s/lockdir", fx_scratch);
    assert_int_equal(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/.lock", dir);
    snprintf(log_path, sizeof log_path, "%s/lock.log", fx_scratch);
    const char *other = "12345 some-other-node.example\n";
    assert_int_equal(fx_write_file(path, other, strlen(other)), 0);
    lt_dir_lock lk;
    FILE *log = fopen(log_path, "w");
    assert_non_null(log);
    /* fresh heartbeat: refused, naming the file and the host */
    assert_int_equal(lt_dir_lock_take(&lk, dir, 0, 0, log), LT_EBUSY);
    assert_non_null(strstr(lt_errmsg(), "pid 12345 on host some-other-node.example"));
    assert_non_null(strstr(lt_errmsg(), "do not reach across hosts"));
    assert_non_null(strstr(lt_errmsg(), path));
    print_message("note: %s\n", lt_errmsg());
    /* heartbeat older than LT_LOCK_STALE_S: taken over, said on the log */
    struct timespec old[2] = {{time(NULL) - LT_LOCK_STALE_S - 10, 0}, {time(NULL) - LT_LOCK_STALE_S - 10, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
    assert_int_equal(lt_dir_lock_take(&lk, dir, 0, 0, log), LT_OK);
    fclose(log);
    assert_int_equal(count_in(log_path, "taking over the lock of pid 12345 on host some-other-node.example, whose "
                                        "heartbeat stopped"), 1);
    /* it names this process and this host while held */
    char *s;
    size_t n;
    char host[256], want[300];
    gethostname(host, sizeof host);
    snprintf(want, sizeof want, "%ld %s\n", (long)getpid(), host);
    assert_int_equal(fx_read_file(path, &s, &n), 0);
    assert_string_equal(s, want);
    free(s);
    lt_dir_lock_release(&lk);
}

/* ---- helpers for the executor tests ----------------------------------------------- */

/* lt_cmd_sweep in a forked child, its output into out_path; the pid. */
static pid_t sweep_async(const char *out_path, char **argv)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0) _exit(99);
        dup2(fd, 1);
        dup2(fd, 2);
        setvbuf(stdout, NULL, _IOLBF, 0);
        int argc = 0;
        while (argv[argc]) argc++;
        _exit(lt_cmd_sweep(argc, argv));
    }
    return pid;
}

static int wait_exit(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int sweep(const char *out_path, char **argv) { return wait_exit(sweep_async(out_path, argv)); }

/* Occurrences of needle in a file (0 when it does not exist). */
/* Whether the first line of path holding `anchor` has "ETA " + prefix
 * followed by an m:ss or h:mm:ss time (lt_fmt_eta's; not "4m21s"). */
static int eta_is_clock(const char *path, const char *anchor, const char *prefix)
{
    char *s;
    size_t n;
    if (fx_read_file(path, &s, &n)) return 0;
    int ok = 0;
    const char *a = strstr(s, anchor);
    char want[32];
    snprintf(want, sizeof want, "ETA %s", prefix);
    const char *e = a ? strstr(a, want) : NULL, *nl = a ? strchr(a, '\n') : NULL;
    if (e && (!nl || e < nl)) {
        int m, sec, len = 0;
        e += strlen(want);
        ok = sscanf(e, "%d:%2d%n", &m, &sec, &len) == 2 && len >= 4 && e[len - 3] == ':' && sec < 60;
    }
    free(s);
    return ok;
}

static int count_in(const char *path, const char *needle)
{
    char *s;
    size_t n;
    if (fx_read_file(path, &s, &n)) return 0;
    int k = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) k++;
    free(s);
    return k;
}

static void log_of(const char *root, const char *proto, const char *method, int seed, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/sweep/logs/%s.ci.%s.seed%d.log", root, proto, method, seed);
}

static void result_of(const char *root, const char *proto, const char *method, int seed, lt_run_outcome *o)
{
    char p[800];
    snprintf(p, sizeof p, "%s/runs/%s/ci/%s/seed%d/result.json", root, proto, method, seed);
    if (lt_result_read(p, o) != LT_OK) fail_msg("%s: %s", p, lt_errmsg());
}

static void dump(const char *path)
{
    char *s;
    size_t n;
    if (!fx_read_file(path, &s, &n)) {
        print_message("---- %s\n%s\n", path, s);
        free(s);
    }
}

/* No process holds the lock of any run directory of root. */
static void no_lock_held(const char *root)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "find '%s/runs' -name .lock", root);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[800];
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        int fd = open(line, O_RDONLY);
        assert_true(fd >= 0);
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) fail_msg("%s is still held after the sweep ended", line);
        close(fd);
    }
    pclose(p);
}

/* ---- local executor ------------------------------------------------------------- */

static void test_local_grid_shared_stage1_and_failure(void **state)
{
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    char root[400], out[500];
    snprintf(root, sizeof root, "%s/local", fx_scratch);
    snprintf(out, sizeof out, "%s/local.out", fx_scratch);
    char *argv[] = {"sweep", "--methods", "ce,crt,test_crash,test_dec_crash", "--protocols", g_proto,
                    "--seeds", "0,1", "--scale", "ci", "--results", root, "-j", "2", "--threads", "1",
                    "--reuse", "any", "--no-report", NULL};
    double t0 = (double)time(NULL);
    int rc = sweep(out, argv);
    if (rc != 1) {
        dump(out);
        fail_msg("sweep exit %d, want 1 (a failed run)", rc);
    }
    print_message("note: 2 methods + a crashing one x 2 seeds, -j 2: %.0f s\n", (double)time(NULL) - t0);
    /* the sweep's own line, once a run has finished: "ETA ~m:ss" */
    assert_true(eta_is_clock(out, "ETA ~", "~"));
    for (int s = 0; s < 2; s++) {
        char lg[700];
        lt_run_outcome o;
        result_of(root, "fmnist_lt_tiny", "ce", s, &o);
        assert_true(o.ok);
        result_of(root, "fmnist_lt_tiny", "crt", s, &o);
        assert_true(o.ok);
        /* ce trained once: one first epoch in its log, none in crt's */
        log_of(root, "fmnist_lt_tiny", "ce", s, lg, sizeof lg);
        assert_int_equal(count_in(lg, "stage 1/1 epoch 1/"), 1);
        assert_true(eta_is_clock(lg, "stage 1/1 epoch 1/", ""));   /* lt_fmt_eta's m:ss */
        log_of(root, "fmnist_lt_tiny", "crt", s, lg, sizeof lg);
        assert_int_equal(count_in(lg, "shared stage 1: training"), 0);
        assert_int_equal(count_in(lg, "stage 2/2 epoch 1/"), 1);
        /* the crash is a failed row with its reason; its dependent is skipped, not tried */
        result_of(root, "fmnist_lt_tiny", "test_crash", s, &o);
        assert_false(o.ok);
        assert_non_null(strstr(o.reason, "crashed: signal 11"));
        log_of(root, "fmnist_lt_tiny", "test_dec_crash", s, lg, sizeof lg);
        assert_int_equal(access(lg, F_OK), -1);
    }
    assert_int_equal(count_in(out, "SKIPPED fmnist_lt_tiny ci test_dec_crash seed"), 2);
    assert_int_equal(count_in(out, "its stage 1 (fmnist_lt_tiny ci test_crash seed 0) failed: crashed: signal 11"), 1);
    assert_int_equal(count_in(out, "sweep: FAILED fmnist_lt_tiny ci test_crash seed"), 2);
    assert_int_equal(count_in(out, "sweep: 4 ran ok, 2 failed, 2 skipped"), 1);
    no_lock_held(root);

    /* again, with the report: the finished runs are re-used, the failed ones tried again */
    char *argv2[] = {"sweep", "--methods", "ce,crt", "--protocols", g_proto, "--seeds", "0,1", "--scale", "ci",
                     "--results", root, "-j", "2", "--threads", "1", "--reuse", "any", NULL};
    char out2[500];
    snprintf(out2, sizeof out2, "%s/local2.out", fx_scratch);
    rc = sweep(out2, argv2);
    if (rc != 0) {
        dump(out2);
        fail_msg("second sweep exit %d", rc);
    }
    assert_int_equal(count_in(out2, "sweep: 0 runs to do, 4 re-used"), 1);
    char lb[600];
    snprintf(lb, sizeof lb, "%s/leaderboard.csv", root);
    assert_int_equal(count_in(lb, "fmnist_lt_tiny,1,ci,crt,"), 1);
    assert_int_equal(count_in(lb, "fmnist_lt_tiny,1,ci,test_crash,"), 1);   /* the failed row */
}

/* Waits (bounded) until path exists; 1 when it did. */
static int wait_for(const char *path, double secs)
{
    for (int k = 0; k < (int)(secs * 200); k++) {
        if (access(path, F_OK) == 0) return 1;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void test_local_interrupt_resume(void **state)
{
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    char root[400], out[500], ckpt[700], lg[700];
    snprintf(root, sizeof root, "%s/intr", fx_scratch);
    snprintf(out, sizeof out, "%s/intr.out", fx_scratch);
    snprintf(ckpt, sizeof ckpt, "%s/runs/fmnist_lt_tiny8/ci/ce/seed0/ckpt.ltc", root);
    log_of(root, "fmnist_lt_tiny8", "ce", 0, lg, sizeof lg);
    char *argv[] = {"sweep", "--methods", "ce,crt", "--protocols", g_proto_long, "--seeds", "0", "--scale", "ci",
                    "--results", root, "-j", "1", "--threads", "1", "--reuse", "any", "--no-report", NULL};
    /* 1. SIGINT once ce has written its first epoch checkpoint (8 epochs) */
    pid_t pid = sweep_async(out, argv);
    if (!wait_for(ckpt, 120)) {
        kill(pid, SIGKILL);
        wait_exit(pid);
        dump(out);
        fail_msg("no epoch checkpoint %s appeared", ckpt);
    }
    kill(pid, SIGINT);
    int rc = wait_exit(pid);
    if (rc != 130) {
        dump(out);
        fail_msg("interrupted sweep: exit %d, want 130", rc);
    }
    assert_int_equal(count_in(out, "sweep: interrupted"), 2);
    no_lock_held(root);
    char res[700];
    snprintf(res, sizeof res, "%s/runs/fmnist_lt_tiny8/ci/ce/seed0/result.json", root);
    assert_int_equal(access(res, F_OK), -1);   /* no failed row for an interrupted run */
    const int epochs_before = count_in(lg, "stage 1/1 epoch ");

    /* 2. resumed, then SIGKILL (no handler runs) while it still trains */
    pid = sweep_async(out, argv);
    for (int k = 0; k < 24000 && count_in(lg, "stage 1/1 epoch ") <= epochs_before; k++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    wait_exit(pid);
    /* its run children die with it (PR_SET_PDEATHSIG): the locks come free */
    for (int k = 0; k < 400; k++) {
        char cmd[800];
        snprintf(cmd, sizeof cmd, "flock -n '%s/runs/fmnist_lt_tiny8/ci/ce/seed0/.lock' true 2>/dev/null", root);
        if (system(cmd) == 0) break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    no_lock_held(root);

    /* 3. to completion; the interrupted ce resumed from its checkpoint */
    rc = sweep(out, argv);
    if (rc != 0) {
        dump(out);
        dump(lg);
        fail_msg("resumed sweep: exit %d", rc);
    }
    lt_run_outcome o;
    result_of(root, "fmnist_lt_tiny8", "ce", 0, &o);
    assert_true(o.ok);
    result_of(root, "fmnist_lt_tiny8", "crt", 0, &o);
    assert_true(o.ok);
    /* fewer than 8 + 8 epoch lines after the first part: it did not start over each time */
    const int epochs = count_in(lg, "stage 1/1 epoch ");
    print_message("note: ce printed %d epoch lines over 3 sweeps (8 epochs; %d before the first stop)\n", epochs,
                  epochs_before);
    assert_true(epochs >= 8 && epochs < 8 + 8 + 8);
    assert_int_equal(count_in(lg, "stage 1/1 epoch 8/8"), 1);
}

static void test_overlapping_sweeps(void **state)
{
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    char root[400], out_a[500], out_b[500];
    snprintf(root, sizeof root, "%s/overlap", fx_scratch);
    snprintf(out_a, sizeof out_a, "%s/overlap_a.out", fx_scratch);
    snprintf(out_b, sizeof out_b, "%s/overlap_b.out", fx_scratch);
    /* A: ce, crt x {5, 6}; B: ce, lws x {6, 5}: ce 5 and ce 6 in both, in opposite orders */
    char *a[] = {"sweep", "--methods", "ce,crt", "--protocols", g_proto, "--seeds", "5,6", "--scale", "ci",
                 "--results", root, "-j", "1", "--threads", "1", "--reuse", "any", "--no-report", NULL};
    char *b[] = {"sweep", "--methods", "lws,ce", "--protocols", g_proto, "--seeds", "6,5", "--scale", "ci",
                 "--results", root, "-j", "1", "--threads", "1", "--reuse", "any", "--no-report", NULL};
    pid_t pa = sweep_async(out_a, a), pb = sweep_async(out_b, b);
    int ra = wait_exit(pa), rb = wait_exit(pb);
    if (ra || rb) {
        dump(out_a);
        dump(out_b);
        fail_msg("sweeps exit %d and %d", ra, rb);
    }
    const char *methods[] = {"ce", "crt", "lws"};
    for (int s = 5; s <= 6; s++)
        for (int m = 0; m < 3; m++) {
            lt_run_outcome o;
            result_of(root, "fmnist_lt_tiny", methods[m], s, &o);
            if (!o.ok) fail_msg("%s seed %d: %s", methods[m], s, o.reason);
            char lg[700];
            log_of(root, "fmnist_lt_tiny", methods[m], s, lg, sizeof lg);
            /* trained once, whichever sweep did it (the log is shared) */
            const char *first = m == 0 ? "stage 1/1 epoch 1/" : "stage 2/2 epoch 1/";
            if (count_in(lg, first) != 1) {
                dump(lg);
                fail_msg("%s seed %d trained %d times", methods[m], s, count_in(lg, first));
            }
            assert_int_equal(count_in(lg, "shared stage 1: training"), 0);
        }
    print_message("note: overlapping sweeps: %d + %d runs waited for the other sweep and re-used its result\n",
                  count_in(out_a, "re-used fmnist_lt_tiny"), count_in(out_b, "re-used fmnist_lt_tiny"));
    no_lock_held(root);
}

/* ---- Slurm ------------------------------------------------------------------------ */

static void test_slurm_cluster(void **state)
{
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    char cmd[1200], out[600];
    snprintf(out, sizeof out, "%s/slurm.out", fx_scratch);
    snprintf(cmd, sizeof cmd, "tests/slurm/run_slurm_test.sh '%s/slurm' '%s' >'%s' 2>&1", fx_scratch, g_proto, out);
    fflush(NULL);
    int st = system(cmd);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    char *text;
    size_t n;
    if (fx_read_file(out, &text, &n)) text = strdup("");
    if (rc == 77) {
        const char *last = strstr(text, "skip" ": ");   /* the script's reason line */
        print_message("%s", last ? last : "skip: tests/slurm/run_slurm_test.sh could not start Slurm\n");
        free(text);
        skip();
    }
    if (rc != 0) {
        print_message("%s\n", text);
        free(text);
        fail_msg("tests/slurm/run_slurm_test.sh: exit %d", rc);
    }
    /* the queue and accounting views the script printed, for the record */
    const char *v = strstr(text, "==== squeue");
    print_message("note: slurm test passed\n%s", v ? v : text);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_grid_and_order),
        cmocka_unit_test(test_skip_rule_fixtures),
        cmocka_unit_test(test_plan_cuda_math_dirs),
        cmocka_unit_test(test_lock_other_host),
        cmocka_unit_test(test_local_grid_shared_stage1_and_failure),
        cmocka_unit_test(test_local_interrupt_resume),
        cmocka_unit_test(test_overlapping_sweeps),
        cmocka_unit_test(test_slurm_cluster),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
