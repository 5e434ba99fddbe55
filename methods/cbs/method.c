/* cbs — joint (end-to-end) training with class-balanced sampling, the "CB"
 * representation-learning baseline of Kang et al., "Decoupling Representation
 * and Classifier for Long-Tailed Recognition", ICLR 2020.
 *
 * One stage, the protocol's stage 1, plain softmax cross-entropy; only the
 * sampler changes. Every class is drawn with probability 1/C (q = 0 in the
 * paper's p_j = n_j^q / sum_i n_i^q) and then a uniform member of it, i.e.
 * i.i.d. with replacement with sample weight 1/n_y, N samples per epoch
 * (PROTOCOLS.md "Class-balanced sampling (joint or stage 2)"). The hparam
 * sampler = "class_aware" selects the official code's ClassAwareSampler
 * instead (classes cycled in shuffled order, 4 consecutive samples per class
 * visit): the same uniform class marginal, different batch composition. */
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define CBS_DEFAULTS "{\"sampler\": \"class_balanced\"}"

typedef struct {
    int class_aware;   /* 1: ClassAwareSampler (4 per class visit), 0: i.i.d. 1/n_y */
} cbs_state;

static int cbs_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    cbs_state *st = stp;
    const char *s;
    (void)run;
    LT_TRY(lt_hp_str(hp, "sampler", &s));
    if (!strcmp(s, "class_balanced")) st->class_aware = 0;
    else if (!strcmp(s, "class_aware")) st->class_aware = 1;
    else return lt_err(LT_EINVAL, "cbs: hparam 'sampler' is '%s' (expected one of: class_balanced, class_aware)", s);
    return LT_OK;
}

/* The sampler of the (only) stage. Used by stage_begin, so the stage record
 * names the real sampler, and by the per-epoch hook, so no protocol default
 * can slip in between. */
static void cbs_set(const cbs_state *st, lt_sampler_cfg *cfg) {
    cfg->kind = st->class_aware ? LT_SAMPLER_CLASS_AWARE : LT_SAMPLER_CLASS_BALANCED;
    cfg->k_per_class = st->class_aware ? 4 : 0;
    cfg->class_weights = NULL;
}

static int cbs_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    (void)m;
    if (stage != 0) return lt_err(LT_EINVAL, "cbs: no stage %d (1 stage)", stage);
    cbs_set(stp, &cfg->sampler);
    /* N samples per epoch: the training-set size, as the decoupling code's
     * training loop does (it stops after floor(N/B) iterations). */
    cfg->samples_per_epoch = 0;
    return LT_OK;
}

static int cbs_sampler(void *stp, int stage, int epoch, lt_sampler_cfg *cfg) {
    (void)epoch;
    if (stage != 0) return lt_err(LT_EINVAL, "cbs: no stage %d (1 stage)", stage);
    cbs_set(stp, cfg);
    return LT_OK;
}

const lt_method *lt_method_cbs(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "cbs",
        .version = "1",
        .cite = "Kang et al., ICLR 2020, arXiv:1910.09217",
        .fidelity = "paper",
        .defaults = CBS_DEFAULTS,
        .state_size = sizeof(cbs_state),
        .flags = 0,
        .stage1_from = NULL,
        .init = cbs_init,
        .stage_begin = cbs_stage_begin,
        .sampler = cbs_sampler,
    };
    return &m;
}
