/* test_step.c — the training-step object (engine/lt_step.h) on any machine.
 *
 *   cpu_sgd, cpu_adam   lt_step on a cpu ResNet-8 (28x28x1, 10 classes,
 *                       batch 6) equals the harness's manual sequence
 *                       (forward, zero_grad, lt_softmax_ce, backward,
 *                       lt_optim_step) BIT FOR BIT over five steps, the last
 *                       a partial batch of 3, with a "head" group at other
 *                       factors: parameters, BN statistics, optimizer state,
 *                       step count; the accumulated loss sum, correct and
 *                       seen equal the host computation, and reset clears
 *                       them;
 *   errors              n outside [1, N], labels outside [0, C), NULL
 *                       arguments, a node that is not C logits, an
 *                       optimizer of another model, a non-finite lr;
 *   device_*            the device path (uploads, lt_model_forward_staged,
 *                       the accumulating loss, the optimizer with rates in
 *                       device memory, the CUDA-graph bookkeeping) on a
 *                       host-memory stand-in device whose "graph" records
 *                       the device calls made while capturing and replays
 *                       them (so a per-step value not re-uploaded before a
 *                       launch shows as a wrong number): equal to the cpu
 *                       manual sequence bit for bit, eager and with graphs
 *                       (warm-up, capture, replays, partial batches eager),
 *                       a recapture after freezing the backbone, after
 *                       the workspace generation changed and after fusion
 *                       was turned off, and a failed
 *                       capture: eager fallback, a notice, the counter,
 *                       the same numbers; a model with a host layer (a
 *                       plugin without CUDA code, host_plugin.h, reading
 *                       the staged labels) with graphs asked for: never
 *                       captured, every step eager, a notice naming the
 *                       layer from the start, the same numbers.
 * The real device's version of these is tests/gpu/test_train_cuda.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_plugin.h"
#include "lt_backend_impl.h"
#include "lt_layers_impl.h"
#include "lt_loss.h"
#include "standin_dev.h"
#include "lt_model.h"
#include "lt_model_impl.h"
#include "lt_rng.h"
#include "lt_step.h"

enum { N = 6, C = 10, STEPS = 5 };
static const lt_shape IN = {1, 1, 28, 28};

/* host_layer: the test plugin of host_plugin.h between the features and the
 * logits (no CUDA code: a host layer on a device model) */
static lt_model *build_opt(lt_backend *b, int *logits, int host_layer) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create_on(&m, IN, b), LT_OK);
    int feat = lt_resnet_backbone(m, "resnet8_cifar");
    assert_true(feat > 0);
    if (host_layer) {
        feat = hp_add(m, "hostly", feat, -1);
        assert_true(feat > 0);
    }
    *logits = lt_add_linear(m, "logits", "head", feat, C, 1);
    assert_true(*logits > 0);
    assert_int_equal(lt_model_finalize(m, 4321), LT_OK);
    assert_int_equal(lt_model_set_batch(m, N), LT_OK);
    return m;
}
static lt_model *build(lt_backend *b, int *logits) { return build_opt(b, logits, 0); }

static void optim(lt_model *m, lt_opt_kind kind, lt_optim *o) {
    assert_int_equal(lt_optim_init(o, m, kind, 0.9f, 5e-4f, kind == LT_OPT_SGD), LT_OK);
    assert_int_equal(lt_optim_set_group(o, m, "head", 2.0, 0.5), LT_OK);
}

/* Batch k: rows from a fixed stream; 3 rows when partial, else N. */
static int batch(int k, int partial, float *x, int32_t *y) {
    const int n = partial ? 3 : N;
    lt_rng r;
    lt_rng_init(&r, 77, (uint64_t)k);
    for (size_t i = 0; i < (size_t)n * lt_shape_count(IN); i++) x[i] = (float)lt_rng_normal(&r);
    for (int i = 0; i < n; i++) y[i] = (int32_t)lt_rng_below(&r, C);
    return n;
}
static float lr_at(int k) { return 0.1f / (float)(1 + k); }

