/* lt_optim.c — SGD and Adam over flat parameter buffers, and the model's
 * optimizer (lt_optim) with per-group learning-rate and weight-decay
 * factors.
 *
 * Both follow PyTorch's update formulas element by element in float32, the
 * precision PyTorch uses for float32 parameters, so a run can be compared
 * with a reference implementation step by step. The per-element mask lets a
 * model keep all its parameters in one buffer while freezing some (stage 2
 * of decoupled training) and exempting others from weight decay (LWS scales).
 *
 * The calls cannot fail: sizes and buffers come from the model, never from
 * user input, so a broken contract (NULL state with momentum, step < 1) is
 * an internal invariant checked with LT_ASSERT.
 *
 * Updates are element-wise, so splitting the loop over threads changes no
 * result; small buffers stay serial because the fork costs more than it saves. */
#include "lt_backend_impl.h"
#include "lt_loss.h"
#include "lt_model_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LT_OPTIM_PAR_MIN 65536

/* One element of an SGD update (lt_sgd_step, sgd_grouped): written once
 * so that the parallel and the plain loop (lt_par) run the same arithmetic. */
static inline __attribute__((always_inline)) void sgd_elem(size_t i, float *w, const float *grads, float *mom,
                                                           uint8_t mk, float lr, float wd, float mu, int use_mom,
                                                           int nesterov) {
    if (mk & LT_MASK_FROZEN) return;   /* weight and momentum both untouched */
    float g = grads[i];
    if (!(mk & LT_MASK_NO_DECAY)) g = g + wd * w[i];
    float d = g;
    if (use_mom) {
        float v = mu * mom[i] + g;
        mom[i] = v;
        d = nesterov ? g + mu * v : v;
    }
    w[i] = w[i] - lr * d;
}

/* One element of an Adam update (lt_adam_step, adam_grouped). */
static inline __attribute__((always_inline)) void adam_elem(size_t i, float *w, const float *grads, float *m,
                                                            float *v, uint8_t mk, float step_size, float wd,
                                                            float b1, float b2, float c1, float c2, float eps,
                                                            float bc2_sqrt) {
    if (mk & LT_MASK_FROZEN) return;
    float g = grads[i];
    if (!(mk & LT_MASK_NO_DECAY)) g = g + wd * w[i];
    float mi = b1 * m[i] + c1 * g;
    float vi = b2 * v[i] + c2 * g * g;
    m[i] = mi;
    v[i] = vi;
    float denom = sqrtf(vi) / bc2_sqrt + eps;
    w[i] = w[i] - step_size * (mi / denom);
}

void lt_sgd_step(size_t n, float *params, const float *grads, float *mom,
                 const uint8_t *mask, const lt_sgd_cfg *cfg) {
    LT_ASSERT(cfg != NULL);
    if (n == 0) return;
    LT_ASSERT(params != NULL && grads != NULL);
    const float lr = cfg->lr, mu = cfg->momentum, wd = cfg->weight_decay;
    const int use_mom = mu != 0.0f, nesterov = cfg->nesterov != 0;
    LT_ASSERT(!use_mom || mom != NULL);

    if (lt_par(n, LT_OPTIM_PAR_MIN)) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            sgd_elem(i, params, grads, mom, mask ? mask[i] : 0, lr, wd, mu, use_mom, nesterov);
    } else {
        for (size_t i = 0; i < n; i++)
            sgd_elem(i, params, grads, mom, mask ? mask[i] : 0, lr, wd, mu, use_mom, nesterov);
    }
}

void lt_adam_step(size_t n, float *params, const float *grads, float *m, float *v,
                  const uint8_t *mask, const lt_adam_cfg *cfg, long step) {
    LT_ASSERT(cfg != NULL);
    LT_ASSERT(step >= 1);   /* 1-based: step 0 would divide by a zero bias correction */
    if (n == 0) return;
    LT_ASSERT(params != NULL && grads != NULL && m != NULL && v != NULL);
    const float b1 = cfg->beta1, b2 = cfg->beta2, eps = cfg->eps, wd = cfg->weight_decay;
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    /* Bias corrections are scalars, computed once in double as PyTorch does
     * in Python: step_size = lr / (1 - b1^t), denom = sqrt(v)/sqrt(1 - b2^t) + eps. */
    const double bc1 = 1.0 - pow((double)b1, (double)step);
    const double bc2 = 1.0 - pow((double)b2, (double)step);
    const float step_size = (float)(cfg->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);

    if (lt_par(n, LT_OPTIM_PAR_MIN)) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            adam_elem(i, params, grads, m, v, mask ? mask[i] : 0, step_size, wd, b1, b2, c1, c2, eps, bc2_sqrt);
    } else {
        for (size_t i = 0; i < n; i++)
            adam_elem(i, params, grads, m, v, mask ? mask[i] : 0, step_size, wd, b1, b2, c1, c2, eps, bc2_sqrt);
    }
}

