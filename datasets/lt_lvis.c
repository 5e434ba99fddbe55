/* lt_lvis.c — "LVIS-LT-cls v1": THIS PROJECT'S long-tailed crop
 * classification protocol over LVIS v1 (specs/datasets.md §5.5). It is not
 * a published benchmark; everything it produces says so (LT_LVIS_PROTOCOL).
 *
 * The rules, in the order they are applied to one split's JSON:
 *  1. pools: train crops from lvis_v1_train.json, test crops from
 *     lvis_v1_val.json; label = category_id - 1; group r/c/f = the category's
 *     `frequency` in the TRAIN JSON (not recomputed from counts).
 *  2. drop the 17 annotation ids TFDS lists as degenerate (per split);
 *  3. round the box outwards to integers: x0 = floor(x), y0 = floor(y),
 *     x1 = ceil(x+w), y1 = ceil(y+h); drop it if x1-x0 < min_box or
 *     y1-y0 < min_box (16 px);
 *  4. crop geometry (the MSCOCO-GLT rule of §5.4 on the rounded box): per
 *     axis, a side s < 100 px grows by 50 px at both ends, otherwise by
 *     round(s/5) (20 %; s/5 never ends in .5, so rounding is unambiguous);
 *     clip to the image; pad the shorter side to a square with zeros,
 *     floor((big-small)/2) before and the rest after; resize the square to
 *     crop_size with the fixed resampler of lt_jpeg.c. Pixels of the square
 *     outside the clipped box are zero even where the image has content
 *     (MSCOCO-GLT crops first, then pads);
 *  5. per class keep at most cap instances (1000 train, 20 test) in
 *     ascending sha256("lvis-lt-cls-v1|" + decimal annotation id) order (no
 *     RNG; the hex order equals the byte order of the digest);
 *  6. the subset is listed class by class (label ascending), each class in
 *     that hash order; its identity is the sha256 of "ann_id label\n" lines. */
#include "lt_imagesets.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_ckpt.h"

void lt_lvis_params_default(lt_lvis_params *p)
{
    p->crop_size = 112;
    p->min_box = 16;
    p->train_cap = 1000;
    p->test_cap = 20;
}

/* TFDS lvis: annotations with degenerate boxes it drops (§5.2). */
static const int64_t DROP_TRAIN[] = {662101, 81217,  462924, 227817, 29381,  601484, 412185,
                                     504667, 572573, 91937,  239022, 181534, 101685};
static const int64_t DROP_VAL[] = {36668, 57541, 33126, 10932};

static int listed(lt_lvis_split split, int64_t id)
{
    const int64_t *l = split == LT_LVIS_TRAIN ? DROP_TRAIN : DROP_VAL;
    int n = split == LT_LVIS_TRAIN ? (int)(sizeof DROP_TRAIN / sizeof *DROP_TRAIN)
                                   : (int)(sizeof DROP_VAL / sizeof *DROP_VAL);
    for (int i = 0; i < n; i++)
        if (l[i] == id)
            return 1;
    return 0;
}

void lt_lvis_hash(int64_t ann_id, char hex[65])
{
    char s[64];
    int n = snprintf(s, sizeof s, LT_LVIS_HASH_PREFIX "%lld", (long long)ann_id);
    lt_sha256_buf(s, (size_t)n, hex);
}

static void hash_raw(int64_t ann_id, uint8_t out[32])
{
    char s[64];
    int n = snprintf(s, sizeof s, LT_LVIS_HASH_PREFIX "%lld", (long long)ann_id);
    lt_sha256 h;
    lt_sha256_init(&h);
    lt_sha256_update(&h, s, (size_t)n);
    lt_sha256_final(&h, out);
}

static int grow(int side)
{
    return side < 100 ? 50 : (side + 2) / 5;
}

