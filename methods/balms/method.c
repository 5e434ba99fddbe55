/* balms — Balanced Meta-Softmax: decoupled Balanced Softmax with the Meta
 * Sampler (Ren et al., "Balanced Meta-Softmax for Long-Tailed Visual
 * Recognition", NeurIPS 2020, arXiv:2007.10740; official code
 * jiawei-ren/BalancedMetaSoftmax-Classification: data/MetaSampler.py,
 * run_networks.py::meta_forward, main.py, loss/BalancedSoftmaxLoss.py).
 *
 * Stage 0 is the shared CE stage 1 (stage1_from = "ce"). Stage 1 freezes the
 * backbone, re-initialises the linear classifier and trains it with the
 * Balanced Softmax loss CE(z + log n) while a per-class sampling parameter w
 * is learned jointly ("Meta Sampler"):
 *
 *   q_i = sigmoid(w_{y_i})                    sample weight of image i
 *   batch slot b draws image k_b with probability q_{k_b} / sum_i q_i
 *   inner step  theta' = one SGD step of the classifier on
 *               (1/B) sum_b v_b l_b(theta)    l_b = Balanced Softmax loss
 *   meta loss   L = plain CE of theta' on a class-balanced meta batch
 *   w          <- Adam(dL/dw)
 *   real step   unweighted Balanced Softmax on the same batch (runner's SGD)
 *
 * v_b is the official straight-through selection weight: its value is 1 and
 * its gradient flows through the Gumbel-softmax row that drew the slot
 * (MetaSampler.py: gumbel_softmax(log q, hard=True); forward_loss multiplies
 * the per-sample loss by y_hard * (y_hard - y_soft.detach() + y_soft)). With
 * s_b = softmax(log q + g_b) over all N images, that gives
 *
 *   dv_b/dw_c = s_{b,k_b} (1 - sigmoid(w_c)) (1[y_{k_b} = c] - S_{b,c}),
 *   S_{b,c}   = sum of s_{b,i} over the images i of class c,
 *
 * and, because the classifier is linear on frozen features and the SGD step
 * is linear in the gradient (momentum buffer and weight decay do not depend
 * on v), the closed form
 *
 *   dL/dv_b = -lr_h kappa / B * <G, grad_theta l_b>
 *           = -lr_h kappa * dlogits_b . (G_W f_b + G_b)
 *
 * with G = grad of the meta loss at theta', dlogits_b = (p_b - e_{y_b}) / B
 * the Balanced Softmax gradient of the real loss, lr_h the head's learning
 * rate and kappa = 1 (kappa = 1 + momentum with Nesterov). No autodiff.
 *
 * The soft mass (s_{b,k_b}, S_{b,.}) is, by default, SAMPLED exactly: given
 * the drawn image k_b, the Gumbel noise of the official hard Gumbel-softmax
 * is drawn from its conditional law (Gumbel-max "top-down" construction:
 * the maximum is Gumbel(log Z), every other perturbed logit is a Gumbel
 * truncated below it), so (k_b, s_b) has the official joint distribution;
 * only per-class sums are needed, so the cost is N exponential draws per
 * slot. soft_mass = "expected" uses the cheap approximation of the spec
 * (s_{b,k_b} -> 1, S_{b,c} -> class sampling probability), which turns the
 * update into the score-function gradient of log P(draw k_b); it is not
 * validated against the official code.
 *
 * Sampling. draw = "batch" (default) draws every batch from the CURRENT q in
 * batch_hook: the runner's batch (drawn per epoch) is replaced by B images
 * drawn i.i.d. with replacement with probability proportional to q_i,
 * transformed exactly as the runner does (training augmentation when the
 * stage augments), labels rewritten. draw = "epoch" leaves the batch to the
 * runner's per-epoch LT_SAMPLER_WEIGHTS list with class weights n_c q_c
 * taken at the epoch's start (the sampler then updates once per epoch).
 *
 * Meta set: the official CIFAR one, a class-balanced resampling of the
 * training set (meta_set = "train_balanced", the default), or, as the
 * official ImageNet-LT / Places-LT setting, the dataset's validation split
 * (meta_set = "val", the host's validation service: official val lists, or
 * left-over training images for CIFAR-LT / Fashion-MNIST-LT; classes
 * without validation images are left out of the meta batch).
 * Its features are computed once in stage_begin (backbone frozen, inference
 * mode, eval transform unless meta_augment) and kept in the state, which the
 * checkpoint persists (the runner replays stage_begin before loading
 * weights on resume). Each iteration draws a meta batch class-balanced from
 * that pool. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define BALMS_DEFAULTS                                                                        \
    "{\"meta_lr\": 0.01, \"init_pow\": 0, \"meta_batch\": 0, \"meta_set\": \"train_balanced\", " \
    "\"meta_pool_per_class\": 0, \"meta_augment\": false, \"soft_mass\": \"sampled\", "        \
    "\"draw\": \"batch\", \"stage2_bn\": \"protocol\"}"

/* A finite stand-in for -inf (lt_softmax_ce refuses non-finite offsets):
 * a class with no training image gets Balanced-Softmax probability 0. */
#define BALMS_EXCLUDED LT_OFFSET_EXCLUDED

/* Method rng streams (LT_STREAM_METHOD + k). */
enum { S_SOFT = 1, S_META = 2, S_POOL_AUG = 3, S_POOL_PICK = 4 };

