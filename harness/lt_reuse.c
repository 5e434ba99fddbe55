/* lt_reuse.c — the re-use rule of reproduce and sweep (lt_fingerprint.h):
 * whether a finished run can stand for the one this process would make
 * (lt_result_reusable), and for a method run with its default
 * hyper-parameters (lt_result_reusable_m). Apart from lt_fingerprint.c
 * because the second needs the method registry (lt_method_hparams), which
 * the programs that only read result files (the fuzz targets) do not link. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt.h"
#include "lt_fingerprint.h"
#include "lt_io.h"
#include "lt_run_internal.h"

/* A finished run that can stand for this request: status ok, made from the
 * same protocol file and dataset build, by the same method version (else 0,
 * why says which), and then, under the strict rule, by this engine from a
 * clean tree with the same numerics fingerprint (lt_fingerprint_stale). A
 * run that passes the first checks but not the second is 2 under --reuse
 * any (used, with why saying what differs), 0 under strict. */
int lt_result_reusable(const char *result_path, const char *proto_sha, const char *manifest,
                       const char *method_version, const lt_fingerprint *now, int any, char *why, size_t cap)
{
    lt_run_record r;
    FILE *f = fopen(result_path, "r");
    if (!f) {
        snprintf(why, cap, "no result yet");
        return 0;
    }
    fclose(f);
    if (lt_run_record_read(result_path, &r) != LT_OK) {
        snprintf(why, cap, "%s", lt_errmsg());
        return 0;
    }
    if (!r.ok) snprintf(why, cap, "the last attempt failed: %s", r.reason);
    else if (strcmp(r.protocol_sha256, proto_sha)) snprintf(why, cap, "the protocol file changed since it ran");
    else if (manifest[0] && r.manifest_sha256[0] && strcmp(r.manifest_sha256, manifest))
        snprintf(why, cap, "the dataset build changed since it ran");
    else if (method_version && r.method_version[0] && strcmp(r.method_version, method_version))
        snprintf(why, cap, "method version %s, now %s", r.method_version, method_version);
    else {
        lt_fingerprint run;
        lt_fingerprint_of_record(&r, &run);
        char fw[256];
        if (!lt_fingerprint_stale(&run, now, fw, sizeof fw)) return 1;
        /* another backend, math mode or layout is another experiment, not an
         * older build of this one: never re-used, not even under --reuse any */
        const char *rb = lt_backend_kind_name(run.kind), *nb = lt_backend_kind_name(now->kind);
        /* the backend; for cuda (both, once the backends agree) the math mode and the layout */
        const struct { const char *what, *run, *now; } exp[] = {
            {"backend", rb, nb}, {"math mode", run.math, now->math}, {"layout", run.layout, now->layout}};
        const int n_exp = now->kind == LT_BACKEND_CUDA ? 3 : 1;
        for (int k = 0; k < n_exp; k++)
            if (strcmp(exp[k].run, exp[k].now)) {
                snprintf(why, cap, "%s %s, now %s: another experiment (not re-used under --reuse any either)",
                         exp[k].what, exp[k].run[0] ? exp[k].run : "(unknown)", exp[k].now);
                return 0;
            }
        snprintf(why, cap, "stale: %s", fw);
        return any ? 2 : 0;
    }
    return 0;
}

/* 1 when result_path's method.hparams are hparams: every key it has is
 * one of hparams with the same value. A key it lacks was added to the
 * method later; its default keeps the method's numbers, or the method's
 * version (checked before) would have been bumped. */
static int same_hparams(const char *result_path, const cJSON *hparams)
{
    char *text = NULL;
    size_t n = 0;
    if (lt_io_read_all(result_path, &text, &n) != LT_OK) {
        lt_err_clear();
        return 0;
    }
    cJSON *doc = cJSON_ParseWithLength(text, n);
    free(text);
    const cJSON *hp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "method"), "hparams");
    int same = cJSON_IsObject(hp);
    for (const cJSON *k = same ? hp->child : NULL; k && same; k = k->next)
        same = cJSON_Compare(k, cJSON_GetObjectItemCaseSensitive(hparams, k->string), 1);
    cJSON_Delete(doc);
    return same;
}

int lt_result_reusable_m(const char *result_path, const char *proto_sha, const char *manifest, const lt_method *m,
                         const lt_fingerprint *now, int any, char *why, size_t cap)
{
    const int use = lt_result_reusable(result_path, proto_sha, manifest, m->version, now, any, why, cap);
    if (!use) return 0;
    cJSON *hp = NULL;
    if (lt_method_hparams(m, NULL, &hp) != LT_OK) {
        snprintf(why, cap, "%s", lt_errmsg());
        return 0;
    }
    const int same = same_hparams(result_path, hp);
    cJSON_Delete(hp);
    if (!same) {
        snprintf(why, cap, "made with other hyper-parameters than the method's defaults (ltbench run --hparams): "
                 "another experiment (not re-used under --reuse any either)");
        return 0;
    }
    return use;
}
