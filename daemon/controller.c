/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * controller.c - smpd's safety decisions for one device (controller.h).
 *
 * Pure: time comes in with every event, actions go out through a queue.
 * Each rule below names the failure it answers; the fault matrix
 * (docs/reliability.md) found most of them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "controller.h"
#include "smp-mutation.h" /* SMP_MUTATION_* hooks, docs/safety.md */

#define US_PER_MS 1000ULL
#define US_PER_S 1000000ULL

/* Error names (docs/dbus.md; the same strings as manager.h). */
#define E_LIMIT_EXCEEDED "org.libsmp.Smp1.Error.LimitExceeded"
#define E_INVALID_ARGUMENT "org.libsmp.Smp1.Error.InvalidArgument"
#define E_NO_SESSION "org.libsmp.Smp1.Error.NoSession"
#define E_NO_SETPOINTS "org.libsmp.Smp1.Error.NoSetpoints"
#define E_FAULT_LATCHED "org.libsmp.Smp1.Error.FaultLatched"
#define E_FAULT_PERSISTS "org.libsmp.Smp1.Error.FaultPersists"
#define E_DEVICE_REFUSED "org.libsmp.Smp1.Error.DeviceRefused"
#define E_DEVICE_ERROR "org.libsmp.Smp1.Error.DeviceError"
#define E_SESSION_LIMIT "org.libsmp.Smp1.Error.SessionLimit"
#define E_AUDIT_UNAVAILABLE "org.libsmp.Smp1.Error.AuditUnavailable"

/* ---- the action queue ---- */

static struct ctl_action *push(struct controller *c, enum ctl_action_kind kind)
{
	static struct ctl_action spare;
	struct ctl_action *a;

	if (c->n >= CTL_ACTIONS_MAX) {
		c->dropped++;
		memset(&spare, 0, sizeof(spare));
		return &spare;
	}
	a = &c->actions[(c->head + c->n) % CTL_ACTIONS_MAX];
	c->n++;
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	return a;
}

bool controller_next_action(struct controller *c, struct ctl_action *ret)
{
	if (c->n == 0)
		return false;
	*ret = c->actions[c->head];
	c->head = (c->head + 1) % CTL_ACTIONS_MAX;
	c->n--;
	return true;
}

static void send(struct controller *c, uint8_t cmd, enum ctl_tag tag, const void *payload, size_t len)
{
	struct ctl_action *a = push(c, CTL_SEND);

	a->cmd = cmd;
	a->tag = tag;
	if (len > sizeof(a->payload))
		len = sizeof(a->payload);
	if (len)
		memcpy(a->payload, payload, len);
	a->len = len;
}

static void send_lease(struct controller *c, uint8_t cmd, enum ctl_tag tag)
{
	uint8_t buf[SMPP_LEASE_SIZE];

	smp_lease_encode((uint16_t)c->policy->lease_ms.value, buf, sizeof(buf));
	send(c, cmd, tag, buf, sizeof(buf));
}

static void arm(struct controller *c, enum ctl_timer timer, uint64_t at)
{
	struct ctl_action *a = push(c, CTL_ARM);

	a->timer = timer;
	a->at = at;
}

static void emit(struct controller *c, unsigned props)
{
	if (!c->gone)
		push(c, CTL_EMIT)->props = props;
}

static void audit(struct controller *c, enum ctl_audit kind, bool gate, const char *who,
		  const char *reason)
{
	struct ctl_action *a = push(c, CTL_AUDIT);

	a->audit = kind;
	a->gate = gate;
	snprintf(a->who, sizeof(a->who), "%s", who ? who : "");
	snprintf(a->message, sizeof(a->message), "%s", reason ? reason : "");
}

static void reply(struct controller *c, const char *error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reply(struct controller *c, const char *error, const char *fmt, ...)
{
	struct ctl_action *a = push(c, CTL_REPLY);
	va_list ap;

	a->error = error;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(a->message, sizeof(a->message), fmt, ap);
		va_end(ap);
	}
	c->op = CTL_OP_NONE;
}

/* A device command's failure, as the D-Bus error the request gets. */
static void reply_device_error(struct controller *c, int r, const char *what)
{
	if (r < 0)
		reply(c, E_DEVICE_ERROR, "%s: %s", what, strerror(-r));
	else
		reply(c, E_DEVICE_REFUSED, "%s: the device refused with %s", what,
		      smp_status_name((unsigned)r));
}

static const char *why_failed(int r)
{
	return r < 0 ? strerror(-r) : smp_status_name((unsigned)r);
}

/* ---- state ---- */

void controller_init(struct controller *c, const struct policy *p, const char *serial, uint64_t now)
{
	memset(c, 0, sizeof(*c));
	c->policy = p;
	snprintf(c->serial, sizeof(c->serial), "%s", serial ? serial : "");
	c->fresh_mono = now;
}

void controller_set_limits(struct controller *c, const struct effective_limits *el)
{
	c->limits = *el;
}

const char *controller_state_string(const struct controller *c)
{
	if (c->estop || c->dev_state == SMPP_STATE_ESTOP)
		return "estop";
	if (c->trip != MONITOR_OK || c->dev_state == SMPP_STATE_FAULT)
		return "fault";
	if (c->dev_state == SMPP_STATE_RUNNING)
		return "running";
	return "idle";
}

bool controller_needle_may_run(const struct controller *c)
{
	return !c->gone && (c->running || c->dev_state == SMPP_STATE_RUNNING);
}

static void stop_renewing(struct controller *c)
{
	if (c->renew_at)
		arm(c, CTL_TIMER_RENEW, 0);
	c->renew_at = 0;
	if (c->alive_at)
		arm(c, CTL_TIMER_ALIVE, 0);
	c->alive_at = 0;
	c->backlog_asked = false;
}

/*
 * Stop the needle by any means: STOP, and ESTOP if STOP fails; then what
 * then says.  A stop already under way is not sent twice: a trip that
 * latches meanwhile is reported when it ends.
 */
