/* bcrumb — Breadcrumb / EMANATE (Liu, Li, Kang, Hua, Vasconcelos, "Breadcrumbs:
 * Adversarial Class-Balanced Sampling for Long-tailed Recognition",
 * arXiv 2105.00127, ECCV 2022), after the official code
 * (BoLiu-SVCL/Breadcrumbs, train.py / eval.py at 08d35a9), as the spec
 * ../shared/specs/methods-b.md §5 describes it: fidelity `official-code`.
 *
 * One stage, two classifiers on one backbone F:
 *   - R ("logits", the default head) and F train by CE on instance batches
 *     (the runner's forward, backward and step, untouched);
 *   - Cb (a host module "cb", its own SGD and schedule) trains only on
 *     features that carry no gradient to F, and is the test-time classifier
 *     (predict: F + Cb; R is discarded as eval.py does).
 * Inside an iteration Cb steps first (batch_hook, before the runner's
 * forward), then F + R (spec §5.5.3).
 *
 * Cb's batch. Per class c a deque of the last q_c epochs' features of its
 * n_c images (the training forward pass's own features: train-mode BN,
 * augmented images, parameters before the step; appended in iter_end) and
 * each epoch's class mean. Once every deque is full ("ready"), each epoch
 * starts by assembling the bank: per class the residuals (feature - that
 * epoch's mean) of its epochs, most recent first, cut to nb rows and moved
 * onto the latest mean; all C·nb rows permuted, the first I·B kept and cut
 * into I batches of B (batch i feeds Cb at iteration i). Before that, Cb
 * trains on F(images) of a class-aware batch (k = 4 consecutive images per
 * class, classes cycled in an order reshuffled each pass; host service
 * `draw`), F run in train mode without gradient (host sub-graph input ->
 * feat): as the official feat_model(images_CB).detach() in model.train(),
 * this moves the BN running statistics too.
 *   I = ceil(N / B) (the official plain loader keeps the last partial batch,
 *   so this method sets drop_last = 0), nb = ceil(I·B / C),
 *   q_c = ceil(nb / n_c).
 *
 * Storage, allocated once in stage_begin: class c has a ring of q_c slots
 * of n_c rows; the epoch in progress writes into the slot that becomes its
 * newest entry (the oldest one once the ring is full: the bank of this
 * epoch was assembled from it at the epoch's start, and nothing reads it
 * after), so the history never holds more than sum_c q_c n_c
 * <= N + C·nb rows, the bound of spec §5.2.
 *
 * Determinism and resume: the class-aware batches come from stream
 * (seed, LT_STREAM_METHOD + 1) at the stage iteration's slots, the bank
 * permutation from (seed, LT_STREAM_METHOD + 2) derived per epoch; the
 * deques are in the checkpoint (written at epoch ends), Cb and its
 * optimizer are the host's (mod/cb/), and the bank is a function of the
 * deques and the epoch, rebuilt by the first iteration of every epoch.
 * The bank's sizes go into result.json's method_report (post_train). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define BC_DEFAULTS "{\"k_per_class\": 4, \"cb_lr_mult\": 1.0}"

enum { S_CLASS_AWARE = 1, S_BANK = 2 };

typedef struct {
    const lt_run_info *run;
    int C, D, B;
    long N, I, nb;
    /* hyper-parameters */
    long k_per_class;
    double cb_lr_mult;
    /* per class */
    long *n;           /* [C] training images */
    long *q;           /* [C] epochs kept */
    size_t *off;       /* [C] first float of class c's slots in hist */
    size_t *moff;      /* [C] first float of class c's means in mean */
    long *start, *len; /* [C] ring: oldest slot, full entries */
    long *fill;        /* [C] rows of the epoch in progress */
    float *hist;       /* sum_c q_c n_c D */
    float *mean;       /* sum_c q_c D */
    size_t hist_floats;
    int ready;
    long ready_epoch;  /* first epoch whose Cb trained on the bank (-1: none yet) */
    long peak_rows;    /* most feature rows the deques held at an epoch end */
    /* the bank of the current epoch */
    float *bank;       /* [I·B x D] */
    int32_t *bank_y;   /* [I·B] */
    int32_t *perm;     /* [C·nb] */
    long bank_epoch;   /* epoch the bank was assembled for (-1: none) */
    /* Cb and the warm-up's backbone pass */
    lt_model *cb;
    int cb_out;
    lt_subgraph *sg;
    int feat;
    float *dx;
    int32_t *dy, *did;
    long cas_len;      /* class-aware pass length: max_c n_c x C (the official sampler's) */
    /* per-epoch diagnostics (events) */
    double cb_loss_sum;
    long cb_iters, cb_correct, cb_rows;
} bc_state;

