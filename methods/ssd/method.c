/* ssd — Self Supervision to Distillation (Li, Wang, Wu, "Self Supervision
 * to Distillation for Long-Tailed Visual Recognition", ICCV 2021,
 * arXiv:2109.04075; official code MCG-NJU/SSD-LT at 4d3a540). The spec is
 * ../shared/specs/methods-b.md §4 ([CODE]); README.md lists every choice.
 *
 * One run trains the three stages of the official code (and the optional
 * fourth) as stages of one model:
 *
 *   backbone -> feat -+-> proj1 -> proj_relu -> proj2        (g_q, group "proj")
 *                     +-> cls -> logits (per-class scale)    (cls: group "head", scale: "lws")
 *                     +-> soft                               (KD head, group "soft")
 *
 *   stage 0 (I, SSFL)  CE on logits (scale frozen at 1) + label-filtered
 *                      MoCo loss on proj2 against an EMA key encoder (a host
 *                      module: backbone + proj) and a labelled queue;
 *                      views: 0 = the protocol's (weak) augmentation, 1 =
 *                      the strong pipeline (the key's).
 *   stage 1 (II, SLG)  LWS: only the scale trains, class-aware sampler k = 2,
 *                      frozen backbone with train-mode BN (the code's quirk).
 *   stage 2 (III, SDL) the teacher module takes a copy of the stage-II model
 *                      (backbone + cls + scale, BN statistics included); the
 *                      run's model is reset to a fresh initialisation (the
 *                      "fresh" module, never trained); cls is the hard head
 *                      (CE), soft the KD head (T^2 KL to the teacher).
 *   stage 3 (IV, opt.) LWS on the hard head (cls -> logits), as stage II.
 *
 * The soft head is reported (predict), or the hard head through the scale
 * with report = "hard". Stage III is a representation stage, so it takes
 * the protocol's stage-1 block (copied at stage 0's stage_begin, which every
 * resume replays first). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define SSD_DEFAULTS                                                                                              \
    "{\"tau\": 0.2, \"ema_m\": 0.999, \"dim\": 128, \"queue_size\": 0, \"queue_label0\": false, "                 \
    "\"shuffle_bn_splits\": 8, \"query_view\": \"weak\", \"rrc_scale_min\": 0.2, \"jitter\": 0.4, "              \
    "\"jitter_p\": 0.8, \"lws_k\": 2, \"lws_bn\": \"train\", \"lws_decay\": true, \"kd_T\": 2.0, "                  \
    "\"kd_weight\": 1.0, \"teacher_bn\": \"train\", \"stage4\": false, \"report\": \"soft\"}"

enum { S_QUEUE = 0, S_SHUFFLE = 1 };   /* method streams LT_STREAM_METHOD + k */
enum { REPORT_SOFT = 0, REPORT_HARD = 1 };

typedef struct {
    const lt_run_info *run;
    int C, D, dim, S, stage4, report, query_strong, lws_bn, lws_k, lws_decay, teacher_bn_train, label0;
    double tau, ema_m, kd_T, kd_w, rrc_min, jitter, jitter_p;
    long queue_hp;
    lt_stage s1;                 /* the protocol's stage-1 block as stage 0 got it */
    int have_s1;
    lt_model *key, *teacher, *fresh;
    lt_ema *ema_key, *ema_teacher, *ema_fresh;
    lt_keyqueue q;
    int cap;                     /* rows the workspaces hold */
    size_t in_sz;
    float *xk, *kraw, *kn, *qn, *qinv, *lneg, *logits, *dlog, *dqn, *probs;
    float *zq;                   /* proj2's rows, then their gradient (host copies: the model may be on a device) */
    float *sout, *dsout;         /* the soft head's rows and their gradient (likewise) */
    uint8_t *mask;
    int32_t *perm;
    /* diagnostics (logged, not used) */
    double con_sum, kd_sum;
    long con_n, kd_n;
} ssd_state;

