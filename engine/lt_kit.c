/* lt_kit.c — see lt_kit.h: Beta draws and mixup, EMA copies, the labelled
 * key queue, masked log-sum-exp contrastive logits, KD, CAMs. Rows are
 * processed serially in a fixed order (all of this is small next to the
 * network), so every number is bit-reproducible. */
#include "lt_kit.h"
#include "lt_loss.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- distributions ----------------------------------------------------------- */

double lt_rng_gamma(lt_rng *r, double shape)
{
    if (!(shape > 0) || !isfinite(shape))
        return NAN;
    if (shape < 1.0) {
        /* Gamma(a) = Gamma(a + 1) * U^(1/a) (Marsaglia & Tsang, section 6);
         * 1 - U is in (0, 1], so the power is finite */
        const double g = lt_rng_gamma(r, shape + 1.0);
        return g * pow(1.0 - lt_rng_uniform(r), 1.0 / shape);
    }
    const double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = lt_rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        const double u = 1.0 - lt_rng_uniform(r);   /* (0, 1]: log finite */
        if (u < 1.0 - 0.0331 * x * x * x * x)
            return d * v;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v;
    }
}

double lt_rng_beta(lt_rng *r, double a, double b)
{
    const double x = lt_rng_gamma(r, a);
    const double y = lt_rng_gamma(r, b);
    /* both underflowing to 0 happens only for tiny shapes: a fair coin
     * between the two ends is the limit distribution */
    if (x + y == 0.0)
        return lt_rng_uniform(r) < a / (a + b) ? 1.0 : 0.0;
    return x / (x + y);
}

/* ---- mixup ------------------------------------------------------------------- */

static float draw_lam(lt_rng *rng, double alpha)
{
    return alpha > 0 ? (float)lt_rng_beta(rng, alpha, alpha) : 1.0f;
}

int lt_mixup_pairs(int n, size_t d, const float *xa, const float *xb, double alpha, lt_rng *rng,
                   float *xm, float *lam)
{
    if (n < 0 || !xa || !xb || !xm || !lam || (alpha > 0 && !rng) || !isfinite(alpha))
        return lt_err(LT_EINVAL, "mixup: bad arguments (n %d, alpha %g)", n, alpha);
    for (int i = 0; i < n; i++) {
        const float l = draw_lam(rng, alpha);
        lam[i] = l;
        const float *a = xa + (size_t)i * d, *b = xb + (size_t)i * d;
        float *o = xm + (size_t)i * d;
        for (size_t k = 0; k < d; k++)
            o[k] = l * a[k] + (1.0f - l) * b[k];
    }
    return LT_OK;
}

int lt_mixup_batch(int n, size_t d, const float *x, const int32_t *y, double alpha, lt_rng *rng,
                   int32_t *perm, float *xm, int32_t *ya, int32_t *yb, float *lam)
{
    if (n < 0 || !x || !y || !rng || !perm || !xm || !ya || !yb || !lam || !isfinite(alpha))
        return lt_err(LT_EINVAL, "mixup: bad arguments (n %d, alpha %g)", n, alpha);
    if (n > 0 && xm < x + (size_t)n * d && x < xm + (size_t)n * d)
        return lt_err(LT_EINVAL, "mixup: the output overlaps the batch");
    for (int i = 0; i < n; i++)
        perm[i] = i;
    lt_rng_shuffle_i32(rng, perm, n);
    for (int i = 0; i < n; i++) {
        const float l = draw_lam(rng, alpha);
        lam[i] = l;
        ya[i] = y[i];
        yb[i] = y[perm[i]];
        const float *a = x + (size_t)i * d, *b = x + (size_t)perm[i] * d;
        float *o = xm + (size_t)i * d;
        for (size_t k = 0; k < d; k++)
            o[k] = l * a[k] + (1.0f - l) * b[k];
    }
    return LT_OK;
}

