/* test_run_cuemu.c — `ltbench run --device cuda` end to end, on the CPU
 * emulator of the CUDA backend (build/libltcuemu.so, tests/cuemu): the
 * harness's whole GPU path (device probe in a child, the backend made in
 * the run's child, lt_step's captured training step, evaluation through
 * the host copies, checkpoints, result files) in both activation layouts
 * (--layout).
 *
 * Checked:
 *  - --layout nhwc: the run finishes in ce@cuda-nhwc/ and records
 *    env.cuda_layout "nhwc"; with LT_CUEMU_DNN_FORMAT=nhwc (the emulator
 *    refuses every NCHW tensor or filter descriptor) it still finishes, so
 *    every convolution of the run, evaluation included, was NHWC;
 *  - killed after its first epoch's checkpoint and resumed, the NHWC run
 *    ends with the uninterrupted one's metrics and per-class file;
 *  - the default layout under the same switch fails at its first
 *    convolution: a failed row naming cuDNN's refusal (the switch bites);
 *  - the default layout without the switch finishes in ce@cuda/ with
 *    env.cuda_layout "nchw", and its metrics and per-class file equal the
 *    NHWC run's: on the emulator a deterministic NHWC step is the NCHW
 *    step bit for bit (its convolutions by construction, batch norm, pools
 *    and the rest by the op table's 0 errors), so a difference is the
 *    harness's (a host copy or an evaluation in the wrong layout). On a GPU
 *    the two differ in the last bits and are separate rows.
 *  - the default layout with LT_CUDA_WGRAD_STREAM=1 (the filter-gradient
 *    stream) lands in ce@cuda/ too, records env.cuda_wgrad_stream true
 *    (false without it) and ends with the same metrics and per-class file;
 *  - `ltbench reproduce` and a local `ltbench sweep` with --layout nhwc
 *    (under the same switch) pass the layout on to their runs: they land
 *    in ce@cuda-nhwc/ with the NHWC run's numbers, the sweep's log is named
 *    for that directory, and no ce@cuda/ appears;
 *  - a method whose backbone has layers without CUDA code (and no host
 *    hooks) finishes, and its log says once, before the first epoch, that
 *    those layers run on the host and no step is captured;
 * The protocol is fmnist_lt_r100's ci scale cut further than the runner
 * tests' (6 training images per class, 24 test images, batch 16): the
 * emulator trains at about 25 images a second.
 * Skips: Fashion-MNIST absent, the emulator module not built (make cuemu),
 * under AddressSanitizer (minutes there). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_report.h"
#include "cmd_sweep.h"
#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "host_plugin.h"
#include "lt.h"
#include "lt_io.h"
#include "lt_method.h"
#include "lt_runner.h"
#include <time.h>

static char g_proto[600];
static char g_proto1[600];     /* the same cut, one epoch per stage */
static char g_proto0[600];     /* the smallest cut: 2 images per class, one epoch, batches of 8 */
static const char *g_run_proto;  /* the protocol of emu_run_hp's runs (NULL: g_proto) */
static char g_emu[PATH_MAX];   /* the emulator module, "" when not built */

static const char *g_argv0;

static int setup(void **state)
{
    g_emu[0] = '\0';
    /* the module beside this binary's build directory: <build>/tests/x -> <build>/libltcuemu.so */
    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s", g_argv0);
    char *d = dirname(dirname(self));
    char emu[PATH_MAX + 32];
    snprintf(emu, sizeof emu, "%s/libltcuemu.so", d);
    if (access(emu, R_OK) == 0 && realpath(emu, g_emu) == NULL) g_emu[0] = '\0';
    if (fx_train_blocker(NULL) || !g_emu[0]) return 0;   /* every case skips */
    /* fmnist_lt_r100's ci scale cut to 6 training images per class, the
     * first 24 test images, batches of 16; one epoch per stage; and the
     * smallest cut (under AddressSanitizer too) */
    if (fx_scratch_setup(state) || fx_protocol_cut(fx_scratch, "fmnist_lt_emu", 0, 6, 24, 16, g_proto, sizeof g_proto) ||
        fx_protocol_cut(fx_scratch, "fmnist_lt_emu1", 1, 6, 24, 16, g_proto1, sizeof g_proto1) ||
        fx_protocol_cut(fx_scratch, "fmnist_lt_emu0", 1, 2, 8, 8, g_proto0, sizeof g_proto0))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    return fx_scratch[0] ? fx_scratch_teardown(state) : 0;
}

/* ASAN_WHY: why the case skips under AddressSanitizer (NULL: it runs there) */
#define SKIP_UNLESS_EMU_OR(asan_why)                                                                     \
    do {                                                                                                 \
        FX_SKIP_UNLESS_RUNNABLE(asan_why);                                                               \
        if (!g_emu[0]) {                                                                                 \
            print_message("skip: the CUDA emulator module (libltcuemu.so) is not built: make cuemu\n"); \
            skip();                                                                                      \
        }                                                                                                \
    } while (0)
#define SKIP_UNLESS_EMU() SKIP_UNLESS_EMU_OR("the emulated GPU runs take minutes under AddressSanitizer")

/* The progress output of the next emulated runs (NULL: quiet). */
static FILE *g_log;

/* One emulated cuda run of METHOD, seed 0, deterministic, results under
 * ROOT; ONLY_FORMAT: LT_CUEMU_DNN_FORMAT for it (NULL: none); KILL: killed
 * after that epoch's checkpoint (0: not). */