static int ssd_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    ssd_state *st = stp;
    static const char *const view_names[] = {"weak", "strong", NULL};
    static const char *const teacher_bn_names[] = {"eval", "train", NULL};
    static const char *const report_names[] = {"soft", "hard", NULL};
    double dim, S, k, l0, decay, s4;
    st->run = run;
    st->C = run->n_classes;
    st->D = run->feat_dim;
    if (st->C < 2 || st->D < 1) return lt_err(LT_EINVAL, "ssd: %d classes, feature size %d", st->C, st->D);
    int rc = lt_hp_num(hp, "tau", &st->tau);
    if (!rc) rc = lt_hp_num(hp, "ema_m", &st->ema_m);
    if (!rc) rc = lt_hp_num(hp, "dim", &dim);
    if (!rc) rc = lt_hp_int(hp, "queue_size", &st->queue_hp);
    if (!rc) rc = lt_hp_num(hp, "queue_label0", &l0);
    if (!rc) rc = lt_hp_num(hp, "shuffle_bn_splits", &S);
    if (!rc) rc = lt_hp_choice(hp, "query_view", view_names, &st->query_strong);
    if (!rc) rc = lt_hp_num(hp, "rrc_scale_min", &st->rrc_min);
    if (!rc) rc = lt_hp_num(hp, "jitter", &st->jitter);
    if (!rc) rc = lt_hp_num(hp, "jitter_p", &st->jitter_p);
    if (!rc) rc = lt_hp_num(hp, "lws_k", &k);
    if (!rc) rc = lt_hp_choice(hp, "lws_bn", lt_bn_mode_names, &st->lws_bn);
    if (!rc) rc = lt_hp_num(hp, "lws_decay", &decay);
    if (!rc) rc = lt_hp_num(hp, "kd_T", &st->kd_T);
    if (!rc) rc = lt_hp_num(hp, "kd_weight", &st->kd_w);
    if (!rc) rc = lt_hp_choice(hp, "teacher_bn", teacher_bn_names, &st->teacher_bn_train);
    if (!rc) rc = lt_hp_num(hp, "stage4", &s4);
    if (!rc) rc = lt_hp_choice(hp, "report", report_names, &st->report);
    if (rc) return lt_err_wrap(rc, "ssd");
    if (!(st->tau > 0)) return lt_err(LT_EINVAL, "ssd: tau %g must be > 0", st->tau);
    if (!(st->ema_m >= 0 && st->ema_m <= 1)) return lt_err(LT_EINVAL, "ssd: ema_m %g must be in [0, 1]", st->ema_m);
    if (!(dim >= 1 && dim <= 65536) || dim != floor(dim)) return lt_err(LT_EINVAL, "ssd: dim %g", dim);
    if (st->queue_hp < 0) return lt_err(LT_EINVAL, "ssd: queue_size %ld must be >= 0 (0: the rule)", st->queue_hp);
    if (!(S >= 1 && S <= 256) || S != floor(S)) return lt_err(LT_EINVAL, "ssd: shuffle_bn_splits %g (1..256)", S);
    if (!(st->rrc_min > 0 && st->rrc_min <= 1)) return lt_err(LT_EINVAL, "ssd: rrc_scale_min %g", st->rrc_min);
    if (!(st->jitter >= 0 && st->jitter_p >= 0 && st->jitter_p <= 1))
        return lt_err(LT_EINVAL, "ssd: jitter %g / jitter_p %g", st->jitter, st->jitter_p);
    if (!(k >= 1 && k <= 1024) || k != floor(k)) return lt_err(LT_EINVAL, "ssd: lws_k %g", k);
    if (!(st->kd_T > 0) || !(st->kd_w >= 0)) return lt_err(LT_EINVAL, "ssd: kd_T %g, kd_weight %g", st->kd_T, st->kd_w);
    if (st->report == REPORT_HARD && !s4)
        return lt_err(LT_EINVAL, "ssd: report \"hard\" needs stage4 (the stage-III hard head has no LWS otherwise; "
                                 "use report \"soft\")");
    /* Stage IV shares the backbone: unless its BN is in eval mode it
     * re-estimates the running statistics, and the soft head reported after
     * it would be neither stage III's nor stage IV's output. */
    if (st->report != REPORT_HARD && s4 && st->lws_bn != LT_BN_EVAL)
        return lt_err(LT_EINVAL, "ssd: stage4 with report \"soft\" and lws_bn \"%s\": stage IV re-estimates the "
                                 "backbone's BN statistics, so the soft head after it is not stage III's; report "
                                 "\"hard\", set lws_bn \"eval\", or report the soft head from a run without stage4",
                      lt_bn_mode_names[st->lws_bn]);
    st->dim = (int)dim;
    st->S = (int)S;
    st->lws_k = (int)k;
    st->label0 = l0 != 0;
    st->lws_decay = decay != 0;
    st->stage4 = s4 != 0;
    st->in_sz = lt_shape_count(run->in_shape);
    return LT_OK;
}

