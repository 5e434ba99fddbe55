/* test_aug_strong.c — the strong augmentation pipeline (lt_aug_pipeline,
 * lt_data.h): every op against a naive reference written here from
 * torchvision's definitions (double arithmetic, a textbook HSV conversion,
 * a direct 2-D convolution with reflect padding), the random-resized crop
 * and its centre-crop fallback, the pipeline's documented draw order, the
 * ops skipped on 1-channel images, and the loader / drawer views: view 0
 * unchanged, views differ, runs bit-reproducible. */
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

/* A deterministic 3 x h x w image of floats in [0, 255]. */
static void fill_img(float *x, size_t n, unsigned seed)
{
    unsigned long long s = 0x9E3779B97F4A7C15ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 11) % 25600) / 100.0f;   /* 0 .. 255.99 */
        if (x[i] > 255.0f) x[i] = 255.0f;
    }
}

static double clampd(double v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }
static double luma(double r, double g, double b) { return 0.2989 * r + 0.587 * g + 0.114 * b; }

static void assert_close(const float *a, const double *b, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= tol)) {   /* NaN compares false: fails */
            printf("element %zu: %.6f vs reference %.6f\n", i, a[i], b[i]);
            fail();
        }
}

enum { H = 5, W = 6, P = H * W };

static void test_brightness_contrast_saturation(void **state)
{
    (void)state;
    float img[3 * P], x[3 * P];
    double ref[3 * P];
    fill_img(img, 3 * P, 1);
    const float fs[] = {0.0f, 0.6f, 1.0f, 1.4f};
    for (int k = 0; k < 4; k++) {
        const double f = fs[k];
        /* brightness: clamp(f x) */
        memcpy(x, img, sizeof x);
        lt_aug_brightness(3, P, x, fs[k]);
        for (int i = 0; i < 3 * P; i++) ref[i] = clampd(f * img[i]);
        assert_close(x, ref, 3 * P, 1e-3);
        /* contrast: clamp(f x + (1 - f) mean(luma)) */
        memcpy(x, img, sizeof x);
        lt_aug_contrast(3, P, x, fs[k]);
        double m = 0;
        for (int i = 0; i < P; i++) m += luma(img[i], img[P + i], img[2 * P + i]);
        m /= P;
        for (int i = 0; i < 3 * P; i++) ref[i] = clampd(f * img[i] + (1 - f) * m);
        assert_close(x, ref, 3 * P, 1e-3);
        /* saturation: clamp(f x + (1 - f) luma(pixel)) */
        memcpy(x, img, sizeof x);
        lt_aug_saturation(3, P, x, fs[k]);
        for (int i = 0; i < P; i++) {
            const double g = luma(img[i], img[P + i], img[2 * P + i]);
            for (int c = 0; c < 3; c++) ref[c * P + i] = clampd(f * img[c * P + i] + (1 - f) * g);
        }
        assert_close(x, ref, 3 * P, 1e-3);
        /* 1 channel: contrast blends with the plain mean; saturation is a no-op */
        memcpy(x, img, P * sizeof *x);
        lt_aug_contrast(1, P, x, fs[k]);
        m = 0;
        for (int i = 0; i < P; i++) m += img[i];
        m /= P;
        for (int i = 0; i < P; i++) ref[i] = clampd(f * img[i] + (1 - f) * m);
        assert_close(x, ref, P, 1e-3);
        memcpy(x, img, P * sizeof *x);
        lt_aug_saturation(1, P, x, fs[k]);
        assert_memory_equal(x, img, P * sizeof *x);
    }
}

static void test_grayscale(void **state)
{
    (void)state;
    float img[3 * P], x[3 * P];
    double ref[3 * P];
    fill_img(img, 3 * P, 2);
    memcpy(x, img, sizeof x);
    lt_aug_grayscale(3, P, x);
    for (int i = 0; i < P; i++)
        ref[i] = ref[P + i] = ref[2 * P + i] = luma(img[i], img[P + i], img[2 * P + i]);
    assert_close(x, ref, 3 * P, 1e-3);
    memcpy(x, img, P * sizeof *x);
    lt_aug_grayscale(1, P, x);
    assert_memory_equal(x, img, P * sizeof *x);
}

