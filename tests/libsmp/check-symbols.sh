#!/bin/sh
# The exported symbols of libsmp.so are exactly the version script's, each in
# the node the script lists it in (LIBSMP_1, LIBSMP_1.1, ...; a released
# node never changes, a new symbol goes into a new node), and every
# function the public header declares is exported.
# usage: check-symbols.sh LIB SYMFILE HEADER
set -eu
lib=$1 sym=$2 hdr=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# exported, defined symbols as name@@NODE, excluding the version nodes themselves
nm -D --defined-only "$lib" | awk '{print $3}' | grep -vE '^LIBSMP_[0-9.]+$' | sort > "$tmp/exported"
[ -s "$tmp/exported" ] || { echo "no exported symbols in $lib"; exit 1; }
if grep -v '@@LIBSMP_[0-9.]*$' "$tmp/exported"; then
	echo "FAIL: the symbols above are in no LIBSMP_ node"; exit 1
fi
sed 's/@@LIBSMP_[0-9.]*$//' "$tmp/exported" | sort > "$tmp/exported.names"

# global: symbols of the version script, as name@@NODE
awk '/^LIBSMP_[0-9.]+ *\{/ { node = $1; next }
     /^}/ { node = "" }
     node != "" && /^[ \t]+[a-z_0-9]+;/ { gsub(/[ \t;]/, ""); print $0 "@@" node }' "$sym" |
	sort > "$tmp/script.versioned"
sed 's/@@.*//' "$tmp/script.versioned" | sort > "$tmp/script"
[ "$(sort -u "$tmp/script" | wc -l)" = "$(wc -l < "$tmp/script")" ] ||
	{ echo "FAIL: a symbol is listed in two nodes of $sym"; exit 1; }
grep -q 'local:' "$sym" && grep -qE '^\s+\*;' "$sym" || { echo "FAIL: no 'local: *;' in $sym"; exit 1; }

# functions declared in the header
grep -oE '\bsmp_[a-z_0-9]+\(' "$hdr" | tr -d '(' | sort -u > "$tmp/header"

rc=0
if ! diff -u "$tmp/script.versioned" "$tmp/exported"; then
	echo "FAIL: exported symbols and their nodes (+) differ from the version script (-)"; rc=1
fi
if ! diff -u "$tmp/header" "$tmp/script"; then
	echo "FAIL: the version script (+) differs from the header's functions (-)"; rc=1
fi
nodes=$(sed 's/.*@@//' "$tmp/script.versioned" | sort -u | tr '\n' ' ')
[ $rc = 0 ] && echo "ok: $(wc -l < "$tmp/script") symbols in nodes ${nodes% }, header == script == exports"
exit $rc
