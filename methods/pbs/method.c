/* pbs — joint (end-to-end) training with progressively-balanced sampling,
 * the "PB" representation-learning baseline of Kang et al., "Decoupling
 * Representation and Classifier for Long-Tailed Recognition", ICLR 2020.
 *
 * One stage, the protocol's stage 1, plain softmax cross-entropy. The paper
 * writes the class probability at epoch t of T as
 *     p_j(t) = (1 - t/T) p_j^IB + (t/T) p_j^CB,   p^IB = n_j/N, p^CB = 1/C.
 * Read literally (t = 0..T-1) the last epoch would still be (T-1)/T balanced.
 * The official ClassPrioritySampler (lam = null, cycle = 0, manual_only)
 * takes lambda from np.linspace(0, 1, epochs) and moves to the next value
 * after every epoch, i.e. lambda_e = e / (E - 1) for the 0-based epoch e of
 * E: epoch 0 is purely instance-balanced and the last epoch purely
 * class-balanced. This plugin follows the code, which is what the engine's
 * LT_SAMPLER_PROGRESSIVE implements (E = 1 gives lambda = 0). T is the
 * stage's epoch count, so the schedule stretches with the scale (2 epochs
 * at ci: IB then CB). */
#include "lt.h"
#include "lt_method.h"

#define PBS_DEFAULTS "{}"

typedef struct {
    int epochs;   /* E: epochs of the stage, set by stage_begin */
} pbs_state;

static int pbs_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    pbs_state *st = stp;
    (void)m;
    if (stage != 0) return lt_err(LT_EINVAL, "pbs: no stage %d (1 stage)", stage);
    if (cfg->epochs < 1) return lt_err(LT_EINVAL, "pbs: stage has %d epochs", cfg->epochs);
    st->epochs = cfg->epochs;
    cfg->sampler.kind = LT_SAMPLER_PROGRESSIVE;
    cfg->sampler.total_epochs = cfg->epochs;
    cfg->sampler.class_weights = NULL;
    cfg->samples_per_epoch = 0;   /* N samples per epoch, as the official sampler */
    return LT_OK;
}

/* The runner asks per epoch; the engine turns (epoch, E) into lambda. */
static int pbs_sampler(void *stp, int stage, int epoch, lt_sampler_cfg *cfg) {
    const pbs_state *st = stp;
    if (stage != 0) return lt_err(LT_EINVAL, "pbs: no stage %d (1 stage)", stage);
    if (st->epochs < 1) return lt_err(LT_ESTATE, "pbs: sampler called before stage_begin");
    if (epoch < 0) return lt_err(LT_EINVAL, "pbs: negative epoch %d", epoch);
    cfg->kind = LT_SAMPLER_PROGRESSIVE;
    cfg->total_epochs = st->epochs;
    cfg->class_weights = NULL;
    return LT_OK;
}

const lt_method *lt_method_pbs(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "pbs",
        .version = "1",
        .cite = "Kang et al., ICLR 2020, arXiv:1910.09217",
        .fidelity = "official-code",   /* the official sampler's schedule (README) */
        .defaults = PBS_DEFAULTS,
        .state_size = sizeof(pbs_state),
        .flags = 0,
        .stage1_from = NULL,
        .stage_begin = pbs_stage_begin,
        .sampler = pbs_sampler,
    };
    return &m;
}
