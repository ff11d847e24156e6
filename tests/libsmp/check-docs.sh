#!/bin/sh
# The API reference builds with doxygen and nothing public is undocumented
# (libsmp/Doxyfile turns every warning into a failure).
# usage: check-docs.sh SOURCE_ROOT OUTPUT_DIR      (also what `make docs` runs)
set -eu
command -v doxygen >/dev/null || { echo "FAIL: doxygen missing (apt-get install doxygen)"; exit 1; }
mkdir -p "$2"
cd "$1"
LIBSMP_DOXYGEN_OUT=$(cd "$2" && pwd) doxygen libsmp/Doxyfile
echo "ok: $2/html/index.html"
