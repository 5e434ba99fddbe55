#!/usr/bin/env bash
# run.sh BUILD SECONDS NAME... — the run half of `make fuzz`.
# For each target BUILD/fuzz/fuzz_NAME:
#  1. every file under tests/fuzz/regressions/NAME/ is run once (a plain
#     file list: no fuzzing) and must not crash;
#  2. the committed seeds tests/fuzz/corpus/NAME/ are copied into the
#     working corpus BUILD/corpus/NAME/, which libFuzzer grows from run to
#     run; the committed corpus is never written;
#  3. the target fuzzes for SECONDS; crashes, leaks, time-outs and
#     out-of-memory inputs are written to BUILD/crashes/NAME/ (emptied
#     first), the log to BUILD/logs/NAME.log.
# Then one line per target:
#   fuzz: NAME EXECS execs in S s, N corpus units, K crashes
# and exit status 1 when any target crashed or a regression input failed.
set -u
build=$1 secs=$2
shift 2
san_env=(ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"
         UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
summary=() failed=0
mkdir -p "$build/logs"
for name in "$@"; do
  bin=$build/fuzz/fuzz_$name
  corpus=$build/corpus/$name crashes=$build/crashes/$name tmp=$build/tmp/$name
  log=$build/logs/$name.log
  rm -rf "$crashes" "$tmp"
  mkdir -p "$corpus" "$crashes" "$tmp"
  if [ -d "tests/fuzz/corpus/$name" ]; then cp "tests/fuzz/corpus/$name"/* "$corpus"/; fi
  # The targets' temporary files go to a TMPDIR of their own, removed below
  # even when libFuzzer ended a run with _Exit after a crash.
  reg_bad=0
  mapfile -t regs < <(find "tests/fuzz/regressions/$name" -type f ! -name '*.md' 2>/dev/null | sort)
  if [ ${#regs[@]} -gt 0 ]; then
    if ! env "${san_env[@]}" TMPDIR="$tmp" "$bin" -runs=1 -artifact_prefix="$crashes/" "${regs[@]}" \
        >"$build/logs/$name.regressions.log" 2>&1; then
      reg_bad=1
      echo "fuzz: $name: a regression input under tests/fuzz/regressions/$name fails:" >&2
      tail -n 40 "$build/logs/$name.regressions.log" >&2
    fi
  fi
  start=$(date +%s.%N)
  env "${san_env[@]}" TMPDIR="$tmp" "$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" >"$log" 2>&1
  rc=$?
  elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.0f", e-s}')
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
  [ -n "$execs" ] || execs=0
  units=$(find "$corpus" -type f | wc -l)
  k=$(find "$crashes" -type f | wc -l)
  if [ "$rc" -ne 0 ] && [ "$k" -eq 0 ]; then k=1; fi   # died without an artifact
  if [ "$k" -gt 0 ] || [ "$reg_bad" -ne 0 ]; then
    failed=1
    if [ "$rc" -ne 0 ]; then
      echo "fuzz: $name crashed (exit $rc); log $log, inputs in $crashes/:" >&2
      grep -nE '^==[0-9]+==|^SUMMARY|runtime error|invariant broken|^artifact_prefix|Test unit written' "$log" | head -n 20 >&2
    fi
  fi
  summary+=("fuzz: $name $execs execs in $elapsed s, $units corpus units, $k crashes$([ "$reg_bad" -ne 0 ] && echo ", regression inputs FAIL")")
  rm -rf "$tmp"
done
rmdir "$build/tmp" 2>/dev/null
printf '%s\n' "${summary[@]}"
exit "$failed"
