/* test_loader.c — augmentation semantics (normalisation, pad+crop, flip,
 * random-resized crop, colour jitter, eval geometry), in-memory datasets,
 * and the background batch loader: order, content, resume, determinism,
 * drop_last and shutdown. */
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
#include <time.h>

#include "lt_data.h"

/* ---- augmentation ---------------------------------------------------------- */

static lt_aug plain_aug(int oh, int ow, float mean, float std)
{
    lt_aug a;
    memset(&a, 0, sizeof a);
    a.out_h = oh;
    a.out_w = ow;
    for (int k = 0; k < 3; k++) {
        a.mean[k] = mean;
        a.std[k] = std;
    }
    return a;
}

static void test_aug_normalise_exact(void **state)
{
    (void)state;
    /* Hand example: mean 0.5, std 0.25 -> 0 -> -2, 255 -> 2, 51 -> -1.2, 153 -> 0.4. */
    const uint8_t img[4] = {0, 255, 51, 153};
    const double hand[4] = {-2.0, 2.0, -1.2, 0.4};
    float out[4];
    lt_aug a = plain_aug(2, 2, 0.5f, 0.25f);
    lt_aug_eval(&a, 1, 2, 2, img, out);
    for (int i = 0; i < 4; i++) {
        assert_float_equal(out[i], hand[i], 1e-6);
        assert_true(out[i] == (img[i] / 255.0f - 0.5f) / 0.25f);  /* the documented float formula */
    }
    /* Per-channel statistics (Fashion-MNIST / CIFAR style), RGB planar. */
    lt_aug b = plain_aug(1, 2, 0, 1);
    const float m[3] = {0.4914f, 0.4822f, 0.4465f}, s[3] = {0.2023f, 0.1994f, 0.2010f};
    memcpy(b.mean, m, sizeof m);
    memcpy(b.std, s, sizeof s);
    const uint8_t rgb[6] = {10, 20, 30, 40, 250, 0};
    float o3[6];
    lt_aug_eval(&b, 3, 1, 2, rgb, o3);
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < 2; i++)
            assert_true(o3[ch * 2 + i] == (rgb[ch * 2 + i] / 255.0f - m[ch]) / s[ch]);
    /* The training path without random parts is the same transform. */
    lt_rng r;
    lt_rng_init(&r, 1, LT_STREAM_AUG);
    float t3[6];
    lt_aug_train(&b, 3, 1, 2, rgb, &r, t3);
    assert_memory_equal(o3, t3, sizeof o3);
    /* A zero std (unset) means "no scaling", not a division by zero. */
    lt_aug z = plain_aug(2, 2, 0, 0);
    lt_aug_eval(&z, 1, 2, 2, img, out);
    assert_true(out[1] == 1.0f && out[0] == 0.0f);
}

/* 28x28 test image whose pixels are all distinct non-zero row patterns. */
static void make_28(uint8_t *img)
{
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++)
            img[y * 28 + x] = (uint8_t)(1 + (y * 29 + x * 3) % 254);
}

/* Which window (dy, dx, flip) of the 2-padded image out equals; -1 if none. */
static int find_window(const uint8_t *img, const float *out, float mean, float std, int *flip)
{
    float zero = (0.0f / 255.0f - mean) / std;
    for (int f = 0; f < 2; f++)
        for (int dy = 0; dy <= 4; dy++)
            for (int dx = 0; dx <= 4; dx++) {
                int ok = 1;
                for (int y = 0; y < 28 && ok; y++)
                    for (int x = 0; x < 28 && ok; x++) {
                        int xs = f ? 27 - x : x;  /* flip is applied after the crop */
                        int sy = y + dy - 2, sx = xs + dx - 2;
                        float want = (sy < 0 || sy >= 28 || sx < 0 || sx >= 28)
                                         ? zero
                                         : (img[sy * 28 + sx] / 255.0f - mean) / std;
                        ok = out[y * 28 + x] == want;
                    }
                if (ok) {
                    *flip = f;
                    return dy * 5 + dx;
                }
            }
    return -1;
}

