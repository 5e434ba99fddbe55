/* lt_loss.c — classification losses with their analytic gradients.
 *
 * Conventions shared by every loss here (see lt_loss.h):
 *  - the returned loss is the mean over the N rows (sum / N, also when
 *    per-sample weights are given), accumulated in double;
 *  - the gradient buffer is overwritten, already divided by N;
 *  - non-finite inputs or a non-finite result give LT_ENUM, malformed
 *    arguments (sizes, labels, temperature) give LT_EINVAL.
 * Rows are processed serially: the losses are cheap next to the network, and
 * a fixed summation order keeps the loss value bit-reproducible. */
#include "lt_loss.h"

#include <math.h>

/* Shared argument checks: positive sizes and the pointers every loss needs. */
static int check_dims(const char *fn, int N, int C, const void *x, double *loss) {
    if (N <= 0 || C <= 0) return lt_err(LT_EINVAL, "%s: N=%d C=%d must be positive", fn, N, C);
    if (!x || !loss) return lt_err(LT_EINVAL, "%s: NULL input or loss pointer", fn);
    return LT_OK;
}

/* A per-class offset vector must be finite: log n_j of a class with zero
 * training images is -inf, and the caller has to decide what that means. */
static int check_offsets(const char *fn, int C, const float *offsets) {
    if (!offsets) return LT_OK;
    for (int j = 0; j < C; j++)
        if (!isfinite(offsets[j]))
            return lt_err(LT_ENUM, "%s: offset[%d] = %g is not finite", fn, j, (double)offsets[j]);
    return LT_OK;
}

int lt_softmax_ce(int N, int C, const float *logits, const int32_t *labels,
                  const float *offsets, const float *weights, double *loss, float *dlogits) {
    static const char fn[] = "softmax_ce";
    LT_TRY(check_dims(fn, N, C, logits, loss));
    if (!labels) return lt_err(LT_EINVAL, "%s: NULL labels", fn);
    /* Argument errors are caught before any gradient is written; a
     * non-finite logit is found row by row and leaves dlogits undefined. */
    for (int i = 0; i < N; i++)
        if (labels[i] < 0 || labels[i] >= C)
            return lt_err(LT_EINVAL, "%s: label[%d] = %d outside [0, %d)", fn, i, (int)labels[i], C);
    LT_TRY(check_offsets(fn, C, offsets));
    if (weights)
        for (int i = 0; i < N; i++)
            if (!isfinite(weights[i]))
                return lt_err(LT_ENUM, "%s: weight[%d] = %g is not finite", fn, i, (double)weights[i]);

    double total = 0.0;
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * C;
        double m = -INFINITY;
        for (int j = 0; j < C; j++) {
            if (!isfinite(z[j]))
                return lt_err(LT_ENUM, "%s: logit[%d,%d] = %g is not finite", fn, i, j, (double)z[j]);
            double zj = (double)z[j] + (offsets ? offsets[j] : 0.0);
            if (zj > m) m = zj;
        }
        /* exp(z - max) <= 1, so the sum cannot overflow; it is >= 1 (the max
         * term), so its log is safe. The exponentials are parked in dlogits
         * (float is plenty for values in [0,1]) to avoid computing them twice. */
        double s = 0.0;
        float *g = dlogits ? dlogits + (size_t)i * C : NULL;
        for (int j = 0; j < C; j++) {
            double e = exp((double)z[j] + (offsets ? offsets[j] : 0.0) - m);
            s += e;
            if (g) g[j] = (float)e;
        }
        int y = labels[i];
        double lse = m + log(s);
        double zy = (double)z[y] + (offsets ? offsets[y] : 0.0);
        double w = weights ? weights[i] : 1.0;
        total += w * (lse - zy);
        if (g) {
            double scale = w / (s * N);
            for (int j = 0; j < C; j++) g[j] = (float)(g[j] * scale);
            g[y] = (float)((double)g[y] - w / N);
        }
    }
    *loss = total / N;
    if (!isfinite(*loss)) return lt_err(LT_ENUM, "%s: loss is not finite (%g)", fn, *loss);
    return LT_OK;
}