static void emu_run_hp(const char *root, const char *method, const char *hparams, const char *layout,
                       const char *only_format, int kill, lt_run_outcome *o)
{
    lt_run_request r;
    fx_request(&r, g_run_proto ? g_run_proto : g_proto, root, method, 1);
    r.hparams = hparams;
    r.device = "cuda";
    r.deterministic = 1;
    r.layout = layout;
    r.kill_after_epoch = kill;
    if (g_log) {
        r.quiet = 0;
        r.log = g_log;
    }
    setenv("LTBENCH_CUDA_LIB", g_emu, 1);
    if (only_format) setenv("LT_CUEMU_DNN_FORMAT", only_format, 1);
    int rc = lt_runner_run(&r, o);
    unsetenv("LT_CUEMU_DNN_FORMAT");
    unsetenv("LTBENCH_CUDA_LIB");
    if (rc != LT_OK) fail_msg("%s %s run: status %d: %s", method, layout ? layout : "default", rc, lt_errmsg());
}

static void emu_run_method(const char *root, const char *method, const char *layout, const char *only_format,
                           int kill, lt_run_outcome *o)
{
    emu_run_hp(root, method, NULL, layout, only_format, kill, o);
}

static void emu_run(const char *root, const char *layout, const char *only_format, int kill, lt_run_outcome *o)
{
    emu_run_method(root, "ce", layout, only_format, kill, o);
}

/* Runs a command function with this process's stdout (and its children's)
 * in a file; its exit status, the text in *out (malloc'ed). */
static int call_out(int (*fn)(int, char **), char **argv, char **out)
{
    int argc = 0;
    while (argv[argc]) argc++;
    char path[] = "/tmp/lt_run_cuemu_outXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(1);
    assert_true(saved >= 0);
    assert_true(dup2(fd, 1) >= 0);
    setenv("LTBENCH_CUDA_LIB", g_emu, 1);
    setenv("LT_CUEMU_DNN_FORMAT", "nhwc", 1);
    int rc = fn(argc, argv);
    unsetenv("LT_CUEMU_DNN_FORMAT");
    unsetenv("LTBENCH_CUDA_LIB");
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    close(fd);
    size_t n;
    *out = NULL;
    assert_int_equal(lt_io_read_all(path, out, &n), LT_OK);
    unlink(path);
    return rc;
}

/* The metrics object of a result file, as text. */
static char *metrics_text(const char *result_path)
{
    cJSON *d = fx_read_json(result_path);
    char *t = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(d, "metrics"));
    cJSON_Delete(d);
    assert_non_null(t);
    return t;
}

/* A command (reproduce, sweep) with --layout nhwc whose "--results"
 * value is "<root>": run with results in fx_scratch/ROOT under the
 * NHWC-only switch; its run must land in ce@cuda-nhwc/ with the metrics
 * WANT, and no ce@cuda/ may appear. */
static void nhwc_command(int (*fn)(int, char **), char **argv, const char *root, const char *want)
{
    char dir[700], path[1200];
    snprintf(dir, sizeof dir, "%s/%s", fx_scratch, root);
    for (int i = 0; argv[i]; i++)
        if (!strcmp(argv[i], "<root>")) argv[i] = dir;
    char *out;
    int rc = call_out(fn, argv, &out);
    if (rc) fail_msg("%s --layout nhwc: exit %d: %s", argv[0], rc, out);
    free(out);
    snprintf(path, sizeof path, "%s/runs/fmnist_lt_emu/ci/ce@cuda-nhwc/seed0/result.json", dir);
    char *got = metrics_text(path);
    assert_string_equal(got, want);
    free(got);
    snprintf(path, sizeof path, "%s/runs/fmnist_lt_emu/ci/ce@cuda", dir);
    assert_int_equal(access(path, F_OK), -1);
}

static const char *env_str(const cJSON *doc, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "env"), key);
    return cJSON_IsString(v) ? v->valuestring : "(absent)";
}

/* 1 / 0 for a boolean env key, -1 when absent or not a boolean */
static int env_bool(const cJSON *doc, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "env"), key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

