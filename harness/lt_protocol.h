/* lt_protocol.h — benchmark protocol files (protocols/<name>.json) and their
 * validating loader.
 *
 * A protocol fixes everything that decides a number: dataset and long-tailed
 * subset, shot groups, model selection, normalisation, augmentation,
 * evaluation, seeds, and per scale (ci / short / full) the model and the
 * stage-1 / stage-2 schedules. protocols/README.md documents every key.
 *
 * The loader is strict on purpose: a typo in a protocol silently changes a
 * published number, so an unknown key, a wrong type, a missing key, an
 * out-of-range value or malformed JSON is an error whose message names the
 * file and the full key path ("protocols/x.json: unknown key
 * 'scales.short.stage1.epoch'"), or the file and line:column for JSON
 * syntax errors. Everything is copied into fixed-size fields, so an
 * lt_protocol owns no heap memory and needs no free. */
#ifndef LT_PROTOCOL_H
#define LT_PROTOCOL_H

#include "lt_base.h"
#include "lt_data.h"   /* lt_aug, lt_sampler_kind */
#include "lt_loss.h"   /* lt_sched, the engine's LR schedule */
#include "lt_model.h"  /* lt_opt_kind */

#define LT_PROTOCOL_VERSION 1          /* the only "version" this loader reads */
#define LT_PROTOCOL_DIR "protocols"    /* default directory of lt_protocol_find */

#define LT_PROTO_NAME_MAX 64
#define LT_PROTO_PATH_MAX 512
#define LT_PROTO_TEXT_MAX 1024
#define LT_PROTO_MAX_SEEDS 16
#define LT_PROTO_MAX_METRICS 16
#define LT_PROTO_MAX_MILESTONES 8      /* = lt_sched.milestones capacity */
#define LT_PROTO_MAX_CHANNELS 4
#define LT_PROTO_MAX_DROP_IDS 64

typedef enum {
    LT_PROTO_EXP = 0,          /* n_i = (int)(n_max * (1/IR)^(i/(C-1))) */
    LT_PROTO_STEP = 1,         /* first C/2 classes n_max, the rest (int)(n_max/IR) */
    LT_PROTO_LISTS = 2,        /* published split lists ("path label" lines) */
    LT_PROTO_OBJECT_CROPS = 3   /* object crops from detection annotations (LVIS) */
} lt_proto_profile_kind;

typedef struct {
    lt_proto_profile_kind kind;
    /* exp / step */
    double imbalance_ratio;
    int n_max;
    int subset_seed;
    /* lists: file names relative to the dataset's split directory; "" = none.
     * A sha256 of "" means the protocol does not pin that file's hash. */
    char train_list[LT_PROTO_NAME_MAX], train_list_sha256[65];
    char val_list[LT_PROTO_NAME_MAX], val_list_sha256[65];
    char test_list[LT_PROTO_NAME_MAX], test_list_sha256[65];
    /* object_crops (specs/datasets.md §5.5) */
    char train_annotations[LT_PROTO_NAME_MAX];
    char test_annotations[LT_PROTO_NAME_MAX];
    char crop_rule[LT_PROTO_NAME_MAX];     /* "mscoco_glt" */
    char resampler[LT_PROTO_NAME_MAX];     /* "area_down_bilinear_up" */
    char hash_prefix[LT_PROTO_NAME_MAX];   /* ordering key prefix, "lvis-lt-cls-v1|" */
    int crop_size, min_box_size, max_train_per_class, max_test_per_class;
    int n_drop_ids;
    long long drop_annotation_ids[LT_PROTO_MAX_DROP_IDS];
} lt_proto_profile;

typedef struct {
    char name[LT_PROTO_NAME_MAX];   /* dataset-layer name: fmnist cifar10 cifar100 imagenet_lt ... */
    int num_classes;
    int channels;
    lt_proto_profile profile;
    long expected_train_size;       /* -1 = not known */
    long expected_test_size;        /* -1 = not known */
} lt_proto_dataset;

typedef struct {
    int many_gt, few_lt;            /* many: count > many_gt; few: count < few_lt */
    int has_expected;
    int expected[3];                /* many, medium, few class counts */
    char frequency_groups[LT_PROTO_NAME_MAX];  /* "" or "lvis_frequency" */
} lt_proto_groups;

