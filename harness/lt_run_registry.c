/* lt_run_registry.c — the method table, ABI check at registration, and
 * the hyper-parameter view methods read in init.
 *
 * The generated table (build/methods_table.c, one lt_method_<dir> per
 * methods/<dir>/) is read on first use; tests add their own methods with
 * lt_method_register before running them (a forked child inherits the
 * table). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lt_names.h"
#include "lt_run_internal.h"

#define LT_MAX_METHODS 128

static const lt_method *g_methods[LT_MAX_METHODS];
static int g_n, g_loaded;

static int check(const lt_method *m) {
    if (!m) return lt_err(LT_EINVAL, "method: NULL entry");
    /* Append-only struct: a method built for an older ABI still fits (the
     * members it lacks are read as absent); a newer one does not. */
    if (m->abi < 1 || m->abi > LT_METHOD_ABI)
        return lt_err(LT_EABI, "method '%s': built for method ABI %d, this harness reads ABI 1..%d",
                      m->name ? m->name : "?", m->abi, LT_METHOD_ABI);
    if (!m->name || !m->name[0] || strlen(m->name) >= 48)
        return lt_err(LT_EINVAL, "method: missing or too long name");
    if (!lt_name_valid(m->name, 48))   /* the rule result files are held to (lt_names.h) */
        return lt_err(LT_EINVAL, "method '%s': name must be [a-z0-9_]", m->name);
    if (!m->version || !m->version[0]) return lt_err(LT_EINVAL, "method '%s': no version", m->name);
    if (!m->fidelity || (strcmp(m->fidelity, "official-code") && strcmp(m->fidelity, "paper") &&
                         strcmp(m->fidelity, "reconstructed")))
        return lt_err(LT_EINVAL, "method '%s': fidelity must be official-code, paper or reconstructed",
                      m->name);
    cJSON *d = cJSON_Parse(m->defaults ? m->defaults : "{}");
    int ok = cJSON_IsObject(d);
    cJSON_Delete(d);
    if (!ok) return lt_err(LT_EINVAL, "method '%s': defaults are not a JSON object", m->name);
    if (m->stage1_from && !strcmp(m->stage1_from, m->name))
        return lt_err(LT_EINVAL, "method '%s': stage1_from names itself", m->name);
    return LT_OK;
}

static int add(const lt_method *m) {
    LT_TRY(check(m));
    for (int i = 0; i < g_n; i++)
        if (!strcmp(g_methods[i]->name, m->name)) {
            if (g_methods[i] == m) return LT_OK;
            return lt_err(LT_EINVAL, "method '%s' registered twice", m->name);
        }
    if (g_n == LT_MAX_METHODS) return lt_err(LT_EINVAL, "method table full (%d)", LT_MAX_METHODS);
    /* keep name order, so listings and error messages are stable */
    int at = g_n;
    while (at > 0 && strcmp(g_methods[at - 1]->name, m->name) > 0) {
        g_methods[at] = g_methods[at - 1];
        at--;
    }
    g_methods[at] = m;
    g_n++;
    return LT_OK;
}

static void load_table(void) {
    if (g_loaded) return;
    g_loaded = 1;
    for (int i = 0; lt_method_table[i]; i++) {
        const lt_method *m = lt_method_table[i]();
        /* A broken built-in is reported when it is asked for by name (it
         * stays out of the table) rather than aborting every command. */
        if (add(m) != LT_OK) fprintf(stderr, "ltbench: %s (method left out)\n", lt_errmsg());
    }
}

int lt_method_register(const lt_method *m) {
    load_table();
    return add(m);
}

int lt_method_count(void) {
    load_table();
    return g_n;
}

const lt_method *lt_method_at(int i) {
    load_table();
    return i >= 0 && i < g_n ? g_methods[i] : NULL;
}

const lt_method *lt_method_find(const char *name) {
    load_table();
    for (int i = 0; name && i < g_n; i++)
        if (!strcmp(g_methods[i]->name, name)) return g_methods[i];
    return NULL;
}

