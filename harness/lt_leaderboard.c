/* lt_leaderboard.c — result.json reader, run scan, leaderboard aggregation
 * and the CSV / Markdown / LaTeX writers (see lt_leaderboard.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lt.h"
#include "lt_fingerprint.h"
#include "lt_io.h"
#include "lt_leaderboard.h"
#include "lt_names.h"
#include "lt_run_device.h"

/* ---- small helpers ------------------------------------------------------------- */

void lt_rep_buf_printf(lt_rep_buf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        size_t room = b->cap - b->n;
        va_list ap;
        va_start(ap, fmt);
        int k = room ? vsnprintf(b->s + b->n, room, fmt, ap) : -2;
        va_end(ap);
        if (k == -1) {
            b->oom = 1;
            return;
        }
        if (k >= 0 && (size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        size_t need = b->n + (k >= 0 ? (size_t)k : 0) + 1;
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < need) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

int lt_rep_buf_ok(const lt_rep_buf *b, const char *what)
{
    return b->oom ? lt_err(LT_ENOMEM, "%s: out of memory", what) : LT_OK;
}

void lt_rep_buf_free(lt_rep_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

int lt_rep_mkdirs(const char *dir)
{
    char p[LT_LB_PATH];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return lt_err(LT_EINVAL, "path too long: %s", dir);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return lt_err(LT_EIO, "mkdir %s: %s", p, strerror(errno));
        *s = c;
        if (!c) break;
    }
    return LT_OK;
}

int lt_rep_write(const char *path, const lt_rep_buf *b)
{
    LT_TRY(lt_rep_buf_ok(b, path));
    char dir[LT_LB_PATH];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        LT_TRY(lt_rep_mkdirs(dir));
    }
    return lt_file_write_atomic(path, b->s ? b->s : "", b->n);
}

int lt_rep_csv_split(char *line, char **fields, int max)
{
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    int n = 0;
    char *r = line, *w = line;
    for (;;) {
        char *start = w;
        if (*r == '"') {
            r++;
            for (;;) {
                if (*r == '\0') return -1;
                if (*r == '"' && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *w++ = *r++;
                }
            }
            /* text after the closing quote up to the comma is kept as is */
            while (*r && *r != ',') *w++ = *r++;
        } else {
            while (*r && *r != ',') *w++ = *r++;
        }
        int more = *r == ',';
        if (more) r++;
        *w++ = '\0';
        if (n < max) fields[n] = start;
        n++;
        if (!more) break;
    }
    return n;
}

void lt_rep_pct(double v, char *buf, size_t cap)
{
    if (isnan(v)) {
        snprintf(buf, cap, "%s", "");
        return;
    }
    snprintf(buf, cap, "%.2f", v);
    if (!strcmp(buf, "-0.00")) snprintf(buf, cap, "%s", "0.00");
}

/* ---- metrics -------------------------------------------------------------------- */

static const char *const METRIC_NAMES[LT_M_COUNT] = {"top1", "many", "medium", "few", "ece", "macro_f1", "map",
                                                      "ap_r", "ap_c", "ap_f", "ece_ts"};

const char *lt_metric_name(int m) { return m >= 0 && m < LT_M_COUNT ? METRIC_NAMES[m] : "?"; }

int lt_metric_parse(const char *s, int *m)
{
    for (int i = 0; i < LT_M_COUNT; i++)
        if (!strcmp(s, METRIC_NAMES[i])) {
            *m = i;
            return LT_OK;
        }
    return lt_err(LT_EINVAL, "unknown metric '%s' (top1 many medium few ece macro_f1 map ap_r ap_c ap_f ece_ts)", s);
}

/* ---- result.json ---------------------------------------------------------------- */

static void copy_str(char *dst, size_t cap, const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsString(v) && v->valuestring) snprintf(dst, cap, "%s", v->valuestring);
}

/* A name of the run's identity (protocol, scale, method): absent is "" (the
 * path gives it), present must be a string that follows the rule of
 * lt_names.h, because it becomes a path and a file name of the leaderboard
 * and the figures. Checked before copying, so a long name is not cut into a
 * valid one. */
static int get_name(const char *path, const cJSON *obj, const char *key, const char *what, char *dst,
                    size_t cap)
{
    dst[0] = '\0';
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return LT_OK;
    if (!cJSON_IsString(v) || !v->valuestring) return lt_err(LT_EDATA, "%s: key '%s' is not a string", path, what);
    int ok = !strcmp(what, "scale") ? lt_scale_valid(v->valuestring) : lt_name_valid(v->valuestring, cap);
    if (!ok) {
        char q[2 * LT_LB_NAME];
        lt_name_quote(v->valuestring, q, sizeof q);
        if (!strcmp(what, "scale"))
            return lt_err(LT_EDATA, "%s: key 'scale' is '%s', not ci, short or full", path, q);
        return lt_err(LT_EDATA, "%s: key '%s' is '%s', not a name ([a-z0-9_], 1..%zu characters)", path, what, q,
                      cap - 1);
    }
    snprintf(dst, cap, "%s", v->valuestring);
    return LT_OK;
}

/* A metric: absent or null is "not computed" (NAN); anything else must be a
 * fraction in [0,1], since a value out of range (a percent written as 71.2,
 * a negative, a string) would be averaged into the leaderboard as if it
 * were one. JSON has no NaN; a huge exponent parses as infinity and is
 * refused by the range check. */
static int get_metric(const char *path, const cJSON *metrics, const char *key, double *out)
{
    *out = NAN;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(metrics, key);
    if (!v || cJSON_IsNull(v)) return LT_OK;
    if (!cJSON_IsNumber(v)) return lt_err(LT_EDATA, "%s: key 'metrics.%s' is not a number or null", path, key);
    if (!(v->valuedouble >= 0.0 && v->valuedouble <= 1.0))
        return lt_err(LT_EDATA, "%s: key 'metrics.%s' is %g, not a fraction in [0, 1]", path, key, v->valuedouble);
    *out = v->valuedouble;
    return LT_OK;
}

static double get_num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The device a run directory's method component names, as its tag
 * (lt_run_device_tag): "ce" -> "cpu", "ce@cuda" -> "cuda", "ce@cuda-tf32"
 * -> "cuda-tf32", "ce@cuda-nhwc" -> "cuda-nhwc" (lt_run_dir_on), with the
 * method name cut off in m. NULL for a suffix that is no tag. */
static const char *split_device(char *m)
{
    char *at = strchr(m, '@');
    if (!at) return "cpu";
    *at = '\0';
    lt_backend_kind kind;
    lt_cuda_math math;
    lt_layout layout;
    return lt_run_device_tag_parse(at + 1, &kind, &math, &layout) == LT_OK ? lt_run_device_tag(kind, math, layout)
                                                                           : NULL;
}

