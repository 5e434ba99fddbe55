/* lt_run_train.c — the child process of a run: dataset, model, the method's
 * stages with epoch checkpoints, then lt_run_finish (lt_run_eval.c).
 *
 * Resuming is exact because nothing random depends on history: the sampler
 * order of (stage, epoch) comes from stream (seed, LT_STREAM_ORDER + 1000 *
 * stage) and epoch, augmentation from (seed, LT_STREAM_AUG + 1000 * stage,
 * epoch, slot), and the learning rate is a pure function of the iteration.
 * So a checkpoint is model + optimizer + method state + (stage, next epoch),
 * and a resumed run computes the same floats as an uninterrupted one. */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt_datasets.h"
#include "lt_io.h"
#include "lt_run_internal.h"
#include "lt_step.h"

#define STAGE_STREAM(base, stage) ((uint64_t)(base) + 1000u * (uint64_t)(stage))

void lt_run_where(lt_child *c, int stage, int epoch) {
    lt_run_send(c->job, LT_MSG_POS, stage, epoch, 0, "");
}

/* A value logged from post_train also goes into result.json's method_report. */
static int report(lt_child *c, const char *key, double value) {
    lt_run_summary *s = c->sum;
    int i = 0;
    while (i < s->n_report && strcmp(s->report_key[i], key)) i++;
    if (i == LT_RUN_MAX_REPORT)
        return lt_err(LT_EINVAL, "method %s: more than %d values reported from post_train", c->M->name,
                      LT_RUN_MAX_REPORT);
    if (strlen(key) >= sizeof s->report_key[0])
        return lt_err(LT_EINVAL, "method %s: report key '%s' longer than %zu characters", c->M->name, key,
                      sizeof s->report_key[0] - 1);
    snprintf(s->report_key[i], sizeof s->report_key[0], "%s", key);
    s->report_val[i] = value;
    if (i == s->n_report) s->n_report++;
    return LT_OK;
}

static int host_log(void *host, const char *key, double value) {
    lt_child *c = host;
    if (c->in_post_train && c->sum) LT_TRY(report(c, key, value));
    if (c->ev) return lt_events_num(c->ev, "method", 0, -1, key, value);
    /* before the log opens (a method's init): kept, written when it opens */
    lt_run_host *h = &c->host;
    if (h->n_pending == LT_HOST_MAX_PENDING)
        return lt_err(LT_EINVAL, "method %s: more than %d values logged before training", c->M->name,
                      LT_HOST_MAX_PENDING);
    snprintf(h->pending_key[h->n_pending], sizeof h->pending_key[0], "%s", key);
    h->pending_val[h->n_pending++] = value;
    return LT_OK;
}

/* ---- dataset ------------------------------------------------------------------ */

/* LVIS r/c/f per class: the build's manifest.json carries the train JSON's
 * `frequency` of every category, in label order, as extra.report.group
 * (datasets/lt_registry.c read_lvis). Frequency groups are LVIS's own
 * (image counts of the full v1 train set), not recomputed from our crops. */
static int read_freq_groups(lt_child *c, const lt_ds_built *b, int C) {
    char path[1200];
    snprintf(path, sizeof path, "%s/manifest.json", b->dir);
    cJSON *doc = NULL;
    int rc = lt_json_read(path, &doc);
    if (rc) return lt_err_wrap(rc, "frequency groups");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(doc, "extra");
    const cJSON *rep = cJSON_GetObjectItemCaseSensitive(ex, "report");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(rep, "group");
    if (!cJSON_IsString(g) || (int)strlen(g->valuestring) != C) {
        cJSON_Delete(doc);
        return lt_err(LT_EDATA, "%s: protocol %s needs extra.report.group, a string of %d r/c/f letters", path,
                      c->p->name, C);
    }
    c->freq_group = malloc((size_t)C);
    if (!c->freq_group) { cJSON_Delete(doc); return lt_err(LT_ENOMEM, "frequency groups: out of memory"); }
    for (int j = 0; j < C; j++) {
        const char l = g->valuestring[j];
        if (l != 'r' && l != 'c' && l != 'f') {
            cJSON_Delete(doc);
            return lt_err(LT_EDATA, "%s: extra.report.group[%d] = '%c', expected r, c or f", path, j, l);
        }
        c->freq_group[j] = l == 'r' ? 0 : l == 'c' ? 1 : 2;
    }
    cJSON_Delete(doc);
    return LT_OK;
}

/* How the protocol's dataset is opened (the build recipe). */
static const lt_ds_def *ds_opts(const lt_child *c, lt_ds_opts *o) {
    const lt_protocol *p = c->p;
    const lt_run_request *req = c->job->req;
    lt_ds_opts_default(o);
    o->data_dir = req->data_dir;
    switch (p->dataset.profile.kind) {
    case LT_PROTO_EXP: o->profile = LT_PROFILE_EXP; break;
    case LT_PROTO_STEP: o->profile = LT_PROFILE_STEP; break;
    default: o->profile = LT_PROFILE_NATURAL; break;
    }
    o->ir = p->dataset.profile.imbalance_ratio;
    o->seed = (uint32_t)p->dataset.profile.subset_seed;
    o->scale = c->s->name;
    o->log = c->job->log;
    o->quiet = req->quiet;
    return lt_ds_find(p->dataset.name);
}

int lt_run_open_val(lt_child *c) {
    lt_run_host *h = &c->host;
    if (h->have_val) return LT_OK;
    lt_ds_opts o;
    const lt_ds_def *def = ds_opts(c, &o);
    if (!def) return lt_err(LT_EINVAL, "protocol %s: dataset '%s' is unknown to this build", c->p->name,
                            c->p->dataset.name);
    lt_ds_val_info vi;
    memset(&vi, 0, sizeof vi);
    int rc = lt_ds_open_val(def, &o, &h->val, &vi);
    if (rc) return lt_err_wrap(rc, "validation split");
    h->have_val = 1;
    snprintf(h->val_origin, sizeof h->val_origin, "%s", vi.origin);
    snprintf(h->val_sha256, sizeof h->val_sha256, "%s", vi.manifest_sha256);
    snprintf(c->sum->val_manifest_sha256, sizeof c->sum->val_manifest_sha256, "%s", vi.manifest_sha256);
    const lt_dataset *v = &h->val;
    if (v->c != c->train.c || v->h != c->train.h || v->w != c->train.w || v->n_classes != c->C)
        rc = lt_err(LT_EDATA, "validation split of %s: images %dx%dx%d, %d classes; the training set has "
                    "%dx%dx%d, %d classes", def->name, v->c, v->h, v->w, v->n_classes, c->train.c, c->train.h,
                    c->train.w, c->C);
    h->val_n = vi.n;
    h->val_short = vi.n_short;
    if (!rc && c->ev) rc = lt_run_val_event(c);
    lt_ds_val_info_free(&vi);
    return rc;
}

int lt_run_val_event(lt_child *c) {
    const lt_run_host *h = &c->host;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "origin", h->val_origin);
    cJSON_AddStringToObject(j, "manifest_sha256", h->val_sha256);
    cJSON_AddNumberToObject(j, "n", (double)h->val_n);
    cJSON_AddNumberToObject(j, "classes_short", (double)h->val_short);
    c->host.val_logged = 1;
    return lt_events_emit(c->ev, "validation", 0, -1, "validation", j);
}

