/* test_method_mbj.c — Memory-based Jitter (methods/mbj).
 *
 * White-box (the method source is included with its entry point renamed)
 * and through the runner:
 *   - admission frequencies against p_c = min(1, (n_min/n_c)^gamma) over
 *     many draws, for gamma 1 and 0.5; a class without images is never
 *     admitted;
 *   - the memory's capacity (capacity_epochs x expected inflow) and FIFO
 *     order;
 *   - the memory term through the loss hook: its value, its gradient on the
 *     classifier by finite differences, and exactly zero gradient on every
 *     backbone parameter; the concatenation mix;
 *   (the resume test runs through the runner: test_method_mbj_run.c, a
 *   binary of its own, since a forked run must not follow OpenMP work in
 *   the same process);
 *   - defaults.json equals the defaults. */
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

#include "gradcheck.h"
#include "lt.h"
#include "lt_method.h"
#include "lt_io.h"
#include "lt_run_internal.h"

#define lt_method_mbj mbj_entry_under_test
#include "../methods/mbj/method.c"
#undef lt_method_mbj
const lt_method *lt_method_mbj(void);

/* ---- admission --------------------------------------------------------------------- */

static void admission(double gamma) {
    enum { C = 4, D = 2, B = 50 };
    const long counts[C] = {400, 100, 25, 0};
    double p[C], inflow;
    long n_min;
    assert_int_equal(mbj_probs(C, counts, gamma, p, &n_min, &inflow), LT_OK);
    assert_int_equal(n_min, 25);
    for (int c = 0; c < 3; c++) assert_float_equal(p[c], fmin(1.0, pow(25.0 / counts[c], gamma)), 1e-12);
    assert_true(p[3] == 0.0);
    mbj_memory m;
    assert_int_equal(mbj_mem_init(&m, 1 << 22, D), LT_OK);
    /* every class offered equally often, class 3 too (a label the memory
     * must never take) */
    float feat[B * D];
    int32_t y[B];
    for (int i = 0; i < B; i++) {
        y[i] = i % C;
        feat[2 * i] = (float)i;
        feat[2 * i + 1] = 0;
    }
    const long R = 8000;
    long admitted[C] = {0}, offered[C] = {0};
    for (long it = 0; it < R; it++) {
        long before = m.count;
        long k = mbj_admit(&m, p, B, D, feat, y, 17, it);
        assert_int_equal(m.count - before, k);
        for (int i = 0; i < B; i++) offered[y[i]]++;
    }
    for (long r = 0; r < m.count; r++) admitted[m.label[r]]++;
    for (int c = 0; c < C; c++) {
        const double f = (double)admitted[c] / (double)offered[c];
        const double sd = sqrt(p[c] * (1 - p[c]) / (double)offered[c]);
        print_message("note: gamma %.1f class %d: admitted %.4f of offered, p_c %.4f\n", gamma, c, f, p[c]);
        assert_true(fabs(f - p[c]) <= 4 * sd + 1e-12);
    }
    assert_int_equal(admitted[3], 0);
    /* the same iteration admits the same rows (a resumed run redraws it) */
    mbj_memory a, b;
    assert_int_equal(mbj_mem_init(&a, 100, D), LT_OK);
    assert_int_equal(mbj_mem_init(&b, 100, D), LT_OK);
    mbj_admit(&a, p, B, D, feat, y, 17, 42);
    mbj_admit(&b, p, B, D, feat, y, 17, 42);
    assert_int_equal(a.count, b.count);
    assert_memory_equal(a.feat, b.feat, (size_t)a.count * D * sizeof(float));
    mbj_mem_free(&a);
    mbj_mem_free(&b);
    mbj_mem_free(&m);
}

static void test_admission_frequencies(void **unused) {
    (void)unused;
    admission(1.0);
    admission(0.5);
}

/* ---- the memory ---------------------------------------------------------------------- */

