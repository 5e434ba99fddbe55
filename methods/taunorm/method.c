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
 * accuracy (tau_norm.py's "overall") on the dataset's validation split
 * (the host's validation_bank: the official val list, or class-balanced
 * training images the long-tailed subset left out), never on training rows
 * (version 1 carved them from the training subset, which stage 1 had seen)
 * and never on the test set.
 *
 * Scores are reported as LT_SCORES_SCORES: f . w_j / ||w_j||^tau rescales
 * every logit after training with no likelihood fitted to the new scale,
 * so a softmax at temperature 1 over them is no probability; the run
 * reports their calibration temperature-scaled only (ece_ts). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define TAU_DEFAULTS "{\"tau\": 1.0, \"select\": \"fixed\"}"

#define TAU_GRID_N 21          /* 0, 0.1, ..., 2.0 */
#define TAU_GRID_STEP 0.1

typedef struct {
    const lt_run_info *run;
    int C, D;
    double tau;                /* the hparam, or the selected value after post_train */
    int select_val;
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
    if (!strcmp(sel, "fixed")) st->select_val = 0;
    else if (!strcmp(sel, "val")) st->select_val = 1;
    else return lt_err(LT_EINVAL, "taunorm: hparam 'select' is '%s' (expected fixed or val)", sel);
    if (!isfinite(st->tau) || st->tau < 0)
        return lt_err(LT_EINVAL, "taunorm: hparam 'tau' must be a finite number >= 0, got %g", st->tau);
    if (st->select_val && (!run->api || run->api->version < 2 || !run->api->validation_bank))
        return lt_err(LT_EABI, "taunorm: select = val needs the host's validation_bank service (host API 2)");
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

/* Chooses tau on the validation bank: mean per-class accuracy (over the
 * classes with validation images) of argmax_j (f . w_j) / ||w_j||^tau, first
 * best on the grid (so ties go to the smaller tau). */
static int select_tau(tau_state *st, const float *W, const double *norm, const lt_feature_bank *vb,
                      double *best_tau, double *best_acc) {
    const int C = st->C, D = st->D;
    if (vb->feat_dim != D || vb->n_classes != C)
        return lt_err(LT_ESHAPE, "taunorm: validation bank is %d x %d classes, model %d x %d", vb->feat_dim,
                      vb->n_classes, D, C);
    if (vb->n <= 0) return lt_err(LT_EINVAL, "taunorm: the validation split is empty");
    long *k_c = calloc((size_t)C, sizeof *k_c), *correct = calloc((size_t)C, sizeof *correct);
    float *dots = malloc((size_t)vb->n * C * sizeof *dots);
    int rc = LT_OK;
    if (!k_c || !correct || !dots) { rc = lt_err(LT_ENOMEM, "taunorm: out of memory"); goto out; }
    for (long i = 0; i < vb->n; i++) {
        int32_t y = vb->labels[i];
        if (y < 0 || y >= C) { rc = lt_err(LT_EDATA, "taunorm: validation label %d out of range", (int)y); goto out; }
        k_c[y]++;
    }
    lt_linear_forward((int)vb->n, D, C, vb->feat, W, NULL, dots);
    *best_acc = -1;
    *best_tau = 0;
    for (int g = 0; g < TAU_GRID_N; g++) {
        double tau = g * TAU_GRID_STEP, acc = 0;
        int n_groups = 0;
        memset(correct, 0, (size_t)C * sizeof *correct);
        for (long v = 0; v < vb->n; v++) {
            int arg = 0;
            double best = -INFINITY;
            for (int j = 0; j < C; j++) {
                double s = norm[j] > 0 ? dots[(size_t)v * C + j] / pow(norm[j], tau) : 0.0;
                if (s > best) { best = s; arg = j; }
            }
            if (arg == vb->labels[v]) correct[arg]++;
        }
        for (int c = 0; c < C; c++)
            if (k_c[c] > 0) { acc += (double)correct[c] / (double)k_c[c]; n_groups++; }
        acc /= n_groups;
        if (acc > *best_acc) { *best_acc = acc; *best_tau = tau; }
    }
    if (st->run && st->run->log) {
        st->run->log(st->run->host, "tau_val_images", (double)vb->n);
        st->run->log(st->run->host, "tau_val_mean_class_acc", *best_acc);
    }
out:
    free(k_c); free(correct); free(dots);
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
    (void)fb;   /* the training bank is never asked for: tau is chosen on held-out images */
    if (st->select_val) {
        double acc;
        lt_feature_bank vb;
        rc = st->run->api->validation_bank(st->run->host, &vb);
        if (rc) rc = lt_err_wrap(rc, "taunorm: select = val");
        else rc = select_tau(st, W, norm, &vb, &st->tau, &acc);
    }
    if (rc == LT_OK) {
        normalise_rows(C, D, W, norm, st->tau, st->wt);
        st->ready = 1;
        if (st->run && st->run->log) st->run->log(st->run->host, "tau", st->tau);
    }
    free(norm);
    return rc;
}

static int tau_predict(void *stp, const lt_taps *t, float *scores, int *kind) {
    tau_state *st = stp;
    if (!st->ready) return lt_err(LT_ESTATE, "taunorm: predict before post_train");
    if (t->feat_dim != st->D || t->n_classes != st->C)
        return lt_err(LT_ESHAPE, "taunorm: taps are %d features x %d classes, expected %d x %d",
                      t->feat_dim, t->n_classes, st->D, st->C);
    lt_linear_forward(t->n, st->D, st->C, t->feat, st->wt, NULL, scores);   /* no bias */
    *kind = LT_SCORES_SCORES;
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
        .version = "2",  /* 2: predict reports LT_SCORES_SCORES (raw ECE null); select = val uses the dataset's validation split */
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
        .load = tau_load,
        .class_norms = tau_class_norms,
    };
    return &m;
}
