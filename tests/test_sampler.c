/* test_sampler.c — epoch index lists: exact permutations, class-aware
 * structure, and empirical class frequencies of the i.i.d. samplers against
 * lt_sampler_class_probs with binomial tolerances. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "tassert.h"   /* NaN-safe assert_float_equal */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_data.h"
#include "lt_sampler_ws.h"

#define C 10

/* A long-tailed label set: counts 1000 .. 10 (exponential profile, IR 100),
 * labels interleaved in a fixed pseudo-random order. */
typedef struct {
    long counts[C];
    long n;
    int32_t *labels;
} lt_set;

static lt_set make_set(void)
{
    lt_set s;
    s.n = 0;
    for (int j = 0; j < C; j++) {
        s.counts[j] = (long)(1000.0 * pow(0.01, j / (C - 1.0)));
        s.n += s.counts[j];
    }
    s.labels = malloc((size_t)s.n * sizeof *s.labels);
    assert_non_null(s.labels);
    long k = 0;
    for (int j = 0; j < C; j++)
        for (long i = 0; i < s.counts[j]; i++)
            s.labels[k++] = j;
    lt_rng r;
    lt_rng_init(&r, 99, 99);
    lt_rng_shuffle_i32(&r, s.labels, s.n);
    return s;
}

static void assert_close_binomial(long hits, long n, double p, const char *what, int j)
{
    double ph = (double)hits / n;
    double tol = 5 * sqrt(p * (1 - p) / n);
    if (tol < 1e-12)
        tol = 1e-12;
    if (!(fabs(ph - p) <= tol)) {   /* a NaN target fails */
        print_error("%s class %d: p_hat %.5f vs p %.5f (tol %.5f)\n", what, j, ph, p, tol);
        fail();
    }
}

/* Draw n_out indices and compare class frequencies with class_probs. */
static void check_empirical(const lt_set *s, const lt_sampler_cfg *cfg, int epoch, long n_out,
                            const char *what)
{
    int32_t *out = malloc((size_t)n_out * sizeof *out);
    assert_non_null(out);
    assert_int_equal(lt_sampler_epoch(cfg, epoch, 7, LT_STREAM_ORDER, s->labels, s->n, C, out, n_out),
                     LT_OK);
    double p[C];
    assert_int_equal(lt_sampler_class_probs(cfg, epoch, C, s->counts, p), LT_OK);
    long hits[C] = {0};
    for (long i = 0; i < n_out; i++) {
        assert_true(out[i] >= 0 && out[i] < s->n);
        hits[s->labels[out[i]]]++;
    }
    for (int j = 0; j < C; j++)
        assert_close_binomial(hits[j], n_out, p[j], what, j);
    free(out);
}