static void test_memory_fifo(void **unused) {
    (void)unused;
    mbj_memory m;
    assert_int_equal(mbj_mem_init(&m, 5, 3), LT_OK);
    for (int i = 0; i < 12; i++) {
        float f[3] = {(float)i, (float)(10 * i), -1};
        mbj_mem_push(&m, f, i % 7);
        assert_int_equal(m.count, i + 1 < 5 ? i + 1 : 5);
        /* age order: the last min(i+1, 5) rows pushed, oldest first */
        const long first = i + 1 - m.count;
        for (long k = 0; k < m.count; k++) {
            const long r = mbj_mem_row(&m, k);
            assert_true(m.feat[r * 3] == (float)(first + k));
            assert_true(m.feat[r * 3 + 1] == (float)(10 * (first + k)));
            assert_int_equal(m.label[r], (first + k) % 7);
        }
    }
    mbj_mem_free(&m);
    assert_int_not_equal(mbj_mem_init(&m, 0, 3), LT_OK);
}

/* ---- the loss hook on a tiny model ---------------------------------------------------- */

enum { HC = 3, HD = 4, HB = 5 };

typedef struct fx {
    lt_run_info run;
    lt_host_api api;
    cJSON *obj;
    struct lt_hparams hp;
    lt_model *m;
    mbj_state *st;
    lt_subgraph *sg;
    long counts[HC];
} fx;

static int fx_subgraph(void *host, lt_model *m, const char *from, const char *to, int rows, lt_subgraph **sg) {
    fx *F = host;
    LT_TRY(lt_subgraph_create(sg, m, lt_model_find(m, from), lt_model_find(m, to), rows));
    F->sg = *sg;
    return LT_OK;
}

static void fx_open(fx *F, const char *overrides) {
    memset(F, 0, sizeof *F);
    F->counts[0] = 30;
    F->counts[1] = 12;
    F->counts[2] = 4;
    assert_int_equal(lt_method_hparams(mbj_entry_under_test(), overrides, &F->obj), LT_OK);
    F->hp.obj = F->obj;
    F->api.version = LT_HOST_API_VERSION;
    F->api.subgraph = fx_subgraph;
    F->run.method = "mbj";
    F->run.seed = 1;
    F->run.n_classes = HC;
    F->run.class_counts = F->counts;
    F->run.feat_dim = HD;
    F->run.host = F;
    F->run.api = &F->api;
    assert_int_equal(lt_model_create(&F->m, (lt_shape){1, 2, 3, 3}), LT_OK);
    int c = lt_add_conv(F->m, "conv", "backbone", 0, HD, 3, 1, 1, 1, 0);
    int f = lt_add_gap(F->m, "feat", "backbone", c);
    assert_true(lt_add_linear(F->m, "logits", "head", f, HC, 1) > 0);
    assert_int_equal(lt_model_finalize(F->m, 3), LT_OK);
    assert_int_equal(lt_model_set_batch(F->m, HB), LT_OK);
    F->st = calloc(1, sizeof(mbj_state));
    assert_int_equal(mbj_init(F->st, &F->run, &F->hp), LT_OK);
    lt_stage cfg;
    memset(&cfg, 0, sizeof cfg);
    assert_int_equal(mbj_stage_begin(F->st, 0, &cfg, F->m), LT_OK);
}

static void fx_close(fx *F) {
    mbj_fini(F->st);
    free(F->st);
    lt_subgraph_free(F->sg);
    lt_model_free(F->m);
    cJSON_Delete(F->obj);
}

/* lambda * mean CE over the memory of (W, b), in double. */
typedef struct {
    fx *F;
    float *W, *b;
    double lambda;
} ref_ctx;

static double ref_mem_loss(void *p) {
    const ref_ctx *r = p;
    const mbj_memory *m = &r->F->st->mem;
    double L = 0;
    for (long k = 0; k < m->count; k++) {
        double z[HC], mx = -INFINITY, s = 0;
        for (int j = 0; j < HC; j++) {
            z[j] = r->b[j];
            for (int d = 0; d < HD; d++) z[j] += (double)r->W[j * HD + d] * m->feat[k * HD + d];
            mx = fmax(mx, z[j]);
        }
        for (int j = 0; j < HC; j++) s += exp(z[j] - mx);
        L += mx + log(s) - z[m->label[k]];
    }
    return r->lambda * L / (double)m->count;
}