static int open_data(lt_child *c) {
    const lt_protocol *p = c->p;
    const lt_proto_scale *s = c->s;
    lt_ds_opts o;
    const lt_ds_def *def = ds_opts(c, &o);
    if (!def) return lt_err(LT_EINVAL, "protocol %s: dataset '%s' is unknown to this build", p->name, p->dataset.name);
    lt_ds_built b;
    memset(&b, 0, sizeof b);
    int rc = lt_ds_open(def, &o, &c->train_src, &c->test_src, &b);
    if (rc) return lt_err_wrap(rc, "dataset %s", def->name);
    snprintf(c->sum->ds_name, sizeof c->sum->ds_name, "%s", def->name);
    snprintf(c->sum->manifest_sha256, sizeof c->sum->manifest_sha256, "%s", b.manifest_sha256);
    if (p->groups.frequency_groups[0]) rc = read_freq_groups(c, &b, p->dataset.num_classes);
    lt_ds_built_free(&b);
    if (rc) return rc;

    const lt_dataset *tr = &c->train_src, *te = &c->test_src;
    if (tr->n_classes != p->dataset.num_classes || tr->c != p->dataset.channels)
        return lt_err(LT_EDATA, "dataset %s has %d classes x %d channels, protocol %s says %d x %d",
                      def->name, tr->n_classes, tr->c, p->name, p->dataset.num_classes, p->dataset.channels);
    if (p->dataset.expected_train_size >= 0 && tr->n != p->dataset.expected_train_size)
        return lt_err(LT_EDATA, "dataset %s: %ld training images, protocol %s expects %ld", def->name, tr->n,
                      p->name, p->dataset.expected_train_size);
    if (p->dataset.expected_test_size >= 0 && te->n != p->dataset.expected_test_size)
        return lt_err(LT_EDATA, "dataset %s: %ld test images, protocol %s expects %ld", def->name, te->n,
                      p->name, p->dataset.expected_test_size);

    /* Scale: at most k training images per class (the first k of each class
     * in subset order) and the first N test images. */
    c->C = tr->n_classes;
    c->train = *tr;
    c->test = *te;
    if (s->subsample_train_per_class > 0) {
        int32_t *idx = malloc((size_t)tr->n * sizeof *idx);
        long *seen = calloc((size_t)c->C, sizeof *seen);
        if (!idx || !seen) { free(idx); free(seen); return lt_err(LT_ENOMEM, "subsample: out of memory"); }
        long n = 0;
        for (long i = 0; i < tr->n; i++)
            if (seen[tr->labels[i]]++ < s->subsample_train_per_class) idx[n++] = (int32_t)i;
        rc = lt_dataset_subset(&c->train, tr, idx, n);
        free(idx);
        free(seen);
        if (rc) return rc;
        c->own_train = 1;
    }
    if (s->test_subset > 0 && s->test_subset < te->n) {
        int32_t *idx = malloc((size_t)s->test_subset * sizeof *idx);
        if (!idx) return lt_err(LT_ENOMEM, "test subset: out of memory");
        for (long i = 0; i < s->test_subset; i++) idx[i] = (int32_t)i;
        rc = lt_dataset_subset(&c->test, te, idx, s->test_subset);
        free(idx);
        if (rc) return rc;
        c->own_test = 1;
    }
    /* The protocol loader refuses a batch above the training set where the
     * protocol fixes its size; this catches the sizes it only bounds or
     * leaves open, before the model plans activations for the batch. */
    for (int st = 0; st < 2; st++) {
        const int batch = st == 0 ? s->stage1.batch : s->stage2.batch;
        if (batch > c->train.n)
            return lt_err(LT_EDATA, "%s: key 'scales.%s.stage%d.batch' is %d, larger than the training set of scale %s "
                          "(%ld images)", p->path, s->name, st + 1, batch, s->name, c->train.n);
    }
    c->counts = calloc((size_t)c->C, sizeof *c->counts);
    if (!c->counts) return lt_err(LT_ENOMEM, "counts: out of memory");
    lt_dataset_class_counts(&c->train, c->counts);
    c->sum->have_dataset = 1;
    c->sum->train_size = c->train.n;
    c->sum->test_size = c->test.n;
    char text[256];
    snprintf(text, sizeof text, "%s\t%s\t%ld\t%ld", c->sum->ds_name, c->sum->manifest_sha256, c->train.n,
             c->test.n);
    lt_run_send(c->job, LT_MSG_DATASET, 0, -1, 0, text);
    return lt_proto_engine_aug(p, s, &c->aug);
}

/* ---- model and method ---------------------------------------------------------- */

/* The norm-layer hook of an ABI-3 method, as the engine's factory. */
typedef struct {
    const lt_method *M;
    void *st;
} norm_hook;

static int norm_from_method(void *ud, lt_model *m, const char *name, const char *group, int in) {
    const norm_hook *h = ud;
    int r = h->M->norm_layer(h->st, m, name, group, in);
    if (r < 0 && !lt_errmsg()[0]) lt_err(-r, "method %s: norm_layer('%s') failed", h->M->name, name);
    return r;
}

int lt_run_build_method_model(lt_child *c, const lt_method *M, void *st, lt_model **out, int *feat_out) {
    return lt_run_build_method_model_on(c, M, st, c->job->backend, c->job->dev.layout, out, feat_out);
}

int lt_run_build_method_model_on(lt_child *c, const lt_method *M, void *st, lt_backend *backend, lt_layout layout,
                                 lt_model **out, int *feat_out) {
    lt_shape in = c->info.in_shape;
    lt_model *m = NULL;
    *out = NULL;
    LT_TRY(lt_model_create_on(&m, in, backend));
    norm_hook h = {M, st};
    /* a hook appended in ABI 3 exists only in tables built for ABI >= 3 */
    const int hook = M->abi >= 3 && M->norm_layer;
    int feat = lt_resnet_backbone_norm(m, c->s->arch, hook ? norm_from_method : NULL, &h);
    int rc = feat < 0 ? lt_err_wrap(-feat, "model %s", c->s->arch) : LT_OK;
    if (!rc && (int)lt_model_out_size(m, feat) != c->D)
        rc = lt_err(LT_ESHAPE, "method %s: its norm layers change the feature size (%zu, expected %d)", M->name,
                    lt_model_out_size(m, feat), c->D);
    if (!rc && M->build) {
        rc = M->build(st, m, feat);
        if (rc) rc = lt_err_wrap(rc, "method %s: build", M->name);
    } else if (!rc) {
        int l = lt_add_linear(m, "logits", "head", feat, c->C, 1);
        if (l < 0) rc = -l;
    }
    int logits = rc ? -1 : lt_model_find(m, "logits");
    if (!rc && (logits < 0 || lt_model_out_size(m, logits) != (size_t)c->C))
        rc = lt_err(LT_EINVAL, "method %s: the model needs a node \"logits\" with %d outputs", M->name, c->C);
    if (!rc) rc = lt_model_finalize(m, c->job->req->seed);
    /* --layout nhwc: the run's model (a method's own modules keep NCHW).
     * Refused, naming the layer, where a layer runs NCHW only on feature
     * maps: the run fails with that reason rather than running NCHW
     * under an NHWC row's name */
    if (!rc && layout != LT_LAYOUT_NCHW && (rc = lt_model_set_layout(m, layout)))
        rc = lt_err_wrap(rc, "--layout %s", lt_layout_name(layout));
    if (rc) {
        lt_model_free(m);
        return rc;
    }
    *out = m;
    if (feat_out) *feat_out = feat;
    return LT_OK;
}

