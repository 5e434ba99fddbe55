/* lt_cuda_optim.cuh — the element updates of SGD and Adam, shared by the
 * kernels that take their rates from the host (lt_cuda_loss.cu: eager
 * steps) and from device memory (lt_cuda_step.cu: steps a CUDA graph
 * replays). One definition, so the two paths cannot drift apart: each is
 * lt_optim.c's arithmetic element by element, in float (built with
 * --fmad=false, so no contraction changes the rounding).
 *
 * a / b: per-group rates (SGD: learning rate; Adam: step size lr / bc1)
 * and weight decays, indexed by gid[i] (NULL: group 0). */
#ifndef LT_CUDA_OPTIM_CUH
#define LT_CUDA_OPTIM_CUH

#include "lt_cuda_impl.h"

__device__ __forceinline__ void lt_sgd_elem(size_t i, float *w, const float *g, float *mom, const uint8_t *mask,
                                            const uint8_t *gid, const float *a, const float *b, float mu,
                                            int use_mom, int nesterov) {
    const uint8_t mk = mask ? mask[i] : 0;
    if (mk & LT_MASK_FROZEN) return;
    const int k = gid ? gid[i] : 0;
    float gi = g[i];
    if (!(mk & LT_MASK_NO_DECAY)) gi = gi + b[k] * w[i];
    float d = gi;
    if (use_mom) {
        const float v = mu * mom[i] + gi;
        mom[i] = v;
        d = nesterov ? gi + mu * v : v;
    }
    w[i] = w[i] - a[k] * d;
}

/* c1 = 1 - b1, c2 = 1 - b2 (computed once by the caller) */
__device__ __forceinline__ void lt_adam_elem(size_t i, float *w, const float *g, float *m1, float *m2,
                                             const uint8_t *mask, const uint8_t *gid, const float *a,
                                             const float *b, float b1, float b2, float c1, float c2,
                                             float bc2_sqrt, float eps) {
    const uint8_t mk = mask ? mask[i] : 0;
    if (mk & LT_MASK_FROZEN) return;
    const int k = gid ? gid[i] : 0;
    float gi = g[i];
    if (!(mk & LT_MASK_NO_DECAY)) gi = gi + b[k] * w[i];
    const float mi = b1 * m1[i] + c1 * gi;
    const float vi = b2 * m2[i] + c2 * gi * gi;
    m1[i] = mi;
    m2[i] = vi;
    const float denom = sqrtf(vi) / bc2_sqrt + eps;
    w[i] = w[i] - a[k] * (mi / denom);
}

#endif
