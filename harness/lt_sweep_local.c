/* lt_sweep_local.c — the sweep's local executor: N runs at a time on this
 * machine (lt_sweep.h says what it promises). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lt_fingerprint.h"
#include "lt_run_internal.h"
#include "lt_runner.h"
#include "lt_sweep.h"

/* exit codes of a run's child process */
enum { CH_OK = 0, CH_FAILED = 1, CH_OTHER = 3, CH_ERROR = 4 };

static int mkdir_p(const char *path)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0777) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0777) && errno != EEXIST ? -1 : 0;
}

/* <results>/sweep/logs/<protocol>.<scale>.<method dir>.seed<k>.log, the
 * method as its run directory names it (ce, ce@cuda, ce@cuda-nhwc, ...), so
 * that sweeps of one grid on other devices, math modes or layouts keep
 * their logs apart */
static void log_path(const lt_sweep_plan *pl, int i, char *buf, size_t cap)
{
    const lt_sweep_run *r = &pl->runs[i];
    char m[LT_LB_NAME + 32];
    if (lt_run_device_method_dir(&pl->dev, r->m->name, m, sizeof m)) snprintf(m, sizeof m, "%s", r->m->name);
    snprintf(buf, cap, "%s/sweep/logs/%s.%s.%s.seed%llu.log", pl->results, pl->protos[r->proto].p->name, pl->scale, m,
             (unsigned long long)r->seed);
}

/* The child: one run through the runner, its output in the run's log.
 * Never returns. */
static void child(const lt_sweep_plan *pl, int i, const lt_sweep_local_opts *o, pid_t parent)
{
    /* dies with the sweep (SIGKILL included); the runner's own training
     * child dies with this one in turn, so no run outlives a killed sweep
     * and every lock is dropped by the kernel */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(CH_ERROR);
    /* its own process group, with the training child the runner forks:
     * the sweep stops a run by killing the group, both at once */
    setpgid(0, 0);
    signal(SIGINT, SIG_IGN);   /* stopped by the sweep (SIGKILL), not by the terminal's Ctrl-C */
    signal(SIGTERM, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    const lt_sweep_run *r = &pl->runs[i];
    char lp[1400];
    log_path(pl, i, lp, sizeof lp);
    int fd = open(lp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
    if (fd < 0) _exit(CH_ERROR);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
    setvbuf(stdout, NULL, _IOLBF, 0);
    char host[256] = "?", stamp[32];
    gethostname(host, sizeof host);
    lt_iso8601_now(stamp);
    printf("== sweep %s: pid %ld on %s, %d thread(s)\n", stamp, (long)getpid(), host, pl->threads);

    char dir[1100], result[1200];
    if (lt_sweep_run_dir(pl, i, dir, sizeof dir)) {
        printf("sweep error: %s\n", lt_errmsg());
        _exit(CH_ERROR);
    }
    snprintf(result, sizeof result, "%s/result.json", dir);
    lt_fingerprint now;
    lt_fingerprint_current_on(&now, pl->threads, &pl->dev_info, pl->dev.layout);
    const lt_sweep_proto *sp = &pl->protos[r->proto];
    for (int attempt = 0; attempt < 100; attempt++) {
        lt_run_request req;
        lt_run_request_default(&req);
        req.protocol = sp->path;
        req.scale = pl->scale;
        req.method = r->m->name;
        req.seed = r->seed;
        req.threads = pl->threads;
        req.results_root = pl->results;
        req.data_dir = o->data_dir;
        req.time_limit_s = o->time_limit_s;
        req.device = pl->device;
        req.math = pl->math;
        req.layout = pl->layout;
        req.deterministic = pl->dev.deterministic;
        req.log = stdout;
        lt_run_outcome out;
        int rc = lt_runner_run(&req, &out);
        if (rc == LT_OK) _exit(out.ok ? CH_OK : CH_FAILED);
        if (rc != LT_EBUSY) {
            printf("sweep error: %s\n", lt_errmsg());
            _exit(CH_ERROR);
        }
        /* another process runs it (an overlapping sweep, a `ltbench run`):
         * wait for its lock, then ask the skip rule again, so the run is
         * trained once whoever started it */
        printf("sweep: %s\n", lt_errmsg());
        lt_dir_lock lk;
        if (lt_dir_lock_take(&lk, dir, 1, 0, stdout) != LT_OK) {
            printf("sweep error: %s\n", lt_errmsg());
            _exit(CH_ERROR);
        }
        lt_dir_lock_release(&lk);
        char why[600];
        if (lt_result_reusable_m(result, sp->p->sha256, sp->manifest, r->m, &now, pl->reuse_any, why,
                                 sizeof why)) {
            printf("sweep: finished by another process: %s\n", result);
            _exit(CH_OTHER);
        }
        printf("sweep: after the other process: %s; running it\n", why);
    }
    printf("sweep error: %s stayed busy through 100 attempts\n", dir);
    _exit(CH_ERROR);
}

/* The last "sweep error: " line of a run's log, else a fallback. */
static void error_from_log(const lt_sweep_plan *pl, int i, char *buf, size_t cap, const char *fallback)
{
    char lp[1400], line[1024];
    log_path(pl, i, lp, sizeof lp);
    snprintf(buf, cap, "%s (log %s)", fallback, lp);
    FILE *f = fopen(lp, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "sweep error: ", 13)) snprintf(buf, cap, "%s", line + 13);
    }
    fclose(f);
}

