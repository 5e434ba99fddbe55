/* lt_runner.c — lt_runner_run: resolve the request, run it in a forked
 * child, watch it, and turn whatever happens into a result row.
 *
 * The parent never trains and never starts an OpenMP team, so forking is
 * safe and a crash in a method (or in the engine under a method) only ends
 * the child. The child reports where it is over a pipe (stage, epoch, or
 * setup / evaluation) so a failure reason can say where it happened, and
 * reports a failure status's message the same way. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lt_run_internal.h"

void lt_run_request_default(lt_run_request *r) {
    memset(r, 0, sizeof *r);
    r->scale = "short";
    r->method = "ce";
    r->threads = 2;
    r->resume = 1;
}

int lt_run_dir(const char *root, const char *protocol, const char *scale, const char *method,
               uint64_t seed, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%s/runs/%s/%s/%s/seed%llu", root && root[0] ? root : "results", protocol, scale,
                     method, (unsigned long long)seed);
    if (n < 0 || (size_t)n >= cap) return lt_err(LT_EINVAL, "run directory path too long");
    return LT_OK;
}

int lt_run_dir_on(const char *root, const char *protocol, const char *scale, const char *method,
                  const lt_run_device *dev, uint64_t seed, char *buf, size_t cap) {
    char m[128];
    LT_TRY(lt_run_device_method_dir(dev, method, m, sizeof m));
    return lt_run_dir(root, protocol, scale, m, seed, buf, cap);
}

static int mkdirs(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return lt_err(LT_EIO, "mkdir %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return lt_err(LT_EIO, "mkdir %s: %s", tmp, strerror(errno));
    return LT_OK;
}

void lt_run_send(const lt_run_job *job, int type, int stage, int epoch, int code, const char *text) {
    if (job->fd < 0) return;
    lt_run_msg m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.stage = stage;
    m.epoch = epoch;
    m.code = code;
    snprintf(m.text, sizeof m.text, "%s", text ? text : "");
    /* one write of < PIPE_BUF bytes is atomic; a dead parent is not our problem */
    ssize_t w = write(job->fd, &m, sizeof m);
    (void)w;
}

/* "in stage 1 epoch 1", "in setup", "in evaluation"; final: the session
 * only re-evaluates a finished run. Epochs are sent from 0 and shown from 1,
 * as the progress lines count them. */
static void where_text(int stage, int epoch, int final, char *buf, size_t cap) {
    if (stage == 0) snprintf(buf, cap, "in setup (dataset, model)");
    else if (final) snprintf(buf, cap, "in the re-evaluation of the trained model");
    else if (stage < 0) snprintf(buf, cap, "in post-training / evaluation");
    else if (epoch < 0) snprintf(buf, cap, "in stage %d (stage begin)", stage);
    else snprintf(buf, cap, "in stage %d epoch %d", stage, epoch + 1);
}

/* Identity of a run's checkpoints: everything that must match to resume. */
void lt_run_identity(char *buf, size_t cap, const lt_protocol *p, const char *scale, const lt_method *M,
                     uint64_t seed, const cJSON *hparams, const lt_run_device *dev) {
    char *hp = cJSON_PrintUnformatted(hparams);
    char dv[128];
    lt_run_device_identity(dev, dv, sizeof dv);
    snprintf(buf, cap, "protocol=%s;sha256=%s;scale=%s;method=%s;method_version=%s;seed=%llu;hparams=%s;engine=%s%s",
             p->name, p->sha256, scale, M->name, M->version, (unsigned long long)seed, hp ? hp : "{}",
             LT_ENGINE_VERSION, dv);
    free(hp);
}

static void make_identity(lt_run_job *job) {
    lt_run_identity(job->identity, sizeof job->identity, &job->proto, job->scale->name, job->method,
                    job->req->seed, job->hparams, &job->dev);
}

