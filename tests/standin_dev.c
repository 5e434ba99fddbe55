/* standin_dev.c — the host-memory stand-in device (standin_dev.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "standin_dev.h"

static float *lent_scratch;
static lt_dev_layer standin_layers[LT_LK_COUNT];

static int s_alloc(lt_cuda_ctx *c, void **p, size_t n) {
    (void)c;
    *p = n ? lt_alloc(n) : NULL;
    return n && !*p ? LT_ENOMEM : LT_OK;
}
static void s_free(lt_cuda_ctx *c, void *p) { (void)c; lt_free(p); }
/* n = 0 with NULL pointers (a model without buffers) is a valid device
 * call; memset / memcpy declare their pointers non-NULL even then */
static int s_memset0(lt_cuda_ctx *c, void *p, size_t n) { (void)c; if (n) memset(p, 0, n); return LT_OK; }
static int s_copy(lt_cuda_ctx *c, void *d, const void *s, size_t n) { (void)c; if (n) memcpy(d, s, n); return LT_OK; }
static int s_sync(lt_cuda_ctx *c) { (void)c; return LT_OK; }
static void s_ctx_free(lt_cuda_ctx *c) { (void)c; }
static int s_sgd(lt_cuda_ctx *c, size_t n, float *w, const float *g, float *mom, const uint8_t *mask,
                 const lt_sgd_cfg *cfg) {
    (void)c;
    lt_sgd_step(n, w, g, mom, mask, cfg);
    return LT_OK;
}

int standin_layer(lt_model *m, lt_node *nd, int n, int bwd) {
    float *keep = m->scratch;
    m->scratch = lent_scratch;
    const int rc = bwd ? nd->ops->backward(m, nd, n) : nd->ops->forward(m, nd, n);
    m->scratch = keep;
    return rc;
}
static int s_fwd(lt_model *m, lt_node *nd, int n) { return standin_layer(m, nd, n, 0); }
static int s_bwd(lt_model *m, lt_node *nd, int n) { return standin_layer(m, nd, n, 1); }

/* The fused pairs a device table offers (BN, sum -> in-place ReLU): the CPU
 * layer's own fusion where it has one (BN), else the two CPU layers one
 * after the other, the ReLU's backward writing the node's dy first (the
 * engine calls this only when that dy has no other writer). */
static int s_fwd_relu(lt_model *m, lt_node *nd, int n, int *fused) {
    *fused = 0;
    const lt_layer_fusion *f = nd->ops->fusion;
    if (f && f->forward_relu) {
        float *keep = m->scratch;
        m->scratch = lent_scratch;
        const int rc = f->forward_relu(m, nd, n);
        m->scratch = keep;
        if (rc < 0) return -rc;
        *fused = rc == 1;
        return LT_OK;
    }
    LT_TRY(standin_layer(m, nd, n, 0));
    LT_TRY(standin_layer(m, nd + 1, n, 0));
    *fused = 1;
    return LT_OK;
}
static int s_bwd_relu(lt_model *m, lt_node *nd, const lt_node *rn, int n) {
    const lt_layer_fusion *f = nd->ops->fusion;
    if (f && f->backward_relu) return f->backward_relu(m, nd, rn, n);
    LT_TRY(standin_layer(m, nd + 1, n, 1));
    return standin_layer(m, nd, n, 1);
}

void standin_ops_init(lt_dev_ops *ops) {
    for (int k = LT_LK_PLUGIN + 1; k < LT_LK_COUNT; k++) standin_layers[k] = (lt_dev_layer){s_fwd, s_bwd, NULL, NULL, 0};   /* NCHW only */
    standin_layers[LT_LK_BN].forward_relu = standin_layers[LT_LK_SUM].forward_relu = s_fwd_relu;
    standin_layers[LT_LK_BN].backward_relu = standin_layers[LT_LK_SUM].backward_relu = s_bwd_relu;
    memset(ops, 0, sizeof *ops);
    ops->alloc = s_alloc;
    ops->free = s_free;
    ops->memset0 = s_memset0;
    ops->h2d = s_copy;
    ops->d2h = s_copy;
    ops->d2d = s_copy;
    ops->sync = s_sync;
    ops->ctx_free = s_ctx_free;
    ops->sgd_step = s_sgd;
    ops->layers = standin_layers;
}

lt_backend *standin_backend(const lt_dev_ops *ops) {
    lt_backend *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->kind = LT_BACKEND_CUDA;
    snprintf(b->cuda_name, sizeof b->cuda_name, "cuda:fake");
    b->dev = ops;
    return b;
}

void standin_scratch_for(const lt_model *m, int N) {
    size_t sc = 0;
    for (int i = 1; i < lt_model_n_nodes(m); i++) {
        const lt_node *nd = lt_model_node_const(m, i);
        if (nd->ops->scratch && nd->ops->scratch(nd, N) > sc) sc = nd->ops->scratch(nd, N);
    }
    standin_scratch_free();
    lent_scratch = lt_alloc((sc + 16) * sizeof(float));
    assert_non_null(lent_scratch);
}

void standin_scratch_free(void) {
    lt_free(lent_scratch);
    lent_scratch = NULL;
}
