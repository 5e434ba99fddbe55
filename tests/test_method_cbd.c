/* test_method_cbd.c — cbd (white-box: its source is included) and the
 * engine's over/under sampler it uses:
 *   - the loss against a naive formula on a small batch, (1 - alpha) CE +
 *     alpha beta mean(1 - cos(g_s, g_t)), for one and two teachers, and its
 *     gradient by finite differences through the student;
 *   - the teacher receives no gradient and its parameters and buffers are
 *     unchanged after student steps; the epoch-end guard catches a change;
 *   - the student starts from a fresh initialisation of its own (seed + 1000),
 *     not the teacher's (the run seed), over the teacher's weights the
 *     runner loaded into it; its per-class norms are the cosine's sigma;
 *   - LT_SAMPLER_OVER_UNDER as the official input pipeline: a naive replay
 *     of the pass stream, head samples at most once and tail samples
 *     floor(r) or ceil(r) times per pass, epochs as slices of one stream,
 *     class frequencies 1/C;
 *   - defaults.json of cbd and cbd_teacher; the teacher's class_norms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tassert.h"   /* NaN-safe assert_float_equal */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "lt.h"
#include "lt_method.h"
#include "lt_io.h"

#define lt_method_cbd cbd_entry_under_test
#include "../methods/cbd/method.c"
#undef lt_method_cbd
#define lt_method_cbd_teacher cbd_teacher_entry_under_test
#include "../methods/cbd_teacher/method.c"

enum { N = 4, IN = 6, D = 5, C = 3 };

typedef struct {
    cbd_state st;
    lt_model *s, *t[2];
    int feat, logits;
    float x[N * IN];
    int32_t y[N];
} fx;

/* student: input -> linear "feat" -> cbd's head; teachers: input -> linear "feat" */
static void fx_make(fx *f, int K) {
    memset(f, 0, sizeof *f);
    cbd_state *st = &f->st;
    st->C = C; st->D = D; st->K = K; st->P = D * K;
    st->alpha = 0.4; st->beta = 100; st->sigma = 20;
    assert_int_equal(lt_model_create(&f->s, (lt_shape){1, IN, 1, 1}), LT_OK);
    f->feat = lt_add_linear(f->s, "feat", "backbone", 0, D, 1);
    assert_int_equal(cbd_build(st, f->s, f->feat), LT_OK);
    f->logits = lt_model_find(f->s, "logits");
    assert_int_equal(lt_model_finalize(f->s, 1), LT_OK);
    assert_int_equal(lt_model_set_batch(f->s, N), LT_OK);
    /* the classifier's parameters are "cls.*": never loaded from the teacher's "logits.*" */
    assert_non_null(lt_model_param_data(f->s, "cls.weight"));
    assert_null(lt_model_param_data(f->s, "logits.weight"));
    for (int k = 0; k < K; k++) {
        assert_int_equal(lt_model_create(&f->t[k], (lt_shape){1, IN, 1, 1}), LT_OK);
        assert_true(lt_add_linear(f->t[k], "feat", "backbone", 0, D, 1) > 0);
        assert_int_equal(lt_model_finalize(f->t[k], 10 + k), LT_OK);
        assert_int_equal(lt_model_set_batch(f->t[k], N), LT_OK);
        assert_int_equal(lt_model_freeze(f->t[k], NULL, 1), LT_OK);   /* as the host's teacher service */
        st->T[k] = f->t[k];
        st->tfeat[k] = lt_model_find(f->t[k], "feat");
    }
    /* what cbd_stage_begin allocates with the teachers */
    size_t mx = cbd_largest(f->t[0]);
    if (K > 1 && cbd_largest(f->t[1]) > mx) mx = cbd_largest(f->t[1]);
    st->vals = malloc(mx * sizeof(float));
    assert_non_null(st->vals);
    for (int k = 0; k < K; k++) assert_int_equal(cbd_checksum(f->t[k], st->vals, &st->tsum[k]), LT_OK);
    st->cap = N;
    st->tcat = lt_alloc(sizeof(float) * N * st->P);
    st->tf = lt_alloc(sizeof(float) * N * st->D);
    st->gs = lt_alloc(sizeof(float) * N * st->P);
    st->dgs = lt_alloc(sizeof(float) * N * st->P);
    assert_true(st->tcat && st->tf && st->gs && st->dgs);
    st->proj = lt_model_find(f->s, "proj_relu");
    gc_fill(f->x, N * IN, 5, -1, 1);
    for (int i = 0; i < N; i++) f->y[i] = i % C;
}

