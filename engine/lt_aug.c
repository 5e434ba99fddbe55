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
 * AutoAugment's CIFAR-10 policy and Cutout (lt_autoaug.c) run after the
 * flip, on 8-bit pixels as PIL, and before normalisation (lt_data.h).
 *
 * Every random decision comes from the caller's rng, in a fixed order
 * (crop, flip, AutoAugment, jitter, Cutout), and the functions allocate
 * nothing, so the loader can call them per image from its worker thread. */
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

/* torchvision RandomResizedCrop.get_params with explicit ranges; a range
 * whose upper end is not positive takes torchvision's default ((0.08, 1)
 * for the area, (3/4, 4/3) for the aspect ratio). */
static void rrc_params_range(const float scale[2], const float ratio[2], int h, int w, lt_rng *rng,
                             int *ci, int *cj, int *ch, int *cw)
{
    double s0 = 0.08, s1 = 1.0, r0 = 3.0 / 4.0, r1 = 4.0 / 3.0;
    if (scale[1] > 0) {
        s0 = scale[0];
        s1 = scale[1];
    }
    if (ratio[1] > 0 && ratio[0] > 0) {
        r0 = ratio[0];
        r1 = ratio[1];
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

static void rrc_params(const lt_aug *a, int h, int w, lt_rng *rng, int *ci, int *cj, int *ch,
                       int *cw)
{
    rrc_params_range(a->rrc_scale, a->rrc_ratio, h, w, rng, ci, cj, ch, cw);
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

/* AutoAugment works on PIL's 8-bit pixels: round the crop (whole numbers
 * already, unless a resize made them fractional) to uint8 and back. A shape
 * the policy cannot take (lt_proto_engine_aug refuses those) is left as is. */
static void autoaug_inplace(int c, int oh, int ow, float *out, lt_rng *rng)
{
    if (c != 3 || oh > LT_AUTOAUG_MAX_SIDE || ow > LT_AUTOAUG_MAX_SIDE)
        return;
    uint8_t px[3 * LT_AUTOAUG_MAX_SIDE * LT_AUTOAUG_MAX_SIDE];
    const size_t n = (size_t)c * oh * ow;
    for (size_t i = 0; i < n; i++) {
        float v = nearbyintf(out[i]);
        px[i] = (uint8_t)(v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v);
    }
    lt_autoaug_cifar10(c, oh, ow, px, rng);
    for (size_t i = 0; i < n; i++)
        out[i] = (float)px[i];
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
    if (a->autoaug == LT_AUTOAUG_CIFAR10)
        autoaug_inplace(c, oh, ow, out, rng);
    if (a->jitter > 0)
        color_jitter(a->jitter, c, oh, ow, rng, out);
    if (a->cutout_holes > 0)
        lt_cutout(c, oh, ow, out, a->cutout_holes, a->cutout_length, 0.0f, rng);
    normalise(a, c, oh, ow, out);
}

/* ======================================================================
 * The strong pipeline (lt_aug_pipeline, lt_data.h): torchvision's
 * ColorJitter / RandomGrayscale / GaussianBlur on float pixels in [0, 255].
 * Each op is a public function so the tests can hold it against a naive
 * reference; lt_aug_pipeline_apply only sequences them and draws the
 * randomness. ====================================================== */

/* torchvision _blend(img1, img2, ratio) for float images with bound 255. */
static inline float blend(float a, float b, float ratio)
{
    return clamp255(ratio * a + (1.0f - ratio) * b);
}

void lt_aug_brightness(int c, size_t plane, float *img, float f)
{
    /* _blend(img, zeros, f) */
    for (size_t i = 0; i < plane * (size_t)c; i++)
        img[i] = blend(img[i], 0.0f, f);
}

void lt_aug_contrast(int c, size_t plane, float *img, float f)
{
    /* the mean grey level of the whole image (RGB: of its luma; otherwise the
     * plain mean, as torchvision for c != 3), summed in double */
    double gsum = 0;
    for (size_t i = 0; i < plane; i++)
        gsum += gray_at(c, plane, img, i);
    const float gmean = (float)(gsum / (double)plane);
    for (size_t i = 0; i < plane * (size_t)c; i++)
        img[i] = blend(img[i], gmean, f);
}

void lt_aug_saturation(int c, size_t plane, float *img, float f)
{
    if (c != 3)
        return;   /* torchvision returns a 1-channel image unchanged (PIL's behaviour) */
    for (size_t i = 0; i < plane; i++) {
        const float g = gray_at(3, plane, img, i);
        for (int ch = 0; ch < 3; ch++)
            img[ch * plane + i] = blend(img[ch * plane + i], g, f);
    }
}

void lt_aug_grayscale(int c, size_t plane, float *img)
{
    if (c != 3)
        return;   /* already grey */
    for (size_t i = 0; i < plane; i++) {
        const float g = gray_at(3, plane, img, i);
        img[i] = img[plane + i] = img[2 * plane + i] = g;
    }
}

/* torchvision _rgb2hsv, one pixel, float arithmetic in its order. */
void lt_aug_rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v)
{
    const float maxc = fmaxf(r, fmaxf(g, b)), minc = fminf(r, fminf(g, b));
    const int eqc = maxc == minc;
    const float cr = maxc - minc;
    *s = cr / (eqc ? 1.0f : maxc);
    const float div = eqc ? 1.0f : cr;
    const float rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
    float hh;
    if (maxc == r)
        hh = bc - gc;
    else if (maxc == g)
        hh = 2.0f + rc - bc;
    else
        hh = 4.0f + gc - rc;
    *h = fmodf(hh / 6.0f + 1.0f, 1.0f);
    *v = maxc;
}

static inline float clamp01(float v)
{
    return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
}

/* torchvision _hsv2rgb, one pixel. */
void lt_aug_hsv_to_rgb(float h, float s, float v, float *r, float *g, float *b)
{
    const float i6 = floorf(h * 6.0f);
    const float f = h * 6.0f - i6;
    int i = (int)i6 % 6;
    if (i < 0)
        i += 6;
    const float p = clamp01(v * (1.0f - s));
    const float q = clamp01(v * (1.0f - s * f));
    const float t = clamp01(v * (1.0f - s * (1.0f - f)));
    switch (i) {
    case 0: *r = v; *g = t; *b = p; break;
    case 1: *r = q; *g = v; *b = p; break;
    case 2: *r = p; *g = v; *b = t; break;
    case 3: *r = p; *g = q; *b = v; break;
    case 4: *r = t; *g = p; *b = v; break;
    default: *r = v; *g = p; *b = q; break;
    }
}

void lt_aug_hue(int c, size_t plane, float *img, float shift)
{
    if (c != 3)
        return;   /* no hue without colour (torchvision: 1-channel unchanged) */
    for (size_t i = 0; i < plane; i++) {
        float h, s, v, r, g, b;
        lt_aug_rgb_to_hsv(img[i] / 255.0f, img[plane + i] / 255.0f, img[2 * plane + i] / 255.0f, &h, &s, &v);
        /* torch's % on floats: the remainder takes the divisor's sign */
        h = fmodf(h + shift, 1.0f);
        if (h < 0.0f)
            h += 1.0f;
        lt_aug_hsv_to_rgb(h, s, v, &r, &g, &b);
        img[i] = r * 255.0f;
        img[plane + i] = g * 255.0f;
        img[2 * plane + i] = b * 255.0f;
    }
}

/* Reflect padding's source index (torch 'reflect': the edge is not
 * repeated), folded as often as needed. */
static inline int reflect_idx(int i, int n)
{
    if (n == 1)
        return 0;
    const int period = 2 * (n - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - i;
}

#define LT_AUG_MAX_KSIZE 255

static int blur_ksize(const lt_aug_pipeline *p)
{
    return p->blur_ksize > 0 ? p->blur_ksize : 2 * (int)ceil(3.0 * p->blur_sigma[1]) + 1;
}

void lt_aug_gaussian_blur(int c, int h, int w, float *img, float sigma, int k)
{
    if (k < 1 || k > LT_AUG_MAX_KSIZE || !(k & 1) || !(sigma > 0))
        return;   /* lt_aug_pipeline_check rejects these; a no-op keeps the image */
    /* torchvision _get_gaussian_kernel1d: x = linspace(-(k-1)/2, (k-1)/2, k) */
    float kern[LT_AUG_MAX_KSIZE];
    const int r = k / 2;
    double ksum = 0;
    for (int t = 0; t < k; t++) {
        const double x = t - r;
        ksum += (kern[t] = (float)exp(-0.5 * (x / sigma) * (x / sigma)));
    }
    for (int t = 0; t < k; t++)
        kern[t] = (float)(kern[t] / ksum);
    /* One padded line at a time, so the blur runs in place without scratch:
     * rows, then columns (the 2-D kernel is the outer product). */
    float line[LT_AUG_MAX_SIDE + LT_AUG_MAX_KSIZE];
    for (int ch = 0; ch < c; ch++) {
        float *pl = img + (size_t)ch * h * w;
        for (int y = 0; y < h; y++) {
            float *row = pl + (size_t)y * w;
            for (int x = -r; x < w + r; x++)
                line[x + r] = row[reflect_idx(x, w)];
            for (int x = 0; x < w; x++) {
                double acc = 0;
                for (int t = 0; t < k; t++)
                    acc += (double)kern[t] * line[x + t];
                row[x] = (float)acc;
            }
        }
        for (int x = 0; x < w; x++) {
            for (int y = -r; y < h + r; y++)
                line[y + r] = pl[(size_t)reflect_idx(y, h) * w + x];
            for (int y = 0; y < h; y++) {
                double acc = 0;
                for (int t = 0; t < k; t++)
                    acc += (double)kern[t] * line[y + t];
                pl[(size_t)y * w + x] = (float)acc;
            }
        }
    }
}

unsigned lt_aug_pipeline_skipped(const lt_aug_pipeline *p, int channels)
{
    if (!p || !p->enabled || channels == 3)
        return 0;
    unsigned m = 0;
    if (p->jitter_p > 0 && p->saturation > 0)
        m |= LT_AUG_OP_SATURATION;
    if (p->jitter_p > 0 && p->hue > 0)
        m |= LT_AUG_OP_HUE;
    if (p->gray_p > 0)
        m |= LT_AUG_OP_GRAYSCALE;
    return m;
}

const char *lt_aug_op_name(unsigned bit)
{
    switch (bit) {
    case LT_AUG_OP_SATURATION: return "saturation";
    case LT_AUG_OP_HUE: return "hue";
    case LT_AUG_OP_GRAYSCALE: return "grayscale";
    }
    return NULL;
}

static int prob_ok(float p) { return p >= 0.0f && p <= 1.0f; }

int lt_aug_pipeline_check(const lt_aug_pipeline *p, int channels, int oh, int ow)
{
    if (!p)
        return lt_err(LT_EINVAL, "augmentation pipeline: NULL");
    if (!p->enabled)
        return LT_OK;
    if (channels < 1 || oh < 1 || ow < 1 || oh > LT_AUG_MAX_SIDE || ow > LT_AUG_MAX_SIDE)
        return lt_err(LT_EINVAL, "augmentation pipeline: image %dx%dx%d (sides 1..%d)", channels, oh, ow,
                      LT_AUG_MAX_SIDE);
    if (p->crop < LT_AUG_CROP_NONE || p->crop > LT_AUG_CROP_RRC)
        return lt_err(LT_EINVAL, "augmentation pipeline: crop kind %d", p->crop);
    if (p->crop == LT_AUG_CROP_PAD && p->pad < 0)
        return lt_err(LT_EINVAL, "augmentation pipeline: pad %d", p->pad);
    if (p->crop == LT_AUG_CROP_RRC) {
        if (p->rrc_scale[1] > 0 && !(p->rrc_scale[0] > 0 && p->rrc_scale[0] <= p->rrc_scale[1]))
            return lt_err(LT_EINVAL, "augmentation pipeline: rrc_scale (%g, %g)", p->rrc_scale[0], p->rrc_scale[1]);
        if (p->rrc_ratio[1] > 0 && !(p->rrc_ratio[0] > 0 && p->rrc_ratio[0] <= p->rrc_ratio[1]))
            return lt_err(LT_EINVAL, "augmentation pipeline: rrc_ratio (%g, %g)", p->rrc_ratio[0], p->rrc_ratio[1]);
    }
    if (!prob_ok(p->jitter_p) || !prob_ok(p->gray_p) || !prob_ok(p->blur_p) || !prob_ok(p->hflip_p))
        return lt_err(LT_EINVAL, "augmentation pipeline: probabilities (jitter %g, gray %g, blur %g, flip %g) "
                      "must be in [0, 1]", p->jitter_p, p->gray_p, p->blur_p, p->hflip_p);
    if (!(p->brightness >= 0) || !(p->contrast >= 0) || !(p->saturation >= 0) || !(p->hue >= 0 && p->hue <= 0.5f))
        return lt_err(LT_EINVAL, "augmentation pipeline: jitter (%g, %g, %g, %g): strengths >= 0, hue in [0, 0.5]",
                      p->brightness, p->contrast, p->saturation, p->hue);
    if (p->blur_p > 0) {
        if (!(p->blur_sigma[0] > 0 && p->blur_sigma[0] <= p->blur_sigma[1]))
            return lt_err(LT_EINVAL, "augmentation pipeline: blur sigma (%g, %g)", p->blur_sigma[0], p->blur_sigma[1]);
        const int k = blur_ksize(p);
        if (k < 1 || !(k & 1) || k > LT_AUG_MAX_KSIZE)
            return lt_err(LT_EINVAL, "augmentation pipeline: blur kernel %d (odd, 1..%d)", k, LT_AUG_MAX_KSIZE);
        if ((oh > ow ? oh : ow) + k > LT_AUG_MAX_SIDE + 1)
            return lt_err(LT_EINVAL, "augmentation pipeline: blur kernel %d too wide for %dx%d", k, oh, ow);
    }
    return LT_OK;
}

void lt_aug_pipeline_mocov2(lt_aug_pipeline *p, int blur_ksize_)
{
    memset(p, 0, sizeof *p);
    p->enabled = 1;
    p->crop = LT_AUG_CROP_RRC;
    p->rrc_scale[0] = 0.2f;
    p->rrc_scale[1] = 1.0f;
    p->jitter_p = 0.8f;
    p->brightness = p->contrast = p->saturation = 0.4f;
    p->hue = 0.1f;
    p->gray_p = 0.2f;
    p->blur_p = 0.5f;
    p->blur_sigma[0] = 0.1f;
    p->blur_sigma[1] = 2.0f;
    p->blur_ksize = blur_ksize_;
    p->hflip_p = 0.5f;
}

/* torchvision ColorJitter._check_input range for a factor, drawn uniform. */
static float jitter_factor(float v, lt_rng *rng)
{
    const double lo = 1.0 - v > 0 ? 1.0 - v : 0.0, hi = 1.0 + v;
    return (float)(lo + (hi - lo) * lt_rng_uniform(rng));
}

void lt_aug_pipeline_apply(const lt_aug_pipeline *p, const lt_aug *base, int c, int h, int w,
                           const uint8_t *img, lt_rng *rng, float *out)
{
    int oh, ow;
    out_dims(base, h, w, &oh, &ow);
    const size_t plane = (size_t)oh * ow;
    if (p->crop == LT_AUG_CROP_RRC) {
        int ci, cj, chh, cww;
        rrc_params_range(p->rrc_scale, p->rrc_ratio, h, w, rng, &ci, &cj, &chh, &cww);
        resize_region(c, h, w, img, ci, cj, chh, cww, oh, ow, out);
    } else if (p->crop == LT_AUG_CROP_PAD) {
        const int pd = p->pad, ry = h + 2 * pd - oh, rx = w + 2 * pd - ow;
        const int oy = ry > 0 ? (int)lt_rng_below(rng, (uint32_t)ry + 1) : 0;
        const int ox = rx > 0 ? (int)lt_rng_below(rng, (uint32_t)rx + 1) : 0;
        copy_window(c, h, w, img, oy - pd, ox - pd, oh, ow, out);
    } else {
        eval_geometry(c, h, w, img, oh, ow, out);
    }
    if (p->jitter_p > 0 && lt_rng_uniform(rng) < p->jitter_p) {
        int32_t order[4] = {0, 1, 2, 3};
        lt_rng_shuffle_i32(rng, order, 4);
        const float fb = p->brightness > 0 ? jitter_factor(p->brightness, rng) : 1.0f;
        const float fc = p->contrast > 0 ? jitter_factor(p->contrast, rng) : 1.0f;
        const float fs = p->saturation > 0 ? jitter_factor(p->saturation, rng) : 1.0f;
        const float fh = p->hue > 0 ? (float)(-p->hue + 2.0 * p->hue * lt_rng_uniform(rng)) : 0.0f;
        for (int k = 0; k < 4; k++) {
            switch (order[k]) {
            case 0: if (p->brightness > 0) lt_aug_brightness(c, plane, out, fb); break;
            case 1: if (p->contrast > 0) lt_aug_contrast(c, plane, out, fc); break;
            case 2: if (p->saturation > 0) lt_aug_saturation(c, plane, out, fs); break;
            default: if (p->hue > 0) lt_aug_hue(c, plane, out, fh); break;
            }
        }
    }
    if (p->gray_p > 0 && lt_rng_uniform(rng) < p->gray_p)
        lt_aug_grayscale(c, plane, out);
    if (p->blur_p > 0 && lt_rng_uniform(rng) < p->blur_p) {
        const float sigma = (float)(p->blur_sigma[0] + (p->blur_sigma[1] - p->blur_sigma[0]) * lt_rng_uniform(rng));
        lt_aug_gaussian_blur(c, oh, ow, out, sigma, blur_ksize(p));
    }
    if (p->hflip_p > 0 && lt_rng_uniform(rng) < p->hflip_p)
        hflip_inplace(c, oh, ow, out);
    normalise(base, c, oh, ow, out);
}
