/* lt_run_eval.c — after training: the feature bank a method may ask for,
 * post_train, the test evaluation (softmax probabilities -> lt_metrics),
 * per_class.csv and result.json.
 *
 * Model selection never looks at the test set (PROTOCOLS.md): the numbers
 * are those of the model after the last epoch (and post_train). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_io.h"
#include "lt_run_internal.h"

/* The batch's logits and features on the host: the model's buffers on
 * cpu, copies into c->out_buf on a device (the rest of the evaluation is
 * host code either way). */
static int pass_outputs(lt_child *c, int n) {
    if (!lt_run_on_device(c)) {
        c->out_logits = lt_model_out(c->m, c->logits);
        c->out_feat = lt_model_out(c->m, c->feat);
        return LT_OK;
    }
    float *lg = c->out_buf, *ft = c->out_buf + (size_t)lt_model_batch(c->m) * c->C;
    LT_TRY(lt_model_out_to_host(c->m, c->logits, n, lg));
    LT_TRY(lt_model_out_to_host(c->m, c->feat, n, ft));
    c->out_logits = lg;
    c->out_feat = ft;
    return LT_OK;
}

int lt_run_pass(lt_child *c, const lt_dataset *ds, lt_run_batch_fn fn, void *ud) {
    const int B = lt_model_batch(c->m);
    if (lt_run_on_device(c)) {
        free(c->out_buf);
        c->out_buf = malloc((size_t)B * ((size_t)c->C + (size_t)c->D) * sizeof(float));
        if (!c->out_buf) return lt_err(LT_ENOMEM, "evaluation: out of memory for the batch's outputs");
    }
    int32_t *idx = malloc((size_t)ds->n * sizeof *idx);
    if (!idx) return lt_err(LT_ENOMEM, "evaluation: out of memory");
    for (long i = 0; i < ds->n; i++) idx[i] = (int32_t)i;
    lt_loader *L = NULL;
    /* cpu: the one background thread it always was; a device: every core
     * and pinned slots (lt_loader_opts_for_backend) */
    lt_loader_opts lo;
    lt_loader_opts_for_backend(&lo, c->job->backend);
    int rc = lt_loader_open_opts(&L, ds, &c->aug, B, 0, 0, c->job->req->seed, LT_STREAM_AUG, &lo);
    if (!rc) rc = lt_loader_start(L, 0, idx, ds->n, 0);
    long done = 0;
    while (!rc) {
        const float *x;
        const int32_t *y, *ids;
        int n;
        rc = lt_loader_next(L, &x, &y, &ids, &n);
        if (rc || n == 0) break;
        rc = lt_model_forward(c->m, x, n, 0);
        if (!rc) rc = pass_outputs(c, n);
        if (!rc) rc = fn(c, ud, done, n, ids, x);
        done += n;
    }
    if (L) lt_loader_close(L);
    free(idx);
    return rc;
}

/* ---- feature bank ------------------------------------------------------------------ */

typedef struct { float *feat, *logits; } bank_buf;

static int bank_batch(lt_child *c, void *ud, long first, int n, const int32_t *ids, const float *x) {
    bank_buf *b = ud;
    (void)first;
    (void)x;
    const float *f = c->out_feat, *l = c->out_logits;
    for (int i = 0; i < n; i++) {
        memcpy(b->feat + (size_t)ids[i] * c->D, f + (size_t)i * c->D, (size_t)c->D * sizeof(float));
        memcpy(b->logits + (size_t)ids[i] * c->C, l + (size_t)i * c->C, (size_t)c->C * sizeof(float));
    }
    return LT_OK;
}

/* ---- the cpu twin of a device model (post_train, class_norms) ----------------------- */

int lt_run_twin_copy(lt_child *c, int to_twin) {
    lt_model *d = c->m, *t = c->twin;
    if (lt_model_n_params(d) != lt_model_n_params(t) || lt_model_n_buffers(d) != lt_model_n_buffers(t))
        return lt_err(LT_ESTATE, "method %s: its cpu twin has %d parameters and %d buffers, the model %d and %d",
                      c->M->name, lt_model_n_params(t), lt_model_n_buffers(t), lt_model_n_params(d),
                      lt_model_n_buffers(d));
    for (int i = 0; i < lt_model_n_params(d); i++) {
        lt_param_info pd, pt;
        LT_TRY(lt_model_param_at(d, i, &pd));
        LT_TRY(lt_model_param_at(t, i, &pt));
        if (pd.count != pt.count || strcmp(pd.name, pt.name))
            return lt_err(LT_ESTATE, "method %s: cpu twin parameter %d is %s (%zu), the model's %s (%zu)", c->M->name,
                          i, pt.name, pt.count, pd.name, pd.count);
        LT_TRY(to_twin ? lt_model_param_to_host(d, i, pt.w, NULL) : lt_model_param_from_host(d, i, pt.w));
    }
    for (int i = 0; i < lt_model_n_buffers(d); i++) {
        lt_buffer_info bd, bt;
        LT_TRY(lt_model_buffer_at(d, i, &bd));
        LT_TRY(lt_model_buffer_at(t, i, &bt));
        if (bd.count != bt.count)
            return lt_err(LT_ESTATE, "method %s: cpu twin buffer %d has %zu values, the model's %zu", c->M->name, i,
                          bt.count, bd.count);
        LT_TRY(to_twin ? lt_model_buffer_to_host(d, i, bt.data) : lt_model_buffer_from_host(d, i, bt.data));
    }
    return LT_OK;
}