typedef struct { double loss_sum; long correct, seen; } stats;

/* The harness's per-iteration sequence (lt_run_train.c train_stage, no hooks). */
static void manual_step(lt_model *m, lt_optim *o, int logits, const float *x, const int32_t *y, int n, float lr,
                        stats *st) {
    /* the labels, as lt_step gives its model (the host plugin reads them) */
    assert_int_equal(lt_model_set_labels(m, y, n), LT_OK);
    assert_int_equal(lt_model_forward(m, x, n, 1), LT_OK);
    const float *lg = lt_model_out(m, logits);
    lt_model_zero_grad(m);
    double loss = 0;
    assert_int_equal(lt_softmax_ce(n, C, lg, y, NULL, NULL, &loss, lt_model_dout(m, logits)), LT_OK);
    assert_int_equal(lt_model_backward(m, n, &logits, 1), LT_OK);
    assert_int_equal(lt_optim_step(o, m, lr), LT_OK);
    st->loss_sum += loss * n;
    st->seen += n;
    for (int i = 0; i < n; i++) {
        const float *row = lg + (size_t)i * C;
        int best = 0;
        for (int j = 1; j < C; j++)
            if (row[j] > row[best]) best = j;
        st->correct += best == y[i];
    }
}

/* Parameters, buffers and optimizer state of a (any backend) against b (cpu): memcmp. */
static void assert_same_state(lt_model *a, const lt_optim *oa, lt_model *b, const lt_optim *ob) {
    assert_int_equal(lt_model_n_params(a), lt_model_n_params(b));
    for (int i = 0; i < lt_model_n_params(a); i++) {
        lt_param_info pa, pb;
        assert_int_equal(lt_model_param_at(a, i, &pa), LT_OK);
        assert_int_equal(lt_model_param_at(b, i, &pb), LT_OK);
        float *wa = malloc(pa.count * sizeof(float));
        assert_int_equal(lt_model_param_to_host(a, i, wa, NULL), LT_OK);
        if (memcmp(wa, pb.w, pa.count * sizeof(float))) fail_msg("parameter %s differs", pa.name);
        free(wa);
    }
    for (int i = 0; i < lt_model_n_buffers(a); i++) {
        lt_buffer_info ba, bb;
        assert_int_equal(lt_model_buffer_at(a, i, &ba), LT_OK);
        assert_int_equal(lt_model_buffer_at(b, i, &bb), LT_OK);
        float *h = malloc(ba.count * sizeof(float));
        assert_int_equal(lt_model_buffer_to_host(a, i, h), LT_OK);
        if (memcmp(h, bb.data, ba.count * sizeof(float))) fail_msg("buffer %s differs", ba.name);
        free(h);
    }
    /* the optimizer state: the device's blocks are host memory in the stand-in */
    assert_int_equal(oa->step, ob->step);
    assert_memory_equal(oa->s1, ob->s1, ob->n * sizeof(float));
    if (ob->s2) assert_memory_equal(oa->s2, ob->s2, ob->n * sizeof(float));
}

