#!/bin/sh
# Compile smp-workstation as a project outside this tree would: its flags
# for libsmp from pkg-config only (the libsmp-uninstalled.pc meson
# generates in DIR, which points at the build tree).  A build against a
# private header or a missing symbol fails here.
# Usage: build-with-pkgconfig.sh PC_DIR OUT_DIR SOURCE...
set -eu
pcdir=$1 out=$2
shift 2
[ -f "$pcdir/libsmp-uninstalled.pc" ] || { echo "no $pcdir/libsmp-uninstalled.pc" >&2; exit 1; }
export PKG_CONFIG_PATH="$pcdir"
flags=$(pkg-config --cflags --libs libsmp gtk4 libadwaita-1)
echo "pkg-config: $flags"
# the uninstalled .pc must be the one found, not an installed libsmp
pkg-config --variable=pcfiledir libsmp | grep -qx "$pcdir" ||
	{ echo "pkg-config found libsmp outside $pcdir" >&2; exit 1; }
# shellcheck disable=SC2086  # word splitting of the flags is the point
${CC:-cc} ${CFLAGS:-} -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
	-o "$out/smp-workstation-pkgconfig" "$@" $flags
echo "built $out/smp-workstation-pkgconfig"
