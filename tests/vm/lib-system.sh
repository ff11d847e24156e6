# tests/vm/lib-system.sh - helpers of the *-system-* tests (source after
# lib.sh).

# wait_secs SECS CMD...: run CMD every 0.5 s until it succeeds or SECS of
# wall time have passed.  Unlike wait_for, which counts attempts, this
# bounds the time even when CMD itself is slow (smpctl, systemctl and
# journalctl take a second or more under TCG).
wait_secs() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -ge "$end" ] && return 1
		sleep 0.5
	done
}
