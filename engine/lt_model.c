/* lt_model.c — the model container: nodes, the two-pass build (plan, then one
 * allocation per flat block), activation planning, forward/backward drivers,
 * groups (freeze, eval mode, re-initialisation) and named taps. The layer
 * types themselves live in lt_layers.c, the ResNet builders in lt_resnet.c. */
#include "lt_backend_impl.h"
#include "lt_layers_impl.h"
#include "lt_model_impl.h"
#include "lt_loss.h"
#include "lt_ops.h"
#include "lt_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int input_plan(lt_model *m, lt_node *nd) {
    nd->shape = m->in_shape;
    nd->shape.n = 1;
    return LT_OK;
}
static int input_noop(lt_model *m, lt_node *nd, int N) { (void)m; (void)nd; (void)N; return LT_OK; }
static const lt_layer_ops input_ops = {LT_LAYER_ABI, "input", input_plan, input_noop, input_noop, NULL, 0, NULL, NULL, NULL, NULL};

int lt_model_create(lt_model **out, lt_shape in) { return lt_model_create_on(out, in, NULL); }

int lt_model_create_on(lt_model **out, lt_shape in, lt_backend *b) {
    *out = NULL;
    if (in.c <= 0 || in.h <= 0 || in.w <= 0)
        return lt_err(LT_ESHAPE, "model input shape %dx%dx%d is empty", in.c, in.h, in.w);
    if (!b) b = lt_backend_default();
    /* a device backend holds models through its device functions */
    if (lt_backend_get_kind(b) != LT_BACKEND_CPU && !b->dev)
        return lt_err(LT_EINVAL, "model: backend %s cannot hold a model", lt_backend_describe(b));
    lt_model *m = calloc(1, sizeof *m);
    if (!m) return lt_err(LT_ENOMEM, "model: out of memory");
    m->backend = b;
    if (b->dev) {
        /* a device model fuses only what its layer table offers (the
         * training pairs: dev_train_fusable); the inference fusions are
         * CPU kernels */
        m->dev = b->dev;
        m->dctx = b->ctx;
    }
    m->in_shape = in;
    m->in_shape.n = 1;
    int rc = lt_model_add(m, &input_ops, "input", "input", -1, -1, NULL, 0);
    if (rc < 0) { lt_model_free(m); return -rc; }
    *out = m;
    return LT_OK;
}

void lt_model_free(lt_model *m) {
    if (!m) return;
    free(m->nodes);
    free(m->params);
    free(m->bufs);
    if (m->dev) {
        void *dev_blocks[] = {m->w, m->g, m->dmask, m->buf, m->acts, m->scratch, m->xin, m->xin_t, m->dlabels};
        for (size_t i = 0; i < sizeof dev_blocks / sizeof dev_blocks[0]; i++) m->dev->free(m->dctx, dev_blocks[i]);
        lt_free(m->mask);   /* the host copy */
        lt_model_host_free(m);
        free(m);
        return;
    }
    lt_free(m->w);
    lt_free(m->g);
    lt_free(m->mask);
    lt_free(m->buf);
    lt_free(m->acts);
    lt_free(m->scratch);
    lt_free(m->fuse_coef);
    free(m);
}

static int grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return LT_OK;
    int nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return lt_err(LT_ENOMEM, "model: out of memory");
    memset((char *)q + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *p = q;
    *cap = nc;
    return LT_OK;
}

int lt_model_add(lt_model *m, const lt_layer_ops *ops, const char *name, const char *group,
                 int in0, int in1, const void *cfg, size_t cfg_size) {
    return lt_model_add_ud(m, ops, name, group, in0, in1, cfg, cfg_size, NULL);
}

int lt_model_add_ud(lt_model *m, const lt_layer_ops *ops, const char *name, const char *group,
                    int in0, int in1, const void *cfg, size_t cfg_size, void *userdata) {
    if (m->finalized)
        return -lt_err(LT_ESTATE, "model: cannot add node '%s' after finalize", name);
    /* append-only table: an ABI-1 table lacks the members after `flags` */
    if (!ops || ops->abi < 1 || ops->abi > LT_LAYER_ABI)
        return -lt_err(LT_EABI, "model: layer '%s' has layer ABI %d, engine reads 1..%d", name,
                       ops ? ops->abi : -1, LT_LAYER_ABI);
    if (!ops->plan || !ops->forward || !ops->backward)
        return -lt_err(LT_EINVAL, "model: layer '%s' (%s) lacks plan, forward or backward", name,
                       ops->type ? ops->type : "?");
    if (cfg_size > sizeof(((lt_node *)0)->cfg))
        return -lt_err(LT_EINVAL, "model: config of layer '%s' too large", name);
    if (strlen(name) >= LT_NAME_MAX)
        return -lt_err(LT_EINVAL, "model: node name '%s' too long", name);
    if (lt_model_find(m, name) >= 0)
        return -lt_err(LT_EINVAL, "model: duplicate node name '%s'", name);
    int n_in = (in0 >= 0) + (in1 >= 0);
    if ((in0 >= m->n_nodes) || (in1 >= m->n_nodes) || (in0 < 0 && in1 >= 0) ||
        (m->n_nodes > 0 && n_in == 0))
        return -lt_err(LT_EINVAL, "model: node '%s' has invalid inputs (%d, %d)", name, in0, in1);
    int rc = grow((void **)&m->nodes, &m->cap_nodes, m->n_nodes + 1, sizeof(lt_node));
    if (rc) return -rc;
    int idx = m->n_nodes;
    lt_node *nd = &m->nodes[idx];
    memset(nd, 0, sizeof *nd);
    nd->ops = ops;
    snprintf(nd->name, sizeof nd->name, "%s", name);
    snprintf(nd->group, sizeof nd->group, "%s", group ? group : "");
    nd->in[0] = in0;
    nd->in[1] = in1;
    nd->n_in = n_in;
    nd->p0 = m->n_params;
    nd->b0 = m->n_bufs;
    nd->userdata = userdata;
    nd->kind = (unsigned char)(ops == &input_ops ? LT_LK_INPUT : lt_layer_kind_of(ops));
    if (cfg && cfg_size) memcpy(nd->cfg, cfg, cfg_size);
    m->n_nodes++;
    rc = ops->plan(m, &m->nodes[idx]);
    if (rc) {
        /* roll back so the model stays consistent */
        m->n_params = m->nodes[idx].p0;
        m->n_bufs = m->nodes[idx].b0;
        m->n_nodes--;
        return -lt_err_wrap(rc, "layer '%s' (%s)", name, ops->type);
    }
    nd = &m->nodes[idx];
    nd->shape.n = 1;
    if (nd->shape.c <= 0 || nd->shape.h <= 0 || nd->shape.w <= 0) {
        m->n_nodes--;
        return -lt_err(LT_ESHAPE, "layer '%s' (%s): empty output shape", name, ops->type);
    }
    return idx;
}

int lt_model_param_add(lt_model *m, lt_node *nd, const char *suffix, size_t count, int fan_in,
                       int init, uint8_t flags) {
    int rc = grow((void **)&m->params, &m->cap_params, m->n_params + 1, sizeof(lt_param));
    if (rc) return rc;
    lt_param *p = &m->params[m->n_params++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s.%s", nd->name, suffix);
    p->count = count;
    p->node = (int)(nd - m->nodes);
    p->fan_in = fan_in;
    p->init = init;
    p->flags = flags;
    nd->np = m->n_params - nd->p0;
    return LT_OK;
}

int lt_model_buffer_add(lt_model *m, lt_node *nd, const char *suffix, size_t count, float init) {
    int rc = grow((void **)&m->bufs, &m->cap_bufs, m->n_bufs + 1, sizeof(lt_buffer));
    if (rc) return rc;
    lt_buffer *b = &m->bufs[m->n_bufs++];
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s.%s", nd->name, suffix);
    b->count = count;
    b->node = (int)(nd - m->nodes);
    b->init = init;
    nd->nb = m->n_bufs - nd->b0;
    return LT_OK;
}

/* FNV-1a: a parameter's init stream is keyed by its name, so adding a head
 * never changes how the backbone is initialised. */
static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; }
    return h;
}

