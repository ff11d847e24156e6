#!/bin/bash
# Install the Debian packages libsmp needs to build, test and demo.
# Usage: build-aux/deps.sh [--check]   (--check: list what is missing, exit 1 if any)
set -euo pipefail

# One package per line, grouped by what needs it.
PACKAGES=(
	# userspace build
	gcc make meson ninja-build pkg-config
	zlib1g-dev libusb-1.0-0-dev libsystemd-dev libudev-dev
	libinih-dev libjson-c-dev libssl-dev
	# tests
	libcmocka-dev valgrind dbus python3 python3-dbusmock python3-pytest
	python3-dbus python3-gi g++ util-linux systemd
	# libsmp ABI, API docs and shell completion checks
	abigail-tools doxygen bash-completion
	# the HTML session report is rendered in headless Chromium
	chromium
	# fuzzing (libFuzzer)
	clang libclang-rt-14-dev
	# static analysis
	clang-tools cppcheck
	# kernel module, KUnit, checkpatch, sparse
	# (the header packages are the series of build-aux/kernels.sh list:
	# 6.1, 6.12 and 6.12-rt; the VM harness fetches the matching images)
	linux-headers-amd64 linux-headers-6.12-amd64 linux-headers-6.12-rt-amd64
	linux-source-6.1 sparse bc bison flex libelf-dev
	libssl-dev xz-utils
	# Debian packages and the full-system VM test (make check-system)
	debhelper dh-dkms dkms dpkg-dev fakeroot lintian polkitd systemd-sysv udev
	# the VM harness
	qemu-system-x86 busybox-static cpio kmod
)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done

if [ "${1:-}" = "--check" ]; then
	if [ ${#missing[@]} -gt 0 ]; then
		echo "missing packages: ${missing[*]}"
		exit 1
	fi
	exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#PACKAGES[@]} packages installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run 'make deps' as root (apt-get install)" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
