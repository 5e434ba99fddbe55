/* lt_data.h — in-memory datasets, samplers, augmentation, the batch loader.
 *
 * A dataset is uint8 pixels (N x C x H x W, planar) plus int32 labels. The
 * data layer turns an epoch's list of sample indices (from a sampler) into
 * normalised, augmented float batches, preparing the next batch in a
 * background thread. Every random decision for sample slot i of epoch e is
 * drawn from a stream derived from (seed, stream, e, i), so the batch
 * contents are independent of thread timing and of other streams. */
#ifndef LT_DATA_H
#define LT_DATA_H

#include "lt_base.h"
#include "lt_rng.h"

typedef struct {
    long n;                 /* number of images */
    int c, h, w;            /* per-image shape */
    int n_classes;
    uint8_t *pixels;        /* n*c*h*w bytes, image-major, planar channels */
    int32_t *labels;        /* n labels in [0, n_classes) */
    /* ownership: if owns != 0, lt_dataset_free frees pixels/labels (malloc'd);
     * a memory-mapped dataset sets map/map_len instead and is munmap'd. */
    int owns;
    void *map;
    size_t map_len;
} lt_dataset;

/* Allocates (zeroed) pixels and labels for n images; owns = 1. */
int lt_dataset_alloc(lt_dataset *d, long n, int c, int h, int w, int n_classes);
void lt_dataset_free(lt_dataset *d);
/* counts[n_classes] = number of images per class (caller-allocated). */
void lt_dataset_class_counts(const lt_dataset *d, long *counts);
/* A new owning dataset holding the images idx[0..n-1] of src, in that order. */
int lt_dataset_subset(lt_dataset *dst, const lt_dataset *src, const int32_t *idx, long n);

/* ---- samplers: one epoch's index list ------------------------------------- */
typedef enum {
    LT_SAMPLER_INSTANCE = 0,       /* a permutation of all samples (no replacement) */
    LT_SAMPLER_CLASS_BALANCED = 1, /* i.i.d. with replacement, sample weight 1/n_y */
    LT_SAMPLER_CLASS_AWARE = 2,    /* classes cycled in shuffled order, k consecutive
                                      samples per visit from per-class shuffled lists
                                      (decoupling's ClassAwareSampler) */
    LT_SAMPLER_SQRT = 3,           /* i.i.d., class prob. proportional to sqrt(n_j) */
    LT_SAMPLER_PROGRESSIVE = 4,    /* i.i.d., p_j(e) = (1-l) n_j/N + l/C with l = e/(E-1)
                                      (the decoupling code: last epoch fully balanced) */
    LT_SAMPLER_WEIGHTS = 5         /* i.i.d., class prob. proportional to class_weights[j] */
} lt_sampler_kind;

typedef struct {
    lt_sampler_kind kind;
    int k_per_class;              /* CLASS_AWARE: samples per class visit (default 4) */
    int total_epochs;             /* PROGRESSIVE: E */
    const double *class_weights;  /* WEIGHTS: n_classes non-negative weights */
} lt_sampler_cfg;

/* Per-class class probability the sampler targets at `epoch` (for tests and
 * for recording in results): p[n_classes]. INSTANCE gives n_j/N. */
int lt_sampler_class_probs(const lt_sampler_cfg *cfg, int epoch, int n_classes,
                           const long *counts, double *p);
/* Writes n_out indices into out for `epoch`, drawn from stream (seed, stream)
 * derived per epoch. labels[n] are the dataset labels. n_out is normally n. */
int lt_sampler_epoch(const lt_sampler_cfg *cfg, int epoch, uint64_t seed, uint64_t stream,
                     const int32_t *labels, long n, int n_classes, int32_t *out, long n_out);

/* ---- augmentation / normalisation ---------------------------------------- */
typedef struct {
    int out_h, out_w;       /* output size (crop size, or the image size) */
    int pad;                /* zero-pixel pad before a random crop (0 = none) */
    int random_crop;        /* random out_h x out_w crop of the (padded) image */
    int hflip;              /* horizontal flip with p = 0.5 */
    int rrc;                /* random-resized crop (torchvision defaults unless set) */
    float rrc_scale[2];     /* (0.08, 1.0) */
    float rrc_ratio[2];     /* (3/4, 4/3) */
    float jitter;           /* colour jitter strength for brightness/contrast/saturation (0 = off) */
    float mean[3], std[3];  /* applied to x/255 per channel */
} lt_aug;

