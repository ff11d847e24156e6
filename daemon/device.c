/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * device.c - one attached device: the claim, the lease, telemetry and the
 * runtime monitors.
 *
 * The needle runs only while all of these hold; the lease renewal timer
 * re-checks them every RenewMs and stops the device otherwise: the device
 * is claimed by a client still on the bus that sends its Heartbeat (its
 * main loop runs: not hung), a session of that client is open,
 * no fault or emergency stop is latched, telemetry is fresh and the audit
 * log is writable.  If smpd itself dies, the renewals stop and the
 * device's lease (LeaseMs) stops the needle (H6).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager.h"
#include "smp-mutation.h"	/* SMP_MUTATION_* hooks, docs/safety.md */

uint64_t now_realtime_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t now_monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

const char *device_state_string(const struct device *d)
{
	if (d->estop || d->dev_state == SMPP_STATE_ESTOP)
		return "estop";
	if (d->trip != MONITOR_OK || d->dev_state == SMPP_STATE_FAULT)
		return "fault";
	if (d->dev_state == SMPP_STATE_RUNNING)
		return "running";
	return "idle";
}

void device_effective_limits(const struct device *d, struct effective_limits *ret)
{
	char needle[16] = "";
	enum zone z = _ZONE_INVALID;

	if (d->session && d->session->active) {
		z = d->session->zone;
		snprintf(needle, sizeof(needle), "%s", d->session->needle);
	} else if (d->cartridge.flags & SMPP_CART_PRESENT) {
		smp_needle_config_str(d->cartridge.needle_count, d->cartridge.needle_type,
				      needle, sizeof(needle));
	}
	safety_effective_limits(&d->manager->policy, &d->info.limits, d->info.serial, z,
				needle, ret);
}

static void liveness_reset(struct device *d);

static int gone_handler(sd_event_source *s, void *userdata)
{
	device_remove(userdata, "the device was disconnected");
	return 0;
}

static void device_mark_gone(struct device *d)
{
	if (d->gone)
		return;
	d->gone = true;
	d->running = false;
	if (d->renew_timer)
		sd_event_source_set_enabled(d->renew_timer, SD_EVENT_OFF);
	liveness_reset(d);
	if (d->io_source)
		sd_event_source_set_enabled(d->io_source, SD_EVENT_OFF);
	if (sd_event_add_defer(d->manager->event, &d->gone_event, gone_handler, d) < 0)
		d->gone_event = NULL;	/* removed on shutdown instead */
}

/*
 * One command.  Returns 0 (OK reply in *ret_reply), a positive enum
 * smpp_status for a device refusal, or a negative errno for link errors
 * (-ENODEV also schedules the removal of the device).
 */
static int device_command(struct device *d, uint8_t type, const void *payload, size_t len,
			  struct smp_frame *ret_reply)
{
	struct smp_frame reply;
	int r;

	if (d->gone)
		return -ENODEV;
	r = d->backend->ops->command(d->backend, type, payload, len,
				     (int)d->manager->policy.command_timeout_ms.value, &reply);
	if (r == -ENODEV)
		device_mark_gone(d);
	if (r < 0)
		return r;
	if (ret_reply)
		*ret_reply = reply;
	if (reply.type == SMPP_T_ERROR)
		return reply.status ? reply.status : SMPP_S_INTERNAL;
	return reply.status;
}

static int device_command_status(struct device *d, uint8_t type, const void *payload, size_t len)
{
	struct smp_frame reply;
	struct smp_status_info st;
	int r;

	r = device_command(d, type, payload, len, &reply);
	if (r == 0 && smp_status_decode(reply.payload, reply.len, &st) == 0) {
		d->dev_state = st.state;
		d->dev_faults = st.faults;
	}
	return r;
}

static int device_error(sd_bus_error *error, int r, const char *what)
{
	if (r < 0)
		return sd_bus_error_setf(error, SMPD_ERROR_DEVICE_ERROR, "%s: %s", what, strerror(-r));
	return sd_bus_error_setf(error, SMPD_ERROR_DEVICE_REFUSED, "%s: the device refused with %s",
				 what, smp_status_name((unsigned)r));
}

static void audit_device_event(struct device *d, bool durable, const char *event,
			       const char *who, const char *reason)
{
	AuditField f[6];
	size_t n = 0;

	f[n++] = AUDIT_STR("device", d->info.serial);
	if (d->session) {
		f[n++] = AUDIT_STR("session", d->session->id);
		f[n++] = AUDIT_STR("client", d->session->client);
	}
	if (who)
		f[n++] = AUDIT_STR("who", who);
	if (reason)
		f[n++] = AUDIT_STR("reason", reason);
	f[n++] = AUDIT_STR("state", device_state_string(d));
	manager_audit(d->manager, durable, event, f, n);
}

/* ---- claimant liveness (H6) ---- */

/*
 * A claimant on the bus may still be hung (stopped, deadlocked, stuck in
 * a long computation): it would keep the needle running with nobody in
 * control.  So while the needle runs the claimant proves it is alive by
 * calling Heartbeat() on the device at least every ClientTimeoutMs, from
 * its own main loop (libsmp does so from its dispatch).  A Peer.Ping is
 * not enough: GDBus answers it from its worker thread, so an application
 * whose main thread hangs would answer it (issue 14 item 6).  When the
 * last sign of life (the Start call, then each Heartbeat) is
 * ClientTimeoutMs old the claimant counts as unresponsive: the renewals
 * end and STOP goes out at once (device_trip).  The fault latches; the
 * claim and the session stay, as the claimant is still on the bus:
 * resuming it restarts nothing (Start is refused until ClearFault).  No
 * timer while the needle is stopped.
 */
static void liveness_reset(struct device *d)
{
	d->alive_usec = 0;
	if (d->alive_timer)
		sd_event_source_set_enabled(d->alive_timer, SD_EVENT_OFF);
}

/* Has the claimant shown no sign of life for ClientTimeoutMs (+ slack_ms)? */
static bool liveness_expired(const struct device *d, uint64_t now, unsigned slack_ms)
{
#ifdef SMP_MUTATION_DM_CLIENT_ALIVE
	return false;	/* mutant: a claimant on the bus counts as alive */
#endif
	return d->alive_usec != 0 &&
	       now >= d->alive_usec +
		      (uint64_t)(d->manager->policy.client_timeout_ms.value + slack_ms) * 1000;
}

