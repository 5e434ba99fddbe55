/* lt_aug.c — per-image geometric and photometric transforms, normalisation.
 *
 * Semantics follow torchvision so that protocol descriptions carry over:
 *  - RandomCrop(out, padding=p): pad with the zero pixel, then a uniform
 *    top-left offset in [0, H + 2p - out_h] x [0, W + 2p - out_w].
 *  - RandomHorizontalFlip(0.5): flip when U[0,1) < 0.5.
 *  - RandomResizedCrop(out, scale, ratio): 10 attempts of area-fraction and
 *    log-uniform aspect-ratio sampling (sizes rounded half-to-even like
 *    Python's round), else the central crop clamped to the ratio range;
 *    then a bilinear resize.
 *  - ColorJitter(s, s, s, 0): factors uniform in [max(0, 1-s), 1+s]. The
 *    order is fixed here (brightness, contrast, saturation) rather than
 *    randomly permuted per image as torchvision does.
 *  - Normalize: out = (x / 255.0f - mean[ch]) / std[ch] in float, with the
 *    channel index clamped to 2 and a non-positive std treated as 1.
 * The resize is PIL's antialiased bilinear (triangle filter whose support
 * widens by the downscale factor), computed in float without the
 * intermediate uint8 rounding PIL does. Pixels are planar (C x H x W).
 *
 * Every random decision comes from the caller's rng, in a fixed order
 * (crop, flip, jitter), and the functions allocate nothing, so the loader
 * can call them per image from its worker thread. */
#include "lt_data.h"

#include <math.h>
#include <string.h>

static void out_dims(const lt_aug *a, int h, int w, int *oh, int *ow)
{
    *oh = a->out_h > 0 ? a->out_h : h;
    *ow = a->out_w > 0 ? a->out_w : w;
}

/* Python's round() (half to even) of a non-negative value, like torchvision. */
static int round_half_even(double v)
{
    return (int)nearbyint(v);
}

static void normalise(const lt_aug *a, int c, int oh, int ow, float *out)
{
    size_t plane = (size_t)oh * ow;
    for (int ch = 0; ch < c; ch++) {
        int k = ch < 3 ? ch : 2;
        float m = a->mean[k];
        float s = a->std[k] > 0 ? a->std[k] : 1.0f;
        float *o = out + ch * plane;
        for (size_t i = 0; i < plane; i++)
            o[i] = (o[i] / 255.0f - m) / s;
    }
}

/* Copies the window whose top-left corner is (y0, x0) in image coordinates
 * (possibly negative or past the edge) into out; pixels outside the image
 * are the zero pixel. Values stay in [0, 255]. */
static void copy_window(int c, int h, int w, const uint8_t *img, int y0, int x0, int oh, int ow,
                        float *out)
{
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *src = img + (size_t)ch * h * w;
        float *dst = out + (size_t)ch * oh * ow;
        for (int y = 0; y < oh; y++) {
            int sy = y0 + y;
            float *row = dst + (size_t)y * ow;
            if (sy < 0 || sy >= h) {
                memset(row, 0, (size_t)ow * sizeof *row);
                continue;
            }
            const uint8_t *srow = src + (size_t)sy * w;
            for (int x = 0; x < ow; x++) {
                int sx = x0 + x;
                row[x] = (sx >= 0 && sx < w) ? (float)srow[sx] : 0.0f;
            }
        }
    }
}

