/* lt_subgraph.c — running a range of a model's nodes on extra rows.
 *
 * The layers read their buffers through the node structs (the input's y,
 * their own y, dy and saved floats) and the model's shared scratch, so the
 * sub-graph owns a second set of those buffers, sized for max_rows once at
 * create, and points the range's nodes at them for the duration of one
 * forward or backward; everything is put back before returning. The
 * model's batch activations, and so the taps a loss hook is reading, are
 * never written. Parameter gradients are the model's own (accumulated).
 *
 * On a device model those buffers are device memory and the caller works
 * on host copies (the rows of lt_subgraph_forward, lt_subgraph_out,
 * lt_subgraph_dout are host arrays on every backend, so a method's hook
 * does not change with the device): the input rows are copied in at
 * forward, a node's output is copied out when lt_subgraph_out first asks
 * after a forward, the taps' gradients are copied in at backward, and a
 * node's gradient is copied out when lt_subgraph_dout first asks after a
 * backward. Tensors of many pixels are converted between the host's NCHW
 * and an NHWC model's layout on the device on the way. */
#include "lt_backend_impl.h"
#include "lt_model_impl.h"

#include <stdlib.h>
#include <string.h>

/* The model's pointers the sub-graph swaps, saved for restoring. */
typedef struct {
    float *y, *dy, *saved;
    unsigned char dx_set[LT_MAX_IN];
} node_save;

struct lt_subgraph {
    lt_model *m;
    int from, to, max_rows, batch;   /* batch: the rows the buffers are planned for */
    float *mem;                      /* every buffer below, one block (device memory on a device model) */
    float **y, **dy, **saved;        /* [to - from + 1], index j - from */
    float *scratch;
    size_t scratch_floats;
    node_save *save;                 /* [to - from + 1]: the model's pointers while swapped */
    const float *last_x;             /* the rows of the last forward (backward reads them again) */
    int training;                    /* mode of the last forward (its backward uses it) */
    int have_fwd;
    /* a device model's sub-graph (m->dev != NULL): the caller's side on the host */
    float *hmem;                     /* host block of hy and hdy */
    float **hy, **hdy;               /* [to - from + 1] host copies of y (nodes after from) and dy */
    float *xin;                      /* device: the forward's input rows in the model's layout */
    float *conv;                     /* device: a many-pixel tensor in NCHW on its way (NULL: none in range) */
    unsigned char *got;              /* [to - from + 1] 1: hy holds the last forward's y; 2: hdy the last backward's dy */
    lt_layout layout;                /* the model's layout at the last forward */
    int n_fwd, n_bwd;                /* rows of the last forward / backward */
    int have_bwd;                    /* a backward since the last forward */
};

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }
static int many_px(lt_shape s) { return s.h * s.w > 1; }

