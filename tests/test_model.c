/* test_model.c — models end to end: ResNet sizes, whole-model gradients,
 * deterministic training, checkpoint resume bit-for-bit, freezing, and a tiny
 * training run that must learn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradcheck.h"
#include "lt.h"
#include "lt_conv_fast.h"
#include "lt_model_impl.h"   /* white-box: the model's structs */

static size_t n_trainable(const lt_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->n_params; i++) n += m->params[i].count;
    return n;
}

/* b NULL: the process default backend (lt_model_create) */
static lt_model *build_on(const char *arch, lt_shape in, int classes, lt_backend *b) {
    lt_model *m = NULL;
    assert_int_equal(b ? lt_model_create_on(&m, in, b) : lt_model_create(&m, in), LT_OK);
    int feat = lt_resnet_backbone(m, arch);
    assert_true(feat > 0);
    assert_true(lt_add_linear(m, "logits", "head", feat, classes, 1) > 0);
    assert_int_equal(lt_model_finalize(m, 0), LT_OK);
    return m;
}
static lt_model *build(const char *arch, lt_shape in, int classes) { return build_on(arch, in, classes, NULL); }

/* Parameter counts against torchvision / the CIFAR ResNet paper figures. */
static void test_resnet_param_counts(void **st) {
    (void)st;
    struct { const char *arch; int c, hw, classes; size_t params; double macs; } cases[] = {
        {"resnet32_cifar", 3, 32, 10, 464154, 68862592.0},
        {"resnet8_cifar", 3, 32, 10, 75290, 0},
        {"resnet8_cifar", 1, 28, 10, 75002, 0},
        {"resnet20_cifar", 3, 32, 10, 269722, 0},
        {"resnet56_cifar", 3, 32, 10, 853018, 0},
        {"resnet18", 3, 224, 1000, 11689512, 0},
        {"resnet34", 3, 224, 1000, 21797672, 0},
        {"resnet50", 3, 224, 1000, 25557032, 0},
        {"resnext50_32x4d", 3, 224, 1000, 25028904, 0},
        {"resnet101", 3, 224, 1000, 44549160, 0},
        {"resnet152", 3, 224, 1000, 60192808, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lt_model *m = build(cases[i].arch, (lt_shape){1, cases[i].c, cases[i].hw, cases[i].hw}, cases[i].classes);
        printf("note: %s %dx%dx%d: %zu parameters, %.0f MACs/img\n", cases[i].arch, cases[i].c, cases[i].hw,
               cases[i].hw, n_trainable(m), lt_model_macs(m));
        assert_int_equal(n_trainable(m), cases[i].params);
        if (cases[i].macs > 0) assert_true(fabs(lt_model_macs(m) - cases[i].macs) < 0.5);
        int feat = lt_model_find(m, "feat");
        assert_true(feat > 0);
        assert_int_equal(m->nodes[feat].shape.h, 1);
        lt_model_free(m);
    }
    /* ResNet-10 has one block per stage: feature width 512 */
    lt_model *m = build("resnet10", (lt_shape){1, 3, 64, 64}, 10);
    assert_int_equal(m->nodes[lt_model_find(m, "feat")].shape.c, 512);
    lt_model_free(m);
    lt_model *bad = NULL;
    assert_int_equal(lt_model_create(&bad, (lt_shape){1, 3, 32, 32}), LT_OK);
    assert_true(lt_resnet_backbone(bad, "resnet9000") < 0);
    assert_non_null(strstr(lt_errmsg(), "resnet9000"));
    lt_model_free(bad);
}

/* ---- whole-model gradient check through residual blocks, BN (train), option A ---- */
typedef struct {
    lt_model *m;
    float *x;
    int32_t *y;
    int N, logits;
} gctx;

static double model_loss(void *p) {
    gctx *c = p;
    lt_model_forward(c->m, c->x, c->N, 1);
    double loss;
    int C = c->m->nodes[c->logits].shape.c;
    lt_softmax_ce(c->N, C, lt_model_out(c->m, c->logits), c->y, NULL, NULL, &loss, NULL);
    return loss;
}

static void test_model_gradcheck(void **st) {
    (void)st;
    const int N = 4, C = 5;
    lt_model *m = build("resnet8_cifar", (lt_shape){1, 3, 8, 8}, C);
    assert_int_equal(lt_model_set_batch(m, N), LT_OK);
    gctx c = {m, malloc(sizeof(float) * N * 3 * 64), malloc(sizeof(int32_t) * N), N, lt_model_find(m, "logits")};
    gc_fill(c.x, (size_t)N * 3 * 64, 7, -1, 1);
    for (int i = 0; i < N; i++) c.y[i] = i % C;
    /* running statistics change on every train forward; keep a copy so the
     * finite differences see the same model (they do not affect train-mode output) */
    lt_model_zero_grad(m);
    model_loss(&c);
    double loss;
    assert_int_equal(lt_softmax_ce(N, C, lt_model_out(m, c.logits), c.y, NULL, NULL, &loss, lt_model_dout(m, c.logits)), LT_OK);
    assert_int_equal(lt_model_backward(m, N, &c.logits, 1), LT_OK);
    float *g = malloc(sizeof(float) * m->n_w);
    memcpy(g, m->g, sizeof(float) * m->n_w);
    const char *names[] = {"conv1.weight", "layer1.0.conv2.weight", "layer2.0.bn1.weight", "layer3.0.conv1.weight",
                           "layer3.0.bn2.bias", "logits.weight", "logits.bias"};
    gc_opts o = {1e-3, 3e-2, 5e-4, 24};
    int fails = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        lt_param *p = lt_model_param(m, names[k]);
        assert_non_null(p);
        fails += gc_check(names[k], model_loss, &c, m->w + p->off, g + p->off, p->count, &o);
    }
    /* ReLU kinks can make a rare finite difference straddle a non-smooth point. */
    assert_true(fails <= 2);
    free(g); free(c.x); free(c.y);
    lt_model_free(m);
}

