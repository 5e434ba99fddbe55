/* lt_run_host.c — the host services a method reaches through
 * lt_run_info.api (lt_method.h, ABI 3): sub-graphs on extra rows, second
 * optimized modules, frozen teachers from other finished runs, extra
 * batches from any sampler, the validation split, the optimizer's state.
 *
 * The child owns everything these create (lt_run_host inside lt_child) and
 * frees it after the method's fini; modules and moving teacher statistics
 * go into the run's checkpoints so a resumed run equals an uninterrupted
 * one. Services are called with `host` = the child; a teacher's method is
 * initialised with host = NULL, and every service refuses that with a
 * message (a teacher is built, it does not build further models). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt_datasets.h"
#include "lt_names.h"
#include "lt_run_internal.h"

static int no_host(const char *what) {
    return lt_err(LT_ESTATE, "host service %s: not available here (a teacher's method is initialised "
                             "without host services)", what);
}

/* ---- setup and teardown ------------------------------------------------------------ */

int lt_run_host_init(lt_child *c) {
    return lt_drawer_create(&c->host.drawer, &c->train, &c->aug, c->job->req->seed);
}

void lt_run_host_free(lt_child *c) {
    lt_run_host *h = &c->host;
    for (int i = 0; i < h->n_sg; i++) lt_subgraph_free(h->sg[i]);
    for (int i = 0; i < h->n_mod; i++) {
        if (h->mod[i].ready) lt_optim_free(&h->mod[i].opt);
        lt_model_free(h->mod[i].m);
    }
    for (int i = 0; i < h->n_teach; i++) {
        lt_run_teacher *t = &h->teach[i];
        lt_model_free(t->m);
        if (t->inited && t->M->fini) t->M->fini(t->st);
        free(t->st);
        cJSON_Delete(t->hparams);
    }
    lt_drawer_free(h->drawer);
    if (h->have_val) lt_dataset_free(&h->val);
    lt_free(h->val_feat);
    lt_free(h->val_logits);
    lt_free(h->opt_h1);
    lt_free(h->opt_h2);
    h->val_feat = h->val_logits = NULL;
    memset(h, 0, sizeof *h);
}

/* ---- sub-graphs --------------------------------------------------------------------- */

static int svc_subgraph(void *host, lt_model *m, const char *from, const char *to, int max_rows,
                        lt_subgraph **sg) {
    lt_child *c = host;
    if (!c) return no_host("subgraph");
    *sg = NULL;
    if (!m || !from || !to) return lt_err(LT_EINVAL, "subgraph: model and node names are required");
    int a = lt_model_find(m, from), b = lt_model_find(m, to);
    if (a < 0 || b < 0) return lt_err(LT_EINVAL, "subgraph: the model has no node '%s'", a < 0 ? from : to);
    if (c->host.n_sg == LT_HOST_MAX_SG) return lt_err(LT_EINVAL, "subgraph: more than %d per run", LT_HOST_MAX_SG);
    LT_TRY(lt_subgraph_create(sg, m, a, b, max_rows));
    c->host.sg[c->host.n_sg++] = *sg;
    return LT_OK;
}

/* ---- modules ------------------------------------------------------------------------ */

static lt_run_module *find_module(lt_child *c, const lt_model *m) {
    for (int i = 0; i < c->host.n_mod; i++)
        if (c->host.mod[i].m == m) return &c->host.mod[i];
    return NULL;
}

