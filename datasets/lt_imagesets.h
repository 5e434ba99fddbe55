/* lt_imagesets.h — the JPEG-based long-tailed datasets: ImageNet-LT,
 * Places-LT, iNaturalist 2018 and this project's LVIS crop subset.
 *
 * Pieces, one file each:
 *   lt_listfile.c   "relative/path label" split lists (specs/datasets.md §0.1)
 *   lt_jpeg.c       JPEG decode from memory + the resampler (centre crop, box crop)
 *   lt_imagesrc.c   one streaming walk over image archives / directories
 *   lt_imagelist.c  list + image directory or image archive(s) -> lt_dataset
 *   lt_jsonstream.c element-by-element reading of huge COCO-style JSON files
 *   lt_strmap.c     string -> index hash map (path matching, duplicates)
 *   lt_inat.c       iNaturalist 2018 JSON -> split list (classifier-balancing rule, §6.4)
 *   lt_lvis.c       "LVIS-LT-cls v1", this project's crop-classification protocol (§5.5)
 *
 * Every fallible function returns LT_OK or an LT_E* code and sets lt_errmsg()
 * to a message naming the file and the place (line, byte offset, member). */
#ifndef LT_IMAGESETS_H
#define LT_IMAGESETS_H

#include "lt_base.h"
#include "lt_data.h"

#include <stdio.h>

/* ---- string -> long hash map (lt_strmap.c); keys are borrowed, not copied -- */
typedef struct {
    size_t cap, n;
    const char **key;
    long *val;
} lt_strmap;
int lt_strmap_init(lt_strmap *m, size_t expected);
void lt_strmap_free(lt_strmap *m);
/* Inserts key -> val unless key is present; *existing (may be NULL) gets the
 * present value, or -1 when the key was inserted. */
int lt_strmap_put(lt_strmap *m, const char *key, long val, long *existing);
long lt_strmap_get(const lt_strmap *m, const char *key); /* -1 if absent */

/* =========================================================================
 * Split lists (§0.1): "<path><SP><decimal label>\n", LF only, final LF
 * required (a missing one means a truncated file: "a.jpg 12" cut to "a.jpg 1"
 * would still parse), exactly two fields, no duplicate paths, labels 0-based
 * and contiguous (every class 0..max present). Order is kept as in the file.
 * ========================================================================= */
typedef struct {
    char *name;           /* file name used in messages (owned) */
    long n;               /* number of lines = samples */
    char **path;          /* n NUL-terminated paths (point into owned storage) */
    int32_t *label;       /* n labels */
    int n_classes;        /* max label + 1 */
    long *class_count;    /* n_classes samples per class */
    char *store_;         /* owned copy of the text the paths point into */
} lt_listfile;

/* Parses buf[0..len). `name` is used in messages ("name:LINE: ..."). */
int lt_listfile_parse(lt_listfile *lf, const char *name, const char *buf, size_t len);
/* Reads and parses a file; messages use the path's basename. */
int lt_listfile_read(lt_listfile *lf, const char *path);
void lt_listfile_free(lt_listfile *lf);
/* The exact list text ("path label\n" per line) into a malloc'd buffer. */
int lt_listfile_format(const lt_listfile *lf, char **text, size_t *len);
/* Writes the list text atomically (tmp + rename) to path. */
int lt_listfile_write(const lt_listfile *lf, const char *path);
/* Builds a list from arrays (paths copied). Validation as for parsing. */
int lt_listfile_from_arrays(lt_listfile *lf, const char *name, const char *const *paths,
                            const int32_t *labels, long n);
/* OLTR shot groups by the strict rule on this (training) list's counts:
 * many > 100, medium 20..100, few < 20. Any output pointer may be NULL. */
void lt_listfile_shot_groups(const lt_listfile *train, int *many, int *medium, int *few);

/* =========================================================================
 * JPEG decoding and resampling (lt_jpeg.c)
 * The resampler maps a source rectangle onto an out x out grid, separably:
 * along an axis that shrinks it averages the exact covered area (box filter
 * with fractional edge weights); along an axis that grows it interpolates
 * bilinearly (pixel centres at +0.5, clamped to the rectangle). Source
 * pixels outside the "valid" rectangle read as 0 (black padding).
 * Output is planar RGB uint8 (3 x out x out), rounded to nearest.
 * ========================================================================= */

/* Most pixels (width x height) a JPEG may have: 2^28, 16384 x 16384. The
 * largest images of the supported sets (iNaturalist, COCO) are a few
 * thousand pixels a side, and a header can claim up to 65535 x 65535. */