/* ---- sizes ------------------------------------------------------------------------ */

static long ceil_div(long a, long b) { return (a + b - 1) / b; }

/* I, nb and q_c from N, B and the class counts (spec §5.1). */
static int bc_sizes(int C, const long *n, long B, long *I, long *nb, long *q) {
    long N = 0;
    for (int c = 0; c < C; c++) {
        if (n[c] < 1) return lt_err(LT_EINVAL, "bcrumb: class %d has no training image (every class needs a deque)", c);
        N += n[c];
    }
    if (B < 1) return lt_err(LT_EINVAL, "bcrumb: batch %ld", B);
    *I = ceil_div(N, B);
    *nb = ceil_div(*I * B, C);
    for (int c = 0; c < C; c++) q[c] = ceil_div(*nb, n[c]);
    return LT_OK;
}

/* Slot of class c's e-th most recent entry (e = 0: the newest). */
static inline long bc_slot(const bc_state *st, int c, long e) {
    return (st->start[c] + st->len[c] - 1 - e) % st->q[c];
}

/* Slot the epoch in progress writes: the next free one, or the oldest. */
static inline long bc_write_slot(const bc_state *st, int c) {
    return st->len[c] < st->q[c] ? (st->start[c] + st->len[c]) % st->q[c] : st->start[c];
}

static inline float *bc_rows(const bc_state *st, int c, long slot) {
    return st->hist + st->off[c] + (size_t)slot * st->n[c] * st->D;
}

static inline float *bc_mean(const bc_state *st, int c, long slot) {
    return st->mean + st->moff[c] + (size_t)slot * st->D;
}

/* ---- the bank ----------------------------------------------------------------------- */

/* Row k (0..nb-1) of class c's bank block: the k-th residual of the
 * concatenation of its epochs, most recent first, moved onto the newest
 * mean: (f - mean_e) + mean_latest, in the official code's order. */
static void bc_bank_row(const bc_state *st, int c, long k, float *out) {
    const int D = st->D;
    long e = k / st->n[c];
    const long r = k % st->n[c];
    const long s = bc_slot(st, c, e);
    const float *f = bc_rows(st, c, s) + (size_t)r * D, *m = bc_mean(st, c, s);
    const float *ml = bc_mean(st, c, bc_slot(st, c, 0));
    for (int d = 0; d < D; d++) out[d] = (f[d] - m[d]) + ml[d];
}

/* The epoch's bank: C·nb rows (class-major), a permutation from the
 * epoch's stream, the first I·B rows kept (torch.randperm(C·nb)[:I·B]). */
static void bc_bank_build(bc_state *st, int epoch) {
    const long tot = (long)st->C * st->nb, keep = st->I * st->B;
    for (long r = 0; r < tot; r++) st->perm[r] = (int32_t)r;
    lt_rng base, g;
    lt_rng_init(&base, st->run->seed, LT_STREAM_METHOD + S_BANK);
    lt_rng_derive(&g, &base, (uint64_t)epoch, 0);
    lt_rng_shuffle_i32(&g, st->perm, tot);
    for (long r = 0; r < keep; r++) {
        const int c = (int)(st->perm[r] / st->nb);
        bc_bank_row(st, c, st->perm[r] % st->nb, st->bank + (size_t)r * st->D);
        st->bank_y[r] = c;
    }
    st->bank_epoch = epoch;
}

/* ---- the epoch's features ------------------------------------------------------------- */

static int bc_append(bc_state *st, int n, const float *feat, const int32_t *y) {
    const int D = st->D;
    for (int i = 0; i < n; i++) {
        const int c = y[i];
        if (c < 0 || c >= st->C) return lt_err(LT_EINVAL, "bcrumb: label %d outside [0, %d)", c, st->C);
        if (st->fill[c] >= st->n[c])
            return lt_err(LT_ESTATE, "bcrumb: class %d seen more than its %ld images in one epoch (the plain "
                          "loader shows each image once)", c, st->n[c]);
        float *dst = bc_rows(st, c, bc_write_slot(st, c)) + (size_t)st->fill[c]++ * D;
        memcpy(dst, feat + (size_t)i * D, (size_t)D * sizeof(float));
    }
    return LT_OK;
}

