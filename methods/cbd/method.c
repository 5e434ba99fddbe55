/* methods/cbd — Class-Balanced Distillation (Iscen, Araujo, Gong, Schmid,
 * BMVC 2021, arXiv:2104.05279), after the official code
 * google-research/class_balanced_distillation (train.py, resnet.py,
 * input_pipeline.py, configs/stage_two_cbd*.py); spec methods-a.md §3.
 *
 * Stage 0 is the teacher: the finished run of `cbd_teacher` (instance
 * sampling, softmax CE, cosine classifier with fixed sigma = 20) of the same
 * protocol/scale/seed, named in stage1_from so the runner trains it first
 * when it is missing. The runner loads that model into this one by
 * parameter name as it does for every stage1_from method; CBD's student is
 * a NEW network trained from scratch (spec §3: "not initialised from the
 * teacher"), so stage_begin(1) initialises every parameter and buffer again
 * as a fresh model would be (lt_model_init_params), from the run seed +
 * 1000 (the runner's seed for a later stage's re-initialisation): not the
 * teacher's initialisation (seed s), nor a second teacher's (s + 1). The
 * official stage-two config shares config.seed with its teacher's, but its
 * teachers' variables are created first in the same seeded sequence, so its
 * student's initial weights are other draws than the teacher's were.
 * (Version 1 restored the run's own initialisation, the teacher's: the
 * student started where its teacher had.)
 *
 * Stage 1, the student: backbone -> GAP "feat" -> projection Dense(P) +
 * ReLU ("proj", P = feat_dim x K) -> cosine classifier sigma = 20 (the
 * projection's output is L2-normalised inside the cosine layer). Sampling
 * is the official class-balanced over/under-sampling stream (engine
 * LT_SAMPLER_OVER_UNDER). Loss per batch, train.py train_step:
 *   L = (1 - alpha) CE + alpha * beta * mean_i (1 - cos(g_s,i, g_t,i))
 * g_s = the projection's output, g_t = the K teachers' pooled features,
 * each L2-normalised, concatenated, L2-normalised again; the teachers run
 * in inference mode (BN running statistics) on the same augmented batch and
 * are frozen (the host freezes them; cbd never calls their backward).
 * Weight decay is the runner's: on every parameter, BN included, as the
 * official explicit L2 loss. The schedule, epochs and learning rate of the
 * student are the protocol's stage-1 block (a representation stage),
 * copied in stage_begin(0) because the runner prefills stage 1 from the
 * stage-2 block. The final model is the student with its own classifier. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define CBD_DEFAULTS \
    "{\"alpha\": 0.4, \"beta\": 100.0, \"sigma\": 20.0, \"teachers\": 1, \"sampler\": \"over_under\"}"

#define CBD_MAX_TEACHERS 2
/* tf.nn.l2_normalize's epsilon is 1e-12 on the squared norm: a norm floor of 1e-6 */
#define CBD_EPS 1e-6f

static const char *const sampler_names[] = {"over_under", "class_balanced", NULL};

typedef struct {
    const lt_run_info *run;
    int C, D, K, P;
    double alpha, beta, sigma;
    int sampler;
    int proj;                     /* node "proj_relu": g_s */
    lt_stage s0;                  /* the protocol's stage-1 settings */
    int have_s0;
    lt_model *T[CBD_MAX_TEACHERS];
    int tfeat[CBD_MAX_TEACHERS];
    float *tcat;                  /* [cap x P] concatenated teacher features */
    /* host arrays of the model's values this method reads and writes, so it
     * runs the same on a device model (lt_model_*_host copies) */
    float *tf;                    /* [cap x D] one teacher's pooled features */
    float *gs, *dgs;              /* [cap x P] the student's projection and its gradient */
    float *vals;                  /* the largest parameter or buffer (checksums) */
    int cap;
    uint64_t tsum[CBD_MAX_TEACHERS];   /* checksum of each teacher's parameters and buffers */
} cbd_state;

