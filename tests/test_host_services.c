/* test_host_services.c — a toy method that uses every host service of
 * method ABI 3 through the real runner (a small copy of fmnist_lt_r100, as
 * fx_tiny_protocol of tests/fixtures_proto.h):
 *   - norm_layer builds every BN of the backbone; the validation split
 *     (left-over training images); a second optimized module trained on the
 *     batch's features and saved in the checkpoints; a frozen teacher (the
 *     finished `ce` run of the same protocol and seed); a sub-graph (the
 *     head on the batch's feature rows gives the batch's logits); an extra
 *     class-aware batch with two views; the optimizer's state; two views
 *     per sample with one forwarded (taps.x holds both); a batch hook that
 *     shrinks the batch; a gradient into a projection node (grads.extra);
 *     per-group optimizer factors;
 *   - the toy checks each property inside the run (a broken one fails the
 *     run with a reason) and logs what it saw; the test reads the events;
 *   - what the toy logs from post_train (and only that) is in result.json's
 *     method_report, the last value of a key logged twice;
 *   - a killed and resumed toy run equals the uninterrupted one (the module's
 *     parameters and optimizer come back from the checkpoint);
 *   - the teacher service refuses a run that does not exist, and runs of
 *     another seed, protocol or engine version, saying what differs.
 * The test process only forks runs and reads files (no OpenMP work in it:
 * a child forked after OpenMP work can hang). Skips without the Debian
 * Fashion-MNIST package. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tassert.h"   /* lt_tmax: a max that keeps a NaN */

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixtures_img.h"
#include "fixtures_proto.h"
#include "lt.h"
#include "lt_io.h"
#include "lt_method.h"
#include "lt_runner.h"

/* ---- the toy method (runs in the forked child) --------------------------------------- */

#define TOY_DEFAULTS "{\"teacher_method\": \"ce\", \"teacher_seed\": -1, \"teacher_bn_train\": false}"
enum { DRAW_N = 16 };

typedef struct {
    const lt_run_info *run;
    int C, D;
    const char *teacher_method;
    long teacher_seed;
    double teacher_bn_train;      /* 1: the teacher's BN on batch statistics, running ones drifting */
    int norm_calls;
    lt_model *cb;                 /* the module */
    lt_model *teacher;
    lt_subgraph *sg;
    int feat, logits, proj;
    float *dx;                    /* draw buffers */
    int32_t *dy, *did;
    long iters, views_ok, draws_ok, shrunk, opt_nonzero, teacher_agree, teacher_rows;
    double sg_err;
} toy_state;

static int toy_fail(const char *what) { return lt_err(LT_ESTATE, "toy: %s", what); }

static int toy_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    toy_state *st = stp;
    st->run = run;
    st->C = run->n_classes;
    st->D = run->feat_dim;
    LT_TRY(lt_hp_str(hp, "teacher_method", &st->teacher_method));
    LT_TRY(lt_hp_int(hp, "teacher_seed", &st->teacher_seed));
    LT_TRY(lt_hp_num(hp, "teacher_bn_train", &st->teacher_bn_train));
    if (!run->api || run->api->version < 1) return toy_fail("no host services");
    if (!run->host) return LT_OK;   /* built as another run's teacher: no services */
    /* the validation split: disjoint from the training and test rows */
    const lt_dataset *val;
    const char *origin;
    LT_TRY(run->api->validation(run->host, &val, &origin));
    if (val->n_classes != st->C || !origin || !strstr(origin, "left-over")) return toy_fail("validation split");
    LT_TRY(run->log(run->host, "toy_val_n", (double)val->n));
    /* a second optimized module: a linear classifier on feature rows */
    LT_TRY(run->api->module_new(run->host, "cb", (lt_shape){1, st->D, 1, 1}, &st->cb));
    int l = lt_add_linear(st->cb, "cb", "cb", 0, st->C, 1);
    if (l < 0) return -l;
    lt_module_cfg mc = {.kind = LT_OPT_SGD, .momentum = 0.9f, .weight_decay = 5e-4f,
                        .sched = {.kind = LT_SCHED_CONSTANT, .base_lr = 0.05}, .max_rows = 128};
    return run->api->module_ready(run->host, st->cb, &mc);
}