static void test_layouts_end_to_end(void **state)
{
    (void)state;
    SKIP_UNLESS_EMU();
    char want[1200];

    /* NHWC, with every NCHW descriptor refused */
    lt_run_outcome nhwc;
    emu_run("emu", "nhwc", "nhwc", 0, &nhwc);
    if (!nhwc.ok) fail_msg("the NHWC run failed: %s", nhwc.reason);
    snprintf(want, sizeof want, "%s/emu/runs/fmnist_lt_emu/ci/ce@cuda-nhwc/seed0", fx_scratch);
    assert_string_equal(nhwc.run_dir, want);
    cJSON *a = fx_read_json(nhwc.result_path);
    assert_string_equal(env_str(a, "backend"), "cuda");
    assert_string_equal(env_str(a, "gpu_name"), LT_CUEMU_DEVICE_NAME);
    assert_string_equal(env_str(a, "cuda_layout"), "nhwc");
    assert_string_equal(env_str(a, "cuda_math"), "fp32");

    /* killed after its first epoch's checkpoint and resumed, still NHWC
     * throughout: the uninterrupted run's numbers */
    lt_run_outcome resumed;
    emu_run("emu-resume", "nhwc", "nhwc", 1, &resumed);
    assert_false(resumed.ok);
    assert_non_null(strstr(resumed.reason, "signal 9"));
    emu_run("emu-resume", "nhwc", "nhwc", 0, &resumed);
    if (!resumed.ok) fail_msg("the resumed NHWC run failed: %s", resumed.reason);
    fx_assert_same_outcome(&nhwc, &resumed);

    /* NCHW under the same switch: refused at its first convolution */
    lt_run_outcome refused;
    emu_run("emu-refused", NULL, "nhwc", 0, &refused);
    assert_false(refused.ok);
    if (!strstr(refused.reason, "NOT_SUPPORTED")) fail_msg("reason: %s", refused.reason);

    /* NCHW: its own directory, the same numbers here */
    lt_run_outcome nchw;
    emu_run("emu", NULL, NULL, 0, &nchw);
    if (!nchw.ok) fail_msg("the NCHW run failed: %s", nchw.reason);
    snprintf(want, sizeof want, "%s/emu/runs/fmnist_lt_emu/ci/ce@cuda/seed0", fx_scratch);
    assert_string_equal(nchw.run_dir, want);
    cJSON *b = fx_read_json(nchw.result_path);
    assert_string_equal(env_str(b, "cuda_layout"), "nchw");
    assert_int_equal(env_bool(b, "cuda_wgrad_stream"), 0);
    fx_assert_same_outcome(&nhwc, &nchw);
    cJSON_Delete(a);
    cJSON_Delete(b);

    /* NCHW with the filter-gradient stream (LT_CUDA_WGRAD_STREAM=1): the
     * same row and numbers (timing only), and the record says so */
    lt_run_outcome ws;
    setenv("LT_CUDA_WGRAD_STREAM", "1", 1);
    emu_run("emu-wgrad", NULL, NULL, 0, &ws);
    unsetenv("LT_CUDA_WGRAD_STREAM");
    if (!ws.ok) fail_msg("the run with the filter-gradient stream failed: %s", ws.reason);
    snprintf(want, sizeof want, "%s/emu-wgrad/runs/fmnist_lt_emu/ci/ce@cuda/seed0", fx_scratch);
    assert_string_equal(ws.run_dir, want);
    cJSON *c = fx_read_json(ws.result_path);
    assert_int_equal(env_bool(c, "cuda_wgrad_stream"), 1);
    cJSON_Delete(c);
    fx_assert_same_outcome(&nchw, &ws);

    /* reproduce and a local sweep, each into a results root of its own */
    char *metrics = metrics_text(nhwc.result_path);
    char *rep[] = {"reproduce", "--method", "ce", "--protocol", g_proto, "--scale", "ci", "--seeds", "0",
                   "--results", "<root>", "--threads", "1", "--device", "cuda", "--layout", "nhwc",
                   "--deterministic", "--no-report", NULL};
    nhwc_command(lt_cmd_reproduce, rep, "emu-repro", metrics);
    char *sw[] = {"sweep", "--methods", "ce", "--protocols", g_proto, "--seeds", "0", "--scale", "ci",
                  "--results", "<root>", "--threads", "1", "--device", "cuda", "--layout", "nhwc",
                  "--deterministic", "--no-report", NULL};
    nhwc_command(lt_cmd_sweep, sw, "emu-sweep", metrics);
    char path[1200];
    snprintf(path, sizeof path, "%s/emu-sweep/sweep/logs/fmnist_lt_emu.ci.ce@cuda-nhwc.seed0.log", fx_scratch);
    assert_int_equal(access(path, F_OK), 0);
    free(metrics);
}

/* The events named NAME of a run's events.jsonl, in order, as one JSON
 * array (the caller deletes it). */
static cJSON *events_named(const char *run_dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/events.jsonl", run_dir);
    char *text = NULL;
    size_t n;
    assert_int_equal(lt_io_read_all(path, &text, &n), LT_OK);
    cJSON *out = cJSON_CreateArray();
    assert_non_null(out);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *d = cJSON_Parse(line);
        if (!d) fail_msg("%s: a line that is not JSON: %.80s", path, line);
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(d, "event");
        if (cJSON_IsString(ev) && !strcmp(ev->valuestring, name)) cJSON_AddItemToArray(out, d);
        else cJSON_Delete(d);
    }
    free(text);
    return out;
}

/* The epoch_end events of a run, in order over every stage the run
 * trained: the value of KEY in the E-th (0-based; -1 when absent), and how
 * many carry it. */
static double epoch_value(const char *run_dir, int e, const char *key, int *n_with)
{
    cJSON *evs = events_named(run_dir, "epoch_end");
    double got = -1;
    *n_with = 0;
    const cJSON *d;
    int i = 0;
    cJSON_ArrayForEach(d, evs) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "value"), key);
        if (cJSON_IsNumber(v)) {
            ++*n_with;
            if (i == e) got = v->valuedouble;
        }
        i++;
    }
    cJSON_Delete(evs);
    return got;
}

/* value.KEY (a string) of a run's first event named NAME, into out */
static void event_string(const char *run_dir, const char *name, const char *key, char *out, size_t cap)
{
    cJSON *evs = events_named(run_dir, name);
    out[0] = '\0';
    const cJSON *d;
    cJSON_ArrayForEach(d, evs) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "value"), key);
        if (cJSON_IsString(v)) {
            snprintf(out, cap, "%s", v->valuestring);
            break;
        }
    }
    cJSON_Delete(evs);
    if (!out[0]) fail_msg("%s: no %s event with value.%s", run_dir, name, key);
}

