/* lt_loss.h — losses with their gradients, optimizers, LR schedules.
 *
 * Every loss returns the MEAN loss over the batch (weighted mean where
 * per-sample weights are given: sum_i w_i l_i / N, PyTorch's reduction='mean'
 * with weights applied per sample, divided by N not by sum w) in *loss and
 * writes (overwrites) d loss / d input into the gradient buffer, already
 * divided by N. All accumulate in double for the loss value. */
#ifndef LT_LOSS_H
#define LT_LOSS_H

#include "lt_base.h"

/* ---- softmax cross-entropy ------------------------------------------------
 * logits [N,C], labels [N]; offsets [C] added to every row before the softmax
 * (NULL = none; Balanced Softmax uses log n_j, which must be finite: a class
 * with n_j = 0 is the caller's decision); weights [N] per sample (NULL = all
 * 1). dlogits may be NULL (loss only). Returns LT_ENUM on NaN/Inf in logits,
 * offsets, weights or the loss, LT_EINVAL for a label outside [0, C).
 * Gradient: w_i * (softmax(z_i + offsets) - onehot(y_i)) / N. */
int lt_softmax_ce(int N, int C, const float *logits, const int32_t *labels,
                  const float *offsets, const float *weights, double *loss, float *dlogits);

/* Soft-target cross-entropy with temperature T:
 * loss = -T^2/N sum_i sum_j q_ij log softmax(z_i/T)_j, q given (rows sum to 1).
 * kl != 0 gives KL(q || p) instead (adds sum q log q; same gradient).
 * Gradient: T/N * (Q_i softmax(z_i/T) - q_i) with Q_i = sum_j q_ij (1 for
 * proper distributions). T must be > 0; kl needs targets >= 0. */
int lt_soft_ce(int N, int C, const float *logits, const float *targets, float T, int kl,
               double *loss, float *dlogits);

/* A finite stand-in for log 0 = -inf in logit offsets (lt_softmax_ce and
 * lt_sigmoid_bce refuse non-finite offsets): any logit a network produces is
 * negligible next to it, exp(-1e30) is exactly 0 in double, so a class with
 * this offset gets probability 0, no loss and no gradient. */
#define LT_OFFSET_EXCLUDED (-1e30f)

/* Balanced-Softmax prior offsets: offsets[j] = log counts[j], or
 * LT_OFFSET_EXCLUDED for a class with no training image. Returns the number
 * of such classes in *n_excluded (may be NULL). LT_EINVAL for a negative
 * count or when every class is empty. */
int lt_log_count_offsets(int C, const long *counts, float *offsets, int *n_excluded);

/* Normalised one-vs-rest sigmoid, row by row: q_ij = sigma(z_ij) / sum_k
 * sigma(z_ik), computed in log space (log sigma(z) = min(z,0) - log1p(e^-|z|))
 * so rows whose every sigma underflows in float keep their order and still
 * sum to 1. The single-label distribution of a sigmoid model, for top-1 and
 * ECE; z and q may be the same array. */
void lt_sigmoid_norm_rows(int N, int C, const float *z, float *q);

/* Sigmoid binary cross-entropy, numerically stable:
 * loss = 1/N sum_i sum_j [softplus(z) - y z] with z = logit + offset_j;
 * targets [N,C] in {0,1} (or soft); offsets [C] may be NULL. */
int lt_sigmoid_bce(int N, int C, const float *logits, const float *targets,
                   const float *offsets, double *loss, float *dlogits);

/* Cosine distance between feature vectors: loss = 1/N sum_i (1 - cos(a_i, b_i)).
 * Gradients for a and b (either may be NULL). eps guards zero norms: each
 * norm is clamped to at least eps separately (PyTorch cosine_similarity). */
int lt_cosine_distance(int N, int D, const float *a, const float *b, float eps, double *loss,
                       float *da, float *db);

/* ---- optimizers over flat buffers ------------------------------------------
 * params, grads and state are flat arrays of n floats in the same order.
 * mask (may be NULL) has one byte per element: bit0 = frozen (skip entirely),
 * bit1 = no weight decay. */
#define LT_MASK_FROZEN 1u
#define LT_MASK_NO_DECAY 2u

typedef struct {
    float lr, momentum, weight_decay;
    int nesterov;
} lt_sgd_cfg;
/* PyTorch SGD: g' = g + wd*w; v = mu*v + g' (v = g' at the first step, which
 * PyTorch does by initialising the buffer to g'; we take v = 0 initially and
 * the first step gives mu*0 + g' = g', the same thing); w -= lr*(nesterov ?
 * g' + mu*v : v). momentum == 0 uses no state (mom may be NULL); otherwise
 * mom is required. Frozen elements keep both weight and momentum. */
