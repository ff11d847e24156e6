/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-controller.c - smpd's per-device safety controller (daemon/
 * controller.c) on synthetic timelines.
 *
 * A small world plays the glue: a fake device (its state, its clock, its
 * lease, scripted refusals and link errors), a fake claimant and the event
 * loop's timers, all on a virtual CLOCK_MONOTONIC.  Each case drives one
 * timeline and asserts the exact sequence of actions the controller asked
 * for, with their times (ms since the timeline began).  Deterministic: no
 * clock is read, no thread, no real-time priority; the whole file runs in
 * well under a second.  The scenarios of the fault matrix that smpd takes
 * part in (docs/reliability.md) are here as the controller sees them.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller.h"

#define MS ((uint64_t)1000)
#define T0 (1000 * 1000 * MS) /* CLOCK_MONOTONIC when a timeline begins */
#define DEV_T0 (5000 * MS)    /* the device clock then */

static const struct smp_limits x2 = {
	.voltage_min_mv = 3000,
	.voltage_max_mv = 18000,
	.current_max_ma = 3000,
	.rate_min_chz = 5000,
	.rate_max_chz = 15000,
	.depth_min_um = 300,
	.depth_max_um = 2000,
	.temp_max_cdeg = 6500,
	.lease_max_ms = 500,
};

static const struct smp_params sp = {
	.voltage_mv = 8000,
	.current_ma = 900,
	.rate_chz = 12000,
	.depth_um = 700,
};

struct world {
	struct policy p;
	struct controller c;
	uint64_t now;
	uint64_t timer[_CTL_TIMER_MAX]; /* armed at, 0 = off */

	/* the fake device */
	uint8_t state;
	uint32_t faults;
	uint64_t lease_end;	/* its run lease (CLOCK_MONOTONIC) */
	bool condition_present; /* CLEAR_FAULT refused */
	int fail[256];		/* next reply of a command type: status or -errno */
	bool stats_broken;	/* GET_STATS always fails */
	bool gone;
	bool cart_present;
	char cart_id[SMPP_ID_LEN + 1];
	struct smp_params applied_override; /* SET_PARAMS applies this when set */

	/* telemetry: one record per device ms while on; read lag_us later */
	bool telemetry;
	uint64_t next_record;	/* device time of the next record */
	int64_t clock_step;	/* added to the records' device timestamps */
	uint64_t records_until; /* the device makes none after this (0: no end) */
	bool reader_starved;	/* smpd's telemetry input gets no turn */
	uint64_t lag_us;
	uint32_t seq;
	uint16_t voltage_mv, current_ma;
	int16_t temp_cdeg;
	unsigned judged, skipped;

	/* the claimant */
	bool client_answers;
	int audit_r;	    /* result of gated records */
	bool quiet;	    /* leave routine renewals out of the trace */
	uint64_t next_beat; /* its next Heartbeat, while the needle runs */
	unsigned renewals, beats;

	/* what the device was when: records show the state of their making */
	struct {
		uint64_t dev_us;
		uint8_t state;
		uint32_t faults;
	} hist[256];
	unsigned n_hist;

	/* commands held in flight (completed later, as smpd's I/O worker does) */
	bool hold;
	struct ctl_action held[8];
	unsigned n_held;

	char trace[16384];
	size_t len;
};

