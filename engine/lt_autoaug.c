/* lt_autoaug.c — AutoAugment's CIFAR-10 policy and Cutout.
 *
 * BALMS trains CIFAR-LT with RandomCrop(32, 4), flip, CIFAR10Policy (the
 * DeepVoltaire AutoAugment copy in data/autoaugment.py), ToTensor, Cutout(1,
 * 16), Normalize. Those ops run on PIL images, so their results are 8-bit
 * after every op and depend on PIL's exact arithmetic: each op here is the
 * Pillow C or Python code it names, on planar uint8 images, and
 * test_autoaug holds every op against outputs Pillow wrote
 * (tests/tools/gen_autoaug_fixture.py). What is PIL's:
 *  - shear: Image.transform(AFFINE, BICUBIC) through ImagingGenericTransform
 *    (sample at pixel centres, Pillow's a = -1 cubic, clamped edges,
 *    truncation to uint8);
 *  - translate: AFFINE with NEAREST and no shear terms, i.e.
 *    ImagingScaleAffine (the running sum xo += a[0] included);
 *  - rotate: Image.rotate's matrix (cos / sin rounded to 15 decimals) through
 *    affine_fixed (16.16 fixed point), the policy's RGBA composite making
 *    the outside 128;
 *  - enhance (Color, Contrast, Brightness, Sharpness): Image.blend of a
 *    degenerate image and the image, in float, truncated (clipped when the
 *    factor extrapolates); L = (19595 R + 38470 G + 7471 B + 2^15) >> 16;
 *    Sharpness's degenerate is the SMOOTH 3x3 kernel with the border copied;
 *  - posterize, solarize, invert, autocontrast, equalize: ImageOps' LUTs.
 * Fill colour 128 everywhere (the policy's fillcolor=(128, 128, 128)).
 *
 * RGB only: the policy fills with the colour (128, 128, 128), which PIL
 * refuses for a 1-channel image. No allocation: the scratch image lives on
 * the stack, which bounds the side (LT_AUTOAUG_MAX_SIDE; lt_proto_engine_aug
 * refuses larger). */
#include "lt_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILL 128

/* The 25 sub-policies of CIFAR10Policy, in the code's order. */
static const lt_aa_subpolicy k_cifar10[LT_AA_CIFAR10_N] = {
    {0.1, LT_AA_INVERT, 7, 0.2, LT_AA_CONTRAST, 6},
    {0.7, LT_AA_ROTATE, 2, 0.3, LT_AA_TRANSLATE_X, 9},
    {0.8, LT_AA_SHARPNESS, 1, 0.9, LT_AA_SHARPNESS, 3},
    {0.5, LT_AA_SHEAR_Y, 8, 0.7, LT_AA_TRANSLATE_Y, 9},
    {0.5, LT_AA_AUTOCONTRAST, 8, 0.9, LT_AA_EQUALIZE, 2},
    {0.2, LT_AA_SHEAR_Y, 7, 0.3, LT_AA_POSTERIZE, 7},
    {0.4, LT_AA_COLOR, 3, 0.6, LT_AA_BRIGHTNESS, 7},
    {0.3, LT_AA_SHARPNESS, 9, 0.7, LT_AA_BRIGHTNESS, 9},
    {0.6, LT_AA_EQUALIZE, 5, 0.5, LT_AA_EQUALIZE, 1},
    {0.6, LT_AA_CONTRAST, 7, 0.6, LT_AA_SHARPNESS, 5},
    {0.7, LT_AA_COLOR, 7, 0.5, LT_AA_TRANSLATE_X, 8},
    {0.3, LT_AA_EQUALIZE, 7, 0.4, LT_AA_AUTOCONTRAST, 8},
    {0.4, LT_AA_TRANSLATE_Y, 3, 0.2, LT_AA_SHARPNESS, 6},
    {0.9, LT_AA_BRIGHTNESS, 6, 0.2, LT_AA_COLOR, 8},
    {0.5, LT_AA_SOLARIZE, 2, 0.0, LT_AA_INVERT, 3},
    {0.2, LT_AA_EQUALIZE, 0, 0.6, LT_AA_AUTOCONTRAST, 0},
    {0.2, LT_AA_EQUALIZE, 8, 0.6, LT_AA_EQUALIZE, 4},
    {0.9, LT_AA_COLOR, 9, 0.6, LT_AA_EQUALIZE, 6},
    {0.8, LT_AA_AUTOCONTRAST, 4, 0.2, LT_AA_SOLARIZE, 8},
    {0.1, LT_AA_BRIGHTNESS, 3, 0.7, LT_AA_COLOR, 0},
    {0.4, LT_AA_SOLARIZE, 5, 0.9, LT_AA_AUTOCONTRAST, 3},
    {0.9, LT_AA_TRANSLATE_Y, 9, 0.7, LT_AA_TRANSLATE_Y, 9},
    {0.9, LT_AA_AUTOCONTRAST, 2, 0.8, LT_AA_SOLARIZE, 3},
    {0.8, LT_AA_EQUALIZE, 8, 0.1, LT_AA_INVERT, 3},
    {0.7, LT_AA_TRANSLATE_Y, 9, 0.9, LT_AA_AUTOCONTRAST, 1},
};

