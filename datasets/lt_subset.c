/* lt_subset.c — which images a long-tailed subset keeps.
 *
 * Counts follow the class-balanced-loss / LDAM-DRW formula with C's double
 * pow() and truncation (specs/datasets.md §1.3: no interior value is close
 * enough to an integer for libm differences to matter). Selection reproduces
 * LDAM-DRW's imbalance_cifar.py exactly (§1.4/§1.5): one NumPy-legacy MT19937
 * stream, classes in label order, each class's ascending position list
 * shuffled and cut. Shuffling the within-class ranks 0..n_c-1 and mapping
 * them through the position list is the same draw sequence (the shuffle only
 * depends on the length), and it gives the ranks the §1.5 digest needs.
 * The validation split of these datasets (lt_val_select) is drawn from the
 * complement, with the engine's Philox streams rather than MT19937: it is
 * this project's rule, not LDAM's, and a stream of its own keeps it from
 * shifting the subset's draws. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_ckpt.h"
#include "lt_datasets.h"
#include "lt_rng.h"

const char *lt_profile_name(lt_profile p)
{
    switch (p) {
    case LT_PROFILE_EXP: return "exp";
    case LT_PROFILE_STEP: return "step";
    case LT_PROFILE_NATURAL: return "natural";
    }
    return "?";
}

int lt_profile_parse(const char *s, lt_profile *p)
{
    if (s && !strcmp(s, "exp")) *p = LT_PROFILE_EXP;
    else if (s && !strcmp(s, "step")) *p = LT_PROFILE_STEP;
    else if (s && !strcmp(s, "natural")) *p = LT_PROFILE_NATURAL;
    else return lt_err(LT_EINVAL, "profile '%s': expected exp, step or natural", s ? s : "(null)");
    return LT_OK;
}

int lt_subset_counts(lt_profile p, long n_max, int n_classes, double ir, long *counts)
{
    if (n_classes < 2 || n_max < 1 || !(ir >= 1.0))
        return lt_err(LT_EINVAL, "subset counts: need C >= 2, n_max >= 1, IR >= 1 (got C=%d n_max=%ld IR=%g)",
                      n_classes, n_max, ir);
    /* f = 1/IR as the reference passes imb_factor = 0.01: the quotient is
     * correctly rounded, so 1.0/100 is the same double as the literal 0.01. */
    double f = 1.0 / ir;
    for (int i = 0; i < n_classes; i++) {
        if (p == LT_PROFILE_EXP)
            counts[i] = (long)((double)n_max * pow(f, (double)i / (n_classes - 1.0)));
        else if (p == LT_PROFILE_STEP)
            counts[i] = i < n_classes / 2 ? n_max : (long)((double)n_max * f);
        else
            return lt_err(LT_EINVAL, "subset counts: profile '%s' has no formula", lt_profile_name(p));
    }
    return LT_OK;
}

int lt_subset_select(const int32_t *labels, long n, int n_classes, const long *counts,
                     uint32_t seed, int32_t *idx, int32_t *ranks, long *n_out)
{
    if (n_classes < 1) return lt_err(LT_EINVAL, "subset select: %d classes", n_classes);
    long *size = calloc((size_t)n_classes + 1, sizeof *size);
    if (!size) return lt_err(LT_ENOMEM, "subset select: out of memory");
    for (long i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= n_classes) {
            free(size);
            return lt_err(LT_EDATA, "subset select: label %d at position %ld outside 0..%d",
                          labels[i], i, n_classes - 1);
        }
        size[labels[i]]++;
    }
    for (int c = 0; c < n_classes; c++)
        if (counts[c] < 0 || counts[c] > size[c]) {
            long have = size[c];
            free(size);
            return lt_err(LT_EDATA, "subset select: class %d has %ld images, the profile asks for %ld",
                          c, have, counts[c]);
        }
    /* Bucket positions by class, ascending (np.where order): start[c] offsets. */
    long *start = calloc((size_t)n_classes + 1, sizeof *start);
    int32_t *pos = malloc((size_t)(n > 0 ? n : 1) * sizeof *pos);
    int32_t *perm = malloc((size_t)(n > 0 ? n : 1) * sizeof *perm);
    if (!start || !pos || !perm) {
        free(size); free(start); free(pos); free(perm);
        return lt_err(LT_ENOMEM, "subset select: out of memory for %ld labels", n);
    }
    for (int c = 0; c < n_classes; c++) start[c + 1] = start[c] + size[c];
    memset(size, 0, (size_t)n_classes * sizeof *size);
    for (long i = 0; i < n; i++) pos[start[labels[i]] + size[labels[i]]++] = (int32_t)i;

    lt_mt19937 mt;
    lt_mt19937_seed(&mt, seed);
    long k = 0;
    for (int c = 0; c < n_classes; c++) {
        long nc = size[c];
        for (long r = 0; r < nc; r++) perm[r] = (int32_t)r;
        lt_np_shuffle_i32(&mt, perm, nc);
        for (long j = 0; j < counts[c]; j++, k++) {
            idx[k] = pos[start[c] + perm[j]];
            if (ranks) ranks[k] = perm[j];
        }
    }
    *n_out = k;
    free(size); free(start); free(pos); free(perm);
    return LT_OK;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Appends one class's sorted ranks ("3,17,42") to the digest stream. */