static int resolve(const lt_run_request *req, lt_run_job *job) {
    memset(job, 0, sizeof *job);
    job->req = req;
    job->fd = -1;
    job->shared_fd = -1;
    job->log = req->log ? req->log : stdout;
    job->t0 = lt_now_s();
    lt_iso8601_now(job->started);
    if (!req->method || !(job->method = lt_method_find(req->method))) {
        char names[1024];
        lt_method_names(names, sizeof names);
        return lt_err(LT_EINVAL, "unknown method '%s' (known: %s)", req->method ? req->method : "(none)", names);
    }
    if (!req->protocol) return lt_err(LT_EINVAL, "no protocol given");
    LT_TRY(lt_run_device_parse(req->device, req->math, req->layout, req->deterministic, req->conv, &job->dev));
    char path[LT_PROTO_PATH_MAX];
    LT_TRY(lt_protocol_find(req->protocol, req->protocols_dir, path, sizeof path));
    LT_TRY(lt_protocol_load(path, &job->proto));
    LT_TRY(lt_protocol_scale(&job->proto, req->scale ? req->scale : "", &job->scale));
    LT_TRY(lt_method_hparams(job->method, req->hparams, &job->hparams));
    make_identity(job);
    const char *root = req->results_root && req->results_root[0] ? req->results_root : "results";
    LT_TRY(lt_run_dir_on(root, job->proto.name, job->scale->name, job->method->name, &job->dev, req->seed,
                         job->run_dir, sizeof job->run_dir));
    snprintf(job->ckpt_path, sizeof job->ckpt_path, "%s/ckpt.ltc", job->run_dir);
    snprintf(job->final_path, sizeof job->final_path, "%s/ckpt_final.ltc", job->run_dir);
    snprintf(job->result_path, sizeof job->result_path, "%s/result.json", job->run_dir);
    snprintf(job->events_path, sizeof job->events_path, "%s/events.jsonl", job->run_dir);
    snprintf(job->per_class_path, sizeof job->per_class_path, "%s/per_class.csv", job->run_dir);
    if (job->method->stage1_from) {
        char dir[1024];
        LT_TRY(lt_run_dir_on(root, job->proto.name, job->scale->name, job->method->stage1_from, &job->dev,
                             req->seed, dir, sizeof dir));
        snprintf(job->shared_final, sizeof job->shared_final, "%s/ckpt_final.ltc", dir);
    }
    /* every model of the run, the method's own modules included, is built
     * on this backend, and the result records what it describes */
    const int threads = req->threads > 0 ? req->threads : 2;
    if (job->dev.kind == LT_BACKEND_CUDA) {
        /* no CUDA in this process: the device is asked in a child, the
         * run's child makes the backend (lt_run_device.h) */
        lt_backend_info dev;
        LT_TRY(lt_run_device_probe(&job->dev, &dev));
        lt_run_env_capture(&job->env, threads, NULL, &dev);
        job->env.layout = job->dev.layout;   /* the model's, not the backend's */
        lt_run_numerics(&job->env, 1, job->numerics, sizeof job->numerics);
        return LT_OK;
    }
    lt_cpu_opts co;
    lt_cpu_opts_from_env(&co);
    if (req->conv && req->conv[0]) LT_TRY(lt_conv_path_parse(req->conv, &co.conv));
    LT_TRY(lt_backend_cpu_create(&co, &job->backend));
    lt_run_env_capture(&job->env, threads, job->backend, NULL);
    lt_run_numerics(&job->env, 0, job->numerics, sizeof job->numerics);
    return LT_OK;
}

/* What resolve allocated (also after it failed half-way). */
static void job_release(lt_run_job *job) {
    if (job->shared_fd >= 0) close(job->shared_fd);
    job->shared_fd = -1;
    cJSON_Delete(job->hparams);
    job->hparams = NULL;
    lt_backend_free(job->backend);
    job->backend = NULL;
}

/* Writes the failed row (and closes the event log with run_stop), unless
 * the directory holds a finished result that this session never began to
 * replace: it only re-evaluated the trained model (ckpt_final.ltc), or it
 * failed before deciding (a damaged final checkpoint, a dataset gone, a
 * shared stage 1 that failed, the time limit in setup). A finished result
 * is never destroyed for that: result.json, per_class.csv and events.jsonl
 * stay as they were and the failure is this call's error (status `code`). */
static int write_failed(const lt_run_job *job, lt_run_summary *sum, const char *reason, int code) {
    lt_run_outcome prev;
    if (!sum->restarted && lt_result_read(job->result_path, &prev) == LT_OK && prev.ok)
        return lt_err(code ? code : LT_ESTATE, "%s; the finished result in %s is kept as it was", reason,
                      job->run_dir);
    sum->ok = 0;
    sum->have_metrics = 0;
    snprintf(sum->reason, sizeof sum->reason, "%s", reason);
    sum->total_s = lt_now_s() - job->t0;
    unlink(job->per_class_path);   /* per_class.csv exists only beside an "ok" result */
    lt_events *ev;
    if (lt_events_open(&ev, job->events_path, -1) == LT_OK) {
        lt_events_str(ev, "run_stop", 0, -1, "status", "failed");
        lt_events_str(ev, "failure", 0, -1, "reason", reason);
        lt_events_close(ev);
    }
    if (!job->req->quiet) {
        fprintf(job->log, "  %s %s %s seed %llu: FAILED: %s\n", job->proto.name, job->scale->name,
                job->method->name, (unsigned long long)job->req->seed, reason);
        fflush(job->log);
    }
    return lt_result_write(job, sum);
}

