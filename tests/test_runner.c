/* test_runner.c — the runner end to end on real Fashion-MNIST-LT.
 *
 * The shipped `ci` scale takes 20 s to minutes on two cores, so the tests run a
 * protocol written here: fmnist_lt_r100 with its ci scale cut to at most
 * 120 training images per class (120 x 8, 100, 60: still 8 many + 2 medium
 * classes), the first 300 test images and batch 64. Everything else — the
 * dataset build, the LT subset, augmentation, schedule, SGD, evaluation,
 * the result files — is the real pipeline.
 *
 * Checked: result.json fields, events.jsonl order, per_class.csv; the same
 * seed twice gives bit-identical numbers; a run killed after its first epoch
 * checkpoint and resumed ends with the same numbers; a crashing, a NaN and
 * a too-slow method each give a failed row with a reason while this process
 * lives on; a method with a shared stage 1 trains `ce` first and starts
 * from its model; the CLI's exit codes. Skips (with a `skip:` line) when the
 * Debian Fashion-MNIST package is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tassert.h"   /* NaN-safe assert_float_equal */

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd_run.h"
#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt_protocol.h"
#include "lt_runner.h"
#include "tfiles.h"
#include "lt_model_impl.h"   /* white-box: the model's structs */

const lt_method *lt_method_test_crash(void);
const lt_method *lt_method_test_nan(void);
const lt_method *lt_method_test_slow(void);

static char g_proto[512];

/* ---- a decoupled test method: stage 1 shared with ce, stage 2 re-trains the
 * head on the frozen backbone with class-balanced sampling ---------------- */
static int dec_stages(const void *st) { (void)st; return 2; }
static int dec_begin(void *st, int stage, lt_stage *cfg, lt_model *m) {
    (void)st; (void)m;
    if (stage == 1) {
        cfg->freeze_backbone = 1;
        cfg->reinit_head = 1;
        cfg->sampler.kind = LT_SAMPLER_CLASS_BALANCED;
    }
    return LT_OK;
}
static const lt_method dec_m = {.abi = LT_METHOD_ABI, .name = "test_decoupled", .version = "1",
                                .cite = "none", .fidelity = "reconstructed", .defaults = "{}",
                                .stage1_from = "ce", .n_stages = dec_stages, .stage_begin = dec_begin};

/* The same, whose stage_begin(1) removes the shared stage 1's final
 * checkpoint (g_unlink): what a `ce --no-resume` started in the window
 * between the runner's check of that checkpoint under ce's lock and this
 * run's child loading it would do. */
static char g_unlink[1200];
static int race_begin(void *st, int stage, lt_stage *cfg, lt_model *m) {
    if (stage == 0 && g_unlink[0]) unlink(g_unlink);
    return dec_begin(st, stage, cfg, m);
}
static const lt_method race_m = {.abi = LT_METHOD_ABI, .name = "test_dec_race", .version = "1",
                                 .cite = "none", .fidelity = "reconstructed", .defaults = "{}",
                                 .stage1_from = "ce", .n_stages = dec_stages, .stage_begin = race_begin};

/* ---- helpers ------------------------------------------------------------------ */

static const cJSON *get(const cJSON *o, const char *path) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        cur = cJSON_GetObjectItemCaseSensitive(cur, k);
        if (!cur) fail_msg("missing key %s", path);
    }
    return cur;
}

static int file_exists(const char *p) { return access(p, F_OK) == 0; }

/* The tiny protocol, results in fx_scratch/ROOT, one thread: numbers are
 * bit-identical per thread count, and on a shared, oversubscribed machine
 * one thread avoids OpenMP barrier waits. */
static void request(lt_run_request *r, const char *root, const char *method) {
    fx_request(r, g_proto, root, method, 1);
}

static void path_in(const lt_run_outcome *o, const char *name, char *buf, size_t cap) {
    snprintf(buf, cap, "%s/%s", o->run_dir, name);
}

/* ---- setup: a small copy of fmnist_lt_r100 ------------------------------------ */

static int setup(void **state) {
    if (fx_train_blocker(NULL)) return 0;   /* every case skips */
    if (fx_scratch_setup(state) || fx_tiny_protocol(fx_scratch, g_proto, sizeof g_proto)) return -1;
    if (lt_method_register(lt_method_test_crash()) || lt_method_register(lt_method_test_nan()) ||
        lt_method_register(lt_method_test_slow()) || lt_method_register(&dec_m) || lt_method_register(&race_m))
        return -1;
    return 0;
}

static lt_run_outcome g_ref;   /* the uninterrupted ce run, seed 0 */

/* ---- tests ----------------------------------------------------------------------- */

