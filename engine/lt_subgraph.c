/* lt_subgraph.c — running a range of a model's nodes on extra rows.
 *
 * The layers read their buffers through the node structs (the input's y,
 * their own y, dy and saved floats) and the model's shared scratch, so the
 * sub-graph owns a second set of those buffers, sized for max_rows once at
 * create, and points the range's nodes at them for the duration of one
 * forward or backward; everything is put back before returning. The
 * model's batch activations, and so the taps a loss hook is reading, are
 * never written. Parameter gradients are the model's own (accumulated). */
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
    float *mem;                      /* every buffer below, one block */
    float **y, **dy, **saved;        /* [to - from + 1], index j - from */
    float *scratch;
    size_t scratch_floats;
    node_save *save;                 /* [to - from + 1]: the model's pointers while swapped */
    const float *last_x;             /* the rows of the last forward (backward reads them again) */
    int training;                    /* mode of the last forward (its backward uses it) */
    int have_fwd;
};

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

int lt_subgraph_create(lt_subgraph **out, lt_model *m, int from, int to, int max_rows) {
    *out = NULL;
    if (!m->finalized) return lt_err(LT_ESTATE, "sub-graph: model not finalized");
    if (m->dev) return lt_err(LT_EINVAL, "sub-graph: models on a device are not supported yet");
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
    }
    if (!sg || !sg->y || !sg->dy || !sg->saved || !sg->save) {
        lt_subgraph_free(sg);
        return lt_err(LT_ENOMEM, "sub-graph: out of memory");
    }
    sg->m = m;
    sg->from = from;
    sg->to = to;
    sg->max_rows = max_rows;
    /* every node of the range gets y, dy and saved; `from` only a dy (its
     * y is the caller's x) */
    size_t total = 0, scratch = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 0;
        for (int j = from; j <= to; j++) {
            const lt_node *nd = &m->nodes[j];
            const size_t act = round16((size_t)max_rows * lt_shape_count(nd->shape));
            const size_t sv = j == from ? 0 : round16((size_t)max_rows * nd->saved_per_sample + nd->saved_fixed);
            if (pass == 1) {
                sg->y[j - from] = j == from ? NULL : sg->mem + off;
                sg->dy[j - from] = sg->mem + off + (j == from ? 0 : act);
                sg->saved[j - from] = sv ? sg->mem + off + 2 * act : NULL;
            } else if (j > from && nd->ops->scratch) {
                size_t s = nd->ops->scratch(nd, max_rows);
                if (s > scratch) scratch = s;
            }
            off += (j == from ? 1 : 2) * act + sv;
        }
        total = off;
        if (pass == 0) {
            sg->mem = lt_alloc((total + round16(scratch)) * sizeof(float));
            if (!sg->mem) {
                lt_subgraph_free(sg);
                return lt_err(LT_ENOMEM, "sub-graph: out of memory for %d rows (%zu MB)", max_rows,
                              (total + scratch) * 4 >> 20);
            }
        }
    }
    sg->scratch = scratch ? sg->mem + total : NULL;
    sg->scratch_floats = scratch;
    sg->batch = max_rows;
    *out = sg;
    return LT_OK;
}

void lt_subgraph_free(lt_subgraph *sg) {
    if (!sg) return;
    lt_free(sg->mem);
    free(sg->y);
    free(sg->dy);
    free(sg->saved);
    free(sg->save);
    free(sg);
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
    model_save ms;
    swap_in(sg, &ms, sg->save, x, training);
    int rc = LT_OK;
    for (int j = sg->from + 1; j <= sg->to && !rc; j++) {
        lt_node *nd = &sg->m->nodes[j];
        rc = nd->ops->forward(sg->m, nd, n);
        if (rc) rc = lt_err_wrap(rc, "sub-graph forward of '%s'", nd->name);
    }
    swap_out(sg, &ms);
    sg->training = training;
    sg->last_x = x;
    sg->have_fwd = !rc;
    return rc;
}

float *lt_subgraph_out(lt_subgraph *sg, int node) {
    return node > sg->from && node <= sg->to ? sg->y[node - sg->from] : NULL;
}

float *lt_subgraph_dout(lt_subgraph *sg, int node) {
    return node >= sg->from && node <= sg->to ? sg->dy[node - sg->from] : NULL;
}

int lt_subgraph_backward(lt_subgraph *sg, int n, const int *taps, int n_taps) {
    if (!sg->have_fwd) return lt_err(LT_ESTATE, "sub-graph: backward without a forward");
    if (n < 1 || n > sg->max_rows) return lt_err(LT_EINVAL, "sub-graph: %d rows (1..%d planned)", n, sg->max_rows);
    lt_model *m = sg->m;
    for (int t = 0; t < n_taps; t++)
        if (taps[t] <= sg->from || taps[t] > sg->to)
            return lt_err(LT_EINVAL, "sub-graph: tap %d outside nodes (%d, %d]", taps[t], sg->from, sg->to);
    /* every gradient starts at zero except the taps the caller filled */
    for (int j = sg->from; j <= sg->to; j++) {
        int tap = 0;
        for (int t = 0; t < n_taps; t++) tap |= taps[t] == j;
        if (!tap) memset(sg->dy[j - sg->from], 0, (size_t)n * lt_shape_count(m->nodes[j].shape) * sizeof(float));
    }
    model_save ms;
    /* layers read their input again in backward (linear: dW = dy^T x): the
     * rows of the forward, which the caller keeps until backward */
    swap_in(sg, &ms, sg->save, sg->last_x, sg->training);
    int rc = LT_OK;
    for (int j = sg->to; j > sg->from && !rc; j--) {
        lt_node *nd = &m->nodes[j];
        if (!nd->need_dy) continue;
        rc = nd->ops->backward(m, nd, n);
        if (rc) rc = lt_err_wrap(rc, "sub-graph backward of '%s'", nd->name);
    }
    swap_out(sg, &ms);
    return rc;
}
