# SPDX-License-Identifier: GPL-2.0
#
# rust_aio — the developer's entry points (see README.md).  Kbuild, not this
# file, describes the module to the kernel's build system.
#
#   make                 build rust_aio.ko (against the cached test kernel)
#   make check           build everything, boot the test kernel, run all tests,
#                        then check that every mutant (selftests/mutants/) is caught
#   make mutants         build the mutant modules in build/mutant/
#   make userspace       the rust-aio crate and libaio.so.1/libaio.a (build/lib/)
#   make fuzz            the structure-aware fuzzer, then trinity, for longer
#   make soak            traffic + migration + offlining for SOAK_SECONDS
#   make bench           the hot path next to io_uring and native aio, on the
#                        benchmark kernel (no KASAN, lockdep, DEBUG_VM...), fio on
#                        tmpfs and null_blk, a chart (build/bench/chart.svg);
#                        BENCH_RUNS=3 boots three times, PROFILE=1 adds flame graphs
#   make run             boot the test kernel and show the module at work
#   make stock-check     rust_aio on Debian's unmodified 7.3 kernel (scripts/stock-check)
#   make bench-stock     make bench's figures on that kernel (build/bench/stock/)
#   make install         the module (modules_install into updates/), the libaio drop-in, the
#                        crate's docs and the device's udev rule (PREFIX=/usr/local, DESTDIR)
#   make clean
#   make rust-analyzer   rust-project.json for editors
#
# KDIR=/path/to/kernel/build/tree builds against another kernel (a
# distribution's too: see README, "On a Debian machine"); it never starts a
# test-kernel build. LLVM= follows the tree (scripts/kdir-llvm: none for a
# gcc-built kernel, clang's version for a clang-built one) unless given; CC=
# names the gcc of a gcc-built kernel. scripts/check-kdir says, before
# anything is compiled, what a tree or the tools at hand lack.  CLIPPY=1 runs
# clippy on the Rust code: Debian's clippy-driver of the kernel's rustc (1.85.1, fetched by
# scripts/stock), with the kernel's lints.

TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD := $(TOP)/build
# The kernel side's Rust tools (rustc, rustdoc, bindgen) are Debian's for its 7.3 kernel,
# fetched by scripts/stock (make deps); rustup's build the user-space crates.
RUST_AIO_CACHE ?= $(HOME)/.cache/rust_aio
export PATH := $(RUST_AIO_CACHE)/debian-7.3/rust-bin:$(PATH)
# cargo, with rustup's rustc and rustdoc ahead of the kernel's.
export CARGO_RUSTUP := env PATH=$(HOME)/.cargo/bin:$(PATH) cargo

ifeq ($(origin KDIR),undefined)
# Expanded when first used, which is after `deps` has installed the tools
# the kernel's cache key is made of.
KDIR = $(shell $(TOP)/qemu/build-kernel --dir)
DEFAULT_KDIR := 1
LLVM ?= -19
export RUST_AIO_LLVM := $(LLVM)
else
LLVM ?= $(shell $(TOP)/scripts/kdir-llvm $(KDIR))
endif

KBUILD_ARGS = -C $(KDIR) M=$(TOP) $(if $(LLVM),LLVM=$(LLVM))