/* End of epoch: the epoch's class means, push onto the deques (dropping
 * the oldest), ready = every deque full. */
static int bc_epoch_close(bc_state *st) {
    const int D = st->D;
    long rows = 0;
    int ready = 1;
    for (int c = 0; c < st->C; c++) {
        if (st->fill[c] != st->n[c])
            return lt_err(LT_ESTATE, "bcrumb: class %d had %ld of its %ld images this epoch", c, st->fill[c],
                          st->n[c]);
        const long s = bc_write_slot(st, c);
        const float *f = bc_rows(st, c, s);
        float *m = bc_mean(st, c, s);
        for (int d = 0; d < D; d++) {
            double acc = 0;   /* unweighted mean over the epoch's rows (spec §5.5.5) */
            for (long r = 0; r < st->n[c]; r++) acc += f[(size_t)r * D + d];
            m[d] = (float)(acc / (double)st->n[c]);
        }
        if (st->len[c] == st->q[c]) st->start[c] = (st->start[c] + 1) % st->q[c];
        else st->len[c]++;
        st->fill[c] = 0;
        ready &= st->len[c] == st->q[c];
        rows += st->len[c] * st->n[c];
    }
    st->ready = ready;
    if (rows > st->peak_rows) st->peak_rows = rows;
    return LT_OK;
}

/* ---- Cb --------------------------------------------------------------------------------- */

/* One Cb step on n feature rows (no gradient reaches F: the rows are copies). */
static int bc_cb_step(bc_state *st, const float *feat, const int32_t *y, int n, long iter) {
    const int C = st->C;
    LT_TRY(lt_model_forward(st->cb, feat, n, 1));
    const float *z = lt_model_out(st->cb, st->cb_out);
    double loss;
    LT_TRY(lt_softmax_ce(n, C, z, y, NULL, NULL, &loss, lt_model_dout(st->cb, st->cb_out)));
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int j = 1; j < C; j++)
            if (z[(size_t)i * C + j] > z[(size_t)i * C + best]) best = j;
        st->cb_correct += best == y[i];
    }
    lt_model_zero_grad(st->cb);
    LT_TRY(lt_model_backward(st->cb, n, &st->cb_out, 1));
    LT_TRY(st->run->api->module_step(st->run->host, st->cb, iter, st->I, NULL));
    st->cb_loss_sum += loss;
    st->cb_iters++;
    st->cb_rows += n;
    return LT_OK;
}

/* ---- hooks ------------------------------------------------------------------------------ */

static int bc_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    bc_state *st = stp;
    st->run = run;
    st->C = run->n_classes;
    st->D = run->feat_dim;
    st->bank_epoch = -1;
    st->ready_epoch = -1;
    int rc = lt_hp_int(hp, "k_per_class", &st->k_per_class);
    if (!rc) rc = lt_hp_num(hp, "cb_lr_mult", &st->cb_lr_mult);
    if (rc) return lt_err_wrap(rc, "bcrumb");
    if (st->k_per_class < 1) return lt_err(LT_EINVAL, "bcrumb: k_per_class %ld must be >= 1", st->k_per_class);
    if (!(st->cb_lr_mult >= 0) || !isfinite(st->cb_lr_mult))
        return lt_err(LT_EINVAL, "bcrumb: cb_lr_mult %g must be >= 0", st->cb_lr_mult);
    if (st->C < 2 || st->D < 1) return lt_err(LT_EINVAL, "bcrumb: %d classes, feature size %d", st->C, st->D);
    if (!run->api || run->api->version < 1) return lt_err(LT_EABI, "bcrumb: needs the host services (method ABI 3)");
    const int C = st->C;
    st->n = calloc((size_t)C, sizeof *st->n);
    st->q = calloc((size_t)C, sizeof *st->q);
    st->off = calloc((size_t)C, sizeof *st->off);
    st->moff = calloc((size_t)C, sizeof *st->moff);
    st->start = calloc((size_t)C, sizeof *st->start);
    st->len = calloc((size_t)C, sizeof *st->len);
    st->fill = calloc((size_t)C, sizeof *st->fill);
    if (!st->n || !st->q || !st->off || !st->moff || !st->start || !st->len || !st->fill)
        return lt_err(LT_ENOMEM, "bcrumb: out of memory");
    long mx = 0;
    for (int c = 0; c < C; c++) {
        st->n[c] = run->class_counts[c];
        st->N += st->n[c];
        if (st->n[c] > mx) mx = st->n[c];
    }
    st->cas_len = mx * C;
    return LT_OK;
}

