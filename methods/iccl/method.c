/* iccl — Interpolative Centroid Contrastive Learning (Tiong, Li, Lin, Li,
 * Xiong, Hoi, "Improving Tail-Class Representation with Centroid
 * Contrastive Learning", arXiv 2110.10048). No official code could be
 * obtained (salesforce/ICCL), and the paper's formulas were not available:
 * the spec (../shared/specs/methods-b.md §3) rebuilds the method around the
 * abstract's skeleton, so the fidelity is `reconstructed`, and every choice
 * below is the one §3 / §3.5 states.
 *
 * Stage 1 (representation; the protocol's stage-1 block). Each iteration
 * has three row blocks in one forward pass:
 *   A = the runner's instance-balanced batch (class-agnostic sampler),
 *   B = a class-aware batch of the same size from the host's draw service
 *       (decoupling's ClassAwareSampler, k = 1 image per class visit), its
 *       own list stream, continued across epochs by the global iteration,
 *   M = the interpolation x^m = lam x^a + (1 - lam) x^b, one lam ~ Beta(alpha,
 *       alpha) per pair (§3.5.5), drawn from the batch hook's stream.
 * Model: backbone -> feat -> linear classifier "logits" (group head) and a
 * projection head feat -> D -> ReLU -> d ("proj", group proj), whose output
 * is L2-normalised here: z = g / |g|. Loss
 *   L = CE(logits(A), y^a) + w_iccl * L_iccl (+ mixup CE on M: flag)
 *   L_iccl = mean_i [ -lam_i log softmax(s_i)[y^a_i] - (1 - lam_i) log softmax(s_i)[y^b_i] ],
 *   s_ik = <z^m_i, c_k> / tau
 * over all class centroids c_k (§3.5.1: soft-target softmax CE; the
 * centroids are constants). After the optimizer step the centroids move
 * without gradient toward the embeddings of the real (non-mixed) rows of A
 * then B, in row order: c_y <- normalise(mu_c c_y + (1 - mu_c) z)
 * (centroids = "ema", §3.5.2's default), or, with centroids =
 * "epoch_mean", each epoch's end replaces them by the normalised class
 * means of that epoch's real embeddings (the EMA runs in the first epoch
 * only, before any mean exists).
 *
 * Stage 2 (classifier balancing; the protocol's stage-2 block): cRT, the
 * frozen backbone with BN in eval mode, the linear classifier
 * re-initialised and re-trained with plain CE under class-balanced sampling
 * (lt_stage_decoupled). Inference: backbone + the stage-2 classifier; the
 * projection head and centroids are not used.
 *
 * Determinism: the class-aware stream is (seed, LT_STREAM_METHOD + 1), the
 * centroid initialisation (seed, LT_STREAM_METHOD + 2), the Beta draws the
 * runner's per-iteration batch-hook stream; the centroids are in the
 * checkpoint, so a resumed run equals an uninterrupted one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define ICCL_DEFAULTS                                                                                     \
    "{\"tau\": 0.1, \"alpha\": 1.0, \"mu_c\": 0.99, \"w_iccl\": 1.0, \"proj_dim\": 128, \"k_per_class\": 1, " \
    "\"centroids\": \"ema\", \"mixup_ce\": false, \"stage2_bn\": \"eval\", \"stage2_sampler\": "          \
    "\"class_balanced\", \"stage2_reinit\": true}"

enum { S_CLASS_AWARE = 1, S_CENT_INIT = 2 };
enum { CENT_EMA = 0, CENT_EPOCH_MEAN = 1 };
/* F.normalize's eps: only a zero projection reaches it */
#define ICCL_EPS 1e-12f
#define ICCL_MAX_LOG_CLASSES 20

typedef struct {
    const lt_run_info *run;
    int C, D, d;
    size_t in_sz;              /* floats per input row */
    /* hyper-parameters */
    double tau, alpha, mu, w;
    long k_per_class;
    int cent_mode, mixup_ce, bn2, sampler2, reinit2;
    /* nodes */
    int logits, proj;
    /* the centroid table [C x d]; epoch sums for "epoch_mean" */
    float *cent;
    double *sum;
    long *count;
    /* stage-1 iteration: rows A = [0, ns), B = [ns, 2 ns), M = [2 ns, 3 ns) */
    int batch, augment;        /* stage-1 batch (pairs at most) and its augmentation switch */
    int ns;                    /* pairs of the current iteration (0: no batch hook ran) */
    float *lam;                /* [batch] */
    int32_t *ya, *yb;          /* [batch] */
    float *z;                  /* [3 batch x d] normalised embeddings of every row */
    float *s, *ds;             /* [batch x C] centroid logits and their gradient */
    float *dz;                 /* [batch x d] */
    /* the projection's outputs and their gradient as host arrays: copied
     * from and to the model (lt_model_out_to_host / _dout_from_host), so
     * the loss reads the same on a device model as on cpu */
    float *gp, *dg;            /* [3 batch x d] */
    /* per-epoch diagnostics */
    double ce_sum, iccl_sum, lam_sum;
    long iters, pairs;
    long *bclass;              /* [C] class-aware rows per class */
} iccl_state;