typedef struct {
    const lt_run_info *run;
    uint64_t seed;
    int C, D;
    /* hyper-parameters */
    double meta_lr, init_pow;
    long meta_batch_hp, pool_cap;
    int meta_augment, sampled, per_batch, bn;
    /* classes */
    long *counts;          /* [C] training counts */
    float *offsets;        /* [C] log n_c (BALMS_EXCLUDED for n_c = 0) */
    long *cls_off;         /* [C+1] CSR offsets of the training set by class */
    int32_t *cls_members;  /* [N] training indices grouped by class */
    int32_t *nonempty;     /* [C] classes with n_c > 0 */
    int n_nonempty;
    /* the Meta Sampler: w, Adam moments */
    float *w, *am, *av;    /* [C] */
    long adam_step;
    double *class_weights; /* [C] n_c sigmoid(w_c) handed to the runner's sampler */
    double *draw_w;        /* [C] the same for the batch redraw (host draw) */
    /* the q the current batch was drawn from: per batch (draw = batch) or the
     * epoch snapshots (draw = epoch: ring of two, tagged stage<<32 | epoch) */
    float *w_batch;        /* [C] */
    long batch_iter;       /* iteration w_batch belongs to (-1: none) */
    float *w_epoch[2];     /* [C] each */
    int64_t epoch_tag[2];
    /* stage configuration */
    int active;            /* 1 in the meta stage (stage 1) */
    int B, M, augment, nesterov;
    float lr_mult, mom, wd;
    /* meta pool */
    long P;
    float *pool_feat;      /* [P x D] */
    int32_t *pool_lab;     /* [P] grouped by class */
    long *pool_off;        /* [C+1] */
    int pool_ok;           /* features finite (checked again after a load) */
    /* per-step scratch (allocated in stage_begin) */
    float *gW, *gb;        /* real-loss gradient */
    float *W1, *b1;        /* theta' */
    /* the classifier before the step as host arrays (lt_model_param_to_host:
     * the same numbers on a device model) and its parameter indices */
    float *W0, *b0;
    int iW, ib;
    float *GW, *Gb;        /* meta-loss gradient at theta' */
    float *mfeat, *mlogit, *mdz;  /* [M x D], [M x C], [M x C] */
    int32_t *mlab;         /* [M] */
    int32_t *perm;         /* [C] class shuffles of the meta batch */
    int meta_val;          /* meta_set = "val": the pool comes from the validation split */
    int32_t *meta_cls;     /* [C] classes with pool images (and training images), ascending */
    int n_meta_cls;
    float *U;              /* [B x C] G_W f_b + G_b */
    double *S, *skb, *dldv, *gw;  /* [B x C], [B], [B], [C] */
    float *gwf;            /* [C] */
    /* diagnostics (per epoch) */
    double meta_loss_sum;
    long meta_loss_n;
} balms_state;

static float sigmoidf_(float x) { return (float)(1.0 / (1.0 + exp(-(double)x))); }

/* ---- initialisation of w --------------------------------------------------- */

/* w_c = logit(pi_c^-p / (min_c pi^-p + max_c pi^-p)) over the non-empty
 * classes (SampleLearner.init_weights_sampler); empty classes get w = 0 (they
 * are never drawn). p = 0 gives sigmoid(w) = 1/2 everywhere. */
