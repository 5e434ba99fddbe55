/* lt_layers_impl.h — the built-in layer kinds and their configurations, for
 * the engine files that run them: lt_layers.c (the CPU implementations),
 * lt_model.c (dispatch) and engine/cuda/lt_cuda_model.c (the CUDA
 * implementations). Not for plugins: a plugin layer is kind LT_LK_PLUGIN
 * whatever its `type` says.
 *
 * A node's kind is fixed when it is added, from its ops table's ADDRESS
 * (lt_layer_kind_of): a plugin table that copies a built-in's members is
 * still a plugin. Backends keep one table of implementations indexed by
 * kind; the engine never compares type names. */
#ifndef LT_LAYERS_IMPL_H
#define LT_LAYERS_IMPL_H

#include "lt_loss.h"
#include "lt_model_impl.h"
#include "lt_ops.h"

typedef enum {
    LT_LK_PLUGIN = 0,      /* not a built-in: its own ops table only */
    LT_LK_INPUT,           /* node 0 */
    LT_LK_CONV,
    LT_LK_BN,
    LT_LK_RELU,
    LT_LK_MAXPOOL,
    LT_LK_GAP,
    LT_LK_SUM,
    LT_LK_SHORTCUT_A,
    LT_LK_LINEAR,
    LT_LK_COSINE,
    LT_LK_COSINE_LEARNED,
    LT_LK_SCALE,
    LT_LK_CAM_POOL,
    LT_LK_COUNT
} lt_layer_kind;

/* The kind of a built-in ops table (LT_LK_PLUGIN for any other). */
lt_layer_kind lt_layer_kind_of(const lt_layer_ops *ops);
/* "conv2d", ... for messages ("?" out of range). */
const char *lt_layer_kind_name(int kind);

/* Node configurations (nd->cfg) of the built-ins. */
typedef struct { lt_conv_geom g; int bias; } lt_conv_cfg;
typedef struct { float eps, momentum; } lt_bn_cfg;
typedef struct { int k, s, p; } lt_pool_cfg;
typedef struct { int co, stride; } lt_sca_cfg;
typedef struct { int out, bias; float scale; } lt_lin_cfg;   /* linear, cosine, cosine_learned */
/* cam_pool (lt_campool.c): saved per row = A [HW] then the class as a float */
typedef struct {
    float scale, gamma;
    int stop_grad;
    int use_labels;   /* training forwards: the class is the row's label (lt_model_labels) */
    char weight[2 * LT_NAME_MAX];
} lt_cam_pool_cfg;
#define LT_CAM_POOL_EPS 1e-12f
extern const lt_layer_ops lt_cam_pool_ops;
#define LT_COS_EPS 1e-12f

/* Buffer routing shared by the implementations. */
static inline lt_node *lt_in_node(lt_model *m, const lt_node *nd, int k) { return &m->nodes[nd->in[k]]; }
/* input k's gradient, NULL when nothing upstream is trainable */
static inline float *lt_in_dy(lt_model *m, const lt_node *nd, int k) {
    lt_node *s = lt_in_node(m, nd, k);
    return (nd->in[k] > 0 && s->need_dy) ? s->dy : NULL;
}
static inline float *lt_pw(lt_model *m, const lt_node *nd, int k) { return m->w + m->params[nd->p0 + k].off; }
/* parameter k's gradient, NULL when frozen */
static inline float *lt_pg(lt_model *m, const lt_node *nd, int k) {
    return (m->params[nd->p0 + k].flags & LT_MASK_FROZEN) ? NULL : m->g + m->params[nd->p0 + k].off;
}
static inline float *lt_bf(lt_model *m, const lt_node *nd, int k) { return m->buf + m->bufs[nd->b0 + k].off; }
static inline int lt_lin_in(lt_model *m, const lt_node *nd) { return (int)lt_shape_count(lt_in_node(m, nd, 0)->shape); }

#endif