int lt_run_on_device(const lt_child *c) {
    return c->job->backend && lt_backend_get_kind(c->job->backend) != LT_BACKEND_CPU;
}

lt_dev_mode lt_method_dev_mode(const lt_method *M, const char **hook) {
    const int taps = (M->flags & LT_METHOD_HOST_TAPS) != 0;
    const char *h = M->batch_hook && !taps ? "batch_hook"
                    : M->loss && !taps ? "loss"
                    : M->iter_end && !taps ? "iter_end"
                    : NULL;
    if (hook) *hook = h;
    if (h) return LT_DEV_REFUSED;
    return M->loss || M->iter_end ? LT_DEV_HOST_HOOKS : LT_DEV_STEP;
}

/* 1: the method's loss / iter_end run on the host around a device model's
 * forward and backward (LT_METHOD_HOST_TAPS), instead of lt_step */
static int host_taps_on_device(const lt_child *c) {
    return lt_run_on_device(c) && lt_method_dev_mode(c->M, NULL) == LT_DEV_HOST_HOOKS;
}

/* A model on a device trains through lt_step (the whole step on the
 * device), or, for a method whose hooks touch only the host arrays of the
 * batch and taps (LT_METHOD_HOST_TAPS), through eager steps with its loss
 * and iter_end on host copies. Anything else that reads or writes batch
 * data, logits or the model on the host is refused before any work, naming
 * the hook. The sampler, stage_begin and epoch_end are fine (predict gets
 * host copies of the logits and features, lt_run_eval.c). */
int lt_run_device_hooks_check(const lt_child *c) {
    if (!lt_run_on_device(c)) return LT_OK;
    const lt_method *M = c->M;
    const char *hook = NULL;
    lt_method_dev_mode(M, &hook);
    if (hook)
        return lt_err(LT_EINVAL, "method %s: its %s runs on the host, not supported on %s yet", M->name, hook,
                      lt_backend_describe(c->job->backend));
    return LT_OK;
}

static int build_model(lt_child *c) {
    const lt_run_job *job = c->job;
    lt_shape in = {1, c->train.c, c->aug.out_h, c->aug.out_w};
    {
        /* the feature size init is told: a node list of the plain backbone
         * (nothing allocated for it but the nodes) */
        lt_model *probe;
        LT_TRY(lt_model_create_on(&probe, in, job->backend));
        int f = lt_resnet_backbone(probe, c->s->arch);
        if (f < 0) {
            lt_model_free(probe);
            return lt_err_wrap(-f, "model %s", c->s->arch);
        }
        c->D = (int)lt_model_out_size(probe, f);
        lt_model_free(probe);
    }

    lt_run_info *ri = &c->info;
    ri->protocol = c->p->name;
    ri->protocol_version = c->p->version;
    ri->scale = c->s->name;
    ri->method = c->M->name;
    ri->seed = job->req->seed;
    ri->threads = job->env.threads;
    ri->run_dir = job->run_dir;
    ri->n_classes = c->C;
    ri->n_train = c->train.n;
    ri->n_test = c->test.n;
    ri->class_counts = c->counts;
    ri->in_shape = in;
    ri->feat_dim = c->D;
    ri->train = &c->train;
    ri->aug = &c->aug;
    ri->host = c;
    ri->log = host_log;
    ri->api = &lt_run_host_api;
    ri->arch = c->s->arch;
    c->hp.obj = job->hparams;
    LT_TRY(lt_run_host_init(c));

    if (c->M->state_size) {
        c->st = calloc(1, c->M->state_size);
        if (!c->st) return lt_err(LT_ENOMEM, "method state: out of memory");
    }
    if (c->M->init) {
        int rc = c->M->init(c->st, ri, &c->hp);
        if (rc) return lt_err_wrap(rc, "method %s: init", c->M->name);
    }
    c->inited = 1;
    LT_TRY(lt_run_device_hooks_check(c));
    LT_TRY(lt_run_build_method_model(c, c->M, c->st, &c->m, &c->feat));
    c->logits = lt_model_find(c->m, "logits");
    LT_TRY(lt_model_set_batch(c->m, c->s->stage1.batch > 0 ? c->s->stage1.batch : 1));
    c->n_stages = c->M->n_stages ? c->M->n_stages(c->st) : 1;
    if (c->n_stages < 1 || c->n_stages > LT_RUN_MAX_STAGES)
        return lt_err(LT_EINVAL, "method %s: %d stages (1..%d allowed)", c->M->name, c->n_stages, LT_RUN_MAX_STAGES);
    c->sum->n_stages = c->n_stages;
    return LT_OK;
}

static void stage_defaults(const lt_child *c, int stage, lt_stage *cfg) {
    const lt_proto_stage *ps = stage == 0 ? &c->s->stage1 : &c->s->stage2;
    memset(cfg, 0, sizeof *cfg);
    cfg->index = stage;
    cfg->proto_stage = stage == 0 ? 1 : 2;
    cfg->epochs = ps->epochs;
    cfg->batch = ps->batch;
    cfg->drop_last = ps->drop_last;
    lt_proto_stage_sched(ps, &cfg->sched);
    cfg->lr_per_epoch = ps->sched.per_epoch_update;
    cfg->head_lr_mult = ps->head_lr_mult;
    cfg->momentum = (float)ps->momentum;
    cfg->weight_decay = (float)ps->weight_decay;
    cfg->nesterov = ps->nesterov;
    cfg->sampler.kind = ps->sampler;
    cfg->sampler.k_per_class = 4;
    cfg->sampler.total_epochs = ps->epochs;
    cfg->bn_eval = ps->bn_eval;
    cfg->augment = 1;
    cfg->views = 1;
    cfg->model_views = 1;
}

/* stage_begin + the switches it may set; the same on a fresh start and on a
 * resume replay. */
