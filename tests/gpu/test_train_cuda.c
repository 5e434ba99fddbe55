/* test_train_cuda.c — whole training steps on the CUDA backend
 * (engine/lt_step.h, issue 20): ResNet-8 on random 28x28x1 data, 10
 * classes, batch 8, six steps (five full batches and a partial one of 5
 * rows), SGD (momentum 0.9, weight decay 5e-4, Nesterov) with a "head"
 * group at lr x2, wd x0.5, or Adam.
 *
 *   cuda_vs_cpu_sgd/adam  lt_step on cuda (graphs on) against lt_step on
 *                         cpu (the harness's sequence) on the reference
 *                         conv path (im2col + sgemm, no Winograd error):
 *                         each step's loss within 2e-3 (relative), after
 *                         the six steps every parameter's update
 *                         (w - w_init) within 4e-1 per-tensor L2
 *                         (|u_gpu - u_cpu|_2 / |u_cpu|_2), every BN
 *                         running statistic within 1e-2 (max |gpu - cpu|
 *                         / max |cpu|, tests/gpu/optable.h), the loss sums
 *                         within 2e-3, seen equal and correct within 2 of
 *                         the 45 rows (a near-tie of two logits may go
 *                         either way). Why these: measured before any GPU
 *                         run on two correct cpu models (the Winograd
 *                         path against the reference, the size of
 *                         difference cuDNN's own algorithms make), this
 *                         recipe, 60 data seeds each: a ~5e-6 conv
 *                         difference flips a few pre-ReLU signs, which at
 *                         batch 8 moves small BN biases by 5% of their
 *                         size, and Adam moves any weight with a near-zero
 *                         gradient by lr whatever its sign; the worst
 *                         were step losses 3.0e-4, updates 0.076 (SGD)
 *                         and 0.158 (Adam, conv1), BN statistics 2.5e-3.
 *                         A lost update, a wrong group factor (x2 on the
 *                         head) or a wrong sign moves an update by >= 0.5.
 *                         The worst values are printed.
 *   graph_vs_eager        deterministic backend: graphs on against
 *                         LT_CUDA_GRAPH-off (eager) from the same seed:
 *                         parameters, buffers, optimizer state and the
 *                         accumulated sums memcmp-equal; the graph run
 *                         captured once and replayed 4 of the 5 full
 *                         batches after its warm-up step;
 *   deterministic_twice   two deterministic graph runs: memcmp-equal;
 *   uploads_unsynced      the same steps back to back without a wait between
 *                         them against steps with one: memcmp-equal (no
 *                         step gets another's batch);
 *   ckpt_resume           deterministic: 3 steps, save model + optimizer
 *                         (lt_model_save / lt_optim_save from device
 *                         memory), load into a fresh cuda model and
 *                         optimizer, 3 more steps on each: the resumed run
 *                         equals the uninterrupted one bit for bit; the
 *                         file loads into a cpu model with the same values
 *                         (the format does not depend on the backend);
 *   capture_fallback      a head with the learned-scale cosine layer (its
 *                         backward reads the scale on the host, which a
 *                         capture cannot hold): the capture fails, one
 *                         notice, capture_failures = 1, every step eager,
 *                         and the numbers equal a graphs-off run bit for
 *                         bit (deterministic);
 *   nhwc                  the model in NHWC (lt_model_set_layout): cuda_vs_cpu
 *                         (SGD) at the same tolerances, and graph_vs_eager
 *                         bit for bit;
 *   layout_switch         deterministic: 2 steps NCHW, then 2 NHWC, then 2
 *                         NCHW again, graphs on against graphs off:
 *                         memcmp-equal, and a warm-up after each switch (2
 *                         captures, 2 graph steps: a graph of one layout is
 *                         never replayed under the other);
 *   wgrad_stream          deterministic: the filter-gradient stream on
 *                         (lt_cuda_set_wgrad_stream), graphs on, against
 *                         it off without graphs: memcmp-equal, one capture
 *                         and no capture failure; the same with the steps
 *                         back to back (unsynced), in NHWC, and switched
 *                         off, on, off between steps (a capture
 *                         after each switch: a graph of the one structure
 *                         is never replayed under the other);
 *   metrics_on_cpu_paths  (runs everywhere) the cuda_vs_cpu comparison and
 *                         tolerances on two correct cpu runs (the default
 *                         conv path against the reference): both pass.
 * Without a CUDA device every GPU case prints the reason and calls skip(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt_backend.h"
#include "lt_ckpt.h"
#include "lt_cuda.h"
#include "lt_model.h"
#include "lt_rng.h"
#include "lt_step.h"
#include "optable.h"

enum { N = 8, C = 10, STEPS = 6, PARTIAL = 5 };
static const lt_shape IN = {1, 1, 28, 28};
static const double TOL_LOSS = 2e-3, TOL_UPD = 4e-1, TOL_BUF = 1e-2;
static const long TOL_CORRECT = 2;

static lt_backend *gpu_backend(int det) {
    lt_backend *b = NULL;
    if (lt_backend_cuda_create(0, LT_CUDA_FP32, det, &b) != LT_OK) {
        print_message("skip: no usable CUDA device: %s\n", lt_errmsg());
        return NULL;
    }
    return b;
}
#define NEED_GPU(bp, det)                \
    do {                                 \
        (bp) = gpu_backend(det);         \
        if (!(bp)) { skip(); return; }   \
    } while (0)

/* the layout build() gives cuda models (test_nhwc) */
static lt_layout g_layout = LT_LAYOUT_NCHW;

