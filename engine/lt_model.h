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

#include "lt_backend.h"
#include "lt_base.h"
#include "lt_ckpt.h"

/* 1: the first table. 2: `fusion` and `macs` appended (capabilities instead
 * of type names: the engine never compares a layer's `type` string).
 * 3: `forward_cuda` and `backward_cuda` appended (a plugin's device
 * implementation; built-in layers take theirs from the backend). */
#define LT_LAYER_ABI 3
#define LT_NAME_MAX 64
#define LT_MAX_IN 2
#define LT_LAYER_CFG_MAX 192   /* bytes of plain-data configuration a node carries */

/* Opaque handles: a model and one of its nodes. Layers, methods and the
 * harness reach a node's buffers through the accessors below only. */
typedef struct lt_model lt_model;
typedef struct lt_node lt_node;

/* ---- layer types -------------------------------------------------------------
 * Built-ins are below; a method defines its own (mixture BN) with the same
 * table and adds it with lt_model_add / lt_model_add_ud (ggml's custom-op
 * pattern: the table plus a userdata pointer the node carries).
 *
 * Capability flags (lt_layer_ops.flags). The engine decides in-place
 * buffers and fusions from these and from `fusion`, never from `type`: a
 * plugin layer that calls itself "bn" but declares nothing is run as a
 * plain node. */
#define LT_LAYER_SETS_DX 1u    /* backward honours lt_node_dx_set(nd, k): overwrites input k's
                                  gradient instead of accumulating (the engine then skips
                                  zeroing it) */
#define LT_LAYER_BWD_NO_Y 2u   /* backward never reads the node's own output, so a following
                                  in-place layer may overwrite it (BN reads its input, a sum
                                  reads nothing) */
#define LT_LAYER_IN_PLACE 4u   /* one input; forward may write its output over that input and
                                  backward needs only its output and dy (ReLU) */
#define LT_LAYER_EPI_RELU 8u   /* computes exactly max(0, x) of its one input: a producer's
                                  fused epilogue may apply it instead */
#define LT_LAYER_EPI_ADD 16u   /* computes exactly x0 + x1: a producer's fused epilogue may add
                                  the other input instead */

struct lt_conv_epilogue;

/* The fusions a layer can take part in. A NULL member means "cannot". */
typedef struct lt_layer_fusion {
    /* An affine node in inference: y = (x - mu_c) * a_c + b_c per channel
     * (BN with running statistics). Writes mu, a, b [C]. */
    int (*eval_affine)(lt_model *m, const lt_node *nd, float *mu, float *a, float *b);
    /* A producer that applies an epilogue (affine, residual add, ReLU) while
     * it stores its output, writing `out` instead of its own y (conv). */
    int (*forward_epilogue)(lt_model *m, lt_node *nd, int N, float *out, const struct lt_conv_epilogue *ep);
    /* Training: this node and the in-place ReLU reading it as one pass.
     * forward returns 1 when it ran fused, 0 when the pair must run
     * unfused this time (a BN in eval mode), negative on error; backward
     * writes the input gradient from the ReLU's dy and output. */
    int (*forward_relu)(lt_model *m, lt_node *nd, int N);
    int (*backward_relu)(lt_model *m, lt_node *nd, const lt_node *relu, int N);
    /* A node whose output is zero outside channels [*c0, *c1) can write only
     * those (option-A shortcut); the epilogue then adds only them. */
    int (*forward_data)(lt_model *m, lt_node *nd, int N, int *c0, int *c1);
} lt_layer_fusion;

