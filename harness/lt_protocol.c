/* lt_protocol.c — protocol files: the strict cJSON loader, name lookup,
 * file hash, the init-checkpoint gate and the directory listing.
 *
 * Validation is explicit code, one function per JSON object, rather than a
 * generic schema engine: each object lists its allowed keys once, reads each
 * key with a typed getter that knows the full key path, and then checks the
 * cross-field rules (sizes that must agree, counts recomputed from the
 * profile). Every message starts with the file name so that a user editing
 * protocols/ sees exactly where the problem is. */
#include "lt_protocol.h"

#include "lt_ckpt.h"
#include "lt_names.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KP_MAX 256                      /* longest key path we build */
#define MAX_FILE_BYTES (4L << 20)       /* a protocol is a few KiB; refuse anything silly */

/* Parsing context: only the file name, for messages. */
typedef struct { const char *file; } P;

/* ---- name tables ----------------------------------------------------------- */

/* Engine architecture names accepted by lt_resnet_backbone (engine/lt_model.h). */
static const char *const k_arch[] = {
    "resnet8_cifar", "resnet20_cifar", "resnet32_cifar", "resnet56_cifar", "resnet10", "resnet18",
    "resnet34",      "resnet50",       "resnet101",      "resnet152",      "resnext50_32x4d", NULL};

/* Dataset-layer names with the class count and channels they imply, so a
 * protocol cannot silently claim 100 classes for CIFAR-10. */
static const char *const k_dataset_names[] = {"fmnist",    "cifar10",  "cifar100", "imagenet_lt",
                                              "places_lt", "inat2018", "lvis",     "lvis_fixture",
                                              "imagenet_lt_fixture", NULL};
static const int k_dataset_classes[] = {10, 10, 100, 1000, 365, 8142, 1203, 50, 1000};
static const int k_dataset_channels[] = {1, 3, 3, 3, 3, 3, 3, 3, 3};

static const char *const k_metrics[] = {
    "top1", "many", "medium", "few", "ece", "macro_f1", "class_mean_acc",
    "acc_r", "acc_c", "acc_f", "map", "ap_r", "ap_c", "ap_f", NULL};
/* Metrics that need per-class frequency groups (LVIS r/c/f). */
static const char *const k_freq_metrics[] = {"acc_r", "acc_c", "acc_f", "ap_r", "ap_c", "ap_f", NULL};

static const char *const k_scales[] = {"ci", "short", "full", NULL};

static int in_list(const char *const *list, const char *s) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], s)) return i;
    return -1;
}

/* "a, b, c" into buf, for "expected one of" messages. */
static const char *join(const char *const *list, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; list[i] && o < cap; i++) {
        int w = snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", list[i]);
        if (w < 0) break;
        o += (size_t)w;
    }
    return buf;
}

/* ---- typed getters ------------------------------------------------------------ */

static const char *jtype(const cJSON *j) {
    if (cJSON_IsObject(j)) return "object";
    if (cJSON_IsArray(j)) return "array";
    if (cJSON_IsString(j)) return "string";
    if (cJSON_IsNumber(j)) return "number";
    if (cJSON_IsBool(j)) return "boolean";
    if (cJSON_IsNull(j)) return "null";
    return "invalid";
}

/* dst (KP_MAX bytes) = "parent.key", or "key" at the top level. Real key
 * paths are far shorter than KP_MAX; a truncated one would still point at
 * the right place, so truncation is tolerated, not an error. */
static void kp(char *dst, const char *parent, const char *key) {
    int w = parent[0] ? snprintf(dst, KP_MAX, "%s.%s", parent, key)
                      : snprintf(dst, KP_MAX, "%s", key);
    if (w < 0) dst[0] = '\0';
}

static int type_err(const P *c, const char *k, const char *want, const cJSON *j) {
    return lt_err(LT_EDATA, "%s: key '%s' must be %s, got %s", c->file, k, want, jtype(j));
}

/* Rejects keys outside `allowed` (note, if given, says why, e.g. which kind)
 * and duplicate keys, which cJSON would otherwise accept silently. */
static int check_keys(const P *c, const cJSON *obj, const char *path, const char *const *allowed,
                      const char *note) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        char k[KP_MAX];
        kp(k, path, it->string);
        if (in_list(allowed, it->string) < 0) {
            if (note) return lt_err(LT_EDATA, "%s: unknown key '%s' (%s)", c->file, k, note);
            return lt_err(LT_EDATA, "%s: unknown key '%s'", c->file, k);
        }
        for (const cJSON *q = obj->child; q != it; q = q->next)
            if (!strcmp(q->string, it->string))
                return lt_err(LT_EDATA, "%s: duplicate key '%s'", c->file, k);
    }
    return LT_OK;
}

/* Fetches obj[key] into *out and its full path into k (KP_MAX bytes). */
static int item(const P *c, const cJSON *obj, const char *path, const char *key, const cJSON **out,
                char *k) {
    kp(k, path, key);
    *out = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!*out) return lt_err(LT_EDATA, "%s: missing required key '%s'", c->file, k);
    return LT_OK;
}

static int as_int(const P *c, const cJSON *j, const char *k, long long lo, long long hi,
                  long long *out) {
    if (!cJSON_IsNumber(j)) return type_err(c, k, "an integer", j);
    double v = j->valuedouble;
    if (!isfinite(v) || v != floor(v) || fabs(v) > 9007199254740992.0)
        return lt_err(LT_EDATA, "%s: key '%s' must be an integer, got %g", c->file, k, v);
    long long x = (long long)v;
    if (x < lo || x > hi) {
        /* a type limit is not a meaningful bound: do not print it */
        if (hi == INT_MAX || hi == LONG_MAX || hi == LLONG_MAX)
            return lt_err(LT_EDATA, "%s: key '%s' must be >= %lld, got %lld", c->file, k, lo, x);
        return lt_err(LT_EDATA, "%s: key '%s' must be between %lld and %lld, got %lld", c->file, k,
                      lo, hi, x);
    }
    *out = x;
    return LT_OK;
}

static int get_int(const P *c, const cJSON *o, const char *path, const char *key, long long lo,
                   long long hi, int *out) {
    char k[KP_MAX];
    const cJSON *j;
    long long x;
    LT_TRY(item(c, o, path, key, &j, k));
    LT_TRY(as_int(c, j, k, lo, hi, &x));
    *out = (int)x;
    return LT_OK;
}

static int get_long(const P *c, const cJSON *o, const char *path, const char *key, long long lo,
                    long long hi, long *out) {
    char k[KP_MAX];
    const cJSON *j;
    long long x;
    LT_TRY(item(c, o, path, key, &j, k));
    LT_TRY(as_int(c, j, k, lo, hi, &x));
    *out = (long)x;
    return LT_OK;
}

/* Integer or null (null stores `if_null`). */
static int get_long_or_null(const P *c, const cJSON *o, const char *path, const char *key,
                            long long lo, long long hi, long if_null, long *out) {
    char k[KP_MAX];
    const cJSON *j;
    long long x;
    LT_TRY(item(c, o, path, key, &j, k));
    if (cJSON_IsNull(j)) {
        *out = if_null;
        return LT_OK;
    }
    if (!cJSON_IsNumber(j)) return type_err(c, k, "an integer or null", j);
    LT_TRY(as_int(c, j, k, lo, hi, &x));
    *out = (long)x;
    return LT_OK;
}

enum { LO_OPEN = 1, HI_OPEN = 2 };

static int as_num(const P *c, const cJSON *j, const char *k, double lo, double hi, int open,
                  double *out) {
    if (!cJSON_IsNumber(j)) return type_err(c, k, "a number", j);
    double v = j->valuedouble;
    if (!isfinite(v)) return lt_err(LT_EDATA, "%s: key '%s' must be finite", c->file, k);
    int bad = (open & LO_OPEN) ? !(v > lo) : !(v >= lo);
    bad = bad || ((open & HI_OPEN) ? !(v < hi) : !(v <= hi));
    if (bad) {
        if (isinf(hi))
            return lt_err(LT_EDATA, "%s: key '%s' must be %s %g, got %g", c->file, k,
                          (open & LO_OPEN) ? ">" : ">=", lo, v);
        return lt_err(LT_EDATA, "%s: key '%s' must be in %c%g, %g%c, got %g", c->file, k,
                      (open & LO_OPEN) ? '(' : '[', lo, hi, (open & HI_OPEN) ? ')' : ']', v);
    }
    *out = v;
    return LT_OK;
}

static int get_num(const P *c, const cJSON *o, const char *path, const char *key, double lo,
                   double hi, int open, double *out) {
    char k[KP_MAX];
    const cJSON *j;
    LT_TRY(item(c, o, path, key, &j, k));
    return as_num(c, j, k, lo, hi, open, out);
}

