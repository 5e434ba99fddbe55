/* test_method_camc_run.c — camc through the runner on the tiny Fashion-MNIST
 * protocol (tests/fixtures_proto.h, ci scale, 2 threads): a run killed after
 * its first epoch and resumed ends with the numbers of the uninterrupted run
 * bit for bit (the batch hook's labels are per batch, so nothing of camc's
 * lives across a checkpoint; the test checks that is so), and its
 * per_class.csv gives every class the cosine classifier's row norm s. A binary of its
 * own: the runner forks, and a child forked after OpenMP work in its parent
 * can hang in libgomp (lt_runner.h). Skips when the Debian Fashion-MNIST
 * package is absent, and under AddressSanitizer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tassert.h"   /* NaN-safe assert_float_equal */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt_runner.h"

static char g_proto[512];

static void test_resume_equals_uninterrupted(void **unused) {
    (void)unused;
    FX_SKIP_UNLESS_RUNNABLE("camc resume not run under AddressSanitizer (three trainings instrumented)");
    char tmp[64];
    assert_int_equal(fx_tmpdir(tmp, sizeof tmp), 0);
    assert_int_equal(fx_tiny_protocol(tmp, g_proto, sizeof g_proto), 0);
    char ra[300], rb[300];
    snprintf(ra, sizeof ra, "%s/a", tmp);
    snprintf(rb, sizeof rb, "%s/b", tmp);
    lt_run_outcome a, b;
    fx_run(g_proto, ra, "camc", NULL, 0, &a);
    if (!a.ok) fail_msg("uninterrupted run failed: %s", a.reason);
    fx_run(g_proto, rb, "camc", NULL, 1, &b);   /* killed after the first epoch's checkpoint */
    assert_false(b.ok);
    char ck[1300];
    snprintf(ck, sizeof ck, "%s/ckpt.ltc", b.run_dir);
    assert_int_equal(access(ck, F_OK), 0);
    fx_run(g_proto, rb, "camc", NULL, 0, &b);   /* resumes */
    if (!b.ok) fail_msg("resumed run failed: %s", b.reason);
    fx_assert_same_outcome(&a, &b);
    /* per_class.csv's weight_norm: the cosine classifier scores with rows
     * of norm s (16), whatever the raw rows' norms are */
    double norms[16];
    const int nc = fx_per_class_norms(a.run_dir, norms, 16);
    assert_true(nc > 1);
    for (int j = 0; j < nc; j++) assert_float_equal(norms[j], 16.0, 0);
    print_message("note: camc tiny top1 %.4f (uninterrupted and resumed)\n", a.top1);
    if (fx_rm_rf(tmp) != 0) print_message("note: could not remove %s\n", tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_equals_uninterrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