typedef struct lt_layer_ops {
    int abi;               /* LT_LAYER_ABI the table was written for (1 or 2) */
    const char *type;      /* "conv2d", "bn", ...: for messages only */
    /* Sizes only: set the output shape (lt_node_set_shape), declare parameters
     * and buffers (lt_model_param_add / lt_model_buffer_add) and saved floats
     * (lt_node_set_saved). */
    int (*plan)(lt_model *m, lt_node *nd);
    int (*forward)(lt_model *m, lt_node *nd, int N);
    /* Accumulate into the inputs' gradients (when lt_node_dx is non-NULL) and
     * into parameter gradients (when lt_node_gw is non-NULL). A layer with
     * LT_LAYER_SETS_DX overwrites input k's gradient instead when
     * lt_node_dx_set(nd, k). */
    int (*backward)(lt_model *m, lt_node *nd, int N);
    /* Scratch floats this node needs for batch N (shared, reused by every
     * node; NULL = none). */
    size_t (*scratch)(const lt_node *nd, int N);
    unsigned flags;        /* LT_LAYER_* */
    /* ---- ABI 2 ---- */
    const lt_layer_fusion *fusion;   /* NULL: takes part in no fusion */
    /* Forward multiply-adds per sample (GFLOP/s reports); NULL = 0. */
    double (*macs)(const lt_model *m, const lt_node *nd);
    /* ---- ABI 3 ---- */
    /* The layer on a cuda model: every node buffer the accessors return
     * (lt_node_x, _y, _dy, _dx, _w, _gw, _buf, _saved, lt_model_scratch) is
     * device memory, lt_model_device_ctx gives the lt_cuda_ctx (its stream;
     * engine/cuda/lt_cuda.h). Same contract as forward / backward. With the
     * filter-gradient stream on (lt_cuda_set_wgrad_stream), a
     * backward_cuda that calls lt_cuda_conv2d_backward must leave that
     * call's x and dy as they are until the model's backward ends (the
     * filter gradient may still read them then), or lt_cuda_join before
     * changing them; dw is complete at the backward's end. forward_cuda
     * NULL: on a cuda model the layer runs its CPU forward / backward on
     * host copies (lt_model_n_host_nodes), so a method's layer, built by
     * cc, trains on the device at the price of those copies; a
     * forward_cuda without a backward_cuda fails in backward, naming the
     * layer. Built-in layers leave them NULL: the backend holds their
     * device implementations, by kind. */
    int (*forward_cuda)(lt_model *m, lt_node *nd, int N);
    int (*backward_cuda)(lt_model *m, lt_node *nd, int N);
} lt_layer_ops;

/* ---- node accessors (for layer implementations) --------------------------------- */
const char *lt_node_name(const lt_node *nd);
const char *lt_node_group(const lt_node *nd);
const char *lt_node_type(const lt_node *nd);
int lt_node_n_inputs(const lt_node *nd);
int lt_node_input(const lt_node *nd, int k);           /* node index of input k */
lt_shape lt_node_shape(const lt_node *nd);             /* per-sample output shape (n = 1) */
lt_shape lt_node_in_shape(const lt_model *m, const lt_node *nd, int k);
void lt_node_set_shape(lt_node *nd, lt_shape s);       /* plan */
/* Floats kept from forward to backward: per_sample x N + fixed (plan). */
void lt_node_set_saved(lt_node *nd, size_t per_sample, size_t fixed);
float *lt_node_saved(const lt_node *nd);               /* [per_sample x batch] then [fixed] */
float *lt_node_saved_fixed(const lt_model *m, const lt_node *nd);   /* the fixed part */
const float *lt_node_x(const lt_model *m, const lt_node *nd, int k);   /* input k's activations */
float *lt_node_dx(lt_model *m, const lt_node *nd, int k);  /* input k's gradient, NULL when not needed */
int lt_node_dx_set(const lt_node *nd, int k);          /* LT_LAYER_SETS_DX: overwrite input k's gradient */
float *lt_node_y(const lt_node *nd);                   /* [N x shape]; NHWC on a device model in that layout */
float *lt_node_dy(const lt_node *nd);
float *lt_node_w(lt_model *m, const lt_node *nd, int k);   /* the node's k-th parameter */
float *lt_node_gw(lt_model *m, const lt_node *nd, int k);  /* its gradient; NULL when frozen */
float *lt_node_buf(lt_model *m, const lt_node *nd, int k); /* the node's k-th buffer */
void *lt_node_cfg(lt_node *nd);                        /* LT_LAYER_CFG_MAX bytes, 16-aligned */
const void *lt_node_cfg_const(const lt_node *nd);
void *lt_node_userdata(const lt_node *nd);
/* 1 when the node should use batch statistics: a training forward and the
 * node not put into eval mode (lt_model_set_eval). */
int lt_node_train_mode(const lt_model *m, const lt_node *nd);
int lt_model_training(const lt_model *m);              /* mode of the running forward/backward */
/* In a training forward given labels (lt_model_set_labels) for at least N
 * rows, those labels (device memory on a device model); NULL otherwise,
 * and in every inference forward. */
