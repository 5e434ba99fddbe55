/* lt_data.h — in-memory datasets, samplers, augmentation, the batch loader.
 *
 * A dataset is uint8 pixels (N x C x H x W, planar) plus int32 labels. The
 * data layer turns an epoch's list of sample indices (from a sampler) into
 * normalised, augmented float batches, preparing the next batches on
 * worker threads. Every random decision for sample slot i of epoch e is
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
    LT_SAMPLER_WEIGHTS = 5,        /* i.i.d., class prob. proportional to class_weights[j] */
    LT_SAMPLER_OVER_UNDER = 6      /* CBD's class-balanced over/under-sampling of a repeated
                                      stream (google-research class_balanced_distillation,
                                      input_pipeline.py; see lt_sampler.c); an epoch sampler
                                      only (lt_draw refuses it) */
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
    int autoaug;            /* LT_AUTOAUG_CIFAR10: AutoAugment's CIFAR-10 policy after the flip */
    int cutout_holes;       /* Cutout (DeVries & Taylor): holes of cutout_length px set to the */
    int cutout_length;      /*   zero pixel before normalisation (0 holes = off) */
    float mean[3], std[3];  /* applied to x/255 per channel */
} lt_aug;

/* Order in lt_aug_train: crop (or rrc) -> flip -> AutoAugment (on 8-bit
 * pixels, as PIL) -> colour jitter -> Cutout -> normalise; the random draws
 * in that order. BALMS's CIFAR recipe (RandomCrop, flip, CIFAR10Policy,
 * ToTensor, Cutout, Normalize) is pad 4 + autoaug + 1 hole of 16. */
enum { LT_AUTOAUG_NONE = 0, LT_AUTOAUG_CIFAR10 = 1 };

/* Test-time transform: no randomness (centre crop if sizes differ). */
void lt_aug_eval(const lt_aug *a, int c, int h, int w, const uint8_t *img, float *out);
/* Training transform of one image with its own rng. */
void lt_aug_train(const lt_aug *a, int c, int h, int w, const uint8_t *img, lt_rng *rng,
                  float *out);

/* ---- AutoAugment (CIFAR-10 policy) and Cutout (lt_autoaug.c) ----------------
 * The ops of the DeepVoltaire AutoAugment copy BALMS uses, bit for bit as
 * Pillow computes them on 8-bit planar RGB images (c = 3, sides up to
 * LT_AUTOAUG_MAX_SIDE: the scratch image is on the stack). */
#define LT_AUTOAUG_MAX_SIDE 64
typedef enum {
    LT_AA_SHEAR_X, LT_AA_SHEAR_Y, LT_AA_TRANSLATE_X, LT_AA_TRANSLATE_Y, LT_AA_ROTATE,
    LT_AA_COLOR, LT_AA_POSTERIZE, LT_AA_SOLARIZE, LT_AA_CONTRAST, LT_AA_SHARPNESS,
    LT_AA_BRIGHTNESS, LT_AA_AUTOCONTRAST, LT_AA_EQUALIZE, LT_AA_INVERT, LT_AA_N_OPS
} lt_aa_op;
/* One sub-policy: op1 with probability p1 at magnitude index idx1, then op2. */
typedef struct {
    double p1;   /* the code's Python floats: U < 0.1 exactly as random.random() < 0.1 */
    lt_aa_op op1;
    int idx1;
    double p2;
    lt_aa_op op2;
    int idx2;
} lt_aa_subpolicy;
#define LT_AA_CIFAR10_N 25
const lt_aa_subpolicy *lt_autoaug_cifar10_policy(void);   /* LT_AA_CIFAR10_N entries */
const char *lt_autoaug_op_name(lt_aa_op op);                /* the policy's names: "shearX", ... */
/* The policy's ranges[op][idx] (numpy linspace values; posterize in bits,
 * solarize the threshold, rotate degrees, translate a fraction of the side). */
double lt_autoaug_magnitude(lt_aa_op op, int idx);
/* 1: the policy applies the op at +/- magnitude, the sign drawn per call. */
int lt_autoaug_op_signed(lt_aa_op op);
/* Applies op at the signed magnitude mag in place. LT_EINVAL for a bad
 * shape or a magnitude PIL would take another code path for. */
int lt_autoaug_op(lt_aa_op op, double mag, int c, int h, int w, uint8_t *img);
/* CIFAR10Policy: draws one of the 25 sub-policies uniformly (rng draw 1), then
 * for each of its two ops U < p (draws 2 and 3 or 4) and, for a signed op that
 * is applied, its sign (one draw, right after its U). Returns the sub-policy
 * index, -1 for a bad shape (image unchanged). */
