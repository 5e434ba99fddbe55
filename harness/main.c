/* main.c — the ltbench command line. The only place that calls exit codes. */
#include <stdio.h>
#include <string.h>

#include "lt.h"
#include "cmd_datasets.h"
#include "cmd_report.h"
#include "cmd_run.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ltbench [--version] [--help] <command> [args]\n"
            "\n"
            "ltbench: a reproducible benchmark harness for long-tailed visual recognition.\n"
            "\n"
            "commands:\n"
            "  fetch NAME       download (or find) and verify a dataset's files\n"
            "  build NAME       build a long-tailed subset + caches + manifest (--ir, --profile)\n"
            "  datasets         list datasets: not fetched / fetched / built, manifest hashes\n"
            "  reproduce        dataset -> runs (re-using finished ones) -> leaderboard -> figures\n"
            "  leaderboard      rebuild results/leaderboard.csv, .md and results/tables/*.tex\n"
            "  figures          figure data files and gnuplot PNG/PDF into plots/out\n"
            "  regress          compare numbers with results/reference/<scale>.csv (--rerun)\n"
            "  run              train + evaluate one protocol/scale/method/seed, isolated\n"
            "  list             datasets, protocols and methods (with fidelity)\n"
            "  (the harness commands arrive with the harness; see README.md)\n");
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
    if (!strcmp(argv[1], "fetch")) return lt_cmd_fetch(argc - 1, argv + 1);
    if (!strcmp(argv[1], "build")) return lt_cmd_build(argc - 1, argv + 1);
    if (!strcmp(argv[1], "datasets")) return lt_cmd_datasets(argc - 1, argv + 1);
    if (!strcmp(argv[1], "reproduce")) return lt_cmd_reproduce(argc - 1, argv + 1);
    if (!strcmp(argv[1], "leaderboard")) return lt_cmd_leaderboard(argc - 1, argv + 1);
    if (!strcmp(argv[1], "figures")) return lt_cmd_figures(argc - 1, argv + 1);
    if (!strcmp(argv[1], "regress")) return lt_cmd_regress(argc - 1, argv + 1);
    if (!strcmp(argv[1], "run")) return lt_cmd_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "list")) return lt_cmd_list(argc - 1, argv + 1);
    fprintf(stderr, "ltbench: unknown command '%s' (try --help)\n", argv[1]);
    return 2;
}
