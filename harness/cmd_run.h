/* cmd_run.h — `ltbench run` and `ltbench list`.
 *
 *   ltbench run --protocol P --method M [--scale S] [--seed K] [--threads T]
 *               [--results DIR] [--data DIR] [--time-limit SEC]
 *               [--hparams JSON] [--no-resume] [--quiet]
 *   ltbench list [datasets|protocols|methods]
 *
 * Each takes argv starting at the subcommand name and returns the process
 * exit code: 0 success, 1 the run failed (including a result or run
 * directory that could not be written, e.g. on a full disk; or list could
 * not read something), 2 usage error (an unknown method, scale or protocol,
 * an invalid protocol file, a number flag that is not strictly a decimal:
 * cmd_args.h). */
#ifndef LT_CMD_RUN_H
#define LT_CMD_RUN_H

int lt_cmd_run(int argc, char **argv);
int lt_cmd_list(int argc, char **argv);

#endif