int lt_lvis_geometry(double x, double y, double bw, double bh, int W, int H, lt_lvis_item *it)
{
    it->bx0 = (int)floor(x);
    it->by0 = (int)floor(y);
    it->bx1 = (int)ceil(x + bw);
    it->by1 = (int)ceil(y + bh);
    int w = it->bx1 - it->bx0, h = it->by1 - it->by0;
    int ex = grow(w), ey = grow(h);
    it->cx0 = it->bx0 - ex < 0 ? 0 : it->bx0 - ex;
    it->cy0 = it->by0 - ey < 0 ? 0 : it->by0 - ey;
    it->cx1 = it->bx1 + ex > W ? W : it->bx1 + ex;
    it->cy1 = it->by1 + ey > H ? H : it->by1 + ey;
    int cw = it->cx1 - it->cx0, ch = it->cy1 - it->cy0;
    if (w <= 0 || h <= 0 || cw <= 0 || ch <= 0)
        return lt_err(LT_EDATA, "box [%g, %g, %g, %g] has no pixel inside the %dx%d image", x, y,
                      bw, bh, W, H);
    if (cw >= ch) {
        it->side = cw;
        it->sx = it->cx0;
        it->sy = it->cy0 - (cw - ch) / 2;
    } else {
        it->side = ch;
        it->sy = it->cy0;
        it->sx = it->cx0 - (ch - cw) / 2;
    }
    return LT_OK;
}

/* ---- categories ----------------------------------------------------------- */

typedef struct {
    const char *name;
    long n;
    int max_id;
    int *ids;
    char *freq;
} cats_t;

static int on_cat(void *ctx, long idx, const cJSON *o)
{
    cats_t *c = ctx;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(o, "frequency");
    if (!id || !fr)
        return lt_err(LT_EDATA, "%s: categories[%ld]: missing required key '%s'", c->name, idx,
                      !id ? "id" : "frequency");
    if (!cJSON_IsNumber(id) || id->valuedouble != floor(id->valuedouble) ||
        id->valuedouble < 1 || id->valuedouble > 1000000)
        return lt_err(LT_EDATA, "%s: categories[%ld]: 'id' must be a positive integer", c->name,
                      idx);
    if (!cJSON_IsString(fr) || strlen(fr->valuestring) != 1 ||
        !strchr("rcf", fr->valuestring[0]))
        return lt_err(LT_EDATA, "%s: categories[%ld]: 'frequency' must be \"r\", \"c\" or \"f\"",
                      c->name, idx);
    int *ni = realloc(c->ids, (size_t)(c->n + 1) * sizeof *ni);
    if (ni)
        c->ids = ni;
    char *nf = realloc(c->freq, (size_t)(c->n + 1));
    if (nf)
        c->freq = nf;
    if (!ni || !nf)
        return lt_err(LT_ENOMEM, "%s: out of memory", c->name);
    c->ids[c->n] = (int)id->valuedouble;
    c->freq[c->n] = fr->valuestring[0];
    if (c->ids[c->n] > c->max_id)
        c->max_id = c->ids[c->n];
    c->n++;
    return LT_OK;
}

int lt_lvis_categories(const char *name, const char *buf, size_t len, int *n_classes,
                       char **group)
{
    *n_classes = 0;
    *group = NULL;
    cats_t c;
    memset(&c, 0, sizeof c);
    c.name = name;
    int rc = lt_json_each(name, buf, len, "categories", on_cat, &c);
    if (!rc && c.n == 0)
        rc = lt_err(LT_EDATA, "%s: 'categories' is empty", name);
    if (!rc && c.max_id != c.n)
        rc = lt_err(LT_EDATA, "%s: category ids must be 1..%ld without gaps (largest id %d)",
                    name, c.n, c.max_id);
    char *g = NULL;
    if (!rc && !(g = calloc((size_t)c.n + 1, 1)))
        rc = lt_err(LT_ENOMEM, "%s: out of memory", name);
    for (long i = 0; !rc && i < c.n; i++) {
        if (g[c.ids[i] - 1])
            rc = lt_err(LT_EDATA, "%s: category id %d appears twice", name, c.ids[i]);
        g[c.ids[i] - 1] = c.freq[i];
    }
    free(c.ids);
    free(c.freq);
    if (rc) {
        free(g);
        return rc;
    }
    *n_classes = (int)c.n;
    *group = g;
    return LT_OK;
}