static void test_ce_run_files(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    lt_run_request r;
    request(&r, "a", "ce");
    assert_int_equal(lt_runner_run(&r, &g_ref), LT_OK);
    if (!g_ref.ok) fail_msg("run failed: %s", g_ref.reason);
    print_message("note: one run (1120 images x 2 epochs, 300 test images, 1 thread): %.1f s\n", g_ref.total_s);
    char p[1200];

    /* result.json */
    cJSON *j = fx_read_json(g_ref.result_path);
    assert_int_equal(get(j, "format")->valueint, 1);
    assert_string_equal(get(j, "status")->valuestring, "ok");
    assert_string_equal(get(j, "reason")->valuestring, "");
    assert_string_equal(get(j, "protocol.name")->valuestring, "fmnist_lt_tiny");
    assert_int_equal(get(j, "protocol.version")->valueint, 1);
    char hex[65];
    assert_int_equal(lt_protocol_hash(g_proto, hex), LT_OK);
    assert_string_equal(get(j, "protocol.sha256")->valuestring, hex);
    assert_string_equal(get(j, "scale")->valuestring, "ci");
    assert_string_equal(get(j, "method.name")->valuestring, "ce");
    assert_string_equal(get(j, "method.fidelity")->valuestring, "official-code");
    assert_true(cJSON_IsObject(get(j, "method.hparams")));
    assert_int_equal(get(j, "seed")->valueint, 0);
    assert_string_equal(get(j, "dataset.name")->valuestring, "fmnist");
    assert_int_equal(strlen(get(j, "dataset.manifest_sha256")->valuestring), 64);
    assert_int_equal(get(j, "dataset.train_size")->valueint, 120 * 8 + 100 + 60);
    assert_int_equal(get(j, "dataset.test_size")->valueint, 300);
    const char *frac[] = {"metrics.top1", "metrics.many", "metrics.medium", "metrics.ece", "metrics.macro_f1"};
    for (int i = 0; i < 5; i++) {
        const cJSON *v = get(j, frac[i]);
        assert_true(cJSON_IsNumber(v));
        assert_true(v->valuedouble >= 0 && v->valuedouble <= 1);
    }
    assert_true(cJSON_IsNull(get(j, "metrics.few")));   /* no class below 20 images */
    assert_true(cJSON_IsNull(get(j, "metrics.map")));   /* the protocol does not ask for mAP */
    const cJSON *gs = get(j, "group_sizes");
    assert_int_equal(cJSON_GetArraySize(gs), 3);
    assert_int_equal(cJSON_GetArrayItem(gs, 0)->valueint, 8);
    assert_int_equal(cJSON_GetArrayItem(gs, 1)->valueint, 2);
    assert_int_equal(cJSON_GetArrayItem(gs, 2)->valueint, 0);
    assert_true(get(j, "timings.total_s")->valuedouble > 0);
    assert_int_equal(cJSON_GetArraySize(get(j, "timings.stages_s")), 1);
    assert_true(cJSON_IsNumber(get(j, "timings.eval_s")) && get(j, "timings.eval_s")->valuedouble >= 0);   /* not null */
    assert_string_equal(get(j, "env.blas_config")->valuestring, openblas_get_config());
    assert_string_equal(get(j, "env.blas_core")->valuestring, openblas_get_corename());
    assert_int_equal(get(j, "env.threads")->valueint, 1);
    assert_string_equal(get(j, "env.engine_version")->valuestring, LT_ENGINE_VERSION);
    assert_true(strlen(get(j, "env.commit")->valuestring) > 0);
    assert_true(strlen(get(j, "env.machine")->valuestring) > 0);
    assert_int_equal(strlen(get(j, "started")->valuestring), 20);   /* 2024-01-01T00:00:00Z */
    assert_int_equal(strlen(get(j, "finished")->valuestring), 20);
    const double top1 = get(j, "metrics.top1")->valuedouble;
    cJSON_Delete(j);

    /* events.jsonl: every line has the fixed keys; required events in order */
    path_in(&g_ref, "events.jsonl", p, sizeof p);
    char *ev = tf_slurp(p, NULL);
    assert_non_null(ev);
    const char *want[] = {"run_start", "protocol", "protocol_version", "seed", "blas_config", "stage_start",
                          "epoch_end", "epoch_end", "stage_end", "eval", "run_stop"};
    int w = 0, n_epoch = 0;
    double last_t = 0;
    for (char *save = NULL, *line = strtok_r(ev, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *e = cJSON_Parse(line);
        assert_non_null(e);
        const char *keys[] = {"t_ms", "event", "stage", "epoch", "key", "value"};
        for (int k = 0; k < 6; k++) assert_non_null(cJSON_GetObjectItemCaseSensitive(e, keys[k]));
        double t = cJSON_GetObjectItem(e, "t_ms")->valuedouble;
        assert_true(t >= last_t);
        last_t = t;
        const char *name = cJSON_GetObjectItem(e, "event")->valuestring;
        if (w < 11 && !strcmp(name, want[w])) w++;
        if (!strcmp(name, "epoch_end")) {
            assert_int_equal(cJSON_GetObjectItem(e, "stage")->valueint, 1);
            assert_int_equal(cJSON_GetObjectItem(e, "epoch")->valueint, n_epoch);
            const cJSON *v = cJSON_GetObjectItem(e, "value");
            assert_true(cJSON_GetObjectItem(v, "loss")->valuedouble > 0);
            assert_true(cJSON_GetObjectItem(v, "img_s")->valuedouble > 0);
            assert_non_null(cJSON_GetObjectItem(v, "acc"));
            assert_non_null(cJSON_GetObjectItem(v, "lr"));
            n_epoch++;
        }
        if (!strcmp(name, "run_stop")) assert_string_equal(cJSON_GetObjectItem(e, "value")->valuestring, "ok");
        cJSON_Delete(e);
    }
    free(ev);
    assert_int_equal(w, 11);
    assert_int_equal(n_epoch, 2);

    /* per_class.csv */
    path_in(&g_ref, "per_class.csv", p, sizeof p);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "class_id,train_count,test_count,correct,acc,group,weight_norm\n");
    const long counts[10] = {120, 120, 120, 120, 120, 120, 120, 120, 100, 60};
    long rows = 0, tests = 0, correct = 0;
    while (fgets(line, sizeof line, f)) {
        int id;
        long tc, nt, nc;
        double acc, wn;
        char group[16];
        assert_int_equal(sscanf(line, "%d,%ld,%ld,%ld,%lf,%15[a-z],%lf", &id, &tc, &nt, &nc, &acc, group, &wn), 7);
        assert_int_equal(id, rows);
        assert_int_equal(tc, counts[rows]);
        assert_string_equal(group, tc > 100 ? "many" : "medium");
        assert_true(nc >= 0 && nc <= nt && nt > 0);
        assert_true(fabs(acc - (double)nc / nt) < 1e-12);
        assert_true(wn > 0);
        tests += nt;
        correct += nc;
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, 10);
    assert_int_equal(tests, 300);
    assert_true(fabs(top1 - correct / 300.0) < 1e-12);

    /* training finished: the epoch checkpoint is gone, the final one stays */
    path_in(&g_ref, "ckpt.ltc", p, sizeof p);
    assert_false(file_exists(p));
    path_in(&g_ref, "ckpt_final.ltc", p, sizeof p);
    assert_true(file_exists(p));
}

