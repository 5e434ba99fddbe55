/* lws — learnable weight scaling (Kang et al., "Decoupling Representation and
 * Classifier for Long-Tailed Recognition", ICLR 2020; the official code's
 * models/TauNormClassifier.py implements it).
 *
 * Head: a linear layer z = W f + b followed by a per-class scale node, so the
 * "logits" tap is s_j (w_j . f + b_j): the bias is scaled too, as in the
 * official code. Stage 0 is the shared CE stage 1 (stage1_from = "ce"): the
 * scale is frozen at its initial value 1, so the network computes exactly
 * what CE's single linear layer computes (1.0f * z == z in IEEE arithmetic).
 * Stage 1 freezes everything except s and learns it with softmax
 * cross-entropy under class-balanced sampling on the protocol's stage-2
 * schedule; s has no weight decay unless the hparam asks for the official
 * code's decay.
 *
 * Parameter names: CE's head is the node "logits" with parameters
 * "logits.weight" / "logits.bias". Here "logits" must be the scale node (the
 * tap is the scaled output and node names are unique), so the linear node is
 * "logits_linear" and its parameters are renamed to CE's names right after
 * they are declared (before finalize, so they are also initialised from the
 * same streams as CE's, which are keyed by parameter name). The runner's
 * stage-1 loader therefore finds W and b under CE's names, and the one
 * parameter CE lacks, "logits.scale", keeps its initial value 1. */
#include <math.h>

#include "lt.h"
#include "lt_method.h"

#define LWS_DEFAULTS \
    "{\"stage2_bn\": \"protocol\", \"sampler\": \"class_balanced\", \"scale_decay\": false}"

/* The scale node sits in its own group so it can be frozen and unfrozen
 * without touching the linear layer (group "head", as in CE). */
#define LWS_GROUP "lws_scale"
#define LWS_LINEAR "logits_linear"

typedef struct {
    int n_classes;
    int bn;            /* LT_BN_*: BN mode of the frozen backbone in stage 2 */
    int class_aware;   /* 1: the official ClassAwareSampler (4 per class visit) */
    int scale_decay;   /* 1: weight decay on s (official code), 0: none (PROTOCOLS.md) */
} lws_state;

static int lws_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    lws_state *st = stp;
    static const char *const sampler_names[] = {"class_balanced", "class_aware", NULL};
    double decay;
    if (run->n_classes <= 0) return lt_err(LT_EINVAL, "lws: %d classes", run->n_classes);
    st->n_classes = run->n_classes;
    int rc = lt_hp_choice(hp, "stage2_bn", lt_bn_mode_names, &st->bn);
    if (!rc) rc = lt_hp_choice(hp, "sampler", sampler_names, &st->class_aware);
    if (!rc) rc = lt_hp_num(hp, "scale_decay", &decay);
    if (rc) return lt_err_wrap(rc, "lws");
    st->scale_decay = decay != 0;
    return LT_OK;
}

static int lws_build(void *stp, lt_model *m, int feat) {
    lws_state *st = stp;
    int lin = lt_add_linear(m, LWS_LINEAR, "head", feat, st->n_classes, 1);
    if (lin < 0) return -lin;
    /* "logits_linear.<suffix>" takes CE's names "logits.<suffix>" */
    LT_TRY(lt_model_rename_params(m, lin, "logits"));
    int sc = lt_add_scale(m, "logits", LWS_GROUP, lin);
    if (sc < 0) return -sc;
    /* Frozen from the start: stage 0 must be CE. */
    return lt_model_freeze(m, LWS_GROUP, 1);
}

static int lws_n_stages(const void *st) { (void)st; return 2; }

static int lws_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    lws_state *st = stp;
    if (stage == 0) return lt_model_freeze(m, LWS_GROUP, 1);   /* s = 1, frozen: CE */
    if (stage != 1) return lt_err(LT_EINVAL, "lws: no stage %d (2 stages)", stage);
    /* The scale layer declares s as no-decay; the official code decays it. */
    int rc = lt_model_param_flags(m, "logits.scale", st->scale_decay ? 0 : LT_MASK_NO_DECAY,
                                  st->scale_decay ? LT_MASK_NO_DECAY : 0);
    if (rc) return lt_err_wrap(rc, "lws (build not run?)");
    /* Everything frozen (backbone, W and b: the classifier keeps its bias),
     * then s alone trainable; LWS keeps the stage-1 classifier. */
    const lt_decoupled d = {st->bn, LWS_GROUP, 0, 0,
                            st->class_aware ? LT_SAMPLER_CLASS_AWARE : LT_SAMPLER_CLASS_BALANCED, 4};
    return lt_stage_decoupled(cfg, m, &d);
}

/* The effective classifier row of class j is s_j w_j (the scale multiplies
 * the whole logit), so its norm is |s_j| ||w_j||: the figure must show the
 * rescaled rows, not CE's rows that LWS leaves as they are. */
static int lws_class_norms(const void *stp, lt_model *m, int n_classes, double *norms) {
    (void)stp;
    lt_param_info w, s;
    if (lt_model_param_find(m, "logits.weight", &w) || lt_model_param_find(m, "logits.scale", &s))
        return lt_err(LT_ESTATE, "lws: the model has no 'logits.weight' / 'logits.scale'");
    if (s.count != (size_t)n_classes || w.count % (size_t)n_classes)
        return lt_err(LT_ESHAPE, "lws: 'logits.weight' has %zu values and 'logits.scale' %zu for %d classes",
                      w.count, s.count, n_classes);
    const size_t D = w.count / (size_t)n_classes;
    for (int j = 0; j < n_classes; j++) {
        double q = 0;
        for (size_t d = 0; d < D; d++) q += (double)w.w[j * D + d] * w.w[j * D + d];
        norms[j] = fabs((double)s.w[j]) * sqrt(q);
    }
    return LT_OK;
}

const lt_method *lt_method_lws(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "lws",
        .version = "1",
        .cite = "Kang et al., ICLR 2020, arXiv:1910.09217",
        .fidelity = "paper",
        .defaults = LWS_DEFAULTS,
        .state_size = sizeof(lws_state),
        .flags = 0,
        .stage1_from = "ce",
        .init = lws_init,
        .build = lws_build,
        .n_stages = lws_n_stages,
        .stage_begin = lws_stage_begin,
        .class_norms = lws_class_norms,
    };
    return &m;
}