static int svc_module_new(void *host, const char *name, lt_shape in, lt_model **m) {
    lt_child *c = host;
    if (!c) return no_host("module_new");
    *m = NULL;
    if (!lt_name_valid(name, sizeof c->host.mod[0].name))
        return lt_err(LT_EINVAL, "module: name '%s' must be [a-z0-9_], 1..%zu characters", name ? name : "",
                      sizeof c->host.mod[0].name - 1);
    for (int i = 0; i < c->host.n_mod; i++)
        if (!strcmp(c->host.mod[i].name, name)) return lt_err(LT_EINVAL, "module '%s' exists already", name);
    if (c->host.n_mod == LT_HOST_MAX_MOD) return lt_err(LT_EINVAL, "module: more than %d per run", LT_HOST_MAX_MOD);
    lt_run_module *md = &c->host.mod[c->host.n_mod];
    memset(md, 0, sizeof *md);
    /* a host-taps method's hooks read a module through host pointers
     * (lt_model_out, lt_param_info.w): on a device run its modules are
     * cpu models (the process default backend, as the cpu twin) */
    const int on_cpu = lt_run_on_device(c) && (c->M->flags & LT_METHOD_HOST_TAPS);
    LT_TRY(lt_model_create_on(&md->m, in, on_cpu ? NULL : c->job->backend));
    snprintf(md->name, sizeof md->name, "%s", name);
    c->host.n_mod++;
    *m = md->m;
    return LT_OK;
}

/* FNV-1a: a module's parameters are initialised from (run seed, name). */
static uint64_t fnv(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static int svc_module_ready(void *host, lt_model *m, const lt_module_cfg *cfg) {
    lt_child *c = host;
    if (!c) return no_host("module_ready");
    lt_run_module *md = find_module(c, m);
    if (!md) return lt_err(LT_EINVAL, "module_ready: not a module of this run");
    if (md->ready) return lt_err(LT_ESTATE, "module '%s' is ready already", md->name);
    if (!cfg || cfg->max_rows < 1) return lt_err(LT_EINVAL, "module '%s': max_rows must be >= 1", md->name);
    if (lt_model_n_nodes(m) < 2) return lt_err(LT_EINVAL, "module '%s' has no layer", md->name);
    LT_TRY(lt_model_finalize(m, c->job->req->seed ^ fnv(md->name)));
    LT_TRY(lt_model_set_batch(m, cfg->max_rows));
    LT_TRY(lt_optim_init(&md->opt, m, cfg->kind, cfg->momentum, cfg->weight_decay, cfg->nesterov));
    md->cfg = *cfg;
    md->ready = 1;
    return LT_OK;
}

static int svc_module_step(void *host, lt_model *m, long iter, long ipe, float *lr) {
    lt_child *c = host;
    if (!c) return no_host("module_step");
    lt_run_module *md = find_module(c, m);
    if (!md || !md->ready) return lt_err(LT_ESTATE, "module_step: not a ready module of this run");
    if (ipe < 1) ipe = 1;
    const long it = md->cfg.lr_per_epoch ? iter / ipe * ipe : iter;
    const float r = (float)lt_sched_lr(&md->cfg.sched, it, ipe);
    if (lr) *lr = r;
    return lt_optim_step(&md->opt, m, r);
}

/* ---- teachers ----------------------------------------------------------------------- */

/* The value of `key` in a checkpoint identity ("k1=v1;k2=v2;..."): the
 * hparams JSON may hold ';' or '=', so each key is found at its place in
 * the fixed order (hparams between ";hparams=" and the last ";engine="). */
static void id_field(const char *id, const char *key, char *out, size_t cap) {
    out[0] = 0;
    char pat[32];
    snprintf(pat, sizeof pat, "%s=", key);
    const char *p = NULL, *e = NULL;
    if (!strcmp(key, "engine")) {
        const char *q = id;
        while ((q = strstr(q, ";engine="))) p = q++;
        if (p) p += 8;
        e = p ? p + strlen(p) : NULL;
    } else if (!strcmp(key, "hparams")) {
        p = strstr(id, ";hparams=");
        const char *q = id, *last = NULL;
        while ((q = strstr(q, ";engine="))) last = q++;
        if (p) p += 9;
        e = last;
    } else {
        p = !strncmp(id, pat, strlen(pat)) ? id : NULL;
        if (!p) {
            char mid[40];
            snprintf(mid, sizeof mid, ";%s", pat);
            p = strstr(id, mid);
            if (p) p++;
        }
        if (p) p += strlen(pat);
        e = p ? strchr(p, ';') : NULL;
        if (p && !e) e = p + strlen(p);
    }
    if (!p || !e || e < p) return;
    size_t n = (size_t)(e - p) < cap - 1 ? (size_t)(e - p) : cap - 1;
    memcpy(out, p, n);
    out[n] = 0;
}

/* Refuses a teacher checkpoint made for another protocol, scale, seed,
 * hyper-parameters or engine, saying what differs. */
static int check_identity(const char *path, const char *want, const void *got, size_t n) {
    if (n == strlen(want) && !memcmp(got, want, n)) return LT_OK;
    char *g = malloc(n + 1);
    if (!g) return lt_err(LT_ENOMEM, "teacher: out of memory");
    memcpy(g, got, n);
    g[n] = 0;
    static const char *const keys[] = {"protocol", "sha256", "scale", "method", "method_version", "seed",
                                       "engine", "hparams"};
    static const char *const what[] = {"protocol", "protocol sha256", "scale", "method", "method version",
                                       "seed", "engine version", "hyper-parameters"};
    /* every field that differs, so one message says all that is wrong */
    char a[600], b[600], got_s[1200] = "", want_s[1200] = "";
    size_t gl = 0, wl = 0;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        id_field(want, keys[k], a, sizeof a);
        id_field(g, keys[k], b, sizeof b);
        if (!strcmp(a, b)) continue;
        gl += (size_t)snprintf(got_s + gl, gl < sizeof got_s ? sizeof got_s - gl : 0, "%s%s %s", gl ? ", " : "",
                               what[k], b[0] ? b : "(none)");
        wl += (size_t)snprintf(want_s + wl, wl < sizeof want_s ? sizeof want_s - wl : 0, "%s%s %s", wl ? ", " : "",
                               what[k], a);
    }
    int rc = gl ? lt_err(LT_EDATA, "teacher %s was made with %s; this run needs %s", path, got_s, want_s)
                : lt_err(LT_EDATA, "teacher %s: identity differs", path);
    free(g);
    return rc;
}