static void fx_free(fx *f) {
    lt_free(f->st.tcat);
    lt_free(f->st.tf);
    lt_free(f->st.gs);
    lt_free(f->st.dgs);
    free(f->st.vals);
    lt_model_free(f->s);
    for (int k = 0; k < 2; k++) lt_model_free(f->t[k]);
}

static double run_loss(fx *f, lt_grads *g) {
    assert_int_equal(lt_model_forward(f->s, f->x, N, 1), LT_OK);
    lt_taps t;
    memset(&t, 0, sizeof t);
    t.n = N; t.n_classes = C; t.feat_dim = D;
    t.logits = lt_model_out(f->s, f->logits);
    t.labels = f->y;
    t.stage = 1;
    t.model = f->s;
    t.x = f->x; t.x_rows = N; t.views = 1;
    memset(g, 0, sizeof *g);
    g->dlogits = lt_model_dout(f->s, f->logits);
    double L;
    assert_int_equal(cbd_loss(&f->st, &t, &L, g), LT_OK);
    return L;
}

/* the naive formula, in double */
static double naive_loss(fx *f) {
    const int K = f->st.K, P = f->st.P;
    double ce = 0, cd = 0;
    const float *z = lt_model_out(f->s, f->logits), *gs = lt_model_out(f->s, f->st.proj);
    for (int i = 0; i < N; i++) {
        double mx = -1e300, se = 0;
        for (int j = 0; j < C; j++) mx = fmax(mx, z[i * C + j]);
        for (int j = 0; j < C; j++) se += exp(z[i * C + j] - mx);
        ce += -(z[i * C + f->y[i]] - mx - log(se));
        double gt[2 * D], nt = 0;
        for (int k = 0; k < K; k++) {
            const float *tf = lt_model_out(f->t[k], lt_model_find(f->t[k], "feat")) + i * D;
            double n = 0;
            for (int d = 0; d < D; d++) n += (double)tf[d] * tf[d];
            for (int d = 0; d < D; d++) gt[k * D + d] = tf[d] / sqrt(n);
        }
        for (int d = 0; d < P; d++) nt += gt[d] * gt[d];
        double dot = 0, ns = 0;
        for (int d = 0; d < P; d++) {
            dot += gs[i * P + d] * gt[d] / sqrt(nt);
            ns += (double)gs[i * P + d] * gs[i * P + d];
        }
        cd += 1 - dot / sqrt(ns);
    }
    return 0.6 * ce / N + 0.4 * 100 * cd / N;
}

typedef struct { fx *f; } lctx;
static double loss_only(void *p) {
    lt_grads g;
    return run_loss(((lctx *)p)->f, &g);
}

static void check_loss(int K) {
    fx f;
    fx_make(&f, K);
    lt_grads g;
    const double L = run_loss(&f, &g);
    assert_float_equal(L, naive_loss(&f), 1e-4 * fabs(L));
    assert_int_equal(g.n_extra, 1);
    assert_int_equal(g.extra[0], f.st.proj);
    /* gradient of the whole loss w.r.t. the student's parameters */
    lt_model_zero_grad(f.s);
    const int taps[2] = {f.logits, f.st.proj};
    assert_int_equal(lt_model_backward(f.s, N, taps, 2), LT_OK);
    lctx c = {&f};
    const gc_opts tol = {1e-3, 3e-2, 2e-3, 0};
    for (int i = 0; i < lt_model_n_params(f.s); i++) {
        lt_param_info p;
        lt_model_param_at(f.s, i, &p);
        float *gcopy = malloc(p.count * sizeof(float));
        memcpy(gcopy, p.g, p.count * sizeof(float));
        char what[120];
        snprintf(what, sizeof what, "cbd K=%d %s", K, p.name);
        assert_int_equal(gc_check(what, loss_only, &c, p.w, gcopy, p.count, &tol), 0);
        free(gcopy);
    }
    fx_free(&f);
}

