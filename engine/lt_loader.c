/* lt_loader.c — double-buffered batch preparation in one background thread.
 *
 * Two batch slots. While the caller trains on the batch in one slot, the
 * worker fills the other with batch k+1 (augment + normalise, labels,
 * sample ids). A slot is handed back to the worker when the caller asks for
 * the next batch, which is why returned pointers stay valid until then.
 *
 * The augmentation rng of epoch position p (the index into the epoch's
 * list) is derived from (seed, aug_stream) with (epoch, p), so a batch's
 * content does not depend on thread timing, on which slot it lands in, or
 * on where the epoch was started (resume with first_batch > 0).
 *
 * All batch memory is allocated in lt_loader_open; lt_loader_start only
 * grows the copy of the index list when an epoch is longer than any before. */
#include "lt_data.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_FREE = 0, SLOT_READY = 1 };
#define LT_LOADER_MAX_VIEWS 64

struct lt_loader {
    const lt_dataset *ds;
    lt_aug aug;
    int batch, drop_last, train;
    int views;          /* augmented copies of each sample in a batch (view-major rows) */
    /* per-view strong pipelines (lt_loader_set_view_pipeline); enabled == 0:
     * the view uses aug */
    lt_aug_pipeline pipe[LT_LOADER_MAX_VIEWS];
    int oh, ow;
    size_t img_floats;  /* c * oh * ow */
    lt_rng aug_base;    /* (seed, aug_stream); per-sample streams derive from it */

    /* epoch (written by lt_loader_start while the worker is idle) */
    int epoch;
    int32_t *idx;
    long n, idx_cap;
    long n_batches;
    int started;

    /* slots */
    float *x[2];
    int32_t *y[2], *sample[2];
    int count[2];
    int slot_state[2];

    /* synchronisation; everything below is guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long next_produce;   /* next batch index the worker prepares */
    long next_consume;   /* next batch index lt_loader_next returns */
    int held;            /* slot the caller holds, -1 if none */
    int busy;            /* worker is filling a slot (outside the lock) */
    int quit;
    atomic_int abort_fill; /* ask the worker to drop the batch it is filling */
    int thread_ok;
    pthread_t thread;
};

static long batch_len(const lt_loader *L, long b)
{
    long start = b * L->batch;
    long left = L->n - start;
    return left < L->batch ? left : L->batch;
}

/* Fills slot s with batch b. Runs without the lock: the index list and the
 * slot are not touched by anyone else while busy is set. Returns 0 if it
 * was aborted midway (the slot content is then garbage and not published). */
static int fill_batch(lt_loader *L, int s, long b)
{
    const lt_dataset *ds = L->ds;
    size_t img_bytes = (size_t)ds->c * ds->h * ds->w;
    long start = b * L->batch, m = batch_len(L, b);
    for (long i = 0; i < m; i++) {
        if (atomic_load_explicit(&L->abort_fill, memory_order_relaxed))
            return 0;
        long pos = start + i;
        int32_t id = L->idx[pos];
        const uint8_t *img = ds->pixels + (size_t)id * img_bytes;
        lt_rng r0;
        lt_rng_derive(&r0, &L->aug_base, (uint64_t)L->epoch, (uint64_t)pos);
        for (int v = 0; v < L->views; v++) {
            /* view-major: rows [v*m, (v+1)*m) are view v of the batch */
            float *dst = L->x[s] + ((size_t)v * m + i) * L->img_floats;
            if (L->train) {
                /* view 0 draws from the position's own stream (a one-view
                 * batch is what it always was); view v from a sub-stream */
                lt_rng r = r0;
                if (v) lt_rng_derive(&r, &r0, LT_VIEW_TAG, (uint64_t)v);
                if (L->pipe[v].enabled)
                    lt_aug_pipeline_apply(&L->pipe[v], &L->aug, ds->c, ds->h, ds->w, img, &r, dst);
                else
                    lt_aug_train(&L->aug, ds->c, ds->h, ds->w, img, &r, dst);
            } else {
                lt_aug_eval(&L->aug, ds->c, ds->h, ds->w, img, dst);
            }
            L->y[s][(size_t)v * m + i] = ds->labels[id];
            L->sample[s][(size_t)v * m + i] = id;
        }
    }
    L->count[s] = (int)m;
    return 1;
}