static int toy_norm(void *stp, lt_model *m, const char *name, const char *group, int in) {
    toy_state *st = stp;
    st->norm_calls++;
    return lt_add_bn(m, name, group, in);
}

static int toy_build(void *stp, lt_model *m, int feat) {
    toy_state *st = stp;
    int l = lt_add_linear(m, "logits", "head", feat, st->C, 1);
    if (l < 0) return -l;
    int p = lt_add_linear(m, "proj", "proj", feat, 8, 1);
    return p < 0 ? -p : LT_OK;
}

static int toy_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    toy_state *st = stp;
    const lt_run_info *run = st->run;
    if (stage != 0) return toy_fail("one stage");
    if (st->norm_calls != 7) return toy_fail("norm_layer was not asked for every BN of ResNet-8");
    cfg->views = 2;
    cfg->model_views = 1;
    /* ABI 4: view 1 through the strong MoCo-v2 pipeline (view 0 keeps the
     * protocol's); on 1-channel Fashion-MNIST its colour-only ops are skipped
     * and the stage_start event says so */
    cfg->n_view_pipelines = 2;
    lt_aug_pipeline_mocov2(&cfg->view_pipelines[1], 0);
    cfg->n_groups = 1;
    snprintf(cfg->groups[0].group, sizeof cfg->groups[0].group, "proj");
    cfg->groups[0].lr_mult = 2.0;
    cfg->groups[0].wd_mult = 0.0;
    st->feat = lt_model_find(m, "feat");
    st->logits = lt_model_find(m, "logits");
    st->proj = lt_model_find(m, "proj");
    if (!st->sg) LT_TRY(run->api->subgraph(run->host, m, "feat", "logits", cfg->batch, &st->sg));
    if (!st->teacher) {
        lt_teacher_req tq = {.method = st->teacher_method, .seed = st->teacher_seed, .max_rows = cfg->batch,
                             .bn_train = st->teacher_bn_train != 0};
        LT_TRY(run->api->teacher(run->host, &tq, &st->teacher));
    }
    if (!st->dx) {
        const size_t in_sz = lt_shape_count(run->in_shape);
        st->dx = malloc(2 * DRAW_N * in_sz * sizeof(float));
        st->dy = malloc(2 * DRAW_N * sizeof(int32_t));
        st->did = malloc(2 * DRAW_N * sizeof(int32_t));
        if (!st->dx || !st->dy || !st->did) return lt_err(LT_ENOMEM, "toy: out of memory");
    }
    LT_TRY(run->log(run->host, "toy_norm_calls", (double)st->norm_calls));
    return LT_OK;
}