static void test_aug_pad_crop_flip(void **state)
{
    (void)state;
    uint8_t img[28 * 28];
    make_28(img);
    lt_aug a = plain_aug(28, 28, 0.2860f, 0.3530f);
    a.pad = 2;
    a.random_crop = 1;
    lt_rng base;
    lt_rng_init(&base, 5, LT_STREAM_AUG);
    float out[28 * 28];
    enum { N = 2000 };
    long off_hist[25] = {0}, flips = 0;
    for (int flip_on = 0; flip_on < 2; flip_on++) {
        a.hflip = flip_on;
        for (int i = 0; i < N; i++) {
            lt_rng r;
            lt_rng_derive(&r, &base, (uint64_t)flip_on, (uint64_t)i);
            lt_aug_train(&a, 1, 28, 28, img, &r, out);
            int f = 0, w = find_window(img, out, a.mean[0], a.std[0], &f);
            assert_true(w >= 0);
            if (!flip_on) {
                assert_int_equal(f, 0);
                off_hist[w]++;
            } else {
                flips += f;
            }
        }
    }
    /* Offsets uniform over the 25 positions of [0,4]^2; flips ~ Bernoulli(0.5). */
    double p = 1.0 / 25, sd = sqrt(N * p * (1 - p));
    for (int k = 0; k < 25; k++)
        assert_true(fabs(off_hist[k] - N * p) < 5 * sd);
    assert_true(fabs(flips - N * 0.5) < 5 * sqrt(N * 0.25));
    print_message("note: pad-2 crop offsets all 25 seen, flip rate %.3f over %d draws\n",
                  (double)flips / N, N);
}

static void image_range(const uint8_t *img, size_t n, int *lo, int *hi)
{
    *lo = 255;
    *hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (img[i] < *lo)
            *lo = img[i];
        if (img[i] > *hi)
            *hi = img[i];
    }
}

static void test_aug_rrc(void **state)
{
    (void)state;
    enum { H = 40, W = 50, O = 24 };
    uint8_t img[3 * H * W];
    lt_rng g;
    lt_rng_init(&g, 3, 3);
    for (size_t i = 0; i < sizeof img; i++)
        img[i] = (uint8_t)(30 + lt_rng_below(&g, 180));
    int lo, hi;
    image_range(img, sizeof img, &lo, &hi);

    lt_aug a = plain_aug(O, O, 0.0f, 1.0f);
    a.rrc = 1;
    a.hflip = 1;
    const size_t n_out = 3 * O * O;
    float *out = malloc((n_out + 64) * sizeof *out);
    assert_non_null(out);
    int differ = 0;
    float first0 = 0;
    for (int t = 0; t < 300; t++) {
        for (size_t i = n_out; i < n_out + 64; i++)
            out[i] = -777.0f;  /* sentinel: nothing written past c*out_h*out_w */
        lt_rng r;
        lt_rng_derive(&r, &g, 9, (uint64_t)t);
        lt_aug_train(&a, 3, H, W, img, &r, out);
        for (size_t i = 0; i < n_out; i++) {
            float v = out[i] * 255.0f;  /* mean 0, std 1: back to pixel units */
            assert_true(isfinite(out[i]));
            assert_true(v >= lo - 1e-3f && v <= hi + 1e-3f);  /* convex combination */
        }
        for (size_t i = n_out; i < n_out + 64; i++)
            assert_true(out[i] == -777.0f);
        if (t == 0)
            first0 = out[0];
        else
            differ += out[0] != first0;
    }
    assert_true(differ > 250);

    /* scale (1,1) and ratio (1,1) on a square image: the crop is the whole
     * image and a same-size resize is the identity. */
    enum { S = 16 };
    uint8_t sq[S * S];
    for (int i = 0; i < S * S; i++)
        sq[i] = (uint8_t)((i * 37) % 256);
    lt_aug id = plain_aug(S, S, 0.1f, 0.7f);
    id.rrc = 1;
    id.rrc_scale[0] = id.rrc_scale[1] = 1.0f;
    id.rrc_ratio[0] = id.rrc_ratio[1] = 1.0f;
    float o1[S * S], o2[S * S];
    lt_rng r;
    lt_rng_init(&r, 1, 1);
    lt_aug_train(&id, 1, S, S, sq, &r, o1);
    lt_aug_eval(&id, 1, S, S, sq, o2);
    assert_memory_equal(o1, o2, sizeof o1);
    /* An impossible scale range (area > image) always takes the fallback
     * central crop, which for a square image within the ratio range is the
     * whole image. */
    id.rrc_scale[0] = 2.0f;
    id.rrc_scale[1] = 3.0f;
    id.rrc_ratio[0] = 0.75f;
    id.rrc_ratio[1] = 4.0f / 3.0f;
    lt_aug_train(&id, 1, S, S, sq, &r, o1);
    assert_memory_equal(o1, o2, sizeof o1);

    /* A constant image stays constant through any crop + resize. */
    memset(img, 77, sizeof img);
    lt_aug_train(&a, 3, H, W, img, &r, out);
    for (size_t i = 0; i < n_out; i++)
        assert_float_equal(out[i] * 255.0f, 77.0f, 1e-3);
    free(out);
}

