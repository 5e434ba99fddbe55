# ltbench — build, test, reproduce.  `make help` lists the targets.
#
# Layout: engine/ -> build/libltengine.a, datasets/ -> build/libltdata.a,
# harness/ (minus main.c) -> build/libltharness.a, methods/*/ linked into the
# ltbench binary; every tests/test_*.c is its own CMocka executable.

CC      ?= cc
OPT     ?= -O2
# -std=c11 (not gnu11) keeps -ffp-contract=off: no silent FMA contraction,
# so numbers do not change with the compiler's mood.
CFLAGS  ?= $(OPT) -g
# -Wno-format-truncation: every snprintf into a fixed buffer is a deliberate,
# bounded truncation; gcc cannot see the bounds and would bury real warnings.
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-format-truncation -fopenmp -pthread \
           -Iengine -Idatasets -Iharness -MMD -MP
LDLIBS  += -lopenblas -larchive -lcurl -lcjson -ljpeg -lm -lpthread -ldl -fopenmp
# OpenBLAS's OpenMP build (Debian's libopenblas0-openmp, harness/deps.sh),
# found before the default pthreads build by the runtime linker: its threads
# are the engine's OpenMP pool, where the pthreads build's pool and OpenMP's
# take turns spinning and yielding on the same cores (measured on a 2-core
# CPU without AVX-512, whose convolutions are im2col + sgemm: a ci-scale run
# 71 s -> 35 s, the same bits). Harmless where the folder does not exist;
# kept when LDLIBS is given on the command line (override), dropped with
# OPENBLAS_OMP_RPATH= (the fuzz build).
# (:= so that the compiler is asked once, not at every link that expands LDLIBS)
ifeq ($(origin OPENBLAS_OMP_DIR),undefined)
OPENBLAS_OMP_DIR := /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null)/openblas-openmp
endif
OPENBLAS_OMP_RPATH ?= -Wl,-rpath,$(OPENBLAS_OMP_DIR)
override LDLIBS += $(OPENBLAS_OMP_RPATH)
BUILD   ?= build

ENGINE_SRC  := $(sort $(wildcard engine/*.c))
DATA_SRC    := $(sort $(wildcard datasets/*.c))
HARNESS_SRC := $(sort $(filter-out harness/main.c,$(wildcard harness/*.c)))
METHOD_SRC  := $(sort $(wildcard methods/*/*.c))
TEST_SRC    := $(sort $(wildcard tests/test_*.c))
TESTLIB_SRC := $(sort $(filter-out $(TEST_SRC),$(wildcard tests/*.c tests/methods_test/*.c)))
# Every methods/<x>/method.c is a method; <x> must be a C identifier.
METHOD_DIRS := $(sort $(patsubst methods/%/method.c,%,$(wildcard methods/*/method.c)))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
ENGINE_LIB  := $(BUILD)/libltengine.a
DATA_LIB    := $(BUILD)/libltdata.a
HARNESS_LIB := $(BUILD)/libltharness.a
METHODS_TABLE := $(BUILD)/methods_table.c
METHOD_OBJ  := $(call obj,$(METHOD_SRC)) $(BUILD)/methods_table.o
TEST_BIN    := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
# test_blas_build once more, against OpenBLAS's pthreads build (what a
# program linked without the runpath gets): lt_set_num_threads's other branch
TEST_BIN    += $(BUILD)/tests/test_blas_build_pthreads
LIBS        := $(HARNESS_LIB) $(DATA_LIB) $(ENGINE_LIB)
# Programs that may load the CUDA module (build/libltcuda.so, engine/lt_backend_dl.c)
# export the whole engine to it: the module's code calls the engine's functions
# (lt_err, the model's helpers) in the program rather than carrying copies.
DYN_LDFLAGS := -rdynamic
DYN_LIBS    := $(HARNESS_LIB) $(DATA_LIB) -Wl,--whole-archive $(ENGINE_LIB) -Wl,--no-whole-archive