static void test_class_probs_formulas(void **state)
{
    (void)state;
    lt_set s = make_set();
    assert_int_equal(s.counts[0], 1000);
    assert_int_equal(s.counts[C - 1], 10);
    double p[C], N = (double)s.n, sq = 0;
    for (int j = 0; j < C; j++)
        sq += sqrt((double)s.counts[j]);

    lt_sampler_cfg cfg = {.kind = LT_SAMPLER_INSTANCE};
    assert_int_equal(lt_sampler_class_probs(&cfg, 3, C, s.counts, p), LT_OK);
    for (int j = 0; j < C; j++)
        assert_float_equal(p[j], s.counts[j] / N, 1e-15);

    cfg.kind = LT_SAMPLER_CLASS_BALANCED;
    assert_int_equal(lt_sampler_class_probs(&cfg, 0, C, s.counts, p), LT_OK);
    for (int j = 0; j < C; j++)
        assert_float_equal(p[j], 0.1, 1e-15);
    cfg.kind = LT_SAMPLER_CLASS_AWARE;
    assert_int_equal(lt_sampler_class_probs(&cfg, 0, C, s.counts, p), LT_OK);
    for (int j = 0; j < C; j++)
        assert_float_equal(p[j], 0.1, 1e-15);

    cfg.kind = LT_SAMPLER_SQRT;
    assert_int_equal(lt_sampler_class_probs(&cfg, 0, C, s.counts, p), LT_OK);
    for (int j = 0; j < C; j++)
        assert_float_equal(p[j], sqrt((double)s.counts[j]) / sq, 1e-15);

    /* PROGRESSIVE, E = 11: lambda = e / (E - 1) (decoupling's code). */
    cfg.kind = LT_SAMPLER_PROGRESSIVE;
    cfg.total_epochs = 11;
    const int ep[4] = {0, 5, 10, 20};
    const double lam[4] = {0.0, 0.5, 1.0, 1.0};
    for (int t = 0; t < 4; t++) {
        assert_int_equal(lt_sampler_class_probs(&cfg, ep[t], C, s.counts, p), LT_OK);
        double sum = 0;
        for (int j = 0; j < C; j++) {
            assert_float_equal(p[j], (1 - lam[t]) * s.counts[j] / N + lam[t] / C, 1e-15);
            sum += p[j];
        }
        assert_float_equal(sum, 1.0, 1e-12);
    }
    cfg.total_epochs = 0;
    assert_int_equal(lt_sampler_class_probs(&cfg, 0, C, s.counts, p), LT_EINVAL);

    double w[C];
    double ws = 0;
    for (int j = 0; j < C; j++) {
        w[j] = 1.0 + j * j;
        ws += w[j];
    }
    cfg.kind = LT_SAMPLER_WEIGHTS;
    cfg.class_weights = w;
    assert_int_equal(lt_sampler_class_probs(&cfg, 0, C, s.counts, p), LT_OK);
    for (int j = 0; j < C; j++)
        assert_float_equal(p[j], w[j] / ws, 1e-15);
    w[3] = -1;
    assert_int_equal(lt_sampler_class_probs(&cfg, 0, C, s.counts, p), LT_EINVAL);
    cfg.class_weights = NULL;
    assert_int_equal(lt_sampler_class_probs(&cfg, 0, C, s.counts, p), LT_EINVAL);

    /* An empty class cannot be drawn: probability 0, "1/C" over the rest. */
    long cnt[3] = {5, 0, 15};
    cfg.kind = LT_SAMPLER_CLASS_BALANCED;
    assert_int_equal(lt_sampler_class_probs(&cfg, 0, 3, cnt, p), LT_OK);
    assert_float_equal(p[0], 0.5, 1e-15);
    assert_float_equal(p[1], 0.0, 0);
    assert_float_equal(p[2], 0.5, 1e-15);
    long zero[2] = {0, 0};
    assert_int_equal(lt_sampler_class_probs(&cfg, 0, 2, zero, p), LT_EINVAL);
    free(s.labels);
}

static void test_instance_is_permutation(void **state)
{
    (void)state;
    lt_set s = make_set();
    lt_sampler_cfg cfg = {.kind = LT_SAMPLER_INSTANCE};
    int32_t *out = malloc((size_t)(3 * s.n) * sizeof *out);
    int *seen = calloc((size_t)s.n, sizeof *seen);
    assert_non_null(out);
    assert_non_null(seen);
    assert_int_equal(lt_sampler_epoch(&cfg, 0, 1, LT_STREAM_ORDER, s.labels, s.n, C, out, s.n), LT_OK);
    long fixed = 0;
    for (long i = 0; i < s.n; i++) {
        assert_true(out[i] >= 0 && out[i] < s.n);
        seen[out[i]]++;
        fixed += out[i] == i;
    }
    for (long i = 0; i < s.n; i++)
        assert_int_equal(seen[i], 1);
    assert_true(fixed < 10);

    /* n_out = 2.5 n: two permutations then the head of a third (distinct). */
    long n_out = 2 * s.n + s.n / 2;
    assert_int_equal(lt_sampler_epoch(&cfg, 1, 1, LT_STREAM_ORDER, s.labels, s.n, C, out, n_out), LT_OK);
    for (int blk = 0; blk < 3; blk++) {
        memset(seen, 0, (size_t)s.n * sizeof *seen);
        long m = blk < 2 ? s.n : s.n / 2;
        for (long i = 0; i < m; i++) {
            int32_t v = out[blk * s.n + i];
            assert_true(v >= 0 && v < s.n);
            assert_int_equal(seen[v], 0);
            seen[v] = 1;
        }
    }
    assert_true(memcmp(out, out + s.n, (size_t)s.n * sizeof *out) != 0);
    free(seen);
    free(out);
    free(s.labels);
}

