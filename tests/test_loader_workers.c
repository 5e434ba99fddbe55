/* test_loader_workers.c — the batch loader on several worker threads
 * (issue 20): the same bytes for any worker count, prefetch depth and chunk
 * size (two epochs, two views with a strong pipeline on one, a mid-epoch
 * start), against a naive per-sample reference; a load function as the
 * image source (real JPEGs decoded per sample) and a corrupt one surfacing
 * with its name; the slot allocator; the statistics; option checks; close
 * mid-epoch without a hang; the host memory of a cpu backend. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fixtures_img.h"
#include "lt_backend.h"
#include "lt_data.h"
#include "lt_imagesets.h"

enum { NIMG = 45, IC = 3, IH = 20, IW = 20, OH = 16, OW = 16, BATCH = 8, VIEWS = 2 };
static const uint64_t SEED = 99;
#define PER ((size_t)IC * OH * OW)
#define NB ((NIMG + BATCH - 1) / BATCH)

static void make_ds(lt_dataset *d)
{
    assert_int_equal(lt_dataset_alloc(d, NIMG, IC, IH, IW, 4), LT_OK);
    lt_rng r;
    lt_rng_init(&r, 5, 6);
    for (size_t i = 0; i < (size_t)NIMG * IC * IH * IW; i++)
        d->pixels[i] = (uint8_t)lt_rng_below(&r, 256);
    for (int i = 0; i < NIMG; i++)
        d->labels[i] = (i * 7) % 4;
}

/* ImageNet-style training transform: random-resized crop, flip, jitter. */
static lt_aug make_aug(void)
{
    lt_aug a;
    memset(&a, 0, sizeof a);
    a.out_h = OH;
    a.out_w = OW;
    a.rrc = 1;
    a.rrc_scale[0] = 0.08f;
    a.rrc_scale[1] = 1.0f;
    a.rrc_ratio[0] = 0.75f;
    a.rrc_ratio[1] = 4.0f / 3.0f;
    a.hflip = 1;
    a.jitter = 0.4f;
    const float m[3] = {0.485f, 0.456f, 0.406f}, s[3] = {0.229f, 0.224f, 0.225f};
    memcpy(a.mean, m, sizeof m);
    memcpy(a.std, s, sizeof s);
    return a;
}

static void make_idx(int32_t *idx, int epoch)
{
    lt_sampler_cfg cfg = {.kind = LT_SAMPLER_INSTANCE};
    int32_t labels[NIMG];
    for (int i = 0; i < NIMG; i++)
        labels[i] = (i * 7) % 4;
    assert_int_equal(lt_sampler_epoch(&cfg, epoch, SEED, LT_STREAM_ORDER, labels, NIMG, 4, idx, NIMG), LT_OK);
}

/* Everything an epoch delivers, by batch: x rows as delivered (view-major
 * within a batch), labels and ids. */
typedef struct {
    float x[NB][VIEWS * BATCH * PER];
    int32_t y[NB][VIEWS * BATCH], s[NB][VIEWS * BATCH];
    int count[NB];
} epoch_out;

/* Runs epoch `epoch` from first_batch; batches before it stay zero. */
static void run_epoch(lt_loader *L, int epoch, const int32_t *idx, long first, epoch_out *o)
{
    memset(o, 0, sizeof *o);
    assert_int_equal(lt_loader_start(L, epoch, idx, NIMG, first), LT_OK);
    long b = first;
    for (;; b++) {
        const float *x;
        const int32_t *y, *s;
        int count = -1;
        assert_int_equal(lt_loader_next(L, &x, &y, &s, &count), LT_OK);
        if (!count) break;
        assert_true(b < NB);
        o->count[b] = count;
        memcpy(o->x[b], x, (size_t)VIEWS * count * PER * sizeof *x);
        memcpy(o->y[b], y, (size_t)VIEWS * count * sizeof *y);
        memcpy(o->s[b], s, (size_t)VIEWS * count * sizeof *s);
    }
    assert_int_equal(b, NB);
}

/* The naive reference: every sample and view transformed one at a time,
 * from the streams the loader documents. */
