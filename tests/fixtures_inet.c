/* fixtures_inet.c — writes a synthetic ImageNet-LT look-alike in the real
 * on-disk layout (the OLTR split lists over ILSVRC-2012's two tars, the
 * train tar nested), for dataset imagenet_lt_fixture and protocol
 * imagenet_lt_fixture: a full-scale model (ResNet-50, 224 px, 1000 classes)
 * can run end to end through the real list reader, nested-tar walker, JPEG
 * decoder, cache and runner where ImageNet (an account and 140 GB) is
 * unavailable. It is NOT ImageNet and its numbers say nothing about it; its
 * use is the pipeline and the throughput of a full-size model.
 *
 * Images: each is a noisy background and, in a random box covering 40-90%
 * of each side, stripes whose hue (golden-ratio steps of the label),
 * orientation (label mod 4) and period (from label / 4) identify the class,
 * with per-image jitter. Every image has its own random stream (splitmix64
 * of seed, label and index), so any image can be re-rendered alone
 * (fx_inet_render: the round-trip test compares decoded pixels with it). */
#include "fixtures_inet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures_img.h"

#define WHO "make_imagenet_lt_fixture"   /* what its messages start with */

void fx_inet_spec_default(fx_inet_spec *s) {
    *s = (fx_inet_spec){.classes = 1000, .head = 320, .val_per_class = 1, .test_per_class = 1, .side = 224, .seed = 0};
}

int fx_inet_train_count(const fx_inet_spec *s, int k) {
    const long n = lrint((double)s->head / (k + 1));
    return n < 1 ? 1 : (int)n;
}

long fx_inet_train_total(const fx_inet_spec *s) {
    long t = 0;
    for (int k = 0; k < s->classes; k++) t += fx_inet_train_count(s, k);
    return t;
}

/* ---- one image -------------------------------------------------------------------- */
typedef struct {
    uint64_t s;
} rng_t;
static uint64_t next(rng_t *r) {   /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double unif(rng_t *r) { return (double)(next(r) >> 11) / 9007199254740992.0; }

void fx_inet_render(const fx_inet_spec *s, int k, int index, uint8_t *pix) {
    rng_t r = {s->seed * 0x100000001B3ULL ^ ((uint64_t)k << 32) ^ (uint64_t)index};
    next(&r);
    const int S = s->side;
    double bg[3];
    fx_hsv(unif(&r), 0.15 + 0.3 * unif(&r), 0.25 + 0.4 * unif(&r), bg);
    for (int i = 0; i < S * S; i++) {
        const double n = 16.0 * (unif(&r) - 0.5);
        for (int q = 0; q < 3; q++) pix[i * 3 + q] = fx_clamp8(bg[q] + n);
    }
    const int bw = (int)(S * (0.4 + 0.5 * unif(&r))), bh = (int)(S * (0.4 + 0.5 * unif(&r)));
    const int bx = (int)((S - bw) * unif(&r)), by = (int)((S - bh) * unif(&r));
    const double hue = fmod(k * 0.6180339887, 1.0) + (unif(&r) - 0.5) * 0.02;
    const double val = 0.7 + 0.3 * unif(&r);
    double fg[3], dark[3];
    fx_hsv(hue, 0.85, val, fg);
    fx_hsv(hue, 0.85, val * 0.3, dark);
    const int orient = k % 4;
    int half = S * (2 + (k / 4) % 6) / 112;   /* half a stripe period: 4..14 px at 224 */
    if (half < 2) half = 2;   /* 1-px stripes would be JPEG noise at small sides */
    for (int y = by; y < by + bh; y++)
        for (int x = bx; x < bx + bw; x++) {
            const int t = orient == 0 ? x : orient == 1 ? y : orient == 2 ? x + y : x - y + 4 * S;
            const double *c = (t / half) % 2 ? fg : dark;
            const double n = 16.0 * (unif(&r) - 0.5);
            for (int q = 0; q < 3; q++) pix[(y * S + x) * 3 + q] = fx_clamp8(c[q] + n);
        }
}

/* ---- the files ------------------------------------------------------------------------ */
typedef struct {
    char *s;
    size_t len, cap;
} sbuf;
static int sb_add(sbuf *b, const char *t) {
    const size_t n = strlen(t);
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1 << 16;
        while (nc < b->len + n + 1) nc *= 2;
        char *p = realloc(b->s, nc);
        if (!p) return -1;
        b->s = p;
        b->cap = nc;
    }
    memcpy(b->s + b->len, t, n + 1);
    b->len += n;
    return 0;
}

static void members_free(fx_member *m, int n) {
    for (int i = 0; i < n; i++) {
        free((void *)m[i].name);
        free((void *)m[i].data);
    }
}