static void *worker_main(void *arg)
{
    lt_loader *L = arg;
    pthread_mutex_lock(&L->mu);
    for (;;) {
        while (!L->quit &&
               !(L->started && L->next_produce < L->n_batches &&
                 L->slot_state[L->next_produce % 2] == SLOT_FREE &&
                 !atomic_load(&L->abort_fill)))
            pthread_cond_wait(&L->cv, &L->mu);
        if (L->quit)
            break;
        long b = L->next_produce;
        int s = (int)(b % 2);
        L->busy = 1;
        pthread_mutex_unlock(&L->mu);
        int done = fill_batch(L, s, b);
        pthread_mutex_lock(&L->mu);
        L->busy = 0;
        if (done) {
            L->slot_state[s] = SLOT_READY;
            L->next_produce = b + 1;
        }
        pthread_cond_broadcast(&L->cv);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

static void loader_free(lt_loader *L)
{
    for (int s = 0; s < 2; s++) {
        lt_free(L->x[s]);
        free(L->y[s]);
        free(L->sample[s]);
    }
    free(L->idx);
    free(L);
}

int lt_loader_open(lt_loader **out, const lt_dataset *ds, const lt_aug *aug, int batch,
                   int drop_last, int train, uint64_t seed, uint64_t aug_stream)
{
    *out = NULL;
    if (!ds || !aug || !ds->pixels || !ds->labels)
        return lt_err(LT_EINVAL, "loader: missing dataset or augmentation");
    if (batch <= 0)
        return lt_err(LT_EINVAL, "loader: batch size %d must be positive", batch);
    if (ds->c <= 0 || ds->h <= 0 || ds->w <= 0)
        return lt_err(LT_EINVAL, "loader: bad image shape %dx%dx%d", ds->c, ds->h, ds->w);
    lt_loader *L = calloc(1, sizeof *L);
    if (!L)
        return lt_err(LT_ENOMEM, "loader: out of memory");
    L->ds = ds;
    L->aug = *aug;
    L->batch = batch;
    L->views = 1;
    L->drop_last = drop_last;
    L->train = train;
    L->oh = aug->out_h > 0 ? aug->out_h : ds->h;
    L->ow = aug->out_w > 0 ? aug->out_w : ds->w;
    L->img_floats = (size_t)ds->c * L->oh * L->ow;
    lt_rng_init(&L->aug_base, seed, aug_stream);
    L->held = -1;
    atomic_init(&L->abort_fill, 0);
    for (int s = 0; s < 2; s++) {
        L->x[s] = lt_alloc((size_t)batch * L->img_floats * sizeof(float));
        L->y[s] = calloc((size_t)batch, sizeof(int32_t));
        L->sample[s] = calloc((size_t)batch, sizeof(int32_t));
        if (!L->x[s] || !L->y[s] || !L->sample[s]) {
            loader_free(L);
            return lt_err(LT_ENOMEM, "loader: cannot allocate two batches of %d x %zu floats",
                          batch, L->img_floats);
        }
    }
    if (pthread_mutex_init(&L->mu, NULL) != 0) {
        loader_free(L);
        return lt_err(LT_ENOMEM, "loader: pthread_mutex_init failed");
    }
    if (pthread_cond_init(&L->cv, NULL) != 0) {
        pthread_mutex_destroy(&L->mu);
        loader_free(L);
        return lt_err(LT_ENOMEM, "loader: pthread_cond_init failed");
    }
    int rc = pthread_create(&L->thread, NULL, worker_main, L);
    if (rc != 0) {
        pthread_cond_destroy(&L->cv);
        pthread_mutex_destroy(&L->mu);
        loader_free(L);
        return lt_err(LT_ENOMEM, "loader: cannot start the worker thread: %s", strerror(rc));
    }
    L->thread_ok = 1;
    *out = L;
    return LT_OK;
}

/* Stops work on the current epoch: waits until the worker is not filling a
 * slot. Called with mu held; returns with mu held and the worker idle. */
static void quiesce(lt_loader *L)
{
    atomic_store(&L->abort_fill, 1);
    while (L->busy)
        pthread_cond_wait(&L->cv, &L->mu);
}

int lt_loader_set_views(lt_loader *L, int views)
{
    if (!L)
        return lt_err(LT_EINVAL, "loader: NULL loader");
    if (views < 1 || views > LT_LOADER_MAX_VIEWS)
        return lt_err(LT_EINVAL, "loader: %d views per sample (1..64)", views);
    if (views == L->views)
        return LT_OK;
    pthread_mutex_lock(&L->mu);
    quiesce(L);
    int rc = LT_OK;
    for (int s = 0; s < 2 && !rc; s++) {
        float *x = lt_alloc((size_t)views * L->batch * L->img_floats * sizeof(float));
        int32_t *y = calloc((size_t)views * L->batch, sizeof(int32_t));
        int32_t *id = calloc((size_t)views * L->batch, sizeof(int32_t));
        if (!x || !y || !id) {
            lt_free(x);
            free(y);
            free(id);
            rc = lt_err(LT_ENOMEM, "loader: cannot allocate %d views of a batch of %d", views, L->batch);
            break;
        }
        lt_free(L->x[s]);
        free(L->y[s]);
        free(L->sample[s]);
        L->x[s] = x;
        L->y[s] = y;
        L->sample[s] = id;
    }
    if (!rc)
        L->views = views;
    /* nothing prepared survives: the next lt_loader_start begins afresh */
    L->started = 0;
    L->slot_state[0] = L->slot_state[1] = SLOT_FREE;
    L->held = -1;
    atomic_store(&L->abort_fill, 0);
    pthread_mutex_unlock(&L->mu);
    return rc;
}

int lt_loader_set_view_pipeline(lt_loader *L, int v, const lt_aug_pipeline *p)
{
    if (!L)
        return lt_err(LT_EINVAL, "loader: NULL loader");
    if (v < 0 || v >= LT_LOADER_MAX_VIEWS)
        return lt_err(LT_EINVAL, "loader: view %d (0..%d)", v, LT_LOADER_MAX_VIEWS - 1);
    if (p && p->enabled)
        LT_TRY(lt_aug_pipeline_check(p, L->ds->c, L->oh, L->ow));
    pthread_mutex_lock(&L->mu);
    /* as set_views: whatever was prepared with the old transform is dropped */
    quiesce(L);
    if (p && p->enabled)
        L->pipe[v] = *p;
    else
        memset(&L->pipe[v], 0, sizeof L->pipe[v]);
    L->started = 0;
    L->slot_state[0] = L->slot_state[1] = SLOT_FREE;
    L->held = -1;
    atomic_store(&L->abort_fill, 0);
    pthread_mutex_unlock(&L->mu);
    return LT_OK;
}

int lt_loader_start(lt_loader *L, int epoch, const int32_t *idx, long n, long first_batch)
{
    if (!L)
        return lt_err(LT_EINVAL, "loader: NULL loader");
    if (epoch < 0 || n < 0 || (n > 0 && !idx))
        return lt_err(LT_EINVAL, "loader: bad epoch %d or index list (n=%ld)", epoch, n);
    for (long i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= L->ds->n)
            return lt_err(LT_EINVAL, "loader: index %ld = %d outside the dataset [0, %ld)", i,
                          (int)idx[i], L->ds->n);
    long nb = L->drop_last ? n / L->batch : (n + L->batch - 1) / L->batch;
    if (first_batch < 0 || first_batch > nb)
        return lt_err(LT_EINVAL, "loader: first batch %ld outside [0, %ld]", first_batch, nb);

    pthread_mutex_lock(&L->mu);
    quiesce(L);
    if (n > L->idx_cap) {
        int32_t *p = realloc(L->idx, (size_t)n * sizeof *p);
        if (!p) {
            L->started = 0;
            atomic_store(&L->abort_fill, 0);
            pthread_mutex_unlock(&L->mu);
            return lt_err(LT_ENOMEM, "loader: cannot copy %ld indices", n);
        }
        L->idx = p;
        L->idx_cap = n;
    }
    if (n > 0)
        memcpy(L->idx, idx, (size_t)n * sizeof *idx);
    L->epoch = epoch;
    L->n = n;
    L->n_batches = nb;
    L->next_produce = first_batch;
    L->next_consume = first_batch;
    L->slot_state[0] = L->slot_state[1] = SLOT_FREE;
    L->held = -1;
    L->started = 1;
    atomic_store(&L->abort_fill, 0);
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    return LT_OK;
}

int lt_loader_next(lt_loader *L, const float **x, const int32_t **y, const int32_t **sample,
                   int *count)
{
    if (!L)
        return lt_err(LT_EINVAL, "loader: NULL loader");
    pthread_mutex_lock(&L->mu);
    if (!L->started) {
        pthread_mutex_unlock(&L->mu);
        return lt_err(LT_ESTATE, "loader: lt_loader_next before lt_loader_start");
    }
    if (L->held >= 0) {  /* the caller is done with the previous batch */
        L->slot_state[L->held] = SLOT_FREE;
        L->held = -1;
        pthread_cond_broadcast(&L->cv);
    }
    if (L->next_consume >= L->n_batches) {
        pthread_mutex_unlock(&L->mu);
        *count = 0;
        if (x)
            *x = NULL;
        if (y)
            *y = NULL;
        if (sample)
            *sample = NULL;
        return LT_OK;
    }
    int s = (int)(L->next_consume % 2);
    while (L->slot_state[s] != SLOT_READY)
        pthread_cond_wait(&L->cv, &L->mu);
    L->held = s;
    L->next_consume++;
    pthread_mutex_unlock(&L->mu);
    if (x)
        *x = L->x[s];
    if (y)
        *y = L->y[s];
    if (sample)
        *sample = L->sample[s];
    *count = L->count[s];
    return LT_OK;
}

long lt_loader_batches(const lt_loader *L)
{
    return L ? L->n_batches : 0;
}

void lt_loader_close(lt_loader *L)
{
    if (!L)
        return;
    if (L->thread_ok) {
        pthread_mutex_lock(&L->mu);
        L->quit = 1;
        atomic_store(&L->abort_fill, 1);
        pthread_cond_broadcast(&L->cv);
        pthread_mutex_unlock(&L->mu);
        pthread_join(L->thread, NULL);
    }
    pthread_cond_destroy(&L->cv);
    pthread_mutex_destroy(&L->mu);
    loader_free(L);
}
