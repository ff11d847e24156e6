/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bus-device.c - org.libsmp.Smp1.Device: D-Bus glue only.  Arguments are
 * validated here (named errors), authorization is checked here (polkit,
 * claimant), the decisions are in controller.c and safety.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "manager.h"
#include "smp-cleanup.h"

static int prop_string(sd_bus *bus, const char *path, const char *iface, const char *prop,
		       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;

	if (strcmp(prop, "Serial") == 0)
		return sd_bus_message_append(reply, "s", d->info.serial);
	if (strcmp(prop, "Model") == 0)
		return sd_bus_message_append(reply, "s", d->info.model_name);
	if (strcmp(prop, "Backend") == 0)
		return sd_bus_message_append(reply, "s", d->backend->kind);
	if (strcmp(prop, "State") == 0)
		return sd_bus_message_append(reply, "s", device_state_string(d));
	if (strcmp(prop, "Firmware") == 0) {
		char buf[16];

		snprintf(buf, sizeof(buf), "%u.%u", (unsigned)(d->info.fw_version >> 8),
			 (unsigned)(d->info.fw_version & 0xff));
		return sd_bus_message_append(reply, "s", buf);
	}
	return -ENOENT;
}

static int prop_model_number(sd_bus *bus, const char *path, const char *iface, const char *prop,
			     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;

	return sd_bus_message_append(reply, "q", d->info.model);
}

static int prop_claimed(sd_bus *bus, const char *path, const char *iface, const char *prop,
			sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;

	return sd_bus_message_append(reply, "b", d->claimant != NULL);
}

static int prop_claimant(sd_bus *bus, const char *path, const char *iface, const char *prop,
			 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;

	return sd_bus_message_append(reply, "s", d->claimant ? d->claimant : "");
}

static int prop_session(sd_bus *bus, const char *path, const char *iface, const char *prop,
			sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;

	return sd_bus_message_append(reply, "o", d->session ? d->session->path : "/");
}

static int prop_fault(sd_bus *bus, const char *path, const char *iface, const char *prop,
		      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;

	if (d->ctl.trip != MONITOR_OK)
		return sd_bus_message_append(reply, "(ss)", monitor_trip_to_string(d->ctl.trip),
					     d->ctl.trip_message);
	if (d->ctl.estop)
		return sd_bus_message_append(reply, "(ss)", "estop", "emergency stop latched");
	return sd_bus_message_append(reply, "(ss)", "", "");
}

static int prop_device_faults(sd_bus *bus, const char *path, const char *iface, const char *prop,
			      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	int r;

	r = sd_bus_message_open_container(reply, 'a', "s");
	if (r < 0)
		return r;
	for (unsigned b = 0; b < 32; b++) {
		const char *n = (d->ctl.dev_faults & (1U << b)) ? smp_fault_name(1U << b) : NULL;

		if (n) {
			r = sd_bus_message_append(reply, "s", n);
			if (r < 0)
				return r;
		}
	}
	return sd_bus_message_close_container(reply);
}

static int prop_setpoints(sd_bus *bus, const char *path, const char *iface, const char *prop,
			  sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	int r;

	r = sd_bus_message_open_container(reply, 'a', "{sv}");
	if (r < 0)
		return r;
	if (d->ctl.have_setpoints) {
		r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}", "Voltage", "u",
					  (uint32_t)d->ctl.setpoints.voltage_mv, "Current", "u",
					  (uint32_t)d->ctl.setpoints.current_ma, "StrokeRate", "u",
					  (uint32_t)d->ctl.setpoints.rate_chz, "Depth", "u",
					  (uint32_t)d->ctl.setpoints.depth_um);
		if (r < 0)
			return r;
	}
	return sd_bus_message_close_container(reply);
}