static void skip_dependents(lt_sweep_plan *pl, int failed, lt_sweep_summary *s)
{
    char dn[256];
    lt_sweep_run_name(pl, failed, dn, sizeof dn);
    for (int j = 0; j < pl->n_runs; j++) {
        lt_sweep_run *d = &pl->runs[j];
        if (d->dep != failed || d->state != LT_SW_PENDING) continue;
        char reason[600];
        snprintf(reason, sizeof reason, "%s", pl->runs[failed].why);
        d->state = LT_SW_SKIPPED;
        snprintf(d->why, sizeof d->why, "its stage 1 (%s) %s: %s", dn,
                 pl->runs[failed].state == LT_SW_SKIPPED ? "was skipped" : "failed", reason);
        s->n_skipped++;
        skip_dependents(pl, j, s);
    }
}

static void sleep_s(double t)
{
    struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
    nanosleep(&ts, NULL);   /* a signal ends it early: the loop looks at *stop */
}

/* Waits up to secs until nobody holds dir/.lock (a shared try-lock, given
 * back at once). */
static void wait_unlocked(const char *dir, double secs)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/.lock", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    for (double t = 0; t < secs; t += 0.01) {
        if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
            flock(fd, LOCK_UN);
            break;
        }
        sleep_s(0.01);
    }
    close(fd);
}

static void progress(const lt_sweep_plan *pl, const lt_sweep_summary *s, int running, double t0, double sum_s,
                     int n_timed, int jobs, FILE *f, const char *what)
{
    const int done = s->n_ok + s->n_failed + s->n_skipped + s->n_other;
    char eta[64] = "?";
    if (n_timed > 0) {
        /* mean wall time of the runs that finished, spread over the slots */
        double left = (double)(s->n_todo - done) * (sum_s / n_timed) / (jobs > 0 ? jobs : 1);
        eta[0] = '~';
        lt_fmt_eta(left, eta + 1, sizeof eta - 1);
    }
    (void)pl;
    fprintf(f, "sweep: [%d/%d done, %d running, %d failed, %d skipped, %.0f s, ETA %s] %s\n", done, s->n_todo,
            running, s->n_failed, s->n_skipped, lt_now_s() - t0, eta, what);
    fflush(f);
}

