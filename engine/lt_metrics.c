/* lt_metrics.c — top-1, per-class and shot-group accuracy, ECE, macro-F1, mAP.
 *
 * Definitions follow the published reference code so numbers are
 * comparable with papers (specs/datasets.md §0.2, methods-a.md §0):
 *  - shot groups use the strict OLTR/classifier-balancing rule on training
 *    counts: many > 100, medium 20..100 (both ends inclusive), few < 20;
 *  - a group's accuracy is the mean of per-class accuracies over the classes
 *    of that group that occur in the test set (not pooled over samples);
 *  - ECE mirrors MiSLAS utils/metric.py::calibration (15 equal-width bins,
 *    np.digitize(right=True), i.e. bins (lo, hi]);
 *  - macro-F1 mirrors sklearn f1_score(average='macro', zero_division=0);
 *  - AP mirrors sklearn average_precision_score (no interpolation), with a
 *    deterministic tie rule (see below). */
#include "lt_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int lt_shot_group(long train_count)
{
    if (train_count > 100) return LT_GROUP_MANY;
    if (train_count < 20) return LT_GROUP_FEW;
    return LT_GROUP_MEDIUM;
}

/* Bin of a confidence among `bins` equal-width bins with right-closed edges.
 * Edges are computed as numpy.linspace(0, 1, bins + 1) does (k * (1/bins),
 * the last edge exactly 1.0) and compared in double, as np.digitize compares
 * a float32 array against float64 edges. So a float32 confidence that is
 * "1/15" rounds to 0.0666666701..., which is above the edge 0.0666...6667
 * and lands in the second bin — exactly what the Python reference does.
 * numpy would drop a confidence of exactly 0 (index 0) and anything above 1;
 * we keep every sample: <= 0 goes to the first bin (the header's [0, 1/15])
 * and > 1 (float rounding of a softmax) to the last. */
static int ece_bin(double conf, int bins)
{
    double step = 1.0 / bins;
    if (!(conf > 0.0)) return 0;
    if (conf >= 1.0) return bins - 1;
    int k = (int)ceil(conf * bins); /* candidate edge index, 1..bins */
    if (k < 1) k = 1;
    if (k > bins) k = bins;
    /* Fix up the estimate against the exact edges: want the smallest k with
     * conf <= edge(k) where edge(k) = k * step (edge(bins) = 1). */
    while (k > 1 && conf <= (k - 1) * step) k--;
    while (k < bins && conf > k * step) k++;
    return k - 1;
}

double lt_ece(int N, const float *conf, const uint8_t *correct, int bins)
{
    if (N <= 0 || bins <= 0 || !conf || !correct) return NAN;
    double *sum_conf = calloc((size_t)bins, sizeof *sum_conf);
    double *sum_acc = calloc((size_t)bins, sizeof *sum_acc);
    long *count = calloc((size_t)bins, sizeof *count);
    double ece = NAN;
    if (!sum_conf || !sum_acc || !count) goto out;
    for (int i = 0; i < N; i++) {
        if (!isfinite(conf[i])) goto out; /* NaN confidence: no meaningful ECE */
        int b = ece_bin((double)conf[i], bins);
        sum_conf[b] += conf[i];
        sum_acc[b] += correct[i] ? 1.0 : 0.0;
        count[b]++;
    }
    ece = 0.0;
    for (int b = 0; b < bins; b++) {
        if (!count[b]) continue;
        double acc = sum_acc[b] / count[b], avg = sum_conf[b] / count[b];
        ece += ((double)count[b] / N) * fabs(acc - avg);
    }
out:
    free(sum_conf);
    free(sum_acc);
    free(count);
    return ece;
}

void lt_metrics_free(lt_metrics *m)
{
    if (!m) return;
    free(m->test_count);
    free(m->correct);
    free(m->acc);
    free(m->ap);
    m->test_count = m->correct = NULL;
    m->acc = m->ap = NULL;
}

typedef struct {
    float s;
    int i;
} scored;

/* Descending score; equal scores keep the lower sample index first, so the
 * ranking (and hence AP) is fully deterministic whatever qsort does. */