static void test_loss_naive_and_gradient(void **unused) {
    (void)unused;
    check_loss(1);
    check_loss(2);
}

/* student steps leave the teacher as it was: no gradient, same bytes */
static void test_teacher_frozen(void **unused) {
    (void)unused;
    fx f;
    fx_make(&f, 1);
    lt_param_info tp;
    assert_int_equal(lt_model_param_find(f.t[0], "feat.weight", &tp), LT_OK);
    float before[IN * D];
    memcpy(before, tp.w, sizeof before);
    lt_optim o;
    assert_int_equal(lt_optim_init(&o, f.s, LT_OPT_SGD, 0.9f, 5e-4f, 0), LT_OK);
    float s_before = lt_model_param_data(f.s, "feat.weight")[0];
    for (int it = 0; it < 3; it++) {
        lt_grads g;
        run_loss(&f, &g);
        lt_model_zero_grad(f.s);
        const int taps[2] = {f.logits, f.st.proj};
        assert_int_equal(lt_model_backward(f.s, N, taps, 2), LT_OK);
        assert_int_equal(lt_optim_step(&o, f.s, 0.1f), LT_OK);
    }
    const float s_after = lt_model_param_data(f.s, "feat.weight")[0];
    assert_true(isfinite(s_after) && s_after != s_before);   /* the student learned (a NaN is no learning) */
    assert_memory_equal(tp.w, before, sizeof before);
    for (int k = 0; k < lt_model_n_params(f.t[0]); k++) {
        lt_param_info p;
        lt_model_param_at(f.t[0], k, &p);
        assert_true(p.flags & LT_MASK_FROZEN);
        for (size_t j = 0; j < p.count; j++) assert_true(p.g == NULL || p.g[j] == 0.0f);
    }
    assert_int_equal(cbd_epoch_end(&f.st, 1, 0, f.s), LT_OK);
    /* the guard catches a teacher that moved */
    tp.w[0] += 1e-3f;
    assert_int_equal(cbd_epoch_end(&f.st, 1, 0, f.s), LT_ESTATE);
    lt_optim_free(&o);
    fx_free(&f);
}

/* The model as lt_model_finalize(seed) makes it: every parameter, then
 * every buffer, into a malloc'd array. */
static float *fresh_values(fx *f, uint64_t seed, size_t *n) {
    lt_model *m;
    assert_int_equal(lt_model_create(&m, (lt_shape){1, IN, 1, 1}), LT_OK);
    cbd_state st = f->st;
    int feat = lt_add_linear(m, "feat", "backbone", 0, D, 1);
    assert_int_equal(cbd_build(&st, m, feat), LT_OK);
    assert_int_equal(lt_model_finalize(m, seed), LT_OK);
    *n = 0;
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(m, i, &p), LT_OK);
        *n += p.count;
    }
    float *v = malloc(*n * sizeof(float)), *o = v;
    assert_non_null(v);
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(m, i, &p), LT_OK);
        memcpy(o, p.w, p.count * sizeof(float));
        o += p.count;
    }
    lt_model_free(m);
    return v;
}

static void assert_params_are(lt_model *m, const float *v, size_t n, int equal) {
    size_t o = 0;
    int same = 1;
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info p;
        assert_int_equal(lt_model_param_at(m, i, &p), LT_OK);
        assert_true(o + p.count <= n);
        same &= !memcmp(p.w, v + o, p.count * sizeof(float));
        o += p.count;
    }
    assert_int_equal(o, n);
    assert_int_equal(same, equal);
}

/* stage_begin(1) initialises the student afresh over whatever the runner
 * loaded, from seed + 1000: not the teacher's initialisation (the run
 * seed); it takes the stage-1 block and sampler */