static int begin_stage(lt_child *c, int stage, lt_stage *cfg) {
    stage_defaults(c, stage, cfg);
    if (c->M->stage_begin) {
        int rc = c->M->stage_begin(c->st, stage, cfg, c->m);
        if (rc) return lt_err_wrap(rc, "method %s: stage_begin(%d)", c->M->name, stage + 1);
    }
    if (cfg->freeze_backbone) LT_TRY(lt_model_freeze(c->m, "backbone", 1));
    LT_TRY(lt_model_set_eval(c->m, "backbone", cfg->bn_eval));
    if (cfg->reinit_head) LT_TRY(lt_model_reinit(c->m, "head", c->job->req->seed + 1000u * (uint64_t)stage));
    if (cfg->epochs < 0 || cfg->batch < 1 || cfg->samples_per_epoch < 0)
        return lt_err(LT_EINVAL, "stage %d: epochs %d, batch %d: invalid", stage + 1, cfg->epochs, cfg->batch);
    if (cfg->views < 1 || cfg->views > 64 || cfg->model_views < 1 || cfg->model_views > cfg->views)
        return lt_err(LT_EINVAL, "stage %d: %d views, %d of them forwarded: need 1 <= model_views <= views <= 64",
                      stage + 1, cfg->views, cfg->model_views);
    if (cfg->batch_cap < 0 || (cfg->batch_cap && cfg->batch_cap < cfg->views))
        return lt_err(LT_EINVAL, "stage %d: batch_cap %d", stage + 1, cfg->batch_cap);
    if (cfg->n_groups < 0 || cfg->n_groups > LT_STAGE_MAX_GROUPS)
        return lt_err(LT_EINVAL, "stage %d: %d optimizer groups (0..%d)", stage + 1, cfg->n_groups,
                      LT_STAGE_MAX_GROUPS);
    if (cfg->n_view_pipelines < 0 || cfg->n_view_pipelines > LT_STAGE_MAX_VIEW_PIPELINES)
        return lt_err(LT_EINVAL, "stage %d: %d view pipelines (0..%d)", stage + 1, cfg->n_view_pipelines,
                      LT_STAGE_MAX_VIEW_PIPELINES);
    for (int v = 0; v < cfg->n_view_pipelines; v++) {
        const int oh = c->aug.out_h > 0 ? c->aug.out_h : c->train.h, ow = c->aug.out_w > 0 ? c->aug.out_w : c->train.w;
        int rc = lt_aug_pipeline_check(&cfg->view_pipelines[v], c->train.c, oh, ow);
        if (rc) return lt_err_wrap(rc, "stage %d: view %d", stage + 1, v);
    }
    return LT_OK;
}

/* Rows the batch buffers hold and rows the model forwards at most. */
static int stage_cap(const lt_stage *cfg) { return cfg->batch_cap ? cfg->batch_cap : cfg->batch * cfg->views; }
static int stage_fwd_cap(const lt_stage *cfg) { return stage_cap(cfg) / cfg->views * cfg->model_views; }

/* ---- the stage's optimizer --------------------------------------------------------- */

/* The stage's optimizer over the model's current freeze mask, with the
 * stage's per-group factors (head_lr_mult is the group "head"). */
static int stage_optim(lt_child *c, int stage, const lt_stage *cfg, lt_optim *o) {
    const lt_opt_kind kind = stage == 0 ? c->s->stage1.optimizer : c->s->stage2.optimizer;
    LT_TRY(lt_optim_init(o, c->m, kind, cfg->momentum, cfg->weight_decay, cfg->nesterov));
    int rc = LT_OK;
    int head_set = 0;
    for (int k = 0; !rc && k < cfg->n_groups; k++) {
        head_set |= !strcmp(cfg->groups[k].group, "head");
        rc = lt_optim_set_group(o, c->m, cfg->groups[k].group, cfg->groups[k].lr_mult, cfg->groups[k].wd_mult);
    }
    if (!rc && !head_set && cfg->head_lr_mult != 1.0) rc = lt_optim_set_group(o, c->m, "head", cfg->head_lr_mult, 1.0);
    if (rc) {
        lt_optim_free(o);
        return lt_err_wrap(rc, "stage %d optimizer", stage + 1);
    }
    return LT_OK;
}

/* ---- progress output ------------------------------------------------------------- */

/* ---- the stage loop ---------------------------------------------------------------- */

typedef struct {
    int32_t *idx;
    float *xbuf;
    int32_t *ybuf, *idbuf;
    lt_loader *L;
    lt_optim opt;
    int have_opt;
    lt_step *step;   /* a model on a device: the whole step there (lt_step.h) */
    /* a device model with host hooks (host_taps_on_device): host copies of
     * the logits and features, and the gradients the loss writes */
    float *lg, *ft, *dlg, *dft;
} stage_bufs;

static void stage_bufs_free(stage_bufs *b) {
    lt_step_free(b->step);
    free(b->lg);
    free(b->ft);
    free(b->dlg);
    free(b->dft);
    free(b->idx);
    lt_free(b->xbuf);
    free(b->ybuf);
    free(b->idbuf);
    if (b->L) lt_loader_close(b->L);
    if (b->have_opt) lt_optim_free(&b->opt);
    memset(b, 0, sizeof *b);
}

/* The terminal's progress line during an epoch (overwritten in place). */
static void progress_line(lt_child *c, const lt_stage *cfg, int stage, int e, long it, long ipe, double el,
                          double loss_sum, long seen, double lr) {
    double ips = seen / (el > 0 ? el : 1);
    char eta[32];
    lt_fmt_eta((double)(ipe - it - 1) * el / (it + 1) + (cfg->epochs - e - 1) * (ipe * el / (it + 1)), eta, sizeof eta);
    fprintf(c->job->log, "\r  stage %d/%d epoch %d/%d it %ld/%ld loss %.4f lr %.5f %.0f img/s ETA %s   ", stage + 1,
            c->n_stages, e + 1, cfg->epochs, it + 1, ipe, loss_sum / seen, lr, ips, eta);
    fflush(c->job->log);
}