static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->s > y->s) return -1;
    if (x->s < y->s) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* AP of class c: rank samples by probs[:, c], then average precision@k over
 * the ranks k of the positives. Tied scores are NOT grouped (sklearn groups
 * them into one threshold); they are ordered by sample index as the header
 * specifies. Returns NAN when the class has no positive. */
static double class_ap(int N, int C, int c, const float *probs, const int32_t *labels, scored *tmp,
                       long positives)
{
    if (positives == 0) return NAN;
    for (int i = 0; i < N; i++) {
        tmp[i].s = probs[(size_t)i * C + c];
        tmp[i].i = i;
    }
    qsort(tmp, (size_t)N, sizeof *tmp, cmp_scored);
    double sum = 0.0;
    long hits = 0;
    for (int k = 0; k < N && hits < positives; k++)
        if (labels[tmp[k].i] == c) {
            hits++;
            sum += (double)hits / (double)(k + 1);
        }
    return sum / (double)positives;
}

/* m->ap and m->map from scores; m->test_count must be filled. */
static int rank_ap(lt_metrics *m, int N, int C, const float *scores, const int32_t *labels)
{
    scored *tmp = malloc((size_t)N * sizeof *tmp);
    if (!tmp) return lt_err(LT_ENOMEM, "lt_metrics: out of memory for AP ranking (N=%d)", N);
    double apsum = 0.0;
    int used = 0;
    for (int c = 0; c < C; c++) {
        m->ap[c] = class_ap(N, C, c, scores, labels, tmp, m->test_count[c]);
        if (m->test_count[c]) {
            apsum += m->ap[c];
            used++;
        }
    }
    free(tmp);
    m->map = used ? apsum / used : NAN;
    return LT_OK;
}

int lt_metrics_rank_ap(lt_metrics *m, int N, int C, const float *scores, const int32_t *labels)
{
    if (!m || !m->ap || !m->test_count || m->n_classes != C || N <= 0 || !scores || !labels)
        return lt_err(LT_EINVAL, "lt_metrics_rank_ap: needs the metrics of lt_metrics_compute on the same %d classes",
                      C);
    for (size_t k = 0; k < (size_t)N * C; k++)
        if (!isfinite(scores[k]))
            return lt_err(LT_ENUM, "lt_metrics_rank_ap: non-finite score at sample %zu, class %zu",
                          k / (size_t)C, k % (size_t)C);
    return rank_ap(m, N, C, scores, labels);
}

int lt_metrics_group_means(const lt_metrics *m, const uint8_t *group, int n_groups, double *acc,
                           double *ap, int *size)
{
    if (!m || !m->acc || !group || n_groups <= 0)
        return lt_err(LT_EINVAL, "lt_metrics_group_means: needs computed metrics, a group per class and n_groups > 0");
    for (int g = 0; g < n_groups; g++) {
        double sa = 0.0, sp = 0.0;
        int n = 0;
        for (int c = 0; c < m->n_classes; c++) {
            if (group[c] != g || !m->test_count[c]) continue;
            sa += m->acc[c];
            sp += m->ap[c];   /* NAN throughout when AP was not computed */
            n++;
        }
        if (acc) acc[g] = n ? sa / n : NAN;
        if (ap) ap[g] = n ? sp / n : NAN;
        if (size) size[g] = n;
    }
    return LT_OK;
}