int lt_soft_ce(int N, int C, const float *logits, const float *targets, float T, int kl,
               double *loss, float *dlogits) {
    static const char fn[] = "soft_ce";
    LT_TRY(check_dims(fn, N, C, logits, loss));
    if (!targets) return lt_err(LT_EINVAL, "%s: NULL targets", fn);
    if (!(T > 0.0f) || !isfinite(T)) return lt_err(LT_EINVAL, "%s: temperature %g must be > 0", fn, (double)T);
    for (size_t k = 0; k < (size_t)N * C; k++) {
        if (!isfinite(targets[k]))
            return lt_err(LT_ENUM, "%s: target[%zu] = %g is not finite", fn, k, (double)targets[k]);
        if (kl && targets[k] < 0.0f)
            return lt_err(LT_EINVAL, "%s: KL needs targets >= 0, target[%zu] = %g", fn, k,
                          (double)targets[k]);
    }

    const double invT = 1.0 / T, T2 = (double)T * T;
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * C;
        const float *q = targets + (size_t)i * C;
        double m = -INFINITY;
        for (int j = 0; j < C; j++) {
            if (!isfinite(z[j]))
                return lt_err(LT_ENUM, "%s: logit[%d,%d] = %g is not finite", fn, i, j, (double)z[j]);
            double u = z[j] * invT;
            if (u > m) m = u;
        }
        double s = 0.0;
        float *g = dlogits ? dlogits + (size_t)i * C : NULL;
        for (int j = 0; j < C; j++) {
            double e = exp(z[j] * invT - m);
            s += e;
            if (g) g[j] = (float)e;
        }
        double lse = m + log(s);
        /* row loss = -sum_j q_j (z_j/T - lse); Q = sum_j q_j is kept instead of
         * assuming 1 so the gradient is exact for whatever targets arrive:
         * d/dz_j [T^2 * row] = T (Q p_j - q_j). */
        double row = 0.0, Q = 0.0;
        for (int j = 0; j < C; j++) {
            double qj = q[j];
            Q += qj;
            row -= qj * (z[j] * invT - lse);
            if (kl && qj > 0.0) row += qj * log(qj);   /* 0 log 0 = 0 */
        }
        total += T2 * row;
        if (g) {
            double a = (double)T * Q / (s * N), b = (double)T / N;
            for (int j = 0; j < C; j++) g[j] = (float)(g[j] * a - q[j] * b);
        }
    }
    *loss = total / N;
    if (!isfinite(*loss)) return lt_err(LT_ENUM, "%s: loss is not finite (%g)", fn, *loss);
    return LT_OK;
}

/* softplus(z) = log(1 + e^z) without overflow for large |z|. */
static double softplus(double z) { return (z > 0.0 ? z : 0.0) + log1p(exp(-fabs(z))); }