int lt_subgraph_create(lt_subgraph **out, lt_model *m, int from, int to, int max_rows) {
    *out = NULL;
    if (!m->finalized) return lt_err(LT_ESTATE, "sub-graph: model not finalized");
    if (from < 0 || to <= from || to >= m->n_nodes)
        return lt_err(LT_EINVAL, "sub-graph: nodes (%d, %d] are not a range of the model's %d nodes", from, to,
                      m->n_nodes);
    if (max_rows < 1) return lt_err(LT_EINVAL, "sub-graph: %d rows", max_rows);
    for (int j = from + 1; j <= to; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++)
            if (m->nodes[j].in[k] < from)
                return lt_err(LT_EINVAL, "sub-graph '%s'..'%s': node '%s' reads '%s', which is before the range",
                              m->nodes[from].name, m->nodes[to].name, m->nodes[j].name,
                              m->nodes[m->nodes[j].in[k]].name);
    lt_subgraph *sg = calloc(1, sizeof *sg);
    const int nn = to - from + 1;
    if (sg) {
        sg->y = calloc((size_t)nn, sizeof *sg->y);
        sg->dy = calloc((size_t)nn, sizeof *sg->dy);
        sg->saved = calloc((size_t)nn, sizeof *sg->saved);
        sg->save = calloc((size_t)nn, sizeof *sg->save);
        if (m->dev) {
            sg->hy = calloc((size_t)nn, sizeof *sg->hy);
            sg->hdy = calloc((size_t)nn, sizeof *sg->hdy);
            sg->got = calloc((size_t)nn, 1);
        }
    }
    if (!sg || !sg->y || !sg->dy || !sg->saved || !sg->save || (m->dev && (!sg->hy || !sg->hdy || !sg->got))) {
        lt_subgraph_free(sg);
        return lt_err(LT_ENOMEM, "sub-graph: out of memory");
    }
    sg->m = m;
    sg->from = from;
    sg->to = to;
    sg->max_rows = max_rows;
    /* every node of the range gets y, dy and saved; `from` only a dy (its
     * y is the caller's x; on a device, xin). Plugins' scratch only on a
     * device: the built-in device layers have a workspace of their own. */
    size_t total = 0, scratch = 0, widest = 0;
    for (int j = from; j <= to; j++) {
        const lt_node *nd = &m->nodes[j];
        const size_t act = round16((size_t)max_rows * lt_shape_count(nd->shape));
        const size_t sv = j == from ? 0 : round16((size_t)max_rows * nd->saved_per_sample + nd->saved_fixed);
        if (j > from && nd->ops->scratch && !(m->dev && nd->kind)) {
            size_t sc = nd->ops->scratch(nd, max_rows);
            if (sc > scratch) scratch = sc;
        }
        if (many_px(nd->shape) && act > widest) widest = act;
        total += (j == from ? 1 : 2) * act + sv;
    }
    const size_t act_from = round16((size_t)max_rows * lt_shape_count(m->nodes[from].shape));
    /* a device sub-graph's own input rows and conversion buffer after the nodes' */
    const size_t extra = m->dev ? act_from + widest : 0;
    const size_t floats = total + round16(scratch) + extra;
    int rc = LT_OK;
    if (m->dev) {
        /* host layers in the range run on mirrors sized for these rows too */
        rc = lt_model_host_plan(m, max_rows);
        if (!rc) rc = m->dev->alloc(m->dctx, (void **)&sg->mem, floats * sizeof(float));
        if (!rc) {
            /* host copies: y of the nodes after from, dy of every node */
            sg->hmem = lt_alloc(total * sizeof(float));
            if (!sg->hmem)
                rc = lt_err(LT_ENOMEM, "sub-graph: out of host memory for %d rows (%zu MB)", max_rows,
                            total * 4 >> 20);
        }
    } else {
        sg->mem = lt_alloc(floats * sizeof(float));
        if (!sg->mem) rc = lt_err(LT_ENOMEM, "sub-graph: out of memory for %d rows (%zu MB)", max_rows, floats * 4 >> 20);
    }
    if (rc) {
        lt_subgraph_free(sg);
        return rc;
    }
    size_t off = 0;
    for (int j = from; j <= to; j++) {
        const lt_node *nd = &m->nodes[j];
        const size_t act = round16((size_t)max_rows * lt_shape_count(nd->shape));
        const size_t sv = j == from ? 0 : round16((size_t)max_rows * nd->saved_per_sample + nd->saved_fixed);
        sg->y[j - from] = j == from ? NULL : sg->mem + off;
        sg->dy[j - from] = sg->mem + off + (j == from ? 0 : act);
        sg->saved[j - from] = sv ? sg->mem + off + 2 * act : NULL;
        if (sg->hmem) {   /* the same offsets in the host block (its saved parts unused) */
            sg->hy[j - from] = j == from ? NULL : sg->hmem + off;
            sg->hdy[j - from] = sg->hmem + off + (j == from ? 0 : act);
        }
        off += (j == from ? 1 : 2) * act + sv;
    }
    sg->scratch = scratch ? sg->mem + total : NULL;
    sg->scratch_floats = scratch;
    if (m->dev) {
        sg->xin = sg->mem + total + round16(scratch);
        sg->conv = widest ? sg->xin + act_from : NULL;
    }
    sg->batch = max_rows;
    *out = sg;
    return LT_OK;
}

void lt_subgraph_free(lt_subgraph *sg) {
    if (!sg) return;
    if (sg->m && sg->m->dev) sg->m->dev->free(sg->m->dctx, sg->mem);
    else lt_free(sg->mem);
    lt_free(sg->hmem);
    free(sg->y);
    free(sg->dy);
    free(sg->saved);
    free(sg->save);
    free(sg->hy);
    free(sg->hdy);
    free(sg->got);
    free(sg);
}

