#!/bin/bash
# The Debian packages libsmp needs, grouped by what needs them, so that
# each make target asks for its own and nothing more (`make` only what
# building needs, `make check-vm` what the VM suite needs, ...).
#
# Usage: build-aux/deps.sh [--check | --list] [GROUP...]   (default: every group)
#   (none)    install what is missing (as root); as a normal user, name the
#             missing packages and the command that installs them, exit 1
#   --check   name what is missing, exit 1 if anything is; install nothing
#   --list    print the packages of the groups, one a line
#   --groups  print the group names
#
# One package per line (a package may sit in several groups); a new
# package goes into every group that needs it.
set -euo pipefail

declare -A GROUP
# The header packages of every supported kernel series: build-aux/kernels.sh
# lists the series, in one place, for the build, the VM harness and here.
KERNEL_HEADERS=$("$(dirname "$0")/kernels.sh" packages) ||
	{ echo "deps: build-aux/kernels.sh packages failed" >&2; exit 2; }
# userspace build: meson compile (libraries, smpd, smp-sim, smpctl, tests)
GROUP[build]="
	gcc
	make
	meson
	ninja-build
	pkg-config
	libcmocka-dev
	zlib1g-dev
	libusb-1.0-0-dev
	libsystemd-dev
	libudev-dev
	libinih-dev
	libjson-c-dev
	libssl-dev
"
# the kernel module (make, make kernel)
GROUP[module]="
	make
	gcc
	linux-headers-amd64
"
# the host test suites of make check (meson test, valgrind, asan, install,
# mutations, safety) and make demo; systemd-journal-remote writes the
# collector's journal in the audit suite's test-audit-collect, and with
# stunnel4, openssl (certificates), iproute2 and util-linux (namespaces)
# carry it in test-audit-fleet
GROUP[test]="
	python3
	dbus
	python3-dbusmock
	python3-pytest
	python3-dbus
	python3-gi
	g++
	valgrind
	util-linux
	systemd
	udev
	abigail-tools
	doxygen
	bash-completion
	xxd
	systemd-journal-remote
	stunnel4
	iproute2
	openssl
"
# the HTML session report rendered in headless Chromium (meson test
# report-chromium, part of the host suite)
GROUP[report]="
	chromium
"
# make docs: the libsmp API reference
GROUP[docs]="
	doxygen
"
# make fuzz: libFuzzer
GROUP[fuzz]="
	clang
	libclang-rt-14-dev
"
# make check-analyze: scan-build and cppcheck
GROUP[analyze]="
	clang-tools
	cppcheck
"
# make check-kernel, make kunit: W=1, sparse, checkpatch, KUnit under UML,
# against every series of build-aux/kernels.sh list (6.1, 6.12, 6.12-rt)
GROUP[kernel]="
	$KERNEL_HEADERS
	linux-source-6.1
	sparse
	bc
	bison
	flex
	libelf-dev
	libssl-dev
	xz-utils
"
# make check-vm: the VM harness (qemu, Debian's kernel, dummy_hcd)
GROUP[vm]="
	qemu-system-x86
	busybox-static
	cpio
	kmod
	$KERNEL_HEADERS
"
# make check-system: the Debian packages (smp-workstation's among them:
# GTK 4 and libadwaita to build it), installed in a systemd-booted VM;
# with DISTS=trixie (make check-full) also built and installed in a Debian
# 13 root that debootstrap makes (tests/vm/build-dist-root)
GROUP[system]="
	debhelper
	debootstrap
	e2fsprogs
	dh-dkms
	dkms
	dpkg-dev
	fakeroot
	libadwaita-1-dev
	libgtk-4-dev
	lintian
	polkitd
	systemd-sysv
	udev
"
# make check-workstation: smp-workstation (app/, -Dworkstation) and its
# headless test (Xvfb, AT-SPI, a private session bus), its desktop file
# and AppStream metainfo validated
GROUP[workstation]="
	libgtk-4-dev
	libadwaita-1-dev
	xvfb
	at-spi2-core
	python3-pyatspi
	dbus-daemon
	appstream
	desktop-file-utils
	xauth
"
# make check-proofs: Frama-C (Eva, WP) with Why3 and its SMT provers on the
# codecs and the limit rules, Spin on the stop protocol (proofs/README.md)
GROUP[proofs]="
	frama-c-base
	why3
	z3
	cvc4
	cvc5
	spin
	gcc
"
# build-aux/format.sh: one C style (.clang-format)
GROUP[format]="
	clang-format
"
ORDER=(build module test report workstation docs fuzz analyze proofs kernel vm system format)

mode=install
case "${1:-}" in
--check) mode=check; shift ;;
--list) mode=list; shift ;;
--groups) printf '%s\n' "${ORDER[@]}"; exit 0 ;;
-*) echo "deps: unknown option $1 (usage: deps.sh [--check|--list|--groups] [GROUP...])" >&2; exit 2 ;;
esac
groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=("${ORDER[@]}")

packages=()
declare -A seen
for g in "${groups[@]}"; do
	if [ -z "${GROUP[$g]+x}" ]; then
		echo "deps: unknown group '$g' (groups: ${ORDER[*]})" >&2
		exit 2
	fi
	for p in ${GROUP[$g]}; do
		[ -n "${seen[$p]+x}" ] && continue
		seen[$p]=1
		packages+=("$p")
	done
done

if [ "$mode" = list ]; then
	printf '%s\n' "${packages[@]}"
	exit 0
fi

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$mode" = check ]; then
	echo "deps (${groups[*]}): missing packages: ${missing[*]}"
	exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps (${groups[*]}): missing packages: ${missing[*]}" >&2
	echo "deps: install them as root: apt-get install ${missing[*]}" >&2
	echo "      (or: sudo build-aux/deps.sh ${groups[*]})" >&2
	exit 1
fi

echo "deps (${groups[*]}): installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