/* The ce run that test_shared_stage1 trained first (root b) is a second
 * uninterrupted run of the same seed: its numbers must equal the reference
 * bit for bit, and so must its per-epoch training losses. */
static void test_same_seed_same_numbers(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    if (!g_ref.ok) skip();
    char p[1200];
    snprintf(p, sizeof p, "%s/b/runs/fmnist_lt_tiny/ci/ce/seed0/result.json", fx_scratch);
    lt_run_outcome o;
    assert_int_equal(lt_result_read(p, &o), LT_OK);
    assert_true(o.ok);
    fx_assert_same_outcome(&g_ref, &o);
    char pa[1200], pb[1200];
    path_in(&g_ref, "events.jsonl", pa, sizeof pa);
    path_in(&o, "events.jsonl", pb, sizeof pb);
    char *ea = tf_slurp(pa, NULL), *eb = tf_slurp(pb, NULL);
    assert_non_null(ea);
    assert_non_null(eb);
    const char *a = ea, *b = eb;
    int n = 0;
    while ((a = strstr(a, "\"loss\":")) && (b = strstr(b, "\"loss\":"))) {
        double la = strtod(a + 7, NULL), lb = strtod(b + 7, NULL);
        assert_memory_equal(&la, &lb, sizeof la);
        a++, b++, n++;
    }
    assert_int_equal(n, 2);
    free(ea);
    free(eb);
}

/* The run's models are built on one backend: `--conv direct` (the
 * request's conv) and LT_CONV_WINO=0 give the same run, bit for bit,
 * recorded as that backend describes itself (avx512-direct; avx2-direct
 * without AVX-512; im2col-sgemm without AVX2); an unknown path is a bad
 * request. */
