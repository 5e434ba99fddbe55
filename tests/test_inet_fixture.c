/* test_inet_fixture.c — the synthetic ImageNet-LT look-alike (dataset
 * imagenet_lt_fixture, tests/fixtures_inet.c) through the real
 * imagenet_lt reader, on a small variant (10 classes, 55 images, 32 px) so
 * it runs in seconds:
 *   - the generator's split lists are ImageNet-LT's format, and the reader
 *     (basename matching into the nested train tar and the flat val tar)
 *     gives every image its list label, in list order, with the Zipf counts;
 *   - every decoded image is, byte for byte, the one the generator rendered
 *     and encoded for that line: train, the official-val split and test;
 *   - the generator is deterministic (two writes, the same bytes: the
 *     registry pins the default fixture's sha256);
 *   - the default shape is the registry's and the protocol's: 2,701 train,
 *     1,000 test images, OLTR groups 3 / 13 / 984.
 * The full-size fixture (4,701 JPEGs at 224 px) is written by `make
 * imagenet-lt-fixture`, not here; its pins are checked when it is built. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures_img.h"
#include "fixtures_inet.h"
#include "lt_datasets.h"
#include "lt_imagesets.h"

static const fx_inet_spec SMALL = {.classes = 10, .head = 12, .val_per_class = 1, .test_per_class = 1, .side = 32,
                                   .seed = 0};

/* mean |planar image - rendered interleaved pixels| */
static double mad(const uint8_t *planar, const uint8_t *rgb, int side) {
    double s = 0;
    const int hw = side * side;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < hw; i++) s += fabs((double)planar[c * hw + i] - rgb[i * 3 + c]);
    return s / (3.0 * hw);
}

/* Image i of d is (k, index): byte for byte the planar pixels of that
 * image as the generator renders and encodes it, decoded on its own (so
 * the reader matched the right archive member to the right list line,
 * through the nested tar); and that JPEG is near the rendered pixels (the
 * generator's content survives encoding: mean error below 32 levels, where
 * +-8 of noise and 2-px stripes at 32 px with 4:2:0 chroma cost 8-22). */
static double g_worst;
static void check_image(const lt_dataset *d, long i, int k, int index, uint8_t *pix) {
    const size_t per = (size_t)3 * SMALL.side * SMALL.side;
    uint8_t *ref = malloc(per), *jpg;
    size_t len;
    assert_non_null(ref);
    fx_inet_render(&SMALL, k, index, pix);
    assert_int_equal(fx_jpeg_encode(pix, SMALL.side, SMALL.side, 3, FX_INET_JPEG_QUALITY, &jpg, &len), 0);
    assert_int_equal(lt_jpeg_to_planar("reference", jpg, len, SMALL.side, ref), LT_OK);
    free(jpg);
    if (memcmp(d->pixels + (size_t)i * per, ref, per))
        fail_msg("image %ld (label %d) is not image #%d of class %d", i, d->labels[i], index, k);
    const double e = mad(ref, pix, SMALL.side);
    if (e > g_worst) g_worst = e;
    if (!(e < 32.0)) fail_msg("image #%d of class %d: JPEG mean error %.2f", index, k, e);
    free(ref);
}