static int teacher_event(lt_child *c, lt_run_teacher *t) {
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "method", t->M->name);
    cJSON_AddNumberToObject(v, "seed", (double)t->seed);
    cJSON_AddStringToObject(v, "checkpoint", t->path);
    cJSON_AddBoolToObject(v, "bn_train", t->bn_train);
    t->logged = 1;
    return lt_events_emit(c->ev, "teacher", 0, -1, "teacher", v);
}

/* Services used before the event log opens (in init) are recorded once it
 * is open: a fresh run's log then names every teacher and the validation
 * split. (A resumed run's log already has them from its first session.) */
int lt_run_host_events(lt_child *c) {
    for (int i = 0; i < c->host.n_pending; i++)
        LT_TRY(lt_events_num(c->ev, "method", 0, -1, c->host.pending_key[i], c->host.pending_val[i]));
    c->host.n_pending = 0;
    for (int i = 0; i < c->host.n_teach; i++)
        if (c->host.teach[i].m && !c->host.teach[i].logged) LT_TRY(teacher_event(c, &c->host.teach[i]));
    if (c->host.have_val && !c->host.val_logged) LT_TRY(lt_run_val_event(c));
    return LT_OK;
}

static int svc_teacher(void *host, const lt_teacher_req *req, lt_model **out) {
    lt_child *c = host;
    if (!c) return no_host("teacher");
    *out = NULL;
    if (!req || !req->method) return lt_err(LT_EINVAL, "teacher: no method named");
    const lt_method *M = lt_method_find(req->method);
    if (!M) return lt_err(LT_EINVAL, "teacher: unknown method '%s'", req->method);
    if (req->max_rows < 1) return lt_err(LT_EINVAL, "teacher %s: max_rows must be >= 1", req->method);
    if (c->host.n_teach == LT_HOST_MAX_TEACH)
        return lt_err(LT_EINVAL, "teacher: more than %d per run", LT_HOST_MAX_TEACH);
    const uint64_t seed = req->seed < 0 ? c->job->req->seed : (uint64_t)req->seed;
    lt_run_teacher *t = &c->host.teach[c->host.n_teach];
    memset(t, 0, sizeof *t);
    t->M = M;
    t->bn_train = req->bn_train != 0;
    const char *root = c->job->req->results_root && c->job->req->results_root[0] ? c->job->req->results_root : "results";
    char dir[1024];
    /* the teacher trained on this run's device: a cuda run's teacher is its cuda run */
    LT_TRY(lt_run_dir_on(root, c->p->name, c->s->name, M->name, &c->job->dev, seed, dir, sizeof dir));
    snprintf(t->path, sizeof t->path, "%s/ckpt_final.ltc", dir);
    if (access(t->path, F_OK) != 0) {
        char dv[64] = "";
        /* the math mode and layout too: they name the teacher's directory (lt_run_dir_on) */
        if (c->job->dev.kind == LT_BACKEND_CUDA)
            snprintf(dv, sizeof dv, " --device cuda:%d%s%s", c->job->dev.device,
                     c->job->dev.math == LT_CUDA_TF32 ? " --math tf32" : "",
                     c->job->dev.layout == LT_LAYOUT_NHWC ? " --layout nhwc" : "");
        return lt_err(LT_EINVAL, "teacher %s seed %llu: %s does not exist; train it first: ltbench run --protocol %s "
                      "--scale %s --method %s --seed %llu%s", M->name, (unsigned long long)seed, t->path, c->p->name,
                      c->s->name, M->name, (unsigned long long)seed, dv);
    }
    LT_TRY(lt_method_hparams(M, req->hparams, &t->hparams));
    c->host.n_teach++;   /* from here lt_run_host_free cleans up */
    char want[2048];
    lt_run_identity(want, sizeof want, c->p, c->s->name, M, seed, t->hparams, &c->job->dev);
    lt_ckpt *ck = NULL;
    int rc = lt_ckpt_read(&ck, t->path);
    if (!rc) {
        const void *id;
        size_t n;
        rc = lt_ckpt_get(ck, "run/identity", &id, &n);
        if (!rc) rc = check_identity(t->path, want, id, n);
    }
    if (!rc) {
        /* the teacher's method builds its model as in its own run; its
         * init gets no host services */
        t->info = c->info;
        t->info.method = M->name;
        t->info.seed = seed;
        t->info.host = NULL;
        t->info.log = NULL;
        t->hpv.obj = t->hparams;
        if (M->state_size && !(t->st = calloc(1, M->state_size))) rc = lt_err(LT_ENOMEM, "teacher: out of memory");
        if (!rc && M->init) {
            rc = M->init(t->st, &t->info, &t->hpv);
            if (rc) rc = lt_err_wrap(rc, "teacher %s: init", M->name);
        }
        t->inited = !rc;
    }
    if (!rc) rc = lt_run_build_method_model(c, M, t->st, &t->m, NULL);
    if (!rc) {
        rc = lt_model_load(t->m, ck, "m/");
        if (rc) rc = lt_err_wrap(rc, "teacher %s", t->path);
    }
    if (!rc) rc = lt_model_freeze(t->m, NULL, 1);
    if (!rc) rc = lt_model_set_eval(t->m, NULL, !t->bn_train);
    if (!rc) rc = lt_model_set_batch(t->m, req->max_rows);
    lt_ckpt_free(ck);
    if (rc) return rc;
    t->seed = seed;
    if (c->ev) LT_TRY(teacher_event(c, t));
    *out = t->m;
    return LT_OK;
}

