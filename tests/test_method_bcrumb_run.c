/* test_method_bcrumb_run.c — bcrumb through the runner on the real
 * Fashion-MNIST: a run killed after an epoch checkpoint and resumed ends with
 * the numbers of the uninterrupted run, bit for bit (metrics, per-class
 * table, Cb's weights), and its result records the bank's size:
 *   - fmnist_lt_tiny (the runner tests' small copy of fmnist_lt_r100, ci
 *     scale) with 4 epochs: the deques are full after epoch 2 (q_max = 2),
 *     so the checkpoint after epoch 3 holds full deques and the resumed
 *     epoch trains Cb on a bank rebuilt from them;
 *   - fmnist_lt_r100 at ci scale cut to 400 training images per class
 *     (the four smallest keep their 277..60: q_max =
 *     ceil(nb / 60) = 6), 2 epochs as at ci scale: the warm-up path (the
 *     deques never fill), killed after epoch 1. The committed ci run
 *     itself (q_max 25) is re-run by test_regress_ci; its five times
 *     larger training set added nothing to what a resume is checked for.
 * A binary of its own: the runner forks, and a child forked after OpenMP
 * work in its parent can hang in libgomp (lt_runner.h). Skips when the
 * Debian Fashion-MNIST package is absent, and under AddressSanitizer (ci
 * scale trainings; the method's code runs instrumented in test_method_bcrumb). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt.h"
#include "lt_io.h"
#include "lt_runner.h"

/* Both cases' reason to skip under AddressSanitizer (fx_train_blocker). */
static const char k_asan_why[] = "bcrumb resume at ci scale not run under AddressSanitizer";

static double report(const lt_run_outcome *o, const char *key) {
    cJSON *j = fx_read_json(o->result_path);
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "method_report"), key);
    assert_true(cJSON_IsNumber(v));
    const double x = v->valuedouble;
    cJSON_Delete(j);
    return x;
}

static void assert_same_file(const lt_run_outcome *a, const lt_run_outcome *b, const char *name) {
    char pa[1300], pb[1300];
    snprintf(pa, sizeof pa, "%s/%s", a->run_dir, name);
    snprintf(pb, sizeof pb, "%s/%s", b->run_dir, name);
    char *sa, *sb;
    size_t la, lb;
    assert_int_equal(lt_io_read_all(pa, &sa, &la), LT_OK);
    assert_int_equal(lt_io_read_all(pb, &sb, &lb), LT_OK);
    assert_int_equal(la, lb);
    assert_memory_equal(sa, sb, la);
    free(sa);
    free(sb);
}

/* Same numbers, same per-class table, same Cb and deques in the final checkpoint. */
static void assert_resumed_equal(const lt_run_outcome *a, const lt_run_outcome *b) {
    fx_assert_same_metrics(a, b);
    assert_same_file(a, b, "per_class.csv");
    char pa[1300], pb[1300];
    snprintf(pa, sizeof pa, "%s/ckpt_final.ltc", a->run_dir);
    snprintf(pb, sizeof pb, "%s/ckpt_final.ltc", b->run_dir);
    lt_ckpt *ca, *cb;
    assert_int_equal(lt_ckpt_read(&ca, pa), LT_OK);
    assert_int_equal(lt_ckpt_read(&cb, pb), LT_OK);
    static const char *const keys[] = {"mod/cb/m/w/cb.weight", "mod/cb/o/optim/s1", "method/hist", "method/mean"};
    for (int k = 0; k < 4; k++) {
        const void *da, *db;
        size_t na, nb;
        assert_int_equal(lt_ckpt_get(ca, keys[k], &da, &na), LT_OK);
        assert_int_equal(lt_ckpt_get(cb, keys[k], &db, &nb), LT_OK);
        assert_int_equal(na, nb);
        assert_memory_equal(da, db, na);
    }
    lt_ckpt_free(ca);
    lt_ckpt_free(cb);
    assert_true(report(a, "bcrumb_bank_peak_bytes") == report(b, "bcrumb_bank_peak_bytes"));
    assert_true(report(a, "bcrumb_bank_peak_bytes") <= report(a, "bcrumb_bank_bound_bytes"));
}

