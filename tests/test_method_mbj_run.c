/* test_method_mbj_run.c — mbj through the runner on the real Fashion-MNIST:
 * a run killed after an epoch checkpoint whose memory is not empty, then
 * resumed, ends with the numbers of the uninterrupted run bit for bit
 * (fmnist_lt_r100 at ci scale cut to 400 training images per class, 3002
 * images, 2 threads: the committed ci run itself is re-run by
 * test_regress_ci, and its five times larger training set added nothing
 * to what a resume is checked for). A binary of its own: the runner
 * forks, and a child forked after OpenMP work in its parent can hang in
 * libgomp (lt_runner.h), so nothing here computes in-process. Skips when
 * the Debian Fashion-MNIST package is absent, and under AddressSanitizer
 * (three trainings; the code paths run instrumented elsewhere). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt.h"
#include "lt_runner.h"

/* the memory fills from the first epoch, so the checkpoint after it holds one */
#define MBJ_HPARAMS "{\"first_epoch\": 0}"

static void test_resume_equals_uninterrupted(void **unused) {
    (void)unused;
    /* three trainings take many minutes instrumented; mbj's code
     * runs under the sanitizers in test_method_mbj, the runner's resume
     * and the host services in test_runner and test_host_services */
    FX_SKIP_UNLESS_RUNNABLE("mbj resume (three trainings) not run under AddressSanitizer");
    char tmp[64];
    assert_int_equal(fx_tmpdir(tmp, sizeof tmp), 0);
    char ra[300], rb[300];
    snprintf(ra, sizeof ra, "%s/a", tmp);
    snprintf(rb, sizeof rb, "%s/b", tmp);
    char proto[400];
    assert_int_equal(fx_protocol_cut(tmp, "fmnist_lt_mbj", 0, 400, 300, 128, proto, sizeof proto), 0);
    lt_run_outcome a, b;
    fx_run(proto, ra, "mbj", MBJ_HPARAMS, 0, &a);
    if (!a.ok) fail_msg("uninterrupted run failed: %s", a.reason);
    fx_run(proto, rb, "mbj", MBJ_HPARAMS, 1, &b);   /* killed after the first epoch's checkpoint */
    assert_false(b.ok);
    char ck[1300];
    snprintf(ck, sizeof ck, "%s/ckpt.ltc", b.run_dir);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, ck), LT_OK);
    int64_t ring[3];
    assert_int_equal(lt_ckpt_get_into(c, "method/ring", ring, sizeof ring), LT_OK);
    lt_ckpt_free(c);
    print_message("note: checkpoint after epoch 1: memory %lld of %lld rows\n", (long long)ring[1],
                  (long long)ring[0]);
    assert_true(ring[1] > 0);
    fx_run(proto, rb, "mbj", MBJ_HPARAMS, 0, &b);   /* resumes */
    if (!b.ok) fail_msg("resumed run failed: %s", b.reason);
    fx_assert_same_outcome(&a, &b);
    print_message("note: mbj top1 %.4f (uninterrupted and resumed)\n", a.top1);
    if (fx_rm_rf(tmp) != 0) print_message("note: could not remove %s\n", tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_equals_uninterrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
