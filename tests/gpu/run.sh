#!/usr/bin/env bash
# tests/gpu/run.sh [--build-only] LOGDIR — build the CUDA library and its
# tests (the op table test_backend_ops, the whole models test_model_cuda,
# the training steps and CUDA graphs test_train_cuda) on
# the GPU machine, run them, and write into LOGDIR run.log (everything) and
# run-logs.tgz (build.log, ldd.txt, nvidia-smi.txt, one log per test): two
# files, as the device tool brings back at most 8 from $OUT. Each test gets
# RUN_TEST_TIMEOUT_S (150) and no more than what is left of RUN_BUDGET_S
# (300, from the start); a test not run for want of time is a failure.
# tests/gpu/README.md says how to call it through the device tool.
#
# Needs: nvcc (PATH, $NVCC or /usr/local/cuda/bin/nvcc); cuDNN 9 and cuBLAS
# from PyTorch's pip wheels (python3 -c 'import nvidia.cudnn') or else from
# nvcc's toolkit; OpenBLAS, CMocka and cJSON (the engine's build needs) from
# the .debs in .gpudeps/ (tests/gpu/fetch-deps.sh; unpacked with dpkg -x
# into a temp folder, never into /) or else from the system. The discovery
# lives in tests/gpu/env.sh, shared with tests/gpu/train.sh. --build-only
# stops after the build (any machine with nvcc: it checks the script, the
# flags and the link here).
set -euo pipefail

# ---- the shared start, nvcc, cuDNN / cuBLAS, OpenBLAS / CMocka / cJSON: tests/gpu/env.sh --
. "$(dirname "$0")/env.sh"
gpu_script_init tests/gpu/run.sh run.log "$@"
gpu_env_toolkit
gpu_env_deps cblas.h cmocka.h cjson/cJSON.h

# ---- build --------------------------------------------------------------------------
GPU_BUDGET_S=${RUN_BUDGET_S:-300}
TEST_TIMEOUT=${RUN_TEST_TIMEOUT_S:-150}
gpu_env_flags
LDLIBS="-L$LNK ${DEP_LIB:+-L${DEP_LIB//:/ -L}} -lopenblas -lcjson -lm -lpthread -fopenmp"
TESTS="test_backend_ops test_model_cuda test_host_mem test_train_cuda test_subgraph_cuda"
say "build: make BUILD=$BUILD -j$JOBS cuda (logs packed into $LOGDIR/run-logs.tgz at the end)"
make --no-print-directory -j"$JOBS" BUILD="$BUILD" NVCC="$NVCC" NVCC_WERROR= CUDA_HOME="$CUDA_HOME" \
    CUDNN_INC="$CUDNN_INC" CUBLAS_INC="$CUBLAS_INC" CUDA_LDLIBS="$CUDA_LDLIBS" LDLIBS="$LDLIBS" \
    OPT="-O2 $DEP_INC" "$BUILD/libltcuda.a" $(for t in $TESTS; do echo "$BUILD/tests/$t"; done) > "$GPU_LOGS/build.log" 2>&1 ||
    { tail -40 "$GPU_LOGS/build.log"; die "build failed (whole log: build.log in run-logs.tgz)"; }
say "built $BUILD/libltcuda.a and $BUILD/tests/{${TESTS// /,}} ($(( $(date +%s) - START )) s)"
export LD_LIBRARY_PATH="$RPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if command -v ldd >/dev/null; then
    ldd "$BUILD/tests/test_backend_ops" > "$GPU_LOGS/ldd.txt" 2>&1 || true
    if grep -q 'not found' "$GPU_LOGS/ldd.txt"; then grep 'not found' "$GPU_LOGS/ldd.txt"; die "unresolved shared libraries (ldd.txt)"; fi
fi
if [ "$BUILD_ONLY" = 1 ]; then say "--build-only: done"; exit 0; fi

# ---- run: each test within TEST_TIMEOUT and the budget's time left ------------------
{ command -v nvidia-smi >/dev/null && nvidia-smi > "$GPU_LOGS/nvidia-smi.txt" 2>&1; } || true
fail=""
for t in $TESTS; do
    left=$(( $(gpu_budget_left) - 5 ))
    if [ "$left" -lt 10 ]; then fail="$fail $t(not run: the $GPU_BUDGET_S s budget is spent)"; continue; fi
    to=$TEST_TIMEOUT
    [ "$to" -le "$left" ] || to=$left
    say "$t: $BUILD/tests/$t (timeout $to s)"
    set +e
    CMOCKA_MESSAGE_OUTPUT=stdout timeout "$to" "$BUILD/tests/$t" > "$GPU_LOGS/$t.log" 2>&1
    rc=$?
    set -e
    cat "$GPU_LOGS/$t.log"
    if [ "$rc" -eq 124 ]; then fail="$fail $t(timed out after $to s)";
    elif grep -q '^\[  SKIPPED \]' "$GPU_LOGS/$t.log"; then fail="$fail $t(GPU cases SKIPPED: no usable CUDA device, see the skip: lines)";
    elif [ "$rc" -ne 0 ]; then fail="$fail $t(exit $rc: see the FAIL rows and [  FAILED  ] lines)"; fi
done
say "finished in $(( $(date +%s) - START )) s"
[ -z "$fail" ] || die "failed:$fail"
say "all GPU checks passed"