const int32_t *lt_model_labels(const lt_model *m, int N);
float *lt_model_scratch(lt_model *m);                  /* the shared scratch (see ops.scratch) */

/* Initialisation rules for parameters (lt_model_param_add). */
enum {
    LT_INIT_KAIMING = 0,   /* N(0, 2/fan_in): conv and linear weights (PROTOCOLS.md) */
    LT_INIT_ZERO = 1,
    LT_INIT_ONE = 2,
    LT_INIT_UNIFORM_FANIN = 3  /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): re-initialised linear layers */
};

/* ---- building ---------------------------------------------------------------- */
/* A model on backend b (lt_backend.h; NULL = the process default, cpu with
 * the options of LT_CONV_REF / LT_CONV_WINO): its layers take their kernel
 * path from b (a conv node fixes it when it is added), so models on
 * different backends in one process each compute on their own. The model
 * does not own b: b must outlive it. Node 0 = "input".
 *
 * On a cuda backend (lt_backend_cuda_create) the parameter, gradient, mask,
 * buffer, activation, saved and scratch blocks are device memory: every
 * float * the model hands out (lt_model_out / _dout, lt_param_info.w / .g,
 * lt_buffer_info.data, lt_model_param_data, lt_node_* accessors,
 * lt_optim_state) is a DEVICE pointer then; read and write them with the
 * lt_model_*_host helpers below. lt_model_forward's x stays host memory
 * (copied to the device). Built-in layers run engine/cuda's kernels, plugin
 * layers their forward_cuda / backward_cuda (ABI 3), or without them their
 * CPU code on host copies (lt_model_n_host_nodes). There the training fusion covers BN -> ReLU and the
 * residual sum -> ReLU (the backend's layer table offers the pairs; the
 * sum's in eval-mode forwards too), bit for bit the unfused numbers
 * (tests/gpu/test_model_cuda.c); as on the CPU, a fused pair's backward
 * leaves the first node's own dy unwritten (a tap there unfuses it), which
 * on a device holds for a sum before a ReLU as well. The inference fusions
 * are CPU kernels. lt_model_set_no_fuse turns it off. lt_model_reinit, save /
 * load of models and optimizers copy through the host (the checkpoint
 * format is the cpu model's). */
int lt_model_create_on(lt_model **m, lt_shape in, lt_backend *b);
/* lt_model_create_on(m, in, NULL): every caller that names no backend. */
int lt_model_create(lt_model **m, lt_shape in);
/* The backend the model was created on (the default one for NULL). */
lt_backend *lt_model_backend(const lt_model *m);
void lt_model_free(lt_model *m);
/* Adds a node; returns its index (>= 1) or a negative status (message set).
 * cfg (at most LT_LAYER_CFG_MAX bytes) is copied into the node. */
int lt_model_add(lt_model *m, const lt_layer_ops *ops, const char *name, const char *group,
                 int in0, int in1, const void *cfg, size_t cfg_size);
/* The same with a userdata pointer the node keeps (not owned: it must outlive
 * the model); lt_node_userdata returns it. */
int lt_model_add_ud(lt_model *m, const lt_layer_ops *ops, const char *name, const char *group,
                    int in0, int in1, const void *cfg, size_t cfg_size, void *userdata);
/* For plan functions: declare a parameter / a buffer of this node. */
int lt_model_param_add(lt_model *m, lt_node *nd, const char *suffix, size_t count, int fan_in,
                       int init, uint8_t flags);
int lt_model_buffer_add(lt_model *m, lt_node *nd, const char *suffix, size_t count, float init);
/* Renames node `node`'s parameters and buffers "<node name>.<suffix>" to
 * "<prefix>.<suffix>" before finalize, so a layer can own the parameter
 * names another model used (LWS's linear layer keeps CE's "logits.*" while
 * its node is "logits_linear"). Initialisation streams are keyed by the new
 * names. */
int lt_model_rename_params(lt_model *m, int node, const char *prefix);
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
/* Cosine classifier with a learned scale: y = s * <x/|x|, w_j/|w_j|> with
 * s = scale_init * p, p the node's one-float parameter "<name>.scale"
 * (init 1, no weight decay: lt_model_param_flags clears that), so
 * re-initialising the head restores scale_init. lt_add_cosine is the fixed
 * scale (CBD: sigma = 20 fixed; CAMC: s learned or fixed). */
