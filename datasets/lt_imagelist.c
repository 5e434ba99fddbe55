/* lt_imagelist.c — ImageNet-LT / Places-LT / iNaturalist datasets from a
 * split list plus the images (an archive streamed once, or a directory).
 *
 * Matching: every list path becomes one or more keys in a hash map (the path
 * itself, and where the dataset needs it an archive-layout alias, §3.3 and
 * §4.3). An archive member matches when one of its '/'-boundary suffixes is
 * a key, so a leading "./" or an extra top folder in the archive does not
 * matter. Labels always come from the list (the Places-LT label trap, §4.4):
 * nothing here derives a label from a folder or a class index file. */
#include "lt_imagesets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- path mapping ------------------------------------------------------- */

int lt_pathmap_apply(lt_pathmap map, const char *p, char *out, size_t cap)
{
    int n;
    switch (map) {
    case LT_PATHMAP_NONE:
        n = snprintf(out, cap, "%s", p);
        break;
    case LT_PATHMAP_BASENAME: {
        const char *b = strrchr(p, '/');
        n = snprintf(out, cap, "%s", b ? b + 1 : p);
        break;
    }
    case LT_PATHMAP_PLACES365: {
        /* §4.3: train/<cls>/<f> -> data_256/<cls[0]>/<cls, '-' -> '/'>/<f>;
         *       val/<cls>/<f>   -> val_256/<f>. */
        const char *rest, *slash;
        if (strncmp(p, "train/", 6) == 0) {
            rest = p + 6;
            slash = strchr(rest, '/');
            if (!slash || slash == rest || strchr(slash + 1, '/') || !slash[1])
                return lt_err(LT_EINVAL, "Places-LT path '%s' is not train/<class>/<file>", p);
            n = snprintf(out, cap, "data_256/%c/%.*s", rest[0], (int)(slash - rest), rest);
            if (n < 0 || (size_t)n >= cap)
                break;
            for (char *q = out + 11; *q; q++)
                if (*q == '-')
                    *q = '/';
            n = snprintf(out + n, cap - (size_t)n, "%s", slash) + n;
        } else if (strncmp(p, "val/", 4) == 0) {
            rest = p + 4;
            slash = strchr(rest, '/');
            if (!slash || slash == rest || strchr(slash + 1, '/') || !slash[1])
                return lt_err(LT_EINVAL, "Places-LT path '%s' is not val/<class>/<file>", p);
            n = snprintf(out, cap, "val_256%s", slash);
        } else {
            return lt_err(LT_EINVAL, "Places-LT path '%s' starts with neither train/ nor val/",
                          p);
        }
        break;
    }
    default:
        return lt_err(LT_EINVAL, "unknown path mapping %d", (int)map);
    }
    if (n < 0 || (size_t)n >= cap)
        return lt_err(LT_EINVAL, "path '%.200s' too long after mapping", p);
    return LT_OK;
}

/* ---- list datasets -------------------------------------------------------- */

/* Several lists share one walk over the sources: line g of the concatenation
 * belongs to list j with off[j] <= g < off[j+1]. */
typedef struct {
    const lt_listfile *const *lists;
    int n_lists;
    long *off;
    long total;
    lt_strmap keys;
    char **alias;          /* owned mapped keys per global line (or NULL) */
    unsigned char *found;
    lt_dataset *out;
    int size;
} build_t;

static int list_of(const build_t *b, long g)
{
    int j = 0;
    while (g >= b->off[j + 1])
        j++;
    return j;
}

static long list_want(void *ctx, const char *member)
{
    build_t *b = ctx;
    /* Longest suffix first: the full member name, then after each '/'. */
    for (const char *p = member; p; p = strchr(p, '/')) {
        if (*p == '/')
            p++;
        long g = lt_strmap_get(&b->keys, p);
        if (g >= 0) {
            if (b->found[g]) {
                int j = list_of(b, g);
                /* (the caller prefixes the first list's name) */
                lt_err(LT_EDATA,
                       "image '%s' (%s:%ld) is matched by two members; the second is '%s'",
                       b->lists[j]->path[g - b->off[j]], b->lists[j]->name, g - b->off[j] + 1,
                       member);
                return -2;
            }
            b->found[g] = 1;
            return g;
        }
    }
    return -1;
}

static int list_work(void *ctx, long g, const char *where, const uint8_t *data, size_t len)
{
    build_t *b = ctx;
    int j = list_of(b, g);
    size_t per = (size_t)3 * (size_t)b->size * (size_t)b->size;
    return lt_jpeg_to_planar(where, data, len, b->size,
                             b->out[j].pixels + (size_t)(g - b->off[j]) * per);
}

static void build_free(build_t *b)
{
    lt_strmap_free(&b->keys);
    if (b->alias)
        for (long i = 0; i < b->total; i++)
            free(b->alias[i]);
    free(b->alias);
    free(b->found);
    free(b->off);
}

/* Registers every line's key(s); two lines (of any list) claiming one key
 * would make matching ambiguous and are refused. */
