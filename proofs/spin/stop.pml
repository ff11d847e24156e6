/*
 * stop.pml - the stop protocol of libsmp, model-checked with Spin
 * (issue 18; how to run it and what it assumes: proofs/README.md).
 *
 * Four parties and a clock, named after the code they stand for:
 *   application      a libsmp client: Heartbeat, Start, EmergencyStop,
 *                    ClearFault; it may hang or crash at any time
 *   controller       smpd's pure controller (daemon/controller.c): the
 *                    claimant's sign-of-life deadline (CTL_TIMER_ALIVE,
 *                    controller_claimant_alive), the lease renewal
 *                    (CTL_TIMER_RENEW), stop_needle(), the latched trip,
 *                    controller_request_start/_estop/_clear_fault; smpd may
 *                    hang (its file stays open) or crash (the kernel closes
 *                    its file)
 *   smpusb           the kernel driver (kernel/smpusb_main.c): forwards
 *                    smpd's commands on the bulk OUT pipe, its own lease
 *                    timer (smpusb_lease_work -> smpusb_deadman_stop) and
 *                    the owner-closed stop (smpusb_release); it may hang
 *                    (its work queue stalls)
 *   sim              the firmware (tools/smp-sim/sim-core.c): cmd_start,
 *                    cmd_renew, STOP, ESTOP (latched), cmd_clear_fault and
 *                    firmware_checks() (the lease, a fault of its own);
 *                    it may hang (answers nothing) or crash (the needle
 *                    stops with it)
 *   clock            one tick of time for everyone (a barrier)
 *
 * The USB link between smpusb and sim holds up to QN (2) commands; it
 * loses any command (and a command sent while it is full), delays it by
 * up to MAXDELAY ticks, delivers one twice in a row, and lets the later
 * of two commands in flight overtake the earlier (once a tick).  The real
 * link keeps the order (one bulk OUT endpoint); the model does not rely on
 * it.  A copy that arrives after some later event (a command smpd retried,
 * CTL_TAG_ESTOP_AGAIN, of which the first copy did arrive) is smpd sending
 * it twice, modelled as such.  D-Bus between the application and smpd is
 * reliable while both live.
 *
 * Time is in ticks.  LEASE is LeaseMs (firmware and driver lease), RENEW
 * is RenewMs (< LEASE / 2 as policy.c demands), ALIVE is ClientTimeoutMs.
 *
 * Each property has a mutant that removes the control it rests on (make
 * the model with -D<MUTANT>; proofs/run.sh spin shows each one fails):
 *   lease_bound   MUT_NO_CLAIMANT_CHECK  smpd renews without the claimant's
 *                                        sign of life
 *                 MUT_NO_FW_LEASE        the firmware's lease never runs out
 *   estop_bound   MUT_ESTOP_RENEWS       an emergency stop does not stop
 *                                        smpd's renewals
 *   latch_kept    MUT_START_CLEARS_LATCH the firmware's START clears a
 *                                        latched ESTOP or fault
 */

#define LEASE		3
#define RENEW		1
#define ALIVE		3
#define MAXDELAY	1
/* lease_bound: the needle stops within LEASE + RENEW (+ the link's delay)
 * of the last tick at which smpd could see a live, authorised claimant. */
#define PROOF_BOUND	(LEASE + RENEW + MAXDELAY)
/* estop_bound: the needle is stopped within the lease (+ the link's delay)
 * of an EmergencyStop, even when every ESTOP command is lost. */
#define ESTOP_BOUND	(LEASE + MAXDELAY)
/* The ghost variables of one property at a time (-DONLY_LEASE,
 * -DONLY_ESTOP, -DONLY_LATCH) keep each search small; with none of them,
 * all three are kept. */
#if defined(ONLY_LEASE) || defined(ONLY_ESTOP) || defined(ONLY_LATCH)
#ifdef ONLY_LEASE
#define GHOST_LEASE 1
#else
#define GHOST_LEASE 0
#endif
#ifdef ONLY_ESTOP
#define GHOST_ESTOP 1
#else
#define GHOST_ESTOP 0
#endif
#ifdef ONLY_LATCH
#define GHOST_LATCH 1
#else
#define GHOST_LATCH 0
#endif
#else
#define GHOST_LEASE 1
#define GHOST_ESTOP 1
#define GHOST_LATCH 1
#endif
#define CLEARS_MAX	2	/* explicit clears the application makes */