void lt_method_names(char *buf, size_t cap) {
    load_table();
    size_t len = 0;
    if (cap) buf[0] = 0;
    for (int i = 0; i < g_n && len + 1 < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", g_methods[i]->name);
}

/* ---- hyper-parameters -------------------------------------------------------- */

int lt_method_wants_bank(const lt_method *m, const void *st) {
    /* a hook appended in ABI 2 exists only in tables built for ABI >= 2 */
    if (m->abi >= 2 && m->needs_feature_bank) return m->needs_feature_bank(st) != 0;
    return (m->flags & LT_METHOD_NEEDS_FEATURE_BANK) != 0;
}

int lt_method_hparams(const lt_method *m, const char *overrides, cJSON **out) {
    *out = cJSON_Parse(m->defaults ? m->defaults : "{}");
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        return lt_err(LT_EINVAL, "method '%s': defaults are not a JSON object", m->name);
    }
    if (!overrides || !overrides[0]) return LT_OK;
    cJSON *ov = cJSON_Parse(overrides);
    int rc = LT_OK;
    if (!cJSON_IsObject(ov)) {
        rc = lt_err(LT_EINVAL, "hparams: not a JSON object: %s", overrides);
    } else {
        cJSON *it;
        cJSON_ArrayForEach(it, ov) {
            cJSON *d = cJSON_GetObjectItemCaseSensitive(*out, it->string);
            if (!d) {
                rc = lt_err(LT_EINVAL, "hparams: method '%s' has no hyper-parameter '%s'", m->name,
                            it->string);
                break;
            }
            int same = (cJSON_IsNumber(d) && cJSON_IsNumber(it)) || (cJSON_IsBool(d) && cJSON_IsBool(it)) ||
                       (cJSON_IsString(d) && cJSON_IsString(it));
            if (!same) {
                rc = lt_err(LT_EINVAL, "hparams: '%s' of method '%s' has another type", it->string, m->name);
                break;
            }
            cJSON_ReplaceItemInObjectCaseSensitive(*out, it->string, cJSON_Duplicate(it, 1));
        }
    }
    cJSON_Delete(ov);
    if (rc) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

static const cJSON *hp_get(const lt_hparams *hp, const char *key) {
    return hp && hp->obj ? cJSON_GetObjectItemCaseSensitive(hp->obj, key) : NULL;
}

int lt_hp_has(const lt_hparams *hp, const char *key) { return hp_get(hp, key) != NULL; }

int lt_hp_num(const lt_hparams *hp, const char *key, double *out) {
    const cJSON *v = hp_get(hp, key);
    if (cJSON_IsNumber(v)) { *out = v->valuedouble; return LT_OK; }
    if (cJSON_IsBool(v)) { *out = cJSON_IsTrue(v) ? 1.0 : 0.0; return LT_OK; }
    return lt_err(LT_EINVAL, "hparams: '%s' %s", key, v ? "is not a number" : "is not set");
}

int lt_hp_int(const lt_hparams *hp, const char *key, long *out) {
    double d;
    LT_TRY(lt_hp_num(hp, key, &d));
    if (d != floor(d) || fabs(d) > 9e15) return lt_err(LT_EINVAL, "hparams: '%s' is not an integer", key);
    *out = (long)d;
    return LT_OK;
}

int lt_hp_str(const lt_hparams *hp, const char *key, const char **out) {
    const cJSON *v = hp_get(hp, key);
    if (cJSON_IsString(v)) { *out = v->valuestring; return LT_OK; }
    return lt_err(LT_EINVAL, "hparams: '%s' %s", key, v ? "is not a string" : "is not set");
}

int lt_hp_choice(const lt_hparams *hp, const char *key, const char *const *names, int *out) {
    const char *s;
    LT_TRY(lt_hp_str(hp, key, &s));
    char list[512];
    size_t len = 0;
    list[0] = 0;
    for (int i = 0; names[i]; i++) {
        if (!strcmp(s, names[i])) {
            *out = i;
            return LT_OK;
        }
        len += (size_t)snprintf(list + len, len < sizeof list ? sizeof list - len : 0, "%s%s", i ? ", " : "",
                                names[i]);
    }
    return lt_err(LT_EINVAL, "hparams: '%s' is '%s' (expected one of: %s)", key, s, list);
}
