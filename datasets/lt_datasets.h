/* lt_datasets.h — the dataset layer's public API: registry, fetch, build, load.
 *
 * What the harness does with a dataset, in order:
 *
 *   const lt_ds_def *def = lt_ds_find("fmnist");
 *   lt_ds_opts o; lt_ds_opts_default(&o); o.ir = 100;
 *   lt_ds_built b;
 *   lt_ds_build(def, &o, &b);          // fetch -> verify -> read -> LT subset -> cache
 *   lt_dataset train, test;
 *   lt_ds_open(def, &o, &train, &test, &b);   // mmap the caches (builds if needed)
 *   ... b.manifest_sha256 goes into every result file ...
 *   lt_dataset_free(&train); lt_dataset_free(&test); lt_ds_built_free(&b);
 *
 *   lt_dataset val; lt_ds_val_info vi;        // model selection (tau, meta set, ...)
 *   lt_ds_open_val(def, &o, &val, &vi);       // never the test set, never LT train rows
 *   ... vi.manifest_sha256 identifies the validation split ...
 *   lt_dataset_free(&val); lt_ds_val_info_free(&vi);
 *
 * On-disk layout under the data directory (default "data/" in the repository
 * root, else $LTBENCH_DATA, else --data DIR):
 *
 *   <data>/<name>/raw/<file>            a downloaded or copied source file
 *   <data>/<name>/raw/<file>.verified   stamp written after a successful hash
 *                                       check: the verified path (may point at a
 *                                       system copy such as /usr/share/datasets),
 *                                       its size and mtime, the hash that matched.
 *                                       A later run trusts the stamp while size
 *                                       and mtime are unchanged (no re-hashing).
 *   <data>/<name>/<tag>/manifest.json   the build record (see lt_cache.c)
 *   <data>/<name>/<tag>/train.ltc       binary cache of the (long-tailed) train set
 *   <data>/<name>/<tag>/test.ltc        binary cache of the test set
 *   <data>/<name>/<tag>/index.txt       EXP/STEP: the kept source positions, ","-joined
 *                                       (sha256 of this file == the manifest's index_sha256)
 *   <data>/<name>/<tag>/val.ltc         binary cache of the validation split (same format)
 *   <data>/<name>/<tag>/val_manifest.json  its record (see "Validation split" below)
 *
 * <tag> names the recipe: "exp_ir100", "step_ir10", "exp_ir100_seed3",
 * "natural_px64". The manifest stores a hash of all inputs (source identity
 * hashes + recipe + format version); a build whose inputs hash matches an
 * existing manifest with intact caches does nothing. The manifest holds no
 * paths or times, so its sha256 (the "manifest hash" recorded by results) is
 * the same on every machine that built the same data.
 *
 * Validation split. Methods that select a model or a hyper-parameter (tau of
 * tau-norm, BALMS's meta set, SSD/ICCL checkpoints) need held-out images that
 * are neither the test set (selecting on it inflates test numbers) nor taken
 * from the long-tailed training rows (that would shrink the tail further).
 * It is built with the dataset, by a fixed rule:
 *  - EXP/STEP datasets (fmnist, cifar10, cifar100): the training images the
 *    long-tailed subset LEAVES OUT. Per class c, k_c = min(V, left-over_c)
 *    with V = LT_VAL_PER_CLASS = 20 (ImageNet-LT's and Places-LT's official
 *    val lists hold 20 per class), chosen by lt_val_select (Philox stream
 *    (subset seed, LT_STREAM_SPLIT), one derived sub-stream per class) and
 *    stored by class in label order, ascending source position within a class.
 *    Limitation: a class the subset keeps whole has no left-overs and gets
 *    FEWER than V images, possibly none: the head class of every EXP profile
 *    (n_max is the whole class: fmnist class 0 at any IR, cifar10/100 class 0)
 *    and the first half of the classes of a STEP profile. Such classes are
 *    listed in the val manifest's "classes_short" and counted in
 *    lt_ds_val_info.n_short; they are never filled from the training rows or
 *    the test set.
 *  - NATURAL datasets with an official val list (imagenet_lt: ImageNet_LT_val.txt,
 *    places_lt: Places_LT_val.txt, both 20 per class, images from the train
 *    archive): the list, read with the same list reader and image decoder as
 *    train and test; checked disjoint from both lists.
 *  - inat2018, lvis, lvis_fixture: none (their only labelled held-out set is
 *    the test set); lt_ds_open_val says so with LT_EINVAL.
 * val_manifest.json ("ltbench-validation-manifest", format_version 1) records
 * the dataset, tag, the sha256 of the manifest.json it belongs to, origin, V,
 * seed and stream (null for a list), n, counts, classes_short, index_sha256
 * (EXP/STEP: sha256 of the ","-joined source positions in stored order, as
 * lt_subset_index_sha256; a list: the list file's sha256) and cache_sha256.
 * Like manifest.json it holds no paths or times. The split lives beside the
 * build, not in manifest.json, so adding it changed no existing manifest hash:
 * a build that is up to date but lacks a current val split (missing,
 * damaged, or written for another manifest) gets one on the next
 * lt_ds_build / lt_ds_open / lt_ds_open_val without its other files being
 * rewritten.
 *
 * Testing against fixtures: every function takes the definition by pointer,
 * so a test copies a registry entry (`lt_ds_def d = *lt_ds_find("cifar10")`),
 * replaces files[i].sha256 with its fixture's hash, sets o.url to a loopback
 * mirror ("http://127.0.0.1:PORT/"), sets o.use_system = 0, and runs the real
 * pipeline. Nothing in the registry is global mutable state. */
