#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Build the Debian packages (debian/) out of tree: the checkout's files
# (tracked and untracked-but-not-ignored, so uncommitted work is packaged
# too) are copied to OUTDIR/src, `dpkg-buildpackage -us -uc -b` runs
# there, the .debs land in OUTDIR, and lintian checks them.
# usage: build-aux/build-debs.sh OUTDIR        (default $BUILD/debs)
# Exit 0 only when the packages built and lintian reports no error.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=${1:-${BUILD:-build}/debs}
mkdir -p "$out" || exit 2
out=$(readlink -f "$out")
case "$out" in "$top"|/) echo "build-debs: refusing OUTDIR $out" >&2; exit 2 ;; esac
for t in dpkg-buildpackage dh lintian; do
	command -v "$t" > /dev/null || { echo "build-debs: $t missing (make deps)" >&2; exit 2; }
done
rm -rf "${out:?}"/*
mkdir "$out/src"
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	xargs -0 cp -a --parents -t "$out/src" || exit 2
echo "build-debs: dpkg-buildpackage in $out/src (log: $out/build.log)"
if ! (cd "$out/src" && dpkg-buildpackage -us -uc -b -Jauto) > "$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	echo "build-debs: dpkg-buildpackage failed" >&2
	exit 1
fi
ls "$out"/*.deb
changes=$(ls "$out"/*.changes)
lintian --tag-display-limit 0 "$changes" > "$out/lintian.log" 2>&1
cat "$out/lintian.log"
if grep -q '^E: ' "$out/lintian.log"; then
	echo "build-debs: lintian reports errors" >&2
	exit 1
fi
echo "build-debs: ok ($(grep -c '^W: ' "$out/lintian.log") lintian warnings, no errors)"