static void init_param(lt_model *m, const lt_param *p, uint64_t seed) {
    float *w = m->w + p->off;
    lt_rng base, r;
    lt_rng_init(&base, seed, LT_STREAM_INIT);
    lt_rng_derive(&r, &base, name_hash(p->name), 0);
    switch (p->init) {
    case LT_INIT_KAIMING: {
        double sd = sqrt(2.0 / (p->fan_in > 0 ? p->fan_in : 1));
        for (size_t i = 0; i < p->count; i++) w[i] = (float)(sd * lt_rng_normal(&r));
        break;
    }
    case LT_INIT_ZERO: memset(w, 0, p->count * sizeof(float)); break;
    case LT_INIT_ONE: for (size_t i = 0; i < p->count; i++) w[i] = 1.0f; break;
    case LT_INIT_UNIFORM_FANIN: {
        double b = 1.0 / sqrt(p->fan_in > 0 ? p->fan_in : 1);
        for (size_t i = 0; i < p->count; i++) w[i] = (float)(b * (2.0 * lt_rng_uniform(&r) - 1.0));
        break;
    }
    }
}

static void update_mask_and_flow(lt_model *m) {
    for (int i = 0; i < m->n_params; i++) {
        const lt_param *p = &m->params[i];
        memset(m->mask + p->off, p->flags, p->count);
    }
    /* need_dy: a trainable parameter at or upstream of the node, so the
     * gradient has somewhere to go. Frozen backbones are skipped entirely. */
    for (int i = 0; i < m->n_nodes; i++) {
        lt_node *nd = &m->nodes[i];
        int need = 0;
        for (int k = 0; k < nd->np; k++)
            if (!(m->params[nd->p0 + k].flags & LT_MASK_FROZEN)) need = 1;
        for (int j = 0; j < nd->n_in; j++)
            if (m->nodes[nd->in[j]].need_dy) need = 1;
        nd->need_dy = need;
    }
}

/* A device model's mask copy after update_mask_and_flow (LT_OK on cpu). */
static int mask_sync(lt_model *m) {
    if (!m->dev || !m->dmask) return LT_OK;
    return m->dev->h2d(m->dctx, m->dmask, m->mask, m->n_w);
}

/* Device blocks of a cuda model: initialised on the host with the CPU
 * code (so a cuda model starts from the cpu model's numbers), then copied. */
static int dev_finalize(lt_model *m, uint64_t seed) {
    const lt_dev_ops *d = m->dev;
    float *hw = lt_alloc(m->n_w * sizeof(float)), *hb = lt_alloc(m->n_b * sizeof(float) + 1);
    m->mask = lt_alloc(m->n_w + 1);
    int rc = !hw || !hb || !m->mask ? lt_err(LT_ENOMEM, "model: out of memory for parameters") : LT_OK;
    if (!rc) {
        memset(m->mask, LT_MASK_FROZEN, m->n_w);
        m->w = hw;
        for (int i = 0; i < m->n_params; i++) init_param(m, &m->params[i], seed);
        for (int i = 0; i < m->n_bufs; i++)
            for (size_t k = 0; k < m->bufs[i].count; k++) hb[m->bufs[i].off + k] = m->bufs[i].init;
        m->w = NULL;
    }
    if (!rc) rc = d->alloc(m->dctx, (void **)&m->w, m->n_w * sizeof(float));
    if (!rc) rc = d->alloc(m->dctx, (void **)&m->g, m->n_w * sizeof(float));
    if (!rc) rc = d->alloc(m->dctx, (void **)&m->dmask, m->n_w);
    if (!rc) rc = d->alloc(m->dctx, (void **)&m->buf, m->n_b * sizeof(float));
    if (!rc) rc = d->h2d(m->dctx, m->w, hw, m->n_w * sizeof(float));
    if (!rc) rc = d->memset0(m->dctx, m->g, m->n_w * sizeof(float));
    if (!rc) rc = d->h2d(m->dctx, m->buf, hb, m->n_b * sizeof(float));
    if (!rc) {
        m->finalized = 1;
        update_mask_and_flow(m);
        rc = mask_sync(m);
    }
    if (!rc) rc = d->sync(m->dctx);   /* the host blocks are freed next */
    lt_free(hw);
    lt_free(hb);
    return rc ? lt_err_wrap(rc, "model on %s: finalize", lt_backend_describe(m->backend)) : LT_OK;
}

int lt_model_finalize(lt_model *m, uint64_t seed) {
    if (m->finalized) return lt_err(LT_ESTATE, "model: finalize called twice");
    size_t off = 0;
    for (int i = 0; i < m->n_params; i++) {
        m->params[i].off = off;
        off += (m->params[i].count + 15) & ~(size_t)15; /* 64-byte aligned tensors */
    }
    m->n_w = off;
    off = 0;
    for (int i = 0; i < m->n_bufs; i++) {
        m->bufs[i].off = off;
        off += m->bufs[i].count;
    }
    m->n_b = off;
    if (m->dev) return dev_finalize(m, seed);
    m->w = lt_alloc(m->n_w * sizeof(float));
    m->g = lt_alloc(m->n_w * sizeof(float));
    m->mask = lt_alloc(m->n_w);
    m->buf = lt_alloc(m->n_b * sizeof(float));
    if (!m->w || !m->g || !m->mask || !m->buf) return lt_err(LT_ENOMEM, "model: out of memory for parameters");
    /* padding between tensors is frozen so the optimizer leaves it at 0 */
    memset(m->mask, LT_MASK_FROZEN, m->n_w);
    for (int i = 0; i < m->n_params; i++) init_param(m, &m->params[i], seed);
    for (int i = 0; i < m->n_bufs; i++)
        for (size_t k = 0; k < m->bufs[i].count; k++) m->buf[m->bufs[i].off + k] = m->bufs[i].init;
    m->finalized = 1;
    update_mask_and_flow(m);
    return LT_OK;
}

/* The fusion table of a node's layer (NULL for ABI-1 tables, which end
 * before it, and for layers that take part in no fusion). */
static const lt_layer_fusion *fusion_of(const lt_node *nd) {
    return nd->ops->abi >= 2 ? nd->ops->fusion : NULL;
}

static int n_uses(const lt_model *m, int j) {
    int uses = 0;
    for (int i = 1; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_in; k++) uses += m->nodes[i].in[k] == j;
    return uses;
}

/* A layer that may work in place (LT_LAYER_IN_PLACE: a ReLU) overwrites its
 * input, saving one activation buffer, when that input is produced by a
 * layer whose backward does not read its own output (LT_LAYER_BWD_NO_Y: BN
 * reads its input, a residual sum reads nothing) and feeds nothing else:
 * the in-place layer's backward needs only its own output, so the
 * overwritten values are never needed again. */
static int in_place(const lt_model *m, int i) {
    const lt_node *nd = &m->nodes[i];
    if (!(nd->ops->flags & LT_LAYER_IN_PLACE) || nd->n_in != 1 || nd->in[0] <= 0) return 0;
    if (!(m->nodes[nd->in[0]].ops->flags & LT_LAYER_BWD_NO_Y)) return 0;
    return n_uses(m, nd->in[0]) == 1;
}

