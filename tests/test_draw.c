/* test_draw.c — multi-view batches and extra batches from any sampler:
 *   - the loader's k views: view 0 is the one-view batch bit for bit, the
 *     other views are differently augmented copies of the same samples
 *     (labels and ids repeated per view);
 *   - lt_drawer, i.i.d. samplers: class frequencies against the target
 *     (class weights, class-balanced, square root) over many draws, and
 *     per-image frequencies (class-balanced, instance-balanced, BALMS's
 *     class weights, square root; progressive at several epochs); the
 *     drawn rows are the images the ids name; the same rng gives the same
 *     batch; k views differ;
 *   - lt_drawer, list samplers: the slots are the sampler's epoch list,
 *     continuing into the next epoch; class-aware keeps k per class visit;
 *   - bad requests are refused. */
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

enum { C = 4, S = 8 };   /* classes, image side */
static const long counts[C] = {40, 20, 8, 2};

/* Image i: pixel 0 = i (so a row can be traced back to its image), the rest
 * a pattern; labels interleaved. */
static void make_set(lt_dataset *d) {
    long n = 0;
    for (int c = 0; c < C; c++) n += counts[c];
    assert_int_equal(lt_dataset_alloc(d, n, 1, S, S, C), LT_OK);
    long k[C] = {0};
    for (long i = 0; i < n; i++) {
        int c = (int)(i % C);
        while (k[c] >= counts[c]) c = (c + 1) % C;
        k[c]++;
        d->labels[i] = c;
        d->pixels[i * S * S] = (uint8_t)i;
        for (int p = 1; p < S * S; p++) d->pixels[i * S * S + p] = (uint8_t)((i * 31 + p * 7) % 251);
    }
}

static lt_aug crop_flip(void) {
    lt_aug a;
    memset(&a, 0, sizeof a);
    a.out_h = a.out_w = S;
    a.pad = 2;
    a.random_crop = 1;
    a.hflip = 1;
    for (int k = 0; k < 3; k++) a.std[k] = 1;
    return a;
}

static lt_aug plain(void) {
    lt_aug a;
    memset(&a, 0, sizeof a);
    a.out_h = a.out_w = S;
    for (int k = 0; k < 3; k++) a.std[k] = 1;
    return a;
}

/* ---- loader views ---------------------------------------------------------------- */

static void test_loader_views(void **unused) {
    (void)unused;
    lt_dataset d;
    make_set(&d);
    const lt_aug a = crop_flip();
    int32_t idx[70];
    for (int i = 0; i < 70; i++) idx[i] = (int32_t)((i * 13) % d.n);
    lt_loader *one, *three;
    assert_int_equal(lt_loader_open(&one, &d, &a, 16, 0, 1, 5, LT_STREAM_AUG), LT_OK);
    assert_int_equal(lt_loader_open(&three, &d, &a, 16, 0, 1, 5, LT_STREAM_AUG), LT_OK);
    assert_int_equal(lt_loader_set_views(three, 3), LT_OK);
    assert_int_equal(lt_loader_start(one, 2, idx, 70, 0), LT_OK);
    assert_int_equal(lt_loader_start(three, 2, idx, 70, 0), LT_OK);
    const size_t img = S * S;
    int differ = 0;
    for (;;) {
        const float *x1, *x3;
        const int32_t *y1, *y3, *i1, *i3;
        int n1, n3;
        assert_int_equal(lt_loader_next(one, &x1, &y1, &i1, &n1), LT_OK);
        assert_int_equal(lt_loader_next(three, &x3, &y3, &i3, &n3), LT_OK);
        assert_int_equal(n1, n3);
        if (!n1) break;
        /* view 0 is exactly the one-view batch */
        assert_memory_equal(x3, x1, (size_t)n1 * img * sizeof(float));
        for (int v = 0; v < 3; v++)
            for (int s = 0; s < n1; s++) {
                assert_int_equal(y3[v * n1 + s], y1[s]);
                assert_int_equal(i3[v * n1 + s], i1[s]);
            }
        for (size_t i = 0; i < 3 * (size_t)n1 * img; i++)   /* a NaN view would count as differing */
            if (!isfinite(x3[i])) fail_msg("three-view batch float %zu is %g", i, x3[i]);
        for (int s = 0; s < n1; s++)
            differ += memcmp(x3 + (size_t)s * img, x3 + ((size_t)n1 + s) * img, img * sizeof(float)) != 0 ||
                      memcmp(x3 + ((size_t)n1 + s) * img, x3 + ((size_t)2 * n1 + s) * img, img * sizeof(float)) != 0;
    }
    /* views of a sample are differently augmented (25 crops x 2 flips: a
     * few coincide by chance) */
    assert_true(differ > 60);
    lt_loader_close(one);
    lt_loader_close(three);
    assert_int_not_equal(lt_loader_set_views(NULL, 2), LT_OK);
    lt_dataset_free(&d);
}

