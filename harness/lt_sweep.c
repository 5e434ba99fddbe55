/* lt_sweep.c — the sweep's plan: grid expansion, stage-1 dependencies,
 * order, the skip rule and the cost estimate (lt_sweep.h). The executors
 * are in lt_sweep_local.c and lt_sweep_slurm.c. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_fingerprint.h"
#include "lt_regress.h"
#include "lt_runner.h"
#include "lt_sweep.h"

int lt_protocol_dataset_build(const lt_protocol *p, const char *scale, const char *data_dir, lt_ds_built *b)
{
    const lt_ds_def *def = lt_ds_find(p->dataset.name);
    if (!def) return lt_err(LT_EINVAL, "%s: unknown dataset '%s'", p->path, p->dataset.name);
    lt_ds_opts o;
    lt_ds_opts_default(&o);
    o.data_dir = data_dir;
    o.scale = scale;
    o.seed = (uint32_t)p->dataset.profile.subset_seed;
    switch (p->dataset.profile.kind) {
    case LT_PROTO_EXP:
        o.profile = LT_PROFILE_EXP;
        o.ir = p->dataset.profile.imbalance_ratio;
        break;
    case LT_PROTO_STEP:
        o.profile = LT_PROFILE_STEP;
        o.ir = p->dataset.profile.imbalance_ratio;
        break;
    default:
        o.profile = def->default_profile;
        break;
    }
    return lt_ds_build(def, &o, b);
}

const char *lt_sweep_state_name(lt_sweep_state s)
{
    static const char *const names[] = {"to run", "finished", "finished (reuse any)", "running", "ok",
                                        "failed", "skipped", "finished by another process"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

/* Splits a comma list into at most LT_SWEEP_MAX_LIST entries of buf (which
 * it modifies); empty entries are refused. */
static int split(const char *what, const char *list, char *buf, size_t cap, char **items, int *n)
{
    *n = 0;
    if (!list || !list[0]) return lt_err(LT_EINVAL, "--%s: empty list", what);
    snprintf(buf, cap, "%s", list);
    for (char *s = buf;;) {
        char *c = strchr(s, ',');
        if (c) *c = '\0';
        if (!*s) return lt_err(LT_EINVAL, "--%s '%s': empty entry", what, list);
        if (*n == LT_SWEEP_MAX_LIST) return lt_err(LT_EINVAL, "--%s: more than %d entries", what, LT_SWEEP_MAX_LIST);
        items[(*n)++] = s;
        if (!c) break;
        s = c + 1;
    }
    return LT_OK;
}

static int find_run(const lt_sweep_plan *pl, int proto, const lt_method *m, uint64_t seed)
{
    for (int i = 0; i < pl->n_runs; i++)
        if (pl->runs[i].proto == proto && pl->runs[i].m == m && pl->runs[i].seed == seed) return i;
    return -1;
}

/* Adds (proto, m, seed) and, first, its stage-1 chain; returns its index or -1. */
static int add_run(lt_sweep_plan *pl, int proto, const lt_method *m, uint64_t seed, int implied, int depth)
{
    int have = find_run(pl, proto, m, seed);
    if (have >= 0) {
        if (!implied) pl->runs[have].implied = 0;
        return have;
    }
    int dep = -1;
    if (m->stage1_from) {
        const lt_method *d = lt_method_find(m->stage1_from);
        if (!d || depth > 8) {
            lt_err(LT_EINVAL, "method '%s': its stage 1 '%s' is %s", m->name, m->stage1_from,
                   d ? "a chain too deep" : "not a known method");
            return -1;
        }
        dep = add_run(pl, proto, d, seed, 1, depth + 1);
        if (dep < 0) return -1;
    }
    lt_sweep_run *r = realloc(pl->runs, (size_t)(pl->n_runs + 1) * sizeof *r);
    if (!r) {
        lt_err(LT_ENOMEM, "sweep plan: out of memory");
        return -1;
    }
    pl->runs = r;
    lt_sweep_run *x = &pl->runs[pl->n_runs];
    memset(x, 0, sizeof *x);
    x->proto = proto;
    x->m = m;
    x->seed = seed;
    x->dep = dep;
    x->level = dep >= 0 ? pl->runs[dep].level + 1 : 0;
    x->implied = implied;
    x->est_s = -1;
    x->top1 = x->total_s = NAN;
    return pl->n_runs++;
}

