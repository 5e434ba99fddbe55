/* test_export.c — `ltbench export RUN_DIR --format safetensors` on real runs
 * of the small fmnist protocol (tests/fixtures_proto.h):
 *   - ce: every tensor of the checkpoint's model in the file, bit-equal;
 *   - lws: the per-class scale folded into fc: fc.weight row j = s_j w_j
 *     and fc.bias_j = s_j b_j, metadata "folded" says so;
 *   - ncm: its predict hook maps the logits to its scores: metadata says so;
 *   - a checkpoint with a model tensor the plain classifier lacks is refused,
 *     naming the tensor.
 * Skips (CMocka skip) when the Debian Fashion-MNIST package is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_export.h"
#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt.h"
#include "lt_runner.h"
#include "lt_model_st.h"
#include "lt_safetensors.h"

static char g_proto[512], g_root[400];

static int setup(void **state) {
    if (fx_train_blocker(NULL)) return 0;   /* every case skips */
    if (fx_scratch_setup(state) || fx_tiny_protocol(fx_scratch, g_proto, sizeof g_proto)) return -1;
    snprintf(g_root, sizeof g_root, "%s/results", fx_scratch);
    setenv("LTBENCH_PROTOCOLS", fx_scratch, 1);   /* export finds the protocol by name */
    return 0;
}

/* Trains (or re-uses) method at seed 0 on one thread; its run directory into dir. */
static void run(const char *method, char *dir, size_t cap) {
    lt_run_request r;
    fx_request(&r, g_proto, g_root, method, 1);
    lt_run_outcome o;
    fx_run_ok(&r, &o);
    snprintf(dir, cap, "%s", o.result_path);
    char *slash = strrchr(dir, '/');
    assert_non_null(slash);
    *slash = 0;
}

static int export_to(const char *dir, const char *out) {
    char *argv[] = {"export", (char *)dir, "--format", "safetensors", "--out", (char *)out, NULL};
    return lt_cmd_export(6, argv);
}

static const float *ck_f32(const lt_ckpt *k, const char *name, size_t *n) {
    const void *d;
    size_t b;
    assert_int_equal(lt_ckpt_get(k, name, &d, &b), LT_OK);
    *n = b / sizeof(float);
    return d;
}

static void test_ce(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    char dir[1200], out[1300], ckp[1300];
    run("ce", dir, sizeof dir);
    snprintf(out, sizeof out, "%s/ce.safetensors", fx_scratch);
    assert_int_equal(export_to(dir, out), 0);
    snprintf(ckp, sizeof ckp, "%s/ckpt_final.ltc", dir);
    lt_ckpt *k;
    lt_st_file *f;
    assert_int_equal(lt_ckpt_read(&k, ckp), LT_OK);
    assert_int_equal(lt_st_read(&f, out), LT_OK);
    int n_model = 0;
    for (int i = 0; i < lt_ckpt_count(k); i++) {
        const char *nm = lt_ckpt_name(k, i);
        if (strncmp(nm, "m/w/", 4) && strncmp(nm, "m/b/", 4)) continue;
        char tn[256];
        lt_model_torch_name(nm + 4, tn, sizeof tn);
        size_t n;
        const float *want = ck_f32(k, nm, &n);
        const lt_st_tensor *t = lt_st_find(f, tn);
        if (!t) fail_msg("%s (%s) not exported", tn, nm);
        assert_int_equal(t->bytes, n * sizeof(float));
        assert_memory_equal(t->data, want, t->bytes);
        n_model++;
    }
    assert_true(n_model > 20);
    assert_string_equal(lt_st_meta_get(f, "method"), "ce");
    assert_string_equal(lt_st_meta_get(f, "scores"), "logits");
    assert_string_equal(lt_st_meta_get(f, "folded"), "none");
    lt_st_free(f);

    /* one model tensor the plain classifier lacks: refused, named */
    char bad_dir[1300], bad_ck[1400], res[1400], cmd[3000];
    snprintf(bad_dir, sizeof bad_dir, "%s/extra_run", fx_scratch);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/result.json' '%s/'", bad_dir, dir, bad_dir);
    assert_int_equal(system(cmd), 0);
    snprintf(bad_ck, sizeof bad_ck, "%s/ckpt_final.ltc", bad_dir);
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, bad_ck), LT_OK);
    for (int i = 0; i < lt_ckpt_count(k); i++) {
        const void *d;
        size_t n;
        assert_int_equal(lt_ckpt_get(k, lt_ckpt_name(k, i), &d, &n), LT_OK);
        assert_int_equal(lt_ckpt_put(w, lt_ckpt_name(k, i), d, n), LT_OK);
    }
    float mix[3] = {1, 2, 3};
    assert_int_equal(lt_ckpt_put(w, "m/b/bn1.mix_pi", mix, sizeof mix), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    lt_ckpt_free(k);
    snprintf(res, sizeof res, "%s/bad.safetensors", fx_scratch);
    assert_int_equal(export_to(bad_dir, res), 1);
    assert_non_null(strstr(lt_errmsg(), "bn1.mix_pi"));
    assert_int_equal(access(res, F_OK), -1);
}