static void test_aug_jitter(void **state)
{
    (void)state;
    enum { H = 12, W = 12 };
    uint8_t img[3 * H * W];
    for (int i = 0; i < H * W; i++) {
        img[i] = (uint8_t)(i % 200);                    /* R */
        img[H * W + i] = (uint8_t)((i * 7) % 250);      /* G */
        img[2 * H * W + i] = (uint8_t)((i * 13) % 240); /* B */
    }
    lt_aug a = plain_aug(H, W, 0.0f, 1.0f);
    a.jitter = 0.4f;
    float out[3 * H * W], ref[3 * H * W];
    lt_aug_eval(&a, 3, H, W, img, ref);
    int changed = 0;
    lt_rng base;
    lt_rng_init(&base, 8, LT_STREAM_AUG);
    for (int t = 0; t < 50; t++) {
        lt_rng r;
        lt_rng_derive(&r, &base, 0, (uint64_t)t);
        lt_aug_train(&a, 3, H, W, img, &r, out);
        for (int i = 0; i < 3 * H * W; i++) {
            assert_true(out[i] >= 0.0f && out[i] <= 1.0f);  /* clamped to the pixel range */
            changed += out[i] != ref[i];
        }
    }
    assert_true(changed > 50 * 3 * H * W / 2);
    /* A grey image stays grey: brightness and contrast act on all channels
     * alike and saturation blends with the pixel's own grey level. */
    uint8_t grey[3 * H * W];
    for (int i = 0; i < H * W; i++)
        grey[i] = grey[H * W + i] = grey[2 * H * W + i] = (uint8_t)(i + 40);
    lt_rng r;
    lt_rng_init(&r, 2, 2);
    lt_aug_train(&a, 3, H, W, grey, &r, out);
    for (int i = 0; i < H * W; i++) {
        assert_float_equal(out[i], out[H * W + i], 1e-5);
        assert_float_equal(out[i], out[2 * H * W + i], 1e-5);
    }
}

static void test_aug_eval_geometry(void **state)
{
    (void)state;
    /* Centre crop 8x8 -> 4x4 takes rows/cols 2..5 (torchvision CenterCrop). */
    uint8_t img[64];
    for (int i = 0; i < 64; i++)
        img[i] = (uint8_t)i;
    lt_aug a = plain_aug(4, 4, 0.0f, 1.0f / 255.0f);  /* out = x - 0 */
    float out[16];
    lt_aug_eval(&a, 1, 8, 8, img, out);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            assert_float_equal(out[y * 4 + x], (float)((y + 2) * 8 + x + 2), 1e-3);
    /* Odd difference: (9 - 4) / 2 = 2.5 rounds half-to-even to 2. */
    uint8_t img9[81];
    for (int i = 0; i < 81; i++)
        img9[i] = (uint8_t)i;
    lt_aug_eval(&a, 1, 9, 9, img9, out);
    assert_float_equal(out[0], 2 * 9 + 2, 1e-3);
    /* Output larger than the image: a resize; a 2x upscale of a constant
     * image stays constant and of a ramp stays monotone. */
    lt_aug up = plain_aug(16, 16, 0.0f, 1.0f / 255.0f);
    float big[256];
    lt_aug_eval(&up, 1, 8, 8, img, big);
    for (int y = 0; y < 16; y++)
        for (int x = 1; x < 16; x++)
            assert_true(big[y * 16 + x] >= big[y * 16 + x - 1] - 1e-4f);
    assert_true(big[0] >= 0.0f - 1e-3f && big[255] <= 63.0f + 1e-3f);
}

