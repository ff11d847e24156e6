# tests/vm/lib-system.sh - helpers of the *-system-* tests (source after
# lib.sh).

# The simulator stands for the machine's firmware, which runs on its own
# microcontroller: nothing on the workstation can delay it.  In the guest
# it shares two emulated CPUs with polkitd's JavaScript, journald and
# smpctl; at normal priority a busy moment can starve it of the lease
# renewals smpd sent on time (a run saw the device stop the needle with
# LEASE_EXPIRED mid-session while smpd reported no late renewal).  Like the demo it runs
# real-time, above smpd (SCHED_FIFO 10, smpd.service).
SMP_SIM_CHRT=20

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

# need_installed [USERS...]: bail unless this is the systemd guest with
# smpd's package installed (51-system-install) and each of USERS created
# (52-system-udev): a later test cannot run without what an earlier made.
need_installed() {
	local u
	[ "${SMP_VM_SYSTEMD:-0}" = 1 ] || bail "needs tests/vm/run --systemd"
	dpkg-query -W -f='${db:Status-Abbrev}' smpd 2> /dev/null | grep -q '^ii' ||
		bail "smpd is not installed (51-system-install failed?)"
	for u in "$@"; do
		id "$u" > /dev/null 2>&1 || bail "user $u missing (52-system-udev failed?)"
	done
}