/* ---- selection ------------------------------------------------------------ */

typedef struct {
    int64_t id;
    int w, h;
    char *file;
    long used; /* index in the output image table, -1 if none */
} img_t;

typedef struct {
    lt_lvis_item it;
    uint8_t hash[32];
} cand_t;

typedef struct {
    const char *name;
    lt_lvis_split split;
    const lt_lvis_params *p;
    int n_classes;
    img_t *img;
    long n_img, cap_img;
    cand_t *cand;
    long n_cand, cap_cand;
    lt_lvis_subset *s;
} sel_t;

static int num_field(const char *name, const char *arr, long idx, const cJSON *o,
                     const char *key, const cJSON **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        return lt_err(LT_EDATA, "%s: %s[%ld]: missing required key '%s'", name, arr, idx, key);
    *out = v;
    return LT_OK;
}

static int int_field(const char *name, const char *arr, long idx, const cJSON *o,
                     const char *key, double lo, double hi, int64_t *out)
{
    const cJSON *v = NULL;
    LT_TRY(num_field(name, arr, idx, o, key, &v));
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return lt_err(LT_EDATA, "%s: %s[%ld]: '%s' must be an integer in [%.0f, %.0f]", name, arr,
                      idx, key, lo, hi);
    *out = (int64_t)v->valuedouble;
    return LT_OK;
}

static int on_image(void *ctx, long idx, const cJSON *o)
{
    sel_t *t = ctx;
    if (t->n_img == t->cap_img) {
        long nc = t->cap_img ? t->cap_img * 2 : 1024;
        img_t *ni = realloc(t->img, (size_t)nc * sizeof *ni);
        if (!ni)
            return lt_err(LT_ENOMEM, "%s: out of memory", t->name);
        t->img = ni;
        t->cap_img = nc;
    }
    int64_t id, w, h;
    LT_TRY(int_field(t->name, "images", idx, o, "id", 0, 9e15, &id));
    LT_TRY(int_field(t->name, "images", idx, o, "width", 1, 65535, &w));
    LT_TRY(int_field(t->name, "images", idx, o, "height", 1, 65535, &h));
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "coco_url");
    if (!u)
        return lt_err(LT_EDATA, "%s: images[%ld]: missing required key 'coco_url'", t->name, idx);
    if (!cJSON_IsString(u))
        return lt_err(LT_EDATA, "%s: images[%ld]: 'coco_url' must be a string", t->name, idx);
    /* Images are COCO-2017 files, found by the basename of coco_url (§5.1). */
    const char *b = strrchr(u->valuestring, '/');
    b = b ? b + 1 : u->valuestring;
    if (!*b)
        return lt_err(LT_EDATA, "%s: images[%ld]: 'coco_url' has no file name", t->name, idx);
    img_t *im = &t->img[t->n_img];
    if (!(im->file = strdup(b)))
        return lt_err(LT_ENOMEM, "%s: out of memory", t->name);
    im->id = id;
    im->w = (int)w;
    im->h = (int)h;
    im->used = -1;
    t->n_img++;
    return LT_OK;
}

static int cmp_img(const void *a, const void *b)
{
    int64_t x = ((const img_t *)a)->id, y = ((const img_t *)b)->id;
    return (x > y) - (x < y);
}

static img_t *find_img(sel_t *t, int64_t id)
{
    long lo = 0, hi = t->n_img - 1;
    while (lo <= hi) {
        long m = (lo + hi) / 2;
        if (t->img[m].id == id)
            return &t->img[m];
        if (t->img[m].id < id)
            lo = m + 1;
        else
            hi = m - 1;
    }
    return NULL;
}