static void ssd_fini(void *stp) {
    ssd_state *st = stp;
    lt_ema_free(st->ema_key);
    lt_ema_free(st->ema_teacher);
    lt_ema_free(st->ema_fresh);
    lt_keyqueue_free(&st->q);
    float *bufs[] = {st->xk,     st->kraw,  st->kn, st->qn,   st->qinv, st->lneg,
                     st->logits, st->dlog, st->dqn, st->probs, st->zq,  st->sout, st->dsout};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) lt_free(bufs[i]);
    lt_free(st->mask);
    free(st->perm);
}

/* The heads on "feat" (node feat). parts: 1 projection, 2 classifier + scale,
 * 4 soft head. The run's model takes all three; the key encoder only the
 * projection and the teacher only the classifier, so the EMA / copy pairs
 * parameters by these names. */
enum { P_PROJ = 1, P_CLS = 2, P_SOFT = 4, P_ALL = 7 };
static int add_heads(const ssd_state *st, lt_model *m, int feat, int parts) {
    if (parts & P_PROJ) {
        /* MoCo-v2's MLP head: D -> D -> ReLU -> dim (2048 -> 2048 -> 128 in the code) */
        int a = lt_add_linear(m, "proj1", "proj", feat, st->D, 1);
        if (a < 0) return -a;
        int r = lt_add_relu(m, "proj_relu", "proj", a);
        if (r < 0) return -r;
        int b = lt_add_linear(m, "proj2", "proj", r, st->dim, 1);
        if (b < 0) return -b;
    }
    if (parts & P_CLS) {
        int c = lt_add_linear(m, "cls", "head", feat, st->C, 1);
        if (c < 0) return -c;
        /* LWS as the code's tau_norm_classifier: s * (W f + b), s init 1 */
        int s = lt_add_scale(m, "logits", "lws", c);
        if (s < 0) return -s;
    }
    if (parts & P_SOFT) {
        int k = lt_add_linear(m, "soft", "soft", feat, st->C, 1);
        if (k < 0) return -k;
    }
    return LT_OK;
}

static int ssd_build(void *stp, lt_model *m, int feat) { return add_heads(stp, m, feat, P_ALL); }

static int ssd_n_stages(const void *stp) { return ((const ssd_state *)stp)->stage4 ? 4 : 3; }

/* §4.5.2: K = floor(N / B) B (the code's 115,712 for ImageNet-LT at B = 256). */
static long ssd_queue_size(long n_train, int batch) { return batch > 0 ? n_train / batch * batch : 0; }

/* A host module holding a backbone of the run's arch and the given heads. */
static int make_module(ssd_state *st, const char *name, int parts, int rows, lt_model **out) {
    const lt_run_info *run = st->run;
    lt_model *mm;
    LT_TRY(run->api->module_new(run->host, name, run->in_shape, &mm));
    int f = lt_resnet_backbone(mm, run->arch);
    if (f < 0) return lt_err_wrap(-f, "ssd: module %s", name);
    LT_TRY(add_heads(st, mm, f, parts));
    const lt_module_cfg mc = {.kind = LT_OPT_SGD, .max_rows = rows};
    LT_TRY(run->api->module_ready(run->host, mm, &mc));
    /* never optimized: EMA, copies and forwards only */
    LT_TRY(lt_model_freeze(mm, NULL, 1));
    *out = mm;
    return LT_OK;
}

