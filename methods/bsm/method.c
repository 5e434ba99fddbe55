/* bsm — Balanced Softmax, end to end (Ren et al., "Balanced Meta-Softmax for
 * Long-Tailed Visual Recognition", NeurIPS 2020; official code
 * jiawei-ren/BalancedMetaSoftmax-Classification, loss/BalancedSoftmaxLoss.py).
 *
 * Training loss: cross-entropy on z + log n, i.e. the model's training-time
 * posterior is n_y exp(z_y) / sum_j n_j exp(z_j), with n the RAW training
 * counts (the taps' class_counts; the official code does not re-estimate the
 * prior under a sampler). Test: the plain logits z (issue #13 of the
 * official repository: no adjustment at inference). One stage, the
 * protocol's stage 1, instance-balanced sampling (never combined with
 * class-balanced sampling: that double-compensates, spec §1 pitfall 1).
 *
 * Classes with no training images (n_j = 0, possible on lvis_lt) would need
 * log 0 = -inf. They are excluded: their offset is BSM_EXCLUDED, so
 * exp(z_j + offset_j - max) is exactly 0 in lt_softmax_ce's double
 * arithmetic and their gradient is exactly 0 — the n_j -> 0 limit of the
 * Balanced Softmax. At test time the same classes get the score
 * BSM_EXCLUDED (softmax probability 0): the model never received a single
 * example of them, and their untrained logit would otherwise compete with
 * the balanced logits of the trained classes. Without such classes predict
 * returns the raw logits unchanged. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define BSM_DEFAULTS "{}"
/* A finite stand-in for -inf (lt_softmax_ce refuses non-finite offsets):
 * any logit the network can produce is negligible next to it, and
 * exp(-1e30) underflows to exactly 0. */
#define BSM_EXCLUDED LT_OFFSET_EXCLUDED

typedef struct {
    int C;
    long *counts;      /* [C] the counts the offsets were computed from */
    float *offsets;    /* [C] log n_j, or BSM_EXCLUDED where n_j = 0 */
    int n_excluded;
    int ready;         /* offsets match counts */
} bsm_state;

/* (Re)computes the offsets when the counts differ from the cached ones: a
 * compare of C longs per call, no allocation. */
static int bsm_offsets(bsm_state *st, const long *counts) {
    if (!counts) return lt_err(LT_EINVAL, "bsm: no class counts");
    if (st->ready && !memcmp(counts, st->counts, (size_t)st->C * sizeof *counts)) return LT_OK;
    int rc = lt_log_count_offsets(st->C, counts, st->offsets, &st->n_excluded);
    if (rc) return lt_err_wrap(rc, "bsm");
    memcpy(st->counts, counts, (size_t)st->C * sizeof *counts);
    st->ready = 1;
    return LT_OK;
}

static int bsm_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    bsm_state *st = stp;
    (void)hp;
    if (run->n_classes <= 0) return lt_err(LT_EINVAL, "bsm: %d classes", run->n_classes);
    st->C = run->n_classes;
    st->counts = calloc((size_t)st->C, sizeof *st->counts);
    st->offsets = calloc((size_t)st->C, sizeof *st->offsets);
    if (!st->counts || !st->offsets) return lt_err(LT_ENOMEM, "bsm: out of memory for %d classes", st->C);
    LT_TRY(bsm_offsets(st, run->class_counts));
    if (st->n_excluded && run->log)
        LT_TRY(run->log(run->host, "bsm_excluded_classes", (double)st->n_excluded));
    return LT_OK;
}

static void bsm_fini(void *stp) {
    bsm_state *st = stp;
    free(st->counts);
    free(st->offsets);
    st->counts = NULL;
    st->offsets = NULL;
}

static int bsm_loss(void *stp, const lt_taps *t, double *loss, lt_grads *g) {
    bsm_state *st = stp;
    if (t->n_classes != st->C)
        return lt_err(LT_EINVAL, "bsm: taps have %d classes, the run %d", t->n_classes, st->C);
    LT_TRY(bsm_offsets(st, t->class_counts));
    /* A label of an excluded class contradicts the counts (its loss would be
     * ~1e30): refuse instead of training on it. */
    if (st->n_excluded && t->labels)
        for (int i = 0; i < t->n; i++) {
            int y = t->labels[i];
            if (y >= 0 && y < st->C && st->counts[y] == 0)
                return lt_err(LT_EINVAL, "bsm: sample %d has label %d, a class with 0 training images",
                              i, y);
        }
    return lt_softmax_ce(t->n, st->C, t->logits, t->labels, st->offsets, NULL, loss, g->dlogits);
}

static int bsm_predict(void *stp, const lt_taps *t, float *scores, int *kind) {
    bsm_state *st = stp;
    if (t->n_classes != st->C)
        return lt_err(LT_EINVAL, "bsm: taps have %d classes, the run %d", t->n_classes, st->C);
    LT_TRY(bsm_offsets(st, t->class_counts));
    size_t n = (size_t)t->n * (size_t)st->C;
    memcpy(scores, t->logits, n * sizeof *scores);
    if (st->n_excluded)
        for (int i = 0; i < t->n; i++)
            for (int j = 0; j < st->C; j++)
                if (st->counts[j] == 0) scores[(size_t)i * st->C + j] = BSM_EXCLUDED;
    *kind = LT_SCORES_LOGITS;
    return LT_OK;
}

const lt_method *lt_method_bsm(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "bsm",
        .version = "1",
        .cite = "Ren et al., NeurIPS 2020, arXiv:2007.10740",
        .fidelity = "official-code",
        .defaults = BSM_DEFAULTS,
        .state_size = sizeof(bsm_state),
        .flags = LT_METHOD_HOST_TAPS,   /* loss on the taps alone: runs on a device */
        .stage1_from = NULL,
        .init = bsm_init,
        .fini = bsm_fini,
        .loss = bsm_loss,
        .predict = bsm_predict,
    };
    return &m;
}