int lt_sweep_plan_make(const lt_sweep_opts *o, lt_sweep_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    snprintf(pl->scale, sizeof pl->scale, "%s", o->scale ? o->scale : "short");
    snprintf(pl->results, sizeof pl->results, "%s", o->results && o->results[0] ? o->results : "results");
    pl->threads = o->threads > 0 ? o->threads : 2;
    pl->reuse_any = o->reuse_any;
    LT_TRY(lt_run_device_parse(o->device, o->math, o->layout, o->deterministic, NULL, &pl->dev));
    snprintf(pl->device, sizeof pl->device, "%s", o->device ? o->device : "");
    snprintf(pl->math, sizeof pl->math, "%s", o->math ? o->math : "");
    /* parsed above: "", "nchw" or "nhwc" */
    snprintf(pl->layout, sizeof pl->layout, "%s", o->layout ? o->layout : "");
    if (o->dev_info) {
        pl->dev_info = *o->dev_info;
    } else {   /* cpu, or a cuda device not probed: what the request says */
        pl->dev_info.kind = pl->dev.kind;
        pl->dev_info.device = pl->dev.device;
        pl->dev_info.math = pl->dev.math;
        pl->dev_info.deterministic = pl->dev.deterministic;
    }
    char mbuf[4096], pbuf[8192];
    char *mnames[LT_SWEEP_MAX_LIST], *pnames[LT_SWEEP_MAX_LIST];
    int nm, np, seeds[LT_SWEEP_MAX_LIST], ns = 0;
    LT_TRY(split("methods", o->methods, mbuf, sizeof mbuf, mnames, &nm));
    LT_TRY(split("protocols", o->protocols, pbuf, sizeof pbuf, pnames, &np));
    if (o->seeds && lt_seed_list_parse(o->seeds, seeds, LT_SWEEP_MAX_LIST, &ns))
        return lt_err_wrap(LT_EINVAL, "--seeds");
    const lt_method *ms[LT_SWEEP_MAX_LIST];
    for (int i = 0; i < nm; i++) {
        if (!(ms[i] = lt_method_find(mnames[i]))) {
            char names[1024];
            lt_method_names(names, sizeof names);
            return lt_err(LT_EINVAL, "--methods: unknown method '%s' (known: %s)", mnames[i], names);
        }
    }
    pl->protos = calloc((size_t)np, sizeof *pl->protos);
    if (!pl->protos) return lt_err(LT_ENOMEM, "sweep plan: out of memory");
    for (int i = 0; i < np; i++) {
        lt_sweep_proto *sp = &pl->protos[pl->n_protos];
        int rc = lt_protocol_find(pnames[i], o->protocols_dir, sp->path, sizeof sp->path);
        if (!rc && !(sp->p = malloc(sizeof *sp->p))) rc = lt_err(LT_ENOMEM, "sweep plan: out of memory");
        pl->n_protos++;
        if (!rc) rc = lt_protocol_load(sp->path, sp->p);
        const lt_proto_scale *ps;
        if (!rc) rc = lt_protocol_scale(sp->p, pl->scale, &ps);
        if (rc) {
            lt_err_wrap(rc, "--protocols '%s'", pnames[i]);
            lt_sweep_plan_free(pl);
            return rc;
        }
        for (int k = 0; k < i; k++)
            if (!strcmp(pl->protos[k].p->name, sp->p->name)) {
                lt_err(LT_EINVAL, "--protocols: '%s' is given twice", sp->p->name);
                lt_sweep_plan_free(pl);
                return LT_EINVAL;
            }
        /* training images at this scale, for the estimate */
        long counts[4096];
        sp->n_train = sp->p->dataset.expected_train_size;
        const int nc = sp->p->dataset.num_classes;
        if (nc > 0 && nc <= 4096 && lt_protocol_class_counts(sp->p, counts, nc) == LT_OK) {
            sp->n_train = 0;
            for (int c = 0; c < nc; c++) {
                long k = counts[c];
                if (ps->subsample_train_per_class > 0 && k > ps->subsample_train_per_class)
                    k = ps->subsample_train_per_class;
                sp->n_train += k;
            }
        } else if (sp->n_train > 0 && ps->subsample_train_per_class > 0 && nc > 0 &&
                   sp->n_train > (long)ps->subsample_train_per_class * nc) {
            sp->n_train = (long)ps->subsample_train_per_class * nc;
        }
        lt_err_clear();
    }
    /* the grid in the order given: protocol, method, seed */
    for (int p = 0; p < pl->n_protos; p++) {
        const lt_protocol *pp = pl->protos[p].p;
        int n = ns ? ns : pp->n_seeds;
        for (int mi = 0; mi < nm; mi++)
            for (int s = 0; s < n; s++)
                if (add_run(pl, p, ms[mi], (uint64_t)(ns ? seeds[s] : pp->seeds[s]), 0, 0) < 0) {
                    lt_sweep_plan_free(pl);
                    return LT_EINVAL;
                }
    }
    /* dependency order: stable by level (a dependency always has a lower
     * level, so it comes first); dep indices are remapped */
    int max_level = 0;
    for (int i = 0; i < pl->n_runs; i++)
        if (pl->runs[i].level > max_level) max_level = pl->runs[i].level;
    lt_sweep_run *sorted = malloc((size_t)pl->n_runs * sizeof *sorted);
    int *where = malloc((size_t)pl->n_runs * sizeof *where);
    if (!sorted || !where) {
        free(sorted);
        free(where);
        lt_sweep_plan_free(pl);
        return lt_err(LT_ENOMEM, "sweep plan: out of memory");
    }
    int k = 0;
    for (int lv = 0; lv <= max_level; lv++)
        for (int i = 0; i < pl->n_runs; i++)
            if (pl->runs[i].level == lv) {
                where[i] = k;
                sorted[k++] = pl->runs[i];
            }
    for (int i = 0; i < pl->n_runs; i++)
        if (sorted[i].dep >= 0) sorted[i].dep = where[sorted[i].dep];
    free(pl->runs);
    free(where);
    pl->runs = sorted;
    return LT_OK;
}