/* Python colorsys, in double: an independent HSV conversion. */
static void ref_rgb_to_hsv(double r, double g, double b, double *h, double *s, double *v)
{
    double mx = fmax(r, fmax(g, b)), mn = fmin(r, fmin(g, b));
    *v = mx;
    if (mx == mn) { *h = 0; *s = 0; return; }
    *s = (mx - mn) / mx;
    double rc = (mx - r) / (mx - mn), gc = (mx - g) / (mx - mn), bc = (mx - b) / (mx - mn);
    double hh = r == mx ? bc - gc : g == mx ? 2.0 + rc - bc : 4.0 + gc - rc;
    hh = fmod(hh / 6.0, 1.0);
    *h = hh < 0 ? hh + 1 : hh;
}
static void ref_hsv_to_rgb(double h, double s, double v, double *r, double *g, double *b)
{
    if (s == 0) { *r = *g = *b = v; return; }
    int i = (int)floor(h * 6.0);
    double f = h * 6.0 - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    switch (((i % 6) + 6) % 6) {
    case 0: *r = v; *g = t; *b = p; break;
    case 1: *r = q; *g = v; *b = p; break;
    case 2: *r = p; *g = v; *b = t; break;
    case 3: *r = p; *g = q; *b = v; break;
    case 4: *r = t; *g = p; *b = v; break;
    default: *r = v; *g = p; *b = q; break;
    }
}

static void test_hue(void **state)
{
    (void)state;
    float img[3 * P], x[3 * P];
    double ref[3 * P];
    fill_img(img, 3 * P, 3);
    img[0] = img[P] = img[2 * P] = 77.0f;   /* a grey pixel: hue undefined, must stay grey */
    const float shifts[] = {0.0f, 0.1f, -0.1f, 0.5f, -0.5f, 0.33f};
    for (int k = 0; k < 6; k++) {
        memcpy(x, img, sizeof x);
        lt_aug_hue(3, P, x, shifts[k]);
        for (int i = 0; i < P; i++) {
            double h, s, v, r, g, b;
            ref_rgb_to_hsv(img[i] / 255.0, img[P + i] / 255.0, img[2 * P + i] / 255.0, &h, &s, &v);
            h = fmod(h + shifts[k], 1.0);
            if (h < 0) h += 1;
            ref_hsv_to_rgb(h, s, v, &r, &g, &b);
            ref[i] = r * 255; ref[P + i] = g * 255; ref[2 * P + i] = b * 255;
        }
        assert_close(x, ref, 3 * P, 0.05);   /* float HSV round trip: ~1e-4 relative */
    }
    /* hand example: pure red shifted by 1/3 is pure green */
    float red[3] = {255, 0, 0};
    lt_aug_hue(3, 1, red, 1.0f / 3.0f);
    assert_float_equal(red[0], 0, 1e-2);
    assert_float_equal(red[1], 255, 1e-2);
    assert_float_equal(red[2], 0, 1e-2);
    /* 1 channel: no-op */
    memcpy(x, img, P * sizeof *x);
    lt_aug_hue(1, P, x, 0.2f);
    assert_memory_equal(x, img, P * sizeof *x);
}