/* The model post_train and class_norms get: the run's own on cpu; on a
 * device a cpu twin of it, since those hooks read and write the model
 * through host pointers. The twin is made, with the device's parameters
 * and buffers, by the first of them to ask: training is over then, and
 * the only later change to the device model is post_train's, copied from
 * the twin. No batch is planned on the twin (a hook that forwards plans
 * its own). The making's time goes into the host_model event. */
static int host_model(lt_child *c, const char *why, lt_model **out) {
    *out = c->m;
    if (!lt_run_on_device(c)) return LT_OK;
    if (!c->twin) {
        const double t0 = lt_now_s();
        LT_TRY(lt_run_build_method_model_on(c, c->M, c->st, NULL, LT_LAYOUT_NCHW, &c->twin, NULL));
        const int rc = lt_run_twin_copy(c, 1);
        if (rc) {   /* no half-copied twin for a later hook */
            lt_model_free(c->twin);
            c->twin = NULL;
            return rc;
        }
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "for", why);
        cJSON_AddNumberToObject(v, "seconds", lt_now_s() - t0);
        LT_TRY(lt_events_emit(c->ev, "host_model", -1, -1, "twin", v));
    }
    *out = c->twin;
    return LT_OK;
}

static int post_train(lt_child *c) {
    if (!c->M->post_train) return LT_OK;
    bank_buf b = {NULL, NULL};
    lt_feature_bank fb;
    int rc = LT_OK;
    const int want = lt_method_wants_bank(c->M, c->st);
    if (want) {
        b.feat = lt_alloc((size_t)c->train.n * c->D * sizeof(float));
        b.logits = lt_alloc((size_t)c->train.n * c->C * sizeof(float));
        if (!b.feat || !b.logits) rc = lt_err(LT_ENOMEM, "feature bank: out of memory");
        if (!rc) rc = lt_run_pass(c, &c->train, bank_batch, &b);
        fb = (lt_feature_bank){c->train.n, c->D, c->C, b.feat, b.logits, c->train.labels, c->counts};
    }
    lt_model *m = c->m;
    if (!rc) rc = host_model(c, "post_train", &m);
    if (!rc) {
        c->in_post_train = 1;
        c->sum->n_report = 0;   /* a re-evaluation reports afresh */
        rc = c->M->post_train(c->st, m, want ? &fb : NULL);
        c->in_post_train = 0;
        if (rc) rc = lt_err_wrap(rc, "method %s: post_train", c->M->name);
    }
    /* what post_train changed in the twin is the model the test sees */
    if (!rc && m != c->m) rc = lt_run_twin_copy(c, 0);
    lt_free(b.feat);
    lt_free(b.logits);
    return rc;
}

/* ---- test evaluation ---------------------------------------------------------------- */

/* probs: what top-1 / ECE / per-class accuracy read (rows sum to 1).
 * scores: a method's own per-class ranking scores (LT_SCORES_SIGMOID), used
 * for AP instead of probs; NULL until a batch reports that kind.
 * T > 0: the fitted temperature; conf_ts / ok_ts get softmax(s/T)'s
 * top-label confidence and correctness per test image. */
typedef struct {
    float *probs, *scores;
    long n;
    int kind;
    double T;
    float *conf_ts, *tmp;
    uint8_t *ok_ts;
} eval_buf;

/* Row softmax in place; accumulation in double, max subtracted first. */
static void softmax_rows(float *z, int n, int C) {
    for (int i = 0; i < n; i++) {
        float *r = z + (size_t)i * C;
        float mx = r[0];
        for (int j = 1; j < C; j++) mx = r[j] > mx ? r[j] : mx;
        double s = 0;
        for (int j = 0; j < C; j++) s += exp((double)r[j] - mx);
        for (int j = 0; j < C; j++) r[j] = (float)(exp((double)r[j] - mx) / s);
    }
}