int lt_add_cosine_learned(lt_model *m, const char *name, const char *group, int in, int out,
                          float scale_init);
/* Per-class scale on the input logits (LWS): y_j = s_j * x_j, s init 1, no decay. */
int lt_add_scale(lt_model *m, const char *name, const char *group, int in);

/* ResNets. Adds the backbone (group "backbone") ending in a global average
 * pool node named "feat"; returns that node's index. arch is one of
 * resnet8_cifar resnet20_cifar resnet32_cifar resnet56_cifar (option-A
 * shortcuts) resnet10 resnet18 resnet34 resnet50 resnet101 resnet152
 * resnext50_32x4d (ImageNet-style, 7x7 stem + max-pool, 1x1 conv + BN
 * projection shortcuts). */
int lt_resnet_backbone(lt_model *m, const char *arch);
/* A norm-layer factory: called wherever the backbone has a BN, with the
 * name ("layer1.0.bn1", "bn1", "layer2.0.downsample.1"), group and input
 * the BN would get; returns the new node's index or a negative status, as
 * lt_add_bn does. Mixture BN puts its own layer there. */
typedef int (*lt_norm_fn)(void *ud, lt_model *m, const char *name, const char *group, int in);
/* lt_resnet_backbone with every BN made by norm(ud, ...) (NULL: lt_add_bn). */
int lt_resnet_backbone_norm(lt_model *m, const char *arch, lt_norm_fn norm, void *ud);
/* Convenience: a complete classifier: backbone, "feat", linear head "logits"
 * (group "head", bias on), finalized and planned for `batch`. */
int lt_model_classifier(lt_model **m, const char *arch, lt_shape in, int n_classes, int batch,
                        uint64_t seed);
/* Forward MACs per image (the layers' macs callbacks), for GFLOP/s reporting. */
double lt_model_macs(const lt_model *m);

/* ---- running ----------------------------------------------------------------- */
/* x: [N x in_shape]; N <= planned batch. training selects batch statistics
 * (nodes put in eval mode still use running statistics).
 * Inference (training = 0) fuses a producer with an epilogue (conv) -> an
 * affine node (BN) [-> in-place ReLU] when the producer feeds only that
 * node, and producer -> affine -> residual add -> in-place ReLU when the
 * affine node feeds only the add: the producer writes the last fused node's
 * output directly and the buffers of the nodes before it are not filled.
 * The numbers are the unfused ones bit for bit (tests/test_model.c);
 * lt_model_set_no_fuse keeps every node's output, e.g. to read a conv's
 * output by name after an eval forward.
 * Training (training = 1) fuses a node that offers forward_relu (a
 * train-mode BN) with the in-place ReLU that is its only reader: one pass
 * writes the ReLU's output (which is the BN's buffer anyway), and
 * lt_model_backward runs the pair as one pass that leaves the BN's own dy
 * unwritten. Gradients and running statistics are the unfused ones bit for
 * bit (tests/test_model.c). Which nodes fuse is decided by the layers'
 * capability flags and fusion tables (lt_layer_ops), never by type name. */
int lt_model_forward(lt_model *m, const float *x, int N, int training);
/* The labels of the rows of the next training forward, for the layers
 * that are conditioned on them (cam_pool with use_labels): y[0..n) is a
 * host array on every backend, n at most the planned batch (LT_ESTATE
 * before set_batch). The cpu model keeps the pointer until that forward;
 * a device model copies the labels into its own device array (planned
 * with the batch) before returning. Only the next forward sees them (a
 * forward started without this call has none; sub-graph runs never have
 * any), so a stale batch's labels never reach another batch. The training
 * step (lt_step_run) gives its own batch's labels the same way. */
int lt_model_set_labels(lt_model *m, const int32_t *y, int n);
void lt_model_zero_grad(lt_model *m);
/* Backward from taps the caller filled: before calling, write d loss / d out
 * into lt_model_dout(m, node) for each tap in taps[0..n_taps) (e.g. logits,
 * and optionally feat). Every other dy is zeroed here; tap dy are kept.
 * Parameter gradients are accumulated into (lt_model_zero_grad first). */
