/* lt_model_host.c — a device model's plugin layers that have no device code
 * (no forward_cuda: a method's layer is built by cc and cannot carry
 * kernels) run on the host, as ggml's scheduler gives an op its backend
 * lacks to the CPU.
 *
 * Every buffer such a node reaches through the accessors stays where the
 * model planned it (device memory), so the model's own bookkeeping (the
 * first-writer dy rule, a sub-graph's swapped buffers, the checkpoint) does
 * not change. For one call the node's view is moved to host mirrors: what
 * the call may read is copied down (inputs, its parameters and buffers; in
 * backward also dy, its saved floats, the gradients it accumulates into),
 * the layer's own CPU forward or backward runs with the model's pointers
 * swapped to the mirrors, then what it may have written is copied up (y,
 * saved and buffers; dx and the parameter gradients) and every pointer is
 * put back, whatever happened. The arithmetic is the layer's CPU code on
 * the same floats: the node's outputs are the cpu model's bits given the
 * same inputs.
 *
 * Mirrors are planned with the batch (lt_model_set_batch) and with each
 * sub-graph (lt_subgraph_create), never in a forward or backward. The
 * copies wait for the device (each is synchronous), so a model with such a
 * node is not captured into a CUDA graph (lt_step runs it eagerly); the
 * seconds spent in these calls, copies included, are counted
 * (lt_model_host_seconds; the wait for the device work queued before a
 * call is not). */
#include "lt_backend_impl.h"
#include "lt_model_impl.h"

#include <stdlib.h>
#include <string.h>

int lt_model_host_node(const lt_model *m, const lt_node *nd) {
    return m->dev && nd->kind == LT_LK_PLUGIN && !(nd->ops->abi >= 3 && nd->ops->forward_cuda);
}

int lt_model_n_host_nodes(const lt_model *m) {
    int n = 0;
    for (int i = 1; i < m->n_nodes; i++) n += lt_model_host_node(m, &m->nodes[i]);
    return n;
}

const lt_node *lt_model_first_host_node(const lt_model *m) {
    for (int i = 1; i < m->n_nodes; i++)
        if (lt_model_host_node(m, &m->nodes[i])) return &m->nodes[i];
    return NULL;
}

double lt_model_host_seconds(const lt_model *m) { return m->host ? m->host->seconds : 0; }

/* ---- planning ------------------------------------------------------------------------ */

static size_t rnd16(size_t n) { return (n + 15) & ~(size_t)15; }

/* The distinct input nodes of nd (a node may read one input twice). */
static int distinct_in(const lt_node *nd, int k) { return !(k == 1 && nd->in[1] == nd->in[0]); }

/* One call's host mirrors (h*) in the arena, and the floats of each it
 * copies for the call's rows (n*). */
typedef struct {
    float *hx[LT_MAX_IN], *hdx[LT_MAX_IN], *hy, *hdy, *hsaved, *hscratch;
    size_t nx[LT_MAX_IN], ny, nsaved_rows, nsaved_fixed;
} host_view;

/* The arena's layout for a call on nd of N rows with room for R rows: for
 * each distinct input x and dx, then y, dy, the saved floats (laid out for
 * R rows: the model's batch during a call is at most R) and the layer's
 * scratch. Fills v with pointers into `base` when it is not NULL; returns
 * the floats the layout takes, so planning (base NULL) and carving share
 * one layout. */
static size_t layout(const lt_model *m, const lt_node *nd, int R, int N, float *base, host_view *v) {
    size_t off = 0;
#define TAKE(ptr, floats) (((ptr) = base ? base + off : NULL), off += rnd16(floats))
    memset(v, 0, sizeof *v);
    for (int k = 0; k < nd->n_in; k++) {
        const size_t per = lt_shape_count(m->nodes[nd->in[k]].shape);
        v->nx[k] = (size_t)N * per;
        if (!distinct_in(nd, k)) {
            v->hx[k] = v->hx[0];
            v->hdx[k] = v->hdx[0];
            continue;
        }
        TAKE(v->hx[k], (size_t)R * per);
        TAKE(v->hdx[k], (size_t)R * per);
    }
    const size_t per = lt_shape_count(nd->shape);
    v->ny = (size_t)N * per;
    TAKE(v->hy, (size_t)R * per);
    TAKE(v->hdy, (size_t)R * per);
    v->nsaved_rows = (size_t)N * nd->saved_per_sample;
    v->nsaved_fixed = nd->saved_fixed;
    TAKE(v->hsaved, (size_t)R * nd->saved_per_sample + nd->saved_fixed);
    if (nd->ops->scratch) TAKE(v->hscratch, nd->ops->scratch(nd, R));
#undef TAKE
    return off;
}

