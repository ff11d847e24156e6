/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libsmp: one device of smpd (org.libsmp.Smp1.Device). */
#include <inttypes.h>
#include <string.h>

#include "libsmp-private.h"

static const char *const param_keys[SMP_N_PARAMS] = {
	[SMP_PARAM_VOLTAGE] = "Voltage",
	[SMP_PARAM_CURRENT] = "Current",
	[SMP_PARAM_STROKE_RATE] = "StrokeRate",
	[SMP_PARAM_DEPTH] = "Depth",
};

static const char *const param_names[SMP_N_PARAMS] = {
	[SMP_PARAM_VOLTAGE] = "voltage",
	[SMP_PARAM_CURRENT] = "current",
	[SMP_PARAM_STROKE_RATE] = "stroke-rate",
	[SMP_PARAM_DEPTH] = "depth",
};

static const char *const telemetry_keys[SMP_N_TELEMETRY] = {
	[SMP_TELEMETRY_SAMPLES] = "Samples",
	[SMP_TELEMETRY_DROPPED] = "Dropped",
	[SMP_TELEMETRY_VOLTAGE_MV] = "Voltage",
	[SMP_TELEMETRY_VOLTAGE_MIN_MV] = "VoltageMin",
	[SMP_TELEMETRY_VOLTAGE_MAX_MV] = "VoltageMax",
	[SMP_TELEMETRY_CURRENT_MA] = "Current",
	[SMP_TELEMETRY_CURRENT_MIN_MA] = "CurrentMin",
	[SMP_TELEMETRY_CURRENT_MAX_MA] = "CurrentMax",
	[SMP_TELEMETRY_STROKE_RATE_CHZ] = "StrokeRate",
	[SMP_TELEMETRY_DEPTH_UM] = "Depth",
	[SMP_TELEMETRY_LEASE_LEFT_MS] = "LeaseLeft",
	[SMP_TELEMETRY_DEVICE_FAULTS] = "DeviceFaults",
	[SMP_TELEMETRY_TEMPERATURE_CDEGC] = "Temperature",
	[SMP_TELEMETRY_TEMPERATURE_MAX_CDEGC] = "TemperatureMax",
	[SMP_TELEMETRY_PEDAL] = "Pedal",
	[SMP_TELEMETRY_CARTRIDGE_PRESENT] = "CartridgePresent",
};

static const char *const state_names[] = {
	[SMP_DEVICE_STATE_UNKNOWN] = "unknown", [SMP_DEVICE_STATE_IDLE] = "idle",
	[SMP_DEVICE_STATE_RUNNING] = "running", [SMP_DEVICE_STATE_FAULT] = "fault",
	[SMP_DEVICE_STATE_ESTOP] = "estop",	[SMP_DEVICE_STATE_GONE] = "gone",
};

static bool param_ok(enum smp_param p)
{
	return (unsigned)p < SMP_N_PARAMS;
}

int smp_device_new(smp_client *c, const char *path, smp_device **ret)
{
	smp_device *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->n_ref = 1;
	d->path = strdup(path);
	d->serial = strdup("");
	d->model = strdup("");
	d->firmware = strdup("");
	d->backend = strdup("");
	d->fault_kind = strdup("");
	d->fault_message = strdup("");
	d->device_faults = strdup("");
	d->cart_id = strdup("");
	d->cart_lot = strdup("");
	d->cart_needle = strdup("");
	if (!d->path || !d->serial || !d->model || !d->firmware || !d->backend || !d->fault_kind ||
	    !d->fault_message || !d->device_faults || !d->cart_id || !d->cart_lot || !d->cart_needle) {
		smp_device_unref(d);
		return -ENOMEM;
	}
	d->client = c;
	d->reg_next = c->reg_devices;
	if (c->reg_devices)
		c->reg_devices->reg_prev = d;
	c->reg_devices = d;
	*ret = d;
	return 0;
}

void smp_device_mark_gone(smp_device *d)
{
	d->gone = true;
	d->state = SMP_DEVICE_STATE_GONE;
	d->claimed_by_me = false;
	d->telemetry_slot = sd_bus_slot_unref(d->telemetry_slot);
	d->session = smp_session_unref(d->session);
}

static void device_free(smp_device *d)
{
	if (d->client) {
		if (d->reg_prev)
			d->reg_prev->reg_next = d->reg_next;
		else
			d->client->reg_devices = d->reg_next;
		if (d->reg_next)
			d->reg_next->reg_prev = d->reg_prev;
	}
	sd_bus_slot_unref(d->telemetry_slot);
	smp_session_unref(d->session);
	free(d->path);
	free(d->serial);
	free(d->model);
	free(d->firmware);
	free(d->backend);
	free(d->fault_kind);
	free(d->fault_message);
	free(d->device_faults);
	free(d->session_path);
	for (int i = 0; i < SMP_N_PARAMS; i++)
		for (int b = 0; b < 2; b++) {
			free(d->limits[i].layer[b]);
			free(d->limits[i].source[b]);
		}
	free(d->cart_id);
	free(d->cart_lot);
	free(d->cart_needle);
	smp_error_clear(&d->err);
	free(d);
}