/* Identity from …/<protocol>/<scale>/<method>[@<tag>]/seed<k>/result.json,
 * held to the same rules as the names inside the file. */
static int identity_from_path(const char *path, lt_run_record *r)
{
    char p[LT_LB_PATH];
    snprintf(p, sizeof p, "%s", path);
    char *part[5] = {0};   /* protocol, scale, method, seed<k>, result.json */
    for (int i = 4; i >= 1; i--) {
        char *slash = strrchr(p, '/');
        if (!slash) return lt_err(LT_EDATA, "%s: not under <protocol>/<scale>/<method>/seed<k>/", path);
        part[i] = slash + 1;
        *slash = '\0';
    }
    char *slash = strrchr(p, '/');
    part[0] = slash ? slash + 1 : p;
    const char *tag = split_device(part[2]);
    if (!tag || !lt_name_valid(part[0], sizeof r->protocol) || !lt_scale_valid(part[1]) ||
        !lt_name_valid(part[2], sizeof r->method) || strncmp(part[3], "seed", 4) || !part[3][4] ||
        strlen(part[3] + 4) > 9 || strspn(part[3] + 4, "0123456789") != strlen(part[3] + 4))
        return lt_err(LT_EDATA, "%s: not under <protocol>/<scale>/<method>/seed<k>/ with valid names", path);
    snprintf(r->protocol, sizeof r->protocol, "%s", part[0]);
    snprintf(r->scale, sizeof r->scale, "%s", part[1]);
    snprintf(r->method, sizeof r->method, "%s", part[2]);
    snprintf(r->device_tag, sizeof r->device_tag, "%s", tag);
    r->seed = atoi(part[3] + 4);
    return LT_OK;
}

/* The device tag the directory of a result file names, when it is laid out
 * as …/<method>[@<tag>]/seed<k>/result.json: "cpu", "cuda", "cuda-tf32",
 * "cuda-nhwc", "cuda-tf32-nhwc", "?" for a suffix that is no tag, or ""
 * when the path does not have that shape (a file read from elsewhere). */
static void path_device(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    char p[LT_LB_PATH];
    snprintf(p, sizeof p, "%s", path);
    char *s1 = strrchr(p, '/');           /* /result.json */
    if (!s1) return;
    *s1 = '\0';
    char *s2 = strrchr(p, '/');           /* /seed<k> */
    if (!s2 || strncmp(s2 + 1, "seed", 4)) return;
    *s2 = '\0';
    char *s3 = strrchr(p, '/');
    char *m = s3 ? s3 + 1 : p;            /* <method>[@<tag>] */
    const char *b = split_device(m);
    snprintf(out, cap, "%s", b ? b : "?");
}

/* Holds a name the file gives to the one its path gives (both already
 * valid names): a result file copied into another run's directory is
 * refused rather than counted in the wrong row or as another seed. */
static int same_as_path(const char *path, const char *key, const char *in_file, const char *in_path)
{
    if (!strcmp(in_file, in_path)) return LT_OK;
    return lt_err(LT_EDATA, "%s: key '%s' is '%s', but the path says '%s' (a result file copied from another run?)",
                  path, key, in_file, in_path);
}

/* lt_run_record_read; strict: the path must be laid out as
 * …/<protocol>/<scale>/<method>[@<tag>]/seed<k>/result.json (the scan's
 * files), else only a path so laid out is held to the file's identity. */
