#!/usr/bin/env bash
# verify_results.sh — re-run one committed seed of ce and of crt (decoupled,
# on ce's stage 1) on fmnist_lt_r100 short into a temporary results root and
# compare with the committed files through `ltbench compare`: where the
# numerics fingerprint (engine version, conv backend, BLAS core, threads)
# matches the committed run's, the metrics and per_class.csv must be
# bit-identical; otherwise each metric must be within its tolerance in
# results/reference/short.csv, else ci.csv (the README's promise). Prints
# which comparison it made and the numbers; exit 1 on a mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTOCOL=${PROTOCOL:-fmnist_lt_r100}
SCALE=short
SEED=${VERIFY_SEED:-0}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ltbench-verify.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

bad=0
for m in ce crt; do
    committed=results/runs/$PROTOCOL/$SCALE/$m/seed$SEED
    [ -f "$committed/result.json" ] || { echo "verify-results: $committed/result.json missing" >&2; exit 1; }
    echo "verify-results: $PROTOCOL $SCALE $m seed $SEED: running into $TMP"
    ./ltbench reproduce --method "$m" --protocol "$PROTOCOL" --scale "$SCALE" --seeds "$SEED" --results "$TMP" \
        --no-report >"$TMP/$m.log" 2>&1 || { cat "$TMP/$m.log"; echo "verify-results: $m: the run failed" >&2; exit 1; }
    fresh=$TMP/runs/$PROTOCOL/$SCALE/$m/seed$SEED
    # the comparison (same fingerprint: identical; else within tolerance) and
    # the reading of both result files are ltbench's own (lt_compare.h)
    ./ltbench compare "$committed" "$fresh" || bad=1
done
[ "$bad" -eq 0 ] && echo "verify-results: ok" || { echo "verify-results: MISMATCH" >&2; exit 1; }