/* ---- cpu ------------------------------------------------------------------------------ */
static void cpu_case(lt_opt_kind kind) {
    int la, lb;
    lt_model *a = build(NULL, &la), *b = build(NULL, &lb);
    lt_optim oa, ob;
    optim(a, kind, &oa);
    optim(b, kind, &ob);
    lt_step *s = NULL;
    assert_int_equal(lt_step_create(&s, a, &oa, la, N, C, NULL), LT_OK);
    float *x = malloc((size_t)N * lt_shape_count(IN) * sizeof(float));
    int32_t y[N];
    stats ref = {0, 0, 0};
    for (int k = 0; k < STEPS; k++) {
        const int n = batch(k, k == STEPS - 1, x, y);
        assert_int_equal(lt_step_run(s, x, y, n, lr_at(k)), LT_OK);
        manual_step(b, &ob, lb, x, y, n, lr_at(k), &ref);
    }
    assert_same_state(a, &oa, b, &ob);
    stats got;
    assert_int_equal(lt_step_epoch_stats(s, &got.loss_sum, &got.correct, &got.seen), LT_OK);
    assert_memory_equal(&got.loss_sum, &ref.loss_sum, sizeof(double));
    assert_int_equal(got.correct, ref.correct);
    assert_int_equal(got.seen, (long)(N * (STEPS - 1) + 3));
    assert_true(got.loss_sum > 0);
    lt_step_info info;
    lt_step_get_info(s, &info);
    assert_int_equal(info.steps, STEPS);
    assert_int_equal(info.graphs, 0);
    assert_int_equal(lt_step_reset_stats(s), LT_OK);
    assert_int_equal(lt_step_epoch_stats(s, &got.loss_sum, &got.correct, &got.seen), LT_OK);
    assert_true(got.loss_sum == 0 && got.correct == 0 && got.seen == 0);
    lt_step_free(s);
    lt_optim_free(&oa);
    lt_optim_free(&ob);
    lt_model_free(a);
    lt_model_free(b);
    free(x);
}
static void test_cpu_sgd(void **st) { (void)st; cpu_case(LT_OPT_SGD); }
static void test_cpu_adam(void **st) { (void)st; cpu_case(LT_OPT_ADAM); }

static void test_errors(void **st) {
    (void)st;
    int l;
    lt_model *m = build(NULL, &l), *other = NULL;
    lt_optim o, oo;
    optim(m, LT_OPT_SGD, &o);
    lt_step *s = NULL;
    assert_int_equal(lt_step_create(&s, m, &o, l - 1, N, C, NULL), LT_EINVAL);   /* "feat": not C outputs */
    assert_non_null(strstr(lt_errmsg(), "logits node"));
    assert_int_equal(lt_step_create(&s, m, &o, l, 0, C, NULL), LT_EINVAL);
    assert_int_equal(lt_step_create(&s, NULL, &o, l, N, C, NULL), LT_EINVAL);
    assert_int_equal(lt_model_create(&other, (lt_shape){1, 1, 8, 8}), LT_OK);
    assert_true(lt_add_linear(other, "logits", "head", 0, C, 1) > 0);
    assert_int_equal(lt_model_finalize(other, 1), LT_OK);
    assert_int_equal(lt_optim_init(&oo, other, LT_OPT_SGD, 0.9f, 0, 0), LT_OK);
    assert_int_equal(lt_step_create(&s, m, &oo, l, N, C, NULL), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "another model"));
    assert_null(s);
    /* a step for a larger batch re-plans the model */
    assert_int_equal(lt_step_create(&s, m, &o, l, N + 2, C, NULL), LT_OK);
    assert_int_equal(lt_model_batch(m), N + 2);
    float *x = calloc((size_t)(N + 3) * lt_shape_count(IN), sizeof(float));
    int32_t y[N + 3] = {0};
    const long step0 = o.step;
    assert_int_equal(lt_step_run(s, x, y, N + 3, 0.1f), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "1..8"));
    assert_int_equal(lt_step_run(s, x, y, 0, 0.1f), LT_EINVAL);
    y[2] = C;
    assert_int_equal(lt_step_run(s, x, y, 4, 0.1f), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "label[2] = 10 outside [0, 10)"));
    y[2] = -1;
    assert_int_equal(lt_step_run(s, x, y, 4, 0.1f), LT_EINVAL);
    y[2] = 0;
    assert_int_equal(lt_step_run(s, x, y, 4, NAN), LT_EINVAL);
    assert_int_equal(lt_step_run(s, NULL, y, 4, 0.1f), LT_EINVAL);
    assert_int_equal(lt_step_run(NULL, x, y, 4, 0.1f), LT_EINVAL);
    /* nothing ran */
    assert_int_equal(o.step, step0);
    lt_step_info info;
    lt_step_get_info(s, &info);
    assert_int_equal(info.steps, 0);
    assert_int_equal(lt_step_run(s, x, y, 4, 0.1f), LT_OK);
    assert_int_equal(o.step, step0 + 1);
    lt_step_free(s);
    lt_step_free(NULL);
    free(x);
    lt_optim_free(&o);
    lt_optim_free(&oo);
    lt_model_free(m);
    lt_model_free(other);
}

