/* lt_sampler.c — one epoch's list of sample indices.
 *
 * Every epoch draws from its own Philox stream derived from (seed, stream,
 * epoch), so an epoch's order can be regenerated on resume without replaying
 * earlier epochs, and epochs are independent of each other.
 *
 * The class-level i.i.d. samplers (CLASS_BALANCED, SQRT, PROGRESSIVE,
 * WEIGHTS) pick a class from lt_sampler_class_probs and then a uniform
 * member of that class, i.e. per-sample weights p_y / n_y with replacement.
 * Classes with no samples get probability 0 (they cannot be drawn), and
 * "1/C" means 1 / (number of non-empty classes).
 *
 * PROGRESSIVE follows the decoupling code (Kang et al. 2020,
 * ClassPrioritySampler; specs/methods-a.md §2): for 0-based epoch e of E,
 * lambda = e / (E - 1), so epoch 0 is instance-balanced and the last epoch
 * e = E - 1 is class-balanced; p_j = (1 - lambda) n_j/N + lambda / C.
 * lambda is clamped to [0, 1] (epochs past E stay balanced) and is 0 when
 * E == 1.
 *
 * CLASS_AWARE reproduces decoupling's ClassAwareSampler within one epoch:
 * a shuffled cycle of classes (reshuffled each time it wraps), and per
 * class visit the next k items of that class's own shuffled cycle
 * (reshuffled when it wraps). Unlike the reference, whose iterators persist
 * across epochs, the cycles restart each epoch from the epoch's stream so
 * that any epoch can be regenerated on its own.
 *
 * OVER_UNDER reproduces CBD's class-balanced stream (google-research
 * class_balanced_distillation, input_pipeline.py oversample_classes +
 * undersampling_filter, deterministic_data.py create_dataset): with
 * r_j = (1/C) / (n_j/N) (C = non-empty classes), one PASS over the data
 * gives sample i of class j floor(r_j) copies plus one more when u <=
 * max(r_j, 1) - floor(r_j) (so a head class, r_j < 1, always gets exactly
 * one), and keeps each copy when u <= min(r_j, 1); the pass is then
 * shuffled. The official pipeline repeats such passes without caching, so
 * every pass draws afresh and an "epoch" (N samples, the step count being
 * floor(N/B) x epochs) does not align with a pass. Here the stream is the
 * concatenation of passes p = 0, 1, ... (pass p from its own stream
 * derived from (seed, stream, p, 1)), and epoch e is its slice
 * [e * n_out, (e + 1) * n_out): regenerating epoch e replays the copy and
 * keep draws of the passes before it (O(e * N) uniforms, no shuffles), so
 * any epoch is still reproducible on its own. One difference: the official
 * code shuffles with a 1000-element buffer over the repeated stream; a
 * pass here is a full permutation (documented in methods/cbd/README.md). */
#include "lt_data.h"
#include "lt_sampler_ws.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int lt_sampler_class_probs(const lt_sampler_cfg *cfg, int epoch, int n_classes,
                           const long *counts, double *p)
{
    if (!cfg || !counts || !p || n_classes <= 0)
        return lt_err(LT_EINVAL, "sampler: bad class-probability arguments");
    if (epoch < 0)
        return lt_err(LT_EINVAL, "sampler: negative epoch %d", epoch);
    double total = 0;
    int nonempty = 0;
    for (int j = 0; j < n_classes; j++) {
        if (counts[j] < 0)
            return lt_err(LT_EINVAL, "sampler: class %d has negative count %ld", j, counts[j]);
        total += (double)counts[j];
        nonempty += counts[j] > 0;
    }
    if (nonempty == 0)
        return lt_err(LT_EINVAL, "sampler: no samples in any class");

    switch (cfg->kind) {
    case LT_SAMPLER_INSTANCE:
        for (int j = 0; j < n_classes; j++)
            p[j] = (double)counts[j] / total;
        return LT_OK;
    case LT_SAMPLER_CLASS_BALANCED:
    case LT_SAMPLER_CLASS_AWARE:
    case LT_SAMPLER_OVER_UNDER:   /* expected class frequency N/C each */
        for (int j = 0; j < n_classes; j++)
            p[j] = counts[j] > 0 ? 1.0 / nonempty : 0.0;
        return LT_OK;
    case LT_SAMPLER_SQRT: {
        double s = 0;
        for (int j = 0; j < n_classes; j++)
            s += sqrt((double)counts[j]);
        for (int j = 0; j < n_classes; j++)
            p[j] = sqrt((double)counts[j]) / s;
        return LT_OK;
    }
    case LT_SAMPLER_PROGRESSIVE: {
        int E = cfg->total_epochs;
        if (E <= 0)
            return lt_err(LT_EINVAL, "sampler: progressive needs total_epochs > 0 (got %d)", E);
        double lam = E > 1 ? (double)epoch / (double)(E - 1) : 0.0;
        if (lam > 1.0)
            lam = 1.0;
        for (int j = 0; j < n_classes; j++)
            p[j] = counts[j] > 0
                       ? (1.0 - lam) * (double)counts[j] / total + lam / nonempty
                       : 0.0;
        return LT_OK;
    }
    case LT_SAMPLER_WEIGHTS: {
        if (!cfg->class_weights)
            return lt_err(LT_EINVAL, "sampler: WEIGHTS needs class_weights");
        double s = 0;
        for (int j = 0; j < n_classes; j++) {
            double w = cfg->class_weights[j];
            if (!isfinite(w) || w < 0)
                return lt_err(LT_EINVAL, "sampler: class weight %d = %g is not finite and >= 0", j, w);
            if (counts[j] > 0)
                s += w;
        }
        if (!(s > 0))
            return lt_err(LT_EINVAL, "sampler: class weights of the non-empty classes sum to 0");
        for (int j = 0; j < n_classes; j++)
            p[j] = counts[j] > 0 ? cfg->class_weights[j] / s : 0.0;
        return LT_OK;
    }
    }
    return lt_err(LT_EINVAL, "sampler: unknown kind %d", (int)cfg->kind);
}