/* ---- the interpolative centroid contrastive loss ------------------------------------ */

/* L_iccl on n interpolated rows: g [n x d] the projection outputs, z their
 * L2-normalised rows, cent [C x d] constants. Writes *loss (the mean over
 * rows) and dg = w * dL_iccl / dg [n x d]; s, ds [n x C] and dz [n x d] are
 * workspaces. */
static int iccl_centroid_loss(int n, int C, int d, const float *g, const float *z, const float *cent, double tau,
                              const int32_t *ya, const int32_t *yb, const float *lam, double w, float *s, float *ds,
                              float *dz, double *loss, float *dg) {
    const float inv_tau = (float)(1.0 / tau);
    lt_centroids_logits(n, C, d, z, cent, inv_tau, s);
    /* soft target lam on y^a, 1 - lam on y^b: lt_mixup_ce over the centroid logits */
    LT_TRY(lt_mixup_ce(n, C, s, ya, yb, lam, loss, ds));
    const float wf = (float)w;
    if (wf != 1.0f)
        for (size_t i = 0; i < (size_t)n * C; i++) ds[i] *= wf;
    lt_centroids_logits_backward(n, C, d, ds, cent, inv_tau, dz);
    lt_l2_normalize_rows_backward(n, d, g, z, dz, ICCL_EPS, dg);
    return LT_OK;
}

/* ---- hooks ------------------------------------------------------------------------- */

static int iccl_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    iccl_state *st = stp;
    static const char *const cent_names[] = {"ema", "epoch_mean", NULL};
    static const char *const sampler_names[] = {"class_balanced", "class_aware", NULL};
    st->run = run;
    st->C = run->n_classes;
    st->D = run->feat_dim;
    st->in_sz = lt_shape_count(run->in_shape);
    long d = 0;
    double mixup_ce = 0, reinit2 = 0;
    int rc = lt_hp_num(hp, "tau", &st->tau);
    if (!rc) rc = lt_hp_num(hp, "alpha", &st->alpha);
    if (!rc) rc = lt_hp_num(hp, "mu_c", &st->mu);
    if (!rc) rc = lt_hp_num(hp, "w_iccl", &st->w);
    if (!rc) rc = lt_hp_int(hp, "proj_dim", &d);
    if (!rc) rc = lt_hp_int(hp, "k_per_class", &st->k_per_class);
    if (!rc) rc = lt_hp_choice(hp, "centroids", cent_names, &st->cent_mode);
    if (!rc) rc = lt_hp_num(hp, "mixup_ce", &mixup_ce);
    if (!rc) rc = lt_hp_choice(hp, "stage2_bn", lt_bn_mode_names, &st->bn2);
    if (!rc) rc = lt_hp_choice(hp, "stage2_sampler", sampler_names, &st->sampler2);
    if (!rc) rc = lt_hp_num(hp, "stage2_reinit", &reinit2);
    if (rc) return lt_err_wrap(rc, "iccl");
    st->mixup_ce = mixup_ce != 0;
    st->reinit2 = reinit2 != 0;
    if (!(st->tau > 0) || !isfinite(st->tau)) return lt_err(LT_EINVAL, "iccl: tau %g must be > 0", st->tau);
    if (!(st->alpha >= 0) || !isfinite(st->alpha))
        return lt_err(LT_EINVAL, "iccl: alpha %g must be >= 0 (0: no interpolation)", st->alpha);
    if (!(st->mu >= 0 && st->mu <= 1)) return lt_err(LT_EINVAL, "iccl: mu_c %g must be in [0, 1]", st->mu);
    if (!(st->w >= 0) || !isfinite(st->w)) return lt_err(LT_EINVAL, "iccl: w_iccl %g must be >= 0", st->w);
    if (d < 1 || d > 65536) return lt_err(LT_EINVAL, "iccl: proj_dim %ld must be in [1, 65536]", d);
    if (st->k_per_class < 1 || st->k_per_class > 1 << 20)
        return lt_err(LT_EINVAL, "iccl: k_per_class %ld must be >= 1", st->k_per_class);
    if (st->C < 2 || st->D < 1) return lt_err(LT_EINVAL, "iccl: %d classes, feature size %d", st->C, st->D);
    if (!run->api || run->api->version < 1) return lt_err(LT_EABI, "iccl: needs the host services (method ABI 3)");
    st->d = (int)d;
    st->cent = calloc((size_t)st->C * st->d, sizeof *st->cent);
    st->sum = calloc((size_t)st->C * st->d, sizeof *st->sum);
    st->count = calloc((size_t)st->C, sizeof *st->count);
    st->bclass = calloc((size_t)st->C, sizeof *st->bclass);
    if (!st->cent || !st->sum || !st->count || !st->bclass) return lt_err(LT_ENOMEM, "iccl: out of memory");
    /* §3.1 keeps unit centroids but does not say how they start: random unit
     * vectors, which the EMA replaces within a few iterations (every class
     * is in every class-aware batch) */
    lt_rng r;
    lt_rng_init(&r, run->seed, LT_STREAM_METHOD + S_CENT_INIT);
    lt_centroids_random(st->C, st->d, st->cent, &r);
    return LT_OK;
}