/* ---- extra batches ------------------------------------------------------------------ */

static int svc_draw(void *host, const lt_draw_req *r, float *x, int32_t *labels, int32_t *ids) {
    lt_child *c = host;
    if (!c) return no_host("draw");
    return lt_drawer_draw(c->host.drawer, r, x, labels, ids);
}

/* ---- validation split ----------------------------------------------------------------- */

static int svc_validation(void *host, const lt_dataset **val, const char **origin) {
    lt_child *c = host;
    if (!c) return no_host("validation");
    *val = NULL;
    if (origin) *origin = NULL;
    LT_TRY(lt_run_open_val(c));
    *val = &c->host.val;
    if (origin) *origin = c->host.val_origin;
    return LT_OK;
}

typedef struct { float *feat, *logits; } vbank_buf;

static int vbank_batch(lt_child *c, void *ud, long first, int n, const int32_t *ids, const float *x) {
    vbank_buf *b = ud;
    (void)ids;
    (void)x;
    memcpy(b->feat + (size_t)first * c->D, c->out_feat, (size_t)n * c->D * sizeof(float));
    memcpy(b->logits + (size_t)first * c->C, c->out_logits, (size_t)n * c->C * sizeof(float));
    return LT_OK;
}

static int svc_validation_bank(void *host, lt_feature_bank *fb) {
    lt_child *c = host;
    if (!c) return no_host("validation_bank");
    memset(fb, 0, sizeof *fb);
    LT_TRY(lt_run_open_val(c));
    lt_run_host *h = &c->host;
    const lt_dataset *v = &h->val;
    if (v->n <= 0) return lt_err(LT_EDATA, "validation_bank: the validation split is empty");
    if (!h->val_feat) {
        h->val_feat = lt_alloc((size_t)v->n * c->D * sizeof(float));
        h->val_logits = lt_alloc((size_t)v->n * c->C * sizeof(float));
        if (!h->val_feat || !h->val_logits) return lt_err(LT_ENOMEM, "validation_bank: out of memory");
    }
    vbank_buf b = {h->val_feat, h->val_logits};
    /* rows in split order (the pass does not shuffle), so labels line up */
    LT_TRY(lt_run_pass(c, v, vbank_batch, &b));
    *fb = (lt_feature_bank){v->n, c->D, c->C, h->val_feat, h->val_logits, v->labels, c->counts};
    return LT_OK;
}

