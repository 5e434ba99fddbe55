/* cmd_run.c — `ltbench run` (one protocol/scale/method/seed through the
 * isolated runner) and `ltbench list` (datasets, protocols, methods). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_args.h"
#include "cmd_run.h"
#include "lt.h"
#include "lt_datasets.h"
#include "lt_protocol.h"
#include "lt_run_device.h"
#include "lt_runner.h"

static const char RUN_USAGE[] =
    "usage: ltbench run --protocol P --method M [--scale S] [--seed K] [--threads T]\n"
    "                   [--results DIR] [--data DIR] [--time-limit SEC] [--hparams JSON]\n"
    "                   [--conv PATH] [--device D] [--math fp32|tf32] [--layout nchw|nhwc]\n"
    "                   [--deterministic] [--no-resume] [--quiet]\n"
    "\n"
    "Train and evaluate method M on protocol P in an isolated child process and write\n"
    "DIR/runs/P/S/M/seedK/{result.json,events.jsonl,per_class.csv} (a cuda run:\n"
    "DIR/runs/P/S/M@cuda/seedK/, with --math tf32 M@cuda-tf32/, with --layout nhwc\n"
    "M@cuda-nhwc/ or M@cuda-tf32-nhwc/, each its own row: CPU, GPU fp32, GPU tf32 and\n"
    "the two layouts' numbers are not bit-identical).\n"
    "A crash, NaN loss or timeout gives a result with \"status\":\"failed\" and the reason\n"
    "(exit code 1).\n"
    "An interrupted run resumes from its last epoch checkpoint; a finished one is only\n"
    "re-evaluated, and a failed re-evaluation keeps the finished result. One process at a\n"
    "time per run directory: a second identical run is refused (\"already running\").\n"
    "  --protocol P      protocol name (protocols/P.json) or path to a .json\n"
    "  --method M        method name (see `ltbench list methods`)\n"
    "  --scale S         ci, short (default) or full\n"
    "  --seed K          training seed (default 0)\n"
    "  --threads T       OpenMP/OpenBLAS threads (default 2); numbers are bit-identical\n"
    "                    for a given seed and thread count\n"
    "  --results DIR     results root (default results)\n"
    "  --data DIR        data directory (default $LTBENCH_DATA, else data)\n"
    "  --time-limit SEC  wall-clock limit of the run (default none)\n"
    "  --hparams JSON    override the method's default hyper-parameters, e.g. '{\"tau\":1}'\n"
    "  --conv PATH       convolution path of the cpu backend: auto (AVX-512 direct +\n"
    "                    Winograd where it pays; AVX2 direct without AVX-512; im2col-sgemm\n"
    "                    without AVX2), ref (im2col + sgemm), direct (no Winograd) or\n"
    "                    winograd (every 3x3 stride-1 layer, AVX-512 only); default:\n"
    "                    LT_CONV_REF / LT_CONV_WINO, else auto.\n"
    "                    The paths differ in the last bits; results record it (conv_backend)\n"
    "  --device D        cpu (default), cuda (= cuda:0) or cuda:N. cuda loads the CUDA module\n"
    "                    build/libltcuda.so (make cuda; LTBENCH_CUDA_LIB names another) and\n"
    "                    records the GPU, driver, CUDA runtime, cuDNN and cuBLAS in result.json.\n"
    "                    A method whose hooks run on the host there says so in each epoch's\n"
    "                    log line (host hooks N%); one whose hooks cannot is refused before\n"
    "                    any work, naming the hook (README: which)\n"
    "  --math M          cuda only: fp32 (default; IEEE float32) or tf32 (TF32 tensor cores in\n"
    "                    convolutions and matrix products)\n"
    "  --layout L        cuda only: the activation layout on the GPU, nchw (default) or nhwc\n"
    "                    (channels-last, as PyTorch's channels_last; weights, checkpoints and\n"
    "                    results keep one layout). A method whose own layers read or write\n"
    "                    feature maps in NCHW only fails its run, naming the layer\n"
    "  --deterministic   cuda only: deterministic cuDNN algorithms picked by heuristics\n"
    "                    (bit-identical reruns on the same GPU and libraries); without it\n"
    "                    the algorithms are timed on first use (as PyTorch's cudnn.benchmark)\n"
    "  --no-resume       start afresh, ignoring checkpoints (a run started afresh removes its\n"
    "                    old result.json and per_class.csv as it begins)\n"
    "  --quiet           no progress output\n"
    "exit status: 0 ok, 1 run failed (or no CUDA module / device for --device cuda),\n"
    "2 usage error\n";

static const char LIST_USAGE[] =
    "usage: ltbench list [datasets|protocols|methods]\n"
    "\n"
    "List the known datasets, the protocols in protocols/ (or $LTBENCH_PROTOCOLS) with\n"
    "their version and division, and the methods with version, fidelity, shared stage 1 and\n"
    "how each trains on --device cuda (the whole step on the GPU, eager steps with host hooks,\n"
    "or refused).\n"
    "Without an argument, all three.\n";

static int is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

int lt_cmd_run(int argc, char **argv) {
    lt_run_request r;
    lt_run_request_default(&r);
    r.method = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            fputs(RUN_USAGE, stdout);
            return 0;
        }
        if (!strcmp(a, "--no-resume")) { r.resume = 0; continue; }
        if (!strcmp(a, "--quiet")) { r.quiet = 1; continue; }
        if (!strcmp(a, "--deterministic")) { r.deterministic = 1; continue; }
        if (i + 1 >= argc) {
            fprintf(stderr, "ltbench run: %s needs a value (or is unknown)\n%s", a, RUN_USAGE);
            return 2;
        }
        const char *v = argv[++i];
        unsigned long long u;
        if (!strcmp(a, "--protocol")) r.protocol = v;
        else if (!strcmp(a, "--method")) r.method = v;
        else if (!strcmp(a, "--scale")) r.scale = v;
        else if ((!strcmp(a, "--results") || !strcmp(a, "--data")) && !lt_arg_path("run", a, v)) return 2;
        else if (!strcmp(a, "--results")) r.results_root = v;
        else if (!strcmp(a, "--data")) r.data_dir = v;
        else if (!strcmp(a, "--hparams")) r.hparams = v;
        else if (!strcmp(a, "--conv")) {
            lt_conv_path cp;
            if (lt_conv_path_parse(v, &cp) != LT_OK) {
                fprintf(stderr, "ltbench run: --conv: %s\n%s", lt_errmsg(), RUN_USAGE);
                return 2;
            }
            /* the run still goes: its result records the path its layers
             * took (lt_backend_describe) */
            if (cp == LT_CONV_PATH_WINO && lt_conv_isa() != LT_CONV_ISA_AVX512)
                fprintf(stderr, "ltbench run: note: --conv winograd: the Winograd kernels need AVX-512, which this "
                                "CPU lacks; the convolutions run without it (result.json: env.conv_backend)\n");
            r.conv = v;
        }
        else if (!strcmp(a, "--device")) r.device = v;
        else if (!strcmp(a, "--math")) r.math = v;
        else if (!strcmp(a, "--layout")) r.layout = v;
        else if (!strcmp(a, "--seed")) {
            if (!lt_arg_uint("run", a, v, 0, 4294967295ull, &u)) return 2;
            r.seed = (uint64_t)u;
        } else if (!strcmp(a, "--threads")) {
            if (!lt_arg_uint("run", a, v, 1, 256, &u)) return 2;
            r.threads = (int)u;
        } else if (!strcmp(a, "--time-limit")) {
            if (!lt_arg_decimal("run", a, v, 0, 1e9, &r.time_limit_s)) return 2;
        } else {
            fprintf(stderr, "ltbench run: unknown option '%s'\n%s", a, RUN_USAGE);
            return 2;
        }
    }
    if (!r.protocol || !r.method) {
        fprintf(stderr, "ltbench run: --protocol and --method are required\n%s", RUN_USAGE);
        return 2;
    }
    /* the device words and their combinations (--math or --layout without
     * cuda, --conv with it), before anything is loaded */
    lt_run_device dev;
    if (lt_run_device_parse(r.device, r.math, r.layout, r.deterministic, r.conv, &dev) != LT_OK) {
        fprintf(stderr, "ltbench run: %s\n%s", lt_errmsg(), RUN_USAGE);
        return 2;
    }
    lt_run_outcome o;
    int rc = lt_runner_run(&r, &o);
    if (rc) {
        fprintf(stderr, "ltbench run: %s\n", lt_errmsg());
        /* Only a request the runner could not make sense of is a usage
         * error; an I/O failure once the work began (a full disk while
         * writing the result) is the work failing, whatever its code. */
        return o.bad_request ? 2 : 1;
    }
    if (!o.ok) {
        fprintf(stderr, "ltbench run: failed: %s (%s)\n", o.reason, o.result_path);
        return 1;
    }
    printf("%s\n", o.result_path);
    return 0;
}