static void client_unresponsive(struct device *d, uint64_t now)
{
	const struct setting *t = &d->manager->policy.client_timeout_ms;
	char msg[SAFETY_MSG_MAX];

	snprintf(msg, sizeof(msg),
		 "the claiming client %s sent no Heartbeat for %" PRIu64
		 " ms (ClientTimeoutMs=%u, %s)",
		 d->claimant ? d->claimant : "(none)", (now - d->alive_usec) / 1000,
		 t->value, t->source);
	device_trip(d, MONITOR_CLIENT_UNRESPONSIVE, msg);
}

static int alive_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct device *d = userdata;
	uint64_t now;

	if (!d->running || d->gone)
		return 0;
	if (sd_event_now(d->manager->event, CLOCK_MONOTONIC, &now) < 0)
		now = usec;
	if (liveness_expired(d, now, 0))
		client_unresponsive(d, now);
	return 0;
}

/* A sign of life at now (CLOCK_MONOTONIC): the deadline moves to now + ClientTimeoutMs. */
static void liveness_arm(struct device *d, uint64_t now)
{
	struct manager *m = d->manager;
	uint64_t usec = now + (uint64_t)m->policy.client_timeout_ms.value * 1000;
	int r;

	d->alive_usec = now;
	if (!d->alive_timer) {
		r = sd_event_add_time(m->event, &d->alive_timer, CLOCK_MONOTONIC, usec, 1,
				      alive_timer_handler, d);
		if (r < 0) {
			/* renew_handler judges instead, RenewMs later */
			d->alive_timer = NULL;
			return;
		}
		/*
		 * Below the bus: a Heartbeat already in smpd's input is read
		 * before the deadline is judged.  A bus so busy that this
		 * timer starves meets the backstop in renew_handler.
		 */
		sd_event_source_set_priority(d->alive_timer, SD_EVENT_PRIORITY_NORMAL + 10);
	} else {
		sd_event_source_set_time(d->alive_timer, usec);
	}
	sd_event_source_set_enabled(d->alive_timer, SD_EVENT_ONESHOT);
}

/*
 * The glue's entry: the claimant called Heartbeat() (the caller checked
 * that it is the claimant).  Counts only while the needle runs.
 */
void device_heartbeat(struct device *d)
{
	uint64_t now;

	if (!d->running || d->gone)
		return;
	if (sd_event_now(d->manager->event, CLOCK_MONOTONIC, &now) < 0)
		now = now_monotonic_us();
	liveness_arm(d, now);
}

static void stop_renewing(struct device *d)
{
	if (d->renew_timer)
		sd_event_source_set_enabled(d->renew_timer, SD_EVENT_OFF);
	liveness_reset(d);
}

/* Stop the needle by any means: STOP, and ESTOP if STOP fails. */
static int stop_needle(struct device *d)
{
	int r;

	d->running = false;
	stop_renewing(d);
	r = device_command_status(d, SMPP_T_STOP, NULL, 0);
	if (r != 0 && !d->gone)
		r = device_command_status(d, SMPP_T_ESTOP, NULL, 0);
	return r;
}

void device_trip(struct device *d, enum monitor_trip trip, const char *msg)
{
	if (d->trip != MONITOR_OK)
		return;
	d->trip = trip;
	snprintf(d->trip_message, sizeof(d->trip_message), "%s", msg);
	stop_needle(d);
	/* stderr is the journal under systemd */
	fprintf(stderr, "smpd: %s: fault %s: %s; needle stopped\n", d->info.serial,
		monitor_trip_to_string(trip), msg);
	if (d->gone)
		return;
	sd_bus_emit_signal(d->manager->bus, d->path, SMPD_IFACE_DEVICE, "Fault", "ss",
			   monitor_trip_to_string(trip), msg);
	bus_device_emit_changed(d, "State", "Fault", NULL);
	{
		AuditField f[5];
		size_t n = 0;

		f[n++] = AUDIT_STR("device", d->info.serial);
		if (d->session)
			f[n++] = AUDIT_STR("session", d->session->id);
		f[n++] = AUDIT_STR("fault", monitor_trip_to_string(trip));
		f[n++] = AUDIT_STR("message", msg);
		f[n++] = AUDIT_UINT("device_faults", d->dev_faults);
		/* After an audit failure the log cannot take this record. */
		if (trip != MONITOR_AUDIT_FAILED)
			manager_audit(d->manager, true, "fault", f, n);
	}
}

/* ---- lease ---- */

static void read_pending_telemetry(struct device *d, unsigned max);

static int renew_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct device *d = userdata;
	struct manager *m = d->manager;
	const char *why = NULL;
	uint8_t buf[SMPP_LEASE_SIZE];
	uint64_t now;
	int r;

	if (!d->running || d->gone)
		return 0;
	if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
		now = usec;
	/* A late renewal means the lease may run out: say so. */
	if (now > usec + (uint64_t)m->policy.renew_ms.value * 1000)
		fprintf(stderr, "smpd: %s: lease renewal %" PRIu64 " ms late\n",
			d->info.serial, (now - usec) / 1000);

	/*
	 * smpd itself may be the one that was late (a stalled host): judge
	 * what the link already holds before taking the telemetry for lost.
	 */
	if (now_monotonic_us() - d->telemetry_fresh_mono > (uint64_t)m->policy.lease_ms.value * 1000) {
		read_pending_telemetry(d, 2 * SMPP_TELEMETRY_HZ);
		if (!d->running || d->gone)
			return 0;
	}
#ifdef SMP_MUTATION_DM_LEASE_TELEMETRY
	d->telemetry_fresh_mono = now_monotonic_us();	/* mutant: renews without telemetry */
#endif
	if (!d->claimant)
		why = "the claiming client left the bus";
	else if (!d->session || !d->session->active)
		why = "no open session";
	else if (m->audit_error < 0)
		why = "the audit log cannot be written";
	else if (now_monotonic_us() - d->telemetry_fresh_mono > (uint64_t)m->policy.lease_ms.value * 1000) {
		device_trip(d, MONITOR_TELEMETRY_LOST, "no telemetry from the device for a lease period");
		return 0;
	} else if (liveness_expired(d, now, m->policy.renew_ms.value)) {
		/* the deadline timer did not get its turn: judge here */
		client_unresponsive(d, now);
		return 0;
	}
	if (why) {
		device_stop(d, "smpd", why, NULL);
		return 0;
	}

	smp_lease_encode((uint16_t)m->policy.lease_ms.value, buf, sizeof(buf));
	r = device_command_status(d, SMPP_T_RENEW_LEASE, buf, sizeof(buf));
	if (r != 0) {
		char msg[SAFETY_MSG_MAX];

		if (d->gone)
			return 0;
		snprintf(msg, sizeof(msg), "lease renewal failed: %s",
			 r < 0 ? strerror(-r) : smp_status_name((unsigned)r));
		device_trip(d, MONITOR_DEVICE_REFUSED, msg);
		return 0;
	}
	sd_event_source_set_time(s, usec + (uint64_t)m->policy.renew_ms.value * 1000);
	return 0;
}