static int train_stage(lt_child *c, int stage, const lt_stage *cfg, int first_epoch, stage_bufs *B,
                       lt_run_meta *meta, int *global_epoch) {
    const lt_run_request *req = c->job->req;
    const uint64_t seed = req->seed;
    lt_model *m = c->m;
    const long n_s = cfg->samples_per_epoch > 0 ? cfg->samples_per_epoch : c->train.n;
    const long ipe = cfg->drop_last ? n_s / cfg->batch : (n_s + cfg->batch - 1) / cfg->batch;
    if (ipe < 1)
        return lt_err(LT_EINVAL, "stage %d: %ld samples per epoch give no batch of %d", stage + 1, n_s, cfg->batch);
    const size_t in_sz = lt_shape_count(lt_model_in_shape(m));
    const int views = cfg->views, cap = stage_cap(cfg);
    /* the hook of an ABI-2 method may not change n (it was ignored then) */
    const int hook_sets_n = c->M->abi >= 3;
    B->idx = malloc((size_t)n_s * sizeof *B->idx);
    if (!B->idx) return lt_err(LT_ENOMEM, "sampler: out of memory");
    if (c->M->batch_hook) {
        B->xbuf = lt_alloc((size_t)cap * in_sz * sizeof(float));
        B->ybuf = malloc((size_t)cap * sizeof *B->ybuf);
        B->idbuf = malloc((size_t)cap * sizeof *B->idbuf);
        if (!B->xbuf || !B->ybuf || !B->idbuf) return lt_err(LT_ENOMEM, "batch buffer: out of memory");
    }
    /* cpu: one loader thread and heap slots, as always (the trainer's
     * OpenMP threads own the cores); a device: every core and pinned slots.
     * The batches' bytes are the same either way. */
    lt_loader_opts lo;
    lt_loader_opts_for_backend(&lo, c->job->backend);
    LT_TRY(lt_loader_open_opts(&B->L, &c->train, &c->aug, cfg->batch, cfg->drop_last, cfg->augment, seed,
                               STAGE_STREAM(LT_STREAM_AUG, stage), &lo));
    LT_TRY(lt_loader_set_views(B->L, views));
    /* ABI 4: strong per-view pipelines (a zeroed stage of an older method
     * has none) */
    for (int v = 0; v < cfg->n_view_pipelines && v < views; v++)
        LT_TRY(lt_loader_set_view_pipeline(B->L, v, &cfg->view_pipelines[v]));
    const int host_taps = host_taps_on_device(c);
    if (host_taps) {
        const size_t rows = (size_t)stage_fwd_cap(cfg);
        B->lg = malloc(rows * c->C * sizeof(float));
        B->dlg = malloc(rows * c->C * sizeof(float));
        B->ft = malloc(rows * c->D * sizeof(float));
        B->dft = malloc(rows * c->D * sizeof(float));
        if (!B->lg || !B->dlg || !B->ft || !B->dft) return lt_err(LT_ENOMEM, "host taps: out of memory");
    } else if (lt_run_on_device(c)) {
        /* cuda: LT_CUDA_GRAPH=0 runs every step eagerly */
        lt_step_opts so;
        lt_step_opts_from_env(&so);
        LT_TRY(lt_step_create(&B->step, m, &B->opt, c->logits, stage_fwd_cap(cfg), c->C, &so));
        lt_step_info si;
        lt_step_get_info(B->step, &si);
        if (si.notice[0] && !req->quiet) fprintf(c->job->log, "%s\n", si.notice);   /* graphs off from the start */
    }
    /* a device model's layers without CUDA code run on the host: their
     * seconds per epoch (copies included) */
    const int host_layers = lt_run_on_device(c) && lt_model_n_host_nodes(m) > 0;
    long graph_failures = 0;
    const int tty = !req->quiet && isatty(fileno(c->job->log));
    lt_rng method_rng;
    lt_rng_init(&method_rng, seed, STAGE_STREAM(LT_STREAM_METHOD, stage));

    for (int e = first_epoch; e < cfg->epochs; e++) {
        lt_run_where(c, stage + 1, e);
        double t_ep = lt_now_s(), t_print = 0;
        const double host_layer_s0 = lt_model_host_seconds(m);
        lt_sampler_cfg sc = cfg->sampler;
        if (c->M->sampler) {
            int rc = c->M->sampler(c->st, stage, e, &sc);
            if (rc) return lt_err_wrap(rc, "method %s: sampler", c->M->name);
        }
        LT_TRY(lt_sampler_epoch(&sc, e, seed, STAGE_STREAM(LT_STREAM_ORDER, stage), c->train.labels, c->train.n,
                                c->C, B->idx, n_s));
        LT_TRY(lt_loader_start(B->L, e, B->idx, n_s, 0));
        if (B->step) LT_TRY(lt_step_reset_stats(B->step));
        double loss_sum = 0, lr = 0, host_s = 0;
        long correct = 0, seen = 0, it = 0;
        for (;; it++) {
            const float *x;
            const int32_t *y, *ids;
            int ns;
            if (req->on_step) req->on_step(req->on_step_ctx, stage, e, it);
            LT_TRY(lt_loader_next(B->L, &x, &y, &ids, &ns));
            if (ns == 0) break;
            int n = ns * views;   /* rows: every view of the batch's samples */
            const long git = (long)e * ipe + it;
            lr = lt_sched_lr(&cfg->sched, cfg->lr_per_epoch ? (long)e * ipe : git, ipe);
            if (c->M->batch_hook) {
                memcpy(B->xbuf, x, (size_t)n * in_sz * sizeof(float));
                memcpy(B->ybuf, y, (size_t)n * sizeof *y);
                memcpy(B->idbuf, ids, (size_t)n * sizeof *ids);
                lt_batch b = {n, B->xbuf, B->ybuf, B->idbuf, stage, e, git, cap, views};
                lt_rng r;
                lt_rng_derive(&r, &method_rng, (uint64_t)git, 0);
                const double t_hook = lt_now_s();
                int rc = c->M->batch_hook(c->st, &b, &r);
                if (rc) return lt_err_wrap(rc, "method %s: batch_hook", c->M->name);
                if (host_taps) host_s += lt_now_s() - t_hook;   /* the device waits for it too */
                if (hook_sets_n) {
                    if (b.n < views || b.n > cap || b.n % views)
                        return lt_err(LT_EINVAL, "method %s: batch_hook left %d rows (1..%d samples x %d views)",
                                      c->M->name, b.n, cap / views, views);
                    n = b.n;
                }
                x = B->xbuf;
                y = B->ybuf;
                ids = B->idbuf;
            }
            /* the model forwards the first model_views views */
            const int nf = n / views * cfg->model_views;
            if (B->step) {
                /* on the device, the loss and the counts stay there until a
                 * print or the epoch's end asks (lt_step_epoch_stats) */
                int rc = lt_step_run(B->step, x, y, nf, (float)lr);
                if (rc) return lt_err_wrap(rc, "iteration %ld", it);
                lt_step_info si;
                lt_step_get_info(B->step, &si);
                if (si.capture_failures != graph_failures) {
                    graph_failures = si.capture_failures;
                    if (!req->quiet) fprintf(c->job->log, "%s%s\n", tty ? "\n" : "", si.notice);
                }
                if (tty && lt_now_s() - t_print > 0.5) {
                    LT_TRY(lt_step_epoch_stats(B->step, &loss_sum, &correct, &seen));
                    t_print = lt_now_s();
                    progress_line(c, cfg, stage, e, it, ipe, t_print - t_ep, loss_sum, seen, lr);
                }
                continue;
            }
            /* the labels for label-conditioned layers (cam_pool); lt_step_run gives them itself */
            LT_TRY(lt_model_set_labels(m, y, nf));
            LT_TRY(lt_model_forward(m, x, nf, 1));
            /* a device model with host hooks: the hooks see host copies.
             * host_hook_s is the round trip the device waits for: the
             * copies back, the hooks and the upload of the gradients (the
             * forward finished first, so that its time is not counted) */
            double t_host = 0;
            if (host_taps) {
                LT_TRY(lt_model_sync(m));
                t_host = lt_now_s();
                LT_TRY(lt_model_out_to_host(m, c->logits, nf, B->lg));
                LT_TRY(lt_model_out_to_host(m, c->feat, nf, B->ft));
            }
            const float *lg = host_taps ? B->lg : lt_model_out(m, c->logits);
            lt_taps t = {nf, c->C, c->D, lg, host_taps ? B->ft : lt_model_out(m, c->feat), y, ids, c->counts, stage,
                         e, git, (float)lr, m, x, n, views};
            lt_grads g = {host_taps ? B->dlg : lt_model_dout(m, c->logits),
                          host_taps ? B->dft : lt_model_dout(m, c->feat), 0, 0, {0}};
            double loss = 0;
            /* parameter gradients start at zero before the loss hook, so a
             * term on extra rows (a memory bank through the head) can add
             * its gradient there before the batch's backward */
            lt_model_zero_grad(m);
            int rc = c->M->loss ? c->M->loss(c->st, &t, &loss, &g)
                                : lt_softmax_ce(nf, c->C, lg, y, NULL, NULL, &loss, g.dlogits);
            if (rc) return lt_err_wrap(rc, "loss at iteration %ld", it + 1);
            if (!isfinite(loss))
                return lt_err(LT_ENUM, "loss is %s at iteration %ld", isnan(loss) ? "NaN" : "Inf", it + 1);
            if (host_taps) {
                /* extra gradients the hook copied in itself
                 * (lt_model_dout_from_host: LT_METHOD_HOST_TAPS) */
                LT_TRY(lt_model_dout_from_host(m, c->logits, nf, B->dlg));
                if (g.use_dfeat) LT_TRY(lt_model_dout_from_host(m, c->feat, nf, B->dft));
                host_s += lt_now_s() - t_host;
            }
            int taps[2 + LT_GRADS_MAX_EXTRA], n_taps = 0;
            taps[n_taps++] = c->logits;
            if (g.use_dfeat) taps[n_taps++] = c->feat;
            if (g.n_extra < 0 || g.n_extra > LT_GRADS_MAX_EXTRA)
                return lt_err(LT_EINVAL, "method %s: %d extra gradients (0..%d)", c->M->name, g.n_extra,
                              LT_GRADS_MAX_EXTRA);
            for (int k = 0; k < g.n_extra; k++) {
                if (g.extra[k] <= 0 || g.extra[k] >= lt_model_n_nodes(m))
                    return lt_err(LT_EINVAL, "method %s: extra gradient for node %d, which the model lacks",
                                  c->M->name, g.extra[k]);
                taps[n_taps++] = g.extra[k];
            }
            LT_TRY(lt_model_backward(m, nf, taps, n_taps));
            LT_TRY(lt_optim_step(&B->opt, m, (float)lr));
            if (c->M->iter_end) {
                const double t_end = lt_now_s();
                rc = c->M->iter_end(c->st, &t);
                if (rc) return lt_err_wrap(rc, "method %s: iter_end", c->M->name);
                if (host_taps) host_s += lt_now_s() - t_end;
            }
            loss_sum += loss * nf;
            seen += nf;
            for (int i = 0; i < nf; i++) {
                const float *row = lg + (size_t)i * c->C;
                int best = 0;
                for (int j = 1; j < c->C; j++)
                    if (row[j] > row[best]) best = j;
                correct += best == y[i];
            }
            if (tty && lt_now_s() - t_print > 0.5) {
                t_print = lt_now_s();
                progress_line(c, cfg, stage, e, it, ipe, t_print - t_ep, loss_sum, seen, lr);
            }
        }
        if (B->step) {
            int rc = lt_step_epoch_stats(B->step, &loss_sum, &correct, &seen);
            if (rc) return lt_err_wrap(rc, "stage %d epoch %d", stage + 1, e + 1);
        }
        if (c->M->epoch_end) {
            int rc = c->M->epoch_end(c->st, stage, e, m);
            if (rc) return lt_err_wrap(rc, "method %s: epoch_end", c->M->name);
        }
        double dt = lt_now_s() - t_ep;
        c->stage_s[stage] += dt;
        double img_s = seen / (dt > 0 ? dt : 1);
        double mean_loss = seen ? loss_sum / seen : NAN, acc = seen ? (double)correct / seen : NAN;
        cJSON *v = cJSON_CreateObject();
        cJSON_AddNumberToObject(v, "loss", mean_loss);
        cJSON_AddNumberToObject(v, "acc", acc);
        cJSON_AddNumberToObject(v, "lr", lr);
        cJSON_AddNumberToObject(v, "img_s", img_s);
        cJSON_AddNumberToObject(v, "iters", (double)it);
        if (B->step) {
            /* how the device ran the epoch's steps (cumulative over the stage) */
            lt_step_info si;
            lt_step_get_info(B->step, &si);
            cJSON_AddNumberToObject(v, "graph_steps", (double)si.graph_steps);
            cJSON_AddNumberToObject(v, "eager_steps", (double)si.eager_steps);
            cJSON_AddNumberToObject(v, "capture_failures", (double)si.capture_failures);
        }
        if (host_taps) {
            /* eager steps with the method's hooks on the host: what the
             * copies around them, the waits and the hooks took */
            cJSON_AddNumberToObject(v, "eager_steps", (double)it);
            cJSON_AddNumberToObject(v, "host_hook_s", host_s);
        }
        /* host layers' calls, in the model's passes and in the hooks' (a
         * hook's sub-graph), so partly inside host_hook_s */
        const double host_layer_s = lt_model_host_seconds(m) - host_layer_s0;
        if (host_layers) cJSON_AddNumberToObject(v, "host_layer_s", host_layer_s);
        LT_TRY(lt_events_emit(c->ev, "epoch_end", stage + 1, e, "train", v));
        if (!req->quiet) {
            char eta[32];
            lt_fmt_eta((cfg->epochs - e - 1) * dt, eta, sizeof eta);
            char hooks[64] = "";
            if (host_taps) snprintf(hooks, sizeof hooks, " (host hooks %.0f%%)", dt > 0 ? 100.0 * host_s / dt : 0.0);
            if (host_layers) {
                const size_t k = strlen(hooks);
                snprintf(hooks + k, sizeof hooks - k, " (host layers %.0f%%)", dt > 0 ? 100.0 * host_layer_s / dt : 0.0);
            }
            fprintf(c->job->log, "%s  stage %d/%d epoch %d/%d loss %.4f acc %.4f lr %.5f %.0f img/s%s ETA %s%s\n",
                    tty ? "\r" : "", stage + 1, c->n_stages, e + 1, cfg->epochs, mean_loss, acc, lr, img_s, hooks,
                    eta, tty ? "      " : "");
            fflush(c->job->log);
        }
        meta->stage = stage;
        meta->next_epoch = e + 1;
        meta->events_len = lt_events_size(c->ev);
        meta->wall_s = c->prev_wall_s + (lt_now_s() - c->job->t0);
        memcpy(meta->stage_s, c->stage_s, sizeof meta->stage_s);
        LT_TRY(lt_run_save_ckpt(c, c->job->ckpt_path, meta, &B->opt));
        ++*global_epoch;
        if (req->kill_after_epoch > 0 && *global_epoch == req->kill_after_epoch) {
            /* testing: die exactly as a SIGKILL from outside would */
            fflush(NULL);
            raise(SIGKILL);
        }
    }
    return LT_OK;
}

