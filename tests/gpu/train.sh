#!/usr/bin/env bash
# tests/gpu/train.sh [--build-only] LOGDIR — the GPU machine's training
# checks (issue 20), one script that finishes inside ~9 minutes:
#
#   build   ./ltbench, the CUDA library (build/gpu/libltcuda.a, and
#           libltcuda.so where the Makefile has it), the bench and the
#           ImageNet-LT fixture generator, against the pip wheels' cuDNN /
#           cuBLAS and the .debs of .gpudeps/ (tests/gpu/env.sh)
#   check   a short GPU training run: ce on fmnist_lt_r100, scale ci,
#           --device cuda --deterministic (after the bench, the same with
#           --layout nhwc)
#   bench   make bench-gpu (ltbench against PyTorch eager, same GPU); after
#           the runs to commit, the input pipeline alone at the ImageNet-LT
#           input (224 crop) on 1, 4, 8 and all cores (bench_pipeline, make
#           bench-pipeline's)
#   runs    if time is left: ce on fmnist_lt_r100 short, seeds 0-2, on the
#           GPU; then the pipeline bench; then the ResNet-50 smoke run on the synthetic ImageNet-LT
#           fixture (protocol imagenet_lt_fixture, scale full: one epoch at
#           224 px) with its throughput
#   aux     (failures fail nothing) make bench-conv-layout: one step's cuDNN
#           convolutions NCHW against NHWC; the ncu profile of one step,
#           ltbench's and PyTorch's
#
# Every step has a timeout cut to the time left (TRAIN_BUDGET_S, default
# 540 s, from the start), and a failed or skipped step is logged and the
# script goes on; the summary at the end says PASS / FAIL / SKIPPED /
# TIMEOUT per step and the exit status is 1 when any step did not pass.
# LOGDIR gets four files (the device tool brings back at most 8 from $OUT,
# 2 folders down): train.log (everything, with the summary), bench-gpu.txt
# (the bench-gpu:, bench-pipeline:, conv-layout: and ncu-summary: lines), train-logs.tgz (build.log, ldd.txt, nvidia-smi.txt, one
# <step>.log each) and results.tgz (runs/<protocol>/<scale>/<method>@cuda*/
# seed<k>/ without checkpoints, from the results root build/gpu-results:
# unpack into results/ when they are to be committed).
#
# The data: Fashion-MNIST comes from the dataset-fashion-mnist .deb in
# .gpudeps (tests/gpu/fetch-deps.sh), copied into the data folder
# (build/gpu-data, kept between calls on a warm machine); the ImageNet-LT
# fixture is generated there. --build-only stops after the build and the
# library check: it runs on any machine with nvcc (tests/gpu/README.md).
#
# Environment: TRAIN_BUDGET_S (540), TRAIN_THREADS (--threads of the runs,
# 2, as make reproduce), TRAIN_RUN_ARGS (extra `ltbench run` options, default
# "--device cuda --deterministic"), BENCH_GPU_ARGS (make bench-gpu's,
# default --seconds 1: each of the 36 timings fills a second, PyTorch's 12
# and ltbench's 24 in NCHW and NHWC), BUILD,
# TRAIN_BUILD_TIMEOUT_S (420, and no more than the budget left; a 2-core
# machine needs far more), TRAIN_SKIP (step names not to run, e.g.
# "bench-pipeline imagenet-fixture-gen": skipped, not failed).
set -uo pipefail

# the shared start (die, say, [--build-only] LOGDIR, the log, START, JOBS, BUILD): tests/gpu/env.sh
. "$(dirname "$0")/env.sh"
gpu_script_init tests/gpu/train.sh train.log "$@"
GPU_BUDGET_S=${TRAIN_BUDGET_S:-540}   # gpu_budget_left (env.sh) counts it down
# the runs' host threads and flags are those of `make reproduce DEVICE=cuda`
# (2 threads, --deterministic), so the committed GPU rows are re-used by it
# (a device run's loader takes every core whatever --threads says)
THREADS=${TRAIN_THREADS:-2}
RUN_ARGS=${TRAIN_RUN_ARGS:---device cuda --deterministic}
DATA=$ROOT/build/gpu-data
# the runs' results root: outside LOGDIR (the device tool brings back at
# most 8 files, 2 folders down), packed into LOGDIR/results.tgz at the end
# without the checkpoints; kept between calls on a warm machine, so a run
# cut short resumes
RESULTS=$ROOT/build/gpu-results