/* ---- dataset ---------------------------------------------------------------- */

static void test_dataset_subset_counts(void **state)
{
    (void)state;
    lt_dataset d, s;
    assert_int_equal(lt_dataset_alloc(&d, 6, 1, 2, 2, 3), LT_OK);
    for (int i = 0; i < 6; i++) {
        d.labels[i] = i % 3;
        memset(d.pixels + i * 4, i + 1, 4);
    }
    long cnt[3];
    lt_dataset_class_counts(&d, cnt);
    assert_int_equal(cnt[0], 2);
    assert_int_equal(cnt[1], 2);
    assert_int_equal(cnt[2], 2);
    const int32_t idx[3] = {5, 0, 5};
    assert_int_equal(lt_dataset_subset(&s, &d, idx, 3), LT_OK);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.labels[0], 2);
    assert_int_equal(s.labels[1], 0);
    assert_int_equal(s.pixels[0], 6);
    assert_int_equal(s.pixels[4], 1);
    assert_int_equal(s.pixels[8 + 3], 6);
    lt_dataset_class_counts(&s, cnt);
    assert_int_equal(cnt[2], 2);
    assert_int_equal(cnt[1], 0);
    const int32_t bad[1] = {6};
    lt_dataset t;
    assert_int_equal(lt_dataset_subset(&t, &d, bad, 1), LT_EINVAL);
    assert_int_equal(lt_dataset_alloc(&t, 1, 0, 2, 2, 3), LT_EINVAL);
    lt_dataset_free(&s);
    lt_dataset_free(&d);
    assert_null(d.pixels);
}

/* ---- loader ----------------------------------------------------------------- */

enum { NIMG = 103, IC = 3, IH = 8, IW = 8, BATCH = 16 };
static const uint64_t SEED = 1234, AUGS = LT_STREAM_AUG;

static void make_ds(lt_dataset *d)
{
    assert_int_equal(lt_dataset_alloc(d, NIMG, IC, IH, IW, 5), LT_OK);
    lt_rng r;
    lt_rng_init(&r, 77, 77);
    for (size_t i = 0; i < (size_t)NIMG * IC * IH * IW; i++)
        d->pixels[i] = (uint8_t)lt_rng_below(&r, 256);
    for (int i = 0; i < NIMG; i++)
        d->labels[i] = i % 5;
}

static lt_aug train_aug(void)
{
    lt_aug a = plain_aug(IH, IW, 0.45f, 0.22f);
    a.pad = 1;
    a.random_crop = 1;
    a.hflip = 1;
    return a;
}

static void make_idx(int32_t *idx, int epoch)
{
    lt_sampler_cfg cfg = {.kind = LT_SAMPLER_INSTANCE};
    int32_t labels[NIMG];
    for (int i = 0; i < NIMG; i++)
        labels[i] = i % 5;
    assert_int_equal(lt_sampler_epoch(&cfg, epoch, SEED, LT_STREAM_ORDER, labels, NIMG, 5, idx, NIMG),
                     LT_OK);
}

/* Runs an epoch from first_batch and copies every batch into all_x/all_s
 * (indexed by absolute position). Returns the number of batches seen. */