static void test_conv_path_option(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    if (!g_ref.ok) skip();
    lt_run_request r;
    request(&r, "conv_opt", "ce");
    r.conv = "direct";
    lt_run_outcome a, b;
    assert_int_equal(lt_runner_run(&r, &a), LT_OK);
    if (!a.ok) fail_msg("--conv direct run failed: %s", a.reason);
    char *ref0 = getenv("LT_CONV_REF") ? strdup(getenv("LT_CONV_REF")) : NULL;
    char *wino0 = getenv("LT_CONV_WINO") ? strdup(getenv("LT_CONV_WINO")) : NULL;
    unsetenv("LT_CONV_REF");
    setenv("LT_CONV_WINO", "0", 1);
    request(&r, "conv_env", "ce");
    const int rc = lt_runner_run(&r, &b);
    if (ref0) setenv("LT_CONV_REF", ref0, 1);
    if (wino0) setenv("LT_CONV_WINO", wino0, 1); else unsetenv("LT_CONV_WINO");
    free(ref0);
    free(wino0);
    assert_int_equal(rc, LT_OK);
    if (!b.ok) fail_msg("LT_CONV_WINO=0 run failed: %s", b.reason);
    fx_assert_same_outcome(&a, &b);
    lt_cpu_opts o;
    lt_cpu_opts_default(&o);
    o.conv = LT_CONV_PATH_DIRECT;
    lt_backend *be;
    assert_int_equal(lt_backend_cpu_create(&o, &be), LT_OK);
    cJSON *ja = fx_read_json(a.result_path), *jb = fx_read_json(b.result_path);
    cJSON *jr = fx_read_json(g_ref.result_path);
    assert_string_equal(get(ja, "env.conv_backend")->valuestring, lt_backend_describe(be));
    assert_string_equal(get(jb, "env.conv_backend")->valuestring, lt_backend_describe(be));
    lt_backend_free(be);
    /* the default run: the environment's backend (this test's process) */
    assert_string_equal(get(jr, "env.conv_backend")->valuestring, lt_backend_describe(lt_backend_default()));
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    cJSON_Delete(jr);
    request(&r, "conv_bad", "ce");
    r.conv = "fast";
    lt_run_outcome c;
    assert_int_equal(lt_runner_run(&r, &c), LT_EINVAL);
    assert_true(c.bad_request);
    assert_non_null(strstr(lt_errmsg(), "conv path 'fast'"));
}

/* events.jsonl of run o: how many run_start, epoch_end, resume and
 * run_stop events */
static void count_events(const lt_run_outcome *o, int *starts, int *epochs, int *resumes, int *stops) {
    char p[1200];
    path_in(o, "events.jsonl", p, sizeof p);
    char *ev = tf_slurp(p, NULL);
    assert_non_null(ev);
    *starts = *epochs = *resumes = *stops = 0;
    for (const char *s = ev; (s = strstr(s, "\"event\":\"")); s++) {
        s += 9;
        *starts += !strncmp(s, "run_start\"", 10);
        *epochs += !strncmp(s, "epoch_end\"", 10);
        *resumes += !strncmp(s, "resume\"", 7);
        *stops += !strncmp(s, "run_stop\"", 9);
    }
    free(ev);
}

static void test_killed_run_resumes_exactly(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    if (!g_ref.ok) skip();
    lt_run_request r;
    request(&r, "c", "ce");
    r.kill_after_epoch = 1;
    lt_run_outcome o;
    assert_int_equal(lt_runner_run(&r, &o), LT_OK);
    assert_false(o.ok);
    assert_non_null(strstr(o.reason, "signal 9"));
    assert_non_null(strstr(o.reason, "stage 1 epoch 1"));
    char p[1200];
    path_in(&o, "ckpt.ltc", p, sizeof p);
    assert_true(file_exists(p));

    r.kill_after_epoch = 0;
    assert_int_equal(lt_runner_run(&r, &o), LT_OK);
    if (!o.ok) fail_msg("resumed run failed: %s", o.reason);
    fx_assert_same_outcome(&g_ref, &o);
    int starts, epochs, resumes, stops;
    count_events(&o, &starts, &epochs, &resumes, &stops);
    /* the log is the uninterrupted one plus a resume marker: the killed
     * session's lines after its checkpoint were cut */
    assert_int_equal(starts, 1);
    assert_int_equal(epochs, 2);
    assert_int_equal(resumes, 1);
    assert_int_equal(stops, 1);

    /* a finished run is only re-evaluated: same numbers again */
    assert_int_equal(lt_runner_run(&r, &o), LT_OK);
    assert_true(o.ok);
    fx_assert_same_outcome(&g_ref, &o);
}