#define LT_JPEG_MAX_PIXELS ((size_t)1 << 28)

/* Decodes a JPEG held in memory to interleaved 8-bit RGB (grayscale is
 * replicated, CMYK/YCCK converted with the Adobe inverted-CMYK convention).
 * *rgb is malloc'd (w*h*3 bytes). `name` names the image in messages.
 * Corrupt or truncated data -> LT_EDATA "name: corrupt JPEG: <libjpeg msg>";
 * a header declaring more than LT_JPEG_MAX_PIXELS pixels -> LT_EDATA, before
 * the decoder (or this function) allocates anything for the image. */
int lt_jpeg_decode(const char *name, const uint8_t *buf, size_t len, uint8_t **rgb, int *w,
                   int *h);

/* Short-side resize to `out` followed by the centre out x out crop, done in
 * one resampling step: the centred min(w,h) square of the source (offset
 * (max-min)/2, possibly half a pixel) is resampled to out x out. */
int lt_resize_center_crop(const uint8_t *rgb, int w, int h, int out, uint8_t *planar);

/* General form: resample the source rectangle [rx, rx+rw) x [ry, ry+rh)
 * (may extend past the image) to out x out; pixels outside
 * [vx0,vx1) x [vy0,vy1) ∩ image are zero. */
int lt_resample_rect(const uint8_t *rgb, int w, int h, double rx, double ry, double rw,
                     double rh, int vx0, int vy0, int vx1, int vy1, int out, uint8_t *planar);

/* Decode + lt_resize_center_crop into planar[3*out*out]. */
int lt_jpeg_to_planar(const char *name, const uint8_t *buf, size_t len, int out,
                      uint8_t *planar);

/* =========================================================================
 * Image-list datasets (lt_imagelist.c): ImageNet-LT, Places-LT, iNat 2018.
 * Labels always come from the list (the Places-LT label-order trap, §4.4).
 * ========================================================================= */
typedef enum {
    /* archive member / file path ends with the list path (at a '/' boundary,
     * so a leading "places365_standard/" or "./" is tolerated) */
    LT_PATHMAP_NONE = 0,
    /* ImageNet-LT (§3.3): match by basename (n01440764_10026.JPEG inside the
     * per-class inner tars of ILSVRC2012_img_train.tar, ILSVRC2012_val_*.JPEG
     * in the flat val tar); list basenames must be unique */
    LT_PATHMAP_BASENAME = 1,
    /* Places-LT (§4.3): also accept the official 256-px archive layout:
     * train/<cls>/<f> -> data_256/<cls[0]>/<cls with '-' -> '/'>/<f>,
     * val/<cls>/<f> -> val_256/<f> */
    LT_PATHMAP_PLACES365 = 2
} lt_pathmap;

/* Progress of a scan (an lt_progress; a 150 GB ImageNet tar takes the
 * better part of an hour): every interval_s seconds of walking a source, a line
 *   "<label>: reading <source>: 23% (31.7 GiB of 137.7 GiB), 310000 files, 240000 kept, 90.6 MiB/s, ETA 19:04"
 * (a directory: no percentage, no estimate; its bytes are those of the
 * files read; sizes and times as lt_fmt_bytes / lt_fmt_eta write them), and
 * when a source is done
 *   "<label>: read <source>: 137.7 GiB, 1281167 files, 115846 kept, in 25:18".
 * An archive's bytes are those read from the file (compressed), so the
 * percentage is of the file's size. */

/* The alternative path for list path p under `map` into out[cap]
 * (for NONE: p itself; BASENAME: the basename). LT_EINVAL if it does not fit
 * or p is not of the mapped form (Places: must start with train/ or val/). */
int lt_pathmap_apply(lt_pathmap map, const char *p, char *out, size_t cap);

typedef struct {
    const lt_listfile *list;
    lt_pathmap map;
    int size;                      /* stored image size: size x size x 3 */
    /* exactly one of the two sources: */
    const char *root;              /* directory holding the images (list paths
                                      or mapped paths relative to it), or NULL */
    const char *const *archives;   /* archive files (tar, tar.gz, zip ...; inner
                                      "*.tar" members are descended into once) */
    int n_archives;
    const lt_progress *progress;   /* NULL: none (lt_imagesrc_scan) */
} lt_imagelist_src;