/* ---- the model's optimizer ---------------------------------------------------- */

int lt_optim_init(lt_optim *o, const lt_model *m, lt_opt_kind kind, float momentum, float weight_decay,
                  int nesterov) {
    memset(o, 0, sizeof *o);
    if (!m->finalized) return lt_err(LT_ESTATE, "optimizer: model not finalized");
    o->kind = kind;
    o->momentum = momentum;
    o->weight_decay = weight_decay;
    o->nesterov = nesterov;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->n = m->n_w;
    o->n_groups = 1;   /* group 0: every parameter no group was set for */
    o->lr_mult[0] = o->wd_mult[0] = 1.0;
    if (m->dev) {
        /* a device model: the state lives next to the parameters */
        o->dev = m->dev;
        o->dctx = m->dctx;
        const size_t bytes = o->n * sizeof(float);
        int rc = o->dev->alloc(o->dctx, (void **)&o->s1, bytes);
        if (!rc) rc = o->dev->memset0(o->dctx, o->s1, bytes);
        if (!rc && kind == LT_OPT_ADAM) rc = o->dev->alloc(o->dctx, (void **)&o->s2, bytes);
        if (!rc && kind == LT_OPT_ADAM) rc = o->dev->memset0(o->dctx, o->s2, bytes);
        if (rc) {
            lt_optim_free(o);
            return lt_err_wrap(rc, "optimizer on %s", lt_backend_describe(m->backend));
        }
        return LT_OK;
    }
    o->s1 = lt_alloc(o->n * sizeof(float));
    if (kind == LT_OPT_ADAM) o->s2 = lt_alloc(o->n * sizeof(float));
    if (!o->s1 || (kind == LT_OPT_ADAM && !o->s2)) {
        lt_optim_free(o);
        return lt_err(LT_ENOMEM, "optimizer: out of memory");
    }
    return LT_OK;
}

int lt_optim_set_group(lt_optim *o, const lt_model *m, const char *group, double lr_mult, double wd_mult) {
    if (o->n != m->n_w) return lt_err(LT_ESHAPE, "optimizer: built for %zu parameters, model has %zu", o->n, m->n_w);
    if (!group || !group[0] || strlen(group) >= sizeof o->group_name[0])
        return lt_err(LT_EINVAL, "optimizer: bad group name '%s'", group ? group : "(null)");
    if (!isfinite(lr_mult) || !isfinite(wd_mult) || lr_mult < 0 || wd_mult < 0)
        return lt_err(LT_EINVAL, "optimizer: group '%s' factors lr x%g, wd x%g must be finite and >= 0", group,
                      lr_mult, wd_mult);
    int k = 1;
    while (k < o->n_groups && strcmp(o->group_name[k], group)) k++;
    if (k == o->n_groups) {
        int hit = 0;
        for (int i = 0; i < m->n_params; i++) hit |= !strcmp(m->nodes[m->params[i].node].group, group);
        if (!hit) return lt_err(LT_EINVAL, "optimizer: no parameters in group '%s'", group);
        if (k == LT_OPTIM_MAX_GROUPS)
            return lt_err(LT_EINVAL, "optimizer: more than %d parameter groups", LT_OPTIM_MAX_GROUPS - 1);
        if (!o->gid && !(o->gid = lt_alloc(o->n))) return lt_err(LT_ENOMEM, "optimizer: out of memory");
        snprintf(o->group_name[k], sizeof o->group_name[k], "%s", group);
        o->n_groups++;
        for (int i = 0; i < m->n_params; i++) {
            const lt_param *p = &m->params[i];
            if (!strcmp(m->nodes[p->node].group, group)) memset(o->gid + p->off, k, p->count);
        }
        if (o->dev) {
            if (!o->dgid) LT_TRY(o->dev->alloc(o->dctx, (void **)&o->dgid, o->n));
            LT_TRY(o->dev->h2d(o->dctx, o->dgid, o->gid, o->n));
        }
    }
    o->lr_mult[k] = lr_mult;
    o->wd_mult[k] = wd_mult;
    return LT_OK;
}

