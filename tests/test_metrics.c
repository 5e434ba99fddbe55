/* test_metrics.c — metrics against hand-computed cases: top-1, per-class
 * and shot-group accuracy (incl. an empty few group and the 20/100
 * boundaries), ECE bin edges, macro-F1, AP/mAP and the tie rules. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "lt_metrics.h"

#define TOL 1e-9
#define assert_close(a, b, tol) assert_true(fabs((double)(a) - (double)(b)) <= (tol))

static void test_shot_group_boundaries(void **st)
{
    (void)st;
    assert_int_equal(lt_shot_group(5000), LT_GROUP_MANY);
    assert_int_equal(lt_shot_group(101), LT_GROUP_MANY);
    assert_int_equal(lt_shot_group(100), LT_GROUP_MEDIUM); /* strict rule: 100 is medium */
    assert_int_equal(lt_shot_group(20), LT_GROUP_MEDIUM);  /* and so is 20 */
    assert_int_equal(lt_shot_group(19), LT_GROUP_FEW);
    assert_int_equal(lt_shot_group(0), LT_GROUP_FEW);
}

/* 6 samples, 3 classes:
 *   i0 y0 [.7 .2 .1] -> 0 ok    i1 y0 [.3 .6 .1] -> 1 wrong
 *   i2 y1 [.1 .8 .1] -> 1 ok    i3 y1 [.5 .5 0 ] -> 0 wrong (tie -> lowest index)
 *   i4 y2 [.2 .2 .6] -> 2 ok    i5 y2 [.1 .1 .8] -> 2 ok
 * top1 4/6; per class .5 .5 1; F1: c0 2*1/(2+1+1)=.5, c1 .5, c2 1 -> 2/3.
 * ECE bins (lo,hi] of width 1/15: .7 -> (10/15,11/15] ok; .6f (=0.6000000238)
 * -> (9/15,10/15] x2 (one ok); .8f x2 ok -> (12/15,13/15]; .5 -> (7/15,8/15]
 * wrong. ECE = (1*.3 + 2*|.5-.6| + 2*.2 + 1*.5)/6 = 1.4/6 (floats -> 1e-6). */
static const float P6[18] = {.7f, .2f, .1f, .3f, .6f, .1f, .1f, .8f, .1f,
                             .5f, .5f, 0.f, .2f, .2f, .6f, .1f, .1f, .8f};
static const int32_t Y6[6] = {0, 0, 1, 1, 2, 2};

static void test_top1_per_class_f1_ece(void **st)
{
    (void)st;
    lt_metrics m;
    long train[3] = {500, 50, 5};
    assert_int_equal(lt_metrics_compute(&m, 6, 3, P6, Y6, train, 0), LT_OK);
    assert_int_equal(m.n_classes, 3);
    assert_close(m.top1, 4.0 / 6, TOL);
    assert_int_equal(m.test_count[0], 2);
    assert_int_equal(m.correct[0], 1);
    assert_int_equal(m.correct[2], 2);
    assert_close(m.acc[0], 0.5, TOL);
    assert_close(m.acc[1], 0.5, TOL);
    assert_close(m.acc[2], 1.0, TOL);
    /* one class per group */
    assert_close(m.group_acc[LT_GROUP_MANY], 0.5, TOL);
    assert_close(m.group_acc[LT_GROUP_MEDIUM], 0.5, TOL);
    assert_close(m.group_acc[LT_GROUP_FEW], 1.0, TOL);
    assert_int_equal(m.group_size[0] + m.group_size[1] + m.group_size[2], 3);
    assert_close(m.macro_f1, 2.0 / 3, TOL);
    assert_close(m.ece, 1.4 / 6, 1e-6);
    assert_true(isnan(m.map));
    assert_true(isnan(m.ap[0]));
    lt_metrics_free(&m);
    assert_null(m.acc);
}