static int record_read(const char *path, lt_run_record *r, int strict)
{
    memset(r, 0, sizeof *r);
    for (int m = 0; m < LT_M_COUNT; m++) r->metric[m] = NAN;
    snprintf(r->path, sizeof r->path, "%s", path);
    snprintf(r->dir, sizeof r->dir, "%s", path);
    char *slash = strrchr(r->dir, '/');
    if (slash) *slash = '\0';
    else snprintf(r->dir, sizeof r->dir, ".");
    r->seed = -1;

    /* An unreadable or torn file is not a failed run: the runner writes
     * result.json atomically, so a damaged one was damaged afterwards (or
     * never came from the runner) and says nothing about the run. */
    cJSON *doc = NULL;
    int rc = lt_json_read(path, &doc);
    if (rc != LT_OK) return rc;   /* the message names the file and what is wrong */
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        return lt_err(LT_EDATA, "%s: not a JSON object", path);
    }
    const cJSON *proto = cJSON_GetObjectItemCaseSensitive(doc, "protocol");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(doc, "method");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(doc, "seed");
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(doc, "metrics");
    rc = get_name(path, proto, "name", "protocol.name", r->protocol, sizeof r->protocol);
    if (!rc) rc = get_name(path, doc, "scale", "scale", r->scale, sizeof r->scale);
    if (!rc) rc = get_name(path, method, "name", "method.name", r->method, sizeof r->method);
    if (!rc && metrics && !cJSON_IsObject(metrics) && !cJSON_IsNull(metrics))
        rc = lt_err(LT_EDATA, "%s: key 'metrics' is not an object", path);
    for (int m = 0; !rc && m < LT_M_COUNT; m++) rc = get_metric(path, metrics, METRIC_NAMES[m], &r->metric[m]);
    if (rc) {
        cJSON_Delete(doc);
        return rc;
    }
    copy_str(r->protocol_sha256, sizeof r->protocol_sha256, proto, "sha256");
    /* A version that is not a number reads as 0 (unknown); a number must be
     * an integer an int holds: converting 4e11 to int is undefined behaviour
     * (found by tests/fuzz), and the leaderboard shows the largest version
     * of a row's files, so one bogus file would relabel the row. */
    double pv = get_num(proto, "version");
    if (!isnan(pv) && !(pv >= 0.0 && pv <= (double)INT_MAX && pv == floor(pv))) {
        cJSON_Delete(doc);
        return lt_err(LT_EDATA, "%s: key 'protocol.version' is %g, not an integer in [0, %d]", path, pv, INT_MAX);
    }
    r->protocol_version = isnan(pv) ? 0 : (int)pv;
    copy_str(r->method_version, sizeof r->method_version, method, "version");
    copy_str(r->fidelity, sizeof r->fidelity, method, "fidelity");
    /* The seed is part of the row's identity and counted as one of its
     * seeds: an integer an int holds, or absent (the path gives it). 1.5
     * used to read as 1 and 1e20 as INT_MAX. */
    if (seed) {
        const double sv = cJSON_IsNumber(seed) ? seed->valuedouble : NAN;
        if (!(sv >= 0.0 && sv <= (double)INT_MAX && sv == floor(sv))) {
            cJSON_Delete(doc);
            if (!cJSON_IsNumber(seed)) return lt_err(LT_EDATA, "%s: key 'seed' is not a number", path);
            return lt_err(LT_EDATA, "%s: key 'seed' is %g, not an integer in [0, %d]", path, sv, INT_MAX);
        }
        r->seed = (int)sv;
    }
    /* The path's identity, where the path has one: names the file does not
     * give come from it, and names the file gives must agree with it. */
    lt_run_record from_path;
    memset(&from_path, 0, sizeof from_path);
    rc = identity_from_path(path, &from_path);
    if (rc && (strict || !r->protocol[0] || !r->scale[0] || !r->method[0] || r->seed < 0)) {
        cJSON_Delete(doc);
        return rc;
    }
    /* names the file gives are held to the path's below, after the device
     * (whose directory suffix is checked with its own message) */
    const int path_identity = rc == LT_OK;
    lt_run_record in_file;
    memcpy(in_file.protocol, r->protocol, sizeof in_file.protocol);
    memcpy(in_file.scale, r->scale, sizeof in_file.scale);
    memcpy(in_file.method, r->method, sizeof in_file.method);
    in_file.seed = r->seed;
    if (path_identity) {
        if (!r->protocol[0]) snprintf(r->protocol, sizeof r->protocol, "%s", from_path.protocol);
        if (!r->scale[0]) snprintf(r->scale, sizeof r->scale, "%s", from_path.scale);
        if (!r->method[0]) snprintf(r->method, sizeof r->method, "%s", from_path.method);
        if (r->seed < 0) r->seed = from_path.seed;
    }
    lt_err_clear();   /* a path without a run's layout is no error here */
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(doc, "status");
    r->ok = cJSON_IsString(status) && !strcmp(status->valuestring, "ok");
    /* A finished run always has its top-1: "ok" without one would count
     * as a seed of the row and be left out of its mean. */
    if (r->ok && isnan(r->metric[LT_M_TOP1])) {
        cJSON_Delete(doc);
        return lt_err(LT_EDATA, "%s: status \"ok\" but key 'metrics.top1' is %s", path,
                      !metrics || cJSON_IsNull(metrics) ? "missing (no 'metrics')" : "missing or null");
    }
    copy_str(r->reason, sizeof r->reason, doc, "reason");
    if (!r->ok && !r->reason[0])
        snprintf(r->reason, sizeof r->reason, "status %s", cJSON_IsString(status) ? status->valuestring : "missing");
    copy_str(r->manifest_sha256, sizeof r->manifest_sha256, cJSON_GetObjectItemCaseSensitive(doc, "dataset"),
             "manifest_sha256");
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(doc, "env");
    copy_str(r->commit, sizeof r->commit, env, "commit");
    const cJSON *dirty = cJSON_GetObjectItemCaseSensitive(env, "dirty");
    r->dirty = cJSON_IsBool(dirty) ? cJSON_IsTrue(dirty) : -1;
    /* which uncommitted changes: kept only when it is a sha256 (another
     * writer's file may hold anything there) */
    const cJSON *dd = cJSON_GetObjectItemCaseSensitive(env, "dirty_diff_sha256");
    r->dirty_diff_sha256[0] = '\0';
    if (cJSON_IsString(dd) && dd->valuestring && strlen(dd->valuestring) == 64 &&
        strspn(dd->valuestring, "0123456789abcdef") == 64)
        memcpy(r->dirty_diff_sha256, dd->valuestring, 65);
    copy_str(r->engine_version, sizeof r->engine_version, env, "engine_version");
    copy_str(r->conv_backend, sizeof r->conv_backend, env, "conv_backend");
    copy_str(r->blas_core, sizeof r->blas_core, env, "blas_core");
    double th = get_num(env, "threads");
    r->threads = th >= 1 && th <= 1e6 ? (int)th : 0;   /* a bogus number is "unknown", never UB */
    /* the backend and, for cuda, the math mode and the layout are a part
     * of the row's identity (lt_run_device_tag): only the known words, and
     * the directory must agree (a cpu result copied into a …@cuda
     * directory, a tf32 or NHWC one into …@cuda, or the reverse, would land
     * in the wrong row) */
    const cJSON *be = cJSON_GetObjectItemCaseSensitive(env, "backend");
    if (be && (!cJSON_IsString(be) || !be->valuestring ||
               (strcmp(be->valuestring, "cpu") && strcmp(be->valuestring, "cuda")))) {
        cJSON_Delete(doc);
        return lt_err(LT_EDATA, "%s: key 'env.backend' is not \"cpu\" or \"cuda\"", path);
    }
    /* absent: a result from before the backend was recorded, a cpu run */
    snprintf(r->backend, sizeof r->backend, "%s", be ? be->valuestring : "cpu");
    copy_str(r->cuda_math, sizeof r->cuda_math, env, "cuda_math");
    lt_backend_kind kind = LT_BACKEND_CPU;
    lt_cuda_math math = LT_CUDA_FP32;
    lt_layout layout = LT_LAYOUT_NCHW;
    int dev_index;
    rc = lt_backend_parse_device(r->backend, &kind, &dev_index);   /* "cpu" or "cuda": checked above */
    /* a cuda run always records its math mode; without it the row is unknown */
    if (!rc && kind == LT_BACKEND_CUDA && lt_cuda_math_parse(r->cuda_math, &math) != LT_OK)
        rc = lt_err(LT_EDATA, "%s: key 'env.cuda_math' of a cuda run is not \"fp32\" or \"tf32\"", path);
    /* the layout came later: absent, the run was NCHW; present, a known word */
    const cJSON *lay = cJSON_GetObjectItemCaseSensitive(env, "cuda_layout");
    const int lay_str = cJSON_IsString(lay) && lay->valuestring;
    if (!rc && kind == LT_BACKEND_CUDA && lay && (!lay_str || lt_layout_parse(lay->valuestring, &layout) != LT_OK))
        rc = lt_err(LT_EDATA, "%s: key 'env.cuda_layout' of a cuda run is not \"nchw\" or \"nhwc\": %s%.40s%s", path,
                    lay_str ? "\"" : "not a string", lay_str ? lay->valuestring : "", lay_str ? "\"" : "");
    if (rc) {
        cJSON_Delete(doc);
        return rc;
    }
    /* cuda: the word, "nchw" when absent; cpu: "" whatever the file says */
    snprintf(r->cuda_layout, sizeof r->cuda_layout, "%s", kind == LT_BACKEND_CUDA ? lt_layout_name(layout) : "");
    snprintf(r->device_tag, sizeof r->device_tag, "%s", lt_run_device_tag(kind, math, layout));
    r->backend_kind = kind;
    char pd[16];
    path_device(path, pd, sizeof pd);
    if (pd[0] && strcmp(pd, r->device_tag)) {
        cJSON_Delete(doc);
        return lt_err(LT_EDATA, "%s: a %s run (%s) in a directory of %s runs", path, r->device_tag,
                      kind == LT_BACKEND_CUDA ? "env.backend, env.cuda_math, env.cuda_layout" : "env.backend",
                      !strcmp(pd, "?") ? "unknown" : pd);
    }
    if (path_identity) {
        if (in_file.protocol[0]) rc = same_as_path(path, "protocol.name", in_file.protocol, from_path.protocol);
        if (!rc && in_file.scale[0]) rc = same_as_path(path, "scale", in_file.scale, from_path.scale);
        if (!rc && in_file.method[0]) rc = same_as_path(path, "method.name", in_file.method, from_path.method);
        if (!rc && in_file.seed >= 0 && in_file.seed != from_path.seed)
            rc = lt_err(LT_EDATA, "%s: key 'seed' is %d, but the path says seed%d (a result file copied from "
                        "another run?)", path, in_file.seed, from_path.seed);
        if (rc) {
            cJSON_Delete(doc);
            return rc;
        }
    }
    copy_str(r->gpu_name, sizeof r->gpu_name, env, "gpu_name");
    if (kind == LT_BACKEND_CUDA && !strcmp(r->gpu_name, LT_CUEMU_DEVICE_NAME)) {
        cJSON_Delete(doc);
        return lt_err(LT_EDATA, "%s: a run on the CPU emulator of the CUDA backend (env.gpu_name \"%s\"): it checks "
                      "the code path, its numbers are not a GPU's", path, LT_CUEMU_DEVICE_NAME);
    }
    copy_str(r->gpu_cc, sizeof r->gpu_cc, env, "gpu_cc");
    const double ver[3] = {get_num(env, "cuda_runtime"), get_num(env, "cudnn"), get_num(env, "cublas")};
    int *const dst[3] = {&r->cuda_runtime, &r->cudnn, &r->cublas};
    for (int k = 0; k < 3; k++) *dst[k] = ver[k] >= 0 && ver[k] <= 1e9 ? (int)ver[k] : 0;
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(env, "cuda_deterministic");
    r->cuda_deterministic = cJSON_IsTrue(det);
    cJSON_Delete(doc);
    return LT_OK;
}