/* One loop over the flat block; element i takes its group's rates. The
 * arithmetic per element is lt_sgd_step's / lt_adam_step's, so a group
 * whose factors are 1 updates exactly as the plain step does. */
static void sgd_grouped(size_t n, float *w, const float *g, float *mom, const uint8_t *mask, const uint8_t *gid,
                        const float *glr, const float *gwd, float mu, int nesterov) {
    const int use_mom = mu != 0.0f;
    if (lt_par(n, LT_OPTIM_PAR_MIN)) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            sgd_elem(i, w, g, mom, mask[i], glr[gid[i]], gwd[gid[i]], mu, use_mom, nesterov);
    } else {
        for (size_t i = 0; i < n; i++)
            sgd_elem(i, w, g, mom, mask[i], glr[gid[i]], gwd[gid[i]], mu, use_mom, nesterov);
    }
}

static void adam_grouped(size_t n, float *w, const float *g, float *m1, float *m2, const uint8_t *mask,
                         const uint8_t *gid, const float *gstep, const float *gwd, float b1, float b2, float eps,
                         float bc2_sqrt) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    if (lt_par(n, LT_OPTIM_PAR_MIN)) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            adam_elem(i, w, g, m1, m2, mask[i], gstep[gid[i]], gwd[gid[i]], b1, b2, c1, c2, eps, bc2_sqrt);
    } else {
        for (size_t i = 0; i < n; i++)
            adam_elem(i, w, g, m1, m2, mask[i], gstep[gid[i]], gwd[gid[i]], b1, b2, c1, c2, eps, bc2_sqrt);
    }
}

/* lt_optim_step on a device model: the same rates, the CUDA updates
 * (lt_cuda.h: lt_optim.c's arithmetic element by element). */
static int dev_step(lt_optim *o, lt_model *m, float lr) {
    const lt_dev_ops *d = o->dev;
    if (!o->gid) {
        if (o->kind == LT_OPT_SGD) {
            lt_sgd_cfg c = {lr, o->momentum, o->weight_decay, o->nesterov};
            return d->sgd_step(o->dctx, o->n, m->w, m->g, o->s1, m->dmask, &c);
        }
        lt_adam_cfg c = {lr, o->beta1, o->beta2, o->eps, o->weight_decay};
        return d->adam_step(o->dctx, o->n, m->w, m->g, o->s1, o->s2, m->dmask, &c, o->step);
    }
    float glr[LT_OPTIM_MAX_GROUPS], gwd[LT_OPTIM_MAX_GROUPS];
    for (int k = 0; k < o->n_groups; k++) {
        glr[k] = k == 0 ? lr : (float)((double)lr * o->lr_mult[k]);
        gwd[k] = k == 0 ? o->weight_decay : (float)((double)o->weight_decay * o->wd_mult[k]);
    }
    if (o->kind == LT_OPT_SGD)
        return d->sgd_grouped(o->dctx, o->n, m->w, m->g, o->s1, m->dmask, o->dgid, o->n_groups, glr, gwd, o->momentum,
                              o->nesterov);
    const double bc1 = 1.0 - pow((double)o->beta1, (double)o->step);
    const double bc2 = 1.0 - pow((double)o->beta2, (double)o->step);
    float gstep[LT_OPTIM_MAX_GROUPS];
    for (int k = 0; k < o->n_groups; k++) gstep[k] = (float)(glr[k] / bc1);
    return d->adam_grouped(o->dctx, o->n, m->w, m->g, o->s1, o->s2, m->dmask, o->dgid, o->n_groups, gstep, gwd,
                           o->beta1, o->beta2, o->eps, (float)sqrt(bc2));
}