static int balms_init_w(int C, const long *counts, double p, float *w) {
    double N = 0, lo = INFINITY, hi = -INFINITY;
    for (int c = 0; c < C; c++) N += (double)counts[c];
    if (!(N > 0)) return lt_err(LT_EINVAL, "balms: no training images");
    for (int c = 0; c < C; c++) {
        if (counts[c] <= 0) continue;
        double v = pow((double)counts[c] / N, -p);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    for (int c = 0; c < C; c++) {
        if (counts[c] <= 0) { w[c] = 0.0f; continue; }
        double x = pow((double)counts[c] / N, -p) / (lo + hi);
        w[c] = (float)(log(x) - log1p(-x));
        if (!isfinite(w[c])) return lt_err(LT_ENUM, "balms: init_pow %g gives a non-finite w for class %d", p, c);
    }
    return LT_OK;
}

/* class_weights[c] = n_c sigmoid(w_c): per-image probability prop. to q_i. */
static void balms_class_weights(int C, const long *counts, const float *w, double *cw) {
    for (int c = 0; c < C; c++) cw[c] = counts[c] > 0 ? (double)counts[c] * (double)sigmoidf_(w[c]) : 0.0;
}

/* ---- soft mass of one slot ------------------------------------------------- */

/* Exact conditional draw of the official Gumbel-softmax row of a slot whose
 * hard sample has class yk. Images of a class share q_c, so only per-class
 * sums are needed: with E ~ Exp(1), exp(-max) = E0/Z and every other image
 * has exp(perturbed logit) = q_c / (alpha q_c + E_i), alpha = E0/Z.
 * Writes S[c] (soft mass of class c, the drawn image included) and *skb
 * (soft mass of the drawn image). */
/* Exp(1) from one 32-bit draw: -log((u + 1/2) 2^-32), in (0, 22.5]; near
 * E = 0 (the large terms below) the resolution is 2^-32. One Philox block
 * gives four, which halves the cost against lt_rng_uniform + log1p. */
static double balms_exp1(lt_rng *r) { return -log(((double)lt_rng_u32(r) + 0.5) * 0x1.0p-32); }

static void balms_soft_mass_sampled(int C, const long *counts, const float *w, int yk, lt_rng *r,
                                    double *S, double *skb) {
    double Z = 0;
    for (int c = 0; c < C; c++)
        if (counts[c] > 0) Z += (double)counts[c] * (double)sigmoidf_(w[c]);
    double E0 = balms_exp1(r);
    double alpha = E0 / Z, top = Z / E0, A = top;
    for (int c = 0; c < C; c++) {
        long m = counts[c] - (c == yk);
        double qc = (double)sigmoidf_(w[c]), aq = alpha * qc, T = 0;
        for (long j = 0; j < m; j++) {
            T += 1.0 / (aq + balms_exp1(r));
        }
        S[c] = qc * T;
        A += S[c];
    }
    S[yk] += top;
    for (int c = 0; c < C; c++) S[c] /= A;
    *skb = top / A;
}

/* The spec's approximation: s_{b,k_b} -> 1, S_{b,c} -> P(draw class c). */
static void balms_soft_mass_expected(int C, const long *counts, const float *w, double *S, double *skb) {
    double Z = 0;
    for (int c = 0; c < C; c++) {
        S[c] = counts[c] > 0 ? (double)counts[c] * (double)sigmoidf_(w[c]) : 0.0;
        Z += S[c];
    }
    for (int c = 0; c < C; c++) S[c] /= Z;
    *skb = 1.0;
}

/* ---- the meta-gradient ----------------------------------------------------- */

/* theta' = one SGD step of the classifier (W [C x D], b [C]) with gradient
 * (gW, gb), PyTorch semantics: g' = g + wd theta (per-tensor no-decay flags);
 * buf' = mom buf + g'; theta' = theta - lr (nesterov ? g' + mom buf' : buf').
 * (bufW, bufb) is the runner's momentum buffer before its step (host
 * service opt_state): the same numbers the runner's step is about to use. */
static void balms_inner_step(int C, int D, const float *W, const float *b, const float *gW, const float *gb,
                             const float *bufW, const float *bufb, float lr, float mom, float wd, int nesterov,
                             int decay_W, int decay_b, float *W1, float *b1) {
    for (long i = 0; i < (long)C * D + C; i++) {
        int isw = i < (long)C * D;
        long k = isw ? i : i - (long)C * D;
        float th = isw ? W[k] : b[k];
        float g = (isw ? gW[k] : gb[k]) + ((isw ? decay_W : decay_b) ? wd * th : 0.0f);
        float nb = mom * (isw ? bufW[k] : bufb[k]) + g;
        float step = nesterov ? g + mom * nb : nb;
        (isw ? W1 : b1)[k] = th - lr * step;
    }
}

/* The meta loss (plain CE, mean over the meta batch) of the classifier
 * (W1, b1) and its gradient G = (GW, Gb); logit/dz [M x C] are scratch. */
static int balms_meta_loss_grad(int M, int C, int D, const float *mfeat, const int32_t *mlab, const float *W1,
                                const float *b1, float *logit, float *dz, double *loss, float *GW, float *Gb) {
    lt_linear_forward(M, D, C, mfeat, W1, b1, logit);
    LT_TRY(lt_softmax_ce(M, C, logit, mlab, NULL, NULL, loss, dz));
    memset(GW, 0, (size_t)C * D * sizeof(float));
    memset(Gb, 0, (size_t)C * sizeof(float));
    lt_linear_backward(M, D, C, mfeat, W1, dz, NULL, GW, Gb);
    return LT_OK;
}

/* dL_meta/dw given the batch (feat [n x D], labels, dlogits = Balanced
 * Softmax gradient of the real loss (p - e)/n), the meta gradient G = (GW,
 * Gb) at theta', the effective inner learning rate lr_eff = lr_h * kappa, the
 * soft masses S [n x C] and skb [n], and the w the batch was drawn with.
 * U [n x C], dldv [n] are scratch; gw [C] the result. */
static void balms_meta_grad(int n, int C, int D, const float *feat, const int32_t *labels,
                            const float *dlogits, const float *GW, const float *Gb, double lr_eff,
                            const double *S, const double *skb, const float *wq, float *U, double *dldv,
                            double *gw) {
    /* U = feat G_W^T + G_b (BLAS) */
    lt_linear_forward(n, D, C, feat, GW, Gb, U);
    for (int b = 0; b < n; b++) {
        double a = 0;
        for (int c = 0; c < C; c++) a += (double)dlogits[(size_t)b * C + c] * (double)U[(size_t)b * C + c];
        dldv[b] = -lr_eff * a;
    }
    for (int c = 0; c < C; c++) gw[c] = 0;
    for (int b = 0; b < n; b++) {
        double f = dldv[b] * skb[b];
        for (int c = 0; c < C; c++) gw[c] -= f * S[(size_t)b * C + c];
        gw[labels[b]] += f;
    }
    for (int c = 0; c < C; c++) gw[c] *= 1.0 - (double)sigmoidf_(wq[c]);
}

static int balms_all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* ---- memory ------------------------------------------------------------------ */

static void balms_free_stage(balms_state *st) {
    lt_free(st->pool_feat); lt_free(st->pool_lab); free(st->pool_off);
    lt_free(st->gW); lt_free(st->gb); lt_free(st->W1); lt_free(st->b1); lt_free(st->W0); lt_free(st->b0);
    lt_free(st->GW); lt_free(st->Gb);
    lt_free(st->mfeat); lt_free(st->mlogit); lt_free(st->mdz); lt_free(st->mlab);
    lt_free(st->U); lt_free(st->S); lt_free(st->skb); lt_free(st->dldv);
    st->pool_feat = NULL; st->pool_lab = NULL; st->pool_off = NULL;
    st->gW = st->gb = st->W1 = st->b1 = st->GW = st->Gb = st->W0 = st->b0 = NULL;
    st->mfeat = st->mlogit = st->mdz = st->U = NULL;
    st->mlab = NULL;
    st->S = st->skb = st->dldv = NULL;
    st->P = 0;
}

static void balms_fini(void *stp) {
    balms_state *st = stp;
    balms_free_stage(st);
    free(st->counts); free(st->offsets); free(st->cls_off); free(st->cls_members); free(st->nonempty);
    free(st->w); free(st->am); free(st->av); free(st->class_weights); free(st->draw_w);
    free(st->w_batch); free(st->w_epoch[0]); free(st->w_epoch[1]);
    free(st->perm); free(st->gw); free(st->gwf); free(st->meta_cls);
    memset(st, 0, sizeof *st);
}

static int balms_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    balms_state *st = stp;
    static const char *const soft_names[] = {"expected", "sampled", NULL};
    static const char *const draw_names[] = {"epoch", "batch", NULL};
    static const char *const set_names[] = {"train_balanced", "val", NULL};
    double d;
    int set;
    st->run = run;
    st->seed = run->seed;
    LT_TRY(lt_hp_num(hp, "meta_lr", &st->meta_lr));
    LT_TRY(lt_hp_num(hp, "init_pow", &st->init_pow));
    LT_TRY(lt_hp_int(hp, "meta_batch", &st->meta_batch_hp));
    LT_TRY(lt_hp_int(hp, "meta_pool_per_class", &st->pool_cap));
    LT_TRY(lt_hp_num(hp, "meta_augment", &d));
    st->meta_augment = d != 0;
    int rc = lt_hp_choice(hp, "soft_mass", soft_names, &st->sampled);
    if (!rc) rc = lt_hp_choice(hp, "draw", draw_names, &st->per_batch);
    if (!rc) rc = lt_hp_choice(hp, "stage2_bn", lt_bn_mode_names, &st->bn);
    if (rc) return lt_err_wrap(rc, "balms");
    {
        rc = lt_hp_choice(hp, "meta_set", set_names, &set);
        if (rc) return lt_err_wrap(rc, "balms");
        st->meta_val = set == 1;
        if (st->meta_val && (!run->api || !run->api->validation))
            return lt_err(LT_EABI, "balms: meta_set 'val' needs the host's validation service");
    }
    if (!(st->meta_lr >= 0) || !isfinite(st->meta_lr)) return lt_err(LT_EINVAL, "balms: meta_lr %g", st->meta_lr);
    if (!(st->init_pow >= 0) || !isfinite(st->init_pow))
        return lt_err(LT_EINVAL, "balms: init_pow %g must be >= 0", st->init_pow);
    if (st->meta_batch_hp < 0) return lt_err(LT_EINVAL, "balms: meta_batch %ld must be >= 0", st->meta_batch_hp);
    if (st->pool_cap < 0) return lt_err(LT_EINVAL, "balms: meta_pool_per_class %ld must be >= 0", st->pool_cap);

    int C = run->n_classes;
    if (C <= 0) return lt_err(LT_EINVAL, "balms: %d classes", C);
    if (!run->class_counts) return lt_err(LT_EINVAL, "balms: no class counts");
    if (!run->train || run->train->n <= 0) return lt_err(LT_EINVAL, "balms: no training set");
    if (run->train->n_classes != C)
        return lt_err(LT_EINVAL, "balms: training set has %d classes, the run %d", run->train->n_classes, C);
    st->C = C;
    st->D = run->feat_dim;
    size_t Cz = (size_t)C;
    st->counts = calloc(Cz, sizeof *st->counts);
    st->offsets = calloc(Cz, sizeof *st->offsets);
    st->cls_off = calloc(Cz + 1, sizeof *st->cls_off);
    st->cls_members = malloc((size_t)run->train->n * sizeof *st->cls_members);
    st->nonempty = calloc(Cz, sizeof *st->nonempty);
    st->w = calloc(Cz, sizeof *st->w);
    st->am = calloc(Cz, sizeof *st->am);
    st->av = calloc(Cz, sizeof *st->av);
    st->class_weights = calloc(Cz, sizeof *st->class_weights);
    st->draw_w = calloc(Cz, sizeof *st->draw_w);
    st->w_batch = calloc(Cz, sizeof *st->w_batch);
    st->w_epoch[0] = calloc(Cz, sizeof(float));
    st->w_epoch[1] = calloc(Cz, sizeof(float));
    st->perm = calloc(Cz, sizeof *st->perm);
    st->meta_cls = calloc(Cz, sizeof *st->meta_cls);
    st->gw = calloc(Cz, sizeof *st->gw);
    st->gwf = calloc(Cz, sizeof *st->gwf);
    if (!st->counts || !st->offsets || !st->cls_off || !st->cls_members || !st->nonempty || !st->w || !st->am ||
        !st->av || !st->class_weights || !st->draw_w || !st->w_batch || !st->w_epoch[0] || !st->w_epoch[1] ||
        !st->perm || !st->meta_cls || !st->gw || !st->gwf)
        return lt_err(LT_ENOMEM, "balms: out of memory for %d classes", C);

    /* Counts from the training set itself (the sampler and the redraw index
     * it); they must agree with the run's counts (the loss offsets). */
    const lt_dataset *tr = run->train;
    long *fill = st->cls_off;   /* counts first, prefix sums below */
    for (long i = 0; i < tr->n; i++) {
        int y = tr->labels[i];
        if (y < 0 || y >= C) return lt_err(LT_EINVAL, "balms: training label %d outside [0, %d)", y, C);
        fill[y + 1]++;
    }
    for (int c = 0; c < C; c++) {
        if (fill[c + 1] != run->class_counts[c])
            return lt_err(LT_EINVAL, "balms: class %d has %ld training images, run counts say %ld", c, fill[c + 1],
                          run->class_counts[c]);
        st->counts[c] = run->class_counts[c];
        if (st->counts[c] > 0) st->nonempty[st->n_nonempty++] = c;
        fill[c + 1] += fill[c];
    }
    {
        const int rc = lt_log_count_offsets(C, st->counts, st->offsets, NULL);
        if (rc) return lt_err_wrap(rc, "balms");
    }
    {
        long *pos = calloc(Cz, sizeof *pos);
        if (!pos) return lt_err(LT_ENOMEM, "balms: out of memory");
        for (long i = 0; i < tr->n; i++) {
            int y = tr->labels[i];
            st->cls_members[st->cls_off[y] + pos[y]++] = (int32_t)i;
        }
        free(pos);
    }
    LT_TRY(balms_init_w(C, st->counts, st->init_pow, st->w));
    balms_class_weights(C, st->counts, st->w, st->class_weights);
    st->batch_iter = -1;
    st->epoch_tag[0] = st->epoch_tag[1] = -1;
    return LT_OK;
}