static int alloc_ws(ssd_state *st, int cap) {
    const size_t n = (size_t)cap, K = (size_t)st->q.K, d = (size_t)st->dim;
    st->cap = cap;
    st->xk = lt_alloc(n * st->in_sz * sizeof(float));
    st->kraw = lt_alloc(n * d * sizeof(float));
    st->kn = lt_alloc(n * d * sizeof(float));
    st->qn = lt_alloc(n * d * sizeof(float));
    st->qinv = lt_alloc(n * sizeof(float));
    st->dqn = lt_alloc(n * d * sizeof(float));
    st->lneg = lt_alloc(n * K * sizeof(float));
    st->logits = lt_alloc(n * (K + 1) * sizeof(float));
    st->dlog = lt_alloc(n * (K + 1) * sizeof(float));
    st->mask = lt_alloc(n * (K + 1));
    st->probs = lt_alloc(n * (size_t)st->C * sizeof(float));
    st->zq = lt_alloc(n * d * sizeof(float));
    st->sout = lt_alloc(n * (size_t)st->C * sizeof(float));
    st->dsout = lt_alloc(n * (size_t)st->C * sizeof(float));
    st->perm = malloc(n * sizeof(int32_t));
    if (!st->xk || !st->kraw || !st->kn || !st->qn || !st->qinv || !st->dqn || !st->lneg || !st->logits ||
        !st->dlog || !st->mask || !st->probs || !st->zq || !st->sout || !st->dsout || !st->perm)
        return lt_err(LT_ENOMEM, "ssd: workspaces for %d rows and a queue of %zu: out of memory", cap, K);
    return LT_OK;
}

/* The strong (key) view: MoCo-v2's recipe (lt_aug_pipeline_mocov2) with the
 * fmnist adaptation of issue 17: RRC scale (rrc_scale_min, 1), flip,
 * brightness / contrast (/ saturation on colour) jitter with p jitter_p;
 * grayscale only on colour images; blur only at ImageNet-like sizes (>= 64
 * a side; §4.5.7 drops it for 32x32 CIFAR, the issue for 28x28). */
static void strong_pipeline(const ssd_state *st, lt_aug_pipeline *p) {
    const lt_shape in = st->run->in_shape;
    lt_aug_pipeline_mocov2(p, 0);
    p->rrc_scale[0] = (float)st->rrc_min;
    p->rrc_scale[1] = 1.0f;
    p->jitter_p = (float)st->jitter_p;
    p->brightness = p->contrast = (float)st->jitter;
    p->saturation = in.c == 3 ? (float)st->jitter : 0.0f;
    if (in.c != 3) {
        p->hue = 0.0f;
        p->gray_p = 0.0f;
    }
    if (in.h < 64 || in.w < 64) p->blur_p = 0.0f;
}

static int stage_ssfl(ssd_state *st, lt_stage *cfg, lt_model *m) {
    /* the protocol's stage-1 block, kept for stage III (a resume replays this
     * stage_begin before any other) */
    st->s1 = *cfg;
    st->have_s1 = 1;
    if (!st->key) {
        /* created once per process; a resume's checkpoint then restores the
         * modules ("mod/<name>/") after the replay */
        LT_TRY(make_module(st, "ssd_key", P_PROJ, cfg->batch, &st->key));
        LT_TRY(make_module(st, "ssd_teacher", P_CLS, cfg->batch, &st->teacher));
        LT_TRY(make_module(st, "ssd_fresh", P_ALL, 1, &st->fresh));
        /* key <- query (encoder + projection); BN statistics stay the key's own (MoCo) */
        LT_TRY(lt_ema_create(&st->ema_key, st->key, m, LT_EMA_BUF_KEEP));
        LT_TRY(lt_ema_create(&st->ema_teacher, st->teacher, m, LT_EMA_BUF_COPY));
        LT_TRY(lt_ema_create(&st->ema_fresh, m, st->fresh, LT_EMA_BUF_COPY));
        long K = st->queue_hp ? st->queue_hp : ssd_queue_size(st->run->n_train, cfg->batch);
        if (K < 1 || K > (1L << 24))
            return lt_err(LT_EINVAL, "ssd: queue size %ld (training set %ld, batch %d)", K, st->run->n_train,
                          cfg->batch);
        lt_rng r;
        lt_rng_init(&r, st->run->seed, LT_STREAM_METHOD + S_QUEUE);
        LT_TRY(lt_keyqueue_init(&st->q, (int)K, st->dim, st->label0 ? 0 : -1, &r));
        LT_TRY(alloc_ws(st, cfg->batch));
        if (st->run->log) {
            LT_TRY(st->run->log(st->run->host, "queue_size", (double)K));
            LT_TRY(st->run->log(st->run->host, "shuffle_bn_splits", (double)st->S));
        }
    }
    /* f_k, g_k start as copies of f_q, g_q (builder.py) */
    LT_TRY(lt_ema_copy(st->ema_key));
    LT_TRY(lt_model_freeze(m, NULL, 0));
    /* the scale stays 1 (plain linear classifier); the KD head waits for stage III */
    LT_TRY(lt_model_freeze(m, "lws", 1));
    LT_TRY(lt_model_freeze(m, "soft", 1));
    LT_TRY(lt_model_set_eval(m, NULL, 0));
    cfg->views = 2;
    cfg->model_views = 1;
    cfg->n_view_pipelines = 2;
    memset(cfg->view_pipelines, 0, sizeof cfg->view_pipelines);
    /* view 0 = the query: the protocol's weak augmentation (the code's
     * augmentation list), or the strong one on request; view 1 = the key */
    if (st->query_strong) strong_pipeline(st, &cfg->view_pipelines[0]);
    strong_pipeline(st, &cfg->view_pipelines[1]);
    return LT_OK;
}