static void stop_needle(struct controller *c, enum ctl_stop_then then, const char *who,
			const char *reason, bool is_op)
{
	c->running = false;
	stop_renewing(c);
	if (c->stopping) {
		/* the STOP under way serves this one too: its report, its answer */
		if (then == CTL_THEN_TRIP)
			c->trip_report_pending = true;
		if (is_op)
			c->stop_is_op = true;
		return;
	}
	c->stopping = true;
	c->stop_then = then;
	c->stop_is_op = is_op;
	snprintf(c->stop_who, sizeof(c->stop_who), "%s", who ? who : "");
	snprintf(c->stop_reason, sizeof(c->stop_reason), "%s", reason ? reason : "");
	if (c->gone) {
		struct ctl_result res = { .tag = CTL_TAG_STOP_ESTOP, .r = -ENODEV };

		controller_command_done(c, 0, &res);
		return;
	}
	send(c, SMPP_T_STOP, CTL_TAG_STOP, NULL, 0);
}

static void report_trip(struct controller *c)
{
	struct ctl_action *a = push(c, CTL_TRIP);

	a->trip = c->trip;
	snprintf(a->message, sizeof(a->message), "%s", c->trip_message);
}

static void stop_done(struct controller *c, int r)
{
	enum ctl_stop_then then = c->stop_then;
	bool is_op = c->stop_is_op;

	c->stopping = false;
	switch (then) {
	case CTL_THEN_NOTHING:
		break;
	case CTL_THEN_TRIP:
		report_trip(c);
		break;
	case CTL_THEN_RECORD:
	case CTL_THEN_RELEASE:
		audit(c, CTL_AUDIT_STOP, false, c->stop_who, c->stop_reason);
		emit(c, CTL_PROP_STATE);
		if (then == CTL_THEN_RELEASE)
			snprintf(push(c, CTL_RELEASE)->message, sizeof(c->actions[0].message), "%s",
				 c->stop_reason);
		break;
	}
	if (c->trip_report_pending && then != CTL_THEN_TRIP) {
		c->trip_report_pending = false;
		report_trip(c);
	}
	c->trip_report_pending = false;
	if (is_op) {
		if (r != 0)
			reply_device_error(c, r, "STOP");
		else
			reply(c, NULL, NULL);
	}
}

void controller_trip(struct controller *c, uint64_t now, enum monitor_trip trip, const char *msg)
{
	(void)now;
	if (c->trip != MONITOR_OK)
		return; /* the first fault stays latched */
	c->trip = trip;
	snprintf(c->trip_message, sizeof(c->trip_message), "%s", msg);
	stop_needle(c, CTL_THEN_TRIP, "smpd", msg, false);
}

/* ---- attach, detach, gone ---- */

void controller_attached(struct controller *c, uint64_t now, uint8_t state, uint32_t faults)
{
	(void)now;
	c->dev_state = state;
	c->dev_faults = faults;
	/* A needle found running has no session here: stop it first. */
	if (state == SMPP_STATE_RUNNING)
		stop_needle(c, CTL_THEN_NOTHING, NULL, NULL, false);
	/* Found faulted (e.g. its lease ran out while no smpd ran): latch it. */
	if (c->dev_state == SMPP_STATE_FAULT || c->dev_state == SMPP_STATE_ESTOP) {
		c->trip = MONITOR_DEVICE_FAULT;
		snprintf(c->trip_message, sizeof(c->trip_message),
			 "the device was in state %s (faults 0x%" PRIx32 ") when attached",
			 smp_state_name(c->dev_state), c->dev_faults);
		c->estop = c->dev_state == SMPP_STATE_ESTOP;
	}
}

void controller_device_gone(struct controller *c)
{
	if (c->gone)
		return;
	c->gone = true;
	c->running = false;
	stop_renewing(c);
}

void controller_detach(struct controller *c, uint64_t now)
{
	(void)now;
	if (!c->gone)
		stop_needle(c, CTL_THEN_NOTHING, NULL, NULL, false);
}

/* ---- telemetry: the stale-record rule and freshness (H6) ---- */

/*
 * Telemetry freshness on the device clock (telemetry-lost).  A record is
 * as fresh as the moment the device made it, not the moment smpd read it:
 * a starved host reads a backlog of old records late, and taking those
 * for fresh kept renewing the lease of a device that had stopped sending
 * (fault matrix, telemetry-stall under load: 652 ms against 601).  When a
 * record was made, in CLOCK_MONOTONIC, is estimated as its device
 * timestamp plus the smallest (read time - device time) seen over the last
 * two windows of CLOCK_WINDOW_USEC: the record that travelled fastest
 * tells the offset of the two clocks, and the windows let a drifting
 * device clock move it.  The estimate is never later than the read time,
 * so this only ever judges telemetry older than reading it did.  A device
 * clock that goes back (a reset) starts a new estimate.
 */
#define CLOCK_WINDOW_USEC (10 * US_PER_S)

static void note_record_time(struct controller *c, uint64_t timestamp_us, uint64_t now)
{
	int64_t off = (int64_t)now - (int64_t)timestamp_us, best;
	uint64_t made;

	if (c->have_clock && timestamp_us < c->last_timestamp_us) {
		c->have_clock = false;
		c->fence = false; /* a reset: its records are all new */
	}
	c->last_timestamp_us = timestamp_us;
	if (!c->have_clock) {
		c->clock_off_cur = c->clock_off_prev = off;
		c->clock_window_start = now;
		c->have_clock = true;
	} else if (now - c->clock_window_start >= CLOCK_WINDOW_USEC) {
		c->clock_off_prev = c->clock_off_cur;
		c->clock_off_cur = off;
		c->clock_window_start = now;
	} else if (off < c->clock_off_cur) {
		c->clock_off_cur = off;
	}
	best = c->clock_off_cur < c->clock_off_prev ? c->clock_off_cur : c->clock_off_prev;
	made = (uint64_t)((int64_t)timestamp_us + best);
	if (made > c->fresh_mono)
		c->fresh_mono = made;
}