static void reference_epoch(const lt_dataset *d, const lt_aug *a, const lt_aug_pipeline *p1, int epoch,
                            const int32_t *idx, epoch_out *o)
{
    memset(o, 0, sizeof *o);
    lt_rng base;
    lt_rng_init(&base, SEED, LT_STREAM_AUG);
    const size_t img = (size_t)IC * IH * IW;
    for (long b = 0; b < NB; b++) {
        long m = NIMG - b * BATCH < BATCH ? NIMG - b * BATCH : BATCH;
        o->count[b] = (int)m;
        for (long i = 0; i < m; i++) {
            long pos = b * BATCH + i;
            int32_t id = idx[pos];
            lt_rng r0;
            lt_rng_derive(&r0, &base, (uint64_t)epoch, (uint64_t)pos);
            for (int v = 0; v < VIEWS; v++) {
                lt_rng r = r0;
                if (v) lt_rng_derive(&r, &r0, LT_VIEW_TAG, (uint64_t)v);
                float *dst = o->x[b] + ((size_t)v * m + i) * PER;
                if (v == 1)
                    lt_aug_pipeline_apply(p1, a, IC, IH, IW, d->pixels + (size_t)id * img, &r, dst);
                else
                    lt_aug_train(a, IC, IH, IW, d->pixels + (size_t)id * img, &r, dst);
                o->y[b][v * m + i] = d->labels[id];
                o->s[b][v * m + i] = id;
            }
        }
    }
}

static void assert_same(const epoch_out *a, const epoch_out *b, long first)
{
    for (long k = first; k < NB; k++) {
        assert_int_equal(a->count[k], b->count[k]);
        size_t rows = (size_t)VIEWS * a->count[k];
        assert_memory_equal(a->x[k], b->x[k], rows * PER * sizeof(float));
        assert_memory_equal(a->y[k], b->y[k], rows * sizeof(int32_t));
        assert_memory_equal(a->s[k], b->s[k], rows * sizeof(int32_t));
    }
}

/* A load function reading ds->pixels (slowly now and then, to shuffle the
 * order the workers finish in), counting its calls. */
typedef struct {
    const lt_dataset *d;
    atomic_long calls;
    int32_t fail_id;   /* -1: none */
    int slow;
} copy_src;

static int copy_load(void *ud, int32_t id, uint8_t *dst)
{
    copy_src *c = ud;
    long k = atomic_fetch_add(&c->calls, 1);
    if (c->slow && k % 5 == 0) {
        struct timespec ts = {0, 300000};
        nanosleep(&ts, NULL);
    }
    if (id == c->fail_id)
        return c->slow < 0 ? -1 : lt_err(LT_EDATA, "img_%d.JPEG: corrupt JPEG: test", (int)id);
    size_t img = (size_t)IC * IH * IW;
    memcpy(dst, c->d->pixels + (size_t)id * img, img);
    return LT_OK;
}

