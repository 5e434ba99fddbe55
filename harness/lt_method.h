/* lt_method.h — the method plugin ABI.
 *
 * A method is one folder methods/<x>/ whose method.c exports exactly one
 * entry point, `const lt_method *lt_method_<x>(void)` (Lua's name rule:
 * folder name -> symbol). The Makefile writes build/methods_table.c listing
 * every entry point, so methods are linked statically; the runner checks
 * `abi` when it registers a method and refuses one built for a newer ABI
 * than its own (LT_EABI).
 *
 * A method may include only "lt.h" (the engine) and "lt_method.h" (this
 * file) plus standard C headers; tests/test_method_isolation.c enforces it.
 * The engine's structs are opaque to it (lt_model, lt_node): models are
 * reached through lt_model.h's accessors, and everything the runner owns
 * (the optimizer, extra batches, other models, the validation split)
 * through the host services in lt_host_api below. methods/README.md is the
 * method author's guide.
 *
 * Hooks. Every hook is optional: NULL means the engine default
 *   build       one linear layer "logits" (group "head", bias) on "feat"
 *   n_stages    1
 *   stage_begin the protocol's stage settings, untouched
 *   sampler     the stage's sampler (instance-balanced in stage 1)
 *   batch_hook  none
 *   loss        softmax cross-entropy on "logits"
 *   iter_end, epoch_end, post_train  nothing
 *   predict     the "logits" tap (the runner applies the softmax)
 *   save / load nothing (a method without private state needs neither)
 *   norm_layer  the engine's BN wherever the backbone has one (ABI 3)
 * Hooks return LT_OK or a status with a message (lt_err); any non-OK status
 * ends the run as "failed" with that message. A NaN/Inf loss is LT_ENUM.
 *
 * Compatibility (SQLite's rule): fields and hooks are only ever APPENDED to
 * the end of struct lt_method and of the structs the runner hands a method
 * (lt_run_info, lt_stage, lt_batch, lt_taps, lt_grads, lt_host_api);
 * LT_METHOD_ABI is bumped when that happens, and the runner reads a hook
 * added in ABI k only from methods built with abi >= k. Existing members
 * never change meaning (ABI 3 made lt_batch.ids writable; its type lost a
 * const, its meaning did not change).
 *
 * Determinism: a method draws random numbers only from lt_rng streams keyed
 * by (run->seed, LT_STREAM_METHOD + k), or from the per-iteration rng the
 * runner hands to batch_hook; then results are bit-identical for a seed and
 * thread count, and a resumed run equals an uninterrupted one. */
#ifndef LT_METHOD_H
#define LT_METHOD_H

#include "lt.h"

/* 1: the first table. 2: needs_feature_bank appended. 3: the host services
 * (lt_run_info.api), norm_layer, views and per-group optimizer factors in
 * lt_stage, a batch hook that may change the batch's size and ids,
 * lt_taps.x, gradients into further nodes (lt_grads.extra). 4: per-view
 * augmentation pipelines in lt_stage (view_pipelines). */
#define LT_METHOD_ABI 4

struct lt_host_api;

/* ---- what the runner tells a method about the run ------------------------ */

/* Read-only for the method; valid from init to fini. */
typedef struct lt_run_info {
    const char *protocol;        /* protocol name, e.g. "fmnist_lt_r100" */
    int protocol_version;
    const char *scale;           /* "ci" | "short" | "full" */
    const char *method;          /* the method's name */
    uint64_t seed;               /* training seed */
    int threads;
    const char *run_dir;         /* results/runs/<protocol>/<scale>/<method>/seed<k> */
    int n_classes;
    long n_train, n_test;        /* after the scale's subsampling */
    const long *class_counts;    /* [n_classes] training images per class */
    lt_shape in_shape;           /* network input per sample (n = 1) */
    int feat_dim;                /* size of the "feat" tap (set before build) */
    const lt_dataset *train;     /* the training set (uint8, read-only) */
    const lt_aug *aug;           /* training augmentation + normalisation of the protocol */
    /* Host services. The runner owns `host`; methods pass it back. */
    void *host;
    /* Writes {"event":"method","key":key,"value":value} to events.jsonl. */
    int (*log)(void *host, const char *key, double value);
    /* ---- ABI 3 ---- */
    const struct lt_host_api *api;   /* the host services (never NULL for ABI >= 3 methods) */
    const char *arch;                /* the protocol's backbone, e.g. "resnet8_cifar" */
} lt_run_info;

