/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * device.c - one attached device: the glue between its safety controller
 * (controller.c, which decides everything) and the world: the backend's
 * commands and telemetry, sd-event timers, D-Bus signals and errors, the
 * audit records and the journal.  Nothing here decides whether the needle
 * may run: every event goes to the controller, and its actions are carried
 * out in order by device_run().  Device commands go to the device's I/O
 * worker (devio.c) and their completions come back through the event
 * loop as controller_command_done(); a D-Bus request is answered when the
 * controller says so (CTL_REPLY), so nothing here waits for a device
 * except attaching it, opening a session (its cartridge) and shutdown.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "journal.h"
#include "manager.h"

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
	return controller_state_string(&d->ctl);
}

void device_effective_limits(const struct device *d, struct effective_limits *ret)
{
	char needle[16] = "";
	enum zone z = _ZONE_INVALID;

	if (d->session && d->session->active) {
		z = d->session->zone;
		snprintf(needle, sizeof(needle), "%s", d->session->needle);
	} else if (d->cartridge.flags & SMPP_CART_PRESENT) {
		smp_needle_config_str(d->cartridge.needle_count, d->cartridge.needle_type, needle,
				      sizeof(needle));
	}
	safety_effective_limits(&d->manager->policy, &d->info.limits, d->info.serial, z, needle, ret);
}

void device_limits_changed(struct device *d)
{
	struct effective_limits el;

	device_effective_limits(d, &el);
	controller_set_limits(&d->ctl, &el);
}

static int gone_handler(sd_event_source *s, void *userdata)
{
	device_remove(userdata, "the device was disconnected");
	return 0;
}

/*
 * Watch the telemetry fd only while the loop may read it: a link that the
 * worker holds for a command stays readable, and watching it then would
 * spin the loop through the command's round trip (docs/hacking.md).
 */
static void device_watch_link(struct device *d)
{
	bool on = !d->gone && d->io_source && devio_loop_reads_link(d->io);

	if (on == d->io_watched)
		return;
	if (sd_event_source_set_enabled(d->io_source, on ? SD_EVENT_ON : SD_EVENT_OFF) >= 0)
		d->io_watched = on;
}

static void device_mark_gone(struct device *d)
{
	if (d->gone)
		return;
	d->gone = true;
	controller_device_gone(&d->ctl);
	device_watch_link(d);
	if (d->ring_source)
		sd_event_source_set_enabled(d->ring_source, SD_EVENT_OFF);
	if (d->done_source)
		sd_event_source_set_enabled(d->done_source, SD_EVENT_OFF);
	if (sd_event_add_defer(d->manager->event, &d->gone_event, gone_handler, d) < 0)
		d->gone_event = NULL; /* removed on shutdown instead */
}

/*
 * One operation, waited for: only where smpd cannot go on without the
 * answer (attaching, opening a session).  Returns 0 (*ret filled), a
 * positive enum smpp_status for a device refusal, or a negative errno
 * for link errors (-ENODEV also schedules the removal of the device).
 */
static int device_command(struct device *d, const struct backend_req *req, struct backend_res *ret)
{
	struct devio_op op = { .req = *req };
	int r;

	if (d->gone)
		return -ENODEV;
	devio_set_timeout(d->io, (int)d->manager->policy.command_timeout_ms.value);
	r = devio_call(d->io, &op);
	device_watch_link(d);
	if (r == -ENODEV)
		device_mark_gone(d);
	if (ret)
		*ret = op.res;
	return r;
}

/* What a completion is for (devio_op.kind). */
enum {
	DEVICE_OP_CONTROLLER, /* a CTL_SEND: tag is the controller's */
	DEVICE_OP_CARTRIDGE,  /* the cartridge changed: read it again */
};

static int device_submit(struct device *d, unsigned kind, unsigned tag, const struct backend_req *req)
{
	struct devio_op op = { .req = *req, .kind = kind, .tag = tag };
	int r;

	devio_set_timeout(d->io, (int)d->manager->policy.command_timeout_ms.value);
	r = devio_submit(d->io, &op);
	device_watch_link(d); /* off: the worker has the link now */
	if (r < 0)
		return r;
	d->outstanding++;
	if ((req->type == SMPP_T_STOP || req->type == SMPP_T_ESTOP) &&
	    devio_cancel_pending(d->io) && d->kick_timer)
		sd_event_source_set_enabled(d->kick_timer, SD_EVENT_ON);
	return 0;
}

static void audit_device_event(struct device *d, bool durable, const char *event, const char *who,
			       const char *reason)
{
	struct audit_field f[6];
	size_t n = 0;

	f[n++] = AUDIT_STR("device", d->info.serial);
	if (d->session) {
		f[n++] = AUDIT_STR("session", d->session->id);
		f[n++] = AUDIT_STR("client", d->session->client);
	}
	if (who && who[0])
		f[n++] = AUDIT_STR("who", who);
	if (reason && reason[0])
		f[n++] = AUDIT_STR("reason", reason);
	f[n++] = AUDIT_STR("state", device_state_string(d));
	manager_audit(d->manager, durable, event, f, n);
}

