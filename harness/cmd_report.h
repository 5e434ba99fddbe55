/* cmd_report.h — the reporting subcommands of the ltbench CLI:
 *
 *   ltbench leaderboard [--results DIR] [--methods DIR]
 *   ltbench figures     [--results DIR] [--out DIR] [--plots DIR]
 *   ltbench regress     --scale S [--results DIR] [--reference DIR] [--rerun]
 *                       [--seeds LIST] [--threads N] [--data DIR]
 *   ltbench compare     [--reference DIR] RUN_A RUN_B
 *   ltbench reproduce   --method M [--protocol P] [--scale S] [--seeds LIST]
 *                       [--results DIR] [--data DIR] [--out DIR] [--threads N]
 *                       [--reuse strict|any] [--no-report]
 *
 * Each takes argv starting at the subcommand name and returns the process
 * exit code: 0 success, 1 failure (message on stderr; for regress: a number
 * beyond tolerance or missing; for compare: a number that differs or is
 * beyond tolerance; for leaderboard, figures, regress and reproduce: a result file refused as
 * untrusted input, named on stderr, after the others were used), 2 usage
 * error (including a number flag that is not strictly a decimal, see
 * cmd_args.h). */
#ifndef LT_CMD_REPORT_H
#define LT_CMD_REPORT_H

int lt_cmd_leaderboard(int argc, char **argv);
int lt_cmd_figures(int argc, char **argv);
int lt_cmd_regress(int argc, char **argv);
int lt_cmd_compare(int argc, char **argv);
int lt_cmd_reproduce(int argc, char **argv);

#endif