/* Hyper-parameters: the method's `defaults` JSON object with the request's
 * overrides applied (an override of a key absent from the defaults is an
 * error before init is called). Flat objects of numbers, booleans and
 * strings. Lookups of a missing key return LT_EINVAL naming the key. */
typedef struct lt_hparams lt_hparams;
int lt_hp_num(const lt_hparams *hp, const char *key, double *out);  /* number or bool (0/1) */
int lt_hp_int(const lt_hparams *hp, const char *key, long *out);    /* integral number */
int lt_hp_str(const lt_hparams *hp, const char *key, const char **out); /* valid until fini */
int lt_hp_has(const lt_hparams *hp, const char *key);               /* 1 if present */
/* A string hparam that must be one of names[] (NULL-terminated): *out = its
 * index; otherwise LT_EINVAL naming the key, the value and the choices. */
int lt_hp_choice(const lt_hparams *hp, const char *key, const char *const *names, int *out);

#define LT_STAGE_MAX_GROUPS 8
#define LT_STAGE_MAX_VIEW_PIPELINES 4

/* BN mode of a frozen backbone in a decoupled stage (hparam "stage2_bn"):
 * the protocol's bn_mode, running statistics, or batch statistics (the
 * official decoupling code's train-mode BN). lt_bn_mode_names lists the
 * hparam spellings in this order, for lt_hp_choice. */
enum { LT_BN_PROTOCOL = 0, LT_BN_EVAL = 1, LT_BN_TRAIN = 2 };
extern const char *const lt_bn_mode_names[];

/* ---- stages ---------------------------------------------------------------
 * Before stage_begin(stage) the runner fills *cfg from the protocol: stage 0
 * from the scale's "stage1" block, every later stage from "stage2". The
 * method may change any field. After stage_begin the runner (re)creates the
 * optimizer (fresh momentum per stage, as a new torch optimizer would) from
 * the model's current freeze mask, so stage_begin is the place to call
 * lt_model_freeze / lt_model_set_eval / lt_model_reinit on `m`.
 *
 * Resume: the runner rebuilds the model, replays stage_begin for stages
 * 0..k (k = the checkpoint's stage) and then loads model, optimizer and
 * method state from the checkpoint. So stage_begin may change flags and
 * weights freely, but anything it computes from the weights and keeps must
 * live in state that save/load persists. */
typedef struct lt_stage {
    int index;                   /* 0-based stage number */
    int proto_stage;             /* 1 or 2: the protocol block the defaults came from */
    int epochs;
    int batch;
    int drop_last;
    long samples_per_epoch;      /* indices drawn per epoch; 0 = the training-set size */
    lt_sched sched;              /* learning-rate schedule (engine) */
    int lr_per_epoch;            /* 1: lr evaluated at the epoch's first iteration only */
    double head_lr_mult;         /* lr of group "head" = lr * head_lr_mult */
    float momentum, weight_decay;
    int nesterov;
    lt_sampler_cfg sampler;      /* per-epoch sampler (the sampler hook may refine it) */
    int bn_eval;                 /* protocol's bn_mode: 1 = BN of the frozen part in eval mode */
    int augment;                 /* 1: training augmentation, 0: eval transform */
    /* Convenience switches the runner applies right after stage_begin
     * (equivalent to calling the engine functions yourself): */
    int freeze_backbone;         /* lt_model_freeze(m, "backbone", 1) */
    int reinit_head;             /* lt_model_reinit(m, "head", seed + 1000*stage) */
    /* ---- ABI 3 ---- */
    /* Views: each training batch holds `views` augmented copies of every
     * sample (rows view-major: lt_batch / lt_taps); the model forwards the
     * first `model_views` of them (the rest are in lt_taps.x for the method,
     * e.g. a key encoder's view). Defaults 1 and 1. */
    int views, model_views;
    /* Rows the batch buffers hold (batch_hook may grow lt_batch.n up to it);
     * 0: batch x views. */
    int batch_cap;
    /* Per-group optimizer factors (engine lt_optim_set_group): parameters of
     * node group `group` learn at lr x lr_mult with weight decay x wd_mult.
     * head_lr_mult above is the entry {"head", head_lr_mult, 1}. */
    int n_groups;
    struct { char group[16]; double lr_mult, wd_mult; } groups[LT_STAGE_MAX_GROUPS];
    /* ---- ABI 4 ---- */
    /* Per-view strong augmentation (lt_aug_pipeline, lt_data.h; e.g.
     * lt_aug_pipeline_mocov2): view v < n_view_pipelines whose
     * view_pipelines[v].enabled is set takes that pipeline instead of the
     * protocol's training augmentation, drawing from the view's own stream
     * (two views of a sample differ; a run is reproducible). Others keep the
     * protocol's. Only with augment = 1. The stage_begin event records each
     * pipeline and the ops it skips for the data's channel count
     * (lt_aug_pipeline_skipped: saturation, hue, grayscale on 1-channel
     * images). Default 0 (none). */
    int n_view_pipelines;
    lt_aug_pipeline view_pipelines[LT_STAGE_MAX_VIEW_PIPELINES];
} lt_stage;