int lt_run_record_read(const char *path, lt_run_record *r) { return record_read(path, r, 0); }

/* ---- the scan ------------------------------------------------------------------- */

static int set_push(lt_run_set *s, const lt_run_record *r)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        lt_run_record *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) return lt_err(LT_ENOMEM, "run scan: out of memory");
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *r;
    return LT_OK;
}

/* A result file the scan cannot use: one line on warn, and counted, so the
 * command that scanned can say so in its exit status; the first one's
 * reason is kept for the error of a caller that stops on it. */
static void refuse(lt_run_set *out, FILE *warn, const char *why)
{
    if (!out->n_refused++) snprintf(out->first_refused, sizeof out->first_refused, "%s", why);
    if (warn) fprintf(warn, "refused result file: %s\n", why);
}

/* dir is at depth `depth` below runs/ (runs/ itself 0): a run's result.json
 * is at runs/<protocol>/<scale>/<method>[@<tag>]/seed<k>/, depth 4. */
static int walk(const char *dir, int depth, FILE *warn, lt_run_set *out)
{
    DIR *d = opendir(dir);
    if (!d) return lt_err(LT_EIO, "%s: cannot read directory: %s", dir, strerror(errno));
    int rc = LT_OK;
    struct dirent *e;
    while (rc == LT_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[LT_LB_PATH];
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) {
            if (!strcmp(e->d_name, "result.json")) refuse(out, warn, "a result.json whose path is too long");
            continue;
        }
        const int is_result = !strcmp(e->d_name, "result.json");
        struct stat st;
        int link = 0;
        if (lstat(p, &st) != 0 || ((link = S_ISLNK(st.st_mode)) && stat(p, &st) != 0)) {
            if (is_result) {
                char why[LT_LB_PATH + 64];
                snprintf(why, sizeof why, "%s: %s", p, strerror(errno));
                refuse(out, warn, why);
            }
            continue;
        }
        /* A link to a directory is not followed: `ln -s . runs/loop` would
         * count every run again at each level, and a linked copy of a
         * protocol's runs is a second copy of their seeds. */
        if (link && S_ISDIR(st.st_mode)) {
            if (warn) fprintf(warn, "skipped %s: a symbolic link to a directory (the scan does not follow them)\n", p);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth < 8) rc = walk(p, depth + 1, warn, out);
        } else if (is_result) {
            lt_run_record r;
            if (!S_ISREG(st.st_mode)) {
                char why[LT_LB_PATH + 64];
                snprintf(why, sizeof why, "%s: not a regular file", p);
                refuse(out, warn, why);
            } else if (depth != 4) {
                /* elsewhere (a copy of a protocol's runs nested inside
                 * runs/) its seeds would be counted a second time */
                char why[LT_LB_PATH + 128];
                snprintf(why, sizeof why, "%s: not at runs/<protocol>/<scale>/<method>[@<tag>]/seed<k>/result.json",
                         p);
                refuse(out, warn, why);
            } else if (record_read(p, &r, 1) != LT_OK) {
                refuse(out, warn, lt_errmsg());
            } else {
                rc = set_push(out, &r);
            }
        }
    }
    closedir(d);
    return rc;
}

static int run_cmp(const void *a, const void *b)
{
    const lt_run_record *x = a, *y = b;
    int c;
    if ((c = strcmp(x->protocol, y->protocol))) return c;
    if ((c = strcmp(x->scale, y->scale))) return c;
    if ((c = strcmp(x->method, y->method))) return c;
    if ((c = strcmp(x->device_tag, y->device_tag))) return c;   /* cpu, cuda, cuda-nhwc, cuda-tf32, ... */
    /* newest engine first: a row of the current engine leads its older ones */
    if ((c = lt_engine_version_cmp(y->engine_version, x->engine_version))) return c;
    if (x->seed != y->seed) return x->seed < y->seed ? -1 : 1;
    return strcmp(x->path, y->path);
}

