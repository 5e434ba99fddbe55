/* lt_draw.c — extra batches from any sampler (lt_drawer, see lt_data.h).
 *
 * The class CSR (the dataset grouped by class, ascending within a class)
 * is built once; an i.i.d. draw is then two random numbers per slot, and a
 * list sampler regenerates its epoch list only when a draw crosses into
 * another epoch. Nothing here depends on threads or on earlier draws of
 * other streams. */
#include "lt_data.h"
#include "lt_sampler_ws.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LISTS 8

typedef struct {
    uint64_t stream;
    lt_sampler_kind kind;
    int k_per_class, total_epochs;
    int epoch;                   /* epoch of the cached list, -1: none */
    long n;
    int32_t *idx;
    lt_sampler_ws *ws;           /* its epochs turn over inside training steps */
} draw_list;

struct lt_drawer {
    const lt_dataset *ds;
    lt_aug aug;
    uint64_t seed;
    int C;
    long *counts;                /* [C] */
    long *off;                   /* [C+1] */
    int32_t *members;            /* [N] */
    double *w, *cdf;             /* [C] */
    draw_list lists[MAX_LISTS];
    int n_lists;
};

void lt_drawer_free(lt_drawer *d) {
    if (!d) return;
    for (int i = 0; i < d->n_lists; i++) {
        free(d->lists[i].idx);
        lt_sampler_ws_free(d->lists[i].ws);
    }
    free(d->counts);
    free(d->off);
    free(d->members);
    free(d->w);
    free(d->cdf);
    free(d);
}

int lt_drawer_create(lt_drawer **out, const lt_dataset *ds, const lt_aug *aug, uint64_t seed) {
    *out = NULL;
    if (!ds || !aug || ds->n < 1 || ds->n_classes < 1) return lt_err(LT_EINVAL, "drawer: empty dataset");
    lt_drawer *d = calloc(1, sizeof *d);
    if (!d) return lt_err(LT_ENOMEM, "drawer: out of memory");
    const int C = ds->n_classes;
    d->ds = ds;
    d->aug = *aug;
    d->seed = seed;
    d->C = C;
    d->counts = calloc((size_t)C, sizeof *d->counts);
    d->off = calloc((size_t)C + 1, sizeof *d->off);
    d->members = malloc((size_t)ds->n * sizeof *d->members);
    d->w = calloc((size_t)C, sizeof *d->w);
    d->cdf = calloc((size_t)C, sizeof *d->cdf);
    long *pos = calloc((size_t)C, sizeof *pos);
    if (!d->counts || !d->off || !d->members || !d->w || !d->cdf || !pos) {
        free(pos);
        lt_drawer_free(d);
        return lt_err(LT_ENOMEM, "drawer: out of memory");
    }
    for (long i = 0; i < ds->n; i++) {
        const int y = ds->labels[i];
        if (y < 0 || y >= C) {
            free(pos);
            lt_drawer_free(d);
            return lt_err(LT_EDATA, "drawer: label %d of image %ld outside [0, %d)", y, i, C);
        }
        d->counts[y]++;
    }
    for (int k = 0; k < C; k++) d->off[k + 1] = d->off[k] + d->counts[k];
    for (long i = 0; i < ds->n; i++) {
        const int y = ds->labels[i];
        d->members[d->off[y] + pos[y]++] = (int32_t)i;
    }
    free(pos);
    *out = d;
    return LT_OK;
}

static int iid_kind(lt_sampler_kind k) {
    return k == LT_SAMPLER_CLASS_BALANCED || k == LT_SAMPLER_SQRT || k == LT_SAMPLER_PROGRESSIVE ||
           k == LT_SAMPLER_WEIGHTS;
}

/* Writes image `id` into slot s of every view. */
static void fill_slot(const lt_drawer *d, const lt_draw_req *r, const lt_rng *parent, int s, int32_t id, float *x,
                      int32_t *labels, int32_t *ids) {
    const lt_dataset *ds = d->ds;
    const int oh = d->aug.out_h > 0 ? d->aug.out_h : ds->h, ow = d->aug.out_w > 0 ? d->aug.out_w : ds->w;
    const size_t img = (size_t)ds->c * ds->h * ds->w, in_sz = (size_t)ds->c * oh * ow;
    const uint8_t *src = ds->pixels + (size_t)id * img;
    for (int v = 0; v < r->views; v++) {
        const size_t row = (size_t)v * r->n + (size_t)s;
        float *dst = x + row * in_sz;
        if (r->augment) {
            lt_rng a;
            lt_rng_derive(&a, parent, LT_DRAW_AUG_TAG ^ ((uint64_t)v << 32), (uint64_t)s);
            if (v < r->n_pipelines && r->pipelines && r->pipelines[v].enabled)
                lt_aug_pipeline_apply(&r->pipelines[v], &d->aug, ds->c, ds->h, ds->w, src, &a, dst);
            else
                lt_aug_train(&d->aug, ds->c, ds->h, ds->w, src, &a, dst);
        } else {
            lt_aug_eval(&d->aug, ds->c, ds->h, ds->w, src, dst);
        }
        labels[row] = ds->labels[id];
        ids[row] = id;
    }
}