static int stage_lws(ssd_state *st, lt_stage *cfg, lt_model *m) {
    /* ssd_stage_ii.py: everything frozen but the scale, class-aware sampler
     * (num_samples_cls = 2), model.train() (BN of the frozen encoder
     * re-estimated on class-balanced batches) */
    const lt_decoupled d = {st->lws_bn, "lws", 0, st->run->seed, LT_SAMPLER_CLASS_AWARE, st->lws_k};
    LT_TRY(lt_stage_decoupled(cfg, m, &d));
    /* §4.5.6: torch's weight decay reaches the scale too */
    return lt_model_param_flags(m, "logits.scale", st->lws_decay ? 0 : LT_MASK_NO_DECAY,
                                st->lws_decay ? LT_MASK_NO_DECAY : 0);
}

static int stage_sdl(ssd_state *st, lt_stage *cfg, lt_model *m) {
    if (!st->have_s1) return lt_err(LT_ESTATE, "ssd: stage III before stage I's stage_begin");
    /* a representation stage: the protocol's stage-1 block (epochs, lr and
     * its schedule, batch, sampler, BN mode), not the classifier block */
    const lt_stage *s = &st->s1;
    cfg->proto_stage = 1;
    cfg->epochs = s->epochs;
    cfg->batch = s->batch;
    cfg->drop_last = s->drop_last;
    cfg->samples_per_epoch = s->samples_per_epoch;
    cfg->sched = s->sched;
    cfg->lr_per_epoch = s->lr_per_epoch;
    cfg->head_lr_mult = s->head_lr_mult;
    cfg->momentum = s->momentum;
    cfg->weight_decay = s->weight_decay;
    cfg->nesterov = s->nesterov;
    cfg->sampler = s->sampler;
    cfg->bn_eval = s->bn_eval;
    cfg->augment = 1;
    cfg->views = cfg->model_views = 1;
    cfg->n_view_pipelines = 0;
    cfg->freeze_backbone = cfg->reinit_head = 0;
    /* teacher <- the stage-II model: encoder, classifier, scale, and the BN
     * statistics stage II re-estimated (SLG's saved checkpoint) */
    LT_TRY(lt_ema_copy(st->ema_teacher));
    LT_TRY(lt_model_freeze(st->teacher, NULL, 1));
    /* ssd_stage_iii.py keeps the teacher inside the trained module: in
     * train mode its BN runs on batch statistics (teacher_bn = "train") */
    LT_TRY(lt_model_set_eval(st->teacher, NULL, !st->teacher_bn_train));
    /* a new, randomly initialised student (not stage I's encoder): every
     * parameter and BN buffer from the never-trained "fresh" module */
    LT_TRY(lt_ema_copy(st->ema_fresh));
    LT_TRY(lt_model_freeze(m, NULL, 0));
    LT_TRY(lt_model_freeze(m, "lws", 1));    /* the hard head is a plain linear layer (scale 1) */
    LT_TRY(lt_model_freeze(m, "proj", 1));   /* unused from here */
    return lt_model_set_eval(m, NULL, 0);
}

static int ssd_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    ssd_state *st = stp;
    switch (stage) {
    case 0: return stage_ssfl(st, cfg, m);
    case 1: return stage_lws(st, cfg, m);
    case 2: return stage_sdl(st, cfg, m);
    case 3:
        /* optional stage IV: ssd_stage_ii.py on the stage-III checkpoint maps
         * the encoder and the hard head (classifier.*) into LWS; the scale
         * is still exactly 1 (frozen since the fresh copy) */
        if (st->stage4) return stage_lws(st, cfg, m);
        break;
    default: break;
    }
    return lt_err(LT_EINVAL, "ssd: no stage %d (%d stages)", stage + 1, ssd_n_stages(st));
}