static int list_protocol(void *ud, const char *path, const lt_protocol *p, int status, const char *errmsg) {
    (void)ud;
    if (status != LT_OK) printf("  %-22s INVALID: %s\n", path, errmsg);
    else printf("  %-22s v%d %-6s %-12s %s\n", p->name, p->version, p->division, p->dataset.name,
                p->scales[LT_SCALE_FULL].arch);
    return 0;
}

int lt_cmd_list(int argc, char **argv) {
    int want = 7;   /* 1 datasets, 2 protocols, 4 methods */
    if (argc > 2) {
        fprintf(stderr, "ltbench list: one argument at most\n%s", LIST_USAGE);
        return 2;
    }
    if (argc == 2) {
        if (is_help(argv[1])) { fputs(LIST_USAGE, stdout); return 0; }
        if (!strcmp(argv[1], "datasets")) want = 1;
        else if (!strcmp(argv[1], "protocols")) want = 2;
        else if (!strcmp(argv[1], "methods")) want = 4;
        else {
            fprintf(stderr, "ltbench list: unknown list '%s'\n%s", argv[1], LIST_USAGE);
            return 2;
        }
    }
    int rc = 0;
    if (want & 1) {
        printf("datasets:\n");
        for (int i = 0; i < lt_ds_count(); i++) {
            const lt_ds_def *d = lt_ds_at(i);
            printf("  %-22s %5d classes  %s\n", d->name, d->n_classes, d->title ? d->title : "");
        }
    }
    if (want & 2) {
        printf("protocols (name, version, division, dataset, full-scale model):\n");
        if (lt_protocol_list(NULL, list_protocol, NULL) != LT_OK) {
            fprintf(stderr, "ltbench list: %s\n", lt_errmsg());
            rc = 1;
        }
    }
    if (want & 4) {
        /* on cuda: the whole step on the GPU, eager steps with host hooks, or refused */
        static const char *const dev_mode[] = {"step", "host-hooks", "no"};
        printf("methods (name, version, fidelity, stage 1, on cuda, citation):\n");
        for (int i = 0; i < lt_method_count(); i++) {
            const lt_method *m = lt_method_at(i);
            printf("  %-22s v%-4s %-14s %-12s %-11s%s\n", m->name, m->version, m->fidelity,
                   m->stage1_from ? m->stage1_from : "own", dev_mode[lt_method_dev_mode(m, NULL)],
                   m->cite ? m->cite : "");
        }
        printf("  (on cuda: step = the whole training step on the GPU, a CUDA graph; host-hooks = eager\n"
               "   steps with the method's loss on host copies; no = refused before any work; a method's\n"
               "   own layers without CUDA code, cbn's mixture BN, run on the host, copies each way)\n");
    }
    return rc;
}