/* FNV-1a over a model's parameter and buffer bytes: the teachers must come
 * out of every epoch exactly as they went in (frozen, inference-mode BN),
 * and epoch_end checks it, so a change that let a gradient or a BN update
 * reach them fails the run instead of silently moving the target. */
static int cbd_checksum(lt_model *m, float *v, uint64_t *out) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < lt_model_n_params(m) + lt_model_n_buffers(m); i++) {
        size_t n;
        if (i < lt_model_n_params(m)) {
            lt_param_info p;
            LT_TRY(lt_model_param_at(m, i, &p));
            LT_TRY(lt_model_param_to_host(m, i, v, NULL));
            n = p.count;
        } else {
            lt_buffer_info b;
            LT_TRY(lt_model_buffer_at(m, i - lt_model_n_params(m), &b));
            LT_TRY(lt_model_buffer_to_host(m, i - lt_model_n_params(m), v));
            n = b.count;
        }
        const unsigned char *c = (const unsigned char *)v;
        for (size_t k = 0; k < n * sizeof(float); k++) {
            h ^= c[k];
            h *= 1099511628211ull;
        }
    }
    *out = h;
    return LT_OK;
}

static int cbd_init(void *vst, const lt_run_info *run, const lt_hparams *hp) {
    cbd_state *st = vst;
    st->run = run;
    st->C = run->n_classes;
    st->D = run->feat_dim;
    long k = 0;
    int rc = lt_hp_num(hp, "alpha", &st->alpha);
    if (!rc) rc = lt_hp_num(hp, "beta", &st->beta);
    if (!rc) rc = lt_hp_num(hp, "sigma", &st->sigma);
    if (!rc) rc = lt_hp_int(hp, "teachers", &k);
    if (!rc) rc = lt_hp_choice(hp, "sampler", sampler_names, &st->sampler);
    if (rc) return rc;
    if (!(st->alpha >= 0 && st->alpha <= 1)) return lt_err(LT_EINVAL, "cbd: alpha %g must be in [0, 1]", st->alpha);
    if (!(st->beta >= 0)) return lt_err(LT_EINVAL, "cbd: beta %g must be >= 0", st->beta);
    if (!(st->sigma > 0)) return lt_err(LT_EINVAL, "cbd: sigma %g must be > 0", st->sigma);
    if (k < 1 || k > CBD_MAX_TEACHERS)
        return lt_err(LT_EINVAL, "cbd: teachers %ld must be 1 or %d", k, CBD_MAX_TEACHERS);
    st->K = (int)k;
    st->P = st->D * st->K;   /* official proj_dim = 2048 x K: the pooled width x K */
    return LT_OK;
}

static void cbd_fini(void *vst) {
    cbd_state *st = vst;
    lt_free(st->tcat);
    lt_free(st->tf);
    lt_free(st->gs);
    lt_free(st->dgs);
    free(st->vals);
}

/* The largest parameter or buffer of m, in floats. */
static size_t cbd_largest(lt_model *m) {
    size_t mx = 1;
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info p;
        if (!lt_model_param_at(m, i, &p) && p.count > mx) mx = p.count;
    }
    for (int i = 0; i < lt_model_n_buffers(m); i++) {
        lt_buffer_info b;
        if (!lt_model_buffer_at(m, i, &b) && b.count > mx) mx = b.count;
    }
    return mx;
}

static int cbd_n_stages(const void *st) {
    (void)st;
    return 2;
}

/* Projection Dense(P) + ReLU, then the cosine classifier "logits" whose
 * parameters are renamed "cls.*": the teacher's head is also "logits" (and
 * of another width when K = 2), and the runner's stage-1 loader matches
 * parameters by name, so the student's classifier is never loaded from it. */
static int cbd_build(void *vst, lt_model *m, int feat) {
    cbd_state *st = vst;
    int p = lt_add_linear(m, "proj", "head", feat, st->P, 1);
    if (p < 0) return p;
    int r = lt_add_relu(m, "proj_relu", "head", p);
    if (r < 0) return r;
    int l = lt_add_cosine(m, "logits", "head", r, st->C, (float)st->sigma);
    if (l < 0) return l;
    st->proj = r;
    return lt_model_rename_params(m, l, "cls");
}

