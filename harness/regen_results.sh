#!/usr/bin/env bash
# regen_results.sh grid|run — the committed grid of results, re-run by committed code.
#
#   grid  writes results/grid.txt from results/runs: one line
#         "<protocol> <scale> <method> <seed>" per committed run, each
#         (protocol, scale) with its stage-1 methods (stage1_from null) before
#         the decoupled ones that load their checkpoints.
#   run   re-runs every line of results/grid.txt (restricted to PROTOCOLS,
#         comma-separated, when set) at the current engine, one at a time,
#         through `ltbench reproduce --no-report`, which re-uses a run only
#         when it is current under the strict rule (lt_fingerprint.h): so an
#         interrupted sweep resumes where it stopped. Then `make leaderboard`
#         and `make figures`. Refuses a dirty tree: the results must be the
#         products of committed code (the same rule as env.dirty).
set -euo pipefail
cd "$(dirname "$0")/.."
GRID=${GRID:-results/grid.txt}
RESULTS=${RESULTS:-results}

grid() {
    local tmp; tmp=$(mktemp)
    for r in "$RESULTS"/runs/*/*/*/seed*/result.json; do
        [ -f "$r" ] || continue
        IFS=/ read -r -a part <<<"${r#"$RESULTS"/runs/}"
        # GPU runs (<method>@cuda/, <method>@cuda-tf32/, ...-nhwc/) are not in the grid: it is re-run on this
        # machine's CPU, and a GPU run needs its own device (make reproduce DEVICE=cuda)
        case "${part[2]}" in *@*) continue ;; esac
        # stage-1 methods sort first (key 0), decoupled ones after (key 1)
        if grep -Eq '"stage1_from":[[:space:]]*"' "$r"; then k=1; else k=0; fi
        echo "${part[0]} ${part[1]} $k ${part[2]} ${part[3]#seed}"
    done | sort -k1,1 -k2,2 -k3,3n -k4,4 -k5,5n | awk '{print $1, $2, $4, $5}' >"$tmp"
    { echo "# protocol scale method seed — the committed grid (make regen-results re-runs it);"
      echo "# written by harness/regen_results.sh grid from results/runs; stage-1 methods first."
      cat "$tmp"; } >"$GRID"
    rm -f "$tmp"
    echo "regen-results: $(grep -vc '^#' "$GRID") runs in $GRID"
}

run() {
    if [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no -- . \
            ':(exclude)results' ':(exclude)plots/out' 2>/dev/null)" ]; then
        echo "regen-results: the tree has uncommitted changes (git status); commit them first:" >&2
        echo "regen-results: the committed results must be products of committed code" >&2
        exit 1
    fi
    git rev-parse HEAD >/dev/null 2>&1 || { echo "regen-results: not a git checkout" >&2; exit 1; }
    [ -f "$GRID" ] || { echo "regen-results: $GRID missing (make regen-grid writes it)" >&2; exit 1; }
    local lines; lines=$(grep -v '^#' "$GRID" | awk 'NF == 4')
    if [ -n "${PROTOCOLS:-}" ]; then
        lines=$(awk -v want="$PROTOCOLS" 'BEGIN { n = split(want, w, ","); for (i = 1; i <= n; i++) keep[w[i]] = 1 }
                                          keep[$1]' <<<"$lines")
    fi
    local n; n=$(grep -c . <<<"$lines" || true)
    [ "$n" -gt 0 ] || { echo "regen-results: nothing in $GRID for PROTOCOLS=${PROTOCOLS:-}" >&2; exit 1; }
    if grep -q '^lvis_lt_fixture ' <<<"$lines"; then make --no-print-directory lvis-fixture; fi
    local k=0 failed=0
    while read -r p s m seed; do
        k=$((k + 1))
        out=$(./ltbench reproduce --method "$m" --protocol "$p" --scale "$s" --seeds "$seed" \
                  --results "$RESULTS" --no-report 2>&1) && rc=0 || rc=$?
        what=$(grep -E "seed $seed: (re-using|running|top-1|FAILED)" <<<"$out" | sed -E 's/^reproduce: (\[2\/4\] )?//' |
               tr '\n' ' ')
        echo "[$k/$n] $p $s $m $seed: ${what:-$(tail -1 <<<"$out")}"
        if [ "$rc" -ne 0 ]; then failed=$((failed + 1)); echo "$out" | tail -5 | sed 's/^/    /'; fi
    done <<<"$lines"
    make --no-print-directory leaderboard RESULTS="$RESULTS"
    make --no-print-directory figures RESULTS="$RESULTS"
    [ "$failed" -eq 0 ] || { echo "regen-results: $failed of $n runs failed" >&2; exit 1; }
    echo "regen-results: $n runs current at engine $(./ltbench --version | awk '{print $2}')"
}

case "${1:-}" in
grid) grid ;;
run) run ;;
*) echo "usage: harness/regen_results.sh grid|run" >&2; exit 2 ;;
esac