static int arm_renewal(struct device *d)
{
	uint64_t period = (uint64_t)d->manager->policy.renew_ms.value * 1000;
	uint64_t now;
	int r;

	sd_event_now(d->manager->event, CLOCK_MONOTONIC, &now);
	if (!d->renew_timer) {
		r = sd_event_add_time(d->manager->event, &d->renew_timer, CLOCK_MONOTONIC,
				      now + period, 1000, renew_handler, d);
		if (r < 0)
			return r;
		sd_event_source_set_priority(d->renew_timer, SD_EVENT_PRIORITY_IMPORTANT);
	} else {
		sd_event_source_set_time(d->renew_timer, now + period);
	}
	return sd_event_source_set_enabled(d->renew_timer, SD_EVENT_ON);
}

/* ---- telemetry ---- */

static void summary_add(struct telemetry_summary *s, const struct smp_telemetry *t)
{
	if (s->samples == 0) {
		s->min_voltage = s->max_voltage = t->voltage_mv;
		s->min_current = s->max_current = t->current_ma;
		s->min_rate = s->max_rate = t->rate_chz;
		s->min_depth = s->max_depth = t->depth_um;
		s->min_temp = s->max_temp = t->temp_cdeg;
	}
#define MM(field, v) do { if ((v) < s->min_##field) s->min_##field = (v); \
			  if ((v) > s->max_##field) s->max_##field = (v); } while (0)
	MM(voltage, t->voltage_mv);
	MM(current, t->current_ma);
	MM(rate, t->rate_chz);
	MM(depth, t->depth_um);
	MM(temp, t->temp_cdeg);
#undef MM
	s->sum_voltage += t->voltage_mv;
	s->sum_current += t->current_ma;
	s->sum_rate += t->rate_chz;
	s->sum_depth += t->depth_um;
	s->sum_temp += t->temp_cdeg;
	s->samples++;
}

/*
 * Telemetry freshness on the device clock (H6, telemetry-lost).  A record
 * is as fresh as the moment the device made it, not the moment smpd read
 * it: a starved host reads a backlog of old records late, and taking those
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
#define CLOCK_WINDOW_USEC (10 * 1000 * 1000ULL)

static void note_record_time(struct device *d, uint64_t timestamp_us, uint64_t now)
{
	int64_t off = (int64_t)now - (int64_t)timestamp_us, best;
	uint64_t made;

	if (d->have_clock && timestamp_us < d->last_timestamp_us)
		d->have_clock = false;
	d->last_timestamp_us = timestamp_us;
	if (!d->have_clock) {
		d->clock_off_cur = d->clock_off_prev = off;
		d->clock_window_start = now;
		d->have_clock = true;
	} else if (now - d->clock_window_start >= CLOCK_WINDOW_USEC) {
		d->clock_off_prev = d->clock_off_cur;
		d->clock_off_cur = off;
		d->clock_window_start = now;
	} else if (off < d->clock_off_cur) {
		d->clock_off_cur = off;
	}
	best = d->clock_off_cur < d->clock_off_prev ? d->clock_off_cur : d->clock_off_prev;
	made = (uint64_t)((int64_t)timestamp_us + best);
	if (made > d->telemetry_fresh_mono)
		d->telemetry_fresh_mono = made;
}

static void handle_telemetry(struct device *d, const struct smp_telemetry *t)
{
	struct manager *m = d->manager;
	struct effective_limits el;
	enum monitor_trip trip;
	char msg[SAFETY_MSG_MAX];
	uint8_t old_state = d->dev_state;
	bool cart_changed;

	if (d->have_seq && t->seq != d->last_seq + 1) {
		d->tsum.gaps += t->seq - d->last_seq - 1;
		d->audit_sum.gaps += t->seq - d->last_seq - 1;
	}
	d->have_seq = true;
	d->last_seq = t->seq;
	d->last_telemetry_mono = now_monotonic_us();
	note_record_time(d, t->timestamp_us, d->last_telemetry_mono);
	if (d->fence) {
		/* the device clock in ms, modulo 2^32 as GET_STATS has it */
		uint32_t t_ms = (uint32_t)(t->timestamp_us / 1000);

		if ((int32_t)(t_ms - d->judge_from_ms) < 0 &&
		    d->last_telemetry_mono < d->fence_until)
			return;		/* from before the CLEAR_FAULT or START */
		d->fence = false;
	}
	if (d->stale_faults_until) {
		bool stale = d->stale_after_start ?
			t->state == SMPP_STATE_FAULT || t->state == SMPP_STATE_ESTOP :
			t->faults || t->state != SMPP_STATE_IDLE;

		if (stale && d->last_telemetry_mono < d->stale_faults_until)
			return;		/* from before the CLEAR_FAULT */
		d->stale_faults_until = 0;
		d->stale_after_start = false;
	}
	cart_changed = d->have_telemetry &&
		((t->flags ^ d->last_telemetry.flags) & SMPP_TFLAG_CARTRIDGE);
	d->last_telemetry = *t;
	d->have_telemetry = true;
	summary_add(&d->tsum, t);
	if (t->state == SMPP_STATE_RUNNING)
		summary_add(&d->audit_sum, t);

	d->dev_state = t->state;
	d->dev_faults = t->faults;

	device_effective_limits(d, &el);
	trip = monitor_feed(&d->monitor, &m->policy, &d->setpoints, el.max[PARAM_CURRENT].value,
			    d->session && d->session->active, t, msg, sizeof(msg));
	if (trip != MONITOR_OK && d->trip == MONITOR_OK && !d->estop)
		device_trip(d, trip, msg);
	if (d->gone)
		return;
	if (old_state != t->state)
		bus_device_emit_changed(d, "State", NULL);
	if (cart_changed) {
		device_refresh_cartridge(d);
		if (!d->gone)
			bus_device_emit_changed(d, "Cartridge", "Limits", NULL);
	}
}