/* An in-place ReLU an epilogue can take over. */
static int epi_relu(const lt_model *m, int i) {
    return (m->nodes[i].ops->flags & LT_LAYER_EPI_RELU) && in_place(m, i);
}

/* Inference fusion at node i (a producer whose fusion table has
 * forward_epilogue: conv): 0 none; 1 producer -> affine node (eval_affine:
 * BN) whose only input is the producer's output, which nothing else reads;
 * 2 the same plus the in-place ReLU after the affine node; 3 producer ->
 * affine -> residual add (LT_LAYER_EPI_ADD) -> ReLU: the affine node feeds
 * only an add at i + 2 whose other input is computed before the producer,
 * and the in-place ReLU at i + 3 reads the add; 4 the same with a node at
 * i + 2 (a shortcut) that reads only nodes before the producer (so it can
 * run first) and feeds the add at i + 3. */
static int fusable(const lt_model *m, int i) {
    if (i + 1 >= m->n_nodes) return 0;
    const lt_layer_fusion *pf = fusion_of(&m->nodes[i]);
    if (!pf || !pf->forward_epilogue) return 0;
    const lt_node *af = &m->nodes[i + 1];
    const lt_layer_fusion *ff = fusion_of(af);
    if (!ff || !ff->eval_affine || af->n_in != 1 || af->in[0] != i || n_uses(m, i) != 1) return 0;
    if (m->fuse_floats < 3 * (size_t)af->shape.c) return 0;
    const int relu = i + 2 < m->n_nodes && m->nodes[i + 2].in[0] == i + 1 && epi_relu(m, i + 2);
    if (relu) return 2;
    if (n_uses(m, i + 1) != 1) return 1;
    /* the residual tail: the add at i + 2 + sc (sc = 1: a shortcut node
     * between, which must read only nodes before the producer), its other
     * input ready before the producer runs, and an in-place ReLU right after */
    for (int sc = 0; sc <= 1; sc++) {
        const int si = i + 2 + sc;
        if (si + 1 >= m->n_nodes) break;
        const lt_node *s = &m->nodes[si], *r = &m->nodes[si + 1];
        if (!(s->ops->flags & LT_LAYER_EPI_ADD) || s->n_in != 2 || (s->in[0] != i + 1 && s->in[1] != i + 1))
            continue;
        const int other = s->in[0] == i + 1 ? s->in[1] : s->in[0];
        int ready = sc ? other == i + 2 : other < i;
        for (int k = 0; sc && k < m->nodes[i + 2].n_in; k++) ready &= m->nodes[i + 2].in[k] < i;
        if (ready && (!sc || m->nodes[i + 2].n_in >= 1) && r->n_in == 1 && r->in[0] == si && epi_relu(m, si + 1))
            return 3 + sc;
    }
    return 1;
}

/* Training fusion at node i: a node with forward_relu/backward_relu (BN)
 * whose only reader is the in-place ReLU at i + 1. */
static int train_fusable(const lt_model *m, int i) {
    if (i + 1 >= m->n_nodes) return 0;
    const lt_layer_fusion *f = fusion_of(&m->nodes[i]);
    if (!f || !f->forward_relu || !f->backward_relu) return 0;
    const lt_node *r = &m->nodes[i + 1];
    return r->n_in == 1 && r->in[0] == i && epi_relu(m, i + 1);
}

/* The same on a device: the node's kind has a fused pair in the backend's
 * layer table (BN, the residual sum). */
static int dev_train_fusable(const lt_model *m, int i) {
    if (i + 1 >= m->n_nodes || m->nodes[i].kind == LT_LK_PLUGIN) return 0;
    const lt_dev_layer *l = &m->dev->layers[m->nodes[i].kind];
    if (!l->forward_relu || !l->backward_relu) return 0;
    const lt_node *r = &m->nodes[i + 1];
    return r->n_in == 1 && r->in[0] == i && epi_relu(m, i + 1);
}

/* Runs producer i with the affine node i + 1 (and what `fuse` adds, see
 * fusable) as its store epilogue. */
static int run_fused(lt_model *m, int i, int fuse, int N) {
    lt_node *pn = &m->nodes[i], *an = &m->nodes[i + 1];
    const int C = an->shape.c;
    float *mu = m->fuse_coef, *a = mu + C, *b = mu + 2 * C;
    LT_TRY(fusion_of(an)->eval_affine(m, an, mu, a, b));
    lt_conv_epilogue ep = {mu, a, b, fuse >= 2, NULL, 0, 0};
    float *out = an->y;
    if (fuse >= 3) {
        /* + the add's other input (fuse 4: the shortcut node between the
         * affine node and the add, run first), written as the add's output
         * (which the in-place ReLU after it shares) */
        lt_node *sn = &m->nodes[i + fuse - 1];
        if (fuse == 4) {
            lt_node *sc = &m->nodes[i + 2];
            const lt_layer_fusion *sf = fusion_of(sc);
            if (sf && sf->forward_data) {
                /* only the data channels are written and added: an option-A
                 * shortcut's zero channels (half of them) were a memset and a
                 * read of zeros per image (its output is not materialised, as
                 * the fused BN's is not) */
                int c0 = 0, c1 = 0;
                int rc = sf->forward_data(m, sc, N, &c0, &c1);
                if (rc) return lt_err_wrap(rc, "forward of '%s'", sc->name);
                ep.res_c0 = c0;
                ep.res_c1 = c1;
            } else {
                int rc = sc->ops->forward(m, sc, N);
                if (rc) return lt_err_wrap(rc, "forward of '%s'", sc->name);
            }
        }
        ep.res = m->nodes[sn->in[0] == i + 1 ? sn->in[1] : sn->in[0]].y;
        out = sn->y;
    }
    return fusion_of(pn)->forward_epilogue(m, pn, N, out, &ep);
}

/* Pixels of a shape: a tensor of one pixel is the same bytes in NCHW and NHWC. */
static int px(lt_shape s) { return s.h * s.w; }

/* 1 when a device model's input rows go through xin_t: NHWC, and an input
 * of more than one pixel. */
static int in_converted(const lt_model *m) { return m->dev && m->layout == LT_LAYOUT_NHWC && px(m->in_shape) > 1; }

/* set_batch's allocation on a device: activations (+ saved), scratch and
 * the input rows (and their NHWC copy), each grown when needed. */
static int dev_grow(lt_model *m, void **p, size_t *have, size_t need, size_t elem) {
    if (need <= *have) return LT_OK;
    m->dev->free(m->dctx, *p);
    *p = NULL;
    *have = 0;
    LT_TRY(m->dev->alloc(m->dctx, p, need * elem));
    *have = need;
    return LT_OK;
}
static int dev_plan_blocks(lt_model *m, int N, size_t acts, size_t scratch) {
    int rc = dev_grow(m, (void **)&m->acts, &m->acts_floats, acts, sizeof(float));
    if (!rc) rc = dev_grow(m, (void **)&m->scratch, &m->scratch_floats, scratch, sizeof(float));
    if (!rc) rc = dev_grow(m, (void **)&m->xin, &m->xin_floats, (size_t)N * lt_shape_count(m->in_shape), sizeof(float));
    if (!rc) rc = dev_grow(m, (void **)&m->dlabels, &m->dlabels_n, (size_t)N, sizeof(int32_t));
    if (!rc && in_converted(m))
        rc = dev_grow(m, (void **)&m->xin_t, &m->xin_t_floats, (size_t)N * lt_shape_count(m->in_shape), sizeof(float));
    if (rc) {
        m->batch = 0;
        return lt_err_wrap(rc, "model on %s: set_batch(%d)", lt_backend_describe(m->backend), N);
    }
    return LT_OK;
}

