/* crt — classifier re-training (Kang et al., "Decoupling Representation and
 * Classifier for Long-Tailed Recognition", ICLR 2020).
 *
 * Stage 0 is the shared CE stage 1 (stage1_from = "ce"). Stage 1 freezes the
 * backbone, re-initialises the linear classifier with PyTorch's nn.Linear
 * default (U(+-1/sqrt(fan_in)) for weight and bias: lt_model_reinit) and
 * trains it with plain softmax cross-entropy under class-balanced sampling,
 * on the protocol's stage-2 schedule. Everything else is the engine default
 * (build, loss, predict). */
#include "lt.h"
#include "lt_method.h"

#define CRT_DEFAULTS "{\"stage2_bn\": \"protocol\", \"sampler\": \"class_balanced\"}"

typedef struct {
    uint64_t seed;
    int bn;            /* LT_BN_*: BN mode of the frozen backbone in stage 2 */
    int class_aware;   /* 1: the official ClassAwareSampler (4 per class visit) */
} crt_state;

static int crt_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    crt_state *st = stp;
    static const char *const sampler_names[] = {"class_balanced", "class_aware", NULL};
    st->seed = run->seed;
    int rc = lt_hp_choice(hp, "stage2_bn", lt_bn_mode_names, &st->bn);
    if (!rc) rc = lt_hp_choice(hp, "sampler", sampler_names, &st->class_aware);
    return rc ? lt_err_wrap(rc, "crt") : LT_OK;
}

static int crt_n_stages(const void *st) { (void)st; return 2; }

static int crt_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    crt_state *st = stp;
    if (stage == 0) return LT_OK;   /* the CE representation stage, untouched */
    if (stage != 1) return lt_err(LT_EINVAL, "crt: no stage %d (2 stages)", stage);
    /* frozen backbone (BN eval per PROTOCOLS.md unless the hparam asks for
     * the official code's re-estimation), the linear classifier re-initialised
     * and re-trained under class-balanced (or class-aware) sampling */
    const lt_decoupled d = {st->bn, "head", 1, st->seed,
                            st->class_aware ? LT_SAMPLER_CLASS_AWARE : LT_SAMPLER_CLASS_BALANCED, 4};
    return lt_stage_decoupled(cfg, m, &d);
}

const lt_method *lt_method_crt(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "crt",
        .version = "1",
        .cite = "Kang et al., ICLR 2020, arXiv:1910.09217",
        .fidelity = "paper",
        .defaults = CRT_DEFAULTS,
        .state_size = sizeof(crt_state),
        .flags = 0,
        .stage1_from = "ce",
        .init = crt_init,
        .n_stages = crt_n_stages,
        .stage_begin = crt_stage_begin,
    };
    return &m;
}