elapsed() { echo $(( $(date +%s) - START )); }

# ---- steps: NAME TIMEOUT CMD...; the status goes into SUMMARY ----------------------
SUMMARY=""
FAILED=0
note() { SUMMARY="$SUMMARY
  $1"; }
step() {
    local name=$1 t=$2 rc
    shift 2
    case " ${TRAIN_SKIP:-} " in
    *" $name "*) say "$name: SKIPPED (TRAIN_SKIP)"; note "$name: SKIPPED (TRAIN_SKIP)"; return 1 ;;
    esac
    local l
    l=$(( $(gpu_budget_left) - 10 ))
    if [ "$l" -lt 20 ]; then
        say "$name: SKIPPED (no time left: $(elapsed) s of $GPU_BUDGET_S used)"
        note "$name: SKIPPED (no time left)"
        FAILED=1
        return 1
    fi
    [ "$t" -le "$l" ] || t=$l
    say "$name: $* (timeout $t s, log $name.log in train-logs.tgz)"
    local t0
    t0=$(date +%s)
    timeout "$t" "$@" > "$GPU_LOGS/$name.log" 2>&1
    rc=$?
    tail -25 "$GPU_LOGS/$name.log"
    local dt=$(( $(date +%s) - t0 ))
    if [ "$rc" -eq 0 ]; then note "$name: PASS ($dt s)"
    elif [ "$rc" -eq 124 ]; then note "$name: TIMEOUT after $t s"; FAILED=1
    else note "$name: FAIL (exit $rc, $dt s; see $name.log)"; FAILED=1; fi
    return "$rc"
}
finish() {
    if [ -d "$RESULTS/runs" ]; then
        tar czf "$LOGDIR/results.tgz" --exclude='*.ltc' --exclude='*.lock' -C "$RESULTS" runs &&
            say "results: $LOGDIR/results.tgz ($(tar tzf "$LOGDIR/results.tgz" | grep -c 'result.json$') result files; unpack into results/ to commit)"
    fi
    say "summary ($(elapsed) s of a $GPU_BUDGET_S s budget):$SUMMARY"
    if [ "$FAILED" -ne 0 ]; then echo "tests/gpu/train.sh: ERROR: some steps did not pass (summary above)" >&2; exit 1; fi
    say "all steps passed"
    exit 0
}

# ---- toolchain and libraries (tests/gpu/env.sh) ---------------------------------------
gpu_env_toolkit
gpu_env_git
note "git: $GPU_GIT_NOTE"
gpu_env_deps cblas.h cmocka.h cjson/cJSON.h archive.h curl/curl.h jpeglib.h
gpu_env_flags
# ltbench's libraries; DT_RPATH to the unpacked ones (env.sh says why)
LDLIBS="-L$LNK ${DEP_LIB:+-L${DEP_LIB//:/ -L}} -lopenblas -larchive -lcurl -lcjson -ljpeg -lm -lpthread -fopenmp $DEP_RPATH_FLAGS"
MAKEVARS=(BUILD="$BUILD" NVCC="$NVCC" CUDA_HOME="$CUDA_HOME" CUDNN_INC="$CUDNN_INC" CUBLAS_INC="$CUBLAS_INC"
          CUDA_LDLIBS="$CUDA_LDLIBS" LDLIBS="$LDLIBS" OPT="-O2 $DEP_INC" NVCC_WERROR=)

# ---- build --------------------------------------------------------------------------
TARGETS="ltbench $BUILD/libltcuda.a $BUILD/bench_gpu $BUILD/bench_pipeline $BUILD/make_imagenet_lt_fixture"
# the dlopen'ed CUDA module (`ltbench run --device cuda`), where the Makefile builds one
if make -n --no-print-directory "${MAKEVARS[@]}" "$BUILD/libltcuda.so" >/dev/null 2>&1; then
    TARGETS="$TARGETS $BUILD/libltcuda.so"
else
    say "this Makefile has no $BUILD/libltcuda.so target: libltcuda.a only"
