#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make install / make uninstall (docs/install.md).
#
#   build-aux/install.sh install     configure $BUILD_INSTALL for PREFIX and
#                                    SYSCONFDIR, build, `meson install` into
#                                    DESTDIR, remember what was installed
#   build-aux/install.sh uninstall   remove exactly that: every file of
#                                    meson's install log, then the
#                                    directories the install created
#
# Environment: PREFIX (default /usr), SYSCONFDIR (default /etc; a relative
# value is below PREFIX), DESTDIR (default: none, the live system),
# BUILD_INSTALL (default build-install).  A live install (no DESTDIR, as
# root) also creates the users and groups and reloads udev, systemd and the
# system bus, as the Debian packages do.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
PREFIX=${PREFIX:-/usr}
SYSCONFDIR=${SYSCONFDIR:-/etc}
DESTDIR=${DESTDIR:-}
B=${BUILD_INSTALL:-build-install}
STATE=$B/installed	# what the last install put where

die() { echo "install.sh: error: $*" >&2; exit 1; }

case "$PREFIX" in /*) ;; *) die "PREFIX must be absolute: '$PREFIX'" ;; esac
[ -z "$DESTDIR" ] || case "$DESTDIR" in /*) ;; *) DESTDIR=$PWD/$DESTDIR ;; esac

do_install() {
	if [ -f "$B/build.ninja" ]; then
		meson configure "$B" -Dprefix="$PREFIX" -Dsysconfdir="$SYSCONFDIR" > /dev/null
	else
		meson setup "$B" --prefix="$PREFIX" --sysconfdir="$SYSCONFDIR" > /dev/null
	fi
	meson compile -C "$B"
	mkdir -p "$STATE"
	meson install -C "$B" --no-rebuild ${DESTDIR:+--destdir "$DESTDIR"}
	# meson's log names, with DESTDIR in front, every file it installed
	# and every directory it had to create (those are ours to remove).
	local f
	: > "$STATE/files"
	: > "$STATE/dirs"
	grep -v '^#' "$B/meson-logs/install-log.txt" | while read -r f; do
		if [ -d "$f" ] && [ ! -L "$f" ]; then
			echo "$f" >> "$STATE/dirs"
		else
			echo "$f" >> "$STATE/files"
		fi
	done
	[ -s "$STATE/files" ] || die "meson's install log lists no file"
	printf '%s\n' "$DESTDIR" > "$STATE/destdir"
	echo "install.sh: installed $(wc -l < "$STATE/files") files under ${DESTDIR:-/}$PREFIX (list: $STATE/files)"
	[ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && live_setup
	return 0
}

live_setup() {
	command -v systemd-sysusers > /dev/null && systemd-sysusers smpd.conf || true
	getent group smp-admin > /dev/null || groupadd --system smp-admin || true
	if [ -d /run/udev ]; then
		systemd-hwdb update || true
		udevadm control --reload || true
		udevadm trigger --action=change --subsystem-match=usb --attr-match=idVendor=1209 || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		systemctl reload dbus.service || true
	fi
}

do_uninstall() {
	[ -f "$STATE/files" ] || die "nothing recorded in $STATE: was 'make install' run with this BUILD_INSTALL?"
	local was
	was=$(cat "$STATE/destdir")
	[ "$was" = "$DESTDIR" ] || die "installed with DESTDIR='$was', uninstalling with DESTDIR='$DESTDIR'"
	local f d n=0
	while read -r f; do
		if [ -e "$f" ] || [ -L "$f" ]; then
			rm -f -- "$f"
			n=$((n + 1))
		fi
	done < "$STATE/files"
	# Deepest first; a directory something else has put files in stays.
	awk '{ print length($0) "\t" $0 }' "$STATE/dirs" | sort -rn | cut -f2- |
		while read -r d; do
			rmdir -- "$d" 2> /dev/null || true
		done
	rm -rf "$STATE"
	echo "install.sh: removed $n files"
	if [ -z "$DESTDIR" ] && [ "$(id -u)" = 0 ] && [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
		systemctl reload dbus.service || true
		[ -d /run/udev ] && { udevadm control --reload || true; }
	fi
	return 0
}

case "${1:-}" in
install) do_install ;;
uninstall) do_uninstall ;;
*) echo "usage: $0 install|uninstall" >&2; exit 2 ;;
esac
