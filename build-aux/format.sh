#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# One C style for userspace: .clang-format over every tracked .c, .h and
# .cc file outside kernel/ (the kernel module follows the kernel's own
# rules: kernel/check.sh runs checkpatch --strict).
#
# Usage: build-aux/format.sh [--check] [FILE...]
#   (none)    reformat the files in place
#   --check   change nothing; list every file that differs from its
#             formatted form with the diff, exit 1 if any does
#   --stat    change nothing; print the changed lines per directory
# FILE...: only these (default: every userspace C file git tracks).
# Ends with "format-counts: PASS FAIL" under --check (for make check).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

mode=fix
case "${1:-}" in
--check) mode=check; shift ;;
--stat) mode=stat; shift ;;
-*) echo "format: unknown option $1 (usage: format.sh [--check|--stat] [FILE...])" >&2; exit 2 ;;
esac

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
command -v "$CLANG_FORMAT" > /dev/null ||
	{ echo "format: $CLANG_FORMAT is not installed (build-aux/deps.sh format)" >&2; exit 2; }
[ -f .clang-format ] || { echo "format: .clang-format missing at $top" >&2; exit 2; }

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
	mapfile -t files < <(git ls-files -- '*.c' '*.h' '*.cc' ':!:kernel/')
	[ ${#files[@]} -gt 0 ] || { echo "format: no C files found (not a git checkout?)" >&2; exit 2; }
fi

pass=0 fail=0
declare -A per_dir
for f in "${files[@]}"; do
	case "$f" in kernel/*) echo "format: $f: kernel/ is not formatted here" >&2; exit 2 ;; esac
	[ -f "$f" ] || { echo "format: $f: no such file" >&2; exit 2; }
	if [ "$mode" = fix ]; then
		"$CLANG_FORMAT" -i --style=file "$f" || exit 1
		continue
	fi
	out=$("$CLANG_FORMAT" --style=file "$f") || { echo "format: $CLANG_FORMAT failed on $f" >&2; exit 1; }
	if d=$(diff -u --label "$f" --label "$f (formatted)" "$f" - <<< "$out"); then
		pass=$((pass + 1))
		continue
	fi
	fail=$((fail + 1))
	n=$(grep -c '^[-+][^-+]\|^[-+]$' <<< "$d")
	per_dir[$(dirname "$f")]=$(( ${per_dir[$(dirname "$f")]:-0} + n ))
	if [ "$mode" = check ]; then
		echo "not ok - $f: $n changed lines"
		sed 's/^/    /' <<< "$d" | head -n 40
	fi
done

case "$mode" in
check)
	[ "$fail" -eq 0 ] && echo "ok - ${pass} files formatted per .clang-format"
	[ "$fail" -eq 0 ] || echo "format: run build-aux/format.sh to reformat them"
	echo "format-counts: $pass $fail"
	[ "$fail" -eq 0 ]
	;;
stat)
	total=0
	for d in $(printf '%s\n' "${!per_dir[@]}" | sort); do
		printf '%6d  %s\n' "${per_dir[$d]}" "$d"
		total=$((total + per_dir[$d]))
	done
	printf '%6d  changed lines in %d of %d files\n' "$total" "$fail" "$((pass + fail))"
	;;
esac
