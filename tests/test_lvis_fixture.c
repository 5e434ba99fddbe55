/* test_lvis_fixture.c — the lvis_lt evaluation path end to end on the
 * synthetic LVIS look-alike (dataset lvis_fixture, protocol
 * lvis_lt_fixture), since the real LVIS cannot be fetched here.
 *
 * Checked: the generator writes exactly the files the registry pins (so the
 * fixture is the same on every machine); the LVIS-LT-cls v1 reader builds it
 * (50 classes, 3,313 / 600 crops, LVIS frequencies in the manifest); a `ci`
 * run of Balanced Sigmoid through the real runner writes mAP, AP_r/AP_c/AP_f
 * and acc_r/c/f over LVIS's r/c/f groups (14/24/12 classes), consistent with
 * each other (mAP = class-weighted mean of the group APs). How AP is ranked
 * for a sigmoid model is tested on hand-made numbers in test_metrics.c.
 * The fixture's RGB crops also carry the BALMS variants' protocol pieces
 * (AutoAugment, Cutout, a cosine_epoch schedule) through the runner. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures_img.h"
#include "fixtures_lvis.h"
#include "fixtures_proto.h"
#include "lt_datasets.h"
#include "lt_leaderboard.h"
#include "lt_protocol.h"
#include "lt_runner.h"

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) fail_msg("missing number %s", k);
    return v->valuedouble;
}

static void test_fixture_build_and_bsig_run(void **state) {
    (void)state;
    char data[400], raw[500];
    snprintf(data, sizeof data, "%s/data", fx_scratch);
    snprintf(raw, sizeof raw, "%s/lvis_fixture/raw", data);
    assert_int_equal(fx_lvis_fixture_write(raw, 0, NULL), 0);

    /* The registry pins the generator's bytes: building verifies them. */
    const lt_ds_def *def = lt_ds_find("lvis_fixture");
    assert_non_null(def);
    assert_int_equal(def->n_classes, FX_LVIS_CLASSES);
    lt_ds_opts o;
    lt_ds_opts_default(&o);
    o.data_dir = data;
    o.profile = LT_PROFILE_NATURAL;
    o.scale = "ci";
    o.quiet = 1;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    assert_int_equal(lt_ds_build(def, &o, &b), LT_OK);
    assert_int_equal(b.n_train, 3313);
    assert_int_equal(b.n_test, 600);
    assert_int_equal(b.n_classes, 50);
    assert_int_equal(b.counts[0], 300);
    assert_int_equal(b.counts[49], 3);
    char mpath[1200];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", b.dir);
    cJSON *man = fx_read_json(mpath);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(man, "extra"), "report"), "group");
    assert_true(cJSON_IsString(g));
    assert_string_equal(g->valuestring, "ffffffffffffccccccccccccccccccccccccrrrrrrrrrrrrrr");
    cJSON_Delete(man);
    lt_ds_built_free(&b);

    /* A changed file is refused by its pin, naming the file. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/val2017.zip", raw);
    assert_int_equal(fx_write_file(bad, "not a zip", 9), 0);
    char stamp[700];
    snprintf(stamp, sizeof stamp, "%s.verified", bad);
    remove(stamp);
    lt_ds_opts o2 = o;
    o2.force = 1;
    assert_int_not_equal(lt_ds_build(def, &o2, NULL), LT_OK);
    assert_non_null(strstr(lt_errmsg(), "val2017.zip"));
    assert_int_equal(fx_lvis_fixture_write(raw, 0, NULL), 0);

    /* bsig through the runner at the ci scale, in this process's child. */
    char results[400];
    snprintf(results, sizeof results, "%s/results", fx_scratch);
    lt_run_request r;
    fx_request(&r, "lvis_lt_fixture", results, "bsig", 1);
    r.data_dir = data;
    lt_run_outcome out;
    assert_int_equal(lt_runner_run(&r, &out), LT_OK);
    if (!out.ok) fail_msg("bsig run failed: %s", out.reason);
    cJSON *res = fx_read_json(out.result_path);
    const cJSON *me = cJSON_GetObjectItemCaseSensitive(res, "metrics");
    const double map = num(me, "map"), apg[3] = {num(me, "ap_r"), num(me, "ap_c"), num(me, "ap_f")};
    const double accg[3] = {num(me, "acc_r"), num(me, "acc_c"), num(me, "acc_f")};
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(res, "frequency_group_sizes");
    assert_int_equal(cJSON_GetArraySize(fs), 3);
    const int sz[3] = {cJSON_GetArrayItem(fs, 0)->valueint, cJSON_GetArrayItem(fs, 1)->valueint,
                       cJSON_GetArrayItem(fs, 2)->valueint};
    /* ci keeps 20 images per class at most: group sizes are LVIS's
     * frequencies, not the subsampled counts */
    assert_int_equal(sz[0], 14);
    assert_int_equal(sz[1], 24);
    assert_int_equal(sz[2], 12);
    for (int k = 0; k < 3; k++) {
        assert_true(apg[k] > 0.0 && apg[k] <= 1.0);
        assert_true(accg[k] >= 0.0 && accg[k] <= 1.0);
    }
    /* every class has test objects, so mAP is the class-weighted mean of
     * the three group means, and the class-mean accuracy likewise */
    assert_true(fabs(map - (14 * apg[0] + 24 * apg[1] + 12 * apg[2]) / 50) < 1e-9);
    assert_true(fabs(num(me, "class_mean_acc") - (14 * accg[0] + 24 * accg[1] + 12 * accg[2]) / 50) < 1e-9);
    /* balanced test set (12 per class): class-mean accuracy = top-1 */
    assert_true(fabs(num(me, "class_mean_acc") - num(me, "top1")) < 1e-9);
    const cJSON *ds = cJSON_GetObjectItemCaseSensitive(res, "dataset");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ds, "name")->valuestring, "lvis_fixture");
    /* Calibration: LVIS has no validation split, so no temperature is
     * fitted (never on the test set) and ece_ts is null with the reason;
     * sigmoid scores are no softmax logits, so the raw ECE is null too. */
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(me, "ece_ts")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(me, "ece")));
    const cJSON *cal = cJSON_GetObjectItemCaseSensitive(res, "calibration");
    assert_true(cJSON_IsObject(cal));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cal, "score_kind")->valuestring, "sigmoid");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cal, "temperature")));
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(cal, "reason");
    assert_true(cJSON_IsString(why));
    assert_non_null(strstr(why->valuestring, "no validation split"));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(cal, "ece_reason"));
    assert_null(cJSON_GetObjectItemCaseSensitive(ds, "val_manifest_sha256"));

    /* The leaderboard carries the group APs: the Markdown table of a protocol
     * with frequency groups gets AP_r / AP_c / AP_f columns, with this run's
     * numbers in percent. */
    lt_lb_opts lo = {.results_dir = results, .methods_dir = "methods"};
    lt_run_set set;
    lt_lb_row *rows = NULL;
    int n_rows = 0;
    assert_int_equal(lt_leaderboard_update(&lo, &set, &rows, &n_rows), LT_OK);
    assert_int_equal(n_rows, 1);
    for (int k = 0; k < 3; k++)
        assert_true(fabs(rows[0].mean[LT_M_AP_R + k] - 100.0 * apg[k]) < 1e-9);
    char mdp[600], cell[32];
    snprintf(mdp, sizeof mdp, "%s/leaderboard.md", results);
    char *md;
    size_t mdn;
    assert_int_equal(fx_read_file(mdp, &md, &mdn), 0);
    assert_non_null(strstr(md, "| mAP | AP_r | AP_c | AP_f |"));
    assert_non_null(strstr(md, "| n/a | n/a |"));   /* ECE and ECE-TS of this row */
    snprintf(cell, sizeof cell, "| %.2f |", 100.0 * apg[0]);
    assert_non_null(strstr(md, cell));
    free(md);
    free(rows);
    lt_run_set_free(&set);
    cJSON_Delete(res);

    /* A batch above the training set where the protocol cannot know the set's
     * size (no expected_train_size; 20 per class is only an upper bound of
     * 1000, since small classes have fewer): the runner refuses it once the
     * dataset is open, before it plans the model for the batch, naming the
     * protocol file and the key. */
    char pdir[400], ppath[500];
    snprintf(pdir, sizeof pdir, "%s/proto", fx_scratch);
    snprintf(ppath, sizeof ppath, "%s/lvis_lt_fixture.json", pdir);
    char *ptext;
    size_t plen;
    assert_int_equal(fx_read_file("protocols/lvis_lt_fixture.json", &ptext, &plen), 0);
    char *at = strstr(ptext, "\"batch\": 128,");   /* the first: scales.ci.stage1 */
    assert_non_null(at);
    memcpy(at, "\"batch\": 999,", strlen("\"batch\": 999,"));
    assert_int_equal(fx_write_file(ppath, ptext, plen), 0);
    free(ptext);
    r.protocol = ppath;
    r.method = "ce";
    assert_int_equal(lt_runner_run(&r, &out), LT_OK);
    assert_false(out.ok);
    char want[700];
    snprintf(want, sizeof want, "%s: key 'scales.ci.stage1.batch' is 999, larger than the training set of scale ci (",
             ppath);
    if (!strstr(out.reason, want)) fail_msg("reason: %s", out.reason);
    print_message("note: %s\n", out.reason);

    /* The BALMS variants' pieces through the real runner, on RGB crops (the
     * fixture's ci scale: 32 px): the ci augmentation with AutoAugment's
     * CIFAR-10 policy and Cutout, stage 1 on a cosine_epoch schedule. The
     * run succeeds, logs the code's per-epoch rates (epoch 1 of 2: 0.1 (1 +
     * cos(pi/2)) / 2 = 0.05, epoch 2: 0) and trains on other pixels than the
     * plain ci augmentation (its first-epoch loss differs). */
    cJSON *pj = fx_read_json("protocols/lvis_lt_fixture.json");
    cJSON *ci = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pj, "scales"), "ci");
    cJSON *tr = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ci, "augmentation"), "train");
    assert_non_null(tr);
    cJSON_AddStringToObject(tr, "autoaugment", "cifar10");
    cJSON *cut = cJSON_AddObjectToObject(tr, "cutout");
    cJSON_AddNumberToObject(cut, "holes", 1);
    cJSON_AddNumberToObject(cut, "length", 16);
    cJSON *sc = cJSON_CreateObject();
    cJSON_AddStringToObject(sc, "kind", "cosine_epoch");
    cJSON_AddStringToObject(sc, "update", "per_epoch");
    cJSON_AddNumberToObject(sc, "warmup_epochs", 0);
    cJSON_AddStringToObject(sc, "warmup_mode", "per_epoch");
    cJSON_AddNumberToObject(sc, "warmup_start_factor", 1.0);
    assert_true(cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(ci, "stage1"), "schedule", sc));
    char *txt = cJSON_Print(pj);
    cJSON_Delete(pj);
    assert_int_equal(fx_write_file(ppath, txt, strlen(txt)), 0);
    free(txt);
    lt_run_outcome aa, plain;
    r.method = "ce";
    r.protocol = ppath;
    fx_run_ok(&r, &aa);
    /* the same protocol name: the plain run gets results of its own */
    char results2[420];
    snprintf(results2, sizeof results2, "%s/results-plain", fx_scratch);
    r.results_root = results2;
    r.protocol = "lvis_lt_fixture";
    fx_run_ok(&r, &plain);
    assert_string_not_equal(aa.run_dir, plain.run_dir);
    double lr[2][2] = {{NAN, NAN}, {NAN, NAN}}, loss[2] = {NAN, NAN};
    const lt_run_outcome *runs[2] = {&aa, &plain};
    for (int k = 0; k < 2; k++) {
        char ep[1200], line[4096];
        snprintf(ep, sizeof ep, "%s/events.jsonl", runs[k]->run_dir);
        FILE *f = fopen(ep, "r");
        assert_non_null(f);
        while (fgets(line, sizeof line, f)) {
            cJSON *j = cJSON_Parse(line);
            assert_non_null(j);
            const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "event");
            const int stage = cJSON_GetObjectItemCaseSensitive(j, "stage") ? cJSON_GetObjectItemCaseSensitive(j, "stage")->valueint : 0;
            if (cJSON_IsString(ev) && !strcmp(ev->valuestring, "epoch_end") && stage == 1) {
                int e = cJSON_GetObjectItemCaseSensitive(j, "epoch")->valueint;
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
                if (e >= 0 && e < 2) lr[k][e] = num(v, "lr");
                if (e == 0) loss[k] = num(v, "loss");
            }
            cJSON_Delete(j);
        }
        fclose(f);
    }
    print_message("note: autoaugment + cutout + cosine_epoch: lr %g, %g, first-epoch loss %.4f (plain ci: %.4f)\n",
                  lr[0][0], lr[0][1], loss[0], loss[1]);
    assert_true(fabs(lr[0][0] - 0.05) < 1e-12);
    assert_true(fabs(lr[0][1]) < 1e-15);
    assert_true(isfinite(loss[0]) && isfinite(loss[1]));
    assert_true(loss[0] != loss[1]);
    /* the result is the variant file's, by its bytes */
    char sha[65];
    assert_int_equal(lt_protocol_hash(ppath, sha), LT_OK);
    cJSON *ra = fx_read_json(aa.result_path);
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ra, "protocol"), "sha256");
    assert_true(cJSON_IsString(ps));
    assert_string_equal(ps->valuestring, sha);
    cJSON_Delete(ra);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fixture_build_and_bsig_run, fx_scratch_setup, fx_scratch_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