static long run_epoch(lt_loader *L, int epoch, const int32_t *idx, long n, long first, float *all_x,
                      int32_t *all_s, int32_t *all_y, int slow)
{
    assert_int_equal(lt_loader_start(L, epoch, idx, n, first), LT_OK);
    const size_t per = (size_t)IC * IH * IW;
    long b = first, seen = 0;
    for (;;) {
        const float *x;
        const int32_t *y, *s;
        int count = -1;
        assert_int_equal(lt_loader_next(L, &x, &y, &s, &count), LT_OK);
        if (count == 0)
            break;
        if (slow) {  /* let the worker run ahead; our batch must stay intact */
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        memcpy(all_x + (size_t)b * BATCH * per, x, (size_t)count * per * sizeof *x);
        memcpy(all_s + b * BATCH, s, (size_t)count * sizeof *s);
        memcpy(all_y + b * BATCH, y, (size_t)count * sizeof *y);
        b++;
        seen++;
    }
    return seen;
}

static void test_loader_content_and_order(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d);
    lt_aug a = train_aug();
    int32_t idx[NIMG];
    make_idx(idx, 0);
    const size_t per = (size_t)IC * IH * IW;
    float *all = calloc((size_t)NIMG * per, sizeof *all);
    float *ref = calloc(per, sizeof *ref);
    int32_t all_s[NIMG], all_y[NIMG];
    assert_non_null(all);
    assert_non_null(ref);
    lt_rng base;
    lt_rng_init(&base, SEED, AUGS);
    for (int train = 1; train >= 0; train--) {
        lt_loader *L;
        assert_int_equal(lt_loader_open(&L, &d, &a, BATCH, 0, train, SEED, AUGS), LT_OK);
        for (int slow = 0; slow < 2; slow++) {
            long nb = run_epoch(L, 2, idx, NIMG, 0, all, all_s, all_y, slow);
            assert_int_equal(nb, (NIMG + BATCH - 1) / BATCH);
            assert_int_equal(lt_loader_batches(L), nb);
            for (int p = 0; p < NIMG; p++) {
                assert_int_equal(all_s[p], idx[p]);
                assert_int_equal(all_y[p], d.labels[idx[p]]);
                const uint8_t *img = d.pixels + (size_t)idx[p] * per;
                if (train) {
                    lt_rng r;
                    lt_rng_derive(&r, &base, 2, (uint64_t)p);
                    lt_aug_train(&a, IC, IH, IW, img, &r, ref);
                } else {
                    lt_aug_eval(&a, IC, IH, IW, img, ref);
                }
                assert_memory_equal(all + (size_t)p * per, ref, per * sizeof *ref);
            }
        }
        lt_loader_close(L);
    }
    free(ref);
    free(all);
    lt_dataset_free(&d);
}

static void test_loader_resume_and_repeat(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d);
    lt_aug a = train_aug();
    int32_t idx[NIMG];
    make_idx(idx, 5);
    const size_t per = (size_t)IC * IH * IW, tot = (size_t)NIMG * per;
    float *x1 = calloc(tot, sizeof *x1), *x2 = calloc(tot, sizeof *x2);
    int32_t s1[NIMG], s2[NIMG], y1[NIMG], y2[NIMG];
    assert_non_null(x1);
    assert_non_null(x2);
    lt_loader *L;
    assert_int_equal(lt_loader_open(&L, &d, &a, BATCH, 0, 1, SEED, AUGS), LT_OK);
    assert_int_equal(run_epoch(L, 5, idx, NIMG, 0, x1, s1, y1, 0), 7);
    /* Second pass of the same epoch: bit-identical. */
    assert_int_equal(run_epoch(L, 5, idx, NIMG, 0, x2, s2, y2, 1), 7);
    assert_memory_equal(x1, x2, tot * sizeof *x1);
    assert_memory_equal(s1, s2, sizeof s1);
    /* Resume at batch 3 (another loader, as after a restart): batches 3..6 equal. */
    lt_loader *R;
    assert_int_equal(lt_loader_open(&R, &d, &a, BATCH, 0, 1, SEED, AUGS), LT_OK);
    memset(x2, 0, tot * sizeof *x2);
    assert_int_equal(run_epoch(R, 5, idx, NIMG, 3, x2, s2, y2, 0), 4);
    size_t off = (size_t)3 * BATCH * per;
    assert_memory_equal(x1 + off, x2 + off, (tot - off) * sizeof *x1);
    assert_memory_equal(s1 + 3 * BATCH, s2 + 3 * BATCH, (NIMG - 3 * BATCH) * sizeof *s1);
    /* Starting at the end gives an empty remainder; past it is an error. */
    assert_int_equal(run_epoch(R, 5, idx, NIMG, 7, x2, s2, y2, 0), 0);
    assert_int_equal(lt_loader_start(R, 5, idx, NIMG, 8), LT_EINVAL);
    lt_loader_close(R);
    /* Another epoch draws other augmentations for the same index list. */
    assert_int_equal(run_epoch(L, 6, idx, NIMG, 0, x2, s2, y2, 0), 7);
    assert_memory_equal(s1, s2, sizeof s1);
    assert_memory_not_equal(x1, x2, tot * sizeof *x1);
    lt_loader_close(L);
    free(x1);
    free(x2);
    lt_dataset_free(&d);
}