/* ---- a host-memory stand-in device with a recording "graph" --------------------------------
 * Memory is host memory, layers run the CPU layers (as tests/gpu/
 * test_model_cuda.c's stand-in), the loss and the optimizer are reference
 * implementations of the kernels' arithmetic. While capturing, every call
 * that would be device work is recorded instead of run; a launch replays
 * the record. A host copy or a wait while capturing fails and invalidates
 * the capture, as on a real device. */
typedef enum { R_FWD, R_BWD, R_MEMSET, R_CE, R_SGD, R_ADAM } rec_kind;
typedef struct {
    rec_kind kind;
    lt_model *m;
    lt_node *nd;
    int n, c, groups, nesterov;
    void *p;
    size_t bytes;
    const float *lg;
    const int32_t *lab;
    float *dl, *w, *m1, *m2;
    const float *g;
    const uint8_t *mask, *gid;
    void *acc;
    const lt_step_rates *r;
    float mu, b1, b2, eps;
} rec;
typedef struct { rec *r; int n, cap; } recording;

static recording *capturing;   /* non-NULL while a capture is open */
static int capture_invalid, fail_end, n_launch;
static unsigned long ws_gen;

static void record(const rec *r) {
    if (capturing->n == capturing->cap) {
        capturing->cap = capturing->cap ? 2 * capturing->cap : 256;
        capturing->r = realloc(capturing->r, (size_t)capturing->cap * sizeof(rec));
        assert_non_null(capturing->r);
    }
    capturing->r[capturing->n++] = *r;
}

static int f_memset0(lt_cuda_ctx *c, void *p, size_t n) {
    (void)c;
    if (capturing) { record(&(rec){.kind = R_MEMSET, .p = p, .bytes = n}); return LT_OK; }
    memset(p, 0, n);
    return LT_OK;
}
static int f_copy(lt_cuda_ctx *c, void *d, const void *s, size_t n) {
    (void)c;
    if (capturing) { capture_invalid = 1; return lt_err(LT_EDEVICE, "stand-in: copy while capturing"); }
    memcpy(d, s, n);
    return LT_OK;
}
static int f_sync(lt_cuda_ctx *c) {
    (void)c;
    if (capturing) { capture_invalid = 1; return lt_err(LT_EDEVICE, "stand-in: wait while capturing"); }
    return LT_OK;
}
static int f_fwd(lt_model *m, lt_node *nd, int n) {
    if (capturing) { record(&(rec){.kind = R_FWD, .m = m, .nd = nd, .n = n}); return LT_OK; }
    return standin_layer(m, nd, n, 0);
}
static int f_bwd(lt_model *m, lt_node *nd, int n) {
    if (capturing) { record(&(rec){.kind = R_BWD, .m = m, .nd = nd, .n = n}); return LT_OK; }
    return standin_layer(m, nd, n, 1);
}
/* uploads: the stand-in's staging is the copy itself */
static int f_upload_new(lt_cuda_ctx *c, size_t bytes, void **up) { (void)c; *up = malloc(bytes + 1); return *up ? LT_OK : LT_ENOMEM; }
static void f_upload_free(lt_cuda_ctx *c, void *up) { (void)c; free(up); }
static int f_upload(lt_cuda_ctx *c, void *up, int n, void *const *dst, const void *const *src, const size_t *bytes) {
    (void)up;
    for (int k = 0; k < n; k++) LT_TRY(f_copy(c, dst[k], src[k], bytes[k]));
    return LT_OK;
}
/* The kernels' arithmetic: lt_softmax_ce's loss and gradient, the first
 * maximum as the prediction, the sums of k_ce_acc. */
