/* test_run_hooks.c — the runner's side of training on a device backend
 * (harness/lt_run_train.c lt_run_device_hooks_check, lt_run_on_device),
 * on any machine: a run whose backend is a cuda one (a stand-in backend
 * object: the check reads only its kind and name) refuses exactly the
 * methods with a hook the device step cannot run, naming the method, the
 * hook and the device (none of the table's since cbn declared its host
 * taps: a copy of a method with its flag cleared is refused); every method
 * is accepted on a cpu backend and without one. ce, the sampling
 * baselines and cRT must be accepted, and the hooks on host taps
 * (LT_METHOD_HOST_TAPS: bsm, bsm_dec, bsig, mbj, bcrumb, iccl, cbd, balms,
 * ssd, cbn) and
 * the post-hoc methods (taunorm, lws, ncm: post_train and class_norms run
 * on a cpu twin of the device model).
 * And the twin's copies (lt_run_twin_copy), on a host-memory stand-in
 * device: every parameter and buffer both ways, and a twin whose lists
 * differ from the model's (a build that made another count, name, size or
 * buffer) refused with LT_ESTATE naming the method and both sides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_backend_impl.h"
#include "lt_run_internal.h"
#include "standin_dev.h"

/* the hook the device refuses: batch_hook, loss and iter_end run on host
 * copies for a method that declares LT_METHOD_HOST_TAPS */
static const char *host_hook(const lt_method *M) {
    const int taps = (M->flags & LT_METHOD_HOST_TAPS) != 0;
    if (M->batch_hook && !taps) return "batch_hook";
    if (M->loss && !taps) return "loss";
    if (M->iter_end && !taps) return "iter_end";
    return NULL;   /* post_train and class_norms: on a cpu twin (lt_run_eval.c) */
}

static void test_hooks_check(void **st) {
    (void)st;
    lt_backend *cuda = calloc(1, sizeof *cuda), *cpu = NULL;
    assert_non_null(cuda);
    cuda->kind = LT_BACKEND_CUDA;
    snprintf(cuda->cuda_name, sizeof cuda->cuda_name, "cuda:3");
    lt_cpu_opts o;
    lt_cpu_opts_default(&o);
    assert_int_equal(lt_backend_cpu_create(&o, &cpu), LT_OK);
    lt_run_job job;
    memset(&job, 0, sizeof job);
    lt_child c;
    memset(&c, 0, sizeof c);
    c.job = &job;
    int n = 0, refused = 0, n_mode[3] = {0, 0, 0};
    for (const lt_method_entry *e = lt_method_table; *e; e++, n++) {
        c.M = (*e)();
        const char *hook = host_hook(c.M);
        job.backend = NULL;
        assert_int_equal(lt_run_on_device(&c), 0);
        assert_int_equal(lt_run_device_hooks_check(&c), LT_OK);
        job.backend = cpu;
        assert_int_equal(lt_run_on_device(&c), 0);
        assert_int_equal(lt_run_device_hooks_check(&c), LT_OK);
        job.backend = cuda;
        assert_int_equal(lt_run_on_device(&c), 1);
        lt_err_clear();
        const int rc = lt_run_device_hooks_check(&c);
        /* the mode `ltbench list methods` prints agrees with the check */
        const char *mode_hook = "unset";
        const lt_dev_mode mode = lt_method_dev_mode(c.M, &mode_hook);
        if (hook) assert_string_equal(mode_hook, hook);
        else assert_null(mode_hook);
        assert_int_equal(mode, hook ? LT_DEV_REFUSED
                               : (c.M->loss || c.M->iter_end) ? LT_DEV_HOST_HOOKS
                                                              : LT_DEV_STEP);
        n_mode[mode]++;
        if (!hook) {
            assert_int_equal(rc, LT_OK);
            continue;
        }
        refused++;
        char want[160];
        snprintf(want, sizeof want, "method %s: its %s runs on the host, not supported on cuda:3 yet", c.M->name,
                 hook);
        assert_int_equal(rc, LT_EINVAL);
        assert_string_equal(lt_errmsg(), want);
    }
    print_message("%d methods, %d refused on cuda (%d the whole step on the device, %d with host hooks)\n", n,
                  refused, n_mode[LT_DEV_STEP], n_mode[LT_DEV_HOST_HOOKS]);
    /* every method of the table trains on a device now (cbn's mixture
     * layers as host layers); the refusal itself is the unflagged copy's
     * below */
    assert_true(n > 0 && refused == 0);
    assert_int_equal(n_mode[LT_DEV_REFUSED], refused);
    static const struct { const char *name; lt_dev_mode mode; } known[] = {
        {"ce", LT_DEV_STEP}, {"camc", LT_DEV_STEP}, {"bsig", LT_DEV_HOST_HOOKS}, {"ssd", LT_DEV_HOST_HOOKS},
        {"cbn", LT_DEV_HOST_HOOKS}};
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        const lt_method *M = lt_method_find(known[k].name);
        assert_non_null(M);
        assert_int_equal(lt_method_dev_mode(M, NULL), known[k].mode);
    }
    /* the baselines the device path is for, and the losses on host taps */
    static const char *const ok[] = {"ce",  "cbs",    "srs",     "pbs", "crt", "bsm", "bsm_dec",
                                     "bsig", "mbj", "bcrumb", "iccl", "cbd", "balms", "taunorm", "lws", "ncm",
                                     "camc", "ssd", "cbn"};
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        int found = 0;
        for (const lt_method_entry *e = lt_method_table; *e; e++) {
            c.M = (*e)();
            if (strcmp(c.M->name, ok[k])) continue;
            found = 1;
            assert_int_equal(lt_run_device_hooks_check(&c), LT_OK);
        }
        if (!found) fail_msg("method %s is not in the table", ok[k]);
    }
    /* the flag covers the per-batch hooks; post_train and class_norms are
     * accepted either way (they run on a cpu twin of the device model) */
    lt_method flagged = *lt_method_table[0]();
    flagged.name = "flagged";
    flagged.flags = LT_METHOD_HOST_TAPS;
    flagged.batch_hook = NULL;
    flagged.loss = NULL;
    flagged.iter_end = NULL;
    flagged.post_train = NULL;
    flagged.class_norms = NULL;
    for (const lt_method_entry *e = lt_method_table; *e; e++) {
        const lt_method *M = (*e)();
        if (M->loss && !flagged.loss) flagged.loss = M->loss;
        if (M->post_train && !flagged.post_train) flagged.post_train = M->post_train;
    }
    assert_non_null(flagged.loss);
    assert_non_null(flagged.post_train);
    c.M = &flagged;
    assert_int_equal(lt_run_device_hooks_check(&c), LT_OK);
    flagged.flags = 0;
    assert_int_equal(lt_run_device_hooks_check(&c), LT_EINVAL);
    assert_string_equal(lt_errmsg(), "method flagged: its loss runs on the host, not supported on cuda:3 yet");
    free(cuda);
    lt_backend_free(cpu);
}