void lt_model_host_free(lt_model *m) {
    if (!m->host) return;
    lt_free(m->host->w);
    lt_free(m->host->g);
    lt_free(m->host->buf);
    lt_free(m->host->arena);
    free(m->host->labels);
    free(m->host);
    m->host = NULL;
}

int lt_model_host_plan(lt_model *m, int rows) {
    if (!m->dev || !lt_model_n_host_nodes(m)) return LT_OK;
    if (!m->host) {
        m->host = calloc(1, sizeof *m->host);
        if (!m->host) return lt_err(LT_ENOMEM, "model: out of memory for the host layers' mirrors");
        /* the parameter and buffer blocks at their offsets, so the
         * accessors' arithmetic holds; only a node's own ranges are copied */
        m->host->w = lt_alloc((m->n_w ? m->n_w : 1) * sizeof(float));
        m->host->g = lt_alloc((m->n_w ? m->n_w : 1) * sizeof(float));
        m->host->buf = lt_alloc((m->n_b ? m->n_b : 1) * sizeof(float));
        if (!m->host->w || !m->host->g || !m->host->buf) {
            lt_model_host_free(m);
            return lt_err(LT_ENOMEM, "model: out of host memory for the host layers' parameters (%zu MB)",
                          (2 * m->n_w + m->n_b) * 4 >> 20);
        }
    }
    lt_model_host *h = m->host;
    if (rows <= h->rows) return LT_OK;
    size_t need = 0;
    for (int i = 1; i < m->n_nodes; i++)
        if (lt_model_host_node(m, &m->nodes[i])) {
            host_view v;
            const size_t f = layout(m, &m->nodes[i], rows, rows, NULL, &v);
            if (f > need) need = f;
        }
    float *a = lt_alloc(need * sizeof(float));
    int32_t *lab = malloc((size_t)rows * sizeof(int32_t));
    if (!a || !lab) {
        lt_free(a);
        free(lab);
        return lt_err(LT_ENOMEM, "model: out of host memory for the host layers' mirrors (%d rows, %zu MB)", rows,
                      need * 4 >> 20);
    }
    lt_free(h->arena);
    free(h->labels);
    h->arena = a;
    h->labels = lab;
    h->rows = rows;
    return LT_OK;
}

/* ---- one call ------------------------------------------------------------------------ */

/* The span [*lo, *hi) of the flat block holding node nd's parameters
 * (bufs 0) or buffers (bufs 1); empty when it has none. */
static void span(const lt_model *m, const lt_node *nd, int bufs, size_t *lo, size_t *hi) {
    *lo = *hi = 0;
    const int n = bufs ? nd->nb : nd->np;
    for (int k = 0; k < n; k++) {
        const size_t off = bufs ? m->bufs[nd->b0 + k].off : m->params[nd->p0 + k].off;
        const size_t end = off + (bufs ? m->bufs[nd->b0 + k].count : m->params[nd->p0 + k].count);
        if (k == 0 || off < *lo) *lo = off;
        if (end > *hi) *hi = end;
    }
}

/* What the swap replaced, to put back. */
typedef struct {
    float *y, *dy, *saved;
    float *in_y[LT_MAX_IN], *in_dy[LT_MAX_IN];
    float *w, *g, *buf, *scratch;
    size_t scratch_floats;
    const int32_t *labels_now;
    const struct lt_dev_ops *dev;
    struct lt_cuda_ctx *dctx;
} host_save;