static int balms_n_stages(const void *st) { (void)st; return 2; }

/* Pool: per class all images (pool_cap = 0) or pool_cap of them picked at
 * random; features of the frozen backbone in inference mode. */
static int balms_build_pool(balms_state *st, lt_model *m, int chunk_hint) {
    const lt_run_info *run = st->run;
    const lt_dataset *tr = run->train;
    /* the pool's source: the training set's class lists, or the validation
     * split's (counted here; only classes that also have training images) */
    const long *src_n = st->counts;
    const int32_t *src_members = st->cls_members;
    const long *src_off = st->cls_off;
    long *vn = NULL, *voff = NULL;
    int32_t *vmem = NULL;
    if (st->meta_val) {
        const lt_dataset *v = NULL;
        LT_TRY(run->api->validation(run->host, &v, NULL));
        if (v->n_classes != st->C || v->c != tr->c || v->h != tr->h || v->w != tr->w)
            return lt_err(LT_ESHAPE, "balms: validation split is %dx%dx%d, %d classes; training %dx%dx%d, %d",
                          v->c, v->h, v->w, v->n_classes, tr->c, tr->h, tr->w, st->C);
        vn = calloc((size_t)st->C, sizeof *vn);
        voff = calloc((size_t)st->C + 1, sizeof *voff);
        vmem = malloc((size_t)(v->n > 0 ? v->n : 1) * sizeof *vmem);
        if (!vn || !voff || !vmem) { free(vn); free(voff); free(vmem); return lt_err(LT_ENOMEM, "balms: out of memory"); }
        for (long i = 0; i < v->n; i++) {
            int y = v->labels[i];
            if (y < 0 || y >= st->C) { free(vn); free(voff); free(vmem); return lt_err(LT_EDATA, "balms: validation label %d", y); }
            if (st->counts[y] > 0) voff[y + 1]++;
        }
        for (int c = 0; c < st->C; c++) voff[c + 1] += voff[c];
        for (long i = 0; i < v->n; i++) {
            int y = v->labels[i];
            if (st->counts[y] > 0) vmem[voff[y] + vn[y]++] = (int32_t)i;
        }
        tr = v;
        src_n = vn;
        src_members = vmem;
        src_off = voff;
    }
    const lt_aug *aug = run->aug;
    int C = st->C, D = st->D;
    int feat = lt_model_find(m, "feat");
    int rc = LT_OK;
    size_t in_size = lt_shape_count(lt_model_in_shape(m));
    int oh = aug && aug->out_h > 0 ? aug->out_h : tr->h, ow = aug && aug->out_w > 0 ? aug->out_w : tr->w;
    if (feat < 0) rc = lt_err(LT_EINVAL, "balms: the model has no 'feat' node");
    else if ((int)lt_model_out_size(m, feat) != D)
        rc = lt_err(LT_ESHAPE, "balms: 'feat' has %zu values, run says %d", lt_model_out_size(m, feat), D);
    else if (!aug) rc = lt_err(LT_EINVAL, "balms: no augmentation/normalisation in the run info");
    else if ((size_t)tr->c * oh * ow != in_size)
        rc = lt_err(LT_ESHAPE, "balms: transform gives %dx%dx%d, the model takes %zu values", tr->c, oh, ow,
                    in_size);
    else if (lt_model_batch(m) <= 0) rc = lt_model_set_batch(m, chunk_hint > 0 ? chunk_hint : 128);
    if (rc) { free(vn); free(voff); free(vmem); return rc; }
    int chunk = lt_model_batch(m);

    /* pick */
    long P = 0;
    for (int c = 0; c < C; c++) {
        long k = src_n[c];
        if (st->pool_cap > 0 && k > st->pool_cap) k = st->pool_cap;
        P += k;
    }
    st->P = P;
    st->pool_off = calloc((size_t)C + 1, sizeof *st->pool_off);
    st->pool_lab = lt_alloc((size_t)P * sizeof *st->pool_lab);
    st->pool_feat = lt_alloc((size_t)P * D * sizeof *st->pool_feat);
    int32_t *idx = malloc((size_t)P * sizeof *idx);
    int32_t *tmp = malloc((size_t)(tr->n > 0 ? tr->n : 1) * sizeof *tmp);
    float *x = lt_alloc((size_t)chunk * in_size * sizeof *x);
    if (!st->pool_off || !st->pool_lab || !st->pool_feat || !idx || !tmp || !x) {
        rc = lt_err(LT_ENOMEM, "balms: out of memory for a meta pool of %ld images", P);
        goto out;
    }
    lt_rng pick;
    lt_rng_init(&pick, st->seed, LT_STREAM_METHOD + S_POOL_PICK);
    long p = 0;
    for (int c = 0; c < C; c++) {
        long n = src_n[c], k = n;
        const int32_t *mem = src_members + src_off[c];
        st->pool_off[c] = p;
        if (st->pool_cap > 0 && n > st->pool_cap) {
            memcpy(tmp, mem, (size_t)n * sizeof *tmp);
            lt_rng_shuffle_i32(&pick, tmp, n);
            k = st->pool_cap;
            mem = tmp;
        }
        for (long j = 0; j < k; j++) {
            idx[p] = mem[j];
            st->pool_lab[p] = c;
            p++;
        }
    }
    st->pool_off[C] = p;
    /* the classes a meta batch visits: those with pool images (for the
     * training set exactly the non-empty classes, in the same order) */
    st->n_meta_cls = 0;
    for (int c = 0; c < C; c++)
        if (st->pool_off[c + 1] > st->pool_off[c] && st->counts[c] > 0) st->meta_cls[st->n_meta_cls++] = c;
    if (st->n_meta_cls == 0) { rc = lt_err(LT_EDATA, "balms: the meta set has no image of a trained class"); goto out; }

    lt_rng augr;
    lt_rng_init(&augr, st->seed, LT_STREAM_METHOD + S_POOL_AUG);
    size_t img = (size_t)tr->c * tr->h * tr->w;
    for (long s = 0; s < P; s += chunk) {
        int nb = (int)(P - s < chunk ? P - s : chunk);
        for (int j = 0; j < nb; j++) {
            const uint8_t *src = tr->pixels + (size_t)idx[s + j] * img;
            if (st->meta_augment) {
                lt_rng r;
                lt_rng_derive(&r, &augr, (uint64_t)idx[s + j], 0);
                lt_aug_train(aug, tr->c, tr->h, tr->w, src, &r, x + (size_t)j * in_size);
            } else {
                lt_aug_eval(aug, tr->c, tr->h, tr->w, src, x + (size_t)j * in_size);
            }
        }
        rc = lt_model_forward(m, x, nb, 0);
        if (rc) { rc = lt_err_wrap(rc, "balms: meta-pool features"); goto out; }
        rc = lt_model_out_to_host(m, feat, nb, st->pool_feat + (size_t)s * D);
        if (rc) { rc = lt_err_wrap(rc, "balms: meta-pool features"); goto out; }
    }
    /* Not an error here: a resume replays this hook on un-loaded weights and
     * the checkpoint then replaces the pool; the meta step checks the flag. */
    st->pool_ok = balms_all_finite(st->pool_feat, (size_t)P * D);
out:
    free(idx);
    free(tmp);
    lt_free(x);
    free(vn);
    free(voff);
    free(vmem);
    return rc;
}