_public_ smp_device *smp_device_ref(smp_device *d)
{
	if (d)
		d->n_ref++;
	return d;
}

_public_ smp_device *smp_device_unref(smp_device *d)
{
	if (d && --d->n_ref == 0)
		device_free(d);
	return NULL;
}

/* Read a variant holding any integer or boolean type as int64. */
static int read_variant_int(sd_bus_message *m, int64_t *ret)
{
	const char *contents;
	int64_t val = 0;
	bool got;
	char type;
	int r;

	r = sd_bus_message_peek_type(m, &type, &contents);
	if (r < 0)
		return r;
	if (type != 'v' || !contents || strlen(contents) != 1)
		return sd_bus_message_skip(m, NULL) < 0 ? -EBADMSG : 0;
	r = sd_bus_message_enter_container(m, 'v', contents);
	if (r < 0)
		return r;
	switch (contents[0]) {
	case 'u': {
		uint32_t v;
		r = sd_bus_message_read_basic(m, 'u', &v);
		if (r > 0)
			val = v;
		break;
	}
	case 'i': {
		int32_t v;
		r = sd_bus_message_read_basic(m, 'i', &v);
		if (r > 0)
			val = v;
		break;
	}
	case 'q': {
		uint16_t v;
		r = sd_bus_message_read_basic(m, 'q', &v);
		if (r > 0)
			val = v;
		break;
	}
	case 'x': {
		int64_t v;
		r = sd_bus_message_read_basic(m, 'x', &v);
		if (r > 0)
			val = v;
		break;
	}
	case 't': {
		uint64_t v;
		r = sd_bus_message_read_basic(m, 't', &v);
		if (r > 0)
			val = (int64_t)v;
		break;
	}
	case 'b': {
		int v;
		r = sd_bus_message_read_basic(m, 'b', &v);
		if (r > 0)
			val = !!v;
		break;
	}
	default:
		r = sd_bus_message_skip(m, contents);
		if (r >= 0)
			r = 0;
		break;
	}
	if (r < 0)
		return r;
	got = r > 0; /* 0: another type skipped, or an empty variant */
	r = sd_bus_message_exit_container(m);
	if (r < 0)
		return r;
	if (!got)
		return 0;
	*ret = val;
	return 1;
}

static int read_variant_string(sd_bus_message *m, const char *type, char **dst)
{
	const char *s;
	int r;

	r = sd_bus_message_read(m, "v", type, &s);
	if (r < 0)
		return r;
	return smp_strdup_to(dst, s);
}

/* Walk an a{sv} dictionary, calling cb for each entry positioned at its variant. */
static int walk_dict(sd_bus_message *m, int (*cb)(void *obj, const char *key, sd_bus_message *m),
		     void *obj)
{
	const char *key;
	int r;

	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		r = sd_bus_message_read_basic(m, 's', &key);
		if (r < 0)
			return r;
		r = cb(obj, key, m);
		if (r < 0)
			return r;
		if (r == 0) {
			r = sd_bus_message_skip(m, "v");
			if (r < 0)
				return r;
		}
		r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

static int setpoint_entry(void *obj, const char *key, sd_bus_message *m)
{
	smp_device *d = obj;
	int64_t v;
	int r;

	for (int p = 0; p < SMP_N_PARAMS; p++)
		if (strcmp(key, param_keys[p]) == 0) {
			r = read_variant_int(m, &v);
			if (r > 0) {
				d->setpoints[p] = (uint32_t)v;
				d->have_setpoints[p] = true;
			}
			return r < 0 ? r : 1;
		}
	return 0;
}

static int telemetry_entry(void *obj, const char *key, sd_bus_message *m)
{
	int64_t *t = obj, v;
	int r;

	for (int i = 0; i < SMP_N_TELEMETRY; i++)
		if (strcmp(key, telemetry_keys[i]) == 0) {
			r = read_variant_int(m, &v);
			if (r > 0)
				t[i] = v;
			return r < 0 ? r : 1;
		}
	return 0;
}

static int cartridge_entry(void *obj, const char *key, sd_bus_message *m)
{
	smp_device *d = obj;
	int64_t v = 0;
	int r;

	if (strcmp(key, "Id") == 0)
		r = read_variant_string(m, "s", &d->cart_id);
	else if (strcmp(key, "Lot") == 0)
		r = read_variant_string(m, "s", &d->cart_lot);
	else if (strcmp(key, "Needle") == 0)
		r = read_variant_string(m, "s", &d->cart_needle);
	else if (strcmp(key, "Present") == 0 || strcmp(key, "Used") == 0 ||
		 strcmp(key, "Expired") == 0 || strcmp(key, "DiameterUm") == 0 ||
		 strcmp(key, "ExpiryDay") == 0) {
		r = read_variant_int(m, &v);
		if (r > 0) {
			if (key[0] == 'P')
				d->cart_present = v;
			else if (key[0] == 'U')
				d->cart_used = v;
			else if (strcmp(key, "Expired") == 0)
				d->cart_expired = v;
			else if (key[0] == 'D')
				d->cart_diameter_um = (uint32_t)v;
			else
				d->cart_expiry_day = (uint32_t)v;
		}
	} else
		return 0;
	return r < 0 ? r : 1;
}

static int parse_limits(smp_device *d, sd_bus_message *m)
{
	const char *key, *lmin, *smin, *lmax, *smax;
	uint32_t vmin, vmax;
	int r;

	r = sd_bus_message_enter_container(m, 'v', "a{s(uussss)}");
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(m, 'a', "{s(uussss)}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(m, "{s(uussss)}", &key, &vmin, &vmax, &lmin, &smin, &lmax,
					&smax)) > 0) {
		for (int p = 0; p < SMP_N_PARAMS; p++) {
			struct smp_limit *l = &d->limits[p];

			if (strcmp(key, param_keys[p]) != 0)
				continue;
			l->value[SMP_BOUND_MIN] = vmin;
			l->value[SMP_BOUND_MAX] = vmax;
			if (smp_strdup_to(&l->layer[SMP_BOUND_MIN], lmin) < 0 ||
			    smp_strdup_to(&l->source[SMP_BOUND_MIN], smin) < 0 ||
			    smp_strdup_to(&l->layer[SMP_BOUND_MAX], lmax) < 0 ||
			    smp_strdup_to(&l->source[SMP_BOUND_MAX], smax) < 0)
				return -ENOMEM;
			d->have_limits = true;
		}
	}
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(m);
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(m);
}

