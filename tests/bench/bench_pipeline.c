/* bench_pipeline.c — images per second the input pipeline alone delivers
 * (`make bench-pipeline`, issue 20).
 *
 * Builds a synthetic ImageNet-LT look-alike in a temp dir in the on-disk
 * form the ImageNet-LT reader takes (train/<wnid>/<wnid>_<k>.JPEG, real
 * JPEGs of ImageNet-like size around 500 x 375 encoded with libjpeg, and an
 * OLTR list "path label" naming them), then:
 *   1. builds the dataset cache the harness builds (lt_imagelist_build at the
 *      protocol's store size: decode + resize once, on all cores) and times it;
 *   2. runs the protocol's training augmentation (protocols/imagenet_lt.json,
 *      scale full: random-resized crop to 224, flip, colour jitter, normalise)
 *      through lt_loader with W = 1, 2, ..., nproc workers and nobody
 *      consuming, from two sources:
 *        source=cache  the decoded cache (what ltbench runs read), and
 *        source=jpeg   the JPEG bytes decoded per sample by a load function
 *                      (decode + resize to the store size, then augment);
 *      printing `bench-pipeline: input=224 workers=W img/s=X source=S
 *      decode=D% augment=A%` (the split of the workers' thread time);
 *   3. compares the two ways of splitting work on nproc workers: chunks of a
 *      batch's samples (the loader's default) against whole batches per
 *      worker (chunk = batch, nproc + 2 slots so every worker has one).
 *
 * Usage: bench_pipeline [--images N] [--batch B] [--seconds S]
 *                       [--max-workers W | --workers W1,W2,...]
 *                       [--protocol PATH] [--keep DIR]
 * --workers measures only the listed worker counts (a short run on a big
 * machine: tests/gpu/train.sh); step 3 then uses the largest of them.
 * Numbers depend on what else runs on the machine: say so when reporting. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixtures_img.h"
#include "lt_data.h"
#include "lt_imagesets.h"
#include "lt_protocol.h"

static double proc_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int die(const char *what)
{
    fprintf(stderr, "bench-pipeline: %s: %s\n", what, lt_errmsg());
    return 1;
}

/* A photo-like RGB image: a few smooth colour waves plus fine noise, so the
 * JPEG's size and decode work are near a real photo's (about 100 KB at
 * quality 90 for 500 x 375, ImageNet's typical size and quality). */