static void test_iid_empirical(void **state)
{
    (void)state;
    lt_set s = make_set();
    const long n_out = 200000;
    double w[C];
    for (int j = 0; j < C; j++)
        w[j] = (j % 3 == 0) ? 0.0 : 1.0 + j;  /* zeros must never be drawn */
    lt_sampler_cfg cfg = {.kind = LT_SAMPLER_CLASS_BALANCED};
    check_empirical(&s, &cfg, 0, n_out, "class-balanced");
    cfg.kind = LT_SAMPLER_SQRT;
    check_empirical(&s, &cfg, 1, n_out, "sqrt");
    cfg.kind = LT_SAMPLER_WEIGHTS;
    cfg.class_weights = w;
    check_empirical(&s, &cfg, 2, n_out, "weights");
    cfg.class_weights = NULL;
    cfg.kind = LT_SAMPLER_PROGRESSIVE;
    cfg.total_epochs = 30;
    check_empirical(&s, &cfg, 0, n_out, "progressive e=0");
    check_empirical(&s, &cfg, 15, n_out, "progressive e=E/2");
    check_empirical(&s, &cfg, 29, n_out, "progressive e=E-1");
    cfg.kind = LT_SAMPLER_INSTANCE;
    check_empirical(&s, &cfg, 0, s.n * 10, "instance");
    free(s.labels);
}

static void test_class_balanced_uniform_within_class(void **state)
{
    (void)state;
    lt_set s = make_set();
    const long n_out = 200000;
    int32_t *out = malloc((size_t)n_out * sizeof *out);
    long *hits = calloc((size_t)s.n, sizeof *hits);
    assert_non_null(out);
    assert_non_null(hits);
    lt_sampler_cfg cfg = {.kind = LT_SAMPLER_CLASS_BALANCED};
    assert_int_equal(lt_sampler_epoch(&cfg, 4, 3, LT_STREAM_ORDER2, s.labels, s.n, C, out, n_out), LT_OK);
    for (long i = 0; i < n_out; i++)
        hits[out[i]]++;
    /* Each sample of class j is drawn with probability 1/(C n_j): weights 1/n_y. */
    for (long i = 0; i < s.n; i++) {
        double p = 1.0 / (C * (double)s.counts[s.labels[i]]);
        assert_close_binomial(hits[i], n_out, p, "cb per-sample", (int)i);
    }
    free(hits);
    free(out);
    free(s.labels);
}