fi
say "build: make -j$JOBS BUILD=$BUILD $TARGETS"
build_to=${TRAIN_BUILD_TIMEOUT_S:-420}
[ "$build_to" -le "$(( $(gpu_budget_left) - 10 ))" ] || build_to=$(( $(gpu_budget_left) - 10 ))
[ "$build_to" -ge 30 ] || build_to=30
if ! timeout "$build_to" make --no-print-directory -j"$JOBS" "${MAKEVARS[@]}" $TARGETS > "$GPU_LOGS/build.log" 2>&1; then
    tail -40 "$GPU_LOGS/build.log"
    note "build: FAIL (see build.log)"
    FAILED=1
    finish
fi
note "build: PASS ($(elapsed) s)"
# ltbench may look for its CUDA module beside the default build folder
if [ -e "$BUILD/libltcuda.so" ] && [ "$BUILD" != build ] && [ ! -e build/libltcuda.so ]; then
    ln -s "$(cd "$BUILD" && pwd)/libltcuda.so" build/libltcuda.so
fi
say "built ($(elapsed) s)"

# Where every shared library of the binaries resolves: an unpacked .deb
# ($DEPS), a wheel, the toolkit or the system. "not found" is fatal.
: > "$GPU_LOGS/ldd.txt"
bad=0
for b in ltbench "$BUILD/bench_gpu" "$BUILD/bench_pipeline" ${BUILD}/libltcuda.so; do
    [ -e "$b" ] || continue
    { echo "### $b"; ldd "$b" 2>&1; } >> "$GPU_LOGS/ldd.txt"
    n_all=$(ldd "$b" 2>/dev/null | grep -c '=>' || true)
    n_deps=$(ldd "$b" 2>/dev/null | grep -c "=> ${DEPS:-/nonexistent}" || true)
    say "$b: $n_all shared libraries, $n_deps from the unpacked .debs; system ones: $(ldd "$b" 2>/dev/null |
        grep '=> /' | grep -v "${DEPS:-/nonexistent}" | grep -v -e "${CUDNN_LIB}" -e "${CUBLAS_LIB}" -e "${CUDA_LIBDIR}" |
        awk '{print $1}' | tr '\n' ' ')"
    if ldd "$b" 2>&1 | grep -q 'not found'; then ldd "$b" | grep 'not found'; bad=1; fi
done
if [ "$bad" -ne 0 ]; then note "libraries: FAIL (unresolved, see ldd.txt)"; FAILED=1; finish; fi
if [ "$BUILD_ONLY" = 1 ]; then say "--build-only: done"; finish; fi

# ---- on the GPU ---------------------------------------------------------------------
if command -v nvidia-smi >/dev/null; then nvidia-smi > "$GPU_LOGS/nvidia-smi.txt" 2>&1 || true; fi

# Fashion-MNIST: the .deb's files into the data folder (verified there by
# their pinned hashes when a build needs them)
FM_SRC=""
for d in "${DEPS:-/nonexistent}/usr/share/datasets/fashion-mnist" /usr/share/datasets/fashion-mnist; do
    if [ -e "$d/train-images-idx3-ubyte.gz" ]; then FM_SRC=$d; break; fi