/* The student's initialisation seed: the runner's rule for a stage that
 * starts parameters afresh (seed + 1000 x stage), which no teacher (seeds
 * s, s + 1) shares. */
static uint64_t cbd_student_seed(uint64_t run_seed, int stage_index) {
    return run_seed + 1000u * (uint64_t)stage_index;
}

/* Per-class norms of the rows that score the test set: the cosine
 * classifier normalises every row to sigma (the raw rows' norms say
 * nothing about how it scores). */
static int cbd_class_norms(const void *vst, lt_model *m, int n_classes, double *norms) {
    const cbd_state *st = vst;
    (void)m;
    for (int j = 0; j < n_classes; j++) norms[j] = st->sigma;
    return LT_OK;
}

static int cbd_stage_begin(void *vst, int stage, lt_stage *cfg, lt_model *m) {
    cbd_state *st = vst;
    if (stage == 0) {
        /* keep the protocol's stage-1 block for the student */
        st->s0 = *cfg;
        st->have_s0 = 1;
        return LT_OK;
    }
    if (!st->have_s0) return lt_err(LT_ESTATE, "cbd: stage 2 began before stage 1");
    /* the student: a representation stage on the protocol's stage-1 block */
    const int index = cfg->index;
    *cfg = st->s0;
    cfg->index = index;
    cfg->freeze_backbone = 0;
    cfg->reinit_head = 0;
    cfg->sampler.kind = st->sampler == 0 ? LT_SAMPLER_OVER_UNDER : LT_SAMPLER_CLASS_BALANCED;
    cfg->sampler.class_weights = NULL;
    /* the student from scratch, over the teacher's weights the runner loaded
     * (a resumed run replays this, then loads its checkpoint) */
    LT_TRY(lt_model_init_params(m, NULL, cbd_student_seed(st->run->seed, index)));
    LT_TRY(lt_model_freeze(m, NULL, 0));
    LT_TRY(lt_model_set_eval(m, NULL, 0));
    if (!st->T[0]) {
        st->cap = cfg->batch;
        for (int k = 0; k < st->K; k++) {
            /* teacher k: cbd_teacher at this run's seed + k (official CBD_ENS:
             * the vanilla teachers of seeds 1 and 2), BN on running statistics
             * (train.py TeacherModel: training=False) */
            lt_teacher_req rq = {"cbd_teacher", (long)(st->run->seed + (uint64_t)k), NULL, 0, st->cap};
            LT_TRY(st->run->api->teacher(st->run->host, &rq, &st->T[k]));
            st->tfeat[k] = lt_model_find(st->T[k], "feat");
            if (st->tfeat[k] < 0) return lt_err(LT_EDATA, "cbd: teacher %d has no 'feat' node", k);
            if (lt_model_out_size(st->T[k], st->tfeat[k]) != (size_t)st->D)
                return lt_err(LT_EDATA, "cbd: teacher %d feature width %zu, student %d", k,
                              lt_model_out_size(st->T[k], st->tfeat[k]), st->D);
        }
        st->tcat = lt_alloc((size_t)st->cap * st->P * sizeof(float));
        st->tf = lt_alloc((size_t)st->cap * st->D * sizeof(float));
        st->gs = lt_alloc((size_t)st->cap * st->P * sizeof(float));
        st->dgs = lt_alloc((size_t)st->cap * st->P * sizeof(float));
        size_t mx = 1;
        for (int k = 0; k < st->K; k++) {
            const size_t t = cbd_largest(st->T[k]);
            if (t > mx) mx = t;
        }
        st->vals = malloc(mx * sizeof(float));
        if (!st->tcat || !st->tf || !st->gs || !st->dgs || !st->vals) return lt_err(LT_ENOMEM, "cbd: out of memory");
        for (int k = 0; k < st->K; k++) LT_TRY(cbd_checksum(st->T[k], st->vals, &st->tsum[k]));
    }
    return LT_OK;
}