const lt_aa_subpolicy *lt_autoaug_cifar10_policy(void) { return k_cifar10; }

static const char *const k_names[LT_AA_N_OPS] = {
    "shearX", "shearY", "translateX", "translateY", "rotate", "color", "posterize",
    "solarize", "contrast", "sharpness", "brightness", "autocontrast", "equalize", "invert"};

const char *lt_autoaug_op_name(lt_aa_op op)
{
    return (unsigned)op < LT_AA_N_OPS ? k_names[op] : NULL;
}

int lt_autoaug_op_signed(lt_aa_op op)
{
    switch (op) {
    case LT_AA_SHEAR_X: case LT_AA_SHEAR_Y: case LT_AA_TRANSLATE_X: case LT_AA_TRANSLATE_Y:
    case LT_AA_COLOR: case LT_AA_CONTRAST: case LT_AA_SHARPNESS: case LT_AA_BRIGHTNESS:
        return 1;
    default:
        return 0;   /* rotate included: the policy rotates by +magnitude only */
    }
}

/* numpy.linspace(start, stop, 10)[idx]: idx * ((stop - start) / 9) + start,
 * the last value exactly stop. */
static double linspace10(double start, double stop, int idx)
{
    if (idx >= 9) return stop;
    double step = (stop - start) / 9.0;
    return (double)idx * step + start;
}

double lt_autoaug_magnitude(lt_aa_op op, int idx)
{
    if (idx < 0) idx = 0;
    if (idx > 9) idx = 9;
    switch (op) {
    case LT_AA_SHEAR_X: case LT_AA_SHEAR_Y: return linspace10(0.0, 0.3, idx);
    case LT_AA_TRANSLATE_X: case LT_AA_TRANSLATE_Y: return linspace10(0.0, 150.0 / 331.0, idx);
    case LT_AA_ROTATE: return linspace10(0.0, 30.0, idx);
    case LT_AA_COLOR: case LT_AA_CONTRAST: case LT_AA_SHARPNESS: case LT_AA_BRIGHTNESS:
        return linspace10(0.0, 0.9, idx);
    case LT_AA_POSTERIZE: return nearbyint(linspace10(8.0, 4.0, idx));   /* np.round: half to even */
    case LT_AA_SOLARIZE: return linspace10(256.0, 0.0, idx);
    default: return 0.0;
    }
}

/* ---- geometry --------------------------------------------------------------- */

/* Pillow's FLOOR / COORD (Geometry.c). */
static inline int pil_floor(double v) { return v < 0.0 ? (int)floor(v) : (int)v; }
static inline int pil_coord(double v) { return v < 0.0 ? -1 : (int)v; }
static inline int clipi(int v, int n) { return v < 0 ? 0 : v < n ? v : n - 1; }

static inline double cubic(double v1, double v2, double v3, double v4, double d)
{
    double p1 = v2;
    double p2 = -v1 + v3;
    double p3 = 2 * (v1 - v2) + v3 - v4;
    double p4 = -v1 + v2 - v3 + v4;
    return p1 + d * (p2 + d * (p3 + d * p4));
}

/* bicubic_filter32RGB at (xin, yin), every channel of a planar image:
 * 0 (and out untouched) when the point is outside. The taps and weights
 * are found once for the pixel, as PIL's BICUBIC_HEAD does, then each
 * channel is BICUBIC_BODY. */
