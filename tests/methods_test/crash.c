/* crash.c — deliberately broken methods, used only by tests/test_runner.c to
 * check the runner's isolation: the harness must survive each of them and
 * write a failed result row with a reason.
 *
 *   test_crash  segfaults in its loss hook (a real store through NULL)
 *   test_nan    returns a NaN loss with status LT_OK (the runner must notice)
 *   test_slow   sleeps in every loss call (the time limit must end it)
 *
 * Like a real method it includes only lt.h and lt_method.h (plus libc). */
#include <math.h>
#include <time.h>

#include "lt.h"
#include "lt_method.h"

/* Under `make asan` UBSan would report the null store and exit(1) before the
 * signal; the point here is the signal, so UBSan stays out of this function. */
#if defined(__has_attribute)
#if __has_attribute(no_sanitize)
#define CRASH_NO_UBSAN __attribute__((no_sanitize("undefined")))
#endif
#endif
#ifndef CRASH_NO_UBSAN
#define CRASH_NO_UBSAN
#endif

CRASH_NO_UBSAN
static int crash_loss(void *st, const lt_taps *t, double *loss, lt_grads *g) {
    (void)st; (void)t; (void)loss; (void)g;
    /* a volatile pointer to volatile: the compiler can neither prove the
     * pointer NULL (no trap instruction instead) nor drop the store, so this
     * is a genuine store to address 0: SIGSEGV */
    volatile int *volatile p = NULL;
    *p = 42;
    return LT_OK;
}

static int nan_loss(void *st, const lt_taps *t, double *loss, lt_grads *g) {
    (void)st;
    int rc = lt_softmax_ce(t->n, t->n_classes, t->logits, t->labels, NULL, NULL, loss, g->dlogits);
    *loss = NAN;
    return rc;
}

static int slow_loss(void *st, const lt_taps *t, double *loss, lt_grads *g) {
    (void)st;
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return lt_softmax_ce(t->n, t->n_classes, t->logits, t->labels, NULL, NULL, loss, g->dlogits);
}

static const lt_method crash_m = {.abi = LT_METHOD_ABI, .name = "test_crash", .version = "1",
                                  .cite = "none", .fidelity = "reconstructed", .defaults = "{}",
                                  .loss = crash_loss};
static const lt_method nan_m = {.abi = LT_METHOD_ABI, .name = "test_nan", .version = "1",
                                .cite = "none", .fidelity = "reconstructed", .defaults = "{}",
                                .loss = nan_loss};
static const lt_method slow_m = {.abi = LT_METHOD_ABI, .name = "test_slow", .version = "1",
                                 .cite = "none", .fidelity = "reconstructed", .defaults = "{}",
                                 .loss = slow_loss};

const lt_method *lt_method_test_crash(void) { return &crash_m; }
const lt_method *lt_method_test_nan(void) { return &nan_m; }
const lt_method *lt_method_test_slow(void) { return &slow_m; }