static void test_workers_bit_identical(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d);
    lt_aug a = make_aug();
    lt_aug_pipeline p1;
    lt_aug_pipeline_mocov2(&p1, 3);
    epoch_out *ref = malloc(sizeof *ref), *got = malloc(sizeof *got);
    assert_non_null(ref);
    assert_non_null(got);
    int32_t idx[2][NIMG];
    make_idx(idx[0], 0);
    make_idx(idx[1], 1);
    copy_src src = {.d = &d, .fail_id = -1, .slow = 1};
    atomic_init(&src.calls, 0);
    /* workers, prefetch, chunk, load function */
    const int cfg[][4] = {{1, 0, 0, 0}, {3, 0, 0, 0}, {4, 0, 0, 0}, {3, 2, 1, 0}, {4, 5, 3, 0},
                          {4, 4, BATCH, 0}, {3, 0, 0, 1}, {4, 3, 1, 1}};
    const int ncfg = (int)(sizeof cfg / sizeof cfg[0]);
    for (int e = 0; e < 2; e++) {
        reference_epoch(&d, &a, &p1, e, idx[e], ref);
        for (int k = 0; k < ncfg; k++) {
            lt_loader_opts o;
            lt_loader_opts_default(&o);
            o.workers = cfg[k][0];
            o.prefetch = cfg[k][1];
            o.chunk = cfg[k][2];
            if (cfg[k][3]) {
                o.load = copy_load;
                o.load_ud = &src;
            }
            lt_loader *L;
            assert_int_equal(lt_loader_open_opts(&L, &d, &a, BATCH, 0, 1, SEED, LT_STREAM_AUG, &o), LT_OK);
            lt_loader_opts eff;
            assert_int_equal(lt_loader_get_opts(L, &eff), LT_OK);
            assert_int_equal(eff.workers, cfg[k][0]);
            assert_int_equal(eff.prefetch, cfg[k][1] ? cfg[k][1] : (cfg[k][0] == 1 ? 2 : 3));
            assert_true(eff.chunk >= 1);
            if (cfg[k][0] == 1 && !cfg[k][2]) assert_int_equal(eff.chunk, BATCH);   /* the old thread */
            assert_int_equal(lt_loader_set_views(L, VIEWS), LT_OK);
            assert_int_equal(lt_loader_set_view_pipeline(L, 1, &p1), LT_OK);
            run_epoch(L, e, idx[e], 0, got);
            assert_same(ref, got, 0);
            /* resume mid-epoch (first_batch > 0), on the same loader and on a
             * fresh one, as after a restart */
            run_epoch(L, e, idx[e], 2, got);
            assert_same(ref, got, 2);
            lt_loader_close(L);
            assert_int_equal(lt_loader_open_opts(&L, &d, &a, BATCH, 0, 1, SEED, LT_STREAM_AUG, &o), LT_OK);
            assert_int_equal(lt_loader_set_views(L, VIEWS), LT_OK);
            assert_int_equal(lt_loader_set_view_pipeline(L, 1, &p1), LT_OK);
            run_epoch(L, e, idx[e], NB - 1, got);
            assert_same(ref, got, NB - 1);
            lt_loader_close(L);
        }
    }
    /* the load function ran once per sample prepared (two of the eight
     * configurations, two epochs, three runs of 45, 29 and 5 samples) */
    assert_int_equal(atomic_load(&src.calls), 2L * 2 * (NIMG + (NIMG - 2 * BATCH) + (NIMG - (NB - 1) * BATCH)));
    /* the epochs differ (the comparison above is not vacuous) */
    epoch_out *ref1 = malloc(sizeof *ref1);
    assert_non_null(ref1);
    reference_epoch(&d, &a, &p1, 0, idx[1], ref1);
    assert_memory_not_equal(ref1->x[0], ref->x[0], BATCH * PER * sizeof(float));
    free(ref1);
    free(ref);
    free(got);
    lt_dataset_free(&d);
}

/* Eval loaders (no randomness) and drop_last on several workers. */
static void test_workers_eval_drop_last(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d);
    lt_aug a = make_aug();
    int32_t idx[NIMG];
    make_idx(idx, 3);
    lt_loader_opts o;
    lt_loader_opts_default(&o);
    o.workers = 4;
    o.chunk = 1;
    lt_loader *L;
    assert_int_equal(lt_loader_open_opts(&L, &d, &a, BATCH, 1, 0, SEED, LT_STREAM_AUG, &o), LT_OK);
    assert_int_equal(lt_loader_start(L, 0, idx, NIMG, 0), LT_OK);
    assert_int_equal(lt_loader_batches(L), NIMG / BATCH);
    float *ref = malloc(PER * sizeof *ref);
    assert_non_null(ref);
    long b = 0;
    for (;; b++) {
        const float *x;
        int count;
        assert_int_equal(lt_loader_next(L, &x, NULL, NULL, &count), LT_OK);
        if (!count) break;
        assert_int_equal(count, BATCH);
        for (int i = 0; i < count; i++) {
            lt_aug_eval(&a, IC, IH, IW, d.pixels + (size_t)idx[b * BATCH + i] * IC * IH * IW, ref);
            assert_memory_equal(x + (size_t)i * PER, ref, PER * sizeof *ref);
        }
    }
    assert_int_equal(b, NIMG / BATCH);
    lt_loader_close(L);
    free(ref);
    lt_dataset_free(&d);
}

