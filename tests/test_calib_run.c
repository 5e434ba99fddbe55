/* test_calib_run.c — temperature-scaled calibration through the real
 * runner on a small copy of fmnist_lt_r100 (the protocol of test_runner.c:
 * ci scale cut to 120 training images per class, 300 test images):
 *   - ce (logits): raw ece and ece_ts, T fitted on the dataset's validation
 *     split (180 images: class 0 has no left-overs), the validation NLL not
 *     worse after the fit, the split's manifest hash in the result;
 *   - ncm (similarities: LT_SCORES_SCORES): raw ece null with the reason,
 *     ece_ts a number, the leaderboard shows n/a;
 *   - taunorm with select = val: tau chosen on the 180 validation images
 *     (version 1 carved 112 from the training rows).
 * Skips (CMocka skip) when the Debian Fashion-MNIST package is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tassert.h"   /* NaN-safe assert_float_equal */

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt_io.h"
#include "lt_leaderboard.h"
#include "lt_runner.h"

#define VAL_N 180   /* fmnist IR 100: 0 + 9 x 20 left-over images */

static char g_proto[512], g_root[400];

static int setup(void **state) {
    if (fx_train_blocker(NULL)) return 0;   /* every case skips */
    if (fx_scratch_setup(state) || fx_tiny_protocol(fx_scratch, g_proto, sizeof g_proto)) return -1;
    snprintf(g_root, sizeof g_root, "%s/results", fx_scratch);
    return 0;
}

/* METHOD trained (or re-used) on one thread; its result.json. */
static cJSON *run(const char *method, const char *hparams, lt_run_outcome *o) {
    lt_run_request r;
    fx_request(&r, g_proto, g_root, method, 1);
    r.hparams = hparams;
    fx_run_ok(&r, o);
    return fx_read_json(o->result_path);
}

static const cJSON *at(const cJSON *o, const char *a, const char *b) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    if (v && b) v = cJSON_GetObjectItemCaseSensitive(v, b);
    if (!v) fail_msg("missing key %s%s%s", a, b ? "." : "", b ? b : "");
    return v;
}

static void test_ce_temperature_on_val(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    lt_run_outcome o;
    cJSON *j = run("ce", NULL, &o);
    const double ece = at(j, "metrics", "ece")->valuedouble, ts = at(j, "metrics", "ece_ts")->valuedouble;
    assert_true(cJSON_IsNumber(at(j, "metrics", "ece")) && ece >= 0 && ece <= 1);
    assert_true(cJSON_IsNumber(at(j, "metrics", "ece_ts")) && ts >= 0 && ts <= 1);
    assert_true(fabs(o.ece_ts - ts) < 1e-15);
    const cJSON *c = at(j, "calibration", NULL);
    assert_string_equal(at(c, "score_kind", NULL)->valuestring, "logits");
    assert_string_equal(at(c, "fit_on", NULL)->valuestring, "val");
    assert_int_equal(at(c, "val_size", NULL)->valueint, VAL_N);
    const double T = at(c, "temperature", NULL)->valuedouble;
    const double before = at(c, "val_nll_before", NULL)->valuedouble, after = at(c, "val_nll_after", NULL)->valuedouble;
    print_message("note: ce: ece %.4f, ece_ts %.4f, T %.4f, val NLL %.4f -> %.4f\n", ece, ts, T, before, after);
    assert_true(T > 0 && isfinite(T));
    /* a NaN NLL is written as null, which reads as 0 and would pass */
    assert_true(cJSON_IsNumber(at(c, "val_nll_before", NULL)) && cJSON_IsNumber(at(c, "val_nll_after", NULL)));
    assert_true(after <= before);
    assert_true(cJSON_IsFalse(at(c, "at_bound", NULL)));
    assert_null(cJSON_GetObjectItemCaseSensitive(c, "ece_reason"));
    assert_int_equal(strlen(at(j, "dataset", "val_manifest_sha256")->valuestring), 64);
    cJSON_Delete(j);
}

static void test_ncm_has_no_raw_ece(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    lt_run_outcome o;
    cJSON *j = run("ncm", NULL, &o);
    assert_true(cJSON_IsNull(at(j, "metrics", "ece")));
    assert_true(isnan(o.ece));
    const cJSON *ts = at(j, "metrics", "ece_ts");
    assert_true(cJSON_IsNumber(ts) && ts->valuedouble >= 0 && ts->valuedouble <= 1);
    const cJSON *c = at(j, "calibration", NULL);
    assert_string_equal(at(c, "score_kind", NULL)->valuestring, "scores");
    assert_non_null(strstr(at(c, "ece_reason", NULL)->valuestring, "logits"));
    print_message("note: ncm: ece_ts %.4f, T %.5f\n", ts->valuedouble, at(c, "temperature", NULL)->valuedouble);
    cJSON_Delete(j);

    /* the leaderboard: a finished row's null ECE is n/a, its ECE-TS a number */
    lt_lb_opts lo = {.results_dir = g_root, .methods_dir = "methods"};
    lt_run_set set;
    lt_lb_row *rows = NULL;
    int n = 0;
    assert_int_equal(lt_leaderboard_update(&lo, &set, &rows, &n), LT_OK);
    int found = 0;
    for (int i = 0; i < n; i++)
        if (!strcmp(rows[i].method, "ncm")) {
            found = 1;
            assert_true(isnan(rows[i].mean[LT_M_ECE]));
            assert_false(isnan(rows[i].mean[LT_M_ECE_TS]));
        }
    assert_true(found);
    char p[600], *md;
    size_t mdn;
    snprintf(p, sizeof p, "%s/leaderboard.md", g_root);
    assert_int_equal(lt_io_read_all(p, &md, &mdn), LT_OK);
    char *row = strstr(md, "| ncm |");
    assert_non_null(row);
    char *eol = strchr(row, '\n');
    *eol = 0;
    assert_non_null(strstr(row, "| n/a |"));
    free(md);
    free(rows);
    lt_run_set_free(&set);
}

static void test_taunorm_selects_on_val_split(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    lt_run_outcome o;
    cJSON *j = run("taunorm", "{\"select\": \"val\"}", &o);
    /* the validation split's 180 images, not a carve of the training rows */
    assert_float_equal(fx_logged(&o, "tau_val_images"), VAL_N, 0);
    const double tau = fx_logged(&o, "tau");
    assert_true(tau >= 0 && tau <= 2.0 + 1e-12);
    assert_true(cJSON_IsNull(at(j, "metrics", "ece")));
    assert_string_equal(at(j, "calibration", "score_kind")->valuestring, "scores");
    assert_int_equal(strlen(at(j, "dataset", "val_manifest_sha256")->valuestring), 64);
    cJSON_Delete(j);
    /* the removed carve hparam is refused, naming it */
    lt_run_request r;
    fx_request(&r, g_proto, g_root, "taunorm", 2);   /* lt_run_request_default's threads */
    r.hparams = "{\"select\": \"val\", \"val_fraction\": 0.1}";
    assert_int_not_equal(lt_runner_run(&r, &o), LT_OK);
    assert_non_null(strstr(lt_errmsg(), "val_fraction"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce_temperature_on_val),
        cmocka_unit_test(test_ncm_has_no_raw_ece),
        cmocka_unit_test(test_taunorm_selects_on_val_split),
    };
    return cmocka_run_group_tests(tests, setup, fx_scratch_teardown);
}
