/* lt_cuda_loss.cu — softmax cross-entropy and sigmoid BCE (lt_loss.c's
 * semantics and double arithmetic), and the SGD / Adam steps (lt_optim.c's
 * float arithmetic, element by element).
 *
 * Losses: one thread per row computes the row's loss and gradient in double
 * exactly as lt_loss.c does (so the gradients match the CPU's to the
 * rounding of exp/log1p); a one-thread kernel then checks the arguments in
 * the CPU's order (labels, offsets, weights / targets, logits row by row),
 * sums the row losses in row order and leaves {status, index, loss} for the
 * host, which turns a status into the CPU's error message. No atomics. */
#include "lt_cuda_impl.h"
#include "lt_cuda_optim.cuh"

#include <math.h>


enum { ST_OK = 0, ST_LABEL, ST_OFFSET, ST_WEIGHT, ST_TARGET, ST_LOGIT, ST_LOSS };

struct loss_out {
    double loss;
    int status, i, j, pad;
    double val;
};

__global__ static void k_softmax_ce_rows(int N, int C, const float *logits, const int32_t *labels,
                                         const float *offsets, const float *weights, float *dlogits, double *rowloss,
                                         int *rowbad) {
    GRID_LOOP(ii, (size_t)N) {
        const int i = (int)ii;
        rowbad[i] = -1;
        rowloss[i] = 0;
        const int y = labels[i];
        if (y < 0 || y >= C) continue;   /* reported by the finalizer */
        const float *z = logits + (size_t)i * C;
        double m = -INFINITY;
        int bad = -1;
        for (int j = 0; j < C; j++) {
            if (!isfinite(z[j])) { bad = j; break; }
            const double zj = (double)z[j] + (offsets ? offsets[j] : 0.0);
            if (zj > m) m = zj;
        }
        if (bad >= 0) { rowbad[i] = bad; continue; }
        double s = 0.0;
        float *g = dlogits ? dlogits + (size_t)i * C : NULL;
        for (int j = 0; j < C; j++) {
            const double e = exp((double)z[j] + (offsets ? offsets[j] : 0.0) - m);
            s += e;
            if (g) g[j] = (float)e;
        }
        const double lse = m + log(s);
        const double zy = (double)z[y] + (offsets ? offsets[y] : 0.0);
        const double w = weights ? weights[i] : 1.0;
        rowloss[i] = w * (lse - zy);
        if (g) {
            const double scale = w / (s * N);
            for (int j = 0; j < C; j++) g[j] = (float)(g[j] * scale);
            g[y] = (float)((double)g[y] - w / N);
        }
    }
}

__global__ static void k_softmax_ce_final(int N, int C, const float *logits, const int32_t *labels,
                                          const float *offsets, const float *weights, const double *rowloss,
                                          const int *rowbad, struct loss_out *o) {
    o->status = ST_OK;
    o->loss = 0;
    for (int i = 0; i < N; i++)
        if (labels[i] < 0 || labels[i] >= C) { o->status = ST_LABEL; o->i = i; o->val = labels[i]; return; }
    if (offsets)
        for (int j = 0; j < C; j++)
            if (!isfinite(offsets[j])) { o->status = ST_OFFSET; o->j = j; o->val = offsets[j]; return; }
    if (weights)
        for (int i = 0; i < N; i++)
            if (!isfinite(weights[i])) { o->status = ST_WEIGHT; o->i = i; o->val = weights[i]; return; }
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        if (rowbad[i] >= 0) {
            o->status = ST_LOGIT; o->i = i; o->j = rowbad[i]; o->val = logits[(size_t)i * C + rowbad[i]];
            return;
        }
        total += rowloss[i];
    }
    o->loss = total / N;
    if (!isfinite(o->loss)) { o->status = ST_LOSS; o->val = o->loss; }
}

static __device__ double softplus(double z) { return (z > 0.0 ? z : 0.0) + log1p(exp(-fabs(z))); }
static __device__ double sigmoid(double z) {
    if (z >= 0.0) return 1.0 / (1.0 + exp(-z));
    const double e = exp(z);
    return e / (1.0 + e);
}

__global__ static void k_bce_rows(int N, int C, const float *logits, const float *targets, const float *offsets,
                                  float *dlogits, double *rowloss, int *rowbad) {
    GRID_LOOP(ii, (size_t)N) {
        const int i = (int)ii;
        /* rowbad: -1 fine, j: bad logit j, -2 - j: bad target j */
        rowbad[i] = -1;
        rowloss[i] = 0;
        int bad = -1;
        for (int j = 0; j < C; j++)
            if (!isfinite(targets[(size_t)i * C + j])) { bad = j; break; }
        if (bad >= 0) { rowbad[i] = -2 - bad; continue; }
        double total = 0.0;
        for (int j = 0; j < C; j++) {
            const size_t k = (size_t)i * C + j;
            if (!isfinite(logits[k])) { bad = j; break; }
            const double z = (double)logits[k] + (offsets ? offsets[j] : 0.0);
            const double y = targets[k];
            total += softplus(z) - y * z;
            if (dlogits) dlogits[k] = (float)((sigmoid(z) - y) / N);
        }
        if (bad >= 0) { rowbad[i] = bad; continue; }
        rowloss[i] = total;
    }
}