/* ---- a real JPEG source, one corrupt file --------------------------------- */
typedef struct {
    uint8_t *buf[NIMG];
    size_t len[NIMG];
    char name[NIMG][32];
} jpeg_src;

static int jpeg_load(void *ud, int32_t id, uint8_t *dst)
{
    jpeg_src *j = ud;
    return lt_jpeg_to_planar(j->name[id], j->buf[id], j->len[id], IH, dst);
}

static void test_load_error_names_sample(void **state)
{
    (void)state;
    jpeg_src *j = calloc(1, sizeof *j);
    assert_non_null(j);
    for (int i = 0; i < NIMG; i++) {
        uint8_t *rgb = fx_gradient_rgb(37 + i, 29, (i * 17) % 256);
        assert_non_null(rgb);
        assert_int_equal(fx_jpeg_encode(rgb, 37 + i, 29, 3, 90, &j->buf[i], &j->len[i]), 0);
        free(rgb);
        snprintf(j->name[i], sizeof j->name[i], "train/n0/n0_%d.JPEG", i);
    }
    const int bad = 21;   /* batch 2, position 5 of the identity order */
    j->len[bad] /= 2;     /* truncated: libjpeg's premature end, an error here */
    /* a dataset without pixels: shape and labels only */
    lt_dataset d;
    memset(&d, 0, sizeof d);
    d.n = NIMG;
    d.c = IC;
    d.h = d.w = IH;
    d.n_classes = 2;
    int32_t labels[NIMG], idx[NIMG];
    for (int i = 0; i < NIMG; i++) {
        labels[i] = i % 2;
        idx[i] = i;
    }
    d.labels = labels;
    lt_aug a = make_aug();
    lt_loader *L;
    assert_int_equal(lt_loader_open(&L, &d, &a, BATCH, 0, 1, SEED, LT_STREAM_AUG), LT_EINVAL);   /* no pixels */
    lt_loader_opts o;
    lt_loader_opts_default(&o);
    o.workers = 3;
    o.chunk = 2;
    o.load = jpeg_load;
    o.load_ud = j;
    assert_int_equal(lt_loader_open_opts(&L, &d, &a, BATCH, 0, 1, SEED, LT_STREAM_AUG, &o), LT_OK);
    uint8_t *px = malloc((size_t)IC * IH * IW);
    float *ref = malloc(PER * sizeof *ref);
    assert_non_null(px);
    assert_non_null(ref);
    lt_rng base;
    lt_rng_init(&base, SEED, LT_STREAM_AUG);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(lt_loader_start(L, 4, idx, NIMG, 0), LT_OK);
        for (int b = 0; b < 2; b++) {   /* the batches before the bad one: decoded + augmented */
            const float *x;
            int count;
            assert_int_equal(lt_loader_next(L, &x, NULL, NULL, &count), LT_OK);
            assert_int_equal(count, BATCH);
            for (int i = 0; i < count; i++) {
                int id = b * BATCH + i;
                assert_int_equal(lt_jpeg_to_planar(j->name[id], j->buf[id], j->len[id], IH, px), LT_OK);
                lt_rng r;
                lt_rng_derive(&r, &base, 4, (uint64_t)id);
                lt_aug_train(&a, IC, IH, IW, px, &r, ref);
                assert_memory_equal(x + (size_t)i * PER, ref, PER * sizeof *ref);
            }
        }
        const float *x = (const float *)1;
        int count = -1;
        assert_int_equal(lt_loader_next(L, &x, NULL, NULL, &count), LT_EDATA);
        assert_int_equal(count, 0);
        assert_null(x);
        const char *msg = lt_errmsg();
        assert_non_null(strstr(msg, "train/n0/n0_21.JPEG"));
        assert_non_null(strstr(msg, "corrupt JPEG"));
        assert_non_null(strstr(msg, "batch 2"));
        assert_non_null(strstr(msg, "sample 21"));
        /* it stays failed until the next start */
        assert_int_equal(lt_loader_next(L, &x, NULL, NULL, &count), LT_EDATA);
        assert_non_null(strstr(lt_errmsg(), "n0_21.JPEG"));
    }
    /* an epoch without the bad image runs to its end */
    int32_t good[NIMG - 1];
    for (int i = 0, k = 0; i < NIMG; i++)
        if (i != bad) good[k++] = i;
    assert_int_equal(lt_loader_start(L, 5, good, NIMG - 1, 0), LT_OK);
    long items = 0;
    for (;;) {
        int count;
        assert_int_equal(lt_loader_next(L, NULL, NULL, NULL, &count), LT_OK);
        if (!count) break;
        items += count;
    }
    assert_int_equal(items, NIMG - 1);
    lt_loader_stats st;
    assert_int_equal(lt_loader_get_stats(L, &st), LT_OK);
    assert_true(st.load_s > 0 && st.aug_s > 0);
    lt_loader_close(L);
    /* a load function returning something that is no LT_* code (here -1)
     * still fails its batch with a message, never hangs the caller */
    lt_dataset pd;
    assert_int_equal(lt_dataset_alloc(&pd, NIMG, IC, IH, IW, 2), LT_OK);
    copy_src cs = {.d = &pd, .fail_id = 3, .slow = -1};
    atomic_init(&cs.calls, 0);
    o.load = copy_load;
    o.load_ud = &cs;
    assert_int_equal(lt_loader_open_opts(&L, &pd, &a, BATCH, 0, 1, SEED, LT_STREAM_AUG, &o), LT_OK);
    assert_int_equal(lt_loader_start(L, 0, idx, NIMG, 0), LT_OK);
    int count;
    assert_int_equal(lt_loader_next(L, NULL, NULL, NULL, &count), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "sample 3"));
    assert_non_null(strstr(lt_errmsg(), "returned -1"));
    lt_loader_close(L);
    lt_dataset_free(&pd);
    free(px);
    free(ref);
    for (int i = 0; i < NIMG; i++) free(j->buf[i]);
    free(j);
}

