/* methods/cbd_teacher — CBD's stage 1 (Iscen, Araujo, Gong, Schmid,
 * "Class-Balanced Distillation for Long-Tailed Visual Recognition", BMVC
 * 2021; google-research/class_balanced_distillation,
 * configs/stage_one_vanilla_seed{1,2}.py): the "vanilla" teacher, a plain
 * instance-sampled softmax-CE network whose classifier is a cosine layer
 * with a FIXED scale sigma = 20 (resnet.py CosineLayer): logits_j = sigma *
 * cos(w_j, f). Everything else is the protocol's stage 1.
 *
 * It is a run of its own, not a stage inside cbd, because CBD's teacher is
 * a separate, finished network that the student distils from (the official
 * code loads it from another work directory): cbd names it in stage1_from,
 * so the runner trains it first when its final checkpoint is absent, and
 * cbd reaches it read-only through the host's teacher service. A second
 * seed of it is cbd's second teacher (cbd "teachers": 2). */
#include "lt.h"
#include "lt_method.h"

#define CBD_TEACHER_DEFAULTS "{\"sigma\": 20.0}"

typedef struct {
    int C;
    double sigma;
} cbdt_state;

static int cbdt_init(void *vst, const lt_run_info *run, const lt_hparams *hp) {
    cbdt_state *st = vst;
    st->C = run->n_classes;
    LT_TRY(lt_hp_num(hp, "sigma", &st->sigma));
    if (!(st->sigma > 0)) return lt_err(LT_EINVAL, "cbd_teacher: sigma %g must be > 0", st->sigma);
    return LT_OK;
}

/* The head: a cosine classifier on the pooled feature, no bias (CosineLayer
 * normalises the feature and each class weight; sigma is a constant). */
static int cbdt_build(void *vst, lt_model *m, int feat) {
    cbdt_state *st = vst;
    int l = lt_add_cosine(m, "logits", "head", feat, st->C, (float)st->sigma);
    return l < 0 ? l : LT_OK;
}

/* Per-class norms of the rows that score the test set: the cosine layer
 * normalises every row to sigma, so the raw rows' norms (what per_class.csv
 * held before version 2) say nothing about how it scores. */
static int cbdt_class_norms(const void *vst, lt_model *m, int n_classes, double *norms) {
    const cbdt_state *st = vst;
    (void)m;
    if (n_classes != st->C)
        return lt_err(LT_EINVAL, "cbd_teacher: class_norms for %d classes, the run has %d", n_classes, st->C);
    for (int j = 0; j < n_classes; j++) norms[j] = st->sigma;
    return LT_OK;
}

const lt_method *lt_method_cbd_teacher(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "cbd_teacher",
        .version = "2",
        .cite = "Iscen et al., BMVC 2021, arXiv:2104.05279",
        .fidelity = "official-code",
        .defaults = CBD_TEACHER_DEFAULTS,
        .state_size = sizeof(cbdt_state),
        .init = cbdt_init,
        .build = cbdt_build,
        .class_norms = cbdt_class_norms,
    };
    return &m;
}
