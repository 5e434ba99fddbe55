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
LDLIBS  += -lopenblas -larchive -lcurl -lcjson -ljpeg -lm -lpthread -fopenmp
BUILD   ?= build

ENGINE_SRC  := $(sort $(wildcard engine/*.c))
DATA_SRC    := $(sort $(wildcard datasets/*.c))
HARNESS_SRC := $(sort $(filter-out harness/main.c,$(wildcard harness/*.c)))
METHOD_SRC  := $(sort $(wildcard methods/*/*.c))
TEST_SRC    := $(sort $(wildcard tests/test_*.c))
TESTLIB_SRC := $(sort $(filter-out $(TEST_SRC),$(wildcard tests/*.c)))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
ENGINE_LIB  := $(BUILD)/libltengine.a
DATA_LIB    := $(BUILD)/libltdata.a
HARNESS_LIB := $(BUILD)/libltharness.a
METHOD_OBJ  := $(call obj,$(METHOD_SRC))
TEST_BIN    := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
LIBS        := $(HARNESS_LIB) $(DATA_LIB) $(ENGINE_LIB)

.PHONY: all deps check-deps test asan bench clean help
all: ltbench

help:
	@echo "make              build ./ltbench and the libraries"
	@echo "make deps         install the Debian packages the project needs"
	@echo "make test         build and run the CMocka suite (runs deps first if needed)"
	@echo "make asan         the suite under AddressSanitizer + UBSan"
	@echo "make bench        time training steps of ResNet-32 / ResNet-8"
	@echo "make clean        remove build outputs"

deps:
	@harness/deps.sh install

check-deps:
	@harness/deps.sh check || harness/deps.sh install

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(ENGINE_LIB): $(call obj,$(ENGINE_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(DATA_LIB): $(call obj,$(DATA_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(HARNESS_LIB): $(call obj,$(HARNESS_SRC))
	@mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^

ltbench: $(call obj,harness/main.c) $(METHOD_OBJ) $(LIBS)
	$(CC) $(CFLAGS) -o $@ $(call obj,harness/main.c) $(METHOD_OBJ) $(LIBS) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(call obj,$(TESTLIB_SRC)) $(METHOD_OBJ) $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(call obj,$(TESTLIB_SRC)) $(METHOD_OBJ) $(LIBS) $(LDLIBS) -lcmocka

tests-build: $(TEST_BIN) ltbench

# The suite: every test binary, then one summary line "N passed, N failed".
test: check-deps
	@$(MAKE) --no-print-directory tests-build
	@tests/run.sh $(TEST_BIN)

asan:
	@$(MAKE) --no-print-directory check-deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" \
	    LDLIBS="$(LDLIBS) -fsanitize=address,undefined" tests-build
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    tests/run.sh $(patsubst $(BUILD)/%,build-asan/%,$(TEST_BIN))

bench: check-deps
	@$(MAKE) --no-print-directory $(BUILD)/bench_step
	@$(BUILD)/bench_step

$(BUILD)/bench_step: tests/bench/bench_step.c $(LIBS)
	$(CC) $(CFLAGS) -o $@ $< $(LIBS) $(LDLIBS)

clean:
	rm -rf build build-asan ltbench

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
