/* fixtures_lvis.c — writes a small synthetic LVIS v1 look-alike, in the
 * real file formats, for the `lvis_fixture` dataset (protocol
 * lvis_lt_fixture): the four files the LVIS-LT-cls v1 reader takes —
 * lvis_v1_train.json.zip, lvis_v1_val.json.zip (COCO/LVIS JSON: categories
 * with r/c/f frequency, images with coco_url, annotations with bbox) and
 * train2017.zip / val2017.zip (JPEGs).
 *
 * Why: the real LVIS needs COCO-2017's 19 GB of images, which CI and this
 * machine cannot fetch. The fixture exercises the same reader, crop rule,
 * cache and runner, and gives Balanced Sigmoid a long-tailed, learnable
 * multi-class problem with LVIS's frequency groups — it is NOT LVIS, and
 * every number on it says so (protocol lvis_lt_fixture).
 *
 * Content (fully determined by the seed; xorshift64*, no libc rand):
 *   K = 50 categories; class k has n_k = round(300 * 100^(-k/(K-1))) training
 *   objects (300 .. 3, imbalance ratio 100) and 12 validation objects.
 *   frequency by LVIS's rule on training images: r <= 10, c 11..100, f > 100.
 *   Each object is one 96x80 image: a noisy background and, inside a random
 *   box of 20..56 px, stripes whose colour (hue k/K), orientation (k mod 4)
 *   and period (4 + (k/4) mod 4) identify the class, with per-instance hue
 *   and brightness jitter so neighbouring classes are confusable.
 *
 * Used by `make lvis-fixture` (tests/tools/make_lvis_fixture.c) and by
 * tests/test_lvis_fixture.c. Files are written atomically. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fixtures_lvis.h"
#include "fixtures_img.h"

#define WHO "make_lvis_fixture"   /* what its messages start with */
#define K FX_LVIS_CLASSES
#define N_VAL 12
#define IMG_W 96
#define IMG_H 80

static uint64_t rng_state;
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}
static double unif(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
static int irange(int lo, int hi) { return lo + (int)(unif() * (hi - lo + 1)); }

/* One image of class k; the object box (x, y, w, h) is returned. */
static void render(int k, uint8_t *pix, int *bx, int *by, int *bw, int *bh) {
    double bg[3];
    fx_hsv(unif(), 0.2 + 0.3 * unif(), 0.3 + 0.4 * unif(), bg);
    for (int i = 0; i < IMG_W * IMG_H; i++)
        for (int q = 0; q < 3; q++) pix[i * 3 + q] = fx_clamp8(bg[q] + 40.0 * (unif() - 0.5));
    *bw = irange(20, 56);
    *bh = irange(20, 56);
    if (*bh > IMG_H - 4) *bh = IMG_H - 4;
    *bx = irange(2, IMG_W - *bw - 2);
    *by = irange(2, IMG_H - *bh - 2);
    double fg[3], dark[3];
    const double hue = (double)k / K + (unif() - 0.5) * 1.5 / K;   /* overlaps the neighbours */
    const double val = 0.65 + 0.35 * unif();
    fx_hsv(hue, 0.85, val, fg);
    fx_hsv(hue, 0.85, val * 0.35, dark);
    const int orient = k % 4, period = 4 + (k / 4) % 4;
    for (int y = *by; y < *by + *bh; y++)
        for (int x = *bx; x < *bx + *bw; x++) {
            int t = orient == 0 ? x : orient == 1 ? y : orient == 2 ? x + y : x - y + 1000;
            const double *c = (t / (period / 2 > 0 ? period / 2 : 1)) % 2 ? fg : dark;
            for (int q = 0; q < 3; q++) pix[(y * IMG_W + x) * 3 + q] = fx_clamp8(c[q] + 30.0 * (unif() - 0.5));
        }
}

typedef struct {
    char *s;
    size_t len, cap;
} sbuf;
static int sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sb_printf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return -1;
        if (b->s && b->len + (size_t)n < b->cap) { b->len += (size_t)n; return 0; }
        size_t nc = b->cap ? b->cap * 2 : 1 << 16;
        while (nc < b->len + (size_t)n + 1) nc *= 2;
        char *p = realloc(b->s, nc);
        if (!p) return -1;
        b->s = p;
        b->cap = nc;
    }
}

