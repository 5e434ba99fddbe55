#!/usr/bin/env bash
# tests/gpu/all.sh OUTDIR — every GPU check in one device call: a session
# has about 15 minutes of device time and each call costs a machine start,
# so the op checks and the training checks share one call and one build.
#
#   1. tests/gpu/run.sh OUTDIR/gpu     the op table, the whole models, the
#                                      training steps (RUN_BUDGET_S, 240 s,
#                                      build included)
#   2. tests/gpu/train.sh OUTDIR/train ltbench on the GPU, make bench-gpu,
#                                      the runs to commit (what is left of
#                                      ALL_BUDGET_S, 560 s: a 600 s call)
#
# Six files come back (run.log, run-logs.tgz; train.log, train-logs.tgz,
# bench-gpu.txt, results.tgz), inside the device tool's 8. Exit status 1
# when either part failed; the second runs whatever the first did.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: tests/gpu/all.sh OUTDIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
START=$(date +%s)
BUDGET=${ALL_BUDGET_S:-560}
RUN_BUDGET_S=${RUN_BUDGET_S:-240} bash "$here/run.sh" "$1/gpu"
rc_run=$?
left=$(( BUDGET - $(date +%s) + START ))
TRAIN_BUDGET_S=$left bash "$here/train.sh" "$1/train"
rc_train=$?
echo "== tests/gpu/all.sh: run.sh exit $rc_run, train.sh exit $rc_train, $(( $(date +%s) - START )) s of $BUDGET"
[ "$rc_run" -eq 0 ] && [ "$rc_train" -eq 0 ]