/* ---- drawer: i.i.d. ------------------------------------------------------------------ */

static void iid_freq(lt_drawer *dr, const lt_sampler_cfg *sc, const double *want) {
    enum { B = 32, R = 3000 };
    float x[B * S * S];
    int32_t y[B], id[B];
    double f[C] = {0};
    lt_rng base;
    lt_rng_init(&base, 1, LT_STREAM_METHOD + 7);
    for (int r = 0; r < R; r++) {
        lt_rng rr;
        lt_rng_derive(&rr, &base, (uint64_t)r, 0);
        lt_draw_req q = {.sampler = *sc, .n = B, .views = 1, .augment = 0, .rng = &rr};
        assert_int_equal(lt_drawer_draw(dr, &q, x, y, id), LT_OK);
        for (int s = 0; s < B; s++) f[y[s]]++;
    }
    for (int c = 0; c < C; c++) assert_float_equal(f[c] / (B * R), want[c], 0.01);
}

/* Per-image frequencies of R batches of B i.i.d. draws (epoch `epoch`)
 * against p_img[i], the target probability of image i: each image within
 * 5 binomial standard deviations (as test_sampler's
 * test_class_balanced_uniform_within_class), and Pearson's chi-square over
 * the images with p_img > 0 below df + 5 sqrt(2 df); an image of target 0
 * is never drawn. Catches a draw within the class that is not uniform (the
 * first member always, one member never), which class frequencies alone
 * do not. Also checks the class frequencies: p_class[c] = sum of p_img. */
static void iid_per_image(lt_drawer *dr, const lt_dataset *d, const lt_sampler_cfg *sc, int epoch,
                          const double *p_img, const char *what) {
    enum { B = 32, R = 3000 };
    const long n_draws = (long)B * R;
    float x[B * S * S];
    int32_t y[B], id[B];
    long *hits = calloc((size_t)d->n, sizeof *hits), ch[C] = {0};
    assert_non_null(hits);
    lt_rng base;
    lt_rng_init(&base, 2, LT_STREAM_METHOD + 11);
    for (int r = 0; r < R; r++) {
        lt_rng rr;
        lt_rng_derive(&rr, &base, (uint64_t)r, 0);
        lt_draw_req q = {.sampler = *sc, .n = B, .views = 1, .augment = 0, .rng = &rr, .epoch = epoch};
        assert_int_equal(lt_drawer_draw(dr, &q, x, y, id), LT_OK);
        for (int s = 0; s < B; s++) {
            assert_true(id[s] >= 0 && id[s] < d->n);
            assert_int_equal(y[s], d->labels[id[s]]);
            hits[id[s]]++;
            ch[y[s]]++;
        }
    }
    double chi2 = 0, pc[C] = {0};
    int df = -1;
    for (long i = 0; i < d->n; i++) {
        const double p = p_img[i], e = p * n_draws;
        pc[d->labels[i]] += p;
        if (!(p > 0)) {
            if (hits[i]) fail_msg("%s: image %ld of target 0 drawn %ld times", what, i, hits[i]);
            continue;
        }
        const double sd = sqrt(p * (1 - p) / n_draws), ph = (double)hits[i] / n_draws;
        if (!(fabs(ph - p) <= 5 * sd))
            fail_msg("%s: image %ld (class %d): frequency %.5f vs target %.5f (tolerance %.5f)", what, i,
                     d->labels[i], ph, p, 5 * sd);
        chi2 += (hits[i] - e) * (hits[i] - e) / e;
        df++;
    }
    const double lim = df + 5 * sqrt(2.0 * df);
    print_message("%s: per-image chi-square %.1f (df %d, limit %.1f)\n", what, chi2, df, lim);
    if (!(chi2 <= lim)) fail_msg("%s: per-image chi-square %.1f over %.1f (df %d)", what, chi2, lim, df);
    for (int c = 0; c < C; c++) {
        const double sd = sqrt(pc[c] * (1 - pc[c]) / n_draws), ph = (double)ch[c] / n_draws;
        if (!(fabs(ph - pc[c]) <= 5 * sd + 1e-12))
            fail_msg("%s: class %d: frequency %.5f vs target %.5f (tolerance %.5f)", what, c, ph, pc[c], 5 * sd);
    }
    free(hits);
}