static void bc_fini(void *stp) {
    bc_state *st = stp;
    free(st->n);
    free(st->q);
    free(st->off);
    free(st->moff);
    free(st->start);
    free(st->len);
    free(st->fill);
    lt_free(st->hist);
    lt_free(st->mean);
    lt_free(st->bank);
    free(st->bank_y);
    free(st->perm);
    lt_free(st->dx);
    free(st->dy);
    free(st->did);
    memset(st, 0, sizeof *st);   /* Cb and the sub-graph are the host's */
}

/* Everything sized by the batch, once (a resume replays this hook). */
static int bc_alloc(bc_state *st, int B) {
    const int C = st->C, D = st->D;
    st->B = B;
    LT_TRY(bc_sizes(C, st->n, B, &st->I, &st->nb, st->q));
    size_t h = 0, mm = 0;
    for (int c = 0; c < C; c++) {
        st->off[c] = h;
        st->moff[c] = mm;
        h += (size_t)st->q[c] * st->n[c] * D;
        mm += (size_t)st->q[c] * D;
    }
    st->hist_floats = h;
    const size_t keep = (size_t)st->I * B;
    st->hist = lt_alloc(h * sizeof(float));
    st->mean = lt_alloc(mm * sizeof(float));
    st->bank = lt_alloc(keep * D * sizeof(float));
    st->bank_y = malloc(keep * sizeof(int32_t));
    st->perm = malloc((size_t)C * st->nb * sizeof(int32_t));
    const size_t in_sz = lt_shape_count(st->run->in_shape);
    st->dx = lt_alloc((size_t)B * in_sz * sizeof(float));
    st->dy = malloc((size_t)B * sizeof(int32_t));
    st->did = malloc((size_t)B * sizeof(int32_t));
    if (!st->hist || !st->mean || !st->bank || !st->bank_y || !st->perm || !st->dx || !st->dy || !st->did)
        return lt_err(LT_ENOMEM, "bcrumb: out of memory for a history of %zu floats", h);
    memset(st->hist, 0, h * sizeof(float));
    memset(st->mean, 0, mm * sizeof(float));
    return LT_OK;
}

static int bc_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    bc_state *st = stp;
    const lt_run_info *run = st->run;
    if (stage != 0) return lt_err(LT_EINVAL, "bcrumb: no stage %d (1 stage)", stage);
    /* the official plain loader: shuffled, every image once, the last
     * partial batch kept (I = ceil(N/B), and nb follows from it) */
    cfg->sampler.kind = LT_SAMPLER_INSTANCE;
    cfg->samples_per_epoch = 0;
    cfg->drop_last = 0;
    if (cfg->views != 1 || cfg->model_views != 1)
        return lt_err(LT_EINVAL, "bcrumb: one view per sample (got %d, %d)", cfg->views, cfg->model_views);
    if (!st->hist) LT_TRY(bc_alloc(st, cfg->batch));
    else if (cfg->batch != st->B) return lt_err(LT_ESTATE, "bcrumb: batch changed from %d to %d", st->B, cfg->batch);
    st->feat = lt_model_find(m, "feat");
    if (st->feat < 0) return lt_err(LT_EINVAL, "bcrumb: the model has no 'feat'");
    /* F on the warm-up's class-aware images, on buffers of its own so the
     * batch's activations are not touched */
    if (!st->sg) LT_TRY(run->api->subgraph(run->host, m, "input", "feat", st->B, &st->sg));
    if (!st->cb) {
        /* Cb: nn.Linear(D, C) with its own SGD on the protocol's stage-1
         * settings and schedule (the official code gives both optimizers the
         * same lr, momentum, weight decay and cosine schedule) */
        LT_TRY(run->api->module_new(run->host, "cb", (lt_shape){1, st->D, 1, 1}, &st->cb));
        st->cb_out = lt_add_linear(st->cb, "cb", "cb", 0, st->C, 1);
        if (st->cb_out < 0) return -st->cb_out;
        lt_module_cfg mc = {.kind = LT_OPT_SGD, .momentum = cfg->momentum, .weight_decay = cfg->weight_decay,
                            .nesterov = cfg->nesterov, .sched = cfg->sched, .lr_per_epoch = cfg->lr_per_epoch,
                            .max_rows = st->B};
        mc.sched.base_lr *= st->cb_lr_mult;
        LT_TRY(run->api->module_ready(run->host, st->cb, &mc));
    }
    if (!st->ready) {
        /* the drawer allocates a list sampler's index list at its first
         * draw: one draw here keeps that out of the training loop (draws
         * are pure functions of their slots, so this changes no batch) */
        lt_draw_req q = {.sampler = {.kind = LT_SAMPLER_CLASS_AWARE, .k_per_class = (int)st->k_per_class},
                         .n = st->B, .views = 1, .augment = 1, .stream = LT_STREAM_METHOD + S_CLASS_AWARE,
                         .epoch = 0, .batch = 0, .samples_per_epoch = st->cas_len};
        LT_TRY(run->api->draw(run->host, &q, st->dx, st->dy, st->did));
    }
    if (run->log) {
        LT_TRY(run->log(run->host, "bcrumb_iters_per_epoch", (double)st->I));
        LT_TRY(run->log(run->host, "bcrumb_nb", (double)st->nb));
        long qmax = 0;
        for (int c = 0; c < st->C; c++)
            if (st->q[c] > qmax) qmax = st->q[c];
        LT_TRY(run->log(run->host, "bcrumb_q_max", (double)qmax));
        LT_TRY(run->log(run->host, "bcrumb_history_rows", (double)(st->hist_floats / (size_t)st->D)));
    }
    return LT_OK;
}