static void test_groups_cifar10_lt(void **st)
{
    /* CIFAR-10-LT IR100 counts: 8 many, 2 medium, no few class. One test
     * sample per class, classes 0,1,2 and 8 right: many = 3/8, medium = 1/2. */
    (void)st;
    long train[10] = {5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50};
    float p[100];
    int32_t y[10];
    for (int i = 0; i < 10; i++) {
        y[i] = i;
        int pred = (i <= 2 || i == 8) ? i : (i + 1) % 10;
        for (int c = 0; c < 10; c++) p[i * 10 + c] = (c == pred) ? 0.91f : 0.01f;
    }
    lt_metrics m;
    assert_int_equal(lt_metrics_compute(&m, 10, 10, p, y, train, 1), LT_OK);
    assert_close(m.top1, 0.4, TOL);
    assert_int_equal(m.group_size[LT_GROUP_MANY], 8);
    assert_int_equal(m.group_size[LT_GROUP_MEDIUM], 2);
    assert_int_equal(m.group_size[LT_GROUP_FEW], 0);
    assert_close(m.group_acc[LT_GROUP_MANY], 3.0 / 8, TOL);
    assert_close(m.group_acc[LT_GROUP_MEDIUM], 0.5, TOL);
    assert_true(isnan(m.group_acc[LT_GROUP_FEW]));
    lt_metrics_free(&m);
}

static void test_group_is_mean_of_class_acc(void **st)
{
    /* Class 0 (many): 4 samples, 3 right (.75); class 1 (many): 1 sample,
     * right (1.0). Group = (.75 + 1)/2 = .875, not the pooled 4/5. Class 2
     * (few by training count) is absent from the test set: its accuracy is
     * NAN and the few group is empty. Boundary counts 100 and 20 put
     * classes 3 and 4 in medium (both absent too -> medium empty). */
    (void)st;
    long train[5] = {200, 101, 5, 100, 20};
    int32_t y[5] = {0, 0, 0, 0, 1};
    int32_t pred[5] = {0, 0, 0, 2, 1};
    float p[25];
    for (int i = 0; i < 5; i++)
        for (int c = 0; c < 5; c++) p[i * 5 + c] = (c == pred[i]) ? .6f : .1f;
    lt_metrics m;
    assert_int_equal(lt_metrics_compute(&m, 5, 5, p, y, train, 0), LT_OK);
    assert_close(m.top1, 0.8, TOL);
    assert_close(m.group_acc[LT_GROUP_MANY], 0.875, TOL);
    assert_int_equal(m.group_size[LT_GROUP_MANY], 2);
    assert_true(isnan(m.acc[2]));
    assert_true(isnan(m.group_acc[LT_GROUP_FEW]));
    assert_int_equal(m.group_size[LT_GROUP_FEW], 0);
    assert_true(isnan(m.group_acc[LT_GROUP_MEDIUM]));
    assert_int_equal(m.group_size[LT_GROUP_MEDIUM], 0);
    /* F1 over classes in y_true ∪ y_pred = {0,1,2}: c0 tp3 fn1 -> 6/7,
     * c1 tp1 -> 1, c2 predicted once, never true -> 0. Classes 3, 4 skipped. */
    assert_close(m.macro_f1, (6.0 / 7 + 1.0 + 0.0) / 3, TOL);
    lt_metrics_free(&m);

    /* Same data with the boundary classes in the test set (one right each). */
    int32_t y2[7] = {0, 0, 0, 0, 1, 3, 4};
    float p2[35];
    memcpy(p2, p, sizeof p);
    for (int c = 0; c < 5; c++) {
        p2[25 + c] = (c == 3) ? .6f : .1f;
        p2[30 + c] = (c == 4) ? .6f : .1f;
    }
    assert_int_equal(lt_metrics_compute(&m, 7, 5, p2, y2, train, 0), LT_OK);
    assert_int_equal(m.group_size[LT_GROUP_MEDIUM], 2);
    assert_close(m.group_acc[LT_GROUP_MEDIUM], 1.0, TOL);
    lt_metrics_free(&m);

    /* No training counts: no groups at all. */
    assert_int_equal(lt_metrics_compute(&m, 5, 5, p, y, NULL, 0), LT_OK);
    for (int g = 0; g < 3; g++) {
        assert_true(isnan(m.group_acc[g]));
        assert_int_equal(m.group_size[g], 0);
    }
    lt_metrics_free(&m);
}

