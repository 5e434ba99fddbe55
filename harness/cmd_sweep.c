/* cmd_sweep.c — `ltbench sweep`: a grid of methods x protocols x seeds at
 * one scale, planned by lt_sweep (dependencies, skip rule, estimates) and
 * carried out here on local cores or handed to Slurm. The command layer
 * owns the signal handler and the exit codes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_args.h"
#include "cmd_sweep.h"
#include "lt_figures.h"
#include "lt_leaderboard.h"
#include "lt_names.h"
#include "lt_run_device.h"
#include "lt_sweep.h"

static const char SWEEP_USAGE[] =
    "usage: ltbench sweep --methods A,B --protocols P,Q [--seeds 0,1,2] [--scale S] [--results DIR]\n"
    "                     [--data DIR] [-j N] [--threads T] [--reuse strict|any] [--time-limit SEC]\n"
    "                     [--dry-run] [--status] [--no-report]\n"
    "                     [--device D] [--math fp32|tf32] [--layout nchw|nhwc] [--deterministic]\n"
    "                     [--executor local|slurm] [--partition P] [--time T] [--gres G]\n"
    "                     [--cpus-per-task C] [--no-submit]\n"
    "\n"
    "Run the grid methods x protocols x seeds at one scale into one results root, then rebuild\n"
    "the leaderboard and the figures. A method with a shared stage 1 (crt, lws, taunorm, ncm,\n"
    "bsm_dec, balms start from ce; cbd from cbd_teacher) gets that stage-1 run of the same\n"
    "protocol, scale and seed added to the plan, trained once before its dependents. Finished\n"
    "runs are skipped by the rule of `reproduce` (same protocol file, dataset, method version,\n"
    "engine, clean tree, backend (conv path; or GPU, math mode, layout, deterministic flag and\n"
    "CUDA libraries), BLAS core and thread count), so running the same sweep again resumes it.\n"
    "  --methods LIST     method names, comma-separated (required)\n"
    "  --protocols LIST   protocol names or files, comma-separated (required)\n"
    "  --seeds LIST       e.g. 0,1,2 (default: each protocol's seeds)\n"
    "  --scale S          ci, short (default) or full\n"
    "  --results DIR      results root (default results)\n"
    "  --data DIR         data directory (default $LTBENCH_DATA, else data)\n"
    "  --dry-run          print the plan (runs, dependencies, what is finished, estimated cost) only\n"
    "  --status           the grid's state from the result files, run locks and the Slurm jobs\n"
    "                     this results root submitted (squeue, sacct where accounting exists)\n"
    "  --reuse any        also skip finished runs whose engine, tree or fingerprint differ\n"
    "  --no-report        no leaderboard and figures at the end\n"
    "  --time-limit SEC   wall-clock limit of each run (either executor)\n"
    "  --device D         cpu (default), cuda or cuda:N: every run's device, passed to `ltbench\n"
    "                     run`; cuda runs go to runs/P/S/M@cuda/ (M@cuda-tf32/ with --math tf32,\n"
    "                     -nhwc appended with --layout nhwc) and are their own rows, re-used only\n"
    "                     as cuda runs of the same math mode, layout, deterministic flag, GPU\n"
    "                     model and CUDA libraries\n"
    "  --math M           cuda only: fp32 (default) or tf32\n"
    "  --layout L         cuda only: the activation layout, nchw (default) or nhwc\n"
    "  --deterministic    cuda only: deterministic cuDNN algorithms (else timed on first use)\n"
    "  (the device is probed here for the skip rule; with --executor slurm on a host without\n"
    "  the GPU the probe's failure is a note, and finished cuda runs are submitted again)\n"
    "local executor (default):\n"
    "  -j N, --jobs N     runs at a time (default 1); threads per run default to cores / N,\n"
    "                     and N x threads never exceeds the cores\n"
    "  --threads T        threads per run (numbers are bit-identical per thread count, and a\n"
    "                     finished run is re-used only at the same count)\n"
    "  A failed run does not stop the others (its row in the leaderboard is failed, with the\n"
    "  reason); runs whose stage 1 failed are skipped. Ctrl-C kills the running runs and\n"
    "  stops; the same command resumes. Logs: DIR/sweep/logs/.\n"
    "slurm executor (--executor slurm): one sbatch job array per dependency level (afterany\n"
    "  between levels) and a leaderboard job, scripts in DIR/sweep/slurm/<stamp>/, job ids in\n"
    "  DIR/sweep/slurm/jobs.txt. Datasets are built here first (a shared file system is assumed).\n"
    "  --partition P, --time T, --gres G   passed to #SBATCH as given (none by default)\n"
    "  --cpus-per-task C  CPUs per run (default: --threads, else 2); runs use --threads T (default C)\n"
    "  --no-submit        write the scripts, do not call sbatch\n"
    "exit status: 0 every run finished, 1 a run failed or was skipped (or an error), 2 usage\n"
    "error, 130 interrupted\n";

static volatile sig_atomic_t g_stop;
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int lt_cmd_sweep(int argc, char **argv)
{
    const char *methods = NULL, *protocols = NULL, *seeds = NULL, *scale = "short", *results = NULL, *data = NULL;
    const char *executor = "local", *partition = NULL, *stime = NULL, *gres = NULL, *reuse = NULL;
    const char *device = NULL, *math = NULL, *layout = NULL;
    int jobs = 1, threads = 0, cpus = 0, dry = 0, status = 0, no_report = 0, no_submit = 0, deterministic = 0;
    double time_limit = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(SWEEP_USAGE, stdout);
            return 0;
        }
        if (!strcmp(a, "--dry-run")) { dry = 1; continue; }
        if (!strcmp(a, "--status")) { status = 1; continue; }
        if (!strcmp(a, "--no-report")) { no_report = 1; continue; }
        if (!strcmp(a, "--no-submit")) { no_submit = 1; continue; }
        if (!strcmp(a, "--deterministic")) { deterministic = 1; continue; }
        if (i + 1 >= argc) {
            fprintf(stderr, "ltbench sweep: %s needs a value (or is unknown)\n%s", a, SWEEP_USAGE);
            return 2;
        }
        const char *v = argv[++i];
        unsigned long long u;
        if (!strcmp(a, "--methods")) methods = v;
        else if (!strcmp(a, "--protocols")) protocols = v;
        else if (!strcmp(a, "--seeds")) seeds = v;
        else if (!strcmp(a, "--scale")) scale = v;
        else if ((!strcmp(a, "--results") || !strcmp(a, "--data")) && !lt_arg_path("sweep", a, v)) return 2;
        else if (!strcmp(a, "--results")) results = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--executor")) executor = v;
        else if (!strcmp(a, "--partition")) partition = v;
        else if (!strcmp(a, "--time")) stime = v;
        else if (!strcmp(a, "--gres")) gres = v;
        else if (!strcmp(a, "--reuse")) reuse = v;
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--math")) math = v;
        else if (!strcmp(a, "--layout")) layout = v;
        else if (!strcmp(a, "-j") || !strcmp(a, "--jobs")) {
            if (!lt_arg_uint("sweep", a, v, 1, 1024, &u)) return 2;
            jobs = (int)u;
        } else if (!strcmp(a, "--threads")) {
            if (!lt_arg_uint("sweep", a, v, 1, 256, &u)) return 2;
            threads = (int)u;
        } else if (!strcmp(a, "--cpus-per-task")) {
            if (!lt_arg_uint("sweep", a, v, 1, 1024, &u)) return 2;
            cpus = (int)u;
        } else if (!strcmp(a, "--time-limit")) {
            if (!lt_arg_decimal("sweep", a, v, 0, 1e9, &time_limit)) return 2;
        } else {
            fprintf(stderr, "ltbench sweep: unknown option '%s'\n%s", a, SWEEP_USAGE);
            return 2;
        }
    }
    if (!methods || !protocols) {
        fprintf(stderr, "ltbench sweep: --methods and --protocols are required\n%s", SWEEP_USAGE);
        return 2;
    }
    if (!lt_scale_valid(scale)) {
        fprintf(stderr, "ltbench sweep: --scale '%s': expected ci, short or full\n", scale);
        return 2;
    }
    if (reuse && strcmp(reuse, "strict") && strcmp(reuse, "any")) {
        fprintf(stderr, "ltbench sweep: --reuse '%s': expected strict or any\n", reuse);
        return 2;
    }
    const int slurm = !strcmp(executor, "slurm");
    if (!slurm && strcmp(executor, "local")) {
        fprintf(stderr, "ltbench sweep: --executor '%s': expected local or slurm\n", executor);
        return 2;
    }
    if (!slurm && (partition || stime || gres || cpus || no_submit)) {
        fprintf(stderr, "ltbench sweep: --partition, --time, --gres, --cpus-per-task and --no-submit are for "
                        "--executor slurm\n");
        return 2;
    }
    /* threads per run: the local executor splits this machine's cores */
    const int cores = ncpu();
    if (slurm) {
        if (!threads) threads = cpus ? cpus : 2;
    } else if (!threads) {
        threads = cores / jobs > 0 ? cores / jobs : 1;
    } else if (jobs * threads > cores) {
        int j = cores / threads > 0 ? cores / threads : 1;
        fprintf(stderr, "ltbench sweep: -j %d x --threads %d exceeds the %d cores here: running %d at a time\n", jobs,
                threads, cores, j);
        jobs = j;
    }

    lt_run_device dev;
    if (lt_run_device_parse(device, math, layout, deterministic, NULL, &dev) != LT_OK) {
        fprintf(stderr, "ltbench sweep: %s\n%s", lt_errmsg(), SWEEP_USAGE);
        return 2;
    }
    /* the device, probed in a child (this process forks the runs and must
     * stay free of CUDA): the skip rule's fingerprint. The local executor
     * runs here, so a device missing here is the end of it; Slurm jobs run
     * elsewhere, a look (--dry-run, --status) runs nothing. */
    lt_backend_info dev_info;
    const int probed = lt_run_device_probe(&dev, &dev_info) == LT_OK;
    if (!probed) {
        if (!slurm && !dry && !status) {
            fprintf(stderr, "ltbench sweep: %s\n", lt_errmsg());
            return 1;
        }
        fprintf(stderr, "ltbench sweep: note: %s; the skip rule cannot compare the GPU and its libraries here\n",
                lt_errmsg());
    }
    lt_sweep_opts so = {.methods = methods, .protocols = protocols, .seeds = seeds, .scale = scale,
                        .results = results, .threads = threads, .reuse_any = reuse && !strcmp(reuse, "any"),
                        .device = device, .math = math, .layout = layout, .deterministic = deterministic,
                        .dev_info = probed ? &dev_info : NULL};
    lt_sweep_plan plan;
    int rc = lt_sweep_plan_make(&so, &plan);
    if (rc) {
        fprintf(stderr, "ltbench sweep: %s\n", lt_errmsg());
        return rc == LT_EINVAL ? 2 : 1;
    }
    if (dry || status) {
        /* no dataset is built for a look: the skip rule's dataset check waits for the real sweep */
        lt_sweep_plan_check(&plan);
        if (dry) {
            lt_sweep_plan_print(&plan, stdout);
            printf("(dry run: datasets are not built or checked, so a finished run whose dataset build changed\n"
                   "shows as finished here and runs in the real sweep)\n");
            lt_sweep_plan_free(&plan);
            return 0;
        }
        int left = lt_sweep_status(&plan, stdout);
        lt_sweep_plan_free(&plan);
        return left ? 1 : 0;
    }

    /* the datasets, once each, before any run (the runs would otherwise
     * race to build them); their manifests complete the skip rule */
    for (int p = 0; p < plan.n_protos; p++) {
        lt_ds_built b;
        memset(&b, 0, sizeof b);
        const lt_protocol *pp = plan.protos[p].p;
        if (lt_protocol_dataset_build(pp, plan.scale, data, &b) != LT_OK) {
            fprintf(stderr, "ltbench sweep: dataset %s for %s: %s\n", pp->dataset.name, pp->name, lt_errmsg());
            lt_sweep_plan_free(&plan);
            return 1;
        }
        snprintf(plan.protos[p].manifest, sizeof plan.protos[p].manifest, "%s", b.manifest_sha256);
        printf("sweep: dataset %s %s%s, manifest %.12s\n", pp->dataset.name, b.tag, b.rebuilt ? "" : " (up to date)",
               b.manifest_sha256);
        lt_ds_built_free(&b);
    }
    lt_sweep_plan_check(&plan);
    lt_sweep_plan_print(&plan, stdout);
    fflush(stdout);

    if (slurm) {
        lt_sweep_slurm_opts xo = {.partition = partition, .time = stime, .gres = gres, .cpus_per_task = cpus,
                                  .data_dir = data, .no_submit = no_submit, .time_limit_s = time_limit,
                                  .log = stdout};
        rc = lt_sweep_slurm(&plan, &xo);
        lt_sweep_plan_free(&plan);
        if (rc) {
            fprintf(stderr, "ltbench sweep: %s\n", lt_errmsg());
            return 1;
        }
        return 0;
    }

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;   /* no SA_RESTART: the executor's sleeps end at once */
    sigemptyset(&sa.sa_mask);
    g_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    lt_sweep_local_opts lo = {.jobs = jobs, .data_dir = data, .log = stdout, .stop = &g_stop,
                              .time_limit_s = time_limit};
    lt_sweep_summary s;
    rc = lt_sweep_local(&plan, &lo, &s);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc) {
        fprintf(stderr, "ltbench sweep: %s\n", lt_errmsg());
        lt_sweep_plan_free(&plan);
        return 1;
    }
    printf("sweep: %d ran ok, %d failed, %d skipped, %d finished by another process, %d re-used; %.1f s\n", s.n_ok,
           s.n_failed, s.n_skipped, s.n_other, s.n_reused, s.wall_s);
    for (int i = 0; i < plan.n_runs; i++) {
        const lt_sweep_run *r = &plan.runs[i];
        if (r->state != LT_SW_FAILED && r->state != LT_SW_SKIPPED) continue;
        char name[256];
        lt_sweep_run_name(&plan, i, name, sizeof name);
        printf("sweep: %s %s: %s\n", r->state == LT_SW_FAILED ? "FAILED" : "SKIPPED", name, r->why);
    }
    const int bad = s.n_failed + s.n_skipped;
    char root[1024];
    snprintf(root, sizeof root, "%s", plan.results);
    lt_sweep_plan_free(&plan);
    if (s.interrupted) {
        printf("sweep: interrupted; run the same command again to resume\n");
        return 130;
    }
    if (!no_report) {
        lt_lb_opts lbo = {.results_dir = root, .log = stdout, .warn = stderr};
        lt_run_set set;
        if (lt_leaderboard_update(&lbo, &set, NULL, NULL) != LT_OK) {
            /* a refused result file: neither leaderboard nor figures are
             * rewritten without it (the runs themselves are done) */
            fprintf(stderr, "ltbench sweep: leaderboard: %s\n", lt_errmsg());
            fprintf(stderr, "ltbench sweep: the leaderboard and the figures were not rebuilt; mend what is named "
                    "above and run `ltbench leaderboard` and `ltbench figures`\n");
            return 1;
        }
        lt_fig_opts fo = {.results_dir = root, .log = stdout};
        lt_fig_summary fs;
        if (lt_figures_make(&fo, &set, &fs) != LT_OK) {
            fprintf(stderr, "ltbench sweep: figures: %s\n", lt_errmsg());
            rc = 1;
        }
        lt_run_set_free(&set);
    }
    return bad || rc ? 1 : 0;
}