#ifndef LT_DATASETS_H
#define LT_DATASETS_H

#include <stdio.h>

#include "lt_base.h"
#include "lt_data.h"

struct cJSON;

#define LT_DS_MAX_FILES 8
#define LT_DS_FORMAT_VERSION 1   /* bump when cache/manifest layout or a reader's output changes */

/* ---- LT profiles and subset selection (lt_subset.c) ----------------------- */
typedef enum {
    LT_PROFILE_EXP = 0,      /* n_i = (int)(n_max * pow(1/IR, i/(C-1.0))) */
    LT_PROFILE_STEP = 1,     /* i < C/2: n_max; else (int)(n_max/IR) (LDAM 'step') */
    LT_PROFILE_NATURAL = 2   /* dataset is long-tailed as published: no selection */
} lt_profile;

const char *lt_profile_name(lt_profile p);            /* "exp", "step", "natural" */
int lt_profile_parse(const char *s, lt_profile *p);   /* LT_EINVAL on unknown */

/* counts[C] of the profile. LT_EINVAL if ir < 1, C < 2 or n_max < 1. */
int lt_subset_counts(lt_profile p, long n_max, int n_classes, double ir, long *counts);

/* The LDAM-DRW selection, exactly: one NumPy-legacy MT19937 stream seeded with
 * `seed`; for c = 0..C-1 in label order, shuffle the ascending positions of
 * class c in labels[] and keep the first counts[c]. Writes the kept global
 * positions, class by class in shuffled order, to idx (caller allocates
 * sum(counts) entries) and sets *n_out. If ranks != NULL it receives, aligned
 * with idx, each kept sample's within-class rank (position among class c's
 * ascending list) — what the §1.5 digest is defined over.
 * LT_EDATA if a class has fewer than counts[c] samples or a label is out of
 * range. */
int lt_subset_select(const int32_t *labels, long n, int n_classes, const long *counts,
                     uint32_t seed, int32_t *idx, int32_t *ranks, long *n_out);

/* The class-rank digest of specs/datasets.md §1.5 using only class sizes: for
 * each class c, perm_c = shuffle(arange(class_sizes[c])) from the shared
 * stream, take perm_c[:counts[c]], sort ascending, join with ","; classes
 * joined with " "; sha256 hex. No data needed. */
int lt_subset_rank_digest(const long *class_sizes, const long *counts, int n_classes,
                          uint32_t seed, char hex[65]);