/* y = x / max(|x|, 1e-12) per row (torch F.normalize), inv[i] = 1 / max(|x_i|, eps) */
static void normalize_rows(int n, int d, const float *x, float *y, float *inv) {
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * d;
        double s = 0;
        for (int k = 0; k < d; k++) s += (double)r[k] * r[k];
        const float v = (float)(1.0 / fmax(sqrt(s), 1e-12));
        if (inv) inv[i] = v;
        for (int k = 0; k < d; k++) y[(size_t)i * d + k] = r[k] * v;
    }
}

/* The key batch through the key encoder with single-device shuffle-BN
 * (§4.5.1): rows permuted, then S sub-batches forwarded separately, so each
 * BN normalises over an S-th of the (shuffled) batch as one of the code's 8
 * GPUs does; the outputs go back to the original order. */
static int key_forward(ssd_state *st, int n, const float *xkey, lt_rng *rng) {
    for (int i = 0; i < n; i++) st->perm[i] = i;
    lt_rng_shuffle_i32(rng, st->perm, n);
    for (int i = 0; i < n; i++)
        memcpy(st->xk + (size_t)i * st->in_sz, xkey + (size_t)st->perm[i] * st->in_sz, st->in_sz * sizeof(float));
    const int S = st->S < n ? st->S : n;
    const int proj = lt_model_find(st->key, "proj2");
    for (int b = 0; b < S; b++) {
        const int lo = (int)((long)n * b / S), hi = (int)((long)n * (b + 1) / S);
        LT_TRY(lt_model_forward(st->key, st->xk + (size_t)lo * st->in_sz, hi - lo, 1));
        const float *o = lt_model_out(st->key, proj);
        for (int r = lo; r < hi; r++)
            memcpy(st->kraw + (size_t)st->perm[r] * st->dim, o + (size_t)(r - lo) * st->dim, st->dim * sizeof(float));
    }
    normalize_rows(n, st->dim, st->kraw, st->kn, NULL);
    return LT_OK;
}

/* The label-filtered contrastive loss of builder.py SSFL.cal_contrastive_loss
 * on normalised q (n x dim), k (n x dim) and the queue; dqn = dL/dq. */
static int ssfl_contrast(ssd_state *st, int n, const int32_t *y, double *loss) {
    const int K = st->q.K, d = st->dim, M = K + 1;
    const float it = (float)(1.0 / st->tau);
    lt_linear_forward(n, d, K, st->qn, st->q.keys, NULL, st->lneg);   /* q . queue^T */
    for (int i = 0; i < n; i++) {
        float pos = 0;
        for (int k = 0; k < d; k++) pos += st->qn[(size_t)i * d + k] * st->kn[(size_t)i * d + k];
        float *row = st->logits + (size_t)i * M;
        row[0] = pos * it;
        for (int j = 0; j < K; j++) row[1 + j] = st->lneg[(size_t)i * K + j] * it;
    }
    lt_queue_contrast_mask(n, y, K, st->q.labels, st->mask);
    int nv = 0;
    LT_TRY(lt_masked_contrast(n, M, st->logits, st->mask, loss, st->dlog, &nv));
    /* dq = (dl_0 k + sum_j dl_j queue_j) / tau */
    for (int i = 0; i < n; i++)
        memcpy(st->lneg + (size_t)i * K, st->dlog + (size_t)i * M + 1, (size_t)K * sizeof(float));
    memset(st->dqn, 0, (size_t)n * d * sizeof(float));
    lt_linear_backward(n, d, K, NULL, st->q.keys, st->lneg, st->dqn, NULL, NULL);
    for (int i = 0; i < n; i++) {
        const float d0 = st->dlog[(size_t)i * M];
        for (int k = 0; k < d; k++) {
            float *g = &st->dqn[(size_t)i * d + k];
            *g = (*g + d0 * st->kn[(size_t)i * d + k]) * it;
        }
    }
    return LT_OK;
}