/* One training batch as the runner produced it. x, labels and ids are the
 * runner's own copies: batch_hook may modify them in place (mixup, remix,
 * a redrawn batch) and may change n (up to cap rows; the forward and the
 * taps then use the new n and ids). Sample ids index the training set.
 * With views > 1 the rows are view-major: rows [v*s, (v+1)*s) are view v
 * of the batch's s = n / views samples (labels and ids repeat per view). */
typedef struct lt_batch {
    int n;                       /* rows in this batch (samples x views) */
    float *x;                    /* [n x in_shape] normalised, augmented */
    int32_t *labels;             /* [n] (batch_hook may relabel) */
    int32_t *ids;                /* [n] indices into run->train (ABI 3: writable) */
    int stage, epoch;
    long iter;                   /* iteration within the stage (0-based) */
    /* ---- ABI 3 ---- */
    int cap;                     /* rows x, labels and ids hold */
    int views;                   /* views per sample in the rows */
} lt_batch;

/* The model's taps for one batch (or for a test batch in predict). */
typedef struct lt_taps {
    int n, n_classes, feat_dim;
    const float *logits;         /* [n x n_classes] the "logits" node */
    const float *feat;           /* [n x feat_dim] the "feat" node */
    const int32_t *labels;       /* [n]; NULL in predict */
    const int32_t *ids;          /* [n] sample ids (training or test set) */
    const long *class_counts;    /* [n_classes] training counts */
    int stage, epoch;            /* -1 in predict */
    long iter;                   /* -1 in predict */
    float lr;                    /* current learning rate (0 in predict) */
    lt_model *model;             /* to read further taps (lt_model_find/lt_model_out) */
    /* ---- ABI 3 ---- */
    const float *x;              /* the input rows: [x_rows x in_shape], every view */
    int x_rows;                  /* rows in x (n when the model forwards every view) */
    int views;                   /* views per sample in x (view-major, as lt_batch) */
} lt_taps;

/* Gradients the loss hook writes. dlogits is always expected (overwrite all
 * n x n_classes values); dfeat is optional: write it and set use_dfeat = 1
 * to add a feature-space gradient (it is added to what flows back from the
 * head). Both buffers are the model's own, sized for the batch.
 * ABI 3: gradients into further nodes (a projection head's output): write
 * lt_model_dout(t->model, node) for all n rows (or copy them in with
 * lt_model_dout_from_host, which works on a device model too) and list the
 * node in extra[n_extra++]; the backward pass starts from every listed
 * node. The
 * runner zeroes the parameter gradients before calling the loss hook, so a
 * loss term on extra rows (lt_subgraph_backward) adds to the batch's. */
#define LT_GRADS_MAX_EXTRA 8
typedef struct lt_grads {
    float *dlogits;              /* [n x n_classes] */
    float *dfeat;                /* [n x feat_dim] */
    int use_dfeat;
    /* ---- ABI 3 ---- */
    int n_extra;
    int extra[LT_GRADS_MAX_EXTRA];
} lt_grads;

/* The training set's features, computed once by the runner when the method
 * sets LT_METHOD_NEEDS_FEATURE_BANK (or its needs_feature_bank says so): every training image through the eval
 * transform, model in inference mode (BN running statistics). */
typedef struct lt_feature_bank {
    long n;
    int feat_dim, n_classes;
    const float *feat;           /* [n x feat_dim] */
    const float *logits;         /* [n x n_classes] */
    const int32_t *labels;       /* [n] */
    const long *class_counts;    /* [n_classes] */
} lt_feature_bank;

