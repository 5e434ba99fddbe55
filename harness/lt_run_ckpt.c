/* lt_run_ckpt.c — the run's checkpoints: writing them, recognising one of
 * this run (its identity record), and loading model, optimizer and method
 * state back; plus loading another run's model by parameter name (the
 * shared stage 1 of decoupled methods). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lt_run_internal.h"

int lt_run_save_ckpt(lt_child *c, const char *path, const lt_run_meta *meta, const lt_optim *opt) {
    lt_ckpt_writer *w;
    LT_TRY(lt_ckpt_writer_open(&w, path));
    int rc = lt_ckpt_put(w, "run/identity", c->job->identity, strlen(c->job->identity));
    if (!rc) rc = lt_ckpt_put(w, "run/numerics", c->job->numerics, strlen(c->job->numerics));
    if (!rc) rc = lt_ckpt_put(w, "run/meta", meta, sizeof *meta);
    if (!rc && c->job->shared_sha[0]) rc = lt_ckpt_put(w, "run/stage1_sha256", c->job->shared_sha, 64);
    if (!rc) rc = lt_model_save(c->m, w, "m/");
    if (!rc && opt) rc = lt_optim_save(opt, w, "o/");
    if (!rc) rc = lt_run_host_save(c, w);
    if (!rc && c->M->save) {
        rc = c->M->save(c->st, w, "method/");
        if (rc) rc = lt_err_wrap(rc, "method %s: save", c->M->name);
    }
    if (rc) {
        lt_ckpt_writer_abort(w);
        return rc;
    }
    return lt_ckpt_commit(w);
}

lt_ckpt_match lt_run_ckpt_match(const lt_ckpt *k, const lt_run_job *job, char *was, size_t cap) {
    const void *id;
    size_t n;
    if (cap) was[0] = '\0';
    if (lt_ckpt_get(k, "run/identity", &id, &n) || n != strlen(job->identity) || memcmp(id, job->identity, n))
        return LT_CKPT_OTHER_RUN;
    /* the same run, made under other numerics: going on from it would give
     * bits that neither fingerprint makes, under this one's name */
    if (lt_ckpt_get(k, "run/numerics", &id, &n) != LT_OK) return LT_CKPT_OTHER_NUMERICS;
    if (cap) snprintf(was, cap, "%.*s", (int)(n < cap ? n : cap - 1), (const char *)id);
    return n == strlen(job->numerics) && !memcmp(id, job->numerics, n) ? LT_CKPT_OURS : LT_CKPT_OTHER_NUMERICS;
}

/* Reads a checkpoint of this run (same identity). *ck = NULL and LT_OK when
 * the file is absent or of another run (another identity, or a checkpoint
 * format version this build does not read); a status naming the file when
 * it is unreadable (checksum, truncation, bookkeeping record). */
int lt_run_read_ckpt(lt_child *c, const char *path, lt_ckpt **ck, lt_run_meta *meta) {
    *ck = NULL;
    if (access(path, F_OK) != 0) return LT_OK;
    lt_ckpt *k;
    int rc = lt_ckpt_read(&k, path);
    if (rc == LT_EABI) {
        if (!c->job->req->quiet)
            fprintf(c->job->log, "note: not resuming from %s (%s); starting afresh\n", path, lt_errmsg());
        return LT_OK;
    }
    if (rc) return rc;
    char was[256];
    const lt_ckpt_match mt = lt_run_ckpt_match(k, c->job, was, sizeof was);
    if (mt != LT_CKPT_OURS) {
        lt_ckpt_free(k);
        if (c->job->req->quiet) return LT_OK;
        if (mt == LT_CKPT_OTHER_RUN)
            fprintf(c->job->log, "note: not resuming from %s (made by another protocol, method, seed or "
                    "version); starting afresh\n", path);
        else
            fprintf(c->job->log, "note: not resuming from %s (made with %s, now %s); starting afresh\n", path,
                    was[0] ? was : "no numerics record", c->job->numerics);
        return LT_OK;
    }
    if (lt_ckpt_get_into(k, "run/meta", meta, sizeof *meta) || meta->version != 1 ||
        meta->n_stages != c->n_stages) {
        lt_ckpt_free(k);
        return lt_err(LT_EDATA, "%s: bookkeeping record unreadable", path);
    }
    /* the stage-1 checkpoint this run loaded before it was interrupted */
    if (lt_ckpt_has(k, "run/stage1_sha256") &&
        lt_ckpt_get_into(k, "run/stage1_sha256", c->job->shared_sha, 64) == LT_OK)
        c->job->shared_sha[64] = 0;
    else
        c->job->shared_sha[0] = 0;
    *ck = k;
    return LT_OK;
}

int lt_run_load_state(lt_child *c, const lt_ckpt *ck, lt_optim *opt) {
    int rc = lt_model_load(c->m, ck, "m/");
    if (!rc && opt) rc = lt_optim_load(opt, ck, "o/");
    if (!rc) rc = lt_run_host_load(c, ck);
    if (!rc && c->M->load) {
        rc = c->M->load(c->st, ck, "method/");
        if (rc) rc = lt_err_wrap(rc, "method %s: load", c->M->name);
    }
    return rc ? lt_err_wrap(rc, "resuming") : LT_OK;
}

/* A record into a tensor of the model: straight into it on cpu, through a
 * host copy on a device (param >= 0: parameter `param`, else buffer `buf`). */
static int get_tensor(lt_model *m, const lt_ckpt *ck, const char *key, float *dst, size_t count, int param,
                      int buf) {
    if (lt_backend_get_kind(lt_model_backend(m)) == LT_BACKEND_CPU)
        return lt_ckpt_get_into(ck, key, dst, count * sizeof(float));
    float *h = malloc(count * sizeof(float) + 4);
    if (!h) return lt_err(LT_ENOMEM, "%s: out of memory", key);
    int rc = lt_ckpt_get_into(ck, key, h, count * sizeof(float));
    if (!rc) rc = param >= 0 ? lt_model_param_from_host(m, param, h) : lt_model_buffer_from_host(m, buf, h);
    free(h);
    return rc;
}

/* Loads the parameters (and buffers) a checkpoint has, by name; the others
 * keep their values. For the shared stage 1 of decoupled methods. */
int lt_run_load_matching(lt_model *m, const lt_ckpt *ck, const char *prefix, int *n_loaded) {
    char key[200];
    *n_loaded = 0;
    for (int i = 0; i < lt_model_n_params(m); i++) {
        lt_param_info p;
        LT_TRY(lt_model_param_at(m, i, &p));
        snprintf(key, sizeof key, "%sw/%s", prefix, p.name);
        if (!lt_ckpt_has(ck, key)) continue;
        int rc = get_tensor(m, ck, key, p.w, p.count, i, -1);
        if (rc) return lt_err_wrap(rc, "shared stage 1: parameter '%s'", p.name);
        (*n_loaded)++;
    }
    for (int i = 0; i < lt_model_n_buffers(m); i++) {
        lt_buffer_info b;
        LT_TRY(lt_model_buffer_at(m, i, &b));
        snprintf(key, sizeof key, "%sb/%s", prefix, b.name);
        if (!lt_ckpt_has(ck, key)) continue;
        int rc = get_tensor(m, ck, key, b.data, b.count, -1, i);
        if (rc) return lt_err_wrap(rc, "shared stage 1: buffer '%s'", b.name);
    }
    return LT_OK;
}
