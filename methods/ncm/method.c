/* ncm — nearest class mean classifier (Kang et al., "Decoupling
 * Representation and Classifier for Long-Tailed Recognition", ICLR 2020;
 * the official code's models/KNNClassifier.py and
 * run_networks.py::get_knncentroids).
 *
 * No training of its own: the only stage is the shared CE stage 1
 * (stage1_from = "ce", n_stages = 1). post_train computes class centroids
 * from the feature bank (every training image, test-time transform, model in
 * inference mode — the official code's `train_plain`); predict scores the
 * "feat" tap against them. Two variants (hparam "variant"):
 *
 *   "l2n_cos" (default, PROTOCOLS.md fmnist_lt): centroid c_j = the mean of
 *     the L2-normalised training features of class j, L2-normalised again;
 *     score_j = <f/|f|, c_j/|c_j|>, the cosine similarity.
 *   "cl2n_l2" (the official code's default feat_type = cl2n, dist_type = l2):
 *     g = the mean of all training features; x' = (x - g)/|x - g|; centroid
 *     c_j = the mean of x' over class j, NOT renormalised;
 *     score_j = -|f' - c_j|^2 (the code returns the negative squared distance).
 *
 * Scores go to the runner as LT_SCORES_SCORES: similarities, not logits, so
 * the raw ECE is null and NCM's calibration is ece_ts (a temperature fitted
 * on the validation split; README). Zero
 * norms are clamped to 1e-12 (PyTorch F.normalize); the official numpy code
 * divides without a guard. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define NCM_DEFAULTS "{\"variant\": \"l2n_cos\"}"
#define NCM_EPS 1e-12

enum { NCM_L2N_COS = 0, NCM_CL2N_L2 = 1 };

typedef struct {
    const lt_run_info *run;
    int C, D;
    int variant;
    float *cent;        /* [C x D] centroids (unit rows for l2n_cos) */
    double *gmean;      /* [D] global training-feature mean (cl2n_l2) */
    double *xd;         /* [D] scratch: one transformed feature */
    float *csq;         /* [C] |c_j|^2 (cl2n_l2) */
    int ready;
    /* predict scratch, sized for the largest batch seen (grown outside the
     * training loop: predict runs only at evaluation) */
    float *xs; int xs_rows;
} ncm_state;

static int ncm_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    ncm_state *st = stp;
    const char *v;
    st->run = run;
    st->C = run->n_classes;
    st->D = run->feat_dim;
    if (st->C <= 0 || st->D <= 0)
        return lt_err(LT_EINVAL, "ncm: %d classes, feature size %d", st->C, st->D);
    LT_TRY(lt_hp_str(hp, "variant", &v));
    if (!strcmp(v, "l2n_cos")) st->variant = NCM_L2N_COS;
    else if (!strcmp(v, "cl2n_l2")) st->variant = NCM_CL2N_L2;
    else return lt_err(LT_EINVAL, "ncm: hparam 'variant' is '%s' (expected l2n_cos or cl2n_l2)", v);
    st->cent = lt_alloc((size_t)st->C * st->D * sizeof(float));
    st->gmean = lt_alloc((size_t)st->D * sizeof(double));
    st->xd = lt_alloc((size_t)st->D * sizeof(double));
    st->csq = lt_alloc((size_t)st->C * sizeof(float));
    if (!st->cent || !st->gmean || !st->xd || !st->csq) return lt_err(LT_ENOMEM, "ncm: out of memory");
    return LT_OK;
}

static void ncm_fini(void *stp) {
    ncm_state *st = stp;
    lt_free(st->cent); lt_free(st->gmean); lt_free(st->xd); lt_free(st->csq); lt_free(st->xs);
    st->cent = st->csq = st->xs = NULL;
    st->gmean = st->xd = NULL;
}

static int ncm_n_stages(const void *st) { (void)st; return 1; }

/* out = (x - g) / max(|x - g|, eps) in double; g may be NULL. */
static void transform(int D, const float *x, const double *g, double *out) {
    double s = 0;
    for (int d = 0; d < D; d++) {
        out[d] = x[d] - (g ? g[d] : 0.0);
        s += out[d] * out[d];
    }
    double n = sqrt(s);
    if (n < NCM_EPS) n = NCM_EPS;
    for (int d = 0; d < D; d++) out[d] /= n;
}

