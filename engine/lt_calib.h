/* lt_calib.h — temperature scaling (Guo et al., ICML 2017): one T > 0 for
 * softmax(s / T), fitted by the NLL of held-out scores, and the top-label
 * confidences of the scaled softmax for ECE. */
#ifndef LT_CALIB_H
#define LT_CALIB_H

#include "lt_base.h"

/* Bracket of the fit, in T. A fit that ends on an edge is reported as such
 * (the NLL still falls beyond it: e.g. a separable validation set). */
#define LT_TEMP_MIN 1e-4
#define LT_TEMP_MAX 1e4

/* Mean over the N rows of -log softmax(s_i / T)[y_i]; scores [N x C], all
 * accumulation in double, max subtracted first. NAN for N <= 0, T <= 0, a
 * label out of range or a non-finite score. */
double lt_temp_nll(int N, int C, const float *scores, const int32_t *labels, double T);

/* The T in [LT_TEMP_MIN, LT_TEMP_MAX] minimising lt_temp_nll: golden-section
 * search on log T (the NLL is convex in 1/T, so unimodal in log T),
 * deterministic, to 1e-9 in log T. *at_bound = 1 when it ended on an edge.
 * nll_before (T = 1) and nll_after may be NULL. LT_EINVAL on bad input. */
int lt_temp_fit(int N, int C, const float *scores, const int32_t *labels, double *T, double *nll_before,
                double *nll_after, int *at_bound);

/* Per row: the top-label confidence of softmax(s_i / T) and whether its
 * prediction (argmax s_i, lowest index on ties: the temperature never
 * changes the ranking) equals labels[i]. labels may be NULL (correct = 0). */
int lt_temp_conf(int N, int C, const float *scores, const int32_t *labels, double T, float *conf,
                 uint8_t *correct);

#endif