int lt_model_backward(lt_model *m, int N, const int *taps, int n_taps);
/* 1: no inference or training fusion (every node's output is kept). */
void lt_model_set_no_fuse(lt_model *m, int no_fuse);
/* The activation layout of a device model (lt_backend.h's lt_layout;
 * NCHW by default). NHWC keeps every tensor of more than one pixel as
 * [N][H][W][C] on the device (cuDNN's tensor-core convolutions read it
 * without transposing: PyTorch's channels_last); the input rows are
 * converted on the device, the host copies below convert, and weights,
 * gradients, the optimizer and checkpoints keep their one layout. Results
 * differ from NCHW's in the last bits (other kernels, other summation
 * orders). After finalize (LT_ESTATE before); LT_EINVAL (the model
 * unchanged) on a cpu model, or when a layer that runs NCHW only
 * (lt_dev_layer.nhwc: linear, cosine, plugin layers...) reads or writes a
 * tensor of more than one pixel, naming it. Set it between a backward and
 * the next forward: a backward after a forward in the other layout is
 * LT_ESTATE. */
int lt_model_set_layout(lt_model *m, lt_layout layout);
lt_layout lt_model_layout(const lt_model *m);

/* ---- host copies (any backend: a memcpy on cpu, a device copy on cuda) ------- */
/* Node `node`'s output / gradient for N rows (N x lt_model_out_size floats). */
int lt_model_out_to_host(lt_model *m, int node, int N, float *dst);
int lt_model_dout_to_host(lt_model *m, int node, int N, float *dst);
/* Fills a tap's gradient before lt_model_backward. */
int lt_model_dout_from_host(lt_model *m, int node, int N, const float *src);
/* Parameter i's values / gradient (count floats each; either may be NULL). */
int lt_model_param_to_host(lt_model *m, int i, float *w, float *g);
int lt_model_param_from_host(lt_model *m, int i, const float *w);
/* Buffer i (BN running statistics), count floats. */
int lt_model_buffer_to_host(lt_model *m, int i, float *dst);
int lt_model_buffer_from_host(lt_model *m, int i, const float *src);
/* The lt_cuda_ctx * of a model on a cuda backend (for plugin layers' device
 * code and tests), NULL on cpu. */
void *lt_model_device_ctx(const lt_model *m);
/* Waits for the model's device work and reports a failed kernel (LT_OK on cpu). */
int lt_model_sync(lt_model *m);
/* A device model's host layers: plugin layers without forward_cuda, which
 * run their CPU forward / backward on host copies of what they read, their
 * results copied back (engine/lt_model_host.c; the layer's own arithmetic,
 * so the node's outputs are the cpu layer's bits for the same inputs). Each
 * copy waits for the device, so lt_step does not capture such a model into
 * a CUDA graph. The count (0 on a cpu model), and the wall seconds spent in
 * their calls so far, copies included (each call first waits for the
 * device work queued before it, uncounted). */
int lt_model_n_host_nodes(const lt_model *m);
const lt_node *lt_model_first_host_node(const lt_model *m);   /* NULL when there is none */
double lt_model_host_seconds(const lt_model *m);

int lt_model_find(const lt_model *m, const char *node_name);    /* -1 if absent */
int lt_model_n_nodes(const lt_model *m);
lt_node *lt_model_node(lt_model *m, int i);                      /* NULL when out of range */
const lt_node *lt_model_node_const(const lt_model *m, int i);
lt_shape lt_model_in_shape(const lt_model *m);                   /* per sample (n = 1) */
int lt_model_batch(const lt_model *m);                           /* planned batch, 0 = none */
/* The node's device (or host) buffers as the model holds them: on a
 * device model in NHWC (lt_model_set_layout), [N][H][W][C] for a node of
 * more than one pixel; the host copies below convert to NCHW. */
float *lt_model_out(lt_model *m, int node);
float *lt_model_dout(lt_model *m, int node);
size_t lt_model_out_size(const lt_model *m, int node);           /* per sample */

/* Parameters as plain records (a copy; the pointers stay valid while the
 * model lives). */