int lt_run_scores(lt_child *c, int n, const int32_t *ids, const float *x, float *out, int *kind) {
    const float *lg = c->out_logits;
    *kind = LT_SCORES_LOGITS;
    if (c->M->predict) {
        lt_taps t = {n, c->C, c->D, lg, c->out_feat, NULL, ids, c->counts, -1, -1, -1, 0.0f, c->m,
                     x, n, 1};
        int rc = c->M->predict(c->st, &t, out, kind);
        if (rc) return lt_err_wrap(rc, "method %s: predict", c->M->name);
    } else {
        memcpy(out, lg, (size_t)n * c->C * sizeof(float));
    }
    if (*kind != LT_SCORES_LOGITS && *kind != LT_SCORES_PROBS && *kind != LT_SCORES_SIGMOID &&
        *kind != LT_SCORES_SCORES)
        return lt_err(LT_EINVAL, "method %s: predict reported score kind %d", c->M->name, *kind);
    for (size_t i = 0; i < (size_t)n * c->C; i++)
        if (!isfinite(out[i])) return lt_err(LT_ENUM, "method %s: scores contain NaN/Inf", c->M->name);
    return LT_OK;
}

void lt_run_scores_to_logits(float *s, size_t len, int kind) {
    /* log of a probability; a zero becomes the log of the smallest normal
     * float, so a certain-wrong row costs a large but finite NLL */
    if (kind == LT_SCORES_PROBS)
        for (size_t i = 0; i < len; i++) s[i] = (float)log(s[i] > 1.17549435e-38f ? (double)s[i] : 1.17549435e-38);
}

static int eval_batch(lt_child *c, void *ud, long first, int n, const int32_t *ids, const float *x) {
    eval_buf *b = ud;
    float *out = b->probs + (size_t)first * c->C;
    int kind;
    int rc = lt_run_scores(c, n, ids, x, out, &kind);
    if (rc) return rc == LT_ENUM ? lt_err(LT_ENUM, "test scores contain NaN/Inf") : rc;
    if (first > 0 && kind != b->kind)
        return lt_err(LT_EINVAL, "method %s: predict changed its score kind between batches", c->M->name);
    b->kind = kind;
    if (b->T > 0) {
        /* temperature-scaled confidences from the raw scores, before they
         * are normalised below */
        const size_t len = (size_t)n * c->C;
        memcpy(b->tmp, out, len * sizeof(float));
        lt_run_scores_to_logits(b->tmp, len, kind);
        LT_TRY(lt_temp_conf(n, c->C, b->tmp, c->test.labels + first, b->T, b->conf_ts + first, b->ok_ts + first));
    }
    if (kind == LT_SCORES_LOGITS || kind == LT_SCORES_SCORES) softmax_rows(out, n, c->C);
    if (kind == LT_SCORES_SIGMOID) {
        if (!b->scores) {
            b->scores = lt_alloc((size_t)b->n * c->C * sizeof(float));
            if (!b->scores) return lt_err(LT_ENOMEM, "evaluation: out of memory for sigmoid scores");
        }
        float *raw = b->scores + (size_t)first * c->C;
        memcpy(raw, out, (size_t)n * c->C * sizeof(float));
        lt_sigmoid_norm_rows(n, c->C, raw, out);
    }
    return LT_OK;
}

static int want_metric(const lt_protocol *p, const char *name) {
    for (int i = 0; i < p->n_metrics; i++)
        if (!strcmp(p->metrics[i], name)) return 1;
    return 0;
}

/* The index of the classifier's weight rows: "logits.weight" when logits
 * is a linear layer, else the first head parameter shaped [C x D] (LWS, cRT
 * heads); -1 when there is none. */
static int classifier_rows(lt_child *c) {
    lt_model *m = c->m;
    const size_t want = (size_t)c->C * c->D;
    lt_param_info p;
    int found = -1;
    for (int i = 0; found < 0 && i < lt_model_n_params(m); i++)
        if (lt_model_param_at(m, i, &p) == LT_OK && !strcmp(p.name, "logits.weight") && p.count == want) found = i;
    for (int i = 0; found < 0 && i < lt_model_n_params(m); i++) {
        if (lt_model_param_at(m, i, &p)) break;
        size_t ln = strlen(p.name);
        if (!strcmp(p.group, "head") && p.count == want && ln > 7 && !strcmp(p.name + ln - 7, ".weight")) found = i;
    }
    lt_err_clear();
    return found;
}