static int on_ann(void *ctx, long idx, const cJSON *o)
{
    sel_t *t = ctx;
    int64_t id, image_id, cat;
    LT_TRY(int_field(t->name, "annotations", idx, o, "id", 0, 9e15, &id));
    LT_TRY(int_field(t->name, "annotations", idx, o, "image_id", 0, 9e15, &image_id));
    LT_TRY(int_field(t->name, "annotations", idx, o, "category_id", 1, t->n_classes, &cat));
    const cJSON *bb = NULL;
    LT_TRY(num_field(t->name, "annotations", idx, o, "bbox", &bb));
    double box[4];
    if (!cJSON_IsArray(bb) || cJSON_GetArraySize(bb) != 4)
        return lt_err(LT_EDATA, "%s: annotations[%ld]: 'bbox' must be [x, y, w, h]", t->name,
                      idx);
    for (int k = 0; k < 4; k++) {
        const cJSON *v = cJSON_GetArrayItem(bb, k);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 1e6)
            return lt_err(LT_EDATA, "%s: annotations[%ld]: 'bbox' must hold 4 numbers", t->name,
                          idx);
        box[k] = v->valuedouble;
    }
    img_t *im = find_img(t, image_id);
    if (!im)
        return lt_err(LT_EDATA, "%s: annotations[%ld] (id %lld): image_id %lld is not in 'images'",
                      t->name, idx, (long long)id, (long long)image_id);
    if (listed(t->split, id)) {
        t->s->dropped_listed++;
        return LT_OK;
    }
    cand_t c;
    memset(&c, 0, sizeof c);
    int bx0 = (int)floor(box[0]), by0 = (int)floor(box[1]);
    int bx1 = (int)ceil(box[0] + box[2]), by1 = (int)ceil(box[1] + box[3]);
    if (bx1 - bx0 < t->p->min_box || by1 - by0 < t->p->min_box) {
        t->s->dropped_small++;
        return LT_OK;
    }
    if (lt_lvis_geometry(box[0], box[1], box[2], box[3], im->w, im->h, &c.it) != LT_OK) {
        t->s->dropped_outside++;
        return LT_OK;
    }
    c.it.ann_id = id;
    c.it.image_id = image_id;
    c.it.label = (int32_t)(cat - 1);
    c.it.img = (int)(im - t->img); /* provisional: position in the sorted image table */
    hash_raw(id, c.hash);
    if (t->n_cand == t->cap_cand) {
        long nc = t->cap_cand ? t->cap_cand * 2 : 4096;
        cand_t *n2 = realloc(t->cand, (size_t)nc * sizeof *n2);
        if (!n2)
            return lt_err(LT_ENOMEM, "%s: out of memory", t->name);
        t->cand = n2;
        t->cap_cand = nc;
    }
    t->cand[t->n_cand++] = c;
    return LT_OK;
}

static int cmp_cand(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->it.label != y->it.label)
        return x->it.label < y->it.label ? -1 : 1;
    int c = memcmp(x->hash, y->hash, 32);
    if (c)
        return c;
    return (x->it.ann_id > y->it.ann_id) - (x->it.ann_id < y->it.ann_id);
}

void lt_lvis_subset_free(lt_lvis_subset *s)
{
    if (!s)
        return;
    for (long i = 0; i < s->n_images; i++)
        free(s->image_file[i]);
    free(s->image_file);
    free(s->image_w);
    free(s->image_h);
    free(s->item);
    free(s->class_count);
    free(s->group);
    memset(s, 0, sizeof *s);
}

int lt_lvis_list_text(const lt_lvis_subset *s, char **text, size_t *len)
{
    char *t = malloc((size_t)s->n * 32 + 1);
    if (!t)
        return lt_err(LT_ENOMEM, "LVIS subset: out of memory");
    size_t k = 0;
    for (long i = 0; i < s->n; i++)
        k += (size_t)sprintf(t + k, "%lld %d\n", (long long)s->item[i].ann_id,
                             (int)s->item[i].label);
    t[k] = 0;
    *text = t;
    *len = k;
    return LT_OK;
}