/*
 * THE stale-record rule: a record the device generated before the fence
 * (a tick of the device clock) describes the device before a CLEAR_FAULT
 * or a START, and is counted, not judged.  Without it the records still
 * queued in the device and the link (smp-sim keeps 1088, smpusb 1024:
 * about a second at 1 kHz, and their replies overtake them) re-latched
 * the fault just cleared, or judged the previous run against this run's
 * setpoints (fault matrix: corrupted-frames recovery met a FAULT record
 * from before its CLEAR_FAULT 8 ms after START).
 *
 * The fence is the device clock read with GET_STATS right after the
 * command: after CLEAR_FAULT from the next tick (a tick's record is
 * generated before any command handled in that millisecond), before START
 * from that tick on, so every record generated after the START is judged.
 * Exact whatever the backlog.  When GET_STATS fails, the device clock is
 * estimated from the freshness estimate (never later than the device's:
 * it errs by the fastest record's transit), with FENCE_EST_MARGIN_MS more
 * after a CLEAR_FAULT.  A fence never moves back; it ends at the first
 * record at or after it, when the device clock goes back (a reset), or
 * FENCE_MAX_USEC after it was set, so a device whose clock stopped is
 * judged again.  A fault that really recurs at once is latched from the
 * first record after the fence; meanwhile the device itself is faulted.
 */
#define FENCE_MAX_USEC (10 * US_PER_S)
#define FENCE_EST_MARGIN_MS 5

static void set_fence(struct controller *c, uint64_t now, bool exact, uint32_t device_ms,
		      uint32_t after_ms)
{
	uint32_t from;

#ifdef SMP_MUTATION_DM_STALE_FENCE
	return; /* mutant: records from before CLEAR_FAULT or START are judged */
#endif
	if (!exact) {
		int64_t best;

		if (!c->have_clock)
			return; /* no record yet: none can be stale */
		best = c->clock_off_cur < c->clock_off_prev ? c->clock_off_cur : c->clock_off_prev;
		device_ms = (uint32_t)(((int64_t)now - best) / 1000);
		if (after_ms)
			after_ms += FENCE_EST_MARGIN_MS;
	}
	from = device_ms + after_ms;
	if (c->fence && (int32_t)(from - c->judge_from_ms) <= 0)
		return;
	c->fence = true;
	c->judge_from_ms = from;
	c->fence_until = now + FENCE_MAX_USEC;
}

bool controller_telemetry(struct controller *c, uint64_t now, const struct smp_telemetry *t)
{
	enum monitor_trip trip;
	char msg[SAFETY_MSG_MAX];
	uint8_t old_state = c->dev_state;

	note_record_time(c, t->timestamp_us, now);
	if (c->fence) {
		/* the device clock in ms, modulo 2^32 as GET_STATS has it */
		uint32_t t_ms = (uint32_t)(t->timestamp_us / 1000);

		if ((int32_t)(t_ms - c->judge_from_ms) < 0 && now < c->fence_until)
			return false;
		c->fence = false;
	}
	c->dev_state = t->state;
	c->dev_faults = t->faults;
	c->have_temp = true;
	c->last_temp_cdeg = t->temp_cdeg;

	trip = monitor_feed(&c->monitor, c->policy, &c->judged_setpoints,
			    c->limits.max[PARAM_CURRENT].value, c->session_open, t, msg, sizeof(msg));
	if (trip != MONITOR_OK && c->trip == MONITOR_OK && !c->estop)
		controller_trip(c, now, trip, msg);
	if (old_state != t->state)
		emit(c, CTL_PROP_STATE);
	return true;
}

/* ---- lease renewal and claimant liveness (H6) ---- */

/*
 * A claimant on the bus may still be hung (stopped, deadlocked, stuck in
 * a long computation): it would keep the needle running with nobody in
 * control.  So while the needle runs the claimant proves it is alive by
 * calling Heartbeat() from its own main loop (libsmp from its dispatch)
 * at least every ClientTimeoutMs; the Start call is its first sign of
 * life.  A Peer.Ping is no proof: GDBus answers it from a worker thread
 * while the application's main thread hangs.  When the last sign of life
 * is ClientTimeoutMs old (controller_claimant_alive() re-arms the
 * deadline) the claimant is unresponsive: the renewals end and STOP goes
 * out at once; a deadline timer that did not get its turn is judged by
 * the renewal, RenewMs later at most.  The fault latches; the claim and
 * the session stay, as the claimant is still on the bus: resuming it
 * restarts nothing (Start is refused until ClearFault).  Nothing is
 * watched while the needle is stopped.
 */
/* Has the claimant given no sign of life for ClientTimeoutMs (+ slack_ms)? */
static bool alive_expired(const struct controller *c, uint64_t now, uint32_t slack_ms)
{
#ifdef SMP_MUTATION_DM_CLIENT_ALIVE
	return false; /* mutant: a claimant on the bus counts as alive */
#endif
	return c->alive_at &&
	       now >= c->alive_at + (uint64_t)(c->policy->client_timeout_ms.value + slack_ms) *
					    US_PER_MS;
}

static void client_unresponsive(struct controller *c, uint64_t now)
{
	const struct setting *t = &c->policy->client_timeout_ms;
	char msg[SAFETY_MSG_MAX + 512];

	snprintf(msg, sizeof(msg),
		 "the claiming client %s sent no Heartbeat for %" PRIu64
		 " ms (ClientTimeoutMs=%u, %s)",
		 c->claimant[0] ? c->claimant : "(none)", (now - c->alive_at) / 1000, t->value,
		 t->source);
	controller_trip(c, now, MONITOR_CLIENT_UNRESPONSIVE, msg);
}

/* A sign of life at now: the deadline moves to now + ClientTimeoutMs. */
static void alive(struct controller *c, uint64_t now)
{
	c->alive_at = now;
	arm(c, CTL_TIMER_ALIVE, now + (uint64_t)c->policy->client_timeout_ms.value * US_PER_MS);
}