int lt_runs_scan(const char *results_dir, FILE *warn, lt_run_set *out)
{
    memset(out, 0, sizeof *out);
    const char *root = results_dir ? results_dir : "results";
    char runs[LT_LB_PATH];
    snprintf(runs, sizeof runs, "%s/runs", root);
    /* A results root that is not there is a wrong --results (a typo), not
     * an empty leaderboard; a root without runs/ has simply run nothing. */
    struct stat st;
    if (stat(root, &st) != 0) return lt_err(LT_EIO, "results directory %s: %s", root, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return lt_err(LT_EIO, "results directory %s: not a directory", root);
    if (stat(runs, &st) != 0 && errno == ENOENT) return LT_OK;   /* nothing run yet */
    int rc = walk(runs, 0, warn, out);
    if (rc) {
        lt_run_set_free(out);
        return rc;
    }
    if (out->n) qsort(out->v, (size_t)out->n, sizeof *out->v, run_cmp);
    return LT_OK;
}

void lt_run_set_free(lt_run_set *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* ---- paper numbers -------------------------------------------------------------- */

/* Reads paper_numbers.csv as the reference files are read (lt_ref_load):
 * every malformed line is an error naming file and line, a line too long
 * for the buffer is one (fgets would hand over its rest as the next line,
 * and the error would name the wrong one), and so is a second row of one
 * (protocol, method), which would otherwise silently replace the first. */
static int paper_from_csv(const char *path, const char *protocol, const char *method, double *top1)
{
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? LT_OK : lt_err(LT_EIO, "%s: cannot open: %s", path, strerror(errno));
    char line[1024];
    int lineno = 0, rc = LT_OK, n_seen = 0, cap_seen = 0;
    struct seen {
        char *key;   /* "<protocol>\n<method>" */
        int line;
    } *seen = NULL;
    while (rc == LT_OK && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = lt_err(LT_EDATA, "%s:%d: line longer than %zu characters", path, lineno, sizeof line - 2);
            break;
        }
        char *fld[8];
        if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0') continue;
        int n = lt_rep_csv_split(line, fld, 8);
        if (n < 0) {
            rc = lt_err(LT_EDATA, "%s:%d: unterminated quote", path, lineno);
            break;
        }
        if (n >= 2 && !strcmp(fld[0], "protocol") && !strcmp(fld[1], "method")) continue;   /* header */
        if (n != 4) {
            rc = lt_err(LT_EDATA, "%s:%d: expected 4 fields protocol,method,top1,source, got %d", path, lineno, n);
            break;
        }
        char *end;
        double v = strtod(fld[2], &end);
        if (end == fld[2] || *end || !(v >= 0 && v <= 100)) {
            rc = lt_err(LT_EDATA, "%s:%d: top1 '%s' is not a percentage in [0,100]", path, lineno, fld[2]);
            break;
        }
        size_t klen = strlen(fld[0]) + strlen(fld[1]) + 2;
        char *key = malloc(klen);
        if (!key) {
            rc = lt_err(LT_ENOMEM, "%s: out of memory", path);
            break;
        }
        snprintf(key, klen, "%s\n%s", fld[0], fld[1]);
        for (int i = 0; i < n_seen && !rc; i++)
            if (!strcmp(seen[i].key, key))
                rc = lt_err(LT_EDATA, "%s:%d: duplicate of line %d (%s %s)", path, lineno, seen[i].line, fld[0],
                            fld[1]);
        if (!rc && n_seen == cap_seen) {
            int cap = cap_seen ? 2 * cap_seen : 16;
            struct seen *v2 = realloc(seen, (size_t)cap * sizeof *v2);
            if (!v2) rc = lt_err(LT_ENOMEM, "%s: out of memory", path);
            else {
                seen = v2;
                cap_seen = cap;
            }
        }
        if (rc) {
            free(key);
            break;
        }
        seen[n_seen++] = (struct seen){key, lineno};
        if (!strcmp(fld[0], protocol) && !strcmp(fld[1], method)) *top1 = v;
    }
    fclose(f);
    for (int i = 0; i < n_seen; i++) free(seen[i].key);
    free(seen);
    if (rc) *top1 = NAN;
    return rc;
}

/* The same range as paper_numbers.csv: a number out of [0,100] (1e308,
 * -500) would be printed as the paper's top-1 and its difference. */
static int paper_from_json(const char *path, const char *protocol, double *top1)
{
    if (access(path, F_OK) != 0) return LT_OK;
    cJSON *doc = NULL;
    LT_TRY(lt_json_read(path, &doc));
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "top1");
    int rc = LT_OK;
    if (!cJSON_IsObject(t)) {
        rc = lt_err(LT_EDATA, "%s: expected an object \"top1\": {\"<protocol>\": percent}", path);
    } else {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, protocol);
        if (v && !cJSON_IsNumber(v)) rc = lt_err(LT_EDATA, "%s: top1.%s is not a number", path, protocol);
        else if (v && !(v->valuedouble >= 0 && v->valuedouble <= 100))
            rc = lt_err(LT_EDATA, "%s: top1.%s is %g, not a percentage in [0,100]", path, protocol, v->valuedouble);
        else if (v) *top1 = v->valuedouble;
    }
    cJSON_Delete(doc);
    return rc;
}

int lt_paper_top1(const lt_lb_opts *o, const char *protocol, const char *method, double *top1)
{
    *top1 = NAN;
    char p[LT_LB_PATH];
    snprintf(p, sizeof p, "%s/paper_numbers.csv", o->results_dir ? o->results_dir : "results");
    LT_TRY(paper_from_csv(p, protocol, method, top1));
    if (!isnan(*top1)) return LT_OK;
    snprintf(p, sizeof p, "%s/%s/paper.json", o->methods_dir ? o->methods_dir : "methods", method);
    return paper_from_json(p, protocol, top1);
}

/* ---- aggregation ---------------------------------------------------------------- */

static int same_group(const lt_run_record *a, const lt_run_record *b)
{
    return !strcmp(a->protocol, b->protocol) && !strcmp(a->scale, b->scale) && !strcmp(a->method, b->method) &&
           !strcmp(a->device_tag, b->device_tag) && !strcmp(a->engine_version, b->engine_version);
}