int lt_optim_step(lt_optim *o, lt_model *m, float lr) {
    if (o->n != m->n_w) return lt_err(LT_ESHAPE, "optimizer: built for %zu parameters, model has %zu", o->n, m->n_w);
    if (o->dev != m->dev) return lt_err(LT_EINVAL, "optimizer: made for a model on another backend");
    o->step++;
    if (o->dev) return dev_step(o, m, lr);
    if (!o->gid) {
        if (o->kind == LT_OPT_SGD) {
            lt_sgd_cfg c = {lr, o->momentum, o->weight_decay, o->nesterov};
            lt_sgd_step(o->n, m->w, m->g, o->s1, m->mask, &c);
        } else {
            lt_adam_cfg c = {lr, o->beta1, o->beta2, o->eps, o->weight_decay};
            lt_adam_step(o->n, m->w, m->g, o->s1, o->s2, m->mask, &c, o->step);
        }
        return LT_OK;
    }
    /* per-group rates, once per step (in double, rounded once, as the
     * runner's head_lr_mult always was) */
    float glr[LT_OPTIM_MAX_GROUPS], gwd[LT_OPTIM_MAX_GROUPS];
    for (int k = 0; k < o->n_groups; k++) {
        glr[k] = k == 0 ? lr : (float)((double)lr * o->lr_mult[k]);
        gwd[k] = k == 0 ? o->weight_decay : (float)((double)o->weight_decay * o->wd_mult[k]);
    }
    if (o->kind == LT_OPT_SGD) {
        sgd_grouped(o->n, m->w, m->g, o->s1, m->mask, o->gid, glr, gwd, o->momentum, o->nesterov);
    } else {
        const double bc1 = 1.0 - pow((double)o->beta1, (double)o->step);
        const double bc2 = 1.0 - pow((double)o->beta2, (double)o->step);
        float gstep[LT_OPTIM_MAX_GROUPS];
        for (int k = 0; k < o->n_groups; k++) gstep[k] = (float)(glr[k] / bc1);
        adam_grouped(o->n, m->w, m->g, o->s1, o->s2, m->mask, o->gid, gstep, gwd, o->beta1, o->beta2, o->eps,
                     (float)sqrt(bc2));
    }
    return LT_OK;
}

int lt_optim_state(const lt_optim *o, lt_model *m, const char *name, const float **s1, const float **s2,
                   size_t *count) {
    if (o->n != m->n_w) return lt_err(LT_ESHAPE, "optimizer: built for %zu parameters, model has %zu", o->n, m->n_w);
    const lt_param *p = lt_model_param(m, name);
    if (!p) return lt_err(LT_EINVAL, "optimizer: the model has no parameter '%s'", name);
    if (s1) *s1 = o->s1 + p->off;
    if (s2) *s2 = o->s2 ? o->s2 + p->off : NULL;
    if (count) *count = p->count;
    return LT_OK;
}

int lt_optim_state_host(const lt_optim *o, lt_model *m, const char *name, float *h1, float *h2, const float **s1,
                        const float **s2, size_t *count) {
    const float *d1, *d2;
    size_t n;
    LT_TRY(lt_optim_state(o, m, name, &d1, &d2, &n));
    if (!h1 || (d2 && !h2)) return lt_err(LT_EINVAL, "optimizer state of '%s': no host array", name);
    const size_t off = (size_t)(d1 - o->s1), bytes = n * sizeof(float);
    if (o->dev) {
        LT_TRY(o->dev->d2h(o->dctx, h1 + off, d1, bytes));
        if (d2) LT_TRY(o->dev->d2h(o->dctx, h2 + off, d2, bytes));
    } else {
        memcpy(h1 + off, d1, bytes);
        if (d2) memcpy(h2 + off, d2, bytes);
    }
    if (s1) *s1 = h1 + off;
    if (s2) *s2 = d2 ? h2 + off : NULL;
    if (count) *count = n;
    return LT_OK;
}

void lt_optim_free(lt_optim *o) {
    if (o->dev) {
        o->dev->free(o->dctx, o->s1);
        o->dev->free(o->dctx, o->s2);
        o->dev->free(o->dctx, o->dgid);
        o->dgid = NULL;
    } else {
        lt_free(o->s1);
        lt_free(o->s2);
    }
    lt_free(o->gid);
    o->s1 = o->s2 = NULL;
    o->gid = NULL;
}