static int toy_batch_hook(void *stp, lt_batch *b, lt_rng *rng) {
    toy_state *st = stp;
    const lt_run_info *run = st->run;
    (void)rng;
    if (b->views != 2 || b->n % 2) return toy_fail("batch views");
    /* an extra class-aware batch, two views */
    lt_draw_req q = {.sampler = {.kind = LT_SAMPLER_CLASS_AWARE, .k_per_class = 2}, .n = DRAW_N, .views = 2,
                     .augment = 1, .stream = LT_STREAM_METHOD + 5, .epoch = b->epoch, .batch = b->iter};
    LT_TRY(run->api->draw(run->host, &q, st->dx, st->dy, st->did));
    const size_t in_sz = lt_shape_count(run->in_shape);
    int ok = 1, differ = 0;
    for (int s = 0; s < DRAW_N; s++) {
        ok &= st->dy[s] == run->train->labels[st->did[s]] && st->did[DRAW_N + s] == st->did[s];
        differ += memcmp(st->dx + s * in_sz, st->dx + (DRAW_N + s) * in_sz, in_sz * sizeof(float)) != 0;
    }
    for (size_t i = 0; i < 2 * DRAW_N * in_sz; i++)   /* a NaN view differs too */
        if (!isfinite(st->dx[i])) ok = 0;
    for (int s = 0; s + 1 < DRAW_N; s += 2) ok &= st->dy[s] == st->dy[s + 1];   /* 2 per class visit */
    if (!ok || differ < DRAW_N / 2) return toy_fail("drawn batch");
    st->draws_ok++;
    /* drop the batch's last sample from both views (the hook may shrink n) */
    const int s = b->n / 2, s1 = s - 1;
    memmove(b->x + (size_t)s1 * in_sz, b->x + (size_t)s * in_sz, (size_t)s1 * in_sz * sizeof(float));
    memmove(b->labels + s1, b->labels + s, (size_t)s1 * sizeof(int32_t));
    memmove(b->ids + s1, b->ids + s, (size_t)s1 * sizeof(int32_t));
    b->n = 2 * s1;
    st->shrunk++;
    return LT_OK;
}

static int toy_loss(void *stp, const lt_taps *t, double *loss, lt_grads *g) {
    toy_state *st = stp;
    const lt_run_info *run = st->run;
    const int n = t->n, C = st->C, D = st->D;
    const size_t in_sz = lt_shape_count(run->in_shape);
    LT_TRY(lt_softmax_ce(n, C, t->logits, t->labels, NULL, NULL, loss, g->dlogits));
    /* views: x holds both, the model forwarded the first; ids repeat */
    int differ = 0, ok = t->views == 2 && t->x_rows == 2 * n;
    for (int i = 0; ok && i < n; i++) {
        ok &= t->ids[n + i] == t->ids[i] && t->labels[n + i] == t->labels[i];
        differ += memcmp(t->x + i * in_sz, t->x + (n + i) * in_sz, in_sz * sizeof(float)) != 0;
    }
    for (size_t i = 0; ok && i < 2 * (size_t)n * in_sz; i++)   /* a NaN view differs too */
        if (!isfinite(t->x[i])) ok = 0;
    if (!ok || differ < n / 2) return toy_fail("views in the taps");
    st->views_ok++;
    /* the head on the batch's feature rows as extra rows = the batch's logits */
    LT_TRY(lt_subgraph_forward(st->sg, t->feat, n, 1));
    const float *sl = lt_subgraph_out(st->sg, st->logits);
    /* lt_tmax keeps a NaN difference: toy_subgraph_err < 1e-4 fails on it */
    for (int i = 0; i < n * C; i++) st->sg_err = lt_tmax(st->sg_err, fabs(sl[i] - t->logits[i]));
    /* a gradient into the projection node */
    float *dp = lt_model_dout(t->model, st->proj);
    const float *pv = lt_model_out(t->model, st->proj);
    for (int i = 0; i < n * 8; i++) dp[i] = 0.01f * pv[i] / (float)n;
    g->extra[g->n_extra++] = st->proj;
    /* the module trains on the (detached) features */
    double lm;
    LT_TRY(lt_model_forward(st->cb, t->feat, n, 1));
    const int cl = lt_model_find(st->cb, "cb");
    LT_TRY(lt_softmax_ce(n, C, lt_model_out(st->cb, cl), t->labels, NULL, NULL, &lm, lt_model_dout(st->cb, cl)));
    lt_model_zero_grad(st->cb);
    LT_TRY(lt_model_backward(st->cb, n, &cl, 1));
    float lr;
    LT_TRY(run->api->module_step(run->host, st->cb, t->iter, 1, &lr));
    if (lr != 0.05f) return toy_fail("module learning rate");
    /* the teacher on the forwarded view */
    LT_TRY(lt_model_forward(st->teacher, t->x, n, st->teacher_bn_train != 0));
    const float *tl = lt_model_out(st->teacher, lt_model_find(st->teacher, "logits"));
    for (int i = 0; i < n; i++) {
        int a = 0, b = 0;
        for (int j = 1; j < C; j++) {
            if (tl[i * C + j] > tl[i * C + a]) a = j;
            if (!isfinite(tl[i * C + j])) return toy_fail("teacher logits");
        }
        b = t->labels[i];
        st->teacher_agree += a == b;
        st->teacher_rows++;
    }
    /* the optimizer's state, before this step: zero at the first iteration */
    const float *s1, *s2;
    size_t cnt;
    LT_TRY(run->api->opt_state(run->host, "logits.weight", &s1, &s2, &cnt));
    if (cnt != (size_t)C * D || s2) return toy_fail("optimizer state shape");
    double norm = 0;
    for (size_t k = 0; k < cnt; k++) norm += fabs(s1[k]);
    if (t->iter == 0 && t->epoch == 0 && norm != 0) return toy_fail("momentum before the first step");
    st->opt_nonzero += norm > 0;
    st->iters++;
    return LT_OK;
}