static int draw_iid(lt_drawer *d, const lt_draw_req *r, float *x, int32_t *labels, int32_t *ids) {
    const int C = d->C;
    if (!r->rng) return lt_err(LT_EINVAL, "draw: an i.i.d. sampler draws from the request's rng (none given)");
    if (r->sampler.kind == LT_SAMPLER_WEIGHTS) {
        if (!r->sampler.class_weights) return lt_err(LT_EINVAL, "draw: class-weight sampler without weights");
        memcpy(d->w, r->sampler.class_weights, (size_t)C * sizeof *d->w);
    } else {
        LT_TRY(lt_sampler_class_probs(&r->sampler, r->epoch, C, d->counts, d->w));
    }
    double tot = 0;
    for (int k = 0; k < C; k++) {
        if (!(d->w[k] >= 0) || !isfinite(d->w[k])) return lt_err(LT_EINVAL, "draw: class %d has weight %g", k, d->w[k]);
        tot += d->counts[k] > 0 ? d->w[k] : 0.0;
        d->cdf[k] = tot;
    }
    if (!(tot > 0) || !isfinite(tot)) return lt_err(LT_ENUM, "draw: sampling weights sum to %g", tot);
    for (int s = 0; s < r->n; s++) {
        /* the first class whose cumulative weight exceeds u */
        const double u = lt_rng_uniform(r->rng) * tot;
        int lo = 0, hi = C - 1;
        while (lo < hi) {
            const int mid = lo + (hi - lo) / 2;
            if (d->cdf[mid] > u) hi = mid;
            else lo = mid + 1;
        }
        int k = lo;
        while (d->counts[k] == 0) k--;   /* u rounded up to tot */
        const long j = (long)lt_rng_below(r->rng, (uint32_t)d->counts[k]);
        fill_slot(d, r, r->rng, s, d->members[d->off[k] + j], x, labels, ids);
    }
    return LT_OK;
}

static draw_list *find_list(lt_drawer *d, const lt_draw_req *r, long n_s) {
    for (int i = 0; i < d->n_lists; i++) {
        draw_list *l = &d->lists[i];
        if (l->stream == r->stream && l->kind == r->sampler.kind && l->k_per_class == r->sampler.k_per_class &&
            l->total_epochs == r->sampler.total_epochs && l->n == n_s)
            return l;
    }
    if (d->n_lists == MAX_LISTS) {
        lt_err(LT_EINVAL, "draw: more than %d list samplers", MAX_LISTS);
        return NULL;
    }
    draw_list *l = &d->lists[d->n_lists];
    l->idx = malloc((size_t)n_s * sizeof *l->idx);   /* once per list sampler */
    if (!l->idx || lt_sampler_ws_create(&l->ws) != LT_OK) {
        free(l->idx);
        l->idx = NULL;
        lt_err(LT_ENOMEM, "draw: out of memory for a list of %ld", n_s);
        return NULL;
    }
    l->stream = r->stream;
    l->kind = r->sampler.kind;
    l->k_per_class = r->sampler.k_per_class;
    l->total_epochs = r->sampler.total_epochs;
    l->n = n_s;
    l->epoch = -1;
    d->n_lists++;
    return l;
}

static int draw_list_kind(lt_drawer *d, const lt_draw_req *r, float *x, int32_t *labels, int32_t *ids) {
    if (r->epoch < 0 || r->batch < 0) return lt_err(LT_EINVAL, "draw: epoch %d, batch %ld", r->epoch, r->batch);
    const long n_s = r->samples_per_epoch > 0 ? r->samples_per_epoch : d->ds->n;
    draw_list *l = find_list(d, r, n_s);
    if (!l) return LT_EINVAL;
    lt_rng base;
    lt_rng_init(&base, d->seed, r->stream);
    for (int s = 0; s < r->n; s++) {
        const long p = r->batch * (long)r->n + s;
        const int e = r->epoch + (int)(p / n_s);
        const long pos = p % n_s;
        if (l->epoch != e) {
            LT_TRY(lt_sampler_epoch_ws(l->ws, &r->sampler, e, d->seed, r->stream, d->ds->labels, d->ds->n, d->C,
                                       l->idx, n_s));
            l->epoch = e;
        }
        lt_rng slot;
        lt_rng_derive(&slot, &base, (uint64_t)e, (uint64_t)pos);
        fill_slot(d, r, &slot, s, l->idx[pos], x, labels, ids);
    }
    return LT_OK;
}

int lt_drawer_draw(lt_drawer *d, const lt_draw_req *r, float *x, int32_t *labels, int32_t *ids) {
    if (!d || !r || r->n < 1 || r->views < 1 || !x || !labels || !ids)
        return lt_err(LT_EINVAL, "draw: needs n >= 1, views >= 1 and output buffers");
    if (r->n_pipelines < 0 || (r->n_pipelines > 0 && !r->pipelines))
        return lt_err(LT_EINVAL, "draw: %d pipelines without an array", r->n_pipelines);
    for (int v = 0; v < r->n_pipelines && v < r->views; v++) {
        const int oh = d->aug.out_h > 0 ? d->aug.out_h : d->ds->h, ow = d->aug.out_w > 0 ? d->aug.out_w : d->ds->w;
        LT_TRY(lt_aug_pipeline_check(&r->pipelines[v], d->ds->c, oh, ow));
    }
    if (iid_kind(r->sampler.kind)) return draw_iid(d, r, x, labels, ids);
    if (r->sampler.kind == LT_SAMPLER_INSTANCE || r->sampler.kind == LT_SAMPLER_CLASS_AWARE)
        return draw_list_kind(d, r, x, labels, ids);
    return lt_err(LT_EINVAL, "draw: unknown sampler kind %d", (int)r->sampler.kind);
}