/*
 * After CLEAR_FAULT, stale records may still be on their way: the device
 * queues telemetry when the host falls behind (smp-sim keeps up to 1088
 * records, about 1 s) and its replies overtake them: FAULT or ESTOP
 * records, or RUNNING ones from before smpd stopped the needle for a
 * monitor (brown-out).  Until the first idle record without faults (what a
 * cleared device sends) or this long, such records are counted, not
 * judged.  A fault that really recurs at once is latched when the window
 * ends; meanwhile the device itself is faulted and refuses to run.
 *
 * A START inside the window (the operator was quick, the host slow: the
 * fault matrix's corrupted-frames recovery met a FAULT record from before
 * its CLEAR_FAULT 8 ms after START and latched device-fault) keeps it, but
 * from then on only FAULT and ESTOP records are passed over, and any other
 * record ends it: a running needle is always judged.  A device that faults
 * right after START has stopped its needle itself and refuses the next
 * renewal, which latches device-refused within RenewMs.
 */
#define STALE_FAULTS_USEC (2 * 1000 * 1000ULL)

/*
 * How old can a record be when it reaches smpd?  Up to the queues of the
 * device and the link (smp-sim 1088 records, smpusb 1024: about 2 s at
 * 1 kHz) plus smpd's own delay; a fence older than this is dropped, so a
 * device whose clock went back (a reset) is judged again at once.
 */
#define FENCE_MAX_USEC (10 * 1000 * 1000ULL)

/*
 * The device clock now: GET_STATS's uptime_ms.  Records are stamped at
 * the device's 1 ms ticks; a tick's record is generated before any
 * command handled in that millisecond.  after_ms 1 (after a CLEAR_FAULT):
 * only records of later ticks are judged, every one of them generated
 * after the clear.  after_ms 0 (before a START): the records of this
 * tick on, so every record generated after the START is judged.  Exact
 * whatever the backlog of the link, unlike draining what has already
 * arrived (handle_telemetry()).  A fence never moves back.
 */
static int fence_telemetry(struct device *d, uint32_t after_ms)
{
	struct smp_frame reply;
	struct smp_stats st;
	int r;

	r = device_command(d, SMPP_T_GET_STATS, NULL, 0, &reply);
	if (r != 0)
		return r;
	if (smp_stats_decode(reply.payload, reply.len, &st) < 0)
		return -EPROTO;
	if (d->fence && (int32_t)(st.uptime_ms + after_ms - d->judge_from_ms) <= 0)
		return 0;
	d->fence = true;
	d->judge_from_ms = st.uptime_ms + after_ms;
	d->fence_until = now_monotonic_us() + FENCE_MAX_USEC;
	return 0;
}

/*
 * Records the link queued before a command's reply describe the device
 * before the command (a FAULT before CLEAR_FAULT, IDLE before START): count
 * them, do not judge them.
 */
static void drain_stale_telemetry(struct device *d)
{
	struct smp_telemetry t;

	for (int i = 0; i < 64 && !d->gone; i++) {
		int r = d->backend->ops->read_telemetry(d->backend, &t);

		if (r == -ENODEV)
			device_mark_gone(d);
		if (r <= 0)
			break;
		if (d->have_seq && t.seq != d->last_seq + 1)
			d->tsum.gaps += t.seq - d->last_seq - 1;
		d->have_seq = true;
		d->last_seq = t.seq;
		d->last_telemetry_mono = now_monotonic_us();
		note_record_time(d, t.timestamp_us, d->last_telemetry_mono);
	}
}

/* Judges the records the link holds, max at most. */
static void read_pending_telemetry(struct device *d, unsigned max)
{
	struct smp_telemetry t;
	int r;

	for (unsigned i = 0; i < max && !d->gone; i++) {
		r = d->backend->ops->read_telemetry(d->backend, &t);
		if (r == -ENODEV) {
			device_mark_gone(d);
			break;
		}
		if (r <= 0)
			break;
		handle_telemetry(d, &t);
	}
}

/*
 * A batch per dispatch, then back to the loop: sd-event runs one source
 * per iteration, by priority, so the lease renewal (above this source)
 * waits for one batch at most, never for a whole backlog.  Under TCG a
 * record costs a read() and its judging, tens of us, so a backlog of up
 * to two seconds' worth in one dispatch could hold the renewal for 100 ms
 * and more.  The fd is level-triggered: what is left is the next dispatch
 * (the socket link's queue drains with the next frame, 1 ms later).
 */
#define TELEMETRY_BATCH 32

static int io_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	read_pending_telemetry(userdata, TELEMETRY_BATCH);
	return 0;
}

static int append_summary(sd_bus_message *m, const struct telemetry_summary *s,
			  const struct device *d)
{
	const struct smp_telemetry *t = &d->last_telemetry;
	uint32_t n = s->samples ? s->samples : 1;
	int r;

	r = sd_bus_message_open_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
#define U(k, v) do { r = sd_bus_message_append(m, "{sv}", k, "u", (uint32_t)(v)); if (r < 0) return r; } while (0)
#define I(k, v) do { r = sd_bus_message_append(m, "{sv}", k, "i", (int32_t)(v)); if (r < 0) return r; } while (0)
	U("Samples", s->samples);
	U("Dropped", s->gaps);
	U("Voltage", s->sum_voltage / n);
	U("VoltageMin", s->min_voltage);
	U("VoltageMax", s->max_voltage);
	U("Current", s->sum_current / n);
	U("CurrentMin", s->min_current);
	U("CurrentMax", s->max_current);
	U("StrokeRate", s->sum_rate / n);
	U("Depth", s->sum_depth / n);
	I("Temperature", s->sum_temp / (int64_t)n);
	I("TemperatureMax", s->max_temp);
	U("LeaseLeft", t->lease_left_ms);
	U("DeviceFaults", t->faults);
#undef U
#undef I
	r = sd_bus_message_append(m, "{sv}", "State", "s", device_state_string(d));
	if (r < 0)
		return r;
	r = sd_bus_message_append(m, "{sv}", "Pedal", "b", (int)!!(t->flags & SMPP_TFLAG_PEDAL_DOWN));
	if (r < 0)
		return r;
	r = sd_bus_message_append(m, "{sv}", "CartridgePresent", "b",
				  (int)!!(t->flags & SMPP_TFLAG_CARTRIDGE));
	if (r < 0)
		return r;
	return sd_bus_message_close_container(m);
}