static void test_macro_f1_confusion(void **st)
{
    /* y_true [0 0 1 1], y_pred [0 2 1 1] (C = 4, class 3 in neither):
     * c0 tp1 fn1 -> 2/3, c1 tp2 -> 1, c2 fp1 -> 0; class 3 excluded as in
     * sklearn f1_score(average='macro', zero_division=0) -> 5/9. */
    (void)st;
    int32_t y[4] = {0, 0, 1, 1}, pred[4] = {0, 2, 1, 1};
    float p[16];
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 4; c++) p[i * 4 + c] = (c == pred[i]) ? .7f : .1f;
    lt_metrics m;
    assert_int_equal(lt_metrics_compute(&m, 4, 4, p, y, NULL, 0), LT_OK);
    assert_close(m.macro_f1, 5.0 / 9, TOL);
    assert_close(m.top1, 0.75, TOL);
    lt_metrics_free(&m);
}

/* For every interior edge k/15 take the float just above it (correct) and
 * the float at or just below it (wrong): they must fall in different bins,
 * giving ECE = (1 - hi)/2 + lo/2. Had they shared a bin, ECE would be
 * |1/2 - (hi + lo)/2|, which differs by about lo. */
static void test_ece_bin_edges(void **st)
{
    (void)st;
    for (int k = 1; k < 15; k++) {
        double edge = k * (1.0 / 15); /* numpy.linspace(0, 1, 16)[k] */
        float lo = (float)edge;
        if ((double)lo > edge) lo = nextafterf(lo, 0.f);
        float hi = nextafterf(lo, 2.f);
        assert_true((double)lo <= edge && (double)hi > edge);
        float conf[2] = {hi, lo};
        uint8_t ok[2] = {1, 0};
        double want = 0.5 * (1.0 - (double)hi) + 0.5 * (double)lo;
        assert_close(lt_ece(2, conf, ok, 15), want, 1e-12);
    }
    /* The float nearest to 1/15 is 0.0666666701..., above the edge: it sits
     * in the second bin, next to a wrong sample at 0.1 -> separate from a
     * sample at 0.05 in the first bin. */
    float a = 1.0f / 15.0f;
    assert_true((double)a > 1.0 / 15);
    float conf[3] = {a, 0.1f, 0.05f};
    uint8_t ok[3] = {1, 0, 1};
    /* bin 2: {a ok, .1 wrong}: acc .5, conf (a+.1)/2; bin 1: {.05 ok} */
    double want = (2.0 / 3) * fabs(0.5 - ((double)a + (double)0.1f) / 2) + (1.0 / 3) * (1.0 - (double)0.05f);
    assert_close(lt_ece(3, conf, ok, 15), want, 1e-12);
}

static void test_ece_extremes(void **st)
{
    /* 0 goes to the first bin, 1 to the last; .5 and .52 share (7/15, 8/15].
     * ECE = 1/4*|0-0| + 1/4*|1-1| + 2/4*|1/2 - (.5+.52f)/2|. */
    (void)st;
    float conf[4] = {0.0f, 1.0f, 0.5f, 0.52f};
    uint8_t ok[4] = {0, 1, 1, 0};
    double want = 0.5 * fabs(0.5 - (0.5 + (double)0.52f) / 2);
    assert_close(lt_ece(4, conf, ok, 15), want, 1e-12);
    /* all perfectly confident and right -> 0; all conf 1 and wrong -> 1 */
    float one[3] = {1, 1, 1};
    uint8_t yes[3] = {1, 1, 1}, no[3] = {0, 0, 0};
    assert_close(lt_ece(3, one, yes, 15), 0.0, 0);
    assert_close(lt_ece(3, one, no, 15), 1.0, 0);
    /* bad arguments -> NAN */
    assert_true(isnan(lt_ece(0, one, yes, 15)));
    assert_true(isnan(lt_ece(3, one, yes, 0)));
}

