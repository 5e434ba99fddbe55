/* mbj — Memory-based Jitter, classification variant (Liu, Li, Sun,
 * "Memory-based Jitter: Improving Visual Recognition on Long-tailed Data
 * with Diversity In Memory", arXiv 2008.09809, AAAI 2022). No official code
 * exists; the spec (../shared/specs/methods-b.md §1) reconstructs it from
 * the abstract, so the fidelity is `reconstructed`.
 *
 * One stage, instance-balanced batches (the protocol's stage 1). A FIFO
 * memory of (detached pooled feature, label) pairs trains the classifier
 * beside the batch:
 *   loss = CE(batch) + lambda_mem * mean over the memory of CE(W m + b, y)
 * where the memory term goes through the model's current head on extra
 * rows (host sub-graph feat -> logits), so its gradient reaches only the
 * classifier's weight and bias (the stored features are constants). From
 * epoch first_epoch on, after each optimizer step, every training row's
 * feature of that iteration's forward pass (train-mode BN, augmented image,
 * the parameters before the step) is admitted with probability
 * p_c = min(1, (n_min / n_c)^gamma): about n_min features per class per
 * epoch at gamma = 1, so the memory is near class-balanced while the batch
 * stays instance-balanced. The oldest rows leave first once the memory
 * holds its capacity, capacity_epochs epochs of expected inflow
 * (round(capacity_epochs * sum_c n_c p_c): 2 C n_min at the defaults).
 * Inference is the plain model; the memory is not used.
 *
 * mix = "two_means" (default, spec §1.5.3) adds the two means;
 * mix = "concat" is one CE over the concatenation of batch and memory rows,
 * the memory rows weighted by lambda_mem: (sum_batch + lambda sum_mem) /
 * (n + count).
 *
 * Determinism: the admission draws come from stream (seed,
 * LT_STREAM_METHOD + 1) derived per (global iteration, 0), one uniform per
 * row in row order; the memory (rows, labels, ring position) is in the
 * checkpoint, so a resumed run equals an uninterrupted one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_method.h"

#define MBJ_DEFAULTS \
    "{\"gamma\": 1.0, \"lambda_mem\": 1.0, \"capacity_epochs\": 2.0, \"first_epoch\": 1, \"mix\": \"two_means\"}"

enum { S_ADMIT = 1 };
enum { MIX_TWO_MEANS = 0, MIX_CONCAT = 1 };

/* The memory: a ring of cap rows; rows [0, count) hold data, the next write
 * goes to `head` (the oldest row once the ring is full). */
typedef struct {
    long cap, count, head;
    int D;
    float *feat;       /* [cap x D] */
    int32_t *label;    /* [cap] */
} mbj_memory;

typedef struct {
    const lt_run_info *run;
    int C, D;
    /* hyper-parameters */
    double gamma, lambda, cap_epochs;
    long first_epoch;
    int mix;
    /* admission */
    long n_min;
    double *p;         /* [C] */
    double inflow;     /* expected admissions per epoch, sum_c n_c p_c */
    mbj_memory mem;
    /* the head on memory rows */
    lt_subgraph *sg;
    int feat, logits;
    /* per-epoch diagnostics */
    long admitted, mem_term_iters;
    double mem_loss_sum;
} mbj_state;

/* ---- the memory ------------------------------------------------------------------ */

static int mbj_mem_init(mbj_memory *m, long cap, int D) {
    memset(m, 0, sizeof *m);
    if (cap < 1 || D < 1) return lt_err(LT_EINVAL, "mbj: memory of %ld rows of %d features", cap, D);
    m->feat = lt_alloc((size_t)cap * D * sizeof(float));
    m->label = lt_alloc((size_t)cap * sizeof(int32_t));
    if (!m->feat || !m->label) return lt_err(LT_ENOMEM, "mbj: out of memory for %ld memory rows", cap);
    m->cap = cap;
    m->D = D;
    return LT_OK;
}

static void mbj_mem_free(mbj_memory *m) {
    lt_free(m->feat);
    lt_free(m->label);
    memset(m, 0, sizeof *m);
}

/* Appends one row, evicting the oldest when full. */
static void mbj_mem_push(mbj_memory *m, const float *f, int32_t y) {
    memcpy(m->feat + (size_t)m->head * m->D, f, (size_t)m->D * sizeof(float));
    m->label[m->head] = y;
    m->head = (m->head + 1) % m->cap;
    if (m->count < m->cap) m->count++;
}