static int toy_epoch_end(void *stp, int stage, int epoch, lt_model *m) {
    toy_state *st = stp;
    const lt_run_info *run = st->run;
    (void)stage;
    (void)epoch;
    (void)m;
    LT_TRY(run->log(run->host, "toy_iters", (double)st->iters));
    LT_TRY(run->log(run->host, "toy_views_ok", (double)st->views_ok));
    LT_TRY(run->log(run->host, "toy_draws_ok", (double)st->draws_ok));
    LT_TRY(run->log(run->host, "toy_shrunk", (double)st->shrunk));
    LT_TRY(run->log(run->host, "toy_subgraph_err", st->sg_err));
    LT_TRY(run->log(run->host, "toy_opt_nonzero", (double)st->opt_nonzero));
    LT_TRY(run->log(run->host, "toy_teacher_acc", (double)st->teacher_agree / (double)st->teacher_rows));
    return LT_OK;
}

/* After training: a method's own measurements go into result.json's
 * method_report (the last value of a key logged twice). */
static int toy_post_train(void *stp, lt_model *m, const lt_feature_bank *fb) {
    toy_state *st = stp;
    (void)m;
    (void)fb;
    LT_TRY(st->run->log(st->run->host, "toy_post_a", 1.5));
    LT_TRY(st->run->log(st->run->host, "toy_post_a", 2.5));
    return st->run->log(st->run->host, "toy_post_b", 7.0);
}

static void toy_fini(void *stp) {
    toy_state *st = stp;
    free(st->dx);
    free(st->dy);
    free(st->did);
}

static const lt_method toy = {
    .abi = LT_METHOD_ABI, .name = "test_toy", .version = "1", .cite = "none", .fidelity = "reconstructed",
    .defaults = TOY_DEFAULTS, .state_size = sizeof(toy_state), .init = toy_init, .fini = toy_fini,
    .build = toy_build, .stage_begin = toy_stage_begin, .batch_hook = toy_batch_hook, .loss = toy_loss,
    .epoch_end = toy_epoch_end, .post_train = toy_post_train, .norm_layer = toy_norm,
};

/* ---- the test process ---------------------------------------------------------------- */

static char g_proto[512], g_root[400];

static int setup(void **state) {
    if (fx_train_blocker(NULL)) return 0;   /* every case skips */
    if (fx_scratch_setup(state) || fx_tiny_protocol(fx_scratch, g_proto, sizeof g_proto)) return -1;
    snprintf(g_root, sizeof g_root, "%s/r", fx_scratch);
    return lt_method_register(&toy) ? -1 : 0;
}

/* fx_run on one thread (fx_request). */
static void run(const char *root, const char *method, const char *hp, int kill, lt_run_outcome *o) {
    lt_run_request r;
    fx_request(&r, g_proto, root, method, 1);
    r.hparams = hp;
    r.kill_after_epoch = kill;
    assert_int_equal(lt_runner_run(&r, o), LT_OK);
}