/* What predict writes. */
enum { LT_SCORES_LOGITS = 0,     /* logits of a probability model: the runner applies softmax
                                    for metrics and reports the raw ECE */
       LT_SCORES_PROBS = 1,      /* already probabilities (rows sum to 1) */
       /* logits z of independent one-vs-rest sigmoids (Balanced Sigmoid):
        * AP ranks class j by z_j (the order of sigma(z_j)); top-1 and
        * per-class accuracy use the normalised sigmoid sigma(z_j) /
        * sum_k sigma(z_k); calibration as for SCORES (below): the raw ECE
        * is null, ece_ts is softmax(z / T) with T fitted on the validation
        * split. */
       LT_SCORES_SIGMOID = 2,
       /* class scores that are not a probability model's logits (NCM
        * similarities or negative distances, post-hoc rescaled logits):
        * ranked like logits (softmax for top-1 and per-class accuracy), but
        * a softmax at temperature 1 over them is no probability, so the raw
        * ECE is null; calibration is reported only temperature-scaled
        * (ece_ts). Also for SIGMOID the raw ECE is null. */
       LT_SCORES_SCORES = 3 };

/* lt_method.flags */
#define LT_METHOD_NEEDS_FEATURE_BANK 1u
/* Its batch_hook, loss and iter_end read and write only the host arrays of
 * lt_batch, lt_taps and lt_grads, of sub-graphs of the run's model
 * (lt_subgraph_*: host arrays on every backend) and of its modules (which
 * are cpu models on a device run when this flag is set), and the buffers
 * of the run's model and its teachers (device models on a device run)
 * only through the host copies (lt_model_*_to_host / _from_host; the
 * host's opt_state gives host copies there too;
 * an extra gradient written with lt_model_dout_from_host before its node
 * is listed in lt_grads.extra), never through lt_model_out, lt_model_dout
 * or lt_param_info.w. On a device model (--device cuda) the runner then
 * runs them on the host around the device's forward and backward, with
 * host copies of the logits and features (eager steps; the epoch_end
 * event's host_hook_s says what they cost, a sub-graph's device work and
 * copies included). Without it a method with a batch_hook, loss or
 * iter_end is refused on a device. post_train and class_norms get a cpu
 * twin of the model there (README). */
#define LT_METHOD_HOST_TAPS 2u

