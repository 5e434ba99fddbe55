/* lt_inat.c — iNaturalist 2018 split lists from the official JSON.
 *
 * The published iNaturalist18_{train,val}.txt (classifier-balancing
 * data/iNaturalist18/gen_lists.py, specs/datasets.md §6.4) were made by:
 *     for i in range(len(images)):
 *         assert images[i]['id'] == annotations[i]['id']
 *         line = images[i]['file_name'] + ' ' + str(annotations[i]['category_id'])
 * i.e. JSON order, the i-th annotation paired with the i-th image by
 * position (checked through the ids), label = raw category_id. We apply the
 * same rule, so regenerating val from val2018.json must reproduce the
 * committed file byte for byte (sha256 efaeff65...), and train must give the
 * committed blob 4accdb75... Lists then go through the strict list rules. */
#include "lt_imagesets.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    long n_img, cap_img;
    int64_t *img_id;
    char **file;
    long n_ann, cap_ann;
    int64_t *ann_id;
    int32_t *cat;
} inat_t;

static int get_int(const char *name, const char *arr, long idx, const cJSON *o, const char *key,
                   int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v)
        return lt_err(LT_EDATA, "%s: %s[%ld]: missing required key '%s'", name, arr, idx, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return lt_err(LT_EDATA, "%s: %s[%ld]: '%s' must be an integer in [%lld, %lld]", name,
                      arr, idx, key, (long long)lo, (long long)hi);
    *out = (int64_t)v->valuedouble;
    return LT_OK;
}

static int on_image(void *ctx, long idx, const cJSON *o)
{
    inat_t *t = ctx;
    if (!cJSON_IsObject(o))
        return lt_err(LT_EDATA, "%s: images[%ld] is not an object", t->name, idx);
    if (t->n_img == t->cap_img) {
        long nc = t->cap_img ? t->cap_img * 2 : 4096;
        int64_t *ni = realloc(t->img_id, (size_t)nc * sizeof *ni);
        if (ni)
            t->img_id = ni;
        char **nf = realloc(t->file, (size_t)nc * sizeof *nf);
        if (nf)
            t->file = nf;
        if (!ni || !nf)
            return lt_err(LT_ENOMEM, "%s: out of memory at images[%ld]", t->name, idx);
        t->cap_img = nc;
    }
    int64_t id;
    LT_TRY(get_int(t->name, "images", idx, o, "id", INT64_MIN / 2, INT64_MAX / 2, &id));
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "file_name");
    if (!f)
        return lt_err(LT_EDATA, "%s: images[%ld]: missing required key 'file_name'", t->name,
                      idx);
    if (!cJSON_IsString(f) || !f->valuestring[0])
        return lt_err(LT_EDATA, "%s: images[%ld]: 'file_name' must be a non-empty string",
                      t->name, idx);
    char *s = strdup(f->valuestring);
    if (!s)
        return lt_err(LT_ENOMEM, "%s: out of memory", t->name);
    t->img_id[t->n_img] = id;
    t->file[t->n_img++] = s;
    return LT_OK;
}

static int on_ann(void *ctx, long idx, const cJSON *o)
{
    inat_t *t = ctx;
    if (!cJSON_IsObject(o))
        return lt_err(LT_EDATA, "%s: annotations[%ld] is not an object", t->name, idx);
    if (t->n_ann == t->cap_ann) {
        long nc = t->cap_ann ? t->cap_ann * 2 : 4096;
        int64_t *ni = realloc(t->ann_id, (size_t)nc * sizeof *ni);
        if (ni)
            t->ann_id = ni;
        int32_t *nc2 = realloc(t->cat, (size_t)nc * sizeof *nc2);
        if (nc2)
            t->cat = nc2;
        if (!ni || !nc2)
            return lt_err(LT_ENOMEM, "%s: out of memory at annotations[%ld]", t->name, idx);
        t->cap_ann = nc;
    }
    int64_t id, cat;
    LT_TRY(get_int(t->name, "annotations", idx, o, "id", INT64_MIN / 2, INT64_MAX / 2, &id));
    LT_TRY(get_int(t->name, "annotations", idx, o, "category_id", 0, INT32_MAX, &cat));
    t->ann_id[t->n_ann] = id;
    t->cat[t->n_ann++] = (int32_t)cat;
    return LT_OK;
}

static void inat_free(inat_t *t)
{
    for (long i = 0; i < t->n_img; i++)
        free(t->file[i]);
    free(t->file);
    free(t->img_id);
    free(t->ann_id);
    free(t->cat);
}

int lt_inat_list_from_json_buf(lt_listfile *lf, const char *name, const char *buf, size_t len)
{
    memset(lf, 0, sizeof *lf);
    inat_t t;
    memset(&t, 0, sizeof t);
    t.name = name;
    int rc = lt_json_each(name, buf, len, "images", on_image, &t);
    if (!rc)
        rc = lt_json_each(name, buf, len, "annotations", on_ann, &t);
    if (!rc && t.n_img == 0)
        rc = lt_err(LT_EDATA, "%s: 'images' is empty", name);
    if (!rc && t.n_ann != t.n_img)
        rc = lt_err(LT_EDATA,
                    "%s: %ld images but %ld annotations (the list rule pairs them by position, "
                    "one annotation per image)",
                    name, t.n_img, t.n_ann);
    for (long i = 0; !rc && i < t.n_img; i++)
        if (t.img_id[i] != t.ann_id[i])
            rc = lt_err(LT_EDATA,
                        "%s: images[%ld].id = %lld but annotations[%ld].id = %lld (gen_lists.py "
                        "asserts they are equal)",
                        name, i, (long long)t.img_id[i], i, (long long)t.ann_id[i]);
    if (!rc) {
        rc = lt_listfile_from_arrays(lf, name, (const char *const *)t.file, t.cat, t.n_img);
        if (rc)
            lt_err_wrap(rc, "%s: the list made from it is invalid (line N = images[N-1])", name);
    }
    inat_free(&t);
    return rc;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int lt_inat_list_from_json(lt_listfile *lf, const char *json_path)
{
    memset(lf, 0, sizeof *lf);
    const char *buf;
    size_t len;
    LT_TRY(lt_json_map(json_path, &buf, &len));
    int rc = lt_inat_list_from_json_buf(lf, base_name(json_path), buf, len);
    lt_json_unmap(buf, len);
    return rc;
}

int lt_inat_write_list(const char *json_path, const char *txt_path)
{
    lt_listfile lf;
    LT_TRY(lt_inat_list_from_json(&lf, json_path));
    int rc = lt_listfile_write(&lf, txt_path);
    lt_listfile_free(&lf);
    return rc;
}