/* The image-source walker shared by the list datasets and LVIS. Sources are
 * archives (anything libarchive reads; an inner member ending in ".tar" is
 * opened and walked once more, its members named "<inner.tar>/<name>") or
 * directories (walked recursively, members named relative to the directory).
 * want() is called serially for every regular file, in source order, and
 * returns a key >= 0 to have the file read, -1 to skip it, or -2 to abort
 * (with lt_err set). A wanted file larger than LT_SRC_MAX_FILE_BYTES is
 * refused (LT_EDATA naming source and member) before its buffer is
 * allocated, whatever size an archive header declares or omits. Wanted
 * files are read whole and handed to work() in
 * batches run on worker threads (pthreads joined per batch, so a later fork
 * is safe): work() must be thread-safe; `where` is
 * "<source>:<member>" for messages. The first failing work() (in file order)
 * decides the returned status and message. */
#define LT_SRC_MAX_FILE_BYTES ((size_t)64 << 20)   /* 64 MiB: image files are at most a few MB */
typedef long (*lt_src_want_fn)(void *ctx, const char *member);
typedef int (*lt_src_work_fn)(void *ctx, long key, const char *where, const uint8_t *data,
                              size_t len);
/* progress: NULL for none. */
int lt_imagesrc_scan(const char *const *sources, int n_sources, lt_src_want_fn want,
                     lt_src_work_fn work, void *ctx, const lt_progress *progress);

/* Builds an owning dataset (n = list lines, in list order; c = 3, h = w = size;
 * n_classes from the list). Images the list names but the source lacks ->
 * LT_EDATA "<list>: N of M images missing from <source>: p1, p2, p3 ...".
 * A corrupt image -> LT_EDATA naming the archive and member. */
int lt_imagelist_build(lt_dataset *d, const lt_imagelist_src *src);
/* Several lists over the same sources in ONE pass over them (iNaturalist's
 * train and val images share train_val2018.tar.gz, 128 GB): out[j] is what
 * lt_imagelist_build would make from lists[j] (src->list is ignored). An
 * image named by two lists is refused as ambiguous. */
int lt_imagelist_build_many(lt_dataset *out, const lt_listfile *const *lists, int n_lists,
                            const lt_imagelist_src *src);

/* =========================================================================
 * Streaming over huge COCO-style JSON (lt_jsonstream.c)
 * LVIS train JSON is ~1 GB with polygons; parsing it whole with cJSON would
 * need many GB. These helpers find a top-level key's array and hand each
 * element to cJSON separately. Errors carry "<name>: byte B (line L)".
 * ========================================================================= */
typedef struct cJSON cJSON;
/* Called per element of the array; return LT_OK to go on. `index` counts from 0. */
typedef int (*lt_json_elem_fn)(void *ctx, long index, const cJSON *elem);
/* Finds top-level key `key` (must be an array; LT_EDATA if missing or not an
 * array) in the JSON object text buf[0..len) and calls fn per element. */
int lt_json_each(const char *name, const char *buf, size_t len, const char *key,
                 lt_json_elem_fn fn, void *ctx);
/* Maps a file read-only (MAP_PRIVATE); release with lt_json_unmap. */
int lt_json_map(const char *path, const char **buf, size_t *len);
void lt_json_unmap(const char *buf, size_t len);
/* "file: byte B (line L, column C)" for the position pos-buf. */
void lt_json_where(const char *name, const char *buf, const char *pos, char *out, size_t cap);

/* =========================================================================
 * iNaturalist 2018 (lt_inat.c): the classifier-balancing gen_lists.py rule
 * (§6.4): for i in JSON order: assert images[i].id == annotations[i].id;
 * line = images[i].file_name + " " + annotations[i].category_id.
 * ========================================================================= */
int lt_inat_list_from_json_buf(lt_listfile *lf, const char *name, const char *buf, size_t len);
int lt_inat_list_from_json(lt_listfile *lf, const char *json_path);
/* Convenience: JSON file -> list text file (e.g. iNaturalist18_train.txt). */
int lt_inat_write_list(const char *json_path, const char *txt_path);

/* =========================================================================
 * LVIS-LT-cls v1 (lt_lvis.c) — THIS PROJECT'S protocol, not a published one
 * (specs/datasets.md §5.5).
 * ========================================================================= */
#define LT_LVIS_PROTOCOL "LVIS-LT-cls v1 (ltbench protocol, specs/datasets.md 5.5)"
#define LT_LVIS_HASH_PREFIX "lvis-lt-cls-v1|"