int lt_mixup_ce(int N, int C, const float *logits, const int32_t *ya, const int32_t *yb,
                const float *lam, double *loss, float *dlogits)
{
    if (N <= 0 || C <= 0 || !logits || !ya || !yb || !lam || !loss)
        return lt_err(LT_EINVAL, "mixup_ce: bad arguments (N %d, C %d)", N, C);
    for (int i = 0; i < N; i++)
        if (ya[i] < 0 || ya[i] >= C || yb[i] < 0 || yb[i] >= C || !(lam[i] >= 0 && lam[i] <= 1))
            return lt_err(LT_EINVAL, "mixup_ce: row %d: labels %d, %d, lambda %g", i, (int)ya[i], (int)yb[i],
                          (double)lam[i]);
    double total = 0;
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * C;
        double m = -INFINITY;
        for (int j = 0; j < C; j++) {
            if (!isfinite(z[j]))
                return lt_err(LT_ENUM, "mixup_ce: logit[%d,%d] = %g is not finite", i, j, (double)z[j]);
            if (z[j] > m) m = z[j];
        }
        double s = 0;
        for (int j = 0; j < C; j++) s += exp((double)z[j] - m);
        const double lse = m + log(s), l = lam[i];
        total += l * (lse - z[ya[i]]) + (1.0 - l) * (lse - z[yb[i]]);
        if (dlogits) {
            float *g = dlogits + (size_t)i * C;
            for (int j = 0; j < C; j++) g[j] = (float)(exp((double)z[j] - lse) / N);
            g[ya[i]] = (float)((double)g[ya[i]] - l / N);
            g[yb[i]] = (float)((double)g[yb[i]] - (1.0 - l) / N);
        }
    }
    *loss = total / N;
    if (!isfinite(*loss)) return lt_err(LT_ENUM, "mixup_ce: loss is not finite");
    return LT_OK;
}

/* ---- EMA ------------------------------------------------------------------------ */

/* One pair: dst's and src's tensor (parameter or buffer) by index, and
 * their host pointers where the model is on the cpu (NULL on a device). */
typedef struct { float *d; const float *s; size_t n; int di, si; } ema_pair;
struct lt_ema {
    int buffers;
    int np, nb;
    ema_pair *p, *b;
    lt_model *dst, *src;
    int dev_d, dev_s;   /* 1: that model is on a device: its tensors go through the host copies */
    float *hd, *hs;     /* host staging of one tensor of a device dst / src (the largest pair) */
};

void lt_ema_free(lt_ema *e)
{
    if (!e) return;
    free(e->p);
    free(e->b);
    free(e->hd);
    free(e->hs);
    free(e);
}