/* A run's final checkpoint (the caller frees it). */
static lt_ckpt *final_ckpt(const char *run_dir) {
    char p[1300];
    snprintf(p, sizeof p, "%s/ckpt_final.ltc", run_dir);
    lt_ckpt *c = NULL;
    assert_int_equal(lt_ckpt_read(&c, p), LT_OK);
    return c;
}

/* Record `name` in both checkpoints, byte for byte the same. */
static void assert_record_equal(const lt_ckpt *a, const lt_ckpt *b, const char *name) {
    const void *da, *db;
    size_t na, nb;
    assert_int_equal(lt_ckpt_get(a, name, &da, &na), LT_OK);
    assert_int_equal(lt_ckpt_get(b, name, &db, &nb), LT_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
}

static int has_event(const lt_run_outcome *o, const char *event) {
    char p[1300], pat[80];
    snprintf(p, sizeof p, "%s/events.jsonl", o->run_dir);
    snprintf(pat, sizeof pat, "\"event\":\"%s\"", event);
    char *s;
    size_t n;
    assert_int_equal(lt_io_read_all(p, &s, &n), LT_OK);
    int hit = strstr(s, pat) != NULL;
    free(s);
    return hit;
}

static lt_run_outcome g_toy;

static void test_every_service(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    lt_run_outcome ce;
    run(g_root, "ce", NULL, 0, &ce);   /* the teacher */
    if (!ce.ok) fail_msg("ce: %s", ce.reason);
    run(g_root, "test_toy", NULL, 0, &g_toy);
    if (!g_toy.ok) fail_msg("toy: %s", g_toy.reason);
    const double iters = fx_logged(&g_toy, "toy_iters");
    print_message("note: toy: %g iterations, val %g images, subgraph max |diff| %g, teacher acc %.3f\n", iters,
                  fx_logged(&g_toy, "toy_val_n"), fx_logged(&g_toy, "toy_subgraph_err"),
                  fx_logged(&g_toy, "toy_teacher_acc"));
    assert_true(iters == 2 * 17);   /* 1120 images / batch 64, 2 epochs */
    assert_true(fx_logged(&g_toy, "toy_norm_calls") == 7);
    assert_true(fx_logged(&g_toy, "toy_val_n") == 180);   /* 20 per class but class 0 (no left-overs) */
    assert_true(fx_logged(&g_toy, "toy_views_ok") == iters);
    assert_true(fx_logged(&g_toy, "toy_draws_ok") == iters);
    assert_true(fx_logged(&g_toy, "toy_shrunk") == iters);
    assert_true(fx_logged(&g_toy, "toy_subgraph_err") < 1e-4);
    assert_true(fx_logged(&g_toy, "toy_opt_nonzero") == iters - 1);
    assert_true(fx_logged(&g_toy, "toy_teacher_acc") > 0.3);   /* a trained model, not noise */
    assert_true(has_event(&g_toy, "teacher"));
    {   /* the strong view's record: kind, and the ops skipped on 1-channel data */
        char p[1300];
        snprintf(p, sizeof p, "%s/events.jsonl", g_toy.run_dir);
        char *ev;
        size_t n;
        assert_int_equal(lt_io_read_all(p, &ev, &n), LT_OK);
        assert_non_null(strstr(ev, "\"view_aug\":[{\"kind\":\"protocol\"},{\"kind\":\"pipeline\""));
        assert_non_null(strstr(ev, "\"skipped\":[\"saturation\",\"hue\",\"grayscale\"]"));
        free(ev);
    }
    assert_true(has_event(&g_toy, "validation"));
    /* the result records the validation split */
    char p[1300];
    snprintf(p, sizeof p, "%s/result.json", g_toy.run_dir);
    cJSON *j;
    assert_int_equal(lt_json_read(p, &j), LT_OK);
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "dataset"), "val_manifest_sha256");
    assert_true(cJSON_IsString(v) && strlen(v->valuestring) == 64);
    /* post_train's values, and nothing logged before it */
    const cJSON *mr = cJSON_GetObjectItem(j, "method_report");
    assert_true(cJSON_IsObject(mr));
    assert_int_equal(cJSON_GetArraySize(mr), 2);
    assert_true(cJSON_GetObjectItem(mr, "toy_post_a")->valuedouble == 2.5);
    assert_true(cJSON_GetObjectItem(mr, "toy_post_b")->valuedouble == 7.0);
    cJSON_Delete(j);
    /* the module is in the final checkpoint */
    snprintf(p, sizeof p, "%s/ckpt_final.ltc", g_toy.run_dir);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, p), LT_OK);
    assert_true(lt_ckpt_has(c, "mod/cb/m/w/cb.weight"));
    assert_true(lt_ckpt_has(c, "mod/cb/o/optim/s1"));
    lt_ckpt_free(c);
}