static int refl(int i, int n)
{
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

static void test_gaussian_blur(void **state)
{
    (void)state;
    enum { BH = 7, BW = 9, BP = BH * BW };
    float img[2 * BP], x[2 * BP];
    double ref[2 * BP];
    fill_img(img, 2 * BP, 4);
    const float sig[] = {0.1f, 0.8f, 2.0f};
    const int ks[] = {3, 5, 13};   /* 13 > 9: the reflection folds twice */
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            const int k = ks[b], r = k / 2;
            double k1[13], sum = 0;
            for (int t = 0; t < k; t++) sum += (k1[t] = exp(-0.5 * pow((t - r) / (double)sig[a], 2)));
            for (int t = 0; t < k; t++) k1[t] /= sum;
            /* direct 2-D convolution with the outer-product kernel */
            for (int c = 0; c < 2; c++)
                for (int y = 0; y < BH; y++)
                    for (int xx = 0; xx < BW; xx++) {
                        double acc = 0;
                        for (int u = 0; u < k; u++)
                            for (int v = 0; v < k; v++)
                                acc += k1[u] * k1[v] * img[c * BP + refl(y + u - r, BH) * BW + refl(xx + v - r, BW)];
                        ref[c * BP + y * BW + xx] = acc;
                    }
            memcpy(x, img, sizeof x);
            lt_aug_gaussian_blur(2, BH, BW, x, sig[a], k);
            assert_close(x, ref, 2 * BP, 2e-3);
        }
    /* a constant image is a fixed point */
    for (int i = 0; i < BP; i++) x[i] = 100.0f;
    lt_aug_gaussian_blur(1, BH, BW, x, 1.5f, 5);
    for (int i = 0; i < BP; i++) assert_float_equal(x[i], 100.0f, 1e-3);
}

static lt_aug base_aug(int oh, int ow)
{
    lt_aug a;
    memset(&a, 0, sizeof a);
    a.out_h = oh;
    a.out_w = ow;
    for (int k = 0; k < 3; k++) { a.mean[k] = 0.0f; a.std[k] = 1.0f / 255.0f; }  /* out = x: raw pixels */
    return a;
}

static void test_rrc(void **state)
{
    (void)state;
    enum { S = 8 };
    uint8_t img[3 * S * S];
    for (int i = 0; i < 3 * S * S; i++) img[i] = (uint8_t)(i * 37 + 11);
    /* crop only: the pipeline's random-resized crop is lt_aug_train's
     * (torchvision get_params + PIL bilinear) with the same draws */
    lt_aug_pipeline p;
    memset(&p, 0, sizeof p);
    p.enabled = 1;
    p.crop = LT_AUG_CROP_RRC;
    p.rrc_scale[0] = 0.2f; p.rrc_scale[1] = 1.0f;
    lt_aug b = base_aug(6, 6), t = b;
    t.rrc = 1;
    t.rrc_scale[0] = 0.2f; t.rrc_scale[1] = 1.0f;
    float o1[3 * 36], o2[3 * 36];
    for (int s = 0; s < 20; s++) {
        lt_rng r1, r2;
        lt_rng_init(&r1, (uint64_t)s, LT_STREAM_AUG);
        r2 = r1;
        lt_aug_pipeline_apply(&p, &b, 3, S, S, img, &r1, o1);
        lt_aug_train(&t, 3, S, S, img, &r2, o2);
        assert_memory_equal(o1, o2, sizeof o1);
        assert_true(r1.counter == r2.counter && r1.pos == r2.pos);
    }
    /* fallback: no 8x8 window has area 64 and aspect 2..3, so after 10
     * attempts torchvision takes the central crop clamped to the ratio: full
     * width 8, height round(8 / 2) = 4, top (8 - 4) / 2 = 2. A 4x8 output of
     * a 4x8 window is a copy of rows 2..5. */
    p.rrc_scale[0] = p.rrc_scale[1] = 1.0f;
    p.rrc_ratio[0] = 2.0f; p.rrc_ratio[1] = 3.0f;
    lt_aug b48 = base_aug(4, 8);
    float o3[3 * 32];
    double ref[3 * 32];
    lt_rng r;
    lt_rng_init(&r, 7, LT_STREAM_AUG);
    lt_aug_pipeline_apply(&p, &b48, 3, S, S, img, &r, o3);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 8; x++) ref[c * 32 + y * 8 + x] = img[c * 64 + (y + 2) * 8 + x];
    assert_close(o3, ref, 3 * 32, 1e-3);
    assert_int_equal(r.counter, 10);   /* 10 attempts x 2 uniforms x 2 words = 40 words */
}