static int bicubic_at(int c, const uint8_t *img, int h, int w, double xin, double yin, uint8_t *out,
                      size_t stride)
{
    if (xin < 0.0 || xin >= w || yin < 0.0 || yin >= h) return 0;
    xin -= 0.5;
    yin -= 0.5;
    int x = pil_floor(xin), y = pil_floor(yin);
    double dx = xin - x, dy = yin - y;
    x--;
    y--;
    const int x0 = clipi(x, w), x1 = clipi(x + 1, w), x2 = clipi(x + 2, w), x3 = clipi(x + 3, w);
    const int r0 = clipi(y, h);
    /* rows y+1..y+3 outside the image repeat the row value before them */
    const int ok1 = y + 1 >= 0 && y + 1 < h, ok2 = y + 2 >= 0 && y + 2 < h, ok3 = y + 3 >= 0 && y + 3 < h;
    const size_t plane = (size_t)h * w;
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *pl = img + (size_t)ch * plane, *in = pl + (size_t)r0 * w;
        double v1 = cubic(in[x0], in[x1], in[x2], in[x3], dx), v2 = v1, v3, v4;
        if (ok1) {
            in = pl + (size_t)(y + 1) * w;
            v2 = cubic(in[x0], in[x1], in[x2], in[x3], dx);
        }
        v3 = v2;
        if (ok2) {
            in = pl + (size_t)(y + 2) * w;
            v3 = cubic(in[x0], in[x1], in[x2], in[x3], dx);
        }
        v4 = v3;
        if (ok3) {
            in = pl + (size_t)(y + 3) * w;
            v4 = cubic(in[x0], in[x1], in[x2], in[x3], dx);
        }
        v1 = cubic(v1, v2, v3, v4, dy);
        out[(size_t)ch * stride] = v1 <= 0.0 ? 0 : v1 >= 255.0 ? 255 : (uint8_t)v1;
    }
    return 1;
}

/* Image.transform(AFFINE, a, BICUBIC, fillcolor=128): every output pixel
 * samples at a * (x + 0.5, y + 0.5). */
static void shear_bicubic(int c, int h, int w, const uint8_t *src, uint8_t *dst, const double a[6])
{
    const size_t plane = (size_t)h * w;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double xi = x + 0.5, yi = y + 0.5;
            double xx = a[0] * xi + a[1] * yi + a[2];
            double yy = a[3] * xi + a[4] * yi + a[5];
            uint8_t *o = dst + (size_t)y * w + x;
            if (!bicubic_at(c, src, h, w, xx, yy, o, plane))
                for (int ch = 0; ch < c; ch++) o[(size_t)ch * plane] = FILL;
        }
}

/* ImagingScaleAffine (nearest, a[1] = a[3] = 0): the translations. */
static void scale_affine(int c, int h, int w, const uint8_t *src, uint8_t *dst, const double a[6])
{
    int xintab[LT_AUTOAUG_MAX_SIDE];
    double xo = a[2] + a[0] * 0.5, yo = a[5] + a[4] * 0.5;
    int xmin = w, xmax = 0;
    for (int x = 0; x < w; x++) {
        int xin = pil_coord(xo);
        xintab[x] = 0;
        if (xin >= 0 && xin < w) {
            xmax = x + 1;
            if (x < xmin) xmin = x;
            xintab[x] = xin;
        }
        xo += a[0];
    }
    memset(dst, FILL, (size_t)c * h * w);
    for (int y = 0; y < h; y++) {
        int yi = pil_coord(yo);
        if (yi >= 0 && yi < h)
            for (int ch = 0; ch < c; ch++) {
                const uint8_t *in = src + ((size_t)ch * h + yi) * w;
                uint8_t *o = dst + ((size_t)ch * h + y) * w;
                for (int x = xmin; x < xmax; x++) o[x] = in[xintab[x]];
            }
        yo += a[4];
    }
}

static inline int fix16(double v) { return pil_floor(v * 65536.0 + 0.5); }