/* how many events named NAME a run's log holds */
static int count_events(const char *run_dir, const char *name)
{
    cJSON *evs = events_named(run_dir, name);
    const int k = cJSON_GetArraySize(evs);
    cJSON_Delete(evs);
    return k;
}

/* The values a method logged under KEY (run->log: "method" events with
 * that key), in order, up to CAP; how many there were. */
static int method_values(const char *run_dir, const char *key, double *out, int cap)
{
    cJSON *evs = events_named(run_dir, "method");
    int k = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, evs) {
        const cJSON *kk = cJSON_GetObjectItemCaseSensitive(d, "key");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "value");
        if (cJSON_IsString(kk) && !strcmp(kk->valuestring, key) && cJSON_IsNumber(v)) {
            if (k < cap) out[k] = v->valuedouble;
            k++;
        }
    }
    cJSON_Delete(evs);
    return k;
}

/* A method whose loss runs on the host (LT_METHOD_HOST_TAPS: bsig, the
 * balanced sigmoid loss, whose stage_begin also sets the head's bias
 * through the host copy) trains on the emulated device: its loss on host
 * copies of the logits between the device's forward and backward, eager
 * steps, host_hook_s recorded each epoch. Its first epoch's loss is the
 * cpu run's up to rounding (a gradient that never reached the device, or
 * a bias left at its initialisation, would not be), and differs from ce's
 * (the hook ran: this cut of the protocol is balanced, so bsm's loss would
 * be ce's). bsm_dec, its stage 1 shared from ce's device run, finishes.
 * Killed and resumed, it ends with the uninterrupted run's numbers.
 * taunorm's post_train and class_norms run on the cpu twin of the device
 * model: its class norms are ce's device head's, tau-normalised; lws and
 * ncm finish. */
static void test_host_loss_on_device(void **state)
{
    (void)state;
    SKIP_UNLESS_EMU();
    lt_run_outcome dev;
    g_log = tmpfile();
    assert_non_null(g_log);
    emu_run_method("emu-bsig", "bsig", NULL, NULL, 0, &dev);
    if (!dev.ok) fail_msg("bsig on the emulated device failed: %s", dev.reason);
    /* each epoch's log line says the round trip's share */
    char logtext[8192];
    fflush(g_log);
    rewind(g_log);
    const size_t got = fread(logtext, 1, sizeof logtext - 1, g_log);
    logtext[got] = '\0';
    fclose(g_log);
    g_log = NULL;
    if (!strstr(logtext, "img/s (host hooks ")) fail_msg("bsig's log has no host-hook share:\n%s", logtext);
    char want[1200];
    snprintf(want, sizeof want, "%s/emu-bsig/runs/fmnist_lt_emu/ci/bsig@cuda/seed0", fx_scratch);
    assert_string_equal(dev.run_dir, want);
    int n_hook = 0, n_eager = 0, n_loss = 0;
    const double hook_s = epoch_value(dev.run_dir, 0, "host_hook_s", &n_hook);
    const double eager = epoch_value(dev.run_dir, 0, "eager_steps", &n_eager);
    const double loss_dev = epoch_value(dev.run_dir, 0, "loss", &n_loss);
    assert_true(n_loss >= 2);
    assert_int_equal(n_hook, n_loss);   /* every epoch */
    assert_int_equal(n_eager, n_loss);
    assert_true(hook_s > 0);
    assert_true(eager >= 1);

    /* the cpu run of the same request */
    lt_run_request r;
    fx_request(&r, g_proto, "emu-bsig-cpu", "bsig", 1);
    lt_run_outcome cpu;
    assert_int_equal(lt_runner_run(&r, &cpu), LT_OK);
    if (!cpu.ok) fail_msg("bsig on cpu failed: %s", cpu.reason);
    int k;
    const double loss_cpu = epoch_value(cpu.run_dir, 0, "loss", &k);
    assert_int_equal(epoch_value(cpu.run_dir, 0, "host_hook_s", &k), -1);   /* cpu: no host hooks to time */
    print_message("note: bsig first-epoch loss: emulated device %.9f, cpu %.9f; host hooks %.3f s over %.0f steps\n",
                  loss_dev, loss_cpu, hook_s, eager);
    if (!(fabs(loss_dev - loss_cpu) <= 1e-4 * fabs(loss_cpu)))   /* NaN fails */
        fail_msg("bsig's first-epoch loss on the device %.9g, on cpu %.9g", loss_dev, loss_cpu);
    lt_run_outcome ce;
    emu_run("emu-bsig", NULL, NULL, 0, &ce);
    assert_true(ce.ok);
    const double loss_ce = epoch_value(ce.run_dir, 0, "loss", &k);
    if (!(fabs(loss_ce - loss_dev) >= 1e-3 * fabs(loss_ce)))   /* NaN fails */
        fail_msg("bsig's first-epoch loss %.9g is ce's %.9g: the method's loss did not run", loss_dev, loss_ce);

    /* bsm_dec: its stage 1 shared from that ce run, then the balanced
     * softmax on the host at stage 2 (lt_model_reinit on the device) */
    lt_run_outcome dec;
    emu_run_method("emu-bsig", "bsm_dec", NULL, NULL, 0, &dec);
    if (!dec.ok) fail_msg("bsm_dec on the emulated device failed: %s", dec.reason);
    assert_true(epoch_value(dec.run_dir, 0, "host_hook_s", &k) > 0);

    /* killed after its first epoch and resumed */
    lt_run_outcome resumed;
    emu_run_method("emu-bsig-resume", "bsig", NULL, NULL, 1, &resumed);
    assert_false(resumed.ok);
    emu_run_method("emu-bsig-resume", "bsig", NULL, NULL, 0, &resumed);
    if (!resumed.ok) fail_msg("the resumed bsig run failed: %s", resumed.reason);
    fx_assert_same_outcome(&dev, &resumed);

    /* post_train and class_norms on the cpu twin: taunorm's classifier is
     * ce's device head, copied to the twin; its per_class.csv norms are
     * ||w_j||^(1 - tau) of ce's, tau = 0.5 (a twin left at its
     * initialisation would give other rows) */
    lt_run_outcome tn;
    emu_run_hp("emu-bsig", "taunorm", "{\"tau\": 0.5}", NULL, NULL, 0, &tn);
    if (!tn.ok) fail_msg("taunorm on the emulated device failed: %s", tn.reason);
    cJSON *res = fx_read_json(tn.result_path);
    const cJSON *tau = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, "method_report"), "tau");
    assert_true(cJSON_IsNumber(tau));
    assert_true(tau->valuedouble == 0.5);   /* tau = 1 would make every norm 1 */
    double rn[64], tnn[64];
    const int nc = fx_per_class_norms(ce.run_dir, rn, 64);
    assert_int_equal(fx_per_class_norms(tn.run_dir, tnn, 64), nc);
    assert_true(nc >= 2);
    for (int j = 0; j < nc; j++) {
        const double want_n = pow(rn[j], 1.0 - tau->valuedouble);
        if (!(fabs(tnn[j] - want_n) <= 1e-5 * want_n))   /* NaN fails */
            fail_msg("taunorm class %d: norm %.9g, expected ce's %.9g ^ (1 - %g) = %.9g", j, tnn[j], rn[j],
                     tau->valuedouble, want_n);
    }
    cJSON_Delete(res);
    /* made once, for post_train (class_norms after it uses the same) */
    assert_int_equal(count_events(tn.run_dir, "host_model"), 1);
    char why[32];
    event_string(tn.run_dir, "host_model", "for", why, sizeof why);
    assert_string_equal(why, "post_train");
    /* the other post-hoc methods: lws (a device stage 2, class_norms on
     * the twin), ncm (the feature bank through the device, post_train) */
    static const char *const posthoc[] = {"lws", "ncm"};
    for (int i = 0; i < 2; i++) {
        lt_run_outcome o;
        emu_run_method("emu-bsig", posthoc[i], NULL, NULL, 0, &o);
        if (!o.ok) fail_msg("%s on the emulated device failed: %s", posthoc[i], o.reason);
        assert_int_equal(fx_per_class_norms(o.run_dir, tnn, 64), nc);
        assert_int_equal(count_events(o.run_dir, "host_model"), 1);
    }
}

