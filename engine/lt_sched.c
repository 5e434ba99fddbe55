/* lt_sched.c — learning-rate schedules as pure functions of the iteration.
 *
 * Keeping the schedule stateless (no "scheduler.step()" counter) means a run
 * resumed from a checkpoint gets exactly the learning rate it would have had,
 * given only the global iteration it restarts from. */
#include "lt_loss.h"

#include <math.h>

/* Warm-up multiplier in (0, 1], or 1 once warm-up is over. */
static double warmup_factor(const lt_sched *s, long it, long ipe) {
    int we = s->warmup_epochs;
    if (we <= 0) return 1.0;
    if (s->warmup_per_epoch) {
        long e1 = it / ipe + 1;   /* 1-based epoch, as in the LDAM-DRW code */
        return e1 <= we ? (double)e1 / we : 1.0;
    }
    long W = (long)we * ipe;
    return it < W ? (double)(it + 1) / (double)W : 1.0;
}

double lt_sched_lr(const lt_sched *s, long it, long ipe) {
    LT_ASSERT(s != NULL);
    if (ipe < 1) ipe = 1;
    if (it < 0) it = 0;
    const double base = s->base_lr;
    const double warm = warmup_factor(s, it, ipe);

    switch (s->kind) {
    case LT_SCHED_COSINE_EPOCH: {
        long e = it / ipe + 1, W = s->warmup_epochs > 0 ? s->warmup_epochs : 0, T = s->epochs;
        if (W >= 2 && e < W)
            return base * (s->warmup_start + (1.0 - s->warmup_start) * (double)(e - 1) / (double)(W - 1));
        if (T <= W) return 0.0;
        if (e > T) e = T;         /* past the end the rate stays at 0 */
        return base * 0.5 * (1.0 + cos(M_PI * (double)(e - W) / (double)(T - W)));
    }
    case LT_SCHED_COSINE: {
        long W = s->warmup_epochs > 0 ? (long)s->warmup_epochs * ipe : 0;
        if (it < W) return base * warm;
        long T = (long)s->epochs * ipe - W;
        if (T <= 0) return 0.0;   /* warm-up covers the whole run: nothing left to anneal */
        long t = it - W;
        if (t > T) t = T;         /* past the end the rate stays at 0 */
        return base * 0.5 * (1.0 + cos(M_PI * (double)t / (double)T));
    }
    case LT_SCHED_MULTISTEP: {
        long e0 = it / ipe;       /* 0-based epoch: milestone m bites from epoch index m on */
        int nm = s->n_milestones;
        if (nm < 0) nm = 0;
        if (nm > (int)(sizeof s->milestones / sizeof s->milestones[0]))
            nm = (int)(sizeof s->milestones / sizeof s->milestones[0]);
        double lr = base * warm;
        for (int k = 0; k < nm; k++)
            if (e0 >= s->milestones[k]) lr *= s->gamma;
        return lr;
    }
    case LT_SCHED_CONSTANT:
    default:
        return base * warm;
    }
}