static int balms_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    balms_state *st = stp;
    if (stage == 0) return LT_OK;   /* the CE representation stage, untouched */
    if (stage != 1) return lt_err(LT_EINVAL, "balms: no stage %d (2 stages)", stage);
    int C = st->C, D = st->D;
    /* Frozen backbone, BN in eval mode per PROTOCOLS.md unless the hparam asks
     * for the official code's train-mode BN (spec §1 pitfall 4); the
     * classifier re-initialised; the sampler is set below. */
    const lt_decoupled d = {st->bn, "head", 1, st->seed, -1, 0};
    LT_TRY(lt_stage_decoupled(cfg, m, &d));
    st->iW = lt_model_param_index(m, "logits.weight");
    st->ib = lt_model_param_index(m, "logits.bias");
    lt_param_info pw;
    if (st->iW < 0 || st->ib < 0 || lt_model_param_at(m, st->iW, &pw))
        return lt_err(LT_EINVAL, "balms: needs a linear 'logits' head with bias");
    if (pw.count != (size_t)C * D)
        return lt_err(LT_ESHAPE, "balms: logits.weight has %zu values, expected %d x %d", pw.count, C, D);

    /* The Meta Sampler starts afresh (a resume replays this and then loads). */
    LT_TRY(balms_init_w(C, st->counts, st->init_pow, st->w));
    memset(st->am, 0, (size_t)C * sizeof *st->am);
    memset(st->av, 0, (size_t)C * sizeof *st->av);
    st->adam_step = 0;
    st->batch_iter = -1;
    st->epoch_tag[0] = st->epoch_tag[1] = -1;
    st->meta_loss_sum = 0;
    st->meta_loss_n = 0;
    balms_class_weights(C, st->counts, st->w, st->class_weights);
    /* Never the protocol's class-balanced stage-2 sampler: Balanced Softmax
     * with class-balanced sampling over-balances (spec §1 pitfall 1). */
    cfg->sampler.kind = LT_SAMPLER_WEIGHTS;
    cfg->sampler.class_weights = st->class_weights;
    cfg->samples_per_epoch = 0;   /* an epoch = N draws: floor(N/B) batches (MetaSampler.__len__) where
                                     the protocol drops the last batch, else ceil (README, deviation 8) */

    st->B = cfg->batch;
    st->M = st->meta_batch_hp > 0 ? (int)st->meta_batch_hp : cfg->batch;
    st->augment = cfg->augment;
    st->nesterov = cfg->nesterov;
    st->mom = cfg->momentum;
    st->wd = cfg->weight_decay;
    st->lr_mult = (float)cfg->head_lr_mult;
    if (st->B <= 0) return lt_err(LT_EINVAL, "balms: batch %d", st->B);

    balms_free_stage(st);
    size_t B = (size_t)st->B, M = (size_t)st->M, Cz = (size_t)C, CD = Cz * (size_t)D;
    st->gW = lt_alloc(CD * sizeof(float));
    st->gb = lt_alloc(Cz * sizeof(float));
    st->W1 = lt_alloc(CD * sizeof(float));
    st->b1 = lt_alloc(Cz * sizeof(float));
    st->W0 = lt_alloc(CD * sizeof(float));
    st->b0 = lt_alloc(Cz * sizeof(float));
    st->GW = lt_alloc(CD * sizeof(float));
    st->Gb = lt_alloc(Cz * sizeof(float));
    st->mfeat = lt_alloc(M * D * sizeof(float));
    st->mlogit = lt_alloc(M * Cz * sizeof(float));
    st->mdz = lt_alloc(M * Cz * sizeof(float));
    st->mlab = lt_alloc(M * sizeof(int32_t));
    st->U = lt_alloc(B * Cz * sizeof(float));
    st->S = lt_alloc(B * Cz * sizeof(double));
    st->skb = lt_alloc(B * sizeof(double));
    st->dldv = lt_alloc(B * sizeof(double));
    if (!st->gW || !st->gb || !st->W1 || !st->b1 || !st->W0 || !st->b0 || !st->GW || !st->Gb || !st->mfeat ||
        !st->mlogit || !st->mdz || !st->mlab || !st->U || !st->S || !st->skb || !st->dldv)
        return lt_err(LT_ENOMEM, "balms: out of memory for batch %d / meta batch %d", st->B, st->M);
    LT_TRY(balms_build_pool(st, m, st->B));
    st->active = 1;

    const lt_run_info *run = st->run;
    if (run->log) {
        /* the meta set's origin, so the result says which split fed it (the
         * events file is open from stage_begin on, not yet at init) */
        LT_TRY(run->log(run->host, "meta_set_is_val", (double)st->meta_val));
        LT_TRY(run->log(run->host, "meta_classes", (double)st->n_meta_cls));
        LT_TRY(run->log(run->host, "meta_soft_mass_sampled", (double)st->sampled));
        LT_TRY(run->log(run->host, "meta_draw_per_batch", (double)st->per_batch));
        LT_TRY(run->log(run->host, "meta_pool_images", (double)st->P));
        LT_TRY(run->log(run->host, "meta_pool_augmented", (double)st->meta_augment));
        LT_TRY(run->log(run->host, "meta_batch", (double)st->M));
    }
    return LT_OK;
}