int lt_lvis_select_buf(lt_lvis_subset *s, const char *name, const char *buf, size_t len,
                       lt_lvis_split split, const lt_lvis_params *p, int n_classes,
                       const char *group)
{
    memset(s, 0, sizeof *s);
    if (n_classes <= 0 || !group || !p || p->min_box < 1 || p->crop_size < 1)
        return lt_err(LT_EINVAL, "%s: LVIS selection needs categories and parameters", name);
    sel_t t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.split = split;
    t.p = p;
    t.n_classes = n_classes;
    t.s = s;
    int rc = lt_json_each(name, buf, len, "images", on_image, &t);
    /* qsort's array must not be NULL even for 0 elements, and t.img is NULL
     * when 'images' is empty (found by tests/fuzz); likewise t.cand below. */
    if (!rc && t.n_img > 1) {
        qsort(t.img, (size_t)t.n_img, sizeof *t.img, cmp_img);
        for (long i = 1; i < t.n_img && !rc; i++)
            if (t.img[i].id == t.img[i - 1].id)
                rc = lt_err(LT_EDATA, "%s: image id %lld appears twice in 'images'", name,
                            (long long)t.img[i].id);
    }
    if (!rc)
        rc = lt_json_each(name, buf, len, "annotations", on_ann, &t);
    int cap = split == LT_LVIS_TRAIN ? p->train_cap : p->test_cap;
    if (!rc) {
        s->n_classes = n_classes;
        s->n_candidates = t.n_cand;
        s->class_count = calloc((size_t)n_classes, sizeof *s->class_count);
        s->group = malloc((size_t)n_classes + 1);
        s->item = malloc((size_t)(t.n_cand ? t.n_cand : 1) * sizeof *s->item);
        if (!s->class_count || !s->group || !s->item)
            rc = lt_err(LT_ENOMEM, "%s: out of memory", name);
    }
    if (!rc) {
        memcpy(s->group, group, (size_t)n_classes);
        s->group[n_classes] = 0;
        if (t.n_cand > 1)
            qsort(t.cand, (size_t)t.n_cand, sizeof *t.cand, cmp_cand);
        for (long i = 0; i < t.n_cand; i++) {
            int y = t.cand[i].it.label;
            if (cap > 0 && s->class_count[y] >= cap) {
                s->dropped_cap++;
                continue;
            }
            s->class_count[y]++;
            s->item[s->n++] = t.cand[i].it;
        }
        /* The image table holds the kept items' images, in first-use order. */
        long used = 0;
        for (long i = 0; i < s->n; i++)
            if (t.img[s->item[i].img].used < 0)
                t.img[s->item[i].img].used = used++;
        s->image_file = calloc((size_t)(used ? used : 1), sizeof *s->image_file);
        s->image_w = malloc((size_t)(used ? used : 1) * sizeof *s->image_w);
        s->image_h = malloc((size_t)(used ? used : 1) * sizeof *s->image_h);
        if (!s->image_file || !s->image_w || !s->image_h)
            rc = lt_err(LT_ENOMEM, "%s: out of memory", name);
        for (long i = 0; !rc && i < t.n_img; i++)
            if (t.img[i].used >= 0) {
                long u = t.img[i].used;
                s->image_file[u] = t.img[i].file;
                t.img[i].file = NULL;
                s->image_w[u] = t.img[i].w;
                s->image_h[u] = t.img[i].h;
            }
        if (!rc) {
            s->n_images = used;
            for (long i = 0; i < s->n; i++)
                s->item[i].img = (int)t.img[s->item[i].img].used;
            char *txt;
            size_t tl;
            rc = lt_lvis_list_text(s, &txt, &tl);
            if (!rc) {
                lt_sha256_buf(txt, tl, s->sha256);
                free(txt);
            }
        }
    }
    for (long i = 0; i < t.n_img; i++)
        free(t.img[i].file);
    free(t.img);
    free(t.cand);
    if (rc) {
        /* image_file entries may be partly moved; free what the subset holds. */
        if (!s->n_images && s->image_file) {
            free(s->image_file);
            s->image_file = NULL;
        }
        lt_lvis_subset_free(s);
    }
    return rc;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int lt_lvis_select(lt_lvis_subset *s, const char *json_path, lt_lvis_split split,
                   const lt_lvis_params *p, int n_classes, const char *group)
{
    memset(s, 0, sizeof *s);
    const char *buf;
    size_t len;
    LT_TRY(lt_json_map(json_path, &buf, &len));
    int rc = lt_lvis_select_buf(s, base_name(json_path), buf, len, split, p, n_classes, group);
    lt_json_unmap(buf, len);
    return rc;
}

/* ---- report (§5.5 step 8) -------------------------------------------------- */

static cJSON *split_json(const lt_lvis_subset *s, int is_test)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)s->n);
    cJSON_AddStringToObject(o, "list_sha256", s->sha256);
    cJSON_AddStringToObject(o, "list_format", "\"<annotation_id> <label>\\n\" per item, label "
                                              "ascending, sha256 order within a class");
    cJSON_AddNumberToObject(o, "images", (double)s->n_images);
    cJSON_AddNumberToObject(o, "candidates", (double)s->n_candidates);
    cJSON_AddNumberToObject(o, "dropped_tfds_listed", (double)s->dropped_listed);
    cJSON_AddNumberToObject(o, "dropped_small", (double)s->dropped_small);
    cJSON_AddNumberToObject(o, "dropped_outside_image", (double)s->dropped_outside);
    cJSON_AddNumberToObject(o, "dropped_cap", (double)s->dropped_cap);
    cJSON *cc = cJSON_AddArrayToObject(o, "class_count");
    long empty = 0;
    for (int c = 0; c < s->n_classes; c++) {
        cJSON_AddItemToArray(cc, cJSON_CreateNumber((double)s->class_count[c]));
        empty += s->class_count[c] == 0;
    }
    cJSON_AddNumberToObject(o, is_test ? "classes_without_test_instances_excluded"
                                       : "classes_without_train_instances",
                            (double)empty);
    return o;
}