/* ---- carrying out the controller's actions ---- */

/*
 * Send a command; its completion goes back to the controller
 * (command_done).  The controller's arguments (SET_PARAMS, the lease) come
 * as the protocol encodes them and are typed here.
 */
static void act_send(struct device *d, const struct ctl_action *a)
{
	struct backend_req req = { .type = a->cmd };
	int r = -ENODEV;

	if (a->cmd == SMPP_T_SET_PARAMS && smp_params_decode(a->payload, a->len, &req.params) < 0)
		r = -EINVAL;
	else if ((a->cmd == SMPP_T_START || a->cmd == SMPP_T_RENEW_LEASE) &&
		 smp_lease_decode(a->payload, a->len, &req.lease_ms) < 0)
		r = -EINVAL;
	else if (!d->gone)
		r = device_submit(d, DEVICE_OP_CONTROLLER, a->tag, &req);
	if (r < 0) {
		struct ctl_result res = { .tag = a->tag, .r = r };

		controller_command_done(&d->ctl, now_monotonic_us(), &res);
	}
}

/* A controller command's completion, back to the controller. */
static void command_done(struct device *d, const struct devio_op *op)
{
	struct ctl_result res = { .tag = (enum ctl_tag)op->tag, .r = op->r };
	const struct backend_res *br = &op->res;

	if (op->r == 0) {
		switch (op->req.type) {
		case SMPP_T_GET_STATS:
			res.have_uptime = true;
			res.uptime_ms = br->stats.uptime_ms;
			break;
		case SMPP_T_GET_CARTRIDGE:
			d->cartridge = br->cartridge;
			res.cartridge_present = br->cartridge.flags & SMPP_CART_PRESENT;
			snprintf(res.cartridge_id, sizeof(res.cartridge_id), "%s", br->cartridge.id);
			break;
		case SMPP_T_SET_PARAMS:
			res.have_params = br->have_applied;
			res.params = br->applied;
			break;
		default:
			res.have_status = br->have_status;
			res.state = br->status.state;
			res.faults = br->status.faults;
			break;
		}
	} else if (op->r > 0 && op->req.type == SMPP_T_SET_PARAMS) {
		res.range = br->range;
	} else if (op->r > 0 && op->req.type == SMPP_T_GET_CARTRIDGE) {
		res.r = -EIO; /* as reading the cartridge always said */
	}
	controller_command_done(&d->ctl, now_monotonic_us(), &res);
}

/* The cartridge changed (telemetry said so) and was read again. */
static void cartridge_done(struct device *d, const struct devio_op *op)
{
	if (op->r != 0)
		return;
	d->cartridge = op->res.cartridge;
	device_limits_changed(d);
	if (!d->gone)
		bus_device_emit_changed(d, "Cartridge", "Limits", NULL);
}

static void take_completion(struct device *d, const struct devio_op *op)
{
	if (d->outstanding)
		d->outstanding--;
	if (op->r == -ENODEV)
		device_mark_gone(d);
	if (op->kind == DEVICE_OP_CONTROLLER)
		command_done(d, op);
	else
		cartridge_done(d, op);
	device_run(d);
}

/* Above the telemetry: a renewal's or a stop's completion is never late. */
static int done_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct device *d = userdata;
	struct devio_op op;

	while (devio_take_done(d->io, &op))
		take_completion(d, &op);
	device_watch_link(d); /* on again if that was the last command */
	return 0;
}

/* smpusb: a cancel is a signal that may land just before the ioctl: again. */
static int kick_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct device *d = userdata;

	if (!devio_cancel_pending(d->io))
		return sd_event_source_set_enabled(s, SD_EVENT_OFF);
	devio_kick(d->io);
	return sd_event_source_set_time_relative(s, 2000);
}

void device_settle(struct device *d)
{
	struct devio_op op;
	uint64_t end = now_monotonic_us() +
		       2 * (uint64_t)d->manager->policy.command_timeout_ms.value * 1000;

	while (d->outstanding > 0 && now_monotonic_us() < end) {
		struct pollfd p = { .fd = devio_get_done_fd(d->io), .events = POLLIN };

		if (devio_take_done(d->io, &op)) {
			take_completion(d, &op);
			continue;
		}
		(void)poll(&p, 1, 10);
	}
	device_watch_link(d);
}

static int renew_timer_handler(sd_event_source *s, uint64_t usec, void *userdata);
static int alive_timer_handler(sd_event_source *s, uint64_t usec, void *userdata);
static int warning_timer_handler(sd_event_source *s, uint64_t usec, void *userdata);
static int limit_timer_handler(sd_event_source *s, uint64_t usec, void *userdata);