static int get_bool(const P *c, const cJSON *o, const char *path, const char *key, int *out) {
    char k[KP_MAX];
    const cJSON *j;
    LT_TRY(item(c, o, path, key, &j, k));
    if (!cJSON_IsBool(j)) return type_err(c, k, "a boolean", j);
    *out = cJSON_IsTrue(j) ? 1 : 0;
    return LT_OK;
}

/* Non-empty string into buf; with nullable, JSON null stores "". */
static int get_str(const P *c, const cJSON *o, const char *path, const char *key, char *buf,
                   size_t cap, int nullable) {
    char k[KP_MAX];
    const cJSON *j;
    LT_TRY(item(c, o, path, key, &j, k));
    if (nullable && cJSON_IsNull(j)) {
        buf[0] = '\0';
        return LT_OK;
    }
    if (!cJSON_IsString(j)) return type_err(c, k, nullable ? "a string or null" : "a string", j);
    size_t n = strlen(j->valuestring);
    if (n == 0)
        return lt_err(LT_EDATA, "%s: key '%s' must not be empty%s", c->file, k,
                      nullable ? " (use null)" : "");
    if (n >= cap)
        return lt_err(LT_EDATA, "%s: key '%s' is too long (%zu bytes, at most %zu)", c->file, k, n,
                      cap - 1);
    memcpy(buf, j->valuestring, n + 1);
    return LT_OK;
}

/* A string that must be one of `names`; stores its index. */
static int get_enum(const P *c, const cJSON *o, const char *path, const char *key,
                    const char *const *names, int *idx) {
    char k[KP_MAX], v[LT_PROTO_NAME_MAX], all[512];
    LT_TRY(get_str(c, o, path, key, v, sizeof v, 0));
    kp(k, path, key);
    int i = in_list(names, v);
    if (i < 0)
        return lt_err(LT_EDATA, "%s: key '%s' is '%s', expected one of: %s", c->file, k, v,
                      join(names, all, sizeof all));
    *idx = i;
    return LT_OK;
}

/* Object (or, with nullable, null -> *out = NULL). */
static int get_obj(const P *c, const cJSON *o, const char *path, const char *key,
                   const cJSON **out, int nullable) {
    char k[KP_MAX];
    const cJSON *j;
    LT_TRY(item(c, o, path, key, &j, k));
    if (nullable && cJSON_IsNull(j)) {
        *out = NULL;
        return LT_OK;
    }
    if (!cJSON_IsObject(j)) return type_err(c, k, nullable ? "an object or null" : "an object", j);
    *out = j;
    return LT_OK;
}

/* The array under key with lo_n..hi_n entries (exactly lo_n when equal):
 * *arr and its size in *n, or *arr = NULL and *n = -1 for null (nullable).
 * k receives the key path for the callers' element messages. */
static int get_array(const P *c, const cJSON *o, const char *path, const char *key, int lo_n, int hi_n,
                     int nullable, const cJSON **arr, int *n, char k[KP_MAX]) {
    const cJSON *j;
    LT_TRY(item(c, o, path, key, &j, k));
    *arr = NULL;
    *n = -1;
    if (nullable && cJSON_IsNull(j)) return LT_OK;
    if (!cJSON_IsArray(j)) return type_err(c, k, nullable ? "an array or null" : "an array", j);
    int cnt = cJSON_GetArraySize(j);
    if (cnt < lo_n || cnt > hi_n) {
        if (lo_n == hi_n)
            return lt_err(LT_EDATA, "%s: key '%s' must have %d entries, got %d", c->file, k, lo_n,
                          cnt);
        return lt_err(LT_EDATA, "%s: key '%s' must have %d to %d entries, got %d", c->file, k,
                      lo_n, hi_n, cnt);
    }
    *arr = j;
    *n = cnt;
    return LT_OK;
}

/* Array of numbers with lo..hi entries (exactly n when lo == hi), or null
 * (nullable) -> *n = -1. Each element is range-checked with as_num. */
static int get_nums(const P *c, const cJSON *o, const char *path, const char *key, int lo_n,
                    int hi_n, double lo, double hi, int open, double *vals, int *n, int nullable) {
    char k[KP_MAX];
    const cJSON *j;
    LT_TRY(get_array(c, o, path, key, lo_n, hi_n, nullable, &j, n, k));
    int i = 0;
    for (const cJSON *e = j ? j->child : NULL; e; e = e->next, i++) {
        char ek[KP_MAX + 16];
        snprintf(ek, sizeof ek, "%s[%d]", k, i);
        LT_TRY(as_num(c, e, ek, lo, hi, open, &vals[i]));
    }
    return LT_OK;
}

/* Array of integers, same conventions as get_nums. */
static int get_ints(const P *c, const cJSON *o, const char *path, const char *key, int lo_n,
                    int hi_n, long long lo, long long hi, long long *vals, int *n, int nullable) {
    char k[KP_MAX];
    const cJSON *j;
    LT_TRY(get_array(c, o, path, key, lo_n, hi_n, nullable, &j, n, k));
    int i = 0;
    for (const cJSON *e = j ? j->child : NULL; e; e = e->next, i++) {
        char ek[KP_MAX + 16];
        snprintf(ek, sizeof ek, "%s[%d]", k, i);
        LT_TRY(as_int(c, e, ek, lo, hi, &vals[i]));
    }
    return LT_OK;
}