/* ---- optimizer state -------------------------------------------------------------- */

/* The host arrays of opt_state's copies on a device run: of the whole
 * state's size (a later stage's optimizer has the model's size too; the
 * second moment only for Adam), kept for the run. */
int lt_run_host_opt_copies(lt_child *c) {
    lt_run_host *h = &c->host;
    const lt_optim *o = h->opt;
    if (!o || !lt_run_on_device(c) || (h->opt_hn == o->n && (!o->s2 || h->opt_h2))) return LT_OK;
    lt_free(h->opt_h1);
    lt_free(h->opt_h2);
    h->opt_h1 = lt_alloc(o->n * sizeof(float));
    h->opt_h2 = o->s2 ? lt_alloc(o->n * sizeof(float)) : NULL;
    h->opt_hn = h->opt_h1 && (h->opt_h2 || !o->s2) ? o->n : 0;
    if (!h->opt_hn) return lt_err(LT_ENOMEM, "opt_state: out of memory for host copies of %zu values", o->n);
    return LT_OK;
}

static int svc_opt_state(void *host, const char *name, const float **s1, const float **s2, size_t *count) {
    lt_child *c = host;
    if (!c) return no_host("opt_state");
    if (!c->host.opt) return lt_err(LT_ESTATE, "opt_state: no stage is training");
    if (!lt_run_on_device(c)) return lt_optim_state(c->host.opt, c->m, name, s1, s2, count);
    /* device memory: the parameter's state copied into host arrays (made
     * with the stage for a method whose loss or iter_end may ask, before
     * its loop; here for any other caller) */
    LT_TRY(lt_run_host_opt_copies(c));
    lt_run_host *h = &c->host;
    return lt_optim_state_host(h->opt, c->m, name, h->opt_h1, h->opt_h2, s1, s2, count);
}

const lt_host_api lt_run_host_api = {
    .version = LT_HOST_API_VERSION,
    .subgraph = svc_subgraph,
    .module_new = svc_module_new,
    .module_ready = svc_module_ready,
    .module_step = svc_module_step,
    .teacher = svc_teacher,
    .draw = svc_draw,
    .validation = svc_validation,
    .opt_state = svc_opt_state,
    .validation_bank = svc_validation_bank,
};

/* ---- checkpoints ------------------------------------------------------------------- */