static enum smp_device_state state_from_string(const char *s)
{
	for (unsigned i = SMP_DEVICE_STATE_IDLE; i < SMP_DEVICE_STATE_GONE; i++)
		if (strcmp(s, state_names[i]) == 0)
			return (enum smp_device_state)i;
	return SMP_DEVICE_STATE_UNKNOWN;
}

static int device_set_session(smp_device *d, const char *path)
{
	smp_session *s = NULL;
	int r;

	if (d->session_path && strcmp(d->session_path, path) == 0 && (d->session || !d->client))
		return 0;
	r = smp_strdup_to(&d->session_path, path);
	if (r < 0)
		return r;
	d->session = smp_session_unref(d->session);
	if (strcmp(path, "/") == 0 || !d->client)
		return 0;
	r = smp_client_session_by_path(d->client, path, &s);
	if (r < 0)
		return 0; /* the session went away already: none */
	d->session = s;
	return 0;
}

static int device_entry(void *obj, const char *key, sd_bus_message *m)
{
	smp_device *d = obj;
	int64_t v;
	int r;

	if (strcmp(key, "Serial") == 0)
		r = read_variant_string(m, "s", &d->serial);
	else if (strcmp(key, "Model") == 0)
		r = read_variant_string(m, "s", &d->model);
	else if (strcmp(key, "Firmware") == 0)
		r = read_variant_string(m, "s", &d->firmware);
	else if (strcmp(key, "Backend") == 0)
		r = read_variant_string(m, "s", &d->backend);
	else if (strcmp(key, "State") == 0) {
		const char *s;

		r = sd_bus_message_read(m, "v", "s", &s);
		if (r >= 0 && !d->gone)
			d->state = state_from_string(s);
	} else if (strcmp(key, "Fault") == 0) {
		const char *kind, *msg;

		r = sd_bus_message_read(m, "v", "(ss)", &kind, &msg);
		if (r >= 0)
			r = smp_strdup_to(&d->fault_kind, kind);
		if (r >= 0)
			r = smp_strdup_to(&d->fault_message, msg);
	} else if (strcmp(key, "DeviceFaults") == 0) {
		char **strv = NULL;
		size_t len = 1;
		char *joined;

		r = sd_bus_message_enter_container(m, 'v', "as");
		if (r >= 0)
			r = sd_bus_message_read_strv(m, &strv);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		for (size_t i = 0; strv && strv[i]; i++)
			len += strlen(strv[i]) + 1;
		joined = calloc(1, len);
		if (!joined && r >= 0)
			r = -ENOMEM;
		for (size_t i = 0; joined && strv && strv[i]; i++) {
			if (i)
				strcat(joined, ",");
			strcat(joined, strv[i]);
		}
		if (joined) {
			free(d->device_faults);
			d->device_faults = joined;
		}
		for (size_t i = 0; strv && strv[i]; i++)
			free(strv[i]);
		free(strv);
	} else if (strcmp(key, "Claimed") == 0) {
		r = read_variant_int(m, &v);
		if (r > 0) {
			d->claimed = v;
			if (!v)
				d->claimed_by_me = false;
		}
	} else if (strcmp(key, "ClientTimeoutMs") == 0) {
		r = read_variant_int(m, &v);
		if (r > 0)
			d->client_timeout_ms = v > 0 && v <= UINT32_MAX ? (uint32_t)v : 0;
	} else if (strcmp(key, "Session") == 0) {
		const char *path;

		r = sd_bus_message_read(m, "v", "o", &path);
		if (r >= 0)
			r = device_set_session(d, path);
	} else if (strcmp(key, "Setpoints") == 0) {
		memset(d->have_setpoints, 0, sizeof(d->have_setpoints));
		r = sd_bus_message_enter_container(m, 'v', "a{sv}");
		if (r >= 0)
			r = walk_dict(m, setpoint_entry, d);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	} else if (strcmp(key, "Limits") == 0) {
		r = parse_limits(d, m);
	} else if (strcmp(key, "Cartridge") == 0) {
		d->cart_present = d->cart_used = d->cart_expired = false;
		r = sd_bus_message_enter_container(m, 'v', "a{sv}");
		if (r >= 0)
			r = walk_dict(m, cartridge_entry, d);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	} else
		return 0;
	return r < 0 ? r : 1;
}

