# shellcheck shell=bash
# tests/gpu/env.sh — sourced (not run) by tests/gpu/run.sh and
# tests/gpu/train.sh (and, for gpu_tree_changes alone, pack-git.sh): the
# start both scripts share, and what finds the GPU machine's toolchain and
# libraries and sets the make variables that build against them. bash only; the caller sources it from anywhere, then calls
# gpu_script_init first (the others need its die(), say() and the
# repository root as the working directory).
#
#   gpu_script_init NAME LOG ARGS...
#                        die() and say() naming the script; ARGS are the
#                        script's: [--build-only] LOGDIR (BUILD_ONLY; LOGDIR
#                        created, made absolute); ROOT (the repository, and
#                        the working directory from here on); everything
#                        printed from here on teed into LOGDIR/LOG; START,
#                        JOBS (nproc), BUILD (default build/gpu); TMP
#                        removed on exit, however the script ends
#   gpu_env_toolkit      NVCC, CUDA_HOME, CUDA_LIBDIR; TMP (a temp folder the
#                        caller removes) and LNK (unversioned .so links for
#                        the linker: the wheels ship only libX.so.N);
#                        CUDNN_INC/_LIB, CUBLAS_INC/_LIB: PyTorch's pip
#                        wheels (python3 -c 'import nvidia.cudnn') first,
#                        else nvcc's toolkit
#   gpu_env_deps HDR...  DEPS, DEP_INC, DEP_LIB: the Debian .debs in
#                        .gpudeps/ (tests/gpu/fetch-deps.sh) unpacked with
#                        dpkg -x into build/gpu-deps (kept: the objects'
#                        header dependencies and the binaries' rpath point
#                        there, so run.sh's build stays valid for train.sh
#                        and after the script; unpacked again when the set
#                        of .debs changes), else the system; each
#                        header named must be found (cblas.h, cmocka.h,
#                        archive.h, ...), and where it was found is printed
#   gpu_env_git          where the copied tree has no .git (the device tool
#                        copies the work tree only) and .gpudeps/git exists
#                        (tests/gpu/pack-git.sh): GIT_DIR, GIT_WORK_TREE and
#                        a GIT_INDEX_FILE in $TMP exported, so the runs'
#                        `git rev-parse HEAD` / `git status` record the
#                        commit and whether this tree differs from it
#   gpu_tree_changes     the files that make a run of this tree dirty, one a
#                        line (also pack-git.sh's, which sources this file)
#   gpu_env_flags        RPATH, CUDA_LDLIBS, and DEP_RPATH_FLAGS: the
#                        linker flags that make a binary find the unpacked
#                        libraries by itself (below)
#
# Why DT_RPATH (-Wl,--disable-new-dtags) and not only LD_LIBRARY_PATH: the
# unpacked libcurl and libarchive need further unpacked libraries (libssh2,
# libxml2, ...); an executable's DT_RPATH is searched for those too (a
# DT_RUNPATH only for its direct needs), so ./ltbench and the test binaries
# run with no environment, and nothing exported leaks into the python3 that
# make bench-gpu starts (PyTorch loads its own libssl, libz, ... and must
# not get Debian's).