/* Per-epoch working memory: per-class member lists in CSR form. */
typedef struct {
    long *counts;     /* [C] */
    long *offs;       /* [C+1] start of class j in members */
    long *pos;        /* [C] CLASS_AWARE: next position in class j's cycle */
    int32_t *members; /* [n] sample indices grouped by class, ascending within */
    int32_t *classes; /* [C] non-empty classes */
    double *p, *cdf;  /* [C] */
    int nonempty;
} sampler_work;

/* The working memory kept across epochs (lt_sampler_ws.h): the arrays
 * grow to the largest (n, C) asked for and are otherwise reused, so a
 * caller inside the training loop allocates nothing when an epoch turns. */
struct lt_sampler_ws {
    sampler_work w;
    long cap_n;       /* members */
    int cap_C;        /* counts, pos, classes, p, cdf; offs C + 1 */
    int32_t *perm;    /* [cap_perm] INSTANCE: a whole permutation when only its head is kept */
    long cap_perm;
};

int lt_sampler_ws_create(lt_sampler_ws **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? LT_OK : lt_err(LT_ENOMEM, "sampler: out of memory");
}

static void ws_release(lt_sampler_ws *ws)
{
    sampler_work *w = &ws->w;
    free(w->counts);
    free(w->offs);
    free(w->pos);
    free(w->members);
    free(w->classes);
    free(w->p);
    free(w->cdf);
    free(ws->perm);
    memset(ws, 0, sizeof *ws);
}

void lt_sampler_ws_free(lt_sampler_ws *ws)
{
    if (!ws) return;
    ws_release(ws);
    free(ws);
}

/* realloc *p to n elements of size sz when cap < n */
static int grow(void **p, size_t n, size_t sz)
{
    void *q = realloc(*p, (n > 0 ? n : 1) * sz);
    if (!q) return -1;
    *p = q;
    return 0;
}

static int ws_reserve(lt_sampler_ws *ws, long n, int C)
{
    sampler_work *w = &ws->w;
    if (C > ws->cap_C) {
        if (grow((void **)&w->counts, (size_t)C, sizeof *w->counts) ||
            grow((void **)&w->offs, (size_t)C + 1, sizeof *w->offs) ||
            grow((void **)&w->pos, (size_t)C, sizeof *w->pos) ||
            grow((void **)&w->classes, (size_t)C, sizeof *w->classes) ||
            grow((void **)&w->p, (size_t)C, sizeof *w->p) || grow((void **)&w->cdf, (size_t)C, sizeof *w->cdf))
            return lt_err(LT_ENOMEM, "sampler: out of memory for %d classes", C);
        ws->cap_C = C;
    }
    if (n > ws->cap_n) {
        if (grow((void **)&w->members, (size_t)n, sizeof *w->members))
            return lt_err(LT_ENOMEM, "sampler: out of memory for %ld samples", n);
        ws->cap_n = n;
    }
    return LT_OK;
}

/* The class member lists of labels[0..n) into ws (reserved for n, C),
 * every per-class array starting from zero. */