/* The first writer of each activation gradient overwrites it instead of the
 * engine zeroing every dy first. Check against the zero-everything mode on
 * models with identity and option-A blocks, a stride-2 conv (ResNet-10's
 * projection), a tap the caller fills (features, as decoupled methods do)
 * and a stale, garbage-filled activation memory: the gradients
 * must be equal (== per element, so +0 and -0 count as equal). */
static void run_grads(lt_model *m, int N, const float *x, const int32_t *y, int logits, int feat, float *out) {
    lt_model_forward(m, x, N, 1);
    double loss;
    const int C = m->nodes[logits].shape.c;
    lt_model_zero_grad(m);
    /* garbage in every activation gradient: only zeroing or overwriting can
     * clean it */
    for (int i = 1; i < m->n_nodes; i++)
        if (m->nodes[i].need_dy && i != logits && i != feat)
            for (size_t k = 0; k < (size_t)N * lt_shape_count(m->nodes[i].shape); k++) m->nodes[i].dy[k] = NAN;
    assert_int_equal(lt_softmax_ce(N, C, lt_model_out(m, logits), y, NULL, NULL, &loss, lt_model_dout(m, logits)),
                     LT_OK);
    int taps[2] = {logits, feat};
    if (feat > 0) {
        float *df = lt_model_dout(m, feat);
        for (size_t k = 0; k < (size_t)N * lt_shape_count(m->nodes[feat].shape); k++) df[k] = 0.01f * (float)(k % 7);
    }
    assert_int_equal(lt_model_backward(m, N, taps, feat > 0 ? 2 : 1), LT_OK);
    memcpy(out, m->g, sizeof(float) * m->n_w);
}

static void test_first_writer_overwrites(void **st) {
    (void)st;
    const char *arch[] = {"resnet8_cifar", "resnet10", "resnet8_cifar"};
    const lt_shape in[] = {{1, 3, 8, 8}, {1, 3, 32, 32}, {1, 1, 12, 12}};
    for (int a = 0; a < 3; a++) {
        const int N = 3, C = 4;
        lt_model *m = build(arch[a], in[a], C);
        assert_int_equal(lt_model_set_batch(m, N), LT_OK);
        const int logits = lt_model_find(m, "logits");
        const int feat = a == 2 ? m->nodes[logits].in[0] : -1;   /* the feature tap */
        const size_t nx = (size_t)N * lt_shape_count(in[a]);
        float *x = malloc(sizeof(float) * nx), *g0 = malloc(sizeof(float) * m->n_w),
              *g1 = malloc(sizeof(float) * m->n_w);
        int32_t y[3] = {0, 3, 1};
        gc_fill(x, nx, 11 + (unsigned)a, -1, 1);
        float *b0 = malloc(sizeof(float) * m->n_b);
        memcpy(b0, m->buf, sizeof(float) * m->n_b);
        m->zero_all_dy = 1;
        run_grads(m, N, x, y, logits, feat, g0);
        memcpy(m->buf, b0, sizeof(float) * m->n_b);   /* same running stats both times */
        m->zero_all_dy = 0;
        run_grads(m, N, x, y, logits, feat, g1);
        size_t nz = 0;
        for (size_t k = 0; k < m->n_w; k++) {
            if (!(g0[k] == g1[k])) fail_msg("%s: gradient %zu differs: %g vs %g", arch[a], k, g0[k], g1[k]);
            nz += g0[k] != 0.0f;
        }
        assert_true(nz > m->n_w / 4);   /* gradients were actually computed */
        free(x); free(g0); free(g1); free(b0);
        lt_model_free(m);
    }
}

