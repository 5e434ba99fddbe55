#!/usr/bin/env bash
# run.sh BIN... — run each CMocka test binary, then print one summary line
# "N passed, N skipped, N failed" (N counts individual test cases). A case
# that cannot run here (missing data, no gnuplot) calls CMocka's skip() after
# printing a "skip:" reason: it is counted as skipped, never as passed.
# Tests run from the repository root; ../shared is found by the tests themselves.
set -u
pass=0; fail=0; skipped=0; bad_bins=()
for bin in "$@"; do
  name=$(basename "$bin")
  out=$(mktemp)
  start=$(date +%s.%N)
  CMOCKA_MESSAGE_OUTPUT=stdout "$bin" >"$out" 2>&1
  rc=$?
  secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
  p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$out" | awk '{s+=$4} END{print s+0}')
  f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$out" | awk '{s+=$4} END{print s+0}')
  k=$(grep -E '^\[  SKIPPED \] [0-9]+ test' "$out" | awk '{s+=$4} END{print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before reporting
  pass=$((pass + p)); fail=$((fail + f)); skipped=$((skipped + k))
  if [ "$rc" -ne 0 ]; then
    bad_bins+=("$name"); echo "FAIL $name (${secs}s, exit $rc)"; cat "$out"
  else
    if [ "$k" -gt 0 ]; then echo "ok   $name: $p passed, $k skipped (${secs}s)"
    else echo "ok   $name: $p passed (${secs}s)"; fi
    grep -E '^(note|skip|bench):' "$out" | sed 's/^/     /'
  fi
  rm -f "$out"
done
echo
[ ${#bad_bins[@]} -gt 0 ] && echo "failing binaries: ${bad_bins[*]}"
echo "$pass passed, $skipped skipped, $fail failed"
[ "$fail" -eq 0 ] && [ ${#bad_bins[@]} -eq 0 ]