static int balms_sampler(void *stp, int stage, int epoch, lt_sampler_cfg *cfg) {
    balms_state *st = stp;
    if (stage != 1) return LT_OK;
    int64_t tag = ((int64_t)stage << 32) | (int64_t)epoch;
    int slot = epoch & 1;
    /* Reuse the snapshot if this epoch already has one (a resume that
     * regenerates the epoch's list after the checkpoint restored it). */
    if (st->epoch_tag[slot] != tag) {
        memcpy(st->w_epoch[slot], st->w, (size_t)st->C * sizeof(float));
        st->epoch_tag[slot] = tag;
    }
    balms_class_weights(st->C, st->counts, st->w_epoch[slot], st->class_weights);
    cfg->kind = LT_SAMPLER_WEIGHTS;
    cfg->class_weights = st->class_weights;
    return LT_OK;
}

/* draw = batch: replace the runner's batch by B images drawn from the current
 * q with the host's draw (i.i.d. with probability proportional to q_i, the
 * runner's augmentation when the stage augments), from the hook's rng. */
static int balms_batch_hook(void *stp, lt_batch *b, lt_rng *rng) {
    balms_state *st = stp;
    if (b->stage != 1 || !st->active || !st->per_batch) return LT_OK;
    const lt_run_info *run = st->run;
    memcpy(st->w_batch, st->w, (size_t)st->C * sizeof(float));
    st->batch_iter = b->iter;
    balms_class_weights(st->C, st->counts, st->w_batch, st->draw_w);
    lt_draw_req req = {.sampler = {.kind = LT_SAMPLER_WEIGHTS, .class_weights = st->draw_w},
                       .n = b->n, .views = 1, .augment = st->augment, .rng = rng};
    int rc = run->api->draw(run->host, &req, b->x, b->labels, b->ids);
    return rc ? lt_err_wrap(rc, "balms: redrawing the batch") : LT_OK;
}

