#!/bin/sh
# expect-exit.sh STATUS CMD...: succeed only when CMD exits with STATUS.
# For negative tests: a checker that rejects bad input exits 1, one that
# cannot run at all exits 2, and only the first may count as a pass.
want=$1
shift
"$@"
got=$?
[ "$got" = "$want" ] && exit 0
echo "expect-exit: '$*' exited $got, want $want" >&2
exit 1