# ---- CUDA op library (issue 19): built only where nvcc is found -----------------
# engine/cuda/*.cu -> build/libltcuda.a (cuDNN 9 + cuBLAS + own kernels) and the
# tests build/tests/test_backend_ops and test_model_cuda (tests/gpu/), which make test runs
# (without a GPU its device cases report SKIPPED). The same -fPIC objects
# (build/pic/, one nvcc compile) -> build/libltcuda.so, the CUDA module ./ltbench loads on
# demand for --device cuda (issue 20; engine/lt_cuda_module.h): it exports one
# symbol (engine/cuda/module.map) and finds cuDNN, cuBLAS and cudart by rpath.
# No nvcc (or CUDA=0): nothing here is built and every other target is
# unchanged; ./ltbench then answers --device cuda with "not built". The include / library
# folders default to nvcc's toolkit; tests/gpu/run.sh points them at PyTorch's
# pip-wheel cuDNN / cuBLAS on the GPU machine.
# the tests' helpers (op table comparator, stand-in device): also the CPU
# emulator's tests use them, with or without nvcc
CUDA_TESTLIB_SRC := tests/gpu/optable.c tests/gpu/conv_plan.c tests/standin_dev.c tests/host_plugin.c
NVCC ?= $(firstword $(wildcard /usr/local/cuda/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
ifeq ($(CUDA),0)
NVCC :=
endif
ifneq ($(strip $(NVCC)),)
CUDA_HOME  ?= $(patsubst %/bin/,%,$(dir $(NVCC)))
CUDA_LIBDIR ?= $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/lib))
CUDNN_INC  ?= $(CUDA_HOME)/include
CUDNN_LIB  ?= $(CUDA_LIBDIR)
CUBLAS_INC ?= $(CUDA_HOME)/include
CUBLAS_LIB ?= $(CUDA_LIBDIR)
CUDART_LIB ?= $(CUDA_LIBDIR)
# sm_90 machine code (H100 / H200) plus compute_90 PTX for anything newer
NVCC_ARCH  ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCCFLAGS  ?= -O2 -g
# warnings are errors here; the GPU scripts pass NVCC_WERROR= (another host
# compiler there may warn where this one does not)
NVCC_WERROR ?= -Werror all-warnings
# --fmad=false: no FMA contraction, as the C side's -ffp-contract=off, so the
# elementwise kernels compute the CPU's floats bit for bit
NVCCFLAGS  += -std=c++17 --fmad=false $(NVCC_ARCH) $(NVCC_WERROR) \
              -Xcompiler -Wall,-Wextra,-Wno-format-truncation \
              -Iengine -Iengine/cuda -I$(CUDNN_INC) -I$(CUBLAS_INC) -MMD -MP