static void digest_class(lt_sha256 *s, int32_t *r, long m, int first_class)
{
    char buf[24];
    if (!first_class) lt_sha256_update(s, " ", 1);
    qsort(r, (size_t)m, sizeof *r, cmp_i32);
    for (long j = 0; j < m; j++) {
        int len = snprintf(buf, sizeof buf, j ? ",%d" : "%d", r[j]);
        lt_sha256_update(s, buf, (size_t)len);
    }
}

int lt_subset_rank_digest(const long *class_sizes, const long *counts, int n_classes,
                          uint32_t seed, char hex[65])
{
    long maxn = 1;
    for (int c = 0; c < n_classes; c++) {
        if (counts[c] < 0 || counts[c] > class_sizes[c])
            return lt_err(LT_EINVAL, "rank digest: class %d keeps %ld of %ld", c, counts[c],
                          class_sizes[c]);
        if (class_sizes[c] > maxn) maxn = class_sizes[c];
    }
    int32_t *perm = malloc((size_t)maxn * sizeof *perm);
    if (!perm) return lt_err(LT_ENOMEM, "rank digest: out of memory");
    lt_mt19937 mt;
    lt_mt19937_seed(&mt, seed);
    lt_sha256 s;
    lt_sha256_init(&s);
    for (int c = 0; c < n_classes; c++) {
        for (long r = 0; r < class_sizes[c]; r++) perm[r] = (int32_t)r;
        lt_np_shuffle_i32(&mt, perm, class_sizes[c]);
        digest_class(&s, perm, counts[c], c == 0);
    }
    free(perm);
    uint8_t d[32];
    lt_sha256_final(&s, d);
    lt_sha256_hex(d, hex);
    return LT_OK;
}

int lt_subset_rank_digest_from(const int32_t *ranks, const int32_t *labels_of_kept, long n,
                               int n_classes, char hex[65])
{
    long *start = calloc((size_t)n_classes + 1, sizeof *start);
    long *fill = calloc((size_t)n_classes + 1, sizeof *fill);
    int32_t *r = malloc((size_t)(n > 0 ? n : 1) * sizeof *r);
    if (!start || !fill || !r) {
        free(start); free(fill); free(r);
        return lt_err(LT_ENOMEM, "rank digest: out of memory");
    }
    for (long i = 0; i < n; i++) {
        if (labels_of_kept[i] < 0 || labels_of_kept[i] >= n_classes) {
            free(start); free(fill); free(r);
            return lt_err(LT_EDATA, "rank digest: label %d outside 0..%d", labels_of_kept[i],
                          n_classes - 1);
        }
        start[labels_of_kept[i] + 1]++;
    }
    for (int c = 0; c < n_classes; c++) start[c + 1] += start[c];
    for (long i = 0; i < n; i++) {
        int c = labels_of_kept[i];
        r[start[c] + fill[c]++] = ranks[i];
    }
    lt_sha256 s;
    lt_sha256_init(&s);
    for (int c = 0; c < n_classes; c++) digest_class(&s, r + start[c], fill[c], c == 0);
    uint8_t d[32];
    lt_sha256_final(&s, d);
    lt_sha256_hex(d, hex);
    free(start); free(fill); free(r);
    return LT_OK;
}