/* p_img[i] = p_class[y_i] / n_{y_i}: a class from its weight, then a uniform member */
static void per_image_target(const lt_dataset *d, const double *p_class, double *p_img) {
    for (long i = 0; i < d->n; i++) p_img[i] = p_class[d->labels[i]] / (double)counts[d->labels[i]];
}

/* Per image: class-balanced (1 / (C n_y)), instance-balanced (1 / N; class
 * weights n_c, as BALMS's q_c = 1), BALMS's weights n_c q_c (q_y / sum_c n_c
 * q_c), square root. */
static void test_drawer_iid_per_image(void **unused) {
    (void)unused;
    lt_dataset d;
    make_set(&d);
    const lt_aug a = plain();
    lt_drawer *dr;
    assert_int_equal(lt_drawer_create(&dr, &d, &a, 3), LT_OK);
    double *p = malloc((size_t)d.n * sizeof *p), pc[C];
    assert_non_null(p);

    lt_sampler_cfg cb = {.kind = LT_SAMPLER_CLASS_BALANCED};
    for (long i = 0; i < d.n; i++) p[i] = 1.0 / (C * (double)counts[d.labels[i]]);
    iid_per_image(dr, &d, &cb, 0, p, "class-balanced");

    double w_inst[C];
    for (int c = 0; c < C; c++) w_inst[c] = (double)counts[c];
    lt_sampler_cfg ib = {.kind = LT_SAMPLER_WEIGHTS, .class_weights = w_inst};
    for (long i = 0; i < d.n; i++) p[i] = 1.0 / (double)d.n;
    iid_per_image(dr, &d, &ib, 0, p, "instance-balanced (weights n_c)");

    /* BALMS: class weights n_c q_c, each image of class c drawn with
     * probability proportional to q_c = weight(c) / n_c */
    const double q[C] = {0.2, 0.9, 0.5, 1.0};
    double w_balms[C], zq = 0;
    for (int c = 0; c < C; c++) w_balms[c] = counts[c] * q[c];
    for (long i = 0; i < d.n; i++) zq += q[d.labels[i]];
    lt_sampler_cfg bw = {.kind = LT_SAMPLER_WEIGHTS, .class_weights = w_balms};
    for (long i = 0; i < d.n; i++) p[i] = q[d.labels[i]] / zq;
    iid_per_image(dr, &d, &bw, 0, p, "BALMS weights n_c q_c");

    lt_sampler_cfg sq = {.kind = LT_SAMPLER_SQRT};
    double z = 0;
    for (int c = 0; c < C; c++) z += sqrt((double)counts[c]);
    for (int c = 0; c < C; c++) pc[c] = sqrt((double)counts[c]) / z;
    per_image_target(&d, pc, p);
    iid_per_image(dr, &d, &sq, 0, p, "square root");

    free(p);
    lt_drawer_free(dr);
    lt_dataset_free(&d);
}

/* Progressive (decoupling's ClassPrioritySampler, lt_sampler.c): in epoch e
 * of E, p_c = (1 - l) n_c / N + l / C with l = e / (E - 1), clamped to 1
 * past the last epoch: the request's epoch moves the class frequencies from
 * instance- to class-balanced. Checked per image (p_c / n_c) at the first,
 * a middle, the last and a later epoch. */
