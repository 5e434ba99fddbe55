/* fixtures_proto.c — see fixtures_proto.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixtures_proto.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures_img.h"
#include "lt.h"
#include "lt_io.h"

const char *fx_fmnist_missing(void)
{
    static const char *const f[4] = {FX_FMNIST_TRAIN, FX_FMNIST_TRAIN_LABELS, FX_FMNIST_TEST,
                                     FX_FMNIST_TEST_LABELS};
    for (int i = 0; i < 4; i++)
        if (access(f[i], R_OK) != 0) return f[i];
    return NULL;
}

const char *fx_train_blocker(const char *asan_why)
{
    static char why[300];
    if (FX_UNDER_ASAN && asan_why) return asan_why;
    if (access(FX_FMNIST_TRAIN, F_OK) != 0) {
        snprintf(why, sizeof why, "%s absent", FX_FMNIST_TRAIN);
        return why;
    }
    return NULL;
}

int fx_tiny_protocol_as(const char *dir, const char *name, int epochs, char *out, size_t cap)
{
    return fx_protocol_cut(dir, name, epochs, 120, 300, 64, out, cap);
}

int fx_protocol_cut(const char *dir, const char *name, int epochs, int per_class, int test_subset, int batch,
                    char *out, size_t cap)
{
    char *s;
    size_t n;
    if (lt_io_read_all("protocols/fmnist_lt_r100.json", &s, &n)) return -1;
    cJSON *p = cJSON_Parse(s);
    free(s);
    if (!p) return -1;
    cJSON_ReplaceItemInObject(p, "protocol", cJSON_CreateString(name));
    cJSON *ci = cJSON_GetObjectItem(cJSON_GetObjectItem(p, "scales"), "ci");
    cJSON_ReplaceItemInObject(ci, "subsample_train_per_class", cJSON_CreateNumber(per_class));
    cJSON_ReplaceItemInObject(ci, "test_subset", cJSON_CreateNumber(test_subset));
    cJSON *s1 = cJSON_GetObjectItem(ci, "stage1");
    cJSON_ReplaceItemInObject(s1, "batch", cJSON_CreateNumber(batch));
    if (epochs > 0) {
        cJSON_ReplaceItemInObject(s1, "epochs", cJSON_CreateNumber(epochs));
        /* the warm-up must end before the last epoch */
        cJSON *sch = cJSON_GetObjectItem(s1, "schedule");
        const cJSON *w = cJSON_GetObjectItem(sch, "warmup_epochs");
        if (cJSON_IsNumber(w) && w->valuedouble >= epochs)
            cJSON_ReplaceItemInObject(sch, "warmup_epochs", cJSON_CreateNumber(epochs - 1));
    }
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(ci, "stage2"), "batch", cJSON_CreateNumber(batch));
    char *text = cJSON_Print(p);
    cJSON_Delete(p);
    if (!text) return -1;
    snprintf(out, cap, "%s/%s.json", dir, name);
    FILE *f = fopen(out, "w");
    int rc = f && fputs(text, f) >= 0 ? 0 : -1;
    if (f && fclose(f)) rc = -1;
    free(text);
    return rc;
}

int fx_tiny_protocol(const char *dir, char *out, size_t cap)
{
    return fx_tiny_protocol_as(dir, "fmnist_lt_tiny", 0, out, cap);
}

void fx_request(lt_run_request *r, const char *proto, const char *root, const char *method, int threads)
{
    /* the last 16 requests' roots: a request outlives the caller's buffer */
    static char roots[16][600];
    static int k;
    char *slot = roots[k++ % 16];
    if (root[0] == '/')
        snprintf(slot, sizeof roots[0], "%s", root);
    else
        snprintf(slot, sizeof roots[0], "%s/%s", fx_scratch, root);
    lt_run_request_default(r);
    r->protocol = proto;
    r->scale = "ci";
    r->method = method;
    r->seed = 0;
    r->threads = threads;
    r->quiet = 1;
    r->results_root = slot;
}

void fx_run(const char *proto, const char *root, const char *method, const char *hparams,
            int kill_after_epoch, lt_run_outcome *o)
{
    lt_run_request r;
    fx_request(&r, proto, root, method, 2);
    r.hparams = hparams;
    r.kill_after_epoch = kill_after_epoch;
    assert_int_equal(lt_runner_run(&r, o), LT_OK);
}

void fx_run_ok(const lt_run_request *r, lt_run_outcome *o)
{
    assert_int_equal(lt_runner_run(r, o), LT_OK);
    if (!o->ok) fail_msg("%s failed: %s", r->method, o->reason);
}

cJSON *fx_read_json(const char *path)
{
    char *s;
    size_t n;
    assert_int_equal(lt_io_read_all(path, &s, &n), LT_OK);
    cJSON *j = cJSON_Parse(s);
    free(s);
    assert_non_null(j);
    return j;
}

double fx_logged(const lt_run_outcome *o, const char *key)
{
    char p[1300];
    snprintf(p, sizeof p, "%s/events.jsonl", o->run_dir);
    char *s;
    size_t n;
    assert_int_equal(lt_io_read_all(p, &s, &n), LT_OK);
    double v = NAN;
    for (char *save = NULL, *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *e = cJSON_Parse(line);
        assert_non_null(e);
        const cJSON *k = cJSON_GetObjectItem(e, "key"), *ev = cJSON_GetObjectItem(e, "event");
        if (cJSON_IsString(ev) && !strcmp(ev->valuestring, "method") && cJSON_IsString(k) &&
            !strcmp(k->valuestring, key)) {
            /* lt_events_num logs a non-finite value as null, whose
             * valuedouble is 0: read it back as NaN, so that a NaN the method
             * logged fails the comparisons made with it */
            const cJSON *val = cJSON_GetObjectItem(e, "value");
            v = cJSON_IsNumber(val) ? val->valuedouble : NAN;
        }
        cJSON_Delete(e);
    }
    free(s);
    return v;
}

void fx_assert_same_metrics(const lt_run_outcome *a, const lt_run_outcome *b)
{
    const double x[] = {a->top1, a->many, a->medium, a->ece, a->macro_f1};
    const double y[] = {b->top1, b->many, b->medium, b->ece, b->macro_f1};
    assert_memory_equal(x, y, sizeof x);
}

void fx_assert_same_outcome(const lt_run_outcome *a, const lt_run_outcome *b)
{
    fx_assert_same_metrics(a, b);
    char pa[1300], pb[1300];
    snprintf(pa, sizeof pa, "%s/per_class.csv", a->run_dir);
    snprintf(pb, sizeof pb, "%s/per_class.csv", b->run_dir);
    char *sa, *sb;
    size_t la, lb;
    assert_int_equal(lt_io_read_all(pa, &sa, &la), LT_OK);
    assert_int_equal(lt_io_read_all(pb, &sb, &lb), LT_OK);
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);
}

int fx_per_class_norms(const char *run_dir, double *norms, int cap)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/per_class.csv", run_dir);
    char *text = NULL;
    size_t n;
    assert_int_equal(lt_io_read_all(path, &text, &n), LT_OK);
    int k = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "class_id", 8)) continue;
        const char *last = strrchr(line, ',');
        assert_non_null(last);
        assert_true(k < cap);
        norms[k++] = last[1] ? atof(last + 1) : NAN;
    }
    free(text);
    return k;
}