static int emit_start_events(lt_child *c) {
    const lt_run_job *job = c->job;
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "protocol", c->p->name);
    cJSON_AddStringToObject(v, "scale", c->s->name);
    cJSON_AddStringToObject(v, "method", c->M->name);
    cJSON_AddStringToObject(v, "method_version", c->M->version);
    cJSON_AddNumberToObject(v, "seed", (double)job->req->seed);
    LT_TRY(lt_events_emit(c->ev, "run_start", 0, -1, "run_start", v));
    LT_TRY(lt_events_str(c->ev, "protocol", 0, -1, "protocol", c->p->name));
    LT_TRY(lt_events_num(c->ev, "protocol_version", 0, -1, "protocol_version", c->p->version));
    LT_TRY(lt_events_str(c->ev, "protocol_sha256", 0, -1, "protocol_sha256", c->p->sha256));
    LT_TRY(lt_events_num(c->ev, "seed", 0, -1, "seed", (double)job->req->seed));
    LT_TRY(lt_events_str(c->ev, "engine_commit", 0, -1, "engine_commit", job->env.commit));
    LT_TRY(lt_events_str(c->ev, "blas_config", 0, -1, "blas_config", job->env.blas_config));
    LT_TRY(lt_events_num(c->ev, "threads", 0, -1, "threads", job->env.threads));
    LT_TRY(lt_events_str(c->ev, "dataset_manifest", 0, -1, "manifest_sha256", c->sum->manifest_sha256));
    return lt_events_emit(c->ev, "hparams", 0, -1, "hparams", cJSON_Duplicate(job->hparams, 1));
}

