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
 * Hooks return LT_OK or a status with a message (lt_err); any non-OK status
 * ends the run as "failed" with that message. A NaN/Inf loss is LT_ENUM.
 *
 * Compatibility (SQLite's rule): fields and hooks are only ever APPENDED to
 * the end of struct lt_method; LT_METHOD_ABI is bumped when that happens, and
 * the runner reads a hook added in ABI k only from methods built with
 * abi >= k. Existing members never change meaning.
 *
 * Determinism: a method draws random numbers only from lt_rng streams keyed
 * by (run->seed, LT_STREAM_METHOD + k), or from the per-iteration rng the
 * runner hands to batch_hook; then results are bit-identical for a seed and
 * thread count, and a resumed run equals an uninterrupted one. */
#ifndef LT_METHOD_H
#define LT_METHOD_H

#include "lt.h"

/* 1: the first table. 2: needs_feature_bank appended. */
#define LT_METHOD_ABI 2

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
} lt_stage;

/* One training batch as the runner produced it. x is the runner's own copy
 * (batch_hook may modify it in place: mixup, remix); sample ids index the
 * training set. */
typedef struct lt_batch {
    int n;                       /* samples in this batch */
    float *x;                    /* [n x in_shape] normalised, augmented */
    int32_t *labels;             /* [n] (batch_hook may relabel) */
    const int32_t *ids;          /* [n] indices into run->train */
    int stage, epoch;
    long iter;                   /* iteration within the stage (0-based) */
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
} lt_taps;

/* Gradients the loss hook writes. dlogits is always expected (overwrite all
 * n x n_classes values); dfeat is optional: write it and set use_dfeat = 1
 * to add a feature-space gradient (it is added to what flows back from the
 * head). Both buffers are the model's own, sized for the batch. */
typedef struct lt_grads {
    float *dlogits;              /* [n x n_classes] */
    float *dfeat;                /* [n x feat_dim] */
    int use_dfeat;
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
enum { LT_SCORES_LOGITS = 0,     /* the runner applies softmax for metrics/ECE */
       LT_SCORES_PROBS = 1,      /* already probabilities (rows sum to 1) */
       /* logits z of independent one-vs-rest sigmoids (Balanced Sigmoid):
        * AP ranks class j by z_j (the order of sigma(z_j)); top-1 and ECE use
        * the normalised sigmoid sigma(z_j) / sum_k sigma(z_k). */
       LT_SCORES_SIGMOID = 2 };

/* lt_method.flags */
#define LT_METHOD_NEEDS_FEATURE_BANK 1u

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
} lt_method;

#endif