/* Each class's classifier norm for per_class.csv: the method's effective
 * classifier when it says (class_norms), else the head's rows; NAN where
 * there is none. Methods that score the test set with something other than
 * the head's rows (tau-normalised rows, centroids) must not be shown with
 * the head's norms, which is what the figure plotted before. */
static int class_norms(lt_child *c, double *norms) {
    for (int j = 0; j < c->C; j++) norms[j] = NAN;
    if (c->M->abi >= 3 && c->M->class_norms) {
        lt_model *m;
        LT_TRY(host_model(c, "class_norms", &m));
        int rc = c->M->class_norms(c->st, m, c->C, norms);
        if (rc) return lt_err_wrap(rc, "per_class.csv: %s's class norms", c->M->name);
        return LT_OK;
    }
    const int k = classifier_rows(c);
    if (k < 0) return LT_OK;
    /* a host copy (the rows may be device memory) */
    float *W = malloc((size_t)c->C * c->D * sizeof(float));
    if (!W) return lt_err(LT_ENOMEM, "per_class.csv: out of memory");
    int rc = lt_model_param_to_host(c->m, k, W, NULL);
    for (int j = 0; !rc && j < c->C; j++) {
        double s = 0;
        for (int d = 0; d < c->D; d++) s += (double)W[(size_t)j * c->D + d] * W[(size_t)j * c->D + d];
        norms[j] = sqrt(s);
    }
    free(W);
    return rc;
}

static int write_per_class(lt_child *c, const lt_metrics *mt) {
    double *norms = malloc((size_t)c->C * sizeof *norms);
    if (!norms) return lt_err(LT_ENOMEM, "per_class.csv: out of memory");
    int nrc = class_norms(c, norms);
    if (nrc) { free(norms); return nrc; }
    size_t cap = 128 + (size_t)c->C * 160, len = 0;
    char *buf = malloc(cap);
    if (!buf) { free(norms); return lt_err(LT_ENOMEM, "per_class.csv: out of memory"); }
    static const char *gname[3] = {"many", "medium", "few"};
    len += (size_t)snprintf(buf, cap, "class_id,train_count,test_count,correct,acc,group,weight_norm\n");
    for (int j = 0; j < c->C; j++) {
        char acc[32] = "", wn[32] = "";
        if (isfinite(mt->acc[j])) snprintf(acc, sizeof acc, "%.17g", mt->acc[j]);
        if (isfinite(norms[j])) snprintf(wn, sizeof wn, "%.9g", norms[j]);
        len += (size_t)snprintf(buf + len, cap - len, "%d,%ld,%ld,%ld,%s,%s,%s\n", j, c->counts[j],
                                mt->test_count[j], mt->correct[j], acc, gname[lt_shot_group(c->counts[j])], wn);
    }
    int rc = lt_file_write_atomic(c->job->per_class_path, buf, len);
    free(buf);
    free(norms);
    return rc;
}