/* Inference fuses conv -> BN -> ReLU and conv -> BN -> residual add ->
 * ReLU; the outputs (features and logits) must equal the unfused forward
 * bit for bit, on both convolution paths (Winograd by the rule, forced on
 * every 3x3 stride-1 layer, and off), with non-trivial BN statistics, for
 * basic blocks (option A and projection shortcuts, a max-pool stem) and
 * bottlenecks. ResNet-8 at 12x12 and 28x28: the latter's stages (28, 14, 7)
 * run the F(4x4) grid, dense 4x4-tile and quad stores, and with Winograd
 * off the direct path's short-row stores, each with the residual add. */
static void test_inference_fusion_bit_identical(void **st) {
    (void)st;
    const char *arch[] = {"resnet8_cifar", "resnet8_cifar", "resnet10", "resnet50"};
    const lt_shape in[] = {{1, 3, 12, 12}, {1, 1, 28, 28}, {1, 3, 32, 32}, {1, 3, 32, 32}};
    /* fast path (Winograd by the rule, forced, off), reference: each a
     * backend the models are built on */
    static const lt_conv_path paths[] = {LT_CONV_PATH_AUTO, LT_CONV_PATH_WINO, LT_CONV_PATH_DIRECT, LT_CONV_PATH_REF};
    for (int path = 0; path < 4; path++) {
        lt_cpu_opts o;
        lt_cpu_opts_default(&o);
        o.conv = paths[path];
        lt_backend *be;
        assert_int_equal(lt_backend_cpu_create(&o, &be), LT_OK);
        for (int a = 0; a < 4; a++) {
            const int N = 2, C = 5;
            lt_model *m = build_on(arch[a], in[a], C, be);
            assert_int_equal(lt_model_set_batch(m, N), LT_OK);
            if (a <= 1) {
                /* ResNet-8 option A: layer1.0 adds its input (fuse 3), the
                 * downsampling blocks their shortcut node (fuse 4) */
                int f3 = 0, f4 = 0;
                for (int i = 1; i < m->n_nodes; i++) { f3 += m->nodes[i].fuse == 3; f4 += m->nodes[i].fuse == 4; }
                assert_int_equal(f3, 1);
                assert_int_equal(f4, 2);
            }
            gc_fill(m->w, m->n_w, 21 + (unsigned)a, -0.3f, 0.3f);
            gc_fill(m->buf, m->n_b, 31 + (unsigned)a, 0.5f, 1.5f);   /* running mean and var */
            const size_t nx = (size_t)N * lt_shape_count(in[a]);
            float *x = malloc(sizeof(float) * nx);
            gc_fill(x, nx, 41 + (unsigned)a, -1, 1);
            const int logits = lt_model_find(m, "logits"), feat = m->nodes[logits].in[0];
            const size_t nl = (size_t)N * C, nf = (size_t)N * lt_shape_count(m->nodes[feat].shape);
            float *l0 = malloc(sizeof(float) * nl), *f0 = malloc(sizeof(float) * nf);
            m->no_fuse = 1;
            assert_int_equal(lt_model_forward(m, x, N, 0), LT_OK);
            memcpy(l0, lt_model_out(m, logits), sizeof(float) * nl);
            memcpy(f0, lt_model_out(m, feat), sizeof(float) * nf);
            m->no_fuse = 0;
            /* the stem conv feeds only its BN: fused, its own output stays unwritten */
            const int c1 = lt_model_find(m, "conv1");
            assert_true(c1 > 0);
            float *y1 = lt_model_out(m, c1);
            y1[0] = NAN;
            /* fused, an option-A shortcut writes only its data channels and
             * the epilogue adds only those: NaN in its zero channels must not
             * reach the output */
            int nsc = 0;
            for (int i = 1; i < m->n_nodes; i++) {
                if (strcmp(m->nodes[i].ops->type, "shortcut_a")) continue;
                const size_t ns = (size_t)N * lt_shape_count(m->nodes[i].shape);
                for (size_t k = 0; k < ns; k++) m->nodes[i].y[k] = NAN;
                nsc++;
            }
            assert_int_equal(nsc, a <= 1 ? 2 : 0);
            assert_int_equal(lt_model_forward(m, x, N, 0), LT_OK);
            assert_true(isnan(y1[0]));
            assert_memory_equal(l0, lt_model_out(m, logits), sizeof(float) * nl);
            assert_memory_equal(f0, lt_model_out(m, feat), sizeof(float) * nf);
            double s = 0;
            for (size_t k = 0; k < nl; k++) s += fabs(l0[k]);
            assert_true(s > 0);
            free(x); free(l0); free(f0);
            lt_model_free(m);
        }
        lt_backend_free(be);
    }
}