/* sha256 hex string or null ("" stored). */
static int get_sha(const P *c, const cJSON *o, const char *path, const char *key, char out[65]) {
    char k[KP_MAX], v[128];
    LT_TRY(get_str(c, o, path, key, v, sizeof v, 1));
    out[0] = '\0';
    if (!v[0]) return LT_OK;
    kp(k, path, key);
    size_t n = strlen(v);
    int ok = n == 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = (v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f');
    if (!ok)
        return lt_err(LT_EDATA, "%s: key '%s' must be 64 lower-case hex digits (a sha256)",
                      c->file, k);
    memcpy(out, v, 65);
    return LT_OK;
}

/* ---- sections ---------------------------------------------------------------- */

static int parse_profile(const P *c, const cJSON *o, const char *path, lt_proto_profile *pr) {
    static const char *const kinds[] = {"exp", "step", "lists", "object_crops", NULL};
    static const char *const k_exp[] = {"kind", "imbalance_ratio", "n_max", "subset_seed", NULL};
    static const char *const k_lists[] = {"kind", "train_list", "train_list_sha256", "val_list",
                                          "val_list_sha256", "test_list", "test_list_sha256",
                                          NULL};
    static const char *const k_crops[] = {
        "kind", "train_annotations", "test_annotations", "crop_rule", "crop_size", "resampler",
        "min_box_size", "max_train_per_class", "max_test_per_class", "hash_prefix",
        "drop_annotation_ids", NULL};
    static const char *const crop_rules[] = {"mscoco_glt", NULL};
    static const char *const resamplers[] = {"area_down_bilinear_up", NULL};
    int kind, dummy;
    char note[64];
    LT_TRY(get_enum(c, o, path, "kind", kinds, &kind));
    pr->kind = (lt_proto_profile_kind)kind;
    snprintf(note, sizeof note, "not used by profile kind '%s'", kinds[kind]);

    if (kind == LT_PROTO_EXP || kind == LT_PROTO_STEP) {
        LT_TRY(check_keys(c, o, path, k_exp, note));
        LT_TRY(get_num(c, o, path, "imbalance_ratio", 1.0, INFINITY, 0, &pr->imbalance_ratio));
        LT_TRY(get_int(c, o, path, "n_max", 1, INT_MAX, &pr->n_max));
        LT_TRY(get_int(c, o, path, "subset_seed", 0, INT_MAX, &pr->subset_seed));
        return LT_OK;
    }
    if (kind == LT_PROTO_LISTS) {
        LT_TRY(check_keys(c, o, path, k_lists, note));
        LT_TRY(get_str(c, o, path, "train_list", pr->train_list, sizeof pr->train_list, 0));
        LT_TRY(get_sha(c, o, path, "train_list_sha256", pr->train_list_sha256));
        LT_TRY(get_str(c, o, path, "val_list", pr->val_list, sizeof pr->val_list, 1));
        LT_TRY(get_sha(c, o, path, "val_list_sha256", pr->val_list_sha256));
        LT_TRY(get_str(c, o, path, "test_list", pr->test_list, sizeof pr->test_list, 0));
        LT_TRY(get_sha(c, o, path, "test_list_sha256", pr->test_list_sha256));
        if (!pr->val_list[0] && pr->val_list_sha256[0]) {
            char k[KP_MAX];
            kp(k, path, "val_list_sha256");
            return lt_err(LT_EDATA, "%s: key '%s' is set but val_list is null", c->file, k);
        }
        return LT_OK;
    }
    LT_TRY(check_keys(c, o, path, k_crops, note));
    LT_TRY(get_str(c, o, path, "train_annotations", pr->train_annotations,
                   sizeof pr->train_annotations, 0));
    LT_TRY(get_str(c, o, path, "test_annotations", pr->test_annotations,
                   sizeof pr->test_annotations, 0));
    LT_TRY(get_enum(c, o, path, "crop_rule", crop_rules, &dummy));
    snprintf(pr->crop_rule, sizeof pr->crop_rule, "%s", crop_rules[dummy]);
    LT_TRY(get_enum(c, o, path, "resampler", resamplers, &dummy));
    snprintf(pr->resampler, sizeof pr->resampler, "%s", resamplers[dummy]);
    LT_TRY(get_int(c, o, path, "crop_size", 8, 4096, &pr->crop_size));
    LT_TRY(get_int(c, o, path, "min_box_size", 1, 4096, &pr->min_box_size));
    LT_TRY(get_int(c, o, path, "max_train_per_class", 1, INT_MAX, &pr->max_train_per_class));
    LT_TRY(get_int(c, o, path, "max_test_per_class", 1, INT_MAX, &pr->max_test_per_class));
    LT_TRY(get_str(c, o, path, "hash_prefix", pr->hash_prefix, sizeof pr->hash_prefix, 0));
    return get_ints(c, o, path, "drop_annotation_ids", 0, LT_PROTO_MAX_DROP_IDS, 0, LLONG_MAX,
                    pr->drop_annotation_ids, &pr->n_drop_ids, 0);
}

static int parse_dataset(const P *c, const cJSON *o, lt_proto_dataset *d) {
    static const char *const keys[] = {"name", "num_classes", "channels", "profile",
                                       "expected_train_size", "expected_test_size", NULL};
    const char *path = "dataset";
    const cJSON *prof;
    LT_TRY(check_keys(c, o, path, keys, NULL));
    LT_TRY(get_str(c, o, path, "name", d->name, sizeof d->name, 0));
    int ds = in_list(k_dataset_names, d->name);
    if (ds < 0) {
        char all[256];
        return lt_err(LT_EDATA, "%s: key 'dataset.name': unknown dataset '%s' (known: %s)",
                      c->file, d->name, join(k_dataset_names, all, sizeof all));
    }
    LT_TRY(get_int(c, o, path, "num_classes", 2, 1000000, &d->num_classes));
    if (d->num_classes != k_dataset_classes[ds])
        return lt_err(LT_EDATA, "%s: key 'dataset.num_classes' is %d but dataset '%s' has %d classes",
                      c->file, d->num_classes, d->name, k_dataset_classes[ds]);
    LT_TRY(get_int(c, o, path, "channels", 1, LT_PROTO_MAX_CHANNELS, &d->channels));
    if (d->channels != k_dataset_channels[ds])
        return lt_err(LT_EDATA, "%s: key 'dataset.channels' is %d but dataset '%s' has %d",
                      c->file, d->channels, d->name, k_dataset_channels[ds]);
    LT_TRY(get_obj(c, o, path, "profile", &prof, 0));
    LT_TRY(parse_profile(c, prof, "dataset.profile", &d->profile));
    LT_TRY(get_long_or_null(c, o, path, "expected_train_size", 1, LONG_MAX, -1,
                            &d->expected_train_size));
    LT_TRY(get_long_or_null(c, o, path, "expected_test_size", 1, LONG_MAX, -1,
                            &d->expected_test_size));
    return LT_OK;
}

static int parse_groups(const P *c, const cJSON *o, lt_proto_groups *g) {
    static const char *const keys[] = {"rule", "many_gt", "few_lt", "expected_sizes",
                                       "frequency_groups", NULL};
    static const char *const rules[] = {"train_count", NULL};
    static const char *const freq[] = {"lvis_frequency", NULL};
    const char *path = "groups";
    int dummy, n;
    long long v[3];
    LT_TRY(check_keys(c, o, path, keys, NULL));
    LT_TRY(get_enum(c, o, path, "rule", rules, &dummy));
    LT_TRY(get_int(c, o, path, "many_gt", 0, INT_MAX, &g->many_gt));
    LT_TRY(get_int(c, o, path, "few_lt", 0, INT_MAX, &g->few_lt));
    /* few_lt == many_gt + 1 leaves medium empty, which is still a valid rule */
    if ((long long)g->few_lt > (long long)g->many_gt + 1)
        return lt_err(LT_EDATA, "%s: key 'groups.few_lt' (%d) exceeds groups.many_gt + 1 (%lld)",
                      c->file, g->few_lt, (long long)g->many_gt + 1);
    LT_TRY(get_ints(c, o, path, "expected_sizes", 3, 3, 0, INT_MAX, v, &n, 1));
    g->has_expected = n == 3;
    for (int i = 0; i < 3; i++) g->expected[i] = g->has_expected ? (int)v[i] : -1;
    const cJSON *fj = cJSON_GetObjectItemCaseSensitive(o, "frequency_groups");
    if (fj && cJSON_IsNull(fj)) {
        g->frequency_groups[0] = '\0';
        return LT_OK;
    }
    LT_TRY(get_enum(c, o, path, "frequency_groups", freq, &dummy));
    snprintf(g->frequency_groups, sizeof g->frequency_groups, "%s", freq[dummy]);
    return LT_OK;
}

static int parse_selection(const P *c, const cJSON *o, lt_proto_selection *s) {
    static const char *const keys[] = {"rule", "val_split", NULL};
    static const char *const rules[] = {"last_epoch", NULL};
    static const char *const kinds[] = {"carve_from_train", "val_list", NULL};
    static const char *const k_carve[] = {"kind", "fraction", "max_per_class", NULL};
    static const char *const k_list[] = {"kind", NULL};
    const char *path = "model_selection", *vpath = "model_selection.val_split";
    const cJSON *v;
    int idx;
    char note[64];
    LT_TRY(check_keys(c, o, path, keys, NULL));
    LT_TRY(get_enum(c, o, path, "rule", rules, &idx));
    snprintf(s->rule, sizeof s->rule, "%s", rules[idx]);
    LT_TRY(get_obj(c, o, path, "val_split", &v, 0));
    LT_TRY(get_enum(c, v, vpath, "kind", kinds, &idx));
    snprintf(note, sizeof note, "not used by val_split kind '%s'", kinds[idx]);
    s->val_kind = idx == 0 ? LT_PROTO_VAL_CARVE : LT_PROTO_VAL_LIST;
    if (s->val_kind == LT_PROTO_VAL_LIST) return check_keys(c, v, vpath, k_list, note);
    LT_TRY(check_keys(c, v, vpath, k_carve, note));
    LT_TRY(get_num(c, v, vpath, "fraction", 0.0, 1.0, LO_OPEN | HI_OPEN, &s->val_fraction));
    return get_int(c, v, vpath, "max_per_class", 1, INT_MAX, &s->val_max_per_class);
}

static int parse_norm(const P *c, const cJSON *o, int channels, lt_proto_norm *nm) {
    static const char *const keys[] = {"input_scale", "mean", "std", NULL};
    const char *path = "normalization";
    int n1, n2;
    LT_TRY(check_keys(c, o, path, keys, NULL));
    LT_TRY(get_num(c, o, path, "input_scale", 0.0, INFINITY, LO_OPEN, &nm->input_scale));
    LT_TRY(get_nums(c, o, path, "mean", channels, channels, -INFINITY, INFINITY, 0, nm->mean, &n1, 0));
    LT_TRY(get_nums(c, o, path, "std", channels, channels, 0.0, INFINITY, LO_OPEN, nm->std, &n2, 0));
    nm->n = channels;
    return LT_OK;
}

/* The optional "autoaugment" (null or "cifar10": AutoAugment's CIFAR-10
 * policy) and "cutout" (null or {"holes": n, "length": px}) of a train
 * augmentation. */
static int parse_autoaug(const P *c, const cJSON *tr, const char *tp, lt_proto_aug *a) {
    static const char *const policies[] = {"cifar10", NULL};
    static const char *const k_cut[] = {"holes", "length", NULL};
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(tr, "autoaugment");
    a->autoaug = 0;
    a->cutout_holes = a->cutout_length = 0;
    if (j && !cJSON_IsNull(j)) {
        int idx;
        LT_TRY(get_enum(c, tr, tp, "autoaugment", policies, &idx));
        a->autoaug = LT_AUTOAUG_CIFAR10;
    }
    j = cJSON_GetObjectItemCaseSensitive(tr, "cutout");
    if (j && !cJSON_IsNull(j)) {
        const cJSON *cj;
        char cp[KP_MAX];
        LT_TRY(get_obj(c, tr, tp, "cutout", &cj, 0));
        kp(cp, tp, "cutout");
        LT_TRY(check_keys(c, cj, cp, k_cut, NULL));
        LT_TRY(get_int(c, cj, cp, "holes", 1, 64, &a->cutout_holes));
        LT_TRY(get_int(c, cj, cp, "length", 1, 4096, &a->cutout_length));
    }
    return LT_OK;
}

static int parse_aug(const P *c, const cJSON *o, const char *path, lt_proto_aug *a) {
    static const char *const keys[] = {"train", "test", NULL};
    static const char *const kinds[] = {"none", "pad_crop", "random_resized_crop", NULL};
    static const char *const k_none[] = {"kind", "hflip_p", "color_jitter", NULL};
    /* "autoaugment" and "cutout" came later: absent reads as null, so the
     * files written before them (and their sha256 in every result) stand. */
    static const char *const k_pad[] = {"kind", "pad", "pad_fill", "size", "hflip_p",
                                        "color_jitter", "autoaugment", "cutout", NULL};
    static const char *const k_rrc[] = {"kind", "size", "scale", "ratio", "hflip_p",
                                        "color_jitter", "autoaugment", "cutout", NULL};
    static const char *const tkinds[] = {"none", "resize_center_crop", NULL};
    static const char *const k_tnone[] = {"kind", NULL};
    static const char *const k_tcrop[] = {"kind", "resize", "size", NULL};
    const cJSON *tr, *te;
    char tp[KP_MAX], sp[KP_MAX], note[80];
    int kind, n;
    LT_TRY(check_keys(c, o, path, keys, NULL));
    LT_TRY(get_obj(c, o, path, "train", &tr, 0));
    kp(tp, path, "train");
    LT_TRY(get_enum(c, tr, tp, "kind", kinds, &kind));
    a->kind = (lt_proto_aug_kind)kind;
    snprintf(note, sizeof note, "not used by augmentation kind '%s'", kinds[kind]);
    const char *const *allowed = kind == 0 ? k_none : kind == 1 ? k_pad : k_rrc;
    LT_TRY(check_keys(c, tr, tp, allowed, note));
    if (a->kind == LT_PROTO_AUG_PAD_CROP) {
        LT_TRY(get_int(c, tr, tp, "pad", 0, 1024, &a->pad));
        LT_TRY(get_int(c, tr, tp, "pad_fill", 0, 255, &a->pad_fill));
    }
    if (a->kind != LT_PROTO_AUG_NONE) LT_TRY(get_int(c, tr, tp, "size", 1, 4096, &a->size));
    if (a->kind == LT_PROTO_AUG_RRC) {
        LT_TRY(get_nums(c, tr, tp, "scale", 2, 2, 0.0, 1.0, LO_OPEN, a->scale, &n, 0));
        LT_TRY(get_nums(c, tr, tp, "ratio", 2, 2, 0.0, INFINITY, LO_OPEN, a->ratio, &n, 0));
        if (a->scale[0] > a->scale[1] || a->ratio[0] > a->ratio[1])
            return lt_err(LT_EDATA, "%s: keys '%s.scale' and '%s.ratio' must be [low, high] ranges",
                          c->file, tp, tp);
    }
    LT_TRY(get_num(c, tr, tp, "hflip_p", 0.0, 1.0, 0, &a->hflip_p));
    LT_TRY(get_nums(c, tr, tp, "color_jitter", 4, 4, 0.0, INFINITY, 0, a->color_jitter, &n, 1));
    a->has_color_jitter = n == 4;
    if (a->has_color_jitter && a->color_jitter[3] > 0.5)
        return lt_err(LT_EDATA, "%s: key '%s.color_jitter[3]' (hue) must be <= 0.5, got %g",
                      c->file, tp, a->color_jitter[3]);
    LT_TRY(parse_autoaug(c, tr, tp, a));

    LT_TRY(get_obj(c, o, path, "test", &te, 0));
    kp(sp, path, "test");
    LT_TRY(get_enum(c, te, sp, "kind", tkinds, &kind));
    a->test_kind = (lt_proto_test_kind)kind;
    snprintf(note, sizeof note, "not used by test augmentation kind '%s'", tkinds[kind]);
    LT_TRY(check_keys(c, te, sp, kind == 0 ? k_tnone : k_tcrop, note));
    if (a->test_kind == LT_PROTO_TEST_RESIZE_CROP) {
        LT_TRY(get_int(c, te, sp, "resize", 1, 4096, &a->test_resize));
        LT_TRY(get_int(c, te, sp, "size", 1, 4096, &a->test_size));
        if (a->test_size > a->test_resize)
            return lt_err(LT_EDATA, "%s: key '%s.size' (%d) exceeds '%s.resize' (%d)", c->file, sp,
                          a->test_size, sp, a->test_resize);
    }
    return LT_OK;
}

static int parse_eval(const P *c, const cJSON *o, lt_protocol *p) {
    static const char *const keys[] = {"metrics", "ece", "aggregate", NULL};
    static const char *const k_ece[] = {"bins", "binning", "confidence", "bin_edges", NULL};
    static const char *const binning[] = {"equal_width", NULL};
    static const char *const conf[] = {"top_label", NULL};
    static const char *const edges[] = {"left_open_right_closed", "left_closed_right_open", NULL};
    static const char *const aggs[] = {"mean_std", NULL};
    const char *path = "evaluation", *epath = "evaluation.ece";
    const cJSON *m, *e;
    char k[KP_MAX], all[512];
    int idx;
    LT_TRY(check_keys(c, o, path, keys, NULL));
    LT_TRY(item(c, o, path, "metrics", &m, k));
    if (!cJSON_IsArray(m)) return type_err(c, k, "an array", m);
    int n = cJSON_GetArraySize(m);
    if (n < 1 || n > LT_PROTO_MAX_METRICS)
        return lt_err(LT_EDATA, "%s: key '%s' must have 1 to %d entries, got %d", c->file, k,
                      LT_PROTO_MAX_METRICS, n);
    int i = 0, has_top1 = 0;
    for (const cJSON *it = m->child; it; it = it->next, i++) {
        char ek[KP_MAX + 16];
        snprintf(ek, sizeof ek, "%s[%d]", k, i);
        if (!cJSON_IsString(it)) return type_err(c, ek, "a string", it);
        if (in_list(k_metrics, it->valuestring) < 0)
            return lt_err(LT_EDATA, "%s: key '%s' is '%s', expected one of: %s", c->file, ek,
                          it->valuestring, join(k_metrics, all, sizeof all));
        for (int j = 0; j < i; j++)
            if (!strcmp(p->metrics[j], it->valuestring))
                return lt_err(LT_EDATA, "%s: key '%s': metric '%s' is listed twice", c->file, ek,
                              it->valuestring);
        if (in_list(k_freq_metrics, it->valuestring) >= 0 && !p->groups.frequency_groups[0])
            return lt_err(LT_EDATA, "%s: key '%s': metric '%s' needs groups.frequency_groups",
                          c->file, ek, it->valuestring);
        has_top1 |= !strcmp(it->valuestring, "top1");
        snprintf(p->metrics[i], sizeof p->metrics[i], "%s", it->valuestring);
    }
    p->n_metrics = n;
    if (!has_top1)
        return lt_err(LT_EDATA, "%s: key '%s' must include \"top1\" (the leaderboard number)",
                      c->file, k);
    LT_TRY(get_obj(c, o, path, "ece", &e, 0));
    LT_TRY(check_keys(c, e, epath, k_ece, NULL));
    LT_TRY(get_int(c, e, epath, "bins", 1, 10000, &p->ece_bins));
    LT_TRY(get_enum(c, e, epath, "binning", binning, &idx));
    snprintf(p->ece_binning, sizeof p->ece_binning, "%s", binning[idx]);
    LT_TRY(get_enum(c, e, epath, "confidence", conf, &idx));
    snprintf(p->ece_confidence, sizeof p->ece_confidence, "%s", conf[idx]);
    LT_TRY(get_enum(c, e, epath, "bin_edges", edges, &idx));
    snprintf(p->ece_bin_edges, sizeof p->ece_bin_edges, "%s", edges[idx]);
    LT_TRY(get_enum(c, o, path, "aggregate", aggs, &idx));
    snprintf(p->aggregate, sizeof p->aggregate, "%s", aggs[idx]);
    return LT_OK;
}

static int parse_sched(const P *c, const cJSON *o, const char *path, int epochs,
                       lt_proto_sched *s) {
    static const char *const kinds[] = {"constant", "cosine", "multistep", "cosine_epoch", NULL};
    static const char *const k_plain[] = {"kind", "update", "warmup_epochs", "warmup_mode", NULL};
    static const char *const k_multi[] = {"kind",        "update",     "warmup_epochs",
                                          "warmup_mode", "milestones", "gamma", NULL};
    static const char *const k_cosep[] = {"kind", "update", "warmup_epochs", "warmup_mode",
                                          "warmup_start_factor", NULL};
    static const char *const updates[] = {"per_iteration", "per_epoch", NULL};
    static const char *const modes[] = {"per_iteration", "per_epoch", NULL};
    /* index in kinds[] -> engine enum */
    static const lt_sched_kind engine_kind[] = {LT_SCHED_CONSTANT, LT_SCHED_COSINE,
                                                LT_SCHED_MULTISTEP, LT_SCHED_COSINE_EPOCH};
    int kind, idx;
    char note[80];
    LT_TRY(get_enum(c, o, path, "kind", kinds, &kind));
    s->kind = engine_kind[kind];
    snprintf(note, sizeof note, "not used by schedule kind '%s'", kinds[kind]);
    LT_TRY(check_keys(c, o, path, kind == 2 ? k_multi : kind == 3 ? k_cosep : k_plain, note));
    LT_TRY(get_enum(c, o, path, "update", updates, &idx));
    s->per_epoch_update = idx == 1;
    LT_TRY(get_int(c, o, path, "warmup_epochs", 0, epochs - 1, &s->warmup_epochs));
    LT_TRY(get_enum(c, o, path, "warmup_mode", modes, &idx));
    s->warmup_per_epoch = idx == 1;
    s->gamma = 1.0;
    s->n_milestones = 0;
    s->warmup_start = 0.0;
    if (kind == 3) {
        /* The learning rate is a function of the epoch: say so in the file. */
        if (!s->per_epoch_update || !s->warmup_per_epoch)
            return lt_err(LT_EDATA, "%s: key '%s': schedule kind 'cosine_epoch' changes the rate once "
                          "an epoch; 'update' and 'warmup_mode' must be \"per_epoch\"", c->file, path);
        if (s->warmup_epochs == 1) {
            /* the code's warm-up line runs from epoch 1 to W - 1 (it asserts W >= 2) */
            char k[KP_MAX];
            kp(k, path, "warmup_epochs");
            return lt_err(LT_EDATA, "%s: key '%s' is 1: a cosine_epoch warm-up takes 0 or at least 2 epochs",
                          c->file, k);
        }
        return get_num(c, o, path, "warmup_start_factor", 0.0, 1.0, LO_OPEN, &s->warmup_start);
    }
    if (kind != 2) return LT_OK;
    long long ms[LT_PROTO_MAX_MILESTONES];
    if (epochs < 2) {
        char k[KP_MAX];
        kp(k, path, "milestones");
        return lt_err(LT_EDATA, "%s: key '%s': a multistep schedule needs at least 2 epochs",
                      c->file, k);
    }
    /* a milestone bites at the start of that 0-based epoch: 1..epochs-1 are meaningful */
    LT_TRY(get_ints(c, o, path, "milestones", 1, LT_PROTO_MAX_MILESTONES, 1, epochs - 1, ms,
                    &s->n_milestones, 0));
    for (int i = 0; i < s->n_milestones; i++) {
        if (i > 0 && ms[i] <= ms[i - 1]) {
            char k[KP_MAX];
            kp(k, path, "milestones");
            return lt_err(LT_EDATA, "%s: key '%s' must be strictly increasing", c->file, k);
        }
        s->milestones[i] = (int)ms[i];
    }
    return get_num(c, o, path, "gamma", 0.0, 1.0, LO_OPEN, &s->gamma);
}

static int parse_stage(const P *c, const cJSON *o, const char *path, lt_proto_stage *st) {
    static const char *const keys[] = {"epochs", "batch", "drop_last", "optimizer", "momentum",
                                       "nesterov", "weight_decay", "base_lr", "head_lr_mult",
                                       "schedule", "sampler", "bn_mode", NULL};
    static const char *const opts[] = {"sgd", NULL};
    static const lt_opt_kind opt_kinds[] = {LT_OPT_SGD};   /* opts' kinds, in order */
    static const char *const samplers[] = {"instance_balanced", "class_balanced", NULL};
    static const char *const bn[] = {"train", "eval", NULL};
    const cJSON *sj;
    char sp[KP_MAX];
    int idx;
    LT_TRY(check_keys(c, o, path, keys, NULL));
    LT_TRY(get_int(c, o, path, "epochs", 1, INT_MAX, &st->epochs));
    LT_TRY(get_int(c, o, path, "batch", 1, INT_MAX, &st->batch));
    LT_TRY(get_bool(c, o, path, "drop_last", &st->drop_last));
    LT_TRY(get_enum(c, o, path, "optimizer", opts, &idx));
    st->optimizer = opt_kinds[idx];
    LT_TRY(get_num(c, o, path, "momentum", 0.0, 1.0, HI_OPEN, &st->momentum));
    LT_TRY(get_bool(c, o, path, "nesterov", &st->nesterov));
    LT_TRY(get_num(c, o, path, "weight_decay", 0.0, INFINITY, 0, &st->weight_decay));
    LT_TRY(get_num(c, o, path, "base_lr", 0.0, INFINITY, 0, &st->base_lr));
    LT_TRY(get_num(c, o, path, "head_lr_mult", 0.0, INFINITY, 0, &st->head_lr_mult));
    LT_TRY(get_obj(c, o, path, "schedule", &sj, 0));
    kp(sp, path, "schedule");
    LT_TRY(parse_sched(c, sj, sp, st->epochs, &st->sched));
    LT_TRY(get_enum(c, o, path, "sampler", samplers, &idx));
    st->sampler = idx == 0 ? LT_SAMPLER_INSTANCE : LT_SAMPLER_CLASS_BALANCED;
    LT_TRY(get_enum(c, o, path, "bn_mode", bn, &idx));
    st->bn_eval = idx == 1;
    return LT_OK;
}

static int parse_init(const P *c, const cJSON *o, const char *path, lt_proto_init *in) {
    static const char *const keys[] = {"arch", "pretrained_on", "description", "sha256", NULL};
    LT_TRY(check_keys(c, o, path, keys, NULL));
    LT_TRY(get_str(c, o, path, "arch", in->arch, sizeof in->arch, 0));
    if (in_list(k_arch, in->arch) < 0) {
        char all[512];
        return lt_err(LT_EDATA, "%s: key '%s.arch': unknown architecture '%s' (known: %s)",
                      c->file, path, in->arch, join(k_arch, all, sizeof all));
    }
    LT_TRY(get_str(c, o, path, "pretrained_on", in->pretrained_on, sizeof in->pretrained_on, 0));
    LT_TRY(get_str(c, o, path, "description", in->description, sizeof in->description, 0));
    LT_TRY(get_sha(c, o, path, "sha256", in->sha256));
    in->required = 1;
    return LT_OK;
}

static int parse_scale(const P *c, const cJSON *o, const char *name, const lt_protocol *p,
                       lt_proto_scale *s) {
    static const char *const keys[] = {"arch", "image_size", "store_size",
                                       "subsample_train_per_class", "test_subset", "augmentation",
                                       "init_checkpoint", "stage1", "stage2", NULL};
    char path[KP_MAX], k[KP_MAX], all[512];
    const cJSON *j;
    snprintf(path, sizeof path, "scales.%s", name);
    snprintf(s->name, sizeof s->name, "%s", name);
    LT_TRY(check_keys(c, o, path, keys, NULL));
    LT_TRY(get_str(c, o, path, "arch", s->arch, sizeof s->arch, 0));
    if (in_list(k_arch, s->arch) < 0)
        return lt_err(LT_EDATA, "%s: key '%s.arch': unknown architecture '%s' (known: %s)",
                      c->file, path, s->arch, join(k_arch, all, sizeof all));
    LT_TRY(get_int(c, o, path, "image_size", 1, 4096, &s->image_size));
    LT_TRY(get_int(c, o, path, "store_size", 0, 4096, &s->store_size));
    if (s->store_size > 0 && s->store_size < s->image_size)
        return lt_err(LT_EDATA, "%s: key '%s.store_size' must be 0 or >= image_size (%d), got %d",
                      c->file, path, s->image_size, s->store_size);
    /* Decoded image sets have no native fixed size: the cache needs one. */
    if (s->store_size == 0 && (p->dataset.profile.kind == LT_PROTO_LISTS ||
                               p->dataset.profile.kind == LT_PROTO_OBJECT_CROPS))
        return lt_err(LT_EDATA,
                      "%s: key '%s.store_size' must be > 0 for a %s dataset (images are decoded "
                      "once to a fixed size)",
                      c->file, path,
                      p->dataset.profile.kind == LT_PROTO_LISTS ? "list-defined" : "crop");
    LT_TRY(get_int(c, o, path, "subsample_train_per_class", 0, INT_MAX,
                   &s->subsample_train_per_class));
    long long hi = p->dataset.expected_test_size > 0 ? p->dataset.expected_test_size : LONG_MAX;
    LT_TRY(get_long(c, o, path, "test_subset", 0, hi, &s->test_subset));

    /* Augmentation: the scale's own block, or the protocol's. */
    char apath[KP_MAX];
    LT_TRY(get_obj(c, o, path, "augmentation", &j, 1));
    if (j) {
        kp(apath, path, "augmentation");
        LT_TRY(parse_aug(c, j, apath, &s->aug));
        s->aug_overridden = 1;
    } else {
        snprintf(apath, sizeof apath, "augmentation");
        s->aug = p->aug;
    }
    if (s->aug.kind != LT_PROTO_AUG_NONE && s->aug.size != s->image_size)
        return lt_err(LT_EDATA, "%s: key '%s.train.size' is %d but %s.image_size is %d", c->file,
                      apath, s->aug.size, path, s->image_size);
    if (s->aug.test_kind == LT_PROTO_TEST_RESIZE_CROP) {
        if (s->aug.test_size != s->image_size)
            return lt_err(LT_EDATA, "%s: key '%s.test.size' is %d but %s.image_size is %d",
                          c->file, apath, s->aug.test_size, path, s->image_size);
        if (s->store_size > 0 && s->aug.test_resize != s->store_size)
            return lt_err(LT_EDATA, "%s: key '%s.test.resize' is %d but %s.store_size is %d",
                          c->file, apath, s->aug.test_resize, path, s->store_size);
    }

    LT_TRY(get_obj(c, o, path, "init_checkpoint", &j, 1));
    if (j) {
        kp(k, path, "init_checkpoint");
        LT_TRY(parse_init(c, j, k, &s->init));
        if (strcmp(s->init.arch, s->arch))
            return lt_err(LT_EDATA, "%s: key '%s.arch' is '%s' but %s.arch is '%s'", c->file, k,
                          s->init.arch, path, s->arch);
    }

    LT_TRY(get_obj(c, o, path, "stage1", &j, 0));
    kp(k, path, "stage1");
    LT_TRY(parse_stage(c, j, k, &s->stage1));
    LT_TRY(get_obj(c, o, path, "stage2", &j, 0));
    kp(k, path, "stage2");
    return parse_stage(c, j, k, &s->stage2);
}

/* ---- cross-field checks ------------------------------------------------------- */

static void profile_counts(const lt_proto_profile *pr, int C, long *counts) {
    for (int i = 0; i < C; i++) {
        if (pr->kind == LT_PROTO_EXP)
            /* exactly the LDAM-DRW / Cui et al. truncation (specs/datasets.md §1.3) */
            counts[i] = (long)(pr->n_max * pow(1.0 / pr->imbalance_ratio, i / (C - 1.0)));
        else
            counts[i] = i < C / 2 ? pr->n_max : (long)(pr->n_max * (1.0 / pr->imbalance_ratio));
    }
}

/* For exp/step profiles the expected train size and group sizes are derived
 * quantities; recomputing them catches a protocol whose numbers were edited
 * by hand (or whose profile was). */
static int check_counts(const P *c, const lt_protocol *p) {
    const lt_proto_dataset *d = &p->dataset;
    if (d->profile.kind != LT_PROTO_EXP && d->profile.kind != LT_PROTO_STEP) {
        if (p->groups.has_expected &&
            p->groups.expected[0] + p->groups.expected[1] + p->groups.expected[2] != d->num_classes)
            return lt_err(LT_EDATA, "%s: key 'groups.expected_sizes' sums to %d, not %d classes",
                          c->file,
                          p->groups.expected[0] + p->groups.expected[1] + p->groups.expected[2],
                          d->num_classes);
        return LT_OK;
    }
    long *cnt = malloc((size_t)d->num_classes * sizeof *cnt);
    if (!cnt) return lt_err(LT_ENOMEM, "%s: out of memory", c->file);
    profile_counts(&d->profile, d->num_classes, cnt);
    long total = 0;
    int g[3] = {0, 0, 0};
    for (int i = 0; i < d->num_classes; i++) {
        total += cnt[i];
        g[cnt[i] > p->groups.many_gt ? 0 : cnt[i] < p->groups.few_lt ? 2 : 1]++;
    }
    free(cnt);
    if (d->expected_train_size != total)
        return lt_err(LT_EDATA,
                      "%s: key 'dataset.expected_train_size' is %ld but the %s profile gives %ld",
                      c->file, d->expected_train_size,
                      d->profile.kind == LT_PROTO_EXP ? "exp" : "step", total);
    if (!p->groups.has_expected)
        return lt_err(LT_EDATA, "%s: key 'groups.expected_sizes' must be given for an exp/step "
                                "profile (computed: [%d, %d, %d])",
                      c->file, g[0], g[1], g[2]);
    for (int i = 0; i < 3; i++)
        if (p->groups.expected[i] != g[i])
            return lt_err(LT_EDATA,
                          "%s: key 'groups.expected_sizes' is [%d, %d, %d] but the profile gives "
                          "[%d, %d, %d]",
                          c->file, p->groups.expected[0], p->groups.expected[1],
                          p->groups.expected[2], g[0], g[1], g[2]);
    return LT_OK;
}

/* The training set of a scale in images, from the protocol alone: exact for
 * exp/step profiles (each class keeps min(count, subsample) images), else at
 * most expected_train_size and subsample x classes; -1 when nothing bounds it
 * (a list or crop profile with a null expected_train_size and no subsample;
 * the runner checks those once the dataset is open). */
static long scale_train_size(const lt_protocol *p, const lt_proto_scale *s, int *exact) {
    const lt_proto_dataset *d = &p->dataset;
    const long sub = s->subsample_train_per_class;
    *exact = 0;
    if (d->profile.kind == LT_PROTO_EXP || d->profile.kind == LT_PROTO_STEP) {
        long *cnt = malloc((size_t)d->num_classes * sizeof *cnt);
        if (!cnt) return -1;
        profile_counts(&d->profile, d->num_classes, cnt);
        long n = 0;
        for (int i = 0; i < d->num_classes; i++) n += sub > 0 && cnt[i] > sub ? sub : cnt[i];
        free(cnt);
        *exact = 1;
        return n;
    }
    long n = d->expected_train_size;
    *exact = n >= 0 && sub == 0;
    if (sub > 0 && (n < 0 || sub * d->num_classes < n)) n = sub * d->num_classes;
    return n;
}

/* A batch larger than the training set is no schedule at all: with
 * drop_last an epoch has no step, without it the one short batch is the
 * whole set, and the runner would first try to plan activations for the
 * batch (a huge one fails as "out of memory"). */
static int check_batches(const P *c, const lt_protocol *p) {
    for (int i = 0; i < LT_N_SCALES; i++) {
        const lt_proto_scale *s = &p->scales[i];
        int exact;
        long n = scale_train_size(p, s, &exact);
        if (n < 0) continue;
        for (int st = 0; st < 2; st++) {
            const int b = st == 0 ? s->stage1.batch : s->stage2.batch;
            if (b > n)
                return lt_err(LT_EDATA, "%s: key 'scales.%s.stage%d.batch' is %d, larger than the training set of "
                                        "scale %s (%s%ld images)",
                              c->file, s->name, st + 1, b, s->name, exact ? "" : "at most ", n);
        }
    }
    return LT_OK;
}

/* cJSON ends a string at an escaped NUL ("closed\u0000 but actually open"
 * reads as "closed"), so the parsed tree cannot show one. The text, already
 * known to be valid JSON, is walked once more with the key path tracked,
 * and a \u0000 in any key or string value is refused. */
static int check_nul_escapes(const P *c, const char *s, size_t len) {
    enum { MAX_DEPTH = 64 };
    typedef struct {
        int obj, index, want_key;   /* object or array; array position; an object's next string is a key */
        size_t base;                /* length of the container's own path */
    } level_t;
    level_t st[MAX_DEPTH];
    char path[KP_MAX] = "";
    int depth = 0;   /* levels tracked; deeper ones are still scanned */
    int level = 0;   /* real nesting */
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '"') {
            size_t j = i + 1;
            int nul = 0;
            while (j < len && s[j] != '"') {
                if (s[j] == '\\' && j + 1 < len) {
                    if (s[j + 1] == 'u' && j + 5 < len && !memcmp(s + j + 2, "0000", 4)) nul = 1;
                    j += s[j + 1] == 'u' ? 6 : 2;
                } else {
                    j++;
                }
            }
            if (j > len) j = len;
            int is_key = level > 0 && level == depth && st[depth - 1].obj && st[depth - 1].want_key;
            if (is_key) {
                size_t b = st[depth - 1].base;
                snprintf(path + b, sizeof path - b, "%s%.*s", b ? "." : "", (int)(j - i - 1), s + i + 1);
                st[depth - 1].want_key = 0;
            }
            if (nul) {
                char q[2 * KP_MAX];   /* a key may hold raw bytes: shown escaped */
                lt_name_quote(path[0] ? path : "(top level)", q, sizeof q);
                return lt_err(LT_EDATA, "%s: key '%s' %s an escaped NUL character (\\u0000), which would cut it short",
                              c->file, q, is_key ? "has" : "contains");
            }
            i = j;
        } else if (ch == '{' || ch == '[') {
            if (level == depth && depth < MAX_DEPTH) {
                size_t b = strlen(path);
                st[depth] = (level_t){ch == '{', 0, 1, b};
                if (ch == '[') snprintf(path + b, sizeof path - b, "[0]");
                depth++;
            }
            level++;
        } else if (ch == '}' || ch == ']') {
            if (level == depth && depth > 0) {
                depth--;
                path[st[depth].base] = '\0';
            }
            level--;
        } else if (ch == ',' && level == depth && depth > 0) {
            size_t b = st[depth - 1].base;
            if (st[depth - 1].obj) {
                st[depth - 1].want_key = 1;
                path[b] = '\0';
            } else {
                snprintf(path + b, sizeof path - b, "[%d]", ++st[depth - 1].index);
            }
        }
    }
    return LT_OK;
}