static void test_ap_hand_examples(void **st)
{
    /* class 1 scores [.9 .8 .7 .6], labels [1 0 1 0]: positives at ranks 1
     * and 3 -> AP = (1 + 2/3)/2. Class 0 scores [.1 .2 .3 .4]: its
     * positives (samples 1, 3) rank 3rd and 1st -> also (1 + 2/3)/2. */
    (void)st;
    float p[8] = {.1f, .9f, .2f, .8f, .3f, .7f, .4f, .6f};
    int32_t y[4] = {1, 0, 1, 0};
    lt_metrics m;
    assert_int_equal(lt_metrics_compute(&m, 4, 2, p, y, NULL, 1), LT_OK);
    assert_close(m.ap[1], (1.0 + 2.0 / 3) / 2, TOL);
    assert_close(m.ap[0], (1.0 + 2.0 / 3) / 2, TOL);
    assert_close(m.map, (1.0 + 2.0 / 3) / 2, TOL);
    lt_metrics_free(&m);

    /* 3 classes, class 2 has no positive (AP NAN, left out of mAP).
     * class 1 scores [.5 .4 .3 .2], positives samples 1, 2 -> ranks 2, 3 ->
     * (1/2 + 2/3)/2 = 7/12. class 0 scores [.3 .5 .6 .7], positives samples
     * 0, 3 -> ranking s3(pos) s2 s1 s0(pos) -> (1 + 2/4)/2 = 3/4.
     * mAP = (3/4 + 7/12)/2 = 2/3. */
    float q[12] = {.3f, .5f, .2f, .5f, .4f, .1f, .6f, .3f, .1f, .7f, .2f, .1f};
    int32_t z[4] = {0, 1, 1, 0};
    assert_int_equal(lt_metrics_compute(&m, 4, 3, q, z, NULL, 1), LT_OK);
    assert_close(m.ap[1], 7.0 / 12, TOL);
    assert_close(m.ap[0], 0.75, TOL);
    assert_true(isnan(m.ap[2]));
    assert_close(m.map, 2.0 / 3, TOL);
    lt_metrics_free(&m);
}

static void test_ties(void **st)
{
    /* All scores 0.5. Prediction: argmax tie -> class 0 for both samples ->
     * top-1 1/2. AP ranking: equal scores keep lower sample index first, so
     * class 0 (positive = sample 0) ranks its positive first -> AP 1, class 1
     * (positive = sample 1) ranks it second -> AP 1/2; mAP 3/4. */
    (void)st;
    float p[4] = {.5f, .5f, .5f, .5f};
    int32_t y[2] = {0, 1};
    lt_metrics m;
    assert_int_equal(lt_metrics_compute(&m, 2, 2, p, y, NULL, 1), LT_OK);
    assert_close(m.top1, 0.5, TOL);
    assert_close(m.ap[0], 1.0, TOL);
    assert_close(m.ap[1], 0.5, TOL);
    assert_close(m.map, 0.75, TOL);
    /* F1: c0 tp1 fp1 -> 2/3; c1 fn1 -> 0 => 1/3 */
    assert_close(m.macro_f1, 1.0 / 3, TOL);
    lt_metrics_free(&m);
}

/* A one-vs-rest model's AP must rank class c by its own score. Rows
 * normalised to sum 1 can reorder a class's samples: sample 0 has scores
 * (.9 .9), sample 1 (.5 .1); normalised, class 0 gets .5 vs .833 and ranks
 * sample 1 first, by its own sigmoid sample 0 comes first. */