int lt_ema_create(lt_ema **out, lt_model *dst, lt_model *src, int buffers)
{
    *out = NULL;
    if (!dst || !src || buffers < LT_EMA_BUF_KEEP || buffers > LT_EMA_BUF_EMA)
        return lt_err(LT_EINVAL, "ema: bad arguments (buffers mode %d)", buffers);
    const int np = lt_model_n_params(dst), nb = lt_model_n_buffers(dst);
    lt_ema *e = calloc(1, sizeof *e);
    if (!e) return lt_err(LT_ENOMEM, "ema: out of memory");
    e->buffers = buffers;
    e->dst = dst;
    e->src = src;
    e->dev_d = lt_model_device_ctx(dst) != NULL;
    e->dev_s = lt_model_device_ctx(src) != NULL;
    e->p = calloc((size_t)np + 1, sizeof *e->p);
    e->b = calloc((size_t)nb + 1, sizeof *e->b);
    if (!e->p || !e->b) {
        lt_ema_free(e);
        return lt_err(LT_ENOMEM, "ema: out of memory");
    }
    size_t most = 0;
    for (int i = 0; i < np; i++) {
        lt_param_info pd, ps;
        int rc = lt_model_param_at(dst, i, &pd);
        if (!rc && (rc = lt_model_param_find(src, pd.name, &ps)) != LT_OK)
            rc = lt_err(LT_EINVAL, "ema: the source model has no parameter '%s'", pd.name);
        if (!rc && ps.count != pd.count)
            rc = lt_err(LT_EINVAL, "ema: parameter '%s' has %zu floats here, %zu in the source", pd.name, pd.count,
                        ps.count);
        if (!rc && (!pd.w || !ps.w)) rc = lt_err(LT_ESTATE, "ema: models must be finalized");
        if (rc) {
            lt_ema_free(e);
            return rc;
        }
        e->p[e->np++] = (ema_pair){e->dev_d ? NULL : pd.w, e->dev_s ? NULL : ps.w, pd.count, i,
                                   lt_model_param_index(src, pd.name)};
        if (pd.count > most) most = pd.count;
    }
    /* buffers by name: linear search, at create only */
    const int nbs = lt_model_n_buffers(src);
    for (int i = 0; i < nb; i++) {
        lt_buffer_info bd, bs;
        int found = -1;
        (void)lt_model_buffer_at(dst, i, &bd);   /* i < n: cannot fail */
        for (int k = 0; k < nbs && found < 0; k++) {
            (void)lt_model_buffer_at(src, k, &bs);
            if (!strcmp(bs.name, bd.name) && bs.count == bd.count) found = k;
        }
        if (found < 0) {
            if (buffers == LT_EMA_BUF_KEEP) continue;   /* never read */
            lt_ema_free(e);
            return lt_err(LT_EINVAL, "ema: the source model has no buffer '%s' of %zu floats", bd.name, bd.count);
        }
        e->b[e->nb++] = (ema_pair){e->dev_d ? NULL : bd.data, e->dev_s ? NULL : bs.data, bd.count, i, found};
        if (bd.count > most) most = bd.count;
    }
    /* a model on a device: its tensors are read and written through host
     * copies, one at a time (the update runs on the host either way, so
     * the result is the same bits as between two cpu models) */
    if ((e->dev_d && !(e->hd = malloc((most ? most : 1) * sizeof(float)))) ||
        (e->dev_s && !(e->hs = malloc((most ? most : 1) * sizeof(float))))) {
        lt_ema_free(e);
        return lt_err(LT_ENOMEM, "ema: out of memory");
    }
    *out = e;
    return LT_OK;
}

/* Host views of pair q (parameters: buf 0, buffers: 1), read from a device
 * where a model lives there; `need_d`: dst's values are read too (the
 * average; a plain copy only writes them). */
static int ema_views(lt_ema *e, const ema_pair *q, int buf, int need_d, float **d, const float **s)
{
    *d = q->d;
    *s = q->s;
    if (e->dev_s) {
        LT_TRY(buf ? lt_model_buffer_to_host(e->src, q->si, e->hs) : lt_model_param_to_host(e->src, q->si, e->hs, NULL));
        *s = e->hs;
    }
    if (e->dev_d) {
        if (need_d)
            LT_TRY(buf ? lt_model_buffer_to_host(e->dst, q->di, e->hd) : lt_model_param_to_host(e->dst, q->di, e->hd, NULL));
        *d = e->hd;
    }
    return LT_OK;
}

/* Writes a device dst's staged values back. */
static int ema_store(lt_ema *e, const ema_pair *q, int buf, const float *d)
{
    if (!e->dev_d) return LT_OK;
    return buf ? lt_model_buffer_from_host(e->dst, q->di, d) : lt_model_param_from_host(e->dst, q->di, d);
}

/* d <- d m + s (1 - m), or d <- s when copy */
static int ema_pairs(lt_ema *e, ema_pair *ps, int n, int buf, int copy, float m)
{
    const float a = 1.0f - m;
    for (int i = 0; i < n; i++) {
        float *d;
        const float *s;
        LT_TRY(ema_views(e, &ps[i], buf, !copy, &d, &s));
        if (copy) memcpy(d, s, ps[i].n * sizeof(float));
        else
            for (size_t k = 0; k < ps[i].n; k++) d[k] = d[k] * m + s[k] * a;
        LT_TRY(ema_store(e, &ps[i], buf, d));
    }
    return LT_OK;
}

int lt_ema_update(lt_ema *e, float m)
{
    if (!e || !(m >= 0.0f && m <= 1.0f)) return lt_err(LT_EINVAL, "ema: momentum %g outside [0, 1]", (double)m);
    LT_TRY(ema_pairs(e, e->p, e->np, 0, 0, m));
    if (e->buffers == LT_EMA_BUF_COPY) LT_TRY(ema_pairs(e, e->b, e->nb, 1, 1, 0.0f));
    else if (e->buffers == LT_EMA_BUF_EMA) LT_TRY(ema_pairs(e, e->b, e->nb, 1, 0, m));
    return LT_OK;
}