static int loss_ssfl(ssd_state *st, const lt_taps *t, double *loss, lt_grads *g) {
    const int n = t->n;
    if (t->views != 2 || t->x_rows != 2 * n)
        return lt_err(LT_ESTATE, "ssd: stage I needs 2 views (got %d views, %d rows for %d)", t->views, t->x_rows, n);
    if (n > st->cap) return lt_err(LT_ESTATE, "ssd: %d rows, workspaces for %d", n, st->cap);
    double lce, lcon;
    LT_TRY(lt_softmax_ce(n, st->C, t->logits, t->labels, NULL, NULL, &lce, g->dlogits));
    lt_model *m = t->model;
    const int proj = lt_model_find(m, "proj2");
    /* the model's tensors through host copies (LT_METHOD_HOST_TAPS: on a
     * device run the model is there; on cpu a memcpy) */
    LT_TRY(lt_model_out_to_host(m, proj, n, st->zq));
    normalize_rows(n, st->dim, st->zq, st->qn, st->qinv);
    /* no gradient: the EMA step uses theta_q after the previous step, as
     * forward() does before encoding the keys */
    LT_TRY(lt_ema_update(st->ema_key, (float)st->ema_m));
    lt_rng base, r;
    lt_rng_init(&base, st->run->seed, LT_STREAM_METHOD + S_SHUFFLE);
    lt_rng_derive(&r, &base, (uint64_t)t->iter, (uint64_t)t->epoch);
    LT_TRY(key_forward(st, n, t->x + (size_t)n * st->in_sz, &r));
    LT_TRY(ssfl_contrast(st, n, t->labels, &lcon));
    /* through q = z / |z|: dz = (dq - q (q . dq)) / |z| (into zq: z was
     * read into qn already) */
    float *dz = st->zq;
    for (int i = 0; i < n; i++) {
        const float *q = st->qn + (size_t)i * st->dim, *dq = st->dqn + (size_t)i * st->dim;
        float dot = 0;
        for (int k = 0; k < st->dim; k++) dot += q[k] * dq[k];
        for (int k = 0; k < st->dim; k++) dz[(size_t)i * st->dim + k] = (dq[k] - q[k] * dot) * st->qinv[i];
    }
    LT_TRY(lt_model_dout_from_host(m, proj, n, dz));
    g->extra[g->n_extra++] = proj;
    /* dequeue and enqueue after the loss (the queue the loss saw is the old one) */
    LT_TRY(lt_keyqueue_push(&st->q, n, st->kn, t->labels));
    st->con_sum += lcon;
    st->con_n++;
    *loss = lce + lcon;
    return LT_OK;
}

static int loss_sdl(ssd_state *st, const lt_taps *t, double *loss, lt_grads *g) {
    const int n = t->n;
    if (n > st->cap) return lt_err(LT_ESTATE, "ssd: %d rows, workspaces for %d", n, st->cap);
    double lce, lkd;
    LT_TRY(lt_softmax_ce(n, st->C, t->logits, t->labels, NULL, NULL, &lce, g->dlogits));
    /* the teacher sees the student's (weak) image; no gradient reaches it */
    LT_TRY(lt_model_forward(st->teacher, t->x, n, 1));
    const float *tl = lt_model_out(st->teacher, lt_model_find(st->teacher, "logits"));
    lt_model *m = t->model;
    const int soft = lt_model_find(m, "soft");
    float *ds = st->dsout;
    LT_TRY(lt_model_out_to_host(m, soft, n, st->sout));
    LT_TRY(lt_kd_loss(n, st->C, st->sout, tl, (float)st->kd_T, st->probs, &lkd, ds));
    if (st->kd_w != 1.0)
        for (size_t i = 0; i < (size_t)n * st->C; i++) ds[i] *= (float)st->kd_w;
    LT_TRY(lt_model_dout_from_host(m, soft, n, ds));
    g->extra[g->n_extra++] = soft;
    st->kd_sum += lkd;
    st->kd_n++;
    *loss = lce + st->kd_w * lkd;
    return LT_OK;
}

static int ssd_loss(void *stp, const lt_taps *t, double *loss, lt_grads *g) {
    ssd_state *st = stp;
    if (t->stage == 0) return loss_ssfl(st, t, loss, g);
    if (t->stage == 2) return loss_sdl(st, t, loss, g);
    /* stages II and IV: CE through the scaled classifier */
    return lt_softmax_ce(t->n, st->C, t->logits, t->labels, NULL, NULL, loss, g->dlogits);
}