int lt_metrics_compute(lt_metrics *m, int N, int C, const float *probs, const int32_t *labels,
                       const long *train_counts, int compute_map)
{
    if (!m) return lt_err(LT_EINVAL, "lt_metrics_compute: NULL metrics struct");
    /* m is output only: arrays from an earlier call must have been released
     * with lt_metrics_free. Zeroing first makes lt_metrics_free safe after
     * any failure below. */
    memset(m, 0, sizeof *m);
    if (N <= 0 || C <= 0)
        return lt_err(LT_EINVAL, "lt_metrics_compute: need N > 0 samples and C > 0 classes (got N=%d, C=%d)", N, C);
    if (!probs || !labels) return lt_err(LT_EINVAL, "lt_metrics_compute: NULL probs or labels");
    for (int i = 0; i < N; i++)
        if (labels[i] < 0 || labels[i] >= C)
            return lt_err(LT_EINVAL, "lt_metrics_compute: label %d of sample %d outside [0, %d)", (int)labels[i], i, C);
    for (size_t k = 0; k < (size_t)N * C; k++)
        if (!isfinite(probs[k]))
            return lt_err(LT_ENUM, "lt_metrics_compute: non-finite score at sample %zu, class %zu",
                          k / (size_t)C, k % (size_t)C);
    if (train_counts)
        for (int c = 0; c < C; c++)
            if (train_counts[c] < 0)
                return lt_err(LT_EINVAL, "lt_metrics_compute: negative training count %ld for class %d",
                              train_counts[c], c);

    m->n_classes = C;
    m->test_count = calloc((size_t)C, sizeof *m->test_count);
    m->correct = calloc((size_t)C, sizeof *m->correct);
    m->acc = calloc((size_t)C, sizeof *m->acc);
    m->ap = calloc((size_t)C, sizeof *m->ap);
    long *predicted = calloc((size_t)C, sizeof *predicted);
    float *conf = malloc((size_t)N * sizeof *conf);
    uint8_t *ok = malloc((size_t)N);
    int rc = LT_OK;
    if (!m->test_count || !m->correct || !m->acc || !m->ap || !predicted || !conf || !ok) {
        rc = lt_err(LT_ENOMEM, "lt_metrics_compute: out of memory (N=%d, C=%d)", N, C);
        goto out;
    }

    /* Prediction = argmax with ties to the lowest index (strict >). */
    long hits = 0;
    for (int i = 0; i < N; i++) {
        const float *p = probs + (size_t)i * C;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (p[c] > p[best]) best = c;
        conf[i] = p[best];
        ok[i] = (best == labels[i]);
        hits += ok[i];
        m->test_count[labels[i]]++;
        m->correct[labels[i]] += ok[i];
        predicted[best]++;
    }
    m->top1 = (double)hits / N;

    /* Per-class accuracy and shot groups. group_size counts the classes that
     * were averaged, so group_size == 0 exactly when group_acc is NAN (a
     * group with no classes, or none of them in the test set). Without
     * training counts no group can be formed. */
    double gsum[3] = {0, 0, 0};
    for (int c = 0; c < C; c++) {
        m->acc[c] = m->test_count[c] ? (double)m->correct[c] / m->test_count[c] : NAN;
        if (train_counts && m->test_count[c]) {
            int g = lt_shot_group(train_counts[c]);
            gsum[g] += m->acc[c];
            m->group_size[g]++;
        }
    }
    for (int g = 0; g < 3; g++) m->group_acc[g] = m->group_size[g] ? gsum[g] / m->group_size[g] : NAN;
    {
        double s = 0.0;
        int n = 0;
        for (int c = 0; c < C; c++)
            if (m->test_count[c]) { s += m->acc[c]; n++; }
        m->class_mean_acc = n ? s / n : NAN;   /* n >= 1 since N > 0 */
    }

    m->ece = lt_ece(N, conf, ok, 15);

    /* Macro-F1 as sklearn f1_score(average='macro', zero_division=0): the
     * classes averaged are those present in y_true or y_pred; a class that
     * is in neither is skipped. F1 = 2TP / (2TP + FP + FN), which is 0 for
     * a class with TP = 0 (also when it is only predicted, or never
     * predicted) — the same as the P/R form with 0/0 := 0. */
    {
        double f1sum = 0.0;
        int used = 0;
        for (int c = 0; c < C; c++) {
            long tp = m->correct[c];
            long fn = m->test_count[c] - tp;
            long fp = predicted[c] - tp;
            if (m->test_count[c] == 0 && predicted[c] == 0) continue;
            f1sum += (2.0 * tp) / (2.0 * tp + fp + fn);
            used++;
        }
        m->macro_f1 = used ? f1sum / used : NAN; /* used >= 1 since N > 0 */
    }

    for (int c = 0; c < C; c++) m->ap[c] = NAN;
    m->map = NAN;
    if (compute_map) rc = rank_ap(m, N, C, probs, labels);

out:
    free(predicted);
    free(conf);
    free(ok);
    if (rc != LT_OK) {
        lt_metrics_free(m);
        memset(m, 0, sizeof *m);
    }
    return rc;
}
