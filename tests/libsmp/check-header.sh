#!/bin/sh
# The public header compiles as strict C99 and as C++, warnings as errors,
# and a program using it links against the library.
# usage: check-header.sh CC CXX INCDIR LIBDIR SRCDIR
set -eu
cc=$1 cxx=$2 inc=$3 libdir=$4 src=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
set -x
$cc -std=c99 -pedantic -Werror -Wall -Wextra -Wstrict-prototypes -I"$inc" \
	"$src/header-c99.c" -o "$tmp/c99" -L"$libdir" -lsmp
$cxx -std=c++11 -pedantic -Werror -Wall -Wextra -I"$inc" \
	"$src/header-cxx.cc" -o "$tmp/cxx" -L"$libdir" -lsmp
LD_LIBRARY_PATH=$libdir "$tmp/c99"
LD_LIBRARY_PATH=$libdir "$tmp/cxx"