/* Cb's step of this iteration, before the runner's forward of F + R. */
static int bc_batch_hook(void *stp, lt_batch *b, lt_rng *rng) {
    bc_state *st = stp;
    const lt_run_info *run = st->run;
    (void)rng;
    const long i = b->iter - (long)b->epoch * st->I;
    if (i < 0 || i >= st->I)
        return lt_err(LT_ESTATE, "bcrumb: iteration %ld of epoch %d outside its %ld", b->iter, b->epoch, st->I);
    if (st->ready) {
        if (st->bank_epoch != b->epoch) bc_bank_build(st, b->epoch);
        if (st->ready_epoch < 0) st->ready_epoch = b->epoch;
        return bc_cb_step(st, st->bank + (size_t)i * st->B * st->D, st->bank_y + (size_t)i * st->B, st->B, b->iter);
    }
    /* warm-up: F (train mode, no gradient) on a class-aware batch; the
     * batches before the bank are the stage's iterations 0, 1, ..., so the
     * stage iteration indexes the class-aware stream's consecutive slots */
    lt_draw_req q = {.sampler = {.kind = LT_SAMPLER_CLASS_AWARE, .k_per_class = (int)st->k_per_class},
                     .n = st->B, .views = 1, .augment = 1, .stream = LT_STREAM_METHOD + S_CLASS_AWARE,
                     .epoch = 0, .batch = b->iter, .samples_per_epoch = st->cas_len};
    LT_TRY(run->api->draw(run->host, &q, st->dx, st->dy, st->did));
    LT_TRY(lt_subgraph_forward(st->sg, st->dx, st->B, 1));
    const float *f = lt_subgraph_out(st->sg, st->feat);   /* NULL: its copy from a device failed */
    if (!f) return lt_err_wrap(LT_EDEVICE, "bcrumb: the warm-up batch's features");
    return bc_cb_step(st, f, st->dy, st->B, b->iter);
}

/* After F + R's step: this iteration's features join the epoch's store. */
static int bc_iter_end(void *stp, const lt_taps *t) {
    bc_state *st = stp;
    if (t->feat_dim != st->D) return lt_err(LT_ESHAPE, "bcrumb: feat has %d values, expected %d", t->feat_dim, st->D);
    return bc_append(st, t->n, t->feat, t->labels);
}