int lt_lvis_report_json(const lt_lvis_subset *train, const lt_lvis_subset *test,
                        const lt_lvis_params *p, char **json)
{
    *json = NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return lt_err(LT_ENOMEM, "LVIS report: out of memory");
    cJSON_AddStringToObject(o, "protocol", LT_LVIS_PROTOCOL);
    cJSON_AddStringToObject(o, "note", "harness-defined protocol, not a published benchmark");
    cJSON *pp = cJSON_AddObjectToObject(o, "params");
    cJSON_AddNumberToObject(pp, "crop_size", p->crop_size);
    cJSON_AddNumberToObject(pp, "min_box", p->min_box);
    cJSON_AddNumberToObject(pp, "train_cap", p->train_cap);
    cJSON_AddNumberToObject(pp, "test_cap", p->test_cap);
    cJSON_AddStringToObject(pp, "hash_key", "sha256(\"" LT_LVIS_HASH_PREFIX "\" + annotation_id)");
    cJSON_AddStringToObject(pp, "crop_rule",
                            "box rounded outwards; per axis +50 px each side if < 100 px else "
                            "+round(side/5); clip; zero-pad to square (floor half before); "
                            "area-average down / bilinear up");
    const lt_lvis_subset *any = train ? train : test;
    if (any && any->group) {
        cJSON_AddStringToObject(o, "group", any->group);
        int g[3] = {0, 0, 0};
        for (int c = 0; c < any->n_classes; c++)
            g[any->group[c] == 'r' ? 0 : any->group[c] == 'c' ? 1 : 2]++;
        cJSON *gc = cJSON_AddObjectToObject(o, "group_sizes");
        cJSON_AddNumberToObject(gc, "r", g[0]);
        cJSON_AddNumberToObject(gc, "c", g[1]);
        cJSON_AddNumberToObject(gc, "f", g[2]);
        cJSON_AddNumberToObject(o, "n_classes", any->n_classes);
    }
    if (train) {
        cJSON_AddItemToObject(o, "train", split_json(train, 0));
        int m = 0, md = 0, f = 0;
        for (int c = 0; c < train->n_classes; c++) {
            long k = train->class_count[c];
            if (k > 100) m++;
            else if (k < 20) f++;
            else md++;
        }
        cJSON *sg = cJSON_AddObjectToObject(o, "shot_groups_from_crop_train_counts");
        cJSON_AddNumberToObject(sg, "many", m);
        cJSON_AddNumberToObject(sg, "medium", md);
        cJSON_AddNumberToObject(sg, "few", f);
    }
    if (test)
        cJSON_AddItemToObject(o, "test", split_json(test, 1));
    *json = cJSON_Print(o);
    cJSON_Delete(o);
    if (!*json)
        return lt_err(LT_ENOMEM, "LVIS report: out of memory");
    return LT_OK;
}