__global__ static void k_bce_final(int N, int C, const float *logits, const float *targets, const float *offsets,
                                   const double *rowloss, const int *rowbad, struct loss_out *o) {
    o->status = ST_OK;
    o->loss = 0;
    if (offsets)
        for (int j = 0; j < C; j++)
            if (!isfinite(offsets[j])) { o->status = ST_OFFSET; o->j = j; o->val = offsets[j]; return; }
    for (int i = 0; i < N; i++)
        if (rowbad[i] <= -2) {
            const int j = -2 - rowbad[i];
            o->status = ST_TARGET; o->i = i; o->j = j; o->val = targets[(size_t)i * C + j];
            return;
        }
    double total = 0.0;
    for (int i = 0; i < N; i++) {
        if (rowbad[i] >= 0) {
            o->status = ST_LOGIT; o->i = i; o->j = rowbad[i]; o->val = logits[(size_t)i * C + rowbad[i]];
            return;
        }
        total += rowloss[i];
    }
    o->loss = total / N;
    if (!isfinite(o->loss)) { o->status = ST_LOSS; o->val = o->loss; }
}

static int finish_loss(lt_cuda_ctx *ctx, const char *fn, int C, double *loss) {
    struct loss_out o;
    LT_TRY(lt_cuda_launch_check(fn));
    LT_TRY(lt_cuda_d2h(ctx, &o, ctx->small, sizeof o));
    switch (o.status) {
    case ST_OK: break;
    case ST_LABEL: return lt_err(LT_EINVAL, "%s: label[%d] = %d outside [0, %d)", fn, o.i, (int)o.val, C);
    case ST_OFFSET: return lt_err(LT_ENUM, "%s: offset[%d] = %g is not finite", fn, o.j, o.val);
    case ST_WEIGHT: return lt_err(LT_ENUM, "%s: weight[%d] = %g is not finite", fn, o.i, o.val);
    case ST_TARGET: return lt_err(LT_ENUM, "%s: target[%zu] = %g is not finite", fn, (size_t)o.i * C + o.j, o.val);
    case ST_LOGIT: return lt_err(LT_ENUM, "%s: logit[%d,%d] = %g is not finite", fn, o.i, o.j, o.val);
    default: return lt_err(LT_ENUM, "%s: loss is not finite (%g)", fn, o.val);
    }
    if (loss) *loss = o.loss;
    return LT_OK;
}

int lt_cuda_softmax_ce(lt_cuda_ctx *ctx, int N, int C, const float *logits, const int32_t *labels,
                       const float *offsets, const float *weights, double *loss, float *dlogits) {
    static const char fn[] = "cuda softmax_ce";
    LT_CTX(ctx);
    if (N <= 0 || C <= 0) return lt_err(LT_EINVAL, "%s: N=%d C=%d must be positive", fn, N, C);
    if (!logits || !labels) return lt_err(LT_EINVAL, "%s: NULL logits or labels", fn);
    LT_TRY(lt_cuda_ws_reserve(ctx, (size_t)N * (sizeof(double) + sizeof(int))));
    double *rowloss = (double *)ctx->ws;
    int *rowbad = (int *)(rowloss + N);
    LT_LAUNCH(k_softmax_ce_rows, lt_cuda_blocks((size_t)N, 64), 64, ctx->stream)(N, C, logits, labels, offsets, weights,
                                                                             dlogits, rowloss, rowbad);
    LT_TRY(lt_cuda_launch_check(fn));
    LT_LAUNCH(k_softmax_ce_final, 1, 1, ctx->stream)(N, C, logits, labels, offsets, weights, rowloss, rowbad,
                                                 (struct loss_out *)ctx->small);
    return finish_loss(ctx, fn, C, loss);
}

int lt_cuda_sigmoid_bce(lt_cuda_ctx *ctx, int N, int C, const float *logits, const float *targets,
                        const float *offsets, double *loss, float *dlogits) {
    static const char fn[] = "cuda sigmoid_bce";
    LT_CTX(ctx);
    if (N <= 0 || C <= 0) return lt_err(LT_EINVAL, "%s: N=%d C=%d must be positive", fn, N, C);
    if (!logits || !targets) return lt_err(LT_EINVAL, "%s: NULL logits or targets", fn);
    LT_TRY(lt_cuda_ws_reserve(ctx, (size_t)N * (sizeof(double) + sizeof(int))));
    double *rowloss = (double *)ctx->ws;
    int *rowbad = (int *)(rowloss + N);
    LT_LAUNCH(k_bce_rows, lt_cuda_blocks((size_t)N, 64), 64, ctx->stream)(N, C, logits, targets, offsets, dlogits, rowloss,
                                                                      rowbad);
    LT_TRY(lt_cuda_launch_check(fn));
    LT_LAUNCH(k_bce_final, 1, 1, ctx->stream)(N, C, logits, targets, offsets, rowloss, rowbad, (struct loss_out *)ctx->small);
    return finish_loss(ctx, fn, C, loss);
}