static void ce_run(int n, int c, const float *lg, const int32_t *lab, float *dl, lt_ce_acc *acc) {
    double loss = 0;
    long hits = 0;
    int rc = lt_softmax_ce(n, c, lg, lab, NULL, NULL, &loss, dl);
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int j = 1; j < c; j++)
            if (lg[(size_t)i * c + j] > lg[(size_t)i * c + best]) best = j;
        hits += best == lab[i];
    }
    if (acc->status == LT_CE_ACC_OK && (rc || !isfinite(loss))) {
        acc->status = rc ? LT_CE_ACC_LOGIT : LT_CE_ACC_LOSS;
        acc->fail_step = acc->steps;
    }
    lt_err_clear();
    acc->loss_sum += loss * n;
    acc->last_loss = loss;
    acc->correct += hits;
    acc->seen += n;
    acc->steps++;
}
static int f_ce(lt_cuda_ctx *cx, int n, int c, const float *lg, const int32_t *lab, float *dl, void *scratch, lt_ce_acc *acc) {
    (void)cx;
    (void)scratch;
    if (capturing) { record(&(rec){.kind = R_CE, .n = n, .c = c, .lg = lg, .lab = lab, .dl = dl, .acc = acc}); return LT_OK; }
    ce_run(n, c, lg, lab, dl, acc);
    return LT_OK;
}
static float g_lr(const lt_step_rates *r, int k) { return k == 0 ? r->lr : (float)((double)r->lr * r->lr_mult[k]); }
static void sgd_run(const rec *a) {
    for (size_t i = 0; i < a->bytes; i++) {
        const uint8_t mk = a->mask ? a->mask[i] : 0;
        if (mk & LT_MASK_FROZEN) continue;
        const int k = a->gid ? a->gid[i] : 0;
        float gi = a->g[i];
        if (!(mk & LT_MASK_NO_DECAY)) gi = gi + a->r->wd[k] * a->w[i];
        float d = gi;
        if (a->mu != 0.0f) {
            const float v = a->mu * a->m1[i] + gi;
            a->m1[i] = v;
            d = a->nesterov ? gi + a->mu * v : v;
        }
        a->w[i] = a->w[i] - g_lr(a->r, k) * d;
    }
}
static void adam_run(const rec *a) {
    const float c1 = 1.0f - a->b1, c2 = 1.0f - a->b2;
    for (size_t i = 0; i < a->bytes; i++) {
        const uint8_t mk = a->mask ? a->mask[i] : 0;
        if (mk & LT_MASK_FROZEN) continue;
        const int k = a->gid ? a->gid[i] : 0;
        float gi = a->g[i];
        if (!(mk & LT_MASK_NO_DECAY)) gi = gi + a->r->wd[k] * a->w[i];
        const float mi = a->b1 * a->m1[i] + c1 * gi, vi = a->b2 * a->m2[i] + c2 * gi * gi;
        a->m1[i] = mi;
        a->m2[i] = vi;
        const float step = (float)((double)g_lr(a->r, k) / a->r->bc1);
        a->w[i] = a->w[i] - step * (mi / (sqrtf(vi) / a->r->bc2_sqrt + a->eps));
    }
}
static int f_sgd(lt_cuda_ctx *c, size_t n, float *w, const float *g, float *mom, const uint8_t *mask, const uint8_t *gid,
                 int ng, const lt_step_rates *r, float mu, int nesterov) {
    (void)c;
    rec a = {.kind = R_SGD, .bytes = n, .w = w, .g = g, .m1 = mom, .mask = mask, .gid = gid, .groups = ng, .r = r,
             .mu = mu, .nesterov = nesterov};
    if (capturing) record(&a);
    else sgd_run(&a);
    return LT_OK;
}
static int f_adam(lt_cuda_ctx *c, size_t n, float *w, const float *g, float *m1, float *m2, const uint8_t *mask,
                  const uint8_t *gid, int ng, const lt_step_rates *r, float b1, float b2, float eps) {
    (void)c;
    rec a = {.kind = R_ADAM, .bytes = n, .w = w, .g = g, .m1 = m1, .m2 = m2, .mask = mask, .gid = gid, .groups = ng,
             .r = r, .b1 = b1, .b2 = b2, .eps = eps};
    if (capturing) record(&a);
    else adam_run(&a);
    return LT_OK;
}
static int f_prepare(lt_cuda_ctx *c) { (void)c; return LT_OK; }
static unsigned long f_ws_gen(const lt_cuda_ctx *c) { (void)c; return ws_gen; }
static int f_begin(lt_cuda_ctx *c) {
    (void)c;
    capturing = calloc(1, sizeof *capturing);
    capture_invalid = 0;
    return capturing ? LT_OK : LT_ENOMEM;
}
static void f_graph_free(lt_cuda_ctx *c, void *exec) {
    (void)c;
    recording *r = exec;
    if (r) free(r->r);
    free(r);
}
static int f_end(lt_cuda_ctx *c, void **exec) {
    recording *r = capturing;
    capturing = NULL;
    *exec = NULL;
    if (capture_invalid || fail_end) {
        f_graph_free(c, r);
        return lt_err(LT_EDEVICE, "stand-in: capture invalidated");
    }
    *exec = r;
    return LT_OK;
}
static int f_launch(lt_cuda_ctx *c, void *exec) {
    (void)c;
    const recording *g = exec;
    n_launch++;
    for (int i = 0; i < g->n; i++) {
        const rec *a = &g->r[i];
        switch (a->kind) {
        case R_FWD: LT_TRY(standin_layer(a->m, a->nd, a->n, 0)); break;
        case R_BWD: LT_TRY(standin_layer(a->m, a->nd, a->n, 1)); break;
        case R_MEMSET: memset(a->p, 0, a->bytes); break;
        case R_CE: ce_run(a->n, a->c, a->lg, a->lab, a->dl, a->acc); break;
        case R_SGD: sgd_run(a); break;
        case R_ADAM: adam_run(a); break;
        }
    }
    return LT_OK;
}

