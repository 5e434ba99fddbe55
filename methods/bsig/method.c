/* bsig — Balanced Sigmoid (Ren, Yu, Cai, Zhao, "Balanced Activation for
 * Long-tailed Visual Recognition", arXiv 2008.11037, LVIS Challenge workshop
 * at ECCV 2020; official code Majiker/BalancedMetaSoftmax-InstanceSeg,
 * projects/BALMS/balms/fast_rcnn.py), on classification.
 *
 * Training: one-vs-rest sigmoid BCE against one-hot targets, summed over the
 * C classes and averaged over the batch, on the adjusted logits
 *     z'_j = z_j + log(phi_j / (1 - phi_j)),
 * phi_j = fraction of training images that contain class j. Every image of
 * a single-label set (Fashion-MNIST, CIFAR, the lvis_lt object crops, one
 * object per crop) contains exactly one class, so phi_j = n_j / N. The
 * official code applies the adjustment to foreground RoIs only; every crop
 * is foreground, so it applies to every sample here.
 *
 * Classifier bias initialised to -log((1 - pi)/pi), pi = prior_prob = 0.001
 * (the official config). The reason for it — C negatives per sample at
 * sigma = 0.5 would start the loss at C log 2 (834 for LVIS's 1203 classes)
 * with the gradient dominated by pushing negatives down — holds for a
 * single-label classifier with a sigmoid head as much as for the detector's,
 * so it is applied on every protocol (for 10 classes it is nearly harmless:
 * the loss starts near -log(pi * odds) of the true class).
 *
 * Test: the official code scores with the plain sigmoid of the unadjusted
 * logits. predict returns them as LT_SCORES_SIGMOID: (a) AP ranks the test
 * images of class j by z_ij, i.e. by sigma(z_ij), as a detection-style AP
 * does; (b) top-1, per-class and group accuracies come from the normalised
 * sigmoid q_ij = sigma(z_ij) / sum_k sigma(z_ik), whose argmax is the argmax
 * of sigma(z): exactly the sigmoid model's; (c) the raw ECE is null (a
 * detector's one-vs-rest sigmoids make no single-label distribution to
 * calibrate), and the runner's temperature-scaled ece_ts is that of
 * softmax(z / T), T fitted on the validation split, as for any scores that
 * are not a softmax model's logits (lt_method.h).
 *
 * Classes with phi_j = 0 (no training image; possible on lvis_lt) would get
 * the offset log 0 = -inf, whose limit is sigma(z'_j) = 0, zero loss and zero
 * gradient: they get the offset BSIG_EXCLUDED (exactly that in double) and
 * probability 0 at test. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define BSIG_DEFAULTS "{\"prior_prob\": 0.001}"
/* A finite stand-in for -inf (lt_sigmoid_bce refuses non-finite offsets):
 * softplus(z - 1e30) and sigmoid(z - 1e30) are exactly 0 in double. */
#define BSIG_EXCLUDED (-1e30f)
/* Test score of an excluded class: sigma(-1e4) is 0 in double, and -1e4
 * stays far from float overflow in the runner's arithmetic. */
#define BSIG_TEST_EXCLUDED (-1e4f)

typedef struct {
    int C;
    double prior;      /* pi of the bias initialisation */
    long *counts;      /* [C] the counts the offsets were computed from */
    float *offsets;    /* [C] log(phi/(1-phi)), or BSIG_EXCLUDED where n_j = 0 */
    int n_excluded;
    int ready;
    float *targets;    /* [cap x C] one-hot targets of the batch */
    int cap;           /* rows allocated in targets */
} bsig_state;

/* log(phi_j / (1 - phi_j)) with phi_j = n_j / N, i.e. log n_j - log(N - n_j);
 * recomputed only when the counts change. */