/* ---- the cpu twin's copies ------------------------------------------------------------------ */
/* a layer with one buffer and no parameter, of cfg[0] values */
static int bufl_plan(lt_model *m, lt_node *nd) {
    lt_node_set_shape(nd, lt_node_in_shape(m, nd, 0));
    return lt_model_buffer_add(m, nd, "stat", (size_t)*(const int *)lt_node_cfg_const(nd), 0.5f) < 0 ? LT_EINVAL
                                                                                                        : LT_OK;
}
static int bufl_run(lt_model *m, lt_node *nd, int N) { (void)m; (void)nd; (void)N; return LT_OK; }
static const lt_layer_ops bufl_ops = {LT_LAYER_ABI, "bufl", bufl_plan, bufl_run, bufl_run, NULL, 0, NULL, NULL,
                                      NULL, NULL};

/* conv -> bn -> gap -> linear NAME (OUT outputs) [-> linear "extra"] -> a buffer layer of NB values */
static lt_model *twin_model(lt_backend *b, const char *name, int out, int extra, int nb) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create_on(&m, (lt_shape){1, 2, 4, 4}, b), LT_OK);
    int x = lt_add_conv(m, "conv", "backbone", 0, 3, 3, 1, 1, 1, 0);
    x = lt_add_bn(m, "bn", "backbone", x);
    x = lt_add_gap(m, "gap", "backbone", x);
    x = lt_add_linear(m, name, "head", x, out, 1);
    if (extra) x = lt_add_linear(m, "extra", "head", x, out, 0);
    x = lt_model_add(m, &bufl_ops, "bufl", "head", x, -1, &nb, sizeof nb);
    assert_true(x > 0);
    assert_int_equal(lt_model_finalize(m, 5), LT_OK);
    return m;
}

