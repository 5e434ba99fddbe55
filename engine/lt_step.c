/* lt_step.c — the training-step object (lt_step.h): the cpu sequence, and
 * the device one (through the backend's lt_dev_ops only) with its CUDA
 * graph bookkeeping. */
#include "lt_step.h"

#include "lt_backend_impl.h"
#include "lt_loss.h"
#include "lt_model_impl.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lt_step {
    lt_model *m;
    lt_optim *o;
    int logits, N, C;
    lt_step_opts opts;
    lt_ce_acc hacc;            /* cpu: the accumulators */
    lt_step_info info;
    /* a device model (dev NULL on cpu) */
    const lt_dev_ops *dev;
    lt_cuda_ctx *ctx;
    void *up;                  /* pinned staging */
    int32_t *dlabels;
    lt_step_rates *drates;
    lt_ce_acc *dacc;
    void *dscratch;
    uint64_t rates_sig;        /* what the fixed rates on the device were made from */
    /* the graph: exec replays while the state it was captured on has
     * signature sig; warm = 1 after an eager full batch on that state */
    void *exec;
    uint64_t sig;
    int warm;
    int graph_off;             /* a capture failed, or opts.graphs = 0 */
};

void lt_step_opts_default(lt_step_opts *o) {
    memset(o, 0, sizeof *o);
    o->graphs = 1;
}

void lt_step_opts_from_env(lt_step_opts *o) {
    lt_step_opts_default(o);
    const char *g = getenv("LT_CUDA_GRAPH");
    if (g && !strcmp(g, "0")) o->graphs = 0;
}

/* ---- what a graph and the fixed rates depend on ------------------------------------ */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}
#define FNV(h, v) ((h) = fnv((h), &(v), sizeof(v)))

/* The optimizer's factors: the fixed part of the device rates. */
static uint64_t rates_signature(const lt_optim *o) {
    uint64_t h = 1469598103934665603ull;
    FNV(h, o->n_groups);
    FNV(h, o->weight_decay);
    for (int k = 0; k < o->n_groups; k++) {
        FNV(h, o->lr_mult[k]);
        FNV(h, o->wd_mult[k]);
    }
    return h;
}

/* Everything a captured step has baked in: the addresses of the blocks it
 * reads and writes, the batch plan, which nodes run in which mode, which
 * parameters are frozen, the optimizer's arguments, the rates, the
 * context's workspace. The node buffers are offsets into the
 * activation block fixed by the batch, so the block's address and the
 * batch cover them. */
static uint64_t graph_signature(const lt_step *s) {
    const lt_model *m = s->m;
    const lt_optim *o = s->o;
    uint64_t h = rates_signature(o);
    const void *ptrs[] = {m->w, m->g, m->dmask, m->buf, m->acts, m->scratch, m->xin, m->xin_t, o->s1, o->s2, o->dgid};
    h = fnv(h, ptrs, sizeof ptrs);
    FNV(h, m->batch);
    FNV(h, m->acts_floats);
    /* fused pairs (lt_model_set_no_fuse) run other kernels; zero_all_dy
     * decides which backward writes set (and so which pairs fuse) */
    FNV(h, m->no_fuse);
    FNV(h, m->zero_all_dy);
    /* the layout: other kernels, and the input's conversion into xin_t */
    FNV(h, m->layout);
    /* the optimizer's kernel arguments */
    FNV(h, o->kind);
    FNV(h, o->momentum);
    FNV(h, o->nesterov);
    FNV(h, o->beta1);
    FNV(h, o->beta2);
    FNV(h, o->eps);
    /* a frozen parameter's gradient pointer is NULL in the captured layer
     * calls (lt_pg), so freezing or unfreezing one changes the graph */
    for (int k = 0; k < m->n_params; k++) {
        const unsigned char f = (unsigned char)(m->params[k].flags & LT_MASK_FROZEN);
        h = fnv(h, &f, 1);
    }
    for (int i = 1; i < m->n_nodes; i++) {
        const unsigned char f[2] = {(unsigned char)(m->nodes[i].eval_mode != 0), (unsigned char)m->nodes[i].need_dy};
        h = fnv(h, f, sizeof f);
    }
    const unsigned long ws = s->dev->ws_generation(s->ctx);
    FNV(h, ws);
    return h;
}