static void test_small_fixture_round_trip(void **state) {
    (void)state;
    char data[400], raw[500];
    snprintf(data, sizeof data, "%s/data", fx_scratch);
    snprintf(raw, sizeof raw, "%s/imagenet_lt_fixture/raw", data);
    assert_int_equal(fx_inet_fixture_write(raw, &SMALL, NULL), 0);

    /* The list format: "train/<wnid>/<wnid>_<i>.JPEG <label>" by label. */
    char p[700], *txt;
    size_t len;
    snprintf(p, sizeof p, "%s/ImageNet_LT_train.txt", raw);
    assert_int_equal(fx_read_file(p, &txt, &len), 0);
    assert_true(strncmp(txt, "train/n90000000/n90000000_1.JPEG 0\n", 35) == 0);
    free(txt);
    snprintf(p, sizeof p, "%s/ImageNet_LT_test.txt", raw);
    assert_int_equal(fx_read_file(p, &txt, &len), 0);
    assert_true(strncmp(txt, "val/n90000000/ILSVRC2012_val_00000001.JPEG 0\n", 45) == 0);
    free(txt);

    /* the registry's entry with this variant's shape and no pins */
    lt_ds_def d = *lt_ds_find("imagenet_lt_fixture");
    d.n_classes = SMALL.classes;
    d.n_train = fx_inet_train_total(&SMALL);
    d.n_test = SMALL.classes;
    for (int i = 0; i < d.n_files; i++) d.files[i].sha256 = NULL;
    lt_ds_opts o;
    lt_ds_opts_default(&o);
    o.data_dir = data;
    o.scale = "ci";   /* decoded at 32 px: the JPEGs' own size */
    o.quiet = 1;
    o.fetch = 1;
    o.use_system = 0;
    lt_dataset tr, te, va;
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    assert_int_equal(lt_ds_open(&d, &o, &tr, &te, &b), LT_OK);
    assert_int_equal(tr.n, 35);
    assert_int_equal(te.n, 10);
    assert_int_equal(tr.c, 3);
    assert_int_equal(tr.h, 32);
    assert_int_equal(b.n_classes, 10);
    for (int k = 0; k < 10; k++) assert_int_equal(b.counts[k], fx_inet_train_count(&SMALL, k));
    assert_int_equal(b.counts[0], 12);
    assert_int_equal(b.counts[9], 1);

    uint8_t *pix = malloc((size_t)3 * 32 * 32);
    assert_non_null(pix);
    long i = 0;
    for (int k = 0; k < 10; k++)
        for (int j = 0; j < fx_inet_train_count(&SMALL, k); j++, i++) {
            assert_int_equal(tr.labels[i], k);
            check_image(&tr, i, k, j, pix);
        }
    for (int k = 0; k < 10; k++) {
        assert_int_equal(te.labels[k], k);
        /* test image j of class k is its index train + val + j */
        check_image(&te, k, k, fx_inet_train_count(&SMALL, k) + SMALL.val_per_class, pix);
    }

    /* the official-val split: the val list's images out of the train tar */
    lt_ds_val_info vi;
    memset(&vi, 0, sizeof vi);
    assert_int_equal(lt_ds_open_val(&d, &o, &va, &vi), LT_OK);
    assert_int_equal(va.n, 10);
    for (int k = 0; k < 10; k++) {
        assert_int_equal(va.labels[k], k);
        check_image(&va, k, k, fx_inet_train_count(&SMALL, k), pix);
    }
    print_message("rendered vs its JPEG: worst mean |error| %.2f levels\n", g_worst);
    lt_ds_val_info_free(&vi);
    lt_dataset_free(&va);
    free(pix);
    lt_dataset_free(&tr);
    lt_dataset_free(&te);
    lt_ds_built_free(&b);

    /* Deterministic: a second write gives the same bytes. */
    char raw2[500];
    snprintf(raw2, sizeof raw2, "%s/again", fx_scratch);
    assert_int_equal(fx_inet_fixture_write(raw2, &SMALL, NULL), 0);
    const char *files[5] = {"ImageNet_LT_train.txt", "ImageNet_LT_val.txt", "ImageNet_LT_test.txt",
                            "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"};
    for (int f = 0; f < 5; f++) {
        char a[700], c[700], *x, *y;
        size_t nx, ny;
        snprintf(a, sizeof a, "%s/%s", raw, files[f]);
        snprintf(c, sizeof c, "%s/%s", raw2, files[f]);
        assert_int_equal(fx_read_file(a, &x, &nx), 0);
        assert_int_equal(fx_read_file(c, &y, &ny), 0);
        if (nx != ny || memcmp(x, y, nx)) fail_msg("%s differs between two writes", files[f]);
        free(x);
        free(y);
    }
}

/* The default shape is what the registry and the protocol say. */
static void test_default_shape(void **state) {
    (void)state;
    fx_inet_spec s;
    fx_inet_spec_default(&s);
    const lt_ds_def *d = lt_ds_find("imagenet_lt_fixture");
    assert_non_null(d);
    assert_int_equal(d->n_classes, s.classes);
    assert_int_equal(d->n_train, fx_inet_train_total(&s));
    assert_int_equal(d->n_train, 2701);
    assert_int_equal(d->n_test, (long)s.classes * s.test_per_class);
    assert_int_equal(d->side[2], s.side);
    assert_non_null(d->val_list);
    for (int i = 0; i < d->n_files; i++) assert_non_null(d->files[i].sha256);   /* pinned */
    long *counts = malloc(sizeof(long) * (size_t)s.classes);
    assert_non_null(counts);
    for (int k = 0; k < s.classes; k++) counts[k] = fx_inet_train_count(&s, k);
    assert_int_equal(counts[0], 320);
    assert_int_equal(counts[1], 160);
    assert_int_equal(counts[2], 107);
    assert_int_equal(counts[999], 1);
    int many, medium, few;
    lt_shot_groups(counts, s.classes, &many, &medium, &few);
    assert_int_equal(many, 3);
    assert_int_equal(medium, 13);
    assert_int_equal(few, 984);
    free(counts);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_small_fixture_round_trip, fx_scratch_setup, fx_scratch_teardown),
        cmocka_unit_test(test_default_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