/* METHOD (hyper-parameters HP) on the emulated device and on cpu, results
 * under ROOT and ROOT-cpu: the first epoch's loss, and the first value the
 * method logged under each of KEYS (NULL-terminated; logged at each epoch's
 * end), within 1e-4 relative; later epochs are printed, not compared (the
 * emulator's convolutions sum in another order than the cpu's, and over
 * this protocol's few images that difference grows: bsm, whose hook is a
 * plain loss, reaches 1.2e-4 in its second epoch). host_hook_s in every
 * epoch. The device run's outcome in *dev. */
static void same_as_cpu_hooks(const char *proto, const char *root, const char *method, const char *hp,
                              const char *const *keys, int hooks, lt_run_outcome *dev)
{
    g_run_proto = proto;
    emu_run_hp(root, method, hp, NULL, NULL, 0, dev);
    g_run_proto = NULL;
    if (!dev->ok) fail_msg("%s on the emulated device failed: %s", method, dev->reason);
    char croot[200];
    snprintf(croot, sizeof croot, "%s-cpu", root);
    lt_run_request r;
    fx_request(&r, proto, croot, method, 1);
    r.hparams = hp;
    lt_run_outcome cpu;
    assert_int_equal(lt_runner_run(&r, &cpu), LT_OK);
    if (!cpu.ok) fail_msg("%s on cpu failed: %s", method, cpu.reason);
    int n_dev = 0, n_cpu = 0, k;
    for (int e = 0;; e++) {
        const double ld = epoch_value(dev->run_dir, e, "loss", &n_dev), lc = epoch_value(cpu.run_dir, e, "loss", &n_cpu);
        if (e >= n_cpu) break;
        print_message("note: %s epoch %d loss: emulated device %.9f, cpu %.9f\n", method, e + 1, ld, lc);
        if (e == 0 && !(fabs(ld - lc) <= 1e-4 * fabs(lc)))
            fail_msg("%s epoch %d: loss %.9g on the device, %.9g on cpu", method, e + 1, ld, lc);
        /* host_hook_s in every epoch (stage 2 too: a stage without hook
         * work still records its eager steps' round trip); a method
         * without host hooks trains through the captured step instead */
        if (hooks) assert_true(epoch_value(dev->run_dir, e, "host_hook_s", &k) > 0);
        else assert_true(epoch_value(dev->run_dir, e, "graph_steps", &k) > 0);
    }
    assert_int_equal(n_dev, n_cpu);
    assert_true(n_cpu >= 1);
    for (const char *const *key = keys; *key; key++) {
        double vd[16], vc[16];
        const int nv = method_values(dev->run_dir, *key, vd, 16);
        assert_int_equal(method_values(cpu.run_dir, *key, vc, 16), nv);
        if (nv < 1) fail_msg("%s logged no %s", method, *key);
        for (int i = 0; i < nv && i < 16; i++) {
            print_message("note: %s %s #%d: emulated device %.9f, cpu %.9f\n", method, *key, i + 1, vd[i], vc[i]);
            if (i == 0 && !(fabs(vd[i] - vc[i]) <= 1e-4 * fabs(vc[i])))
                fail_msg("%s: %s #%d is %.9g on the device, %.9g on cpu", method, *key, i + 1, vd[i], vc[i]);
        }
    }
}

