#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The install layout test (check.sh suite 'install', docs/install.md):
# `make install` into a temporary DESTDIR for PREFIX=/usr and for
# PREFIX=/usr/local, then check every expected path with its mode, that
# nothing else was installed, that the unit, activation file and
# pkg-config file point at what was installed, that a program builds
# against the installed libsmp with pkg-config, that the installed unit
# is hardened to 1.0 or better, and that `make uninstall` leaves nothing.
# TAP on stdout.  Every check runs; a missing tool is a failure.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export BUILD_INSTALL=${BUILD_INSTALL:-build-install}
work=$(mktemp -d /tmp/smp-install-test.XXXXXX) || exit 2
trap 'rm -rf "$work"' EXIT

n=0 failed=0
ok() {	# ok STATUS DESC
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
check() { local d=$1; shift; "$@" >> "$work/log" 2>&1; ok $? "$d"; }

# mode_is PATH MODE: a regular file with exactly MODE.
mode_is() {
	[ -f "$1" ] && [ ! -L "$1" ] || { echo "$1: missing or not a regular file"; return 1; }
	local m
	m=$(stat -c %a "$1")
	[ "$m" = "$2" ] || { echo "$1: mode $m, want $2"; return 1; }
}

one_prefix() {
	local prefix=$1 d=$work/dest${1//\//_} libdir exp f
	echo "# PREFIX=$prefix DESTDIR=$d"
	check "PREFIX=$prefix: make install succeeds" \
		make --no-print-directory install DESTDIR="$d" PREFIX="$prefix"
	libdir=$(meson introspect "$BUILD_INSTALL" --buildoptions |
		/usr/bin/python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="libdir"][0])')
	case "$libdir" in /*) ;; *) libdir=$prefix/$libdir ;; esac

	# PATH MODE; 'link' for a symlink.  sysconfdir is /etc for any prefix.
	cat > "$work/expected" <<-LIST
	$prefix/bin/smpctl 755
	$prefix/bin/smp-audit 755
	$prefix/bin/smp-probe 755
	$prefix/bin/smp-sim 755
	$prefix/libexec/smpd 755
	$libdir/libsmp.so.1.0.0 755
	$libdir/libsmp.so.1 link
	$libdir/libsmp.so link
	$libdir/pkgconfig/libsmp.pc 644
	$prefix/include/libsmp.h 644
	$prefix/lib/systemd/system/smpd.service 644
	$prefix/lib/sysusers.d/smpd.conf 644
	$prefix/lib/systemd/catalog/smp-audit.catalog 644
	$prefix/lib/systemd/catalog/smpd.catalog 644
	$prefix/lib/udev/rules.d/72-smp.rules 644
	$prefix/lib/udev/hwdb.d/70-smp.hwdb 644
	$prefix/share/dbus-1/system.d/org.libsmp.Smp1.conf 644
	$prefix/share/dbus-1/system-services/org.libsmp.Smp1.service 644
	$prefix/share/dbus-1/interfaces/org.libsmp.Smp1.xml 644
	$prefix/share/polkit-1/actions/org.libsmp.Smp1.policy 644
	$prefix/share/polkit-1/rules.d/60-libsmp.rules 644
	$prefix/share/bash-completion/completions/smpctl 644
	$prefix/share/man/man1/smpctl.1 644
	$prefix/share/man/man3/libsmp.3 644
	$prefix/share/man/man8/smpd.8 644
	/etc/smpd/smpd.conf 644
	/etc/systemd/journal-upload.conf.d/smp-fleet.conf 644
	/etc/systemd/journal-remote.conf.d/smp-fleet.conf 644
	/etc/stunnel/smp-journal-remote.conf 644
	$prefix/lib/systemd/system/systemd-journal-upload.service.d/smp-fleet.conf 644
	$prefix/lib/systemd/system/smpd.service.d/smp-fleet.conf 644
	/etc/systemd/journald@smp-audit.conf 644
	$prefix/lib/systemd/system/systemd-journal-remote.service.d/smp-fleet.conf 644
	$prefix/lib/systemd/system/systemd-journal-remote.socket.d/smp-fleet.conf 644
	LIST
	# smp-workstation where the build has it (-Dworkstation: auto builds
	# it where GTK 4 and libadwaita are installed)
	if meson introspect "$BUILD_INSTALL" --targets | grep -q '"name": "smp-workstation"'; then
		cat >> "$work/expected" <<-LIST
		$prefix/bin/smp-workstation 755
		$prefix/share/applications/org.libsmp.Workstation.desktop 644
		$prefix/share/metainfo/org.libsmp.Workstation.metainfo.xml 644
		$prefix/share/icons/hicolor/scalable/apps/org.libsmp.Workstation.svg 644
		LIST
	fi
	local bad=0
	while read -r f exp; do
		if [ "$exp" = link ]; then
			[ -L "$d$f" ] && [ -e "$d$f" ] || { echo "# missing or dangling symlink $f"; bad=1; }
		else
			mode_is "$d$f" "$exp" | sed 's/^/# /' | grep . && bad=1
		fi
	done < "$work/expected"
	ok $bad "PREFIX=$prefix: every expected path is installed with its mode"

	(cd "$d" && find . ! -type d | sed 's/^\.//' | sort) > "$work/got"
	cut -d' ' -f1 "$work/expected" | sort > "$work/want"
	comm -13 "$work/want" "$work/got" | sed 's/^/# unexpected: /' > "$work/extra"
	cat "$work/extra"
	[ ! -s "$work/extra" ]
	ok $? "PREFIX=$prefix: nothing else is installed"

	bad=$(find "$d" -perm -o+w ! -type l -o -perm -u+s -o -perm -g+s | sed "s|^$d||")
	[ -z "$bad" ] || echo "$bad" | sed 's/^/# world-writable or set-id: /'
	ok "$([ -z "$bad" ]; echo $?)" "PREFIX=$prefix: nothing world-writable, nothing set-id"

	grep -qx "ExecStart=$prefix/libexec/smpd .*" "$d$prefix/lib/systemd/system/smpd.service"
	ok $? "PREFIX=$prefix: the unit starts the installed $prefix/libexec/smpd"
	grep -qx 'SystemdService=smpd.service' "$d$prefix/share/dbus-1/system-services/org.libsmp.Smp1.service" &&
		grep -qx 'Name=org.libsmp.Smp1' "$d$prefix/share/dbus-1/system-services/org.libsmp.Smp1.service"
	ok $? "PREFIX=$prefix: D-Bus activation of org.libsmp.Smp1 goes through smpd.service"

	check "PREFIX=$prefix: D-Bus and polkit XML files are well-formed" /usr/bin/python3 -c '
import sys, xml.dom.minidom
for f in sys.argv[1:]:
    xml.dom.minidom.parse(f)' "$d$prefix/share/dbus-1/system.d/org.libsmp.Smp1.conf" \
		"$d$prefix/share/dbus-1/interfaces/org.libsmp.Smp1.xml" \
		"$d$prefix/share/polkit-1/actions/org.libsmp.Smp1.policy"

	# systemd-analyze prints the score last: "... exposure level ...: 0.9 SAFE".
	local score
	score=$(systemd-analyze security --offline=yes --no-pager \
		"$d$prefix/lib/systemd/system/smpd.service" 2>> "$work/log" |
		sed -n 's/.*exposure level.*: *\([0-9.]*\) .*/\1/p' | tail -n1)
	echo "# installed unit exposure: ${score:-none}"
	awk -v s="${score:-99}" 'BEGIN { exit !(s != "" && s <= 1.0) }'
	ok $? "PREFIX=$prefix: systemd-analyze security --offline rates the installed unit ${score:-?} <= 1.0"

	# A client builds and links against the installed library.
	cat > "$work/client.c" <<-'C'
	#include <libsmp.h>
	int main(void)
	{
		smp_client *c = NULL;
		return smp_client_new(&c) < 0 ? 0 : (smp_client_unref(c), 0);
	}
	C
	local flags
	flags=$(PKG_CONFIG_SYSROOT_DIR="$d" PKG_CONFIG_LIBDIR="$d$libdir/pkgconfig" \
		pkg-config --cflags --libs libsmp 2>> "$work/log")
	echo "# pkg-config --cflags --libs libsmp: $flags"
	case "$flags" in *"-I$d$prefix/include"*"-L$d$libdir"*"-lsmp"*) true ;; *) false ;; esac
	ok $? "PREFIX=$prefix: pkg-config gives the installed include and library dirs"
	check "PREFIX=$prefix: a client compiles and links against the installed libsmp" \
		cc -std=c11 -Wall -Werror -o "$work/client" "$work/client.c" $flags
	check "PREFIX=$prefix: ... and runs with it" env LD_LIBRARY_PATH="$d$libdir" "$work/client"

	check "PREFIX=$prefix: make uninstall succeeds" \
		make --no-print-directory uninstall DESTDIR="$d" PREFIX="$prefix"
	local left
	left=$( [ -e "$d" ] && find "$d" -mindepth 1 | sed "s|^$d||")
	[ -z "$left" ] || echo "$left" | sed 's/^/# left behind: /'
	ok "$([ -z "$left" ]; echo $?)" "PREFIX=$prefix: uninstall removes everything it installed"
}

for tool in make meson pkg-config cc systemd-analyze; do
	command -v "$tool" > /dev/null
	ok $? "tool $tool is installed"
done
one_prefix /usr
one_prefix /usr/local
echo "1..$n"
if [ "$failed" -ne 0 ]; then
	echo "# $failed failed; command output:"
	tail -n 40 "$work/log" | sed 's/^/#   /'
fi
[ "$failed" -eq 0 ]