/* affine_fixed: nearest neighbour in 16.16 fixed point (Image.rotate). */
static void affine_fixed(int c, int h, int w, const uint8_t *src, uint8_t *dst, const double a[6])
{
    int a0 = fix16(a[0]), a1 = fix16(a[1]), a3 = fix16(a[3]), a4 = fix16(a[4]);
    int a2 = fix16(a[2] + a[0] * 0.5 + a[1] * 0.5);
    int a5 = fix16(a[5] + a[3] * 0.5 + a[4] * 0.5);
    memset(dst, FILL, (size_t)c * h * w);
    for (int y = 0; y < h; y++) {
        int xx = a2, yy = a5;
        for (int x = 0; x < w; x++) {
            int xin = xx >> 16;
            if (xin >= 0 && xin < w) {
                int yin = yy >> 16;
                if (yin >= 0 && yin < h)
                    for (int ch = 0; ch < c; ch++)
                        dst[((size_t)ch * h + y) * w + x] = src[((size_t)ch * h + yin) * w + xin];
            }
            xx += a0;
            yy += a3;
        }
        a2 += a1;
        a5 += a4;
    }
}

/* Python's round(v, 15): through the decimal string, as CPython does. */
static double round15(double v)
{
    char s[64];
    snprintf(s, sizeof s, "%.15f", v);
    return strtod(s, NULL);
}

/* Image.rotate(deg) about the centre, no expand: its affine matrix. */
static void rotate_matrix(double deg, int h, int w, double m[6])
{
    double ang = fmod(deg, 360.0);
    if (ang < 0) ang += 360.0;
    double r = -(ang * (M_PI / 180.0));   /* -math.radians(ang): x * (pi / 180) */
    double cx = w / 2.0, cy = h / 2.0;
    m[0] = round15(cos(r));
    m[1] = round15(sin(r));
    m[2] = 0.0;
    m[3] = round15(-sin(r));
    m[4] = round15(cos(r));
    m[5] = 0.0;
    double tx = m[0] * -cx + m[1] * -cy + m[2];
    double ty = m[3] * -cx + m[4] * -cy + m[5];
    m[2] = tx + cx;
    m[5] = ty + cy;
}

/* ---- colour ------------------------------------------------------------------- */

/* ImagingBlend(im1, im2, alpha), alpha in float. */
static inline uint8_t blend(uint8_t in1, uint8_t in2, float alpha)
{
    if (alpha >= 0 && alpha <= 1.0f) return (uint8_t)((int)in1 + alpha * ((int)in2 - (int)in1));
    float t = (float)((int)in1 + alpha * ((int)in2 - (int)in1));
    return t <= 0.0f ? 0 : t >= 255.0f ? 255 : (uint8_t)t;
}