CUDA_SRC   := $(sort $(wildcard engine/cuda/*.cu))
# the model glue (lt_backend_cuda_create, the built-in layers on the device):
# plain C with the engine's flags
CUDA_CSRC  := $(sort $(wildcard engine/cuda/*.c))
CUDA_LIB   := $(BUILD)/libltcuda.a
CUDA_SO    := $(BUILD)/libltcuda.so
CUDA_PIC_OBJ := $(patsubst %.cu,$(BUILD)/pic/%.o,$(CUDA_SRC)) $(patsubst %.c,$(BUILD)/pic/%.o,$(CUDA_CSRC))
CUDA_LDLIBS ?= -L$(CUDNN_LIB) -L$(CUBLAS_LIB) -L$(CUDART_LIB) -lcudnn -lcublas -lcudart -lstdc++ \
              -Wl,-rpath,$(CUDNN_LIB) -Wl,-rpath,$(CUBLAS_LIB) -Wl,-rpath,$(CUDART_LIB)
# tests/gpu/test_*.c: the op table and the whole models (cpu vs cuda)
CUDA_TEST_BIN := $(patsubst tests/gpu/%.c,$(BUILD)/tests/%,$(sort $(wildcard tests/gpu/test_*.c)))
# nvcc without the cuDNN / cuBLAS headers (a bare toolkit): say so and build
# the CPU targets only, rather than fail the whole build
ifeq ($(strip $(wildcard $(CUDNN_INC)/cudnn.h)),)
$(info make: $(NVCC) found but not $(CUDNN_INC)/cudnn.h: the CUDA op library is not built (CUDNN_INC=... to name it))
NVCC :=
else ifeq ($(strip $(wildcard $(CUBLAS_INC)/cublas_v2.h)),)
$(info make: $(NVCC) found but not $(CUBLAS_INC)/cublas_v2.h: the CUDA op library is not built (CUBLAS_INC=... to name it))
NVCC :=
endif
endif
ifeq ($(strip $(NVCC)),)
CUDA_LIB :=
CUDA_SO :=
CUDA_TEST_BIN :=
endif

.PHONY: all deps check-deps test asan cuemu bench bench-pipeline bench-deps bench-gpu bench-conv-layout verify-torch clean help lvis-fixture imagenet-lt-fixture fuzz fuzz-deps fuzz-build fuzz-seeds cuda FORCE
all: ltbench $(CUDA_LIB) $(CUDA_SO)

help:
	@echo "make              build ./ltbench and the libraries (and build/libltcuda.a, .so where nvcc is found)"
	@echo "make cuda         the CUDA library, the module build/libltcuda.so (ltbench run --device cuda)"
	@echo "                  and its tests build/tests/test_backend_ops, test_model_cuda"
	@echo "make cuemu        the CUDA library on the CPU emulator (tests/cuemu): build/libltcuemu.so and"
	@echo "                  the GPU tests against it, build/tests/*_emu (make test runs them; no nvcc needed)"
	@echo "make deps         install the Debian packages the project needs"
	@echo "make test         build and run the CMocka suite (runs deps first if needed)"
	@echo "make asan         the suite under AddressSanitizer + UBSan"
	@echo "make bench        time ResNet-32 / ResNet-8 steps, side by side with PyTorch"
	@echo "make bench-pipeline  images/s of the input pipeline alone (ImageNet-LT 224 crop, 1..nproc loader workers)"
	@echo "make bench-deps   install Debian python3-torch for the PyTorch side of bench"
	@echo "make bench-gpu    CUDA backend train/eval img/s of ResNet-32, ResNet-8, ResNet-50 (fp32, tf32) side by side"
	@echo "                  with PyTorch eager on the same GPU (BENCH_GPU_PYTHON=python3, BENCH_GPU_ARGS=...)"
	@echo "make bench-conv-layout  one training step's cuDNN convolutions, NCHW against NHWC (channels-last)"
	@echo "make verify-torch ResNet-8/32 logits, loss, gradients, BN stats against PyTorch (skips without torch)"
	@echo "make lvis-fixture write the synthetic LVIS look-alike (dataset lvis_fixture) into the data dir"
	@echo "make imagenet-lt-fixture  the synthetic ImageNet-LT look-alike (dataset imagenet_lt_fixture) likewise"
	@echo "make fuzz         libFuzzer targets of every input parser, FUZZ_SECONDS (60) each, + tests/fuzz/regressions"
	@echo "make fuzz-deps    install Debian clang-14, libclang-rt-14-dev, libomp-14-dev for make fuzz"
	@echo "make reproduce METHOD=m [REUSE=any] [DEVICE=cpu|cuda|cuda:N] [MATH=fp32|tf32] [LAYOUT=nchw|nhwc] [DETERMINISTIC=0|1]"
	@echo "                  runs (re-using current ones), leaderboard, figures"
	@echo "make sweep METHODS=a,b PROTOCOLS=p,q [SEEDS=0,1,2] [SCALE=short] [JOBS=N] [DEVICE=..] [MATH=..] [LAYOUT=..] [DETERMINISTIC=0|1] [SWEEP_ARGS=...]"
	@echo "                  a grid of runs (shared stage 1 once, finished runs skipped), leaderboard, figures;"
	@echo "                  SWEEP_ARGS='--executor slurm --partition P' submits job arrays (ltbench sweep --help)"
	@echo "make slurm-deps   install Debian slurm-wlm and munge (for the Slurm test of make test)"
	@echo "make regen-results [PROTOCOLS=a,b]   re-run the committed grid (results/grid.txt) at this engine"
	@echo "make regress-ci   re-run every row of results/reference/ci.csv from scratch and compare (CI does;"
	@echo "                  make test re-runs the ce and cbd_teacher families only)"
	@echo "make verify-results  re-run ce and crt seed 0 and compare with the committed results"
	@echo "make clean        remove build outputs"

deps:
	@harness/deps.sh install

check-deps:
	@harness/deps.sh check || harness/deps.sh install

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# A method compiles against the public headers alone (lt.h and what it
# includes, lt_method.h): they are linked into $(BUILD)/method-include, the
# methods' only include directory, so an engine, dataset or harness header
# outside that set is not found (test_method_isolation scans the includes
# too). Quoted includes inside the links resolve next to the links.
METHOD_PUBLIC_H := engine/lt.h engine/lt_backend.h engine/lt_base.h engine/lt_calib.h engine/lt_centroids.h \
                   engine/lt_ckpt.h engine/lt_data.h engine/lt_kit.h engine/lt_loss.h engine/lt_metrics.h \
                   engine/lt_model.h engine/lt_ops.h engine/lt_rng.h harness/lt_method.h
METHOD_INC := $(BUILD)/method-include
METHOD_CFLAGS = $(filter-out -Iengine -Idatasets -Iharness,$(CFLAGS)) -I$(METHOD_INC)
$(METHOD_INC)/%.h: engine/%.h
	@mkdir -p $(dir $@); ln -sf $(CURDIR)/$< $@
$(METHOD_INC)/%.h: harness/%.h
	@mkdir -p $(dir $@); ln -sf $(CURDIR)/$< $@
$(call obj,$(METHOD_SRC)): $(BUILD)/obj/%.o: %.c | $(addprefix $(METHOD_INC)/,$(notdir $(METHOD_PUBLIC_H)))
	@mkdir -p $(dir $@)
	$(CC) $(METHOD_CFLAGS) -c $< -o $@

# The method table: Lua's rule, directory name x -> entry point lt_method_x.
# Regenerated on every make but replaced only when its text changes, so
# adding or removing a methods/<x>/ folder relinks and nothing else does.
$(METHODS_TABLE): FORCE
	@mkdir -p $(dir $@)
	@{ echo '/* generated by the Makefile from methods/<x>/method.c: do not edit */'; \
	   echo '#include "lt_runner.h"'; \
	   for m in $(METHOD_DIRS); do echo "const lt_method *lt_method_$$m(void);"; done; \
	   echo 'const lt_method_entry lt_method_table[] = {'; \
	   for m in $(METHOD_DIRS); do echo "    lt_method_$$m,"; done; \
	   echo '    NULL'; echo '};'; } > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/methods_table.o: $(METHODS_TABLE)
	$(CC) $(CFLAGS) -c $< -o $@

$(ENGINE_LIB): $(call obj,$(ENGINE_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(DATA_LIB): $(call obj,$(DATA_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(HARNESS_LIB): $(call obj,$(HARNESS_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^

ltbench: $(call obj,harness/main.c) $(METHOD_OBJ) $(LIBS)
	$(CC) $(CFLAGS) $(DYN_LDFLAGS) -o $@ $(call obj,harness/main.c) $(METHOD_OBJ) $(DYN_LIBS) $(LDLIBS)

# TEST_LINK: how a test links the libraries; the tests that load a CUDA
# module link as ./ltbench does, so the module resolves its engine symbols
# from them
TEST_LINK = $(LIBS)
$(BUILD)/tests/test_backend_load $(BUILD)/tests/test_run_cuemu: TEST_LINK = $(DYN_LDFLAGS) $(DYN_LIBS)
$(BUILD)/tests/%: tests/%.c $(call obj,$(TESTLIB_SRC)) $(METHOD_OBJ) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(call obj,$(TESTLIB_SRC)) $(METHOD_OBJ) $(TEST_LINK) $(LDLIBS) -lcmocka
$(BUILD)/tests/test_blas_build_pthreads: tests/test_blas_build.c $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DLT_BLAS_PTHREADS -o $@ $< $(LIBS) $(filter-out $(OPENBLAS_OMP_RPATH),$(LDLIBS)) \
	    -Wl,-rpath,$(patsubst %/openblas-openmp,%/openblas-pthread,$(OPENBLAS_OMP_DIR)) -lcmocka

ifneq ($(strip $(NVCC)),)
# one compile of the CUDA sources (nvcc is the slow part of the build): the
# position-independent objects serve both the static library (tests/gpu
# programs, PIE like every program here) and the module
$(CUDA_LIB): $(CUDA_PIC_OBJ)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
# the module: position-independent objects, one exported symbol, the engine's
# symbols left undefined (the loading program has them)
$(BUILD)/pic/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -Xcompiler -fPIC -c $< -o $@
$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@
$(CUDA_SO): $(CUDA_PIC_OBJ) engine/cuda/module.map
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(CUDA_PIC_OBJ) -Wl,--version-script=engine/cuda/module.map $(CUDA_LDLIBS)
# libltcuda.a BEFORE libltengine.a: its lt_backend_cuda_create (the real one)
# must be taken before the engine's weak ENOTBUILT stub (lt_backend.h)
$(CUDA_TEST_BIN): $(BUILD)/tests/%: tests/gpu/%.c $(call obj,$(CUDA_TESTLIB_SRC)) $(CUDA_LIB) $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iengine/cuda -Itests/gpu -Itests -o $@ $< $(call obj,$(CUDA_TESTLIB_SRC)) $(CUDA_LIB) $(ENGINE_LIB) \
	    $(CUDA_LDLIBS) $(LDLIBS) -lcmocka
cuda: $(CUDA_LIB) $(CUDA_SO) $(CUDA_TEST_BIN)
else
cuda:
	@echo "cuda: no nvcc found (NVCC=/path/to/nvcc to name one): nothing to build" >&2; exit 1
endif

# ---- the CUDA library on the CPU emulator (tests/cuemu) ---------------------------
# The same engine/cuda sources built by g++ against tests/cuemu's runtime,
# fake cuDNN and fake cuBLAS (-DLT_CUEMU): build/libltcuemu.a, the module
# build/libltcuemu.so (LTBENCH_CUDA_LIB=build/libltcuemu.so ./ltbench run ...
# --device cuda runs the CUDA code path on the CPU), and tests/gpu's programs
# linked against it as build/tests/<name>_emu, which make test runs: every
# GPU case then runs here, on the emulated device. Needs no nvcc. Where the
# nvcc build of the same tests exists, the _emu twin leaves out their CPU-only
# cases (-DLT_TEST_EMU_TWIN): the nvcc build's binary runs them.
CXX ?= g++
CUEMU_CXXFLAGS = $(OPT) -g -std=c++17 -D_GNU_SOURCE -DLT_CUEMU -Wall -Wextra -Wno-format-truncation \
                 -ffp-contract=off -pthread -Itests/cuemu/include -Itests/cuemu -Iengine -Iengine/cuda -MMD -MP
CUEMU_LIBSRC := $(sort $(wildcard tests/cuemu/lt_cuemu_*.cc))
CUEMU_CUDA_SRC := $(sort $(wildcard engine/cuda/*.cu))
CUEMU_CUDA_CSRC := $(sort $(wildcard engine/cuda/*.c))
CUEMU_OBJ := $(patsubst %.cu,$(BUILD)/cuemu/%.o,$(CUEMU_CUDA_SRC)) $(patsubst %.cc,$(BUILD)/cuemu/%.o,$(CUEMU_LIBSRC)) \
             $(patsubst %.c,$(BUILD)/cuemu/%.o,$(CUEMU_CUDA_CSRC))
CUEMU_LIB := $(BUILD)/libltcuemu.a
CUEMU_SO  := $(BUILD)/libltcuemu.so
CUEMU_TEST_BIN := $(patsubst tests/gpu/%.c,$(BUILD)/tests/%_emu,$(sort $(wildcard tests/gpu/test_*.c))) \
                  $(patsubst tests/cuemu/%.cc,$(BUILD)/tests/%,$(sort $(wildcard tests/cuemu/test_*.cc))) \
                  $(patsubst tests/cuemu/%.c,$(BUILD)/tests/%,$(sort $(wildcard tests/cuemu/test_*.c)))
$(BUILD)/cuemu/%.o: %.cu
	@mkdir -p $(dir $@)
	$(CXX) $(CUEMU_CXXFLAGS) -fPIC -x c++ -c $< -o $@
# The emulated convolutions are most of the emulated runs' time: vectorised
# (-O3; every output element still sums its terms in the same order, and
# -ffp-contract=off keeps each product and sum a separate rounding).
$(BUILD)/cuemu/tests/cuemu/lt_cuemu_dnn.o: CUEMU_CXXFLAGS += -O3
$(BUILD)/cuemu/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CUEMU_CXXFLAGS) -fPIC -c $< -o $@
$(BUILD)/cuemu/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -c $< -o $@
$(CUEMU_LIB): $(CUEMU_OBJ)
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(CUEMU_SO): $(CUEMU_OBJ) engine/cuda/module.map
	$(CXX) -shared -o $@ $(CUEMU_OBJ) -Wl,--version-script=engine/cuda/module.map -lopenblas -pthread
$(filter %_emu,$(CUEMU_TEST_BIN)): $(BUILD)/tests/%_emu: tests/gpu/%.c $(call obj,$(CUDA_TESTLIB_SRC)) $(CUEMU_LIB) $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(strip $(NVCC)),-DLT_TEST_EMU_TWIN) -Iengine/cuda -Itests/gpu -Itests -o $@ $< \
	    $(call obj,$(CUDA_TESTLIB_SRC)) $(CUEMU_LIB) $(ENGINE_LIB) $(LDLIBS) -lstdc++ -lcmocka
$(patsubst tests/cuemu/%.cc,$(BUILD)/tests/%,$(sort $(wildcard tests/cuemu/test_*.cc))): $(BUILD)/tests/%: \
    tests/cuemu/%.cc $(CUEMU_LIB) $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CUEMU_CXXFLAGS) -o $@ $< $(CUEMU_LIB) $(ENGINE_LIB) $(LDLIBS) -lcmocka
$(patsubst tests/cuemu/%.c,$(BUILD)/tests/%,$(sort $(wildcard tests/cuemu/test_*.c))): $(BUILD)/tests/%: \
    tests/cuemu/%.c $(call obj,$(CUDA_TESTLIB_SRC)) $(CUEMU_LIB) $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/cuemu -Itests/gpu -o $@ $< $(call obj,$(CUDA_TESTLIB_SRC)) $(CUEMU_LIB) $(ENGINE_LIB) \
	    $(LDLIBS) -lstdc++ -lcmocka
cuemu: $(CUEMU_LIB) $(CUEMU_SO) $(CUEMU_TEST_BIN)

# ltbench is not a prerequisite: `make asan` must never replace ./ltbench
# with an instrumented build.
tests-build: $(TEST_BIN)
# the CUDA library's tests (their CPU cases run everywhere; nothing where nvcc is missing),
# and the emulator module that test_run_cuemu's runs load (make asan: its small case)
tests-build-cuda: $(CUDA_TEST_BIN) $(CUEMU_TEST_BIN) $(CUEMU_SO)

# The suite: every test binary (LT_TEST_JOBS at once, default nproc / 2: tests/run.sh),
# then one summary line "N passed, N skipped, N failed". Last, after
# --light (nproc at once), the binaries that keep about one core busy: the
# emulator's (its kernels run on the calling thread), and those of the
# models, the runner, sweeps and host services (one thread, or waiting on
# children, files and servers); the longest first so that they overlap.
TEST_LIGHT_FIRST := $(addprefix $(BUILD)/tests/,test_run_cuemu test_model_cuda_emu test_train_cuda_emu test_sweep \
                    test_model test_host_services test_runner test_run_safety test_alloc_steps)
TEST_LIGHT := $(TEST_LIGHT_FIRST) $(filter-out $(TEST_LIGHT_FIRST),$(CUEMU_TEST_BIN))
TEST_ORDER := $(filter-out $(TEST_LIGHT),$(TEST_BIN) $(CUDA_TEST_BIN)) --light $(TEST_LIGHT)
test: check-deps
	@$(MAKE) --no-print-directory tests-build ltbench $(CUDA_TEST_BIN) $(CUDA_SO) $(CUEMU_TEST_BIN) $(CUEMU_SO)
	@tests/run.sh $(TEST_ORDER)

asan:
	@$(MAKE) --no-print-directory check-deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" \
	    LDLIBS="$(filter-out $(OPENBLAS_OMP_RPATH),$(LDLIBS)) -fsanitize=address,undefined" tests-build tests-build-cuda
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    tests/run.sh $(patsubst $(BUILD)/%,build-asan/%,$(TEST_ORDER))

# ltbench and PyTorch (tests/bench/bench_torch.py) alternate in one run;
# the PyTorch side is skipped with a message when torch is not installed.
bench: check-deps
	@$(MAKE) --no-print-directory $(BUILD)/bench_step
	@$(BUILD)/bench_step $(BENCH_STEPS)

# Debian's torch is only importable with /usr/bin/python3.
bench-deps:
	@if /usr/bin/python3 -c 'import torch' 2>/dev/null; then echo "bench-deps: python3-torch present"; \
	elif [ "$$(id -u)" -eq 0 ]; then apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-torch; \
	else echo "bench-deps: run: sudo apt-get install -y --no-install-recommends python3-torch" >&2; exit 1; fi

# The bench needs only the engine.
$(BUILD)/bench_step: tests/bench/bench_step.c $(call obj,tests/cpu_peak.c) $(ENGINE_LIB)
	$(CC) $(CFLAGS) -o $@ $< $(call obj,tests/cpu_peak.c) $(ENGINE_LIB) $(LDLIBS)

# make bench-gpu: the CUDA backend side by side with PyTorch eager on the same
# GPU (tests/bench/bench_gpu.c runs tests/bench/bench_gpu_torch.py with
# BENCH_GPU_PYTHON, PyTorch's python3 on the GPU machine; tests/gpu/train.sh
# runs it there). Not a test: it prints `bench-gpu: ...` lines with the
# ratios and whether each train target is met, and "skipped: no CUDA device"
# (status 0) where there is none. Needs the CUDA library, so nvcc with the
# cuDNN and cuBLAS headers (CUDNN_INC / CUBLAS_INC name them elsewhere).
BENCH_GPU_PYTHON ?= python3
BENCH_GPU_ARGS   ?=
ifneq ($(strip $(NVCC)),)
$(BUILD)/bench_gpu: tests/bench/bench_gpu.c $(call obj,tests/gpu_peak.c) $(CUDA_LIB) $(ENGINE_LIB)
	$(CC) $(CFLAGS) -Iengine/cuda -o $@ $< $(call obj,tests/gpu_peak.c) $(CUDA_LIB) $(ENGINE_LIB) \
	    $(CUDA_LDLIBS) $(LDLIBS)
bench-gpu:
	@$(MAKE) --no-print-directory $(BUILD)/bench_gpu
	@BENCH_GPU_PYTHON="$(BENCH_GPU_PYTHON)" $(BUILD)/bench_gpu $(BENCH_GPU_ARGS)
# One training step's convolutions in cuDNN, NCHW against NHWC, fastest
# algorithms (tests/bench/bench_conv_layout.c): `conv-layout: ...` lines.
$(BUILD)/bench_conv_layout: tests/bench/bench_conv_layout.c $(ENGINE_LIB)
	$(CC) $(CFLAGS) -Iengine/cuda -I$(CUDNN_INC) -I$(CUDA_HOME)/include -o $@ $< $(ENGINE_LIB) $(CUDA_LDLIBS) $(LDLIBS)
bench-conv-layout:
	@$(MAKE) --no-print-directory $(BUILD)/bench_conv_layout
	@$(BUILD)/bench_conv_layout $(BENCH_CONV_LAYOUT_ARGS)
else
bench-conv-layout:
	@echo "bench-conv-layout: needs nvcc with the cuDNN headers (tests/gpu/README.md)" >&2; exit 1
bench-gpu:
	@echo "bench-gpu: needs the CUDA library (build/libltcuda.a): no nvcc with cuDNN and cuBLAS headers found;" \
	    "name them with NVCC=/path/to/nvcc CUDNN_INC=... CUBLAS_INC=... (tests/gpu/README.md)" >&2; exit 1
endif

# The input pipeline alone (issue 20): images per second lt_loader delivers
# for the ImageNet-LT protocol's 224 input with 1..nproc workers, from the
# dataset cache and from JPEGs decoded per sample (tests/bench/bench_pipeline.c).
# BENCH_PIPELINE_ARGS="--images 512 --seconds 5" to change the defaults.
bench-pipeline: check-deps
	@$(MAKE) --no-print-directory $(BUILD)/bench_pipeline
	@$(BUILD)/bench_pipeline $(BENCH_PIPELINE_ARGS)
$(BUILD)/bench_pipeline: tests/bench/bench_pipeline.c $(call obj,tests/fixtures_img.c) $(HARNESS_LIB) $(DATA_LIB) $(ENGINE_LIB)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(call obj,tests/fixtures_img.c) $(HARNESS_LIB) $(DATA_LIB) $(ENGINE_LIB) $(LDLIBS)

# Whole-model parity with PyTorch: the engine writes weights, a batch and
# its results (tests/verify_torch/verify_torch.c), PyTorch recomputes and
# compares them. Without python3-torch it says "skipped" and succeeds.
VERIFY_DIR = $(BUILD)/verify_torch_out
$(BUILD)/verify_torch: tests/verify_torch/verify_torch.c $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(ENGINE_LIB) $(LDLIBS)
verify-torch: check-deps
	@$(MAKE) --no-print-directory $(BUILD)/verify_torch
	@if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then \
	    echo "verify-torch: SKIPPED: python3-torch not installed (make bench-deps)"; exit 0; fi; \
	$(BUILD)/verify_torch $(VERIFY_DIR) && /usr/bin/python3 tests/verify_torch/verify_torch.py $(VERIFY_DIR)

# The synthetic LVIS look-alike for protocol lvis_lt_fixture (no real LVIS
# here): four files in the real formats, written straight into raw/.
LVIS_FIXTURE_DIR = $(or $(LTBENCH_DATA),data)/lvis_fixture/raw
$(BUILD)/make_lvis_fixture: tests/tools/make_lvis_fixture.c $(call obj,tests/fixtures_lvis.c tests/fixtures_img.c)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
lvis-fixture: check-deps
	@$(MAKE) --no-print-directory $(BUILD)/make_lvis_fixture
	@$(BUILD)/make_lvis_fixture $(LVIS_FIXTURE_DIR)

# The synthetic ImageNet-LT look-alike for protocol imagenet_lt_fixture (a
# full-scale model's smoke run: 1000 classes, 224 px, ~4,700 JPEGs in the
# real split-list and nested-tar layout), written straight into raw/.
INET_FIXTURE_DIR = $(or $(LTBENCH_DATA),data)/imagenet_lt_fixture/raw
$(BUILD)/make_imagenet_lt_fixture: tests/tools/make_imagenet_lt_fixture.c $(call obj,tests/fixtures_inet.c tests/fixtures_img.c)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
imagenet-lt-fixture:
	@$(MAKE) --no-print-directory $(BUILD)/make_imagenet_lt_fixture
	@$(BUILD)/make_imagenet_lt_fixture $(INET_FIXTURE_DIR)

clean:
	rm -rf build build-asan build-fuzz ltbench

# ---- fuzzing: libFuzzer targets tests/fuzz/fuzz_<name>.c -------------------------
# `make fuzz` builds the libraries with clang into build-fuzz/ through the
# object rules above (BUILD=build-fuzz, as `make asan` does with build-asan),
# links each target with libFuzzer, replays tests/fuzz/regressions/<name>/,
# then fuzzes each target for FUZZ_SECONDS on build-fuzz/corpus/<name> (a
# working copy: the committed corpus is never written). Crashes land in
# build-fuzz/crashes/<name>/; tests/fuzz/run.sh prints one line per target
# and fails when any target crashed. README.md, "Fuzzing".
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang-14
FUZZ_PKGS    := clang-14 libclang-rt-14-dev libomp-14-dev
FUZZ_TARGETS := $(sort $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_BIN     := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))
# -Wno-unknown-warning-option: clang does not know gcc's -Wno-format-truncation;
# -Wno-pass-failed: clang reports the `omp simd` loops it leaves scalar.
FUZZ_OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=undefined -Wno-unknown-warning-option -Wno-pass-failed
# clang's OpenMP is libomp: the fuzz targets keep the default OpenBLAS build
# (no runpath), not the one that brings libgomp in beside it.
# The AVX-512 and AVX2 convolution kernels select their ISA with `#pragma GCC target`,
# which clang ignores: build-fuzz's engine library leaves them out and the
# targets link tests/fuzz/conv_stubs.c instead (no parser runs a convolution).
FUZZ_ENGINE_SRC := $(filter-out engine/lt_conv_fast.c engine/lt_conv_wino.c engine/lt_conv_avx2.c,$(ENGINE_SRC))
FUZZ_LIB_OBJ := $(call obj,tests/fuzz/common.c tests/fuzz/conv_stubs.c)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJ) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/fuzz -o $@ $< $(FUZZ_LIB_OBJ) $(LIBS) $(LDLIBS)
fuzz-build: $(FUZZ_LIB_OBJ) $(FUZZ_BIN)

fuzz: check-deps fuzz-deps
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=$(FUZZ_CC) OPT="$(FUZZ_OPT)" ENGINE_SRC="$(FUZZ_ENGINE_SRC)" \
	    OPENBLAS_OMP_RPATH= LDLIBS="$(filter-out $(OPENBLAS_OMP_RPATH),$(LDLIBS)) -fsanitize=fuzzer,address,undefined" \
	    fuzz-build
	@tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-deps:
	@miss=""; for p in $(FUZZ_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || miss="$$miss $$p"; done; \
	if [ -z "$$miss" ]; then echo "fuzz-deps: $(FUZZ_PKGS) present"; \
	elif [ "$$(id -u)" -eq 0 ]; then echo "fuzz-deps: installing$$miss"; apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$miss; \
	else echo "fuzz-deps: run: sudo apt-get install -y --no-install-recommends$$miss" >&2; exit 1; fi

# The binary seeds of tests/fuzz/corpus/ (IDX, CIFAR, archives, checkpoints),
# regenerated byte for byte; the text seeds are committed as they are.
$(BUILD)/fuzz_gen_seeds: tests/fuzz/gen_seeds.c $(call obj,tests/fuzz/common.c) $(ENGINE_LIB)
	$(CC) $(CFLAGS) -Itests/fuzz -o $@ $< $(call obj,tests/fuzz/common.c) $(ENGINE_LIB) $(LDLIBS)
fuzz-seeds: check-deps
	@$(MAKE) --no-print-directory $(BUILD)/fuzz_gen_seeds
	$(BUILD)/fuzz_gen_seeds tests/fuzz/corpus

# -type f: an unpacked .deb (build/gpu-deps, tests/gpu/env.sh) holds folders named *.d
-include $(shell find $(BUILD) -name '*.d' -type f 2>/dev/null)

# ---- reporting: reproduce, leaderboard, figures, number regression ----------
# make reproduce METHOD=m [PROTOCOL=fmnist_lt_r100] [SCALE=short] [SEEDS=0,1,2] [RESULTS=results]
#                [DEVICE=cpu|cuda|cuda:N] [MATH=fp32|tf32] [LAYOUT=nchw|nhwc] [DETERMINISTIC=0|1]
#   dataset -> every seed (finished runs re-used) -> leaderboard -> figures,
#   then the method's leaderboard row. A second call re-uses everything.
#   DEVICE=cuda: the runs on the GPU (the CUDA module build/libltcuda.so is
#   built first), their own rows; MATH and LAYOUT only with it. GPU runs are
#   deterministic (--deterministic: bit-identical reruns on the same GPU
#   model, and the identity of the committed GPU rows) unless DETERMINISTIC=0.
# make regress-ci: re-runs results/reference/ci.csv's runs from scratch in a
#   scratch results root (results/ is left alone) and compares the numbers.
PROTOCOL ?= fmnist_lt_r100
SCALE    ?= short
SEEDS    ?=
RESULTS  ?= results
DEVICE   ?=
MATH     ?=
LAYOUT   ?=
DETERMINISTIC ?= $(if $(filter cuda%,$(DEVICE)),1,0)
# --device / --math / --layout / --deterministic for the runs, and the CUDA module they load
DEVICE_ARGS = $(if $(DEVICE),--device $(DEVICE)) $(if $(MATH),--math $(MATH)) $(if $(LAYOUT),--layout $(LAYOUT)) \
              $(if $(filter 1,$(DETERMINISTIC)),--deterministic)
DEVICE_DEPS = $(if $(filter cuda%,$(DEVICE)),$(CUDA_SO))
.PHONY: reproduce leaderboard figures regress-ci regen-grid regen-results verify-results sweep slurm-deps

reproduce: check-deps
	@test -n "$(METHOD)" || { echo "usage: make reproduce METHOD=m [PROTOCOL=fmnist_lt_r100] [SCALE=short] [SEEDS=0,1,2] [DEVICE=cuda] [MATH=tf32] [LAYOUT=nhwc] [DETERMINISTIC=0]" >&2; exit 2; }
	@$(MAKE) --no-print-directory ltbench $(DEVICE_DEPS)
	$(if $(filter lvis_lt_fixture,$(PROTOCOL)),@$(MAKE) --no-print-directory lvis-fixture)
	$(if $(filter imagenet_lt_fixture,$(PROTOCOL)),@$(MAKE) --no-print-directory imagenet-lt-fixture)
	./ltbench reproduce --method $(METHOD) --protocol $(PROTOCOL) --scale $(SCALE) $(if $(SEEDS),--seeds $(SEEDS)) \
	    --results $(RESULTS) $(if $(REUSE),--reuse $(REUSE)) $(DEVICE_ARGS)

# make sweep METHODS=a,b PROTOCOLS=p,q [SEEDS=0,1,2] [SCALE=short] [JOBS=N] [DEVICE=..] [MATH=..] [LAYOUT=..] [DETERMINISTIC=0|1] [SWEEP_ARGS=...]
#   ltbench sweep: the grid with its shared stage-1 runs, -j JOBS at a time
#   (threads split over the cores), finished runs skipped, then leaderboard and
#   figures. SWEEP_ARGS passes anything else (--dry-run, --status, --executor
#   slurm --partition P ...).
JOBS ?= 1
sweep: check-deps
	@test -n "$(METHODS)" -a -n "$(PROTOCOLS)" || { echo "usage: make sweep METHODS=a,b PROTOCOLS=p,q [SEEDS=0,1,2] [SCALE=short] [JOBS=N] [DEVICE=..] [MATH=..] [LAYOUT=..] [DETERMINISTIC=0|1] [SWEEP_ARGS=...]" >&2; exit 2; }
	@$(MAKE) --no-print-directory ltbench $(DEVICE_DEPS)
	./ltbench sweep --methods $(METHODS) --protocols $(PROTOCOLS) --scale $(SCALE) $(if $(SEEDS),--seeds $(SEEDS)) \
	    --results $(RESULTS) -j $(JOBS) $(DEVICE_ARGS) $(SWEEP_ARGS)

# Debian's Slurm and munge: tests/slurm/run_slurm_test.sh starts a private
# one-node cluster with them (skipped by make test where they are absent).
slurm-deps:
	@if dpkg-query -W -f='$${Status}' slurm-wlm 2>/dev/null | grep -q "install ok installed" && \
	    dpkg-query -W -f='$${Status}' munge 2>/dev/null | grep -q "install ok installed"; then \
	    echo "slurm-deps: slurm-wlm and munge present"; \
	elif [ "$$(id -u)" -eq 0 ]; then \
	    apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge; \
	else echo "slurm-deps: not root; run: sudo apt-get update && sudo apt-get install -y slurm-wlm munge" >&2; exit 1; fi

# make regen-grid: results/grid.txt from results/runs (stage-1 methods first).
# make regen-results [PROTOCOLS=a,b]: re-run the committed grid at the current
#   engine, one run at a time, skipping runs already current under the strict
#   re-use rule (so it resumes), then leaderboard and figures. Refuses a dirty
#   tree. harness/regen_results.sh.
# make verify-results: re-run seed 0 of ce and crt (fmnist_lt_r100 short) and
#   compare with the committed files: exact where the fingerprint matches,
#   within results/reference tolerance otherwise. harness/verify_results.sh.
regen-grid:
	@harness/regen_results.sh grid

regen-results: check-deps
	@$(MAKE) --no-print-directory ltbench
	@PROTOCOLS="$(PROTOCOLS)" RESULTS="$(RESULTS)" harness/regen_results.sh run

verify-results: check-deps
	@$(MAKE) --no-print-directory ltbench
	@harness/verify_results.sh

leaderboard: ltbench
	./ltbench leaderboard --results $(RESULTS)

figures: ltbench
	./ltbench figures --results $(RESULTS)

regress-ci: ltbench
	@rm -rf $(BUILD)/regress-ci
	./ltbench regress --scale ci --rerun --results $(BUILD)/regress-ci