void controller_claimant_alive(struct controller *c, uint64_t now)
{
	if (!c->running || c->gone || !c->claimant[0])
		return; /* counts only while the needle runs */
	alive(c, now);
}

static void stop_for(struct controller *c, const char *why)
{
	stop_needle(c, CTL_THEN_RECORD, "smpd", why, false);
}

/* The renewal's decision, once the link's backlog is judged. */
static void renew_decide(struct controller *c, uint64_t now)
{
	const struct policy *p = c->policy;

#ifdef SMP_MUTATION_DM_LEASE_TELEMETRY
	c->fresh_mono = now; /* mutant: renews without telemetry */
#endif
	if (!c->claimant[0])
		stop_for(c, "the claiming client left the bus");
	else if (!c->session_open)
		stop_for(c, "no open session");
	else if (c->audit_error < 0)
		stop_for(c, "the audit log cannot be written");
	else if (now - c->fresh_mono > (uint64_t)p->lease_ms.value * US_PER_MS)
		controller_trip(c, now, MONITOR_TELEMETRY_LOST,
				"no telemetry from the device for a lease period");
	else if (alive_expired(c, now, p->renew_ms.value))
		client_unresponsive(c, now); /* the deadline timer did not get its turn */
	else
		send_lease(c, SMPP_T_RENEW_LEASE, CTL_TAG_RENEW);
}

static void renew_tick(struct controller *c, uint64_t now)
{
	const struct policy *p = c->policy;

	if (!c->running || c->gone || !c->renew_at || now < c->renew_at)
		return;
	/* A late renewal means the lease may run out: say so. */
	if (now > c->renew_at + (uint64_t)p->renew_ms.value * US_PER_MS)
		snprintf(push(c, CTL_LOG)->message, sizeof(c->actions[0].message),
			 "lease renewal %" PRIu64 " ms late", (now - c->renew_at) / 1000);
	/*
	 * smpd itself may be the one that was late (a stalled host): judge
	 * what the link already holds before taking the telemetry for lost.
	 */
	if (now - c->fresh_mono > (uint64_t)p->lease_ms.value * US_PER_MS && !c->backlog_asked) {
		c->backlog_asked = true;
		push(c, CTL_READ_BACKLOG);
		return;
	}
	renew_decide(c, now);
}

void controller_backlog_done(struct controller *c, uint64_t now)
{
	if (!c->backlog_asked)
		return;
	c->backlog_asked = false;
	if (!c->running || c->gone)
		return;
	renew_decide(c, now);
}

static void renew_done(struct controller *c, uint64_t now, const struct ctl_result *res)
{
	uint64_t nominal = c->renew_at;
	char msg[SAFETY_MSG_MAX];

	if (!c->running || c->gone)
		return;
	if (res->r != 0) {
		snprintf(msg, sizeof(msg), "lease renewal failed: %s", why_failed(res->r));
		controller_trip(c, now, MONITOR_DEVICE_REFUSED, msg);
		return;
	}
	c->renew_at = nominal + (uint64_t)c->policy->renew_ms.value * US_PER_MS;
	arm(c, CTL_TIMER_RENEW, c->renew_at);
}

static void alive_deadline(struct controller *c, uint64_t now)
{
	if (!c->running || c->gone || !alive_expired(c, now, 0))
		return;
	client_unresponsive(c, now);
}

/* ---- claim ---- */

void controller_claimed(struct controller *c, const char *claimant)
{
	snprintf(c->claimant, sizeof(c->claimant), "%s", claimant);
}

void controller_release(struct controller *c, uint64_t now, const char *reason)
{
	(void)now;
	if (controller_needle_may_run(c))
		stop_needle(c, CTL_THEN_RELEASE, c->claimant, reason, false);
	else
		snprintf(push(c, CTL_RELEASE)->message, sizeof(c->actions[0].message), "%s", reason);
}

void controller_claimant_gone(struct controller *c, uint64_t now, const char *reason)
{
#ifdef SMP_MUTATION_DM_CLAIMANT_GONE
	return; /* mutant: a claimant that left the bus keeps the device */
#endif
	controller_release(c, now, reason);
}

void controller_unclaimed(struct controller *c)
{
	c->claimant[0] = '\0';
	/* no one's sign of life is awaited any more */
	if (c->alive_at)
		arm(c, CTL_TIMER_ALIVE, 0);
	c->alive_at = 0;
}

/* ---- requests ---- */

static bool busy(struct controller *c)
{
	if (c->op == CTL_OP_NONE)
		return false;
	/* not the request in progress: answered at once, nothing done */
	{
		struct ctl_action *a = push(c, CTL_REPLY);

		a->error = E_DEVICE_ERROR;
		snprintf(a->message, sizeof(a->message),
			 "another request to device %s is in progress", c->serial);
	}
	return true;
}

/*
 * The start gate: the needle starts only with a writable audit log, inside
 * an open session, with no emergency stop or fault latched, within the
 * session's time and needle-on limits, with setpoints that the limits in
 * force now allow (the policy may have been reloaded since SetParameters).
 *
 * Checked when Start is asked, and again right before START goes out: the
 * GET_STATS fence and the durable start record lie between, and with a
 * glue that completes commands later a fault, an emergency stop, the
 * session's end or a reload can come meanwhile.  A fault latched there
 * used to be followed by START all the same, and the needle ran, renewed,
 * with the fault latched.
 *
 * ACSL (comments opening with "@", proofs/README.md): start_refusal()
 * returns START_OK only when start_gate holds, and send_start(), the one
 * place START is sent, requires start_gate: Frama-C's WP proves it at
 * every call.
 */
/*@ predicate start_gate(struct controller *c) =
	c->audit_error >= 0 && c->session_open != 0 && c->estop == 0 &&
	c->trip == MONITOR_OK && c->time_exceeded == 0 && c->have_setpoints != 0 &&
	c->monitor.needle_on_us < c->policy->max_needle_on_s.value * 1000000 &&
	params_allowed(&c->limits, &c->setpoints);
 */