/* One JPEG of (k, index) as an archive member named `name`. */
static int jpeg_member(const fx_inet_spec *s, int k, int index, uint8_t *pix, const char *name, fx_member *m) {
    uint8_t *jpg;
    size_t len;
    fx_inet_render(s, k, index, pix);
    if (fx_jpeg_encode(pix, s->side, s->side, 3, FX_INET_JPEG_QUALITY, &jpg, &len)) return -1;
    char *nm = strdup(name);
    if (!nm) { free(jpg); return -1; }
    *m = (fx_member){nm, jpg, len};
    return 0;
}

int fx_inet_fixture_write(const char *out, const fx_inet_spec *s, FILE *log) {
    if (s->classes < 1 || s->classes > 10000000 || s->head < 1 || s->val_per_class < 0 || s->test_per_class < 1 ||
        s->side < 8 || s->side > 4096) {
        fprintf(stderr, WHO ": bad fixture shape\n");
        return -1;
    }
    if (fx_make_dir(WHO, out)) return -1;
    char inner_tmp[1200];
    snprintf(inner_tmp, sizeof inner_tmp, "%s/.inner.tar.tmp", out);
    uint8_t *pix = malloc((size_t)s->side * s->side * 3);
    fx_member *outer = calloc((size_t)s->classes, sizeof *outer);
    fx_member *test = calloc((size_t)s->classes * s->test_per_class, sizeof *test);
    const int max_per_class = fx_inet_train_count(s, 0) + s->val_per_class;
    fx_member *cls = calloc((size_t)max_per_class, sizeof *cls);
    sbuf tr = {0}, va = {0}, te = {0};
    int rc = pix && outer && test && cls ? 0 : -1, n_outer = 0, n_test = 0;
    long n_tr = 0, n_va = 0;
    char line[256], name[128], wnid[16];
    for (int k = 0; k < s->classes && !rc; k++) {
        snprintf(wnid, sizeof wnid, "n9%07d", k);
        const int nt = fx_inet_train_count(s, k), nc = nt + s->val_per_class;
        int n_cls = 0;
        for (int i = 0; i < nc && !rc; i++) {
            snprintf(name, sizeof name, "%s_%d.JPEG", wnid, i + 1);
            rc = jpeg_member(s, k, i, pix, name, &cls[n_cls]);
            if (rc) break;
            n_cls++;
            snprintf(line, sizeof line, "train/%s/%s %d\n", wnid, name, k);
            rc = sb_add(i < nt ? &tr : &va, line);
            if (i < nt) n_tr++; else n_va++;
        }
        /* the class's inner tar, as ILSVRC2012_img_train.tar holds them */
        char *inner = NULL;
        size_t inner_len = 0;
        if (!rc && (fx_write_archive(inner_tmp, "tar", cls, n_cls) || fx_read_file(inner_tmp, &inner, &inner_len)))
            rc = -1;
        members_free(cls, n_cls);
        if (!rc) {
            snprintf(name, sizeof name, "%s.tar", wnid);
            outer[n_outer] = (fx_member){strdup(name), inner, inner_len};
            if (!outer[n_outer].name) rc = -1;
            n_outer++;
        }
        for (int j = 0; j < s->test_per_class && !rc; j++) {
            snprintf(name, sizeof name, "ILSVRC2012_val_%08d.JPEG", n_test + 1);
            rc = jpeg_member(s, k, nc + j, pix, name, &test[n_test]);
            if (rc) break;
            n_test++;
            snprintf(line, sizeof line, "val/%s/%s %d\n", wnid, name, k);
            rc = sb_add(&te, line);
        }
        if (!rc && log && (k + 1) % 100 == 0)
            fprintf(log, WHO ": %d of %d classes rendered\n", k + 1, s->classes);
    }
    remove(inner_tmp);
    if (!rc) rc = fx_put_archive(WHO, out, "ILSVRC2012_img_train.tar", "tar", outer, n_outer);
    if (!rc) rc = fx_put_archive(WHO, out, "ILSVRC2012_img_val.tar", "tar", test, n_test);
    if (!rc) rc = fx_put_file(WHO, out, "ImageNet_LT_train.txt", tr.s ? tr.s : "", tr.len);
    if (!rc) rc = fx_put_file(WHO, out, "ImageNet_LT_val.txt", va.s ? va.s : "", va.len);
    if (!rc) rc = fx_put_file(WHO, out, "ImageNet_LT_test.txt", te.s ? te.s : "", te.len);
    if (!rc && log)
        fprintf(log, WHO ": %d classes, %ld train (class 0: %d, last: %d), %ld val, %d test "
                     "images of %dx%d px in %s\n",
                s->classes, n_tr, fx_inet_train_count(s, 0), fx_inet_train_count(s, s->classes - 1), n_va, n_test,
                s->side, s->side, out);
    if (rc) fprintf(stderr, WHO ": failed writing into %s\n", out);
    members_free(outer, n_outer);
    members_free(test, n_test);
    free(outer);
    free(test);
    free(cls);
    free(pix);
    free(tr.s);
    free(va.s);
    free(te.s);
    return rc ? -1 : 0;
}