int smp_device_parse_properties(smp_device *d, sd_bus_message *m)
{
	return walk_dict(m, device_entry, d);
}

static int device_check(smp_device *d)
{
	if (!d)
		return -EINVAL;
	if (!d->client)
		return smp_error_set(&d->err, -ENOTCONN, NULL, "the client of this device is gone");
	if (d->gone)
		return smp_error_set(&d->err, -ENODEV, NULL, "the device is gone");
	return 0;
}

static int device_fetch(smp_device *d, struct smp_error *err)
{
	sd_bus_message *reply = NULL;
	int r;

	r = smp_client_call(d->client, err, d->path, "org.freedesktop.DBus.Properties", "GetAll",
			    &reply, "s", SMP_IFACE_DEVICE);
	if (r < 0)
		return r;
	r = smp_device_parse_properties(d, reply);
	sd_bus_message_unref(reply);
	if (r < 0)
		return smp_error_set(err, r, NULL, "cannot parse the device's properties");
	return 0;
}

/* A refresh of our own (signals, new devices): leaves the caller's error detail alone. */
int smp_device_update(smp_device *d)
{
	struct smp_error tmp = { 0 };
	int r;

	if (!d->client || d->gone)
		return -ENODEV;
	r = device_fetch(d, &tmp);
	smp_error_clear(&tmp);
	return r;
}

_public_ int smp_device_refresh(smp_device *d)
{
	int r = device_check(d);

	if (r < 0)
		return r;
	return device_fetch(d, &d->err);
}

static int device_call(smp_device *d, const char *member)
{
	int r = device_check(d);

	if (r < 0)
		return r;
	return smp_client_call(d->client, &d->err, d->path, SMP_IFACE_DEVICE, member, NULL, NULL);
}

_public_ int smp_device_claim(smp_device *d)
{
	int r = device_call(d, "Claim");

	if (r >= 0)
		d->claimed_by_me = d->claimed = true;
	return r;
}

_public_ int smp_device_release(smp_device *d)
{
	int r = device_call(d, "Release");

	if (r >= 0)
		d->claimed_by_me = false;
	return r;
}

_public_ int smp_device_start(smp_device *d)
{
	return device_call(d, "Start");
}

_public_ int smp_device_stop(smp_device *d)
{
	return device_call(d, "Stop");
}

_public_ int smp_device_emergency_stop(smp_device *d)
{
	return device_call(d, "EmergencyStop");
}

_public_ int smp_device_clear_fault(smp_device *d)
{
	return device_call(d, "ClearFault");
}

struct refusal {
	int param, bound;
	int64_t requested, limit;
	char *layer, *source;
};

static int refusal_entry(void *obj, const char *key, sd_bus_message *m)
{
	struct refusal *rf = obj;
	const char *s;
	int64_t v;
	int r;

	if (strcmp(key, "Parameter") == 0 || strcmp(key, "Bound") == 0) {
		r = sd_bus_message_read(m, "v", "s", &s);
		if (r < 0)
			return r;
		if (key[0] == 'B')
			rf->bound = strcmp(s, "max") == 0 ? SMP_BOUND_MAX :
				    strcmp(s, "min") == 0 ? SMP_BOUND_MIN :
							    -1;
		else
			for (int p = 0; p < SMP_N_PARAMS; p++)
				if (strcmp(s, param_keys[p]) == 0)
					rf->param = p;
		return 1;
	}
	if (strcmp(key, "Requested") == 0 || strcmp(key, "Limit") == 0) {
		r = read_variant_int(m, &v);
		if (r <= 0)
			return r < 0 ? r : 1; /* another type: skipped, left unset */
		if (v >= 0 && v <= UINT32_MAX)
			*(key[0] == 'R' ? &rf->requested : &rf->limit) = v;
		return 1;
	}
	if (strcmp(key, "Layer") == 0)
		return read_variant_string(m, "s", &rf->layer) < 0 ? -EBADMSG : 1;
	if (strcmp(key, "Source") == 0)
		return read_variant_string(m, "s", &rf->source) < 0 ? -EBADMSG : 1;
	return 0;
}

/*
 * After LimitExceeded: smpd sets the device's LastRefusal before it sends
 * the error, and only the claimant can be refused, so it describes this
 * call's refusal.  Returns <0 when the daemon has no such property (an
 * older smpd) or it is incomplete.
 */