typedef enum { LT_PROTO_VAL_CARVE = 0, LT_PROTO_VAL_LIST = 1 } lt_proto_val_kind;

typedef struct {
    char rule[LT_PROTO_NAME_MAX];   /* "last_epoch" */
    lt_proto_val_kind val_kind;   /* LIST: dataset.profile.val_list */
    /* carve_from_train: per class, the last min(max_per_class, floor(fraction*n_c))
     * images of the class's subset order form the validation split. */
    double val_fraction;
    int val_max_per_class;
} lt_proto_selection;

typedef struct {
    double input_scale;             /* x / input_scale before (x - mean) / std */
    int n;                          /* = dataset.channels */
    double mean[LT_PROTO_MAX_CHANNELS], std[LT_PROTO_MAX_CHANNELS];
} lt_proto_norm;

typedef enum { LT_PROTO_AUG_NONE = 0, LT_PROTO_AUG_PAD_CROP = 1, LT_PROTO_AUG_RRC = 2 } lt_proto_aug_kind;
typedef enum { LT_PROTO_TEST_NONE = 0, LT_PROTO_TEST_RESIZE_CROP = 1 } lt_proto_test_kind;

typedef struct {
    lt_proto_aug_kind kind;
    int pad, pad_fill;              /* pad_crop: pad px on each side with raw pixel value pad_fill */
    int size;                       /* output side (pad_crop, random_resized_crop) */
    double scale[2], ratio[2];      /* random_resized_crop area and aspect ranges */
    double hflip_p;
    int has_color_jitter;
    double color_jitter[4];         /* brightness, contrast, saturation, hue */
    int autoaug;                    /* "autoaugment": LT_AUTOAUG_CIFAR10, or 0 (null / absent) */
    int cutout_holes, cutout_length; /* "cutout": {"holes", "length"}, or 0 (null / absent) */
    lt_proto_test_kind test_kind;
    int test_resize, test_size;     /* resize_center_crop: shorter side, then centre crop */
} lt_proto_aug;

typedef struct {
    lt_sched_kind kind;
    int per_epoch_update;           /* 1: the LR changes at epoch boundaries only */
    int warmup_epochs;
    int warmup_per_epoch;           /* 0: per-iteration linear warm-up, 1: LDAM per-epoch */
    int n_milestones;
    int milestones[LT_PROTO_MAX_MILESTONES];
    double gamma;                   /* multistep factor per milestone passed */
    double warmup_start;            /* cosine_epoch: warmup_start_factor */
} lt_proto_sched;

typedef struct {
    int epochs, batch, drop_last;
    lt_opt_kind optimizer;          /* "sgd" (the one kind a protocol may name) */
    double momentum;
    int nesterov;
    double weight_decay, base_lr;
    double head_lr_mult;            /* head lr = base_lr * head_lr_mult */
    lt_proto_sched sched;
    lt_sampler_kind sampler;        /* "instance_balanced" | "class_balanced" */
    int bn_eval;                    /* "bn_mode": "eval" (frozen-backbone statistics) or "train" */
} lt_proto_stage;

typedef struct {
    int required;                   /* 0: train from scratch */
    char arch[LT_PROTO_NAME_MAX];
    char pretrained_on[LT_PROTO_NAME_MAX];
    char description[LT_PROTO_TEXT_MAX];
    char sha256[65];                /* "" = not pinned */
} lt_proto_init;

typedef struct {
    char name[8];                   /* "ci", "short", "full" */
    char arch[32];                  /* engine name, see lt_resnet_backbone */
    int image_size;                 /* network input side */
    int store_size;                 /* 0: cache at source resolution; else decode once to this side */
    int subsample_train_per_class;  /* 0: all; else at most this many per class (smoke runs) */
    long test_subset;               /* 0: full test set; else the first N test images */
    lt_proto_aug aug;               /* effective: the scale's override or the protocol's */
    int aug_overridden;
    lt_proto_init init;
    lt_proto_stage stage1, stage2;
} lt_proto_scale;

enum { LT_SCALE_CI = 0, LT_SCALE_SHORT = 1, LT_SCALE_FULL = 2, LT_N_SCALES = 3 };