static void test_loader_drop_last(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d);
    lt_aug a = train_aug();
    int32_t idx[NIMG];
    make_idx(idx, 1);
    lt_loader *L;
    assert_int_equal(lt_loader_open(&L, &d, &a, BATCH, 1, 1, SEED, AUGS), LT_OK);
    const long ns[4] = {NIMG, 96, 15, 0};
    const long want[4] = {6, 6, 0, 0};
    for (int t = 0; t < 4; t++) {
        assert_int_equal(lt_loader_start(L, 1, idx, ns[t], 0), LT_OK);
        assert_int_equal(lt_loader_batches(L), want[t]);
        long got = 0, items = 0;
        int count;
        const float *x;
        do {
            assert_int_equal(lt_loader_next(L, &x, NULL, NULL, &count), LT_OK);
            if (count) {
                assert_int_equal(count, BATCH);
                got++;
                items += count;
            }
        } while (count);
        assert_int_equal(got, want[t]);
        assert_int_equal(items, want[t] * BATCH);
        /* Past the end stays at the end. */
        assert_int_equal(lt_loader_next(L, &x, NULL, NULL, &count), LT_OK);
        assert_int_equal(count, 0);
    }
    lt_loader_close(L);
    /* Without drop_last the partial batch (103 = 6*16 + 7) is delivered. */
    assert_int_equal(lt_loader_open(&L, &d, &a, BATCH, 0, 1, SEED, AUGS), LT_OK);
    assert_int_equal(lt_loader_start(L, 1, idx, NIMG, 6), LT_OK);
    int count;
    const float *x;
    assert_int_equal(lt_loader_next(L, &x, NULL, NULL, &count), LT_OK);
    assert_int_equal(count, NIMG - 6 * BATCH);
    lt_loader_close(L);
    lt_dataset_free(&d);
}

static void test_loader_errors_and_shutdown(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d);
    lt_aug a = train_aug();
    int32_t idx[NIMG];
    make_idx(idx, 3);
    lt_loader *L;
    assert_int_equal(lt_loader_open(&L, &d, &a, 0, 0, 1, SEED, AUGS), LT_EINVAL);
    assert_null(L);
    assert_int_equal(lt_loader_open(&L, &d, &a, BATCH, 0, 1, SEED, AUGS), LT_OK);
    int count;
    const float *x;
    assert_int_equal(lt_loader_next(L, &x, NULL, NULL, &count), LT_ESTATE);
    int32_t bad[2] = {0, NIMG};
    assert_int_equal(lt_loader_start(L, 0, bad, 2, 0), LT_EINVAL);
    assert_true(strstr(lt_errmsg(), "outside") != NULL);
    lt_loader_close(L);

    /* Close (and restart) mid-epoch, many times, with the worker at every
     * possible stage: must neither hang nor leak. */
    for (int t = 0; t < 200; t++) {
        assert_int_equal(lt_loader_open(&L, &d, &a, 8, t % 2, 1, SEED, AUGS), LT_OK);
        assert_int_equal(lt_loader_start(L, t, idx, NIMG, 0), LT_OK);
        for (int k = 0; k < t % 4; k++) {
            assert_int_equal(lt_loader_next(L, &x, NULL, NULL, &count), LT_OK);
            assert_int_equal(count, 8);
        }
        if (t % 3 == 0) {  /* restart a new epoch while one is in flight */
            assert_int_equal(lt_loader_start(L, t + 1, idx, NIMG / 2, 1), LT_OK);
            assert_int_equal(lt_loader_next(L, &x, NULL, NULL, &count), LT_OK);
            assert_int_equal(count, 8);
        }
        lt_loader_close(L);
    }
    lt_loader_close(NULL);
    lt_dataset_free(&d);
}

