# libsmp: the single front door.  `make help` lists the targets.

BUILD        ?= build
BUILD_ASAN   ?= build-asan
BUILD_FUZZ   ?= build-fuzz
FUZZ_SECONDS ?= 60
SOAK_SECONDS ?= 1800
PREFIX       ?= /usr
SYSCONFDIR   ?= /etc
BUILD_INSTALL ?= build-install
# Debian releases besides this machine's (12) whose full-system VM test
# runs: `make check-system DISTS=trixie`; make check-full runs FULL_DISTS.
DISTS        ?=
FULL_DISTS   ?= trixie
export BUILD BUILD_ASAN BUILD_FUZZ BUILD_INSTALL SOAK_SECONDS

.PHONY: all bench build deps check check-full check-% demo workstation docs faults format fuzz kernel kunit soak vm vm-debug install uninstall clean help

# build-aux/deps.sh groups each target needs: as root the missing packages
# are installed, as a normal user they are named and the target stops.
DEPS_BUILD     = build module
DEPS_CHECK     = $(DEPS_BUILD) $(sort $(foreach s,$(CHECK_SUITES),$(DEPS_check-$(s))))
CHECK_SUITES   = format host workstation asan valgrind install mutations analyze proofs kernel vm system safety
DEPS_check-host      = build test report
DEPS_check-workstation = build test workstation
DEPS_check-asan      = build test report workstation
DEPS_check-valgrind  = build test
DEPS_check-install   = build
DEPS_check-mutations = build test
DEPS_check-analyze   = build analyze
DEPS_check-proofs    = proofs
DEPS_check-kernel    = module kernel
DEPS_check-vm        = build module vm
DEPS_check-system    = build module vm system
DEPS_check-safety    = build test
DEPS_check-format    = format
deps = build-aux/deps.sh $(1)

all: build

help:
	@echo "make            build userspace (meson, $(BUILD)/) and the kernel module"
	@echo "make deps       install the Debian packages of every target (as root); build-aux/deps.sh --help"
	@echo "make bench      benchmarks, each next to a same-run baseline ($(BUILD)/bench.json)"
	@echo "make check      run every test suite; ends with 'check: N passed, N failed, N skipped'"
	@echo "make check-S    run one suite S of: format host workstation asan valgrind install mutations analyze proofs kernel vm system safety"
	@echo "make check-full make check with every VM test on every kernel series (build-aux/kernels.sh list),"
	@echo "                the long repetitions in full and the full-system test on Debian 13 too"
	@echo "                (FULL_DISTS=trixie; DISTS= overrides)"
	@echo "make check-system DISTS=trixie  the full-system test on Debian 12 and on Debian 13 (its own root,"
	@echo "                packages built in it, its 6.12 kernel; tests/vm/build-dist-root caches the root)"
	@echo "make demo       run the simulated device and show live telemetry"
	@echo "make workstation  smp-workstation (the GTK app) on the simulated device, on this display"
	@echo "make docs       generate the libsmp API reference (Doxygen) in $(BUILD)/docs/libsmp"
	@echo "make faults     fault-injection matrix on the socket and kernel paths; rewrites docs/reliability.md"
	@echo "make format     reformat userspace C per .clang-format (build-aux/format.sh)"
	@echo "make fuzz       run every fuzz target for FUZZ_SECONDS (default 60) each"
	@echo "make kernel     build kernel/smpusb.ko for KVER (default 6.1; 6.12, 6.12-rt or a release)"
	@echo "make kunit      run the kernel KUnit suite (UML)"
	@echo "make soak       SOAK_SECONDS (default 1800) of random sessions, faults, hotplug per variant (docs/soak.md)"
	@echo "make vm         run the VM tests (qemu, Debian's kernel, dummy_hcd); KERNELS=\"6.1 6.12 6.12-rt\": all on each"
	@echo "make vm-debug   the kernel VM tests (2*, 3*) on a lockdep/KASAN/UBSAN guest kernel (built once, hours)"
	@echo "make install    install into DESTDIR (default none) for PREFIX (default /usr)"
	@echo "make uninstall  remove exactly what the last make install installed"
	@echo "make clean      remove build directories"

deps:
	build-aux/deps.sh

$(BUILD)/build.ninja:
	@$(call deps,build)
	meson setup $(BUILD)

build: $(BUILD)/build.ninja
	@$(call deps,$(DEPS_BUILD))
	meson compile -C $(BUILD)
	$(MAKE) -C kernel

bench: build
	@$(call deps,test vm)
	build-aux/bench.sh

check:
	@$(call deps,$(DEPS_CHECK))
	build-aux/check.sh

# Every VM test on every supported kernel series, not only on the default
# one (make check runs a subset on the others: build-aux/check.sh).
check-full:
	@$(call deps,$(DEPS_CHECK))
	SMP_CHECK_FULL=1 SMP_VM_KERNELS="$$(build-aux/kernels.sh list | tr '\n' ' ')" \
		SMP_SYSTEM_DISTS="$(or $(DISTS),$(FULL_DISTS))" build-aux/check.sh

check-%:
	@$(call deps,$(or $(DEPS_check-$*),build test))
	SMP_SYSTEM_DISTS="$(DISTS)" build-aux/check.sh $*

demo: $(BUILD)/build.ninja
	@$(call deps,build test)
	meson compile -C $(BUILD)
	build-aux/demo.sh

# smp-workstation on the simulated device, on this display (app/run-on-sim.sh)
workstation: $(BUILD)/build.ninja
	@$(call deps,build test workstation)
	meson configure $(BUILD) -Dworkstation=enabled
	meson compile -C $(BUILD)
	app/run-on-sim.sh $(BUILD)

docs: $(BUILD)/build.ninja
	@$(call deps,build docs)
	tests/libsmp/check-docs.sh . $(BUILD)/docs/libsmp
	@echo "docs: $(BUILD)/docs/libsmp/html/index.html"

faults: build
	@$(call deps,test vm)
	build-aux/faults.sh

format:
	@$(call deps,format)
	build-aux/format.sh

fuzz:
	@$(call deps,build fuzz)
	build-aux/fuzz.sh $(FUZZ_SECONDS)

kernel:
	@$(call deps,module)
	$(MAKE) -C kernel

kunit:
	@$(call deps,kernel)
	kernel/tests/run-kunit.sh

soak: build
	@$(call deps,test vm workstation)
	meson configure $(BUILD) -Dworkstation=enabled
	meson compile -C $(BUILD)
	build-aux/soak.sh

vm:
	@$(call deps,$(DEPS_check-vm))
	SMP_VM_KERNELS="$(KERNELS)" build-aux/check.sh vm

# Not in `make check`: the first build of the debug kernel takes hours on
# a shared 2-core machine and the tests run ~4x slower under it.
VM_DEBUG_OUT ?= $(BUILD)/vm-debug-out
vm-debug: build
	@$(call deps,$(DEPS_check-vm))
	tests/vm/build-debug-kernel
	tests/vm/run --debug-kernel --build $(BUILD) --out $(VM_DEBUG_OUT) \
		$$(cd tests/vm/tests && ls [23][0-9]-kernel-*.sh)

install: $(BUILD)/build.ninja
	@$(call deps,build)
	PREFIX=$(PREFIX) SYSCONFDIR=$(SYSCONFDIR) DESTDIR=$(DESTDIR) build-aux/install.sh install

uninstall:
	PREFIX=$(PREFIX) SYSCONFDIR=$(SYSCONFDIR) DESTDIR=$(DESTDIR) build-aux/install.sh uninstall

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(BUILD_INSTALL) build-mutation build-analyze
	$(MAKE) -C kernel clean