static inline uint8_t luma(int r, int g, int b)
{
    return (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

/* blend(degenerate, img, factor) over all channels; Image.blend returns a
 * copy of im1 / im2 at alpha 0 / 1. */
static void blend_image(size_t n, const uint8_t *deg, uint8_t *img, float f)
{
    if (f == 1.0f) return;
    if (f == 0.0f) {
        memcpy(img, deg, n);
        return;
    }
    for (size_t i = 0; i < n; i++) img[i] = blend(deg[i], img[i], f);
}

static void enhance_color(size_t plane, uint8_t *img, uint8_t *deg, float f)
{
    for (size_t i = 0; i < plane; i++) deg[i] = luma(img[i], img[plane + i], img[2 * plane + i]);
    memcpy(deg + plane, deg, plane);
    memcpy(deg + 2 * plane, deg, plane);
    blend_image(3 * plane, deg, img, f);
}

static void enhance_contrast(int c, size_t plane, uint8_t *img, uint8_t *deg, float f)
{
    /* ImageStat mean of the L image: sum(i * hist[i]) / n, then int(mean + 0.5). */
    unsigned long long sum = 0;
    for (size_t i = 0; i < plane; i++)
        sum += luma(img[i], img[plane + i], img[2 * plane + i]);
    int mean = (int)((double)sum / (double)plane + 0.5);
    memset(deg, mean, (size_t)c * plane);
    blend_image((size_t)c * plane, deg, img, f);
}

static void enhance_brightness(int c, size_t plane, uint8_t *img, uint8_t *deg, float f)
{
    memset(deg, 0, (size_t)c * plane);
    blend_image((size_t)c * plane, deg, img, f);
}

/* ImageFilter.SMOOTH through ImagingFilter3x3: the border rows and columns
 * are copied; inside, a float sum from the row below to the row above. */
static void smooth3x3(int c, int h, int w, const uint8_t *img, uint8_t *deg)
{
    const float k1 = (float)(1.0 / 13.0), k5 = (float)(5.0 / 13.0);
    const float kern[9] = {k1, k1, k1, k1, k5, k1, k1, k1, k1};
    memcpy(deg, img, (size_t)c * h * w);
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *pl = img + (size_t)ch * h * w;
        uint8_t *o = deg + (size_t)ch * h * w;
        for (int y = 1; y < h - 1; y++) {
            const uint8_t *in_1 = pl + (size_t)(y - 1) * w, *in0 = pl + (size_t)y * w,
                          *in1 = pl + (size_t)(y + 1) * w;
            for (int x = 1; x < w - 1; x++) {
                float ss = 0.5f;
                ss += (float)in1[x - 1] * kern[0] + (float)in1[x] * kern[1] + (float)in1[x + 1] * kern[2];
                ss += (float)in0[x - 1] * kern[3] + (float)in0[x] * kern[4] + (float)in0[x + 1] * kern[5];
                ss += (float)in_1[x - 1] * kern[6] + (float)in_1[x] * kern[7] + (float)in_1[x + 1] * kern[8];
                ss = ss < 0.0f ? 0.0f : ss;
                ss = ss > 255.0f ? 255.0f : ss;
                o[(size_t)y * w + x] = (uint8_t)ss;
            }
        }
    }
}

static void apply_lut(size_t n, uint8_t *p, const uint8_t lut[256])
{
    for (size_t i = 0; i < n; i++) p[i] = lut[p[i]];
}

static void hist(size_t n, const uint8_t *p, long h[256])
{
    memset(h, 0, 256 * sizeof *h);
    for (size_t i = 0; i < n; i++) h[p[i]]++;
}

static void autocontrast(int c, size_t plane, uint8_t *img)
{
    for (int ch = 0; ch < c; ch++) {
        uint8_t *p = img + (size_t)ch * plane;
        long h[256];
        hist(plane, p, h);
        int lo = 0, hi = 255;
        while (lo < 255 && !h[lo]) lo++;
        while (hi > 0 && !h[hi]) hi--;
        if (hi <= lo) continue;
        double scale = 255.0 / (hi - lo), offset = -lo * scale;
        uint8_t lut[256];
        for (int i = 0; i < 256; i++) {
            double v = i * scale + offset;
            int iv = (int)v;   /* Python int(): toward zero */
            lut[i] = (uint8_t)(iv < 0 ? 0 : iv > 255 ? 255 : iv);
        }
        apply_lut(plane, p, lut);
    }
}

static void equalize(int c, size_t plane, uint8_t *img)
{
    for (int ch = 0; ch < c; ch++) {
        uint8_t *p = img + (size_t)ch * plane;
        long h[256];
        hist(plane, p, h);
        long total = 0, last = 0;
        int used = 0;
        for (int i = 0; i < 256; i++)
            if (h[i]) {
                total += h[i];
                last = h[i];
                used++;
            }
        if (used <= 1) continue;
        long step = (total - last) / 255;
        if (!step) continue;
        long n = step / 2;
        uint8_t lut[256];
        for (int i = 0; i < 256; i++) {
            long v = n / step;   /* point() clips the LUT to 0..255 */
            lut[i] = (uint8_t)(v > 255 ? 255 : v);
            n += h[i];
        }
        apply_lut(plane, p, lut);
    }
}

/* ---- one op --------------------------------------------------------------------- */

int lt_autoaug_op(lt_aa_op op, double mag, int c, int h, int w, uint8_t *img)
{
    if (!img || c != 3 || h < 1 || w < 1 || h > LT_AUTOAUG_MAX_SIDE || w > LT_AUTOAUG_MAX_SIDE)
        return LT_EINVAL;
    uint8_t tmp[3 * LT_AUTOAUG_MAX_SIDE * LT_AUTOAUG_MAX_SIDE];
    const size_t plane = (size_t)h * w, n = (size_t)c * plane;
    double a[6] = {1, 0, 0, 0, 1, 0};
    switch (op) {
    case LT_AA_SHEAR_X:
        a[1] = mag;
        shear_bicubic(c, h, w, img, tmp, a);
        break;
    case LT_AA_SHEAR_Y:
        a[3] = mag;
        shear_bicubic(c, h, w, img, tmp, a);
        break;
    case LT_AA_TRANSLATE_X:
        a[2] = mag * w;
        scale_affine(c, h, w, img, tmp, a);
        break;
    case LT_AA_TRANSLATE_Y:
        a[5] = mag * h;
        scale_affine(c, h, w, img, tmp, a);
        break;
    case LT_AA_ROTATE: {
        double ang = fmod(mag, 360.0);
        if (ang < 0) ang += 360.0;
        if (ang == 0.0) return LT_OK;
        /* 90 / 180 / 270 go through transpose in PIL: not reached by the policy */
        if (ang == 90.0 || ang == 180.0 || ang == 270.0) return LT_EINVAL;
        rotate_matrix(mag, h, w, a);
        affine_fixed(c, h, w, img, tmp, a);
        break;
    }
    case LT_AA_COLOR:
        enhance_color(plane, img, tmp, (float)(1.0 + mag));
        return LT_OK;
    case LT_AA_CONTRAST:
        enhance_contrast(c, plane, img, tmp, (float)(1.0 + mag));
        return LT_OK;
    case LT_AA_BRIGHTNESS:
        enhance_brightness(c, plane, img, tmp, (float)(1.0 + mag));
        return LT_OK;
    case LT_AA_SHARPNESS:
        smooth3x3(c, h, w, img, tmp);
        blend_image(n, tmp, img, (float)(1.0 + mag));
        return LT_OK;
    case LT_AA_POSTERIZE: {
        int bits = (int)mag;
        if (bits < 1 || bits > 8) return LT_EINVAL;
        uint8_t mask = (uint8_t)~((1u << (8 - bits)) - 1u);
        for (size_t i = 0; i < n; i++) img[i] &= mask;
        return LT_OK;
    }
    case LT_AA_SOLARIZE:
        for (size_t i = 0; i < n; i++)
            if (!(img[i] < mag)) img[i] = (uint8_t)(255 - img[i]);
        return LT_OK;
    case LT_AA_AUTOCONTRAST:
        autocontrast(c, plane, img);
        return LT_OK;
    case LT_AA_EQUALIZE:
        equalize(c, plane, img);
        return LT_OK;
    case LT_AA_INVERT:
        for (size_t i = 0; i < n; i++) img[i] = (uint8_t)(255 - img[i]);
        return LT_OK;
    default:
        return LT_EINVAL;
    }
    memcpy(img, tmp, n);
    return LT_OK;
}

/* ---- the policy --------------------------------------------------------------------- */

static void apply_one(lt_aa_op op, int idx, int c, int h, int w, uint8_t *img, lt_rng *rng)
{
    double m = lt_autoaug_magnitude(op, idx);
    if (lt_autoaug_op_signed(op) && lt_rng_below(rng, 2) == 0) m = -m;   /* random.choice([-1, 1]) */
    (void)lt_autoaug_op(op, m, c, h, w, img);
}

int lt_autoaug_cifar10(int c, int h, int w, uint8_t *img, lt_rng *rng)
{
    if (c != 3 || h < 1 || w < 1 || h > LT_AUTOAUG_MAX_SIDE || w > LT_AUTOAUG_MAX_SIDE) return -1;
    int k = (int)lt_rng_below(rng, LT_AA_CIFAR10_N);
    const lt_aa_subpolicy *s = &k_cifar10[k];
    if (lt_rng_uniform(rng) < s->p1) apply_one(s->op1, s->idx1, c, h, w, img, rng);
    if (lt_rng_uniform(rng) < s->p2) apply_one(s->op2, s->idx2, c, h, w, img, rng);
    return k;
}

void lt_cutout(int c, int h, int w, float *img, int holes, int length, float fill, lt_rng *rng)
{
    const size_t plane = (size_t)h * w;
    for (int k = 0; k < holes; k++) {
        int y = (int)lt_rng_below(rng, (uint32_t)h), x = (int)lt_rng_below(rng, (uint32_t)w);
        int y1 = y - length / 2, y2 = y + length / 2, x1 = x - length / 2, x2 = x + length / 2;
        y1 = y1 < 0 ? 0 : y1 > h ? h : y1;
        y2 = y2 < 0 ? 0 : y2 > h ? h : y2;
        x1 = x1 < 0 ? 0 : x1 > w ? w : x1;
        x2 = x2 < 0 ? 0 : x2 > w ? w : x2;
        for (int ch = 0; ch < c; ch++)
            for (int yy = y1; yy < y2; yy++)
                for (int xx = x1; xx < x2; xx++) img[ch * plane + (size_t)yy * w + xx] = fill;
    }
}