/* The same digest from lt_subset_select's ranks output (idx order). */
int lt_subset_rank_digest_from(const int32_t *ranks, const int32_t *labels_of_kept, long n,
                               int n_classes, char hex[65]);

/* sha256 of the global index list as ASCII decimals joined by "," in list
 * order (reproducible in Python: ",".join(map(str, idx))). */
void lt_subset_index_sha256(const int32_t *idx, long n, char hex[65]);

/* The validation split of an EXP/STEP dataset (see the top of this file):
 * `kept` (n_kept positions) is the long-tailed subset of the n training
 * images with labels[]. Per class c in label order, the ascending positions
 * of c NOT in kept are shuffled with lt_rng_shuffle_i32 on
 * lt_rng_derive(stream(seed, LT_STREAM_SPLIT), c, 0); the first
 * k_c = min(per_class, left-over_c) are kept and written sorted ascending.
 * val gets sum(k_c) <= n_classes * per_class positions (caller allocates),
 * counts[n_classes] the k_c. LT_EDATA if a label or a kept position is out of
 * range or a position is kept twice. */
#define LT_VAL_PER_CLASS 20
int lt_val_select(const int32_t *labels, long n, int n_classes, const int32_t *kept, long n_kept, int per_class,
                  uint32_t seed, int32_t *val, long *counts, long *n_out);

/* OLTR shot groups, strict rule: many > 100, few < 20, medium otherwise. */
void lt_shot_groups(const long *counts, int n_classes, int *many, int *medium, int *few);

/* ---- IDX files (lt_idx.c) ------------------------------------------------- */
/* Largest image side (rows, columns) an IDX file may declare: MNIST-family
 * images are 28 x 28. Checked, with the whole size, before anything is
 * allocated for the payload. */
#define LT_IDX_MAX_SIDE 1024

/* Reads an IDX file, gzip-compressed (detected by its magic bytes) or plain,
 * through libarchive. The header must be big-endian 0x00 0x00 0x08 ndim with
 * ndim == expect_ndim (1 labels, 3 images); the decompressed size must equal
 * the header-implied size. *data is malloc'd (payload only), dims[0..ndim-1]
 * filled. If sha_hex != NULL it receives the sha256 of the whole decompressed
 * stream (header included) — the Fashion-MNIST "content" hash of §2.2.
 * Errors (LT_EDATA/LT_EIO) name the file: wrong magic, wrong ndim, a
 * dimension after the first above LT_IDX_MAX_SIDE or a product above 4 GiB
 * (both refused before allocating), size not matching the header, truncated
 * or corrupt gzip. */
int lt_idx_read(const char *path, int expect_ndim, uint8_t **data, long dims[3],
                char sha_hex[65]);
/* Loads an images file (N x H x W) and a labels file (N) into d (c = 1).
 * LT_EDATA if N differs or a label is >= n_classes. */
int lt_idx_load(const char *images_path, const char *labels_path, int n_classes,
                lt_dataset *d);

/* ---- CIFAR binary (lt_cifar.c) -------------------------------------------- */
typedef enum { LT_CIFAR10 = 10, LT_CIFAR100 = 100 } lt_cifar_kind;
/* Reads the train and test sets straight out of cifar-10-binary.tar.gz /
 * cifar-100-binary.tar.gz in one pass (members cifar-10-batches-bin/
 * data_batch_1..5.bin + test_batch.bin, or cifar-100-binary/train.bin +
 * test.bin; a leading "./" is tolerated). Record sizes 3073 / 3074; each
 * member must hold exactly the expected number of whole records: n_train
 * (split evenly over the five CIFAR-10 batches) and n_test, <= 0 meaning the
 * published 50000 / 10000 (fixtures pass smaller numbers). Train = batches
 * 1..5 in order. CIFAR-100 uses the fine label (byte 1). train or test may be
 * NULL to skip it. Errors (LT_EDATA) name the archive and the member. */
int lt_cifar_read_archive(const char *archive, lt_cifar_kind kind, long n_train, long n_test,
                          lt_dataset *train, lt_dataset *test);