static void test_drawer_progressive(void **unused) {
    (void)unused;
    lt_dataset d;
    make_set(&d);
    const lt_aug a = plain();
    lt_drawer *dr;
    assert_int_equal(lt_drawer_create(&dr, &d, &a, 3), LT_OK);
    double *p = malloc((size_t)d.n * sizeof *p), pc[C];
    assert_non_null(p);
    enum { E = 5 };
    lt_sampler_cfg pr = {.kind = LT_SAMPLER_PROGRESSIVE, .total_epochs = E};
    const int epochs[4] = {0, 1, E - 1, E + 3};
    const double lams[4] = {0.0, 0.25, 1.0, 1.0};
    for (int t = 0; t < 4; t++) {
        for (int c = 0; c < C; c++) pc[c] = (1 - lams[t]) * counts[c] / (double)d.n + lams[t] / C;
        per_image_target(&d, pc, p);
        char what[48];
        snprintf(what, sizeof what, "progressive E=%d epoch %d", E, epochs[t]);
        iid_per_image(dr, &d, &pr, epochs[t], p, what);
    }
    /* total_epochs 0 is refused */
    lt_sampler_cfg bad = {.kind = LT_SAMPLER_PROGRESSIVE};
    float x[S * S];
    int32_t y[1], id[1];
    lt_rng r;
    lt_rng_init(&r, 1, 1);
    lt_draw_req q = {.sampler = bad, .n = 1, .views = 1, .rng = &r};
    assert_int_not_equal(lt_drawer_draw(dr, &q, x, y, id), LT_OK);
    free(p);
    lt_drawer_free(dr);
    lt_dataset_free(&d);
}

static void test_drawer_iid(void **unused) {
    (void)unused;
    lt_dataset d;
    make_set(&d);
    const lt_aug a = plain();
    lt_drawer *dr;
    assert_int_equal(lt_drawer_create(&dr, &d, &a, 3), LT_OK);
    /* class weights (BALMS's n_c q_c) */
    const double w[C] = {4.0, 1.0, 2.0, 3.0};
    lt_sampler_cfg sc = {.kind = LT_SAMPLER_WEIGHTS, .class_weights = w};
    const double ww[C] = {0.4, 0.1, 0.2, 0.3};
    iid_freq(dr, &sc, ww);
    /* class-balanced */
    lt_sampler_cfg cb = {.kind = LT_SAMPLER_CLASS_BALANCED};
    const double wb[C] = {0.25, 0.25, 0.25, 0.25};
    iid_freq(dr, &cb, wb);
    /* square root */
    lt_sampler_cfg sq = {.kind = LT_SAMPLER_SQRT};
    double ws[C], z = 0;
    for (int c = 0; c < C; c++) z += sqrt((double)counts[c]);
    for (int c = 0; c < C; c++) ws[c] = sqrt((double)counts[c]) / z;
    iid_freq(dr, &sq, ws);

    /* rows are the images the ids name; same rng, same batch; views differ */
    enum { B = 10 };
    lt_aug ca = crop_flip();
    lt_drawer *da;
    assert_int_equal(lt_drawer_create(&da, &d, &ca, 3), LT_OK);
    float x1[2 * B * S * S], x2[2 * B * S * S];
    int32_t y1[2 * B], y2[2 * B], i1[2 * B], i2[2 * B];
    lt_rng r1, r2;
    lt_rng_init(&r1, 9, LT_STREAM_METHOD + 1);
    r2 = r1;
    lt_draw_req q = {.sampler = cb, .n = B, .views = 2, .augment = 1, .rng = &r1};
    assert_int_equal(lt_drawer_draw(da, &q, x1, y1, i1), LT_OK);
    q.rng = &r2;
    assert_int_equal(lt_drawer_draw(da, &q, x2, y2, i2), LT_OK);
    assert_memory_equal(x1, x2, sizeof x1);
    assert_memory_equal(i1, i2, sizeof i1);
    for (size_t i = 0; i < sizeof x1 / sizeof x1[0]; i++)   /* a NaN view would count as differing */
        if (!isfinite(x1[i])) fail_msg("drawn float %zu is %g", i, x1[i]);
    int differ = 0;
    for (int s = 0; s < B; s++) {
        assert_int_equal(y1[s], d.labels[i1[s]]);
        assert_int_equal(i1[B + s], i1[s]);
        assert_int_equal(y1[B + s], y1[s]);
        differ += memcmp(x1 + (size_t)s * S * S, x1 + (size_t)(B + s) * S * S, S * S * sizeof(float)) != 0;
    }
    assert_true(differ >= B / 2);
    /* without augmentation a row is the image's eval transform */
    q.augment = 0;
    q.views = 1;
    q.rng = &r1;
    assert_int_equal(lt_drawer_draw(dr, &q, x1, y1, i1), LT_OK);
    for (int s = 0; s < B; s++) {
        float ref[S * S];
        lt_aug_eval(&a, 1, S, S, d.pixels + (size_t)i1[s] * S * S, ref);
        assert_memory_equal(x1 + (size_t)s * S * S, ref, sizeof ref);
    }
    /* refusals */
    q.rng = NULL;
    assert_int_not_equal(lt_drawer_draw(dr, &q, x1, y1, i1), LT_OK);
    q.rng = &r1;
    q.n = 0;
    assert_int_not_equal(lt_drawer_draw(dr, &q, x1, y1, i1), LT_OK);
    const double zero[C] = {0, 0, 0, 0};
    lt_draw_req qz = {.sampler = {.kind = LT_SAMPLER_WEIGHTS, .class_weights = zero}, .n = 2, .views = 1, .rng = &r1};
    assert_int_not_equal(lt_drawer_draw(dr, &qz, x1, y1, i1), LT_OK);
    lt_drawer_free(da);
    lt_drawer_free(dr);
    lt_dataset_free(&d);
}