/* The fixed rates as lt_optim_step computes them, uploaded (waits). */
static int upload_rates(lt_step *s) {
    const lt_optim *o = s->o;
    lt_step_rates r;
    memset(&r, 0, sizeof r);
    for (int k = 0; k < o->n_groups; k++) {
        r.lr_mult[k] = k == 0 ? 1.0 : o->lr_mult[k];
        r.wd[k] = k == 0 ? o->weight_decay : (float)((double)o->weight_decay * o->wd_mult[k]);
    }
    const size_t off = offsetof(lt_step_rates, lr_mult);
    LT_TRY(s->dev->h2d(s->ctx, (char *)s->drates + off, (const char *)&r + off, sizeof r - off));
    s->rates_sig = rates_signature(o);
    return LT_OK;
}

/* ---- create / free ------------------------------------------------------------------- */
void lt_step_free(lt_step *s) {
    if (!s) return;
    if (s->dev) {
        s->dev->sync(s->ctx);
        s->dev->graph_free(s->ctx, s->exec);
        s->dev->upload_free(s->ctx, s->up);
        s->dev->free(s->ctx, s->dlabels);
        s->dev->free(s->ctx, s->drates);
        s->dev->free(s->ctx, s->dacc);
        s->dev->free(s->ctx, s->dscratch);
    }
    free(s);
}

static size_t row_floats(const lt_step *s) { return lt_shape_count(s->m->in_shape); }

static int dev_create(lt_step *s) {
    const lt_dev_ops *d = s->dev;
    const int N = s->N;
    const size_t stage = (size_t)N * row_floats(s) * sizeof(float) + (size_t)N * sizeof(int32_t) +
                         LT_STEP_RATES_STEP_BYTES;
    /* the same cuBLAS workspace for eager and captured steps, so both
     * choose the same kernels */
    LT_TRY(d->graph_prepare(s->ctx));
    LT_TRY(d->upload_new(s->ctx, stage, &s->up));
    LT_TRY(d->alloc(s->ctx, (void **)&s->dlabels, (size_t)N * sizeof(int32_t)));
    LT_TRY(d->alloc(s->ctx, (void **)&s->drates, sizeof(lt_step_rates)));
    LT_TRY(d->memset0(s->ctx, s->drates, sizeof(lt_step_rates)));
    LT_TRY(d->alloc(s->ctx, (void **)&s->dacc, sizeof(lt_ce_acc)));
    LT_TRY(d->memset0(s->ctx, s->dacc, sizeof(lt_ce_acc)));
    LT_TRY(d->alloc(s->ctx, &s->dscratch, lt_ce_acc_scratch_bytes(N)));
    return upload_rates(s);
}

int lt_step_create(lt_step **out, lt_model *m, lt_optim *o, int logits, int N, int C, const lt_step_opts *opts) {
    if (!out) return lt_err(LT_EINVAL, "step: NULL output");
    *out = NULL;
    if (!m || !o) return lt_err(LT_EINVAL, "step: NULL model or optimizer");
    if (!m->finalized) return lt_err(LT_ESTATE, "step: model not finalized");
    if (N < 1 || C < 1) return lt_err(LT_EINVAL, "step: batch %d, %d classes", N, C);
    if (logits <= 0 || logits >= m->n_nodes || lt_model_out_size(m, logits) != (size_t)C)
        return lt_err(LT_EINVAL, "step: node %d is not a logits node of %d outputs", logits, C);
    if (o->n != m->n_w || o->dev != m->dev)
        return lt_err(LT_EINVAL, "step: the optimizer was made for another model or backend");
    if (o->n_groups > LT_STEP_MAX_GROUPS)
        return lt_err(LT_EINVAL, "step: %d optimizer groups (at most %d)", o->n_groups, LT_STEP_MAX_GROUPS);
    if (m->batch != N) LT_TRY(lt_model_set_batch(m, N));
    lt_step *s = calloc(1, sizeof *s);
    if (!s) return lt_err(LT_ENOMEM, "step: out of memory");
    s->m = m;
    s->o = o;
    s->logits = logits;
    s->N = N;
    s->C = C;
    if (opts) s->opts = *opts;
    else lt_step_opts_default(&s->opts);
    s->dev = m->dev;
    s->ctx = m->dctx;
    s->graph_off = !s->dev || !s->opts.graphs;
    const lt_node *h = lt_model_first_host_node(m);
    if (!s->graph_off && h) {
        /* a host layer's copies wait for the device: nothing to capture */
        snprintf(s->info.notice, sizeof s->info.notice,
                 "note: %d layer(s) run on the host (no CUDA code: '%s', %s): every training step runs eagerly, "
                 "no CUDA graph", lt_model_n_host_nodes(m), h->name, lt_node_type(h));
        s->graph_off = 1;
    }
    if (s->dev) {
        int rc = dev_create(s);
        if (rc) {
            lt_step_free(s);
            return lt_err_wrap(rc, "step on %s", lt_backend_describe(m->backend));
        }
    }
    s->info.graphs = !s->graph_off;
    *out = s;
    return LT_OK;
}

