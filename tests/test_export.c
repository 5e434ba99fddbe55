/* test_export.c — `ltbench export RUN_DIR --format safetensors` on real runs
 * of the small fmnist protocol (tests/fixtures_proto.h):
 *   - ce: every tensor of the checkpoint's model in the file, bit-equal;
 *   - lws: the per-class scale folded into fc: fc.weight row j = s_j w_j
 *     and fc.bias_j = s_j b_j, metadata "folded" says so;
 *   - ncm: its predict hook maps the logits to its scores: metadata says so;
 *   - a checkpoint with a model tensor the plain classifier lacks is refused,
 *     naming the tensor.
 * Those three skip (CMocka skip) when the Debian Fashion-MNIST package is
 * absent. The cases after them need no training: a result.json and a
 * checkpoint written here, whose names, files and shapes are wrong in one
 * way each (a scale the protocol lacks, a protocol name that is a path, a
 * missing or corrupt checkpoint, a model of another class count or input
 * channel count than the protocol's, empty path arguments). */
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
#include "lt_protocol.h"
#include "lt_runner.h"
#include "lt_model_st.h"
#include "lt_safetensors.h"
#include "tfiles.h"

static char g_proto[512], g_root[400];

static int setup(void **state) {
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

/* ---- no training: hand-made run directories ---------------------------------- */

/* <scratch>/<name>/result.json naming protocol and scale (method ce, seed 0);
 * the directory into dir. */
static void hand_run(const char *name, const char *proto_json, const char *scale, char *dir, size_t cap) {
    char p[1300], text[1024];
    snprintf(dir, cap, "%s/%s", fx_scratch, name);
    tf_mkdirs(dir);
    snprintf(p, sizeof p, "%s/result.json", dir);
    snprintf(text, sizeof text, "{\"format\":1,\"status\":\"ok\",\"protocol\":{\"name\":%s},\"scale\":\"%s\","
             "\"method\":{\"name\":\"ce\"},\"seed\":0,\"env\":{\"engine_version\":\"x\"}}\n", proto_json, scale);
    tf_spit(p, text);
}

/* dir/ckpt_final.ltc: every tensor of the plain classifier of the tiny
 * protocol's ci architecture with `channels` inputs and `classes` outputs
 * (a complete, loadable checkpoint, only its shapes chosen here). */
static void hand_ckpt(const char *dir, int channels, int classes) {
    lt_protocol *p = malloc(sizeof *p);
    const lt_proto_scale *sc;
    assert_non_null(p);
    assert_int_equal(lt_protocol_load(g_proto, p), LT_OK);
    assert_int_equal(lt_protocol_scale(p, "ci", &sc), LT_OK);
    lt_model *m;
    lt_shape in = {1, channels, sc->image_size, sc->image_size};
    assert_int_equal(lt_model_classifier(&m, sc->arch, in, classes, 1, 7), LT_OK);
    free(p);
    char path[1300], key[256];
    snprintf(path, sizeof path, "%s/ckpt_final.ltc", dir);
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, path), LT_OK);
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info q;
        assert_int_equal(lt_model_param_at(m, i, &q), LT_OK);
        snprintf(key, sizeof key, "m/w/%s", q.name);
        assert_int_equal(lt_ckpt_put(w, key, q.w, q.count * sizeof(float)), LT_OK);
    }
    for (int i = 0; i < lt_model_n_buffers(m); i++) {
        lt_buffer_info b;
        assert_int_equal(lt_model_buffer_at(m, i, &b), LT_OK);
        snprintf(key, sizeof key, "m/b/%s", b.name);
        assert_int_equal(lt_ckpt_put(w, key, b.data, b.count * sizeof(float)), LT_OK);
    }
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    lt_model_free(m);
}

static void assert_msg_has(const char *a, const char *b) {
    if (!strstr(lt_errmsg(), a) || (b && !strstr(lt_errmsg(), b)))
        fail_msg("message '%s' lacks '%s'%s%s", lt_errmsg(), a, b ? " or " : "", b ? b : "");
}

/* A scale the protocol does not have ("medium"): refused by name, naming
 * the file. The message used to be printed with the protocol name read
 * from the parsed document after it was freed (heap use-after-free; an
 * ASan build of this test reports it on the old code). */
static void test_unknown_scale_named(void **state) {
    (void)state;
    char dir[1200], res[1300], out[1300];
    hand_run("scale_medium", "\"fmnist_lt_tiny\"", "medium", dir, sizeof dir);
    hand_ckpt(dir, 1, 10);
    snprintf(res, sizeof res, "%s/result.json", dir);
    snprintf(out, sizeof out, "%s/x.safetensors", dir);
    assert_int_equal(export_to(dir, out), 1);
    assert_msg_has(res, "key 'scale' is 'medium', not ci, short or full");
    assert_int_equal(access(out, F_OK), -1);
}

