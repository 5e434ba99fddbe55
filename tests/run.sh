#!/usr/bin/env bash
# run.sh BIN... [--light BIN...] — run each CMocka test binary, then print one
# summary line "N passed, N skipped, N failed" (N counts individual test
# cases). A case that cannot run here (missing data, no gnuplot) calls
# CMocka's skip() after printing a "skip:" reason: it is counted as skipped,
# never as passed.
# Tests run from the repository root; ../shared is found by the tests themselves.
#
# LT_TEST_JOBS binaries run at once. The default is half the CPUs (at least
# one): the runs inside the tests use the runner's 2 threads, and two of
# them on one core each lose several times over to OpenMP's and OpenBLAS's
# spinning (a 2-core machine took 13 min with 2 at once, 10 one at a time).
#
# The binaries after --light are those that keep about one core busy: the
# CUDA emulator's (tests/cuemu), which runs every kernel on the calling
# thread and only its convolutions on more, and others that mostly run one
# thread or wait (the Makefile names them). They start once every binary
# before them has ended, LT_TEST_LIGHT_JOBS at once (default: the CPUs),
# each with LT_CUEMU_THREADS=1 unless it is set (a 2-core machine: the
# Makefile's light group took 298 s two at once, where its binaries' times
# alone added up to 541 s).
#
# Each binary's report is printed in the order given, as soon as it and
# every binary before it have finished, so the output reads the same
# whatever the number of jobs. The binaries keep their scratch in mkdtemp
# directories and their servers on ports the kernel picks, so they do not
# see each other.
set -u
cpus=$(nproc 2>/dev/null || echo 1)
jobs_n=${LT_TEST_JOBS:-$((cpus / 2 > 0 ? cpus / 2 : 1))}
light_n=${LT_TEST_LIGHT_JOBS:-$cpus}
case "$jobs_n" in ''|*[!0-9]*|0) echo "run.sh: LT_TEST_JOBS='$jobs_n': expected a positive number" >&2; exit 2 ;; esac
case "$light_n" in ''|*[!0-9]*|0) echo "run.sh: LT_TEST_LIGHT_JOBS='$light_n': expected a positive number" >&2; exit 2 ;; esac

# bins[i], and light[i] = 1 for those after --light
bins=(); light=(); is_light=0
for a in "$@"; do
  if [ "$a" = --light ]; then is_light=1; continue; fi
  bins+=("$a"); light+=("$is_light")
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lt-run-XXXXXX") || exit 2
launcher=
cleanup() {
  [ -n "$launcher" ] && kill "$launcher" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One binary: its output, then its exit status and seconds (the .rc file
# appears last: the reporter waits for it).
run_one() {
  local i=$1 bin=$2 start rc
  start=$(date +%s.%N)
  if [ "${light[$i]}" = 1 ]; then
    LT_CUEMU_THREADS=${LT_CUEMU_THREADS:-1} CMOCKA_MESSAGE_OUTPUT=stdout "$bin" >"$tmp/$i.out" 2>&1
  else
    CMOCKA_MESSAGE_OUTPUT=stdout "$bin" >"$tmp/$i.out" 2>&1
  fi
  rc=$?
  awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}' >"$tmp/$i.secs"
  echo "$rc" >"$tmp/$i.part" && mv "$tmp/$i.part" "$tmp/$i.rc"
}

# The launcher keeps jobs_n binaries running, in the order given; at the
# first light one it waits for the others to end, then keeps light_n running.
(
  n=$jobs_n; in_light=0
  for i in "${!bins[@]}"; do
    if [ "${light[$i]}" = 1 ] && [ "$in_light" = 0 ]; then wait; n=$light_n; in_light=1; fi
    while [ "$(jobs -rp | wc -l)" -ge "$n" ]; do wait -n; done
    run_one "$i" "${bins[$i]}" &
  done
  wait
) &
launcher=$!

pass=0; fail=0; skipped=0; bad_bins=()
i=0
for bin in "${bins[@]}"; do
  name=$(basename "$bin")
  while [ ! -e "$tmp/$i.rc" ]; do
    if ! kill -0 "$launcher" 2>/dev/null && [ ! -e "$tmp/$i.rc" ]; then
      echo "run.sh: $name did not report (the launcher stopped)" >&2; exit 2
    fi
    sleep 0.2
  done
  out=$tmp/$i.out
  rc=$(cat "$tmp/$i.rc"); secs=$(cat "$tmp/$i.secs")
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
  i=$((i + 1))
done
wait "$launcher"
launcher=
echo
[ ${#bad_bins[@]} -gt 0 ] && echo "failing binaries: ${bad_bins[*]}"
echo "$pass passed, $skipped skipped, $fail failed"
[ "$fail" -eq 0 ] && [ ${#bad_bins[@]} -eq 0 ]