enum start_refusal {
	START_OK,
	START_AUDIT,
	START_NO_SESSION,
	START_ESTOP,
	START_FAULT,
	START_TIME,
	START_NO_SETPOINTS,
	START_NEEDLE_ON,
	START_RANGE,   /* the setpoints exceed a limit (*q, msg) */
	START_INVALID, /* the setpoints are off the protocol's step (*q, msg) */
};

/* Which rule of the gate refuses START now, in the order they are told. */
/*@ requires \valid_read(c) && \valid_read(c->policy);
    requires \valid(q) && \valid(msg + (0 .. msgsz - 1));
    requires \separated(q, c, c->policy);
    requires \separated(msg + (0 .. msgsz - 1), c, c->policy, q);
    assigns *q, msg[0 .. msgsz - 1];
    ensures \result == START_OK ==> start_gate(c);
 */
static enum start_refusal start_refusal(const struct controller *c, enum param *q, char *msg,
					size_t msgsz)
{
	int r;

	if (c->audit_error < 0)
		return START_AUDIT;
	if (!c->session_open)
		return START_NO_SESSION;
#ifndef SMP_MUTATION_DM_START_GATE
	if (c->estop)
		return START_ESTOP;
	if (c->trip != MONITOR_OK)
		return START_FAULT;
#endif /* mutant: a latched fault or emergency stop does not refuse Start */
#ifndef SMP_MUTATION_DM_SESSION_LIMITS
	if (c->time_exceeded)
		return START_TIME;
#endif
	if (!c->have_setpoints)
		return START_NO_SETPOINTS;
#ifndef SMP_MUTATION_DM_SESSION_LIMITS
	if (c->monitor.needle_on_us >= (uint64_t)c->policy->max_needle_on_s.value * US_PER_S)
		return START_NEEDLE_ON;
#endif /* mutant: an exhausted session still starts */
	r = safety_check_params(&c->limits, &c->setpoints, q, msg, msgsz);
	if (r == -ERANGE)
		return START_RANGE;
	if (r != 0)
		return START_INVALID;
	return START_OK;
}

/* A sentence into s (vsnprintf: a message longer than s is cut, as reply() cuts it). */
static void say(char *s, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *s, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s, n, fmt, ap);
	va_end(ap);
}

/*
 * Answer the Start request the gate refused, with the refusal's name and
 * sentence; recorded: after the start record, so a start_refused record
 * tells why the needle did not start after all.
 */
static void refuse_start(struct controller *c, enum start_refusal why, enum param q,
			 const char *msg, bool recorded)
{
	char s[sizeof(c->actions[0].message)];
	const char *error = E_FAULT_LATCHED;
	struct ctl_action *a;

	switch (why) {
	case START_OK:
		return;
	case START_AUDIT:
		error = E_AUDIT_UNAVAILABLE;
		say(s, sizeof(s), "the audit log cannot be written (%s): the needle cannot start",
		    strerror(-c->audit_error));
		break;
	case START_NO_SESSION:
		error = E_NO_SESSION;
		say(s, sizeof(s), "the needle runs only inside an open session");
		break;
	case START_ESTOP:
		say(s, sizeof(s), "an emergency stop is latched; ClearFault first");
		break;
	case START_FAULT:
		say(s, sizeof(s), "fault %s is latched (%s); ClearFault first",
		    monitor_trip_to_string(c->trip), c->trip_message);
		break;
	case START_TIME:
		error = E_SESSION_LIMIT;
		say(s, sizeof(s), "the session reached its maximum duration");
		break;
	case START_NO_SETPOINTS:
		error = E_NO_SETPOINTS;
		say(s, sizeof(s), "SetParameters first: voltage, current, stroke rate and depth");
		break;
	case START_NEEDLE_ON:
		error = E_SESSION_LIMIT;
		say(s, sizeof(s), "the session used its needle-on time (%u s, %s)",
		    c->policy->max_needle_on_s.value, c->policy->max_needle_on_s.source);
		break;
	case START_RANGE:
	case START_INVALID:
		error = E_LIMIT_EXCEEDED;
		say(s, sizeof(s), "%s", msg);
		break;
	}
	if (recorded)
		audit(c, CTL_AUDIT_START_REFUSED, false, c->op_who, s);
	a = push(c, CTL_REPLY);
	a->error = error;
	if (why == START_RANGE || why == START_INVALID) {
		a->limit_refusal = why == START_RANGE;
		a->param = q;
	}
	snprintf(a->message, sizeof(a->message), "%s", s);
	c->op = CTL_OP_NONE;
}

/* The one place START is sent (its lease with it). */
/*@ requires gate_start: start_gate(c); */
static void send_start(struct controller *c)
{
	send_lease(c, SMPP_T_START, CTL_TAG_START);
}

void controller_request_start(struct controller *c, uint64_t now, const char *who)
{
	char msg[SAFETY_MSG_MAX] = "";
	enum param q = PARAM_VOLTAGE;
	enum start_refusal why;

	if (busy(c))
		return;
	c->op = CTL_OP_START;
	snprintf(c->op_who, sizeof(c->op_who), "%s", who);
	why = start_refusal(c, &q, msg, sizeof(msg));
	if (why != START_OK) {
		refuse_start(c, why, q, msg, false);
		return;
	}
	(void)now;
	/* the device clock, for the fence (controller_telemetry) */
	send(c, SMPP_T_GET_STATS, CTL_TAG_START_FENCE, NULL, 0);
}

static void start_fenced(struct controller *c, uint64_t now, const struct ctl_result *res)
{
	c->judged_setpoints = c->setpoints; /* this run's, from the fence on */
	set_fence(c, now, res->r == 0 && res->have_uptime, res->uptime_ms, 0);
	/*
	 * The record first, durable (H12): the needle never moves without
	 * it, and no fdatasync() sits between START and the first renewal.
	 */
	audit(c, CTL_AUDIT_START, true, c->op_who, NULL);
}