/* The documented draw order, replayed by hand with the naive ops: crop none,
 * jitter (p), grayscale (p), blur (p, sigma), flip (p). */
static void test_pipeline_draw_order(void **state)
{
    (void)state;
    enum { S = 6, SP = S * S };
    uint8_t img[3 * SP];
    for (int i = 0; i < 3 * SP; i++) img[i] = (uint8_t)(i * 53 + 7);
    lt_aug_pipeline p;
    lt_aug_pipeline_mocov2(&p, 3);
    p.crop = LT_AUG_CROP_NONE;
    p.jitter_p = 0.7f;
    p.gray_p = 0.5f;
    lt_aug b = base_aug(S, S);
    int seen_order[2] = {0, 0}, seen_gray = 0, seen_blur = 0, seen_flip = 0;
    for (int s = 0; s < 64; s++) {
        lt_rng r, q;
        lt_rng_init(&r, (uint64_t)s, 99);
        q = r;
        float out[3 * SP], ref[3 * SP];
        lt_aug_pipeline_apply(&p, &b, 3, S, S, img, &r, out);
        for (int i = 0; i < 3 * SP; i++) ref[i] = img[i];
        if (lt_rng_uniform(&q) < p.jitter_p) {
            int32_t ord[4] = {0, 1, 2, 3};
            lt_rng_shuffle_i32(&q, ord, 4);
            float f[4];
            for (int k = 0; k < 3; k++) f[k] = (float)(0.6 + 0.8 * lt_rng_uniform(&q));
            f[3] = (float)(-0.1 + 0.2 * lt_rng_uniform(&q));
            for (int k = 0; k < 4; k++) {
                if (ord[k] == 0) lt_aug_brightness(3, SP, ref, f[0]);
                if (ord[k] == 1) lt_aug_contrast(3, SP, ref, f[1]);
                if (ord[k] == 2) lt_aug_saturation(3, SP, ref, f[2]);
                if (ord[k] == 3) lt_aug_hue(3, SP, ref, f[3]);
            }
            int bi = 0, ci = 0;
            for (int k = 0; k < 4; k++) { if (ord[k] == 0) bi = k; if (ord[k] == 1) ci = k; }
            seen_order[bi < ci]++;
        }
        if (lt_rng_uniform(&q) < p.gray_p) { lt_aug_grayscale(3, SP, ref); seen_gray++; }
        if (lt_rng_uniform(&q) < p.blur_p) {
            float sg = (float)(0.1 + 1.9 * lt_rng_uniform(&q));
            lt_aug_gaussian_blur(3, S, S, ref, sg, 3);
            seen_blur++;
        }
        if (lt_rng_uniform(&q) < p.hflip_p) {
            seen_flip++;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S / 2; x++) {
                        float *row = ref + c * SP + y * S, t = row[x];
                        row[x] = row[S - 1 - x];
                        row[S - 1 - x] = t;
                    }
        }
        for (int i = 0; i < 3 * SP; i++) assert_float_equal(out[i], ref[i], 1e-3);
        assert_true(q.counter == r.counter && q.pos == r.pos);   /* nothing else was drawn */
    }
    /* the jitter's op order is random (torchvision's randperm), and every
     * random op happens sometimes and not always */
    assert_true(seen_order[0] > 0 && seen_order[1] > 0);
    assert_true(seen_gray > 0 && seen_gray < 64 && seen_blur > 0 && seen_blur < 64 && seen_flip > 0 && seen_flip < 64);
}

