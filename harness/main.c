/* main.c — the ltbench command line: dispatch to the subcommands. Library code
 * below returns statuses; only this layer turns them into exit codes. */
#include <stdio.h>
#include <string.h>

#include "lt.h"
#include "cmd_datasets.h"
#include "cmd_export.h"
#include "cmd_report.h"
#include "cmd_run.h"
#include "cmd_sweep.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} COMMANDS[] = {
    {"list", lt_cmd_list, "datasets, protocols and methods (with fidelity, and how each runs on cuda)"},
    {"fetch", lt_cmd_fetch, "download (or find) and verify a dataset's files"},
    {"build", lt_cmd_build, "build a long-tailed subset + caches + manifest (--ir, --profile)"},
    {"datasets", lt_cmd_datasets, "dataset states: not fetched / fetched / built, manifest hashes"},
    {"run", lt_cmd_run, "train + evaluate one protocol/scale/method/seed, isolated"},
    {"reproduce", lt_cmd_reproduce, "dataset -> runs (re-using finished ones) -> leaderboard -> figures"},
    {"sweep", lt_cmd_sweep, "a grid methods x protocols x seeds: -j N local runs or Slurm job arrays"},
    {"leaderboard", lt_cmd_leaderboard, "rebuild results/leaderboard.csv, .md and results/tables/*.tex"},
    {"figures", lt_cmd_figures, "figure data files and gnuplot PNG/PDF into plots/out"},
    {"export", lt_cmd_export, "a finished run's model as safetensors (PyTorch state_dict names)"},
    {"regress", lt_cmd_regress, "compare numbers with results/reference/<scale>.csv (--rerun)"},
    {"compare", lt_cmd_compare, "two runs of one experiment: identical, or within tolerance"},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f) {
    fprintf(f,
            "usage: ltbench [--version] [--help] <command> [args]   (ltbench <command> --help for details)\n"
            "\n"
            "ltbench: a reproducible benchmark harness for long-tailed visual recognition.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].help);
    fprintf(f,
            "\n"
            "environment:\n"
            "  LTBENCH_DATA       data directory (default: data/ in the current directory)\n"
            "  LTBENCH_MIRROR     base URL replacing each download URL's directory part\n"
            "  LTBENCH_PROTOCOLS  protocol directory (default: protocols/)\n"
            "  LTBENCH_PLOTS      gnuplot script directory for `figures` (default: plots/)\n"
            "  LTBENCH_CUDA_LIB   the CUDA module for --device cuda (default: build/libltcuda.so\n"
            "                     beside this program; `make cuda` builds it)\n"
            "  LT_CONV_REF=1      use the reference im2col + sgemm convolution (results record it)\n"
            "  LT_CONV_WINO=0     no Winograd in the AVX-512 convolutions (results record it;\n"
            "                     CPUs with AVX2 but not AVX-512 run the direct path without it);\n"
            "                     `ltbench run --conv auto|ref|direct|winograd` overrides both\n"
            "  LT_CUDA_GRAPH=0    --device cuda: every training step eager, no CUDA graph (to compare)\n"
            "  LT_CUDA_WGRAD_STREAM=1  --device cuda: the convolutions' filter gradients on a second\n"
            "                     stream, beside the rest of the backward: timings only, the same\n"
            "                     numbers (results record it: env.cuda_wgrad_stream)\n"
            "\n"
            "exit status: 0 success, 1 the work failed (message on stderr), 2 usage error\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("ltbench %s (engine)\n", LT_ENGINE_VERSION);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ltbench: unknown command '%s' (try --help)\n", argv[1]);
    return 2;
}