/* head: 0 = linear "logits", 1 = learned-scale cosine "logits" */
static lt_model *build(lt_backend *b, int head, int *logits) {
    lt_model *m = NULL;
    assert_int_equal(lt_model_create_on(&m, IN, b), LT_OK);
    int feat = lt_resnet_backbone(m, "resnet8_cifar");
    assert_true(feat > 0);
    *logits = head ? lt_add_cosine_learned(m, "logits", "head", feat, C, 16.0f)
                   : lt_add_linear(m, "logits", "head", feat, C, 1);
    assert_true(*logits > 0);
    assert_int_equal(lt_model_finalize(m, 2024), LT_OK);
    assert_int_equal(lt_model_set_batch(m, N), LT_OK);
    if (lt_model_device_ctx(m)) assert_int_equal(lt_model_set_layout(m, g_layout), LT_OK);
    return m;
}

static void optim(lt_model *m, lt_opt_kind kind, lt_optim *o) {
    assert_int_equal(lt_optim_init(o, m, kind, 0.9f, 5e-4f, kind == LT_OPT_SGD), LT_OK);
    assert_int_equal(lt_optim_set_group(o, m, "head", 2.0, 0.5), LT_OK);
}

static int batch(int k, float *x, int32_t *y) {
    const int n = k == STEPS - 1 ? PARTIAL : N;
    lt_rng r;
    lt_rng_init(&r, 11, (uint64_t)k);
    for (size_t i = 0; i < (size_t)n * lt_shape_count(IN); i++) x[i] = (float)lt_rng_normal(&r);
    for (int i = 0; i < n; i++) y[i] = (int32_t)lt_rng_below(&r, C);
    return n;
}
static float lr_at(int k, lt_opt_kind kind) { return (kind == LT_OPT_SGD ? 0.05f : 1e-3f) / (float)(1 + k); }

/* One run: a model, its optimizer and step. */
typedef struct {
    lt_model *m;
    lt_optim o;
    lt_step *s;
    int logits;
    double loss[STEPS];   /* per-step losses (stats read after each step) */
} run;

static void run_open(run *r, lt_backend *b, int head, lt_opt_kind kind, int graphs) {
    memset(r, 0, sizeof *r);
    r->m = build(b, head, &r->logits);
    optim(r->m, kind, &r->o);
    lt_step_opts so;
    lt_step_opts_default(&so);
    so.graphs = graphs;
    assert_int_equal(lt_step_create(&r->s, r->m, &r->o, r->logits, N, C, &so), LT_OK);
}

