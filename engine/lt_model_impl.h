/* lt_model_impl.h — the model's structs, for the engine files that own them
 * (lt_model.c, lt_layers.c, lt_resnet.c, lt_model_io.c, lt_subgraph.c,
 * lt_optim.c, lt_step.c) and for white-box tests. Everything else, methods and the
 * harness included, sees lt_model and lt_node as opaque handles and goes
 * through the accessors of lt_model.h, so the layout can change (a CUDA
 * backend's device buffers) without touching a plugin. */
#ifndef LT_MODEL_IMPL_H
#define LT_MODEL_IMPL_H

#include "lt_model.h"

struct lt_node {
    const lt_layer_ops *ops;
    char name[LT_NAME_MAX];
    char group[16];
    int in[LT_MAX_IN], n_in;
    lt_shape shape;             /* per-sample output shape (n = 1) */
    float *y, *dy;              /* [N x shape] activations and their gradient */
    float *saved;               /* saved_per_sample*N + saved_fixed floats */
    size_t saved_per_sample, saved_fixed;      /* set by plan */
    int p0, np;                 /* this node's parameters: params[p0 .. p0+np) */
    int b0, nb;                 /* this node's buffers */
    int eval_mode;              /* BN-like layers: use running statistics even when training */
    int need_dy;                /* computed: some trainable parameter at or before this node */
    int keep_dy;                /* set by lt_model_backward for taps the caller filled */
    /* set by lt_model_backward: 1 where this node is the first writer of
     * input k's dy in the pass, so its backward must overwrite (dx = ...)
     * instead of accumulating; only for layers with LT_LAYER_SETS_DX */
    unsigned char dx_set[LT_MAX_IN];
    unsigned char dy_written;   /* lt_model_backward's bookkeeping */
    unsigned char fuse;         /* inference fusion planned at set_batch: 0, 1 (producer -> affine), 2 (+ ReLU),
                                   3 (producer -> affine -> residual add -> ReLU), 4 (the same with the
                                   shortcut node between affine and add, run first) */
    unsigned char fuse_train;   /* training fusion planned at set_batch: 1 = node -> in-place ReLU at the next node */
    unsigned char fused_now;    /* 1: the last forward ran this node fused with its ReLU (lt_model_backward follows it) */
    unsigned char kind;         /* lt_layer_kind (lt_layers_impl.h), from the ops table's address at add */
    void *userdata;             /* the plugin layer's userdata (lt_model_add_ud), not owned */
    /* aligned: layers cast it to their own config struct (fields added
     * before it once left it at an odd offset, caught by UBSan) */
    _Alignas(16) unsigned char cfg[LT_LAYER_CFG_MAX];   /* layer configuration (layer-private, plain data) */
};

typedef struct {
    char name[96];          /* "<node>.<suffix>", e.g. "layer1.0.conv1.weight" */
    size_t off, count;
    int node, fan_in, init;
    uint8_t flags;          /* LT_MASK_FROZEN | LT_MASK_NO_DECAY (lt_loss.h) */
} lt_param;

typedef struct {
    char name[96];
    size_t off, count;
    int node;
    float init;
} lt_buffer;

/* A device model's host layers' mirrors (lt_model_host.c): the parameter,
 * gradient and buffer blocks at the device blocks' offsets (only a host
 * node's ranges are copied), one arena a call carves for `rows` rows, and
 * the labels' copy. */
typedef struct {
    float *w, *g, *buf;
    float *arena;
    int32_t *labels;
    int labels_ok;          /* 1: labels holds this forward's (lt_model_forward clears it) */
    int rows;               /* the rows the arena and labels hold */
    double seconds;         /* wall time in host layers' calls, copies included */
} lt_model_host;