done
if [ -n "$FM_SRC" ]; then
    mkdir -p "$DATA/fmnist/raw" && cp -n "$FM_SRC"/*.gz "$DATA/fmnist/raw/" && say "fmnist: $FM_SRC -> $DATA/fmnist/raw"
else
    say "fmnist: no dataset-fashion-mnist .deb in .gpudeps and no /usr/share/datasets/fashion-mnist: the fmnist runs will fail"
fi

HAVE_DEVICE=1
if ! ./ltbench run --help 2>&1 | grep -q -- '--device'; then
    HAVE_DEVICE=0
    say "ltbench run has no --device option in this build (issue 20 part A not merged): the GPU runs are SKIPPED"
fi
run() {   # run NAME TIMEOUT ltbench-run-args...: one ltbench run on the GPU
    local name=$1 t=$2
    shift 2
    if [ "$HAVE_DEVICE" = 0 ]; then note "$name: SKIPPED (ltbench run has no --device)"; FAILED=1; return 1; fi
    # LD_LIBRARY_PATH for ltbench alone (its CUDA module is dlopen'ed); never
    # exported, so no python3 ever sees the Debian libraries
    # shellcheck disable=SC2086
    step "$name" "$t" env LD_LIBRARY_PATH="$RPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        ./ltbench run "$@" --data "$DATA" --results "${RUN_RESULTS:-$RESULTS}" --threads "$THREADS" $RUN_ARGS
}

# (a) the short training check
run check-fmnist-ci 120 --protocol fmnist_lt_r100 --method ce --scale ci --seed 0

# (b) the bench (ltbench in both layouts, each with and without the
# filter-gradient stream, that one training only: about three times the
# ltbench timings of before the NHWC path, hence 360 s)
step bench-gpu 360 make --no-print-directory "${MAKEVARS[@]}" BENCH_GPU_PYTHON=python3 \
    BENCH_GPU_ARGS="${BENCH_GPU_ARGS:---seconds 1}" bench-gpu
grep '^bench-gpu:' "$GPU_LOGS/bench-gpu.log" > "$LOGDIR/bench-gpu.txt" 2>/dev/null || true

# (b2) the short check again with --layout nhwc (its own directory,
# ce@cuda-nhwc: the first whole run of that layout on a GPU), after the
# bench, which matters more when time is short
run check-fmnist-ci-nhwc 120 --protocol fmnist_lt_r100 --method ce --scale ci --seed 0 --layout nhwc

# (b3) the short check with the filter-gradient stream
# (LT_CUDA_WGRAD_STREAM=1), into a results root of its own (it is (a)'s
# row: the stream changes timings only, so it is not packed to commit).
# Deterministic, it must end with (a)'s metrics and per-class file bit for
# bit: the filter gradients really beside the rest of the backward, on the
# GPU, through the harness
WG_RESULTS=$RESULTS-wgrad
if RUN_RESULTS=$WG_RESULTS LT_CUDA_WGRAD_STREAM=1 run check-fmnist-ci-wgrad 120 --protocol fmnist_lt_r100 \
    --method ce --scale ci --seed 0; then
    case " $RUN_ARGS " in
    *" --deterministic "*)
        step check-fmnist-ci-wgrad-same 20 python3 - "$RESULTS/runs/fmnist_lt_r100/ci/ce@cuda/seed0" \
            "$WG_RESULTS/runs/fmnist_lt_r100/ci/ce@cuda/seed0" <<'EOF'
import json, sys
a, b = sys.argv[1], sys.argv[2]
ra, rb = (json.load(open(d + "/result.json")) for d in (a, b))
same = (ra["metrics"] == rb["metrics"] and
        open(a + "/per_class.csv", "rb").read() == open(b + "/per_class.csv", "rb").read())
wa, wb = ra["env"].get("cuda_wgrad_stream"), rb["env"].get("cuda_wgrad_stream")
print("check-fmnist-ci-wgrad: metrics and per_class.csv %s check-fmnist-ci's (top1 %s / %s); "
      "env.cuda_wgrad_stream %s / %s" % ("EQUAL to" if same else "DIFFER from", ra["metrics"].get("top1"),
                                         rb["metrics"].get("top1"), wa, wb))
sys.exit(0 if same and wa is False and wb is True else 1)
EOF
        ;;
    *) note "check-fmnist-ci-wgrad-same: not run (TRAIN_RUN_ARGS without --deterministic: the algorithms are timed)" ;;
    esac
fi

# (b4) a method whose loss runs on the host (LT_METHOD_HOST_TAPS: bsig):
# eager steps with the logits copied back and the gradients uploaded each
# step; its log lines say what share of each epoch that round trip took
# (the first GPU run of that path; into the wgrad root: nothing to commit)
if RUN_RESULTS=$WG_RESULTS run check-fmnist-ci-bsig 120 --protocol fmnist_lt_r100 --method bsig --scale ci \
    --seed 0; then
    note "check-fmnist-ci-bsig: $(grep -o 'epoch [0-9]*/[0-9]* .*img/s (host hooks [0-9]*%)' \
        "$GPU_LOGS/check-fmnist-ci-bsig.log" | tail -1)"
fi

# (b4') a host-taps loss with a sub-graph of the device model (mbj: its
# memory's rows through the head on the device, copied in and out)
if RUN_RESULTS=$WG_RESULTS run check-fmnist-ci-mbj 120 --protocol fmnist_lt_r100 --method mbj --scale ci \
    --seed 0; then
    note "check-fmnist-ci-mbj: $(grep -o 'epoch [0-9]*/[0-9]* .*img/s (host hooks [0-9]*%)' \
        "$GPU_LOGS/check-fmnist-ci-mbj.log" | tail -1)"
