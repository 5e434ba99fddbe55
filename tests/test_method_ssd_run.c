/* test_method_ssd_run.c — ssd through the runner on the real Fashion-MNIST
 * (the tiny copy of fmnist_lt_r100 from fixtures_proto: 120 images a class,
 * batches of 64; ci epochs 2 + 1 + 2): a run killed after its first epoch
 * (stage I: the queue holds keys, the key encoder has moved) and a run
 * killed after its fourth (stage III under way: teacher, fresh and key
 * modules and the queue come back from the checkpoint) each resume to the
 * numbers of the uninterrupted run bit for bit, per-class file included.
 * A binary of its own: the runner forks, and a child forked after OpenMP
 * work in its parent can hang in libgomp (lt_runner.h). Skips when the
 * Debian Fashion-MNIST package is absent, and under AddressSanitizer. */
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

static void killed_then_resumed(const char *root, int kill, const lt_run_outcome *ref) {
    lt_run_outcome b;
    fx_run(g_proto, root, "ssd", NULL, kill, &b);
    assert_false(b.ok);
    char ck[1300];
    snprintf(ck, sizeof ck, "%s/ckpt.ltc", b.run_dir);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, ck), LT_OK);
    /* the queue, the key encoder and the teacher are in the checkpoint */
    assert_true(lt_ckpt_has(c, "method/queue/keys"));
    assert_true(lt_ckpt_has(c, "mod/ssd_key/o/optim/header"));
    assert_true(lt_ckpt_has(c, "mod/ssd_teacher/o/optim/header"));
    int64_t ptr = -1;
    if (lt_ckpt_has(c, "method/queue/ptr")) {
        const void *p;
        size_t n;
        assert_int_equal(lt_ckpt_get(c, "method/queue/ptr", &p, &n), LT_OK);
        if (n == sizeof ptr) memcpy(&ptr, p, sizeof ptr);
    }
    lt_ckpt_free(c);
    print_message("note: killed after epoch %d, queue pointer %lld\n", kill, (long long)ptr);
    fx_run(g_proto, root, "ssd", NULL, 0, &b);   /* resumes */
    if (!b.ok) fail_msg("resumed run (killed after epoch %d) failed: %s", kill, b.reason);
    fx_assert_same_outcome(ref, &b);
}

static void test_resume_equals_uninterrupted(void **unused) {
    (void)unused;
    FX_SKIP_UNLESS_RUNNABLE("ssd resume (five trainings) not run under AddressSanitizer; its code runs "
                            "instrumented in test_method_ssd");
    char tmp[64];
    assert_int_equal(fx_tmpdir(tmp, sizeof tmp), 0);
    assert_int_equal(fx_tiny_protocol(tmp, g_proto, sizeof g_proto), 0);
    char ra[300], rb[300], rc[300];
    snprintf(ra, sizeof ra, "%s/a", tmp);
    snprintf(rb, sizeof rb, "%s/b", tmp);
    snprintf(rc, sizeof rc, "%s/c", tmp);
    lt_run_outcome a;
    fx_run(g_proto, ra, "ssd", NULL, 0, &a);
    if (!a.ok) fail_msg("uninterrupted run failed: %s", a.reason);
    killed_then_resumed(rb, 1, &a);   /* in stage I */
    killed_then_resumed(rc, 4, &a);   /* in stage III */
    print_message("note: ssd tiny ci top1 %.4f (uninterrupted and both resumed)\n", a.top1);
    if (fx_rm_rf(tmp) != 0) print_message("note: could not remove %s\n", tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_equals_uninterrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