static int work_build(lt_sampler_ws *ws, const int32_t *labels, long n, int C)
{
    LT_TRY(ws_reserve(ws, n, C));
    sampler_work *w = &ws->w;
    memset(w->counts, 0, (size_t)C * sizeof *w->counts);
    memset(w->offs, 0, ((size_t)C + 1) * sizeof *w->offs);
    memset(w->pos, 0, (size_t)C * sizeof *w->pos);
    memset(w->p, 0, (size_t)C * sizeof *w->p);
    memset(w->cdf, 0, (size_t)C * sizeof *w->cdf);
    w->nonempty = 0;
    for (long i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= C) {
            return lt_err(LT_EINVAL, "sampler: label %d of sample %ld outside [0, %d)",
                          (int)labels[i], i, C);
        }
        w->counts[labels[i]]++;
    }
    for (int j = 0; j < C; j++) {
        w->offs[j + 1] = w->offs[j] + w->counts[j];
        if (w->counts[j] > 0)
            w->classes[w->nonempty++] = j;
    }
    /* pos doubles as a fill cursor here, then is reset for CLASS_AWARE. */
    for (long i = 0; i < n; i++)
        w->members[w->offs[labels[i]] + w->pos[labels[i]]++] = (int32_t)i;
    return LT_OK;
}

static int sample_instance(lt_rng *r, lt_sampler_ws *ws, long n, int32_t *out, long n_out)
{
    /* n_out > n concatenates independent permutations; a trailing partial
     * block is the head of one more full permutation. */
    for (long start = 0; start < n_out; start += n) {
        long m = n_out - start < n ? n_out - start : n;
        int32_t *dst = out + start, *perm = dst;
        if (m < n) {
            if (n > ws->cap_perm) {
                if (grow((void **)&ws->perm, (size_t)n, sizeof *ws->perm))
                    return lt_err(LT_ENOMEM, "sampler: out of memory for a permutation of %ld", n);
                ws->cap_perm = n;
            }
            perm = ws->perm;
        }
        for (long i = 0; i < n; i++)
            perm[i] = (int32_t)i;
        lt_rng_shuffle_i32(r, perm, n);
        if (perm != dst)
            memcpy(dst, perm, (size_t)m * sizeof *dst);
    }
    return LT_OK;
}

static void sample_class_aware(lt_rng *r, sampler_work *w, int k, int32_t *out, long n_out)
{
    int nc = w->nonempty;
    int ci = nc;  /* past the end: the first visit shuffles, like RandomCycleIter */
    for (int j = 0; j < nc; j++)
        w->pos[w->classes[j]] = w->counts[w->classes[j]];
    long o = 0;
    while (o < n_out) {
        if (ci == nc) {
            lt_rng_shuffle_i32(r, w->classes, nc);
            ci = 0;
        }
        int c = w->classes[ci++];
        int32_t *list = w->members + w->offs[c];
        for (int t = 0; t < k && o < n_out; t++) {
            if (w->pos[c] == w->counts[c]) {
                lt_rng_shuffle_i32(r, list, w->counts[c]);
                w->pos[c] = 0;
            }
            out[o++] = list[w->pos[c]++];
        }
    }
}

static void sample_iid(lt_rng *r, sampler_work *w, int C, int uniform_classes,
                       int32_t *out, long n_out)
{
    int last = 0;
    double acc = 0;
    for (int j = 0; j < C; j++) {
        acc += w->p[j];
        w->cdf[j] = acc;
        if (w->p[j] > 0)
            last = j;
    }
    /* Rounding may leave the total a hair below 1; the last drawable class
     * takes the remainder so u in [0,1) always lands on a class. */
    for (int j = last; j < C; j++)
        w->cdf[j] = 1.0;
    for (long o = 0; o < n_out; o++) {
        int c;
        if (uniform_classes) {
            c = w->classes[lt_rng_below(r, (uint32_t)w->nonempty)];
        } else {
            double u = lt_rng_uniform(r);
            int lo = 0, hi = C - 1;  /* first j with cdf[j] > u */
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (w->cdf[mid] > u)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            c = lo;
        }
        out[o] = w->members[w->offs[c] + (long)lt_rng_below(r, (uint32_t)w->counts[c])];
    }
}

/* One OVER_UNDER pass: the copy and keep draws over samples 0..n-1 in
 * order, then (when out is given) a shuffle of the kept indices. Returns
 * the pass length; with out = NULL only the draws that decide the length
 * are made, the same ones the full pass makes first. */
static long over_under_pass(lt_rng *r, const int32_t *labels, long n, const double *ratio, int32_t *out)
{
    long m = 0;
    for (long i = 0; i < n; i++) {
        const double rt = ratio[labels[i]];
        const double fl = floor(rt);
        const double resid = (rt > 1.0 ? rt : 1.0) - fl;
        long copies = (long)fl + (lt_rng_uniform(r) <= resid);
        const double keep = rt < 1.0 ? rt : 1.0;
        for (long k = 0; k < copies; k++)
            if (lt_rng_uniform(r) <= keep) {
                if (out)
                    out[m] = (int32_t)i;
                m++;
            }
    }
    if (out)
        lt_rng_shuffle_i32(r, out, m);
    return m;
}