static int build_keys(build_t *b, lt_pathmap map)
{
    LT_TRY(lt_strmap_init(&b->keys, (size_t)b->total * 2));
    for (int j = 0; j < b->n_lists; j++) {
        const lt_listfile *lf = b->lists[j];
        for (long i = 0; i < lf->n; i++) {
            long g = b->off[j] + i;
            const char *k1 = lf->path[i];
            if (map != LT_PATHMAP_NONE) {
                char tmp[4096];
                int rc = lt_pathmap_apply(map, lf->path[i], tmp, sizeof tmp);
                if (rc)
                    return lt_err_wrap(rc, "%s:%ld", lf->name, i + 1);
                if (!(b->alias[g] = strdup(tmp)))
                    return lt_err(LT_ENOMEM, "%s: out of memory", lf->name);
                /* Basename matching replaces the path key; Places adds an alias. */
                if (map == LT_PATHMAP_BASENAME)
                    k1 = b->alias[g];
            }
            const char *keys[2] = {k1, map == LT_PATHMAP_PLACES365 ? b->alias[g] : NULL};
            for (int k = 0; k < 2 && keys[k]; k++) {
                long prev;
                LT_TRY(lt_strmap_put(&b->keys, keys[k], g, &prev));
                if (prev >= 0 && prev != g) {
                    int pj = list_of(b, prev);
                    return lt_err(LT_EDATA,
                                  "%s:%ld: image key '%s' also belongs to %s:%ld (%s matching "
                                  "needs unique names)",
                                  lf->name, i + 1, keys[k], b->lists[pj]->name,
                                  prev - b->off[pj] + 1,
                                  map == LT_PATHMAP_BASENAME ? "basename" : "path");
                }
            }
        }
    }
    return LT_OK;
}

/* "<list>: N of M images missing from <src>: p1, p2, ..." for the first
 * list with missing images; LT_OK if none. */
static int report_missing(const build_t *b, const char *src0, int more)
{
    for (int j = 0; j < b->n_lists; j++) {
        const lt_listfile *lf = b->lists[j];
        long missing = 0;
        char first[700] = "";
        size_t fl = 0;
        for (long i = 0; i < lf->n; i++)
            if (!b->found[b->off[j] + i]) {
                if (missing < 5 && fl < sizeof first - 1) {
                    int w = snprintf(first + fl, sizeof first - fl, "%s%.120s",
                                     missing ? ", " : "", lf->path[i]);
                    if (w > 0)
                        fl += (size_t)w;
                    if (fl > sizeof first - 1)
                        fl = sizeof first - 1;
                }
                missing++;
            }
        if (missing)
            return lt_err(LT_EDATA, "%s: %ld of %ld images missing from %s%s: %s%s", lf->name,
                          missing, lf->n, src0, more ? " (and the other sources)" : "", first,
                          missing > 5 ? ", ..." : "");
    }
    return LT_OK;
}

int lt_imagelist_build_many(lt_dataset *out, const lt_listfile *const *lists, int n_lists,
                            const lt_imagelist_src *src)
{
    for (int j = 0; j < n_lists; j++)
        memset(&out[j], 0, sizeof out[j]);
    if (n_lists <= 0 || src->size <= 0)
        return lt_err(LT_EINVAL, "image list build: no list or bad size %d", src->size);
    for (int j = 0; j < n_lists; j++)
        if (!lists[j] || lists[j]->n <= 0)
            return lt_err(LT_EINVAL, "image list build: list %d is empty", j);
    if (!src->root && src->n_archives <= 0)
        return lt_err(LT_EINVAL, "%s: no image source (directory or archive) given",
                      lists[0]->name);
    build_t b;
    memset(&b, 0, sizeof b);
    b.lists = lists;
    b.n_lists = n_lists;
    b.size = src->size;
    b.out = out;
    b.off = malloc((size_t)(n_lists + 1) * sizeof *b.off);
    if (!b.off)
        return lt_err(LT_ENOMEM, "image list build: out of memory");
    b.off[0] = 0;
    for (int j = 0; j < n_lists; j++)
        b.off[j + 1] = b.off[j] + lists[j]->n;
    b.total = b.off[n_lists];
    int rc = LT_OK;
    b.found = calloc((size_t)b.total, 1);
    b.alias = calloc((size_t)b.total, sizeof *b.alias);
    if (!b.found || !b.alias)
        rc = lt_err(LT_ENOMEM, "%s: out of memory", lists[0]->name);
    if (!rc)
        rc = build_keys(&b, src->map);
    for (int j = 0; j < n_lists && !rc; j++) {
        rc = lt_dataset_alloc(&out[j], lists[j]->n, 3, src->size, src->size, lists[j]->n_classes);
        if (!rc)
            memcpy(out[j].labels, lists[j]->label, (size_t)lists[j]->n * sizeof *out[j].labels);
    }
    const char **srcs = NULL;
    int ns = 0;
    if (!rc && !(srcs = malloc((size_t)(src->n_archives + 1) * sizeof *srcs)))
        rc = lt_err(LT_ENOMEM, "%s: out of memory", lists[0]->name);
    if (!rc) {
        if (src->root)
            srcs[ns++] = src->root;
        for (int i = 0; i < src->n_archives; i++)
            srcs[ns++] = src->archives[i];
        rc = lt_imagesrc_scan(srcs, ns, list_want, list_work, &b, src->progress);
        if (rc)
            lt_err_wrap(rc, "%s", lists[0]->name);
        else
            rc = report_missing(&b, srcs[0], ns > 1);
    }
    free(srcs);
    build_free(&b);
    if (rc)
        for (int j = 0; j < n_lists; j++)
            lt_dataset_free(&out[j]);
    return rc;
}

int lt_imagelist_build(lt_dataset *d, const lt_imagelist_src *src)
{
    const lt_listfile *one[1] = {src->list};
    if (!src->list) {
        memset(d, 0, sizeof *d);
        return lt_err(LT_EINVAL, "image list build: no list");
    }
    return lt_imagelist_build_many(d, one, 1, src);
}