static void test_one_channel_skips(void **state)
{
    (void)state;
    lt_aug_pipeline p;
    lt_aug_pipeline_mocov2(&p, 0);
    assert_int_equal(lt_aug_pipeline_skipped(&p, 3), 0);
    assert_int_equal(lt_aug_pipeline_skipped(&p, 1), LT_AUG_OP_SATURATION | LT_AUG_OP_HUE | LT_AUG_OP_GRAYSCALE);
    assert_string_equal(lt_aug_op_name(LT_AUG_OP_SATURATION), "saturation");
    assert_string_equal(lt_aug_op_name(LT_AUG_OP_HUE), "hue");
    assert_string_equal(lt_aug_op_name(LT_AUG_OP_GRAYSCALE), "grayscale");
    assert_null(lt_aug_op_name(8));
    /* the fmnist recipe: brightness / contrast only, nothing skipped */
    lt_aug_pipeline f;
    memset(&f, 0, sizeof f);
    f.enabled = 1; f.crop = LT_AUG_CROP_RRC; f.rrc_scale[0] = 0.2f; f.rrc_scale[1] = 1;
    f.jitter_p = 0.8f; f.brightness = f.contrast = 0.4f; f.hflip_p = 0.5f;
    assert_int_equal(lt_aug_pipeline_skipped(&f, 1), 0);
    assert_int_equal(lt_aug_pipeline_check(&f, 1, 28, 28), LT_OK);
    /* on a 1-channel image the colour-only ops are skipped: the output is a
     * hand replay of the same draws that applies brightness, contrast, blur
     * and flip only (never calling the saturation / hue / grayscale code) */
    enum { S = 12, SP = S * S };
    uint8_t img[SP];
    for (int i = 0; i < SP; i++) img[i] = (uint8_t)(i * 29 + 3);
    p.crop = LT_AUG_CROP_NONE;
    p.blur_ksize = 5;
    lt_aug b = base_aug(S, S);
    int differ = 0;
    for (int s = 0; s < 32; s++) {
        lt_rng r, q;
        lt_rng_init(&r, (uint64_t)s, 5);
        q = r;
        float out[SP], ref[SP];
        lt_aug_pipeline_apply(&p, &b, 1, S, S, img, &r, out);
        for (int i = 0; i < SP; i++) ref[i] = img[i];
        if (lt_rng_uniform(&q) < p.jitter_p) {
            int32_t ord[4] = {0, 1, 2, 3};
            lt_rng_shuffle_i32(&q, ord, 4);
            float f[3];
            for (int k = 0; k < 3; k++) f[k] = (float)(0.6 + 0.8 * lt_rng_uniform(&q));
            (void)lt_rng_uniform(&q);   /* the hue shift, drawn but unused */
            for (int k = 0; k < 4; k++) {
                if (ord[k] == 0) for (int i = 0; i < SP; i++) ref[i] = (float)clampd((double)f[0] * ref[i]);
                if (ord[k] == 1) {
                    double m = 0;
                    for (int i = 0; i < SP; i++) m += ref[i];
                    m /= SP;
                    for (int i = 0; i < SP; i++) ref[i] = (float)clampd((double)f[1] * ref[i] + (1 - (double)f[1]) * m);
                }
            }
        }
        (void)lt_rng_uniform(&q);   /* the grayscale coin */
        if (lt_rng_uniform(&q) < p.blur_p) lt_aug_gaussian_blur(1, S, S, ref, (float)(0.1 + 1.9 * lt_rng_uniform(&q)), 5);
        if (lt_rng_uniform(&q) < p.hflip_p)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S / 2; x++) {
                    float t = ref[y * S + x];
                    ref[y * S + x] = ref[y * S + S - 1 - x];
                    ref[y * S + S - 1 - x] = t;
                }
        for (int i = 0; i < SP; i++) assert_float_equal(out[i], ref[i], 1e-2);
        for (int i = 0; i < SP; i++) differ += out[i] != img[i];
    }
    assert_true(differ > 0);
}