int lt_model_set_batch(lt_model *m, int N) {
    if (!m->finalized) return lt_err(LT_ESTATE, "model: set_batch before finalize");
    if (N <= 0) return lt_err(LT_EINVAL, "model: batch size %d", N);
    if (N == m->batch) return LT_OK;
    size_t total = 0, scratch = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 0;
        for (int i = 1; i < m->n_nodes; i++) {
            lt_node *nd = &m->nodes[i];
            size_t sz = ((size_t)N * lt_shape_count(nd->shape) + 15) & ~(size_t)15;
            size_t sv = ((size_t)N * nd->saved_per_sample + nd->saved_fixed + 15) & ~(size_t)15;
            const int inplace = in_place(m, i);
            if (pass == 1) {
                nd->y = inplace ? m->nodes[nd->in[0]].y : m->acts + off;
                nd->dy = m->acts + off + (inplace ? 0 : sz);
                nd->saved = sv ? m->acts + off + (inplace ? 1 : 2) * sz : NULL;
            } else if (nd->ops->scratch && !(m->dev && nd->kind)) {   /* built-ins on a device: its own workspace */
                size_t s = nd->ops->scratch(nd, N);
                if (s > scratch) scratch = s;
            }
            off += (inplace ? 1 : 2) * sz + sv;
        }
        total = off;
        if (pass == 0) {
            if (m->dev) {
                /* grows scratch too, so the host scratch branch below never
                 * runs for a device model */
                LT_TRY(dev_plan_blocks(m, N, total, scratch));
            } else if (total > m->acts_floats) {
                lt_free(m->acts);
                m->acts = lt_alloc(total * sizeof(float));
                if (!m->acts) { m->acts_floats = 0; m->batch = 0; return lt_err(LT_ENOMEM, "model: out of memory for activations (%zu MB)", total * 4 >> 20); }
                m->acts_floats = total;
            }
            if (scratch > m->scratch_floats) {
                lt_free(m->scratch);
                m->scratch = lt_alloc(scratch * sizeof(float));
                if (!m->scratch) { m->scratch_floats = 0; m->batch = 0; return lt_err(LT_ENOMEM, "model: out of memory for scratch"); }
                m->scratch_floats = scratch;
            }
        }
    }
    if (m->dev) {
        for (int i = 1; i < m->n_nodes; i++) m->nodes[i].fuse_train = (unsigned char)dev_train_fusable(m, i);
        int rc = lt_model_host_plan(m, N);
        if (rc) {
            m->batch = 0;
            return rc;
        }
    }
    if (!m->fuse_coef && !m->dev) {
        /* the graph is fixed after finalize: plan the fusions once */
        size_t widest = 0;
        for (int i = 1; i < m->n_nodes; i++) {
            const lt_layer_fusion *f = fusion_of(&m->nodes[i]);
            if (f && f->eval_affine && (size_t)m->nodes[i].shape.c > widest) widest = (size_t)m->nodes[i].shape.c;
        }
        if (widest) {
            m->fuse_coef = lt_alloc(3 * widest * sizeof(float));
            if (!m->fuse_coef) { m->batch = 0; return lt_err(LT_ENOMEM, "model: out of memory for fusion coefficients"); }
            m->fuse_floats = 3 * widest;
        }
        for (int i = 1; i < m->n_nodes; i++) {
            m->nodes[i].fuse = (unsigned char)fusable(m, i);
            m->nodes[i].fuse_train = (unsigned char)train_fusable(m, i);
        }
    }
    m->batch = N;
    return LT_OK;
}

static void labels_take(lt_model *m);

/* ---- a device model's forward and backward ------------------------------------
 * Through the backend's table for built-in kinds and the layer's own
 * forward_cuda / backward_cuda (ABI 3) for plugins, and a plugin without
 * forward_cuda through its CPU code on host mirrors (lt_model_host.c); a
 * node planned as a
 * training pair with the ReLU after it (fuse_train) runs with it as one
 * pass each way, as lt_model_forward / lt_model_backward do on the CPU, and
 * in eval mode too where the table's pair allows it (the sum's). */
static int dev_fn(const lt_model *m, const lt_node *nd, int bwd, int (**fn)(lt_model *, lt_node *, int)) {
    *fn = NULL;
    if (nd->kind != LT_LK_PLUGIN) {
        const lt_dev_layer *l = &m->dev->layers[nd->kind];
        *fn = bwd ? l->backward : l->forward;
    } else if (lt_model_host_node(m, nd)) {
        *fn = lt_model_host_fn(bwd);   /* its CPU code on host mirrors (lt_model_host.c) */
        return LT_OK;
    } else {
        *fn = bwd ? nd->ops->backward_cuda : nd->ops->forward_cuda;
    }
    if (!*fn && nd->kind == LT_LK_PLUGIN)   /* forward_cuda without backward_cuda */
        return lt_err(LT_EINVAL, "layer '%s' (%s) has a CUDA forward but no CUDA backward (the model is on %s)",
                      nd->name, lt_node_type(nd), lt_backend_describe(m->backend));
    if (!*fn)
        return lt_err(LT_EINVAL, "layer '%s' (%s): the backend %s has no %s for its kind", nd->name,
                      lt_node_type(nd), lt_backend_describe(m->backend), bwd ? "backward" : "forward");
    return LT_OK;
}

static int dev_check(lt_model *m) {
    if (!m->dev_status) return LT_OK;
    int rc = m->dev_status;
    m->dev_status = 0;
    return lt_err(rc, "model on %s: an earlier device call (zero_grad) failed", lt_backend_describe(m->backend));
}

/* x NULL: the rows are in m->xin already (lt_model_forward_staged). */
static int dev_forward(lt_model *m, const float *x, int N, int training) {
    LT_TRY(dev_check(m));
    int (*fn)(lt_model *, lt_node *, int);
    if (x) LT_TRY(m->dev->h2d(m->dctx, m->xin, x, (size_t)N * lt_shape_count(m->in_shape) * sizeof(float)));
    m->x = x;
    m->nodes[0].y = m->xin;
    if (in_converted(m)) {
        const lt_shape s = m->in_shape;
        LT_TRY(m->dev->layout_convert(m->dctx, LT_LAYOUT_NHWC, N, s.c, s.h * s.w, m->xin, m->xin_t, 0));
        m->nodes[0].y = m->xin_t;
    }
    m->fwd_layout = m->layout;
    m->training = training;
    for (int i = 1; i < m->n_nodes; i++) m->nodes[i].fused_now = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        lt_node *nd = &m->nodes[i];
        if (!m->no_fuse && nd->fuse_train) {
            int fused = 0;
            int rc = m->dev->layers[nd->kind].forward_relu(m, nd, N, &fused);
            if (rc) return lt_err_wrap(rc, "forward of '%s' fused with '%s'", nd->name, m->nodes[i + 1].name);
            if (fused) {
                nd->fused_now = 1;
                i++;
                continue;
            }
        }
        LT_TRY(dev_fn(m, nd, 0, &fn));
        int rc = fn(m, nd, N);
        if (rc) return lt_err_wrap(rc, "forward of '%s'", nd->name);
    }
    return LT_OK;
}