/* Test-time transform: no randomness (centre crop if sizes differ). */
void lt_aug_eval(const lt_aug *a, int c, int h, int w, const uint8_t *img, float *out);
/* Training transform of one image with its own rng. */
void lt_aug_train(const lt_aug *a, int c, int h, int w, const uint8_t *img, lt_rng *rng,
                  float *out);

/* ---- extra batches from any sampler ---------------------------------------
 * A method's second data stream (a class-aware batch beside the
 * instance-balanced one, a redrawn batch, k views of the same images).
 * i.i.d. samplers (class-balanced, square root, progressive, class
 * weights) draw each slot's class and image from `rng`: the class by the
 * inverse CDF of the class weights (a class without images is never
 * drawn), then a uniform image of the class (lt_rng_below). List samplers
 * (instance permutation, class-aware) take slots [batch * n, batch * n + n)
 * of the epoch lists of stream (seed, stream), continuing into the next
 * epoch's list past the end. Slot s's augmentation draws from a stream
 * derived from rng (list samplers: from (seed, stream) derived with the
 * slot's epoch and position) with (LT_DRAW_AUG_TAG ^ v << 32, s) for view
 * v, so two views of a sample differ and a draw is reproducible. x holds
 * [views x n] rows, view-major; labels and ids [views x n], repeated per
 * view. */
typedef struct lt_draw_req {
    lt_sampler_cfg sampler;
    int n;                       /* samples */
    int views;                   /* >= 1 */
    int augment;                 /* 1: training augmentation; 0: the eval transform */
    lt_rng *rng;                 /* i.i.d. samplers: required */
    uint64_t stream;             /* list samplers: the stream id (methods: LT_STREAM_METHOD + k) */
    int epoch;                   /* list samplers: the epoch of slot 0's list */
    long batch;                  /* list samplers: the batch index within it */
    long samples_per_epoch;      /* list samplers: list length (0 = the dataset's size) */
} lt_draw_req;
#define LT_DRAW_AUG_TAG 0x61756775u   /* "augu" */

typedef struct lt_drawer lt_drawer;
/* Indexes ds by class (allocation happens here, and once per list sampler
 * at its first draw); ds and aug must outlive the drawer. */
int lt_drawer_create(lt_drawer **d, const lt_dataset *ds, const lt_aug *aug, uint64_t seed);
int lt_drawer_draw(lt_drawer *d, const lt_draw_req *req, float *x, int32_t *labels, int32_t *ids);
void lt_drawer_free(lt_drawer *d);

/* ---- loader: batches prepared in a background thread ---------------------- */
typedef struct lt_loader lt_loader;
/* train != 0 applies lt_aug_train with streams derived from (seed, aug_stream);
 * otherwise lt_aug_eval. Batch buffers are allocated here, once. */
int lt_loader_open(lt_loader **L, const lt_dataset *ds, const lt_aug *aug, int batch,
                   int drop_last, int train, uint64_t seed, uint64_t aug_stream);
/* k augmented views of every sample (default 1), for multi-view methods: a
 * batch's x then holds k * count rows, view-major (rows [v*count,
 * (v+1)*count) are view v of the batch's samples), and y / sample repeat
 * per view. View 0 is exactly the one-view batch; view v >= 1 draws its
 * augmentation from the sample's stream derived with (LT_VIEW_TAG, v).
 * Call before lt_loader_start (it reallocates the batch slots). */
#define LT_VIEW_TAG 0x76696577u   /* "view" */
int lt_loader_set_views(lt_loader *L, int views);
/* Starts an epoch over idx[0..n-1] (copied), beginning at batch `first_batch`
 * (used when resuming mid-epoch; 0 normally). Starts preparing the first batch. */
int lt_loader_start(lt_loader *L, int epoch, const int32_t *idx, long n, long first_batch);
/* Returns LT_OK and a batch (pointers valid until the next call), or sets
 * *count = 0 at the end of the epoch. x is [views x count, c, out_h, out_w]. */
int lt_loader_next(lt_loader *L, const float **x, const int32_t **y, const int32_t **sample,
                   int *count);
long lt_loader_batches(const lt_loader *L); /* batches in the current epoch */
void lt_loader_close(lt_loader *L);

#endif