void lt_sweep_plan_free(lt_sweep_plan *pl)
{
    for (int i = 0; i < pl->n_protos; i++) free(pl->protos[i].p);
    free(pl->protos);
    free(pl->runs);
    memset(pl, 0, sizeof *pl);
}

int lt_sweep_run_dir(const lt_sweep_plan *pl, int i, char *buf, size_t cap)
{
    const lt_sweep_run *r = &pl->runs[i];
    return lt_run_dir_on(pl->results, pl->protos[r->proto].p->name, pl->scale, r->m->name, &pl->dev, r->seed, buf,
                         cap);
}

void lt_sweep_run_name(const lt_sweep_plan *pl, int i, char *buf, size_t cap)
{
    const lt_sweep_run *r = &pl->runs[i];
    snprintf(buf, cap, "%s %s %s seed %llu", pl->protos[r->proto].p->name, pl->scale, r->m->name,
             (unsigned long long)r->seed);
}

/* Mean wall time of the finished runs of (protocol, scale, method) in the
 * results root, any seed and any fingerprint: what a run has cost here
 * before. < 0 when there is none. */
static double past_time(const lt_sweep_plan *pl, int i)
{
    char dir[1100];
    const lt_sweep_run *r = &pl->runs[i];
    if (lt_run_dir_on(pl->results, pl->protos[r->proto].p->name, pl->scale, r->m->name, &pl->dev, 0, dir,
                      sizeof dir))
        return -1;
    char *slash = strrchr(dir, '/');
    if (!slash) return -1;
    *slash = '\0';   /* the method's directory */
    DIR *d = opendir(dir);
    if (!d) return -1;
    double sum = 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "seed", 4)) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s/result.json", dir, e->d_name);
        lt_run_outcome o;
        if (lt_result_read(path, &o) == LT_OK && o.ok && o.total_s > 0) {
            sum += o.total_s;
            n++;
        }
    }
    closedir(d);
    lt_err_clear();
    return n ? sum / n : -1;
}

void lt_sweep_plan_check(lt_sweep_plan *pl)
{
    lt_fingerprint now;
    lt_fingerprint_current_on(&now, pl->threads, &pl->dev_info, pl->dev.layout);
    for (int i = 0; i < pl->n_runs; i++) {
        lt_sweep_run *r = &pl->runs[i];
        const lt_sweep_proto *sp = &pl->protos[r->proto];
        char dir[1100], result[1200];
        if (lt_sweep_run_dir(pl, i, dir, sizeof dir)) {
            r->state = LT_SW_PENDING;
            snprintf(r->why, sizeof r->why, "%s", lt_errmsg());
            continue;
        }
        snprintf(result, sizeof result, "%s/result.json", dir);
        int use = lt_result_reusable_m(result, sp->p->sha256, sp->manifest, r->m, &now, pl->reuse_any,
                                     r->why, sizeof r->why);
        r->state = use == 1 ? LT_SW_DONE : use == 2 ? LT_SW_DONE_ANY : LT_SW_PENDING;
        lt_err_clear();
        /* the estimate: past wall times here, else the work in image-epochs */
        const lt_proto_scale *ps;
        r->image_epochs = -1;
        if (lt_protocol_scale(sp->p, pl->scale, &ps) == LT_OK && sp->n_train > 0) {
            /* a shared-stage-1 method trains only its stage 2; the others
             * are counted by stage 1 (a method's own extra stages are not
             * known before it runs) */
            int epochs = r->m->stage1_from ? ps->stage2.epochs : ps->stage1.epochs;
            r->image_epochs = (double)sp->n_train * epochs;
        }
        r->est_s = past_time(pl, i);
    }
}