int lt_model_forward(lt_model *m, const float *x, int N, int training) {
    labels_take(m);   /* this forward's labels, whatever happens to it */
    if (!m->batch) return lt_err(LT_ESTATE, "model: forward before set_batch");
    if (N <= 0 || N > m->batch) return lt_err(LT_EINVAL, "model: forward with N=%d, planned batch %d", N, m->batch);
    if (m->dev) return dev_forward(m, x, N, training);
    m->x = x;
    m->nodes[0].y = (float *)x;
    m->training = training;
    for (int i = 1; i < m->n_nodes; i++) m->nodes[i].fused_now = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        lt_node *nd = &m->nodes[i];
        if (training && !m->no_fuse && nd->fuse_train) {
            /* BN -> in-place ReLU as one pass; 0 = the BN is in eval mode */
            int rc = fusion_of(nd)->forward_relu(m, nd, N);
            if (rc < 0) return lt_err_wrap(rc, "forward of '%s' fused with '%s'", nd->name, m->nodes[i + 1].name);
            if (rc == 1) {
                nd->fused_now = 1;
                i++;
                continue;
            }
        }
        const int fuse = training || m->no_fuse ? 0 : nd->fuse;
        if (fuse) {
            int rc = run_fused(m, i, fuse, N);
            if (rc) return lt_err_wrap(rc, "forward of '%s' fused with '%s'", nd->name, m->nodes[i + 1].name);
            i += fuse;
            continue;
        }
        int rc = nd->ops->forward(m, nd, N);
        if (rc) return lt_err_wrap(rc, "forward of '%s'", nd->name);
    }
    return LT_OK;
}

int lt_model_forward_staged(lt_model *m, int N, int training) {
    if (!m->dev) return lt_err(LT_EINVAL, "model: staged forward on a cpu model");
    labels_take(m);   /* this forward's labels, whatever happens to it */
    if (!m->batch) return lt_err(LT_ESTATE, "model: forward before set_batch");
    if (N <= 0 || N > m->batch) return lt_err(LT_EINVAL, "model: forward with N=%d, planned batch %d", N, m->batch);
    return dev_forward(m, NULL, N, training);
}

void lt_model_zero_grad(lt_model *m) {
    if (m->dev) {
        int rc = m->dev->memset0(m->dctx, m->g, m->n_w * sizeof(float));
        if (rc && !m->dev_status) m->dev_status = rc;
        return;
    }
    memset(m->g, 0, m->n_w * sizeof(float));
}

static int dev_backward_nodes(lt_model *m, int N, int last) {
    for (int i = 1; i <= last; i++) {
        lt_node *nd = &m->nodes[i];
        if (nd->need_dy && !nd->keep_dy && nd->dy_written != 1)
            LT_TRY(m->dev->memset0(m->dctx, nd->dy, (size_t)N * lt_shape_count(nd->shape) * sizeof(float)));
    }
    for (int i = last; i >= 1; i--) {
        lt_node *nd = &m->nodes[i];
        if (!nd->need_dy) continue;
        /* a pair fused in the forward: as in lt_model_backward */
        if (nd->fused_now && i + 1 <= last && m->nodes[i + 1].dx_set[0]) continue;   /* handled below */
        if (i >= 2 && m->nodes[i - 1].fused_now && nd->dx_set[0]) {
            lt_node *pn = &m->nodes[i - 1];
            int rc = m->dev->layers[pn->kind].backward_relu(m, pn, nd, N);
            if (rc) return lt_err_wrap(rc, "backward of '%s' fused with '%s'", pn->name, nd->name);
            continue;
        }
        int (*fn)(lt_model *, lt_node *, int);
        LT_TRY(dev_fn(m, nd, 1, &fn));
        int rc = fn(m, nd, N);
        if (rc) return lt_err_wrap(rc, "backward of '%s'", nd->name);
    }
    return LT_OK;
}

/* The end of a device backward (rc: its nodes' status): the join
 * (lt_dev_ops.join), even after a failure, since work the nodes queued on
 * another stream must not outlive the backward unjoined; the nodes'
 * failure is the one reported. */
static int dev_join_after(lt_model *m, int rc, const char *what) {
    if (!m->dev->join) return rc;
    char why[512] = "";
    if (rc) snprintf(why, sizeof why, "%s", lt_errmsg());
    const int j = m->dev->join(m->dctx);
    if (rc) return j ? lt_err(rc, "%s", why) : rc;
    return j ? lt_err_wrap(j, "%s on %s", what, lt_backend_describe(m->backend)) : LT_OK;
}

static int dev_backward(lt_model *m, int N, int last) {
    if (m->fwd_layout != m->layout)
        return lt_err(LT_ESTATE, "model on %s: backward in another layout than the forward (lt_model_set_layout "
                      "between them)", lt_backend_describe(m->backend));
    return dev_join_after(m, dev_backward_nodes(m, N, last), "model backward");
}

int lt_model_run_nodes(lt_model *m, int from, int to, int N, int bwd, const char *what) {
    if (m->dev) LT_TRY(dev_check(m));
    if (!bwd) {   /* a sub-graph's rows are not the batch's: no labels */
        m->labels_now = NULL;
        m->n_labels_now = 0;
    }
    int rc = LT_OK;
    for (int k = 0; k < to - from && !rc; k++) {
        lt_node *nd = &m->nodes[bwd ? to - k : from + 1 + k];
        if (bwd && !nd->need_dy) continue;
        int (*fn)(lt_model *, lt_node *, int) = bwd ? nd->ops->backward : nd->ops->forward;
        if (m->dev) rc = dev_fn(m, nd, bwd, &fn);
        if (!rc) rc = fn(m, nd, N);
        if (rc) rc = lt_err_wrap(rc, "%s of '%s'", what, nd->name);
    }
    return m->dev && bwd ? dev_join_after(m, rc, what) : rc;
}

int lt_model_backward(lt_model *m, int N, const int *taps, int n_taps) {
    if (!m->batch) return lt_err(LT_ESTATE, "model: backward before set_batch");
    for (int i = 1; i < m->n_nodes; i++) m->nodes[i].keep_dy = 0;
    int last = 0;
    for (int t = 0; t < n_taps; t++) {
        if (taps[t] <= 0 || taps[t] >= m->n_nodes) return lt_err(LT_EINVAL, "model: bad tap %d", taps[t]);
        m->nodes[taps[t]].keep_dy = 1;
        if (taps[t] > last) last = taps[t];
    }
    /* Each activation gradient must start at zero. Rather than zeroing them
     * all (a full pass over the activation memory, about a tenth of a
     * ResNet step), the first node to write a dy in this backward pass —
     * its highest-index consumer, since the pass runs in reverse — may
     * overwrite it, when its layer supports that; only the others are
     * zeroed. Taps the caller filled are accumulated into, never set. */
    for (int i = 1; i <= last; i++) {
        lt_node *nd = &m->nodes[i];
        memset(nd->dx_set, 0, sizeof nd->dx_set);
        nd->dy_written = 0;
    }
    for (int i = last; i >= 1; i--) {
        lt_node *nd = &m->nodes[i];
        if (!nd->need_dy) continue;
        for (int k = 0; k < nd->n_in; k++) {
            const int j = nd->in[k];
            if (j <= 0) continue;
            lt_node *src = &m->nodes[j];
            if (!src->need_dy || src->dy_written) continue;
            src->dy_written = 1;
            if (!m->zero_all_dy && !src->keep_dy && (nd->ops->flags & LT_LAYER_SETS_DX)) nd->dx_set[k] = 1;
            else src->dy_written = 2;   /* first writer accumulates: zero it */
        }
    }
    if (m->dev) {
        LT_TRY(dev_check(m));
        return dev_backward(m, N, last);
    }
    for (int i = 1; i <= last; i++) {
        lt_node *nd = &m->nodes[i];
        /* never written in this pass (no consumer up to `last`), or its first
         * writer accumulates */
        if (nd->need_dy && !nd->keep_dy && nd->dy_written != 1)
            memset(nd->dy, 0, (size_t)N * lt_shape_count(nd->shape) * sizeof(float));
    }
    for (int i = last; i >= 1; i--) {
        lt_node *nd = &m->nodes[i];
        if (!nd->need_dy) continue;
        /* a BN -> ReLU pair fused in the forward runs as one backward when
         * the ReLU overwrites the BN's gradient (it is its only reader and
         * the caller did not fill the BN's dy) and the ReLU ran (i + 1 <=
         * last); otherwise the two nodes run one by one as usual */
        if (nd->fused_now && i + 1 <= last && m->nodes[i + 1].dx_set[0]) continue;   /* handled below */
        if (i >= 2 && m->nodes[i - 1].fused_now && nd->dx_set[0]) {
            int rc = fusion_of(&m->nodes[i - 1])->backward_relu(m, &m->nodes[i - 1], nd, N);
            if (rc) return lt_err_wrap(rc, "backward of '%s' fused with '%s'", m->nodes[i - 1].name, nd->name);
            continue;
        }
        int rc = nd->ops->backward(m, nd, N);
        if (rc) return lt_err_wrap(rc, "backward of '%s'", nd->name);
    }
    return LT_OK;
}

