/* lt_loader.c — batch preparation on W worker threads into a ring of S slots.
 *
 * Each slot holds one batch (x, y, sample ids, in one block from the slot
 * allocator: pinned host memory for a cuda backend). Batch b always lands in
 * slot b % S. While the caller trains on the batch it holds, the workers fill
 * the next S - 1 batches. A slot is handed back to the workers when the caller
 * asks for the next batch, which is why returned pointers stay valid until
 * then.
 *
 * Work is split into chunks of consecutive samples of a batch; a worker
 * claims the next chunk under the lock (batch by batch, in order), fills it
 * without the lock, and the worker that completes a batch's last chunk marks
 * the slot ready. Why chunks of a batch rather than whole batches per worker:
 * make bench-pipeline (ImageNet-LT's 224 random-resized crop + flip + jitter
 * from a 256 store, and with 500x375 JPEG decode per sample, 2 cores) gives
 * the same CPU time per image for both (2.13 vs 2.22 ms from the cache, 4.20
 * vs 4.14 ms with decode) and images per second equal within the noise of a
 * shared machine, so the choice rests on memory and latency: whole batches
 * keep W workers busy only with S >= W + 1 slots (17 slots of 512 x 3 x 224
 * x 224 floats is 5 GB of pinned memory at W = 16) and an epoch's first
 * batch takes a whole worker-batch to arrive; chunks keep every worker on
 * the next batch with S = 3. With one worker the chunk is the whole batch:
 * exactly the single background thread this file was before.
 *
 * The augmentation rng of epoch position p (the index into the epoch's
 * list) is derived from (seed, aug_stream) with (epoch, p), so a batch's
 * content does not depend on the number of workers, on thread timing, on
 * which slot it lands in, or on where the epoch was started (resume with
 * first_batch > 0).
 *
 * All batch memory and the workers' decode buffers are allocated in
 * lt_loader_open (and lt_loader_set_views); lt_loader_start only grows the
 * copy of the index list when an epoch is longer than any before. */
#include "lt_data.h"
#include "lt_backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SLOT_FREE = 0, SLOT_FILLING = 1, SLOT_READY = 2 };
#define LT_LOADER_MAX_VIEWS 64
#define LT_LOADER_MAX_WORKERS 256
#define LT_LOADER_MAX_SLOTS 64
#define ERRMSG_CAP 512

typedef struct {
    void *block;        /* the allocator's block; x, y and sample point into it */
    float *x;
    int32_t *y, *sample;
    int count;          /* samples in the batch */
    int state;          /* SLOT_*, guarded by mu */
    long left;          /* samples not yet done (FILLING) */
    /* the first failure of the batch by position: deterministic whatever the
     * order the workers finish in */
    int err_rc;
    long err_pos;
    char err_msg[ERRMSG_CAP];
} slot_t;

typedef struct {
    lt_loader *L;
    int id;
    uint8_t *scratch;   /* c*h*w bytes: the decoded image when a load function is set */
    pthread_t thread;
} worker_t;

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
    size_t img_bytes;   /* c * h * w: one source image */
    lt_rng aug_base;    /* (seed, aug_stream); per-sample streams derive from it */
    lt_loader_opts o;   /* resolved: workers, prefetch, chunk >= 1, allocator set */

    /* epoch (written by lt_loader_start while every worker is idle) */
    int epoch;
    int32_t *idx;
    long n, idx_cap;
    long n_batches;
    int started;

    slot_t *slot;       /* [o.prefetch] */
    worker_t *w;        /* [o.workers] */
    int n_threads;      /* workers started */

    /* synchronisation; everything below is guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv_work;   /* workers wait for a chunk to claim */
    pthread_cond_t cv_done;   /* the caller waits for a ready slot / idle workers */
    long claim_b;        /* the batch the next chunk comes from */
    long claim_pos;      /* its first sample (0: the batch's slot is not opened yet) */
    long next_consume;   /* next batch index lt_loader_next returns */
    int held;            /* slot the caller holds, -1 if none */
    int active;          /* workers filling a chunk (outside the lock) */
    int quit;
    int failed;          /* the caller got a batch's error: LT_* until the next start */
    char failed_msg[ERRMSG_CAP];
    atomic_int abort_fill; /* ask the workers to drop the chunks they are filling */
    lt_loader_stats st;
};