static void test_rank_ap_sigmoid_and_group_means(void **st)
{
    (void)st;
    const float raw[4] = {.9f, .9f, .5f, .1f};
    const float norm[4] = {.5f, .5f, .5f / .6f, .1f / .6f};
    const int32_t y[2] = {0, 1};
    lt_metrics m;
    assert_int_equal(lt_metrics_compute(&m, 2, 2, norm, y, NULL, 1), LT_OK);
    assert_close(m.ap[0], 0.5, TOL);   /* positive sample 0 ranked 2nd */
    assert_int_equal(lt_metrics_rank_ap(&m, 2, 2, raw, y), LT_OK);
    assert_close(m.ap[0], 1.0, TOL);
    assert_close(m.ap[1], 0.5, TOL);   /* .9 > .1 both ways: positive 2nd */
    assert_close(m.map, 0.75, TOL);
    /* top-1 is the normalised matrix's: both samples predict class 0 */
    assert_close(m.top1, 0.5, TOL);
    float bad[4] = {.1f, NAN, .2f, .3f};
    assert_int_equal(lt_metrics_rank_ap(&m, 2, 2, bad, y), LT_ENUM);
    lt_metrics_free(&m);

    /* Group means: 4 classes, groups r c f f; class 3 absent from the test
     * set. Per-class acc: c0 1/2, c1 1, c2 0. */
    const float p4[20] = {1, 0, 0, 0,  0, 1, 0, 0,  0, 1, 0, 0,  0, 1, 0, 0,  1, 0, 0, 0};
    const int32_t y4[5] = {0, 0, 1, 1, 2};
    const uint8_t grp[4] = {0, 1, 2, 2};
    assert_int_equal(lt_metrics_compute(&m, 5, 4, p4, y4, NULL, 1), LT_OK);
    assert_close(m.class_mean_acc, (0.5 + 1.0 + 0.0) / 3, TOL);
    double acc[3], ap[3];
    int size[3];
    assert_int_equal(lt_metrics_group_means(&m, grp, 3, acc, ap, size), LT_OK);
    assert_int_equal(size[0], 1);
    assert_int_equal(size[1], 1);
    assert_int_equal(size[2], 1);   /* class 3 has no test sample */
    assert_close(acc[0], 0.5, TOL);
    assert_close(acc[1], 1.0, TOL);
    assert_close(acc[2], 0.0, TOL);
    assert_close(ap[0], m.ap[0], TOL);
    assert_close(ap[2], m.ap[2], TOL);
    /* AP of class 2: its one positive (sample 4) scores 0 like all others;
     * ties keep sample order, so it ranks 5th -> 1/5 */
    assert_close(m.ap[2], 0.2, TOL);
    const uint8_t only0[4] = {0, 0, 0, 0};
    assert_int_equal(lt_metrics_group_means(&m, only0, 2, acc, NULL, size), LT_OK);
    assert_int_equal(size[1], 0);
    assert_true(isnan(acc[1]));
    lt_metrics_free(&m);
}

static void test_bad_input(void **st)
{
    (void)st;
    lt_metrics m;
    int32_t bad[6] = {0, 0, 1, 3, 2, 2};
    assert_int_equal(lt_metrics_compute(&m, 6, 3, P6, bad, NULL, 0), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "label 3"));
    assert_null(m.acc);
    lt_metrics_free(&m); /* safe after failure */
    float nanp[18];
    memcpy(nanp, P6, sizeof nanp);
    nanp[7] = NAN;
    assert_int_equal(lt_metrics_compute(&m, 6, 3, nanp, Y6, NULL, 1), LT_ENUM);
    assert_int_equal(lt_metrics_compute(&m, 0, 3, P6, Y6, NULL, 0), LT_EINVAL);
    long neg[3] = {10, -1, 3};
    assert_int_equal(lt_metrics_compute(&m, 6, 3, P6, Y6, neg, 0), LT_EINVAL);
    assert_int_equal(lt_metrics_compute(NULL, 6, 3, P6, Y6, NULL, 0), LT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shot_group_boundaries),
        cmocka_unit_test(test_top1_per_class_f1_ece),
        cmocka_unit_test(test_groups_cifar10_lt),
        cmocka_unit_test(test_group_is_mean_of_class_acc),
        cmocka_unit_test(test_macro_f1_confusion),
        cmocka_unit_test(test_ece_bin_edges),
        cmocka_unit_test(test_ece_extremes),
        cmocka_unit_test(test_ap_hand_examples),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_rank_ap_sigmoid_and_group_means),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