static void fmt_s(double s, char *buf, size_t cap)
{
    if (s < 0) snprintf(buf, cap, "?");
    else if (s < 120) snprintf(buf, cap, "%.0f s", s);
    else if (s < 7200) snprintf(buf, cap, "%.1f min", s / 60);
    else snprintf(buf, cap, "%.1f h", s / 3600);
}

void lt_sweep_plan_print(const lt_sweep_plan *pl, FILE *f)
{
    int todo = 0;
    for (int i = 0; i < pl->n_runs; i++) todo += pl->runs[i].state == LT_SW_PENDING;
    fprintf(f, "sweep plan: %d runs at scale %s in %s/runs (%d to run, %d finished), %d thread%s per run\n",
            pl->n_runs, pl->scale, pl->results, todo, pl->n_runs - todo, pl->threads, pl->threads == 1 ? "" : "s");
    char mdir[64];
    if (pl->dev.kind == LT_BACKEND_CUDA && !lt_run_device_method_dir(&pl->dev, "<method>", mdir, sizeof mdir))
        fprintf(f, "sweep plan: device cuda:%d%s%s, math %s, layout %s%s (runs in %s/)\n", pl->dev.device,
                pl->dev_info.device_name[0] ? ", " : "", pl->dev_info.device_name, lt_cuda_math_name(pl->dev.math),
                lt_layout_name(pl->dev.layout), pl->dev.deterministic ? ", deterministic" : "", mdir);
    for (int i = 0; i < pl->n_runs; i++) {
        const lt_sweep_run *r = &pl->runs[i];
        char name[256], dep[256] = "";
        lt_sweep_run_name(pl, i, name, sizeof name);
        if (r->dep >= 0) {
            char dn[256];
            lt_sweep_run_name(pl, r->dep, dn, sizeof dn);
            snprintf(dep, sizeof dep, " after [%d] %s (shared stage 1)", r->dep + 1, dn);
        }
        fprintf(f, "  [%d] level %d %s%s%s: %s%s%s%s\n", i + 1, r->level, name, r->implied ? " (stage 1 of others)" : "",
                dep, lt_sweep_state_name(r->state), r->why[0] ? " (" : "", r->why, r->why[0] ? ")" : "");
    }
    fprintf(f, "estimated cost of the runs to do (estimates: past wall times of the same protocol, scale and method\n"
               "in this results root where there are any, else only the training work in images x epochs):\n");
    for (int p = 0; p < pl->n_protos; p++) {
        double secs = 0, work = 0;
        int n = 0, timed = 0, untimed = 0;
        for (int i = 0; i < pl->n_runs; i++) {
            const lt_sweep_run *r = &pl->runs[i];
            if (r->proto != p || r->state != LT_SW_PENDING) continue;
            n++;
            if (r->est_s >= 0) {
                secs += r->est_s;
                timed++;
            } else {
                untimed++;
                if (r->image_epochs > 0) work += r->image_epochs;
            }
        }
        char t[32];
        fmt_s(secs, t, sizeof t);
        fprintf(f, "  %s %s: %d run%s to do (train size %ld); ~%s for %d run%s timed before", pl->protos[p].p->name,
                pl->scale, n, n == 1 ? "" : "s", pl->protos[p].n_train, t, timed, timed == 1 ? "" : "s");
        if (untimed) fprintf(f, "; %d not timed before: %.3g image-epochs of training", untimed, work);
        fprintf(f, "\n");
    }
}

/* ---- status ----------------------------------------------------------------- */

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

/* Whether a process holds dir/.lock right now (a shared try-lock that is
 * given back at once, the file left as it is), and what the file says of
 * its holder ("pid N host H"). */
