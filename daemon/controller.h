/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * controller.h - smpd's safety decisions for one device, as a pure state
 * machine.
 *
 * No D-Bus, no event loop, no I/O, no clock reads: every event comes in
 * with the CLOCK_MONOTONIC time (us) at which it happened, and what is to
 * be done comes out as a list of actions that the glue (device.c,
 * session.c) carries out in order: send a device command, arm a timer,
 * report a latched fault, emit a property change, append an audit record,
 * answer the request.  A device command is an action whose completion is
 * an event (controller_command_done()): the glue may run it synchronously
 * and feed the completion back at once, or later from its event loop; the
 * controller does not care.  The rules it calls for limits and monitors
 * are safety.c's.  Every rule here is tested by synthetic timelines in
 * tests/daemon/test-controller.c.
 *
 * The needle runs only while all of these hold; the lease renewal (every
 * RenewMs) re-checks them and stops the device otherwise: the device is
 * claimed by a client still on the bus that gives signs of life, a session
 * of that client is open, no fault or emergency stop is latched, telemetry
 * is fresh by the device clock and the audit log is writable.  If smpd
 * itself dies, the renewals stop and the device's lease (LeaseMs) stops
 * the needle (H6).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "safety.h"
#include "smp-frame.h"

/* Timers the controller arms (one event source each in the glue). */
enum ctl_timer {
	CTL_TIMER_RENEW,   /* the next lease renewal */
	CTL_TIMER_ALIVE,   /* the claimant's sign-of-life deadline */
	CTL_TIMER_WARNING, /* the session's WarningBeforeEnd */
	CTL_TIMER_LIMIT,   /* the session's MaxDuration */
	_CTL_TIMER_MAX,
};

/* Properties whose change the glue announces (a mask). */
enum {
	CTL_PROP_STATE = 1 << 0,
	CTL_PROP_FAULT = 1 << 1,
	CTL_PROP_SETPOINTS = 1 << 2,
};

/* Audit records the controller asks for; the glue adds the fields. */
enum ctl_audit {
	CTL_AUDIT_STOP,		      /* who, reason */
	CTL_AUDIT_ESTOP,	      /* who */
	CTL_AUDIT_START,	      /* who: must succeed before START (audit_done) */
	CTL_AUDIT_START_REFUSED,      /* who, reason */
	CTL_AUDIT_CLEAR_FAULT,	      /* who, reason = what was cleared */
	CTL_AUDIT_SET_PARAMETERS,     /* the request and the applied values (audit_done) */
	CTL_AUDIT_PARAMETERS_REFUSED, /* the request, reason = the refusal */
};

/* Why a command was sent: comes back with its completion. */
enum ctl_tag {
	CTL_TAG_STOP,	    /* STOP of a stop sequence */
	CTL_TAG_STOP_ESTOP, /* ESTOP after a STOP that failed */
	CTL_TAG_RENEW,
	CTL_TAG_START_FENCE, /* GET_STATS before START */
	CTL_TAG_START,
	CTL_TAG_ESTOP,
	CTL_TAG_ESTOP_AGAIN,
	CTL_TAG_CLEAR_CARTRIDGE, /* GET_CARTRIDGE before CLEAR_FAULT */
	CTL_TAG_CLEAR,
	CTL_TAG_CLEAR_FENCE, /* GET_STATS after CLEAR_FAULT */
	CTL_TAG_SET_PARAMS,
};

enum ctl_action_kind {
	CTL_SEND,	     /* send cmd with payload; then controller_command_done(tag) */
	CTL_ARM,	     /* arm timer at at (0: disarm) */
	CTL_TRIP,	     /* fault trip latched (message: the sentence), needle stopped:
				 * log it, Fault signal, State+Fault changed, audit "fault"
				 * (not for audit-failed) */
	CTL_EMIT,	     /* props changed */
	CTL_AUDIT,	     /* append record audit (who, reason); when gate is set,
				 * report the result with controller_audit_done() */
	CTL_READ_BACKLOG,    /* read what the link holds, then controller_backlog_done() */
	CTL_RELEASE,	     /* the claim ends (reason): end the session, release record */
	CTL_SESSION_WARNING, /* the session's end is WarningBeforeEnd away */
	CTL_SESSION_EXPIRED, /* the session reached MaxDuration */
	CTL_LOG,	     /* a warning for the journal (message) */
	CTL_REPLY,	     /* the request is done: error NULL (success) or the refusal */
};