/* A failed row: status, reason prefix, and the harness (this process) alive. */
static void expect_failed(const char *method, double limit, const char *prefix, const char *also) {
    lt_run_request r;
    request(&r, "fail", method);
    r.time_limit_s = limit;
    lt_run_outcome o;
    assert_int_equal(lt_runner_run(&r, &o), LT_OK);
    assert_false(o.ok);
    if (strncmp(o.reason, prefix, strlen(prefix)) || (also && !strstr(o.reason, also)))
        fail_msg("reason '%s' does not start with '%s'", o.reason, prefix);
    cJSON *j = fx_read_json(o.result_path);
    assert_string_equal(get(j, "status")->valuestring, "failed");
    assert_string_equal(get(j, "reason")->valuestring, o.reason);
    assert_string_equal(get(j, "method.name")->valuestring, method);
    assert_true(cJSON_IsNull(get(j, "metrics.top1")));
    assert_string_equal(get(j, "dataset.name")->valuestring, "fmnist");
    cJSON_Delete(j);
    char p[1200];
    path_in(&o, "events.jsonl", p, sizeof p);
    char *ev = tf_slurp(p, NULL);
    assert_non_null(ev);
    assert_non_null(strstr(ev, "\"event\":\"run_stop\",\"stage\":null,\"epoch\":null,\"key\":\"status\",\"value\":\"failed\""));
    free(ev);
}

/* A checkpoint made at another thread count is neither resumed nor
 * re-evaluated into a result that names this count: its bits are neither
 * count's. A run killed at 2 threads and asked for at 1 starts afresh and
 * ends as the uninterrupted 1-thread run; that finished run asked for at 2
 * threads is trained again (not its 1-thread model re-evaluated). */
static void test_other_threads_start_afresh(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    if (!g_ref.ok) skip();
    lt_run_request r2, r1;
    fx_request(&r2, g_proto, "thr", "ce", 2);
    fx_request(&r1, g_proto, "thr", "ce", 1);
    r2.kill_after_epoch = 1;
    lt_run_outcome o;
    assert_int_equal(lt_runner_run(&r2, &o), LT_OK);
    assert_false(o.ok);
    char p[1200];
    path_in(&o, "ckpt.ltc", p, sizeof p);
    assert_true(file_exists(p));

    assert_int_equal(lt_runner_run(&r1, &o), LT_OK);
    if (!o.ok) fail_msg("run failed: %s", o.reason);
    fx_assert_same_outcome(&g_ref, &o);
    int starts, epochs, resumes, stops;
    count_events(&o, &starts, &epochs, &resumes, &stops);
    assert_int_equal(starts, 1);
    assert_int_equal(epochs, 2);
    assert_int_equal(resumes, 0);

    r2.kill_after_epoch = 0;
    assert_int_equal(lt_runner_run(&r2, &o), LT_OK);
    if (!o.ok) fail_msg("run failed: %s", o.reason);
    count_events(&o, &starts, &epochs, &resumes, &stops);
    assert_int_equal(starts, 1);
    assert_int_equal(epochs, 2);
    assert_int_equal(resumes, 0);   /* a re-evaluation logs a resume (trained: true) */
    cJSON *j = fx_read_json(o.result_path);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "env"), "threads")->valueint,
                     2);
    cJSON_Delete(j);
}

/* The shared stage 1 is read from the file opened under ce's lock: removed
 * (or replaced) after that, the run still loads the checkpoint it checked
 * and names its bytes (it failed "cannot open" before). */
static void test_shared_stage1_removed_meanwhile(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    lt_run_request r;
    request(&r, "race", "test_dec_race");
    snprintf(g_unlink, sizeof g_unlink, "%s/race/runs/fmnist_lt_tiny/ci/ce/seed0/ckpt_final.ltc", fx_scratch);
    lt_run_outcome o;
    const int rc = lt_runner_run(&r, &o);
    const int gone = !file_exists(g_unlink);
    g_unlink[0] = '\0';
    assert_int_equal(rc, LT_OK);
    if (!o.ok) fail_msg("run failed: %s", o.reason);
    assert_true(gone);   /* the hook did remove it */
    cJSON *j = fx_read_json(o.result_path);
    const cJSON *sha = get(j, "method.stage1.checkpoint_sha256");
    assert_true(cJSON_IsString(sha) && strlen(sha->valuestring) == 64);
    cJSON_Delete(j);
}

/* on_step hook: at stage 1 epoch 1's first step, kill the runner (this
 * run's parent); the run dies with it (its parent-death signal) */
static void kill_runner(void *ctx, int stage, int epoch, long it) {
    (void)ctx;
    if (stage == 0 && epoch == 1 && it == 0) {
        kill(getppid(), SIGKILL);
        pause();
    }
}

/* A run started over (--no-resume) whose runner is killed mid-way leaves no
 * result from before beside its new, partial log: reproduce would have
 * re-used it. */
