/* lt_dataset.c — the in-memory dataset: allocation, class counts, subsets. */
#include "lt_data.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int lt_dataset_alloc(lt_dataset *d, long n, int c, int h, int w, int n_classes)
{
    memset(d, 0, sizeof *d);
    if (n < 0 || c <= 0 || h <= 0 || w <= 0 || n_classes <= 0)
        return lt_err(LT_EINVAL, "dataset: bad shape n=%ld c=%d h=%d w=%d classes=%d",
                      n, c, h, w, n_classes);
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    if (n > 0 && per > SIZE_MAX / (size_t)n)
        return lt_err(LT_EINVAL, "dataset: %ld images of %zu bytes overflow", n, per);
    /* calloc(0) may return NULL legitimately; ask for at least one element. */
    d->pixels = calloc(n > 0 ? (size_t)n * per : 1, 1);
    d->labels = calloc(n > 0 ? (size_t)n : 1, sizeof *d->labels);
    if (!d->pixels || !d->labels) {
        free(d->pixels);
        free(d->labels);
        memset(d, 0, sizeof *d);
        return lt_err(LT_ENOMEM, "dataset: cannot allocate %ld images of %zu bytes", n, per);
    }
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->n_classes = n_classes;
    d->owns = 1;
    return LT_OK;
}

void lt_dataset_free(lt_dataset *d)
{
    if (!d)
        return;
    /* A mapped dataset's pixels live inside the mapping; labels may still
     * be a separate malloc'd array owned by the dataset. */
    if (d->map)
        munmap(d->map, d->map_len);
    if (d->owns) {
        if (!d->map)
            free(d->pixels);
        free(d->labels);
    }
    memset(d, 0, sizeof *d);
}

void lt_dataset_class_counts(const lt_dataset *d, long *counts)
{
    memset(counts, 0, (size_t)d->n_classes * sizeof *counts);
    for (long i = 0; i < d->n; i++) {
        int32_t y = d->labels[i];
        /* Out-of-range labels are not counted anywhere: they are a loader
         * bug, caught by the dataset readers' own validation. */
        if (y >= 0 && y < d->n_classes)
            counts[y]++;
    }
}

int lt_dataset_subset(lt_dataset *dst, const lt_dataset *src, const int32_t *idx, long n)
{
    if (dst == src)
        return lt_err(LT_EINVAL, "dataset subset: destination aliases the source");
    for (long i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= src->n)
            return lt_err(LT_EINVAL, "dataset subset: index %ld = %d outside [0, %ld)",
                          i, (int)idx[i], src->n);
    LT_TRY(lt_dataset_alloc(dst, n, src->c, src->h, src->w, src->n_classes));
    size_t per = (size_t)src->c * src->h * src->w;
    for (long i = 0; i < n; i++) {
        memcpy(dst->pixels + (size_t)i * per, src->pixels + (size_t)idx[i] * per, per);
        dst->labels[i] = src->labels[idx[i]];
    }
    return LT_OK;
}