struct ctl_action {
	enum ctl_action_kind kind;
	/* CTL_SEND */
	uint8_t cmd;
	enum ctl_tag tag;
	uint8_t payload[SMPP_PARAMS_SIZE > SMPP_LEASE_SIZE ? SMPP_PARAMS_SIZE : SMPP_LEASE_SIZE];
	size_t len;
	/* CTL_ARM */
	enum ctl_timer timer;
	uint64_t at;
	/* CTL_TRIP */
	enum monitor_trip trip;
	/* CTL_EMIT */
	unsigned props;
	/* CTL_AUDIT */
	enum ctl_audit audit;
	bool gate;
	char who[256];
	/* CTL_REPLY: error name (manager.h SMPD_ERROR_*) or NULL */
	const char *error;
	/* CTL_REPLY for LimitExceeded: the parameter that refused (LastRefusal) */
	bool limit_refusal;
	enum param param;
	/* CTL_REPLY: the answer to EmergencyStop (not to the request in progress) */
	bool estop;
	/* CTL_TRIP, CTL_LOG, CTL_REPLY: the sentence; CTL_AUDIT, CTL_RELEASE: reason */
	char message[SAFETY_MSG_MAX + 64];
};

/* The completion of a CTL_SEND, decoded by the glue. */
struct ctl_result {
	enum ctl_tag tag;
	int r;		  /* 0, a device status (enum smpp_status) or -errno */
	bool have_status; /* a STATUS payload came back: */
	uint8_t state;
	uint32_t faults;
	bool have_uptime; /* GET_STATS: the device clock */
	uint32_t uptime_ms;
	bool have_params; /* SET_PARAMS: the applied values */
	struct smp_params params;
	struct smp_range_error range; /* SET_PARAMS refused OUT_OF_RANGE/NOT_ON_STEP */
	bool cartridge_present;	      /* GET_CARTRIDGE */
	char cartridge_id[SMPP_ID_LEN + 1];
};

#define CTL_ACTIONS_MAX 32

enum ctl_op {
	CTL_OP_NONE,
	CTL_OP_START,
	CTL_OP_STOP,
	CTL_OP_CLEAR,
	CTL_OP_SET_PARAMS,
};

/* What happens when a stop sequence (STOP, ESTOP if it fails) is done. */
enum ctl_stop_then {
	CTL_THEN_NOTHING,
	CTL_THEN_TRIP,	  /* report the latched trip */
	CTL_THEN_RECORD,  /* audit "stop" (who, reason), State changed */
	CTL_THEN_RELEASE, /* ... and then the claim ends */
};

struct controller {
	const struct policy *policy;
	char serial[SMPP_ID_LEN + 1];

	/* the device as it last reported itself */
	uint8_t dev_state;
	uint32_t dev_faults;
	bool gone;

	/* the safety state */
	bool running;		   /* we started it and have not stopped it */
	bool estop;		   /* latched emergency stop */
	bool estop_while_clearing; /* an ESTOP came during the ClearFault in progress */
	enum monitor_trip trip;	   /* latched fault, MONITOR_OK = none */
	char trip_message[SAFETY_MSG_MAX + 64];
	struct monitor monitor;
	struct smp_params setpoints; /* applied (as echoed by the device) */
	bool have_setpoints;
	/*
	 * What the monitor judges records against: the setpoints of the run
	 * the records describe.  New setpoints applied while the needle is
	 * stopped take over at the next START (whose fence holds back the
	 * records made before it); applied while it runs, at once.
	 */
	struct smp_params judged_setpoints;
	struct effective_limits limits; /* in force now (controller_set_limits) */
	int audit_error;		/* <0: the audit log cannot be written */

	/* claim and session */
	char claimant[256]; /* "" = unclaimed */
	bool session_open;
	char session_cartridge[SMPP_ID_LEN + 1];
	uint64_t session_begin;
	bool time_exceeded;

	/* lease */
	uint64_t renew_at;  /* the next renewal (nominal), 0 = none */
	uint64_t alive_at;  /* the claimant's last sign of life, 0 = not watched */
	bool backlog_asked; /* this renewal already read the link's backlog */