int lt_run_finish(lt_child *c) {
    lt_run_summary *sum = c->sum;
    lt_run_where(c, -1, -1);
    double t_post = lt_now_s();
    LT_TRY(post_train(c));
    LT_TRY(lt_run_calibrate(c));
    const long N = c->test.n;
    eval_buf b = {lt_alloc((size_t)N * c->C * sizeof(float)), NULL, N, LT_SCORES_LOGITS, 0.0, NULL, NULL, NULL};
    if (!b.probs) return lt_err(LT_ENOMEM, "evaluation: out of memory");
    const int bins = c->p->ece_bins > 0 ? c->p->ece_bins : 15;
    int rc = LT_OK;
    if (sum->cal_done) {
        b.T = sum->cal_T;
        b.conf_ts = malloc((size_t)N * sizeof *b.conf_ts);
        b.ok_ts = malloc((size_t)N);
        b.tmp = malloc((size_t)lt_model_batch(c->m) * c->C * sizeof *b.tmp);
        if (!b.conf_ts || !b.ok_ts || !b.tmp) rc = lt_err(LT_ENOMEM, "ece_ts: out of memory");
    }
    lt_metrics mt;
    memset(&mt, 0, sizeof mt);
    if (!rc) rc = lt_run_pass(c, &c->test, eval_batch, &b);
    const int want_ap = want_metric(c->p, "map") || want_metric(c->p, "ap_r") || want_metric(c->p, "ap_c") ||
                        want_metric(c->p, "ap_f");
    if (!rc) rc = lt_metrics_compute(&mt, (int)N, c->C, b.probs, c->test.labels, c->counts, want_ap);
    if (!rc && want_ap && b.scores) rc = lt_metrics_rank_ap(&mt, (int)N, c->C, b.scores, c->test.labels);
    for (int g = 0; g < 3; g++) sum->acc_rcf[g] = sum->ap_rcf[g] = NAN;
    if (!rc && c->freq_group)
        rc = lt_metrics_group_means(&mt, c->freq_group, 3, sum->acc_rcf, sum->ap_rcf, sum->rcf_sizes);
    if (!rc && c->p->ece_bins > 0 && c->p->ece_bins != 15) {
        /* lt_metrics uses 15 bins; a protocol with another count gets its own */
        float *conf = malloc((size_t)N * sizeof *conf);
        uint8_t *ok = malloc((size_t)N);
        if (!conf || !ok) rc = lt_err(LT_ENOMEM, "ece: out of memory");
        for (long i = 0; !rc && i < N; i++) {
            const float *r = b.probs + (size_t)i * c->C;
            int best = 0;
            for (int j = 1; j < c->C; j++)
                if (r[j] > r[best]) best = j;
            conf[i] = r[best];
            ok[i] = best == c->test.labels[i];
        }
        if (!rc) mt.ece = lt_ece((int)N, conf, ok, bins);
        free(conf);
        free(ok);
    }
    sum->ece_ts = NAN;
    if (!rc && sum->cal_done) sum->ece_ts = lt_ece((int)N, b.conf_ts, b.ok_ts, bins);
    /* The raw ECE reads softmax(s) at T = 1, a probability only where s are
     * a probability model's logits (or probabilities); for sigmoid logits and
     * other scores it would be a number without meaning (lt_method.h). */
    static const char *const kind_name[] = {"logits", "probs", "sigmoid", "scores"};
    sum->score_kind = kind_name[b.kind];
    lt_free(b.probs);
    lt_free(b.scores);
    free(b.conf_ts);
    free(b.ok_ts);
    free(b.tmp);
    if (rc) { lt_metrics_free(&mt); return rc; }
    if (b.kind == LT_SCORES_SIGMOID || b.kind == LT_SCORES_SCORES) mt.ece = NAN;
    sum->eval_s = lt_now_s() - t_post;
    sum->have_metrics = 1;
    sum->top1 = mt.top1;
    sum->many = mt.group_acc[0];
    sum->medium = mt.group_acc[1];
    sum->few = mt.group_acc[2];
    sum->ece = mt.ece;
    sum->macro_f1 = mt.macro_f1;
    sum->map = mt.map;
    sum->class_mean_acc = mt.class_mean_acc;
    for (int g = 0; g < 3; g++) sum->group_sizes[g] = mt.group_size[g];
    memcpy(sum->stage_s, c->stage_s, sizeof sum->stage_s);
    rc = write_per_class(c, &mt);
    lt_metrics_free(&mt);
    if (rc) return rc;

    cJSON *v = cJSON_CreateObject();
    const char *k[15] = {"top1", "many", "medium", "few", "ece", "macro_f1", "map", "class_mean_acc", "ece_ts",
                         "acc_r", "acc_c", "acc_f", "ap_r", "ap_c", "ap_f"};
    const double x[15] = {sum->top1, sum->many, sum->medium, sum->few, sum->ece, sum->macro_f1, sum->map,
                          sum->class_mean_acc, sum->ece_ts, sum->acc_rcf[0], sum->acc_rcf[1], sum->acc_rcf[2],
                          sum->ap_rcf[0], sum->ap_rcf[1], sum->ap_rcf[2]};
    for (int i = 0; i < (c->freq_group ? 15 : 9); i++) {
        if (isfinite(x[i])) cJSON_AddNumberToObject(v, k[i], x[i]);
        else cJSON_AddNullToObject(v, k[i]);
    }
    cJSON_AddNumberToObject(v, "test_size", (double)N);
    LT_TRY(lt_events_emit(c->ev, "eval", 0, -1, "test", v));
    sum->ok = 1;
    sum->total_s = c->prev_wall_s + (lt_now_s() - c->job->t0);
    LT_TRY(lt_events_str(c->ev, "run_stop", 0, -1, "status", "ok"));
    LT_TRY(lt_events_commit(c->ev));   /* a re-evaluation's log replaces the old one now */
    LT_TRY(lt_result_write(c->job, sum));
    if (!c->job->req->quiet)
        fprintf(c->job->log, "  %s %s %s seed %llu: top1 %.4f many %.4f medium %.4f few %.4f ece %.4f ece_ts %.4f "
                "(%.1f s)\n", c->p->name, c->s->name, c->M->name, (unsigned long long)c->job->req->seed, sum->top1,
                sum->many, sum->medium, sum->few, sum->ece, sum->ece_ts, sum->total_s);
    return LT_OK;
}
