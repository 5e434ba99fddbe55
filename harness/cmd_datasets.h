/* cmd_datasets.h — the dataset subcommands of the ltbench CLI:
 *
 *   ltbench fetch NAME [--url URL] [--from DIR] [--data DIR] [--no-system] [--quiet]
 *   ltbench build NAME [--ir R] [--profile exp|step] [--scale ci|short|full]
 *                      [--seed N] [--force] [--no-fetch] [--url URL] [--from DIR] [--data DIR]
 *   ltbench datasets [--data DIR]
 *
 * Each takes argv starting at the subcommand name and returns the process
 * exit code: 0 success, 1 failure (message on stderr), 2 usage error. */
#ifndef LT_CMD_DATASETS_H
#define LT_CMD_DATASETS_H

int lt_cmd_fetch(int argc, char **argv);
int lt_cmd_build(int argc, char **argv);
int lt_cmd_datasets(int argc, char **argv);

#endif