typedef struct {
    int crop_size;      /* 112 (or 224) */
    int min_box;        /* 16: drop boxes with rounded w or h below this */
    int train_cap;      /* 1000 instances per class at most */
    int test_cap;       /* 20 */
} lt_lvis_params;
void lt_lvis_params_default(lt_lvis_params *p);

typedef enum { LT_LVIS_TRAIN = 0, LT_LVIS_VAL = 1 } lt_lvis_split;

/* One selected instance. Geometry in source-image pixels: (bx0,by0)-(bx1,by1)
 * rounded box; (cx0,cy0)-(cx1,cy1) expanded + clipped box (the valid pixels);
 * (sx,sy,side) the zero-padded square that is resized to crop_size. */
typedef struct {
    int64_t ann_id, image_id;
    int32_t label;       /* category_id - 1 */
    int bx0, by0, bx1, by1;
    int cx0, cy0, cx1, cy1;
    int sx, sy, side;
    int img;             /* index into lt_lvis_subset.image_file */
} lt_lvis_item;

typedef struct {
    int n_classes;          /* number of categories (1203 for v1) */
    char *group;            /* n_classes chars 'r'/'c'/'f' (train JSON frequency) */
    long n;
    lt_lvis_item *item;     /* sorted by label, then by hash order */
    long *class_count;      /* n_classes kept instances per class */
    long n_images;          /* images holding at least one kept item */
    char **image_file;      /* basename of each image's coco_url */
    int *image_w, *image_h; /* the JSON's width / height (checked on decode) */
    long n_candidates;      /* annotations that passed the filters (before the cap) */
    long dropped_listed;    /* removed by the TFDS degenerate-box list */
    long dropped_small;     /* removed by min_box */
    long dropped_outside;   /* expanded box has no pixel inside the image */
    long dropped_cap;       /* removed by the per-class cap */
    char sha256[65];        /* sha256 of the "ann_id label\n" list text */
} lt_lvis_subset;

/* Categories from the TRAIN JSON: ids must be 1..K contiguous, frequency
 * in {r,c,f}. Fills n_classes and group (caller frees group). */
int lt_lvis_categories(const char *name, const char *buf, size_t len, int *n_classes,
                       char **group);
/* Selects the split's instances per §5.5 steps 3, 5, 6 (cap = train_cap or
 * test_cap). group/n_classes come from lt_lvis_categories on the train JSON. */
int lt_lvis_select_buf(lt_lvis_subset *s, const char *name, const char *buf, size_t len,
                       lt_lvis_split split, const lt_lvis_params *p, int n_classes,
                       const char *group);
int lt_lvis_select(lt_lvis_subset *s, const char *json_path, lt_lvis_split split,
                   const lt_lvis_params *p, int n_classes, const char *group);
void lt_lvis_subset_free(lt_lvis_subset *s);
/* The crop geometry of §5.5 step 4 for one COCO box in an image of W x H:
 * fills the b*, c*, s* fields of it. LT_EDATA if the box is empty after clipping. */
int lt_lvis_geometry(double x, double y, double bw, double bh, int W, int H, lt_lvis_item *it);
/* The hash key of step 5: sha256("lvis-lt-cls-v1|<ann_id>") as hex. */
void lt_lvis_hash(int64_t ann_id, char hex[65]);
/* Text "ann_id label\n" per item, and a JSON report with per-class counts,
 * groups, the parameters and the sha256 (§5.5 step 8). Both malloc'd. */
int lt_lvis_list_text(const lt_lvis_subset *s, char **text, size_t *len);
int lt_lvis_report_json(const lt_lvis_subset *train, const lt_lvis_subset *test,
                        const lt_lvis_params *p, char **json);
/* Crops every item from the COCO image archives (train2017.zip, val2017.zip,
 * or directories of images; images found by basename) into an owning dataset
 * (c = 3, h = w = crop_size, labels = item labels, subset order). */
int lt_lvis_build(lt_dataset *d, const lt_lvis_subset *s, const lt_lvis_params *p,
                  const char *const *archives, int n_archives);
/* Train and test crops in ONE pass over the image archives (train2017.zip is
 * 19 GB): out[j] is what lt_lvis_build would make from subsets[j]; an image
 * used by several subsets is decoded once. progress: NULL for none. */
int lt_lvis_build_many(lt_dataset *out, const lt_lvis_subset *const *subsets, int n_sets,
                       const lt_lvis_params *p, const char *const *archives, int n_archives,
                       const lt_progress *progress);

#endif