static int sample_over_under(const lt_rng *base, const sampler_work *w, const int32_t *labels, long n, int C,
                             int epoch, int32_t *out, long n_out)
{
    double *ratio = malloc((size_t)C * sizeof *ratio);
    if (!ratio)
        return lt_err(LT_ENOMEM, "sampler: out of memory");
    long bound = 0;
    for (int j = 0; j < C; j++) {
        /* target 1/C over base n_j/N; empty classes are never drawn */
        ratio[j] = w->counts[j] > 0 ? ((double)n / (double)w->nonempty) / (double)w->counts[j] : 0.0;
        bound += w->counts[j] * ((long)floor(ratio[j] > 1.0 ? ratio[j] : 1.0) + 1);
    }
    int32_t *pass = malloc((size_t)(bound > 0 ? bound : 1) * sizeof *pass);
    if (!pass) {
        free(ratio);
        return lt_err(LT_ENOMEM, "sampler: out of memory for a pass of up to %ld", bound);
    }
    const long start = (long)epoch * n_out;
    long pos = 0, o = 0;
    int empty_run = 0;
    for (uint64_t p = 0; o < n_out; p++) {
        lt_rng r;
        lt_rng_derive(&r, base, p, 1);
        long len = over_under_pass(&r, labels, n, ratio, NULL);
        if (len == 0) {
            if (++empty_run == 64) {
                free(pass);
                free(ratio);
                return lt_err(LT_EINVAL, "sampler: over/under-sampling kept nothing in 64 passes");
            }
            continue;
        }
        empty_run = 0;
        if (pos + len <= start) {   /* before this epoch: only its length matters */
            pos += len;
            continue;
        }
        lt_rng_derive(&r, base, p, 1);
        over_under_pass(&r, labels, n, ratio, pass);
        long from = start > pos ? start - pos : 0;
        long take = len - from < n_out - o ? len - from : n_out - o;
        memcpy(out + o, pass + from, (size_t)take * sizeof *out);
        o += take;
        pos += len;
    }
    free(pass);
    free(ratio);
    return LT_OK;
}

int lt_sampler_epoch_ws(lt_sampler_ws *ws, const lt_sampler_cfg *cfg, int epoch, uint64_t seed, uint64_t stream,
                        const int32_t *labels, long n, int n_classes, int32_t *out, long n_out)
{
    if (!ws || !cfg || (!labels && n > 0) || (!out && n_out > 0) || n < 0 || n_out < 0 || n_classes <= 0)
        return lt_err(LT_EINVAL, "sampler: bad arguments (n=%ld, n_out=%ld, classes=%d)",
                      n, n_out, n_classes);
    if (epoch < 0)
        return lt_err(LT_EINVAL, "sampler: negative epoch %d", epoch);
    if (n > (long)INT32_MAX)
        return lt_err(LT_EINVAL, "sampler: %ld samples exceed int32 indices", n);
    if (n_out == 0)
        return LT_OK;
    if (n == 0)
        return lt_err(LT_EINVAL, "sampler: %ld draws requested from an empty dataset", n_out);

    lt_rng base, r;
    lt_rng_init(&base, seed, stream);
    lt_rng_derive(&r, &base, (uint64_t)epoch, 0);

    if (cfg->kind == LT_SAMPLER_INSTANCE) {
        for (long i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= n_classes)
                return lt_err(LT_EINVAL, "sampler: label %d of sample %ld outside [0, %d)",
                              (int)labels[i], i, n_classes);
        return sample_instance(&r, ws, n, out, n_out);
    }

    LT_TRY(work_build(ws, labels, n, n_classes));
    sampler_work *w = &ws->w;
    int rc = lt_sampler_class_probs(cfg, epoch, n_classes, w->counts, w->p);
    if (rc == LT_OK) {
        switch (cfg->kind) {
        case LT_SAMPLER_CLASS_AWARE:
            sample_class_aware(&r, w, cfg->k_per_class > 0 ? cfg->k_per_class : 4, out, n_out);
            break;
        case LT_SAMPLER_CLASS_BALANCED:
            sample_iid(&r, w, n_classes, 1, out, n_out);
            break;
        case LT_SAMPLER_OVER_UNDER:
            rc = sample_over_under(&base, w, labels, n, n_classes, epoch, out, n_out);
            break;
        default:
            sample_iid(&r, w, n_classes, 0, out, n_out);
            break;
        }
    }
    return rc;
}

int lt_sampler_epoch(const lt_sampler_cfg *cfg, int epoch, uint64_t seed, uint64_t stream,
                     const int32_t *labels, long n, int n_classes, int32_t *out, long n_out)
{
    lt_sampler_ws ws;
    memset(&ws, 0, sizeof ws);
    int rc = lt_sampler_epoch_ws(&ws, cfg, epoch, seed, stream, labels, n, n_classes, out, n_out);
    ws_release(&ws);
    return rc;
}
