/* bsm_dec — decoupled Balanced Softmax (Ren et al., "Balanced Meta-Softmax for
 * Long-Tailed Visual Recognition", NeurIPS 2020; official code
 * jiawei-ren/BalancedMetaSoftmax-Classification, loss/BalancedSoftmaxLoss.py,
 * config/{CIFAR10_LT,ImageNet_LT,Places_LT}/decouple_balanced_softmax_*.yaml).
 *
 * Stage 0 is the shared CE stage 1 (stage1_from = "ce"). Stage 1 re-trains
 * the classifier on the frozen backbone with the Balanced Softmax loss
 * CE(z + log n): the classifier is re-initialised randomly (spec §1, CIFAR
 * stage 2: "Backbone frozen; the classifier is re-initialised randomly"),
 * here with PyTorch's nn.Linear default U(+-1/sqrt(fan_in)) (lt_model_reinit),
 * on the protocol's stage-2 schedule, with INSTANCE-balanced sampling. The
 * protocols' stage-2 default sampler is class-balanced (for cRT); combining
 * it with Balanced Softmax double-compensates the prior ("over-balancing",
 * the official repository's issue #11: a ClassAwareSampler left in the
 * decoupled config cost several points on Places-LT; fixed in 34a61e4 with
 * `sampler: null`). Test: plain logits.
 *
 * Classes with no training images are excluded exactly as in methods/bsm
 * (offset BSM_EXCLUDED in training, score BSM_EXCLUDED at test). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define BSMD_DEFAULTS "{\"stage2_bn\": \"protocol\"}"
/* A finite stand-in for -inf (lt_softmax_ce refuses non-finite offsets). */
#define BSM_EXCLUDED LT_OFFSET_EXCLUDED

typedef struct {
    uint64_t seed;
    int bn;            /* LT_BN_*: BN mode of the frozen backbone in stage 1 */
    int C;
    long *counts;      /* [C] the counts the offsets were computed from */
    float *offsets;    /* [C] log n_j, or BSM_EXCLUDED where n_j = 0 */
    int n_excluded;
    int ready;
} bsmd_state;

static int bsmd_offsets(bsmd_state *st, const long *counts) {
    if (!counts) return lt_err(LT_EINVAL, "bsm_dec: no class counts");
    if (st->ready && !memcmp(counts, st->counts, (size_t)st->C * sizeof *counts)) return LT_OK;
    int rc = lt_log_count_offsets(st->C, counts, st->offsets, &st->n_excluded);
    if (rc) return lt_err_wrap(rc, "bsm_dec");
    memcpy(st->counts, counts, (size_t)st->C * sizeof *counts);
    st->ready = 1;
    return LT_OK;
}

static int bsmd_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    bsmd_state *st = stp;
    int rc = lt_hp_choice(hp, "stage2_bn", lt_bn_mode_names, &st->bn);
    if (rc) return lt_err_wrap(rc, "bsm_dec");
    if (run->n_classes <= 0) return lt_err(LT_EINVAL, "bsm_dec: %d classes", run->n_classes);
    st->seed = run->seed;
    st->C = run->n_classes;
    st->counts = calloc((size_t)st->C, sizeof *st->counts);
    st->offsets = calloc((size_t)st->C, sizeof *st->offsets);
    if (!st->counts || !st->offsets) return lt_err(LT_ENOMEM, "bsm_dec: out of memory for %d classes", st->C);
    LT_TRY(bsmd_offsets(st, run->class_counts));
    if (st->n_excluded && run->log)
        LT_TRY(run->log(run->host, "bsm_excluded_classes", (double)st->n_excluded));
    return LT_OK;
}

static void bsmd_fini(void *stp) {
    bsmd_state *st = stp;
    free(st->counts);
    free(st->offsets);
    st->counts = NULL;
    st->offsets = NULL;
}

static int bsmd_n_stages(const void *st) { (void)st; return 2; }