typedef struct {
    const char *name;       /* "<node>.<suffix>" */
    size_t count;
    float *w, *g;           /* values and gradients (NULL before finalize) */
    int node;               /* owning node index */
    const char *group;      /* the owning node's group */
    unsigned flags;         /* LT_MASK_FROZEN | LT_MASK_NO_DECAY */
} lt_param_info;
int lt_model_n_params(const lt_model *m);
int lt_model_param_at(lt_model *m, int i, lt_param_info *out);        /* LT_EINVAL out of range */
int lt_model_param_find(lt_model *m, const char *name, lt_param_info *out);   /* LT_EINVAL naming it */
/* The index of parameter `name` (for lt_model_param_at and the host
 * copies lt_model_param_to_host / _from_host); -1 if absent. */
int lt_model_param_index(const lt_model *m, const char *name);
/* The tensor shape of parameter i in PyTorch's layout: conv weight
 * [co, ci/groups, kh, kw], linear / cosine weight [out, in], anything else
 * [count] (the flat data is already row-major in that order). */
int lt_model_param_shape(const lt_model *m, int i, int64_t dims[4], int *ndim);
float *lt_model_param_data(lt_model *m, const char *name);           /* NULL if absent */
/* Sets and clears LT_MASK_* flags of one parameter (the optimizer mask is
 * updated at once). */
int lt_model_param_flags(lt_model *m, const char *name, unsigned set, unsigned clear);
/* Buffers (BN running statistics) as plain records. */
typedef struct {
    const char *name;
    size_t count;
    float *data;
    int node;
} lt_buffer_info;
int lt_model_n_buffers(const lt_model *m);
int lt_model_buffer_at(lt_model *m, int i, lt_buffer_info *out);

/* Freeze / unfreeze every parameter of nodes in `group` (NULL = all). */
int lt_model_freeze(lt_model *m, const char *group, int frozen);
/* Nodes of `group` (NULL = all) use running statistics in training forward
 * passes (lt_node_train_mode returns 0 for them). */
int lt_model_set_eval(lt_model *m, const char *group, int eval_mode);
/* Re-initialise the parameters of `group` (linear layers: U(±1/sqrt(fan_in))
 * for weight and bias, PROTOCOLS.md), from (seed, stream LT_STREAM_INIT). */
int lt_model_reinit(lt_model *m, const char *group, uint64_t seed);
/* Initialise the parameters of `group` (NULL = all) as lt_model_finalize
 * does, each by its own rule and keyed by its name, from `seed`; their
 * nodes' buffers go back to their initial values. lt_model_finalize(m, s)
 * followed by lt_model_init_params(m, NULL, s) changes nothing: a network
 * trained from scratch in a later stage (cbd's student) starts as a fresh
 * model of that seed would. */
int lt_model_init_params(lt_model *m, const char *group, uint64_t seed);
/* Mark parameters whose name ends with suffix as no-decay. */
int lt_model_no_decay(lt_model *m, const char *suffix);

/* ---- sub-graphs on extra rows -------------------------------------------------
 * Runs nodes (from, to] of a model on rows that are not the current batch
 * (a memory bank's features through the head, a second batch through a
 * projection head) with activation buffers of its own, so the model's batch
 * activations (and the taps the loss reads) stay untouched. `from`'s output
 * is the input: x holds n rows of lt_model_out_size(m, from) floats. Every
 * node in (from, to] must read only nodes in [from, to]. Backward
 * accumulates into the model's parameter gradients (those of nodes in the
 * range only: nothing flows past `from`), so a loss term on extra rows adds
 * to the batch's gradient when both run between lt_model_zero_grad and the
 * optimizer step. Nodes run unfused; the values equal those the same rows
 * get inside a batch (tested). Allocates at create only. The rows given to
 * forward must stay unchanged until the matching backward (which reads
 * them again, as a layer's backward reads its input).
 * On a device model (lt_model_create_on a cuda backend) the buffers live on
 * the device and x, lt_subgraph_out and lt_subgraph_dout are host arrays
 * (NCHW, as lt_model_out_to_host gives): x is copied in at forward (and may
 * change after it), a node's output is copied out when out first asks for
 * it after a forward (NULL, with the error set, when that copy fails; what
 * the caller writes there changes nothing on the device), the taps' dout
 * are copied in at backward, and a node's gradient is copied out when dout
 * first asks after a backward. Parameter gradients stay on the device,
 * accumulated as on the cpu. Free it before its model. */