/* The meta step on the batch in t (before the runner's real step). */
static int balms_meta_step(balms_state *st, const lt_taps *t, const float *dlogits) {
    int n = t->n, C = st->C, D = st->D;
    lt_model *m = t->model;
    lt_param_info pW, pb;   /* found by stage_begin; their no-decay flags */
    LT_TRY(lt_model_param_at(m, st->iW, &pW));
    LT_TRY(lt_model_param_at(m, st->ib, &pb));
    const float *W = st->W0, *bias = st->b0;
    LT_TRY(lt_model_param_to_host(m, st->iW, st->W0, NULL));
    LT_TRY(lt_model_param_to_host(m, st->ib, st->b0, NULL));
    /* the runner's momentum buffers of the classifier, before its step */
    const lt_run_info *run = st->run;
    const float *buf_W, *buf_b;
    size_t nW, nb;
    LT_TRY(run->api->opt_state(run->host, "logits.weight", &buf_W, NULL, &nW));
    LT_TRY(run->api->opt_state(run->host, "logits.bias", &buf_b, NULL, &nb));
    if (nW != (size_t)C * D || nb != (size_t)C)
        return lt_err(LT_ESHAPE, "balms: optimizer state of the classifier has %zu + %zu values", nW, nb);
    if (n > st->B) return lt_err(LT_ESHAPE, "balms: batch of %d, planned %d", n, st->B);
    if (t->feat_dim != D) return lt_err(LT_ESHAPE, "balms: feat has %d values, expected %d", t->feat_dim, D);
    if (!st->pool_ok) return lt_err(LT_ENUM, "balms: the meta pool has non-finite features");

    /* the q this batch was drawn with */
    const float *wq;
    if (st->per_batch) {
        if (st->batch_iter != t->iter)
            return lt_err(LT_ESTATE, "balms: batch %ld was not drawn by batch_hook", t->iter);
        wq = st->w_batch;
    } else {
        int64_t tag = ((int64_t)t->stage << 32) | (int64_t)t->epoch;
        int slot = t->epoch & 1;
        if (st->epoch_tag[slot] != tag)
            return lt_err(LT_ESTATE, "balms: no sampler snapshot for stage %d epoch %d", t->stage, t->epoch);
        wq = st->w_epoch[slot];
    }

    /* 1. theta' = theta - lr_h * SGD direction of the real gradient */
    float lr_h = t->lr * st->lr_mult;
    memset(st->gW, 0, (size_t)C * D * sizeof(float));
    memset(st->gb, 0, (size_t)C * sizeof(float));
    lt_linear_backward(n, D, C, t->feat, W, dlogits, NULL, st->gW, st->gb);
    balms_inner_step(C, D, W, bias, st->gW, st->gb, buf_W, buf_b, lr_h, st->mom, st->wd, st->nesterov,
                     !(pW.flags & LT_MASK_NO_DECAY), !(pb.flags & LT_MASK_NO_DECAY), st->W1, st->b1);

    /* 2. class-balanced meta batch from the pool: successive shuffles of the
     * non-empty classes, a uniform pool member per pick; its own stream per
     * (stage, iteration), so a resumed run draws the same meta batches. */
    lt_rng base, r;
    lt_rng_init(&base, st->seed, LT_STREAM_METHOD + S_META);
    lt_rng_derive(&r, &base, (uint64_t)t->stage, (uint64_t)t->iter);
    int K = st->n_meta_cls, pos = K;
    for (int j = 0; j < st->M; j++) {
        if (pos == K) {
            memcpy(st->perm, st->meta_cls, (size_t)K * sizeof *st->perm);
            lt_rng_shuffle_i32(&r, st->perm, K);
            pos = 0;
        }
        int c = st->perm[pos++];
        long nc = st->pool_off[c + 1] - st->pool_off[c];
        long p = st->pool_off[c] + (long)lt_rng_below(&r, (uint32_t)nc);
        memcpy(st->mfeat + (size_t)j * D, st->pool_feat + (size_t)p * D, (size_t)D * sizeof(float));
        st->mlab[j] = c;
    }

    /* 3. G = grad of plain CE at theta' on the meta batch */
    double mloss;
    LT_TRY(balms_meta_loss_grad(st->M, C, D, st->mfeat, st->mlab, st->W1, st->b1, st->mlogit, st->mdz, &mloss,
                                st->GW, st->Gb));
    st->meta_loss_sum += mloss;
    st->meta_loss_n++;

    /* 4. soft masses of the slots */
    if (st->sampled) {
        lt_rng sbase;
        lt_rng_init(&sbase, st->seed, LT_STREAM_METHOD + S_SOFT);
        uint64_t key = ((uint64_t)t->stage << 40) ^ (uint64_t)t->iter;
        const long *counts = st->counts;
        double *S = st->S, *skb = st->skb;
        const int32_t *lab = t->labels;
        /* each slot has its own sub-stream: the result does not depend on
         * the thread count */
        LT_PAR_FOR(lt_par((size_t)n, 2),
        for (int b = 0; b < n; b++) {
            lt_rng rs;
            lt_rng_derive(&rs, &sbase, key, (uint64_t)b);
            balms_soft_mass_sampled(C, counts, wq, lab[b], &rs, S + (size_t)b * C, skb + b);
        });
    } else {
        for (int b = 0; b < n; b++) balms_soft_mass_expected(C, st->counts, wq, st->S + (size_t)b * C, st->skb + b);
    }

    /* 5. dL/dw and the Adam step on w */
    double kappa = st->nesterov ? 1.0 + st->mom : 1.0;
    balms_meta_grad(n, C, D, t->feat, t->labels, dlogits, st->GW, st->Gb, (double)lr_h * kappa, st->S, st->skb, wq,
                    st->U, st->dldv, st->gw);
    for (int c = 0; c < C; c++) {
        if (!isfinite(st->gw[c])) return lt_err(LT_ENUM, "balms: non-finite meta-gradient for class %d", c);
        st->gwf[c] = (float)st->gw[c];
    }
    lt_adam_cfg ac = {(float)st->meta_lr, 0.9f, 0.999f, 1e-8f, 0.0f};   /* torch.optim.Adam defaults */
    st->adam_step++;
    lt_adam_step((size_t)C, st->w, st->gwf, st->am, st->av, NULL, &ac, st->adam_step);
    for (int c = 0; c < C; c++)
        if (st->counts[c] == 0) st->w[c] = 0.0f;   /* never drawn; keep it inert */
    return LT_OK;
}