static int str48_cmp(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* Unique commits of the group, sorted, "+dirty" marked, joined with ';'. */
static void group_commits(const lt_run_record *v, int n, char *out, size_t cap)
{
    char seen[16][48];
    int k = 0;
    for (int i = 0; i < n; i++) {
        char c[48];
        if (!v[i].commit[0]) continue;
        snprintf(c, sizeof c, "%.12s%s", v[i].commit, v[i].dirty == 1 ? "+dirty" : "");
        int dup = 0;
        for (int j = 0; j < k; j++) dup |= !strcmp(seen[j], c);
        if (!dup && k < 16) snprintf(seen[k++], sizeof seen[0], "%s", c);
    }
    qsort(seen, (size_t)k, sizeof seen[0], str48_cmp);
    out[0] = '\0';
    for (int j = 0; j < k; j++) {
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", j ? ";" : "", seen[j]);
    }
}

static void aggregate(const lt_run_record *v, int n, lt_lb_row *r)
{
    snprintf(r->protocol, sizeof r->protocol, "%s", v[0].protocol);
    snprintf(r->scale, sizeof r->scale, "%s", v[0].scale);
    snprintf(r->method, sizeof r->method, "%s", v[0].method);
    snprintf(r->backend, sizeof r->backend, "%s", v[0].device_tag);
    r->backend_kind = v[0].backend_kind;
    r->n_runs = n;
    const char *sha = NULL;
    int mixed = 0;
    for (int i = 0; i < n; i++) {
        if (v[i].protocol_version > r->protocol_version) r->protocol_version = v[i].protocol_version;
        if (!r->fidelity[0] && v[i].fidelity[0]) snprintf(r->fidelity, sizeof r->fidelity, "%s", v[i].fidelity);
        if (v[i].protocol_sha256[0]) {
            if (sha && strcmp(sha, v[i].protocol_sha256)) mixed = 1;
            sha = v[i].protocol_sha256;
        }
        r->n_ok += v[i].ok;
    }
    for (int m = 0; m < LT_M_COUNT; m++) {
        double s = 0;
        int k = 0;
        for (int i = 0; i < n; i++)
            if (v[i].ok && !isnan(v[i].metric[m])) {
                s += 100.0 * v[i].metric[m];
                k++;
            }
        r->mean[m] = k ? s / k : NAN;
    }
    r->top1_std = NAN;
    int k = 0;
    double ss = 0;
    for (int i = 0; i < n; i++)
        if (v[i].ok && !isnan(v[i].metric[LT_M_TOP1])) {
            double d = 100.0 * v[i].metric[LT_M_TOP1] - r->mean[LT_M_TOP1];
            ss += d * d;
            k++;
        }
    if (k >= 2) r->top1_std = sqrt(ss / (k - 1));
    if (r->n_ok == n) snprintf(r->status, sizeof r->status, "ok");
    else if (r->n_ok == 0) snprintf(r->status, sizeof r->status, "failed");
    else snprintf(r->status, sizeof r->status, "failed(%d/%d)", n - r->n_ok, n);
    /* Runs of one row made under different protocol files are not one
     * experiment; say so rather than average them silently. */
    if (mixed) {
        size_t len = strlen(r->status);
        snprintf(r->status + len, sizeof r->status - len, ";mixed-protocol");
    }
    group_commits(v, n, r->commit, sizeof r->commit);
    snprintf(r->engine, sizeof r->engine, "%s", v[0].engine_version);
    /* an older engine sums in another order: its numbers are not what this
     * build makes, and `reproduce` re-runs them */
    r->stale = lt_engine_version_cmp(r->engine, LT_ENGINE_VERSION) < 0;
    if (r->stale) {
        size_t len = strlen(r->status);
        snprintf(r->status + len, sizeof r->status - len, ";stale");
    }
}

int lt_leaderboard_rows(const lt_lb_opts *o, const lt_run_set *set, lt_lb_row **rows, int *n_rows)
{
    *rows = NULL;
    *n_rows = 0;
    lt_lb_row *out = calloc((size_t)(set->n ? set->n : 1), sizeof *out);
    if (!out) return lt_err(LT_ENOMEM, "leaderboard: out of memory");
    int n = 0;
    for (int i = 0; i < set->n;) {
        int j = i + 1;
        while (j < set->n && same_group(&set->v[i], &set->v[j])) j++;
        lt_lb_row *r = &out[n++];
        aggregate(&set->v[i], j - i, r);
        r->first = i;
        r->paper_top1 = r->delta_vs_paper = NAN;
        /* Published numbers come from the full protocol; a short or ci run
         * (smaller model, fewer epochs) compared with them would only
         * measure the budget cut, so only full rows carry them. */
        if (!strcmp(r->scale, "full")) {
            int rc = lt_paper_top1(o, r->protocol, r->method, &r->paper_top1);
            if (rc) {
                free(out);
                return rc;
            }
            if (!isnan(r->paper_top1) && !isnan(r->mean[LT_M_TOP1]))
                r->delta_vs_paper = r->mean[LT_M_TOP1] - r->paper_top1;
        }
        i = j;
    }
    *rows = out;
    *n_rows = n;
    return LT_OK;
}

/* ---- writers -------------------------------------------------------------------- */

/* A CSV field, quoted only when it must be. */
static void csv_field(lt_rep_buf *b, const char *s, int first)
{
    if (!first) lt_rep_buf_printf(b, ",");
    if (strpbrk(s, ",\"\n")) {
        lt_rep_buf_printf(b, "\"");
        for (const char *p = s; *p; p++) lt_rep_buf_printf(b, *p == '"' ? "\"\"" : "%c", *p);
        lt_rep_buf_printf(b, "\"");
    } else {
        lt_rep_buf_printf(b, "%s", s);
    }
}

static void row_csv(lt_rep_buf *b, const lt_lb_row *r)
{
    char num[32];
    csv_field(b, r->protocol, 1);
    lt_rep_buf_printf(b, ",%d", r->protocol_version);
    csv_field(b, r->scale, 0);
    csv_field(b, r->method, 0);
    csv_field(b, r->fidelity, 0);
    lt_rep_buf_printf(b, ",%d", r->n_ok);
    const double cols[] = {r->mean[LT_M_TOP1], r->top1_std, r->mean[LT_M_MANY], r->mean[LT_M_MEDIUM],
                           r->mean[LT_M_FEW], r->mean[LT_M_ECE], r->mean[LT_M_ECE_TS], r->mean[LT_M_MAP], r->paper_top1,
                           r->delta_vs_paper};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        lt_rep_pct(cols[i], num, sizeof num);
        lt_rep_buf_printf(b, ",%s", num);
    }
    csv_field(b, r->status, 0);
    csv_field(b, r->commit, 0);
    csv_field(b, r->engine, 0);
    csv_field(b, r->backend, 0);
}

void lt_lb_row_csv(const lt_lb_row *r, char *buf, size_t cap)
{
    lt_rep_buf b = {0};
    row_csv(&b, r);
    snprintf(buf, cap, "%s", b.oom || !b.s ? "" : b.s);
    lt_rep_buf_free(&b);
}

/* ECE columns of a row with finished seeds show "n/a" for null: a method
 * whose scores are not logits has no raw ECE, a dataset without a
 * validation split no ECE-TS (result.json's "calibration" says why), which
 * is not "nothing finished". */
static int na_cell(const lt_lb_row *r, int m) { return r->n_ok > 0 && (m == LT_M_ECE || m == LT_M_ECE_TS); }

static void md_cell(lt_rep_buf *b, const char *s)
{
    lt_rep_buf_printf(b, " ");
    /* a cell is one line: a failure reason may hold line breaks */
    for (const char *p = s; *p; p++)
        lt_rep_buf_printf(b, *p == '|' ? "\\|" : "%c", *p == '\n' || *p == '\r' ? ' ' : *p);
    lt_rep_buf_printf(b, " |");
}