/* sigmoid(z) without overflow: only ever exponentiate a non-positive number. */
static double sigmoid(double z) {
    if (z >= 0.0) return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

int lt_log_count_offsets(int C, const long *counts, float *offsets, int *n_excluded)
{
    if (C <= 0 || !counts || !offsets) return lt_err(LT_EINVAL, "log-count offsets: need C > 0, counts and offsets");
    int excluded = 0;
    for (int j = 0; j < C; j++) {
        if (counts[j] < 0) return lt_err(LT_EINVAL, "class %d has count %ld", j, counts[j]);
        excluded += counts[j] == 0;
    }
    if (excluded == C) return lt_err(LT_EINVAL, "every class has 0 training images");
    for (int j = 0; j < C; j++) offsets[j] = counts[j] > 0 ? (float)log((double)counts[j]) : LT_OFFSET_EXCLUDED;
    if (n_excluded) *n_excluded = excluded;
    return LT_OK;
}

static double log_sigmoid(double z) { return (z < 0.0 ? z : 0.0) - log1p(exp(-fabs(z))); }

void lt_sigmoid_norm_rows(int N, int C, const float *z, float *q)
{
    for (int i = 0; i < N; i++) {
        const float *r = z + (size_t)i * C;
        float *o = q + (size_t)i * C;
        double mx = -INFINITY, s = 0.0;
        for (int j = 0; j < C; j++) {
            const double l = log_sigmoid(r[j]);
            mx = l > mx ? l : mx;
        }
        for (int j = 0; j < C; j++) s += exp(log_sigmoid(r[j]) - mx);
        for (int j = 0; j < C; j++) o[j] = (float)(exp(log_sigmoid(r[j]) - mx) / s);
    }
}

int lt_sigmoid_bce(int N, int C, const float *logits, const float *targets,
                   const float *offsets, double *loss, float *dlogits) {
    static const char fn[] = "sigmoid_bce";
    LT_TRY(check_dims(fn, N, C, logits, loss));
    if (!targets) return lt_err(LT_EINVAL, "%s: NULL targets", fn);
    LT_TRY(check_offsets(fn, C, offsets));
    for (size_t k = 0; k < (size_t)N * C; k++)
        if (!isfinite(targets[k]))
            return lt_err(LT_ENUM, "%s: target[%zu] = %g is not finite", fn, k, (double)targets[k]);

    double total = 0.0;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < C; j++) {
            size_t k = (size_t)i * C + j;
            if (!isfinite(logits[k]))
                return lt_err(LT_ENUM, "%s: logit[%d,%d] = %g is not finite", fn, i, j,
                              (double)logits[k]);
            double z = (double)logits[k] + (offsets ? offsets[j] : 0.0);
            double y = targets[k];
            total += softplus(z) - y * z;
            if (dlogits) dlogits[k] = (float)((sigmoid(z) - y) / N);
        }
    }
    *loss = total / N;
    if (!isfinite(*loss)) return lt_err(LT_ENUM, "%s: loss is not finite (%g)", fn, *loss);
    return LT_OK;
}

int lt_cosine_distance(int N, int D, const float *a, const float *b, float eps, double *loss,
                       float *da, float *db) {
    static const char fn[] = "cosine_distance";
    LT_TRY(check_dims(fn, N, D, a, loss));
    if (!b) return lt_err(LT_EINVAL, "%s: NULL second input", fn);
    if (!(eps >= 0.0f) || !isfinite(eps)) return lt_err(LT_EINVAL, "%s: eps %g must be >= 0", fn, (double)eps);

    double total = 0.0;
    for (int i = 0; i < N; i++) {
        const float *x = a + (size_t)i * D, *y = b + (size_t)i * D;
        double dot = 0.0, xx = 0.0, yy = 0.0;
        for (int k = 0; k < D; k++) {
            if (!isfinite(x[k]) || !isfinite(y[k]))
                return lt_err(LT_ENUM, "%s: input[%d,%d] is not finite", fn, i, k);
            dot += (double)x[k] * y[k];
            xx += (double)x[k] * x[k];
            yy += (double)y[k] * y[k];
        }
        /* Each norm is clamped to eps separately (PyTorch's cosine_similarity):
         * a clamped norm is a constant, so its vector gets no radial term. */
        double nx = sqrt(xx), ny = sqrt(yy);
        int cx = nx < eps, cy = ny < eps;
        if (cx) nx = eps;
        if (cy) ny = eps;
        double inv = 1.0 / (nx * ny);
        double c = dot * inv;
        if (!isfinite(c))
            return lt_err(LT_ENUM, "%s: row %d has a zero norm and eps = %g", fn, i, (double)eps);
        total += 1.0 - c;
        /* d(1 - cos)/dx = -(y/(|x||y|) - cos x/|x|^2), then / N. */
        double rx = cx ? 0.0 : c / (nx * nx), ry = cy ? 0.0 : c / (ny * ny);
        if (da) {
            float *g = da + (size_t)i * D;
            for (int k = 0; k < D; k++) g[k] = (float)(-(y[k] * inv - x[k] * rx) / N);
        }
        if (db) {
            float *g = db + (size_t)i * D;
            for (int k = 0; k < D; k++) g[k] = (float)(-(x[k] * inv - y[k] * ry) / N);
        }
    }
    *loss = total / N;
    if (!isfinite(*loss)) return lt_err(LT_ENUM, "%s: loss is not finite (%g)", fn, *loss);
    return LT_OK;
}
