/* lt_run_result.c — result.json: the one record of a run that leaderboards,
 * figures and the regression check read (schema in harness/RESULTS.md).
 * Metrics are fractions in [0,1]; anything not computed (NaN, a failed run)
 * is null, never a made-up number. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_io.h"
#include "lt_run_internal.h"

static void add_num(cJSON *o, const char *k, double v, int have) {
    if (have && isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

/* method.stage1 of a decoupled run: which stage-1 model it was built on,
 * so a result can be traced to the checkpoint bytes and the code that made
 * them. checkpoint_sha256 is the hash taken when the run loaded the
 * checkpoint (kept across resumes in the run's own checkpoints). The
 * stage-1 run's commit, dirty flag and engine version are read from its
 * result.json now, so they are given only while its checkpoint still has
 * those bytes; after it was re-trained they are null (unknown), not the new
 * run's. A run that never recorded a hash gives a null object. */
static cJSON *stage1_json(const lt_run_job *job) {
    if (!job->shared_final[0] || !job->shared_sha[0]) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "checkpoint_sha256", job->shared_sha);
    char now[65];
    int same = lt_sha256_file(job->shared_final, now) == LT_OK && strcmp(now, job->shared_sha) == 0;
    lt_err_clear();
    char rp[LT_RUN_PATH + 16];
    snprintf(rp, sizeof rp, "%s", job->shared_final);
    char *slash = strrchr(rp, '/');
    if (slash) snprintf(slash + 1, sizeof rp - (size_t)(slash + 1 - rp), "result.json");
    else snprintf(rp, sizeof rp, "result.json");
    cJSON *doc = NULL;
    const cJSON *env = NULL;
    if (same && lt_json_read(rp, &doc) == LT_OK) env = cJSON_GetObjectItemCaseSensitive(doc, "env");
    else lt_err_clear();
    static const char *const keys[] = {"commit", "dirty", "dirty_diff_sha256", "engine_version"};
    for (int i = 0; i < 4; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(env, keys[i]);
        if (cJSON_IsString(v) || cJSON_IsBool(v)) cJSON_AddItemToObject(o, keys[i], cJSON_Duplicate(v, 0));
        else cJSON_AddNullToObject(o, keys[i]);
    }
    cJSON_Delete(doc);
    return o;
}