static void act_arm(struct device *d, enum ctl_timer t, uint64_t at)
{
	static const struct {
		sd_event_time_handler_t handler;
		uint64_t accuracy;
		int64_t priority;
	} kinds[_CTL_TIMER_MAX] = {
		/* above the telemetry input: a backlog never delays a renewal */
		[CTL_TIMER_RENEW] = { renew_timer_handler, 1000, SD_EVENT_PRIORITY_IMPORTANT },
		/*
		 * Below the bus: a Heartbeat already in smpd's input is read
		 * before the deadline is judged.  A bus so busy that this
		 * timer starves meets the backstop in the renewal.
		 */
		[CTL_TIMER_ALIVE] = { alive_timer_handler, 1, SD_EVENT_PRIORITY_NORMAL + 10 },
		[CTL_TIMER_WARNING] = { warning_timer_handler, 0, SD_EVENT_PRIORITY_NORMAL },
		[CTL_TIMER_LIMIT] = { limit_timer_handler, 0, SD_EVENT_PRIORITY_NORMAL },
	};
	int r;

	if (at == 0) {
		if (d->timer[t])
			sd_event_source_set_enabled(d->timer[t], SD_EVENT_OFF);
		return;
	}
	if (!d->timer[t]) {
		r = sd_event_add_time(d->manager->event, &d->timer[t], CLOCK_MONOTONIC, at,
				      kinds[t].accuracy, kinds[t].handler, d);
		if (r < 0) {
			char msg[SAFETY_MSG_MAX];

			d->timer[t] = NULL;
			snprintf(msg, sizeof(msg), "smpd cannot arm its %s timer: %s",
				 t == CTL_TIMER_RENEW ? "lease renewal" : "safety", strerror(-r));
			controller_trip(&d->ctl, now_monotonic_us(), MONITOR_DEVICE_REFUSED, msg);
			return;
		}
		sd_event_source_set_priority(d->timer[t], kinds[t].priority);
	} else {
		sd_event_source_set_time(d->timer[t], at);
	}
	sd_event_source_set_enabled(d->timer[t], SD_EVENT_ONESHOT);
}

/* A latched trip: the journal at priority err, the Fault signal, the record. */
static void act_trip(struct device *d, enum monitor_trip trip, const char *msg)
{
	smpd_log_trip(d->info.serial, trip, msg);
	if (d->gone)
		return;
	sd_bus_emit_signal(d->manager->bus, d->path, SMPD_IFACE_DEVICE, "Fault", "ss",
			   monitor_trip_to_string(trip), msg);
	bus_device_emit_changed(d, "State", "Fault", NULL);
	/* After an audit failure the log cannot take this record. */
	if (trip != MONITOR_AUDIT_FAILED) {
		struct audit_field f[5];
		size_t n = 0;

		f[n++] = AUDIT_STR("device", d->info.serial);
		if (d->session)
			f[n++] = AUDIT_STR("session", d->session->id);
		f[n++] = AUDIT_STR("fault", monitor_trip_to_string(trip));
		f[n++] = AUDIT_STR("message", msg);
		f[n++] = AUDIT_UINT("device_faults", d->ctl.dev_faults);
		manager_audit(d->manager, true, "fault", f, n);
	}
}

static void act_emit(struct device *d, unsigned props)
{
	char *names[4];
	size_t n = 0;

	if (d->gone)
		return;
	if (props & CTL_PROP_STATE)
		names[n++] = (char *)"State";
	if (props & CTL_PROP_FAULT)
		names[n++] = (char *)"Fault";
	if (props & CTL_PROP_SETPOINTS)
		names[n++] = (char *)"Setpoints";
	names[n] = NULL;
	if (n)
		sd_bus_emit_properties_changed_strv(d->manager->bus, d->path, SMPD_IFACE_DEVICE,
						    names);
}

static int audit_start(struct device *d, const char *who)
{
	const struct smp_params *sp = &d->ctl.setpoints;
	struct audit_field f[] = {
		AUDIT_STR("device", d->info.serial),
		AUDIT_STR("session", d->session ? d->session->id : ""),
		AUDIT_STR("client", d->session ? d->session->client : ""),
		AUDIT_STR("who", who),
		AUDIT_UINT("voltage_mv", sp->voltage_mv),
		AUDIT_UINT("current_ma", sp->current_ma),
		AUDIT_UINT("rate_chz", sp->rate_chz),
		AUDIT_UINT("depth_um", sp->depth_um),
		AUDIT_UINT("lease_ms", d->manager->policy.lease_ms.value),
	};

	return manager_audit(d->manager, true, "start", f, sizeof(f) / sizeof(f[0]));
}

static int audit_set_parameters(struct device *d)
{
	const struct smp_params *req = &d->ctl.op_params, *applied = &d->ctl.setpoints;
	const struct effective_limits *el = &d->ctl.limits;
	struct audit_field f[32];
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
	f[n++] = AUDIT_UINT("voltage_mv", applied->voltage_mv);
	f[n++] = AUDIT_UINT("current_ma", applied->current_ma);
	f[n++] = AUDIT_UINT("rate_chz", applied->rate_chz);
	f[n++] = AUDIT_UINT("depth_um", applied->depth_um);
	f[n++] = AUDIT_STR("voltage_limit", el->max[PARAM_VOLTAGE].label);
	f[n++] = AUDIT_STR("voltage_limit_source", el->max[PARAM_VOLTAGE].source);
	f[n++] = AUDIT_STR("current_limit", el->max[PARAM_CURRENT].label);
	f[n++] = AUDIT_STR("current_limit_source", el->max[PARAM_CURRENT].source);
	f[n++] = AUDIT_STR("rate_limit", el->max[PARAM_RATE].label);
	f[n++] = AUDIT_STR("rate_limit_source", el->max[PARAM_RATE].source);
	f[n++] = AUDIT_STR("depth_limit", el->max[PARAM_DEPTH].label);
	f[n++] = AUDIT_STR("depth_limit_source", el->max[PARAM_DEPTH].source);
	return manager_audit(d->manager, true, "set_parameters", f, n);
}