int lt_ema_copy(lt_ema *e)
{
    if (!e) return lt_err(LT_EINVAL, "ema: NULL");
    LT_TRY(ema_pairs(e, e->p, e->np, 0, 1, 0.0f));
    return ema_pairs(e, e->b, e->nb, 1, 1, 0.0f);
}

/* ---- key queue ------------------------------------------------------------------ */

int lt_keyqueue_init(lt_keyqueue *q, int K, int D, int32_t init_label, lt_rng *rng)
{
    memset(q, 0, sizeof *q);
    if (K < 1 || D < 1 || !rng) return lt_err(LT_EINVAL, "key queue: K %d, D %d", K, D);
    q->keys = lt_alloc((size_t)K * D * sizeof(float));
    q->labels = malloc((size_t)K * sizeof *q->labels);
    if (!q->keys || !q->labels) {
        lt_keyqueue_free(q);
        return lt_err(LT_ENOMEM, "key queue: cannot hold %d x %d keys", K, D);
    }
    q->K = K;
    q->D = D;
    for (int i = 0; i < K; i++) {
        float *k = q->keys + (size_t)i * D;
        double ss = 0;
        for (int j = 0; j < D; j++) {
            k[j] = (float)lt_rng_normal(rng);
            ss += (double)k[j] * k[j];
        }
        const double inv = 1.0 / fmax(sqrt(ss), 1e-12);   /* F.normalize's eps */
        for (int j = 0; j < D; j++) k[j] = (float)(k[j] * inv);
        q->labels[i] = init_label;
    }
    return LT_OK;
}

int lt_keyqueue_push(lt_keyqueue *q, int n, const float *keys, const int32_t *labels)
{
    if (!q || !q->keys || n < 0 || (n > 0 && (!keys || !labels)))
        return lt_err(LT_EINVAL, "key queue: push of %d keys", n);
    int first = 0;
    if (n > q->K) {   /* only the newest K survive; ptr moves as if all were written */
        first = n - q->K;
        q->ptr = (q->ptr + first) % q->K;
    }
    for (int i = first; i < n; i++) {
        memcpy(q->keys + (size_t)q->ptr * q->D, keys + (size_t)i * q->D, (size_t)q->D * sizeof(float));
        q->labels[q->ptr] = labels[i];
        q->ptr = (q->ptr + 1) % q->K;
    }
    return LT_OK;
}

void lt_keyqueue_free(lt_keyqueue *q)
{
    if (!q) return;
    lt_free(q->keys);
    free(q->labels);
    memset(q, 0, sizeof *q);
}

int lt_keyqueue_save(const lt_keyqueue *q, lt_ckpt_writer *w, const char *prefix)
{
    char name[256];
    const int64_t ptr = q->ptr;
    snprintf(name, sizeof name, "%skeys", prefix);
    LT_TRY(lt_ckpt_put(w, name, q->keys, (size_t)q->K * q->D * sizeof(float)));
    snprintf(name, sizeof name, "%slabels", prefix);
    LT_TRY(lt_ckpt_put(w, name, q->labels, (size_t)q->K * sizeof(int32_t)));
    snprintf(name, sizeof name, "%sptr", prefix);
    return lt_ckpt_put(w, name, &ptr, sizeof ptr);
}

int lt_keyqueue_load(lt_keyqueue *q, const lt_ckpt *c, const char *prefix)
{
    char name[256];
    int64_t ptr;
    snprintf(name, sizeof name, "%skeys", prefix);
    LT_TRY(lt_ckpt_get_into(c, name, q->keys, (size_t)q->K * q->D * sizeof(float)));
    snprintf(name, sizeof name, "%slabels", prefix);
    LT_TRY(lt_ckpt_get_into(c, name, q->labels, (size_t)q->K * sizeof(int32_t)));
    snprintf(name, sizeof name, "%sptr", prefix);
    LT_TRY(lt_ckpt_get_into(c, name, &ptr, sizeof ptr));
    if (ptr < 0 || ptr >= q->K) return lt_err(LT_EDATA, "key queue: pointer %lld outside [0, %d)", (long long)ptr, q->K);
    q->ptr = (long)ptr;
    return LT_OK;
}