/* ---- cropping from the COCO images ---------------------------------------- */

/* One walk over the image sources serves several subsets (train and test):
 * each file is decoded once and every item of every subset that uses it is
 * cropped from it. Union image u's items are ref[first[u] .. first[u+1]). */
typedef struct {
    int set;
    long item;
} ref_t;

typedef struct {
    const lt_lvis_subset *const *s;
    int n_sets;
    const lt_lvis_params *p;
    lt_dataset *out;
    lt_strmap files;
    const char **file;   /* union image u's basename (borrowed from a subset) */
    long n_files;
    unsigned char *found;
    long *first;
    ref_t *ref;
} crop_t;

static long crop_want(void *ctx, const char *member)
{
    crop_t *c = ctx;
    long u = lt_strmap_get(&c->files, base_name(member));
    if (u < 0)
        return -1;
    if (c->found[u]) {
        lt_err(LT_EDATA, "LVIS: image %s found twice (second: %s)", c->file[u], member);
        return -2;
    }
    c->found[u] = 1;
    return u;
}

static int crop_work(void *ctx, long u, const char *where, const uint8_t *data, size_t len)
{
    crop_t *c = ctx;
    uint8_t *rgb;
    int w, h;
    LT_TRY(lt_jpeg_decode(where, data, len, &rgb, &w, &h));
    int rc = LT_OK;
    int S = c->p->crop_size;
    size_t per = (size_t)3 * S * S;
    for (long k = c->first[u]; !rc && k < c->first[u + 1]; k++) {
        const lt_lvis_subset *s = c->s[c->ref[k].set];
        const lt_lvis_item *it = &s->item[c->ref[k].item];
        if (w != s->image_w[it->img] || h != s->image_h[it->img]) {
            rc = lt_err(LT_EDATA, "%s: decoded %dx%d but the LVIS JSON says %dx%d", where, w, h,
                        s->image_w[it->img], s->image_h[it->img]);
            break;
        }
        rc = lt_resample_rect(rgb, w, h, it->sx, it->sy, it->side, it->side, it->cx0, it->cy0,
                              it->cx1, it->cy1, S,
                              c->out[c->ref[k].set].pixels + (size_t)c->ref[k].item * per);
        if (rc)
            lt_err_wrap(rc, "%s: annotation %lld", where, (long long)it->ann_id);
    }
    free(rgb);
    return rc;
}

static void crop_free(crop_t *c)
{
    lt_strmap_free(&c->files);
    free(c->file);
    free(c->found);
    free(c->first);
    free(c->ref);
}