/* The plain stand-in (tests/standin_dev.h) with the recording entries: what
 * a capture may hold is recorded, a copy or a wait while capturing
 * invalidates it, as on the device. */
static lt_dev_layer fake_layers[LT_LK_COUNT];
static lt_dev_ops fake_dev;

static lt_backend *fake_backend(void) {
    standin_ops_init(&fake_dev);
    for (int k = LT_LK_PLUGIN + 1; k < LT_LK_COUNT; k++) fake_layers[k] = (lt_dev_layer){f_fwd, f_bwd, NULL, NULL, 0};
    fake_dev.layers = fake_layers;
    fake_dev.memset0 = f_memset0;
    fake_dev.h2d = fake_dev.d2h = fake_dev.d2d = f_copy;
    fake_dev.sync = f_sync;
    fake_dev.upload_new = f_upload_new;
    fake_dev.upload_free = f_upload_free;
    fake_dev.upload = f_upload;
    fake_dev.ce_acc = f_ce;
    fake_dev.sgd_dev_rates = f_sgd;
    fake_dev.adam_dev_rates = f_adam;
    fake_dev.graph_prepare = f_prepare;
    fake_dev.ws_generation = f_ws_gen;
    fake_dev.graph_begin = f_begin;
    fake_dev.graph_end = f_end;
    fake_dev.graph_launch = f_launch;
    fake_dev.graph_free = f_graph_free;
    return standin_backend(&fake_dev);
}

