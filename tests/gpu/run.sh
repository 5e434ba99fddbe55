#!/usr/bin/env bash
# tests/gpu/run.sh [--build-only] LOGDIR — build the CUDA library and its
# tests (the op table test_backend_ops, the whole models test_model_cuda,
# the training steps and CUDA graphs test_train_cuda) on
# the GPU machine, run them, and write the logs into LOGDIR.
# tests/gpu/README.md says how to call it through the device tool.
#
# Needs: nvcc (PATH, $NVCC or /usr/local/cuda/bin/nvcc); cuDNN 9 and cuBLAS
# from PyTorch's pip wheels (python3 -c 'import nvidia.cudnn') or else from
# nvcc's toolkit; OpenBLAS, CMocka and cJSON (the engine's build needs) from
# the .debs in .gpudeps/ (unpacked with dpkg -x into a temp folder, never
# into /) or else from the system. --build-only stops after the build (any
# machine with nvcc: it checks the script, the flags and the link here).
set -euo pipefail

die() { echo "tests/gpu/run.sh: ERROR: $*" >&2; exit 1; }
say() { echo "== $*"; }

BUILD_ONLY=0
if [ "${1:-}" = "--build-only" ]; then BUILD_ONLY=1; shift; fi
[ $# -eq 1 ] || die "usage: tests/gpu/run.sh [--build-only] LOGDIR"
mkdir -p "$1" || die "cannot create log folder $1"
LOGDIR=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
exec > >(tee "$LOGDIR/run.log") 2>&1
START=$(date +%s)
JOBS=$(nproc 2>/dev/null || echo 4)
BUILD=${BUILD:-build/gpu}

# ---- nvcc and the toolkit ---------------------------------------------------------
NVCC=${NVCC:-$(command -v nvcc || true)}
[ -n "$NVCC" ] || NVCC=/usr/local/cuda/bin/nvcc
[ -x "$NVCC" ] || die "no nvcc (not in PATH, not /usr/local/cuda/bin/nvcc; set NVCC=/path/to/nvcc)"
CUDA_HOME=$(cd "$(dirname "$NVCC")/.." && pwd)
CUDA_LIBDIR=""
for d in "$CUDA_HOME/lib64" "$CUDA_HOME/lib" "$CUDA_HOME/targets/x86_64-linux/lib"; do
    if [ -e "$d/libcudart.so" ]; then CUDA_LIBDIR=$d; break; fi
done
[ -n "$CUDA_LIBDIR" ] || die "no libcudart.so under $CUDA_HOME (lib64, lib, targets/x86_64-linux/lib)"
say "nvcc: $NVCC ($("$NVCC" --version | tail -1)); cudart: $CUDA_LIBDIR"

TMP=$(mktemp -d /tmp/ltgpu.XXXXXX)
LNK=$TMP/lnk   # unversioned .so links for the linker (wheels ship only libX.so.N)
mkdir -p "$LNK"

# ---- cuDNN and cuBLAS: PyTorch's wheels first, else the toolkit -----------------------
wheel_dir() {   # wheel_dir nvidia.cudnn -> its folder, or nothing
    python3 -c "import $1 as m, sys; sys.stdout.write(list(m.__path__)[0])" 2>/dev/null || true
}
# find_lib DIR NAME -> links LNK/libNAME.so to the newest libNAME.so[.N] in DIR
find_lib() {
    local f
    f=$(ls "$1"/lib$2.so "$1"/lib$2.so.* 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$f" ] || return 1
    ln -sf "$f" "$LNK/lib$2.so"
}
W_CUDNN=$(wheel_dir nvidia.cudnn)
W_CUBLAS=$(wheel_dir nvidia.cublas)
if [ -n "$W_CUDNN" ] && [ -e "$W_CUDNN/include/cudnn.h" ]; then
    CUDNN_INC=$W_CUDNN/include; CUDNN_LIB=$W_CUDNN/lib; say "cuDNN: pip wheel $W_CUDNN"
elif [ -e "$CUDA_HOME/include/cudnn.h" ]; then
    CUDNN_INC=$CUDA_HOME/include; CUDNN_LIB=$CUDA_LIBDIR; say "cuDNN: toolkit $CUDA_HOME"
else
    die "no cuDNN: neither python3's nvidia.cudnn wheel nor $CUDA_HOME/include/cudnn.h"
fi
if [ -n "$W_CUBLAS" ] && [ -e "$W_CUBLAS/include/cublas_v2.h" ]; then
    CUBLAS_INC=$W_CUBLAS/include; CUBLAS_LIB=$W_CUBLAS/lib; say "cuBLAS: pip wheel $W_CUBLAS"
elif [ -e "$CUDA_HOME/include/cublas_v2.h" ]; then
    CUBLAS_INC=$CUDA_HOME/include; CUBLAS_LIB=$CUDA_LIBDIR; say "cuBLAS: toolkit $CUDA_HOME"
else
    die "no cuBLAS: neither python3's nvidia.cublas wheel nor $CUDA_HOME/include/cublas_v2.h"
fi
find_lib "$CUDNN_LIB" cudnn || die "no libcudnn.so* in $CUDNN_LIB"
find_lib "$CUBLAS_LIB" cublas || die "no libcublas.so* in $CUBLAS_LIB"
find_lib "$CUBLAS_LIB" cublasLt || true
grep -h -E '#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ' "$CUDNN_INC"/cudnn_version*.h | awk '{printf "%s=%s ", $2, $3} END {print ""}'

# ---- OpenBLAS, CMocka, cJSON: .gpudeps/*.deb unpacked into TMP, else the system ---------
DEPS=$TMP/deps
DEP_INC=""; DEP_LIB=""
if ls .gpudeps/*.deb >/dev/null 2>&1; then
    command -v dpkg >/dev/null || die "dpkg not found: cannot unpack .gpudeps/*.deb"
    for f in .gpudeps/*.deb; do dpkg -x "$f" "$DEPS" || die "dpkg -x $f failed"; done
    OB=$DEPS/usr/lib/x86_64-linux-gnu/openblas-pthread
    [ -e "$DEPS/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h" ] || die ".gpudeps: no cblas.h (libopenblas-pthread-dev missing)"
    [ -e "$DEPS/usr/include/cmocka.h" ] || die ".gpudeps: no cmocka.h (libcmocka-dev missing)"
    [ -e "$OB/libopenblas.so.0" ] || die ".gpudeps: no libopenblas.so.0 (libopenblas0-pthread missing)"
    ln -sf "$OB/libopenblas.so.0" "$LNK/libopenblas.so"
    DEP_INC="-I$DEPS/usr/include/x86_64-linux-gnu/openblas-pthread -I$DEPS/usr/include"
    DEP_LIB="$OB:$DEPS/usr/lib/x86_64-linux-gnu"
    say "OpenBLAS, CMocka, cJSON: $(ls .gpudeps/*.deb | wc -l) .debs from .gpudeps unpacked into $DEPS"
else
    echo '#include <cblas.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
int main(void) { return 0; }' > "$TMP/probe.c"
    cc -I/usr/include/x86_64-linux-gnu/openblas-pthread -c "$TMP/probe.c" -o "$TMP/probe.o" 2>/dev/null ||
        die "no .gpudeps/*.deb and no system cblas.h / cmocka.h / cJSON.h; fetch them where apt works:
  mkdir -p .gpudeps && (cd .gpudeps && apt-get download libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libquadmath0 libcmocka0 libcmocka-dev libcjson1 libcjson-dev)
  and name .gpudeps in the device call's carry"
    say "OpenBLAS, CMocka, cJSON: system"
fi

# ---- build --------------------------------------------------------------------------
RPATH="$CUDNN_LIB:$CUBLAS_LIB:$CUDA_LIBDIR${DEP_LIB:+:$DEP_LIB}"
CUDA_LDLIBS="-L$LNK -L$CUDA_LIBDIR -lcudnn -lcublas -lcudart -lstdc++ -Wl,-rpath,$RPATH"
LDLIBS="-L$LNK ${DEP_LIB:+-L${DEP_LIB//:/ -L}} -lopenblas -lcjson -lm -lpthread -fopenmp"
TESTS="test_backend_ops test_model_cuda test_train_cuda"
say "build: make BUILD=$BUILD -j$JOBS cuda"
make --no-print-directory -j"$JOBS" BUILD="$BUILD" NVCC="$NVCC" CUDA_HOME="$CUDA_HOME" \
    CUDNN_INC="$CUDNN_INC" CUBLAS_INC="$CUBLAS_INC" CUDA_LDLIBS="$CUDA_LDLIBS" LDLIBS="$LDLIBS" \
    OPT="-O2 $DEP_INC" "$BUILD/libltcuda.a" $(for t in $TESTS; do echo "$BUILD/tests/$t"; done) > "$LOGDIR/build.log" 2>&1 ||
    { tail -40 "$LOGDIR/build.log"; die "build failed (whole log: $LOGDIR/build.log)"; }
say "built $BUILD/libltcuda.a and $BUILD/tests/{${TESTS// /,}} ($(( $(date +%s) - START )) s)"
export LD_LIBRARY_PATH="$RPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if command -v ldd >/dev/null; then
    ldd "$BUILD/tests/test_backend_ops" > "$LOGDIR/ldd.txt" 2>&1 || true
    if grep -q 'not found' "$LOGDIR/ldd.txt"; then grep 'not found' "$LOGDIR/ldd.txt"; die "unresolved shared libraries (see $LOGDIR/ldd.txt)"; fi
fi
if [ "$BUILD_ONLY" = 1 ]; then say "--build-only: done"; rm -rf "$TMP"; exit 0; fi

# ---- run ----------------------------------------------------------------------------
command -v nvidia-smi >/dev/null && nvidia-smi > "$LOGDIR/nvidia-smi.txt" 2>&1 || true
fail=""
for t in $TESTS; do
    say "$t: $BUILD/tests/$t (log: $LOGDIR/$t.log)"
    set +e
    CMOCKA_MESSAGE_OUTPUT=stdout timeout 900 "$BUILD/tests/$t" > "$LOGDIR/$t.log" 2>&1
    rc=$?
    set -e
    cat "$LOGDIR/$t.log"
    if [ "$rc" -eq 124 ]; then fail="$fail $t(timed out after 900 s)";
    elif grep -q '^\[  SKIPPED \]' "$LOGDIR/$t.log"; then fail="$fail $t(GPU cases SKIPPED: no usable CUDA device, see the skip: lines)";
    elif [ "$rc" -ne 0 ]; then fail="$fail $t(exit $rc: see the FAIL rows and [  FAILED  ] lines)"; fi
done
rm -rf "$TMP"
say "finished in $(( $(date +%s) - START )) s"
[ -z "$fail" ] || die "failed:$fail"
say "all GPU checks passed"
