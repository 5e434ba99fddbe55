/* lt_sweep_slurm.c — the sweep's Slurm executor: batch scripts, one job
 * array per dependency level, submitted with sbatch (lt_sweep.h). Nothing
 * here knows a site: partition, time, gres and CPUs are only written when
 * given, and the scripts stay in the results root for the user to read,
 * edit and re-submit. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lt_base.h"
#include "lt_sweep.h"

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

/* Absolute form of an existing path (the jobs may start elsewhere). */
static int absolute(const char *what, const char *p, char *out, size_t cap)
{
    char buf[PATH_MAX];
    if (!realpath(p, buf)) return lt_err(LT_EIO, "%s %s: %s", what, p, strerror(errno));
    if (strcspn(buf, " \t\n'\"\\$`") != strlen(buf))
        return lt_err(LT_EINVAL,
                      "%s '%s': the Slurm scripts take paths without blanks, quotes, '\\', '$' or '`'; use another "
                      "directory",
                      what, buf);
    snprintf(out, cap, "%s", buf);
    return LT_OK;
}

/* Runs cmd through the shell; stdout+stderr into out. Its exit status, -1 when it could not run. */
static int capture(const char *cmd, char *out, size_t cap)
{
    char full[8400];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    out[0] = '\0';
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void sbatch_header(FILE *f, const lt_sweep_slurm_opts *o, const char *name, const char *out, const char *cwd,
                          int cpus, int gres)
{
    fprintf(f, "#SBATCH --job-name=%s\n#SBATCH --output=%s\n#SBATCH --chdir=%s\n#SBATCH --cpus-per-task=%d\n", name,
            out, cwd, cpus);
    if (o->partition) fprintf(f, "#SBATCH --partition=%s\n", o->partition);
    if (o->time) fprintf(f, "#SBATCH --time=%s\n", o->time);
    if (gres && o->gres) fprintf(f, "#SBATCH --gres=%s\n", o->gres);
}

static int submit(const lt_sweep_slurm_opts *o, const char *script, const char *dep, long *id)
{
    char cmd[4400], out[4096];
    snprintf(cmd, sizeof cmd, "%s --parsable%s%s '%s'", o->sbatch ? o->sbatch : "sbatch", dep[0] ? " --dependency=" : "",
             dep, script);
    int rc = capture(cmd, out, sizeof out);
    char *end;
    *id = strtol(out, &end, 10);
    if (rc != 0 || end == out || *id <= 0) {
        out[strcspn(out, "\n")] = '\0';
        return lt_err(LT_EIO, "%s: exit %d: %s", cmd, rc, out[0] ? out : "(no output)");
    }
    return LT_OK;
}

int lt_sweep_slurm(const lt_sweep_plan *pl, const lt_sweep_slurm_opts *o)
{
    FILE *log = o->log ? o->log : stdout;
    int n_todo = 0;
    for (int i = 0; i < pl->n_runs; i++) n_todo += pl->runs[i].state == LT_SW_PENDING;
    if (!n_todo) {
        fprintf(log, "sweep: nothing to submit: all %d runs are finished\n", pl->n_runs);
        return LT_OK;
    }
    /* the level each unfinished run waits at: a dependency that is already
     * finished is no wait */
    int *lvl = calloc((size_t)pl->n_runs, sizeof *lvl), max_level = 0;
    if (!lvl) return lt_err(LT_ENOMEM, "sweep: out of memory");
    for (int i = 0; i < pl->n_runs; i++) {
        const lt_sweep_run *r = &pl->runs[i];
        lvl[i] = r->dep >= 0 && pl->runs[r->dep].state == LT_SW_PENDING ? lvl[r->dep] + 1 : 0;
        if (r->state == LT_SW_PENDING && lvl[i] > max_level) max_level = lvl[i];
    }
    char results[PATH_MAX], cwd[PATH_MAX], exe[PATH_MAX], data[PATH_MAX] = "", dir[PATH_MAX + 200];
    int rc = mkdir_p(pl->results) ? lt_err(LT_EIO, "mkdir %s: %s", pl->results, strerror(errno)) : LT_OK;
    if (!rc) rc = absolute("results directory", pl->results, results, sizeof results);
    if (!rc) rc = absolute("working directory", ".", cwd, sizeof cwd);
    if (!rc) rc = absolute("ltbench binary", o->ltbench ? o->ltbench : "/proc/self/exe", exe, sizeof exe);
    if (!rc && o->data_dir) rc = absolute("data directory", o->data_dir, data, sizeof data);
    char pfile[LT_SWEEP_MAX_LIST][PATH_MAX];
    for (int p = 0; !rc && p < pl->n_protos && p < LT_SWEEP_MAX_LIST; p++)
        rc = absolute("protocol file", pl->protos[p].path, pfile[p], sizeof pfile[p]);
    char stamp[64];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(stamp + strlen(stamp), sizeof stamp - strlen(stamp), "-%ld", (long)getpid());
    snprintf(dir, sizeof dir, "%s/sweep/slurm/%s", results, stamp);
    char logs[PATH_MAX + 300];
    snprintf(logs, sizeof logs, "%s/logs", dir);
    if (!rc && mkdir_p(logs)) rc = lt_err(LT_EIO, "mkdir %s: %s", logs, strerror(errno));
    if (rc) {
        free(lvl);
        return rc;
    }
    const int cpus = o->cpus_per_task > 0 ? o->cpus_per_task : pl->threads;
    /* the run directories' device suffix ("", "@cuda", "@cuda-tf32", ...): the
     * method component of a method named "" (lt_run_device_method_dir) */
    char suffix[32];
    if ((rc = lt_run_device_method_dir(&pl->dev, "", suffix, sizeof suffix))) {
        free(lvl);
        return rc;
    }
    fprintf(log, "sweep: %d runs to submit in %d level%s; scripts in %s\n", n_todo, max_level + 1,
            max_level ? "s" : "", dir);
    char jobs_path[PATH_MAX + 100];
    snprintf(jobs_path, sizeof jobs_path, "%s/sweep/slurm/jobs.txt", results);
    char deps[1024] = "", all[1024] = "";
    for (int L = 0; L <= max_level && !rc; L++) {
        int n = 0;
        for (int i = 0; i < pl->n_runs; i++) n += pl->runs[i].state == LT_SW_PENDING && lvl[i] == L;
        if (!n) continue;
        char script[PATH_MAX + 400], name[64], out[PATH_MAX + 400];
        snprintf(script, sizeof script, "%s/level%d.sbatch", dir, L);
        char tl[64] = "";   /* --time-limit, passed on to each run */
        if (o->time_limit_s > 0) snprintf(tl, sizeof tl, "%.17g", o->time_limit_s);
        snprintf(name, sizeof name, "ltbench-sweep-L%d", L);
        snprintf(out, sizeof out, "%s/level%d_%%A_%%a.out", logs, L);
        FILE *f = fopen(script, "w");
        if (!f) {
            rc = lt_err(LT_EIO, "write %s: %s", script, strerror(errno));
            break;
        }
        fprintf(f, "#!/bin/bash\n");
        sbatch_header(f, o, name, out, cwd, cpus, 1);
        fprintf(f, "#SBATCH --array=0-%d\n", n - 1);
        fprintf(f,
                "# Written by `ltbench sweep --executor slurm` (%s): dependency level %d of %d, one array\n"
                "# task per run. Read and edit freely; re-submit with sbatch (a finished run is only\n"
                "# re-evaluated, a killed one resumes from its last epoch checkpoint). Threads per run are\n"
                "# part of a result's fingerprint: keep THREADS as the sweep had it for its skip rule.\n"
                "set -u\n"
                "LTBENCH=%s\nRESULTS=%s\nTHREADS=%d\nDATA=%s\n"
                "# each run's wall-clock limit in seconds (empty: none; a Slurm --time still applies)\n"
                "TIME_LIMIT=%s\n"
                "# the runs' device: --device, --math, --layout, --deterministic (empty: cpu)\n"
                "DEVICE_ARGS='%s%s%s%s%s%s%s'\nMETHOD_DIR_SUFFIX=%s\n"
                "# protocol-file protocol scale method seed stage-1-method-or-minus\n"
                "RUNS=(\n",
                stamp, L, max_level, exe, results, pl->threads, data, tl, pl->device[0] ? "--device " : "", pl->device,
                pl->math[0] ? " --math " : "", pl->math, pl->layout[0] ? " --layout " : "", pl->layout,
                pl->dev.deterministic ? " --deterministic" : "", suffix);
        for (int i = 0; i < pl->n_runs; i++) {
            const lt_sweep_run *r = &pl->runs[i];
            if (r->state != LT_SW_PENDING || lvl[i] != L) continue;
            fprintf(f, "  '%s %s %s %s %llu %s'\n", pfile[r->proto], pl->protos[r->proto].p->name, pl->scale,
                    r->m->name, (unsigned long long)r->seed, r->dep >= 0 ? pl->runs[r->dep].m->name : "-");
        }
        fprintf(f,
                ")\n"
                "read -r PFILE PROTO SCALE METHOD SEED STAGE1 <<<\"${RUNS[$SLURM_ARRAY_TASK_ID]}\"\n"
                "echo \"ltbench sweep: $PROTO $SCALE $METHOD seed $SEED on $(hostname), task $SLURM_ARRAY_TASK_ID\"\n"
                "if [ \"$STAGE1\" != - ]; then\n"
                "  # the stage-1 level ran first (afterany: it may have failed); without its finished\n"
                "  # result this run stops here instead of training the stage 1 again inside itself\n"
                "  dep=\"$RESULTS/runs/$PROTO/$SCALE/$STAGE1$METHOD_DIR_SUFFIX/seed$SEED/result.json\"\n"
                "  if ! grep -Eq '\"status\":[[:space:]]*\"ok\"' \"$dep\" 2>/dev/null; then\n"
                "    echo \"ltbench sweep: skipped: its stage 1 ($STAGE1 seed $SEED) has no finished result: $dep\" >&2\n"
                "    exit 3\n"
                "  fi\n"
                "fi\n"
                "exec \"$LTBENCH\" run --protocol \"$PFILE\" --scale \"$SCALE\" --method \"$METHOD\" --seed \"$SEED\" \\\n"
                "    --results \"$RESULTS\" --threads \"$THREADS\" ${DATA:+--data \"$DATA\"} $DEVICE_ARGS \\\n"
                "    ${TIME_LIMIT:+--time-limit \"$TIME_LIMIT\"}\n");
        if (fclose(f)) {
            rc = lt_err(LT_EIO, "write %s: %s", script, strerror(errno));
            break;
        }
        chmod(script, 0755);
        if (o->no_submit) {
            fprintf(log, "sweep: wrote %s (%d runs)\n", script, n);
            continue;
        }
        long id;
        if ((rc = submit(o, script, deps, &id))) break;
        fprintf(log, "sweep: submitted level %d (%d runs) as job %ld%s%s\n", L, n, id, deps[0] ? ", after " : "",
                deps);
        FILE *jf = fopen(jobs_path, "a");
        if (jf) {
            fprintf(jf, "%s level%d %ld\n", stamp, L, id);
            fclose(jf);
        }
        snprintf(deps, sizeof deps, "afterany:%ld", id);
        size_t len = strlen(all);
        snprintf(all + len, sizeof all - len, ":%ld", id);
    }
    free(lvl);
    if (rc) return rc;
    /* the last job: leaderboard and figures from whatever finished */
    char script[PATH_MAX + 400], out[PATH_MAX + 400];
    snprintf(script, sizeof script, "%s/leaderboard.sbatch", dir);
    snprintf(out, sizeof out, "%s/leaderboard_%%j.out", logs);
    FILE *f = fopen(script, "w");
    if (!f) return lt_err(LT_EIO, "write %s: %s", script, strerror(errno));
    fprintf(f, "#!/bin/bash\n");
    sbatch_header(f, o, "ltbench-sweep-leaderboard", out, cwd, 1, 0);
    fprintf(f,
            "# Written by `ltbench sweep --executor slurm` (%s): after every level, whatever\n"
            "# finished, rebuild the leaderboard and the figures. Failed runs are failed rows.\n"
            "set -u\n"
            "LTBENCH=%s\nRESULTS=%s\n"
            "\"$LTBENCH\" leaderboard --results \"$RESULTS\"\n"
            "rc=$?\n"
            "\"$LTBENCH\" figures --results \"$RESULTS\" || echo \"ltbench sweep: figures failed (see above)\" >&2\n"
            "exit $rc\n",
            stamp, exe, results);
    if (fclose(f)) return lt_err(LT_EIO, "write %s: %s", script, strerror(errno));
    chmod(script, 0755);
    if (o->no_submit) {
        fprintf(log, "sweep: wrote %s; submit the levels in order with sbatch --dependency=afterany:<previous job>\n",
                script);
        return LT_OK;
    }
    char dep[1100];
    snprintf(dep, sizeof dep, "afterany%s", all);
    long id;
    LT_TRY(submit(o, script, dep, &id));
    fprintf(log, "sweep: submitted the leaderboard as job %ld, after job(s) %s\n", id, all + 1);
    FILE *jf = fopen(jobs_path, "a");
    if (jf) {
        fprintf(jf, "%s leaderboard %ld\n", stamp, id);
        fclose(jf);
    }
    fprintf(log, "sweep: `ltbench sweep --status` with the same grid shows its state\n");
    return LT_OK;
}
