#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Build the Debian packages (debian/) out of tree: the checkout's files
# (tracked and untracked-but-not-ignored, so uncommitted work is packaged
# too) are copied to OUTDIR/src, `dpkg-buildpackage -us -uc -b` runs
# there, the .debs land in OUTDIR, and lintian checks them.
# usage: build-aux/build-debs.sh [--dist DIST] OUTDIR   (default $BUILD/debs)
# --dist DIST builds them, and runs lintian, inside the root of that Debian
# release which tests/vm/build-dist-root made (trixie: Debian 13), so that
# they depend on that release's libraries (its 64-bit time_t names, e.g.
# libssl3t64) and are checked by its lintian.
# Exit 0 only when the packages built and lintian reports no error.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
dist=
if [ "${1:-}" = --dist ]; then
	dist=${2:?--dist needs a release}
	shift 2
fi
out=${1:-${BUILD:-build}/debs}
mkdir -p "$out" || exit 2
out=$(readlink -f "$out")
case "$out" in "$top"|/) echo "build-debs: refusing OUTDIR $out" >&2; exit 2 ;; esac
# in_build CMD: run the shell command CMD in OUTDIR/src, on this system or
# in the release root (OUTDIR bound at /mnt/smp-debs there).
if [ -z "$dist" ]; then
	for t in dpkg-buildpackage dh lintian; do
		command -v "$t" > /dev/null || { echo "build-debs: $t missing (make deps)" >&2; exit 2; }
	done
	in_build() { (cd "$out/src" && sh -c "$1"); }
	where=
else
	dd=${SMP_VM_CACHE:-/var/cache/libsmp-vm}/dist-$dist
	root=$dd/root
	[ -f "$dd/unpacked" ] || { echo "build-debs: no $dist root: run tests/vm/build-dist-root $dist" >&2; exit 2; }
	[ "$(id -u)" = 0 ] || { echo "build-debs: --dist needs root (chroot)" >&2; exit 2; }
	# The root is not rebuilt under the build (build-dist-root takes it).
	exec 8> "$dd/.lock" && flock 8 || exit 2
	mounted=()
	umount_all() {
		local i
		for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
			umount "${mounted[i]}" 2> /dev/null || umount -l "${mounted[i]}"
		done
		mounted=()
	}
	trap umount_all EXIT
	in_build() {
		local m=$root/mnt/smp-debs
		if [ ${#mounted[@]} -eq 0 ]; then
			mkdir -p "$m" "$out/tmp" &&
				mount -t proc proc "$root/proc" && mounted+=("$root/proc") &&
				mount --bind /dev "$root/dev" && mounted+=("$root/dev") &&
				mount --bind "$out" "$m" && mounted+=("$m") ||
				{ echo "build-debs: cannot mount in $root" >&2; return 2; }
		fi
		chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
			HOME=/mnt/smp-debs/tmp TMPDIR=/mnt/smp-debs/tmp sh -c "cd /mnt/smp-debs/src && $1"
	}
	where=" in the $dist root ($root)"
fi
rm -rf "${out:?}"/*
mkdir "$out/src"
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	xargs -0 cp -a --parents -t "$out/src" || exit 2
echo "build-debs: dpkg-buildpackage in $out/src$where (log: $out/build.log)"
if ! in_build 'dpkg-buildpackage -us -uc -b -Jauto' > "$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	echo "build-debs: dpkg-buildpackage failed" >&2
	exit 1
fi
ls "$out"/*.deb
# The application's package holds what a desktop needs to offer it: the
# program, its desktop entry, its AppStream metainfo and its icon.
ws=$(ls "$out"/smp-workstation_*.deb 2> /dev/null | head -n1)
[ -n "$ws" ] || { echo "build-debs: no smp-workstation package" >&2; exit 1; }
for f in usr/bin/smp-workstation \
	usr/share/applications/org.libsmp.Workstation.desktop \
	usr/share/metainfo/org.libsmp.Workstation.metainfo.xml \
	usr/share/icons/hicolor/scalable/apps/org.libsmp.Workstation.svg; do
	dpkg-deb --contents "$ws" | awk '{ print $6 }' | grep -qx "./$f" ||
		{ echo "build-debs: $ws lacks /$f" >&2; exit 1; }
done
echo "build-debs: $(basename "$ws") holds the program, desktop entry, metainfo and icon"
# libsmp1 carries a symbols file naming every version node of
# libsmp/libsmp.sym (debian/libsmp1.symbols), and the application depends
# on libsmp1 through it: at least the version that first shipped the
# newest node it uses, never an unversioned libsmp1.
lib=$(ls "$out"/libsmp1_*.deb 2> /dev/null | head -n1)
[ -n "$lib" ] || { echo "build-debs: no libsmp1 package" >&2; exit 1; }
syms=$(dpkg-deb -I "$lib" symbols) || { echo "build-debs: $lib has no symbols file" >&2; exit 1; }
for node in $(sed -n 's/^\(LIBSMP_[0-9.]*\) {.*/\1/p' libsmp/libsmp.sym); do
	grep -q "^ $node@$node " <<< "$syms" ||
		{ echo "build-debs: libsmp1's symbols file lacks $node (debian/libsmp1.symbols)" >&2; exit 1; }
done
dep=$(dpkg-deb -f "$ws" Depends)
grep -Eq '(^|, )libsmp1 \(>= [^)]+\)' <<< "$dep" ||
	{ echo "build-debs: smp-workstation does not depend on a versioned libsmp1: $dep" >&2; exit 1; }
echo "build-debs: libsmp1's symbols file names every version node; smp-workstation depends on $(grep -Eo 'libsmp1 \(>= [^)]+\)' <<< "$dep")"
changes=$(cd "$out" && ls -- *.changes)
in_build "lintian --tag-display-limit 0 ../$changes" > "$out/lintian.log" 2>&1
cat "$out/lintian.log"
if grep -q '^E: ' "$out/lintian.log"; then
	echo "build-debs: lintian reports errors" >&2
	exit 1
fi
echo "build-debs: ok ($(grep -c '^W: ' "$out/lintian.log") lintian warnings, no errors)"