static void run_close(run *r) {
    lt_step_free(r->s);
    lt_optim_free(&r->o);
    lt_model_free(r->m);
}

/* Steps [k0, k1) with the per-step loss read back (a wait per step: these
 * tests are about numbers, not speed). */
static void run_steps(run *r, lt_opt_kind kind, int k0, int k1) {
    float *x = malloc((size_t)N * lt_shape_count(IN) * sizeof(float));
    int32_t y[N];
    for (int k = k0; k < k1; k++) {
        const int n = batch(k, x, y);
        double before = 0, after = 0;
        long c0, s0, c1, s1;
        assert_int_equal(lt_step_epoch_stats(r->s, &before, &c0, &s0), LT_OK);
        assert_int_equal(lt_step_run(r->s, x, y, n, lr_at(k, kind)), LT_OK);
        assert_int_equal(lt_step_epoch_stats(r->s, &after, &c1, &s1), LT_OK);
        assert_int_equal(s1 - s0, n);
        r->loss[k] = (after - before) / n;
    }
    free(x);
}

/* The same steps back to back, nothing read in between: the host runs
 * ahead of the device, so the uploads of later batches are queued while
 * earlier steps still wait (on the emulator nothing runs until the end;
 * its streams are independent, so a missing wait between the upload's copy
 * stream and the compute stream shows as a wrong batch). */
static void run_steps_unsynced(run *r, lt_opt_kind kind, int k0, int k1) {
    float *x = malloc((size_t)N * lt_shape_count(IN) * sizeof(float));
    int32_t y[N];
    for (int k = k0; k < k1; k++) {
        const int n = batch(k, x, y);
        assert_int_equal(lt_step_run(r->s, x, y, n, lr_at(k, kind)), LT_OK);
    }
    free(x);
}

/* Host copies of every parameter and buffer, concatenated. */
typedef struct { float *w, *b; size_t nw, nb; } snap;
static void snap_take(run *r, snap *s) {
    lt_model *m = r->m;
    memset(s, 0, sizeof *s);
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info p;
        lt_model_param_at(m, i, &p);
        s->nw += p.count;
    }
    for (int i = 0; i < lt_model_n_buffers(m); i++) {
        lt_buffer_info b;
        lt_model_buffer_at(m, i, &b);
        s->nb += b.count;
    }
    s->w = malloc(s->nw * sizeof(float));
    s->b = malloc(s->nb * sizeof(float) + 4);
    size_t o = 0;
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info p;
        lt_model_param_at(m, i, &p);
        assert_int_equal(lt_model_param_to_host(m, i, s->w + o, NULL), LT_OK);
        o += p.count;
    }
    o = 0;
    for (int i = 0; i < lt_model_n_buffers(m); i++) {
        lt_buffer_info b;
        lt_model_buffer_at(m, i, &b);
        assert_int_equal(lt_model_buffer_to_host(m, i, s->b + o), LT_OK);
        o += b.count;
    }
}
static void snap_free(snap *s) { free(s->w); free(s->b); }

/* The optimizer state through a checkpoint record (the only host view of a
 * device optimizer's slots): "o/optim/s1" (and s2). */
static void optim_state_host(run *r, const char *path, float **s1, float **s2, size_t *n) {
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, path), LT_OK);
    assert_int_equal(lt_optim_save(&r->o, w, "o/"), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, path), LT_OK);
    const void *d;
    size_t bytes;
    assert_int_equal(lt_ckpt_get(c, "o/optim/s1", &d, &bytes), LT_OK);
    *n = bytes / sizeof(float);
    *s1 = malloc(bytes);
    memcpy(*s1, d, bytes);
    *s2 = NULL;
    if (lt_ckpt_has(c, "o/optim/s2")) {
        assert_int_equal(lt_ckpt_get(c, "o/optim/s2", &d, &bytes), LT_OK);
        *s2 = malloc(bytes);
        memcpy(*s2, d, bytes);
    }
    lt_ckpt_free(c);
    unlink(path);
}