static int lock_held(const char *dir, char *who, size_t cap)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/.lock", dir);
    who[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int held = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) flock(fd, LOCK_UN);
    else held = 1;
    char buf[256];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        long pid = strtol(buf, NULL, 10);
        const char *host = strchr(buf, ' ');
        snprintf(who, cap, "pid %ld%s%s", pid, host ? " on host " : "", host ? host + 1 : "");
    }
    return held;
}

/* Runs a command, its output (stdout and stderr) to f with a prefix; its exit status. */
static int show_cmd(const char *cmd, FILE *f, const char *prefix, int *lines)
{
    *lines = 0;
    char full[4400];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    char line[1024];
    while (fgets(line, sizeof line, p)) {
        fprintf(f, "%s%s", prefix, line);
        ++*lines;
    }
    int st = pclose(p);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int lt_sweep_status(const lt_sweep_plan *pl, FILE *f)
{
    int n_ok = 0, n_failed = 0, n_running = 0, n_none = 0;
    fprintf(f, "sweep status: %d runs at scale %s in %s/runs\n", pl->n_runs, pl->scale, pl->results);
    for (int i = 0; i < pl->n_runs; i++) {
        char dir[1100], result[1200], name[256], who[300];
        lt_sweep_run_name(pl, i, name, sizeof name);
        if (lt_sweep_run_dir(pl, i, dir, sizeof dir)) continue;
        snprintf(result, sizeof result, "%s/result.json", dir);
        lt_run_outcome o;
        const int have = access(result, F_OK) == 0 && lt_result_read(result, &o) == LT_OK;
        lt_err_clear();
        const lt_sweep_run *r = &pl->runs[i];
        if (lock_held(dir, who, sizeof who)) {
            fprintf(f, "  running   %s (%s)\n", name, who[0] ? who : "lock held");
            n_running++;
        } else if (have && o.ok) {
            fprintf(f, "  finished  %s: top-1 %.2f%% (%.0f s)%s%s%s\n", name, 100 * o.top1, o.total_s,
                    r->state == LT_SW_PENDING ? " but not current: " : "", r->state == LT_SW_PENDING ? r->why : "", "");
            n_ok++;
        } else if (have) {
            fprintf(f, "  failed    %s: %s\n", name, o.reason);
            n_failed++;
        } else {
            char ck[1300];
            snprintf(ck, sizeof ck, "%s/ckpt.ltc", dir);
            fprintf(f, "  not done  %s%s\n", name, access(ck, F_OK) == 0 ? " (interrupted: resumes from ckpt.ltc)" : "");
            n_none++;
        }
    }
    fprintf(f, "sweep status: %d finished, %d failed, %d running, %d not done\n", n_ok, n_failed, n_running, n_none);

    /* the Slurm jobs this results root submitted */
    char jobs_path[1200];
    snprintf(jobs_path, sizeof jobs_path, "%s/sweep/slurm/jobs.txt", pl->results);
    FILE *jf = fopen(jobs_path, "r");
    if (jf) {
        char ids[4000] = "", line[512];
        while (fgets(line, sizeof line, jf)) {
            char stamp[128], what[64];
            long id;
            if (line[0] == '#' || sscanf(line, "%127s %63s %ld", stamp, what, &id) != 3) continue;
            size_t len = strlen(ids);
            if (len + 24 < sizeof ids) snprintf(ids + len, sizeof ids - len, "%s%ld", len ? "," : "", id);
        }
        fclose(jf);
        if (ids[0]) {
            char cmd[4400];
            fprintf(f, "slurm jobs (from %s): %s\n", jobs_path, ids);
            snprintf(cmd, sizeof cmd, "squeue --noheader -j %s -o '%%i %%j %%T %%M %%r'", ids);
            fprintf(f, "squeue (queued and running):\n");
            int lines, rc = show_cmd(cmd, f, "  ", &lines);
            if (!rc && !lines) fprintf(f, "  (none queued or running)\n");
            if (rc) fprintf(f, "  (squeue exit %d: the jobs have left the queue, or Slurm is not reachable here)\n", rc);
            snprintf(cmd, sizeof cmd, "sacct --noheader -P -j %s -o JobID,JobName,State,ExitCode,Elapsed", ids);
            fprintf(f, "sacct (accounting):\n");
            rc = show_cmd(cmd, f, "  ", &lines);
            if (rc)
                fprintf(f, "  sacct is unavailable here (exit %d; a cluster without accounting storage): the state above\n"
                           "  rests on squeue and the result files\n", rc);
        }
    }
    return n_failed + n_running + n_none;
}