/* Row k in age order, k = 0 the oldest (for tests and diagnostics). */
static inline long mbj_mem_row(const mbj_memory *m, long k) {
    return m->count < m->cap ? k : (m->head + k) % m->cap;
}

/* ---- admission ---------------------------------------------------------------------- */

/* p_c = min(1, (n_min / n_c)^gamma) over classes with images (0 otherwise). */
static int mbj_probs(int C, const long *counts, double gamma, double *p, long *n_min, double *inflow) {
    long lo = 0;
    for (int c = 0; c < C; c++)
        if (counts[c] > 0 && (lo == 0 || counts[c] < lo)) lo = counts[c];
    if (lo == 0) return lt_err(LT_EINVAL, "mbj: no class has training images");
    double in = 0;
    for (int c = 0; c < C; c++) {
        p[c] = counts[c] > 0 ? fmin(1.0, pow((double)lo / (double)counts[c], gamma)) : 0.0;
        in += (double)counts[c] * p[c];
    }
    *n_min = lo;
    *inflow = in;
    return LT_OK;
}

/* Admits the rows of one iteration: row i with probability p[y_i], from a
 * stream of its own per global iteration. Returns the number admitted. */
static long mbj_admit(mbj_memory *m, const double *p, int n, int D, const float *feat, const int32_t *y,
                      uint64_t seed, long git) {
    lt_rng base, r;
    lt_rng_init(&base, seed, LT_STREAM_METHOD + S_ADMIT);
    lt_rng_derive(&r, &base, (uint64_t)git, 0);
    long k = 0;
    for (int i = 0; i < n; i++) {
        const double u = lt_rng_uniform(&r);   /* one draw per row, admitted or not */
        if (u < p[y[i]]) {
            mbj_mem_push(m, feat + (size_t)i * D, y[i]);
            k++;
        }
    }
    return k;
}

/* ---- hooks ---------------------------------------------------------------------------- */

static int mbj_init(void *stp, const lt_run_info *run, const lt_hparams *hp) {
    mbj_state *st = stp;
    static const char *const mix_names[] = {"two_means", "concat", NULL};
    st->run = run;
    st->C = run->n_classes;
    st->D = run->feat_dim;
    int rc = lt_hp_num(hp, "gamma", &st->gamma);
    if (!rc) rc = lt_hp_num(hp, "lambda_mem", &st->lambda);
    if (!rc) rc = lt_hp_num(hp, "capacity_epochs", &st->cap_epochs);
    if (!rc) rc = lt_hp_int(hp, "first_epoch", &st->first_epoch);
    if (!rc) rc = lt_hp_choice(hp, "mix", mix_names, &st->mix);
    if (rc) return lt_err_wrap(rc, "mbj");
    if (!(st->gamma >= 0) || !isfinite(st->gamma)) return lt_err(LT_EINVAL, "mbj: gamma %g must be >= 0", st->gamma);
    if (!(st->lambda >= 0) || !isfinite(st->lambda))
        return lt_err(LT_EINVAL, "mbj: lambda_mem %g must be >= 0", st->lambda);
    if (!(st->cap_epochs > 0) || !isfinite(st->cap_epochs))
        return lt_err(LT_EINVAL, "mbj: capacity_epochs %g must be > 0", st->cap_epochs);
    if (st->first_epoch < 0) return lt_err(LT_EINVAL, "mbj: first_epoch %ld must be >= 0", st->first_epoch);
    if (st->C < 2 || st->D < 1) return lt_err(LT_EINVAL, "mbj: %d classes, feature size %d", st->C, st->D);
    if (!run->api || run->api->version < 1) return lt_err(LT_EABI, "mbj: needs the host services (method ABI 3)");
    st->p = calloc((size_t)st->C, sizeof *st->p);
    if (!st->p) return lt_err(LT_ENOMEM, "mbj: out of memory");
    LT_TRY(mbj_probs(st->C, run->class_counts, st->gamma, st->p, &st->n_min, &st->inflow));
    const long cap = lround(st->cap_epochs * st->inflow);
    return mbj_mem_init(&st->mem, cap > 0 ? cap : 1, st->D);
}

static void mbj_fini(void *stp) {
    mbj_state *st = stp;
    free(st->p);
    mbj_mem_free(&st->mem);   /* the sub-graph is the host's */
    memset(st, 0, sizeof *st);
}