static char tmp_path[64];
static const char *tmpfile_name(const char *tag) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/lt_train_cuda_%s_%d.ltc", tag, (int)getpid());
    return tmp_path;
}

/* a, b bit for bit: parameters, buffers, optimizer state, accumulated sums. */
static void assert_runs_equal(run *a, run *b, const char *what) {
    snap sa, sb;
    snap_take(a, &sa);
    snap_take(b, &sb);
    assert_int_equal(sa.nw, sb.nw);
    int ok = !memcmp(sa.w, sb.w, sa.nw * sizeof(float)) && !memcmp(sa.b, sb.b, sa.nb * sizeof(float));
    float *a1, *a2, *b1, *b2;
    size_t na, nb;
    optim_state_host(a, tmpfile_name("a"), &a1, &a2, &na);
    optim_state_host(b, tmpfile_name("b"), &b1, &b2, &nb);
    ok = ok && na == nb && !memcmp(a1, b1, na * sizeof(float)) && (!a2 || !memcmp(a2, b2, na * sizeof(float)));
    double la, lb;
    long ca, cb, na_, nb_;
    assert_int_equal(lt_step_epoch_stats(a->s, &la, &ca, &na_), LT_OK);
    assert_int_equal(lt_step_epoch_stats(b->s, &lb, &cb, &nb_), LT_OK);
    ok = ok && !memcmp(&la, &lb, sizeof la) && ca == cb && na_ == nb_;
    print_message("%s: parameters, buffers, optimizer state, sums %s\n", what, ok ? "bit-identical" : "DIFFER");
    free(a1); free(a2); free(b1); free(b2);
    snap_free(&sa);
    snap_free(&sb);
    assert_true(ok);
}

/* ---- cuda against cpu ---------------------------------------------------------------------- */
/* A run on backend `other` (a GPU, or NULL: the default cpu conv path)
 * against the reference cpu run, compared as above: 1 when within the
 * tolerances. */