static void audit_parameters_refused(struct device *d, const char *msg)
{
	const struct smp_params *req = &d->ctl.op_params;
	struct audit_field f[] = {
		AUDIT_STR("device", d->info.serial),
		AUDIT_STR("session", d->session ? d->session->id : ""),
		AUDIT_UINT("req_voltage_mv", req->voltage_mv),
		AUDIT_UINT("req_current_ma", req->current_ma),
		AUDIT_UINT("req_rate_chz", req->rate_chz),
		AUDIT_UINT("req_depth_um", req->depth_um),
		AUDIT_STR("refused", msg),
	};

	manager_audit(d->manager, false, "parameters_refused", f, sizeof(f) / sizeof(f[0]));
}

static void act_audit(struct device *d, const struct ctl_action *a)
{
	int r = 0;

	switch (a->audit) {
	case CTL_AUDIT_STOP:
		audit_device_event(d, true, "stop", a->who, a->message);
		break;
	case CTL_AUDIT_ESTOP:
		audit_device_event(d, true, "estop", a->who, NULL);
		break;
	case CTL_AUDIT_START:
		r = audit_start(d, a->who);
		break;
	case CTL_AUDIT_START_REFUSED:
		audit_device_event(d, true, "start_refused", a->who, a->message);
		break;
	case CTL_AUDIT_CLEAR_FAULT:
		audit_device_event(d, true, "clear_fault", a->who, a->message);
		break;
	case CTL_AUDIT_SET_PARAMETERS:
		r = audit_set_parameters(d);
		break;
	case CTL_AUDIT_PARAMETERS_REFUSED:
		audit_parameters_refused(d, a->message);
		break;
	}
	if (a->gate)
		controller_audit_done(&d->ctl, now_monotonic_us(), r);
}

/* ---- claimant liveness: the glue of the sign of life (H6) ---- */

/*
 * The claimant called Heartbeat() (bus-device.c checked that it is the
 * claimant): a sign of life from its own main loop.  The controller keeps
 * the deadline and judges it (controller.c, "claimant liveness").
 */
void device_heartbeat(struct device *d)
{
	uint64_t now;

	if (sd_event_now(d->manager->event, CLOCK_MONOTONIC, &now) < 0)
		now = now_monotonic_us();
	controller_claimant_alive(&d->ctl, now);
	device_run(d);
}

static void read_pending_telemetry(struct device *d, unsigned max);

/* The claim ends: the session with it, then the release record. */
static void act_release(struct device *d, const char *reason)
{
	if (!d->claimant)
		return;
	if (d->session)
		session_end(d->session, reason);
	audit_device_event(d, true, "release", d->claimant, reason);
	controller_unclaimed(&d->ctl);
	free(d->claimant);
	d->claimant = NULL;
	d->track = sd_bus_track_unref(d->track);
	if (!d->gone)
		bus_device_emit_changed(d, "Claimed", "Claimant", NULL);
}

static void act_session_warning(struct device *d)
{
	struct session *s = d->session;
	uint32_t left = d->manager->policy.warning_before_end_s.value;

	if (!s || !s->active)
		return;
	sd_bus_emit_signal(d->manager->bus, s->path, SMPD_IFACE_SESSION, "Warning", "su",
			   "session-time", left);
	{
		struct audit_field f[] = {
			AUDIT_STR("session", s->id),
			AUDIT_STR("client", s->client),
			AUDIT_STR("warning", "session-time"),
			AUDIT_UINT("seconds_left", left),
		};
		manager_audit(d->manager, false, "session_warning", f, sizeof(f) / sizeof(f[0]));
	}
}

static void act_session_expired(struct device *d)
{
	struct session *s = d->session;

	if (s && s->active)
		sd_bus_emit_signal(d->manager->bus, s->path, SMPD_IFACE_SESSION, "Warning", "su",
				   "session-time-exceeded", 0);
}