/* ---- optimizers ------------------------------------------------------------------------ */
struct group_rates {
    float a[LT_CUDA_MAX_GROUPS], b[LT_CUDA_MAX_GROUPS];   /* lr (SGD) or step size (Adam); weight decay */
};

__global__ static void k_sgd(size_t n, float *w, const float *g, float *mom, const uint8_t *mask, const uint8_t *gid,
                             struct group_rates r, float mu, int nesterov) {
    const int use_mom = mu != 0.0f;
    GRID_LOOP(i, n) lt_sgd_elem(i, w, g, mom, mask, gid, r.a, r.b, mu, use_mom, nesterov);
}

__global__ static void k_adam(size_t n, float *w, const float *g, float *m1, float *m2, const uint8_t *mask,
                              const uint8_t *gid, struct group_rates r, float b1, float b2, float eps, float bc2_sqrt) {
    const float c1 = 1.0f - b1, c2 = 1.0f - b2;
    GRID_LOOP(i, n) lt_adam_elem(i, w, g, m1, m2, mask, gid, r.a, r.b, b1, b2, c1, c2, bc2_sqrt, eps);
}

static int rates(struct group_rates *r, int n_groups, const float *a, const float *b) {
    if (n_groups < 1 || n_groups > LT_CUDA_MAX_GROUPS || !a || !b)
        return lt_err(LT_EINVAL, "cuda optimizer: %d groups (1..%d) with their rates", n_groups, LT_CUDA_MAX_GROUPS);
    for (int k = 0; k < LT_CUDA_MAX_GROUPS; k++) {
        r->a[k] = k < n_groups ? a[k] : 0.0f;
        r->b[k] = k < n_groups ? b[k] : 0.0f;
    }
    return LT_OK;
}

int lt_cuda_sgd_step_grouped(lt_cuda_ctx *ctx, size_t n, float *w, const float *g, float *mom, const uint8_t *mask,
                             const uint8_t *gid, int n_groups, const float *glr, const float *gwd, float momentum,
                             int nesterov) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    if (!w || !g || (momentum != 0.0f && !mom)) return lt_err(LT_EINVAL, "cuda sgd: NULL parameter, gradient or momentum");
    struct group_rates r;
    LT_TRY(rates(&r, n_groups, glr, gwd));
    LT_LAUNCH(k_sgd, lt_cuda_blocks(n, 256), 256, ctx->stream)(n, w, g, mom, mask, gid, r, momentum, nesterov != 0);
    return lt_cuda_launch_check("sgd step");
}

int lt_cuda_sgd_step(lt_cuda_ctx *ctx, size_t n, float *params, const float *grads, float *mom, const uint8_t *mask,
                     const lt_sgd_cfg *cfg) {
    if (!cfg) return lt_err(LT_EINVAL, "cuda sgd: NULL config");
    return lt_cuda_sgd_step_grouped(ctx, n, params, grads, mom, mask, NULL, 1, &cfg->lr, &cfg->weight_decay,
                                    cfg->momentum, cfg->nesterov);
}

int lt_cuda_adam_step_grouped(lt_cuda_ctx *ctx, size_t n, float *w, const float *g, float *m1, float *m2,
                              const uint8_t *mask, const uint8_t *gid, int n_groups, const float *gstep,
                              const float *gwd, float beta1, float beta2, float eps, float bc2_sqrt) {
    LT_CTX(ctx);
    if (!n) return LT_OK;
    if (!w || !g || !m1 || !m2) return lt_err(LT_EINVAL, "cuda adam: NULL parameter, gradient or state");
    struct group_rates r;
    LT_TRY(rates(&r, n_groups, gstep, gwd));
    LT_LAUNCH(k_adam, lt_cuda_blocks(n, 256), 256, ctx->stream)(n, w, g, m1, m2, mask, gid, r, beta1, beta2, eps, bc2_sqrt);
    return lt_cuda_launch_check("adam step");
}

int lt_cuda_adam_step(lt_cuda_ctx *ctx, size_t n, float *params, const float *grads, float *m, float *v,
                      const uint8_t *mask, const lt_adam_cfg *cfg, long step) {
    if (!cfg) return lt_err(LT_EINVAL, "cuda adam: NULL config");
    if (step < 1) return lt_err(LT_EINVAL, "cuda adam: step %ld must be >= 1", step);
    /* the scalars exactly as lt_adam_step computes them on the host */
    const double bc1 = 1.0 - pow((double)cfg->beta1, (double)step);
    const double bc2 = 1.0 - pow((double)cfg->beta2, (double)step);
    const float step_size = (float)(cfg->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    return lt_cuda_adam_step_grouped(ctx, n, params, grads, m, v, mask, NULL, 1, &step_size, &cfg->weight_decay,
                                     cfg->beta1, cfg->beta2, cfg->eps, bc2_sqrt);
}