/* n rows of node j between the host (NCHW) and a device buffer in the
 * layout `ly`, through sg->conv when the node has many pixels and ly is
 * NHWC. */
static int dev_put(lt_subgraph *sg, int j, int n, lt_layout ly, const float *src, float *dst) {
    lt_model *m = sg->m;
    const lt_shape s = m->nodes[j].shape;
    const size_t bytes = (size_t)n * lt_shape_count(s) * sizeof(float);
    if (ly != LT_LAYOUT_NHWC || !many_px(s)) return m->dev->h2d(m->dctx, dst, src, bytes);
    LT_TRY(m->dev->h2d(m->dctx, sg->conv, src, bytes));
    return m->dev->layout_convert(m->dctx, LT_LAYOUT_NHWC, n, s.c, s.h * s.w, sg->conv, dst, 0);
}
static int dev_get(lt_subgraph *sg, int j, int n, lt_layout ly, const float *src, float *dst) {
    lt_model *m = sg->m;
    const lt_shape s = m->nodes[j].shape;
    const size_t bytes = (size_t)n * lt_shape_count(s) * sizeof(float);
    if (ly != LT_LAYOUT_NHWC || !many_px(s)) return m->dev->d2h(m->dctx, dst, src, bytes);
    LT_TRY(m->dev->layout_convert(m->dctx, LT_LAYOUT_NCHW, n, s.c, s.h * s.w, src, sg->conv, 0));
    return m->dev->d2h(m->dctx, dst, sg->conv, bytes);
}

/* Points the range at the sub-graph's buffers; *ms receives what to put back. */
typedef struct {
    node_save *nodes;
    float *scratch;
    size_t scratch_floats;
    int batch, training;
    const float *x;
} model_save;

static void swap_in(lt_subgraph *sg, model_save *ms, node_save *ns, const float *x, int training) {
    lt_model *m = sg->m;
    ms->nodes = ns;
    ms->scratch = m->scratch;
    ms->scratch_floats = m->scratch_floats;
    ms->batch = m->batch;
    ms->training = m->training;
    ms->x = m->x;
    for (int j = sg->from; j <= sg->to; j++) {
        lt_node *nd = &m->nodes[j];
        node_save *s = &ns[j - sg->from];
        s->y = nd->y;
        s->dy = nd->dy;
        s->saved = nd->saved;
        memcpy(s->dx_set, nd->dx_set, sizeof s->dx_set);
        nd->y = j == sg->from ? (float *)x : sg->y[j - sg->from];
        nd->dy = sg->dy[j - sg->from];
        nd->saved = sg->saved[j - sg->from];
        memset(nd->dx_set, 0, sizeof nd->dx_set);   /* accumulate everywhere: the dy are zeroed */
    }
    m->scratch = sg->scratch;
    m->scratch_floats = sg->scratch_floats;
    m->batch = sg->batch;      /* layers locate their saved floats' fixed part with it */
    m->training = training;
}

static void swap_out(lt_subgraph *sg, const model_save *ms) {
    lt_model *m = sg->m;
    for (int j = sg->from; j <= sg->to; j++) {
        lt_node *nd = &m->nodes[j];
        const node_save *s = &ms->nodes[j - sg->from];
        nd->y = s->y;
        nd->dy = s->dy;
        nd->saved = s->saved;
        memcpy(nd->dx_set, s->dx_set, sizeof nd->dx_set);
    }
    m->scratch = ms->scratch;
    m->scratch_floats = ms->scratch_floats;
    m->batch = ms->batch;
    m->training = ms->training;
    m->x = ms->x;
}