# Test-only mutants: selftests/mutants/NAME.patch is a known migration bug,
# built from a patched copy of the sources in build/mutant/NAME/ (the shipped
# source carries none). make check builds every one and requires each to be
# caught; make check MUTANT=NAME runs the whole suite on one (it must fail).
MUTANTS := $(sort $(basename $(notdir $(wildcard $(TOP)/selftests/mutants/*.patch))))
MUTANT_KO = $(BUILD)/mutant/$(1)/rust_aio.ko
CHECK_KO = $(if $(MUTANT),$(call MUTANT_KO,$(MUTANT)),$(TOP)/rust_aio.ko)

.PHONY: all module mutants deps kernel userspace selftests check fuzz soak bench run clean \
	rust-analyzer stock-check install bench-stock

all: module

deps:
	@$(TOP)/scripts/install-deps

kernel: deps
ifdef DEFAULT_KDIR
	@$(TOP)/qemu/build-kernel >/dev/null
endif

module: kernel
	@$(TOP)/scripts/check-kdir "$(KDIR)" "$(LLVM)" "$(if $(filter command line,$(origin CC)),$(CC))"
	@$(TOP)/scripts/kdir-stamp "$(KDIR)"
	@$(TOP)/scripts/no-warnings $(TOP) $(MAKE) $(KBUILD_ARGS) modules

mutants: kernel
	@for m in $(if $(MUTANT),$(MUTANT),$(MUTANTS)); do \
		$(TOP)/scripts/mutant-source $$m $(BUILD)/mutant/$$m && \
		$(TOP)/scripts/no-warnings $(BUILD)/mutant/$$m \
			$(MAKE) -s -C $(KDIR) M=$(BUILD)/mutant/$$m $(if $(LLVM),LLVM=$(LLVM)) modules \
			|| exit 1; \
	done

# User space: the rust-aio crate (its own tests run on the host, its docs
# must build without a warning: build/userspace/doc/rust_aio/) and the
# libaio drop-in, libaio.a from cargo and libaio.so.1 linked from it with
# libaio's soname and symbol versions (userspace/libaio/libaio.map).
LIBDIR := $(BUILD)/lib
userspace: deps
	@cd $(TOP)/userspace && $(CARGO_RUSTUP) build --quiet --release --locked --target-dir $(BUILD)/userspace \
		--lib --examples
	@cd $(TOP)/userspace && $(CARGO_RUSTUP) test --quiet --release --locked --target-dir $(BUILD)/userspace \
		-p rust-aio
	@cd $(TOP)/userspace && RUSTDOCFLAGS="-D warnings" $(CARGO_RUSTUP) doc --quiet --no-deps --locked \
		--target-dir $(BUILD)/userspace -p rust-aio
	@mkdir -p $(LIBDIR)
	@cp $(BUILD)/userspace/release/libaio.a $(LIBDIR)/libaio.a
	gcc -shared -static-libgcc -o $(LIBDIR)/libaio.so.1 -Wl,-soname,libaio.so.1 \
		-Wl,--version-script=$(TOP)/userspace/libaio/libaio.map \
		-Wl,--whole-archive $(LIBDIR)/libaio.a -Wl,--no-whole-archive -lpthread -ldl -lm
	@ln -sf libaio.so.1 $(LIBDIR)/libaio.so

selftests: kernel userspace
	@$(MAKE) -C $(TOP)/selftests KDIR="$(KDIR)" OUT="$(BUILD)/selftests" LIBDIR="$(LIBDIR)"

check: module mutants selftests
	@$(TOP)/scripts/check-raw-calls
	@$(TOP)/scripts/check-stack $(TOP)/rust_aio.ko "$(KDIR)"
	@$(TOP)/selftests/run-all --kernel "$(KDIR)/arch/x86/boot/bzImage" \
		--module "$(CHECK_KO)" --bin "$(BUILD)/selftests" \
		$(if $(MUTANT),--mutant $(MUTANT),--mutants \
			"$(foreach m,$(MUTANTS),$(m)=$(call MUTANT_KO,$(m)))")

# Knobs of the long runs (see README.md).
SECONDS ?= 600
SEED ?=
TRINITY_SECONDS ?= $(SECONDS)
TRINITY_SEED ?=
SOAK_SECONDS ?= 1800
RUN_ALL = $(TOP)/selftests/run-all --kernel "$(KDIR)/arch/x86/boot/bzImage" \
	--module "$(TOP)/rust_aio.ko" --bin "$(BUILD)/selftests"

fuzz: module selftests
	@$(RUN_ALL) --name fuzz --tests "fuzz trinity-run" \
		--env FUZZ_SECONDS=$(SECONDS) --env FUZZ_SEED=$(SEED) \
		--env TRINITY_SECONDS=$(TRINITY_SECONDS) --env TRINITY_SEED=$(TRINITY_SEED) \
		--per-test $$(( $(SECONDS) + $(TRINITY_SECONDS) + 300 )) \
		--timeout $$(( $(SECONDS) + $(TRINITY_SECONDS) + 900 ))

soak: module selftests
	@$(RUN_ALL) --name soak --tests soak --env SOAK_SECONDS=$(SOAK_SECONDS) \
		--per-test $$(( $(SOAK_SECONDS) + 600 )) --timeout $$(( $(SOAK_SECONDS) + 1200 ))

# The benchmark kernel, and the module built against it in its own directory
# (a copy of the sources: kbuild builds in the module's directory).
BENCH_KDIR = $(shell $(TOP)/qemu/build-kernel --bench --dir)
BENCH_MOD := $(BUILD)/bench/module
# The module's sources: the crate's files at the top, its folders, the ABI (the generated files
# are left out where they are copied).
MODULE_SOURCES := Kbuild $(wildcard $(TOP)/*.rs) context kapi ring include

bench: deps selftests
	@$(TOP)/qemu/build-kernel --bench >/dev/null
	@mkdir -p $(BENCH_MOD)
	@cd $(TOP) && cp -a $(notdir $(MODULE_SOURCES)) $(BENCH_MOD)/ && \
		rm -f $(BENCH_MOD)/kapi/*_generated.rs
	$(MAKE) -C $(BENCH_KDIR) M=$(BENCH_MOD) $(if $(LLVM),LLVM=$(LLVM)) modules
	@$(TOP)/qemu/bench-run --kernel "$(BENCH_KDIR)/arch/x86/boot/bzImage" \
		--module "$(BENCH_MOD)/rust_aio.ko" --bin "$(BUILD)/selftests"

# Debian's stock Rust-enabled kernel, unmodified: see scripts/stock-check (STOCK_TESTS names
# the tests its guest runs).
stock-check: deps
	@$(TOP)/scripts/stock-check

# The module for KDIR's kernel into /lib/modules/<its release>/updates/ (then depmod); the
# drop-in libaio.so.1 beside, not over, the system's libaio (LD_LIBRARY_PATH=$(PREFIX)/lib/rust_aio
# picks it); the rust-aio crate's docs; /dev/rust_aio's udev rule.
PREFIX ?= /usr/local
install: module userspace
	$(MAKE) $(KBUILD_ARGS) INSTALL_MOD_DIR=updates $(if $(DESTDIR),INSTALL_MOD_PATH=$(DESTDIR)) \
		modules_install
	install -d $(DESTDIR)$(PREFIX)/lib/rust_aio $(DESTDIR)$(PREFIX)/share/doc/rust-aio \
		$(DESTDIR)/etc/udev/rules.d
	install -m 0755 $(LIBDIR)/libaio.so.1 $(DESTDIR)$(PREFIX)/lib/rust_aio/libaio.so.1
	ln -sf libaio.so.1 $(DESTDIR)$(PREFIX)/lib/rust_aio/libaio.so
	cp -r $(BUILD)/userspace/doc/. $(DESTDIR)$(PREFIX)/share/doc/rust-aio/
	install -m 0644 $(TOP)/packaging/60-rust_aio.rules $(DESTDIR)/etc/udev/rules.d/60-rust_aio.rules

# make bench on Debian's stock kernel (the kernel users run): the module built against the
# prepared stock tree (scripts/stock), the same bench in one guest of the stock image.
STOCK_BENCH_MOD := $(BUILD)/bench/stock-module
bench-stock: deps selftests
	@$(TOP)/scripts/stock tree >/dev/null
	@mkdir -p $(STOCK_BENCH_MOD)
	@cd $(TOP) && cp -a $(notdir $(MODULE_SOURCES)) $(STOCK_BENCH_MOD)/ && \
		rm -f $(STOCK_BENCH_MOD)/kapi/*_generated.rs
	@eval "$$($(TOP)/scripts/stock env)" && \
		$(MAKE) -C "$$STOCK_KDIR" M=$(STOCK_BENCH_MOD) $$STOCK_MAKE_VARS modules
	@$(TOP)/qemu/bench-run --stock --module "$(STOCK_BENCH_MOD)/rust_aio.ko" \
		--bin "$(BUILD)/selftests"

run: module selftests
	@$(TOP)/qemu/run --kernel "$(KDIR)/arch/x86/boot/bzImage" \
		--module "$(TOP)/rust_aio.ko" --add "$(BUILD)/selftests/rust_aio_demo" \
		-- rust_aio_demo

clean:
	@if [ -d "$(KDIR)" ]; then $(MAKE) $(KBUILD_ARGS) clean; fi
	rm -rf $(BUILD) $(TOP)/kapi/sys_generated.rs $(TOP)/kapi/uapi_generated.rs \
		$(TOP)/rust-project.json \
		$(TOP)/.kdir-stamp
	@$(MAKE) -C $(TOP)/selftests clean OUT="$(BUILD)/selftests"

rust-analyzer: kernel
	$(MAKE) $(KBUILD_ARGS) rust-analyzer