/* Twelve steps (two epochs of six: five full batches and a partial one),
 * the stand-in against the cpu manual sequence; between the epochs, when
 * `change` says so, the backbone is frozen (1), the workspace generation
 * moves (2), the momentum changes (3: an argument of the captured
 * optimizer kernel), the head, frozen in epoch 1, is unfrozen (4: its
 * gradient pointer was NULL in the captured layer calls) or fusion is
 * turned off (5: fused pairs run other kernels) in both. */
typedef struct {
    lt_opt_kind kind;
    int graphs, fail, change;
    long want_captures, want_graph_steps, want_failures;
    int host_layer;   /* 1: a host layer in the model (never captured) */
} dev_case;

static void device_case(const dev_case *dc) {
    lt_backend *fb = fake_backend();
    int lf, lc;
    lt_model *mf = build_opt(fb, &lf, dc->host_layer), *mc = build_opt(NULL, &lc, dc->host_layer);
    standin_scratch_for(mf, N);
    lt_optim of, oc;
    optim(mf, dc->kind, &of);
    optim(mc, dc->kind, &oc);
    lt_step_opts so;
    lt_step_opts_default(&so);
    so.graphs = dc->graphs;
    fail_end = dc->fail;
    n_launch = 0;
    lt_step *s = NULL;
    assert_int_equal(lt_step_create(&s, mf, &of, lf, N, C, &so), LT_OK);
    float *x = malloc((size_t)N * lt_shape_count(IN) * sizeof(float));
    int32_t y[N];
    for (int e = 0; e < 2; e++) {
        stats ref = {0, 0, 0}, got;
        if (e == 1 && dc->change == 1) {
            assert_int_equal(lt_model_freeze(mf, "backbone", 1), LT_OK);
            assert_int_equal(lt_model_freeze(mc, "backbone", 1), LT_OK);
        }
        if (e == 1 && dc->change == 2) ws_gen++;
        if (e == 1 && dc->change == 3) of.momentum = oc.momentum = 0.5f;
        if (e == 1 && dc->change == 5) {
            lt_model_set_no_fuse(mf, 1);
            lt_model_set_no_fuse(mc, 1);
        }
        if (dc->change == 4) {
            assert_int_equal(lt_model_freeze(mf, "head", e == 0), LT_OK);
            assert_int_equal(lt_model_freeze(mc, "head", e == 0), LT_OK);
        }
        assert_int_equal(lt_step_reset_stats(s), LT_OK);
        for (int k = 0; k < 6; k++) {
            const int n = batch(6 * e + k, k == 5, x, y);
            const float lr = lr_at(6 * e + k);
            assert_int_equal(lt_step_run(s, x, y, n, lr), LT_OK);
            manual_step(mc, &oc, lc, x, y, n, lr, &ref);
        }
        assert_int_equal(lt_step_epoch_stats(s, &got.loss_sum, &got.correct, &got.seen), LT_OK);
        assert_memory_equal(&got.loss_sum, &ref.loss_sum, sizeof(double));
        assert_int_equal(got.correct, ref.correct);
        assert_int_equal(got.seen, ref.seen);
        assert_same_state(mf, &of, mc, &oc);
    }
    lt_step_info info;
    lt_step_get_info(s, &info);
    assert_int_equal(info.steps, 12);
    assert_int_equal(info.captures, dc->want_captures);
    assert_int_equal(info.graph_steps, dc->want_graph_steps);
    assert_int_equal(info.eager_steps + info.graph_steps, 12);
    assert_int_equal(info.capture_failures, dc->want_failures);
    assert_int_equal(n_launch, dc->want_graph_steps);
    assert_int_equal(info.graphs, dc->graphs && !dc->fail && !dc->host_layer);
    if (dc->host_layer) {
        print_message("%s\n", info.notice);
        assert_non_null(strstr(info.notice, "'hostly'"));
        assert_non_null(strstr(info.notice, "run on the host"));
        assert_null(strchr(info.notice, '\n'));
    } else if (dc->fail) {
        assert_non_null(strstr(info.notice, "capture invalidated"));
        assert_non_null(strstr(info.notice, "runs eagerly"));
        assert_null(strchr(info.notice, '\n'));
    } else {
        assert_string_equal(info.notice, "");
    }
    lt_step_free(s);
    lt_optim_free(&of);
    lt_optim_free(&oc);
    lt_model_free(mf);
    lt_model_free(mc);
    standin_scratch_free();
    fail_end = 0;
    lt_backend_free(fb);
    free(x);
}

