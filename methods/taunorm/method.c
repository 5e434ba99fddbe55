/* taunorm — the tau-normalised classifier (Kang et al., "Decoupling
 * Representation and Classifier for Long-Tailed Recognition", ICLR 2020;
 * the official code's tau_norm.py).
 *
 * No training of its own: the only stage is the shared CE stage 1
 * (stage1_from = "ce", n_stages = 1, so the runner loads CE's final model and
 * has nothing left to train). post_train rescales each row of the joint
 * classifier, w~_j = w_j / ||w_j||^tau, and drops the bias; predict scores
 * f . w~_j on the "feat" tap. The rescaled classifier lives in the method
 * state, not in the model, so evaluating the same trained model twice (a
 * re-evaluated run) can never normalise twice.
 *
 * tau: the hparam "tau" (PROTOCOLS.md fmnist_lt: 1), or, with
 * "select": "val", chosen on the grid 0, 0.1, ..., 2.0 by mean per-class
 * accuracy (tau_norm.py's "overall") on a validation split carved from the
 * training subset by the protocol's carve_from_train rule: per class c the
 * last min(val_max_per_class, floor(val_fraction * n_c)) images in the stored
 * subset order. The test set is never looked at. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define TAU_DEFAULTS \
    "{\"tau\": 1.0, \"select\": \"fixed\", \"val_fraction\": 0.1, \"val_max_per_class\": 20}"

#define TAU_GRID_N 21          /* 0, 0.1, ..., 2.0 */
#define TAU_GRID_STEP 0.1

typedef struct {
    const lt_run_info *run;
    int C, D;
    double tau;                /* the hparam, or the selected value after post_train */
    int select_val;
    double val_fraction;
    long val_max_per_class;
    float *wt;                 /* [C x D] the tau-normalised rows */
    int ready;                 /* wt holds the classifier (post_train ran or load restored it) */
} tau_state;

static int tau_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    tau_state *st = stp;
    const char *sel;
    st->run = run;
    st->C = run->n_classes;
    st->D = run->feat_dim;
    if (st->C <= 0 || st->D <= 0)
        return lt_err(LT_EINVAL, "taunorm: %d classes, feature size %d", st->C, st->D);
    LT_TRY(lt_hp_num(hp, "tau", &st->tau));
    LT_TRY(lt_hp_str(hp, "select", &sel));
    LT_TRY(lt_hp_num(hp, "val_fraction", &st->val_fraction));
    LT_TRY(lt_hp_int(hp, "val_max_per_class", &st->val_max_per_class));
    if (!strcmp(sel, "fixed")) st->select_val = 0;
    else if (!strcmp(sel, "val")) st->select_val = 1;
    else return lt_err(LT_EINVAL, "taunorm: hparam 'select' is '%s' (expected fixed or val)", sel);
    if (!isfinite(st->tau) || st->tau < 0)
        return lt_err(LT_EINVAL, "taunorm: hparam 'tau' must be a finite number >= 0, got %g", st->tau);
    if (!(st->val_fraction > 0 && st->val_fraction < 1) || st->val_max_per_class < 1)
        return lt_err(LT_EINVAL, "taunorm: val_fraction must be in (0, 1) and val_max_per_class >= 1 "
                      "(got %g, %ld)", st->val_fraction, st->val_max_per_class);
    st->wt = lt_alloc((size_t)st->C * st->D * sizeof(float));
    if (!st->wt) return lt_err(LT_ENOMEM, "taunorm: out of memory");
    return LT_OK;
}

static void tau_fini(void *stp) {
    tau_state *st = stp;
    lt_free(st->wt);
    st->wt = NULL;
}

static int tau_n_stages(const void *st) { (void)st; return 1; }

/* Row norms of W [C x D] in double. */
static void row_norms(int C, int D, const float *W, double *norm) {
    for (int j = 0; j < C; j++) {
        double s = 0;
        for (int d = 0; d < D; d++) s += (double)W[(size_t)j * D + d] * W[(size_t)j * D + d];
        norm[j] = sqrt(s);
    }
}

/* w~_j = w_j / ||w_j||^tau. A zero row stays zero (0 / 0^tau is undefined for
 * tau > 0; a zero row scores 0 either way). */
static void normalise_rows(int C, int D, const float *W, const double *norm, double tau, float *out) {
    for (int j = 0; j < C; j++) {
        double k = norm[j] > 0 ? 1.0 / pow(norm[j], tau) : 0.0;
        for (int d = 0; d < D; d++) out[(size_t)j * D + d] = (float)(W[(size_t)j * D + d] * k);
    }
}