int lt_autoaug_cifar10(int c, int h, int w, uint8_t *img, lt_rng *rng);
/* Cutout(n_holes, length): per hole a centre uniform over the pixels (y then
 * x), the square [y - length/2, y + length/2) x [x - ...) clipped to the
 * image set to fill in every channel. */
void lt_cutout(int c, int h, int w, float *img, int holes, int length, float fill, lt_rng *rng);

/* ---- strong augmentation: a pipeline of torchvision transforms -------------
 * One view's recipe (SimCLR / MoCo-v2 style), applied in the fixed order
 *   crop -> RandomApply(ColorJitter, jitter_p) -> RandomGrayscale(gray_p)
 *   -> RandomApply(GaussianBlur, blur_p) -> RandomHorizontalFlip(hflip_p)
 *   -> Normalize (the base lt_aug's mean / std)
 * which is MoCo-v2's order (SSD-LT's loader.py copies it). The output size
 * is the base lt_aug's (out_h, out_w), so every view fits the model input.
 * Pixels stay float in [0, 255] between the ops (no uint8 rounding as PIL
 * does between transforms, as lt_aug_train). A zeroed struct has enabled = 0,
 * which every consumer (loader views, lt_draw_req, lt_stage) reads as "the
 * protocol's own training augmentation".
 *
 * Random draws per image, from the caller's rng, in this order: crop
 * parameters; u < jitter_p; then (when applied) the order of the four ops
 * (torch.randperm(4) as a Fisher-Yates shuffle) and one uniform factor per
 * enabled op (brightness, contrast, saturation, hue, in that order, drawn
 * whether or not the image has colour, so the stream use does not depend
 * on the channel count); u < gray_p; u < blur_p and then sigma; u < hflip_p. */
enum { LT_AUG_CROP_NONE = 0,   /* lt_aug_eval's geometry (identity / centre crop / resize) */
       LT_AUG_CROP_PAD = 1,    /* RandomCrop(out, padding = pad), zero fill */
       LT_AUG_CROP_RRC = 2 };  /* RandomResizedCrop(out, rrc_scale, rrc_ratio), bilinear */
typedef struct lt_aug_pipeline {
    int enabled;                 /* 0: not a pipeline (the protocol's augmentation instead) */
    int crop;                    /* LT_AUG_CROP_* */
    int pad;                     /* LT_AUG_CROP_PAD */
    float rrc_scale[2];          /* area fraction range; (0, 0) = torchvision's (0.08, 1) */
    float rrc_ratio[2];          /* aspect range; (0, 0) = (3/4, 4/3) */
    float jitter_p;              /* probability the colour jitter is applied */
    /* ColorJitter(brightness, contrast, saturation, hue): factors uniform in
     * [max(0, 1 - v), 1 + v] (hue: a shift uniform in [-hue, hue], hue <= 0.5);
     * 0 = op off */
    float brightness, contrast, saturation, hue;
    float gray_p;                /* RandomGrayscale: ITU-R 601-2 luma to every channel */
    float blur_p;                /* probability of the Gaussian blur */
    float blur_sigma[2];         /* sigma uniform in [lo, hi] (MoCo-v2: 0.1, 2.0) */
    int blur_ksize;              /* odd kernel side; 0 = 2 * ceil(3 * blur_sigma[1]) + 1 */
    float hflip_p;               /* horizontal flip probability */
} lt_aug_pipeline;

/* Ops a pipeline enables that have no meaning for `channels` (bits below):
 * saturation, hue and grayscale on 1-channel images (Fashion-MNIST). They
 * are skipped there (the random numbers are still drawn); a method or the
 * runner records the mask (lt_aug_op_name spells each bit). 0 for RGB. */
enum { LT_AUG_OP_SATURATION = 1u, LT_AUG_OP_HUE = 2u, LT_AUG_OP_GRAYSCALE = 4u };
unsigned lt_aug_pipeline_skipped(const lt_aug_pipeline *p, int channels);
const char *lt_aug_op_name(unsigned bit);   /* "saturation", "hue", "grayscale"; NULL otherwise */
/* LT_EINVAL naming the field when a parameter is out of range, or when the
 * blur kernel is wider than LT_AUG_MAX_SIDE allows for an oh x ow output. */
