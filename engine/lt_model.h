/* lt_model.h — models as an ordered list of layer nodes over flat buffers.
 *
 * A model is a small DAG stored in topological order: node 0 is the input,
 * every other node has one or two inputs earlier in the list (residual adds
 * have two). Building has two passes, as in llm.c: while nodes are added each
 * layer's `plan` computes its output shape and declares its parameters; then
 * lt_model_finalize allocates ONE flat buffer each for parameters, gradients
 * and the per-element optimizer mask, in the same order (so the optimizer and
 * the checkpoint are single loops), and one for non-trainable buffers (BN
 * running statistics). lt_model_set_batch plans all activations, saved
 * tensors and scratch for a batch size once; forward/backward never allocate.
 *
 * Nodes carry a group name ("backbone", "head", or any a method chooses) so
 * methods can freeze, re-initialise or put into eval mode whole parts, and a
 * node name so the outputs can be read or written as named taps ("feat",
 * "logits"). Backward accumulates into every node's dy, which lt_model_backward
 * zeroes first except for the taps the caller filled (see below). */
#ifndef LT_MODEL_H
#define LT_MODEL_H

#include "lt_base.h"
#include "lt_ckpt.h"

#define LT_LAYER_ABI 1
#define LT_NAME_MAX 64
#define LT_MAX_IN 2

typedef struct lt_model lt_model;
typedef struct lt_node lt_node;

/* A layer type. Built-ins are below; a method can define its own (mixture BN)
 * with the same table and add it with lt_model_add. */
typedef struct lt_layer_ops {
    int abi;               /* LT_LAYER_ABI */
    const char *type;      /* "conv2d", "bn", ... */
    /* Sizes only: set nd->shape (per sample), declare parameters and buffers
     * (lt_model_param_add / lt_model_buffer_add), and saved/scratch needs. */
    int (*plan)(lt_model *m, lt_node *nd);
    int (*forward)(lt_model *m, lt_node *nd, int N);
    /* Accumulate into the inputs' dy (when lt_node_in_dy is non-NULL) and into
     * parameter gradients (when the parameter is not frozen). A layer with
     * LT_LAYER_SETS_DX overwrites input k's dy instead when nd->dx_set[k]. */
    int (*backward)(lt_model *m, lt_node *nd, int N);
    /* Scratch floats this node needs for batch N (shared, reused by every
     * node; NULL = none). */
    size_t (*scratch)(const lt_node *nd, int N);
    /* LT_LAYER_SETS_DX: backward honours nd->dx_set[k] (appended in ABI 1;
     * a layer that leaves it 0 always accumulates, and the engine zeroes
     * the gradients it writes first). */
    unsigned flags;
} lt_layer_ops;

/* lt_layer_ops.flags */
#define LT_LAYER_SETS_DX 1u

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
    unsigned char fuse;         /* inference fusion planned at set_batch: 0, 1 (conv -> BN), 2 (+ ReLU),
                                   3 (conv -> BN -> residual sum -> ReLU), 4 (the same with the
                                   shortcut node between BN and sum, run first) */
    unsigned char fuse_train;   /* training fusion planned at set_batch: 1 = BN -> in-place ReLU at the next node */
    unsigned char fused_now;    /* 1: the last forward ran this BN fused with its ReLU (lt_model_backward follows it) */
    /* aligned: layers cast it to their own config struct (fields added
     * before it once left it at an odd offset, caught by UBSan) */
    _Alignas(16) unsigned char cfg[192];   /* layer configuration (layer-private, plain data) */
};

/* Initialisation rules for parameters. */
enum {
    LT_INIT_KAIMING = 0,   /* N(0, 2/fan_in): conv and linear weights (PROTOCOLS.md) */
    LT_INIT_ZERO = 1,
    LT_INIT_ONE = 2,
    LT_INIT_UNIFORM_FANIN = 3  /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): re-initialised linear layers */
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

struct lt_model {
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
    int no_fuse;            /* 1: no conv -> BN -> ReLU fusion in inference forwards */
    float *fuse_coef; size_t fuse_floats;   /* 3 x the widest BN: fusion coefficients */
};