int device_append_telemetry(sd_bus_message *m, const struct device *d)
{
	struct telemetry_summary s = { 0 };

	if (d->have_telemetry)
		summary_add(&s, &d->last_telemetry);
	return append_summary(m, &s, d);
}

static int telemetry_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct device *d = userdata;
	sd_bus_message *msg = NULL;
	uint64_t period = 1000000ULL / d->manager->policy.telemetry_hz.value;

	sd_event_source_set_time(s, usec + period);
	if (d->gone || d->tsum.samples == 0)
		return 0;
	if (sd_bus_message_new_signal(d->manager->bus, &msg, d->path, SMPD_IFACE_DEVICE,
				      "Telemetry") >= 0 &&
	    append_summary(msg, &d->tsum, d) >= 0)
		sd_bus_send(d->manager->bus, msg, NULL);
	sd_bus_message_unref(msg);
	memset(&d->tsum, 0, sizeof(d->tsum));
	return 0;
}

/* Once a second while running: a summary record for the audit log. */
void device_audit_tick(struct device *d)
{
	struct telemetry_summary *s = &d->audit_sum;
	AuditField f[20];
	size_t n = 0;

	if (s->samples == 0 || d->gone)
		return;
	f[n++] = AUDIT_STR("device", d->info.serial);
	if (d->session)
		f[n++] = AUDIT_STR("session", d->session->id);
	f[n++] = AUDIT_UINT("samples", s->samples);
	f[n++] = AUDIT_UINT("drops", s->gaps);
	f[n++] = AUDIT_UINT("voltage_min_mv", s->min_voltage);
	f[n++] = AUDIT_UINT("voltage_mean_mv", s->sum_voltage / s->samples);
	f[n++] = AUDIT_UINT("voltage_max_mv", s->max_voltage);
	f[n++] = AUDIT_UINT("current_min_ma", s->min_current);
	f[n++] = AUDIT_UINT("current_mean_ma", s->sum_current / s->samples);
	f[n++] = AUDIT_UINT("current_max_ma", s->max_current);
	f[n++] = AUDIT_UINT("rate_min_chz", s->min_rate);
	f[n++] = AUDIT_UINT("rate_mean_chz", s->sum_rate / s->samples);
	f[n++] = AUDIT_UINT("rate_max_chz", s->max_rate);
	f[n++] = AUDIT_UINT("depth_min_um", s->min_depth);
	f[n++] = AUDIT_UINT("depth_mean_um", s->sum_depth / s->samples);
	f[n++] = AUDIT_UINT("depth_max_um", s->max_depth);
	f[n++] = AUDIT_INT("temp_min_cdeg", s->min_temp);
	f[n++] = AUDIT_INT("temp_mean_cdeg", s->sum_temp / (int64_t)s->samples);
	f[n++] = AUDIT_INT("temp_max_cdeg", s->max_temp);
	memset(s, 0, sizeof(*s));
	manager_audit(d->manager, false, "telemetry", f, n);
}

/* ---- lifecycle ---- */

int device_refresh_cartridge(struct device *d)
{
	struct smp_frame reply;
	struct smp_cartridge c;
	int r;

	r = device_command(d, SMPP_T_GET_CARTRIDGE, NULL, 0, &reply);
	if (r != 0)
		return r < 0 ? r : -EIO;
	r = smp_cartridge_decode(reply.payload, reply.len, &c);
	if (r < 0)
		return -EBADMSG;
	d->cartridge = c;
	return 0;
}

int device_new(struct manager *m, struct backend *b, struct device **ret)
{
	struct device *d;
	struct smp_frame reply;
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->manager = m;
	d->backend = b;

	r = device_command(d, SMPP_T_GET_INFO, NULL, 0, &reply);
	if (r == 0)
		r = smp_info_decode(reply.payload, reply.len, &d->info) < 0 ? -EBADMSG : 0;
	else if (r > 0)
		r = -EIO;
	if (r >= 0 && !safety_token_valid(d->info.serial))
		r = -EBADMSG;	/* a serial we cannot put in a path or a log */
	if (r >= 0) {
		r = device_command_status(d, SMPP_T_GET_STATUS, NULL, 0);
		if (r > 0)
			r = -EIO;
	}
	if (r >= 0)
		r = device_refresh_cartridge(d);
	if (r < 0)
		goto fail;

	/* A needle found running has no session here: stop it first. */
	if (d->dev_state == SMPP_STATE_RUNNING)
		stop_needle(d);
	if (d->dev_state == SMPP_STATE_FAULT || d->dev_state == SMPP_STATE_ESTOP) {
		d->trip = MONITOR_DEVICE_FAULT;
		snprintf(d->trip_message, sizeof(d->trip_message),
			 "the device was in state %s (faults 0x%" PRIx32 ") when attached",
			 smp_state_name(d->dev_state), d->dev_faults);
		d->estop = d->dev_state == SMPP_STATE_ESTOP;
	}

	r = sd_bus_path_encode(SMPD_DEVICE_PREFIX, d->info.serial, &d->path);
	if (r < 0)
		goto fail;
	for (struct device *o = m->devices; o; o = o->next)
		if (strcmp(o->path, d->path) == 0) {
			r = -EEXIST;
			goto fail;
		}
	if (b->ops->get_fd(b) >= 0) {
		r = sd_event_add_io(m->event, &d->io_source, b->ops->get_fd(b), EPOLLIN,
				    io_handler, d);
		if (r < 0)
			goto fail;
		/* Below the lease renewal: a telemetry backlog never delays it. */
		sd_event_source_set_priority(d->io_source, SD_EVENT_PRIORITY_IMPORTANT + 10);
	}
	r = sd_event_add_time_relative(m->event, &d->telemetry_timer, CLOCK_MONOTONIC,
				       1000000ULL / m->policy.telemetry_hz.value, 0,
				       telemetry_timer_handler, d);
	if (r < 0)
		goto fail;
	sd_event_source_set_enabled(d->telemetry_timer, SD_EVENT_ON);
	d->last_telemetry_mono = now_monotonic_us();
	d->telemetry_fresh_mono = d->last_telemetry_mono;

	r = bus_device_register(d);
	if (r < 0)
		goto fail;
	d->next = m->devices;
	m->devices = d;
	manager_arm_audit_timer(m);	/* its telemetry summaries */

	sd_bus_emit_signal(m->bus, SMPD_PATH, SMPD_IFACE_MANAGER, "DeviceAdded", "o", d->path);
	{
		AuditField f[] = {
			AUDIT_STR("device", d->info.serial),
			AUDIT_STR("model", d->info.model_name),
			AUDIT_UINT("firmware", d->info.fw_version),
			AUDIT_STR("backend", b->kind),
			AUDIT_STR("address", b->address),
			AUDIT_STR("state", device_state_string(d)),
		};
		manager_audit(m, true, "device_attach", f, sizeof(f) / sizeof(f[0]));
	}
	if (d->trip != MONITOR_OK) {
		/* Found faulted (e.g. its lease ran out while no smpd ran): say so. */
		AuditField f[] = {
			AUDIT_STR("device", d->info.serial),
			AUDIT_STR("fault", monitor_trip_to_string(d->trip)),
			AUDIT_STR("message", d->trip_message),
			AUDIT_UINT("device_faults", d->dev_faults),
		};
		fprintf(stderr, "smpd: %s: %s\n", d->info.serial, d->trip_message);
		manager_audit(m, true, "fault", f, sizeof(f) / sizeof(f[0]));
	}
	if (ret)
		*ret = d;
	return 0;
fail:
	d->backend = NULL;	/* the caller still owns it */
	device_free(d);
	return r;
}