static inline double tri(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* One axis of PIL's resample: the tap range [*lo, *hi) of output position
 * o (0-based) when rn input samples map onto on outputs, and the values
 * needed to weight them (centre, 1/filterscale). */
static void taps(int o, int rn, int on, int *lo, int *hi, double *centre, double *inv_fs)
{
    double scale = (double)rn / on;
    double fs = scale > 1.0 ? scale : 1.0;
    double support = fs;  /* bilinear support is 1, widened by the filter scale */
    double ctr = (o + 0.5) * scale;
    int a = (int)(ctr - support + 0.5);
    int b = (int)(ctr + support + 0.5);
    if (a < 0)
        a = 0;
    if (b > rn)
        b = rn;
    if (b <= a) {  /* cannot happen for rn >= 1, but keep one tap */
        a = (int)ctr < rn ? (int)ctr : rn - 1;
        b = a + 1;
    }
    *lo = a;
    *hi = b;
    *centre = ctr;
    *inv_fs = 1.0 / fs;
}

/* Resizes the rh x rw region at (ry, rx) of img to oh x ow (values 0..255). */
static void resize_region(int c, int h, int w, const uint8_t *img, int ry, int rx, int rh, int rw,
                          int oh, int ow, float *out)
{
    for (int oy = 0; oy < oh; oy++) {
        int ylo, yhi;
        double yc, yis;
        taps(oy, rh, oh, &ylo, &yhi, &yc, &yis);
        for (int ox = 0; ox < ow; ox++) {
            int xlo, xhi;
            double xc, xis;
            taps(ox, rw, ow, &xlo, &xhi, &xc, &xis);
            double wysum = 0, wxsum = 0;
            for (int y = ylo; y < yhi; y++)
                wysum += tri((y - yc + 0.5) * yis);
            for (int x = xlo; x < xhi; x++)
                wxsum += tri((x - xc + 0.5) * xis);
            double norm = 1.0 / (wysum * wxsum);
            /* Channels in groups of four share each tap's weight. */
            for (int c0 = 0; c0 < c; c0 += 4) {
                int nc = c - c0 < 4 ? c - c0 : 4;
                double acc[4] = {0, 0, 0, 0};
                for (int y = ylo; y < yhi; y++) {
                    double wy = tri((y - yc + 0.5) * yis);
                    if (wy == 0)
                        continue;
                    size_t row = (size_t)(ry + y) * w + rx;
                    for (int x = xlo; x < xhi; x++) {
                        double wt = wy * tri((x - xc + 0.5) * xis);
                        for (int k = 0; k < nc; k++)
                            acc[k] += wt * img[(size_t)(c0 + k) * h * w + row + x];
                    }
                }
                for (int k = 0; k < nc; k++)
                    out[(size_t)(c0 + k) * oh * ow + (size_t)oy * ow + ox] = (float)(acc[k] * norm);
            }
        }
    }
}

/* The deterministic geometry: identity, centre crop (torchvision CenterCrop
 * offsets), or a resize of the whole image when the output is larger. */
static void eval_geometry(int c, int h, int w, const uint8_t *img, int oh, int ow, float *out)
{
    if (oh <= h && ow <= w) {
        int y0 = round_half_even((h - oh) / 2.0);
        int x0 = round_half_even((w - ow) / 2.0);
        copy_window(c, h, w, img, y0, x0, oh, ow, out);
    } else {
        resize_region(c, h, w, img, 0, 0, h, w, oh, ow, out);
    }
}

void lt_aug_eval(const lt_aug *a, int c, int h, int w, const uint8_t *img, float *out)
{
    int oh, ow;
    out_dims(a, h, w, &oh, &ow);
    eval_geometry(c, h, w, img, oh, ow, out);
    normalise(a, c, oh, ow, out);
}

/* torchvision RandomResizedCrop.get_params. */
static void rrc_params(const lt_aug *a, int h, int w, lt_rng *rng, int *ci, int *cj, int *ch,
                       int *cw)
{
    double s0 = 0.08, s1 = 1.0, r0 = 3.0 / 4.0, r1 = 4.0 / 3.0;
    if (a->rrc_scale[1] > 0) {
        s0 = a->rrc_scale[0];
        s1 = a->rrc_scale[1];
    }
    if (a->rrc_ratio[1] > 0 && a->rrc_ratio[0] > 0) {
        r0 = a->rrc_ratio[0];
        r1 = a->rrc_ratio[1];
    }
    double area = (double)h * w, lr0 = log(r0), lr1 = log(r1);
    for (int t = 0; t < 10; t++) {
        double target = area * (s0 + (s1 - s0) * lt_rng_uniform(rng));
        double ar = exp(lr0 + (lr1 - lr0) * lt_rng_uniform(rng));
        int cwid = round_half_even(sqrt(target * ar));
        int chei = round_half_even(sqrt(target / ar));
        if (cwid > 0 && cwid <= w && chei > 0 && chei <= h) {
            *ci = (int)lt_rng_below(rng, (uint32_t)(h - chei + 1));
            *cj = (int)lt_rng_below(rng, (uint32_t)(w - cwid + 1));
            *ch = chei;
            *cw = cwid;
            return;
        }
    }
    double in_ratio = (double)w / h;
    int cwid, chei;
    if (in_ratio < r0) {
        cwid = w;
        chei = round_half_even(cwid / r0);
    } else if (in_ratio > r1) {
        chei = h;
        cwid = round_half_even(chei * r1);
    } else {
        cwid = w;
        chei = h;
    }
    if (chei < 1)
        chei = 1;
    if (cwid < 1)
        cwid = 1;
    if (chei > h)
        chei = h;
    if (cwid > w)
        cwid = w;
    *ci = (h - chei) / 2;
    *cj = (w - cwid) / 2;
    *ch = chei;
    *cw = cwid;
}

static void hflip_inplace(int c, int oh, int ow, float *out)
{
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < oh; y++) {
            float *row = out + (size_t)ch * oh * ow + (size_t)y * ow;
            for (int x = 0; x < ow / 2; x++) {
                float t = row[x];
                row[x] = row[ow - 1 - x];
                row[ow - 1 - x] = t;
            }
        }
}

