/* test_method_cbn_run.c — cbn through the runner, on the small fmnist_lt_tiny
 * copy of fmnist_lt_r100 (tests/fixtures_proto.h):
 *   - a run killed after its first epoch checkpoint and resumed ends with
 *     the numbers of the uninterrupted run bit for bit: the running mixture
 *     parameters and the first-batch initialisation flag travel in the
 *     checkpoint (they are model buffers), so the resumed run neither
 *     initialises again nor loses the moving averages;
 *   - the checkpoint holds every layer's running pi, mean, var and inited;
 *   - result.json's method_report carries the train-mode and eval-mode
 *     accuracies on the training images, and the gap is their difference.
 * A binary of its own: the runner forks, and a child forked after OpenMP
 * work in its parent can hang (lt_runner.h), so nothing here computes
 * in-process. Skips when the Debian Fashion-MNIST package is absent, and
 * under AddressSanitizer (test_method_cbn runs the layer instrumented). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt.h"
#include "lt_io.h"
#include "lt_runner.h"

static double report(const cJSON *mr, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(mr, key);
    if (!cJSON_IsNumber(v)) fail_msg("method_report has no %s", key);
    return v->valuedouble;
}

static void test_resume_and_report(void **unused) {
    (void)unused;
    FX_SKIP_UNLESS_RUNNABLE("cbn runs not run under AddressSanitizer");
    char tmp[64];
    assert_int_equal(fx_tmpdir(tmp, sizeof tmp), 0);
    char proto[400], ra[300], rb[300];
    assert_int_equal(fx_tiny_protocol(tmp, proto, sizeof proto), 0);
    snprintf(ra, sizeof ra, "%s/a", tmp);
    snprintf(rb, sizeof rb, "%s/b", tmp);
    lt_run_outcome a, b;
    fx_run(proto, ra, "cbn", NULL, 0, &a);
    if (!a.ok) fail_msg("uninterrupted run failed: %s", a.reason);
    fx_run(proto, rb, "cbn", NULL, 1, &b);   /* killed after the first epoch's checkpoint */
    assert_false(b.ok);
    char p[1300];
    snprintf(p, sizeof p, "%s/ckpt.ltc", b.run_dir);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, p), LT_OK);
    static const char *const layers[] = {"bn1", "layer1.0.bn1", "layer1.0.bn2", "layer2.0.bn1",
                                         "layer2.0.bn2", "layer3.0.bn1", "layer3.0.bn2"};
    for (int i = 0; i < 7; i++) {
        static const char *const suf[] = {"pi", "mean", "var", "inited"};
        for (int j = 0; j < 4; j++) {
            char key[200];
            snprintf(key, sizeof key, "m/b/%s.%s", layers[i], suf[j]);
            if (!lt_ckpt_has(c, key)) fail_msg("checkpoint lacks %s", key);
        }
        char key[200];
        float inited;
        snprintf(key, sizeof key, "m/b/%s.inited", layers[i]);
        assert_int_equal(lt_ckpt_get_into(c, key, &inited, sizeof inited), LT_OK);
        assert_true(inited == 1.0f);
    }
    lt_ckpt_free(c);
    fx_run(proto, rb, "cbn", NULL, 0, &b);   /* resumes */
    if (!b.ok) fail_msg("resumed run failed: %s", b.reason);
    fx_assert_same_metrics(&a, &b);
    /* the consistency measurement in result.json */
    snprintf(p, sizeof p, "%s/result.json", a.run_dir);
    cJSON *j;
    assert_int_equal(lt_json_read(p, &j), LT_OK);
    const cJSON *mr = cJSON_GetObjectItem(j, "method_report");
    assert_true(cJSON_IsObject(mr));
    const double at = report(mr, "cbn_train_mode_acc"), ae = report(mr, "cbn_eval_mode_acc");
    assert_true(at >= 0 && at <= 100 && ae >= 0 && ae <= 100);
    assert_true(fabs(report(mr, "cbn_mode_gap") - (at - ae)) < 1e-9);
    const double dis = report(mr, "cbn_mode_disagree");
    assert_true(dis >= fabs(at - ae) - 1e-9 && dis <= 100);
    const double ct = report(mr, "cbn_train_mode_class_acc"), cev = report(mr, "cbn_eval_mode_class_acc");
    assert_true(ct >= 0 && ct <= 100 && cev >= 0 && cev <= 100);
    assert_true(fabs(report(mr, "cbn_mode_class_gap") - (ct - cev)) < 1e-9);
    print_message("note: cbn tiny: top1 %.4f (uninterrupted and resumed); train mode %.2f%%, eval mode %.2f%% "
                  "on training images, %.2f%% disagree\n", a.top1, at, ae, dis);
    cJSON_Delete(j);
    if (fx_rm_rf(tmp) != 0) print_message("note: could not remove %s\n", tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_and_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