/* Union image table and the CSR of items per image. */
static int crop_index(crop_t *c)
{
    long n_img = 0, n_items = 0;
    for (int j = 0; j < c->n_sets; j++) {
        n_img += c->s[j]->n_images;
        n_items += c->s[j]->n;
    }
    LT_TRY(lt_strmap_init(&c->files, (size_t)n_img));
    long *uof = NULL, **map = calloc((size_t)c->n_sets, sizeof *map);
    c->file = malloc((size_t)(n_img ? n_img : 1) * sizeof *c->file);
    c->first = calloc((size_t)n_img + 2, sizeof *c->first);
    c->ref = malloc((size_t)(n_items ? n_items : 1) * sizeof *c->ref);
    int rc = (!map || !c->file || !c->first || !c->ref)
                 ? lt_err(LT_ENOMEM, "LVIS build: out of memory") : LT_OK;
    /* map[j][i]: union index of subset j's image i. */
    for (int j = 0; j < c->n_sets && !rc; j++) {
        const lt_lvis_subset *s = c->s[j];
        if (!(map[j] = malloc((size_t)(s->n_images ? s->n_images : 1) * sizeof **map))) {
            rc = lt_err(LT_ENOMEM, "LVIS build: out of memory");
            break;
        }
        for (long i = 0; i < s->n_images && !rc; i++) {
            long prev;
            rc = lt_strmap_put(&c->files, s->image_file[i], c->n_files, &prev);
            if (rc)
                break;
            if (prev >= 0) {
                map[j][i] = prev;
            } else {
                c->file[c->n_files] = s->image_file[i];
                map[j][i] = c->n_files++;
            }
        }
    }
    if (!rc && !(c->found = calloc((size_t)(c->n_files ? c->n_files : 1), 1)))
        rc = lt_err(LT_ENOMEM, "LVIS build: out of memory");
    if (!rc && !(uof = calloc((size_t)c->n_files + 1, sizeof *uof)))
        rc = lt_err(LT_ENOMEM, "LVIS build: out of memory");
    if (!rc) {
        for (int j = 0; j < c->n_sets; j++)
            for (long i = 0; i < c->s[j]->n; i++)
                c->first[map[j][c->s[j]->item[i].img] + 1]++;
        for (long u = 0; u < c->n_files; u++)
            c->first[u + 1] += c->first[u];
        for (int j = 0; j < c->n_sets; j++)
            for (long i = 0; i < c->s[j]->n; i++) {
                long u = map[j][c->s[j]->item[i].img];
                c->ref[c->first[u] + uof[u]++] = (ref_t){j, i};
            }
    }
    free(uof);
    if (map)
        for (int j = 0; j < c->n_sets; j++)
            free(map[j]);
    free(map);
    return rc;
}

int lt_lvis_build_many(lt_dataset *out, const lt_lvis_subset *const *subsets, int n_sets,
                       const lt_lvis_params *p, const char *const *archives, int n_archives,
                       const lt_progress *progress)
{
    for (int j = 0; j < n_sets; j++)
        memset(&out[j], 0, sizeof out[j]);
    if (n_sets <= 0 || n_archives <= 0 || !p || p->crop_size <= 0)
        return lt_err(LT_EINVAL, "LVIS build: no subset, no image source or bad crop size");
    for (int j = 0; j < n_sets; j++)
        if (!subsets[j] || subsets[j]->n <= 0)
            return lt_err(LT_EINVAL, "LVIS build: subset %d is empty", j);
    crop_t c;
    memset(&c, 0, sizeof c);
    c.s = subsets;
    c.n_sets = n_sets;
    c.p = p;
    c.out = out;
    int rc = crop_index(&c);
    for (int j = 0; j < n_sets && !rc; j++) {
        rc = lt_dataset_alloc(&out[j], subsets[j]->n, 3, p->crop_size, p->crop_size,
                              subsets[j]->n_classes);
        for (long i = 0; !rc && i < subsets[j]->n; i++)
            out[j].labels[i] = subsets[j]->item[i].label;
    }
    if (!rc)
        rc = lt_imagesrc_scan(archives, n_archives, crop_want, crop_work, &c, progress);
    if (!rc) {
        long missing = 0;
        char first[600] = "";
        size_t fl = 0;
        for (long u = 0; u < c.n_files; u++)
            if (!c.found[u]) {
                if (missing < 5 && fl < sizeof first - 1) {
                    int w = snprintf(first + fl, sizeof first - fl, "%s%s", missing ? ", " : "",
                                     c.file[u]);
                    if (w > 0)
                        fl += (size_t)w;
                    if (fl > sizeof first - 1)
                        fl = sizeof first - 1;
                }
                missing++;
            }
        if (missing)
            rc = lt_err(LT_EDATA, "LVIS: %ld of %ld images missing from %s%s: %s%s", missing,
                        c.n_files, archives[0], n_archives > 1 ? " (and the other sources)" : "",
                        first, missing > 5 ? ", ..." : "");
    }
    crop_free(&c);
    if (rc)
        for (int j = 0; j < n_sets; j++)
            lt_dataset_free(&out[j]);
    return rc;
}

int lt_lvis_build(lt_dataset *d, const lt_lvis_subset *s, const lt_lvis_params *p,
                  const char *const *archives, int n_archives)
{
    const lt_lvis_subset *one[1] = {s};
    return lt_lvis_build_many(d, one, 1, p, archives, n_archives, NULL);
}