static void test_resume_restores_modules(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    if (!g_toy.ok) skip();
    char root[420];
    snprintf(root, sizeof root, "%s/k", fx_scratch);
    lt_run_outcome ce, a, b;
    run(root, "ce", NULL, 0, &ce);
    assert_true(ce.ok);
    run(root, "test_toy", NULL, 1, &a);   /* killed after epoch 1 */
    assert_false(a.ok);
    run(root, "test_toy", NULL, 0, &b);   /* resumed */
    if (!b.ok) fail_msg("resumed toy: %s", b.reason);
    fx_assert_same_metrics(&g_toy, &b);
    /* the module's parameters too */
    lt_ckpt *ca = final_ckpt(g_toy.run_dir), *cb = final_ckpt(b.run_dir);
    assert_record_equal(ca, cb, "mod/cb/m/w/cb.weight");
    lt_ckpt_free(ca);
    lt_ckpt_free(cb);
}

/* A teacher with train-mode BN (the host's bn_train): its running
 * statistics drift with every forward and live in the run's checkpoints
 * (teacher/<i>/b/...), copied through host memory (lt_run_host.c); a run
 * killed after epoch 1 and resumed ends with the same statistics as the
 * uninterrupted one, and the same metrics. */
static void test_teacher_bn_train_resume(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    if (!g_toy.ok) skip();
    const char *hp = "{\"teacher_bn_train\": true}";
    char ra[420], rb[420];
    snprintf(ra, sizeof ra, "%s/tb_a", fx_scratch);
    snprintf(rb, sizeof rb, "%s/tb_b", fx_scratch);
    lt_run_outcome ce, a, k, b;
    run(ra, "ce", NULL, 0, &ce);
    assert_true(ce.ok);
    run(rb, "ce", NULL, 0, &ce);
    assert_true(ce.ok);
    run(ra, "test_toy", hp, 0, &a);
    if (!a.ok) fail_msg("toy, teacher bn train: %s", a.reason);
    run(rb, "test_toy", hp, 1, &k);   /* killed after epoch 1 */
    assert_false(k.ok);
    run(rb, "test_toy", hp, 0, &b);   /* resumed */
    if (!b.ok) fail_msg("resumed toy, teacher bn train: %s", b.reason);
    fx_assert_same_metrics(&a, &b);
    lt_ckpt *ca = final_ckpt(a.run_dir), *cb = final_ckpt(b.run_dir);
    /* the teacher's statistics: saved, moved from the teacher run's, equal */
    lt_ckpt *ct = final_ckpt(ce.run_dir);
    int n_buf = 0, n_moved = 0;
    for (int i = 0; i < lt_ckpt_count(ca); i++) {
        const char *name = lt_ckpt_name(ca, i);
        if (strncmp(name, "teacher/0/b/", 12)) continue;
        n_buf++;
        assert_record_equal(ca, cb, name);
        const void *da, *dt;
        size_t na, nt;
        assert_int_equal(lt_ckpt_get(ca, name, &da, &na), LT_OK);
        char own[300];
        snprintf(own, sizeof own, "m/b/%s", name + 12);   /* the teacher run's own copy */
        if (lt_ckpt_get(ct, own, &dt, &nt) == LT_OK && nt == na && memcmp(dt, da, na)) n_moved++;
    }
    print_message("teacher buffers in the checkpoint: %d, moved from the teacher run's: %d\n", n_buf, n_moved);
    assert_true(n_buf > 0);
    assert_true(n_moved > 0);
    lt_ckpt_free(ct);
    lt_ckpt_free(ca);
    lt_ckpt_free(cb);
}