static void test_student_from_scratch(void **unused) {
    (void)unused;
    fx f;
    fx_make(&f, 1);
    lt_run_info run;
    memset(&run, 0, sizeof run);
    run.seed = 1;   /* fx_make finalizes the student with 1, as the runner with the run seed */
    f.st.run = &run;
    size_t n;
    float *teacher_init = fresh_values(&f, 1, &n), *student_init = fresh_values(&f, 1001, &n);
    assert_params_are(f.s, teacher_init, n, 1);
    lt_param_info p;
    assert_int_equal(lt_model_param_find(f.s, "feat.weight", &p), LT_OK);
    lt_stage s0;
    memset(&s0, 0, sizeof s0);
    s0.index = 0; s0.epochs = 7; s0.batch = N; s0.momentum = 0.9f;
    assert_int_equal(cbd_stage_begin(&f.st, 0, &s0, f.s), LT_OK);
    for (size_t j = 0; j < p.count; j++) p.w[j] = 42.0f;   /* the runner's stage-1 load */
    lt_stage s1;
    memset(&s1, 0, sizeof s1);
    s1.index = 1; s1.epochs = 1; s1.batch = 99;
    assert_int_equal(cbd_stage_begin(&f.st, 1, &s1, f.s), LT_OK);   /* teachers present: no service call */
    assert_params_are(f.s, student_init, n, 1);
    assert_params_are(f.s, teacher_init, n, 0);
    assert_int_equal(s1.index, 1);
    assert_int_equal(s1.epochs, 7);
    assert_int_equal(s1.batch, N);
    assert_int_equal(s1.sampler.kind, LT_SAMPLER_OVER_UNDER);
    /* the cosine classifier scores with rows of norm sigma */
    double norms[C];
    assert_int_equal(cbd_class_norms(&f.st, f.s, C, norms), LT_OK);
    for (int j = 0; j < C; j++) assert_float_equal(norms[j], 20.0, 0);
    free(teacher_init);
    free(student_init);
    fx_free(&f);
}

/* ---- the sampler -------------------------------------------------------------------- */

/* The official pipeline spelled out: for each pass p (its own stream),
 * each sample in order gets floor(r) + [u <= max(r,1) - floor(r)] copies,
 * each kept when u <= min(r, 1); the pass is shuffled; passes concatenate. */
static long naive_stream(uint64_t seed, uint64_t stream, const int32_t *lab, long n, int nc, long want,
                         int32_t *out, int32_t *pass_of) {
    long cnt[16] = {0};
    for (long i = 0; i < n; i++) cnt[lab[i]]++;
    lt_rng base;
    lt_rng_init(&base, seed, stream);
    long o = 0;
    int32_t *buf = malloc(sizeof(int32_t) * (size_t)n * 64);
    for (uint64_t p = 0; o < want; p++) {
        lt_rng r;
        lt_rng_derive(&r, &base, p, 1);
        long m = 0;
        for (long i = 0; i < n; i++) {
            double rt = ((double)n / nc) / (double)cnt[lab[i]];
            long copies = (long)floor(rt) + (lt_rng_uniform(&r) <= fmax(rt, 1) - floor(rt));
            for (long k = 0; k < copies; k++)
                if (lt_rng_uniform(&r) <= fmin(rt, 1)) buf[m++] = (int32_t)i;
        }
        lt_rng_shuffle_i32(&r, buf, m);
        for (long k = 0; k < m && o < want; k++, o++) {
            out[o] = buf[k];
            if (pass_of) pass_of[o] = (int32_t)p;
        }
    }
    free(buf);
    return o;
}