static int read_last_refusal(smp_device *d)
{
	struct refusal rf = { .param = -1, .bound = -1, .requested = -1, .limit = -1 };
	struct smp_error tmp = { 0 };
	sd_bus_message *reply = NULL;
	int r;

	r = smp_client_call(d->client, &tmp, d->path, "org.freedesktop.DBus.Properties", "Get",
			    &reply, "ss", SMP_IFACE_DEVICE, "LastRefusal");
	smp_error_clear(&tmp);
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(reply, 'v', "a{sv}");
	if (r >= 0)
		r = walk_dict(reply, refusal_entry, &rf);
	sd_bus_message_unref(reply);
	if (r >= 0 && (rf.param < 0 || rf.bound < 0 || rf.requested < 0 || rf.limit < 0 ||
		       !rf.layer || !rf.source))
		r = -EBADMSG;
	if (r < 0) {
		free(rf.layer);
		free(rf.source);
		return r;
	}
	free(d->err.layer);
	free(d->err.source);
	d->err.has_limit = true;
	d->err.param = (enum smp_param)rf.param;
	d->err.bound = (enum smp_bound)rf.bound;
	d->err.requested = (uint32_t)rf.requested;
	d->err.limit = (uint32_t)rf.limit;
	d->err.layer = rf.layer;
	d->err.source = rf.source;
	return 0;
}

/*
 * The same from the Limits property, for an smpd without LastRefusal
 * (racy: the policy may have been reloaded in between).
 */
static void explain_limit(smp_device *d, const uint32_t req[SMP_N_PARAMS])
{
	struct smp_error tmp = { 0 };

	if (device_fetch(d, &tmp) < 0 || !d->have_limits) {
		smp_error_clear(&tmp);
		return;
	}
	smp_error_clear(&tmp);
	for (int p = 0; p < SMP_N_PARAMS; p++) {
		uint32_t v = req[p] != SMP_KEEP	  ? req[p] :
			     d->have_setpoints[p] ? d->setpoints[p] :
						    SMP_KEEP;
		enum smp_bound b;

		if (v == SMP_KEEP)
			continue;
		if (v > d->limits[p].value[SMP_BOUND_MAX])
			b = SMP_BOUND_MAX;
		else if (v < d->limits[p].value[SMP_BOUND_MIN])
			b = SMP_BOUND_MIN;
		else
			continue;
		d->err.has_limit = true;
		d->err.param = (enum smp_param)p;
		d->err.bound = b;
		d->err.requested = v;
		d->err.limit = d->limits[p].value[b];
		d->err.layer = smp_strdup_or_empty(d->limits[p].layer[b]);
		d->err.source = smp_strdup_or_empty(d->limits[p].source[b]);
		if (!d->err.layer || !d->err.source)
			d->err.has_limit = false;
		return;
	}
}

_public_ int smp_device_set_parameters(smp_device *d, uint32_t voltage_mv, uint32_t current_ma,
				       uint32_t stroke_rate_chz, uint32_t depth_um)
{
	const uint32_t req[SMP_N_PARAMS] = { voltage_mv, current_ma, stroke_rate_chz, depth_um };
	sd_bus_message *m = NULL, *reply = NULL;
	bool any = false;
	int r;

	r = device_check(d);
	if (r < 0)
		return r;
	r = smp_client_new_method(d->client, d->path, SMP_IFACE_DEVICE, "SetParameters", &m);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "{sv}");
	for (int p = 0; r >= 0 && p < SMP_N_PARAMS; p++) {
		if (req[p] == SMP_KEEP)
			continue;
		any = true;
		r = sd_bus_message_append(m, "{sv}", param_keys[p], "u", req[p]);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r < 0) {
		sd_bus_message_unref(m);
		return smp_error_set(&d->err, r, NULL, NULL);
	}
	if (!any) {
		sd_bus_message_unref(m);
		return smp_error_set(&d->err, -EINVAL, NULL, "no parameter to set");
	}
	r = smp_client_call_msg(d->client, &d->err, m, &reply);
	sd_bus_message_unref(m);
	if (r == -ERANGE) {
		if (read_last_refusal(d) < 0)
			explain_limit(d, req);
		return r;
	}
	if (r < 0)
		return r;
	r = walk_dict(reply, setpoint_entry, d);
	sd_bus_message_unref(reply);
	if (r < 0)
		return smp_error_set(&d->err, r, NULL, "cannot parse the applied values");
	return 0;
}

static int telemetry_match(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
	smp_device *d = userdata;

	if (!d->client || !smp_client_from_daemon(d->client, m))
		return 0;
	if (smp_device_handle_telemetry(d, m) >= 0)
		smp_client_emit(d->client, SMP_EVENT_TELEMETRY, d, NULL, NULL, NULL, 0);
	return 0;
}