/* protocol.name is looked up as a name: one with '/' or ending in .json
 * used to be opened as a path (../../../etc/passwd was read and its text
 * echoed in the parse error). */
static void test_protocol_name_not_a_path(void **state) {
    (void)state;
    static const char *const bad[] = {"\"../../../etc/passwd\"", "\"/etc/hostname\"", "\"x.json\"",
                                      "\"Fmnist\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char dir[1200], res[1300], out[1300];
        hand_run("proto_path", bad[i], "ci", dir, sizeof dir);
        snprintf(res, sizeof res, "%s/result.json", dir);
        snprintf(out, sizeof out, "%s/x.safetensors", dir);
        assert_int_equal(export_to(dir, out), 1);
        assert_msg_has(res, "key 'protocol.name' is '");
        assert_msg_has("not a name ([a-z0-9_]", NULL);
        assert_null(strstr(lt_errmsg(), "root:"));
    }
}

/* The checkpoint is named in every error; a missing one is "is the run
 * finished?", a damaged one "corrupt", never the other way round. */
static void test_checkpoint_named(void **state) {
    (void)state;
    char dir[1200], ck[1300], out[1300];
    hand_run("ckpt_missing", "\"fmnist_lt_tiny\"", "ci", dir, sizeof dir);
    snprintf(ck, sizeof ck, "%s/ckpt_final.ltc", dir);
    snprintf(out, sizeof out, "%s/x.safetensors", dir);
    assert_int_equal(export_to(dir, out), 1);
    assert_msg_has(ck, "no final checkpoint (is the run finished?)");
    tf_spit(ck, "not a checkpoint at all");
    assert_int_equal(export_to(dir, out), 1);
    assert_msg_has(ck, "corrupt checkpoint");
    assert_null(strstr(lt_errmsg(), "is the run finished"));
    assert_int_equal(access(out, F_OK), -1);
}

/* The checkpoint's model must be the protocol's: a complete classifier of
 * 7 classes, or of 3 input channels, used to be exported under the tiny
 * protocol's name (10 classes, 1 channel) without a word. */
static void test_model_must_match_protocol(void **state) {
    (void)state;
    char dir[1200], ck[1300], out[1300];
    hand_run("ckpt_shape", "\"fmnist_lt_tiny\"", "ci", dir, sizeof dir);
    snprintf(ck, sizeof ck, "%s/ckpt_final.ltc", dir);
    snprintf(out, sizeof out, "%s/x.safetensors", dir);
    hand_ckpt(dir, 1, 7);
    assert_int_equal(export_to(dir, out), 1);
    assert_msg_has(ck, "logits.bias has 7 values, but protocol fmnist_lt_tiny has 10 classes");
    hand_ckpt(dir, 3, 10);
    assert_int_equal(export_to(dir, out), 1);
    assert_msg_has(ck, "conv1.weight has");
    assert_msg_has("not the 1 input channel(s)", NULL);
    assert_int_equal(access(out, F_OK), -1);
    hand_ckpt(dir, 1, 10);   /* the protocol's own shapes export */
    assert_int_equal(export_to(dir, out), 0);
    assert_int_equal(access(out, F_OK), 0);
}

/* An empty path is a usage error, not "/result.json" or "/model.safetensors". */
static void test_empty_paths(void **state) {
    (void)state;
    char *a1[] = {"export", "", "--format", "safetensors", NULL};
    assert_int_equal(lt_cmd_export(4, a1), 2);
    char dir[1200];
    hand_run("empty_out", "\"fmnist_lt_tiny\"", "ci", dir, sizeof dir);
    hand_ckpt(dir, 1, 10);
    char *a2[] = {"export", dir, "--format", "safetensors", "--out", "", NULL};
    assert_int_equal(lt_cmd_export(6, a2), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce),
        cmocka_unit_test(test_lws_folded),
        cmocka_unit_test(test_ncm_says_scores),
        cmocka_unit_test(test_unknown_scale_named),
        cmocka_unit_test(test_protocol_name_not_a_path),
        cmocka_unit_test(test_checkpoint_named),
        cmocka_unit_test(test_model_must_match_protocol),
        cmocka_unit_test(test_empty_paths),
    };
    return cmocka_run_group_tests(tests, setup, fx_scratch_teardown);
}