/* The same from an extracted directory (the folder holding the .bin files). */
int lt_cifar_read_dir(const char *dir, lt_cifar_kind kind, long n_train, long n_test,
                      lt_dataset *train, lt_dataset *test);
/* §1.2 sentinels: CIFAR-10 train labels[0..9] = 6 9 9 4 1 1 2 7 8 3 and test
 * 3 8 8 0 6 6 1 6 3 1. LT_EDATA with the mismatch if they differ (the binary
 * files would then not be in the python-pickle order LDAM's subsets assume). */
int lt_cifar10_check_sentinels(const lt_dataset *train, const lt_dataset *test);
/* The same for CIFAR-100's fine labels: train 19 29 0 11 1 86 90 28 23 31,
 * test 49 33 72 51 71 92 15 14 23 0 (the python version's order). */
int lt_cifar100_check_sentinels(const lt_dataset *train, const lt_dataset *test);

/* ---- binary cache and manifest (lt_cache.c) ------------------------------- */
/* Cache file, little-endian:
 *   0  char[8] "LTDSET\r\n"   8  u32 version (1)   12 u32 header bytes (64)
 *   16 u64 n                  24 u32 c, h, w       36 u32 n_classes
 *   40 u64 labels offset (64) 48 u64 pixels offset (64-aligned)
 *   56 u64 FNV-1a 64 of bytes 0..55 (detects a corrupt header)
 *   then n int32 labels, then n*c*h*w uint8 pixels.
 * Written to "<path>.tmp", fsync'd, renamed, directory fsync'd; on any error
 * the temp file is removed. If sha_hex != NULL it gets the file's sha256. */
int lt_cache_write(const char *path, const lt_dataset *d, char sha_hex[65]);
/* Memory-maps a cache (private copy-on-write mapping: the engine may write
 * into pixels, the file never changes). d->map/map_len are set, owns = 0.
 * Checks magic, version, header checksum, file size against the header and
 * every label < n_classes; LT_EDATA naming the file otherwise. */
int lt_cache_load(const char *path, lt_dataset *d);
/* Header-only check (cheap; no label scan): LT_OK if the file looks intact. */
int lt_cache_check(const char *path, long *n, int *n_classes);

/* Atomic file writes and JSON files: engine/lt_io.h. */

/* ---- registry (lt_registry.c) --------------------------------------------- */
typedef struct {
    const char *name;           /* file name in raw/ (and in the mirror) */
    const char *url;            /* upstream URL; NULL: only --from / --url / system */
    const char *sha256;         /* pinned sha256 of the file as published; NULL: unpinned */
    const char *content_sha256; /* pinned sha256 of the decompressed stream (gz files), or NULL */
    const char *md5;            /* publisher md5: checked when neither sha256 is pinned (the
                                   ImageNet / Places365 image tars), else only quoted in messages */
    long long bytes;            /* published size, 0 if unknown (a download's expected size) */
    const char *system_path;    /* a packaged copy used before any download (Debian), or NULL.
                                   A relative path is taken from the repository root. */
    int optional;               /* 1: needed only by some builds (e.g. test archives) */
} lt_ds_file;

typedef struct lt_ds_src lt_ds_src;
/* A dataset reader: fills train (the full train set for EXP/STEP datasets, the
 * published long-tailed train set for NATURAL ones) and test, both owning.
 * It may add fields to `extra` (a cJSON object copied into the manifest under
 * "extra"); a string field "index_sha256" there becomes the manifest's
 * index-list hash for NATURAL datasets. */
typedef int (*lt_ds_reader)(const lt_ds_src *src, lt_dataset *train, lt_dataset *test,
                            struct cJSON *extra);
/* Reads only the official validation set (NATURAL datasets with a val list):
 * repairs the split of a build whose train and test caches are current. */
typedef int (*lt_ds_val_reader)(const lt_ds_src *src, lt_dataset *val);

