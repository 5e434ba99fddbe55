/* lt_safetensors.c — safetensors writer and validating reader (see the
 * header for the format). The header is produced by hand (names are
 * escaped as JSON strings) so the bytes are fixed for given input: the
 * byte-level test pins them. The reader parses with cJSON. */
#include "lt_safetensors.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_io.h"

struct lt_st_file {
    uint8_t *buf;         /* the whole file */
    size_t len;
    lt_st_tensor *t;
    int n;
    char **meta;          /* key, value, key, value, ... */
    int n_meta;
};

size_t lt_st_dtype_size(lt_st_dtype d) { return d == LT_ST_I64 ? 8 : 4; }
const char *lt_st_dtype_name(lt_st_dtype d) { return d == LT_ST_I64 ? "I64" : "F32"; }

size_t lt_st_numel(const lt_st_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

/* ---- writing ------------------------------------------------------------------- */
typedef struct { char *s; size_t n, cap; int oom; } sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 1024);
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) { b->oom = 1; return; }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
/* A JSON string literal: quotes, backslashes and control bytes escaped. */
static void sb_json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') { e[0] = '\\'; e[1] = (char)c; sb_put(b, e, 2); }
        else if (c < 0x20) { snprintf(e, sizeof e, "\\u%04x", c); sb_put(b, e, 6); }
        else sb_put(b, (const char *)&c, 1);
    }
    sb_put(b, "\"", 1);
}

static int check_tensor(const lt_st_tensor *t) {
    if (!t->name[0]) return lt_err(LT_EINVAL, "safetensors: a tensor without a name");
    if (!strcmp(t->name, "__metadata__")) return lt_err(LT_EINVAL, "safetensors: '__metadata__' is reserved");
    if (t->dtype != LT_ST_F32 && t->dtype != LT_ST_I64)
        return lt_err(LT_EINVAL, "safetensors: tensor '%s': dtype %d not supported", t->name, (int)t->dtype);
    if (t->ndim < 0 || t->ndim > LT_ST_MAX_DIMS)
        return lt_err(LT_EINVAL, "safetensors: tensor '%s': %d dimensions", t->name, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0) return lt_err(LT_EINVAL, "safetensors: tensor '%s': negative dimension", t->name);
    if (lt_st_numel(t) * lt_st_dtype_size(t->dtype) != t->bytes)
        return lt_err(LT_EINVAL, "safetensors: tensor '%s': shape holds %zu bytes, data %zu", t->name,
                      lt_st_numel(t) * lt_st_dtype_size(t->dtype), t->bytes);
    return LT_OK;
}

int lt_st_encode(const lt_st_tensor *t, int n, const lt_st_meta *meta, int n_meta, uint8_t **out,
                 size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    for (int i = 0; i < n; i++) {
        LT_TRY(check_tensor(&t[i]));
        for (int j = 0; j < i; j++)
            if (!strcmp(t[i].name, t[j].name))
                return lt_err(LT_EINVAL, "safetensors: tensor '%s' given twice", t[i].name);
    }
    sbuf h = {0};
    char num[64];
    size_t off = 0;
    sb_str(&h, "{");
    if (n_meta > 0) {
        sb_str(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_str(&h, ",");
            sb_json_str(&h, meta[i].key);
            sb_str(&h, ":");
            sb_json_str(&h, meta[i].value);
        }
        sb_str(&h, "}");
    }
    for (int i = 0; i < n; i++) {
        if (i || n_meta > 0) sb_str(&h, ",");
        sb_json_str(&h, t[i].name);
        sb_str(&h, ":{\"dtype\":\"");
        sb_str(&h, lt_st_dtype_name(t[i].dtype));
        sb_str(&h, "\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            snprintf(num, sizeof num, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
            sb_str(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].bytes);
        sb_str(&h, num);
        off += t[i].bytes;
    }
    sb_str(&h, "}");
    /* Spaces up to a multiple of 8, so the buffer (and every F32 / I64
     * tensor in it) starts 8-aligned when the file is mapped. */
    while (!h.oom && h.n % 8) sb_str(&h, " ");
    if (h.oom) { free(h.s); return lt_err(LT_ENOMEM, "safetensors: header"); }
    size_t len = 8 + h.n + off;
    uint8_t *b = malloc(len ? len : 1);
    if (!b) { free(h.s); return lt_err(LT_ENOMEM, "safetensors: %zu bytes", len); }
    lt_le_put64(b, (uint64_t)h.n);
    memcpy(b + 8, h.s, h.n);
    free(h.s);
    uint8_t *p = b + 8 + (len - 8 - off);
    for (int i = 0; i < n; i++) {
        size_t k = lt_st_numel(&t[i]);
        if (t[i].dtype == LT_ST_F32) {
            const float *f = t[i].data;
            for (size_t j = 0; j < k; j++, p += 4) {
                uint32_t u;
                memcpy(&u, &f[j], 4);
                lt_le_put32(p, u);
            }
        } else {
            const int64_t *v = t[i].data;
            for (size_t j = 0; j < k; j++, p += 8) lt_le_put64(p, (uint64_t)v[j]);
        }
    }
    *out = b;
    *out_len = len;
    return LT_OK;
}