/* ---- drawer: list samplers ------------------------------------------------------------- */

static void test_drawer_lists(void **unused) {
    (void)unused;
    lt_dataset d;
    make_set(&d);
    const lt_aug a = plain();
    lt_drawer *dr;
    assert_int_equal(lt_drawer_create(&dr, &d, &a, 4), LT_OK);
    const long N = d.n;
    /* class-aware, 2 per class visit: the slots are the epoch lists */
    lt_sampler_cfg ca = {.kind = LT_SAMPLER_CLASS_AWARE, .k_per_class = 2};
    int32_t *l0 = malloc((size_t)N * sizeof *l0), *l1 = malloc((size_t)N * sizeof *l1);
    const uint64_t stream = LT_STREAM_METHOD + 3;
    assert_int_equal(lt_sampler_epoch(&ca, 5, 4, stream, d.labels, N, C, l0, N), LT_OK);
    assert_int_equal(lt_sampler_epoch(&ca, 6, 4, stream, d.labels, N, C, l1, N), LT_OK);
    enum { B = 16 };
    float x[B * S * S];
    int32_t y[B], id[B];
    const long nb = (N + B - 1) / B + 1;   /* past the end of epoch 5 */
    for (long b = 0; b < nb; b++) {
        lt_draw_req q = {.sampler = ca, .n = B, .views = 1, .augment = 0, .stream = stream, .epoch = 5, .batch = b};
        assert_int_equal(lt_drawer_draw(dr, &q, x, y, id), LT_OK);
        for (int s = 0; s < B; s++) {
            long p = b * B + s;
            int32_t want = p < N ? l0[p] : l1[p - N];
            assert_int_equal(id[s], want);
            assert_int_equal(y[s], d.labels[want]);
        }
        /* two consecutive images of a class per visit */
        for (int s = 0; s + 1 < B && b == 0; s += 2) assert_int_equal(y[s], y[s + 1]);
    }
    /* an instance permutation covers every image once per epoch */
    lt_sampler_cfg in = {.kind = LT_SAMPLER_INSTANCE};
    int *seen = calloc((size_t)N, sizeof *seen);
    for (long b = 0; b * B < N; b++) {
        lt_draw_req q = {.sampler = in, .n = B, .views = 1, .augment = 0, .stream = stream + 1, .epoch = 0, .batch = b};
        assert_int_equal(lt_drawer_draw(dr, &q, x, y, id), LT_OK);
        for (int s = 0; s < B && b * B + s < N; s++) seen[id[s]]++;
    }
    for (long i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    lt_draw_req bad = {.sampler = in, .n = B, .views = 1, .epoch = -1};
    assert_int_not_equal(lt_drawer_draw(dr, &bad, x, y, id), LT_OK);
    free(seen);
    free(l0);
    free(l1);
    lt_drawer_free(dr);
    lt_dataset_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loader_views),
        cmocka_unit_test(test_drawer_iid),
        cmocka_unit_test(test_drawer_iid_per_image),
        cmocka_unit_test(test_drawer_progressive),
        cmocka_unit_test(test_drawer_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