void lt_sgd_step(size_t n, float *params, const float *grads, float *mom,
                 const uint8_t *mask, const lt_sgd_cfg *cfg);

typedef struct {
    float lr, beta1, beta2, eps, weight_decay; /* L2-style decay added to g (torch Adam) */
} lt_adam_cfg;
/* PyTorch Adam: g' = g + wd*w; m = b1*m + (1-b1)*g'; v = b2*v + (1-b2)*g'^2;
 * w -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
 * step t is 1-based (bias correction; t < 1 is a broken invariant). m, v:
 * flat state arrays of n floats, zero before the first step. */
void lt_adam_step(size_t n, float *params, const float *grads, float *m, float *v,
                  const uint8_t *mask, const lt_adam_cfg *cfg, long step);

/* ---- learning-rate schedules: pure functions of the global iteration ------
 * it: 0-based global iteration; ipe: iterations per epoch. The 0-based epoch
 * index is E = it / ipe; the 1-based epoch of the LDAM-DRW code is e = E + 1.
 * Out-of-range arguments are clamped (ipe < 1 acts as 1, it < 0 as 0). */
typedef enum {
    LT_SCHED_CONSTANT = 0,
    LT_SCHED_COSINE = 1,
    LT_SCHED_MULTISTEP = 2,
    LT_SCHED_COSINE_EPOCH = 3   /* BALMS's CosineAnnealingLRWarmup: below */
} lt_sched_kind;
typedef struct {
    lt_sched_kind kind;
    double base_lr;
    int epochs;              /* total epochs (cosine runs to 0 at epochs*ipe) */
    /* warm-up, applied by every kind: per-iteration linear over warmup_epochs
     * epochs (lr = base*(it+1)/(we*ipe) for it < we*ipe), or per-epoch (LDAM
     * CIFAR: lr = base*e/we for 1-based epoch e <= we). 0 = no warm-up. */
    int warmup_epochs;
    int warmup_per_epoch;    /* 0 = per-iteration, 1 = per-epoch (LDAM style) */
    /* multistep only: for every k with E >= milestones[k] (0-based epoch
     * index, i.e. "after 1-based epoch milestones[k]", PyTorch MultiStepLR's
     * convention) the rate is multiplied by gamma once more (cumulative). */
    int n_milestones;        /* 0..8 */
    int milestones[8];
    double gamma;            /* multistep factor applied per milestone passed */
    /* cosine_epoch only: the warm-up's first epoch runs at warmup_start * base. */
    double warmup_start;
} lt_sched;
/* Constant: base * warm-up factor.
 * Cosine after warm-up: lr = base * 0.5 * (1 + cos(pi * t / T)) with t = it - W,
 * T = epochs*ipe - W, W = warm-up iterations; 0 from it = epochs*ipe on.
 * Multistep: base * warm-up factor * gamma^(milestones passed).
 *
 * fmnist_lt stage 1: {LT_SCHED_COSINE, 0.1, .epochs = 30, .warmup_epochs = 1}.
 * LDAM-DRW CIFAR (PROTOCOLS.md; 0.1*e/5 for e = 1..5, 0.1 up to epoch 160,
 * 0.1*0.01 for epochs 161..180, 0.1*0.0001 for 181..200):
 *   {LT_SCHED_MULTISTEP, 0.1, .epochs = 200, .warmup_epochs = 5,
 *    .warmup_per_epoch = 1, .n_milestones = 2, .milestones = {160, 180},
 *    .gamma = 0.01}.
 * Cosine per epoch (LT_SCHED_COSINE_EPOCH; the BALMS code's scheduler, stepped
 * at the start of every epoch, so 1-based epoch e = E + 1 runs at lr(e)):
 * with W = warmup_epochs, T = epochs, s = warmup_start,
 *   e < W:  base * (s + (1 - s) * (e - 1) / (W - 1))   (s at e = 1; the line meets base at e = W)
 *   e >= W: base * 0.5 * (1 + cos(pi * (e - W) / (T - W)))   (0 at e = T)
 * W = 0: the cosine alone, base * 0.5 * (1 + cos(pi * e / T)), which is
 * CosineAnnealingLR(T, eta_min = 0) stepped before each epoch. W = 1 (the
 * code asserts W >= 2; protocols refuse it) is the cosine counted from
 * epoch 1. The generic warm-up above does not apply to this kind. */
double lt_sched_lr(const lt_sched *s, long it, long ipe);

#endif
