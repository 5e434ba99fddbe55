/* lt_kit.h — engine parts shared by the contrastive, distillation and CAM
 * methods (ICCL, SSD, CBD, CAMC; issue 17): Beta draws and pixel mixup, the
 * EMA copy of a model, a labelled FIFO key queue, masked log-sum-exp
 * contrastive logits, knowledge-distillation losses, class activation maps.
 * Included by lt.h; methods reach it through lt.h only.
 *
 * Conventions as lt_loss.h / lt_ops.h: a loss returns the mean over rows in
 * *loss and OVERWRITES its gradient buffer (already divided by the row
 * count); nothing here allocates except the *_create / *_init functions,
 * which a method calls once (init / stage_begin), so per-iteration calls
 * take caller workspaces. Random numbers come from the caller's lt_rng. */
#ifndef LT_KIT_H
#define LT_KIT_H

#include "lt_base.h"
#include "lt_rng.h"
#include "lt_ckpt.h"
#include "lt_model.h"

/* ---- distributions ----------------------------------------------------------
 * Gamma(shape, 1) by Marsaglia & Tsang (2000) from lt_rng_normal / uniform;
 * shape < 1 by the boost Gamma(a) = Gamma(a + 1) * U^(1/a). Beta(a, b) =
 * X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b) (both from the same stream,
 * X first). Shapes must be > 0 (NaN otherwise). */
double lt_rng_gamma(lt_rng *r, double shape);
double lt_rng_beta(lt_rng *r, double a, double b);

/* ---- pixel-space mixup ---------------------------------------------------------
 * Two batches, one lambda per pair (ICCL: a class-agnostic batch xa and a
 * class-aware batch xb): lam[i] ~ Beta(alpha, alpha), drawn i = 0..n-1 in
 * order, and xm[i] = lam[i] * xa[i] + (1 - lam[i]) * xb[i] over the d floats
 * of a row. xm may be xa or xb (row i reads only row i). The labels of the
 * mix are (ya[i], yb[i], lam[i]). alpha <= 0 gives lam = 1 (no mixing). */
int lt_mixup_pairs(int n, size_t d, const float *xa, const float *xb, double alpha, lt_rng *rng,
                   float *xm, float *lam);
/* One batch mixed with a permutation of itself (Zhang et al.'s mixup with a
 * per-sample lambda): perm (n ints, workspace) = a Fisher-Yates shuffle drawn
 * first, then lam[i] ~ Beta(alpha, alpha) for i = 0..n-1; xm[i] = lam[i] x[i]
 * + (1 - lam[i]) x[perm[i]], ya[i] = y[i], yb[i] = y[perm[i]]. xm must not
 * overlap x. */
int lt_mixup_batch(int n, size_t d, const float *x, const int32_t *y, double alpha, lt_rng *rng,
                   int32_t *perm, float *xm, int32_t *ya, int32_t *yb, float *lam);
/* Mixed softmax cross-entropy: loss = 1/N sum_i [lam_i CE(z_i, ya_i) +
 * (1 - lam_i) CE(z_i, yb_i)]; gradient (softmax(z_i) - lam_i e_ya - (1 -
 * lam_i) e_yb) / N. Also ICCL's interpolative centroid loss, with z the
 * centroid similarities / tau. */
int lt_mixup_ce(int N, int C, const float *logits, const int32_t *ya, const int32_t *yb,
                const float *lam, double *loss, float *dlogits);

/* ---- EMA copy of a model (MoCo's key encoder) ---------------------------------
 * Pairs every parameter of dst with the parameter of the same name and size
 * in src (dst may hold fewer: a key encoder without the classifier); a dst
 * parameter src lacks is LT_EINVAL naming it. Buffers (BN running
 * statistics) by `buffers`:
 *   LT_EMA_BUF_KEEP  untouched: dst's own BN forwards keep them (MoCo: the
 *                    key encoder's BN runs in train mode on the key batch
 *                    and tracks its own statistics; momentum_update touches
 *                    parameters only) — the default for SSD stage I;
 *   LT_EMA_BUF_COPY  copied from src at every update;
 *   LT_EMA_BUF_EMA   averaged like the parameters.
 * update: theta_d <- m theta_d + (1 - m) theta_s in float, element by
 * element (torch's param_k * m + param_q * (1 - m)); copy: theta_d <-
 * theta_s exactly and buffers copied whatever the mode (the key encoder's
 * initialisation). The models must outlive the handle. Either model may be
 * on a device (a cpu key encoder of a device run's model): its tensors are
 * then read and written through the host copies (lt_model_param_to_host /
 * _from_host), one tensor at a time, and the arithmetic is the same host
 * loop, so the bits are those of two cpu models with the same values. */
enum { LT_EMA_BUF_KEEP = 0, LT_EMA_BUF_COPY = 1, LT_EMA_BUF_EMA = 2 };
typedef struct lt_ema lt_ema;
int lt_ema_create(lt_ema **e, lt_model *dst, lt_model *src, int buffers);
int lt_ema_update(lt_ema *e, float m);
int lt_ema_copy(lt_ema *e);
void lt_ema_free(lt_ema *e);

/* ---- labelled FIFO key queue (MoCo's queue + SSD's labels) -------------------
 * K keys of D floats (row-major [K x D]) and K labels. init fills the keys
 * with random unit vectors (N(0,1) entries, L2-normalised per key, from
 * rng) and every label with init_label (SSD's code: 0; the spec's default
 * -1, which never matches a class). push writes n keys at ptr, wrapping
 * around the end (entries ptr..ptr+n-1 mod K), and advances ptr by n mod K;
 * with n > K only the last K rows are kept, in order. */
