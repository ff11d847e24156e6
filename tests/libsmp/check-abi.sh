#!/bin/sh
# The built libsmp.so has exactly the ABI of the committed baseline
# (libsmp/libsmp.abi, made by abidw).  Any difference fails, additions
# included: a new symbol goes into a new version node and a new baseline.
# To refresh the baseline after an intended change:
#   abidw --no-corpus-path --headers-dir libsmp --drop-private-types \
#         BUILD/libsmp/libsmp.so.1.0.0 > libsmp/libsmp.abi
# The layout of the opaque handles is not ABI: libsmp/libsmp.abignore.
# usage: check-abi.sh BASELINE LIB HEADERDIR
set -eu
command -v abidiff >/dev/null || { echo "FAIL: abidiff missing (apt-get install abigail-tools)"; exit 1; }
abidiff --suppressions "$3/libsmp.abignore" --headers-dir2 "$3" "$1" "$2"
echo "ok: $2 matches $1"