/* One split: JSON text and image members. Image and annotation ids start at
 * id0 (train and val ids do not collide, and all stay below the reader's
 * dropped-annotation list, whose smallest id is 10932). */
static int make_split(int val, int id0, const int *count, const char *freq, sbuf *js, fx_member **mem,
                      int *n_mem) {
    int total = 0;
    for (int k = 0; k < K; k++) total += val ? N_VAL : count[k];
    *mem = calloc((size_t)total, sizeof **mem);
    uint8_t *pix = malloc(IMG_W * IMG_H * 3);
    if (!*mem || !pix) return -1;
    const char *dir = val ? "val2017" : "train2017";
    sb_printf(js, "{\"info\": {\"description\": \"ltbench synthetic LVIS look-alike (not LVIS)\"}, \"categories\": [");
    for (int k = 0; k < K; k++)
        sb_printf(js, "%s{\"id\": %d, \"name\": \"synthetic_%02d\", \"frequency\": \"%c\", \"image_count\": %d}",
                  k ? ", " : "", k + 1, k, freq[k], count[k]);
    sbuf an = {0};
    sb_printf(js, "], \"images\": [");
    int n = 0;
    for (int k = 0; k < K; k++) {
        const int m = val ? N_VAL : count[k];
        for (int i = 0; i < m; i++, n++) {
            const int id = id0 + n;
            int bx, by, bw, bh;
            render(k, pix, &bx, &by, &bw, &bh);
            char name[64];
            snprintf(name, sizeof name, "%s/%012d.jpg", dir, id);
            uint8_t *jpg;
            size_t len;
            if (fx_jpeg_encode(pix, IMG_W, IMG_H, 3, 90, &jpg, &len)) return -1;
            (*mem)[n] = (fx_member){strdup(name), jpg, len};
            sb_printf(js, "%s{\"id\": %d, \"coco_url\": \"http://images.cocodataset.org/%s/%012d.jpg\", "
                          "\"width\": %d, \"height\": %d}",
                      n ? ", " : "", id, dir, id, IMG_W, IMG_H);
            sb_printf(&an, "%s{\"id\": %d, \"image_id\": %d, \"category_id\": %d, \"bbox\": [%d, %d, %d, %d], "
                           "\"area\": %d}",
                      n ? ", " : "", id, id, k + 1, bx, by, bw, bh, bw * bh);
        }
    }
    sb_printf(js, "], \"annotations\": [%s]}", an.s ? an.s : "");
    free(an.s);
    free(pix);
    *n_mem = n;
    return 0;
}

int fx_lvis_fixture_write(const char *out, uint64_t seed, FILE *log) {
    rng_state = 0x9E3779B97F4A7C15ULL ^ seed;
    if (fx_make_dir(WHO, out)) return -1;
    int count[K];
    char freq[K + 1];
    for (int k = 0; k < K; k++) {
        count[k] = (int)lrint(300.0 * pow(100.0, -(double)k / (K - 1)));
        freq[k] = count[k] <= 10 ? 'r' : count[k] <= 100 ? 'c' : 'f';
    }
    freq[K] = 0;
    int rc = 0;
    for (int val = 0; val <= 1 && !rc; val++) {
        sbuf js = {0};
        fx_member *mem = NULL;
        int n = 0;
        rc = make_split(val, val ? 9001 : 1, count, freq, &js, &mem, &n);
        const char *jname = val ? "lvis_v1_val.json" : "lvis_v1_train.json";
        char zname[64];
        snprintf(zname, sizeof zname, "%s.zip", jname);
        fx_member jm = {jname, js.s, js.len};
        if (!rc) rc = fx_put_archive(WHO, out, zname, "zip", &jm, 1);
        if (!rc) rc = fx_put_archive(WHO, out, val ? "val2017.zip" : "train2017.zip", "zip", mem, n);
        if (!rc && log) fprintf(log, WHO ": %s: %d objects in %d images\n", val ? "val" : "train", n, n);
        for (int i = 0; i < n; i++) {
            free((void *)mem[i].name);
            free((void *)mem[i].data);
        }
        free(mem);
        free(js.s);
    }
    if (!rc && log) fprintf(log, WHO ": %d classes, frequency groups %s, files in %s\n", K, freq, out);
    return rc ? -1 : 0;
}
