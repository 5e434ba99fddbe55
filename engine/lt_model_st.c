/* lt_model_st.c — model <-> safetensors under PyTorch names (see the header). */
#include "lt_model_st.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lt_model_torch_name(const char *s, char *out, size_t cap) {
    if (!strncmp(s, "logits.", 7)) snprintf(out, cap, "fc.%s", s + 7);
    else snprintf(out, cap, "%s", s);
}

/* "<node>.running_var" names a BN-like node: its num_batches_tracked key. */
static int bn_counter_name(const char *buf_name, char *out, size_t cap) {
    static const char sfx[] = ".running_var";
    size_t n = strlen(buf_name), k = sizeof sfx - 1;
    if (n <= k || strcmp(buf_name + n - k, sfx)) return 0;
    char node[LT_ST_NAME_MAX];
    snprintf(node, sizeof node, "%.*s", (int)(n - k), buf_name);
    char tn[LT_ST_NAME_MAX];
    lt_model_torch_name(node, tn, sizeof tn);
    snprintf(out, cap, "%s.num_batches_tracked", tn);
    return 1;
}

int lt_model_write_st(lt_model *m, const char *path, int what, int64_t nbt, const lt_st_meta *meta,
                      int n_meta) {
    const int np = lt_model_n_params(m), nb = lt_model_n_buffers(m);
    const int cap = np + (what == LT_ST_WEIGHTS ? 2 * nb : 0);
    lt_st_tensor *t = calloc((size_t)cap + 1, sizeof *t);
    float *zeros = NULL;
    if (!t) return lt_err(LT_ENOMEM, "%s: tensor list", path);
    int n = 0, rc = LT_OK;
    for (int i = 0; !rc && i < np; i++) {
        lt_param_info p;
        rc = lt_model_param_at(m, i, &p);
        if (!rc) rc = lt_model_param_shape(m, i, t[n].shape, &t[n].ndim);
        if (rc) break;
        lt_model_torch_name(p.name, t[n].name, sizeof t[n].name);
        t[n].dtype = LT_ST_F32;
        t[n].bytes = p.count * sizeof(float);
        t[n].data = what == LT_ST_GRADS ? p.g : p.w;
        /* A frozen parameter has no gradient: PyTorch would report None; we
         * write zeros so the file stays complete (the caller knows which).
         * One zero block of the largest size serves them all (only read). */
        if (!t[n].data) {
            if (!zeros) {
                size_t mx = 0;
                for (int j = 0; j < np; j++) {
                    lt_param_info q;
                    if (!lt_model_param_at(m, j, &q) && q.count > mx) mx = q.count;
                }
                if (!(zeros = calloc(mx + 1, sizeof(float)))) { rc = lt_err(LT_ENOMEM, "%s", path); break; }
            }
            t[n].data = zeros;
        }
        n++;
    }
    int64_t *counter = malloc(sizeof *counter);
    if (!counter) rc = lt_err(LT_ENOMEM, "%s", path);
    else *counter = nbt;
    for (int i = 0; !rc && what == LT_ST_WEIGHTS && i < nb; i++) {
        lt_buffer_info b;
        rc = lt_model_buffer_at(m, i, &b);
        if (rc) break;
        lt_model_torch_name(b.name, t[n].name, sizeof t[n].name);
        t[n].dtype = LT_ST_F32;
        t[n].ndim = 1;
        t[n].shape[0] = (int64_t)b.count;
        t[n].bytes = b.count * sizeof(float);
        t[n].data = b.data;
        n++;
        if (nbt >= 0 && bn_counter_name(b.name, t[n].name, sizeof t[n].name)) {
            t[n].dtype = LT_ST_I64;
            t[n].ndim = 0;
            t[n].bytes = sizeof(int64_t);
            t[n].data = counter;
            n++;
        }
    }
    if (!rc) rc = lt_st_write(path, t, n, meta, n_meta);
    free(counter);
    free(zeros);
    free(t);
    return rc;
}

int lt_model_read_st(lt_model *m, const char *path) {
    lt_st_file *f;
    LT_TRY(lt_st_read(&f, path));
    char tn[LT_ST_NAME_MAX];
    int rc = LT_OK;
    for (int i = 0; !rc && i < lt_model_n_params(m); i++) {
        lt_param_info p;
        rc = lt_model_param_at(m, i, &p);
        if (rc) break;
        lt_model_torch_name(p.name, tn, sizeof tn);
        rc = lt_st_get_f32(f, tn, p.w, p.count);
    }
    for (int i = 0; !rc && i < lt_model_n_buffers(m); i++) {
        lt_buffer_info b;
        rc = lt_model_buffer_at(m, i, &b);
        if (rc) break;
        lt_model_torch_name(b.name, tn, sizeof tn);
        rc = lt_st_get_f32(f, tn, b.data, b.count);
    }
    lt_st_free(f);
    return rc ? lt_err_wrap(rc, "%s", path) : LT_OK;
}