static void same_as_cpu(const char *proto, const char *root, const char *method, const char *hp,
                        const char *const *keys, lt_run_outcome *dev)
{
    same_as_cpu_hooks(proto, root, method, hp, keys, 1, dev);
}

/* camc: its layer (cam_pool, CUDA kernels of its own) reads the batch's
 * labels, which lt_step hands the model from its staged copy, so a
 * captured step's replays see each batch's labels. On the 6-image cut,
 * through the CUDA graph (graph steps in every epoch): the first epoch's
 * loss is the cpu run's up to rounding. (The layer in NHWC and its top-1
 * training path, cam_class "pred", are test_model_cuda's cam_pool case.) */
static void test_camc_on_device(void **state)
{
    (void)state;
    SKIP_UNLESS_EMU();
    static const char *const no_keys[] = {NULL};
    lt_run_outcome dev;
    same_as_cpu_hooks(g_proto1, "emu-camc", "camc", NULL, no_keys, 0, &dev);
}

/* Methods whose hooks use a sub-graph of the device model (its rows host
 * arrays there too) or the model's host copies (LT_METHOD_HOST_TAPS), each
 * against its cpu run, on one-epoch cuts (every stage one epoch: a stage
 * shared from another run trained alike on both backends): mbj on the
 * 6-image-per-class cut (3 iterations: a gradient of its second reaches
 * the third's loss), the others on the 2-image cut.
 *  - mbj, its memory's features through the head (first_epoch 0, so the
 *    first epoch uses it from its second iteration): the head's gradient
 *    accumulates on the device before the batch's backward. The first
 *    epoch's loss and memory-term loss are the cpu run's up to rounding,
 *    and the memory holds as many rows; the term ran in every epoch.
 *  - bcrumb, a class-aware batch through the backbone (input -> feat, BN
 *    in training mode) in its batch_hook, training Cb, a module, which is
 *    a cpu model on a device run: the first epoch's loss, Cb's loss and
 *    accuracy are the cpu run's up to rounding;
 *  - iccl, whose batch hook appends drawn and mixed rows and whose loss
 *    reads the projection head's output through a host copy and copies its
 *    extra gradient in (lt_model_out_to_host / lt_model_dout_from_host):
 *    the first epoch's loss, centroid loss and CE are the cpu run's up to
 *    rounding, and its cRT stage 2 finishes;
 *  - cbd, whose loss forwards its frozen teacher (a device model) on the
 *    batch's host rows and reads its features, and the student's
 *    projection, through host copies (stage_begin and epoch_end copy
 *    parameters the same way): its teacher trained on each backend the
 *    same up to rounding, the student's first epoch's loss is the cpu
 *    run's up to rounding;
 *  - balms (its stage 1 shared from ce), whose loss reads
 *    the classifier through host copies and the optimizer's momentum
 *    through opt_state (host copies on a device run) for its meta step:
 *    the first epoch's loss, meta loss and sampler extremes are the cpu
 *    run's up to rounding;
 *  - ssd, whose key encoder and teacher are modules (cpu models on a
 *    device run) tied to the device model by lt_ema (its EMA, the
 *    teacher's copy and the fresh student's copy through host copies),
 *    and whose losses read proj2 and the soft head through host copies
 *    and copy their gradients in: stage I's loss and contrastive loss and
 *    stage III's KD loss are the cpu run's up to rounding, over its three
 *    stages, and so is the test ECE of the soft head's scores (predict). */