static void test_lws_folded(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    char dir[1200], out[1300], ckp[1300];
    run("lws", dir, sizeof dir);
    snprintf(out, sizeof out, "%s/lws.safetensors", fx_scratch);
    assert_int_equal(export_to(dir, out), 0);
    snprintf(ckp, sizeof ckp, "%s/ckpt_final.ltc", dir);
    lt_ckpt *k;
    lt_st_file *f;
    assert_int_equal(lt_ckpt_read(&k, ckp), LT_OK);
    assert_int_equal(lt_st_read(&f, out), LT_OK);
    size_t nw, nb, ns;
    const float *w = ck_f32(k, "m/w/logits.weight", &nw);
    const float *b = ck_f32(k, "m/w/logits.bias", &nb);
    const float *s = ck_f32(k, "m/w/logits.scale", &ns);
    assert_int_equal(ns, nb);
    int scaled = 0;
    for (size_t j = 0; j < ns; j++) scaled += s[j] != 1.0f;
    assert_true(scaled > 0);   /* stage 2 moved the scales: the fold is seen */
    const lt_st_tensor *fw = lt_st_find(f, "fc.weight"), *fb = lt_st_find(f, "fc.bias");
    assert_non_null(fw);
    assert_non_null(fb);
    assert_int_equal(fw->bytes, nw * sizeof(float));
    assert_int_equal(fb->bytes, nb * sizeof(float));
    assert_null(lt_st_find(f, "fc.scale"));
    const float *gw = (const float *)fw->data, *gb = (const float *)fb->data;
    size_t D = nw / ns;
    for (size_t j = 0; j < ns; j++) {
        assert_true(gb[j] == s[j] * b[j]);
        for (size_t q = 0; q < D; q++) assert_true(gw[j * D + q] == s[j] * w[j * D + q]);
    }
    assert_non_null(strstr(lt_st_meta_get(f, "folded"), "logits.scale"));
    lt_st_free(f);
    lt_ckpt_free(k);
}

static void test_ncm_says_scores(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    char dir[1200], out[1300];
    run("ncm", dir, sizeof dir);
    snprintf(out, sizeof out, "%s/ncm.safetensors", fx_scratch);
    assert_int_equal(export_to(dir, out), 0);
    lt_st_file *f;
    assert_int_equal(lt_st_read(&f, out), LT_OK);
    assert_non_null(strstr(lt_st_meta_get(f, "scores"), "predict hook"));
    lt_st_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce),
        cmocka_unit_test(test_lws_folded),
        cmocka_unit_test(test_ncm_says_scores),
    };
    return cmocka_run_group_tests(tests, setup, fx_scratch_teardown);
}