/*
 * A stop (a trip, an emergency stop) that came while the start was under
 * way wins: the glue may complete commands later than it sends them, and
 * a stop overtakes the START queued or in flight (devio.c).
 */
static bool stopped_meanwhile(struct controller *c)
{
	if (!c->estop && c->trip == MONITOR_OK && !c->stopping)
		return false;
	audit(c, CTL_AUDIT_START_REFUSED, false, c->op_who, "stopped while starting");
	reply(c, E_FAULT_LATCHED, "the needle was stopped while it started (%s)",
	      c->estop		    ? "emergency stop" :
	      c->trip != MONITOR_OK ? c->trip_message :
				      "stop");
	return true;
}

static void start_done(struct controller *c, uint64_t now, const struct ctl_result *res)
{
	char msg[SAFETY_MSG_MAX] = "";
	enum param q = PARAM_VOLTAGE;
	enum start_refusal why;

	if (stopped_meanwhile(c))
		return;
	if (res->r != 0) {
		audit(c, CTL_AUDIT_START_REFUSED, false, c->op_who, why_failed(res->r));
		reply_device_error(c, res->r, "START");
		return;
	}
	/*
	 * And once more when START is done: what came while it was on its way
	 * (a session that ended stopped nothing, as no needle ran yet) is
	 * answered by stopping the needle START just started.
	 */
	why = start_refusal(c, &q, msg, sizeof(msg));
	if (why != START_OK) {
		stop_for(c, "the start gate no longer held when START was done");
		refuse_start(c, why, q, msg, true);
		return;
	}
	c->running = true;
	alive(c, now); /* the Start call is the claimant's first sign of life */
	c->backlog_asked = false;
	c->fresh_mono = now; /* a lease for the first record */
	c->renew_at = now + (uint64_t)c->policy->renew_ms.value * US_PER_MS;
	arm(c, CTL_TIMER_RENEW, c->renew_at);
	emit(c, CTL_PROP_STATE);
	reply(c, NULL, NULL);
}

void controller_request_stop(struct controller *c, uint64_t now, const char *who, const char *reason)
{
	(void)now;
	if (busy(c))
		return;
	c->op = CTL_OP_STOP;
	stop_needle(c, CTL_THEN_RECORD, who, reason, true);
}

/*
 * H7: no claim needed, never refused, never queued behind another request
 * (it is answered on its own); latched until ClearFault.
 */
void controller_request_estop(struct controller *c, uint64_t now, const char *who)
{
	c->running = false;
	stop_renewing(c);
	c->estop = true;
	/* the device may take it after the CLEAR_FAULT in flight: it stays */
	if (c->op == CTL_OP_CLEAR)
		c->estop_while_clearing = true;
	snprintf(c->estop_who, sizeof(c->estop_who), "%s", who);
	if (c->gone) {
		struct ctl_result res = { .tag = CTL_TAG_ESTOP_AGAIN, .r = -ENODEV };

		controller_command_done(c, now, &res);
		return;
	}
	send(c, SMPP_T_ESTOP, CTL_TAG_ESTOP, NULL, 0);
}

static void estop_done(struct controller *c, const struct ctl_result *res)
{
	struct ctl_action *a;

	if (res->tag == CTL_TAG_ESTOP && res->r != 0 && !c->gone) {
		send(c, SMPP_T_ESTOP, CTL_TAG_ESTOP_AGAIN, NULL, 0);
		return;
	}
	audit(c, CTL_AUDIT_ESTOP, false, c->estop_who, NULL);
	emit(c, CTL_PROP_STATE);
	a = push(c, CTL_REPLY);
	a->estop = true;
	if (res->r < 0) {
		a->error = E_DEVICE_ERROR;
		snprintf(a->message, sizeof(a->message), "ESTOP: %s", strerror(-res->r));
	} else if (res->r > 0) {
		a->error = E_DEVICE_REFUSED;
		snprintf(a->message, sizeof(a->message), "ESTOP: the device refused with %s",
			 smp_status_name((unsigned)res->r));
	}
}

/*
 * ClearFault: refused while the motor is above 90% of the policy's
 * temperature limit, or, inside a session, while the session's cartridge
 * is not the one inserted; then the device's own CLEAR_FAULT decides.
 */
void controller_request_clear_fault(struct controller *c, uint64_t now, const char *who)
{
	(void)now;
	if (busy(c))
		return;
	c->op = CTL_OP_CLEAR;
	c->estop_while_clearing = false;
	snprintf(c->op_who, sizeof(c->op_who), "%s", who);
#ifndef SMP_MUTATION_DM_CLEAR_FAULT_RULE
	if (c->have_temp &&
	    c->last_temp_cdeg * 10 > (int32_t)c->policy->max_temperature_cdeg.value * 9) {
		reply(c, E_FAULT_PERSISTS, "the motor is still above 90%% of the temperature limit");
		return;
	}
	if (c->session_open) {
		send(c, SMPP_T_GET_CARTRIDGE, CTL_TAG_CLEAR_CARTRIDGE, NULL, 0);
		return;
	}
#endif /* mutant: ClearFault of a hot motor or without the session's cartridge */
	send(c, SMPP_T_CLEAR_FAULT, CTL_TAG_CLEAR, NULL, 0);
}

static void clear_cartridge_done(struct controller *c, const struct ctl_result *res)
{
	if (res->r != 0) {
		reply_device_error(c, res->r, "GET_CARTRIDGE");
		return;
	}
	if (!res->cartridge_present || strcmp(res->cartridge_id, c->session_cartridge) != 0) {
		reply(c, E_FAULT_PERSISTS,
		      "cartridge %s of the session is not inserted; end the session",
		      c->session_cartridge);
		return;
	}
	if (c->estop_while_clearing) { /* a CLEAR_FAULT now would undo it */
		c->estop_while_clearing = false;
		reply(c, E_FAULT_PERSISTS,
		      "an emergency stop came while the fault was cleared; ClearFault again");
		return;
	}
	send(c, SMPP_T_CLEAR_FAULT, CTL_TAG_CLEAR, NULL, 0);
}