static void test_check_rejects(void **state)
{
    (void)state;
    lt_aug_pipeline p;
    lt_aug_pipeline_mocov2(&p, 0);
    assert_int_equal(lt_aug_pipeline_check(&p, 3, 32, 32), LT_OK);
    lt_aug_pipeline q = p; q.jitter_p = 1.5f;
    assert_int_equal(lt_aug_pipeline_check(&q, 3, 32, 32), LT_EINVAL);
    q = p; q.hue = 0.6f;
    assert_int_equal(lt_aug_pipeline_check(&q, 3, 32, 32), LT_EINVAL);
    q = p; q.blur_ksize = 4;
    assert_int_equal(lt_aug_pipeline_check(&q, 3, 32, 32), LT_EINVAL);
    q = p; q.blur_sigma[0] = 0;
    assert_int_equal(lt_aug_pipeline_check(&q, 3, 32, 32), LT_EINVAL);
    q = p; q.rrc_scale[0] = 0.9f; q.rrc_scale[1] = 0.5f;
    assert_int_equal(lt_aug_pipeline_check(&q, 3, 32, 32), LT_EINVAL);
    q = p; q.crop = 7;
    assert_int_equal(lt_aug_pipeline_check(&q, 3, 32, 32), LT_EINVAL);
    q.enabled = 0;   /* not a pipeline: nothing to check */
    assert_int_equal(lt_aug_pipeline_check(&q, 3, 32, 32), LT_OK);
}

/* ---- views through the loader and the drawer --------------------------------- */

enum { N = 12, C = 3, S = 10 };

static void make_ds(lt_dataset *d)
{
    assert_int_equal(lt_dataset_alloc(d, N, C, S, S, 3), LT_OK);
    for (size_t i = 0; i < (size_t)N * C * S * S; i++) d->pixels[i] = (uint8_t)((i * 131) ^ (i >> 3));
    for (int i = 0; i < N; i++) d->labels[i] = i % 3;
}

static void load_epoch(const lt_dataset *d, const lt_aug *a, int views, const lt_aug_pipeline *p1, float *out)
{
    lt_loader *L;
    assert_int_equal(lt_loader_open(&L, d, a, 4, 0, 1, 42, LT_STREAM_AUG), LT_OK);
    assert_int_equal(lt_loader_set_views(L, views), LT_OK);
    if (p1) assert_int_equal(lt_loader_set_view_pipeline(L, 1, p1), LT_OK);
    int32_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = N - 1 - i;
    assert_int_equal(lt_loader_start(L, 0, idx, N, 0), LT_OK);
    const size_t img = (size_t)C * 8 * 8;
    for (int b = 0; b < 3; b++) {
        const float *x;
        const int32_t *y, *id;
        int n;
        assert_int_equal(lt_loader_next(L, &x, &y, &id, &n), LT_OK);
        assert_int_equal(n, 4);
        memcpy(out + (size_t)b * views * 4 * img, x, (size_t)views * 4 * img * sizeof *x);
    }
    lt_loader_close(L);
}

static void test_loader_strong_views(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d);
    lt_aug a = base_aug(8, 8);
    a.random_crop = 1;
    a.pad = 1;
    a.hflip = 1;
    lt_aug_pipeline p;
    lt_aug_pipeline_mocov2(&p, 3);
    const size_t img = (size_t)C * 8 * 8, per = 3 * 4 * img;
    float *one = malloc(per * sizeof(float)), *two = malloc(2 * per * sizeof(float)),
          *again = malloc(2 * per * sizeof(float));
    assert_non_null(one); assert_non_null(two); assert_non_null(again);
    load_epoch(&d, &a, 1, NULL, one);
    load_epoch(&d, &a, 2, &p, two);
    load_epoch(&d, &a, 2, &p, again);
    /* bit-reproducible */
    assert_memory_equal(two, again, 2 * per * sizeof(float));
    /* numbers: a NaN in a strong view would count as differing below */
    for (size_t i = 0; i < 2 * per; i++)
        if (!isfinite(two[i])) fail_msg("two-view batch float %zu is %g", i, two[i]);
    int differ = 0;
    for (int b = 0; b < 3; b++) {
        /* view 0 is the one-view batch: the protocol's augmentation, unchanged */
        assert_memory_equal(two + (size_t)b * 8 * img, one + (size_t)b * 4 * img, 4 * img * sizeof(float));
        /* view 1 (the strong pipeline) differs from view 0 for every sample */
        for (int i = 0; i < 4; i++)
            differ += memcmp(two + ((size_t)b * 8 + i) * img, two + ((size_t)b * 8 + 4 + i) * img,
                             img * sizeof(float)) != 0;
    }
    assert_int_equal(differ, 12);
    /* a bad pipeline is refused before it reaches the worker */
    lt_loader *L;
    assert_int_equal(lt_loader_open(&L, &d, &a, 4, 0, 1, 42, LT_STREAM_AUG), LT_OK);
    lt_aug_pipeline bad = p;
    bad.gray_p = -1;
    assert_int_equal(lt_loader_set_view_pipeline(L, 0, &bad), LT_EINVAL);
    assert_int_equal(lt_loader_set_view_pipeline(L, 64, &p), LT_EINVAL);
    lt_loader_close(L);
    free(one); free(two); free(again);
    lt_dataset_free(&d);
}