static int prop_limits(sd_bus *bus, const char *path, const char *iface, const char *prop,
		       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	struct effective_limits el;
	int r;

	device_effective_limits(d, &el);
	r = sd_bus_message_open_container(reply, 'a', "{s(uussss)}");
	if (r < 0)
		return r;
	for (int q = 0; q < _PARAM_MAX; q++) {
		r = sd_bus_message_append(reply, "{s(uussss)}", bus_param_keys[q], el.min[q].value,
					  el.max[q].value, el.min[q].label, el.min[q].source,
					  el.max[q].label, el.max[q].source);
		if (r < 0)
			return r;
	}
	return sd_bus_message_close_container(reply);
}

static int prop_last_refusal(sd_bus *bus, const char *path, const char *iface, const char *prop,
			     sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	const struct refusal *rf = &d->last_refusal;
	int r;

	r = sd_bus_message_open_container(reply, 'a', "{sv}");
	if (r < 0)
		return r;
	if (rf->serial > 0) {
		r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}", "Parameter", "s",
					  bus_param_keys[rf->param], "Requested", "u",
					  rf->requested, "Limit", "u", rf->bound.value, "Bound", "s",
					  rf->max ? "max" : "min", "Layer", "s", rf->bound.label,
					  "Source", "s", rf->bound.source, "Serial", "t", rf->serial);
		if (r < 0)
			return r;
	}
	return sd_bus_message_close_container(reply);
}

static int prop_cartridge(sd_bus *bus, const char *path, const char *iface, const char *prop,
			  sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	const struct smp_cartridge *c = &d->cartridge;
	char needle[16] = "";
	int r;

	if (c->flags & SMPP_CART_PRESENT)
		smp_needle_config_str(c->needle_count, c->needle_type, needle, sizeof(needle));
	r = sd_bus_message_open_container(reply, 'a', "{sv}");
	if (r < 0)
		return r;
	r = sd_bus_message_append(reply, "{sv}", "Present", "b",
				  (int)!!(c->flags & SMPP_CART_PRESENT));
	if (r >= 0 && (c->flags & SMPP_CART_PRESENT))
		r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}", "Id", "s", c->id,
					  "Lot", "s", c->lot, "Needle", "s", needle, "DiameterUm",
					  "u", (uint32_t)c->needle_diameter_um, "ExpiryDay", "u",
					  c->expiry_day, "Used", "b",
					  (int)!!(c->flags & SMPP_CART_USED), "Expired", "b",
					  (int)!!(c->flags & SMPP_CART_EXPIRED));
	if (r < 0)
		return r;
	return sd_bus_message_close_container(reply);
}

static int prop_telemetry(sd_bus *bus, const char *path, const char *iface, const char *prop,
			  sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	return device_append_telemetry(reply, userdata);
}

static int prop_lease(sd_bus *bus, const char *path, const char *iface, const char *prop,
		      sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;

	return sd_bus_message_append(reply, "u", d->manager->policy.lease_ms.value);
}

static int prop_client_timeout(sd_bus *bus, const char *path, const char *iface, const char *prop,
			       sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;

	return sd_bus_message_append(reply, "u", d->manager->policy.client_timeout_ms.value);
}

/* ---- methods ---- */

static int require_claimant(struct device *d, sd_bus_message *m, sd_bus_error *error)
{
	const char *sender = sd_bus_message_get_sender(m);

	if (!d->claimant)
		return sd_bus_error_setf(error, SMPD_ERROR_NOT_CLAIMED,
					 "device %s is not claimed; Claim it first", d->info.serial);
	if (!sender || strcmp(sender, d->claimant) != 0)
		return sd_bus_error_setf(error, SMPD_ERROR_NOT_CLAIMED,
					 "device %s is claimed by another client", d->info.serial);
	return 0;
}