static int ncm_post_train(void *stp, lt_model *m, const lt_feature_bank *fb) {
    ncm_state *st = stp;
    const int C = st->C, D = st->D;
    (void)m;
    if (!fb) return lt_err(LT_ESTATE, "ncm: no feature bank (LT_METHOD_NEEDS_FEATURE_BANK)");
    if (fb->feat_dim != D || fb->n_classes != C)
        return lt_err(LT_ESHAPE, "ncm: feature bank is %d x %d classes, expected %d x %d", fb->feat_dim,
                      fb->n_classes, D, C);
    double *sum = calloc((size_t)C * D, sizeof *sum), *g = calloc((size_t)D, sizeof *g);
    double *x = malloc((size_t)D * sizeof *x);
    long *cnt = calloc((size_t)C, sizeof *cnt);
    int rc = LT_OK;
    if (!sum || !g || !x || !cnt) { rc = lt_err(LT_ENOMEM, "ncm: out of memory"); goto out; }
    if (st->variant == NCM_CL2N_L2) {
        if (fb->n <= 0) { rc = lt_err(LT_EINVAL, "ncm: empty feature bank"); goto out; }
        for (long i = 0; i < fb->n; i++)
            for (int d = 0; d < D; d++) g[d] += fb->feat[(size_t)i * D + d];
        for (int d = 0; d < D; d++) g[d] /= (double)fb->n;
    }
    for (long i = 0; i < fb->n; i++) {
        int32_t y = fb->labels[i];
        if (y < 0 || y >= C) { rc = lt_err(LT_EDATA, "ncm: feature bank label %d out of range", (int)y); goto out; }
        transform(D, fb->feat + (size_t)i * D, st->variant == NCM_CL2N_L2 ? g : NULL, x);
        for (int d = 0; d < D; d++) sum[(size_t)y * D + d] += x[d];
        cnt[y]++;
    }
    for (int j = 0; j < C; j++) {
        /* A class without training images keeps a zero centroid (score 0 for
         * cosine, |f'|^2 = 1 for the distance): it cannot be the nearest mean
         * of anything on purpose, and no protocol here has such a class. */
        double inv = cnt[j] ? 1.0 / (double)cnt[j] : 0.0, s = 0;
        for (int d = 0; d < D; d++) {
            sum[(size_t)j * D + d] *= inv;
            s += sum[(size_t)j * D + d] * sum[(size_t)j * D + d];
        }
        double k = 1.0;
        if (st->variant == NCM_L2N_COS) {
            double n = sqrt(s);
            k = 1.0 / (n < NCM_EPS ? NCM_EPS : n);
            s *= k * k;
        }
        for (int d = 0; d < D; d++) st->cent[(size_t)j * D + d] = (float)(sum[(size_t)j * D + d] * k);
        st->csq[j] = (float)s;
    }
    for (int d = 0; d < D; d++) st->gmean[d] = g[d];
    st->ready = 1;
    if (st->run && st->run->log) {
        long empty = 0;
        for (int j = 0; j < C; j++) empty += cnt[j] == 0;
        st->run->log(st->run->host, "ncm_classes_without_images", (double)empty);
    }
out:
    free(sum); free(g); free(x); free(cnt);
    return rc;
}

static int ncm_predict(void *stp, const lt_taps *t, float *scores, int *kind) {
    ncm_state *st = stp;
    const int C = st->C, D = st->D;
    if (!st->ready) return lt_err(LT_ESTATE, "ncm: predict before post_train");
    if (t->feat_dim != D || t->n_classes != C)
        return lt_err(LT_ESHAPE, "ncm: taps are %d features x %d classes, expected %d x %d", t->feat_dim,
                      t->n_classes, D, C);
    if (t->n > st->xs_rows) {
        lt_free(st->xs);
        st->xs = lt_alloc((size_t)t->n * D * sizeof(float));
        if (!st->xs) { st->xs_rows = 0; return lt_err(LT_ENOMEM, "ncm: out of memory"); }
        st->xs_rows = t->n;
    }
    /* Transformed test features (the same transform, in double, as the
     * training ones), then one matrix product with the centroids. */
    for (int i = 0; i < t->n; i++) {
        transform(D, t->feat + (size_t)i * D, st->variant == NCM_CL2N_L2 ? st->gmean : NULL, st->xd);
        for (int d = 0; d < D; d++) st->xs[(size_t)i * D + d] = (float)st->xd[d];
    }
    lt_linear_forward(t->n, D, C, st->xs, st->cent, NULL, scores);
    if (st->variant == NCM_CL2N_L2) {
        /* -|x - c|^2 = 2 x.c - |x|^2 - |c|^2, with |x| = 1 unless x was the zero vector. */
        for (int i = 0; i < t->n; i++) {
            const float *o = st->xs + (size_t)i * D;
            double xx = 0;
            for (int d = 0; d < D; d++) xx += (double)o[d] * o[d];
            for (int j = 0; j < C; j++) {
                float *s = &scores[(size_t)i * C + j];
                *s = (float)(2.0 * *s - xx - st->csq[j]);
            }
        }
    }
    *kind = LT_SCORES_SCORES;
    return LT_OK;
}