static void test_host_hook_methods_on_device(void **state)
{
    (void)state;
    SKIP_UNLESS_EMU();
    static const char *const mbj_keys[] = {"mbj_memory_loss", "mbj_memory_rows", NULL};
    lt_run_outcome dev;
    same_as_cpu(g_proto1, "emu-mbj", "mbj", "{\"first_epoch\": 0}", mbj_keys, &dev);
    double ml[8];
    int ne;
    epoch_value(dev.run_dir, 0, "loss", &ne);
    assert_int_equal(method_values(dev.run_dir, "mbj_memory_loss", ml, 8), ne);   /* the term ran every epoch */
    static const char *const bc_keys[] = {"bcrumb_cb_loss", "bcrumb_cb_acc", NULL};
    same_as_cpu(g_proto0, "emu-bcrumb", "bcrumb", NULL, bc_keys, &dev);
    static const char *const iccl_keys[] = {"iccl_loss", "iccl_ce", NULL};
    same_as_cpu(g_proto0, "emu-iccl", "iccl", NULL, iccl_keys, &dev);
    static const char *const no_keys[] = {NULL};
    /* its teacher, trained on each backend, must be the same up to
     * rounding: one epoch (after two, this protocol's training drifts
     * apart by 4e-3 in the loss: cbd_teacher's second epoch) */
    same_as_cpu(g_proto0, "emu-cbd", "cbd", NULL, no_keys, &dev);
    static const char *const balms_keys[] = {"meta_loss", "q_min", "q_max", NULL};
    same_as_cpu(g_proto0, "emu-balms", "balms", NULL, balms_keys, &dev);
    /* two shuffle-BN sub-batches of the 8 rows (the default 8 would leave
     * one row to each BN) */
    static const char *const ssd_keys[] = {"contrastive_loss", "kd_loss", NULL};
    same_as_cpu(g_proto0, "emu-ssd", "ssd", "{\"shuffle_bn_splits\": 2}", ssd_keys, &dev);
    int ns;
    epoch_value(dev.run_dir, 0, "loss", &ns);
    assert_int_equal(ns, 3);   /* its three stages, one epoch each */
    /* its test scores are the soft head's, which predict copies out of the
     * device model: their calibration error is the cpu run's up to rounding */
    char cpath[1200];
    snprintf(cpath, sizeof cpath, "%s/emu-ssd-cpu/runs/fmnist_lt_emu0/ci/ssd/seed0/result.json", fx_scratch);
    cJSON *rd = fx_read_json(dev.result_path), *rc = fx_read_json(cpath);
    const cJSON *ed = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rd, "metrics"), "ece"),
                *ec = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rc, "metrics"), "ece");
    assert_true(cJSON_IsNumber(ed) && cJSON_IsNumber(ec));
    print_message("note: ssd test ECE: emulated device %.9f, cpu %.9f\n", ed->valuedouble, ec->valuedouble);
    assert_true(ec->valuedouble > 0 && fabs(ed->valuedouble - ec->valuedouble) <= 1e-4 * ec->valuedouble);
    cJSON_Delete(rd);
    cJSON_Delete(rc);
}

/* cbn, whose mixture layers are plugin layers without CUDA code: on the
 * device they run their CPU code on host copies (lt_model_host.c), in the
 * model's passes and in its loss's class-split sub-graph, and its
 * post_train measures on the cpu twin. On the 6-image cut (one epoch, 4
 * iterations): the first epoch's loss is the cpu run's up to rounding,
 * host_layer_s is counted every epoch, and the train-mode and eval-mode
 * accuracies post_train measures are the cpu run's. On the 2-epoch cut the
 * last epoch's progress line ends "img/s (host hooks N%) (host layers
 * M%)" (what train.sh's check-fmnist-ci-cbn notes), and a
 * run killed after its first epoch and resumed ends with the uninterrupted
 * run's metrics and per-class file. */
static void test_cbn_on_device(void **state)
{
    (void)state;
    SKIP_UNLESS_EMU();
    static const char *const cbn_keys[] = {"cbn_train_mode_acc", "cbn_eval_mode_acc", NULL};
    lt_run_outcome dev;
    same_as_cpu(g_proto1, "emu-cbn", "cbn", NULL, cbn_keys, &dev);
    int ne = 0;
    for (int e = 0; e == 0 || e < ne; e++) {
        const double hs = epoch_value(dev.run_dir, e, "host_layer_s", &ne);
        print_message("note: cbn epoch %d: host_layer_s %.3f\n", e + 1, hs);
        assert_true(hs > 0);
    }
    assert_true(ne >= 1);
    /* resume on the device: on the 2-epoch cut, killed after its first
     * epoch's checkpoint (the mixture layers' running pi, mu, sigma^2 and
     * `inited` are device buffers, copied through the host) and resumed,
     * the uninterrupted run's metrics and per-class file */
    lt_run_outcome full, resumed;
    g_log = tmpfile();   /* its progress lines: train.sh greps the epoch line's shares */
    assert_non_null(g_log);
    emu_run_hp("emu-cbn-full", "cbn", NULL, NULL, NULL, 0, &full);
    if (!full.ok) fail_msg("cbn on the emulated device failed: %s", full.reason);
    char line[512];
    int shares = 0;
    rewind(g_log);
    while (fgets(line, sizeof line, g_log)) {
        const char *hk = strstr(line, "img/s (host hooks "), *hl = strstr(line, "%) (host layers ");
        if (strstr(line, "epoch 2/2") && hk && hl && hl > hk) shares++;
    }
    fclose(g_log);
    g_log = NULL;
    assert_int_equal(shares, 1);
    emu_run_hp("emu-cbn-resume", "cbn", NULL, NULL, NULL, 1, &resumed);
    assert_false(resumed.ok);
    assert_non_null(strstr(resumed.reason, "signal 9"));
    emu_run_hp("emu-cbn-resume", "cbn", NULL, NULL, NULL, 0, &resumed);
    if (!resumed.ok) fail_msg("the resumed cbn run failed: %s", resumed.reason);
    epoch_value(full.run_dir, 0, "loss", &ne);
    assert_int_equal(ne, 2);
    fx_assert_same_outcome(&full, &resumed);
}

/* A host-taps method whose batch hook takes HOOK_MS each batch (and whose
 * loss is plain CE): its epoch's host_hook_s must count that wait, since
 * the device waits for it too. */