void device_free(struct device *d)
{
	if (!d)
		return;
	polkit_cancel_userdata(d->manager, d);
	sd_event_source_unref(d->io_source);
	sd_event_source_unref(d->renew_timer);
	sd_event_source_unref(d->alive_timer);
	sd_event_source_unref(d->telemetry_timer);
	sd_event_source_unref(d->gone_event);
	sd_bus_slot_unref(d->slot);
	sd_bus_track_unref(d->track);
	backend_free(d->backend);
	free(d->claimant);
	free(d->path);
	free(d);
}

void device_remove(struct device *d, const char *reason)
{
	struct manager *m = d->manager;
	struct device **pp;

	if (!d->gone)
		stop_needle(d);
	if (d->session)
		session_end(d->session, reason);
	audit_device_event(d, true, "device_detach", "smpd", reason);
	for (pp = &m->devices; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	sd_bus_emit_signal(m->bus, SMPD_PATH, SMPD_IFACE_MANAGER, "DeviceRemoved", "o", d->path);
	device_free(d);
}

struct device *device_find_by_path(struct manager *m, const char *path)
{
	for (struct device *d = m->devices; d; d = d->next)
		if (strcmp(d->path, path) == 0)
			return d;
	return NULL;
}

/* ---- operations (the bus glue has checked authorization) ---- */

static int track_handler(sd_bus_track *t, void *userdata)
{
	struct device *d = userdata;

#ifdef SMP_MUTATION_DM_CLAIMANT_GONE
	return 0;	/* mutant: a claimant that left the bus keeps the device */
#endif
	device_release(d, "the claiming client left the bus");
	return 0;
}

int device_claim(struct device *d, const char *sender, sd_bus_error *error)
{
	int r;

	if (d->claimant) {
		if (strcmp(d->claimant, sender) == 0)
			return 0;
		return sd_bus_error_setf(error, SMPD_ERROR_ALREADY_CLAIMED,
					 "device %s is claimed by %s", d->info.serial, d->claimant);
	}
	r = sd_bus_track_new(d->manager->bus, &d->track, track_handler, d);
	if (r < 0)
		return r;
	r = sd_bus_track_add_name(d->track, sender);
	if (r < 0) {
		d->track = sd_bus_track_unref(d->track);
		return r;
	}
	d->claimant = strdup(sender);
	if (!d->claimant) {
		d->track = sd_bus_track_unref(d->track);
		return -ENOMEM;
	}
	audit_device_event(d, false, "claim", sender, NULL);
	bus_device_emit_changed(d, "Claimed", "Claimant", NULL);
	return 0;
}

int device_release(struct device *d, const char *reason)
{
	if (!d->claimant)
		return 0;
	if (d->running || d->dev_state == SMPP_STATE_RUNNING)
		device_stop(d, d->claimant, reason, NULL);
	if (d->session)
		session_end(d->session, reason);
	audit_device_event(d, true, "release", d->claimant, reason);
	liveness_reset(d);
	free(d->claimant);
	d->claimant = NULL;
	d->track = sd_bus_track_unref(d->track);
	if (!d->gone)
		bus_device_emit_changed(d, "Claimed", "Claimant", NULL);
	return 0;
}

static uint32_t param_value(const struct smp_params *p, enum param q)
{
	switch (q) {
	case PARAM_VOLTAGE: return p->voltage_mv;
	case PARAM_CURRENT: return p->current_ma;
	case PARAM_RATE: return p->rate_chz;
	case PARAM_DEPTH: return p->depth_um;
	default: return 0;
	}
}

int device_refuse_limit(struct device *d, const struct effective_limits *el, enum param q,
			const struct smp_params *req, const char *prefix, const char *msg,
			sd_bus_error *error)
{
	struct refusal *rf = &d->last_refusal;
	uint32_t v = param_value(req, q);

	/*
	 * Recorded and announced before the error reply is queued: a client
	 * that sees LimitExceeded can read the matching LastRefusal at once,
	 * and the PropertiesChanged signal reaches it first.
	 */
	rf->serial++;
	rf->param = q;
	rf->requested = v;
	rf->max = v > el->max[q].value;
	rf->bound = rf->max ? el->max[q] : el->min[q];
	if (!d->gone)
		bus_device_emit_changed(d, "LastRefusal", NULL);
	if (prefix)
		return sd_bus_error_setf(error, SMPD_ERROR_LIMIT_EXCEEDED, "%s: %s", prefix, msg);
	return sd_bus_error_setf(error, SMPD_ERROR_LIMIT_EXCEEDED, "%s", msg);
}

int device_set_parameters(struct device *d, const struct smp_params *req,
			  struct smp_params *ret_applied, sd_bus_error *error)
{
	struct effective_limits el;
	struct smp_frame reply;
	struct smp_params applied;
	uint8_t buf[SMPP_PARAMS_SIZE];
	char msg[SAFETY_MSG_MAX];
	enum param q;
	int r;

	device_effective_limits(d, &el);
	r = safety_check_params(&el, req, &q, msg, sizeof(msg));
	if (r == -ERANGE || r == -EINVAL) {
		AuditField f[] = {
			AUDIT_STR("device", d->info.serial),
			AUDIT_STR("session", d->session ? d->session->id : ""),
			AUDIT_UINT("req_voltage_mv", req->voltage_mv),
			AUDIT_UINT("req_current_ma", req->current_ma),
			AUDIT_UINT("req_rate_chz", req->rate_chz),
			AUDIT_UINT("req_depth_um", req->depth_um),
			AUDIT_STR("refused", msg),
		};
		manager_audit(d->manager, false, "parameters_refused", f, sizeof(f) / sizeof(f[0]));
		if (r == -ERANGE)
			return device_refuse_limit(d, &el, q, req, NULL, msg, error);
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT, "%s", msg);
	}

	smp_params_encode(req, buf, sizeof(buf));
	r = device_command(d, SMPP_T_SET_PARAMS, buf, sizeof(buf), &reply);
	if (r != 0) {
		if (r == SMPP_S_OUT_OF_RANGE || r == SMPP_S_NOT_ON_STEP) {
			struct smp_range_error re = { 0 };

			smp_range_error_decode(reply.payload, reply.len, &re);
			return sd_bus_error_setf(error, SMPD_ERROR_DEVICE_REFUSED,
						 "the device refused field %u with %s (limit %u)",
						 re.field, smp_status_name((unsigned)r), re.limit);
		}
		return device_error(error, r, "SET_PARAMS");
	}
	if (smp_params_decode(reply.payload, reply.len, &applied) < 0)
		return sd_bus_error_setf(error, SMPD_ERROR_DEVICE_ERROR, "malformed SET_PARAMS reply");
	d->setpoints = applied;
	d->have_setpoints = true;

	/* The device's answer is checked like a request: no layer trusts another. */
	if (safety_check_params(&el, &applied, NULL, msg, sizeof(msg)) < 0) {
		char m2[SAFETY_MSG_MAX + 64];

		snprintf(m2, sizeof(m2), "the device applied other values: %s", msg);
		device_trip(d, MONITOR_DEVICE_FAULT, m2);
		return sd_bus_error_setf(error, SMPD_ERROR_DEVICE_ERROR, "%s", m2);
	}

	{
		AuditField f[32];
		size_t n = 0;

		f[n++] = AUDIT_STR("device", d->info.serial);
		if (d->session) {
			f[n++] = AUDIT_STR("session", d->session->id);
			f[n++] = AUDIT_STR("client", d->session->client);
			f[n++] = AUDIT_STR("zone", zone_to_string(d->session->zone));
		}
		f[n++] = AUDIT_UINT("req_voltage_mv", req->voltage_mv);
		f[n++] = AUDIT_UINT("req_current_ma", req->current_ma);
		f[n++] = AUDIT_UINT("req_rate_chz", req->rate_chz);
		f[n++] = AUDIT_UINT("req_depth_um", req->depth_um);
		f[n++] = AUDIT_UINT("voltage_mv", applied.voltage_mv);
		f[n++] = AUDIT_UINT("current_ma", applied.current_ma);
		f[n++] = AUDIT_UINT("rate_chz", applied.rate_chz);
		f[n++] = AUDIT_UINT("depth_um", applied.depth_um);
		f[n++] = AUDIT_STR("voltage_limit", el.max[PARAM_VOLTAGE].label);
		f[n++] = AUDIT_STR("voltage_limit_source", el.max[PARAM_VOLTAGE].source);
		f[n++] = AUDIT_STR("current_limit", el.max[PARAM_CURRENT].label);
		f[n++] = AUDIT_STR("current_limit_source", el.max[PARAM_CURRENT].source);
		f[n++] = AUDIT_STR("rate_limit", el.max[PARAM_RATE].label);
		f[n++] = AUDIT_STR("rate_limit_source", el.max[PARAM_RATE].source);
		f[n++] = AUDIT_STR("depth_limit", el.max[PARAM_DEPTH].label);
		f[n++] = AUDIT_STR("depth_limit_source", el.max[PARAM_DEPTH].source);
		r = manager_audit(d->manager, true, "set_parameters", f, n);
		if (r < 0)
			return sd_bus_error_setf(error, SMPD_ERROR_AUDIT_UNAVAILABLE,
						 "the audit log cannot be written: %s", strerror(-r));
	}
	bus_device_emit_changed(d, "Setpoints", NULL);
	if (ret_applied)
		*ret_applied = applied;
	return 0;
}

