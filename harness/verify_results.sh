#!/usr/bin/env bash
# verify_results.sh — re-run one committed seed of ce and of crt (decoupled,
# on ce's stage 1) on fmnist_lt_r100 short into a temporary results root and
# compare with the committed files. Where the numerics fingerprint (engine
# version, conv backend, BLAS core, threads) matches the committed run's, the
# metrics and per_class.csv must be bit-identical; otherwise each metric must
# be within its tolerance in results/reference/short.csv, else ci.csv (the
# README's promise). Prints which comparison it made and the numbers; exit 1
# on a mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTOCOL=${PROTOCOL:-fmnist_lt_r100}
SCALE=short
SEED=${VERIFY_SEED:-0}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ltbench-verify.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# first value of "key": in a cJSON-printed file (one key per line)
jget() { grep -m1 -E "^[[:space:]]*\"$2\":" "$1" | sed -E 's/^[^:]*:[[:space:]]*//; s/,$//; s/^"//; s/"$//'; }
fp() { for k in engine_version conv_backend blas_core threads; do printf '%s=%s ' "$k" "$(jget "$1" "$k")"; done; }
tol() {   # method metric -> tolerance (points) and its source, or nothing
    for f in results/reference/short.csv results/reference/ci.csv; do
        t=$(awk -F, -v p="$PROTOCOL" -v m="$1" -v k="$2" '$1 == p && $3 == m && $4 == k { print $6; exit }' "$f")
        [ -n "$t" ] && { echo "$t $f"; return; }
    done
}

bad=0
for m in ce crt; do
    committed=results/runs/$PROTOCOL/$SCALE/$m/seed$SEED
    [ -f "$committed/result.json" ] || { echo "verify-results: $committed/result.json missing" >&2; exit 1; }
    echo "verify-results: $PROTOCOL $SCALE $m seed $SEED: running into $TMP"
    ./ltbench reproduce --method "$m" --protocol "$PROTOCOL" --scale "$SCALE" --seeds "$SEED" --results "$TMP" \
        --no-report >"$TMP/$m.log" 2>&1 || { cat "$TMP/$m.log"; echo "verify-results: $m: the run failed" >&2; exit 1; }
    fresh=$TMP/runs/$PROTOCOL/$SCALE/$m/seed$SEED
    a=$(fp "$committed/result.json"); b=$(fp "$fresh/result.json")
    if [ "$a" = "$b" ]; then
        echo "verify-results: $m: same fingerprint ($a): exact comparison"
        for k in top1 many medium few ece ece_ts macro_f1; do
            x=$(jget "$committed/result.json" "$k"); y=$(jget "$fresh/result.json" "$k")
            v=$([ "$x" = "$y" ] && echo same || echo DIFFERENT)
            echo "  $k committed $x, now $y: $v"
            [ "$v" = same ] || bad=1
        done
        if cmp -s "$committed/per_class.csv" "$fresh/per_class.csv"; then echo "  per_class.csv: identical"
        else echo "  per_class.csv: DIFFERENT"; bad=1; fi
    else
        echo "verify-results: $m: fingerprint differs (committed: $a; now: $b): tolerance comparison"
        for k in top1 many medium ece ece_ts macro_f1; do
            x=$(jget "$committed/result.json" "$k"); y=$(jget "$fresh/result.json" "$k")
            read -r t src < <(tol "$m" "$k"; echo) || true
            if [ -z "${t:-}" ] || [ "$x" = null ] || [ "$y" = null ]; then
                echo "  $k committed $x, now $y: no tolerance, not compared"; continue
            fi
            v=$(awk -v x="$x" -v y="$y" -v t="$t" 'BEGIN { d = 100 * (y - x); printf "%+.2f points, tol %.2f (%s): %s",
                   d, t, "'"$src"'", (d <= t && d >= -t) ? "within" : "BEYOND" }')
            printf '  %s committed %.2f, now %.2f: %s\n' "$k" "$(awk -v x="$x" 'BEGIN{print 100*x}')" \
                "$(awk -v y="$y" 'BEGIN{print 100*y}')" "$v"
            case "$v" in *BEYOND) bad=1 ;; esac
        done
    fi
done
[ "$bad" -eq 0 ] && echo "verify-results: ok" || { echo "verify-results: MISMATCH" >&2; exit 1; }