gpu_script_init() {
    GPU_SCRIPT=$1
    local log=$2
    shift 2
    die() { echo "$GPU_SCRIPT: ERROR: $*" >&2; exit 1; }
    say() { echo "== $*"; }
    BUILD_ONLY=0
    if [ "${1:-}" = "--build-only" ]; then BUILD_ONLY=1; shift; fi
    [ $# -eq 1 ] || die "usage: $GPU_SCRIPT [--build-only] LOGDIR"
    mkdir -p "$1" || die "cannot create log folder $1"
    LOGDIR=$(cd "$1" && pwd)
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    cd "$ROOT" || die "cannot enter $ROOT"
    exec > >(tee "$LOGDIR/$log") 2>&1
    GPU_TEE=$!
    START=$(date +%s)
    JOBS=$(nproc 2>/dev/null || echo 4)
    BUILD=${BUILD:-build/gpu}
    # the step logs: in a work folder, packed into LOGDIR/<name>-logs.tgz at
    # exit (the device tool brings back at most 8 files from $OUT)
    GPU_LOGS=$ROOT/build/gpu-logs/${log%.log}
    rm -rf "$GPU_LOGS"
    mkdir -p "$GPU_LOGS" || die "cannot create $GPU_LOGS"
    trap gpu_script_exit EXIT
}

# At exit, however the script ends: the step logs packed, the temp folder
# removed, and the log's tee drained (bash does not wait for a process
# substitution; the device tool ends what is left when the command returns).
gpu_script_exit() {
    local rc=$?
    if [ -n "${GPU_LOGS:-}" ] && [ -d "$GPU_LOGS" ] && [ -n "$(ls -A "$GPU_LOGS" 2>/dev/null)" ]; then
        tar czf "$LOGDIR/$(basename "$GPU_LOGS")-logs.tgz" -C "$GPU_LOGS" . 2>/dev/null ||
            echo "$GPU_SCRIPT: could not pack $GPU_LOGS"
    fi
    if [ -n "${TMP:-}" ]; then rm -rf "$TMP"; fi
    exec >&- 2>&-
    if [ -n "${GPU_TEE:-}" ]; then wait "$GPU_TEE" 2>/dev/null || true; fi
    exit "$rc"
}

# gpu_budget_left: seconds left of GPU_BUDGET_S (the caller's budget, from START)
gpu_budget_left() { echo $(( ${GPU_BUDGET_S:-540} - $(date +%s) + START )); }

# gpu_tree_changes: one line per file that makes a run of this tree dirty,
# as harness/lt_run_env.c decides it: tracked changes outside results/ and
# plots/out/ (git status --porcelain), and untracked sources in the folders
# the build takes by wildcard ("?? path"); git's errors on stderr, its
# failure the function's (pack-git.sh runs it on its pack to find one)
gpu_tree_changes() {
    git --no-optional-locks status --porcelain --untracked-files=no -- . ':(exclude)results' ':(exclude)plots/out' &&
        git ls-files --others --exclude-standard -- engine datasets harness methods | sed 's/^/?? /'
}

gpu_env_git() {
    GPU_GIT_NOTE="commit unknown"
    if [ -e "$ROOT/.git" ]; then GPU_GIT_NOTE="$ROOT/.git"; say "git: $ROOT/.git"; return 0; fi
    if [ ! -d "$ROOT/.gpudeps/git" ]; then
        GPU_GIT_NOTE="no .git and no .gpudeps/git: results say commit unknown (tests/gpu/pack-git.sh)"
        say "git: $GPU_GIT_NOTE"
        return 0
    fi
    if ! command -v git >/dev/null; then
        GPU_GIT_NOTE="git not installed here: results say commit unknown"
        say "git: $GPU_GIT_NOTE"
        return 0
    fi
    [ -n "${TMP:-}" ] || TMP=$(mktemp -d /tmp/ltgpu.XXXXXX)
    export GIT_DIR="$ROOT/.gpudeps/git" GIT_WORK_TREE="$ROOT" GIT_INDEX_FILE="$TMP/git-index"
    if ! git read-tree HEAD; then
        GPU_GIT_NOTE="read-tree HEAD in .gpudeps/git failed: results say commit unknown"
        say "git: $GPU_GIT_NOTE"
        unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE
        return 0
    fi
    local changed n
    changed=$(gpu_tree_changes 2>/dev/null)
    n=$(printf '%s' "$changed" | grep -c . || true)
    GPU_GIT_NOTE="commit $(git rev-parse HEAD) from .gpudeps/git, $n files differ"
    if [ "$n" -ne 0 ]; then
        GPU_GIT_NOTE="$GPU_GIT_NOTE: STALE pack, runs are dirty (run tests/gpu/pack-git.sh after the last commit)"
        printf '%s\n' "$changed" | head -10
    fi
    say "git: $GPU_GIT_NOTE ($(git --version))"
}

# wheel_dir nvidia.cudnn -> its folder, or nothing
wheel_dir() {
    python3 -c "import $1 as m, sys; sys.stdout.write(list(m.__path__)[0])" 2>/dev/null || true
}

# find_lib DIR NAME -> links LNK/libNAME.so to the newest libNAME.so[.N] in DIR
find_lib() {
    local f
    f=$(ls "$1"/lib$2.so "$1"/lib$2.so.* 2>/dev/null | sort -V | tail -1 || true)
    [ -n "$f" ] || return 1
    ln -sf "$f" "$LNK/lib$2.so"
}

gpu_env_toolkit() {
    NVCC=${NVCC:-$(command -v nvcc || true)}
    [ -n "$NVCC" ] || NVCC=/usr/local/cuda/bin/nvcc
    [ -x "$NVCC" ] || die "no nvcc (not in PATH, not /usr/local/cuda/bin/nvcc; set NVCC=/path/to/nvcc)"
    CUDA_HOME=$(cd "$(dirname "$NVCC")/.." && pwd)
    CUDA_LIBDIR=""
    local d
    # an unversioned libcudart.so (toolkit) or only libcudart.so.N (the pip
    # toolkit wheels): linked through LNK below either way
    for d in "$CUDA_HOME/lib64" "$CUDA_HOME/lib" "$CUDA_HOME/targets/x86_64-linux/lib"; do
        if ls "$d"/libcudart.so "$d"/libcudart.so.* >/dev/null 2>&1; then CUDA_LIBDIR=$d; break; fi
    done
    [ -n "$CUDA_LIBDIR" ] || die "no libcudart.so* under $CUDA_HOME (lib64, lib, targets/x86_64-linux/lib)"
    say "nvcc: $NVCC ($("$NVCC" --version | tail -1)); cudart: $CUDA_LIBDIR"

    [ -n "${TMP:-}" ] || TMP=$(mktemp -d /tmp/ltgpu.XXXXXX)
    LNK=$TMP/lnk
    mkdir -p "$LNK"
    find_lib "$CUDA_LIBDIR" cudart || die "no libcudart.so* in $CUDA_LIBDIR"

    # the wheels: cuDNN in nvidia/cudnn; cuBLAS in nvidia/cublas (CUDA 12
    # wheels) or nvidia/cu13 (CUDA 13 wheels: include/ and lib/ shared by the
    # toolkit packages)
    local W_CUDNN W_CUBLAS w
    W_CUDNN=$(wheel_dir nvidia.cudnn)
    W_CUBLAS=""
    for w in nvidia.cublas nvidia.cu13; do
        d=$(wheel_dir "$w")
        if [ -n "$d" ] && [ -e "$d/include/cublas_v2.h" ]; then W_CUBLAS=$d; break; fi
    done
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
        die "no cuBLAS: neither python3's nvidia.cublas / nvidia.cu13 wheel nor $CUDA_HOME/include/cublas_v2.h"
    fi
    find_lib "$CUDNN_LIB" cudnn || die "no libcudnn.so* in $CUDNN_LIB"
    find_lib "$CUBLAS_LIB" cublas || die "no libcublas.so* in $CUBLAS_LIB"
    find_lib "$CUBLAS_LIB" cublasLt || true
    { grep -h -E '#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) ' "$CUDNN_INC"/cudnn_version*.h | awk '{printf "%s=%s ", $2, $3} END {print ""}'; } || true
}

# Where header $1 is under the include folders $2... ("" when nowhere).
find_header() {
    local h=$1 d
    shift
    for d in "$@"; do
        if [ -e "$d/$h" ]; then echo "$d/$h"; return 0; fi
    done
    return 0
}

gpu_env_deps() {
    DEPS=$ROOT/build/gpu-deps
    DEP_INC=""; DEP_LIB=""
    local h f where stamp
    local MA=x86_64-linux-gnu
    if ls .gpudeps/*.deb >/dev/null 2>&1; then
        command -v dpkg >/dev/null || die "dpkg not found: cannot unpack .gpudeps/*.deb"
        stamp=$(cksum .gpudeps/*.deb | cksum)   # names and contents
        if [ "$(cat "$DEPS/.stamp" 2>/dev/null)" != "$stamp" ]; then
            rm -rf "$DEPS"
            mkdir -p "$DEPS" || die "cannot create $DEPS"
            for f in .gpudeps/*.deb; do dpkg -x "$f" "$DEPS" || die "dpkg -x $f failed"; done
            echo "$stamp" > "$DEPS/.stamp"
        fi
        local OB=$DEPS/usr/lib/$MA/openblas-pthread
        [ -e "$OB/libopenblas.so.0" ] || die ".gpudeps: no libopenblas.so.0 (libopenblas0-pthread missing; tests/gpu/fetch-deps.sh)"
        ln -sf "$OB/libopenblas.so.0" "$LNK/libopenblas.so"
        local incs=("$DEPS/usr/include/$MA/openblas-pthread" "$DEPS/usr/include/$MA" "$DEPS/usr/include")
        for h in "$@"; do
            where=$(find_header "$h" "${incs[@]}")
            [ -n "$where" ] || die ".gpudeps: no $h (its -dev package is missing: run tests/gpu/fetch-deps.sh where apt works)"
            echo "   $h: .gpudeps ($where)"
        done
        DEP_INC="-I${incs[0]} -I${incs[1]} -I${incs[2]}"
        DEP_LIB="$OB:$DEPS/usr/lib/$MA:$DEPS/lib/$MA"
        say "libraries: $(ls .gpudeps/*.deb | wc -l) .debs from .gpudeps, unpacked in $DEPS"
    else
        local incs=(/usr/include/$MA/openblas-pthread /usr/include/$MA /usr/include)
        for h in "$@"; do
            where=$(find_header "$h" "${incs[@]}")
            [ -n "$where" ] || die "no .gpudeps/*.deb and no system $h; fetch the .debs where apt works:
  bash tests/gpu/fetch-deps.sh      (writes .gpudeps/; name .gpudeps in the device call's carry)"
            echo "   $h: system ($where)"
        done
        say "libraries: system (no .gpudeps/*.deb)"
    fi
}

gpu_env_flags() {
    RPATH="$CUDNN_LIB:$CUBLAS_LIB:$CUDA_LIBDIR${DEP_LIB:+:$DEP_LIB}"
    CUDA_LDLIBS="-L$LNK -L$CUDA_LIBDIR -lcudnn -lcublas -lcudart -lstdc++ -Wl,-rpath,$RPATH"
    # DT_RPATH (see the top) and -rpath-link: the linker, too, must find the
    # unpacked libraries' own needs
    DEP_RPATH_FLAGS=""
    [ -z "$DEP_LIB" ] || DEP_RPATH_FLAGS="-Wl,--disable-new-dtags -Wl,-rpath,$DEP_LIB -Wl,-rpath-link,$DEP_LIB"
}