int smp_device_handle_telemetry(smp_device *d, sd_bus_message *m)
{
	int64_t t[SMP_N_TELEMETRY];
	int r;

	memcpy(t, d->telemetry, sizeof(t));
	r = walk_dict(m, telemetry_entry, t);
	if (r < 0)
		return r;
	memcpy(d->telemetry, t, sizeof(t));
	d->have_telemetry = true;
	return 0;
}

_public_ int smp_device_subscribe_telemetry(smp_device *d, bool enable)
{
	int r = device_check(d);

	if (r < 0)
		return r;
	if (!enable) {
		d->telemetry_slot = sd_bus_slot_unref(d->telemetry_slot);
		return 0;
	}
	if (d->telemetry_slot)
		return 0;
	r = sd_bus_match_signal(d->client->bus, &d->telemetry_slot, NULL, d->path, SMP_IFACE_DEVICE,
				"Telemetry", telemetry_match, d);
	if (r < 0)
		return smp_error_set(&d->err, r, NULL, "cannot subscribe to telemetry");
	return 0;
}

_public_ int smp_device_get_telemetry(smp_device *d, enum smp_telemetry value, int64_t *ret_value)
{
	if (!d || !ret_value || (unsigned)value >= SMP_N_TELEMETRY)
		return -EINVAL;
	if (!d->have_telemetry)
		return -ENODATA;
	*ret_value = d->telemetry[value];
	return 0;
}

static const struct {
	const char *key;
	char type;
} metadata_keys[] = {
	{ "ClientPseudonym", 's' },
	{ "Operator", 's' },
	{ "Zone", 's' },
	{ "PigmentLot", 's' },
	{ "PigmentManufacturer", 's' },
	{ "OverrideReason", 's' },
	{ "PatchTestTime", 'x' },
	{ "ScreeningTime", 'x' },
};

static int append_metadata(smp_device *d, sd_bus_message *m, const char *entry)
{
	const char *eq = strchr(entry, '=');
	char msg[256];

	if (!eq || eq == entry) {
		snprintf(msg, sizeof(msg), "session metadata \"%.64s\" is not Key=value", entry);
		return smp_error_set(&d->err, -EINVAL, NULL, msg);
	}
	for (size_t i = 0; i < sizeof(metadata_keys) / sizeof(metadata_keys[0]); i++) {
		size_t n = strlen(metadata_keys[i].key);
		const char *val = eq + 1;

		if ((size_t)(eq - entry) != n || strncmp(entry, metadata_keys[i].key, n) != 0)
			continue;
		if (metadata_keys[i].type == 's')
			return sd_bus_message_append(m, "{sv}", metadata_keys[i].key, "s", val);
		{
			char *end = NULL;
			long long t;

			errno = 0;
			t = strtoll(val, &end, 10);
			if (errno || !*val || *end) {
				snprintf(msg, sizeof(msg),
					 "session metadata %s \"%.64s\" is not a time in seconds since 1970",
					 metadata_keys[i].key, val);
				return smp_error_set(&d->err, -EINVAL, NULL, msg);
			}
			return sd_bus_message_append(m, "{sv}", metadata_keys[i].key, "x",
						     (int64_t)t);
		}
	}
	snprintf(msg, sizeof(msg), "unknown session metadata key \"%.*s\"",
		 (int)((eq - entry) > 64 ? 64 : (eq - entry)), entry);
	return smp_error_set(&d->err, -EINVAL, NULL, msg);
}

/* A method call on the Manager or the device carrying the session metadata. */
static int metadata_call(smp_device *d, const char *iface, const char *method,
			 const char *const *metadata, sd_bus_message **ret)
{
	sd_bus_message *m = NULL;
	int r;

	if (!metadata)
		return smp_error_set(&d->err, -EINVAL, NULL, "no session metadata");
	if (strcmp(iface, SMP_IFACE_MANAGER) == 0) {
		r = smp_client_new_method(d->client, SMP_ROOT_PATH, iface, method, &m);
		if (r >= 0)
			r = sd_bus_message_append(m, "o", d->path);
	} else {
		r = smp_client_new_method(d->client, d->path, iface, method, &m);
	}
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "{sv}");
	for (size_t i = 0; r >= 0 && metadata[i]; i++) {
		r = append_metadata(d, m, metadata[i]);
		if (r == -EINVAL) {
			sd_bus_message_unref(m);
			return r;
		}
	}
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r < 0) {
		sd_bus_message_unref(m);
		return smp_error_set(&d->err, r, NULL, NULL);
	}
	*ret = m;
	return 0;
}

_public_ int smp_device_begin_session(smp_device *d, const char *const *metadata,
				      smp_session **ret_session)
{
	sd_bus_message *m = NULL, *reply = NULL;
	const char *path;
	smp_session *s;
	int r;

	r = device_check(d);
	if (r < 0)
		return r;
	r = metadata_call(d, SMP_IFACE_MANAGER, "BeginSession", metadata, &m);
	if (r < 0)
		return r;
	r = smp_client_call_msg(d->client, &d->err, m, &reply);
	sd_bus_message_unref(m);
	if (r < 0)
		return r;
	r = sd_bus_message_read(reply, "o", &path);
	if (r >= 0)
		r = smp_client_session_by_path(d->client, path, &s);
	sd_bus_message_unref(reply);
	if (r < 0)
		return smp_error_set(&d->err, r, NULL, "cannot read the new session");
	/* the device's Session property follows with the next dispatch */
	if (ret_session)
		*ret_session = s;
	else
		smp_session_unref(s);
	return 0;
}

