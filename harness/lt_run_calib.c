/* lt_run_calib.c — temperature scaling of the final model's scores on the
 * dataset's validation split, for the ece_ts metric (lt_run_internal.h).
 *
 * Why: the raw ECE reads softmax(s) at T = 1, which says something only
 * where s are a probability model's logits; the field compares calibration
 * after temperature scaling (Guo et al. 2017), one T for all classes fitted
 * by the validation NLL. The split is the one methods get from the host's
 * validation service (never the test set, never the long-tailed training
 * rows); a dataset without one gets ece_ts = null with the reason, never a
 * fit on the test set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_run_internal.h"

typedef struct { float *s; int kind; } val_buf;

static int val_batch(lt_child *c, void *ud, long first, int n, const int32_t *ids, const float *x) {
    val_buf *b = ud;
    float *out = b->s + (size_t)first * c->C;
    int kind;
    LT_TRY(lt_run_scores(c, n, ids, x, out, &kind));
    if (first > 0 && kind != b->kind)
        return lt_err(LT_EINVAL, "method %s: predict changed its score kind between batches", c->M->name);
    b->kind = kind;
    lt_run_scores_to_logits(out, (size_t)n * c->C, kind);
    return LT_OK;
}

int lt_run_calibrate(lt_child *c) {
    lt_run_summary *sum = c->sum;
    sum->cal_done = 0;
    sum->cal_reason[0] = '\0';
    if (lt_run_open_val(c) != LT_OK) {
        /* no split (iNaturalist, LVIS, a fixture) or one that cannot be
         * used: recorded, and the run goes on without ece_ts */
        snprintf(sum->cal_reason, sizeof sum->cal_reason, "no validation split: %s", lt_errmsg());
        lt_err_clear();
        return LT_OK;
    }
    const lt_dataset *v = &c->host.val;
    if (v->n <= 0) {
        snprintf(sum->cal_reason, sizeof sum->cal_reason, "the validation split is empty");
        return LT_OK;
    }
    if (v->n > (long)(INT32_MAX / 2))
        return lt_err(LT_EINVAL, "validation split: %ld images, more than the calibration handles", v->n);
    val_buf b = {lt_alloc((size_t)v->n * c->C * sizeof(float)), LT_SCORES_LOGITS};
    if (!b.s) return lt_err(LT_ENOMEM, "calibration: out of memory for %ld x %d validation scores", v->n, c->C);
    int rc = lt_run_pass(c, v, val_batch, &b);
    if (!rc) {
        rc = lt_temp_fit((int)v->n, c->C, b.s, v->labels, &sum->cal_T, &sum->cal_nll_before, &sum->cal_nll_after,
                         &sum->cal_at_bound);
        if (rc) rc = lt_err_wrap(rc, "calibration on the validation split");
    }
    lt_free(b.s);
    if (rc) return rc;
    sum->cal_done = 1;
    sum->cal_val_n = v->n;
    return LT_OK;
}