static void test_restart_killed_leaves_no_old_result(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    lt_run_request r;
    request(&r, "restart", "ce");
    lt_run_outcome o;
    fx_run_ok(&r, &o);
    char res[1200], pc[1200];
    path_in(&o, "result.json", res, sizeof res);
    path_in(&o, "per_class.csv", pc, sizeof pc);
    assert_true(file_exists(res));
    r.resume = 0;
    r.on_step = kill_runner;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        lt_run_outcome o2;
        lt_runner_run(&r, &o2);
        _exit(0);   /* not reached: the hook kills this process */
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_false(file_exists(res));
    assert_false(file_exists(pc));
}

static void test_crash_is_isolated(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    expect_failed("test_crash", 0, "crashed: signal 11 (Segmentation fault) in stage 1 epoch 1", NULL);
}

static void test_nan_is_isolated(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    expect_failed("test_nan", 0, "loss is NaN at iteration 1", "in stage 1 epoch 1");
}

static void test_timeout_is_isolated(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    expect_failed("test_slow", 4.0, "timeout: time limit of 4 s reached", NULL);
}

static void test_unknown_method(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    lt_run_request r;
    request(&r, "unknown", "no_such_method");
    lt_run_outcome o;
    assert_int_equal(lt_runner_run(&r, &o), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "no_such_method"));
    assert_non_null(strstr(lt_errmsg(), "ce"));
    /* hyper-parameters: only keys the method declares, with their types */
    request(&r, "unknown", "ce");
    r.hparams = "{\"tau\": 1}";
    assert_int_equal(lt_runner_run(&r, &o), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "tau"));
    r.hparams = "[1]";
    assert_int_equal(lt_runner_run(&r, &o), LT_EINVAL);
    char p[600];
    snprintf(p, sizeof p, "%s/unknown", fx_scratch);
    assert_false(file_exists(p));   /* nothing written */
}

/* The shipped protocol at its real ci scale (2 epochs over all 14,886
 * images): about 20 s on an idle 2-core machine but minutes on a shared
 * one, so only with LTBENCH_SLOW=1. */
static void test_shipped_ci_scale(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    if (!getenv("LTBENCH_SLOW")) {
        print_message("skip: fmnist_lt_r100 at the ci scale (set LTBENCH_SLOW=1)\n");
        skip();
    }
    lt_run_request r;
    request(&r, "ci", "ce");
    r.protocol = "protocols/fmnist_lt_r100.json";
    r.threads = 2;
    lt_run_outcome o;
    assert_int_equal(lt_runner_run(&r, &o), LT_OK);
    if (!o.ok) fail_msg("ci run failed: %s", o.reason);
    char p[1200];
    path_in(&o, "per_class.csv", p, sizeof p);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    const long counts[10] = {6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60};
    int rows = 0;
    long tests = 0;
    while (fgets(line, sizeof line, f)) {
        int id;
        long tc, nt;
        assert_int_equal(sscanf(line, "%d,%ld,%ld", &id, &tc, &nt), 3);
        assert_int_equal(tc, counts[rows]);
        tests += nt;
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, 10);
    assert_int_equal(tests, 2000);
    assert_true(o.top1 > 0.3);   /* two epochs learn something */
    print_message("note: fmnist_lt_r100 ci: top1 %.4f in %.1f s\n", o.top1, o.total_s);
}

static const char *p_ce_final(char *p, size_t cap) {
    snprintf(p, cap, "%s/b/runs/fmnist_lt_tiny/ci/ce/seed0/ckpt_final.ltc", fx_scratch);
    return p;
}