void lt_subset_index_sha256(const int32_t *idx, long n, char hex[65])
{
    lt_sha256 s;
    lt_sha256_init(&s);
    char buf[24];
    for (long i = 0; i < n; i++) {
        int len = snprintf(buf, sizeof buf, i ? ",%d" : "%d", idx[i]);
        lt_sha256_update(&s, buf, (size_t)len);
    }
    uint8_t d[32];
    lt_sha256_final(&s, d);
    lt_sha256_hex(d, hex);
}

/* ---- the validation split of EXP/STEP datasets ------------------------------------ */
/* Marks the kept positions; LT_EDATA for one out of range or kept twice
 * (the complement would then be wrong, not merely different). */
static int mark_kept(const int32_t *kept, long n_kept, long n, uint8_t *used)
{
    for (long i = 0; i < n_kept; i++) {
        if (kept[i] < 0 || kept[i] >= n)
            return lt_err(LT_EDATA, "validation split: kept position %d outside 0..%ld", kept[i], n - 1);
        if (used[kept[i]]) return lt_err(LT_EDATA, "validation split: position %d kept twice", kept[i]);
        used[kept[i]] = 1;
    }
    return LT_OK;
}

int lt_val_select(const int32_t *labels, long n, int n_classes, const int32_t *kept, long n_kept, int per_class,
                  uint32_t seed, int32_t *val, long *counts, long *n_out)
{
    if (n_classes < 1 || per_class < 0)
        return lt_err(LT_EINVAL, "validation split: %d classes, %d per class", n_classes, per_class);
    uint8_t *used = calloc((size_t)(n > 0 ? n : 1), 1);
    long *start = calloc((size_t)n_classes + 1, sizeof *start);
    int32_t *pos = malloc((size_t)(n > 0 ? n : 1) * sizeof *pos);
    int rc = used && start && pos ? LT_OK : lt_err(LT_ENOMEM, "validation split: out of memory for %ld labels", n);
    if (!rc) rc = mark_kept(kept, n_kept, n, used);
    for (long i = 0; !rc && i < n; i++)
        if (labels[i] < 0 || labels[i] >= n_classes)
            rc = lt_err(LT_EDATA, "validation split: label %d at position %ld outside 0..%d", labels[i], i,
                        n_classes - 1);
        else if (!used[i]) start[labels[i] + 1]++;
    if (rc) {
        free(used); free(start); free(pos);
        return rc;
    }
    /* The left-over positions of each class, ascending: start[c] offsets. */
    for (int c = 0; c < n_classes; c++) start[c + 1] += start[c];
    long *fill = counts; /* reused as a cursor, then overwritten with k_c */
    memset(fill, 0, (size_t)n_classes * sizeof *fill);
    for (long i = 0; i < n; i++)
        if (!used[i]) pos[start[labels[i]] + fill[labels[i]]++] = (int32_t)i;
    /* One sub-stream per class: a class's draw does not depend on how many
     * left-overs the classes before it had. */
    lt_rng r;
    lt_rng_init(&r, seed, LT_STREAM_SPLIT);
    long k = 0;
    for (int c = 0; c < n_classes; c++) {
        long m = start[c + 1] - start[c], kc = m < per_class ? m : per_class;
        lt_rng rc_;
        lt_rng_derive(&rc_, &r, (uint64_t)c, 0);
        lt_rng_shuffle_i32(&rc_, pos + start[c], m);
        /* Stored ascending: the order says nothing about the draw. */
        qsort(pos + start[c], (size_t)kc, sizeof *pos, cmp_i32);
        memcpy(val + k, pos + start[c], (size_t)kc * sizeof *val);
        counts[c] = kc;
        k += kc;
    }
    *n_out = k;
    free(used); free(start); free(pos);
    return LT_OK;
}

void lt_shot_groups(const long *counts, int n_classes, int *many, int *medium, int *few)
{
    int m = 0, md = 0, f = 0;
    for (int c = 0; c < n_classes; c++) {
        if (counts[c] > 100) m++;
        else if (counts[c] < 20) f++;
        else md++;
    }
    *many = m;
    *medium = md;
    *few = f;
}
