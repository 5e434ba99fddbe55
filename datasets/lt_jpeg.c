/* lt_jpeg.c — JPEG decoding (libjpeg-turbo) and the fixed resampler every
 * JPEG dataset is stored through.
 *
 * Decoding never reaches libjpeg's default error_exit (which calls exit()):
 * a setjmp error manager turns fatal errors into LT_EDATA naming the image.
 * Warnings are treated like PIL treats them: a premature end of data (a
 * truncated file, which libjpeg would silently fill with grey) is an error;
 * other warnings (e.g. extraneous bytes before EOI, common in ImageNet) are
 * tolerated so that the set decodes the way the reference loaders decode it.
 *
 * Resampling: the same rule for every dataset, so stored pixels are a pure
 * function of the JPEG bytes and the size: along a shrinking axis the exact
 * area average (box filter with fractional edge weights), along a growing
 * axis bilinear interpolation (pixel centres at +0.5, clamped to the source
 * rectangle). Accumulation in float in a fixed order, rounding to nearest. */
#include "lt_imagesets.h"

#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr_t;

static void jerr_exit(j_common_ptr c)
{
    jerr_t *e = (jerr_t *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jb, 1);
}

static void jerr_emit(j_common_ptr c, int level)
{
    jerr_t *e = (jerr_t *)c->err;
    /* level -1 = warning. Only a premature end of data is fatal (see top). */
    if (level == -1) {
        c->err->num_warnings++;
        if (c->err->msg_code == JWRN_JPEG_EOF) {
            (*c->err->format_message)(c, e->msg);
            longjmp(e->jb, 1);
        }
    }
}

static void jerr_output(j_common_ptr c) { (void)c; /* never print to stderr */ }

/* Separate from lt_jpeg_decode so that no argument is modified between
 * setjmp and longjmp (they would need to be volatile otherwise). */