static int ssd_epoch_end(void *stp, int stage, int epoch, lt_model *m) {
    ssd_state *st = stp;
    (void)epoch;
    (void)m;
    if (!st->run->log) return LT_OK;
    if (stage == 0 && st->con_n) LT_TRY(st->run->log(st->run->host, "contrastive_loss", st->con_sum / st->con_n));
    if (stage == 2 && st->kd_n) LT_TRY(st->run->log(st->run->host, "kd_loss", st->kd_sum / st->kd_n));
    st->con_sum = st->kd_sum = 0;
    st->con_n = st->kd_n = 0;
    return LT_OK;
}

/* Values logged from post_train land in result.json's method_report: the
 * shuffle-BN split count S and the queue size are recorded with the numbers
 * (§4.5.1 asks for S). */
static int ssd_post_train(void *stp, lt_model *m, const lt_feature_bank *fb) {
    ssd_state *st = stp;
    (void)m;
    (void)fb;
    if (!st->run->log) return LT_OK;
    LT_TRY(st->run->log(st->run->host, "shuffle_bn_splits", (double)st->S));
    return st->run->log(st->run->host, "queue_size", (double)st->q.K);
}

static int ssd_predict(void *stp, const lt_taps *t, float *scores, int *kind) {
    ssd_state *st = stp;
    if (st->report == REPORT_SOFT) LT_TRY(lt_model_out_to_host(t->model, lt_model_find(t->model, "soft"), t->n, scores));
    else memcpy(scores, t->logits, (size_t)t->n * st->C * sizeof(float));
    *kind = LT_SCORES_LOGITS;
    return LT_OK;
}

static int ssd_class_norms(const void *stp, lt_model *m, int n_classes, double *norms) {
    const ssd_state *st = stp;
    lt_param_info w, s;
    const char *wn = st->report == REPORT_SOFT ? "soft.weight" : "cls.weight";
    LT_TRY(lt_model_param_find(m, wn, &w));
    LT_TRY(lt_model_param_find(m, "logits.scale", &s));
    const size_t D = w.count / (size_t)n_classes;
    for (int j = 0; j < n_classes; j++) {
        double q = 0;
        for (size_t d = 0; d < D; d++) q += (double)w.w[j * D + d] * w.w[j * D + d];
        norms[j] = (st->report == REPORT_SOFT ? 1.0 : fabs((double)s.w[j])) * sqrt(q);
    }
    return LT_OK;
}

static int ssd_save(const void *stp, lt_ckpt_writer *w, const char *prefix) {
    const ssd_state *st = stp;
    char key[160];
    snprintf(key, sizeof key, "%squeue/", prefix);
    return lt_keyqueue_save(&st->q, w, key);
}

static int ssd_load(void *stp, const lt_ckpt *c, const char *prefix) {
    ssd_state *st = stp;
    char key[160];
    snprintf(key, sizeof key, "%squeue/", prefix);
    int rc = lt_keyqueue_load(&st->q, c, key);
    if (rc) return lt_err_wrap(rc, "ssd: queue");
    for (int j = 0; j < st->q.K; j++)
        if (st->q.labels[j] < -1 || st->q.labels[j] >= st->C)
            return lt_err(LT_EDATA, "ssd: checkpoint queue entry %d has label %d", j, st->q.labels[j]);
    return LT_OK;
}

const lt_method *lt_method_ssd(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "ssd",
        .version = "1",
        .cite = "Li, Wang, Wu, ICCV 2021, arXiv:2109.04075",
        .fidelity = "official-code",
        .defaults = SSD_DEFAULTS,
        /* every hook reads the run's model through host copies; the
         * modules are cpu models on a device run (its key encoder and
         * teacher forwards run on the host there) */
        .flags = LT_METHOD_HOST_TAPS,
        .state_size = sizeof(ssd_state),
        .init = ssd_init,
        .fini = ssd_fini,
        .build = ssd_build,
        .n_stages = ssd_n_stages,
        .stage_begin = ssd_stage_begin,
        .loss = ssd_loss,
        .epoch_end = ssd_epoch_end,
        .post_train = ssd_post_train,
        .predict = ssd_predict,
        .save = ssd_save,
        .load = ssd_load,
        .class_norms = ssd_class_norms,
    };
    return &m;
}