/* ---- masked log-sum-exp / contrastive ------------------------------------------------ */

void lt_masked_lse(int N, int M, const float *logits, const uint8_t *mask, unsigned bit, double *lse)
{
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * M;
        const uint8_t *mk = mask + (size_t)i * M;
        double m = -INFINITY;
        for (int j = 0; j < M; j++)
            if ((mk[j] & bit) && z[j] > m) m = z[j];
        if (m == -INFINITY) {
            lse[i] = -INFINITY;
            continue;
        }
        double s = 0;
        for (int j = 0; j < M; j++)
            if (mk[j] & bit) s += exp((double)z[j] - m);
        lse[i] = m + log(s);
    }
}

int lt_masked_contrast(int N, int M, const float *logits, const uint8_t *mask, double *loss,
                       float *dlogits, int *n_valid)
{
    if (N <= 0 || M <= 0 || !logits || !mask || !loss)
        return lt_err(LT_EINVAL, "masked_contrast: bad arguments (N %d, M %d)", N, M);
    for (size_t k = 0; k < (size_t)N * M; k++)
        if (!isfinite(logits[k])) return lt_err(LT_ENUM, "masked_contrast: logit %zu is not finite", k);
    /* first pass: which rows count (the gradient's divisor) */
    int nv = 0;
    for (int i = 0; i < N; i++) {
        int np = 0, nd = 0;
        for (int j = 0; j < M; j++) {
            np += (mask[(size_t)i * M + j] & LT_CON_POS) != 0;
            nd += (mask[(size_t)i * M + j] & LT_CON_DENOM) != 0;
        }
        nv += np > 0 && nd > 0;
    }
    if (n_valid) *n_valid = nv;
    double total = 0;
    for (int i = 0; i < N; i++) {
        const float *z = logits + (size_t)i * M;
        const uint8_t *mk = mask + (size_t)i * M;
        float *g = dlogits ? dlogits + (size_t)i * M : NULL;
        double lse, psum = 0;
        int np = 0;
        lt_masked_lse(1, M, z, mk, LT_CON_DENOM, &lse);
        for (int j = 0; j < M; j++)
            if (mk[j] & LT_CON_POS) {
                psum += z[j];
                np++;
            }
        if (np == 0 || lse == -INFINITY) {
            if (g) memset(g, 0, (size_t)M * sizeof *g);
            continue;
        }
        total += lse - psum / np;
        if (g)
            for (int j = 0; j < M; j++) {
                double v = (mk[j] & LT_CON_DENOM) ? exp((double)z[j] - lse) : 0.0;
                if (mk[j] & LT_CON_POS) v -= 1.0 / np;
                g[j] = (float)(v / nv);
            }
    }
    *loss = nv ? total / nv : 0.0;
    if (!isfinite(*loss)) return lt_err(LT_ENUM, "masked_contrast: loss is not finite");
    return LT_OK;
}

void lt_queue_contrast_mask(int N, const int32_t *y, int K, const int32_t *qlabels, uint8_t *mask)
{
    const size_t M = (size_t)K + 1;
    for (int i = 0; i < N; i++) {
        uint8_t *r = mask + (size_t)i * M;
        r[0] = LT_CON_DENOM | LT_CON_POS;
        for (int j = 0; j < K; j++) r[1 + j] = qlabels[j] != y[i] ? LT_CON_DENOM : 0;
    }
}

/* ---- distillation ---------------------------------------------------------------- */

