/* test_method_iccl_run.c — iccl through the runner on the real
 * Fashion-MNIST, on tests/fixtures_proto.h's tiny copy of fmnist_lt_r100
 * (ci scale, 120 images per class, batches of 64, 2 threads): a run killed
 * after its first epoch (centroids moved by the EMA, the class-aware stream
 * mid-list) and one killed at the end of stage 1 (resumed into the cRT
 * stage) each end, resumed, with the numbers and per-class rows of the
 * uninterrupted run bit for bit. A binary of its own: the runner forks, and
 * a child forked after OpenMP work in its parent can hang in libgomp
 * (lt_runner.h), so nothing here trains in-process. Skips when the Debian
 * Fashion-MNIST package is absent, and under AddressSanitizer (three
 * trainings; the code paths run instrumented in test_method_iccl). */
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

static char g_proto[512];

/* The checkpoint of a killed run holds centroids that left their random
 * initialisation (the EMA ran). */
static void centroids_moved(const char *run_dir) {
    enum { C = 10, D = 128 };
    char ck[1300];
    snprintf(ck, sizeof ck, "%s/ckpt.ltc", run_dir);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, ck), LT_OK);
    static float cent[C * D], init[C * D];
    assert_int_equal(lt_ckpt_get_into(c, "method/centroids", cent, sizeof cent), LT_OK);
    lt_ckpt_free(c);
    lt_rng r;
    lt_rng_init(&r, 0, LT_STREAM_METHOD + 2);
    lt_centroids_random(C, D, init, &r);
    double moved = 0;
    for (int i = 0; i < C * D; i++) moved += (cent[i] - init[i]) * (double)(cent[i] - init[i]);
    print_message("note: checkpoint centroids moved %.3f (squared distance from the initialisation)\n", moved);
    assert_true(moved > 1.0);
}

static void test_resume_equals_uninterrupted(void **unused) {
    (void)unused;
    FX_SKIP_UNLESS_RUNNABLE("iccl resume not run under AddressSanitizer (three trainings)");
    char tmp[64];
    assert_int_equal(fx_tmpdir(tmp, sizeof tmp), 0);
    assert_int_equal(fx_tiny_protocol(tmp, g_proto, sizeof g_proto), 0);
    char ra[300], rb[300], rc[300];
    snprintf(ra, sizeof ra, "%s/a", tmp);
    snprintf(rb, sizeof rb, "%s/b", tmp);
    snprintf(rc, sizeof rc, "%s/c", tmp);
    lt_run_outcome a, b;
    fx_run(g_proto, ra, "iccl", NULL, 0, &a);
    if (!a.ok) fail_msg("uninterrupted run failed: %s", a.reason);
    /* killed after epoch 1 of stage 1, resumed */
    fx_run(g_proto, rb, "iccl", NULL, 1, &b);
    assert_false(b.ok);
    centroids_moved(b.run_dir);
    fx_run(g_proto, rb, "iccl", NULL, 0, &b);
    if (!b.ok) fail_msg("resumed run (epoch 1) failed: %s", b.reason);
    fx_assert_same_outcome(&a, &b);
    /* killed at the end of stage 1 (epoch 2), resumed into the cRT stage */
    fx_run(g_proto, rc, "iccl", NULL, 2, &b);
    assert_false(b.ok);
    centroids_moved(b.run_dir);
    fx_run(g_proto, rc, "iccl", NULL, 0, &b);
    if (!b.ok) fail_msg("resumed run (epoch 2) failed: %s", b.reason);
    fx_assert_same_outcome(&a, &b);
    print_message("note: iccl tiny top1 %.4f (uninterrupted and both resumes)\n", a.top1);
    if (fx_rm_rf(tmp) != 0) print_message("note: could not remove %s\n", tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_equals_uninterrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