static void test_class_aware_structure(void **state)
{
    (void)state;
    lt_set s = make_set();
    const int ks[2] = {4, 1};
    const long n_out = 100000;
    int32_t *out = malloc((size_t)n_out * sizeof *out);
    int32_t *seq = malloc((size_t)n_out * sizeof *seq);
    int *seen = calloc((size_t)s.n, sizeof *seen);
    assert_non_null(out);
    assert_non_null(seq);
    assert_non_null(seen);
    for (int t = 0; t < 2; t++) {
        int k = ks[t];
        lt_sampler_cfg cfg = {.kind = LT_SAMPLER_CLASS_AWARE, .k_per_class = k};
        if (k == 4)
            cfg.k_per_class = 0;  /* 0 selects the default, 4 */
        assert_int_equal(lt_sampler_epoch(&cfg, 2, 5, LT_STREAM_ORDER, s.labels, s.n, C, out, n_out),
                         LT_OK);
        /* Each visit is k consecutive draws of one class, and each aligned
         * group of C visits (one pass over the shuffled class cycle) holds
         * every class exactly once: so every aligned window of C*k draws has
         * each class exactly k times. */
        long W = (long)C * k;
        for (long w0 = 0; w0 + W <= n_out; w0 += W) {
            int cnt[C] = {0};
            for (long i = w0; i < w0 + W; i++) {
                int y = s.labels[out[i]];
                cnt[y]++;
                if ((i - w0) % k != 0)
                    assert_int_equal(y, s.labels[out[i - 1]]);
            }
            for (int j = 0; j < C; j++)
                assert_int_equal(cnt[j], k);
        }
        /* Per class, the items come from a cycle reshuffled at each wrap:
         * every aligned run of n_j of that class's draws is a permutation of
         * its members. */
        for (int j = 0; j < C; j++) {
            long m = 0;
            for (long i = 0; i < n_out; i++)
                if (s.labels[out[i]] == j)
                    seq[m++] = out[i];
            long nj = s.counts[j];
            assert_true(m >= nj);
            for (long b = 0; b + nj <= m; b += nj) {
                for (long i = b; i < b + nj; i++) {
                    assert_int_equal(seen[seq[i]], 0);
                    seen[seq[i]] = 1;
                }
                for (long i = b; i < b + nj; i++)
                    seen[seq[i]] = 0;
            }
        }
        /* The class visit order is not fixed across cycles (it is reshuffled). */
        int differs = 0;
        for (long v = 0; v < C && !differs; v++)
            differs = s.labels[out[v * k]] != s.labels[out[(C + v) * k]] ||
                      s.labels[out[v * k]] != s.labels[out[(2 * C + v) * k]];
        assert_true(differs);
        lt_sampler_cfg c2 = cfg;
        check_empirical(&s, &c2, 1, n_out, "class-aware");
    }
    free(seen);
    free(seq);
    free(out);
    free(s.labels);
}

static void test_determinism(void **state)
{
    (void)state;
    lt_set s = make_set();
    double w[C];
    for (int j = 0; j < C; j++)
        w[j] = 1.0;
    const long n = s.n;
    int32_t *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    for (int kind = LT_SAMPLER_INSTANCE; kind <= LT_SAMPLER_WEIGHTS; kind++) {
        lt_sampler_cfg cfg = {.kind = (lt_sampler_kind)kind, .k_per_class = 4,
                              .total_epochs = 10, .class_weights = w};
        assert_int_equal(lt_sampler_epoch(&cfg, 3, 11, LT_STREAM_ORDER, s.labels, n, C, a, n), LT_OK);
        assert_int_equal(lt_sampler_epoch(&cfg, 3, 11, LT_STREAM_ORDER, s.labels, n, C, b, n), LT_OK);
        assert_memory_equal(a, b, (size_t)n * sizeof *a);
        assert_int_equal(lt_sampler_epoch(&cfg, 4, 11, LT_STREAM_ORDER, s.labels, n, C, b, n), LT_OK);
        assert_memory_not_equal(a, b, (size_t)n * sizeof *a);
        assert_int_equal(lt_sampler_epoch(&cfg, 3, 12, LT_STREAM_ORDER, s.labels, n, C, b, n), LT_OK);
        assert_memory_not_equal(a, b, (size_t)n * sizeof *a);
        assert_int_equal(lt_sampler_epoch(&cfg, 3, 11, LT_STREAM_ORDER2, s.labels, n, C, b, n), LT_OK);
        assert_memory_not_equal(a, b, (size_t)n * sizeof *a);
    }
    free(a);
    free(b);
    free(s.labels);
}