static void test_drawer_strong_views(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d);
    lt_aug a = base_aug(8, 8);
    a.random_crop = 1; a.pad = 1; a.hflip = 1;
    lt_drawer *dr;
    assert_int_equal(lt_drawer_create(&dr, &d, &a, 3), LT_OK);
    lt_aug_pipeline pipes[2];
    memset(pipes, 0, sizeof pipes);          /* view 0: the run's augmentation */
    lt_aug_pipeline_mocov2(&pipes[1], 3);    /* view 1: strong */
    const size_t img = (size_t)C * 8 * 8;
    float x1[2 * 5 * C * 64], x2[2 * 5 * C * 64], x0[5 * C * 64];
    int32_t y[10], id[10];
    lt_draw_req r = {.sampler = {.kind = LT_SAMPLER_INSTANCE}, .n = 5, .views = 2, .augment = 1,
                     .stream = LT_STREAM_METHOD, .pipelines = pipes, .n_pipelines = 2};
    assert_int_equal(lt_drawer_draw(dr, &r, x1, y, id), LT_OK);
    assert_int_equal(lt_drawer_draw(dr, &r, x2, y, id), LT_OK);
    assert_memory_equal(x1, x2, sizeof x1);
    lt_draw_req r0 = r;
    r0.views = 1; r0.pipelines = NULL; r0.n_pipelines = 0;
    assert_int_equal(lt_drawer_draw(dr, &r0, x0, y, id), LT_OK);
    assert_memory_equal(x1, x0, sizeof x0);   /* view 0 is what a plain draw gives */
    for (size_t i = 0; i < 2 * 5 * img; i++)   /* a NaN view would differ too */
        if (!isfinite(x1[i])) fail_msg("drawn float %zu is %g", i, x1[i]);
    for (int s = 0; s < 5; s++)
        assert_true(memcmp(x1 + s * img, x1 + (5 + s) * img, img * sizeof(float)) != 0);
    lt_draw_req rb = r;
    lt_aug_pipeline bad[2] = {pipes[0], pipes[1]};
    bad[1].blur_ksize = 2;
    rb.pipelines = bad;
    assert_int_equal(lt_drawer_draw(dr, &rb, x1, y, id), LT_EINVAL);
    lt_drawer_free(dr);
    lt_dataset_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_brightness_contrast_saturation),
        cmocka_unit_test(test_grayscale),
        cmocka_unit_test(test_hue),
        cmocka_unit_test(test_gaussian_blur),
        cmocka_unit_test(test_rrc),
        cmocka_unit_test(test_pipeline_draw_order),
        cmocka_unit_test(test_one_channel_skips),
        cmocka_unit_test(test_check_rejects),
        cmocka_unit_test(test_loader_strong_views),
        cmocka_unit_test(test_drawer_strong_views),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
