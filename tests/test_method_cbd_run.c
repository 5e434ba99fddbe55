/* test_method_cbd_run.c — cbd through the runner on the tiny Fashion-MNIST
 * protocol (tests/fixtures_proto.h, ci scale, 2 threads): the teacher
 * (cbd_teacher, stage1_from) is trained first by the runner; a student run
 * killed after its first epoch and resumed ends with the numbers of the
 * uninterrupted run bit for bit, and the teacher's final checkpoint is the
 * same bytes before and after the student trained against it (the student
 * run also checks its in-memory teachers at every epoch end); both runs'
 * per_class.csv give every class the cosine classifier's row norm. A binary of
 * its own: the runner forks, and a child forked after OpenMP work in its
 * parent can hang in libgomp (lt_runner.h). Skips when the Debian
 * Fashion-MNIST package is absent, and under AddressSanitizer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tassert.h"   /* NaN-safe assert_float_equal */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt.h"
#include "lt_io.h"
#include "lt_runner.h"

static char g_proto[512];

static void read_file(const char *path, char **s, size_t *n) { assert_int_equal(lt_io_read_all(path, s, n), LT_OK); }

static void test_resume_equals_uninterrupted(void **unused) {
    (void)unused;
    FX_SKIP_UNLESS_RUNNABLE("cbd resume not run under AddressSanitizer (four trainings instrumented)");
    char tmp[64];
    assert_int_equal(fx_tmpdir(tmp, sizeof tmp), 0);
    assert_int_equal(fx_tiny_protocol(tmp, g_proto, sizeof g_proto), 0);
    char ra[300], rb[300], cmd[1000];
    snprintf(ra, sizeof ra, "%s/a", tmp);
    snprintf(rb, sizeof rb, "%s/b", tmp);
    lt_run_outcome a, b;
    fx_run(g_proto, ra, "cbd", NULL, 0, &a);   /* trains cbd_teacher first, then the student */
    if (!a.ok) fail_msg("uninterrupted run failed: %s", a.reason);
    char tck[600];
    snprintf(tck, sizeof tck, "%s/runs/fmnist_lt_tiny/ci/cbd_teacher/seed0/ckpt_final.ltc", ra);
    char *t0, *t1;
    size_t n0, n1;
    read_file(tck, &t0, &n0);
    /* the second root gets a copy of the same teacher (deterministic, and
     * saves a training) */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/runs/fmnist_lt_tiny/ci' && cp -r '%s/runs/fmnist_lt_tiny/ci/cbd_teacher' "
             "'%s/runs/fmnist_lt_tiny/ci/'", rb, ra, rb);
    assert_int_equal(system(cmd), 0);
    fx_run(g_proto, rb, "cbd", NULL, 3, &b);   /* killed after the student's first epoch (2 teacher epochs + 1) */
    assert_false(b.ok);
    char ck[1300];
    snprintf(ck, sizeof ck, "%s/ckpt.ltc", b.run_dir);
    assert_int_equal(access(ck, F_OK), 0);
    fx_run(g_proto, rb, "cbd", NULL, 0, &b);   /* resumes */
    if (!b.ok) fail_msg("resumed run failed: %s", b.reason);
    fx_assert_same_outcome(&a, &b);
    /* the teacher checkpoint the student read is unchanged */
    read_file(tck, &t1, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(t0, t1, n0);
    free(t0);
    free(t1);
    /* per_class.csv's weight_norm, teacher and student: their cosine
     * classifiers score with rows of norm sigma (20) */
    double norms[16];
    char tdir[600];
    snprintf(tdir, sizeof tdir, "%s/runs/fmnist_lt_tiny/ci/cbd_teacher/seed0", ra);
    const char *dirs[2] = {tdir, a.run_dir};
    for (int d = 0; d < 2; d++) {
        const int nc = fx_per_class_norms(dirs[d], norms, 16);
        assert_true(nc > 1);
        for (int j = 0; j < nc; j++) assert_float_equal(norms[j], 20.0, 0);
    }
    print_message("note: cbd tiny top1 %.4f (uninterrupted and resumed)\n", a.top1);
    if (fx_rm_rf(tmp) != 0) print_message("note: could not remove %s\n", tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_equals_uninterrupted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