mtype = { C_START, C_RENEW, C_STOP, C_ESTOP, C_CLEAR };

/* ---- the USB link: a queue that loses, delays, duplicates and reorders ---- */
#define QN 2
mtype q_cmd[QN];
byte q_age[QN];
byte q_len;

inline link_send(c)
{
	if
	:: q_len < QN -> q_cmd[q_len] = c; q_age[q_len] = 0; q_len++
	:: else -> skip		/* no room: lost */
	fi
}

inline link_pop()
{
	q_cmd[0] = q_cmd[1]; q_age[0] = q_age[1];
	q_len--;
	q_cmd[q_len] = 0; q_age[q_len] = 0	/* one state per queue content */
}

/* ---- state ---- */
/* the firmware */
bool sim_running;
bool sim_latched;		/* ESTOP or a fault, until CLEAR_FAULT */
byte sim_lease;			/* ticks left */
bool sim_hung;
/* the driver */
bool smpusb_running;		/* the driver believes the needle runs */
byte smpusb_lease;
bool smpusb_hung;
bool smpusb_owner_open = true;	/* smpd's file */
/* smpd */
bool ctl_running;		/* c->running: smpd renews */
bool ctl_latched;		/* c->trip or the device's ESTOP, until ClearFault */
byte ctl_renew_at;		/* ticks to the next renewal */
byte ctl_alive_left;		/* ticks to the claimant's deadline */
bool ctl_claimed = true;	/* the application holds the claim */
bool ctl_hung;
bool ctl_crashed;
bool ctl_estop_again;		/* an ESTOP to send once more */
/* requests from the application, read by smpd (D-Bus) */
bool rq_heartbeat, rq_start, rq_estop, rq_clear, rq_gone;
bool app_dead;

/* ghosts for the properties */
byte since_proof;		/* ticks since smpd last saw its gate hold */
bool estopped;			/* an EmergencyStop was issued ... */
byte since_estop;		/* ... this many ticks ago */
byte clears_requested;		/* explicit ClearFault requests */
byte unlatches;			/* times a latch went from set to clear */

/* one step per party per tick, in this order: who may act now */
#define T_APP 0
#define T_CTL 1
#define T_DRV 2
#define T_SIM 3
#define T_CLOCK 4
byte turn = T_APP;

/* ---- the application ---- */
active proctype application()
{
	do
	:: turn == T_APP ->
		atomic {
			if
			:: app_dead -> skip
			:: !app_dead -> rq_heartbeat = true	/* controller_claimant_alive */
			:: !app_dead -> rq_heartbeat = true; rq_start = true
			:: !app_dead && !estopped -> rq_estop = true; estopped = GHOST_ESTOP
			:: !app_dead && clears_requested < CLEARS_MAX ->
				rq_clear = true; clears_requested = clears_requested + GHOST_LATCH;
				estopped = false; since_estop = 0
			:: !app_dead -> skip			/* busy for a tick */
			:: !app_dead -> app_dead = true		/* hangs for good */
			:: !app_dead -> app_dead = true; rq_gone = true	/* crashes: off the bus */
			fi;
			turn = T_CTL
		}
	od
}

/* ---- smpd's controller ---- */
/* The documented gate of a start and of a renewal (controller.h): the
 * claimant is on the bus and gave a sign of life in time, nothing is
 * latched. */
#define ctl_gate()	(ctl_claimed && ctl_alive_left > 0 && !ctl_latched)
#ifdef MUT_ESTOP_RENEWS
#define ctl_renew_gate()	(ctl_claimed && ctl_alive_left > 0)
#else
#define ctl_renew_gate()	ctl_gate()
#endif