static uint8_t *photo_like(int w, int h, lt_rng *r)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    float *sx = malloc((size_t)w * 9 * sizeof *sx), *sy = malloc((size_t)h * 9 * sizeof *sy);
    if (!p || !sx || !sy) {
        free(p);
        free(sx);
        free(sy);
        return NULL;
    }
    /* separable waves: sum_k sin(fx x + a) sin(fy y + b), tables per axis */
    for (int ck = 0; ck < 9; ck++) {
        double fx = 0.004 + 0.05 * lt_rng_uniform(r), fy = 0.004 + 0.05 * lt_rng_uniform(r);
        double ax = 6.283 * lt_rng_uniform(r), ay = 6.283 * lt_rng_uniform(r);
        for (int x = 0; x < w; x++) sx[x * 9 + ck] = (float)sin(fx * x + ax);
        for (int y = 0; y < h; y++) sy[y * 9 + ck] = (float)sin(fy * y + ay);
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                float v = 128;
                for (int k = 0; k < 3; k++) v += 45 * sx[x * 9 + c * 3 + k] * sy[y * 9 + c * 3 + k];
                v += (float)lt_rng_below(r, 41) - 20;   /* texture */
                p[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    free(sx);
    free(sy);
    return p;
}

typedef struct {
    int n;
    uint8_t **buf;
    size_t *len;
    char (*name)[64];
    int store;
} jpeg_set;

static int jpeg_load(void *ud, int32_t id, uint8_t *dst)
{
    const jpeg_set *j = ud;
    /* exactly the cache builder's per-image work (lt_imagelist.c) */
    return lt_jpeg_to_planar(j->name[id], j->buf[id], j->len[id], j->store, dst);
}

/* "1,8,16" into w[0..*n): counts 1..cap (cap = the loader's limit). */
static int parse_workers(const char *arg, int *w, int cap, int *n)
{
    *n = 0;
    for (const char *p = arg; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > cap || (*end && (*end != ',' || !end[1])) || *n == cap) {
            fprintf(stderr, "bench-pipeline: --workers '%s': want a comma-separated list of 1..%d (at most %d)\n",
                    arg, cap, cap);
            return 1;
        }
        w[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (!*n) {
        fprintf(stderr, "bench-pipeline: --workers is empty\n");
        return 1;
    }
    return 0;
}

/* Delivered images per second over at least `seconds` of whole epochs. */
static int measure(const lt_dataset *ds, const lt_aug *aug, int batch, const lt_loader_opts *o,
                   const int32_t *idx, long n, double seconds, double *ips, double *dec_frac, double *cpu_ms)
{
    lt_loader *L;
    if (lt_loader_open_opts(&L, ds, aug, batch, 1, 1, 1, LT_STREAM_AUG, o)) return 1;
    /* one warm-up batch: thread start, first touch of the slots */
    int rc = lt_loader_start(L, 0, idx, n, 0);
    int count;
    if (!rc) rc = lt_loader_next(L, NULL, NULL, NULL, &count);
    lt_loader_stats s0, s1;
    if (!rc) rc = lt_loader_get_stats(L, &s0);
    double t0 = lt_now_s(), t = t0;
    long images = 0;
    for (int e = 1; !rc && t - t0 < seconds; e++) {
        rc = lt_loader_start(L, e, idx, n, 0);
        for (; !rc;) {
            rc = lt_loader_next(L, NULL, NULL, NULL, &count);
            if (rc || !count) break;
            images += count;
        }
        t = lt_now_s();
    }
    if (!rc) rc = lt_loader_get_stats(L, &s1);
    lt_loader_close(L);
    if (rc) return 1;
    *ips = images / (t - t0);
    double ld = s1.load_s - s0.load_s, ag = s1.aug_s - s0.aug_s;
    *dec_frac = ld + ag > 0 ? ld / (ld + ag) : 0;
    long done = s1.samples - s0.samples;
    *cpu_ms = done > 0 ? 1e3 * (ld + ag) / done : 0;
    return 0;
}

int main(int argc, char **argv)
{
    int n_img = 256, batch = 128, max_w = (int)sysconf(_SC_NPROCESSORS_ONLN);
    double seconds = 3;
    const char *proto_path = "protocols/imagenet_lt.json", *keep = NULL;
    enum { MAX_LIST = 256 };   /* the loader's limit on workers */
    int wlist[MAX_LIST], n_wlist = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--images") && i + 1 < argc) n_img = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--max-workers") && i + 1 < argc) max_w = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            if (parse_workers(argv[++i], wlist, MAX_LIST, &n_wlist)) return 2;
        } else if (!strcmp(argv[i], "--protocol") && i + 1 < argc) proto_path = argv[++i];
        else if (!strcmp(argv[i], "--keep") && i + 1 < argc) keep = argv[++i];
        else {
            fprintf(stderr, "usage: bench_pipeline [--images N] [--batch B] [--seconds S]\n"
                            "                      [--max-workers W | --workers W1,W2,...]\n"
                            "                      [--protocol PATH] [--keep DIR]\n");
            return 2;
        }
    }
    if (n_img < 8 || batch < 1 || max_w < 1 || seconds <= 0) {
        fprintf(stderr, "bench-pipeline: need --images >= 8, --batch >= 1, --max-workers >= 1, --seconds > 0\n");
        return 2;
    }
    if (n_wlist) {
        max_w = 0;
        for (int k = 0; k < n_wlist; k++) max_w = wlist[k] > max_w ? wlist[k] : max_w;
    } else {
        for (int w = 1; w <= max_w && n_wlist < MAX_LIST; w++) wlist[n_wlist++] = w;
    }

    /* the protocol's input: scale full (224 crop from a 256 store) */
    lt_protocol *P = calloc(1, sizeof *P);
    const lt_proto_scale *sc;
    lt_aug aug;
    if (!P) return 1;
    if (lt_protocol_load(proto_path, P) || lt_protocol_scale(P, "full", &sc) || lt_proto_engine_aug(P, sc, &aug))
        return die(proto_path);
    const int store = sc->store_size > 0 ? sc->store_size : 256, input = sc->image_size;
    printf("bench-pipeline: protocol %s, scale full: store %d, input %d, train augmentation %s%s%s\n", P->name,
           store, input, aug.rrc ? "random-resized crop" : "crop", aug.hflip ? " + flip" : "",
           aug.jitter > 0 ? " + colour jitter" : "");

    /* the synthetic set: 8 classes, wnid-style folders, an OLTR list */
    char dir[512];
    if (keep) {
        snprintf(dir, sizeof dir, "%s", keep);
        mkdir(dir, 0755);
    } else if (fx_tmpdir(dir, sizeof dir)) {
        fprintf(stderr, "bench-pipeline: cannot make a temp dir: %s\n", strerror(errno));
        return 1;
    }
    const int n_cls = 8;
    jpeg_set J = {.n = n_img, .store = store};
    J.buf = calloc((size_t)n_img, sizeof *J.buf);
    J.len = calloc((size_t)n_img, sizeof *J.len);
    J.name = calloc((size_t)n_img, sizeof *J.name);
    char **paths = calloc((size_t)n_img, sizeof *paths);
    int32_t *labels = calloc((size_t)n_img, sizeof *labels);
    if (!J.buf || !J.len || !J.name || !paths || !labels) return 1;
    static const int sizes[4][2] = {{500, 375}, {375, 500}, {500, 333}, {500, 400}};
    lt_rng r;
    lt_rng_init(&r, 20, 0);
    double t_enc = lt_now_s();
    size_t bytes = 0;
    for (int i = 0; i < n_img; i++) {
        int c = i % n_cls, w = sizes[i % 4][0], h = sizes[i % 4][1];
        uint8_t *rgb = photo_like(w, h, &r);
        if (!rgb || fx_jpeg_encode(rgb, w, h, 3, 90, &J.buf[i], &J.len[i])) return 1;
        free(rgb);
        snprintf(J.name[i], sizeof J.name[i], "train/n%08d/n%08d_%d.JPEG", 1440764 + c, 1440764 + c, i);
        char full[1024];
        snprintf(full, sizeof full, "%s/%s", dir, J.name[i]);
        if (fx_write_file(full, J.buf[i], J.len[i])) {
            fprintf(stderr, "bench-pipeline: cannot write %s\n", full);
            return 1;
        }
        paths[i] = J.name[i];
        labels[i] = c;
        bytes += J.len[i];
    }
    printf("bench-pipeline: %d JPEGs (500x375 and similar, quality 90, mean %.0f KB) written to %s in %.1f s\n",
           n_img, bytes / 1024.0 / n_img, dir, lt_now_s() - t_enc);

    /* 1. the cache, as the harness builds it */
    lt_listfile lf;
    if (lt_listfile_from_arrays(&lf, "ImageNet_LT_train.txt", (const char *const *)paths, labels, n_img))
        return die("list");
    char listpath[1024];
    snprintf(listpath, sizeof listpath, "%s/ImageNet_LT_train.txt", dir);
    if (lt_listfile_write(&lf, listpath)) return die(listpath);
    lt_listfile_free(&lf);
    if (lt_listfile_read(&lf, listpath)) return die(listpath);
    lt_dataset cache;
    lt_imagelist_src src = {.list = &lf, .map = LT_PATHMAP_BASENAME, .size = store, .root = dir};
    double t_build = lt_now_s(), c_build = proc_cpu_s();
    if (lt_imagelist_build(&cache, &src)) return die("cache build");
    t_build = lt_now_s() - t_build;
    c_build = proc_cpu_s() - c_build;
    printf("bench-pipeline: cache build (read + decode + resize to %d, the harness's threads): %.0f img/s "
           "cpu_ms/img=%.2f\n", store, n_img / t_build, 1e3 * c_build / n_img);

    /* the same shape without pixels: the jpeg source decodes per sample */
    lt_dataset lazy = cache;
    lazy.pixels = NULL;
    lazy.owns = 0;
    lazy.map = NULL;

    /* an epoch: every image, in a fixed shuffled order, as full batches */
    long n = (long)n_img / batch * batch;
    if (n == 0) {
        fprintf(stderr, "bench-pipeline: --images %d < --batch %d\n", n_img, batch);
        return 2;
    }
    int32_t *idx = malloc((size_t)n * sizeof *idx);
    lt_sampler_cfg scfg = {.kind = LT_SAMPLER_INSTANCE};
    if (!idx || lt_sampler_epoch(&scfg, 0, 1, LT_STREAM_ORDER, cache.labels, cache.n, cache.n_classes, idx, n))
        return die("sampler");

    /* 2. workers 1..max (or the --workers list), both sources */
    for (int s = 0; s < 2; s++) {
        for (int k = 0; k < n_wlist; k++) {
            int w = wlist[k];
            lt_loader_opts o;
            lt_loader_opts_default(&o);
            o.workers = w;
            if (s) {
                o.load = jpeg_load;
                o.load_ud = &J;
            }
            double ips, dec, cms;
            if (measure(s ? &lazy : &cache, &aug, batch, &o, idx, n, seconds, &ips, &dec, &cms))
                return die("loader");
            printf("bench-pipeline: input=%d workers=%d img/s=%.0f source=%s decode=%.0f%% augment=%.0f%% "
                   "cpu_ms/img=%.2f\n", input, w, ips, s ? "jpeg" : "cache", 100 * dec, 100 * (1 - dec), cms);
            fflush(stdout);
        }
    }

    /* 3. chunks of samples vs whole batches per worker, at max workers */
    if (max_w > 1)
        for (int s = 0; s < 2; s++)
            for (int mode = 0; mode < 2; mode++) {
                lt_loader_opts o;
                lt_loader_opts_default(&o);
                o.workers = max_w;
                if (mode) {
                    o.chunk = batch;
                    o.prefetch = max_w + 2 <= 64 ? max_w + 2 : 64;
                }
                if (s) {
                    o.load = jpeg_load;
                    o.load_ud = &J;
                }
                double ips, dec, cms;
                if (measure(s ? &lazy : &cache, &aug, batch, &o, idx, n, seconds, &ips, &dec, &cms))
                    return die("loader");
                printf("bench-pipeline: schedule=%s workers=%d slots=%d img/s=%.0f source=%s cpu_ms/img=%.2f\n",
                       mode ? "whole-batches" : "sample-chunks", max_w, mode ? o.prefetch : 3, ips,
                       s ? "jpeg" : "cache", cms);
                fflush(stdout);
            }

    free(idx);
    lt_dataset_free(&cache);
    lt_listfile_free(&lf);
    for (int i = 0; i < n_img; i++) free(J.buf[i]);
    free(J.buf);
    free(J.len);
    free(J.name);
    free(paths);
    free(labels);
    free(P);
    if (!keep) fx_rm_rf(dir);
    return 0;
}