static int bsmd_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    bsmd_state *st = stp;
    if (stage == 0) return LT_OK;   /* the CE representation stage, untouched */
    if (stage != 1) return lt_err(LT_EINVAL, "bsm_dec: no stage %d (2 stages)", stage);
    /* BN of the frozen backbone: eval (running statistics) per PROTOCOLS.md
     * unless the hparam asks for the official code's behaviour (backbone left
     * in train() mode, running statistics re-estimated: spec §1 pitfall 4);
     * the classifier re-initialised; instance-balanced sampling. */
    const lt_decoupled d = {st->bn, "head", 1, st->seed, LT_SAMPLER_INSTANCE, 0};
    LT_TRY(lt_stage_decoupled(cfg, m, &d));
    cfg->samples_per_epoch = 0;
    return LT_OK;
}

/* Instance-balanced in every stage, whatever the protocol's stage-2 default
 * says: this is the over-balancing guard. */
static int bsmd_sampler(void *stp, int stage, int epoch, lt_sampler_cfg *cfg) {
    (void)stp;
    (void)stage;
    (void)epoch;
    cfg->kind = LT_SAMPLER_INSTANCE;
    cfg->class_weights = NULL;
    return LT_OK;
}

static int bsmd_loss(void *stp, const lt_taps *t, double *loss, lt_grads *g) {
    bsmd_state *st = stp;
    if (t->n_classes != st->C)
        return lt_err(LT_EINVAL, "bsm_dec: taps have %d classes, the run %d", t->n_classes, st->C);
    /* Stage 0 (only if the runner ever trains it here rather than reusing the
     * ce run): the decoupling recipe's plain CE representation learning. */
    if (t->stage == 0)
        return lt_softmax_ce(t->n, st->C, t->logits, t->labels, NULL, NULL, loss, g->dlogits);
    LT_TRY(bsmd_offsets(st, t->class_counts));
    if (st->n_excluded && t->labels)
        for (int i = 0; i < t->n; i++) {
            int y = t->labels[i];
            if (y >= 0 && y < st->C && st->counts[y] == 0)
                return lt_err(LT_EINVAL, "bsm_dec: sample %d has label %d, a class with 0 training images",
                              i, y);
        }
    return lt_softmax_ce(t->n, st->C, t->logits, t->labels, st->offsets, NULL, loss, g->dlogits);
}

static int bsmd_predict(void *stp, const lt_taps *t, float *scores, int *kind) {
    bsmd_state *st = stp;
    if (t->n_classes != st->C)
        return lt_err(LT_EINVAL, "bsm_dec: taps have %d classes, the run %d", t->n_classes, st->C);
    LT_TRY(bsmd_offsets(st, t->class_counts));
    memcpy(scores, t->logits, (size_t)t->n * (size_t)st->C * sizeof *scores);
    if (st->n_excluded)
        for (int i = 0; i < t->n; i++)
            for (int j = 0; j < st->C; j++)
                if (st->counts[j] == 0) scores[(size_t)i * st->C + j] = BSM_EXCLUDED;
    *kind = LT_SCORES_LOGITS;
    return LT_OK;
}

const lt_method *lt_method_bsm_dec(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "bsm_dec",
        .version = "1",
        .cite = "Ren et al., NeurIPS 2020, arXiv:2007.10740",
        .fidelity = "official-code",
        .defaults = BSMD_DEFAULTS,
        .state_size = sizeof(bsmd_state),
        .flags = LT_METHOD_HOST_TAPS,   /* loss on the taps alone: runs on a device */
        .stage1_from = "ce",
        .init = bsmd_init,
        .fini = bsmd_fini,
        .n_stages = bsmd_n_stages,
        .stage_begin = bsmd_stage_begin,
        .sampler = bsmd_sampler,
        .loss = bsmd_loss,
        .predict = bsmd_predict,
    };
    return &m;
}