/* A backward from node t alone (d loss / d out = a fixed pattern), its
 * gradients into out. */
static void bn_alone(lt_model *m, int N, int t, float *out) {
    lt_model_zero_grad(m);
    float *d = lt_model_dout(m, t);
    for (size_t k = 0; k < (size_t)N * lt_shape_count(m->nodes[t].shape); k++) d[k] = 0.01f * (float)(k % 7) - 0.03f;
    assert_int_equal(lt_model_backward(m, N, &t, 1), LT_OK);
    size_t nz = 0;   /* non-zero gradients, each a number: NaN != 0 would count */
    for (size_t k = 0; k < m->n_w; k++) {
        if (!isfinite(m->g[k])) fail_msg("BN-alone gradient %zu is %g", k, m->g[k]);
        nz += m->g[k] != 0.0f;
    }
    assert_true(nz > 0);
    memcpy(out, m->g, sizeof(float) * m->n_w);
}

/* Training fuses BN -> in-place ReLU into one pass each way; gradients,
 * outputs and running statistics must equal the unfused ones (no_fuse) bit
 * for bit: basic blocks, projection shortcuts and bottlenecks; a caller tap
 * on a fused BN (its ReLU must then accumulate, so the pair runs unfused);
 * and a backbone in eval mode (BN on running statistics: not fused). In
 * plain mode also a backward from a fused BN alone after the full one. */
static void test_training_fusion_bit_identical(void **st) {
    (void)st;
    const char *arch[] = {"resnet8_cifar", "resnet10", "resnet50"};
    const lt_shape in[] = {{1, 1, 12, 12}, {1, 3, 32, 32}, {1, 3, 32, 32}};
    for (int a = 0; a < 3; a++)
        for (int mode = 0; mode < 3; mode++) {   /* 0 plain, 1 BN tap, 2 eval-mode backbone */
            const int N = 3, C = 4;
            lt_model *m = build(arch[a], in[a], C);
            assert_int_equal(lt_model_set_batch(m, N), LT_OK);
            /* running means and variances small enough that eval-mode ReLUs stay alive */
            gc_fill(m->buf, m->n_b, 51 + (unsigned)a, 0.05f, 0.3f);
            if (mode == 2) assert_int_equal(lt_model_set_eval(m, "backbone", 1), LT_OK);
            const int logits = lt_model_find(m, "logits");
            const int tap = mode == 1 ? lt_model_find(m, "layer1.0.bn1") : -1;
            if (mode == 1) assert_true(tap > 0 && m->nodes[tap].fuse_train);
            const size_t nx = (size_t)N * lt_shape_count(in[a]), nl = (size_t)N * C;
            float *x = malloc(sizeof(float) * nx), *g0 = malloc(sizeof(float) * m->n_w),
                  *g1 = malloc(sizeof(float) * m->n_w), *b0 = malloc(sizeof(float) * m->n_b),
                  *b1 = malloc(sizeof(float) * m->n_b), *l0 = malloc(sizeof(float) * nl);
            int32_t y[3] = {0, 3, 1};
            gc_fill(x, nx, 61 + (unsigned)a, -1, 1);
            memcpy(b0, m->buf, sizeof(float) * m->n_b);
            m->no_fuse = 1;
            run_grads(m, N, x, y, logits, tap, g0);
            memcpy(l0, lt_model_out(m, logits), sizeof(float) * nl);
            memcpy(b1, m->buf, sizeof(float) * m->n_b);
            /* plain mode, then a backward from a fused BN alone: its ReLU
             * lies beyond the pass's last node with the earlier pass's
             * "overwrites" flag still set, so the BN runs its own backward */
            const int bn = mode == 0 ? lt_model_find(m, "layer1.0.bn1") : -1;
            float *h0 = NULL, *h1 = NULL;
            if (mode == 0) {
                h0 = malloc(sizeof(float) * m->n_w);
                h1 = malloc(sizeof(float) * m->n_w);
                bn_alone(m, N, bn, h0);
            }
            memcpy(m->buf, b0, sizeof(float) * m->n_b);
            m->no_fuse = 0;
            run_grads(m, N, x, y, logits, tap, g1);
            if (mode == 0) {
                assert_true(bn > 0 && m->nodes[bn].fused_now);
                bn_alone(m, N, bn, h1);
                assert_memory_equal(h0, h1, sizeof(float) * m->n_w);
                free(h0);
                free(h1);
            }
            int fused = 0;
            for (int i = 1; i < m->n_nodes; i++) fused += m->nodes[i].fused_now;
            if (mode == 2) assert_int_equal(fused, 0);
            else assert_true(fused >= 2);
            assert_memory_equal(g0, g1, sizeof(float) * m->n_w);
            assert_memory_equal(b1, m->buf, sizeof(float) * m->n_b);
            assert_memory_equal(l0, lt_model_out(m, logits), sizeof(float) * nl);
            /* the byte comparisons above hold for NaNs in the same places:
             * every gradient must be a number, and NaN != 0 must not count */
            size_t nz = 0;
            for (size_t k = 0; k < m->n_w; k++) {
                if (!isfinite(g0[k])) fail_msg("%s mode %d: gradient %zu is %g", arch[a], mode, k, g0[k]);
                nz += g0[k] != 0.0f;
            }
            printf("note: %s mode %d: %d BN+ReLU pairs fused, %zu of %zu gradients non-zero\n", arch[a], mode, fused,
                   nz, m->n_w);
            /* gradients were computed (at 1x1 spatial size, with eval-mode BN
             * and 3 images, many of ResNet-10's last-stage ReLUs are off) */
            assert_true(nz > m->n_w / 8);
            free(x); free(g0); free(g1); free(b0); free(b1); free(l0);
            lt_model_free(m);
        }
}