struct smp_refusal {
	char *error_name, *message;
	bool overridable;
	int64_t last_session_time, earliest_time;
};

static void refusal_free(smp_refusal *f)
{
	if (!f)
		return;
	free(f->error_name);
	free(f->message);
	free(f);
}

_public_ smp_refusal **smp_refusal_list_free(smp_refusal **list)
{
	for (size_t i = 0; list && list[i]; i++)
		refusal_free(list[i]);
	free(list);
	return NULL;
}

/* One (ssa{sv}) of CheckSession; unknown detail keys are skipped. */
static int read_refusal(sd_bus_message *reply, smp_refusal **ret)
{
	smp_refusal *f;
	const char *name, *message, *key;
	int r;

	r = sd_bus_message_enter_container(reply, 'r', "ssa{sv}");
	if (r <= 0)
		return r;
	r = sd_bus_message_read(reply, "ss", &name, &message);
	if (r < 0)
		return r;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->error_name = strdup(name);
	f->message = strdup(message);
	if (!f->error_name || !f->message) {
		refusal_free(f);
		return -ENOMEM;
	}
	r = sd_bus_message_enter_container(reply, 'a', "{sv}");
	while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
		r = sd_bus_message_read(reply, "s", &key);
		if (r >= 0 && strcmp(key, "Overridable") == 0) {
			int b;

			r = sd_bus_message_read(reply, "v", "b", &b);
			f->overridable = b;
		} else if (r >= 0 && strcmp(key, "LastSessionTime") == 0) {
			r = sd_bus_message_read(reply, "v", "x", &f->last_session_time);
		} else if (r >= 0 && strcmp(key, "EarliestTime") == 0) {
			r = sd_bus_message_read(reply, "v", "x", &f->earliest_time);
		} else if (r >= 0) {
			r = sd_bus_message_skip(reply, "v");
		}
		if (r >= 0)
			r = sd_bus_message_exit_container(reply);
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(reply);
	if (r >= 0)
		r = sd_bus_message_exit_container(reply);
	if (r < 0) {
		refusal_free(f);
		return r;
	}
	*ret = f;
	return 1;
}