static const char *sampler_name(lt_sampler_kind k) {
    switch (k) {
    case LT_SAMPLER_INSTANCE: return "instance_balanced";
    case LT_SAMPLER_CLASS_BALANCED: return "class_balanced";
    case LT_SAMPLER_CLASS_AWARE: return "class_aware";
    case LT_SAMPLER_SQRT: return "square_root";
    case LT_SAMPLER_PROGRESSIVE: return "progressive";
    case LT_SAMPLER_WEIGHTS: return "class_weights";
    case LT_SAMPLER_OVER_UNDER: return "over_under";
    }
    return "unknown";
}

/* One view's pipeline for the stage_begin event: its parameters and the ops
 * it skips on this dataset's channel count (1-channel data: saturation,
 * hue, grayscale), so a result says what its strong views really did. */
static cJSON *view_aug_json(const lt_aug_pipeline *p, int channels) {
    cJSON *o = cJSON_CreateObject();
    if (!p->enabled) {
        cJSON_AddStringToObject(o, "kind", "protocol");
        return o;
    }
    static const char *const crops[] = {"none", "pad_crop", "random_resized_crop"};
    cJSON_AddStringToObject(o, "kind", "pipeline");
    cJSON_AddStringToObject(o, "crop", crops[p->crop]);
    if (p->crop == LT_AUG_CROP_PAD) cJSON_AddNumberToObject(o, "pad", p->pad);
    if (p->crop == LT_AUG_CROP_RRC) {
        double sc[2] = {p->rrc_scale[0], p->rrc_scale[1]}, ra[2] = {p->rrc_ratio[0], p->rrc_ratio[1]};
        cJSON_AddItemToObject(o, "scale", cJSON_CreateDoubleArray(sc, 2));
        cJSON_AddItemToObject(o, "ratio", cJSON_CreateDoubleArray(ra, 2));
    }
    double cj[4] = {p->brightness, p->contrast, p->saturation, p->hue};
    cJSON_AddItemToObject(o, "color_jitter", cJSON_CreateDoubleArray(cj, 4));
    cJSON_AddNumberToObject(o, "jitter_p", p->jitter_p);
    cJSON_AddNumberToObject(o, "gray_p", p->gray_p);
    cJSON_AddNumberToObject(o, "blur_p", p->blur_p);
    double bs[2] = {p->blur_sigma[0], p->blur_sigma[1]};
    cJSON_AddItemToObject(o, "blur_sigma", cJSON_CreateDoubleArray(bs, 2));
    cJSON_AddNumberToObject(o, "blur_ksize", p->blur_ksize);
    cJSON_AddNumberToObject(o, "hflip_p", p->hflip_p);
    cJSON *sk = cJSON_AddArrayToObject(o, "skipped");
    const unsigned m = lt_aug_pipeline_skipped(p, channels);
    for (unsigned b = 1; b <= LT_AUG_OP_GRAYSCALE; b <<= 1)
        if (m & b) cJSON_AddItemToArray(sk, cJSON_CreateString(lt_aug_op_name(b)));
    return o;
}

static int stage_event(lt_child *c, const char *event, int stage, const lt_stage *cfg, const char *shared) {
    cJSON *v = cJSON_CreateObject();
    if (cfg) {
        cJSON_AddNumberToObject(v, "epochs", cfg->epochs);
        cJSON_AddNumberToObject(v, "batch", cfg->batch);
        cJSON_AddNumberToObject(v, "base_lr", cfg->sched.base_lr);
        cJSON_AddStringToObject(v, "sampler", sampler_name(cfg->sampler.kind));
        cJSON_AddBoolToObject(v, "freeze_backbone", cfg->freeze_backbone);
        cJSON_AddBoolToObject(v, "bn_eval", cfg->bn_eval);
        if (cfg->n_view_pipelines > 0) {
            cJSON *va = cJSON_AddArrayToObject(v, "view_aug");
            for (int k = 0; k < cfg->n_view_pipelines; k++)
                cJSON_AddItemToArray(va, view_aug_json(&cfg->view_pipelines[k], c->train.c));
        }
    }
    if (shared) cJSON_AddStringToObject(v, "shared_from", shared);
    if (!strcmp(event, "stage_end")) cJSON_AddNumberToObject(v, "time_s", c->stage_s[stage]);
    return lt_events_emit(c->ev, event, stage + 1, -1, event, v);
}

/* The error of an unusable final checkpoint; why: what reading it said
 * (last: the message travels to the parent in 496 bytes). */
static int damaged(const char *path, const char *why) {
    return lt_err(LT_EDATA, "%s is damaged, ltbench run --no-resume starts the run over (%s)", path, why);
}

/* Whether result.json says "ok": a finished result to keep. */
static int finished_ok(const lt_run_job *job) {
    lt_run_outcome o;
    int ok = lt_result_read(job->result_path, &o) == LT_OK && o.ok;
    lt_err_clear();
    return ok;
}

/* A finished run (ckpt_final.ltc of this identity): only re-evaluated. The
 * stages' switches are replayed and the trained model loaded before the
 * run directory is touched, so a final checkpoint with a valid checksum but
 * bad contents (a tensor record of the wrong size) fails here, naming the
 * file, and leaves the finished result as it was (the parent keeps it too,
 * lt_runner.c write_failed). The event log is rewritten as a staged copy
 * that replaces events.jsonl only with the new result (lt_run_finish). */
static int reevaluate(lt_child *c, lt_ckpt *ck, const lt_run_meta *meta) {
    const lt_run_job *job = c->job;
    int rc = LT_OK;
    for (int stage = 0; !rc && stage < c->n_stages; stage++) {
        lt_stage cfg;
        lt_run_where(c, stage + 1, -1);
        rc = begin_stage(c, stage, &cfg);
    }
    if (!rc) {
        lt_run_where(c, -1, -1);
        rc = lt_run_load_state(c, ck, NULL);
        if (rc) {
            char why[600];
            snprintf(why, sizeof why, "%s", lt_errmsg());
            rc = damaged(job->final_path, why);
        }
    }
    lt_ckpt_free(ck);
    if (!rc) rc = lt_events_open_staged(&c->ev, job->events_path, (long)meta->events_len);
    if (!rc) {
        cJSON *v = cJSON_CreateObject();
        cJSON_AddNumberToObject(v, "stage", meta->stage + 1);
        cJSON_AddNumberToObject(v, "next_epoch", meta->next_epoch);
        cJSON_AddBoolToObject(v, "trained", 1);
        rc = lt_events_emit(c->ev, "resume", 0, -1, "resume", v);
    }
    return rc;
}