typedef struct lt_subgraph lt_subgraph;
int lt_subgraph_create(lt_subgraph **sg, lt_model *m, int from, int to, int max_rows);
int lt_subgraph_forward(lt_subgraph *sg, const float *x, int n, int training);
float *lt_subgraph_out(lt_subgraph *sg, int node);     /* [n x size] of a node in (from, to] */
float *lt_subgraph_dout(lt_subgraph *sg, int node);    /* its gradient: fill the taps before backward */
/* Backward from the taps the caller filled (nodes in (from, to]); the
 * gradient arriving at `from` is available as lt_subgraph_dout(sg, from). */
int lt_subgraph_backward(lt_subgraph *sg, int n, const int *taps, int n_taps);
void lt_subgraph_free(lt_subgraph *sg);

/* ---- optimizer over the model's flat buffers --------------------------------- */
typedef enum { LT_OPT_SGD = 0, LT_OPT_ADAM = 1 } lt_opt_kind;
#define LT_OPTIM_MAX_GROUPS 16   /* group 0 is "every other parameter" */
typedef struct {
    lt_opt_kind kind;
    float momentum, weight_decay, beta1, beta2, eps;
    int nesterov;
    size_t n;
    float *s1, *s2;   /* SGD momentum / Adam m, v */
    long step;
    /* per-group factors (lt_optim_set_group): element i uses learning rate
     * lr * lr_mult[gid[i]] and weight decay weight_decay * wd_mult[gid[i]];
     * gid NULL = every element in group 0 (factors 1) */
    uint8_t *gid;
    int n_groups;
    char group_name[LT_OPTIM_MAX_GROUPS][16];
    double lr_mult[LT_OPTIM_MAX_GROUPS], wd_mult[LT_OPTIM_MAX_GROUPS];
    /* a model on a cuda backend: s1, s2 are device memory, gid has a device
     * copy dgid (lt_optim_set_group keeps it); NULL on cpu */
    const struct lt_dev_ops *dev;
    struct lt_cuda_ctx *dctx;
    uint8_t *dgid;
} lt_optim;
int lt_optim_init(lt_optim *o, const lt_model *m, lt_opt_kind kind, float momentum,
                  float weight_decay, int nesterov);
/* Every parameter of nodes in node group `group` gets lr * lr_mult and
 * weight decay * wd_mult (llm.c's update: one loop over the flat block
 * with a per-element group index; the group's rates are computed once per
 * step, so a factor of 1 gives exactly the plain update). Calling it again
 * for a group replaces its factors. LT_EINVAL for an unknown group or more
 * than LT_OPTIM_MAX_GROUPS - 1 groups. */
int lt_optim_set_group(lt_optim *o, const lt_model *m, const char *group, double lr_mult, double wd_mult);
int lt_optim_step(lt_optim *o, lt_model *m, float lr);
/* The optimizer state of parameter `name`: s1 = SGD momentum buffer or Adam
 * first moment, s2 = Adam second moment (NULL for SGD), count floats. */
int lt_optim_state(const lt_optim *o, lt_model *m, const char *name, const float **s1, const float **s2,
                   size_t *count);
/* The same as host arrays on any backend: parameter `name`'s state copied
 * into h1 (and h2 for Adam; may be NULL for SGD), host arrays of o->n
 * floats, at the parameter's offset, and s1 / s2 pointed there (a memcpy
 * on cpu, a device copy on cuda). */
int lt_optim_state_host(const lt_optim *o, lt_model *m, const char *name, float *h1, float *h2, const float **s1,
                        const float **s2, size_t *count);
void lt_optim_free(lt_optim *o);

/* ---- persistence ------------------------------------------------------------- */
/* Parameters as "<prefix>w/<name>", buffers as "<prefix>b/<name>". */
int lt_model_save(const lt_model *m, lt_ckpt_writer *w, const char *prefix);
int lt_model_load(lt_model *m, const lt_ckpt *c, const char *prefix);
/* The buffers alone (BN running statistics), as "<prefix>b/<name>": a
 * frozen model whose statistics still move (a teacher in train-mode BN).
 * Through one host copy of the block on a device model. */
int lt_model_save_buffers(const lt_model *m, lt_ckpt_writer *w, const char *prefix);
int lt_model_load_buffers(lt_model *m, const lt_ckpt *c, const char *prefix);
int lt_optim_save(const lt_optim *o, lt_ckpt_writer *w, const char *prefix);
int lt_optim_load(lt_optim *o, const lt_ckpt *c, const char *prefix);

#endif