/* Chooses tau on the carved validation split of the feature bank: mean
 * per-class accuracy of argmax_j (f . w_j) / ||w_j||^tau, first best on the
 * grid (so ties go to the smaller tau). */
static int select_tau(tau_state *st, const float *W, const double *norm, const lt_feature_bank *fb,
                      double *best_tau, double *best_acc) {
    const int C = st->C, D = st->D;
    long *n_c = calloc((size_t)C, sizeof *n_c), *k_c = calloc((size_t)C, sizeof *k_c);
    long *seen = calloc((size_t)C, sizeof *seen);
    int32_t *val = malloc((size_t)(fb->n > 0 ? fb->n : 1) * sizeof *val);
    float *dots = NULL, *fv = NULL;
    long *correct = calloc((size_t)C, sizeof *correct);
    int rc = LT_OK;
    long nv = 0;
    if (!n_c || !k_c || !seen || !val || !correct) { rc = lt_err(LT_ENOMEM, "taunorm: out of memory"); goto out; }
    for (long i = 0; i < fb->n; i++) {
        int32_t y = fb->labels[i];
        if (y < 0 || y >= C) { rc = lt_err(LT_EDATA, "taunorm: feature bank label %d out of range", (int)y); goto out; }
        n_c[y]++;
    }
    for (int c = 0; c < C; c++) {
        long k = (long)floor(st->val_fraction * (double)n_c[c]);
        k_c[c] = k < st->val_max_per_class ? k : st->val_max_per_class;
    }
    /* The last k_c images of class c in the stored (bank) order. */
    for (long i = 0; i < fb->n; i++) {
        int32_t y = fb->labels[i];
        if (seen[y]++ >= n_c[y] - k_c[y]) val[nv++] = (int32_t)i;
    }
    if (nv == 0) { rc = lt_err(LT_EINVAL, "taunorm: the carved validation split is empty"); goto out; }
    dots = malloc((size_t)nv * C * sizeof *dots);
    fv = malloc((size_t)nv * D * sizeof *fv);
    if (!dots || !fv) { rc = lt_err(LT_ENOMEM, "taunorm: out of memory"); goto out; }
    for (long v = 0; v < nv; v++) memcpy(fv + (size_t)v * D, fb->feat + (size_t)val[v] * D, (size_t)D * sizeof(float));
    lt_linear_forward((int)nv, D, C, fv, W, NULL, dots);
    *best_acc = -1;
    *best_tau = 0;
    for (int g = 0; g < TAU_GRID_N; g++) {
        double tau = g * TAU_GRID_STEP, acc = 0;
        int n_groups = 0;
        memset(correct, 0, (size_t)C * sizeof *correct);
        for (long v = 0; v < nv; v++) {
            int arg = 0;
            double best = -INFINITY;
            for (int j = 0; j < C; j++) {
                double s = norm[j] > 0 ? dots[(size_t)v * C + j] / pow(norm[j], tau) : 0.0;
                if (s > best) { best = s; arg = j; }
            }
            if (arg == fb->labels[val[v]]) correct[arg]++;
        }
        for (int c = 0; c < C; c++)
            if (k_c[c] > 0) { acc += (double)correct[c] / (double)k_c[c]; n_groups++; }
        acc /= n_groups;
        if (acc > *best_acc) { *best_acc = acc; *best_tau = tau; }
    }
    if (st->run && st->run->log) {
        st->run->log(st->run->host, "tau_val_images", (double)nv);
        st->run->log(st->run->host, "tau_val_mean_class_acc", *best_acc);
    }
out:
    free(n_c); free(k_c); free(seen); free(val); free(dots); free(fv); free(correct);
    return rc;
}