static void iccl_fini(void *stp) {
    iccl_state *st = stp;
    free(st->cent);
    free(st->sum);
    free(st->count);
    free(st->bclass);
    free(st->lam);
    free(st->ya);
    free(st->yb);
    lt_free(st->z);
    lt_free(st->s);
    lt_free(st->ds);
    lt_free(st->dz);
    lt_free(st->gp);
    lt_free(st->dg);
    memset(st, 0, sizeof *st);
}

/* classifier on feat (the engine default's "logits") plus the projection
 * head feat -> D -> ReLU -> d of §3.1 (no BN: the spec's 2-layer MLP) */
static int iccl_build(void *stp, lt_model *m, int feat) {
    iccl_state *st = stp;
    int l = lt_add_linear(m, "logits", "head", feat, st->C, 1);
    if (l < 0) return -l;
    int h = lt_add_linear(m, "proj_fc1", "proj", feat, st->D, 1);
    if (h < 0) return -h;
    h = lt_add_relu(m, "proj_relu", "proj", h);
    if (h < 0) return -h;
    h = lt_add_linear(m, "proj", "proj", h, st->d, 1);
    return h < 0 ? -h : LT_OK;
}

static int iccl_n_stages(const void *st) { (void)st; return 2; }

static int iccl_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    iccl_state *st = stp;
    st->logits = lt_model_find(m, "logits");
    st->proj = lt_model_find(m, "proj");
    if (st->logits < 0 || st->proj < 0) return lt_err(LT_EINVAL, "iccl: the model needs 'logits' and 'proj'");
    if (stage == 1) {
        /* §3.1 stage 2 / §3.5.4: cRT, frozen backbone (and projection head)
         * with eval-mode BN, re-initialised linear classifier, class-balanced
         * sampling, the protocol's stage-2 schedule */
        const lt_decoupled dc = {st->bn2, "head", st->reinit2, st->run->seed,
                                 st->sampler2 ? LT_SAMPLER_CLASS_AWARE : LT_SAMPLER_CLASS_BALANCED, 4};
        return lt_stage_decoupled(cfg, m, &dc);
    }
    if (stage != 0) return lt_err(LT_EINVAL, "iccl: no stage %d (2 stages)", stage);
    if (cfg->views != 1) return lt_err(LT_EINVAL, "iccl: stage 1 takes one view per sample, not %d", cfg->views);
    /* the batch hook appends B and M behind A: three rows per pair */
    cfg->batch_cap = 3 * cfg->batch;
    st->augment = cfg->augment;
    if (st->lam) {
        /* a resume replays this hook: the buffers exist */
        if (cfg->batch != st->batch) return lt_err(LT_EINVAL, "iccl: stage-1 batch changed from %d to %d", st->batch,
                                                   cfg->batch);
        return LT_OK;
    }
    st->batch = cfg->batch;
    const size_t B = (size_t)cfg->batch;
    st->lam = malloc(B * sizeof *st->lam);
    st->ya = malloc(B * sizeof *st->ya);
    st->yb = malloc(B * sizeof *st->yb);
    st->z = lt_alloc(3 * B * st->d * sizeof(float));
    st->s = lt_alloc(B * st->C * sizeof(float));
    st->ds = lt_alloc(B * st->C * sizeof(float));
    st->dz = lt_alloc(B * st->d * sizeof(float));
    st->gp = lt_alloc(3 * B * st->d * sizeof(float));
    st->dg = lt_alloc(3 * B * st->d * sizeof(float));
    if (!st->lam || !st->ya || !st->yb || !st->z || !st->s || !st->ds || !st->dz || !st->gp || !st->dg)
        return lt_err(LT_ENOMEM, "iccl: out of memory for a batch of %d", cfg->batch);
    return LT_OK;
}