int lt_subgraph_forward(lt_subgraph *sg, const float *x, int n, int training) {
    if (n < 1 || n > sg->max_rows) return lt_err(LT_EINVAL, "sub-graph: %d rows (1..%d planned)", n, sg->max_rows);
    if (!x) return lt_err(LT_EINVAL, "sub-graph: no input rows");
    lt_model *m = sg->m;
    sg->have_fwd = sg->have_bwd = 0;
    if (m->dev) {
        /* the rows into the device in the layout the range runs in */
        memset(sg->got, 0, (size_t)(sg->to - sg->from + 1));
        sg->layout = m->layout;
        LT_TRY(dev_put(sg, sg->from, n, sg->layout, x, sg->xin));
        x = sg->xin;
    }
    model_save ms;
    swap_in(sg, &ms, sg->save, x, training);
    const int rc = lt_model_run_nodes(m, sg->from, sg->to, n, 0, "sub-graph forward");
    swap_out(sg, &ms);
    sg->training = training;
    sg->last_x = x;
    sg->n_fwd = n;
    sg->have_fwd = !rc;
    return rc;
}

/* A device sub-graph's host copy of node j's device buffer `dev` (got bit
 * `bit`): copied at the first ask after the pass that wrote it (have),
 * n rows; NULL when the copy fails. */
static float *host_side(lt_subgraph *sg, int node, unsigned bit, int have, int n, const float *dev, float *host) {
    const int j = node - sg->from;
    if (have && !(sg->got[j] & bit)) {
        if (dev_get(sg, node, n, sg->layout, dev, host)) return NULL;
        sg->got[j] |= (unsigned char)bit;
    }
    return host;
}

float *lt_subgraph_out(lt_subgraph *sg, int node) {
    if (node <= sg->from || node > sg->to) return NULL;
    const int j = node - sg->from;
    return sg->m->dev ? host_side(sg, node, 1, sg->have_fwd, sg->n_fwd, sg->y[j], sg->hy[j]) : sg->y[j];
}

float *lt_subgraph_dout(lt_subgraph *sg, int node) {
    if (node < sg->from || node > sg->to) return NULL;
    const int j = node - sg->from;
    return sg->m->dev ? host_side(sg, node, 2, sg->have_bwd, sg->n_bwd, sg->dy[j], sg->hdy[j]) : sg->dy[j];
}

int lt_subgraph_backward(lt_subgraph *sg, int n, const int *taps, int n_taps) {
    if (!sg->have_fwd) return lt_err(LT_ESTATE, "sub-graph: backward without a forward");
    if (n < 1 || n > sg->max_rows) return lt_err(LT_EINVAL, "sub-graph: %d rows (1..%d planned)", n, sg->max_rows);
    lt_model *m = sg->m;
    for (int t = 0; t < n_taps; t++)
        if (taps[t] <= sg->from || taps[t] > sg->to)
            return lt_err(LT_EINVAL, "sub-graph: tap %d outside nodes (%d, %d]", taps[t], sg->from, sg->to);
    if (m->dev && m->layout != sg->layout)
        return lt_err(LT_ESTATE, "sub-graph on %s: backward in another layout than its forward",
                      lt_backend_describe(m->backend));
    /* every gradient starts at zero except the taps the caller filled (on
     * a device: copied in from the host) */
    for (int j = sg->from; j <= sg->to; j++) {
        int tap = 0;
        for (int t = 0; t < n_taps; t++) tap |= taps[t] == j;
        const size_t cnt = (size_t)n * lt_shape_count(m->nodes[j].shape);
        float *dy = sg->dy[j - sg->from];
        if (!m->dev) {
            if (!tap) memset(dy, 0, cnt * sizeof(float));
        } else if (tap) {
            LT_TRY(dev_put(sg, j, n, sg->layout, sg->hdy[j - sg->from], dy));
        } else {
            LT_TRY(m->dev->memset0(m->dctx, dy, cnt * sizeof(float)));
        }
    }
    model_save ms;
    /* layers read their input again in backward (linear: dW = dy^T x): the
     * rows of the forward, which the caller keeps until backward (on a
     * device: the sub-graph's copy) */
    swap_in(sg, &ms, sg->save, sg->last_x, sg->training);
    const int rc = lt_model_run_nodes(m, sg->from, sg->to, n, 1, "sub-graph backward");
    swap_out(sg, &ms);
    if (m->dev) {
        for (int j = 0; j <= sg->to - sg->from; j++) sg->got[j] &= (unsigned char)~2u;
        sg->n_bwd = n;
        sg->have_bwd = !rc;
    }
    return rc;
}