static int versus_ref(lt_opt_kind kind, lt_backend *gb, const char *what) {
    lt_cpu_opts co;
    lt_cpu_opts_default(&co);
    co.conv = LT_CONV_PATH_REF;
    lt_backend *cb = NULL;
    assert_int_equal(lt_backend_cpu_create(&co, &cb), LT_OK);
    run g, c;
    run_open(&g, gb, 0, kind, 1);
    run_open(&c, cb, 0, kind, 1);
    /* the initial parameters (the same on both: initialised on the host) */
    snap w0;
    snap_take(&c, &w0);
    run_steps(&g, kind, 0, STEPS);
    run_steps(&c, kind, 0, STEPS);
    double e_loss = 0;
    for (int k = 0; k < STEPS; k++) {
        double e = fabs(g.loss[k] - c.loss[k]) / fmax(fabs(c.loss[k]), 1e-30);
        if (isnan(e)) e = INFINITY;
        if (!(e <= e_loss)) e_loss = e;
    }
    double e_w = 0, e_b = 0;
    const char *ww = "-", *wb = "-";
    size_t off = 0;
    for (int i = 0; i < lt_model_n_params(c.m); i++) {
        lt_param_info p;
        lt_model_param_at(c.m, i, &p);
        float *h = malloc(p.count * sizeof(float));
        assert_int_equal(lt_model_param_to_host(g.m, i, h, NULL), LT_OK);
        double d2 = 0, u2 = 0;
        for (size_t q = 0; q < p.count; q++) {
            const double u = (double)p.w[q] - w0.w[off + q], d = (double)h[q] - p.w[q];
            u2 += u * u;
            d2 += d * d;
        }
        double e = u2 > 0 ? sqrt(d2 / u2) : sqrt(d2);
        if (isnan(e)) e = INFINITY;   /* a NaN must fail, and stay the worst */
        if (!(e <= e_w)) { e_w = e; ww = p.name; }
        off += p.count;
        free(h);
    }
    snap_free(&w0);
    for (int i = 0; i < lt_model_n_buffers(c.m); i++) {
        lt_buffer_info b;
        lt_model_buffer_at(c.m, i, &b);
        float *h = malloc(b.count * sizeof(float));
        assert_int_equal(lt_model_buffer_to_host(g.m, i, h), LT_OK);
        const double e = lt_ot_relerr(b.data, h, b.count);
        if (!(e <= e_b)) { e_b = e; wb = b.name; }
        free(h);
    }
    double lg, lc;
    long cg, cc, sg, sc;
    assert_int_equal(lt_step_epoch_stats(g.s, &lg, &cg, &sg), LT_OK);
    assert_int_equal(lt_step_epoch_stats(c.s, &lc, &cc, &sc), LT_OK);
    const double e_sum = fabs(lg - lc) / fmax(fabs(lc), 1e-30);
    lt_step_info gi;
    lt_step_get_info(g.s, &gi);
    const int ok = e_loss <= TOL_LOSS && e_w <= TOL_UPD && e_b <= TOL_BUF && e_sum <= TOL_LOSS &&
                   labs(cg - cc) <= TOL_CORRECT && sg == sc;
    print_message("%s %s: %d steps, losses %.3g (tol %.0e), updates per-tensor L2 %.3g (%.0e, worst %s), BN buffers "
                  "%.3g (%.0e, worst %s), loss sum %.3g, correct %ld/%ld (gpu/cpu), seen %ld/%ld, graph steps %ld, "
                  "eager %ld: %s\n",
                  what, kind == LT_OPT_SGD ? "sgd" : "adam", STEPS, e_loss, TOL_LOSS, e_w, TOL_UPD, ww, e_b, TOL_BUF, wb,
                  e_sum, cg, cc, sg, sc, gi.graph_steps, gi.eager_steps, ok ? "PASS" : "FAIL");
    run_close(&g);
    run_close(&c);
    lt_backend_free(cb);
    return ok;
}
static void cuda_vs_cpu(lt_opt_kind kind) {
    lt_backend *gb;
    NEED_GPU(gb, 0);
    const int ok = versus_ref(kind, gb, "cuda");
    lt_backend_free(gb);
    assert_true(ok);
}
static void test_cuda_vs_cpu_sgd(void **s) { (void)s; cuda_vs_cpu(LT_OPT_SGD); }
static void test_cuda_vs_cpu_adam(void **s) { (void)s; cuda_vs_cpu(LT_OPT_ADAM); }
/* Runs everywhere: the comparison and its tolerances on two correct cpu
 * runs, the default conv path (Winograd where AVX-512 has it) against the
 * reference. */
static void test_metrics_on_cpu_paths(void **s) {
    (void)s;
    assert_true(versus_ref(LT_OPT_SGD, NULL, "cpu"));
    assert_true(versus_ref(LT_OPT_ADAM, NULL, "cpu"));
}

/* ---- graphs against eager, and determinism --------------------------------------------------- */
static void graph_vs_eager(void) {
    lt_backend *gb;
    NEED_GPU(gb, 1);
    run a, b;
    run_open(&a, gb, 0, LT_OPT_SGD, 1);
    run_open(&b, gb, 0, LT_OPT_SGD, 0);
    run_steps(&a, LT_OPT_SGD, 0, STEPS);
    run_steps(&b, LT_OPT_SGD, 0, STEPS);
    lt_step_info ia, ib;
    lt_step_get_info(a.s, &ia);
    lt_step_get_info(b.s, &ib);
    print_message("graph run: %ld captures, %ld graph steps, %ld eager, %ld failures%s%s\n", ia.captures,
                  ia.graph_steps, ia.eager_steps, ia.capture_failures, ia.notice[0] ? ": " : "", ia.notice);
    assert_int_equal(ia.capture_failures, 0);
    assert_int_equal(ia.captures, 1);
    assert_int_equal(ia.graph_steps, STEPS - 2);   /* five full: warm-up eager, capture + 3 replays -> 4 */
    assert_int_equal(ib.graph_steps, 0);
    assert_runs_equal(&a, &b, "graph vs eager");
    run_close(&a);
    run_close(&b);
    lt_backend_free(gb);
}

