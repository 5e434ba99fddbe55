/* lt_model_io.c — model and optimizer state in checkpoint records.
 * One record per named tensor (not one blob) so a checkpoint from a model
 * with an extra head still loads its backbone, and a missing or resized
 * tensor is reported by name.
 *
 * A model or optimizer on a device goes through host copies of its blocks
 * (one copy of each flat block, then the same records), so a checkpoint
 * does not say where it was written: a cuda run's file is the cpu format. */
#include "lt_backend_impl.h"
#include "lt_model_impl.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static int put_tensors(const lt_model *m, lt_ckpt_writer *w, const char *prefix, const char *kind,
                       const float *block) {
    char key[160];
    for (int i = 0; i < m->n_params; i++) {
        snprintf(key, sizeof key, "%s%s/%s", prefix, kind, m->params[i].name);
        LT_TRY(lt_ckpt_put(w, key, block + m->params[i].off, m->params[i].count * sizeof(float)));
    }
    return LT_OK;
}

static int get_tensors(const lt_model *m, const lt_ckpt *c, const char *prefix, const char *kind,
                       float *block) {
    char key[160];
    for (int i = 0; i < m->n_params; i++) {
        snprintf(key, sizeof key, "%s%s/%s", prefix, kind, m->params[i].name);
        int rc = lt_ckpt_get_into(c, key, block + m->params[i].off, m->params[i].count * sizeof(float));
        if (rc) return lt_err_wrap(rc, "loading tensor '%s'", m->params[i].name);
    }
    return LT_OK;
}

/* Host copies of device blocks: *host = a block of n floats (copied from
 * dev when `fill`), freed with lt_free. */
static int host_block(const lt_dev_ops *d, lt_cuda_ctx *ctx, const float *dev, size_t n, int fill, float **host) {
    *host = lt_alloc(n * sizeof(float) + 4);
    if (!*host) return lt_err(LT_ENOMEM, "checkpoint: out of memory for a host copy of %zu floats", n);
    int rc = fill ? d->d2h(ctx, *host, dev, n * sizeof(float)) : LT_OK;
    if (rc) {
        lt_free(*host);
        *host = NULL;
    }
    return rc;
}

static int put_buffers(const lt_model *m, lt_ckpt_writer *w, const char *prefix, const float *bb) {
    char key[160];
    for (int i = 0; i < m->n_bufs; i++) {
        snprintf(key, sizeof key, "%sb/%s", prefix, m->bufs[i].name);
        LT_TRY(lt_ckpt_put(w, key, bb + m->bufs[i].off, m->bufs[i].count * sizeof(float)));
    }
    return LT_OK;
}

static int get_buffers(const lt_model *m, const lt_ckpt *c, const char *prefix, float *bb) {
    char key[160];
    for (int i = 0; i < m->n_bufs; i++) {
        snprintf(key, sizeof key, "%sb/%s", prefix, m->bufs[i].name);
        int rc = lt_ckpt_get_into(c, key, bb + m->bufs[i].off, m->bufs[i].count * sizeof(float));
        if (rc) return lt_err_wrap(rc, "loading buffer '%s'", m->bufs[i].name);
    }
    return LT_OK;
}

static int save_blocks(const lt_model *m, lt_ckpt_writer *w, const char *prefix, const float *wb, const float *bb) {
    LT_TRY(put_tensors(m, w, prefix, "w", wb));
    return put_buffers(m, w, prefix, bb);
}

static int load_blocks(const lt_model *m, const lt_ckpt *c, const char *prefix, float *wb, float *bb) {
    LT_TRY(get_tensors(m, c, prefix, "w", wb));
    return get_buffers(m, c, prefix, bb);
}

int lt_model_save(const lt_model *m, lt_ckpt_writer *w, const char *prefix) {
    if (!m->finalized) return lt_err(LT_ESTATE, "model: save before finalize");
    if (!m->dev) return save_blocks(m, w, prefix, m->w, m->buf);
    float *hw = NULL, *hb = NULL;
    int rc = host_block(m->dev, m->dctx, m->w, m->n_w, 1, &hw);
    if (!rc) rc = host_block(m->dev, m->dctx, m->buf, m->n_b, 1, &hb);
    if (!rc) rc = save_blocks(m, w, prefix, hw, hb);
    lt_free(hw);
    lt_free(hb);
    return rc ? lt_err_wrap(rc, "model on %s: save", lt_backend_describe(m->backend)) : LT_OK;
}

int lt_model_load(lt_model *m, const lt_ckpt *c, const char *prefix) {
    if (!m->finalized) return lt_err(LT_ESTATE, "model: load before finalize");
    if (!m->dev) return load_blocks(m, c, prefix, m->w, m->buf);
    /* the blocks as they are first (padding between tensors stays), every
     * record over them, then back in one copy each */
    float *hw = NULL, *hb = NULL;
    int rc = host_block(m->dev, m->dctx, m->w, m->n_w, 1, &hw);
    if (!rc) rc = host_block(m->dev, m->dctx, m->buf, m->n_b, 1, &hb);
    if (!rc) rc = load_blocks(m, c, prefix, hw, hb);
    if (!rc) rc = m->dev->h2d(m->dctx, m->w, hw, m->n_w * sizeof(float));
    if (!rc) rc = m->dev->h2d(m->dctx, m->buf, hb, m->n_b * sizeof(float));
    lt_free(hw);
    lt_free(hb);
    return rc;
}

