/* test_run_hooks.c — the runner's side of training on a device backend
 * (harness/lt_run_train.c lt_run_device_hooks_check, lt_run_on_device),
 * on any machine: a run whose backend is a cuda one (a stand-in backend
 * object: the check reads only its kind and name) refuses exactly the
 * methods with a hook the device step cannot run, naming the method, the
 * hook and the device; every method is accepted on a cpu backend and
 * without one. ce, the sampling baselines and cRT must be accepted, and
 * the hooks on host taps (LT_METHOD_HOST_TAPS: bsm, bsm_dec, bsig, mbj,
 * bcrumb, iccl, cbd, balms) and
 * the post-hoc methods (taunorm, lws, ncm: post_train and class_norms run
 * on a cpu twin of the device model). */
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
    int n = 0, refused = 0;
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
    print_message("%d methods, %d refused on cuda\n", n, refused);
    assert_true(n > 0 && refused > 0 && refused < n);
    /* the baselines the device path is for, and the losses on host taps */
    static const char *const ok[] = {"ce",  "cbs",    "srs",     "pbs", "crt", "bsm", "bsm_dec",
                                     "bsig", "mbj", "bcrumb", "iccl", "cbd", "balms", "taunorm", "lws", "ncm",
                                     "camc"};
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