static int mbj_stage_begin(void *stp, int stage, lt_stage *cfg, lt_model *m) {
    mbj_state *st = stp;
    (void)cfg;
    if (stage != 0) return lt_err(LT_EINVAL, "mbj: no stage %d (1 stage)", stage);
    st->feat = lt_model_find(m, "feat");
    st->logits = lt_model_find(m, "logits");
    if (st->feat < 0 || st->logits < 0) return lt_err(LT_EINVAL, "mbj: the model needs 'feat' and 'logits'");
    /* the head on up to a full memory of extra rows (created once; a resume
     * replays this hook in a new process) */
    if (!st->sg) LT_TRY(st->run->api->subgraph(st->run->host, m, "feat", "logits", (int)st->mem.cap, &st->sg));
    if (st->run->log) {
        LT_TRY(st->run->log(st->run->host, "mbj_memory_capacity", (double)st->mem.cap));
        LT_TRY(st->run->log(st->run->host, "mbj_n_min", (double)st->n_min));
        LT_TRY(st->run->log(st->run->host, "mbj_mix_concat", (double)st->mix));
    }
    return LT_OK;
}

/* CE over the memory through the current head; its gradient (scaled by
 * `scale`) accumulates into the head's parameter gradients. */
static int mbj_memory_term(mbj_state *st, double scale, double *loss) {
    const mbj_memory *m = &st->mem;
    const int n = (int)m->count;
    LT_TRY(lt_subgraph_forward(st->sg, m->feat, n, 1));
    float *dz = lt_subgraph_dout(st->sg, st->logits);
    const float *z = lt_subgraph_out(st->sg, st->logits);   /* NULL: its copy from a device failed */
    if (!z || !dz) return lt_err_wrap(LT_EDEVICE, "mbj: the memory's logits");
    LT_TRY(lt_softmax_ce(n, st->C, z, m->label, NULL, NULL, loss, dz));
    const float s = (float)scale;
    if (s != 1.0f)
        for (size_t i = 0; i < (size_t)n * st->C; i++) dz[i] *= s;
    return lt_subgraph_backward(st->sg, n, &st->logits, 1);
}

static int mbj_loss(void *stp, const lt_taps *t, double *loss, lt_grads *g) {
    mbj_state *st = stp;
    if (t->n_classes != st->C) return lt_err(LT_EINVAL, "mbj: taps have %d classes, the run %d", t->n_classes, st->C);
    double lb;
    LT_TRY(lt_softmax_ce(t->n, st->C, t->logits, t->labels, NULL, NULL, &lb, g->dlogits));
    const long M = st->mem.count;
    if (M == 0 || st->lambda == 0) {
        *loss = lb;
        return LT_OK;
    }
    double lm;
    if (st->mix == MIX_TWO_MEANS) {
        /* CE(batch) + lambda * CE(memory), each a mean over its rows */
        LT_TRY(mbj_memory_term(st, st->lambda, &lm));
        *loss = lb + st->lambda * lm;
    } else {
        /* one CE over the concatenation: (n lb + lambda M lm) / (n + M) */
        const double tot = (double)t->n + (double)M;
        LT_TRY(mbj_memory_term(st, st->lambda * (double)M / tot, &lm));
        const float sb = (float)((double)t->n / tot);
        for (size_t i = 0; i < (size_t)t->n * st->C; i++) g->dlogits[i] *= sb;
        *loss = ((double)t->n * lb + st->lambda * (double)M * lm) / tot;
    }
    st->mem_loss_sum += lm;
    st->mem_term_iters++;
    return LT_OK;
}

/* After the step: admit this iteration's features (from the forward pass
 * that computed the loss; the activations are unchanged by the step). */
static int mbj_iter_end(void *stp, const lt_taps *t) {
    mbj_state *st = stp;
    if (t->epoch < st->first_epoch) return LT_OK;
    if (t->feat_dim != st->D) return lt_err(LT_ESHAPE, "mbj: feat has %d values, expected %d", t->feat_dim, st->D);
    for (int i = 0; i < t->n; i++)
        if (t->labels[i] < 0 || t->labels[i] >= st->C)
            return lt_err(LT_EINVAL, "mbj: label %d outside [0, %d)", t->labels[i], st->C);
    st->admitted += mbj_admit(&st->mem, st->p, t->n, st->D, t->feat, t->labels, st->run->seed, t->iter);
    return LT_OK;
}