/* fmnist_lt_tiny with 4 epochs: the bank is in use before and after the
 * kill. Results in fx_scratch/tiny_a and tiny_b. */
static void test_resume_with_bank(void **unused) {
    (void)unused;
    FX_SKIP_UNLESS_RUNNABLE(k_asan_why);
    char proto[400];
    assert_int_equal(fx_tiny_protocol_as(fx_scratch, "fmnist_lt_tiny", 4, proto, sizeof proto), 0);
    lt_run_outcome a, b;
    fx_run(proto, "tiny_a", "bcrumb", NULL, 0, &a);
    if (!a.ok) fail_msg("uninterrupted run failed: %s", a.reason);
    /* the bank trained Cb from epoch 2 (the deques were full after epoch 1) */
    assert_true(report(&a, "bcrumb_ready_epoch") == 2);
    /* killed after epoch 3's checkpoint (0-based epoch 2, on the bank) */
    fx_run(proto, "tiny_b", "bcrumb", NULL, 3, &b);
    assert_false(b.ok);
    char ck[1300];
    snprintf(ck, sizeof ck, "%s/ckpt.ltc", b.run_dir);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, ck), LT_OK);
    int64_t hdr[7];
    assert_int_equal(lt_ckpt_get_into(c, "method/hdr", hdr, sizeof hdr), LT_OK);
    lt_ckpt_free(c);
    print_message("note: checkpoint after epoch 3: ready %lld, first bank epoch %lld, %lld history rows\n",
                  (long long)hdr[4], (long long)hdr[5], (long long)hdr[6]);
    assert_true(hdr[4] == 1 && hdr[5] == 2);
    fx_run(proto, "tiny_b", "bcrumb", NULL, 0, &b);   /* resumes */
    if (!b.ok) fail_msg("resumed run failed: %s", b.reason);
    assert_resumed_equal(&a, &b);
    print_message("note: bcrumb tiny top1 %.4f (uninterrupted and resumed)\n", a.top1);
}

/* fmnist_lt_r100 at ci scale, 400 images per class at most: killed after
 * epoch 1 of 2 while the deques still fill. Results in fx_scratch/warm_a
 * and warm_b. */
static void test_resume_warmup(void **unused) {
    (void)unused;
    FX_SKIP_UNLESS_RUNNABLE(k_asan_why);
    char proto[400];
    assert_int_equal(fx_protocol_cut(fx_scratch, "fmnist_lt_warm", 0, 400, 300, 128, proto, sizeof proto), 0);
    lt_run_outcome a, b;
    fx_run(proto, "warm_a", "bcrumb", NULL, 0, &a);
    if (!a.ok) fail_msg("uninterrupted run failed: %s", a.reason);
    const double qmax = fx_logged(&a, "bcrumb_q_max");
    assert_true(qmax > 2);                                  /* more epochs than the run has */
    assert_true(report(&a, "bcrumb_ready_epoch") == -1);   /* so the bank never trained Cb */
    fx_run(proto, "warm_b", "bcrumb", NULL, 1, &b);
    assert_false(b.ok);
    fx_run(proto, "warm_b", "bcrumb", NULL, 0, &b);
    if (!b.ok) fail_msg("resumed run failed: %s", b.reason);
    assert_resumed_equal(&a, &b);
    print_message("note: bcrumb warm-up (q_max %.0f) top1 %.4f (uninterrupted and resumed)\n", qmax, a.top1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_with_bank),
        cmocka_unit_test(test_resume_warmup),
    };
    return cmocka_run_group_tests(tests, fx_scratch_setup, fx_scratch_teardown);
}