typedef struct {
    char path[LT_PROTO_PATH_MAX];   /* as given to lt_protocol_load */
    char sha256[65];                /* of the file bytes (= lt_protocol_hash) */
    char name[LT_PROTO_NAME_MAX];   /* "protocol" key; equals the file stem */
    int version;
    char description[LT_PROTO_TEXT_MAX];
    char paper_reference[LT_PROTO_TEXT_MAX];
    char division[16];              /* closed | open */
    lt_proto_dataset dataset;
    lt_proto_groups groups;
    lt_proto_selection selection;
    lt_proto_norm norm;
    lt_proto_aug aug;
    int n_metrics;
    char metrics[LT_PROTO_MAX_METRICS][24];
    int ece_bins;
    char ece_binning[32], ece_confidence[32], ece_bin_edges[32];
    char aggregate[16];             /* mean_std */
    int n_seeds;
    int seeds[LT_PROTO_MAX_SEEDS];
    lt_proto_scale scales[LT_N_SCALES];
} lt_protocol;

/* Reads and validates one protocol file into *out (zeroed first). On failure
 * out is unspecified and lt_errmsg() names the file and the key path:
 * LT_EIO (unreadable), LT_EDATA (malformed JSON, unknown/missing key, wrong
 * type, value out of range), LT_EABI (a "version" this build does not read). */
int lt_protocol_load(const char *path, lt_protocol *out);

/* Resolves a protocol name or path. Anything containing '/' or ending in
 * ".json" is taken as a path; a bare name becomes <dir>/<name>.json where dir
 * is `dir`, else $LTBENCH_PROTOCOLS, else "protocols". LT_EIO (with the path
 * that was tried) when the file does not exist; LT_EINVAL when it does not fit. */
int lt_protocol_find(const char *name_or_path, const char *dir, char *path, size_t cap);

/* The block for scale "ci" | "short" | "full"; LT_EINVAL naming the scale otherwise. */
int lt_protocol_scale(const lt_protocol *p, const char *scale, const lt_proto_scale **out);

/* sha256 (hex) of the file's bytes: the identity of a protocol in result files. */
int lt_protocol_hash(const char *path, char hex[65]);

/* Refuses a scale that needs an initial checkpoint (places_lt full needs an
 * ImageNet-pretrained ResNet-152) unless ckpt_path names a readable file
 * whose sha256 matches when the protocol pins one. LT_OK when none is needed
 * (ckpt_path is then ignored). LT_ESTATE when missing, LT_EIO when unreadable,
 * LT_ECHECKSUM on a hash mismatch. */
int lt_protocol_check_init(const lt_protocol *p, const lt_proto_scale *s, const char *ckpt_path);

/* Engine LR schedule of a stage (kind, base lr, epochs, warm-up, milestones).
 * per_epoch_update is not part of lt_sched: the runner evaluates lt_sched_lr
 * at the first iteration of the epoch when it is set. */
void lt_proto_stage_sched(const lt_proto_stage *st, lt_sched *out);

/* Engine augmentation (lt_aug) of a scale: its effective augmentation with
 * the protocol's normalisation; lt_aug_eval uses the same struct for test
 * images. LT_EINVAL when the protocol asks for something lt_aug cannot
 * express (hflip_p other than 0 or 0.5, pad_fill other than 0, unequal
 * brightness/contrast/saturation jitter, hue jitter, more than 3 channels). */
int lt_proto_engine_aug(const lt_protocol *p, const lt_proto_scale *s, lt_aug *out);

/* Per-class training counts of an exp/step profile (the truncation the
 * LDAM-DRW code uses); counts has num_classes entries. LT_EINVAL for lists. */
int lt_protocol_class_counts(const lt_protocol *p, long *counts, int n);

/* Calls fn for every *.json in dir (NULL: $LTBENCH_PROTOCOLS or "protocols")
 * in byte order of file name, for `ltbench list`. p is the loaded protocol,
 * or NULL with status != LT_OK and errmsg saying why the file is invalid.
 * A non-zero return from fn stops the walk and is returned. LT_EIO when the
 * directory cannot be read. */
typedef int (*lt_protocol_list_fn)(void *ud, const char *path, const lt_protocol *p, int status,
                                   const char *errmsg);
int lt_protocol_list(const char *dir, lt_protocol_list_fn fn, void *ud);

#endif