struct lt_model {
    lt_backend *backend;    /* where it computes (not owned; lt_model_create_on) */
    lt_shape in_shape;
    lt_node *nodes; int n_nodes, cap_nodes;
    lt_param *params; int n_params, cap_params;
    lt_buffer *bufs; int n_bufs, cap_bufs;
    size_t n_w, n_b;        /* floats in the parameter / buffer blocks */
    float *w, *g;           /* parameters and gradients (same order) */
    uint8_t *mask;          /* one byte per parameter float */
    float *buf;             /* non-trainable buffers (BN running stats) */
    int finalized;
    int batch;              /* planned batch size (0 = none) */
    float *acts; size_t acts_floats;
    float *scratch; size_t scratch_floats;
    const float *x;         /* current input (not owned) */
    int training;           /* last forward's mode */
    int zero_all_dy;        /* 1: zero every dy before backward (the reference
                               mode the first-writer rule is tested against) */
    int no_fuse;            /* 1: no inference or training fusion */
    float *fuse_coef; size_t fuse_floats;   /* 3 x the widest affine node: fusion coefficients */
    /* a cuda backend's device functions and context (NULL on cpu: every
     * device branch is `if (m->dev)`). w, g, buf, acts, scratch are device
     * memory then; mask stays on the host (update_mask_and_flow writes it)
     * with its device copy dmask; xin holds the input rows copied over. */
    const struct lt_dev_ops *dev;
    struct lt_cuda_ctx *dctx;
    uint8_t *dmask;
    float *xin; size_t xin_floats;
    /* the activation layout on the device (lt_model_set_layout); NHWC: the
     * input rows are converted from xin into xin_t before the first layer,
     * and fwd_layout is the layout of the last forward (its saved tensors
     * are what the backward reads) */
    lt_layout layout, fwd_layout;
    float *xin_t; size_t xin_t_floats;
    int dev_status;         /* a failed device call of a void function (zero_grad), reported by the next forward */
    /* the rows' labels for label-conditioned layers (lt_model_set_labels):
     * labels_next, set for the next training forward, becomes labels_now
     * when it starts (NULL: none given); backend memory (on a device the
     * model's own dlabels copy, or lt_step's staged labels); n_* its rows */
    const int32_t *labels_next, *labels_now;
    int n_labels_next, n_labels_now;
    int32_t *dlabels; size_t dlabels_n;   /* a device model's copy (lt_model_set_labels) */
    lt_model_host *host;    /* NULL unless a device model has host layers (lt_model_host_plan) */
};

/* The parameter record by name (NULL if absent); engine files and tests. */
lt_param *lt_model_param(lt_model *m, const char *name);
/* A device model's training or inference forward from the rows already in
 * m->xin (the caller copied them, asynchronously: lt_step.c), so nothing in
 * it waits for the host. LT_EINVAL on a cpu model. */
int lt_model_forward_staged(lt_model *m, int N, int training);
/* lt_model_set_labels with labels already in backend memory (lt_step's
 * staged labels on a device, the caller's array on cpu): the pointer is
 * kept, nothing copied, so a captured step reads what each replay staged. */
void lt_model_labels_at(lt_model *m, const int32_t *y, int n);
/* Nodes (from, to] one by one, unfused, on the model's backend, with the
 * buffers their structs point at now: forward in order (bwd 0), or
 * backward in reverse (bwd 1; nodes without need_dy skipped; on a device
 * the backward ends with the join, as lt_model_backward's). Errors name
 * the node after `what` ("sub-graph forward of 'fc'"). For lt_subgraph.c,
 * which points the range at buffers of its own first. */
int lt_model_run_nodes(lt_model *m, int from, int to, int N, int bwd, const char *what);

/* ---- a device model's host layers (lt_model_host.c) ----
 * 1 when node nd of a device model runs on the host: a plugin layer
 * without forward_cuda. */
int lt_model_host_node(const lt_model *m, const lt_node *nd);
/* Mirrors for calls of up to `rows` rows (grown, never shrunk); nothing on
 * a cpu model or one without host nodes. set_batch and lt_subgraph_create. */
int lt_model_host_plan(lt_model *m, int rows);
void lt_model_host_free(lt_model *m);
/* The forward (bwd 0) or backward function a host node runs through. */
typedef int (*lt_layer_fn)(lt_model *m, lt_node *nd, int N);
lt_layer_fn lt_model_host_fn(int bwd);

#endif