int device_start(struct device *d, const char *who, sd_bus_error *error)
{
	struct manager *m = d->manager;
	struct effective_limits el;
	char msg[SAFETY_MSG_MAX];
	uint8_t buf[SMPP_LEASE_SIZE];
	enum param q;
	int r;

	manager_check_audit_space(m);
	if (m->audit_error < 0)
		return sd_bus_error_setf(error, SMPD_ERROR_AUDIT_UNAVAILABLE,
					 "the audit log cannot be written (%s): the needle cannot start",
					 strerror(-m->audit_error));
	if (!d->session || !d->session->active)
		return sd_bus_error_setf(error, SMPD_ERROR_NO_SESSION,
					 "the needle runs only inside an open session");
	if (d->estop)
		return sd_bus_error_setf(error, SMPD_ERROR_FAULT_LATCHED,
					 "an emergency stop is latched; ClearFault first");
	if (d->trip != MONITOR_OK)
		return sd_bus_error_setf(error, SMPD_ERROR_FAULT_LATCHED,
					 "fault %s is latched (%s); ClearFault first",
					 monitor_trip_to_string(d->trip), d->trip_message);
	if (d->session->time_exceeded)
		return sd_bus_error_setf(error, SMPD_ERROR_SESSION_LIMIT,
					 "the session reached its maximum duration");
	if (!d->have_setpoints)
		return sd_bus_error_setf(error, SMPD_ERROR_NO_SETPOINTS,
					 "SetParameters first: voltage, current, stroke rate and depth");
	if (d->monitor.needle_on_us >= (uint64_t)m->policy.max_needle_on_s.value * 1000000ULL)
		return sd_bus_error_setf(error, SMPD_ERROR_SESSION_LIMIT,
					 "the session used its needle-on time (%u s, %s)",
					 m->policy.max_needle_on_s.value,
					 m->policy.max_needle_on_s.source);
	/* The policy may have been reloaded since SetParameters. */
	device_effective_limits(d, &el);
	r = safety_check_params(&el, &d->setpoints, &q, msg, sizeof(msg));
	if (r == -ERANGE)
		return device_refuse_limit(d, &el, q, &d->setpoints, NULL, msg, error);
	if (r < 0)
		return sd_bus_error_setf(error, SMPD_ERROR_LIMIT_EXCEEDED, "%s", msg);

	/*
	 * Records generated before START describe the previous run or the
	 * faulted device before a ClearFault, judged against this run's
	 * setpoints they would trip it; under load the link holds seconds of
	 * them.  Fence them by the device clock (a device that does not
	 * answer GET_STATS keeps the drain below).
	 */
	(void)fence_telemetry(d, 0);
	/*
	 * The record first, durable (H12): the needle never moves without
	 * it, and no fdatasync() sits between START and the first renewal.
	 */
	{
		AuditField f[] = {
			AUDIT_STR("device", d->info.serial),
			AUDIT_STR("session", d->session->id),
			AUDIT_STR("client", d->session->client),
			AUDIT_STR("who", who),
			AUDIT_UINT("voltage_mv", d->setpoints.voltage_mv),
			AUDIT_UINT("current_ma", d->setpoints.current_ma),
			AUDIT_UINT("rate_chz", d->setpoints.rate_chz),
			AUDIT_UINT("depth_um", d->setpoints.depth_um),
			AUDIT_UINT("lease_ms", m->policy.lease_ms.value),
		};
		r = manager_audit(m, true, "start", f, sizeof(f) / sizeof(f[0]));
		if (r < 0)
			return sd_bus_error_setf(error, SMPD_ERROR_AUDIT_UNAVAILABLE,
						 "the audit log cannot be written: %s", strerror(-r));
	}
	smp_lease_encode((uint16_t)m->policy.lease_ms.value, buf, sizeof(buf));
	/* records queued before a CLEAR_FAULT may still come: see above */
	d->stale_after_start = d->stale_faults_until != 0;
	r = device_command_status(d, SMPP_T_START, buf, sizeof(buf));
	if (r != 0) {
		audit_device_event(d, true, "start_refused", who,
				   r < 0 ? strerror(-r) : smp_status_name((unsigned)r));
		return device_error(error, r, "START");
	}
	d->running = true;
	/* the Start call is the claimant's first sign of life */
	liveness_arm(d, now_monotonic_us());
	drain_stale_telemetry(d);
	d->last_telemetry_mono = now_monotonic_us();
	d->telemetry_fresh_mono = d->last_telemetry_mono;	/* a lease for the first record */
	r = arm_renewal(d);
	if (r < 0) {
		stop_needle(d);
		return r;
	}
	bus_device_emit_changed(d, "State", NULL);
	return 0;
}