/* ---- slot memory from the caller's allocator --------------------------------- */
typedef struct {
    int allocs, frees, fail_at;
    void *blk[64];
    size_t bytes[64];
} count_alloc;

static int ca_alloc(void *ud, void **p, size_t bytes)
{
    count_alloc *c = ud;
    if (c->allocs == c->fail_at) {
        *p = NULL;
        return lt_err(LT_ENOMEM, "test allocator: refusing %zu bytes", bytes);
    }
    *p = lt_alloc(bytes);
    c->blk[c->allocs] = *p;
    c->bytes[c->allocs++] = bytes;
    return LT_OK;
}

static void ca_free(void *ud, void *p)
{
    count_alloc *c = ud;
    c->frees++;
    lt_free(p);
}

static int in_some_block(const count_alloc *c, const void *p, size_t len)
{
    for (int k = 0; k < c->allocs; k++)
        if ((const char *)p >= (const char *)c->blk[k] &&
            (const char *)p + len <= (const char *)c->blk[k] + c->bytes[k])
            return 1;
    return 0;
}

static void test_slot_allocator(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d);
    lt_aug a = make_aug();
    int32_t idx[NIMG];
    make_idx(idx, 0);
    count_alloc c = {.fail_at = -1};
    lt_loader_opts o;
    lt_loader_opts_default(&o);
    o.workers = 2;
    o.prefetch = 4;
    o.alloc = ca_alloc;
    o.free = ca_free;
    o.alloc_ud = &c;
    lt_loader *L;
    assert_int_equal(lt_loader_open_opts(&L, &d, &a, BATCH, 0, 1, SEED, LT_STREAM_AUG, &o), LT_OK);
    assert_int_equal(c.allocs, 4);   /* one block per slot, nothing else */
    assert_int_equal(lt_loader_set_views(L, 2), LT_OK);
    assert_int_equal(c.allocs, 8);
    assert_int_equal(c.frees, 4);
    for (int e = 0; e < 2; e++) {    /* the steady state allocates nothing */
        assert_int_equal(lt_loader_start(L, e, idx, NIMG, 0), LT_OK);
        for (;;) {
            const float *x;
            const int32_t *y, *s;
            int count;
            assert_int_equal(lt_loader_next(L, &x, &y, &s, &count), LT_OK);
            if (!count) break;
            assert_true(in_some_block(&c, x, 2 * (size_t)count * PER * sizeof *x));
            assert_true(in_some_block(&c, y, 2 * (size_t)count * sizeof *y));
            assert_true(in_some_block(&c, s, 2 * (size_t)count * sizeof *s));
            assert_int_equal((uintptr_t)x % 64, 0);
        }
    }
    assert_int_equal(c.allocs, 8);
    lt_loader_stats st;
    assert_int_equal(lt_loader_get_stats(L, &st), LT_OK);
    assert_int_equal(st.samples, 2 * NIMG);
    assert_int_equal(st.batches, 2 * NB);
    assert_true(st.aug_s > 0);
    assert_true(st.load_s == 0);
    lt_loader_close(L);
    assert_int_equal(c.frees, 8);
    /* a failing allocator: its message, nothing leaked, the loader intact */
    count_alloc f = {.fail_at = 2};
    o.alloc_ud = &f;
    assert_int_equal(lt_loader_open_opts(&L, &d, &a, BATCH, 0, 1, SEED, LT_STREAM_AUG, &o), LT_ENOMEM);
    assert_null(L);
    assert_non_null(strstr(lt_errmsg(), "test allocator"));
    assert_int_equal(f.frees, 2);
    f = (count_alloc){.fail_at = 6};
    assert_int_equal(lt_loader_open_opts(&L, &d, &a, BATCH, 0, 1, SEED, LT_STREAM_AUG, &o), LT_OK);
    assert_int_equal(lt_loader_set_views(L, 3), LT_ENOMEM);
    assert_int_equal(f.frees, 2);   /* the two new blocks; the old slots stay */
    assert_int_equal(lt_loader_start(L, 0, idx, NIMG, 0), LT_OK);
    int count;
    const float *x;
    assert_int_equal(lt_loader_next(L, &x, NULL, NULL, &count), LT_OK);
    assert_int_equal(count, BATCH);
    lt_loader_close(L);
    assert_int_equal(f.frees, 6);
    lt_dataset_free(&d);
}