int lt_run_host_save(lt_child *c, lt_ckpt_writer *w) {
    char key[200];
    for (int i = 0; i < c->host.n_mod; i++) {
        const lt_run_module *md = &c->host.mod[i];
        if (!md->ready) continue;
        snprintf(key, sizeof key, "mod/%s/m/", md->name);
        LT_TRY(lt_model_save(md->m, w, key));
        snprintf(key, sizeof key, "mod/%s/o/", md->name);
        LT_TRY(lt_optim_save(&md->opt, w, key));
    }
    for (int i = 0; i < c->host.n_teach; i++) {
        const lt_run_teacher *t = &c->host.teach[i];
        if (!t->bn_train || !t->m) continue;   /* frozen statistics need no saving */
        snprintf(key, sizeof key, "teacher/%d/", i);
        LT_TRY(lt_model_save_buffers(t->m, w, key));   /* host copies for a device model */
    }
    return LT_OK;
}

int lt_run_host_load(lt_child *c, const lt_ckpt *ck) {
    char key[200], hdr[240];
    for (int i = 0; i < c->host.n_mod; i++) {
        lt_run_module *md = &c->host.mod[i];
        if (!md->ready) continue;
        snprintf(hdr, sizeof hdr, "mod/%s/o/optim/header", md->name);
        if (!lt_ckpt_has(ck, hdr)) continue;   /* created after this checkpoint was written */
        snprintf(key, sizeof key, "mod/%s/m/", md->name);
        int rc = lt_model_load(md->m, ck, key);
        snprintf(key, sizeof key, "mod/%s/o/", md->name);
        if (!rc) rc = lt_optim_load(&md->opt, ck, key);
        if (rc) return lt_err_wrap(rc, "module '%s'", md->name);
    }
    for (int i = 0; i < c->host.n_teach; i++) {
        lt_run_teacher *t = &c->host.teach[i];
        if (!t->bn_train || !t->m || lt_model_n_buffers(t->m) == 0) continue;
        /* a checkpoint written before this teacher was requested has none of
         * its records; one that has the first has them all */
        lt_buffer_info b;
        LT_TRY(lt_model_buffer_at(t->m, 0, &b));
        snprintf(key, sizeof key, "teacher/%d/b/%s", i, b.name);
        if (!lt_ckpt_has(ck, key)) continue;
        snprintf(key, sizeof key, "teacher/%d/", i);
        int rc = lt_model_load_buffers(t->m, ck, key);   /* host copies for a device model */
        if (rc) return lt_err_wrap(rc, "teacher %d (%s)", i, t->M->name);
    }
    return LT_OK;
}

/* ---- helpers methods link against (lt_method.h) -------------------------------------- */

const char *const lt_bn_mode_names[] = {"protocol", "eval", "train", NULL};

int lt_stage_decoupled(lt_stage *cfg, lt_model *m, const lt_decoupled *d) {
    if (!cfg || !m || !d || !d->train_group) return lt_err(LT_EINVAL, "stage_decoupled: missing argument");
    if (d->bn < LT_BN_PROTOCOL || d->bn > LT_BN_TRAIN) return lt_err(LT_EINVAL, "stage_decoupled: BN mode %d", d->bn);
    /* BN of the frozen backbone: running statistics per PROTOCOLS.md unless
     * the method asks for the official code's train-mode BN */
    const int bn_eval = d->bn == LT_BN_PROTOCOL ? cfg->bn_eval : d->bn == LT_BN_EVAL;
    const int head = !strcmp(d->train_group, "head");
    LT_TRY(lt_model_freeze(m, NULL, 1));
    LT_TRY(lt_model_freeze(m, d->train_group, 0));
    LT_TRY(lt_model_set_eval(m, "backbone", bn_eval));
    if (d->reinit) LT_TRY(lt_model_reinit(m, d->train_group, d->seed + 1000u * (uint64_t)cfg->index));
    cfg->freeze_backbone = 1;
    cfg->reinit_head = d->reinit && head;
    cfg->bn_eval = bn_eval;
    if (d->sampler >= 0) {
        cfg->sampler.kind = (lt_sampler_kind)d->sampler;
        cfg->sampler.k_per_class = d->k_per_class > 0 ? d->k_per_class : 4;
        cfg->sampler.class_weights = NULL;
    }
    return LT_OK;
}