#define HOOK_MS 40
static int slow_hook(void *st, lt_batch *b, lt_rng *r)
{
    (void)st;
    (void)b;
    (void)r;
    struct timespec ts = {0, HOOK_MS * 1000 * 1000};
    nanosleep(&ts, NULL);
    return LT_OK;
}
static int ce_loss(void *st, const lt_taps *t, double *loss, lt_grads *g)
{
    (void)st;
    return lt_softmax_ce(t->n, t->n_classes, t->logits, t->labels, NULL, NULL, loss, g->dlogits);
}
static const lt_method hook_time_m = {.abi = LT_METHOD_ABI, .name = "test_hook_time", .version = "1",
                                      .cite = "none", .fidelity = "reconstructed", .defaults = "{}",
                                      .flags = LT_METHOD_HOST_TAPS, .batch_hook = slow_hook, .loss = ce_loss};

/* The device paths of a method's host hooks, on the smallest cut (2
 * images per class, one epoch, batches of 8), the one case that also runs
 * under AddressSanitizer (make asan builds the emulator module too): ce
 * through lt_step's captured step, mbj's loss on host taps with its
 * sub-graph on the device (first_epoch 0: the memory term runs), taunorm's
 * post_train and class_norms on the cpu twin of ce's device model, and a
 * test method whose batch hook sleeps HOOK_MS a batch (its loss on host
 * taps). Each finishes; mbj's memory term ran; taunorm made one twin, for
 * post_train; the sleeping hook's time is in host_hook_s. */
static void test_host_hooks_small(void **state)
{
    (void)state;
    SKIP_UNLESS_EMU_OR(NULL);
    g_run_proto = g_proto0;
    lt_run_outcome mb, tn;
    emu_run_hp("emu-small", "mbj", "{\"first_epoch\": 0}", NULL, NULL, 0, &mb);
    emu_run_hp("emu-small", "taunorm", "{\"tau\": 0.5}", NULL, NULL, 0, &tn);
    lt_run_outcome ht;
    int k;
    assert_int_equal(lt_method_register(&hook_time_m), LT_OK);
    emu_run_hp("emu-small", "test_hook_time", NULL, NULL, NULL, 0, &ht);
    g_run_proto = NULL;
    if (!ht.ok) fail_msg("test_hook_time on the emulated device failed: %s", ht.reason);
    const double hs = epoch_value(ht.run_dir, 0, "host_hook_s", &k), iters = epoch_value(ht.run_dir, 0, "iters", &k);
    print_message("note: batch hook of %d ms a batch, %g batches: host_hook_s %.3f\n", HOOK_MS, iters, hs);
    assert_true(iters >= 1 && hs >= iters * HOOK_MS * 1e-3);
    if (!mb.ok) fail_msg("mbj on the emulated device failed: %s", mb.reason);
    if (!tn.ok) fail_msg("taunorm on the emulated device failed: %s", tn.reason);
    double ml[4];
    assert_int_equal(method_values(mb.run_dir, "mbj_memory_loss", ml, 4), 1);
    assert_true(ml[0] > 0);
    assert_true(epoch_value(mb.run_dir, 0, "host_hook_s", &k) > 0);
    assert_int_equal(count_events(tn.run_dir, "host_model"), 1);
}

/* A method whose backbone has a layer without CUDA code (tests/host_plugin.c
 * wherever it has a BN) and no host hooks: on the device, lt_step runs
 * every step eagerly, and the runner says so once, before the first epoch. */
static int host_norm(void *st, lt_model *m, const char *name, const char *group, int in)
{
    (void)st;
    (void)group;
    return hp_add(m, name, in, -1);
}
static const lt_method host_norm_m = {.abi = LT_METHOD_ABI, .name = "test_host_norm", .version = "1",
                                      .cite = "none", .fidelity = "reconstructed", .defaults = "{}",
                                      .norm_layer = host_norm};

static void test_host_layer_notice(void **state)
{
    (void)state;
    SKIP_UNLESS_EMU();
    assert_int_equal(lt_method_register(&host_norm_m), LT_OK);
    g_run_proto = g_proto0;
    g_log = tmpfile();
    assert_non_null(g_log);
    lt_run_outcome o;
    emu_run_hp("emu-notice", "test_host_norm", NULL, NULL, NULL, 0, &o);
    g_run_proto = NULL;
    char line[512];
    int notices = 0, epochs = 0, shares = 0, late = 0;
    rewind(g_log);
    while (fgets(line, sizeof line, g_log)) {
        if (strstr(line, "epoch 1/1")) {
            shares += strstr(line, "(host layers ") != NULL;
            epochs++;
        }
        if (strstr(line, "layer(s) run on the host (no CUDA code: '") && strstr(line, "no CUDA graph")) {
            print_message("%s", line);   /* the notice starts "note: " */
            late += epochs > 0;
            notices++;
        }
    }
    fclose(g_log);
    g_log = NULL;
    if (!o.ok) fail_msg("test_host_norm on the emulated device failed: %s", o.reason);
    assert_int_equal(epochs, 1);
    assert_int_equal(shares, 1);   /* the epoch line gives the host layers' share */
    assert_int_equal(notices, 1);
    assert_int_equal(late, 0);     /* before the first epoch */
}

int main(int argc, char **argv)
{
    (void)argc;
    g_argv0 = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layouts_end_to_end),
        cmocka_unit_test(test_host_loss_on_device),
        cmocka_unit_test(test_camc_on_device),
        cmocka_unit_test(test_host_hook_methods_on_device),
        cmocka_unit_test(test_cbn_on_device),
        cmocka_unit_test(test_host_hooks_small),
        cmocka_unit_test(test_host_layer_notice),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