#define LT_AUG_MAX_SIDE 4096
int lt_aug_pipeline_check(const lt_aug_pipeline *p, int channels, int oh, int ow);
/* Presets. MoCo-v2 / SSD stage-I strong view: RRC(scale 0.2-1), ColorJitter
 * (0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale p 0.2, blur sigma 0.1-2 with
 * p 0.5 (kernel `blur_ksize`, 0 = from sigma), flip 0.5. */
void lt_aug_pipeline_mocov2(lt_aug_pipeline *p, int blur_ksize);
/* Training transform of one image through pipeline p (which must pass
 * lt_aug_pipeline_check); base gives the output size and normalisation.
 * Allocates nothing (the blur runs in place with a line buffer). */
void lt_aug_pipeline_apply(const lt_aug_pipeline *p, const lt_aug *base, int c, int h, int w,
                           const uint8_t *img, lt_rng *rng, float *out);

/* The single ops on a planar float image with values in [0, 255], exactly
 * as the pipeline applies them (torchvision's tensor functional
 * semantics), for tests and for methods composing their own order. plane =
 * h * w. Colour ops on c != 3 images: brightness and contrast work per
 * pixel / on the image mean; saturation, hue and grayscale leave them
 * unchanged. */
void lt_aug_brightness(int c, size_t plane, float *img, float f);
void lt_aug_contrast(int c, size_t plane, float *img, float f);
void lt_aug_saturation(int c, size_t plane, float *img, float f);
void lt_aug_hue(int c, size_t plane, float *img, float shift);
void lt_aug_grayscale(int c, size_t plane, float *img);
/* Gaussian blur, kernel exp(-x^2 / 2 sigma^2) on x = -(k-1)/2..(k-1)/2,
 * normalised, reflect padding (torchvision F.gaussian_blur), separable and
 * in place. k odd, 1 <= k, and max(h, w) + k <= LT_AUG_MAX_SIDE + 1. */
void lt_aug_gaussian_blur(int c, int h, int w, float *img, float sigma, int k);
/* RGB <-> HSV of one pixel, all in [0, 1] (torchvision's _rgb2hsv /
 * _hsv2rgb, whose hue adjustment they implement). */
void lt_aug_rgb_to_hsv(float r, float g, float b, float *h, float *s, float *v);
void lt_aug_hsv_to_rgb(float h, float s, float v, float *r, float *g, float *b);

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
    /* Appended (issue 17): per-view pipelines. View v < n_pipelines with
     * pipelines[v].enabled takes that strong pipeline instead of the run's
     * augmentation (augment = 1 only), drawing from the same slot stream.
     * Zero / NULL: the run's augmentation for every view. */
    const lt_aug_pipeline *pipelines;
    int n_pipelines;
} lt_draw_req;
#define LT_DRAW_AUG_TAG 0x61756775u   /* "augu" */

typedef struct lt_drawer lt_drawer;
/* Indexes ds by class (allocation happens here, and once per list sampler
 * at its first draw); ds and aug must outlive the drawer. */
int lt_drawer_create(lt_drawer **d, const lt_dataset *ds, const lt_aug *aug, uint64_t seed);
int lt_drawer_draw(lt_drawer *d, const lt_draw_req *req, float *x, int32_t *labels, int32_t *ids);
void lt_drawer_free(lt_drawer *d);

/* ---- loader: batches prepared ahead on worker threads ---------------------- */
typedef struct lt_loader lt_loader;
typedef struct lt_backend lt_backend;

/* An image source other than ds->pixels: writes image `id` (ds->c x ds->h x
 * ds->w uint8, planar, as ds->pixels would hold it) into dst, e.g. by
 * decoding its JPEG. Called on the loader's worker threads, concurrently:
 * must be thread-safe. Returns LT_OK or an LT_* code with lt_err's message
 * naming the image; lt_loader_next then returns that code for the batch, the
 * message prefixed with the epoch, batch, position and sample id. */
typedef int (*lt_loader_load_fn)(void *ud, int32_t id, uint8_t *dst);
/* Slot memory: *p = bytes of host memory (LT_OK), or an LT_* code with a
 * message; free releases it. */
typedef int (*lt_host_alloc_fn)(void *ud, void **p, size_t bytes);
typedef void (*lt_host_free_fn)(void *ud, void *p);

typedef struct {
    int workers;     /* threads preparing batches (1..256; 0 = 1) */
    int prefetch;    /* batch slots in the ring (2..64; 0 = 2 for one worker, else 3):
                        the caller holds one, the workers fill the others */
    int chunk;       /* samples a worker claims at a time (0 = the whole batch for one
                        worker, else about batch / (4 workers)); never changes a batch */
    /* slot memory (x, labels, ids in one block per slot); NULL = lt_alloc */
    lt_host_alloc_fn alloc;
    lt_host_free_fn free;
    void *alloc_ud;
    /* image source; NULL = ds->pixels (ds->pixels may be NULL when set) */
    lt_loader_load_fn load;
    void *load_ud;
} lt_loader_opts;