static void test_sampler_over_under(void **unused) {
    (void)unused;
    /* counts 40, 12, 5, 3: r = 15/40 (head), 15/12, 3, 5 */
    enum { NC = 4, NS = 60, E = 6 };
    const long counts[NC] = {40, 12, 5, 3};
    int32_t lab[NS];
    long q = 0;
    for (int j = 0; j < NC; j++)
        for (long k = 0; k < counts[j]; k++) lab[q++] = j;
    lt_sampler_cfg cfg = {LT_SAMPLER_OVER_UNDER, 0, 0, NULL};
    int32_t ep[NS], ref[NS * E], pass_of[NS * E];
    naive_stream(9, 77, lab, NS, NC, NS * E, ref, pass_of);
    for (int e = 0; e < E; e++) {
        assert_int_equal(lt_sampler_epoch(&cfg, e, 9, 77, lab, NS, NC, ep, NS), LT_OK);
        assert_memory_equal(ep, ref + (size_t)e * NS, sizeof ep);   /* epoch e = slice e of the stream */
    }
    /* per pass: head samples at most once, tail samples floor(r) or ceil(r) times */
    enum { LONG = NS * 400 };
    int32_t *big = malloc(sizeof(int32_t) * LONG), *pb = malloc(sizeof(int32_t) * LONG);
    naive_stream(9, 77, lab, NS, NC, LONG, big, pb);
    const int last = pb[LONG - 1];   /* the last pass may be cut: leave it out */
    int *seen = calloc((size_t)NS, sizeof *seen);
    long cls[NC] = {0}, tot = 0;
    for (long o = 0; o < LONG; o++) {
        if (pb[o] == last) break;
        if (o > 0 && pb[o] != pb[o - 1]) {
            for (int i = 0; i < NS; i++) {
                const double rt = (NS / (double)NC) / counts[lab[i]];
                if (rt < 1) assert_true(seen[i] <= 1);
                else assert_true(seen[i] >= (int)floor(rt) && seen[i] <= (int)ceil(rt));
            }
            memset(seen, 0, sizeof(int) * NS);
        }
        seen[big[o]]++;
        cls[lab[big[o]]]++;
        tot++;
    }
    for (int j = 0; j < NC; j++) assert_float_equal((double)cls[j] / tot, 1.0 / NC, 0.02);   /* balanced */
    /* the engine's own epochs agree with the long stream far in */
    assert_int_equal(lt_sampler_epoch(&cfg, 300, 9, 77, lab, NS, NC, ep, NS), LT_OK);
    assert_memory_equal(ep, big + (size_t)300 * NS, sizeof ep);
    double pr[NC];
    assert_int_equal(lt_sampler_class_probs(&cfg, 0, NC, counts, pr), LT_OK);
    for (int j = 0; j < NC; j++) assert_float_equal(pr[j], 0.25, 1e-12);
    free(seen);
    free(big);
    free(pb);
}

static void check_defaults(const char *path, const char *want) {
    char *d;
    size_t n;
    assert_int_equal(lt_io_read_all(path, &d, &n), LT_OK);
    while (n > 0 && (d[n - 1] == '\n' || d[n - 1] == ' ')) d[--n] = 0;
    assert_string_equal(d, want);
    free(d);
}

static void test_defaults(void **unused) {
    (void)unused;
    const lt_method *M = cbd_entry_under_test(), *T = cbd_teacher_entry_under_test();
    check_defaults("methods/cbd/defaults.json", M->defaults);
    check_defaults("methods/cbd_teacher/defaults.json", T->defaults);
    assert_string_equal(M->stage1_from, "cbd_teacher");
    assert_string_equal(M->fidelity, "official-code");
}

/* The teacher's class_norms: every class gets sigma, the norm its cosine
 * classifier scores with (version 1 left per_class.csv the raw rows);
 * nothing is written past the run's classes, another class count is refused */
static void test_teacher_class_norms(void **unused) {
    (void)unused;
    const lt_method *T = cbd_teacher_entry_under_test();
    assert_string_equal(T->version, "2");
    assert_non_null(T->class_norms);
    cbdt_state st = {.C = 10, .sigma = 12.5};
    double norms[11];
    for (int j = 0; j < 11; j++) norms[j] = -1;
    assert_int_equal(T->class_norms(&st, NULL, 10, norms), LT_OK);
    for (int j = 0; j < 10; j++) assert_float_equal(norms[j], 12.5, 0);
    assert_float_equal(norms[10], -1.0, 0);
    assert_int_not_equal(T->class_norms(&st, NULL, 11, norms), LT_OK);
    lt_err_clear();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_naive_and_gradient),
        cmocka_unit_test(test_teacher_frozen),
        cmocka_unit_test(test_student_from_scratch),
        cmocka_unit_test(test_sampler_over_under),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_teacher_class_norms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