/* ---- one step ------------------------------------------------------------------------ */
static long argmax_hits(const float *lg, const int32_t *y, int n, int C) {
    long hits = 0;
    for (int i = 0; i < n; i++) {
        const float *row = lg + (size_t)i * C;
        int best = 0;
        for (int j = 1; j < C; j++)
            if (row[j] > row[best]) best = j;
        hits += best == y[i];
    }
    return hits;
}

/* The harness's sequence (lt_run_train.c train_stage with no method hooks). */
static int cpu_step(lt_step *s, const float *x, const int32_t *y, int n, float lr) {
    lt_model *m = s->m;
    lt_model_labels_at(m, y, n);
    LT_TRY(lt_model_forward(m, x, n, 1));
    const float *lg = lt_model_out(m, s->logits);
    lt_model_zero_grad(m);
    double loss = 0;
    int rc = lt_softmax_ce(n, s->C, lg, y, NULL, NULL, &loss, lt_model_dout(m, s->logits));
    if (rc) return lt_err_wrap(rc, "step %ld: loss", (long)s->hacc.steps);
    if (!isfinite(loss))
        return lt_err(LT_ENUM, "step %ld: loss is %s", (long)s->hacc.steps, isnan(loss) ? "NaN" : "Inf");
    LT_TRY(lt_model_backward(m, n, &s->logits, 1));
    LT_TRY(lt_optim_step(s->o, m, lr));
    s->hacc.loss_sum += loss * n;
    s->hacc.last_loss = loss;
    s->hacc.seen += n;
    s->hacc.correct += argmax_hits(lg, y, n, s->C);
    s->hacc.steps++;
    return LT_OK;
}

/* The device work of one step of n rows, all on the stream, nothing
 * waiting for the host: what a graph captures. */
static int dev_body(lt_step *s, int n) {
    lt_model *m = s->m;
    const lt_optim *o = s->o;
    const lt_dev_ops *d = s->dev;
    lt_model_labels_at(m, s->dlabels, n);   /* a graph keeps the pointer: each replay's staged labels */
    LT_TRY(lt_model_forward_staged(m, n, 1));
    lt_model_zero_grad(m);
    LT_TRY(d->ce_acc(s->ctx, n, s->C, lt_model_out(m, s->logits), s->dlabels, lt_model_dout(m, s->logits),
                     s->dscratch, s->dacc));
    LT_TRY(lt_model_backward(m, n, &s->logits, 1));
    if (o->kind == LT_OPT_SGD)
        return d->sgd_dev_rates(s->ctx, o->n, m->w, m->g, o->s1, m->dmask, o->dgid, o->n_groups, s->drates,
                                o->momentum, o->nesterov);
    return d->adam_dev_rates(s->ctx, o->n, m->w, m->g, o->s1, o->s2, m->dmask, o->dgid, o->n_groups, s->drates,
                             o->beta1, o->beta2, o->eps);
}

/* Capture the full-batch step and launch it; on any failure the stream is
 * out of capture mode, graphs are off for this step object (notice +
 * counter) and the step runs eagerly. */
static int dev_capture(lt_step *s) {
    const lt_dev_ops *d = s->dev;
    int rc = d->graph_begin(s->ctx);
    if (!rc) {
        const int body = dev_body(s, s->N);
        char why[300];
        snprintf(why, sizeof why, "%s", body ? lt_errmsg() : "");
        void *exec = NULL;
        const int end = d->graph_end(s->ctx, &exec);   /* always: leaves capture mode */
        if (!body && !end) {
            s->exec = exec;
            s->info.captures++;
            rc = d->graph_launch(s->ctx, s->exec);
            if (!rc) s->info.graph_steps++;
            return rc;
        }
        d->graph_free(s->ctx, exec);   /* a graph of a body that failed */
        rc = body ? body : end;
        if (body) lt_err(rc, "%s", why);
    }
    s->info.capture_failures++;
    snprintf(s->info.notice, sizeof s->info.notice,
             "note: CUDA graph capture of the training step failed (%s); the step runs eagerly from now on",
             lt_errmsg());
    lt_err_clear();
    s->graph_off = 1;
    s->info.graphs = 0;
    s->info.eager_steps++;
    return dev_body(s, s->N);
}

