/* lt_metrics.h — evaluation metrics: top-1, per-class and shot-group
 * accuracy, ECE, macro-F1, mAP. */
#ifndef LT_METRICS_H
#define LT_METRICS_H

#include "lt_base.h"

/* ---- metrics ---------------------------------------------------------------
 * Shot groups by training count: many > 100, medium 20..100, few < 20. */
enum { LT_GROUP_MANY = 0, LT_GROUP_MEDIUM = 1, LT_GROUP_FEW = 2 };
int lt_shot_group(long train_count);

typedef struct {
    int n_classes;
    double top1;              /* micro accuracy */
    double group_acc[3];      /* mean of per-class accuracies in the group; NAN if empty */
    int group_size[3];
    double ece;               /* 15 equal-width bins, top-label confidence */
    double macro_f1;
    double map;               /* mean over classes of AP from per-class scores; NAN if not computed */
    double class_mean_acc;    /* mean of per-class accuracy over the classes in the test set */
    /* per class (arrays of n_classes, owned by the struct; free with lt_metrics_free) */
    long *test_count, *correct;
    double *acc;              /* NAN for classes absent from the test set */
    double *ap;
} lt_metrics;

/* probs [N,C] are softmax probabilities (or any scores for mAP; ECE uses
 * the max prob as confidence and argmax as prediction; ties -> lowest index).
 * ECE bins: (lo, hi] with the first bin [0, 1/15] (np.digitize right=True).
 * AP per class: ranking by score descending, ties broken by lower sample index
 * first; AP = mean of precision at each positive (sklearn's
 * average_precision_score without interpolation). Classes with no positive
 * are excluded from mAP. compute_map = 0 skips AP (map = NAN). */
int lt_metrics_compute(lt_metrics *m, int N, int C, const float *probs, const int32_t *labels,
                       const long *train_counts, int compute_map);
void lt_metrics_free(lt_metrics *m);
/* Re-ranks AP (m->ap, m->map) by another score matrix of the same samples:
 * for a one-vs-rest sigmoid model AP must rank class c by its own score
 * sigma(z_c) (or z_c, the same order), not by a row-normalised probability.
 * m must come from lt_metrics_compute on the same N, C and labels. */
int lt_metrics_rank_ap(lt_metrics *m, int N, int C, const float *scores, const int32_t *labels);
/* Means over the classes with group[c] == g, for g < n_groups (e.g. LVIS
 * r/c/f = 0/1/2), counting only classes present in the test set: acc[g] of
 * per-class accuracy, ap[g] of per-class AP (NAN when AP was not computed),
 * size[g] the classes averaged. Empty groups give NAN. Any output may be NULL. */
int lt_metrics_group_means(const lt_metrics *m, const uint8_t *group, int n_groups, double *acc,
                           double *ap, int *size);
/* ECE alone (for tests): conf[N], correct[N] in {0,1}. */
double lt_ece(int N, const float *conf, const uint8_t *correct, int bins);

#endif