static void test_options_checked(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d);
    lt_aug a = make_aug();
    lt_loader *L = (lt_loader *)1;
    lt_loader_opts o;
    const struct { int workers, prefetch, chunk, alloc_only; } bad[] = {
        {-1, 0, 0, 0}, {257, 0, 0, 0}, {2, 1, 0, 0}, {2, 65, 0, 0}, {2, 0, -1, 0}, {2, 0, 0, 1}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        lt_loader_opts_default(&o);
        o.workers = bad[k].workers;
        o.prefetch = bad[k].prefetch;
        o.chunk = bad[k].chunk;
        if (bad[k].alloc_only) o.alloc = ca_alloc;
        assert_int_equal(lt_loader_open_opts(&L, &d, &a, BATCH, 0, 1, SEED, LT_STREAM_AUG, &o), LT_EINVAL);
        assert_null(L);
        assert_non_null(strstr(lt_errmsg(), "loader:"));
    }
    /* workers 0 means 1 */
    lt_loader_opts_default(&o);
    o.workers = 0;
    assert_int_equal(lt_loader_open_opts(&L, &d, &a, BATCH, 0, 1, SEED, LT_STREAM_AUG, &o), LT_OK);
    lt_loader_opts eff;
    assert_int_equal(lt_loader_get_opts(L, &eff), LT_OK);
    assert_int_equal(eff.workers, 1);
    assert_int_equal(eff.prefetch, 2);
    assert_int_equal(eff.chunk, BATCH);
    lt_loader_close(L);
    lt_dataset_free(&d);
}

