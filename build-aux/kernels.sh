#!/bin/bash
# build-aux/kernels.sh - the kernels libsmp supports, chosen in ONE place.
#
# The kernel build (kernel/Makefile, `make kernel`), the kernel suite of
# `make check` (kernel/check.sh), the VM harness (tests/vm/run --kver) and
# `make vm KERNELS=...` all ask this script which kernel a name means.
# DKMS does not: it builds for the kernel it is given (kernel/dkms.conf).
#
# Supported series (Debian 12; build-aux/deps.sh installs the headers
# of each, asking `kernels.sh packages`):
#   6.1      linux-headers-amd64          Debian 12's default kernel (DEFAULT)
#   6.12     linux-headers-6.12-amd64     Debian 12's 6.12 (Debian 13's series)
#   6.12-rt  linux-headers-6.12-rt-amd64  the same with PREEMPT_RT
#
# Usage:
#   kernels.sh list                 the supported series, default first
#   kernels.sh packages             their header meta-packages
#   kernels.sh kver [NAME]          the kernel release NAME means: a series
#                                   above (default: 6.1) or a release with
#                                   /lib/modules/RELEASE/build installed
#   kernels.sh series RELEASE       the series a release belongs to
#   kernels.sh build RELEASE DIR    build smpusb.ko for RELEASE in DIR (a
#                                   directory of links to kernel/'s sources;
#                                   incremental) and print the module's path
# Exit status 1, with the package to install, when a kernel is missing.
set -euo pipefail

SERIES=(6.1 6.12 6.12-rt)

die() {
	echo "kernels.sh: $*" >&2
	exit 1
}

# The header meta-package of a series: what apt keeps up to date.
package() {
	case "$1" in
	6.1) echo linux-headers-amd64 ;;
	6.12) echo linux-headers-6.12-amd64 ;;
	6.12-rt) echo linux-headers-6.12-rt-amd64 ;;
	*) return 1 ;;
	esac
}

# The releases of a series, as a shell pattern of /lib/modules names.
matches() {	# matches SERIES RELEASE
	case "$1:$2" in
	6.1:6.1.*-rt-amd64 | 6.1:6.1.*-cloud-amd64) return 1 ;;
	6.1:6.1.*-amd64) return 0 ;;
	6.12:6.12.*-rt-amd64 | 6.12:6.12.*-cloud-amd64) return 1 ;;
	6.12:6.12.*-amd64) return 0 ;;
	6.12-rt:6.12.*-rt-amd64) return 0 ;;
	esac
	return 1
}

# kver SERIES: the release the series' meta-package depends on, else the
# newest installed release of the series.
kver_of_series() {
	local pkg rel d
	pkg=$(package "$1")
	rel=$(dpkg-query -W -f='${Depends}' "$pkg" 2>/dev/null |
		sed -n 's/^.*linux-headers-\([^ ,]*\).*$/\1/p')
	if [ -z "$rel" ]; then
		rel=$(for d in /lib/modules/*/build; do
			[ -d "$d" ] || continue
			d=${d%/build}
			d=${d##*/}
			matches "$1" "$d" && echo "$d"
		done | sort -V | tail -n1)
	fi
	[ -n "$rel" ] || die "no kernel headers of series $1: apt-get install $pkg"
	[ -d "/lib/modules/$rel/build" ] ||
		die "series $1 is $rel, but /lib/modules/$rel/build is missing: apt-get install $pkg"
	echo "$rel"
}

kver() {
	local name=${1:-${SERIES[0]}}
	if package "$name" >/dev/null; then
		kver_of_series "$name"
	elif [ -d "/lib/modules/$name/build" ]; then
		echo "$name"
	else
		die "unknown kernel '$name': name a series (${SERIES[*]}) or an installed release (/lib/modules/*/build)"
	fi
}

series() {
	local s
	for s in "${SERIES[@]}"; do
		matches "$s" "$1" && { echo "$s"; return 0; }
	done
	die "kernel $1 is of no supported series (${SERIES[*]})"
}

build() {
	local rel=$1 dir=$2 kdir f
	kdir=$(cd "$(dirname "$0")/../kernel" && pwd)
	[ -d "/lib/modules/$rel/build" ] || die "no /lib/modules/$rel/build"
	# A directory built from another checkout's sources (older objects
	# than these sources' mtimes could keep) starts again from nothing.
	# (v2: v1 linked kernel/'s generated smpusb.mod.c, built for another
	# kernel, which 6.12 refuses: "disagrees about version of symbol".)
	[ "$(cat "$dir/.smpusb-source" 2>/dev/null)" = "v2 $kdir" ] || rm -rf "$dir"
	mkdir -p "$dir" && echo "v2 $kdir" > "$dir/.smpusb-source" || die "cannot create $dir"
	# Links to the sources, never to what a build in kernel/ generated
	# (*.mod.c), so the repository stays the source and make incremental.
	for f in Kbuild Makefile "$kdir"/*.c "$kdir"/*.h include; do
		f=${f##*/}
		case "$f" in *.mod.c) continue ;; esac
		ln -sfn "$kdir/$f" "$dir/$f"
	done
	make -s -C "$dir" KVER="$rel" modules >&2 || die "smpusb.ko did not build for $rel"
	echo "$dir/smpusb.ko"
}

case "${1:-}" in
list) printf '%s\n' "${SERIES[@]}" ;;
packages) for s in "${SERIES[@]}"; do package "$s"; done ;;
kver) kver "${2:-}" ;;
series) [ -n "${2:-}" ] || die "series needs a release"; series "$2" ;;
build) [ $# -eq 3 ] || die "build needs RELEASE DIR"; build "$2" "$3" ;;
*) sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2 ;;
esac