static void clear_done(struct controller *c, uint64_t now, const struct ctl_result *res)
{
	if (res->r == SMPP_S_CONDITION_PRESENT) {
		reply(c, E_FAULT_PERSISTS, "the device reports that the cause of the fault persists");
		return;
	}
	if (res->r != 0) {
		reply_device_error(c, res->r, "CLEAR_FAULT");
		return;
	}
	audit(c, CTL_AUDIT_CLEAR_FAULT, false, c->op_who,
	      c->trip != MONITOR_OK ? monitor_trip_to_string(c->trip) :
	      c->estop		    ? "estop" :
				      "none");
	/*
	 * Fenced at once by the estimate, exactly when GET_STATS answers:
	 * records from before the CLEAR_FAULT that reach us meanwhile (the
	 * I/O worker hands over what it read during the command only after
	 * it) would otherwise set the state back to FAULT.
	 */
	set_fence(c, now, false, 0, 1);
	send(c, SMPP_T_GET_STATS, CTL_TAG_CLEAR_FENCE, NULL, 0);
}

static void clear_fenced(struct controller *c, uint64_t now, const struct ctl_result *res)
{
	/* the exact fence replaces the estimate clear_done() set meanwhile */
	if (res->r == 0 && res->have_uptime)
		c->fence = false;
	set_fence(c, now, res->r == 0 && res->have_uptime, res->uptime_ms, 1);
	c->trip = MONITOR_OK;
	c->trip_message[0] = '\0';
	c->monitor.brownout = c->monitor.jam = false;
	emit(c, CTL_PROP_STATE | CTL_PROP_FAULT);
	/*
	 * An emergency stop requested while the fault was being cleared may
	 * have reached the device after its CLEAR_FAULT: it is latched there,
	 * and stays latched here (H7).
	 */
	if (c->estop_while_clearing) {
		c->estop_while_clearing = false;
		reply(c, E_FAULT_PERSISTS,
		      "an emergency stop came while the fault was cleared; ClearFault again");
		return;
	}
	c->estop = false;
	reply(c, NULL, NULL);
}

int controller_check_setpoints(const struct effective_limits *el, const struct smp_params *sp,
			       enum param *ret_param, char *msg, size_t msgsz)
{
	return safety_check_params(el, sp, ret_param, msg, msgsz);
}

/*
 * The setpoint gate: SET_PARAMS goes out only inside an open session (its
 * zone decides the limits) and with values that the limits in force allow
 * (safety_check_params()).  send_set_params() is the one place SET_PARAMS
 * is sent; WP proves its precondition at every call (proofs/README.md).
 */
/*@ requires gate_setpoint: c->session_open != 0 && params_allowed(&c->limits, req); */
static void send_set_params(struct controller *c, const struct smp_params *req)
{
	uint8_t buf[SMPP_PARAMS_SIZE];

	smp_params_encode(req, buf, sizeof(buf));
	send(c, SMPP_T_SET_PARAMS, CTL_TAG_SET_PARAMS, buf, sizeof(buf));
}

/*@ requires \valid(c) && \valid_read(req) && \separated(c, req); */
void controller_request_set_parameters(struct controller *c, uint64_t now,
				       const struct smp_params *req)
{
	char msg[SAFETY_MSG_MAX];
	enum param q;
	int r;

	(void)now;
	if (busy(c))
		return;
	c->op = CTL_OP_SET_PARAMS;
	c->op_params = *req;
	if (!c->session_open) {
		reply(c, E_NO_SESSION,
		      "parameters are set inside an open session (its zone decides the limits)");
		return;
	}
	r = safety_check_params(&c->limits, req, &q, msg, sizeof(msg));
	if (r != 0) {
		struct ctl_action *a;

		audit(c, CTL_AUDIT_PARAMETERS_REFUSED, false, NULL, msg);
		a = push(c, CTL_REPLY);
		a->error = r == -ERANGE ? E_LIMIT_EXCEEDED : E_INVALID_ARGUMENT;
		a->limit_refusal = r == -ERANGE;
		a->param = q;
		snprintf(a->message, sizeof(a->message), "%s", msg);
		c->op = CTL_OP_NONE;
		return;
	}
	send_set_params(c, req);
}

static void set_params_done(struct controller *c, uint64_t now, const struct ctl_result *res)
{
	char msg[SAFETY_MSG_MAX];

	if (res->r == SMPP_S_OUT_OF_RANGE || res->r == SMPP_S_NOT_ON_STEP) {
		reply(c, E_DEVICE_REFUSED, "the device refused field %u with %s (limit %u)",
		      res->range.field, smp_status_name((unsigned)res->r), res->range.limit);
		return;
	}
	if (res->r != 0) {
		reply_device_error(c, res->r, "SET_PARAMS");
		return;
	}
	if (!res->have_params) {
		reply(c, E_DEVICE_ERROR, "malformed SET_PARAMS reply");
		return;
	}
	/*
	 * Records of the run before still arrive (up to a lease late, the
	 * backlog of the device and the link): judged against these new
	 * setpoints, a higher voltage would read as a brown-out.  They keep
	 * the old ones until the next START; the first setpoints, and a
	 * change while the needle runs, count at once.
	 */
	if (!c->have_setpoints || c->running)
		c->judged_setpoints = res->params;
	c->setpoints = res->params;
	c->have_setpoints = true;
	/* The device's answer is checked like a request: no layer trusts another. */
	if (safety_check_params(&c->limits, &res->params, NULL, msg, sizeof(msg)) < 0) {
		char m2[SAFETY_MSG_MAX + 64];

		snprintf(m2, sizeof(m2), "the device applied other values: %s", msg);
		controller_trip(c, now, MONITOR_DEVICE_FAULT, m2);
		reply(c, E_DEVICE_ERROR, "%s", m2);
		return;
	}
	audit(c, CTL_AUDIT_SET_PARAMETERS, true, NULL, NULL);
}