static inline float clamp255(float v)
{
    return v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
}

/* Grayscale value of pixel i (ITU-R 601-2 luma, as torchvision), or the
 * channel mean for images that are not RGB. */
static inline float gray_at(int c, size_t plane, const float *img, size_t i)
{
    if (c == 3)
        return 0.2989f * img[i] + 0.587f * img[plane + i] + 0.114f * img[2 * plane + i];
    float s = 0;
    for (int ch = 0; ch < c; ch++)
        s += img[ch * plane + i];
    return s / c;
}

static void color_jitter(float strength, int c, int oh, int ow, lt_rng *rng, float *img)
{
    double lo = 1.0 - strength > 0 ? 1.0 - strength : 0.0, hi = 1.0 + strength;
    float fb = (float)(lo + (hi - lo) * lt_rng_uniform(rng));
    float fc = (float)(lo + (hi - lo) * lt_rng_uniform(rng));
    float fs = (float)(lo + (hi - lo) * lt_rng_uniform(rng));
    size_t plane = (size_t)oh * ow, total = plane * c;

    /* brightness: blend with black */
    for (size_t i = 0; i < total; i++)
        img[i] = clamp255(img[i] * fb);

    /* contrast: blend with the mean grey level of the whole image */
    double gsum = 0;
    for (size_t i = 0; i < plane; i++)
        gsum += gray_at(c, plane, img, i);
    float gmean = (float)(gsum / (double)plane);
    for (size_t i = 0; i < total; i++)
        img[i] = clamp255(fc * img[i] + (1.0f - fc) * gmean);

    /* saturation: blend each pixel with its own grey value (no-op unless RGB) */
    if (c == 3)
        for (size_t i = 0; i < plane; i++) {
            float g = gray_at(c, plane, img, i);
            for (int ch = 0; ch < 3; ch++) {
                float *p = img + ch * plane + i;
                *p = clamp255(fs * *p + (1.0f - fs) * g);
            }
        }
}

void lt_aug_train(const lt_aug *a, int c, int h, int w, const uint8_t *img, lt_rng *rng,
                  float *out)
{
    int oh, ow;
    out_dims(a, h, w, &oh, &ow);
    if (a->rrc) {
        int ci, cj, chh, cww;
        rrc_params(a, h, w, rng, &ci, &cj, &chh, &cww);
        resize_region(c, h, w, img, ci, cj, chh, cww, oh, ow, out);
    } else if (a->random_crop) {
        int p = a->pad > 0 ? a->pad : 0;
        int ry = h + 2 * p - oh, rx = w + 2 * p - ow;
        /* A window larger than the padded image is placed at offset 0 and
         * filled with the zero pixel beyond it (torchvision would refuse). */
        int oy = ry > 0 ? (int)lt_rng_below(rng, (uint32_t)ry + 1) : 0;
        int ox = rx > 0 ? (int)lt_rng_below(rng, (uint32_t)rx + 1) : 0;
        copy_window(c, h, w, img, oy - p, ox - p, oh, ow, out);
    } else {
        eval_geometry(c, h, w, img, oh, ow, out);
    }
    if (a->hflip && lt_rng_uniform(rng) < 0.5)
        hflip_inplace(c, oh, ow, out);
    if (a->jitter > 0)
        color_jitter(a->jitter, c, oh, ow, rng, out);
    normalise(a, c, oh, ow, out);
}