int lt_st_write(const char *path, const lt_st_tensor *t, int n, const lt_st_meta *meta, int n_meta) {
    uint8_t *b;
    size_t len;
    LT_TRY(lt_st_encode(t, n, meta, n_meta, &b, &len));
    lt_io_writer w;
    int rc = lt_io_writer_open(&w, path, NULL);
    if (!rc) {
        rc = lt_io_writer_write(&w, b, len);
        if (rc) lt_io_writer_abort(&w);
        else rc = lt_io_writer_commit(&w, NULL);
    }
    free(b);
    return rc;
}

/* ---- reading ------------------------------------------------------------------- */
void lt_st_free(lt_st_file *f) {
    if (!f) return;
    for (int i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
    free(f->meta);
    free(f->t);
    free(f->buf);
    free(f);
}

static int by_offset(const void *a, const void *b) {
    const lt_st_tensor *x = a, *y = b;
    const uint8_t *p = x->data, *q = y->data;
    return p < q ? -1 : p > q;
}

/* A non-negative integer JSON number that a double represents exactly. */
static int json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int parse_tensor(const char *what, const cJSON *e, lt_st_tensor *t, size_t buf_len) {
    const char *nm = e->string;
    if (strlen(nm) >= LT_ST_NAME_MAX)
        return lt_err(LT_EDATA, "%s: tensor name longer than %d bytes", what, LT_ST_NAME_MAX - 1);
    snprintf(t->name, sizeof t->name, "%s", nm);
    if (!cJSON_IsObject(e)) return lt_err(LT_EDATA, "%s: tensor '%s': entry is not an object", what, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return lt_err(LT_EDATA, "%s: tensor '%s': no dtype", what, nm);
    if (!strcmp(dt->valuestring, "F32")) t->dtype = LT_ST_F32;
    else if (!strcmp(dt->valuestring, "I64")) t->dtype = LT_ST_I64;
    else return lt_err(LT_EDATA, "%s: tensor '%s': dtype '%.16s' not supported (F32, I64)", what, nm, dt->valuestring);
    if (!cJSON_IsArray(sh)) return lt_err(LT_EDATA, "%s: tensor '%s': no shape", what, nm);
    int nd = cJSON_GetArraySize(sh);
    if (nd > LT_ST_MAX_DIMS) return lt_err(LT_EDATA, "%s: tensor '%s': %d dimensions (at most %d)", what, nm, nd, LT_ST_MAX_DIMS);
    t->ndim = nd;
    /* Element count with overflow checks: it must fit the buffer anyway. */
    uint64_t numel = 1;
    for (int i = 0; i < nd; i++) {
        uint64_t d;
        if (!json_u64(cJSON_GetArrayItem(sh, i), &d))
            return lt_err(LT_EDATA, "%s: tensor '%s': shape[%d] is not a non-negative integer", what, nm, i);
        if (d && numel > (uint64_t)buf_len / d) numel = (uint64_t)buf_len + 1;   /* too large, saturate */
        else numel *= d;
        t->shape[i] = (int64_t)d;
    }
    uint64_t b0, b1;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !json_u64(cJSON_GetArrayItem(of, 0), &b0) ||
        !json_u64(cJSON_GetArrayItem(of, 1), &b1))
        return lt_err(LT_EDATA, "%s: tensor '%s': data_offsets is not [begin, end]", what, nm);
    if (b0 > b1 || b1 > buf_len)
        return lt_err(LT_EDATA, "%s: tensor '%s': data_offsets [%llu, %llu] outside the %zu-byte buffer", what,
                      nm, (unsigned long long)b0, (unsigned long long)b1, buf_len);
    if (numel > (uint64_t)buf_len || numel * lt_st_dtype_size(t->dtype) != b1 - b0)
        return lt_err(LT_EDATA, "%s: tensor '%s': shape and dtype need %s bytes, data_offsets give %llu", what,
                      nm, numel > (uint64_t)buf_len ? "more" : "a different number of",
                      (unsigned long long)(b1 - b0));
    t->bytes = (size_t)(b1 - b0);
    t->data = (const void *)(uintptr_t)b0;   /* offset for now; made a pointer by the caller */
    return LT_OK;
}

int lt_st_parse(lt_st_file **out, const void *data, size_t len, const char *what) {
    *out = NULL;
    if (!what) what = "safetensors";
    if (len < 8) return lt_err(LT_EDATA, "%s: %zu bytes, shorter than the 8-byte header length", what, len);
    uint64_t hl = lt_le_get64(data);
    if (hl > LT_ST_MAX_HEADER) return lt_err(LT_EDATA, "%s: header length %llu exceeds %u bytes", what, (unsigned long long)hl, LT_ST_MAX_HEADER);
    if (hl > len - 8)
        return lt_err(LT_EDATA, "%s: header length %llu beyond the end of the file (%zu bytes)", what,
                      (unsigned long long)hl, len);
    if (hl < 2) return lt_err(LT_EDATA, "%s: header of %llu bytes is not a JSON object", what, (unsigned long long)hl);
    lt_st_file *f = calloc(1, sizeof *f);
    if (!f) return lt_err(LT_ENOMEM, "%s", what);
    f->buf = malloc(len + 1);
    if (!f->buf) { free(f); return lt_err(LT_ENOMEM, "%s: %zu bytes", what, len); }
    memcpy(f->buf, data, len);
    f->len = len;
    const char *hdr = (const char *)f->buf + 8;
    if (memchr(hdr, 0, (size_t)hl)) { lt_st_free(f); return lt_err(LT_EDATA, "%s: NUL byte in the JSON header", what); }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(hdr, (size_t)hl, &end, 0);
    int rc = LT_OK;
    if (!doc) rc = lt_err(LT_EDATA, "%s: header is not valid JSON (at byte %zu of it)", what, end ? (size_t)(end - hdr) : 0);
    else if (!cJSON_IsObject(doc)) rc = lt_err(LT_EDATA, "%s: header is not a JSON object", what);
    /* The reference implementation allows trailing spaces only. */
    for (const char *p = end; !rc && p && p < hdr + hl; p++)
        if (*p != ' ') rc = lt_err(LT_EDATA, "%s: bytes after the header's JSON object", what);
    const size_t buf_len = len - 8 - (size_t)hl;
    const uint8_t *base = f->buf + 8 + hl;
    int n = 0;
    for (const cJSON *e = doc ? doc->child : NULL; !rc && e; e = e->next) {
        for (const cJSON *d = doc->child; d != e; d = d->next)
            if (!strcmp(d->string, e->string)) { rc = lt_err(LT_EDATA, "%s: key '%.64s' appears twice", what, e->string); break; }
        if (strcmp(e->string, "__metadata__")) n++;
    }
    if (!rc && n > 0 && !(f->t = calloc((size_t)n, sizeof *f->t))) rc = lt_err(LT_ENOMEM, "%s", what);
    for (const cJSON *e = doc ? doc->child : NULL; !rc && e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (!cJSON_IsObject(e)) { rc = lt_err(LT_EDATA, "%s: __metadata__ is not an object", what); break; }
            int k = cJSON_GetArraySize(e);
            if (k > 0 && !(f->meta = calloc(2 * (size_t)k, sizeof *f->meta))) { rc = lt_err(LT_ENOMEM, "%s", what); break; }
            for (const cJSON *m = e->child; !rc && m; m = m->next) {
                if (!cJSON_IsString(m)) { rc = lt_err(LT_EDATA, "%s: __metadata__ value of '%.64s' is not a string", what, m->string); break; }
                f->meta[2 * f->n_meta] = strdup(m->string);
                f->meta[2 * f->n_meta + 1] = strdup(m->valuestring);
                f->n_meta++;
                if (!f->meta[2 * f->n_meta - 2] || !f->meta[2 * f->n_meta - 1]) rc = lt_err(LT_ENOMEM, "%s", what);
            }
            continue;
        }
        lt_st_tensor *t = &f->t[f->n];
        rc = parse_tensor(what, e, t, buf_len);
        if (!rc) { t->data = base + (uintptr_t)t->data; f->n++; }
    }
    cJSON_Delete(doc);
    if (!rc) {
        /* The tensors must tile the buffer: sorted by offset, each begins
         * where the previous ended and the last ends at the file's end. */
        qsort(f->t, (size_t)f->n, sizeof *f->t, by_offset);
        const uint8_t *at = base;
        for (int i = 0; !rc && i < f->n; i++) {
            if ((const uint8_t *)f->t[i].data != at)
                rc = lt_err(LT_EDATA, "%s: tensor '%s' %s the previous one (data_offsets must tile the buffer)",
                            what, f->t[i].name, (const uint8_t *)f->t[i].data < at ? "overlaps" : "leaves a gap after");
            at += f->t[i].bytes;
        }
        if (!rc && at != base + buf_len)
            rc = lt_err(LT_EDATA, "%s: %zu bytes after the last tensor", what, (size_t)(base + buf_len - at));
    }
    if (rc) { lt_st_free(f); return rc; }
    *out = f;
    return LT_OK;
}

