#!/usr/bin/env bash
# run_slurm_test.sh WORKDIR PROTOCOL — `ltbench sweep --executor slurm` on a
# real, private Slurm started here: munged, slurmctld and one slurmd with 2
# CPUs on localhost, from a generated slurm.conf (select/cons_tres,
# proctrack/linuxproc, no cgroups, no accounting database), every state and
# log file under WORKDIR, run as the current user. It submits a ci-scale
# grid of two runs, ce and crt seed 0 (crt's level depends on ce's), plus the
# leaderboard job, waits (bounded), checks the leaderboard rows, prints what
# squeue, sacct and `ltbench sweep --status` say, checks that a re-submission
# submits nothing, and stops every daemon it started (trap).
#
# Exit 0 passed, 1 failed, 77 skipped: the last line then starts with
# "skip: " and says why (Slurm or munge not installed, or a daemon that
# would not start here). Called by tests/test_sweep.c; run it by hand from
# the repository root after `make all`. Debian: apt-get install slurm-wlm munge.
set -u
W=${1:?usage: run_slurm_test.sh WORKDIR PROTOCOL}
PROTO=${2:?usage: run_slurm_test.sh WORKDIR PROTOCOL}
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
skip() { echo "skip: $*"; exit 77; }

for c in munged slurmctld slurmd sbatch squeue sinfo; do
    command -v "$c" >/dev/null 2>&1 || skip "$c not installed (Debian: apt-get install slurm-wlm munge)"
done
[ -x ./ltbench ] || skip "./ltbench is not built (make all)"

mkdir -p "$W"/{state,spool,log,munge}
W=$(cd "$W" && pwd)
HOST=$(hostname -s)
ME=$(id -un)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT

# munge: a private key and socket (never the system's)
dd if=/dev/urandom of="$W/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$W/munge"
chmod 400 "$W/munge/munge.key"
SOCK="$W/munge/munge.socket"
munged -F --force --key-file="$W/munge/munge.key" --socket="$SOCK" --pid-file="$W/munge/munged.pid" \
    --log-file="$W/log/munged.log" --seed-file="$W/munge/munged.seed" >"$W/log/munged.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { cat "$W/log/munged.out" "$W/log/munged.log" 2>/dev/null; skip "munged would not start here"; }

# two free-looking ports from the pid (several test runs may share the machine)
PORT=$((20000 + ($$ % 5000) * 2))
export SLURM_CONF="$W/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=ltbtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=$ME
SlurmdUser=$ME
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
MinJobAge=600
SlurmdTimeout=30
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

slurmctld -D -i -f "$SLURM_CONF" >"$W/log/slurmctld.out" 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" -N "$HOST" >"$W/log/slurmd.out" 2>&1 &
PIDS+=($!)
up=0
for _ in $(seq 150); do
    if sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed)'; then up=1; break; fi
    sleep 0.2
done
if [ "$up" -ne 1 ]; then
    tail -5 "$W/log/slurmctld.log" "$W/log/slurmd.log" "$W/log/slurmctld.out" "$W/log/slurmd.out" 2>/dev/null
    skip "slurmctld + slurmd did not bring node $HOST up within 30 s (logs above)"
fi
echo "slurm: $(sinfo -h -o '%P %a %D %T %C') (node $HOST, 2 CPUs)"

RES="$W/results"
SWEEP=(./ltbench sweep --executor slurm --methods ce,crt --protocols "$PROTO" --seeds 0 --scale ci
       --results "$RES" --threads 1 --cpus-per-task 1 --time 10)
"${SWEEP[@]}" | tee "$W/submit.out" | grep -v '^  \[' || { echo "FAIL: the sweep did not submit"; exit 1; }
grep -Eq 'submitted level 0 \(1 runs\) as job [0-9]+' "$W/submit.out" || { echo "FAIL: no level-0 job"; exit 1; }
grep -Eq 'submitted level 1 \(1 runs\) as job [0-9]+, after afterany:[0-9]+' "$W/submit.out" ||
    { echo "FAIL: no level-1 job after level 0"; exit 1; }
grep -Eq 'submitted the leaderboard as job [0-9]+' "$W/submit.out" || { echo "FAIL: no leaderboard job"; exit 1; }
IDS=$(awk '$1 !~ /^#/ {print $3}' "$RES/sweep/slurm/jobs.txt" | paste -sd, -)
echo "==== squeue right after submission (jobs $IDS)"
squeue -o '%.10i %.24j %.10T %.8M %.20r' 2>&1

# wait (bounded) until every job left the queue or completed
done_=0
for _ in $(seq 600); do
    if ! squeue -h -j "$IDS" -o '%T' 2>/dev/null | grep -Eq 'PENDING|RUNNING|CONFIGURING|COMPLETING'; then
        done_=1; break
    fi
    sleep 0.2
done
echo "==== squeue after the jobs ended (MinJobAge keeps them listed)"
squeue -t all -o '%.10i %.24j %.10T %.8M %.20r' 2>&1
echo "==== sacct"
sacct -j "$IDS" -o JobID,JobName,State,ExitCode,Elapsed 2>&1 || echo "(sacct exit $?: no accounting storage in this test cluster)"
echo "==== ltbench sweep --status"
./ltbench sweep --status --methods ce,crt --protocols "$PROTO" --seeds 0 --scale ci --results "$RES" --threads 1 2>&1
[ "$done_" -eq 1 ] || { echo "FAIL: jobs still queued after 120 s"; tail -20 "$W/log/slurmctld.log"; exit 1; }
for f in "$RES"/sweep/slurm/*/logs/*.out; do echo "---- $f"; tail -3 "$f"; done

# the leaderboard job's rows: ce and crt, one seed each, ok
LB="$RES/leaderboard.csv"
[ -f "$LB" ] || { echo "FAIL: $LB was not written by the leaderboard job"; exit 1; }
echo "==== $LB"
cat "$LB"
for m in ce crt; do
    grep -Eq "^[^,]+,1,ci,$m,[^,]*,1,[0-9.]+,.*,ok," "$LB" || { echo "FAIL: no ok row with 1 seed for $m"; exit 1; }
done
grep -Eq '"status":[[:space:]]*"ok"' "$RES"/runs/*/ci/crt/seed0/result.json || { echo "FAIL: crt not ok"; exit 1; }

# re-submitting submits only what is unfinished: nothing. Threads 1 as above;
# the tree may be dirty in development, so the reuse rule is relaxed here.
./ltbench sweep --executor slurm --methods ce,crt --protocols "$PROTO" --seeds 0 --scale ci --results "$RES" \
    --threads 1 --reuse any >"$W/resubmit.out" 2>&1
grep -q 'nothing to submit' "$W/resubmit.out" || { cat "$W/resubmit.out"; echo "FAIL: re-submission submitted runs"; exit 1; }
echo "slurm test: ok (ce then crt as dependent job arrays, leaderboard job, re-submission submitted nothing)"
exit 0