/* ---- loading ---------------------------------------------------------------- */

static int read_file(const char *path, char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return lt_err(LT_EIO, "%s: %s", path, strerror(errno));
    size_t cap = 8192, n = 0;
    char *b = malloc(cap);
    if (!b) {
        fclose(f);
        return lt_err(LT_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n + 1 >= cap) {
            if ((long)cap >= MAX_FILE_BYTES) {
                free(b);
                fclose(f);
                return lt_err(LT_EDATA, "%s: larger than %ld bytes, not a protocol file", path,
                              MAX_FILE_BYTES);
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                fclose(f);
                return lt_err(LT_ENOMEM, "%s: out of memory", path);
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - 1 - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b);
        return lt_err(LT_EIO, "%s: read error", path);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return LT_OK;
}

/* "protocols/x.json:3:15: malformed JSON near '...'" from cJSON's error pointer. */
static int json_error(const char *file, const char *buf, size_t len, const char *at) {
    if (!at || at < buf || at > buf + len) at = cJSON_GetErrorPtr();
    if (!at || at < buf || at > buf + len) at = buf + len;
    int line = 1, col = 1;
    for (const char *q = buf; q < at; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char near[24];
    size_t i = 0;
    for (; i < sizeof near - 1 && at + i < buf + len && at[i] != '\n' && at[i] != '\r'; i++)
        near[i] = at[i];
    near[i] = '\0';
    if (at >= buf + len)
        return lt_err(LT_EDATA, "%s:%d:%d: malformed JSON (unexpected end of file)", file, line,
                      col);
    return lt_err(LT_EDATA, "%s:%d:%d: malformed JSON near '%s'", file, line, col, near);
}

/* "protocols/cifar10_lt_r10.json" -> "cifar10_lt_r10" */
static void file_stem(const char *path, char *out, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".json")) n -= 5;
    if (n >= cap) n = cap - 1;
    memcpy(out, b, n);
    out[n] = '\0';
}

static int parse_root(const P *c, const cJSON *root, const char *path, lt_protocol *p) {
    static const char *const keys[] = {"protocol",     "version",       "description",
                                       "paper_reference", "division",   "dataset",
                                       "groups",       "model_selection", "normalization",
                                       "augmentation", "evaluation",    "seeds",
                                       "scales",       NULL};
    static const char *const divisions[] = {"closed", "open", NULL};
    const cJSON *j;
    char k[KP_MAX];
    int idx;
    if (!cJSON_IsObject(root))
        return lt_err(LT_EDATA, "%s: the top level must be an object, got %s", c->file, jtype(root));
    /* version first: a newer file may legitimately have keys this build does not know */
    LT_TRY(item(c, root, "", "version", &j, k));
    long long ver;
    if (!cJSON_IsNumber(j)) return type_err(c, k, "an integer", j);
    LT_TRY(as_int(c, j, k, 1, INT_MAX, &ver));
    if (ver != LT_PROTOCOL_VERSION)
        return lt_err(LT_EABI, "%s: protocol version %lld is not supported (this ltbench reads "
                               "version %d)",
                      c->file, ver, LT_PROTOCOL_VERSION);
    p->version = (int)ver;
    LT_TRY(check_keys(c, root, "", keys, NULL));

    LT_TRY(get_str(c, root, "", "protocol", p->name, sizeof p->name, 0));
    /* The name becomes results/runs/<name>/ and table and figure file
     * names: the rule of lt_names.h, before the stem check (a file named
     * "...json" has the stem ".."). */
    if (!lt_name_valid(p->name, sizeof p->name)) {
        char q[2 * LT_PROTO_NAME_MAX];
        lt_name_quote(p->name, q, sizeof q);
        return lt_err(LT_EDATA, "%s: key 'protocol' is '%s': a protocol name must be [a-z0-9_], 1..%d characters",
                      c->file, q, LT_PROTO_NAME_MAX - 1);
    }
    char stem[LT_PROTO_NAME_MAX];
    file_stem(path, stem, sizeof stem);
    if (strcmp(stem, p->name))
        return lt_err(LT_EDATA, "%s: key 'protocol' is '%s' but the file is named '%s.json'",
                      c->file, p->name, stem);
    LT_TRY(get_str(c, root, "", "description", p->description, sizeof p->description, 0));
    LT_TRY(get_str(c, root, "", "paper_reference", p->paper_reference, sizeof p->paper_reference,
                   0));
    LT_TRY(get_enum(c, root, "", "division", divisions, &idx));
    snprintf(p->division, sizeof p->division, "%s", divisions[idx]);

    LT_TRY(get_obj(c, root, "", "dataset", &j, 0));
    LT_TRY(parse_dataset(c, j, &p->dataset));
    LT_TRY(get_obj(c, root, "", "groups", &j, 0));
    LT_TRY(parse_groups(c, j, &p->groups));
    LT_TRY(check_counts(c, p));
    LT_TRY(get_obj(c, root, "", "model_selection", &j, 0));
    LT_TRY(parse_selection(c, j, &p->selection));
    if (p->selection.val_kind == LT_PROTO_VAL_LIST && (p->dataset.profile.kind != LT_PROTO_LISTS ||
                                                      !p->dataset.profile.val_list[0]))
        return lt_err(LT_EDATA, "%s: key 'model_selection.val_split.kind' is 'val_list' but "
                                "dataset.profile has no val_list",
                      c->file);
    LT_TRY(get_obj(c, root, "", "normalization", &j, 0));
    LT_TRY(parse_norm(c, j, p->dataset.channels, &p->norm));
    LT_TRY(get_obj(c, root, "", "augmentation", &j, 0));
    LT_TRY(parse_aug(c, j, "augmentation", &p->aug));
    LT_TRY(get_obj(c, root, "", "evaluation", &j, 0));
    LT_TRY(parse_eval(c, j, p));

    long long seeds[LT_PROTO_MAX_SEEDS];
    LT_TRY(get_ints(c, root, "", "seeds", 1, LT_PROTO_MAX_SEEDS, 0, INT_MAX, seeds, &p->n_seeds, 0));
    for (int i = 0; i < p->n_seeds; i++) {
        for (int q = 0; q < i; q++)
            if (seeds[q] == seeds[i])
                return lt_err(LT_EDATA, "%s: key 'seeds': seed %lld is listed twice", c->file,
                              seeds[i]);
        p->seeds[i] = (int)seeds[i];
    }

    const cJSON *sc;
    LT_TRY(get_obj(c, root, "", "scales", &sc, 0));
    LT_TRY(check_keys(c, sc, "scales", k_scales, NULL));
    for (int i = 0; i < LT_N_SCALES; i++) {
        LT_TRY(get_obj(c, sc, "scales", k_scales[i], &j, 0));
        LT_TRY(parse_scale(c, j, k_scales[i], p, &p->scales[i]));
    }
    return check_batches(c, p);
}

int lt_protocol_load(const char *path, lt_protocol *out) {
    if (!path || !out) return lt_err(LT_EINVAL, "lt_protocol_load: NULL argument");
    memset(out, 0, sizeof *out);
    if (strlen(path) >= sizeof out->path)
        return lt_err(LT_EINVAL, "protocol path too long: %s", path);
    snprintf(out->path, sizeof out->path, "%s", path);

    char *buf = NULL;
    size_t len = 0;
    LT_TRY(read_file(path, &buf, &len));
    lt_sha256_buf(buf, len, out->sha256);

    const char *end = NULL;
    /* len + 1 includes the terminating NUL, which require_null_terminated
     * needs to see: trailing garbage after the object is an error too. */
    cJSON *root = cJSON_ParseWithLengthOpts(buf, len + 1, &end, 1);
    if (!root) {
        int rc = json_error(path, buf, len, end);
        free(buf);
        return rc;
    }
    P c = {path};
    int rc = check_nul_escapes(&c, buf, len);
    if (!rc) rc = parse_root(&c, root, path, out);
    cJSON_Delete(root);
    free(buf);
    return rc;
}

/* ---- lookup, hash, init gate, conversions, listing ----------------------------- */

static const char *default_dir(const char *dir) {
    if (dir && *dir) return dir;
    const char *e = getenv("LTBENCH_PROTOCOLS");
    return e && *e ? e : LT_PROTOCOL_DIR;
}

int lt_protocol_find(const char *name_or_path, const char *dir, char *path, size_t cap) {
    if (!name_or_path || !*name_or_path) return lt_err(LT_EINVAL, "empty protocol name");
    if (!path || cap == 0) return lt_err(LT_EINVAL, "lt_protocol_find: no output buffer");
    size_t n = strlen(name_or_path);
    int is_path = strchr(name_or_path, '/') != NULL || (n > 5 && !strcmp(name_or_path + n - 5, ".json"));
    int w = is_path ? snprintf(path, cap, "%s", name_or_path)
                    : snprintf(path, cap, "%s/%s.json", default_dir(dir), name_or_path);
    if (w < 0 || (size_t)w >= cap)
        return lt_err(LT_EINVAL, "protocol path for '%s' is too long", name_or_path);
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        if (is_path) return lt_err(LT_EIO, "protocol file %s: %s", path, strerror(e));
        return lt_err(LT_EIO, "unknown protocol '%s' (%s: %s; `ltbench list` shows the protocols)",
                      name_or_path, path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) return lt_err(LT_EIO, "protocol file %s is not a regular file", path);
    return LT_OK;
}

int lt_protocol_scale(const lt_protocol *p, const char *scale, const lt_proto_scale **out) {
    if (!p || !scale || !out) return lt_err(LT_EINVAL, "lt_protocol_scale: NULL argument");
    int i = in_list(k_scales, scale);
    if (i < 0)
        return lt_err(LT_EINVAL, "unknown scale '%s' (expected ci, short or full)", scale);
    *out = &p->scales[i];
    return LT_OK;
}

int lt_protocol_hash(const char *path, char hex[65]) {
    if (!path || !hex) return lt_err(LT_EINVAL, "lt_protocol_hash: NULL argument");
    return lt_sha256_file(path, hex);
}

int lt_protocol_check_init(const lt_protocol *p, const lt_proto_scale *s, const char *ckpt_path) {
    if (!p || !s) return lt_err(LT_EINVAL, "lt_protocol_check_init: NULL argument");
    const lt_proto_init *in = &s->init;
    if (!in->required) return LT_OK;
    if (!ckpt_path || !*ckpt_path)
        return lt_err(LT_ESTATE,
                      "protocol %s (scale %s) refuses to run without its initial checkpoint: %s "
                      "[arch %s, pretrained on %s]; none was given",
                      p->name, s->name, in->description, in->arch, in->pretrained_on);
    char hex[65];
    int rc = lt_sha256_file(ckpt_path, hex);
    if (rc != LT_OK)
        return lt_err_wrap(rc, "initial checkpoint for protocol %s (scale %s)", p->name, s->name);
    if (in->sha256[0] && strcmp(hex, in->sha256))
        return lt_err(LT_ECHECKSUM,
                      "initial checkpoint %s has sha256 %s but protocol %s (scale %s) pins %s",
                      ckpt_path, hex, p->name, s->name, in->sha256);
    return LT_OK;
}

void lt_proto_stage_sched(const lt_proto_stage *st, lt_sched *out) {
    memset(out, 0, sizeof *out);
    out->kind = st->sched.kind;
    out->base_lr = st->base_lr;
    out->epochs = st->epochs;
    out->warmup_epochs = st->sched.warmup_epochs;
    out->warmup_per_epoch = st->sched.warmup_per_epoch;
    out->n_milestones = st->sched.n_milestones;
    for (int i = 0; i < st->sched.n_milestones; i++) out->milestones[i] = st->sched.milestones[i];
    out->gamma = st->sched.gamma;
    out->warmup_start = st->sched.warmup_start;
}

int lt_protocol_class_counts(const lt_protocol *p, long *counts, int n) {
    if (!p || !counts) return lt_err(LT_EINVAL, "lt_protocol_class_counts: NULL argument");
    if (p->dataset.profile.kind != LT_PROTO_EXP && p->dataset.profile.kind != LT_PROTO_STEP)
        return lt_err(LT_EINVAL, "protocol %s: class counts come from its split lists, not a profile",
                      p->name);
    if (n != p->dataset.num_classes)
        return lt_err(LT_EINVAL, "protocol %s has %d classes, not %d", p->name,
                      p->dataset.num_classes, n);
    profile_counts(&p->dataset.profile, n, counts);
    return LT_OK;
}

int lt_proto_engine_aug(const lt_protocol *p, const lt_proto_scale *s, lt_aug *out) {
    if (!p || !s || !out) return lt_err(LT_EINVAL, "lt_proto_engine_aug: NULL argument");
    const lt_proto_aug *a = &s->aug;
    memset(out, 0, sizeof *out);
    if (p->norm.n > 3)
        return lt_err(LT_EINVAL, "protocol %s: lt_aug handles at most 3 channels", p->name);
    if (p->norm.input_scale != 255.0)
        return lt_err(LT_EINVAL, "protocol %s: lt_aug divides by 255, the protocol by %g", p->name,
                      p->norm.input_scale);
    out->out_h = out->out_w = s->image_size;
    if (a->kind == LT_PROTO_AUG_PAD_CROP) {
        if (a->pad_fill != 0)
            return lt_err(LT_EINVAL, "protocol %s: lt_aug pads with 0 only, not %d", p->name,
                          a->pad_fill);
        out->pad = a->pad;
        out->random_crop = 1;
    } else if (a->kind == LT_PROTO_AUG_RRC) {
        out->rrc = 1;
        for (int i = 0; i < 2; i++) {
            out->rrc_scale[i] = (float)a->scale[i];
            out->rrc_ratio[i] = (float)a->ratio[i];
        }
    }
    if (a->hflip_p == 0.5)
        out->hflip = 1;
    else if (a->hflip_p != 0.0)
        return lt_err(LT_EINVAL, "protocol %s: lt_aug flips with p = 0.5 only, not %g", p->name,
                      a->hflip_p);
    if (a->has_color_jitter) {
        const double *j = a->color_jitter;
        if (j[0] != j[1] || j[1] != j[2] || j[3] != 0.0)
            return lt_err(LT_EINVAL, "protocol %s: lt_aug has one jitter strength for brightness, "
                                     "contrast and saturation and no hue jitter",
                          p->name);
        out->jitter = (float)j[0];
    }
    /* AutoAugment's ops are PIL's on RGB; its scratch image is on the stack. */
    if (a->autoaug && (p->dataset.channels != 3 || s->image_size > LT_AUTOAUG_MAX_SIDE))
        return lt_err(LT_EINVAL, "protocol %s: AutoAugment's CIFAR-10 policy needs RGB images of at most "
                      "%d px (this scale: %d channels, %d px)", p->name, LT_AUTOAUG_MAX_SIDE,
                      p->dataset.channels, s->image_size);
    out->autoaug = a->autoaug;
    out->cutout_holes = a->cutout_holes;
    out->cutout_length = a->cutout_length;
    if (a->test_kind == LT_PROTO_TEST_RESIZE_CROP && a->test_resize != s->store_size)
        return lt_err(LT_EINVAL, "protocol %s: the test resize (%d) must equal the stored size (%d)",
                      p->name, a->test_resize, s->store_size);
    for (int ch = 0; ch < 3; ch++) {
        /* unused channels get an identity normalisation */
        out->mean[ch] = ch < p->norm.n ? (float)p->norm.mean[ch] : 0.0f;
        out->std[ch] = ch < p->norm.n ? (float)p->norm.std[ch] : 1.0f;
    }
    return LT_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int lt_protocol_list(const char *dir, lt_protocol_list_fn fn, void *ud) {
    if (!fn) return lt_err(LT_EINVAL, "lt_protocol_list: NULL callback");
    dir = default_dir(dir);
    DIR *d = opendir(dir);
    if (!d) return lt_err(LT_EIO, "protocol directory %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = LT_OK;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l <= 5 || strcmp(e->d_name + l - 5, ".json")) continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) {
                rc = lt_err(LT_ENOMEM, "lt_protocol_list: out of memory");
                break;
            }
            names = nn;
            cap = nc;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = lt_err(LT_ENOMEM, "lt_protocol_list: out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    /* readdir order depends on the file system; listings should not */
    if (rc == LT_OK && n > 1) qsort(names, n, sizeof *names, cmp_str);
    lt_protocol *p = rc == LT_OK ? malloc(sizeof *p) : NULL;
    if (rc == LT_OK && !p) rc = lt_err(LT_ENOMEM, "lt_protocol_list: out of memory");
    for (size_t i = 0; rc == LT_OK && i < n; i++) {
        char path[LT_PROTO_PATH_MAX];
        int w = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int st;
        char msg[1024];
        if (w < 0 || (size_t)w >= sizeof path)
            st = lt_err(LT_EINVAL, "protocol path too long: %s/%s", dir, names[i]);
        else
            st = lt_protocol_load(path, p);
        snprintf(msg, sizeof msg, "%s", st == LT_OK ? "" : lt_errmsg());
        rc = fn(ud, path, st == LT_OK ? p : NULL, st, msg);
    }
    free(p);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}