static void tr(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tr(struct world *w, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(w->trace + w->len, sizeof(w->trace) - w->len, "%" PRIu64 ".%03" PRIu64 " ",
		     (w->now - T0) / MS, (w->now - T0) % MS);
	if (n > 0)
		w->len += (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(w->trace + w->len, sizeof(w->trace) - w->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		w->len += (size_t)n;
	if (w->len < sizeof(w->trace) - 1)
		w->trace[w->len++] = '\n';
	w->trace[w->len] = '\0';
	assert_true(w->len < sizeof(w->trace) - 2);
}

static void expect_trace(struct world *w, const char *want)
{
	if (strcmp(w->trace, want) != 0)
		fail_msg("trace:\n%s\nwanted:\n%s", w->trace, want);
	w->len = 0;
	w->trace[0] = '\0';
}

static bool trace_has(struct world *w, const char *needle)
{
	return strstr(w->trace, needle) != NULL;
}

static void trace_clear(struct world *w)
{
	w->len = 0;
	w->trace[0] = '\0';
}

static uint32_t device_ms(const struct world *w)
{
	return (uint32_t)((w->now - T0 + DEV_T0) / MS);
}

/* The device changes state now (its clock: the records made from now on show it). */
static void set_dev(struct world *w, uint8_t state, uint32_t faults)
{
	w->state = state;
	w->faults = faults;
	if (w->n_hist == sizeof(w->hist) / sizeof(w->hist[0])) {
		memmove(w->hist, w->hist + 1, sizeof(w->hist) - sizeof(w->hist[0]));
		w->n_hist--;
	}
	w->hist[w->n_hist].dev_us = w->now - T0 + DEV_T0;
	w->hist[w->n_hist].state = state;
	w->hist[w->n_hist].faults = faults;
	w->n_hist++;
}

static const char *timer_name(enum ctl_timer t)
{
	static const char *const n[] = { "renew", "alive", "warning", "limit" };

	return n[t];
}

static const char *audit_name(enum ctl_audit a)
{
	static const char *const n[] = {
		"stop",
		"estop",
		"start",
		"start_refused",
		"clear_fault",
		"set_parameters",
		"parameters_refused",
	};

	return n[a];
}

/* The fake device answers a command. */
static void device_command(struct world *w, const struct ctl_action *a, struct ctl_result *res)
{
	memset(res, 0, sizeof(*res));
	res->tag = a->tag;
	if (w->gone) {
		res->r = -ENODEV;
		return;
	}
	if (w->fail[a->cmd]) {
		res->r = w->fail[a->cmd];
		w->fail[a->cmd] = 0;
		return;
	}
	switch (a->cmd) {
	case SMPP_T_STOP:
		if (w->state == SMPP_STATE_RUNNING)
			set_dev(w, SMPP_STATE_IDLE, w->faults);
		break;
	case SMPP_T_ESTOP:
		set_dev(w, SMPP_STATE_ESTOP, w->faults);
		break;
	case SMPP_T_START:
		if (w->state == SMPP_STATE_ESTOP)
			res->r = SMPP_S_ESTOP_LATCHED;
		else if (w->state == SMPP_STATE_FAULT)
			res->r = SMPP_S_FAULT_LATCHED;
		else {
			set_dev(w, SMPP_STATE_RUNNING, w->faults);
			w->lease_end = w->now + w->p.lease_ms.value * MS;
		}
		break;
	case SMPP_T_RENEW_LEASE:
		if (w->state != SMPP_STATE_RUNNING)
			res->r = SMPP_S_BAD_STATE;
		else
			w->lease_end = w->now + w->p.lease_ms.value * MS;
		break;
	case SMPP_T_CLEAR_FAULT:
		if (w->condition_present)
			res->r = SMPP_S_CONDITION_PRESENT;
		else
			set_dev(w, SMPP_STATE_IDLE, 0);
		break;
	case SMPP_T_GET_STATS:
		if (w->stats_broken) {
			res->r = -ETIMEDOUT;
			return;
		}
		res->have_uptime = true;
		res->uptime_ms = device_ms(w);
		return;
	case SMPP_T_GET_CARTRIDGE:
		res->cartridge_present = w->cart_present;
		snprintf(res->cartridge_id, sizeof(res->cartridge_id), "%s", w->cart_id);
		return;
	case SMPP_T_SET_PARAMS:
		res->have_params = smp_params_decode(a->payload, a->len, &res->params) == 0;
		if (w->applied_override.voltage_mv)
			res->params = w->applied_override;
		return;
	default:
		res->r = SMPP_S_UNKNOWN_TYPE;
		return;
	}
	if (res->r == 0) {
		res->have_status = true;
		res->state = w->state;
		res->faults = w->faults;
	}
}

static void make_record(struct world *w, uint64_t dev_us, struct smp_telemetry *t);

/* The glue: take every action, in order, as device.c does. */
static void run(struct world *w)
{
	struct ctl_action a;
	struct ctl_result res;

	while (controller_next_action(&w->c, &a)) {
		/* the liveness deadline moves with every Heartbeat: tests read w->timer */
		bool routine = (a.kind == CTL_ARM && a.timer == CTL_TIMER_ALIVE) ||
			       (w->quiet &&
				((a.kind == CTL_SEND && a.cmd == SMPP_T_RENEW_LEASE) ||
				 (a.kind == CTL_ARM && a.timer == CTL_TIMER_RENEW && a.at)));

		switch (a.kind) {
		case CTL_SEND:
			if (w->hold) {
				assert_true(w->n_held < sizeof(w->held) / sizeof(w->held[0]));
				w->held[w->n_held++] = a;
				tr(w, "sent %s", smp_type_name(a.cmd));
				break;
			}
			if (a.cmd == SMPP_T_RENEW_LEASE)
				w->renewals++;
			device_command(w, &a, &res);
			if (!routine)
				tr(w, "send %s -> %s", smp_type_name(a.cmd),
				   res.r < 0 ? strerror(-res.r) : smp_status_name((unsigned)res.r));
			controller_command_done(&w->c, w->now, &res);
			break;
		case CTL_ARM:
			w->timer[a.timer] = a.at;
			if (!routine) {
				if (a.at)
					tr(w, "arm %s %" PRIu64 ".%03" PRIu64, timer_name(a.timer),
					   (a.at - T0) / MS, (a.at - T0) % MS);
				else
					tr(w, "disarm %s", timer_name(a.timer));
			}
			break;
		case CTL_TRIP:
			tr(w, "trip %s: %s", monitor_trip_to_string(a.trip), a.message);
			break;
		case CTL_EMIT:
			tr(w, "emit%s%s%s", a.props & CTL_PROP_STATE ? " State" : "",
			   a.props & CTL_PROP_FAULT ? " Fault" : "",
			   a.props & CTL_PROP_SETPOINTS ? " Setpoints" : "");
			break;
		case CTL_AUDIT:
			tr(w, "audit %s%s%s%s%s", audit_name(a.audit), a.who[0] ? " who=" : "",
			   a.who, a.message[0] ? " reason=" : "", a.message);
			if (a.gate)
				controller_audit_done(&w->c, w->now, w->audit_r);
			break;
		case CTL_READ_BACKLOG: {
			struct smp_telemetry t;
			unsigned n = 0;

			/* what the link holds: every record already made and arrived */
			while (w->telemetry && !w->gone && n < 2 * SMPP_TELEMETRY_HZ &&
			       (!w->records_until || w->next_record <= w->records_until) &&
			       w->next_record - DEV_T0 + T0 + w->lag_us <= w->now) {
				make_record(w, w->next_record, &t);
				w->next_record += MS;
				n++;
				if (controller_telemetry(&w->c, w->now, &t))
					w->judged++;
				else
					w->skipped++;
			}
			tr(w, "read backlog: %u records", n);
			controller_backlog_done(&w->c, w->now);
			break;
		}
		case CTL_RELEASE:
			tr(w, "release: %s", a.message);
			controller_unclaimed(&w->c);
			if (w->c.session_open)
				controller_session_ended(&w->c, w->now, "claimant");
			break;
		case CTL_SESSION_WARNING:
			tr(w, "session warning");
			break;
		case CTL_SESSION_EXPIRED:
			tr(w, "session expired");
			break;
		case CTL_LOG:
			tr(w, "log: %s", a.message);
			break;
		case CTL_REPLY:
			if (a.error)
				tr(w, "reply%s %s%s: %s", a.estop ? " estop" : "",
				   a.error + strlen("org.libsmp.Smp1.Error."),
				   a.limit_refusal ? " (LastRefusal)" : "", a.message);
			else
				tr(w, "reply%s ok", a.estop ? " estop" : "");
			break;
		}
	}
	assert_int_equal(w->c.dropped, 0);
}

/* One record the device makes at device time dev_us. */
static void make_record(struct world *w, uint64_t dev_us, struct smp_telemetry *t)
{
	uint8_t state = w->state;
	uint32_t faults = w->faults;

	for (unsigned i = w->n_hist; i-- > 0;)
		if (w->hist[i].dev_us <= dev_us) {
			state = w->hist[i].state;
			faults = w->hist[i].faults;
			break;
		}
	memset(t, 0, sizeof(*t));
	t->seq = w->seq++;
	t->timestamp_us = (uint64_t)((int64_t)dev_us + w->clock_step);
	t->state = state;
	t->faults = faults;
	t->voltage_mv = w->voltage_mv;
	t->current_ma = t->state == SMPP_STATE_RUNNING ? w->current_ma : 0;
	t->rate_chz = t->state == SMPP_STATE_RUNNING ? sp.rate_chz : 0;
	t->depth_um = sp.depth_um;
	t->temp_cdeg = w->temp_cdeg;
	t->flags = SMPP_TFLAG_PEDAL_DOWN | (w->cart_present ? SMPP_TFLAG_CARTRIDGE : 0);
}

static void feed(struct world *w, const struct smp_telemetry *t)
{
	if (controller_telemetry(&w->c, w->now, t))
		w->judged++;
	else
		w->skipped++;
	run(w);
}

/*
 * Advance the world to until: the device makes a record every ms (read
 * lag_us later), its lease runs out, the controller's timers fire; all in
 * time order, timers first at the same instant (their priority in smpd).
 */
static void advance(struct world *w, uint64_t until_ms)
{
	uint64_t until = T0 + until_ms * MS;

	for (;;) {
		uint64_t next = until;
		int which = -1;

		for (int i = 0; i < _CTL_TIMER_MAX; i++)
			if (w->timer[i] && w->timer[i] <= next) {
				next = w->timer[i];
				which = i;
			}
		if (w->telemetry && !w->gone && !w->reader_starved &&
		    (!w->records_until || w->next_record <= w->records_until)) {
			uint64_t rec_read = w->next_record - DEV_T0 + T0 + w->lag_us;

			if (rec_read < next || (rec_read == next && which < 0 && rec_read <= until)) {
				next = rec_read;
				which = -2;
			}
		}
		/* the claimant's main loop: a Heartbeat every ClientTimeoutMs/4 while it runs */
		if (w->client_answers && w->c.running && w->c.claimant[0]) {
			if (!w->next_beat)
				w->next_beat = w->now +
					       (uint64_t)w->p.client_timeout_ms.value * MS / 4;
			if (w->next_beat < next) {
				next = w->next_beat;
				which = -3;
			}
		} else {
			w->next_beat = 0;
		}
		if (w->lease_end && w->state == SMPP_STATE_RUNNING && w->lease_end <= next) {
			w->now = w->lease_end;
			set_dev(w, SMPP_STATE_FAULT, w->faults | SMPP_FAULT_LEASE_EXPIRED);
			w->lease_end = 0;
			tr(w, "device: lease expired");
			continue;
		}
		if (which == -1) {
			w->now = until;
			return;
		}
		if (which == -3) {
			w->now = next;
			w->next_beat += (uint64_t)w->p.client_timeout_ms.value * MS / 4;
			w->beats++;
			controller_claimant_alive(&w->c, w->now);
			run(w);
			continue;
		}
		w->now = next;
		if (which == -2) {
			struct smp_telemetry t;

			make_record(w, w->next_record, &t);
			w->next_record += MS;
			feed(w, &t);
		} else {
			w->timer[which] = 0;
			controller_timer(&w->c, w->now, (enum ctl_timer)which);
			run(w);
		}
	}
}

static void world_init(struct world *w)
{
	struct effective_limits el;

	memset(w, 0, sizeof(*w));
	policy_init_defaults(&w->p);
	w->now = T0;
	w->state = SMPP_STATE_IDLE;
	w->cart_present = true;
	snprintf(w->cart_id, sizeof(w->cart_id), "CART-0001");
	w->voltage_mv = 8000;
	w->current_ma = 500;
	w->temp_cdeg = 2500;
	w->client_answers = true;
	w->next_record = DEV_T0;
	w->lag_us = 300;
	controller_init(&w->c, &w->p, "SIM-X2-000001", w->now);
	safety_effective_limits(&w->p, &x2, "SIM-X2-000001", ZONE_CROWN, "", &el);
	controller_set_limits(&w->c, &el);
	controller_attached(&w->c, w->now, w->state, w->faults);
	run(w);
}

static void request_params(struct world *w, const struct smp_params *req)
{
	controller_request_set_parameters(&w->c, w->now, req);
	run(w);
}

/* Claimed, a session open, setpoints applied, telemetry flowing. */
static void ready(struct world *w)
{
	world_init(w);
	w->telemetry = true;
	advance(w, 10);
	controller_claimed(&w->c, ":1.42");
	controller_session_opened(&w->c, w->now, "CART-0001");
	run(w);
	request_params(w, &sp);
	trace_clear(w);
}

static void start(struct world *w, const char *who)
{
	controller_request_start(&w->c, w->now, who);
	run(w);
}

/* ---- the start gate ---- */

static void test_start_sequence(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	expect_trace(&w, "10.000 send GET_STATS -> OK\n"
			 "10.000 audit start who=:1.42\n"
			 "10.000 send START -> OK\n"
			 "10.000 arm renew 60.000\n"
			 "10.000 emit State\n"
			 "10.000 reply ok\n");
	assert_true(w.c.running);
	assert_true(w.c.fence);
	assert_int_equal(w.c.judge_from_ms, device_ms(&w));
}

/* Every refusal of the gate, in its order, with its name and sentence. */
static void test_start_gate_refusals(void **state)
{
	struct world w;
	struct smp_params high = sp;

	world_init(&w);
	controller_claimed(&w.c, ":1.42");
	start(&w, ":1.42");
	expect_trace(&w, "0.000 reply NoSession: the needle runs only inside an open session\n");

	controller_session_opened(&w.c, w.now, "CART-0001");
	run(&w);
	trace_clear(&w);
	start(&w, ":1.42");
	expect_trace(&w,
		     "0.000 reply NoSetpoints: SetParameters first: voltage, current, stroke rate and depth\n");

	request_params(&w, &sp);
	trace_clear(&w);
	w.c.estop = true;
	start(&w, ":1.42");
	expect_trace(&w,
		     "0.000 reply FaultLatched: an emergency stop is latched; ClearFault first\n");
	w.c.estop = false;

	w.c.trip = MONITOR_JAM;
	snprintf(w.c.trip_message, sizeof(w.c.trip_message), "jam: stroke rate low");
	start(&w, ":1.42");
	expect_trace(&w,
		     "0.000 reply FaultLatched: fault jam is latched (jam: stroke rate low); ClearFault first\n");
	w.c.trip = MONITOR_OK;

	w.c.time_exceeded = true;
	start(&w, ":1.42");
	expect_trace(&w, "0.000 reply SessionLimit: the session reached its maximum duration\n");
	w.c.time_exceeded = false;

	w.c.monitor.needle_on_us = (uint64_t)w.p.max_needle_on_s.value * 1000000ULL;
	start(&w, ":1.42");
	expect_trace(&w,
		     "0.000 reply SessionLimit: the session used its needle-on time (14400 s, built-in default)\n");
	w.c.monitor.needle_on_us = 0;

	/* a reload tightened the limits below the setpoints applied */
	high.voltage_mv = 20000;
	w.c.setpoints = high;
	start(&w, ":1.42");
	assert_true(trace_has(&w, "reply LimitExceeded (LastRefusal): "));
	trace_clear(&w);
	w.c.setpoints = sp;

	controller_audit_failed(&w.c, w.now, -ENOSPC);
	run(&w);
	trace_clear(&w);
	start(&w, ":1.42");
	expect_trace(&w,
		     "0.000 reply AuditUnavailable: the audit log cannot be written (No space left on device): the needle cannot start\n");
	assert_false(w.c.running);
	assert_int_equal(w.state, SMPP_STATE_IDLE);
}

/* H12: the start record first; a record that cannot be written starts nothing. */
static void test_start_record_first(void **state)
{
	struct world w;

	ready(&w);
	w.audit_r = -EIO;
	start(&w, ":1.42");
	expect_trace(&w,
		     "10.000 send GET_STATS -> OK\n"
		     "10.000 audit start who=:1.42\n"
		     "10.000 reply AuditUnavailable: the audit log cannot be written: Input/output error\n");
	assert_int_equal(w.state, SMPP_STATE_IDLE);
	assert_false(w.c.running);
}

static void test_start_refused_by_device(void **state)
{
	struct world w;

	ready(&w);
	w.fail[SMPP_T_START] = SMPP_S_PEDAL_UP;
	start(&w, ":1.42");
	expect_trace(&w, "10.000 send GET_STATS -> OK\n"
			 "10.000 audit start who=:1.42\n"
			 "10.000 send START -> PEDAL_UP\n"
			 "10.000 audit start_refused who=:1.42 reason=PEDAL_UP\n"
			 "10.000 reply DeviceRefused: START: the device refused with PEDAL_UP\n");
	assert_false(w.c.running);
	assert_int_equal(w.timer[CTL_TIMER_RENEW], 0);
}

/*
 * A ready device, Start asked by :1.42, and the fence's GET_STATS taken
 * out of the controller (in *a) but not yet done: the window between
 * Start and START that the gate tests below open.
 */
static void start_to_fence(struct world *w, struct ctl_action *a)
{
	ready(w);
	controller_request_start(&w->c, w->now, ":1.42");
	assert_true(controller_next_action(&w->c, a));
	assert_int_equal(a->kind, CTL_SEND);
	assert_int_equal(a->cmd, SMPP_T_GET_STATS);
}

/*
 * The gate holds when START goes out, not only when Start was asked: a
 * fault that latches while the fence's GET_STATS is under way (a glue
 * that completes commands later) refuses the START (told as a stop that
 * came while starting, stopped_meanwhile(), which runs first); a session
 * that ended meanwhile is refused by the gate itself.  Without the second
 * check START went out after the fault's STOP and the needle ran, renewed,
 * with the fault latched (found by the WP proof, proofs/README.md).
 */
static void test_start_gate_rechecked_before_start(void **state)
{
	struct world w;
	struct ctl_action a;
	struct ctl_result res;

	start_to_fence(&w, &a);
	/* the fault latches before GET_STATS completes */
	controller_trip(&w.c, w.now, MONITOR_JAM, "jam: stroke rate low");
	device_command(&w, &a, &res);
	controller_command_done(&w.c, w.now, &res);
	run(&w);
	expect_trace(&w, "10.000 send STOP -> OK\n"
			 "10.000 audit start who=:1.42\n"
			 "10.000 trip jam: jam: stroke rate low\n"
			 "10.000 audit start_refused who=:1.42 reason=stopped while starting\n"
			 "10.000 reply FaultLatched: the needle was stopped while it started "
			 "(jam: stroke rate low)\n");
	assert_false(w.c.running);
	assert_int_equal(w.state, SMPP_STATE_IDLE);
	assert_int_equal(w.timer[CTL_TIMER_RENEW], 0);

	/* the session ended meanwhile: no START either */
	start_to_fence(&w, &a);
	controller_session_ended(&w.c, w.now, ":1.42");
	device_command(&w, &a, &res);
	controller_command_done(&w.c, w.now, &res);
	run(&w);
	assert_false(trace_has(&w, "send START"));
	assert_true(trace_has(&w, "reply NoSession: "));
	assert_false(w.c.running);
	assert_int_equal(w.state, SMPP_STATE_IDLE);
}

/* The session ends while START is on its way: the needle START started is stopped at once. */
static void test_start_gate_when_start_done(void **state)
{
	struct world w;
	struct ctl_action a;
	struct ctl_result res;

	start_to_fence(&w, &a);
	device_command(&w, &a, &res);
	controller_command_done(&w.c, w.now, &res);
	assert_true(controller_next_action(&w.c, &a));
	assert_int_equal(a.kind, CTL_AUDIT);
	controller_audit_done(&w.c, w.now, 0);
	assert_true(controller_next_action(&w.c, &a));
	assert_int_equal(a.kind, CTL_SEND);
	assert_int_equal(a.cmd, SMPP_T_START);
	/* START is on its way when the session ends */
	controller_session_ended(&w.c, w.now, ":1.42");
	device_command(&w, &a, &res);
	assert_int_equal(w.state, SMPP_STATE_RUNNING);
	controller_command_done(&w.c, w.now, &res);
	run(&w);
	expect_trace(&w,
		     "10.000 disarm warning\n"
		     "10.000 disarm limit\n"
		     "10.000 send STOP -> OK\n"
		     "10.000 audit start_refused who=:1.42 reason=the needle runs only inside an open session\n"
		     "10.000 reply NoSession: the needle runs only inside an open session\n"
		     "10.000 audit stop who=smpd reason=the start gate no longer held when START was done\n"
		     "10.000 emit State\n");
	assert_false(w.c.running);
	assert_int_equal(w.state, SMPP_STATE_IDLE);
	assert_int_equal(w.timer[CTL_TIMER_RENEW], 0);
}

/* ---- the lease and the claimant's signs of life (H6) ---- */

static void test_renewals_and_heartbeats(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	/* the Start call is the first sign of life */
	assert_int_equal(w.c.alive_at, T0 + 10 * MS);
	assert_int_equal(w.timer[CTL_TIMER_ALIVE], T0 + 510 * MS);
	trace_clear(&w);
	advance(&w, 160);
	expect_trace(&w, "60.000 send RENEW_LEASE -> OK\n"
			 "60.000 arm renew 110.000\n"
			 "110.000 send RENEW_LEASE -> OK\n"
			 "110.000 arm renew 160.000\n"
			 "160.000 send RENEW_LEASE -> OK\n"
			 "160.000 arm renew 210.000\n");
	/* the Heartbeat of 135 moved the deadline to 635 */
	assert_int_equal(w.beats, 1);
	assert_int_equal(w.timer[CTL_TIMER_ALIVE], T0 + 635 * MS);
	/* 20 minutes of it: never a stop, the device lease never runs out */
	w.quiet = true;
	advance(&w, 160 + 1200 * 1000);
	expect_trace(&w, "");
	assert_int_equal(w.renewals, 3 + 1200 * 20);
	assert_true(w.c.running);
	assert_int_equal(w.skipped, 0);
	/* a stop ends the watch: no deadline while the needle is stopped */
	controller_request_stop(&w.c, w.now, ":1.42", "done");
	run(&w);
	assert_int_equal(w.c.alive_at, 0);
	assert_int_equal(w.timer[CTL_TIMER_ALIVE], 0);
	controller_claimant_alive(&w.c, w.now);
	run(&w);
	assert_int_equal(w.timer[CTL_TIMER_ALIVE], 0);
}

/*
 * Fault matrix client-hang: the claimant's main loop stops (SIGSTOP, or
 * a hung main thread whose library still answers Ping from a thread).
 * ClientTimeoutMs after its last Heartbeat STOP goes out and
 * client-unresponsive latches; the renewals went on until then.
 */
static void test_client_hang(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	advance(&w, 200); /* Heartbeats at 135 (the next would be 260) */
	trace_clear(&w);
	w.client_answers = false; /* hangs at 200 ms */
	w.quiet = true;
	advance(&w, 800);
	expect_trace(&w,
		     "635.000 disarm renew\n"
		     "635.000 send STOP -> OK\n"
		     "635.000 trip client-unresponsive: the claiming client :1.42 sent no Heartbeat for 500 ms (ClientTimeoutMs=500, built-in default)\n");
	assert_int_equal(w.state, SMPP_STATE_IDLE);
	assert_int_equal(w.c.trip, MONITOR_CLIENT_UNRESPONSIVE);
	/* resumed: restarts nothing; Start refused until ClearFault */
	w.client_answers = true;
	controller_claimant_alive(&w.c, w.now);
	start(&w, ":1.42");
	assert_true(trace_has(&w, "reply FaultLatched: fault client-unresponsive is latched"));
}

/* A claimant that never sends a Heartbeat: the Start call is all it gave. */
static void test_client_never_beats(void **state)
{
	struct world w;

	ready(&w);
	w.client_answers = false;
	w.quiet = true;
	start(&w, ":1.42");
	trace_clear(&w);
	advance(&w, 600);
	expect_trace(&w,
		     "510.000 disarm renew\n"
		     "510.000 send STOP -> OK\n"
		     "510.000 trip client-unresponsive: the claiming client :1.42 sent no Heartbeat for 500 ms (ClientTimeoutMs=500, built-in default)\n");
}

/*
 * The deadline timer did not get its turn (a bus so busy that it
 * starves): the renewal judges the deadline, RenewMs after it at most.
 */
static void test_alive_backstop_in_renewal(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	w.client_answers = false;
	w.quiet = true;
	advance(&w, 100);
	w.timer[CTL_TIMER_ALIVE] = 0; /* starves */
	trace_clear(&w);
	advance(&w, 700);
	expect_trace(&w,
		     "560.000 disarm renew\n"
		     "560.000 send STOP -> OK\n"
		     "560.000 trip client-unresponsive: the claiming client :1.42 sent no Heartbeat for 550 ms (ClientTimeoutMs=500, built-in default)\n");
}

/* ---- the claim (H6) ---- */

/* Fault matrix client-crash: the claimant leaves the bus; STOP at once. */
static void test_client_crash(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	w.quiet = true;
	advance(&w, 75);
	trace_clear(&w);
	controller_claimant_gone(&w.c, w.now, "the claiming client left the bus");
	run(&w);
	expect_trace(&w, "75.000 disarm renew\n"
			 "75.000 send STOP -> OK\n"
			 "75.000 audit stop who=:1.42 reason=the claiming client left the bus\n"
			 "75.000 emit State\n"
			 "75.000 release: the claiming client left the bus\n"
			 "75.000 disarm warning\n"
			 "75.000 disarm limit\n");
	assert_int_equal(w.state, SMPP_STATE_IDLE);
	assert_false(w.c.running);
	advance(&w, 1000);
	assert_int_equal(w.renewals, 1);
	assert_false(trace_has(&w, "lease expired"));
}

/* The renewal itself re-checks the claim, the session and the log. */
static void test_renewal_conditions(void **state)
{
	static const struct {
		const char *what;
		const char *reason;
	} rows[] = {
		{ "claim", "the claiming client left the bus" },
		{ "session", "no open session" },
		{ "audit", "the audit log cannot be written" },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct world w;
		char want[512];

		ready(&w);
		start(&w, ":1.42");
		w.quiet = true;
		advance(&w, 70);
		if (i == 0)
			w.c.claimant[0] = '\0';
		else if (i == 1)
			w.c.session_open = false;
		else
			w.c.audit_error = -EIO;
		trace_clear(&w);
		advance(&w, 200);
		if (!w.c.trip_message[0] && !trace_has(&w, rows[i].reason))
			fail_msg("the renewal did not stop for the %s", rows[i].what);
		snprintf(want, sizeof(want),
			 "110.000 disarm renew\n"
			 "110.000 send STOP -> OK\n"
			 "110.000 audit stop who=smpd reason=%s\n"
			 "110.000 emit State\n",
			 rows[i].reason);
		expect_trace(&w, want);
	}
}

/* ---- telemetry (H6): lost, late, and the one stale-record rule ---- */

/*
 * Fault matrix telemetry-stall: no record for a lease period; the renewal
 * reads the link's backlog first (smpd may be the one that was late),
 * then trips telemetry-lost: within LeaseMs + RenewMs (251 ms).
 */
static void test_telemetry_stall(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	w.quiet = true;
	advance(&w, 100);
	trace_clear(&w);
	w.telemetry = false; /* the last record was made at 99.7 */
	advance(&w, 500);
	expect_trace(&w,
		     "310.000 read backlog: 0 records\n"
		     "310.000 disarm renew\n"
		     "310.000 send STOP -> OK\n"
		     "310.000 trip telemetry-lost: no telemetry from the device for a lease period\n");
	assert_false(w.c.running);
	assert_int_equal(w.c.trip, MONITOR_TELEMETRY_LOST);
}

/*
 * Records read late are as old as when the device made them: a backlog of
 * old records arriving now does not renew the lease (telemetry-stall under
 * load: 652 ms against 601 before this rule).
 */
static void test_telemetry_freshness_by_device_clock(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	w.quiet = true;
	advance(&w, 60);
	/* the device makes its last record at 60 ms; the link delivers it 230 ms late */
	w.lag_us = 230 * MS;
	w.records_until = DEV_T0 + 60 * MS;
	trace_clear(&w);
	advance(&w, 400);
	/*
	 * made at 59 ms and read at once: lost at the renewal of 260 ms
	 * (not 490: the record made at 60 ms, read at 290, is as old as
	 * when it was made)
	 */
	assert_int_equal(w.c.fresh_mono, T0 + 60 * MS + 300);
	expect_trace(&w, "260.000 read backlog: 0 records\n"
			 "260.000 disarm renew\n"
			 "260.000 send STOP -> OK\n"
			 "260.000 trip telemetry-lost: no telemetry from the device for a lease period\n"
			 /* the late record tells what the device was at 60 ms */
			 "290.000 emit State\n");
}

/*
 * smpd itself was late reading (its telemetry input starved, the renewals
 * ran): the renewal judges what the link holds before taking the
 * telemetry for lost, and renews on the fresh records it finds there.
 */
static void test_backlog_read_before_telemetry_lost(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	w.quiet = true;
	advance(&w, 100);
	trace_clear(&w);
	w.reader_starved = true;
	advance(&w, 400);
	expect_trace(&w, "310.000 read backlog: 210 records\n"); /* made 100..309 ms */
	assert_true(w.c.running);
	w.reader_starved = false;
	advance(&w, 600);
	expect_trace(&w, "");
	assert_int_equal(w.skipped, 0);
}

/*
 * A device clock that goes back (a reset) starts a new freshness estimate
 * and ends the fence: its records are all new.
 */
static void test_device_clock_reset_ends_fence(void **state)
{
	struct world w;

	ready(&w);
	w.quiet = true;
	advance(&w, 100);
	w.c.fence = true;
	w.c.judge_from_ms = device_ms(&w) + 5000;
	w.c.fence_until = w.now + 10 * 1000 * MS;
	w.skipped = w.judged = 0;
	advance(&w, 110);
	assert_int_equal(w.judged, 0);
	w.clock_step = -(int64_t)(50 * 1000 * MS); /* the device restarts its clock */
	advance(&w, 120);
	assert_false(w.c.fence);
	assert_int_equal(w.skipped, 10);
	assert_int_equal(w.judged, 10);
	expect_trace(&w, "");
}

/*
 * Fault matrix corrupted-frames recovery, stale FAULT after ClearFault:
 * the link still holds FAULT records from before the CLEAR_FAULT when it
 * is answered; they are counted, not judged (no re-latch), and the first
 * record from after it is judged.
 */
static void test_stale_fault_after_clear(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	w.quiet = true;
	advance(&w, 100);
	/* the device faults (over-current) at 100 ms; smpd reads 300 ms late */
	set_dev(&w, SMPP_STATE_FAULT, SMPP_FAULT_OVERCURRENT);
	w.lag_us = 300 * MS;
	advance(&w, 401);
	/* the renewal at 110 ms is refused by the faulted device */
	assert_true(trace_has(&w, "110.000 trip device-refused"));
	trace_clear(&w);
	/* ClearFault at 401 ms: 300 ms of FAULT records are still queued */
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	expect_trace(&w, "401.000 send GET_CARTRIDGE -> OK\n"
			 "401.000 send CLEAR_FAULT -> OK\n"
			 "401.000 audit clear_fault who=:1.42 reason=device-refused\n"
			 "401.000 send GET_STATS -> OK\n"
			 "401.000 emit State Fault\n"
			 "401.000 reply ok\n");
	assert_int_equal(w.c.judge_from_ms, device_ms(&w) + 1);
	w.judged = w.skipped = 0;
	advance(&w, 800);
	expect_trace(&w, "");
	assert_int_equal(w.c.trip, MONITOR_OK);
	assert_int_equal(w.skipped, 300); /* made 102..401 ms */
	assert_true(w.judged > 0);
}

/* The same with GET_STATS unanswered: the fence from the clock estimate. */
static void test_stale_fault_after_clear_no_stats(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	w.quiet = true;
	advance(&w, 100);
	set_dev(&w, SMPP_STATE_FAULT, SMPP_FAULT_OVERCURRENT);
	w.lag_us = 300 * MS;
	advance(&w, 401);
	trace_clear(&w);
	w.stats_broken = true;
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	expect_trace(&w, "401.000 send GET_CARTRIDGE -> OK\n"
			 "401.000 send CLEAR_FAULT -> OK\n"
			 "401.000 audit clear_fault who=:1.42 reason=device-refused\n"
			 "401.000 send GET_STATS -> Connection timed out\n"
			 "401.000 emit State Fault\n"
			 "401.000 reply ok\n");
	advance(&w, 800);
	expect_trace(&w, "");
	assert_int_equal(w.c.trip, MONITOR_OK);
}

/* A fault that really recurs after the clear is latched from the first record after it. */
static void test_fault_recurring_after_clear_latches(void **state)
{
	struct world w;

	ready(&w);
	w.quiet = true;
	set_dev(&w, SMPP_STATE_FAULT, SMPP_FAULT_OVERTEMP);
	advance(&w, 20);
	assert_int_equal(w.c.trip, MONITOR_DEVICE_FAULT);
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	trace_clear(&w);
	/* the device faults again right after the clear */
	set_dev(&w, SMPP_STATE_FAULT, SMPP_FAULT_OVERTEMP);
	advance(&w, 30);
	assert_true(trace_has(&w, "21.300 trip device-fault"));
}

/*
 * Fault matrix: START inside the stale window.  Records from before the
 * START (the previous run, the faulted device before its ClearFault) are
 * not judged against this run's setpoints; every record after it is.
 */
static void test_start_inside_stale_window(void **state)
{
	struct world w;

	ready(&w);
	w.quiet = true;
	set_dev(&w, SMPP_STATE_FAULT, SMPP_FAULT_JAM);
	w.lag_us = 200 * MS;
	advance(&w, 300);
	assert_int_equal(w.c.trip, MONITOR_DEVICE_FAULT);
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	advance(&w, 305);
	trace_clear(&w);
	start(&w, ":1.42");
	assert_true(trace_has(&w, "reply ok"));
	assert_int_equal(w.c.judge_from_ms, device_ms(&w));
	w.skipped = w.judged = 0;
	/* the backlog is stale; the running needle's records are judged */
	w.current_ma = 2000; /* over-current from the start of the run */
	advance(&w, 505);
	assert_int_equal(w.skipped, 199); /* made 106..304 ms, read after START */
	assert_true(trace_has(&w, "505.000 trip overcurrent"));
}

/* Fault matrix over-current: the first record above the limit stops the needle. */
static void test_over_current(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	w.quiet = true;
	advance(&w, 100);
	trace_clear(&w);
	w.current_ma = 950; /* above the 900 mA setpoint */
	advance(&w, 101);
	expect_trace(&w, "100.300 disarm renew\n"
			 "100.300 send STOP -> OK\n"
			 "100.300 trip overcurrent: current 950 mA above the limit 900 mA\n");
}

/*
 * Fault matrix over-temperature, cartridge-pulled, pedal-released (the
 * device stops itself; smpd latches what the record says): the first
 * record that shows it stops and latches, once.
 */
static void test_monitor_trips_table(void **state)
{
	static const struct {
		const char *name;
		int16_t temp_cdeg;
		bool cart_present;
		uint32_t device_fault;
		const char *want;
	} rows[] = {
		{ "over-temperature", 5600, true, 0,
		  "100.300 trip overtemperature: motor temperature 56.00 degC above the limit 55.00 degC (built-in default)\n" },
		{ "cartridge-pulled", 2500, false, 0,
		  "100.300 trip cartridge-removed: the needle cartridge was removed during the session\n" },
		{ "pedal-released", 2500, true, SMPP_FAULT_PEDAL_RELEASED,
		  "100.300 trip device-fault: the device reports fault 0x80 (PEDAL_RELEASED)\n" },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct world w;
		char want[1024];

		ready(&w);
		start(&w, ":1.42");
		w.quiet = true;
		advance(&w, 100);
		trace_clear(&w);
		w.temp_cdeg = rows[i].temp_cdeg;
		w.cart_present = rows[i].cart_present;
		if (rows[i].device_fault)
			set_dev(&w, SMPP_STATE_FAULT, rows[i].device_fault);
		advance(&w, 101);
		/* the record's state change is announced before the trip's report */
		snprintf(want, sizeof(want), "100.300 disarm renew\n100.300 send STOP -> OK\n%s%s",
			 rows[i].device_fault ? "100.300 emit State\n" : "", rows[i].want);
		if (strcmp(w.trace, want) != 0)
			fail_msg("%s:\n%s\nwanted:\n%s", rows[i].name, w.trace, want);
		trace_clear(&w);
		advance(&w, 300); /* latched once: no second trip, no renewal */
		expect_trace(&w, "");
		assert_false(w.c.running);
	}
}

/* Fault matrix brown-out: 50 ms of sag stops the needle. */
static void test_brown_out(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	w.quiet = true;
	advance(&w, 100);
	trace_clear(&w);
	w.voltage_mv = 7500;
	advance(&w, 200);
	expect_trace(&w,
		     "150.300 disarm renew\n"
		     "150.300 send STOP -> OK\n"
		     "150.300 trip brownout: brown-out: 7500 mV is more than 300 mV below the setpoint 8000 mV for 50 ms (built-in default)\n");
}

/*
 * Records of the previous run reach smpd after new setpoints were applied
 * (the link lags): they are judged against the setpoints of their own run,
 * not the new ones, which would read them as a brown-out (1000 mV below
 * 9000 mV).  From the next START the new setpoints are judged: the same
 * 8000 mV is then a real brown-out.
 */
static void test_late_records_judged_by_their_own_setpoints(void **state)
{
	struct world w;
	struct smp_params high = sp;

	ready(&w);
	w.lag_us = 200 * MS;
	start(&w, ":1.42");
	w.quiet = true;
	advance(&w, 400);
	controller_request_stop(&w.c, w.now, ":1.42", "pause");
	run(&w);
	high.voltage_mv = 9000;
	request_params(&w, &high);
	assert_true(trace_has(&w, "reply ok"));
	trace_clear(&w);
	w.judged = 0;
	advance(&w, 700); /* every record of the run arrives, 200 ms late */
	assert_int_equal(w.c.trip, MONITOR_OK);
	assert_false(trace_has(&w, "trip"));
	assert_true(w.judged >= 290); /* 200 ms of the run among them */
	start(&w, ":1.42");
	assert_true(trace_has(&w, "reply ok"));
	trace_clear(&w);
	advance(&w, 1000);
	assert_true(trace_has(
		&w,
		"trip brownout: brown-out: 8000 mV is more than 300 mV below the setpoint 9000 mV"));
}

/*
 * Fault matrix device-unplug, usb-reset: the link ends (ENODEV); nothing
 * more is sent and nothing renews: the device's lease stops the needle.
 */
static void test_device_unplug(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	w.quiet = true;
	advance(&w, 100);
	trace_clear(&w);
	w.gone = true;
	advance(&w, 120);
	/* the renewal met ENODEV: no STOP can reach it, no trip to report */
	expect_trace(&w, "110.000 disarm renew\n");
	assert_true(w.c.gone);
	controller_detach(&w.c, w.now);
	run(&w);
	expect_trace(&w, "");
}

/* Fault matrix smpd-hang, smpd-sigkill: no renewal, the device's lease stops it. */
static void test_smpd_hang_leaves_the_lease(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	w.quiet = true;
	advance(&w, 100);
	trace_clear(&w);
	/* smpd stops: its timers are not served */
	memset(w.timer, 0, sizeof(w.timer));
	w.telemetry = false;
	advance(&w, 400);
	expect_trace(&w, "260.000 device: lease expired\n");
}

/* A renewal the device refuses latches device-refused at once. */
static void test_renewal_refused(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	w.quiet = true;
	advance(&w, 100);
	trace_clear(&w);
	w.fail[SMPP_T_RENEW_LEASE] = -EPROTO; /* corrupted-frames: a corrupted reply */
	advance(&w, 110);
	expect_trace(&w, "110.000 disarm renew\n"
			 "110.000 send STOP -> OK\n"
			 "110.000 trip device-refused: lease renewal failed: Protocol error\n");
}

/* A STOP that fails is followed by an ESTOP. */
static void test_stop_falls_back_to_estop(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	trace_clear(&w);
	w.fail[SMPP_T_STOP] = -ETIMEDOUT;
	controller_request_stop(&w.c, w.now, ":1.42", "requested by the client");
	run(&w);
	expect_trace(&w, "10.000 disarm renew\n"
			 "10.000 send STOP -> Connection timed out\n"
			 "10.000 send ESTOP -> OK\n"
			 "10.000 audit stop who=:1.42 reason=requested by the client\n"
			 "10.000 emit State\n"
			 "10.000 reply ok\n");
	assert_int_equal(w.state, SMPP_STATE_ESTOP);
}

/* ---- emergency stop (H7) ---- */

static void test_estop_latches(void **state)
{
	struct world w;

	ready(&w);
	start(&w, ":1.42");
	trace_clear(&w);
	controller_request_estop(&w.c, w.now, ":1.99");
	run(&w);
	expect_trace(&w, "10.000 disarm renew\n"
			 "10.000 send ESTOP -> OK\n"
			 "10.000 audit estop who=:1.99\n"
			 "10.000 emit State\n"
			 "10.000 reply estop ok\n");
	assert_true(w.c.estop);
	start(&w, ":1.42");
	expect_trace(&w,
		     "10.000 reply FaultLatched: an emergency stop is latched; ClearFault first\n");
	/* the first ESTOP lost: sent again */
	w.fail[SMPP_T_ESTOP] = -ETIMEDOUT;
	controller_request_estop(&w.c, w.now, ":1.99");
	run(&w);
	expect_trace(&w, "10.000 send ESTOP -> Connection timed out\n"
			 "10.000 send ESTOP -> OK\n"
			 "10.000 audit estop who=:1.99\n"
			 "10.000 emit State\n"
			 "10.000 reply estop ok\n");
	/* ClearFault ends the latch */
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	assert_true(trace_has(&w, "audit clear_fault who=:1.42 reason=estop"));
	assert_false(w.c.estop);
}

/*
 * The completion of held command i: the device's answer, or r when not 0
 * (-ECANCELED: a stop overtook it, the device never saw it or its reply
 * was not waited for).
 */
static void complete_held(struct world *w, unsigned i, int r)
{
	struct ctl_action a = w->held[i];
	struct ctl_result res;

	memmove(w->held + i, w->held + i + 1, (w->n_held - i - 1) * sizeof(w->held[0]));
	w->n_held--;
	if (r) {
		memset(&res, 0, sizeof(res));
		res.tag = a.tag;
		res.r = r;
	} else {
		device_command(w, &a, &res);
	}
	tr(w, "done %s -> %s", smp_type_name(a.cmd),
	   res.r < 0 ? strerror(-res.r) : smp_status_name((unsigned)res.r));
	controller_command_done(&w->c, w->now, &res);
	run(w);
}

/*
 * Completions come later than the sends (smpd's I/O worker, devio.c) and a
 * stop overtakes the commands before it: a start that a stop overtook
 * never runs the needle.  An emergency stop during the start's fence: the
 * fence is cancelled and START is never sent; a trip while START is in
 * flight: the device started and was stopped after it, and the controller
 * does not take the needle for running (no renewal).
 */
static void test_stop_overtakes_start(void **state)
{
	struct world w;

	ready(&w);
	w.hold = true;
	start(&w, ":1.42");
	controller_request_estop(&w.c, w.now, ":1.99");
	run(&w);
	complete_held(&w, 1, 0);	  /* ESTOP first: it jumped the queue */
	complete_held(&w, 0, -ECANCELED); /* the fence it cancelled */
	expect_trace(&w,
		     "10.000 sent GET_STATS\n"
		     "10.000 sent ESTOP\n"
		     "10.000 done ESTOP -> OK\n"
		     "10.000 audit estop who=:1.99\n"
		     "10.000 emit State\n"
		     "10.000 reply estop ok\n"
		     "10.000 done GET_STATS -> Operation canceled\n"
		     "10.000 audit start who=:1.42\n"
		     "10.000 audit start_refused who=:1.42 reason=stopped while starting\n"
		     "10.000 reply FaultLatched: the needle was stopped while it started (emergency stop)\n");
	assert_false(w.c.running);
	assert_int_equal(w.n_held, 0);

	/* a trip while START is in flight */
	ready(&w);
	w.hold = true;
	start(&w, ":1.42");
	complete_held(&w, 0, 0); /* GET_STATS; then START goes out */
	trace_clear(&w);
	controller_trip(&w.c, w.now, MONITOR_OVERCURRENT, "over current");
	run(&w);
	complete_held(&w, 0, 0); /* START: the device ran ... */
	assert_int_equal(w.state, SMPP_STATE_RUNNING);
	complete_held(&w, 0, 0); /* ... and STOP, sent after it, stopped it */
	expect_trace(&w, "10.000 sent STOP\n"
			 "10.000 done START -> OK\n"
			 "10.000 audit start_refused who=:1.42 reason=stopped while starting\n"
			 "10.000 reply FaultLatched: the needle was stopped while it started (over current)\n"
			 "10.000 done STOP -> OK\n"
			 "10.000 trip overcurrent: over current\n");
	assert_false(w.c.running);
	assert_int_equal(w.state, SMPP_STATE_IDLE);
	assert_int_equal(w.timer[CTL_TIMER_RENEW], 0);
}

/*
 * An emergency stop requested while ClearFault is under way stays latched:
 * the device may take it after the CLEAR_FAULT (during the fence that
 * follows), and a CLEAR_FAULT not yet sent is not sent after it.
 */
static void test_estop_during_clear_fault_stays(void **state)
{
	struct world w;

	/* after the device's CLEAR_FAULT, while its fence is in flight */
	ready(&w);
	controller_request_estop(&w.c, w.now, ":1.99");
	run(&w);
	assert_true(w.c.estop);
	w.hold = true;
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	complete_held(&w, 0, 0); /* GET_CARTRIDGE: the session's; CLEAR_FAULT goes out */
	complete_held(&w, 0, 0); /* CLEAR_FAULT: cleared; the GET_STATS fence goes out */
	trace_clear(&w);
	controller_request_estop(&w.c, w.now, ":1.99");
	run(&w);
	complete_held(&w, 1, 0);	  /* the ESTOP, after the CLEAR_FAULT */
	complete_held(&w, 0, -ECANCELED); /* the fence it cancelled */
	expect_trace(&w, "10.000 sent ESTOP\n"
			 "10.000 done ESTOP -> OK\n"
			 "10.000 audit estop who=:1.99\n"
			 "10.000 emit State\n"
			 "10.000 reply estop ok\n"
			 "10.000 done GET_STATS -> Operation canceled\n"
			 "10.000 emit State Fault\n"
			 "10.000 reply FaultPersists: an emergency stop came while the fault was "
			 "cleared; ClearFault again\n");
	assert_true(w.c.estop);
	assert_int_equal(w.state, SMPP_STATE_ESTOP);
	w.hold = false;
	trace_clear(&w);
	start(&w, ":1.42");
	expect_trace(&w,
		     "10.000 reply FaultLatched: an emergency stop is latched; ClearFault first\n");
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	assert_true(trace_has(&w, "reply ok"));
	assert_false(w.c.estop);

	/* before the CLEAR_FAULT went out: it does not */
	ready(&w);
	controller_request_estop(&w.c, w.now, ":1.99");
	run(&w);
	w.hold = true;
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	controller_request_estop(&w.c, w.now, ":1.99");
	run(&w);
	trace_clear(&w);
	complete_held(&w, 1, 0); /* the ESTOP */
	complete_held(&w, 0, 0); /* GET_CARTRIDGE, answered before the ESTOP cut it short */
	assert_false(trace_has(&w, "CLEAR_FAULT"));
	assert_true(trace_has(&w, "reply FaultPersists: an emergency stop came while the fault "
				  "was cleared; ClearFault again"));
	assert_true(w.c.estop);
	assert_int_equal(w.n_held, 0);
}

/* ---- the clear-fault rule ---- */

static void test_clear_fault_rule(void **state)
{
	struct world w;

	ready(&w);
	w.quiet = true;
	set_dev(&w, SMPP_STATE_FAULT, SMPP_FAULT_OVERTEMP);
	w.temp_cdeg = 5000; /* 91% of the 55 degC limit */
	advance(&w, 20);
	trace_clear(&w);
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	expect_trace(&w,
		     "20.000 reply FaultPersists: the motor is still above 90% of the temperature limit\n");

	w.temp_cdeg = 4900; /* 89%: cool enough; records of it arrive */
	advance(&w, 22);
	w.cart_present = false;
	trace_clear(&w);
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	expect_trace(&w,
		     "22.000 send GET_CARTRIDGE -> OK\n"
		     "22.000 reply FaultPersists: cartridge CART-0001 of the session is not inserted; end the session\n");

	w.cart_present = true;
	snprintf(w.cart_id, sizeof(w.cart_id), "CART-0002");
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	expect_trace(&w,
		     "22.000 send GET_CARTRIDGE -> OK\n"
		     "22.000 reply FaultPersists: cartridge CART-0001 of the session is not inserted; end the session\n");

	snprintf(w.cart_id, sizeof(w.cart_id), "CART-0001");
	w.condition_present = true;
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	expect_trace(&w,
		     "22.000 send GET_CARTRIDGE -> OK\n"
		     "22.000 send CLEAR_FAULT -> CONDITION_PRESENT\n"
		     "22.000 reply FaultPersists: the device reports that the cause of the fault persists\n");
	assert_int_equal(w.c.trip, MONITOR_DEVICE_FAULT);

	w.condition_present = false;
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	assert_true(trace_has(&w, "reply ok"));
	assert_int_equal(w.c.trip, MONITOR_OK);
}

/* ---- set parameters ---- */

static void test_set_parameters(void **state)
{
	struct world w;
	struct smp_params high = sp, odd = sp;

	ready(&w);
	request_params(&w, &sp);
	expect_trace(&w, "10.000 send SET_PARAMS -> OK\n"
			 "10.000 audit set_parameters\n"
			 "10.000 emit Setpoints\n"
			 "10.000 reply ok\n");
	/* the session's zone decides the limits: none without a session */
	w.c.session_open = false;
	request_params(&w, &sp);
	expect_trace(&w,
		     "10.000 reply NoSession: parameters are set inside an open session (its zone decides the limits)\n");
	w.c.session_open = true;
	high.voltage_mv = 20000;
	request_params(&w, &high);
	assert_true(trace_has(&w, "audit parameters_refused reason="));
	assert_true(trace_has(&w, "reply LimitExceeded (LastRefusal): "));
	trace_clear(&w);
	odd.voltage_mv = 8050; /* off the 100 mV step */
	request_params(&w, &odd);
	assert_true(trace_has(&w, "reply InvalidArgument: "));
	trace_clear(&w);
	/* the device applied something else: no layer trusts another */
	w.applied_override = sp;
	w.applied_override.voltage_mv = 19000;
	request_params(&w, &sp);
	assert_true(trace_has(&w, "trip device-fault: the device applied other values: "));
	assert_true(trace_has(&w, "reply DeviceError: the device applied other values: "));
	trace_clear(&w);
}

/* ---- the session's limits (H16) ---- */

static void test_session_time_limit(void **state)
{
	struct world w;
	uint64_t max_ms;

	ready(&w);
	w.quiet = true;
	w.p.max_session_s.value = 2;
	w.p.warning_before_end_s.value = 1;
	controller_session_ended(&w.c, w.now, ":1.42");
	controller_session_opened(&w.c, w.now, "CART-0001");
	run(&w);
	expect_trace(&w, "10.000 disarm warning\n"
			 "10.000 disarm limit\n"
			 "10.000 arm limit 2010.000\n"
			 "10.000 arm warning 1010.000\n");
	start(&w, ":1.42");
	trace_clear(&w);
	max_ms = 2010;
	advance(&w, max_ms + 100);
	expect_trace(&w,
		     "1010.000 session warning\n"
		     "2010.000 session expired\n"
		     "2010.000 disarm renew\n"
		     "2010.000 send STOP -> OK\n"
		     "2010.000 trip session-time: the session reached its maximum duration of 2 s (built-in default)\n");
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	trace_clear(&w);
	start(&w, ":1.42");
	expect_trace(&w, "2110.000 reply SessionLimit: the session reached its maximum duration\n");
}

/* A reload that shortens MaxDuration applies to the open session at once. */
static void test_reload_shortens_session(void **state)
{
	struct world w;

	ready(&w);
	w.quiet = true;
	start(&w, ":1.42");
	advance(&w, 3000);
	trace_clear(&w);
	w.p.max_session_s.value = 3;
	w.p.warning_before_end_s.value = 1;
	controller_policy_reloaded(&w.c, w.now);
	run(&w);
	expect_trace(&w, "3000.000 arm limit 3010.000\n"
			 "3000.000 arm warning 2010.000\n");
	advance(&w, 3020);
	assert_true(trace_has(&w, "3000.000 session warning") ||
		    trace_has(&w, "3010.000 session expired"));
	assert_true(trace_has(&w, "3010.000 trip session-time"));
}

/* A reload below the running setpoints stops the needle. */
static void test_reload_below_setpoints_stops(void **state)
{
	struct world w;
	struct effective_limits el;

	ready(&w);
	w.quiet = true;
	start(&w, ":1.42");
	advance(&w, 30);
	trace_clear(&w);
	w.p.site.max[PARAM_VOLTAGE].set = true;
	w.p.site.max[PARAM_VOLTAGE].value = 7000;
	snprintf(w.p.site.max[PARAM_VOLTAGE].source, sizeof(w.p.site.max[PARAM_VOLTAGE].source),
		 "/etc/smpd/smpd.conf:3");
	safety_effective_limits(&w.p, &x2, "SIM-X2-000001", ZONE_CROWN, "", &el);
	controller_set_limits(&w.c, &el);
	controller_policy_reloaded(&w.c, w.now);
	run(&w);
	expect_trace(&w, "30.000 disarm renew\n"
			 "30.000 send STOP -> OK\n"
			 "30.000 arm limit 18000010.000\n"
			 "30.000 arm warning 17400010.000\n"
			 "30.000 audit stop who=smpd reason=the reloaded policy no longer allows the setpoints\n"
			 "30.000 emit State\n");
}

/* Needle-on time accumulates over runs and stops the needle at MaxNeedleOn. */
static void test_needle_on_limit(void **state)
{
	struct world w;

	ready(&w);
	w.quiet = true;
	w.p.max_needle_on_s.value = 1;
	start(&w, ":1.42");
	advance(&w, 600);
	controller_request_stop(&w.c, w.now, ":1.42", "pause");
	run(&w);
	advance(&w, 700);
	start(&w, ":1.42");
	trace_clear(&w);
	advance(&w, 1500);
	assert_true(trace_has(&w, "trip needle-on-time: needle-on time of the session above 1 s"));
	assert_int_equal(w.state, SMPP_STATE_IDLE);
	controller_request_clear_fault(&w.c, w.now, ":1.42");
	run(&w);
	trace_clear(&w);
	start(&w, ":1.42");
	expect_trace(&w,
		     "1500.000 reply SessionLimit: the session used its needle-on time (1 s, built-in default)\n");
}

/* The session ends: the needle stops with its record. */
static void test_session_end_stops(void **state)
{
	struct world w;

	ready(&w);
	w.quiet = true;
	start(&w, ":1.42");
	advance(&w, 30);
	trace_clear(&w);
	controller_session_ended(&w.c, w.now, ":1.42");
	run(&w);
	expect_trace(&w, "30.000 disarm renew\n"
			 "30.000 send STOP -> OK\n"
			 "30.000 disarm warning\n"
			 "30.000 disarm limit\n"
			 "30.000 audit stop who=:1.42 reason=the session ended\n"
			 "30.000 emit State\n");
}

/* ---- the audit log (H12): disk-full, log-io-error ---- */

static void test_audit_failure_stops(void **state)
{
	struct world w;

	ready(&w);
	w.quiet = true;
	start(&w, ":1.42");
	advance(&w, 30);
	trace_clear(&w);
	controller_audit_failed(&w.c, w.now, -ENOSPC);
	run(&w);
	expect_trace(&w, "30.000 disarm renew\n"
			 "30.000 send STOP -> OK\n"
			 "30.000 trip audit-failed: the audit log cannot be written\n");
	assert_int_equal(w.state, SMPP_STATE_IDLE);
}

/* ---- attach ---- */

static void test_attach_found_running_or_faulted(void **state)
{
	struct world w;

	world_init(&w);
	w.state = SMPP_STATE_RUNNING;
	controller_init(&w.c, &w.p, "SIM-X2-000001", w.now);
	controller_attached(&w.c, w.now, w.state, 0);
	run(&w);
	expect_trace(&w, "0.000 send STOP -> OK\n");
	assert_int_equal(w.state, SMPP_STATE_IDLE);

	set_dev(&w, SMPP_STATE_FAULT, SMPP_FAULT_LEASE_EXPIRED);
	controller_init(&w.c, &w.p, "SIM-X2-000001", w.now);
	controller_attached(&w.c, w.now, w.state, w.faults);
	run(&w);
	expect_trace(&w, "");
	assert_int_equal(w.c.trip, MONITOR_DEVICE_FAULT);
	assert_string_equal(w.c.trip_message,
			    "the device was in state FAULT (faults 0x40) when attached");
}

#define T(f) cmocka_unit_test(f)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_start_sequence),
		T(test_start_gate_refusals),
		T(test_start_record_first),
		T(test_start_refused_by_device),
		T(test_start_gate_rechecked_before_start),
		T(test_start_gate_when_start_done),
		T(test_renewals_and_heartbeats),
		T(test_client_hang),
		T(test_client_never_beats),
		T(test_alive_backstop_in_renewal),
		T(test_client_crash),
		T(test_renewal_conditions),
		T(test_telemetry_stall),
		T(test_telemetry_freshness_by_device_clock),
		T(test_backlog_read_before_telemetry_lost),
		T(test_device_clock_reset_ends_fence),
		T(test_stale_fault_after_clear),
		T(test_stale_fault_after_clear_no_stats),
		T(test_fault_recurring_after_clear_latches),
		T(test_start_inside_stale_window),
		T(test_over_current),
		T(test_brown_out),
		T(test_late_records_judged_by_their_own_setpoints),
		T(test_monitor_trips_table),
		T(test_device_unplug),
		T(test_smpd_hang_leaves_the_lease),
		T(test_renewal_refused),
		T(test_stop_falls_back_to_estop),
		T(test_estop_latches),
		T(test_estop_during_clear_fault_stays),
		T(test_stop_overtakes_start),
		T(test_clear_fault_rule),
		T(test_set_parameters),
		T(test_session_time_limit),
		T(test_reload_shortens_session),
		T(test_reload_below_setpoints_stops),
		T(test_needle_on_limit),
		T(test_session_end_stops),
		T(test_audit_failure_stops),
		T(test_attach_found_running_or_faulted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