fi

# (b4'') a label-conditioned layer with CUDA kernels of its own, in the
# captured step (camc: cam_pool reads lt_step's staged labels); its first
# GPU run: the epoch line (graph steps, img/s) and the test metrics
if RUN_RESULTS=$WG_RESULTS run check-fmnist-ci-camc 90 --protocol fmnist_lt_r100 --method camc --scale ci \
    --seed 0; then
    note "check-fmnist-ci-camc: $(grep -o '"graph_steps":[0-9]*' \
        "$WG_RESULTS/runs/fmnist_lt_r100/ci/camc@cuda/seed0/events.jsonl" 2>/dev/null | tail -1) $(grep -o \
        '"top1":[0-9.]*' "$WG_RESULTS/runs/fmnist_lt_r100/ci/camc@cuda/seed0/result.json" 2>/dev/null)"
fi

# (b5) post_train and class_norms on the cpu twin of the device model:
# taunorm on (b3)'s ce (its shared stage 1, in the same root)
if RUN_RESULTS=$WG_RESULTS run check-fmnist-ci-taunorm 60 --protocol fmnist_lt_r100 --method taunorm --scale ci \
    --seed 0; then
    note "check-fmnist-ci-taunorm: $(grep -o '"event":"host_model".*' \
        "$WG_RESULTS/runs/fmnist_lt_r100/ci/taunorm@cuda/seed0/events.jsonl" 2>/dev/null | tr '\n' ' ')"
fi

# (c) the runs to commit, while time is left
for s in 0 1 2; do
    run "fmnist-short-seed$s" 100 --protocol fmnist_lt_r100 --method ce --scale short --seed "$s"
done

# (c') ssd on the device (after the runs to commit: its key encoder and
# teacher are cpu modules, so the host does much of each step): its three
# stages finish; the last epoch line of each stage says the host's share
if RUN_RESULTS=$WG_RESULTS run check-fmnist-ci-ssd 90 --protocol fmnist_lt_r100 --method ssd --scale ci \
    --seed 0; then
    note "check-fmnist-ci-ssd: $(grep -o 'epoch [0-9]*/[0-9]* .*img/s (host hooks [0-9]*%)' \
        "$GPU_LOGS/check-fmnist-ci-ssd.log" | tail -1) $(grep -o '"top1":[0-9.]*' \
        "$WG_RESULTS/runs/fmnist_lt_r100/ci/ssd@cuda/seed0/result.json" 2>/dev/null)"
fi

# (c'') cbn on the device: its mixture layers have no CUDA code and run on
# the host (copies each way, host_layer_s in each epoch); the last epoch
# line says the host's share
if RUN_RESULTS=$WG_RESULTS run check-fmnist-ci-cbn 90 --protocol fmnist_lt_r100 --method cbn --scale ci \
    --seed 0; then
    note "check-fmnist-ci-cbn: $(grep -o 'epoch [0-9]*/[0-9]* .*img/s (host hooks [0-9]*%) (host layers [0-9]*%)' \
        "$GPU_LOGS/check-fmnist-ci-cbn.log" | tail -1) $(grep -o '"top1":[0-9.]*' \
        "$WG_RESULTS/runs/fmnist_lt_r100/ci/cbn@cuda/seed0/result.json" 2>/dev/null)"
fi

# (d) the input pipeline alone (CPU only, about 20 s; after the runs to
# commit): the images per second the loader delivers at the ImageNet-LT
# protocol's input on this machine's cores
NCPU=$(nproc)
step bench-pipeline 60 "$BUILD/bench_pipeline" --images 384 --seconds 1 \
    --workers "$(printf '%s\n' 1 4 8 "$NCPU" | awk -v n="$NCPU" '$1 <= n' | sort -nu | paste -sd,)"
grep '^bench-pipeline:' "$GPU_LOGS/bench-pipeline.log" >> "$LOGDIR/bench-gpu.txt" 2>/dev/null || true

# (e) the ResNet-50 smoke run
if step imagenet-fixture-gen 120 "$BUILD/make_imagenet_lt_fixture" "$DATA/imagenet_lt_fixture/raw"; then
    if run imagenet-fixture-r50 200 --protocol imagenet_lt_fixture --method ce --scale full --seed 0; then
        # cuda runs live in <method>@cuda (fp32), <method>@cuda-tf32, or their -nhwc twins
        r=$(ls "$RESULTS"/runs/imagenet_lt_fixture/full/ce@cuda*/seed0/result.json 2>/dev/null | head -1)
        python3 - "$r" <<'EOF' | tee -a "$GPU_LOGS/imagenet-fixture-r50.log" || true