	/* telemetry (the one stale-record rule and the freshness estimate) */
	bool fence;
	uint32_t judge_from_ms;
	uint64_t fence_until;
	uint64_t fresh_mono; /* when the newest record was made, CLOCK_MONOTONIC */
	bool have_clock;
	int64_t clock_off_cur, clock_off_prev;
	uint64_t clock_window_start;
	uint64_t last_timestamp_us;
	bool have_temp;
	int16_t last_temp_cdeg;

	/* the request being carried out, and the stop sequence */
	enum ctl_op op;
	char op_who[256];
	char estop_who[256];
	struct smp_params op_params;
	bool stopping;
	enum ctl_stop_then stop_then;
	bool stop_is_op;	  /* the stop answers the CTL_OP_STOP request */
	bool trip_report_pending; /* a trip latched while a stop was under way */
	char stop_who[256];
	char stop_reason[SAFETY_MSG_MAX];

	/* the actions not yet taken, first in first out */
	struct ctl_action actions[CTL_ACTIONS_MAX];
	unsigned head, n;
	unsigned dropped; /* actions lost to a full queue (a bug: tests check 0) */
};

void controller_init(struct controller *c, const struct policy *p, const char *serial, uint64_t now);
/* The next action to take, in order; false when none is left. */
bool controller_next_action(struct controller *c, struct ctl_action *ret);

/* The effective limits changed (attach, session, zone, cartridge, reload). */
void controller_set_limits(struct controller *c, const struct effective_limits *el);

/* The device as found when attached: a needle running is stopped, a fault latched. */
void controller_attached(struct controller *c, uint64_t now, uint8_t state, uint32_t faults);

/*
 * A telemetry record, read at now.  Returns true when it was judged
 * (the glue then counts it in the summaries), false when it describes
 * the device before a CLEAR_FAULT or a START (counted, not judged).
 */
bool controller_telemetry(struct controller *c, uint64_t now, const struct smp_telemetry *t);

void controller_timer(struct controller *c, uint64_t now, enum ctl_timer timer);
void controller_command_done(struct controller *c, uint64_t now, const struct ctl_result *res);
void controller_backlog_done(struct controller *c, uint64_t now);
void controller_audit_done(struct controller *c, uint64_t now, int r);

/* The claim: a name that gives signs of life; gone when it leaves the bus. */
void controller_claimed(struct controller *c, const char *claimant);
void controller_claimant_alive(struct controller *c, uint64_t now);
void controller_claimant_gone(struct controller *c, uint64_t now, const char *reason);
/* Released by the claimant: stop (who = the claimant), then CTL_RELEASE. */
void controller_release(struct controller *c, uint64_t now, const char *reason);
/* The claim ended (after CTL_RELEASE). */
void controller_unclaimed(struct controller *c);

/* Requests from a client (authorization checked by the glue). */
void controller_request_start(struct controller *c, uint64_t now, const char *who);
void controller_request_stop(struct controller *c, uint64_t now, const char *who, const char *reason);
void controller_request_estop(struct controller *c, uint64_t now, const char *who);
void controller_request_clear_fault(struct controller *c, uint64_t now, const char *who);
void controller_request_set_parameters(struct controller *c, uint64_t now,
				       const struct smp_params *req);
/*
 * May setpoints sp hold under the limits el (a zone change)?  0, or
 * -ERANGE/-EINVAL with msg and *ret_param set, as safety_check_params().
 */
int controller_check_setpoints(const struct effective_limits *el, const struct smp_params *sp,
			       enum param *ret_param, char *msg, size_t msgsz);

/* Sessions: the session clock and the needle-on time are the controller's. */
void controller_session_opened(struct controller *c, uint64_t now, const char *cartridge_id);
void controller_session_ended(struct controller *c, uint64_t now, const char *who);
void controller_policy_reloaded(struct controller *c, uint64_t now);

/* The audit log failed (H12): every needle stops, nothing starts. */
void controller_audit_failed(struct controller *c, uint64_t now, int err);
/* The link is gone (ENODEV): nothing more is sent. */
void controller_device_gone(struct controller *c);
/* The device is being removed: stop a needle still running, without a record. */
void controller_detach(struct controller *c, uint64_t now);

/* A monitor trip from outside (tests, glue): stop, latch, report. */
void controller_trip(struct controller *c, uint64_t now, enum monitor_trip trip, const char *msg);

/* "estop", "fault", "running", "idle" */
const char *controller_state_string(const struct controller *c);
/* The needle is running or may be: a stop is due when the claim or session ends. */
bool controller_needle_may_run(const struct controller *c);