/* A copy of ce's final checkpoint at another seed's place, with `from`
 * replaced by `to` (same length) in its identity and the checksum redone. */
static void forge(const char *src, long seed, const char *from, const char *to) {
    char dir[600], dst[700];
    snprintf(dir, sizeof dir, "%s/f/runs/fmnist_lt_tiny/ci/ce/seed%ld", fx_scratch, seed);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(dst, sizeof dst, "%s/ckpt_final.ltc", dir);
    char *s;
    size_t n;
    assert_int_equal(lt_io_read_all(src, &s, &n), LT_OK);
    if (from) {
        assert_int_equal(strlen(from), strlen(to));
        char *at = memmem(s, n, from, strlen(from));
        assert_non_null(at);
        memcpy(at, to, strlen(to));
        uint8_t d[32];
        lt_sha256 h;
        lt_sha256_init(&h);
        lt_sha256_update(&h, s, n - 32);
        lt_sha256_final(&h, d);
        memcpy(s + n - 32, d, 32);
    }
    assert_int_equal(lt_file_write_atomic(dst, s, n), LT_OK);
    free(s);
}

static void refused(const char *hp, const char *want1, const char *want2) {
    char root[420];
    snprintf(root, sizeof root, "%s/f", fx_scratch);   /* the forged teachers' results root */
    lt_run_outcome o;
    run(root, "test_toy", hp, 0, &o);
    print_message("note: %s -> %s\n", hp, o.reason);
    assert_false(o.ok);
    assert_non_null(strstr(o.reason, "teacher"));
    assert_non_null(strstr(o.reason, want1));
    if (want2) assert_non_null(strstr(o.reason, want2));
}

static void test_teacher_refusals(void **state) {
    (void)state;
    FX_SKIP_UNLESS_RUNNABLE(NULL);
    if (!g_toy.ok) skip();
    char src[1300];
    snprintf(src, sizeof src, "%s/runs/fmnist_lt_tiny/ci/ce/seed0/ckpt_final.ltc", g_root);
    /* no such run */
    refused("{\"teacher_seed\": 5}", "does not exist", "ltbench run");
    /* a run of seed 0 placed where seed 7's would be */
    forge(src, 7, NULL, NULL);
    refused("{\"teacher_seed\": 7}", "seed 0", "seed 7");
    /* another engine version */
    char eng[64], old[64];
    snprintf(eng, sizeof eng, "engine=%s", LT_ENGINE_VERSION);
    snprintf(old, sizeof old, "engine=%s", LT_ENGINE_VERSION);
    old[strlen(old) - 1] = old[strlen(old) - 1] == '9' ? '8' : (char)(old[strlen(old) - 1] + 1);
    forge(src, 8, eng, old);
    refused("{\"teacher_seed\": 8}", "engine version", old + 7);
    /* another protocol */
    forge(src, 9, "protocol=fmnist_lt_tiny", "protocol=fmnist_lt_tinz");
    refused("{\"teacher_seed\": 9}", "protocol fmnist_lt_tinz", NULL);
    /* a method that does not exist */
    refused("{\"teacher_method\": \"nope\"}", "unknown method", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_service),
        cmocka_unit_test(test_resume_restores_modules),
        cmocka_unit_test(test_teacher_bn_train_resume),
        cmocka_unit_test(test_teacher_refusals),
    };
    return cmocka_run_group_tests(tests, setup, fx_scratch_teardown);
}