/* ---- building ---------------------------------------------------------------- */
int lt_model_create(lt_model **m, lt_shape in);   /* node 0 = "input" */
void lt_model_free(lt_model *m);
/* Adds a node; returns its index (>= 1) or a negative status (message set). */
int lt_model_add(lt_model *m, const lt_layer_ops *ops, const char *name, const char *group,
                 int in0, int in1, const void *cfg, size_t cfg_size);
/* For plan functions: declare a parameter / a buffer of this node. */
int lt_model_param_add(lt_model *m, lt_node *nd, const char *suffix, size_t count, int fan_in,
                       int init, uint8_t flags);
int lt_model_buffer_add(lt_model *m, lt_node *nd, const char *suffix, size_t count, float init);
/* Allocates the flat blocks and initialises every parameter from seed
 * (stream LT_STREAM_INIT, one sub-stream per parameter). */
int lt_model_finalize(lt_model *m, uint64_t seed);
/* Plans activations for batch size N (reallocates only when N grows). */
int lt_model_set_batch(lt_model *m, int N);

/* Built-in layers (return node index or negative status). */
int lt_add_conv(lt_model *m, const char *name, const char *group, int in, int co, int k,
                int stride, int pad, int groups, int bias);
int lt_add_bn(lt_model *m, const char *name, const char *group, int in);
int lt_add_relu(lt_model *m, const char *name, const char *group, int in);
int lt_add_maxpool(lt_model *m, const char *name, const char *group, int in, int k, int stride,
                   int pad);
int lt_add_gap(lt_model *m, const char *name, const char *group, int in);
int lt_add_sum(lt_model *m, const char *name, const char *group, int a, int b);
int lt_add_shortcut_a(lt_model *m, const char *name, const char *group, int in, int co,
                      int stride);
int lt_add_linear(lt_model *m, const char *name, const char *group, int in, int out, int bias);
int lt_add_cosine(lt_model *m, const char *name, const char *group, int in, int out,
                  float scale);
/* Per-class scale on the input logits (LWS): y_j = s_j * x_j, s init 1, no decay. */
int lt_add_scale(lt_model *m, const char *name, const char *group, int in);

/* ResNets. Adds the backbone (group "backbone") ending in a global average
 * pool node named "feat"; returns that node's index. arch is one of
 * resnet8_cifar resnet20_cifar resnet32_cifar resnet56_cifar (option-A
 * shortcuts) resnet10 resnet18 resnet34 resnet50 resnet101 resnet152
 * resnext50_32x4d (ImageNet-style, 7x7 stem + max-pool, 1x1 conv + BN
 * projection shortcuts). */
int lt_resnet_backbone(lt_model *m, const char *arch);
/* Convenience: a complete classifier: backbone, "feat", linear head "logits"
 * (group "head", bias on), finalized and planned for `batch`. */
int lt_model_classifier(lt_model **m, const char *arch, lt_shape in, int n_classes, int batch,
                        uint64_t seed);
/* Forward MACs per image (conv and linear), for GFLOP/s reporting. */
double lt_model_macs(const lt_model *m);

/* ---- running ----------------------------------------------------------------- */
/* x: [N x in_shape]; N <= planned batch. training selects BN batch statistics
 * (nodes with eval_mode set still use running statistics).
 * Inference (training = 0) fuses conv -> BN [-> in-place ReLU] when the conv
 * feeds only that BN, and conv -> BN -> residual sum -> in-place ReLU when
 * the BN feeds only the sum: the conv writes the last fused node's output
 * directly and the buffers of the nodes before it are not filled. The numbers are the unfused ones
 * bit for bit (tests/test_model.c); set m->no_fuse to keep every node's
 * output, e.g. to read a conv's output by name after an eval forward.
 * Training (training = 1) fuses a train-mode BN with the in-place ReLU that
 * is its only reader: one pass writes the ReLU's output (which is the BN's
 * buffer anyway), and lt_model_backward runs the pair as one pass that
 * leaves the BN's own dy unwritten. Gradients and running statistics are
 * the unfused ones bit for bit (tests/test_model.c); m->no_fuse turns it off
 * too. */