static int bc_epoch_end(void *stp, int stage, int epoch, lt_model *m) {
    bc_state *st = stp;
    const lt_run_info *run = st->run;
    (void)stage;
    (void)epoch;
    (void)m;
    const int was_ready = st->ready;
    LT_TRY(bc_epoch_close(st));
    if (run->log) {
        LT_TRY(run->log(run->host, "bcrumb_cb_on_bank", (double)was_ready));
        if (st->cb_iters) {
            LT_TRY(run->log(run->host, "bcrumb_cb_loss", st->cb_loss_sum / (double)st->cb_iters));
            LT_TRY(run->log(run->host, "bcrumb_cb_acc", (double)st->cb_correct / (double)st->cb_rows));
        }
        LT_TRY(run->log(run->host, "bcrumb_ready", (double)st->ready));
        LT_TRY(run->log(run->host, "bcrumb_history_bytes", (double)st->peak_rows * st->D * sizeof(float)));
    }
    st->cb_loss_sum = 0;
    st->cb_iters = st->cb_correct = st->cb_rows = 0;
    return LT_OK;
}

/* The bank's sizes for result.json: values logged from post_train go into
 * its method_report (and events.jsonl); all from checkpointed state, so a
 * resumed run or a re-evaluation reports the same. */
static int bc_post_train(void *stp, lt_model *m, const lt_feature_bank *fb) {
    bc_state *st = stp;
    const lt_run_info *run = st->run;
    (void)m;
    (void)fb;
    if (!run->log) return LT_OK;
    const double fl = sizeof(float);
    LT_TRY(run->log(run->host, "bcrumb_bank_peak_bytes", (double)st->peak_rows * st->D * fl));
    LT_TRY(run->log(run->host, "bcrumb_bank_bound_bytes", (double)(st->N + (long)st->C * st->nb) * st->D * fl));
    LT_TRY(run->log(run->host, "bcrumb_bank_batches_bytes", (double)st->I * st->B * st->D * fl));
    LT_TRY(run->log(run->host, "bcrumb_nb", (double)st->nb));
    return run->log(run->host, "bcrumb_ready_epoch", (double)st->ready_epoch);
}

/* Test time: F + Cb (eval.py), in chunks of Cb's planned rows. */
static int bc_predict(void *stp, const lt_taps *t, float *scores, int *kind) {
    bc_state *st = stp;
    if (!st->cb) return lt_err(LT_ESTATE, "bcrumb: predict before the stage built Cb");
    if (t->feat_dim != st->D) return lt_err(LT_ESHAPE, "bcrumb: feat has %d values, expected %d", t->feat_dim, st->D);
    for (int r = 0; r < t->n; r += st->B) {
        const int n = t->n - r < st->B ? t->n - r : st->B;
        LT_TRY(lt_model_forward(st->cb, t->feat + (size_t)r * st->D, n, 0));
        memcpy(scores + (size_t)r * st->C, lt_model_out(st->cb, st->cb_out), (size_t)n * st->C * sizeof(float));
    }
    *kind = LT_SCORES_LOGITS;
    return LT_OK;
}

/* The classifier that scores the test set is Cb: its rows' norms. */
static int bc_class_norms(const void *stp, lt_model *m, int n_classes, double *norms) {
    const bc_state *st = stp;
    (void)m;
    lt_param_info w;
    LT_TRY(lt_model_param_find(st->cb, "cb.weight", &w));
    if (n_classes != st->C || w.count != (size_t)st->C * st->D)
        return lt_err(LT_ESHAPE, "bcrumb: Cb has %zu weights for %d classes", w.count, n_classes);
    for (int c = 0; c < st->C; c++) {
        double s = 0;
        for (int d = 0; d < st->D; d++) s += (double)w.w[(size_t)c * st->D + d] * w.w[(size_t)c * st->D + d];
        norms[c] = sqrt(s);
    }
    return LT_OK;
}

/* ---- checkpoint: the deques (Cb and its optimizer are the host's) ------------------- */