static int mbj_epoch_end(void *stp, int stage, int epoch, lt_model *m) {
    mbj_state *st = stp;
    (void)stage;
    (void)epoch;
    (void)m;
    const lt_run_info *run = st->run;
    if (run->log) {
        LT_TRY(run->log(run->host, "mbj_admitted", (double)st->admitted));
        LT_TRY(run->log(run->host, "mbj_memory_rows", (double)st->mem.count));
        if (st->mem_term_iters)
            LT_TRY(run->log(run->host, "mbj_memory_loss", st->mem_loss_sum / (double)st->mem_term_iters));
        if (st->C <= 20) {
            long per[20] = {0};
            for (long k = 0; k < st->mem.count; k++) per[st->mem.label[k]]++;
            for (int c = 0; c < st->C; c++) {
                char key[40];
                snprintf(key, sizeof key, "mbj_memory_class%d", c);
                LT_TRY(run->log(run->host, key, (double)per[c]));
            }
        }
    }
    st->admitted = 0;
    st->mem_term_iters = 0;
    st->mem_loss_sum = 0;
    return LT_OK;
}

/* ---- checkpoint: the memory and the epoch's diagnostics ---------------------------- */

static int mbj_save(const void *stp, lt_ckpt_writer *w, const char *prefix) {
    const mbj_state *st = stp;
    char key[160];
    const int64_t ring[3] = {st->mem.cap, st->mem.count, st->mem.head};
    const double diag[3] = {(double)st->admitted, (double)st->mem_term_iters, st->mem_loss_sum};
    snprintf(key, sizeof key, "%sring", prefix);
    LT_TRY(lt_ckpt_put(w, key, ring, sizeof ring));
    snprintf(key, sizeof key, "%sdiag", prefix);
    LT_TRY(lt_ckpt_put(w, key, diag, sizeof diag));
    snprintf(key, sizeof key, "%sfeat", prefix);
    LT_TRY(lt_ckpt_put(w, key, st->mem.feat, (size_t)st->mem.cap * st->D * sizeof(float)));
    snprintf(key, sizeof key, "%slabel", prefix);
    return lt_ckpt_put(w, key, st->mem.label, (size_t)st->mem.cap * sizeof(int32_t));
}

static int mbj_load(void *stp, const lt_ckpt *c, const char *prefix) {
    mbj_state *st = stp;
    char key[160];
    int64_t ring[3];
    double diag[3];
    snprintf(key, sizeof key, "%sring", prefix);
    LT_TRY(lt_ckpt_get_into(c, key, ring, sizeof ring));
    if (ring[0] != st->mem.cap || ring[1] < 0 || ring[1] > ring[0] || ring[2] < 0 || ring[2] >= ring[0])
        return lt_err(LT_EDATA, "mbj: checkpoint memory (capacity %lld, %lld rows, head %lld) does not fit a "
                      "memory of %ld rows", (long long)ring[0], (long long)ring[1], (long long)ring[2], st->mem.cap);
    snprintf(key, sizeof key, "%sdiag", prefix);
    LT_TRY(lt_ckpt_get_into(c, key, diag, sizeof diag));
    snprintf(key, sizeof key, "%sfeat", prefix);
    LT_TRY(lt_ckpt_get_into(c, key, st->mem.feat, (size_t)st->mem.cap * st->D * sizeof(float)));
    snprintf(key, sizeof key, "%slabel", prefix);
    LT_TRY(lt_ckpt_get_into(c, key, st->mem.label, (size_t)st->mem.cap * sizeof(int32_t)));
    for (long k = 0; k < ring[1]; k++)
        if (st->mem.label[k] < 0 || st->mem.label[k] >= st->C)
            return lt_err(LT_EDATA, "mbj: checkpoint memory row %ld has label %d", k, st->mem.label[k]);
    st->mem.count = (long)ring[1];
    st->mem.head = (long)ring[2];
    st->admitted = (long)diag[0];
    st->mem_term_iters = (long)diag[1];
    st->mem_loss_sum = diag[2];
    return LT_OK;
}

const lt_method *lt_method_mbj(void) {
    static const lt_method m = {
        .abi = LT_METHOD_ABI,
        .name = "mbj",
        .version = "1",
        .cite = "Liu, Li, Sun, AAAI 2022, arXiv:2008.09809",
        .fidelity = "reconstructed",
        .defaults = MBJ_DEFAULTS,
        .state_size = sizeof(mbj_state),
        /* the loss and iter_end read the taps' host arrays; the memory
         * term runs through a sub-graph, whose rows are host arrays too */
        .flags = LT_METHOD_HOST_TAPS,
        .init = mbj_init,
        .fini = mbj_fini,
        .stage_begin = mbj_stage_begin,
        .loss = mbj_loss,
        .iter_end = mbj_iter_end,
        .epoch_end = mbj_epoch_end,
        .save = mbj_save,
        .load = mbj_load,
    };
    return &m;
}