static int cbd_epoch_end(void *vst, int stage, int epoch, lt_model *m) {
    cbd_state *st = vst;
    (void)m;
    if (stage == 0) return LT_OK;
    for (int k = 0; k < st->K; k++) {
        uint64_t h;
        LT_TRY(cbd_checksum(st->T[k], st->vals, &h));
        if (h != st->tsum[k])
            return lt_err(LT_ESTATE, "cbd: teacher %d changed during epoch %d (it must stay frozen)", k, epoch + 1);
    }
    return LT_OK;
}

/* g_t for n rows of input x: each teacher's pooled feature L2-normalised,
 * concatenated, normalised again (a no-op for K = 1: already unit norm). */
static int cbd_teacher_feats(cbd_state *st, const float *x, int n) {
    if (n > st->cap) return lt_err(LT_EINVAL, "cbd: batch of %d rows, teachers planned for %d", n, st->cap);
    for (int k = 0; k < st->K; k++) {
        LT_TRY(lt_model_forward(st->T[k], x, n, 0));
        const float *f = st->tf;
        LT_TRY(lt_model_out_to_host(st->T[k], st->tfeat[k], n, st->tf));
        for (int i = 0; i < n; i++)
            lt_l2_normalize_rows(1, st->D, f + (size_t)i * st->D, CBD_EPS, st->tcat + (size_t)i * st->P + (size_t)k * st->D);
    }
    if (st->K > 1) lt_l2_normalize_rows(n, st->P, st->tcat, CBD_EPS, st->tcat);
    return LT_OK;
}

static int cbd_loss(void *vst, const lt_taps *t, double *loss, lt_grads *g) {
    cbd_state *st = vst;
    const int n = t->n, C = st->C;
    double lce = 0, ld = 0;
    LT_TRY(lt_softmax_ce(n, C, t->logits, t->labels, NULL, NULL, &lce, g->dlogits));
    if (t->stage == 0) {   /* never trained here (stage1_from), kept as plain CE */
        *loss = lce;
        return LT_OK;
    }
    if (t->x_rows < n) return lt_err(LT_EINVAL, "cbd: %d input rows for %d taps", t->x_rows, n);
    LT_TRY(cbd_teacher_feats(st, t->x, n));
    const float a = (float)st->alpha, ab = (float)(st->alpha * st->beta);
    for (size_t i = 0; i < (size_t)n * C; i++) g->dlogits[i] *= 1.0f - a;
    float *gs = st->gs, *dgs = st->dgs;
    LT_TRY(lt_model_out_to_host(t->model, st->proj, n, gs));
    LT_TRY(lt_cosine_distance(n, st->P, gs, st->tcat, CBD_EPS, &ld, dgs, NULL));
    for (size_t i = 0; i < (size_t)n * st->P; i++) dgs[i] *= ab;
    LT_TRY(lt_model_dout_from_host(t->model, st->proj, n, dgs));
    g->extra[g->n_extra++] = st->proj;
    *loss = (1.0 - st->alpha) * lce + st->alpha * st->beta * ld;
    return LT_OK;
}

const lt_method *lt_method_cbd(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "cbd",
        .version = "2",
        .cite = "Iscen et al., BMVC 2021, arXiv:2104.05279",
        .fidelity = "official-code",
        .defaults = CBD_DEFAULTS,
        .state_size = sizeof(cbd_state),
        /* the loss reads the taps, the teachers' features and the
         * projection through host copies, and copies its extra gradient in;
         * stage_begin and epoch_end copy parameters the same way */
        .flags = LT_METHOD_HOST_TAPS,
        .stage1_from = "cbd_teacher",
        .init = cbd_init,
        .fini = cbd_fini,
        .build = cbd_build,
        .n_stages = cbd_n_stages,
        .stage_begin = cbd_stage_begin,
        .loss = cbd_loss,
        .epoch_end = cbd_epoch_end,
        .class_norms = cbd_class_norms,
    };
    return &m;
}