int device_stop(struct device *d, const char *who, const char *reason, sd_bus_error *error)
{
	int r;

	r = stop_needle(d);
	audit_device_event(d, true, "stop", who, reason);
	if (!d->gone)
		bus_device_emit_changed(d, "State", NULL);
	if (r != 0 && error)
		return device_error(error, r, "STOP");
	return 0;
}

int device_estop(struct device *d, const char *who, sd_bus_error *error)
{
	int r;

	d->running = false;
	stop_renewing(d);
	d->estop = true;
	r = device_command_status(d, SMPP_T_ESTOP, NULL, 0);
	if (r != 0 && !d->gone)
		r = device_command_status(d, SMPP_T_ESTOP, NULL, 0);
	audit_device_event(d, true, "estop", who, NULL);
	if (!d->gone)
		bus_device_emit_changed(d, "State", NULL);
	if (r != 0)
		return device_error(error, r, "ESTOP");
	return 0;
}

int device_clear_fault(struct device *d, const char *who, sd_bus_error *error)
{
	struct manager *m = d->manager;
	int r;

	if (d->have_telemetry &&
	    d->last_telemetry.temp_cdeg * 10 > (int32_t)m->policy.max_temperature_cdeg.value * 9)
		return sd_bus_error_setf(error, SMPD_ERROR_FAULT_PERSISTS,
					 "the motor is still above 90%% of the temperature limit");
	if (d->session && d->session->active) {
		r = device_refresh_cartridge(d);
		if (r < 0)
			return device_error(error, r, "GET_CARTRIDGE");
		if (!(d->cartridge.flags & SMPP_CART_PRESENT) ||
		    strcmp(d->cartridge.id, d->session->cartridge_id) != 0)
			return sd_bus_error_setf(error, SMPD_ERROR_FAULT_PERSISTS,
						 "cartridge %s of the session is not inserted; end the session",
						 d->session->cartridge_id);
	}
	r = device_command_status(d, SMPP_T_CLEAR_FAULT, NULL, 0);
	if (r == SMPP_S_CONDITION_PRESENT)
		return sd_bus_error_setf(error, SMPD_ERROR_FAULT_PERSISTS,
					 "the device reports that the cause of the fault persists");
	if (r != 0)
		return device_error(error, r, "CLEAR_FAULT");
	audit_device_event(d, true, "clear_fault", who,
			   d->trip != MONITOR_OK ? monitor_trip_to_string(d->trip) :
			   d->estop ? "estop" : "none");
	drain_stale_telemetry(d);
	/* Exact: the device clock after the clear; else the window. */
	if (fence_telemetry(d, 1) == 0)
		d->stale_faults_until = 0;
	else
		d->stale_faults_until = now_monotonic_us() + STALE_FAULTS_USEC;
	d->stale_after_start = false;
	d->estop = false;
	d->trip = MONITOR_OK;
	d->trip_message[0] = '\0';
	d->monitor.brownout = d->monitor.jam = false;
	bus_device_emit_changed(d, "State", "Fault", NULL);
	return 0;
}

int device_mark_cartridge(struct device *d, sd_bus_error *error)
{
	struct smp_frame reply;
	uint8_t buf[SMPP_MARK_USED_SIZE];
	int r;

	if (smp_mark_used_encode(d->cartridge.id, buf, sizeof(buf)) < 0)
		return sd_bus_error_setf(error, SMPD_ERROR_DEVICE_ERROR, "bad cartridge id");
	r = device_command(d, SMPP_T_MARK_CARTRIDGE_USED, buf, sizeof(buf), &reply);
	if (r != 0)
		return device_error(error, r, "MARK_CARTRIDGE_USED");
	smp_cartridge_decode(reply.payload, reply.len, &d->cartridge);
	return 0;
}