import json, sys
d = json.load(open(sys.argv[1]))
t = d.get("timings", {})
st = (t.get("stages_s") or [0])[0]
n = d.get("dataset", {}).get("train_size") or 2701
print("imagenet-fixture-r50: ResNet-50 224x224, 1 epoch, %s images in %.1f s of stage 1 = %.1f img/s (loader, "
      "augmentation and the step, end to end); eval %.1f s; top1 %s; conv_backend %s" %
      (n, st, n / st if st else 0, t.get("eval_s", 0), d.get("metrics", {}).get("top1"),
       d.get("env", {}).get("conv_backend")))
EOF
    fi
else
    note "imagenet-fixture-r50: not run (no fixture: imagenet-fixture-gen did not pass)"
fi

# (f) after everything else, auxiliary (a failure here fails nothing):
# what one training step's convolutions cost in cuDNN with NCHW tensors
# (the backend's layout) against NHWC (PyTorch's channels-last), the
# fastest algorithm each (tests/bench/bench_conv_layout.c); then one
# training step's kernels under Nsight Compute, for the next speed work.
# (its own build here: a failure to build it fails nothing either)
# (ResNet-50 tf32 first; the lines finished before a timeout are kept)
saved=$FAILED
step conv-layout 150 make --no-print-directory "${MAKEVARS[@]}" \
    BENCH_CONV_LAYOUT_ARGS="--models resnet32_cifar,resnet50" bench-conv-layout
grep '^conv-layout:' "$GPU_LOGS/conv-layout.log" 2>/dev/null | tee -a "$LOGDIR/bench-gpu.txt" || true
FAILED=$saved
# LT_BENCH_PROFILE=1 puts one step after the warm-up in the profiler's
# range; ncu times each kernel alone (gpu__time_duration), and
# tests/gpu/ncu_summary.py sums them by name and kind into the log.
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
if [ -n "$NCU" ] && [ -x "$BUILD/bench_gpu" ]; then
    # each model: ltbench's step (ResNet-50 tf32 in NHWC first, then NCHW),
    # then PyTorch's once (bench_gpu_torch.py, the same model, batch and
    # math mode as make bench-gpu)
    declare -A PROFILED=()
    for mm in resnet32_cifar:fp32:3:32:128:100:nchw resnet50:tf32:3:224:256:1000:nhwc \
              resnet50:tf32:3:224:256:1000:nchw; do
        IFS=: read -r m mode c hw batch classes lay <<< "$mm"
        sides=ltbench
        [ -n "${PROFILED[$m:$mode]:-}" ] || sides="ltbench pytorch"
        PROFILED[$m:$mode]=1
        for side in $sides; do
            if [ "$side" = ltbench ]; then
                tag=$mode-$lay
                cmd=("$BUILD/bench_gpu" --models "$m" --modes "$mode" --layouts "$lay" --no-torch --seconds 0.2)
            else
                tag=$mode
                cmd=(python3 tests/bench/bench_gpu_torch.py --seconds 0.2 --modes "$mode" "$m:$c:$hw:$batch:$classes")
            fi
            saved=$FAILED
            # the GPU's own clocks and warm caches, as in the bench (ncu's
            # defaults lock base clocks and flush caches before each kernel)
            if step "profile-$side-$m-$tag" 120 env LT_BENCH_PROFILE=1 "$NCU" --profile-from-start off \
                --clock-control none --cache-control none \
                --metrics gpu__time_duration.sum --csv --page raw --log-file "$GPU_LOGS/ncu-$side-$m-$tag.csv" \
                "${cmd[@]}"; then
                python3 tests/gpu/ncu_summary.py "$GPU_LOGS/ncu-$side-$m-$tag.csv" 2>&1 |
                    sed "s/^ncu-summary:/ncu-summary: $side $m $tag:/" | tee -a "$LOGDIR/bench-gpu.txt"
            fi
            FAILED=$saved   # auxiliary
        done
    done
else
    note "profile: SKIPPED (no ncu, or no bench_gpu)"
fi
finish