static int balms_loss(void *stp, const lt_taps *t, double *loss, lt_grads *g) {
    balms_state *st = stp;
    if (t->n_classes != st->C)
        return lt_err(LT_EINVAL, "balms: taps have %d classes, the run %d", t->n_classes, st->C);
    /* Stage 0 (only if the runner ever trains it here rather than reusing the
     * ce run): plain CE representation learning. */
    if (t->stage == 0 || !st->active)
        return lt_softmax_ce(t->n, st->C, t->logits, t->labels, NULL, NULL, loss, g->dlogits);
    for (int i = 0; i < t->n; i++) {
        int y = t->labels[i];
        if (y < 0 || y >= st->C || st->counts[y] == 0)
            return lt_err(LT_EINVAL, "balms: sample %d has label %d (no training images in that class)", i, y);
    }
    /* The real step's loss: unweighted Balanced Softmax, CE(z + log n). */
    LT_TRY(lt_softmax_ce(t->n, st->C, t->logits, t->labels, st->offsets, NULL, loss, g->dlogits));
    /* The meta step uses the classifier BEFORE the real step; the runner steps
     * after this hook returns, so it can run here. */
    return balms_meta_step(st, t, g->dlogits);
}

static int balms_epoch_end(void *stp, int stage, int epoch, lt_model *m) {
    balms_state *st = stp;
    (void)m;
    (void)epoch;
    const lt_run_info *run = st->run;
    if (stage != 1 || !run->log) return LT_OK;
    double lo = INFINITY, hi = -INFINITY;
    for (int c = 0; c < st->C; c++) {
        if (st->counts[c] == 0) continue;
        double q = sigmoidf_(st->w[c]);
        if (q < lo) lo = q;
        if (q > hi) hi = q;
        if (st->C <= 20) {
            char key[32];
            snprintf(key, sizeof key, "q_class%d", c);
            LT_TRY(run->log(run->host, key, q));
        }
    }
    LT_TRY(run->log(run->host, "q_min", lo));
    LT_TRY(run->log(run->host, "q_max", hi));
    if (st->meta_loss_n > 0) LT_TRY(run->log(run->host, "meta_loss", st->meta_loss_sum / (double)st->meta_loss_n));
    st->meta_loss_sum = 0;
    st->meta_loss_n = 0;
    return LT_OK;
}

static int balms_predict(void *stp, const lt_taps *t, float *scores, int *kind) {
    balms_state *st = stp;
    if (t->n_classes != st->C)
        return lt_err(LT_EINVAL, "balms: taps have %d classes, the run %d", t->n_classes, st->C);
    /* Plain logits at test time (official issue #13); a class without training
     * images is excluded, as in the Balanced Softmax methods. */
    memcpy(scores, t->logits, (size_t)t->n * (size_t)st->C * sizeof *scores);
    for (int j = 0; j < st->C; j++)
        if (st->counts[j] == 0)
            for (int i = 0; i < t->n; i++) scores[(size_t)i * st->C + j] = BALMS_EXCLUDED;
    *kind = LT_SCORES_LOGITS;
    return LT_OK;
}

/* ---- checkpoint -------------------------------------------------------------- */

typedef struct { const char *key; void *p; size_t bytes; } balms_rec;

static int balms_records(balms_state *st, balms_rec *r) {
    size_t Cz = (size_t)st->C;
    int k = 0;
    r[k++] = (balms_rec){"w", st->w, Cz * sizeof(float)};
    r[k++] = (balms_rec){"adam_m", st->am, Cz * sizeof(float)};
    r[k++] = (balms_rec){"adam_v", st->av, Cz * sizeof(float)};
    r[k++] = (balms_rec){"adam_step", &st->adam_step, sizeof st->adam_step};
    r[k++] = (balms_rec){"w_epoch0", st->w_epoch[0], Cz * sizeof(float)};
    r[k++] = (balms_rec){"w_epoch1", st->w_epoch[1], Cz * sizeof(float)};
    r[k++] = (balms_rec){"epoch_tags", st->epoch_tag, sizeof st->epoch_tag};
    r[k++] = (balms_rec){"meta_loss", &st->meta_loss_sum, sizeof st->meta_loss_sum};
    r[k++] = (balms_rec){"meta_loss_n", &st->meta_loss_n, sizeof st->meta_loss_n};
    if (st->active) {
        r[k++] = (balms_rec){"pool_feat", st->pool_feat, (size_t)st->P * st->D * sizeof(float)};
        r[k++] = (balms_rec){"pool_lab", st->pool_lab, (size_t)st->P * sizeof(int32_t)};
    }
    return k;
}

static int balms_save(const void *stp, lt_ckpt_writer *w, const char *prefix) {
    balms_state *st = (balms_state *)stp;
    balms_rec r[16];
    int k = balms_records(st, r);
    for (int i = 0; i < k; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s%s", prefix, r[i].key);
        LT_TRY(lt_ckpt_put(w, name, r[i].p, r[i].bytes));
    }
    return LT_OK;
}

static int balms_load(void *stp, const lt_ckpt *c, const char *prefix) {
    balms_state *st = stp;
    balms_rec r[16];
    int k = balms_records(st, r);
    for (int i = 0; i < k; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s%s", prefix, r[i].key);
        /* a checkpoint of stage 0 has no meta-stage records: the replayed
         * stage_begin's fresh values stand */
        if (!lt_ckpt_has(c, name)) continue;
        LT_TRY(lt_ckpt_get_into(c, name, r[i].p, r[i].bytes));
    }
    /* a count from the file: the meta step adds one and Adam needs >= 1 */
    if (st->adam_step < 0 || st->adam_step == LONG_MAX)
        return lt_err(LT_EDATA, "balms: %sadam_step %ld out of range", prefix, st->adam_step);
    if (st->active) st->pool_ok = balms_all_finite(st->pool_feat, (size_t)st->P * st->D);
    return LT_OK;
}

const lt_method *lt_method_balms(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "balms",
        .version = "2",  /* 2: meta_set "val" (the dataset's validation split); default unchanged */
        .cite = "Ren et al., NeurIPS 2020, arXiv:2007.10740",
        .fidelity = "reconstructed",
        .defaults = BALMS_DEFAULTS,
        .state_size = sizeof(balms_state),
        /* the batch hook redraws the batch's host rows, the loss reads the
         * taps, the classifier (lt_model_param_to_host) and the optimizer's
         * state (opt_state) as host arrays */
        .flags = LT_METHOD_HOST_TAPS,
        .stage1_from = "ce",
        .init = balms_init,
        .fini = balms_fini,
        .n_stages = balms_n_stages,
        .stage_begin = balms_stage_begin,
        .sampler = balms_sampler,
        .batch_hook = balms_batch_hook,
        .loss = balms_loss,
        .epoch_end = balms_epoch_end,
        .predict = balms_predict,
        .save = balms_save,
        .load = balms_load,
    };
    return &m;
}