static lt_taps batch_taps(fx *F, float *x, int32_t *y, float *dl) {
    gc_fill(x, HB * 18, 5, -1, 1);
    for (int i = 0; i < HB; i++) y[i] = i % HC;
    assert_int_equal(lt_model_forward(F->m, x, HB, 1), LT_OK);
    lt_taps t = {.n = HB, .n_classes = HC, .feat_dim = HD, .logits = lt_model_out(F->m, lt_model_find(F->m, "logits")),
                 .feat = lt_model_out(F->m, lt_model_find(F->m, "feat")), .labels = y, .class_counts = F->counts,
                 .stage = 0, .epoch = 1, .iter = 7, .lr = 0.1f, .model = F->m, .x = x, .x_rows = HB, .views = 1};
    (void)dl;
    return t;
}

static void fill_memory(fx *F, int rows) {
    float f[HD];
    for (int k = 0; k < rows; k++) {
        gc_fill(f, HD, 100 + (unsigned)k, -1, 1);
        mbj_mem_push(&F->st->mem, f, k % HC);
    }
}

static void test_memory_term_gradient(void **unused) {
    (void)unused;
    fx F;
    fx_open(&F, "{\"lambda_mem\": 0.7}");
    /* capacity = capacity_epochs x sum_c min(n_c, n_min) = 2 x 3 x 4 */
    assert_int_equal(F.st->mem.cap, 24);
    fill_memory(&F, 9);
    float x[HB * 18], dl[HB * HC];
    int32_t y[HB];
    lt_taps t = batch_taps(&F, x, y, dl);
    lt_grads g = {.dlogits = lt_model_dout(F.m, lt_model_find(F.m, "logits"))};
    lt_model_zero_grad(F.m);
    double loss;
    assert_int_equal(F.st->run->api ? mbj_loss(F.st, &t, &loss, &g) : -1, LT_OK);
    /* the backbone gets nothing from the memory term */
    lt_param_info cw, W, b;
    assert_int_equal(lt_model_param_find(F.m, "conv.weight", &cw), LT_OK);
    assert_int_equal(lt_model_param_find(F.m, "logits.weight", &W), LT_OK);
    assert_int_equal(lt_model_param_find(F.m, "logits.bias", &b), LT_OK);
    for (size_t i = 0; i < cw.count; i++) assert_true(cw.g[i] == 0.0f);
    /* the loss: batch CE + lambda x memory CE */
    double lb;
    float tmp[HB * HC];
    assert_int_equal(lt_softmax_ce(HB, HC, t.logits, y, NULL, NULL, &lb, tmp), LT_OK);
    ref_ctx r = {&F, W.w, b.w, 0.7};
    assert_float_equal(loss, lb + ref_mem_loss(&r), 1e-5);
    /* the batch gradient is the plain CE's (dlogits, for the runner) */
    for (int i = 0; i < HB * HC; i++) assert_float_equal(g.dlogits[i], tmp[i], 1e-7);
    /* the classifier's gradient from the memory term, by finite differences */
    float gW[HC * HD], gb[HC];
    memcpy(gW, W.g, sizeof gW);
    memcpy(gb, b.g, sizeof gb);
    double mx = 0;
    for (int i = 0; i < HC * HD; i++) mx = lt_tmax(mx, fabs(gW[i]));   /* a NaN stays: fails the signal check */
    assert_true(mx > 1e-4);
    gc_opts o = {.eps = 1e-3, .rtol = 1e-2, .atol = 1e-4, .max_checks = 0};
    assert_int_equal(gc_check("mbj memory term dW", ref_mem_loss, &r, W.w, gW, HC * HD, &o), 0);
    assert_int_equal(gc_check("mbj memory term db", ref_mem_loss, &r, b.w, gb, HC, &o), 0);
    /* an empty memory adds nothing */
    F.st->mem.count = 0;
    lt_model_zero_grad(F.m);
    assert_int_equal(mbj_loss(F.st, &t, &loss, &g), LT_OK);
    assert_float_equal(loss, lb, 1e-12);
    for (int i = 0; i < HC * HD; i++) assert_true(W.g[i] == 0.0f);
    fx_close(&F);
}

