/* lt_optim.c — SGD and Adam over flat parameter buffers.
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
#include "lt_loss.h"

#include <math.h>

#define LT_OPTIM_PAR_MIN 65536

void lt_sgd_step(size_t n, float *params, const float *grads, float *mom,
                 const uint8_t *mask, const lt_sgd_cfg *cfg) {
    LT_ASSERT(cfg != NULL);
    if (n == 0) return;
    LT_ASSERT(params != NULL && grads != NULL);
    const float lr = cfg->lr, mu = cfg->momentum, wd = cfg->weight_decay;
    const int use_mom = mu != 0.0f, nesterov = cfg->nesterov != 0;
    LT_ASSERT(!use_mom || mom != NULL);

#pragma omp parallel for schedule(static) if (n >= LT_OPTIM_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        uint8_t mk = mask ? mask[i] : 0;
        if (mk & LT_MASK_FROZEN) continue;   /* weight and momentum both untouched */
        float g = grads[i];
        if (!(mk & LT_MASK_NO_DECAY)) g = g + wd * params[i];
        float d = g;
        if (use_mom) {
            float v = mu * mom[i] + g;
            mom[i] = v;
            d = nesterov ? g + mu * v : v;
        }
        params[i] = params[i] - lr * d;
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

#pragma omp parallel for schedule(static) if (n >= LT_OPTIM_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        uint8_t mk = mask ? mask[i] : 0;
        if (mk & LT_MASK_FROZEN) continue;
        float g = grads[i];
        if (!(mk & LT_MASK_NO_DECAY)) g = g + wd * params[i];
        float mi = b1 * m[i] + c1 * g;
        float vi = b2 * v[i] + c2 * g * g;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        params[i] = params[i] - step_size * (mi / denom);
    }
}