/* The calling thread's CPU time: the decode / augment split stays true on
 * a machine where the workers are preempted. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long batch_len(const lt_loader *L, long b)
{
    long start = b * L->batch;
    long left = L->n - start;
    return left < L->batch ? left : L->batch;
}

/* ---- default slot allocator: 64-byte aligned host memory ---------------------- */
static int heap_alloc(void *ud, void **p, size_t bytes)
{
    (void)ud;
    *p = lt_alloc(bytes);
    return *p ? LT_OK : lt_err(LT_ENOMEM, "loader: cannot allocate a batch slot of %zu bytes", bytes);
}

static void heap_free(void *ud, void *p)
{
    (void)ud;
    lt_free(p);
}

void lt_loader_opts_default(lt_loader_opts *o)
{
    memset(o, 0, sizeof *o);
    o->workers = 1;
}

/* ---- host memory of a backend ---------------------------------------------------- */
static int backend_alloc(void *ud, void **p, size_t bytes)
{
    return lt_backend_host_alloc(ud, p, bytes);
}

static void backend_free(void *ud, void *p)
{
    lt_backend_host_free(ud, p);
}

void lt_loader_opts_for_backend(lt_loader_opts *o, const lt_backend *b)
{
    lt_loader_opts_default(o);
    o->workers = lt_backend_loader_workers(b);
    if (b && lt_backend_get_kind(b) != LT_BACKEND_CPU) {
        o->alloc = backend_alloc;
        o->free = backend_free;
        o->alloc_ud = (void *)b;
    }
}

/* ---- filling ------------------------------------------------------------------- */

/* Samples [lo, hi) of batch b into slot s. Runs without the lock: the index
 * list and the rows [lo, hi) of each view are touched by nobody else while
 * the chunk is claimed. Returns LT_OK, LT_* with s->err_* to be set by the
 * caller (*fail_pos, msg), or -1 if aborted midway (the slot content is
 * then garbage and not published). */
static int fill_chunk(lt_loader *L, worker_t *w, slot_t *s, long b, long lo, long hi,
                      long *fail_pos, char *msg, double *t_load, double *t_aug)
{
    const lt_dataset *ds = L->ds;
    const long start = b * L->batch, m = s->count;
    const int timed = L->o.load != NULL;   /* otherwise the caller times the whole chunk */
    for (long i = lo; i < hi; i++) {
        if (atomic_load_explicit(&L->abort_fill, memory_order_relaxed))
            return -1;
        long pos = start + i;
        int32_t id = L->idx[pos];
        const uint8_t *img;
        if (L->o.load) {
            double t0 = cpu_s();
            int rc = L->o.load(L->o.load_ud, id, w->scratch);
            double t1 = cpu_s();
            *t_load += t1 - t0;
            if (rc) {
                *fail_pos = pos;
                if (rc < 0)   /* not an LT_* code (and -1 means "aborted" here) */
                    rc = lt_err(LT_EINVAL, "the load function returned %d, not an LT_* status", rc);
                snprintf(msg, ERRMSG_CAP, "%s", lt_errmsg());   /* lt_err is per thread */
                return rc;
            }
            img = w->scratch;
        } else {
            img = ds->pixels + (size_t)id * L->img_bytes;
        }
        double t2 = timed ? cpu_s() : 0;
        lt_rng r0;
        lt_rng_derive(&r0, &L->aug_base, (uint64_t)L->epoch, (uint64_t)pos);
        for (int v = 0; v < L->views; v++) {
            /* view-major: rows [v*m, (v+1)*m) are view v of the batch */
            float *dst = s->x + ((size_t)v * m + i) * L->img_floats;
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
            s->y[(size_t)v * m + i] = ds->labels[id];
            s->sample[(size_t)v * m + i] = id;
        }
        if (timed)
            *t_aug += cpu_s() - t2;
    }
    return LT_OK;
}