/* mix = concat: one CE over batch and memory rows, (n lb + M lm) / (n + M). */
static void test_concat_mix(void **unused) {
    (void)unused;
    fx F;
    fx_open(&F, "{\"mix\": \"concat\"}");
    fill_memory(&F, 7);
    float x[HB * 18], dl[HB * HC];
    int32_t y[HB];
    lt_taps t = batch_taps(&F, x, y, dl);
    lt_grads g = {.dlogits = lt_model_dout(F.m, lt_model_find(F.m, "logits"))};
    lt_model_zero_grad(F.m);
    double loss, lb;
    assert_int_equal(mbj_loss(F.st, &t, &loss, &g), LT_OK);
    float tmp[HB * HC];
    assert_int_equal(lt_softmax_ce(HB, HC, t.logits, y, NULL, NULL, &lb, tmp), LT_OK);
    lt_param_info W, b;
    assert_int_equal(lt_model_param_find(F.m, "logits.weight", &W), LT_OK);
    assert_int_equal(lt_model_param_find(F.m, "logits.bias", &b), LT_OK);
    ref_ctx r = {&F, W.w, b.w, 1.0};
    const double lm = ref_mem_loss(&r);
    assert_float_equal(loss, (HB * lb + 7 * lm) / (HB + 7), 1e-5);
    for (int i = 0; i < HB * HC; i++) assert_float_equal(g.dlogits[i], tmp[i] * HB / (HB + 7.0), 1e-7);
    fx_close(&F);
}

/* ---- registration and defaults -------------------------------------------------------- */

static void test_defaults(void **unused) {
    (void)unused;
    const lt_method *M = lt_method_mbj();
    assert_string_equal(M->name, "mbj");
    assert_string_equal(M->fidelity, "reconstructed");
    assert_null(M->stage1_from);
    assert_int_equal(M->abi, LT_METHOD_ABI);
    char *d;
    size_t n;
    assert_int_equal(lt_io_read_all("methods/mbj/defaults.json", &d, &n), LT_OK);
    while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == ' ')) d[--n] = 0;
    assert_string_equal(d, M->defaults);
    free(d);
    /* bad hyper-parameters are refused, naming the key */
    fx F;
    memset(&F, 0, sizeof F);
    const long counts[2] = {5, 1};
    lt_run_info run = {.n_classes = 2, .feat_dim = 4, .class_counts = counts, .api = &F.api};
    F.api.version = 1;
    const char *bad[] = {"{\"mix\": \"sum\"}", "{\"gamma\": -1}", "{\"capacity_epochs\": 0}", "{\"first_epoch\": -2}"};
    const char *key[] = {"mix", "gamma", "capacity_epochs", "first_epoch"};
    for (int i = 0; i < 4; i++) {
        cJSON *o;
        assert_int_equal(lt_method_hparams(M, bad[i], &o), LT_OK);
        struct lt_hparams hp = {o};
        mbj_state st;
        memset(&st, 0, sizeof st);
        assert_int_not_equal(mbj_init(&st, &run, &hp), LT_OK);
        assert_non_null(strstr(lt_errmsg(), key[i]));
        mbj_fini(&st);
        cJSON_Delete(o);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admission_frequencies),
        cmocka_unit_test(test_memory_fifo),
        cmocka_unit_test(test_memory_term_gradient),
        cmocka_unit_test(test_concat_mix),
        cmocka_unit_test(test_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