/* ---- a training loop on synthetic separable data --------------------------------- */
/* Class k lights up a different 3x3 patch (plus noise), so a CNN can separate it. */
static void make_data(int n, int C, int hw, unsigned seed, float *x, int32_t *y) {
    gc_fill(x, (size_t)n * hw * hw, seed, -0.3f, 0.3f);
    for (int i = 0; i < n; i++) {
        int k = (int)((i * 7 + seed) % C);
        y[i] = k;
        int r0 = (k / 2) * (hw / 2) + 1, c0 = (k % 2) * (hw / 2) + 1;
        for (int r = 0; r < 3; r++)
            for (int q = 0; q < 3; q++) x[(size_t)i * hw * hw + (r0 + r) * hw + c0 + q] += 1.5f;
    }
}

typedef struct {
    lt_model *m;
    lt_optim opt;
    float *x;
    int32_t *y;
    int N, logits;
} trainer;

static void trainer_init(trainer *t, uint64_t seed, int N) {
    memset(t, 0, sizeof *t);
    assert_int_equal(lt_model_classifier(&t->m, "resnet8_cifar", (lt_shape){1, 1, 12, 12}, 4, N, seed), LT_OK);
    assert_int_equal(lt_optim_init(&t->opt, t->m, LT_OPT_SGD, 0.9f, 5e-4f, 0), LT_OK);
    t->N = N;
    t->logits = lt_model_find(t->m, "logits");
    t->x = malloc(sizeof(float) * N * 144);
    t->y = malloc(sizeof(int32_t) * N);
}

static double trainer_step(trainer *t, long it) {
    make_data(t->N, 4, 12, (unsigned)(it * 31 + 5), t->x, t->y);
    assert_int_equal(lt_model_forward(t->m, t->x, t->N, 1), LT_OK);
    double loss;
    assert_int_equal(lt_softmax_ce(t->N, 4, lt_model_out(t->m, t->logits), t->y, NULL, NULL, &loss,
                                   lt_model_dout(t->m, t->logits)), LT_OK);
    lt_model_zero_grad(t->m);
    assert_int_equal(lt_model_backward(t->m, t->N, &t->logits, 1), LT_OK);
    assert_int_equal(lt_optim_step(&t->opt, t->m, 0.05f), LT_OK);
    return loss;
}