static void test_shared_stage1(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    if (!g_ref.ok) skip();
    lt_run_request r;
    request(&r, "b", "test_decoupled");
    lt_run_outcome o;
    assert_int_equal(lt_runner_run(&r, &o), LT_OK);
    if (!o.ok) fail_msg("decoupled run failed: %s", o.reason);
    /* ce was trained first (its numbers: test_same_seed_same_numbers) */
    char p[1200], q[1200];
    snprintf(p, sizeof p, "%s/b/runs/fmnist_lt_tiny/ci/ce/seed0/result.json", fx_scratch);
    lt_run_outcome ce;
    assert_int_equal(lt_result_read(p, &ce), LT_OK);
    assert_true(ce.ok);
    /* stage 2 trained the head on the frozen, shared backbone */
    lt_ckpt *a, *b;
    snprintf(p, sizeof p, "%s/b/runs/fmnist_lt_tiny/ci/ce/seed0/ckpt_final.ltc", fx_scratch);
    path_in(&o, "ckpt_final.ltc", q, sizeof q);
    assert_int_equal(lt_ckpt_read(&a, p), LT_OK);
    assert_int_equal(lt_ckpt_read(&b, q), LT_OK);
    const void *da, *db;
    size_t na, nb;
    assert_int_equal(lt_ckpt_get(a, "m/w/conv1.weight", &da, &na), LT_OK);
    assert_int_equal(lt_ckpt_get(b, "m/w/conv1.weight", &db, &nb), LT_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    assert_int_equal(lt_ckpt_get(a, "m/w/logits.weight", &da, &na), LT_OK);
    assert_int_equal(lt_ckpt_get(b, "m/w/logits.weight", &db, &nb), LT_OK);
    assert_int_equal(na, nb);
    /* the head stage 2 trained: numbers (NaNs would differ from ce's too) */
    for (size_t i = 0; i < nb / sizeof(float); i++)
        if (!isfinite(((const float *)db)[i])) fail_msg("decoupled logits.weight[%zu] is %g", i, ((const float *)db)[i]);
    assert_true(memcmp(da, db, na) != 0);
    lt_ckpt_free(a);
    lt_ckpt_free(b);
    cJSON *j = fx_read_json(o.result_path);
    assert_string_equal(get(j, "method.stage1_from")->valuestring, "ce");
    assert_int_equal(cJSON_GetArraySize(get(j, "timings.stages_s")), 2);
    /* provenance: the bytes of the stage-1 checkpoint it loaded, and the code
     * (commit, engine) of the stage-1 run, read from ce's result.json */
    char hex[65];
    assert_int_equal(lt_sha256_file(p_ce_final(p, sizeof p), hex), LT_OK);
    assert_string_equal(get(j, "method.stage1.checkpoint_sha256")->valuestring, hex);
    snprintf(q, sizeof q, "%s/b/runs/fmnist_lt_tiny/ci/ce/seed0/result.json", fx_scratch);
    cJSON *cej = fx_read_json(q);
    assert_string_equal(get(j, "method.stage1.commit")->valuestring, get(cej, "env.commit")->valuestring);
    assert_string_equal(get(j, "method.stage1.engine_version")->valuestring, LT_ENGINE_VERSION);
    assert_true(cJSON_IsBool(get(j, "method.stage1.dirty")) || cJSON_IsNull(get(j, "method.stage1.dirty")));
    /* the stage-1 run's changes as its own result has them: its hash (dirty
     * tree) or null (clean) */
    const cJSON *sd = get(j, "method.stage1.dirty_diff_sha256"), *cd = get(cej, "env.dirty_diff_sha256");
    assert_non_null(sd);
    assert_non_null(cd);
    if (cJSON_IsString(cd)) assert_string_equal(sd->valuestring, cd->valuestring);
    else assert_true(cJSON_IsNull(cd) && cJSON_IsNull(sd));
    cJSON_Delete(cej);
    /* env gains the whole CPU model string next to the older keys */
    assert_true(cJSON_IsString(get(j, "env.cpu_model")));
    assert_true(cJSON_IsString(get(j, "env.conv_backend")));
    cJSON_Delete(j);
    path_in(&o, "events.jsonl", p, sizeof p);
    char *ev = tf_slurp(p, NULL);
    assert_non_null(ev);
    assert_non_null(strstr(ev, "\"shared_from\":\"ce\""));
    assert_non_null(strstr(ev, "\"event\":\"epoch_end\",\"stage\":2,\"epoch\":0"));
    assert_null(strstr(ev, "\"event\":\"epoch_end\",\"stage\":1"));
    free(ev);

    /* the hash is the one taken at load: re-evaluating from this run's final
     * checkpoint after the stage-1 checkpoint's bytes changed keeps it, and
     * no longer claims the stage-1 run's commit (it may be another run's) */
    char saved[1300];
    snprintf(saved, sizeof saved, "%s.saved", p_ce_final(p, sizeof p));
    assert_int_equal(rename(p, saved), 0);
    {   /* the same records plus one: a valid checkpoint of ce, other bytes */
        lt_ckpt *k;
        lt_ckpt_writer *w;
        assert_int_equal(lt_ckpt_read(&k, saved), LT_OK);
        assert_int_equal(lt_ckpt_writer_open(&w, p), LT_OK);
        for (int i = 0; i < lt_ckpt_count(k); i++) {
            const void *d;
            size_t nd;
            assert_int_equal(lt_ckpt_get(k, lt_ckpt_name(k, i), &d, &nd), LT_OK);
            assert_int_equal(lt_ckpt_put(w, lt_ckpt_name(k, i), d, nd), LT_OK);
        }
        assert_null(lt_ckpt_name(k, lt_ckpt_count(k)));
        assert_int_equal(lt_ckpt_put(w, "test/extra", "x", 1), LT_OK);
        assert_int_equal(lt_ckpt_commit(w), LT_OK);
        lt_ckpt_free(k);
    }
    assert_int_equal(remove(o.result_path), 0);
    lt_run_outcome o2;
    if (lt_runner_run(&r, &o2) != LT_OK) fail_msg("re-evaluation: %s", lt_errmsg());
    if (!o2.ok) fail_msg("re-evaluation failed: %s", o2.reason);
    j = fx_read_json(o2.result_path);
    assert_string_equal(get(j, "method.stage1.checkpoint_sha256")->valuestring, hex);
    assert_true(cJSON_IsNull(get(j, "method.stage1.commit")));
    cJSON_Delete(j);
    assert_int_equal(rename(saved, p), 0);
}

static void test_cli(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    char *help[] = {"run", "--help", NULL};
    assert_int_equal(lt_cmd_run(2, help), 0);
    char *none[] = {"run", NULL};
    assert_int_equal(lt_cmd_run(1, none), 2);
    char *bad[] = {"run", "--protocol", g_proto, "--method", "nope", "--scale", "ci", NULL};
    assert_int_equal(lt_cmd_run(7, bad), 2);
    char *badscale[] = {"run", "--protocol", g_proto, "--method", "ce", "--scale", "huge", NULL};
    assert_int_equal(lt_cmd_run(7, badscale), 2);
    char *badopt[] = {"run", "--frobnicate", "1", NULL};
    assert_int_equal(lt_cmd_run(3, badopt), 2);
    char root[400];
    snprintf(root, sizeof root, "%s/cli", fx_scratch);
    char *crash[] = {"run", "--protocol", g_proto, "--method", "test_crash", "--scale", "ci", "--results", root,
                     "--quiet", NULL};
    assert_int_equal(lt_cmd_run(10, crash), 1);
    char *list[] = {"list", "methods", NULL};
    assert_int_equal(lt_cmd_list(2, list), 0);
    char *badlist[] = {"list", "things", NULL};
    assert_int_equal(lt_cmd_list(2, badlist), 2);
}

/* per_class.csv's weight_norm column of a finished run: n values, NAN where empty. */
static void weight_norms(const lt_run_outcome *o, double *wn, int n) {
    char p[1200], line[256];
    path_in(o, "per_class.csv", p, sizeof p);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    for (int j = 0; j < n; j++) {
        assert_non_null(fgets(line, sizeof line, f));
        const char *last = strrchr(line, ',');
        assert_non_null(last);
        wn[j] = last[1] == '\n' || last[1] == 0 ? NAN : strtod(last + 1, NULL);
    }
    fclose(f);
}

/* per_class.csv records each method's EFFECTIVE classifier norms (the
 * weight-norm figure): ce its head rows, taunorm (tau = 1) its normalised
 * rows, norm 1, and ncm its centroids (unit for l2n_cos), not ce's rows. */
static void test_effective_weight_norms(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    if (!g_ref.ok) skip();
    double ce[10], tn[10], nc[10];
    weight_norms(&g_ref, ce, 10);
    const char *m[2] = {"taunorm", "ncm"};
    double *out[2] = {tn, nc};
    for (int k = 0; k < 2; k++) {
        lt_run_request r;
        request(&r, "a", m[k]);   /* re-uses the ce run of test_ce_run_files */
        lt_run_outcome o;
        assert_int_equal(lt_runner_run(&r, &o), LT_OK);
        if (!o.ok) fail_msg("%s run failed: %s", m[k], o.reason);
        weight_norms(&o, out[k], 10);
    }
    int differ = 0;
    for (int j = 0; j < 10; j++) {
        /* a NaN or infinite norm fails here rather than counting as a
         * row that differs from 1 */
        assert_true(isfinite(ce[j]) && ce[j] > 0);
        assert_float_equal(tn[j], 1.0, 1e-6);
        assert_float_equal(nc[j], 1.0, 1e-6);
        differ += fabs(ce[j] - 1.0) > 1e-3;
    }
    assert_true(differ > 0);   /* ce's raw rows are not unit rows */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce_run_files),
        cmocka_unit_test(test_effective_weight_norms),
        cmocka_unit_test(test_shared_stage1),
        cmocka_unit_test(test_shared_stage1_removed_meanwhile),
        cmocka_unit_test(test_same_seed_same_numbers),
        cmocka_unit_test(test_conv_path_option),
        cmocka_unit_test(test_killed_run_resumes_exactly),
        cmocka_unit_test(test_other_threads_start_afresh),
        cmocka_unit_test(test_restart_killed_leaves_no_old_result),
        cmocka_unit_test(test_crash_is_isolated),
        cmocka_unit_test(test_nan_is_isolated),
        cmocka_unit_test(test_timeout_is_isolated),
        cmocka_unit_test(test_unknown_method),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_shipped_ci_scale),
    };
    return cmocka_run_group_tests(tests, setup, fx_scratch_teardown);
}