int lt_model_find(const lt_model *m, const char *name) {
    for (int i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].name, name)) return i;
    return -1;
}

float *lt_model_out(lt_model *m, int node) { return node >= 0 && node < m->n_nodes ? m->nodes[node].y : NULL; }
float *lt_model_dout(lt_model *m, int node) { return node > 0 && node < m->n_nodes ? m->nodes[node].dy : NULL; }
size_t lt_model_out_size(const lt_model *m, int node) {
    return node >= 0 && node < m->n_nodes ? lt_shape_count(m->nodes[node].shape) : 0;
}

lt_param *lt_model_param(lt_model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

float *lt_model_param_data(lt_model *m, const char *name) {
    lt_param *p = lt_model_param(m, name);
    return p && m->w ? m->w + p->off : NULL;
}

static void param_info(lt_model *m, int i, lt_param_info *o) {
    const lt_param *p = &m->params[i];
    o->name = p->name;
    o->count = p->count;
    o->w = m->w ? m->w + p->off : NULL;
    o->g = m->g ? m->g + p->off : NULL;
    o->node = p->node;
    o->group = m->nodes[p->node].group;
    o->flags = p->flags;
}

int lt_model_n_params(const lt_model *m) { return m->n_params; }

int lt_model_param_at(lt_model *m, int i, lt_param_info *out) {
    if (i < 0 || i >= m->n_params) return lt_err(LT_EINVAL, "model: no parameter %d (%d in all)", i, m->n_params);
    param_info(m, i, out);
    return LT_OK;
}

int lt_model_param_find(lt_model *m, const char *name, lt_param_info *out) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) {
            param_info(m, i, out);
            return LT_OK;
        }
    return lt_err(LT_EINVAL, "model: no parameter '%s'", name);
}

int lt_model_param_index(const lt_model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, name)) return i;
    return -1;
}

int lt_model_param_flags(lt_model *m, const char *name, unsigned set, unsigned clear) {
    lt_param *p = lt_model_param(m, name);
    if (!p) return lt_err(LT_EINVAL, "model: no parameter '%s'", name);
    p->flags = (uint8_t)((p->flags | set) & ~clear);
    if (m->finalized) {
        update_mask_and_flow(m);
        LT_TRY(mask_sync(m));
    }
    return LT_OK;
}

int lt_model_n_buffers(const lt_model *m) { return m->n_bufs; }

int lt_model_buffer_at(lt_model *m, int i, lt_buffer_info *out) {
    if (i < 0 || i >= m->n_bufs) return lt_err(LT_EINVAL, "model: no buffer %d (%d in all)", i, m->n_bufs);
    const lt_buffer *b = &m->bufs[i];
    out->name = b->name;
    out->count = b->count;
    out->data = m->buf ? m->buf + b->off : NULL;
    out->node = b->node;
    return LT_OK;
}

int lt_model_rename_params(lt_model *m, int node, const char *prefix) {
    if (m->finalized) return lt_err(LT_ESTATE, "model: parameters renamed after finalize");
    if (node <= 0 || node >= m->n_nodes) return lt_err(LT_EINVAL, "model: no node %d", node);
    const lt_node *nd = &m->nodes[node];
    const size_t pre = strlen(nd->name) + 1;
    for (int k = 0; k < nd->np + nd->nb; k++) {
        char *name = k < nd->np ? m->params[nd->p0 + k].name : m->bufs[nd->b0 + k - nd->np].name;
        const size_t cap = sizeof m->params[0].name;
        char suffix[sizeof m->params[0].name], out[sizeof m->params[0].name + 8];
        if (strncmp(name, nd->name, pre - 1) || name[pre - 1] != '.')
            return lt_err(LT_ESTATE, "model: parameter '%s' is not named after node '%s'", name, nd->name);
        snprintf(suffix, sizeof suffix, "%s", name + pre);
        int n = snprintf(out, sizeof out, "%s.%s", prefix, suffix);
        if (n < 0 || (size_t)n >= cap) return lt_err(LT_EINVAL, "model: parameter name '%s.%s' too long", prefix, suffix);
        if (lt_model_param(m, out))
            return lt_err(LT_EINVAL, "model: renaming '%s' to '%s' would duplicate a parameter name", name, out);
        memcpy(name, out, (size_t)n + 1);
    }
    return LT_OK;
}

/* ---- accessors ------------------------------------------------------------------ */
int lt_model_n_nodes(const lt_model *m) { return m->n_nodes; }
lt_node *lt_model_node(lt_model *m, int i) { return i >= 0 && i < m->n_nodes ? &m->nodes[i] : NULL; }
const lt_node *lt_model_node_const(const lt_model *m, int i) { return i >= 0 && i < m->n_nodes ? &m->nodes[i] : NULL; }
lt_shape lt_model_in_shape(const lt_model *m) { return m->in_shape; }
int lt_model_batch(const lt_model *m) { return m->batch; }
lt_backend *lt_model_backend(const lt_model *m) { return m->backend; }
int lt_model_training(const lt_model *m) { return m->training; }

const int32_t *lt_model_labels(const lt_model *m, int N) {
    return m->training && m->labels_now && m->n_labels_now >= N ? m->labels_now : NULL;
}

void lt_model_labels_at(lt_model *m, const int32_t *y, int n) {
    m->labels_next = y;
    m->n_labels_next = y ? n : 0;
}

/* On a device the copy goes to dlabels, planned with the batch (set_batch):
 * nothing is allocated per step. */
int lt_model_set_labels(lt_model *m, const int32_t *y, int n) {
    if (!m->batch) return lt_err(LT_ESTATE, "model: set_labels before set_batch");
    if (!y || n <= 0 || n > m->batch)
        return lt_err(LT_EINVAL, "model: set_labels with %s for %d rows (planned batch %d)", y ? "labels" : "NULL", n,
                      m->batch);
    if (!m->dev) {
        lt_model_labels_at(m, y, n);
        return LT_OK;
    }
    LT_TRY(m->dev->h2d(m->dctx, m->dlabels, y, (size_t)n * sizeof(int32_t)));
    lt_model_labels_at(m, m->dlabels, n);
    return LT_OK;
}