int lt_sweep_local(lt_sweep_plan *pl, const lt_sweep_local_opts *o, lt_sweep_summary *s)
{
    memset(s, 0, sizeof *s);
    FILE *f = o->log ? o->log : stdout;
    const int jobs = o->jobs > 0 ? o->jobs : 1;
    char logs[1200];
    snprintf(logs, sizeof logs, "%s/sweep/logs", pl->results);
    if (mkdir_p(logs)) return lt_err(LT_EIO, "mkdir %s: %s", logs, strerror(errno));
    for (int i = 0; i < pl->n_runs; i++) {
        if (pl->runs[i].state == LT_SW_PENDING) s->n_todo++;
        else s->n_reused++;
        pl->runs[i].pid = 0;
    }
    const double t0 = lt_now_s();
    double sum_s = 0;
    int n_timed = 0, running = 0, rc = LT_OK;
    const pid_t self = getpid();
    fprintf(f, "sweep: %d runs to do, %d re-used; %d at a time, %d thread%s each; logs in %s\n", s->n_todo,
            s->n_reused, jobs, pl->threads, pl->threads == 1 ? "" : "s", logs);
    fflush(f);
    for (;;) {
        if (o->stop && *o->stop) break;
        /* start what is ready, in plan order (dependencies first) */
        for (int i = 0; i < pl->n_runs && running < jobs && rc == LT_OK; i++) {
            lt_sweep_run *r = &pl->runs[i];
            if (r->state != LT_SW_PENDING) continue;
            if (r->dep >= 0) {
                lt_sweep_state ds = pl->runs[r->dep].state;
                if (ds != LT_SW_DONE && ds != LT_SW_DONE_ANY && ds != LT_SW_OK && ds != LT_SW_OTHER) continue;
            }
            fflush(NULL);
            pid_t pid = fork();
            if (pid < 0) {
                rc = lt_err(LT_EIO, "fork: %s", strerror(errno));
                break;
            }
            if (pid == 0) child(pl, i, o, self);
            setpgid(pid, pid);   /* as the child does: whichever runs first */
            r->pid = pid;
            r->state = LT_SW_RUNNING;
            r->t_start = lt_now_s();
            running++;
            char name[256], what[300];
            lt_sweep_run_name(pl, i, name, sizeof name);
            snprintf(what, sizeof what, "started %s", name);
            progress(pl, s, running, t0, sum_s, n_timed, jobs, f, what);
        }
        if (!running) break;   /* all tried, or the rest wait for dependencies that failed (skipped) */
        /* reap: poll at 10 Hz so a stop request is seen promptly */
        int reaped = 0;
        for (int i = 0; i < pl->n_runs; i++) {
            lt_sweep_run *r = &pl->runs[i];
            if (r->state != LT_SW_RUNNING) continue;
            int st;
            pid_t w = waitpid((pid_t)r->pid, &st, WNOHANG);
            if (w == 0 || (w < 0 && errno == EINTR)) continue;
            reaped = 1;
            running--;
            r->pid = 0;
            const int code = w > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            char dir[1100], result[1200], name[256], what[900];
            lt_sweep_run_name(pl, i, name, sizeof name);
            lt_sweep_run_dir(pl, i, dir, sizeof dir);
            snprintf(result, sizeof result, "%s/result.json", dir);
            lt_run_outcome out;
            const int have = (code == CH_OK || code == CH_FAILED || code == CH_OTHER) &&
                             lt_result_read(result, &out) == LT_OK;
            lt_err_clear();
            if (have && out.ok) {
                r->state = code == CH_OTHER ? LT_SW_OTHER : LT_SW_OK;
                r->top1 = out.top1;
                r->total_s = out.total_s;
                if (code == CH_OTHER) s->n_other++;
                else {
                    s->n_ok++;
                    sum_s += lt_now_s() - r->t_start;
                    n_timed++;
                }
                snprintf(what, sizeof what, "%s %s: top-1 %.2f%% (%.1f s)", code == CH_OTHER ? "re-used" : "ok",
                         name, 100 * out.top1, lt_now_s() - r->t_start);
            } else {
                r->state = LT_SW_FAILED;
                if (have) snprintf(r->why, sizeof r->why, "%s", out.reason);
                else if (code >= 0) error_from_log(pl, i, r->why, sizeof r->why, "the runner gave no result");
                else
                    snprintf(r->why, sizeof r->why, "its sweep child ended by signal %d",
                             WIFSIGNALED(st) ? WTERMSIG(st) : -1);
                s->n_failed++;
                sum_s += lt_now_s() - r->t_start;
                n_timed++;
                snprintf(what, sizeof what, "FAILED %s: %s", name, r->why);
                skip_dependents(pl, i, s);
            }
            progress(pl, s, running, t0, sum_s, n_timed, jobs, f, what);
        }
        if (!reaped) sleep_s(0.1);
    }
    if (running) {
        /* stopped: kill what runs; the kernel drops their locks, and their
         * checkpoints stay for the next sweep to resume from */
        s->interrupted = 1;
        for (int i = 0; i < pl->n_runs; i++)
            if (pl->runs[i].state == LT_SW_RUNNING) {
                kill(-(pid_t)pl->runs[i].pid, SIGKILL);   /* the run's group: runner and training child */
                kill((pid_t)pl->runs[i].pid, SIGKILL);
            }
        for (int i = 0; i < pl->n_runs; i++) {
            lt_sweep_run *r = &pl->runs[i];
            if (r->state != LT_SW_RUNNING) continue;
            while (waitpid((pid_t)r->pid, NULL, 0) < 0 && errno == EINTR) {}
            /* the training child is not ours to wait for: wait (bounded)
             * until the kernel has dropped its lock, so the next sweep
             * finds the directory free */
            char dir[1100];
            if (!lt_sweep_run_dir(pl, i, dir, sizeof dir)) wait_unlocked(dir, 10);
            r->state = LT_SW_PENDING;
            snprintf(r->why, sizeof r->why, "interrupted: resumes from its last epoch checkpoint");
        }
    } else if (o->stop && *o->stop) {
        s->interrupted = 1;
    }
    s->wall_s = lt_now_s() - t0;
    if (s->interrupted) {
        const int done = s->n_ok + s->n_failed + s->n_skipped + s->n_other;
        fprintf(f, "sweep: interrupted after %.0f s: %d of %d runs done; the rest resume when the same sweep runs again\n",
                s->wall_s, done, s->n_todo);
    }
    fflush(f);
    return rc;
}