int lt_result_write(const lt_run_job *job, const lt_run_summary *s) {
    const lt_protocol *p = &job->proto;
    const lt_method *m = job->method;
    cJSON *r = cJSON_CreateObject();
    if (!r) return lt_err(LT_ENOMEM, "result: out of memory");
    cJSON_AddNumberToObject(r, "format", 1);
    cJSON_AddStringToObject(r, "status", s->ok ? "ok" : "failed");
    cJSON_AddStringToObject(r, "reason", s->ok ? "" : s->reason);

    cJSON *po = cJSON_AddObjectToObject(r, "protocol");
    cJSON_AddStringToObject(po, "name", p->name);
    cJSON_AddNumberToObject(po, "version", p->version);
    cJSON_AddStringToObject(po, "sha256", p->sha256);
    cJSON_AddStringToObject(po, "division", p->division);
    cJSON_AddStringToObject(r, "scale", job->scale->name);

    cJSON *mo = cJSON_AddObjectToObject(r, "method");
    cJSON_AddStringToObject(mo, "name", m->name);
    cJSON_AddStringToObject(mo, "version", m->version);
    cJSON_AddStringToObject(mo, "fidelity", m->fidelity);
    cJSON_AddItemToObject(mo, "hparams", cJSON_Duplicate(job->hparams, 1));
    if (m->stage1_from) cJSON_AddStringToObject(mo, "stage1_from", m->stage1_from);
    else cJSON_AddNullToObject(mo, "stage1_from");
    if (m->stage1_from) cJSON_AddItemToObject(mo, "stage1", stage1_json(job));
    cJSON_AddNumberToObject(r, "seed", (double)job->req->seed);

    cJSON *d = cJSON_AddObjectToObject(r, "dataset");
    cJSON_AddStringToObject(d, "name", s->have_dataset ? s->ds_name : p->dataset.name);
    if (s->have_dataset) {
        cJSON_AddStringToObject(d, "manifest_sha256", s->manifest_sha256);
        cJSON_AddNumberToObject(d, "train_size", (double)s->train_size);
        cJSON_AddNumberToObject(d, "test_size", (double)s->test_size);
        /* the validation split, when the method used it */
        if (s->val_manifest_sha256[0]) cJSON_AddStringToObject(d, "val_manifest_sha256", s->val_manifest_sha256);
    } else {
        cJSON_AddNullToObject(d, "manifest_sha256");
        cJSON_AddNullToObject(d, "train_size");
        cJSON_AddNullToObject(d, "test_size");
    }

    cJSON *me = cJSON_AddObjectToObject(r, "metrics");
    int h = s->have_metrics;
    add_num(me, "top1", s->top1, h);
    add_num(me, "many", s->many, h);
    add_num(me, "medium", s->medium, h);
    add_num(me, "few", s->few, h);
    add_num(me, "ece", s->ece, h);
    add_num(me, "macro_f1", s->macro_f1, h);
    add_num(me, "map", s->map, h);
    add_num(me, "class_mean_acc", s->class_mean_acc, h);
    add_num(me, "ece_ts", s->ece_ts, h);
    /* LVIS frequency groups (only protocols with groups.frequency_groups) */
    const int rcf = h && s->rcf_sizes[0] + s->rcf_sizes[1] + s->rcf_sizes[2] > 0;
    if (rcf) {
        static const char *const ka[3] = {"acc_r", "acc_c", "acc_f"}, *const kp[3] = {"ap_r", "ap_c", "ap_f"};
        for (int g = 0; g < 3; g++) add_num(me, ka[g], s->acc_rcf[g], 1);
        for (int g = 0; g < 3; g++) add_num(me, kp[g], s->ap_rcf[g], 1);
    }
    if (h) cJSON_AddItemToObject(r, "group_sizes", cJSON_CreateIntArray(s->group_sizes, 3));
    else cJSON_AddNullToObject(r, "group_sizes");
    if (rcf) cJSON_AddItemToObject(r, "frequency_group_sizes", cJSON_CreateIntArray(s->rcf_sizes, 3));

    /* How ece / ece_ts were made: the score kind decides whether the raw
     * ECE means anything; the temperature and the validation NLLs, or why
     * there is no ece_ts. */
    if (h) {
        cJSON *ca = cJSON_AddObjectToObject(r, "calibration");
        cJSON_AddStringToObject(ca, "score_kind", s->score_kind ? s->score_kind : "logits");
        if (s->cal_done) {
            cJSON_AddNumberToObject(ca, "temperature", s->cal_T);
            cJSON_AddStringToObject(ca, "fit_on", "val");
            cJSON_AddNumberToObject(ca, "val_size", (double)s->cal_val_n);
            cJSON_AddNumberToObject(ca, "val_nll_before", s->cal_nll_before);
            cJSON_AddNumberToObject(ca, "val_nll_after", s->cal_nll_after);
            cJSON_AddBoolToObject(ca, "at_bound", s->cal_at_bound);
        } else {
            cJSON_AddNullToObject(ca, "temperature");
            cJSON_AddStringToObject(ca, "reason", s->cal_reason);
        }
        if (!isfinite(s->ece))
            cJSON_AddStringToObject(ca, "ece_reason", "scores are not a probability model's logits: a softmax at "
                                                      "T = 1 over them is no probability (see ece_ts)");
    }

    /* the method's own after-training measurements (run->log from post_train) */
    if (s->n_report > 0) {
        cJSON *mr = cJSON_AddObjectToObject(r, "method_report");
        for (int i = 0; i < s->n_report && i < LT_RUN_MAX_REPORT; i++)
            cJSON_AddNumberToObject(mr, s->report_key[i], s->report_val[i]);
    }

    cJSON *t = cJSON_AddObjectToObject(r, "timings");
    cJSON_AddNumberToObject(t, "total_s", s->total_s);
    cJSON *st = cJSON_AddArrayToObject(t, "stages_s");
    for (int i = 0; i < s->n_stages && i < LT_RUN_MAX_STAGES; i++)
        cJSON_AddItemToArray(st, cJSON_CreateNumber(s->stage_s[i]));
    add_num(t, "eval_s", s->eval_s, h);

    cJSON_AddItemToObject(r, "env", lt_run_env_json(&job->env));
    cJSON_AddStringToObject(r, "started", job->started);
    char fin[32];
    lt_iso8601_now(fin);
    cJSON_AddStringToObject(r, "finished", fin);

    int rc = lt_json_write_atomic(job->result_path, r, NULL);
    cJSON_Delete(r);
    return rc ? lt_err_wrap(rc, "writing %s", job->result_path) : LT_OK;
}

static double num_or_nan(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int lt_result_read(const char *path, lt_run_outcome *out) {
    memset(out, 0, sizeof *out);
    cJSON *r = NULL;
    LT_TRY(lt_json_read(path, &r));
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(r, "status");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(r, "format");
    const cJSON *me = cJSON_GetObjectItemCaseSensitive(r, "metrics");
    if (!cJSON_IsString(status) || !cJSON_IsNumber(fmt) || fmt->valueint != 1 || !cJSON_IsObject(me)) {
        cJSON_Delete(r);
        return lt_err(LT_EDATA, "%s: not a format-1 result file", path);
    }
    out->ok = !strcmp(status->valuestring, "ok");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(r, "reason");
    if (cJSON_IsString(reason)) snprintf(out->reason, sizeof out->reason, "%s", reason->valuestring);
    out->top1 = num_or_nan(me, "top1");
    out->many = num_or_nan(me, "many");
    out->medium = num_or_nan(me, "medium");
    out->few = num_or_nan(me, "few");
    out->ece = num_or_nan(me, "ece");
    out->ece_ts = num_or_nan(me, "ece_ts");
    out->macro_f1 = num_or_nan(me, "macro_f1");
    out->map = num_or_nan(me, "map");
    out->total_s = num_or_nan(cJSON_GetObjectItemCaseSensitive(r, "timings"), "total_s");
    snprintf(out->result_path, sizeof out->result_path, "%s", path);
    snprintf(out->run_dir, sizeof out->run_dir, "%s", path);
    char *slash = strrchr(out->run_dir, '/');
    if (slash) *slash = 0; else snprintf(out->run_dir, sizeof out->run_dir, ".");
    cJSON_Delete(r);
    return LT_OK;
}