typedef struct lt_method {
    int abi;                     /* LT_METHOD_ABI */
    const char *name;            /* "ce"; equals the folder name */
    const char *version;         /* method version, bumped when numbers may change */
    const char *cite;            /* key into CITATION.cff references / paper short ref */
    const char *fidelity;        /* "official-code" | "paper" | "reconstructed" */
    const char *defaults;        /* JSON object of default hyper-parameters ("{}" if none);
                                    equals methods/<x>/defaults.json (tested) */
    size_t state_size;           /* private state: allocated zeroed by the runner, freed after fini */
    unsigned flags;              /* LT_METHOD_* */
    /* Shared stage 1: the name of a method (normally "ce") whose finished run
     * of the same protocol/scale/seed provides this method's stage 0. The
     * runner trains that method first if its final checkpoint is absent, then
     * loads its model (parameters by name; parameters the other model lacks
     * keep their initialisation) and starts this method at stage 1. NULL =
     * this method trains its own stage 0. */
    const char *stage1_from;

    int (*init)(void *st, const lt_run_info *run, const lt_hparams *hp);
    void (*fini)(void *st);

    /* Adds the head (and any extra layers) after the backbone's "feat" node
     * (index `feat`), before the runner finalizes the model. Must add a node
     * named "logits" with [n_classes] outputs. */
    int (*build)(void *st, lt_model *m, int feat);

    int (*n_stages)(const void *st);
    int (*stage_begin)(void *st, int stage, lt_stage *cfg, lt_model *m);

    /* Per epoch: refine the stage's sampler (kind, class weights...). cfg is
     * prefilled with the stage's sampler; class_weights must stay valid
     * until the next sampler call (point into the state). */
    int (*sampler)(void *st, int stage, int epoch, lt_sampler_cfg *cfg);
    /* After loading a batch, before the forward pass. rng: a stream derived
     * from (seed, LT_STREAM_METHOD, stage, global iteration). */
    int (*batch_hook)(void *st, lt_batch *b, lt_rng *rng);

    /* The training loss on the taps: *loss = mean loss over the batch, and
     * gradients in g (see lt_grads). */
    int (*loss)(void *st, const lt_taps *t, double *loss, lt_grads *g);

    /* After the optimizer step (memory banks, EMA teachers). */
    int (*iter_end)(void *st, const lt_taps *t);
    int (*epoch_end)(void *st, int stage, int epoch, lt_model *m);

    /* After the last stage (centroids, weight normalisation, logit offsets).
     * fb is NULL unless LT_METHOD_NEEDS_FEATURE_BANK is set. */
    int (*post_train)(void *st, lt_model *m, const lt_feature_bank *fb);
    /* Test-time scores [n x n_classes] from the taps; *kind = LT_SCORES_*. */
    int (*predict)(void *st, const lt_taps *t, float *scores, int *kind);

    /* Private state in the run checkpoint: records named "<prefix><key>"
     * (lt_ckpt_put / lt_ckpt_get_into). load is called after stage_begin
     * has been replayed on resume. */
    int (*save)(const void *st, lt_ckpt_writer *w, const char *prefix);
    int (*load)(void *st, const lt_ckpt *c, const char *prefix);
    /* ABI 1 ends here; new members are appended below. */

    /* ABI 2. Optional: whether this run needs the feature bank, decided from
     * the state init made (e.g. a hyper-parameter), so a method computes the
     * bank (an inference pass over the training set) only when it uses it.
     * NULL: LT_METHOD_NEEDS_FEATURE_BANK decides. */
    int (*needs_feature_bank)(const void *st);

    /* ABI 3. Optional norm-layer factory: the runner builds the backbone
     * with this wherever it has a BN (name, group and input as lt_add_bn
     * gets them); return the new node's index or a negative status. NULL:
     * the engine's BN. Also used when the host builds this method's model
     * as another run's teacher. */
    int (*norm_layer)(void *st, lt_model *m, const char *name, const char *group, int in);

    /* Appended after ABI 3's first members (read only from ABI >= 3 tables;
     * NULL in every table built before it). Optional: the L2 norm of each
     * class's EFFECTIVE classifier row, the one that scores the test set
     * (per_class.csv's weight_norm, the classifier-norm figure), called after
     * post_train: tau-normalised rows for taunorm, scaled rows for LWS,
     * centroids for NCM. norms[j] = NAN where class j has no such row (the
     * column is then left empty). NULL: the norms of the head's [C x D] weight
     * rows as the model holds them, right for every method whose test scores
     * are that layer's logits. */
    int (*class_norms)(const void *st, lt_model *m, int n_classes, double *norms);
} lt_method;

/* ---- host services (ABI 3) -------------------------------------------------
 * One append-only table of function pointers (SQLite's sqlite3_api_routines
 * pattern), reached through lt_run_info.api and called with run->host:
 *
 *   const lt_run_info *run = ...;             // kept from init
 *   run->api->draw(run->host, &req, x, y, ids);
 *
 * `version` says which members exist: a member added later is appended with
 * a higher version and only read by methods built for it. Everything a
 * service creates (sub-graphs, modules, teachers) is owned by the host and
 * freed after fini; everything it fills is the caller's memory. Creating
 * allocates, so create in init, build or stage_begin, never per iteration.
 * Each service returns LT_OK or a status with a message naming the problem. */
#define LT_HOST_API_VERSION 2   /* 2: validation_bank */

/* A second optimized module: a model of its own (a classifier trained on
 * stored features, a projection head, a student head) with its own
 * optimizer and learning-rate schedule, saved in the run's checkpoints
 * ("mod/<name>/") and restored on resume after stage_begin is replayed.
 * Its parameters are initialised from the run seed and the module name.
 * It is on the run's backend, except for a method with
 * LT_METHOD_HOST_TAPS on a device run: a cpu model there, so its hooks
 * read it through host pointers. */
typedef struct lt_module_cfg {
    lt_opt_kind kind;            /* LT_OPT_SGD / LT_OPT_ADAM */
    float momentum, weight_decay;
    int nesterov;
    lt_sched sched;              /* its schedule; module_step evaluates it */
    int lr_per_epoch;            /* 1: lr of the epoch's first iteration for the whole epoch */
    int max_rows;                /* rows one forward may have (lt_model_set_batch) */
} lt_module_cfg;

/* Another finished run's trained model, read-only (a frozen teacher). The
 * run must be of this protocol (name and sha256), scale and engine version,
 * with the given seed and hyper-parameters; anything else is refused with a
 * message saying what differs. Its parameters are frozen. */