typedef struct lt_ds_def {
    const char *name;           /* "cifar10", "cifar100", "fmnist", "imagenet_lt", ... */
    const char *title;          /* one line for `ltbench datasets` */
    int n_classes;
    int c, h, w;                /* cached image shape; h = w = 0: set by scale (JPEG sets) */
    int side[3];                /* JPEG sets: decode side for scale ci / short / full */
    long n_train, n_test;       /* published full train / test sizes (checked), 0 = unknown */
    long n_max;                 /* head count for EXP/STEP; 0 for NATURAL datasets */
    lt_profile default_profile;
    double default_ir;          /* EXP/STEP default imbalance ratio */
    int check_cifar10_sentinels;
    /* Not part of the manifest hash (unlike the CIFAR-10 flag, whose value is
     * hashed): the check reads the same data and changes nothing in the build,
     * so builds and results made before it was added keep their hashes. */
    int check_cifar100_sentinels;
    lt_ds_reader read;          /* NULL: dataset known but no reader in this build */
    int n_files;
    lt_ds_file files[LT_DS_MAX_FILES];
    const char *fetch_note;     /* printed when a file cannot be fetched (e.g. ImageNet login) */
    /* Validation split of a NATURAL dataset (EXP/STEP ones use left-over
     * training images and need none of these): val_list names the file in
     * files[] holding the official val list; `read` then also fills
     * src->val in the same pass over the archive it shares with train, and
     * read_val reads it alone. no_val: why a NATURAL dataset has none. */
    const char *val_list;
    lt_ds_val_reader read_val;
    const char *no_val;
} lt_ds_def;

int lt_ds_count(void);
const lt_ds_def *lt_ds_at(int i);
const lt_ds_def *lt_ds_find(const char *name);   /* NULL if unknown */

/* ---- options, state, the pipeline (lt_prepare.c) -------------------------- */
typedef struct {
    const char *data_dir;   /* NULL: $LTBENCH_DATA, else "data" */
    const char *url;        /* mirror base ("http://host/dir/") or, for a one-file
                               dataset, the file's full URL; NULL: registry URLs */
    const char *from_dir;   /* directory holding already-downloaded files; NULL: none */
    int use_system;         /* 1 (default): try files[i].system_path first */
    int fetch;              /* 1 (default): build may download missing files */
    lt_profile profile;     /* default: the dataset's */
    double ir;              /* <= 0: the dataset's default */
    uint32_t seed;          /* selection seed, 0 = LDAM's */
    const char *scale;      /* "ci" | "short" | "full": decode size of JPEG sets (default short) */
    int force;              /* 1: rebuild even if up to date */
    FILE *log;              /* progress lines; NULL: stdout */
    int quiet;              /* 1: no progress lines */
    double progress_s;      /* seconds between the lines of long work (archive reads,
                               hashing); <= 0: 10 */
} lt_ds_opts;

void lt_ds_opts_default(lt_ds_opts *o);
/* The data directory o resolves to (never NULL). */
const char *lt_ds_data_dir(const lt_ds_opts *o);
/* Where a dataset's long work prints its progress (archive reads, hashing):
 * the build's log (stdout by default), each line "<dataset>: ...", every
 * o->progress_s seconds; NULL when quiet. buf holds it. */
const lt_progress *lt_ds_progress(const lt_ds_def *def, const lt_ds_opts *o, lt_progress *buf);

/* What a reader gets: verified local paths of the definition's files. */
struct lt_ds_src {
    const lt_ds_def *def;
    const lt_ds_opts *opts;
    const char *path[LT_DS_MAX_FILES];  /* NULL for an optional file that is absent */
    const char *work_dir;               /* <data>/<name>/work: scratch space (extraction) */
    int side;                           /* decode side in px for JPEG sets (from scale) */
    lt_dataset *val;                    /* non-NULL: a reader of a dataset with a val_list
                                           also fills it (owning) from that list */
};