static void trainer_free(trainer *t) {
    lt_optim_free(&t->opt);
    lt_model_free(t->m);
    free(t->x);
    free(t->y);
}

static void test_training_deterministic(void **st) {
    (void)st;
    trainer a, b;
    trainer_init(&a, 3, 16);
    trainer_init(&b, 3, 16);
    assert_memory_equal(a.m->w, b.m->w, a.m->n_w * sizeof(float));
    for (long it = 0; it < 5; it++) {
        double la = trainer_step(&a, it), lb = trainer_step(&b, it);
        assert_true(la == lb);
    }
    assert_memory_equal(a.m->w, b.m->w, a.m->n_w * sizeof(float));
    assert_memory_equal(a.m->buf, b.m->buf, a.m->n_b * sizeof(float));
    /* a different seed gives a different model */
    trainer c;
    trainer_init(&c, 4, 16);
    assert_memory_not_equal(a.m->w, c.m->w, a.m->n_w * sizeof(float));
    trainer_free(&a); trainer_free(&b); trainer_free(&c);
}

static void test_checkpoint_resume_bit_identical(void **st) {
    (void)st;
    char dir[] = "/tmp/lt_model_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/step.ckpt", dir);

    trainer a;                       /* uninterrupted: 6 steps */
    trainer_init(&a, 11, 8);
    for (long it = 0; it < 6; it++) trainer_step(&a, it);

    trainer b;                       /* 3 steps, checkpoint, "crash" */
    trainer_init(&b, 11, 8);
    for (long it = 0; it < 3; it++) trainer_step(&b, it);
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, path), LT_OK);
    assert_int_equal(lt_model_save(b.m, w, ""), LT_OK);
    assert_int_equal(lt_optim_save(&b.opt, w, ""), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    trainer_free(&b);

    trainer r;                       /* resume from a model built with another seed */
    trainer_init(&r, 999, 8);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, path), LT_OK);
    assert_int_equal(lt_model_load(r.m, c, ""), LT_OK);
    assert_int_equal(lt_optim_load(&r.opt, c, ""), LT_OK);
    lt_ckpt_free(c);
    for (long it = 3; it < 6; it++) trainer_step(&r, it);
    assert_memory_equal(a.m->w, r.m->w, a.m->n_w * sizeof(float));
    assert_memory_equal(a.m->buf, r.m->buf, a.m->n_b * sizeof(float));
    assert_memory_equal(a.opt.s1, r.opt.s1, a.opt.n * sizeof(float));

    /* a step count a corrupt (checksum-valid) file gives is refused when
     * read, not left for lt_adam_step's assert to abort on */
    static const long bad_steps[] = {-1, LONG_MIN, LONG_MAX};
    char bad[300];
    snprintf(bad, sizeof bad, "%s/bad_step.ckpt", dir);
    for (size_t k = 0; k < sizeof bad_steps / sizeof *bad_steps; k++) {
        const long keep = a.opt.step;
        a.opt.step = bad_steps[k];
        assert_int_equal(lt_ckpt_writer_open(&w, bad), LT_OK);
        assert_int_equal(lt_optim_save(&a.opt, w, ""), LT_OK);
        assert_int_equal(lt_ckpt_commit(w), LT_OK);
        a.opt.step = keep;
        assert_int_equal(lt_ckpt_read(&c, bad), LT_OK);
        assert_int_equal(lt_optim_load(&r.opt, c, ""), LT_EDATA);
        assert_non_null(strstr(lt_errmsg(), "optim/header: step"));
        lt_ckpt_free(c);
    }
    unlink(bad);

    /* a checkpoint of another architecture is refused by tensor name */
    lt_model *other;
    assert_int_equal(lt_model_classifier(&other, "resnet20_cifar", (lt_shape){1, 1, 12, 12}, 4, 2, 0), LT_OK);
    assert_int_equal(lt_ckpt_read(&c, path), LT_OK);
    assert_int_not_equal(lt_model_load(other, c, ""), LT_OK);
    assert_non_null(strstr(lt_errmsg(), "layer1.1"));
    lt_ckpt_free(c);
    lt_model_free(other);
    trainer_free(&a); trainer_free(&r);
    unlink(path);
    rmdir(dir);
}

/* The buffers alone (a teacher's moving BN statistics): "<prefix>b/<name>"
 * records and no parameter records; loaded into a model with other
 * parameters, the buffers come back and the parameters stay. */