/* One worker, the default depth and chunk, heap slots, ds->pixels: the
 * single background thread lt_loader_open always had. */
void lt_loader_opts_default(lt_loader_opts *o);
/* The options for runs on backend b: lt_backend_loader_workers(b) workers,
 * slots from lt_backend_host_alloc(b) (pinned on cuda). b must outlive the
 * loader. cpu or NULL: exactly lt_loader_opts_default. */
void lt_loader_opts_for_backend(lt_loader_opts *o, const lt_backend *b);

/* train != 0 applies lt_aug_train with streams derived from (seed, aug_stream);
 * otherwise lt_aug_eval. Batch buffers are allocated here, once. A batch's
 * bytes do not depend on opts (workers, prefetch, chunk, allocator). opts
 * NULL = lt_loader_opts_default. */
int lt_loader_open_opts(lt_loader **L, const lt_dataset *ds, const lt_aug *aug, int batch,
                        int drop_last, int train, uint64_t seed, uint64_t aug_stream,
                        const lt_loader_opts *opts);
/* lt_loader_open_opts with the default options. */
int lt_loader_open(lt_loader **L, const lt_dataset *ds, const lt_aug *aug, int batch,
                   int drop_last, int train, uint64_t seed, uint64_t aug_stream);
/* The options in effect (defaults resolved: workers, prefetch, chunk >= 1). */
int lt_loader_get_opts(const lt_loader *L, lt_loader_opts *out);

/* Where the time went since lt_loader_open: load_s and aug_s are the
 * workers' CPU seconds (CLOCK_THREAD_CPUTIME_ID, summed over workers), so
 * their split holds on a busy machine; wait_s is the caller's wall time. */
typedef struct {
    long samples;    /* samples prepared (each with all its views) */
    long batches;    /* batches handed to the caller */
    double load_s;   /* in the load function (decoding); 0 without one */
    double aug_s;    /* augmenting and normalising (and, without a load
                        function, reading ds->pixels) */
    double wait_s;   /* the caller blocked in lt_loader_next for a batch */
    long waits;      /* calls of lt_loader_next that had to wait */
} lt_loader_stats;
int lt_loader_get_stats(lt_loader *L, lt_loader_stats *out);

/* k augmented views of every sample (default 1), for multi-view methods: a
 * batch's x then holds k * count rows, view-major (rows [v*count,
 * (v+1)*count) are view v of the batch's samples), and y / sample repeat
 * per view. View 0 is exactly the one-view batch; view v >= 1 draws its
 * augmentation from the sample's stream derived with (LT_VIEW_TAG, v).
 * Call before lt_loader_start (it reallocates the batch slots). */
#define LT_VIEW_TAG 0x76696577u   /* "view" */
int lt_loader_set_views(lt_loader *L, int views);
/* View v's training transform: pipeline p (copied; must pass
 * lt_aug_pipeline_check for the loader's output) instead of the loader's
 * lt_aug; p NULL or p->enabled == 0 returns view v to the lt_aug. It draws
 * from the same per-view stream the lt_aug would, so a run stays
 * reproducible and two views of a sample differ. Views v >= the view count
 * keep the setting for a later lt_loader_set_views. Call before
 * lt_loader_start; training loaders only (eval loaders ignore it). */
int lt_loader_set_view_pipeline(lt_loader *L, int v, const lt_aug_pipeline *p);
/* Starts an epoch over idx[0..n-1] (copied), beginning at batch `first_batch`
 * (used when resuming mid-epoch; 0 normally). Starts preparing the first batch. */
int lt_loader_start(lt_loader *L, int epoch, const int32_t *idx, long n, long first_batch);
/* Returns LT_OK and a batch (pointers valid until the next call), or sets
 * *count = 0 at the end of the epoch. x is [views x count, c, out_h, out_w].
 * A batch whose load function failed returns that code (count 0) naming the
 * sample; so does every later call until the next lt_loader_start. */
int lt_loader_next(lt_loader *L, const float **x, const int32_t **y, const int32_t **sample,
                   int *count);
long lt_loader_batches(const lt_loader *L); /* batches in the current epoch */
/* Stops and joins the workers (mid-epoch too) and frees everything. */
void lt_loader_close(lt_loader *L);

#endif