/*@ requires \valid(c) && \valid_read(c->policy) && \separated(c, c->policy); */
void controller_audit_done(struct controller *c, uint64_t now, int r)
{
	char msg[SAFETY_MSG_MAX] = "";
	enum param q = PARAM_VOLTAGE;
	enum start_refusal why;

	(void)now;
	switch (c->op) {
	case CTL_OP_START:
		if (r < 0) {
			reply(c, E_AUDIT_UNAVAILABLE, "the audit log cannot be written: %s",
			      strerror(-r));
			return;
		}
		if (stopped_meanwhile(c))
			return;
		/* the gate again: a fault, a stop or a reload may have come meanwhile */
		why = start_refusal(c, &q, msg, sizeof(msg));
		if (why != START_OK) {
			refuse_start(c, why, q, msg, true);
			return;
		}
		send_start(c);
		break;
	case CTL_OP_SET_PARAMS:
		if (r < 0) {
			reply(c, E_AUDIT_UNAVAILABLE, "the audit log cannot be written: %s",
			      strerror(-r));
			return;
		}
		emit(c, CTL_PROP_SETPOINTS);
		reply(c, NULL, NULL);
		break;
	default:
		break;
	}
}

void controller_command_done(struct controller *c, uint64_t now, const struct ctl_result *res)
{
	if (res->r == -ENODEV)
		controller_device_gone(c);
	if (res->r == 0 && res->have_status) {
		c->dev_state = res->state;
		c->dev_faults = res->faults;
	}
	switch (res->tag) {
	case CTL_TAG_STOP:
		if (res->r != 0 && !c->gone) {
			send(c, SMPP_T_ESTOP, CTL_TAG_STOP_ESTOP, NULL, 0);
			return;
		}
		stop_done(c, res->r);
		break;
	case CTL_TAG_STOP_ESTOP:
		stop_done(c, res->r);
		break;
	case CTL_TAG_RENEW:
		renew_done(c, now, res);
		break;
	case CTL_TAG_START_FENCE:
		start_fenced(c, now, res);
		break;
	case CTL_TAG_START:
		start_done(c, now, res);
		break;
	case CTL_TAG_ESTOP:
	case CTL_TAG_ESTOP_AGAIN:
		estop_done(c, res);
		break;
	case CTL_TAG_CLEAR_CARTRIDGE:
		clear_cartridge_done(c, res);
		break;
	case CTL_TAG_CLEAR:
		clear_done(c, now, res);
		break;
	case CTL_TAG_CLEAR_FENCE:
		clear_fenced(c, now, res);
		break;
	case CTL_TAG_SET_PARAMS:
		set_params_done(c, now, res);
		break;
	}
}

/* ---- sessions (H16) ---- */

static void arm_session_clock(struct controller *c)
{
	const struct policy *p = c->policy;
	uint64_t end = c->session_begin + (uint64_t)p->max_session_s.value * US_PER_S;

#ifdef SMP_MUTATION_DM_SESSION_LIMITS
	return; /* mutant: a session has no end */
#endif
	arm(c, CTL_TIMER_LIMIT, end);
	if (p->warning_before_end_s.value > 0)
		arm(c, CTL_TIMER_WARNING, end - (uint64_t)p->warning_before_end_s.value * US_PER_S);
}

void controller_session_opened(struct controller *c, uint64_t now, const char *cartridge_id)
{
	c->session_open = true;
	c->time_exceeded = false;
	c->session_begin = now;
	snprintf(c->session_cartridge, sizeof(c->session_cartridge), "%s", cartridge_id);
	monitor_reset_session(&c->monitor);
	arm_session_clock(c);
}

void controller_session_ended(struct controller *c, uint64_t now, const char *who)
{
	(void)now;
	if (!c->session_open)
		return;
	c->session_open = false;
	if (controller_needle_may_run(c))
		stop_needle(c, CTL_THEN_RECORD, who, "the session ended", false);
	arm(c, CTL_TIMER_WARNING, 0);
	arm(c, CTL_TIMER_LIMIT, 0);
}

static void session_limit(struct controller *c, uint64_t now)
{
	char msg[SAFETY_MSG_MAX];

	if (!c->session_open ||
	    now < c->session_begin + (uint64_t)c->policy->max_session_s.value * US_PER_S)
		return;
	c->time_exceeded = true;
	push(c, CTL_SESSION_EXPIRED);
	snprintf(msg, sizeof(msg), "the session reached its maximum duration of %u s (%s)",
		 c->policy->max_session_s.value, c->policy->max_session_s.source);
	controller_trip(c, now, MONITOR_SESSION_TIME, msg);
}

void controller_policy_reloaded(struct controller *c, uint64_t now)
{
	char msg[SAFETY_MSG_MAX];

	(void)now;
	if (c->gone)
		return;
	if (c->running && c->have_setpoints &&
	    safety_check_params(&c->limits, &c->setpoints, NULL, msg, sizeof(msg)) < 0)
		stop_for(c, "the reloaded policy no longer allows the setpoints");
	if (c->session_open)
		arm_session_clock(c); /* a shorter MaxDuration applies at once */
}

void controller_timer(struct controller *c, uint64_t now, enum ctl_timer timer)
{
	switch (timer) {
	case CTL_TIMER_RENEW:
		renew_tick(c, now);
		break;
	case CTL_TIMER_ALIVE:
		alive_deadline(c, now);
		break;
	case CTL_TIMER_WARNING:
		if (c->session_open)
			push(c, CTL_SESSION_WARNING);
		break;
	case CTL_TIMER_LIMIT:
		session_limit(c, now);
		break;
	default:
		break;
	}
}

/* ---- the audit log (H12) ---- */

void controller_audit_failed(struct controller *c, uint64_t now, int err)
{
	c->audit_error = err < 0 ? err : -EIO;
	if (!c->gone)
		controller_trip(c, now, MONITOR_AUDIT_FAILED, "the audit log cannot be written");
}