/* Centroids (and the global mean) once computed; nothing before. */
static int ncm_save(const void *stp, lt_ckpt_writer *w, const char *prefix) {
    const ncm_state *st = stp;
    char key[160];
    if (!st->ready) return LT_OK;
    snprintf(key, sizeof key, "%scentroids", prefix);
    LT_TRY(lt_ckpt_put(w, key, st->cent, (size_t)st->C * st->D * sizeof(float)));
    snprintf(key, sizeof key, "%sglobal_mean", prefix);
    LT_TRY(lt_ckpt_put(w, key, st->gmean, (size_t)st->D * sizeof(double)));
    snprintf(key, sizeof key, "%scentroid_sq", prefix);
    return lt_ckpt_put(w, key, st->csq, (size_t)st->C * sizeof(float));
}

static int ncm_load(void *stp, const lt_ckpt *c, const char *prefix) {
    ncm_state *st = stp;
    char k1[160], k2[160], k3[160];
    snprintf(k1, sizeof k1, "%scentroids", prefix);
    snprintf(k2, sizeof k2, "%sglobal_mean", prefix);
    snprintf(k3, sizeof k3, "%scentroid_sq", prefix);
    if (!lt_ckpt_has(c, k1) || !lt_ckpt_has(c, k2) || !lt_ckpt_has(c, k3)) return LT_OK;
    LT_TRY(lt_ckpt_get_into(c, k1, st->cent, (size_t)st->C * st->D * sizeof(float)));
    LT_TRY(lt_ckpt_get_into(c, k2, st->gmean, (size_t)st->D * sizeof(double)));
    LT_TRY(lt_ckpt_get_into(c, k3, st->csq, (size_t)st->C * sizeof(float)));
    st->ready = 1;
    return LT_OK;
}

/* NCM's classifier is its centroids: their norms (1 for the unit centroids
 * of l2n_cos, varying for cl2n_l2, 0 for a class without training images);
 * NAN before post_train. */
static int ncm_class_norms(const void *stp, lt_model *m, int n_classes, double *norms) {
    const ncm_state *st = stp;
    (void)m;
    if (n_classes != st->C) return lt_err(LT_ESHAPE, "ncm: %d classes asked, the run has %d", n_classes, st->C);
    for (int j = 0; j < st->C; j++) {
        double s = 0;
        for (int d = 0; d < st->D; d++)
            s += (double)st->cent[(size_t)j * st->D + d] * st->cent[(size_t)j * st->D + d];
        norms[j] = st->ready ? sqrt(s) : NAN;
    }
    return LT_OK;
}

const lt_method *lt_method_ncm(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "ncm",
        .version = "2",  /* 2: predict reports LT_SCORES_SCORES (similarities / negative distances are no logits: raw ECE null) */
        .cite = "Kang et al., ICLR 2020, arXiv:1910.09217",
        .fidelity = "paper",
        .defaults = NCM_DEFAULTS,
        .state_size = sizeof(ncm_state),
        .flags = LT_METHOD_NEEDS_FEATURE_BANK,
        .stage1_from = "ce",
        .init = ncm_init,
        .fini = ncm_fini,
        .n_stages = ncm_n_stages,
        .post_train = ncm_post_train,
        .predict = ncm_predict,
        .save = ncm_save,
        .load = ncm_load,
        .class_norms = ncm_class_norms,
    };
    return &m;
}