static int bsig_offsets(bsig_state *st, const long *counts) {
    if (!counts) return lt_err(LT_EINVAL, "bsig: no class counts");
    if (st->ready && !memcmp(counts, st->counts, (size_t)st->C * sizeof *counts)) return LT_OK;
    double N = 0;
    int excluded = 0;
    for (int j = 0; j < st->C; j++) {
        if (counts[j] < 0) return lt_err(LT_EINVAL, "bsig: class %d has count %ld", j, counts[j]);
        N += (double)counts[j];
        excluded += counts[j] == 0;
    }
    if (excluded == st->C) return lt_err(LT_EINVAL, "bsig: every class has 0 training images");
    for (int j = 0; j < st->C; j++)
        if ((double)counts[j] == N)
            return lt_err(LT_EINVAL, "bsig: class %d holds every training image (phi = 1, "
                          "log(phi/(1-phi)) = +inf); Balanced Sigmoid needs at least 2 classes", j);
    for (int j = 0; j < st->C; j++) {
        st->counts[j] = counts[j];
        st->offsets[j] = counts[j] > 0
                             ? (float)(log((double)counts[j]) - log(N - (double)counts[j]))
                             : BSIG_EXCLUDED;
    }
    st->n_excluded = excluded;
    st->ready = 1;
    return LT_OK;
}

static int bsig_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    bsig_state *st = stp;
    LT_TRY(lt_hp_num(hp, "prior_prob", &st->prior));
    if (!(st->prior > 0.0 && st->prior < 1.0))
        return lt_err(LT_EINVAL, "bsig: hparam 'prior_prob' = %g must lie in (0, 1)", st->prior);
    if (run->n_classes <= 0) return lt_err(LT_EINVAL, "bsig: %d classes", run->n_classes);
    st->C = run->n_classes;
    st->counts = calloc((size_t)st->C, sizeof *st->counts);
    st->offsets = calloc((size_t)st->C, sizeof *st->offsets);
    if (!st->counts || !st->offsets) return lt_err(LT_ENOMEM, "bsig: out of memory for %d classes", st->C);
    LT_TRY(bsig_offsets(st, run->class_counts));
    if (st->n_excluded && run->log)
        LT_TRY(run->log(run->host, "bsig_excluded_classes", (double)st->n_excluded));
    return LT_OK;
}

static void bsig_fini(void *stp) {
    bsig_state *st = stp;
    free(st->counts);
    free(st->offsets);
    free(st->targets);
    st->counts = NULL;
    st->offsets = NULL;
    st->targets = NULL;
}

/* The head is the engine default's, spelled out because the bias
 * initialisation below needs "logits.bias" to exist. */
static int bsig_build(void *stp, lt_model *m, int feat) {
    const bsig_state *st = stp;
    int r = lt_add_linear(m, "logits", "head", feat, st->C, 1);
    return r < 0 ? r : LT_OK;
}

static int bsig_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    bsig_state *st = stp;
    if (stage != 0) return lt_err(LT_EINVAL, "bsig: no stage %d (1 stage)", stage);
    if (cfg->batch < 1) return lt_err(LT_EINVAL, "bsig: batch %d", cfg->batch);
    /* Targets for the largest batch of the stage, allocated once here. */
    if (cfg->batch > st->cap) {
        float *t = realloc(st->targets, (size_t)cfg->batch * (size_t)st->C * sizeof *t);
        if (!t) return lt_err(LT_ENOMEM, "bsig: out of memory for %d x %d targets", cfg->batch, st->C);
        st->targets = t;
        st->cap = cfg->batch;
    }
    /* Prior-probability bias init: the parameters are initialised by now
     * (stage_begin runs after finalize); on resume the checkpoint's weights
     * are loaded after this and replace it. */
    /* Through the host copy, not lt_param_info.w: on a device model that is
     * device memory. */
    const int bi = lt_model_param_index(m, "logits.bias");
    lt_param_info b;
    if (bi < 0 || lt_model_param_at(m, bi, &b)) return lt_err(LT_EINVAL, "bsig: the model has no 'logits.bias' parameter");
    float *w = malloc(b.count * sizeof *w);
    if (!w) return lt_err(LT_ENOMEM, "bsig: out of memory for %zu biases", b.count);
    const float b0 = (float)-log((1.0 - st->prior) / st->prior);
    for (size_t k = 0; k < b.count; k++) w[k] = b0;
    const int rc = lt_model_param_from_host(m, bi, w);
    free(w);
    return rc;
}