int lt_st_read(lt_st_file **f, const char *path) {
    char *b;
    size_t len;
    *f = NULL;
    LT_TRY(lt_io_read_all(path, &b, &len));
    int rc = lt_st_parse(f, b, len, path);
    free(b);
    return rc;
}

int lt_st_count(const lt_st_file *f) { return f->n; }
const lt_st_tensor *lt_st_at(const lt_st_file *f, int i) { return i >= 0 && i < f->n ? &f->t[i] : NULL; }
const lt_st_tensor *lt_st_find(const lt_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}
const char *lt_st_meta_get(const lt_st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[2 * i], key)) return f->meta[2 * i + 1];
    return NULL;
}

static const lt_st_tensor *get_checked(const lt_st_file *f, const char *name, lt_st_dtype d, size_t count) {
    const lt_st_tensor *t = lt_st_find(f, name);
    if (!t) { lt_err(LT_EDATA, "safetensors: no tensor '%s'", name); return NULL; }
    if (t->dtype != d) { lt_err(LT_EDATA, "safetensors: tensor '%s' is %s, not %s", name, lt_st_dtype_name(t->dtype), lt_st_dtype_name(d)); return NULL; }
    if (lt_st_numel(t) != count) { lt_err(LT_EDATA, "safetensors: tensor '%s' holds %zu elements, expected %zu", name, lt_st_numel(t), count); return NULL; }
    return t;
}
int lt_st_get_f32(const lt_st_file *f, const char *name, float *dst, size_t count) {
    const lt_st_tensor *t = get_checked(f, name, LT_ST_F32, count);
    if (!t) return LT_EDATA;
    const uint8_t *p = t->data;
    for (size_t i = 0; i < count; i++) {
        uint32_t u = lt_le_get32(p + 4 * i);
        memcpy(&dst[i], &u, 4);
    }
    return LT_OK;
}
int lt_st_get_i64(const lt_st_file *f, const char *name, int64_t *dst, size_t count) {
    const lt_st_tensor *t = get_checked(f, name, LT_ST_I64, count);
    if (!t) return LT_EDATA;
    const uint8_t *p = t->data;
    for (size_t i = 0; i < count; i++) dst[i] = (int64_t)lt_le_get64(p + 8 * i);
    return LT_OK;
}