int lt_model_save_buffers(const lt_model *m, lt_ckpt_writer *w, const char *prefix) {
    if (!m->finalized) return lt_err(LT_ESTATE, "model: save before finalize");
    if (!m->dev) return put_buffers(m, w, prefix, m->buf);
    float *hb = NULL;
    int rc = host_block(m->dev, m->dctx, m->buf, m->n_b, 1, &hb);
    if (!rc) rc = put_buffers(m, w, prefix, hb);
    lt_free(hb);
    return rc ? lt_err_wrap(rc, "model on %s: save buffers", lt_backend_describe(m->backend)) : LT_OK;
}

int lt_model_load_buffers(lt_model *m, const lt_ckpt *c, const char *prefix) {
    if (!m->finalized) return lt_err(LT_ESTATE, "model: load before finalize");
    if (!m->dev) return get_buffers(m, c, prefix, m->buf);
    float *hb = NULL;
    int rc = host_block(m->dev, m->dctx, m->buf, m->n_b, 1, &hb);
    if (!rc) rc = get_buffers(m, c, prefix, hb);
    if (!rc) rc = m->dev->h2d(m->dctx, m->buf, hb, m->n_b * sizeof(float));
    lt_free(hb);
    return rc;
}

/* The optimizer's slots are in the model's parameter order, so they are
 * stored per tensor too (a model with a different layout is refused by name). */
typedef struct { int32_t kind, nesterov; int64_t step; float momentum, weight_decay, beta1, beta2, eps; } optim_hdr;

static int optim_put(const lt_optim *o, lt_ckpt_writer *w, const char *prefix, const float *s1, const float *s2) {
    char key[160];
    optim_hdr h = {(int32_t)o->kind, o->nesterov, o->step, o->momentum, o->weight_decay, o->beta1, o->beta2, o->eps};
    snprintf(key, sizeof key, "%soptim/header", prefix);
    LT_TRY(lt_ckpt_put(w, key, &h, sizeof h));
    snprintf(key, sizeof key, "%soptim/s1", prefix);
    LT_TRY(lt_ckpt_put(w, key, s1, o->n * sizeof(float)));
    if (s2) {
        snprintf(key, sizeof key, "%soptim/s2", prefix);
        LT_TRY(lt_ckpt_put(w, key, s2, o->n * sizeof(float)));
    }
    return LT_OK;
}

int lt_optim_save(const lt_optim *o, lt_ckpt_writer *w, const char *prefix) {
    if (!o->dev) return optim_put(o, w, prefix, o->s1, o->s2);
    float *h1 = NULL, *h2 = NULL;
    int rc = host_block(o->dev, o->dctx, o->s1, o->n, 1, &h1);
    if (!rc && o->s2) rc = host_block(o->dev, o->dctx, o->s2, o->n, 1, &h2);
    if (!rc) rc = optim_put(o, w, prefix, h1, h2);
    lt_free(h1);
    lt_free(h2);
    return rc ? lt_err_wrap(rc, "optimizer on a device: save") : LT_OK;
}

/* The header checked first, then the state (into s1 / s2, host memory). */
static int optim_get(lt_optim *o, const lt_ckpt *c, const char *prefix, float *s1, float *s2, long *step) {
    char key[160];
    optim_hdr h;
    snprintf(key, sizeof key, "%soptim/header", prefix);
    LT_TRY(lt_ckpt_get_into(c, key, &h, sizeof h));
    if (h.kind != (int32_t)o->kind) return lt_err(LT_EDATA, "optimizer state is for another optimizer kind");
    /* the step comes from a file: Adam's bias correction needs step + 1 >= 1,
     * and lt_adam_step asserts it, so a corrupt count is refused here */
    if (h.step < 0 || h.step >= LONG_MAX)
        return lt_err(LT_EDATA, "%s: step %lld out of range", key, (long long)h.step);
    *step = (long)h.step;
    snprintf(key, sizeof key, "%soptim/s1", prefix);
    LT_TRY(lt_ckpt_get_into(c, key, s1, o->n * sizeof(float)));
    if (s2) {
        snprintf(key, sizeof key, "%soptim/s2", prefix);
        LT_TRY(lt_ckpt_get_into(c, key, s2, o->n * sizeof(float)));
    }
    return LT_OK;
}

int lt_optim_load(lt_optim *o, const lt_ckpt *c, const char *prefix) {
    long step = 0;
    if (!o->dev) {
        LT_TRY(optim_get(o, c, prefix, o->s1, o->s2, &step));
        o->step = step;
        return LT_OK;
    }
    float *h1 = NULL, *h2 = NULL;
    int rc = host_block(o->dev, o->dctx, o->s1, o->n, 0, &h1);
    if (!rc && o->s2) rc = host_block(o->dev, o->dctx, o->s2, o->n, 0, &h2);
    if (!rc) rc = optim_get(o, c, prefix, h1, h2, &step);
    if (!rc) rc = o->dev->h2d(o->dctx, o->s1, h1, o->n * sizeof(float));
    if (!rc && o->s2) rc = o->dev->h2d(o->dctx, o->s2, h2, o->n * sizeof(float));
    if (!rc) o->step = step;
    lt_free(h1);
    lt_free(h2);
    return rc;
}