static int decode_impl(const char *name, const uint8_t *buf, size_t len, uint8_t **rgb, int *w,
                       int *h)
{
    if (len < 4 || buf[0] != 0xFF || buf[1] != 0xD8)
        return lt_err(LT_EDATA, "%s: not a JPEG file (%zu bytes, does not start with FF D8)",
                      name, len);
    struct jpeg_decompress_struct cinfo;
    jerr_t jerr;
    /* volatile: modified between setjmp and a possible longjmp. */
    uint8_t *volatile out = NULL;
    uint8_t *volatile row = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jerr_exit;
    jerr.pub.emit_message = jerr_emit;
    jerr.pub.output_message = jerr_output;
    jerr.msg[0] = 0;
    if (setjmp(jerr.jb)) {
        jpeg_destroy_decompress(&cinfo);
        free(out);
        free(row);
        return lt_err(LT_EDATA, "%s: corrupt JPEG: %s", name, jerr.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, buf, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    /* before jpeg_start_decompress: a progressive image's coefficient
     * buffers for the whole frame are allocated there */
    if ((size_t)cinfo.image_width * (size_t)cinfo.image_height > LT_JPEG_MAX_PIXELS) {
        const unsigned iw = cinfo.image_width, ih = cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        return lt_err(LT_EDATA, "%s: JPEG image of %ux%u pixels, more than the %zu allowed (LT_JPEG_MAX_PIXELS)",
                      name, iw, ih, LT_JPEG_MAX_PIXELS);
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    /* Adobe-written CMYK stores inverted ink values (the de-facto convention
     * every decoder follows when the Adobe marker is present). */
    int inverted = cmyk && cinfo.saw_Adobe_marker;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int W = (int)cinfo.output_width, H = (int)cinfo.output_height;
    int nc = cinfo.output_components;
    if (W <= 0 || H <= 0 || (nc != 3 && nc != 4) || (size_t)W * (size_t)H > LT_JPEG_MAX_PIXELS) {
        snprintf(jerr.msg, sizeof jerr.msg, "unsupported geometry %dx%d with %d components", W,
                 H, nc);
        longjmp(jerr.jb, 1);
    }
    out = malloc((size_t)W * (size_t)H * 3);
    row = malloc((size_t)W * (size_t)nc);
    if (!out || !row) {
        snprintf(jerr.msg, sizeof jerr.msg, "out of memory for %dx%d", W, H);
        longjmp(jerr.jb, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = out + (size_t)cinfo.output_scanline * (size_t)W * 3;
        JSAMPROW rp = nc == 3 ? dst : row;
        jpeg_read_scanlines(&cinfo, &rp, 1);
        if (nc == 4) {
            for (int x = 0; x < W; x++) {
                int c = row[4 * x], m = row[4 * x + 1], y = row[4 * x + 2], k = row[4 * x + 3];
                if (!inverted) {
                    c = 255 - c;
                    m = 255 - m;
                    y = 255 - y;
                    k = 255 - k;
                }
                dst[3 * x] = (uint8_t)((c * k + 127) / 255);
                dst[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
                dst[3 * x + 2] = (uint8_t)((y * k + 127) / 255);
            }
        }
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    *rgb = out;
    *w = W;
    *h = H;
    return LT_OK;
}

int lt_jpeg_decode(const char *name, const uint8_t *buf, size_t len, uint8_t **rgb, int *w,
                   int *h)
{
    *rgb = NULL;
    *w = *h = 0;
    return decode_impl(name ? name : "(jpeg)", buf, len, rgb, w, h);
}

/* Taps of one output coordinate along one axis. */
typedef struct {
    int first, count; /* into the shared idx/wt arrays */
} taps_t;

typedef struct {
    taps_t *t;
    int *idx;
    float *wt;
    int lo, hi; /* smallest / largest source index used (hi < lo: none) */
} axis_t;

static void axis_free(axis_t *a)
{
    free(a->t);
    free(a->idx);
    free(a->wt);
}

/* Builds the taps for mapping [r0, r0+rl) onto `out` samples; source
 * indices outside [v0, v1) are dropped (they read as zero). */
static int axis_build(axis_t *a, double r0, double rl, int v0, int v1, int out)
{
    memset(a, 0, sizeof *a);
    double scale = rl / out;
    int maxtaps = scale > 1.0 ? (int)ceil(scale) + 2 : 2;
    a->t = malloc((size_t)out * sizeof *a->t);
    a->idx = malloc((size_t)out * (size_t)maxtaps * sizeof *a->idx);
    a->wt = malloc((size_t)out * (size_t)maxtaps * sizeof *a->wt);
    if (!a->t || !a->idx || !a->wt) {
        axis_free(a);
        return lt_err(LT_ENOMEM, "resample: out of memory");
    }
    a->lo = v1;
    a->hi = v0 - 1;
    int k = 0;
    for (int o = 0; o < out; o++) {
        a->t[o].first = k;
        if (scale > 1.0) {
            double lo = r0 + o * scale, hi = lo + scale;
            for (int i = (int)floor(lo); i < (int)ceil(hi); i++) {
                double ov = fmin(hi, i + 1.0) - fmax(lo, (double)i);
                if (ov <= 0 || i < v0 || i >= v1)
                    continue;
                a->idx[k] = i;
                a->wt[k++] = (float)(ov / scale);
            }
        } else {
            double u = r0 + (o + 0.5) * scale - 0.5;
            double umax = r0 + rl - 1.0;
            if (u > umax)
                u = umax;
            if (u < r0)
                u = r0;
            int i0 = (int)floor(u);
            double f = u - i0;
            int ii[2] = {i0, i0 + 1};
            double ww[2] = {1.0 - f, f};
            for (int j = 0; j < 2; j++) {
                if (ww[j] <= 0 || ii[j] < v0 || ii[j] >= v1)
                    continue;
                a->idx[k] = ii[j];
                a->wt[k++] = (float)ww[j];
            }
        }
        a->t[o].count = k - a->t[o].first;
        for (int j = a->t[o].first; j < k; j++) {
            if (a->idx[j] < a->lo)
                a->lo = a->idx[j];
            if (a->idx[j] > a->hi)
                a->hi = a->idx[j];
        }
    }
    return LT_OK;
}

int lt_resample_rect(const uint8_t *rgb, int w, int h, double rx, double ry, double rw,
                     double rh, int vx0, int vy0, int vx1, int vy1, int out, uint8_t *planar)
{
    if (out <= 0 || w <= 0 || h <= 0 || !(rw >= 1.0) || !(rh >= 1.0))
        return lt_err(LT_EINVAL, "resample: bad geometry (image %dx%d, rect %.1fx%.1f, out %d)",
                      w, h, rw, rh, out);
    /* The valid area is the requested one cut to the image. */
    if (vx0 < 0) vx0 = 0;
    if (vy0 < 0) vy0 = 0;
    if (vx1 > w) vx1 = w;
    if (vy1 > h) vy1 = h;
    axis_t ax, ay;
    LT_TRY(axis_build(&ax, rx, rw, vx0, vx1, out));
    int rc = axis_build(&ay, ry, rh, vy0, vy1, out);
    if (rc) {
        axis_free(&ax);
        return rc;
    }
    size_t plane = (size_t)out * (size_t)out;
    memset(planar, 0, 3 * plane);
    if (ay.hi >= ay.lo && ax.hi >= ax.lo) {
        int nrows = ay.hi - ay.lo + 1;
        float *tmp = malloc((size_t)nrows * (size_t)out * 3 * sizeof *tmp);
        if (!tmp) {
            axis_free(&ax);
            axis_free(&ay);
            return lt_err(LT_ENOMEM, "resample: out of memory");
        }
        /* Horizontal pass over the rows the vertical taps read. */
        for (int r = 0; r < nrows; r++) {
            const uint8_t *src = rgb + (size_t)(ay.lo + r) * (size_t)w * 3;
            float *dst = tmp + (size_t)r * (size_t)out * 3;
            for (int o = 0; o < out; o++) {
                float s0 = 0, s1 = 0, s2 = 0;
                for (int j = ax.t[o].first; j < ax.t[o].first + ax.t[o].count; j++) {
                    const uint8_t *p = src + (size_t)ax.idx[j] * 3;
                    float wv = ax.wt[j];
                    s0 += wv * p[0];
                    s1 += wv * p[1];
                    s2 += wv * p[2];
                }
                dst[3 * o] = s0;
                dst[3 * o + 1] = s1;
                dst[3 * o + 2] = s2;
            }
        }
        /* Vertical pass, writing planar channels. */
        for (int oy = 0; oy < out; oy++) {
            for (int ox = 0; ox < out; ox++) {
                float s[3] = {0, 0, 0};
                for (int j = ay.t[oy].first; j < ay.t[oy].first + ay.t[oy].count; j++) {
                    const float *p = tmp + ((size_t)(ay.idx[j] - ay.lo) * (size_t)out + ox) * 3;
                    float wv = ay.wt[j];
                    s[0] += wv * p[0];
                    s[1] += wv * p[1];
                    s[2] += wv * p[2];
                }
                for (int c = 0; c < 3; c++) {
                    float v = floorf(s[c] + 0.5f);
                    planar[c * plane + (size_t)oy * out + ox] =
                        (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
        }
        free(tmp);
    }
    axis_free(&ax);
    axis_free(&ay);
    return LT_OK;
}

int lt_resize_center_crop(const uint8_t *rgb, int w, int h, int out, uint8_t *planar)
{
    int s = w < h ? w : h;
    return lt_resample_rect(rgb, w, h, (w - s) / 2.0, (h - s) / 2.0, s, s, 0, 0, w, h, out,
                            planar);
}

int lt_jpeg_to_planar(const char *name, const uint8_t *buf, size_t len, int out,
                      uint8_t *planar)
{
    uint8_t *rgb;
    int w, h;
    LT_TRY(lt_jpeg_decode(name, buf, len, &rgb, &w, &h));
    int rc = lt_resize_center_crop(rgb, w, h, out, planar);
    free(rgb);
    if (rc)
        return lt_err_wrap(rc, "%s", name);
    return LT_OK;
}
