/* srs — joint (end-to-end) training with square-root sampling, the "SR"
 * representation-learning baseline of Kang et al., "Decoupling Representation
 * and Classifier for Long-Tailed Recognition", ICLR 2020.
 *
 * One stage, the protocol's stage 1, plain softmax cross-entropy; only the
 * sampler changes: class j is drawn with probability
 *     p_j = sqrt(n_j) / sum_i sqrt(n_i)        (q = 1/2 in p_j = n_j^q / sum n_i^q)
 * and then a uniform member of it, i.i.d. with replacement, N samples per
 * epoch. This is the distribution of the official MixedPrioritizedSampler
 * with nroot = 2, lam = 1, manual_only (per-sample weight sqrt(n_j/N)*N/n_j,
 * i.i.d. with replacement): the engine's LT_SAMPLER_SQRT. */
#include "lt.h"
#include "lt_method.h"

#define SRS_DEFAULTS "{}"

static int srs_stage_begin(void *st, int stage, lt_stage *cfg, lt_model *m) {
    (void)st;
    (void)m;
    if (stage != 0) return lt_err(LT_EINVAL, "srs: no stage %d (1 stage)", stage);
    cfg->sampler.kind = LT_SAMPLER_SQRT;
    cfg->sampler.class_weights = NULL;
    cfg->samples_per_epoch = 0;   /* N samples per epoch, as the official sampler's __len__ */
    return LT_OK;
}

/* Re-asserted every epoch so no protocol default can slip in between. */
static int srs_sampler(void *st, int stage, int epoch, lt_sampler_cfg *cfg) {
    (void)st;
    (void)epoch;
    if (stage != 0) return lt_err(LT_EINVAL, "srs: no stage %d (1 stage)", stage);
    cfg->kind = LT_SAMPLER_SQRT;
    cfg->class_weights = NULL;
    return LT_OK;
}

const lt_method *lt_method_srs(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "srs",
        .version = "1",
        .cite = "Kang et al., ICLR 2020, arXiv:1910.09217",
        .fidelity = "official-code",
        .defaults = SRS_DEFAULTS,
        .state_size = 0,
        .flags = 0,
        .stage1_from = NULL,
        .stage_begin = srs_stage_begin,
        .sampler = srs_sampler,
    };
    return &m;
}