typedef struct {
    char dir[1024];             /* <data>/<name>/<tag> */
    char tag[64];
    char manifest_sha256[65];   /* sha256 of manifest.json's bytes */
    char index_sha256[65];      /* sha256 of the kept global index list */
    char rank_digest[65];       /* §1.5 digest (EXP/STEP), "" otherwise */
    char inputs_sha256[65];
    long n_train, n_test;
    int n_classes, c, h, w;
    int many, medium, few;
    double ir;                  /* the recipe's IR (NATURAL: max/min of the counts) */
    lt_profile profile;
    long *counts;               /* n_classes per-class train counts (malloc'd) */
    int rebuilt;                /* 1: this call built it; 0: was up to date */
    char val_manifest_sha256[65]; /* sha256 of val_manifest.json; "" if no validation split */
    long n_val;                 /* its images (0 if none) */
} lt_ds_built;
/* Frees out->counts (safe on a zeroed or already-freed struct). */
void lt_ds_built_free(lt_ds_built *b);

/* Makes every required file present and verified (stamp). Order per file: a
 * valid stamp; the system copy; --from DIR; a file already in raw/; download
 * (o->url mirror or files[i].url) with resume. A file is accepted when its
 * sha256 equals files[i].sha256, or when content_sha256 is set and the
 * decompressed stream's sha256 equals it. Unpinned files are accepted and
 * their computed sha256 recorded (said so in the progress line).
 * LT_ECHECKSUM / LT_ENET / LT_EIO naming the file otherwise. */
int lt_ds_fetch(const lt_ds_def *def, const lt_ds_opts *o);

/* fetch (if o->fetch) -> read -> select -> write caches + manifest, then the
 * validation split (val.ltc + val_manifest.json) for datasets that have one.
 * Up to date builds return quickly with out->rebuilt = 0; if their split is
 * missing, damaged (header / size) or made for another manifest, only the
 * split is written. On error nothing new is left in the build directory.
 * out may be NULL. */
int lt_ds_build(const lt_ds_def *def, const lt_ds_opts *o, lt_ds_built *out);

/* Builds if needed (validation split included), then memory-maps train and
 * test caches. */
int lt_ds_open(const lt_ds_def *def, const lt_ds_opts *o, lt_dataset *train, lt_dataset *test,
               lt_ds_built *out);

/* The validation split (see the top of this file). */
typedef struct {
    char manifest_sha256[65];       /* sha256 of val_manifest.json: identifies the split */
    char build_manifest_sha256[65]; /* sha256 of the build's manifest.json it belongs to */
    char index_sha256[65];          /* the selection (positions or list) */
    char origin[256];               /* where the images come from */
    int per_class;                  /* V: images per class the rule asks for (20) */
    long n;
    int n_classes;
    long *counts;                   /* n_classes images per class (malloc'd) */
    int n_short;                    /* classes with fewer than per_class images */
} lt_ds_val_info;

/* Builds the dataset and its validation split when needed (lt_ds_build),
 * checks val.ltc against the sha256 its manifest records (rewriting the split
 * if it differs), and memory-maps it into *val. val may be NULL: then only
 * info is filled (no hashing). info may be NULL. LT_EINVAL naming the
 * dataset and the reason for datasets without a validation split. */
int lt_ds_open_val(const lt_ds_def *def, const lt_ds_opts *o, lt_dataset *val, lt_ds_val_info *info);
/* Frees info->counts (safe on a zeroed or already-freed struct). */
void lt_ds_val_info_free(lt_ds_val_info *info);

/* The build tag for o (e.g. "exp_ir100"), so callers can locate a build. */
int lt_ds_tag(const lt_ds_def *def, const lt_ds_opts *o, char *tag, size_t cap);

/* State for `ltbench datasets`. */
typedef struct {
    int fetched;                /* every required file has a valid stamp */
    int n_present;              /* files with valid stamps */
    long long bytes;            /* total size of the verified files */
    int n_builds;               /* build directories with a usable manifest */
    char tags[8][64];           /* their tags (first 8) */
    char manifest_sha256[8][65];
    long n_train[8];
    long n_val[8];              /* its validation split's images; -1: none or not current */
    int n_corrupt;              /* build directories whose manifest.json is there but unusable
                                 * (not JSON, train.n not an image count, unreadable) */
    char corrupt[4][640];       /* the first ones: "<manifest path>: corrupt (<why>)" */
} lt_ds_state;
int lt_ds_state_get(const lt_ds_def *def, const lt_ds_opts *o, lt_ds_state *st);

#endif