static void test_graph_vs_eager(void **s) { (void)s; graph_vs_eager(); }

/* NHWC activations: the same comparisons (the CPU reference stays NCHW). */
static void test_nhwc(void **s) {
    (void)s;
    g_layout = LT_LAYOUT_NHWC;
    lt_backend *gb = gpu_backend(0);
    if (!gb) {
        g_layout = LT_LAYOUT_NCHW;
        skip();
        return;
    }
    const int ok = versus_ref(LT_OPT_SGD, gb, "cuda nhwc");
    lt_backend_free(gb);
    graph_vs_eager();
    g_layout = LT_LAYOUT_NCHW;
    assert_true(ok);
}

/* Steps 0-1, 2-3 and 4-5, set(&a, &b, j) before pair j, a with graphs on
 * (on backend ga), b without (on gb): a switch of something a captured
 * graph was made for. Each switch warms up again: steps 1 and 3 are
 * captured and run as graphs, steps 0, 2, 4 (after a switch) and 5
 * (partial) eagerly. The counts matter: both settings can give the same
 * bits (they do on the emulator), so a stale graph replayed after the
 * switch back would not show in the numbers. Then a and b bit for bit. */
static void switched_runs(lt_backend *ga, lt_backend *gb, void (*set)(run *a, run *b, int j), const char *what) {
    run a, b;
    run_open(&a, ga, 0, LT_OPT_SGD, 1);
    run_open(&b, gb, 0, LT_OPT_SGD, 0);
    const int k0[4] = {0, 2, 4, STEPS};
    for (int j = 0; j < 3; j++) {
        set(&a, &b, j);
        run_steps(&a, LT_OPT_SGD, k0[j], k0[j + 1]);
        run_steps(&b, LT_OPT_SGD, k0[j], k0[j + 1]);
    }
    lt_step_info ia;
    lt_step_get_info(a.s, &ia);
    print_message("%s: %ld captures, %ld graph steps, %ld eager\n", what, ia.captures, ia.graph_steps,
                  ia.eager_steps);
    assert_int_equal(ia.capture_failures, 0);
    assert_int_equal(ia.captures, 2);
    assert_int_equal(ia.graph_steps, 2);
    assert_runs_equal(&a, &b, what);
    run_close(&a);
    run_close(&b);
}

/* NCHW, NHWC, NCHW on both runs */
static void layout_set(run *a, run *b, int j) {
    const lt_layout seq[3] = {LT_LAYOUT_NCHW, LT_LAYOUT_NHWC, LT_LAYOUT_NCHW};
    assert_int_equal(lt_model_set_layout(a->m, seq[j]), LT_OK);
    assert_int_equal(lt_model_set_layout(b->m, seq[j]), LT_OK);
}

/* Steps in NCHW, NHWC, NCHW on one model, graphs on against off: the
 * layout is part of what a captured graph was made for. */
static void test_layout_switch(void **s) {
    (void)s;
    lt_backend *gb;
    NEED_GPU(gb, 1);
    switched_runs(gb, gb, layout_set, "layout switches, graph vs eager");
    lt_backend_free(gb);
}

/* Two graph runs of the same steps on one deterministic backend, the
 * second's steps back to back when `unsynced`: bit-identical. */
static void two_runs(lt_opt_kind kind, int unsynced, const char *what) {
    lt_backend *gb;
    NEED_GPU(gb, 1);
    run a, b;
    run_open(&a, gb, 0, kind, 1);
    run_open(&b, gb, 0, kind, 1);
    run_steps(&a, kind, 0, STEPS);
    if (unsynced) run_steps_unsynced(&b, kind, 0, STEPS);
    else run_steps(&b, kind, 0, STEPS);
    assert_runs_equal(&a, &b, what);
    run_close(&a);
    run_close(&b);
    lt_backend_free(gb);
}

static void test_deterministic_twice(void **s) { (void)s; two_runs(LT_OPT_ADAM, 0, "two deterministic runs"); }