typedef struct {
    int K, D;
    float *keys;
    int32_t *labels;
    long ptr;
} lt_keyqueue;
int lt_keyqueue_init(lt_keyqueue *q, int K, int D, int32_t init_label, lt_rng *rng);
int lt_keyqueue_push(lt_keyqueue *q, int n, const float *keys, const int32_t *labels);
void lt_keyqueue_free(lt_keyqueue *q);
/* Checkpoint records "<prefix>keys", "<prefix>labels", "<prefix>ptr"; load
 * needs a queue initialised with the same K and D. */
int lt_keyqueue_save(const lt_keyqueue *q, lt_ckpt_writer *w, const char *prefix);
int lt_keyqueue_load(lt_keyqueue *q, const lt_ckpt *c, const char *prefix);

/* ---- masked log-sum-exp and contrastive logits --------------------------------
 * mask [N x M] bytes per logit: LT_CON_DENOM = in the row's denominator,
 * LT_CON_POS = a positive of the row.
 * lt_masked_lse: lse[i] = log sum_{j: mask_ij & bit} exp(z_ij), stable
 * (max-shifted, in double); -INFINITY for a row with no such entry.
 * lt_masked_contrast: loss_i = lse_denom_i - mean_{j in P_i} z_ij (SupCon's
 * "out" form; with P_i = {the key} and the denominator {key} + {queue
 * entries of another label} it is SSD's label-filtered MoCo loss); loss =
 * mean over the rows with a positive and a denominator (others give 0 and
 * no gradient; *n_valid, may be NULL, counts the rows used). Gradient:
 * (softmax over the denominator - [j in P_i] / |P_i|) / n_valid. The
 * logits already include 1/tau. */
#define LT_CON_DENOM 1u
#define LT_CON_POS 2u
void lt_masked_lse(int N, int M, const float *logits, const uint8_t *mask, unsigned bit, double *lse);
int lt_masked_contrast(int N, int M, const float *logits, const uint8_t *mask, double *loss,
                       float *dlogits, int *n_valid);
/* SSD's mask for logits [N x (1 + K)] = [q.k | q.queue]: column 0 is the
 * positive (DENOM | POS), column 1 + j is in the denominator when queue
 * label j differs from y_i. */
void lt_queue_contrast_mask(int N, const int32_t *y, int K, const int32_t *qlabels, uint8_t *mask);

/* ---- distillation -----------------------------------------------------------
 * KD (Hinton; SSD stage III): loss = T^2 / N sum_i KL(softmax(t_i / T) ||
 * softmax(s_i / T)), summed over classes, mean over the batch; gradient with
 * respect to the student logits only (the teacher is a constant): T (p_s -
 * p_t) / N. probs [N x C] is a workspace (it receives the teacher's
 * softened probabilities). lt_soft_ce(kl = 1) underneath.
 * Cosine feature distillation (CBD): lt_cosine_distance (lt_loss.h) with
 * db = NULL, 1/N sum (1 - cos(f_s, f_t)). */
int lt_kd_loss(int N, int C, const float *student, const float *teacher, float T, float *probs,
               double *loss, float *dstudent);
/* y_i = x_i / max(|x_i|, eps) row by row (y may be x): CBD's normalised
 * teacher features before and after their concatenation. */
void lt_l2_normalize_rows(int n, int d, const float *x, float eps, float *y);

/* ---- class activation maps ---------------------------------------------------
 * From the last feature map F [N x K x H x W] (before pooling) and the
 * classifier weights Wc [C x K]: cam_i = sum_k Wc[cls_i, k] F_i,k (H x W),
 * upsampled to oh x ow bilinearly (PyTorch interpolate, align_corners =
 * False), then min-max normalised to [0, 1] per sample (a constant map
 * gives zeros). cam [N x oh x ow]; ws: H * W floats. */
int lt_cam(int N, int K, int H, int W, const float *F, int C, const float *Wc, const int32_t *cls,
           int oh, int ow, float *cam, float *ws);
/* CAM-weighted pooling layer (CAMC, reconstructed; lt_campool.c): on the
 * feature map F [K x H x W] of node `in`, f = GAP(F) + gamma * sum_p A_p
 * F[:, p] with A = softmax over the H x W locations of scale * cos(w_c,
 * F[:, p]), w_c row c of the [C x K] parameter named `weight` (the cosine
 * classifier that reads f, e.g. "logits.weight"). c: with use_labels, in a
 * training forward, the row's label (lt_model_set_labels; a training
 * forward without them is LT_EINVAL); otherwise the top-1 class of
 * cos(w_j, GAP(F_i)), i.e. the prediction of a uniform-attention first
 * pass. Gradients into F (all paths) and into the weight through A; with
 * stop_grad A is a constant (nothing reaches the weight from here). The
 * output is [K]. Runs on cpu and cuda (either layout). Returns the node
 * index or a negative status. */
int lt_add_cam_pool(lt_model *m, const char *name, const char *group, int in, const char *weight, float scale,
                    float gamma, int stop_grad, int use_labels);
/* Bilinear resize of one plane (PyTorch interpolate, align_corners = False). */
void lt_resize_bilinear(int H, int W, const float *in, int oh, int ow, float *out);

#endif