/* Close and restart mid-epoch with the workers at every stage (some in a
 * slow load): neither hangs nor leaks (the asan build checks the latter). */
static void test_close_mid_epoch(void **state)
{
    (void)state;
    lt_dataset d;
    make_ds(&d);
    lt_aug a = make_aug();
    int32_t idx[NIMG];
    make_idx(idx, 2);
    copy_src src = {.d = &d, .fail_id = -1, .slow = 1};
    atomic_init(&src.calls, 0);
    for (int t = 0; t < 120; t++) {
        lt_loader_opts o;
        lt_loader_opts_default(&o);
        o.workers = 1 + t % 4;
        o.chunk = t % 3;
        if (t % 2) {
            o.load = copy_load;
            o.load_ud = &src;
        }
        lt_loader *L;
        assert_int_equal(lt_loader_open_opts(&L, &d, &a, BATCH, t % 2, 1, SEED, LT_STREAM_AUG, &o), LT_OK);
        if (t % 5 == 4) {   /* closed before any epoch */
            lt_loader_close(L);
            continue;
        }
        assert_int_equal(lt_loader_start(L, t, idx, NIMG, 0), LT_OK);
        for (int k = 0; k < t % 4; k++) {
            int count;
            const float *x;
            assert_int_equal(lt_loader_next(L, &x, NULL, NULL, &count), LT_OK);
            assert_int_equal(count, BATCH);
        }
        if (t % 3 == 0) {   /* a new epoch while one is in flight */
            assert_int_equal(lt_loader_start(L, t + 1, idx, NIMG / 2, 1), LT_OK);
            int count;
            assert_int_equal(lt_loader_next(L, NULL, NULL, NULL, &count), LT_OK);
            assert_int_equal(count, BATCH);
        }
        if (t % 7 == 0)     /* views changed mid-epoch: everything prepared is dropped */
            assert_int_equal(lt_loader_set_views(L, 2), LT_OK);
        lt_loader_close(L);
    }
    lt_dataset_free(&d);
}

/* ---- host memory of a backend (cpu here; tests/gpu covers cuda) ---------------- */
static void test_backend_host_memory(void **state)
{
    (void)state;
    lt_backend *b;
    lt_cpu_opts co;
    lt_cpu_opts_default(&co);
    assert_int_equal(lt_backend_cpu_create(&co, &b), LT_OK);
    void *p = (void *)1;
    assert_int_equal(lt_backend_host_alloc(b, &p, 1000), LT_OK);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    for (int i = 0; i < 1000; i++) assert_int_equal(((uint8_t *)p)[i], 0);
    memset(p, 0xab, 1000);
    lt_backend_host_free(b, p);
    assert_int_equal(lt_backend_host_alloc(NULL, &p, 0), LT_OK);   /* NULL backend, 0 bytes: still a block */
    assert_non_null(p);
    lt_backend_host_free(NULL, p);
    lt_backend_host_free(b, NULL);
    assert_int_equal(lt_backend_host_alloc(b, NULL, 8), LT_EINVAL);
    assert_non_null(strstr(lt_errmsg(), "host alloc"));
    /* cpu runs keep one loader thread and heap slots: the old loader */
    assert_int_equal(lt_backend_loader_workers(b), 1);
    assert_int_equal(lt_backend_loader_workers(NULL), 1);
    lt_loader_opts o, def;
    lt_loader_opts_for_backend(&o, b);
    lt_loader_opts_default(&def);
    assert_memory_equal(&o, &def, sizeof o);
    assert_int_equal(def.workers, 1);
    assert_null(def.alloc);
    assert_null(def.load);
    lt_backend_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workers_bit_identical),
        cmocka_unit_test(test_workers_eval_drop_last),
        cmocka_unit_test(test_load_error_names_sample),
        cmocka_unit_test(test_slot_allocator),
        cmocka_unit_test(test_options_checked),
        cmocka_unit_test(test_close_mid_epoch),
        cmocka_unit_test(test_backend_host_memory),
    };
    return cmocka_run_group_tests(tests, 0, NULL);
}