int lt_model_forward(lt_model *m, const float *x, int N, int training);

/* Engine-internal (lt_model.c -> lt_layers.c): runs conv node `conv` with
 * BN node `bn`'s eval affine as its epilogue: fuse 1 writes bn's output,
 * 2 adds the in-place ReLU, 3 the residual sum at bn + 1 (its other input
 * added after the BN) and the in-place ReLU after it, writing the sum's
 * output; 4 the same with the sum at bn + 2 and the shortcut node at bn + 1
 * run first (an option-A shortcut writes only its data channels, which
 * alone are added); coef holds 3 x C floats of scratch. */
int lt_layers_conv_bn_fused(lt_model *m, int conv, int bn, int fuse, int N, float *coef);
/* Training fusion of BN node `bn` with the in-place ReLU node `relu` after
 * it: forward returns 1 when it ran fused (a train-mode BN), 0 when the pair
 * must run unfused (a BN in eval mode); backward runs both nodes' backward
 * as one pass. */
int lt_layers_bn_relu_forward(lt_model *m, int bn, int relu, int N);
int lt_layers_bn_relu_backward(lt_model *m, int bn, int relu, int N);
void lt_model_zero_grad(lt_model *m);
/* Backward from taps the caller filled: before calling, write d loss / d out
 * into lt_model_dout(m, node) for each tap in taps[0..n_taps) (e.g. logits,
 * and optionally feat). Every other dy is zeroed here; tap dy are kept. */
int lt_model_backward(lt_model *m, int N, const int *taps, int n_taps);

int lt_model_find(const lt_model *m, const char *node_name);    /* -1 if absent */
float *lt_model_out(lt_model *m, int node);
float *lt_model_dout(lt_model *m, int node);
size_t lt_model_out_size(const lt_model *m, int node);           /* per sample */
lt_param *lt_model_param(lt_model *m, const char *name);         /* NULL if absent */
float *lt_model_param_data(lt_model *m, const char *name);

/* Freeze / unfreeze every parameter of nodes in `group` (NULL = all). */
int lt_model_freeze(lt_model *m, const char *group, int frozen);
/* BN layers of `group` use running statistics in training forward passes. */
int lt_model_set_eval(lt_model *m, const char *group, int eval_mode);
/* Re-initialise the parameters of `group` (linear layers: U(±1/sqrt(fan_in))
 * for weight and bias, PROTOCOLS.md), from (seed, stream LT_STREAM_INIT). */
int lt_model_reinit(lt_model *m, const char *group, uint64_t seed);
/* Mark parameters whose name ends with suffix as no-decay. */
int lt_model_no_decay(lt_model *m, const char *suffix);

/* ---- optimizer over the model's flat buffers --------------------------------- */
typedef enum { LT_OPT_SGD = 0, LT_OPT_ADAM = 1 } lt_opt_kind;
typedef struct {
    lt_opt_kind kind;
    float momentum, weight_decay, beta1, beta2, eps;
    int nesterov;
    size_t n;
    float *s1, *s2;   /* SGD momentum / Adam m, v */
    long step;
} lt_optim;
int lt_optim_init(lt_optim *o, const lt_model *m, lt_opt_kind kind, float momentum,
                  float weight_decay, int nesterov);
int lt_optim_step(lt_optim *o, lt_model *m, float lr);
void lt_optim_free(lt_optim *o);

/* ---- persistence ------------------------------------------------------------- */
/* Parameters as "<prefix>w/<name>", buffers as "<prefix>b/<name>". */
int lt_model_save(const lt_model *m, lt_ckpt_writer *w, const char *prefix);
int lt_model_load(lt_model *m, const lt_ckpt *c, const char *prefix);
int lt_optim_save(const lt_optim *o, lt_ckpt_writer *w, const char *prefix);
int lt_optim_load(lt_optim *o, const lt_ckpt *c, const char *prefix);

#endif