static int bc_save(const void *stp, lt_ckpt_writer *w, const char *prefix) {
    const bc_state *st = stp;
    char key[160];
    const int C = st->C;
    for (int c = 0; c < C; c++)
        if (st->fill[c]) return lt_err(LT_ESTATE, "bcrumb: a checkpoint inside an epoch (class %d has %ld rows)",
                                       c, st->fill[c]);
    const int64_t hdr[7] = {C, st->D, st->B, st->nb, st->ready, st->ready_epoch, st->peak_rows};
    snprintf(key, sizeof key, "%shdr", prefix);
    LT_TRY(lt_ckpt_put(w, key, hdr, sizeof hdr));
    int64_t *ring = malloc((size_t)2 * C * sizeof *ring);
    if (!ring) return lt_err(LT_ENOMEM, "bcrumb: out of memory");
    for (int c = 0; c < C; c++) {
        ring[2 * c] = st->start[c];
        ring[2 * c + 1] = st->len[c];
    }
    snprintf(key, sizeof key, "%sring", prefix);
    int rc = lt_ckpt_put(w, key, ring, (size_t)2 * C * sizeof *ring);
    free(ring);
    if (rc) return rc;
    size_t mm = 0;
    for (int c = 0; c < C; c++) mm += (size_t)st->q[c] * st->D;
    snprintf(key, sizeof key, "%smean", prefix);
    LT_TRY(lt_ckpt_put(w, key, st->mean, mm * sizeof(float)));
    snprintf(key, sizeof key, "%shist", prefix);
    return lt_ckpt_put(w, key, st->hist, st->hist_floats * sizeof(float));
}

static int bc_load(void *stp, const lt_ckpt *ck, const char *prefix) {
    bc_state *st = stp;
    char key[160];
    const int C = st->C;
    int64_t hdr[7];
    snprintf(key, sizeof key, "%shdr", prefix);
    LT_TRY(lt_ckpt_get_into(ck, key, hdr, sizeof hdr));
    if (hdr[0] != C || hdr[1] != st->D || hdr[2] != st->B || hdr[3] != st->nb)
        return lt_err(LT_EDATA, "bcrumb: checkpoint deques for %lld classes, D %lld, batch %lld, nb %lld; this run "
                      "has %d, %d, %d, %ld", (long long)hdr[0], (long long)hdr[1], (long long)hdr[2],
                      (long long)hdr[3], C, st->D, st->B, st->nb);
    int64_t *ring = malloc((size_t)2 * C * sizeof *ring);
    if (!ring) return lt_err(LT_ENOMEM, "bcrumb: out of memory");
    snprintf(key, sizeof key, "%sring", prefix);
    int rc = lt_ckpt_get_into(ck, key, ring, (size_t)2 * C * sizeof *ring);
    for (int c = 0; !rc && c < C; c++) {
        if (ring[2 * c] < 0 || ring[2 * c] >= st->q[c] || ring[2 * c + 1] < 0 || ring[2 * c + 1] > st->q[c])
            rc = lt_err(LT_EDATA, "bcrumb: checkpoint deque of class %d (start %lld, %lld entries) does not fit %ld "
                        "epochs", c, (long long)ring[2 * c], (long long)ring[2 * c + 1], st->q[c]);
        else {
            st->start[c] = (long)ring[2 * c];
            st->len[c] = (long)ring[2 * c + 1];
            st->fill[c] = 0;
        }
    }
    free(ring);
    if (rc) return rc;
    size_t mm = 0;
    for (int c = 0; c < C; c++) mm += (size_t)st->q[c] * st->D;
    snprintf(key, sizeof key, "%smean", prefix);
    LT_TRY(lt_ckpt_get_into(ck, key, st->mean, mm * sizeof(float)));
    snprintf(key, sizeof key, "%shist", prefix);
    LT_TRY(lt_ckpt_get_into(ck, key, st->hist, st->hist_floats * sizeof(float)));
    st->ready = (int)hdr[4];
    st->ready_epoch = (long)hdr[5];
    st->peak_rows = (long)hdr[6];
    st->bank_epoch = -1;   /* rebuilt from the deques by the next epoch's first iteration */
    return LT_OK;
}

const lt_method *lt_method_bcrumb(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "bcrumb",
        .version = "1",
        .cite = "Liu, Li, Kang, Hua, Vasconcelos, ECCV 2022, arXiv:2105.00127",
        .fidelity = "official-code",
        .defaults = BC_DEFAULTS,
        .state_size = sizeof(bc_state),
        /* its hooks read the taps' host arrays, a sub-graph's (host arrays
         * on every backend) and Cb, a module (a cpu model on a device run) */
        .flags = LT_METHOD_HOST_TAPS,
        .init = bc_init,
        .fini = bc_fini,
        .stage_begin = bc_stage_begin,
        .batch_hook = bc_batch_hook,
        .iter_end = bc_iter_end,
        .epoch_end = bc_epoch_end,
        .post_train = bc_post_train,
        .predict = bc_predict,
        .save = bc_save,
        .load = bc_load,
        .class_norms = bc_class_norms,
    };
    return &m;
}