static void mean_pm(double mean, double std, const char *pm, char *out, size_t cap)
{
    char m[32], s[32];
    lt_rep_pct(mean, m, sizeof m);
    lt_rep_pct(std, s, sizeof s);
    if (s[0]) snprintf(out, cap, "%s%s%s", m, pm, s);
    else snprintf(out, cap, "%s", m);
}

static void write_md(lt_rep_buf *b, const lt_lb_row *rows, int n, const lt_run_set *set)
{
    lt_rep_buf_printf(b,
                      "# Leaderboard\n\n"
                      "Written by `ltbench leaderboard` from results/runs/*/*/*/seed*/result.json "
                      "(the same numbers as results/leaderboard.csv); do not edit by hand.\n\n"
                      "Numbers are percent: mean over the seeds that finished, ± the sample standard "
                      "deviation (n-1) of top-1. The last epoch is reported; nothing is selected on the "
                      "test set. Shot groups: many > 100, medium 20-100, few < 20 training images. "
                      "Fidelity: " LT_FIDELITY_LEGEND ". Paper numbers are shown for "
                      "the `full` scale only. Engine: the engine version (`LT_ENGINE_VERSION`) that made the "
                      "row's runs; seeds of different engines are separate rows. Backend: `cpu`, `cuda` "
                      "(a GPU, fp32 math) or `cuda-tf32` (a GPU, TF32 math), `-nhwc` appended for the NHWC "
                      "(channels-last) layout; CPU runs and GPU runs of each math mode and layout are "
                      "separate rows, their numbers are not bit-identical. "
                      "Status `stale`: made by an "
                      "engine older than the current one (" LT_ENGINE_VERSION "); `make reproduce` re-runs it. "
                      "Commit `+dirty`: made from an uncommitted tree. ECE: of softmax(scores), only where the scores are a "
                      "probability model's logits; ECE-TS: after temperature scaling, one T fitted by the "
                      "NLL on the dataset's validation split; n/a where neither applies (result.json "
                      "\"calibration\" says why).\n\n" LT_LEADERBOARD_NOTES);
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && !strcmp(rows[j].protocol, rows[i].protocol) && !strcmp(rows[j].scale, rows[i].scale)) j++;
        lt_rep_buf_printf(b, "\n## %s, scale %s (protocol version %d)\n\n", rows[i].protocol, rows[i].scale,
                          rows[i].protocol_version);
        /* AP_r / AP_c / AP_f columns only where a protocol has LVIS frequency groups */
        int rcf = 0;
        for (int k = i; k < j; k++)
            if (!isnan(rows[k].mean[LT_M_AP_R]) || !isnan(rows[k].mean[LT_M_AP_F])) rcf = 1;
        lt_rep_buf_printf(b, "| method | backend | fidelity | seeds | top-1 | many | medium | few | ECE | ECE-TS | mAP %s"
                             "| paper top-1 | Δ paper | status | commit | engine |\n", rcf ? "| AP_r | AP_c | AP_f " : "");
        lt_rep_buf_printf(b, "|:--|:--|:--|--:|--:|--:|--:|--:|--:|--:|--:|%s--:|--:|:--|:--|:--|\n",
                          rcf ? "--:|--:|--:|" : "");
        for (int k = i; k < j; k++) {
            const lt_lb_row *r = &rows[k];
            char cell[64];
            lt_rep_buf_printf(b, "|");
            md_cell(b, r->method);
            md_cell(b, r->backend);
            md_cell(b, r->fidelity);
            snprintf(cell, sizeof cell, "%d", r->n_ok);
            md_cell(b, cell);
            mean_pm(r->mean[LT_M_TOP1], r->top1_std, " ± ", cell, sizeof cell);
            md_cell(b, cell);
            const int ms[] = {LT_M_MANY, LT_M_MEDIUM, LT_M_FEW, LT_M_ECE, LT_M_ECE_TS, LT_M_MAP,
                              LT_M_AP_R, LT_M_AP_C, LT_M_AP_F};
            for (int q = 0; q < (rcf ? 9 : 6); q++) {
                lt_rep_pct(r->mean[ms[q]], cell, sizeof cell);
                md_cell(b, cell[0] || !na_cell(r, ms[q]) ? cell : "n/a");
            }
            lt_rep_pct(r->paper_top1, cell, sizeof cell);
            md_cell(b, cell);
            lt_rep_pct(r->delta_vs_paper, cell, sizeof cell);
            md_cell(b, cell);
            md_cell(b, r->status);
            md_cell(b, r->commit);
            md_cell(b, r->engine);
            lt_rep_buf_printf(b, "\n");
        }
        i = j;
    }
    /* the CSV keeps a fixed column list; the reasons of failed seeds are here */
    int n_failed = 0;
    for (int k = 0; k < set->n; k++) n_failed += !set->v[k].ok;
    if (!n_failed) return;
    lt_rep_buf_printf(b, "\n## Failed runs\n\n| protocol | scale | method | backend | seed | reason |\n"
                         "|:--|:--|:--|:--|--:|:--|\n");
    for (int k = 0; k < set->n; k++) {
        const lt_run_record *r = &set->v[k];
        if (r->ok) continue;
        char seed[16];
        snprintf(seed, sizeof seed, "%d", r->seed);
        lt_rep_buf_printf(b, "|");
        md_cell(b, r->protocol);
        md_cell(b, r->scale);
        md_cell(b, r->method);
        md_cell(b, r->device_tag);
        md_cell(b, seed);
        md_cell(b, r->reason);
        lt_rep_buf_printf(b, "\n");
    }
}

/* LaTeX-escapes text: the characters that are special in running text. */
static void tex_text(lt_rep_buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '_': case '&': case '%': case '$': case '#': case '{': case '}':
            lt_rep_buf_printf(b, "\\%c", *p);
            break;
        case '~': lt_rep_buf_printf(b, "\\textasciitilde{}"); break;
        case '^': lt_rep_buf_printf(b, "\\textasciicircum{}"); break;
        case '\\': lt_rep_buf_printf(b, "\\textbackslash{}"); break;
        default: lt_rep_buf_printf(b, "%c", *p);
        }
    }
}

#define TEX_MARK "% Written by ltbench leaderboard"