/* Stage 1: rows [0, n) are the runner's instance-balanced batch A; draws the
 * class-aware batch B into [n, 2n) and writes the interpolations into
 * [2n, 3n). */
static int iccl_batch_hook(void *stp, lt_batch *b, lt_rng *rng) {
    iccl_state *st = stp;
    st->ns = 0;
    if (b->stage != 0) return LT_OK;
    const int n = b->n;
    if (b->views != 1 || n < 1 || n > st->batch || 3 * n > b->cap)
        return lt_err(LT_EINVAL, "iccl: batch of %d rows (%d views), at most %d pairs in %d rows", n, b->views,
                      st->batch, b->cap);
    const size_t in = st->in_sz;
    /* B: slots [iter * batch, (iter + 1) * batch) of one class-aware list
     * stream that runs on across epochs (a full batch even when A is short,
     * so the slots never overlap; only the first n are used, and the rows
     * past 2n are overwritten by M below) */
    const lt_draw_req q = {
        .sampler = {.kind = LT_SAMPLER_CLASS_AWARE, .k_per_class = (int)st->k_per_class},
        .n = st->batch,
        .views = 1,
        .augment = st->augment,
        .stream = LT_STREAM_METHOD + S_CLASS_AWARE,
        .epoch = 0,
        .batch = b->iter,
    };
    LT_TRY(st->run->api->draw(st->run->host, &q, b->x + (size_t)n * in, b->labels + n, b->ids + n));
    for (int i = 0; i < n; i++) {
        st->ya[i] = b->labels[i];
        st->yb[i] = b->labels[n + i];
    }
    /* M: one lam per pair from this iteration's own stream (§3.5.5, §3.5.6) */
    LT_TRY(lt_mixup_pairs(n, in, b->x, b->x + (size_t)n * in, st->alpha, rng, b->x + (size_t)2 * n * in, st->lam));
    for (int i = 0; i < n; i++) {
        /* the runner's training accuracy reads these; the loss uses ya, yb, lam */
        b->labels[2 * n + i] = st->ya[i];
        b->ids[2 * n + i] = b->ids[i];
    }
    b->n = 3 * n;
    st->ns = n;
    return LT_OK;
}

static int iccl_loss(void *stp, const lt_taps *t, double *loss, lt_grads *g) {
    iccl_state *st = stp;
    const int C = st->C, d = st->d;
    if (t->n_classes != C) return lt_err(LT_EINVAL, "iccl: taps have %d classes, the run %d", t->n_classes, C);
    if (t->stage != 0) return lt_softmax_ce(t->n, C, t->logits, t->labels, NULL, NULL, loss, g->dlogits);
    const int n = st->ns;
    if (n < 1 || t->n != 3 * n) return lt_err(LT_ESTATE, "iccl: %d rows, expected 3 x %d from the batch hook", t->n, n);
    /* CE on the class-agnostic rows only (§3.5.3); B and M rows give none */
    double lce, lmix = 0, li;
    LT_TRY(lt_softmax_ce(n, C, t->logits, t->labels, NULL, NULL, &lce, g->dlogits));
    memset(g->dlogits + (size_t)n * C, 0, (size_t)2 * n * C * sizeof(float));
    if (st->mixup_ce)   /* the §3.5.3 ablation: mixed CE on the interpolations */
        LT_TRY(lt_mixup_ce(n, C, t->logits + (size_t)2 * n * C, st->ya, st->yb, st->lam, &lmix,
                           g->dlogits + (size_t)2 * n * C));
    /* every row's embedding now, before backward and the step: iter_end
     * updates the centroids from the A and B rows */
    float *gp = st->gp, *dg = st->dg;
    LT_TRY(lt_model_out_to_host(t->model, st->proj, 3 * n, gp));
    lt_l2_normalize_rows(3 * n, d, gp, ICCL_EPS, st->z);
    memset(dg, 0, (size_t)2 * n * d * sizeof(float));
    LT_TRY(iccl_centroid_loss(n, C, d, gp + (size_t)2 * n * d, st->z + (size_t)2 * n * d, st->cent, st->tau, st->ya,
                              st->yb, st->lam, st->w, st->s, st->ds, st->dz, &li, dg + (size_t)2 * n * d));
    LT_TRY(lt_model_dout_from_host(t->model, st->proj, 3 * n, dg));
    g->extra[g->n_extra++] = st->proj;
    *loss = lce + st->w * li + lmix;
    st->ce_sum += lce;
    st->iccl_sum += li;
    st->iters++;
    for (int i = 0; i < n; i++) {
        st->lam_sum += st->lam[i];
        st->bclass[st->yb[i]]++;
    }
    st->pairs += n;
    return LT_OK;
}