static void twin_refused(lt_child *c, lt_model *twin, const char *want) {
    c->twin = twin;
    lt_err_clear();
    assert_int_equal(lt_run_twin_copy(c, 1), LT_ESTATE);
    if (!strstr(lt_errmsg(), want)) fail_msg("message \"%s\", expected \"%s\"", lt_errmsg(), want);
    lt_model_free(twin);
}

static void test_twin_copy(void **st) {
    (void)st;
    lt_dev_ops ops;
    standin_ops_init(&ops);
    lt_backend *sb = standin_backend(&ops);
    lt_method M = {.name = "fake"};
    lt_child c;
    memset(&c, 0, sizeof c);
    c.M = &M;
    c.m = twin_model(sb, "fc", 4, 0, 4);
    assert_non_null(c.m->dev);   /* a device model: its copies go through the device table */
    /* distinct values on the device: parameter i, float j = i + j / 64; buffers likewise */
    const int np = lt_model_n_params(c.m), nb = lt_model_n_buffers(c.m);
    float v[64];
    for (int i = 0; i < np; i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(c.m, i, &p), LT_OK);
        assert_true(p.count <= 64);
        for (size_t j = 0; j < p.count; j++) v[j] = (float)i + (float)j / 64;
        assert_int_equal(lt_model_param_from_host(c.m, i, v), LT_OK);
    }
    for (int i = 0; i < nb; i++) {
        lt_buffer_info bi;
        assert_int_equal(lt_model_buffer_at(c.m, i, &bi), LT_OK);
        for (size_t j = 0; j < bi.count; j++) v[j] = -(float)i - (float)j / 64;
        assert_int_equal(lt_model_buffer_from_host(c.m, i, v), LT_OK);
    }
    /* to the twin: every value; back: what the twin changed */
    c.twin = twin_model(NULL, "fc", 4, 0, 4);
    assert_int_equal(lt_run_twin_copy(&c, 1), LT_OK);
    for (int i = 0; i < np; i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(c.twin, i, &p), LT_OK);
        for (size_t j = 0; j < p.count; j++) assert_true(p.w[j] == (float)i + (float)j / 64);
        for (size_t j = 0; j < p.count; j++) p.w[j] *= 2;
    }
    for (int i = 0; i < nb; i++) {
        lt_buffer_info bi;
        assert_int_equal(lt_model_buffer_at(c.twin, i, &bi), LT_OK);
        for (size_t j = 0; j < bi.count; j++) assert_true(bi.data[j] == -(float)i - (float)j / 64);
        for (size_t j = 0; j < bi.count; j++) bi.data[j] = 7;
    }
    assert_int_equal(lt_run_twin_copy(&c, 0), LT_OK);
    for (int i = 0; i < np; i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(c.m, i, &p), LT_OK);
        assert_int_equal(lt_model_param_to_host(c.m, i, v, NULL), LT_OK);
        for (size_t j = 0; j < p.count; j++) assert_true(v[j] == 2 * ((float)i + (float)j / 64));
    }
    for (int i = 0; i < nb; i++) {
        lt_buffer_info bi;
        assert_int_equal(lt_model_buffer_at(c.m, i, &bi), LT_OK);
        assert_int_equal(lt_model_buffer_to_host(c.m, i, v), LT_OK);
        for (size_t j = 0; j < bi.count; j++) assert_true(v[j] == 7);
    }
    lt_model_free(c.twin);
    /* twins of another build */
    char want[200];
    snprintf(want, sizeof want, "method fake: its cpu twin has %d parameters and %d buffers, the model %d and %d",
             np + 1, nb, np, nb);
    twin_refused(&c, twin_model(NULL, "fc", 4, 1, 4), want);
    const int fc = lt_model_param_index(c.m, "fc.weight");
    assert_true(fc >= 0);
    snprintf(want, sizeof want, "method fake: cpu twin parameter %d is head.weight (12), the model's fc.weight (12)",
             fc);
    twin_refused(&c, twin_model(NULL, "head", 4, 0, 4), want);
    snprintf(want, sizeof want, "method fake: cpu twin parameter %d is fc.weight (15), the model's fc.weight (12)", fc);
    twin_refused(&c, twin_model(NULL, "fc", 5, 0, 4), want);
    snprintf(want, sizeof want, "method fake: cpu twin buffer %d has 5 values, the model's 4", nb - 1);
    twin_refused(&c, twin_model(NULL, "fc", 4, 0, 5), want);
    lt_model_free(c.m);
    lt_backend_free(sb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks_check),
        cmocka_unit_test(test_twin_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