typedef struct lt_teacher_req {
    const char *method;          /* the teacher run's method */
    long seed;                   /* -1: this run's seed */
    const char *hparams;         /* JSON overrides that run was made with (NULL: its defaults) */
    int bn_train;                /* 1: its BN layers use batch statistics in training forwards
                                    (forward with training = 1; their running statistics then
                                    move, and are saved with the run); 0: running statistics */
    int max_rows;                /* rows one forward may have */
} lt_teacher_req;

/* Extra batches: lt_draw_req and its rules are the engine's (lt_data.h,
 * lt_drawer); the host's draw runs them on the run's training set,
 * augmentation and seed. */

typedef struct lt_host_api {
    int version;                 /* LT_HOST_API_VERSION of the runner */

    /* Sub-graph of a model (the run's, a module's or a teacher's): nodes
     * after `from` up to `to` (names) run on up to max_rows extra rows with
     * buffers of their own; see lt_subgraph_* in lt_model.h. */
    int (*subgraph)(void *host, lt_model *m, const char *from, const char *to, int max_rows, lt_subgraph **sg);

    /* A module named `name` (a C identifier) taking rows of shape `in`:
     * *m is an empty model (input node only) to add layers to, then
     * module_ready finalizes it, plans max_rows and creates its optimizer. */
    int (*module_new)(void *host, const char *name, lt_shape in, lt_model **m);
    int (*module_ready)(void *host, lt_model *m, const lt_module_cfg *cfg);
    /* One optimizer step of the module at iteration `iter` of the stage
     * (ipe iterations per epoch) after the caller's zero_grad, forward, loss
     * and backward on it; *lr (may be NULL) receives the rate used. */
    int (*module_step)(void *host, lt_model *m, long iter, long ipe, float *lr);

    int (*teacher)(void *host, const lt_teacher_req *req, lt_model **m);

    int (*draw)(void *host, const lt_draw_req *req, float *x, int32_t *labels, int32_t *ids);

    /* The validation split built with the dataset (datasets: the official
     * val list, or class-balanced left-over training images), disjoint from
     * the training and test rows; *origin says which. The run records its
     * manifest hash. LT_EINVAL when the dataset has none. */
    int (*validation)(void *host, const lt_dataset **val, const char **origin);

    /* The run optimizer's state of parameter `name` in the current stage:
     * s1 = SGD momentum buffer (Adam first moment), s2 = Adam second moment
     * (NULL for SGD), as it is before this iteration's step. Host arrays
     * on every backend (on a device run the host's copies, valid until the
     * next call for the same parameter). */
    int (*opt_state)(void *host, const char *name, const float **s1, const float **s2, size_t *count);

    /* ---- version 2 ---- */
    /* The validation split (as `validation` gives it) through the run's
     * model in inference mode and the eval transform, as the training
     * feature bank is made: feat, logits, labels, and the training
     * class_counts. For selecting something on held-out images after
     * training (taunorm's tau): call from post_train. The buffers are the
     * host's, valid until the next call or fini. */
    int (*validation_bank)(void *host, lt_feature_bank *fb);
} lt_host_api;

/* ---- the decoupled stage-2 prologue ----------------------------------------
 * What cRT, LWS, decoupled Balanced Softmax and BALMS do at the start of
 * their classifier stage, once: freeze every parameter except those of
 * `train_group`, put the backbone's BN into the chosen mode, optionally
 * re-initialise train_group (PROTOCOLS.md: U(+-1/sqrt(fan_in)) from seed
 * run seed + 1000 x stage, as the runner's reinit_head) and choose the
 * sampler. Sets cfg->freeze_backbone, cfg->reinit_head and cfg->bn_eval to
 * match, so the runner's switches repeat the same idempotent operations. */
typedef struct lt_decoupled {
    int bn;                      /* LT_BN_PROTOCOL / LT_BN_EVAL / LT_BN_TRAIN */
    const char *train_group;     /* the only trainable group ("head") */
    int reinit;                  /* 1: re-initialise train_group ("head" only) */
    uint64_t seed;               /* the run seed */
    int sampler;                 /* an lt_sampler_kind, or -1 to keep the stage's */
    int k_per_class;             /* LT_SAMPLER_CLASS_AWARE: samples per class visit */
} lt_decoupled;
int lt_stage_decoupled(lt_stage *cfg, lt_model *m, const lt_decoupled *d);

#endif