/* Two streams per step (e.g. instance-balanced + class-balanced, as ICCL or
 * BBN-style methods draw): two loaders on their own order and augmentation
 * streams, consumed in lockstep, each give exactly what it gives alone, so
 * one stream can never shift the other. */
static void test_loader_two_streams(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d);
    lt_aug a = train_aug();
    int32_t idx1[NIMG], idx2[NIMG];
    make_idx(idx1, 0);
    lt_sampler_cfg cb = {.kind = LT_SAMPLER_CLASS_BALANCED};
    assert_int_equal(lt_sampler_epoch(&cb, 0, SEED, LT_STREAM_ORDER2, d.labels, NIMG, 5, idx2, NIMG), LT_OK);
    assert_memory_not_equal(idx1, idx2, sizeof idx1);
    const size_t per = (size_t)IC * IH * IW;
    float *alone1 = calloc((size_t)NIMG * per, sizeof(float)), *alone2 = calloc((size_t)NIMG * per, sizeof(float));
    float *both1 = calloc((size_t)NIMG * per, sizeof(float)), *both2 = calloc((size_t)NIMG * per, sizeof(float));
    int32_t s1[NIMG], y1[NIMG], s2[NIMG], y2[NIMG];
    assert_true(alone1 && alone2 && both1 && both2);
    lt_loader *A, *B;
    assert_int_equal(lt_loader_open(&A, &d, &a, BATCH, 0, 1, SEED, LT_STREAM_AUG), LT_OK);
    assert_int_equal(lt_loader_open(&B, &d, &a, BATCH, 0, 1, SEED, LT_STREAM_AUG2), LT_OK);
    run_epoch(A, 0, idx1, NIMG, 0, alone1, s1, y1, 0);
    run_epoch(B, 0, idx2, NIMG, 0, alone2, s2, y2, 0);
    /* lockstep: one batch from each stream per step */
    assert_int_equal(lt_loader_start(A, 0, idx1, NIMG, 0), LT_OK);
    assert_int_equal(lt_loader_start(B, 0, idx2, NIMG, 0), LT_OK);
    for (long b = 0;; b++) {
        const float *xa, *xb;
        const int32_t *ya, *yb, *sa, *sb;
        int ca = -1, cbn = -1;
        assert_int_equal(lt_loader_next(A, &xa, &ya, &sa, &ca), LT_OK);
        assert_int_equal(lt_loader_next(B, &xb, &yb, &sb, &cbn), LT_OK);
        assert_int_equal(ca, cbn);
        if (ca == 0) break;
        memcpy(both1 + (size_t)b * BATCH * per, xa, (size_t)ca * per * sizeof(float));
        memcpy(both2 + (size_t)b * BATCH * per, xb, (size_t)cbn * per * sizeof(float));
        for (int i = 0; i < ca; i++) {
            assert_int_equal(sa[i], idx1[b * BATCH + i]);
            assert_int_equal(sb[i], idx2[b * BATCH + i]);
        }
    }
    assert_memory_equal(alone1, both1, (size_t)NIMG * per * sizeof(float));
    assert_memory_equal(alone2, both2, (size_t)NIMG * per * sizeof(float));
    lt_loader_close(A);
    lt_loader_close(B);
    free(alone1); free(alone2); free(both1); free(both2);
    lt_dataset_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aug_normalise_exact),
        cmocka_unit_test(test_aug_pad_crop_flip),
        cmocka_unit_test(test_aug_rrc),
        cmocka_unit_test(test_aug_jitter),
        cmocka_unit_test(test_aug_eval_geometry),
        cmocka_unit_test(test_dataset_subset_counts),
        cmocka_unit_test(test_loader_content_and_order),
        cmocka_unit_test(test_loader_resume_and_repeat),
        cmocka_unit_test(test_loader_drop_last),
        cmocka_unit_test(test_loader_errors_and_shutdown),
        cmocka_unit_test(test_loader_two_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