static void send_reply(struct device *d, sd_bus_message *m, enum device_req kind,
		       const struct ctl_action *a)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r;

	if (a->error && a->limit_refusal) {
		/* only SetParameters and Start are refused by a limit */
		const struct smp_params *req = kind == DEVICE_REQ_SET_PARAMETERS ?
						       &d->ctl.op_params :
						       &d->ctl.setpoints;

		device_refuse_limit(d, &d->ctl.limits, a->param, req, NULL, a->message, &error);
	} else if (a->error) {
		sd_bus_error_setf(&error, a->error, "%s", a->message);
	}
	if (!m) {
		sd_bus_error_free(&error);
		return;
	}
	if (sd_bus_error_is_set(&error)) {
		sd_bus_reply_method_error(m, &error);
		sd_bus_error_free(&error);
		return;
	}
	if (kind != DEVICE_REQ_SET_PARAMETERS) {
		sd_bus_reply_method_return(m, NULL);
		return;
	}
	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "a{sv}", 4, "Voltage", "u",
					  (uint32_t)d->ctl.setpoints.voltage_mv, "Current", "u",
					  (uint32_t)d->ctl.setpoints.current_ma, "StrokeRate", "u",
					  (uint32_t)d->ctl.setpoints.rate_chz, "Depth", "u",
					  (uint32_t)d->ctl.setpoints.depth_um);
	if (r >= 0)
		sd_bus_send(NULL, reply, NULL);
	sd_bus_message_unref(reply);
}

/* The controller's answer: to the EmergencyStop, the busy request or the request in progress. */
static void act_reply(struct device *d, const struct ctl_action *a)
{
	if (a->estop) {
		sd_bus_message *m;

		if (d->n_estop_msgs == 0)
			return;
		m = d->estop_msgs[0];
		memmove(d->estop_msgs, d->estop_msgs + 1, --d->n_estop_msgs * sizeof(*d->estop_msgs));
		if (m) {
			if (a->error)
				sd_bus_reply_method_errorf(m, a->error, "%s", a->message);
			else
				sd_bus_reply_method_return(m, NULL);
			sd_bus_message_unref(m);
		}
		return;
	}
	if (d->req_busy) {
		d->req_busy = false;
		send_reply(d, d->busy_msg, DEVICE_REQ_STOP, a);
		return;
	}
	{
		sd_bus_message *m = d->op_msg;

		d->op_msg = NULL;
		send_reply(d, m, d->op_kind, a);
		sd_bus_message_unref(m);
	}
}

static void device_act(struct device *d, const struct ctl_action *a)
{
	switch (a->kind) {
	case CTL_SEND:
		act_send(d, a);
		break;
	case CTL_ARM:
		act_arm(d, a->timer, a->at);
		break;
	case CTL_TRIP:
		act_trip(d, a->trip, a->message);
		break;
	case CTL_EMIT:
		act_emit(d, a->props);
		break;
	case CTL_AUDIT:
		act_audit(d, a);
		break;
	case CTL_READ_BACKLOG:
		/* smpd itself may have been late: judge what the link holds */
		read_pending_telemetry(d, 2 * SMPP_TELEMETRY_HZ);
		controller_backlog_done(&d->ctl, now_monotonic_us());
		break;
	case CTL_RELEASE:
		act_release(d, a->message);
		break;
	case CTL_SESSION_WARNING:
		act_session_warning(d);
		break;
	case CTL_SESSION_EXPIRED:
		act_session_expired(d);
		break;
	case CTL_LOG:
		smpd_log(LOG_WARNING, d->info.serial, "%s", a->message);
		break;
	case CTL_REPLY:
		act_reply(d, a);
		break;
	}
}

/*
 * Take the controller's actions in order.  An action may feed the
 * controller again (a command's completion, a record read, an audit
 * failure that trips every device): the new actions join the queue and
 * the outermost call takes them.
 */
void device_run(struct device *d)
{
	struct ctl_action a;

	if (d->running_actions)
		return;
	d->running_actions = true;
	while (controller_next_action(&d->ctl, &a))
		device_act(d, &a);
	d->running_actions = false;
}

static void device_timer(struct device *d, enum ctl_timer t)
{
	controller_timer(&d->ctl, now_monotonic_us(), t);
	device_run(d);
}

static int renew_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
	device_timer(userdata, CTL_TIMER_RENEW);
	return 0;
}

static int alive_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
	device_timer(userdata, CTL_TIMER_ALIVE);
	return 0;
}

static int warning_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
	device_timer(userdata, CTL_TIMER_WARNING);
	return 0;
}

static int limit_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
	device_timer(userdata, CTL_TIMER_LIMIT);
	return 0;
}