/* Steps run back to back (the host ahead of the device) equal steps with a
 * wait after each, bit for bit: the batch upload (pinned slots, the copy
 * stream, the device staging) never hands a step another step's batch. */
static void test_uploads_unsynced(void **s) { (void)s; two_runs(LT_OPT_SGD, 1, "steps with and without waits"); }

/* ---- the filter-gradient stream ------------------------------------------------------------------ */
static void wgrad_set(run *r, int on) {
    assert_int_equal(lt_cuda_set_wgrad_stream(lt_model_device_ctx(r->m), on), LT_OK);
    assert_int_equal(lt_cuda_wgrad_stream(lt_model_device_ctx(r->m)), on);
}

/* off, on, off on a only (switched_runs) */
static void wgrad_switch(run *a, run *b, int j) {
    (void)b;
    wgrad_set(a, j == 1);
}

/* Run a (filter-gradient stream on, graphs on; steps back to back when
 * `unsynced`) against b (off, eager): bit for bit. a and b each on a
 * backend of their own (the switch is the context's). */
static void wgrad_versus(int unsynced, lt_layout layout, const char *what) {
    lt_backend *ga, *gb;
    NEED_GPU(ga, 1);
    gb = gpu_backend(1);
    assert_non_null(gb);
    g_layout = layout;
    run a, b;
    run_open(&a, ga, 0, LT_OPT_SGD, 1);
    run_open(&b, gb, 0, LT_OPT_SGD, 0);
    g_layout = LT_LAYOUT_NCHW;
    wgrad_set(&a, 1);
    if (unsynced) run_steps_unsynced(&a, LT_OPT_SGD, 0, STEPS);
    else run_steps(&a, LT_OPT_SGD, 0, STEPS);
    run_steps(&b, LT_OPT_SGD, 0, STEPS);
    lt_step_info ia;
    lt_step_get_info(a.s, &ia);
    print_message("%s: %ld captures, %ld graph steps, %ld eager, %ld failures\n", what, ia.captures, ia.graph_steps,
                  ia.eager_steps, ia.capture_failures);
    assert_int_equal(ia.capture_failures, 0);
    assert_int_equal(ia.captures, 1);
    assert_int_equal(ia.graph_steps, STEPS - 2);
    assert_runs_equal(&a, &b, what);
    run_close(&a);
    run_close(&b);
    lt_backend_free(ga);
    lt_backend_free(gb);
}

static void test_wgrad_stream(void **s) {
    (void)s;
    lt_backend *probe;
    NEED_GPU(probe, 1);
    lt_backend_free(probe);
    wgrad_versus(0, LT_LAYOUT_NCHW, "filter-gradient stream (graphs) vs one stream (eager)");
    wgrad_versus(1, LT_LAYOUT_NCHW, "filter-gradient stream, steps back to back, vs one stream");
    wgrad_versus(0, LT_LAYOUT_NHWC, "filter-gradient stream vs one stream, nhwc");

    /* switched between steps: off, on, off; graphs on against a run with
     * it off and no graphs (on a backend of its own) */
    lt_backend *ga = gpu_backend(1), *gb = gpu_backend(1);
    assert_non_null(ga);
    assert_non_null(gb);
    switched_runs(ga, gb, wgrad_switch, "filter-gradient stream switches, graph vs eager");
    lt_backend_free(ga);
    lt_backend_free(gb);
}

