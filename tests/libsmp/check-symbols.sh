#!/bin/sh
# The exported symbols of libsmp.so are exactly the version script's, all in
# node LIBSMP_1, and every function the public header declares is exported.
# usage: check-symbols.sh LIB SYMFILE HEADER
set -eu
lib=$1 sym=$2 hdr=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# exported, defined symbols (name@@VERSION), excluding the version node itself
nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^LIBSMP_1$' | sort > "$tmp/exported"
[ -s "$tmp/exported" ] || { echo "no exported symbols in $lib"; exit 1; }
if grep -v '@@LIBSMP_1$' "$tmp/exported"; then
	echo "FAIL: the symbols above are not in node LIBSMP_1"; exit 1
fi
sed 's/@@LIBSMP_1$//' "$tmp/exported" > "$tmp/exported.names"

# global: symbols of the version script
sed -n '/^LIBSMP_1 {/,/^};/p' "$sym" | sed -n '/global:/,/local:/p' |
	grep -E '^\s+[a-z_0-9]+;' | tr -d ' \t;' | sort > "$tmp/script"
grep -q 'local:' "$sym" && grep -qE '^\s+\*;' "$sym" || { echo "FAIL: no 'local: *;' in $sym"; exit 1; }

# functions declared in the header
grep -oE '\bsmp_[a-z_0-9]+\(' "$hdr" | tr -d '(' | sort -u > "$tmp/header"

rc=0
if ! diff -u "$tmp/script" "$tmp/exported.names"; then
	echo "FAIL: exported symbols (+) differ from the version script (-)"; rc=1
fi
if ! diff -u "$tmp/header" "$tmp/script"; then
	echo "FAIL: the version script (+) differs from the header's functions (-)"; rc=1
fi
[ $rc = 0 ] && echo "ok: $(wc -l < "$tmp/script") symbols, all LIBSMP_1, header == script == exports"
exit $rc