/* Claims the next chunk, opening the next batch's slot when the previous
 * batch is handed out and that slot is free. Called with mu held. */
static int claim(lt_loader *L, long *b, long *lo, long *hi)
{
    if (!L->started || L->failed || atomic_load(&L->abort_fill) || L->claim_b >= L->n_batches)
        return 0;
    slot_t *s = &L->slot[L->claim_b % L->o.prefetch];
    if (L->claim_pos == 0) {
        if (s->state != SLOT_FREE)
            return 0;
        long m = batch_len(L, L->claim_b);
        s->state = SLOT_FILLING;
        s->count = (int)m;
        s->left = m;
        s->err_rc = 0;
        s->err_pos = -1;
    }
    *b = L->claim_b;
    *lo = L->claim_pos;
    *hi = *lo + L->o.chunk < s->count ? *lo + L->o.chunk : s->count;
    L->claim_pos = *hi;
    if (L->claim_pos == s->count) {
        L->claim_b++;
        L->claim_pos = 0;
    }
    return 1;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    lt_loader *L = w->L;
    char msg[ERRMSG_CAP];
    pthread_mutex_lock(&L->mu);
    for (;;) {
        long b = 0, lo = 0, hi = 0;
        while (!L->quit && !claim(L, &b, &lo, &hi))
            pthread_cond_wait(&L->cv_work, &L->mu);
        if (L->quit)
            break;
        slot_t *s = &L->slot[b % L->o.prefetch];
        L->active++;
        pthread_mutex_unlock(&L->mu);
        long fail_pos = -1;
        double t_load = 0, t_aug = 0, t0 = L->o.load ? 0 : cpu_s();
        int rc = fill_chunk(L, w, s, b, lo, hi, &fail_pos, msg, &t_load, &t_aug);
        if (!L->o.load)
            t_aug = cpu_s() - t0;
        pthread_mutex_lock(&L->mu);
        L->active--;
        L->st.load_s += t_load;
        L->st.aug_s += t_aug;
        if (rc >= 0) {   /* not aborted: the chunk counts as done, failed or not */
            if (!rc)
                L->st.samples += hi - lo;
            if (rc && (!s->err_rc || fail_pos < s->err_pos)) {
                s->err_rc = rc;
                s->err_pos = fail_pos;
                snprintf(s->err_msg, sizeof s->err_msg, "%s", msg);
            }
            s->left -= hi - lo;
            if (s->left == 0) {
                s->state = SLOT_READY;
                pthread_cond_broadcast(&L->cv_done);
            }
        }
        /* quiesce waits for this (a chunk finished whole while it asked
         * counts as well as one dropped midway) */
        if (L->active == 0 && atomic_load(&L->abort_fill))
            pthread_cond_broadcast(&L->cv_done);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

/* ---- slots ----------------------------------------------------------------------- */
static size_t slot_bytes(const lt_loader *L, int views)
{
    size_t rows = (size_t)views * L->batch;
    size_t xb = (rows * L->img_floats * sizeof(float) + 63) & ~(size_t)63;
    return xb + 2 * rows * sizeof(int32_t);
}

static void slot_point(lt_loader *L, slot_t *s, int views)
{
    size_t rows = (size_t)views * L->batch;
    size_t xb = (rows * L->img_floats * sizeof(float) + 63) & ~(size_t)63;
    s->x = s->block;
    s->y = (int32_t *)((char *)s->block + xb);
    s->sample = s->y + rows;
}

/* Allocates every slot for `views` (into fresh blocks; the old ones are
 * freed only on success). Called with the workers idle. */
static int slots_alloc(lt_loader *L, int views)
{
    int S = L->o.prefetch;
    void *blk[LT_LOADER_MAX_SLOTS] = {0};
    size_t bytes = slot_bytes(L, views);
    for (int k = 0; k < S; k++) {
        int rc = L->o.alloc(L->o.alloc_ud, &blk[k], bytes);
        if (!rc && !blk[k])
            rc = lt_err(LT_ENOMEM, "loader: the slot allocator returned NULL for %zu bytes", bytes);
        if (rc) {
            for (int j = 0; j < k; j++)
                L->o.free(L->o.alloc_ud, blk[j]);
            return lt_err_wrap(rc, "loader: %d slots of %d x %d views of %zu floats", S, L->batch, views,
                               L->img_floats);
        }
    }
    for (int k = 0; k < S; k++) {
        if (L->slot[k].block)
            L->o.free(L->o.alloc_ud, L->slot[k].block);
        L->slot[k].block = blk[k];
        slot_point(L, &L->slot[k], views);
    }
    return LT_OK;
}

static void loader_free(lt_loader *L)
{
    if (L->slot)
        for (int k = 0; k < L->o.prefetch; k++)
            if (L->slot[k].block)
                L->o.free(L->o.alloc_ud, L->slot[k].block);
    if (L->w)
        for (int k = 0; k < L->o.workers; k++)
            free(L->w[k].scratch);
    free(L->slot);
    free(L->w);
    free(L->idx);
    free(L);
}

/* Stops the workers (quit) and joins the n_threads started. */
static void stop_workers(lt_loader *L)
{
    pthread_mutex_lock(&L->mu);
    L->quit = 1;
    atomic_store(&L->abort_fill, 1);
    pthread_cond_broadcast(&L->cv_work);
    pthread_mutex_unlock(&L->mu);
    for (int k = 0; k < L->n_threads; k++)
        pthread_join(L->w[k].thread, NULL);
    L->n_threads = 0;
}

int lt_loader_open_opts(lt_loader **out, const lt_dataset *ds, const lt_aug *aug, int batch,
                        int drop_last, int train, uint64_t seed, uint64_t aug_stream,
                        const lt_loader_opts *opts)
{
    if (!out)
        return lt_err(LT_EINVAL, "loader: NULL output");
    *out = NULL;
    lt_loader_opts o;
    if (opts)
        o = *opts;
    else
        lt_loader_opts_default(&o);
    if (!ds || !aug || !ds->labels || (!ds->pixels && !o.load))
        return lt_err(LT_EINVAL, "loader: missing dataset (pixels or a load function, labels) or augmentation");
    if (batch <= 0)
        return lt_err(LT_EINVAL, "loader: batch size %d must be positive", batch);
    if (ds->c <= 0 || ds->h <= 0 || ds->w <= 0)
        return lt_err(LT_EINVAL, "loader: bad image shape %dx%dx%d", ds->c, ds->h, ds->w);
    if (o.workers < 0 || o.workers > LT_LOADER_MAX_WORKERS)
        return lt_err(LT_EINVAL, "loader: %d workers (1..%d, 0 = 1)", o.workers, LT_LOADER_MAX_WORKERS);
    if (o.prefetch != 0 && (o.prefetch < 2 || o.prefetch > LT_LOADER_MAX_SLOTS))
        return lt_err(LT_EINVAL, "loader: prefetch depth %d (2..%d, 0 = default)", o.prefetch,
                      LT_LOADER_MAX_SLOTS);
    if (o.chunk < 0)
        return lt_err(LT_EINVAL, "loader: chunk %d (>= 1, 0 = default)", o.chunk);
    if (!o.alloc != !o.free)
        return lt_err(LT_EINVAL, "loader: a slot allocator needs both alloc and free");
    if (o.workers == 0)
        o.workers = 1;
    if (o.prefetch == 0)
        o.prefetch = o.workers == 1 ? 2 : 3;
    if (o.chunk == 0) {
        /* one worker: the whole batch (the old single thread); several: about
         * four chunks per worker and batch, so a slow sample (a large JPEG)
         * delays its batch by a fraction of a worker's share only */
        long c = o.workers == 1 ? batch : (batch + 4L * o.workers - 1) / (4L * o.workers);
        o.chunk = (int)(c < 1 ? 1 : c);
    }
    if (!o.alloc) {
        o.alloc = heap_alloc;
        o.free = heap_free;
        o.alloc_ud = NULL;
    }

    lt_loader *L = calloc(1, sizeof *L);
    if (!L)
        return lt_err(LT_ENOMEM, "loader: out of memory");
    L->ds = ds;
    L->aug = *aug;
    L->o = o;
    L->batch = batch;
    L->views = 1;
    L->drop_last = drop_last;
    L->train = train;
    L->oh = aug->out_h > 0 ? aug->out_h : ds->h;
    L->ow = aug->out_w > 0 ? aug->out_w : ds->w;
    L->img_floats = (size_t)ds->c * L->oh * L->ow;
    L->img_bytes = (size_t)ds->c * ds->h * ds->w;
    lt_rng_init(&L->aug_base, seed, aug_stream);
    L->held = -1;
    atomic_init(&L->abort_fill, 0);
    L->slot = calloc((size_t)o.prefetch, sizeof *L->slot);
    L->w = calloc((size_t)o.workers, sizeof *L->w);
    if (!L->slot || !L->w) {
        loader_free(L);
        return lt_err(LT_ENOMEM, "loader: out of memory");
    }
    int rc = slots_alloc(L, 1);
    if (rc) {
        loader_free(L);
        return rc;
    }
    for (int k = 0; k < o.workers; k++) {
        L->w[k].L = L;
        L->w[k].id = k;
        if (o.load && !(L->w[k].scratch = malloc(L->img_bytes))) {
            loader_free(L);
            return lt_err(LT_ENOMEM, "loader: cannot allocate %d decode buffers of %zu bytes", o.workers,
                          L->img_bytes);
        }
    }
    if (pthread_mutex_init(&L->mu, NULL) != 0) {
        loader_free(L);
        return lt_err(LT_ENOMEM, "loader: pthread_mutex_init failed");
    }
    if (pthread_cond_init(&L->cv_work, NULL) != 0) {
        pthread_mutex_destroy(&L->mu);
        loader_free(L);
        return lt_err(LT_ENOMEM, "loader: pthread_cond_init failed");
    }
    if (pthread_cond_init(&L->cv_done, NULL) != 0) {
        pthread_cond_destroy(&L->cv_work);
        pthread_mutex_destroy(&L->mu);
        loader_free(L);
        return lt_err(LT_ENOMEM, "loader: pthread_cond_init failed");
    }
    for (int k = 0; k < o.workers; k++) {
        int e = pthread_create(&L->w[k].thread, NULL, worker_main, &L->w[k]);
        if (e != 0) {
            stop_workers(L);
            pthread_cond_destroy(&L->cv_done);
            pthread_cond_destroy(&L->cv_work);
            pthread_mutex_destroy(&L->mu);
            loader_free(L);
            return lt_err(LT_ENOMEM, "loader: cannot start worker thread %d of %d: %s", k + 1, o.workers,
                          strerror(e));
        }
        L->n_threads++;
    }
    *out = L;
    return LT_OK;
}

int lt_loader_open(lt_loader **out, const lt_dataset *ds, const lt_aug *aug, int batch,
                   int drop_last, int train, uint64_t seed, uint64_t aug_stream)
{
    return lt_loader_open_opts(out, ds, aug, batch, drop_last, train, seed, aug_stream, NULL);
}

/* Stops work on the current epoch: waits until no worker is filling a
 * chunk. Called with mu held; returns with mu held and the workers idle
 * (abort_fill stays set until reset() clears it). */
static void quiesce(lt_loader *L)
{
    atomic_store(&L->abort_fill, 1);
    while (L->active)
        pthread_cond_wait(&L->cv_done, &L->mu);
}

/* Drops everything prepared and lets the workers claim again (mu held,
 * workers idle). */
static void reset(lt_loader *L)
{
    for (int k = 0; k < L->o.prefetch; k++)
        L->slot[k].state = SLOT_FREE;
    L->held = -1;
    L->failed = 0;
    atomic_store(&L->abort_fill, 0);
    pthread_cond_broadcast(&L->cv_work);
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
    int rc = slots_alloc(L, views);
    if (!rc)
        L->views = views;
    /* nothing prepared survives: the next lt_loader_start begins afresh */
    L->started = 0;
    reset(L);
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
    reset(L);
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
            reset(L);
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
    L->claim_b = first_batch;
    L->claim_pos = 0;
    L->next_consume = first_batch;
    L->started = 1;
    reset(L);
    pthread_mutex_unlock(&L->mu);
    return LT_OK;
}

static void no_batch(const float **x, const int32_t **y, const int32_t **sample, int *count)
{
    *count = 0;
    if (x)
        *x = NULL;
    if (y)
        *y = NULL;
    if (sample)
        *sample = NULL;
}

int lt_loader_next(lt_loader *L, const float **x, const int32_t **y, const int32_t **sample,
                   int *count)
{
    if (!L || !count)
        return lt_err(LT_EINVAL, "loader: NULL loader or count");
    pthread_mutex_lock(&L->mu);
    if (!L->started) {
        pthread_mutex_unlock(&L->mu);
        no_batch(x, y, sample, count);
        return lt_err(LT_ESTATE, "loader: lt_loader_next before lt_loader_start");
    }
    if (L->failed) {   /* the epoch stopped at a failed batch: say it again */
        int rc = L->failed;
        pthread_mutex_unlock(&L->mu);
        no_batch(x, y, sample, count);
        return lt_err(rc, "%s", L->failed_msg);
    }
    if (L->held >= 0) {  /* the caller is done with the previous batch */
        L->slot[L->held].state = SLOT_FREE;
        L->held = -1;
        pthread_cond_broadcast(&L->cv_work);
    }
    if (L->next_consume >= L->n_batches) {
        pthread_mutex_unlock(&L->mu);
        no_batch(x, y, sample, count);
        return LT_OK;
    }
    int k = (int)(L->next_consume % L->o.prefetch);
    slot_t *s = &L->slot[k];
    if (s->state != SLOT_READY) {
        double t0 = lt_now_s();
        while (s->state != SLOT_READY)
            pthread_cond_wait(&L->cv_done, &L->mu);
        L->st.wait_s += lt_now_s() - t0;
        L->st.waits++;
    }
    if (s->err_rc) {
        int rc = s->err_rc;
        snprintf(L->failed_msg, sizeof L->failed_msg, "loader: epoch %d, batch %ld, position %ld (sample %d): %s",
                 L->epoch, L->next_consume, s->err_pos, (int)L->idx[s->err_pos], s->err_msg);
        L->failed = rc;
        s->state = SLOT_FREE;
        pthread_mutex_unlock(&L->mu);
        no_batch(x, y, sample, count);
        return lt_err(rc, "%s", L->failed_msg);
    }
    L->held = k;
    L->next_consume++;
    L->st.batches++;
    pthread_mutex_unlock(&L->mu);
    if (x)
        *x = s->x;
    if (y)
        *y = s->y;
    if (sample)
        *sample = s->sample;
    *count = s->count;
    return LT_OK;
}

long lt_loader_batches(const lt_loader *L)
{
    return L ? L->n_batches : 0;
}

int lt_loader_get_opts(const lt_loader *L, lt_loader_opts *out)
{
    if (!L || !out)
        return lt_err(LT_EINVAL, "loader: NULL loader or output");
    *out = L->o;
    return LT_OK;
}

int lt_loader_get_stats(lt_loader *L, lt_loader_stats *out)
{
    if (!L || !out)
        return lt_err(LT_EINVAL, "loader: NULL loader or output");
    pthread_mutex_lock(&L->mu);
    *out = L->st;
    pthread_mutex_unlock(&L->mu);
    return LT_OK;
}

void lt_loader_close(lt_loader *L)
{
    if (!L)
        return;
    stop_workers(L);
    pthread_cond_destroy(&L->cv_done);
    pthread_cond_destroy(&L->cv_work);
    pthread_mutex_destroy(&L->mu);
    loader_free(L);
}