static int tau_post_train(void *stp, lt_model *m, const lt_feature_bank *fb) {
    tau_state *st = stp;
    const int C = st->C, D = st->D;
    lt_param_info p;
    if (lt_model_param_find(m, "logits.weight", &p)) return lt_err(LT_ESTATE, "taunorm: the model has no 'logits.weight'");
    if (p.count != (size_t)C * D)
        return lt_err(LT_ESHAPE, "taunorm: 'logits.weight' has %zu values, expected %d x %d", p.count, C, D);
    const float *W = p.w;
    double *norm = malloc((size_t)C * sizeof *norm);
    if (!norm) return lt_err(LT_ENOMEM, "taunorm: out of memory");
    row_norms(C, D, W, norm);
    int rc = LT_OK;
    if (st->select_val) {
        double acc;
        if (!fb) rc = lt_err(LT_ESTATE, "taunorm: select = val needs the feature bank");
        else if (fb->feat_dim != D || fb->n_classes != C)
            rc = lt_err(LT_ESHAPE, "taunorm: feature bank is %d x %d classes, model %d x %d",
                        fb->feat_dim, fb->n_classes, D, C);
        else rc = select_tau(st, W, norm, fb, &st->tau, &acc);
    }
    if (rc == LT_OK) {
        normalise_rows(C, D, W, norm, st->tau, st->wt);
        st->ready = 1;
        if (st->run && st->run->log) st->run->log(st->run->host, "tau", st->tau);
    }
    free(norm);
    return rc;
}

/* The bank (an inference pass over the training set) serves only select =
 * val; a fixed tau needs just the classifier. */
static int tau_needs_bank(const void *stp) { return ((const tau_state *)stp)->select_val; }

static int tau_predict(void *stp, const lt_taps *t, float *scores, int *kind) {
    tau_state *st = stp;
    if (!st->ready) return lt_err(LT_ESTATE, "taunorm: predict before post_train");
    if (t->feat_dim != st->D || t->n_classes != st->C)
        return lt_err(LT_ESHAPE, "taunorm: taps are %d features x %d classes, expected %d x %d",
                      t->feat_dim, t->n_classes, st->D, st->C);
    lt_linear_forward(t->n, st->D, st->C, t->feat, st->wt, NULL, scores);   /* no bias */
    *kind = LT_SCORES_LOGITS;
    return LT_OK;
}

/* The normalised classifier and the tau used, once computed; nothing before
 * (a mid-training checkpoint has no classifier to keep). */
static int tau_save(const void *stp, lt_ckpt_writer *w, const char *prefix) {
    const tau_state *st = stp;
    char key[160];
    if (!st->ready) return LT_OK;
    snprintf(key, sizeof key, "%stau", prefix);
    LT_TRY(lt_ckpt_put(w, key, &st->tau, sizeof st->tau));
    snprintf(key, sizeof key, "%swt", prefix);
    return lt_ckpt_put(w, key, st->wt, (size_t)st->C * st->D * sizeof(float));
}

static int tau_load(void *stp, const lt_ckpt *c, const char *prefix) {
    tau_state *st = stp;
    char key[160], key2[160];
    snprintf(key, sizeof key, "%stau", prefix);
    snprintf(key2, sizeof key2, "%swt", prefix);
    if (!lt_ckpt_has(c, key) || !lt_ckpt_has(c, key2)) return LT_OK;
    LT_TRY(lt_ckpt_get_into(c, key, &st->tau, sizeof st->tau));
    LT_TRY(lt_ckpt_get_into(c, key2, st->wt, (size_t)st->C * st->D * sizeof(float)));
    st->ready = 1;
    return LT_OK;
}

/* The effective classifier's row norms, ||w_j / ||w_j||^tau|| = ||w_j||^(1-tau),
 * read from the rows predict uses (a zero row stays 0); NAN before post_train. */
static int tau_class_norms(const void *stp, lt_model *m, int n_classes, double *norms) {
    const tau_state *st = stp;
    (void)m;
    if (n_classes != st->C) return lt_err(LT_ESHAPE, "taunorm: %d classes asked, the run has %d", n_classes, st->C);
    for (int j = 0; j < st->C; j++) {
        double s = 0;
        for (int d = 0; d < st->D; d++) s += (double)st->wt[(size_t)j * st->D + d] * st->wt[(size_t)j * st->D + d];
        norms[j] = st->ready ? sqrt(s) : NAN;
    }
    return LT_OK;
}

const lt_method *lt_method_taunorm(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "taunorm",
        .version = "1",
        .cite = "Kang et al., ICLR 2020, arXiv:1910.09217",
        .fidelity = "official-code",
        .defaults = TAU_DEFAULTS,
        .state_size = sizeof(tau_state),

        .stage1_from = "ce",
        .init = tau_init,
        .fini = tau_fini,
        .n_stages = tau_n_stages,
        .post_train = tau_post_train,
        .predict = tau_predict,
        .save = tau_save,
        .needs_feature_bank = tau_needs_bank,
        .load = tau_load,
        .class_norms = tau_class_norms,
    };
    return &m;
}