/* The child's last words, gathered while waiting. */
typedef struct {
    int stage, epoch;
    int code;            /* status of a FAIL message */
    int final;           /* LT_MSG_MODE said LT_RUN_FINAL */
    char fail[496];
} watch;

static void take(watch *w, lt_run_summary *sum, const lt_run_msg *m) {
    if (m->type == LT_MSG_POS) {
        w->stage = m->stage;
        w->epoch = m->epoch;
    } else if (m->type == LT_MSG_FAIL) {
        snprintf(w->fail, sizeof w->fail, "%s", m->text);
        w->code = m->code;
        w->stage = m->stage;
        w->epoch = m->epoch;
    } else if (m->type == LT_MSG_MODE) {
        sum->restarted = m->code != LT_RUN_FINAL;
        w->final = m->code == LT_RUN_FINAL;
    } else if (m->type == LT_MSG_DATASET) {
        char t[sizeof m->text];
        snprintf(t, sizeof t, "%s", m->text);
        char *save = NULL, *f[4] = {0};
        f[0] = strtok_r(t, "\t", &save);
        for (int i = 1; i < 4 && f[i - 1]; i++) f[i] = strtok_r(NULL, "\t", &save);
        if (f[3]) {
            sum->have_dataset = 1;
            snprintf(sum->ds_name, sizeof sum->ds_name, "%s", f[0]);
            snprintf(sum->manifest_sha256, sizeof sum->manifest_sha256, "%s", f[1]);
            sum->train_size = atol(f[2]);
            sum->test_size = atol(f[3]);
        }
    }
}

/* The child keeps its own time limit: a parent that is stopped (SIGSTOP, a
 * debugger), swapped out or otherwise not watching must not let a run go on
 * past it. A POSIX timer on the parent's clock, absolute, so both fire at
 * the same instant t0 + limit, delivering SIGKILL, which nothing in a method
 * can catch, block or ignore; the parent reads a SIGKILL at or after the
 * limit as the timeout. The parent's watch loop stays as the second line. */
static int child_time_limit(const lt_run_job *job) {
    const double limit = job->req->time_limit_s;
    if (limit <= 0) return LT_OK;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGKILL;
    timer_t t;
    if (timer_create(CLOCK_MONOTONIC, &sev, &t) != 0)
        return lt_err(LT_EIO, "time limit: timer_create: %s", strerror(errno));
    const double at = job->t0 + limit;   /* lt_now_s() is CLOCK_MONOTONIC */
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)at;
    its.it_value.tv_nsec = (long)((at - (double)(time_t)at) * 1e9);
    if (its.it_value.tv_nsec > 999999999) its.it_value.tv_nsec = 999999999;
    /* a deadline already past fires at once */
    if (timer_settime(t, TIMER_ABSTIME, &its, NULL) != 0)
        return lt_err(LT_EIO, "time limit: timer_settime: %s", strerror(errno));
    return LT_OK;
}

