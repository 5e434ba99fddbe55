/* lt_centroids.h — a class-centroid table and the pieces of a centroid
 * contrastive loss (ICCL, issue 17; the prototypes of PCL / MoPro): C unit
 * vectors of d floats, one per class, kept by the caller ([C x d],
 * row-major), updated without gradient from embeddings of real samples, and
 * the similarity logits of L2-normalised embeddings against them with their
 * gradient. Included by lt.h; methods reach it through lt.h only.
 *
 * Conventions as lt_kit.h: nothing here allocates (per-iteration calls take
 * caller memory), random numbers come from the caller's lt_rng, and
 * summations run in double in a fixed order, so results do not depend on
 * the thread count. */
#ifndef LT_CENTROIDS_H
#define LT_CENTROIDS_H

#include "lt_base.h"
#include "lt_rng.h"

/* Random unit vectors: N(0, 1) entries drawn row by row from rng, each row
 * L2-normalised (the centroids before any class has been seen). */
void lt_centroids_random(int C, int d, float *cent, lt_rng *rng);

/* Per-update EMA, rows in order: for i = 0..n-1,
 *   c_{y_i} <- normalise(mu * c_{y_i} + (1 - mu) * z_i)
 * (a zero sum leaves the centroid unchanged). A later row of the same class
 * sees the earlier rows' updates, so the result depends on row order, which
 * is the caller's (deterministic) order. LT_EINVAL for a label outside
 * [0, C) or mu outside [0, 1], before anything changes. */
int lt_centroids_ema(int C, int d, float *cent, int n, const float *z, const int32_t *y, float mu);

/* Class sums for a mean estimate: sum[y_i] += z_i (double), count[y_i]++.
 * LT_EINVAL for a label outside [0, C), before anything changes. */
int lt_centroids_accum(int C, int d, double *sum, long *count, int n, const float *z, const int32_t *y);
/* cent_k = sum_k / |sum_k| for every class with count_k > 0 and a non-zero
 * sum; other rows are left as they are. Returns the number of rows set. */
int lt_centroids_from_sums(int C, int d, const double *sum, const long *count, float *cent);

/* Similarity logits s[i][k] = <z_i, c_k> * inv_tau ([n x C]), and the
 * gradient they pass back to z: dz_i = inv_tau * sum_k ds[i][k] c_k
 * (overwrites dz [n x d]). The centroids are constants (no gradient). */
void lt_centroids_logits(int n, int C, int d, const float *z, const float *cent, float inv_tau, float *s);
void lt_centroids_logits_backward(int n, int C, int d, const float *ds, const float *cent, float inv_tau,
                                  float *dz);

/* The backward of lt_l2_normalize_rows (lt_kit.h: y = x / max(|x|, eps)):
 * dx_i = (dy_i - y_i <y_i, dy_i>) / |x_i| where |x_i| > eps, dy_i / eps
 * otherwise (the clamped branch is linear). dx may be dy. */
void lt_l2_normalize_rows_backward(int n, int d, const float *x, const float *y, const float *dy, float eps,
                                   float *dx);

#endif