int lt_kd_loss(int N, int C, const float *student, const float *teacher, float T, float *probs,
               double *loss, float *dstudent)
{
    if (N <= 0 || C <= 0 || !student || !teacher || !probs || !loss)
        return lt_err(LT_EINVAL, "kd: bad arguments (N %d, C %d)", N, C);
    if (!(T > 0.0f) || !isfinite(T)) return lt_err(LT_EINVAL, "kd: temperature %g must be > 0", (double)T);
    for (int i = 0; i < N; i++) {
        const float *t = teacher + (size_t)i * C;
        float *p = probs + (size_t)i * C;
        double m = -INFINITY, s = 0;
        for (int j = 0; j < C; j++) {
            if (!isfinite(t[j])) return lt_err(LT_ENUM, "kd: teacher logit[%d,%d] is not finite", i, j);
            if (t[j] / T > m) m = t[j] / (double)T;
        }
        for (int j = 0; j < C; j++) s += exp(t[j] / (double)T - m);
        for (int j = 0; j < C; j++) p[j] = (float)(exp(t[j] / (double)T - m) / s);
    }
    return lt_soft_ce(N, C, student, probs, T, 1, loss, dstudent);
}

void lt_l2_normalize_rows(int n, int d, const float *x, float eps, float *y)
{
    for (int i = 0; i < n; i++) {
        const float *r = x + (size_t)i * d;
        double ss = 0;
        for (int k = 0; k < d; k++) ss += (double)r[k] * r[k];
        const double inv = 1.0 / fmax(sqrt(ss), (double)eps);
        for (int k = 0; k < d; k++) y[(size_t)i * d + k] = (float)(r[k] * inv);
    }
}

/* ---- class activation maps --------------------------------------------------------- */

/* PyTorch's source coordinate for align_corners = False, clamped at 0. */
static void src_index(int o, int in, int out, int *i0, int *i1, float *l)
{
    float s = ((float)o + 0.5f) * ((float)in / (float)out) - 0.5f;
    if (s < 0.0f) s = 0.0f;
    int a = (int)s;
    if (a > in - 1) a = in - 1;
    *i0 = a;
    *i1 = a < in - 1 ? a + 1 : a;
    *l = s - (float)a;
}

void lt_resize_bilinear(int H, int W, const float *in, int oh, int ow, float *out)
{
    for (int y = 0; y < oh; y++) {
        int y0, y1;
        float ly;
        src_index(y, H, oh, &y0, &y1, &ly);
        for (int x = 0; x < ow; x++) {
            int x0, x1;
            float lx;
            src_index(x, W, ow, &x0, &x1, &lx);
            out[(size_t)y * ow + x] = (1.0f - ly) * ((1.0f - lx) * in[(size_t)y0 * W + x0] + lx * in[(size_t)y0 * W + x1]) +
                                      ly * ((1.0f - lx) * in[(size_t)y1 * W + x0] + lx * in[(size_t)y1 * W + x1]);
        }
    }
}

int lt_cam(int N, int K, int H, int W, const float *F, int C, const float *Wc, const int32_t *cls,
           int oh, int ow, float *cam, float *ws)
{
    if (N <= 0 || K <= 0 || H <= 0 || W <= 0 || C <= 0 || oh <= 0 || ow <= 0 || !F || !Wc || !cls || !cam || !ws)
        return lt_err(LT_EINVAL, "cam: bad arguments");
    const size_t HW = (size_t)H * W, O = (size_t)oh * ow;
    for (int i = 0; i < N; i++)
        if (cls[i] < 0 || cls[i] >= C) return lt_err(LT_EINVAL, "cam: class %d of sample %d outside [0, %d)", (int)cls[i], i, C);
    for (int i = 0; i < N; i++) {
        const float *w = Wc + (size_t)cls[i] * K, *f = F + (size_t)i * K * HW;
        for (size_t p = 0; p < HW; p++) ws[p] = 0.0f;
        for (int k = 0; k < K; k++)
            for (size_t p = 0; p < HW; p++) ws[p] += w[k] * f[(size_t)k * HW + p];
        float *o = cam + (size_t)i * O;
        lt_resize_bilinear(H, W, ws, oh, ow, o);
        float mn = o[0], mx = o[0];
        for (size_t p = 1; p < O; p++) {
            mn = o[p] < mn ? o[p] : mn;
            mx = o[p] > mx ? o[p] : mx;
        }
        const float span = mx - mn;
        for (size_t p = 0; p < O; p++) o[p] = span > 0.0f ? (o[p] - mn) / span : 0.0f;
    }
    return LT_OK;
}