static void write_tex(lt_rep_buf *b, const lt_lb_row *rows, int n)
{
    int paper = 0;
    for (int k = 0; k < n; k++) paper |= !isnan(rows[k].paper_top1);
    lt_rep_buf_printf(b, "%s from results/runs; do not edit by hand.\n", TEX_MARK);
    lt_rep_buf_printf(b, "%% Protocol ");
    lt_rep_buf_printf(b, "%s, scale %s, version %d. Percent; top-1 is mean $\\pm$ sample std over seeds.\n",
                      rows[0].protocol, rows[0].scale, rows[0].protocol_version);
    lt_rep_buf_printf(b, "%% Needs \\usepackage{booktabs}.\n");
    lt_rep_buf_printf(b, "\\begin{tabular}{llr%s%s}\n", "rrrrrr", paper ? "rr" : "");
    lt_rep_buf_printf(b, "\\toprule\nMethod & Fidelity & Seeds & Top-1 & Many & Medium & Few & ECE & ECE-TS%s "
                         "\\\\\n",
                      paper ? " & Paper & $\\Delta$" : "");
    lt_rep_buf_printf(b, "\\midrule\n");
    for (int k = 0; k < n; k++) {
        const lt_lb_row *r = &rows[k];
        char cell[64];
        tex_text(b, r->method);
        if (r->backend_kind != LT_BACKEND_CPU) {   /* GPU rows stand apart from the CPU ones and say so */
            lt_rep_buf_printf(b, " (");
            tex_text(b, r->backend);
            lt_rep_buf_printf(b, ")");
        }
        if (r->stale) {   /* rows of an older engine stay apart and say so */
            lt_rep_buf_printf(b, " (engine ");
            tex_text(b, r->engine[0] ? r->engine : "?");
            lt_rep_buf_printf(b, ", stale)");
        }
        lt_rep_buf_printf(b, " & ");
        tex_text(b, r->fidelity[0] ? r->fidelity : "--");
        if (r->n_ok == r->n_runs) lt_rep_buf_printf(b, " & %d", r->n_ok);
        else lt_rep_buf_printf(b, " & %d/%d", r->n_ok, r->n_runs);
        mean_pm(r->mean[LT_M_TOP1], r->top1_std, " $\\pm$ ", cell, sizeof cell);
        lt_rep_buf_printf(b, " & %s", cell[0] ? cell : "--");
        const int ms[] = {LT_M_MANY, LT_M_MEDIUM, LT_M_FEW, LT_M_ECE, LT_M_ECE_TS};
        for (int q = 0; q < 5; q++) {
            lt_rep_pct(r->mean[ms[q]], cell, sizeof cell);
            lt_rep_buf_printf(b, " & %s", cell[0] ? cell : na_cell(r, ms[q]) ? "n/a" : "--");
        }
        if (paper) {
            lt_rep_pct(r->paper_top1, cell, sizeof cell);
            lt_rep_buf_printf(b, " & %s", cell[0] ? cell : "--");
            lt_rep_pct(r->delta_vs_paper, cell, sizeof cell);
            if (cell[0] && cell[0] != '-') lt_rep_buf_printf(b, " & +%s", cell);
            else lt_rep_buf_printf(b, " & %s", cell[0] ? cell : "--");
        }
        lt_rep_buf_printf(b, " \\\\\n");
    }
    lt_rep_buf_printf(b, "\\bottomrule\n\\end{tabular}\n");
}

/* Removes tables/<x>.tex files that this command wrote (first line is the
 * marker) and that no current protocol/scale produces any more. */
static int prune_tables(const char *tables, const lt_lb_row *rows, int n)
{
    DIR *d = opendir(tables);
    if (!d) return LT_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".tex")) continue;
        int live = 0;
        for (int k = 0; k < n && !live; k++) {
            char want[2 * LT_LB_NAME + 32];
            snprintf(want, sizeof want, "%s_%s.tex", rows[k].protocol, rows[k].scale);
            live = !strcmp(want, e->d_name);
        }
        if (live) continue;
        char p[LT_LB_PATH], first[64] = "";
        snprintf(p, sizeof p, "%s/%s", tables, e->d_name);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        if (!fgets(first, sizeof first, f)) first[0] = '\0';
        fclose(f);
        if (!strncmp(first, TEX_MARK, strlen(TEX_MARK))) unlink(p);
    }
    closedir(d);
    return LT_OK;
}

int lt_leaderboard_update(const lt_lb_opts *o, lt_run_set *set_out, lt_lb_row **rows_out, int *n_out)
{
    const char *res = o->results_dir ? o->results_dir : "results";
    lt_run_set set;
    LT_TRY(lt_runs_scan(res, o->warn, &set));
    /* Nothing is lost to one bad file: written without it, the row would
     * lose a seed (or vanish), and its table would be pruned. The outputs
     * stay as they were until every result file can be read. */
    if (set.n_refused) {
        const int n = set.n_refused;
        char first[sizeof set.first_refused];
        snprintf(first, sizeof first, "%s", set.first_refused);
        lt_run_set_free(&set);
        return lt_err(LT_EDATA, "%d result file%s refused (the first: %.400s); nothing written: %s/leaderboard.csv, "
                      "leaderboard.md and tables/ are left as they were", n, n == 1 ? "" : "s", first, res);
    }
    lt_lb_row *rows = NULL;
    int n = 0, rc = lt_leaderboard_rows(o, &set, &rows, &n);
    if (rc) {
        lt_run_set_free(&set);
        return rc;
    }
    char p[LT_LB_PATH];
    lt_rep_buf b = {0};
    lt_rep_buf_printf(&b, "%s\n", LT_LB_CSV_HEADER);
    for (int k = 0; k < n; k++) {
        row_csv(&b, &rows[k]);
        lt_rep_buf_printf(&b, "\n");
    }
    snprintf(p, sizeof p, "%s/leaderboard.csv", res);
    rc = lt_rep_write(p, &b);
    lt_rep_buf_free(&b);
    if (!rc) {
        write_md(&b, rows, n, &set);
        snprintf(p, sizeof p, "%s/leaderboard.md", res);
        rc = lt_rep_write(p, &b);
        lt_rep_buf_free(&b);
    }
    char tables[LT_LB_PATH];
    snprintf(tables, sizeof tables, "%s/tables", res);
    for (int i = 0; !rc && i < n;) {
        int j = i;
        while (j < n && !strcmp(rows[j].protocol, rows[i].protocol) && !strcmp(rows[j].scale, rows[i].scale)) j++;
        write_tex(&b, rows + i, j - i);
        snprintf(p, sizeof p, "%s/%s_%s.tex", tables, rows[i].protocol, rows[i].scale);
        rc = lt_rep_write(p, &b);
        lt_rep_buf_free(&b);
        i = j;
    }
    if (!rc) rc = prune_tables(tables, rows, n);
    if (!rc && o->log)
        fprintf(o->log, "leaderboard: %d runs -> %d rows: %s/leaderboard.csv, leaderboard.md, tables/\n", set.n, n,
                res);
    if (rc || !set_out) lt_run_set_free(&set);
    else *set_out = set;
    if (rc || !rows_out) free(rows);
    else *rows_out = rows;
    if (n_out) *n_out = rc ? 0 : n;
    return rc;
}