static int method_claim(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	int r;

	r = polkit_verify(d->manager, m, SMPD_ACTION_OPERATE, method_claim, d, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	r = device_claim(d, sd_bus_message_get_sender(m), error);
	if (r < 0)
		return r;
	return sd_bus_reply_method_return(m, NULL);
}

/*
 * What BeginSession would refuse now, and why (docs/dbus.md): the rules of
 * session_begin() (session_check()), for any caller, claim or not, and no
 * polkit round trip (polkit's every decision is an audit record, and a
 * form asks this as its fields change); nothing is opened, read from the
 * device or recorded.  A malformed request is the call's error, as for
 * BeginSession.
 */
static int method_check_session(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	struct session_refusal refusals[SESSION_REFUSALS_MAX];
	struct metadata md = { 0 };
	struct session_request req;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	size_t n;
	int r;

	r = bus_read_metadata(m, &md, error);
	if (r < 0)
		return r;
	if (d->gone)
		return sd_bus_error_setf(error, SMPD_ERROR_INVALID_ARGUMENT, "no device %s", d->path);

	req = bus_session_request(&md);
	n = session_check(d->manager, d, &req, refusals, SESSION_REFUSALS_MAX);
	for (size_t i = 0; i < n; i++)
		if (refusals[i].bad_request)
			return sd_bus_error_setf(error, refusals[i].error, "%s",
						 refusals[i].info.msg);

	r = sd_bus_message_new_method_return(m, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(ssa{sv})");
	for (size_t i = 0; r >= 0 && i < n; i++) {
		const struct safety_refusal_info *f = &refusals[i].info;

		r = sd_bus_message_open_container(reply, 'r', "ssa{sv}");
		if (r >= 0)
			r = sd_bus_message_append(reply, "ss", refusals[i].error, f->msg);
		if (r >= 0)
			r = sd_bus_message_open_container(reply, 'a', "{sv}");
		if (r >= 0)
			r = sd_bus_message_append(reply, "{sv}", "Overridable", "b",
						  (int)f->overridable);
		if (r >= 0 && f->last_session)
			r = sd_bus_message_append(reply, "{sv}", "LastSessionTime", "x",
						  f->last_session);
		if (r >= 0 && f->earliest)
			r = sd_bus_message_append(reply, "{sv}", "EarliestTime", "x", f->earliest);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

static int method_release(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	int r;

	r = require_claimant(d, m, error);
	if (r < 0)
		return r;
	device_release(d, "released by the client");
	return sd_bus_reply_method_return(m, NULL);
}

/*
 * A value the protocol cannot carry (> 65535) is refused like any other
 * value above a limit: LastRefusal names the protocol layer and its
 * maximum, set and announced before the LimitExceeded reply, and the
 * refusal is recorded (parameters_refused).
 */
static int refuse_beyond_protocol(struct device *d, const struct param_overflow *ov,
				  const struct smp_params *req, sd_bus_error *error)
{
	struct refusal *rf = &d->last_refusal;
	char msg[SAFETY_MSG_MAX];

	safety_refuse_beyond_protocol(ov->param, ov->requested, &rf->bound, msg, sizeof(msg));
	rf->serial++;
	rf->param = ov->param;
	rf->requested = ov->requested;
	rf->max = true;
	{
		struct audit_field f[] = {
			AUDIT_STR("device", d->info.serial),
			AUDIT_STR("session", d->session ? d->session->id : ""),
			AUDIT_STR("parameter", bus_param_keys[ov->param]),
			AUDIT_UINT("requested", ov->requested),
			AUDIT_STR("refused", msg),
		};
		manager_audit(d->manager, false, "parameters_refused", f, sizeof(f) / sizeof(f[0]));
	}
	bus_device_emit_changed(d, "LastRefusal", NULL);
	return sd_bus_error_setf(error, SMPD_ERROR_LIMIT_EXCEEDED, "%s", msg);
}

/* a{sv} with Voltage, Current, StrokeRate, Depth (all "u"). */
static int method_set_parameters(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	struct smp_params req;
	struct param_overflow ov;
	int r;

	r = bus_read_params(m, &d->ctl.setpoints, d->ctl.have_setpoints, &req, &ov, error);
	if (r < 0)
		return r;
	r = polkit_verify(d->manager, m, SMPD_ACTION_OPERATE, method_set_parameters, d, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	r = require_claimant(d, m, error);
	if (r < 0)
		return r;
	if (ov.set)
		return refuse_beyond_protocol(d, &ov, &req, error);
	/* answered with the applied values when the device has answered */
	return device_set_parameters(d, &req, m);
}

static int method_start(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	int r;

	r = polkit_verify(d->manager, m, SMPD_ACTION_OPERATE, method_start, d, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	r = require_claimant(d, m, error);
	if (r < 0)
		return r;
	return device_start(d, sd_bus_message_get_sender(m), m);
}

/*
 * The claimant's sign of life while its needle runs (H6, device.c
 * "claimant liveness"): cheap, no polkit (the claim was authorized), and
 * usually sent without expecting a reply (then none goes out, not even
 * NotClaimed).
 */
static int method_heartbeat(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	int r;

	r = require_claimant(d, m, error);
	if (r < 0)
		return r;
	device_heartbeat(d);
	return sd_bus_reply_method_return(m, NULL);
}

/* Stopping is always safe: the claimant needs no further authorization. */
static int method_stop(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	int r;

	r = require_claimant(d, m, error);
	if (r < 0)
		return r;
	return device_stop(d, sd_bus_message_get_sender(m), "requested by the client", m);
}

/*
 * Any caller the D-Bus policy admits, claimant or not, and no polkit
 * round trip: an emergency stop must work when polkit is slow or down (H7).
 */
static int method_estop(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;

	return device_estop(d, sd_bus_message_get_sender(m), m);
}

static int method_clear_fault(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	struct device *d = userdata;
	int r;

	r = polkit_verify(d->manager, m, SMPD_ACTION_OPERATE, method_clear_fault, d, error);
	if (r <= 0)
		return r < 0 ? r : 1;
	if (d->claimant) {
		r = require_claimant(d, m, error);
		if (r < 0)
			return r;
	}
	return device_clear_fault(d, sd_bus_message_get_sender(m), m);
}

static const sd_bus_vtable device_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Serial", "s", prop_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Model", "s", prop_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("ModelNumber", "q", prop_model_number, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Firmware", "s", prop_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Backend", "s", prop_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("State", "s", prop_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Fault", "(ss)", prop_fault, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("DeviceFaults", "as", prop_device_faults, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
	SD_BUS_PROPERTY("Claimed", "b", prop_claimed, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Claimant", "s", prop_claimant, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Session", "o", prop_session, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Setpoints", "a{sv}", prop_setpoints, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Limits", "a{s(uussss)}", prop_limits, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
	SD_BUS_PROPERTY("LastRefusal", "a{sv}", prop_last_refusal, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Cartridge", "a{sv}", prop_cartridge, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_PROPERTY("Telemetry", "a{sv}", prop_telemetry, 0, 0),
	SD_BUS_PROPERTY("LeaseMs", "u", prop_lease, 0, 0),
	SD_BUS_PROPERTY("ClientTimeoutMs", "u", prop_client_timeout, 0,
			SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
	SD_BUS_METHOD("Claim", "", "", method_claim, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("CheckSession", SD_BUS_ARGS("a{sv}", metadata),
				SD_BUS_RESULT("a(ssa{sv})", refusals), method_check_session,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Release", "", "", method_release, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_ARGS("SetParameters", SD_BUS_ARGS("a{sv}", parameters),
				SD_BUS_RESULT("a{sv}", applied), method_set_parameters,
				SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Start", "", "", method_start, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Stop", "", "", method_stop, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("EmergencyStop", "", "", method_estop, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("ClearFault", "", "", method_clear_fault, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Heartbeat", "", "", method_heartbeat, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_ARGS("Telemetry", SD_BUS_ARGS("a{sv}", summary), 0),
	SD_BUS_SIGNAL_WITH_ARGS("Fault", SD_BUS_ARGS("s", kind, "s", message), 0),
	SD_BUS_VTABLE_END,
};

int bus_device_register(struct device *d)
{
	return sd_bus_add_object_vtable(d->manager->bus, &d->slot, d->path, SMPD_IFACE_DEVICE,
					device_vtable, d);
}