/* A forward takes the labels set for it (and only it). */
static void labels_take(lt_model *m) {
    if (m->host) m->host->labels_ok = 0;   /* the host layers' copy is the last forward's */
    m->labels_now = m->labels_next;
    m->n_labels_now = m->n_labels_next;
    m->labels_next = NULL;
    m->n_labels_next = 0;
}
float *lt_model_scratch(lt_model *m) { return m->scratch; }
void lt_model_set_no_fuse(lt_model *m, int no_fuse) { m->no_fuse = no_fuse != 0; }

int lt_model_set_layout(lt_model *m, lt_layout layout) {
    if (layout != LT_LAYOUT_NCHW && layout != LT_LAYOUT_NHWC) return lt_err(LT_EINVAL, "model: layout %d", (int)layout);
    /* the check below covers the nodes there are: all of them, after finalize */
    if (!m->finalized) return lt_err(LT_ESTATE, "model: set_layout before finalize");
    if (layout == LT_LAYOUT_NHWC) {
        if (!m->dev)
            return lt_err(LT_EINVAL, "model on %s: NHWC is a device layout (the CPU kernels are NCHW)",
                          lt_backend_describe(m->backend));
        /* every node with a multi-pixel input or output must be of a kind
         * whose device layer takes NHWC (lt_dev_layer.nhwc) */
        for (int i = 1; i < m->n_nodes; i++) {
            const lt_node *nd = &m->nodes[i];
            int multi = px(nd->shape) > 1;
            for (int k = 0; k < nd->n_in; k++) multi |= px(m->nodes[nd->in[k]].shape) > 1;
            if (multi && (nd->kind == LT_LK_PLUGIN || !m->dev->layers[nd->kind].nhwc))
                return lt_err(LT_EINVAL, "model on %s: layer '%s' (%s) runs NCHW only, on a tensor of more than one "
                              "pixel: the model stays NCHW", lt_backend_describe(m->backend), nd->name,
                              lt_node_type(nd));
        }
    }
    if (layout == m->layout) return LT_OK;
    const lt_layout old = m->layout;
    m->layout = layout;
    if (m->batch && in_converted(m)) {
        const int rc = dev_grow(m, (void **)&m->xin_t, &m->xin_t_floats,
                                (size_t)m->batch * lt_shape_count(m->in_shape), sizeof(float));
        if (rc) {
            m->layout = old;
            return lt_err_wrap(rc, "model on %s: NHWC input rows", lt_backend_describe(m->backend));
        }
    }
    return LT_OK;
}
lt_layout lt_model_layout(const lt_model *m) { return m->layout; }

const char *lt_node_name(const lt_node *nd) { return nd->name; }
const char *lt_node_group(const lt_node *nd) { return nd->group; }
const char *lt_node_type(const lt_node *nd) { return nd->ops->type ? nd->ops->type : "?"; }
int lt_node_n_inputs(const lt_node *nd) { return nd->n_in; }
int lt_node_input(const lt_node *nd, int k) { return k >= 0 && k < nd->n_in ? nd->in[k] : -1; }
lt_shape lt_node_shape(const lt_node *nd) { return nd->shape; }
lt_shape lt_node_in_shape(const lt_model *m, const lt_node *nd, int k) { return m->nodes[nd->in[k]].shape; }
void lt_node_set_shape(lt_node *nd, lt_shape s) { nd->shape = s; }
void lt_node_set_saved(lt_node *nd, size_t per_sample, size_t fixed) {
    nd->saved_per_sample = per_sample;
    nd->saved_fixed = fixed;
}
float *lt_node_saved(const lt_node *nd) { return nd->saved; }
float *lt_node_saved_fixed(const lt_model *m, const lt_node *nd) {
    return nd->saved ? nd->saved + nd->saved_per_sample * (size_t)m->batch : NULL;
}
const float *lt_node_x(const lt_model *m, const lt_node *nd, int k) { return m->nodes[nd->in[k]].y; }
float *lt_node_dx(lt_model *m, const lt_node *nd, int k) {
    const lt_node *s = &m->nodes[nd->in[k]];
    return (nd->in[k] > 0 && s->need_dy) ? s->dy : NULL;
}
int lt_node_dx_set(const lt_node *nd, int k) { return k >= 0 && k < LT_MAX_IN && nd->dx_set[k]; }
float *lt_node_y(const lt_node *nd) { return nd->y; }
float *lt_node_dy(const lt_node *nd) { return nd->dy; }
float *lt_node_w(lt_model *m, const lt_node *nd, int k) { return m->w + m->params[nd->p0 + k].off; }
float *lt_node_gw(lt_model *m, const lt_node *nd, int k) {
    return (m->params[nd->p0 + k].flags & LT_MASK_FROZEN) ? NULL : m->g + m->params[nd->p0 + k].off;
}
float *lt_node_buf(lt_model *m, const lt_node *nd, int k) { return m->buf + m->bufs[nd->b0 + k].off; }
void *lt_node_cfg(lt_node *nd) { return nd->cfg; }
const void *lt_node_cfg_const(const lt_node *nd) { return nd->cfg; }
void *lt_node_userdata(const lt_node *nd) { return nd->userdata; }
int lt_node_train_mode(const lt_model *m, const lt_node *nd) { return m->training && !nd->eval_mode; }

static int in_group(const lt_node *nd, const char *group) {
    return !group || !strcmp(nd->group, group);
}

int lt_model_freeze(lt_model *m, const char *group, int frozen) {
    int hit = 0;
    for (int i = 0; i < m->n_params; i++) {
        lt_param *p = &m->params[i];
        if (!in_group(&m->nodes[p->node], group)) continue;
        hit++;
        if (frozen) p->flags |= LT_MASK_FROZEN;
        else p->flags &= (uint8_t)~LT_MASK_FROZEN;
    }
    if (m->finalized) {
        update_mask_and_flow(m);
        LT_TRY(mask_sync(m));
    }
    if (!hit && group) return lt_err(LT_EINVAL, "model: no parameters in group '%s'", group);
    return LT_OK;
}

int lt_model_set_eval(lt_model *m, const char *group, int eval_mode) {
    for (int i = 1; i < m->n_nodes; i++)
        if (in_group(&m->nodes[i], group)) m->nodes[i].eval_mode = eval_mode;
    return LT_OK;
}

/* lt_model_reinit on a device model: the host rule on a host copy of the
 * blocks (so the numbers are the cpu model's), copied back. */
static int reinit(lt_model *m, const char *group, uint64_t seed, int fresh);

static int dev_reinit(lt_model *m, const char *group, uint64_t seed, int fresh) {
    const lt_dev_ops *d = m->dev;
    float *dw = m->w, *db = m->buf;
    float *hw = lt_alloc(m->n_w * sizeof(float) + 4), *hb = lt_alloc(m->n_b * sizeof(float) + 4);
    int rc = !hw || !hb ? lt_err(LT_ENOMEM, "model: out of memory re-initialising '%s'", group ? group : "(all)") : LT_OK;
    if (!rc) rc = d->d2h(m->dctx, hw, dw, m->n_w * sizeof(float));
    if (!rc) rc = d->d2h(m->dctx, hb, db, m->n_b * sizeof(float));
    if (!rc) {
        /* the host rule writes through m->w and m->buf */
        m->w = hw;
        m->buf = hb;
        m->dev = NULL;
        rc = reinit(m, group, seed, fresh);
        m->dev = d;
        m->w = dw;
        m->buf = db;
    }
    if (!rc) rc = d->h2d(m->dctx, dw, hw, m->n_w * sizeof(float));
    if (!rc) rc = d->h2d(m->dctx, db, hb, m->n_b * sizeof(float));
    lt_free(hw);
    lt_free(hb);
    return rc;
}