/* smpd's ioctl on its open file: the driver forwards it on the link. */
inline smpusb_ioctl(c)
{
	if
	:: smpusb_hung -> skip
	:: else ->
		if
		:: c == C_START || c == C_RENEW ->
			smpusb_running = true; smpusb_lease = LEASE
		:: c == C_STOP || c == C_ESTOP -> smpusb_running = false
		:: else -> skip
		fi;
		link_send(c)
	fi
}

inline stop_needle()
{
	ctl_running = false;
	ctl_renew_at = 0;
	smpusb_ioctl(C_STOP)
}

active proctype controller()
{
	do
	:: turn == T_CTL ->
		atomic {
			if
			:: ctl_crashed || ctl_hung ->	/* nobody reads the bus */
				rq_heartbeat = false; rq_start = false; rq_estop = false;
				rq_clear = false; rq_gone = false
			:: else ->
				/* controller_claimant_alive / _claimant_gone */
				if
				:: rq_gone -> ctl_claimed = false; rq_gone = false;
					stop_needle()
				:: else -> skip
				fi;
				if
				:: rq_heartbeat -> ctl_alive_left = ALIVE; rq_heartbeat = false
				:: else -> skip
				fi;
				/* controller_request_estop: from anyone, at once */
				if
				:: rq_estop -> rq_estop = false; ctl_latched = true;
#ifndef MUT_ESTOP_RENEWS
					ctl_running = false; ctl_renew_at = 0;
#endif
					smpusb_ioctl(C_ESTOP); ctl_estop_again = true
				:: ctl_estop_again -> ctl_estop_again = false;
					smpusb_ioctl(C_ESTOP)	/* CTL_TAG_ESTOP_AGAIN */
				:: else -> skip
				fi;
				/* controller_request_clear_fault */
				if
				:: rq_clear -> rq_clear = false; ctl_latched = false;
					smpusb_ioctl(C_CLEAR)
				:: else -> skip
				fi;
				/* controller_request_start */
				if
				:: rq_start -> rq_start = false;
					if
					:: ctl_gate() && !ctl_running ->
						ctl_running = true; ctl_renew_at = RENEW;
						smpusb_ioctl(C_START)
					:: else -> skip
					fi
				:: else -> skip
				fi;
				/* CTL_TIMER_ALIVE */
				if
				:: ctl_alive_left > 0 -> ctl_alive_left--
				:: else -> skip
				fi;
				/* the proof the lease bound is measured from */
				if
				:: GHOST_LEASE && ctl_gate() -> since_proof = 0
				:: else -> skip
				fi;
				/* CTL_TIMER_RENEW: re-check the gate, renew or stop */
				if
				:: ctl_running && ctl_renew_at > 0 -> ctl_renew_at--;
					if
					:: ctl_renew_at == 0 ->
#ifdef MUT_NO_CLAIMANT_CHECK
						if
						:: ctl_latched -> stop_needle()
						:: else -> ctl_renew_at = RENEW; smpusb_ioctl(C_RENEW)
						fi
#else
						if
						:: ctl_renew_gate() -> ctl_renew_at = RENEW; smpusb_ioctl(C_RENEW)
						:: else -> stop_needle()
						fi
#endif
					:: else -> skip
					fi
				:: else -> skip
				fi;
				/* controller_telemetry: the device's own state, when a
				 * record gets through (it may not) */
				if
				:: ctl_running && !sim_running -> ctl_running = false; ctl_renew_at = 0
				:: sim_latched -> ctl_latched = true
				:: skip
				fi;
				/* smpd hangs or dies */
				if
				:: skip
				:: ctl_hung = true
				:: ctl_crashed = true
				fi
			fi;
			/* the kernel closes a dead process's file: smpusb_release */
			if
			:: ctl_crashed && smpusb_owner_open -> smpusb_owner_open = false;
				if
				:: !smpusb_hung && smpusb_running ->
					smpusb_running = false; link_send(C_STOP)
				:: else -> skip
				fi
			:: else -> skip
			fi;
			turn = T_DRV
		}
	od
}