/* One workspace reused over every kind, growing and shrinking label sets
 * (stale counts or members from the call before would show) and n_out
 * that is not a multiple of n (the instance kind's spare permutation):
 * every list is lt_sampler_epoch's, bit for bit. */
static void test_workspace_reuse(void **state)
{
    (void)state;
    static const long sizes[] = {40, 300, 17, 300, 5};
    static const int classes[] = {3, C, 7, 2, C};
    double w[C];
    for (int j = 0; j < C; j++)
        w[j] = 1.0 + j;
    lt_sampler_ws *ws;
    assert_int_equal(lt_sampler_ws_create(&ws), LT_OK);
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        const long n = sizes[t];
        const int nc = classes[t];
        int32_t *labels = malloc((size_t)n * sizeof *labels);
        assert_non_null(labels);
        for (long i = 0; i < n; i++)
            labels[i] = (int32_t)((i * i + 3 * t) % (unsigned long)nc);
        const long n_out = n + n / 3 + 1;
        int32_t *a = malloc((size_t)n_out * sizeof *a), *b = malloc((size_t)n_out * sizeof *b);
        assert_non_null(a);
        assert_non_null(b);
        for (int kind = LT_SAMPLER_INSTANCE; kind <= LT_SAMPLER_OVER_UNDER; kind++) {
            lt_sampler_cfg cfg = {.kind = (lt_sampler_kind)kind, .k_per_class = 3,
                                  .total_epochs = 6, .class_weights = w};
            assert_int_equal(lt_sampler_epoch(&cfg, 2, 5, LT_STREAM_ORDER, labels, n, nc, a, n_out), LT_OK);
            memset(b, 0xff, (size_t)n_out * sizeof *b);
            assert_int_equal(lt_sampler_epoch_ws(ws, &cfg, 2, 5, LT_STREAM_ORDER, labels, n, nc, b, n_out), LT_OK);
            assert_memory_equal(a, b, (size_t)n_out * sizeof *a);
        }
        free(a);
        free(b);
        free(labels);
    }
    lt_sampler_ws_free(ws);
}

static void test_sampler_errors(void **state)
{
    (void)state;
    int32_t labels[4] = {0, 1, 2, 1};
    int32_t out[8];
    lt_sampler_cfg cfg = {.kind = LT_SAMPLER_CLASS_BALANCED};
    assert_int_equal(lt_sampler_epoch(&cfg, 0, 1, 2, labels, 4, 3, out, 8), LT_OK);
    labels[2] = 3;
    assert_int_equal(lt_sampler_epoch(&cfg, 0, 1, 2, labels, 4, 3, out, 8), LT_EINVAL);
    assert_true(strstr(lt_errmsg(), "label") != NULL);
    cfg.kind = LT_SAMPLER_INSTANCE;
    assert_int_equal(lt_sampler_epoch(&cfg, 0, 1, 2, labels, 4, 3, out, 4), LT_EINVAL);
    labels[2] = 2;
    assert_int_equal(lt_sampler_epoch(&cfg, -1, 1, 2, labels, 4, 3, out, 4), LT_EINVAL);
    assert_int_equal(lt_sampler_epoch(&cfg, 0, 1, 2, labels, 0, 3, out, 4), LT_EINVAL);
    cfg.kind = (lt_sampler_kind)77;
    assert_int_equal(lt_sampler_epoch(&cfg, 0, 1, 2, labels, 4, 3, out, 4), LT_EINVAL);
    cfg.kind = LT_SAMPLER_WEIGHTS;  /* no weights given */
    assert_int_equal(lt_sampler_epoch(&cfg, 0, 1, 2, labels, 4, 3, out, 4), LT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_class_probs_formulas),
        cmocka_unit_test(test_instance_is_permutation),
        cmocka_unit_test(test_iid_empirical),
        cmocka_unit_test(test_class_balanced_uniform_within_class),
        cmocka_unit_test(test_class_aware_structure),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_workspace_reuse),
        cmocka_unit_test(test_sampler_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