/* The device cases: {optimizer, graphs, failing capture, change between
 * the epochs, captures, graph steps, capture failures}. Per epoch 5 full
 * batches + 1 partial: with graphs, epoch 1 is an eager warm-up, the
 * capture (+ launch), 3 replays and the partial eagerly; epoch 2 is 5
 * replays and the partial -> 1 capture, 9 graph steps. A change the graph
 * depends on (freezing the backbone: other nodes run backward; the
 * workspace moved; the momentum, an argument of the captured optimizer
 * kernel; unfreezing the head, whose gradient pointer was NULL in the
 * captured calls) makes epoch 2 warm up and capture again: 2 captures,
 * 4 + 4 graph steps, the cpu's numbers throughout. A failed capture: the
 * notice, the counter, eager from then on, the same numbers. */
static const dev_case DEV_EAGER = {LT_OPT_SGD, 0, 0, 0, 0, 0, 0, 0};
static const dev_case DEV_GRAPH_SGD = {LT_OPT_SGD, 1, 0, 0, 1, 9, 0, 0};
static const dev_case DEV_GRAPH_ADAM = {LT_OPT_ADAM, 1, 0, 0, 1, 9, 0, 0};
static const dev_case DEV_RECAPTURE_FREEZE = {LT_OPT_SGD, 1, 0, 1, 2, 8, 0, 0};
static const dev_case DEV_RECAPTURE_WS = {LT_OPT_ADAM, 1, 0, 2, 2, 8, 0, 0};
static const dev_case DEV_RECAPTURE_MOMENTUM = {LT_OPT_SGD, 1, 0, 3, 2, 8, 0, 0};
static const dev_case DEV_RECAPTURE_NOFUSE = {LT_OPT_SGD, 1, 0, 5, 2, 8, 0, 0};
static const dev_case DEV_RECAPTURE_UNFREEZE = {LT_OPT_SGD, 1, 0, 4, 2, 8, 0, 0};
static const dev_case DEV_CAPTURE_FAILS = {LT_OPT_SGD, 1, 1, 0, 0, 0, 1, 0};
static const dev_case DEV_HOST_LAYER = {LT_OPT_SGD, 1, 0, 0, 0, 0, 0, 1};

static void test_device(void **st) { device_case((const dev_case *)*st); }
#define DEVICE_TEST(name, c) {"test_device_" name, test_device, NULL, NULL, (void *)&(c)}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_sgd),
        cmocka_unit_test(test_cpu_adam),
        cmocka_unit_test(test_errors),
        DEVICE_TEST("eager_sgd", DEV_EAGER),
        DEVICE_TEST("graph_sgd", DEV_GRAPH_SGD),
        DEVICE_TEST("graph_adam", DEV_GRAPH_ADAM),
        DEVICE_TEST("graph_recapture_freeze", DEV_RECAPTURE_FREEZE),
        DEVICE_TEST("graph_recapture_ws", DEV_RECAPTURE_WS),
        DEVICE_TEST("graph_recapture_momentum", DEV_RECAPTURE_MOMENTUM),
        DEVICE_TEST("graph_recapture_nofuse", DEV_RECAPTURE_NOFUSE),
        DEVICE_TEST("graph_recapture_unfreeze", DEV_RECAPTURE_UNFREEZE),
        DEVICE_TEST("capture_fails", DEV_CAPTURE_FAILS),
        DEVICE_TEST("host_layer", DEV_HOST_LAYER),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