static int run_forked(lt_run_job *job, lt_run_summary *sum) {
    int fds[2];
    if (pipe(fds) != 0) return lt_err(LT_EIO, "pipe: %s", strerror(errno));
    fflush(NULL);   /* nothing buffered may be written twice */
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return lt_err(LT_EIO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        /* Die with the parent: a runner killed outright (SIGKILL, the OOM
         * killer) must not leave a training child running unwatched, past
         * its time limit, and holding the run directory's lock. The
         * death signal covers a parent dying from now on; one that died
         * since fork() shows in getppid(). */
        int rc = prctl(PR_SET_PDEATHSIG, SIGKILL) == 0
                     ? LT_OK : lt_err(LT_EIO, "prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
        if (getppid() != parent) raise(SIGKILL);
        close(fds[0]);
        /* A crash must be a crash: handlers the caller installed (a test
         * framework's SIGSEGV handler that longjmps) would otherwise run the
         * caller's code inside the child. */
        const int crash_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP};
        for (size_t i = 0; i < sizeof crash_sigs / sizeof crash_sigs[0]; i++) signal(crash_sigs[i], SIG_DFL);
        signal(SIGPIPE, SIG_IGN);
        job->fd = fds[1];
        if (!rc) rc = child_time_limit(job);
        if (!rc && !job->backend) rc = lt_run_device_open(&job->dev, &job->backend);
        if (!rc) rc = lt_run_child(job, sum);
        if (rc) lt_run_send(job, LT_MSG_FAIL, -2, -2, rc, lt_errmsg());
        fflush(NULL);
        _exit(rc ? 1 : 0);   /* no atexit handlers of the parent in the child */
    }
    close(fds[1]);
    watch w = {0, -1, 0, 0, ""};
    const double limit = job->req->time_limit_s;
    int timed_out = 0;
    unsigned char buf[sizeof(lt_run_msg)];
    size_t have = 0;
    double beat = lt_now_s();
    for (;;) {
        /* wake at least once a heartbeat to touch the lock (lt_run_lock.c) */
        int ms = LT_LOCK_BEAT_S * 1000;
        if (limit > 0) {
            double left = limit - (lt_now_s() - job->t0);
            if (left <= 0) {
                kill(pid, SIGKILL);
                timed_out = 1;
                break;
            }
            if (left * 1000 + 1 < ms) ms = (int)(left * 1000) + 1;
        }
        if (lt_now_s() - beat >= LT_LOCK_BEAT_S) {
            lt_dir_lock_beat(job->run_dir);
            beat = lt_now_s();
        }
        struct pollfd pf = {fds[0], POLLIN, 0};
        int pr = poll(&pf, 1, ms);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;   /* timeout: re-check the limit */
        ssize_t n = read(fds[0], buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;   /* EOF: the child is gone */
        have += (size_t)n;
        if (have == sizeof buf) {
            lt_run_msg m;
            memcpy(&m, buf, sizeof m);
            /* a FAIL message keeps the position of the last POS */
            if (m.type == LT_MSG_FAIL) { m.stage = w.stage; m.epoch = w.epoch; }
            take(&w, sum, &m);
            have = 0;
        }
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    /* the child's own timer: SIGKILL at t0 + limit (never earlier) */
    if (!timed_out && limit > 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
        lt_now_s() - job->t0 >= limit)
        timed_out = 1;
    char where[96], reason[768];
    where_text(w.stage, w.epoch, w.final, where, sizeof where);
    int code = LT_ESTATE;
    if (timed_out) {
        snprintf(reason, sizeof reason, "timeout: time limit of %g s reached %s", limit, where);
    } else if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(reason, sizeof reason, "crashed: signal %d (%s) %s", sig, strsignal(sig), where);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        lt_run_outcome o;
        if (lt_result_read(job->result_path, &o) == LT_OK && o.ok) return LT_OK;
        snprintf(reason, sizeof reason, "child exited without a result %s", where);
    } else if (w.fail[0]) {
        snprintf(reason, sizeof reason, "%s %s", w.fail, where);
        if (w.code > 0) code = w.code;
    } else {
        snprintf(reason, sizeof reason, "exit status %d %s", WIFEXITED(status) ? WEXITSTATUS(status) : -1, where);
    }
    return write_failed(job, sum, reason, code);
}

static int run_job(lt_run_job *job, lt_run_outcome *out);

/* Makes sure the shared stage 1 (stage1_from) is trained: LT_OK with
 * *failed set and a reason when that run failed or could not be waited for.
 *
 * Its directory is locked while it is checked and, when its final
 * checkpoint is missing or belongs to another run, trained: two decoupled
 * methods started together (crt and lws) train ce once; the second waits
 * for the first and then re-uses the checkpoint it finds. The checkpoint is
 * opened before the lock goes (job->shared_fd), and the child reads those
 * bytes. */
static int ensure_shared(lt_run_job *job, int *failed, char *reason, size_t cap) {
    *failed = 0;
    if (!job->method->stage1_from) return LT_OK;
    lt_run_request dep = *job->req;
    dep.method = job->method->stage1_from;
    dep.hparams = NULL;
    dep.kill_after_epoch = 0;
    dep.resume = 1;
    const double deadline = job->req->time_limit_s > 0 ? job->t0 + job->req->time_limit_s : 0;
    if (deadline > 0) {
        dep.time_limit_s = deadline - lt_now_s();
        if (dep.time_limit_s <= 0) dep.time_limit_s = 0.001;
    }
    lt_run_job dj;
    int rc = resolve(&dep, &dj);
    if (!rc) rc = mkdirs(dj.run_dir);
    if (rc) {
        job_release(&dj);
        return lt_err_wrap(rc, "shared stage 1 (%s)", dep.method);
    }
    lt_dir_lock lk;
    rc = lt_dir_lock_take(&lk, dj.run_dir, 1, deadline, job->req->quiet ? NULL : job->log);
    if (rc && lk.timed_out) {
        *failed = 1;
        snprintf(reason, cap, "timeout: time limit of %g s reached waiting for the shared stage 1 (%s, pid %ld)",
                 job->req->time_limit_s, dep.method, lk.holder);
        job_release(&dj);
        return LT_OK;
    }
    if (rc) {
        job_release(&dj);
        return lt_err_wrap(rc, "shared stage 1 (%s)", dep.method);
    }
    /* Under the lock, so after any run that held it: a final checkpoint of
     * the right identity makes the dependency run a re-evaluation only;
     * skip even that. */
    int have = 0;
    lt_ckpt *ck;
    if (access(dj.final_path, F_OK) == 0 && lt_ckpt_read(&ck, dj.final_path) == LT_OK) {
        /* of this stage-1 run and made under its numerics: a stage 1 trained
         * at other threads would go into a result that names these */
        have = lt_run_ckpt_match(ck, &dj, NULL, 0) == LT_CKPT_OURS;
        lt_ckpt_free(ck);
    }
    lt_err_clear();
    if (!have) {
        if (!job->req->quiet) {
            fprintf(job->log, "shared stage 1: training %s first\n", dep.method);
            fflush(job->log);
        }
        lt_run_outcome o;
        rc = run_job(&dj, &o);
        if (!rc && !o.ok) {
            *failed = 1;
            snprintf(reason, cap, "shared stage 1 (%s) failed: %s", dep.method, o.reason);
        }
    }
    /* the stage 1 this run will load, opened while the lock still keeps
     * anyone from starting it over (a `ce --no-resume` would remove it) */
    if (!rc && !*failed) job->shared_fd = open(dj.final_path, O_RDONLY | O_CLOEXEC);
    lt_dir_lock_release(&lk);
    job_release(&dj);
    return rc;
}

/* Runs a resolved job whose directory lock the caller holds. */
static int run_job(lt_run_job *job, lt_run_outcome *out) {
    const lt_run_request *req = job->req;
    memset(out, 0, sizeof *out);
    out->top1 = out->many = out->medium = out->few = out->ece = out->macro_f1 = out->map = NAN;
    snprintf(out->run_dir, sizeof out->run_dir, "%s", job->run_dir);
    snprintf(out->result_path, sizeof out->result_path, "%s", job->result_path);
    if (!req->quiet) {
        fprintf(job->log, "run %s scale %s method %s seed %llu -> %s\n", job->proto.name, job->scale->name,
                job->method->name, (unsigned long long)req->seed, job->run_dir);
        fflush(job->log);
    }
    lt_run_summary sum;
    memset(&sum, 0, sizeof sum);
    int dep_failed = 0;
    char reason[512];
    int rc = ensure_shared(job, &dep_failed, reason, sizeof reason);
    if (!rc && dep_failed) {
        rc = write_failed(job, &sum, reason, LT_ESTATE);
    } else if (!rc && req->no_fork) {
        /* debugging: CUDA in this process, which then must not fork runs */
        if (!job->backend) rc = lt_run_device_open(&job->dev, &job->backend);
        if (!rc) rc = lt_run_child(job, &sum);
        if (rc) {
            char where[600];
            snprintf(where, sizeof where, "%s", lt_errmsg());
            rc = write_failed(job, &sum, where, rc);
        }
    } else if (!rc) {
        rc = run_forked(job, &sum);
    }
    if (rc) return rc;
    lt_run_outcome r;
    LT_TRY(lt_result_read(job->result_path, &r));
    *out = r;
    return LT_OK;
}

int lt_runner_run(const lt_run_request *req, lt_run_outcome *out) {
    memset(out, 0, sizeof *out);
    out->top1 = out->many = out->medium = out->few = out->ece = out->macro_f1 = out->map = NAN;
    lt_run_job job;
    int rc = resolve(req, &job);
    /* a device this machine lacks is not a malformed request */
    out->bad_request = rc != LT_OK && rc != LT_EDEVICE && rc != LT_ENOTBUILT;
    if (!rc) rc = mkdirs(job.run_dir);   /* the work begins: its failures are not the request's */
    /* one process per run directory: a second identical run is refused
     * before it touches anything there */
    lt_dir_lock lk = {-1, 0, 0};
    if (!rc) rc = lt_dir_lock_take(&lk, job.run_dir, 0, 0, req->quiet ? NULL : job.log);
    if (!rc) rc = run_job(&job, out);
    lt_dir_lock_release(&lk);
    job_release(&job);
    return rc;
}