static int d2h(lt_model *m, void *dst, const void *src, size_t floats) {
    return floats ? m->dev->d2h(m->dctx, dst, src, floats * sizeof(float)) : LT_OK;
}
static int h2d(lt_model *m, void *dst, const void *src, size_t floats) {
    return floats ? m->dev->h2d(m->dctx, dst, src, floats * sizeof(float)) : LT_OK;
}

/* Carves the arena for nd's call of N rows. An in-place layer's y is its
 * input's on the device; on the host they are two mirrors (the layer reads
 * its input's and writes its own, then y is copied up over the input), the
 * same values for the elementwise layers LT_LAYER_IN_PLACE allows. */
static int carve(lt_model *m, const lt_node *nd, int N, host_view *v) {
    lt_model_host *h = m->host;
    if (!h || N > h->rows || m->batch > h->rows)
        return lt_err(LT_ESTATE, "model on %s: host layer '%s' (%s) has mirrors for %d rows, called with %d (batch %d)",
                      lt_backend_describe(m->backend), nd->name, lt_node_type(nd), h ? h->rows : 0, N, m->batch);
    layout(m, nd, h->rows, N, h->arena, v);
    return LT_OK;
}

/* The saved floats: the rows' part at the start, the fixed part after the
 * model's batch of rows (lt_node_saved_fixed). */
static int saved_copy(lt_model *m, const lt_node *nd, const host_view *v, int up) {
    if (!nd->saved) return LT_OK;
    const size_t fx = nd->saved_per_sample * (size_t)m->batch;
    if (up) {
        LT_TRY(h2d(m, nd->saved, v->hsaved, v->nsaved_rows));
        return h2d(m, nd->saved + fx, v->hsaved + fx, v->nsaved_fixed);
    }
    LT_TRY(d2h(m, v->hsaved, nd->saved, v->nsaved_rows));
    return d2h(m, v->hsaved + fx, nd->saved + fx, v->nsaved_fixed);
}

static void swap_in(lt_model *m, lt_node *nd, const host_view *v, host_save *s) {
    lt_model_host *h = m->host;
    s->y = nd->y, s->dy = nd->dy, s->saved = nd->saved;
    for (int k = 0; k < nd->n_in; k++) {
        lt_node *src = &m->nodes[nd->in[k]];
        s->in_y[k] = src->y;
        s->in_dy[k] = src->dy;
    }
    for (int k = 0; k < nd->n_in; k++) {
        lt_node *src = &m->nodes[nd->in[k]];
        src->y = v->hx[k];
        src->dy = v->hdx[k];
    }
    nd->y = v->hy;
    nd->dy = v->hdy;
    nd->saved = s->saved ? v->hsaved : NULL;
    s->w = m->w, s->g = m->g, s->buf = m->buf;
    s->scratch = m->scratch, s->scratch_floats = m->scratch_floats;
    s->labels_now = m->labels_now;
    s->dev = m->dev, s->dctx = m->dctx;
    m->w = h->w, m->g = h->g, m->buf = h->buf;
    m->scratch = v->hscratch;
    m->scratch_floats = v->hscratch ? nd->ops->scratch(nd, h->rows) : 0;
    m->labels_now = m->labels_now ? h->labels : NULL;
    /* the layer runs as on a cpu model: nothing it calls sees the device */
    m->dev = NULL;
    m->dctx = NULL;
}

static void swap_out(lt_model *m, lt_node *nd, const host_save *s) {
    m->dev = s->dev, m->dctx = s->dctx;
    m->w = s->w, m->g = s->g, m->buf = s->buf;
    m->scratch = s->scratch, m->scratch_floats = s->scratch_floats;
    m->labels_now = s->labels_now;
    nd->y = s->y, nd->dy = s->dy, nd->saved = s->saved;
    /* in reverse, so a node read twice gets its own pointers back */
    for (int k = nd->n_in - 1; k >= 0; k--) {
        lt_node *src = &m->nodes[nd->in[k]];
        src->y = s->in_y[k];
        src->dy = s->in_dy[k];
    }
}