static int bsig_loss(void *stp, const lt_taps *t, double *loss, lt_grads *g) {
    bsig_state *st = stp;
    if (t->n_classes != st->C)
        return lt_err(LT_EINVAL, "bsig: taps have %d classes, the run %d", t->n_classes, st->C);
    if (t->n > st->cap)
        return lt_err(LT_ESTATE, "bsig: batch of %d exceeds the %d rows planned in stage_begin", t->n, st->cap);
    if (!t->labels) return lt_err(LT_EINVAL, "bsig: loss without labels");
    LT_TRY(bsig_offsets(st, t->class_counts));
    memset(st->targets, 0, (size_t)t->n * (size_t)st->C * sizeof *st->targets);
    for (int i = 0; i < t->n; i++) {
        int y = t->labels[i];
        if (y < 0 || y >= st->C) return lt_err(LT_EINVAL, "bsig: label[%d] = %d outside [0, %d)", i, y, st->C);
        /* A positive of an excluded class would cost ~1e30: contradicts the counts. */
        if (st->counts[y] == 0)
            return lt_err(LT_EINVAL, "bsig: sample %d has label %d, a class with 0 training images", i, y);
        st->targets[(size_t)i * st->C + y] = 1.0f;
    }
    return lt_sigmoid_bce(t->n, st->C, t->logits, st->targets, st->offsets, loss, g->dlogits);
}

/* Returns the logits as LT_SCORES_SIGMOID: the runner ranks AP by each
 * class's own z_j (the order of sigma(z_j), as the detector's AP does) and
 * takes top-1 / ECE from the normalised sigmoid lt_sigmoid_norm_rows.
 * Excluded classes get BSIG_TEST_EXCLUDED: sigma underflows to exactly 0,
 * so their normalised probability is 0 and they are never predicted. */
static int bsig_predict(void *stp, const lt_taps *t, float *scores, int *kind) {
    bsig_state *st = stp;
    if (t->n_classes != st->C)
        return lt_err(LT_EINVAL, "bsig: taps have %d classes, the run %d", t->n_classes, st->C);
    LT_TRY(bsig_offsets(st, t->class_counts));
    for (int i = 0; i < t->n; i++) {
        const float *z = t->logits + (size_t)i * st->C;
        float *q = scores + (size_t)i * st->C;
        for (int j = 0; j < st->C; j++) {
            if (!isfinite(z[j]))
                return lt_err(LT_ENUM, "bsig: test logit[%d,%d] = %g is not finite", i, j, (double)z[j]);
            q[j] = st->counts[j] > 0 ? z[j] : BSIG_TEST_EXCLUDED;
        }
    }
    *kind = LT_SCORES_SIGMOID;
    return LT_OK;
}

const lt_method *lt_method_bsig(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "bsig",
        .version = "2",  /* 2: predict returns LT_SCORES_SIGMOID (AP ranked by sigma(z_j)) */
        .cite = "Ren et al., arXiv:2008.11037 (Balanced Activation, LVIS Challenge ECCV 2020)",
        .fidelity = "reconstructed",
        .defaults = BSIG_DEFAULTS,
        .state_size = sizeof(bsig_state),
        .flags = LT_METHOD_HOST_TAPS,   /* loss on the taps alone: runs on a device */
        .stage1_from = NULL,
        .init = bsig_init,
        .fini = bsig_fini,
        .build = bsig_build,
        .stage_begin = bsig_stage_begin,
        .loss = bsig_loss,
        .predict = bsig_predict,
    };
    return &m;
}
