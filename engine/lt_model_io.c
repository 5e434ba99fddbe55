/* lt_model_io.c — model and optimizer state in checkpoint records.
 * One record per named tensor (not one blob) so a checkpoint from a model
 * with an extra head still loads its backbone, and a missing or resized
 * tensor is reported by name. */
#include "lt_model_impl.h"

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

int lt_model_save(const lt_model *m, lt_ckpt_writer *w, const char *prefix) {
    if (!m->finalized) return lt_err(LT_ESTATE, "model: save before finalize");
    if (m->dev) return lt_err(LT_EINVAL, "model: save of a model on a device is not supported yet");
    LT_TRY(put_tensors(m, w, prefix, "w", m->w));
    char key[160];
    for (int i = 0; i < m->n_bufs; i++) {
        snprintf(key, sizeof key, "%sb/%s", prefix, m->bufs[i].name);
        LT_TRY(lt_ckpt_put(w, key, m->buf + m->bufs[i].off, m->bufs[i].count * sizeof(float)));
    }
    return LT_OK;
}

int lt_model_load(lt_model *m, const lt_ckpt *c, const char *prefix) {
    if (!m->finalized) return lt_err(LT_ESTATE, "model: load before finalize");
    if (m->dev) return lt_err(LT_EINVAL, "model: load into a model on a device is not supported yet");
    LT_TRY(get_tensors(m, c, prefix, "w", m->w));
    char key[160];
    for (int i = 0; i < m->n_bufs; i++) {
        snprintf(key, sizeof key, "%sb/%s", prefix, m->bufs[i].name);
        int rc = lt_ckpt_get_into(c, key, m->buf + m->bufs[i].off, m->bufs[i].count * sizeof(float));
        if (rc) return lt_err_wrap(rc, "loading buffer '%s'", m->bufs[i].name);
    }
    return LT_OK;
}

/* The optimizer's slots are in the model's parameter order, so they are
 * stored per tensor too (a model with a different layout is refused by name). */
typedef struct { int32_t kind, nesterov; int64_t step; float momentum, weight_decay, beta1, beta2, eps; } optim_hdr;

int lt_optim_save(const lt_optim *o, lt_ckpt_writer *w, const char *prefix) {
    if (o->dev) return lt_err(LT_EINVAL, "optimizer: save of a device optimizer is not supported yet");
    char key[160];
    optim_hdr h = {(int32_t)o->kind, o->nesterov, o->step, o->momentum, o->weight_decay, o->beta1, o->beta2, o->eps};
    snprintf(key, sizeof key, "%soptim/header", prefix);
    LT_TRY(lt_ckpt_put(w, key, &h, sizeof h));
    snprintf(key, sizeof key, "%soptim/s1", prefix);
    LT_TRY(lt_ckpt_put(w, key, o->s1, o->n * sizeof(float)));
    if (o->s2) {
        snprintf(key, sizeof key, "%soptim/s2", prefix);
        LT_TRY(lt_ckpt_put(w, key, o->s2, o->n * sizeof(float)));
    }
    return LT_OK;
}

int lt_optim_load(lt_optim *o, const lt_ckpt *c, const char *prefix) {
    if (o->dev) return lt_err(LT_EINVAL, "optimizer: load into a device optimizer is not supported yet");
    char key[160];
    optim_hdr h;
    snprintf(key, sizeof key, "%soptim/header", prefix);
    LT_TRY(lt_ckpt_get_into(c, key, &h, sizeof h));
    if (h.kind != (int32_t)o->kind) return lt_err(LT_EDATA, "optimizer state is for another optimizer kind");
    o->step = h.step;
    snprintf(key, sizeof key, "%soptim/s1", prefix);
    LT_TRY(lt_ckpt_get_into(c, key, o->s1, o->n * sizeof(float)));
    if (o->s2) {
        snprintf(key, sizeof key, "%soptim/s2", prefix);
        LT_TRY(lt_ckpt_get_into(c, key, o->s2, o->n * sizeof(float)));
    }
    return LT_OK;
}