/* Down: the inputs, the node's parameters and buffers, the labels. */
static int common_down(lt_model *m, const lt_node *nd, const host_view *v) {
    lt_model_host *h = m->host;
    for (int k = 0; k < nd->n_in; k++)
        if (distinct_in(nd, k)) LT_TRY(d2h(m, v->hx[k], m->nodes[nd->in[k]].y, v->nx[k]));
    size_t lo, hi;
    span(m, nd, 0, &lo, &hi);
    LT_TRY(d2h(m, h->w + lo, m->w + lo, hi - lo));
    span(m, nd, 1, &lo, &hi);
    LT_TRY(d2h(m, h->buf + lo, m->buf + lo, hi - lo));
    /* once per forward: every host layer of the pass reads the same labels */
    if (m->labels_now && m->n_labels_now > 0 && !h->labels_ok) {
        const int n = m->n_labels_now < h->rows ? m->n_labels_now : h->rows;
        LT_TRY(m->dev->d2h(m->dctx, h->labels, m->labels_now, (size_t)n * sizeof(int32_t)));
        h->labels_ok = 1;
    }
    return LT_OK;
}

static int buffers_up(lt_model *m, const lt_node *nd) {
    size_t lo, hi;
    span(m, nd, 1, &lo, &hi);
    return h2d(m, m->buf + lo, m->host->buf + lo, hi - lo);
}

/* The device work queued before the call is waited for first, outside the
 * counted time: host_seconds is what the host layer adds (its copies and
 * its CPU code), not the device's earlier layers, which the first copy
 * would otherwise wait for. */
static int host_forward(lt_model *m, lt_node *nd, int N) {
    LT_TRY(m->dev->sync(m->dctx));
    const double t0 = lt_now_s();
    host_view v;
    LT_TRY(carve(m, nd, N, &v));
    LT_TRY(common_down(m, nd, &v));
    host_save s;
    swap_in(m, nd, &v, &s);
    const int rc = nd->ops->forward(m, nd, N);
    swap_out(m, nd, &s);
    if (rc) return rc;
    LT_TRY(h2d(m, nd->y, v.hy, v.ny));
    LT_TRY(saved_copy(m, nd, &v, 1));
    LT_TRY(buffers_up(m, nd));
    m->host->seconds += lt_now_s() - t0;
    return LT_OK;
}

static int host_backward(lt_model *m, lt_node *nd, int N) {
    LT_TRY(m->dev->sync(m->dctx));
    const double t0 = lt_now_s();
    lt_model_host *h = m->host;
    host_view v;
    LT_TRY(carve(m, nd, N, &v));
    LT_TRY(common_down(m, nd, &v));
    LT_TRY(d2h(m, v.hy, nd->y, v.ny));
    LT_TRY(d2h(m, v.hdy, nd->dy, v.ny));
    LT_TRY(saved_copy(m, nd, &v, 0));
    /* the gradients it accumulates into; a dx it overwrites (dx_set: for an
     * input read twice, the first read's flag says how the mirror starts) is
     * not read */
    for (int k = 0; k < nd->n_in; k++) {
        const lt_node *src = &m->nodes[nd->in[k]];
        if (nd->in[k] > 0 && src->need_dy && distinct_in(nd, k) && !nd->dx_set[k])
            LT_TRY(d2h(m, v.hdx[k], src->dy, v.nx[k]));
    }
    size_t lo, hi;
    span(m, nd, 0, &lo, &hi);
    LT_TRY(d2h(m, h->g + lo, m->g + lo, hi - lo));
    host_save s;
    swap_in(m, nd, &v, &s);
    const int rc = nd->ops->backward(m, nd, N);
    swap_out(m, nd, &s);
    if (rc) return rc;
    for (int k = 0; k < nd->n_in; k++) {
        const lt_node *src = &m->nodes[nd->in[k]];
        if (nd->in[k] > 0 && src->need_dy && distinct_in(nd, k)) LT_TRY(h2d(m, src->dy, v.hdx[k], v.nx[k]));
    }
    LT_TRY(h2d(m, m->g + lo, h->g + lo, hi - lo));
    LT_TRY(buffers_up(m, nd));
    h->seconds += lt_now_s() - t0;
    return LT_OK;
}

lt_layer_fn lt_model_host_fn(int bwd) { return bwd ? host_backward : host_forward; }