/* ---- the kernel driver's own lease: smpusb_lease_work ---- */
active proctype smpusb()
{
	do
	:: turn == T_DRV ->
		atomic {
			if
			:: smpusb_hung -> skip
			:: !smpusb_hung && smpusb_running ->
				smpusb_lease--;
				if
				:: smpusb_lease == 0 ->	/* smpusb_deadman_stop */
					smpusb_running = false; link_send(C_STOP)
				:: else -> skip
				fi
			:: else -> skip
			fi;
			if
			:: skip
			:: smpusb_hung = true
			fi;
			turn = T_SIM
		}
	od
}

/* ---- the firmware ---- */
inline sim_dispatch(c)
{
	if
	:: c == C_START ->		/* cmd_start */
#ifdef MUT_START_CLEARS_LATCH
		sim_latched = false;
#endif
		if
		:: !sim_latched -> sim_running = true; sim_lease = LEASE
		:: else -> skip
		fi
	:: c == C_RENEW ->		/* cmd_renew: only a running needle */
		if
		:: sim_running -> sim_lease = LEASE
		:: else -> skip
		fi
	:: c == C_STOP -> sim_running = false
	:: c == C_ESTOP -> sim_running = false; sim_latched = true
	:: c == C_CLEAR -> sim_latched = false	/* cmd_clear_fault */
	fi
}

active proctype sim()
{
	bool was;
	bool dup;
	bool swapped;
	do
	:: turn == T_SIM ->
		atomic {
			was = sim_latched;
			dup = false;
			swapped = false;
			/* the commands that arrive in this tick */
			do
			:: q_len > 0 && !sim_hung -> sim_dispatch(q_cmd[0]); link_pop()
			:: q_len > 0 && !sim_hung && !dup ->	/* arrives twice in a row */
				dup = true; sim_dispatch(q_cmd[0]); sim_dispatch(q_cmd[0]);
				link_pop()
			:: q_len > 0 -> link_pop()		/* lost */
			:: q_len == QN && !sim_hung && !swapped ->	/* the later one overtakes */
				swapped = true; sim_dispatch(q_cmd[1]);
				q_len--; q_cmd[1] = 0; q_age[1] = 0
			:: q_len == 0 || q_age[0] < MAXDELAY -> break	/* delayed */
			od;
			if
			:: GHOST_LATCH && was && !sim_latched && unlatches <= CLEARS_MAX -> unlatches++
			:: else -> skip
			fi;
			/* firmware_checks: the lease, and a fault of its own */
#ifndef MUT_NO_FW_LEASE
			if
			:: sim_running ->
				sim_lease--;
				if
				:: sim_lease == 0 -> sim_running = false
				:: else -> skip
				fi
			:: else -> skip
			fi;
#endif
			if
			:: skip
			:: sim_running = false; sim_latched = true	/* a fault, in any state */
			:: sim_hung = true		/* hangs: the tick still runs */
			:: sim_running = false; sim_hung = true	/* crashes */
			fi;
			was = false; dup = false; swapped = false;
			turn = T_CLOCK
		}
	od
}

/* ---- time ---- */
active proctype clock()
{
	byte i;
	do
	:: atomic {
		turn == T_CLOCK ->
		i = 0;
		do
		:: i < q_len -> if :: q_age[i] < MAXDELAY -> q_age[i]++ :: else -> skip fi; i++
		:: else -> break
		od;
		i = 0;
		if
		:: GHOST_LEASE && since_proof <= PROOF_BOUND -> since_proof++
		:: else -> skip
		fi;
		if
		:: GHOST_ESTOP && estopped && since_estop <= ESTOP_BOUND -> since_estop++
		:: else -> skip
		fi;
		turn = T_APP
	}
	od
}

/* The needle never runs longer than the lease plus one renewal period
 * (plus the link's delay) after the last proof of a live, authorised
 * claimant. */
ltl lease_bound { [] (sim_running -> since_proof <= PROOF_BOUND) }
/* An emergency stop is always followed by the stopped state in bound. */
ltl estop_bound { [] ((estopped && since_estop > ESTOP_BOUND) -> !sim_running) }
/* A latched fault is never cleared without an explicit clear. */
ltl latch_kept { [] (unlatches <= clears_requested) }