static int dev_step(lt_step *s, const float *x, const int32_t *y, int n, float lr) {
    lt_model *m = s->m;
    lt_optim *o = s->o;
    const lt_dev_ops *d = s->dev;
    if (m->batch != s->N) LT_TRY(lt_model_set_batch(m, s->N));
    if (rates_signature(o) != s->rates_sig) LT_TRY(upload_rates(s));
    /* the per-step rates, as lt_optim_step computes them */
    o->step++;
    lt_step_rates r;
    r.lr = lr;
    r.bc1 = 1.0;
    r.bc2_sqrt = 1.0f;
    if (o->kind == LT_OPT_ADAM) {
        r.bc1 = 1.0 - pow((double)o->beta1, (double)o->step);
        r.bc2_sqrt = (float)sqrt(1.0 - pow((double)o->beta2, (double)o->step));
    }
    void *dst[3] = {m->xin, s->dlabels, s->drates};
    const void *src[3] = {x, y, &r};
    const size_t bytes[3] = {(size_t)n * row_floats(s) * sizeof(float), (size_t)n * sizeof(int32_t),
                             LT_STEP_RATES_STEP_BYTES};
    LT_TRY(d->upload(s->ctx, s->up, 3, dst, src, bytes));
    if (s->graph_off || n != s->N) {
        s->info.eager_steps++;
        LT_TRY(dev_body(s, n));
        return LT_OK;
    }
    const uint64_t sig = graph_signature(s);
    if (s->exec && sig != s->sig) {
        /* something the graph baked in moved: warm up and capture again */
        d->graph_free(s->ctx, s->exec);
        s->exec = NULL;
        s->warm = 0;
    }
    if (s->exec) {
        LT_TRY(d->graph_launch(s->ctx, s->exec));
        s->info.graph_steps++;
        return LT_OK;
    }
    if (!s->warm || sig != s->sig) {
        /* eager: cuDNN picks its algorithms, the workspaces grow; the state
         * after it is what the capture will bake in */
        s->info.eager_steps++;
        LT_TRY(dev_body(s, n));
        s->sig = graph_signature(s);
        s->warm = 1;
        return LT_OK;
    }
    return dev_capture(s);
}

int lt_step_run(lt_step *s, const float *x, const int32_t *y, int n, float lr) {
    if (!s || !x || !y) return lt_err(LT_EINVAL, "step: NULL step, rows or labels");
    if (n < 1 || n > s->N) return lt_err(LT_EINVAL, "step: %d rows, the step holds 1..%d", n, s->N);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= s->C)
            return lt_err(LT_EINVAL, "step: label[%d] = %d outside [0, %d)", i, (int)y[i], s->C);
    if (!isfinite(lr)) return lt_err(LT_EINVAL, "step: learning rate %g", (double)lr);
    if (lt_model_layout(s->m) == LT_LAYOUT_NHWC) {
        /* the loss reads the logits rows as C classes in order: NHWC
         * would permute a logits node of more than one pixel */
        const lt_shape ls = lt_node_shape(lt_model_node_const(s->m, s->logits));
        if (ls.h * ls.w > 1)
            return lt_err(LT_EINVAL, "step: the logits node has %dx%d pixels, which NHWC stores channel-last: "
                          "use NCHW for this model", ls.h, ls.w);
    }
    int rc = s->dev ? dev_step(s, x, y, n, lr) : cpu_step(s, x, y, n, lr);
    if (!rc) s->info.steps++;
    return rc;
}

/* ---- bookkeeping ---------------------------------------------------------------------- */
int lt_step_epoch_stats(lt_step *s, double *loss_sum, long *correct, long *seen) {
    if (!s) return lt_err(LT_EINVAL, "step: NULL step");
    lt_ce_acc a = s->hacc;
    if (s->dev) LT_TRY(s->dev->d2h(s->ctx, &a, s->dacc, sizeof a));   /* waits for the stream */
    if (loss_sum) *loss_sum = a.loss_sum;
    if (correct) *correct = (long)a.correct;
    if (seen) *seen = (long)a.seen;
    switch (a.status) {
    case LT_CE_ACC_OK: return LT_OK;
    case LT_CE_ACC_LOGIT:
        return lt_err(LT_ENUM, "step %ld since the last reset: logit[%d,%d] = %g is not finite", (long)a.fail_step,
                      a.i, a.j, a.val);
    default:
        return lt_err(LT_ENUM, "step %ld since the last reset: loss is %s", (long)a.fail_step,
                      isnan(a.val) ? "NaN" : "Inf");
    }
}

int lt_step_reset_stats(lt_step *s) {
    if (!s) return lt_err(LT_EINVAL, "step: NULL step");
    memset(&s->hacc, 0, sizeof s->hacc);
    return s->dev ? s->dev->memset0(s->ctx, s->dacc, sizeof(lt_ce_acc)) : LT_OK;
}

void lt_step_get_info(const lt_step *s, lt_step_info *out) {
    if (s) *out = s->info;
    else memset(out, 0, sizeof *out);
}