/* fresh = 0: lt_model_reinit's rule; 1: finalize's (lt_model_init_params). */
static int reinit(lt_model *m, const char *group, uint64_t seed, int fresh) {
    if (!m->finalized) return lt_err(LT_ESTATE, "model: reinit before finalize");
    if (m->dev) return dev_reinit(m, group, seed, fresh);
    int hit = 0;
    for (int i = 0; i < m->n_params; i++) {
        lt_param *p = &m->params[i];
        if (!in_group(&m->nodes[p->node], group)) continue;
        lt_param q = *p;
        /* PROTOCOLS.md: a re-initialised linear layer uses U(+-1/sqrt(fan_in))
         * for weight and bias; BN-like parameters go back to their defaults. */
        if (!fresh && (q.init == LT_INIT_KAIMING || q.init == LT_INIT_UNIFORM_FANIN)) q.init = LT_INIT_UNIFORM_FANIN;
        init_param(m, &q, seed);
        hit++;
    }
    for (int i = 0; i < m->n_bufs; i++) {
        lt_buffer *b = &m->bufs[i];
        if (!in_group(&m->nodes[b->node], group)) continue;
        for (size_t k = 0; k < b->count; k++) m->buf[b->off + k] = b->init;
    }
    if (!hit && group) return lt_err(LT_EINVAL, "model: no parameters in group '%s'", group);
    return LT_OK;
}

int lt_model_reinit(lt_model *m, const char *group, uint64_t seed) {
    return reinit(m, group, seed, 0);
}

int lt_model_init_params(lt_model *m, const char *group, uint64_t seed) {
    return reinit(m, group, seed, 1);
}

int lt_model_no_decay(lt_model *m, const char *suffix) {
    size_t ls = strlen(suffix);
    for (int i = 0; i < m->n_params; i++) {
        size_t ln = strlen(m->params[i].name);
        if (ln >= ls && !strcmp(m->params[i].name + ln - ls, suffix)) m->params[i].flags |= LT_MASK_NO_DECAY;
    }
    if (m->finalized) {
        update_mask_and_flow(m);
        LT_TRY(mask_sync(m));
    }
    return LT_OK;
}

double lt_model_macs(const lt_model *m) {
    double macs = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        const lt_node *nd = &m->nodes[i];
        if (nd->ops->abi >= 2 && nd->ops->macs) macs += nd->ops->macs(m, nd);
    }
    return macs;
}

/* ---- host copies ----------------------------------------------------------------- */
static int copy_out(lt_model *m, void *dst, const void *src, size_t bytes) {
    if (!bytes) return LT_OK;
    if (!dst || !src) return lt_err(LT_EINVAL, "model: host copy with a NULL buffer");
    if (m->dev) return m->dev->d2h(m->dctx, dst, src, bytes);
    memcpy(dst, src, bytes);
    return LT_OK;
}
static int copy_in(lt_model *m, void *dst, const void *src, size_t bytes) {
    if (!bytes) return LT_OK;
    if (!dst || !src) return lt_err(LT_EINVAL, "model: host copy with a NULL buffer");
    if (m->dev) return m->dev->h2d(m->dctx, dst, src, bytes);
    memcpy(dst, src, bytes);
    return LT_OK;
}
static int rows_check(const lt_model *m, int node, int N, int grad) {
    if (node < (grad ? 1 : 0) || node >= m->n_nodes) return lt_err(LT_EINVAL, "model: no node %d", node);
    if (N <= 0 || N > m->batch) return lt_err(LT_EINVAL, "model: %d rows, planned batch %d", N, m->batch);
    return LT_OK;
}

static void host_convert(int to_nhwc, int N, int C, int HW, const float *src, float *dst) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++) {
                const size_t a = ((size_t)n * C + c) * HW + p, b = ((size_t)n * HW + p) * C + c;
                if (to_nhwc) dst[b] = src[a];
                else dst[a] = src[b];
            }
}
/* N rows of a node between the host, which always sees NCHW, and the
 * model's buffer (out: buffer -> host): a plain copy, or, for a node of
 * many pixels held NHWC by the last forward (the layout its backward
 * reads too), through a host buffer converted on the way (these are not
 * the training loop's copies). */
static int node_copy(lt_model *m, int node, int N, float *dst, const float *src, int out) {
    const lt_shape s = m->nodes[node].shape;
    const size_t bytes = (size_t)N * lt_model_out_size(m, node) * sizeof(float);
    if (!m->dev || m->fwd_layout != LT_LAYOUT_NHWC || px(s) <= 1)
        return out ? copy_out(m, dst, src, bytes) : copy_in(m, dst, src, bytes);
    if (!dst || !src) return lt_err(LT_EINVAL, "model: host copy with a NULL buffer");
    float *t = malloc(bytes + 1);
    if (!t) return lt_err(LT_ENOMEM, "model: out of memory for an NHWC copy of '%s'", m->nodes[node].name);
    int rc;
    if (out) {
        rc = copy_out(m, t, src, bytes);
        if (!rc) host_convert(0, N, s.c, px(s), t, dst);
    } else {
        host_convert(1, N, s.c, px(s), src, t);
        rc = copy_in(m, dst, t, bytes);   /* a pageable copy: t is read before it returns */
    }
    free(t);
    return rc;
}

int lt_model_out_to_host(lt_model *m, int node, int N, float *dst) {
    LT_TRY(rows_check(m, node, N, 0));
    return node_copy(m, node, N, dst, m->nodes[node].y, 1);
}
int lt_model_dout_to_host(lt_model *m, int node, int N, float *dst) {
    LT_TRY(rows_check(m, node, N, 1));
    return node_copy(m, node, N, dst, m->nodes[node].dy, 1);
}
int lt_model_dout_from_host(lt_model *m, int node, int N, const float *src) {
    LT_TRY(rows_check(m, node, N, 1));
    return node_copy(m, node, N, m->nodes[node].dy, src, 0);
}
int lt_model_param_to_host(lt_model *m, int i, float *w, float *g) {
    if (i < 0 || i >= m->n_params || !m->finalized) return lt_err(LT_EINVAL, "model: no parameter %d", i);
    const lt_param *p = &m->params[i];
    if (w) LT_TRY(copy_out(m, w, m->w + p->off, p->count * sizeof(float)));
    if (g) LT_TRY(copy_out(m, g, m->g + p->off, p->count * sizeof(float)));
    return LT_OK;
}
int lt_model_param_from_host(lt_model *m, int i, const float *w) {
    if (i < 0 || i >= m->n_params || !m->finalized) return lt_err(LT_EINVAL, "model: no parameter %d", i);
    const lt_param *p = &m->params[i];
    return copy_in(m, m->w + p->off, w, p->count * sizeof(float));
}
int lt_model_buffer_to_host(lt_model *m, int i, float *dst) {
    if (i < 0 || i >= m->n_bufs || !m->finalized) return lt_err(LT_EINVAL, "model: no buffer %d", i);
    const lt_buffer *b = &m->bufs[i];
    return copy_out(m, dst, m->buf + b->off, b->count * sizeof(float));
}
int lt_model_buffer_from_host(lt_model *m, int i, const float *src) {
    if (i < 0 || i >= m->n_bufs || !m->finalized) return lt_err(LT_EINVAL, "model: no buffer %d", i);
    const lt_buffer *b = &m->bufs[i];
    return copy_in(m, m->buf + b->off, src, b->count * sizeof(float));
}
void *lt_model_device_ctx(const lt_model *m) { return m->dctx; }
int lt_model_sync(lt_model *m) { return m->dev ? m->dev->sync(m->dctx) : LT_OK; }