static void test_checkpoint_buffers_only(void **st) {
    (void)st;
    char dir[] = "/tmp/lt_model_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/bufs.ckpt", dir);
    trainer a;
    trainer_init(&a, 11, 8);
    for (long it = 0; it < 3; it++) trainer_step(&a, it);   /* statistics moved */
    lt_ckpt_writer *w;
    assert_int_equal(lt_ckpt_writer_open(&w, path), LT_OK);
    assert_int_equal(lt_model_save_buffers(a.m, w, "t/"), LT_OK);
    assert_int_equal(lt_ckpt_commit(w), LT_OK);
    lt_ckpt *c;
    assert_int_equal(lt_ckpt_read(&c, path), LT_OK);
    assert_int_equal(lt_ckpt_count(c), lt_model_n_buffers(a.m));
    for (int i = 0; i < lt_ckpt_count(c); i++) assert_int_equal(strncmp(lt_ckpt_name(c, i), "t/b/", 4), 0);
    trainer r;
    trainer_init(&r, 999, 8);
    float *w0 = malloc(sizeof(float) * r.m->n_w);
    assert_non_null(w0);
    memcpy(w0, r.m->w, sizeof(float) * r.m->n_w);
    assert_memory_not_equal(a.m->buf, r.m->buf, a.m->n_b * sizeof(float));
    assert_int_equal(lt_model_load_buffers(r.m, c, "t/"), LT_OK);
    assert_memory_equal(a.m->buf, r.m->buf, a.m->n_b * sizeof(float));
    assert_memory_equal(w0, r.m->w, r.m->n_w * sizeof(float));
    /* another prefix has no records: refused naming the buffer */
    assert_int_not_equal(lt_model_load_buffers(r.m, c, "u/"), LT_OK);
    assert_non_null(strstr(lt_errmsg(), "loading buffer"));
    lt_ckpt_free(c);
    free(w0);
    trainer_free(&a);
    trainer_free(&r);
    unlink(path);
    rmdir(dir);
}

static void test_freeze_and_eval_mode(void **st) {
    (void)st;
    trainer t;
    trainer_init(&t, 5, 8);
    assert_int_equal(lt_model_freeze(t.m, "backbone", 1), LT_OK);
    assert_int_equal(lt_model_set_eval(t.m, "backbone", 1), LT_OK);
    float *w0 = malloc(sizeof(float) * t.m->n_w), *b0 = malloc(sizeof(float) * t.m->n_b);
    memcpy(w0, t.m->w, sizeof(float) * t.m->n_w);
    memcpy(b0, t.m->buf, sizeof(float) * t.m->n_b);
    for (long it = 0; it < 3; it++) trainer_step(&t, it);
    lt_param *conv = lt_model_param(t.m, "conv1.weight"), *head = lt_model_param(t.m, "logits.weight");
    assert_memory_equal(w0 + conv->off, t.m->w + conv->off, conv->count * sizeof(float));
    assert_memory_not_equal(w0 + head->off, t.m->w + head->off, head->count * sizeof(float));
    assert_memory_equal(b0, t.m->buf, sizeof(float) * t.m->n_b);  /* eval-mode BN: no running-stat update */
    /* the frozen backbone needs no gradient at all */
    assert_int_equal(t.m->nodes[lt_model_find(t.m, "conv1")].need_dy, 0);
    /* re-initialising the head uses U(+-1/sqrt(64)) */
    assert_int_equal(lt_model_reinit(t.m, "head", 77), LT_OK);
    for (size_t i = 0; i < head->count; i++) assert_true(fabsf(t.m->w[head->off + i]) <= 0.125f);
    assert_int_not_equal(lt_model_freeze(t.m, "no-such-group", 1), LT_OK);
    free(w0); free(b0);
    trainer_free(&t);
}

/* lt_model_init_params: finalize's own rule. After training steps (weights
 * and BN buffers moved), init_params with the model's seed gives the fresh
 * model back bit for bit; on one group it touches only that group; another
 * seed gives other weights, Kaiming-normal (not reinit's uniform bound). */