static int run_stages(lt_child *c) {
    const lt_run_job *job = c->job;
    int mode = LT_RUN_FRESH;
    lt_ckpt *ck = NULL;
    lt_run_meta meta;
    memset(&meta, 0, sizeof meta);
    if (job->req->resume) {
        int rc = lt_run_read_ckpt(c, job->final_path, &ck, &meta);
        char why[600];
        snprintf(why, sizeof why, "%s", rc ? lt_errmsg() : "");
        if (rc && finished_ok(job)) {
            /* retraining would replace a finished result (hours at the full
             * scale) for a file that went bad: the user decides */
            rc = damaged(job->final_path, why);
            lt_run_where(c, -1, -1);
            lt_run_send(job, LT_MSG_MODE, 0, -1, LT_RUN_FINAL, "");
            return rc;
        }
        if (rc && !job->req->quiet)
            fprintf(job->log, "note: not resuming from %s (%s); starting afresh\n", job->final_path, why);
        if (ck) mode = LT_RUN_FINAL;
        else {
            rc = lt_run_read_ckpt(c, job->ckpt_path, &ck, &meta);
            if (rc && !job->req->quiet)
                fprintf(job->log, "note: not resuming from %s (%s); starting afresh\n", job->ckpt_path, lt_errmsg());
            if (ck) mode = LT_RUN_RESUME;
        }
        lt_err_clear();
    }
    /* The parent learns before anything here changes whether this session
     * trains (a failure then replaces the result) or only re-evaluates. */
    c->sum->restarted = mode != LT_RUN_FINAL;
    lt_run_send(job, LT_MSG_MODE, 0, -1, mode, "");
    if (mode != LT_RUN_FRESH) {
        c->prev_wall_s = meta.wall_s;
        memcpy(c->stage_s, meta.stage_s, sizeof c->stage_s);
    }
    if (mode == LT_RUN_FINAL) return reevaluate(c, ck, &meta);
    if (mode == LT_RUN_FRESH) {
        memset(&meta, 0, sizeof meta);
        meta.version = 1;
        meta.n_stages = c->n_stages;
        unlink(job->ckpt_path);
        unlink(job->final_path);
        /* the run is made again from here, and its log starts over below: a
         * result left from before would stand beside another session's log
         * and checkpoints if this one dies with its runner (reproduce would
         * re-use it); the runner writes the failed row otherwise */
        unlink(job->result_path);
        unlink(job->per_class_path);
    }
    int rc = lt_events_open(&c->ev, job->events_path, mode == LT_RUN_FRESH ? 0 : (long)meta.events_len);
    if (!rc && mode == LT_RUN_FRESH) rc = emit_start_events(c);
    if (!rc && mode == LT_RUN_FRESH) rc = lt_run_host_events(c);
    if (!rc && mode == LT_RUN_RESUME) {
        cJSON *v = cJSON_CreateObject();
        cJSON_AddNumberToObject(v, "stage", meta.stage + 1);
        cJSON_AddNumberToObject(v, "next_epoch", meta.next_epoch);
        cJSON_AddBoolToObject(v, "trained", 0);
        rc = lt_events_emit(c->ev, "resume", 0, -1, "resume", v);
    }

    int start_stage = mode == LT_RUN_FRESH ? 0 : meta.stage;
    int start_epoch = mode == LT_RUN_RESUME ? meta.next_epoch : 0;
    const int shared = mode == LT_RUN_FRESH && c->M->stage1_from;
    if (shared) start_stage = 1;
    int global_epoch = 0;
    for (int stage = 0; !rc && stage < c->n_stages; stage++) {
        lt_stage cfg;
        lt_run_where(c, stage + 1, -1);
        rc = begin_stage(c, stage, &cfg);
        if (rc) break;
        if (stage < start_stage) {
            /* replay (resume) or the shared stage 1 */
            if (stage == 0 && shared) {
                lt_ckpt *sk;
                int n_loaded = 0;
                /* the bytes opened under the stage-1 run's lock (lt_runner.c),
                 * hashed as loaded, so the result names them even if that run
                 * is started over or re-trained meanwhile */
                char src[64];
                const char *from = job->shared_final;
                if (job->shared_fd >= 0) {
                    snprintf(src, sizeof src, "/proc/self/fd/%d", job->shared_fd);
                    from = src;
                }
                rc = lt_sha256_file(from, c->job->shared_sha);
                if (!rc) rc = lt_ckpt_read(&sk, from);
                if (rc) rc = lt_err_wrap(rc, "shared stage 1 %s", job->shared_final);
                if (!rc) {
                    rc = lt_run_load_matching(c->m, sk, "m/", &n_loaded);
                    lt_ckpt_free(sk);
                }
                if (!rc && n_loaded == 0)
                    rc = lt_err(LT_EDATA, "shared stage 1: %s has no parameter of this model", job->shared_final);
                if (!rc) rc = stage_event(c, "stage_start", stage, &cfg, c->M->stage1_from);
                if (!rc) rc = stage_event(c, "stage_end", stage, &cfg, c->M->stage1_from);
            }
            global_epoch += cfg.epochs;
            continue;
        }
        stage_bufs B;
        memset(&B, 0, sizeof B);
        rc = lt_model_set_batch(c->m, stage_fwd_cap(&cfg));
        if (!rc) {
            rc = stage_optim(c, stage, &cfg, &B.opt);
            B.have_opt = !rc;
            c->host.opt = rc ? NULL : &B.opt;
            /* opt_state's host copies before the loop whose hooks may ask */
            if (!rc && host_taps_on_device(c)) rc = lt_run_host_opt_copies(c);
        }
        int first = 0;
        if (!rc && stage == start_stage && mode == LT_RUN_RESUME) {
            rc = lt_run_load_state(c, ck, &B.opt);
            first = start_epoch;
            global_epoch += first;
        } else if (!rc) {
            rc = stage_event(c, "stage_start", stage, &cfg, NULL);
        }
        if (!rc) rc = train_stage(c, stage, &cfg, first, &B, &meta, &global_epoch);
        c->host.opt = NULL;
        stage_bufs_free(&B);
        if (!rc) rc = stage_event(c, "stage_end", stage, &cfg, NULL);
    }
    lt_ckpt_free(ck);
    if (rc) return rc;
    /* Training done: keep the trained model (before post_train) as the
     * final checkpoint, the shared stage 1 of decoupled methods. */
    meta.stage = c->n_stages;
    meta.next_epoch = 0;
    meta.events_len = lt_events_size(c->ev);
    meta.wall_s = c->prev_wall_s + (lt_now_s() - job->t0);
    memcpy(meta.stage_s, c->stage_s, sizeof meta.stage_s);
    LT_TRY(lt_run_save_ckpt(c, job->final_path, &meta, NULL));
    unlink(job->ckpt_path);
    return LT_OK;
}

static void child_free(lt_child *c) {
    if (c->inited && c->M->fini) c->M->fini(c->st);
    free(c->st);
    lt_run_host_free(c);
    lt_model_free(c->twin);
    lt_model_free(c->m);
    lt_events_close(c->ev);
    if (c->own_train) lt_dataset_free(&c->train);
    if (c->own_test) lt_dataset_free(&c->test);
    lt_dataset_free(&c->train_src);
    lt_dataset_free(&c->test_src);
    free(c->counts);
    free(c->freq_group);
    free(c->out_buf);
}

int lt_run_child(lt_run_job *job, lt_run_summary *sum) {
    lt_child c;
    memset(&c, 0, sizeof c);
    c.job = job;
    c.p = &job->proto;
    c.s = job->scale;
    c.M = job->method;
    c.sum = sum;
    lt_set_num_threads(job->env.threads); /* also sizes OpenBLAS's pool (lt_base.c) */
    lt_run_where(&c, 0, -1);
    int rc = open_data(&c);
    if (!rc) rc = build_model(&c);
    if (!rc) rc = run_stages(&c);
    if (!rc) rc = lt_run_finish(&c);
    child_free(&c);
    return rc;
}