void device_trip(struct device *d, enum monitor_trip trip, const char *msg)
{
	uint64_t now = now_monotonic_us();

	if (trip == MONITOR_AUDIT_FAILED)
		controller_audit_failed(&d->ctl, now, d->manager->audit_error);
	else
		controller_trip(&d->ctl, now, trip, msg);
	device_run(d);
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
#define MM(field, v)                          \
	do {                                  \
		if ((v) < s->min_##field)     \
			s->min_##field = (v); \
		if ((v) > s->max_##field)     \
			s->max_##field = (v); \
	} while (0)
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

static void handle_telemetry(struct device *d, const struct smp_telemetry *t)
{
	bool cart_changed;

	if (d->have_seq && t->seq != d->last_seq + 1) {
		d->tsum.gaps += t->seq - d->last_seq - 1;
		d->audit_sum.gaps += t->seq - d->last_seq - 1;
	}
	d->have_seq = true;
	d->last_seq = t->seq;
	d->last_telemetry_mono = now_monotonic_us();
	/* a record from before a CLEAR_FAULT or START is counted, not judged */
	if (!controller_telemetry(&d->ctl, d->last_telemetry_mono, t)) {
		device_run(d);
		return;
	}
	cart_changed = d->have_telemetry &&
		       ((t->flags ^ d->last_telemetry.flags) & SMPP_TFLAG_CARTRIDGE);
	d->last_telemetry = *t;
	d->have_telemetry = true;
	summary_add(&d->tsum, t);
	if (t->state == SMPP_STATE_RUNNING)
		summary_add(&d->audit_sum, t);
	device_run(d);
	if (d->gone)
		return;
	if (cart_changed) /* read again; cartridge_done() announces it */
		device_submit(d, DEVICE_OP_CARTRIDGE, 0,
			      &(struct backend_req){ .type = SMPP_T_GET_CARTRIDGE });
}

/*
 * A batch per dispatch, then back to the loop: sd-event runs one source
 * per iteration, by priority, so the lease renewal (above this source)
 * waits for one batch at most, never for a whole backlog.  Under TCG a
 * record costs a read() and its judging, tens of us, so a backlog of up
 * to two seconds' worth in one dispatch could hold the renewal for 100 ms
 * and more.  The fd is level-triggered: what is left is the next dispatch
 * (what the socket link queued itself, during a command, is announced by
 * devio's ring fd after a full batch: devio_read_telemetry_batch()).
 */
#define TELEMETRY_BATCH 32

/*
 * Judges the records the link holds, max at most, read in batches: from
 * the socket, one system call per wakeup, not one per record and another
 * to find the link empty.
 */
static void read_pending_telemetry(struct device *d, unsigned max)
{
	struct smp_telemetry t[TELEMETRY_BATCH];
	unsigned done = 0;
	int r;

	while (done < max && !d->gone) {
		unsigned want = max - done < TELEMETRY_BATCH ? max - done : TELEMETRY_BATCH;

		r = devio_read_telemetry_batch(d->io, t, want);
		if (r == -ENODEV) {
			device_mark_gone(d);
			device_run(d);
			break;
		}
		if (r <= 0)
			break;
		for (int i = 0; i < r && !d->gone; i++)
			handle_telemetry(d, &t[i]);
		done += (unsigned)r;
		if ((unsigned)r < want)
			break; /* that was all */
	}
}

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
#define U(k, v)                                                              \
	do {                                                                 \
		r = sd_bus_message_append(m, "{sv}", k, "u", (uint32_t)(v)); \
		if (r < 0)                                                   \
			return r;                                            \
	} while (0)
#define I(k, v)                                                             \
	do {                                                                \
		r = sd_bus_message_append(m, "{sv}", k, "i", (int32_t)(v)); \
		if (r < 0)                                                  \
			return r;                                           \
	} while (0)
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
	struct audit_field f[20];
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
	struct backend_res res;
	int r;

	r = device_command(d, &(struct backend_req){ .type = SMPP_T_GET_CARTRIDGE }, &res);
	if (r != 0) {
		device_run(d); /* the link may be gone */
		return r < 0 ? r : -EIO;
	}
	d->cartridge = res.cartridge;
	device_limits_changed(d);
	return 0;
}

int device_new(struct manager *m, struct backend *b, struct device **ret)
{
	struct device *d;
	struct backend_res res;
	struct smp_status_info st = { 0 };
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->manager = m;
	d->backend = b;
	controller_init(&d->ctl, &m->policy, "", now_monotonic_us());
	d->ctl.audit_error = m->audit_error;
	r = devio_new(b, (int)m->policy.command_timeout_ms.value, &d->io);
	if (r < 0)
		goto fail;

	r = device_command(d, &(struct backend_req){ .type = SMPP_T_GET_INFO }, &res);
	if (r == 0)
		d->info = res.info;
	else if (r > 0)
		r = -EIO;
	if (r >= 0 && !safety_token_valid(d->info.serial))
		r = -EBADMSG; /* a serial we cannot put in a path or a log */
	if (r >= 0) {
		r = device_command(d, &(struct backend_req){ .type = SMPP_T_GET_STATUS }, &res);
		if (r > 0)
			r = -EIO;
		if (r == 0 && res.have_status)
			st = res.status;
	}
	if (r >= 0)
		r = device_refresh_cartridge(d);
	if (r < 0)
		goto fail;
	snprintf(d->ctl.serial, sizeof(d->ctl.serial), "%s", d->info.serial);
	device_limits_changed(d);

	/* A needle found running is stopped; a fault found is latched. */
	controller_attached(&d->ctl, now_monotonic_us(), st.state, st.faults);
	device_run(d);

	r = sd_bus_path_encode(SMPD_DEVICE_PREFIX, d->info.serial, &d->path);
	if (r < 0)
		goto fail;
	for (struct device *o = m->devices; o; o = o->next)
		if (strcmp(o->path, d->path) == 0) {
			r = -EEXIST;
			goto fail;
		}
	if (devio_get_telemetry_fd(d->io) >= 0) {
		r = sd_event_add_io(m->event, &d->io_source, devio_get_telemetry_fd(d->io), EPOLLIN,
				    io_handler, d);
		if (r < 0)
			goto fail;
		/* Below the lease renewal: a telemetry backlog never delays it. */
		sd_event_source_set_priority(d->io_source, SD_EVENT_PRIORITY_IMPORTANT + 10);
		sd_event_source_set_enabled(d->io_source, SD_EVENT_OFF);
		device_watch_link(d);
	}
	if (devio_get_ring_fd(d->io) >= 0) {
		r = sd_event_add_io(m->event, &d->ring_source, devio_get_ring_fd(d->io), EPOLLIN,
				    io_handler, d);
		if (r < 0)
			goto fail;
		sd_event_source_set_priority(d->ring_source, SD_EVENT_PRIORITY_IMPORTANT + 10);
	}
	r = sd_event_add_io(m->event, &d->done_source, devio_get_done_fd(d->io), EPOLLIN,
			    done_handler, d);
	if (r < 0)
		goto fail;
	/* With the renewal, above telemetry: a stop's or renewal's answer is never late. */
	sd_event_source_set_priority(d->done_source, SD_EVENT_PRIORITY_IMPORTANT);
	/* 0.5 ms accuracy: sd-event's default (0 = 250 ms) would let a lost signal cost that */
	r = sd_event_add_time_relative(m->event, &d->kick_timer, CLOCK_MONOTONIC, 2000, 500,
				       kick_handler, d);
	if (r < 0)
		goto fail;
	sd_event_source_set_priority(d->kick_timer, SD_EVENT_PRIORITY_IMPORTANT);
	sd_event_source_set_enabled(d->kick_timer, SD_EVENT_OFF);
	r = sd_event_add_time_relative(m->event, &d->telemetry_timer, CLOCK_MONOTONIC,
				       1000000ULL / m->policy.telemetry_hz.value, 0,
				       telemetry_timer_handler, d);
	if (r < 0)
		goto fail;
	sd_event_source_set_enabled(d->telemetry_timer, SD_EVENT_ON);
	d->last_telemetry_mono = now_monotonic_us();
	d->ctl.fresh_mono = d->last_telemetry_mono;

	r = bus_device_register(d);
	if (r < 0)
		goto fail;
	d->next = m->devices;
	m->devices = d;
	manager_arm_audit_timer(m); /* its telemetry summaries */

	sd_bus_emit_signal(m->bus, SMPD_PATH, SMPD_IFACE_MANAGER, "DeviceAdded", "o", d->path);
	{
		struct audit_field f[] = {
			AUDIT_STR("device", d->info.serial),
			AUDIT_STR("model", d->info.model_name),
			AUDIT_UINT("firmware", d->info.fw_version),
			AUDIT_STR("backend", b->kind),
			AUDIT_STR("address", b->address),
			AUDIT_STR("state", device_state_string(d)),
		};
		manager_audit(m, true, "device_attach", f, sizeof(f) / sizeof(f[0]));
	}
	if (d->ctl.trip != MONITOR_OK) {
		/* Found faulted (e.g. its lease ran out while no smpd ran): say so. */
		struct audit_field f[] = {
			AUDIT_STR("device", d->info.serial),
			AUDIT_STR("fault", monitor_trip_to_string(d->ctl.trip)),
			AUDIT_STR("message", d->ctl.trip_message),
			AUDIT_UINT("device_faults", d->ctl.dev_faults),
		};
		smpd_log(LOG_ERR, d->info.serial, "%s", d->ctl.trip_message);
		manager_audit(m, true, "fault", f, sizeof(f) / sizeof(f[0]));
	}
	if (ret)
		*ret = d;
	return 0;
fail:
	d->backend = NULL; /* the caller still owns it */
	device_free(d);
	return r;
}

void device_free(struct device *d)
{
	if (!d)
		return;
	polkit_cancel_userdata(d->manager, d);
	/* the worker first: nothing more completes (stops queued still go out) */
	devio_free(d->io);
	if (d->op_msg)
		sd_bus_reply_method_errorf(d->op_msg, SMPD_ERROR_DEVICE_ERROR,
					   "device %s was removed", d->info.serial);
	sd_bus_message_unref(d->op_msg);
	for (size_t i = 0; i < d->n_estop_msgs; i++) {
		sd_bus_reply_method_errorf(d->estop_msgs[i], SMPD_ERROR_DEVICE_ERROR,
					   "device %s was removed", d->info.serial);
		sd_bus_message_unref(d->estop_msgs[i]);
	}
	free(d->estop_msgs);
	sd_event_source_disable_unref(d->done_source);
	sd_event_source_disable_unref(d->kick_timer);
	sd_event_source_unref(d->io_source);
	sd_event_source_unref(d->ring_source);
	for (int t = 0; t < _CTL_TIMER_MAX; t++)
		sd_event_source_disable_unref(d->timer[t]);
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

	controller_detach(&d->ctl, now_monotonic_us());
	device_run(d);
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

/*
 * The claimant left the bus.  sd-bus calls this again on every pass of
 * the event loop for as long as the tracking object stays empty, and the
 * claim (with d->track) ends only when the STOP this sends has completed,
 * on the worker: so the track goes now, or smpd's real-time loop spins
 * through the whole STOP round trip and starves the very worker that has
 * to send the STOP whenever the other CPU is busy at the same priority.
 */
static int track_handler(sd_bus_track *t, void *userdata)
{
	struct device *d = userdata;

	d->track = sd_bus_track_unref(d->track); /* sd-bus holds its own ref for this call */
	controller_claimant_gone(&d->ctl, now_monotonic_us(), "the claiming client left the bus");
	device_run(d);
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
	controller_claimed(&d->ctl, sender);
	audit_device_event(d, false, "claim", sender, NULL);
	bus_device_emit_changed(d, "Claimed", "Claimant", NULL);
	return 0;
}

int device_release(struct device *d, const char *reason)
{
	if (!d->claimant)
		return 0;
	controller_release(&d->ctl, now_monotonic_us(), reason);
	device_run(d);
	return 0;
}

static uint32_t param_value(const struct smp_params *p, enum param q)
{
	switch (q) {
	case PARAM_VOLTAGE:
		return p->voltage_mv;
	case PARAM_CURRENT:
		return p->current_ma;
	case PARAM_RATE:
		return p->rate_chz;
	case PARAM_DEPTH:
		return p->depth_um;
	default:
		return 0;
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

/*
 * A request to the controller: m gets the answer the controller gives,
 * now (a refusal) or when the device has answered.  A request made while
 * another is in progress is refused at once (busy) and must not take the
 * answer of the one in progress.
 */
static void request_begin(struct device *d, sd_bus_message *m, enum device_req kind)
{
	if (d->ctl.op != CTL_OP_NONE) {
		d->req_busy = true;
		d->busy_msg = m;
		return;
	}
	sd_bus_message_unref(d->op_msg); /* none: the controller answered the last */
	d->op_msg = sd_bus_message_ref(m);
	d->op_kind = kind;
}

static int request_end(struct device *d)
{
	device_run(d);
	d->req_busy = false;
	d->busy_msg = NULL;
	return 1;
}

int device_set_parameters(struct device *d, const struct smp_params *req, sd_bus_message *m)
{
	device_limits_changed(d);
	request_begin(d, m, DEVICE_REQ_SET_PARAMETERS);
	controller_request_set_parameters(&d->ctl, now_monotonic_us(), req);
	return request_end(d);
}

int device_start(struct device *d, const char *who, sd_bus_message *m)
{
	manager_check_audit_space(d->manager);
	device_limits_changed(d); /* the policy may have been reloaded since SetParameters */
	request_begin(d, m, DEVICE_REQ_START);
	controller_request_start(&d->ctl, now_monotonic_us(), who);
	return request_end(d);
}

int device_stop(struct device *d, const char *who, const char *reason, sd_bus_message *m)
{
	request_begin(d, m, DEVICE_REQ_STOP);
	controller_request_stop(&d->ctl, now_monotonic_us(), who, reason);
	return request_end(d);
}

int device_estop(struct device *d, const char *who, sd_bus_message *m)
{
	if (d->n_estop_msgs == d->cap_estop_msgs) {
		size_t cap = d->cap_estop_msgs ? 2 * d->cap_estop_msgs : 4;
		sd_bus_message **n = realloc(d->estop_msgs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		d->estop_msgs = n;
		d->cap_estop_msgs = cap;
	}
	d->estop_msgs[d->n_estop_msgs++] = sd_bus_message_ref(m);
	controller_request_estop(&d->ctl, now_monotonic_us(), who);
	device_run(d);
	return 1;
}

int device_clear_fault(struct device *d, const char *who, sd_bus_message *m)
{
	request_begin(d, m, DEVICE_REQ_CLEAR_FAULT);
	controller_request_clear_fault(&d->ctl, now_monotonic_us(), who);
	return request_end(d);
}

static int device_error(sd_bus_error *error, int r, const char *what)
{
	if (r < 0)
		return sd_bus_error_setf(error, SMPD_ERROR_DEVICE_ERROR, "%s: %s", what,
					 strerror(-r));
	return sd_bus_error_setf(error, SMPD_ERROR_DEVICE_REFUSED, "%s: the device refused with %s",
				 what, smp_status_name((unsigned)r));
}

int device_mark_cartridge(struct device *d, sd_bus_error *error)
{
	struct backend_req req = { .type = SMPP_T_MARK_CARTRIDGE_USED };
	struct backend_res res;
	uint8_t check[SMPP_MARK_USED_SIZE];
	int r;

	/* what the protocol can carry (printable, 1-16 characters) */
	if (smp_mark_used_encode(d->cartridge.id, check, sizeof(check)) < 0)
		return sd_bus_error_setf(error, SMPD_ERROR_DEVICE_ERROR, "bad cartridge id");
	snprintf(req.cartridge_id, sizeof(req.cartridge_id), "%s", d->cartridge.id);
	r = device_command(d, &req, &res);
	device_run(d); /* the link may be gone */
	if (r != 0)
		return device_error(error, r, "MARK_CARTRIDGE_USED");
	d->cartridge = res.cartridge;
	return 0;
}