static void test_init_params(void **st) {
    (void)st;
    trainer t;
    trainer_init(&t, 5, 8);
    float *w0 = malloc(sizeof(float) * t.m->n_w), *b0 = malloc(sizeof(float) * t.m->n_b);
    memcpy(w0, t.m->w, sizeof(float) * t.m->n_w);
    memcpy(b0, t.m->buf, sizeof(float) * t.m->n_b);
    for (long it = 0; it < 3; it++) trainer_step(&t, it);
    lt_param *conv = lt_model_param(t.m, "conv1.weight"), *head = lt_model_param(t.m, "logits.weight");
    assert_memory_not_equal(w0 + conv->off, t.m->w + conv->off, conv->count * sizeof(float));
    assert_memory_not_equal(b0, t.m->buf, sizeof(float) * t.m->n_b);
    float *w1 = malloc(sizeof(float) * t.m->n_w);
    memcpy(w1, t.m->w, sizeof(float) * t.m->n_w);
    assert_int_equal(lt_model_init_params(t.m, "head", 5), LT_OK);
    assert_memory_equal(w0 + head->off, t.m->w + head->off, head->count * sizeof(float));
    assert_memory_equal(w1 + conv->off, t.m->w + conv->off, conv->count * sizeof(float));
    assert_int_equal(lt_model_init_params(t.m, NULL, 5), LT_OK);
    assert_memory_equal(w0, t.m->w, sizeof(float) * t.m->n_w);
    assert_memory_equal(b0, t.m->buf, sizeof(float) * t.m->n_b);
    assert_int_equal(lt_model_init_params(t.m, NULL, 6), LT_OK);
    assert_memory_not_equal(w0 + conv->off, t.m->w + conv->off, conv->count * sizeof(float));
    int beyond = 0;   /* a Kaiming draw of sd sqrt(2/64) passes the uniform bound 1/8 about half the time */
    for (size_t i = 0; i < head->count; i++) beyond += fabsf(t.m->w[head->off + i]) > 0.125f;
    assert_true(beyond > 0);
    assert_int_not_equal(lt_model_init_params(t.m, "no-such-group", 5), LT_OK);
    free(w0); free(b0); free(w1);
    trainer_free(&t);
}

static void test_tiny_training_learns(void **st) {
    (void)st;
    trainer t;
    trainer_init(&t, 1, 32);
    double first = 0, last = 0;
    for (long it = 0; it < 60; it++) {
        double l = trainer_step(&t, it);
        if (it < 5) first += l / 5;
        if (it >= 55) last += l / 5;
    }
    /* held-out data, eval mode (running statistics) */
    make_data(32, 4, 12, 123457, t.x, t.y);
    assert_int_equal(lt_model_forward(t.m, t.x, 32, 0), LT_OK);
    const float *z = lt_model_out(t.m, t.logits);
    int correct = 0;
    for (int i = 0; i < 32; i++) {
        int best = 0;
        for (int k = 1; k < 4; k++) if (z[i * 4 + k] > z[i * 4 + best]) best = k;
        correct += best == t.y[i];
    }
    printf("note: tiny training: loss %.3f -> %.3f, held-out accuracy %d/32 (chance 8/32)\n", first, last, correct);
    assert_true(last < first * 0.5);
    assert_true(correct >= 28);
    trainer_free(&t);
}

static void test_bad_model_calls(void **st) {
    (void)st;
    lt_model *m;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, 3, 8, 8}), LT_OK);
    assert_true(lt_add_conv(m, "c", "backbone", 0, 6, 3, 1, 1, 4, 0) < 0); /* 3 not divisible by 4 groups */
    int c = lt_add_conv(m, "c", "backbone", 0, 4, 3, 1, 1, 1, 0);
    assert_true(c > 0);
    assert_true(lt_add_conv(m, "c", "backbone", c, 4, 3, 1, 1, 1, 0) < 0); /* duplicate name */
    int p = lt_add_maxpool(m, "p", "backbone", c, 2, 2, 0);
    assert_true(lt_add_sum(m, "bad", "backbone", c, p) < 0);               /* shape mismatch */
    assert_true(lt_model_forward(m, NULL, 1, 1) != LT_OK);                 /* before set_batch */
    assert_int_equal(lt_model_finalize(m, 0), LT_OK);
    assert_true(lt_add_relu(m, "late", "backbone", c) < 0);                /* after finalize */
    lt_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet_param_counts),
        cmocka_unit_test(test_model_gradcheck),
        cmocka_unit_test(test_first_writer_overwrites),
        cmocka_unit_test(test_inference_fusion_bit_identical),
        cmocka_unit_test(test_training_fusion_bit_identical),
        cmocka_unit_test(test_training_deterministic),
        cmocka_unit_test(test_checkpoint_resume_bit_identical),
        cmocka_unit_test(test_checkpoint_buffers_only),
        cmocka_unit_test(test_freeze_and_eval_mode),
        cmocka_unit_test(test_init_params),
        cmocka_unit_test(test_tiny_training_learns),
        cmocka_unit_test(test_bad_model_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