/* After the step: the centroids follow the real rows' embeddings (A then
 * B, row order), with no gradient (§3.1 step 7). */
static int iccl_iter_end(void *stp, const lt_taps *t) {
    iccl_state *st = stp;
    if (t->stage != 0) return LT_OK;
    const int n2 = 2 * st->ns;
    if (st->cent_mode == CENT_EPOCH_MEAN) {
        LT_TRY(lt_centroids_accum(st->C, st->d, st->sum, st->count, n2, st->z, t->labels));
        if (t->epoch > 0) return LT_OK;   /* the table holds last epoch's means */
    }
    return lt_centroids_ema(st->C, st->d, st->cent, n2, st->z, t->labels, (float)st->mu);
}

static int iccl_epoch_end(void *stp, int stage, int epoch, lt_model *m) {
    iccl_state *st = stp;
    (void)epoch;
    (void)m;
    if (stage != 0) return LT_OK;
    if (st->cent_mode == CENT_EPOCH_MEAN) {
        lt_centroids_from_sums(st->C, st->d, st->sum, st->count, st->cent);
        memset(st->sum, 0, (size_t)st->C * st->d * sizeof *st->sum);
        memset(st->count, 0, (size_t)st->C * sizeof *st->count);
    }
    const lt_run_info *run = st->run;
    if (run->log && st->iters) {
        LT_TRY(run->log(run->host, "iccl_ce", st->ce_sum / (double)st->iters));
        LT_TRY(run->log(run->host, "iccl_loss", st->iccl_sum / (double)st->iters));
        LT_TRY(run->log(run->host, "iccl_lambda_mean", st->lam_sum / (double)st->pairs));
        if (st->C <= ICCL_MAX_LOG_CLASSES)
            for (int c = 0; c < st->C; c++) {
                char key[40];
                snprintf(key, sizeof key, "iccl_b_class%d", c);
                LT_TRY(run->log(run->host, key, (double)st->bclass[c]));
            }
    }
    st->ce_sum = st->iccl_sum = st->lam_sum = 0;
    st->iters = st->pairs = 0;
    memset(st->bclass, 0, (size_t)st->C * sizeof *st->bclass);
    return LT_OK;
}

/* ---- checkpoint: the centroid table (the epoch sums and diagnostics are
 * zero at every checkpoint: epoch_end resets them before it is written) ---- */

static int iccl_save(const void *stp, lt_ckpt_writer *w, const char *prefix) {
    const iccl_state *st = stp;
    char key[160];
    snprintf(key, sizeof key, "%scentroids", prefix);
    return lt_ckpt_put(w, key, st->cent, (size_t)st->C * st->d * sizeof(float));
}

static int iccl_load(void *stp, const lt_ckpt *c, const char *prefix) {
    iccl_state *st = stp;
    char key[160];
    snprintf(key, sizeof key, "%scentroids", prefix);
    LT_TRY(lt_ckpt_get_into(c, key, st->cent, (size_t)st->C * st->d * sizeof(float)));
    for (size_t i = 0; i < (size_t)st->C * st->d; i++)
        if (!isfinite(st->cent[i])) return lt_err(LT_EDATA, "iccl: checkpoint centroid value %zu is not finite", i);
    return LT_OK;
}

const lt_method *lt_method_iccl(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "iccl",
        .version = "1",
        .cite = "Tiong, Li, Lin, Li, Xiong, Hoi, arXiv:2110.10048",
        .fidelity = "reconstructed",
        .defaults = ICCL_DEFAULTS,
        .state_size = sizeof(iccl_state),
        /* the batch hook writes the batch's host rows, the loss reads the
         * taps' host arrays and the projection through host copies (its
         * extra gradient copied in the same way) */
        .flags = LT_METHOD_HOST_TAPS,
        .init = iccl_init,
        .fini = iccl_fini,
        .build = iccl_build,
        .n_stages = iccl_n_stages,
        .stage_begin = iccl_stage_begin,
        .batch_hook = iccl_batch_hook,
        .loss = iccl_loss,
        .iter_end = iccl_iter_end,
        .epoch_end = iccl_epoch_end,
        .save = iccl_save,
        .load = iccl_load,
    };
    return &m;
}