_public_ int smp_device_check_session(smp_device *d, const char *const *metadata,
				      smp_refusal ***ret_refusals)
{
	sd_bus_message *m = NULL, *reply = NULL;
	smp_refusal **list = NULL;
	size_t n = 0;
	int r;

	r = device_check(d);
	if (r < 0)
		return r;
	if (!ret_refusals)
		return smp_error_set(&d->err, -EINVAL, NULL, "no place for the refusals");
	r = metadata_call(d, SMP_IFACE_DEVICE, "CheckSession", metadata, &m);
	if (r < 0)
		return r;
	r = smp_client_call_msg(d->client, &d->err, m, &reply);
	sd_bus_message_unref(m);
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(reply, 'a', "(ssa{sv})");
	for (;;) {
		smp_refusal *f = NULL, **l;

		if (r < 0)
			break;
		r = read_refusal(reply, &f);
		if (r <= 0)
			break;
		l = realloc(list, (n + 2) * sizeof(*list));
		if (!l) {
			refusal_free(f);
			r = -ENOMEM;
			break;
		}
		list = l;
		list[n++] = f;
		list[n] = NULL;
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(reply);
	sd_bus_message_unref(reply);
	if (r >= 0 && !list) {
		list = calloc(1, sizeof(*list));
		if (!list)
			r = -ENOMEM;
	}
	if (r < 0) {
		smp_refusal_list_free(list);
		return smp_error_set(&d->err, r, NULL, "cannot read smpd's answer to CheckSession");
	}
	*ret_refusals = list;
	return (int)n;
}

_public_ const char *smp_refusal_get_error_name(const smp_refusal *f)
{
	return f ? f->error_name : NULL;
}

_public_ const char *smp_refusal_get_message(const smp_refusal *f)
{
	return f ? f->message : NULL;
}

_public_ bool smp_refusal_is_overridable(const smp_refusal *f)
{
	return f && f->overridable;
}

_public_ int64_t smp_refusal_get_last_session_time(const smp_refusal *f)
{
	return f ? f->last_session_time : 0;
}

_public_ int64_t smp_refusal_get_earliest_time(const smp_refusal *f)
{
	return f ? f->earliest_time : 0;
}

_public_ smp_client *smp_device_get_client(smp_device *d)
{
	return d ? d->client : NULL;
}

_public_ const char *smp_device_get_path(smp_device *d)
{
	return d ? d->path : NULL;
}

_public_ const char *smp_device_get_serial(smp_device *d)
{
	return d ? d->serial : NULL;
}

_public_ const char *smp_device_get_model(smp_device *d)
{
	return d ? d->model : NULL;
}

_public_ const char *smp_device_get_firmware(smp_device *d)
{
	return d ? d->firmware : NULL;
}

_public_ const char *smp_device_get_backend(smp_device *d)
{
	return d ? d->backend : NULL;
}

_public_ enum smp_device_state smp_device_get_state(smp_device *d)
{
	return d ? d->state : SMP_DEVICE_STATE_UNKNOWN;
}

_public_ const char *smp_device_state_to_string(enum smp_device_state state)
{
	if ((unsigned)state >= sizeof(state_names) / sizeof(state_names[0]))
		return "unknown";
	return state_names[state];
}

_public_ const char *smp_device_get_fault_kind(smp_device *d)
{
	return d ? d->fault_kind : NULL;
}

_public_ const char *smp_device_get_fault_message(smp_device *d)
{
	return d ? d->fault_message : NULL;
}

_public_ const char *smp_device_get_device_faults(smp_device *d)
{
	return d ? d->device_faults : NULL;
}

_public_ int smp_device_is_claimed(smp_device *d)
{
	return d ? d->claimed : -EINVAL;
}

_public_ int smp_device_is_claimed_by_me(smp_device *d)
{
	return d ? d->claimed_by_me : -EINVAL;
}

_public_ smp_session *smp_device_get_session(smp_device *d)
{
	return d ? d->session : NULL;
}

_public_ int smp_device_get_setpoint(smp_device *d, enum smp_param param, uint32_t *ret_value)
{
	if (!d || !param_ok(param) || !ret_value)
		return -EINVAL;
	if (!d->have_setpoints[param])
		return -ENODATA;
	*ret_value = d->setpoints[param];
	return 0;
}

_public_ int smp_device_get_limit(smp_device *d, enum smp_param param, enum smp_bound bound,
				  uint32_t *ret_value, const char **ret_layer,
				  const char **ret_source)
{
	if (!d || !param_ok(param) || (unsigned)bound > SMP_BOUND_MAX)
		return -EINVAL;
	if (!d->have_limits)
		return -ENODATA;
	if (ret_value)
		*ret_value = d->limits[param].value[bound];
	if (ret_layer)
		*ret_layer = d->limits[param].layer[bound] ? d->limits[param].layer[bound] : "";
	if (ret_source)
		*ret_source = d->limits[param].source[bound] ? d->limits[param].source[bound] : "";
	return 0;
}

_public_ int smp_device_has_cartridge(smp_device *d)
{
	return d ? d->cart_present : -EINVAL;
}

_public_ const char *smp_device_get_cartridge_id(smp_device *d)
{
	return d ? (d->cart_present ? d->cart_id : "") : NULL;
}

_public_ const char *smp_device_get_cartridge_lot(smp_device *d)
{
	return d ? (d->cart_present ? d->cart_lot : "") : NULL;
}

_public_ const char *smp_device_get_cartridge_needle(smp_device *d)
{
	return d ? (d->cart_present ? d->cart_needle : "") : NULL;
}

_public_ int smp_device_get_cartridge_info(smp_device *d, uint32_t *ret_diameter_um,
					   uint32_t *ret_expiry_day)
{
	if (!d)
		return -EINVAL;
	if (!d->cart_present)
		return -ENOMEDIUM;
	if (ret_diameter_um)
		*ret_diameter_um = d->cart_diameter_um;
	if (ret_expiry_day)
		*ret_expiry_day = d->cart_expiry_day;
	return 0;
}

_public_ int smp_device_is_cartridge_used(smp_device *d)
{
	if (!d)
		return -EINVAL;
	return d->cart_present ? d->cart_used : -ENOMEDIUM;
}

_public_ int smp_device_is_cartridge_expired(smp_device *d)
{
	if (!d)
		return -EINVAL;
	return d->cart_present ? d->cart_expired : -ENOMEDIUM;
}

_public_ const char *smp_device_get_error_name(smp_device *d)
{
	return d ? d->err.name : NULL;
}

_public_ const char *smp_device_get_error_message(smp_device *d)
{
	return d ? d->err.message : NULL;
}

_public_ int smp_device_get_error_limit(smp_device *d, enum smp_param *ret_param,
					enum smp_bound *ret_bound, uint32_t *ret_requested,
					uint32_t *ret_limit, const char **ret_layer,
					const char **ret_source)
{
	if (!d)
		return -EINVAL;
	if (!d->err.has_limit)
		return -ENODATA;
	if (ret_param)
		*ret_param = d->err.param;
	if (ret_bound)
		*ret_bound = d->err.bound;
	if (ret_requested)
		*ret_requested = d->err.requested;
	if (ret_limit)
		*ret_limit = d->err.limit;
	if (ret_layer)
		*ret_layer = d->err.layer;
	if (ret_source)
		*ret_source = d->err.source;
	return 0;
}

_public_ const char *smp_param_to_string(enum smp_param param)
{
	return param_ok(param) ? param_names[param] : NULL;
}
