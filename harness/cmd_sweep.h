/* cmd_sweep.h — `ltbench sweep`: a grid of methods x protocols x seeds on
 * this machine (-j N) or on Slurm (--executor slurm), see lt_sweep.h.
 *
 *   ltbench sweep --methods A,B --protocols P,Q [--seeds LIST] [--scale S]
 *                 [--results DIR] [-j N] [--dry-run] [--status]
 *                 [--executor local|slurm ...]
 *
 * Takes argv starting at "sweep"; returns the exit code: 0 every run
 * finished, 1 a run failed or was skipped (or an error), 2 usage error,
 * 130 interrupted (SIGINT / SIGTERM). */
#ifndef LT_CMD_SWEEP_H
#define LT_CMD_SWEEP_H

int lt_cmd_sweep(int argc, char **argv);

#endif