/* ---- checkpoints ------------------------------------------------------------------------------ */
static void test_ckpt_resume(void **s) {
    (void)s;
    lt_backend *gb;
    NEED_GPU(gb, 1);
    run a, b;
    run_open(&a, gb, 0, LT_OPT_SGD, 1);
    run_steps(&a, LT_OPT_SGD, 0, 3);
    const char *path = tmpfile_name("resume");
    char keep[64];
    snprintf(keep, sizeof keep, "%s", path);
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, keep), LT_OK);
    assert_int_equal(lt_model_save(a.m, w, "m/"), LT_OK);
    assert_int_equal(lt_optim_save(&a.o, w, "o/"), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    /* a fresh model (other initial values: another seed would do; the load
     * must replace everything) */
    run_open(&b, gb, 0, LT_OPT_SGD, 1);
    lt_ckpt *ck;
    assert_int_equal(lt_ckpt_read(&ck, keep), LT_OK);
    assert_int_equal(lt_model_load(b.m, ck, "m/"), LT_OK);
    assert_int_equal(lt_optim_load(&b.o, ck, "o/"), LT_OK);
    assert_int_equal(b.o.step, a.o.step);
    /* the same file into a cpu model: the values the cuda model holds */
    int lc;
    lt_model *mc = build(NULL, 0, &lc);
    assert_int_equal(lt_model_load(mc, ck, "m/"), LT_OK);
    for (int i = 0; i < lt_model_n_params(mc); i++) {
        lt_param_info p;
        lt_model_param_at(mc, i, &p);
        float *h = malloc(p.count * sizeof(float));
        assert_int_equal(lt_model_param_to_host(a.m, i, h, NULL), LT_OK);
        assert_memory_equal(h, p.w, p.count * sizeof(float));
        free(h);
    }
    lt_model_free(mc);
    lt_ckpt_free(ck);
    unlink(keep);
    /* both go on; the sums restart so they compare the resumed steps only */
    assert_int_equal(lt_step_reset_stats(a.s), LT_OK);
    run_steps(&a, LT_OPT_SGD, 3, STEPS);
    run_steps(&b, LT_OPT_SGD, 3, STEPS);
    assert_runs_equal(&a, &b, "resumed vs uninterrupted");
    run_close(&a);
    run_close(&b);
    lt_backend_free(gb);
}

/* ---- a capture that cannot hold the step -------------------------------------------------------- */
static void test_capture_fallback(void **s) {
    (void)s;
    lt_backend *gb;
    NEED_GPU(gb, 1);
    run a, b;
    run_open(&a, gb, 1, LT_OPT_SGD, 1);
    run_open(&b, gb, 1, LT_OPT_SGD, 0);
    run_steps(&a, LT_OPT_SGD, 0, STEPS);
    run_steps(&b, LT_OPT_SGD, 0, STEPS);
    lt_step_info ia;
    lt_step_get_info(a.s, &ia);
    print_message("fallback: %ld failures, %ld graph steps, notice: %s\n", ia.capture_failures, ia.graph_steps,
                  ia.notice);
    assert_int_equal(ia.capture_failures, 1);
    assert_int_equal(ia.graph_steps, 0);
    assert_int_equal(ia.eager_steps, STEPS);
    assert_int_equal(ia.graphs, 0);
    assert_non_null(strstr(ia.notice, "runs eagerly"));
    assert_runs_equal(&a, &b, "fallback vs eager");
    /* the stream is usable after the failed capture: one more step each */
    run_steps(&a, LT_OPT_SGD, 0, 1);
    run_close(&a);
    run_close(&b);
    lt_backend_free(gb);
}

int main(void) {
#ifdef LT_TEST_EMU_TWIN
    (void)test_metrics_on_cpu_paths;
#endif
    const struct CMUnitTest tests[] = {
#ifndef LT_TEST_EMU_TWIN   /* CPU-only: the nvcc build of this test runs it (Makefile, tests/cuemu) */
        cmocka_unit_test(test_metrics_on_cpu_paths),
#endif
        cmocka_unit_test(test_cuda_vs_cpu_sgd),
        cmocka_unit_test(test_cuda_vs_cpu_adam),
        cmocka_unit_test(test_graph_vs_eager),
        cmocka_unit_test(test_nhwc),
        cmocka_unit_test(test_layout_switch),
        cmocka_unit_test(test_deterministic_twice),
        cmocka_unit_test(test_uploads_unsynced),
        cmocka_unit_test(test_ckpt_resume),
        cmocka_unit_test(test_capture_fallback),
        cmocka_unit_test(test_wgrad_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
